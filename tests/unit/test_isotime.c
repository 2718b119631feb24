/* test_isotime.c - RFC 3339 in and out (src/isotime): the forms accepted,
 * the ones refused, offsets, leap years and seconds, the range, and that
 * the process's time zone plays no part. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err/err.h"
#include "isotime/isotime.h"

/* s read and written back in the store's form; "" when refused. */
static const char *norm(const char *s, unsigned flags)
{
    static char out[32];
    int64_t ms;
    if (aos_isotime_parse(s, flags, &ms) != 0)
        return "";
    aos_isotime_fmt(ms, out);
    return out;
}

static void test_forms(void **state)
{
    (void)state;
    assert_string_equal(norm("2026-12-07T10:00:00.123Z", 0), "2026-12-07T10:00:00.123Z");
    assert_string_equal(norm("2026-12-07t10:00:00z", 0), "2026-12-07T10:00:00.000Z");
    assert_string_equal(norm("2026-12-07 10:00:00Z", 0), "2026-12-07T10:00:00.000Z");
    assert_string_equal(norm("2026-12-07T10:00:00.5Z", 0), "2026-12-07T10:00:00.500Z");
    /* more digits than milliseconds: cut, not rounded */
    assert_string_equal(norm("2026-12-07T10:00:00.123999999Z", 0), "2026-12-07T10:00:00.123Z");
    assert_string_equal(norm("2026-12-07T10:00:00+08:00", 0), "2026-12-07T02:00:00.000Z");
    assert_string_equal(norm("2026-12-07T02:00:00-05:30", 0), "2026-12-07T07:30:00.000Z");
    assert_string_equal(norm("2027-01-01T01:00:00+02:00", 0), "2026-12-31T23:00:00.000Z");
    assert_string_equal(norm("1970-01-01T00:00:00Z", 0), "1970-01-01T00:00:00.000Z");
    assert_string_equal(norm("9999-12-31T23:59:59.999Z", 0), "9999-12-31T23:59:59.999Z");
    /* a leap second keeps the order */
    assert_string_equal(norm("2016-12-31T23:59:60Z", 0), "2016-12-31T23:59:59.000Z");
    /* leap years */
    assert_string_equal(norm("2024-02-29T00:00:00Z", 0), "2024-02-29T00:00:00.000Z");
    assert_string_equal(norm("2000-02-29T00:00:00Z", 0), "2000-02-29T00:00:00.000Z");
    assert_string_equal(norm("1900-02-29T00:00:00Z", 0), "");
    assert_string_equal(norm("2100-02-29T00:00:00Z", 0), "");
    assert_string_equal(norm("2023-02-29T00:00:00Z", 0), "");
}

static void test_dates(void **state)
{
    (void)state;
    assert_string_equal(norm("2026-12-07", AOS_ISOTIME_DATE_OK), "2026-12-07T00:00:00.000Z");
    assert_string_equal(norm("2026-12-07", 0), "");
    assert_string_equal(norm("2026-12-07T10:00:00Z", AOS_ISOTIME_DATE_OK),
                        "2026-12-07T10:00:00.000Z");
    assert_string_equal(norm("2026-12-07T", AOS_ISOTIME_DATE_OK), "");
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "2026",
        "2026-12-07T10:00:00",      /* no zone */
        "2026-12-07T10:00Z",        /* no seconds */
        "2026-12-07T10:00:00.Z",    /* a dot with no digits */
        "2026-12-07T24:00:00Z",     /* hour */
        "2026-12-07T10:60:00Z",     /* minute */
        "2026-12-07T10:00:61Z",     /* second */
        "2026-13-07T10:00:00Z",     /* month */
        "2026-00-07T10:00:00Z",     /* month */
        "2026-11-31T10:00:00Z",     /* day */
        "2026-12-00T10:00:00Z",     /* day */
        "2026-12-7T10:00:00Z",      /* one digit */
        "2026-12-07T10:00:00+0800", /* offset without a colon */
        "2026-12-07T10:00:00+24:00",
        "2026-12-07T10:00:00+08:60",
        "2026-12-07T10:00:00Zjunk",
        "1969-12-31T23:59:59Z",
        "1970-01-01T00:00:00+00:01", /* before 1970 after the offset */
        "-002-01-01T00:00:00Z",
        "+2026-12-07T10:00:00Z",
        " 2026-12-07T10:00:00Z",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 42;
        if (aos_isotime_parse(bad[i], AOS_ISOTIME_DATE_OK, &ms) != AOS_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_int_equal(ms, 42); /* untouched */
    }
    int64_t ms = 42;
    assert_int_equal(aos_isotime_parse(NULL, 0, &ms), AOS_EINVAL);
}

static void test_fmt(void **state)
{
    (void)state;
    char out[32];
    aos_isotime_fmt(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    aos_isotime_fmt(1765101600123LL, out);
    assert_string_equal(out, "2025-12-07T10:00:00.123Z");
    aos_isotime_fmt(-5, out); /* clamped */
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    aos_isotime_fmt(INT64_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    int64_t ms;
    assert_int_equal(aos_isotime_parse("2025-12-07T10:00:00.123Z", 0, &ms), 0);
    assert_int_equal(ms, 1765101600123LL);
    aos_isotime_fmt(951782400000LL, out); /* 2000 is a leap year */
    assert_string_equal(out, "2000-02-29T00:00:00.000Z");
    aos_isotime_fmt(4107542399999LL, out); /* 2100 is not */
    assert_string_equal(out, "2100-02-28T23:59:59.999Z");
    /* the same text as gmtime_r and the calendar's fields, across the range */
    uint64_t x = 88172645463325252ULL;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ms = (int64_t)(x % 253402300800000ULL);
        if (i % 4 == 0) /* around midnight and the turn of a year */
            ms -= ms % 86400000 + (i % 8 ? 1 : 0);
        if (ms < 0)
            ms = 0;
        time_t secs = (time_t)(ms / 1000);
        struct tm tm;
        char want[64];
        assert_non_null(gmtime_r(&secs, &tm));
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
        aos_isotime_fmt(ms, out);
        assert_string_equal(out, want);
    }
}

static void test_now(void **state)
{
    (void)state;
    int64_t before = (int64_t)time(NULL) * 1000;
    char out[32];
    aos_isotime_now(out);
    int64_t ms;
    assert_int_equal(strlen(out), AOS_ISOTIME_LEN);
    assert_int_equal(aos_isotime_parse(out, 0, &ms), 0);
    assert_true(ms >= before && ms < before + 60000);
    assert_true(aos_isotime_now_ms() >= ms);
}

int main(void)
{
    /* the process's zone must not matter: run far from UTC */
    setenv("TZ", "Pacific/Kiritimati", 1);
    tzset();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forms), cmocka_unit_test(test_dates), cmocka_unit_test(test_refused),
        cmocka_unit_test(test_fmt),   cmocka_unit_test(test_now),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
