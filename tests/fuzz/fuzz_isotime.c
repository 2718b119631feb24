/* fuzz_isotime.c - the RFC 3339 reader (src/isotime). Checked: whatever
 * it accepts is within 1970..9999, and the store's form of that time reads
 * back to the same millisecond and is written the same again (the form is
 * a fixed point); a bare date is accepted only with AOS_ISOTIME_DATE_OK. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "isotime/isotime.h"

#define MAX 256

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX)
        return 0;
    char s[MAX + 1];
    memcpy(s, data, size);
    s[size] = '\0';
    for (unsigned flags = 0; flags <= AOS_ISOTIME_DATE_OK; flags++) {
        int64_t ms = -7;
        if (aos_isotime_parse(s, flags, &ms) != 0) {
            if (ms != -7)
                abort(); /* refused: untouched */
            continue;
        }
        if (ms < 0 || ms > 253402300799999LL)
            abort();
        char out[32], again[32];
        aos_isotime_fmt(ms, out);
        int64_t back;
        if (strlen(out) != AOS_ISOTIME_LEN || aos_isotime_parse(out, 0, &back) != 0 || back != ms)
            abort();
        aos_isotime_fmt(back, again);
        if (strcmp(out, again))
            abort();
        if (!flags && strlen(s) == 10)
            abort(); /* a bare date without the flag */
    }
    return 0;
}
