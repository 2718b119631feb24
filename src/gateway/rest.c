/* rest.c - the gateway's REST routes: the registry (list, get, create or
 * update, delete, import) and /mcp/call, plus the route table of the MCP
 * endpoints. Writes go to the store on its worker thread, with an audit row
 * in the same transaction, and are applied to the live gateway once they
 * are durable. */
#include "gateway/internal.h"
#include "auth/auth.h"
#include "log/log.h"
#include "registry/registry.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- registry reads ---------------------------------------------------- */

static json_t *server_view(gw_server_t *sv)
{
    json_t *v = aos_registry_public(sv->entry);
    json_object_set_new(v, "health", gw_server_health(sv));
    if (sv->builtin && !sv->agent)
        json_object_set_new(v, "builtin", json_true());
    if (sv->agent)
        json_object_set_new(v, "agent", json_true());
    return v;
}

static int registry_list(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    json_t *arr = json_array();
    size_t n;
    gw_server_t **svs = gw_servers_sorted(gw, 0, &n);
    for (size_t i = 0; svs && i < n; i++)
        json_array_append_new(arr, server_view(svs[i]));
    free(svs);
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "servers", arr));
}

static int registry_get(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    const char *name = aos_http_param(req, "name");
    gw_server_t *sv = gw_server_get(gw, name);
    if (!sv || sv->closing)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no MCP server named '%.64s'", name);
    return aos_http_respond_json(req, 200, server_view(sv));
}

/* ---- registry writes ----------------------------------------------------- */

enum write_op { OP_PUT, OP_DELETE };

struct write_job {
    aos_gateway_t *gw;
    aos_http_req_t *req; /* NULL once the client left */
    enum write_op op;
    json_t *entries; /* stored forms to put, or names to delete */
    json_t *diffs;   /* one audit diff per entry */
    json_t *stored;  /* what the store holds afterwards */
    char actor[64];
    int created;
};

static void job_req_closed(aos_http_req_t *req, int aborted, void *data)
{
    struct write_job *j = data;
    j->req = NULL;
}

static int job_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct write_job *j = arg;
    size_t i;
    json_t *e;
    json_array_foreach(j->entries, i, e)
    {
        int rc;
        const char *name;
        char resource[128];
        if (j->op == OP_PUT) {
            name = json_string_value(json_object_get(e, "name"));
            rc = aos_store_registry_put(st, e, err);
        } else {
            name = json_string_value(e);
            rc = aos_store_registry_delete(st, name, err);
        }
        if (rc)
            return rc;
        snprintf(resource, sizeof(resource), "mcp_registry/%s", name);
        rc = aos_store_audit_append(st, j->actor,
                                    j->op == OP_PUT ? "mcp.registry.put" : "mcp.registry.delete",
                                    resource, json_array_get(j->diffs, i), err);
        if (rc)
            return rc;
        if (j->op == OP_PUT) {
            json_t *row = NULL;
            rc = aos_store_registry_get(st, name, &row, err);
            if (rc)
                return rc;
            json_array_append_new(j->stored, row);
        }
    }
    return 0;
}

static int job_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    return aos_store_tx(st, job_tx, arg, err);
}

static void job_free(struct write_job *j)
{
    if (j->req)
        aos_http_on_close(j->req, NULL, NULL);
    json_decref(j->entries);
    json_decref(j->diffs);
    json_decref(j->stored);
    free(j);
}

static void job_done(int status, const aos_err_t *err, void *arg)
{
    struct write_job *j = arg;
    aos_gateway_t *gw = j->gw;
    if (status) {
        aos_log_error("gateway", "registry write failed: %s", aos_err_msg(err));
        if (j->req)
            aos_http_respond_err(j->req, err);
        job_free(j);
        return;
    }
    json_t *views = json_array();
    size_t i;
    json_t *e;
    if (j->op == OP_PUT) {
        json_array_foreach(j->stored, i, e)
        {
            aos_err_t e2 = {0, ""};
            gw_server_apply(gw, e, &e2);
            gw_server_t *sv = gw_server_get(gw, json_string_value(json_object_get(e, "name")));
            if (sv)
                json_array_append_new(views, server_view(sv));
        }
    } else {
        json_array_foreach(j->entries, i, e) gw_server_remove(gw, json_string_value(e));
    }
    if (j->req) {
        if (j->op == OP_DELETE)
            aos_http_respond_json(j->req, 200,
                                  json_pack("{s:O}", "deleted", json_array_get(j->entries, 0)));
        else if (json_array_size(j->entries) == 1 && j->created >= 0)
            aos_http_respond_json(j->req, j->created ? 201 : 200,
                                  json_incref(json_array_get(views, 0)));
        else
            aos_http_respond_json(j->req, 200, json_pack("{s:O}", "imported", views));
    }
    json_decref(views);
    job_free(j);
}

static struct write_job *job_new(aos_gateway_t *gw, aos_http_req_t *req, enum write_op op)
{
    struct write_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->gw = gw;
    j->req = req;
    j->op = op;
    j->entries = json_array();
    j->diffs = json_array();
    j->stored = json_array();
    const aos_principal_t *p = aos_auth_principal(req);
    snprintf(j->actor, sizeof(j->actor), "%s", p ? p->name : "unknown");
    return j;
}

static int job_submit(aos_gateway_t *gw, struct write_job *j)
{
    aos_http_on_close(j->req, job_req_closed, j);
    int rc = aos_store_submit(gw->cfg.store, job_run, job_done, j);
    if (rc) {
        job_free(j);
        return rc;
    }
    return 0;
}

/* Validates one client entry into j; returns 0 or responds with the error. */
static int add_put(aos_gateway_t *gw, struct write_job *j, const json_t *in, aos_err_t *err)
{
    const char *name = json_string_value(json_object_get(in, "name"));
    gw_server_t *prev = gw_server_get(gw, name);
    json_t *st = aos_registry_normalize(in, prev ? prev->entry : NULL, gw->cfg.secrets, err);
    if (!st)
        return err->code;
    if (prev && prev->agent) { /* a name a registered agent serves (built-ins: refused above) */
        json_decref(st);
        return aos_err_set(err, AOS_ECONFLICT, "'%.64s' is an agent's: it is served by aosd", name);
    }
    json_t *before = prev ? aos_registry_public(prev->entry) : json_null();
    json_array_append_new(
        j->diffs, json_pack("{s:o, s:o}", "before", before, "after", aos_registry_public(st)));
    json_array_append_new(j->entries, st);
    j->created = prev ? 0 : 1;
    return 0;
}

static int registry_put(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    aos_err_t err = {0, ""};
    json_t *in = aos_http_body_json(req, &err);
    if (!in)
        return aos_http_respond_err(req, &err);
    struct write_job *j = job_new(gw, req, OP_PUT);
    int rc = j ? add_put(gw, j, in, &err) : aos_err_set(&err, AOS_ENOMEM, NULL);
    json_decref(in);
    if (rc) {
        if (j)
            job_free(j);
        return aos_http_respond_err(req, &err);
    }
    return job_submit(gw, j);
}

/* A stored entry back in the form a client sends, without its secrets
 * (env and header values, the token: aos_registry_normalize keeps what a
 * client leaves out). The URL is the stored one, credentials and all: it
 * never leaves aosd from here. */
static json_t *client_form(const json_t *stored)
{
    const json_t *cfg = json_object_get(stored, "config");
    json_t *in = json_object();
    static const char *const top[] = {"name",         "transport",  "description",
                                      "capabilities", "timeout_ms", "enabled"};
    static const char *const inner[] = {"command", "args",    "env_passthrough", "cwd",
                                        "url",     "ca_file", "limits",          "session_mode"};
    for (size_t i = 0; in && i < sizeof(top) / sizeof(top[0]); i++)
        if (json_object_get(stored, top[i]))
            json_object_set(in, top[i], json_object_get(stored, top[i]));
    for (size_t i = 0; in && i < sizeof(inner) / sizeof(inner[0]); i++)
        if (json_object_get(cfg, inner[i]))
            json_object_set(in, inner[i], json_object_get(cfg, inner[i]));
    return in;
}

/* PATCH /mcp/registry/:name: the fields given replace the stored ones
 * (enabled, limits, args ...); the rest - secrets included - stay. */
static int registry_patch(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    aos_err_t err = {0, ""};
    const char *name = aos_http_param(req, "name");
    gw_server_t *sv = gw_server_get(gw, name);
    if (aos_registry_name_reserved(name) || (sv && sv->builtin && !sv->agent))
        return aos_http_respond_error(req, AOS_EINVAL, "'%.64s' is a built-in server's name", name);
    if (sv && sv->agent)
        return aos_http_respond_error(req, AOS_ECONFLICT,
                                      "'%.64s' is an agent's: change it under /agents", name);
    if (!sv || sv->closing)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no MCP server named '%.64s'", name);
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    const json_t *bn = json_object_get(body, "name");
    if (!json_is_object(body) || (bn && !json_equal(bn, json_object_get(sv->entry, "name")))) {
        json_decref(body);
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "a PATCH is an object of the fields to change; the name is "
                                      "the path's (delete and add to rename)");
    }
    json_t *in = client_form(sv->entry);
    if (in && json_object_update(in, body) == 0) {
        /* a command given alone makes it stdio, a url alone HTTP: the
         * other transport's fields and the old transport go */
        static const char *const stdio_only[] = {"command", "args", "cwd", "env_passthrough"};
        static const char *const http_only[] = {"url", "ca_file"};
        int cmd = json_object_get(body, "command") != NULL,
            url = json_object_get(body, "url") != NULL;
        for (size_t i = 0; url && !cmd && i < sizeof(stdio_only) / sizeof(stdio_only[0]); i++)
            json_object_del(in, stdio_only[i]);
        for (size_t i = 0; cmd && !url && i < sizeof(http_only) / sizeof(http_only[0]); i++)
            json_object_del(in, http_only[i]);
        if ((cmd || url) && !json_object_get(body, "transport"))
            json_object_del(in, "transport");
    }
    json_decref(body);
    struct write_job *j = in ? job_new(gw, req, OP_PUT) : NULL;
    int rc = j ? add_put(gw, j, in, &err) : aos_err_set(&err, AOS_ENOMEM, NULL);
    json_decref(in);
    if (rc) {
        if (j)
            job_free(j);
        return aos_http_respond_err(req, &err);
    }
    return job_submit(gw, j);
}

static int registry_import(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    aos_err_t err = {0, ""};
    json_t *doc = aos_http_body_json(req, &err);
    if (!doc)
        return aos_http_respond_err(req, &err);
    json_t *list = aos_registry_import(doc, &err);
    json_decref(doc);
    if (!list)
        return aos_http_respond_err(req, &err);
    struct write_job *j = job_new(gw, req, OP_PUT);
    if (!j) {
        json_decref(list);
        return AOS_ENOMEM;
    }
    size_t i;
    json_t *e;
    json_array_foreach(list, i, e)
    {
        if (add_put(gw, j, e, &err)) {
            char m[400];
            snprintf(m, sizeof(m), "mcpServers.%s: %s",
                     json_string_value(json_object_get(e, "name")), aos_err_msg(&err));
            json_decref(list);
            job_free(j);
            return aos_http_respond_error(req, err.code, "%s", m);
        }
    }
    j->created = -1; /* answer with the list */
    json_decref(list);
    return job_submit(gw, j);
}

static int registry_delete(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    const char *name = aos_http_param(req, "name");
    gw_server_t *sv = gw_server_get(gw, name);
    if (aos_registry_name_reserved(name) || (sv && sv->builtin && !sv->agent))
        return aos_http_respond_error(req, AOS_EINVAL, "'%.64s' is a built-in server's name", name);
    if (sv && sv->agent)
        return aos_http_respond_error(req, AOS_ECONFLICT,
                                      "'%.64s' is an agent's: DELETE /agents/%.64s removes it",
                                      name, name);
    if (!sv || sv->closing)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no MCP server named '%.64s'", name);
    struct write_job *j = job_new(gw, req, OP_DELETE);
    if (!j)
        return AOS_ENOMEM;
    json_array_append_new(j->entries, json_string(name));
    json_array_append_new(j->diffs, json_pack("{s:o}", "before", aos_registry_public(sv->entry)));
    return job_submit(gw, j);
}

/* ---- /mcp/call ------------------------------------------------------------ */

/* Answers a call that failed here, and says so on its span. */
static int call_fail(aos_http_req_t *req, aos_span_t *span, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int call_fail(aos_http_req_t *req, aos_span_t *span, int code, const char *fmt, ...)
{
    char m[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    gw_span_fail(span, code, m);
    return aos_http_respond_error(req, code, "%s", m);
}

static int mcp_call(aos_http_req_t *req, void *data)
{
    aos_gateway_t *gw = data;
    aos_err_t err = {0, ""};
    json_t *in = aos_http_body_json(req, &err);
    if (!in)
        return aos_http_respond_err(req, &err);
    const char *server = NULL, *tool = NULL;
    json_t *args = NULL, *caps = NULL;
    json_error_t je;
    int rc = 0;
    if (json_unpack_ex(in, &je, JSON_STRICT, "{s:s, s:s, s?o, s?o}", "server", &server, "tool",
                       &tool, "args", &args, "caps", &caps) != 0) {
        rc = aos_http_respond_error(
            req, AOS_EINVAL, "body must be {\"server\",\"tool\",\"args\",\"caps\"}: %s", je.text);
        goto out;
    }
    if (args && !json_is_object(args)) {
        rc = aos_http_respond_error(req, AOS_EINVAL, "'args' must be an object");
        goto out;
    }
    if (caps && !json_is_object(caps) && !json_is_array(caps)) {
        rc = aos_http_respond_error(req, AOS_EINVAL, "'caps' must be an object or an array");
        goto out;
    }
    char res[2 * AOS_REGISTRY_NAME_MAX + 300];
    snprintf(res, sizeof(res), "tool:%.64s" GW_SEP "%.256s", server, tool);
    if (aos_auth_req_check(req, AOS_PERM_OPERATE, res)) {
        rc = aos_http_respond_error(req, AOS_EFORBIDDEN, "this token may not call '%.300s'",
                                    res + 5);
        goto out;
    }
    /* caps grant as well as restrict (a workspace, private addresses): only
     * an admin, who may register any server anyway, sets them here */
    if (caps && aos_auth_req_check(req, AOS_PERM_ADMIN, "system")) {
        rc = aos_http_respond_error(req, AOS_EFORBIDDEN, "only an admin may set 'caps'");
        goto out;
    }
    /* the call's SERVER span: MCP's conventions, as for tools/call on /mcp */
    char name[AOS_TRACE_NAME_MAX];
    snprintf(name, sizeof(name), "tools/call %.200s", tool);
    aos_span_t *span = aos_trace_request_span(gw->cfg.trace, req, NULL, name);
    aos_span_set_str(span, AOS_ATTR_MCP_METHOD_NAME, "tools/call");
    aos_span_set_str(span, AOS_ATTR_GEN_AI_OPERATION_NAME, AOS_ATTR_GEN_AI_OP_EXECUTE_TOOL);
    aos_span_set_str(span, AOS_ATTR_GEN_AI_TOOL_NAME, tool);
    aos_span_set_str(span, AOS_ATTR_AOS_MCP_SERVER, server);
    char who[128];
    aos_span_set_str(span, AOS_ATTR_AOS_PRINCIPAL,
                     aos_auth_display(aos_auth_principal(req), who, sizeof(who)));
    gw_server_t *sv = gw_server_get(gw, server);
    if (!sv || sv->closing) {
        rc = call_fail(req, span, AOS_ENOTFOUND, "no MCP server named '%.64s'", server);
        goto out;
    }
    if (!sv->enabled) {
        rc = call_fail(req, span, AOS_EUNAVAIL, "server '%s' is disabled", sv->name);
        goto out;
    }
    if (sv->builtin && gw_server_lacks_tool(sv, tool)) {
        rc =
            call_fail(req, span, AOS_ENOTFOUND, "server '%s' has no tool '%.100s'", sv->name, tool);
        goto out;
    }
    if (gw_server_lacks_tool(sv, tool) && !sv->lists.pending)
        gw_server_refresh(sv, "tools");
    gw_call_t *c = gw_call_new(gw, GW_CALL_REST, NULL, NULL, req);
    if (!c) {
        rc = AOS_ENOMEM;
        goto out;
    }
    c->tool = strdup(tool);
    if (json_is_object(caps))
        c->caps = json_incref(caps);
    /* a client's Idempotency-Key reaches a built-in tool (its writes apply once) */
    const char *ikey = aos_http_header(req, "Idempotency-Key");
    if (ikey && *ikey && strlen(ikey) <= 256)
        c->idempotency_key = strdup(ikey);
    if (sv->builtin) {
        rc = gw_call_builtin(c, sv, tool, args);
        if (rc) {
            gw_call_free(c);
            rc = call_fail(req, span, rc, "server '%s' failed", sv->name);
        }
        goto out;
    }
    json_t *params =
        json_pack("{s:s, s:O}", "name", tool, "arguments", args ? args : json_object());
    if (!args)
        json_decref(json_object_get(params, "arguments"));
    uint64_t after;
    if (gw_call_forward(c, sv, "tools/call", params, &err, &after))
        gw_call_fail(c, &err, after);
    rc = 0;
out:
    json_decref(in);
    return rc;
}

const aos_http_route_t gw_routes[] = {
    {"GET", "/mcp/registry", AOS_PERM_READ, registry_list, 0, NULL},
    {"POST", "/mcp/registry", AOS_PERM_ADMIN, registry_put, 1 << 20, NULL},
    {"POST", "/mcp/registry/import", AOS_PERM_ADMIN, registry_import, 1 << 20, NULL},
    {"GET", "/mcp/registry/:name", AOS_PERM_READ, registry_get, 0, NULL},
    {"PATCH", "/mcp/registry/:name", AOS_PERM_ADMIN, registry_patch, 1 << 20, NULL},
    {"DELETE", "/mcp/registry/:name", AOS_PERM_ADMIN, registry_delete, 0, NULL},
    {"POST", "/mcp/call", AOS_PERM_ANY, mcp_call, 0, NULL},
    {"*", "/mcp", AOS_PERM_MCP, gw_mcp_handle, 0, NULL},
    {"*", "/mcp/servers/:name", AOS_PERM_MCP, gw_mcp_handle, 0, NULL},
    {"*", "/agents/:name/mcp", AOS_PERM_MCP, gw_mcp_handle, 0, NULL},
};
const size_t gw_nroutes = sizeof(gw_routes) / sizeof(gw_routes[0]);

int aos_gateway_add_routes(aos_gateway_t *gw, aos_http_t *http)
{
    return aos_http_add_routes(http, gw_routes, gw_nroutes, gw);
}
