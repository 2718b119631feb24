/* http.h - the HTTP server of aosd: libmicrohttpd driven by the libuv loop.
 *
 * MHD runs in external-polling mode; its epoll fd is watched with a uv_poll
 * and its timeouts with a uv_timer, so every request is handled on the loop
 * thread and no thread ever blocks on an upstream. A handler either answers
 * at once or keeps the request and answers later (the connection is then
 * suspended and resumed when the answer is queued). Streaming responses
 * (SSE) are written piecewise with aos_http_stream_*.
 *
 * Routes are registered in tables (method, pattern, permission, handler) so
 * that the whole API and its permissions can be read in one place per module.
 * Patterns are literal segments, ":name" (one segment, captured) and a final
 * "*" (the rest of the path, captured as "*").
 *
 * Threading: every function here must be called on the loop thread. */
#ifndef AOS_HTTP_H
#define AOS_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err/err.h"
#include "tracectx/tracectx.h"

typedef struct aos_http_s aos_http_t;
typedef struct aos_http_req_s aos_http_req_t;

/* What a route requires of the caller; checked by the authorizer before the
 * handler runs. Ordered: a role that may do a level may do those below. */
typedef enum {
    AOS_PERM_PUBLIC = 0, /* no token needed (healthz, static UI) */
    AOS_PERM_METRICS,    /* /metrics: a Viewer, or no token from an address allowed to scrape */
    AOS_PERM_MCP,        /* MCP endpoints: any rights, or anonymous if allowed */
    AOS_PERM_ANY,        /* any valid token with any rights; the handler checks further */
    AOS_PERM_READ,       /* Viewer */
    AOS_PERM_OPERATE,    /* Operator */
    AOS_PERM_ADMIN,      /* Admin */
    AOS_PERM_OWNER       /* Owner */
} aos_perm_t;

/* Returns 0 or a negative AOS_E* code (handler returns). When a handler
 * returns an error without answering, the server answers with the standard
 * REST error body for that code. */
typedef int (*aos_http_handler_fn)(aos_http_req_t *req, void *data);

typedef struct {
    /* "GET", "POST", ... or "*"; "PAGE": a GET by a browser navigating
     * (Accept starting with text/html), which takes precedence over a GET
     * route of the same path wherever either is registered, so a page of
     * the UI and an API route can share a path (/agents). A PAGE pattern is
     * a plain path (no :param, no *). */
    const char *method;
    const char *pattern; /* "/mcp/registry/:name" */
    aos_perm_t perm;
    aos_http_handler_fn handler;
    size_t max_body; /* 0: the server default (PUBLIC routes: no body) */
    /* The resource the permission is checked on (auth.h): NULL = "system";
     * "{name}" is replaced by the route's ":name" parameter ("task:{trace}"). */
    const char *resource;
} aos_http_route_t;

/* Decides whether req may use a route needing perm: 0, AOS_EUNAUTH,
 * AOS_EFORBIDDEN or AOS_EBADREQ (with a message in err). It runs as soon
 * as the request head has arrived, before any body byte is read: it may
 * look at the method, path, headers and peer, not at the body. */
typedef int (*aos_http_authorize_fn)(aos_http_req_t *req, aos_perm_t perm, aos_err_t *err,
                                     void *data);

/* Connections: at most conn_limit in all and conn_per_ip from one address
 * group (an IPv4 address, an IPv6 /64, all loopback addresses together).
 * A new connection past either limit closes the connection of its group
 * (or of all) that has been idle longest - accepted without a complete
 * request head yet, or kept alive between requests - and is refused at
 * once only when every one is busy with a request. A new connection must
 * send its first request head within head_timeout_s, a kept-alive one its
 * next within conn_timeout_s (deadlines, not inactivity timers); a busy
 * one is closed after conn_timeout_s without a byte either way, except
 * while its handler holds it (an upstream call, a stream), which has no
 * timeout here.
 *
 * Bodies: a request is authorized on its head (the authorizer runs before
 * a body byte is read; a refusal is answered at once and the connection
 * closed, the body never read). Only then is its body buffered, up to the
 * route's max_body, and within body_memory for all requests together:
 * the declared Content-Length is reserved up front (503 with Retry-After
 * past the cap, 413 past the route's limit or the cap itself), a chunked
 * body as it arrives. A PUBLIC route takes no body unless its max_body is
 * set. */
typedef struct {
    const char *listen;   /* "127.0.0.1:8080", "[::1]:0" */
    const char *tls_cert; /* PEM file paths; both set = HTTPS */
    const char *tls_key;
    size_t max_body;         /* default request body limit; 0: 4 MiB */
    unsigned conn_limit;     /* most connections at once; 0: 4096 */
    unsigned conn_per_ip;    /* most from one address group; 0: no limit */
    unsigned head_timeout_s; /* for a new connection's first head; 0: 10 */
    unsigned conn_timeout_s; /* idle timeout (see above); 0: 120 */
    size_t body_memory;      /* bytes of request bodies held at once; 0: 64 MiB */
    unsigned writers;        /* threads sending plain-HTTP stream data; 0: the loop */
} aos_http_cfg_t;

int aos_http_new(aos_http_t **out, uv_loop_t *loop, const aos_http_cfg_t *cfg, aos_err_t *err);
/* Registers n routes; the table (and data) must outlive the server. */
int aos_http_add_routes(aos_http_t *h, const aos_http_route_t *routes, size_t n, void *data);
void aos_http_set_authorizer(aos_http_t *h, aos_http_authorize_fn fn, void *data);
/* Decides whether the peer of a request may be served at all (the IP
 * allowlist): 0, or a code (AOS_EIPDENIED) with a message in err. It runs
 * first, as soon as the head has arrived: before the head's checks, the
 * route, the authorizer and any body byte, for routes and the fallback
 * alike; a refusal is answered at once and the connection closed. */
typedef int (*aos_http_gate_fn)(aos_http_req_t *req, const char *peer, aos_err_t *err, void *data);
void aos_http_set_gate(aos_http_t *h, aos_http_gate_fn fn, void *data);
/* Called for a request that matched no route (e.g. the static UI); may be NULL. */
void aos_http_set_fallback(aos_http_t *h, aos_http_handler_fn fn, void *data);
int aos_http_start(aos_http_t *h, aos_err_t *err);
uint16_t aos_http_port(const aos_http_t *h);
int aos_http_is_tls(const aos_http_t *h);
/* Stops accepting; kept requests get 503 unless answered first. */
void aos_http_stop(aos_http_t *h);
/* After aos_http_stop and once the loop no longer needs it. */
void aos_http_free(aos_http_t *h);

/* --- the request ---------------------------------------------------------
 * A request is valid from its handler's call until it is answered and its
 * on_close callback has run; after that it is freed. */
const char *aos_http_method(const aos_http_req_t *req);
const char *aos_http_path(const aos_http_req_t *req);
const char *aos_http_header(aos_http_req_t *req, const char *name);
const char *aos_http_query(aos_http_req_t *req, const char *name);
/* A ":name" (or "*") segment captured by the route pattern. */
const char *aos_http_param(const aos_http_req_t *req, const char *name);
const char *aos_http_body(const aos_http_req_t *req, size_t *len);
/* Parses the body as JSON (bounded already); NULL with err set if it is not. */
json_t *aos_http_body_json(aos_http_req_t *req, aos_err_t *err);
/* One field of a form body (multipart/form-data, RFC 7578, or
 * application/x-www-form-urlencoded). */
typedef struct {
    char *name;         /* the field's name */
    char *filename;     /* a file part's name as the client sent it; NULL: a plain field */
    char *content_type; /* the part's Content-Type; may be NULL */
    char *data;         /* its bytes, NUL-terminated (data[len] == 0; may hold NULs) */
    size_t len;
} aos_http_form_part_t;
typedef struct {
    aos_http_form_part_t *parts; /* in the order they came */
    size_t n;
} aos_http_form_t;
#define AOS_HTTP_FORM_PARTS_MAX 256
/* 1 if the body is a form (by its Content-Type). */
int aos_http_body_is_form(aos_http_req_t *req);
/* Parses the body (bounded already) as a form with libmicrohttpd's post
 * processor into *form (the caller releases it with
 * aos_http_form_release). AOS_EINVAL (err) for a body that is not a form
 * or is malformed or truncated, or past AOS_HTTP_FORM_PARTS_MAX parts;
 * AOS_ENOMEM. Loop thread, from the route's handler. */
int aos_http_body_form(aos_http_req_t *req, aos_http_form_t *form, aos_err_t *err);
/* The first plain field (not a file) named name, or NULL. */
const aos_http_form_part_t *aos_http_form_field(const aos_http_form_t *form, const char *name);
void aos_http_form_release(aos_http_form_t *form);
/* The same for a copy of a body: pure, callable from any thread (a
 * handler that parses a large body off the loop). */
json_t *aos_http_parse_json(const char *body, size_t len, aos_err_t *err);
/* 1 if the peer address is loopback (127.0.0.0/8 or ::1). */
int aos_http_peer_is_loopback(aos_http_req_t *req);
/* Text form of the peer address. */
const char *aos_http_peer(aos_http_req_t *req);

/* The route the request matched (NULL: none, the fallback). */
const aos_http_route_t *aos_http_route(const aos_http_req_t *req);
/* Every registered route, in order: [{method, path, permission (the
 * aos_http_perm_name), resource}], a new array. */
json_t *aos_http_route_list(const aos_http_t *h);
const char *aos_http_perm_name(aos_perm_t perm);
/* Ends every open stream (SSE) of requests whose principal is p (a
 * revoked token): each is closed as its owner would close it. Returns how
 * many. */
size_t aos_http_close_streams_of(aos_http_t *h, const void *principal);
/* 1 if a request still alive holds principal (it may not be freed yet). */
int aos_http_principal_in_use(const aos_http_t *h, const void *principal);

/* Per-request slots for the authorizer and handlers. */
void aos_http_set_principal(aos_http_req_t *req, void *principal);
void *aos_http_principal(const aos_http_req_t *req);

/* A slot per connection for the authorizer: what an earlier request of
 * the same kept-alive connection told it. The slot is the owner's
 * struct, this one its first member; release runs once, when the
 * connection closes (or the slot is replaced), on the loop thread. */
typedef struct aos_http_conn_slot_s {
    void (*release)(struct aos_http_conn_slot_s *slot);
} aos_http_conn_slot_t;
/* The request's connection's slot, or NULL (none yet, or a connection
 * the server does not track). */
aos_http_conn_slot_t *aos_http_conn_slot(const aos_http_req_t *req);
/* Sets it (a previous one is released first); 0, or AOS_EINVAL when the
 * connection is not tracked (then slot is not taken). */
int aos_http_set_conn_slot(aos_http_req_t *req, aos_http_conn_slot_t *slot);

/* Adds a header to the response (before it is sent). */
int aos_http_add_header(aos_http_req_t *req, const char *name, const char *value);

/* --- trace context (W3C Trace Context, tracectx.h) ------------------------
 * The request's context: its traceparent and tracestate headers parsed
 * (tracestate fields joined), or - when there is none, or it is malformed,
 * or sent twice - a new trace (its next span the trace's root), never an
 * error. Parsed on first use; the same for the request's whole life. */
const aos_tracectx_t *aos_http_trace(aos_http_req_t *req);
/* The context the response's traceparent header names: the span of
 * aosd's that served the request (set before answering). */
void aos_http_set_traceparent(aos_http_req_t *req, const aos_tracectx_t *ctx);
/* The request's server span (trace.h's aos_span_t; opaque here): end runs
 * once when the request ends, before the on_close callback, with aborted
 * as there. One span per request: setting another ends nothing. */
void aos_http_set_span(aos_http_req_t *req, void *span, void (*end)(void *span, int aborted));
void *aos_http_span(const aos_http_req_t *req);

/* --- answering ------------------------------------------------------------
 * May be called from the handler or later from any callback on the loop. */
int aos_http_respond(aos_http_req_t *req, unsigned status, const char *content_type,
                     const void *body, size_t len);
/* body is stolen; NULL answers with no body. */
int aos_http_respond_json(aos_http_req_t *req, unsigned status, json_t *body);
/* {"error":{"code","message"}} with the status of code. */
int aos_http_respond_error(aos_http_req_t *req, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int aos_http_respond_err(aos_http_req_t *req, const aos_err_t *err);
/* 1 once a response was queued (or a stream opened). */
int aos_http_answered(const aos_http_req_t *req);

/* Streaming: open with status and content type (e.g. text/event-stream),
 * then write pieces and close. Writes are buffered until the client reads;
 * aos_http_stream_pending() tells how many bytes wait because the client
 * does not read them (for back-pressure: a stream whose bytes are merely
 * queued for a writer thread that has not got to them counts 0). */
int aos_http_stream_open(aos_http_req_t *req, unsigned status, const char *content_type);
int aos_http_stream_write(aos_http_req_t *req, const void *data, size_t len);
size_t aos_http_stream_pending(const aos_http_req_t *req);
int aos_http_stream_close(aos_http_req_t *req);

/* --- observing (metrics) -------------------------------------------------
 * fn runs on the loop once per request as it ends, before its span ends:
 * status is the answer's (0 when none was given: the client left first),
 * seconds the time from the request's first byte to its end, aborted as
 * for aos_http_on_close. One observer; NULL removes it. */
typedef void (*aos_http_observe_fn)(aos_http_req_t *req, unsigned status, double seconds,
                                    int aborted, void *data);
void aos_http_set_observer(aos_http_t *h, aos_http_observe_fn fn, void *data);

typedef struct {
    unsigned conns;     /* connections open (not closing) */
    unsigned requests;  /* requests between their first byte and their end */
    uint64_t evicted;   /* idle connections closed to make room */
    uint64_t refused;   /* connections refused: every one of the group busy */
    uint64_t timed_out; /* idle connections past their deadline */
} aos_http_stats_t;
void aos_http_stats(const aos_http_t *h, aos_http_stats_t *out);

/* Called once when the request ends: answered and sent, or the client went
 * away (closed = 1 when it did not complete normally). The request is freed
 * right after; the owner must drop every pointer to it. */
typedef void (*aos_http_close_fn)(aos_http_req_t *req, int aborted, void *data);
void aos_http_on_close(aos_http_req_t *req, aos_http_close_fn fn, void *data);

#endif
