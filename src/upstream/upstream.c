/* upstream.c - the MCP client core: lifecycle, pending requests, timeouts,
 * backoff and message routing. The transports (stdio.c, http.c,
 * legacy_sse.c) only move messages; see internal.h for how the two halves
 * talk.
 *
 * Pending requests live in a hash table by id and on one of two lists: the
 * queue (waiting for READY) or inflight (sent). One timer is armed for the
 * earliest deadline; when it fires, the lists are scanned. Every path that
 * runs a user callback re-checks `closing` afterwards, since the callback may
 * have closed the upstream (the memory stays valid: it is only freed once
 * every handle and transfer has released its reference). */
#include "upstream/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc/jsonrpc.h"
#include "log/log.h"

#define UP_OFFERED_VERSION    "2025-11-25"
#define UP_LEGACY_VERSION     "2024-11-05" /* the HTTP+SSE transport's protocol */
#define UP_DEFAULT_TIMEOUT_MS 60000u
#define UP_BACKOFF_MIN_MS     250u
#define UP_BACKOFF_MAX_MS     30000u
#define UP_STABLE_MS          10000u
#define UP_MAX_EXPIRIES       3 /* sessions lost in a row, without an answer, before backoff */

static const char *const protocol_versions[] = {"2025-11-25", "2025-06-18", "2025-03-26",
                                                "2024-11-05", NULL};

static void begin_connect(aos_upstream_t *up, const char *why);

const char *aos_upstream_state_name(aos_upstream_state_t st)
{
    switch (st) {
    case AOS_UP_STOPPED:
        return "stopped";
    case AOS_UP_STARTING:
        return "starting";
    case AOS_UP_READY:
        return "ready";
    case AOS_UP_BACKOFF:
        return "backoff";
    case AOS_UP_CLOSED:
        return "closed";
    }
    return "unknown";
}

/* ---- pending requests: hash table and lists ----------------------------- */

static size_t slot_of(const aos_upstream_t *up, uint64_t id)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (up->nbuckets - 1);
}

static int table_add(aos_upstream_t *up, up_pending_t *p)
{
    if (up->npending >= up->nbuckets) {
        size_t n = up->nbuckets ? up->nbuckets * 2 : 64;
        up_pending_t **b = calloc(n, sizeof(*b));
        if (!b)
            return AOS_ENOMEM;
        size_t old = up->nbuckets;
        up_pending_t **ob = up->buckets;
        up->buckets = b;
        up->nbuckets = n;
        for (size_t i = 0; i < old; i++) {
            for (up_pending_t *q = ob[i], *nx; q; q = nx) {
                nx = q->hnext;
                size_t s = slot_of(up, q->id);
                q->hnext = b[s];
                b[s] = q;
            }
        }
        free(ob);
    }
    size_t s = slot_of(up, p->id);
    p->hnext = up->buckets[s];
    up->buckets[s] = p;
    up->npending++;
    return 0;
}

static void table_del(aos_upstream_t *up, up_pending_t *p)
{
    for (up_pending_t **pp = &up->buckets[slot_of(up, p->id)]; *pp; pp = &(*pp)->hnext) {
        if (*pp == p) {
            *pp = p->hnext;
            p->hnext = NULL;
            up->npending--;
            return;
        }
    }
}

up_pending_t *aos__up_pending_find(aos_upstream_t *up, uint64_t id)
{
    if (!up->nbuckets)
        return NULL;
    for (up_pending_t *p = up->buckets[slot_of(up, id)]; p; p = p->hnext)
        if (p->id == id)
            return p;
    return NULL;
}

static void list_push(up_list_t *l, up_pending_t *p)
{
    p->next = NULL;
    p->prev = l->tail;
    if (l->tail)
        l->tail->next = p;
    else
        l->head = p;
    l->tail = p;
    l->n++;
}

static void list_del(up_list_t *l, up_pending_t *p)
{
    if (p->prev)
        p->prev->next = p->next;
    else
        l->head = p->next;
    if (p->next)
        p->next->prev = p->prev;
    else
        l->tail = p->prev;
    p->prev = p->next = NULL;
    l->n--;
}

/* Takes the head off l (NULL when empty). Written out rather than through
 * list_del, whose test of p->prev the static analyzer cannot tie to p being
 * the head: it would then see a freed head read again. */
static up_pending_t *list_pop(up_list_t *l)
{
    up_pending_t *p = l->head;
    if (!p)
        return NULL;
    l->head = p->next;
    if (p->next)
        p->next->prev = NULL;
    else
        l->tail = NULL;
    p->next = NULL;
    l->n--;
    return p;
}

/* Takes p out of the table and its list; it is then the caller's. */
static void pending_detach(aos_upstream_t *up, up_pending_t *p)
{
    table_del(up, p);
    list_del(p->sent ? &up->inflight : &up->queue, p);
}

static void pending_free(up_pending_t *p)
{
    json_decref(p->msg);
    free(p->tracestate);
    free(p);
}

/* params (stolen; an object or NULL) with trace in its _meta, as MCP's
 * semantic conventions put it (SEP-414). A copy when params is shared: the
 * caller may send it again. NULL when out of memory, or params itself when
 * it cannot hold a _meta. */
static json_t *with_trace(json_t *params, const char *traceparent, const char *tracestate)
{
    if (params && !json_is_object(params))
        return params;
    json_t *old = json_object_get(params, "_meta");
    if (old && !json_is_object(old))
        return params;
    json_t *np = params ? json_copy(params) : json_object();
    json_t *meta = old ? json_copy(old) : json_object();
    json_decref(params);
    if (!np || !meta || json_object_set_new(np, "_meta", meta) < 0) {
        if (!np || !json_object_get(np, "_meta"))
            json_decref(meta);
        json_decref(np);
        return NULL;
    }
    /* a tracestate of the caller's belongs to its traceparent, not to ours */
    json_object_del(meta, "tracestate");
    if (json_object_set_new(meta, "traceparent", json_string(traceparent)) < 0 ||
        (tracestate && json_object_set_new(meta, "tracestate", json_string(tracestate)) < 0)) {
        json_decref(np);
        return NULL;
    }
    return np;
}

/* Runs p's callback and frees it; p must be detached. */
static void pending_complete(aos_upstream_t *up, up_pending_t *p, json_t *reply, int status,
                             const char *why)
{
    if (p->cb)
        p->cb(up, reply, status, why, p->data);
    pending_free(p);
}

/* A pending request without its message yet: id, trace context, callback,
 * deadline. NULL when out of memory. */
static up_pending_t *pending_alloc(aos_upstream_t *up, const aos_tracectx_t *trace,
                                   uint32_t timeout_ms, aos_upstream_reply_fn cb, void *data)
{
    up_pending_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    if (aos_tracectx_format(trace, p->traceparent) == 0 && trace->tracestate[0] &&
        !(p->tracestate = strdup(trace->tracestate))) {
        free(p);
        return NULL;
    }
    p->id = ++up->next_id;
    p->cb = cb;
    p->data = data;
    p->timeout_ms = timeout_ms ? timeout_ms : up->timeout_ms;
    p->deadline = uv_now(up->loop) + p->timeout_ms;
    return p;
}

/* params stolen; trace may be NULL. */
static up_pending_t *pending_new(aos_upstream_t *up, const char *method, json_t *params,
                                 const aos_tracectx_t *trace, uint32_t timeout_ms,
                                 aos_upstream_reply_fn cb, void *data)
{
    up_pending_t *p = pending_alloc(up, trace, timeout_ms, cb, data);
    if (!p ||
        (p->traceparent[0] && !(params = with_trace(params, p->traceparent, p->tracestate)))) {
        json_decref(params);
        if (p)
            pending_free(p);
        return NULL;
    }
    /* built by hand: json_pack parses its format string on every call */
    p->msg = json_object();
    if (p->msg && (json_object_set_new_nocheck(p->msg, "jsonrpc", json_string_nocheck("2.0")) ||
                   json_object_set_new_nocheck(p->msg, "id", json_integer((json_int_t)p->id)) ||
                   json_object_set_new(p->msg, "method", json_string(method)))) {
        json_decref(p->msg);
        p->msg = NULL;
    }
    if (!p->msg || (params && json_object_set_new(p->msg, "params", params) != 0)) {
        if (!p->msg)
            json_decref(params);
        pending_free(p);
        return NULL;
    }
    return p;
}

/* ---- transports --------------------------------------------------------- */

static int tx_send(aos_upstream_t *up, json_t *msg, up_pending_t *p)
{
    switch (up->kind) {
    case UP_TX_STDIO:
        return aos__up_stdio_send(up, msg);
    case UP_TX_HTTP:
        return aos__up_http_send(up, msg, p);
    case UP_TX_SSE:
        return aos__up_lsse_send(up, msg, p);
    }
    return AOS_EINTERNAL;
}

/* Sends a pending request. Only Streamable HTTP may need the message again
 * (to resend it in a new session); the others let it go at once. */
static int pending_send(aos_upstream_t *up, up_pending_t *p)
{
    int rc = tx_send(up, p->msg, p);
    if (rc == 0 && up->kind != UP_TX_HTTP) {
        json_decref(p->msg);
        p->msg = NULL;
    }
    return rc;
}

static void tx_abandon(aos_upstream_t *up, up_pending_t *p)
{
    if (up->kind == UP_TX_HTTP)
        aos__up_http_abandon(up, p);
}

static void tx_disconnect(aos_upstream_t *up)
{
    switch (up->kind) {
    case UP_TX_STDIO:
        aos__up_stdio_disconnect(up);
        break;
    case UP_TX_HTTP:
        aos__up_http_disconnect(up);
        break;
    case UP_TX_SSE:
        aos__up_lsse_disconnect(up);
        break;
    }
}

static void send_cancelled(aos_upstream_t *up, uint64_t id, const char *reason)
{
    json_t *params = json_pack("{s:I}", "requestId", (json_int_t)id);
    if (params && reason)
        json_object_set_new(params, "reason", json_string(reason));
    json_t *msg = json_pack("{s:s, s:s, s:o}", "jsonrpc", "2.0", "method",
                            "notifications/cancelled", "params", params);
    if (msg)
        tx_send(up, msg, NULL);
    json_decref(msg);
}

/* ---- timeouts ----------------------------------------------------------- */

static void on_req_timer(uv_timer_t *t);

static void timer_arm(aos_upstream_t *up, uint64_t deadline)
{
    if (!deadline || up->closing)
        return;
    if (up->armed_deadline && up->armed_deadline <= deadline)
        return;
    uint64_t now = uv_now(up->loop);
    up->armed_deadline = deadline;
    uv_timer_start(&up->req_timer, on_req_timer, deadline > now ? deadline - now : 0, 0);
}

static void collect_expired(aos_upstream_t *up, up_list_t *from, up_list_t *into, uint64_t now,
                            uint64_t *next)
{
    for (up_pending_t *p = from->head, *nx; p; p = nx) {
        nx = p->next;
        if (p->deadline && p->deadline <= now) {
            pending_detach(up, p);
            if (p->sent)
                tx_abandon(up, p);
            list_push(into, p);
        } else if (p->deadline && (!*next || p->deadline < *next)) {
            *next = p->deadline;
        }
    }
}

static void on_req_timer(uv_timer_t *t)
{
    aos_upstream_t *up = t->data;
    uint64_t now = uv_now(up->loop), next = 0;
    up_list_t expired = {0};
    up->armed_deadline = 0;
    collect_expired(up, &up->inflight, &expired, now, &next);
    collect_expired(up, &up->queue, &expired, now, &next);
    timer_arm(up, next);
    for (up_pending_t *p; (p = list_pop(&expired));) {
        char why[128];
        if (p->sent) {
            snprintf(why, sizeof(why), "request timed out after %u ms", p->timeout_ms);
            if (!p->internal && !up->closing)
                send_cancelled(up, p->id, "timeout");
        } else {
            snprintf(why, sizeof(why), "timed out after %u ms waiting for the upstream",
                     p->timeout_ms);
        }
        pending_complete(up, p, NULL, AOS_ETIMEDOUT, why);
    }
}

/* ---- state -------------------------------------------------------------- */

static void notify_state(aos_upstream_t *up, aos_upstream_state_t st, const char *why)
{
    if (up->cb.on_state && !up->closing)
        up->cb.on_state(up, st, why, up->data);
}

/* Fails everything pending: sent requests with st_sent, queued with st_queued.
 * All are taken out (and their transfers abandoned) before the first
 * callback runs, so that callbacks see a consistent upstream. */
static void fail_all(aos_upstream_t *up, int st_sent, int st_queued, const char *why)
{
    up_list_t all = {0};
    for (up_pending_t *p; (p = list_pop(&up->inflight));) {
        table_del(up, p);
        tx_abandon(up, p);
        list_push(&all, p);
    }
    for (up_pending_t *p; (p = list_pop(&up->queue));) {
        table_del(up, p);
        list_push(&all, p);
    }
    for (up_pending_t *p; (p = list_pop(&all));)
        pending_complete(up, p, NULL, p->sent ? st_sent : st_queued, why);
}

static uint32_t next_backoff(aos_upstream_t *up)
{
    uint32_t base = up->backoff_cur;
    up->backoff_cur = base >= up->backoff_max / 2 ? up->backoff_max : base * 2;
    /* xorshift64: jitter spreads restarts of many upstreams that failed together */
    up->rng ^= up->rng << 13;
    up->rng ^= up->rng >> 7;
    up->rng ^= up->rng << 17;
    return (uint32_t)((uint64_t)base * (800 + up->rng % 401) / 1000);
}

static void leave_ready(aos_upstream_t *up)
{
    uv_timer_stop(&up->stable_timer);
    json_decref(up->init_result);
    up->init_result = NULL;
    up->proto[0] = '\0';
}

static void on_restart(uv_timer_t *t)
{
    aos_upstream_t *up = t->data;
    begin_connect(up, up->state == AOS_UP_STOPPED ? "starting" : "restarting");
}

void aos__up_conn_lost(aos_upstream_t *up, const char *why)
{
    if (up->closing || up->state == AOS_UP_BACKOFF || up->state == AOS_UP_STOPPED)
        return;
    snprintf(up->last_error, sizeof(up->last_error), "%s", why);
    leave_ready(up);
    if (up->kind == UP_TX_HTTP)
        aos__up_http_disconnect(up);
    else if (up->kind == UP_TX_SSE)
        aos__up_lsse_disconnect(up);
    up->state = AOS_UP_BACKOFF;
    uint32_t delay = next_backoff(up);
    uv_timer_start(&up->restart_timer, on_restart, delay, 0);
    aos__up_log(up, AOS_LOG_WARN, "upstream '%s' failed: %s; retrying in %u ms", up->name, why,
                delay);
    fail_all(up, AOS_EUPSTREAM, AOS_EUNAVAIL, why);
    notify_state(up, AOS_UP_BACKOFF, why);
}

/* A failure the core detected (bad initialize, its timeout): drop the
 * connection and back off. */
static void conn_fail(aos_upstream_t *up, const char *why)
{
    if (up->closing)
        return;
    tx_disconnect(up);
    aos__up_conn_lost(up, why);
}

void aos__up_request_failed(aos_upstream_t *up, uint64_t id, int status, const char *why)
{
    up_pending_t *p = aos__up_pending_find(up, id);
    if (!p)
        return;
    pending_detach(up, p);
    if (p->sent)
        tx_abandon(up, p);
    pending_complete(up, p, NULL, status, why);
}

static void flush_queue(aos_upstream_t *up)
{
    for (up_pending_t *p; up->state == AOS_UP_READY && !up->closing && (p = up->queue.head);) {
        list_del(&up->queue, p);
        p->sent = 1;
        list_push(&up->inflight, p);
        if (pending_send(up, p) != 0) {
            pending_detach(up, p);
            pending_complete(up, p, NULL, AOS_EUPSTREAM, "unable to send the request");
        }
    }
}

static void on_stable(uv_timer_t *t)
{
    aos_upstream_t *up = t->data;
    up->backoff_cur = up->backoff_min;
}

static const char *str_or(const char *s, const char *dflt)
{
    return s ? s : dflt;
}

static int version_supported(const char *v)
{
    for (int i = 0; v && protocol_versions[i]; i++)
        if (strcmp(v, protocol_versions[i]) == 0)
            return 1;
    return 0;
}

static void init_reply(aos_upstream_t *up, json_t *reply, int status, const char *errmsg,
                       void *data)
{
    char why[300];
    (void)data;
    if (up->state != AOS_UP_STARTING || up->closing)
        return; /* failed or closed meanwhile: already handled */
    if (status) {
        snprintf(why, sizeof(why), "initialize: %s", errmsg ? errmsg : aos_strerror(status));
        conn_fail(up, why);
        return;
    }
    json_t *err = json_object_get(reply, "error");
    json_t *res = json_object_get(reply, "result");
    const char *ver = json_string_value(json_object_get(res, "protocolVersion"));
    if (err || !json_is_object(res)) {
        const json_t *m = json_object_get(err, "message");
        char text[128];
        aos__up_reason(up, json_is_string(m) ? json_string_value(m) : "no result",
                       json_is_string(m) ? json_string_length(m) : 9, text, sizeof(text));
        snprintf(why, sizeof(why), "initialize failed: %s", text);
        conn_fail(up, why);
        return;
    }
    if (!version_supported(ver)) {
        char text[40];
        aos__up_reason(up, ver ? ver : "", ver ? strlen(ver) : 0, text, sizeof(text));
        snprintf(why, sizeof(why), "unsupported protocol version '%s'", text);
        conn_fail(up, why);
        return;
    }
    snprintf(up->proto, sizeof(up->proto), "%s", ver);
    json_decref(up->init_result);
    up->init_result = json_incref(res);
    json_t *note = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized");
    /* Over Streamable HTTP every message is a POST of its own, and a server
     * may act on notifications/initialized (server-everything registers
     * tools then): the requests wait until the server took it, or a request
     * could overtake it */
    int rc = !note                    ? AOS_ENOMEM
             : up->kind == UP_TX_HTTP ? aos__up_http_send_initialized(up, note)
                                      : tx_send(up, note, NULL);
    json_decref(note);
    if (rc) {
        conn_fail(up, "unable to send notifications/initialized");
        return;
    }
    if (up->kind != UP_TX_HTTP)
        aos__up_initialized(up);
}

void aos__up_initialized(aos_upstream_t *up)
{
    if (up->state != AOS_UP_STARTING || up->closing)
        return;
    const json_t *res = up->init_result;
    const char *ver = up->proto;
    up->state = AOS_UP_READY;
    json_t *info = json_object_get(res, "serverInfo");
    aos__up_log(up, AOS_LOG_INFO, "upstream '%s' ready: %s %s, protocol %s", up->name,
                str_or(json_string_value(json_object_get(info, "name")), "?"),
                str_or(json_string_value(json_object_get(info, "version")), "?"), ver);
    uv_timer_start(&up->stable_timer, on_stable, UP_STABLE_MS, 0);
    if (up->kind == UP_TX_HTTP)
        aos__up_http_ready(up);
    flush_queue(up);
    if (up->state == AOS_UP_READY)
        notify_state(up, AOS_UP_READY, "initialized");
}

static void send_initialize(aos_upstream_t *up)
{
    /* a legacy HTTP+SSE server speaks 2024-11-05; offering it avoids a
     * server that rejects versions it does not know */
    const char *offer = up->kind == UP_TX_SSE ? UP_LEGACY_VERSION : UP_OFFERED_VERSION;
    json_t *params = json_pack("{s:s, s:O, s:O}", "protocolVersion", offer, "capabilities",
                               up->client_caps, "clientInfo", up->client_info);
    up_pending_t *p =
        params ? pending_new(up, "initialize", params, NULL, 0, init_reply, NULL) : NULL;
    if (!p || table_add(up, p) != 0) {
        if (p)
            pending_free(p);
        conn_fail(up, "out of memory");
        return;
    }
    p->internal = 1;
    p->sent = 1;
    list_push(&up->inflight, p);
    timer_arm(up, p->deadline);
    if (pending_send(up, p) != 0) {
        pending_detach(up, p);
        pending_free(p);
        conn_fail(up, "unable to send initialize");
    }
}

static void begin_connect(aos_upstream_t *up, const char *why)
{
    leave_ready(up);
    up->state = AOS_UP_STARTING;
    aos__up_log(up, AOS_LOG_INFO, "upstream '%s' %s", up->name, why);
    notify_state(up, AOS_UP_STARTING, why);
    if (up->closing || up->state != AOS_UP_STARTING)
        return;
    if (up->kind == UP_TX_HTTP) {
        aos__up_http_init(up);
    } else {
        char err[256];
        int rc = up->kind == UP_TX_STDIO ? aos__up_stdio_connect(up, err, sizeof(err))
                                         : aos__up_lsse_connect(up, err, sizeof(err));
        if (rc != 0) {
            aos__up_conn_lost(up, err);
            return;
        }
    }
    send_initialize(up);
}

void aos__up_session_expired(aos_upstream_t *up, uint64_t id, int current)
{
    if (up->closing)
        return;
    up_pending_t *p = id ? aos__up_pending_find(up, id) : NULL;
    if (p && p->sent && !p->internal) {
        /* the server never saw it: send it again in the new session */
        list_del(&up->inflight, p);
        p->sent = 0;
        p->post = NULL;
        list_push(&up->queue, p);
    }
    if (current && up->state == AOS_UP_READY) {
        /* a server that forgets every session at once must not make us spin */
        if (++up->expiries >= UP_MAX_EXPIRIES) {
            up->expiries = 0;
            aos__up_conn_lost(up, "the session keeps expiring");
            return;
        }
        begin_connect(up, "session expired, initializing again");
    } else if (up->state == AOS_UP_READY) {
        flush_queue(up);
    }
}

/* ---- incoming messages -------------------------------------------------- */

/* Answers the server's request id with the JSON-RPC error of code (AOS_E*). */
static void respond_error(aos_upstream_t *up, json_t *id, int code)
{
    json_t *m = aos_rpc_error_aos(id, code, NULL);
    if (m)
        tx_send(up, m, NULL);
    json_decref(m);
}

static void dispatch_one(aos_upstream_t *up, json_t *m)
{
    if (!json_is_object(m)) {
        aos__up_log(up, AOS_LOG_WARN, "upstream '%s': ignoring a message that is not an object",
                    up->name);
        return;
    }
    const char *method = json_string_value(json_object_get(m, "method"));
    json_t *id = json_object_get(m, "id");
    if (method) {
        if (id && !json_is_null(id)) {
            if (strcmp(method, "ping") == 0) {
                json_t *r = json_pack("{s:s, s:O, s:{}}", "jsonrpc", "2.0", "id", id, "result");
                if (r)
                    tx_send(up, r, NULL);
                json_decref(r);
            } else if (up->cb.on_request) {
                up->cb.on_request(up, m, up->data);
            } else {
                respond_error(up, id, AOS_ENOMETHOD);
            }
        } else if (up->cb.on_notification) {
            up->cb.on_notification(up, m, up->data);
        }
        return;
    }
    if (json_object_get(m, "result") || json_object_get(m, "error")) {
        up_pending_t *p = json_is_integer(id) && json_integer_value(id) > 0
                              ? aos__up_pending_find(up, (uint64_t)json_integer_value(id))
                              : NULL;
        if (!p || !p->sent) {
            const char *em =
                json_string_value(json_object_get(json_object_get(m, "error"), "message"));
            aos__up_log(up, AOS_LOG_DEBUG,
                        "upstream '%s': dropping a response to no pending request%s%.200s",
                        up->name, em ? ": " : "", em ? em : "");
            return;
        }
        up->expiries = 0;
        pending_detach(up, p);
        pending_complete(up, p, m, 0, NULL);
        return;
    }
    aos__up_log(up, AOS_LOG_WARN, "upstream '%s': ignoring a message that is not JSON-RPC",
                up->name);
}

void aos__up_dispatch(aos_upstream_t *up, json_t *msg)
{
    if (json_is_array(msg)) { /* a batch (protocol 2025-03-26) */
        for (size_t i = 0; i < json_array_size(msg) && !up->closing; i++)
            dispatch_one(up, json_array_get(msg, i));
        return;
    }
    if (!up->closing)
        dispatch_one(up, msg);
}

int aos__up_dispatch_raw(aos_upstream_t *up, const char *line, size_t len)
{
    aos_rpc_scan_t sc;
    if (up->closing || !aos_rpc_scan_result(line, len, &sc))
        return 0;
    up_pending_t *p = aos__up_pending_find(up, sc.id);
    if (!p || !p->sent || !p->raw)
        return 0; /* dispatch_one's, as any other message */
    up->expiries = 0;
    pending_detach(up, p);
    p->raw(up, line, len, &sc, p->data);
    pending_free(p);
    return 1;
}

void aos__up_dispatch_event(aos_upstream_t *up, const char *data, size_t len)
{
    json_error_t jerr;
    json_t *msg = json_loadb(data, len, JSON_ALLOW_NUL, &jerr);
    if (!msg) {
        aos__up_log(up, AOS_LOG_WARN, "upstream '%s': ignoring an event that is not JSON: %s",
                    up->name, jerr.text);
        return;
    }
    aos__up_dispatch(up, msg);
    json_decref(msg);
}

/* ---- reasons: what an upstream said, fit to show ----------------------- */

#define REASON_MAX        100 /* bytes of an upstream's own words kept */
#define REASON_SECRETS    64
#define REASON_MIN_SECRET 4 /* shorter values would blot out ordinary words */

typedef struct {
    const char *p[REASON_SECRETS];
    size_t n[REASON_SECRETS];
    int count;
} reason_secrets_t;

static void secret_add(reason_secrets_t *s, const char *p, size_t n)
{
    if (n >= REASON_MIN_SECRET && s->count < REASON_SECRETS) {
        s->p[s->count] = p;
        s->n[s->count++] = n;
    }
}

/* The values after sep in "K<sep>V" strings. */
static void secrets_of_strv(reason_secrets_t *s, char **v, const char *sep)
{
    for (size_t i = 0; v && v[i]; i++) {
        const char *at = strstr(v[i], sep);
        if (at)
            secret_add(s, at + strlen(sep), strlen(at + strlen(sep)));
    }
}

/* The url's userinfo (and its password alone) and its query values. */
static void secrets_of_url(reason_secrets_t *s, const char *url)
{
    const char *auth = url ? strstr(url, "://") : NULL;
    if (!auth)
        return;
    auth += 3;
    size_t alen = strcspn(auth, "/?#");
    const char *at = memchr(auth, '@', alen);
    if (at) {
        secret_add(s, auth, (size_t)(at - auth));
        const char *colon = memchr(auth, ':', (size_t)(at - auth));
        if (colon)
            secret_add(s, colon + 1, (size_t)(at - colon - 1));
    }
    const char *q = strchr(auth, '?');
    while (q && *q && *q != '#') {
        q++;
        size_t plen = strcspn(q, "&#");
        const char *eq = memchr(q, '=', plen);
        if (eq)
            secret_add(s, eq + 1, plen - (size_t)(eq + 1 - q));
        q += plen;
        if (*q != '&')
            break;
    }
}

void aos__up_reason(const aos_upstream_t *up, const char *text, size_t len, char *out, size_t n)
{
    reason_secrets_t sec = {.count = 0};
    if (up->bearer)
        secret_add(&sec, up->bearer, strlen(up->bearer));
    secrets_of_strv(&sec, up->headers, ": ");
    secrets_of_strv(&sec, up->env, "=");
    secrets_of_url(&sec, up->url);
    size_t o = 0, limit = n > REASON_MAX + 4 ? REASON_MAX : (n > 4 ? n - 4 : 0);
    size_t i = 0;
    while (i < len && o < limit) {
        int hit = -1;
        for (int k = 0; k < sec.count && hit < 0; k++)
            if (len - i >= sec.n[k] && !memcmp(text + i, sec.p[k], sec.n[k]))
                hit = k;
        if (hit >= 0) {
            const char *mark = "[REDACTED]";
            for (const char *m = mark; *m && o < limit; m++)
                out[o++] = *m;
            i += sec.n[hit];
            continue;
        }
        unsigned char c = (unsigned char)text[i++];
        out[o++] = c < 0x20 || c == 0x7f ? ' ' : c > 0x7e ? '?' : (char)c;
    }
    if (i < len && n >= 4) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    if (n)
        out[o < n ? o : n - 1] = '\0';
}

/* ---- lifetime ----------------------------------------------------------- */

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static int strv_dup(char ***out, const char *const *v)
{
    size_t n = 0;
    *out = NULL;
    while (v && v[n])
        n++;
    char **c = calloc(n + 1, sizeof(*c));
    if (!c)
        return AOS_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        if (!(c[i] = strdup(v[i]))) {
            strv_free(c);
            return AOS_ENOMEM;
        }
    }
    *out = c;
    return 0;
}

static int dup_opt(char **dst, const char *s)
{
    *dst = s ? strdup(s) : NULL;
    return s && !*dst ? AOS_ENOMEM : 0;
}

static void up_free(aos_upstream_t *up)
{
    free(up->name);
    free(up->command);
    free(up->cwd);
    strv_free(up->args);
    strv_free(up->env);
    strv_free(up->passthrough);
    free(up->url);
    strv_free(up->headers);
    if (up->bearer) {
        memset(up->bearer, 0, strlen(up->bearer));
        free(up->bearer);
    }
    free(up->ca_file);
    json_decref(up->client_caps);
    json_decref(up->client_info);
    json_decref(up->init_result);
    free(up->session_id);
    free(up->lsse_endpoint);
    json_decref(up->lsse_outbox);
    free(up->buckets);
    free(up);
}

void aos__up_unref(aos_upstream_t *up)
{
    if (--up->refs > 0 || !up->closing)
        return;
    if (up->closed)
        up->closed(up, up->closed_data);
    up_free(up);
}

static void timer_closed(uv_handle_t *h)
{
    aos__up_unref(h->data);
}

static int has_crlf(const char *const *v)
{
    for (size_t i = 0; v && v[i]; i++)
        if (strpbrk(v[i], "\r\n"))
            return 1;
    return 0;
}

int aos_upstream_new(aos_upstream_t **out, uv_loop_t *loop, aos_httpc_t *httpc,
                     const aos_upstream_cfg_t *cfg, const aos_upstream_cb_t *cb, void *data,
                     aos_err_t *err)
{
    *out = NULL;
    if (!loop || !cfg || !cfg->transport)
        return aos_err_set(err, AOS_EINVAL, "missing loop or transport");
    const char *name = cfg->name ? cfg->name : "upstream";
    up_tx_kind_t kind;
    if (strcmp(cfg->transport, "stdio") == 0) {
        if (!cfg->command || !*cfg->command)
            return aos_err_set(err, AOS_EINVAL, "upstream '%s': stdio needs a command", name);
        kind = UP_TX_STDIO;
    } else if (strcmp(cfg->transport, "streamable-http") == 0 ||
               strcmp(cfg->transport, "sse") == 0) {
        if (!cfg->url ||
            (strncmp(cfg->url, "http://", 7) != 0 && strncmp(cfg->url, "https://", 8) != 0))
            return aos_err_set(err, AOS_EINVAL, "upstream '%s': needs an http(s) url", name);
        if (!httpc)
            return aos_err_set(err, AOS_EINVAL, "upstream '%s': needs an http client", name);
        if (has_crlf(cfg->headers) || (cfg->bearer_token && strpbrk(cfg->bearer_token, "\r\n")))
            return aos_err_set(err, AOS_EINVAL, "upstream '%s': line break in a header", name);
        kind = strcmp(cfg->transport, "sse") == 0 ? UP_TX_SSE : UP_TX_HTTP;
    } else {
        return aos_err_set(err, AOS_EINVAL, "upstream '%s': unknown transport '%.32s'", name,
                           cfg->transport);
    }
    if (cfg->client_capabilities && !json_is_object(cfg->client_capabilities))
        return aos_err_set(err, AOS_EINVAL, "upstream '%s': capabilities must be an object", name);

    aos_upstream_t *up = calloc(1, sizeof(*up));
    if (!up)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    up->loop = loop;
    up->httpc = httpc;
    if (cb)
        up->cb = *cb;
    up->data = data;
    up->kind = kind;
    up->timeout_ms = cfg->request_timeout_ms ? cfg->request_timeout_ms : UP_DEFAULT_TIMEOUT_MS;
    up->backoff_min = cfg->restart_min_ms ? cfg->restart_min_ms : UP_BACKOFF_MIN_MS;
    up->backoff_max = cfg->restart_max_ms ? cfg->restart_max_ms : UP_BACKOFF_MAX_MS;
    if (up->backoff_max < up->backoff_min)
        up->backoff_max = up->backoff_min;
    up->backoff_cur = up->backoff_min;
    up->rng = uv_hrtime() ^ (uint64_t)(uintptr_t)up;
    if (!up->rng)
        up->rng = 1;
    int rc = 0;
    rc |= dup_opt(&up->name, name);
    rc |= dup_opt(&up->command, cfg->command);
    rc |= dup_opt(&up->cwd, cfg->cwd);
    rc |= strv_dup(&up->args, cfg->args);
    rc |= strv_dup(&up->env, cfg->env);
    rc |= strv_dup(&up->passthrough, cfg->env_passthrough);
    rc |= dup_opt(&up->url, cfg->url);
    rc |= strv_dup(&up->headers, cfg->headers);
    rc |= dup_opt(&up->bearer, cfg->bearer_token);
    rc |= dup_opt(&up->ca_file, cfg->ca_file);
    up->client_caps =
        cfg->client_capabilities ? json_deep_copy(cfg->client_capabilities) : json_object();
    up->client_info = cfg->client_info
                          ? json_deep_copy(cfg->client_info)
                          : json_pack("{s:s, s:s}", "name", "aosd", "version", AOS_VERSION);
    if (rc || !up->client_caps || !up->client_info) {
        up_free(up);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    uv_timer_t *timers[] = {&up->req_timer, &up->restart_timer, &up->stable_timer, &up->http_timer};
    for (size_t i = 0; i < sizeof(timers) / sizeof(timers[0]); i++) {
        uv_timer_init(loop, timers[i]);
        timers[i]->data = up;
        up->refs++;
    }
    *out = up;
    return 0;
}

int aos_upstream_start(aos_upstream_t *up)
{
    if (!up || up->closing || up->state != AOS_UP_STOPPED ||
        uv_is_active((uv_handle_t *)&up->restart_timer))
        return AOS_EINVAL;
    uv_timer_start(&up->restart_timer, on_restart, 0, 0);
    return 0;
}

int aos_upstream_request(aos_upstream_t *up, const char *method, json_t *params,
                         uint32_t timeout_ms, const aos_tracectx_t *trace, aos_upstream_reply_fn cb,
                         void *data, uint64_t *id)
{
    if (!up || !method || !*method) {
        json_decref(params);
        return AOS_EINVAL;
    }
    int ready = up->state == AOS_UP_READY;
    if (up->closing || up->state == AOS_UP_BACKOFF || up->state == AOS_UP_CLOSED ||
        (!ready && up->queue.n >= UP_MAX_QUEUE)) {
        json_decref(params);
        return AOS_EUNAVAIL;
    }
    /* to a ready stdio child the message is written straight from method
     * and params (stdio.c), no message built: it is sent once, now */
    int direct = ready && up->kind == UP_TX_STDIO;
    up_pending_t *p = direct ? pending_alloc(up, trace, timeout_ms, cb, data)
                             : pending_new(up, method, params, trace, timeout_ms, cb, data);
    if (!p) {
        if (direct)
            json_decref(params);
        return AOS_ENOMEM;
    }
    if (table_add(up, p) != 0) {
        if (direct)
            json_decref(params);
        pending_free(p);
        return AOS_ENOMEM;
    }
    p->sent = ready;
    list_push(ready ? &up->inflight : &up->queue, p);
    if (ready) {
        int rc = direct ? aos__up_stdio_request(up, p, method, params) : pending_send(up, p);
        if (direct)
            json_decref(params);
        if (rc) {
            pending_detach(up, p);
            pending_free(p);
            return rc;
        }
    }
    timer_arm(up, p->deadline);
    if (id)
        *id = p->id;
    return 0;
}

int aos_upstream_set_raw(aos_upstream_t *up, uint64_t id, aos_upstream_raw_fn raw)
{
    up_pending_t *p = up ? aos__up_pending_find(up, id) : NULL;
    if (!p)
        return AOS_ENOTFOUND;
    p->raw = raw;
    return 0;
}

int aos_upstream_notify(aos_upstream_t *up, const char *method, json_t *params)
{
    if (!up || !method || !*method) {
        json_decref(params);
        return AOS_EINVAL;
    }
    if (up->closing || up->state != AOS_UP_READY) {
        json_decref(params);
        return AOS_EUNAVAIL;
    }
    json_t *m = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (!m || (params && json_object_set_new(m, "params", params) != 0)) {
        if (!m)
            json_decref(params);
        json_decref(m);
        return AOS_ENOMEM;
    }
    int rc = tx_send(up, m, NULL);
    json_decref(m);
    return rc;
}

int aos_upstream_respond(aos_upstream_t *up, json_t *msg)
{
    if (!up || !json_is_object(msg) || !json_object_get(msg, "id")) {
        json_decref(msg);
        return AOS_EINVAL;
    }
    if (up->closing || (up->state != AOS_UP_READY && up->state != AOS_UP_STARTING)) {
        json_decref(msg);
        return AOS_EUNAVAIL;
    }
    if (!json_object_get(msg, "jsonrpc"))
        json_object_set_new(msg, "jsonrpc", json_string("2.0"));
    int rc = tx_send(up, msg, NULL);
    json_decref(msg);
    return rc;
}

void aos_upstream_cancel(aos_upstream_t *up, uint64_t id, const char *reason)
{
    up_pending_t *p = up ? aos__up_pending_find(up, id) : NULL;
    if (!p || p->internal)
        return;
    pending_detach(up, p);
    if (p->sent) {
        if (!up->closing)
            send_cancelled(up, id, reason);
        tx_abandon(up, p);
    }
    pending_free(p);
}

aos_upstream_state_t aos_upstream_state(const aos_upstream_t *up)
{
    return up->state;
}

const json_t *aos_upstream_init_result(const aos_upstream_t *up)
{
    return up->state == AOS_UP_READY ? up->init_result : NULL;
}

const char *aos_upstream_protocol_version(const aos_upstream_t *up)
{
    return up->state == AOS_UP_READY ? up->proto : NULL;
}

const aos_httpc_cert_t *aos_upstream_peer_cert(const aos_upstream_t *up)
{
    return up->has_peer_cert ? &up->peer_cert : NULL;
}

void aos__up_note_cert(aos_upstream_t *up, aos_httpc_req_t *r)
{
    aos_httpc_cert_t c;
    if (aos_httpc_peer_cert(r, &c)) { /* a new handshake; a reused connection has none */
        up->peer_cert = c;
        up->has_peer_cert = 1;
    }
}

const char *aos_upstream_last_error(const aos_upstream_t *up)
{
    return up->last_error;
}

int aos_upstream_pid(const aos_upstream_t *up)
{
    return up->kind == UP_TX_STDIO ? aos__up_stdio_pid(up) : 0;
}

const char *aos_upstream_name(const aos_upstream_t *up)
{
    return up->name;
}

void aos_upstream_close(aos_upstream_t *up, void (*closed)(aos_upstream_t *up, void *data),
                        void *data)
{
    if (!up || up->closing)
        return;
    /* closing first: the callbacks below may call anything, this included */
    up->closing = 1;
    up->closed = closed;
    up->closed_data = data;
    up->state = AOS_UP_CLOSED;
    uv_timer_stop(&up->stable_timer);
    uv_timer_stop(&up->req_timer);
    uv_timer_stop(&up->restart_timer);
    fail_all(up, AOS_ECANCELED, AOS_ECANCELED, "upstream closed");
    if (up->cb.on_state)
        up->cb.on_state(up, AOS_UP_CLOSED, "closed", up->data);
    /* from here on no callback but `closed` runs */
    if (up->kind == UP_TX_STDIO)
        aos__up_stdio_close(up);
    else if (up->kind == UP_TX_HTTP)
        aos__up_http_close(up); /* DELETE still sends MCP-Protocol-Version */
    else
        aos__up_lsse_close(up);
    leave_ready(up);
    uv_close((uv_handle_t *)&up->req_timer, timer_closed);
    uv_close((uv_handle_t *)&up->restart_timer, timer_closed);
    uv_close((uv_handle_t *)&up->stable_timer, timer_closed);
    uv_close((uv_handle_t *)&up->http_timer, timer_closed);
}
