/* test_jsonrpc.c - JSON-RPC 2.0 classification and builders. Inputs are
 * written as JSON text so each case reads like the wire message; builders are
 * checked against the exact compact JSON they must produce (jansson keeps
 * insertion order). Reference ownership is checked by ASan's leak detector:
 * a builder that fails to steal leaks, one that steals twice double-frees. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"
#include "jsonrpc/jsonrpc.h"

static json_t *parse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    if (!j)
        fail_msg("bad test JSON '%s': %s", text, je.text);
    return j;
}

static aos_rpc_kind_t classify_text(const char *text, aos_err_t *err)
{
    json_t *j = parse(text);
    aos_rpc_kind_t k = aos_rpc_classify(j, err);
    json_decref(j);
    return k;
}

/* Asserts that text is INVALID with AOS_EBADREQ and a message containing
 * want (the field it complains about). */
static void expect_invalid(const char *text, const char *want)
{
    aos_err_t err = {0};
    aos_rpc_kind_t k = classify_text(text, &err);
    if (k != AOS_RPC_INVALID)
        fail_msg("expected INVALID for %s, got kind %d", text, (int)k);
    assert_int_equal(err.code, AOS_EBADREQ);
    assert_true(strlen(err.msg) > 0);
    if (want && !strstr(err.msg, want))
        fail_msg("error for %s is '%s', expected it to mention '%s'", text, err.msg, want);
    /* err is optional. */
    assert_int_equal(classify_text(text, NULL), AOS_RPC_INVALID);
}

static void expect_kind(const char *text, aos_rpc_kind_t want)
{
    aos_err_t err = {0};
    aos_rpc_kind_t k = classify_text(text, &err);
    if (k != want)
        fail_msg("expected kind %d for %s, got %d (%s)", (int)want, text, (int)k, err.msg);
    assert_int_equal(classify_text(text, NULL), want);
}

/* Compares the compact serialization of j with want, then frees j. */
static void expect_json(json_t *j, const char *want)
{
    assert_non_null(j);
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    assert_string_equal(s, want);
    free(s);
    json_decref(j);
}

static void test_classify_request(void **state)
{
    (void)state;
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/list\"}", AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":0,\"method\":\"ping\"}", AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":-5,\"method\":\"ping\"}", AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":\"abc\",\"method\":\"ping\"}", AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":\"\",\"method\":\"ping\"}", AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":9007199254740993,\"method\":\"ping\"}",
                AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"tools/call\","
                "\"params\":{\"name\":\"x\",\"arguments\":{}}}",
                AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[1,2]}",
                AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":{}}", AOS_RPC_REQUEST);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":[]}", AOS_RPC_REQUEST);
    /* Member order does not matter. */
    expect_kind("{\"method\":\"m\",\"id\":2,\"jsonrpc\":\"2.0\"}", AOS_RPC_REQUEST);
}

static void test_classify_notification(void **state)
{
    (void)state;
    expect_kind("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}",
                AOS_RPC_NOTIFICATION);
    expect_kind("{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
                "\"params\":{\"requestId\":3}}",
                AOS_RPC_NOTIFICATION);
    expect_kind("{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"params\":[]}", AOS_RPC_NOTIFICATION);
}

static void test_classify_response(void **state)
{
    (void)state;
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{}}", AOS_RPC_RESPONSE);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"result\":{\"tools\":[]}}", AOS_RPC_RESPONSE);
    /* Any JSON value is a result, null included. */
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":null}", AOS_RPC_RESPONSE);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":42}", AOS_RPC_RESPONSE);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-32601,"
                "\"message\":\"method not found\"}}",
                AOS_RPC_RESPONSE);
    expect_kind("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1,\"message\":\"x\","
                "\"data\":[1]}}",
                AOS_RPC_RESPONSE);
}

static void test_invalid_not_an_object(void **state)
{
    (void)state;
    aos_err_t err = {0};
    assert_int_equal(aos_rpc_classify(NULL, &err), AOS_RPC_INVALID);
    assert_int_equal(err.code, AOS_EBADREQ);
    expect_invalid("[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\"}]", "object");
    expect_invalid("\"2.0\"", "object");
    expect_invalid("42", "object");
    expect_invalid("null", "object");
}

static void test_invalid_jsonrpc_version(void **state)
{
    (void)state;
    expect_invalid("{\"id\":1,\"method\":\"m\"}", "jsonrpc");
    expect_invalid("{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"m\"}", "jsonrpc");
    expect_invalid("{\"jsonrpc\":\"2.0 \",\"id\":1,\"method\":\"m\"}", "jsonrpc");
    expect_invalid("{\"jsonrpc\":\"2\",\"id\":1,\"method\":\"m\"}", "jsonrpc");
    expect_invalid("{\"jsonrpc\":\"\",\"id\":1,\"method\":\"m\"}", "jsonrpc");
    expect_invalid("{\"jsonrpc\":2.0,\"id\":1,\"method\":\"m\"}", "jsonrpc");
    expect_invalid("{\"jsonrpc\":null,\"id\":1,\"method\":\"m\"}", "jsonrpc");
}

static void test_invalid_id_null(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"m\"}", "id");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}", "id");
}

static void test_invalid_id_float(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"m\"}", "id");
    /* 1.0 is a real in JSON text even though its value is integral. */
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1.0,\"method\":\"m\"}", "id");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1e3,\"result\":{}}", "id");
}

static void test_invalid_id_other_types(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":true,\"method\":\"m\"}", "id");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"m\"}", "id");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":[1],\"method\":\"m\"}", "id");
}

static void test_invalid_method_not_string(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", "method");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":null}", "method");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":[\"m\"]}", "method");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":true}", "method");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\"}", "method");
}

static void test_invalid_params_scalar(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":\"x\"}", "params");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":3}", "params");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":true}", "params");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"m\",\"params\":null}", "params");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"method\":\"n\",\"params\":1.5}", "params");
}

static void test_invalid_neither_method_nor_id(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\"}", "method");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"result\":{}}", "id");
}

static void test_invalid_response_result_and_error(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{},"
                   "\"error\":{\"code\":-1,\"message\":\"x\"}}",
                   "exactly one");
    /* Neither: an id alone is not a response. */
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1}", "exactly one");
}

static void test_invalid_error_without_integer_code(void **state)
{
    (void)state;
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"message\":\"x\"}}", "code");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":\"-1\"}}", "code");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":-1.5}}", "code");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":{\"code\":null}}", "code");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":\"boom\"}", "error");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":null}", "error");
    expect_invalid("{\"jsonrpc\":\"2.0\",\"id\":1,\"error\":[-1]}", "error");
}

static void test_build_result(void **state)
{
    (void)state;
    json_t *id = json_integer(1);
    expect_json(aos_rpc_result(id, json_pack("{s:[]}", "tools")),
                "{\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"tools\":[]}}");
    /* id is borrowed: the caller's reference is untouched. */
    assert_int_equal(id->refcount, 1);
    json_decref(id);

    /* NULL result becomes {}; NULL id becomes null. */
    expect_json(aos_rpc_result(NULL, NULL), "{\"jsonrpc\":\"2.0\",\"id\":null,\"result\":{}}");
    json_t *sid = json_string("req-7");
    expect_json(aos_rpc_result(sid, json_null()),
                "{\"jsonrpc\":\"2.0\",\"id\":\"req-7\",\"result\":null}");
    json_decref(sid);
}

static void test_build_result_copies_id(void **state)
{
    (void)state;
    json_t *id = json_string("before");
    json_t *r = aos_rpc_result(id, NULL);
    /* Changing the caller's id afterwards does not change the message. */
    json_string_set(id, "after");
    assert_string_equal(json_string_value(aos_rpc_id(r)), "before");
    assert_ptr_not_equal(aos_rpc_id(r), id);
    json_decref(id);
    json_decref(r);
}

static void test_build_error(void **state)
{
    (void)state;
    json_t *id = json_integer(3);
    expect_json(aos_rpc_error(id, -32601, "method not found", NULL),
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32601,"
                "\"message\":\"method not found\"}}");
    expect_json(aos_rpc_error(id, -32602, "bad", json_pack("{s:s}", "field", "x")),
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-32602,\"message\":\"bad\","
                "\"data\":{\"field\":\"x\"}}}");
    /* A NULL message is an empty string, never a missing member. */
    expect_json(aos_rpc_error(NULL, -1, NULL, NULL),
                "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":{\"code\":-1,\"message\":\"\"}}");
    /* Messages are escaped as JSON strings. */
    expect_json(aos_rpc_error(id, -1, "say \"hi\"\n", NULL),
                "{\"jsonrpc\":\"2.0\",\"id\":3,\"error\":{\"code\":-1,"
                "\"message\":\"say \\\"hi\\\"\\n\"}}");
    assert_int_equal(id->refcount, 1);
    json_decref(id);
}

static void test_build_error_aos(void **state)
{
    (void)state;
    json_t *id = json_integer(4);
    expect_json(aos_rpc_error_aos(id, AOS_ENOTFOUND, NULL),
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32002,"
                "\"message\":\"not found\"}}");
    expect_json(aos_rpc_error_aos(id, AOS_ENOMETHOD, ""),
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32601,"
                "\"message\":\"method not found\"}}");
    expect_json(aos_rpc_error_aos(id, AOS_EINVAL, "'name' is required"),
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32602,"
                "\"message\":\"'name' is required\"}}");
    expect_json(aos_rpc_error_aos(id, 12345, NULL),
                "{\"jsonrpc\":\"2.0\",\"id\":4,\"error\":{\"code\":-32603,"
                "\"message\":\"unknown error\"}}");
    json_decref(id);
}

static void test_build_request(void **state)
{
    (void)state;
    json_t *id = json_integer(7);
    expect_json(aos_rpc_request(id, "tools/call", json_pack("{s:s}", "name", "echo")),
                "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\","
                "\"params\":{\"name\":\"echo\"}}");
    /* Without params there is no "params" member at all. */
    expect_json(aos_rpc_request(id, "ping", NULL),
                "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}");
    json_t *sid = json_string("s1");
    expect_json(aos_rpc_request(sid, "m", json_array()),
                "{\"jsonrpc\":\"2.0\",\"id\":\"s1\",\"method\":\"m\",\"params\":[]}");
    assert_int_equal(id->refcount, 1);
    assert_int_equal(sid->refcount, 1);
    json_decref(id);
    json_decref(sid);
}

static void test_build_notification(void **state)
{
    (void)state;
    expect_json(aos_rpc_notification("notifications/initialized", NULL),
                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/initialized\"}");
    expect_json(aos_rpc_notification("notifications/progress",
                                     json_pack("{s:i, s:i}", "progress", 1, "total", 2)),
                "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\","
                "\"params\":{\"progress\":1,\"total\":2}}");
}

static void test_built_messages_classify(void **state)
{
    (void)state;
    json_t *id = json_integer(1);
    json_t *msgs[] = {
        aos_rpc_result(id, NULL),
        aos_rpc_error(id, -1, "x", NULL),
        aos_rpc_error_aos(id, AOS_EINTERNAL, NULL),
        aos_rpc_request(id, "m", json_object()),
        aos_rpc_request(id, "m", NULL),
        aos_rpc_notification("n", json_array()),
        aos_rpc_notification("n", NULL),
    };
    const aos_rpc_kind_t want[] = {AOS_RPC_RESPONSE,    AOS_RPC_RESPONSE, AOS_RPC_RESPONSE,
                                   AOS_RPC_REQUEST,     AOS_RPC_REQUEST,  AOS_RPC_NOTIFICATION,
                                   AOS_RPC_NOTIFICATION};
    for (size_t i = 0; i < sizeof(msgs) / sizeof(msgs[0]); i++) {
        aos_err_t err = {0};
        assert_non_null(msgs[i]);
        assert_int_equal(aos_rpc_classify(msgs[i], &err), want[i]);
        json_decref(msgs[i]);
    }
    json_decref(id);
}

static void test_shortcuts(void **state)
{
    (void)state;
    json_t *req =
        parse("{\"jsonrpc\":\"2.0\",\"id\":\"a\",\"method\":\"tools/call\",\"params\":{\"x\":1}}");
    assert_string_equal(aos_rpc_method(req), "tools/call");
    assert_string_equal(json_string_value(aos_rpc_id(req)), "a");
    assert_ptr_equal(aos_rpc_params(req), json_object_get(req, "params"));
    /* Borrowed: no new reference was taken. */
    assert_int_equal(aos_rpc_params(req)->refcount, 1);
    json_decref(req);

    json_t *res = parse("{\"jsonrpc\":\"2.0\",\"id\":2,\"result\":{}}");
    assert_null(aos_rpc_method(res));
    assert_null(aos_rpc_params(res));
    assert_int_equal(json_integer_value(aos_rpc_id(res)), 2);
    json_decref(res);

    json_t *note = parse("{\"jsonrpc\":\"2.0\",\"method\":\"n\"}");
    assert_null(aos_rpc_id(note));
    assert_null(aos_rpc_params(note));
    json_decref(note);

    assert_null(aos_rpc_method(NULL));
    assert_null(aos_rpc_id(NULL));
    assert_null(aos_rpc_params(NULL));
}

static void test_build_error_bad_utf8_fails_without_leak(void **state)
{
    (void)state;
    /* jansson refuses invalid UTF-8; the builder returns NULL and still
     * releases the stolen data (ASan would report a leak). */
    json_t *id = json_integer(1);
    json_t *r = aos_rpc_error(id, -1, "\xff\xfe", json_pack("{s:i}", "n", 1));
    assert_null(r);
    assert_int_equal(id->refcount, 1);
    json_decref(id);
}

/* ---- aos_rpc_dump --------------------------------------------------------- */

static char *dump_ours(const json_t *v)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    assert_int_equal(aos_rpc_dump(v, &b), 0);
    size_t n;
    return aos_buf_detach(&b, &n);
}

/* The same text as jansson's compact dump. */
static void test_dump_matches_jansson(void **state)
{
    (void)state;
    const char *docs[] = {
        "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"tools/call\",\"params\":{\"name\":\"echo\","
        "\"arguments\":{\"message\":\"hello\"},\"_meta\":{\"traceparent\":\"00-ab-cd-01\"}}}",
        "{\"z\":1,\"a\":2,\"m\":[1,-2,9223372036854775807,-9223372036854775808,0]}",
        "[true,false,null,\"\",{},[],[[]],{\"\":{}}]",
        "{\"q\":\"a\\\"b\\\\c\\/d\\n\\r\\t\\b\\f e\",\"u\":\"\\u00e9\\u4e2d\\ud83d\\ude00\"}",
        "{\"r\":[1.5,-0.0,1e300,3.0,0.1]}",
        "\"just a string\"",
        "{\"c\":\"\\u0001\\u001f\\u001F\\u007fx\"}", /* escapes: upper-case hex */
        "42",
    };
    for (size_t i = 0; i < sizeof(docs) / sizeof(docs[0]); i++) {
        json_t *v = parse(docs[i]);
        char *ours = dump_ours(v);
        char *theirs = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        assert_non_null(theirs);
        assert_string_equal(ours, theirs);
        free(ours);
        free(theirs);
        json_decref(v);
    }
}

/* Every control character (NUL included) in a string and some in a key: the text
 * parses back to an equal value. */
static void test_dump_escapes_round_trip(void **state)
{
    (void)state;
    char s[40];
    for (int c = 0; c < 32; c++)
        s[c] = (char)c;
    memcpy(s + 32, "\"\\/x\x7f", 5);
    json_t *v = json_object();
    json_object_set_new(v, "s", json_stringn(s, 37));
    json_object_set_new(v, "k\ney\x01", json_string("\xc3\xa9"));
    char *ours = dump_ours(v);
    json_error_t je;
    json_t *back = json_loads(ours, JSON_ALLOW_NUL, &je);
    assert_non_null(back);
    assert_true(json_equal(v, back));
    assert_null(strchr(ours, '\n'));
    free(ours);
    json_decref(back);
    json_decref(v);
}

static void test_dump_refuses_too_deep(void **state)
{
    (void)state;
    json_t *v = json_array();
    for (int i = 0; i < 2100; i++) {
        json_t *outer = json_array();
        json_array_append_new(outer, v);
        v = outer;
    }
    aos_buf_t b;
    aos_buf_init(&b, 0);
    assert_int_equal(aos_rpc_dump(v, &b), AOS_EINVAL);
    aos_buf_release(&b);
    assert_int_equal(aos_rpc_dump(NULL, &b), AOS_EINVAL);
    json_decref(v);
}

/* ---- aos_rpc_scan_result ------------------------------------------------- */

/* What the scan says of text[0..n) agrees with jansson's reading: when it
 * accepts, jansson parses the same message, whose id is the integer the
 * scan found at the place it found it, whose result is the value at the
 * place it found it, and whose result.isError is what it found. Returns
 * the scan's verdict. */
static int scan_agrees(const char *text, size_t n, aos_rpc_scan_t *sc)
{
    int ok = aos_rpc_scan_result(text, n, sc);
    if (!ok)
        return 0;
    json_error_t je;
    json_t *m = json_loadb(text, n, JSON_ALLOW_NUL, &je);
    assert_non_null(m);
    assert_true(json_is_object(m));
    assert_null(json_object_get(m, "error"));
    assert_null(json_object_get(m, "method"));
    json_t *id = json_object_get(m, "id");
    assert_true(json_is_integer(id));
    assert_int_equal((uint64_t)json_integer_value(id), sc->id);
    json_t *id_at = json_loadb(text + sc->id_off, sc->id_len, JSON_DECODE_ANY, &je);
    assert_non_null(id_at);
    assert_true(json_equal(id, id_at));
    json_t *res = json_object_get(m, "result");
    json_t *res_at =
        json_loadb(text + sc->result_off, sc->result_len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    assert_non_null(res);
    assert_non_null(res_at);
    assert_true(json_equal(res, res_at));
    assert_int_equal(sc->is_error, json_is_true(json_object_get(res, "isError")));
    assert_null(memchr(text, '\r', n));
    assert_null(memchr(text, '\n', n));
    json_decref(id_at);
    json_decref(res_at);
    json_decref(m);
    return 1;
}

static int scan_text(const char *text, aos_rpc_scan_t *sc)
{
    return scan_agrees(text, strlen(text), sc);
}

static void test_scan_plain_result(void **state)
{
    (void)state;
    aos_rpc_scan_t sc;
    const char *t = "{\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Echo: hello\"}]},"
                    "\"jsonrpc\":\"2.0\",\"id\":42}";
    assert_int_equal(scan_text(t, &sc), 1);
    assert_int_equal(sc.id, 42);
    assert_int_equal(sc.id_len, 2);
    assert_memory_equal(t + sc.id_off, "42", 2);
    assert_int_equal(sc.is_error, 0);
    assert_int_equal(t[sc.result_off], '{');
    assert_int_equal(t[sc.result_off + sc.result_len], ',');
    /* spaces and tabs between tokens; a result of any type */
    assert_int_equal(
        scan_text(" {\t\"jsonrpc\" : \"2.0\" , \"id\" : 7 , \"result\" : null } ", &sc), 1);
    assert_int_equal(sc.id, 7);
    assert_int_equal(
        scan_text("{\"id\":123456789012345678,\"result\":[1,-2.5e10,\"x\",true]}", &sc), 1);
    assert_int_equal(sc.id, 123456789012345678ull);
}

static void test_scan_is_error(void **state)
{
    (void)state;
    aos_rpc_scan_t sc;
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"content\":[],\"isError\":true}}", &sc), 1);
    assert_int_equal(sc.is_error, 1);
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"isError\":false}}", &sc), 1);
    assert_int_equal(sc.is_error, 0);
    /* the last of two counts, as in jansson */
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"isError\":true,\"isError\":false}}", &sc),
                     1);
    assert_int_equal(sc.is_error, 0);
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"isError\":false,\"isError\":true}}", &sc),
                     1);
    assert_int_equal(sc.is_error, 1);
    /* only result's own member: not a nested one, not a string, not elsewhere */
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"isError\":{\"a\":true}}}", &sc), 1);
    assert_int_equal(sc.is_error, 0);
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"x\":{\"isError\":true}}}", &sc), 1);
    assert_int_equal(sc.is_error, 0);
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"isError\":\"true\"}}", &sc), 1);
    assert_int_equal(sc.is_error, 0);
    assert_int_equal(scan_text("{\"isError\":true,\"id\":1,\"result\":{}}", &sc), 1);
    assert_int_equal(sc.is_error, 0);
    assert_int_equal(scan_text("{\"id\":1,\"result\":[{\"isError\":true}]}", &sc), 1);
    assert_int_equal(sc.is_error, 0);
}

/* An upstream controls the text: the id the scan reports must be the
 * top-level one, whatever the result holds. */
static void test_scan_id_is_the_top_level_one(void **state)
{
    (void)state;
    aos_rpc_scan_t sc;
    assert_int_equal(scan_text("{\"result\":{\"id\":5},\"id\":3}", &sc), 1);
    assert_int_equal(sc.id, 3);
    assert_int_equal(scan_text("{\"id\":3,\"result\":{\"id\":5,\"result\":{\"id\":6}}}", &sc), 1);
    assert_int_equal(sc.id, 3);
    assert_int_equal(scan_text("{\"result\":\"\\\"id\\\":5,\",\"id\":3}", &sc), 1);
    assert_int_equal(sc.id, 3);
    assert_int_equal(scan_text("{\"x\":[{\"id\":9}],\"result\":[],\"id\":4}", &sc), 1);
    assert_int_equal(sc.id, 4);
}

static void test_scan_leaves_the_rest_to_jansson(void **state)
{
    (void)state;
    static const char *const no[] = {
        "",
        "[{\"id\":1,\"result\":{}}]",                               /* a batch */
        "{\"id\":1,\"error\":{\"code\":-32603,\"message\":\"x\"}}", /* an error */
        "{\"id\":1,\"result\":{},\"error\":{}}",
        "{\"id\":1,\"method\":\"ping\"}",
        "{\"id\":1,\"method\":\"x\",\"result\":{}}",
        "{\"method\":\"notifications/progress\",\"params\":{}}",
        "{\"id\":1}",                   /* no result */
        "{\"result\":{}}",              /* no id */
        "{\"id\":\"1\",\"result\":{}}", /* not ours: ours are integers */
        "{\"id\":0,\"result\":{}}",     /* nor 0 */
        "{\"id\":-1,\"result\":{}}",
        "{\"id\":1.0,\"result\":{}}",
        "{\"id\":1e2,\"result\":{}}",
        "{\"id\":null,\"result\":{}}",
        "{\"id\":1234567890123456789,\"result\":{}}", /* too long for the scan */
        "{\"id\":1,\"id\":2,\"result\":{}}",          /* repeated names */
        "{\"id\":1,\"result\":{},\"result\":{}}",
        "{\"\\u0069d\":1,\"result\":{}}", /* escaped names at the top */
        "{\"id\":1,\"r\\u0065sult\":{},\"result\":{}}",
        "{\"id\":1,\"result\":{\"is\\u0045rror\":true}}",
        "{\"id\":1,\"result\":{\"a\\u0000\":1}}", /* NUL in a name: jansson refuses */
        "{\"id\":1,\"result\":{}}x",              /* trailing text */
        "{\"id\":1,\"result\":{}}{}",
        "{\"id\":1,\"result\":{}",   /* cut short */
        "{\"id\":1,\"result\":{}},", /* trailing comma, missing value, ... */
        "{\"id\":1,\"result\":[1,]}",
        "{\"id\":1,\"result\":{\"a\":1,}}",
        "{\"id\":1,\"result\":{\"a\"}}",
        "{\"id\":1,\"result\":{\"a\" 1}}",
        "{\"id\":1 \"result\":{}}",
        "{\"id\":1,\"result\":tru}",
        "{\"id\":1,\"result\":truex}",
        "{\"id\":1,\"result\":nul}",
        "{\"id\":1,\"result\":01}", /* numbers */
        "{\"id\":01,\"result\":{}}",
        "{\"id\":1,\"result\":-}",
        "{\"id\":1,\"result\":1.}",
        "{\"id\":1,\"result\":.5}",
        "{\"id\":1,\"result\":1e}",
        "{\"id\":1,\"result\":1e+}",
        "{\"id\":1,\"result\":+1}",
        "{\"id\":1,\"result\":1e999}", /* jansson: overflow */
        "{\"id\":1,\"result\":99999999999999999999}",
        "{\"id\":1,\"result\":\"a\tb\"}", /* a control character */
        "{\"id\":1,\"result\":\"\\x\"}",  /* bad escapes */
        "{\"id\":1,\"result\":\"\\u12\"}",
        "{\"id\":1,\"result\":\"\\u12g4\"}",
        "{\"id\":1,\"result\":\"\\ud800\"}", /* lone surrogates */
        "{\"id\":1,\"result\":\"\\udc00\"}",
        "{\"id\":1,\"result\":\"\\ud800\\u0041\"}",
        "{\"id\":1,\"result\":\"\xc3\x28\"}",         /* bad UTF-8 */
        "{\"id\":1,\"result\":\"\xc0\xaf\"}",         /* overlong */
        "{\"id\":1,\"result\":\"\xed\xa0\x80\"}",     /* a surrogate in UTF-8 */
        "{\"id\":1,\"result\":\"\xf4\x90\x80\x80\"}", /* past U+10FFFF */
        "{\"id\":1,\"result\":\"\xe2\x82\"}",         /* cut */
        "{\"id\":1,\"result\":\xc3\xa9}",             /* non-ASCII outside a string */
        "{\"id\":1,\r\"result\":{}}", /* CR between tokens: JSON, not one SSE line */
        "{\"id\":1,\n\"result\":{}}",
        "{\"id\":1,\f\"result\":{}}",
        "{\"id\":1,\"result\":'x'}",
        "{'id':1,\"result\":{}}",
        "\"id\"",
        "1",
    };
    aos_rpc_scan_t sc;
    for (size_t i = 0; i < sizeof(no) / sizeof(no[0]); i++) {
        if (aos_rpc_scan_result(no[i], strlen(no[i]), &sc))
            fail_msg("accepted: %s", no[i]);
    }
    /* a NUL byte in the text itself */
    static const char nul[] = "{\"id\":1,\"result\":\"a\0b\"}";
    assert_int_equal(aos_rpc_scan_result(nul, sizeof(nul) - 1, &sc), 0);
    /* escapes that are fine: in values, and \u0000 in a value */
    assert_int_equal(scan_text("{\"id\":1,\"result\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u0000\\u00e9"
                               "\\ud83d\\ude00\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}",
                               &sc),
                     1);
    /* escapes in member names below the top level */
    assert_int_equal(scan_text("{\"id\":1,\"result\":{\"x\":{\"\\u0061\":1}}}", &sc), 1);
    /* numbers at the limits of what the scan vouches for */
    assert_int_equal(
        scan_text("{\"id\":1,\"result\":[-0,0.0,123456789012345678,1.5E-99,2e+9]}", &sc), 1);
}

/* Never past the length: the same text cut at every length is refused
 * (it ends inside the object), and read within its bounds (ASan). */
static void test_scan_every_prefix(void **state)
{
    (void)state;
    const char *t = "{\"jsonrpc\":\"2.0\",\"id\":12,\"result\":{\"content\":[{\"type\":\"text\","
                    "\"text\":\"\\u00e9\xc3\xa9\"}],\"isError\":false,\"n\":-1.5e3}}";
    size_t n = strlen(t);
    aos_rpc_scan_t sc;
    for (size_t i = 0; i < n; i++) {
        char *cut = malloc(i ? i : 1);
        memcpy(cut, t, i);
        assert_int_equal(aos_rpc_scan_result(cut, i, &sc), 0);
        free(cut);
    }
    assert_int_equal(scan_text(t, &sc), 1);
}

static void test_scan_depth(void **state)
{
    (void)state;
    /* jansson counts every value as a level, a scalar too, and allows 2048:
     * the scan agrees on both sides of the limit, with and without a
     * scalar innermost */
    static const char head[] = "{\"id\":1,\"result\":";
    for (int scalar = 0; scalar <= 1; scalar++) {
        for (size_t levels = 2046; levels <= 2050; levels++) {
            size_t inner = levels - 1 - (size_t)scalar; /* arrays below the top object */
            char *t = malloc(sizeof(head) + 2 * inner + 8);
            size_t k = sizeof(head) - 1;
            memcpy(t, head, k);
            for (size_t i = 0; i < inner; i++)
                t[k++] = '[';
            if (scalar)
                t[k++] = '7';
            for (size_t i = 0; i < inner; i++)
                t[k++] = ']';
            t[k++] = '}';
            aos_rpc_scan_t sc;
            json_t *j = json_loadb(t, k, JSON_ALLOW_NUL, NULL);
            assert_int_equal(j != NULL, levels <= 2048);
            assert_int_equal(scan_agrees(t, k, &sc), levels <= 2048);
            json_decref(j);
            free(t);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classify_request),
        cmocka_unit_test(test_classify_notification),
        cmocka_unit_test(test_classify_response),
        cmocka_unit_test(test_invalid_not_an_object),
        cmocka_unit_test(test_invalid_jsonrpc_version),
        cmocka_unit_test(test_invalid_id_null),
        cmocka_unit_test(test_invalid_id_float),
        cmocka_unit_test(test_invalid_id_other_types),
        cmocka_unit_test(test_invalid_method_not_string),
        cmocka_unit_test(test_invalid_params_scalar),
        cmocka_unit_test(test_invalid_neither_method_nor_id),
        cmocka_unit_test(test_invalid_response_result_and_error),
        cmocka_unit_test(test_invalid_error_without_integer_code),
        cmocka_unit_test(test_build_result),
        cmocka_unit_test(test_build_result_copies_id),
        cmocka_unit_test(test_build_error),
        cmocka_unit_test(test_build_error_aos),
        cmocka_unit_test(test_build_request),
        cmocka_unit_test(test_build_notification),
        cmocka_unit_test(test_built_messages_classify),
        cmocka_unit_test(test_shortcuts),
        cmocka_unit_test(test_build_error_bad_utf8_fails_without_leak),
        cmocka_unit_test(test_dump_matches_jansson),
        cmocka_unit_test(test_dump_escapes_round_trip),
        cmocka_unit_test(test_dump_refuses_too_deep),
        cmocka_unit_test(test_scan_plain_result),
        cmocka_unit_test(test_scan_is_error),
        cmocka_unit_test(test_scan_id_is_the_top_level_one),
        cmocka_unit_test(test_scan_leaves_the_rest_to_jansson),
        cmocka_unit_test(test_scan_every_prefix),
        cmocka_unit_test(test_scan_depth),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
