/* fuzz_rpc_scan.c - aos_rpc_scan_result on any bytes, as an upstream
 * could send them: when it accepts, jansson reads the same text as a
 * plain result whose top-level id and result are where the scan said, and
 * result.isError is what it said; the text holds no line break; and the
 * answer with a client's id spliced in at that place (what the gateway
 * sends) parses to the same message with the client's id. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "jsonrpc/jsonrpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    aos_rpc_scan_t sc;
    if (!aos_rpc_scan_result(text, size, &sc))
        return 0;
    check(sc.id_off + sc.id_len <= size && sc.result_off + sc.result_len <= size);
    check(!memchr(text, '\n', size) && !memchr(text, '\r', size));
    json_error_t je;
    json_t *m = json_loadb(text, size, JSON_ALLOW_NUL, &je);
    check(m && json_is_object(m) && !json_object_get(m, "error") && !json_object_get(m, "method"));
    json_t *id = json_object_get(m, "id");
    check(json_is_integer(id) && json_integer_value(id) > 0 &&
          (uint64_t)json_integer_value(id) == sc.id);
    json_t *res = json_object_get(m, "result");
    json_t *at =
        json_loadb(text + sc.result_off, sc.result_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    check(res && at && json_equal(res, at));
    check(sc.is_error == json_is_true(json_object_get(res, "isError")));
    json_decref(at);

    static const char cid[] = "\"client-\\u00e9\"";
    size_t n = size - sc.id_len + sizeof(cid) - 1;
    char *out = malloc(n ? n : 1);
    check(out != NULL);
    memcpy(out, text, sc.id_off);
    memcpy(out + sc.id_off, cid, sizeof(cid) - 1);
    memcpy(out + sc.id_off + sizeof(cid) - 1, text + sc.id_off + sc.id_len,
           size - sc.id_off - sc.id_len);
    json_t *back = json_loadb(out, n, JSON_ALLOW_NUL, &je);
    check(back != NULL);
    json_t *want = json_deep_copy(m);
    json_object_set_new(want, "id", json_string("client-\xc3\xa9"));
    check(json_equal(back, want));
    json_decref(want);
    json_decref(back);
    free(out);
    json_decref(m);
    return 0;
}
