/* fuzz_jsonrpc.c - JSON-RPC 2.0 classification of any JSON value, and the
 * accessors the gateway uses on what classify accepted. */
#include <stdint.h>
#include <stdlib.h>

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
    json_decref(msg);
    return 0;
}
