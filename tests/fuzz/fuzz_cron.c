/* fuzz_cron.c - the cron parser and the next-time walk (src/cron). Checked:
 * an accepted expression's next time is after the start, a whole second,
 * within 5 years and 2 days, and a time at which it fires again: asking
 * from one millisecond before it gives it back. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cron/cron.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > AOS_CRON_MAX + 16)
        return 0;
    char s[AOS_CRON_MAX + 17];
    memcpy(s, data, size);
    s[size] = '\0';
    aos_cron_t c;
    aos_err_t err = {0, ""};
    if (aos_cron_parse(s, &c, &err) != 0)
        return 0;
    const int64_t from = 1796000000123LL; /* 2026-11-30 */
    int64_t t = aos_cron_next(&c, from);
    if (t == -1)
        return 0;
    if (t <= from || t % 1000 || t > from + (5 * 366 + 2) * 86400000LL)
        abort();
    if (aos_cron_next(&c, t - 1) != t)
        abort();
    return 0;
}
