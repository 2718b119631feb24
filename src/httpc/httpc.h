/* httpc.h - an HTTP(S) client that runs on the libuv loop.
 *
 * libcurl's multi interface is driven by the loop: curl tells us which
 * sockets to watch (a uv_poll each) and when to wake it (one uv_timer), and we
 * hand readiness back with curl_multi_socket_action. No call here blocks, so a
 * request waiting on a slow server is only a few hundred bytes of state.
 *
 * One aos_httpc_t per loop; it keeps curl's connection cache, so repeated
 * requests to one upstream reuse their connections. Each aos_httpc_req_t is one
 * transfer; its body is handed to on_data chunk by chunk as it arrives (the
 * client never buffers a response), which suits both small JSON replies and
 * endless SSE streams.
 *
 * Threading: every function must be called on the loop thread, and every
 * callback runs there.
 *
 * Callbacks and re-entrancy: on_headers and on_data run from inside curl.
 * They may call aos_httpc_start (the new transfer is added to curl right after
 * the current callback chain returns) and aos_httpc_cancel (on this or any
 * other request). on_done runs outside curl and may do the same. No callback
 * may call aos_httpc_free. */
#ifndef AOS_HTTPC_H
#define AOS_HTTPC_H

#include <stddef.h>
#include <sys/socket.h>
#include <uv.h>

#include "err/err.h"

typedef struct aos_httpc_s aos_httpc_t;         /* one per loop */
typedef struct aos_httpc_req_s aos_httpc_req_t; /* one transfer */

/* Creates a client on loop. Returns 0 or AOS_ENOMEM / AOS_EINTERNAL (err set). */
int aos_httpc_new(aos_httpc_t **out, uv_loop_t *loop, aos_err_t *err);
/* Aborts every transfer (each on_done runs, synchronously, with
 * AOS_ECANCELED) and closes the client's handles. The memory is released by
 * the handles' close callbacks: run the loop afterwards (uv_run until it
 * returns) as for any libuv handle. c may be NULL. */
void aos_httpc_free(aos_httpc_t *c);

typedef struct {
    const char *method;         /* "GET" (default when NULL), "POST", "DELETE", ... */
    const char *url;            /* http:// or https:// only */
    const char *const *headers; /* NULL-terminated "Name: value" lines, copied; may be NULL */
    const void *body;           /* copied; may be NULL */
    size_t body_len;
    long timeout_ms;     /* whole transfer; 0 = none (streams). Connecting is
                            always bounded by 10 s. */
    const char *ca_file; /* PEM bundle; NULL = system default */
    int insecure;        /* 1 = skip TLS peer and host verification */
    int certinfo;        /* 1 = keep the peer's certificates of a TLS handshake
                            (libcurl's CURLOPT_CERTINFO) for aos_httpc_peer_cert */
    /* The final (non-1xx) response's status line and headers arrived; runs at
     * most once, before any on_data. May be NULL. */
    void (*on_headers)(aos_httpc_req_t *r, long status, void *data);
    /* A piece of the body (not NUL-terminated). Return 0 to go on, or a
     * negative AOS_E* code to abort the transfer: on_done then gets that code.
     * May be NULL (the body is discarded). */
    int (*on_data)(aos_httpc_req_t *r, const char *chunk, size_t len, void *data);
    /* Runs exactly once: status 0 when a response was received completely
     * (whatever its HTTP status), else AOS_ETIMEDOUT (timeout_ms passed),
     * AOS_ECANCELED (aos_httpc_cancel / aos_httpc_free), the code returned by
     * on_data, or AOS_EUPSTREAM (connection or protocol failure) with errmsg
     * saying why. The request is freed when it returns. Required. */
    void (*on_done)(aos_httpc_req_t *r, int status, const char *errmsg, void *data);
    void *data; /* borrowed, passed to the callbacks */
    /* Asked before each connection is opened, with the address curl is about
     * to connect to (after name resolution, on every hop): 0 allows it,
     * nonzero refuses it (curl then tries the next address of the name, else
     * the transfer fails with AOS_EUPSTREAM). When set, the transfer also
     * ignores proxy settings and neither reuses a cached connection nor
     * leaves one for others, so every connection it uses was asked about.
     * Runs on the loop, inside curl. May be NULL. */
    int (*on_connect)(const struct sockaddr *addr, unsigned addrlen, void *data);
} aos_httpc_opts_t;

/* Starts a transfer; everything in o is copied. On success *out (if out is
 * not NULL) is the request, valid until its on_done returns. On failure
 * (AOS_EINVAL, AOS_ENOMEM, AOS_EINTERNAL, err set) no callback runs. */
int aos_httpc_start(aos_httpc_t *c, const aos_httpc_opts_t *o, aos_httpc_req_t **out,
                    aos_err_t *err);
/* A header of the final response, found case-insensitively; the value is
 * trimmed. NULL when absent. The string is valid until on_done returns. */
const char *aos_httpc_resp_header(aos_httpc_req_t *r, const char *name);
/* The HTTP status of the final response, 0 before on_headers. */
long aos_httpc_status(const aos_httpc_req_t *r);
/* 1 when bytes of the request went out on a connection, so the server may
 * have acted on it; 0 when it never left (the name did not resolve, the
 * connection was refused or timed out). Tells a caller whether trying again
 * could do a thing twice. Callable until on_done returns. */
int aos_httpc_sent(aos_httpc_req_t *r);
/* The peer's certificate (the first of the chain, the server's own) as
 * libcurl's CURLINFO_CERTINFO gives it, for a transfer started with
 * certinfo = 1 that made a TLS handshake: subject and issuer (distinguished
 * names), not_before and not_after (libcurl's "Start date" and "Expire
 * date", e.g. "Dec  7 12:00:00 2026 GMT"), each "" when absent. Returns 1
 * when filled, 0 when there is none (plain http, a reused connection, no
 * handshake yet, or a TLS backend without certinfo). Callable from
 * on_headers on. */
typedef struct {
    char subject[256], issuer[256], not_before[64], not_after[64];
} aos_httpc_cert_t;
int aos_httpc_peer_cert(aos_httpc_req_t *r, aos_httpc_cert_t *out);
/* Aborts r. Its on_done runs once with AOS_ECANCELED, later from the loop
 * (never from inside this call); no on_headers/on_data runs after this call.
 * Nothing happens if on_done has already been scheduled with another result
 * or r is inside its on_done. */
void aos_httpc_cancel(aos_httpc_req_t *r);

#endif
