/* test_tools.c - the built-in servers files, db, csv and viz: workspace
 * confinement attacks (.., absolute paths, symlinks and hard links leading
 * out, a symlink swapped in during calls, device files and FIFOs),
 * idempotent writes, read-only databases, and the pure parts of the
 * skills (encoding, sniffing, type inference, normalisation, ticks, LTTB)
 * with exact expected outputs. Calls go through the aos_builtin_t each
 * server gives the gateway, on a real loop and thread pool. */
#include <stdatomic.h>
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <uv.h>

#include "tools/internal.h"
#include "uvtest.h"

static char ws[256], outside[256];
static uv_loop_t loop;
static aos_tools_t *tools;

/* ---- helpers ---------------------------------------------------------------------------- */

static void rm_rf(const char *path)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    assert_int_equal(system(cmd), 0);
}

static void put(const char *dir, const char *name, const char *data, size_t n)
{
    char p[600];
    int w = snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_true(w > 0 && (size_t)w < sizeof(p));
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
}

static char *slurp(const char *dir, const char *name)
{
    char p[600];
    int w = snprintf(p, sizeof(p), "%s/%s", dir, name);
    assert_true(w > 0 && (size_t)w < sizeof(p));
    FILE *f = fopen(p, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    assert_int_equal(fread(b, 1, (size_t)n, f), (size_t)n);
    b[n] = '\0';
    fclose(f);
    return b;
}

struct answer {
    int done;
    json_t *res;
    aos_err_t err;
};

static void on_done(void *ctx, json_t *result, const aos_err_t *err)
{
    struct answer *a = ctx;
    a->res = result;
    if (err)
        a->err = *err;
    a->done = 1;
}

/* Calls server.tool with args (JSON text) as a caller with caps (JSON
 * text, NULL: the workspace ws) and key; returns the CallToolResult. */
static json_t *call_as(const aos_builtin_t *b, const char *tool, const char *args, const char *caps,
                       const char *key)
{
    json_error_t je;
    json_t *a = json_loads(args, 0, &je);
    if (!a)
        fail_msg("bad test args %s: %s", args, je.text);
    json_t *c = caps ? json_loads(caps, 0, NULL) : json_pack("{s:s}", "workspace", ws);
    aos_caller_t who = {.principal = "test", .caps = c, .idempotency_key = key};
    struct answer ans = {0};
    assert_int_equal(b->call(b->data, &who, tool, a, on_done, &ans), 0);
    json_decref(a);
    json_decref(c);
    assert_int_equal(run_until(&loop, &ans.done, 1, 30000), 0);
    assert_non_null(ans.res);
    return ans.res;
}

static json_t *call(const aos_builtin_t *b, const char *tool, const char *args)
{
    return call_as(b, tool, args, NULL, NULL);
}

static int is_error(const json_t *r)
{
    return json_is_true(json_object_get(r, "isError"));
}

static const char *text_of(const json_t *r)
{
    return json_string_value(
        json_object_get(json_array_get(json_object_get(r, "content"), 0), "text"));
}

/* Asserts r is an isError result whose text holds what. */
static void expect_error(json_t *r, const char *what)
{
    if (!is_error(r) || !strstr(text_of(r), what))
        fail_msg("expected an error with '%s', got %s", what, text_of(r));
    json_decref(r);
}

static json_t *sc(const json_t *r)
{
    if (is_error(r))
        fail_msg("unexpected error: %s", text_of(r));
    return json_object_get(r, "structuredContent");
}

static int setup(void **state)
{
    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(ws, sizeof(ws), "/tmp/aos-tools-ws-XXXXXX");
    snprintf(outside, sizeof(outside), "/tmp/aos-tools-out-XXXXXX");
    assert_non_null(mkdtemp(ws));
    assert_non_null(mkdtemp(outside));
    aos_tools_cfg_t cfg = {.loop = &loop, .data_dir = outside};
    aos_err_t err;
    assert_int_equal(aos_tools_new(&tools, &cfg, &err), 0);
    put(outside, "secret", "SECRET\n", 7);
    return 0;
}

static int teardown(void **state)
{
    uv_run(&loop, UV_RUN_DEFAULT);
    aos_tools_free(tools);
    assert_int_equal(uv_loop_close(&loop), 0);
    rm_rf(ws);
    rm_rf(outside);
    return 0;
}

/* ---- confinement ------------------------------------------------------------------------- */

static void test_path_check(void **state)
{
    aos_err_t e;
    assert_int_equal(aos_tools_ws_check("a/b.txt", 7, &e), 0);
    assert_int_equal(aos_tools_ws_check("./a", 3, &e), 0);
    assert_int_equal(aos_tools_ws_check("a..b", 4, &e), 0);
    assert_int_equal(aos_tools_ws_check("../x", 4, &e), AOS_EINVAL);
    assert_int_equal(aos_tools_ws_check("a/../../x", 9, &e), AOS_EINVAL);
    assert_int_equal(aos_tools_ws_check("a/..", 4, &e), AOS_EINVAL);
    assert_int_equal(aos_tools_ws_check("/etc/passwd", 11, &e), AOS_EINVAL);
    assert_int_equal(aos_tools_ws_check("", 0, &e), AOS_EINVAL);
    assert_int_equal(aos_tools_ws_check("a\0b", 3, &e), AOS_EINVAL);
    assert_int_equal(aos_tools_ws_check(".aos/idem/x", 11, &e), AOS_EFORBIDDEN);
    assert_int_equal(aos_tools_ws_check("./.aos", 6, &e), AOS_EFORBIDDEN);
    assert_int_equal(aos_tools_ws_check("x/.aos", 6, &e), 0);
}

static void test_confinement(void **state)
{
    const aos_builtin_t *f = aos_tools_files(tools);
    char p[600], q[600];
    put(ws, "a.txt", "hello\n", 6);
    snprintf(p, sizeof(p), "%s/out", ws);
    assert_int_equal(symlink(outside, p), 0); /* a directory link leading out */
    snprintf(p, sizeof(p), "%s/abs", ws);
    assert_int_equal(symlink("/etc/passwd", p), 0);
    snprintf(p, sizeof(p), "%s/rel", ws);
    assert_int_equal(symlink("../../etc/passwd", p), 0);
    snprintf(p, sizeof(p), "%s/inlink", ws);
    assert_int_equal(symlink("a.txt", p), 0); /* inside: fine */
    snprintf(p, sizeof(p), "%s/secret", outside);
    snprintf(q, sizeof(q), "%s/hl", ws);
    assert_int_equal(link(p, q), 0); /* a hard link to a file outside */
    snprintf(p, sizeof(p), "%s/fifo", ws);
    assert_int_equal(mkfifo(p, 0600), 0);

    expect_error(call(f, "read", "{\"path\":\"../x\"}"), "'..' is not allowed");
    expect_error(call(f, "read", "{\"path\":\"/etc/passwd\"}"), "is absolute");
    expect_error(call(f, "read", "{\"path\":\"out/secret\"}"), "leads outside the workspace");
    expect_error(call(f, "read", "{\"path\":\"abs\"}"), "leads outside the workspace");
    expect_error(call(f, "read", "{\"path\":\"rel\"}"), "leads outside the workspace");
    expect_error(call(f, "read", "{\"path\":\"hl\"}"), "hard links");
    expect_error(call(f, "read", "{\"path\":\"fifo\"}"), "device, FIFO or socket");
    expect_error(call(f, "list", "{\"path\":\"out\"}"), "leads outside the workspace");
    expect_error(call(f, "search", "{\"pattern\":\"SECRET\",\"path\":\"out\"}"), "leads outside");
    /* writes through links leading out change nothing outside */
    expect_error(call(f, "write", "{\"path\":\"out/new\",\"content\":\"x\"}"), "leads outside");
    expect_error(call(f, "write", "{\"path\":\"abs\",\"content\":\"x\"}"), "leads outside");
    expect_error(call(f, "append", "{\"path\":\"hl\",\"content\":\"x\"}"), "hard links");
    expect_error(call(f, "move", "{\"source\":\"a.txt\",\"destination\":\"out/a.txt\"}"),
                 "leads outside");
    snprintf(p, sizeof(p), "%s/new", outside);
    assert_int_equal(access(p, F_OK), -1);
    char *s = slurp(outside, "secret");
    assert_string_equal(s, "SECRET\n");
    free(s);
    /* search walks never follow links; the .aos folder is not listed */
    json_t *r = call(f, "search", "{\"pattern\":\"SECRET\"}");
    assert_int_equal(json_array_size(json_object_get(sc(r), "matches")), 0);
    json_decref(r);
    /* a link inside the workspace is followed */
    r = call(f, "read", "{\"path\":\"inlink\"}");
    assert_string_equal(json_string_value(json_object_get(sc(r), "content")), "hello\n");
    json_decref(r);
    /* a device file (as root, where mknod is allowed) */
    snprintf(p, sizeof(p), "%s/null", ws);
    if (mknod(p, S_IFCHR | 0666, makedev(1, 3)) == 0) {
        expect_error(call(f, "read", "{\"path\":\"null\"}"), "device, FIFO or socket");
        expect_error(call(f, "append", "{\"path\":\"null\",\"content\":\"x\"}"),
                     "device, FIFO or socket");
    }
    /* the workspace of a caller without caps is DATA/workspace */
    r = call_as(f, "write", "{\"path\":\"shared.txt\",\"content\":\"s\"}", "null", NULL);
    sc(r);
    json_decref(r);
    snprintf(p, sizeof(p), "%s/workspace", outside);
    s = slurp(p, "shared.txt");
    assert_string_equal(s, "s");
    free(s);
}

/* A thread swaps "sw" between a directory inside and a link leading out
 * while reads of sw/f run: no read may return the outside file. */
static atomic_int swapping;
static void *swapper(void *arg)
{
    char a[600], b[600];
    snprintf(a, sizeof(a), "%s/sw", ws);
    snprintf(b, sizeof(b), "%s/alt", ws);
    while (swapping)
        renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE);
    return NULL;
}

static void test_symlink_swap_race(void **state)
{
    const aos_builtin_t *f = aos_tools_files(tools);
    char p[600];
    snprintf(p, sizeof(p), "%s/sw", ws);
    assert_int_equal(mkdir(p, 0755), 0);
    put(p, "secret", "inside\n", 7);
    snprintf(p, sizeof(p), "%s/alt", ws);
    assert_int_equal(symlink(outside, p), 0);
    swapping = 1;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, swapper, NULL), 0);
    int ok = 0, refused = 0;
    for (int i = 0; i < 300; i++) {
        json_t *r = call(f, "read", "{\"path\":\"sw/secret\"}");
        if (is_error(r)) {
            refused++;
        } else {
            assert_string_equal(json_string_value(json_object_get(sc(r), "content")), "inside\n");
            ok++;
        }
        json_decref(r);
    }
    swapping = 0;
    pthread_join(th, NULL);
    assert_int_equal(ok + refused, 300);
}

/* ---- files ------------------------------------------------------------------------------- */

static void test_files_ops(void **state)
{
    const aos_builtin_t *f = aos_tools_files(tools);
    json_t *r = call(f, "write", "{\"path\":\"d/e/x.txt\",\"content\":\"one\\ntwo\\nthree\\n\"}");
    assert_int_equal(json_integer_value(json_object_get(sc(r), "bytes")), 14);
    json_decref(r);
    r = call(f, "read", "{\"path\":\"d/e/x.txt\",\"offset\":4,\"length\":3}");
    assert_string_equal(json_string_value(json_object_get(sc(r), "content")), "two");
    assert_false(json_is_true(json_object_get(sc(r), "eof")));
    json_decref(r);
    /* binary: base64, both ways */
    r = call(f, "write", "{\"path\":\"b.bin\",\"content\":\"AAH/\",\"encoding\":\"base64\"}");
    json_decref(r);
    r = call(f, "read", "{\"path\":\"b.bin\"}");
    assert_string_equal(json_string_value(json_object_get(sc(r), "encoding")), "base64");
    assert_string_equal(json_string_value(json_object_get(sc(r), "content")), "AAH/");
    json_decref(r);
    r = call(f, "append", "{\"path\":\"d/e/x.txt\",\"content\":\"four\\n\"}");
    assert_int_equal(json_integer_value(json_object_get(sc(r), "size")), 19);
    json_decref(r);
    r = call(f, "stat", "{\"path\":\"d/e/x.txt\"}");
    assert_string_equal(json_string_value(json_object_get(sc(r), "type")), "file");
    assert_int_equal(json_integer_value(json_object_get(sc(r), "size")), 19);
    json_decref(r);
    r = call(f, "list", "{\"recursive\":true,\"pattern\":\"*.txt\"}");
    json_t *e = json_object_get(sc(r), "entries");
    assert_int_equal(json_array_size(e), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 0), "path")),
                        "d/e/x.txt");
    json_decref(r);
    r = call(f, "search", "{\"pattern\":\"t[wh]\",\"regex\":true}");
    e = json_object_get(sc(r), "matches");
    assert_int_equal(json_array_size(e), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "line")), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(e, 1), "text")), "three");
    json_decref(r);
    r = call(f, "search", "{\"pattern\":\"FOUR\",\"ignore_case\":true}");
    e = json_object_get(sc(r), "matches");
    assert_int_equal(json_array_size(e), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(e, 0), "line")), 4);
    json_decref(r);
    r = call(f, "search", "{\"pattern\":\"o\",\"max_results\":2}");
    assert_true(json_is_true(json_object_get(sc(r), "truncated")));
    json_decref(r);
    expect_error(call(f, "search", "{\"pattern\":\"(\",\"regex\":true}"), "not a valid regex");
    expect_error(call(f, "move", "{\"source\":\"b.bin\",\"destination\":\"d/e/x.txt\"}"), "exists");
    r = call(f, "move", "{\"source\":\"b.bin\",\"destination\":\"d/b2.bin\"}");
    json_decref(r);
    expect_error(call(f, "delete", "{\"path\":\"d\"}"), "not empty");
    r = call(f, "delete", "{\"path\":\"d\",\"recursive\":true}");
    assert_int_equal(json_integer_value(json_object_get(sc(r), "deleted")), 4);
    json_decref(r);
    expect_error(call(f, "stat", "{\"path\":\"d\"}"), "no such file");
    expect_error(call(f, "read", "{\"path\":\".aos/idem\"}"), "reserved");
}

static void test_idempotent_writes(void **state)
{
    const aos_builtin_t *f = aos_tools_files(tools);
    const char *args = "{\"path\":\"log.txt\",\"content\":\"line\\n\"}";
    json_t *r1 = call_as(f, "append", args, NULL, "k-1");
    json_t *r2 = call_as(f, "append", args, NULL, "k-1");
    assert_true(json_equal(sc(r1), sc(r2)));
    char *s = slurp(ws, "log.txt");
    assert_string_equal(s, "line\n"); /* applied once */
    free(s);
    json_decref(r1);
    json_decref(r2);
    /* a new key is a new write */
    json_decref(call_as(f, "append", args, NULL, "k-2"));
    s = slurp(ws, "log.txt");
    assert_string_equal(s, "line\nline\n");
    free(s);
    /* the same key with other arguments is refused */
    expect_error(call_as(f, "append", "{\"path\":\"log.txt\",\"content\":\"other\"}", NULL, "k-1"),
                 "other arguments");
    /* a write repeated after the file changed does not overwrite it again */
    json_decref(call_as(f, "write", "{\"path\":\"w.txt\",\"content\":\"v1\"}", NULL, "w-1"));
    json_decref(call(f, "write", "{\"path\":\"w.txt\",\"content\":\"v2\"}"));
    json_decref(call_as(f, "write", "{\"path\":\"w.txt\",\"content\":\"v1\"}", NULL, "w-1"));
    s = slurp(ws, "w.txt");
    assert_string_equal(s, "v2");
    free(s);
    /* an append whose record says it started (a crash before it was
     * recorded done) is put back and applied once */
    put(ws, "c.txt", "base\nhalf", 9);
    tools_job_t j = {.t = tools, .principal = "test", .key = "crash"};
    snprintf(j.name, sizeof(j.name), "files__append");
    j.args = json_pack("{s:s, s:s}", "content", "more\n", "path", "c.txt");
    char dir[600];
    snprintf(dir, sizeof(dir), "%s", ws);
    aos_err_t err;
    j.root = aos_tools_ws_root(dir, &err);
    json_t *info = json_pack("{s:i}", "size", 5);
    assert_int_equal(aos__tools_pending(&j, info, &err), 0);
    json_decref(info);
    close(j.root);
    json_decref(
        call_as(f, "append", "{\"path\":\"c.txt\",\"content\":\"more\\n\"}", NULL, "crash"));
    s = slurp(ws, "c.txt");
    assert_string_equal(s, "base\nmore\n");
    free(s);
    json_decref(j.args);
}

/* ---- db ------------------------------------------------------------------------------------- */

static void test_db(void **state)
{
    const aos_builtin_t *d = aos_tools_db(tools);
    char caps_rw[400];
    snprintf(caps_rw, sizeof(caps_rw), "{\"workspace\":\"%s\",\"db_write\":true}", ws);
    json_t *r = call_as(d, "execute",
                        "{\"path\":\"t.db\",\"create\":true,\"sql\":\"CREATE TABLE t(a INTEGER, "
                        "b TEXT)\"}",
                        caps_rw, NULL);
    sc(r);
    json_decref(r);
    r = call_as(d, "execute",
                "{\"path\":\"t.db\",\"sql\":\"INSERT INTO t VALUES (?, ?), (2, 'two')\","
                "\"params\":[1, \"one\"]}",
                caps_rw, NULL);
    assert_int_equal(json_integer_value(json_object_get(sc(r), "changes")), 2);
    json_decref(r);
    r = call(d, "query", "{\"path\":\"t.db\",\"sql\":\"SELECT a, b FROM t ORDER BY a\"}");
    json_t *want = json_loads("{\"columns\":[\"a\",\"b\"],\"rows\":[[1,\"one\"],[2,\"two\"]],"
                              "\"row_count\":2,\"truncated\":false}",
                              0, NULL);
    assert_true(json_equal(sc(r), want));
    json_decref(want);
    json_decref(r);
    r = call(d, "query", "{\"path\":\"t.db\",\"sql\":\"SELECT a FROM t\",\"max_rows\":1}");
    assert_true(json_is_true(json_object_get(sc(r), "truncated")));
    json_decref(r);
    /* the task's caps do not allow writes: the file is opened read-only */
    expect_error(call(d, "execute", "{\"path\":\"t.db\",\"sql\":\"DELETE FROM t\"}"), "read-only");
    expect_error(call(d, "execute", "{\"path\":\"t.db\",\"sql\":\"DROP TABLE t\"}"), "read-only");
    expect_error(call(d, "query", "{\"path\":\"t.db\",\"sql\":\"DELETE FROM t\"}"), "use execute");
    r = call(d, "query", "{\"path\":\"t.db\",\"sql\":\"SELECT count(*) FROM t\"}");
    assert_int_equal(
        json_integer_value(json_array_get(json_array_get(json_object_get(sc(r), "rows"), 0), 0)),
        2);
    json_decref(r);
    /* nothing outside the workspace through ATTACH or VACUUM INTO */
    char args[800];
    snprintf(args, sizeof(args), "{\"path\":\"t.db\",\"sql\":\"ATTACH '%s/x.db' AS x\"}", outside);
    r = call_as(d, "execute", args, caps_rw, NULL);
    assert_true(is_error(r));
    json_decref(r);
    snprintf(args, sizeof(args), "{\"path\":\"t.db\",\"sql\":\"VACUUM INTO '%s/v.db'\"}", outside);
    r = call_as(d, "execute", args, caps_rw, NULL);
    assert_true(is_error(r));
    json_decref(r);
    r = call(d, "query", args);
    assert_true(is_error(r));
    json_decref(r);
    char p[600];
    snprintf(p, sizeof(p), "%s/x.db", outside);
    assert_int_equal(access(p, F_OK), -1);
    snprintf(p, sizeof(p), "%s/v.db", outside);
    assert_int_equal(access(p, F_OK), -1);
    /* the time limit */
    expect_error(call(d, "query",
                      "{\"path\":\"t.db\",\"timeout_ms\":100,\"sql\":\"WITH RECURSIVE c(x) AS "
                      "(SELECT 1 UNION ALL SELECT x+1 FROM c) SELECT count(*) FROM c\"}"),
                 "longer than 100 ms");
    r = call(d, "tables", "{\"path\":\"t.db\"}");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(sc(r), "tables"), 0), "name")),
                        "t");
    json_decref(r);
}

/* ---- csv: pure parts ------------------------------------------------------------------------ */

static void norm(const char *v, csv_type_t t, int dayfirst, const char *want, int want_flags)
{
    char out[256];
    int fl = aos__csv_normalize(v, t, dayfirst, out, sizeof(out));
    if (strcmp(out, want) || (want_flags >= 0 && fl != want_flags))
        fail_msg("normalize('%s', %s) = '%s' (flags %#x), want '%s' (%#x)", v,
                 aos__csv_type_name(t), out, fl, want, want_flags);
}

static void test_csv_values(void **state)
{
    int o;
    assert_int_equal(aos__csv_classify("42", &o), CSV_T_INT);
    assert_int_equal(aos__csv_classify(" 1,234 ", &o), CSV_T_INT);
    assert_int_equal(aos__csv_classify("1,234.50", &o), CSV_T_DEC);
    assert_int_equal(aos__csv_classify("1.234,50", &o), CSV_T_DEC);
    assert_int_equal(aos__csv_classify("¥1,200", &o), CSV_T_INT);
    assert_int_equal(aos__csv_classify("12.5%", &o), CSV_T_DEC);
    assert_int_equal(aos__csv_classify("１２３", &o), CSV_T_INT);
    assert_int_equal(aos__csv_classify("00123", &o), CSV_T_TEXT); /* a code, not a number */
    assert_int_equal(aos__csv_classify("1,2,3", &o), CSV_T_TEXT);
    assert_int_equal(aos__csv_classify("12,34", &o), CSV_T_DEC); /* a decimal comma */
    assert_int_equal(aos__csv_classify("2025-09-26", &o), CSV_T_DATE);
    assert_int_equal(aos__csv_classify("2025年9月26日", &o), CSV_T_DATE);
    assert_int_equal(aos__csv_classify("2025/9/26 14:05", &o), CSV_T_DATETIME);
    assert_int_equal(aos__csv_classify("26/09/2025", &o), CSV_T_DATE);
    assert_int_equal(o, 1);
    assert_int_equal(aos__csv_classify("09/26/2025", &o), CSV_T_DATE);
    assert_int_equal(o, 2);
    assert_int_equal(aos__csv_classify("03/04/2025", &o), CSV_T_DATE);
    assert_int_equal(o, 3);
    assert_int_equal(aos__csv_classify("2025-02-30", &o), CSV_T_TEXT);
    assert_int_equal(aos__csv_classify("Sep 26, 2025", &o), CSV_T_DATE);
    assert_int_equal(aos__csv_classify("yes", &o), CSV_T_BOOL);
    assert_int_equal(aos__csv_classify("是", &o), CSV_T_BOOL);
    assert_int_equal(aos__csv_classify("hello", &o), CSV_T_TEXT);
    assert_int_equal(aos__csv_classify("  ", &o), CSV_T_EMPTY);
    assert_true(aos__csv_null_token(" N/A "));
    assert_true(aos__csv_null_token("NULL"));
    assert_false(aos__csv_null_token("Nancy"));

    norm(" 1,234 ", CSV_T_INT, 0, "1234", CSV_N_TRIM | CSV_N_THOUSAND);
    norm("1.234,50", CSV_T_DEC, 0, "1234.50", CSV_N_THOUSAND);
    norm("$1,234.5", CSV_T_DEC, 0, "1234.5", CSV_N_THOUSAND | CSV_N_CURRENCY);
    norm("¥1,200", CSV_T_INT, 0, "1200", CSV_N_THOUSAND | CSV_N_CURRENCY);
    norm("1200元", CSV_T_INT, 0, "1200", CSV_N_CURRENCY);
    norm("(45)", CSV_T_INT, 0, "-45", CSV_N_NEG);
    norm("12.5%", CSV_T_DEC, 0, "0.125", CSV_N_PERCENT);
    norm("50%", CSV_T_DEC, 0, "0.5", CSV_N_PERCENT);
    norm("0.5%", CSV_T_DEC, 0, "0.005", CSV_N_PERCENT);
    norm("-3%", CSV_T_DEC, 0, "-0.03", CSV_N_PERCENT);
    norm("１２３", CSV_T_INT, 0, "123", CSV_N_FULLW);
    norm("１，２３４．５", CSV_T_DEC, 0, "1234.5", CSV_N_FULLW | CSV_N_THOUSAND);
    norm("1e3", CSV_T_DEC, 0, "1000", 0);
    norm("2025年9月26日", CSV_T_DATE, 0, "2025-09-26", CSV_N_DATE);
    norm("2025/9/26", CSV_T_DATE, 0, "2025-09-26", CSV_N_DATE);
    norm("26/09/2025", CSV_T_DATE, 1, "2025-09-26", CSV_N_DATE);
    norm("03/04/2025", CSV_T_DATE, 1, "2025-04-03", CSV_N_DATE);
    norm("03/04/2025", CSV_T_DATE, 0, "2025-03-04", CSV_N_DATE);
    norm("Sep 26, 2025", CSV_T_DATE, 0, "2025-09-26", CSV_N_DATE);
    norm("26-Sep-2025", CSV_T_DATE, 0, "2025-09-26", CSV_N_DATE);
    norm("2025-09-26", CSV_T_DATE, 0, "2025-09-26", 0);
    norm("2025-09-26 14:05", CSV_T_DATETIME, 0, "2025-09-26T14:05:00", CSV_N_DATE);
    norm("2025-09-26", CSV_T_DATETIME, 0, "2025-09-26T00:00:00", CSV_N_DATE);
    norm("2025年9月26日 14时5分", CSV_T_DATETIME, 0, "2025-09-26T14:05:00", CSV_N_DATE);
    norm("2025-09-26T14:05:00+0800", CSV_T_DATETIME, 0, "2025-09-26T14:05:00+08:00", CSV_N_DATE);
    norm("Yes", CSV_T_BOOL, 0, "true", CSV_N_BOOL);
    norm("否", CSV_T_BOOL, 0, "false", CSV_N_BOOL);
    norm("1", CSV_T_BOOL, 0, "true", CSV_N_BOOL);
    norm("  text  ", CSV_T_TEXT, 0, "text", CSV_N_TRIM);
    norm("ｆｕｌｌ", CSV_T_TEXT, 0, "ｆｕｌｌ", 0); /* text keeps its forms */
    norm("abc", CSV_T_INT, 0, "abc", -1);
    /* plain numbers take a fast path: the full path (reached by a leading
     * space) must answer the same, and the edges stay on the full path */
    static const char *const plain[] = {
        "0",     "7",    "42", "-42", "0.5", "12.50", "-3.25", "9.000", "1234567890123",
        "100.0", "-0.5", "-0", "007", "1.",  "-"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        char spaced[64], a[256], b[256];
        snprintf(spaced, sizeof(spaced), " %s", plain[i]);
        int oa, ob;
        csv_type_t ta = aos__csv_classify(plain[i], &oa), tb = aos__csv_classify(spaced, &ob);
        if (ta != tb)
            fail_msg("classify('%s') = %d, classify('%s') = %d", plain[i], ta, spaced, tb);
        for (csv_type_t t = CSV_T_INT; t <= CSV_T_DEC; t++) {
            int fa = aos__csv_normalize(plain[i], t, 0, a, sizeof(a));
            int fb = aos__csv_normalize(spaced, t, 0, b, sizeof(b));
            if ((fa < 0) != (fb < 0) || (fa >= 0 && (strcmp(a, b) || (fa | CSV_N_TRIM) != fb)))
                fail_msg("normalize('%s') = '%s' %#x, normalize('%s') = '%s' %#x", plain[i], a, fa,
                         spaced, b, fb);
        }
    }
    norm("-0", CSV_T_INT, 0, "0", 0);
    norm("12.50", CSV_T_DEC, 0, "12.50", 0);
    assert_int_equal(aos__csv_classify("007", &o), CSV_T_TEXT);
    assert_int_equal(aos__csv_normalize("12345", CSV_T_INT, 0, (char[5]){0}, 5), -1);
    assert_int_equal(aos__csv_normalize("abc", CSV_T_INT, 0, (char[8]){0}, 8), -1);
}

static void test_csv_encoding_and_sniff(void **state)
{
    assert_int_equal(aos__csv_detect_enc((const unsigned char *)"\xef\xbb\xbf"
                                                                "a,b",
                                         6),
                     CSV_ENC_UTF8_BOM);
    assert_int_equal(aos__csv_detect_enc((const unsigned char *)"名字,值", 10), CSV_ENC_UTF8);
    /* "名字" in GB18030 */
    assert_int_equal(aos__csv_detect_enc((const unsigned char *)"\xc3\xfb\xd7\xd6,1", 6),
                     CSV_ENC_GB18030);
    /* a UTF-8 character cut by the end of the sample is still UTF-8 */
    assert_int_equal(aos__csv_detect_enc((const unsigned char *)"a,\xe5\x90", 4), CSV_ENC_UTF8);
    const char *semi = "a;b;c\n1,5;2;x\n3;4,5;y\n";
    csv_dialect_t d = aos__csv_sniff(semi, strlen(semi));
    assert_int_equal(d.delim, ';');
    const char *tab = "a\tb\n\"x,y\"\t2\n3\t4\n";
    d = aos__csv_sniff(tab, strlen(tab));
    assert_int_equal(d.delim, '\t');
    const char *quoted = "a,b\n\"1;2;3\",x\n\"4;5\",y\n";
    d = aos__csv_sniff(quoted, strlen(quoted));
    assert_int_equal(d.delim, ',');
    assert_int_equal(d.quote, '"');
    const char *pipe = "a|b|c\n1|2|3\n";
    assert_int_equal(aos__csv_sniff(pipe, strlen(pipe)).delim, '|');
}

/* Reads all records of text: "f1|f2\n" per record. */
static char *read_all(const char *text, size_t n, csv_enc_t enc, csv_dialect_t d, size_t *broken)
{
    FILE *f = fmemopen((void *)text, n, "r");
    csv_reader_t *r = aos__csv_reader_new(f, enc, d);
    char *out = calloc(1, 8192);
    size_t len = 0;
    char **fl;
    size_t nf;
    while (aos__csv_read(r, &fl, &nf) == 1)
        for (size_t i = 0; i < nf; i++)
            len += (size_t)snprintf(out + len, 8192 - len, "%s%s", fl[i], i + 1 < nf ? "|" : "\n");
    *broken = aos__csv_broken(r);
    aos__csv_reader_free(r);
    fclose(f);
    return out;
}

static void test_csv_reader(void **state)
{
    size_t broken;
    csv_dialect_t d = {',', '"'};
    const char *t = "a,\"b,c\",\"d \"\"q\"\"\"\r\n\"multi\nline\",x,\n";
    char *o = read_all(t, strlen(t), CSV_ENC_UTF8, d, &broken);
    assert_string_equal(o, "a|b,c|d \"q\"\nmulti\nline|x|\n");
    assert_int_equal(broken, 0);
    free(o);
    /* a quote never closed: that record is its line, the rest goes on */
    t = "1,\"broken,2\n3,4\n5,6\n";
    o = read_all(t, strlen(t), CSV_ENC_UTF8, d, &broken);
    assert_string_equal(o, "1|\"broken|2\n3|4\n5|6\n");
    assert_int_equal(broken, 1);
    free(o);
    /* BOM skipped; last record without a newline */
    t = "\xef\xbb\xbfh1,h2\n1,2";
    o = read_all(t, strlen(t), CSV_ENC_UTF8_BOM, d, &broken);
    assert_string_equal(o, "h1|h2\n1|2\n");
    free(o);
    /* GB18030 decoded to UTF-8 */
    t = "\xc3\xfb\xd7\xd6,\xd6\xb5\n\xd5\xc5\xc8\xfd,1\n";
    o = read_all(t, strlen(t), CSV_ENC_GB18030, d, &broken);
    assert_string_equal(o, "名字|值\n张三|1\n");
    free(o);
}

/* ---- csv.clean on a messy corpus ------------------------------------------------------------ */

static char *to_gb18030(const char *utf8)
{
    iconv_t cd = iconv_open("GB18030", "UTF-8");
    size_t il = strlen(utf8), ol = 4 * il + 4;
    char *out = calloc(1, ol), *op = out, *ip = (char *)utf8;
    assert_int_not_equal(iconv(cd, &ip, &il, &op, &ol), (size_t)-1);
    iconv_close(cd);
    return out;
}

static void clean_case(const char *input, size_t n, const char *want_csv, const char *extra_args,
                       json_t **report)
{
    put(ws, "in.csv", input, n);
    char args[400];
    snprintf(args, sizeof(args), "{\"path\":\"in.csv\",\"output\":\"out/clean.csv\"%s}",
             extra_args ? extra_args : "");
    json_t *r = call(aos_tools_csv(tools), "clean", args);
    char p[600];
    snprintf(p, sizeof(p), "%s/out", ws);
    char *got = slurp(p, "clean.csv");
    if (!got || strcmp(got, want_csv))
        fail_msg("cleaned:\n%s\nwant:\n%s\nreport: %s", got ? got : "(none)", want_csv, text_of(r));
    free(got);
    if (report)
        *report = json_incref(sc(r));
    json_decref(r);
}

static long long change_count(const json_t *rep, const char *rule)
{
    return json_integer_value(
        json_object_get(json_object_get(json_object_get(rep, "changes"), rule), "count"));
}

static void test_csv_clean(void **state)
{
    json_t *rep;
    /* semicolons with decimal commas, a BOM, spaces, thousands, currency,
     * percentages, mixed dates, empty and duplicate rows, a null token */
    const char *messy = "\xef\xbb\xbf"
                        "Name ; Amount ; Share ; Date ; Active\n"
                        " Alice ; 1.234,50 ; 12,5% ; 2025-09-26 ; yes\n"
                        "Bob;€ 99;50%;2025年9月27日;no\n"
                        " ; ; ; ; \n"
                        "Bob;€ 99;50%;2025年9月27日;no\n"
                        "Carol;N/A;7%;28/09/2025;Yes\n";
    clean_case(messy, strlen(messy),
               "Name,Amount,Share,Date,Active\n"
               "Alice,1234.50,0.125,2025-09-26,true\n"
               "Bob,99,0.5,2025-09-27,false\n"
               "Carol,,0.07,2025-09-28,true\n",
               NULL, &rep);
    assert_string_equal(json_string_value(json_object_get(rep, "encoding")), "utf-8-bom");
    assert_string_equal(json_string_value(json_object_get(rep, "delimiter")), ";");
    assert_true(json_is_true(json_object_get(rep, "header")));
    assert_int_equal(json_integer_value(json_object_get(rep, "rows_in")), 5);
    assert_int_equal(json_integer_value(json_object_get(rep, "rows_out")), 3);
    assert_int_equal(change_count(rep, "empty_rows"), 1);
    assert_int_equal(change_count(rep, "duplicate_rows"), 1);
    assert_int_equal(change_count(rep, "null_tokens"), 1);
    assert_int_equal(change_count(rep, "percentages"), 4);
    assert_int_equal(change_count(rep, "currency_symbols"), 2);
    assert_int_equal(change_count(rep, "dates"), 3);
    assert_int_equal(change_count(rep, "booleans"), 4);
    const char *types[] = {"text", "decimal", "decimal", "date", "boolean"};
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(json_string_value(json_object_get(
                                json_array_get(json_object_get(rep, "columns"), i), "type")),
                            types[i]);
    json_t *ex = json_array_get(
        json_object_get(json_object_get(json_object_get(rep, "changes"), "thousands_separators"),
                        "examples"),
        0);
    assert_string_equal(json_string_value(json_object_get(ex, "from")), " 1.234,50 ");
    assert_string_equal(json_string_value(json_object_get(ex, "to")), "1234.50");
    assert_string_equal(json_string_value(json_object_get(ex, "column")), "Amount");
    json_decref(rep);
    /* the schema beside the output */
    char p[600];
    snprintf(p, sizeof(p), "%s/out", ws);
    char *schema = slurp(p, "clean.schema.json");
    json_t *sj = json_loads(schema, 0, NULL);
    free(schema);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(sj, "properties"), "Date"), "format")),
                        "date");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(sj, "properties"), "Amount"), "type")),
                        "number");
    json_decref(sj);

    /* GB18030, tabs, full-width digits, Chinese dates and a broken quote */
    char *gb = to_gb18030("城市\t销售额\t日期\t备注\n"
                          "北京\t１，２００\t2025年1月5日\t\n"
                          "上海\t800\t2025年1月6日\t\"未完\n"
                          "广州\t¥3,000\t2025/1/7\t好\n");
    clean_case(gb, strlen(gb),
               "城市,销售额,日期,备注\n"
               "北京,1200,2025-01-05,\n"
               "上海,800,2025-01-06,\"\"\"未完\"\n"
               "广州,3000,2025-01-07,好\n",
               NULL, &rep);
    free(gb);
    assert_string_equal(json_string_value(json_object_get(rep, "encoding")), "gb18030");
    assert_string_equal(json_string_value(json_object_get(rep, "delimiter")), "\\t");
    assert_int_equal(change_count(rep, "broken_quotes"), 1);
    assert_int_equal(change_count(rep, "full_width"), 1);
    assert_int_equal(change_count(rep, "currency_symbols"), 1);
    json_decref(rep);

    /* no header; month-first dates; ragged rows padded; quoted commas */
    const char *nohead = "1,\"Smith, J\",09/26/2025\n2,Lee,10/01/2025,\n3,Kim\n";
    clean_case(nohead, strlen(nohead),
               "column_1,column_2,column_3\n"
               "1,\"Smith, J\",2025-09-26\n"
               "2,Lee,2025-10-01\n"
               "3,Kim,\n",
               NULL, &rep);
    assert_false(json_is_true(json_object_get(rep, "header")));
    assert_int_equal(change_count(rep, "padded_rows"), 1);
    json_decref(rep);
    /* the default output name, and "rows" for plans (docs/DSL.md) */
    json_t *dr = call(aos_tools_csv(tools), "clean", "{\"path\":\"in.csv\"}");
    assert_string_equal(json_string_value(json_object_get(sc(dr), "output")), "in.clean.csv");
    assert_string_equal(json_string_value(json_object_get(sc(dr), "schema")),
                        "in.clean.schema.json");
    assert_int_equal(json_integer_value(json_object_get(sc(dr), "rows")), 3);
    json_decref(dr);
    /* duplicates kept on request */
    const char *dup = "a,b\n1,2\n1,2\n";
    clean_case(dup, strlen(dup), "a,b\n1,2\n1,2\n", ",\"dedupe\":false", NULL);
    /* refused: the output over the input, a path leading out */
    expect_error(call(aos_tools_csv(tools), "clean", "{\"path\":\"in.csv\",\"output\":\"in.csv\"}"),
                 "different files");
    expect_error(call(aos_tools_csv(tools), "clean", "{\"path\":\"in.csv\",\"output\":\"../x\"}"),
                 "'..'");
}

static void on_tick_count(uv_timer_t *t)
{
    (*(int *)t->data)++;
}

/* A 200,000-row file: memory stays bounded (the reader holds one record). */
static void test_csv_clean_large(void **state)
{
    char p[600];
    snprintf(p, sizeof(p), "%s/big.csv", ws);
    FILE *f = fopen(p, "w");
    fprintf(f, "id,amount,day\n");
    for (int i = 0; i < 200000; i++)
        fprintf(f, "%d,\"%d,%03d.5\",2025-01-%02d\n", i % 150000, i % 1000, i % 1000, i % 28 + 1);
    fclose(f);
    /* the loop is not blocked while it runs: a 5 ms timer ticks, and more
     * calls than run at once (TOOLS_RUNNING) all get their answers */
    const aos_builtin_t *cb = aos_tools_csv(tools), *fb = aos_tools_files(tools);
    json_t *ca = json_pack("{s:s, s:s}", "path", "big.csv", "output", "b.csv");
    json_t *ra = json_pack("{s:s}", "path", "big.csv");
    json_t *caps = json_pack("{s:s}", "workspace", ws);
    aos_caller_t who = {.principal = "test", .caps = caps};
    struct answer clean = {0}, reads[6] = {{0}};
    assert_int_equal(cb->call(cb->data, &who, "clean", ca, on_done, &clean), 0);
    for (int i = 0; i < 6; i++)
        assert_int_equal(fb->call(fb->data, &who, "stat", ra, on_done, &reads[i]), 0);
    int ticks = 0;
    uv_timer_t tick;
    uv_timer_init(&loop, &tick);
    tick.data = &ticks;
    uv_timer_start(&tick, on_tick_count, 5, 5);
    assert_int_equal(run_until(&loop, &clean.done, 1, 120000), 0);
    uv_close((uv_handle_t *)&tick, NULL);
    for (int i = 0; i < 6; i++) {
        assert_int_equal(run_until(&loop, &reads[i].done, 1, 30000), 0);
        assert_false(is_error(reads[i].res));
        json_decref(reads[i].res);
    }
    assert_true(ticks >= 3);
    json_decref(ca);
    json_decref(ra);
    json_decref(caps);
    json_t *r = clean.res;
    json_t *rep = sc(r);
    assert_int_equal(json_integer_value(json_object_get(rep, "rows_in")), 200000);
    /* rows i and i+150000 match only when their amounts and days do too */
    long long dups = 0;
    for (int i = 150000; i < 200000; i++)
        dups += (i % 1000) == ((i - 150000) % 1000) && (i % 28) == ((i - 150000) % 28);
    assert_int_equal(json_integer_value(json_object_get(rep, "rows_out")), 200000 - dups);
    assert_int_equal(change_count(rep, "thousands_separators"), 200000);
    json_decref(r);
}

/* ---- viz ------------------------------------------------------------------------------------ */

static void test_ticks(void **state)
{
    double first, step;
    assert_int_equal(aos__viz_ticks(0, 100, 5, &first, &step), 6);
    assert_true(first == 0 && step == 20);
    assert_int_equal(aos__viz_ticks(0.13, 0.87, 6, &first, &step), 7);
    assert_true(fabs(first - 0.2) < 1e-12 && fabs(step - 0.1) < 1e-12);
    assert_int_equal(aos__viz_ticks(-37, 512, 5, &first, &step), 6);
    assert_true(first == 0 && step == 100);
    aos__viz_ticks(1234567, 9876543, 4, &first, &step);
    assert_true(step == 2000000 && first == 2000000);
    /* an empty range still gets ticks */
    assert_true(aos__viz_ticks(5, 5, 5, &first, &step) >= 2);
}

static void test_lttb(void **state)
{
    enum { N = 100000 };
    double *x = malloc(N * sizeof(double)), *y = malloc(N * sizeof(double));
    size_t *keep = malloc(N * sizeof(size_t));
    for (size_t i = 0; i < N; i++) {
        x[i] = (double)i;
        y[i] = sin((double)i / 1000.0);
    }
    y[54321] = 50; /* a spike LTTB must keep */
    size_t k = aos__viz_lttb(x, y, N, 500, keep);
    assert_int_equal(k, 500);
    assert_int_equal(keep[0], 0);
    assert_int_equal(keep[k - 1], N - 1);
    int spike = 0;
    for (size_t i = 1; i < k; i++) {
        assert_true(keep[i] > keep[i - 1]);
        spike |= keep[i] == 54321;
    }
    assert_true(spike);
    /* fewer points than asked: all of them */
    assert_int_equal(aos__viz_lttb(x, y, 10, 500, keep), 10);
    free(x);
    free(y);
    free(keep);
}

static void test_plot(void **state)
{
    const char *csv = "month,region,sales,cost\n"
                      "2025-01-15,北,10,4\n2025-01-20,南,5,2\n2025-02-03,北,7,3\n"
                      "2025-02-14,南,9,5\n2025-03-01,北,12,6\n";
    put(ws, "s.csv", csv, strlen(csv));
    const aos_builtin_t *v = aos_tools_viz(tools);
    json_t *r = call(v, "plot",
                     "{\"path\":\"s.csv\",\"kind\":\"bar\",\"x\":\"month\",\"y\":\"sales\","
                     "\"group_by\":\"region\",\"bucket\":\"month\",\"agg\":\"sum\","
                     "\"output\":\"c.svg\"}");
    json_t *s = sc(r);
    assert_int_equal(json_array_size(json_object_get(s, "series")), 2);
    json_t *s0 = json_array_get(json_object_get(s, "series"), 0);
    assert_string_equal(json_string_value(json_object_get(s0, "name")), "北");
    assert_int_equal(json_integer_value(json_object_get(s0, "points_drawn")), 3);
    json_decref(r);
    char *svg = slurp(ws, "c.svg");
    assert_non_null(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    assert_non_null(strstr(svg, "class=\"axis x-axis\""));
    assert_non_null(strstr(svg, ">2025-02<"));
    assert_non_null(strstr(svg, "class=\"legend-item\""));
    assert_non_null(strstr(svg, "Noto Sans CJK SC"));
    free(svg);
    r = call(v, "plot", "{\"path\":\"s.csv\",\"x\":\"month\",\"y\":\"sales\"}");
    assert_string_equal(json_string_value(json_object_get(sc(r), "output")), "sales_by_month.svg");
    json_decref(r);
    expect_error(call(v, "plot",
                      "{\"path\":\"s.csv\",\"x\":\"nope\",\"y\":\"sales\","
                      "\"output\":\"c.svg\"}"),
                 "no column named 'nope'");
    /* a million points: downsampled to max_points, a small SVG */
    char p[600];
    snprintf(p, sizeof(p), "%s/m.csv", ws);
    FILE *f = fopen(p, "w");
    fprintf(f, "t,v\n");
    for (int i = 0; i < 1000000; i++)
        fprintf(f, "%d,%.3f\n", i, sin(i / 5000.0) * 100 + (i % 7));
    fclose(f);
    r = call(v, "plot", "{\"path\":\"m.csv\",\"x\":\"t\",\"y\":\"v\",\"output\":\"m.svg\"}");
    s = sc(r);
    assert_true(json_integer_value(json_object_get(s, "bytes")) < 200 * 1024);
    s0 = json_array_get(json_object_get(s, "series"), 0);
    assert_int_equal(json_integer_value(json_object_get(s0, "points_in")), 1000000);
    assert_int_equal(json_integer_value(json_object_get(s0, "points_drawn")), 1000);
    json_decref(r);
}

/* Idempotency records older than the keep time go; newer ones, other
 * kinds of entries and other directories stay. */
static void test_idem_prune(void **state)
{
    (void)state;
    char d[64], p[256];
    snprintf(d, sizeof(d), "/tmp/aos-tools-idem-XXXXXX");
    assert_non_null(mkdtemp(d));
    const char *dirs[] = {"idempotency",    "idempotency/http",    "workspace",
                          "workspace/.aos", "workspace/.aos/idem", "workspace/kept"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", d, dirs[i]);
        assert_int_equal(mkdir(p, 0700), 0);
    }
    const int64_t now = 2000000000;
    struct {
        const char *rel;
        int64_t age_s;
        int gone;
    } files[] = {
        {"idempotency/http/old.json", 8 * 86400, 1},
        {"idempotency/http/new.json", 6 * 86400, 0},
        {"workspace/.aos/idem/old", 30 * 86400, 1},
        {"workspace/.aos/idem/fresh", 60, 0},
        {"workspace/kept/old-but-user-data", 90 * 86400, 0},
        {"workspace/old-file", 90 * 86400, 0},
    };
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", d, files[i].rel);
        put(d, files[i].rel, "x", 1);
        struct timespec ts[2] = {{.tv_sec = now - files[i].age_s},
                                 {.tv_sec = now - files[i].age_s}};
        assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
    }
    /* an old subdirectory and a symlink in a records directory stay */
    snprintf(p, sizeof(p), "%s/idempotency/http/sub", d);
    assert_int_equal(mkdir(p, 0700), 0);
    snprintf(p, sizeof(p), "%s/idempotency/http/link", d);
    assert_int_equal(symlink("/etc/hostname", p), 0);
    assert_int_equal(aos_tools_idem_prune(d, now, AOS_TOOLS_IDEM_KEEP_S), 2);
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(p, sizeof(p), "%s/%s", d, files[i].rel);
        if ((access(p, F_OK) == 0) == files[i].gone)
            fail_msg("%s: %s", files[i].rel, files[i].gone ? "kept" : "deleted");
    }
    snprintf(p, sizeof(p), "%s/idempotency/http/link", d);
    struct stat st;
    assert_int_equal(lstat(p, &st), 0);
    assert_int_equal(aos_tools_idem_prune(d, now, AOS_TOOLS_IDEM_KEEP_S), 0);
    /* a data dir without the directories */
    assert_int_equal(aos_tools_idem_prune("/nonexistent-aos-dir", now, 1), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", d);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_path_check),
        T(test_confinement),
        cmocka_unit_test(test_idem_prune),
        T(test_symlink_swap_race),
        T(test_files_ops),
        T(test_idempotent_writes),
        T(test_db),
        cmocka_unit_test(test_csv_values),
        cmocka_unit_test(test_csv_encoding_and_sniff),
        cmocka_unit_test(test_csv_reader),
        T(test_csv_clean),
        T(test_csv_clean_large),
        cmocka_unit_test(test_ticks),
        cmocka_unit_test(test_lttb),
        T(test_plot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
