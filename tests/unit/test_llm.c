/* test_llm.c - the LLM client against a real OpenAI-compatible server: the
 * scripted one of tests/e2e/fixtures/openai-server.mjs, started for each
 * test with its script (node is part of the toolchain) and asked
 * afterwards what it received (GET /_requests).
 *
 * Every response kind: plain, tool calls, streamed text and interleaved
 * tool-call deltas, malformed JSON and streams, a stream cut short, 429
 * with Retry-After, 5xx, 400, 401, a slow server, a refused connection, a
 * connection dropped after the request; usage and cost; retries counted
 * by the server; cancel and timeout; embeddings. The reader of response.c
 * is also fed fixed streams cut at every byte. Every log line aosd writes
 * meanwhile is captured (aos_log's sink) and checked for the key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"
#include "httpc/httpc.h"
#include "llm/internal.h"
#include "llm/llm.h"
#include "log/log.h"
#include "metrics/metrics.h"
#include "uvtest.h"

#define KEY       "sk-test-0123456789abcdefSECRET"
#define WRONG_KEY "sk-wrong-9876543210fedcbaNOPE"
#define TP        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

/* ---- captured logs ----------------------------------------------------------- */

static aos_buf_t logs = AOS_BUF_INIT;

static void log_sink(const json_t *entry, void *data)
{
    (void)data;
    char *s = json_dumps(entry, JSON_COMPACT);
    if (s) {
        aos_buf_puts(&logs, s);
        aos_buf_puts(&logs, "\n");
        free(s);
    }
}

/* Fails when 8 bytes in a row of secret occur in text. */
static void assert_no_fragment(const char *text, const char *secret)
{
    size_t n = strlen(secret);
    for (size_t i = 0; text && i + 8 <= n; i++)
        if (memmem(text, strlen(text), secret + i, 8))
            fail_msg("'%.8s' of a secret appears in: %.300s", secret + i, text);
}

/* ---- the scripted server -------------------------------------------------------- */

/* Writes a script given with ' for " (so that it reads as JSON). */
static char *script_env(const char *text)
{
    aos_buf_t b = AOS_BUF_INIT;
    aos_buf_puts(&b, "OPENAI_SCRIPT_JSON=");
    for (const char *p = text; *p; p++)
        aos_buf_append(&b, *p == '\'' ? "\"" : p, 1);
    return aos_buf_detach(&b, NULL);
}

/* Starts the server with a script; the child dies with the test. */
static void server_start(proc_t *p, const char *script)
{
    char path[512];
    source_path(path, sizeof(path), "tests/e2e/fixtures/openai-server.mjs");
    char *env_script = script_env(script);
    char env_key[] = "API_KEY=" KEY, env_port[] = "PORT=0";
    char *argv[] = {"node", path, NULL}, *env[] = {env_script, env_key, env_port, NULL};
    assert_int_equal(proc_start(p, argv, env, 1), 0);
    free(env_script);
    if (p->port <= 0)
        fail_msg("the scripted server did not start (%s)", path);
}

/* ---- the test context ---------------------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    aos_httpc_t *httpc;
    aos_llm_t *llm;
    aos_metrics_t *metrics;
    proc_t srv;
    char base[128];
    aos_llm_cfg_t cfg;
    int secrets_told;
    char told[64];
} ctx_t;

static void on_secret(const char *value, void *data)
{
    ctx_t *c = data;
    c->secrets_told++;
    snprintf(c->told, sizeof(c->told), "%s", value);
}

static ctx_t *ctx_new(const char *script)
{
    ctx_t *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    uv_loop_init(&c->loop);
    assert_int_equal(aos_httpc_new(&c->httpc, &c->loop, NULL), 0);
    server_start(&c->srv, script);
    snprintf(c->base, sizeof(c->base), "http://127.0.0.1:%d/v1", c->srv.port);
    c->metrics = aos_metrics_new();
    c->cfg = (aos_llm_cfg_t){.base_url = c->base,
                             .model = "gpt-test",
                             .api_key = KEY,
                             .temperature = -1,
                             .timeout_ms = 5000,
                             .retries = 2,
                             .retry_base_ms = 20,
                             .retry_max_ms = 2000,
                             .metrics = c->metrics,
                             .on_secret = on_secret,
                             .secret_data = c};
    return c;
}

/* Creates the client from c->cfg (as the test changed it). */
static void ctx_open(ctx_t *c)
{
    aos_err_t err = {0, ""};
    if (aos_llm_new(&c->llm, &c->loop, c->httpc, &c->cfg, &err))
        fail_msg("aos_llm_new: %s", aos_err_msg(&err));
}

static void ctx_free(ctx_t *c)
{
    aos_llm_free(c->llm);
    aos_httpc_free(c->httpc);
    uv_run(&c->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&c->loop), 0);
    proc_stop(&c->srv);
    aos_metrics_free(c->metrics);
    free(c);
    /* nothing aosd logged holds a key */
    assert_no_fragment(logs.ptr, KEY);
    assert_no_fragment(logs.ptr, WRONG_KEY);
}

/* ---- asking the server ---------------------------------------------------------------- */

typedef struct {
    int done;
    int status;
    aos_buf_t body;
} fetch_t;

static int fetch_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data)
{
    fetch_t *f = data;
    (void)r;
    return aos_buf_append(&f->body, chunk, len);
}

static void fetch_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data)
{
    fetch_t *f = data;
    (void)r;
    (void)errmsg;
    f->status = status;
    f->done = 1;
}

/* The requests the server got (new reference). */
static json_t *server_requests(ctx_t *c)
{
    char url[128];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/_requests", c->srv.port);
    fetch_t f = {.body = AOS_BUF_INIT};
    aos_httpc_opts_t o = {
        .url = url, .timeout_ms = 5000, .on_data = fetch_data, .on_done = fetch_done, .data = &f};
    assert_int_equal(aos_httpc_start(c->httpc, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&c->loop, &f.done, 1, 5000), 0);
    assert_int_equal(f.status, 0);
    json_t *v = json_loadb(f.body.ptr, f.body.len, 0, NULL);
    aos_buf_release(&f.body);
    assert_non_null(v);
    return v;
}

static size_t server_count(ctx_t *c)
{
    json_t *r = server_requests(c);
    size_t n = json_array_size(r);
    json_decref(r);
    return n;
}

/* ---- calls ---------------------------------------------------------------------------- */

typedef struct {
    int done;
    aos_llm_result_t *res;
    aos_buf_t text; /* deltas joined */
    int ndeltas;
    int deltas_after_cancel;
    int cancel_at; /* cancel from the n-th delta (1-based), 0: never */
    int canceled;
    aos_llm_call_t *call;
} got_t;

static void on_done(aos_llm_result_t *res, void *data)
{
    got_t *g = data;
    g->done++;
    g->res = res;
}

static void on_delta(const char *text, size_t len, void *data)
{
    got_t *g = data;
    if (g->canceled)
        g->deltas_after_cancel++;
    g->ndeltas++;
    aos_buf_append(&g->text, text, len);
    if (g->cancel_at && g->ndeltas == g->cancel_at) {
        aos_llm_cancel(g->call);
        aos_llm_cancel(g->call); /* twice is harmless */
        g->canceled = 1;
    }
}

static void got_release(got_t *g)
{
    aos_llm_result_free(g->res);
    g->res = NULL;
    aos_buf_release(&g->text);
}

static json_t *user_says(const char *text)
{
    return json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content", "be brief", "role",
                     "user", "content", text);
}

/* Runs one chat call to its end. */
static void chat(ctx_t *c, aos_llm_chat_t *req, got_t *g, uint64_t ms)
{
    aos_err_t err = {0, ""};
    req->on_delta = on_delta;
    req->delta_data = g;
    aos_buf_init(&g->text, 0);
    if (aos_llm_chat(c->llm, req, on_done, g, &g->call, &err))
        fail_msg("aos_llm_chat: %s", aos_err_msg(&err));
    assert_int_equal(run_until(&c->loop, &g->done, 1, ms), 0);
    assert_int_equal(g->done, 1);
    assert_non_null(g->res);
    assert_no_fragment(g->res->errmsg, KEY);
}

static void simple_chat(ctx_t *c, int stream, got_t *g, uint64_t ms)
{
    json_t *msgs = user_says("hi");
    aos_llm_chat_t req = {.messages = msgs, .stream = stream};
    chat(c, &req, g, ms);
    json_decref(msgs);
}

static void expect_error(const got_t *g, int status, const char *part)
{
    if (g->res->status != status || !strstr(g->res->errmsg, part))
        fail_msg("want %s with '%s', got %s: '%s'", aos_err_name(status), part,
                 aos_err_name(g->res->status), g->res->errmsg);
}

/* ---- plain answers ---------------------------------------------------------------------- */

static void test_chat_plain(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'content': 'Hello there.', 'id': 'chatcmpl-1',"
                       " 'model': 'gpt-test-0613', 'usage': {'prompt_tokens': 1234,"
                       " 'completion_tokens': 567}}]}");
    static const char *const hdrs[] = {"X-Org: acme", NULL};
    c->cfg.temperature = 0.3;
    c->cfg.max_tokens = 100;
    c->cfg.price_in_cny = 0.002;
    c->cfg.price_out_cny = 0.006;
    c->cfg.headers = hdrs;
    ctx_open(c);
    assert_int_equal(c->secrets_told, 1); /* the redactor learns the key */
    assert_string_equal(c->told, KEY);
    assert_string_equal(aos_llm_model(c->llm), "gpt-test");

    json_t *msgs = user_says("say hello");
    got_t g = {0};
    aos_llm_chat_t req = {.messages = msgs, .traceparent = TP};
    chat(c, &req, &g, 5000);
    aos_llm_result_t *r = g.res;
    assert_int_equal(r->status, 0);
    assert_int_equal(r->op, AOS_LLM_CHAT);
    assert_string_equal(r->content, "Hello there.");
    assert_int_equal(r->content_len, 12);
    assert_null(r->reasoning);
    assert_int_equal(r->ntool_calls, 0);
    assert_string_equal(r->finish_reason, "stop");
    assert_string_equal(r->response_id, "chatcmpl-1");
    assert_string_equal(r->response_model, "gpt-test-0613");
    assert_string_equal(r->request_model, "gpt-test");
    assert_int_equal(r->has_usage, 1);
    assert_int_equal(r->input_tokens, 1234);
    assert_int_equal(r->output_tokens, 567);
    /* 1.234 * 0.002 + 0.567 * 0.006 */
    assert_true(fabs(r->cost_cny - 0.00587) < 1e-12);
    assert_int_equal(r->attempts, 1);
    assert_int_equal(r->http_status, 200);
    assert_true(r->started_ms > 1600000000000ULL);
    assert_true(r->latency_ms < 5000);
    assert_int_equal(g.ndeltas, 1); /* not streamed: the text once */
    assert_true(r->request_temperature == 0.3);
    assert_int_equal(r->request_max_tokens, 100);

    /* what the server got */
    json_t *reqs = server_requests(c);
    assert_int_equal(json_array_size(reqs), 1);
    json_t *q = json_array_get(reqs, 0), *h = json_object_get(q, "headers");
    json_t *body = json_object_get(q, "body");
    assert_string_equal(json_string_value(json_object_get(q, "path")), "/v1/chat/completions");
    assert_string_equal(json_string_value(json_object_get(h, "authorization")), "Bearer " KEY);
    assert_string_equal(json_string_value(json_object_get(h, "traceparent")), TP);
    assert_string_equal(json_string_value(json_object_get(h, "x-org")), "acme");
    assert_string_equal(json_string_value(json_object_get(h, "content-type")), "application/json");
    assert_string_equal(json_string_value(json_object_get(h, "accept")), "application/json");
    assert_string_equal(json_string_value(json_object_get(body, "model")), "gpt-test");
    assert_true(json_equal(json_object_get(body, "messages"), msgs));
    assert_true(json_number_value(json_object_get(body, "temperature")) == 0.3);
    assert_int_equal(json_integer_value(json_object_get(body, "max_tokens")), 100);
    assert_true(json_is_false(json_object_get(body, "stream")));
    assert_null(json_object_get(body, "tools"));
    assert_null(json_object_get(body, "stream_options"));
    json_decref(reqs);

    /* the assistant message for the next turn, and the span */
    json_t *m = aos_llm_result_message(r);
    json_t *want = json_pack("{s:s, s:s}", "role", "assistant", "content", "Hello there.");
    assert_true(json_equal(m, want));
    json_decref(m);
    json_decref(want);
    json_t *span = aos_llm_result_span(r);
    assert_string_equal(json_string_value(json_object_get(span, "gen_ai.operation.name")), "chat");
    assert_string_equal(json_string_value(json_object_get(span, "gen_ai.request.model")),
                        "gpt-test");
    assert_string_equal(json_string_value(json_object_get(span, "gen_ai.response.model")),
                        "gpt-test-0613");
    assert_string_equal(json_string_value(json_object_get(span, "gen_ai.response.id")),
                        "chatcmpl-1");
    assert_int_equal(json_integer_value(json_object_get(span, "gen_ai.usage.input_tokens")), 1234);
    assert_int_equal(json_integer_value(json_object_get(span, "gen_ai.usage.output_tokens")), 567);
    assert_string_equal(json_string_value(json_array_get(
                            json_object_get(span, "gen_ai.response.finish_reasons"), 0)),
                        "stop");
    assert_int_equal(json_integer_value(json_object_get(span, "gen_ai.request.max_tokens")), 100);
    assert_string_equal(json_string_value(json_object_get(span, "server.address")), "127.0.0.1");
    assert_int_equal(json_integer_value(json_object_get(span, "server.port")), c->srv.port);
    assert_null(json_object_get(span, "error.type"));
    json_decref(span);

    /* metrics and the log line */
    aos_buf_t out = AOS_BUF_INIT;
    assert_int_equal(aos_metrics_render(c->metrics, &out), 0);
    assert_non_null(strstr(
        out.ptr, "aos_llm_calls_total{operation=\"chat\",model=\"gpt-test\",outcome=\"ok\"} 1"));
    assert_non_null(
        strstr(out.ptr,
               "aos_llm_tokens_total{operation=\"chat\",model=\"gpt-test\",type=\"input\"} 1234"));
    /* OpenTelemetry's GenAI metrics: one operation, 1234 input tokens in
     * the (1024, 4096] bucket, 567 output tokens in (256, 1024] */
    assert_non_null(strstr(out.ptr, "gen_ai_client_operation_duration_seconds_count{gen_ai_"
                                    "operation_name=\"chat\",gen_ai_request_model=\"gpt-test\","
                                    "error_type=\"\"} 1"));
    assert_non_null(strstr(out.ptr, "gen_ai_client_token_usage_bucket{gen_ai_operation_name="
                                    "\"chat\",gen_ai_request_model=\"gpt-test\",gen_ai_token_"
                                    "type=\"input\",le=\"1024\"} 0"));
    assert_non_null(strstr(out.ptr, "gen_ai_client_token_usage_bucket{gen_ai_operation_name="
                                    "\"chat\",gen_ai_request_model=\"gpt-test\",gen_ai_token_"
                                    "type=\"input\",le=\"4096\"} 1"));
    assert_non_null(strstr(out.ptr, "gen_ai_client_token_usage_sum{gen_ai_operation_name="
                                    "\"chat\",gen_ai_request_model=\"gpt-test\",gen_ai_token_"
                                    "type=\"output\"} 567"));
    assert_null(strstr(out.ptr, KEY));
    aos_buf_release(&out);
    assert_non_null(strstr(logs.ptr, "4bf92f3577b34da6a3ce929d0e0e4736")); /* trace_id */
    assert_non_null(strstr(logs.ptr, "\"input_tokens\":1234"));

    json_decref(msgs);
    got_release(&g);
    ctx_free(c);
}

static void test_chat_tool_calls(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'tool_calls': ["
                       "  {'id': 'c1', 'name': 'files__read', 'arguments': {'path': '/a.csv'}},"
                       "  {'id': 'c2', 'name': 'viz__plot', 'arguments': '{\\'x\\': [1,'},"
                       "  {'id': 'c3', 'name': 'clock__now', 'arguments': ''},"
                       "  {'id': 'c4', 'name': 'viz__plot', 'arguments': '[1, 2]'}],"
                       " 'usage': {'prompt_tokens': 50, 'completion_tokens': 20}}]}");
    ctx_open(c);
    json_t *tools =
        json_pack("[{s:s, s:s, s:{s:s, s:{s:{s:s}}, s:[s]}}, {s:s, s:{s:s, s:s}}, {s:s}]", "name",
                  "files__read", "description", "read a file", "parameters", "type", "object",
                  "properties", "path", "type", "string", "required", "path", "type", "function",
                  "function", "name", "viz__plot", "description", "plot", "name", "clock__now");
    /* a whole earlier turn: the assistant's call (arguments as an object)
     * and the tool's answer */
    json_t *msgs =
        json_pack("[{s:s, s:s}, {s:s, s:n, s:[{s:s, s:s, s:{s:s, s:{s:i}}}]},"
                  " {s:s, s:s, s:s}]",
                  "role", "user", "content", "plot a.csv", "role", "assistant", "content",
                  "tool_calls", "id", "c0", "type", "function", "function", "name", "clock__now",
                  "arguments", "tz", 8, "role", "tool", "tool_call_id", "c0", "content", "12:00");
    got_t g = {0};
    aos_llm_chat_t req = {.messages = msgs, .tools = tools, .tool_choice = "required"};
    chat(c, &req, &g, 5000);
    aos_llm_result_t *r = g.res;
    assert_int_equal(r->status, 0);
    assert_null(r->content);
    assert_string_equal(r->finish_reason, "tool_calls");
    assert_int_equal(r->ntool_calls, 4);
    aos_llm_tool_call_t *t = r->tool_calls;
    assert_string_equal(t[0].id, "c1");
    assert_string_equal(t[0].name, "files__read");
    assert_string_equal(json_string_value(json_object_get(t[0].arguments, "path")), "/a.csv");
    assert_null(t[0].error);
    /* invalid JSON: the call is kept, with why */
    assert_string_equal(t[1].name, "viz__plot");
    assert_null(t[1].arguments);
    assert_non_null(strstr(t[1].error, "not valid JSON"));
    assert_string_equal(t[1].arguments_text, "{\"x\": [1,");
    /* no arguments at all: an empty object */
    assert_true(json_is_object(t[2].arguments) && json_object_size(t[2].arguments) == 0);
    /* valid JSON that is not an object */
    assert_null(t[3].arguments);
    assert_non_null(strstr(t[3].error, "not a JSON object"));

    json_t *reqs = server_requests(c);
    json_t *body = json_object_get(json_array_get(reqs, 0), "body");
    json_t *want_tools = json_pack(
        "[{s:s, s:{s:s, s:s, s:{s:s, s:{s:{s:s}}, s:[s]}}}, {s:s, s:{s:s, s:s, s:{s:s, s:{}}}},"
        " {s:s, s:{s:s, s:{s:s, s:{}}}}]",
        "type", "function", "function", "name", "files__read", "description", "read a file",
        "parameters", "type", "object", "properties", "path", "type", "string", "required", "path",
        "type", "function", "function", "name", "viz__plot", "description", "plot", "parameters",
        "type", "object", "properties", "type", "function", "function", "name", "clock__now",
        "parameters", "type", "object", "properties");
    assert_true(json_equal(json_object_get(body, "tools"), want_tools));
    assert_string_equal(json_string_value(json_object_get(body, "tool_choice")), "required");
    json_t *sent = json_object_get(body, "messages");
    json_t *call0 = json_array_get(json_object_get(json_array_get(sent, 1), "tool_calls"), 0);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(call0, "function"), "arguments")),
        "{\"tz\":8}"); /* an object is sent as its text */
    assert_true(json_is_null(json_object_get(json_array_get(sent, 1), "content")));
    assert_string_equal(json_string_value(json_object_get(json_array_get(sent, 2), "tool_call_id")),
                        "c0");
    json_decref(want_tools);
    json_decref(reqs);

    /* the next turn carries the calls as the model sent them */
    json_t *m = aos_llm_result_message(r);
    json_t *calls = json_object_get(m, "tool_calls");
    assert_int_equal(json_array_size(calls), 4);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(calls, 1), "function"), "arguments")),
                        "{\"x\": [1,");
    assert_true(json_is_null(json_object_get(m, "content")));
    json_decref(m);

    /* tool_choice naming a function */
    got_release(&g);
    memset(&g, 0, sizeof(g));
    req.tool_choice = "viz__plot";
    aos_err_t err = {0, ""};
    assert_int_equal(aos_llm_chat(c->llm, &req, on_done, &g, NULL, &err), 0);
    assert_int_equal(run_until(&c->loop, &g.done, 1, 5000), 0);
    reqs = server_requests(c);
    json_t *choice =
        json_object_get(json_object_get(json_array_get(reqs, 1), "body"), "tool_choice");
    json_t *want = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", "viz__plot");
    assert_true(json_equal(choice, want));
    json_decref(want);
    json_decref(reqs);

    json_decref(tools);
    json_decref(msgs);
    got_release(&g);
    ctx_free(c);
}

/* ---- streams ------------------------------------------------------------------------------ */

static void test_stream_text(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'content': 'The quick brown fox jumps over the lazy dog.',"
                       " 'reasoning': 'think first', 'chunk_chars': 3, 'chunk_delay_ms': 5,"
                       " 'usage': {'prompt_tokens': 11, 'completion_tokens': 13}}]}");
    c->cfg.price_in_cny = 1;
    c->cfg.price_out_cny = 2;
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 1, &g, 5000);
    aos_llm_result_t *r = g.res;
    assert_int_equal(r->status, 0);
    assert_string_equal(r->content, "The quick brown fox jumps over the lazy dog.");
    assert_string_equal(r->reasoning, "think first");
    assert_int_equal(g.ndeltas, 15); /* 44 characters, 3 a chunk */
    assert_string_equal(g.text.ptr, r->content);
    assert_string_equal(r->finish_reason, "stop");
    /* usage from the stream's last chunk */
    assert_int_equal(r->has_usage, 1);
    assert_int_equal(r->input_tokens, 11);
    assert_int_equal(r->output_tokens, 13);
    assert_true(fabs(r->cost_cny - (0.011 + 0.026)) < 1e-12);
    assert_true(r->first_token_ms <= r->latency_ms);
    assert_non_null(r->response_id);

    json_t *reqs = server_requests(c);
    json_t *q = json_array_get(reqs, 0), *body = json_object_get(q, "body");
    assert_true(json_is_true(json_object_get(body, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(body, "stream_options"), "include_usage")));
    assert_null(json_object_get(body, "temperature")); /* negative: not sent */
    assert_null(json_object_get(body, "max_tokens"));
    assert_string_equal(json_string_value(json_object_get(json_object_get(q, "headers"), "accept")),
                        "text/event-stream");
    json_decref(reqs);
    got_release(&g);
    ctx_free(c);
}

/* Three calls whose deltas come interleaved, arguments 2 bytes a delta. */
static void test_stream_tool_calls_interleaved(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'content': 'on it', 'chunk_chars': 2, 'tool_calls': ["
                       "  {'id': 'call_a', 'name': 'files__read', 'arguments': {'path': 'x.csv'}},"
                       "  {'id': 'call_b', 'name': 'files__list', 'arguments': {'dir': '/data',"
                       "   'deep': true}},"
                       "  {'id': 'call_c', 'name': 'clock__now', 'arguments': {}}]}]}");
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 1, &g, 5000);
    aos_llm_result_t *r = g.res;
    assert_int_equal(r->status, 0);
    assert_string_equal(r->content, "on it");
    assert_string_equal(r->finish_reason, "tool_calls");
    assert_int_equal(r->ntool_calls, 3);
    static const char *const ids[] = {"call_a", "call_b", "call_c"};
    static const char *const names[] = {"files__read", "files__list", "clock__now"};
    for (int i = 0; i < 3; i++) {
        assert_string_equal(r->tool_calls[i].id, ids[i]);
        assert_string_equal(r->tool_calls[i].name, names[i]);
        assert_null(r->tool_calls[i].error);
    }
    assert_string_equal(json_string_value(json_object_get(r->tool_calls[0].arguments, "path")),
                        "x.csv");
    assert_true(json_is_true(json_object_get(r->tool_calls[1].arguments, "deep")));
    assert_int_equal(json_object_size(r->tool_calls[2].arguments), 0);
    /* usage: the server's estimate, sent because include_usage was asked */
    assert_int_equal(r->has_usage, 1);
    assert_true(r->output_tokens > 0);
    got_release(&g);
    ctx_free(c);
}

/* What servers other than OpenAI send: comments, CRLF, deltas without an
 * index, ids and names repeated in every delta, usage in a chunk of its
 * own, an event type, [DONE] with spaces. */
static void test_stream_quirks(void **state)
{
    (void)state;
    ctx_t *c =
        ctx_new("{'chat': [{'events': ["
                "  ': keep-alive\\r\\n\\r\\n',"
                "  {'id': 'q1', 'model': 'local', 'choices': [{'index': 0, 'delta': {'role': "
                "'assistant'}}]},"
                "  'event: message\\r\\ndata: {\\'choices\\': [{\\'delta\\': {\\'content\\': "
                "\\'A\\'}}]}\\r\\n\\r\\n',"
                "  {'choices': [{'delta': {'tool_calls': [{'id': 't1', 'function': {'name': 'f',"
                "   'arguments': '{\\'a\\''}}]}}]},"
                "  {'choices': [{'delta': {'tool_calls': [{'id': 't1', 'function': {'name': 'f',"
                "   'arguments': ': 1}'}}]}}]},"
                "  {'choices': [{'delta': {'tool_calls': [{'id': 't2', 'function': {'name': 'g',"
                "   'arguments': '{}'}}]}, 'finish_reason': 'tool_calls'}]},"
                "  {'choices': [], 'usage': {'prompt_tokens': 3, 'completion_tokens': 4}},"
                "  'data:  [DONE]  \\n\\n'], 'done': false}]}");
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 1, &g, 5000);
    aos_llm_result_t *r = g.res;
    assert_int_equal(r->status, 0);
    assert_string_equal(r->content, "A");
    assert_string_equal(r->response_id, "q1");
    assert_string_equal(r->response_model, "local");
    assert_int_equal(r->ntool_calls, 2);
    assert_string_equal(r->tool_calls[0].id, "t1");
    assert_string_equal(r->tool_calls[0].name, "f");
    assert_int_equal(json_integer_value(json_object_get(r->tool_calls[0].arguments, "a")), 1);
    assert_string_equal(r->tool_calls[1].name, "g");
    assert_int_equal(r->input_tokens, 3);
    assert_int_equal(r->output_tokens, 4);
    got_release(&g);
    ctx_free(c);
}

/* ---- broken answers ---------------------------------------------------------------------- */

static void test_malformed(void **state)
{
    (void)state;
    ctx_t *c = ctx_new(
        "{'chat': ["
        " {'status': 200, 'headers': {'Content-Type': 'application/json'}, 'body': '{\\'id\\': x'},"
        " {'status': 200, 'body': {'id': 'no-choices', 'choices': []}},"
        " {'events': [{'choices': [{'delta': {'content': 'ok'}}]}, 'data: {broken\\n\\n']},"
        " {'events': [{'choices': [{'delta': {'content': 'ok'}}]},"
        "   {'error': {'message': 'the model is overloaded', 'code': 'overloaded'}}]},"
        " {'events': ['data: [1, 2]\\n\\n']},"
        " {'status': 200, 'body': {'choices': [{'message': {'content': 'x', 'tool_calls': "
        "5}}]}}]}");
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "malformed JSON in the response (line 1, column");
    got_release(&g);
    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "the response has no choices");
    got_release(&g);
    memset(&g, 0, sizeof(g));
    simple_chat(c, 1, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "malformed JSON in event 2 of the stream");
    assert_string_equal(g.text.ptr, "ok"); /* what came before was delivered */
    got_release(&g);
    memset(&g, 0, sizeof(g));
    simple_chat(c, 1, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "the model server failed: the model is overloaded");
    assert_string_equal(g.res->error_type, "overloaded");
    got_release(&g);
    memset(&g, 0, sizeof(g));
    simple_chat(c, 1, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "event 1 of the stream is not a JSON object");
    got_release(&g);
    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "tool_calls is not an array");
    got_release(&g);
    /* none of them was tried again: the server answered */
    assert_int_equal(server_count(c), 6);
    ctx_free(c);
}

static void test_stream_cut(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'content': 'a long answer that never ends', 'cut_after': 3},"
                       " {'events': [{'choices': [{'delta': {'content': 'half'}}]}],"
                       "  'done': false}]}");
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 1, &g, 5000);
    /* the connection died with the request taken: not sent again */
    assert_int_equal(g.res->status, AOS_EUPSTREAM);
    assert_int_equal(g.res->attempts, 1);
    assert_null(g.res->content);
    got_release(&g);
    memset(&g, 0, sizeof(g));
    /* a stream that ends cleanly but with neither [DONE] nor a finish reason */
    simple_chat(c, 1, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "the stream ended before [DONE]");
    got_release(&g);
    assert_int_equal(server_count(c), 2);
    ctx_free(c);
}

static void test_too_large(void **state)
{
    (void)state;
    char script[12000];
    char big[5001];
    memset(big, 'x', 5000);
    big[5000] = '\0';
    snprintf(script, sizeof(script),
             "{'chat': [{'content': '%s'}, {'content': '%s', 'chunk_chars': 1000}]}", big, big);
    ctx_t *c = ctx_new(script);
    c->cfg.max_response = 1024;
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "larger than 1024 bytes");
    got_release(&g);
    memset(&g, 0, sizeof(g));
    simple_chat(c, 1, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "larger than 1024 bytes");
    assert_int_equal(g.res->attempts, 1);
    got_release(&g);
    ctx_free(c);
}

/* ---- HTTP errors and retries --------------------------------------------------------------- */

static void test_rate_limited(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': ["
                       " {'status': 429, 'headers': {'Retry-After': '1'}},"
                       " {'content': 'finally'},"
                       " {'status': 429, 'headers': {'retry-after-ms': '50'}},"
                       " {'status': 429, 'headers': {'retry-after-ms': '50'}},"
                       " {'status': 429, 'headers': {'Retry-After': '120'}}]}");
    c->cfg.retries = 1;
    ctx_open(c);
    got_t g = {0};
    uint64_t t0 = uv_now(&c->loop);
    simple_chat(c, 0, &g, 5000);
    uv_update_time(&c->loop);
    assert_int_equal(g.res->status, 0);
    assert_string_equal(g.res->content, "finally");
    assert_int_equal(g.res->attempts, 2);
    assert_true(uv_now(&c->loop) - t0 >= 1000); /* waited as asked */
    assert_true(g.res->latency_ms >= 1000);
    got_release(&g);

    /* still limited after the one retry */
    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_ERATE, "rate limited by the model server (retry after 50 ms)");
    assert_int_equal(g.res->retry_after_ms, 50);
    assert_int_equal(g.res->http_status, 429);
    assert_int_equal(g.res->attempts, 2);
    got_release(&g);

    /* a wait longer than retry_max_ms is not waited: the caller decides */
    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_ERATE, "retry after 120000 ms");
    assert_int_equal(g.res->retry_after_ms, 120000);
    assert_int_equal(g.res->attempts, 1);
    got_release(&g);
    assert_int_equal(server_count(c), 5);

    aos_buf_t out = AOS_BUF_INIT;
    assert_int_equal(aos_metrics_render(c->metrics, &out), 0);
    assert_non_null(strstr(out.ptr, "aos_llm_retries_total{model=\"gpt-test\"} 2"));
    assert_non_null(strstr(
        out.ptr,
        "aos_llm_calls_total{operation=\"chat\",model=\"gpt-test\",outcome=\"rate_limited\"} 2"));
    assert_non_null(strstr(out.ptr, "gen_ai_client_operation_duration_seconds_count{gen_ai_"
                                    "operation_name=\"chat\",gen_ai_request_model=\"gpt-test\","
                                    "error_type=\"rate_limited\"} 2"));
    aos_buf_release(&out);
    ctx_free(c);
}

static void test_server_errors(void **state)
{
    (void)state;
    ctx_t *c = ctx_new(
        "{'chat': ["
        " {'status': 500}, {'status': 503}, {'content': 'third time lucky'},"
        " {'status': 502}, {'status': 500}, {'status': 500},"
        " {'status': 503, 'headers': {'x-should-retry': 'false'}},"
        " {'status': 409, 'headers': {'x-should-retry': 'true'}}, {'content': 'retried 409'},"
        " {'status': 400, 'body': {'error': {'message': 'maximum context length is "
        "8192 tokens', 'type': 'invalid_request_error', 'code': 'context_length_exceeded'}}},"
        " {'status': 404, 'body': 'no such model'}]}");
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 0, &g, 5000);
    assert_int_equal(g.res->status, 0);
    assert_int_equal(g.res->attempts, 3);
    assert_string_equal(g.res->content, "third time lucky");
    got_release(&g);

    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "http 500 Internal Server Error: scripted 500");
    assert_int_equal(g.res->attempts, 3); /* the first and two retries */
    got_release(&g);

    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "http 503 Service Unavailable");
    assert_int_equal(g.res->attempts, 1); /* the server said not to */
    got_release(&g);

    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    assert_int_equal(g.res->status, 0);
    assert_int_equal(g.res->attempts, 2); /* the server said to */
    got_release(&g);

    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "http 400 Bad Request: maximum context length is 8192");
    assert_string_equal(g.res->error_type, "context_length_exceeded");
    assert_int_equal(g.res->attempts, 1);
    got_release(&g);

    memset(&g, 0, sizeof(g));
    simple_chat(c, 0, &g, 5000);
    assert_int_equal(g.res->status, AOS_EUPSTREAM);
    assert_string_equal(g.res->errmsg, "http 404 Not Found"); /* a text body is not quoted */
    json_t *span = aos_llm_result_span(g.res);
    assert_string_equal(json_string_value(json_object_get(span, "error.type")), "upstream_error");
    json_decref(span);
    got_release(&g);
    assert_int_equal(server_count(c), 11);
    ctx_free(c);
}

static void test_auth_refused(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'content': 'never'}]}");
    c->cfg.api_key = WRONG_KEY;
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPAUTH, "refused the API key (http 401: invalid_api_key)");
    assert_int_equal(g.res->attempts, 1);
    assert_no_fragment(g.res->errmsg, WRONG_KEY);
    got_release(&g);
    /* the server did quote part of it: the client did not pass it on */
    json_t *reqs = server_requests(c);
    assert_int_equal(json_array_size(reqs), 1);
    json_decref(reqs);
    ctx_free(c);
}

/* A server that quotes the Authorization header in its error message. */
static void test_key_echo_hidden(void **state)
{
    (void)state;
    ctx_t *c = ctx_new(
        "{'chat': ["
        " {'status': 400, 'body': {'error': {'message': 'bad header {{header:authorization}}'}}},"
        " {'status': 200, 'body': 'oops {{header:authorization}}'},"
        " {'status': 422, 'body': {'error': 'key {{header:authorization}} is bad'}}]}");
    ctx_open(c);
    for (int i = 0; i < 3; i++) {
        got_t g = {0};
        simple_chat(c, 0, &g, 5000);
        assert_int_equal(g.res->status, AOS_EUPSTREAM);
        if (i != 1)
            assert_non_null(strstr(g.res->errmsg, "[REDACTED]"));
        assert_no_fragment(g.res->errmsg, KEY);
        got_release(&g);
    }
    ctx_free(c);
}

/* ---- time --------------------------------------------------------------------------------- */

static void test_timeout_not_retried(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'content': 'late', 'delay_ms': 3000},"
                       " {'content': 'slow stream', 'chunk_chars': 1, 'chunk_delay_ms': 300}]}");
    c->cfg.timeout_ms = 500;
    ctx_open(c);
    got_t g = {0};
    uint64_t t0 = uv_now(&c->loop);
    simple_chat(c, 0, &g, 5000);
    uv_update_time(&c->loop);
    expect_error(&g, AOS_ETIMEDOUT, "no complete answer within 500 ms");
    assert_int_equal(g.res->attempts, 1); /* it may be working on it: not again */
    assert_true(uv_now(&c->loop) - t0 < 2500);
    got_release(&g);
    memset(&g, 0, sizeof(g));
    simple_chat(c, 1, &g, 5000);
    expect_error(&g, AOS_ETIMEDOUT, "within 500 ms");
    assert_true(g.ndeltas >= 1 && g.ndeltas < 11); /* what came in time was delivered */
    got_release(&g);
    assert_int_equal(server_count(c), 2);
    ctx_free(c);
}

static void test_connection_refused_retried(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': []}");
    proc_stop(&c->srv); /* its port now refuses */
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "unable to reach the model server");
    assert_int_equal(g.res->attempts, 3);
    assert_int_equal(g.res->http_status, 0);
    got_release(&g);
    ctx_free(c);
}

static void test_dropped_after_send_not_retried(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'drop': true}, {'content': 'must not be asked'}]}");
    ctx_open(c);
    got_t g = {0};
    simple_chat(c, 0, &g, 5000);
    expect_error(&g, AOS_EUPSTREAM, "the connection failed after the request was sent");
    assert_int_equal(g.res->attempts, 1);
    got_release(&g);
    assert_int_equal(server_count(c), 1);
    ctx_free(c);
}

/* ---- cancel ---------------------------------------------------------------------------------- */

static void test_cancel(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': ["
                       " {'content': 'abcdefghijklmnop', 'chunk_chars': 2, 'chunk_delay_ms': 100},"
                       " {'hang': true},"
                       " {'status': 429, 'headers': {'Retry-After': '5'}}]}");
    c->cfg.retry_max_ms = 10000;
    ctx_open(c);
    /* from on_delta: nothing is delivered after it */
    got_t g = {.cancel_at = 2};
    simple_chat(c, 1, &g, 5000);
    assert_int_equal(g.res->status, AOS_ECANCELED);
    assert_int_equal(g.ndeltas, 2);
    assert_int_equal(g.deltas_after_cancel, 0);
    got_release(&g);

    /* a call the server never answers */
    memset(&g, 0, sizeof(g));
    json_t *msgs = user_says("hi");
    aos_llm_chat_t req = {.messages = msgs};
    assert_int_equal(aos_llm_chat(c->llm, &req, on_done, &g, &g.call, NULL), 0);
    int never = 0;
    run_until(&c->loop, &never, 1, 200);
    aos_llm_cancel(g.call);
    assert_int_equal(g.done, 0); /* never from inside aos_llm_cancel */
    assert_int_equal(run_until(&c->loop, &g.done, 1, 2000), 0);
    assert_int_equal(g.res->status, AOS_ECANCELED);
    got_release(&g);

    /* while waiting to try again */
    memset(&g, 0, sizeof(g));
    assert_int_equal(aos_llm_chat(c->llm, &req, on_done, &g, &g.call, NULL), 0);
    run_until(&c->loop, &never, 1, 300);
    assert_int_equal(g.done, 0);
    uint64_t t0 = uv_now(&c->loop);
    aos_llm_cancel(g.call);
    assert_int_equal(run_until(&c->loop, &g.done, 1, 2000), 0);
    uv_update_time(&c->loop);
    assert_true(uv_now(&c->loop) - t0 < 1000);
    assert_int_equal(g.res->status, AOS_ECANCELED);
    assert_int_equal(g.res->attempts, 1);
    got_release(&g);
    json_decref(msgs);
    ctx_free(c);
}

/* aos_llm_free ends the calls in flight at once. */
static void test_free_in_flight(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'hang': true, 'repeat': true}]}");
    ctx_open(c);
    json_t *msgs = user_says("hi");
    aos_llm_chat_t req = {.messages = msgs, .stream = 1};
    got_t g1 = {0}, g2 = {0};
    assert_int_equal(aos_llm_chat(c->llm, &req, on_done, &g1, NULL, NULL), 0);
    assert_int_equal(aos_llm_chat(c->llm, &req, on_done, &g2, NULL, NULL), 0);
    int never = 0;
    run_until(&c->loop, &never, 1, 200);
    aos_llm_free(c->llm);
    c->llm = NULL;
    assert_int_equal(g1.done, 1);
    assert_int_equal(g2.done, 1);
    assert_int_equal(g1.res->status, AOS_ECANCELED);
    assert_string_equal(g2.res->errmsg, "the LLM client was closed");
    got_release(&g1);
    got_release(&g2);
    json_decref(msgs);
    ctx_free(c); /* the transfers end, the memory goes: ASan checks */
}

/* ---- embeddings ------------------------------------------------------------------------------ */

static void test_embeddings(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'embeddings': [{'dim': 4, 'usage': {'prompt_tokens': 30}},"
                       " {'embeddings': [[1, 2], [3]]}]}");
    c->cfg.embed_model = "embed-small";
    c->cfg.price_in_cny = 0.001;
    ctx_open(c);
    static const char *const texts[] = {"apples", "pears", "apples"};
    aos_llm_embed_t req = {.texts = texts, .ntexts = 3, .traceparent = TP};
    got_t g = {0};
    assert_int_equal(aos_llm_embed(c->llm, &req, on_done, &g, NULL, NULL), 0);
    assert_int_equal(run_until(&c->loop, &g.done, 1, 5000), 0);
    aos_llm_result_t *r = g.res;
    assert_int_equal(r->status, 0);
    assert_int_equal(r->op, AOS_LLM_EMBED);
    assert_int_equal(r->nvectors, 3);
    assert_int_equal(r->dim, 4);
    assert_memory_equal(r->vectors, r->vectors + 8, 4 * sizeof(float)); /* the same text */
    assert_memory_not_equal(r->vectors, r->vectors + 4, 4 * sizeof(float));
    assert_int_equal(r->input_tokens, 30);
    assert_true(fabs(r->cost_cny - 0.00003) < 1e-15);
    assert_string_equal(r->request_model, "embed-small");
    json_t *span = aos_llm_result_span(r);
    assert_string_equal(json_string_value(json_object_get(span, "gen_ai.operation.name")),
                        "embeddings");
    json_decref(span);
    got_release(&g);

    json_t *reqs = server_requests(c);
    json_t *q = json_array_get(reqs, 0), *body = json_object_get(q, "body");
    assert_string_equal(json_string_value(json_object_get(q, "path")), "/v1/embeddings");
    assert_string_equal(json_string_value(json_object_get(body, "model")), "embed-small");
    json_t *want = json_pack("[s, s, s]", "apples", "pears", "apples");
    assert_true(json_equal(json_object_get(body, "input"), want));
    json_decref(want);
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(q, "headers"), "traceparent")), TP);
    json_decref(reqs);

    /* vectors that do not fit the texts */
    memset(&g, 0, sizeof(g));
    req.ntexts = 2;
    assert_int_equal(aos_llm_embed(c->llm, &req, on_done, &g, NULL, NULL), 0);
    assert_int_equal(run_until(&c->loop, &g.done, 1, 5000), 0);
    expect_error(&g, AOS_EUPSTREAM, "embedding 1 is not 2 numbers");
    got_release(&g);
    ctx_free(c);
}

/* ---- bad input ----------------------------------------------------------------------------- */

static void expect_bad_cfg(ctx_t *c, aos_llm_cfg_t cfg, const char *part)
{
    aos_llm_t *llm = NULL;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_llm_new(&llm, &c->loop, c->httpc, &cfg, &err), AOS_EINVAL);
    assert_null(llm);
    if (!strstr(err.msg, part))
        fail_msg("'%s' does not say '%s'", err.msg, part);
    assert_no_fragment(err.msg, KEY);
}

static void expect_bad_chat(ctx_t *c, const char *messages, json_t *tools, const char *choice,
                            json_t *extra, const char *tp, const char *part)
{
    json_error_t jerr;
    char *text = script_env(messages);
    json_t *msgs = json_loads(text + strlen("OPENAI_SCRIPT_JSON="), 0, &jerr);
    free(text);
    assert_non_null(msgs);
    got_t g = {0};
    aos_llm_chat_t req = {
        .messages = msgs, .tools = tools, .tool_choice = choice, .extra = extra, .traceparent = tp};
    aos_err_t err = {0, ""};
    assert_int_equal(aos_llm_chat(c->llm, &req, on_done, &g, NULL, &err), AOS_EINVAL);
    if (!strstr(err.msg, part))
        fail_msg("'%s' does not say '%s'", err.msg, part);
    json_decref(msgs);
    assert_int_equal(g.done, 0);
}

static void test_bad_input(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': []}");
    aos_llm_cfg_t good = c->cfg;
    aos_llm_cfg_t b = good;
    b.base_url = NULL;
    expect_bad_cfg(c, b, "base_url is required");
    b = good;
    b.base_url = "ftp://x/v1";
    expect_bad_cfg(c, b, "http:// or https://");
    b.base_url = "https://user:" KEY "@api.example/v1";
    expect_bad_cfg(c, b, "credentials");
    b.base_url = "https://api.example:99999/v1";
    expect_bad_cfg(c, b, "port");
    b.base_url = "https://api.example/v1 x";
    expect_bad_cfg(c, b, "spaces");
    b = good;
    b.model = "";
    expect_bad_cfg(c, b, "model is required");
    b = good;
    b.api_key = "sk-abc\r\nX-Evil: 1";
    expect_bad_cfg(c, b, "API key");
    b = good;
    b.temperature = 2.5;
    expect_bad_cfg(c, b, "temperature");
    b = good;
    b.price_out_cny = -1;
    expect_bad_cfg(c, b, "prices");
    b = good;
    b.retries = 11;
    expect_bad_cfg(c, b, "retries");
    static const char *const bad_hdr[] = {"X-Ok: 1", "Authorization: Bearer other", NULL};
    b = good;
    b.headers = bad_hdr;
    expect_bad_cfg(c, b, "'Authorization' is set by the client");
    static const char *const crlf_hdr[] = {"X-A: 1\r\nX-B: 2", NULL};
    b.headers = crlf_hdr;
    expect_bad_cfg(c, b, "control character");
    static const char *const no_colon[] = {"X-A 1", NULL};
    b.headers = no_colon;
    expect_bad_cfg(c, b, "'Name: value'");

    ctx_open(c);
    expect_bad_chat(c, "[]", NULL, NULL, NULL, NULL, "messages must be an array");
    expect_bad_chat(c, "[{'role': 'robot', 'content': 'x'}]", NULL, NULL, NULL, NULL,
                    "messages[0].role");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x'}, {'role': 'tool', 'content': 'y'}]", NULL,
                    NULL, NULL, NULL, "messages[1] (tool) needs tool_call_id");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x', 'colour': 'red'}]", NULL, NULL, NULL,
                    NULL, "unknown member 'colour'");
    expect_bad_chat(c, "[{'role': 'user'}]", NULL, NULL, NULL, NULL, "content is required");
    expect_bad_chat(c, "[{'role': 'user', 'content': 5}]", NULL, NULL, NULL, NULL,
                    "content must be a string");
    expect_bad_chat(c, "[{'role': 'assistant', 'tool_calls': [{'id': 'a'}]}]", NULL, NULL, NULL,
                    NULL, "messages[0].tool_calls[0]");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x'}]", NULL, NULL, NULL, "00-bad",
                    "traceparent");
    json_t *tools = json_pack("[{s:s}]", "name", "bad name");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x'}]", tools, NULL, NULL, NULL,
                    "tools[0].name");
    json_decref(tools);
    tools = json_pack("[{s:s}, {s:s}]", "name", "t", "name", "t");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x'}]", tools, NULL, NULL, NULL,
                    "'t' is there twice");
    json_decref(tools);
    tools = json_pack("[{s:s}]", "name", "t");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x'}]", tools, "u", NULL, NULL,
                    "tool_choice names no tool");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x'}]", NULL, "required", NULL, NULL,
                    "needs tools");
    json_t *extra = json_pack("{s:s}", "model", "other");
    expect_bad_chat(c, "[{'role': 'user', 'content': 'x'}]", tools, NULL, extra, NULL,
                    "extra may not set 'model'");
    json_decref(extra);
    json_decref(tools);
    static const char *const empty[] = {""};
    aos_llm_embed_t e = {.texts = empty, .ntexts = 1};
    got_t g = {0};
    assert_int_equal(aos_llm_embed(c->llm, &e, on_done, &g, NULL, NULL), AOS_EINVAL);
    e.ntexts = 0;
    assert_int_equal(aos_llm_embed(c->llm, &e, on_done, &g, NULL, NULL), AOS_EINVAL);
    assert_int_equal(g.done, 0);
    /* nothing reached the server */
    assert_int_equal(server_count(c), 0);
    ctx_free(c);
}

/* extra wins over the configuration; configure changes later calls only. */
static void test_extra_and_configure(void **state)
{
    (void)state;
    ctx_t *c = ctx_new("{'chat': [{'content': 'one', 'delay_ms': 200}, {'content': 'two'}]}");
    c->cfg.temperature = 1.0;
    ctx_open(c);
    json_t *msgs = user_says("hi");
    json_t *extra = json_pack("{s:f, s:i, s:n, s:{s:b}}", "temperature", 0.0, "seed", 7,
                              "max_tokens", "chat_template_kwargs", "enable_thinking", 0);
    json_t *fmt = json_pack("{s:s}", "type", "json_object");
    aos_llm_chat_t req = {
        .messages = msgs, .extra = extra, .response_format = fmt, .max_tokens = 64};
    got_t g1 = {0}, g2 = {0};
    assert_int_equal(aos_llm_chat(c->llm, &req, on_done, &g1, NULL, NULL), 0);
    aos_llm_cfg_t next = c->cfg;
    next.model = "gpt-next";
    next.temperature = 1.0;
    assert_int_equal(aos_llm_configure(c->llm, &next, NULL), 0);
    assert_int_equal(c->secrets_told, 2);
    assert_string_equal(aos_llm_model(c->llm), "gpt-next");
    aos_llm_chat_t plain = {.messages = msgs};
    assert_int_equal(aos_llm_chat(c->llm, &plain, on_done, &g2, NULL, NULL), 0);
    assert_int_equal(run_until(&c->loop, &g1.done, 1, 5000), 0);
    assert_int_equal(run_until(&c->loop, &g2.done, 1, 5000), 0);
    assert_int_equal(g1.res->status, 0);
    assert_int_equal(g2.res->status, 0);
    assert_true(g1.res->request_temperature == 0.0);
    assert_int_equal(g1.res->request_max_tokens, 0); /* extra removed it */

    json_t *reqs = server_requests(c);
    json_t *b1 = NULL, *b2 = NULL;
    for (size_t i = 0; i < 2; i++) {
        json_t *b = json_object_get(json_array_get(reqs, i), "body");
        if (!strcmp(json_string_value(json_object_get(b, "model")), "gpt-test"))
            b1 = b;
        else
            b2 = b;
    }
    assert_non_null(b1);
    assert_non_null(b2);
    assert_true(json_number_value(json_object_get(b1, "temperature")) == 0.0);
    assert_int_equal(json_integer_value(json_object_get(b1, "seed")), 7);
    assert_null(json_object_get(b1, "max_tokens"));
    assert_true(json_equal(json_object_get(b1, "response_format"), fmt));
    assert_non_null(json_object_get(b1, "chat_template_kwargs"));
    assert_string_equal(json_string_value(json_object_get(b2, "model")), "gpt-next");
    assert_true(json_number_value(json_object_get(b2, "temperature")) == 1.0);
    json_decref(reqs);
    got_release(&g1);
    got_release(&g2);
    json_decref(fmt);
    json_decref(extra);
    json_decref(msgs);
    ctx_free(c);
}

/* ---- the reader alone ------------------------------------------------------------------------ */

static void read_all(const char *stream, size_t n, size_t cut, int bytewise, aos_llm_result_t *res,
                     int *rc_out, char *why, size_t whylen)
{
    aos__llm_rd_t rd;
    aos__llm_rd_init(&rd, AOS_LLM_CHAT, 1, 1 << 16, NULL, NULL);
    int rc = 0;
    if (bytewise) {
        for (size_t i = 0; i < n && !rc; i++)
            rc = aos__llm_rd_feed(&rd, stream + i, 1);
    } else {
        rc = aos__llm_rd_feed(&rd, stream, cut);
        if (!rc)
            rc = aos__llm_rd_feed(&rd, stream + cut, n - cut);
    }
    if (!rc)
        rc = aos__llm_rd_finish(&rd, res, 0);
    snprintf(why, whylen, "%s", rd.why);
    *rc_out = rc;
    aos__llm_rd_release(&rd);
}

static void test_reader_split_anywhere(void **state)
{
    (void)state;
    static const char stream[] =
        "data: "
        "{\"id\":\"x1\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n"
        ": ping\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"h\\u00e9llo \"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"b\","
        "\"function\":{\"name\":\"g\",\"arguments\":\"{\\\"y\\\"\"}}]}}]}\r\r"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"a\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":"
        "{\"arguments\":\":2}\"}}]}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"w\\u00f6rld\"},"
        "\"finish_reason\":\"tool_calls\"}],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":"
        "6}}\n\n"
        "data: [DONE]\n\n"
        "data: {\"choices\":[{\"delta\":{\"content\":\"after done\"}}]}\n\n";
    size_t n = sizeof(stream) - 1;
    for (size_t cut = 0; cut <= n + 1; cut++) {
        aos_llm_result_t *r = calloc(1, sizeof(*r));
        int rc;
        char why[160];
        read_all(stream, n, cut > n ? 0 : cut, cut > n, r, &rc, why, sizeof(why));
        if (rc)
            fail_msg("cut %zu: %s", cut, why);
        assert_string_equal(r->content, "h\xc3\xa9llo w\xc3\xb6rld");
        assert_string_equal(r->response_id, "x1");
        assert_int_equal(r->ntool_calls, 2);
        /* in the order of their index, not of their first delta */
        assert_string_equal(r->tool_calls[0].id, "a");
        assert_string_equal(r->tool_calls[0].name, "f");
        assert_int_equal(json_object_size(r->tool_calls[0].arguments), 0);
        assert_string_equal(r->tool_calls[1].id, "b");
        assert_int_equal(json_integer_value(json_object_get(r->tool_calls[1].arguments, "y")), 2);
        assert_string_equal(r->finish_reason, "tool_calls");
        assert_int_equal(r->input_tokens, 5);
        assert_int_equal(r->output_tokens, 6);
        aos_llm_result_free(r);
    }

    /* bounded: the text, and one event */
    aos__llm_rd_t rd;
    aos__llm_rd_init(&rd, AOS_LLM_CHAT, 1, 300, NULL, NULL);
    for (int i = 0; i < 20; i++) {
        char ev[128];
        int k =
            snprintf(ev, sizeof(ev), "data: {\"choices\":[{\"delta\":{\"content\":\"%s\"}}]}\n\n",
                     "0123456789abcdef0123");
        int rc = aos__llm_rd_feed(&rd, ev, (size_t)k);
        if (rc) {
            assert_int_equal(rc, AOS_ETOOBIG);
            assert_true(i >= 14); /* 15 * 20 bytes > 300 */
            break;
        }
        assert_true(i < 15);
    }
    aos__llm_rd_release(&rd);
}

static void test_scrub(void **state)
{
    (void)state;
    char s[256];
    snprintf(s, sizeof(s), "bad key %s here", KEY);
    aos__llm_scrub(s, sizeof(s), KEY);
    assert_string_equal(s, "bad key [REDACTED] here");
    /* a part of it, as OpenAI quotes a refused key */
    snprintf(s, sizeof(s), "Incorrect API key provided: sk-test-012****CRET.");
    aos__llm_scrub(s, sizeof(s), KEY);
    assert_string_equal(s, "Incorrect API key provided: [REDACTED]****CRET.");
    assert_no_fragment(s, KEY);
    /* 8 bytes that fit no mark */
    snprintf(s, sizeof(s), "x89abcdefx");
    aos__llm_scrub(s, sizeof(s), KEY);
    assert_string_equal(s, "x********x");
    /* short secrets and clean text are left alone */
    snprintf(s, sizeof(s), "none of it");
    aos__llm_scrub(s, sizeof(s), "none");
    assert_string_equal(s, "none of it");
    aos__llm_scrub(s, sizeof(s), NULL);
    aos__llm_scrub(s, sizeof(s), KEY);
    assert_string_equal(s, "none of it");
}

int main(void)
{
    aos_log_set_level(AOS_LOG_DEBUG);
    aos_log_set_sink(log_sink, NULL);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_reader_split_anywhere),
        cmocka_unit_test(test_chat_plain),
        cmocka_unit_test(test_chat_tool_calls),
        cmocka_unit_test(test_stream_text),
        cmocka_unit_test(test_stream_tool_calls_interleaved),
        cmocka_unit_test(test_stream_quirks),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_stream_cut),
        cmocka_unit_test(test_too_large),
        cmocka_unit_test(test_rate_limited),
        cmocka_unit_test(test_server_errors),
        cmocka_unit_test(test_auth_refused),
        cmocka_unit_test(test_key_echo_hidden),
        cmocka_unit_test(test_timeout_not_retried),
        cmocka_unit_test(test_connection_refused_retried),
        cmocka_unit_test(test_dropped_after_send_not_retried),
        cmocka_unit_test(test_cancel),
        cmocka_unit_test(test_free_in_flight),
        cmocka_unit_test(test_embeddings),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_extra_and_configure),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    aos_log_set_sink(NULL, NULL);
    /* the check above was not vacuous: the calls were logged */
    if (!logs.ptr || !strstr(logs.ptr, "\"component\":\"llm\""))
        rc = 1;
    aos_buf_release(&logs);
    return rc;
}
