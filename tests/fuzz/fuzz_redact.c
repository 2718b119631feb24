/* fuzz_redact.c - the redactor (src/redact). The first byte of the input
 * chooses the patterns, the rest is the text; a literal value of each kind
 * (8+ bytes: anywhere; 4..7 bytes: whole words) is known to the redactor.
 * Checked: redaction succeeds; the output never holds the long value (a
 * match either leaves a value whole, where the scan finds it, or cuts it);
 * unchanged leaves the buffer empty; aos_redact_cstr agrees with
 * aos_redact_text when the result fits. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redact/redact.h"

#define MAX     8192
#define LONGVAL "S3cr3t-V4lue"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aos_redact_t *r;
    if (!r) {
        r = aos_redact_new(AOS_REDACT_ALL);
        if (!r || aos_redact_add_value(r, LONGVAL) || aos_redact_add_value(r, "pin42"))
            abort();
    }
    if (size < 1 || size > MAX)
        return 0;
    aos_redact_set_patterns(r, data[0]);
    const char *text = (const char *)data + 1;
    size_t len = size - 1;
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = aos_redact_text(r, text, len, &b);
    if (rc < 0 || rc > 1)
        abort();
    const char *out = rc ? b.ptr : text;
    size_t olen = rc ? b.len : len;
    if (olen >= strlen(LONGVAL) && memmem(out, olen, LONGVAL, strlen(LONGVAL)))
        abort();
    if (rc == 0 && b.len != 0)
        abort();
    /* C strings: the same result when it fits (the text up to a NUL) */
    size_t clen = strnlen(text, len);
    char *c = malloc(clen + 64 + 1);
    if (c) {
        memcpy(c, text, clen);
        c[clen] = '\0';
        aos_buf_t b2;
        aos_buf_init(&b2, 0);
        int rc2 = aos_redact_text(r, text, clen, &b2);
        int rc3 = aos_redact_cstr(r, c, clen + 64 + 1);
        if (rc2 != rc3)
            abort();
        if (rc2 == 1 && b2.len <= clen + 64 && strcmp(c, b2.ptr) != 0)
            abort();
        aos_buf_release(&b2);
        free(c);
    }
    aos_buf_release(&b);
    return 0;
}
