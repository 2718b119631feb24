/* utf8.c - validation, trimming and replacement of invalid UTF-8. */
#include "utf8/utf8.h"

#include <string.h>

int aos_utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        if (*p < 0x80) {
            if (!*p)
                return 0;
            p++;
            continue;
        }
        size_t k = aos_utf8_seq(p, end);
        if (!k)
            return 0;
        p += k;
    }
    return 1;
}

size_t aos_utf8_trim(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    /* the last lead byte, within the 3 bytes a character may still need */
    size_t i = n;
    while (i > 0 && n - i < 4 && (p[i - 1] & 0xc0) == 0x80)
        i--;
    if (i == 0 || p[i - 1] < 0xc0)
        return n; /* ends in ASCII or in stray continuation bytes: not a cut */
    size_t lead = i - 1;
    size_t need = p[lead] >= 0xf0 ? 4 : p[lead] >= 0xe0 ? 3 : 2;
    return n - lead < need ? lead : n;
}

size_t aos_utf8_scrub(char *out, size_t cap, const char *s, size_t n)
{
    static const char fffd[] = "\xef\xbf\xbd";
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    size_t len = 0;
    while (p < end) {
        size_t k = *p && *p < 0x80 ? 1 : *p ? aos_utf8_seq(p, end) : 0;
        const char *from = k ? (const char *)p : fffd;
        size_t m = k ? k : 3;
        if (len + m >= cap)
            break;
        memcpy(out + len, from, m);
        len += m;
        p += k ? k : 1;
    }
    out[len] = '\0';
    return len;
}
