/* test_tracectx.c - W3C Trace Context: traceparent parsed as the
 * specification's examples and the W3C test suite's cases (version 00,
 * future versions, case, lengths, all-zero ids, whitespace), written back,
 * tracestate checked and cut, ids made. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "err/err.h"
#include "tracectx/tracectx.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static void parses(const char *tp, const char *tid, const char *sid, int flags)
{
    aos_tracectx_t c;
    if (aos_tracectx_parse(&c, tp, NULL) != 0)
        fail_msg("refused: '%s'", tp);
    assert_string_equal(c.trace_id, tid);
    assert_string_equal(c.span_id, sid);
    assert_int_equal(c.flags, flags);
    assert_int_equal(c.remote, 1);
}

static void refuses(const char *tp)
{
    aos_tracectx_t c;
    memset(&c, 0x55, sizeof(c));
    if (aos_tracectx_parse(&c, tp, "congo=t61rcWkgMzE") != AOS_EINVAL)
        fail_msg("accepted: '%s'", tp);
    /* nothing of it is kept: not even the tracestate */
    assert_string_equal(c.trace_id, "");
    assert_string_equal(c.span_id, "");
    assert_string_equal(c.tracestate, "");
    assert_false(aos_tracectx_valid(&c));
}

static void test_traceparent_version_00(void **state)
{
    parses("00-" TID "-" SID "-01", TID, SID, 1);
    parses("00-" TID "-" SID "-00", TID, SID, 0);
    /* flags this version does not define are dropped, the sampled bit kept */
    parses("00-" TID "-" SID "-09", TID, SID, 1);
    parses("00-" TID "-" SID "-fe", TID, SID, 0);
    /* optional whitespace around the value (a header's OWS) */
    parses(" \t00-" TID "-" SID "-01 ", TID, SID, 1);

    refuses("");
    refuses("00");
    refuses("00-" TID "-" SID);
    refuses("00-" TID "-" SID "-");
    refuses("00-" TID "-" SID "-1");
    refuses("00-" TID "-" SID "-001");
    /* version 00 is exactly 55 characters: nothing may follow */
    refuses("00-" TID "-" SID "-01-what-the-future-will-be-like");
    refuses("00-" TID "-" SID "-01-");
    /* uppercase, other characters, lengths */
    refuses("00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01");
    refuses("00-" TID "-00F067AA0BA902B7-01");
    refuses("00-" TID "-" SID "-0A");
    refuses("00-4bf92f3577b34da6a3ce929d0e0e473g-" SID "-01");
    refuses("00-" TID "-00f067aa0ba902b.-01");
    refuses("00-" TID "-" SID "-.1");
    refuses("00-4bf92f3577b34da6a3ce929d0e0e473-" SID "-01");
    refuses("00-4bf92f3577b34da6a3ce929d0e0e47366-" SID "-01");
    refuses("00-" TID "-00f067aa0ba902b-01");
    refuses("00-" TID "-00f067aa0ba902b77-01");
    refuses("00_" TID "-" SID "-01");
    refuses("00-" TID "_" SID "-01");
    refuses("00-" TID "-" SID "_01");
    /* all-zero ids are invalid */
    refuses("00-00000000000000000000000000000000-" SID "-01");
    refuses("00-" TID "-0000000000000000-01");
    /* a version that is not two lowercase hex digits */
    refuses(".0-" TID "-" SID "-01");
    refuses("0.-" TID "-" SID "-01");
    refuses("0-" TID "-" SID "-01");
    refuses("000-" TID "-" SID "-01");
    refuses("0A-" TID "-" SID "-01");
    refuses(NULL);
}

static void test_traceparent_future_versions(void **state)
{
    /* a higher version is read as 00 when its first fields have 00's shape */
    parses("cc-" TID "-" SID "-01", TID, SID, 1);
    parses("cc-" TID "-" SID "-01-what-the-future-will-be-like", TID, SID, 1);
    parses("01-" TID "-" SID "-00-", TID, SID, 0);
    refuses("cc-" TID "-" SID "-01.what-the-future-will-be-like");
    refuses("cc-" TID "-" SID);
    refuses("cc-" TID "-" SID "-0");
    refuses("cc-" TID "-" SID "-01x");
    /* version ff is forbidden */
    refuses("ff-" TID "-" SID "-01");
    refuses("ff-" TID "-" SID "-01-future");
    /* a bound on what a future version may add */
    char big[400];
    snprintf(big, sizeof(big), "cc-" TID "-" SID "-01-%0300d", 0);
    refuses(big);
}

static void test_format_roundtrip(void **state)
{
    aos_tracectx_t c;
    char out[AOS_TRACEPARENT_LEN + 1];
    assert_int_equal(aos_tracectx_parse(&c, "00-" TID "-" SID "-01", NULL), 0);
    assert_int_equal(aos_tracectx_format(&c, out), 0);
    assert_string_equal(out, "00-" TID "-" SID "-01");
    /* a future version is written as the highest known one: 00 */
    assert_int_equal(aos_tracectx_parse(&c, "cc-" TID "-" SID "-01-more", NULL), 0);
    assert_int_equal(aos_tracectx_format(&c, out), 0);
    assert_string_equal(out, "00-" TID "-" SID "-01");
    c.flags = 0;
    assert_int_equal(aos_tracectx_format(&c, out), 0);
    assert_string_equal(out, "00-" TID "-" SID "-00");
    /* a context without a span id is not sent */
    c.span_id[0] = '\0';
    assert_int_equal(aos_tracectx_format(&c, out), AOS_EINVAL);
    assert_string_equal(out, "");
    assert_int_equal(aos_tracectx_format(NULL, out), AOS_EINVAL);
}

static void test_new_and_child(void **state)
{
    aos_tracectx_t root, child, again;
    aos_tracectx_new(&root);
    assert_int_equal(strlen(root.trace_id), AOS_TRACE_ID_LEN);
    assert_true(aos_tracectx_id_valid(root.trace_id, AOS_TRACE_ID_LEN));
    assert_string_equal(root.span_id, ""); /* the next span is the root */
    assert_int_equal(root.flags, AOS_TRACE_SAMPLED);
    assert_false(aos_tracectx_valid(&root));

    aos_tracectx_child(&child, &root);
    assert_string_equal(child.trace_id, root.trace_id);
    assert_true(aos_tracectx_id_valid(child.span_id, AOS_SPAN_ID_LEN));
    assert_true(aos_tracectx_valid(&child));

    /* under a caller's context: its trace, flags and tracestate go on */
    aos_tracectx_t in;
    assert_int_equal(aos_tracectx_parse(&in, "00-" TID "-" SID "-00", "rojo=00f067aa0ba902b7"), 0);
    aos_tracectx_child(&child, &in);
    assert_string_equal(child.trace_id, TID);
    assert_string_not_equal(child.span_id, SID);
    assert_int_equal(child.flags, 0);
    assert_int_equal(child.remote, 0);
    assert_string_equal(child.tracestate, "rojo=00f067aa0ba902b7");

    /* in place */
    again = child;
    aos_tracectx_child(&again, &again);
    assert_string_equal(again.trace_id, TID);
    assert_string_not_equal(again.span_id, child.span_id);

    /* nothing: a new trace */
    aos_tracectx_child(&child, NULL);
    assert_true(aos_tracectx_valid(&child));
    assert_string_not_equal(child.trace_id, TID);
    memset(&in, 0, sizeof(in));
    aos_tracectx_child(&again, &in);
    assert_true(aos_tracectx_valid(&again));
    assert_string_not_equal(again.trace_id, child.trace_id);
}

static void test_ids(void **state)
{
    char id[AOS_TRACE_ID_LEN + 1];
    for (int i = 0; i < 100; i++) {
        aos_tracectx_random_id(id, AOS_SPAN_ID_LEN);
        assert_int_equal(strlen(id), AOS_SPAN_ID_LEN);
        assert_true(aos_tracectx_id_valid(id, AOS_SPAN_ID_LEN));
    }
    assert_true(aos_tracectx_id_valid(TID, 32));
    assert_false(aos_tracectx_id_valid("0000", 4));
    assert_false(aos_tracectx_id_valid("00A0", 4));
    assert_false(aos_tracectx_id_valid("", 0));
}

/* Appends s to buf (cap bytes), within it. */
static void append(char *buf, size_t cap, const char *s)
{
    size_t n = strlen(buf);
    snprintf(buf + n, cap - n, "%s", s);
}

static void state_is(const char *in, const char *want)
{
    char out[AOS_TRACESTATE_MAX + 1];
    size_t n = aos_tracectx_state(out, sizeof(out), in, strlen(in));
    if (strcmp(out, want) != 0)
        fail_msg("tracestate '%s' -> '%s', want '%s'", in, out, want);
    assert_int_equal(n, strlen(want));
}

static void test_tracestate(void **state)
{
    state_is("rojo=00f067aa0ba902b7", "rojo=00f067aa0ba902b7");
    state_is("rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE");
    /* optional whitespace and empty members go; values keep inner spaces */
    state_is(" rojo=1 ,\t, congo=a b,,", "rojo=1,congo=a b");
    state_is("", "");
    state_is(" , ,", "");
    /* multi-tenant keys and the key characters */
    state_is("tenant@vendor=x,a_b-c*d/e=1", "tenant@vendor=x,a_b-c*d/e=1");
    /* invalid: the whole value goes */
    state_is("Rojo=1", "");         /* uppercase key */
    state_is("rojo=1,congo", "");   /* no '=' */
    state_is("rojo=", "");          /* empty value */
    state_is("rojo=a=b", "");       /* '=' in a value */
    state_is("rojo=a\x01", "");     /* a control character */
    state_is("rojo=a ,rojo=b", ""); /* a key twice */
    state_is("_rojo=1", "");        /* a key starts with a letter or digit */
    char many[33 * 8 + 1] = "";
    for (int i = 0; i < 33; i++) {
        char m[16];
        snprintf(m, sizeof(m), "%sk%d=v", i ? "," : "", i);
        append(many, sizeof(many), m);
    }
    state_is(many, ""); /* more than 32 members */
    /* 32 members are fine */
    char *last = strrchr(many, ',');
    *last = '\0';
    state_is(many, many);
    /* a NUL inside */
    char out[64];
    assert_int_equal(aos_tracectx_state(out, sizeof(out), "a=1\0b=2", 7), 0);
}

static void test_tracestate_cut(void **state)
{
    /* past 512 bytes: members over 128 bytes go first, then from the end */
    char in[2048], big[200], want[1024];
    memset(big, 'x', 150);
    big[150] = '\0';
    in[0] = '\0';
    want[0] = '\0';
    for (int i = 0; i < 8; i++) { /* 8 x 59 bytes + 7 commas = 479 */
        char m[80];
        snprintf(m, sizeof(m), "%sk%d=%056d", i ? "," : "", i, i);
        append(in, sizeof(in), m);
        append(want, sizeof(want), m);
    }
    char with_big[4096] = "big=";
    append(with_big, sizeof(with_big), big);
    append(with_big, sizeof(with_big), ",");
    append(with_big, sizeof(with_big), in);
    state_is(with_big, want);
    /* no big member: the last ones go */
    char more[4096] = "", tail[160];
    append(more, sizeof(more), in);
    snprintf(tail, sizeof(tail), ",k8=%056d,k9=%056d", 8, 9);
    append(more, sizeof(more), tail);
    state_is(more, want);
    /* a smaller buffer cuts harder */
    char out[130];
    size_t n = aos_tracectx_state(out, sizeof(out), in, strlen(in));
    assert_true(n <= 129);
    assert_int_equal(n, 2 * 59 + 1);
    assert_int_equal(strncmp(out, in, n), 0);
    /* one member larger than the buffer: nothing */
    assert_int_equal(aos_tracectx_state(out, 16, "k=0123456789abcdef", 18), 0);
    assert_string_equal(out, "");
}

static void test_parse_with_state(void **state)
{
    aos_tracectx_t c;
    assert_int_equal(aos_tracectx_parse(&c, "00-" TID "-" SID "-01", "rojo=1, congo=2"), 0);
    assert_string_equal(c.tracestate, "rojo=1,congo=2");
    /* a bad tracestate never fails the traceparent */
    assert_int_equal(aos_tracectx_parse(&c, "00-" TID "-" SID "-01", "ROJO=1"), 0);
    assert_string_equal(c.tracestate, "");
    assert_string_equal(c.trace_id, TID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_traceparent_version_00),
        cmocka_unit_test(test_traceparent_future_versions),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_new_and_child),
        cmocka_unit_test(test_ids),
        cmocka_unit_test(test_tracestate),
        cmocka_unit_test(test_tracestate_cut),
        cmocka_unit_test(test_parse_with_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
