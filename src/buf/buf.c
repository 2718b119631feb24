/* buf.c - growable byte buffer; see buf.h for the invariants. The JSON
 * writer walks the value once, straight into the buffer: strings escaped
 * with one reservation of the worst case, integers by hand, reals whole
 * numbers by hand and others through jansson's own formatting (one call,
 * into a stack buffer), so that its text is jansson's byte for byte. */
#include "buf/buf.h"
#include "err/err.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aos_buf_init(aos_buf_t *b, size_t max)
{
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void aos_buf_release(aos_buf_t *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void aos_buf_reset(aos_buf_t *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

int aos_buf_grow(aos_buf_t *b, size_t extra)
{
    if (b->max && (extra > b->max || b->len > b->max - extra))
        return AOS_ETOOBIG;
    if (extra > SIZE_MAX / 2 - b->len - 1)
        return AOS_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->ptr, cap);
    if (!p)
        return AOS_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int aos_buf_append(aos_buf_t *b, const void *data, size_t n)
{
    int rc = aos_buf_grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

int aos_buf_puts(aos_buf_t *b, const char *s)
{
    return aos_buf_append(b, s, strlen(s));
}

int aos_buf_vprintf(aos_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return AOS_EINVAL;
    int rc = aos_buf_grow(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int aos_buf_printf(aos_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = aos_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void aos_buf_consume(aos_buf_t *b, size_t n)
{
    if (n >= b->len) {
        aos_buf_reset(b);
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = '\0';
}

char *aos_buf_detach(aos_buf_t *b, size_t *len)
{
    char *p = b->ptr;
    if (!p) {
        p = calloc(1, 1);
        if (len)
            *len = 0;
        return p;
    }
    if (len)
        *len = b->len;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}

/* ---- compact JSON ------------------------------------------------------------ */

/* s[0..n) as a JSON string, escaped as jansson's dump_string does. */
/* Whether one of the 8 bytes of w is below 0x20, '"' or a backslash: the
 * "has a byte less than" and "has a zero byte" tests of bit twiddling,
 * exact for whether any byte is (a byte of 0x80 or more has its high bit
 * set, which ~w clears). */
static int word_escapes(uint64_t w)
{
    const uint64_t ones = 0x0101010101010101u, high = 0x8080808080808080u;
    uint64_t q = w ^ (ones * '"'), bs = w ^ (ones * '\\');
    uint64_t low = (w - ones * 0x20) & ~w; /* a byte below 0x20 */
    uint64_t quote = (q - ones) & ~q;      /* a byte that is '"' */
    uint64_t back = (bs - ones) & ~bs;     /* a byte that is a backslash */
    return ((low | quote | back) & high) != 0;
}

static int put_str(aos_buf_t *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    /* the exact length first, so that one reservation serves and a capped
     * buffer refuses only what would not fit; the part before the first
     * byte to escape (most often all of it) is found 8 bytes at a time and
     * copied as it is */
    if (n > (SIZE_MAX - 3) / 6)
        return AOS_ENOMEM;
    size_t plain = 0;
    for (uint64_t w; plain + 8 <= n; plain += 8) {
        memcpy(&w, s + plain, 8);
        if (word_escapes(w))
            break;
    }
    while (plain < n && (unsigned char)s[plain] >= 0x20 && s[plain] != '"' && s[plain] != '\\')
        plain++;
    size_t need = n + 2;
    for (size_t i = plain; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == '"' || c == '\\')
            need += c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
                            c == '\t'
                        ? 1
                        : 5;
    }
    int rc = aos_buf_grow(b, need);
    if (rc)
        return rc;
    char *o = b->ptr + b->len;
    *o++ = '"';
    if (plain) {
        memcpy(o, s, plain);
        o += plain;
    }
    for (size_t i = plain; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *o++ = (char)c;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
        case '\\':
            *o++ = (char)c;
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
    }
    *o++ = '"';
    b->len = (size_t)(o - b->ptr);
    b->ptr[b->len] = '\0';
    return 0;
}

int aos_buf_int(aos_buf_t *b, int64_t v)
{
    char t[24], *p = t + sizeof(t);
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        *--p = '-';
    return aos_buf_append(b, p, (size_t)(t + sizeof(t) - p));
}

/* jansson's own text of a real (its %.17g and ".0"). */
static int put_jansson(aos_buf_t *b, const json_t *v)
{
    char t[64]; /* a real's text fits: one pass */
    size_t n = json_dumpb(v, t, sizeof(t), JSON_COMPACT | JSON_ENCODE_ANY);
    if (n == 0)
        return AOS_EINVAL;
    if (n <= sizeof(t))
        return aos_buf_append(b, t, n);
    int rc = aos_buf_grow(b, n);
    if (rc)
        return rc;
    if (json_dumpb(v, b->ptr + b->len, n, JSON_COMPACT | JSON_ENCODE_ANY) != n)
        return AOS_EINVAL;
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

static int put_json(aos_buf_t *b, const json_t *v, int depth)
{
    int rc = 0;
    if (depth > 2048) /* deeper than jansson's parser reads back */
        return AOS_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *m;
        int first = 1;
        if ((rc = aos_buf_append(b, "{", 1)))
            return rc;
        json_object_keylen_foreach((json_t *)v, k, klen, m)
        {
            if ((!first && (rc = aos_buf_append(b, ",", 1))) || (rc = put_str(b, k, klen)) ||
                (rc = aos_buf_append(b, ":", 1)) || (rc = put_json(b, m, depth + 1)))
                return rc;
            first = 0;
        }
        return aos_buf_append(b, "}", 1);
    }
    case JSON_ARRAY: {
        size_t n = json_array_size(v);
        if ((rc = aos_buf_append(b, "[", 1)))
            return rc;
        for (size_t i = 0; i < n; i++)
            if ((i && (rc = aos_buf_append(b, ",", 1))) ||
                (rc = put_json(b, json_array_get(v, i), depth + 1)))
                return rc;
        return aos_buf_append(b, "]", 1);
    }
    case JSON_STRING:
        return put_str(b, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return aos_buf_int(b, json_integer_value(v));
    case JSON_TRUE:
        return aos_buf_append(b, "true", 4);
    case JSON_FALSE:
        return aos_buf_append(b, "false", 5);
    case JSON_NULL:
        return aos_buf_append(b, "null", 4);
    default: { /* JSON_REAL */
        /* a whole number (a cost of 0.0) is what jansson's "%.17g" plus
         * ".0" makes of it, without printf */
        double d = json_real_value(v);
        if (d > -1e15 && d < 1e15 && d == (double)(long long)d) { /* in range before the cast */
            long long w = (long long)d;
            if ((w == 0 && signbit(d) && (rc = aos_buf_append(b, "-", 1))) ||
                (rc = aos_buf_int(b, (int64_t)w)))
                return rc;
            return aos_buf_append(b, ".0", 2);
        }
        return put_jansson(b, v);
    }
    }
}

int aos_buf_json_str(aos_buf_t *b, const char *s, size_t n)
{
    return put_str(b, s, n);
}

int aos_buf_json(aos_buf_t *b, const json_t *v)
{
    if (!v)
        return AOS_EINVAL;
    size_t len = b->len;
    int rc = put_json(b, v, 0);
    if (rc && b->ptr) { /* as it was */
        b->len = len;
        b->ptr[len] = '\0';
    }
    return rc;
}

char *aos_buf_json_text(const json_t *v, size_t *len)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    if (!v || aos_buf_grow(&b, 255) || aos_buf_json(&b, v)) {
        aos_buf_release(&b);
        return NULL;
    }
    return aos_buf_detach(&b, len);
}
