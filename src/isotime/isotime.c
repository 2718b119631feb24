/* isotime.c - RFC 3339 in and out (see isotime.h).
 *
 * The reader walks the text once with a cursor: fixed-width digit fields,
 * separators checked one by one, then the fraction and the zone. The
 * calendar arithmetic is days_from_civil (H. Hinnant's algorithm), so
 * neither the process's time zone nor timegm's range matter. */
#include "isotime/isotime.h"

#include <string.h>
#include <time.h>

#include "err/err.h"

#define MS_MAX 253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* n digits at *p as a number, the cursor moved past them; -1 if any of
 * them is not a digit (a NUL included, so the end is never passed). */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        char c = (*p)[i];
        if (c < '0' || c > '9')
            return -1;
        v = v * 10 + (c - '0');
    }
    *p += n;
    return v;
}

static int leap(int y)
{
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && leap(y) ? 29 : d[m - 1];
}

int64_t aos_isotime_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int aos_isotime_parse(const char *s, unsigned flags, int64_t *ms)
{
    if (!s)
        return AOS_EINVAL;
    const char *p = s;
    int y = digits(&p, 4), mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0;
    if (y < 1970 || *p++ != '-' || (mo = digits(&p, 2)) < 1 || mo > 12 || *p++ != '-' ||
        (d = digits(&p, 2)) < 1 || d > days_in_month(y, mo))
        return AOS_EINVAL;
    if (*p || !(flags & AOS_ISOTIME_DATE_OK)) {
        if (*p != 'T' && *p != 't' && *p != ' ')
            return AOS_EINVAL;
        p++;
        if ((h = digits(&p, 2)) < 0 || h > 23 || *p++ != ':' || (mi = digits(&p, 2)) < 0 ||
            mi > 59 || *p++ != ':' || (sec = digits(&p, 2)) < 0 || sec > 60)
            return AOS_EINVAL;
        if (sec == 60)
            sec = 59; /* a leap second: keep the order, lose the second */
        if (*p == '.') {
            p++;
            int n = 0;
            for (; *p >= '0' && *p <= '9'; p++, n++)
                if (n < 3)
                    frac = frac * 10 + (*p - '0');
            if (n == 0)
                return AOS_EINVAL;
            for (; n < 3; n++)
                frac *= 10;
        }
        if (*p == 'Z' || *p == 'z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1;
            int oh = digits(&p, 2);
            if (oh < 0 || oh > 23 || *p++ != ':')
                return AOS_EINVAL;
            int om = digits(&p, 2);
            if (om < 0 || om > 59)
                return AOS_EINVAL;
            off = sign * (oh * 60 + om);
        } else {
            return AOS_EINVAL;
        }
        if (*p)
            return AOS_EINVAL;
    }
    int64_t secs =
        aos_isotime_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60;
    int64_t v = secs * 1000 + frac;
    if (v < 0 || v > MS_MAX)
        return AOS_EINVAL;
    *ms = v;
    return 0;
}

void aos_isotime_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

/* v as n decimal digits at p (leading zeros). */
static void put_digits(char *p, unsigned v, int n)
{
    for (int i = n - 1; i >= 0; i--) {
        p[i] = (char)('0' + v % 10);
        v /= 10;
    }
}

void aos_isotime_fmt(int64_t ms, char out[32])
{
    if (ms < 0)
        ms = 0;
    if (ms > MS_MAX)
        ms = MS_MAX;
    /* by hand, not gmtime_r and snprintf: a task's run stamps a few dozen
     * times (rows, events, spans), ~3,500 instructions each that way */
    int64_t secs = ms / 1000, days = secs / 86400;
    unsigned sod = (unsigned)(secs % 86400);
    int64_t y;
    int mo, d;
    aos_isotime_civil_from_days(days, &y, &mo, &d);
    /* 1970..9999: every field has its width */
    memcpy(out, "0000-00-00T00:00:00.000Z", 25);
    put_digits(out, (unsigned)y, 4);
    put_digits(out + 5, (unsigned)mo, 2);
    put_digits(out + 8, (unsigned)d, 2);
    put_digits(out + 11, sod / 3600, 2);
    put_digits(out + 14, sod / 60 % 60, 2);
    put_digits(out + 17, sod % 60, 2);
    put_digits(out + 20, (unsigned)(ms % 1000), 3);
}

int64_t aos_isotime_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void aos_isotime_now(char out[32])
{
    aos_isotime_fmt(aos_isotime_now_ms(), out);
}
