/* lex.c - the lexical pieces the plan's mini-languages share: quoted
 * strings with JSON escapes (the DSL, `when` literals), JSON numbers, step
 * ids, and error messages cut at a character boundary. */
#include "plan/internal.h"
#include "utf8/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int aos__fail(aos_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
        va_end(ap);
        if (n >= (int)sizeof(err->msg))
            err->msg[aos_utf8_trim(err->msg, sizeof(err->msg) - 1)] = '\0';
        err->code = code;
    }
    return code;
}

int aos__snip(const char *s, size_t n, size_t max)
{
    if (n > max)
        n = aos_utf8_trim(s, max);
    return (int)n;
}

int aos__id_ok(const char *s, size_t len)
{
    if (len == 0 || len > AOS_PLAN_ID_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        int alpha = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
        if (!alpha && (i == 0 || !((c >= '0' && c <= '9') || c == '-')))
            return 0;
    }
    return 1;
}

int aos__plain_name(const char *k)
{
    if (!*k || (*k >= '0' && *k <= '9'))
        return 0;
    for (; *k; k++)
        if (!((*k >= 'A' && *k <= 'Z') || (*k >= 'a' && *k <= 'z') || (*k >= '0' && *k <= '9') ||
              *k == '_' || *k == '-'))
            return 0;
    return 1;
}

const char *aos__type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "object";
    case JSON_ARRAY:
        return "array";
    case JSON_STRING:
        return "string";
    case JSON_INTEGER:
        return "integer";
    case JSON_REAL:
        return "number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "boolean";
    case JSON_NULL:
        return "null";
    }
    return "?";
}

static int hex4(const char *s, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = s[i];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= (unsigned)(c - '0');
        else if (c >= 'a' && c <= 'f')
            v |= (unsigned)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            v |= (unsigned)(c - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

static int put_utf8(aos_buf_t *out, unsigned cp)
{
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | (cp >> 6));
        b[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | (cp >> 12));
        b[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (char)(0xf0 | (cp >> 18));
        b[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return aos_buf_append(out, b, n);
}

int aos__str_decode(const char *s, size_t len, size_t *pos, aos_buf_t *out, const char **why)
{
    size_t i = *pos;
    char q = s[i++];
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == (unsigned char)q) {
            *pos = i + 1;
            return 0;
        }
        if (c < 0x20) {
            *pos = i;
            *why = c == '\n' ? "unterminated string" : "control character in a string";
            return AOS_EINVAL;
        }
        if (c != '\\') {
            size_t run = i + 1;
            while (run < len && s[run] != q && s[run] != '\\' && (unsigned char)s[run] >= 0x20)
                run++;
            if (aos_buf_append(out, s + i, run - i))
                goto nomem;
            i = run;
            continue;
        }
        if (i + 1 >= len)
            break;
        char e = s[i + 1];
        const char *simple = strchr("\"'\\/bfnrt", e);
        if (e && simple) {
            static const char to[] = "\"'\\/\b\f\n\r\t";
            if (aos_buf_append(out, &to[simple - "\"'\\/bfnrt"], 1))
                goto nomem;
            i += 2;
            continue;
        }
        if (e != 'u') {
            *pos = i;
            *why = "invalid escape in a string (\\\" \\' \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)";
            return AOS_EINVAL;
        }
        unsigned cp, lo;
        if (i + 6 > len || hex4(s + i + 2, &cp) != 0) {
            *pos = i;
            *why = "\\u needs four hex digits";
            return AOS_EINVAL;
        }
        size_t n = 6;
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (i + 12 > len || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s + i + 8, &lo) != 0 ||
                lo < 0xdc00 || lo > 0xdfff) {
                *pos = i;
                *why = "a \\u high surrogate without its low surrogate";
                return AOS_EINVAL;
            }
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            n = 12;
        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            *pos = i;
            *why = "a \\u low surrogate without its high surrogate";
            return AOS_EINVAL;
        } else if (cp == 0) {
            *pos = i;
            *why = "\\u0000 is not allowed in a string";
            return AOS_EINVAL;
        }
        if (put_utf8(out, cp))
            goto nomem;
        i += n;
    }
    *pos = len;
    *why = "unterminated string";
    return AOS_EINVAL;
nomem:
    *pos = i;
    *why = "out of memory";
    return AOS_ENOMEM;
}

static size_t digits(const char *s, size_t len, size_t i)
{
    while (i < len && s[i] >= '0' && s[i] <= '9')
        i++;
    return i;
}

size_t aos__num_scan(const char *s, size_t len, size_t pos)
{
    size_t i = pos;
    if (i < len && s[i] == '-')
        i++;
    if (i >= len || s[i] < '0' || s[i] > '9')
        return pos;
    i = s[i] == '0' ? i + 1 : digits(s, len, i);
    if (i + 1 < len && s[i] == '.' && s[i + 1] >= '0' && s[i + 1] <= '9')
        i = digits(s, len, i + 1);
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        size_t j = i + 1;
        if (j < len && (s[j] == '+' || s[j] == '-'))
            j++;
        if (j < len && s[j] >= '0' && s[j] <= '9')
            i = digits(s, len, j);
    }
    return i;
}

json_t *aos__num_value(const char *s, size_t n)
{
    char tmp[64];
    if (n == 0 || n >= sizeof(tmp))
        return NULL;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    errno = 0;
    if (!memchr(tmp, '.', n) && !memchr(tmp, 'e', n) && !memchr(tmp, 'E', n)) {
        long long v = strtoll(tmp, &end, 10);
        if (errno || *end)
            return NULL;
        return json_integer((json_int_t)v);
    }
    double d = strtod(tmp, &end);
    if (*end || !isfinite(d) || (errno == ERANGE && d != 0))
        return NULL;
    return json_real(d);
}
