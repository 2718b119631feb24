/* format.c - a normalized plan as Action DSL text (docs/DSL.md), for the
 * UI and for tests: one statement per step, its options on the indented
 * lines after it, defaults left out. aos_dsl_parse of the text gives the
 * plan back (tests/fuzz/fuzz_dsl.c checks it on every input it accepts). */
#include "plan/internal.h"

#include <stdlib.h>
#include <string.h>

static int duration(aos_buf_t *b, json_int_t ms)
{
    if (ms > 0 && ms % 3600000 == 0)
        return aos_buf_printf(b, "%" JSON_INTEGER_FORMAT "h", ms / 3600000);
    if (ms > 0 && ms % 60000 == 0)
        return aos_buf_printf(b, "%" JSON_INTEGER_FORMAT "m", ms / 60000);
    if (ms > 0 && ms % 1000 == 0)
        return aos_buf_printf(b, "%" JSON_INTEGER_FORMAT "s", ms / 1000);
    return aos_buf_printf(b, "%" JSON_INTEGER_FORMAT "ms", ms);
}

/* A name the DSL lexer reads as one word (else it is written quoted). */
static int bare(const char *k)
{
    unsigned char c = (unsigned char)*k;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_'))
        return 0;
    for (; *k; k++) {
        c = (unsigned char)*k;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

static int tool_step(aos_buf_t *b, const json_t *st)
{
    const char *tool = json_string_value(json_object_get(st, "tool"));
    const json_t *args = json_object_get(st, "args");
    if (!tool || !json_is_object(args))
        return AOS_EINVAL;
    int rc = aos_buf_puts(b, tool);
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)args, k, v)
    {
        if (rc)
            return rc;
        if (bare(k)) {
            rc = aos_buf_printf(b, " %s=", k);
        } else {
            json_t *name = json_string(k);
            rc = aos_buf_puts(b, " ");
            if (!rc)
                rc = name ? aos__json(b, name) : AOS_ENOMEM;
            json_decref(name);
            if (!rc)
                rc = aos_buf_puts(b, "=");
        }
        if (!rc)
            rc = aos__json(b, v);
    }
    if (!rc)
        rc = aos_buf_puts(b, "\n");
    const json_t *chk = json_object_get(st, "check");
    if (!rc && chk) {
        size_t mark = b->len;
        rc = aos_buf_puts(b, "  check");
        size_t items = b->len;
        if (!rc && json_is_true(json_object_get(chk, "non_empty")))
            rc = aos_buf_puts(b, " non_empty");
        if (!rc && json_is_false(json_object_get(chk, "not_error")))
            rc = aos_buf_puts(b, " allow_error");
        static const char *const with_value[] = {"contains", "matches", "schema", "llm"};
        for (size_t i = 0; !rc && i < 4; i++) {
            const json_t *x = json_object_get(chk, with_value[i]);
            if (x)
                rc = aos_buf_printf(b, " %s ", with_value[i]);
            if (!rc && x)
                rc = aos__json(b, x);
        }
        if (!rc && b->len == items) {
            b->len = mark; /* only defaults */
            b->ptr[mark] = '\0';
        } else if (!rc) {
            rc = aos_buf_puts(b, "\n");
        }
    }
    const json_t *retry = json_object_get(st, "retry");
    if (!rc && retry) {
        json_int_t max = json_integer_value(json_object_get(retry, "max"));
        json_int_t backoff = json_integer_value(json_object_get(retry, "backoff_ms"));
        if (max != 0 || backoff != 500)
            rc = aos_buf_printf(b, "  retry %" JSON_INTEGER_FORMAT, max);
        if (!rc && backoff != 500) {
            rc = aos_buf_puts(b, " backoff ");
            if (!rc)
                rc = duration(b, backoff);
        }
        if (!rc && (max != 0 || backoff != 500))
            rc = aos_buf_puts(b, "\n");
    }
    const json_t *t = json_object_get(st, "timeout_ms");
    if (!rc && t) {
        rc = aos_buf_puts(b, "  timeout ");
        if (!rc)
            rc = duration(b, json_integer_value(t));
        if (!rc)
            rc = aos_buf_puts(b, "\n");
    }
    const char *fb = json_string_value(json_object_get(st, "fallback"));
    if (!rc && fb)
        rc = aos_buf_printf(b, "  fallback %s\n", fb);
    if (!rc && json_is_true(json_object_get(st, "optional")))
        rc = aos_buf_puts(b, "  optional\n");
    return rc;
}

static int approval_step(aos_buf_t *b, const json_t *a)
{
    const json_t *msg = json_object_get(a, "message");
    const json_t *t = json_object_get(a, "timeout_s");
    const char *on = json_string_value(json_object_get(a, "on_timeout"));
    if (!json_is_string(msg))
        return AOS_EINVAL;
    int rc = aos__json(b, msg);
    if (!rc && t && json_integer_value(t) != 3600) {
        rc = aos_buf_puts(b, " timeout ");
        if (!rc)
            rc = duration(b, json_integer_value(t) * 1000);
    }
    if (!rc && on && strcmp(on, "abort"))
        rc = aos_buf_printf(b, " on_timeout %s", on);
    return rc ? rc : aos_buf_puts(b, "\n");
}

char *aos_dsl_format(const json_t *plan)
{
    const json_t *steps = json_object_get(plan, "steps");
    if (!json_is_array(steps) || json_array_size(steps) == 0)
        return NULL;
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = 0;
    size_t i;
    const json_t *st;
    json_array_foreach(steps, i, st)
    {
        const json_t *idv = json_object_get(st, "id");
        const char *id = json_string_value(idv);
        if (!id || !aos__id_ok(id, json_string_length(idv))) {
            rc = AOS_EINVAL;
            break;
        }
        const json_t *a = json_object_get(st, "approval");
        const json_t *m = json_object_get(st, "milestone");
        if (json_object_get(st, "tool")) {
            rc = aos_buf_printf(&b, "step %s: ", id);
            if (!rc)
                rc = tool_step(&b, st);
        } else if (a) {
            rc = aos_buf_printf(&b, "approve %s: ", id);
            if (!rc)
                rc = approval_step(&b, a);
        } else if (json_is_string(m)) {
            rc = aos_buf_printf(&b, "milestone %s: ", id);
            if (!rc)
                rc = aos__json(&b, m);
            if (!rc)
                rc = aos_buf_puts(&b, "\n");
        } else {
            rc = AOS_EINVAL;
        }
        const char *when = json_string_value(json_object_get(st, "when"));
        if (!rc && when)
            rc = aos_buf_printf(&b, "  when %s\n", when);
        if (rc)
            break;
    }
    if (rc) {
        aos_buf_release(&b);
        return NULL;
    }
    return aos_buf_detach(&b, NULL);
}
