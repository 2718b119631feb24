/* ref.c - ${...} references and `when` conditions.
 *
 * A reference is parsed into a root (inputs, task or a step id) and a path
 * of .name / ["name"] / [index] parts; resolving walks the scope
 * ({"inputs","steps","task"}) along it. A string that is exactly one
 * reference becomes a copy of the value it names; otherwise each reference
 * is replaced by the text form of its value and "$${" by "${". Resolution
 * builds a new value and never changes the plan or the scope. */
#include "plan/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RESOLVE_DEPTH_MAX 64

/* The reference text for a message: at most 80 bytes of it. */
#define REF_FMT "'%.*s%s'"
#define REF_ARG(s, r)                                                                              \
    aos__snip((s) + (r)->start, (r)->end - (r)->start, 80), (s) + (r)->start,                      \
        ((r)->end - (r)->start > 80 ? "..." : "")

static int name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c >= 0x80;
}

static int bad_ref(const char *s, size_t len, size_t pos, size_t at, const char *what,
                   aos_err_t *err)
{
    size_t shown = at < len ? at + 1 : len;
    shown -= pos;
    return aos__fail(err, AOS_EINVAL, "malformed reference '%.*s%s': %s",
                     aos__snip(s + pos, shown, 60), s + pos, shown > 60 ? "..." : "", what);
}

int aos__ref_parse(const char *s, size_t len, size_t pos, aos__ref_t *ref, aos_err_t *err)
{
    size_t i = pos + 2, used = 0;
    ref->start = pos;
    ref->nseg = 0;
    size_t r0 = i;
    while (i < len && name_char((unsigned char)s[i]) && (unsigned char)s[i] < 0x80)
        i++;
    if (!aos__id_ok(s + r0, i - r0))
        return bad_ref(s, len, pos, i, "expected inputs, task or a step id after '${'", err);
    memcpy(ref->root, s + r0, i - r0);
    ref->root[i - r0] = '\0';
    for (;;) {
        if (i - pos > AOS_PLAN_REF_MAX)
            return bad_ref(s, len, pos, i, "longer than 1024 bytes", err);
        if (i >= len)
            return bad_ref(s, len, pos, i, "missing '}'", err);
        char c = s[i];
        if (c == '}') {
            ref->end = i + 1;
            return 0;
        }
        if (ref->nseg == AOS_PLAN_REF_SEGS)
            return bad_ref(s, len, pos, i, "more than 32 parts", err);
        aos__seg_t *g = &ref->seg[ref->nseg];
        if (c == '.') {
            size_t n0 = ++i;
            while (i < len && name_char((unsigned char)s[i]))
                i++;
            if (i == n0)
                return bad_ref(s, len, pos, i, "expected a name after '.'", err);
            if (used + (i - n0) + 1 > sizeof(ref->names))
                return bad_ref(s, len, pos, i, "longer than 1024 bytes", err);
            g->is_index = 0;
            g->name = ref->names + used;
            memcpy(ref->names + used, s + n0, i - n0);
            used += i - n0;
            ref->names[used++] = '\0';
        } else if (c == '[' && i + 1 < len && s[i + 1] == '"') {
            i += 2;
            g->is_index = 0;
            g->name = ref->names + used;
            for (;;) {
                if (i >= len)
                    return bad_ref(s, len, pos, i, "missing '\"]'", err);
                char d = s[i];
                if (d == '"')
                    break;
                if (d == '\\') {
                    if (i + 1 >= len || (s[i + 1] != '"' && s[i + 1] != '\\'))
                        return bad_ref(s, len, pos, i + 1, "only \\\" and \\\\ escape in [\"...\"]",
                                       err);
                    d = s[++i];
                }
                if (used + 2 > sizeof(ref->names))
                    return bad_ref(s, len, pos, i, "longer than 1024 bytes", err);
                ref->names[used++] = d;
                i++;
            }
            ref->names[used++] = '\0';
            if (++i >= len || s[i] != ']')
                return bad_ref(s, len, pos, i, "missing ']' after [\"...\"", err);
            i++;
        } else if (c == '[') {
            size_t d0 = ++i;
            if (i < len && s[i] == '-')
                i++;
            size_t n0 = i;
            while (i < len && s[i] >= '0' && s[i] <= '9')
                i++;
            if (i == n0 || i - n0 > 9)
                return bad_ref(s, len, pos, i, "expected an index of 1 to 9 digits in [...]", err);
            if (i >= len || s[i] != ']')
                return bad_ref(s, len, pos, i, "missing ']'", err);
            long long v = 0;
            for (size_t k = n0; k < i; k++)
                v = v * 10 + (s[k] - '0');
            g->is_index = 1;
            g->index = s[d0] == '-' ? -v : v;
            if (s[d0] == '-' && v == 0)
                return bad_ref(s, len, pos, i, "[-0] is not an index", err);
            i++;
        } else {
            return bad_ref(s, len, pos, i, "expected '.', '[' or '}'", err);
        }
        ref->nseg++;
    }
}

int aos__refs_scan(const char *s, size_t len, aos__ref_fn fn, void *data, aos_err_t *err)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (s[i] != '$')
            continue;
        if (s[i + 1] == '$' && i + 2 < len && s[i + 2] == '{') {
            i += 2;
            continue;
        }
        if (s[i + 1] != '{')
            continue;
        aos__ref_t ref;
        int rc = aos__ref_parse(s, len, i, &ref, err);
        if (rc)
            return rc;
        rc = fn(&ref, data);
        if (rc)
            return rc;
        i = ref.end - 1;
    }
    return 0;
}

const json_t *aos__ref_lookup(const json_t *scope, const aos__ref_t *ref, const char *s,
                              aos_err_t *err)
{
    const json_t *v;
    if (!strcmp(ref->root, "inputs") || !strcmp(ref->root, "task")) {
        v = json_object_get(scope, ref->root);
        if (!v) {
            aos__fail(err, AOS_ENOTFOUND, REF_FMT ": the task has no %s", REF_ARG(s, ref),
                      ref->root);
            return NULL;
        }
    } else {
        v = json_object_get(json_object_get(scope, "steps"), ref->root);
        if (!v) {
            aos__fail(err, AOS_ENOTFOUND, REF_FMT ": step '%s' has not run", REF_ARG(s, ref),
                      ref->root);
            return NULL;
        }
    }
    for (size_t k = 0; k < ref->nseg; k++) {
        const aos__seg_t *g = &ref->seg[k];
        if (g->is_index) {
            if (!json_is_array(v)) {
                aos__fail(err, AOS_ENOTFOUND, REF_FMT ": [%lld] of %s %s", REF_ARG(s, ref),
                          g->index, json_is_integer(v) ? "an" : "a", aos__type_name(v));
                return NULL;
            }
            size_t n = json_array_size(v);
            long long i = g->index < 0 ? (long long)n + g->index : g->index;
            if (i < 0 || i >= (long long)n) {
                aos__fail(err, AOS_ENOTFOUND, REF_FMT ": index %lld out of range (%zu items)",
                          REF_ARG(s, ref), g->index, n);
                return NULL;
            }
            v = json_array_get(v, (size_t)i);
        } else {
            if (!json_is_object(v)) {
                aos__fail(err, AOS_ENOTFOUND, REF_FMT ": \"%s\" of %s %s", REF_ARG(s, ref), g->name,
                          json_is_integer(v) || json_is_array(v) ? "an" : "a", aos__type_name(v));
                return NULL;
            }
            const json_t *m = json_object_get(v, g->name);
            if (!m) {
                aos__fail(err, AOS_ENOTFOUND, REF_FMT ": no member \"%s\"", REF_ARG(s, ref),
                          g->name);
                return NULL;
            }
            v = m;
        }
    }
    return v;
}

int aos__json(aos_buf_t *b, const json_t *v)
{
    char *t = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT);
    if (!t)
        return AOS_ENOMEM;
    int rc = aos_buf_puts(b, t);
    free(t);
    return rc;
}

int aos__text(aos_buf_t *b, const json_t *v)
{
    if (json_is_string(v))
        return aos_buf_append(b, json_string_value(v), json_string_length(v));
    return aos__json(b, v);
}

int aos__equal(const json_t *a, const json_t *b)
{
    if (!a || !b)
        return a == b;
    if (json_is_number(a) && json_is_number(b)) {
        if (json_is_integer(a) && json_is_integer(b))
            return json_integer_value(a) == json_integer_value(b);
        return json_number_value(a) == json_number_value(b);
    }
    if (json_typeof(a) != json_typeof(b))
        return 0;
    if (json_is_string(a))
        return json_string_length(a) == json_string_length(b) &&
               !memcmp(json_string_value(a), json_string_value(b), json_string_length(a));
    if (json_is_array(a)) {
        if (json_array_size(a) != json_array_size(b))
            return 0;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!aos__equal(json_array_get(a, i), json_array_get(b, i)))
                return 0;
        return 1;
    }
    if (json_is_object(a)) {
        if (json_object_size(a) != json_object_size(b))
            return 0;
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)a, k, v)
        {
            const json_t *w = json_object_get(b, k);
            if (!w || !aos__equal(v, w))
                return 0;
        }
        return 1;
    }
    return 1; /* true, false, null */
}

/* ---- resolution ------------------------------------------------------------ */

typedef struct {
    const json_t *scope;
    aos_err_t *err;
} resolver_t;

static json_t *resolve_string(resolver_t *r, const json_t *str)
{
    const char *s = json_string_value(str);
    size_t len = json_string_length(str);
    if (!memchr(s, '$', len))
        return json_stringn(s, len);
    aos__ref_t ref;
    if (len > 2 && s[0] == '$' && s[1] == '{' && s[len - 1] == '}') {
        aos_err_t ignore;
        if (aos__ref_parse(s, len, 0, &ref, &ignore) == 0 && ref.end == len) {
            const json_t *v = aos__ref_lookup(r->scope, &ref, s, r->err);
            return v ? aos__json_copy(v) : NULL;
        }
    }
    aos_buf_t b;
    aos_buf_init(&b, AOS_PLAN_RESOLVED_MAX);
    size_t i = 0, lit = 0;
    int rc = 0;
    while (i < len && rc == 0) {
        if (s[i] != '$' || i + 1 >= len) {
            i++;
            continue;
        }
        if (s[i + 1] == '$' && i + 2 < len && s[i + 2] == '{') {
            rc = aos_buf_append(&b, s + lit, i - lit);
            if (!rc)
                rc = aos_buf_append(&b, "${", 2);
            i += 3;
            lit = i;
            continue;
        }
        if (s[i + 1] != '{') {
            i++;
            continue;
        }
        rc = aos_buf_append(&b, s + lit, i - lit);
        if (rc)
            break;
        if (aos__ref_parse(s, len, i, &ref, r->err) != 0)
            goto fail;
        const json_t *v = aos__ref_lookup(r->scope, &ref, s, r->err);
        if (!v)
            goto fail;
        rc = aos__text(&b, v);
        i = lit = ref.end;
    }
    if (!rc)
        rc = aos_buf_append(&b, s + lit, len - lit);
    if (rc == AOS_ETOOBIG)
        aos__fail(r->err, rc, "a string is longer than %d bytes once its references are resolved",
                  AOS_PLAN_RESOLVED_MAX);
    else if (rc)
        aos__fail(r->err, rc, "out of memory");
    if (rc)
        goto fail;
    json_t *out = json_stringn(b.ptr ? b.ptr : "", b.len);
    aos_buf_release(&b);
    if (!out)
        aos__fail(r->err, AOS_ENOMEM, "out of memory");
    return out;
fail:
    aos_buf_release(&b);
    return NULL;
}

static json_t *resolve(resolver_t *r, const json_t *v, int depth)
{
    if (depth > RESOLVE_DEPTH_MAX) {
        aos__fail(r->err, AOS_EINVAL, "values nested deeper than %d", RESOLVE_DEPTH_MAX);
        return NULL;
    }
    json_t *out = NULL;
    switch (json_typeof(v)) {
    case JSON_STRING:
        return resolve_string(r, v);
    case JSON_ARRAY: {
        out = json_array();
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            json_t *x = out ? resolve(r, e, depth + 1) : NULL;
            if (!x || json_array_append_new(out, x))
                goto fail;
        }
        return out;
    }
    case JSON_OBJECT: {
        out = json_object();
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            json_t *x = out ? resolve(r, e, depth + 1) : NULL;
            if (!x || json_object_set_new(out, k, x))
                goto fail;
        }
        return out;
    }
    default:
        out = json_copy((json_t *)v);
        if (!out)
            aos__fail(r->err, AOS_ENOMEM, "out of memory");
        return out;
    }
fail:
    if (r->err->code == 0) /* not a failure of resolve(): the allocation */
        aos__fail(r->err, AOS_ENOMEM, "out of memory");
    json_decref(out);
    return NULL;
}

json_t *aos_plan_resolve(const json_t *value, const json_t *scope, aos_err_t *err)
{
    aos_err_t local = {0, ""};
    resolver_t r = {scope, err ? err : &local};
    r.err->code = 0;
    if (!value) {
        aos__fail(err, AOS_EINVAL, "no value");
        return NULL;
    }
    return resolve(&r, value, 0);
}

/* ---- listing the steps a value references ------------------------------------ */

static int add_step(const aos__ref_t *ref, void *data)
{
    json_t *ids = data;
    if (!strcmp(ref->root, "inputs") || !strcmp(ref->root, "task"))
        return 0;
    size_t i;
    const json_t *e;
    json_array_foreach(ids, i, e) if (!strcmp(json_string_value(e), ref->root)) return 0;
    return json_array_append_new(ids, json_string(ref->root)) ? AOS_ENOMEM : 0;
}

static int refs_walk(const json_t *v, json_t *ids, int depth, aos_err_t *err)
{
    if (depth > RESOLVE_DEPTH_MAX)
        return aos__fail(err, AOS_EINVAL, "values nested deeper than %d", RESOLVE_DEPTH_MAX);
    if (json_is_string(v))
        return aos__refs_scan(json_string_value(v), json_string_length(v), add_step, ids, err);
    size_t i;
    const char *k;
    const json_t *e;
    int rc = 0;
    if (json_is_array(v))
        json_array_foreach(v, i, e) if ((rc = refs_walk(e, ids, depth + 1, err)) != 0) return rc;
    if (json_is_object(v))
        json_object_foreach((json_t *)v, k,
                            e) if ((rc = refs_walk(e, ids, depth + 1, err)) != 0) return rc;
    return 0;
}

/* The steps the n values reference (NULL values are skipped). */
static json_t *refs_of(const json_t *const *values, size_t n, aos_err_t *err)
{
    json_t *ids = json_array();
    int rc = ids ? 0 : AOS_ENOMEM;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = values[i] ? refs_walk(values[i], ids, 0, err) : 0;
    if (rc) {
        if (rc == AOS_ENOMEM)
            aos__fail(err, rc, "out of memory");
        json_decref(ids);
        return NULL;
    }
    return ids;
}

json_t *aos_plan_refs(const json_t *value, aos_err_t *err)
{
    return refs_of(&value, 1, err);
}

json_t *aos_plan_step_refs(const json_t *step, aos_err_t *err)
{
    const json_t *parts[] = {json_object_get(step, "args"),
                             json_object_get(json_object_get(step, "approval"), "message"),
                             json_object_get(step, "milestone"), json_object_get(step, "when")};
    return refs_of(parts, sizeof(parts) / sizeof(*parts), err);
}

/* ---- when -------------------------------------------------------------------- */

static size_t skip_ws(const char *s, size_t len, size_t i)
{
    while (i < len && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

static int when_literal(const char *e, size_t len, size_t *pos, json_t **out, aos_err_t *err)
{
    size_t i = *pos;
    if (i >= len)
        return aos__fail(err, AOS_EINVAL,
                         "expected a literal after the operator ('text', a number, true, "
                         "false or null)");
    if (e[i] == '\'' || e[i] == '"') {
        aos_buf_t b;
        aos_buf_init(&b, AOS_PLAN_TEXT_MAX);
        const char *why = NULL;
        size_t p = i;
        int rc = aos__str_decode(e, len, &p, &b, &why);
        if (rc) {
            aos_buf_release(&b);
            return aos__fail(err, rc, "%s at offset %zu", why, p);
        }
        if (b.len && (memmem(b.ptr, b.len, "${", 2) != NULL)) {
            aos_buf_release(&b);
            return aos__fail(err, AOS_EINVAL, "a literal may not contain '${'");
        }
        *out = json_stringn(b.ptr ? b.ptr : "", b.len);
        aos_buf_release(&b);
        *pos = p;
        return *out ? 0 : aos__fail(err, AOS_ENOMEM, "out of memory");
    }
    size_t end = aos__num_scan(e, len, i);
    if (end > i) {
        *out = aos__num_value(e + i, end - i);
        if (!*out)
            return aos__fail(err, AOS_EINVAL, "number out of range: %.*s",
                             aos__snip(e + i, end - i, 40), e + i);
        *pos = end;
        return 0;
    }
    static const char *const words[] = {"true", "false", "null"};
    for (int k = 0; k < 3; k++) {
        size_t n = strlen(words[k]);
        if (len - i >= n && !memcmp(e + i, words[k], n)) {
            *out = k == 0 ? json_true() : k == 1 ? json_false() : json_null();
            *pos = i + n;
            return 0;
        }
    }
    return aos__fail(err, AOS_EINVAL,
                     "expected a literal after the operator ('text', a number, true, false or "
                     "null)");
}

int aos__when_parse(const char *e, aos__when_t *w, aos_err_t *err)
{
    memset(w, 0, sizeof(*w));
    size_t len = strlen(e);
    if (len > AOS_PLAN_TEXT_MAX)
        return aos__fail(err, AOS_EINVAL, "longer than %d bytes", AOS_PLAN_TEXT_MAX);
    size_t i = skip_ws(e, len, 0);
    if (i < len && e[i] == '!') {
        w->neg = 1;
        i = skip_ws(e, len, i + 1);
    }
    if (i + 1 >= len || e[i] != '$' || e[i + 1] != '{')
        return aos__fail(err, AOS_EINVAL,
                         "expected a reference: ${REF}, !${REF}, ${REF} == LITERAL or "
                         "${REF} != LITERAL");
    int rc = aos__ref_parse(e, len, i, &w->ref, err);
    if (rc)
        return rc;
    i = skip_ws(e, len, w->ref.end);
    if (i < len && !w->neg && (e[i] == '=' || e[i] == '!') && i + 1 < len && e[i + 1] == '=') {
        w->op = e[i] == '=' ? '=' : '!';
        i = skip_ws(e, len, i + 2);
        w->lit_start = i;
        if ((rc = when_literal(e, len, &i, &w->literal, err)) != 0)
            return rc;
        w->lit_end = i;
        i = skip_ws(e, len, i);
    }
    if (i < len) {
        aos__when_release(w);
        return aos__fail(err, AOS_EINVAL, "unexpected '%.*s'%s after the condition",
                         aos__snip(e + i, len - i, 20), e + i, len - i > 20 ? "..." : "");
    }
    return 0;
}

void aos__when_release(aos__when_t *w)
{
    json_decref(w->literal);
    w->literal = NULL;
}

int aos__when_canon(const char *e, const aos__when_t *w, aos_buf_t *b)
{
    int rc = 0;
    if (w->neg)
        rc = aos_buf_puts(b, "!");
    if (!rc)
        rc = aos_buf_append(b, e + w->ref.start, w->ref.end - w->ref.start);
    if (!rc && w->op)
        rc = aos_buf_puts(b, w->op == '=' ? " == " : " != ");
    if (!rc && w->op)
        rc = aos_buf_append(b, e + w->lit_start, w->lit_end - w->lit_start);
    return rc;
}

static int truthy(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_FALSE:
    case JSON_NULL:
        return 0;
    case JSON_INTEGER:
        return json_integer_value(v) != 0;
    case JSON_REAL:
        return json_real_value(v) != 0;
    case JSON_STRING:
        return json_string_length(v) != 0;
    case JSON_ARRAY:
        return json_array_size(v) != 0;
    case JSON_OBJECT:
        return json_object_size(v) != 0;
    default:
        return 1;
    }
}

int aos_plan_when(const char *expr, const json_t *scope, int *out, aos_err_t *err)
{
    aos__when_t w;
    if (!expr)
        return aos__fail(err, AOS_EINVAL, "no condition");
    int rc = aos__when_parse(expr, &w, err);
    if (rc || !scope)
        goto out;
    const json_t *v = aos__ref_lookup(scope, &w.ref, expr, err);
    if (!v) {
        rc = AOS_ENOTFOUND;
        goto out;
    }
    if (w.op == 0)
        *out = w.neg ? !truthy(v) : truthy(v);
    else
        *out = aos__equal(v, w.literal) == (w.op == '=');
out:
    aos__when_release(&w);
    return rc;
}
