/* builtin.c - the "aos" server: tools implemented inside aosd, reachable
 * like any registered server (as aos__<tool> on /mcp, unprefixed on
 * /mcp/servers/aos and through /mcp/call). */
#include "gateway/internal.h"

#include <stdlib.h>
#include <string.h>

static json_t *aos_tools(void *data)
{
    return json_pack("[{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}}, s:[s]}, s:{s:b, s:b}}]", "name", "echo",
                     "description", "Echoes back the message it is given", "inputSchema", "type",
                     "object", "properties", "message", "type", "string", "description",
                     "text to echo", "required", "message", "annotations", "readOnlyHint", 1,
                     "idempotentHint", 1);
}

/* {"content": [{"type": "text", "text": text (stolen)}]}, made without
 * json_pack (this is the answer of every aos__echo step), or NULL. */
static json_t *echo_result(json_t *text)
{
    json_t *type = json_string_nocheck("text");
    json_t *item = json_object(), *content = json_array(), *res = json_object();
    int ok = text && type && item && content && res &&
             !json_object_set_nocheck(item, "type", type) &&
             !json_object_set_nocheck(item, "text", text) && !json_array_append(content, item) &&
             !json_object_set_nocheck(res, "content", content);
    json_decref(type);
    json_decref(text);
    json_decref(item);
    json_decref(content);
    if (!ok) {
        json_decref(res);
        return NULL;
    }
    return res;
}

/* "Echo: " + message, built with the length known (messages may hold NULs). */
static json_t *echo(const json_t *args, aos_err_t *err)
{
    const json_t *m = json_object_get(args, "message");
    if (!json_is_string(m)) {
        aos_err_set(err, AOS_EINVAL, "echo needs a string argument 'message'");
        return NULL;
    }
    size_t n = json_string_length(m);
    char *buf = malloc(n + 6);
    if (!buf) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        return NULL;
    }
    memcpy(buf, "Echo: ", 6);
    memcpy(buf + 6, json_string_value(m), n);
    json_t *text = json_stringn_nocheck(buf, n + 6);
    free(buf);
    json_t *res = echo_result(text);
    if (!res)
        aos_err_set(err, AOS_ENOMEM, NULL);
    return res;
}

static int aos_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                    aos_builtin_done_fn done, void *ctx)
{
    aos_err_t err = {0, ""};
    json_t *res = NULL;
    if (!strcmp(tool, "echo"))
        res = echo(args, &err);
    else
        aos_err_set(&err, AOS_ENOTFOUND, "server 'aos' has no tool '%.100s'", tool);
    done(ctx, res, res ? NULL : &err);
    return 0;
}

const aos_builtin_t gw_builtin_aos = {GW_BUILTIN, "tools built into aosd", aos_tools, aos_call,
                                      NULL};
