/* fuzz_jsonrpc.c - JSON-RPC 2.0 classification of any JSON value, the
 * accessors the gateway uses on what classify accepted, and aos_rpc_dump:
 * its text parses back to an equal value and holds no line break (the
 * stdio transport and SSE frames rely on one message per line). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "jsonrpc/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aos_err_t err = {0, ""};
    json_t *msg = aos_http_parse_json((const char *)data, size, &err);
    if (!msg)
        return 0;
    aos_rpc_classify(msg, &err);
    aos_rpc_method(msg);
    aos_rpc_id(msg);
    aos_rpc_params(msg);
    aos_buf_t b;
    aos_buf_init(&b, 0);
    if (aos_rpc_dump(msg, &b) == 0) {
        json_error_t je;
        json_t *back = json_loadb(b.ptr, b.len, JSON_ALLOW_NUL, &je);
        if (!back || !json_equal(msg, back) || memchr(b.ptr, '\n', b.len) ||
            memchr(b.ptr, '\r', b.len))
            abort();
        json_decref(back);
    }
    aos_buf_release(&b);
    json_decref(msg);
    return 0;
}
