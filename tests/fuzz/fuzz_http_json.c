/* fuzz_http_json.c - the fast reader of request bodies (src/http/json.c)
 * against jansson's parser, on any bytes: where it answers, jansson reads
 * the same text to the same value (same types, same members in the same
 * order); where it does not, aos_http_parse_json's answer is jansson's. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "http/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    json_error_t je;
    json_t *ref = json_loadb(text, size, JSON_REJECT_DUPLICATES, &je);
    json_t *fast = aos__json_fast(text, size);
    if (fast) {
        if (!ref)
            abort(); /* it took what jansson refuses */
        char *a = json_dumps(fast, JSON_COMPACT | JSON_ENCODE_ANY),
             *b = json_dumps(ref, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!a || !b || strcmp(a, b) != 0 || !json_equal(fast, ref))
            abort();
        free(a);
        free(b);
    }
    aos_err_t err = {0, ""};
    json_t *got = aos_http_parse_json(text, size, &err);
    if (!got != !ref || (got && !json_equal(got, ref)))
        abort();
    json_decref(got);
    json_decref(fast);
    json_decref(ref);
    return 0;
}
