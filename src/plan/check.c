/* check.c - a tool step's result and the Critic's checks of it.
 *
 * The result of a step (what ${STEP.result} names) comes from its MCP
 * CallToolResult: structuredContent, else its text parsed as JSON, else the
 * text. The Critic looks at the CallToolResult (isError) and at that result:
 * non-empty, contains a string, matches a POSIX extended regular expression,
 * conforms to a subset of JSON Schema. Regular expressions come from plans,
 * i.e. from users and LLMs: they are bounded before regcomp sees them
 * (glibc expands {m,n} and x+ by copying the expression, so a short pattern
 * can ask for gigabytes), back-references (exponential matching) are
 * refused, and only the first MATCH_MAX bytes of a result are matched:
 * glibc's regexec tries every start position, so an unanchored pattern
 * costs up to length squared ([a-z]+! takes 7 s on 64 KiB of letters, about
 * 0.05 s on 4 KiB). */
#include "plan/internal.h"
#include "utf8/utf8.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REGEX_NODES_MAX  2000
#define REGEX_NEST_MAX   32
#define REGEX_REPEAT_MAX 255
#define MATCH_MAX        AOS_PLAN_MATCH_MAX

/* ---- the result of a step -------------------------------------------------------- */

json_t *aos_plan_result(const json_t *call_result)
{
    const json_t *sc = json_object_get(call_result, "structuredContent");
    if (sc && !json_is_null(sc))
        return aos__json_copy(sc);
    const json_t *content = json_object_get(call_result, "content");
    aos_buf_t text;
    aos_buf_init(&text, 0);
    int texts = 0;
    size_t i;
    const json_t *item;
    json_array_foreach(content, i, item)
    {
        const json_t *t = json_object_get(item, "text");
        if (!json_is_string(t) || strcmp(json_string_value(json_object_get(item, "type")), "text"))
            continue;
        if ((texts++ && aos_buf_append(&text, "\n", 1)) ||
            aos_buf_append(&text, json_string_value(t), json_string_length(t))) {
            aos_buf_release(&text);
            return NULL;
        }
    }
    if (!texts) {
        aos_buf_release(&text);
        return json_array_size(content) ? aos__json_copy(content) : json_null();
    }
    /* JSON text when it parses; a text that cannot begin a JSON value
     * (most tools' prose) is not handed to the parser, and a failed parse
     * makes no error message (each cost thousands of instructions) */
    size_t at = 0;
    while (at < text.len && strchr(" \t\r\n", text.ptr[at]) && text.ptr[at])
        at++;
    json_t *v = at < text.len && text.ptr[at] && strchr("{[\"-0123456789tfn", text.ptr[at])
                    ? json_loadb(text.ptr, text.len, JSON_DECODE_ANY, NULL)
                    : NULL;
    if (!v)
        v = json_stringn(text.ptr, text.len);
    aos_buf_release(&text);
    return v;
}

/* ---- regular expressions --------------------------------------------------------- */

static int regex_fail(char *why, size_t n, const char *what)
{
    snprintf(why, n, "%s", what);
    return AOS_EINVAL;
}

/* Estimates the size regcomp gives p once {m,n} copies are made, refusing
 * what is past the bounds. Parse errors are left to regcomp. */
static int regex_bounded(const char *p, char *why, size_t n)
{
    size_t len = strlen(p);
    if (len > AOS_PLAN_REGEX_MAX)
        return regex_fail(why, n, "regular expression longer than 1024 bytes");
    /* per open group: its size so far and the size of its last item */
    size_t size[REGEX_NEST_MAX + 1] = {0}, last[REGEX_NEST_MAX + 1] = {0};
    int d = 0;
    for (size_t i = 0; i < len;) {
        char c = p[i];
        if (c == '\\') {
            if (i + 1 < len && p[i + 1] >= '1' && p[i + 1] <= '9')
                return regex_fail(why, n, "back-references (\\1 ...) are not supported");
            size[d] += 1;
            last[d] = 1;
            i += 2;
        } else if (c == '[') {
            size_t j = i + 1;
            if (j < len && p[j] == '^')
                j++;
            if (j < len && p[j] == ']')
                j++;
            while (j < len && p[j] != ']') {
                if (p[j] == '[' && j + 1 < len && strchr(":.=", p[j + 1])) {
                    const char *close = strstr(p + j + 2, (char[]){p[j + 1], ']', 0});
                    j = close ? (size_t)(close - p) + 2 : len;
                } else {
                    j++;
                }
            }
            size[d] += 1;
            last[d] = 1;
            i = j + 1;
        } else if (c == '(') {
            if (d == REGEX_NEST_MAX)
                return regex_fail(why, n, "groups nested deeper than 32");
            d++;
            size[d] = last[d] = 0;
            i++;
        } else if (c == ')' && d > 0) {
            size_t g = size[d] + 1;
            d--;
            size[d] += g;
            last[d] = g;
            i++;
        } else if (c == '|') {
            size[d] += 1;
            last[d] = 0;
            i++;
        } else if (c == '{') {
            size_t j = i + 1, lo = 0, hi;
            while (j < len && p[j] >= '0' && p[j] <= '9' && lo <= REGEX_REPEAT_MAX)
                lo = lo * 10 + (size_t)(p[j++] - '0');
            hi = lo;
            if (j < len && p[j] == ',') {
                j++;
                hi = lo + 1;
                if (j < len && p[j] >= '0' && p[j] <= '9') {
                    hi = 0;
                    while (j < len && p[j] >= '0' && p[j] <= '9' && hi <= REGEX_REPEAT_MAX)
                        hi = hi * 10 + (size_t)(p[j++] - '0');
                }
            }
            if (lo > REGEX_REPEAT_MAX || hi > REGEX_REPEAT_MAX)
                return regex_fail(why, n, "a repetition count over 255");
            size_t k = hi > lo ? hi : lo;
            if (k == 0)
                k = 1;
            size[d] += last[d] * (k - 1) + 1;
            last[d] *= k;
            i = j < len && p[j] == '}' ? j + 1 : i + 1;
        } else if (c == '+') { /* glibc makes x+ into xx* */
            size[d] += last[d] + 1;
            last[d] *= 2;
            i++;
        } else {
            size[d] += 1;
            last[d] = c == '*' || c == '?' ? last[d] : 1;
            i++;
        }
        if (size[d] > REGEX_NODES_MAX || last[d] > REGEX_NODES_MAX)
            return regex_fail(why, n, "regular expression too complex");
    }
    return 0;
}

int aos__regex_compile(regex_t *re, const char *pattern, char *why, size_t n)
{
    int rc = regex_bounded(pattern, why, n);
    if (rc)
        return rc;
    int r = regcomp(re, pattern, REG_EXTENDED | REG_NOSUB);
    if (r != 0) {
        char msg[128];
        regerror(r, re, msg, sizeof(msg));
        snprintf(why, n, "invalid regular expression: %s", msg);
        return AOS_EINVAL;
    }
    return 0;
}

/* ---- the JSON Schema subset ---------------------------------------------------- */

static const char *const TYPES[] = {"object", "array",   "string", "integer",
                                    "number", "boolean", "null"};

static int type_known(const char *t)
{
    for (size_t i = 0; i < sizeof(TYPES) / sizeof(*TYPES); i++)
        if (!strcmp(t, TYPES[i]))
            return 1;
    return 0;
}

static int count_ok(const json_t *v)
{
    return json_is_integer(v) && json_integer_value(v) >= 0;
}

static int syntax(const json_t *s, aos_buf_t *path, int depth, char *why, size_t n)
{
    size_t mark = path->len;
#define BAD(...)                                                                                   \
    do {                                                                                           \
        int k_ = snprintf(why, n, "%s%s", path->ptr ? path->ptr : "", path->len ? ": " : "");      \
        if (k_ >= 0 && (size_t)k_ < n)                                                             \
            snprintf(why + k_, n - (size_t)k_, __VA_ARGS__);                                       \
        return AOS_EINVAL;                                                                         \
    } while (0)
    if (!json_is_object(s))
        BAD("must be an object (a schema)");
    if (depth > AOS_PLAN_DEPTH_MAX)
        BAD("nested deeper than %d", AOS_PLAN_DEPTH_MAX);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)s, k, v)
    {
        path->len = mark;
        if (aos_buf_printf(path, "%s%s", mark ? "." : "", k))
            BAD("out of memory");
        if (!strcmp(k, "type")) {
            if (json_is_string(v)) {
                if (!type_known(json_string_value(v)))
                    BAD("unknown type '%s'", json_string_value(v));
            } else if (json_is_array(v) && json_array_size(v) > 0) {
                size_t i;
                const json_t *t;
                json_array_foreach(v, i,
                                   t) if (!json_is_string(t) || !type_known(json_string_value(t)))
                    BAD("must be a type name or an array of them");
            } else {
                BAD("must be a type name or an array of them");
            }
        } else if (!strcmp(k, "required")) {
            size_t i;
            const json_t *t;
            if (!json_is_array(v))
                BAD("must be an array of property names");
            json_array_foreach(v, i, t) if (!json_is_string(t))
                BAD("must be an array of property names");
        } else if (!strcmp(k, "properties")) {
            if (!json_is_object(v))
                BAD("must be an object of schemas");
            const char *pk;
            const json_t *ps;
            size_t pmark = path->len;
            json_object_foreach((json_t *)v, pk, ps)
            {
                path->len = pmark;
                if (aos_buf_printf(path, ".%s", pk))
                    BAD("out of memory");
                int rc = syntax(ps, path, depth + 1, why, n);
                if (rc)
                    return rc;
            }
        } else if (!strcmp(k, "items")) {
            int rc = syntax(v, path, depth + 1, why, n);
            if (rc)
                return rc;
        } else if (!strcmp(k, "enum")) {
            if (!json_is_array(v) || json_array_size(v) == 0)
                BAD("must be a non-empty array");
        } else if (!strcmp(k, "minimum") || !strcmp(k, "maximum")) {
            if (!json_is_number(v))
                BAD("must be a number");
        } else if (!strcmp(k, "minLength") || !strcmp(k, "maxLength") || !strcmp(k, "minItems") ||
                   !strcmp(k, "maxItems")) {
            if (!count_ok(v))
                BAD("must be a non-negative integer");
        } else if (!strcmp(k, "description") || !strcmp(k, "title")) {
            if (!json_is_string(v))
                BAD("must be a string");
        } else {
            BAD("unsupported keyword (type, required, properties, items, enum, minimum, "
                "maximum, minLength, maxLength, minItems, maxItems, description, title)");
        }
    }
#undef BAD
    path->len = mark;
    if (path->ptr)
        path->ptr[mark] = '\0';
    return 0;
}

int aos__depth(const json_t *v)
{
    int d = 0;
    size_t i;
    const char *k;
    const json_t *e;
    if (json_is_array(v))
        json_array_foreach(v, i, e)
        {
            int c = aos__depth(e);
            d = c > d ? c : d;
        }
    else if (json_is_object(v))
        json_object_foreach((json_t *)v, k, e)
        {
            int c = aos__depth(e);
            d = c > d ? c : d;
        }
    else
        return 0;
    return d + 1;
}

int aos__schema_syntax(const json_t *schema, char *why, size_t n)
{
    if (aos__depth(schema) > AOS_PLAN_DEPTH_MAX) {
        snprintf(why, n, "nested deeper than %d", AOS_PLAN_DEPTH_MAX);
        return AOS_EINVAL;
    }
    aos_buf_t path;
    aos_buf_init(&path, 0);
    int rc = syntax(schema, &path, 0, why, n);
    aos_buf_release(&path);
    return rc;
}

/* ---- checking a value against the subset --------------------------------------- */

static int is_type(const json_t *v, const char *t)
{
    if (!strcmp(t, "integer"))
        return json_is_integer(v) ||
               (json_is_real(v) && json_real_value(v) == (double)(long long)json_real_value(v));
    if (!strcmp(t, "number"))
        return json_is_number(v);
    if (!strcmp(t, "boolean"))
        return json_is_boolean(v);
    return !strcmp(t, aos__type_name(v));
}

static size_t chars(const char *s, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)s[i] & 0xc0) != 0x80;
    return c;
}

static void num_text(const json_t *v, char *out, size_t n)
{
    if (json_is_integer(v))
        snprintf(out, n, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    else
        snprintf(out, n, "%.17g", json_number_value(v));
}

static int conform(const json_t *v, const json_t *s, aos_buf_t *path, char *why, size_t n)
{
#define FAIL(...)                                                                                  \
    do {                                                                                           \
        int k_ = snprintf(why, n, "%s: ", path->ptr);                                              \
        if (k_ >= 0 && (size_t)k_ < n)                                                             \
            snprintf(why + k_, n - (size_t)k_, __VA_ARGS__);                                       \
        return AOS_EINVAL;                                                                         \
    } while (0)
    const json_t *t = json_object_get(s, "type");
    if (json_is_string(t) && !is_type(v, json_string_value(t)))
        FAIL("expected %s, got %s", json_string_value(t), aos__type_name(v));
    if (json_is_array(t)) {
        size_t i;
        const json_t *e;
        int ok = 0;
        json_array_foreach(t, i, e) ok |= is_type(v, json_string_value(e));
        if (!ok) {
            char list[160] = "";
            size_t used = 0;
            json_array_foreach(t, i, e)
            {
                int k = snprintf(list + used, sizeof(list) - used, "%s%s", i ? " or " : "",
                                 json_string_value(e));
                if (k < 0 || (size_t)k >= sizeof(list) - used)
                    break;
                used += (size_t)k;
            }
            FAIL("expected %s, got %s", list, aos__type_name(v));
        }
    }
    const json_t *en = json_object_get(s, "enum");
    if (en) {
        size_t i;
        const json_t *e;
        int ok = 0;
        json_array_foreach(en, i, e) ok |= aos__equal(v, e);
        if (!ok)
            FAIL("not one of the allowed values");
    }
    char a[40], b[40];
    const json_t *lim;
    if (json_is_number(v) && (lim = json_object_get(s, "minimum")) &&
        json_number_value(v) < json_number_value(lim)) {
        num_text(v, a, sizeof(a));
        num_text(lim, b, sizeof(b));
        FAIL("%s is less than the minimum %s", a, b);
    }
    if (json_is_number(v) && (lim = json_object_get(s, "maximum")) &&
        json_number_value(v) > json_number_value(lim)) {
        num_text(v, a, sizeof(a));
        num_text(lim, b, sizeof(b));
        FAIL("%s is more than the maximum %s", a, b);
    }
    if (json_is_string(v)) {
        size_t c = chars(json_string_value(v), json_string_length(v));
        if ((lim = json_object_get(s, "minLength")) && c < (size_t)json_integer_value(lim))
            FAIL("shorter than %" JSON_INTEGER_FORMAT " characters", json_integer_value(lim));
        if ((lim = json_object_get(s, "maxLength")) && c > (size_t)json_integer_value(lim))
            FAIL("longer than %" JSON_INTEGER_FORMAT " characters", json_integer_value(lim));
    }
    if (json_is_array(v)) {
        size_t c = json_array_size(v);
        if ((lim = json_object_get(s, "minItems")) && c < (size_t)json_integer_value(lim))
            FAIL("fewer than %" JSON_INTEGER_FORMAT " items", json_integer_value(lim));
        if ((lim = json_object_get(s, "maxItems")) && c > (size_t)json_integer_value(lim))
            FAIL("more than %" JSON_INTEGER_FORMAT " items", json_integer_value(lim));
        const json_t *items = json_object_get(s, "items");
        size_t i;
        const json_t *e;
        size_t mark = path->len;
        if (items)
            json_array_foreach(v, i, e)
            {
                path->len = mark;
                if (aos_buf_printf(path, "[%zu]", i))
                    FAIL("out of memory");
                int rc = conform(e, items, path, why, n);
                if (rc)
                    return rc;
            }
        path->len = mark;
        path->ptr[mark] = '\0';
    }
    if (json_is_object(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(json_object_get(s, "required"), i, e)
        {
            if (!json_object_get(v, json_string_value(e)))
                FAIL("missing required property \"%s\"", json_string_value(e));
        }
        const char *k;
        const json_t *ps;
        size_t mark = path->len;
        json_object_foreach((json_t *)json_object_get(s, "properties"), k, ps)
        {
            const json_t *m = json_object_get(v, k);
            if (!m)
                continue;
            path->len = mark;
            if (aos_buf_printf(path, aos__plain_name(k) ? ".%s" : "[\"%s\"]", k))
                FAIL("out of memory");
            int rc = conform(m, ps, path, why, n);
            if (rc)
                return rc;
        }
        path->len = mark;
        path->ptr[mark] = '\0';
    }
#undef FAIL
    return 0;
}

/* ---- the Critic ---------------------------------------------------------------- */

static int verdict(char *why, size_t n, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int verdict(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(why, n, fmt, ap);
    va_end(ap);
    if (k >= (int)n)
        why[aos_utf8_trim(why, n - 1)] = '\0';
    return AOS_EINVAL;
}

static int empty(const json_t *v)
{
    if (json_is_null(v))
        return 1;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        for (size_t i = 0; i < json_string_length(v); i++)
            if (!strchr(" \t\r\n", s[i]) || !s[i])
                return 0;
        return 1;
    }
    if (json_is_array(v))
        return json_array_size(v) == 0;
    if (json_is_object(v))
        return json_object_size(v) == 0;
    return 0;
}

static const char *error_text(const json_t *call_result, int *len)
{
    size_t i;
    const json_t *item;
    json_array_foreach(json_object_get(call_result, "content"), i, item)
    {
        const json_t *t = json_object_get(item, "text");
        if (json_is_string(t)) {
            *len = aos__snip(json_string_value(t), json_string_length(t), 160);
            return json_string_value(t);
        }
    }
    return NULL;
}

int aos_plan_check(const json_t *check, const json_t *call_result, char *why, size_t n)
{
    char scratch[2];
    if (!why || n == 0) {
        why = scratch;
        n = sizeof(scratch);
    }
    why[0] = '\0';
    if (!json_is_object(call_result))
        return verdict(why, n, "the result is not a CallToolResult (an object)");
    const json_t *ne = json_object_get(check, "not_error");
    if ((!ne || json_is_true(ne)) && json_is_true(json_object_get(call_result, "isError"))) {
        int len = 0;
        const char *t = error_text(call_result, &len);
        if (!t)
            return verdict(why, n, "the tool returned an error");
        return verdict(why, n, "the tool returned an error: %.*s%s", len, t,
                       (size_t)len < strlen(t) ? "..." : "");
    }
    const json_t *contains = json_object_get(check, "contains");
    const json_t *matches = json_object_get(check, "matches");
    const json_t *schema = json_object_get(check, "schema");
    int want_empty = json_is_true(json_object_get(check, "non_empty"));
    if (!want_empty && !contains && !matches && !schema)
        return 0;
    int rc = 0;
    json_t *result = aos_plan_result(call_result);
    aos_buf_t text;
    aos_buf_init(&text, 0);
    if (!result)
        return verdict(why, n, "out of memory");
    if (want_empty && empty(result)) {
        rc = verdict(why, n, "the result is empty");
        goto out;
    }
    if ((contains || matches) && aos__text(&text, result)) {
        rc = verdict(why, n, "out of memory");
        goto out;
    }
    if (json_is_string(contains) &&
        (text.len < json_string_length(contains) ||
         !memmem(text.ptr, text.len, json_string_value(contains), json_string_length(contains)))) {
        rc = verdict(why, n, "does not contain \"%.*s%s\"",
                     aos__snip(json_string_value(contains), json_string_length(contains), 80),
                     json_string_value(contains), json_string_length(contains) > 80 ? "..." : "");
        goto out;
    }
    if (json_is_string(matches)) {
        regex_t re;
        char bad[160];
        if (aos__regex_compile(&re, json_string_value(matches), bad, sizeof(bad))) {
            rc = verdict(why, n, "%s", bad);
            goto out;
        }
        regmatch_t m[1];
        size_t len = text.len < MATCH_MAX ? text.len : aos_utf8_trim(text.ptr, MATCH_MAX);
        m[0].rm_so = 0;
        m[0].rm_eo = (regoff_t)len;
        int r = regexec(&re, text.ptr ? text.ptr : "", 1, m, REG_STARTEND);
        regfree(&re);
        if (r != 0) {
            const char *p = json_string_value(matches);
            char part[80] = "";
            if (len < text.len)
                snprintf(part, sizeof(part), " in the first %zu bytes of %zu", len, text.len);
            rc = verdict(why, n, "does not match /%.*s%s/%s", aos__snip(p, strlen(p), 80), p,
                         strlen(p) > 80 ? "..." : "", part);
            goto out;
        }
    }
    if (schema) {
        char bad[160];
        if (aos__schema_syntax(schema, bad, sizeof(bad))) {
            rc = verdict(why, n, "invalid schema: %s", bad);
            goto out;
        }
        aos_buf_t path;
        aos_buf_init(&path, 0);
        if (aos_buf_puts(&path, "$")) {
            rc = verdict(why, n, "out of memory");
            goto out;
        }
        rc = conform(result, schema, &path, why, n);
        aos_buf_release(&path);
        if (rc)
            why[aos_utf8_trim(why, strlen(why))] = '\0';
    }
out:
    aos_buf_release(&text);
    json_decref(result);
    return rc;
}
