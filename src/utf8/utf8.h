/* utf8.h - strict UTF-8: what jansson accepts in a string (no overlong
 * forms, no surrogates, nothing past U+10FFFF), for text that comes from
 * outside as bytes - query strings, headers, a child's stderr - before it
 * becomes a JSON string, where jansson would refuse it whole.
 *
 * Pure functions, callable from any thread. NUL counts as invalid here:
 * a JSON string built from a C string cannot hold it. */
#ifndef AOS_UTF8_H
#define AOS_UTF8_H

#include <stddef.h>

/* The length (2..4) of the multi-byte sequence at p (p < end, *p >= 0x80),
 * or 0 if it is not a complete, valid one. Inline: the log scan calls it
 * per non-ASCII character. */
static inline size_t aos_utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned char c = p[0];
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    if (c < 0xc2 || c > 0xf4 || (size_t)(end - p) < n)
        return 0;
    unsigned char lo = 0x80, hi = 0xbf;
    if (c == 0xe0)
        lo = 0xa0;
    else if (c == 0xed)
        hi = 0x9f;
    else if (c == 0xf0)
        lo = 0x90;
    else if (c == 0xf4)
        hi = 0x8f;
    if (p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (p[i] < 0x80 || p[i] > 0xbf)
            return 0;
    return n;
}

/* 1 if s[0..n) is valid UTF-8 without NUL, else 0. */
int aos_utf8_valid(const char *s, size_t n);

/* The length of s[0..n) without an incomplete sequence at its end (text
 * cut at a byte count, e.g. by snprintf, may end inside a character). */
size_t aos_utf8_trim(const char *s, size_t n);

/* Copies s[0..n) to out (cap bytes, NUL-terminated; cap >= 1) with every
 * byte that does not begin a valid sequence, and every NUL, replaced by
 * U+FFFD; stops before a character that does not fit. Returns the length
 * written. out holds all of it when cap >= 3 * n + 1. */
size_t aos_utf8_scrub(char *out, size_t cap, const char *s, size_t n);

#endif
