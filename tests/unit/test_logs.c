/* test_logs.c - the log service's parts that need no server: validation of
 * entries, redaction, timestamps, cursors, query arguments, the statements
 * built from a filter (values only ever bound), the full-text query made
 * from user words, and the store functions on a real SQLite file. The live
 * matcher is checked against SQLite FTS5 itself: both must find the same
 * entries for the same words. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rawsql.h"
#include "tmpdir.h"
#include "uvtest.h"

#include <dirent.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "http/http.h"
#include "logs/internal.h"
#include "redact/redact.h"
#include "store/internal.h"
#include "store/store.h"

/* ---- helpers ------------------------------------------------------------ */

typedef struct {
    char dir[64];
    char path[96];
    char url[128];
    aos_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    if (aos_test_mkdtemp(f->dir, sizeof(f->dir), "logs")) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/aos.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    aos_err_t err = {0, ""};
    if (aos_store_open(&f->st, NULL, f->url, &err) != 0) {
        fprintf(stderr, "aos_store_open: %s\n", aos_err_msg(&err));
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_store_close(f->st);
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad JSON in test: %s: %s", text, je.text);
    return j;
}

/* Parses a batch given as JSON text, with the default redactor. */
static int batch(aos__logs_batch_t *b, const char *text, aos__logs_fault_t *fault, aos_err_t *err)
{
    json_t *j = parse(text);
    int rc = aos__logs_batch_parse(b, j, aos_redact_field, aos_redact_global(), fault, err);
    json_decref(j);
    return rc;
}

/* Default redaction of text (the message: no key); returns a new string. */
static char *redact(const char *key, const char *text, aos_redact_t *r)
{
    aos_buf_t out;
    aos_buf_init(&out, 0);
    int rc = aos_redact_field(key, text, strlen(text), &out, r ? r : aos_redact_global());
    assert_true(rc == 0 || rc == 1);
    char *s = strdup(rc == 1 ? (out.ptr ? out.ptr : "") : text);
    aos_buf_release(&out);
    return s;
}

/* ---- levels and timestamps ------------------------------------------------ */

static void test_levels(void **state)
{
    assert_int_equal(aos__logs_level_parse("trace"), 0);
    assert_int_equal(aos__logs_level_parse("debug"), 1);
    assert_int_equal(aos__logs_level_parse("INFO"), 2);
    assert_int_equal(aos__logs_level_parse("warn"), 3);
    assert_int_equal(aos__logs_level_parse("warning"), 3);
    assert_int_equal(aos__logs_level_parse("error"), 4);
    assert_int_equal(aos__logs_level_parse("fatal"), 5);
    assert_int_equal(aos__logs_level_parse("loud"), -1);
    assert_int_equal(aos__logs_level_parse(""), -1);
    assert_int_equal(aos__logs_level_parse(NULL), -1);
    for (int i = 0; i < AOS_STORE_LOG_LEVELS; i++)
        assert_int_equal(aos__logs_level_parse(aos_store_log_level_name(i)), i);
    assert_null(aos_store_log_level_name(6));
}

static void ts_ok(const char *in, const char *want)
{
    char out[32];
    aos_err_t err = {0, ""};
    json_t *v = json_string(in);
    int rc = aos__logs_ts_parse(v, out, &err);
    json_decref(v);
    if (rc)
        fail_msg("'%s' refused: %s", in, aos_err_msg(&err));
    assert_string_equal(out, want);
}

static void ts_bad(const char *in)
{
    char out[32];
    aos_err_t err = {0, ""};
    json_t *v = json_string(in);
    if (aos__logs_ts_parse(v, out, &err) != AOS_EINVAL)
        fail_msg("'%s' accepted as %s", in, out);
    json_decref(v);
}

static void test_timestamps(void **state)
{
    ts_ok("2025-01-31T12:00:00Z", "2025-01-31T12:00:00.000Z");
    ts_ok("2025-01-31T12:00:00.5Z", "2025-01-31T12:00:00.500Z");
    ts_ok("2025-01-31t12:00:00.123456789z", "2025-01-31T12:00:00.123Z");
    ts_ok("2025-01-31 12:00:00.042Z", "2025-01-31T12:00:00.042Z");
    ts_ok("2025-01-31T12:00:00+02:00", "2025-01-31T10:00:00.000Z");
    ts_ok("2025-01-01T01:30:00-05:30", "2025-01-01T07:00:00.000Z");
    ts_ok("2025-01-01T00:00:00+02:00", "2024-12-31T22:00:00.000Z");
    ts_ok("2024-02-29T00:00:00Z", "2024-02-29T00:00:00.000Z");
    ts_ok("2016-12-31T23:59:60Z", "2016-12-31T23:59:59.000Z");
    ts_ok("1970-01-01T00:00:00Z", "1970-01-01T00:00:00.000Z");
    ts_bad("2025-01-31T12:00:00");  /* no zone */
    ts_bad("2025-02-29T00:00:00Z"); /* not a leap year */
    ts_bad("2025-13-01T00:00:00Z");
    ts_bad("2025-01-31T24:00:00Z");
    ts_bad("2025-01-31T12:00Z");
    ts_bad("2025-01-31T12:00:00.Z");
    ts_bad("2025-01-31T12:00:00Zjunk");
    ts_bad("1969-12-31T23:59:59Z");
    ts_bad("yesterday");
    ts_bad("");

    char out[32];
    aos_err_t err = {0, ""};
    json_t *ms = json_integer(1738324800123LL);
    assert_int_equal(aos__logs_ts_parse(ms, out, &err), 0);
    assert_string_equal(out, "2025-01-31T12:00:00.123Z");
    json_decref(ms);
    ms = json_integer(-1);
    assert_int_equal(aos__logs_ts_parse(ms, out, &err), AOS_EINVAL);
    json_decref(ms);
    ms = json_real(1.5);
    assert_int_equal(aos__logs_ts_parse(ms, out, &err), AOS_EINVAL);
    json_decref(ms);
}

/* ---- validation ---------------------------------------------------------------- */

static void test_batch_valid(void **state)
{
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    int rc =
        batch(&b,
              "[{\"message\":\"one\"},"
              " {\"message\":\"two\",\"level\":\"ERROR\",\"ts\":\"2025-01-31T12:00:00+01:00\","
              "  \"topic\":\"agent.run\",\"source\":\"agent-7\",\"trace_id\":\"4bf92f3577b34da6\","
              "  \"span_id\":\"00f067aa0ba902b7\",\"attributes\":{\"n\":1,\"tags\":[\"a\"]}},"
              " {\"message\":\"three\",\"topic\":null,\"attributes\":{}}]",
              &fault, &err);
    assert_int_equal(rc, 0);
    assert_int_equal(b.n, 3);
    assert_string_equal(b.rows[0].message, "one");
    assert_int_equal(b.rows[0].level, 2); /* info by default */
    assert_int_equal(strlen(b.rows[0].ts), 24);
    assert_null(b.rows[0].topic);
    assert_null(b.rows[0].attributes);
    assert_int_equal(b.rows[1].level, 4);
    assert_string_equal(b.rows[1].ts, "2025-01-31T11:00:00.000Z");
    assert_string_equal(b.rows[1].topic, "agent.run");
    assert_string_equal(b.rows[1].source, "agent-7");
    assert_string_equal(b.rows[1].trace_id, "4bf92f3577b34da6");
    assert_string_equal(b.rows[1].span_id, "00f067aa0ba902b7");
    assert_string_equal(b.rows[1].attributes, "{\"n\":1,\"tags\":[\"a\"]}");
    assert_null(b.rows[2].topic);
    assert_null(b.rows[2].attributes); /* {} is stored as no attributes */
    b.rows[1].id = 42;
    snprintf(b.created_at, sizeof(b.created_at), "2025-01-31T12:00:01.000Z");
    json_t *e = aos__logs_entry_json(&b, 1);
    assert_int_equal(json_integer_value(json_object_get(e, "id")), 42);
    assert_string_equal(json_string_value(json_object_get(e, "level")), "error");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "attributes"), "n")), 1);
    assert_true(json_is_null(json_object_get(e, "span_id")) == 0);
    json_decref(e);
    aos__logs_batch_release(&b);
}

/* Only aosd's own lines may say they come from aosd or from a child's
 * stderr (issue 12, item 11): the check names the first entry that does. */
static void test_reserved_sources(void **state)
{
    static const char *const reserved[] = {"aosd",       "AOSD",     "AoSd", "upstream:everything",
                                           "UPSTREAM:x", "upstream:"};
    static const char *const free_[] = {"aosd-agent", "aos",           "my-aosd", "upstream",
                                        "upstream-x", "an upstream:x", "agent-7"};
    for (size_t i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
        if (!aos__logs_source_reserved(reserved[i]))
            fail_msg("'%s' not reserved", reserved[i]);
    for (size_t i = 0; i < sizeof(free_) / sizeof(free_[0]); i++)
        if (aos__logs_source_reserved(free_[i]))
            fail_msg("'%s' reserved", free_[i]);
    assert_false(aos__logs_source_reserved(NULL));

    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    assert_int_equal(batch(&b,
                           "[{\"message\":\"a\",\"source\":\"agent\"},{\"message\":\"b\"},"
                           "{\"message\":\"c\",\"source\":\"upstream:web\"},"
                           "{\"message\":\"d\",\"source\":\"aosd\"}]",
                           &fault, &err),
                     0);
    assert_int_equal(aos__logs_batch_check_sources(&b, &fault, &err), AOS_EFORBIDDEN);
    assert_int_equal(fault.index, 2);
    assert_string_equal(fault.field, "source");
    assert_non_null(strstr(aos_err_msg(&err), "entries[2].source"));
    aos__logs_batch_release(&b);
    assert_int_equal(
        batch(&b, "[{\"message\":\"a\",\"source\":\"agent\"},{\"message\":\"b\"}]", &fault, &err),
        0);
    assert_int_equal(aos__logs_batch_check_sources(&b, &fault, &err), 0);
    aos__logs_batch_release(&b);
}

/* The batch is refused, naming the entry and the field. */
static void refused(const char *text, long index, const char *field, const char *msg_part)
{
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    int rc = batch(&b, text, &fault, &err);
    if (rc != AOS_EINVAL)
        fail_msg("accepted: %s", text);
    assert_int_equal(fault.index, index);
    assert_string_equal(fault.field, field);
    if (!strstr(aos_err_msg(&err), msg_part))
        fail_msg("message '%s' lacks '%s'", aos_err_msg(&err), msg_part);
    assert_null(b.rows);
    assert_int_equal(b.n, 0);
}

static void test_batch_invalid(void **state)
{
    refused("[]", -1, "entries", "must not be empty");
    refused("{\"message\":\"x\"}", -1, "entries", "must be an array");
    refused("[{\"message\":\"ok\"}, 5]", 1, "", "entries[1]: must be an object");
    refused("[{\"level\":\"info\"}]", 0, "message", "entries[0].message: is required");
    refused("[{\"message\":7}]", 0, "message", "must be a string");
    refused("[{\"message\":\"a\\u0000b\"}]", 0, "message", "NUL");
    refused("[{\"message\":\"ok\"},{\"message\":\"ok\"},{\"message\":\"x\",\"level\":\"loud\"}]", 2,
            "level", "entries[2].level: must be one of");
    refused("[{\"message\":\"x\",\"level\":3}]", 0, "level", "must be one of");
    refused("[{\"message\":\"x\",\"ts\":\"noon\"}]", 0, "ts", "entries[0].ts: must be an RFC 3339");
    refused("[{\"message\":\"x\",\"topic\":\"\"}]", 0, "topic", "must not be empty");
    refused("[{\"message\":\"x\",\"topic\":\"a\\nb\"}]", 0, "topic", "control characters");
    refused("[{\"message\":\"x\",\"source\":5}]", 0, "source", "must be a string");
    refused("[{\"message\":\"x\",\"trace_id\":\"a b\"}]", 0, "trace_id", "only letters");
    refused("[{\"message\":\"x\",\"span_id\":\"\"}]", 0, "span_id", "1 to 128");
    refused("[{\"message\":\"x\",\"attributes\":[1]}]", 0, "attributes", "must be an object");
    refused("[{\"message\":\"x\",\"colour\":\"red\"}]", 0, "colour",
            "entries[0].colour: unknown field");

    /* sizes */
    char *big = malloc(70000 + 64);
    memcpy(big, "[{\"message\":\"", 13);
    memset(big + 13, 'x', 65537);
    memcpy(big + 13 + 65537, "\"}]", 4);
    refused(big, 0, "message", "longer than 65536");
    free(big);
    json_t *many = json_array();
    for (int i = 0; i < AOS__LOGS_MAX_BATCH + 1; i++)
        json_array_append_new(many, json_pack("{s:s}", "message", "m"));
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    assert_int_equal(aos__logs_batch_parse(&b, many, NULL, NULL, &fault, &err), AOS_EINVAL);
    assert_non_null(strstr(aos_err_msg(&err), "more than 10000"));
    json_array_remove(many, 0);
    assert_int_equal(aos__logs_batch_parse(&b, many, NULL, NULL, &fault, &err), 0);
    assert_int_equal(b.n, AOS__LOGS_MAX_BATCH);
    aos__logs_batch_release(&b);
    json_decref(many);
}

/* ---- redaction ------------------------------------------------------------------ */

static void redacts(const char *in, const char *want)
{
    char *got = redact(NULL, in, NULL);
    if (strcmp(got, want) != 0)
        fail_msg("redact('%s') = '%s', want '%s'", in, got, want);
    free(got);
}

static void test_redact_patterns(void **state)
{
    redacts("nothing to see here", "nothing to see here");
    redacts("", "");
    redacts("Authorization: Bearer eyabc.def-ghi_jkl", "Authorization: Bearer [REDACTED]");
    redacts("header bearer   abcdefgh12345 sent", "header bearer   [REDACTED] sent");
    redacts("Basic dXNlcjpwYXNzd29yZA== ok", "Basic [REDACTED] ok");
    redacts("a bearer of news", "a bearer of news"); /* too short to be a token */
    redacts("key sk-SECRET-VALUE-7f3a9c used", "key [REDACTED] used");
    redacts("key=sk-proj-abcdefghijklmnopqrstu", "key=[REDACTED]");
    redacts("task-sk-abcdefghijklmnopqrstuvwx", "task-[REDACTED]"); /* '-' is a boundary */
    redacts("risk-free", "risk-free");
    redacts("token aos_0123456789abcdefghijABCDEFGHIJ_-xyz here", "token [REDACTED] here");
    redacts("gh ghp_0123456789abcdefghijABCDEF done", "gh [REDACTED] done");
    redacts("pat github_pat_11AAAAAAA0123456789_abcdefghij", "pat [REDACTED]");
    redacts("slack xoxb-1234567890-abcdef", "slack [REDACTED]");
    redacts("aws AKIAIOSFODNN7EXAMPLE key", "aws [REDACTED] key");
    redacts("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_nature-x end", "jwt [REDACTED] end");
    redacts("login password=hunter2 ok", "login password=[REDACTED] ok");
    redacts("{\"password\": \"hunter2\", \"user\": \"ada\"}",
            "{\"password\": \"[REDACTED]\", \"user\": \"ada\"}");
    redacts("api_key: abc123&x=1", "api_key: [REDACTED]&x=1");
    redacts("client_secret=shh", "client_secret=[REDACTED]");
    redacts("Authorization: Bearer", "Authorization: [REDACTED]");
    redacts("tokens: 5", "tokens: 5");         /* not a secret word */
    redacts("token_count=5", "token_count=5"); /* nor this */
    redacts("two keys sk-aaaaaaaaaaaaaaaaaaaa and sk-bbbbbbbbbbbbbbbbbbbb",
            "two keys [REDACTED] and [REDACTED]");
}

static void test_redact_secrets_and_keys(void **state)
{
    aos_redact_t *r = aos_redact_new(AOS_REDACT_DEFAULT);
    assert_int_equal(aos_redact_add_value(r, "abc"), AOS_EINVAL);
    assert_int_equal(aos_redact_add_value(r, "correct-horse-battery"), 0);
    assert_int_equal(aos_redact_add_value(r, "correct-horse-battery"), 0);
    assert_int_equal(aos_redact_add_value(r, "e2e-owner-token-0123456789abcdef"), 0);
    char *s = redact(NULL, "pw=xcorrect-horse-batteryx and e2e-owner-token-0123456789abcdef.", r);
    assert_string_equal(s, "pw=x[REDACTED]x and [REDACTED].");
    free(s);
    /* attribute names that say "secret": the whole value goes */
    static const char *keys[] = {"password",       "Authorization", "X-Api-Key",    "api_key",
                                 "session_cookie", "refresh_token", "client_secret"};
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        s = redact(keys[i], "plain value", r);
        if (strcmp(s, "[REDACTED]"))
            fail_msg("attribute '%s' kept: %s", keys[i], s);
        free(s);
    }
    s = redact("user", "plain value", r);
    assert_string_equal(s, "plain value");
    free(s);
    aos_redact_free(r);
}

static void test_redact_in_batch(void **state)
{
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    int rc = batch(&b,
                   "[{\"message\":\"calling with Bearer abcdefgh12345678\","
                   "  \"attributes\":{\"password\":\"hunter2\",\"n\":3,"
                   "    \"nested\":{\"note\":\"key sk-abcdefghijklmnopqrstuvwxyz\"},"
                   "    \"list\":[\"ok\",\"x=1 token=abc\"]}}]",
                   &fault, &err);
    assert_int_equal(rc, 0);
    assert_string_equal(b.rows[0].message, "calling with Bearer [REDACTED]");
    assert_string_equal(b.rows[0].attributes,
                        "{\"password\":\"[REDACTED]\",\"n\":3,\"nested\":{\"note\":\"key "
                        "[REDACTED]\"},\"list\":[\"ok\",\"x=1 token=[REDACTED]\"]}");
    assert_null(strstr(b.rows[0].attributes, "hunter2"));
    aos__logs_batch_release(&b);

    /* found by tests/fuzz/fuzz_logs_batch: a secret used as a member name */
    aos_redact_t *red = aos_redact_new(AOS_REDACT_DEFAULT);
    assert_int_equal(aos_redact_add_value(red, "fuzz-secret-value-0123456789"), 0);
    json_t *j = parse("[{\"message\":\"m\",\"attributes\":{"
                      "\"fuzz-secret-value-0123456789password\":\"x\",\"n\":1,"
                      "\"in\":{\"fuzz-secret-value-0123456789\":2}}}]");
    assert_int_equal(aos__logs_batch_parse(&b, j, aos_redact_field, red, &fault, &err), 0);
    assert_string_equal(
        b.rows[0].attributes,
        "{\"n\":1,\"in\":{\"[REDACTED]\":2},\"[REDACTED]password\":\"[REDACTED]\"}");
    aos__logs_batch_release(&b);
    json_decref(j);
    aos_redact_free(red);
}

/* A redactor hook: sees every string with its key, may fail the batch. */
struct seen {
    char log[512];
};

static int hook(const char *key, const char *text, size_t len, aos_buf_t *out, void *data)
{
    struct seen *s = data;
    size_t n = strlen(s->log);
    snprintf(s->log + n, sizeof(s->log) - n, "%s=%.*s;", key ? key : "-", (int)len, text);
    if (len == 4 && !memcmp(text, "FAIL", 4))
        return AOS_EINTERNAL;
    if (len == 3 && !memcmp(text, "sub", 3)) {
        aos_buf_puts(out, "SUB");
        return 1;
    }
    return 0;
}

static void test_redactor_hook(void **state)
{
    struct seen s = {""};
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    json_t *j = parse("[{\"message\":\"sub\",\"attributes\":{\"k\":\"v\",\"a\":[\"sub\",1],"
                      "\"sub\":2,\"SUB\":3}}]");
    assert_int_equal(aos__logs_batch_parse(&b, j, hook, &s, &fault, &err), 0);
    /* values with their member name, then the member names themselves */
    assert_string_equal(s.log, "-=sub;k=v;a=sub;-=k;-=a;-=sub;-=SUB;");
    assert_string_equal(b.rows[0].message, "SUB");
    /* a redacted name that collides with another gets a suffix */
    assert_string_equal(b.rows[0].attributes,
                        "{\"k\":\"v\",\"a\":[\"SUB\",1],\"SUB\":3,\"SUB~2\":2}");
    aos__logs_batch_release(&b);
    json_decref(j);

    j = parse("[{\"message\":\"fine\"},{\"message\":\"FAIL\"}]");
    assert_int_equal(aos__logs_batch_parse(&b, j, hook, &s, &fault, &err), AOS_EINTERNAL);
    assert_int_equal(fault.index, 1);
    assert_null(b.rows);
    json_decref(j);
}

/* ---- the scan: a body to a batch without a JSON tree ------------------------ */

/* body through the scan (which must take it) and through the tree path, as
 * logs.c runs them: the same rows. Every entry has a ts: one without gets
 * the time of each parse, which may differ by a millisecond. */
static void scan_agrees(const char *body, aos_logs_redact_fn fn, void *data)
{
    aos__logs_batch_t a, b;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    if (aos__logs_batch_scan(&a, body, strlen(body), fn, data) != 0)
        fail_msg("the scan refused %s", body);
    json_t *j = aos_http_parse_json(body, strlen(body), &err);
    assert_non_null(j);
    json_t *entries = json_is_array(j) ? j : json_object_get(j, "entries");
    assert_int_equal(aos__logs_batch_parse(&b, entries, fn, data, &fault, &err), 0);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        const aos_store_log_t *x = &a.rows[i], *y = &b.rows[i];
        assert_int_equal(x->level, y->level);
        assert_string_equal(x->ts, y->ts);
        assert_int_equal(x->message_len, y->message_len);
        assert_memory_equal(x->message, y->message, x->message_len);
        const char *xs[] = {x->topic, x->source, x->trace_id, x->span_id, x->attributes};
        const char *ys[] = {y->topic, y->source, y->trace_id, y->span_id, y->attributes};
        for (int k = 0; k < 5; k++) {
            if (!xs[k] || !ys[k])
                assert_ptr_equal(xs[k], ys[k]);
            else
                assert_string_equal(xs[k], ys[k]);
        }
        json_t *ea = aos__logs_entry_json(&a, i), *eb = aos__logs_entry_json(&b, i);
        assert_true(json_equal(ea, eb));
        json_decref(ea);
        json_decref(eb);
    }
    aos__logs_batch_release(&a);
    aos__logs_batch_release(&b);
    json_decref(j);
}

static void test_scan_agrees_with_tree(void **state)
{
    aos_redact_t *red = aos_redact_new(AOS_REDACT_DEFAULT);
    assert_int_equal(aos_redact_add_value(red, "correct-horse-battery"), 0);
    static const char *const bodies[] = {
        "[{\"message\":\"m\",\"ts\":\"2025-01-31T12:00:00Z\"}]",
        " { \"entries\" : [ { \"message\" : \"a\" , \"topic\" : null , \"source\" : \"svc\" ,"
        " \"span_id\" : \"s.1:2-3_4\" , \"trace_id\" : \"t\", \"level\": \"WARNING\","
        " \"ts\" : \"2025-02-28T23:59:60.12345+05:30\" , \"attributes\" : { } } ] } \n",
        /* escapes, UTF-8, numbers as jansson writes them back */
        "[{\"message\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\" \\\\ \\/ \\b\\f\\n\\r\\t \\u0001\","
        "\"ts\":1700000000123,\"level\":null,\"attributes\":{\"r\":[1.5,-0,-0.0,1e5,2E-7,"
        "1e+300,0.1,123456789012345678,-9223372036854775808,true,false,null,"
        "{\"a\":{\"b\":[[]]}},{}],\"k\\u00e9y\":\"v\\u007f \\u001f\",\"e\":\"\"}}]",
        /* redaction: patterns, a registered secret, secret-named members */
        "[{\"message\":\"Bearer abcdefgh12345678 token=xyz correct-horse-battery\","
        "\"ts\":\"2025-03-01T00:00:00.000001Z\","
        "\"attributes\":{\"authorization\":\"Basic Zm9v\",\"list\":[\"sk-abcdefghijklmnopqrstuv\","
        "1,{\"password\":[\"a\",\"b\"]}],\"note\":\"x correct-horse-battery y\"}},"
        "{\"message\":\"second\",\"level\":\"fatal\",\"ts\":0}]",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        scan_agrees(bodies[i], aos_redact_field, red);
        scan_agrees(bodies[i], NULL, NULL);
    }
    /* what the redactor left, checked by hand once */
    aos__logs_batch_t a;
    assert_int_equal(aos__logs_batch_scan(&a, bodies[3], strlen(bodies[3]), aos_redact_field, red),
                     0);
    assert_string_equal(a.rows[0].message, "Bearer [REDACTED] token=[REDACTED] [REDACTED]");
    assert_string_equal(a.rows[0].attributes,
                        "{\"authorization\":\"[REDACTED]\",\"list\":[\"[REDACTED]\",1,"
                        "{\"password\":[\"[REDACTED]\",\"[REDACTED]\"]}],"
                        "\"note\":\"x [REDACTED] y\"}");
    assert_string_equal(a.rows[1].ts, "1970-01-01T00:00:00.000Z");
    aos__logs_batch_release(&a);
    aos_redact_free(red);
}

/* What the scan leaves to the tree path (which then accepts or explains). */
static void test_scan_leaves_the_rest(void **state)
{
    aos_redact_t *red = aos_redact_new(AOS_REDACT_DEFAULT);
    assert_int_equal(aos_redact_add_value(red, "correct-horse-battery"), 0);
    char deep[512];
    const char *head = "[{\"message\":\"m\",\"attributes\":{\"a\":";
    size_t n = strlen(head);
    memcpy(deep, head, n);
    memset(deep + n, '[', 40); /* 40 levels deep */
    memset(deep + n + 40, ']', 40);
    memcpy(deep + n + 80, "}}]", 4);
    const char *const bodies[] = {
        "",
        "   ",
        "[]",
        "{\"entries\":[]}",
        "[{\"message\":\"m\"}] x",
        "[{\"message\":\"m\"},]",
        "{\"entries\":[{\"message\":\"m\"}],\"more\":1}",
        "{\"other\":[{\"message\":\"m\"}]}",
        "{\"message\":\"m\"}",
        "[{}]",
        "[{\"message\":1}]",
        "[{\"message\":null}]",
        "[{\"message\":\"m\",\"message\":\"n\"}]",
        "[{\"message\":\"m\",\"extra\":1}]",
        "[{\"message\":\"m\",\"level\":\"loud\"}]",
        "[{\"message\":\"m\",\"level\":3}]",
        "[{\"message\":\"m\",\"ts\":\"yesterday\"}]",
        "[{\"message\":\"m\",\"ts\":-1}]",
        "[{\"message\":\"m\",\"ts\":1.5}]",
        "[{\"message\":\"m\",\"ts\":0123}]",
        "[{\"message\":\"m\",\"ts\":99999999999999999}]",
        "[{\"message\":\"m\",\"topic\":\"\"}]",
        "[{\"message\":\"m\",\"trace_id\":\"a b\"}]",
        "[{\"message\":\"m\",\"attributes\":[]}]",
        "[{\"message\":\"m\",\"attributes\":{\"a\":1,\"a\":2}}]",
        "[{\"message\":\"m\",\"attributes\":{\"correct-horse-battery\":1}}]",
        "[{\"message\":\"m\",\"attributes\":{\"n\":1e400}}]",
        "[{\"message\":\"m\",\"attributes\":{\"n\":99999999999999999999}}]",
        "[{\"message\":\"m\",\"attributes\":{\"n\":01}}]",
        "[{\"message\":\"m\",\"attributes\":{\"n\":1.}}]",
        "[{\"message\":\"a\\u0000b\"}]",
        "[{\"message\":\"\\ud800\"}]",
        "[{\"message\":\"\\udc00x\"}]",
        "[{\"message\":\"\xc0\xaf\"}]",
        "[{\"message\":\"\xed\xa0\x80\"}]",
        "[{\"message\":\"tab\there\"}]",
        "[{\"message\":\"\\x\"}]",
        "[{\"message\":\"m\",\"attributes\":{\"a\":tru}}]",
        deep,
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        aos__logs_batch_t a;
        if (aos__logs_batch_scan(&a, bodies[i], strlen(bodies[i]), aos_redact_field, red) != 1)
            fail_msg("the scan took %s", bodies[i]);
        assert_null(a.rows);
        assert_int_equal(a.n, 0);
    }
    aos_redact_free(red);
}

/* The scan runs on libuv's thread pool, several batches at once. Its table
 * of special bytes was filled lazily by the first scan: a second thread
 * could see it half-filled (the quote marked, non-ASCII bytes not yet) and
 * take invalid UTF-8 as plain text. A data race that ThreadSanitizer
 * reports (the build-tsan run of make test); this must be the first test
 * that scans. */
struct scan_thread {
    pthread_barrier_t *go;
    int results[64];
};

static void *scan_thread_run(void *arg)
{
    struct scan_thread *t = arg;
    static const char *const bodies[] = {"[{\"message\":\"\xc0\xaf\"}]",
                                         "[{\"message\":\"caf\xc3\xa9\"}]"};
    pthread_barrier_wait(t->go);
    for (int i = 0; i < 64; i++) {
        aos__logs_batch_t b;
        t->results[i] = aos__logs_batch_scan(&b, bodies[i % 2], strlen(bodies[i % 2]), NULL, NULL);
        aos__logs_batch_release(&b);
    }
    return NULL;
}

static void test_scan_from_two_threads(void **state)
{
    pthread_barrier_t go;
    pthread_barrier_init(&go, NULL, 2);
    struct scan_thread t[2] = {{.go = &go}, {.go = &go}};
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&th[i], NULL, scan_thread_run, &t[i]), 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    pthread_barrier_destroy(&go);
    for (int i = 0; i < 2; i++)
        for (int j = 0; j < 64; j++)
            assert_int_equal(t[i].results[j], j % 2 ? 0 : 1); /* invalid UTF-8: refused */
}

/* ---- cursors ----------------------------------------------------------------------- */

static void test_cursors(void **state)
{
    static const int64_t ids[] = {0, 1, 42, 1000000, INT64_MAX};
    for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
        for (int asc = 0; asc < 2; asc++) {
            char c[48];
            int64_t id = -1;
            int a = -1;
            aos__logs_cursor_encode(ids[i], asc, c);
            assert_null(strpbrk(c, "+/= "));
            assert_int_equal(aos__logs_cursor_decode(c, &id, &a), 0);
            assert_true(id == ids[i]);
            assert_int_equal(a, asc);
        }
    }
    char c[48];
    aos__logs_cursor_encode(7, 0, c);
    assert_string_equal(c, "bjc"); /* base64url("n7"): stable across versions */
    int64_t id;
    int asc;
    static const char *bad[] = {"",
                                "bjc=",
                                "!!!",
                                "eDc" /* x7 */,
                                "bg" /* n */,
                                "bi03" /* n-7 */,
                                "bjA3" /* n07 */,
                                "bjk5OTk5OTk5OTk5OTk5OTk5OTk5" /* n + 20 nines */,
                                "b jc",
                                NULL};
    for (int i = 0; bad[i]; i++)
        if (aos__logs_cursor_decode(bad[i], &id, &asc) == 0)
            fail_msg("cursor '%s' accepted", bad[i]);
    assert_int_equal(aos__logs_cursor_decode(NULL, &id, &asc), AOS_EINVAL);
}

/* ---- query arguments ----------------------------------------------------------------- */

static int qparse(aos__logs_query_t *q, const char *args, aos__logs_kind_t kind,
                  aos__logs_fault_t *fault, aos_err_t *err)
{
    json_t *j = parse(args);
    int rc = aos__logs_query_parse(q, j, kind, fault, err);
    json_decref(j);
    return rc;
}

static void arg_refused(const char *args, aos__logs_kind_t kind, const char *field)
{
    aos__logs_query_t q;
    aos__logs_fault_t fault = {0, ""};
    aos_err_t err = {0, ""};
    if (qparse(&q, args, kind, &fault, &err) != AOS_EINVAL)
        fail_msg("accepted: %s", args);
    if (strcmp(fault.field, field))
        fail_msg("%s: field '%s', want '%s' (%s)", args, fault.field, field, aos_err_msg(&err));
    assert_int_equal(fault.index, -1);
}

static void test_query_args(void **state)
{
    aos__logs_query_t q;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    char c[48];
    aos__logs_cursor_encode(77, 0, c);
    char args[512];
    snprintf(args, sizeof(args),
             "{\"level\":\"warn\",\"traceId\":\"t-1\",\"topic\":\"a.b\",\"source\":\"s\","
             "\"after\":\"2025-01-01T00:00:00Z\",\"before\":\"1738324800000\",\"q\":\"disk full*\","
             "\"limit\":\"20\",\"cursor\":\"%s\"}",
             c);
    assert_int_equal(qparse(&q, args, AOS__LOGS_QUERY, &fault, &err), 0);
    assert_int_equal(q.f.min_level, 3);
    assert_string_equal(q.f.trace_id, "t-1");
    assert_string_equal(q.f.topic, "a.b");
    assert_string_equal(q.f.source, "s");
    assert_string_equal(q.f.after, "2025-01-01T00:00:00.000Z");
    assert_string_equal(q.f.before, "2025-01-31T12:00:00.000Z");
    assert_string_equal(q.f.q, "disk full*");
    assert_int_equal(q.f.limit, 20);
    assert_true(q.f.before_id == 77);
    assert_int_equal(q.f.ascending, 0);
    assert_int_equal(q.nwords, 2);
    assert_string_equal(q.words[1].text, "full");
    assert_int_equal(q.words[1].prefix, 1);
    aos__logs_query_release(&q);

    assert_int_equal(qparse(&q, "{}", AOS__LOGS_QUERY, &fault, &err), 0);
    assert_int_equal(q.f.limit, AOS__LOGS_PAGE);
    aos__logs_query_release(&q);
    assert_int_equal(qparse(&q, "{\"trace_id\":\"x\",\"group_by\":\"level\",\"order\":\"asc\"}",
                            AOS__LOGS_QUERY, &fault, &err),
                     0);
    assert_string_equal(q.group_by, "level");
    assert_int_equal(q.f.ascending, 1);
    aos__logs_query_release(&q);
    assert_int_equal(qparse(&q, "{\"after_id\":\"12\"}", AOS__LOGS_STREAM, &fault, &err), 0);
    assert_true(q.f.after_id == 12 && q.has_after_id);
    aos__logs_query_release(&q);

    arg_refused("{\"level\":\"loud\"}", AOS__LOGS_QUERY, "level");
    arg_refused("{\"traceId\":\"a b\"}", AOS__LOGS_QUERY, "traceId");
    arg_refused("{\"topic\":\"\"}", AOS__LOGS_QUERY, "topic");
    arg_refused("{\"after\":\"tuesday\"}", AOS__LOGS_QUERY, "after");
    arg_refused("{\"before\":\"2025-01-01\"}", AOS__LOGS_QUERY, "before");
    arg_refused("{\"q\":\"--- ***\"}", AOS__LOGS_QUERY, "q");
    arg_refused("{\"q\":5}", AOS__LOGS_QUERY, "q");
    arg_refused("{\"limit\":0}", AOS__LOGS_QUERY, "limit");
    arg_refused("{\"limit\":\"1001\"}", AOS__LOGS_QUERY, "limit");
    arg_refused("{\"limit\":\"ten\"}", AOS__LOGS_QUERY, "limit");
    arg_refused("{\"cursor\":\"nonsense!\"}", AOS__LOGS_QUERY, "cursor");
    arg_refused("{\"group_by\":\"message\"}", AOS__LOGS_QUERY, "group_by");
    arg_refused("{\"order\":\"up\"}", AOS__LOGS_QUERY, "order");
    arg_refused("{\"lvl\":\"warn\"}", AOS__LOGS_QUERY, "lvl");
    arg_refused("{\"after_id\":1}", AOS__LOGS_QUERY, "after_id");
    arg_refused("{\"cursor\":\"bjc\"}", AOS__LOGS_SUBSCRIBE, "cursor"); /* a query's cursor */
    arg_refused("{\"group_by\":\"topic\"}", AOS__LOGS_SUBSCRIBE, "group_by");
    arg_refused("{\"after_id\":\"-1\"}", AOS__LOGS_STREAM, "after_id");
    arg_refused("{\"cursor\":\"bjc\"}", AOS__LOGS_STREAM, "cursor");
    aos__logs_cursor_encode(5, 1, c);
    snprintf(args, sizeof(args), "{\"cursor\":\"%s\"}", c);
    arg_refused(args, AOS__LOGS_QUERY, "cursor"); /* an oldest-first cursor, newest-first order */
    assert_int_equal(qparse(&q, args, AOS__LOGS_SUBSCRIBE, &fault, &err), 0);
    assert_true(q.f.after_id == 5 && q.f.ascending == 1 && q.has_cursor);
    aos__logs_query_release(&q);
}

/* ---- statements: filters become SQL with bound values --------------------------------- */

static void sql_is(const aos_store_logs_filter_t *f, const char *group_by, const char *want_sql,
                   const char *want_params)
{
    char *sql;
    json_t *params;
    aos_err_t err = {0, ""};
    if (aos_store_logs_sql(f, group_by, &sql, &params, &err))
        fail_msg("aos_store_logs_sql: %s", aos_err_msg(&err));
    char *p = json_dumps(params, JSON_COMPACT);
    if (strcmp(sql, want_sql))
        fail_msg("sql\n  got:  %s\n  want: %s", sql, want_sql);
    if (strcmp(p, want_params))
        fail_msg("params\n  got:  %s\n  want: %s", p, want_params);
    free(p);
    free(sql);
    json_decref(params);
}

#define COLS                                                                                       \
    "SELECT logs.id, logs.ts, logs.level, logs.message, logs.topic, logs.attributes, "             \
    "logs.trace_id, logs.span_id, logs.source, logs.created_at FROM "

static void test_sql_building(void **state)
{
    aos_store_logs_filter_t f = {0};
    f.limit = 100;
    sql_is(&f, NULL, COLS "logs ORDER BY logs.id DESC LIMIT ?", "[100]");

    /* hostile values stay parameters: the SQL text never holds them */
    f.min_level = 3;
    f.trace_id = "t'; DROP TABLE logs; --";
    f.topic = "a\" OR 1=1";
    f.source = "src";
    f.before_id = 500;
    sql_is(&f, NULL,
           COLS "logs WHERE logs.level >= ? AND logs.id IN (SELECT j.value FROM logs_traces t, "
                "json_each(t.ids) j WHERE t.trace_id = ? UNION ALL SELECT tail.id FROM logs tail "
                "WHERE tail.id > (SELECT indexed_upto FROM logs_index_state) AND tail.trace_id = "
                "?) AND logs.topic = ? AND logs.source = ? AND logs.id < ? ORDER BY logs.id DESC "
                "LIMIT ?",
           "[3,\"t'; DROP TABLE logs; --\",\"t'; DROP TABLE logs; --\",\"a\\\" OR 1=1\","
           "\"src\",500,100]");

    /* a time range: the batches that may hold it bound the ids read */
    aos_store_logs_filter_t t = {0};
    t.limit = 50;
    t.min_level = 3;
    t.after = "2025-01-01T00:00:00.000Z";
    t.before = "2025-02-01T00:00:00.000Z";
    sql_is(&t, NULL,
           COLS "logs WHERE logs.level >= ? AND logs.ts > ? AND logs.id >= (SELECT "
                "COALESCE(MIN(first_id), 9223372036854775807) FROM logs_batches WHERE max_ts > "
                "?) AND logs.ts < ? AND logs.id <= (SELECT COALESCE(MAX(last_id), 0) FROM "
                "logs_batches WHERE min_ts < ?) ORDER BY logs.id DESC LIMIT ?",
           "[3,\"2025-01-01T00:00:00.000Z\",\"2025-01-01T00:00:00.000Z\","
           "\"2025-02-01T00:00:00.000Z\",\"2025-02-01T00:00:00.000Z\",50]");

    /* full text within a trace: both are sets of ids; the text's set is
     * what the index found and the entries above it (0006) that hold
     * every word */
    aos_store_logs_filter_t u = {0};
    u.limit = 5;
    u.trace_id = "abc";
    u.q = "disk user_id=4*";
    sql_is(&u, NULL,
           COLS "logs WHERE logs.id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? UNION "
                "ALL SELECT tail.id FROM logs tail WHERE tail.id > (SELECT indexed_upto FROM "
                "logs_index_state) AND aos_logs_phrase(tail.message, ?) AND "
                "aos_logs_phrase(tail.message, ?)) AND aos_logs_phrase(logs.message, ?) AND "
                "logs.id IN (SELECT j.value FROM logs_traces t, json_each(t.ids) j WHERE "
                "t.trace_id = ? UNION ALL SELECT tail.id FROM logs tail WHERE tail.id > (SELECT "
                "indexed_upto FROM logs_index_state) AND tail.trace_id = ?) ORDER BY logs.id "
                "DESC LIMIT ?",
           "[\"\\\"disk\\\" \\\"user\\\" \\\"id\\\" \\\"4\\\"*\","
           "\"disk\",\"user id 4*\",\"user id 4*\",\"abc\",\"abc\",5]");

    /* full text: the FTS table drives the scan, in rowid order */
    aos_store_logs_filter_t g = {0};
    g.limit = 11;
    g.q = "disk \"full\" OR NEAR(x)";
    g.after_id = 9;
    g.ascending = 1;
    /* words are tokens for the index; "NEAR(x)" is two, checked in order */
    sql_is(&g, NULL,
           COLS "logs_fts JOIN logs ON logs.id = logs_fts.rowid WHERE logs_fts MATCH ? AND "
                "aos_logs_phrase(logs.message, ?) AND logs_fts.rowid > ? ORDER BY "
                "logs_fts.rowid ASC LIMIT ?",
           "[\"\\\"disk\\\" \\\"full\\\" \\\"or\\\" \\\"near\\\" \\\"x\\\"\","
           "\"near x\",9,11]");

    /* counts: the column comes from a fixed list, never from the request */
    aos_store_logs_filter_t h = {0};
    h.limit = 1000;
    h.topic = "x";
    sql_is(&h, "level",
           "SELECT logs.level, COUNT(*) FROM logs WHERE logs.id IN (SELECT j.value FROM "
           "logs_topics t, json_each(t.ids) j WHERE t.topic = ? UNION ALL SELECT tail.id FROM "
           "logs tail WHERE tail.id > (SELECT indexed_upto FROM logs_index_state) AND tail.topic "
           "= ?) GROUP BY logs.level ORDER BY COUNT(*) DESC, logs.level LIMIT ?",
           "[\"x\",\"x\",1000]");
    char *sql;
    json_t *params;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_logs_sql(&h, "message; DROP TABLE logs", &sql, &params, &err),
                     AOS_EINVAL);
    h.limit = 0;
    assert_int_equal(aos_store_logs_sql(&h, NULL, &sql, &params, &err), AOS_EINVAL);
    h.limit = AOS_STORE_LIST_MAX + 2;
    assert_int_equal(aos_store_logs_sql(&h, NULL, &sql, &params, &err), AOS_EINVAL);
}

/* ---- full-text query escaping ----------------------------------------------------- */

static void fts_is(const char *q, const char *want)
{
    char *out = NULL;
    aos_err_t err = {0, ""};
    if (aos_store_logs_fts(q, &out, &err))
        fail_msg("'%s' refused: %s", q, aos_err_msg(&err));
    if (strcmp(out, want))
        fail_msg("fts('%s') = '%s', want '%s'", q, out, want);
    free(out);
}

static void test_fts_escaping(void **state)
{
    /* tokens, folded, each quoted alone: no FTS5 syntax survives */
    fts_is("disk", "\"disk\"");
    fts_is("  disk   full ", "\"disk\" \"full\"");
    fts_is("conn*", "\"conn\"*");
    fts_is("conn**", "\"conn\"*");
    fts_is("Disk FULL", "\"disk\" \"full\"");
    fts_is("say \"hi\"", "\"say\" \"hi\"");
    fts_is("a OR b NOT c", "\"a\" \"or\" \"b\" \"not\" \"c\"");
    fts_is("col:value", "\"col\" \"value\"");
    fts_is("NEAR(a b)", "\"near\" \"a\" \"b\"");
    fts_is("^start -x +y", "\"start\" \"x\" \"y\"");
    fts_is("user_id=42", "\"user\" \"id\" \"42\"");
    fts_is("user_id=4*", "\"user\" \"id\" \"4\"*");
    fts_is("日志 错误", "\"日志\" \"错误\"");
    fts_is("--- disk", "\"disk\""); /* a word without token characters is dropped */

    char *out;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_logs_fts("", &out, &err), AOS_EINVAL);
    assert_int_equal(aos_store_logs_fts("*** -- \"\"", &out, &err), AOS_EINVAL);
    assert_int_equal(aos_store_logs_fts("a b c d e f g h i j k l m n o p q", &out, &err),
                     AOS_EINVAL);
    char big[600];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    assert_int_equal(aos_store_logs_fts(big, &out, &err), AOS_EINVAL);
    assert_int_equal(aos_store_logs_fts(NULL, &out, &err), AOS_EINVAL);
}

/* ---- the store --------------------------------------------------------------------- */

static void insert(fixture_t *f, aos_store_log_t *rows, size_t n)
{
    aos_err_t err = {0, ""};
    char created[32];
    if (aos_store_logs_insert(f->st, rows, n, created, NULL, &err))
        fail_msg("insert: %s", aos_err_msg(&err));
}

static json_t *query(fixture_t *f, const aos_store_logs_filter_t *flt)
{
    json_t *out = NULL;
    aos_err_t err = {0, ""};
    if (aos_store_logs_query(f->st, flt, &out, &err))
        fail_msg("query: %s", aos_err_msg(&err));
    return out;
}

static aos_store_log_t row(const char *msg, int level, const char *topic, const char *trace)
{
    aos_store_log_t r = {0};
    r.ts = "2025-01-31T12:00:00.000Z";
    r.level = level;
    r.message = msg;
    r.message_len = strlen(msg);
    r.topic = topic;
    r.trace_id = trace;
    r.source = "unit";
    return r;
}

/* FTS5's own check that the index matches the table's text. */
/* The full-text index agrees with the table, once it holds the tail. */
static void assert_fts_consistent(fixture_t *f)
{
    aos_err_t err = {0, ""};
    if (aos_store_logs_index(f->st, 0, 0, NULL, &err))
        fail_msg("index the tail: %s", aos_err_msg(&err));
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    int rc = sqlite3_exec(db, "INSERT INTO logs_fts (logs_fts) VALUES ('integrity-check')", NULL,
                          NULL, NULL);
    if (rc != SQLITE_OK)
        fail_msg("fts integrity: %s", sqlite3_errmsg(db));
    sqlite3_close(db);
}

static void test_store_insert_query(void **state)
{
    fixture_t *f = *state;
    aos_store_log_t rows[] = {
        row("disk full on /var", 4, "sys", "t1"),
        row("connection reset by peer", 3, "net", "t1"),
        row("user logged in", 2, "auth", "t2"),
        row("disk fullness at 80%", 2, "sys", NULL),
    };
    rows[0].attributes = "{\"dev\":\"sda\"}";
    insert(f, rows, 4);
    for (int i = 1; i < 4; i++)
        assert_true(rows[i].id > rows[i - 1].id);

    aos_store_logs_filter_t flt = {0};
    flt.limit = 10;
    json_t *all = query(f, &flt);
    assert_int_equal(json_array_size(all), 4);
    json_t *first = json_array_get(all, 0);
    assert_int_equal(json_integer_value(json_object_get(first, "id")), rows[3].id);
    json_t *last = json_array_get(all, 3);
    assert_string_equal(json_string_value(json_object_get(last, "level")), "error");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(last, "attributes"), "dev")), "sda");
    json_decref(all);

    flt.trace_id = "t1";
    json_t *t = query(f, &flt);
    assert_int_equal(json_array_size(t), 2);
    json_decref(t);
    flt.trace_id = NULL;
    flt.min_level = 3;
    t = query(f, &flt);
    assert_int_equal(json_array_size(t), 2);
    json_decref(t);
    flt.min_level = 0;
    flt.q = "disk full";
    t = query(f, &flt);
    assert_int_equal(json_array_size(t), 1); /* "fullness" is another token */
    json_decref(t);
    flt.q = "disk full*";
    t = query(f, &flt);
    assert_int_equal(json_array_size(t), 2);
    json_decref(t);
    flt.q = "DISK";
    flt.topic = "sys";
    flt.ascending = 1;
    flt.after_id = rows[0].id;
    t = query(f, &flt);
    assert_int_equal(json_array_size(t), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(t, 0), "id")), rows[3].id);
    json_decref(t);

    /* the other plans: full text inside a trace, and time ranges */
    aos_store_logs_filter_t tf = {0};
    tf.limit = 10;
    tf.trace_id = "t1";
    tf.q = "disk";
    t = query(f, &tf);
    assert_int_equal(json_array_size(t), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(t, 0), "id")), rows[0].id);
    json_decref(t);
    memset(&tf, 0, sizeof(tf));
    tf.limit = 10;
    tf.after = "2025-01-31T11:59:59.999Z";
    t = query(f, &tf);
    assert_int_equal(json_array_size(t), 4);
    json_decref(t);
    tf.min_level = 3;
    tf.before = "2025-01-31T12:00:00.001Z";
    t = query(f, &tf);
    assert_int_equal(json_array_size(t), 2);
    json_decref(t);
    tf.before = "2025-01-31T12:00:00.000Z"; /* exclusive */
    t = query(f, &tf);
    assert_int_equal(json_array_size(t), 0);
    json_decref(t);

    aos_store_logs_filter_t cf = {0};
    cf.limit = 10;
    json_t *groups = NULL;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_logs_count(f->st, &cf, "topic", &groups, &err), 0);
    assert_int_equal(json_array_size(groups), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(groups, 0), "key")),
                        "sys");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(groups, 0), "count")), 2);
    json_decref(groups);
    assert_int_equal(aos_store_logs_count(f->st, &cf, "level", &groups, &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_array_get(groups, 0), "key")),
                        "info");
    json_decref(groups);

    int64_t last_id = 0;
    assert_int_equal(aos_store_logs_last_id(f->st, &last_id, &err), 0);
    assert_true(last_id == rows[3].id);
    assert_fts_consistent(f);
}

/* Hostile full-text input never breaks the FTS5 query. */
static void test_store_fts_hostile(void **state)
{
    fixture_t *f = *state;
    aos_store_log_t rows[] = {row("say \"hi\" to NEAR and OR and AND", 2, NULL, NULL),
                              row("col:value user_id=42 ^start", 2, NULL, NULL)};
    insert(f, rows, 2);
    static const char *qs[] = {"\"",       "\"hi\"", "OR",    "NEAR(", "AND OR NOT", "col:value",
                               "^start",   "*",      "a*b*",  "(",     ")",          "{x}",
                               "user_id=", "-x +y",  "'; --", "hi\"*", "NEAR/2",     NULL};
    for (int i = 0; qs[i]; i++) {
        aos_store_logs_filter_t flt = {0};
        flt.limit = 10;
        flt.q = qs[i];
        json_t *out = NULL;
        aos_err_t err = {0, ""};
        int rc = aos_store_logs_query(f->st, &flt, &out, &err);
        if (rc != 0 && rc != AOS_EINVAL)
            fail_msg("q '%s': %s", qs[i], aos_err_msg(&err));
        json_decref(out);
    }
    aos_store_logs_filter_t flt = {0};
    flt.limit = 10;
    flt.q = "NEAR OR";
    json_t *out = query(f, &flt);
    assert_int_equal(json_array_size(out), 1); /* the words, not the operators */
    json_decref(out);
}

/* The live matcher and FTS5 agree on every pair of message and query. */
static int64_t raw_count(fixture_t *f, const char *sql);

static void test_matcher_agrees_with_fts(void **state)
{
    fixture_t *f = *state;
    static const char *msgs[] = {
        "Disk full on /dev/sda1",
        "disk-full warning: 95%",
        "fullness of DISK",
        "connection reset by peer (ECONNRESET)",
        "user_id=42 logged in from 10.0.0.1",
        "日志 错误 in module",
        "The quick brown fox",
        "quick-brownish fox jumps",
        "tokens: a b c",
        "",
    };
    static const char *qs[] = {
        "disk",        "disk full",  "full*",      "DISK FULL",       "disk-full",   "full disk",
        "sda1",        "dev/sda1",   "econnreset", "reset peer",      "user_id",     "id=42",
        "10.0.0.1",    "10.0*",      "日志",       "错误 module",     "quick brown", "brown*",
        "quick-brown", "fox jumps*", "a b c",      "\"quick brown\"", "x",           "peer)",
    };
    size_t nm = sizeof(msgs) / sizeof(msgs[0]);
    aos_store_log_t rows[sizeof(msgs) / sizeof(msgs[0])];
    for (size_t i = 0; i < nm; i++)
        rows[i] = row(msgs[i], 2, NULL, NULL);
    insert(f, rows, nm);
    /* first with the entries above the index (matched word by word in
     * SQL), then with the same entries in FTS5 itself */
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            aos_err_t err = {0, ""};
            assert_int_equal(aos_store_logs_index(f->st, 0, 0, NULL, &err), 0);
            assert_true(raw_count(f, "SELECT indexed_upto FROM logs_index_state") ==
                        rows[nm - 1].id);
        }
        for (size_t k = 0; k < sizeof(qs) / sizeof(qs[0]); k++) {
            aos__logs_query_t q;
            aos__logs_fault_t fault;
            aos_err_t err = {0, ""};
            json_t *args = json_pack("{s:s}", "q", qs[k]);
            assert_int_equal(aos__logs_query_parse(&q, args, AOS__LOGS_QUERY, &fault, &err), 0);
            json_decref(args);
            aos_store_logs_filter_t flt = {0};
            flt.limit = 100;
            flt.q = qs[k];
            flt.ascending = 1;
            json_t *found = query(f, &flt);
            for (size_t i = 0; i < nm; i++) {
                int in_db = 0;
                size_t j;
                json_t *e;
                json_array_foreach(found, j, e)
                {
                    if (json_integer_value(json_object_get(e, "id")) == rows[i].id)
                        in_db = 1;
                }
                if (in_db != aos__logs_query_match(&q, &rows[i]))
                    fail_msg("q '%s' on '%s': %s %d, matcher %d", qs[k], msgs[i],
                             pass ? "fts5" : "tail", in_db, !in_db);
            }
            json_decref(found);
            aos__logs_query_release(&q);
        }
    }
}

static void test_matcher_filters(void **state)
{
    aos__logs_query_t q;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    json_t *args = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "level", "warn", "traceId", "t1",
                             "topic", "net", "source", "unit", "after", "2025-01-31T11:00:00Z",
                             "before", "2025-01-31T13:00:00Z");
    assert_int_equal(aos__logs_query_parse(&q, args, AOS__LOGS_STREAM, &fault, &err), 0);
    json_decref(args);
    aos_store_log_t r = row("m", 3, "net", "t1");
    assert_true(aos__logs_query_match(&q, &r));
    r.level = 2;
    assert_false(aos__logs_query_match(&q, &r));
    r.level = 5;
    r.trace_id = "t2";
    assert_false(aos__logs_query_match(&q, &r));
    r.trace_id = NULL;
    assert_false(aos__logs_query_match(&q, &r));
    r.trace_id = "t1";
    r.topic = "auth";
    assert_false(aos__logs_query_match(&q, &r));
    r.topic = "net";
    r.source = NULL;
    assert_false(aos__logs_query_match(&q, &r));
    r.source = "unit";
    r.ts = "2025-01-31T11:00:00.000Z"; /* after is exclusive */
    assert_false(aos__logs_query_match(&q, &r));
    r.ts = "2025-01-31T13:00:00.001Z";
    assert_false(aos__logs_query_match(&q, &r));
    r.ts = "2025-01-31T12:59:59.999Z";
    assert_true(aos__logs_query_match(&q, &r));
    aos__logs_query_release(&q);
}

static int64_t raw_count(fixture_t *f, const char *sql)
{
    return aos_test_sql_int(f->path, sql);
}

static int64_t count_rows(fixture_t *f)
{
    return raw_count(f, "SELECT COUNT(*) FROM logs");
}

/* ids of a query's answer, newest first, as "5,3,1". */
static void ids_of(fixture_t *f, const aos_store_logs_filter_t *flt, char *out, size_t cap)
{
    json_t *rows = query(f, flt);
    size_t len = 0, i;
    json_t *e;
    out[0] = '\0';
    json_array_foreach(rows, i, e)
    {
        len += (size_t)snprintf(out + len, cap - len, i ? ",%lld" : "%lld",
                                (long long)json_integer_value(json_object_get(e, "id")));
    }
    json_decref(rows);
}

/* Index the tail now (the log service does it between inserts). */
static void index_now(fixture_t *f)
{
    aos_err_t err = {0, ""};
    if (aos_store_logs_index(f->st, 0, 0, NULL, &err))
        fail_msg("index the tail: %s", aos_err_msg(&err));
}

/* The trace index keeps one group per trace and indexing window, whatever
 * the order of the entries; queries by trace see every entry of the trace,
 * indexed or in the tail, page, and combine with text; retention drops
 * groups whose entries are gone. */
static void test_store_trace_groups(void **state)
{
    fixture_t *f = *state;
    aos_store_log_t one[] = {row("alpha disk", 2, NULL, "tA"), row("beta", 2, NULL, "tB"),
                             row("alpha net", 2, NULL, "tA"),  row("gamma", 2, NULL, "tC"),
                             row("beta disk", 2, NULL, "tB"),  row("alpha disk", 3, NULL, "tA"),
                             row("no trace", 2, NULL, NULL)};
    insert(f, one, 7);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces"), 0); /* in the tail */
    index_now(f);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces"), 3);
    /* tA now in a group and in the tail */
    aos_store_log_t two[] = {row("alpha again", 2, NULL, "tA"), row("delta", 2, NULL, "tD")};
    insert(f, two, 2);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces"), 3);

    char got[128], want[128];
    aos_store_logs_filter_t flt = {0};
    flt.limit = 10;
    flt.trace_id = "tA";
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld,%lld,%lld", (long long)two[0].id, (long long)one[5].id,
             (long long)one[2].id, (long long)one[0].id);
    assert_string_equal(got, want);
    flt.limit = 2; /* a page, then the next one by cursor */
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld", (long long)two[0].id, (long long)one[5].id);
    assert_string_equal(got, want);
    flt.before_id = one[5].id;
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld", (long long)one[2].id, (long long)one[0].id);
    assert_string_equal(got, want);
    flt.before_id = 0;
    flt.limit = 10;
    flt.q = "disk"; /* text within the trace */
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld", (long long)one[5].id, (long long)one[0].id);
    assert_string_equal(got, want);
    flt.q = NULL;
    flt.min_level = 3;
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld", (long long)one[5].id);
    assert_string_equal(got, want);
    flt.min_level = 0;
    flt.trace_id = "nope";
    ids_of(f, &flt, got, sizeof(got));
    assert_string_equal(got, "");
    /* all indexed: the same answers from the groups alone */
    index_now(f);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces"), 5);
    flt.trace_id = "tA";
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld,%lld,%lld", (long long)two[0].id, (long long)one[5].id,
             (long long)one[2].id, (long long)one[0].id);
    assert_string_equal(got, want);

    /* retention: keep the newest 2 (the second batch): the first window's
     * groups go, tA keeps its newest entry only */
    int64_t deleted = 0;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 2, 100, &deleted, &err), 0);
    assert_true(deleted == 7);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces"), 2);
    flt.trace_id = "tA";
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld", (long long)two[0].id);
    assert_string_equal(got, want);
    assert_fts_consistent(f);
}

/* What a test knows of row k beyond flt's topic, level and cursor (the
 * text it holds, say): whether a page should show it. */
typedef int (*keep_fn)(size_t k, const void *data);

/* The ids a page of flt must give, worked out from the rows inserted
 * (all[0..n), ids set), as "id,id,...". keep may be NULL. */
static void expected_ids(const aos_store_log_t *all, size_t n, const aos_store_logs_filter_t *flt,
                         keep_fn keep, const void *data, char *out, size_t cap)
{
    size_t len = 0;
    int found = 0;
    out[0] = '\0';
    for (size_t j = 0; j < n && found < flt->limit; j++) {
        size_t k = flt->ascending ? j : n - 1 - j;
        const aos_store_log_t *r = &all[k];
        if ((flt->topic && (!r->topic || strcmp(r->topic, flt->topic))) ||
            r->level < flt->min_level || (flt->after_id > 0 && r->id <= flt->after_id) ||
            (flt->before_id > 0 && r->id >= flt->before_id) || (keep && !keep(k, data)))
            continue;
        len += (size_t)snprintf(out + len, cap - len, found++ ? ",%lld" : "%lld", (long long)r->id);
    }
}

/* Every page of flt in turn, following the cursor, against expected_ids. */
static void check_pages(fixture_t *f, aos_store_logs_filter_t flt, const aos_store_log_t *all,
                        size_t n, keep_fn keep, const void *data)
{
    static char got[16384], want[16384];
    for (int page = 0; page < 1000; page++) {
        ids_of(f, &flt, got, sizeof(got));
        expected_ids(all, n, &flt, keep, data, want, sizeof(want));
        if (strcmp(got, want))
            fail_msg("page %d (q %s, topic %s, level %d, %s, limit %d):\n got  %s\n want %s", page,
                     flt.q ? flt.q : "-", flt.topic ? flt.topic : "-", flt.min_level,
                     flt.ascending ? "asc" : "desc", flt.limit, got, want);
        if (!*got)
            return;
        const char *last = strrchr(got, ',');
        int64_t id = strtoll(last ? last + 1 : got, NULL, 10);
        if (flt.ascending)
            flt.after_id = id;
        else
            flt.before_id = id;
    }
    fail_msg("more than 1,000 pages");
}

/* The topic index keeps one group per topic and indexing window; a page
 * by topic reads the tail, then walks the groups newest (or oldest) first
 * a chunk at a time, so pages that need many chunks (a rare level) still
 * come out whole and in order; retention drops groups whose entries are
 * gone. */
static void test_store_topic_groups(void **state)
{
    fixture_t *f = *state;
    static const char *const topics[] = {"a", "b", "c", NULL};
    enum { BATCHES = 80, PER = 6 };
    aos_store_log_t all[BATCHES * PER];
    char msgs[BATCHES * PER][16];
    for (int b = 0; b < BATCHES; b++) {
        for (int i = 0; i < PER; i++) {
            int k = b * PER + i;
            snprintf(msgs[k], sizeof(msgs[k]), "m%d", k);
            /* topic a in every batch, twice in some; level 5 rarely */
            all[k] = row(msgs[k], k % 37 == 0 ? 5 : k % 4, topics[(k * 7 + b) % 4], NULL);
        }
        insert(f, &all[b * PER], PER);
        if (b < BATCHES - 3) /* one window per batch; the last three in the tail */
            index_now(f);
    }
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_topics WHERE topic = 'a' AND "
                                  "first_id <= (SELECT indexed_upto FROM logs_index_state)"),
                     raw_count(f, "SELECT COUNT(DISTINCT (SELECT first_id FROM logs_batches "
                                  "WHERE logs.id BETWEEN first_id AND last_id)) "
                                  "FROM logs WHERE topic = 'a' AND id <= (SELECT indexed_upto "
                                  "FROM logs_index_state)"));
    char got[4096], want[4096];
    aos_store_logs_filter_t flt = {0};
    flt.topic = "a";
    int limits[] = {1, 7, 100, 500};
    for (int asc = 0; asc < 2; asc++) {
        for (int lv = 0; lv <= 5; lv += 5) {
            for (size_t li = 0; li < sizeof(limits) / sizeof(limits[0]); li++) {
                flt.ascending = asc;
                flt.min_level = lv;
                flt.limit = limits[li];
                check_pages(f, flt, all, BATCHES * PER, NULL, NULL);
            }
        }
    }
    /* with text or a trace the topic is checked per row */
    flt = (aos_store_logs_filter_t){0};
    flt.topic = "b";
    flt.q = "m7";
    flt.limit = 10;
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld", (long long)all[7].id);
    assert_string_equal(got, all[7].topic && !strcmp(all[7].topic, "b") ? want : "");
    /* counts by level within a topic */
    flt = (aos_store_logs_filter_t){0};
    flt.topic = "c";
    flt.limit = 10;
    json_t *groups = NULL;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_logs_count(f->st, &flt, "level", &groups, &err), 0);
    size_t i;
    json_t *g;
    json_int_t sum = 0;
    json_array_foreach(groups, i, g) sum += json_integer_value(json_object_get(g, "count"));
    assert_int_equal(sum, raw_count(f, "SELECT COUNT(*) FROM logs WHERE topic = 'c'"));
    json_decref(groups);

    /* retention: the oldest half goes, and with it their groups */
    int64_t deleted = 0;
    assert_int_equal(aos_store_logs_retain(f->st, NULL, BATCHES * PER / 2, 10000, &deleted, &err),
                     0);
    assert_int_equal(deleted, BATCHES * PER / 2);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_topics WHERE last_id < "
                                  "(SELECT MIN(id) FROM logs)"),
                     0);
    flt = (aos_store_logs_filter_t){0};
    flt.topic = "a";
    flt.limit = 500;
    check_pages(f, flt, all + BATCHES * PER / 2, BATCHES * PER / 2, NULL, NULL);
    assert_fts_consistent(f);
}

/* Which of the tail test's messages a query matches: message k is
 * "<word k%5> n<k%7>". */
static int tail_match(int k, int q)
{
    switch (q) {
    case 0:
        return k % 5 == 0; /* alpha */
    case 1:
        return k % 5 == 1 && k % 7 == 3; /* beta n3 */
    case 2:
        return k % 7 == 3; /* n3* */
    default:
        return k % 5 == 4 && k % 7 == 0; /* "n0 eps" (both words, any order) */
    }
}

static int tail_keep(size_t k, const void *data)
{
    return tail_match((int)k, *(const int *)data);
}

/* The full-text index trails the newest entries (store.h; the log
 * service fills it between inserts, see 0006_logs_index_tail.sql); text
 * queries find them all the same, in pages that cross from the tail into
 * the index in both orders, in counts and within a trace; retention never
 * deletes from the index what it does not hold. */
static void test_store_fts_tail(void **state)
{
    fixture_t *f = *state;
    static const char *const words[] = {"alpha", "beta", "gamma", "delta", "eps"};
    static const char *const qs[] = {"alpha", "beta n3", "n3*", "n0 eps"};
    enum { N = 2400 };
    static aos_store_log_t all[N];
    static char msgs[N][24];
    for (int k = 0; k < N; k++) {
        snprintf(msgs[k], sizeof(msgs[k]), "%s n%d", words[k % 5], k % 7);
        all[k] = row(msgs[k], k % 6, NULL, k % 2 ? "odd" : "even");
    }
    aos_store_logs_filter_t flt = {0};
    for (int phase = 0; phase < 2; phase++) {
        int n = phase == 0 ? 1500 : N; /* all in the tail; then 2,100 indexed and 300 not */
        if (phase == 0) {
            for (int b = 0; b < 3; b++)
                insert(f, &all[b * 500], 500);
            assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"), 0);
            assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH "
                                          "'alpha'"),
                             0);
        } else {
            insert(f, &all[1500], 600);
            /* an insert leaves the indexes alone: 2,100 wait */
            assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"), 0);
            aos_err_t err = {0, ""};
            int64_t left = -1;
            assert_int_equal(aos_store_logs_index(f->st, 2100, 0, &left, &err), 0);
            assert_int_equal(left, 0);
            assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"),
                             all[2099].id);
            insert(f, &all[2100], 300);
            assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"),
                             all[2099].id);
            assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH "
                                          "'alpha'"),
                             420);
        }
        for (int qi = 0; qi < 4; qi++) {
            for (int asc = 0; asc < 2; asc++) {
                for (int limit = 37; limit <= 500; limit += 463) {
                    flt = (aos_store_logs_filter_t){0};
                    flt.q = qs[qi];
                    flt.limit = limit;
                    flt.ascending = asc;
                    check_pages(f, flt, all, (size_t)n, tail_keep, &qi);
                }
            }
            /* counts, and text within a trace: one statement for both parts */
            flt = (aos_store_logs_filter_t){0};
            flt.q = qs[qi];
            flt.limit = 10;
            json_t *groups = NULL;
            aos_err_t err = {0, ""};
            assert_int_equal(aos_store_logs_count(f->st, &flt, "level", &groups, &err), 0);
            json_int_t sum = 0, expect = 0, odd = 0;
            size_t i;
            json_t *g;
            json_array_foreach(groups, i, g) sum += json_integer_value(json_object_get(g, "count"));
            json_decref(groups);
            for (int j = 0; j < n; j++) {
                expect += tail_match(j, qi);
                odd += tail_match(j, qi) && j % 2;
            }
            assert_int_equal(sum, expect);
            flt.trace_id = "odd";
            flt.limit = 1000;
            json_t *rows = query(f, &flt);
            assert_int_equal(json_array_size(rows), odd);
            json_decref(rows);
        }
    }
    /* retention past the indexed entries into the tail: the index keeps
     * only what it held of the rest (assert_fts_consistent indexes the
     * tail, then checks the index against the table) */
    int64_t deleted = 0;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 100, 100000, &deleted, &err), 0);
    assert_int_equal(deleted, N - 100);
    assert_fts_consistent(f);
    flt = (aos_store_logs_filter_t){0};
    flt.q = "alpha";
    flt.limit = 1000;
    json_t *rows = query(f, &flt);
    assert_int_equal(json_array_size(rows), 20);
    json_decref(rows);
}

static int chunk_trace_keep(size_t k, const void *data)
{
    const aos_store_log_t *all = data;
    return !strcmp(all[k].trace_id, all[160].trace_id); /* t5: 150-179 */
}

static int chunk_word_keep(size_t k, const void *data)
{
    (void)data;
    return k % 3 == 1 && k % 11 == 3; /* "w1 n3" */
}

/* The indexes take the oldest unindexed entries a chunk at a time, each
 * chunk in a transaction of its own, and a chunk may end inside a trace or
 * a topic's run: at every step every query sees every entry, each once.
 * An insert says how far the indexes trail; one that would leave
 * AOS_STORE_LOGS_TAIL_MAX entries waiting indexes them itself. */
static void test_store_index_chunks(void **state)
{
    fixture_t *f = *state;
    enum { N = 1000, BATCH = 100, CHUNK = 170 };
    static aos_store_log_t all[N];
    static char msgs[N][24], traces[N / 30 + 1][8];
    static const char *const topics[] = {"x", "y", NULL};
    for (int k = 0; k < N; k++) {
        snprintf(msgs[k], sizeof(msgs[k]), "w%d n%d", k % 3, k % 11);
        snprintf(traces[k / 30], sizeof(traces[0]), "t%d", k / 30);
        all[k] = row(msgs[k], k % 6, topics[k % 3], traces[k / 30]); /* 30 entries a trace */
    }
    aos_err_t err = {0, ""};
    for (int b = 0; b < N / BATCH; b++) {
        int64_t unindexed = -1;
        char created[32];
        assert_int_equal(
            aos_store_logs_insert(f->st, &all[b * BATCH], BATCH, created, &unindexed, &err), 0);
        assert_int_equal(unindexed, (b + 1) * BATCH);
    }
    assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"), 0);
    for (int moved = 0;;) {
        aos_store_logs_filter_t flt = {0};
        for (int asc = 0; asc < 2; asc++) {
            flt = (aos_store_logs_filter_t){0};
            flt.ascending = asc;
            flt.limit = 7;
            flt.topic = "x";
            check_pages(f, flt, all, N, NULL, NULL);
            flt.topic = NULL;
            flt.q = "w1 n3";
            check_pages(f, flt, all, N, chunk_word_keep, NULL);
            flt.q = NULL;
            flt.limit = 100;
            flt.trace_id = all[160].trace_id; /* cut by the first chunk */
            check_pages(f, flt, all, N, chunk_trace_keep, all);
        }
        flt = (aos_store_logs_filter_t){0};
        flt.limit = 10;
        json_t *groups = NULL;
        assert_int_equal(aos_store_logs_count(f->st, &flt, "topic", &groups, &err), 0);
        json_int_t sum = 0;
        size_t i;
        json_t *g;
        json_array_foreach(groups, i, g) sum += json_integer_value(json_object_get(g, "count"));
        json_decref(groups);
        assert_int_equal(sum, N);
        if (moved == N)
            break;
        int64_t left = -1;
        assert_int_equal(aos_store_logs_index(f->st, CHUNK, 0, &left, &err), 0);
        moved = moved + CHUNK < N ? moved + CHUNK : N;
        assert_int_equal(left, N - moved);
        assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"),
                         all[moved - 1].id);
        assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'w0'"),
                         (moved + 2) / 3);
    }
    /* each window holds a trace's or a topic's ids once: none overlap */
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces a JOIN logs_traces b ON "
                                  "a.trace_id = b.trace_id AND a.first_id < b.first_id AND "
                                  "a.last_id >= b.first_id"),
                     0);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces WHERE trace_id = 't5'"), 2);
    assert_int_equal(raw_count(f, "SELECT SUM(json_array_length(ids)) FROM logs_topics"),
                     N - N / 3);
    /* nothing left: nothing to do */
    int64_t left = -1;
    int64_t groups = raw_count(f, "SELECT COUNT(*) FROM logs_traces");
    assert_int_equal(aos_store_logs_index(f->st, 0, 0, &left, &err), 0);
    assert_int_equal(left, 0);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_traces"), groups);
    assert_fts_consistent(f);

    /* an insert that would leave AOS_STORE_LOGS_TAIL_MAX waiting indexes
     * them itself, with the batch */
    enum { MAX = AOS_STORE_LOGS_TAIL_MAX };
    static aos_store_log_t many[MAX];
    for (int k = 0; k < MAX; k++)
        many[k] = row("many", 2, "z", NULL);
    int64_t unindexed = -1;
    char created[32];
    assert_int_equal(aos_store_logs_insert(f->st, many, MAX - 1, created, &unindexed, &err), 0);
    assert_int_equal(unindexed, MAX - 1);
    assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"), all[N - 1].id);
    assert_int_equal(aos_store_logs_insert(f->st, &many[MAX - 1], 1, created, &unindexed, &err), 0);
    assert_int_equal(unindexed, 0);
    assert_int_equal(raw_count(f, "SELECT indexed_upto FROM logs_index_state"), many[MAX - 1].id);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'many'"),
                     MAX);
    assert_fts_consistent(f);
}

/* A word of several tokens is a phrase: the index finds rows holding all
 * the tokens, the statement keeps those where they follow each other
 * (expected sets written out, not taken from the live matcher). */
static void test_store_phrase_order(void **state)
{
    fixture_t *f = *state;
    aos_store_log_t rows[] = {row("id 42 user", 2, NULL, NULL), row("user_id=42 ok", 2, NULL, NULL),
                              row("user x id 42", 2, NULL, NULL),
                              row("USER-ID-42x", 2, NULL, NULL)};
    insert(f, rows, 4);
    struct {
        const char *q;
        int want[4];
    } cases[] = {
        {"user_id=42", {0, 1, 0, 0}}, {"user_id=4*", {0, 1, 0, 1}}, {"id_42", {1, 1, 1, 0}},
        {"42-user", {1, 0, 0, 0}},    {"user 42", {1, 1, 1, 0}},    {"x_id", {0, 0, 1, 0}},
    };
    for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
        aos_store_logs_filter_t flt = {0};
        flt.limit = 10;
        flt.ascending = 1;
        flt.q = cases[k].q;
        char got[64], want[64] = "";
        size_t len = 0;
        for (int i = 0; i < 4; i++)
            if (cases[k].want[i])
                len += (size_t)snprintf(want + len, sizeof(want) - len, len ? ",%lld" : "%lld",
                                        (long long)rows[i].id);
        ids_of(f, &flt, got, sizeof(got));
        if (strcmp(got, want))
            fail_msg("q '%s': got [%s], want [%s]", cases[k].q, got, want);
    }
}

static aos_store_log_t row_at(const char *msg, const char *ts)
{
    aos_store_log_t r = row(msg, 2, NULL, NULL);
    r.ts = ts;
    return r;
}

/* Time ranges go through the per-batch ts ranges: every entry in the range
 * is found, also an old entry in a new batch, and retention keeps the
 * batches in step. */
static void test_store_time_batches(void **state)
{
    fixture_t *f = *state;
    aos_store_log_t b1[] = {row_at("jan a", "2025-01-10T00:00:00.000Z"),
                            row_at("jan b", "2025-01-20T00:00:00.000Z")};
    aos_store_log_t b2[] = {row_at("feb a", "2025-02-10T00:00:00.000Z"),
                            row_at("late jan", "2025-01-15T00:00:00.000Z"),
                            row_at("feb b", "2025-02-20T00:00:00.000Z")};
    aos_store_log_t b3[] = {row_at("mar a", "2025-03-10T00:00:00.000Z")};
    insert(f, b1, 2);
    insert(f, b2, 3);
    insert(f, b3, 1);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_batches"), 3);
    char got[64], want[64];
    aos_store_logs_filter_t flt = {0};
    flt.limit = 10;
    flt.after = "2025-01-12T00:00:00.000Z";
    flt.before = "2025-02-01T00:00:00.000Z";
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld", (long long)b2[1].id, (long long)b1[1].id);
    assert_string_equal(got, want);
    flt.before = NULL; /* after only */
    flt.after = "2025-02-15T00:00:00.000Z";
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld", (long long)b3[0].id, (long long)b2[2].id);
    assert_string_equal(got, want);
    flt.after = NULL; /* before only */
    flt.before = "2025-01-16T00:00:00.000Z";
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld,%lld", (long long)b2[1].id, (long long)b1[0].id);
    assert_string_equal(got, want);
    flt.before = "2025-01-01T00:00:00.000Z"; /* before everything */
    ids_of(f, &flt, got, sizeof(got));
    assert_string_equal(got, "");
    flt.before = NULL;
    flt.after = "2026-01-01T00:00:00.000Z"; /* after everything */
    ids_of(f, &flt, got, sizeof(got));
    assert_string_equal(got, "");

    int64_t deleted = 0;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 1, 100, &deleted, &err), 0);
    assert_true(deleted == 5);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_batches"), 1);
    flt.after = "2025-01-01T00:00:00.000Z";
    ids_of(f, &flt, got, sizeof(got));
    snprintf(want, sizeof(want), "%lld", (long long)b3[0].id);
    assert_string_equal(got, want);
}

/* A database written before 0004 (a per-entry trace index, FTS5 with
 * sizes) is carried over: traces and text are found after the upgrade. */
static void test_store_upgrade_from_0003(void **state)
{
    (void)state;
    char dir[64], path[96], url[128];
    assert_int_equal(aos_test_mkdtemp(dir, sizeof(dir), "logs-up"), 0);
    snprintf(path, sizeof(path), "%s/aos.db", dir);
    snprintf(url, sizeof(url), "sqlite:%s", path);
    aos_embed_t upto3[4] = {{NULL, NULL, 0}};
    for (int i = 0; i < 3; i++) {
        assert_non_null(aos_migrations[i].name);
        upto3[i] = aos_migrations[i];
    }
    assert_non_null(strstr(upto3[2].name, "0003"));
    aos_store_t *st = NULL;
    aos_err_t err = {0, ""};
    assert_int_equal(aos__store_open_with(&st, NULL, url, upto3, &err), 0);
    aos_store_close(st);
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "INSERT INTO logs (ts, level, message, trace_id, topic, created_at) VALUES "
                     "('2025-01-01T00:00:00.000Z', 2, 'old disk full', 'tOld', 'k', 'x'),"
                     "('2025-01-01T00:00:00.000Z', 2, 'other', 'tNew', NULL, 'x'),"
                     "('2025-01-01T00:00:00.000Z', 3, 'old user_id=42 again', 'tOld', 'k', 'x');"
                     "INSERT INTO logs_fts (rowid, message) SELECT id, message FROM logs;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);

    fixture_t f;
    memset(&f, 0, sizeof(f));
    snprintf(f.path, sizeof(f.path), "%s", path);
    assert_int_equal(aos_store_open(&f.st, NULL, url, &err), 0);
    char got[64];
    aos_store_logs_filter_t flt = {0};
    flt.limit = 10;
    flt.trace_id = "tOld";
    ids_of(&f, &flt, got, sizeof(got));
    assert_string_equal(got, "3,1");
    flt.trace_id = NULL;
    flt.q = "user_id=42"; /* a phrase still works: positions were kept */
    ids_of(&f, &flt, got, sizeof(got));
    assert_string_equal(got, "3");
    flt.q = "disk";
    ids_of(&f, &flt, got, sizeof(got));
    assert_string_equal(got, "1");
    flt.q = NULL; /* the batches were built from the rows there */
    flt.after = "2024-12-31T00:00:00.000Z";
    ids_of(&f, &flt, got, sizeof(got));
    assert_string_equal(got, "3,2,1");
    flt.after = NULL; /* and the topic groups (0005) */
    flt.topic = "k";
    ids_of(&f, &flt, got, sizeof(got));
    assert_string_equal(got, "3,1");
    assert_fts_consistent(&f);
    aos_store_close(f.st);
    aos_test_rmdir(dir);
}

static void test_store_retention(void **state)
{
    fixture_t *f = *state;
    aos_store_log_t rows[50];
    for (int i = 0; i < 50; i++)
        rows[i] = row("retained or not", 2, NULL, NULL);
    insert(f, rows, 50);
    int64_t deleted = -1;
    aos_err_t err = {0, ""};
    /* by count: keep 20, at most 12 per call */
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 20, 12, &deleted, &err), 0);
    assert_true(deleted == 12);
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 20, 12, &deleted, &err), 0);
    assert_true(deleted == 12);
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 20, 12, &deleted, &err), 0);
    assert_true(deleted == 6);
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 20, 12, &deleted, &err), 0);
    assert_true(deleted == 0);
    assert_true(count_rows(f) == 20);
    assert_fts_consistent(f);
    /* the newest stayed, and the full-text index followed */
    aos_store_logs_filter_t flt = {0};
    flt.limit = 100;
    flt.q = "retained";
    json_t *left = query(f, &flt);
    assert_int_equal(json_array_size(left), 20);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(left, 19), "id")),
                     rows[30].id);
    json_decref(left);

    /* by age: created before a time in the future = everything */
    assert_int_equal(
        aos_store_logs_retain(f->st, "2000-01-01T00:00:00.000Z", 0, 100, &deleted, &err), 0);
    assert_true(deleted == 0);
    assert_int_equal(
        aos_store_logs_retain(f->st, "9999-01-01T00:00:00.000Z", 0, 15, &deleted, &err), 0);
    assert_true(deleted == 15);
    assert_int_equal(
        aos_store_logs_retain(f->st, "9999-01-01T00:00:00.000Z", 0, 15, &deleted, &err), 0);
    assert_true(deleted == 5);
    assert_true(count_rows(f) == 0);
    assert_fts_consistent(f);
    /* ids keep growing after everything was deleted: cursors stay valid */
    aos_store_log_t more = row("after the purge", 2, NULL, NULL);
    insert(f, &more, 1);
    assert_true(more.id == rows[49].id + 1);
    assert_int_equal(aos_store_logs_retain(f->st, NULL, 0, 0, &deleted, &err), AOS_EINVAL);
}

/* The full-text index's segments are merged by the fills, a few pages a
 * step (automerge is off, 0012_logs_fts_merge.sql), so they never pile up
 * to the 16 on a level that make FTS5 merge them all inside one flush
 * (crisismerge, a fill's commit of tens of ms): after 15 fills of 100
 * entries, each writing a segment, few are left; without the steps, 15. */
static void test_store_index_merges(void **state)
{
    fixture_t *f = *state;
    enum { FILLS = 15, PER = 100 };
    static aos_store_log_t rows[FILLS * PER];
    static char msgs[FILLS * PER][32];
    aos_err_t err = {0, ""};
    assert_int_equal(raw_count(f, "SELECT v FROM logs_fts_config WHERE k = 'automerge'"), 0);
    for (int k = 0; k < FILLS * PER; k++) {
        snprintf(msgs[k], sizeof(msgs[k]), "merge w%d n%d", k % 97, k);
        rows[k] = row(msgs[k], 2, "m", NULL);
    }
    for (int b = 0; b < FILLS; b++) {
        insert(f, &rows[b * PER], PER);
        assert_int_equal(aos_store_logs_index(f->st, 0, 0, NULL, &err), 0);
    }
    int64_t segs = raw_count(f, "SELECT COUNT(DISTINCT segid) FROM logs_fts_idx");
    if (segs > 6)
        fail_msg("%lld segments after %d fills: the fills do not merge", (long long)segs, FILLS);
    assert_int_equal(raw_count(f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'merge'"),
                     FILLS * PER);
    assert_fts_consistent(f);
}

/* ---- the service: the trailing indexes off the request path --------------- */

/* A log service on a loop, over a store with its worker. */
typedef struct {
    fixture_t f; /* f.st opened with the loop */
    uv_loop_t loop;
    aos_logs_t *l;
    int ndone, nfailed;
    int64_t last_id;
    int64_t max_unindexed; /* seen when a batch was answered */
    int indexing_at_done;  /* a fill was in flight when the last batch was answered */
    json_t *result;        /* of the last query */
} svc_t;

static int svc_setup(void **state)
{
    svc_t *s = calloc(1, sizeof(*s));
    if (!s || aos_test_mkdtemp(s->f.dir, sizeof(s->f.dir), "logsvc")) {
        free(s);
        return -1;
    }
    snprintf(s->f.path, sizeof(s->f.path), "%s/aos.db", s->f.dir);
    snprintf(s->f.url, sizeof(s->f.url), "sqlite:%s", s->f.path);
    aos_err_t err = {0, ""};
    aos_logs_cfg_t cfg = {.loop = &s->loop};
    if (uv_loop_init(&s->loop) || aos_store_open(&s->f.st, &s->loop, s->f.url, &err)) {
        fprintf(stderr, "svc_setup: %s\n", aos_err_msg(&err));
        return -1;
    }
    cfg.store = s->f.st;
    if (aos_logs_new(&s->l, &cfg, &err)) {
        fprintf(stderr, "aos_logs_new: %s\n", aos_err_msg(&err));
        return -1;
    }
    *state = s;
    return 0;
}

static int svc_teardown(void **state)
{
    svc_t *s = *state;
    aos_logs_shutdown(s->l);
    aos_store_close(s->f.st);
    aos_logs_free(s->l);
    uv_run(&s->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
    json_decref(s->result);
    aos_test_rmdir(s->f.dir);
    free(s);
    return 0;
}

static void svc_pub_done(void *ctx, json_t *result, const aos_err_t *err,
                         const aos__logs_fault_t *fault)
{
    (void)fault;
    svc_t *s = ctx;
    if (!result) {
        fprintf(stderr, "publish failed: %s\n", aos_err_msg(err));
        s->nfailed++;
        return;
    }
    s->last_id = json_integer_value(json_object_get(result, "last_id"));
    json_decref(result);
    aos__logs_ingest_t in;
    aos__logs_ingest_state(s->l, &in);
    if (in.unindexed > s->max_unindexed)
        s->max_unindexed = in.unindexed;
    s->indexing_at_done = in.indexing;
    s->ndone++;
}

/* Publishes entries first..first+n-1 ("entry <k>", a trace per ten, ten
 * topics), entry needle_at with the word "needle" too; done comes later. */
static void svc_publish(svc_t *s, int first, int n, int needle_at)
{
    json_t *entries = json_array();
    for (int k = first; k < first + n; k++) {
        char msg[64], trace[16], topic[16];
        snprintf(msg, sizeof(msg), "entry %d%s", k, k == needle_at ? " needle" : "");
        snprintf(trace, sizeof(trace), "t%d", k / 10);
        snprintf(topic, sizeof(topic), "topic.%d", k % 10);
        json_array_append_new(entries, json_pack("{s:s, s:s, s:s}", "message", msg, "trace_id",
                                                 trace, "topic", topic));
    }
    json_t *args = json_pack("{s:o}", "entries", entries);
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    if (aos__logs_op(s->l, AOS__LOGS_OP_PUBLISH, args, "test", svc_pub_done, s, &fault, &err))
        fail_msg("publish: %s", aos_err_msg(&err));
    json_decref(args);
}

static int svc_done_at_least(const void *arg)
{
    const at_least_t *a = arg;
    return *a->flag >= a->want;
}

static void svc_wait_done(svc_t *s, int want)
{
    at_least_t a = {&s->ndone, want};
    if (wait_for(&s->loop, svc_done_at_least, &a, 20000))
        fail_msg("%d of %d batches answered", s->ndone, want);
    assert_int_equal(s->nfailed, 0);
}

static void svc_query_done(void *ctx, json_t *result, const aos_err_t *err,
                           const aos__logs_fault_t *fault)
{
    (void)fault;
    svc_t *s = ctx;
    if (!result)
        fprintf(stderr, "query failed: %s\n", aos_err_msg(err));
    s->result = result ? result : json_null();
}

static int svc_has_result(const void *arg)
{
    return ((const svc_t *)arg)->result != NULL;
}

/* The ids a search for q finds through the service, as "id,id,". */
static const char *svc_search(svc_t *s, const char *q)
{
    static char ids[256];
    json_decref(s->result);
    s->result = NULL;
    json_t *args = json_pack("{s:s}", "q", q);
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    if (aos__logs_op(s->l, AOS__LOGS_OP_QUERY, args, "test", svc_query_done, s, &fault, &err))
        fail_msg("query: %s", aos_err_msg(&err));
    json_decref(args);
    if (wait_for(&s->loop, svc_has_result, s, 20000))
        fail_msg("no answer to the query");
    ids[0] = '\0';
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(s->result, "items"), i, e)
    {
        size_t at = strlen(ids);
        snprintf(ids + at, sizeof(ids) - at, "%lld,",
                 (long long)json_integer_value(json_object_get(e, "id")));
    }
    return ids;
}

typedef struct {
    const svc_t *s;
    uint64_t fills;
} fills_t;

/* As many fills as wanted were submitted, and none is in flight. */
static int svc_fills_done(const void *arg)
{
    const fills_t *w = arg;
    aos__logs_ingest_t in;
    aos__logs_ingest_state(w->s->l, &in);
    return !in.indexing && in.fills_idle + in.fills_behind >= w->fills;
}

static void svc_wait_fills(svc_t *s, uint64_t fills)
{
    fills_t w = {s, fills};
    if (wait_for(&s->loop, svc_fills_done, &w, 20000))
        fail_msg("no fill of the trailing indexes");
}

/* An entry is found as soon as it is acknowledged (the row-by-row check of
 * the tail); the insert leaves the indexes alone, and once INDEX_CHUNK
 * entries wait a fill runs while the store idles, in a job of its own
 * after the batch's answer, and the search finds the entry in the
 * full-text index, once. */
static void test_service_fill_when_idle(void **state)
{
    svc_t *s = *state;
    enum { PER = 100, BATCHES = AOS__LOGS_INDEX_CHUNK / PER, NEEDLE = 42 };
    char want[32] = "";
    for (int b = 0; b < BATCHES - 1; b++) {
        svc_publish(s, b * PER, PER, NEEDLE);
        svc_wait_done(s, b + 1);
        if (b == 0) { /* just acknowledged */
            snprintf(want, sizeof(want), "%lld,", (long long)(s->last_id - PER + 1 + NEEDLE));
            assert_string_equal(svc_search(s, "needle"), want);
        }
    }
    aos__logs_ingest_t in;
    aos__logs_ingest_state(s->l, &in);
    assert_int_equal(in.unindexed, (BATCHES - 1) * PER);
    assert_int_equal(in.indexing, 0);
    assert_int_equal(in.fills_idle + in.fills_behind, 0);
    assert_int_equal(raw_count(&s->f, "SELECT indexed_upto FROM logs_index_state"), 0);
    assert_int_equal(
        raw_count(&s->f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'needle'"), 0);
    assert_string_equal(svc_search(s, "needle"), want);

    /* the batch that makes INDEX_CHUNK */
    svc_publish(s, (BATCHES - 1) * PER, PER, NEEDLE);
    svc_wait_done(s, BATCHES);
    svc_wait_fills(s, 1);
    aos__logs_ingest_state(s->l, &in);
    assert_true(in.fills_idle >= 1); /* each within its budget: one or more */
    assert_int_equal(in.fills_behind, 0);
    assert_int_equal(in.unindexed, 0);
    assert_int_equal(raw_count(&s->f, "SELECT indexed_upto FROM logs_index_state"), s->last_id);
    assert_int_equal(raw_count(&s->f, "SELECT rowid FROM logs_fts WHERE logs_fts MATCH 'needle'"),
                     strtoll(want, NULL, 10));
    assert_int_equal(raw_count(&s->f, "SELECT COUNT(*) FROM logs_traces"), BATCHES * PER / 10);
    assert_string_equal(svc_search(s, "needle"), want);

    /* fewer than a chunk wait: they stay in the tail */
    svc_publish(s, BATCHES * PER, PER, -1);
    svc_wait_done(s, BATCHES + 1);
    aos__logs_ingest_state(s->l, &in);
    assert_int_equal(in.unindexed, PER);
    assert_int_equal(in.indexing, 0);
    assert_fts_consistent(&s->f);
}

/* A job that holds the store's worker until the test opens it. */
typedef struct {
    uv_mutex_t mu;
    uv_cond_t cond;
    int started, open;
} gate_t;

static int gate_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    (void)st;
    (void)err;
    gate_t *g = arg;
    uv_mutex_lock(&g->mu);
    g->started = 1;
    uv_cond_broadcast(&g->cond);
    while (!g->open)
        uv_cond_wait(&g->cond, &g->mu);
    uv_mutex_unlock(&g->mu);
    return 0;
}

static void gate_done(int status, const aos_err_t *err, void *arg)
{
    (void)status;
    (void)err;
    (void)arg;
}

static void gate_init(gate_t *g, aos_store_t *st)
{
    memset(g, 0, sizeof(*g));
    assert_int_equal(uv_mutex_init(&g->mu), 0);
    assert_int_equal(uv_cond_init(&g->cond), 0);
    assert_int_equal(aos_store_submit(st, gate_run, gate_done, g), 0);
}

static void gate_wait_started(gate_t *g)
{
    uv_mutex_lock(&g->mu);
    while (!g->started)
        uv_cond_wait(&g->cond, &g->mu);
    uv_mutex_unlock(&g->mu);
}

static void gate_open(gate_t *g)
{
    uv_mutex_lock(&g->mu);
    g->open = 1;
    uv_cond_broadcast(&g->cond);
    uv_mutex_unlock(&g->mu);
}

static void gate_destroy(gate_t *g)
{
    uv_cond_destroy(&g->cond);
    uv_mutex_destroy(&g->mu);
}

typedef struct {
    const svc_t *s;
    int parsing, queued, groups;
} ingest_at_t;

static int svc_ingest_is(const void *arg)
{
    const ingest_at_t *w = arg;
    aos__logs_ingest_t in;
    aos__logs_ingest_state(w->s->l, &in);
    return in.parsing == w->parsing && (int)in.queued == w->queued && in.groups == w->groups;
}

static void svc_wait_ingest(svc_t *s, int parsing, int queued, int groups)
{
    ingest_at_t w = {s, parsing, queued, groups};
    if (wait_for(&s->loop, svc_ingest_is, &w, 20000)) {
        aos__logs_ingest_t in;
        aos__logs_ingest_state(s->l, &in);
        fail_msg("ingest: parsing %d queued %zu groups %d, not %d %d %d", in.parsing, in.queued,
                 in.groups, parsing, queued, groups);
    }
}

/* Inserts that never leave the store idle: once INDEX_BEHIND entries wait,
 * a fill goes in between two groups, so the lag stays bounded (far below
 * the store's own AOS_STORE_LOGS_TAIL_MAX): one within a budget (~2 ms,
 * AOS_STORE_LOGS_FILL_BEHIND) below INDEX_FAR, the whole tail from there.
 * Gates hold the store's worker so that the order is known: groups g1 and
 * g2 of 100 in flight and queued * 100 entries queued; g1's answer sends
 * those as g3; with the worker held again, two batches more arrive (g4 in
 * flight, one queued). g3 leaves (queued + 2) * 100 unindexed while g4 is
 * in flight: the fill goes in right then, with g5, and before any later
 * group. Returns the needle's id (in g4). */
static int64_t fill_behind(svc_t *s, int queued)
{
    enum { PER = 100 };
    gate_t a, b;
    gate_init(&a, s->f.st);
    gate_wait_started(&a);
    svc_publish(s, 0, PER, -1);
    svc_publish(s, PER, PER, -1);
    svc_wait_ingest(s, 0, 0, 2); /* g1, g2 */
    for (int k = 2; k < queued + 2; k++)
        svc_publish(s, k * PER, PER, -1);
    svc_wait_ingest(s, 0, queued, 2);
    gate_init(&b, s->f.st); /* behind g2 */
    gate_open(&a);
    gate_wait_started(&b);
    svc_wait_ingest(s, 0, 0, 1); /* g1, g2 answered; g3 behind b */
    assert_int_equal(s->ndone, 2);
    assert_int_equal(s->max_unindexed, 2 * PER);
    int at = (queued + 2) * PER;
    svc_publish(s, at, PER, at + 7);
    svc_publish(s, at + PER, PER, -1);
    svc_wait_ingest(s, 0, 1, 2); /* g4 */
    gate_open(&b);
    svc_wait_done(s, queued + 4);
    /* the fill was queued before the last group was answered */
    assert_true(s->indexing_at_done);
    assert_int_equal(s->max_unindexed, (queued + 4) * PER);
    svc_wait_fills(s, 1);
    gate_destroy(&a);
    gate_destroy(&b);
    char msg[64];
    snprintf(msg, sizeof(msg), "SELECT id FROM logs WHERE message = 'entry %d needle'", at + 7);
    return raw_count(&s->f, msg);
}

/* Below INDEX_FAR: the fill behind does part of the tail (at least a step
 * of it), the idle fills after it the rest but for less than a chunk. */
static void test_service_fill_behind(void **state)
{
    svc_t *s = *state;
    int64_t needle = fill_behind(s, 48); /* 5,000 */
    aos__logs_ingest_t in;
    aos__logs_ingest_state(s->l, &in);
    assert_int_equal(in.fills_behind, 1);
    assert_true(in.unindexed < AOS__LOGS_INDEX_CHUNK);
    int64_t upto = raw_count(&s->f, "SELECT indexed_upto FROM logs_index_state");
    assert_int_equal(upto, s->last_id - in.unindexed);
    assert_true(upto >= AOS_STORE_LOGS_INDEX_STEP);
    char want[32];
    snprintf(want, sizeof(want), "%lld,", (long long)needle);
    assert_string_equal(svc_search(s, "needle"), want);
    assert_fts_consistent(&s->f);
}

/* From INDEX_FAR on: the fill behind takes the whole tail at once. */
static void test_service_fill_far_behind(void **state)
{
    svc_t *s = *state;
    int64_t needle = fill_behind(s, AOS__LOGS_INDEX_FAR / 100); /* 8,200 */
    aos__logs_ingest_t in;
    aos__logs_ingest_state(s->l, &in);
    assert_int_equal(in.fills_behind, 1);
    assert_int_equal(in.fills_idle, 0);
    assert_int_equal(in.unindexed, 0);
    assert_int_equal(raw_count(&s->f, "SELECT indexed_upto FROM logs_index_state"), s->last_id);
    assert_int_equal(raw_count(&s->f, "SELECT rowid FROM logs_fts WHERE logs_fts MATCH 'needle'"),
                     needle);
    char want[32];
    snprintf(want, sizeof(want), "%lld,", (long long)needle);
    assert_string_equal(svc_search(s, "needle"), want);
    assert_fts_consistent(&s->f);
}

struct fill_job {
    int yield, done;
    int64_t left;
};

static int fill_job_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct fill_job *j = arg;
    return aos_store_logs_index(st, 0, j->yield, &j->left, err);
}

static void fill_job_done(int status, const aos_err_t *err, void *arg)
{
    struct fill_job *j = arg;
    if (status)
        fprintf(stderr, "fill: %s\n", aos_err_msg(err));
    j->done = status ? -1 : 1;
}

static int fill_job_finished(const void *arg)
{
    return ((const struct fill_job *)arg)->done != 0;
}

/* An idle fill stops after a step of AOS_STORE_LOGS_INDEX_STEP entries
 * when another job waits for the worker, and says how many it left; a fill
 * behind goes on for its budget all the same (a step at least); one of the
 * whole tail goes on to the end. */
static void test_store_index_yields(void **state)
{
    svc_t *s = *state;
    enum { N = 2000 };
    static aos_store_log_t rows[N];
    for (int k = 0; k < N; k++)
        rows[k] = row("yield", 2, "y", NULL);
    insert(&s->f, rows, N); /* the worker is idle: on this thread */
    struct fill_job fill[3] = {{AOS_STORE_LOGS_FILL_IDLE, 0, -1},
                               {AOS_STORE_LOGS_FILL_BEHIND, 0, -1},
                               {AOS_STORE_LOGS_FILL_ALL, 0, -1}};
    for (int i = 0; i < 3; i++) {
        gate_t g, behind;
        gate_init(&g, s->f.st);
        gate_wait_started(&g);
        assert_int_equal(aos_store_submit(s->f.st, fill_job_run, fill_job_done, &fill[i]), 0);
        gate_init(&behind, s->f.st);
        gate_open(&behind); /* waits in the queue all the same */
        gate_open(&g);
        if (wait_for(&s->loop, fill_job_finished, &fill[i], 20000) || fill[i].done < 0)
            fail_msg("fill %d failed", i);
        gate_wait_started(&behind);
        uv_run(&s->loop, UV_RUN_NOWAIT);
        gate_destroy(&g);
        gate_destroy(&behind);
    }
    assert_int_equal(fill[0].left, N - AOS_STORE_LOGS_INDEX_STEP);
    /* behind: a step at least, whatever waits, the rest within its budget */
    assert_true(fill[1].left <= N - 2 * AOS_STORE_LOGS_INDEX_STEP);
    assert_int_equal(fill[2].left, 0);
    assert_int_equal(raw_count(&s->f, "SELECT indexed_upto FROM logs_index_state"), rows[N - 1].id);
    assert_int_equal(raw_count(&s->f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'yield'"),
                     N);
}

/* A fill that may yield also ends on its own after about 1 ms of work
 * with no job waiting, after a whole step: its commit, and a request that
 * arrives meanwhile, never wait for more. What it did is complete - the
 * full-text index and the groups hold exactly the entries up to
 * indexed_upto - and the rest is found all the same. */
static void test_store_index_budget(void **state)
{
    svc_t *s = *state;
    enum { N = 8000 };
    static aos_store_log_t rows[N];
    for (int k = 0; k < N; k++)
        rows[k] = row("budget", 2, "bt", "tb");
    insert(&s->f, rows, N); /* the worker is idle: on this thread */
    struct fill_job fill = {1, 0, -1};
    assert_int_equal(aos_store_submit(s->f.st, fill_job_run, fill_job_done, &fill), 0);
    if (wait_for(&s->loop, fill_job_finished, &fill, 20000) || fill.done < 0)
        fail_msg("the fill failed");
    int64_t done = N - fill.left;
    if (fill.left <= 0 || done < AOS_STORE_LOGS_INDEX_STEP || done % AOS_STORE_LOGS_INDEX_STEP)
        fail_msg("a yielding fill indexed %lld of %d entries: not whole steps within its budget",
                 (long long)done, N);
    assert_int_equal(raw_count(&s->f, "SELECT indexed_upto FROM logs_index_state"),
                     rows[done - 1].id);
    assert_int_equal(
        raw_count(&s->f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'budget'"), done);
    assert_int_equal(raw_count(&s->f, "SELECT SUM(json_array_length(ids)) FROM logs_traces "
                                      "WHERE trace_id = 'tb'"),
                     done);
    assert_int_equal(raw_count(&s->f, "SELECT SUM(json_array_length(ids)) FROM logs_topics "
                                      "WHERE topic = 'bt'"),
                     done);
    /* the first and the last entry of the tail, by trace and by word */
    aos_store_logs_filter_t by_trace = {.trace_id = "tb", .ascending = 1, .limit = 1};
    by_trace.after_id = rows[done - 1].id;
    aos_store_logs_filter_t by_word = {.q = "budget", .limit = 1};
    by_word.after_id = rows[N - 2].id;
    const aos_store_logs_filter_t *flt[] = {&by_trace, &by_word};
    const int64_t want[] = {rows[done].id, rows[N - 1].id};
    for (int i = 0; i < 2; i++) {
        json_t *got = query(&s->f, flt[i]);
        assert_int_equal(json_array_size(got), 1);
        assert_int_equal(json_integer_value(json_object_get(json_array_get(got, 0), "id")),
                         want[i]);
        json_decref(got);
    }
    assert_fts_consistent(&s->f);
    assert_int_equal(
        raw_count(&s->f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'budget'"), N);
}

/* Idle fills write a full-text segment per step, and merge within a budget
 * of their own: over many fills the segments stay few (without the merges
 * they would reach FTS5's crisis merge, 16 on a level, merged at once
 * inside some step). */
static void test_store_index_segments_bounded(void **state)
{
    svc_t *s = *state;
    enum { N = 1000, FILLS = 40 };
    static aos_store_log_t rows[N];
    char msg[N][32];
    for (int fill = 0; fill < FILLS; fill++) {
        for (int k = 0; k < N; k++) {
            snprintf(msg[k], sizeof(msg[k]), "seg w%d x%d", k % 97, fill);
            rows[k] = row(msg[k], 2, "seg", NULL);
        }
        insert(&s->f, rows, N);
        aos_err_t err = {0, ""};
        int64_t left = 1;
        for (int i = 0; left > 0 && i < 100; i++) /* each within its budget */
            if (aos_store_logs_index(s->f.st, N, 1, &left, &err))
                fail_msg("fill: %s", aos_err_msg(&err));
        assert_int_equal(left, 0);
    }
    int64_t segs = raw_count(&s->f, "SELECT COUNT(DISTINCT segid) FROM logs_fts_idx");
    if (segs > 12)
        fail_msg("%lld full-text segments after %d fills of %d entries", (long long)segs, FILLS, N);
    assert_int_equal(raw_count(&s->f, "SELECT COUNT(*) FROM logs_fts WHERE logs_fts MATCH 'seg'"),
                     N * FILLS);
    assert_fts_consistent(&s->f);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_from_two_threads), /* first: see there */
        cmocka_unit_test(test_levels),
        cmocka_unit_test(test_timestamps),
        cmocka_unit_test(test_batch_valid),
        cmocka_unit_test(test_batch_invalid),
        cmocka_unit_test(test_reserved_sources),
        cmocka_unit_test(test_redact_patterns),
        cmocka_unit_test(test_redact_secrets_and_keys),
        cmocka_unit_test(test_redact_in_batch),
        cmocka_unit_test(test_redactor_hook),
        cmocka_unit_test(test_scan_agrees_with_tree),
        cmocka_unit_test(test_scan_leaves_the_rest),
        cmocka_unit_test(test_cursors),
        cmocka_unit_test(test_query_args),
        cmocka_unit_test(test_sql_building),
        cmocka_unit_test(test_fts_escaping),
        cmocka_unit_test(test_matcher_filters),
        T(test_store_insert_query),
        T(test_store_fts_hostile),
        T(test_matcher_agrees_with_fts),
        T(test_store_retention),
        T(test_store_trace_groups),
        T(test_store_topic_groups),
        T(test_store_fts_tail),
        T(test_store_index_chunks),
        T(test_store_index_merges),
        cmocka_unit_test_setup_teardown(test_store_index_yields, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_store_index_budget, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_store_index_segments_bounded, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_service_fill_when_idle, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_service_fill_behind, svc_setup, svc_teardown),
        cmocka_unit_test_setup_teardown(test_service_fill_far_behind, svc_setup, svc_teardown),
        T(test_store_phrase_order),
        T(test_store_time_batches),
        cmocka_unit_test(test_store_upgrade_from_0003),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
