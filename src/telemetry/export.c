/* export.c - the OTLP span exporter and the service's life (see
 * telemetry.h).
 *
 * The queue is a list of copies of stored spans (one allocation each, the
 * row and its strings); the batch being sent (or waiting to be tried
 * again) is taken off its head, encoded once - on libuv's thread pool, so
 * that the loop serves requests meanwhile - and kept with its body until
 * the receiver accepts or refuses it, so that a retry sends the same bytes.
 * One request at a time: a receiver that is slow or down holds the batch,
 * the queue fills behind it up to cfg.queue, and what comes beyond is
 * dropped and counted - never waited for. The timer serves both the flush
 * delay and the back-off. */
#include "telemetry/internal.h"

#include "log/log.h"

#include <curl/curl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_QUEUE       2048
#define DEFAULT_BATCH       512
#define DEFAULT_FLUSH_MS    1000
#define DEFAULT_TIMEOUT_MS  10000
#define DEFAULT_BACKOFF_MAX 30000
#define BACKOFF_FIRST_MS    1000
#define RETRY_AFTER_MAX_S   300
#define RESP_MAX            65536
#define RESOURCE_CACHE      64

struct xspan {
    struct xspan *next;
    aos_store_span_t r; /* strings point into data */
    json_t *json[3];    /* its attributes, events, links (references) or NULL */
    char data[];
};

struct aos_telemetry_s {
    aos_telemetry_cfg_t cfg;
    char *url;      /* <endpoint>/v1/traces, NULL: no export */
    char **headers; /* NULL-terminated; owned, wiped when freed */
    char *resource; /* the exported spans' resource (JSON text) */

    struct xspan *head, **tail; /* waiting for a batch */
    size_t queued;
    struct xspan *batch; /* being sent or waiting to be tried again */
    size_t nbatch;
    aos_buf_t body;       /* the batch, encoded */
    aos_httpc_req_t *req; /* in flight */
    int encoding;         /* the batch is being encoded on the thread pool */
    aos_buf_t resp;
    uv_timer_t *timer;
    unsigned backoff_ms;
    int failing; /* the last attempt failed: logged once until one works */
    int shut;

    /* worker thread only: span_resources rows of ingested resources */
    struct {
        char *text;
        int64_t id;
    } res[RESOURCE_CACHE];
    size_t nres, next_res;

    aos_metric_t *m_sent, *m_dropped, *m_queue, *m_retries, *m_ingested, *m_ingest_rejected;
};

/* ---- the queue ---------------------------------------------------------------- */

static size_t slen(const char *s)
{
    return s ? strlen(s) + 1 : 0;
}

static const char *scopy(char **p, const char *s)
{
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*p, s, n);
    const char *out = *p;
    *p += n;
    return out;
}

/* A copy of r; with json (its parsed attributes, events and links), those
 * are referenced and their texts not copied (the encoder reads json). */
static struct xspan *xspan_copy(const aos_store_span_t *r, json_t *const *json)
{
    size_t n = slen(r->trace_id) + slen(r->span_id) + slen(r->parent_span_id) +
               slen(r->trace_state) + slen(r->name) + slen(r->status_message);
    if (!json)
        n += slen(r->attributes) + slen(r->events) + slen(r->links);
    struct xspan *x = malloc(sizeof(*x) + n);
    if (!x)
        return NULL;
    x->next = NULL;
    x->r = *r;
    char *p = x->data;
    x->r.trace_id = scopy(&p, r->trace_id);
    x->r.span_id = scopy(&p, r->span_id);
    x->r.parent_span_id = scopy(&p, r->parent_span_id);
    x->r.trace_state = scopy(&p, r->trace_state);
    x->r.name = scopy(&p, r->name);
    x->r.status_message = scopy(&p, r->status_message);
    x->r.attributes = json ? NULL : scopy(&p, r->attributes);
    x->r.events = json ? NULL : scopy(&p, r->events);
    x->r.links = json ? NULL : scopy(&p, r->links);
    for (int k = 0; k < 3; k++)
        x->json[k] = json ? json_incref(json[k]) : NULL;
    return x;
}

static void list_free(struct xspan *x)
{
    while (x) {
        struct xspan *next = x->next;
        for (int k = 0; k < 3; k++)
            json_decref(x->json[k]);
        free(x);
        x = next;
    }
}

static void drop(aos_telemetry_t *t, size_t n, const char *reason)
{
    if (n && t->m_dropped)
        aos_metric_add(t->m_dropped, (double)n, reason);
}

static void batch_end(aos_telemetry_t *t)
{
    list_free(t->batch);
    t->batch = NULL;
    t->nbatch = 0;
    aos_buf_reset(&t->body);
}

/* ---- sending -------------------------------------------------------------------- */

static void send_batch(aos_telemetry_t *t);

static void on_timer(uv_timer_t *tm)
{
    aos_telemetry_t *t = tm->data;
    if (t && !t->shut && !t->req)
        send_batch(t);
}

static void arm(aos_telemetry_t *t, uint64_t ms)
{
    if (t->timer && !t->shut)
        uv_timer_start(t->timer, on_timer, ms, 0);
}

/* What to do once the batch is settled (sent or dropped): more waiting? */
static void next(aos_telemetry_t *t)
{
    if (t->shut || t->batch)
        return;
    if (t->queued)
        send_batch(t); /* they waited while the last request ran */
    else if (t->timer)
        uv_timer_stop(t->timer);
}

/* Seconds of a Retry-After header (delta-seconds or an HTTP date), or -1. */
static long retry_after_s(const char *v)
{
    if (!v || !*v)
        return -1;
    char *end;
    long s = strtol(v, &end, 10);
    if (end != v && !*end)
        return s < 0 ? -1 : s;
    time_t when = curl_getdate(v, NULL);
    if (when < 0)
        return -1;
    long d = (long)(when - time(NULL));
    return d < 0 ? 0 : d;
}

static void retry(aos_telemetry_t *t, long retry_after, const char *why)
{
    if (!t->failing)
        aos_log_warn("telemetry",
                     "OTLP export of %zu spans failed (%s); trying again with back-off", t->nbatch,
                     why);
    t->failing = 1;
    if (t->m_retries)
        aos_metric_add(t->m_retries, 1.0);
    unsigned ms = t->backoff_ms ? t->backoff_ms : BACKOFF_FIRST_MS;
    if (ms > t->cfg.backoff_max_ms)
        ms = t->cfg.backoff_max_ms;
    t->backoff_ms = ms * 2 > t->cfg.backoff_max_ms ? t->cfg.backoff_max_ms : ms * 2;
    /* +-20 % jitter, so that many exporters do not come back at once */
    uint64_t wait = ms - ms / 5 + randombytes_uniform(2 * (ms / 5) + 1);
    if (retry_after >= 0) {
        uint64_t ra =
            (uint64_t)(retry_after > RETRY_AFTER_MAX_S ? RETRY_AFTER_MAX_S : retry_after) * 1000;
        if (ra > wait)
            wait = ra;
    }
    arm(t, wait);
}

static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data)
{
    aos_telemetry_t *t = data;
    if (t->resp.len + len > RESP_MAX)
        return 0; /* the rest is not needed */
    return aos_buf_append(&t->resp, chunk, len) < 0 ? AOS_ENOMEM : 0;
}

static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data)
{
    aos_telemetry_t *t = data;
    long http = aos_httpc_status(r);
    t->req = NULL;
    if (status == AOS_ECANCELED || t->shut) {
        drop(t, t->nbatch, "shutdown");
        batch_end(t);
        return;
    }
    if (status < 0) { /* connection refused, timeout: the receiver may come back */
        retry(t, -1, errmsg && *errmsg ? errmsg : aos_err_code(status));
        return;
    }
    if (http == 429 || http == 502 || http == 503 || http == 504) {
        char why[32];
        snprintf(why, sizeof(why), "HTTP %ld", http);
        retry(t, retry_after_s(aos_httpc_resp_header(r, "Retry-After")), why);
        return;
    }
    if (t->failing)
        aos_log_info("telemetry", "OTLP export works again");
    t->failing = 0;
    t->backoff_ms = 0;
    if (http >= 200 && http < 300) {
        int64_t rejected = 0;
        char msg[256];
        if (aos_otlp_response_decode(t->resp.ptr, t->resp.len, t->cfg.encoding, &rejected, msg,
                                     sizeof(msg)) == 0 &&
            rejected > 0) {
            if ((size_t)rejected > t->nbatch)
                rejected = (int64_t)t->nbatch;
            aos_log_warn("telemetry", "the OTLP receiver refused %lld of %zu spans: %s",
                         (long long)rejected, t->nbatch, msg);
            drop(t, (size_t)rejected, "rejected");
        }
        if (t->m_sent)
            aos_metric_add(t->m_sent, (double)(t->nbatch - (size_t)rejected));
    } else {
        aos_log_warn("telemetry", "the OTLP receiver refused %zu spans: HTTP %ld", t->nbatch, http);
        drop(t, t->nbatch, "rejected");
    }
    batch_end(t);
    next(t);
}

/* Sends the encoded batch. */
static void post(aos_telemetry_t *t)
{
    aos_buf_reset(&t->resp);
    aos_httpc_opts_t o = {.method = "POST",
                          .url = t->url,
                          .headers = (const char *const *)t->headers,
                          .body = t->body.ptr,
                          .body_len = t->body.len,
                          .timeout_ms = t->cfg.timeout_ms,
                          .on_data = on_data,
                          .on_done = on_done,
                          .data = t};
    aos_err_t err = {0, ""};
    if (aos_httpc_start(t->cfg.httpc, &o, &t->req, &err) < 0) {
        t->req = NULL;
        retry(t, -1, aos_err_msg(&err));
    }
}

/* A batch being encoded off the loop: the rows borrow the batch's spans,
 * which nobody touches until encode_done. */
struct encode {
    aos_telemetry_t *t;
    uv_work_t work;
    aos_store_span_t *rows;
    json_t **json; /* 3 per row, borrowed from the batch's xspans */
    size_t n;
    char *resource;
    aos_otlp_encoding_t enc;
    aos_buf_t body;
    int rc;
};

static void encode_work(uv_work_t *w)
{
    struct encode *e = w->data;
    e->rc = aos_otlp_traces_encode(e->rows, e->json, e->n, e->resource, e->enc, &e->body);
}

static void encode_done(uv_work_t *w, int status)
{
    struct encode *e = w->data;
    aos_telemetry_t *t = e->t;
    t->encoding = 0;
    if (t->shut) {
        drop(t, t->nbatch, "shutdown");
        batch_end(t);
    } else if (status < 0 || e->rc < 0) {
        drop(t, t->nbatch, "encode");
        batch_end(t);
        next(t);
    } else {
        aos_buf_release(&t->body);
        t->body = e->body;
        aos_buf_init(&e->body, 0);
        post(t);
    }
    aos_buf_release(&e->body);
    free(e->rows);
    free(e->json);
    free(e->resource);
    free(e);
}

/* Sends the batch waiting for a retry, or takes the next one off the queue
 * and has it encoded on the thread pool (the loop serves requests
 * meanwhile), then sent. */
static void send_batch(aos_telemetry_t *t)
{
    if (t->shut || t->req || t->encoding || !t->url)
        return;
    if (t->batch) {
        post(t);
        return;
    }
    if (!t->queued)
        return;
    struct xspan *last = t->head;
    size_t n = 1;
    while (last->next && n < t->cfg.batch) {
        last = last->next;
        n++;
    }
    t->batch = t->head;
    t->nbatch = n;
    t->head = last->next;
    last->next = NULL;
    if (!t->head)
        t->tail = &t->head;
    t->queued -= n;
    struct encode *e = calloc(1, sizeof(*e));
    if (e) {
        e->rows = malloc(n * sizeof(*e->rows));
        e->json = malloc(3 * n * sizeof(*e->json));
        e->resource = t->resource ? strdup(t->resource) : NULL;
    }
    if (!e || !e->rows || !e->json || (t->resource && !e->resource)) {
        if (e) {
            free(e->rows);
            free(e->json);
            free(e->resource);
            free(e);
        }
        drop(t, n, "encode");
        batch_end(t);
        next(t);
        return;
    }
    size_t i = 0;
    for (struct xspan *x = t->batch; x; x = x->next, i++) {
        e->rows[i] = x->r;
        memcpy(&e->json[3 * i], x->json, sizeof(x->json));
    }
    e->t = t;
    e->n = n;
    e->enc = t->cfg.encoding;
    aos_buf_init(&e->body, 0);
    e->work.data = e;
    t->encoding = 1;
    if (uv_queue_work(t->cfg.loop, &e->work, encode_work, encode_done) < 0) {
        t->encoding = 0;
        free(e->rows);
        free(e->json);
        free(e->resource);
        free(e);
        drop(t, n, "encode");
        batch_end(t);
        next(t);
    }
}

void aos_telemetry_export(const aos_store_span_t *rows, json_t *const *json, size_t n,
                          const char *resource, void *data)
{
    aos_telemetry_t *t = data;
    if (!t || t->shut || !t->url || !n)
        return;
    if (resource && (!t->resource || strcmp(t->resource, resource) != 0)) {
        char *copy = strdup(resource);
        if (copy) {
            free(t->resource);
            t->resource = copy;
        }
    }
    size_t dropped = 0;
    for (size_t i = 0; i < n; i++) {
        if (!(rows[i].flags & 1)) /* not sampled: the W3C flag decides */
            continue;
        struct xspan *x = NULL;
        if (t->queued + t->nbatch >= t->cfg.queue ||
            !(x = xspan_copy(&rows[i], json ? &json[3 * i] : NULL))) {
            dropped++;
            continue;
        }
        *t->tail = x;
        t->tail = &x->next;
        t->queued++;
    }
    drop(t, dropped, "queue");
    if (t->batch || t->req)
        return; /* the batch in flight (or its back-off) comes first */
    if (t->queued >= t->cfg.batch)
        send_batch(t);
    else if (t->queued && t->timer && !uv_is_active((uv_handle_t *)t->timer))
        arm(t, t->cfg.flush_ms);
}

/* ---- the service ---------------------------------------------------------------------- */

static void collect(aos_metrics_t *m, void *data)
{
    aos_telemetry_t *t = data;
    aos_metric_set(t->m_queue, (double)(t->queued + t->nbatch));
}

static char *traces_url(const char *endpoint)
{
    size_t n = strlen(endpoint);
    while (n && endpoint[n - 1] == '/')
        n--;
    const char *suffix = "/v1/traces";
    if (n >= strlen(suffix) && !strncmp(endpoint + n - strlen(suffix), suffix, strlen(suffix)))
        suffix = "";
    size_t cap = n + strlen(suffix) + 1;
    char *url = malloc(cap);
    if (url)
        snprintf(url, cap, "%.*s%s", (int)n, endpoint, suffix);
    return url;
}

static void headers_free(char **h)
{
    for (size_t i = 0; h && h[i]; i++) {
        memset(h[i], 0, strlen(h[i]));
        free(h[i]);
    }
    free(h);
}

static char **headers_copy(const char *const *in, aos_otlp_encoding_t enc)
{
    size_t n = 0;
    while (in && in[n])
        n++;
    char **h = calloc(n + 2, sizeof(*h));
    if (!h)
        return NULL;
    h[0] = strdup(enc == AOS_OTLP_JSON ? "Content-Type: application/json"
                                       : "Content-Type: application/x-protobuf");
    for (size_t i = 0; i < n; i++)
        if (!(h[i + 1] = strdup(in[i])))
            break;
    for (size_t i = 0; i <= n; i++)
        if (!h[i]) {
            headers_free(h);
            return NULL;
        }
    return h;
}

int aos_telemetry_new(aos_telemetry_t **out, const aos_telemetry_cfg_t *cfg, aos_err_t *err)
{
    *out = NULL;
    if (!cfg->loop || !cfg->store)
        return aos_err_set(err, AOS_EINVAL, "telemetry needs a loop and a store");
    const char *ep = cfg->endpoint;
    if (ep && *ep && strncmp(ep, "http://", 7) && strncmp(ep, "https://", 8))
        return aos_err_set(err, AOS_EINVAL, "the OTLP endpoint must be an http:// or https:// URL");
    aos_telemetry_t *t = calloc(1, sizeof(*t));
    if (!t)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    t->cfg = *cfg;
    t->cfg.endpoint = NULL;
    t->cfg.headers = NULL;
    if (!t->cfg.queue)
        t->cfg.queue = DEFAULT_QUEUE;
    if (!t->cfg.batch)
        t->cfg.batch = DEFAULT_BATCH;
    if (!t->cfg.flush_ms)
        t->cfg.flush_ms = DEFAULT_FLUSH_MS;
    if (!t->cfg.timeout_ms)
        t->cfg.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (!t->cfg.backoff_max_ms)
        t->cfg.backoff_max_ms = DEFAULT_BACKOFF_MAX;
    t->tail = &t->head;
    aos_buf_init(&t->body, 0);
    aos_buf_init(&t->resp, 0);
    if (ep && *ep && cfg->httpc) {
        t->url = traces_url(ep);
        t->headers = headers_copy(cfg->headers, cfg->encoding);
        t->timer = malloc(sizeof(*t->timer));
        if (!t->url || !t->headers || !t->timer) {
            free(t->timer);
            t->timer = NULL;
            aos_telemetry_free(t);
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        }
        uv_timer_init(cfg->loop, t->timer);
        t->timer->data = t;
        uv_unref((uv_handle_t *)t->timer);
    }
    if (cfg->metrics) {
        t->m_sent = aos_metrics_counter(cfg->metrics, "aos_otlp_export_spans_total",
                                        "Spans the OTLP receiver accepted", NULL);
        t->m_dropped = aos_metrics_counter(
            cfg->metrics, "aos_otlp_export_spans_dropped_total",
            "Spans not exported: the queue was full (queue), the receiver refused them (rejected), "
            "aosd stopped (shutdown) or out of memory (encode)",
            "reason");
        t->m_queue = aos_metrics_gauge(cfg->metrics, "aos_otlp_export_queue_spans",
                                       "Spans waiting for the OTLP receiver, the batch in flight "
                                       "included",
                                       NULL);
        t->m_retries =
            aos_metrics_counter(cfg->metrics, "aos_otlp_export_retries_total",
                                "OTLP export requests tried again after a failure", NULL);
        t->m_ingested =
            aos_metrics_counter(cfg->metrics, "aos_otlp_ingest_accepted_total",
                                "Spans and log records stored from POST /v1/*", "signal");
        t->m_ingest_rejected = aos_metrics_counter(
            cfg->metrics, "aos_otlp_ingest_rejected_total",
            "Spans and log records of POST /v1/* refused (partial success)", "signal");
        aos_metrics_on_collect(cfg->metrics, collect, t);
    }
    *out = t;
    return 0;
}

void aos_telemetry_shutdown(aos_telemetry_t *t)
{
    if (!t || t->shut)
        return;
    t->shut = 1;
    drop(t, t->queued, "shutdown");
    list_free(t->head);
    t->head = NULL;
    t->tail = &t->head;
    t->queued = 0;
    if (!t->req && !t->encoding) {
        drop(t, t->nbatch, "shutdown");
        batch_end(t);
    } /* else its on_done (cancelled by aos_httpc_free) or encode_done drops it */
    if (t->timer) {
        t->timer->data = NULL;
        uv_close((uv_handle_t *)t->timer, (uv_close_cb)free);
        t->timer = NULL;
    }
}

void aos_telemetry_free(aos_telemetry_t *t)
{
    if (!t)
        return;
    aos_telemetry_shutdown(t);
    list_free(t->batch);
    aos_buf_release(&t->body);
    aos_buf_release(&t->resp);
    headers_free(t->headers);
    free(t->url);
    free(t->resource);
    for (size_t i = 0; i < t->nres; i++)
        free(t->res[i].text);
    free(t);
}

/* ---- for ingest.c ----------------------------------------------------------------------- */

aos_store_t *aos__telemetry_store(const aos_telemetry_t *t)
{
    return t->cfg.store;
}

aos_logs_t *aos__telemetry_logs(const aos_telemetry_t *t)
{
    return t->cfg.logs;
}

uv_loop_t *aos__telemetry_loop(const aos_telemetry_t *t)
{
    return t->cfg.loop;
}

int aos__telemetry_shut(const aos_telemetry_t *t)
{
    return t->shut;
}

void aos__telemetry_ingested(aos_telemetry_t *t, const char *signal, size_t accepted,
                             int64_t rejected)
{
    if (t->m_ingested && accepted)
        aos_metric_add(t->m_ingested, (double)accepted, signal);
    if (t->m_ingest_rejected && rejected > 0)
        aos_metric_add(t->m_ingest_rejected, (double)rejected, signal);
}

int aos__telemetry_resource_id(aos_telemetry_t *t, aos_store_t *st, const char *text, int64_t *id,
                               aos_err_t *err)
{
    for (size_t i = 0; i < t->nres; i++)
        if (!strcmp(t->res[i].text, text)) {
            *id = t->res[i].id;
            return 0;
        }
    int rc = aos_store_span_resource_add(st, text, id, err);
    if (rc < 0)
        return rc;
    char *copy = strdup(text);
    if (!copy)
        return 0; /* not cached: the next one adds another row */
    size_t slot;
    if (t->nres < RESOURCE_CACHE) {
        slot = t->nres++;
    } else { /* the oldest goes */
        slot = t->next_res++ % RESOURCE_CACHE;
        free(t->res[slot].text);
    }
    t->res[slot].text = copy;
    t->res[slot].id = *id;
    return 0;
}
