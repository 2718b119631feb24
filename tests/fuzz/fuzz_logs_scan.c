/* fuzz_logs_scan.c - the two ways a POST /api/logs body becomes a batch
 * must agree: when the scan (aos__logs_batch_scan, no JSON tree) accepts a
 * body, the tree path (aos_http_parse_json, then aos__logs_batch_parse, as
 * logs.c runs it) must accept it too and give the same rows - levels,
 * timestamps, every string byte for byte, attributes as the same compact
 * JSON - and the same entries as the API shows them. A refusal of the
 * scan needs no check: logs.c then runs the tree path. The default
 * redactor with a registered secret runs in both. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "isotime/isotime.h"
#include "logs/internal.h"
#include "logs/logs.h"
#include "redact/redact.h"

#define SECRET "fuzz-secret-value-0123456789"

static int same_str(const char *a, const char *b)
{
    return (!a && !b) || (a && b && !strcmp(a, b));
}

/* An entry without ts gets the time of the parse: the two paths may be a
 * few milliseconds apart. */
static int same_ts(const char *a, const char *b)
{
    if (!strcmp(a, b))
        return 1;
    char now[32];
    aos_isotime_fmt(aos_isotime_now_ms(), now);
    return !strncmp(a, now, 15) && !strncmp(b, now, 15); /* the same 10 minutes */
}

static void fail(const char *what, size_t i)
{
    fprintf(stderr, "fuzz_logs_scan: the scan and the tree path disagree: %s (entry %zu)\n", what,
            i);
    abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aos_redact_t *red;
    if (!red) {
        red = aos_redact_new(AOS_REDACT_DEFAULT);
        aos_redact_add_value(red, SECRET);
    }
    aos__logs_batch_t a;
    if (aos__logs_batch_scan(&a, (const char *)data, size, aos_redact_field, red) != 0)
        return 0;

    aos_err_t err = {0, ""};
    json_t *body = aos_http_parse_json((const char *)data, size, &err);
    if (!body)
        fail(err.msg, 0);
    json_t *entries = body;
    if (json_is_object(body)) {
        if (json_object_size(body) != 1)
            fail("a body with more than 'entries'", 0);
        entries = json_object_get(body, "entries");
    }
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    if (aos__logs_batch_parse(&b, entries, aos_redact_field, red, &fault, &err) != 0)
        fail(err.msg, (size_t)fault.index);
    if (a.n != b.n)
        fail("entry count", 0);
    for (size_t i = 0; i < a.n; i++) {
        const aos_store_log_t *x = &a.rows[i], *y = &b.rows[i];
        if (x->level != y->level)
            fail("level", i);
        if (!same_ts(x->ts, y->ts))
            fail("ts", i);
        if (x->message_len != y->message_len || memcmp(x->message, y->message, x->message_len))
            fail("message", i);
        if (!same_str(x->topic, y->topic) || !same_str(x->source, y->source))
            fail("topic or source", i);
        if (!same_str(x->trace_id, y->trace_id) || !same_str(x->span_id, y->span_id))
            fail("trace_id or span_id", i);
        if (!same_str(x->attributes, y->attributes))
            fail("attributes", i);
        /* the entry as streams show it: attributes from the text */
        json_t *ea = aos__logs_entry_json(&a, i), *eb = aos__logs_entry_json(&b, i);
        if (!ea || !eb)
            fail("entry JSON", i);
        json_object_del(ea, "ts");
        json_object_del(eb, "ts");
        if (!json_equal(ea, eb))
            fail("entry JSON", i);
        json_decref(ea);
        json_decref(eb);
    }
    aos__logs_batch_release(&a);
    aos__logs_batch_release(&b);
    json_decref(body);
    return 0;
}
