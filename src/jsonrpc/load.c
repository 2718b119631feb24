/* load.c - a client's message read into jansson values without jansson's
 * lexer (aos_rpc_load, see jsonrpc.h).
 *
 * jansson reads text one character at a time through a stream with a
 * UTF-8 check and a string buffer per token: about 10k instructions for a
 * 100-byte tools/call, more than building its values. This reader walks
 * the text once, recursively (to a small depth), and builds the same
 * values with jansson's constructors. It takes only what it can vouch
 * for: objects and arrays (the root one of them, as json_loadb without
 * JSON_DECODE_ANY wants), ASCII strings with the escapes \" \\ \/ \b \f
 * \n \r \t, integers of up to 18 digits, true, false and null, with
 * space, tab, CR and LF between tokens. Anything else - a \u escape, a
 * byte above 0x7f, a fraction or an exponent, a member name given twice,
 * a container nested deeper than LOAD_MAX_DEPTH, and every error - makes
 * it answer NULL so that the caller asks jansson, which then gives the
 * value or the error message it always gave. */
#include "jsonrpc/jsonrpc.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define LOAD_MAX_DEPTH  32 /* deeper: jansson's (it allows 2048) */
#define LOAD_MAX_DIGITS 18 /* fits json_int_t (long long) whatever the digits */
/* a string with escapes is decoded on the stack up to this, else jansson */
#define LOAD_MAX_ESCAPED 256

typedef struct {
    const unsigned char *p, *end;
} rd_t;

static json_t *value(rd_t *r, int depth);

static void ws(rd_t *r)
{
    while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* A string at r->p (on its opening quote): its text in *s, *n (into tmp
 * when it has escapes). 0, or -1 for what this reader leaves to jansson. */
static int string(rd_t *r, char *tmp, const char **s, size_t *n)
{
    const unsigned char *start = ++r->p;
    int escaped = 0;
    while (r->p < r->end && *r->p != '"') {
        unsigned char c = *r->p;
        if (c < 0x20 || c > 0x7e)
            return -1; /* control characters are errors; UTF-8 is jansson's to check */
        if (c == '\\') {
            escaped = 1;
            if (++r->p == r->end)
                return -1;
        }
        r->p++;
    }
    if (r->p == r->end)
        return -1;
    size_t len = (size_t)(r->p - start);
    r->p++; /* the closing quote */
    if (!escaped) {
        *s = (const char *)start;
        *n = len;
        return 0;
    }
    if (len > LOAD_MAX_ESCAPED)
        return -1;
    size_t o = 0;
    for (const unsigned char *q = start; q < start + len; q++) {
        if (*q != '\\') {
            tmp[o++] = (char)*q;
            continue;
        }
        switch (*++q) {
        case '"':
            tmp[o++] = '"';
            break;
        case '\\':
            tmp[o++] = '\\';
            break;
        case '/':
            tmp[o++] = '/';
            break;
        case 'b':
            tmp[o++] = '\b';
            break;
        case 'f':
            tmp[o++] = '\f';
            break;
        case 'n':
            tmp[o++] = '\n';
            break;
        case 'r':
            tmp[o++] = '\r';
            break;
        case 't':
            tmp[o++] = '\t';
            break;
        default:
            return -1; /* \u, or an invalid escape */
        }
    }
    *s = tmp;
    *n = o;
    return 0;
}

static json_t *number(rd_t *r)
{
    const unsigned char *p = r->p;
    int neg = 0;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    const unsigned char *digits = p;
    while (p < r->end && *p >= '0' && *p <= '9')
        p++;
    size_t nd = (size_t)(p - digits);
    /* no digits, a leading zero, a fraction or exponent, too many digits:
     * jansson's (it errs, or reads a real, or may find it too big) */
    if (nd == 0 || nd > LOAD_MAX_DIGITS || (digits[0] == '0' && nd > 1) ||
        (p < r->end && (*p == '.' || *p == 'e' || *p == 'E')))
        return NULL;
    json_int_t v = 0;
    for (const unsigned char *q = digits; q < p; q++)
        v = v * 10 + (*q - '0');
    r->p = p;
    return json_integer(neg ? -v : v);
}

static json_t *literal(rd_t *r, const char *word, size_t n, json_t *v)
{
    if ((size_t)(r->end - r->p) < n || memcmp(r->p, word, n) != 0)
        return NULL;
    r->p += n;
    return v;
}

static json_t *object(rd_t *r, int depth)
{
    char tmp[LOAD_MAX_ESCAPED];
    json_t *o = json_object();
    if (!o)
        return NULL;
    r->p++; /* { */
    ws(r);
    if (r->p < r->end && *r->p == '}') {
        r->p++;
        return o;
    }
    for (;;) {
        const char *k;
        size_t kn;
        json_t *v;
        if (r->p == r->end || *r->p != '"' || string(r, tmp, &k, &kn) != 0)
            break;
        ws(r);
        if (r->p == r->end || *r->p != ':')
            break;
        r->p++;
        ws(r);
        /* a name given twice is an error with JSON_REJECT_DUPLICATES */
        if (json_object_getn(o, k, kn) || !(v = value(r, depth + 1)))
            break;
        if (json_object_setn_new_nocheck(o, k, kn, v) != 0)
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
    r->p++; /* [ */
    ws(r);
    if (r->p < r->end && *r->p == ']') {
        r->p++;
        return a;
    }
    for (;;) {
        json_t *v = value(r, depth + 1);
        if (!v || json_array_append_new(a, v) != 0)
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
    if (r->p == r->end || depth > LOAD_MAX_DEPTH)
        return NULL;
    switch (*r->p) {
    case '{':
        return object(r, depth);
    case '[':
        return array(r, depth);
    case '"': {
        char tmp[LOAD_MAX_ESCAPED];
        const char *s;
        size_t n;
        return string(r, tmp, &s, &n) == 0 ? json_stringn_nocheck(s, n) : NULL;
    }
    case 't':
        return literal(r, "true", 4, json_true());
    case 'f':
        return literal(r, "false", 5, json_false());
    case 'n':
        return literal(r, "null", 4, json_null());
    default:
        return *r->p == '-' || (*r->p >= '0' && *r->p <= '9') ? number(r) : NULL;
    }
}

json_t *aos_rpc_load(const char *text, size_t len)
{
    if (!text)
        return NULL;
    rd_t r = {(const unsigned char *)text, (const unsigned char *)text + len};
    ws(&r);
    if (r.p == r.end || (*r.p != '{' && *r.p != '['))
        return NULL; /* the root is an object or an array, or jansson errs */
    json_t *v = value(&r, 1);
    ws(&r);
    if (v && r.p != r.end) { /* anything after the value: jansson's error */
        json_decref(v);
        return NULL;
    }
    return v;
}
