/* test_cidr.c - address ranges (src/cidr): parsing, matching, lists, and
 * the IPv4-mapped form of IPv4 addresses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "cidr/cidr.h"

static int in(const char *list, const char *addr)
{
    aos_cidr_list_t l;
    aos_err_t err = {0, ""};
    if (aos_cidr_list_parse(list, &l, &err))
        fail_msg("'%s': %s", list, aos_err_msg(&err));
    int r = aos_cidr_list_match(&l, addr);
    aos_cidr_list_release(&l);
    return r;
}

static int parses(const char *t)
{
    aos_cidr_t c;
    return aos_cidr_parse(t, strlen(t), &c) == 0;
}

static void test_match_v4(void **state)
{
    (void)state;
    assert_true(in("10.0.0.0/8", "10.255.1.2"));
    assert_false(in("10.0.0.0/8", "11.0.0.0"));
    assert_true(in("192.168.1.7", "192.168.1.7"));
    assert_false(in("192.168.1.7", "192.168.1.8"));
    assert_true(in("192.168.1.0/25", "192.168.1.127"));
    assert_false(in("192.168.1.0/25", "192.168.1.128"));
    assert_true(in("10.1.2.3/8", "10.9.9.9")); /* host bits are ignored */
    assert_true(in("0.0.0.0/0", "203.0.113.5"));
    assert_false(in("0.0.0.0/0", "::1")); /* IPv4 ranges hold no IPv6 address */
    assert_true(in("172.16.0.0/12", "172.31.255.255"));
    assert_false(in("172.16.0.0/12", "172.32.0.0"));
}

static void test_match_v6(void **state)
{
    (void)state;
    assert_true(in("::1", "::1"));
    assert_false(in("::1", "::2"));
    assert_true(in("2001:db8::/32", "2001:db8:ffff::1"));
    assert_false(in("2001:db8::/32", "2001:db9::1"));
    assert_true(in("fe80::/10", "febf::1"));
    assert_false(in("fe80::/10", "fec0::1"));
    assert_true(in("::/0", "2001:db8::1"));
    assert_false(in("::/0", "127.0.0.1"));
    assert_true(in("2001:db8::1/127", "2001:db8::0"));
}

/* An IPv4 client of a dual-stack socket shows as ::ffff:a.b.c.d */
static void test_mapped(void **state)
{
    (void)state;
    assert_true(in("127.0.0.1", "::ffff:127.0.0.1"));
    assert_true(in("::ffff:10.0.0.0/104", "10.2.3.4"));
    assert_false(in("::ffff:10.0.0.0/104", "11.2.3.4"));
    assert_false(parses("::ffff:10.0.0.0/95"));
    assert_false(in("::/0", "::ffff:127.0.0.1")); /* it is IPv4 */
}

static void test_parse_errors(void **state)
{
    (void)state;
    const char *bad[] = {"",
                         "/8",
                         "10.0.0.0/",
                         "10.0.0.0/33",
                         "10.0.0.0/-1",
                         "10.0.0.0/a",
                         "10.0.0/8",
                         "1.2.3.4.5",
                         "::1/129",
                         "::1/0128",
                         "10.0.0.0/8/8",
                         "10.0.0.0 /8",
                         "example.com",
                         "fe80::1%eth0",
                         "256.0.0.1",
                         "::g"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (parses(bad[i]))
            fail_msg("'%s' parsed", bad[i]);
    assert_true(parses("10.0.0.0/008") == 1); /* three digits: 8 */
    assert_true(parses("::/0"));
    /* a NUL inside the text is not an address */
    aos_cidr_t c;
    assert_int_equal(aos_cidr_parse("10.0.0.1\0x", 10, &c), -1);
    /* a length shorter than the string: only those bytes */
    assert_int_equal(aos_cidr_parse("10.0.0.1/8junk", 10, &c), 0);
    assert_int_equal(c.bits, 8);
}

static void test_lists(void **state)
{
    (void)state;
    aos_cidr_list_t l;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_cidr_list_parse(" 10.0.0.0/8 , ,::1,", &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_true(aos_cidr_list_match(&l, "::1"));
    assert_false(aos_cidr_list_match(&l, "not an address"));
    assert_false(aos_cidr_list_match(&l, NULL));
    aos_cidr_list_release(&l);
    assert_int_equal(aos_cidr_list_parse("", &l, &err), 0);
    assert_int_equal(l.n, 0);
    assert_false(aos_cidr_list_match(&l, "127.0.0.1")); /* an empty list holds nothing */
    assert_int_equal(aos_cidr_list_parse("10.0.0.0/8,bogus\x01", &l, &err), AOS_EINVAL);
    assert_int_equal(l.n, 0);
    assert_null(l.v);
    assert_non_null(strstr(err.msg, "'bogus?'")); /* control bytes are not echoed */

    json_t *arr = json_pack("[s, s]", "127.0.0.1/8", "2001:db8::/48");
    assert_int_equal(aos_cidr_list_from_json(arr, "security.ip_allowlist", &l, &err), 0);
    assert_int_equal(l.n, 2);
    assert_true(aos_cidr_list_match(&l, "127.8.9.10"));
    aos_cidr_list_release(&l);
    json_array_append_new(arr, json_integer(5));
    assert_int_equal(aos_cidr_list_from_json(arr, "security.ip_allowlist", &l, &err), AOS_EINVAL);
    assert_string_equal(err.msg, "'security.ip_allowlist[2]' must be a string");
    json_array_set_new(arr, 2, json_string("1.2.3.4/40"));
    assert_int_equal(aos_cidr_list_from_json(arr, "security.ip_allowlist", &l, &err), AOS_EINVAL);
    assert_non_null(strstr(err.msg, "'security.ip_allowlist[2]': '1.2.3.4/40'"));
    json_decref(arr);
    json_t *obj = json_object();
    assert_int_equal(aos_cidr_list_from_json(obj, "x", &l, &err), AOS_EINVAL);
    json_decref(obj);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_v4), cmocka_unit_test(test_match_v6),
        cmocka_unit_test(test_mapped),   cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_lists),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
