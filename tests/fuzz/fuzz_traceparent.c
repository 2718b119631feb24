/* fuzz_traceparent.c - the W3C Trace Context parser (src/tracectx). The
 * input is a traceparent and, after the first newline, a tracestate.
 * Checked: a parse either fails with the context empty, or gives ids that
 * are lowercase hex of the right length and not all zeros, flags within
 * the sampled bit, a tracestate that is printable ASCII within its bound
 * and parses to itself again; and formatting the context and parsing that
 * gives the same context back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tracectx/tracectx.h"

#define MAX 4096

static void check_state(const char *s)
{
    size_t n = strlen(s);
    if (n > AOS_TRACESTATE_MAX)
        abort();
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            abort();
    char again[AOS_TRACESTATE_MAX + 1];
    if (aos_tracectx_state(again, sizeof(again), s, n) != n || strcmp(again, s) != 0)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *state = memchr(buf, '\n', size);
    if (state)
        *state++ = '\0';

    aos_tracectx_t c;
    if (aos_tracectx_parse(&c, buf, state) != 0) {
        if (c.trace_id[0] || c.span_id[0] || c.tracestate[0] || c.flags || c.remote)
            abort();
    } else {
        if (!aos_tracectx_id_valid(c.trace_id, AOS_TRACE_ID_LEN) ||
            strlen(c.trace_id) != AOS_TRACE_ID_LEN ||
            !aos_tracectx_id_valid(c.span_id, AOS_SPAN_ID_LEN) ||
            strlen(c.span_id) != AOS_SPAN_ID_LEN || (c.flags & ~AOS_TRACE_SAMPLED) || !c.remote)
            abort();
        check_state(c.tracestate);
        char tp[AOS_TRACEPARENT_LEN + 1];
        aos_tracectx_t back;
        if (aos_tracectx_format(&c, tp) != 0 || strlen(tp) != AOS_TRACEPARENT_LEN ||
            aos_tracectx_parse(&back, tp, c.tracestate) != 0 || memcmp(&back, &c, sizeof(c)) != 0)
            abort();
    }
    /* a tracestate alone, with its NUL bytes */
    char out[AOS_TRACESTATE_MAX + 1];
    size_t n = aos_tracectx_state(out, sizeof(out), (const char *)data, size);
    if (n != strlen(out))
        abort();
    if (n)
        check_state(out);
    free(buf);
    return 0;
}
