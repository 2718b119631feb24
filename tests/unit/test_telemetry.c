/* test_telemetry.c - the OTLP codec (src/telemetry/otlp.c): aosd's spans
 * encoded as an ExportTraceServiceRequest in protobuf and in OTLP/JSON and
 * decoded back field for field; what the decoders refuse span by span
 * (partial success) and what they refuse whole (a malformed body); the
 * limits of an ingested span (value length, attribute count, values that
 * are no scalar); log records to log-service entries (severity, source,
 * ids, body); the responses with and without partial_success; gzip with
 * its size bound; the exporter's configuration checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "telemetry/internal.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"
#define PID "b7ad6b7169203331"

static aos_store_span_t sample_row(void)
{
    aos_store_span_t r = {0};
    r.trace_id = TID;
    r.span_id = SID;
    r.parent_span_id = PID;
    r.trace_state = "k=v";
    r.flags = 0x301;
    r.name = "tools/call echo";
    r.kind = 3;
    r.start_ns = 1700000000000000000LL;
    r.end_ns = 1700000000250000000LL;
    r.status_code = 2;
    r.status_message = "timeout";
    r.attributes = "{\"s\":\"x\",\"i\":42,\"d\":0.5,\"b\":true}";
    r.events =
        "[{\"time_unix_nano\":1700000000100000000,\"name\":\"retry\",\"attributes\":{\"n\":2}}]";
    r.links =
        "[{\"trace_id\":\"" TID "\",\"span_id\":\"" PID "\",\"flags\":257,\"attributes\":{}}]";
    r.dropped_attributes = 3;
    r.dropped_events = 1;
    return r;
}

static void json_eq(const char *a, const char *b)
{
    json_t *x = json_loads(a, 0, NULL), *y = json_loads(b, 0, NULL);
    assert_non_null(x);
    assert_non_null(y);
    if (!json_equal(x, y))
        fail_msg("%s != %s", a, b);
    json_decref(x);
    json_decref(y);
}

static void roundtrip(aos_otlp_encoding_t enc)
{
    aos_store_span_t in[2] = {sample_row(), sample_row()};
    in[1].span_id = PID;
    in[1].parent_span_id = NULL;
    in[1].trace_state = NULL;
    in[1].status_code = 0;
    in[1].status_message = NULL;
    in[1].attributes = NULL;
    in[1].events = NULL;
    in[1].links = NULL;
    in[1].kind = 2;
    aos_buf_t b;
    aos_buf_init(&b, 0);
    assert_int_equal(aos_otlp_traces_encode(
                         in, NULL, 2, "{\"service.name\":\"aosd\",\"process.pid\":7}", enc, &b),
                     0);
    aos_otlp_traces_t t;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_otlp_traces_decode(b.ptr, b.len, enc, NULL, &t, &err), 0);
    assert_int_equal(t.n, 2);
    assert_int_equal(t.rejected, 0);
    assert_int_equal(t.nres, 1);
    json_eq(t.resources[0], "{\"service.name\":\"aosd\",\"process.pid\":7}");
    const aos_store_span_t *r = &t.rows[0];
    assert_string_equal(r->trace_id, TID);
    assert_string_equal(r->span_id, SID);
    assert_string_equal(r->parent_span_id, PID);
    assert_string_equal(r->trace_state, "k=v");
    assert_int_equal(r->flags, 0x301);
    assert_string_equal(r->name, "tools/call echo");
    assert_int_equal(r->kind, 3);
    assert_true(r->start_ns == 1700000000000000000LL && r->end_ns == 1700000000250000000LL);
    assert_int_equal(r->status_code, 2);
    assert_string_equal(r->status_message, "timeout");
    /* the scope aosd names is added as otel.scope.name */
    json_eq(r->attributes,
            "{\"s\":\"x\",\"i\":42,\"d\":0.5,\"b\":true,\"otel.scope.name\":\"aosd\"}");
    json_eq(r->events, in[0].events);
    json_eq(r->links, in[0].links);
    assert_int_equal(r->dropped_attributes, 3);
    assert_int_equal(r->dropped_events, 1);
    assert_int_equal(r->resource_id, 0);
    r = &t.rows[1];
    assert_null(r->parent_span_id);
    assert_null(r->trace_state);
    assert_null(r->status_message);
    assert_null(r->events);
    assert_int_equal(r->kind, 2);
    aos_otlp_traces_release(&t);
    aos_buf_release(&b);
}

static void test_roundtrip_protobuf(void **state)
{
    roundtrip(AOS_OTLP_PROTOBUF);
}

static void test_roundtrip_json(void **state)
{
    roundtrip(AOS_OTLP_JSON);
}

/* The exporter hands the encoder the spans' attributes, events and links
 * as parsed values (what src/trace made the texts from) instead of the
 * texts: the same request, byte for byte, in both encodings; a row whose
 * value is missing from json falls back to its text. */
static void test_encode_parsed(void **state)
{
    (void)state;
    aos_store_span_t in[2] = {sample_row(), sample_row()};
    in[1].span_id = PID;
    in[1].events = NULL;
    const char *res = "{\"service.name\":\"aosd\"}";
    for (int enc = 0; enc < 2; enc++) {
        json_t *json[6] = {0};
        aos_store_span_t bare[2] = {in[0], in[1]};
        for (int i = 0; i < 2; i++) {
            const char *t[3] = {in[i].attributes, in[i].events, in[i].links};
            for (int k = 0; k < 3; k++)
                json[3 * i + k] = t[k] ? json_loads(t[k], 0, NULL) : NULL;
            bare[i].attributes = bare[i].events = bare[i].links = NULL;
        }
        bare[1].links = in[1].links; /* not in json: read from the text */
        json_decref(json[5]);
        json[5] = NULL;
        aos_buf_t a, b;
        aos_buf_init(&a, 0);
        aos_buf_init(&b, 0);
        assert_int_equal(aos_otlp_traces_encode(in, NULL, 2, res, enc, &a), 0);
        assert_int_equal(aos_otlp_traces_encode(bare, json, 2, res, enc, &b), 0);
        assert_true(a.len > 0);
        assert_int_equal(a.len, b.len);
        assert_memory_equal(a.ptr, b.ptr, a.len);
        for (int k = 0; k < 6; k++) {
            if (json[k])
                assert_int_equal(json[k]->refcount, 1); /* the encoder kept none */
            json_decref(json[k]);
        }
        aos_buf_release(&a);
        aos_buf_release(&b);
    }
}

static int decode_json(const char *spans, aos_otlp_traces_t *t, aos_err_t *err)
{
    char body[65536];
    snprintf(body, sizeof(body),
             "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\","
             "\"value\":{\"stringValue\":\"svc\"}}]},\"scopeSpans\":[{\"spans\":[%s]}]}]}",
             spans);
    return aos_otlp_traces_decode(body, strlen(body), AOS_OTLP_JSON, NULL, t, err);
}

/* The hand-written protobuf encoder makes what protobuf-c's pack makes,
 * byte for byte: spans with every field, with none (defaults left out,
 * the status always there), values of each kind (negative, zero, false,
 * empty, nested, escaped), events and links, a bad id, a resource, and
 * no span at all. */
static void test_encode_matches_protobuf_c(void **state)
{
    (void)state;
    aos_store_span_t in[4] = {sample_row(), sample_row(), {0}, sample_row()};
    in[1].attributes =
        "{\"neg\":-5,\"zero\":0,\"f\":false,\"e\":\"\",\"\":\"nokey\",\"obj\":{\"a\":[1,"
        "null]},\"nul\":null,\"big\":9007199254740993,\"r\":-0.0,\"u\":\"\\u00e9\\\"\"}";
    in[1].links = "[{\"trace_id\":\"nothex\",\"span_id\":\"" SID "\",\"trace_state\":\"a=b\","
                  "\"flags\":0,\"attributes\":{\"x\":1}},{}]";
    in[1].events = "[{\"name\":\"\",\"attributes\":{}},{\"time_unix_nano\":1}]";
    in[1].kind = 0;
    in[1].status_code = 0;
    in[1].status_message = "";
    in[1].flags = 0;
    in[2].trace_id = TID;
    in[2].span_id = "short";
    in[3].start_ns = -1; /* as it is, two's complement */
    const char *res[] = {"{\"service.name\":\"aosd\",\"process.pid\":7,\"ok\":true}", "{}"};
    for (size_t n = 0; n <= 4; n++)
        for (int r = 0; r < 2; r++) {
            json_t *rj = json_loads(res[r], 0, NULL);
            aos_buf_t a, b;
            aos_buf_init(&a, 0);
            aos_buf_init(&b, 0);
            assert_int_equal(aos_otlp_traces_encode(in, NULL, n, res[r], AOS_OTLP_PROTOBUF, &a), 0);
            assert_int_equal(aos__otlp_traces_encode_pbc(in, NULL, n, rj, &b), 0);
            if (a.len != b.len || memcmp(a.ptr, b.ptr, a.len) != 0)
                fail_msg("%zu spans, resource %d: %zu bytes, protobuf-c %zu", n, r, a.len, b.len);
            /* and it reads back */
            aos_otlp_traces_t t;
            aos_err_t err = {0, ""};
            assert_int_equal(
                aos_otlp_traces_decode(a.ptr, a.len, AOS_OTLP_PROTOBUF, NULL, &t, &err), 0);
            aos_otlp_traces_release(&t);
            aos_buf_release(&a);
            aos_buf_release(&b);
            json_decref(rj);
        }
}

static void test_partial_rejects(void **state)
{
    aos_otlp_traces_t t;
    aos_err_t err = {0, ""};
    assert_int_equal(
        decode_json("{\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"name\":\"ok\"},"
                    "{\"traceId\":\"00000000000000000000000000000000\",\"spanId\":\"" SID "\"},"
                    "{\"traceId\":\"" TID "\",\"spanId\":\"0102\"},"
                    "{\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"parentSpanId\":\"zz\"},"
                    "{\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"kind\":6},"
                    "{\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"status\":{\"code\":3}},"
                    "{\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"startTimeUnixNano\":\"-5\"}",
                    &t, &err),
        0);
    assert_int_equal(t.n, 1);
    assert_int_equal(t.rejected, 6);
    assert_string_equal(t.message, "spans[1]: trace_id must be 16 bytes, not all zeros");
    assert_string_equal(t.rows[0].name, "ok");
    json_eq(t.resources[0], "{\"service.name\":\"svc\"}");
    aos_otlp_traces_release(&t);
}

/* Ingested spans are redacted as aosd's own: attributes, events, links,
 * the status message, the resource. */
static void test_redacted(void **state)
{
#define SECRET "s3cr3t-value-0123456789"
    const char *body =
        "{\"resourceSpans\":[{\"resource\":{\"attributes\":[{\"key\":\"k\",\"value\":"
        "{\"stringValue\":\"r " SECRET "\"}}]},\"scopeSpans\":[{\"spans\":[{\"traceId\":\"" TID
        "\",\"spanId\":\"" SID "\",\"name\":\"n\",\"attributes\":[{\"key\":\"a\",\"value\":"
        "{\"stringValue\":\"x " SECRET " y\"}}],\"events\":[{\"name\":\"e\",\"attributes\":"
        "[{\"key\":\"b\",\"value\":{\"stringValue\":\"" SECRET "\"}}]}],\"status\":{\"code\":2,"
        "\"message\":\"failed: " SECRET "\"}}]}]}]}";
    aos_redact_t *r = aos_redact_new(0);
    assert_non_null(r);
    assert_int_equal(aos_redact_add_value(r, SECRET), 0);
    aos_otlp_traces_t t;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_otlp_traces_decode(body, strlen(body), AOS_OTLP_JSON, r, &t, &err), 0);
    assert_int_equal(t.n, 1);
    const aos_store_span_t *s = &t.rows[0];
    assert_null(strstr(s->attributes, SECRET));
    assert_null(strstr(s->events, SECRET));
    assert_null(strstr(s->status_message, SECRET));
    assert_null(strstr(t.resources[0], SECRET));
    assert_non_null(strstr(s->attributes, "x "));
    aos_otlp_traces_release(&t);
    /* without a redactor the text is kept: the test above can fail */
    assert_int_equal(aos_otlp_traces_decode(body, strlen(body), AOS_OTLP_JSON, NULL, &t, &err), 0);
    assert_non_null(strstr(t.rows[0].attributes, SECRET));
    aos_otlp_traces_release(&t);
    aos_redact_free(r);
#undef SECRET
}

static void test_malformed(void **state)
{
    aos_otlp_traces_t t;
    aos_otlp_logs_t l;
    aos_err_t err = {0, ""};
    static const char *const bad_json[] = {"", "{", "[]", "{\"resourceSpans\":{}}", "nul"};
    for (size_t i = 0; i < sizeof(bad_json) / sizeof(bad_json[0]); i++) {
        assert_int_equal(
            aos_otlp_traces_decode(bad_json[i], strlen(bad_json[i]), AOS_OTLP_JSON, NULL, &t, &err),
            AOS_EINVAL);
        aos_otlp_traces_release(&t);
    }
    const unsigned char bad_pb[] = {0x0a, 0x05, 0x01}; /* a field longer than the body */
    assert_int_equal(
        aos_otlp_traces_decode(bad_pb, sizeof(bad_pb), AOS_OTLP_PROTOBUF, NULL, &t, &err),
        AOS_EINVAL);
    aos_otlp_traces_release(&t);
    assert_int_equal(aos_otlp_logs_decode(bad_pb, sizeof(bad_pb), AOS_OTLP_PROTOBUF, &l, &err),
                     AOS_EINVAL);
    aos_otlp_logs_release(&l);
    assert_int_equal(aos_otlp_logs_decode("{", 1, AOS_OTLP_JSON, &l, &err), AOS_EINVAL);
    aos_otlp_logs_release(&l);
    /* an empty protobuf body is an empty request */
    assert_int_equal(aos_otlp_traces_decode("", 0, AOS_OTLP_PROTOBUF, NULL, &t, &err), 0);
    assert_int_equal(t.n, 0);
    aos_otlp_traces_release(&t);
}

static void test_limits(void **state)
{
    static char spans[60000];
    char big[5001];
    memset(big, 'x', 5000);
    big[5000] = '\0';
    int n =
        snprintf(spans, sizeof(spans),
                 "{\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"name\":\"n\",\"attributes\":["
                 "{\"key\":\"big\",\"value\":{\"stringValue\":\"%s\"}},"
                 "{\"key\":\"arr\",\"value\":{\"arrayValue\":{\"values\":[{\"intValue\":\"1\"},"
                 "{\"stringValue\":\"a\"}]}}},"
                 "{\"key\":\"nan\",\"value\":{\"doubleValue\":\"NaN\"}},"
                 "{\"key\":\"bad\",\"value\":{\"intValue\":\"12x\"}},"
                 "{\"key\":\"bin\",\"value\":{\"bytesValue\":\"AQI=\"}}",
                 big);
    for (int i = 0; i < 130; i++)
        n += snprintf(spans + n, sizeof(spans) - (size_t)n,
                      ",{\"key\":\"k%d\",\"value\":{\"boolValue\":true}}", i);
    snprintf(spans + n, sizeof(spans) - (size_t)n, "]}");
    aos_otlp_traces_t t;
    aos_err_t err = {0, ""};
    assert_int_equal(decode_json(spans, &t, &err), 0);
    assert_int_equal(t.n, 1);
    json_t *a = json_loads(t.rows[0].attributes, 0, NULL);
    assert_non_null(a);
    assert_int_equal(json_string_length(json_object_get(a, "big")), 4096);
    assert_string_equal(json_string_value(json_object_get(a, "arr")), "[1,\"a\"]");
    assert_string_equal(json_string_value(json_object_get(a, "bin")), "AQI=");
    assert_null(json_object_get(a, "nan"));
    assert_int_equal(json_object_size(a), 128);
    /* big, arr, bin and 125 booleans kept; nan, bad and 5 booleans dropped */
    assert_int_equal(t.rows[0].dropped_attributes, 7);
    json_decref(a);
    aos_otlp_traces_release(&t);
}

static void test_logs(void **state)
{
    const char *body =
        "{\"resourceLogs\":[{\"resource\":{\"attributes\":[{\"key\":\"service.name\",\"value\":"
        "{\"stringValue\":\"aosd\"}}]},\"scopeLogs\":[{\"scope\":{\"name\":\"lib\"},\"logRecords\":"
        "["
        "{\"timeUnixNano\":\"1700000000123000000\",\"severityNumber\":13,\"body\":{\"stringValue\":"
        "\"careful\"},\"traceId\":\"" TID "\",\"spanId\":\"" SID "\",\"attributes\":[{\"key\":"
        "\"a\",\"value\":{\"intValue\":\"1\"}}],\"eventName\":\"ev\"},"
        "{\"observedTimeUnixNano\":\"1700000000000000000\",\"severityText\":\"ERROR\"},"
        "{\"traceId\":\"0102\"}]}]}]}";
    aos_otlp_logs_t l;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_otlp_logs_decode(body, strlen(body), AOS_OTLP_JSON, &l, &err), 0);
    assert_int_equal(json_array_size(l.entries), 2);
    assert_int_equal(l.rejected, 1);
    assert_string_equal(l.message,
                        "log_records[2]: trace_id must be 16 bytes and span_id 8, or empty");
    char *got = json_dumps(json_array_get(l.entries, 0), JSON_COMPACT | JSON_SORT_KEYS);
    /* the source never passes for aosd's own ("aosd" is reserved) */
    json_eq(got,
            "{\"message\":\"careful\",\"level\":\"warn\",\"topic\":\"lib\",\"source\":"
            "\"otlp:aosd\",\"ts\":1700000000123,\"attributes\":{\"a\":1,\"event.name\":\"ev\"},"
            "\"trace_id\":\"" TID "\",\"span_id\":\"" SID "\"}");
    free(got);
    got = json_dumps(json_array_get(l.entries, 1), JSON_COMPACT | JSON_SORT_KEYS);
    json_eq(got, "{\"message\":\"\",\"level\":\"error\",\"topic\":\"lib\",\"source\":\"otlp:aosd\","
                 "\"ts\":1700000000000}");
    free(got);
    aos_otlp_logs_release(&l);
}

static void test_responses(void **state)
{
    for (int enc = 0; enc < 2; enc++) {
        aos_buf_t b;
        aos_buf_init(&b, 0);
        assert_int_equal(aos_otlp_response_encode(0, 3, "spans[1]: bad", enc, &b), 0);
        int64_t rejected;
        char msg[64];
        assert_int_equal(aos_otlp_response_decode(b.ptr, b.len, enc, &rejected, msg, sizeof(msg)),
                         0);
        assert_int_equal(rejected, 3);
        assert_string_equal(msg, "spans[1]: bad");
        aos_buf_reset(&b);
        assert_int_equal(aos_otlp_response_encode(0, 0, NULL, enc, &b), 0);
        if (enc == AOS_OTLP_JSON)
            assert_memory_equal(b.ptr, "{}", 2);
        else
            assert_int_equal(b.len, 0);
        assert_int_equal(aos_otlp_response_decode(b.ptr, b.len, enc, &rejected, msg, sizeof(msg)),
                         0);
        assert_int_equal(rejected, 0);
        aos_buf_reset(&b);
        assert_int_equal(aos_otlp_response_encode(1, 2, "x", enc, &b), 0);
        if (enc == AOS_OTLP_JSON)
            assert_non_null(strstr(b.ptr, "\"rejectedLogRecords\":\"2\""));
        aos_buf_release(&b);
    }
    int64_t rejected;
    assert_int_equal(aos_otlp_response_decode("<html>", 6, AOS_OTLP_JSON, &rejected, NULL, 0),
                     AOS_EINVAL);
}

static size_t gzip(const void *in, size_t len, unsigned char *out, size_t cap)
{
    z_stream z;
    memset(&z, 0, sizeof(z));
    assert_int_equal(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    z.next_in = (unsigned char *)in;
    z.avail_in = (uInt)len;
    z.next_out = out;
    z.avail_out = (uInt)cap;
    assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
    size_t n = cap - z.avail_out;
    deflateEnd(&z);
    return n;
}

static void test_gunzip(void **state)
{
    static unsigned char plain[1 << 20], packed[1 << 16];
    memset(plain, 'a', sizeof(plain));
    size_t n = gzip(plain, sizeof(plain), packed, sizeof(packed));
    void *out;
    size_t out_len;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_otlp_gunzip(packed, n, sizeof(plain), &out, &out_len, &err), 0);
    assert_int_equal(out_len, sizeof(plain));
    assert_memory_equal(out, plain, sizeof(plain));
    free(out);
    /* one byte over the bound: refused, a bomb cannot grow past it */
    assert_int_equal(aos_otlp_gunzip(packed, n, sizeof(plain) - 1, &out, &out_len, &err),
                     AOS_EINVAL);
    assert_null(out);
    assert_non_null(strstr(err.msg, "inflates beyond"));
    /* cut short, and not gzip at all */
    assert_int_equal(aos_otlp_gunzip(packed, n / 2, sizeof(plain), &out, &out_len, &err),
                     AOS_EINVAL);
    assert_int_equal(aos_otlp_gunzip("{}", 2, sizeof(plain), &out, &out_len, &err), AOS_EINVAL);
}

static void test_encoding_names(void **state)
{
    assert_int_equal(aos_otlp_encoding_parse("http/protobuf"), AOS_OTLP_PROTOBUF);
    assert_int_equal(aos_otlp_encoding_parse("http/json"), AOS_OTLP_JSON);
    assert_int_equal(aos_otlp_encoding_parse("grpc"), -1);
    assert_int_equal(aos_otlp_encoding_parse(NULL), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_protobuf),
        cmocka_unit_test(test_roundtrip_json),
        cmocka_unit_test(test_encode_parsed),
        cmocka_unit_test(test_encode_matches_protobuf_c),
        cmocka_unit_test(test_partial_rejects),
        cmocka_unit_test(test_redacted),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_logs),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_gunzip),
        cmocka_unit_test(test_encoding_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
