/* test_nettools.c - the SSRF check of the built-in "http" server: the
 * address classifier on every range it knows (both edges of each), the
 * IPv6 forms that embed an IPv4 address, the sockaddr entry point, and the
 * host allow list (exact, suffix, wildcard, case, trailing dot, literals). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <string.h>

#include "tools/net.h"

static aos_addr_class_t c4(const char *s)
{
    uint8_t a[4];
    if (inet_pton(AF_INET, s, a) != 1)
        fail_msg("bad IPv4 literal %s", s);
    return aos_tools_addr_class4(a);
}

static aos_addr_class_t c6(const char *s)
{
    uint8_t a[16];
    if (inet_pton(AF_INET6, s, a) != 1)
        fail_msg("bad IPv6 literal %s", s);
    return aos_tools_addr_class6(a);
}

#define EXPECT4(addr, cls)                                                                         \
    do {                                                                                           \
        if (c4(addr) != (cls))                                                                     \
            fail_msg("%s: got %s, want %s", addr, aos_tools_addr_class_name(c4(addr)),             \
                     aos_tools_addr_class_name(cls));                                              \
    } while (0)
#define EXPECT6(addr, cls)                                                                         \
    do {                                                                                           \
        if (c6(addr) != (cls))                                                                     \
            fail_msg("%s: got %s, want %s", addr, aos_tools_addr_class_name(c6(addr)),             \
                     aos_tools_addr_class_name(cls));                                              \
    } while (0)

static void test_ipv4(void **state)
{
    (void)state;
    EXPECT4("0.0.0.0", AOS_ADDR_UNSPECIFIED);
    EXPECT4("0.255.255.255", AOS_ADDR_UNSPECIFIED);
    EXPECT4("1.0.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("9.255.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("10.0.0.0", AOS_ADDR_PRIVATE);
    EXPECT4("10.255.255.255", AOS_ADDR_PRIVATE);
    EXPECT4("11.0.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("100.63.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("100.64.0.0", AOS_ADDR_CGNAT);
    EXPECT4("100.127.255.255", AOS_ADDR_CGNAT);
    EXPECT4("100.128.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("126.255.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("127.0.0.0", AOS_ADDR_LOOPBACK);
    EXPECT4("127.0.0.1", AOS_ADDR_LOOPBACK);
    EXPECT4("127.255.255.255", AOS_ADDR_LOOPBACK);
    EXPECT4("128.0.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("169.253.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("169.254.0.0", AOS_ADDR_LINK_LOCAL);
    EXPECT4("169.254.169.254", AOS_ADDR_LINK_LOCAL); /* cloud metadata */
    EXPECT4("169.254.255.255", AOS_ADDR_LINK_LOCAL);
    EXPECT4("169.255.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("172.15.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("172.16.0.0", AOS_ADDR_PRIVATE);
    EXPECT4("172.31.255.255", AOS_ADDR_PRIVATE);
    EXPECT4("172.32.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("192.0.0.0", AOS_ADDR_RESERVED);
    EXPECT4("192.0.0.255", AOS_ADDR_RESERVED);
    EXPECT4("192.0.1.0", AOS_ADDR_PUBLIC);
    EXPECT4("192.0.2.1", AOS_ADDR_RESERVED);
    EXPECT4("192.88.99.1", AOS_ADDR_RESERVED);
    EXPECT4("192.167.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("192.168.0.0", AOS_ADDR_PRIVATE);
    EXPECT4("192.168.255.255", AOS_ADDR_PRIVATE);
    EXPECT4("192.169.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("198.17.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("198.18.0.0", AOS_ADDR_RESERVED);
    EXPECT4("198.19.255.255", AOS_ADDR_RESERVED);
    EXPECT4("198.20.0.0", AOS_ADDR_PUBLIC);
    EXPECT4("198.51.100.7", AOS_ADDR_RESERVED);
    EXPECT4("203.0.113.7", AOS_ADDR_RESERVED);
    EXPECT4("203.0.114.7", AOS_ADDR_PUBLIC);
    EXPECT4("8.8.8.8", AOS_ADDR_PUBLIC);
    EXPECT4("223.255.255.255", AOS_ADDR_PUBLIC);
    EXPECT4("224.0.0.0", AOS_ADDR_MULTICAST);
    EXPECT4("239.255.255.255", AOS_ADDR_MULTICAST);
    EXPECT4("240.0.0.0", AOS_ADDR_RESERVED);
    EXPECT4("255.255.255.255", AOS_ADDR_RESERVED);
}

static void test_ipv6(void **state)
{
    (void)state;
    EXPECT6("::", AOS_ADDR_UNSPECIFIED);
    EXPECT6("::1", AOS_ADDR_LOOPBACK);
    EXPECT6("0:0:0:0:0:0:0:1", AOS_ADDR_LOOPBACK);
    EXPECT6("::2", AOS_ADDR_UNSPECIFIED); /* ::0.0.0.2, "this network" */
    /* IPv4-mapped: refused whatever it maps to */
    EXPECT6("::ffff:127.0.0.1", AOS_ADDR_MAPPED);
    EXPECT6("::ffff:7f00:1", AOS_ADDR_MAPPED);
    EXPECT6("::ffff:8.8.8.8", AOS_ADDR_MAPPED);
    EXPECT6("::ffff:0.0.0.0", AOS_ADDR_MAPPED);
    EXPECT6("::fffe:8.8.8.8", AOS_ADDR_RESERVED); /* not mapped: outside 2000::/3 */
    /* IPv4-compatible, NAT64, 6to4: the embedded address decides */
    EXPECT6("::127.0.0.1", AOS_ADDR_LOOPBACK);
    EXPECT6("::10.1.2.3", AOS_ADDR_PRIVATE);
    EXPECT6("::8.8.8.8", AOS_ADDR_PUBLIC);
    EXPECT6("64:ff9b::127.0.0.1", AOS_ADDR_LOOPBACK);
    EXPECT6("64:ff9b::169.254.169.254", AOS_ADDR_LINK_LOCAL);
    EXPECT6("64:ff9b::8.8.8.8", AOS_ADDR_PUBLIC);
    EXPECT6("64:ff9b:1::1", AOS_ADDR_PRIVATE);
    EXPECT6("2002:7f00:1::", AOS_ADDR_LOOPBACK);
    EXPECT6("2002:c0a8:101::1", AOS_ADDR_PRIVATE);
    EXPECT6("2002:808:808::1", AOS_ADDR_PUBLIC);
    /* the IPv6 ranges */
    EXPECT6("fe80::1", AOS_ADDR_LINK_LOCAL);
    EXPECT6("febf:ffff::1", AOS_ADDR_LINK_LOCAL);
    EXPECT6("fec0::1", AOS_ADDR_PRIVATE);
    EXPECT6("fc00::1", AOS_ADDR_PRIVATE);
    EXPECT6("fdff:ffff::1", AOS_ADDR_PRIVATE);
    EXPECT6("ff02::1", AOS_ADDR_MULTICAST);
    EXPECT6("ff0e::1", AOS_ADDR_MULTICAST);
    EXPECT6("2001:db8::1", AOS_ADDR_RESERVED);
    EXPECT6("2001::1", AOS_ADDR_RESERVED); /* Teredo */
    EXPECT6("100::1", AOS_ADDR_RESERVED);
    EXPECT6("4000::1", AOS_ADDR_RESERVED);
    EXPECT6("2001:4860:4860::8888", AOS_ADDR_PUBLIC);
    EXPECT6("2a00:1450:4001::1", AOS_ADDR_PUBLIC);
    EXPECT6("3fff:ffff::1", AOS_ADDR_PUBLIC);
}

static void test_sockaddr(void **state)
{
    (void)state;
    struct sockaddr_in in = {.sin_family = AF_INET};
    inet_pton(AF_INET, "127.0.0.1", &in.sin_addr);
    assert_int_equal(aos_tools_addr_class((struct sockaddr *)&in, sizeof(in)), AOS_ADDR_LOOPBACK);
    inet_pton(AF_INET, "93.184.216.34", &in.sin_addr);
    assert_int_equal(aos_tools_addr_class((struct sockaddr *)&in, sizeof(in)), AOS_ADDR_PUBLIC);
    /* a short length is never trusted */
    assert_int_equal(aos_tools_addr_class((struct sockaddr *)&in, 4), AOS_ADDR_RESERVED);
    struct sockaddr_in6 in6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "::ffff:93.184.216.34", &in6.sin6_addr);
    assert_int_equal(aos_tools_addr_class((struct sockaddr *)&in6, sizeof(in6)), AOS_ADDR_MAPPED);
    inet_pton(AF_INET6, "::1", &in6.sin6_addr);
    assert_int_equal(aos_tools_addr_class((struct sockaddr *)&in6, sizeof(in6)), AOS_ADDR_LOOPBACK);
    struct sockaddr un = {.sa_family = AF_UNIX};
    assert_int_equal(aos_tools_addr_class(&un, sizeof(un)), AOS_ADDR_RESERVED);
    assert_int_equal(aos_tools_addr_class(NULL, 0), AOS_ADDR_RESERVED);
    for (int k = AOS_ADDR_PUBLIC; k <= AOS_ADDR_RESERVED; k++)
        assert_non_null(aos_tools_addr_class_name((aos_addr_class_t)k));
}

static void test_hosts(void **state)
{
    (void)state;
    json_t *allow = json_pack("[s,s,s,s,s,s]", "example.com", ".example.org", "*.corp.test",
                              "127.0.0.1", "[::1]", "Mixed.Case.NET.");
    /* exact */
    assert_true(aos_tools_host_allowed(allow, "example.com"));
    assert_true(aos_tools_host_allowed(allow, "EXAMPLE.com"));
    assert_true(aos_tools_host_allowed(allow, "example.com."));
    assert_false(aos_tools_host_allowed(allow, "www.example.com"));
    assert_false(aos_tools_host_allowed(allow, "example.com.evil.net"));
    assert_false(aos_tools_host_allowed(allow, "evilexample.com"));
    assert_true(aos_tools_host_allowed(allow, "mixed.case.net"));
    /* suffix: names below it only */
    assert_true(aos_tools_host_allowed(allow, "a.example.org"));
    assert_true(aos_tools_host_allowed(allow, "a.b.example.org"));
    assert_false(aos_tools_host_allowed(allow, "example.org"));
    assert_false(aos_tools_host_allowed(allow, "badexample.org"));
    assert_false(aos_tools_host_allowed(allow, ".example.org"));
    assert_true(aos_tools_host_allowed(allow, "x.corp.test"));
    assert_false(aos_tools_host_allowed(allow, "corp.test"));
    /* literals: exact entries only */
    assert_true(aos_tools_host_allowed(allow, "127.0.0.1"));
    assert_false(aos_tools_host_allowed(allow, "127.0.0.2"));
    assert_true(aos_tools_host_allowed(allow, "[::1]"));
    assert_true(aos_tools_host_allowed(allow, "::1"));
    assert_false(aos_tools_host_allowed(allow, "[::2]"));
    /* junk */
    assert_false(aos_tools_host_allowed(allow, ""));
    assert_false(aos_tools_host_allowed(allow, NULL));
    assert_false(aos_tools_host_allowed(allow, "."));
    assert_false(aos_tools_host_allowed(allow, "exa mple.com"));
    assert_false(aos_tools_host_allowed(allow, "user@example.com"));
    assert_false(aos_tools_host_allowed(allow, "example.com/x"));
    /* percent-encoded: never matched, whatever it decodes to */
    assert_false(aos_tools_host_allowed(allow, "%65xample.com"));
    assert_false(aos_tools_host_allowed(allow, "evil.com%2f.example.org"));
    assert_false(aos_tools_host_allowed(allow, "[fe80::1%25eth0]"));
    json_decref(allow);

    json_t *none = json_array();
    assert_false(aos_tools_host_allowed(none, "example.com"));
    json_decref(none);
    json_t *any = json_pack("[i, s]", 3, "*");
    assert_true(aos_tools_host_allowed(any, "anything.at.all"));
    assert_true(aos_tools_host_allowed(any, "10.0.0.1")); /* the address check still applies */
    assert_false(aos_tools_host_allowed(any, ""));
    json_decref(any);
    /* a suffix never matches an IPv6 literal */
    json_t *sfx = json_pack("[s]", ".1");
    assert_false(aos_tools_host_allowed(sfx, "[::1]"));
    assert_true(aos_tools_host_allowed(sfx, "a.1"));
    json_decref(sfx);
    /* an over-long host or pattern is refused, not truncated into a match */
    char long_host[400];
    memset(long_host, 'a', sizeof(long_host) - 1);
    long_host[sizeof(long_host) - 1] = '\0';
    json_t *l = json_pack("[s]", long_host);
    assert_false(aos_tools_host_allowed(l, long_host));
    json_decref(l);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_sockaddr),
        cmocka_unit_test(test_hosts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
