/* fuzz_otlp.c - a POST /v1/traces or /v1/logs body through the OTLP codec
 * (src/telemetry/otlp.c). The first byte picks the signal (bit 0: logs),
 * the encoding (bit 1: JSON) and gzip (bit 2); the rest is the body.
 * Checked: a body decodes or is refused with AOS_EINVAL, never anything
 * else; every accepted span has the ids, kind and status the spans table
 * holds and JSON attributes; and the accepted spans, encoded again as aosd
 * exports them (both encodings), decode to as many spans, none refused.
 * Every accepted log entry is an object with a string message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "telemetry/internal.h"

static int hex_ok(const char *s, size_t n)
{
    if (!s || strlen(s) != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static void check_json(const char *text, int (*is)(const json_t *))
{
    if (!text)
        return;
    json_t *v = json_loads(text, 0, NULL);
    if (!v || !is(v))
        abort();
    json_decref(v);
}

static int is_object(const json_t *v)
{
    return json_is_object(v);
}

static int is_array(const json_t *v)
{
    return json_is_array(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int logs = data[0] & 1;
    aos_otlp_encoding_t enc = (data[0] & 2) ? AOS_OTLP_JSON : AOS_OTLP_PROTOBUF;
    const void *body = data + 1;
    size_t len = size - 1;
    void *plain = NULL;
    aos_err_t err = {0, ""};
    if (data[0] & 4) {
        if (aos_otlp_gunzip(body, len, 1 << 20, &plain, &len, &err) < 0)
            return 0;
        body = plain;
    }
    if (logs) {
        aos_otlp_logs_t l;
        int rc = aos_otlp_logs_decode(body, len, enc, &l, &err);
        if (rc != 0 && rc != AOS_EINVAL)
            abort();
        size_t i;
        json_t *e;
        json_array_foreach(l.entries, i, e)
        {
            if (!json_is_object(e) || !json_is_string(json_object_get(e, "message")))
                abort();
        }
        aos_otlp_logs_release(&l);
        free(plain);
        return 0;
    }
    aos_otlp_traces_t t;
    int rc = aos_otlp_traces_decode(body, len, enc, NULL, &t, &err);
    if (rc != 0 && rc != AOS_EINVAL)
        abort();
    for (size_t i = 0; rc == 0 && i < t.n; i++) {
        const aos_store_span_t *r = &t.rows[i];
        if (!hex_ok(r->trace_id, 32) || !hex_ok(r->span_id, 16) ||
            (r->parent_span_id && !hex_ok(r->parent_span_id, 16)) || r->kind < 0 || r->kind > 5 ||
            r->status_code < 0 || r->status_code > 2 || !r->name || r->start_ns < 0 ||
            r->end_ns < 0 || r->resource_id < 0 || (size_t)r->resource_id >= t.nres)
            abort();
        check_json(r->attributes, is_object);
        check_json(r->events, is_array);
        check_json(r->links, is_array);
    }
    if (rc == 0 && t.n) {
        for (int e = 0; e < 2; e++) {
            aos_buf_t b;
            aos_buf_init(&b, 0);
            if (aos_otlp_traces_encode(t.rows, NULL, t.n, t.resources[0], e, &b) == 0) {
                aos_otlp_traces_t again;
                if (aos_otlp_traces_decode(b.ptr, b.len, e, NULL, &again, &err) != 0 ||
                    again.n != t.n || again.rejected)
                    abort();
                aos_otlp_traces_release(&again);
            }
            aos_buf_release(&b);
        }
    }
    aos_otlp_traces_release(&t);
    free(plain);
    return 0;
}
