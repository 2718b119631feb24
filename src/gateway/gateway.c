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

/* ---- servers ----------------------------------------------------------- */

gw_server_t *gw_server_get(aos_gateway_t *gw, const char *name)
{
    return name ? aos_map_get(&gw->servers, name) : NULL;
}

static int cmp_server(const void *a, const void *b)
{
    return strcmp((*(gw_server_t *const *)a)->name, (*(gw_server_t *const *)b)->name);
}

gw_server_t **gw_servers_sorted(aos_gateway_t *gw, int live_only, size_t *n)
{
    gw_server_t **out = calloc(aos_map_count(&gw->servers) + 1, sizeof(gw_server_t *));
    size_t m = 0;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (out && aos_map_iter_next(&gw->servers, &it, NULL, NULL, &v)) {
        gw_server_t *sv = v;
        if (!live_only || (sv->enabled && !sv->closing))
            out[m++] = sv;
    }
    if (out)
        qsort(out, m, sizeof(*out), cmp_server);
    *n = m;
    return out;
}

int gw_server_ready(const gw_server_t *sv)
{
    if (sv->builtin)
        return 1;
    return sv->up && aos_upstream_state(sv->up) == AOS_UP_READY;
}

int gw_server_has_tool(const gw_server_t *sv, const char *tool)
{
    return json_is_array(sv->lists.tools) && !gw_server_lacks_tool(sv, tool);
}

int gw_server_lacks_tool(const gw_server_t *sv, const char *tool)
{
    if (!json_is_array(sv->lists.tools))
        return 0;
    size_t i;
    json_t *t;
    json_array_foreach(sv->lists.tools, i, t)
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

/* healthy | degraded | down, from the connection, the breaker and pings */
static const char *health_status(gw_server_t *sv)
{
    if (sv->builtin)
        return "healthy";
    if (!sv->enabled || sv->hold || !gw_server_ready(sv))
        return "down";
    uint64_t now = gw_now_ms();
    aos_breaker_state_t b = aos_breaker_state(&sv->breaker, now);
    if (b == AOS_BREAKER_OPEN || sv->ping_ms < 0)
        return "down";
    if (b == AOS_BREAKER_HALF_OPEN || sv->breaker.consecutive > 0 ||
        sv->ping_ms > sv->limits.health_timeout_ms / 2)
        return "degraded";
    return "healthy";
}

json_t *gw_server_health(gw_server_t *sv)
{
    json_t *h =
        json_pack("{s:s, s:s, s:i, s:i, s:s}", "state", state_name(sv), "status", health_status(sv),
                  "inflight", sv->active, "queued", sv->queued, "breaker",
                  aos_breaker_state_name(aos_breaker_state(&sv->breaker, gw_now_ms())));
    if (sv->ping_ms >= 0 && sv->up)
        json_object_set_new(h, "latency_ms", json_real(sv->ping_ms));
    if (sv->limits.quota > 0)
        json_object_set_new(h, "quota_used",
                            json_integer((json_int_t)aos_quota_used(&sv->quota, time(NULL))));
    if (sv->up) {
        const char *le = aos_upstream_last_error(sv->up);
        if (!(le && *le) && sv->last_ping_error[0])
            le = sv->last_ping_error;
        json_object_set_new(h, "last_error", le && *le ? json_string(le) : json_null());
        if (aos_upstream_pid(sv->up))
            json_object_set_new(h, "pid", json_integer(aos_upstream_pid(sv->up)));
        const json_t *init = aos_upstream_init_result(sv->up);
        if (init)
            json_object_set(h, "server_info", json_object_get(init, "serverInfo"));
        /* an https server's certificate as of its last TLS handshake:
         * public data (what any client of the server is shown) */
        const aos_httpc_cert_t *pc = aos_upstream_peer_cert(sv->up);
        if (pc)
            json_object_set_new(h, "peer_cert",
                                json_pack("{s:s, s:s, s:s, s:s}", "subject", pc->subject, "issuer",
                                          pc->issuer, "not_before", pc->not_before, "not_after",
                                          pc->not_after));
    } else if (sv->start_error[0]) {
        json_object_set_new(h, "last_error", json_string(sv->start_error));
    }
    if (json_is_array(sv->lists.tools))
        json_object_set_new(h, "tools", json_integer((json_int_t)json_array_size(sv->lists.tools)));
    if (sv->hold)
        json_object_set_new(h, "refused", json_string(sv->hold));
    return h;
}

/* Fetches one list (all pages) of upstream up into *slot of lists. The
 * upstream's owner outlives the fetch: closing an upstream fails its
 * requests (ECANCELED) before the owner is freed. */
struct list_fetch {
    aos_upstream_t *up;
    gw_lists_t *lists;
    const char *method; /* "tools/list" */
    const char *key;    /* "tools" */
    json_t **slot;
    json_t *acc;
    int pages;
};

static void fetch_next(struct list_fetch *f, const char *cursor);

static void fetch_end(struct list_fetch *f)
{
    f->lists->pending--;
    json_decref(f->acc);
    free(f);
}

static void on_list(aos_upstream_t *up, json_t *reply, int status, const char *errmsg, void *data)
{
    struct list_fetch *f = data;
    json_t *res = reply ? json_object_get(reply, "result") : NULL;
    if (status || !res) {
        if (status != AOS_ECANCELED)
            aos_log_warn("gateway", "server '%s': %s failed: %s", aos_upstream_name(up), f->method,
                         errmsg ? errmsg : "error reply");
        fetch_end(f);
        return;
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
    fetch_end(f);
}

static void fetch_next(struct list_fetch *f, const char *cursor)
{
    json_t *params = cursor ? json_pack("{s:s}", "cursor", cursor) : json_object();
    if (aos_upstream_request(f->up, f->method, params, 0, NULL, on_list, f, NULL))
        fetch_end(f);
}

static void fetch_list(aos_upstream_t *up, gw_lists_t *lists, const char *cap, const char *method,
                       const char *key, json_t **slot)
{
    const json_t *init = aos_upstream_init_result(up);
    if (!json_object_get(json_object_get(init, "capabilities"), cap))
        return;
    struct list_fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return;
    f->up = up;
    f->lists = lists;
    f->method = method;
    f->key = key;
    f->slot = slot;
    f->acc = json_array();
    lists->pending++;
    fetch_next(f, NULL);
}

/* Fetches the lists of up into lists (which: "tools", "resources",
 * "prompts", NULL = all). */
static void refresh_lists(aos_upstream_t *up, gw_lists_t *l, const char *which)
{
    if (!which || !strcmp(which, "tools"))
        fetch_list(up, l, "tools", "tools/list", "tools", &l->tools);
    if (!which || !strcmp(which, "resources")) {
        fetch_list(up, l, "resources", "resources/list", "resources", &l->resources);
        fetch_list(up, l, "resources", "resources/templates/list", "resourceTemplates",
                   &l->templates);
    }
    if (!which || !strcmp(which, "prompts"))
        fetch_list(up, l, "prompts", "prompts/list", "prompts", &l->prompts);
}

/* The lists a list_changed notification m makes stale, or NULL. */
static const char *list_changed(const char *m)
{
    if (!m)
        return NULL;
    if (!strcmp(m, "notifications/tools/list_changed"))
        return "tools";
    if (!strcmp(m, "notifications/resources/list_changed"))
        return "resources";
    if (!strcmp(m, "notifications/prompts/list_changed"))
        return "prompts";
    return NULL;
}

static void lists_release(gw_lists_t *l)
{
    json_decref(l->tools);
    json_decref(l->resources);
    json_decref(l->templates);
    json_decref(l->prompts);
}

static json_t *list_of(gw_lists_t *l, gw_list_t which)
{
    switch (which) {
    case GW_TOOLS:
        return l->tools;
    case GW_RESOURCES:
        return l->resources;
    case GW_TEMPLATES:
        return l->templates;
    case GW_PROMPTS:
        return l->prompts;
    }
    return NULL;
}

json_t *gw_list_for(gw_server_t *sv, gw_session_t *s, gw_list_t which)
{
    gw_sup_t *u = s ? aos_map_get(&s->ups, sv->name) : NULL;
    json_t *own = u ? list_of(&u->lists, which) : NULL;
    return own ? own : list_of(&sv->lists, which);
}

void gw_server_refresh(gw_server_t *sv, const char *which)
{
    /* a client naming unknown tools at will must not make the server list
     * its tools for every call */
    uint64_t now = gw_now_ms();
    if (now - sv->refreshed_ms < GW_REFRESH_MIN_MS)
        return;
    if (sv->up && !sv->closing && aos_upstream_state(sv->up) == AOS_UP_READY) {
        sv->refreshed_ms = now;
        refresh_lists(sv->up, &sv->lists, which);
    }
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
        refresh_lists(up, &sv->lists, NULL);
    }
}

static void on_up_notification(aos_upstream_t *up, json_t *msg, void *data)
{
    gw_server_t *sv = data;
    const char *which = list_changed(aos_rpc_method(msg));
    if (which && !sv->closing)
        refresh_lists(up, &sv->lists, which);
    gw_route_notification(sv, NULL, up, msg);
}

static void on_up_request(aos_upstream_t *up, json_t *msg, void *data)
{
    gw_server_t *sv = data;
    gw_route_request(sv, NULL, up, msg);
}

static void teach(aos_gateway_t *gw, gw_server_t *sv, int add);

static void server_free(gw_server_t *sv)
{
    teach(sv->gw, sv, 0);
    gw_quota_detach(sv);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *b;
    while (aos_map_iter_next(&sv->callers, &it, NULL, NULL, &b))
        free(b);
    aos_map_release(&sv->callers);
    if (sv->health_timer) {
        sv->health_timer->data = NULL;
        uv_close((uv_handle_t *)sv->health_timer, (uv_close_cb)free);
    }
    json_decref(sv->entry);
    lists_release(&sv->lists);
    free(sv->hold);
    free(sv->name);
    free(sv);
}

/* ---- health checks: a ping every health_interval_ms ---------------------- */

static void on_ping(aos_upstream_t *up, json_t *reply, int status, const char *errmsg, void *data)
{
    gw_server_t *sv = data;
    sv->ping_pending = 0;
    if (status == AOS_ECANCELED)
        return;
    if (status || !reply || json_object_get(reply, "error")) {
        sv->ping_ms = -1;
        snprintf(sv->last_ping_error, sizeof(sv->last_ping_error), "ping failed: %s",
                 errmsg && *errmsg ? errmsg : (status ? aos_strerror(status) : "error reply"));
    } else {
        sv->ping_ms = (double)(gw_now_ms() - sv->ping_sent_ms);
        sv->last_ping_error[0] = '\0';
    }
}

static void on_health_timer(uv_timer_t *t)
{
    gw_server_t *sv = t->data;
    if (!sv || sv->closing || !sv->up || sv->ping_pending)
        return;
    if (aos_upstream_state(sv->up) != AOS_UP_READY) {
        sv->ping_ms = -1;
        return;
    }
    sv->ping_sent_ms = gw_now_ms();
    if (aos_upstream_request(sv->up, "ping", NULL, (uint32_t)sv->limits.health_timeout_ms, NULL,
                             on_ping, sv, NULL) == 0)
        sv->ping_pending = 1;
}

static void start_health(gw_server_t *sv)
{
    sv->health_timer = malloc(sizeof(uv_timer_t));
    if (!sv->health_timer)
        return;
    uv_timer_init(sv->gw->cfg.loop, sv->health_timer);
    sv->health_timer->data = sv;
    uint64_t every = (uint64_t)sv->limits.health_interval_ms;
    uv_timer_start(sv->health_timer, on_health_timer, every, every);
    uv_unref((uv_handle_t *)sv->health_timer);
}

/* Each sealed value of a {"K":"v1:..."} map, opened, to fn. */
static void teach_map(aos_gateway_t *gw, const json_t *m, void (*fn)(const char *value, void *data))
{
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)m, k, val)
    {
        if (!json_is_string(val))
            continue; /* a runtime secret's name: settings teaches its value */
        char *plain = aos_secret_open(gw->cfg.secrets, json_string_value(val), NULL);
        if (plain && *plain)
            fn(plain, gw->cfg.unseal_data);
        if (plain)
            aos_secret_wipe(plain);
    }
}

/* The redactor learns (add) or forgets an entry's secret values: its env
 * and header values and its auth token. Once per entry: every upstream
 * opened from it (restarts, per-client sessions) uses the same values. */
static void teach(aos_gateway_t *gw, gw_server_t *sv, int add)
{
    void (*fn)(const char *, void *) = add ? gw->cfg.on_unseal : gw->cfg.on_forget;
    if (!fn || sv->builtin || sv->taught == add)
        return;
    sv->taught = add;
    const json_t *cfgj = json_object_get(sv->entry, "config");
    teach_map(gw, json_object_get(cfgj, "env"), fn);
    teach_map(gw, json_object_get(cfgj, "headers"), fn);
    const char *sealed = json_string_value(json_object_get(sv->entry, "auth_token"));
    char *token = sealed ? aos_secret_open(gw->cfg.secrets, sealed, NULL) : NULL;
    if (token && *token)
        fn(token, gw->cfg.unseal_data);
    if (token)
        aos_secret_wipe(token);
}

/* Opens the sealed values of a {"K":"v1:..."} map into "K=V" (env) or
 * "K: V" (headers) strings, a {"K": {"secret": "S"}} value with the
 * runtime secret S's value of now; every string is wiped and freed by
 * free_strv. server names the entry in a failure's log line. */
static char **open_map(aos_gateway_t *gw, const json_t *m, const char *sep, const char *server)
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
        char *plain;
        const char *ref = json_string_value(json_object_get(val, "secret"));
        if (ref) {
            aos_err_t e = {0, ""};
            plain = gw->cfg.open_secret
                        ? gw->cfg.open_secret(ref, &len, &e, gw->cfg.open_secret_data)
                        : NULL;
            if (!plain)
                aos_log_warn("gateway",
                             "server '%s': '%s' names runtime secret '%.64s', which does not open "
                             "(%s); it is left out",
                             server, k, ref, e.code ? aos_err_msg(&e) : "no secret store");
            else if (sep[0] == ':') {
                /* a header value: no line break or NUL */
                for (size_t j = 0; j < len; j++)
                    if (plain[j] == '\r' || plain[j] == '\n' || plain[j] == '\0') {
                        aos_log_warn("gateway",
                                     "server '%s': the value of runtime secret '%.64s' cannot be "
                                     "header '%s' (a line break or NUL); it is left out",
                                     server, ref, k);
                        aos_secret_wipe(plain);
                        plain = NULL;
                        break;
                    }
            }
        } else {
            plain = aos_secret_open(gw->cfg.secrets, json_string_value(val), &len);
        }
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

/* Creates and starts an upstream for sv's entry, with callbacks cb(data),
 * telling the server the client can do caps (borrowed; NULL = nothing). */
static int open_upstream(aos_gateway_t *gw, gw_server_t *sv, json_t *caps,
                         const aos_upstream_cb_t *cbs, void *data, aos_upstream_t **out,
                         aos_err_t *err)
{
    const json_t *cfgj = json_object_get(sv->entry, "config");
    aos_upstream_cfg_t uc = {0};
    uc.name = sv->name;
    uc.transport = json_string_value(json_object_get(sv->entry, "transport"));
    uc.command = json_string_value(json_object_get(cfgj, "command"));
    uc.cwd = json_string_value(json_object_get(cfgj, "cwd"));
    uc.url = json_string_value(json_object_get(cfgj, "url"));
    uc.ca_file = json_string_value(json_object_get(cfgj, "ca_file"));
    uc.client_capabilities = caps;
    json_t *info = json_pack("{s:s, s:s}", "name", "aosd", "version", gw->cfg.version);
    uc.client_info = info;
    /* the default, used by initialize and list fetches: a call's own
     * timeout_ms applies to calls; starting a server may take longer */
    uint32_t tmo = (uint32_t)json_integer_value(json_object_get(sv->entry, "timeout_ms"));
    uc.request_timeout_ms = tmo > 30000 ? tmo : 30000;

    const json_t *args = json_object_get(cfgj, "args");
    const json_t *pass = json_object_get(cfgj, "env_passthrough");
    const char **argv = calloc(json_array_size(args) + 1, sizeof(char *));
    const char **passv = calloc(json_array_size(pass) + 1, sizeof(char *));
    if (!argv || !passv) {
        free(argv);
        free(passv);
        json_decref(info);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a) argv[i] = json_string_value(a);
    json_array_foreach(pass, i, a) passv[i] = json_string_value(a);
    uc.args = argv;
    uc.env_passthrough = passv;
    char **env = open_map(gw, json_object_get(cfgj, "env"), "=", sv->name);
    char **headers = open_map(gw, json_object_get(cfgj, "headers"), ": ", sv->name);
    uc.env = (const char *const *)env;
    uc.headers = (const char *const *)headers;
    char *token = NULL;
    const char *sealed = json_string_value(json_object_get(sv->entry, "auth_token"));
    if (sealed)
        token = aos_secret_open(gw->cfg.secrets, sealed, NULL);
    uc.bearer_token = token;

    int rc = aos_upstream_new(out, gw->cfg.loop, gw->cfg.httpc, &uc, cbs, data, err);
    if (token)
        aos_secret_wipe(token);
    free_strv(env);
    free_strv(headers);
    free(argv);
    free(passv);
    json_decref(info);
    if (rc)
        return rc;
    return aos_upstream_start(*out);
}

/* The shared upstream declares every client capability aosd can route, so
 * that servers list the tools that need one (server-everything registers
 * its sampling tool only for a client that can sample): the sessions that
 * can use them call them through upstreams of their own, and what the
 * shared upstream asks is refused (gw_route_request). */
static int start_upstream(aos_gateway_t *gw, gw_server_t *sv, aos_err_t *err)
{
    static const aos_upstream_cb_t cb = {on_up_state, on_up_notification, on_up_request};
    return open_upstream(gw, sv, gw->client_caps, &cb, sv, &sv->up, err);
}

/* ---- client sessions' own upstreams ---------------------------------------
 * Whatever an upstream sends on its own (a sampling, elicitation or roots
 * request, a log line, a cancel) carries nothing that says which client's
 * call caused it: over stdio there is no way to tell. So a client session
 * that such traffic may be meant for gets an upstream of its own on every
 * server it uses (a child per session for stdio, an upstream MCP session for
 * HTTP), and everything that upstream sends is that client's alone: a
 * session of a "per-client" server, and an exclusive session (one that
 * declared sampling, elicitation or roots, or asked for log messages). The
 * other sessions share the server's one upstream, which declares no client
 * capability; what it asks is refused, what it logs is aosd's (mcp.c). */

static void on_sup_state(aos_upstream_t *up, aos_upstream_state_t st, const char *why, void *data)
{
    gw_sup_t *u = data;
    /* sess is NULL once the session closed it */
    aos_log_debug("gateway", "server '%s' (session %s) is %s", u->server,
                  u->sess ? u->sess->id : "ended", aos_upstream_state_name(st));
    if (st == AOS_UP_READY && u->sv)
        refresh_lists(up, &u->lists, NULL);
}

static void on_sup_notification(aos_upstream_t *up, json_t *msg, void *data)
{
    gw_sup_t *u = data;
    const char *which = list_changed(aos_rpc_method(msg));
    if (which && u->sv)
        refresh_lists(up, &u->lists, which);
    if (u->sv)
        gw_route_notification(u->sv, u->sess, up, msg);
}

static void on_sup_request(aos_upstream_t *up, json_t *msg, void *data)
{
    gw_sup_t *u = data;
    if (u->sv)
        gw_route_request(u->sv, u->sess, up, msg);
    else
        aos_upstream_respond(up,
                             aos_rpc_error_aos(aos_rpc_id(msg), AOS_ECANCELED, "server removed"));
}

aos_upstream_t *gw_sup_get(gw_session_t *s, const char *server)
{
    gw_sup_t *u = s ? aos_map_get(&s->ups, server) : NULL;
    return u ? u->up : NULL;
}

aos_upstream_t *gw_upstream_for(gw_server_t *sv, gw_session_t *s)
{
    if (!s || !(sv->per_client || s->exclusive))
        return sv->up;
    gw_sup_t *u = aos_map_get(&s->ups, sv->name);
    if (u)
        return u->up;
    if (sv->own_ups >= (unsigned)sv->limits.max_client_upstreams) {
        /* a per-client server must not share; an exclusive session may, with
         * nothing put to it in its name */
        aos_log_warn("gateway",
                     "server '%s': %u client sessions have an upstream of their own already "
                     "(max_client_upstreams); session %s %s",
                     sv->name, sv->own_ups, s->id,
                     sv->per_client ? "is refused" : "shares the server's upstream");
        return sv->per_client ? NULL : sv->up;
    }
    u = calloc(1, sizeof(*u));
    if (!u)
        return NULL;
    u->sess = s;
    u->sv = sv;
    u->server = strdup(sv->name);
    static const aos_upstream_cb_t cb = {on_sup_state, on_sup_notification, on_sup_request};
    aos_err_t err = {0, ""};
    if (!u->server || open_upstream(sv->gw, sv, s->up_caps, &cb, u, &u->up, &err) ||
        aos_map_put(&s->ups, sv->name, u)) {
        aos_log_warn("gateway", "server '%s': no upstream for session %s: %s", sv->name, s->id,
                     aos_err_msg(&err));
        if (u->up)
            aos_upstream_close(u->up, NULL, NULL);
        free(u->server);
        free(u);
        return NULL;
    }
    sv->own_ups++;
    /* a level the client asked for before this upstream existed */
    if (s->log_level_set) {
        const json_t *init = aos_upstream_init_result(sv->up);
        if (json_object_get(json_object_get(init, "capabilities"), "logging"))
            aos_upstream_request(u->up, "logging/setLevel",
                                 json_pack("{s:s}", "level", gw_log_levels[s->log_level]), 0, NULL,
                                 NULL, NULL, NULL);
    }
    return u->up;
}

static void on_sup_closed(aos_upstream_t *up, void *data)
{
    gw_sup_t *u = data;
    aos_gateway_t *gw = u->gw;
    lists_release(&u->lists);
    free(u->server);
    free(u);
    if (--gw->pending_closes == 0 && gw->shutting_down && gw->on_shutdown) {
        void (*done)(void *) = gw->on_shutdown;
        gw->on_shutdown = NULL;
        done(gw->shutdown_data);
    }
}

void gw_sup_close(gw_session_t *s, const char *server)
{
    gw_sup_t *u = aos_map_del(&s->ups, server);
    if (!u)
        return;
    u->gw = s->gw;
    if (u->sv)
        u->sv->own_ups--;
    u->sv = NULL;
    s->gw->pending_closes++;
    /* close reports CLOSED to on_sup_state, which names the session */
    aos_upstream_close(u->up, on_sup_closed, u);
    u->sess = NULL;
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
    if (sv->health_timer)
        uv_timer_stop(sv->health_timer);
    gw_calls_abandon(sv);
    gw_quota_settle(sv);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *s;
    while (aos_map_iter_next(&gw->sessions, &it, NULL, NULL, &s))
        gw_sup_close(s, sv->name);
    if (!sv->up) {
        server_free(sv);
        return;
    }
    sv->next_closing = gw->closing;
    gw->closing = sv;
    gw->pending_closes++;
    aos_upstream_close(sv->up, on_upstream_closed, sv);
}

/* Creates or replaces the live server for entry; agent: a remote agent's
 * (it replaces only another remote agent's), started only when connect. */
static int server_apply(aos_gateway_t *gw, const json_t *entry, int agent, int connect,
                        aos_err_t *err)
{
    const char *name = json_string_value(json_object_get(entry, "name"));
    gw_server_t *old = gw_server_get(gw, name);
    if (aos_registry_name_reserved(name) || (old && old->builtin && !old->agent))
        return aos_err_set(err, AOS_EINVAL, "'%.64s' is a built-in server's name", name);
    if (old && old->agent != agent)
        return aos_err_set(err, AOS_ECONFLICT, "a server named '%.64s' exists already", name);
    aos_quota_t counted = {0};
    if (old) {
        gw_quota_settle(old); /* its exact count, kept below (old may be freed) */
        counted = old->quota;
        server_retire(gw, old);
    }
    gw_server_t *sv = calloc(1, sizeof(*sv));
    if (!sv)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    sv->gw = gw;
    sv->name = strdup(name);
    sv->entry = json_deep_copy(entry);
    sv->enabled = json_is_true(json_object_get(entry, "enabled"));
    sv->agent = agent;
    const char *mode =
        json_string_value(json_object_get(json_object_get(entry, "config"), "session_mode"));
    sv->per_client = mode && !strcmp(mode, "per-client");
    uint64_t now = gw_now_ms();
    aos_registry_limits(entry, &sv->limits);
    aos_limits_t *l = &sv->limits;
    aos_bucket_init(&sv->bucket, l->rate_per_s, l->burst, now);
    aos_quota_init(&sv->quota, (uint64_t)l->quota,
                   l->quota_month ? AOS_QUOTA_MONTH : AOS_QUOTA_DAY);
    if (counted.limit && counted.period == sv->quota.period) {
        /* a changed entry keeps the count of the period (a new limit applies to it) */
        sv->quota.used = counted.used;
        sv->quota.stored = counted.stored;
        sv->quota.period_key = counted.period_key;
    }
    aos_breaker_init(&sv->breaker, (unsigned)l->breaker_failures, l->breaker_error_rate,
                     (unsigned)l->breaker_min_calls, (uint64_t)l->breaker_window_ms,
                     (uint64_t)l->breaker_cooldown_ms);
    aos_map_init(&sv->callers);
    aos_bucket_init(&sv->log_bucket, GW_SHARED_LOG_RATE, GW_SHARED_LOG_BURST, now);
    if (aos_map_put(&gw->servers, name, sv)) {
        server_free(sv);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    teach(gw, sv, 1);
    if (sv->enabled && connect) {
        start_health(sv);
        int rc = start_upstream(gw, sv, err);
        if (rc) {
            aos_log_error("gateway", "server '%s': unable to start: %s", name, aos_err_msg(err));
            snprintf(sv->start_error, sizeof(sv->start_error), "unable to start: %s",
                     aos_err_msg(err));
            return rc;
        }
    }
    return 0;
}

int gw_server_apply(aos_gateway_t *gw, const json_t *entry, aos_err_t *err)
{
    return server_apply(gw, entry, 0, 1, err);
}

void gw_server_remove(aos_gateway_t *gw, const char *name)
{
    gw_server_t *sv = gw_server_get(gw, name);
    if (sv && !sv->builtin && !sv->agent)
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
    gw_fingerprints_sweep(t->data);
}

static void collect(aos_metrics_t *m, void *data)
{
    aos_gateway_t *gw = data;
    aos_metric_set(gw->m_sessions, (double)aos_map_count(&gw->sessions));
    aos_metric_set(gw->m_replay, (double)gw->ev_bytes);
    aos_metric_clear(gw->m_up);
    aos_metric_clear(gw->m_breaker);
    aos_metric_clear(gw->m_health);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    uint64_t now = gw_now_ms();
    while (aos_map_iter_next(&gw->servers, &it, NULL, NULL, &v)) {
        gw_server_t *sv = v;
        aos_metric_set(gw->m_up, gw_server_ready(sv) ? 1 : 0, sv->name);
        aos_metric_set(gw->m_breaker, (double)aos_breaker_state(&sv->breaker, now), sv->name);
        const char *st = health_status(sv);
        aos_metric_set(gw->m_health,
                       !strcmp(st, "healthy")    ? 0
                       : !strcmp(st, "degraded") ? 1
                                                 : 2,
                       sv->name);
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
    aos_map_init(&gw->fingerprints);
    gw->client_caps = json_pack("{s:{}, s:{s:{}, s:{}}, s:{s:b}}", "sampling", "elicitation",
                                "form", "url", "roots", "listChanged", 1);
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    aos_metrics_t *m = cfg->metrics;
    gw->m_calls =
        aos_metrics_counter(m, "aos_mcp_calls_total",
                            "MCP requests forwarded to servers, by outcome", "server,tool,outcome");
    gw->m_latency = aos_metrics_histogram(
        m, "aos_mcp_call_duration_seconds", "Latency of tool calls through the gateway",
        "server,tool", bounds, sizeof(bounds) / sizeof(bounds[0]));
    gw->m_sessions = aos_metrics_gauge(m, "aos_mcp_sessions", "Open MCP client sessions", NULL);
    gw->m_up = aos_metrics_gauge(m, "aos_mcp_server_up", "1 if the server is ready", "server");
    gw->m_health =
        aos_metrics_gauge(m, "aos_mcp_server_health", "0 healthy, 1 degraded, 2 down", "server");
    gw->m_breaker = aos_metrics_gauge(m, "aos_mcp_breaker_state",
                                      "Circuit breaker: 0 closed, 1 open, 2 half-open", "server");
    gw->m_rejected = aos_metrics_counter(m, "aos_mcp_rejected_total",
                                         "Calls refused by a limit, by reason", "server,reason");
    gw->m_queue =
        aos_metrics_gauge(m, "aos_mcp_queue_depth", "Calls waiting for a free slot", "server");
    gw->m_replay = aos_metrics_gauge(m, "aos_mcp_replay_bytes",
                                     "Bytes of SSE events kept for resumption, all sessions", NULL);
    static const double mcp_bounds[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,
                                        2,    5,    10,   30,  60,  120, 300};
    gw->m_client_op = aos_metrics_histogram(
        m, "mcp_client_operation_duration_seconds",
        "MCP requests aosd sent to servers, as OpenTelemetry's mcp.client.operation.duration",
        "mcp_method_name,gen_ai_tool_name,error_type,server", mcp_bounds,
        sizeof(mcp_bounds) / sizeof(mcp_bounds[0]));
    aos_metrics_on_collect(m, collect, gw);

    aos_gateway_add_builtin(gw, &gw_builtin_aos);

    gw_streams_init(gw);
    uv_timer_init(cfg->loop, &gw->sweep);
    gw->sweep.data = gw;
    uv_timer_start(&gw->sweep, on_sweep, 10000, 10000);
    uv_unref((uv_handle_t *)&gw->sweep);
    *out = gw;
    return 0;
}

static int add_inproc(aos_gateway_t *gw, const aos_builtin_t *bi, const char *transport);

int aos_gateway_add_builtin(aos_gateway_t *gw, const aos_builtin_t *bi)
{
    if (!aos_registry_name_ok(bi->name) || !aos_registry_name_reserved(bi->name) ||
        gw_server_get(gw, bi->name))
        return AOS_EINVAL;
    return add_inproc(gw, bi, "builtin");
}

int aos_gateway_add_agent(aos_gateway_t *gw, const aos_builtin_t *bi)
{
    if (!aos_registry_name_ok(bi->name) || aos_registry_name_reserved(bi->name))
        return AOS_EINVAL;
    if (gw_server_get(gw, bi->name))
        return AOS_ECONFLICT;
    return add_inproc(gw, bi, "agent");
}

void aos_gateway_remove_agent(aos_gateway_t *gw, const char *name)
{
    gw_server_t *sv = gw_server_get(gw, name);
    if (sv && sv->agent)
        server_retire(gw, sv);
}

int aos_gateway_add_remote_agent(aos_gateway_t *gw, const char *name, const char *url,
                                 const json_t *headers, const char *auth_token, int connect,
                                 const char *hold, aos_err_t *err)
{
    if (!aos_registry_name_ok(name) || aos_registry_name_reserved(name))
        return aos_err_set(err, AOS_EINVAL, "'%.64s' cannot name a server", name);
    /* the registry's defaults (limits, breaker, timeout) apply to it; its
     * credentials are sealed in the entry like a registered server's */
    json_t *in = json_pack("{s:s, s:s, s:s, s:s, s:O?, s:s?}", "name", name, "transport",
                           "streamable-http", "url", url, "description", "a remote agent",
                           "headers", (json_t *)headers, "auth_token", auth_token);
    aos_err_t e2 = {0, ""};
    json_t *entry = in ? aos_registry_normalize(in, NULL, gw->cfg.secrets, &e2) : NULL;
    json_decref(in);
    if (!entry)
        return e2.code ? aos_err_set(err, e2.code, "%s", aos_err_msg(&e2))
                       : aos_err_set(err, AOS_ENOMEM, NULL);
    int rc = server_apply(gw, entry, 1, connect, err);
    json_decref(entry);
    if (rc == 0)
        aos_gateway_agent_hold(gw, name, hold);
    return rc;
}

void aos_gateway_agent_hold(aos_gateway_t *gw, const char *name, const char *why)
{
    gw_server_t *sv = gw_server_get(gw, name);
    if (!sv || !sv->agent || sv->builtin)
        return;
    free(sv->hold);
    sv->hold = why ? strdup(why) : NULL;
}

static int add_inproc(aos_gateway_t *gw, const aos_builtin_t *bi, const char *transport)
{
    gw_server_t *b = calloc(1, sizeof(*b));
    if (!b)
        return AOS_ENOMEM;
    b->gw = gw;
    b->name = strdup(bi->name);
    b->builtin = bi;
    b->agent = !strcmp(transport, "agent");
    b->enabled = 1;
    b->lists.tools = bi->tools(bi->data);
    char url[96];
    snprintf(url, sizeof(url), "%s:%s", transport, bi->name);
    b->entry =
        json_pack("{s:s, s:s, s:s, s:s, s:{}, s:i, s:b}", "name", bi->name, "transport", transport,
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
        const char *name = json_string_value(json_object_get(e, "name"));
        if (aos_registry_name_reserved(name)) {
            /* stored before the name was reserved: the built-in stays */
            aos_log_warn("gateway", "registry entry '%.64s' ignored: a built-in server's name",
                         name);
            continue;
        }
        gw_server_apply(gw, e, &e2); /* a server that fails to start is logged, not fatal */
        gw_server_t *sv = gw_server_get(gw, json_string_value(json_object_get(e, "name")));
        if (sv)
            gw_quota_load(sv);
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

static void on_timer_closed(uv_handle_t *h)
{
    aos_gateway_t *gw = h->data;
    if (--gw->timers_open > 0)
        return;
    aos_map_release(&gw->servers);
    aos_map_release(&gw->sessions);
    aos_map_release(&gw->progress);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *w;
    while (aos_map_iter_next(&gw->fingerprints, &it, NULL, NULL, &w))
        free(w);
    aos_map_release(&gw->fingerprints);
    free_list(gw->hosts);
    free_list(gw->origins);
    json_decref(gw->client_caps);
    free(gw);
}

void aos_gateway_free(aos_gateway_t *gw)
{
    if (!gw)
        return;
    gw->timers_open = 3;
    uv_close((uv_handle_t *)&gw->sweep, on_timer_closed);
    gw_streams_close(gw, on_timer_closed);
}
