/* cidr.c - parsing and matching of address ranges; see cidr.h.
 *
 * inet_pton reads the address (it wants a NUL-terminated string, so the
 * bytes are copied to a bounded buffer first); the prefix is read here,
 * digit by digit. A mapped IPv6 range keeps only its bits past the first
 * 96 and becomes an IPv4 range; a mapped range shorter than /96 is refused
 * (it would be a range of IPv6 addresses, most of them not mapped). */
#include "cidr/cidr.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int aos_cidr_addr_parse(const char *text, size_t len, int *v6, unsigned char addr[16])
{
    char buf[AOS_CIDR_TEXT_MAX];
    if (!text || len == 0 || len >= sizeof(buf) || memchr(text, '\0', len))
        return -1;
    memcpy(buf, text, len);
    buf[len] = '\0';
    memset(addr, 0, 16);
    if (inet_pton(AF_INET, buf, addr) == 1) {
        *v6 = 0;
        return 0;
    }
    if (inet_pton(AF_INET6, buf, addr) != 1)
        return -1;
    if (!memcmp(addr, mapped_prefix, sizeof(mapped_prefix))) {
        memmove(addr, addr + 12, 4);
        memset(addr + 4, 0, 12);
        *v6 = 0;
    } else {
        *v6 = 1;
    }
    return 0;
}

static void clear_host_bits(aos_cidr_t *c)
{
    unsigned whole = c->bits / 8, rest = c->bits % 8;
    if (whole >= 16)
        return;
    if (rest)
        c->addr[whole++] &= (unsigned char)(0xff << (8 - rest));
    memset(c->addr + whole, 0, 16 - whole);
}

int aos_cidr_parse(const char *text, size_t len, aos_cidr_t *out)
{
    if (!text || !out)
        return -1;
    const char *slash = memchr(text, '/', len);
    size_t alen = slash ? (size_t)(slash - text) : len;
    int v6;
    memset(out, 0, sizeof(*out));
    if (aos_cidr_addr_parse(text, alen, &v6, out->addr))
        return -1;
    /* mapped: the text was IPv6 but the address is IPv4 */
    int mapped = !v6 && memchr(text, ':', alen) != NULL;
    out->v6 = v6;
    unsigned max = v6 || mapped ? 128 : 32;
    unsigned bits = max;
    if (slash) {
        const char *d = slash + 1, *e = text + len;
        if (d == e || e - d > 3)
            return -1;
        bits = 0;
        for (; d < e; d++) {
            if (*d < '0' || *d > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*d - '0');
        }
        if (bits > max || (mapped && bits < 96))
            return -1;
    }
    out->bits = mapped ? bits - 96 : bits;
    clear_host_bits(out);
    return 0;
}

int aos_cidr_match(const aos_cidr_t *c, int v6, const unsigned char addr[16])
{
    if (c->v6 != v6)
        return 0;
    unsigned whole = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, whole))
        return 0;
    if (!rest)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return ((c->addr[whole] ^ addr[whole]) & mask) == 0;
}

static int bad_entry(aos_err_t *err, const char *what, long index, const char *t, size_t len)
{
    char shown[AOS_CIDR_TEXT_MAX + 1];
    size_t n = len < AOS_CIDR_TEXT_MAX ? len : AOS_CIDR_TEXT_MAX;
    for (size_t i = 0; i < n; i++) /* only printable ASCII goes into a message */
        shown[i] = t[i] >= 0x20 && t[i] < 0x7f && t[i] != '\'' ? t[i] : '?';
    shown[n] = '\0';
    if (what && index >= 0)
        return aos_err_set(err, AOS_EINVAL,
                           "'%s[%ld]': '%s%s' is not an address or a range (e.g. 10.0.0.0/8, "
                           "::1)",
                           what, index, shown, len > n ? "..." : "");
    return aos_err_set(err, AOS_EINVAL,
                       "'%s%s' is not an address or a range (e.g. 10.0.0.0/8, ::1)", shown,
                       len > n ? "..." : "");
}

int aos_cidr_list_parse(const char *text, aos_cidr_list_t *out, aos_err_t *err)
{
    out->v = NULL;
    out->n = 0;
    size_t cap = 1;
    for (const char *p = text; p && *p; p++)
        cap += *p == ',';
    if (cap > AOS_CIDR_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "more than %d ranges", AOS_CIDR_LIST_MAX);
    aos_cidr_t *v = calloc(cap, sizeof(*v));
    if (!v)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    size_t n = 0;
    const char *p = text ? text : "";
    while (*p) {
        const char *e = strchr(p, ',');
        if (!e)
            e = p + strlen(p);
        const char *s = p, *t = e;
        while (s < t && (*s == ' ' || *s == '\t'))
            s++;
        while (t > s && (t[-1] == ' ' || t[-1] == '\t'))
            t--;
        if (t > s) {
            if (aos_cidr_parse(s, (size_t)(t - s), &v[n])) {
                free(v);
                return bad_entry(err, NULL, -1, s, (size_t)(t - s));
            }
            n++;
        }
        p = *e ? e + 1 : e;
    }
    if (!n) {
        free(v);
        v = NULL;
    }
    out->v = v;
    out->n = n;
    return 0;
}

int aos_cidr_list_from_json(const json_t *arr, const char *what, aos_cidr_list_t *out,
                            aos_err_t *err)
{
    out->v = NULL;
    out->n = 0;
    if (!json_is_array(arr) || json_array_size(arr) > AOS_CIDR_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "'%s' must be an array of at most %d ranges",
                           what ? what : "list", AOS_CIDR_LIST_MAX);
    size_t n = json_array_size(arr);
    aos_cidr_t *v = n ? calloc(n, sizeof(*v)) : NULL;
    if (n && !v)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(arr, i);
        if (!json_is_string(e) ||
            aos_cidr_parse(json_string_value(e), json_string_length(e), &v[i])) {
            free(v);
            if (!json_is_string(e))
                return aos_err_set(err, AOS_EINVAL, "'%s[%zu]' must be a string",
                                   what ? what : "list", i);
            return bad_entry(err, what ? what : "list", (long)i, json_string_value(e),
                             json_string_length(e));
        }
    }
    out->v = v;
    out->n = n;
    return 0;
}

int aos_cidr_list_match(const aos_cidr_list_t *l, const char *text)
{
    int v6;
    unsigned char a[16];
    if (!l || !l->n || !text || aos_cidr_addr_parse(text, strlen(text), &v6, a))
        return 0;
    for (size_t i = 0; i < l->n; i++)
        if (aos_cidr_match(&l->v[i], v6, a))
            return 1;
    return 0;
}

void aos_cidr_list_release(aos_cidr_list_t *l)
{
    if (!l)
        return;
    free(l->v);
    l->v = NULL;
    l->n = 0;
}
