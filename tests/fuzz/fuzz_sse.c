/* fuzz_sse.c - the text/event-stream parser (src/sse), fed
 * the input in chunks whose sizes come from the input itself (so line ends
 * split across chunks are covered). Checked: every dispatched event's data
 * is NUL-terminated at its length and within the bound. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sse/sse.h"

#define MAX 4096

static int on_event(void *data, const char *type, const char *payload, size_t len)
{
    (void)data;
    if (!type || len > MAX || payload[len] != '\0')
        abort();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t step = (size_t)(data[0] % 17) + 1;
    aos_sse_t s;
    aos_sse_init(&s, MAX, on_event, NULL);
    for (size_t at = 1; at < size; at += step) {
        size_t n = size - at < step ? size - at : step;
        if (aos_sse_feed(&s, (const char *)data + at, n) < 0)
            break;
    }
    aos_sse_release(&s);
    return 0;
}
