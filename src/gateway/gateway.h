/* gateway.h - the MCP gateway: the live servers of the registry, the MCP
 * endpoints clients connect to, and the REST routes over them.
 *
 *   /mcp                    aggregated MCP endpoint (Streamable HTTP): the
 *                           tools, resources, templates and prompts of every
 *                           enabled server, names prefixed "<server>__"
 *   /mcp/servers/:name      one server exposed unchanged (transparent proxy)
 *   /mcp/call               REST: one tool call for clients without MCP
 *   /mcp/registry[...]      REST: the registry (list, get, put, delete, import)
 *
 * Every upstream is an aos_upstream_t (stdio child or remote server). What
 * an upstream sends on its own (sampling/elicitation/roots requests, log
 * lines, cancels) reaches only the client session the upstream belongs to:
 * a client that may be asked something gets upstreams of its own, the
 * others share one per server, whose requests aosd refuses and whose log
 * lines it keeps. See docs/ARCHITECTURE.md, "Gateway sessions and routing".
 *
 * Tracing: every MCP request and notification on /mcp and /mcp/servers/:name,
 * and every /mcp/call, is a SERVER span ("{mcp.method.name} {target}", MCP's
 * semantic conventions) under the context of the message's
 * params._meta.traceparent, else of the HTTP request's traceparent; a call
 * it makes upstream carries that span's context (aos_upstream_request).
 *
 * Loop thread only. */
#ifndef AOS_GATEWAY_H
#define AOS_GATEWAY_H

#include <jansson.h>
#include <uv.h>

#include "builtin/builtin.h"
#include "err/err.h"
#include "http/http.h"
#include "httpc/httpc.h"
#include "metrics/metrics.h"
#include "secret/secret.h"
#include "store/store.h"
#include "trace/trace.h"

typedef struct aos_gateway_s aos_gateway_t;

typedef struct {
    uv_loop_t *loop;             /* borrowed */
    aos_httpc_t *httpc;          /* borrowed */
    aos_store_t *store;          /* borrowed */
    aos_secret_box_t *secrets;   /* borrowed */
    aos_metrics_t *metrics;      /* borrowed */
    aos_trace_t *trace;          /* borrowed; NULL: no spans */
    const char *allowed_hosts;   /* comma-separated extra Host names, may be NULL */
    const char *allowed_origins; /* comma-separated extra Origins, may be NULL */
    unsigned session_idle_s;     /* drop idle MCP sessions after this */
    /* Resumable SSE streams on the MCP endpoints (docs/ARCHITECTURE.md,
     * "Resumable streams"): the replay buffer keeps each session's recent
     * events, at most replay_bytes per session and replay_total in all, for
     * replay_s seconds (0 in any: nothing is kept, nothing can be resumed).
     * sse_hold_ms > 0: a connection carrying an unanswered call of a
     * resumable session is closed after that long, and the client polls
     * (GET with Last-Event-ID); 0: held until the answer. */
    size_t replay_bytes;
    size_t replay_total;
    unsigned replay_s;
    unsigned sse_hold_ms;
    const char *version;
    /* Called with each secret value of an entry (its env and header
     * values, its auth token) when the entry is applied, before any is used,
     * so that logs, events and errors can redact it; on_forget gets the same
     * values once the entry is replaced or removed and its server has
     * stopped (borrowed for the call; either may be NULL). */
    void (*on_unseal)(const char *value, void *data);
    void (*on_forget)(const char *value, void *data);
    void *unseal_data;
    /* Opens the runtime secret an entry's env or header value names
     * ({"secret": "<name>"}), each time an upstream is opened from it (a
     * rotated secret reaches the next connection or process): guarded
     * memory released with aos_secret_wipe, or NULL with err (the entry is
     * then opened without that value, and the failure logged by name).
     * May be NULL (such values are left out). Loop thread. */
    char *(*open_secret)(const char *name, size_t *len, aos_err_t *err, void *data);
    void *open_secret_data;
    /* Receives the gateway's events (tool.error, anomaly.detected), stolen;
     * NULL drops them. */
    void (*emit)(json_t *event, void *data);
    void *emit_data;
} aos_gateway_cfg_t;

int aos_gateway_new(aos_gateway_t **out, const aos_gateway_cfg_t *cfg, aos_err_t *err);
/* Loads the registry from the store and starts every enabled server. Call
 * once at start-up, before the loop runs (reads the store synchronously). */
int aos_gateway_load(aos_gateway_t *gw, aos_err_t *err);
int aos_gateway_add_routes(aos_gateway_t *gw, aos_http_t *http);

/* ---- in-process tool calls ------------------------------------------------
 * A tool call made inside aosd (a task's step, an agent's tool), through the
 * same isolation as an MCP client's: the server's breaker, rate limits (the
 * principal is the caller of the per-caller limit), quota, concurrency
 * queue, timeout, safe retries, metrics, failure events and fingerprints.
 * Built-in servers receive the caller as it is given. */
typedef struct gw_call aos_gateway_call_t;

/* result: the CallToolResult (a new reference the callback owns; a tool's
 * own failure is a result with isError), or NULL with err: AOS_ENOTFOUND
 * (no such server or tool), AOS_EFORBIDDEN, AOS_ERATE / AOS_EUNAVAIL (with
 * retry_after_s > 0 when the server said when to come back),
 * AOS_ETIMEDOUT, AOS_EUPSTREAM, AOS_EINVAL (the server refused the
 * arguments), AOS_ECANCELED (aos_gateway_call_cancel, shutdown). */
typedef void (*aos_gateway_done_fn)(json_t *result, const aos_err_t *err, uint64_t retry_after_s,
                                    void *data);
/* Progress the server reports on a call (the notifications/progress params). */
typedef void (*aos_gateway_progress_fn)(const json_t *params, void *data);

typedef struct {
    /* borrowed for the call of aos_gateway_call only, but caller.caps: a
     * reference is kept until done runs, so it must not change meanwhile */
    aos_caller_t caller;
    uint32_t timeout_ms;              /* 0: the server's timeout_ms; else the smaller */
    aos_gateway_progress_fn progress; /* may be NULL */
} aos_gateway_call_opts_t;

/* Calls tool "<server>__<tool>" with args (borrowed; NULL = {}). Refused
 * synchronously (a code, and done never runs) when the name does not parse,
 * the server is unknown, disabled or removed (AOS_ENOTFOUND, AOS_EUNAVAIL),
 * or caller.caps holds "tools" patterns and none allows it (AOS_EFORBIDDEN).
 * Otherwise returns 0 and done runs exactly once, later, on the loop thread;
 * *handle (may be NULL) is valid until then. The idempotency key and the
 * trace context travel to the server in params._meta
 * ("aos/idempotency_key", "traceparent"). Loop thread only. */
int aos_gateway_call(aos_gateway_t *gw, const aos_gateway_call_opts_t *opts, const char *tool,
                     const json_t *args, aos_gateway_done_fn done, void *data,
                     aos_gateway_call_t **handle);
/* 1 if tool ("<server>__<tool>") is a tool of a built-in server (code of
 * aosd, not an upstream) that declares itself read-only (annotations.
 * readOnlyHint): calling it changes nothing outside aosd, so calling it
 * again is harmless. An upstream's own hints are not trusted: 0 for every
 * tool of a registered server, and for unknown names. Loop thread only. */
int aos_gateway_tool_local(aos_gateway_t *gw, const char *tool);
/* Ends a call before its answer: the server gets notifications/cancelled,
 * and done runs with AOS_ECANCELED before this returns. Only between
 * aos_gateway_call and done. */
void aos_gateway_call_cancel(aos_gateway_call_t *call);
/* The tools of every enabled server as the aggregated endpoint lists them
 * ("<server>__<tool>", description, inputSchema, annotations), those that
 * match one of patterns (an array of aos_gateway_tool_match patterns; NULL:
 * all): a new array. */
json_t *aos_gateway_tool_list(aos_gateway_t *gw, const json_t *patterns);
/* 1 if "<server>__<tool>" matches pattern: equal, or pattern ends in '*'
 * and is a prefix of it ("files__*", "*"). */
int aos_gateway_tool_match(const char *pattern, const char *tool);
/* Adds a built-in server (builtin/builtin.h); b (and what it points to)
 * must outlive gw. Its name must be one of AOS_REGISTRY_RESERVED_NAMES
 * (registry.h), so that no registry entry can take it; else AOS_EINVAL. */
int aos_gateway_add_builtin(aos_gateway_t *gw, const aos_builtin_t *b);
/* Adds a registered agent (src/agents) as a server served in process like
 * a built-in: its tools as "<name>__<tool>" on /mcp, unprefixed on
 * /mcp/servers/<name> and /agents/<name>/mcp. b must outlive it (until
 * aos_gateway_remove_agent). AOS_EINVAL for a reserved or malformed name,
 * AOS_ECONFLICT when a server of that name exists. */
int aos_gateway_add_agent(aos_gateway_t *gw, const aos_builtin_t *b);
/* Adds (or replaces) a remote agent (src/agents) as a server of the
 * gateway: an upstream of transport streamable-http to url, with the
 * registry's default limits, breaker and timeout, not stored in the
 * registry (the agent is). Its tools are "<name>__<tool>" on /mcp, and
 * /mcp/servers/<name>, /agents/<name>/mcp serve it, through the same
 * isolation as a registered server's. connect: its upstream connects now
 * (a started agent); else it stays closed (stopped). hold: see
 * aos_gateway_agent_hold (may be NULL). headers ({Name: value}) and
 * auth_token (sent as "Authorization: Bearer") are plain values (may be
 * NULL), sealed in the entry and taught to the redactor like a registered
 * server's; the caller keeps and wipes its copies. AOS_EINVAL (a reserved
 * or malformed name, a bad url or header), AOS_ECONFLICT (a server that is not this
 * agent's has the name), AOS_ENOMEM. */
int aos_gateway_add_remote_agent(aos_gateway_t *gw, const char *name, const char *url,
                                 const json_t *headers, const char *auth_token, int connect,
                                 const char *hold, aos_err_t *err);
/* why != NULL: every call to the remote agent name is refused at once with
 * AOS_EUNAVAIL and why ("agent 'x' is unhealthy: ..."); NULL: calls flow
 * again. Other names are ignored. */
void aos_gateway_agent_hold(aos_gateway_t *gw, const char *name, const char *why);
/* Removes an agent added by aos_gateway_add_agent or
 * aos_gateway_add_remote_agent (calls the agent answers later still reach
 * their clients); unknown names are ignored. */
void aos_gateway_remove_agent(aos_gateway_t *gw, const char *name);
/* Fails calls in flight, ends sessions and stops every upstream; done runs
 * when all children and connections are gone. */
void aos_gateway_shutdown(aos_gateway_t *gw, void (*done)(void *data), void *data);
void aos_gateway_free(aos_gateway_t *gw);

#endif
