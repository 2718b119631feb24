/* internal.h - what the upstream core (upstream.c) and its transports
 * (stdio.c, http.c, legacy_sse.c) share. Nothing here is visible outside
 * src/upstream.
 *
 * The core owns the state machine, the table of pending requests, timeouts
 * and backoff; a transport only moves JSON-RPC messages. A transport reports
 * back with aos__up_dispatch (a message arrived), aos__up_conn_lost (the
 * connection died: the core fails what is pending and backs off) and, for
 * HTTP, aos__up_session_expired and aos__up_request_failed. Every handle or
 * transfer that may call back into the core holds a reference (refs) on the
 * upstream, so that the struct outlives it after aos_upstream_close. */
#ifndef AOS_UPSTREAM_INTERNAL_H
#define AOS_UPSTREAM_INTERNAL_H

#include "upstream/upstream.h"
#include "log/log.h"

#include <stddef.h>

#define UP_MAX_MESSAGE (16u * 1024 * 1024) /* a stdout line, an HTTP body, an SSE event */
#define UP_MAX_QUEUE   1024                /* requests waiting for READY */

typedef struct up_pending_s up_pending_t;
typedef struct up_child_s up_child_t; /* stdio.c */
typedef struct up_post_s up_post_t;   /* http.c */
typedef struct up_lsse_s up_lsse_t;   /* legacy_sse.c: one transfer */

/* A request sent (or queued) by the core, until its reply, timeout or cancel. */
struct up_pending_s {
    uint64_t id;
    json_t *msg; /* the whole request; HTTP keeps it to resend it in a new session */
    aos_upstream_reply_fn cb;
    aos_upstream_raw_fn raw; /* plain results as text (stdio), or NULL */
    void *data;              /* borrowed */
    uint64_t deadline;       /* uv_now() ms; 0 = none */
    uint32_t timeout_ms;
    char traceparent[AOS_TRACEPARENT_LEN + 1]; /* the caller's context, "" for none */
    char *tracestate;                          /* owned; NULL for none */
    int sent;                                  /* on the inflight list, else on the queue */
    int internal;                              /* the core's own initialize */
    up_post_t *post;           /* http: the transfer that carries the answer, or NULL */
    up_pending_t *prev, *next; /* queue or inflight list */
    up_pending_t *hnext;       /* hash chain */
};

typedef struct {
    up_pending_t *head, *tail;
    size_t n;
} up_list_t;

typedef enum { UP_TX_STDIO, UP_TX_HTTP, UP_TX_SSE } up_tx_kind_t;

struct aos_upstream_s {
    uv_loop_t *loop;    /* borrowed */
    aos_httpc_t *httpc; /* borrowed */
    aos_upstream_cb_t cb;
    void *data; /* borrowed */

    /* configuration, owned copies */
    char *name;
    up_tx_kind_t kind;
    char *command, *cwd, **args, **env, **passthrough;
    char *url, **headers, *bearer, *ca_file;
    json_t *client_caps, *client_info;
    uint32_t timeout_ms, backoff_min, backoff_max;

    /* state */
    aos_upstream_state_t state;
    json_t *init_result; /* READY only */
    char proto[16];      /* negotiated version, "" before */
    char last_error[256];
    aos_httpc_cert_t peer_cert; /* https: the server's certificate, last seen */
    int has_peer_cert;
    uint32_t backoff_cur;
    uint64_t rng;
    int closing;
    int refs; /* handles and transfers that still call back */
    void (*closed)(aos_upstream_t *up, void *data);
    void *closed_data;

    /* requests */
    uint64_t next_id;
    up_pending_t **buckets;
    size_t nbuckets, npending;
    up_list_t queue, inflight;
    uint64_t armed_deadline; /* deadline req_timer is set for, 0 = idle */

    uv_timer_t req_timer;     /* earliest request deadline */
    uv_timer_t restart_timer; /* (re)connect after backoff, or start */
    uv_timer_t stable_timer;  /* resets the backoff after 10 s READY */

    /* stdio */
    up_child_t *child; /* the live child, or NULL */

    /* streamable-http */
    char *session_id;      /* Mcp-Session-Id, or NULL */
    int expiries;          /* sessions expired in a row without an answer */
    up_post_t *posts;      /* live transfers */
    up_post_t *delayed;    /* transfers waiting for http_timer */
    up_post_t *get_stream; /* the GET stream for server messages, or NULL */
    int get_unsupported;   /* the server answered 405 */
    char get_last_id[256]; /* Last-Event-ID of the GET stream */
    uint32_t get_delay_ms; /* before reopening the GET stream */
    uv_timer_t http_timer; /* reopens the GET stream, resumes POST streams */

    /* legacy HTTP+SSE */
    up_lsse_t *lsse_xfers; /* live transfers: the GET stream and the POSTs */
    up_lsse_t *lsse_get;   /* the current connection's GET stream, or NULL */
    char *lsse_endpoint;   /* where to POST (from the endpoint event), NULL before */
    json_t *lsse_outbox;   /* messages sent before the endpoint was known */
};

/* ---- core, for the transports (upstream.c) ---- */

/* Routes one incoming message (object or batch array; borrowed). */
void aos__up_dispatch(aos_upstream_t *up, json_t *msg);
/* A line's text, when it is a plain answer to a request that takes its
 * answer raw (aos_upstream_set_raw): delivers it and returns 1. Else 0,
 * and the caller parses and dispatches the line as usual. */
int aos__up_dispatch_raw(aos_upstream_t *up, const char *line, size_t len);
/* Routes the message in an SSE event's data; data that is not JSON is
 * logged and dropped. */
void aos__up_dispatch_event(aos_upstream_t *up, const char *data, size_t len);
/* The connection is gone (child exited, HTTP connection failed): fails every
 * pending request with AOS_EUPSTREAM and why, goes to BACKOFF. Ignored when
 * closing. */
void aos__up_conn_lost(aos_upstream_t *up, const char *why);
/* Fails one request, if it is still pending. */
void aos__up_request_failed(aos_upstream_t *up, uint64_t id, int status, const char *why);
/* HTTP 404 for a message sent with a session id: the request (id, 0 for
 * none) goes back to the queue, and if that session is the current one
 * (current) the upstream initializes a new session. */
void aos__up_session_expired(aos_upstream_t *up, uint64_t id, int current);
up_pending_t *aos__up_pending_find(aos_upstream_t *up, uint64_t id);
/* The server took notifications/initialized: STARTING -> READY (the queued
 * requests go out). Ignored unless STARTING. */
void aos__up_initialized(aos_upstream_t *up);
/* What an upstream said (text, len bytes), fit to be a failure's reason -
 * shown in health.last_error, logs, events and errors: up's own credentials
 * (bearer token, header and env values, the url's userinfo and query
 * values) become "[REDACTED]", control characters spaces, bytes beyond
 * ASCII '?', and it is cut at 100 bytes (or n - 4) with "...". out gets
 * n bytes at most, NUL included. */
void aos__up_reason(const aos_upstream_t *up, const char *text, size_t len, char *out, size_t n);
void aos__up_unref(aos_upstream_t *up);
/* A log entry of component "upstream" with field server = the name. */
/* Keeps the server's certificate when r made a TLS handshake (http.c,
 * legacy_sse.c; from on_headers). */
void aos__up_note_cert(aos_upstream_t *up, aos_httpc_req_t *r);

#define aos__up_log(up, level, ...)                                                                \
    aos_log((level), "upstream", json_pack("{s:s}", "server", (up)->name), __VA_ARGS__)

/* ---- transports: stdio.c, http.c and legacy_sse.c ----
 * connect: begin a connection (spawn, open the event stream); the core then
 *   sends initialize (legacy SSE holds it until the endpoint is known).
 * send: write one message; p is the pending request it carries, or NULL.
 * abandon: p was dropped (timeout, cancel): release what carries it.
 * ready: the session is initialized (HTTP opens its GET stream).
 * disconnect: tear the connection down because of a failure; the transport
 *   calls aos__up_conn_lost when it is down (stdio: when the child exited).
 * close: final teardown for aos_upstream_close; drops its refs when done. */
int aos__up_stdio_connect(aos_upstream_t *up, char *err, size_t errlen);
int aos__up_stdio_send(aos_upstream_t *up, json_t *msg);
/* Writes request p (its id, its trace context in params._meta as
 * with_trace puts it) for method with params (borrowed; NULL for none) to
 * the child straight from the values, no message built; the result of a
 * send. */
int aos__up_stdio_request(aos_upstream_t *up, const up_pending_t *p, const char *method,
                          const json_t *params);
void aos__up_stdio_disconnect(aos_upstream_t *up);
void aos__up_stdio_close(aos_upstream_t *up);
int aos__up_stdio_pid(const aos_upstream_t *up);

void aos__up_http_init(aos_upstream_t *up);
int aos__up_http_send(aos_upstream_t *up, json_t *msg, up_pending_t *p);
/* Sends notifications/initialized (msg, borrowed); calls aos__up_initialized
 * once the server accepted it, or fails the connection. */
int aos__up_http_send_initialized(aos_upstream_t *up, json_t *msg);
void aos__up_http_abandon(aos_upstream_t *up, up_pending_t *p);
void aos__up_http_ready(aos_upstream_t *up);
void aos__up_http_disconnect(aos_upstream_t *up);
void aos__up_http_close(aos_upstream_t *up);

int aos__up_lsse_connect(aos_upstream_t *up, char *err, size_t errlen);
int aos__up_lsse_send(aos_upstream_t *up, json_t *msg, up_pending_t *p);
void aos__up_lsse_disconnect(aos_upstream_t *up);
void aos__up_lsse_close(aos_upstream_t *up);
/* Resolves the data of an endpoint event (ref, len bytes, NUL-terminated)
 * against the sse url base into *out (free it). Returns 0, or AOS_EUPSTREAM
 * (not a URI, another origin: scheme, host and port must be base's) or
 * AOS_ENOMEM, with *why saying so. */
int aos__up_lsse_endpoint(const char *base, const char *ref, size_t len, char **out,
                          const char **why);

/* ---- shared by the HTTP transports (defined in http.c) ---- */

/* Request header lines: the transport adds its own with aos__up_hdrs_add,
 * then aos__up_hdrs_finish appends the static headers and the bearer token
 * and returns the NULL-terminated list (NULL when out of memory: a failed add
 * is remembered). Free the list with aos__up_hdrs_free: it wipes the lines,
 * which may hold the token. */
typedef struct {
    char **v;
    size_t n, cap;
    int failed;
} up_hdrs_t;
void aos__up_hdrs_init(up_hdrs_t *h, const aos_upstream_t *up);
void aos__up_hdrs_add(up_hdrs_t *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
char **aos__up_hdrs_finish(up_hdrs_t *h, const aos_upstream_t *up);
/* The traceparent and tracestate of request id (0: none), if it has them. */
void aos__up_hdrs_trace(up_hdrs_t *h, aos_upstream_t *up, uint64_t id);
void aos__up_hdrs_free(char **v);
/* why = "http <status> <reason phrase>" for an error response, and when its
 * body (may be NULL) is a JSON-RPC error, ": " and its message as
 * aos__up_reason makes it. Nothing else of the body is shown: the url may
 * point anywhere, and the reason is public. */
void aos__up_http_why(const aos_upstream_t *up, char *why, size_t n, long status, const char *body,
                      size_t len);

#endif
