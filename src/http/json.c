/* json.c - the common case of a request body's JSON, read in one pass.
 *
 * A recursive descent over the bytes, building values with the calls
 * jansson's own parser makes, in the same order (so objects keep their
 * members' order and every value is what json_loadb would have made). It
 * accepts only what it is sure jansson accepts the same way (json.h); at
 * anything else it frees what it built and returns NULL, and the caller
 * asks jansson, whose answer - a value or an error message - stands. The
 * rules it mirrors (jansson 2.14, load.c): the text is one object or array
 * with only whitespace (space, tab, CR, LF) around it; strings hold no
 * control character and only well-formed UTF-8 (no overlong form, no
 * surrogate, nothing above U+10FFFF); an integer is -?(0|[1-9][0-9]*) not
 * followed by '.', 'e' or 'E' (that is a real: jansson's); a member named
 * twice is an error (JSON_REJECT_DUPLICATES). */
#include "http/json.h"

#include <stdint.h>
#include <string.h>

#include "buf/buf.h"

#define FAST_DEPTH_MAX 256 /* jansson's limit is 2048: deeper goes to it */
#define FAST_DIGITS    18  /* fits an int64 whatever the digits */

typedef struct {
    const unsigned char *p, *end;
    aos_buf_t tmp; /* a string with escapes, decoded */
} rd_t;

static void ws(rd_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\n' || *r->p == '\r' || *r->p == '\t'))
        r->p++;
}

/* The length of the well-formed UTF-8 sequence of 2 to 4 bytes at p (p[0]
 * >= 0x80), or 0. */
static size_t utf8_seq(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], u;
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        u = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        u = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        u = c & 0x07;
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80)
            return 0;
        u = (u << 6) | (p[i] & 0x3F);
    }
    if (n == 3 && (u < 0x800 || (u >= 0xD800 && u <= 0xDFFF)))
        return 0;
    if (n == 4 && (u < 0x10000 || u > 0x10FFFF))
        return 0;
    return n;
}

/* The string at r->p (its opening quote) into *s, *n: its bytes in the
 * text when it has no escape, else decoded into r->tmp (valid until the
 * next string) - or, with keys_plain, -1 for one with an escape. 0 or -1,
 * r->p after the closing quote. */
static int string(rd_t *r, const char **s, size_t *n, int keys_plain)
{
    const unsigned char *start = ++r->p, *p = start, *end = r->end;
    for (;;) {
        if (p >= end)
            return -1;
        unsigned c = *p;
        if (c == '"') {
            *s = (const char *)start;
            *n = (size_t)(p - start);
            r->p = p + 1;
            return 0;
        }
        if (c == '\\')
            break;
        if (c < 0x20)
            return -1;
        if (c < 0x80) {
            p++;
        } else {
            size_t k = utf8_seq(p, end);
            if (!k)
                return -1;
            p += k;
        }
    }
    if (keys_plain)
        return -1;
    /* escapes: the bytes so far, then decoded */
    r->tmp.len = 0;
    if (aos_buf_append(&r->tmp, (const char *)start, (size_t)(p - start)))
        return -1;
    for (;;) {
        if (p >= end)
            return -1;
        unsigned c = *p;
        if (c == '"')
            break;
        const unsigned char *run = p;
        if (c == '\\') {
            if (end - p < 2)
                return -1;
            static const char from[8] = "\"\\/bfnrt", to[8] = "\"\\/\b\f\n\r\t";
            const char *e = memchr(from, p[1], sizeof(from)); /* \u and the rest: jansson's */
            if (!e)
                return -1;
            char d = to[e - from];
            if (aos_buf_append(&r->tmp, &d, 1))
                return -1;
            p += 2;
            continue;
        }
        while (p < end && *p != '"' && *p != '\\') {
            if (*p < 0x20)
                return -1;
            if (*p < 0x80) {
                p++;
            } else {
                size_t k = utf8_seq(p, end);
                if (!k)
                    return -1;
                p += k;
            }
        }
        if (aos_buf_append(&r->tmp, (const char *)run, (size_t)(p - run)))
            return -1;
    }
    r->p = p + 1;
    *s = r->tmp.ptr ? r->tmp.ptr : "";
    *n = r->tmp.len;
    return 0;
}

static json_t *number(rd_t *r)
{
    const unsigned char *p = r->p, *end = r->end;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    const unsigned char *digits = p;
    if (p >= end)
        return NULL;
    if (*p == '0') {
        p++;
        if (p < end && *p >= '0' && *p <= '9')
            return NULL;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    } else {
        return NULL;
    }
    if (p < end && (*p == '.' || *p == 'e' || *p == 'E'))
        return NULL; /* a real */
    if (p - digits > FAST_DIGITS)
        return NULL;
    int64_t v = 0;
    for (const unsigned char *q = digits; q < p; q++)
        v = v * 10 + (*q - '0');
    r->p = p;
    return json_integer(neg ? -v : v);
}

static int word(rd_t *r, const char *w, size_t n)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return -1;
    r->p += n;
    return 0;
}

static json_t *value(rd_t *r, int depth);

static json_t *object(rd_t *r, int depth)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t klen;
        if (r->p >= r->end || *r->p != '"' || string(r, &k, &klen, 1))
            break;
        ws(r);
        if (r->p >= r->end || *r->p != ':')
            break;
        r->p++;
        ws(r);
        json_t *v = value(r, depth);
        if (!v)
            break;
        size_t before = json_object_size(o);
        /* the same size after: the key was there (a duplicate) */
        if (json_object_setn_new_nocheck(o, k, klen, v) || json_object_size(o) == before)
            break;
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == '}') {
            r->p++;
            return o;
        }
        break;
    }
    json_decref(o);
    return NULL;
}

static json_t *array(rd_t *r, int depth)
{
    json_t *a = json_array();
    if (!a)
        return NULL;
    r->p++;
    ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        json_t *v = value(r, depth);
        if (!v || json_array_append_new(a, v))
            break;
        ws(r);
        if (r->p < r->end && *r->p == ',') {
            r->p++;
            ws(r);
            continue;
        }
        if (r->p < r->end && *r->p == ']') {
            r->p++;
            return a;
        }
        break;
    }
    json_decref(a);
    return NULL;
}

static json_t *value(rd_t *r, int depth)
{
    if (r->p >= r->end)
        return NULL;
    const char *s;
    size_t n;
    switch (*r->p) {
    case '{':
        return depth < FAST_DEPTH_MAX ? object(r, depth + 1) : NULL;
    case '[':
        return depth < FAST_DEPTH_MAX ? array(r, depth + 1) : NULL;
    case '"':
        return string(r, &s, &n, 0) ? NULL : json_stringn_nocheck(s, n);
    case 't':
        return word(r, "true", 4) ? NULL : json_true();
    case 'f':
        return word(r, "false", 5) ? NULL : json_false();
    case 'n':
        return word(r, "null", 4) ? NULL : json_null();
    default:
        return (*r->p == '-' || (*r->p >= '0' && *r->p <= '9')) ? number(r) : NULL;
    }
}

json_t *aos__json_fast(const char *text, size_t len)
{
    if (!text)
        return NULL;
    rd_t r = {(const unsigned char *)text, (const unsigned char *)text + len, {0}};
    aos_buf_init(&r.tmp, 0);
    ws(&r);
    json_t *v = NULL;
    if (r.p < r.end && (*r.p == '{' || *r.p == '['))
        v = value(&r, 0);
    if (v) {
        ws(&r);
        if (r.p != r.end) { /* more after the value: jansson's error */
            json_decref(v);
            v = NULL;
        }
    }
    aos_buf_release(&r.tmp);
    return v;
}
