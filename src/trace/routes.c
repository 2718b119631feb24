/* routes.c - GET /api/traces/:traceId (a Viewer): the spans of a trace as
 * a tree, a page at a time. Read on the trace's task ("task:<id>"), or on
 * the project of the task whose trace it is: a caller let in by a project
 * grant gets a 403 for any other trace (of another project's task, of a
 * task of no project, of no task), before anything of it is sent.
 *
 *   ?limit=N     spans in the page, 1..10000 (default 1000)
 *   ?cursor=C    the page after the one that gave next_cursor C
 *
 * Answer: {trace_id, span_count (all the trace's spans), spans (the page's
 * roots - a span whose parent is not in the page: the trace's root, an
 * orphan whose parent is not stored, the child of a span on an earlier
 * page - each with its children, in start order), resources (who made
 * them: [{id, attributes}]), next_cursor (null on the last page)}. A trace
 * with no span is a 404, an id that is not 32 hex digits (or all zeros) a
 * 400.
 *
 * The work is split three ways so that the loop only parses the request
 * and sends the answer: the spans queued in memory are flushed first, so
 * the page sees every span that ended before the request (the store's
 * worker runs jobs in order); the worker reads the page and the resources;
 * libuv's thread pool builds the tree and its JSON text. */
#include "trace/internal.h"
#include "auth/auth.h"

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESOURCES_MAX 16 /* distinct resources named in one page, at most listed */

struct query {
    aos_trace_t *tr;
    aos_http_req_t *req; /* NULL once the client left */
    char trace_id[AOS_TRACE_ID_LEN + 1];
    int64_t after_start, after_id;
    int limit;
    int by_project; /* the caller may read the trace only through its task's project */
    /* filled by the worker */
    char *project; /* by_project: the task's project (NULL: none, or no task) */
    aos_store_span_page_t page;
    int64_t total;
    int more; /* a page follows */
    int64_t res_id[RESOURCES_MAX];
    char *res_text[RESOURCES_MAX];
    int nres;
    json_t *logs; /* the trace's first log lines (AOS_STORE_LIST_MAX + 1 read), or NULL */
    /* filled by the thread pool */
    char *body;
    size_t body_len;
    uv_work_t work;
};

static void query_free(struct query *q)
{
    aos_store_span_page_release(&q->page);
    json_decref(q->logs);
    free(q->project);
    for (int i = 0; i < q->nres; i++)
        free(q->res_text[i]);
    free(q->body);
    free(q);
}

static void query_closed(aos_http_req_t *req, int aborted, void *data)
{
    struct query *q = data;
    q->req = NULL;
}

/* Cursors are opaque: base64url of "<start ns>:<id>" of the page's last span. */
void aos_trace_cursor_encode(int64_t start, int64_t id, char *out, size_t cap)
{
    char raw[48];
    int n = snprintf(raw, sizeof(raw), "%lld:%lld", (long long)start, (long long)id);
    sodium_bin2base64(out, cap, (const unsigned char *)raw, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

int aos_trace_cursor_decode(const char *s, int64_t *start, int64_t *id)
{
    unsigned char raw[48];
    size_t n = 0;
    if (strlen(s) > 64 || sodium_base642bin(raw, sizeof(raw) - 1, s, strlen(s), NULL, &n, NULL,
                                            sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0)
        return AOS_EINVAL;
    raw[n] = '\0';
    char *colon, *end;
    errno = 0;
    long long a = strtoll((const char *)raw, &colon, 10);
    if (errno || colon == (char *)raw || *colon != ':')
        return AOS_EINVAL;
    long long b = strtoll(colon + 1, &end, 10);
    if (errno || end == colon + 1 || *end || b < 1)
        return AOS_EINVAL;
    *start = a;
    *id = b;
    return 0;
}

/* ---- the worker: the page, its count and its resources ---------------------- */

static int query_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct query *q = arg;
    if (q->by_project) { /* who may read it is decided first (query_done) */
        int rc = aos_store_task_project(st, q->trace_id, &q->project, err);
        if (rc == AOS_ENOTFOUND || (rc == 0 && !q->project))
            return 0; /* no task, or one of no project: refused */
        if (rc)
            return rc;
    }
    int rc = aos_store_spans_count(st, q->trace_id, &q->total, err);
    if (rc == 0 && q->total)
        rc = aos_store_spans_trace(st, q->trace_id, q->after_start, q->after_id, q->limit + 1,
                                   &q->page, err);
    if (rc < 0)
        return rc;
    if (q->page.n > (size_t)q->limit) {
        q->more = 1;
        q->page.n = (size_t)q->limit;
    }
    for (size_t i = 0; i < q->page.n; i++) {
        int64_t id = q->page.rows[i].resource_id;
        int seen = !id;
        for (int k = 0; k < q->nres && !seen; k++)
            seen = q->res_id[k] == id;
        if (seen || q->nres == RESOURCES_MAX)
            continue;
        q->res_id[q->nres] = id;
        if (aos_store_span_resource_get(st, id, &q->res_text[q->nres], err) == 0)
            q->nres++; /* one retention deleted meanwhile is left out */
    }
    /* its log lines, oldest first: the spans' own go into the tree */
    aos_store_logs_filter_t f = {
        .trace_id = q->trace_id, .ascending = 1, .limit = AOS_STORE_LIST_MAX + 1};
    aos_err_t lerr = {0, ""};
    if (q->page.n && aos_store_logs_query(st, &f, &q->logs, &lerr) < 0) {
        json_decref(q->logs); /* the spans are still worth sending */
        q->logs = NULL;
    }
    return 0;
}

/* The page's log lines as JSON texts (thread pool): by_span gets, per span
 * of the page that has lines, the text of its array (free them with
 * logs_release); *others the rest. */
static void logs_split(const struct query *q, aos_map_t *by_span, char **others, int *truncated)
{
    aos_map_t in_page, arrays; /* span ids of the page; span id -> json array */
    aos_map_init(&in_page);
    aos_map_init(&arrays);
    json_t *rest = json_array();
    size_t n = json_array_size(q->logs);
    *truncated = n > AOS_STORE_LIST_MAX;
    for (size_t i = 0; i < q->page.n; i++)
        aos_map_put(&in_page, q->page.rows[i].span_id, (void *)1);
    for (size_t i = 0; i < n && i < AOS_STORE_LIST_MAX; i++) {
        json_t *line = json_array_get(q->logs, i);
        const char *sid = json_string_value(json_object_get(line, "span_id"));
        json_t *to = rest;
        if (sid && aos_map_get(&in_page, sid)) {
            if (!(to = aos_map_get(&arrays, sid))) {
                to = json_array();
                if (!to || aos_map_put(&arrays, sid, to)) {
                    json_decref(to);
                    to = rest;
                }
            }
        }
        json_array_append(to, line);
    }
    aos_map_iter_t it;
    const char *k;
    void *v;
    aos_map_iter_init(&it);
    while (aos_map_iter_next(&arrays, &it, &k, NULL, &v)) {
        char *text = json_dumps(v, JSON_COMPACT);
        if (text)
            aos_map_put(by_span, k, text);
        json_decref(v);
    }
    *others = rest ? json_dumps(rest, JSON_COMPACT) : NULL;
    json_decref(rest);
    aos_map_release(&in_page);
    aos_map_release(&arrays);
}

static void logs_release(aos_map_t *by_span)
{
    aos_map_iter_t it;
    void *v;
    aos_map_iter_init(&it);
    while (aos_map_iter_next(by_span, &it, NULL, NULL, &v))
        free(v);
    aos_map_release(by_span);
}

/* ---- the thread pool: tree and text -------------------------------------------- */

static void render(uv_work_t *w)
{
    struct query *q = w->data;
    aos__trace_resource_t res[RESOURCES_MAX];
    for (int i = 0; i < q->nres; i++)
        res[i] = (aos__trace_resource_t){q->res_id[i], q->res_text[i]};
    char cursor[96];
    if (q->more && q->page.n) {
        const aos_store_span_t *last = &q->page.rows[q->page.n - 1];
        aos_trace_cursor_encode(last->start_ns, last->id, cursor, sizeof(cursor));
    }
    aos_map_t by_span;
    aos_map_init(&by_span);
    aos__trace_logs_t logs = {&by_span, NULL, 0};
    char *others = NULL;
    logs_split(q, &by_span, &others, &logs.truncated);
    logs.others = others;
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = aos__trace_render_logs(&b, q->trace_id, q->total, q->page.rows, q->page.n, res,
                                    (size_t)q->nres, q->more && q->page.n ? cursor : NULL, &logs);
    logs_release(&by_span);
    free(others);
    if (rc == 0) {
        q->body_len = b.len;
        q->body = aos_buf_detach(&b, NULL);
    }
    aos_buf_release(&b);
}

static void rendered(uv_work_t *w, int status)
{
    struct query *q = w->data;
    if (q->req) {
        aos_http_on_close(q->req, NULL, NULL);
        if (q->body)
            aos_http_respond(q->req, 200, "application/json", q->body, q->body_len);
        else
            aos_http_respond_error(q->req, AOS_ENOMEM, "unable to build the trace");
    }
    query_free(q);
}

static void query_done(int status, const aos_err_t *err, void *arg)
{
    struct query *q = arg;
    if (!q->req) {
        query_free(q);
        return;
    }
    if (status) {
        aos_http_on_close(q->req, NULL, NULL);
        aos_http_respond_err(q->req, err);
        query_free(q);
        return;
    }
    if (q->by_project && aos_auth_req_check_task(q->req, AOS_PERM_READ, q->trace_id, q->project)) {
        aos_http_on_close(q->req, NULL, NULL);
        aos_http_respond_error(q->req, AOS_EFORBIDDEN, "this token may not read trace %s",
                               q->trace_id);
        query_free(q);
        return;
    }
    if (!q->total) {
        aos_http_on_close(q->req, NULL, NULL);
        aos_http_respond_error(q->req, AOS_ENOTFOUND, "no spans of trace %s", q->trace_id);
        query_free(q);
        return;
    }
    q->work.data = q;
    if (uv_queue_work(aos__trace_loop(q->tr), &q->work, render, rendered) != 0) {
        aos_http_on_close(q->req, NULL, NULL);
        aos_http_respond_error(q->req, AOS_EUNAVAIL, "unable to build the trace now");
        query_free(q);
    }
}

/* ---- the route ------------------------------------------------------------------ */

static int get_trace(aos_http_req_t *req, void *data)
{
    aos_trace_t *tr = data;
    const char *id = aos_http_param(req, "traceId");
    char tid[AOS_TRACE_ID_LEN + 1];
    size_t n = id ? strlen(id) : 0;
    if (n == AOS_TRACE_ID_LEN) {
        for (size_t i = 0; i < n; i++)
            tid[i] = id[i] >= 'A' && id[i] <= 'F' ? (char)(id[i] - 'A' + 'a') : id[i];
        tid[n] = '\0';
    }
    if (n != AOS_TRACE_ID_LEN || !aos_tracectx_id_valid(tid, n))
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "traceId must be 32 hexadecimal digits, not all zeros");
    long limit = AOS__TRACE_PAGE;
    const char *ls = aos_http_query(req, "limit");
    if (ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (!*ls || *end || limit < 1 || limit > AOS__TRACE_PAGE_MAX)
            return aos_http_respond_error(req, AOS_EINVAL, "limit must be from 1 to %d",
                                          AOS__TRACE_PAGE_MAX);
    }
    int64_t after_start = INT64_MIN, after_id = 0;
    const char *cs = aos_http_query(req, "cursor");
    if (cs && aos_trace_cursor_decode(cs, &after_start, &after_id) < 0)
        return aos_http_respond_error(req, AOS_EINVAL, "cursor is not one this server gave");
    struct query *q = calloc(1, sizeof(*q));
    if (!q)
        return AOS_ENOMEM;
    q->tr = tr;
    q->req = req;
    memcpy(q->trace_id, tid, sizeof(tid));
    q->after_start = after_start;
    q->after_id = after_id;
    q->limit = (int)limit;
    char res[AOS_TRACE_ID_LEN + 8];
    snprintf(res, sizeof(res), "task:%s", tid);
    /* let in by a project grant (the route's "|project"): the task's project decides */
    q->by_project = aos_auth_req_check(req, AOS_PERM_READ, res) != 0;
    aos__trace_flush(tr); /* spans that ended before this request are read */
    int rc = aos_store_submit(aos__trace_store(tr), query_run, query_done, q);
    if (rc < 0) {
        free(q);
        return aos_http_respond_error(req, rc, "unable to read the trace now");
    }
    aos_http_on_close(req, query_closed, q);
    return 0;
}

static const aos_http_route_t routes[] = {
    {"GET", "/api/traces/:traceId", AOS_PERM_READ, get_trace, 0, "task:{traceId}|project"},
};

int aos_trace_add_routes(aos_trace_t *tr, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), tr);
}
