/* call.c - one client request carried to a server and its answer back,
 * through the server's isolation policies (see guard.h): circuit breaker,
 * rate limit (per server and per caller), daily or monthly quota (whose
 * count the store keeps across restarts), a
 * concurrency limit with a bounded wait queue, and retries with back-off
 * where a retry is safe. Failures are logged and emitted as events with an
 * error fingerprint; a fingerprint that repeats raises one anomaly per
 * window. */
#include "gateway/internal.h"
#include "auth/auth.h"
#include "log/log.h"
#include "registry/registry.h"
#include "trace/trace.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define ANOMALY_WINDOW_MS 60000
#define ANOMALY_THRESHOLD 3

struct gw_ticket {
    gw_call_t *c; /* NULL once the call was freed first */
};

static void call_closed(aos_http_req_t *req, int aborted, void *data)
{
    gw_call_t *c = data;
    /* The client left. Per the MCP transport rules this is not a
     * cancellation: the call runs on and its answer is dropped. */
    c->req = NULL;
}

gw_call_t *gw_call_new(aos_gateway_t *gw, enum gw_call_kind kind, gw_session_t *sess,
                       const json_t *id, aos_http_req_t *req)
{
    gw_call_t *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->gw = gw;
    c->kind = kind;
    c->sess = sess;
    c->id = id ? json_deep_copy(id) : json_null();
    c->req = req;
    c->started_ns = uv_hrtime();
    if (req) {
        /* the request's server span, or the request's own context */
        const aos_tracectx_t *tc = aos_span_context(aos_trace_request_span_of(req));
        c->trace = tc ? *tc : *aos_http_trace(req);
        const char *accept = aos_http_header(req, "Accept");
        c->accept_sse = accept && strstr(accept, "text/event-stream") != NULL;
        const aos_principal_t *p = aos_auth_principal(req);
        size_t n = 0;
        if (p)
            aos_str_put(c->caller, sizeof(c->caller), &n, p->id, SIZE_MAX);
        aos_http_on_close(req, call_closed, c);
    }
    if (sess) {
        c->s_next = sess->calls;
        if (sess->calls)
            sess->calls->s_prev = c;
        sess->calls = c;
    }
    gw_call_prime_later(c);
    return c;
}

/* ---- the server's list of calls and its wait queue ---------------------- */

static void link_server(gw_call_t *c, gw_server_t *sv)
{
    c->server = sv;
    c->sv_prev = NULL;
    c->sv_next = sv->calls;
    if (sv->calls)
        sv->calls->sv_prev = c;
    sv->calls = c;
}

static void unlink_server(gw_call_t *c)
{
    gw_server_t *sv = c->server;
    if (!sv)
        return;
    if (c->sv_prev)
        c->sv_prev->sv_next = c->sv_next;
    else if (sv->calls == c)
        sv->calls = c->sv_next;
    if (c->sv_next)
        c->sv_next->sv_prev = c->sv_prev;
    c->sv_prev = c->sv_next = NULL;
    if (c->phase == GW_PHASE_QUEUED || c->phase == GW_PHASE_COUNTING) {
        gw_call_t **p = c->phase == GW_PHASE_QUEUED ? &sv->queue : &sv->counting;
        while (*p && *p != c)
            p = &(*p)->q_next;
        if (*p)
            *p = c->q_next;
        c->q_next = NULL;
        if (c->phase == GW_PHASE_QUEUED)
            sv->queued--;
    }
    c->server = NULL;
    c->phase = GW_PHASE_NONE;
}

static void pump(gw_server_t *sv);
static void record(gw_call_t *c, const char *server, const char *outcome);

void gw_wipe_env(json_t *env)
{
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (json_is_string(v)) /* jansson's own copy of the text, zeroed in place */
            sodium_memzero((char *)json_string_value(v), json_string_length(v));
    }
}

void gw_call_free(gw_call_t *c)
{
    gw_server_t *sv = c->server;
    if (c->ticket)
        c->ticket->c = NULL;
    if (c->retry_timer) {
        c->retry_timer->data = NULL;
        uv_close((uv_handle_t *)c->retry_timer, (uv_close_cb)free);
        c->retry_timer = NULL;
    }
    int was_sent = c->phase == GW_PHASE_SENT;
    if (was_sent && c->up)
        aos_upstream_cancel(c->up, c->up_id, "client request ended");
    if (sv && c->probe && c->phase != GW_PHASE_NONE)
        aos_breaker_release(&sv->breaker);
    if (was_sent && sv)
        record(c, sv->name, "canceled");
    unlink_server(c);
    if (was_sent && sv) {
        sv->active--;
        pump(sv);
    }
    if (c->sess) {
        if (c->s_prev)
            c->s_prev->s_next = c->s_next;
        else if (c->sess->calls == c)
            c->sess->calls = c->s_next;
        if (c->s_next)
            c->s_next->s_prev = c->s_prev;
    }
    if (c->progress)
        aos_map_del_u64(&c->gw->progress, c->progress);
    gw_tq_del(&c->gw->prime, &c->prime);
    if (c->st)
        gw_stream_orphan(c->st);
    if (c->req)
        aos_http_on_close(c->req, NULL, NULL);
    json_decref(c->id);
    json_decref(c->client_progress);
    if (c->params && c->params->refcount == 1) /* its _meta carries a copy of env */
        gw_wipe_env(json_object_get(json_object_get(c->params, "_meta"), "aos/env"));
    json_decref(c->params);
    if (c->span) { /* cut short: cancelled, or the server went away */
        aos_span_set_error(c->span, aos_err_code(AOS_ECANCELED), "the call ended unanswered");
        aos_span_end(c->span);
        c->span = NULL;
    }
    if (c->defer_timer) {
        if (c->defer_armed) {
            c->defer_timer->data = NULL;
            uv_close((uv_handle_t *)c->defer_timer, (uv_close_cb)free);
        } else {
            free(c->defer_timer);
        }
    }
    json_decref(c->caps);
    json_decref(c->deferred);
    gw_wipe_env(c->env);
    json_decref(c->env);
    free(c->idempotency_key);
    free(c->on_behalf_of);
    free(c->method);
    free(c->server_name);
    free(c->tool);
    free(c);
}

/* ---- answers --------------------------------------------------------------- */

/* The call's trace id; a new trace's when it has none (it costs a getrandom). */
static const char *trace_id(gw_call_t *c)
{
    if (!c->trace.trace_id[0])
        aos_tracectx_new(&c->trace);
    return c->trace.trace_id;
}

/* Counts c in the metrics. Label values come from the registry only: the
 * server's name, and the tool's if the server lists it - any other name a
 * client sends counts as "other", so clients cannot grow /metrics. */
static void record(gw_call_t *c, const char *server, const char *outcome)
{
    aos_gateway_t *gw = c->gw;
    double secs = (double)(uv_hrtime() - c->started_ns) / 1e9;
    const char *tool = "";
    if (c->tool) {
        const gw_server_t *sv = gw_server_get(gw, server);
        tool = sv && gw_server_has_tool(sv, c->tool) ? c->tool : AOS_METRICS_OTHER;
    }
    aos_metric_add(gw->m_calls, 1, server, tool, outcome);
    if (c->tool)
        aos_metric_observe(gw->m_latency, secs, server, tool);
    /* error.type: empty on success (OpenTelemetry sets none) */
    aos_metric_observe(gw->m_client_op, secs, aos_metrics_mcp_method(c->method), tool,
                       strcmp(outcome, "ok") ? outcome : "", server);
}

void gw_call_send(gw_call_t *c, json_t *msg)
{
    if (c->kind == GW_CALL_INPROC) {
        const char *m = aos_rpc_method(msg);
        if (c->on_progress && m && !strcmp(m, "notifications/progress"))
            c->on_progress(aos_rpc_params(msg), c->done_data);
        json_decref(msg);
        return;
    }
    if (!c->st)
        gw_call_open_stream(c); /* when it can: else the session's GET stream */
    if (c->st)
        gw_stream_send(c->st, msg, 0);
    else if (c->sess)
        gw_session_send(c->sess, json_incref(msg));
    json_decref(msg);
}

/* The AOS code of an error answer: our own errors keep their meaning
 * (data.aos_code, set by call_error_v); the upstream's are AOS_EUPSTREAM.
 * *after: data.retry_after_s, or 0. */
static int answer_error(const json_t *e, json_int_t *after)
{
    int aos = AOS_EUPSTREAM;
    const json_t *d = json_object_get(e, "data");
    if (json_is_string(json_object_get(d, "aos_code"))) {
        const char *cs = json_string_value(json_object_get(d, "aos_code"));
#define XX(name, status, rpc, cstr, msg)                                                           \
    if (!strcmp(cs, cstr))                                                                         \
        aos = AOS_##name;
        AOS_ERR_MAP(XX)
#undef XX
    }
    *after = json_integer_value(json_object_get(d, "retry_after_s"));
    return aos;
}

/* In-process answers: the result, or the error, to the caller's done. */
static void finish_inproc(gw_call_t *c, json_t *msg)
{
    aos_gateway_done_fn done = c->done;
    c->done = NULL;
    json_t *res = json_object_get(msg, "result");
    if (res) {
        done(json_incref(res), NULL, 0, c->done_data);
        return;
    }
    const json_t *e = json_object_get(msg, "error");
    json_int_t after = 0;
    int aos = answer_error(e, &after);
    const char *m = json_string_value(json_object_get(e, "message"));
    aos_err_t err = {0, ""};
    aos_err_set(&err, aos, "%s", m ? m : aos_strerror(aos));
    done(NULL, &err, after > 0 ? (uint64_t)after : 0, c->done_data);
}

/* REST answers: the result itself, or the error as a REST error. */
static void finish_rest(gw_call_t *c, json_t *msg)
{
    json_t *res = json_object_get(msg, "result");
    if (res) {
        aos_http_respond_json(c->req, 200, json_incref(res));
        return;
    }
    json_t *e = json_object_get(msg, "error");
    json_int_t code = json_integer_value(json_object_get(e, "code"));
    const char *m = json_string_value(json_object_get(e, "message"));
    json_int_t after;
    int aos = answer_error(e, &after);
    if (after > 0) {
        char v[32];
        snprintf(v, sizeof(v), "%lld", (long long)after);
        aos_http_add_header(c->req, "Retry-After", v);
    }
    json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", aos_err_code(aos), "message",
                             m ? m : aos_strerror(aos));
    if (aos == AOS_EUPSTREAM)
        json_object_set_new(json_object_get(body, "error"), "rpc_code", json_integer(code));
    aos_http_respond_json(c->req, (unsigned)aos_err_http_status(aos), body);
}

static void on_deferred(uv_timer_t *t)
{
    gw_call_t *c = t->data;
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    if (!c)
        return;
    c->defer_timer = NULL;
    c->defer_armed = 0;
    json_t *msg = c->deferred;
    c->deferred = NULL;
    gw_call_finish(c, msg);
}

void gw_call_finish(gw_call_t *c, json_t *msg)
{
    if (c->kind == GW_CALL_INPROC && c->done && c->starting) {
        /* answered inside aos_gateway_call (a built-in, a refusal): its
         * caller hears of it on the next turn of the loop, as promised */
        c->starting = 0;
        c->deferred = msg;
        c->defer_armed = 1;
        uv_timer_init(c->gw->cfg.loop, c->defer_timer);
        c->defer_timer->data = c;
        uv_timer_start(c->defer_timer, on_deferred, 0, 0);
        return;
    }
    if (c->req)
        gw_span_outcome(c->req, msg);
    if (c->kind == GW_CALL_INPROC && c->done)
        finish_inproc(c, msg);
    else if (c->st) /* kept for replay: a client that lost the connection comes back for it */
        gw_stream_send(c->st, msg, 1);
    else if (c->req && c->kind == GW_CALL_REST)
        finish_rest(c, msg);
    else if (c->req)
        gw_respond_msg(c->req, json_incref(msg));
    json_decref(msg);
    gw_call_free(c);
}

/* An error of ours as a JSON-RPC error whose data names the AOS code (and
 * when to retry), so the REST side can give it the right HTTP status. */
static json_t *call_error_v(gw_call_t *c, int code, uint64_t retry_after_s, const char *m)
{
    json_t *data = json_pack("{s:s}", "aos_code", aos_err_code(code));
    if (retry_after_s)
        json_object_set_new(data, "retry_after_s", json_integer((json_int_t)retry_after_s));
    return aos_rpc_error(c->id, aos_err_rpc_code(code), m, data);
}

static json_t *call_error(gw_call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *call_error(gw_call_t *c, int code, const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return call_error_v(c, code, 0, m);
}

void gw_call_fail(gw_call_t *c, const aos_err_t *err, uint64_t retry_after_s)
{
    gw_call_finish(c, call_error_v(c, err->code, retry_after_s, aos_err_msg(err)));
}

/* ---- failures: log line, event, fingerprint, anomaly ------------------------- */

struct fp_window {
    uint64_t start_ms;
    unsigned count;
    int raised;
};

static void emit(aos_gateway_t *gw, json_t *ev)
{
    if (gw->cfg.emit)
        gw->cfg.emit(ev, gw->cfg.emit_data);
    else
        json_decref(ev);
}

static void failed(gw_call_t *c, gw_server_t *sv, int code, const char *msg)
{
    aos_gateway_t *gw = c->gw;
    const char *cls = aos_err_code(code);
    const char *tool = c->tool ? c->tool : (c->method ? c->method : "");
    char fp[17];
    aos_fingerprint(sv->name, tool, cls, msg, fp);
    aos_log(AOS_LOG_WARN, "gateway",
            json_pack("{s:s, s:s, s:s, s:s, s:s}", "server", sv->name, "tool", tool, "trace_id",
                      trace_id(c), "error", cls, "fingerprint", fp),
            "call failed: %s", msg);
    emit(gw, json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}}", "topic", "mcp", "type",
                       "tool.error", "severity", code == AOS_ETIMEDOUT ? "warning" : "error",
                       "trace_id", trace_id(c), "payload", "server", sv->name, "tool", tool,
                       "error", cls, "message", msg, "fingerprint", fp));
    uint64_t now = gw_now_ms();
    struct fp_window *w = aos_map_get(&gw->fingerprints, fp);
    if (!w) {
        w = calloc(1, sizeof(*w));
        if (!w || aos_map_put(&gw->fingerprints, fp, w)) {
            free(w);
            return;
        }
        w->start_ms = now;
    }
    if (now - w->start_ms >= ANOMALY_WINDOW_MS) {
        w->start_ms = now;
        w->count = 0;
        w->raised = 0;
    }
    if (++w->count >= ANOMALY_THRESHOLD && !w->raised) {
        w->raised = 1;
        aos_log(AOS_LOG_ERROR, "gateway",
                json_pack("{s:s, s:s, s:s, s:i}", "server", sv->name, "tool", tool, "fingerprint",
                          fp, "count", w->count),
                "anomaly: the same failure %u times within %d s: %s", w->count,
                ANOMALY_WINDOW_MS / 1000, msg);
        emit(gw, json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s, s:i, s:i}}", "topic",
                           "mcp", "type", "anomaly.detected", "severity", "error", "trace_id",
                           trace_id(c), "payload", "server", sv->name, "tool", tool, "error", cls,
                           "message", msg, "fingerprint", fp, "count", w->count, "window_s",
                           ANOMALY_WINDOW_MS / 1000));
    }
}

void gw_fingerprints_sweep(aos_gateway_t *gw)
{
    uint64_t now = gw_now_ms();
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *k;
    void *v;
    while (aos_map_iter_next(&gw->fingerprints, &it, &k, NULL, &v)) {
        struct fp_window *w = v;
        if (now - w->start_ms >= 2 * ANOMALY_WINDOW_MS) {
            aos_map_del(&gw->fingerprints, k);
            free(w);
        }
    }
}

/* ---- sending, retries and the answer ----------------------------------------- */

static int send_call(gw_call_t *c, gw_server_t *sv);
static void span_end(gw_call_t *c, int status, const json_t *reply);

/* A failure that says something about the server (not about the request). */
static int server_failure(int status, const json_t *reply)
{
    if (status)
        return status != AOS_ECANCELED;
    const json_t *e = json_object_get(reply, "error");
    return e && json_integer_value(json_object_get(e, "code")) == aos_err_rpc_code(AOS_EINTERNAL);
}

/* May this call be sent again after it failed with status? */
static int retry_safe(gw_call_t *c, gw_server_t *sv, int status)
{
    if (status == AOS_EUNAVAIL)
        return 1; /* never reached the server */
    if (status != AOS_EUPSTREAM && status != AOS_ETIMEDOUT)
        return 0;
    if (strcmp(c->method, "tools/call") != 0)
        return strcmp(c->method, "initialize") == 0 || strstr(c->method, "/list") != NULL ||
               strcmp(c->method, "resources/read") == 0 || strcmp(c->method, "prompts/get") == 0 ||
               strcmp(c->method, "ping") == 0;
    /* a tool call only when the tool says it can be repeated */
    size_t i;
    json_t *t;
    json_array_foreach(gw_list_for(sv, c->sess, GW_TOOLS), i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (!n || !c->tool || strcmp(n, c->tool))
            continue;
        const json_t *a = json_object_get(t, "annotations");
        return json_is_true(json_object_get(a, "idempotentHint")) ||
               json_is_true(json_object_get(a, "readOnlyHint"));
    }
    return 0;
}

static void on_retry_timer(uv_timer_t *t)
{
    gw_call_t *c = t->data;
    if (!c) {
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
        return;
    }
    gw_server_t *sv = c->server;
    /* a restarting server: wait for it, within the call's own timeout */
    unsigned timeout = (unsigned)json_integer_value(json_object_get(sv->entry, "timeout_ms"));
    uint64_t age_ms = (uv_hrtime() - c->started_ns) / 1000000;
    if (c->up && aos_upstream_state(c->up) == AOS_UP_BACKOFF && age_ms < timeout) {
        uv_timer_start(t, on_retry_timer, 50, 0);
        return;
    }
    uv_close((uv_handle_t *)t, (uv_close_cb)free);
    c->retry_timer = NULL;
    unlink_server(c);
    if (!aos_breaker_allow(&sv->breaker, gw_now_ms())) {
        gw_call_finish(
            c, call_error(c, AOS_EUNAVAIL, "server '%s' is failing: circuit open", sv->name));
        return;
    }
    c->probe = aos_breaker_state(&sv->breaker, gw_now_ms()) == AOS_BREAKER_HALF_OPEN;
    int rc = send_call(c, sv);
    if (rc)
        gw_call_finish(c, call_error(c, rc, "server '%s' is not available", sv->name));
}

/* data.aos_code and data.retry_after_s of an error say what aosd itself
 * decided (call_error_v): an upstream's error must not claim them, or it
 * could pick the status and Retry-After of aosd's REST answer. */
static void forget_our_marks(json_t *msg)
{
    json_t *e = json_object_get(msg, "error");
    json_t *d = json_object_get(e, "data");
    if (!json_is_object(d) ||
        !(json_object_get(d, "aos_code") || json_object_get(d, "retry_after_s")))
        return;
    json_t *ne = json_deep_copy(e);
    json_t *nd = json_object_get(ne, "data");
    json_object_del(nd, "aos_code");
    json_object_del(nd, "retry_after_s");
    json_object_set_new(msg, "error", ne);
}

static void on_reply(aos_upstream_t *up, json_t *reply, int status, const char *errmsg, void *data)
{
    gw_call_t *c = data;
    gw_server_t *sv = c->server;
    uint64_t now = gw_now_ms();
    span_end(c, status, reply);
    unlink_server(c);
    sv->active--;
    int bad = server_failure(status, reply);
    if (status != AOS_ECANCELED)
        aos_breaker_record(&sv->breaker, now, !bad);
    else if (c->probe)
        aos_breaker_release(&sv->breaker);
    c->probe = 0;
    json_t *msg;
    if (status && status != AOS_ECANCELED && c->attempts <= sv->limits.retries &&
        retry_safe(c, sv, status) && !sv->closing) {
        /* wait, then send again (the slot is given back meanwhile) */
        uint64_t d = aos_backoff_ms(c->attempts, (uint64_t)sv->limits.retry_base_ms,
                                    (uint64_t)sv->limits.retry_max_ms, randombytes_random());
        c->retry_timer = malloc(sizeof(uv_timer_t));
        if (c->retry_timer) {
            aos_log(AOS_LOG_INFO, "gateway",
                    json_pack("{s:s, s:s, s:i}", "server", sv->name, "method", c->method, "attempt",
                              c->attempts),
                    "retrying in %llu ms after: %s", (unsigned long long)d,
                    errmsg ? errmsg : aos_strerror(status));
            uv_timer_init(c->gw->cfg.loop, c->retry_timer);
            c->retry_timer->data = c;
            uv_timer_start(c->retry_timer, on_retry_timer, d, 0);
            link_server(c, sv);
            c->phase = GW_PHASE_RETRY;
            pump(sv);
            return;
        }
    }
    if (status) {
        const char *m = errmsg && *errmsg ? errmsg : aos_strerror(status);
        msg = call_error(c, status, "server '%s': %s", sv->name, m);
        record(c, sv->name, aos_err_code(status));
        if (status != AOS_ECANCELED)
            failed(c, sv, status, m);
    } else if (c->xform == GW_XF_INIT && json_object_get(reply, "result")) {
        /* a client's initialize, answered once the upstream is ready */
        msg = aos_rpc_result(c->id, gw_init_result(c->sess, sv));
        record(c, sv->name, "ok");
    } else if (c->kind == GW_CALL_REST && c->tool && gw_server_lacks_tool(sv, c->tool) &&
               (json_object_get(reply, "error") ||
                json_is_true(json_object_get(json_object_get(reply, "result"), "isError")))) {
        /* the upstream confirms what our list said: no such tool */
        msg = call_error(c, AOS_ENOTFOUND, "server '%s' has no tool '%s'", sv->name, c->tool);
        record(c, sv->name, "not_found");
    } else {
        msg = json_copy(reply);
        json_object_set(msg, "id", c->id);
        forget_our_marks(msg);
        const json_t *res = json_object_get(reply, "result");
        const json_t *e = json_object_get(reply, "error");
        record(c, sv->name,
               e                                               ? "rpc_error"
               : json_is_true(json_object_get(res, "isError")) ? "tool_error"
                                                               : "ok");
        if (bad) {
            const char *em = json_string_value(json_object_get(e, "message"));
            failed(c, sv, AOS_EUPSTREAM, em ? em : "internal error");
        }
    }
    pump(sv);
    gw_call_finish(c, msg);
}

/* A plain successful answer (aos_upstream_set_raw) as the upstream wrote
 * it: what on_reply does with one, without building it as values - the
 * client's id goes in place of ours, the rest of the text as it came
 * (aos_rpc_scan_result checked it and saw no "error", so the call
 * succeeded for the breaker and there are no marks of ours to forget). An
 * answer that goes on a stream (kept for replay there) or is transformed
 * takes the ordinary way. */
static void on_reply_raw(aos_upstream_t *up, const char *text, size_t len, const aos_rpc_scan_t *sc,
                         void *data)
{
    gw_call_t *c = data;
    if (c->st || c->kind != GW_CALL_MCP || c->xform != GW_XF_NONE || c->span) {
        json_t *reply = json_loadb(text, len, JSON_ALLOW_NUL, NULL);
        on_reply(up, reply, reply ? 0 : AOS_ENOMEM, NULL, data);
        json_decref(reply);
        return;
    }
    gw_server_t *sv = c->server;
    unlink_server(c);
    sv->active--;
    aos_breaker_record(&sv->breaker, gw_now_ms(), 1);
    c->probe = 0;
    record(c, sv->name, sc->is_error ? "tool_error" : "ok");
    pump(sv);
    if (c->req) {
        if (sc->is_error)
            gw_span_tool_error(c->req);
        aos_buf_t id;
        aos_buf_init(&id, 0);
        if (aos_rpc_dump(c->id, &id) == 0)
            gw_respond_text(c->req, c->accept_sse, text, len, sc->id_off, sc->id_len, id.ptr,
                            id.len);
        else
            aos_http_respond_error(c->req, AOS_ENOMEM, NULL);
        aos_buf_release(&id);
    }
    gw_call_free(c);
}

/* Sends c to sv now; c must not be linked to a server. */
/* The span of one attempt of an in-process call: the tool call of a task's
 * step, MCP's client span and GenAI's execute_tool span in one (kind:
 * CLIENT to an upstream, INTERNAL to a built-in). */
static void span_begin(gw_call_t *c, gw_server_t *sv, aos_span_kind_t kind)
{
    if (c->kind != GW_CALL_INPROC || !c->gw->cfg.trace || c->span)
        return;
    char name[AOS_REGISTRY_NAME_MAX + 256]; /* "tools/call <server>__<tool>", no snprintf */
    size_t k = 0;
    name[0] = '\0';
    aos_str_put(name, sizeof(name), &k, "tools/call ", SIZE_MAX);
    aos_str_put(name, sizeof(name), &k, sv->name, SIZE_MAX);
    aos_str_put(name, sizeof(name), &k, GW_SEP, SIZE_MAX);
    aos_str_put(name, sizeof(name), &k, c->tool ? c->tool : "", 200);
    c->span = aos_trace_span_start(c->gw->cfg.trace, &c->trace, name, kind);
    aos_span_set_const(c->span, AOS_ATTR_GEN_AI_OPERATION_NAME, AOS_ATTR_GEN_AI_OP_EXECUTE_TOOL);
    aos_span_set_str(c->span, AOS_ATTR_GEN_AI_TOOL_NAME, name + strlen("tools/call "));
    if (c->idempotency_key)
        aos_span_set_str(c->span, AOS_ATTR_GEN_AI_TOOL_CALL_ID, c->idempotency_key);
    aos_span_set_const(c->span, AOS_ATTR_MCP_METHOD_NAME, "tools/call");
    aos_span_set_str(c->span, AOS_ATTR_AOS_MCP_SERVER, sv->name);
    aos_span_set_int(c->span, "aos.attempt", (int64_t)c->attempts);
    if (kind == AOS_SPAN_CLIENT) { /* an upstream: a child's pipes, or a connection */
        const char *transport = json_string_value(json_object_get(sv->entry, "transport"));
        aos_span_set_const(c->span, AOS_ATTR_NETWORK_TRANSPORT,
                           transport && !strcmp(transport, "stdio") ? "pipe" : "tcp");
    }
}

/* Ends the attempt's span of a result (that may be isError). */
static void span_end_result(gw_call_t *c, const json_t *result)
{
    if (!c->span)
        return;
    if (json_is_true(json_object_get(result, "isError")))
        aos_span_set_error(c->span, AOS_ATTR_ERROR_TOOL, NULL);
    else
        aos_span_set_status(c->span, AOS_SPAN_OK, NULL);
    aos_span_end(c->span);
    c->span = NULL;
}

/* Ends the attempt's span with its outcome: status (an AOS_E* code) or the
 * reply (a JSON-RPC error, or a result that may be isError). */
static void span_end(gw_call_t *c, int status, const json_t *reply)
{
    if (!c->span)
        return;
    const json_t *e = json_object_get(reply, "error");
    if (!status && !e) {
        span_end_result(c, json_object_get(reply, "result"));
        return;
    }
    if (status) {
        aos_span_set_error(c->span, aos_err_code(status), aos_strerror(status));
    } else if (e) {
        char code[24];
        snprintf(code, sizeof(code), "%lld",
                 (long long)json_integer_value(json_object_get(e, "code")));
        aos_span_set_error(c->span, code, json_string_value(json_object_get(e, "message")));
    }
    aos_span_end(c->span);
    c->span = NULL;
}

static int send_call(gw_call_t *c, gw_server_t *sv)
{
    unsigned timeout = (unsigned)json_integer_value(json_object_get(sv->entry, "timeout_ms"));
    if (!timeout)
        timeout = AOS_REGISTRY_DEFAULT_TIMEOUT_MS;
    if (c->timeout_ms && c->timeout_ms < timeout)
        timeout = c->timeout_ms;
    c->attempts++;
    span_begin(c, sv, AOS_SPAN_CLIENT);
    int rc = aos_upstream_request(c->up, c->method, json_incref(c->params), timeout,
                                  c->span ? aos_span_context(c->span) : &c->trace, on_reply, c,
                                  &c->up_id);
    if (rc) {
        span_end(c, rc, NULL);
        return rc;
    }
    if (c->kind == GW_CALL_MCP && c->xform == GW_XF_NONE)
        aos_upstream_set_raw(c->up, c->up_id, on_reply_raw);
    link_server(c, sv);
    c->phase = GW_PHASE_SENT;
    sv->active++;
    return 0;
}

/* Sends queued calls while slots are free. */
static void pump(gw_server_t *sv)
{
    while (sv->queue && sv->active < (unsigned)sv->limits.max_concurrency && !sv->closing) {
        gw_call_t *c = sv->queue;
        unlink_server(c);
        int rc = send_call(c, sv);
        if (rc)
            gw_call_finish(c, call_error(c, rc, "server '%s' is not available", sv->name));
    }
    aos_metric_set(sv->gw->m_queue, (double)sv->queued, sv->name);
}

/* What an upstream would drop without an answer (the MCP SDKs drop a
 * message whose envelope does not parse), leaving the call to time out
 * and count against the server's breaker for every client: params must be
 * an object, its _meta an object, and _meta.progressToken a string or a
 * number. Checked before anything else, so that such a request is never
 * sent, never counted, and uses up no rate, quota or slot. */
static int params_ok(const json_t *params, aos_err_t *err)
{
    if (!params)
        return 0;
    if (!json_is_object(params))
        return aos_err_set(err, AOS_EINVAL, "params must be an object");
    const json_t *meta = json_object_get(params, "_meta");
    if (meta && !json_is_object(meta))
        return aos_err_set(err, AOS_EINVAL, "params._meta must be an object");
    const json_t *tok = json_object_get(meta, "progressToken");
    if (tok && !json_is_string(tok) && !json_is_number(tok))
        return aos_err_set(err, AOS_EINVAL,
                           "params._meta.progressToken must be a string or a number");
    return 0;
}

/* The concurrency limit, its queue and a half-open breaker's probe, then
 * the send: c (method and params set, not linked to a server) goes now,
 * waits in the queue, or is refused (an error in err, c not answered). */
static int dispatch(gw_call_t *c, gw_server_t *sv, aos_err_t *err, uint64_t *retry_after_s)
{
    aos_gateway_t *gw = c->gw;
    uint64_t now = gw_now_ms();
    int busy = sv->active >= (unsigned)sv->limits.max_concurrency;
    if (busy && sv->queued >= (unsigned)sv->limits.queue) {
        aos_metric_add(gw->m_rejected, 1, sv->name, "queue_full");
        *retry_after_s = 1;
        return aos_err_set(err, AOS_EUNAVAIL, "server '%s' is busy: %u calls waiting", sv->name,
                           sv->queued);
    }
    /* last, so that a half-open probe slot is only taken by a call that goes */
    if (!aos_breaker_allow(&sv->breaker, now)) {
        *retry_after_s = 1;
        aos_metric_add(gw->m_rejected, 1, sv->name, "breaker");
        return aos_err_set(err, AOS_EUNAVAIL,
                           "server '%s' is failing: circuit breaker half-open, probe in flight",
                           sv->name);
    }
    c->probe = aos_breaker_state(&sv->breaker, now) == AOS_BREAKER_HALF_OPEN;
    if (busy) {
        link_server(c, sv);
        c->phase = GW_PHASE_QUEUED;
        gw_call_t **p = &sv->queue;
        while (*p)
            p = &(*p)->q_next;
        *p = c;
        sv->queued++;
        aos_metric_set(gw->m_queue, (double)sv->queued, sv->name);
        return 0;
    }
    int rc = send_call(c, sv);
    if (rc) {
        if (c->probe)
            aos_breaker_release(&sv->breaker);
        c->probe = 0;
        return aos_err_set(err, rc, "server '%s' is not available", sv->name);
    }
    return 0;
}

/* ---- quota counts that outlive a restart --------------------------------------
 * A counted call goes once the store holds a count that covers it:
 * aos_quota_reserve says how much to write, a block ahead, so most calls
 * find it written already; the others wait in sv->counting for the one
 * write in flight (a store job: the loop never waits for the disk). The
 * counter is "quota:<server>" with the period's key. At a clean stop, and
 * when the entry is replaced, the exact count is written. */

struct gw_quota_job {
    gw_server_t *sv; /* to tell when written; NULL: nobody waits (a settle, or sv freed) */
    long key;
    uint64_t count;
    char name[sizeof("quota:") + AOS_REGISTRY_NAME_MAX];
};

static struct gw_quota_job *quota_job_new(gw_server_t *sv, long key, uint64_t count)
{
    struct gw_quota_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->key = key;
    j->count = count;
    snprintf(j->name, sizeof(j->name), "quota:%s", sv->name);
    return j;
}

static int quota_job_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct gw_quota_job *j = arg;
    return aos_store_counter_put(st, j->name, (int64_t)j->key, (int64_t)j->count, err);
}

/* Lets the counting calls of sv go (code 0), or fails them with code. */
static void counting_release(gw_server_t *sv, int code)
{
    while (sv->counting) {
        gw_call_t *c = sv->counting;
        unlink_server(c);
        if (code) {
            gw_call_finish(c, call_error(c, code,
                                         "server '%s': unable to record the call in its quota",
                                         sv->name));
            continue;
        }
        aos_err_t err = {0, ""};
        uint64_t after = 0;
        if (dispatch(c, sv, &err, &after))
            gw_call_fail(c, &err, after);
    }
}

static void quota_job_done(int status, const aos_err_t *err, void *arg);

/* Writes the count that sv's counted calls need, or lets them go. */
static void quota_persist(gw_server_t *sv)
{
    if (sv->qjob)
        return; /* its end comes back here */
    uint64_t want = aos_quota_reserve(&sv->quota);
    if (!want) {
        counting_release(sv, 0);
        return;
    }
    struct gw_quota_job *j = quota_job_new(sv, sv->quota.period_key, want);
    if (!j || aos_store_submit(sv->gw->cfg.store, quota_job_run, quota_job_done, j)) {
        free(j);
        aos_log(AOS_LOG_ERROR, "gateway", json_pack("{s:s}", "server", sv->name),
                "server '%s': unable to store its quota count", sv->name);
        counting_release(sv, AOS_ESTORE);
        return;
    }
    j->sv = sv;
    sv->qjob = j;
}

static void quota_job_done(int status, const aos_err_t *err, void *arg)
{
    struct gw_quota_job *j = arg;
    gw_server_t *sv = j->sv;
    if (status)
        aos_log_error("gateway", "unable to store the count of '%s': %s", j->name,
                      aos_err_msg(err));
    if (sv) {
        sv->qjob = NULL;
        if (!status)
            aos_quota_stored(&sv->quota, j->key, j->count);
    }
    free(j);
    if (!sv)
        return;
    if (status)
        counting_release(sv, AOS_ESTORE);
    else
        quota_persist(sv); /* calls counted meanwhile may need more */
}

void gw_quota_load(gw_server_t *sv)
{
    aos_store_t *st = sv->gw->cfg.store;
    if (!sv->limits.quota || !st)
        return;
    char name[sizeof("quota:") + AOS_REGISTRY_NAME_MAX];
    snprintf(name, sizeof(name), "quota:%s", sv->name);
    int64_t period = 0, value = 0;
    aos_err_t err = {0, ""};
    int rc = aos_store_counter_get(st, name, &period, &value, &err);
    if (rc == AOS_ENOTFOUND)
        return;
    if (rc) {
        aos_log_error("gateway", "server '%s': unable to read its quota count: %s", sv->name,
                      aos_err_msg(&err));
        return;
    }
    aos_quota_restore(&sv->quota, (long)period, value > 0 ? (uint64_t)value : 0, time(NULL));
    if (sv->quota.used)
        aos_log_info("gateway", "server '%s': %llu of its %.0f calls per %s used", sv->name,
                     (unsigned long long)sv->quota.used, sv->limits.quota,
                     sv->limits.quota_month ? "month" : "day");
}

void gw_quota_settle(gw_server_t *sv)
{
    aos_quota_t *q = &sv->quota;
    if (!q->limit || !sv->gw->cfg.store || !q->period_key || q->stored == q->used)
        return;
    /* after any reservation in flight (the worker runs jobs in order) */
    struct gw_quota_job *j = quota_job_new(sv, q->period_key, q->used);
    if (!j || aos_store_submit(sv->gw->cfg.store, quota_job_run, quota_job_done, j)) {
        free(j);
        return; /* the reserved count stays: more than was used, never less */
    }
    q->stored = q->used;
}

void gw_quota_detach(gw_server_t *sv)
{
    if (sv->qjob)
        sv->qjob->sv = NULL;
    sv->qjob = NULL;
}

int gw_call_forward(gw_call_t *c, gw_server_t *sv, const char *method, json_t *params,
                    aos_err_t *err, uint64_t *retry_after_s)
{
    aos_gateway_t *gw = c->gw;
    uint64_t now = gw_now_ms();
    *retry_after_s = 0;
    int bad = params_ok(params, err);
    if (bad) {
        json_decref(params);
        return bad;
    }
    if (sv->hold) { /* a remote agent stopped or unhealthy: said at once */
        json_decref(params);
        aos_metric_add(gw->m_rejected, 1, sv->name, "agent");
        return aos_err_set(err, AOS_EUNAVAIL, "%s", sv->hold);
    }
    c->up = sv->up ? gw_upstream_for(sv, c->sess) : NULL;
    if (!c->up) {
        json_decref(params);
        return aos_err_set(err, AOS_EUNAVAIL, "server '%s' is %s", sv->name,
                           sv->up ? "not available" : "disabled");
    }
    if (aos_breaker_state(&sv->breaker, now) == AOS_BREAKER_OPEN) {
        json_decref(params);
        uint64_t ms = aos_breaker_retry_after(&sv->breaker, now);
        *retry_after_s = (ms + 999) / 1000;
        aos_metric_add(gw->m_rejected, 1, sv->name, "breaker");
        return aos_err_set(err, AOS_EUNAVAIL,
                           "server '%s' is failing: circuit breaker open, next try in %llu ms",
                           sv->name, (unsigned long long)ms);
    }
    int counted = 0;
    if (!strcmp(method, "tools/call")) {
        uint64_t wait = aos_bucket_take(&sv->bucket, now);
        const char *why = NULL;
        if (wait) {
            why = "rate";
        } else if (c->caller[0] && sv->limits.caller_rate_per_s > 0) {
            aos_bucket_t *b = aos_map_get(&sv->callers, c->caller);
            if (!b && (b = malloc(sizeof(*b)))) {
                aos_bucket_init(b, sv->limits.caller_rate_per_s, sv->limits.caller_burst, now);
                if (aos_map_put(&sv->callers, c->caller, b)) {
                    free(b);
                    b = NULL;
                }
            }
            if (b && (wait = aos_bucket_take(b, now)))
                why = "caller_rate";
        }
        if (why) {
            json_decref(params);
            *retry_after_s = (wait + 999) / 1000;
            aos_metric_add(gw->m_rejected, 1, sv->name, why);
            return aos_err_set(err, AOS_ERATE, "server '%s': %s limit exceeded, retry in %llu ms",
                               sv->name, strcmp(why, "rate") ? "per-caller rate" : "rate",
                               (unsigned long long)wait);
        }
        uint64_t reset = aos_quota_take(&sv->quota, time(NULL));
        if (reset) {
            json_decref(params);
            *retry_after_s = reset;
            aos_metric_add(gw->m_rejected, 1, sv->name, "quota");
            return aos_err_set(err, AOS_ERATE,
                               "server '%s': quota of %.0f calls per %s used up, resets in %llu s",
                               sv->name, sv->limits.quota, sv->limits.quota_month ? "month" : "day",
                               (unsigned long long)reset);
        }
        counted = sv->limits.quota > 0;
    }
    /* progress tokens are per client: give the upstream one of ours */
    json_t *meta = json_object_get(params, "_meta");
    json_t *tok = json_object_get(meta, "progressToken");
    if (tok) {
        c->client_progress = json_incref(tok);
        c->progress = ++gw->next_progress;
        aos_map_put_u64(&gw->progress, c->progress, c);
        json_object_set_new(meta, "progressToken", json_integer((json_int_t)c->progress));
    }
    c->method = strdup(method);
    c->params = params;
    if (counted && gw->cfg.store && aos_quota_reserve(&sv->quota)) {
        /* counted: it goes once the store holds the count (see guard.h) */
        link_server(c, sv);
        c->phase = GW_PHASE_COUNTING;
        gw_call_t **p = &sv->counting;
        while (*p)
            p = &(*p)->q_next;
        *p = c;
        quota_persist(sv);
        return 0;
    }
    return dispatch(c, sv, err, retry_after_s);
}

/* Ends the calls of a server being removed that never reached it. */
void gw_calls_abandon(gw_server_t *sv)
{
    for (gw_call_t *c = sv->calls, *n; c; c = n) {
        n = c->sv_next;
        if (c->phase == GW_PHASE_QUEUED || c->phase == GW_PHASE_RETRY ||
            c->phase == GW_PHASE_COUNTING)
            gw_call_finish(c, call_error(c, AOS_EUNAVAIL, "server '%s' was removed", sv->name));
    }
}

/* ---- built-in servers ------------------------------------------------------- */

static void builtin_done(void *ctx, json_t *result, const aos_err_t *err)
{
    struct gw_ticket *t = ctx;
    gw_call_t *c = t->c;
    free(t);
    if (!c) {
        json_decref(result);
        return;
    }
    c->ticket = NULL;
    json_t *msg;
    if (result) {
        span_end_result(c, result);
        record(c, c->server_name,
               json_is_true(json_object_get(result, "isError")) ? "tool_error" : "ok");
        /* an in-process caller reads the result only (finish_inproc): no
         * JSON-RPC message is made for it */
        if (c->kind == GW_CALL_INPROC && !c->req && !c->st) {
            msg = json_object();
            if (!msg || json_object_set_new_nocheck(msg, "result", result)) {
                json_decref(msg);
                msg = call_error(c, AOS_ENOMEM, "out of memory");
            }
        } else {
            msg = aos_rpc_result(c->id, result);
        }
    } else {
        int code = err ? err->code : AOS_EINTERNAL;
        span_end(c, code, NULL);
        msg = call_error(c, code, "%s", err ? aos_err_msg(err) : "built-in tool failed");
        record(c, c->server_name, aos_err_code(code));
    }
    gw_call_finish(c, msg);
}

int gw_call_builtin(gw_call_t *c, gw_server_t *sv, const char *tool, const json_t *args)
{
    struct gw_ticket *t = calloc(1, sizeof(*t));
    if (!t)
        return AOS_ENOMEM;
    t->c = c;
    c->ticket = t;
    if (!c->tool)
        c->tool = strdup(tool);
    c->server_name = strdup(sv->name);
    c->attempts++;
    span_begin(c, sv, AOS_SPAN_INTERNAL);
    json_t *empty = args ? NULL : json_object();
    char tp[AOS_TRACEPARENT_LEN + 1];
    int has_tp = aos_tracectx_valid(&c->trace) && aos_tracectx_format(&c->trace, tp) == 0;
    aos_caller_t caller = {c->caller,          c->caps, has_tp ? tp : NULL,
                           c->idempotency_key, c->env,  c->on_behalf_of};
    int rc =
        sv->builtin->call(sv->builtin->data, &caller, tool, args ? args : empty, builtin_done, t);
    json_decref(empty);
    if (rc) {
        /* failed synchronously: done was not called */
        if (c->ticket == t) {
            c->ticket = NULL;
            free(t);
        }
    }
    return rc;
}

/* ---- in-process calls ----------------------------------------------------------- */

int aos_gateway_tool_match(const char *pattern, const char *tool)
{
    size_t n = strlen(pattern);
    if (n && pattern[n - 1] == '*')
        return strncmp(pattern, tool, n - 1) == 0;
    return strcmp(pattern, tool) == 0;
}

/* Whether caps (may be NULL) let the caller call tool. */
static int tool_allowed(const json_t *caps, const char *tool)
{
    const json_t *tools = json_object_get(caps, "tools");
    if (!tools)
        return 1;
    size_t i;
    const json_t *p;
    json_array_foreach(tools, i, p)
    {
        if (json_is_string(p) && aos_gateway_tool_match(json_string_value(p), tool))
            return 1;
    }
    return 0;
}

int aos_gateway_tool_local(aos_gateway_t *gw, const char *tool)
{
    const char *sep = tool ? strstr(tool, GW_SEP) : NULL;
    if (!gw || !sep || sep == tool || (size_t)(sep - tool) > AOS_REGISTRY_NAME_MAX)
        return 0;
    char name[AOS_REGISTRY_NAME_MAX + 1];
    memcpy(name, tool, (size_t)(sep - tool));
    name[sep - tool] = '\0';
    const char *rest = sep + strlen(GW_SEP);
    gw_server_t *sv = gw_server_get(gw, name);
    if (!sv || !sv->builtin || !json_is_array(sv->lists.tools))
        return 0;
    size_t i;
    const json_t *t;
    json_array_foreach(sv->lists.tools, i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (n && !strcmp(n, rest))
            return json_is_true(json_object_get(json_object_get(t, "annotations"), "readOnlyHint"));
    }
    return 0;
}

int aos_gateway_call(aos_gateway_t *gw, const aos_gateway_call_opts_t *opts, const char *tool,
                     const json_t *args, aos_gateway_done_fn done, void *data,
                     aos_gateway_call_t **handle)
{
    const aos_caller_t *who = &opts->caller;
    const char *sep = tool ? strstr(tool, GW_SEP) : NULL;
    if (!sep || sep == tool || !sep[strlen(GW_SEP)] || !done)
        return AOS_EINVAL;
    char name[AOS_REGISTRY_NAME_MAX + 1];
    size_t n = (size_t)(sep - tool);
    if (n > AOS_REGISTRY_NAME_MAX)
        return AOS_ENOTFOUND;
    memcpy(name, tool, n);
    name[n] = '\0';
    const char *rest = sep + strlen(GW_SEP);
    gw_server_t *sv = gw_server_get(gw, name);
    if (!sv || sv->closing)
        return AOS_ENOTFOUND;
    if (!sv->enabled || (!sv->builtin && !sv->up))
        return AOS_EUNAVAIL;
    if (!tool_allowed(who->caps, tool))
        return AOS_EFORBIDDEN;
    if (sv->builtin && gw_server_lacks_tool(sv, rest))
        return AOS_ENOTFOUND;
    if (gw->shutting_down)
        return AOS_EUNAVAIL;
    gw_call_t *c = gw_call_new(gw, GW_CALL_INPROC, NULL, NULL, NULL);
    if (!c)
        return AOS_ENOMEM;
    c->defer_timer = malloc(sizeof(uv_timer_t));
    if (!c->defer_timer) {
        gw_call_free(c);
        return AOS_ENOMEM;
    }
    c->done = done;
    c->done_data = data;
    c->on_progress = opts->progress;
    c->timeout_ms = opts->timeout_ms;
    c->tool = strdup(rest);
    if (who->principal)
        snprintf(c->caller, sizeof(c->caller), "%s", who->principal);
    if (who->caps) /* not changed until done runs (gateway.h): no copy */
        c->caps = json_incref((json_t *)who->caps);
    if (who->idempotency_key)
        c->idempotency_key = strdup(who->idempotency_key);
    if (who->on_behalf_of)
        c->on_behalf_of = strdup(who->on_behalf_of);
    if (who->env && json_object_size(who->env))
        c->env = json_deep_copy(who->env);
    /* the caller's span: the upstream hears of it (params._meta and, over
     * HTTP, a header), and this call's failures are logged in its trace */
    if (who->traceparent && aos_tracectx_parse(&c->trace, who->traceparent, NULL) != 0)
        memset(&c->trace, 0, sizeof(c->trace));
    if (handle)
        *handle = c;
    c->starting = 1;
    if (sv->builtin) {
        int rc = gw_call_builtin(c, sv, rest, args);
        if (rc) {
            aos_err_t err = {0, ""};
            aos_err_set(&err, rc, "server '%s' refused the call", sv->name);
            gw_call_fail(c, &err, 0);
        }
        /* answered or not, c lives on: an answer made meanwhile waits */
        c->starting = 0;
        return 0;
    }
    json_t *params =
        json_pack("{s:s, s:O}", "name", rest, "arguments", args ? args : json_object());
    if (!args)
        json_decref(json_object_get(params, "arguments"));
    json_t *meta = json_object();
    if (c->idempotency_key)
        json_object_set_new(meta, "aos/idempotency_key", json_string(c->idempotency_key));
    if (c->on_progress)
        json_object_set_new(meta, "progressToken", json_integer(1)); /* replaced by ours */
    if (c->env) /* the secrets the caller was granted, for this call only */
        json_object_set_new(meta, "aos/env", json_deep_copy(c->env));
    if (json_object_size(meta))
        json_object_set_new(params, "_meta", meta);
    else
        json_decref(meta);
    aos_err_t err = {0, ""};
    uint64_t after;
    if (gw_call_forward(c, sv, "tools/call", params, &err, &after))
        gw_call_fail(c, &err, after);
    c->starting = 0;
    return 0;
}

void aos_gateway_call_cancel(aos_gateway_call_t *c)
{
    if (c && c->done)
        gw_call_finish(c, call_error(c, AOS_ECANCELED, "call cancelled by its caller"));
}
