/* search.c - GET /api/traces (search) and GET /api/topology (a Viewer),
 * both over the spans that started in a window, read newest first through
 * the start-time index (migration 0022), and both bounded: a search
 * examines at most SCAN_MAX spans per request, a topology at most
 * TOPO_MAX, whatever the window holds.
 *
 * GET /api/traces?from=&to=&status=&service=&q=&limit=&cursor=
 *   from, to   unix seconds (default: the last hour)
 *   status     error: traces with a span whose status is ERROR; ok: none
 *   service    the service.name of the resource of the trace's entry span
 *   q          a trace id (32 hex digits), or a piece of the entry span's
 *              name (ASCII case ignored)
 *   limit      traces in the page, 1..100 (default 20)
 *   cursor     the page after the one that gave next_cursor
 * A trace is found by its entry spans: a span without a parent, or whose
 * parent is remote (a caller's traceparent); the newest entry span of a
 * trace in the page stands for it (a trace entered twice in the window may
 * show again on a later page). Answer: {traces: [{trace_id, span_id, name,
 * service, kind, start_time, start_unix_nano, duration_ms, status,
 * span_count, error_count}], next_cursor, scanned}; next_cursor is set when
 * the page is full or the scan stopped at its bound (then the page may be
 * short, even empty: follow the cursor).
 *
 * GET /api/topology?from=&to=
 *   {from, to, spans (examined), truncated (the window held more than
 *   TOPO_MAX spans: the newest were read), nodes: [{id, type, name}],
 *   edges: [{source, target, calls, errors, error_rate, p50_ms, p95_ms,
 *   p99_ms}]}. Node types: client (who called the gateway: aos.principal,
 *   "token:<name>", "user:<name>", "anonymous"), service (a resource's
 *   service.name), agent (gen_ai.agent.name on a span or an ancestor in
 *   the window; also the caller whose token was minted for an agent,
 *   aos.principal "agent:<name>"), mcp_server
 *   (aos.mcp.server, or the server part of a "<server>__<tool>" name),
 *   tool ("<server>/<tool>"), model (gen_ai.request.model of a chat span).
 *   Edges: the caller (the span's client, else the nearest agent above
 *   the span, else the service) to the MCP server of every MCP span (the
 *   gateway's SERVER spans and the CLIENT spans of tasks' tool calls), the
 *   server to the
 *   tool of tools/call; the caller to the model of a chat span; the
 *   service of a parent to the service of its child where they differ; the
 *   caller to an agent whose span starts under it. Latency percentiles are
 *   the nearest rank of the spans' durations.
 *
 * The store's worker reads the rows a chunk per job (a search SCAN_CHUNK,
 * counting each candidate trace's spans; a topology TOPO_CHUNK), so that
 * other jobs run between the chunks; libuv's thread pool builds the
 * topology. */
#include "monitor/internal.h"
#include "buf/buf.h"
#include "map/map.h"
#include "trace/trace.h"
#include "tracectx/tracectx.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <time.h>

#define SEARCH_DEFAULT          20
#define SEARCH_MAX              100
#define SCAN_CHUNK              2000
#define SCAN_MAX                20000
#define TOPO_MAX                20000
#define RESOURCES_MAX           10000
#define SPAN_FLAG_PARENT_REMOTE 0x200 /* OTLP SpanFlags: the parent is remote */

/* ---- shared --------------------------------------------------------------------- */

static void iso(int64_t ns, char out[40])
{
    time_t s = (time_t)(ns / 1000000000);
    struct tm tm;
    char day[24] = "";
    gmtime_r(&s, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%03dZ", day,
             (int)((ns % 1000000000 + 1000000000) % 1000000000 / 1000000));
}

/* resource id -> its service.name, from aos_store_span_resources' list */
static void services_index(aos_map_t *m, const json_t *list)
{
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        const char *svc = json_string_value(json_object_get(json_array_get(r, 1), "service.name"));
        if (svc)
            aos_map_put_u64(m, (uint64_t)json_integer_value(json_array_get(r, 0)), (void *)svc);
    }
}

static const char *service_of(const aos_map_t *m, int64_t resource_id)
{
    const char *s = resource_id ? aos_map_get_u64(m, (uint64_t)resource_id) : NULL;
    return s ? s : "unknown";
}

/* from/to (unix seconds) into nanoseconds; the last hour by default. */
static int window(aos_http_req_t *req, int64_t *from_ns, int64_t *to_ns)
{
    int64_t to = (int64_t)time(NULL), from;
    const char *fs = aos_http_query(req, "from"), *ts = aos_http_query(req, "to");
    if (ts && aos__monitor_time(ts, &to))
        return aos_http_respond_error(req, AOS_EINVAL, "to must be a time in unix seconds");
    from = to - 3600;
    if (fs && aos__monitor_time(fs, &from))
        return aos_http_respond_error(req, AOS_EINVAL, "from must be a time in unix seconds");
    if (from > to)
        return aos_http_respond_error(req, AOS_EINVAL, "from must not be after to");
    *from_ns = from * 1000000000;
    *to_ns = to * 1000000000 + 999999999;
    return 1;
}

static const char *status_name(int code)
{
    return code == 2 ? "error" : code == 1 ? "ok" : "unset";
}

static const char *kind_name(int kind)
{
    static const char *const k[] = {"unspecified", "internal", "server",
                                    "client",      "producer", "consumer"};
    return kind >= 0 && kind <= 5 ? k[kind] : "unspecified";
}

/* ---- search --------------------------------------------------------------------- */

struct search {
    aos__monitor_env_t *env;
    aos_http_req_t *req; /* NULL once the client left */
    int64_t from_ns, to_ns;
    int limit;
    int status; /* -1 any, 1 ok, 2 error */
    char *service, *q;
    int q_trace; /* q is a trace id */
    /* by the worker, a chunk per job */
    json_t *resources; /* read by the first job */
    aos_map_t svc;     /* resource id -> service.name (in resources) */
    aos_map_t seen;    /* trace ids in the page */
    json_t *traces;
    int64_t scanned;
    int64_t bs, bi; /* the position of the last span examined */
    int full, end;
    int more;
    int64_t next_start, next_id;
};

static void search_free(struct search *s)
{
    aos_map_release(&s->svc);
    aos_map_release(&s->seen);
    json_decref(s->resources);
    json_decref(s->traces);
    free(s->service);
    free(s->q);
    free(s);
}

static int contains_nocase(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; *hay; hay++) {
        size_t i = 0;
        while (i < n && hay[i] &&
               tolower((unsigned char)hay[i]) == tolower((unsigned char)needle[i]))
            i++;
        if (i == n)
            return 1;
    }
    return n == 0;
}

/* One chunk of the window (SCAN_CHUNK spans) per store job, so that a
 * search that examines many spans lets the worker's other jobs (span and
 * log writes) run between its chunks. */
static int search_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct search *s = arg;
    int rc = 0;
    if (!s->resources) {
        if ((rc = aos_store_span_resources(st, RESOURCES_MAX, &s->resources, err)))
            return rc;
        services_index(&s->svc, s->resources);
        if (!(s->traces = json_array()))
            return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    aos_store_span_page_t pg;
    rc = aos_store_spans_window(st, s->from_ns, s->to_ns, s->bs, s->bi, SCAN_CHUNK, &pg, err);
    for (size_t i = 0; !rc && i < pg.n && !s->full; i++) {
        const aos_store_span_t *r = &pg.rows[i];
        s->scanned++;
        s->bs = r->start_ns;
        s->bi = r->id;
        if (r->parent_span_id && !(r->flags & SPAN_FLAG_PARENT_REMOTE))
            continue;
        const char *service = service_of(&s->svc, r->resource_id);
        if (s->service && strcmp(service, s->service) != 0)
            continue;
        if (s->q && (s->q_trace ? strcmp(r->trace_id, s->q) != 0 : !contains_nocase(r->name, s->q)))
            continue;
        if (aos_map_get(&s->seen, r->trace_id))
            continue;
        int64_t n = 0, errors = 0;
        if ((rc = aos_store_spans_stats(st, r->trace_id, &n, &errors, err)))
            break;
        if ((s->status == 2 && !errors) || (s->status == 1 && errors))
            continue;
        aos_map_put(&s->seen, r->trace_id, s);
        char start[40];
        iso(r->start_ns, start);
        json_array_append_new(
            s->traces, json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:I, s:f, s:s, s:I, s:I}",
                                 "trace_id", r->trace_id, "span_id", r->span_id, "name", r->name,
                                 "service", service, "kind", kind_name(r->kind), "start_time",
                                 start, "start_unix_nano", (json_int_t)r->start_ns, "duration_ms",
                                 (double)(r->end_ns - r->start_ns) / 1e6, "status",
                                 errors ? "error" : status_name(r->status_code), "span_count",
                                 (json_int_t)n, "error_count", (json_int_t)errors));
        s->full = (int)json_array_size(s->traces) >= s->limit;
    }
    s->end = !rc && pg.n < SCAN_CHUNK && !s->full;
    aos_store_span_page_release(&pg);
    return rc;
}

static void search_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    struct search *s = data;
    s->req = NULL;
}

static void search_done(int status, const aos_err_t *err, void *arg)
{
    struct search *s = arg;
    if (!status && s->req && !s->full && !s->end && s->scanned < SCAN_MAX &&
        aos_store_submit(s->env->store, search_run, search_done, s) == 0)
        return;               /* the next chunk */
    if (!status && !s->end) { /* full, or stopped at the bound: go on from here */
        s->more = 1;
        s->next_start = s->bs;
        s->next_id = s->bi;
    }
    if (s->req) {
        aos_http_on_close(s->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(s->req, err);
        } else {
            char cursor[96];
            if (s->more)
                aos_trace_cursor_encode(s->next_start, s->next_id, cursor, sizeof(cursor));
            aos_http_respond_json(s->req, 200,
                                  json_pack("{s:O, s:s?, s:I}", "traces", s->traces, "next_cursor",
                                            s->more ? cursor : NULL, "scanned",
                                            (json_int_t)s->scanned));
        }
    }
    search_free(s);
}

static int get_traces(aos_http_req_t *req, void *data)
{
    aos__monitor_env_t *env = data;
    int64_t from_ns = 0, to_ns = 0;
    int rc = window(req, &from_ns, &to_ns);
    if (rc <= 0)
        return rc;
    long limit = SEARCH_DEFAULT;
    const char *ls = aos_http_query(req, "limit");
    if (ls) {
        char *end;
        limit = strtol(ls, &end, 10);
        if (!*ls || *end || limit < 1 || limit > SEARCH_MAX)
            return aos_http_respond_error(req, AOS_EINVAL, "limit must be from 1 to %d",
                                          SEARCH_MAX);
    }
    int st = -1;
    const char *ss = aos_http_query(req, "status");
    if (ss && !strcmp(ss, "error"))
        st = 2;
    else if (ss && !strcmp(ss, "ok"))
        st = 1;
    else if (ss && *ss)
        return aos_http_respond_error(req, AOS_EINVAL, "status must be ok or error");
    int64_t bs = INT64_MAX, bi = INT64_MAX;
    const char *cs = aos_http_query(req, "cursor");
    if (cs && aos_trace_cursor_decode(cs, &bs, &bi) < 0)
        return aos_http_respond_error(req, AOS_EINVAL, "cursor is not one this server gave");
    const char *service = aos_http_query(req, "service"), *q = aos_http_query(req, "q");
    if ((service && strlen(service) > 256) || (q && strlen(q) > 256))
        return aos_http_respond_error(req, AOS_EINVAL, "service and q are at most 256 bytes");
    struct search *s = calloc(1, sizeof(*s));
    if (!s)
        return AOS_ENOMEM;
    *s = (struct search){.env = env,
                         .req = req,
                         .from_ns = from_ns,
                         .to_ns = to_ns,
                         .limit = (int)limit,
                         .status = st,
                         .bs = bs,
                         .bi = bi};
    aos_map_init(&s->svc);
    aos_map_init(&s->seen);
    if (service && *service)
        s->service = strdup(service);
    if (q && *q) {
        s->q = strdup(q);
        if (s->q && strlen(s->q) == AOS_TRACE_ID_LEN) {
            char lower[AOS_TRACE_ID_LEN + 1];
            for (size_t i = 0; i <= AOS_TRACE_ID_LEN; i++)
                lower[i] = (char)tolower((unsigned char)s->q[i]);
            if (aos_tracectx_id_valid(lower, AOS_TRACE_ID_LEN)) {
                memcpy(s->q, lower, sizeof(lower));
                s->q_trace = 1;
            }
        }
    }
    if ((service && *service && !s->service) || (q && *q && !s->q)) {
        search_free(s);
        return AOS_ENOMEM;
    }
    if ((rc = aos_store_submit(env->store, search_run, search_done, s)) < 0) {
        search_free(s);
        return aos_http_respond_error(req, rc, "unable to search the traces now");
    }
    aos_http_on_close(req, search_closed, s);
    return 0;
}

/* ---- topology ------------------------------------------------------------------- */

#define TOPO_CHUNK 5000 /* spans read per store job */
#define TOPO_PAGES ((TOPO_MAX + 1 + TOPO_CHUNK - 1) / TOPO_CHUNK)

struct topo {
    aos__monitor_env_t *env;
    aos_http_req_t *req;
    int64_t from_ns, to_ns;
    aos_store_span_page_t pages[TOPO_PAGES]; /* a chunk per store job */
    int npages;
    size_t total;   /* rows in pages */
    int64_t bs, bi; /* the position of the last row read */
    int end;        /* the window has no more */
    json_t *resources;
    int truncated;
    const aos_store_span_t **rows; /* by the thread pool: every row, in order */
    char *body;                    /* by the thread pool */
    size_t body_len;
    uv_work_t work;
};

static void topo_free(struct topo *t)
{
    for (int i = 0; i < t->npages; i++)
        aos_store_span_page_release(&t->pages[i]);
    free(t->rows);
    json_decref(t->resources);
    free(t->body);
    free(t);
}

/* One chunk of the window per store job (TOPO_MAX + 1 rows in all, to
 * learn whether there were more), so that other jobs run in between. */
static int topo_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct topo *t = arg;
    int rc = 0;
    if (!t->resources && (rc = aos_store_span_resources(st, RESOURCES_MAX, &t->resources, err)))
        return rc;
    size_t want = TOPO_MAX + 1 - t->total;
    if (want > TOPO_CHUNK)
        want = TOPO_CHUNK;
    aos_store_span_page_t *pg = &t->pages[t->npages++];
    rc = aos_store_spans_window(st, t->from_ns, t->to_ns, t->bs, t->bi, (int)want, pg, err);
    if (rc)
        return rc;
    t->total += pg->n;
    if (pg->n) {
        t->bs = pg->rows[pg->n - 1].start_ns;
        t->bi = pg->rows[pg->n - 1].id;
    }
    t->end = pg->n < want;
    return 0;
}

struct edge {
    char *source, *target;
    int64_t calls, errors;
    double *ms;
    size_t n, cap;
};

struct graph {
    aos_map_t nodes; /* id -> json node */
    aos_map_t edges; /* source \x01 target -> struct edge */
    json_t *node_list;
    struct edge **edge_list;
    size_t nedges, cap;
};

static const char *node(struct graph *g, const char *type, const char *name, char *id, size_t cap)
{
    snprintf(id, cap, "%s:%s", type, name);
    if (!aos_map_get(&g->nodes, id)) {
        json_t *n = json_pack("{s:s, s:s, s:s}", "id", id, "type", type, "name", name);
        if (n && aos_map_put(&g->nodes, id, n) == 0)
            json_array_append_new(g->node_list, n);
        else
            json_decref(n);
    }
    return id;
}

static void edge_add(struct graph *g, const char *source, const char *target, double ms, int error)
{
    char key[1200];
    snprintf(key, sizeof(key), "%s\x01%s", source, target);
    struct edge *e = aos_map_get(&g->edges, key);
    if (!e) {
        if (g->nedges == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 64;
            struct edge **l = realloc(g->edge_list, cap * sizeof(*l));
            if (!l)
                return;
            g->edge_list = l;
            g->cap = cap;
        }
        if (!(e = calloc(1, sizeof(*e))))
            return;
        e->source = strdup(source);
        e->target = strdup(target);
        if (!e->source || !e->target || aos_map_put(&g->edges, key, e)) {
            free(e->source);
            free(e->target);
            free(e);
            return;
        }
        g->edge_list[g->nedges++] = e;
    }
    e->calls++;
    e->errors += error != 0;
    if (e->n == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 16;
        double *ms2 = realloc(e->ms, cap * sizeof(double));
        if (!ms2)
            return;
        e->ms = ms2;
        e->cap = cap;
    }
    e->ms[e->n++] = ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double nearest_rank(const double *v, size_t n, double q)
{
    if (!n)
        return 0;
    size_t k = (size_t)ceil(q * (double)n);
    return v[k ? k - 1 : 0];
}

#define SEP "__" /* the gateway's "<server>__<tool>" */

static void topo_build(uv_work_t *w)
{
    struct topo *t = w->data;
    size_t n = t->total > TOPO_MAX ? TOPO_MAX : t->total;
    t->truncated = t->total > TOPO_MAX;
    const aos_store_span_t **rows = t->rows = calloc(n ? n : 1, sizeof(*rows));
    size_t k = 0;
    for (int p = 0; rows && p < t->npages; p++)
        for (size_t i = 0; i < t->pages[p].n && k < n; i++)
            rows[k++] = &t->pages[p].rows[i];
    n = k; /* every row is set */
    aos_map_t svc, by_id;
    aos_map_init(&svc);
    aos_map_init(&by_id);
    services_index(&svc, t->resources);
    json_t **attrs = calloc(n ? n : 1, sizeof(json_t *));
    size_t *index = calloc(n ? n : 1, sizeof(size_t)); /* what by_id points into */
    struct graph g = {.node_list = json_array()};
    aos_map_init(&g.nodes);
    aos_map_init(&g.edges);
    if (!rows || !attrs || !index || !g.node_list)
        goto out;
    for (size_t i = 0; i < n; i++) {
        const aos_store_span_t *r = rows[i];
        attrs[i] = r->attributes ? json_loads(r->attributes, 0, NULL) : NULL;
        char key[AOS_TRACE_ID_LEN + AOS_SPAN_ID_LEN + 2];
        snprintf(key, sizeof(key), "%s/%s", r->trace_id, r->span_id);
        index[i] = i;
        aos_map_put(&by_id, key, &index[i]);
    }
    for (size_t i = 0; i < n; i++) {
        const aos_store_span_t *r = rows[i];
        const json_t *a = attrs[i];
        double ms = (double)(r->end_ns - r->start_ns) / 1e6;
        int error = r->status_code == 2;
        const char *service = service_of(&svc, r->resource_id);
        /* the parent in the window, and the caller: the nearest agent above
         * (the parent's chain), else the span's service */
        ssize_t parent = -1;
        if (r->parent_span_id) {
            char key[AOS_TRACE_ID_LEN + AOS_SPAN_ID_LEN + 2];
            snprintf(key, sizeof(key), "%s/%s", r->trace_id, r->parent_span_id);
            const size_t *at = aos_map_get(&by_id, key);
            parent = at ? (ssize_t)*at : -1;
        }
        const char *agent = NULL;
        ssize_t p = parent;
        for (int depth = 0; p >= 0 && depth < 64 && !agent; depth++) {
            agent = json_string_value(json_object_get(attrs[p], "gen_ai.agent.name"));
            const aos_store_span_t *pr = rows[p];
            ssize_t up = -1;
            if (pr->parent_span_id) {
                char key[AOS_TRACE_ID_LEN + AOS_SPAN_ID_LEN + 2];
                snprintf(key, sizeof(key), "%s/%s", pr->trace_id, pr->parent_span_id);
                const size_t *at = aos_map_get(&by_id, key);
                up = at ? (ssize_t)*at : -1;
            }
            p = up;
        }
        char caller[600], target[600];
        if (agent)
            node(&g, "agent", agent, caller, sizeof(caller));
        else
            node(&g, "service", service, caller, sizeof(caller));
        node(&g, "service", service, target, sizeof(target)); /* every service is a node */
        /* an agent's own span: the caller starts it */
        const char *self_agent = json_string_value(json_object_get(a, "gen_ai.agent.name"));
        if (self_agent && (!agent || strcmp(self_agent, agent) != 0))
            edge_add(&g, caller, node(&g, "agent", self_agent, target, sizeof(target)), ms, error);
        /* another service's child */
        if (parent >= 0) {
            const char *ps = service_of(&svc, rows[parent]->resource_id);
            if (strcmp(ps, service) != 0) {
                char from[600];
                node(&g, "service", ps, from, sizeof(from));
                edge_add(&g, from, node(&g, "service", service, target, sizeof(target)), ms, error);
            }
        }
        /* MCP */
        const char *method = json_string_value(json_object_get(a, "mcp.method.name"));
        const char *server = json_string_value(json_object_get(a, "aos.mcp.server"));
        const char *tool = json_string_value(json_object_get(a, "gen_ai.tool.name"));
        char sv_buf[300] = "";
        const char *tool_name = tool;
        if (tool) {
            const char *sep = strstr(tool, SEP);
            if (sep) {
                snprintf(sv_buf, sizeof(sv_buf), "%.*s", (int)(sep - tool), tool);
                tool_name = sep + strlen(SEP);
                if (!server)
                    server = sv_buf;
            }
        }
        if (method && server && *server) {
            char sv[600], who[600];
            node(&g, "mcp_server", server, sv, sizeof(sv));
            /* who made the request (the gateway's SERVER spans): a client
             * node, or the agent a minted token belongs to */
            const char *principal = json_string_value(json_object_get(a, "aos.principal"));
            const char *from = caller;
            if (principal && !strncmp(principal, "agent:", 6) && principal[6])
                from = node(&g, "agent", principal + 6, who, sizeof(who));
            else if (principal && *principal)
                from = node(&g, "client", principal, who, sizeof(who));
            edge_add(&g, from, sv, ms, error);
            if (!strcmp(method, "tools/call") && tool_name && *tool_name) {
                char tn[600];
                snprintf(tn, sizeof(tn), "%s/%s", server, tool_name);
                edge_add(&g, sv, node(&g, "tool", tn, target, sizeof(target)), ms, error);
            }
        }
        /* a model */
        const char *op = json_string_value(json_object_get(a, "gen_ai.operation.name"));
        const char *model = json_string_value(json_object_get(a, "gen_ai.request.model"));
        if (op && model &&
            (!strcmp(op, "chat") || !strcmp(op, "embeddings") || !strcmp(op, "text_completion") ||
             !strcmp(op, "generate_content")))
            edge_add(&g, caller, node(&g, "model", model, target, sizeof(target)), ms, error);
    }
    json_t *edges = json_array();
    for (size_t i = 0; edges && i < g.nedges; i++) {
        struct edge *e = g.edge_list[i];
        qsort(e->ms, e->n, sizeof(double), cmp_double);
        json_array_append_new(
            edges,
            json_pack("{s:s, s:s, s:I, s:I, s:f, s:f, s:f, s:f}", "source", e->source, "target",
                      e->target, "calls", (json_int_t)e->calls, "errors", (json_int_t)e->errors,
                      "error_rate", e->calls ? (double)e->errors / (double)e->calls : 0.0, "p50_ms",
                      nearest_rank(e->ms, e->n, 0.5), "p95_ms", nearest_rank(e->ms, e->n, 0.95),
                      "p99_ms", nearest_rank(e->ms, e->n, 0.99)));
    }
    json_t *o =
        json_pack("{s:I, s:I, s:I, s:b, s:O, s:o}", "from", (json_int_t)(t->from_ns / 1000000000),
                  "to", (json_int_t)(t->to_ns / 1000000000), "spans", (json_int_t)n, "truncated",
                  t->truncated, "nodes", g.node_list, "edges", edges);
    if (o) {
        t->body = json_dumps(o, JSON_COMPACT);
        t->body_len = t->body ? strlen(t->body) : 0;
        json_decref(o);
    }
out:
    for (size_t i = 0; attrs && i < n; i++)
        json_decref(attrs[i]);
    free(attrs);
    free(index);
    for (size_t i = 0; i < g.nedges; i++) {
        free(g.edge_list[i]->source);
        free(g.edge_list[i]->target);
        free(g.edge_list[i]->ms);
        free(g.edge_list[i]);
    }
    free(g.edge_list);
    json_decref(g.node_list);
    aos_map_release(&g.nodes);
    aos_map_release(&g.edges);
    aos_map_release(&svc);
    aos_map_release(&by_id);
}

static void topo_built(uv_work_t *w, int status)
{
    (void)status;
    struct topo *t = w->data;
    if (t->req) {
        aos_http_on_close(t->req, NULL, NULL);
        if (t->body)
            aos_http_respond(t->req, 200, "application/json", t->body, t->body_len);
        else
            aos_http_respond_error(t->req, AOS_ENOMEM, "unable to build the topology");
    }
    topo_free(t);
}

static void topo_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    struct topo *t = data;
    t->req = NULL;
}

static void topo_done(int status, const aos_err_t *err, void *arg)
{
    struct topo *t = arg;
    if (!t->req) {
        topo_free(t);
        return;
    }
    if (status) {
        aos_http_on_close(t->req, NULL, NULL);
        aos_http_respond_err(t->req, err);
        topo_free(t);
        return;
    }
    if (!t->end && t->total <= TOPO_MAX && t->npages < TOPO_PAGES &&
        aos_store_submit(t->env->store, topo_run, topo_done, t) == 0)
        return; /* the next chunk */
    t->work.data = t;
    if (uv_queue_work(t->env->loop, &t->work, topo_build, topo_built) != 0) {
        aos_http_on_close(t->req, NULL, NULL);
        aos_http_respond_error(t->req, AOS_EUNAVAIL, "unable to build the topology now");
        topo_free(t);
    }
}

static int get_topology(aos_http_req_t *req, void *data)
{
    aos__monitor_env_t *env = data;
    int64_t from_ns = 0, to_ns = 0;
    int rc = window(req, &from_ns, &to_ns);
    if (rc <= 0)
        return rc;
    struct topo *t = calloc(1, sizeof(*t));
    if (!t)
        return AOS_ENOMEM;
    t->env = env;
    t->req = req;
    t->from_ns = from_ns;
    t->to_ns = to_ns;
    t->bs = INT64_MAX;
    t->bi = INT64_MAX;
    if ((rc = aos_store_submit(env->store, topo_run, topo_done, t)) < 0) {
        free(t);
        return aos_http_respond_error(req, rc, "unable to read the spans now");
    }
    aos_http_on_close(req, topo_closed, t);
    return 0;
}

static const aos_http_route_t routes[] = {
    {"GET", "/api/traces", AOS_PERM_READ, get_traces, 0, NULL},
    {"GET", "/api/topology", AOS_PERM_READ, get_topology, 0, NULL},
};

int aos__monitor_search_routes(aos__monitor_env_t *env, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), env);
}
