/* test_bus.c - the event bus: envelopes (checks, whitelist, defaults), the
 * outbox in the store (ordering, filters, transactions), the 1-second fold
 * window driven by a fake clock, and the bus on a real loop: live delivery,
 * replay then live with no loss and no duplicate, filters, publishing.
 * Each test gets a fresh temporary database. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bus/bus.h"
#include "bus/internal.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    char url[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/aos-bus-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    snprintf(f->url, sizeof(f->url), "sqlite:%s/aos.db", f->dir);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static aos_store_t *open_store(fixture_t *f, uv_loop_t *loop)
{
    aos_store_t *st = NULL;
    aos_err_t err = {0};
    if (aos_store_open(&st, loop, f->url, &err) != 0)
        fail_msg("aos_store_open: %s", aos_err_msg(&err));
    return st;
}

/* A checked envelope from a json_pack format. */
static json_t *env(json_t *in)
{
    json_t *out = NULL;
    aos_err_t err = {0};
    if (aos_bus_event_check(in, &out, &err))
        fail_msg("aos_bus_event_check: %s", aos_err_msg(&err));
    json_decref(in);
    return out;
}

static json_t *list(aos_store_t *st, aos_store_event_query_t q)
{
    json_t *rows = NULL;
    aos_err_t err = {0};
    if (q.limit == 0)
        q.limit = AOS_STORE_LIST_MAX;
    if (aos_store_event_list(st, &q, &rows, &err))
        fail_msg("aos_store_event_list: %s", aos_err_msg(&err));
    return rows;
}

static int64_t row_int(json_t *rows, size_t i, const char *key)
{
    return json_integer_value(json_object_get(json_array_get(rows, i), key));
}

static const char *row_str(json_t *rows, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(rows, i), key));
}

/* Envelopes ------------------------------------------------------------------ */

static void test_whitelist_and_policy(void **state)
{
    static const char *const value[] = {
        "task.acceptance",  "task.progress.milestone", "task.receipt",
        "approval.request", "approval.decided",        "anomaly.detected",
        "recovery.start",   "recovery.done",           "agent.status",
    };
    for (size_t i = 0; i < sizeof(value) / sizeof(value[0]); i++)
        assert_true(aos_bus_is_value_type(value[i]));
    static const char *const other[] = {"task.progress", "log.entry",     "exec.start", "",
                                        "TASK.RECEIPT",  "task.receipt.x"};
    for (size_t i = 0; i < sizeof(other) / sizeof(other[0]); i++)
        assert_false(aos_bus_is_value_type(other[i]));
    assert_false(aos_bus_is_value_type(NULL));

    assert_int_equal(aos_bus_fold_window_ms("task.progress.milestone"), AOS_BUS_FOLD_MS);
    assert_int_equal(aos_bus_fold_window_ms("approval.request"), 0);
    assert_int_equal(aos_bus_fold_window_ms("anomaly.detected"), 0);
    assert_int_equal(aos_bus_fold_window_ms("task.receipt"), 0);
    assert_int_equal(aos_bus_fold_window_ms(NULL), 0);

    assert_true(aos_bus_is_severity("info"));
    assert_true(aos_bus_is_severity("critical"));
    assert_false(aos_bus_is_severity("loud"));
    assert_false(aos_bus_is_severity(NULL));
}

static void test_check_defaults(void **state)
{
    json_t *e = env(json_pack("{s:s, s:s}", "type", "task.acceptance", "trace_id", "t1"));
    assert_string_equal(json_string_value(json_object_get(e, "severity")), "info");
    assert_true(json_is_object(json_object_get(e, "payload")));
    assert_int_equal(json_object_size(json_object_get(e, "payload")), 0);
    assert_non_null(strstr(json_string_value(json_object_get(e, "card_id")), "card_"));
    assert_null(json_object_get(e, "id"));
    assert_true(json_is_null(json_object_get(e, "topic")));
    json_decref(e);

    /* milestones of one task share its progress card */
    e = env(json_pack("{s:s, s:s, s:{s:i}}", "type", "task.progress.milestone", "trace_id", "t1",
                      "payload", "step", 3));
    assert_string_equal(json_string_value(json_object_get(e, "card_id")), "progress:t1");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(e, "payload"), "step")), 3);
    json_decref(e);

    /* a card named by the publisher is kept */
    e = env(json_pack("{s:s, s:s, s:s, s:s}", "type", "approval.request", "card_id", "appr-7",
                      "severity", "warning", "project_id", "p1"));
    assert_string_equal(json_string_value(json_object_get(e, "card_id")), "appr-7");
    assert_string_equal(json_string_value(json_object_get(e, "severity")), "warning");
    assert_string_equal(json_string_value(json_object_get(e, "project_id")), "p1");
    json_decref(e);

    /* other events carry no card */
    e = env(json_pack("{s:s, s:n}", "type", "exec.step", "payload"));
    assert_true(json_is_null(json_object_get(e, "card_id")));
    json_decref(e);

    /* two value events without a card get two cards */
    json_t *a = env(json_pack("{s:s}", "type", "anomaly.detected"));
    json_t *b = env(json_pack("{s:s}", "type", "anomaly.detected"));
    assert_string_not_equal(json_string_value(json_object_get(a, "card_id")),
                            json_string_value(json_object_get(b, "card_id")));
    json_decref(a);
    json_decref(b);
}

static void test_check_rejects(void **state)
{
    char long_id[200];
    memset(long_id, 'x', 129);
    long_id[129] = '\0';
    struct {
        json_t *in;
        const char *msg;
    } bad[] = {
        {json_string("task.receipt"), "must be an object"},
        {json_pack("{s:s}", "trace_id", "t"), "'type' is required"},
        {json_pack("{s:s}", "type", "Task Receipt"), "'type' must be"},
        {json_pack("{s:s}", "type", ""), "'type' must be"},
        {json_pack("{s:i}", "type", 5), "'type' must be"},
        {json_pack("{s:s, s:s}", "type", "task.receipt", "severity", "loud"), "'severity'"},
        {json_pack("{s:s, s:[i]}", "type", "task.receipt", "payload", 1), "'payload'"},
        {json_pack("{s:s, s:s}", "type", "task.receipt", "payload", "x"), "'payload'"},
        {json_pack("{s:s, s:i}", "type", "task.receipt", "colour", 1), "unknown member 'colour'"},
        {json_pack("{s:s, s:i}", "type", "task.receipt", "id", 1), "'id' is assigned"},
        {json_pack("{s:s, s:s}", "type", "task.receipt", "created_at", "x"),
         "'created_at' is assigned"},
        {json_pack("{s:s, s:i}", "type", "task.receipt", "card_version", 2),
         "'card_version' is assigned"},
        {json_pack("{s:s, s:s}", "type", "task.receipt", "trace_id", long_id), "'trace_id'"},
        {json_pack("{s:s, s:s}", "type", "task.receipt", "trace_id", "a\nb"), "control"},
        {json_pack("{s:s, s:i}", "type", "task.receipt", "trace_id", 7), "'trace_id'"},
        {json_pack("{s:s, s:s}", "type", "task.receipt", "project_id", ""), "'project_id'"},
        {json_pack("{s:s, s:s}", "type", "exec.step", "card_id", "c1"), "only for value events"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *out = (json_t *)0x1;
        aos_err_t err = {0};
        assert_int_equal(aos_bus_event_check(bad[i].in, &out, &err), AOS_EINVAL);
        assert_null(out);
        if (!strstr(err.msg, bad[i].msg))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, bad[i].msg);
        json_decref(bad[i].in);
    }

    /* payload size is bounded */
    char *big = malloc(AOS_BUS_MAX_PAYLOAD + 1);
    memset(big, 'y', AOS_BUS_MAX_PAYLOAD);
    big[AOS_BUS_MAX_PAYLOAD] = '\0';
    json_t *in = json_pack("{s:s, s:{s:s}}", "type", "task.receipt", "payload", "blob", big);
    json_t *out = NULL;
    aos_err_t err = {0};
    assert_int_equal(aos_bus_event_check(in, &out, &err), AOS_EINVAL);
    assert_non_null(strstr(err.msg, "larger than"));
    json_decref(in);
    free(big);
}

/* A row of the events table from j: its string members as the text
 * columns (borrowed from j), id and card_version as they are. */
static aos_store_event_row_t row_of(const json_t *j)
{
    static const char *const cols[AOS_STORE_EV_NTEXT] = {
        "trace_id", "topic", "type", "severity", "payload", "created_at", "card_id", "project_id"};
    aos_store_event_row_t r;
    memset(&r, 0, sizeof(r));
    r.id = json_integer_value(json_object_get(j, "id"));
    r.card_version = json_integer_value(json_object_get(j, "card_version"));
    for (int k = 0; k < AOS_STORE_EV_NTEXT; k++) {
        json_t *v = json_object_get(j, cols[k]);
        if (json_is_string(v)) {
            r.text[k] = json_string_value(v);
            r.len[k] = json_string_length(v);
        }
    }
    return r;
}

/* A value event's frame: one data line (newlines in values stay escaped),
 * the envelope with every member, null for what the row lacks. */
static void test_sse_frame(void **state)
{
    (void)state;
    aos_bus_event_t e;
    json_t *j = json_pack("{s:I, s:s, s:s, s:s, s:s, s:I}", "id", (json_int_t)42, "type",
                          "task.receipt", "trace_id", "t9", "payload", "{\"text\":\"two\\nlines\"}",
                          "card_id", "c\"1", "card_version", (json_int_t)3);
    aos_store_event_row_t r = row_of(j);
    assert_int_equal(aos__bus_event_init(&e, &r, 1), 0);
    json_decref(j); /* the event holds copies */
    assert_int_equal(e.id, 42);
    assert_string_equal(e.type, "task.receipt");
    assert_string_equal(e.trace_id, "t9");
    assert_string_equal(e.card_id, "c\"1");
    assert_null(e.project_id);
    assert_null(e.topic);
    assert_true(e.value);
    assert_int_equal(strlen(e.sse), e.sse_len);
    const char *want = "id: 42\ndata: {\"id\":42,\"trace_id\":\"t9\",\"topic\":null,\"type\":"
                       "\"task.receipt\",\"severity\":null,\"payload\":{\"text\":\"two\\nlines\"},"
                       "\"created_at\":null,\"card_id\":\"c\\\"1\",\"card_version\":3,"
                       "\"project_id\":null}\n\n";
    assert_string_equal(e.sse, want);
    json_t *back = json_loads(e.sse + 13, JSON_DISABLE_EOF_CHECK, NULL);
    assert_non_null(back);
    assert_true(json_equal(back, aos_bus_event_json(&e)));
    json_decref(back);
    aos__bus_event_release(&e);

    /* not a value event: no stream sends it, no frame */
    j = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)43, "type", "step.finished", "payload",
                  "{}");
    r = row_of(j);
    assert_int_equal(aos__bus_event_init(&e, &r, 1), 0);
    json_decref(j);
    assert_false(e.value);
    assert_null(e.sse);
    assert_string_equal(e.payload, "{}");
    aos__bus_event_release(&e);
}

/* A row as the outbox reads it, its payload the stored text: the frame
 * holds that text where the payload goes, byte for byte what jansson dumps
 * the envelope to; aos_bus_event_json builds the envelope once, the
 * payload parsed; a stored payload that is no object reads as {}. */
static void test_sse_frame_stored_payload(void **state)
{
    (void)state;
    static const char text[] = "{\"done\":4,\"label\":\"a \\\"q\\\" \xc3\xa9\",\"cost\":0.0}";
    aos_bus_event_t e;
    json_t *j =
        json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:I}", "id", (json_int_t)7, "trace_id",
                  "t1", "topic", "orch", "type", "task.progress.milestone", "severity", "info",
                  "payload", text, "created_at", "2026-12-07T10:00:00.000Z", "card_id",
                  "progress:t1", "card_version", (json_int_t)2);
    aos_store_event_row_t r = row_of(j);
    assert_int_equal(aos__bus_event_init(&e, &r, 1), 0);
    json_t *parsed = json_pack(
        "{s:I, s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:I, s:n}", "id", (json_int_t)7, "trace_id", "t1",
        "topic", "orch", "type", "task.progress.milestone", "severity", "info", "payload",
        json_loads(text, 0, NULL), "created_at", "2026-12-07T10:00:00.000Z", "card_id",
        "progress:t1", "card_version", (json_int_t)2, "project_id");
    char *want = json_dumps(parsed, JSON_COMPACT);
    assert_int_equal(e.sse_len, strlen("id: 7\ndata: ") + strlen(want) + 2);
    assert_memory_equal(e.sse, "id: 7\ndata: ", 12);
    assert_memory_equal(e.sse + 12, want, strlen(want));
    assert_memory_equal(e.sse + 12 + strlen(want), "\n\n", 2);
    assert_int_equal(e.payload_len, strlen(text));
    assert_string_equal(e.payload, text);
    assert_null(e.envelope);
    const json_t *env = aos_bus_event_json(&e);
    assert_ptr_equal(env, e.envelope);
    assert_true(json_equal(env, parsed));
    assert_ptr_equal(aos_bus_event_json(&e), env); /* once */
    free(want);
    json_decref(parsed);
    json_decref(j);
    aos__bus_event_release(&e);

    j = json_pack("{s:I, s:s, s:s}", "id", (json_int_t)8, "type", "x.y", "payload", "[1]");
    r = row_of(j);
    assert_int_equal(aos__bus_event_init(&e, &r, 0), 0);
    json_decref(j);
    env = aos_bus_event_json(&e);
    assert_true(json_is_object(json_object_get(env, "payload")));
    assert_int_equal(json_object_size(json_object_get(env, "payload")), 0);
    assert_true(json_is_null(json_object_get(env, "card_version")));
    aos__bus_event_release(&e);
}

/* The outbox ------------------------------------------------------------------ */

static void append(aos_store_t *st, json_t *e, int64_t now, int64_t *id, int64_t *version)
{
    aos_err_t err = {0};
    if (aos__bus_append_checked(st, e, now, id, version, &err))
        fail_msg("append: %s", aos_err_msg(&err));
    json_decref(e);
}

static void test_outbox_order_and_filters(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0};
    int64_t last = -1, v;
    assert_int_equal(aos_store_event_last_id(st, &last, &err), 0);
    assert_int_equal(last, 0);

    int64_t ids[8];
    const char *types[8] = {"task.acceptance", "exec.step",    "anomaly.detected",
                            "exec.step",       "task.receipt", "approval.request",
                            "exec.step",       "recovery.done"};
    for (int i = 0; i < 8; i++) {
        append(st,
               env(json_pack("{s:s, s:s, s:s, s:{s:i}}", "type", types[i], "trace_id",
                             i % 2 ? "odd" : "even", "project_id", i < 4 ? "p1" : "p2", "payload",
                             "i", i)),
               1000 + i, &ids[i], &v);
        assert_true(ids[i] > 0);
        if (i)
            assert_true(ids[i] > ids[i - 1]);
        assert_int_equal(v, aos_bus_is_value_type(types[i]) ? 1 : 0);
    }
    assert_int_equal(aos_store_event_last_id(st, &last, &err), 0);
    assert_int_equal(last, ids[7]);

    /* ascending after an id */
    json_t *rows = list(st, (aos_store_event_query_t){.after_id = ids[2]});
    assert_int_equal(json_array_size(rows), 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(row_int(rows, i, "id"), ids[3 + i]);
    assert_string_equal(row_str(rows, 0, "type"), "exec.step");
    assert_int_equal(json_integer_value(
                         json_object_get(json_object_get(json_array_get(rows, 1), "payload"), "i")),
                     4);
    assert_non_null(row_str(rows, 0, "created_at"));
    json_decref(rows);

    /* value events only, by trace, by project, paged */
    rows = list(st, (aos_store_event_query_t){.value_only = 1});
    assert_int_equal(json_array_size(rows), 5);
    json_decref(rows);
    rows = list(st, (aos_store_event_query_t){.value_only = 1, .trace_id = "even"});
    assert_int_equal(json_array_size(rows), 3); /* 0 2 4 6: 6 is exec.step */
    json_decref(rows);
    rows = list(st, (aos_store_event_query_t){.value_only = 1, .project_id = "p2"});
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(row_int(rows, 0, "id"), ids[4]);
    json_decref(rows);
    rows = list(st, (aos_store_event_query_t){.limit = 3});
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(row_int(rows, 2, "id"), ids[2]);
    json_decref(rows);

    /* newest first, before an id */
    rows = list(st, (aos_store_event_query_t){.newest_first = 1, .value_only = 1, .limit = 2});
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(row_int(rows, 0, "id"), ids[7]);
    assert_int_equal(row_int(rows, 1, "id"), ids[5]);
    json_decref(rows);
    rows = list(st, (aos_store_event_query_t){
                        .newest_first = 1, .before_id = ids[5], .value_only = 1, .limit = 10});
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(row_int(rows, 0, "id"), ids[4]);
    assert_int_equal(row_int(rows, 2, "id"), ids[0]);
    json_decref(rows);

    json_t *bad = NULL;
    assert_int_equal(aos_store_event_list(st, &(aos_store_event_query_t){.limit = 0}, &bad, &err),
                     AOS_EINVAL);
    aos_store_close(st);
}

static json_t *milestone(const char *trace, int step)
{
    return env(json_pack("{s:s, s:s, s:{s:i}}", "type", "task.progress.milestone", "trace_id",
                         trace, "payload", "step", step));
}

static int payload_step(json_t *rows, size_t i)
{
    return (int)json_integer_value(
        json_object_get(json_object_get(json_array_get(rows, i), "payload"), "step"));
}

static void test_fold_window_fake_clock(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0};
    int64_t id, v, due;
    int n;
    const int64_t t0 = 1700000000000;

    append(st, milestone("t1", 0), t0, &id, &v); /* leading edge: at once */
    assert_true(id > 0);
    assert_int_equal(v, 1);
    for (int i = 1; i <= 9; i++) {
        append(st, milestone("t1", i), t0 + i * 100, &id, &v);
        assert_int_equal(id, 0); /* folded */
        assert_int_equal(v, 0);
    }
    /* another card is not affected by t1's window */
    append(st, milestone("t2", 0), t0 + 500, &id, &v);
    assert_true(id > 0);

    assert_int_equal(aos_store_event_flush(st, t0 + 999, NULL, &n, &due, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(due, t0 + 1000);
    assert_int_equal(aos_store_event_flush(st, t0 + 1000, NULL, &n, &due, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(due, 0);

    json_t *rows = list(st, (aos_store_event_query_t){.trace_id = "t1"});
    assert_int_equal(json_array_size(rows), 2);
    assert_string_equal(row_str(rows, 1, "card_id"), "progress:t1");
    assert_int_equal(row_int(rows, 0, "card_version"), 1);
    assert_int_equal(row_int(rows, 1, "card_version"), 2);
    assert_int_equal(payload_step(rows, 0), 0);
    assert_int_equal(payload_step(rows, 1), 9); /* the final state of the burst */
    json_decref(rows);

    /* the window restarts at the flush: folded again, then a milestone after
     * the window supersedes the pending fold */
    append(st, milestone("t1", 10), t0 + 1500, &id, &v);
    assert_int_equal(id, 0);
    append(st, milestone("t1", 11), t0 + 2100, &id, &v);
    assert_true(id > 0);
    assert_int_equal(v, 3);
    assert_int_equal(aos_store_event_flush(st, t0 + 5000, NULL, &n, &due, &err), 0);
    assert_int_equal(n, 0);
    rows = list(st, (aos_store_event_query_t){.trace_id = "t1"});
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(payload_step(rows, 2), 11);
    json_decref(rows);

    /* at most one version per card per window over a long burst */
    int64_t t = t0 + 10000;
    for (int i = 0; i < 1000; i++, t += 5) {
        append(st, milestone("t3", i), t, &id, &v);
        assert_int_equal(aos_store_event_flush(st, t, NULL, NULL, NULL, &err), 0);
    }
    assert_int_equal(aos_store_event_flush(st, t + 1000, NULL, &n, &due, &err), 0);
    rows = list(st, (aos_store_event_query_t){.trace_id = "t3"});
    assert_true(json_array_size(rows) >= 5 && json_array_size(rows) <= 7);
    assert_int_equal(payload_step(rows, json_array_size(rows) - 1), 999);
    for (size_t i = 0; i < json_array_size(rows); i++)
        assert_int_equal(row_int(rows, i, "card_version"), (int64_t)i + 1);
    json_decref(rows);
    aos_store_close(st);
}

static void test_pending_progress_precedes_receipt(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    int64_t id, v;
    const int64_t t0 = 1700000000000;
    append(st, milestone("t1", 1), t0, &id, &v);
    append(st, milestone("t1", 2), t0 + 10, &id, &v);
    assert_int_equal(id, 0);
    append(st, milestone("t2", 1), t0 + 10, &id, &v);
    append(st, milestone("t2", 2), t0 + 20, &id, &v);
    assert_int_equal(id, 0);
    /* a receipt of t1 writes t1's pending progress first, and only t1's; an
     * approval request is never delayed */
    append(st, env(json_pack("{s:s, s:s}", "type", "task.receipt", "trace_id", "t1")), t0 + 20, &id,
           &v);
    assert_true(id > 0);
    json_t *rows = list(st, (aos_store_event_query_t){.value_only = 1});
    assert_int_equal(json_array_size(rows), 4);
    assert_string_equal(row_str(rows, 2, "type"), "task.progress.milestone");
    assert_string_equal(row_str(rows, 2, "trace_id"), "t1");
    assert_int_equal(payload_step(rows, 2), 2);
    assert_string_equal(row_str(rows, 3, "type"), "task.receipt");
    json_decref(rows);
    aos_store_close(st);
}

/* While nothing is folded the store skips a value event's flush of its
 * trace and the delete of its card's fold (events.c): a fold made after
 * the pump's flush found none still goes out before the receipt, and a
 * fold whose flush was rolled back is still there for the next one. */
static json_t *receipt(const char *trace)
{
    return env(json_pack("{s:s, s:s}", "type", "task.receipt", "trace_id", trace));
}

static int receipt_undone(aos_store_t *st, void *arg, aos_err_t *err)
{
    int64_t id, v;
    json_t *e = receipt(arg);
    int rc = aos__bus_append_checked(st, e, 1700000000070, &id, &v, err);
    json_decref(e);
    return rc ? rc : aos_err_set(err, AOS_ECONFLICT, "undone");
}

static void test_folds_after_an_empty_flush(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0};
    int64_t id, v, due = -1;
    int n = -1;
    const int64_t t0 = 1700000000000;
    assert_int_equal(aos_store_event_flush(st, t0, NULL, &n, &due, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(due, 0); /* nothing folded */
    append(st, milestone("t1", 1), t0, &id, &v);
    assert_true(id > 0);
    append(st, milestone("t1", 2), t0 + 10, &id, &v);
    assert_int_equal(id, 0); /* folded */
    append(st, receipt("t1"), t0 + 20, &id, &v);
    json_t *rows = list(st, (aos_store_event_query_t){.trace_id = "t1"});
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(payload_step(rows, 1), 2);
    assert_string_equal(row_str(rows, 2, "type"), "task.receipt");
    json_decref(rows);

    assert_int_equal(aos_store_event_flush(st, t0 + 30, NULL, &n, &due, &err), 0);
    assert_int_equal(due, 0);
    append(st, milestone("t2", 1), t0 + 40, &id, &v);
    append(st, milestone("t2", 2), t0 + 50, &id, &v);
    assert_int_equal(id, 0);
    /* the receipt flushes t2's fold in a transaction that is undone */
    assert_int_equal(aos_store_tx(st, receipt_undone, "t2", &err), AOS_ECONFLICT);
    assert_int_equal(aos_store_event_flush(st, t0 + 60, NULL, &n, &due, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(due, t0 + 1040); /* still folded */
    append(st, receipt("t2"), t0 + 70, &id, &v);
    rows = list(st, (aos_store_event_query_t){.trace_id = "t2"});
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(payload_step(rows, 1), 2);
    assert_string_equal(row_str(rows, 2, "type"), "task.receipt");
    json_decref(rows);
    assert_int_equal(aos_store_event_flush(st, t0 + 5000, NULL, &n, &due, &err), 0);
    assert_int_equal(n, 0);
    assert_int_equal(due, 0);
    aos_store_close(st);
}

struct tx_arg {
    int fail;
    int64_t id;
};

static int tx_body(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct tx_arg *a = arg;
    json_t *e = json_pack("{s:s, s:s}", "type", "task.acceptance", "trace_id", "tx");
    int rc = aos_bus_append_tx(st, e, &a->id, err);
    json_decref(e);
    if (rc)
        return rc;
    /* the state change that goes with the event */
    json_t *v = json_string("accepted");
    rc = aos_store_setting_put(st, "tx.state", v, err);
    json_decref(v);
    if (rc == 0 && a->fail)
        return aos_err_set(err, AOS_ECONFLICT, "changed our mind");
    return rc;
}

static void test_append_tx_joins_the_transaction(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0};
    int64_t last;
    struct tx_arg a = {1, 0};
    assert_int_equal(aos_store_tx(st, tx_body, &a, &err), AOS_ECONFLICT);
    assert_true(a.id > 0); /* it had an id inside the transaction ... */
    assert_int_equal(aos_store_event_last_id(st, &last, &err), 0);
    assert_int_equal(last, 0); /* ... and is gone with it */

    a.fail = 0;
    assert_int_equal(aos_store_tx(st, tx_body, &a, &err), 0);
    assert_int_equal(aos_store_event_last_id(st, &last, &err), 0);
    assert_int_equal(last, a.id);

    json_t *bad = json_pack("{s:s}", "type", "No Such Type");
    assert_int_equal(aos_bus_append_tx(st, bad, NULL, &err), AOS_EINVAL);
    json_decref(bad);
    aos_store_close(st);
}

struct own_arg {
    int own;    /* 0: a copy, 1: given up, 2: given up as columns and payload */
    json_t *ev; /* given up when own */
    int64_t id;
};

static int own_body(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct own_arg *a = arg;
    if (a->own == 2) {
#define S(k) json_string_value(json_object_get(a->ev, k))
        aos_store_event_in_t in = {.type = S("type"),
                                   .trace_id = S("trace_id"),
                                   .topic = S("topic"),
                                   .severity = S("severity"),
                                   .card_id = S("card_id"),
                                   .project_id = S("project_id")};
#undef S
        return aos_bus_append_in_tx(st, &in, json_object_get(a->ev, "payload"), &a->id, err);
    }
    return a->own ? aos_bus_append_tx_own(st, a->ev, &a->id, err)
                  : aos_bus_append_tx(st, a->ev, &a->id, err);
}

/* An event appended by a caller that gives it up (the orchestrator's
 * commit), as an envelope or as its columns, is stored as one appended
 * with a copy is: its payload redacted, as compact JSON text, the same
 * defaults (severity, a value event's card) and the same refusals (a
 * payload over the limit, a card on a step event, a bad type). */
static void test_append_tx_own_stores_what_a_copy_would(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0};
    for (int own = 0; own < 3; own++) {
        json_t *e =
            json_pack("{s:s, s:s, s:s, s:{s:s, s:s, s:[i, {s:s}], s:b}}", "type", "step.finished",
                      "trace_id", "own", "project_id", "p1", "payload", "step", "s1", "api_key",
                      "k-123", "output", 1, "note", "sent Bearer abcdefgh12345678", "ok", 1);
        struct own_arg a = {own, e, 0};
        assert_int_equal(aos_store_tx(st, own_body, &a, &err), 0);
        assert_true(a.id > 0);
        json_decref(e);
    }
    for (int own = 0; own < 3; own++) { /* a milestone's card: progress:<trace> */
        char trace[16];
        snprintf(trace, sizeof(trace), "mile%d", own);
        json_t *e =
            json_pack("{s:s, s:s, s:s, s:{s:s}}", "type", "task.progress.milestone", "trace_id",
                      trace, "topic", "task", "payload", "label", "password=hunter22");
        struct own_arg a = {own, e, 0};
        assert_int_equal(aos_store_tx(st, own_body, &a, &err), 0);
        json_decref(e);
    }
    aos_store_event_query_t q = {.after_id = 0, .limit = 10, .raw_payload = 1};
    json_t *rows = NULL;
    assert_int_equal(aos_store_event_list(st, &q, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 6);
    const char *want = "{\"step\":\"s1\",\"api_key\":\"[REDACTED]\",\"output\":[1,{\"note\":"
                       "\"sent Bearer [REDACTED]\"}],\"ok\":true}";
    for (size_t i = 0; i < 6; i++) {
        json_t *r = json_array_get(rows, i);
        const char *p = json_string_value(json_object_get(r, "payload"));
        if (i < 3) {
            assert_string_equal(p, want);
            assert_string_equal(json_string_value(json_object_get(r, "project_id")), "p1");
            assert_true(json_is_null(json_object_get(r, "card_id")));
        } else {
            char card[32];
            snprintf(card, sizeof(card), "progress:mile%zu", i - 3);
            assert_null(strstr(p, "hunter22"));
            assert_non_null(strstr(p, "[REDACTED]"));
            assert_string_equal(json_string_value(json_object_get(r, "card_id")), card);
            assert_int_equal(json_integer_value(json_object_get(r, "card_version")), 1);
        }
        assert_string_equal(json_string_value(json_object_get(r, "severity")), "info");
    }
    json_decref(rows);

    for (int own = 0; own < 3; own++) {
        char *big = malloc(AOS_BUS_MAX_PAYLOAD);
        assert_non_null(big);
        memset(big, 'y', AOS_BUS_MAX_PAYLOAD - 1);
        big[AOS_BUS_MAX_PAYLOAD - 1] = '\0';
        json_t *e = json_pack("{s:s, s:{s:s}}", "type", "step.finished", "payload", "b", big);
        free(big);
        struct own_arg a = {own, e, 0};
        assert_int_equal(aos_store_tx(st, own_body, &a, &err), AOS_EINVAL);
        assert_non_null(strstr(err.msg, "larger"));
        json_decref(e);
        e = json_pack("{s:s, s:s}", "type", "step.finished", "card_id", "c1");
        a.ev = e;
        assert_int_equal(aos_store_tx(st, own_body, &a, &err), AOS_EINVAL);
        assert_non_null(strstr(err.msg, "only for value events"));
        json_decref(e);
        e = json_pack("{s:s}", "type", "Step Finished");
        a.ev = e;
        assert_int_equal(aos_store_tx(st, own_body, &a, &err), AOS_EINVAL);
        json_decref(e);
    }
    aos_store_close(st);
}

/* A value event appended without asking for its card's version (the
 * orchestrator's) stores the version all the same: each append of one
 * card, whatever the path, is its next version. */
static void test_card_versions_unasked(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0};
    for (int i = 0; i < 6; i++) {
        json_t *e = json_pack("{s:s, s:s, s:s, s:{s:i}}", "type", "task.receipt", "trace_id", "cv",
                              "card_id", "task:cv", "payload", "n", i);
        struct own_arg a = {i % 3, e, 0};
        assert_int_equal(aos_store_tx(st, own_body, &a, &err), 0);
        json_decref(e);
    }
    aos_store_event_in_t in = {.type = "task.receipt", .trace_id = "cv", .card_id = "task:cv"};
    int64_t id = 0, version = 0; /* asked for: read back */
    assert_int_equal(aos_store_event_put(st, &in, 0, 0, &id, &version, &err), 0);
    assert_int_equal(version, 7);
    aos_store_event_query_t q = {.after_id = 0, .limit = 10, .raw_payload = 1};
    json_t *rows = NULL;
    assert_int_equal(aos_store_event_list(st, &q, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 7);
    for (size_t i = 0; i < 7; i++)
        assert_int_equal(
            json_integer_value(json_object_get(json_array_get(rows, i), "card_version")), i + 1);
    json_decref(rows);
    aos_store_close(st);
}

struct n_arg {
    const aos_store_event_in_t *ev;
    json_t **payload;
    size_t n;
};

static int n_body(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct n_arg *a = arg;
    return aos_bus_append_in_n_tx(st, a->ev, a->payload, a->n, err);
}

/* Step events written several to a statement (the orchestrator's commit)
 * come out as one by one: in their order, ids ascending, each payload
 * redacted; a value event among them, a bad one or too many refuse them
 * all and write nothing. */
static void test_append_n_in_order(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0};
    enum { N = 6 };
    aos_store_event_in_t ev[AOS_BUS_APPEND_N_MAX + 1];
    json_t *payload[AOS_BUS_APPEND_N_MAX + 1];
    char steps[N][8];
    for (size_t i = 0; i < N; i++) {
        snprintf(steps[i], sizeof(steps[i]), "s%zu", i);
        ev[i] = (aos_store_event_in_t){.type = i % 2 ? "step.finished" : "step.started",
                                       .trace_id = "n1",
                                       .topic = "task",
                                       .project_id = i == 3 ? "p" : NULL};
        payload[i] =
            json_pack("{s:s, s:s}", "step", steps[i], "error", "token=abcdefghijklmnop1234");
    }
    struct n_arg a = {ev, payload, N};
    assert_int_equal(aos_store_tx(st, n_body, &a, &err), 0);
    aos_store_event_query_t q = {.after_id = 0, .limit = 20, .raw_payload = 1};
    json_t *rows = NULL;
    assert_int_equal(aos_store_event_list(st, &q, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), N);
    for (size_t i = 0; i < N; i++) {
        json_t *r = json_array_get(rows, i);
        char want[96];
        snprintf(want, sizeof(want), "{\"step\":\"s%zu\",\"error\":\"token=[REDACTED]\"}", i);
        assert_string_equal(json_string_value(json_object_get(r, "payload")), want);
        assert_string_equal(json_string_value(json_object_get(r, "type")), ev[i].type);
        assert_string_equal(json_string_value(json_object_get(r, "severity")), "info");
        assert_true(json_is_null(json_object_get(r, "card_id")));
        assert_int_equal(json_is_null(json_object_get(r, "project_id")), i != 3);
        if (i > 0)
            assert_true(json_integer_value(json_object_get(r, "id")) >
                        json_integer_value(json_object_get(json_array_get(rows, i - 1), "id")));
    }
    json_decref(rows);

    /* refused, all of them: a value event, a bad type, too many */
    ev[2].type = "task.receipt";
    assert_int_equal(aos_store_tx(st, n_body, &a, &err), AOS_EINVAL);
    ev[2].type = "Bad Type";
    assert_int_equal(aos_store_tx(st, n_body, &a, &err), AOS_EINVAL);
    ev[2].type = "step.started";
    for (size_t i = N; i <= AOS_BUS_APPEND_N_MAX; i++) {
        ev[i] = ev[0];
        payload[i] = NULL;
    }
    a.n = AOS_BUS_APPEND_N_MAX + 1;
    assert_int_equal(aos_store_tx(st, n_body, &a, &err), AOS_EINVAL);
    int64_t last = 0;
    assert_int_equal(aos_store_event_last_id(st, &last, &err), 0);
    assert_int_equal(last, N);
    for (size_t i = 0; i < N; i++)
        json_decref(payload[i]);
    aos_store_close(st);
}

/* The bus on a loop ------------------------------------------------------------ */

typedef struct {
    int64_t ids[4096];
    int n;
    int ended;
    int dups;      /* an id not above the previous one */
    int live_n;    /* delivered with replay == 0 */
    int not_ready; /* ready() answers 0 this many more times */
    int last_step;
    int versions;
    int stop_after; /* unsubscribe itself after this many (0: never) */
    aos_bus_sub_t *sub;
} rec_t;

static void on_ev(aos_bus_sub_t *sub, const aos_bus_event_t *ev, void *data)
{
    rec_t *r = data;
    if (!ev) {
        r->ended = 1;
        return;
    }
    if (r->n && ev->id <= r->ids[r->n - 1])
        r->dups++;
    if (r->n < 4096)
        r->ids[r->n++] = ev->id;
    if (!ev->replay)
        r->live_n++;
    const json_t *env = aos_bus_event_json(ev);
    json_t *p = json_object_get(env, "payload");
    r->last_step = (int)json_integer_value(json_object_get(p, "step"));
    r->versions = (int)json_integer_value(json_object_get(env, "card_version"));
    if (r->stop_after && r->n == r->stop_after)
        aos_bus_unsubscribe(sub);
}

static int rec_ready(void *data)
{
    rec_t *r = data;
    if (r->not_ready > 0) {
        r->not_ready--;
        return 0;
    }
    return 1;
}

typedef struct {
    int done;
    int status;
    json_t *results;
} pub_t;

static void on_published(int status, const aos_err_t *err, const json_t *results, void *ctx)
{
    pub_t *p = ctx;
    p->done++;
    p->status = status;
    json_decref(p->results);
    p->results = results ? json_deep_copy(results) : NULL;
}

static void tick(uv_timer_t *t)
{
}

/* Runs the loop until *flag >= want or ms pass; returns the flag. */
static int run_until(uv_loop_t *loop, int *flag, int want, int ms)
{
    uv_timer_t t;
    uv_timer_init(loop, &t);
    uv_timer_start(&t, tick, 5, 5);
    uint64_t end = uv_now(loop) + (uint64_t)ms;
    while (*flag < want && uv_now(loop) < end)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return *flag;
}

static json_t *batch(int from, int n, const char *trace_even, const char *trace_odd)
{
    json_t *a = json_array();
    for (int i = from; i < from + n; i++)
        json_array_append_new(a, json_pack("{s:s, s:s, s:{s:i}}", "type",
                                           i % 3 == 2 ? "exec.step" : "task.acceptance", "trace_id",
                                           i % 2 ? trace_odd : trace_even, "payload", "step", i));
    return a;
}

static void publish(aos_bus_t *bus, uv_loop_t *loop, json_t *events, pub_t *p)
{
    aos_err_t err = {0};
    int before = p->done;
    if (aos_bus_publish(bus, events, on_published, p, &err))
        fail_msg("publish: %s", aos_err_msg(&err));
    run_until(loop, &p->done, before + 1, 5000);
    assert_int_equal(p->done, before + 1);
    assert_int_equal(p->status, 0);
}

/* A loop, a store on it and a bus polling every poll_ms. */
typedef struct {
    uv_loop_t loop;
    aos_store_t *st;
    aos_bus_t *bus;
} rig_t;

static void rig_start(rig_t *g, fixture_t *f, unsigned poll_ms)
{
    aos_err_t err = {0};
    assert_int_equal(uv_loop_init(&g->loop), 0);
    g->st = open_store(f, &g->loop);
    aos_bus_cfg_t cfg = {&g->loop, g->st, NULL, poll_ms, 0, 0};
    if (aos_bus_new(&g->bus, &cfg, &err))
        fail_msg("aos_bus_new: %s", aos_err_msg(&err));
}

static void rig_stop(rig_t *g)
{
    aos_bus_free(g->bus);
    aos_store_close(g->st);
    uv_run(&g->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&g->loop), 0);
}

static void test_bus_replay_then_live(void **state)
{
    rig_t g;
    rig_start(&g, *state, 50);
    aos_bus_t *bus = g.bus;
    pub_t p = {0};

    /* 900 events before anyone listens: 600 value events */
    publish(bus, &g.loop, batch(0, 900, "even", "odd"), &p);
    assert_int_equal(json_array_size(p.results), 900);
    int64_t first = json_integer_value(json_object_get(json_array_get(p.results, 0), "id"));
    int64_t mid = json_integer_value(json_object_get(json_array_get(p.results, 449), "id"));
    run_until(&g.loop, &(int){0}, 1, 100); /* the pump catches up */
    assert_true(aos_bus_last_id(bus) >= mid);

    rec_t *live = calloc(1, sizeof(*live)), *all = calloc(1, sizeof(*all));
    rec_t *from_mid = calloc(1, sizeof(*from_mid)), *odd = calloc(1, sizeof(*odd));
    rec_t *quitter = calloc(1, sizeof(*quitter));
    all->not_ready = 3; /* its replay waits for it a few times */
    quitter->stop_after = 10;
    aos_bus_filter_t fl = {NULL, NULL, 1, -1};
    assert_int_equal(aos_bus_subscribe(bus, &fl, on_ev, NULL, live, &live->sub), 0);
    aos_bus_filter_t fa = {NULL, NULL, 1, 0};
    assert_int_equal(aos_bus_subscribe(bus, &fa, on_ev, rec_ready, all, &all->sub), 0);
    aos_bus_filter_t fm = {NULL, NULL, 0, mid};
    assert_int_equal(aos_bus_subscribe(bus, &fm, on_ev, NULL, from_mid, &from_mid->sub), 0);
    aos_bus_filter_t fo = {"odd", NULL, 1, 0};
    assert_int_equal(aos_bus_subscribe(bus, &fo, on_ev, NULL, odd, &odd->sub), 0);
    aos_bus_filter_t fq = {NULL, NULL, 0, 0};
    assert_int_equal(aos_bus_subscribe(bus, &fq, on_ev, NULL, quitter, &quitter->sub), 0);
    assert_int_equal(aos_bus_subscribers(bus), 5);

    /* more arrive while they replay */
    for (int k = 0; k < 3; k++)
        publish(bus, &g.loop, batch(900 + k * 100, 100, "even", "odd"), &p);
    run_until(&g.loop, &all->n, 800, 5000);
    run_until(&g.loop, &from_mid->n, 750, 5000);

    /* every value event exactly once, in order: 600 + 200 */
    assert_int_equal(all->n, 800);
    assert_int_equal(all->dups, 0);
    assert_int_equal(all->ids[0], first);
    json_t *rows = list(g.st, (aos_store_event_query_t){.value_only = 1});
    assert_int_equal(json_array_size(rows), 800);
    for (int i = 0; i < 800; i++)
        assert_int_equal(all->ids[i], row_int(rows, (size_t)i, "id"));
    json_decref(rows);
    /* every event after mid: 450 + 300 */
    assert_int_equal(from_mid->n, 750);
    assert_int_equal(from_mid->dups, 0);
    assert_int_equal(from_mid->ids[0], mid + 1);
    /* the live one only the 200 new value events, all live */
    assert_int_equal(live->n, 200);
    assert_int_equal(live->live_n, 200);
    /* trace filter: odd value events (i odd, i % 3 != 2) */
    int want_odd = 0;
    for (int i = 0; i < 1200; i++)
        want_odd += (i % 2 == 1 && i % 3 != 2);
    run_until(&g.loop, &odd->n, want_odd, 2000);
    assert_int_equal(odd->n, want_odd);
    assert_int_equal(odd->dups, 0);
    /* unsubscribing from the callback stops delivery at once */
    assert_int_equal(quitter->n, 10);
    assert_int_equal(aos_bus_subscribers(bus), 4);

    /* freeing the bus ends the others */
    rig_stop(&g);
    assert_true(live->ended && all->ended && from_mid->ended && odd->ended);
    assert_false(quitter->ended);
    json_decref(p.results);
    free(live);
    free(all);
    free(from_mid);
    free(odd);
    free(quitter);
}

/* Commits one event through a second connection, as another process would. */
static void append_elsewhere(fixture_t *f, int step)
{
    aos_err_t err = {0};
    aos_store_t *other = open_store(f, NULL);
    json_t *e = json_pack("{s:s, s:{s:i}}", "type", "recovery.start", "payload", "step", step);
    assert_int_equal(aos_bus_append_tx(other, e, NULL, &err), 0);
    json_decref(e);
    aos_store_close(other);
}

static void test_bus_sees_rows_of_others(void **state)
{
    fixture_t *f = *state;
    rig_t g;
    rig_start(&g, f, 600000); /* no poll to speak of: only a kick delivers */
    aos_bus_t *bus = g.bus;
    aos_err_t err = {0};
    rec_t *r = calloc(1, sizeof(*r));
    aos_bus_filter_t fl = {NULL, NULL, 1, -1};
    assert_int_equal(aos_bus_subscribe(bus, &fl, on_ev, NULL, r, &r->sub), 0);
    run_until(&g.loop, &(int){0}, 1, 100); /* the bus's first read is done */
    append_elsewhere(f, 76);
    run_until(&g.loop, &r->n, 1, 200);
    assert_int_equal(r->n, 0);
    aos_bus_kick(bus);
    run_until(&g.loop, &r->n, 1, 2000);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->last_step, 76);
    aos_bus_free(bus);

    /* with a poll, rows committed elsewhere arrive without a kick */
    aos_bus_cfg_t cfg = {&g.loop, g.st, NULL, 30, 0, 0};
    assert_int_equal(aos_bus_new(&bus, &cfg, &err), 0);
    g.bus = bus;
    memset(r, 0, sizeof(*r));
    assert_int_equal(aos_bus_subscribe(bus, &fl, on_ev, NULL, r, &r->sub), 0);
    append_elsewhere(f, 77);
    run_until(&g.loop, &r->n, 1, 3000);
    assert_int_equal(r->n, 1);
    assert_int_equal(r->last_step, 77);
    rig_stop(&g);
    free(r);
}

static void append_typed(fixture_t *f, const char *type, int step)
{
    aos_err_t err = {0};
    aos_store_t *other = open_store(f, NULL);
    json_t *e =
        json_pack("{s:s, s:s, s:{s:i}}", "type", type, "trace_id", "vt", "payload", "step", step);
    assert_int_equal(aos_bus_append_tx(other, e, NULL, &err), 0);
    json_decref(e);
    aos_store_close(other);
}

/* While every subscription takes value events only, the pump reads only
 * those; one that takes every type, live from then on or replaying from
 * the start, gets every event after its cursor all the same, in order,
 * once. */
static void test_bus_value_only_pump(void **state)
{
    fixture_t *f = *state;
    rig_t g;
    rig_start(&g, f, 600000); /* only a kick delivers */
    rec_t *v = calloc(1, sizeof(*v)), *a = calloc(1, sizeof(*a)), *r = calloc(1, sizeof(*r));
    aos_bus_filter_t fv = {NULL, NULL, 1, -1}, fa = {NULL, NULL, 0, -1}, fr = {NULL, NULL, 0, 0};
    assert_int_equal(aos_bus_subscribe(g.bus, &fv, on_ev, NULL, v, &v->sub), 0);
    run_until(&g.loop, &(int){0}, 1, 100);
    append_typed(f, "step.finished", 1);
    append_typed(f, "recovery.start", 2);
    aos_bus_kick(g.bus);
    run_until(&g.loop, &v->n, 1, 2000);
    assert_int_equal(v->n, 1);
    assert_int_equal(v->last_step, 2);

    assert_int_equal(aos_bus_subscribe(g.bus, &fa, on_ev, NULL, a, &a->sub), 0);
    assert_int_equal(aos_bus_subscribe(g.bus, &fr, on_ev, NULL, r, &r->sub), 0);
    append_typed(f, "step.finished", 3);
    append_typed(f, "recovery.start", 4);
    aos_bus_kick(g.bus);
    run_until(&g.loop, &a->n, 2, 2000);
    run_until(&g.loop, &r->n, 4, 2000);
    run_until(&g.loop, &v->n, 2, 2000);
    assert_int_equal(a->n, 2); /* step 3 and value 4: after its cursor */
    assert_int_equal(a->last_step, 4);
    assert_int_equal(r->n, 4); /* replayed from the start: all four */
    assert_int_equal(r->last_step, 4);
    assert_int_equal(v->n, 2);
    assert_int_equal(v->last_step, 4);
    assert_int_equal(a->dups + r->dups + v->dups, 0);

    /* every-type subscriptions gone: value events only again */
    aos_bus_unsubscribe(a->sub);
    aos_bus_unsubscribe(r->sub);
    append_typed(f, "step.finished", 5);
    append_typed(f, "recovery.start", 6);
    aos_bus_kick(g.bus);
    run_until(&g.loop, &v->n, 3, 2000);
    assert_int_equal(v->n, 3);
    assert_int_equal(v->last_step, 6);
    rig_stop(&g);
    free(v);
    free(a);
    free(r);
}

static void test_bus_folds_a_burst(void **state)
{
    rig_t g;
    rig_start(&g, *state, 1000);
    aos_bus_t *bus = g.bus;
    aos_err_t err = {0};
    rec_t *r = calloc(1, sizeof(*r));
    aos_bus_filter_t fl = {"job-1", NULL, 1, -1};
    assert_int_equal(aos_bus_subscribe(bus, &fl, on_ev, NULL, r, &r->sub), 0);

    pub_t p = {0};
    for (int i = 0; i < 200; i++) {
        json_t *m = json_pack("{s:s, s:s, s:{s:i}}", "type", "task.progress.milestone", "trace_id",
                              "job-1", "payload", "step", i);
        assert_int_equal(aos_bus_publish(bus, m, on_published, &p, &err), 0);
    }
    /* an approval in the middle of the burst is not held back */
    json_t *a = json_pack("{s:s, s:s, s:s}", "type", "approval.request", "trace_id", "job-1",
                          "card_id", "approve-1");
    assert_int_equal(aos_bus_publish(bus, a, on_published, &p, &err), 0);
    run_until(&g.loop, &p.done, 201, 5000);
    assert_int_equal(p.done, 201);
    /* the approval flushed the pending progress ahead of itself */
    run_until(&g.loop, &r->n, 3, 2000);
    assert_int_equal(r->n, 3);
    assert_int_equal(r->last_step, 0); /* the approval has no step */
    /* nothing more arrives: the burst is fully delivered, folded */
    run_until(&g.loop, &(int){0}, 1, 1300);
    assert_int_equal(r->n, 3);

    /* a burst with no other event: the trailing edge comes by the timer */
    for (int i = 0; i < 100; i++) {
        json_t *m = json_pack("{s:s, s:s, s:{s:i}}", "type", "task.progress.milestone", "trace_id",
                              "job-1", "payload", "step", 1000 + i);
        assert_int_equal(aos_bus_publish(bus, m, on_published, &p, &err), 0);
    }
    run_until(&g.loop, &p.done, 301, 5000);
    int n0 = r->n;
    run_until(&g.loop, &r->n, n0 + 2, 2500);
    assert_true(r->n >= n0 + 1 && r->n <= n0 + 2);
    assert_int_equal(r->last_step, 1099);
    assert_int_equal(r->dups, 0);
    json_decref(p.results);
    rig_stop(&g);
    free(r);
}

static void test_publish_checks_first(void **state)
{
    rig_t g;
    rig_start(&g, *state, 0);
    aos_bus_t *bus = g.bus;
    aos_err_t err = {0};
    pub_t p = {0};
    json_t *b = json_pack("[{s:s}, {s:s}]", "type", "task.receipt", "topic", "x");
    assert_int_equal(aos_bus_publish(bus, b, on_published, &p, &err), AOS_EINVAL);
    assert_non_null(strstr(err.msg, "event 1: 'type' is required"));
    assert_int_equal(aos_bus_publish(bus, json_array(), on_published, &p, &err), AOS_EINVAL);
    assert_int_equal(aos_bus_publish(bus, json_integer(3), on_published, &p, &err), AOS_EINVAL);
    run_until(&g.loop, &(int){0}, 1, 50);
    assert_int_equal(p.done, 0); /* a synchronous failure never calls back */
    int64_t last;
    assert_int_equal(aos_store_event_last_id(g.st, &last, &err), 0);
    assert_int_equal(last, 0); /* nothing of the bad batch was written */

    publish(bus, &g.loop, json_pack("{s:s, s:s}", "type", "anomaly.detected", "severity", "error"),
            &p);
    json_t *r = json_array_get(p.results, 0);
    assert_true(json_integer_value(json_object_get(r, "id")) > 0);
    assert_int_equal(json_integer_value(json_object_get(r, "card_version")), 1);
    assert_true(json_is_false(json_object_get(r, "folded")));
    json_decref(p.results);
    rig_stop(&g);
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_whitelist_and_policy),
        T(test_check_defaults),
        T(test_check_rejects),
        T(test_sse_frame),
        T(test_outbox_order_and_filters),
        T(test_fold_window_fake_clock),
        T(test_pending_progress_precedes_receipt),
        T(test_folds_after_an_empty_flush),
        cmocka_unit_test(test_sse_frame_stored_payload),
        T(test_append_tx_joins_the_transaction),
        T(test_append_tx_own_stores_what_a_copy_would),
        T(test_append_n_in_order),
        T(test_card_versions_unasked),
        T(test_bus_replay_then_live),
        T(test_bus_sees_rows_of_others),
        T(test_bus_folds_a_burst),
        T(test_bus_value_only_pump),
        T(test_publish_checks_first),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
