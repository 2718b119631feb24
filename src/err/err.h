/* err.h - the one table of AOS error codes.
 *
 * Every failure in aosd is a negative AOS_E* code. AOS_ERR_MAP (in the manner
 * of libuv's UV_ERRNO_MAP) gives each code its HTTP status, its JSON-RPC error
 * code, the stable string used in REST error bodies and a default message, so
 * that a REST handler and an MCP handler report the same failure the same way.
 *
 * A function that needs to explain a failure fills an aos_err_t.
 *
 * Every error aosd sends - a REST body, a JSON-RPC error to an MCP client or
 * to an upstream - takes its status and codes from this table; no other file
 * writes a JSON-RPC error code (`make lint` checks). JSON-RPC codes:
 *   -32700, -32600..-32603  JSON-RPC 2.0's own meanings; -32600 and -32603
 *                           are kinds, shared by several rows
 *   -32000                  the MCP Streamable HTTP transport refused the HTTP
 *                           request (the TypeScript SDK's code for that);
 *                           shared, the HTTP status tells which refusal
 *   -32002                  MCP's "resource not found", for any unknown name
 *   others                  aosd's own: one row each */
#ifndef AOS_ERR_H
#define AOS_ERR_H

#include <stdarg.h>
#include <stddef.h>

/* XX(NAME, http status, json-rpc code, code string, default message) */
#define AOS_ERR_MAP(XX)                                                                            \
    XX(EINVAL, 400, -32602, "invalid_argument", "invalid argument")                                \
    XX(EPARSE, 400, -32700, "parse_error", "malformed JSON")                                       \
    XX(EBADREQ, 400, -32600, "invalid_request", "invalid request")                                 \
    XX(ENOSESSIONID, 400, -32000, "session_id_required", "missing Mcp-Session-Id header")          \
    XX(EPROTOVER, 400, -32000, "unsupported_protocol_version", "unsupported MCP-Protocol-Version") \
    XX(EUNAUTH, 401, -32001, "unauthorized", "missing or invalid token")                           \
    XX(EFORBIDDEN, 403, -32003, "forbidden", "not allowed")                                        \
    XX(ECSRF, 403, -32014, "csrf_failed", "missing or wrong CSRF token")                           \
    XX(ENOTFOUND, 404, -32002, "not_found", "not found")                                           \
    XX(ENOSESSION, 404, -32000, "session_not_found", "session not found")                          \
    XX(ENOMETHOD, 404, -32601, "method_not_found", "method not found")                             \
    XX(EMETHOD, 405, -32000, "method_not_allowed", "method not allowed")                           \
    XX(ENOTACCEPT, 406, -32000, "not_acceptable", "not acceptable")                                \
    XX(ECONFLICT, 409, -32004, "conflict", "conflict")                                             \
    XX(ETOOBIG, 413, -32600, "too_large", "request too large")                                     \
    XX(EMEDIA, 415, -32000, "unsupported_media_type", "unsupported media type")                    \
    XX(ERATE, 429, -32029, "rate_limited", "rate limit exceeded")                                  \
    XX(ECANCELED, 499, -32800, "canceled", "request cancelled")                                    \
    XX(EINTERNAL, 500, -32603, "internal", "internal error")                                       \
    XX(ENOMEM, 500, -32603, "out_of_memory", "out of memory")                                      \
    XX(EIO, 500, -32603, "io_error", "input/output error")                                         \
    XX(ESTORE, 500, -32603, "store_error", "storage error")                                        \
    XX(EUPSTREAM, 502, -32010, "upstream_error", "upstream server failed")                         \
    XX(EUNAVAIL, 503, -32011, "unavailable", "service unavailable")                                \
    XX(ETIMEDOUT, 504, -32012, "timeout", "timed out")                                             \
    XX(EUPAUTH, 502, -32013, "upstream_auth", "the upstream refused aosd's credentials")           \
    XX(EIPDENIED, 403, -32015, "ip_not_allowed", "the client's address is not in the IP allowlist")

typedef enum {
    AOS_OK = 0,
#define XX(name, status, rpc, code, msg) AOS_##name,
    AOS__EFIRST = -1000,
    AOS_ERR_MAP(XX)
#undef XX
        AOS__ELAST
} aos_errno_t;

/* Detail for a failure: a code and a human message (lowercase, no period). */
typedef struct {
    int code;
    char msg[256];
} aos_err_t;

const char *aos_err_name(int code); /* "EINVAL" */
const char *aos_err_code(int code); /* "invalid_argument" (REST body code) */
const char *aos_strerror(int code); /* default message */
int aos_err_http_status(int code);  /* 400.. */
int aos_err_rpc_code(int code);     /* -32602.. */

/* Sets err (if not NULL) and returns code, so that `return aos_err_set(...)`
 * reports and fails in one step. */
int aos_err_set(aos_err_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The message of err, or the code's default message when none was set. */
const char *aos_err_msg(const aos_err_t *err);

#endif
