/* routes.c - the HTTP face of the bus: the value-event stream of the Chat
 * Hub (SSE), "see more" history, and publishing from clients.
 *
 *   GET  /agent/events          READ     SSE of value events; ?trace_id= ?project=
 *                                        resume: Last-Event-ID header or ?after=ID
 *   GET  /agent/events/history  READ     ?before=ID&limit=N, newest first
 *   POST /api/events            OPERATE  one envelope or an array; 201 once durable
 *
 * Reading needs read on system, or on some project: such a caller gets
 * only the events of the tasks it may read (a grant on the task, or on
 * the event's project_id), checked per event.
 *
 * A stream is one bus subscription (value events only) whose callback
 * writes each event's SSE frame. Back-pressure: a client that still holds
 * more than cfg.stream_buffer bytes unread when the next fan-out starts gets
 * a last "overflow" event naming the id to resume after and is disconnected;
 * other streams and publishers never wait for it. Its memory is bounded by
 * the buffer plus what one turn of the loop fans out. While a stream replays,
 * the bus reads the next page only once the client has drained half the
 * buffer (ready()). */
#include "bus/internal.h"
#include "auth/auth.h"
#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HISTORY_DEFAULT 50
#define HISTORY_MAX     500
#define MAX_FILTER      128

struct aos__bus_stream_s {
    aos_bus_t *bus;
    aos_http_req_t *req;
    aos_bus_sub_t *sub;
    int64_t last_id; /* of the last event written */
    uint64_t round;  /* bus->round of the last live event written */
    aos__bus_stream_t *prev, *next;
};

static void stream_unlink(aos__bus_stream_t *st)
{
    aos_bus_t *bus = st->bus;
    if (st->prev)
        st->prev->next = st->next;
    else
        bus->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    bus->nstreams--;
}

/* Ends the stream from our side, after a last frame if one is given. */
static void stream_end(aos__bus_stream_t *st, const char *last, size_t len)
{
    stream_unlink(st);
    aos_http_on_close(st->req, NULL, NULL);
    if (last)
        aos_http_stream_write(st->req, last, len);
    aos_http_stream_close(st->req);
    aos_bus_unsubscribe(st->sub);
    free(st);
}

void aos__bus_streams_close(aos_bus_t *bus)
{
    for (aos__bus_stream_t *st = bus->streams, *next; st; st = next) {
        next = st->next;
        stream_end(st, NULL, 0);
    }
}

/* The client went away. */
static void on_stream_close(aos_http_req_t *req, int aborted, void *data)
{
    aos__bus_stream_t *st = data;
    stream_unlink(st);
    aos_bus_unsubscribe(st->sub);
    free(st);
}

/* Cuts a client off that has not read what it was sent: a last event says
 * where to resume from, and the stream ends once that much is read. */
static void cut_off(aos__bus_stream_t *st)
{
    aos_bus_t *bus = st->bus;
    char last[160];
    int n =
        snprintf(last, sizeof(last),
                 "event: overflow\ndata: {\"reason\":\"slow consumer\",\"resume_after\":%lld}\n\n",
                 (long long)st->last_id);
    bus->cut++;
    aos_log_info("bus", "value-event stream of %s is %zu bytes behind; disconnected at id %lld",
                 aos_http_peer(st->req), aos_http_stream_pending(st->req), (long long)st->last_id);
    stream_end(st, last, (size_t)n);
}

/* 1 if the caller of req may see ev: read on system, or on the event's
 * task or project (a caller let in by a project grant: the routes'
 * "|project"). Decided per event with the caller's grants as they are
 * now, so a grant removed stops the events at once. */
static int may_see(aos_http_req_t *req, const aos_bus_event_t *ev)
{
    const aos_principal_t *p = aos_auth_principal(req);
    return aos_auth_check(p, AOS_PERM_READ, "system") == 0 ||
           (ev->trace_id &&
            aos_auth_check_task(p, AOS_PERM_READ, ev->trace_id, ev->project_id) == 0);
}

static void on_event(aos_bus_sub_t *sub, const aos_bus_event_t *ev, void *data)
{
    aos__bus_stream_t *st = data;
    aos_bus_t *bus = st->bus;
    if (!ev) {
        stream_end(st, NULL, 0);
        return;
    }
    if (!ev->sse || !may_see(st->req, ev))
        return;
    /* Slow means: still holding more than the buffer unread when a later
     * turn of the loop fans out again. Checking per turn rather than per
     * write lets a burst through to a client that keeps up, since nothing is
     * sent while the loop is busy fanning out. */
    if (!ev->replay && st->round != bus->round) {
        st->round = bus->round;
        if (aos_http_stream_pending(st->req) > bus->cfg.stream_buffer) {
            cut_off(st);
            return;
        }
    }
    if (aos_http_stream_write(st->req, ev->sse, ev->sse_len))
        return;
    st->last_id = ev->id;
    bus->delivered++;
}

static int stream_ready(void *data)
{
    aos__bus_stream_t *st = data;
    return aos_http_stream_pending(st->req) < st->bus->cfg.stream_buffer / 2;
}

static void on_heartbeat(uv_timer_t *t)
{
    aos_bus_t *bus = t->data;
    for (aos__bus_stream_t *st = bus->streams; st; st = st->next)
        aos_http_stream_write(st->req, ": hb\n\n", 6);
}

/* "123" -> 123; -1 for anything that is not a whole number >= 0. */
static int64_t parse_id(const char *s)
{
    if (!s || !*s || strlen(s) > 18)
        return -1;
    int64_t v = 0;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* The trace_id and project filters of a request; AOS_EINVAL if too long. */
static int filters(aos_http_req_t *req, const char **trace, const char **project)
{
    *trace = aos_http_query(req, "trace_id");
    *project = aos_http_query(req, "project");
    if (*trace && !**trace)
        *trace = NULL;
    if (*project && !**project)
        *project = NULL;
    if ((*trace && strlen(*trace) > MAX_FILTER) || (*project && strlen(*project) > MAX_FILTER))
        return aos_http_respond_error(req, AOS_EINVAL, "filters are at most %d bytes", MAX_FILTER);
    return 0;
}

static int events_stream(aos_http_req_t *req, void *data)
{
    aos_bus_t *bus = data;
    const char *trace, *project;
    int64_t after = -1;
    if (bus->closing)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the bus is shutting down");
    if (filters(req, &trace, &project))
        return 0;
    /* an EventSource reconnecting sends the header and the URL it opened
     * first: the header is the newer */
    const char *lei = aos_http_header(req, "Last-Event-ID");
    const char *q = aos_http_query(req, "after");
    if (lei && *lei) {
        if ((after = parse_id(lei)) < 0)
            return aos_http_respond_error(req, AOS_EINVAL, "'Last-Event-ID' must be an event id");
    } else if (q) {
        if ((after = parse_id(q)) < 0)
            return aos_http_respond_error(req, AOS_EINVAL, "'after' must be an event id");
    }
    aos__bus_stream_t *st = calloc(1, sizeof(*st));
    if (!st)
        return AOS_ENOMEM;
    st->bus = bus;
    st->req = req;
    st->last_id = after;
    aos_http_add_header(req, "X-Accel-Buffering", "no");
    int rc = aos_http_stream_open(req, 200, "text/event-stream");
    if (rc) {
        free(st);
        return rc;
    }
    static const char hello[] = "retry: 1000\n: aos value events\n\n";
    aos_http_stream_write(req, hello, sizeof(hello) - 1);
    st->next = bus->streams;
    if (bus->streams)
        bus->streams->prev = st;
    bus->streams = st;
    bus->nstreams++;
    aos_http_on_close(req, on_stream_close, st);
    aos_bus_filter_t f = {trace, project, 1, after};
    rc = aos_bus_subscribe(bus, &f, on_event, stream_ready, st, &st->sub);
    if (rc) {
        char last[160];
        int n = snprintf(last, sizeof(last), "event: error\ndata: {\"code\":\"%s\"}\n\n",
                         aos_err_code(rc));
        stream_end(st, last, (size_t)n);
    }
    return 0;
}

/* History ----------------------------------------------------------------- */

struct history {
    aos_bus_t *bus;
    aos_http_req_t *req; /* NULL once the client went away */
    int limit;
};

static void history_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((struct history *)data)->req = NULL;
}

static void history_done(int status, const aos_err_t *err, aos__bus_batch_t *b, void *arg)
{
    struct history *h = arg;
    aos_bus_t *bus = h->bus;
    bus->jobs--;
    if (h->req) {
        aos_http_on_close(h->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(h->req, err);
        } else {
            json_t *events = json_array();
            for (size_t i = 0; i < b->n; i++)
                if (may_see(h->req, &b->v[i])) { /* a page may hold fewer than limit */
                    const json_t *env = aos_bus_event_json(&b->v[i]);
                    if (env)
                        json_array_append(events, (json_t *)env);
                }
            json_t *next = b->n == (size_t)h->limit ? json_integer(b->v[b->n - 1].id) : json_null();
            aos_http_respond_json(h->req, 200,
                                  json_pack("{s:o, s:o}", "events", events, "next_before", next));
        }
    }
    free(h);
    aos__bus_maybe_free(bus);
}

static int events_history(aos_http_req_t *req, void *data)
{
    aos_bus_t *bus = data;
    const char *trace, *project;
    if (bus->closing)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the bus is shutting down");
    if (filters(req, &trace, &project))
        return 0;
    const char *b = aos_http_query(req, "before"), *l = aos_http_query(req, "limit");
    int64_t before = b ? parse_id(b) : 0;
    if (before < 0)
        return aos_http_respond_error(req, AOS_EINVAL, "'before' must be an event id");
    int64_t limit = l ? parse_id(l) : HISTORY_DEFAULT;
    if (limit < 1 || limit > HISTORY_MAX)
        return aos_http_respond_error(req, AOS_EINVAL, "'limit' must be from 1 to %d", HISTORY_MAX);
    struct history *h = calloc(1, sizeof(*h));
    if (!h)
        return AOS_ENOMEM;
    h->bus = bus;
    h->req = req;
    h->limit = (int)limit;
    aos__bus_query_t q = {0};
    q.newest_first = 1;
    q.before_id = before;
    q.trace_id = trace;
    q.project_id = project;
    q.value_only = 1;
    q.limit = h->limit;
    aos_http_on_close(req, history_closed, h);
    int rc = aos__bus_read(bus, &q, history_done, h);
    if (rc) {
        aos_http_on_close(req, NULL, NULL);
        free(h);
    }
    return rc;
}

/* Publishing ------------------------------------------------------------------ */

struct post {
    aos_http_req_t *req; /* NULL once the client went away */
};

static void post_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((struct post *)data)->req = NULL;
}

static void post_done(int status, const aos_err_t *err, const json_t *results, void *ctx)
{
    struct post *p = ctx;
    if (p->req) {
        aos_http_on_close(p->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(p->req, err);
        } else {
            json_t *ids = json_array();
            size_t i;
            json_t *r;
            json_array_foreach(results, i, r) json_array_append(ids, json_object_get(r, "id"));
            aos_http_respond_json(p->req, 201,
                                  json_pack("{s:o, s:O}", "ids", ids, "events", results));
        }
    }
    free(p);
}

static int events_post(aos_http_req_t *req, void *data)
{
    aos_bus_t *bus = data;
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    struct post *p = calloc(1, sizeof(*p));
    if (!p) {
        json_decref(body);
        return AOS_ENOMEM;
    }
    p->req = req;
    aos_http_on_close(req, post_closed, p);
    int rc = aos_bus_publish(bus, body, post_done, p, &err);
    if (rc) {
        aos_http_on_close(req, NULL, NULL);
        free(p);
        return aos_http_respond_err(req, &err);
    }
    return 0;
}

static const aos_http_route_t routes[] = {
    {"GET", "/agent/events", AOS_PERM_READ, events_stream, 0, "system|project"},
    {"GET", "/agent/events/history", AOS_PERM_READ, events_history, 0, "system|project"},
    {"POST", "/api/events", AOS_PERM_OPERATE, events_post, 8u << 20, NULL},
};

int aos_bus_add_routes(aos_bus_t *bus, aos_http_t *http)
{
    uv_timer_start(&bus->heartbeat, on_heartbeat, bus->cfg.heartbeat_ms, bus->cfg.heartbeat_ms);
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), bus);
}
