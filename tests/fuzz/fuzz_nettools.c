/* fuzz_nettools.c - the SSRF checks of the built-in "http" server
 * (src/tools/http.c). The first byte picks what is fed:
 *  - even: 16 bytes as an IPv6 address and 4 as an IPv4 one. Checked: the
 *    sockaddr entry point agrees with the raw classifiers, an IPv4-mapped
 *    address is always AOS_ADDR_MAPPED, the NAT64 and 6to4 forms take the
 *    class of the IPv4 address they embed, and every class has a name;
 *  - odd: "pattern\nhost" to the host allow list. Checked: the answer does
 *    not depend on the host's case or on one trailing dot, a suffix pattern
 *    never matches the bare domain, and a pattern always matches itself
 *    when it is a plain host that matches anything at all. */
#include <arpa/inet.h>
#include <jansson.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tools/net.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void addresses(const uint8_t *d, size_t n)
{
    uint8_t a6[16] = {0}, a4[4] = {0};
    memcpy(a6, d, n < 16 ? n : 16);
    if (n > 16)
        memcpy(a4, d + 16, n - 16 < 4 ? n - 16 : 4);
    aos_addr_class_t k6 = aos_tools_addr_class6(a6), k4 = aos_tools_addr_class4(a4);
    if (!aos_tools_addr_class_name(k6) || !aos_tools_addr_class_name(k4))
        abort();
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6};
    memcpy(s6.sin6_addr.s6_addr, a6, 16);
    if (aos_tools_addr_class((struct sockaddr *)&s6, sizeof(s6)) != k6)
        abort();
    struct sockaddr_in s4 = {.sin_family = AF_INET};
    memcpy(&s4.sin_addr, a4, 4);
    if (aos_tools_addr_class((struct sockaddr *)&s4, sizeof(s4)) != k4)
        abort();
    /* ::ffff:a.b.c.d, whatever a.b.c.d */
    uint8_t m[16] = {0};
    m[10] = m[11] = 0xff;
    memcpy(m + 12, a4, 4);
    if (aos_tools_addr_class6(m) != AOS_ADDR_MAPPED)
        abort();
    /* 64:ff9b::a.b.c.d and 2002:AABB:CCDD:: */
    uint8_t nat64[16] = {0x00, 0x64, 0xff, 0x9b};
    memcpy(nat64 + 12, a4, 4);
    if (aos_tools_addr_class6(nat64) != k4)
        abort();
    uint8_t six[16] = {0x20, 0x02};
    memcpy(six + 2, a4, 4);
    memcpy(six + 6, a6 + 6, 10);
    if (aos_tools_addr_class6(six) != k4)
        abort();
}

static int allowed(const char *pattern, const char *host)
{
    json_t *a = json_pack("[s]", pattern);
    if (!a)
        return -1;
    int r = aos_tools_host_allowed(a, host);
    json_decref(a);
    if (r != 0 && r != 1)
        abort();
    return r;
}

static void hosts(const uint8_t *d, size_t n)
{
    char *buf = malloc(n + 3);
    if (!buf)
        return;
    memcpy(buf, d, n);
    buf[n] = '\0';
    if (strlen(buf) != n) { /* a NUL inside: not a string of the API */
        free(buf);
        return;
    }
    char *host = strchr(buf, '\n');
    if (!host) {
        free(buf);
        return;
    }
    *host++ = '\0';
    const char *pattern = buf;
    int r = allowed(pattern, host);
    if (r < 0) { /* not UTF-8: jansson refused the pattern */
        free(buf);
        return;
    }
    size_t hl = strlen(host);
    char *upper = strdup(host);
    if (upper) {
        for (char *p = upper; *p; p++)
            if (*p >= 'a' && *p <= 'z')
                *p = (char)(*p - 32);
        if (allowed(pattern, upper) != r)
            abort();
        free(upper);
    }
    if (hl > 0 && host[hl - 1] != '.' && host[0] != '[') {
        host[hl] = '.';
        host[hl + 1] = '\0';
        if (allowed(pattern, host) != r)
            abort();
        host[hl] = '\0';
    }
    /* ".example.org" never matches "example.org" */
    if (pattern[0] == '.' && allowed(pattern, pattern + 1) == 1)
        abort();
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    if (data[0] & 1)
        hosts(data + 1, size - 1);
    else
        addresses(data + 1, size - 1);
    return 0;
}
