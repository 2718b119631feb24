/* episode.c - one run, read back: GET /api/episodes/:trace (the spec, the
 * plan, every step with its attempts, approvals, events, log lines and
 * artifacts; the events and the log lines a page at a time, see
 * page_read), its replay (the recorded steps in order, nothing called
 * again), its artifacts, and a re-run from one of its steps (a new trace
 * linked to it; the steps before reuse their recorded results). */
#include "orch/internal.h"
#include "buf/buf.h"
#include "isotime/isotime.h"
#include "log/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define ARTIFACT_MAX (64u << 20)

/* A page of a trace's events or log lines: after (> 0: ids above it,
 * oldest first) or before (> 0: the newest ids below it), else from the
 * first; limit rows. next_before/next_after: the cursors of the pages
 * either side, 0 when no row is there (yet). */
typedef struct {
    long long after, before, limit;
    int64_t next_before, next_after;
} episode_page_t;

struct episode_job {
    aos_orch_t *o;
    orch_waiter_t *w;
    char trace[33];
    int full; /* events and logs too */
    episode_page_t ev, lg;
    json_t *task, *events, *logs, *spans;
    json_t *arg; /* rerun: the request body */
};

/* Rows of trace (events, or log lines with logs) where id > after
 * (ascending) or id < before (descending), at most limit of them. */
static int rows_read(aos_store_t *st, const char *trace, int logs, int64_t after, int64_t before,
                     int limit, json_t **out, aos_err_t *err)
{
    if (logs) {
        aos_store_logs_filter_t f = {.trace_id = trace,
                                     .after_id = after,
                                     .before_id = before,
                                     .ascending = before <= 0,
                                     .limit = limit};
        return aos_store_logs_query(st, &f, out, err);
    }
    aos_store_event_query_t q = {.trace_id = trace,
                                 .newest_first = before > 0,
                                 .after_id = after,
                                 .before_id = before,
                                 .limit = limit};
    return aos_store_event_list(st, &q, out, err);
}

static int64_t row_id(const json_t *rows, size_t i)
{
    return (int64_t)json_integer_value(json_object_get(json_array_get(rows, i), "id"));
}

/* A page of the trace's events or log lines (p), in id order, into *out,
 * with the cursors of the pages either side: a row beyond each end of
 * the page is looked for (one indexed row each), so a cursor is given
 * only where a row is, and an empty page has none. */
static int page_read(aos_store_t *st, const char *trace, int logs, episode_page_t *p, json_t **out,
                     aos_err_t *err)
{
    int rc = rows_read(st, trace, logs, p->after, p->before, (int)p->limit, out, err);
    if (rc)
        return rc;
    size_t n = json_array_size(*out);
    if (p->before > 0) /* newest first: put the page in id order */
        for (size_t i = 0; i < n / 2; i++) {
            json_t *a = json_incref(json_array_get(*out, i));
            json_array_set(*out, i, json_array_get(*out, n - 1 - i));
            json_array_set_new(*out, n - 1 - i, a);
        }
    p->next_before = p->next_after = 0;
    if (!n)
        return 0;
    int64_t lo = row_id(*out, 0), hi = row_id(*out, n - 1);
    json_t *probe = NULL;
    if ((rc = rows_read(st, trace, logs, 0, lo, 1, &probe, err)))
        return rc;
    p->next_before = json_array_size(probe) ? lo : 0;
    json_decref(probe);
    probe = NULL;
    if ((rc = rows_read(st, trace, logs, hi, 0, 1, &probe, err)))
        return rc;
    p->next_after = json_array_size(probe) ? hi : 0;
    json_decref(probe);
    return 0;
}

static int episode_read(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct episode_job *j = arg;
    int rc = aos_store_task_get(st, j->trace, &j->task, err);
    if (rc || !j->full)
        return rc;
    if ((rc = page_read(st, j->trace, 0, &j->ev, &j->events, err)) ||
        (rc = page_read(st, j->trace, 1, &j->lg, &j->logs, err)))
        return rc;
    /* the spans, flat in start order (GET /api/traces/:id gives the tree) */
    aos_store_span_page_t page = {0};
    rc = aos_store_spans_trace(st, j->trace, INT64_MIN, 0, 1000, &page, err);
    j->spans = json_array();
    for (size_t i = 0; rc == 0 && i < page.n; i++) {
        const aos_store_span_t *s = &page.rows[i];
        json_t *attrs = s->attributes ? json_loads(s->attributes, 0, NULL) : NULL;
        json_array_append_new(
            j->spans,
            json_pack("{s:s, s:s?, s:s, s:i, s:I, s:I, s:f, s:i, s:s?, s:o}", "span_id", s->span_id,
                      "parent_span_id", s->parent_span_id, "name", s->name, "kind", s->kind,
                      "start_ns", (json_int_t)s->start_ns, "end_ns", (json_int_t)s->end_ns,
                      "duration_ms", (double)(s->end_ns - s->start_ns) / 1e6, "status",
                      s->status_code, "status_message", s->status_message, "attributes",
                      attrs ? attrs : json_object()));
    }
    aos_store_span_page_release(&page);
    return rc;
}

static void episode_free(struct episode_job *j)
{
    json_decref(j->task);
    json_decref(j->events);
    json_decref(j->logs);
    json_decref(j->spans);
    json_decref(j->arg);
    orch_waiter_free(j->w);
    free(j);
}

/* Reads the task (full: its events, log lines and spans too, the pages
 * ev and lg of them) and calls done on the loop. */
static struct episode_job *episode_start(aos_http_req_t *req, aos_orch_t *o, int full,
                                         aos_store_done_fn done, const episode_page_t *ev,
                                         const episode_page_t *lg)
{
    const char *trace = aos_http_param(req, "trace");
    if (!orch_trace_ok(trace)) {
        aos_http_respond_error(req, AOS_EINVAL, "a trace id is 32 lowercase hex digits");
        return NULL;
    }
    struct episode_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->w = orch_waiter_new(req))) {
        free(j);
        aos_http_respond_error(req, AOS_ENOMEM, "out of memory");
        return NULL;
    }
    j->o = o;
    j->full = full;
    if (ev)
        j->ev = *ev;
    if (lg)
        j->lg = *lg;
    snprintf(j->trace, sizeof(j->trace), "%s", trace);
    if (aos_store_submit(o->cfg.store, episode_read, done, j)) {
        aos_http_respond_error(req, AOS_EUNAVAIL, "the store is closing");
        episode_free(j);
        return NULL;
    }
    return j;
}

/* Milliseconds between two of our ISO-8601 UTC times (or -1). */
static long long span_ms(const char *a, const char *b)
{
    int64_t ta, tb;
    if (aos_isotime_parse(a, 0, &ta) != 0 || aos_isotime_parse(b, 0, &tb) != 0)
        return -1;
    return (long long)(tb - ta);
}

/* The step rows grouped by step, in the order they first ran. */
static json_t *steps_view(const json_t *rows)
{
    json_t *out = json_array(), *by = json_object();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *id = json_string_value(json_object_get(r, "step_id"));
        json_t *s = json_object_get(by, id);
        if (!s) {
            s = json_pack("{s:s, s:O, s:[]}", "id", id, "kind", json_object_get(r, "kind"),
                          "attempts");
            json_object_set_new(by, id, s);
            json_array_append(out, s);
        }
        json_t *a = json_deep_copy(r);
        json_object_del(a, "step_id");
        json_object_del(a, "kind");
        long long ms = span_ms(json_string_value(json_object_get(r, "started_at")),
                               json_string_value(json_object_get(r, "finished_at")));
        json_object_set_new(a, "duration_ms", ms >= 0 ? json_integer(ms) : json_null());
        json_array_append_new(json_object_get(s, "attempts"), a);
        json_object_set(s, "status", json_object_get(r, "status"));
        json_object_set_new(s, "cost_cny",
                            json_real(json_number_value(json_object_get(s, "cost_cny")) +
                                      json_number_value(json_object_get(r, "cost_cny"))));
    }
    json_decref(by);
    return out;
}

/* ---- the artifacts of a task: its workspace's files -------------------------------- */

struct entry {
    char *name;
    int64_t size;
};

static int by_name(const void *a, const void *b)
{
    return strcmp(((const struct entry *)a)->name, ((const struct entry *)b)->name);
}

/* name as a path segment: unreserved bytes as they are, the rest %XX. */
static int put_segment(aos_buf_t *b, const char *name)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)name; *p; p++) {
        int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' || *p == '~';
        char esc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
        int rc = plain ? aos_buf_append(b, (const char *)p, 1) : aos_buf_append(b, esc, 3);
        if (rc)
            return rc;
    }
    return 0;
}

/* An artifact's type by its extension: the one listed and the
 * Content-Type it is served with (NULL: served as bytes, e.g. HTML). */
static void artifact_types(const char *name, const char **listed, const char **served)
{
    static const struct {
        const char *ext, *type, *served;
    } types[] = {
        {".csv", "text/csv", "text/csv; charset=utf-8"},
        {".json", "application/json", "application/json"},
        {".txt", "text/plain", "text/plain; charset=utf-8"},
        {".md", "text/markdown", "text/markdown; charset=utf-8"},
        {".png", "image/png", "image/png"},
        {".svg", "image/svg+xml", "image/svg+xml"},
        {".html", "text/html", NULL},
        {".pdf", "application/pdf", "application/pdf"},
        {".jpg", "image/jpeg", "image/jpeg"},
        {".log", "text/plain", "text/plain; charset=utf-8"},
    };
    const char *dot = strrchr(name, '.');
    *listed = "application/octet-stream";
    *served = NULL;
    for (size_t i = 0; dot && i < sizeof(types) / sizeof(types[0]); i++)
        if (!strcasecmp(dot, types[i].ext)) {
            *listed = types[i].type;
            *served = types[i].served;
            return;
        }
}

json_t *orch_artifacts_list(const char *dir, const char *trace_id, size_t budget, size_t *total)
{
    struct entry *v = NULL;
    size_t n = 0, cap = 0, bytes = 2;
    json_t *out = json_array();
    DIR *d = dir ? opendir(dir) : NULL;
    struct dirent *e;
    int fd = d ? dirfd(d) : -1;
    while (out && d && (e = readdir(d)) && n < ORCH_ARTIFACTS_MAX) {
        struct stat sb;
        if (e->d_name[0] == '.' || fstatat(fd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(sb.st_mode))
            continue;
        if (n == cap) {
            size_t c = cap ? cap * 2 : 32;
            struct entry *g = realloc(v, c * sizeof(*g));
            if (!g)
                break;
            v = g;
            cap = c;
        }
        if (!(v[n].name = strdup(e->d_name)))
            break;
        v[n++].size = (int64_t)sb.st_size;
    }
    if (total)
        *total = n;
    if (n > 1)
        qsort(v, n, sizeof(*v), by_name);
    aos_buf_t url;
    aos_buf_init(&url, 0);
    for (size_t i = 0; out && i < n; i++) {
        const char *type, *served;
        artifact_types(v[i].name, &type, &served);
        aos_buf_reset(&url);
        if (aos_buf_append(&url, "/api/episodes/", 14) ||
            aos_buf_append(&url, trace_id, strlen(trace_id)) ||
            aos_buf_append(&url, "/artifacts/", 11) || put_segment(&url, v[i].name))
            break;
        /* the entry's compact size, an upper bound: a name escapes at most 6:1 */
        size_t add = 64 + strlen(v[i].name) * 6 + strlen(type) + url.len + 21;
        if (budget && bytes + add > budget)
            break;
        json_t *a = json_pack("{s:s, s:s, s:I, s:s%}", "name", v[i].name, "type", type, "size",
                              (json_int_t)v[i].size, "url", url.ptr, url.len);
        if (!a)
            break;
        bytes += add;
        json_array_append_new(out, a);
    }
    aos_buf_release(&url);
    for (size_t i = 0; i < n; i++)
        free(v[i].name);
    free(v);
    if (d)
        closedir(d);
    return out;
}

/* The caller may read this task: a right on it, on every task, or on its
 * project (the route let in callers with a project grant). Else 403. */
static int may_read(struct episode_job *j, aos_http_req_t *req)
{
    const char *pid = json_string_value(json_object_get(j->task, "project_id"));
    if (aos_auth_req_check_task(req, AOS_PERM_READ, j->trace, pid) == 0)
        return 1;
    aos_http_respond_error(req, AOS_EFORBIDDEN, "this token may not read task %s", j->trace);
    return 0;
}

static void episode_done(int status, const aos_err_t *err, void *arg)
{
    struct episode_job *j = arg;
    aos_http_req_t *req = j->w->req;
    if (!req) {
        episode_free(j);
        return;
    }
    if (status || !may_read(j, req)) {
        if (status)
            aos_http_respond_err(req, err);
        episode_free(j);
        return;
    }
    json_t *t = j->task, *state = json_object_get(t, "state");
    char ws[4200];
    snprintf(ws, sizeof(ws), "%s/workspaces/%s", j->o->data_dir, j->trace);
    json_t *body = json_pack(
        "{s:s, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:o, s:O, s:O, s:O, "
        "s:o, s:O}",
        "trace_id", j->trace, "job_id", json_object_get(t, "id"), "status",
        json_object_get(t, "status"), "spec", json_object_get(t, "spec"), "plan",
        json_object_get(state, "plan") ? json_object_get(state, "plan") : json_null(), "created_at",
        json_object_get(t, "created_at"), "started_at", json_object_get(t, "started_at"),
        "finished_at", json_object_get(t, "finished_at"), "cost_cny",
        json_object_get(t, "cost_cny"), "latency_ms", json_object_get(t, "latency_ms"), "error",
        json_object_get(t, "error"), "rerun_of",
        json_object_get(state, "rerun_of") ? json_object_get(state, "rerun_of") : json_null(),
        "from_step",
        json_object_get(state, "from_step") ? json_object_get(state, "from_step") : json_null(),
        "steps", steps_view(json_object_get(t, "steps")), "approvals",
        json_object_get(t, "approvals"), "events", j->events ? j->events : json_null(), "logs",
        j->logs ? j->logs : json_null(), "artifacts", orch_artifacts_list(ws, j->trace, 0, NULL),
        "spans", j->spans ? j->spans : json_null());
    const struct {
        const char *name;
        int64_t v;
    } cur[] = {{"events_next_before", j->ev.next_before},
               {"events_next_after", j->ev.next_after},
               {"logs_next_before", j->lg.next_before},
               {"logs_next_after", j->lg.next_after}};
    for (size_t i = 0; body && i < sizeof(cur) / sizeof(cur[0]); i++)
        json_object_set_new(body, cur[i].name,
                            cur[i].v ? json_integer((json_int_t)cur[i].v) : json_null());
    aos_http_respond_json(req, body ? 200 : 500, body);
    episode_free(j);
}

/* The cursors of one kind of row (prefix "" for events, "logs_"), and
 * the page's limit, from the query; an error for a bad one. */
static int page_query(aos_http_req_t *req, const char *prefix, long long limit, episode_page_t *p,
                      aos_err_t *err)
{
    char a[16], b[16];
    snprintf(a, sizeof(a), "%safter", prefix);
    snprintf(b, sizeof(b), "%sbefore", prefix);
    int rc;
    if ((rc = orch_query_int(req, a, 0, INT64_MAX, 0, &p->after, err)) ||
        (rc = orch_query_int(req, b, 1, INT64_MAX, 0, &p->before, err)))
        return rc;
    if (aos_http_query(req, a) && aos_http_query(req, b))
        return aos_err_set(err, AOS_EINVAL, "give '%s' or '%s', not both", a, b);
    p->limit = limit;
    return 0;
}

/* ?after= or ?before= (event ids), ?logs_after= or ?logs_before= (log
 * line ids), ?limit= (rows of each, 1..1000, default 1000). */
int orch_route_episode(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    episode_page_t ev = {0}, lg = {0};
    long long limit;
    if (orch_query_int(req, "limit", 1, AOS_STORE_LIST_MAX, AOS_STORE_LIST_MAX, &limit, &err) ||
        page_query(req, "", limit, &ev, &err) || page_query(req, "logs_", limit, &lg, &err))
        return aos_http_respond_err(req, &err);
    episode_start(req, data, 1, episode_done, &ev, &lg);
    return 0;
}

/* ---- replay ------------------------------------------------------------------------ */

/* The run re-read in order: a frame per recorded attempt (what went in,
 * what came out, how it ended) and the scope as it stood after frame
 * `upto` (default: the last). One pass over the rows: linear in steps. */
static void replay_done(int status, const aos_err_t *err, void *arg)
{
    struct episode_job *j = arg;
    aos_http_req_t *req = j->w->req;
    if (!req || status || !may_read(j, req)) {
        if (req && status)
            aos_http_respond_err(req, err);
        episode_free(j);
        return;
    }
    long long upto;
    aos_err_t e = {0, ""};
    const json_t *rows = json_object_get(j->task, "steps");
    if (orch_query_int(req, "upto", 0, (long long)json_array_size(rows),
                       (long long)json_array_size(rows), &upto, &e)) {
        aos_http_respond_err(req, &e);
        episode_free(j);
        return;
    }
    const json_t *spec = json_object_get(j->task, "spec");
    json_t *scope =
        json_pack("{s:o, s:{}, s:{s:s}}", "inputs",
                  json_object_get(spec, "inputs") ? json_incref(json_object_get(spec, "inputs"))
                                                  : json_object(),
                  "steps", "task", "trace_id", j->trace);
    json_t *frames = json_array();
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        const char *kind = json_string_value(json_object_get(r, "kind"));
        const char *st = json_string_value(json_object_get(r, "status"));
        json_array_append_new(
            frames,
            json_pack("{s:I, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O, s:O}", "frame",
                      (json_int_t)i + 1, "step", json_object_get(r, "step_id"), "kind",
                      json_object_get(r, "kind"), "attempt", json_object_get(r, "attempt"),
                      "status", json_object_get(r, "status"), "input", json_object_get(r, "input"),
                      "output", json_object_get(r, "output"), "error", json_object_get(r, "error"),
                      "started_at", json_object_get(r, "started_at"), "finished_at",
                      json_object_get(r, "finished_at")));
        if ((long long)i < upto && (!strcmp(st, "done") || !strcmp(st, "reused")))
            orch_scope_add_step(scope, kind, json_string_value(json_object_get(r, "step_id")),
                                json_object_get(r, "output"));
    }
    aos_http_respond_json(req, 200,
                          json_pack("{s:s, s:O, s:o, s:I, s:o}", "trace_id", j->trace, "status",
                                    json_object_get(j->task, "status"), "frames", frames, "upto",
                                    (json_int_t)upto, "scope", scope));
    episode_free(j);
}

int orch_route_replay(aos_http_req_t *req, void *data)
{
    episode_start(req, data, 0, replay_done, NULL, NULL);
    return 0;
}

/* ---- artifacts ------------------------------------------------------------------------ */

struct artifact {
    uv_work_t work;
    orch_waiter_t *w;
    char path[4200];
    char *data;
    size_t len;
    int code;
    char why[160];
};

static void artifact_read(uv_work_t *wk)
{
    struct artifact *a = wk->data;
    int fd = open(a->path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) || !S_ISREG(sb.st_mode)) {
        a->code = AOS_ENOTFOUND;
        snprintf(a->why, sizeof(a->why), "no such artifact");
    } else if ((size_t)sb.st_size > ARTIFACT_MAX) {
        a->code = AOS_ETOOBIG;
        snprintf(a->why, sizeof(a->why), "the artifact is larger than %u bytes", ARTIFACT_MAX);
    } else if (!(a->data = malloc((size_t)sb.st_size + 1))) {
        a->code = AOS_ENOMEM;
    } else {
        size_t got = 0;
        while (got < (size_t)sb.st_size) {
            ssize_t n = read(fd, a->data + got, (size_t)sb.st_size - got);
            if (n <= 0)
                break;
            got += (size_t)n;
        }
        a->len = got;
    }
    if (fd >= 0)
        close(fd);
}

static void artifact_done(uv_work_t *wk, int status)
{
    struct artifact *a = wk->data;
    aos_http_req_t *req = a->w->req;
    if (req) {
        if (a->code) {
            aos_http_respond_error(req, a->code, "%s", a->why[0] ? a->why : "unreadable");
        } else {
            const char *name = strrchr(a->path, '/') + 1;
            /* never rendered as a page of aosd's origin: a tool wrote it */
            aos_http_add_header(req, "Content-Security-Policy", "sandbox; default-src 'none'");
            aos_http_add_header(req, "X-Content-Type-Options", "nosniff");
            const char *listed, *served;
            artifact_types(name, &listed, &served);
            aos_http_respond(req, 200, served ? served : "application/octet-stream", a->data,
                             a->len);
        }
    }
    free(a->data);
    orch_waiter_free(a->w);
    free(a);
}

/* Reads the artifact name of trace on the thread pool and answers. */
static int artifact_start(aos_orch_t *o, aos_http_req_t *req, const char *trace, const char *name)
{
    struct artifact *a = calloc(1, sizeof(*a));
    if (!a || !(a->w = orch_waiter_new(req))) {
        free(a);
        return aos_http_respond_error(req, AOS_ENOMEM, "out of memory");
    }
    snprintf(a->path, sizeof(a->path), "%s/workspaces/%s/%s", o->data_dir, trace, name);
    a->work.data = a;
    if (uv_queue_work(o->cfg.loop, &a->work, artifact_read, artifact_done)) {
        orch_waiter_free(a->w);
        free(a);
        return aos_http_respond_error(req, AOS_EUNAVAIL, "busy");
    }
    return 0;
}

/* A caller let in by a project grant: the task's project decides. */
static void artifact_checked(int status, const aos_err_t *err, void *arg)
{
    struct episode_job *j = arg;
    aos_http_req_t *req = j->w->req;
    if (req && status)
        aos_http_respond_err(req, err);
    else if (req && may_read(j, req))
        artifact_start(j->o, req, j->trace, json_string_value(j->arg));
    episode_free(j);
}

int orch_route_artifact(aos_http_req_t *req, void *data)
{
    aos_orch_t *o = data;
    const char *trace = aos_http_param(req, "trace"), *name = aos_http_param(req, "name");
    if (!orch_trace_ok(trace))
        return aos_http_respond_error(req, AOS_EINVAL, "a trace id is 32 lowercase hex digits");
    if (!name || !*name || name[0] == '.' || strchr(name, '/') || strlen(name) > 255)
        return aos_http_respond_error(req, AOS_EINVAL, "an artifact is a plain file name");
    if (aos_auth_req_check_task(req, AOS_PERM_READ, trace, NULL) == 0)
        return artifact_start(o, req, trace, name);
    struct episode_job *j = episode_start(req, o, 0, artifact_checked, NULL, NULL);
    if (j)
        j->arg = json_string(name);
    return 0;
}

/* ---- re-run ------------------------------------------------------------------------- */

static void rerun_accepted(orch_tx_t *tx)
{
    orch_waiter_t *w = tx->reply_data;
    if (w->req) {
        if (tx->status)
            aos_http_respond_err(w->req, &tx->err);
        else
            aos_http_respond_json(w->req, 201,
                                  json_pack("{s:s, s:I, s:s, s:s}", "trace_id", tx->task->trace_id,
                                            "job_id", (json_int_t)tx->job_id, "rerun_of", w->text,
                                            "from_step",
                                            json_string_value(json_object_get(w->body, "from"))));
    }
    orch_waiter_free(w);
}

static void rerun_read(int status, const aos_err_t *err, void *arg)
{
    struct episode_job *j = arg;
    aos_http_req_t *req = j->w->req;
    aos_err_t e = {0, ""};
    if (!req || status) {
        if (req)
            aos_http_respond_err(req, err);
        episode_free(j);
        return;
    }
    const json_t *plan = json_object_get(json_object_get(j->task, "state"), "plan");
    const json_t *steps = json_object_get(plan, "steps");
    const char *from = json_string_value(json_object_get(j->arg, "from_step"));
    if (!from && json_array_size(steps))
        from = json_string_value(json_object_get(json_array_get(steps, 0), "id"));
    int found = 0;
    size_t i;
    json_t *s;
    json_array_foreach(steps, i, s)
    {
        if (from && !strcmp(json_string_value(json_object_get(s, "id")), from))
            found = 1;
    }
    if (!plan || !found) {
        aos_http_respond_error(req, AOS_EINVAL, "'from_step': no step '%.64s' in the plan of %s",
                               from ? from : "", j->trace);
        episode_free(j);
        return;
    }
    json_t *spec = json_deep_copy(json_object_get(j->task, "spec"));
    /* a re-run is a new task of the caller's: its project, tools and
     * secrets are checked as a submission's are */
    if (orch_project_of_submitter(req, spec, &e) || orch_tools_of_submitter(req, spec, &e) ||
        orch_env_of_submitter(req, spec, &e)) {
        aos_http_respond_err(req, &e);
        json_decref(spec);
        episode_free(j);
        return;
    }
    const json_t *inputs = json_object_get(j->arg, "inputs");
    if (inputs) {
        json_t *merged = json_deep_copy(json_object_get(spec, "inputs"));
        if (!merged)
            merged = json_object();
        json_object_update(merged, (json_t *)inputs);
        json_object_set_new(spec, "inputs", merged);
    }
    /* the plan runs as it ran; the new inputs are checked against it */
    json_object_del(spec, "dsl");
    json_object_del(spec, "goal");
    json_object_set_new(spec, "plan", json_deep_copy(plan));
    json_object_del(spec, "files");
    json_t *np = orch_plan(j->o, spec, NULL, &e);
    orch_waiter_t *w = j->w;
    char actor[64];
    orch_actor(req, actor, sizeof(actor));
    if (np) {
        j->w = NULL; /* the accept's reply owns it now */
        snprintf(w->text, sizeof(w->text), "%s", j->trace);
        w->body = json_pack("{s:s}", "from", from);
        if (orch_accept(j->o, spec, np, actor, j->trace, from, j->task, NULL, rerun_accepted, w,
                        &e)) { /* takes spec */
            j->w = w;
            aos_http_respond_err(req, &e);
        }
    } else {
        aos_http_respond_err(req, &e);
        json_decref(spec);
    }
    if (j->w == NULL) {
        json_decref(j->task);
        json_decref(j->arg);
        free(j);
        return;
    }
    episode_free(j);
}

int orch_route_rerun(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    json_t *in = aos_http_body_json(req, &err);
    if (!in)
        return aos_http_respond_err(req, &err);
    json_error_t je;
    const char *from = NULL;
    json_t *inputs = NULL;
    if (json_unpack_ex(in, &je, JSON_STRICT, "{s?s, s?o}", "from_step", &from, "inputs", &inputs) ||
        (inputs && !json_is_object(inputs))) {
        json_decref(in);
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "body must be {\"from_step\": id, \"inputs\": {...}}");
    }
    struct episode_job *j = episode_start(req, data, 0, rerun_read, NULL, NULL);
    if (j)
        j->arg = in;
    else
        json_decref(in);
    return 0;
}
