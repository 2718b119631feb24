/* scan.c - a POST /api/logs body straight to a validated, redacted batch in
 * one pass over the text, without a JSON tree. This is the common case of
 * ingest: building jansson's tree (an object with its hash table and a
 * string per field, for every entry), then walking it, took half of the
 * parse time per entry.
 *
 * The scan accepts only what the tree path (aos_http_parse_json, then
 * aos__logs_batch_parse) accepts, and gives the same rows. Anything else -
 * a syntax error, a field that fails validation, a duplicate member, a
 * member name the redactor rewrites, a deep or wide attribute value - is
 * left to the tree path, which says what is wrong: the scan never has to
 * explain a refusal, only to be right when it accepts.
 * tests/fuzz/fuzz_logs_scan.c holds the two paths to the same answers. */
#include "logs/internal.h"
#include "isotime/isotime.h"
#include "utf8/utf8.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCAN_DEPTH 32 /* attribute nesting handled here */
#define SCAN_KEYS  64 /* members of one attribute object, checked for duplicates */
#define NUM_MAX    64 /* bytes of a number token handled here */

/* Where a row's strings are in the scan's buffer while it may still move. */
typedef struct {
    size_t message, topic, source, trace_id, span_id, attributes; /* NONE: absent */
} spans_t;
#define NONE ((size_t)-1)

typedef struct {
    const unsigned char *p, *end;
    aos_buf_t out;  /* the rows' strings, each NUL-terminated, and attributes as JSON */
    aos_buf_t val;  /* one string being decoded */
    aos_buf_t keys; /* member names of the open attribute objects, NUL-terminated */
    aos_buf_t red;  /* the redactor's output */
    aos_logs_redact_fn fn;
    void *data;
} scan_t;

/* Bytes that end a plain run inside a JSON string: quote, backslash,
 * control characters and non-ASCII (checked as UTF-8). Constant: scans run
 * on several pool threads at once. */
/* clang-format off */
#define ROW16(v) v, v, v, v, v, v, v, v, v, v, v, v, v, v, v, v
static const unsigned char special[256] = {
    ROW16(1), ROW16(1), /* 0x00-0x1f: control characters */
    ['"'] = 1,
    ['\\'] = 1,
    [0x80] = ROW16(1), ROW16(1), ROW16(1), ROW16(1), /* 0x80-0xff */
             ROW16(1), ROW16(1), ROW16(1), ROW16(1),
};
#undef ROW16
/* clang-format on */

static void ws(scan_t *s)
{
    while (s->p < s->end && (*s->p == ' ' || *s->p == '\n' || *s->p == '\r' || *s->p == '\t'))
        s->p++;
}

/* Skips whitespace and the byte c; -1 if something else is there. */
static int expect(scan_t *s, unsigned char c)
{
    ws(s);
    if (s->p >= s->end || *s->p != c)
        return -1;
    s->p++;
    return 0;
}

/* After a member or an element: 1 if a ',' follows, 0 if close does
 * (either skipped), -1 for anything else. */
static int next_or_close(scan_t *s, unsigned char close)
{
    ws(s);
    if (s->p < s->end && *s->p == ',') {
        s->p++;
        return 1;
    }
    return expect(s, close) ? -1 : 0;
}

static int putc_(aos_buf_t *b, char c)
{
    if (b->len + 1 >= b->cap && aos_buf_grow(b, 1))
        return -1;
    b->ptr[b->len++] = c;
    b->ptr[b->len] = '\0';
    return 0;
}

static int hex4(const unsigned char *p, const unsigned char *end)
{
    if (end - p < 4)
        return -1;
    int v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = p[i];
        int d = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (d < 0)
            return -1;
        v = v * 16 + d;
    }
    return v;
}

/* The JSON string at s->p, decoded onto b (no NUL added). -1 for anything
 * jansson refuses: raw control characters, bad escapes, invalid UTF-8,
 * lone surrogates, \u0000. */
static int str_decode(scan_t *s, aos_buf_t *b)
{
    const unsigned char *p = s->p, *end = s->end;
    if (p >= end || *p != '"')
        return -1;
    p++;
    for (;;) {
        const unsigned char *run = p;
        while (p < end && !special[*p])
            p++;
        if (p > run && aos_buf_append(b, run, (size_t)(p - run)))
            return -1;
        if (p >= end)
            return -1;
        unsigned char c = *p;
        if (c == '"') {
            s->p = p + 1;
            return 0;
        }
        if (c < 0x20)
            return -1;
        if (c >= 0x80) {
            size_t n = aos_utf8_seq(p, end);
            if (!n || aos_buf_append(b, p, n))
                return -1;
            p += n;
            continue;
        }
        /* a backslash */
        if (++p >= end)
            return -1;
        char e;
        switch (*p++) {
        case '"':
            e = '"';
            break;
        case '\\':
            e = '\\';
            break;
        case '/':
            e = '/';
            break;
        case 'b':
            e = '\b';
            break;
        case 'f':
            e = '\f';
            break;
        case 'n':
            e = '\n';
            break;
        case 'r':
            e = '\r';
            break;
        case 't':
            e = '\t';
            break;
        case 'u': {
            long cp = hex4(p, end);
            if (cp <= 0 || (cp >= 0xdc00 && cp <= 0xdfff))
                return -1;
            p += 4;
            if (cp >= 0xd800 && cp <= 0xdbff) {
                if (end - p < 6 || p[0] != '\\' || p[1] != 'u')
                    return -1;
                long lo = hex4(p + 2, end);
                if (lo < 0xdc00 || lo > 0xdfff)
                    return -1;
                p += 6;
                cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
            }
            char u[4];
            size_t n;
            if (cp < 0x80) {
                u[0] = (char)cp;
                n = 1;
            } else if (cp < 0x800) {
                u[0] = (char)(0xc0 | (cp >> 6));
                u[1] = (char)(0x80 | (cp & 0x3f));
                n = 2;
            } else if (cp < 0x10000) {
                u[0] = (char)(0xe0 | (cp >> 12));
                u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[2] = (char)(0x80 | (cp & 0x3f));
                n = 3;
            } else {
                u[0] = (char)(0xf0 | (cp >> 18));
                u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
                u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
                u[3] = (char)(0x80 | (cp & 0x3f));
                n = 4;
            }
            if (aos_buf_append(b, u, n))
                return -1;
            continue;
        }
        default:
            return -1;
        }
        if (putc_(b, e))
            return -1;
    }
}

/* t[0..n) (valid UTF-8) as a JSON string onto b, escaped as json_dumps
 * escapes it. */
static int str_encode(aos_buf_t *b, const char *t, size_t n)
{
    if (aos_buf_grow(b, n + 2))
        return -1;
    b->ptr[b->len++] = '"';
    const unsigned char *p = (const unsigned char *)t, *end = p + n;
    while (p < end) {
        const unsigned char *run = p;
        while (p < end && *p >= 0x20 && *p != '"' && *p != '\\')
            p++;
        if (p > run && aos_buf_append(b, run, (size_t)(p - run)))
            return -1;
        if (p >= end)
            break;
        static const char from[] = "\"\\\b\f\n\r\t", to[] = "\"\\bfnrt";
        unsigned char c = *p++;
        const char *k = c ? strchr(from, c) : NULL;
        char esc[8];
        if (k)
            snprintf(esc, sizeof(esc), "\\%c", to[k - from]);
        else
            snprintf(esc, sizeof(esc), "\\u%04X", c);
        if (aos_buf_puts(b, esc))
            return -1;
    }
    return putc_(b, '"');
}

/* A string value (s->val, NUL-terminated) through the redactor: 0 and
 * *text, *n the text to keep; -1 to leave the batch to the tree path. */
static int redact(scan_t *s, const char *key, const char **text, size_t *n)
{
    *text = s->val.ptr;
    *n = s->val.len;
    if (!s->fn)
        return 0;
    aos_buf_reset(&s->red);
    int rc = s->fn(key, s->val.ptr, s->val.len, &s->red, s->data);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        /* the tree path stores a replacement only if jansson takes it */
        if (!aos_utf8_valid(s->red.ptr, s->red.len))
            return -1;
        *text = s->red.ptr ? s->red.ptr : "";
        *n = s->red.len;
    }
    return 0;
}

/* A number token as json_dumps writes it back: integers in int64 as
 * %lld, reals as "%.17g" with a ".0" if it looks like an integer and the
 * exponent without '+' or leading zeros. Integers out of range and reals
 * that overflow are refused by jansson: -1. */
static int number(scan_t *s)
{
    const unsigned char *p = s->p, *end = s->end, *start = p;
    int real = 0;
    if (p < end && *p == '-')
        p++;
    if (p >= end || *p < '0' || *p > '9')
        return -1;
    if (*p == '0')
        p++;
    else
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    if (p < end && *p == '.') {
        real = 1;
        if (++p >= end || *p < '0' || *p > '9')
            return -1;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        real = 1;
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || *p < '0' || *p > '9')
            return -1;
        while (p < end && *p >= '0' && *p <= '9')
            p++;
    }
    size_t n = (size_t)(p - start);
    if (n >= NUM_MAX)
        return -1;
    char tok[NUM_MAX], out[NUM_MAX + 8];
    memcpy(tok, start, n);
    tok[n] = '\0';
    s->p = p;
    errno = 0;
    if (!real) {
        long long v = strtoll(tok, NULL, 10);
        if (errno == ERANGE)
            return -1;
        snprintf(out, sizeof(out), "%lld", v);
        return aos_buf_puts(&s->out, out) ? -1 : 0;
    }
    double d = strtod(tok, NULL);
    if (errno == ERANGE && (d == HUGE_VAL || d == -HUGE_VAL))
        return -1;
    if (!isfinite(d))
        return -1;
    int len = snprintf(out, sizeof(out) - 3, "%.17g", d);
    if (len < 0 || (size_t)len >= sizeof(out) - 3)
        return -1;
    if (!strchr(out, '.') && !strchr(out, 'e'))
        memcpy(out + len, ".0", 3);
    char *e = strchr(out, 'e');
    if (e) { /* e+05 -> e5, e-05 -> e-5 */
        char *from = e + 1, *to = e + 1;
        if (*from == '-')
            from++, to++;
        else if (*from == '+')
            from++;
        while (*from == '0' && from[1])
            from++;
        memmove(to, from, strlen(from) + 1);
    }
    return aos_buf_puts(&s->out, out) ? -1 : 0;
}

static int value(scan_t *s, size_t key, int depth);

/* An attribute object at s->p onto s->out. Member names are checked for
 * duplicates (JSON_REJECT_DUPLICATES) and shown to the redactor; a name it
 * would rewrite goes to the tree path, which renames. */
static int object(scan_t *s, int depth)
{
    if (depth > SCAN_DEPTH)
        return -1;
    s->p++; /* '{' */
    if (putc_(&s->out, '{'))
        return -1;
    size_t base = s->keys.len;
    size_t off[SCAN_KEYS], len[SCAN_KEYS];
    int n = 0;
    ws(s);
    if (s->p < s->end && *s->p == '}') {
        s->p++;
        return putc_(&s->out, '}');
    }
    for (;;) {
        ws(s);
        size_t k = s->keys.len;
        if (n == SCAN_KEYS || str_decode(s, &s->keys) || putc_(&s->keys, '\0'))
            return -1;
        size_t kn = s->keys.len - 1 - k;
        const char *name = s->keys.ptr + k;
        for (int i = 0; i < n; i++)
            if (len[i] == kn && !memcmp(s->keys.ptr + off[i], name, kn))
                return -1;
        off[n] = k;
        len[n++] = kn;
        if (s->fn) {
            aos_buf_reset(&s->red);
            if (s->fn(NULL, name, kn, &s->red, s->data) != 0)
                return -1;
        }
        if ((n > 1 && putc_(&s->out, ',')) || str_encode(&s->out, name, kn) ||
            putc_(&s->out, ':') || expect(s, ':') || value(s, k, depth))
            return -1;
        int more = next_or_close(s, '}');
        if (more < 0)
            return -1;
        if (!more)
            break;
    }
    s->keys.len = base;
    return putc_(&s->out, '}');
}

/* Any attribute value at s->p onto s->out; key is the offset in s->keys
 * of the member holding it (NONE: none), which the redactor sees. */
static int value(scan_t *s, size_t key, int depth)
{
    ws(s);
    if (s->p >= s->end)
        return -1;
    switch (*s->p) {
    case '{':
        return object(s, depth + 1);
    case '[':
        if (depth + 1 > SCAN_DEPTH || putc_(&s->out, '['))
            return -1;
        s->p++;
        ws(s);
        if (s->p < s->end && *s->p == ']') {
            s->p++;
            return putc_(&s->out, ']');
        }
        for (int first = 1;; first = 0) {
            if ((!first && putc_(&s->out, ',')) || value(s, key, depth + 1))
                return -1;
            int more = next_or_close(s, ']');
            if (more < 0)
                return -1;
            if (!more)
                return putc_(&s->out, ']');
        }
    case '"': {
        aos_buf_reset(&s->val);
        if (str_decode(s, &s->val) || putc_(&s->val, '\0'))
            return -1;
        s->val.len--; /* the NUL stays, for the redactor */
        const char *text;
        size_t n;
        if (redact(s, key == NONE ? NULL : s->keys.ptr + key, &text, &n))
            return -1;
        return str_encode(&s->out, text, n);
    }
    case 't':
    case 'f':
    case 'n': {
        static const char *const lit[] = {"true", "false", "null"};
        for (int i = 0; i < 3; i++) {
            size_t n = strlen(lit[i]);
            if ((size_t)(s->end - s->p) >= n && !memcmp(s->p, lit[i], n)) {
                s->p += n;
                return aos_buf_append(&s->out, lit[i], n) ? -1 : 0;
            }
        }
        return -1;
    }
    default:
        return number(s);
    }
}

/* A top-level field's string onto s->out, NUL-terminated: its offset, or
 * NONE on failure (checked by the caller through *ok). */
static size_t field_string(scan_t *s, size_t *len, int *ok)
{
    size_t at = s->out.len;
    if (str_decode(s, &s->out) || putc_(&s->out, '\0')) {
        *ok = 0;
        return NONE;
    }
    *len = s->out.len - 1 - at;
    return at;
}

static int is_null(scan_t *s)
{
    if ((size_t)(s->end - s->p) >= 4 && !memcmp(s->p, "null", 4)) {
        s->p += 4;
        return 1;
    }
    return 0;
}

enum { F_TS, F_LEVEL, F_MESSAGE, F_TOPIC, F_ATTRIBUTES, F_TRACE, F_SPAN, F_SOURCE, F_N };
static const char *const fields[F_N] = {"ts",         "level",    "message", "topic",
                                        "attributes", "trace_id", "span_id", "source"};

/* One entry object at s->p into r, x (ts) and sp. */
static int entry(scan_t *s, aos_store_log_t *r, aos__logs_aux_t *x, spans_t *sp, int64_t now)
{
    if (expect(s, '{'))
        return -1;
    *sp = (spans_t){NONE, NONE, NONE, NONE, NONE, NONE};
    unsigned seen = 0;
    size_t msg_len = 0;
    int have_ts = 0;
    r->level = 2;
    ws(s);
    if (s->p < s->end && *s->p == '}')
        return -1; /* no message */
    for (;;) {
        ws(s);
        aos_buf_reset(&s->val);
        if (str_decode(s, &s->val) || expect(s, ':'))
            return -1;
        int f = 0;
        while (f < F_N &&
               (strlen(fields[f]) != s->val.len || memcmp(s->val.ptr, fields[f], s->val.len)))
            f++;
        if (f == F_N || (seen & (1u << f)))
            return -1; /* unknown or twice */
        seen |= 1u << f;
        ws(s);
        if (s->p >= s->end)
            return -1;
        int ok = 1;
        size_t n = 0;
        if (f == F_MESSAGE) {
            if (*s->p != '"')
                return -1;
            sp->message = field_string(s, &msg_len, &ok);
            if (!ok || msg_len > AOS__LOGS_MAX_MESSAGE)
                return -1;
        } else if (is_null(s)) {
            /* the default: level info, ts now, no string */
        } else if (f == F_LEVEL || (f == F_TS && *s->p == '"')) {
            aos_buf_reset(&s->val);
            if (*s->p != '"' || str_decode(s, &s->val) || putc_(&s->val, '\0'))
                return -1;
            if (f == F_LEVEL) {
                if ((r->level = aos__logs_level_parse(s->val.ptr)) < 0)
                    return -1;
            } else {
                int64_t ms;
                if (aos_isotime_parse(s->val.ptr, 0, &ms) != 0 || ms > AOS__LOGS_MS_MAX)
                    return -1;
                aos_isotime_fmt(ms, x->ts);
                have_ts = 1;
            }
        } else if (f == F_TS) { /* an integer of milliseconds */
            const unsigned char *start = s->p;
            int64_t ms = 0;
            while (s->p < s->end && *s->p >= '0' && *s->p <= '9' && s->p - start < 16)
                ms = ms * 10 + (*s->p++ - '0');
            if (s->p == start || (*start == '0' && s->p - start > 1) || ms > AOS__LOGS_MS_MAX ||
                (s->p < s->end &&
                 ((*s->p >= '0' && *s->p <= '9') || *s->p == '.' || *s->p == 'e' || *s->p == 'E')))
                return -1;
            aos_isotime_fmt(ms, x->ts);
            have_ts = 1;
        } else if (f == F_ATTRIBUTES) {
            if (*s->p != '{')
                return -1;
            size_t at = s->out.len;
            if (object(s, 1))
                return -1;
            n = s->out.len - at;
            if (n > AOS__LOGS_MAX_ATTRS)
                return -1;
            if (n == 2) /* {}: no attributes */
                s->out.len = at;
            else if (putc_(&s->out, '\0'))
                return -1;
            else
                sp->attributes = at;
        } else { /* topic, source, trace_id, span_id */
            if (*s->p != '"')
                return -1;
            size_t at = field_string(s, &n, &ok);
            if (!ok)
                return -1;
            const char *t = s->out.ptr + at;
            int id = f == F_TRACE || f == F_SPAN;
            if (id ? aos__logs_check_id(t, n, AOS__LOGS_MAX_ID)
                   : aos__logs_check_name(t, n, AOS__LOGS_MAX_NAME))
                return -1;
            size_t *dst = f == F_TOPIC    ? &sp->topic
                          : f == F_SOURCE ? &sp->source
                          : f == F_TRACE  ? &sp->trace_id
                                          : &sp->span_id;
            *dst = at;
        }
        int more = next_or_close(s, '}');
        if (more < 0)
            return -1;
        if (!more)
            break;
    }
    if (!(seen & (1u << F_MESSAGE)))
        return -1;
    if (!have_ts)
        aos_isotime_fmt(now, x->ts);
    r->message_len = msg_len;
    if (s->fn) { /* the message through the redactor, after validation as the tree path */
        aos_buf_reset(&s->val);
        if (aos_buf_append(&s->val, s->out.ptr + sp->message, msg_len))
            return -1;
        const char *text;
        size_t n;
        if (redact(s, NULL, &text, &n))
            return -1;
        if (text != s->val.ptr) {
            sp->message = s->out.len;
            if (aos_buf_append(&s->out, text, n) || putc_(&s->out, '\0'))
                return -1;
            r->message_len = n;
        }
    }
    return 0;
}

static int grow_rows(aos__logs_batch_t *b, spans_t **sp, size_t *cap)
{
    size_t c = *cap ? *cap * 2 : 256;
    aos_store_log_t *rows = realloc(b->rows, c * sizeof(*rows));
    if (rows)
        b->rows = rows;
    aos__logs_aux_t *aux = realloc(b->aux, c * sizeof(*aux));
    if (aux)
        b->aux = aux;
    spans_t *s = realloc(*sp, c * sizeof(*s));
    if (s)
        *sp = s;
    if (!rows || !aux || !s)
        return -1;
    *cap = c;
    return 0;
}

static const char *at_or_null(const aos_buf_t *b, size_t off)
{
    return off == NONE ? NULL : b->ptr + off;
}

int aos__logs_batch_scan(aos__logs_batch_t *b, const char *body, size_t len, aos_logs_redact_fn fn,
                         void *data)
{
    memset(b, 0, sizeof(*b));
    scan_t s;
    memset(&s, 0, sizeof(s));
    s.p = (const unsigned char *)body;
    s.end = s.p + len;
    s.fn = fn;
    s.data = data;
    aos_buf_init(&s.out, 0);
    aos_buf_init(&s.val, 0);
    aos_buf_init(&s.keys, 0);
    aos_buf_init(&s.red, 0);
    spans_t *sp = NULL;
    size_t cap = 0, n = 0;
    int64_t now = aos_isotime_now_ms();
    int rc = -1;
    if (aos_buf_grow(&s.out, len + len / 8 + 64))
        goto out;

    int wrapped = 0;
    ws(&s);
    if (s.p < s.end && *s.p == '{') { /* {"entries": [...]} */
        s.p++;
        ws(&s);
        if (str_decode(&s, &s.val) || strcmp(s.val.ptr ? s.val.ptr : "", "entries") ||
            s.val.len != 7 || expect(&s, ':'))
            goto out;
        wrapped = 1;
    }
    if (expect(&s, '['))
        goto out;
    ws(&s);
    if (s.p < s.end && *s.p == ']')
        goto out; /* empty: the tree path says so */
    for (;;) {
        if (n == AOS__LOGS_MAX_BATCH || (n == cap && grow_rows(b, &sp, &cap)))
            goto out;
        memset(&b->rows[n], 0, sizeof(b->rows[n]));
        memset(&b->aux[n], 0, sizeof(b->aux[n]));
        if (entry(&s, &b->rows[n], &b->aux[n], &sp[n], now))
            goto out;
        n++;
        int more = next_or_close(&s, ']');
        if (more < 0)
            goto out;
        if (!more)
            break;
    }
    if (wrapped && expect(&s, '}'))
        goto out;
    ws(&s);
    if (s.p != s.end)
        goto out;

    /* the buffer stops moving: offsets become pointers */
    for (size_t i = 0; i < n; i++) {
        aos_store_log_t *r = &b->rows[i];
        r->ts = b->aux[i].ts;
        r->message = s.out.ptr + sp[i].message;
        r->topic = at_or_null(&s.out, sp[i].topic);
        r->source = at_or_null(&s.out, sp[i].source);
        r->trace_id = at_or_null(&s.out, sp[i].trace_id);
        r->span_id = at_or_null(&s.out, sp[i].span_id);
        r->attributes = at_or_null(&s.out, sp[i].attributes);
    }
    b->n = n;
    b->arena = s.out.ptr;
    s.out.ptr = NULL;
    rc = 0;
out:
    aos_buf_release(&s.out);
    aos_buf_release(&s.val);
    aos_buf_release(&s.keys);
    aos_buf_release(&s.red);
    free(sp);
    if (rc) {
        free(b->rows);
        free(b->aux);
        memset(b, 0, sizeof(*b));
        return 1;
    }
    return 0;
}
