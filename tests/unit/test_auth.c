/* test_auth.c - the scrape allow list of /metrics (issue 12, item 4):
 * which address ranges parse, which peer addresses they admit (IPv4,
 * IPv6, IPv4 reached over IPv6), and that a bad list changes nothing. The
 * authorizer itself is exercised end to end (tests/e2e/rest.test.mjs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    aos_store_t *st;
    aos_auth_t *auth;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char url[128];
    aos_err_t err = {0, ""};
    if (!f || aos_test_mkdtemp(f->dir, sizeof(f->dir), "auth"))
        return -1;
    snprintf(url, sizeof(url), "sqlite:%s/aos.db", f->dir);
    if (aos_store_open(&f->st, NULL, url, &err) || aos_auth_new(&f->auth, f->st, 0, &err)) {
        fprintf(stderr, "setup: %s\n", aos_err_msg(&err));
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_auth_free(f->auth);
    aos_store_close(f->st);
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static void test_scrape_list_syntax(void **state)
{
    (void)state;
    static const char *const good[] = {
        "",         "127.0.0.1", "127.0.0.1/8", " 10.0.0.0/8 , ::1 ", "::1/128",
        "fd00::/8", "0.0.0.0/0", "::/0",        "10.1.2.3/32",        "::ffff:10.0.0.0/104",
    };
    static const char *const bad[] = {
        "127.0.0.1/33",   "::1/129",     "1.2.3",
        "localhost",      "127.0.0.1/",  "/8",
        "127.0.0.1/8x",   "10.0.0.0/-1", "10.0.0.0/0008",
        "127.0.0.1,nope", "1.2.3.4 5",   "::ffff:10.0.0.0/95",
    };
    aos_err_t err = {0, ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (aos_auth_scrape_list_check(good[i], &err))
            fail_msg("'%s' refused: %s", good[i], aos_err_msg(&err));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (aos_auth_scrape_list_check(bad[i], &err) != AOS_EINVAL)
            fail_msg("'%s' taken", bad[i]);
        assert_non_null(strstr(aos_err_msg(&err), "is not an address or a range"));
    }
}

static void test_scrape_matches(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0, ""};
    /* nothing is allowed until a list is set */
    assert_false(aos_auth_may_scrape(f->auth, "127.0.0.1"));
    assert_int_equal(
        aos_auth_allow_scrape(f->auth, "127.0.0.1/8,10.1.0.0/16,::1,fd00::/8,192.0.2.7", &err), 0);
    static const struct {
        const char *addr;
        int want;
    } cases[] = {
        {"127.0.0.1", 1},
        {"127.255.255.255", 1},
        {"128.0.0.1", 0},
        {"126.255.255.255", 0},
        {"10.1.0.0", 1},
        {"10.1.255.255", 1},
        {"10.2.0.0", 0},
        {"10.0.255.255", 0},
        {"192.0.2.7", 1},
        {"192.0.2.8", 0},
        {"::1", 1},
        {"::2", 0},
        {"fd12:3456::1", 1},
        {"fe80::1", 0},
        {"::ffff:127.0.0.1", 1}, /* IPv4 over an IPv6 socket */
        {"::ffff:11.0.0.1", 0},
        {"", 0},
        {"not an address", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (aos_auth_may_scrape(f->auth, cases[i].addr) != cases[i].want)
            fail_msg("%s: expected %d", cases[i].addr, cases[i].want);
    assert_false(aos_auth_may_scrape(f->auth, NULL));

    /* a bad list is refused and the old one stays */
    assert_int_equal(aos_auth_allow_scrape(f->auth, "10.0.0.0/8,bogus", &err), AOS_EINVAL);
    assert_true(aos_auth_may_scrape(f->auth, "127.0.0.1"));
    assert_false(aos_auth_may_scrape(f->auth, "10.9.0.1"));
    /* prefix lengths that are not a multiple of 8; everything; nothing */
    assert_int_equal(aos_auth_allow_scrape(f->auth, "172.16.0.0/12", &err), 0);
    assert_true(aos_auth_may_scrape(f->auth, "172.31.255.255"));
    assert_false(aos_auth_may_scrape(f->auth, "172.32.0.0"));
    assert_false(aos_auth_may_scrape(f->auth, "127.0.0.1"));
    assert_int_equal(aos_auth_allow_scrape(f->auth, "::ffff:10.0.0.0/104", &err), 0);
    assert_true(aos_auth_may_scrape(f->auth, "10.200.0.1"));
    assert_true(aos_auth_may_scrape(f->auth, "::ffff:10.200.0.1"));
    assert_false(aos_auth_may_scrape(f->auth, "11.0.0.1"));
    assert_int_equal(aos_auth_allow_scrape(f->auth, "0.0.0.0/0", &err), 0);
    assert_true(aos_auth_may_scrape(f->auth, "203.0.113.9"));
    assert_false(aos_auth_may_scrape(f->auth, "::1"));
    assert_int_equal(aos_auth_allow_scrape(f->auth, "", &err), 0);
    assert_false(aos_auth_may_scrape(f->auth, "203.0.113.9"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrape_list_syntax),
        cmocka_unit_test_setup_teardown(test_scrape_matches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
