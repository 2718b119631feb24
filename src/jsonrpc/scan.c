/* scan.c - a JSON-RPC answer checked and taken apart without building
 * values (aos_rpc_scan_result, see jsonrpc.h).
 *
 * One pass over the text with an explicit stack of container kinds (no
 * recursion): every token is validated as jansson's parser validates it
 * (strict RFC 8259 grammar, strict UTF-8, \u escapes with surrogate pairs,
 * no control characters in strings, jansson's depth limit). Along the way
 * it notes where the top-level "id" and "result" values lie and the last
 * "isError" member of the result. Wherever jansson's reading could differ
 * from what a scan of the text says - a member name with an escape in it, a
 * name given twice, a number jansson might refuse as too big, a carriage
 * return between tokens (legal JSON, but an SSE data line must not hold
 * one) - it answers 0 and leaves the message to jansson: 1 is only ever a
 * claim that json_loadb would read the same message the same way. */
#include "jsonrpc/jsonrpc.h"
#include "utf8/utf8.h"

#include <string.h>

typedef const unsigned char *cur_t;

/* jansson's JSON_PARSER_DEFAULT_DEPTH: deeper is an error there */
#define SCAN_MAX_DEPTH 2048

/* whitespace between tokens: no CR (see above), and the caller's text is
 * one line, so no LF either */
static cur_t ws(cur_t p, cur_t end)
{
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

static int hex4(cur_t p, cur_t end, unsigned *out)
{
    if (end - p < 4)
        return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

#define STR_ESC 1 /* holds a backslash escape */
#define STR_NUL 2 /* holds \u0000 */

/* p at the opening quote: the position after the closing one, or NULL.
 * *flags gets STR_ESC / STR_NUL. */
static cur_t string(cur_t p, cur_t end, int *flags)
{
    *flags = 0;
    p++;
    for (;;) {
        /* the common run: printable ASCII that needs nothing */
        while (p < end && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\')
            p++;
        if (p >= end)
            return NULL;
        unsigned char c = *p;
        if (c == '"')
            return p + 1;
        if (c < 0x20)
            return NULL;
        if (c >= 0x80) {
            size_t n = aos_utf8_seq(p, end);
            if (!n)
                return NULL;
            p += n;
            continue;
        }
        /* a backslash */
        *flags |= STR_ESC;
        if (++p >= end)
            return NULL;
        c = *p++;
        if (c == 'u') {
            unsigned u;
            if (hex4(p, end, &u))
                return NULL;
            p += 4;
            if (u == 0)
                *flags |= STR_NUL;
            if (u >= 0xdc00 && u <= 0xdfff)
                return NULL; /* a low surrogate alone */
            if (u >= 0xd800 && u <= 0xdbff) {
                unsigned lo;
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, end, &lo) ||
                    lo < 0xdc00 || lo > 0xdfff)
                    return NULL;
                p += 6;
            }
        } else if (!strchr("\"\\/bfnrt", c) || c == 0) {
            return NULL;
        }
    }
}

/* p at a number's first character: the position after it, or NULL when it
 * is not a JSON number. *big: jansson might refuse it (an integer part of
 * more than 18 digits may overflow its long long or double; an exponent of
 * more than 2 digits its double). *integer: no fraction, no exponent. */
static cur_t number(cur_t p, cur_t end, int *big, int *integer)
{
    *big = 0;
    *integer = 1;
    if (p < end && *p == '-')
        p++;
    cur_t d = p;
    if (p < end && *p == '0')
        p++;
    else if (p < end && *p >= '1' && *p <= '9')
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    else
        return NULL;
    if (p - d > 18)
        *big = 1;
    if (p < end && *p == '.') {
        *integer = 0;
        p++;
        if (p >= end || *p < '0' || *p > '9')
            return NULL;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        *integer = 0;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        cur_t e = p;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
        if (p == e)
            return NULL;
        if (p - e > 2)
            *big = 1;
    }
    return p;
}

static cur_t literal(cur_t p, cur_t end, const char *word, size_t n)
{
    return (size_t)(end - p) >= n && !memcmp(p, word, n) ? p + n : NULL;
}

enum { M_OTHER, M_ID, M_RESULT };

int aos_rpc_scan_result(const char *text, size_t len, aos_rpc_scan_t *out)
{
    cur_t start = (cur_t)text, p = start, end = start + len;
    unsigned char obj[SCAN_MAX_DEPTH]; /* per open container: 1 object, 0 array */
    size_t depth = 0;
    int member = M_OTHER; /* the top-level member whose value is being read */
    int iserror = 0;      /* the value being read is result's "isError" */
    int seen_id = 0, seen_result = 0, big, integer, flags;
    cur_t v1 = NULL; /* where the current top-level member's value began */
    memset(out, 0, sizeof(*out));

    p = ws(p, end);
    if (p >= end || *p != '{')
        return 0; /* a batch, or not a message */

value:
    if (p >= end)
        return 0;
    switch (*p) {
    case '{':
    case '[':
        if (depth == SCAN_MAX_DEPTH)
            return 0;
        obj[depth++] = *p == '{';
        p = ws(p + 1, end);
        if (p < end && *p == (obj[depth - 1] ? '}' : ']')) {
            p++;
            depth--;
            goto after;
        }
        if (obj[depth - 1])
            goto key;
        goto value;
    case '"':
        if (depth == SCAN_MAX_DEPTH) /* jansson counts a scalar as a level too */
            return 0;
        p = string(p, end, &flags);
        break;
    case 't':
        p = depth < SCAN_MAX_DEPTH ? literal(p, end, "true", 4) : NULL;
        break;
    case 'f':
        p = depth < SCAN_MAX_DEPTH ? literal(p, end, "false", 5) : NULL;
        break;
    case 'n':
        p = depth < SCAN_MAX_DEPTH ? literal(p, end, "null", 4) : NULL;
        break;
    default:
        p = depth < SCAN_MAX_DEPTH ? number(p, end, &big, &integer) : NULL;
        if (p && big)
            return 0;
        break;
    }
    if (!p)
        return 0;

after: /* a value ended at p */
    if (depth == 1) {
        if (member == M_ID) {
            out->id_off = (size_t)(v1 - start);
            out->id_len = (size_t)(p - v1);
        } else if (member == M_RESULT) {
            out->result_off = (size_t)(v1 - start);
            out->result_len = (size_t)(p - v1);
        }
        member = M_OTHER;
    }
    p = ws(p, end);
    if (depth == 0)
        goto done;
    if (p >= end)
        return 0;
    if (*p == ',') {
        p = ws(p + 1, end);
        if (obj[depth - 1])
            goto key;
        goto value;
    }
    if (*p != (obj[depth - 1] ? '}' : ']'))
        return 0;
    p++;
    depth--;
    goto after;

key:
    if (p >= end || *p != '"')
        return 0;
    iserror = 0;
    {
        cur_t k = p + 1;
        p = string(p, end, &flags);
        if (!p || (flags & STR_NUL)) /* jansson refuses NUL in a member name */
            return 0;
        size_t kn = (size_t)(p - 1 - k);
        if (depth == 1) {
            if (flags & STR_ESC)
                return 0; /* could spell a name that matters */
            if (kn == 2 && !memcmp(k, "id", 2)) {
                if (seen_id++)
                    return 0;
                member = M_ID;
            } else if (kn == 6 && !memcmp(k, "result", 6)) {
                if (seen_result++)
                    return 0;
                member = M_RESULT;
            } else if ((kn == 5 && !memcmp(k, "error", 5)) ||
                       (kn == 6 && !memcmp(k, "method", 6))) {
                return 0; /* not a plain result: jansson's */
            }
        } else if (depth == 2 && member == M_RESULT && obj[1]) {
            if (flags & STR_ESC)
                return 0;
            iserror = kn == 7 && !memcmp(k, "isError", 7);
        }
    }
    p = ws(p, end);
    if (p >= end || *p != ':')
        return 0;
    p = ws(p + 1, end);
    if (depth == 1)
        v1 = p;
    if (iserror) /* the last one counts, as in jansson's object */
        out->is_error = p < end && *p == 't';
    goto value;

done:
    if (p != end || !seen_id || !seen_result)
        return 0;
    /* the id: a positive integer (what the upstream module assigns) */
    cur_t id = start + out->id_off;
    if (out->id_len == 0 || out->id_len > 18 || *id < '1' || *id > '9')
        return 0;
    uint64_t v = 0;
    for (size_t i = 0; i < out->id_len; i++) {
        if (id[i] < '0' || id[i] > '9')
            return 0;
        v = v * 10 + (uint64_t)(id[i] - '0');
    }
    out->id = v;
    return 1;
}
