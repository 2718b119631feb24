/* dsl.c - the Action DSL parser (grammar: docs/DSL.md).
 *
 * The text is checked whole first (size, UTF-8, line length), then a
 * lexer turns it into tokens - newlines are tokens except inside brackets
 * and after a backslash - and a recursive-descent parser with one token of
 * lookahead (plus a peek at the next character, for "id:" and "name=")
 * builds the plan's JSON. Every error carries the line and column of the
 * token it is about. Rules about values (ranges, references, the tools)
 * are aos_plan_validate's, run on the result; its error is given the
 * position of the step it names. */
#include "plan/internal.h"
#include "utf8/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef enum {
    T_EOF,
    T_NL,
    T_SEMI,
    T_WORD,
    T_STRING,
    T_NUMBER,
    T_REF,
    T_COLON,
    T_EQ,
    T_EQEQ,
    T_NE,
    T_BANG,
    T_LBRACE,
    T_RBRACE,
    T_LBRACK,
    T_RBRACK,
    T_COMMA,
} ttype_t;

typedef struct {
    ttype_t type;
    size_t start, end; /* source span */
    size_t num_end;    /* T_NUMBER: end of the number (a unit may follow) */
    int line, col;
} token_t;

typedef struct {
    const char *s;
    size_t len;
    size_t pos;
    int line, col; /* of s[pos] */
    int depth;     /* open brackets: newlines inside them are blanks */
    aos_err_t *err;
    token_t tok;
    aos_buf_t str; /* the decoded text of a T_STRING token */
    /* the plan being built */
    json_t *steps;
    json_t *last;   /* the last step (borrowed) */
    char last_kind; /* 't', 'a', 'm' */
    json_t *marks;  /* per step: {field: [line, col]}, "" the statement */
} parser_t;

static int vfail(parser_t *p, int line, int col, const char *fmt, va_list ap)
{
    char what[220];
    vsnprintf(what, sizeof(what), fmt, ap);
    return aos__fail(p->err, AOS_EINVAL, "%d:%d: %s", line, col, what);
}

static int fail_at(parser_t *p, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int fail_at(parser_t *p, int line, int col, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(p, line, col, fmt, ap);
    va_end(ap);
    return rc;
}

/* An error about the current token. */
static int fail(parser_t *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(parser_t *p, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = vfail(p, p->tok.line, p->tok.col, fmt, ap);
    va_end(ap);
    return rc;
}

static int oom(parser_t *p)
{
    return aos__fail(p->err, AOS_ENOMEM, "out of memory");
}

/* Remembers where the last step's field was written, for the errors of
 * validation. */
static int mark(parser_t *p, const char *field, int line, int col)
{
    json_t *m = json_array_get(p->marks, json_array_size(p->marks) - 1);
    if (json_object_set_new(m, field, json_pack("[i, i]", line, col)))
        return oom(p);
    return 0;
}

/* ---- the lexer --------------------------------------------------------------------- */

static int word_start(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_' || c == '.' || c == '/' ||
           c == '*' || c == '~' || c == '@' || c == '%' || c >= 0x80;
}

static int word_char(unsigned char c)
{
    return word_start(c) || (c >= '0' && c <= '9') || c == '-' || c == '+';
}

static void advance(parser_t *p, size_t n)
{
    for (size_t i = 0; i < n && p->pos < p->len; i++, p->pos++) {
        unsigned char c = (unsigned char)p->s[p->pos];
        if (c == '\n') {
            p->line++;
            p->col = 1;
        } else if ((c & 0xc0) != 0x80) {
            p->col++;
        }
    }
}

/* Skips blanks, comments, backslash-newlines and (inside brackets)
 * newlines. */
static void skip_blank(parser_t *p)
{
    while (p->pos < p->len) {
        char c = p->s[p->pos];
        if (c == ' ' || c == '\t' || c == '\r' || (c == '\n' && p->depth > 0)) {
            advance(p, 1);
        } else if (c == '#') {
            while (p->pos < p->len && p->s[p->pos] != '\n')
                advance(p, 1);
        } else if (c == '\\') {
            size_t j = p->pos + 1;
            if (j < p->len && p->s[j] == '\r')
                j++;
            if (j >= p->len || p->s[j] != '\n')
                return;
            advance(p, j + 1 - p->pos);
        } else {
            return;
        }
    }
}

/* The next character after the current token, blanks skipped (0 at the
 * end): "id:" and "name=" are told apart from the rest by it. */
static char peek_char(parser_t *p)
{
    size_t pos = p->pos;
    int line = p->line, col = p->col, depth = p->depth;
    skip_blank(p);
    char c = p->pos < p->len ? p->s[p->pos] : 0;
    char d = p->pos + 1 < p->len ? p->s[p->pos + 1] : 0;
    p->pos = pos;
    p->line = line;
    p->col = col;
    p->depth = depth;
    return c == '=' && d == '=' ? 0 : c;
}

static int lex(parser_t *p)
{
    skip_blank(p);
    token_t *t = &p->tok;
    t->start = p->pos;
    t->line = p->line;
    t->col = p->col;
    if (p->pos >= p->len) {
        t->type = T_EOF;
        t->end = p->pos;
        return 0;
    }
    const char *s = p->s;
    unsigned char c = (unsigned char)s[p->pos];
    size_t n = 1;
    switch (c) {
    case '\n':
        t->type = T_NL;
        break;
    case ';':
        t->type = T_SEMI;
        break;
    case ':':
        t->type = T_COLON;
        break;
    case ',':
        t->type = T_COMMA;
        break;
    case '{':
        t->type = T_LBRACE;
        p->depth++;
        break;
    case '[':
        t->type = T_LBRACK;
        p->depth++;
        break;
    case '}':
    case ']':
        t->type = c == '}' ? T_RBRACE : T_RBRACK;
        if (p->depth > 0)
            p->depth--;
        break;
    case '=':
    case '!':
        if (p->pos + 1 < p->len && s[p->pos + 1] == '=') {
            t->type = c == '=' ? T_EQEQ : T_NE;
            n = 2;
        } else {
            t->type = c == '=' ? T_EQ : T_BANG;
        }
        break;
    case '"':
    case '\'': {
        aos_buf_reset(&p->str);
        size_t end = p->pos;
        const char *why = NULL;
        int rc = aos__str_decode(s, p->len, &end, &p->str, &why);
        if (rc) {
            if (rc == AOS_ENOMEM)
                return oom(p);
            if (!strcmp(why, "unterminated string")) /* where it starts */
                return fail(p, "%s", why);
            advance(p, end - p->pos);
            return fail_at(p, p->line, p->col, "%s", why);
        }
        t->type = T_STRING;
        n = end - p->pos;
        break;
    }
    case '$': {
        if (p->pos + 1 >= p->len || s[p->pos + 1] != '{')
            return fail(p, "unexpected '$' (a reference is ${...})");
        aos__ref_t ref;
        aos_err_t rerr = {0, ""};
        if (aos__ref_parse(s, p->len, p->pos, &ref, &rerr))
            return fail(p, "%s", rerr.msg);
        t->type = T_REF;
        n = ref.end - p->pos;
        break;
    }
    default:
        if (c == '-' || (c >= '0' && c <= '9')) {
            size_t end = aos__num_scan(s, p->len, p->pos);
            if (end == p->pos)
                return fail(p, "unexpected '-'");
            t->num_end = end;
            while (end < p->len && word_char((unsigned char)s[end]))
                end++;
            t->type = T_NUMBER;
            n = end - p->pos;
        } else if (word_start(c)) {
            size_t end = p->pos;
            while (end < p->len && word_char((unsigned char)s[end]))
                end++;
            t->type = T_WORD;
            n = end - p->pos;
        } else {
            return fail(p, "unexpected character '%c'", c);
        }
    }
    advance(p, n);
    t->end = p->pos;
    return 0;
}

static int is_word(const parser_t *p, const char *w)
{
    size_t n = strlen(w);
    return p->tok.type == T_WORD && p->tok.end - p->tok.start == n &&
           !memcmp(p->s + p->tok.start, w, n);
}

/* The current token, for messages: 'word', a string, end of line ... */
static const char *describe(parser_t *p, char *buf, size_t n)
{
    switch (p->tok.type) {
    case T_EOF:
        return "the end of the text";
    case T_NL:
        return "the end of the line";
    case T_STRING:
        return "a string";
    default: {
        size_t len = p->tok.end - p->tok.start;
        snprintf(buf, n, "'%.*s%s'", aos__snip(p->s + p->tok.start, len, 40), p->s + p->tok.start,
                 len > 40 ? "..." : "");
        return buf;
    }
    }
}

static int expected(parser_t *p, const char *what)
{
    char b[64];
    return fail(p, "expected %s, got %s", what, describe(p, b, sizeof(b)));
}

static int end_of_statement(const parser_t *p)
{
    return p->tok.type == T_NL || p->tok.type == T_SEMI || p->tok.type == T_EOF;
}

/* ---- values -------------------------------------------------------------------------- */

static json_t *token_string(parser_t *p)
{
    json_t *v = json_stringn(p->str.ptr ? p->str.ptr : "", p->str.len);
    if (!v)
        oom(p);
    return v;
}

static json_t *number(parser_t *p)
{
    const token_t *t = &p->tok;
    if (t->num_end != t->end) {
        int len = (int)(t->end - t->start);
        fail(p, "invalid number '%.*s' (quote text: \"%.*s\")", aos__snip(p->s + t->start, len, 40),
             p->s + t->start, aos__snip(p->s + t->start, len, 40), p->s + t->start);
        return NULL;
    }
    json_t *v = aos__num_value(p->s + t->start, t->end - t->start);
    if (!v)
        fail(p, "number out of range");
    return v;
}

static json_t *value(parser_t *p, int depth);

/* 1 if the current token is a number without fraction, exponent or unit. */
static int integer_token(const parser_t *p)
{
    if (p->tok.type != T_NUMBER || p->tok.num_end != p->tok.end)
        return 0;
    for (size_t i = p->tok.start; i < p->tok.end; i++)
        if (p->s[i] == '.' || p->s[i] == 'e' || p->s[i] == 'E')
            return 0;
    return 1;
}

static json_t *container(parser_t *p, int depth)
{
    int obj = p->tok.type == T_LBRACE;
    int line = p->tok.line, col = p->tok.col;
    char b[64];
    if (depth >= AOS_PLAN_DEPTH_MAX) {
        fail(p, "values nested deeper than %d", AOS_PLAN_DEPTH_MAX);
        return NULL;
    }
    json_t *out = obj ? json_object() : json_array();
    if (!out) {
        oom(p);
        return NULL;
    }
    if (lex(p))
        goto fail;
    if (p->tok.type == (obj ? T_RBRACE : T_RBRACK))
        goto done;
    for (;;) {
        if (p->tok.type == T_EOF) {
            fail_at(p, line, col, "'%c' is not closed", obj ? '{' : '[');
            goto fail;
        }
        if (obj) {
            if (p->tok.type != T_STRING && p->tok.type != T_WORD) {
                expected(p, "a key (a string or a name)");
                goto fail;
            }
            char *key = p->tok.type == T_STRING
                            ? strndup(p->str.ptr ? p->str.ptr : "", p->str.len)
                            : strndup(p->s + p->tok.start, p->tok.end - p->tok.start);
            if (!key) {
                oom(p);
                goto fail;
            }
            if (json_object_get(out, key)) {
                fail(p, "key \"%s\" given twice", key);
                free(key);
                goto fail;
            }
            if (lex(p) || (p->tok.type != T_COLON && expected(p, "':' after the key")) || lex(p)) {
                free(key);
                goto fail;
            }
            json_t *v = value(p, depth + 1);
            if (!v || json_object_set_new(out, key, v)) {
                free(key);
                if (v)
                    oom(p);
                goto fail;
            }
            free(key);
        } else {
            json_t *v = value(p, depth + 1);
            if (!v || json_array_append_new(out, v)) {
                if (v)
                    oom(p);
                goto fail;
            }
        }
        if (p->tok.type == (obj ? T_RBRACE : T_RBRACK))
            break;
        if (p->tok.type == T_EOF)
            continue; /* reported at the bracket above */
        if (p->tok.type != T_COMMA) {
            fail(p, "expected ',' or '%c', got %s", obj ? '}' : ']', describe(p, b, sizeof(b)));
            goto fail;
        }
        if (lex(p))
            goto fail;
    }
done:
    if (lex(p))
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* A value; leaves the token after it current. */
static json_t *value(parser_t *p, int depth)
{
    json_t *v = NULL;
    switch (p->tok.type) {
    case T_LBRACE:
    case T_LBRACK:
        return container(p, depth);
    case T_STRING:
        v = token_string(p);
        break;
    case T_NUMBER:
        v = number(p);
        break;
    case T_REF:
        v = json_stringn(p->s + p->tok.start, p->tok.end - p->tok.start);
        if (!v)
            oom(p);
        break;
    case T_WORD:
        if (is_word(p, "true"))
            v = json_true();
        else if (is_word(p, "false"))
            v = json_false();
        else if (is_word(p, "null"))
            v = json_null();
        else if (!(v = json_stringn(p->s + p->tok.start, p->tok.end - p->tok.start)))
            oom(p);
        break;
    default:
        expected(p, "a value (a string, number, true, false, null, ${...}, {...} or [...])");
        return NULL;
    }
    if (v && lex(p)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* ---- options --------------------------------------------------------------------------- */

static const char *const OPTIONS[] = {"check",    "retry",   "when",       "fallback",
                                      "optional", "timeout", "on_timeout", NULL};

static int option_word(const parser_t *p)
{
    for (size_t i = 0; OPTIONS[i]; i++)
        if (is_word(p, OPTIONS[i]))
            return 1;
    return 0;
}

/* A duration: an integer and a unit (ms, s, m, h), in milliseconds. */
static int duration(parser_t *p, long long *ms)
{
    const token_t *t = &p->tok;
    if (t->type != T_NUMBER)
        return expected(p, "a duration (500ms, 30s, 10m, 1h)");
    const char *s = p->s + t->start;
    size_t nlen = t->num_end - t->start, ulen = t->end - t->num_end;
    if (memchr(s, '.', nlen) || memchr(s, 'e', nlen) || memchr(s, 'E', nlen) || s[0] == '-')
        return fail(p, "a duration is a whole number and a unit: 500ms, 30s, 10m, 1h");
    if (ulen == 0)
        return fail(p, "a duration needs a unit: 500ms, 30s, 10m, 1h");
    long long mult = 0;
    const char *u = p->s + t->num_end;
    if (ulen == 2 && !memcmp(u, "ms", 2))
        mult = 1;
    else if (ulen == 1 && *u == 's')
        mult = 1000;
    else if (ulen == 1 && *u == 'm')
        mult = 60000;
    else if (ulen == 1 && *u == 'h')
        mult = 3600000;
    else
        return fail(p, "unknown unit '%.*s' (ms, s, m, h)", aos__snip(u, ulen, 20), u);
    if (nlen > 9)
        return fail(p, "duration out of range");
    long long v = 0;
    for (size_t i = 0; i < nlen; i++)
        v = v * 10 + (s[i] - '0');
    *ms = v * mult;
    return lex(p);
}

static int set(parser_t *p, json_t *obj, const char *key, json_t *v)
{
    return !v || json_object_set_new(obj, key, v) ? oom(p) : 0;
}

static int twice(parser_t *p, int line, int col, const char *what)
{
    return fail_at(p, line, col, "%s given twice", what);
}

static int option_check(parser_t *p)
{
    json_t *chk = json_object_get(p->last, "check");
    if (!chk) {
        if (set(p, p->last, "check", json_object()))
            return AOS_ENOMEM;
        chk = json_object_get(p->last, "check");
    }
    int n = 0;
    if (lex(p))
        return AOS_EINVAL;
    for (;; n++) {
        int line = p->tok.line, col = p->tok.col, rc;
        const char *key = NULL;
        json_t *v = NULL;
        if (is_word(p, "non_empty") || is_word(p, "not_error") || is_word(p, "allow_error")) {
            key = is_word(p, "non_empty") ? "non_empty" : "not_error";
            v = json_boolean(!is_word(p, "allow_error"));
            if (lex(p))
                return AOS_EINVAL;
        } else if (is_word(p, "contains") || is_word(p, "matches") || is_word(p, "llm")) {
            key = is_word(p, "contains") ? "contains" : is_word(p, "llm") ? "llm" : "matches";
            if (lex(p))
                return AOS_EINVAL;
            if (p->tok.type != T_STRING)
                return expected(p, key[0] == 'c' ? "a string after contains"
                                   : key[0] == 'l'
                                       ? "a string (the requirement) after llm"
                                       : "a string (a regular expression) after matches");
            if (!(v = token_string(p)) || lex(p)) {
                json_decref(v);
                return AOS_EINVAL;
            }
        } else if (is_word(p, "schema")) {
            key = "schema";
            if (lex(p))
                return AOS_EINVAL;
            if (p->tok.type != T_LBRACE)
                return expected(p, "a JSON object after schema");
            if (!(v = value(p, 0)))
                return AOS_EINVAL;
        } else {
            break;
        }
        if (json_object_get(chk, key)) {
            json_decref(v);
            return twice(p, line, col,
                         !strcmp(key, "not_error") ? "not_error or allow_error" : key);
        }
        if ((rc = set(p, chk, key, v)) != 0)
            return rc;
    }
    if (n == 0)
        return expected(p, "a check after 'check' (non_empty, not_error, allow_error, contains, "
                           "matches, schema, llm)");
    return 0;
}

static int option_when(parser_t *p)
{
    int line = p->tok.line, col = p->tok.col;
    if (json_object_get(p->last, "when"))
        return twice(p, line, col, "when");
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = lex(p);
    if (!rc && p->tok.type == T_BANG) {
        rc = aos_buf_puts(&b, "!") ? oom(p) : lex(p);
    }
    if (!rc && p->tok.type != T_REF)
        rc = expected(p, "a reference ${...} after when");
    if (!rc && aos_buf_append(&b, p->s + p->tok.start, p->tok.end - p->tok.start))
        rc = oom(p);
    if (!rc)
        rc = lex(p);
    if (!rc && b.ptr[0] != '!' && (p->tok.type == T_EQEQ || p->tok.type == T_NE)) {
        if (aos_buf_puts(&b, p->tok.type == T_EQEQ ? " == " : " != "))
            rc = oom(p);
        if (!rc)
            rc = lex(p);
        if (!rc && p->tok.type != T_STRING && p->tok.type != T_NUMBER && !is_word(p, "true") &&
            !is_word(p, "false") && !is_word(p, "null"))
            rc = expected(p, "a literal (a string, number, true, false or null)");
        if (!rc && p->tok.type == T_NUMBER && p->tok.num_end != p->tok.end)
            rc = fail(p, "invalid number");
        if (!rc && aos_buf_append(&b, p->s + p->tok.start, p->tok.end - p->tok.start))
            rc = oom(p);
        if (!rc)
            rc = lex(p);
    }
    if (!rc)
        rc = set(p, p->last, "when", json_stringn(b.ptr, b.len));
    aos_buf_release(&b);
    return rc;
}

/* The options after a statement, and on the lines that begin with one. */
static int options(parser_t *p)
{
    while (p->tok.type == T_WORD && option_word(p)) {
        int line = p->tok.line, col = p->tok.col, rc = 0;
        char kw[16];
        snprintf(kw, sizeof(kw), "%.*s", (int)(p->tok.end - p->tok.start), p->s + p->tok.start);
        if (peek_char(p) == '=')
            return fail(p, "write options without '=': %s ...%s", kw,
                        p->last_kind == 't' ? " (name=value is an argument, before the options)"
                                            : "");
        int tool = p->last_kind == 't', appr = p->last_kind == 'a';
        if (strcmp(kw, "when") && !tool &&
            !(appr && (!strcmp(kw, "timeout") || !strcmp(kw, "on_timeout"))))
            return fail(p, "%s does not apply to %s", kw,
                        appr ? "an approval (timeout, on_timeout, when)" : "a milestone (when)");
        if (!strcmp(kw, "on_timeout") && tool)
            return fail(p, "on_timeout applies to an approval only");
        json_t *appr_obj = json_object_get(p->last, "approval");
        const char *field = !strcmp(kw, "timeout") ? (appr ? "approval.timeout_s" : "timeout_ms")
                            : !strcmp(kw, "on_timeout") ? "approval.on_timeout"
                                                        : kw;
        if (mark(p, field, line, col))
            return AOS_ENOMEM;
        if (!strcmp(kw, "check")) {
            rc = option_check(p);
        } else if (!strcmp(kw, "when")) {
            rc = option_when(p);
        } else if (!strcmp(kw, "retry")) {
            if (json_object_get(p->last, "retry"))
                return twice(p, line, col, "retry");
            if (lex(p))
                return AOS_EINVAL;
            if (!integer_token(p))
                return expected(p, "a count after retry (retry 3)");
            json_t *max = number(p);
            if (!max)
                return AOS_EINVAL;
            json_t *r = json_pack("{s:o}", "max", max);
            if (set(p, p->last, "retry", r))
                return AOS_ENOMEM;
            if (lex(p))
                return AOS_EINVAL;
            if (is_word(p, "backoff")) {
                long long ms = 0;
                if (lex(p) || duration(p, &ms))
                    return AOS_EINVAL;
                rc = set(p, r, "backoff_ms", json_integer(ms));
            }
        } else if (!strcmp(kw, "fallback")) {
            if (json_object_get(p->last, "fallback"))
                return twice(p, line, col, "fallback");
            if (lex(p))
                return AOS_EINVAL;
            if (p->tok.type != T_WORD)
                return expected(p, "a step id after fallback");
            rc = set(p, p->last, "fallback",
                     json_stringn(p->s + p->tok.start, p->tok.end - p->tok.start));
            if (!rc)
                rc = lex(p);
        } else if (!strcmp(kw, "optional")) {
            if (json_object_get(p->last, "optional"))
                return twice(p, line, col, "optional");
            rc = set(p, p->last, "optional", json_true());
            if (!rc)
                rc = lex(p);
        } else if (!strcmp(kw, "timeout")) {
            long long ms = 0;
            if (json_object_get(appr ? appr_obj : p->last, appr ? "timeout_s" : "timeout_ms"))
                return twice(p, line, col, "timeout");
            if (lex(p))
                return AOS_EINVAL;
            int tl = p->tok.line, tc = p->tok.col;
            if (duration(p, &ms))
                return AOS_EINVAL;
            if (appr && ms % 1000)
                return fail_at(p, tl, tc, "an approval's timeout is whole seconds");
            rc = appr ? set(p, appr_obj, "timeout_s", json_integer(ms / 1000))
                      : set(p, p->last, "timeout_ms", json_integer(ms));
        } else { /* on_timeout */
            if (json_object_get(appr_obj, "on_timeout"))
                return twice(p, line, col, "on_timeout");
            if (lex(p))
                return AOS_EINVAL;
            if (!is_word(p, "approve") && !is_word(p, "abort") && !is_word(p, "downgrade"))
                return expected(p, "approve, abort or downgrade after on_timeout");
            rc = set(p, appr_obj, "on_timeout",
                     json_stringn(p->s + p->tok.start, p->tok.end - p->tok.start));
            if (!rc)
                rc = lex(p);
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- statements ------------------------------------------------------------------------ */

/* "ID:" before what a statement holds, or nothing (the id is given later). */
static int step_id(parser_t *p, json_t *step)
{
    if (p->tok.type != T_WORD || peek_char(p) != ':')
        return 0;
    size_t len = p->tok.end - p->tok.start;
    if (!aos__id_ok(p->s + p->tok.start, len))
        return fail(p, "invalid step id '%.*s' ([A-Za-z_][A-Za-z0-9_-]{0,63})",
                    aos__snip(p->s + p->tok.start, len, 70), p->s + p->tok.start);
    if (set(p, step, "id", json_stringn(p->s + p->tok.start, len)) ||
        mark(p, "id", p->tok.line, p->tok.col))
        return AOS_ENOMEM;
    if (lex(p)) /* the id */
        return AOS_EINVAL;
    return lex(p) ? AOS_EINVAL : 0; /* the ':' */
}

static int statement_step(parser_t *p, json_t *step)
{
    char b[64];
    if (step_id(p, step))
        return AOS_EINVAL;
    size_t len = p->tok.end - p->tok.start;
    const char *t = p->s + p->tok.start;
    if ((p->tok.type != T_WORD && p->tok.type != T_NUMBER) || !memmem(t, len, "__", 2)) {
        int plain_word =
            p->tok.type == T_WORD && peek_char(p) != '=' && !json_object_get(step, "id");
        return fail(p, "expected a tool name <server>__<tool>, got %s%s", describe(p, b, sizeof(b)),
                    plain_word ? " (an id is followed by ':' - step ID: TOOL)" : "");
    }
    json_t *args = json_object();
    if (set(p, step, "tool", json_stringn(t, len)) || set(p, step, "args", args) ||
        mark(p, "tool", p->tok.line, p->tok.col))
        return AOS_ENOMEM;
    if (lex(p))
        return AOS_EINVAL;
    while ((p->tok.type == T_WORD || p->tok.type == T_STRING) && peek_char(p) == '=') {
        int line = p->tok.line, col = p->tok.col;
        char *name = p->tok.type == T_STRING
                         ? strndup(p->str.ptr ? p->str.ptr : "", p->str.len)
                         : strndup(p->s + p->tok.start, p->tok.end - p->tok.start);
        if (!name)
            return oom(p);
        if (json_object_get(args, name)) {
            fail_at(p, line, col, "argument '%s' given twice", name);
            free(name);
            return AOS_EINVAL;
        }
        char field[160];
        snprintf(field, sizeof(field), aos__plain_name(name) ? "args.%s" : "args[\"%s\"]", name);
        if (mark(p, field, line, col)) {
            free(name);
            return AOS_ENOMEM;
        }
        json_t *v = NULL;
        int rc = lex(p); /* the name */
        if (!rc)
            rc = lex(p); /* the '=' */
        if (!rc)
            v = value(p, 0);
        if (!v || json_object_set_new(args, name, v)) {
            free(name);
            return v ? oom(p) : AOS_EINVAL;
        }
        free(name);
    }
    return 0;
}

static int statement_text(parser_t *p, json_t *step, char kind)
{
    const char *what =
        kind == 'a' ? "a message (a string) after approve" : "a label (a string) after milestone";
    if (step_id(p, step))
        return AOS_EINVAL;
    if (p->tok.type != T_STRING)
        return expected(p, what);
    json_t *s = token_string(p);
    if (!s || mark(p, kind == 'a' ? "approval.message" : "milestone", p->tok.line, p->tok.col)) {
        json_decref(s);
        return AOS_ENOMEM;
    }
    int rc;
    if (kind == 'a')
        rc = set(p, step, "approval", json_pack("{s:o}", "message", s));
    else
        rc = set(p, step, "milestone", s);
    return rc ? rc : lex(p);
}

static int statement(parser_t *p)
{
    char b[64];
    if (p->tok.type != T_WORD)
        return fail(p, "expected a statement (step, approve or milestone), got %s",
                    describe(p, b, sizeof(b)));
    int line = p->tok.line, col = p->tok.col;
    char kind = is_word(p, "step")        ? 't'
                : is_word(p, "approve")   ? 'a'
                : is_word(p, "milestone") ? 'm'
                                          : 0;
    if (!kind) {
        if (option_word(p)) {
            if (!p->last)
                return fail(p, "%s before any step: options follow the step they are for",
                            describe(p, b, sizeof(b)));
            return options(p);
        }
        return fail(p, "unknown statement %s (step, approve or milestone)",
                    describe(p, b, sizeof(b)));
    }
    if (json_array_size(p->steps) >= AOS_PLAN_MAX_STEPS)
        return fail(p, "more than %d steps", AOS_PLAN_MAX_STEPS);
    json_t *step = json_object();
    if (!step || json_array_append_new(p->steps, step) ||
        json_array_append_new(p->marks, json_object()) || mark(p, "", line, col))
        return oom(p);
    p->last = step;
    p->last_kind = kind;
    if (lex(p))
        return AOS_EINVAL;
    int rc = kind == 't' ? statement_step(p, step) : statement_text(p, step, kind);
    if (!rc)
        rc = options(p);
    if (!rc && !end_of_statement(p)) {
        if (kind == 't' && (p->tok.type == T_WORD || p->tok.type == T_STRING) &&
            peek_char(p) == '=')
            return fail(p, "arguments (name=value) come before the options");
        if (kind == 't' && p->tok.type == T_WORD)
            return fail(p,
                        "expected name=value or an option (check, retry, when, fallback, "
                        "optional, timeout), got %s",
                        describe(p, b, sizeof(b)));
        return fail(p, "unexpected %s", describe(p, b, sizeof(b)));
    }
    return rc;
}

/* ---- the whole text ---------------------------------------------------------------------- */

/* Size, UTF-8 and line length, with the position of the first fault. */
static int precheck(parser_t *p)
{
    const unsigned char *s = (const unsigned char *)p->s;
    int line = 1, col = 1;
    size_t line_start = 0;
    if (p->len > AOS_DSL_MAX_INPUT)
        return fail_at(p, 1, 1, "the text is longer than %d bytes", AOS_DSL_MAX_INPUT);
    for (size_t i = 0; i < p->len;) {
        if (s[i] == '\n') {
            line++;
            col = 1;
            line_start = ++i;
            continue;
        }
        if (i - line_start >= AOS_DSL_MAX_LINE)
            return fail_at(p, line, col, "line longer than %d bytes", AOS_DSL_MAX_LINE);
        if (s[i] == 0)
            return fail_at(p, line, col, "NUL byte");
        size_t n = 1;
        if (s[i] >= 0x80 && (n = aos_utf8_seq(s + i, s + p->len)) == 0)
            return fail_at(p, line, col, "invalid UTF-8");
        i += n;
        col++;
    }
    return 0;
}

static json_t *parse(parser_t *p)
{
    if (precheck(p) || lex(p))
        return NULL;
    for (;;) {
        while (p->tok.type == T_NL || p->tok.type == T_SEMI)
            if (lex(p))
                return NULL;
        if (p->tok.type == T_EOF)
            break;
        if (statement(p))
            return NULL;
        if (!end_of_statement(p)) {
            char b[64];
            fail(p, "unexpected %s", describe(p, b, sizeof(b)));
            return NULL;
        }
    }
    if (json_array_size(p->steps) == 0) {
        fail(p, "no steps (a plan is lines of step, approve and milestone)");
        return NULL;
    }
    /* steps written without an id get s<N>, N their place from 1 */
    size_t i;
    json_t *st;
    json_array_foreach(p->steps, i, st)
    {
        if (!json_object_get(st, "id")) {
            char id[32];
            snprintf(id, sizeof(id), "s%zu", i + 1);
            if (set(p, st, "id", json_string(id)))
                return NULL;
        }
    }
    return json_pack("{s:O}", "steps", p->steps);
}

/* Puts the position where field was written (or the longest field it is
 * inside of, at least the statement) before the message of a validation
 * error. */
static void at_field(parser_t *p, const json_t *marks, const char *field)
{
    const json_t *best = NULL;
    size_t best_len = 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)marks, k, v)
    {
        size_t n = strlen(k);
        if ((!best || n > best_len) && !strncmp(field, k, n) &&
            (n == 0 || field[n] == '\0' || field[n] == '.' || field[n] == '[')) {
            best = v;
            best_len = n;
        }
    }
    if (!best)
        return;
    char msg[sizeof(p->err->msg)];
    memcpy(msg, p->err->msg, sizeof(msg));
    aos__fail(p->err, p->err->code, "%d:%d: %s", (int)json_integer_value(json_array_get(best, 0)),
              (int)json_integer_value(json_array_get(best, 1)), msg);
}

json_t *aos__dsl_parse(const char *text, size_t len, const aos_plan_opts_t *opts, aos_err_t *err)
{
    aos_err_t local = {0, ""};
    parser_t p = {.s = text ? text : "", .len = text ? len : 0, .line = 1, .col = 1};
    p.err = err ? err : &local;
    p.err->code = 0;
    aos_buf_init(&p.str, 0);
    p.steps = json_array();
    p.marks = json_array();
    json_t *plan = p.steps && p.marks ? parse(&p) : NULL;
    if (!plan && !p.err->code)
        oom(&p);
    json_t *out = NULL;
    if (plan) {
        long bad = -1;
        char field[128] = "";
        out = aos__plan_validate(plan, opts, p.err, &bad, field, sizeof(field));
        if (!out && bad >= 0)
            at_field(&p, json_array_get(p.marks, (size_t)bad), field);
        json_decref(plan);
    }
    json_decref(p.steps);
    json_decref(p.marks);
    aos_buf_release(&p.str);
    return out;
}

json_t *aos_dsl_parse(const char *text, size_t len, aos_err_t *err)
{
    return aos__dsl_parse(text, len, NULL, err);
}
