/* test_cron.c - cron expressions (src/cron): the syntax accepted and
 * refused, and the next firing time across minutes, days, month ends,
 * leap years, the day-of-month / day-of-week rule and seconds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cron/cron.h"
#include "isotime/isotime.h"

static int64_t at(const char *iso)
{
    int64_t ms;
    if (aos_isotime_parse(iso, 0, &ms))
        fail_msg("bad time in test: %s", iso);
    return ms;
}

/* The next firing of expr after the time from, as text ("" if none). */
static const char *next(const char *expr, const char *from)
{
    static char out[32];
    aos_cron_t c;
    aos_err_t err = {0, ""};
    if (aos_cron_parse(expr, &c, &err))
        fail_msg("'%s' refused: %s", expr, aos_err_msg(&err));
    int64_t t = aos_cron_next(&c, at(from));
    if (t < 0)
        return "";
    aos_isotime_fmt(t, out);
    return out;
}

static void test_next(void **state)
{
    (void)state;
    const char *t0 = "2026-12-07T10:17:30.500Z"; /* a Monday */
    assert_string_equal(next("* * * * *", t0), "2026-12-07T10:18:00.000Z");
    assert_string_equal(next("*/15 * * * *", t0), "2026-12-07T10:30:00.000Z");
    assert_string_equal(next("0 * * * *", t0), "2026-12-07T11:00:00.000Z");
    assert_string_equal(next("17 10 * * *", t0), "2026-12-08T10:17:00.000Z"); /* passed today */
    assert_string_equal(next("30 9 * * mon-fri", t0), "2026-12-08T09:30:00.000Z");
    assert_string_equal(next("0 0 * * sat,sun", t0), "2026-12-12T00:00:00.000Z");
    assert_string_equal(next("0 0 * * 7", t0), "2026-12-13T00:00:00.000Z"); /* 7: Sunday */
    assert_string_equal(next("@daily", t0), "2026-12-08T00:00:00.000Z");
    assert_string_equal(next("@hourly", t0), "2026-12-07T11:00:00.000Z");
    assert_string_equal(next("@weekly", t0), "2026-12-13T00:00:00.000Z");
    assert_string_equal(next("@monthly", t0), "2027-01-01T00:00:00.000Z");
    assert_string_equal(next("@YEARLY", t0), "2027-01-01T00:00:00.000Z");
    /* month ends and leap years */
    assert_string_equal(next("0 12 31 * *", t0), "2026-12-31T12:00:00.000Z");
    assert_string_equal(next("0 12 31 * *", "2027-01-31T13:00:00Z"), "2027-03-31T12:00:00.000Z");
    assert_string_equal(next("0 0 29 2 *", t0), "2028-02-29T00:00:00.000Z");
    assert_string_equal(next("0 0 30 2 *", t0), ""); /* never */
    assert_string_equal(next("0 0 1 jan,JUL *", t0), "2027-01-01T00:00:00.000Z");
    /* both days restricted: either fires (Vixie cron) */
    assert_string_equal(next("0 0 1 * fri", t0), "2026-12-11T00:00:00.000Z");
    assert_string_equal(next("0 0 8 * fri", t0), "2026-12-08T00:00:00.000Z");
    /* ranges with steps, lists, N/S */
    assert_string_equal(next("10-50/20 * * * *", t0), "2026-12-07T10:30:00.000Z");
    assert_string_equal(next("5/20 * * * *", t0), "2026-12-07T10:25:00.000Z");
    assert_string_equal(next("1,2,58 * * * *", t0), "2026-12-07T10:58:00.000Z");
    /* six fields: seconds first */
    assert_string_equal(next("*/10 * * * * *", t0), "2026-12-07T10:17:40.000Z");
    assert_string_equal(next("0 * * * * *", t0), "2026-12-07T10:18:00.000Z");
    assert_string_equal(next("* * * * * *", "2026-12-07T10:17:59.999Z"),
                        "2026-12-07T10:18:00.000Z");
    /* the year's end */
    assert_string_equal(next("59 23 31 12 *", "2026-12-31T23:59:00Z"), "2027-12-31T23:59:00.000Z");
}

static void test_refused(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "* * * *",
        "* * * * * * *",
        "60 * * * *",
        "* 24 * * *",
        "* * 0 * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * 0 *",
        "* * * * 8",
        "5-1 * * * *",
        "*/0 * * * *",
        "*/ * * * *",
        "1, * * * *",
        ",1 * * * *",
        "a * * * *",
        "* * * foo *",
        "* * * * mond",
        "1-* * * * *",
        "1000 * * * *",
        "@never",
        "@daily extra",
        "1--2 * * * *",
        "* * * * * 60",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        aos_cron_t c;
        aos_err_t err = {0, ""};
        if (aos_cron_parse(bad[i], &c, &err) != AOS_EINVAL)
            fail_msg("'%s' was accepted", bad[i]);
        assert_true(strlen(aos_err_msg(&err)) > 0);
    }
    aos_cron_t c;
    aos_err_t err = {0, ""};
    char longer[AOS_CRON_MAX + 8];
    memset(longer, '1', sizeof(longer) - 1);
    longer[sizeof(longer) - 1] = '\0';
    assert_int_equal(aos_cron_parse(longer, &c, &err), AOS_EINVAL);
    assert_int_equal(aos_cron_parse(NULL, &c, &err), AOS_EINVAL);
    assert_int_equal(aos_cron_parse(" \t0  12\t* * * ", &c, &err), 0); /* spaces and tabs */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_next),
        cmocka_unit_test(test_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
