/* test_err.c - the AOS_ERR_MAP table and its lookups: every code is
 * negative and distinct with its own name and REST code string, maps to a
 * 4xx/5xx HTTP status and a negative JSON-RPC code that no two failures
 * share (but the kinds err.h names); the MCP transport's rows carry the
 * statuses the MCP specification requires; unknown codes get safe
 * fallbacks; aos_err_set / aos_err_msg fill and read an aos_err_t. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <ctype.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "err/err.h"

/* The table as the test sees it, built from the same X-macro. */
typedef struct {
    int code;
    const char *name;
    int status;
    int rpc;
    const char *str;
    const char *msg;
} row_t;

static const row_t rows[] = {
#define XX(name, status, rpc, str, msg) {AOS_##name, #name, status, rpc, str, msg},
    AOS_ERR_MAP(XX)
#undef XX
};
#define NROWS (sizeof(rows) / sizeof(rows[0]))

static void test_codes_negative_distinct_and_in_range(void **state)
{
    (void)state;
    assert_int_equal(AOS_OK, 0);
    assert_true(NROWS > 0);
    /* The enum has exactly one value per row between the sentinels. */
    assert_int_equal(AOS__ELAST - AOS__EFIRST - 1, (int)NROWS);
    assert_true(AOS__ELAST < 0);
    for (size_t i = 0; i < NROWS; i++) {
        assert_true(rows[i].code < 0);
        assert_true(rows[i].code > AOS__EFIRST);
        assert_true(rows[i].code < AOS__ELAST);
        for (size_t j = i + 1; j < NROWS; j++)
            assert_int_not_equal(rows[i].code, rows[j].code);
    }
}

static void test_names_match_table_and_are_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const char *n = aos_err_name(rows[i].code);
        assert_non_null(n);
        assert_string_equal(n, rows[i].name);
        assert_int_equal(n[0], 'E');
        assert_string_not_equal(n, "EUNKNOWN");
        assert_string_not_equal(n, "OK");
        for (size_t j = i + 1; j < NROWS; j++)
            assert_string_not_equal(n, aos_err_name(rows[j].code));
    }
    assert_string_equal(aos_err_name(AOS_EINVAL), "EINVAL");
    assert_string_equal(aos_err_name(AOS_ETIMEDOUT), "ETIMEDOUT");
}

static void test_code_strings_match_table_and_are_distinct(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const char *c = aos_err_code(rows[i].code);
        assert_non_null(c);
        assert_string_equal(c, rows[i].str);
        /* REST code strings are snake_case identifiers. */
        assert_true(strlen(c) > 0);
        for (const char *p = c; *p; p++)
            assert_true(islower((unsigned char)*p) || *p == '_');
        for (size_t j = i + 1; j < NROWS; j++)
            assert_string_not_equal(c, aos_err_code(rows[j].code));
    }
    assert_string_equal(aos_err_code(AOS_EINVAL), "invalid_argument");
    assert_string_equal(aos_err_code(AOS_ENOTFOUND), "not_found");
}

static void test_http_status_is_4xx_or_5xx(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        int s = aos_err_http_status(rows[i].code);
        assert_int_equal(s, rows[i].status);
        assert_in_range(s, 400, 599);
    }
    /* Spot checks against what HTTP clients rely on. */
    assert_int_equal(aos_err_http_status(AOS_EINVAL), 400);
    assert_int_equal(aos_err_http_status(AOS_EUNAUTH), 401);
    assert_int_equal(aos_err_http_status(AOS_EFORBIDDEN), 403);
    assert_int_equal(aos_err_http_status(AOS_ENOTFOUND), 404);
    assert_int_equal(aos_err_http_status(AOS_EMETHOD), 405);
    assert_int_equal(aos_err_http_status(AOS_ECONFLICT), 409);
    assert_int_equal(aos_err_http_status(AOS_ETOOBIG), 413);
    assert_int_equal(aos_err_http_status(AOS_ERATE), 429);
    assert_int_equal(aos_err_http_status(AOS_EINTERNAL), 500);
    assert_int_equal(aos_err_http_status(AOS_EUPSTREAM), 502);
    assert_int_equal(aos_err_http_status(AOS_EUNAVAIL), 503);
    assert_int_equal(aos_err_http_status(AOS_ETIMEDOUT), 504);
}

static void test_rpc_code_is_negative(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        int c = aos_err_rpc_code(rows[i].code);
        assert_int_equal(c, rows[i].rpc);
        assert_true(c < 0);
    }
    /* The codes fixed by the JSON-RPC 2.0 specification. */
    assert_int_equal(aos_err_rpc_code(AOS_EPARSE), -32700);
    assert_int_equal(aos_err_rpc_code(AOS_EBADREQ), -32600);
    assert_int_equal(aos_err_rpc_code(AOS_ENOMETHOD), -32601);
    assert_int_equal(aos_err_rpc_code(AOS_EINVAL), -32602);
    assert_int_equal(aos_err_rpc_code(AOS_EINTERNAL), -32603);
}

/* A JSON-RPC code names one failure, except the kinds err.h lists as
 * shared: a client that sees -32001 knows it is EUNAUTH and nothing else. */
static void test_rpc_codes_shared_only_by_kinds(void **state)
{
    (void)state;
    const int shared[] = {-32000, -32600, -32603};
    for (size_t i = 0; i < NROWS; i++) {
        for (size_t j = i + 1; j < NROWS; j++) {
            if (rows[i].rpc != rows[j].rpc)
                continue;
            int kind = 0;
            for (size_t k = 0; k < sizeof(shared) / sizeof(shared[0]); k++)
                kind |= rows[i].rpc == shared[k];
            if (!kind)
                fail_msg("%s and %s share JSON-RPC code %d", rows[i].name, rows[j].name,
                         rows[i].rpc);
        }
    }
}

/* What the MCP Streamable HTTP transport answers: the HTTP statuses the
 * specification requires, -32000 as the TypeScript SDK answers a refusal,
 * and the REST code strings a client can tell the refusals apart by. */
static void test_mcp_transport_rows(void **state)
{
    (void)state;
    const struct {
        int code;
        int status;
        const char *str;
    } t[] = {
        {AOS_ENOSESSIONID, 400, "session_id_required"},
        {AOS_EPROTOVER, 400, "unsupported_protocol_version"},
        {AOS_ENOSESSION, 404, "session_not_found"},
        {AOS_EMETHOD, 405, "method_not_allowed"},
        {AOS_ENOTACCEPT, 406, "not_acceptable"},
        {AOS_EMEDIA, 415, "unsupported_media_type"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        assert_int_equal(aos_err_http_status(t[i].code), t[i].status);
        assert_int_equal(aos_err_rpc_code(t[i].code), -32000);
        assert_string_equal(aos_err_code(t[i].code), t[i].str);
    }
    /* MCP's own code for an unknown resource; ours for any unknown name */
    assert_int_equal(aos_err_rpc_code(AOS_ENOTFOUND), -32002);
    /* an unknown session is not an authentication failure */
    assert_int_not_equal(aos_err_rpc_code(AOS_ENOSESSION), aos_err_rpc_code(AOS_EUNAUTH));
    assert_int_equal(aos_err_http_status(AOS_EFORBIDDEN), 403);
}

static void test_default_messages(void **state)
{
    (void)state;
    for (size_t i = 0; i < NROWS; i++) {
        const char *m = aos_strerror(rows[i].code);
        assert_non_null(m);
        assert_string_equal(m, rows[i].msg);
        /* Messages are lowercase and carry no final period. */
        size_t n = strlen(m);
        assert_true(n > 0);
        assert_false(isupper((unsigned char)m[0]));
        assert_int_not_equal(m[n - 1], '.');
        assert_string_not_equal(m, "unknown error");
    }
}

static void test_ok(void **state)
{
    (void)state;
    assert_string_equal(aos_err_name(AOS_OK), "OK");
    assert_string_equal(aos_err_code(AOS_OK), "ok");
    assert_string_equal(aos_strerror(AOS_OK), "ok");
    assert_int_equal(aos_err_http_status(AOS_OK), 200);
    assert_int_equal(aos_err_rpc_code(AOS_OK), 0);
}

static void test_unknown_codes_fall_back(void **state)
{
    (void)state;
    const int unknown[] = {1, -1, 42, AOS__EFIRST, AOS__ELAST, AOS__EFIRST - 1, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++) {
        int c = unknown[i];
        assert_string_equal(aos_err_name(c), "EUNKNOWN");
        assert_string_equal(aos_err_code(c), "internal");
        assert_string_equal(aos_strerror(c), "unknown error");
        assert_int_equal(aos_err_http_status(c), 500);
        assert_int_equal(aos_err_rpc_code(c), -32603);
    }
}

static void test_err_set_fills_and_returns_code(void **state)
{
    (void)state;
    aos_err_t err = {0};
    int rc = aos_err_set(&err, AOS_ENOTFOUND, "server '%s' has %d tools", "gh", 3);
    assert_int_equal(rc, AOS_ENOTFOUND);
    assert_int_equal(err.code, AOS_ENOTFOUND);
    assert_string_equal(err.msg, "server 'gh' has 3 tools");
    assert_string_equal(aos_err_msg(&err), "server 'gh' has 3 tools");

    /* A second set replaces both fields. */
    rc = aos_err_set(&err, AOS_EIO, "disk");
    assert_int_equal(rc, AOS_EIO);
    assert_int_equal(err.code, AOS_EIO);
    assert_string_equal(aos_err_msg(&err), "disk");
}

static void test_err_set_null_err_still_returns_code(void **state)
{
    (void)state;
    assert_int_equal(aos_err_set(NULL, AOS_EINVAL, "ignored %d", 1), AOS_EINVAL);
    assert_int_equal(aos_err_set(NULL, AOS_EIO, NULL), AOS_EIO);
    assert_int_equal(aos_err_set(NULL, 0, NULL), 0);
}

static void test_err_set_without_message_uses_default(void **state)
{
    (void)state;
    aos_err_t err = {0};
    aos_err_set(&err, AOS_EINVAL, "old detail");
    /* NULL fmt clears a previous message, so the default shows. */
    assert_int_equal(aos_err_set(&err, AOS_ENOMEM, NULL), AOS_ENOMEM);
    assert_int_equal(err.code, AOS_ENOMEM);
    assert_string_equal(err.msg, "");
    assert_string_equal(aos_err_msg(&err), "out of memory");
    assert_string_equal(aos_err_msg(&err), aos_strerror(AOS_ENOMEM));
}

static void test_err_set_truncates_long_message(void **state)
{
    (void)state;
    aos_err_t err;
    memset(&err, 'x', sizeof(err));
    char big[1000];
    memset(big, 'a', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    aos_err_set(&err, AOS_EINVAL, "%s", big);
    assert_int_equal(strlen(err.msg), sizeof(err.msg) - 1);
    assert_int_equal(err.msg[sizeof(err.msg) - 1], '\0');
    assert_memory_equal(err.msg, big, sizeof(err.msg) - 1);
}

static void test_err_msg_fallbacks(void **state)
{
    (void)state;
    assert_string_equal(aos_err_msg(NULL), "unknown error");
    aos_err_t zero = {0};
    assert_string_equal(aos_err_msg(&zero), "ok");
    aos_err_t e = {AOS_ETIMEDOUT, ""};
    assert_string_equal(aos_err_msg(&e), "timed out");
    aos_err_t u = {12345, ""};
    assert_string_equal(aos_err_msg(&u), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_codes_negative_distinct_and_in_range),
        cmocka_unit_test(test_names_match_table_and_are_distinct),
        cmocka_unit_test(test_code_strings_match_table_and_are_distinct),
        cmocka_unit_test(test_http_status_is_4xx_or_5xx),
        cmocka_unit_test(test_rpc_code_is_negative),
        cmocka_unit_test(test_rpc_codes_shared_only_by_kinds),
        cmocka_unit_test(test_mcp_transport_rows),
        cmocka_unit_test(test_default_messages),
        cmocka_unit_test(test_ok),
        cmocka_unit_test(test_unknown_codes_fall_back),
        cmocka_unit_test(test_err_set_fills_and_returns_code),
        cmocka_unit_test(test_err_set_null_err_still_returns_code),
        cmocka_unit_test(test_err_set_without_message_uses_default),
        cmocka_unit_test(test_err_set_truncates_long_message),
        cmocka_unit_test(test_err_msg_fallbacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
