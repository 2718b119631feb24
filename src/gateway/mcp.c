/* mcp.c - the gateway's MCP endpoints over Streamable HTTP (protocol
 * versions 2025-11-25, 2025-06-18 and 2025-03-26): POST carries client
 * messages, GET opens the session's server-to-client stream, DELETE ends
 * the session. /mcp aggregates every server; /mcp/servers/:name proxies one
 * server unchanged. Also the routing of what upstreams send on their own.
 * Every method is checked against the caller's rights (auth.h): a tool
 * call needs operate on "tool:<server>__<tool>", tools/list shows only
 * such tools, prompts and resources need read on "tool:<server>__*". */
#include "auth/auth.h"
#include "gateway/internal.h"
#include "log/log.h"
#include "registry/registry.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const versions[] = {"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05",
                                       NULL};

static int version_ok(const char *v)
{
    for (int i = 0; v && versions[i]; i++)
        if (!strcmp(v, versions[i]))
            return 1;
    return 0;
}

/* A failure of the HTTP request itself: the code's HTTP status and a
 * JSON-RPC error body (id: the message's, when it has one). */
static int mcp_fail_id(aos_http_req_t *req, const json_t *id, int code, const char *msg)
{
    gw_span_fail(aos_trace_request_span_of(req), code, msg);
    return aos_http_respond_json(req, (unsigned)aos_err_http_status(code),
                                 aos_rpc_error_aos(id, code, msg));
}

static int mcp_fail(aos_http_req_t *req, int code, const char *msg)
{
    return mcp_fail_id(req, NULL, code, msg);
}

static int reply(aos_http_req_t *req, const json_t *id, json_t *result)
{
    return gw_respond_msg(req, aos_rpc_result(id, result));
}

static int reply_error(aos_http_req_t *req, const json_t *id, int aos_code, const char *msg)
{
    return gw_respond_msg(req, aos_rpc_error_aos(id, aos_code, msg));
}

/* ---- DNS-rebinding protection -----------------------------------------
 * A web page can make a browser send requests to 127.0.0.1 under a name
 * of the attacker's that resolves there; the Host header then carries that
 * name, and Origin the page's. So Host must name this machine's loopback
 * exactly, or be on --allowed-hosts; Origin (when sent) likewise, or be on
 * --allowed-origins. "Origin: null" (sandboxed frames, file: pages) is
 * refused unless --allowed-origins lists "null". */

/* 1 if h (lowercase, no port) is localhost, an IPv4 literal in 127.0.0.0/8
 * in the four-decimal-octet form (inet_pton: no "127.1", no trailing
 * labels), or [::1]. */
static int host_is_loopback(const char *h)
{
    if (!strcmp(h, "localhost"))
        return 1;
    struct in_addr a4;
    if (inet_pton(AF_INET, h, &a4) == 1)
        return (ntohl(a4.s_addr) >> 24) == 127;
    size_t n = strlen(h);
    if (n < 3 || h[0] != '[' || h[n - 1] != ']' || n - 2 >= INET6_ADDRSTRLEN)
        return 0;
    char inner[INET6_ADDRSTRLEN];
    memcpy(inner, h + 1, n - 2);
    inner[n - 2] = '\0';
    struct in6_addr a6;
    return inet_pton(AF_INET6, inner, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* Copies the host of an authority "host[:port]" or "[v6][:port]",
 * lowercased, to out. Returns 0, or -1 if in is anything else (empty,
 * characters a host name does not have, a port that is not 1-5 digits,
 * more after the port). */
static int authority_host(const char *in, char *out, size_t n)
{
    const char *end;
    if (*in == '[') {
        end = strchr(in, ']');
        if (!end)
            return -1;
        end++;
    } else {
        end = in + strcspn(in, ":");
    }
    size_t len = (size_t)(end - in);
    if (len == 0 || len >= n)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)in[i];
        if (!isalnum(c) && !strchr("-._~[]:%", c))
            return -1;
        out[i] = (char)tolower(c);
    }
    out[len] = '\0';
    if (*end == ':') {
        size_t digits = strspn(end + 1, "0123456789");
        if (digits < 1 || digits > 5 || end[1 + digits])
            return -1;
    } else if (*end) {
        return -1;
    }
    return 0;
}

static int in_list(char **list, const char *v)
{
    for (size_t i = 0; list && list[i]; i++)
        if (!strcmp(list[i], "*") || !strcasecmp(list[i], v))
            return 1;
    return 0;
}

static int host_ok(aos_gateway_t *gw, const char *host)
{
    char h[256];
    if (authority_host(host, h, sizeof(h)) != 0)
        return 0;
    return host_is_loopback(h) || in_list(gw->hosts, h);
}

/* An Origin is "null" or scheme://authority, nothing after. */
static int origin_allowed(aos_gateway_t *gw, const char *origin)
{
    if (!strcmp(origin, "null")) {
        for (size_t i = 0; gw->origins && gw->origins[i]; i++)
            if (!strcmp(gw->origins[i], "null"))
                return 1;
        return 0; /* "*" does not stand for it */
    }
    if (in_list(gw->origins, origin))
        return 1;
    const char *auth = NULL;
    if (!strncasecmp(origin, "http://", 7))
        auth = origin + 7;
    else if (!strncasecmp(origin, "https://", 8))
        auth = origin + 8;
    char h[256];
    return auth && authority_host(auth, h, sizeof(h)) == 0 && host_is_loopback(h);
}

static int origin_ok(aos_gateway_t *gw, aos_http_req_t *req)
{
    const char *host = aos_http_header(req, "Host");
    if (host && !host_ok(gw, host))
        return 0;
    const char *origin = aos_http_header(req, "Origin");
    return !origin || origin_allowed(gw, origin);
}

/* ---- tracing ---------------------------------------------------------------- */

static void set_code(aos_span_t *s, long long code, const char *message)
{
    char c[24];
    snprintf(c, sizeof(c), "%lld", code);
    aos_span_set_str(s, AOS_ATTR_RPC_RESPONSE_STATUS_CODE, c);
    aos_span_set_error(s, c, message);
}

void gw_span_fail(aos_span_t *s, int code, const char *msg)
{
    if (s)
        set_code(s, aos_err_rpc_code(code), msg && *msg ? msg : aos_strerror(code));
}

void gw_span_outcome(aos_http_req_t *req, const json_t *msg)
{
    aos_span_t *s = aos_trace_request_span_of(req);
    const json_t *e = json_object_get(msg, "error");
    if (!s)
        return;
    if (e)
        set_code(s, (long long)json_integer_value(json_object_get(e, "code")),
                 json_string_value(json_object_get(e, "message")));
    else if (json_is_true(json_object_get(json_object_get(msg, "result"), "isError")))
        gw_span_tool_error(req);
}

void gw_span_tool_error(aos_http_req_t *req)
{
    aos_span_t *s = aos_trace_request_span_of(req);
    if (s)
        aos_span_set_error(s, AOS_ATTR_ERROR_TOOL, "the tool reported an error");
}

/* The SERVER span of msg, a request or notification on req, under the
 * context in its params._meta (MCP's convention: the HTTP request's own
 * context is then linked), else under the HTTP request's. */
static void message_span(aos_gateway_t *gw, aos_http_req_t *req, const gw_server_t *sv,
                         const json_t *msg)
{
    if (!gw->cfg.trace)
        return;
    const char *m = aos_rpc_method(msg);
    const json_t *p = aos_rpc_params(msg), *id = aos_rpc_id(msg);
    const json_t *meta = json_object_get(p, "_meta");
    const char *tp = json_string_value(json_object_get(meta, "traceparent"));
    aos_tracectx_t parent;
    int from_meta =
        tp && aos_tracectx_parse(&parent, tp,
                                 json_string_value(json_object_get(meta, "tracestate"))) == 0;
    int tool = !strcmp(m, "tools/call"), prompt = !strcmp(m, "prompts/get");
    const char *target = tool || prompt ? json_string_value(json_object_get(p, "name")) : NULL;
    char name[AOS_TRACE_NAME_MAX];
    snprintf(name, sizeof(name), "%.80s%s%.160s", m, target ? " " : "", target ? target : "");
    aos_span_t *s = aos_trace_request_span(gw->cfg.trace, req, from_meta ? &parent : NULL, name);
    aos_span_set_str(s, AOS_ATTR_MCP_METHOD_NAME, m);
    if (json_is_string(id)) {
        aos_span_set_str(s, AOS_ATTR_JSONRPC_REQUEST_ID, json_string_value(id));
    } else if (json_is_integer(id)) {
        char n[24];
        snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(id));
        aos_span_set_str(s, AOS_ATTR_JSONRPC_REQUEST_ID, n);
    }
    aos_span_set_session(s, aos_http_header(req, "Mcp-Session-Id"));
    aos_span_set_str(s, AOS_ATTR_MCP_PROTOCOL_VERSION,
                     aos_http_header(req, "MCP-Protocol-Version"));
    aos_span_set_str(s, AOS_ATTR_NETWORK_TRANSPORT, "tcp");
    aos_span_set_str(s, AOS_ATTR_NETWORK_PROTOCOL_NAME, "http");
    char who[128];
    aos_span_set_str(s, AOS_ATTR_AOS_PRINCIPAL,
                     aos_auth_display(aos_auth_principal(req), who, sizeof(who)));
    if (sv)
        aos_span_set_str(s, AOS_ATTR_AOS_MCP_SERVER, sv->name);
    if (tool && target) {
        aos_span_set_str(s, AOS_ATTR_GEN_AI_OPERATION_NAME, AOS_ATTR_GEN_AI_OP_EXECUTE_TOOL);
        aos_span_set_str(s, AOS_ATTR_GEN_AI_TOOL_NAME, target);
    } else if (prompt && target) {
        aos_span_set_str(s, AOS_ATTR_GEN_AI_PROMPT_NAME, target);
    }
}

/* ---- initialize ------------------------------------------------------------ */

json_t *gw_init_result(gw_session_t *s, gw_server_t *sv)
{
    const char *ver = s->protocol;
    if (sv && sv->up) {
        const json_t *init = aos_upstream_init_result(sv->up);
        json_t *r = init ? json_deep_copy(init) : json_object();
        json_object_set_new(r, "protocolVersion", json_string(ver));
        return r;
    }
    if (sv && sv->builtin)
        return json_pack("{s:s, s:{s:{}}, s:{s:s, s:s}}", "protocolVersion", ver, "capabilities",
                         "tools", "serverInfo", "name", sv->name, "version", s->gw->cfg.version);
    return json_pack("{s:s, s:{s:{s:b}, s:{s:b, s:b}, s:{s:b}, s:{}, s:{}}, s:{s:s, s:s}, s:s}",
                     "protocolVersion", ver, "capabilities", "tools", "listChanged", 1, "resources",
                     "subscribe", 1, "listChanged", 1, "prompts", "listChanged", 1, "logging",
                     "completions", "serverInfo", "name", "aosd", "version", s->gw->cfg.version,
                     "instructions",
                     "AOS gateway: the tools, resources and prompts of every registered MCP "
                     "server, named <server>__<name>.");
}

static int handle_initialize(aos_gateway_t *gw, aos_http_req_t *req, gw_server_t *sv,
                             const json_t *msg)
{
    const json_t *id = aos_rpc_id(msg);
    const json_t *p = aos_rpc_params(msg);
    const char *ver = json_string_value(json_object_get(p, "protocolVersion"));
    if (!json_is_object(p) || !ver || !json_is_object(json_object_get(p, "capabilities")))
        return mcp_fail_id(req, id, AOS_EINVAL,
                           "initialize needs protocolVersion and capabilities");
    gw_session_t *s = gw_session_new(gw, sv ? sv->name : NULL);
    if (!s)
        return AOS_ENOMEM;
    gw_session_owner(req, s->owner, sizeof(s->owner));
    snprintf(s->protocol, sizeof(s->protocol), "%s", version_ok(ver) ? ver : versions[0]);
    /* priming events (empty data) confuse clients older than 2025-11-25 */
    s->resumable = strcmp(s->protocol, "2025-11-25") >= 0;
    s->client_caps = json_deep_copy(json_object_get(p, "capabilities"));
    s->client_info = json_deep_copy(json_object_get(p, "clientInfo"));
    /* what a server may ask this client through aosd, and so whether the
     * client needs upstreams of its own (gw_upstream_for) */
    s->up_caps = json_object();
    static const char *const askable[] = {"sampling", "elicitation", "roots", NULL};
    for (int i = 0; askable[i]; i++) {
        json_t *c = json_object_get(s->client_caps, askable[i]);
        if (json_is_object(c)) {
            json_object_set_new(s->up_caps, askable[i], json_deep_copy(c));
            s->exclusive = 1;
        }
    }
    aos_http_add_header(req, "Mcp-Session-Id", s->id);
    aos_span_t *span = aos_trace_request_span_of(req);
    aos_span_set_session(span, s->id);
    aos_span_set_str(span, AOS_ATTR_MCP_PROTOCOL_VERSION, s->protocol);
    if (!sv || sv->builtin || gw_server_ready(sv))
        return reply(req, id, gw_init_result(s, sv));
    /* not ready yet: a ping is queued until it is (or fails) */
    gw_call_t *c = gw_call_new(gw, GW_CALL_MCP, s, id, req);
    if (!c)
        return AOS_ENOMEM;
    c->xform = GW_XF_INIT;
    c->accept_sse = 0;
    aos_err_t err = {0, ""};
    uint64_t after;
    if (gw_call_forward(c, sv, "ping", NULL, &err, &after))
        gw_call_fail(c, &err, after);
    return 0;
}

/* ---- aggregation --------------------------------------------------------- */

/* Whether the caller of req may do perm on sv's tool (NULL: on every tool
 * of sv, "tool:<server>__*"). No req: an in-process caller, which its caps
 * restrict instead. */
static int may(const aos_http_req_t *req, aos_perm_t perm, const char *server, const char *tool)
{
    if (!req)
        return 1;
    char res[2 * AOS_REGISTRY_NAME_MAX + 300]; /* "tool:<server>__<tool>", tool cut at 256 */
    size_t n = 0;
    aos_str_put(res, sizeof(res), &n, "tool:", SIZE_MAX);
    aos_str_put(res, sizeof(res), &n, server, SIZE_MAX);
    aos_str_put(res, sizeof(res), &n, GW_SEP, SIZE_MAX);
    aos_str_put(res, sizeof(res), &n, tool ? tool : "*", 256);
    return aos_auth_req_check(req, perm, res) == 0;
}

static int deny(aos_http_req_t *req, const json_t *id, const char *what, const char *server,
                const char *name)
{
    char e[400];
    snprintf(e, sizeof(e), "this token may not %s '%.64s" GW_SEP "%.200s'", what, server,
             name ? name : "*");
    return reply_error(req, id, AOS_EFORBIDDEN, e);
}

/* The items of list which of every server, as session s sees them,
 * prefixing field (may be NULL) with "<server>__"; only what the caller of
 * req (NULL: anyone) may see: the tools it may call (operate on the tool), the other
 * lists of the servers it may read entirely (read on "<server>__*"). */
static json_t *aggregate(aos_gateway_t *gw, aos_http_req_t *req, gw_session_t *s, gw_list_t which,
                         const char *field)
{
    json_t *all = json_array();
    size_t n;
    gw_server_t **svs = gw_servers_sorted(gw, 1, &n);
    for (size_t i = 0; i < n; i++) {
        if (which != GW_TOOLS && !may(req, AOS_PERM_READ, svs[i]->name, NULL))
            continue;
        json_t *list = gw_list_for(svs[i], s, which);
        size_t j;
        json_t *item;
        json_array_foreach(list, j, item)
        {
            const char *nm = field ? json_string_value(json_object_get(item, field)) : NULL;
            if (which == GW_TOOLS && !may(req, AOS_PERM_OPERATE, svs[i]->name, nm ? nm : ""))
                continue;
            json_t *c = json_copy(item);
            if (field)
                json_object_set_new(c, field,
                                    json_sprintf("%s" GW_SEP "%s", svs[i]->name, nm ? nm : ""));
            json_array_append_new(all, c);
        }
    }
    free(svs);
    return all;
}

/* sv's tools that the caller of req may call (names unprefixed). */
static json_t *tools_allowed(aos_http_req_t *req, gw_server_t *sv, gw_session_t *s)
{
    json_t *out = json_array();
    size_t j;
    json_t *item;
    json_array_foreach(gw_list_for(sv, s, GW_TOOLS), j, item)
    {
        const char *nm = json_string_value(json_object_get(item, "name"));
        if (nm && may(req, AOS_PERM_OPERATE, sv->name, nm))
            json_array_append(out, item);
    }
    return out;
}

/* Splits "<server>__<name>"; returns the server or NULL. */
static gw_server_t *split_name(aos_gateway_t *gw, const char *full, const char **rest)
{
    const char *sep = full ? strstr(full, GW_SEP) : NULL;
    if (!sep || sep == full)
        return NULL;
    char name[AOS_REGISTRY_NAME_MAX + 1];
    size_t n = (size_t)(sep - full);
    if (n > AOS_REGISTRY_NAME_MAX)
        return NULL;
    memcpy(name, full, n);
    name[n] = '\0';
    *rest = sep + strlen(GW_SEP);
    gw_server_t *sv = gw_server_get(gw, name);
    return sv && sv->enabled && !sv->closing ? sv : NULL;
}

/* The server whose resource (by exact URI, then by template prefix) uri
 * is, as session s sees them. */
static gw_server_t *server_for_uri(aos_gateway_t *gw, gw_session_t *s, const char *uri)
{
    if (!uri)
        return NULL;
    size_t n;
    gw_server_t **svs = gw_servers_sorted(gw, 1, &n);
    gw_server_t *found = NULL;
    for (size_t i = 0; i < n && !found; i++) {
        size_t j;
        json_t *r;
        json_array_foreach(gw_list_for(svs[i], s, GW_RESOURCES), j, r)
        {
            const char *u = json_string_value(json_object_get(r, "uri"));
            if (u && !strcmp(u, uri)) {
                found = svs[i];
                break;
            }
        }
    }
    for (size_t i = 0; i < n && !found; i++) {
        size_t j;
        json_t *t;
        json_array_foreach(gw_list_for(svs[i], s, GW_TEMPLATES), j, t)
        {
            const char *tpl = json_string_value(json_object_get(t, "uriTemplate"));
            const char *brace = tpl ? strchr(tpl, '{') : NULL;
            size_t plen = brace ? (size_t)(brace - tpl) : (tpl ? strlen(tpl) : 0);
            if (tpl && plen && !strncmp(tpl, uri, plen)) {
                found = svs[i];
                break;
            }
        }
    }
    free(svs);
    return found;
}

/* Runs a built-in tool (p: the tools/call params); the answer comes
 * through the call. The client's idempotency key, if it sent one in
 * params._meta["aos/idempotency_key"], reaches the tool. */
static int call_builtin(aos_gateway_t *gw, aos_http_req_t *req, gw_session_t *s, gw_server_t *sv,
                        const json_t *id, const char *tool, const json_t *p)
{
    const json_t *args = json_object_get(p, "arguments");
    gw_call_t *c = gw_call_new(gw, GW_CALL_MCP, s, id, req);
    if (!c)
        return AOS_ENOMEM;
    const char *key =
        json_string_value(json_object_get(json_object_get(p, "_meta"), "aos/idempotency_key"));
    if (key && *key && strlen(key) <= 256 && !(c->idempotency_key = strdup(key))) {
        gw_call_free(c);
        return AOS_ENOMEM;
    }
    int rc = gw_call_builtin(c, sv, tool, args);
    if (rc) {
        gw_call_free(c);
        return reply_error(req, id, rc, NULL);
    }
    return 0;
}

/* Forwards msg's method with params (copied and changed by the caller) to sv. */
static int forward(aos_gateway_t *gw, aos_http_req_t *req, gw_session_t *s, gw_server_t *sv,
                   const json_t *id, const char *method, json_t *params, const char *tool)
{
    if (!sv->up) {
        json_decref(params);
        return reply_error(req, id, AOS_EUNAVAIL, "server is disabled");
    }
    gw_call_t *c = gw_call_new(gw, GW_CALL_MCP, s, id, req);
    if (!c) {
        json_decref(params);
        return AOS_ENOMEM;
    }
    if (tool)
        c->tool = strdup(tool);
    aos_err_t err = {0, ""};
    uint64_t after;
    if (gw_call_forward(c, sv, method, params, &err, &after))
        gw_call_fail(c, &err, after);
    return 0;
}

static json_t *params_copy(const json_t *msg)
{
    const json_t *p = aos_rpc_params(msg);
    return p ? json_deep_copy(p) : json_object();
}

/* msg's params themselves, for a caller that forwards them as they are:
 * the call then owns them (gw_call_forward may change their _meta) and
 * msg, released by handle_post right after, is not read again. Saves a
 * deep copy per call. */
static json_t *params_take(const json_t *msg)
{
    json_t *p = aos_rpc_params(msg);
    return p ? json_incref(p) : json_object();
}

/* Another session than s that is subscribed to uri on sv through sv's
 * shared upstream (one subscription upstream serves them all). */
static int shared_subscriber(aos_gateway_t *gw, gw_session_t *s, gw_server_t *sv, const char *uri)
{
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&gw->sessions, &it, NULL, NULL, &v)) {
        gw_session_t *x = v;
        if (x != s && json_object_get(x->subscriptions, uri) && gw_upstream_for(sv, x) == sv->up)
            return 1;
    }
    return 0;
}

/* resources/subscribe or resources/unsubscribe of uri on sv. On the shared
 * upstream a subscription serves every session subscribed to uri, so the
 * last of them to leave unsubscribes it there. */
static int subscription(aos_gateway_t *gw, aos_http_req_t *req, gw_session_t *s, gw_server_t *sv,
                        const json_t *msg, const char *uri)
{
    const char *m = aos_rpc_method(msg);
    int sub = !strcmp(m, "resources/subscribe");
    int was = json_object_get(s->subscriptions, uri) != NULL;
    if (sub)
        json_object_set_new(s->subscriptions, uri, json_true());
    else
        json_object_del(s->subscriptions, uri);
    if (!sub && sv->up && gw_upstream_for(sv, s) == sv->up &&
        (!was || shared_subscriber(gw, s, sv, uri)))
        return reply(req, aos_rpc_id(msg), json_object());
    return forward(gw, req, s, sv, aos_rpc_id(msg), m, params_copy(msg), NULL);
}

/* The client asked for log messages at level: they can only be its own
 * from upstreams of its own, which the calls it makes from now on create;
 * those that exist get the level now, the others when they start. */
static void set_level(gw_session_t *s, int level)
{
    s->log_level = level;
    s->log_level_set = 1;
    s->exclusive = 1;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *name;
    void *v;
    while (aos_map_iter_next(&s->ups, &it, &name, NULL, &v)) {
        gw_server_t *sv = gw_server_get(s->gw, name);
        const json_t *init = sv && sv->up ? aos_upstream_init_result(sv->up) : NULL;
        if (json_object_get(json_object_get(init, "capabilities"), "logging"))
            aos_upstream_request(((gw_sup_t *)v)->up, "logging/setLevel",
                                 json_pack("{s:s}", "level", gw_log_levels[level]), 0, NULL, NULL,
                                 NULL, NULL);
    }
}

static int aggregated_request(aos_gateway_t *gw, aos_http_req_t *req, gw_session_t *s,
                              const json_t *msg)
{
    const char *m = aos_rpc_method(msg);
    const json_t *id = aos_rpc_id(msg);
    const json_t *p = aos_rpc_params(msg);
    if (!strcmp(m, "ping"))
        return reply(req, id, json_object());
    if (!strcmp(m, "tools/list"))
        return reply(req, id, json_pack("{s:o}", "tools", aggregate(gw, req, s, GW_TOOLS, "name")));
    if (!strcmp(m, "prompts/list"))
        return reply(req, id,
                     json_pack("{s:o}", "prompts", aggregate(gw, req, s, GW_PROMPTS, "name")));
    if (!strcmp(m, "resources/list"))
        return reply(req, id,
                     json_pack("{s:o}", "resources", aggregate(gw, req, s, GW_RESOURCES, NULL)));
    if (!strcmp(m, "resources/templates/list"))
        return reply(
            req, id,
            json_pack("{s:o}", "resourceTemplates", aggregate(gw, req, s, GW_TEMPLATES, NULL)));
    if (!strcmp(m, "logging/setLevel")) {
        const char *lv = json_string_value(json_object_get(p, "level"));
        int idx = gw_log_level_index(lv);
        if (idx < 0)
            return reply_error(req, id, AOS_EINVAL, "unknown log level");
        set_level(s, idx);
        return reply(req, id, json_object());
    }
    if (!strcmp(m, "tools/call") || !strcmp(m, "prompts/get")) {
        const char *full = json_string_value(json_object_get(p, "name"));
        const char *rest = NULL;
        gw_server_t *sv = split_name(gw, full, &rest);
        if (!full)
            return reply_error(req, id, AOS_EINVAL, "params.name is required");
        if (!sv) {
            char e[200];
            snprintf(e, sizeof(e), "unknown %s '%.100s' (expected <server>" GW_SEP "<name>)",
                     m[0] == 't' ? "tool" : "prompt", full);
            return reply_error(req, id, AOS_EINVAL, e);
        }
        if (m[0] == 't' ? !may(req, AOS_PERM_OPERATE, sv->name, rest)
                        : !may(req, AOS_PERM_READ, sv->name, NULL))
            return deny(req, id, m[0] == 't' ? "call" : "read the prompts of", sv->name,
                        m[0] == 't' ? rest : NULL);
        if (m[0] == 't' && gw_server_lacks_tool(sv, rest) && !sv->lists.pending)
            gw_server_refresh(sv, "tools");
        if (sv->builtin) {
            if (m[0] != 't')
                return reply_error(req, id, AOS_EINVAL, "no such prompt");
            return call_builtin(gw, req, s, sv, id, rest, p);
        }
        json_t *np = params_copy(msg);
        json_object_set_new(np, "name", json_string(rest));
        return forward(gw, req, s, sv, id, m, np, m[0] == 't' ? rest : NULL);
    }
    if (!strcmp(m, "resources/read") || !strcmp(m, "resources/subscribe") ||
        !strcmp(m, "resources/unsubscribe")) {
        const char *uri = json_string_value(json_object_get(p, "uri"));
        if (!uri)
            return reply_error(req, id, AOS_EINVAL, "params.uri is required");
        gw_server_t *sv = server_for_uri(gw, s, uri);
        if (sv && !may(req, AOS_PERM_READ, sv->name, NULL))
            return deny(req, id, "read the resources of", sv->name, NULL);
        if (!sv)
            return gw_respond_msg(req, aos_rpc_error(id, aos_err_rpc_code(AOS_ENOTFOUND),
                                                     "resource not found",
                                                     json_pack("{s:s}", "uri", uri)));
        if (strcmp(m, "resources/read") != 0)
            return subscription(gw, req, s, sv, msg, uri);
        return forward(gw, req, s, sv, id, m, params_copy(msg), NULL);
    }
    if (!strcmp(m, "completion/complete")) {
        const json_t *ref = json_object_get(p, "ref");
        const char *type = json_string_value(json_object_get(ref, "type"));
        gw_server_t *sv = NULL;
        json_t *np = params_copy(msg);
        if (type && !strcmp(type, "ref/prompt")) {
            const char *rest = NULL;
            sv = split_name(gw, json_string_value(json_object_get(ref, "name")), &rest);
            if (sv)
                json_object_set_new(json_object_get(np, "ref"), "name", json_string(rest));
        } else if (type && !strcmp(type, "ref/resource")) {
            sv = server_for_uri(gw, s, json_string_value(json_object_get(ref, "uri")));
        }
        if (!sv || sv->builtin || !may(req, AOS_PERM_READ, sv->name, NULL)) {
            json_decref(np);
            return reply(req, id,
                         json_pack("{s:{s:[], s:b}}", "completion", "values", "hasMore", 0));
        }
        return forward(gw, req, s, sv, id, m, np, NULL);
    }
    return reply_error(req, id, AOS_ENOMETHOD, NULL);
}

static int server_request(aos_gateway_t *gw, aos_http_req_t *req, gw_session_t *s, gw_server_t *sv,
                          const json_t *msg)
{
    const char *m = aos_rpc_method(msg);
    const json_t *id = aos_rpc_id(msg);
    const json_t *p = aos_rpc_params(msg);
    if (!strcmp(m, "ping"))
        return reply(req, id, json_object());
    if (!strcmp(m, "logging/setLevel")) {
        int idx = gw_log_level_index(json_string_value(json_object_get(p, "level")));
        if (idx < 0)
            return reply_error(req, id, AOS_EINVAL, "unknown log level");
        /* forwarded below, to the upstream of the session's own it creates */
        s->log_level = idx;
        s->exclusive = 1;
    }
    /* the caller's rights: tools one by one, the rest of sv as a whole */
    int whole = may(req, AOS_PERM_OPERATE, sv->name, NULL);
    if (!strcmp(m, "tools/list") && (sv->builtin || !whole))
        return reply(req, id, json_pack("{s:o}", "tools", tools_allowed(req, sv, s)));
    if (!strcmp(m, "tools/call")) {
        const char *tool = json_string_value(json_object_get(p, "name"));
        if (tool && !may(req, AOS_PERM_OPERATE, sv->name, tool))
            return deny(req, id, "call", sv->name, tool);
    } else if (strcmp(m, "logging/setLevel") != 0 && strcmp(m, "tools/list") != 0 &&
               !may(req, AOS_PERM_READ, sv->name, NULL)) {
        return deny(req, id, "read", sv->name, NULL);
    }
    if (sv->builtin) {
        if (!strcmp(m, "tools/call")) {
            const char *tool = json_string_value(json_object_get(p, "name"));
            if (!tool)
                return reply_error(req, id, AOS_EINVAL, "params.name is required");
            return call_builtin(gw, req, s, sv, id, tool, p);
        }
        if (!strcmp(m, "logging/setLevel"))
            return reply(req, id, json_object());
        return reply_error(req, id, AOS_ENOMETHOD, NULL);
    }
    const char *uri = json_string_value(json_object_get(p, "uri"));
    if (uri && (!strcmp(m, "resources/subscribe") || !strcmp(m, "resources/unsubscribe")))
        return subscription(gw, req, s, sv, msg, uri);
    const char *tool =
        !strcmp(m, "tools/call") ? json_string_value(json_object_get(p, "name")) : NULL;
    int rc = forward(gw, req, s, sv, id, m, params_take(msg), tool);
    if (!strcmp(m, "logging/setLevel"))
        s->log_level_set = 1;
    return rc;
}

/* ---- client notifications and responses ----------------------------------- */

static void client_notification(aos_gateway_t *gw, gw_session_t *s, gw_server_t *sv,
                                const json_t *msg)
{
    const char *m = aos_rpc_method(msg);
    const json_t *p = aos_rpc_params(msg);
    if (!strcmp(m, "notifications/cancelled")) {
        const json_t *rid = json_object_get(p, "requestId");
        for (gw_call_t *c = s->calls; c; c = c->s_next) {
            if (json_equal(c->id, rid)) {
                gw_call_finish(c, aos_rpc_error_aos(c->id, AOS_ECANCELED, "request cancelled"));
                return;
            }
        }
        return;
    }
    if (!strcmp(m, "notifications/roots/list_changed")) {
        /* tell the upstreams of the session's own: only they know its roots */
        aos_map_iter_t it;
        aos_map_iter_init(&it);
        const char *name;
        void *v;
        while (aos_map_iter_next(&s->ups, &it, &name, NULL, &v))
            if (!sv || !strcmp(name, sv->name))
                aos_upstream_notify(((gw_sup_t *)v)->up, m, NULL);
        return;
    }
    /* notifications/initialized and anything else: nothing to do; the
     * upstreams were initialized by aosd itself */
}

static void client_response(aos_gateway_t *gw, gw_session_t *s, const json_t *msg)
{
    const json_t *id = aos_rpc_id(msg);
    if (!json_is_integer(id))
        return;
    gw_outreq_t *o = aos_map_del_u64(&s->outreqs, (uint64_t)json_integer_value(id));
    if (!o) {
        aos_log_debug("gateway", "session %s: response to unknown request", s->id);
        return;
    }
    /* only an upstream of the session's own asks it anything */
    aos_upstream_t *up = gw_sup_get(s, o->server);
    if (up) {
        json_t *fwd = json_copy((json_t *)msg);
        json_object_set(fwd, "id", o->up_id);
        aos_upstream_respond(up, fwd);
    }
    json_decref(o->up_id);
    free(o->server);
    free(o);
}

/* ---- the endpoint ---------------------------------------------------------- */

static int handle_post(aos_gateway_t *gw, aos_http_req_t *req, gw_server_t *sv)
{
    const char *ct = aos_http_header(req, "Content-Type");
    if (!ct || strncasecmp(ct, "application/json", 16) != 0)
        return mcp_fail(req, AOS_EMEDIA, "Content-Type must be application/json");
    const char *accept = aos_http_header(req, "Accept");
    if (accept && !strstr(accept, "application/json") && !strstr(accept, "text/event-stream") &&
        !strstr(accept, "*/*"))
        return mcp_fail(req, AOS_ENOTACCEPT,
                        "Accept must include application/json or text/event-stream");
    aos_err_t err = {0, ""};
    /* a plain message is read without jansson's lexer (http/json.c);
     * jansson reads the rest and words the errors */
    json_t *msg = aos_http_body_json(req, &err);
    if (!msg)
        return mcp_fail(req, AOS_EPARSE, aos_err_msg(&err));
    int rc = 0;
    if (json_is_array(msg)) {
        rc = mcp_fail(req, AOS_EBADREQ, "JSON-RPC batches are not supported");
        goto out;
    }
    aos_rpc_kind_t kind = aos_rpc_classify(msg, &err);
    if (kind == AOS_RPC_INVALID) {
        rc = mcp_fail_id(req, json_object_get(msg, "id"), AOS_EBADREQ, aos_err_msg(&err));
        goto out;
    }
    if (kind == AOS_RPC_REQUEST || kind == AOS_RPC_NOTIFICATION)
        message_span(gw, req, sv, msg);
    if (kind == AOS_RPC_REQUEST && !strcmp(aos_rpc_method(msg), "initialize")) {
        rc = handle_initialize(gw, req, sv, msg);
        goto out;
    }
    const char *sid = aos_http_header(req, "Mcp-Session-Id");
    if (!sid) {
        rc = mcp_fail(req, AOS_ENOSESSIONID, NULL);
        goto out;
    }
    gw_session_t *s = gw_session_get_for(gw, sid, req);
    const char *want = sv ? sv->name : NULL;
    if (!s || (s->server_name == NULL) != (want == NULL) ||
        (want && strcmp(s->server_name, want) != 0)) {
        rc = mcp_fail(req, AOS_ENOSESSION, NULL);
        goto out;
    }
    const char *pv = aos_http_header(req, "MCP-Protocol-Version");
    if (pv && !version_ok(pv)) {
        rc = mcp_fail(req, AOS_EPROTOVER, NULL);
        goto out;
    }
    if (kind == AOS_RPC_NOTIFICATION) {
        client_notification(gw, s, sv, msg);
        rc = aos_http_respond(req, 202, NULL, "", 0);
    } else if (kind == AOS_RPC_RESPONSE) {
        client_response(gw, s, msg);
        rc = aos_http_respond(req, 202, NULL, "", 0);
    } else if (sv) {
        rc = server_request(gw, req, s, sv, msg);
    } else {
        rc = aggregated_request(gw, req, s, msg);
    }
out:
    json_decref(msg);
    return rc;
}

int gw_mcp_handle(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    if (!origin_ok(gw, req))
        return mcp_fail(req, AOS_EFORBIDDEN, "Forbidden: Host or Origin not allowed");
    const char *name = aos_http_param(req, "name");
    gw_server_t *sv = NULL;
    if (name) {
        sv = gw_server_get(gw, name);
        if (!sv || sv->closing) {
            char m[160];
            snprintf(m, sizeof(m), "no MCP server named '%.64s'", name);
            return mcp_fail(req, AOS_ENOTFOUND, m);
        }
        if (!sv->enabled)
            return mcp_fail(req, AOS_EUNAVAIL, "server is disabled");
    }
    const char *method = aos_http_method(req);
    if (!strcmp(method, "POST"))
        return handle_post(gw, req, sv);
    const char *sid = aos_http_header(req, "Mcp-Session-Id");
    gw_session_t *s = gw_session_get_for(gw, sid, req);
    if (!strcmp(method, "GET")) {
        const char *accept = aos_http_header(req, "Accept");
        if (!accept || !strstr(accept, "text/event-stream"))
            return mcp_fail(req, AOS_ENOTACCEPT, "Accept must include text/event-stream");
        if (!sid)
            return mcp_fail(req, AOS_ENOSESSIONID, NULL);
        if (!s)
            return mcp_fail(req, AOS_ENOSESSION, NULL);
        const char *last = aos_http_header(req, "Last-Event-ID");
        if (last) {
            aos_err_t err = {0, ""};
            int rc = gw_stream_resume(s, req, last, &err);
            if (rc == AOS_EBADREQ) {
                aos_log_info("gateway", "session %s: %s", s->id, aos_err_msg(&err));
                return aos_http_respond_json(
                    req, (unsigned)aos_err_http_status(rc),
                    aos_rpc_error_aos(NULL, AOS_EBADREQ, aos_err_msg(&err)));
            }
            return rc;
        }
        int rc = gw_session_attach_stream(s, req);
        if (rc == AOS_ECONFLICT)
            return mcp_fail(req, AOS_ECONFLICT, "Conflict: this session already has a stream");
        return rc;
    }
    if (!strcmp(method, "DELETE")) {
        if (!sid)
            return mcp_fail(req, AOS_ENOSESSIONID, NULL);
        if (!s)
            return mcp_fail(req, AOS_ENOSESSION, NULL);
        gw_session_free(s);
        return aos_http_respond(req, 200, NULL, "", 0);
    }
    aos_http_add_header(req, "Allow", "GET, POST, DELETE");
    return mcp_fail(req, AOS_EMETHOD, "Method not allowed");
}

/* ---- what upstreams send on their own --------------------------------------
 * An upstream of a session's own (only != NULL) speaks to that session
 * alone. The shared upstream (only == NULL) speaks to no client in
 * particular: progress is matched by the call's own token, list changes
 * and resource updates go to the sessions they concern, and the rest (a
 * request, a log line, a cancel), which a call of any of its sessions may
 * have caused, stays with aosd. */

static int session_on(const gw_session_t *s, const gw_server_t *sv)
{
    if (s->server_name)
        return !strcmp(s->server_name, sv->name);
    return !sv->builtin;
}

/* The newest call of session s in flight on upstream up. */
static gw_call_t *current_call(gw_session_t *s, const aos_upstream_t *up)
{
    for (gw_call_t *c = s->calls; c; c = c->s_next)
        if (c->kind == GW_CALL_MCP && c->phase == GW_PHASE_SENT && c->up == up)
            return c;
    return NULL;
}

/* Sends msg to the sessions on sv that hear the upstream it came from:
 * only, or (the shared upstream) every session on sv without an upstream
 * of its own there; with uri those subscribed to uri. */
static void broadcast(gw_server_t *sv, gw_session_t *only, const json_t *msg, const char *uri)
{
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&sv->gw->sessions, &it, NULL, NULL, &v)) {
        gw_session_t *s = v;
        if (!session_on(s, sv) || !s->get || (only && s != only))
            continue;
        if (!only && gw_sup_get(s, sv->name))
            continue; /* it hears its own upstream of sv, not the shared one */
        if (uri && !json_object_get(s->subscriptions, uri))
            continue;
        gw_session_send(s, json_deep_copy(msg));
    }
}

/* Keeps in aosd's log what the shared upstream of sv logged: no client's.
 * At most GW_SHARED_LOG_RATE lines a second; the next kept line says how
 * many were dropped. */
static void log_shared(gw_server_t *sv, const json_t *p)
{
    if (aos_bucket_take(&sv->log_bucket, gw_now_ms())) {
        sv->log_dropped++;
        return;
    }
    int lv = gw_log_level_index(json_string_value(json_object_get(p, "level")));
    char *data = json_dumps(json_object_get(p, "data"), JSON_COMPACT | JSON_ENCODE_ANY);
    aos_log(lv >= 4   ? AOS_LOG_ERROR
            : lv == 3 ? AOS_LOG_WARN
            : lv >= 1 ? AOS_LOG_INFO
                      : AOS_LOG_DEBUG,
            "upstream",
            json_pack("{s:s, s:I}", "server", sv->name, "dropped", (json_int_t)sv->log_dropped),
            "server '%s' logged (shared session, no client's): %.1000s", sv->name,
            data ? data : "null");
    sv->log_dropped = 0;
    free(data);
}

void gw_route_notification(gw_server_t *sv, gw_session_t *only, aos_upstream_t *up, json_t *msg)
{
    aos_gateway_t *gw = sv->gw;
    const char *m = aos_rpc_method(msg);
    const json_t *p = aos_rpc_params(msg);
    if (!m)
        return;
    if (!strcmp(m, "notifications/progress")) {
        /* the token is the call's own; and only the upstream the call went
         * to may report on it */
        const json_t *tok = json_object_get(p, "progressToken");
        gw_call_t *c = json_is_integer(tok)
                           ? aos_map_get_u64(&gw->progress, (uint64_t)json_integer_value(tok))
                           : NULL;
        if (!c || c->up != up)
            return;
        json_t *out = json_deep_copy(msg);
        json_object_set(json_object_get(out, "params"), "progressToken", c->client_progress);
        gw_call_send(c, out);
        return;
    }
    if (!strcmp(m, "notifications/message")) {
        if (!only) {
            log_shared(sv, p);
            return;
        }
        int lv = gw_log_level_index(json_string_value(json_object_get(p, "level")));
        if (lv < only->log_level && lv >= 0)
            return;
        gw_call_t *c = current_call(only, up);
        if (c)
            gw_call_send(c, json_deep_copy(msg));
        else
            gw_session_send(only, json_deep_copy(msg));
        return;
    }
    if (!strcmp(m, "notifications/resources/updated")) {
        const char *uri = json_string_value(json_object_get(p, "uri"));
        if (uri)
            broadcast(sv, only, msg, uri);
        return;
    }
    if (!strcmp(m, "notifications/cancelled")) {
        /* the upstream withdrew one of its requests to the session; the
         * shared upstream has none (gw_route_request) */
        if (!only)
            return;
        const json_t *rid = json_object_get(p, "requestId");
        aos_map_iter_t it;
        aos_map_iter_init(&it);
        void *ov;
        uint64_t key;
        while (aos_map_iter_next(&only->outreqs, &it, NULL, &key, &ov)) {
            gw_outreq_t *o = ov;
            if (strcmp(o->server, sv->name) || !json_equal(o->up_id, rid))
                continue;
            json_t *out = json_deep_copy(msg);
            json_object_set_new(json_object_get(out, "params"), "requestId",
                                json_integer((json_int_t)o->down_id));
            aos_map_del_u64(&only->outreqs, key);
            json_decref(o->up_id);
            free(o->server);
            free(o);
            gw_session_send(only, out);
            return;
        }
        return;
    }
    /* list_changed and anything else: the sessions that hear up */
    broadcast(sv, only, msg, NULL);
}

void gw_route_request(gw_server_t *sv, gw_session_t *only, aos_upstream_t *up, json_t *msg)
{
    const char *m = aos_rpc_method(msg);
    const json_t *id = aos_rpc_id(msg);
    if (!strcmp(m, "ping")) {
        aos_upstream_respond(up, aos_rpc_result(id, json_object()));
        return;
    }
    if (!only) {
        /* any of the sessions sharing the upstream may have caused it, and
         * none of them can be asked anything (they declared nothing) */
        aos_log(strcmp(m, "roots/list") ? AOS_LOG_WARN : AOS_LOG_INFO, "gateway",
                json_pack("{s:s, s:s}", "server", sv->name, "method", m),
                "server '%s' asked '%.60s' on its shared session: refused, no client's", sv->name,
                m);
        char e[200];
        snprintf(e, sizeof(e), "'%.60s' from the shared session of server '%.64s': no client", m,
                 sv->name);
        aos_upstream_respond(up, aos_rpc_error_aos(id, AOS_ENOMETHOD, e));
        return;
    }
    const char *need = !strcmp(m, "sampling/createMessage") ? "sampling"
                       : !strcmp(m, "elicitation/create")   ? "elicitation"
                       : !strcmp(m, "roots/list")           ? "roots"
                                                            : NULL;
    gw_call_t *c = current_call(only, up);
    if ((need && !json_object_get(only->client_caps, need)) ||
        (!c && !gw_session_connected(only))) {
        char e[160];
        snprintf(e, sizeof(e), "the client cannot answer '%.60s'%s", m,
                 need && json_object_get(only->client_caps, need) ? " now (no open stream)" : "");
        aos_upstream_respond(up, aos_rpc_error_aos(id, AOS_ENOMETHOD, e));
        return;
    }
    gw_outreq_t *o = calloc(1, sizeof(*o));
    if (!o) {
        aos_upstream_respond(up, aos_rpc_error_aos(id, AOS_ENOMEM, NULL));
        return;
    }
    o->server = strdup(sv->name);
    o->up_id = json_deep_copy(id);
    o->down_id = ++only->next_out_id;
    aos_map_put_u64(&only->outreqs, o->down_id, o);
    json_t *out = json_deep_copy(msg);
    json_object_set_new(out, "id", json_integer((json_int_t)o->down_id));
    if (c)
        gw_call_send(c, out);
    else
        gw_session_send(only, out);
}

json_t *aos_gateway_tool_list(aos_gateway_t *gw, const json_t *patterns)
{
    json_t *all = aggregate(gw, NULL, NULL, GW_TOOLS, "name");
    if (!patterns || !all)
        return all;
    json_t *out = json_array();
    size_t i, k;
    json_t *t, *p;
    json_array_foreach(all, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        json_array_foreach(patterns, k, p)
        {
            if (json_is_string(p) && name && aos_gateway_tool_match(json_string_value(p), name)) {
                json_array_append(out, t);
                break;
            }
        }
    }
    json_decref(all);
    return out;
}
