/* builtin.c - the "aos" server: tools implemented inside aosd, reachable
 * like any registered server (as aos__<tool> on /mcp, unprefixed on
 * /mcp/servers/aos and through /mcp/call). */
#include "gateway/internal.h"

#include <stdlib.h>
#include <string.h>

static json_t *aos_tools(void)
{
    return json_pack("[{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}}, s:[s]}, s:{s:b, s:b}}]", "name", "echo",
                     "description", "Echoes back the message it is given", "inputSchema", "type",
                     "object", "properties", "message", "type", "string", "description",
                     "text to echo", "required", "message", "annotations", "readOnlyHint", 1,
                     "idempotentHint", 1);
}

static json_t *aos_call(aos_gateway_t *gw, const char *tool, const json_t *args, aos_err_t *err)
{
    if (!strcmp(tool, "echo")) {
        const char *msg = json_string_value(json_object_get(args, "message"));
        if (!msg) {
            aos_err_set(err, AOS_EINVAL, "echo needs a string argument 'message'");
            return NULL;
        }
        json_t *text = json_string("");
        size_t n = strlen(msg);
        char *buf = malloc(n + 7);
        if (!buf) {
            json_decref(text);
            aos_err_set(err, AOS_ENOMEM, NULL);
            return NULL;
        }
        memcpy(buf, "Echo: ", 6);
        memcpy(buf + 6, msg, n + 1);
        json_string_setn(text, buf, n + 6);
        free(buf);
        return json_pack("{s:[{s:s, s:o}]}", "content", "type", "text", "text", text);
    }
    aos_err_set(err, AOS_EINVAL, "server 'aos' has no tool '%.100s'", tool);
    return NULL;
}

const gw_builtin_t gw_builtin_aos = {GW_BUILTIN, aos_tools, aos_call};
