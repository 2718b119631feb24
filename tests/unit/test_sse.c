/* test_sse.c - the text/event-stream parser: line ends of every kind split
 * at every place, fields, bounds, and a callback that stops the feed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>

#include "err/err.h"
#include "sse/sse.h"

static int sse_record(void *data, const char *type, const char *payload, size_t len)
{
    json_array_append_new(data, json_pack("[s, s%]", type, payload, len));
    return json_array_size(data) == 99 ? -42 : 0;
}

static void test_sse_parser(void **state)
{
    (void)state;
    /* BOM, comment, CRLF, CR and LF line ends, joined data, a data line with
     * no colon, an event without data (not dispatched), an unfinished one */
    static const char stream[] = "\xEF\xBB\xBF: hi\r\nevent: note\r\ndata: a\r\ndata:b\r\n"
                                 "id: 7\r\n\r\ndata: one\n\ndata\nretry: 1500\n\n"
                                 "id: x\rdata: cr\r\revent: none\n\nretry: 2x\ndata: tail";
    const char *want = "[[\"note\", \"a\\nb\"], [\"message\", \"one\"], [\"message\", \"\"], "
                       "[\"message\", \"cr\"]]";
    json_t *expect = json_loads(want, 0, NULL);
    size_t n = sizeof(stream) - 1;
    /* whole, byte by byte, and cut in two at every place */
    for (size_t cut = 0; cut <= n + 1; cut++) {
        json_t *got = json_array();
        aos_sse_t p;
        aos_sse_init(&p, 1024, sse_record, got);
        if (cut == n + 1) {
            for (size_t i = 0; i < n; i++)
                assert_int_equal(aos_sse_feed(&p, stream + i, 1), 0);
        } else {
            assert_int_equal(aos_sse_feed(&p, stream, cut), 0);
            assert_int_equal(aos_sse_feed(&p, stream + cut, n - cut), 0);
        }
        if (!json_equal(got, expect)) {
            char *dump = json_dumps(got, 0);
            print_error("cut %zu: %s\n", cut, dump);
            free(dump);
            fail();
        }
        assert_string_equal(p.last_id, "x");
        assert_int_equal(p.retry_ms, 1500);
        aos_sse_release(&p);
        json_decref(got);
    }
    json_decref(expect);

    /* bounded: a line or event over the limit fails the stream */
    json_t *got = json_array();
    aos_sse_t p;
    aos_sse_init(&p, 16, sse_record, got);
    assert_int_equal(aos_sse_feed(&p, "data: 0123456789abcdef\n", 23), AOS_ETOOBIG);
    aos_sse_release(&p);
    aos_sse_init(&p, 16, sse_record, got);
    assert_int_equal(aos_sse_feed(&p, "data: 0123456789", 16), 0);
    assert_int_equal(aos_sse_feed(&p, "abcdef", 6), AOS_ETOOBIG);
    aos_sse_release(&p);
    aos_sse_init(&p, 16, sse_record, got);
    assert_int_equal(aos_sse_feed(&p, "data: 01234567\ndata: 01234567\n\n", 34), AOS_ETOOBIG);
    aos_sse_release(&p);
    assert_int_equal(json_array_size(got), 0);

    /* the callback stops the feed */
    json_array_clear(got);
    for (int i = 0; i < 98; i++)
        json_array_append_new(got, json_null());
    aos_sse_init(&p, 0, sse_record, got);
    assert_int_equal(aos_sse_feed(&p, "data: 1\n\ndata: 2\n\n", 20), -42);
    assert_int_equal(json_array_size(got), 99);
    aos_sse_release(&p);
    json_decref(got);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sse_parser),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
