/* test_http_json.c - the fast reader of request bodies against jansson's
 * parser: where it answers, its value is the one json_loadb makes (same
 * types, same members in the same order); the common bodies do take it;
 * what it leaves to jansson (\u escapes, reals, duplicate keys, bad UTF-8,
 * every malformed text) it does leave, and aos_http_parse_json then says
 * what jansson says. Thousands of mutated bodies check the first rule
 * where no list of cases reaches. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err/err.h"
#include "http/http.h"
#include "http/json.h"

/* The text of v as jansson writes it, types and member order included. */
static char *dump(const json_t *v)
{
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* When the fast reader answers text, jansson parses it to the same value;
 * returns whether it answered. */
static int agrees(const char *text, size_t len)
{
    json_t *fast = aos__json_fast(text, len);
    if (!fast)
        return 0;
    json_error_t je;
    json_t *ref = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!ref)
        fail_msg("fast reader took what jansson refuses (%s): %.*s", je.text, (int)len, text);
    char *a = dump(fast), *b = dump(ref);
    if (strcmp(a, b) != 0)
        fail_msg("fast %s, jansson %s", a, b);
    assert_true(json_equal(fast, ref));
    free(a);
    free(b);
    json_decref(fast);
    json_decref(ref);
    return 1;
}

static const char *const COMMON[] = {
    "{\"plan\":{\"steps\":[{\"id\":\"s1\",\"tool\":\"aos__echo\",\"args\":{\"message\":\"1\"}},"
    "{\"id\":\"s2\",\"tool\":\"aos__echo\",\"args\":{\"message\":\"2\"}}]}}",
    "{}",
    "[]",
    " \t\r\n{ \"a\" : [ 1 , -2 , 0 , -0 , true , false , null , \"\" , { } , [ ] ] } \n",
    "{\"goal\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\",\"n\":123456789012345678}",
    "{\"n\":-999999999999999999}",
    "{\"s\":\"a\\\"b\\\\c\\/d\\be\\ff\\ng\\rh\\ti\"}",
    "[\"\\n\",\"x\\ty\",\"\\\\\"]",
    "{\"\":1,\"b\":{\"c\":{\"d\":[[[[\"deep\"]]]]}}}",
    "{\"del\":\"\x7f\",\"max\":\"\xf4\x8f\xbf\xbf\",\"edge\":\"\xed\x9f\xbf\xee\x80\x80\"}",
    "{\"z\":1,\"a\":2,\"m\":3}",
};

/* Texts it must leave to jansson: jansson reads some of them, refuses the
 * others; either way the fast reader says nothing. */
static const char *const LEFT[] = {
    "\"top-level string\"",
    "1",
    "true",
    "{\"u\":\"\\u00e9\"}",
    "{\"u\":\"\\u0000\"}",
    "{\"r\":1.5}",
    "{\"r\":1e3}",
    "{\"r\":1E3}",
    "{\"big\":1234567890123456789}",
    "{\"a\":1,\"a\":2}",
    "{\"k\\n\":1}",
    "{\"a\":01}",
    "{\"a\":-}",
    "{\"a\":+1}",
    "{\"a\":1,}",
    "[1,]",
    "[1 2]",
    "{\"a\" 1}",
    "{\"a\":tru}",
    "{\"a\":truex}",
    "{\"a\":nul}",
    "{\"a\":\"x\ty\"}",
    "{\"a\":\"\\x\"}",
    "{\"a\":\"unterminated}",
    "{\"bad\":\"\xc0\xaf\"}",
    "{\"bad\":\"\xe0\x80\xaf\"}",
    "{\"bad\":\"\xed\xa0\x80\"}",
    "{\"bad\":\"\xf4\x90\x80\x80\"}",
    "{\"bad\":\"\xf5\x80\x80\x80\"}",
    "{\"bad\":\"\x80\"}",
    "{\"bad\":\"\xe2\x82\"}",
    "\xef\xbb\xbf{}",
    "{} x",
    "{}{}",
    "{",
    "",
    "   ",
    "[\"a\\",
};

static void test_common_bodies_take_the_fast_way(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(COMMON) / sizeof(*COMMON); i++)
        if (!agrees(COMMON[i], strlen(COMMON[i])))
            fail_msg("left to jansson: %s", COMMON[i]);
}

static void test_the_rest_is_left_to_jansson(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(LEFT) / sizeof(*LEFT); i++)
        if (aos__json_fast(LEFT[i], strlen(LEFT[i])))
            fail_msg("answered: %s", LEFT[i]);
    /* a NUL byte inside the length */
    static const char nul[] = "{\"a\":\"x\0y\"}";
    assert_null(aos__json_fast(nul, sizeof(nul) - 1));
    /* the length bounds the text: a value cut short is not read past it */
    assert_null(aos__json_fast("{\"a\":1}", 6));
    json_t *v = aos_http_parse_json("{\"a\":1} ", 7, NULL);
    assert_non_null(json_object_get(v, "a"));
    json_decref(v);
}

static void test_nesting_beyond_its_depth_is_left_to_jansson(void **state)
{
    (void)state;
    char text[2 * 300 + 1];
    static const int depths[] = {255, 256, 257, 300};
    for (size_t i = 0; i < sizeof(depths) / sizeof(*depths); i++) {
        int depth = depths[i];
        memset(text, '[', (size_t)depth);
        memset(text + depth, ']', (size_t)depth);
        text[2 * depth] = '\0';
        json_t *v = aos__json_fast(text, 2 * (size_t)depth);
        if (depth <= 256) {
            assert_non_null(v);
            assert_true(agrees(text, 2 * (size_t)depth));
        } else {
            assert_null(v);
        }
        json_decref(v);
    }
}

static void test_errors_are_janssons(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(LEFT) / sizeof(*LEFT); i++) {
        size_t len = strlen(LEFT[i]);
        json_error_t je;
        json_t *ref = json_loadb(LEFT[i], len, JSON_REJECT_DUPLICATES, &je);
        aos_err_t err = {0, ""};
        json_t *got = aos_http_parse_json(LEFT[i], len, &err);
        if (!len) {
            assert_null(got);
            assert_int_equal(err.code, AOS_EPARSE);
            continue;
        }
        if (ref) {
            char *a = dump(ref), *b = dump(got);
            assert_string_equal(a, b);
            free(a);
            free(b);
        } else {
            char want[sizeof(err.msg)];
            snprintf(want, sizeof(want), "malformed JSON at line %d column %d: %s", je.line,
                     je.column, je.text);
            assert_null(got);
            assert_int_equal(err.code, AOS_EPARSE);
            assert_string_equal(err.msg, want);
        }
        json_decref(ref);
        json_decref(got);
    }
}

/* xorshift: the same mutations at every run */
static uint32_t rnd_state = 2463534242u;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static void test_mutated_bodies_agree_with_jansson(void **state)
{
    (void)state;
    static const char bytes[] = "{}[]\",:\\/-+.0123456789eEtruefalsn \t\n\x80\xbf\xc3\xe2\xf0\xed";
    int answered = 0;
    for (int round = 0; round < 20000; round++) {
        const char *seed = COMMON[rnd() % (sizeof(COMMON) / sizeof(*COMMON))];
        char text[512];
        size_t len = strlen(seed);
        memcpy(text, seed, len);
        for (int m = 1 + (int)(rnd() % 3); m > 0; m--) {
            size_t at = len ? rnd() % len : 0;
            char b = bytes[rnd() % (sizeof(bytes) - 1)];
            switch (rnd() % 3) {
            case 0: /* replace */
                if (len)
                    text[at] = b;
                break;
            case 1: /* insert */
                if (len + 1 < sizeof(text)) {
                    memmove(text + at + 1, text + at, len - at);
                    text[at] = b;
                    len++;
                }
                break;
            default: /* delete */
                if (len) {
                    memmove(text + at, text + at + 1, len - at - 1);
                    len--;
                }
            }
        }
        answered += agrees(text, len);
    }
    /* a mutation often leaves valid JSON of the kind it reads */
    assert_true(answered > 1000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_common_bodies_take_the_fast_way),
        cmocka_unit_test(test_the_rest_is_left_to_jansson),
        cmocka_unit_test(test_nesting_beyond_its_depth_is_left_to_jansson),
        cmocka_unit_test(test_errors_are_janssons),
        cmocka_unit_test(test_mutated_bodies_agree_with_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
