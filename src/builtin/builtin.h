/* builtin.h - the interface of a built-in MCP server: tools implemented
 * inside aosd by a service (the gateway's own "aos", the log service's
 * "logs"), reachable like any registered server (<name>__<tool> on /mcp,
 * unprefixed on /mcp/servers/<name>, and through /mcp/call).
 *
 * A service fills an aos_builtin_t and hands it to the gateway
 * (aos_gateway_add_builtin); this header is all the two share, so a
 * service does not depend on the gateway. Header only.
 *
 * Loop thread only: tools() and call() are called on the loop, and done is
 * called on the loop. */
#ifndef AOS_BUILTIN_H
#define AOS_BUILTIN_H

#include <jansson.h>

#include "err/err.h"

/* Who calls a tool, and what it may do: the caller context every tool call
 * carries, from an MCP client, a REST client or a task of aosd's own
 * (aos_gateway_call). Borrowed for the duration of call() only: a tool that
 * answers later copies what it needs. */
typedef struct {
    /* "token:<id>" (an API token), "mcp:<session>", "task:<trace_id>", ... */
    const char *principal;
    /* What the caller may do, or NULL for no restriction beyond its role:
     * {"tools": [patterns], "workspace": "<dir>", ...} - the tools issue
     * defines the fields its tools read. */
    const json_t *caps;
    const char *traceparent;     /* W3C trace context of the caller's span; may be NULL */
    const char *idempotency_key; /* repeats of one logical call share it; may be NULL */
    /* Runtime secrets granted to this call (a task's TaskSpec env), opened:
     * {"NAME": "value"}, or NULL. Secret values: a tool that starts a
     * process puts them in its environment, one that sends a request may
     * use them there, and none logs or returns them. */
    const json_t *env;
    /* Whom a task's call is made for: its submitter as aos_auth_actor
     * names it ("token:<id>"), or NULL. A tool that checks the caller's
     * own rights (memory's per-project checks) uses them for a task. */
    const char *on_behalf_of;
} aos_caller_t;

/* call() starts a tool and answers through done exactly once, now or later;
 * it returns 0, or an AOS_E* code without calling done. done's result is a
 * CallToolResult (stolen), or NULL with err set. */
typedef void (*aos_builtin_done_fn)(void *ctx, json_t *result, const aos_err_t *err);
typedef struct {
    const char *name;
    const char *description;
    json_t *(*tools)(void *data); /* new array of tool definitions */
    int (*call)(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                aos_builtin_done_fn done, void *ctx);
    void *data;
} aos_builtin_t;

#endif
