/* plan.c - validation of a plan (docs/ORCHESTRATOR.md, "The plan").
 *
 * Two passes over the steps: the first checks each step's id and kind and
 * indexes the ids (references and fallbacks may name any step, and the
 * message for a later one should say so); the second checks every field and
 * builds the normalized step. Nothing of the input is kept: the result is
 * a new value the caller owns. */
#include "plan/internal.h"
#include "map/map.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RETRY_MAX          10
#define BACKOFF_MS_DEFAULT 500
#define BACKOFF_MS_MAX     600000
#define APPROVAL_TIMEOUT_S 3600
#define APPROVAL_MAX_S     2592000 /* 30 days */
#define STEP_TIMEOUT_MAX   3600000 /* ms */

typedef struct {
    const aos_plan_opts_t *opts;
    aos_err_t *err;
    size_t n;
    char *kind;        /* per step: 't' tool, 'a' approval, 'm' milestone */
    long *fallback_of; /* per step: the step that names it as fallback, or -1 */
    long *index;       /* per step: its index (what ids points to) */
    aos_map_t ids;     /* id -> &index[i] */
    long cur;          /* the step being checked */
    const char *cur_id;
    char field[128]; /* the field of the last error */
    aos_buf_t path;  /* the field being checked, after "steps[i] (id)." */
} vctx_t;

/* "steps[2] (s2).retry.max: must be ..." with field after the step. */
static int bad(vctx_t *c, int code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int bad(vctx_t *c, int code, const char *field, const char *fmt, ...)
{
    char what[200];
    snprintf(c->field, sizeof(c->field), "%s", field);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (c->cur_id)
        return aos__fail(c->err, code, "steps[%ld] (%s)%s%s: %s", c->cur, c->cur_id,
                         *field ? "." : "", field, what);
    return aos__fail(c->err, code, "steps[%ld]%s%s: %s", c->cur, *field ? "." : "", field, what);
}

static int oom(vctx_t *c)
{
    return aos__fail(c->err, AOS_ENOMEM, "out of memory");
}

static long step_index(const vctx_t *c, const char *id)
{
    const long *i = aos_map_get(&c->ids, id);
    return i ? *i : -1;
}

static int set_path(vctx_t *c, const char *field)
{
    aos_buf_reset(&c->path);
    return aos_buf_puts(&c->path, field) || !c->path.ptr ? oom(c) : 0;
}

/* ---- references ------------------------------------------------------------------ */

typedef struct {
    vctx_t *c;
    const char *s; /* the string the references are in */
} refctx_t;

#define RTEXT(r, s) aos__snip((s) + (r)->start, (r)->end - (r)->start, 80), (s) + (r)->start

static int check_ref(const aos__ref_t *r, void *data)
{
    refctx_t *rc = data;
    vctx_t *c = rc->c;
    const char *s = rc->s;
    const char *field = c->path.ptr ? c->path.ptr : "";
    if (!strcmp(r->root, "inputs")) {
        if (r->nseg && r->seg[0].is_index)
            return bad(c, AOS_EINVAL, field, "'%.*s': inputs is an object, not an array",
                       RTEXT(r, s));
        const json_t *in = c->opts ? c->opts->inputs : NULL;
        if (in && r->nseg && !json_object_get(in, r->seg[0].name))
            return bad(c, AOS_EINVAL, field, "'%.*s': the task has no input '%s'", RTEXT(r, s),
                       r->seg[0].name);
        return 0;
    }
    if (!strcmp(r->root, "task")) {
        if (r->nseg != 1 || r->seg[0].is_index ||
            (strcmp(r->seg[0].name, "trace_id") && strcmp(r->seg[0].name, "workspace")))
            return bad(c, AOS_EINVAL, field,
                       "'%.*s': a task reference is ${task.trace_id} or ${task.workspace}",
                       RTEXT(r, s));
        return 0;
    }
    long j = step_index(c, r->root);
    if (j < 0)
        return bad(c, AOS_EINVAL, field, "'%.*s': no step '%s' (nor inputs or task)", RTEXT(r, s),
                   r->root);
    if (j >= c->cur)
        return bad(c, AOS_EINVAL, field, "'%.*s': step '%s' does not run before this one",
                   RTEXT(r, s), r->root);
    const char *want = c->kind[j] == 't' ? "result" : c->kind[j] == 'a' ? "decision" : NULL;
    if (!want)
        return bad(c, AOS_EINVAL, field, "'%.*s': step '%s' is a milestone, with no value",
                   RTEXT(r, s), r->root);
    if (r->nseg == 0 || r->seg[0].is_index || strcmp(r->seg[0].name, want))
        return bad(c, AOS_EINVAL, field, "'%.*s': step '%s' is %s: use ${%s.%s...}", RTEXT(r, s),
                   r->root, c->kind[j] == 't' ? "a tool step" : "an approval", r->root, want);
    if (c->kind[j] == 'a' && r->nseg > 1)
        return bad(c, AOS_EINVAL, field, "'%.*s': a decision is a string, with no parts",
                   RTEXT(r, s));
    return 0;
}

static int check_refs_in(vctx_t *c, const char *s, size_t len)
{
    refctx_t rc = {c, s};
    aos_err_t perr = {0, ""};
    int r = aos__refs_scan(s, len, check_ref, &rc, &perr);
    if (r && perr.code)
        return bad(c, r, c->path.ptr ? c->path.ptr : "", "%s", perr.msg);
    return r;
}

/* Checks every string of v (args): references, no NUL, depth. */
static int check_value(vctx_t *c, const json_t *v, int depth)
{
    if (!c->path.ptr && set_path(c, ""))
        return AOS_ENOMEM;
    if (depth > AOS_PLAN_DEPTH_MAX)
        return bad(c, AOS_EINVAL, c->path.ptr, "nested deeper than %d", AOS_PLAN_DEPTH_MAX);
    size_t mark = c->path.len;
    int rc = 0;
    if (json_is_string(v)) {
        const char *s = json_string_value(v);
        if (strlen(s) != json_string_length(v))
            return bad(c, AOS_EINVAL, c->path.ptr, "a string holds a NUL character");
        return check_refs_in(c, s, json_string_length(v));
    }
    if (json_is_array(v)) {
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            c->path.len = mark; /* "[i]" and ".name" without printf: per member of every step */
            if (aos_buf_append(&c->path, "[", 1) || aos_buf_int(&c->path, (int64_t)i) ||
                aos_buf_append(&c->path, "]", 1))
                return oom(c);
            if ((rc = check_value(c, e, depth + 1)) != 0)
                return rc;
        }
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *e;
        json_object_foreach((json_t *)v, k, e)
        {
            c->path.len = mark;
            if (aos__plain_name(k) ? aos_buf_append(&c->path, ".", 1) || aos_buf_puts(&c->path, k)
                                   : aos_buf_printf(&c->path, "[\"%s\"]", k))
                return oom(c);
            if ((rc = check_value(c, e, depth + 1)) != 0)
                return rc;
        }
    }
    c->path.len = mark;
    if (c->path.ptr)
        c->path.ptr[mark] = '\0';
    return 0;
}

/* jansson's json_deep_copy keeps a table of the containers it is inside
 * (to refuse a loop), made and freed at every call: most of the cost of
 * copying a step's tool and args. A parsed value has no loop; one deeper
 * than any parse makes goes to json_deep_copy all the same. */
#define COPY_DEPTH_MAX 2048

static json_t *copy_at(const json_t *v, int depth)
{
    if (depth > COPY_DEPTH_MAX)
        return json_deep_copy(v);
    switch (json_typeof(v)) {
    case JSON_STRING:
        return json_stringn_nocheck(json_string_value(v), json_string_length(v));
    case JSON_ARRAY: {
        json_t *out = json_array();
        size_t i;
        const json_t *e;
        json_array_foreach(v, i, e)
        {
            if (!out || json_array_append_new(out, copy_at(e, depth + 1))) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    case JSON_OBJECT: {
        json_t *out = json_object();
        const char *k;
        size_t klen;
        json_t *e;
        json_object_keylen_foreach((json_t *)v, k, klen, e)
        {
            if (!out || json_object_setn_new_nocheck(out, k, klen, copy_at(e, depth + 1))) {
                json_decref(out);
                return NULL;
            }
        }
        return out;
    }
    default:
        return json_copy((json_t *)v); /* a number anew; true, false, null themselves */
    }
}

json_t *aos__json_copy(const json_t *v)
{
    return v ? copy_at(v, 0) : NULL;
}

/* ---- fields ------------------------------------------------------------------------ */

static int int_in(const json_t *v, long long lo, long long hi)
{
    return json_is_integer(v) && json_integer_value(v) >= lo && json_integer_value(v) <= hi;
}

static int check_tool(vctx_t *c, const json_t *v)
{
    const char *t = json_string_value(v);
    if (!t)
        return bad(c, AOS_EINVAL, "tool", "must be a string: <server>__<tool>");
    size_t len = json_string_length(v);
    const char *sep = strstr(t, "__");
    int ok =
        sep && sep > t && len <= AOS_PLAN_TOOL_MAX && (size_t)(sep - t) <= 64 && sep[2] != '\0';
    for (const char *p = t; ok && *p; p++) {
        char ch = *p;
        int alnum =
            (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9');
        if (p == t)
            ok = alnum;
        else if (p < sep)
            ok = alnum || ch == '_' || ch == '.' || ch == '-';
        else
            ok = alnum || ch == '_' || ch == '.' || ch == '-' || ch == '/';
    }
    if (!ok || strlen(t) != len)
        return bad(c, AOS_EINVAL, "tool",
                   "must be <server>__<tool> (server [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, tool "
                   "[A-Za-z0-9_./-], at most %d bytes in all)",
                   AOS_PLAN_TOOL_MAX);
    const json_t *allowed = c->opts ? c->opts->tools : NULL;
    if (!allowed)
        return 0;
    size_t i;
    const json_t *p;
    json_array_foreach(allowed, i, p)
    {
        const char *pat = json_string_value(p);
        if (!pat)
            continue;
        /* '*' matches any run; the last '*' seen is where a mismatch resumes */
        const char *s = t, *star = NULL, *back = NULL;
        while (*s) {
            if (*pat == '*') {
                star = ++pat;
                back = s;
            } else if (*pat == *s) {
                pat++;
                s++;
            } else if (star) {
                pat = star;
                s = ++back;
            } else {
                break;
            }
        }
        while (*pat == '*')
            pat++;
        if (!*s && !*pat)
            return 0;
    }
    return bad(c, AOS_EFORBIDDEN, "tool", "'%s' is not among the tools this task may use", t);
}

static int check_when(vctx_t *c, const json_t *v, json_t *out)
{
    if (!json_is_string(v))
        return bad(c, AOS_EINVAL, "when",
                   "must be a string: ${REF}, !${REF}, ${REF} == LITERAL "
                   "or ${REF} != LITERAL");
    const char *e = json_string_value(v);
    if (strlen(e) != json_string_length(v))
        return bad(c, AOS_EINVAL, "when", "holds a NUL character");
    aos__when_t w;
    aos_err_t perr = {0, ""};
    int rc = aos__when_parse(e, &w, &perr);
    if (rc)
        return bad(c, rc, "when", "%s", perr.msg);
    if ((rc = set_path(c, "when")) == 0) {
        refctx_t r = {c, e};
        rc = check_ref(&w.ref, &r);
    }
    aos_buf_t b;
    aos_buf_init(&b, 0);
    if (!rc && aos__when_canon(e, &w, &b))
        rc = oom(c);
    if (!rc && json_object_set_new(out, "when", json_stringn(b.ptr ? b.ptr : "", b.len)))
        rc = oom(c);
    aos_buf_release(&b);
    aos__when_release(&w);
    return rc;
}

static int check_check(vctx_t *c, const json_t *v, json_t *out)
{
    if (!json_is_object(v))
        return bad(c, AOS_EINVAL, "check", "must be an object");
    json_t *chk = json_pack("{s:b, s:b}", "non_empty", 0, "not_error", 1);
    if (!chk || json_object_set_new(out, "check", chk))
        return oom(c);
    const char *k;
    const json_t *f;
    json_object_foreach((json_t *)v, k, f)
    {
        char why[200];
        if (!strcmp(k, "non_empty") || !strcmp(k, "not_error")) {
            if (!json_is_boolean(f))
                return bad(c, AOS_EINVAL,
                           !strcmp(k, "non_empty") ? "check.non_empty" : "check.not_error",
                           "must be true or false");
        } else if (!strcmp(k, "contains") || !strcmp(k, "llm")) {
            if (!json_is_string(f) || json_string_length(f) == 0 ||
                json_string_length(f) > AOS_PLAN_TEXT_MAX ||
                strlen(json_string_value(f)) != json_string_length(f))
                return bad(c, AOS_EINVAL, !strcmp(k, "llm") ? "check.llm" : "check.contains",
                           "must be a string of 1 to %d bytes (no NUL)", AOS_PLAN_TEXT_MAX);
        } else if (!strcmp(k, "matches")) {
            regex_t re;
            if (!json_is_string(f) || strlen(json_string_value(f)) != json_string_length(f))
                return bad(c, AOS_EINVAL, "check.matches",
                           "must be a string: a POSIX extended regular expression");
            if (aos__regex_compile(&re, json_string_value(f), why, sizeof(why)))
                return bad(c, AOS_EINVAL, "check.matches", "%s", why);
            regfree(&re);
        } else if (!strcmp(k, "schema")) {
            if (aos__schema_syntax(f, why, sizeof(why)))
                return bad(c, AOS_EINVAL, "check.schema", "%s", why);
        } else {
            return bad(c, AOS_EINVAL, "check",
                       "unknown field '%s' (non_empty, not_error, contains, matches, schema, llm)",
                       k);
        }
        if (json_object_set_new(chk, k, aos__json_copy(f)))
            return oom(c);
    }
    return 0;
}

static int check_retry(vctx_t *c, const json_t *v, json_t *out)
{
    json_int_t max = 0, backoff = BACKOFF_MS_DEFAULT;
    if (json_is_integer(v)) {
        if (!int_in(v, 0, RETRY_MAX))
            return bad(c, AOS_EINVAL, "retry", "must be an integer 0..%d or an object", RETRY_MAX);
        max = json_integer_value(v);
    } else if (json_is_object(v)) {
        const char *k;
        const json_t *f;
        json_object_foreach((json_t *)v, k, f)
        {
            if (!strcmp(k, "max")) {
                if (!int_in(f, 0, RETRY_MAX))
                    return bad(c, AOS_EINVAL, "retry.max", "must be an integer 0..%d", RETRY_MAX);
                max = json_integer_value(f);
            } else if (!strcmp(k, "backoff_ms")) {
                if (!int_in(f, 0, BACKOFF_MS_MAX))
                    return bad(c, AOS_EINVAL, "retry.backoff_ms", "must be an integer 0..%d",
                               BACKOFF_MS_MAX);
                backoff = json_integer_value(f);
            } else {
                return bad(c, AOS_EINVAL, "retry", "unknown field '%s' (max, backoff_ms)", k);
            }
        }
    } else {
        return bad(c, AOS_EINVAL, "retry", "must be an integer 0..%d or an object", RETRY_MAX);
    }
    json_t *r = json_pack("{s:I, s:I}", "max", max, "backoff_ms", backoff);
    return !r || json_object_set_new(out, "retry", r) ? oom(c) : 0;
}

static int check_approval(vctx_t *c, const json_t *v, json_t *out)
{
    if (!json_is_object(v))
        return bad(c, AOS_EINVAL, "approval", "must be an object with a message");
    const json_t *msg = json_object_get(v, "message");
    if (!json_is_string(msg) || json_string_length(msg) == 0 ||
        json_string_length(msg) > AOS_PLAN_TEXT_MAX)
        return bad(c, AOS_EINVAL, "approval.message", "must be a string of 1 to %d bytes",
                   AOS_PLAN_TEXT_MAX);
    json_t *a = json_pack("{s:O, s:i, s:s}", "message", msg, "timeout_s", APPROVAL_TIMEOUT_S,
                          "on_timeout", "abort");
    if (!a || json_object_set_new(out, "approval", a))
        return oom(c);
    const char *k;
    const json_t *f;
    json_object_foreach((json_t *)v, k, f)
    {
        if (!strcmp(k, "message")) {
            int rc = set_path(c, "approval.message");
            if (!rc)
                rc = check_value(c, f, 1);
            if (rc)
                return rc;
        } else if (!strcmp(k, "timeout_s")) {
            if (!int_in(f, 1, APPROVAL_MAX_S))
                return bad(c, AOS_EINVAL, "approval.timeout_s", "must be an integer 1..%d",
                           APPROVAL_MAX_S);
        } else if (!strcmp(k, "on_timeout")) {
            const char *o = json_string_value(f);
            if (!o || (strcmp(o, "approve") && strcmp(o, "abort") && strcmp(o, "downgrade")))
                return bad(c, AOS_EINVAL, "approval.on_timeout",
                           "must be approve, abort or downgrade");
        } else {
            return bad(c, AOS_EINVAL, "approval",
                       "unknown field '%s' (message, timeout_s, on_timeout)", k);
        }
        if (json_object_set_new(a, k, aos__json_copy(f)))
            return oom(c);
    }
    return 0;
}

static int check_fallback(vctx_t *c, const json_t *v, json_t *out)
{
    const char *f = json_string_value(v);
    if (!f)
        return bad(c, AOS_EINVAL, "fallback", "must be the id of a later step or a tool");
    long j = step_index(c, f);
    if (j < 0)
        return bad(c, AOS_EINVAL, "fallback", "no step '%s'", f);
    if (j <= c->cur)
        return bad(c, AOS_EINVAL, "fallback", "step '%s' is not after this one", f);
    if (c->fallback_of[j] >= 0)
        return bad(c, AOS_EINVAL, "fallback", "step '%s' is already the fallback of steps[%ld]", f,
                   c->fallback_of[j]);
    c->fallback_of[j] = c->cur;
    return json_object_set_new(out, "fallback", json_string(f)) ? oom(c) : 0;
}

/* ---- one step -------------------------------------------------------------------- */

static const char *const TOOL_ONLY[] = {"args",     "check",      "retry", "fallback",
                                        "optional", "timeout_ms", NULL};

static int only_tool(const char *k)
{
    for (size_t i = 0; TOOL_ONLY[i]; i++)
        if (!strcmp(k, TOOL_ONLY[i]))
            return 1;
    return 0;
}

/* {k1: v1, k2: v2} (values stolen), or NULL: a tool step's defaults, made
 * without json_pack (they are made for every step of every plan). */
static json_t *pair(const char *k1, json_t *v1, const char *k2, json_t *v2)
{
    json_t *o = json_object();
    if (o && !json_object_set_nocheck(o, k1, v1) && !json_object_set_nocheck(o, k2, v2)) {
        json_decref(v1);
        json_decref(v2);
        return o;
    }
    json_decref(o);
    json_decref(v1);
    json_decref(v2);
    return NULL;
}

static int check_step(vctx_t *c, const json_t *st, json_t *out)
{
    char kind = c->kind[c->cur];
    int rc = 0;
    if (json_object_set_new_nocheck(out, "id", json_string_nocheck(c->cur_id)))
        return oom(c);
    if (kind == 't') {
        const json_t *t = json_object_get(st, "tool");
        if ((rc = check_tool(c, t)) != 0)
            return rc;
        const json_t *args = json_object_get(st, "args");
        if (args && !json_is_object(args))
            return bad(c, AOS_EINVAL, "args", "must be an object");
        if ((rc = set_path(c, "args")) != 0 || (rc = check_value(c, args, 0)) != 0)
            return rc;
        if (json_object_set_new_nocheck(out, "tool", aos__json_copy(t)) ||
            json_object_set_new_nocheck(out, "args", args ? aos__json_copy(args) : json_object()))
            return oom(c);
        if (json_object_set_new_nocheck(
                out, "check", pair("non_empty", json_false(), "not_error", json_true())) ||
            json_object_set_new(
                out, "retry",
                pair("max", json_integer(0), "backoff_ms", json_integer(BACKOFF_MS_DEFAULT))) ||
            json_object_set_new_nocheck(out, "optional", json_false()))
            return oom(c);
    } else if (kind == 'a') {
        if ((rc = check_approval(c, json_object_get(st, "approval"), out)) != 0)
            return rc;
    } else {
        const json_t *m = json_object_get(st, "milestone");
        if (!json_is_string(m) || json_string_length(m) == 0 ||
            json_string_length(m) > AOS_PLAN_LABEL_MAX)
            return bad(c, AOS_EINVAL, "milestone", "must be a label of 1 to %d bytes",
                       AOS_PLAN_LABEL_MAX);
        if ((rc = set_path(c, "milestone")) != 0 || (rc = check_value(c, m, 0)) != 0)
            return rc;
        if (json_object_set_new_nocheck(out, "milestone", aos__json_copy(m)))
            return oom(c);
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)st, k, v)
    {
        if (!strcmp(k, "id") || !strcmp(k, "tool") || (!strcmp(k, "args") && kind == 't') ||
            !strcmp(k, "approval") || !strcmp(k, "milestone"))
            continue;
        if (only_tool(k) && kind != 't')
            return bad(c, AOS_EINVAL, k, "only a tool step has %s", k);
        if (!strcmp(k, "when"))
            rc = check_when(c, v, out);
        else if (!strcmp(k, "check"))
            rc = check_check(c, v, out);
        else if (!strcmp(k, "retry"))
            rc = check_retry(c, v, out);
        else if (!strcmp(k, "fallback"))
            rc = check_fallback(c, v, out);
        else if (!strcmp(k, "optional")) {
            if (!json_is_boolean(v))
                return bad(c, AOS_EINVAL, k, "must be true or false");
            rc = json_object_set_new(out, k, json_copy((json_t *)v)) ? oom(c) : 0;
        } else if (!strcmp(k, "timeout_ms")) {
            if (!int_in(v, 1, STEP_TIMEOUT_MAX))
                return bad(c, AOS_EINVAL, k, "must be an integer 1..%d", STEP_TIMEOUT_MAX);
            rc = json_object_set_new(out, k, json_copy((json_t *)v)) ? oom(c) : 0;
        } else {
            return bad(c, AOS_EINVAL, k, "unknown field");
        }
        if (rc)
            return rc;
    }
    return 0;
}

/* Pass 1: the step's id and kind. */
static int check_head(vctx_t *c, const json_t *st)
{
    if (!json_is_object(st))
        return bad(c, AOS_EINVAL, "", "must be an object");
    const json_t *id = json_object_get(st, "id");
    if (!json_is_string(id) || !aos__id_ok(json_string_value(id), json_string_length(id)))
        return bad(c, AOS_EINVAL, "id", "must match [A-Za-z_][A-Za-z0-9_-]{0,63}");
    c->cur_id = json_string_value(id);
    if (!strcmp(c->cur_id, "inputs") || !strcmp(c->cur_id, "task"))
        return bad(c, AOS_EINVAL, "id", "'%s' is reserved (references use it)", c->cur_id);
    long prev = step_index(c, c->cur_id);
    if (prev >= 0)
        return bad(c, AOS_EINVAL, "id", "duplicate of steps[%ld]", prev);
    c->index[c->cur] = c->cur;
    if (aos_map_put(&c->ids, c->cur_id, &c->index[c->cur]))
        return oom(c);
    const json_t *tool = json_object_get(st, "tool"), *approval = json_object_get(st, "approval");
    if (!!tool + !!approval + !!json_object_get(st, "milestone") != 1)
        return bad(c, AOS_EINVAL, "", "needs exactly one of tool, approval and milestone");
    c->kind[c->cur] = tool ? 't' : approval ? 'a' : 'm';
    return 0;
}

/* A fallback that names a tool rather than a step becomes a step of its
 * own, appended: "<id>-fallback", the tool called with the step's args,
 * check and timeout. Returns a new array (steps itself when no fallback
 * names a tool), or NULL on ENOMEM. */
static json_t *tool_fallbacks(const json_t *steps)
{
    json_t *out = NULL;
    size_t i, k;
    const json_t *st, *other;
    json_array_foreach(steps, i, st)
    {
        const char *fb = json_string_value(json_object_get(st, "fallback"));
        const char *id = fb ? json_string_value(json_object_get(st, "id")) : NULL;
        if (!fb || !id || !strstr(fb, "__"))
            continue;
        int is_step = 0;
        json_array_foreach(steps, k, other)
        {
            const char *oid = json_string_value(json_object_get(other, "id"));
            is_step |= oid && !strcmp(oid, fb);
        }
        if (is_step)
            continue;
        if (!out && !(out = json_copy((json_t *)steps)))
            return NULL;
        json_t *copy = json_copy((json_t *)st);
        json_t *alt = json_pack("{s:s+, s:s}", "id", id, "-fallback", "tool", fb);
        static const char *const kept[] = {"args", "check", "timeout_ms"};
        for (size_t j = 0; alt && j < 3; j++) {
            const json_t *v = json_object_get(st, kept[j]);
            if (v && json_object_set(alt, kept[j], (json_t *)v))
                json_decref(alt), alt = NULL;
        }
        if (!copy || !alt ||
            json_object_set_new(copy, "fallback", json_incref(json_object_get(alt, "id"))) ||
            json_array_set_new(out, i, copy) || json_array_append_new(out, alt)) {
            json_decref(out);
            return NULL;
        }
    }
    return out ? out : json_incref((json_t *)steps);
}

json_t *aos__plan_validate(const json_t *plan, const aos_plan_opts_t *opts, aos_err_t *err,
                           long *bad_step, char *field, size_t n)
{
    vctx_t c = {.opts = opts, .err = err, .cur = -1};
    json_t *out = NULL, *steps_out = NULL, *steps = NULL;
    int rc = 0;
    *bad_step = -1;
    aos_map_init(&c.ids);
    aos_buf_init(&c.path, 0);
    size_t max = opts && opts->max_steps ? opts->max_steps : AOS_PLAN_MAX_STEPS;
    if (!json_is_object(plan)) {
        rc = aos__fail(err, AOS_EINVAL, "plan: must be an object {\"steps\": [...]}");
        goto out;
    }
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)plan, k, v)
    {
        if (strcmp(k, "steps")) {
            rc = aos__fail(err, AOS_EINVAL, "%s: unknown field (a plan has steps only)", k);
            goto out;
        }
    }
    steps = json_is_array(json_object_get(plan, "steps"))
                ? tool_fallbacks(json_object_get(plan, "steps"))
                : json_incref(json_object_get(plan, "steps"));
    if (json_is_array(json_object_get(plan, "steps")) && !steps) {
        rc = oom(&c);
        goto out;
    }
    c.n = json_array_size(steps);
    if (!json_is_array(steps) || c.n == 0 || c.n > max) {
        rc = aos__fail(err, AOS_EINVAL, "steps: must be an array of 1 to %zu steps", max);
        goto out;
    }
    c.kind = calloc(c.n, 1);
    c.fallback_of = malloc(c.n * sizeof(*c.fallback_of));
    c.index = malloc(c.n * sizeof(*c.index));
    out = json_object();
    steps_out = json_array();
    if (!c.kind || !c.fallback_of || !c.index || !out || !steps_out) {
        rc = oom(&c);
        goto out;
    }
    for (size_t i = 0; i < c.n; i++) {
        c.fallback_of[i] = -1;
        c.cur = (long)i;
        c.cur_id = NULL;
        if ((rc = check_head(&c, json_array_get(steps, i))) != 0)
            goto out;
    }
    for (size_t i = 0; i < c.n; i++) {
        const json_t *st = json_array_get(steps, i);
        c.cur = (long)i;
        c.cur_id = json_string_value(json_object_get(st, "id"));
        json_t *o = json_object();
        if (!o || json_array_append_new(steps_out, o)) {
            rc = oom(&c);
            goto out;
        }
        if ((rc = check_step(&c, st, o)) != 0)
            goto out;
    }
    if (json_object_set_new_nocheck(out, "steps", steps_out))
        rc = oom(&c);
    steps_out = NULL;
out:
    if (rc) {
        *bad_step = c.cur;
        if (n)
            snprintf(field, n, "%s", c.field);
        json_decref(out);
        out = NULL;
    }
    json_decref(steps_out);
    json_decref(steps);
    free(c.kind);
    free(c.fallback_of);
    free(c.index);
    aos_map_release(&c.ids);
    aos_buf_release(&c.path);
    return out;
}

json_t *aos_plan_validate(const json_t *plan, const aos_plan_opts_t *opts, aos_err_t *err)
{
    long ignore;
    return aos__plan_validate(plan, opts, err, &ignore, NULL, 0);
}
