/* test_log.c - aosd's own log lines: every line reaches stderr and the
 * sink, whatever its bytes. A line that is not UTF-8 (a child's stderr,
 * a Latin-1 file name) was refused by jansson and lost without a trace;
 * now invalid bytes show as U+FFFD, and a character cut by the 1023-byte
 * limit is dropped whole. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "redact/redact.h"

typedef struct {
    int n;
    char msg[2048];
    char server[64];
} seen_t;

static void sink(const json_t *entry, void *data)
{
    seen_t *s = data;
    const char *m = json_string_value(json_object_get(entry, "msg"));
    const char *srv = json_string_value(json_object_get(entry, "server"));
    s->n++;
    snprintf(s->msg, sizeof(s->msg), "%s", m ? m : "(none)");
    snprintf(s->server, sizeof(s->server), "%s", srv ? srv : "");
}

static void test_plain_line(void **state)
{
    seen_t s = {0};
    aos_log_set_sink(sink, &s);
    aos_log(AOS_LOG_INFO, "test", json_pack("{s:s}", "server", "everything"), "caf\xc3\xa9 %d", 42);
    aos_log_set_sink(NULL, NULL);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.msg, "caf\xc3\xa9 42");
    assert_string_equal(s.server, "everything");
}

static void test_invalid_bytes_replaced(void **state)
{
    seen_t s = {0};
    aos_log_set_sink(sink, &s);
    aos_log(AOS_LOG_INFO, "upstream", json_pack("{s:s}", "server", "child"), "%s",
            "caf\xe9 \xff\xfe end \xed\xa0\x80");
    aos_log_set_sink(NULL, NULL);
    assert_int_equal(s.n, 1);
    assert_string_equal(s.msg, "caf\xef\xbf\xbd \xef\xbf\xbd\xef\xbf\xbd end "
                               "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd");
    assert_string_equal(s.server, "child"); /* the fields too */
}

static void test_cut_character_dropped(void **state)
{
    /* 1022 bytes, then a 3-byte euro sign that the 1023-byte limit cuts */
    char line[1100];
    memset(line, 'x', 1022);
    memcpy(line + 1022, "\xe2\x82\xac tail", sizeof("\xe2\x82\xac tail"));
    seen_t s = {0};
    aos_log_set_sink(sink, &s);
    aos_log(AOS_LOG_WARN, "test", NULL, "%s", line);
    aos_log_set_sink(NULL, NULL);
    assert_int_equal(s.n, 1);
    assert_int_equal(strlen(s.msg), 1022);
    assert_memory_equal(s.msg, line, 1022);
}

/* A line goes through the redactor before stderr and the sink: a child
 * that prints an env value of its entry no longer shows it in the journal. */
static void test_redacted(void **state)
{
    seen_t s = {0};
    assert_int_equal(aos_redact_add_value(aos_redact_global(), "child-env-secret-77"), 0);
    aos_log_set_sink(sink, &s);
    aos_log(AOS_LOG_INFO, "upstream", json_pack("{s:s}", "server", "child-env-secret-77"),
            "env X=%s, key %s", "child-env-secret-77", "sk-abcdefghijklmnop1234");
    aos_log_set_sink(NULL, NULL);
    assert_int_equal(aos_redact_remove_value(aos_redact_global(), "child-env-secret-77"), 0);
    assert_string_equal(s.msg, "env X=[REDACTED], key [REDACTED]");
    assert_string_equal(s.server, "[REDACTED]");
}

static void test_level_filter(void **state)
{
    seen_t s = {0};
    aos_log_set_sink(sink, &s);
    aos_log_set_level(AOS_LOG_WARN);
    aos_log(AOS_LOG_INFO, "test", json_pack("{s:s}", "server", "x"), "%s", "below");
    aos_log_set_level(AOS_LOG_INFO);
    aos_log_set_sink(NULL, NULL);
    assert_int_equal(s.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plain_line),
        cmocka_unit_test(test_invalid_bytes_replaced),
        cmocka_unit_test(test_cut_character_dropped),
        cmocka_unit_test(test_level_filter),
        cmocka_unit_test(test_redacted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
