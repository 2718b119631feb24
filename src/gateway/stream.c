/* stream.c - the SSE streams of client sessions on the MCP endpoints, and
 * their resumption (Streamable HTTP, "Resumability and Redelivery", and the
 * SSE polling of 2025-11-25).
 *
 * A stream is what the client sees as one SSE stream: the answer stream of
 * one call (a POST answered as text/event-stream) or the session's GET
 * stream. It outlives its connections: when a connection drops (the client
 * left, or aosd closed it early so that the client polls), the stream goes
 * on without one, and a GET with Last-Event-ID carries it on a new one.
 *
 * Event ids are "<stream>-<seq>": stream numbers count 1, 2, ... within the
 * session, seq counts the stream's events from 1. The session's id is in
 * the Mcp-Session-Id header, so ids are unique within a session and name
 * their stream, as the transport asks.
 *
 * The replay buffer keeps every event a session's streams carried (the
 * priming events aside, which carry nothing), oldest first, bounded by
 * bytes per session, bytes in all and age (aos_gateway_cfg_t). An event
 * leaves it oldest first, and the stream records the highest seq it lost
 * (st->lost): a resumption after an id older than that would skip events,
 * so it is refused rather than silently incomplete.
 *
 * Priming. A session of protocol 2025-11-25 or later is resumable: its
 * streams begin with a priming event (an id, `retry`, empty data), after
 * which aosd may close the connection and the client reconnects. A call's
 * answer becomes a stream when something arrives for it before the answer
 * (as before), or when the answer has not come GW_PRIME_MS after the call
 * arrived: a fast call keeps its one-event answer (no stream, no chunked
 * encoding), a slow one gets its priming event soon, so that a client that
 * loses the connection can come back for the answer.
 *
 * Polling (sse_hold_ms > 0): a connection carrying an unanswered call of a
 * resumable session is closed after that long; the client comes back with
 * Last-Event-ID after `retry` ms and gets what came meanwhile, the answer
 * too.
 *
 * Loop thread only. */
#include "gateway/internal.h"
#include "log/log.h"

#include <inttypes.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define GW_PRIME_MS     20         /* a call unanswered this long gets its priming event */
#define GW_SSE_RETRY_MS 1000       /* the `retry` of priming events: when to reconnect */
#define GW_GET_UNREAD   (8u << 20) /* a GET connection this far behind is cut */

struct gw_event {
    gw_stream_t *stream;         /* borrowed */
    gw_event_t *s_next;          /* in the session's buffer, oldest first */
    gw_event_t *g_prev, *g_next; /* in the gateway's buffer, oldest first */
    uint64_t at_ms;
    uint32_t seq;
    size_t len;
    char frame[]; /* the bytes as sent */
};

struct gw_stream {
    gw_session_t *sess; /* borrowed */
    uint32_t no;
    uint32_t seq;        /* of the last event given (0: none yet) */
    uint32_t lost;       /* highest seq not in the replay buffer (0: none) */
    unsigned buffered;   /* its events in the replay buffer */
    int ended;           /* its last event is written */
    aos_http_req_t *req; /* the connection carrying it now, or NULL */
    gw_call_t *call;     /* borrowed: the call it answers; NULL for the GET stream */
    gw_tq_node_t hold;   /* in gw->hold while req carries an unanswered call */
    gw_stream_t *next;   /* in sess->streams */
};

#define CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ---- the timer queues -------------------------------------------------- */

void gw_tq_del(gw_tq_t *q, gw_tq_node_t *n)
{
    if (!n->linked)
        return;
    if (n->prev)
        n->prev->next = n->next;
    else
        q->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        q->tail = n->prev;
    n->prev = n->next = NULL;
    n->linked = 0;
}

static void on_tq_timer(uv_timer_t *t);

static void tq_start(gw_tq_t *q)
{
    if (!q->head)
        return;
    uint64_t now = gw_now_ms();
    uint64_t due = q->head->due_ms;
    uv_timer_start(&q->timer, on_tq_timer, due > now ? due - now : 0, 0);
}

/* Appends n, due after delay_ms (every node of q has the same delay, so
 * the queue stays in due order). */
static void tq_add(gw_tq_t *q, gw_tq_node_t *n, uint64_t delay_ms)
{
    gw_tq_del(q, n);
    n->due_ms = gw_now_ms() + delay_ms;
    n->next = NULL;
    n->prev = q->tail;
    if (q->tail)
        q->tail->next = n;
    else
        q->head = n;
    q->tail = n;
    n->linked = 1;
    if (q->head == n)
        tq_start(q);
}

static void on_tq_timer(uv_timer_t *t)
{
    gw_tq_t *q = t->data;
    uint64_t now = gw_now_ms();
    while (q->head && q->head->due_ms <= now) {
        gw_tq_node_t *n = q->head;
        gw_tq_del(q, n);
        q->fire(n);
    }
    tq_start(q);
}

/* ---- the replay buffer --------------------------------------------------- */

static void stream_gc(gw_stream_t *st);

/* Drops the oldest event of session s (there must be one) from both lists.
 * The gateway's oldest event is always its session's oldest (both lists
 * are in the order events were kept), so the bounds on all sessions drop
 * that way too. */
static void event_drop(aos_gateway_t *gw, gw_session_t *s)
{
    gw_event_t *ev = s->ev_head;
    if (!ev)
        return;
    gw_stream_t *st = ev->stream;
    s->ev_head = ev->s_next;
    if (!s->ev_head)
        s->ev_tail = NULL;
    s->ev_bytes -= ev->len;
    if (ev->g_prev)
        ev->g_prev->g_next = ev->g_next;
    else
        gw->ev_head = ev->g_next;
    if (ev->g_next)
        ev->g_next->g_prev = ev->g_prev;
    else
        gw->ev_tail = ev->g_prev;
    gw->ev_bytes -= ev->len;
    if (ev->seq > st->lost)
        st->lost = ev->seq;
    st->buffered--;
    free(ev);
    stream_gc(st);
}

void gw_replay_expire(aos_gateway_t *gw)
{
    uint64_t now = gw_now_ms();
    uint64_t max_age = (uint64_t)gw->cfg.replay_s * 1000;
    while (gw->ev_head && now - gw->ev_head->at_ms >= max_age && gw->ev_head->stream->sess->ev_head)
        event_drop(gw, gw->ev_head->stream->sess);
}

/* Keeps frame (event seq of st) for replay, then drops the oldest events
 * beyond the bounds. An event larger than a bound is not kept: st lost it. */
static void event_keep(gw_stream_t *st, uint32_t seq, const char *frame, size_t len)
{
    gw_session_t *s = st->sess;
    aos_gateway_t *gw = s->gw;
    const aos_gateway_cfg_t *cfg = &gw->cfg;
    gw_event_t *ev = NULL;
    if (len <= cfg->replay_bytes && len <= cfg->replay_total && cfg->replay_s > 0)
        ev = malloc(sizeof(*ev) + len);
    if (!ev) {
        st->lost = seq;
        return;
    }
    ev->stream = st;
    ev->seq = seq;
    ev->len = len;
    ev->at_ms = gw_now_ms();
    memcpy(ev->frame, frame, len);
    ev->s_next = NULL;
    if (s->ev_tail)
        s->ev_tail->s_next = ev;
    else
        s->ev_head = ev;
    s->ev_tail = ev;
    s->ev_bytes += len;
    ev->g_next = NULL;
    ev->g_prev = gw->ev_tail;
    if (gw->ev_tail)
        gw->ev_tail->g_next = ev;
    else
        gw->ev_head = ev;
    gw->ev_tail = ev;
    gw->ev_bytes += len;
    st->buffered++;
    /* st cannot be collected here: it is the stream being written to */
    while (s->ev_head && s->ev_bytes > cfg->replay_bytes)
        event_drop(gw, s);
    while (gw->ev_head && gw->ev_bytes > cfg->replay_total && gw->ev_head->stream->sess->ev_head)
        event_drop(gw, gw->ev_head->stream->sess);
}

/* ---- streams and their connections ----------------------------------------- */

static gw_stream_t *stream_new(gw_session_t *s, gw_call_t *c)
{
    gw_stream_t *st = calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    st->sess = s;
    st->no = ++s->next_stream;
    st->call = c;
    st->next = s->streams;
    s->streams = st;
    return st;
}

static void stream_unlink(gw_stream_t *st)
{
    gw_session_t *s = st->sess;
    for (gw_stream_t **p = &s->streams; *p; p = &(*p)->next) {
        if (*p == st) {
            *p = st->next;
            break;
        }
    }
}

/* Forgets st once nothing can reach it any more: no call, not the session's
 * GET stream, no connection and nothing left to replay. */
static void stream_gc(gw_stream_t *st)
{
    if (st->call || st->req || st->buffered || st->sess->get == st)
        return;
    stream_unlink(st);
    free(st);
}

static void conn_closed(aos_http_req_t *req, int aborted, void *data)
{
    gw_stream_t *st = data;
    if (st->req != req)
        return;
    st->req = NULL;
    gw_tq_del(&st->sess->gw->hold, &st->hold);
    stream_gc(st);
}

/* Closes st's connection; the stream goes on without one. */
static void conn_drop(gw_stream_t *st)
{
    aos_http_req_t *r = st->req;
    if (!r)
        return;
    st->req = NULL;
    gw_tq_del(&st->sess->gw->hold, &st->hold);
    aos_http_on_close(r, NULL, NULL);
    aos_http_stream_close(r);
}

/* req (an open event stream) carries st from now on. */
static void conn_attach(gw_stream_t *st, aos_http_req_t *req)
{
    aos_gateway_t *gw = st->sess->gw;
    conn_drop(st);
    st->req = req;
    aos_http_on_close(req, conn_closed, st);
    if (st->call && !st->ended && st->sess->resumable && gw->cfg.sse_hold_ms)
        tq_add(&gw->hold, &st->hold, gw->cfg.sse_hold_ms);
}

/* The connection of an unanswered call was held long enough: close it; the
 * client polls (it got a priming event with `retry`). */
static void on_hold(gw_tq_node_t *n)
{
    gw_stream_t *st = CONTAINER(n, gw_stream_t, hold);
    if (st->req && st->call && !st->ended)
        conn_drop(st);
}

/* Writes frame to st's connection; one that cannot take it is dropped. */
static void conn_write(gw_stream_t *st, const char *frame, size_t len)
{
    if (st->req && aos_http_stream_write(st->req, frame, len))
        conn_drop(st);
}

/* The priming event: an id to resume from, `retry`, and no data. */
static void stream_prime(gw_stream_t *st)
{
    char f[96];
    uint32_t seq = ++st->seq;
    int n = snprintf(f, sizeof(f), "id: %" PRIu32 "-%" PRIu32 "\nretry: %d\ndata: \n\n", st->no,
                     seq, GW_SSE_RETRY_MS);
    conn_write(st, f, (size_t)n);
}

void gw_stream_send(gw_stream_t *st, const json_t *msg, int final)
{
    if (st->ended)
        return;
    char id[32];
    uint32_t seq = ++st->seq;
    snprintf(id, sizeof(id), "%" PRIu32 "-%" PRIu32, st->no, seq);
    aos_buf_t b;
    aos_buf_init(&b, 0);
    if (gw_sse_frame(msg, id, &b)) {
        st->lost = seq;
    } else {
        event_keep(st, seq, b.ptr, b.len);
        conn_write(st, b.ptr, b.len);
    }
    aos_buf_release(&b);
    if (final) {
        st->ended = 1;
        st->call = NULL;
        conn_drop(st); /* the answer ends the stream */
        stream_gc(st);
    }
}

void gw_stream_orphan(gw_stream_t *st)
{
    st->call = NULL;
    if (!st->ended) {
        st->ended = 1;
        conn_drop(st);
    }
    stream_gc(st);
}

/* ---- calls ---------------------------------------------------------------- */

int gw_call_open_stream(gw_call_t *c)
{
    gw_session_t *s = c->sess;
    if (c->st || !c->req || !c->accept_sse || c->kind != GW_CALL_MCP || !s)
        return AOS_EINVAL;
    gw_stream_t *st = stream_new(s, c);
    if (!st)
        return AOS_ENOMEM;
    aos_http_add_header(c->req, "Mcp-Session-Id", s->id);
    int rc = aos_http_stream_open(c->req, 200, "text/event-stream");
    if (rc) {
        st->call = NULL;
        stream_gc(st);
        return rc;
    }
    aos_http_req_t *req = c->req;
    c->req = NULL; /* the stream owns the connection now */
    c->st = st;
    gw_tq_del(&c->gw->prime, &c->prime);
    conn_attach(st, req);
    if (s->resumable)
        stream_prime(st);
    return 0;
}

static void on_prime(gw_tq_node_t *n)
{
    gw_call_t *c = CONTAINER(n, gw_call_t, prime);
    gw_call_open_stream(c);
}

void gw_call_prime_later(gw_call_t *c)
{
    if (c->sess && c->sess->resumable && c->req && c->accept_sse && c->kind == GW_CALL_MCP &&
        !c->st)
        tq_add(&c->gw->prime, &c->prime, GW_PRIME_MS);
}

/* ---- the GET stream and resumption ---------------------------------------- */

int gw_session_attach_stream(gw_session_t *s, aos_http_req_t *req)
{
    if (s->get && s->get->req)
        return AOS_ECONFLICT;
    gw_stream_t *st = s->get;
    if (!st && !(st = stream_new(s, NULL)))
        return AOS_ENOMEM;
    s->get = st;
    aos_http_add_header(req, "Mcp-Session-Id", s->id);
    int rc = aos_http_stream_open(req, 200, "text/event-stream");
    if (rc)
        return rc;
    conn_attach(st, req);
    if (s->resumable)
        stream_prime(st);
    else /* a comment first, so that clients see the stream is open */
        conn_write(st, ": stream open\n\n", 15);
    return 0;
}

int gw_session_send(gw_session_t *s, json_t *msg)
{
    gw_stream_t *st = s->get;
    if (!st) {
        json_decref(msg);
        return AOS_ENOTFOUND;
    }
    /* a reader that stopped reading is cut off rather than buffered forever;
     * it may resume from what it has read */
    if (st->req && aos_http_stream_pending(st->req) > GW_GET_UNREAD) {
        aos_log_warn("gateway", "session %s: GET stream is not read; closing it", s->id);
        conn_drop(st);
    }
    gw_stream_send(st, msg, 0);
    json_decref(msg);
    return 0;
}

int gw_session_connected(const gw_session_t *s)
{
    return s->get && s->get->req;
}

int gw_session_ping(gw_session_t *s)
{
    if (!s->get || !s->get->req)
        return 0;
    conn_write(s->get, ": ping\n\n", 8);
    return 1;
}

/* "<no>-<seq>", decimal, nothing else. */
static int parse_id(const char *v, uint32_t *no, uint32_t *seq)
{
    uint32_t *out[2] = {no, seq};
    for (int i = 0; i < 2; i++) {
        if (*v < '0' || *v > '9')
            return -1;
        uint64_t n = 0;
        while (*v >= '0' && *v <= '9') {
            n = n * 10 + (uint64_t)(*v++ - '0');
            if (n > UINT32_MAX)
                return -1;
        }
        *out[i] = (uint32_t)n;
        if (i == 0 && *v++ != '-')
            return -1;
    }
    return *v ? -1 : 0;
}

int gw_stream_resume(gw_session_t *s, aos_http_req_t *req, const char *last, aos_err_t *err)
{
    aos_gateway_t *gw = s->gw;
    uint32_t no, seq;
    if (parse_id(last, &no, &seq))
        return aos_err_set(err, AOS_EBADREQ, "Last-Event-ID '%.40s' is not an event id of aosd",
                           last);
    gw_replay_expire(gw);
    gw_stream_t *st = s->streams;
    while (st && st->no != no)
        st = st->next;
    if (!st || seq > st->seq)
        return aos_err_set(err, AOS_EBADREQ,
                           "Last-Event-ID '%.40s': no such event in this session (its stream "
                           "ended and was forgotten, or it never was)",
                           last);
    if (st->lost > seq)
        return aos_err_set(err, AOS_EBADREQ,
                           "Last-Event-ID '%.40s': the events after it are no longer kept "
                           "(--mcp-replay-bytes %zu per session, %zu in all, for %u s)",
                           last, gw->cfg.replay_bytes, gw->cfg.replay_total, gw->cfg.replay_s);
    aos_http_add_header(req, "Mcp-Session-Id", s->id);
    int rc = aos_http_stream_open(req, 200, "text/event-stream");
    if (rc)
        return aos_err_set(err, rc, NULL);
    /* a connection still carrying it is stale: the client has left it */
    conn_drop(st);
    unsigned replayed = 0;
    for (gw_event_t *ev = s->ev_head; ev; ev = ev->s_next) {
        if (ev->stream == st && ev->seq > seq) {
            aos_http_stream_write(req, ev->frame, ev->len);
            replayed++;
        }
    }
    aos_log_debug("gateway",
                  "session %s: stream %" PRIu32 " resumed after %" PRIu32 " (%u replayed)", s->id,
                  no, seq, replayed);
    if (st->ended && replayed) {
        aos_http_stream_close(req); /* it ended with its last event */
        return 0;
    }
    /* live: it goes on here. An ended stream with nothing after last keeps
     * the connection idle: closing it would make a client that missed no
     * event but did not take the answer as one (an error answer, for the
     * TypeScript SDK 1.x) reconnect again at once, forever. */
    conn_attach(st, req);
    return 0;
}

/* ---- sessions and the gateway ----------------------------------------------- */

void gw_session_streams_free(gw_session_t *s)
{
    aos_gateway_t *gw = s->gw;
    s->get = NULL;
    for (gw_stream_t *st = s->streams; st; st = st->next) {
        st->call = NULL;
        conn_drop(st);
    }
    /* the buffered events keep the streams alive until they are dropped */
    while (s->ev_head)
        event_drop(gw, s);
    while (s->streams) {
        gw_stream_t *st = s->streams;
        s->streams = st->next;
        free(st);
    }
}

void gw_streams_init(aos_gateway_t *gw)
{
    gw_tq_t *qs[2] = {&gw->prime, &gw->hold};
    void (*fire[2])(gw_tq_node_t *) = {on_prime, on_hold};
    for (int i = 0; i < 2; i++) {
        memset(qs[i], 0, sizeof(*qs[i]));
        uv_timer_init(gw->cfg.loop, &qs[i]->timer);
        qs[i]->timer.data = qs[i];
        qs[i]->fire = fire[i];
        uv_unref((uv_handle_t *)&qs[i]->timer);
    }
}

void gw_streams_close(aos_gateway_t *gw, void (*done)(uv_handle_t *))
{
    gw->prime.timer.data = gw;
    gw->hold.timer.data = gw;
    uv_close((uv_handle_t *)&gw->prime.timer, done);
    uv_close((uv_handle_t *)&gw->hold.timer, done);
}
