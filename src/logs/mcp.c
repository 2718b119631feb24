/* mcp.c - the log service as MCP: the built-in server "logs" (tools
 * logs.publish, logs.query, logs.subscribe, reached through the gateway as
 * logs__logs.query on /mcp, unprefixed on /mcp/servers/logs) and the REST
 * forms POST /mcp/logs/{publish,query,subscribe} taking the same arguments
 * as a JSON body. Both run the operations of logs.c. */
#include "logs/internal.h"

#include <stdlib.h>
#include <string.h>

/* ---- tool definitions ------------------------------------------------------- */

static json_t *level_schema(const char *description)
{
    return json_pack("{s:s, s:[s,s,s,s,s,s], s:s}", "type", "string", "enum", "trace", "debug",
                     "info", "warn", "error", "fatal", "description", description);
}

static json_t *time_schema(const char *description)
{
    return json_pack("{s:[s,s], s:s}", "type", "string", "integer", "description", description);
}

static json_t *str_schema(const char *description)
{
    return json_pack("{s:s, s:s}", "type", "string", "description", description);
}

/* The filters logs.query and logs.subscribe share. */
static json_t *filter_properties(void)
{
    return json_pack(
        "{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:{s:s, s:i, s:i, s:s}}", "level",
        level_schema("only entries at this level or above"), "traceId",
        str_schema("only entries of this trace"), "topic", str_schema("only entries of this topic"),
        "source", str_schema("only entries from this source"), "after",
        time_schema("only entries with ts after this (RFC 3339, or ms since 1970)"), "before",
        time_schema("only entries with ts before this (RFC 3339, or ms since 1970)"), "q",
        str_schema("full-text search in message: every word must appear; word* matches a prefix"),
        "limit", "type", "integer", "minimum", 1, "maximum", AOS_STORE_LIST_MAX, "description",
        "most entries to return (default 100)");
}

static json_t *entry_schema(void)
{
    return json_pack(
        "{s:s, s:[s], s:b, s:{s:o, s:o, s:o, s:o, s:{s:s, s:s}, s:o, s:o, s:o}}", "type", "object",
        "required", "message", "additionalProperties", 0, "properties", "ts",
        time_schema("when it happened (RFC 3339 with a zone, or ms since 1970); default now"),
        "level", level_schema("default info"), "message", str_schema("the log line"), "topic",
        str_schema("category, e.g. agent.run"), "attributes", "type", "object", "description",
        "structured fields (string values are redacted like the message)", "trace_id",
        str_schema("trace the entry belongs to"), "span_id", str_schema("span within the trace"),
        "source",
        str_schema("who wrote it, e.g. an agent's name (not aosd or upstream:*, "
                   "which are aosd's own)"));
}

static json_t *tool(const char *name, const char *description, json_t *properties,
                    const char *required, int read_only)
{
    json_t *schema = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", properties,
                               "additionalProperties", 0);
    if (schema && required)
        json_object_set_new(schema, "required", json_pack("[s]", required));
    return json_pack("{s:s, s:s, s:o, s:{s:b, s:b}}", "name", name, "description", description,
                     "inputSchema", schema, "annotations", "readOnlyHint", read_only,
                     "idempotentHint", read_only);
}

static json_t *logs_tools(void *data)
{
    json_t *query = filter_properties(), *sub = filter_properties();
    json_object_set_new(query, "cursor",
                        str_schema("next_cursor of the previous page, for the page after it"));
    json_object_set_new(query, "order",
                        json_pack("{s:s, s:[s,s], s:s}", "type", "string", "enum", "desc", "asc",
                                  "description",
                                  "desc (default): newest first; asc: oldest first"));
    json_object_set_new(query, "group_by",
                        json_pack("{s:s, s:[s,s,s], s:s}", "type", "string", "enum", "topic",
                                  "level", "source", "description",
                                  "instead of entries, count them per topic, level or source"));
    json_object_set_new(sub, "cursor",
                        str_schema("next_cursor of the previous call; omit it on the first call, "
                                   "which returns no entries and the cursor to poll from"));
    return json_pack(
        "[o, o, o]",
        tool("logs.publish",
             "Store a batch of log entries. The batch is validated as a whole (an error names "
             "the entry and field) and secrets are redacted before storage.",
             json_pack("{s:{s:s, s:i, s:i, s:o}}", "entries", "type", "array", "minItems", 1,
                       "maxItems", AOS__LOGS_MAX_BATCH, "items", entry_schema()),
             "entries", 0),
        tool("logs.query",
             "Search stored log entries by level, trace, topic, source, time and full text, "
             "newest first, a page at a time (pass next_cursor back for the next page); or "
             "count them per topic, level or source with group_by.",
             query, NULL, 1),
        tool("logs.subscribe",
             "Poll for new log entries: returns the entries after the cursor (oldest first) "
             "and the cursor for the next call. Same filters as logs.query.",
             sub, NULL, 1));
}

/* ---- calls ---------------------------------------------------------------------- */

struct mcp_wait {
    aos_builtin_done_fn done;
    void *ctx;
};

static json_t *tool_error(const char *message)
{
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", message, "isError",
                     1);
}

/* The operation's result as a CallToolResult: the JSON as text, and as
 * structuredContent for clients that read it. */
static void mcp_done(void *ctx, json_t *result, const aos_err_t *err,
                     const aos__logs_fault_t *fault)
{
    struct mcp_wait *w = ctx;
    json_t *res = NULL;
    if (result) {
        char *text = json_dumps(result, JSON_COMPACT);
        if (text)
            res = json_pack("{s:[{s:s, s:s}], s:O}", "content", "type", "text", "text", text,
                            "structuredContent", result);
        free(text);
        json_decref(result);
    }
    if (res) {
        w->done(w->ctx, res, NULL);
    } else if (!result && err && err->code == AOS_EINVAL) {
        w->done(w->ctx, tool_error(aos_err_msg(err)), NULL);
    } else {
        aos_err_t e2 = {0, ""};
        aos_err_set(&e2, err ? err->code : AOS_ENOMEM, "%s",
                    err ? aos_err_msg(err) : "out of memory");
        w->done(w->ctx, NULL, &e2);
    }
    free(w);
}

static int logs_call(void *data, const aos_caller_t *caller, const char *name, const json_t *args,
                     aos_builtin_done_fn done, void *ctx)
{
    aos_logs_t *l = data;
    aos__logs_op_t op;
    aos_err_t err = {0, ""};
    if (!strcmp(name, "logs.publish"))
        op = AOS__LOGS_OP_PUBLISH;
    else if (!strcmp(name, "logs.query"))
        op = AOS__LOGS_OP_QUERY;
    else if (!strcmp(name, "logs.subscribe"))
        op = AOS__LOGS_OP_SUBSCRIBE;
    else
        return AOS_ENOTFOUND;
    struct mcp_wait *w = calloc(1, sizeof(*w));
    /* a copy: publish redacts its arguments in place */
    json_t *copy = json_deep_copy(args);
    if (!w || !copy) {
        free(w);
        json_decref(copy);
        return AOS_ENOMEM;
    }
    w->done = done;
    w->ctx = ctx;
    int rc = aos__logs_op(l, op, copy, "mcp", mcp_done, w, NULL, &err);
    json_decref(copy);
    if (rc < 0) {
        free(w);
        if (rc != AOS_EINVAL)
            return rc;
        /* bad arguments are the tool's answer, for the model to read */
        done(ctx, tool_error(aos_err_msg(&err)), NULL);
    }
    return 0;
}

void aos__logs_builtin_init(aos_builtin_t *b, aos_logs_t *l)
{
    b->name = "logs";
    b->description = "the log service: publish, query and subscribe to log entries";
    b->tools = logs_tools;
    b->call = logs_call;
    b->data = l;
}

/* ---- REST forms ------------------------------------------------------------------ */

static int rest_publish(aos_http_req_t *req, void *data)
{
    return aos__logs_http_op(req, data, AOS__LOGS_OP_PUBLISH, 200, "mcp");
}

static int rest_query(aos_http_req_t *req, void *data)
{
    return aos__logs_http_op(req, data, AOS__LOGS_OP_QUERY, 200, "mcp");
}

static int rest_subscribe(aos_http_req_t *req, void *data)
{
    return aos__logs_http_op(req, data, AOS__LOGS_OP_SUBSCRIBE, 200, "mcp");
}

const aos_http_route_t aos__logs_mcp_routes[] = {
    {"POST", "/mcp/logs/publish", AOS_PERM_OPERATE, rest_publish, AOS__LOGS_BODY_MAX, NULL},
    {"POST", "/mcp/logs/query", AOS_PERM_READ, rest_query, 0, NULL},
    {"POST", "/mcp/logs/subscribe", AOS_PERM_READ, rest_subscribe, 0, NULL},
};
const size_t aos__logs_mcp_nroutes = sizeof(aos__logs_mcp_routes) / sizeof(aos__logs_mcp_routes[0]);
