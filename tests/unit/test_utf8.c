/* test_utf8.c - strict UTF-8: what is valid (as jansson sees it), where
 * text cut at a byte count ends, and the U+FFFD repair; the repair's
 * output is always valid and json_string takes it. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <string.h>

#include "utf8/utf8.h"

#define S(lit) lit, sizeof(lit) - 1

static void test_valid(void **state)
{
    assert_true(aos_utf8_valid(S("")));
    assert_true(aos_utf8_valid(S("plain ascii")));
    assert_true(aos_utf8_valid(S("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80")));
    assert_true(aos_utf8_valid(S("\xf4\x8f\xbf\xbf"))); /* U+10FFFF */
    static const struct {
        const char *s;
        size_t n;
    } bad[] = {
        {S("\xff")},
        {S("\xc3")},             /* cut */
        {S("caf\xe9")},          /* Latin-1 */
        {S("\x80")},             /* a lone continuation byte */
        {S("\xc0\xaf")},         /* overlong '/' */
        {S("\xe0\x80\xaf")},     /* overlong */
        {S("\xed\xa0\x80")},     /* a surrogate */
        {S("\xf4\x90\x80\x80")}, /* past U+10FFFF */
        {S("\xf8\x88\x80\x80\x80")},
        {S("a\0b")}, /* NUL: no JSON string from a C string holds it */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (aos_utf8_valid(bad[i].s, bad[i].n))
            fail_msg("case %zu taken as valid", i);
}

static void test_trim(void **state)
{
    assert_int_equal(aos_utf8_trim(S("")), 0);
    assert_int_equal(aos_utf8_trim(S("abc")), 3);
    assert_int_equal(aos_utf8_trim(S("ab\xc3\xa9")), 4);
    assert_int_equal(aos_utf8_trim(S("ab\xc3")), 2);
    assert_int_equal(aos_utf8_trim(S("ab\xe2\x82")), 2);
    assert_int_equal(aos_utf8_trim(S("ab\xe2")), 2);
    assert_int_equal(aos_utf8_trim(S("ab\xf0\x9f\x98")), 2);
    assert_int_equal(aos_utf8_trim(S("ab\xf0\x9f\x98\x80")), 6);
    /* not a cut: left for the repair */
    assert_int_equal(aos_utf8_trim(S("ab\x80")), 3);
    assert_int_equal(aos_utf8_trim(S("\x80\x80\x80\x80\x80")), 5);
    assert_int_equal(aos_utf8_trim(S("ab\xc3\xa9\xa9")), 5);
}

static void test_scrub(void **state)
{
    char out[64];
    assert_int_equal(aos_utf8_scrub(out, sizeof(out), S("caf\xc3\xa9")), 5);
    assert_string_equal(out, "caf\xc3\xa9");
    aos_utf8_scrub(out, sizeof(out), S("caf\xe9 \xff end"));
    assert_string_equal(out, "caf\xef\xbf\xbd \xef\xbf\xbd end");
    aos_utf8_scrub(out, sizeof(out), S("\xc0\xaf|\xed\xa0\x80|a\0b"));
    assert_string_equal(out, "\xef\xbf\xbd\xef\xbf\xbd|\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd|"
                             "a\xef\xbf\xbd"
                             "b");
    /* a full buffer ends before a character, never inside one */
    char small[6];
    assert_int_equal(aos_utf8_scrub(small, sizeof(small), S("ab\xff\xff")), 5);
    assert_string_equal(small, "ab\xef\xbf\xbd");
    assert_int_equal(aos_utf8_scrub(small, sizeof(small), S("abcd\xc3\xa9")), 4);
    assert_int_equal(aos_utf8_scrub(small, 1, S("abc")), 0);
    assert_string_equal(small, "");
}

static void check_one(const unsigned char *in, size_t n)
{
    char out[32];
    const char *s = (const char *)in;
    int valid = aos_utf8_valid(s, n);
    json_t *j = json_stringn(s, n);
    int jansson = j != NULL && !memchr(s, 0, n);
    json_decref(j);
    if (valid != jansson)
        fail_msg("%zu bytes %02x %02x %02x %02x: ours %d, jansson %d", n, in[0], in[1], in[2],
                 in[3], valid, jansson);
    size_t m = aos_utf8_scrub(out, sizeof(out), s, n);
    assert_true(aos_utf8_valid(out, m));
    if (valid) {
        assert_int_equal(m, n);
        assert_memory_equal(out, s, n);
    }
}

/* Every string of 1 or 2 bytes, and the longer ones around every
 * boundary: the repair is valid, leaves valid text alone, and jansson
 * agrees with aos_utf8_valid. */
static void test_against_jansson(void **state)
{
    static const unsigned char edges[] = {0x00, 0x41, 0x7f, 0x80, 0x8f, 0x90,
                                          0x9f, 0xa0, 0xbf, 0xc0, 0xc2, 0xff};
    const size_t ne = sizeof(edges);
    unsigned char in[4] = {0};
    for (unsigned a = 0; a < 256; a++) {
        in[0] = (unsigned char)a;
        check_one(in, 1);
        for (unsigned b2 = 0; b2 < 256; b2++) {
            in[1] = (unsigned char)b2;
            check_one(in, 2);
            if (a < 0xc0)
                continue;
            for (size_t c = 0; c < ne; c++) {
                in[2] = edges[c];
                check_one(in, 3);
                for (size_t d = 0; a >= 0xf0 && d < ne; d++) {
                    in[3] = edges[d];
                    check_one(in, 4);
                }
            }
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid),
        cmocka_unit_test(test_trim),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_against_jansson),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
