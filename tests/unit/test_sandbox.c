/* test_sandbox.c - what a sandbox script may hold: file paths (no way out
 * of the workspace), caps with their bounds and defaults, unknown fields
 * refused. Pure functions of src/sandbox/script.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "sandbox/internal.h"

static void test_paths(void **state)
{
    const char *good[] = {"main.py", "a/b/c.sh", "data-1.csv", "x_y.z", ".hidden", "a/.b", NULL};
    const char *bad[] = {"",   "/etc/passwd", "../x", "a/../../x", "./x",   "a//b", "a/",     ".",
                         "..", "a/./b",       "a b",  "a\\b",      "a$(x)", "é.py", "a/b/..", NULL};
    for (size_t i = 0; good[i]; i++)
        if (!sb_path_ok(good[i]))
            fail_msg("'%s' should be accepted", good[i]);
    for (size_t i = 0; bad[i]; i++)
        if (sb_path_ok(bad[i]))
            fail_msg("'%s' should be refused", bad[i]);
    char longp[300];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    assert_false(sb_path_ok(longp));
}

static void test_caps(void **state)
{
    sb_caps_t c;
    aos_err_t err = {0, ""};
    assert_int_equal(sb_caps_parse(NULL, &c, &err), 0);
    assert_false(c.network);
    assert_int_equal(c.timeout_ms, 30000);
    assert_int_equal(c.limits.cpu_s, 10);
    assert_int_equal(c.limits.rss_bytes, 512ull << 20);
    assert_int_equal(c.limits.as_bytes, 4 * (512ull << 20));
    assert_int_equal(c.limits.nproc, 64);
    assert_int_equal(c.limits.nofile, 256);
    assert_int_equal(c.limits.fsize_bytes, 64ull << 20);
    assert_int_equal(c.output_kb, 64);

    json_t *j = json_pack("{s:b, s:i, s:i}", "network", 1, "cpu_s", 2, "memory_mb", 64);
    assert_int_equal(sb_caps_parse(j, &c, &err), 0);
    assert_true(c.network);
    assert_int_equal(c.limits.cpu_s, 2);
    assert_int_equal(c.limits.rss_bytes, 64ull << 20);
    json_decref(j);

    const char *bad[] = {"{\"cpu_s\": 0}",
                         "{\"cpu_s\": 3601}",
                         "{\"timeout_ms\": 1.5}",
                         "{\"network\": 1}",
                         "{\"sudo\": true}",
                         "{\"memory_mb\": 8}",
                         "{\"output_kb\": 2048}",
                         "[]",
                         NULL};
    for (size_t i = 0; bad[i]; i++) {
        json_t *b = json_loads(bad[i], 0, NULL);
        assert_non_null(b);
        if (sb_caps_parse(b, &c, &err) != AOS_EINVAL)
            fail_msg("caps %s should be refused", bad[i]);
        json_decref(b);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
