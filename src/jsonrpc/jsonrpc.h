/* jsonrpc.h - JSON-RPC 2.0 messages as MCP uses them: classify and validate
 * an incoming message, build results, errors, requests and notifications.
 * Pure functions over jansson values; any thread. */
#ifndef AOS_JSONRPC_H
#define AOS_JSONRPC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "buf/buf.h"
#include "err/err.h"

typedef enum {
    AOS_RPC_INVALID = 0,
    AOS_RPC_REQUEST,      /* method + id */
    AOS_RPC_NOTIFICATION, /* method, no id */
    AOS_RPC_RESPONSE      /* id + result | error */
} aos_rpc_kind_t;

/* Checks "jsonrpc":"2.0", the id type (string or integer, not null), the
 * method type and that params is an object or array. On INVALID err says why. */
aos_rpc_kind_t aos_rpc_classify(const json_t *msg, aos_err_t *err);

/* id is borrowed (copied in); result and data are stolen. id NULL = null. */
json_t *aos_rpc_result(const json_t *id, json_t *result);
json_t *aos_rpc_error(const json_t *id, int rpc_code, const char *message, json_t *data);
/* The JSON-RPC error for an AOS_E* code, with message (or its default). */
json_t *aos_rpc_error_aos(const json_t *id, int aos_code, const char *message);
json_t *aos_rpc_request(const json_t *id, const char *method, json_t *params);
json_t *aos_rpc_notification(const char *method, json_t *params);

/* Appends v as compact JSON to b: aos_buf_json (buf.h), jansson's
 * json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) byte for byte without its
 * per-container loop check; the gateway serialises every message it passes.
 * 0, AOS_ENOMEM, or AOS_EINVAL for NULL or a value nested deeper than
 * jansson's parser accepts (2048); on error b is as it was. */
int aos_rpc_dump(const json_t *v, aos_buf_t *b);

/* A successful answer found in a message's text without building values
 * (scan.c): what a gateway needs to pass it on with another id. */
typedef struct {
    uint64_t id;                   /* the "id": a positive integer */
    size_t id_off, id_len;         /* where its text is */
    size_t result_off, result_len; /* where the "result" value's text is */
    int is_error;                  /* result.isError is true */
} aos_rpc_scan_t;

/* 1 when text[0..len) is exactly one JSON object that json_loadb(...,
 * JSON_ALLOW_NUL) reads the same way, holding a "result", a positive
 * integer "id" (at most 18 digits), no "error" and no "method" - a plain
 * successful answer to a request of ours - with no CR or LF anywhere (so
 * that it can go out as one SSE data line or stdio line as it is). 0
 * otherwise, including for anything the scan cannot be sure jansson reads
 * alike (escaped or repeated member names at the top level, very large
 * numbers, more than 2048 levels): the caller then parses the text with
 * jansson. Never reads outside text[0..len). Any thread. */
int aos_rpc_scan_result(const char *text, size_t len, aos_rpc_scan_t *out);

/* Shortcuts on a message. */
const char *aos_rpc_method(const json_t *msg);
json_t *aos_rpc_id(const json_t *msg);     /* borrowed */
json_t *aos_rpc_params(const json_t *msg); /* borrowed, may be NULL */

#endif
