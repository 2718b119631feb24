/* test_gateway_call.c - in-process tool calls (aos_gateway_call) against a
 * real gateway: the built-in "aos" server and a real MCP server over stdio
 * (tests/e2e/fixtures/faulty-server.mjs, the official TypeScript SDK, run by
 * node): answers always come later, never from inside the call; the
 * caller's caps; the idempotency key and trace context in _meta; progress;
 * a timeout of the caller's; cancel; errors with their codes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include "gateway/gateway.h"
#include "registry/registry.h"
#include "tmpdir.h"

#include <string.h>
#include <unistd.h>

typedef struct {
    uv_loop_t loop;
    char dir[64];
    aos_store_t *store;
    aos_secret_box_t *box;
    aos_metrics_t *metrics;
    aos_httpc_t *httpc;
    aos_gateway_t *gw;
    int down;
} env_t;

typedef struct {
    int done;
    json_t *result;
    aos_err_t err;
    uint64_t retry_after_s;
    json_t *progress; /* the progress params seen */
} answer_t;

static void on_done(json_t *result, const aos_err_t *err, uint64_t retry_after_s, void *data)
{
    answer_t *a = data;
    a->done++;
    a->result = result;
    if (err)
        a->err = *err;
    a->retry_after_s = retry_after_s;
}

static void on_progress(const json_t *params, void *data)
{
    answer_t *a = data;
    if (!a->progress)
        a->progress = json_array();
    json_array_append_new(a->progress, json_deep_copy(params));
}

static void on_tick(uv_timer_t *t)
{
    uv_stop(t->loop);
}

/* Runs the loop until *flag or ms pass. */
static int run_until(env_t *e, const int *flag, uint64_t ms)
{
    uv_timer_t tick;
    uv_timer_init(&e->loop, &tick);
    uv_timer_start(&tick, on_tick, 5, 5);
    uint64_t end = uv_now(&e->loop) + ms;
    while (!*flag && uv_now(&e->loop) < end)
        uv_run(&e->loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    return *flag ? 0 : -1;
}

static const char *fixture(void)
{
    static char path[512];
    const char *src = getenv("AOS_SOURCE_DIR");
    if (src && *src) {
        snprintf(path, sizeof(path), "%s/tests/e2e/fixtures/faulty-server.mjs", src);
    } else {
        int root = (int)(strlen(__FILE__) - strlen("tests/unit/test_gateway_call.c"));
        snprintf(path, sizeof(path), "%.*stests/e2e/fixtures/faulty-server.mjs", root, __FILE__);
    }
    return path;
}

static int setup(void **state)
{
    env_t *e = calloc(1, sizeof(*e));
    aos_err_t err = {0, ""};
    assert_int_equal(uv_loop_init(&e->loop), 0);
    assert_int_equal(aos_test_mkdtemp(e->dir, sizeof(e->dir), "gwcall"), 0);
    char url[128];
    snprintf(url, sizeof(url), "sqlite:%s/aos.db", e->dir);
    assert_int_equal(aos_store_open(&e->store, &e->loop, url, &err), 0);
    assert_int_equal(aos_secret_box_open(&e->box, e->dir, NULL, &err), 0);
    e->metrics = aos_metrics_new();
    assert_int_equal(aos_httpc_new(&e->httpc, &e->loop, &err), 0);
    /* a real stdio server in the registry, then the gateway loads it */
    json_t *in = json_pack("{s:s, s:s, s:[s], s:{s:i}}", "name", "fx", "command", "node", "args",
                           fixture(), "limits", "retries", 0);
    json_t *entry = aos_registry_normalize(in, NULL, e->box, &err);
    assert_non_null(entry);
    assert_int_equal(aos_store_registry_put(e->store, entry, &err), 0);
    json_decref(in);
    json_decref(entry);
    aos_gateway_cfg_t gc = {.loop = &e->loop,
                            .httpc = e->httpc,
                            .store = e->store,
                            .secrets = e->box,
                            .metrics = e->metrics,
                            .version = "test"};
    assert_int_equal(aos_gateway_new(&e->gw, &gc, &err), 0);
    assert_int_equal(aos_gateway_load(e->gw, &err), 0);
    *state = e;
    return 0;
}

static void on_down(void *data)
{
    ((env_t *)data)->down = 1;
}

static int teardown(void **state)
{
    env_t *e = *state;
    aos_gateway_shutdown(e->gw, on_down, e);
    run_until(e, &e->down, 5000);
    aos_gateway_free(e->gw);
    aos_httpc_free(e->httpc);
    aos_store_close(e->store); /* its handle would keep the loop running */
    uv_run(&e->loop, UV_RUN_DEFAULT);
    aos_metrics_free(e->metrics);
    aos_secret_box_free(e->box);
    assert_int_equal(uv_loop_close(&e->loop), 0);
    aos_test_rmdir(e->dir);
    free(e);
    return 0;
}

static const char *text_of(const json_t *result)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(result, "content"), 0), "text"));
}

/* A call and its answer; the answer never comes from inside the call. */
static void call(env_t *e, const aos_gateway_call_opts_t *o, const char *tool, json_t *args,
                 answer_t *a, uint64_t wait_ms)
{
    memset(a, 0, sizeof(*a));
    assert_int_equal(aos_gateway_call(e->gw, o, tool, args, on_done, a, NULL), 0);
    assert_int_equal(a->done, 0);
    assert_int_equal(run_until(e, &a->done, wait_ms), 0);
    assert_int_equal(a->done, 1);
    json_decref(args);
}

static void test_builtin(void **state)
{
    env_t *e = *state;
    aos_gateway_call_opts_t o = {.caller = {.principal = "task:t1"}};
    answer_t a;
    call(e, &o, "aos__echo", json_pack("{s:s}", "message", "in process"), &a, 2000);
    assert_non_null(a.result);
    assert_string_equal(text_of(a.result), "Echo: in process");
    json_decref(a.result);
    /* a built-in's refusal is an answer too, later */
    call(e, &o, "aos__echo", json_object(), &a, 2000);
    assert_null(a.result);
    assert_int_equal(a.err.code, AOS_EINVAL);
}

static void test_refused_at_once(void **state)
{
    env_t *e = *state;
    answer_t a = {0};
    json_t *caps = json_pack("{s:[s, s]}", "tools", "aos__*", "fx__echo");
    aos_gateway_call_opts_t o = {.caller = {.principal = "task:t2", .caps = caps}};
    assert_int_equal(aos_gateway_call(e->gw, &o, "fx__meta", NULL, on_done, &a, NULL),
                     AOS_EFORBIDDEN);
    assert_int_equal(aos_gateway_call(e->gw, &o, "nosuch__echo", NULL, on_done, &a, NULL),
                     AOS_ENOTFOUND);
    assert_int_equal(aos_gateway_call(e->gw, &o, "aos__nosuch", NULL, on_done, &a, NULL),
                     AOS_ENOTFOUND);
    assert_int_equal(aos_gateway_call(e->gw, &o, "noseparator", NULL, on_done, &a, NULL),
                     AOS_EINVAL);
    assert_int_equal(aos_gateway_call(e->gw, &o, "fx__", NULL, on_done, &a, NULL), AOS_EINVAL);
    uv_run(&e->loop, UV_RUN_NOWAIT);
    assert_int_equal(a.done, 0);
    /* allowed by the patterns */
    call(e, &o, "fx__echo", json_pack("{s:s}", "message", "ok"), &a, 30000);
    assert_string_equal(text_of(a.result), "Echo: ok");
    json_decref(a.result);
    json_decref(caps);
    /* only a built-in's own read-only tools are local; an upstream's, its
     * lists loaded now, never */
    assert_true(aos_gateway_tool_local(e->gw, "aos__echo"));
    assert_false(aos_gateway_tool_local(e->gw, "fx__echo"));
    assert_false(aos_gateway_tool_local(e->gw, "aos__nosuch"));
    assert_false(aos_gateway_tool_local(e->gw, "nosuch__echo"));
    assert_false(aos_gateway_tool_local(e->gw, "noseparator"));
    assert_false(aos_gateway_tool_local(e->gw, "__echo"));
    assert_false(aos_gateway_tool_local(e->gw, NULL));
    assert_true(aos_gateway_tool_match("*", "x__y"));
    assert_true(aos_gateway_tool_match("files__*", "files__read"));
    assert_false(aos_gateway_tool_match("files__*", "filesx__read"));
    assert_false(aos_gateway_tool_match("files__read", "files__read2"));
}

static void test_meta(void **state)
{
    env_t *e = *state;
    const char *tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    aos_gateway_call_opts_t o = {
        .caller = {.principal = "task:t3", .idempotency_key = "t3:s1:1", .traceparent = tp}};
    answer_t a;
    call(e, &o, "fx__meta", NULL, &a, 30000);
    json_t *meta = json_loads(text_of(a.result), 0, NULL);
    assert_non_null(meta);
    assert_string_equal(json_string_value(json_object_get(meta, "aos/idempotency_key")), "t3:s1:1");
    assert_string_equal(json_string_value(json_object_get(meta, "traceparent")), tp);
    assert_null(json_object_get(meta, "progressToken")); /* no progress asked */
    json_decref(meta);
    json_decref(a.result);
}

static void test_progress(void **state)
{
    env_t *e = *state;
    answer_t a;
    memset(&a, 0, sizeof(a));
    aos_gateway_call_opts_t o = {.caller = {.principal = "task:t4"}, .progress = on_progress};
    json_t *args = json_pack("{s:i}", "n", 3); /* borrowed by the call */
    assert_int_equal(aos_gateway_call(e->gw, &o, "fx__progress", args, on_done, &a, NULL), 0);
    json_decref(args);
    assert_int_equal(run_until(e, &a.done, 30000), 0);
    assert_string_equal(text_of(a.result), "progressed 3");
    assert_non_null(a.progress);
    assert_int_equal(json_array_size(a.progress), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(a.progress, 2), "progress")),
                     3);
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(a.progress, 0), "message")), "step 1");
    json_decref(a.progress);
    json_decref(a.result);
}

static void test_timeout_and_cancel(void **state)
{
    env_t *e = *state;
    answer_t a;
    aos_gateway_call_opts_t o = {.caller = {.principal = "task:t5"}, .timeout_ms = 300};
    call(e, &o, "fx__hang", NULL, &a, 30000);
    assert_null(a.result);
    assert_int_equal(a.err.code, AOS_ETIMEDOUT);

    /* cancel: done runs inside the cancel, and the server hears of it */
    answer_t c0;
    aos_gateway_call_opts_t plain = {.caller = {.principal = "task:t5"}};
    call(e, &plain, "fx__cancellations", NULL, &c0, 30000);
    long before = strtol(text_of(c0.result), NULL, 10);
    json_decref(c0.result);
    memset(&a, 0, sizeof(a));
    aos_gateway_call_t *h = NULL;
    json_t *args = json_pack("{s:i}", "ms", 20000);
    assert_int_equal(aos_gateway_call(e->gw, &plain, "fx__slow", args, on_done, &a, &h), 0);
    json_decref(args);
    assert_non_null(h);
    int never = 0;
    run_until(e, &never, 300);
    assert_int_equal(a.done, 0);
    aos_gateway_call_cancel(h);
    assert_int_equal(a.done, 1);
    assert_int_equal(a.err.code, AOS_ECANCELED);
    long after = before;
    for (int i = 0; i < 40 && after == before; i++) {
        run_until(e, &never, 50);
        call(e, &plain, "fx__cancellations", NULL, &c0, 30000);
        after = strtol(text_of(c0.result), NULL, 10);
        json_decref(c0.result);
    }
    assert_int_equal(after, before + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_builtin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_progress, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout_and_cancel, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
