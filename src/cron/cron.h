/* cron.h - cron expressions: parsed once, asked for the next time they
 * fire. Pure: no clock (the caller passes the time), no allocation, no
 * state; fuzzed by tests/fuzz/fuzz_cron.c.
 *
 * An expression has 5 fields, "minute hour day-of-month month
 * day-of-week", or 6 with a leading second field ("*\/10 * * * * *": every
 * ten seconds). Each field is a comma-separated list of
 *   *            every value
 *   N            one value
 *   A-B          a range (A <= B)
 *   X/S          steps of S from X's start: "*\/15", "10-50/20", "5/10"
 *                (N/S is N to the field's end by S)
 * with the ranges second 0-59, minute 0-59, hour 0-23, day 1-31, month
 * 1-12 or jan..dec, day-of-week 0-7 or sun..sat (0 and 7 are Sunday);
 * names in any case. The macros @yearly (@annually), @monthly, @weekly,
 * @daily (@midnight) and @hourly stand for their 5-field forms. As in
 * Vixie cron, when both the day of the month and the day of the week are
 * restricted (neither is "*"), a day matching either fires.
 *
 * Times are UTC. At most 128 bytes; whitespace between fields is spaces or
 * tabs. Threads: any. */
#ifndef AOS_CRON_H
#define AOS_CRON_H

#include <stdint.h>

#include "err/err.h"

#define AOS_CRON_MAX 128

typedef struct {
    uint64_t second; /* bit s: second s fires */
    uint64_t minute;
    uint32_t hour;
    uint32_t dom;   /* bit d (1..31) */
    uint16_t month; /* bit m (1..12) */
    uint8_t dow;    /* bit d (0..6, Sunday 0) */
    uint8_t dom_star, dow_star;
} aos_cron_t;

/* Parses text (NUL-terminated). 0, or AOS_EINVAL with err naming the
 * field and what is wrong. */
int aos_cron_parse(const char *text, aos_cron_t *out, aos_err_t *err);

/* The first time after after_ms (Unix ms, UTC) at which c fires, in Unix
 * ms (a whole second); -1 when there is none within 5 years (a day that
 * never comes, "0 0 30 2 *"). */
int64_t aos_cron_next(const aos_cron_t *c, int64_t after_ms);

#endif
