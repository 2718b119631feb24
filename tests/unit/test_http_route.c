/* test_http_route.c - the route table's path matching (src/http/route.h):
 * literals, parameters, the trailing "*", leading, trailing and doubled
 * slashes, segment counts, parameter limits, patterns too long or with
 * too many segments, and a path split once serving many patterns (a
 * failed match leaves nothing behind for the next). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/route.h"

typedef struct {
    const char *name[8];
    const char *val[8];
    int n;
} params_t;

/* Matches path against pattern; returns 1/0 and fills ps. */
static int match(const char *pattern, const char *path, params_t *ps, int max)
{
    aos__route_t c;
    aos__route_path_t p;
    aos__route_compile(pattern, &c);
    assert_int_equal(aos__route_split(path, &p), 0);
    int ok = aos__route_match(pattern, &c, &p, ps->name, ps->val, max, &ps->n);
    /* values are copied before the path's buffer goes */
    static char keep[8][256];
    for (int i = 0; ok && i < ps->n; i++) {
        snprintf(keep[i], sizeof(keep[i]), "%s", ps->val[i]);
        ps->val[i] = keep[i];
    }
    free(p.buf);
    return ok;
}

/* The name of a parameter, up to the pattern's next '/' */
static void assert_param(const params_t *ps, int i, const char *name, const char *val)
{
    size_t n = strlen(name);
    assert_true(i < ps->n);
    assert_memory_equal(ps->name[i], name, n);
    assert_true(ps->name[i][n] == '\0' || ps->name[i][n] == '/');
    assert_string_equal(ps->val[i], val);
}

static void test_literals(void **state)
{
    (void)state;
    params_t ps;
    assert_true(match("/api/jobs", "/api/jobs", &ps, 8));
    assert_int_equal(ps.n, 0);
    assert_false(match("/api/jobs", "/api/job", &ps, 8));
    assert_false(match("/api/jobs", "/api/jobsx", &ps, 8));
    assert_false(match("/api/jobs", "/api", &ps, 8));
    assert_false(match("/api/jobs", "/api/jobs/1", &ps, 8));
    assert_false(match("/api/jobs", "/API/jobs", &ps, 8));
    /* leading and trailing slashes do not count */
    assert_true(match("/api/jobs", "/api/jobs/", &ps, 8));
    assert_true(match("/api/jobs", "//api/jobs", &ps, 8));
    assert_true(match("/", "/", &ps, 8));
    assert_true(match("/", "", &ps, 8));
    assert_false(match("/", "/x", &ps, 8));
}

static void test_params(void **state)
{
    (void)state;
    params_t ps;
    assert_true(match("/agents/:id/logs", "/agents/a1/logs", &ps, 8));
    assert_int_equal(ps.n, 1);
    assert_param(&ps, 0, "id", "a1");
    assert_true(match("/a/:x/b/:y", "/a/1/b/2", &ps, 8));
    assert_int_equal(ps.n, 2);
    assert_param(&ps, 0, "x", "1");
    assert_param(&ps, 1, "y", "2");
    assert_false(match("/a/:x/b/:y", "/a/1/c/2", &ps, 8));
    assert_false(match("/a/:x", "/a", &ps, 8));
    /* an empty middle segment is a segment: a parameter takes it */
    assert_true(match("/a/:x/b", "/a//b", &ps, 8));
    assert_param(&ps, 0, "x", "");
    assert_false(match("/a/b", "/a//b", &ps, 8));
    /* more parameters than the caller keeps: no match */
    assert_false(match("/:a/:b/:c", "/1/2/3", &ps, 2));
    assert_true(match("/:a/:b/:c", "/1/2/3", &ps, 3));
}

static void test_star(void **state)
{
    (void)state;
    params_t ps;
    assert_true(match("/ui/*", "/ui/assets/app.js", &ps, 8));
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.name[0], "*");
    assert_string_equal(ps.val[0], "assets/app.js");
    assert_true(match("/ui/*", "/ui/a//b/", &ps, 8));
    assert_string_equal(ps.val[0], "a//b/");
    assert_false(match("/ui/*", "/ui", &ps, 8));
    assert_false(match("/ui/*", "/ui/", &ps, 8));
    assert_false(match("/ui/*", "/other/x", &ps, 8));
    assert_true(match("/r/:name/*", "/r/n1/x/y", &ps, 8));
    assert_param(&ps, 0, "name", "n1");
    assert_string_equal(ps.val[1], "x/y");
    /* "*" only counts as the last segment */
    assert_true(match("/a/*/b", "/a/*/b", &ps, 8));
    assert_false(match("/a/*/b", "/a/x/b", &ps, 8));
}

static void test_limits(void **state)
{
    (void)state;
    params_t ps;
    char pat[400], path[400];
    /* 32 segments match, 33 never */
    for (int i = 0; i < 33; i++) {
        memcpy(pat + 2 * i, "/s", 3);
        memcpy(path + 2 * i, "/s", 3);
        if (i == 31) /* 32 segments */
            assert_true(match(pat, path, &ps, 8));
    }
    assert_false(match(pat, path, &ps, 8));
    /* a pattern of 256 bytes never matches, 255 may */
    memset(pat, 'a', 255);
    pat[0] = '/';
    pat[255] = '\0';
    assert_true(match(pat, pat, &ps, 8));
    memset(pat, 'a', 256);
    pat[0] = '/';
    pat[256] = '\0';
    assert_false(match(pat, pat, &ps, 8));
}

/* One split path against a table, as find_route does */
static void test_one_split_many_patterns(void **state)
{
    (void)state;
    static const char *const table[] = {
        "/api/jobs",          "/api/jobs/:id", "/agents/:id",         "/ui/*",
        "/mcp/servers/:name", "/mcp",          "/api/jobs/:id/cancel"};
    aos__route_t c[7];
    for (int i = 0; i < 7; i++)
        aos__route_compile(table[i], &c[i]);
    aos__route_path_t p;
    assert_int_equal(aos__route_split("/mcp/servers/everything", &p), 0);
    const char *name[8], *val[8];
    int n = -1, hit = -1;
    for (int i = 0; i < 7 && hit < 0; i++)
        if (aos__route_match(table[i], &c[i], &p, name, val, 8, &n))
            hit = i;
    assert_int_equal(hit, 4);
    assert_int_equal(n, 1);
    assert_string_equal(val[0], "everything");
    free(p.buf);
    assert_int_equal(aos__route_split("/api/jobs/j7/cancel", &p), 0);
    hit = -1;
    for (int i = 0; i < 7 && hit < 0; i++)
        if (aos__route_match(table[i], &c[i], &p, name, val, 8, &n))
            hit = i;
    assert_int_equal(hit, 6);
    assert_int_equal(n, 1);
    assert_string_equal(val[0], "j7");
    free(p.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_literals),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_star),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_one_split_many_patterns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
