/* gateway.c - the gateway's servers and calls: turning registry entries into
 * live upstreams, keeping their tool/resource/prompt lists for the
 * aggregated endpoint, and carrying one client request to an upstream and
 * its answer back. The endpoints themselves are in mcp.c and rest.c. */
#include "gateway/internal.h"
#include "log/log.h"
#include "registry/registry.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

const char *const gw_log_levels[] = {"debug",    "info",  "notice",    "warning", "error",
                                     "critical", "alert", "emergency", NULL};

int gw_log_level_index(const char *name)
{
    for (int i = 0; name && gw_log_levels[i]; i++)
        if (!strcmp(gw_log_levels[i], name))
            return i;
    return -1;
}

uint64_t gw_now_ms(void)
{
    return uv_hrtime() / 1000000;
}

/* ---- calls ----------------------------------------------------------- */

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
        const char *accept = aos_http_header(req, "Accept");
        c->accept_sse = accept && strstr(accept, "text/event-stream") != NULL;
        aos_http_on_close(req, call_closed, c);
    }
    if (sess) {
        c->s_next = sess->calls;
        if (sess->calls)
            sess->calls->s_prev = c;
        sess->calls = c;
    }
    return c;
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
}

struct gw_ticket {
    gw_call_t *c; /* NULL once the call was freed first */
};

void gw_call_free(gw_call_t *c)
{
    if (c->ticket)
        c->ticket->c = NULL;
    free(c->server_name);
    if (c->up_pending && c->server && c->server->up)
        aos_upstream_cancel(c->server->up, c->up_id, "client request ended");
    unlink_server(c);
    c->server = NULL;
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
    if (c->req)
        aos_http_on_close(c->req, NULL, NULL);
    json_decref(c->id);
    json_decref(c->client_progress);
    free(c->tool);
    free(c);
}

/* The call's trace id, made when first needed (it costs a getrandom). */
static const char *trace_id(gw_call_t *c)
{
    if (!c->trace_id[0]) {
        unsigned char rnd[16];
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(c->trace_id, sizeof(c->trace_id), rnd, sizeof(rnd));
    }
    return c->trace_id;
}

static void record(gw_call_t *c, const char *server, const char *outcome)
{
    aos_gateway_t *gw = c->gw;
    double secs = (double)(uv_hrtime() - c->started_ns) / 1e9;
    aos_metric_add(gw->m_calls, 1, server, c->tool ? c->tool : "", outcome);
    if (c->tool)
        aos_metric_observe(gw->m_latency, secs, server);
}

void gw_call_send(gw_call_t *c, json_t *msg)
{
    if (c->req && c->accept_sse && c->kind == GW_CALL_MCP) {
        if (!c->sse) {
            if (c->sess)
                aos_http_add_header(c->req, "Mcp-Session-Id", c->sess->id);
            if (aos_http_stream_open(c->req, 200, "text/event-stream") == 0)
                c->sse = 1;
        }
        if (c->sse) {
            gw_sse_write(c->req, msg);
            json_decref(msg);
            return;
        }
    }
    if (c->sess)
        gw_session_send(c->sess, msg);
    else
        json_decref(msg);
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
    /* our own errors keep their meaning (data.aos_code); the upstream's are a 502 */
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
    json_t *body = json_pack("{s:{s:s, s:s}}", "error", "code", aos_err_code(aos), "message",
                             m ? m : aos_strerror(aos));
    if (aos == AOS_EUPSTREAM)
        json_object_set_new(json_object_get(body, "error"), "rpc_code", json_integer(code));
    aos_http_respond_json(c->req, (unsigned)aos_err_http_status(aos), body);
}

void gw_call_finish(gw_call_t *c, json_t *msg)
{
    if (c->req) {
        if (c->kind == GW_CALL_REST) {
            finish_rest(c, msg);
        } else if (c->sse) {
            gw_sse_write(c->req, msg);
            aos_http_stream_close(c->req);
        } else {
            gw_respond_msg(c->req, json_incref(msg));
        }
    }
    json_decref(msg);
    gw_call_free(c);
}

/* An error of ours as a JSON-RPC error whose data names the AOS code, so the
 * REST side can give it the right HTTP status. */
static json_t *call_error(gw_call_t *c, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static json_t *call_error(gw_call_t *c, int code, const char *fmt, ...)
{
    char m[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return aos_rpc_error(c->id, aos_err_rpc_code(code), m,
                         json_pack("{s:s}", "aos_code", aos_err_code(code)));
}

static void on_reply(aos_upstream_t *up, json_t *reply, int status, const char *errmsg, void *data)
{
    gw_call_t *c = data;
    gw_server_t *sv = c->server;
    c->up_pending = 0;
    json_t *msg;
    if (status) {
        msg = call_error(c, status, "server '%s': %s", sv->name,
                         errmsg && *errmsg ? errmsg : aos_strerror(status));
        record(c, sv->name, aos_err_code(status));
        aos_log(AOS_LOG_WARN, "gateway",
                json_pack("{s:s, s:s, s:s, s:s}", "server", sv->name, "tool",
                          c->tool ? c->tool : "", "trace_id", trace_id(c), "error",
                          aos_err_code(status)),
                "call failed: %s", errmsg ? errmsg : aos_strerror(status));
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
        const json_t *res = json_object_get(reply, "result");
        record(c, sv->name,
               json_object_get(reply, "error")                 ? "rpc_error"
               : json_is_true(json_object_get(res, "isError")) ? "tool_error"
                                                               : "ok");
    }
    unlink_server(c);
    c->server = NULL;
    gw_call_finish(c, msg);
}

int gw_call_forward(gw_call_t *c, gw_server_t *sv, const char *method, json_t *params)
{
    if (!sv->up) {
        json_decref(params);
        return AOS_EUNAVAIL;
    }
    /* progress tokens are per client: give the upstream one of ours */
    json_t *meta = json_object_get(params, "_meta");
    json_t *tok = json_object_get(meta, "progressToken");
    if (tok && (json_is_string(tok) || json_is_integer(tok))) {
        c->client_progress = json_incref(tok);
        c->progress = ++c->gw->next_progress;
        aos_map_put_u64(&c->gw->progress, c->progress, c);
        json_object_set_new(meta, "progressToken", json_integer((json_int_t)c->progress));
    }
    uint32_t timeout = (uint32_t)json_integer_value(json_object_get(sv->entry, "timeout_ms"));
    if (!timeout)
        timeout = AOS_REGISTRY_DEFAULT_TIMEOUT_MS;
    int rc = aos_upstream_request(sv->up, method, params, timeout, on_reply, c, &c->up_id);
    if (rc) {
        if (c->progress) {
            aos_map_del_u64(&c->gw->progress, c->progress);
            c->progress = 0;
        }
        return rc;
    }
    c->up_pending = 1;
    c->server = sv;
    c->sv_next = sv->calls;
    if (sv->calls)
        sv->calls->sv_prev = c;
    sv->calls = c;
    return 0;
}

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
        msg = aos_rpc_result(c->id, result);
        record(c, c->server_name,
               json_is_true(json_object_get(result, "isError")) ? "tool_error" : "ok");
    } else {
        int code = err ? err->code : AOS_EINTERNAL;
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
    json_t *empty = args ? NULL : json_object();
    int rc = sv->builtin->call(sv->builtin->data, tool, args ? args : empty, builtin_done, t);
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

/* ---- servers ----------------------------------------------------------- */

gw_server_t *gw_server_get(aos_gateway_t *gw, const char *name)
{
    return name ? aos_map_get(&gw->servers, name) : NULL;
}

int gw_server_ready(const gw_server_t *sv)
{
    if (sv->builtin)
        return 1;
    return sv->up && aos_upstream_state(sv->up) == AOS_UP_READY;
}

int gw_server_lacks_tool(const gw_server_t *sv, const char *tool)
{
    if (!json_is_array(sv->tools))
        return 0;
    size_t i;
    json_t *t;
    json_array_foreach(sv->tools, i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        if (n && !strcmp(n, tool))
            return 0;
    }
    return 1;
}

static const char *state_name(gw_server_t *sv)
{
    if (sv->builtin)
        return "ready";
    if (!sv->enabled)
        return "disabled";
    if (!sv->up)
        return "stopped";
    return aos_upstream_state_name(aos_upstream_state(sv->up));
}

json_t *gw_server_health(gw_server_t *sv)
{
    int inflight = 0;
    for (gw_call_t *c = sv->calls; c; c = c->sv_next)
        inflight++;
    json_t *h = json_pack("{s:s, s:i}", "state", state_name(sv), "inflight", inflight);
    if (sv->up) {
        const char *le = aos_upstream_last_error(sv->up);
        json_object_set_new(h, "last_error", le && *le ? json_string(le) : json_null());
        if (aos_upstream_pid(sv->up))
            json_object_set_new(h, "pid", json_integer(aos_upstream_pid(sv->up)));
        const json_t *init = aos_upstream_init_result(sv->up);
        if (init)
            json_object_set(h, "server_info", json_object_get(init, "serverInfo"));
    }
    if (json_is_array(sv->tools))
        json_object_set_new(h, "tools", json_integer((json_int_t)json_array_size(sv->tools)));
    return h;
}

/* Fetches one list (all pages) into sv for the aggregated endpoint. */
struct list_fetch {
    gw_server_t *sv;
    const char *method; /* "tools/list" */
    const char *key;    /* "tools" */
    json_t **slot;
    json_t *acc;
    int pages;
};

static void fetch_next(struct list_fetch *f, const char *cursor);
static void refresh_lists(gw_server_t *sv, const char *which);

static void on_list(aos_upstream_t *up, json_t *reply, int status, const char *errmsg, void *data)
{
    struct list_fetch *f = data;
    json_t *res = reply ? json_object_get(reply, "result") : NULL;
    if (status || !res) {
        if (status != AOS_ECANCELED)
            aos_log_warn("gateway", "server '%s': %s failed: %s", f->sv->name, f->method,
                         errmsg ? errmsg : "error reply");
        goto done;
    }
    json_array_extend(f->acc, json_object_get(res, f->key));
    const char *cursor = json_string_value(json_object_get(res, "nextCursor"));
    if (cursor && *cursor && ++f->pages < 100) {
        fetch_next(f, cursor);
        return;
    }
    json_decref(*f->slot);
    *f->slot = f->acc;
    f->acc = NULL;
done:
    f->sv->lists_pending--;
    json_decref(f->acc);
    free(f);
}

static void fetch_next(struct list_fetch *f, const char *cursor)
{
    json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
    if (aos_upstream_request(f->sv->up, f->method, params, 0, on_list, f, NULL)) {
        f->sv->lists_pending--;
        json_decref(f->acc);
        free(f);
    }
}

static void fetch_list(gw_server_t *sv, const char *cap, const char *method, const char *key,
                       json_t **slot)
{
    const json_t *init = aos_upstream_init_result(sv->up);
    if (!json_object_get(json_object_get(init, "capabilities"), cap))
        return;
    struct list_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    f->sv = sv;
    f->method = method;
    f->key = key;
    f->slot = slot;
    f->acc = json_array();
    sv->lists_pending++;
    fetch_next(f, NULL);
}

void gw_server_refresh(gw_server_t *sv, const char *which)
{
    if (sv->up && !sv->closing && aos_upstream_state(sv->up) == AOS_UP_READY)
        refresh_lists(sv, which);
}

static void refresh_lists(gw_server_t *sv, const char *which)
{
    if (!which || !strcmp(which, "tools"))
        fetch_list(sv, "tools", "tools/list", "tools", &sv->tools);
    if (!which || !strcmp(which, "resources")) {
        fetch_list(sv, "resources", "resources/list", "resources", &sv->resources);
        fetch_list(sv, "resources", "resources/templates/list", "resourceTemplates",
                   &sv->templates);
    }
    if (!which || !strcmp(which, "prompts"))
        fetch_list(sv, "prompts", "prompts/list", "prompts", &sv->prompts);
}

static void on_up_state(aos_upstream_t *up, aos_upstream_state_t st, const char *why, void *data)
{
    gw_server_t *sv = data;
    aos_log(st == AOS_UP_BACKOFF ? AOS_LOG_WARN : AOS_LOG_INFO, "gateway",
            json_pack("{s:s, s:s}", "server", sv->name, "state", state_name(sv)),
            "server '%s' is %s%s%s", sv->name, state_name(sv), why && *why ? ": " : "",
            why ? why : "");
    if (st == AOS_UP_READY && !sv->closing) {
        sv->ready_since_ms = gw_now_ms();
        refresh_lists(sv, NULL);
    }
}

static void on_up_notification(aos_upstream_t *up, json_t *msg, void *data)
{
    gw_server_t *sv = data;
    const char *m = aos_rpc_method(msg);
    if (m && !sv->closing) {
        if (!strcmp(m, "notifications/tools/list_changed"))
            refresh_lists(sv, "tools");
        else if (!strcmp(m, "notifications/resources/list_changed"))
            refresh_lists(sv, "resources");
        else if (!strcmp(m, "notifications/prompts/list_changed"))
            refresh_lists(sv, "prompts");
    }
    gw_route_notification(sv, msg);
}

static void on_up_request(aos_upstream_t *up, json_t *msg, void *data)
{
    gw_route_request(data, msg);
}

static void server_free(gw_server_t *sv)
{
    json_decref(sv->entry);
    json_decref(sv->tools);
    json_decref(sv->resources);
    json_decref(sv->templates);
    json_decref(sv->prompts);
    free(sv->name);
    free(sv);
}

/* Opens the sealed values of a {"K":"v1:..."} map into "K=V" (env) or
 * "K: V" (headers) strings; every string is wiped and freed by free_strv. */
static char **open_map(aos_gateway_t *gw, const json_t *m, const char *sep)
{
    size_t n = json_object_size(m), i = 0;
    char **v = calloc(n + 1, sizeof(char *));
    if (!v)
        return NULL;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)m, k, val)
    {
        size_t len = 0;
        char *plain = aos_secret_open(gw->cfg.secrets, json_string_value(val), &len);
        if (!plain)
            continue;
        size_t sz = strlen(k) + strlen(sep) + len + 1;
        v[i] = sodium_malloc(sz);
        if (v[i]) {
            snprintf(v[i], sz, "%s%s%s", k, sep, plain);
            i++;
        }
        aos_secret_wipe(plain);
    }
    return v;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        aos_secret_wipe(v[i]);
    free(v);
}

static int start_upstream(aos_gateway_t *gw, gw_server_t *sv, aos_err_t *err)
{
    const json_t *cfgj = json_object_get(sv->entry, "config");
    aos_upstream_cfg_t uc = {0};
    uc.name = sv->name;
    uc.transport = json_string_value(json_object_get(sv->entry, "transport"));
    uc.command = json_string_value(json_object_get(cfgj, "command"));
    uc.cwd = json_string_value(json_object_get(cfgj, "cwd"));
    uc.url = json_string_value(json_object_get(cfgj, "url"));
    uc.client_capabilities = gw->client_caps;
    json_t *info = json_pack("{s:s, s:s}", "name", "aosd", "version", gw->cfg.version);
    uc.client_info = info;
    uc.request_timeout_ms = (uint32_t)json_integer_value(json_object_get(sv->entry, "timeout_ms"));

    const json_t *args = json_object_get(cfgj, "args");
    const char **argv = calloc(json_array_size(args) + 1, sizeof(char *));
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a) argv[i] = json_string_value(a);
    uc.args = argv;
    char **env = open_map(gw, json_object_get(cfgj, "env"), "=");
    char **headers = open_map(gw, json_object_get(cfgj, "headers"), ": ");
    uc.env = (const char *const *)env;
    uc.headers = (const char *const *)headers;
    char *token = NULL;
    const char *sealed = json_string_value(json_object_get(sv->entry, "auth_token"));
    if (sealed)
        token = aos_secret_open(gw->cfg.secrets, sealed, NULL);
    uc.bearer_token = token;

    aos_upstream_cb_t cb = {on_up_state, on_up_notification, on_up_request};
    int rc = aos_upstream_new(&sv->up, gw->cfg.loop, gw->cfg.httpc, &uc, &cb, sv, err);
    if (token)
        aos_secret_wipe(token);
    free_strv(env);
    free_strv(headers);
    free(argv);
    json_decref(info);
    if (rc)
        return rc;
    return aos_upstream_start(sv->up);
}

static void on_upstream_closed(aos_upstream_t *up, void *data)
{
    gw_server_t *sv = data;
    aos_gateway_t *gw = sv->gw;
    for (gw_server_t **p = &gw->closing; *p; p = &(*p)->next_closing) {
        if (*p == sv) {
            *p = sv->next_closing;
            break;
        }
    }
    server_free(sv);
    if (--gw->pending_closes == 0 && gw->shutting_down && gw->on_shutdown) {
        void (*done)(void *) = gw->on_shutdown;
        gw->on_shutdown = NULL;
        done(gw->shutdown_data);
    }
}

/* Takes sv out of the map and closes its upstream; sv is freed when closed. */
static void server_retire(aos_gateway_t *gw, gw_server_t *sv)
{
    aos_map_del(&gw->servers, sv->name);
    sv->closing = 1;
    if (!sv->up) {
        server_free(sv);
        return;
    }
    sv->next_closing = gw->closing;
    gw->closing = sv;
    gw->pending_closes++;
    aos_upstream_close(sv->up, on_upstream_closed, sv);
}

int gw_server_apply(aos_gateway_t *gw, const json_t *entry, aos_err_t *err)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    gw_server_t *old = gw_server_get(gw, name);
    if (old)
        server_retire(gw, old);
    gw_server_t *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    sv->gw = gw;
    sv->name = strdup(name);
    sv->entry = json_deep_copy(entry);
    sv->enabled = json_is_true(json_object_get(entry, "enabled"));
    if (aos_map_put(&gw->servers, name, sv)) {
        server_free(sv);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    if (sv->enabled) {
        int rc = start_upstream(gw, sv, err);
        if (rc) {
            aos_log_error("gateway", "server '%s': unable to start: %s", name, aos_err_msg(err));
            return rc;
        }
    }
    return 0;
}

void gw_server_remove(aos_gateway_t *gw, const char *name)
{
    gw_server_t *sv = gw_server_get(gw, name);
    if (sv && !sv->builtin)
        server_retire(gw, sv);
}

/* ---- the gateway --------------------------------------------------------- */

static char **split_list(const char *s)
{
    size_t n = 1;
    for (const char *p = s; p && *p; p++)
        n += *p == ',';
    char **v = calloc(n + 1, sizeof(char *));
    if (!v || !s)
        return v;
    char *copy = strdup(s), *save = NULL;
    size_t i = 0;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        if (*t)
            v[i++] = strdup(t);
    }
    free(copy);
    return v;
}

static void free_list(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static void on_sweep(uv_timer_t *t)
{
    gw_sessions_sweep(t->data);
}

static void collect(aos_metrics_t *m, void *data)
{
    aos_gateway_t *gw = data;
    aos_metric_set(gw->m_sessions, (double)aos_map_count(&gw->sessions));
    aos_metric_clear(gw->m_up);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&gw->servers, &it, NULL, NULL, &v)) {
        gw_server_t *sv = v;
        aos_metric_set(gw->m_up, gw_server_ready(sv) ? 1 : 0, sv->name);
    }
}

int aos_gateway_new(aos_gateway_t **out, const aos_gateway_cfg_t *cfg, aos_err_t *err)
{
    aos_gateway_t *gw = calloc(1, sizeof(*gw));
    if (!gw)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    gw->cfg = *cfg;
    if (!gw->cfg.session_idle_s)
        gw->cfg.session_idle_s = 1800;
    gw->hosts = split_list(cfg->allowed_hosts);
    gw->origins = split_list(cfg->allowed_origins);
    aos_map_init(&gw->servers);
    aos_map_init(&gw->sessions);
    aos_map_init(&gw->progress);
    gw->client_caps = json_pack("{s:{}, s:{s:{}, s:{}}, s:{s:b}}", "sampling", "elicitation",
                                "form", "url", "roots", "listChanged", 1);
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    aos_metrics_t *m = cfg->metrics;
    gw->m_calls =
        aos_metrics_counter(m, "aos_mcp_calls_total",
                            "MCP requests forwarded to servers, by outcome", "server,tool,outcome");
    gw->m_latency = aos_metrics_histogram(m, "aos_mcp_call_duration_seconds",
                                          "Latency of tool calls through the gateway", "server",
                                          bounds, sizeof(bounds) / sizeof(bounds[0]));
    gw->m_sessions = aos_metrics_gauge(m, "aos_mcp_sessions", "Open MCP client sessions", NULL);
    gw->m_up = aos_metrics_gauge(m, "aos_mcp_server_up", "1 if the server is ready", "server");
    aos_metrics_on_collect(m, collect, gw);

    aos_gateway_add_builtin(gw, &gw_builtin_aos);

    uv_timer_init(cfg->loop, &gw->sweep);
    gw->sweep.data = gw;
    uv_timer_start(&gw->sweep, on_sweep, 10000, 10000);
    uv_unref((uv_handle_t *)&gw->sweep);
    *out = gw;
    return 0;
}

int aos_gateway_add_builtin(aos_gateway_t *gw, const aos_builtin_t *bi)
{
    if (!aos_registry_name_ok(bi->name) || gw_server_get(gw, bi->name))
        return AOS_EINVAL;
    gw_server_t *b = calloc(1, sizeof(*b));
    if (!b)
        return AOS_ENOMEM;
    b->gw = gw;
    b->name = strdup(bi->name);
    b->builtin = bi;
    b->enabled = 1;
    b->tools = bi->tools(bi->data);
    char url[96];
    snprintf(url, sizeof(url), "builtin:%s", bi->name);
    b->entry =
        json_pack("{s:s, s:s, s:s, s:s, s:{}, s:i, s:b}", "name", bi->name, "transport", "builtin",
                  "base_url", url, "description", bi->description ? bi->description : "",
                  "capabilities", "timeout_ms", AOS_REGISTRY_DEFAULT_TIMEOUT_MS, "enabled", 1);
    if (aos_map_put(&gw->servers, bi->name, b)) {
        server_free(b);
        return AOS_ENOMEM;
    }
    return 0;
}

int aos_gateway_load(aos_gateway_t *gw, aos_err_t *err)
{
    json_t *list = NULL;
    int rc = aos_store_registry_list(gw->cfg.store, &list, err);
    if (rc)
        return rc;
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        aos_err_t e2 = {0, ""};
        gw_server_apply(gw, e, &e2); /* a server that fails to start is logged, not fatal */
    }
    aos_log_info("gateway", "loaded %zu registered server(s)", json_array_size(list));
    json_decref(list);
    return 0;
}

void aos_gateway_shutdown(aos_gateway_t *gw, void (*done)(void *data), void *data)
{
    gw->shutting_down = 1;
    gw->on_shutdown = done;
    gw->shutdown_data = data;
    uv_timer_stop(&gw->sweep);
    /* sessions first: their calls are answered with an error */
    aos_map_iter_t it;
    void *v;
    aos_map_iter_init(&it);
    while (aos_map_iter_next(&gw->sessions, &it, NULL, NULL, &v))
        gw_session_free(v);
    aos_map_iter_init(&it);
    while (aos_map_iter_next(&gw->servers, &it, NULL, NULL, &v))
        server_retire(gw, v);
    if (gw->pending_closes == 0 && gw->on_shutdown) {
        gw->on_shutdown = NULL;
        done(data);
    }
}

static void on_sweep_closed(uv_handle_t *h)
{
    aos_gateway_t *gw = h->data;
    aos_map_release(&gw->servers);
    aos_map_release(&gw->sessions);
    aos_map_release(&gw->progress);
    json_decref(gw->client_caps);
    free_list(gw->hosts);
    free_list(gw->origins);
    free(gw);
}

void aos_gateway_free(aos_gateway_t *gw)
{
    if (!gw)
        return;
    uv_close((uv_handle_t *)&gw->sweep, on_sweep_closed);
}
