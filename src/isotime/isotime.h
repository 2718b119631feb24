/* isotime.h - the one reader and writer of the times AOS stores and
 * accepts: RFC 3339 / ISO-8601 in UTC, "2026-12-07T10:00:00.123Z".
 *
 * Writing: always the store's form, 24 characters with milliseconds and
 * 'Z', so that stored times sort as text. Reading: any RFC 3339 time -
 * 'T', 't' or ' ' between date and time, fraction digits (kept to the
 * millisecond, cut, not rounded), 'Z'/'z' or a "+hh:mm"/"-hh:mm"
 * offset, a leap second read as :59 so the order holds - and, when the
 * caller allows it, a bare date ("2026-12-07" = its midnight UTC). Every
 * field is range-checked (February 30th is refused), nothing is read past
 * the string, and a time before 1970 or after 9999 is refused.
 *
 * Pure: no state, no allocation; threads: any. Fuzzed by
 * tests/fuzz/fuzz_isotime.c. */
#ifndef AOS_ISOTIME_H
#define AOS_ISOTIME_H

#include <stdint.h>

#define AOS_ISOTIME_LEN 24 /* "YYYY-MM-DDTHH:MM:SS.mmmZ" without its NUL */

enum {
    AOS_ISOTIME_DATE_OK = 1, /* a bare date is midnight UTC of that day */
};

/* Reads s (NUL-terminated; NULL is refused) into Unix milliseconds.
 * Returns 0, or AOS_EINVAL with *ms untouched. */
int aos_isotime_parse(const char *s, unsigned flags, int64_t *ms);

/* Writes ms (Unix milliseconds; clamped to 1970..9999) as the store's form
 * into out, which holds at least 32 bytes. */
void aos_isotime_fmt(int64_t ms, char out[32]);

/* The proleptic Gregorian calendar (H. Hinnant's algorithms): days since
 * 1970-01-01 of year y, month m (1-12), day d, and back. */
int64_t aos_isotime_days_from_civil(int64_t y, int m, int d);
void aos_isotime_civil_from_days(int64_t days, int64_t *y, int *m, int *d);

/* The wall clock (CLOCK_REALTIME) in Unix milliseconds, and as text. */
int64_t aos_isotime_now_ms(void);
void aos_isotime_now(char out[32]);

#endif
