/* mcp.c - the memory service as MCP: the built-in server "memory" with the
 * tools memory.search, memory.put (create, or update with an id),
 * memory.get, memory.delete, memory.restore and memory.profile (the
 * caller's own profile; with "set", replaced first). Each runs the operation
 * REST runs (service.c), as the caller's principal, so the per-project
 * checks are the same; the gateway has already checked that the caller
 * may call the tool at all. A result is the operation's JSON, as text and
 * as structuredContent; bad arguments are a tool error (isError), other
 * failures the JSON-RPC error of their code. */
#include "memory/internal.h"

#include <stdlib.h>
#include <string.h>

static json_t *str_schema(const char *description)
{
    return json_pack("{s:s, s:s}", "type", "string", "description", description);
}

static json_t *id_schema(void)
{
    return json_pack("{s:s, s:i, s:s}", "type", "integer", "minimum", 1, "description",
                     "the item's id");
}

static json_t *tags_schema(const char *description)
{
    return json_pack("{s:s, s:{s:s}, s:i, s:s}", "type", "array", "items", "type", "string",
                     "maxItems", MEM_TAGS_MAX, "description", description);
}

static json_t *tool(const char *name, const char *description, json_t *properties, json_t *required,
                    int read_only)
{
    json_t *schema = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", properties,
                               "additionalProperties", 0);
    if (schema && required)
        json_object_set_new(schema, "required", required);
    else
        json_decref(required);
    return json_pack("{s:s, s:s, s:o, s:{s:b, s:b}}", "name", name, "description", description,
                     "inputSchema", schema, "annotations", "readOnlyHint", read_only,
                     "idempotentHint", read_only);
}

static json_t *mem_tools(void *data)
{
    (void)data;
    return json_pack(
        "[o, o, o, o, o, o]",
        tool("memory.search",
             "Search memory items by keyword (Chinese and English), by meaning (vector), or both "
             "fused (hybrid, the default); best first, each with its score parts. Only items of "
             "projects the caller may read.",
             json_pack("{s:o, s:{s:s, s:[s,s,s]}, s:{s:s, s:i, s:i}, s:o, s:o}", "q",
                       str_schema("what to look for"), "mode", "type", "string", "enum", "keyword",
                       "vector", "hybrid", "k", "type", "integer", "minimum", 1, "maximum",
                       MEM_K_MAX, "tags", tags_schema("only items having every one of these tags"),
                       "project_id", str_schema("only items of this project")),
             json_pack("[s]", "q"), 1),
        tool("memory.put",
             "Remember something: create a memory item (text, project_id, optional subject, "
             "tags, meta), or with id change the fields given of an existing one.",
             json_pack("{s:o, s:o, s:o, s:o, s:o, s:{s:[s,s]}}", "id", id_schema(), "text",
                       str_schema("what to remember"), "project_id",
                       str_schema("the project it belongs to (required to create)"), "subject",
                       str_schema("who or what it is about"), "tags", tags_schema("labels"), "meta",
                       "type", "object", "null"),
             NULL, 0),
        tool("memory.get", "Read one memory item by id.", json_pack("{s:o}", "id", id_schema()),
             json_pack("[s]", "id"), 1),
        tool("memory.delete", "Delete a memory item (soft: memory.restore brings it back).",
             json_pack("{s:o}", "id", id_schema()), json_pack("[s]", "id"), 0),
        tool("memory.restore", "Bring back a deleted memory item.",
             json_pack("{s:o}", "id", id_schema()), json_pack("[s]", "id"), 0),
        tool("memory.profile",
             "The caller's profile and preferences (language, timezone, task_defaults, "
             "notifications, preferences); with 'set', replace it first.",
             json_pack("{s:{s:s, s:s}}", "set", "type", "object", "description",
                       "the new profile (replaces the stored one)"),
             NULL, 0));
}

struct mcp_wait {
    aos_builtin_done_fn done;
    void *ctx;
};

static void mcp_finish(mem_op_t *op, int status, json_t *result, const aos_err_t *err)
{
    struct mcp_wait *w = op->ctx;
    json_t *res = NULL;
    if (!status && result) {
        char *text = json_dumps(result, JSON_COMPACT);
        if (text)
            res = json_pack("{s:[{s:s, s:s}], s:O}", "content", "type", "text", "text", text,
                            "structuredContent", result);
        free(text);
    }
    if (res) {
        w->done(w->ctx, res, NULL);
    } else if (status == AOS_EINVAL) {
        w->done(w->ctx,
                json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text",
                          aos_err_msg(err), "isError", 1),
                NULL);
    } else {
        aos_err_t e2 = {0, ""};
        aos_err_set(&e2, status ? status : AOS_ENOMEM, "%s",
                    status && err ? aos_err_msg(err) : "out of memory");
        w->done(w->ctx, NULL, &e2);
    }
    json_decref(result);
    free(w);
    mem_op_free(op);
}

/* args must be exactly {"id": <positive integer>}. */
static int id_only(const json_t *args, int64_t *id, aos_err_t *err)
{
    const json_t *v = json_object_get(args, "id");
    if (!json_is_object(args) || json_object_size(args) != 1 || !json_is_integer(v) ||
        json_integer_value(v) < 1)
        return aos_err_set(err, AOS_EINVAL, "arguments must be {\"id\": <positive integer>}");
    *id = json_integer_value(v);
    return 0;
}

static int mem_call(void *data, const aos_caller_t *caller, const char *name, const json_t *args,
                    aos_builtin_done_fn done, void *ctx)
{
    aos_memory_t *m = data;
    mem_op_kind_t kind;
    if (!strcmp(name, "memory.search"))
        kind = MEM_OP_SEARCH;
    else if (!strcmp(name, "memory.put"))
        kind = json_object_get(args, "id") ? MEM_OP_UPDATE : MEM_OP_CREATE;
    else if (!strcmp(name, "memory.get"))
        kind = MEM_OP_GET;
    else if (!strcmp(name, "memory.delete"))
        kind = MEM_OP_DELETE;
    else if (!strcmp(name, "memory.restore"))
        kind = MEM_OP_RESTORE;
    else if (!strcmp(name, "memory.profile"))
        kind = json_object_get(args, "set") ? MEM_OP_PROFILE_PUT : MEM_OP_PROFILE_GET;
    else
        return AOS_ENOTFOUND;
    const aos_principal_t *who = NULL;
    /* a task calls for its submitter: the submitter's project rights */
    const char *acting = caller && caller->on_behalf_of && caller->principal &&
                                 !strncmp(caller->principal, "task:", 5)
                             ? caller->on_behalf_of
                         : caller ? caller->principal
                                  : NULL;
    if (acting && m->cfg.principal_of)
        who = m->cfg.principal_of(m->cfg.principal_data, acting);
    struct mcp_wait *w = calloc(1, sizeof(*w));
    mem_op_t *op = w ? mem_op_new(m, kind, who, mcp_finish, w) : NULL;
    if (!op) {
        free(w);
        return AOS_ENOMEM;
    }
    w->done = done;
    w->ctx = ctx;
    aos_err_t err = {0, ""};
    int rc = 0;
    if (kind == MEM_OP_SEARCH) {
        rc = mem_check_search_json(op, args, &err);
    } else if (kind == MEM_OP_CREATE || kind == MEM_OP_UPDATE) {
        json_t *body = json_deep_copy(args);
        const json_t *id = json_object_get(body, "id");
        if (!body) {
            rc = aos_err_set(&err, AOS_ENOMEM, NULL);
        } else if (id && (!json_is_integer(id) || json_integer_value(id) < 1)) {
            rc = aos_err_set(&err, AOS_EINVAL, "'id' must be a positive integer");
        } else {
            if (id) {
                op->id = json_integer_value(id);
                json_object_del(body, "id");
            }
            rc = mem_check_fields(body, kind == MEM_OP_UPDATE, &op->fields, &err);
        }
        json_decref(body);
    } else if (kind == MEM_OP_PROFILE_GET || kind == MEM_OP_PROFILE_PUT) {
        if (!json_is_object(args) || json_object_size(args) > (kind == MEM_OP_PROFILE_PUT))
            rc = aos_err_set(&err, AOS_EINVAL, "arguments must be {} or {\"set\": {...}}");
        else if (kind == MEM_OP_PROFILE_PUT)
            rc = mem_check_profile(json_object_get(args, "set"), &op->fields, &err);
    } else {
        rc = id_only(args, &op->id, &err);
    }
    if (rc) {
        mcp_finish(op, rc, NULL, &err); /* answers through done, frees op */
        return 0;
    }
    mem_op_start(op);
    return 0;
}

const aos_builtin_t mem_builtin_template = {
    "memory", "memory items: keyword, vector and hybrid search", mem_tools, mem_call, NULL};
