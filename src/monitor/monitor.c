/* monitor.c - the Monitor's service (monitor.h): the metrics of the HTTP
 * server (an observer of every request's end), of the store's worker and of
 * the process, the history's once-a-second sample, and
 * GET /api/metrics/query.
 *
 * The sample runs on the loop: the registry's collect functions (live state
 * read from memory, /proc) and one walk of every series into the rings,
 * tens of microseconds for a few hundred series; its time is itself a gauge
 * (aos_metrics_history_sample_seconds), so a slow sample would show. A query
 * reads at most AOS__MH_MAX_POINTS points per series from memory.
 *
 * Across restarts (migration 0026): every AOS__MH_SAVE_EVERY samples, and
 * once more at aos_monitor_shutdown, the chunks written since the last
 * save are copied on the loop (a few hundred kilobytes for 512 series:
 * about three chunks of 240 bytes per series) and written by a job on the
 * store's worker, which also deletes the chunks the rings have left
 * behind; one save is in flight at a time. aos_monitor_new reads them back
 * (start-up, before the loop runs), so a query after a restart answers
 * for the time before it, with the time aosd was down missing. */
#include "monitor/monitor.h"
#include "monitor/internal.h"
#include "log/log.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct aos_monitor_s {
    aos_monitor_cfg_t cfg;
    aos__mh_t *hist;
    uv_timer_t *timer; /* NULL once shut */
    aos_metric_t *m_http_dur, *m_http_active, *m_conns, *m_evicted, *m_refused, *m_timed_out;
    aos_metric_t *m_jobs, *m_queue, *m_busy, *m_wait;
    aos_metric_t *m_job_dur, *m_job_max, *m_job_entries;
    aos_metric_t *m_hist_series, *m_hist_dropped, *m_hist_bytes, *m_hist_sample;
    double last_sample_s;
    unsigned ticks;
    int saving;         /* a save job is in flight */
    int64_t saved_at;   /* the time of the last dump that was saved */
    int64_t dumping_at; /* the time of the dump in flight */
    aos__monitor_env_t env;
    aos__analyzer_t *analyzer; /* NULL until aos_monitor_analyze */
};

/* ---- metrics ---------------------------------------------------------------------- */

static const char *method_label(const char *m)
{
    static const char *const known[] = {"GET",     "HEAD",    "POST",  "PUT",  "DELETE",
                                        "CONNECT", "OPTIONS", "TRACE", "PATCH"};
    for (size_t i = 0; m && i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(m, known[i]))
            return known[i];
    return "_OTHER";
}

static void on_request(aos_http_req_t *req, unsigned status, double seconds, int aborted,
                       void *data)
{
    (void)aborted;
    aos_monitor_t *mo = data;
    const aos_http_route_t *rt = aos_http_route(req);
    char digits[12], *code = digits + sizeof(digits) - 1; /* status in decimal, "" for none */
    *code = '\0';
    for (unsigned v = status; v; v /= 10)
        *--code = (char)('0' + v % 10);
    aos_metric_observe(mo->m_http_dur, seconds, method_label(aos_http_method(req)),
                       rt ? rt->pattern : "", code);
}

static void collect(aos_metrics_t *m, void *data)
{
    (void)m;
    aos_monitor_t *mo = data;
    if (mo->cfg.http) {
        aos_http_stats_t hs;
        aos_http_stats(mo->cfg.http, &hs);
        aos_metric_set(mo->m_http_active, hs.requests);
        aos_metric_set(mo->m_conns, hs.conns);
        aos_metric_set(mo->m_evicted, (double)hs.evicted);
        aos_metric_set(mo->m_refused, (double)hs.refused);
        aos_metric_set(mo->m_timed_out, (double)hs.timed_out);
    }
    if (mo->cfg.store) {
        aos_store_stats_t ss;
        aos_store_stats(mo->cfg.store, &ss);
        aos_metric_set(mo->m_jobs, (double)(ss.done - ss.failed), "ok");
        aos_metric_set(mo->m_jobs, (double)ss.failed, "error");
        aos_metric_set(mo->m_queue, (double)ss.queued);
        aos_metric_set(mo->m_busy, ss.busy_seconds);
        aos_metric_set(mo->m_wait, ss.wait_seconds);
        aos_store_job_time_t jt[AOS_STORE_JOB_KINDS];
        size_t n = aos_store_job_times(mo->cfg.store, jt, AOS_STORE_JOB_KINDS);
        for (size_t i = 0; i < n; i++) {
            aos_metric_set_histogram(mo->m_job_dur, jt[i].buckets, jt[i].seconds, jt[i].kind);
            aos_metric_set(mo->m_job_max, jt[i].max_seconds, jt[i].kind);
            aos_metric_set(mo->m_job_entries, (double)jt[i].entries, jt[i].kind);
        }
    }
    aos_metric_set(mo->m_hist_series, (double)aos__mh_series(mo->hist));
    aos_metric_set(mo->m_hist_dropped, (double)aos__mh_dropped(mo->hist));
    aos_metric_set(mo->m_hist_bytes, (double)aos__mh_bytes(mo->hist));
    aos_metric_set(mo->m_hist_sample, mo->last_sample_s);
}

/* ---- saving the history ---------------------------------------------------------- */

#define AOS__MH_SAVE_EVERY 60 /* samples (seconds) between saves */

typedef struct {
    aos_monitor_t *mo;
    aos__mh_dump_t d;
    int64_t keep_from[AOS__MH_RINGS];
} save_t;

static int save_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    save_t *j = arg;
    return aos_store_mhist_put(st, j->d.rows, j->d.n, j->keep_from, AOS__MH_RINGS, err);
}

static void save_done(int status, const aos_err_t *err, void *arg)
{
    save_t *j = arg;
    aos_monitor_t *mo = j->mo;
    mo->saving = 0;
    if (status) {
        aos_log_warn("monitor", "the metric history was not saved: %s", aos_err_msg(err));
        aos__mh_rewind(mo->hist, mo->saved_at);
    } else {
        mo->saved_at = mo->dumping_at;
    }
    aos__mh_dump_free(&j->d);
    free(j);
}

static void save(aos_monitor_t *mo)
{
    if (!mo->cfg.store || !mo->cfg.history_series || mo->saving)
        return;
    save_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    int64_t now = (int64_t)time(NULL);
    j->mo = mo;
    aos__mh_keep_from(now, j->keep_from);
    if (aos__mh_dump(mo->hist, &j->d)) {
        aos__mh_rewind(mo->hist, mo->saved_at);
        free(j);
        return;
    }
    mo->dumping_at = now;
    if (aos_store_submit(mo->cfg.store, save_job, save_done, j)) {
        aos__mh_rewind(mo->hist, mo->saved_at);
        aos__mh_dump_free(&j->d);
        free(j);
        return;
    }
    mo->saving = 1;
}

typedef struct {
    aos__mh_t *h;
    int64_t now;
    size_t rows, bad, full;
} load_t;

static void load_row(const aos_store_mhist_row_t *row, void *arg)
{
    load_t *l = arg;
    int rc = aos__mh_load(l->h, row, l->now);
    l->rows++;
    l->bad += rc == AOS_EINVAL;
    l->full += rc == AOS_ETOOBIG;
}

static void load(aos_monitor_t *mo)
{
    load_t l = {mo->hist, (int64_t)time(NULL), 0, 0, 0};
    int64_t keep_from[AOS__MH_RINGS];
    aos__mh_keep_from(l.now, keep_from);
    aos_err_t err = {0, ""};
    if (aos_store_mhist_load(mo->cfg.store, keep_from, AOS__MH_RINGS, load_row, &l, &err))
        aos_log_warn("monitor", "the saved metric history was not read: %s", aos_err_msg(&err));
    else if (l.bad || l.full)
        aos_log_warn("monitor",
                     "the saved metric history: %zu of %zu chunks left out (%zu unreadable, %zu "
                     "past --metrics-history-series)",
                     l.bad + l.full, l.rows, l.bad, l.full);
    mo->saved_at = l.now;
}

static void on_tick(uv_timer_t *t)
{
    aos_monitor_t *mo = t->data;
    uint64_t t0 = uv_hrtime();
    aos_metrics_collect(mo->cfg.metrics);
    aos__mh_sample(mo->hist, mo->cfg.metrics, (int64_t)time(NULL));
    mo->last_sample_s = (double)(uv_hrtime() - t0) / 1e9;
    if (++mo->ticks % AOS__MH_SAVE_EVERY == 0)
        save(mo);
}

int aos_monitor_new(aos_monitor_t **out, const aos_monitor_cfg_t *cfg, aos_err_t *err)
{
    aos_monitor_t *mo = calloc(1, sizeof(*mo));
    if (!mo)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    mo->cfg = *cfg;
    mo->hist = aos__mh_new(mo->cfg.history_series);
    mo->timer = malloc(sizeof(*mo->timer));
    if (!mo->hist || !mo->timer) {
        aos__mh_free(mo->hist);
        free(mo->timer);
        free(mo);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    aos_metrics_t *m = cfg->metrics;
    /* OpenTelemetry's http.server.request.duration buckets */
    static const double bounds[] = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                    0.5,   0.75, 1,     2.5,  5,     7.5, 10};
    mo->m_http_dur = aos_metrics_histogram(
        m, "http_server_request_duration_seconds",
        "Duration of HTTP server requests (http.server.request.duration), by route pattern",
        "http_request_method,http_route,http_response_status_code", bounds,
        sizeof(bounds) / sizeof(bounds[0]));
    mo->m_http_active =
        aos_metrics_gauge(m, "http_server_active_requests",
                          "HTTP requests between their first byte and their end", NULL);
    mo->m_conns = aos_metrics_gauge(m, "aos_http_connections", "HTTP connections open", NULL);
    mo->m_evicted = aos_metrics_counter(m, "aos_http_connections_evicted_total",
                                        "Idle connections closed to make room", NULL);
    mo->m_refused = aos_metrics_counter(
        m, "aos_http_connections_refused_total",
        "Connections refused because every connection of their group was busy", NULL);
    mo->m_timed_out = aos_metrics_counter(m, "aos_http_connections_timed_out_total",
                                          "Idle connections closed at their deadline", NULL);
    mo->m_jobs = aos_metrics_counter(m, "aos_store_jobs_total",
                                     "Jobs the store's worker ran, by outcome", "outcome");
    mo->m_queue =
        aos_metrics_gauge(m, "aos_store_queue_depth", "Jobs waiting for the store's worker", NULL);
    mo->m_busy = aos_metrics_counter(m, "aos_store_busy_seconds_total",
                                     "Time the store's worker spent running jobs", NULL);
    mo->m_wait = aos_metrics_counter(m, "aos_store_wait_seconds_total",
                                     "Time jobs waited for the store's worker, all together", NULL);
    mo->m_job_dur = aos_metrics_histogram(
        m, "aos_store_job_duration_seconds",
        "Time the store's worker spent on one job, by kind (checkpoint: a WAL checkpoint "
        "between jobs); a request waits behind the job before its own",
        "kind", aos_store_job_bounds, AOS_STORE_JOB_BOUNDS);
    mo->m_job_max =
        aos_metrics_gauge(m, "aos_store_job_duration_max_seconds",
                          "The longest job of the store's worker so far, by kind", "kind");
    mo->m_job_entries = aos_metrics_counter(
        m, "aos_store_job_entries_total",
        "Items the store's jobs handled, by kind (log entries; pages for a checkpoint)", "kind");
    mo->m_hist_series = aos_metrics_gauge(m, "aos_metrics_history_series",
                                          "Series kept by the built-in metric history", NULL);
    mo->m_hist_dropped = aos_metrics_gauge(
        m, "aos_metrics_history_series_dropped",
        "Series the history left out at its last sample: past its limit of series", NULL);
    mo->m_hist_bytes =
        aos_metrics_gauge(m, "aos_metrics_history_bytes", "Memory of the history's rings", NULL);
    mo->m_hist_sample = aos_metrics_gauge(m, "aos_metrics_history_sample_seconds",
                                          "Time the history's last sample took on the loop", NULL);
    int rc = aos_metrics_process(m);
    if (!rc)
        rc = aos_metrics_on_collect(m, collect, mo);
    if (rc) {
        aos__mh_free(mo->hist);
        free(mo->timer);
        free(mo);
        return aos_err_set(err, rc, "unable to register the monitor's metrics");
    }
    if (cfg->http)
        aos_http_set_observer(cfg->http, on_request, mo);
    if (cfg->store && cfg->history_series)
        load(mo);
    uv_timer_init(cfg->loop, mo->timer);
    mo->timer->data = mo;
    if (cfg->history_series) /* else no history: the queries say so */
        uv_timer_start(mo->timer, on_tick, 1000, 1000);
    uv_unref((uv_handle_t *)mo->timer);
    *out = mo;
    return 0;
}

int aos_monitor_analyze(aos_monitor_t *mo, aos_bus_t *bus)
{
    if (!(mo->analyzer = aos__analyzer_new()))
        return AOS_ENOMEM;
    if (mo->cfg.trace_keep)
        aos__analyzer_set_keep(mo->analyzer, mo->cfg.trace_keep, mo->cfg.trace_keep_data);
    return aos__analyzer_start(mo->analyzer, bus);
}

void aos_monitor_set_llm(aos_monitor_t *mo, aos_llm_t *llm)
{
    if (mo)
        aos__analyzer_set_llm(mo->analyzer, llm);
}

void aos_monitor_shutdown(aos_monitor_t *mo)
{
    if (!mo)
        return;
    aos__analyzer_stop(mo->analyzer);
    if (!mo->timer)
        return;
    if (mo->cfg.http)
        aos_http_set_observer(mo->cfg.http, NULL, NULL);
    uv_timer_stop(mo->timer);
    mo->saving = 0; /* the last save goes behind one in flight (the store's jobs are in order) */
    save(mo);
    uv_close((uv_handle_t *)mo->timer, (uv_close_cb)free);
    mo->timer = NULL;
}

void aos_monitor_free(aos_monitor_t *mo)
{
    if (!mo)
        return;
    aos__mh_free(mo->hist);
    aos__analyzer_free(mo->analyzer);
    free(mo);
}

/* ---- GET /api/metrics/query ------------------------------------------------------- */

int aos__monitor_time(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || !isfinite(v) || v < 0 || v > 1e11)
        return AOS_EINVAL;
    *out = (int64_t)v;
    return 0;
}

static int query(aos_http_req_t *req, void *data)
{
    aos_monitor_t *mo = data;
    int64_t now = (int64_t)time(NULL);
    if (!mo->cfg.history_series)
        return aos_http_respond_error(req, AOS_EUNAVAIL,
                                      "the metric history is off (--metrics-history-series 0)");
    const char *name = aos_http_query(req, "name");
    if (!name || !*name)
        return aos_http_respond_error(req, AOS_EINVAL, "name is required");
    aos__mh_query_t q = {.name = name, .to = now, .fn = AOS__MH_VALUE};
    const char *from = aos_http_query(req, "from"), *to = aos_http_query(req, "to");
    if (to && aos__monitor_time(to, &q.to))
        return aos_http_respond_error(req, AOS_EINVAL, "to must be a time in unix seconds");
    q.from = q.to - 3600;
    if (from && aos__monitor_time(from, &q.from))
        return aos_http_respond_error(req, AOS_EINVAL, "from must be a time in unix seconds");
    if (q.from > q.to)
        return aos_http_respond_error(req, AOS_EINVAL, "from must not be after to");
    q.step = (q.to - q.from + 299) / 300;
    if (q.step < 1)
        q.step = 1;
    const char *step = aos_http_query(req, "step");
    if (step) {
        char *end;
        errno = 0;
        long long v = strtoll(step, &end, 10);
        if (!*step || *end || errno || v < 1 || v > 86400 * 31)
            return aos_http_respond_error(req, AOS_EINVAL,
                                          "step must be whole seconds, from 1 to 2678400");
        q.step = v;
    }
    const char *fn = aos_http_query(req, "fn");
    if (fn && !strcmp(fn, "rate"))
        q.fn = AOS__MH_RATE;
    else if (fn && !strcmp(fn, "increase"))
        q.fn = AOS__MH_INCREASE;
    else if (fn && strcmp(fn, "value") != 0)
        return aos_http_respond_error(req, AOS_EINVAL, "fn must be value, rate or increase");
    json_t *match = NULL;
    const char *labels = aos_http_query(req, "labels");
    if (labels) {
        /* {a="b"} as PromQL writes it, or a="b" */
        size_t n = strlen(labels);
        char *copy = strdup(labels);
        if (!copy)
            return AOS_ENOMEM;
        char *p = copy;
        if (n >= 2 && p[0] == '{' && p[n - 1] == '}') {
            p[n - 1] = '\0';
            p++;
        }
        match = aos__mh_labels(p);
        free(copy);
        if (!match)
            return aos_http_respond_error(req, AOS_EINVAL,
                                          "labels must be name=\"value\" pairs, comma-separated");
    }
    q.match = match;
    json_t *out;
    aos_err_t err = {0, ""};
    int rc = aos__mh_query(mo->hist, now, &q, &out, &err);
    json_decref(match);
    if (rc)
        return aos_http_respond_err(req, &err);
    return aos_http_respond_json(req, 200, out);
}

/* GET /api/metrics/names?prefix= */
static int names(aos_http_req_t *req, void *data)
{
    aos_monitor_t *mo = data;
    if (!mo->cfg.history_series)
        return aos_http_respond_error(req, AOS_EUNAVAIL,
                                      "the metric history is off (--metrics-history-series 0)");
    json_t *list = aos__mh_names(mo->hist, aos_http_query(req, "prefix"));
    if (!list)
        return AOS_ENOMEM;
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "names", list));
}

/* GET /api/analyzer/suggestions?limit=N (1..256, default 50) */
static int suggestions(aos_http_req_t *req, void *data)
{
    aos_monitor_t *mo = data;
    long limit = 50;
    const char *ls = aos_http_query(req, "limit");
    if (ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (!*ls || *end || limit < 1 || (size_t)limit > aos__analyzer_limit_max())
            return aos_http_respond_error(req, AOS_EINVAL, "limit must be from 1 to %zu",
                                          aos__analyzer_limit_max());
    }
    if (!mo->analyzer)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the analyzer is not running");
    json_t *list = aos__analyzer_list(mo->analyzer, (size_t)limit);
    if (!list)
        return AOS_ENOMEM;
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "suggestions", list));
}

static const aos_http_route_t routes[] = {
    {"GET", "/api/metrics/query", AOS_PERM_READ, query, 0, NULL},
    {"GET", "/api/metrics/names", AOS_PERM_READ, names, 0, NULL},
    {"GET", "/api/analyzer/suggestions", AOS_PERM_READ, suggestions, 0, NULL},
};

int aos_monitor_add_routes(aos_monitor_t *mo, aos_http_t *http)
{
    int rc = aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), mo);
    mo->env.loop = mo->cfg.loop;
    mo->env.store = mo->cfg.store;
    return rc ? rc : aos__monitor_search_routes(&mo->env, http);
}
