/* upstream.h - an MCP client for one upstream MCP server that aosd fronts.
 *
 * The module owns the transport and the client side of the MCP lifecycle:
 * it starts the server (a child process speaking newline-delimited JSON-RPC
 * on stdio) or reaches it (Streamable HTTP, or the legacy HTTP+SSE transport
 * of 2024-11-05), performs the `initialize` handshake offering protocol
 * 2025-11-25 (2024-11-05 over legacy SSE), sends `notifications/initialized`
 * and is then READY. It matches responses to requests by the JSON-RPC id it
 * assigns, enforces a timeout per request (sending `notifications/cancelled`
 * upstream when one expires), hands server-initiated notifications and
 * requests to the owner, and restarts / reconnects a failed server with
 * exponential backoff.
 *
 *   STOPPED --start--> STARTING --initialized--> READY
 *                         ^  |                     |
 *                         |  +--failure--> BACKOFF <+ (child exit, connection lost)
 *                         +----backoff elapsed----+
 *   any state --aos_upstream_close--> CLOSED
 *
 * Streamable HTTP: a 404 to a message of the current session means the
 * server forgot the session; the upstream goes back to STARTING, initializes
 * a new one and resends the requests that got the 404 (they were never
 * processed). An event stream the server ends before the answer is resumed
 * with Last-Event-ID. A connection failure is a failure like a child's exit.
 *
 * Legacy HTTP+SSE: a GET of the url opens an event stream whose `endpoint`
 * event names where to POST messages (it must be on the url's origin); every
 * server message comes on that stream. When the stream ends or fails the
 * pending requests fail with AOS_EUPSTREAM and the upstream backs off, then
 * opens a new stream and initializes again.
 *
 * HTTPS peers are always verified (certificate chain and host name): against
 * the system's CA bundle, or the PEM bundle ca_file when it is set. Close every HTTP
 * upstream before freeing the aos_httpc_t it uses.
 *
 * Threading: everything here runs on the loop thread; every function must be
 * called there.
 *
 * Callbacks never run from inside the aos_upstream_* call that caused them,
 * except aos_upstream_close, which fails the pending requests (their reply
 * callbacks run with AOS_ECANCELED) and reports CLOSED to on_state before it
 * returns. From any callback it is safe to call any function of this module
 * on any upstream, aos_upstream_close included; after aos_upstream_close no
 * callback of that upstream runs except the pending replies just mentioned
 * and `closed`. The memory of an upstream is freed right after `closed`
 * returns.
 *
 * The child's environment (stdio): never aosd's whole environment, which
 * holds aosd's own secrets. A child gets PATH, HOME, USER, LOGNAME, SHELL,
 * TERM, LANG, LC_ALL, TZ and TMPDIR from aosd's environment (those that are
 * set), the names listed in env_passthrough, and env on top; a variable
 * named AOS_* is never inherited, whatever the lists say.
 *
 * The process must ignore SIGPIPE (a child that dies makes writes to its
 * stdin fail with EPIPE instead). */
#ifndef AOS_UPSTREAM_H
#define AOS_UPSTREAM_H

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

#include "err/err.h"
#include "httpc/httpc.h"
#include "jsonrpc/jsonrpc.h"
#include "tracectx/tracectx.h"

typedef struct aos_upstream_s aos_upstream_t;

typedef enum {
    AOS_UP_STOPPED,  /* created, not started */
    AOS_UP_STARTING, /* spawning / connecting / initializing */
    AOS_UP_READY,    /* initialized: requests flow */
    AOS_UP_BACKOFF,  /* failed; waiting to retry */
    AOS_UP_CLOSED    /* aos_upstream_close was called */
} aos_upstream_state_t;

const char *aos_upstream_state_name(aos_upstream_state_t st); /* "ready", ... */

/* Everything is copied by aos_upstream_new; nothing needs to outlive it. */
typedef struct {
    const char *name;      /* for logs */
    const char *transport; /* "stdio" | "streamable-http" | "sse" (legacy HTTP+SSE) */
    /* stdio */
    const char *command;     /* looked up in PATH */
    const char *const *args; /* NULL-terminated, without the command; may be NULL */
    const char *const *env;  /* "K=V" for the child; may be NULL */
    /* names of aosd's environment variables the child also gets (never
     * AOS_*); may be NULL. See "The child's environment" below. */
    const char *const *env_passthrough;
    const char *cwd; /* NULL = aosd's */
    /* streamable-http and sse */
    const char *url;            /* the MCP endpoint (sse: the event stream), http(s):// */
    const char *const *headers; /* static "Name: value" lines; may be NULL */
    const char *bearer_token;   /* secret: sent as Authorization, never logged; may be NULL */
    const char *ca_file;        /* PEM bundle to verify https with; NULL = the system's */
    /* MCP */
    json_t *client_capabilities; /* borrowed for the call, copied; NULL = {} */
    json_t *client_info;         /* {"name":"aosd","version":..}, copied; NULL = that */
    uint32_t request_timeout_ms; /* default per request (and for initialize); 0 = 60 s */
    uint32_t restart_min_ms;     /* backoff 250 ms .. 30 s when 0; doubles, +-20 % jitter, */
    uint32_t restart_max_ms;     /* back to min after 10 s READY */
} aos_upstream_cfg_t;

typedef struct {
    /* The state changed; why is a short human reason ("initialized",
     * "upstream exited (code 1)"). May be NULL. */
    void (*on_state)(aos_upstream_t *up, aos_upstream_state_t st, const char *why, void *data);
    /* A notification from the server (msg borrowed: json_incref to keep).
     * May be NULL. */
    void (*on_notification)(aos_upstream_t *up, json_t *msg, void *data);
    /* A request from the server (sampling/createMessage, elicitation/create,
     * roots/list, ...; msg borrowed). Answer it, now or later, with
     * aos_upstream_respond using msg's "id". `ping` is answered by the module.
     * When NULL every request is answered with "method not found". */
    void (*on_request)(aos_upstream_t *up, json_t *msg, void *data);
} aos_upstream_cb_t;

/* Creates a STOPPED upstream. httpc (borrowed) is needed for streamable-http
 * and sse and must outlive the upstream; cb is copied; data is passed to callbacks.
 * Returns 0, or AOS_EINVAL / AOS_ENOMEM with err set. */
int aos_upstream_new(aos_upstream_t **out, uv_loop_t *loop, aos_httpc_t *httpc,
                     const aos_upstream_cfg_t *cfg, const aos_upstream_cb_t *cb, void *data,
                     aos_err_t *err);
/* STOPPED -> STARTING (from the loop, right after this call). AOS_EINVAL if
 * already started or closed. */
int aos_upstream_start(aos_upstream_t *up);

/* reply: the whole JSON-RPC response message (with "result" or "error"),
 * borrowed; status 0. Otherwise reply is NULL, status is AOS_ETIMEDOUT,
 * AOS_EUPSTREAM (the server failed or answered nonsense), AOS_ECANCELED
 * (aos_upstream_close) or AOS_EUNAVAIL (the upstream failed before the
 * request could be sent), and errmsg says why. */
typedef void (*aos_upstream_reply_fn)(aos_upstream_t *up, json_t *reply, int status,
                                      const char *errmsg, void *data);

/* Sends a request; cb runs exactly once, later, unless aos_upstream_cancel
 * drops it; cb may be NULL when nobody wants the answer (it is still
 * matched, and timed out like any other). params are stolen (also on failure; may be NULL). The
 * JSON-RPC id is assigned here and returned in *id (may be NULL). timeout_ms 0 = the configured
 * default; the clock runs from this call. trace (copied; may be NULL) is the context the request
 * runs in - the caller's span: it goes in params._meta as "traceparent" and "tracestate" (replacing
 * what the caller put there; params must then be an object or NULL) and, to an HTTP server, in the
 * traceparent and tracestate headers of the POST too. Before READY the request is queued (at most
 * 1024) and sent once READY, or failed with AOS_EUNAVAIL when the upstream goes to BACKOFF. Returns
 * 0, or AOS_EINVAL, AOS_ENOMEM, AOS_EUNAVAIL (BACKOFF, CLOSED or queue full), AOS_EUPSTREAM (could
 * not be written) - and then cb never runs. */
int aos_upstream_request(aos_upstream_t *up, const char *method, json_t *params,
                         uint32_t timeout_ms, const aos_tracectx_t *trace, aos_upstream_reply_fn cb,
                         void *data, uint64_t *id);
/* A request's answer as the server wrote it, for a caller that passes it
 * on as it is (the gateway): msg[0..len) is one line of a stdio server,
 * a plain successful answer by aos_rpc_scan_result (scan says where its
 * id and result are); valid during the call only. */
typedef void (*aos_upstream_raw_fn)(aos_upstream_t *up, const char *msg, size_t len,
                                    const aos_rpc_scan_t *scan, void *data);
/* From now on the answer of request id, when it is such a line, goes to
 * raw instead of its cb (with the same data; cb is then not called); any
 * other outcome (an error answer, a timeout, a failure, another transport)
 * still goes to cb. AOS_ENOTFOUND when id is not pending. */
int aos_upstream_set_raw(aos_upstream_t *up, uint64_t id, aos_upstream_raw_fn raw);
/* Sends a notification; params stolen (may be NULL). Only when READY, else
 * AOS_EUNAVAIL. */
int aos_upstream_notify(aos_upstream_t *up, const char *method, json_t *params);
/* Answers a server->client request: msg is the full response object
 * {"jsonrpc":"2.0","id":..,"result"|"error":..} (stolen, also on failure).
 * AOS_EUNAVAIL when the connection that carried the request is gone. */
int aos_upstream_respond(aos_upstream_t *up, json_t *msg);
/* Drops a pending request: its cb does not run afterwards. If it was sent,
 * notifications/cancelled {requestId, reason} goes upstream (reason may be
 * NULL). Unknown or finished ids are ignored. */
void aos_upstream_cancel(aos_upstream_t *up, uint64_t id, const char *reason);

aos_upstream_state_t aos_upstream_state(const aos_upstream_t *up);
/* The server's initialize result (protocolVersion, capabilities, serverInfo,
 * instructions); NULL unless READY. Borrowed: valid until the next on_state. */
const json_t *aos_upstream_init_result(const aos_upstream_t *up);
/* The negotiated protocol version; NULL unless READY. */
const char *aos_upstream_protocol_version(const aos_upstream_t *up);
/* Why the last failure happened ("" if none). Never contains secrets. */
const char *aos_upstream_last_error(const aos_upstream_t *up);
/* An https upstream's certificate as of the last TLS handshake (subject,
 * issuer, validity; aos_httpc_peer_cert), or NULL before one or for any
 * other transport. Borrowed: valid until the next callback of up. */
const aos_httpc_cert_t *aos_upstream_peer_cert(const aos_upstream_t *up);
/* The stdio child's pid, or 0. */
int aos_upstream_pid(const aos_upstream_t *up);
const char *aos_upstream_name(const aos_upstream_t *up);

/* Closes up: fails the pending requests with AOS_ECANCELED, reports CLOSED,
 * stops the child (SIGTERM to its process group, SIGKILL after 2 s) or ends
 * the HTTP session (DELETE, at most 2 s), and once everything is released
 * calls closed (may be NULL) from the loop and frees up. A second call does
 * nothing. */
void aos_upstream_close(aos_upstream_t *up, void (*closed)(aos_upstream_t *up, void *data),
                        void *data);

#endif
