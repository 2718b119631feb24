/* test_trace.c - spans: the store's rows (insert, pages in start order,
 * counts, resources, retention by count and by age), the tree of a page
 * (children under parents in start order, orphans at the top, parent
 * cycles, depth), and the service on a real loop and store: spans written
 * in batches within flush_ms, the bounded buffer and its drop counter, the
 * flush at shutdown, the limits of a span, what a span row holds. Last, a
 * trace of 10,000 spans read and built as GET /api/traces does, timed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rawsql.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "redact/redact.h"
#include "store/store.h"
#include "trace/internal.h"

#define TID  "4bf92f3577b34da6a3ce929d0e0e4736"
#define TID2 "0af7651916cd43dd8448eb211c80319c"

typedef struct {
    char dir[64];
    char path[96];
    char url[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f || aos_test_mkdtemp(f->dir, sizeof(f->dir), "trace")) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/aos.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static aos_store_t *open_store(fixture_t *f, uv_loop_t *loop)
{
    aos_store_t *st = NULL;
    aos_err_t err = {0, ""};
    if (aos_store_open(&st, loop, f->url, &err) != 0)
        fail_msg("aos_store_open: %s", aos_err_msg(&err));
    return st;
}

static int64_t sql_int(fixture_t *f, const char *sql)
{
    return aos_test_sql_int(f->path, sql);
}

/* A span row with the given ids and start; the rest plain. */
static aos_store_span_t row(const char *trace, const char *span, const char *parent, int64_t start)
{
    aos_store_span_t r;
    memset(&r, 0, sizeof(r));
    r.trace_id = trace;
    r.span_id = span;
    r.parent_span_id = parent;
    r.name = span;
    r.kind = AOS_SPAN_INTERNAL;
    r.start_ns = start;
    r.end_ns = start + 1000;
    r.flags = 1 | AOS__SPAN_FLAG_HAS_IS_REMOTE;
    return r;
}

static void insert(aos_store_t *st, const aos_store_span_t *rows, size_t n)
{
    aos_err_t err = {0, ""};
    if (aos_store_spans_insert(st, rows, n, &err) != 0)
        fail_msg("insert: %s", aos_err_msg(&err));
}

/* ---- the store ------------------------------------------------------------- */

static void test_store_rows(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0, ""};
    int64_t res = 0;
    assert_int_equal(aos_store_span_resource_add(st, "{\"service.name\":\"aosd\"}", &res, &err), 0);
    assert_true(res > 0);
    aos_store_span_t full = row(TID, "00f067aa0ba902b7", NULL, 1700000000000000000LL);
    full.trace_state = "rojo=1";
    full.kind = AOS_SPAN_SERVER;
    full.status_code = AOS_SPAN_ERROR;
    full.status_message = "boom";
    full.attributes = "{\"a\":\"b\",\"n\":3,\"d\":1.5,\"t\":true}";
    full.events = "[{\"time_unix_nano\":1,\"name\":\"e\",\"attributes\":{}}]";
    full.links = "[{\"trace_id\":\"" TID2 "\",\"span_id\":\"b7ad6b7169203331\"}]";
    full.dropped_attributes = 2;
    full.dropped_events = 3;
    full.dropped_links = 4;
    full.resource_id = res;
    aos_store_span_t rows[] = {
        full,
        row(TID, "b7ad6b7169203331", "00f067aa0ba902b7", 1700000000000000500LL),
        row(TID, "c000000000000001", "00f067aa0ba902b7", 1700000000000000500LL),
        row(TID2, "d000000000000001", NULL, 1),
    };
    insert(st, rows, 4);

    int64_t n = 0;
    assert_int_equal(aos_store_spans_count(st, TID, &n, &err), 0);
    assert_int_equal(n, 3);
    assert_int_equal(aos_store_spans_count(st, "ffffffffffffffffffffffffffffffff", &n, &err), 0);
    assert_int_equal(n, 0);

    aos_store_span_page_t pg;
    assert_int_equal(aos_store_spans_trace(st, TID, INT64_MIN, 0, 10, &pg, &err), 0);
    assert_int_equal(pg.n, 3);
    const aos_store_span_t *r = &pg.rows[0];
    assert_string_equal(r->span_id, "00f067aa0ba902b7");
    assert_null(r->parent_span_id);
    assert_string_equal(r->trace_state, "rojo=1");
    assert_int_equal(r->kind, AOS_SPAN_SERVER);
    assert_int_equal(r->start_ns, 1700000000000000000LL);
    assert_int_equal(r->end_ns, 1700000000000001000LL);
    assert_int_equal(r->status_code, AOS_SPAN_ERROR);
    assert_string_equal(r->status_message, "boom");
    assert_string_equal(r->attributes, full.attributes);
    assert_string_equal(r->events, full.events);
    assert_string_equal(r->links, full.links);
    assert_int_equal(r->dropped_attributes, 2);
    assert_int_equal(r->dropped_events, 3);
    assert_int_equal(r->dropped_links, 4);
    assert_int_equal(r->resource_id, res);
    assert_int_equal(r->flags, 0x101);
    /* equal starts: by id, the order of insertion */
    assert_string_equal(pg.rows[1].span_id, "b7ad6b7169203331");
    assert_string_equal(pg.rows[2].span_id, "c000000000000001");
    assert_null(pg.rows[1].attributes);

    /* pages: after (start, id) of the last one */
    aos_store_span_page_t p2;
    assert_int_equal(
        aos_store_spans_trace(st, TID, pg.rows[1].start_ns, pg.rows[1].id, 10, &p2, &err), 0);
    assert_int_equal(p2.n, 1);
    assert_string_equal(p2.rows[0].span_id, "c000000000000001");
    aos_store_span_page_release(&p2);
    assert_int_equal(aos_store_spans_trace(st, TID, INT64_MIN, 0, 2, &p2, &err), 0);
    assert_int_equal(p2.n, 2);
    aos_store_span_page_release(&p2);
    aos_store_span_page_release(&pg);
    assert_int_equal(pg.n, 0);

    char *attrs = NULL;
    assert_int_equal(aos_store_span_resource_get(st, res, &attrs, &err), 0);
    assert_string_equal(attrs, "{\"service.name\":\"aosd\"}");
    free(attrs);
    assert_int_equal(aos_store_span_resource_get(st, res + 100, &attrs, &err), AOS_ENOTFOUND);
    assert_null(attrs);
    assert_int_equal(aos_store_spans_trace(st, TID, INT64_MIN, 0, 0, &pg, &err), AOS_EINVAL);
    aos_store_close(st);
}

static void test_store_insert_is_atomic(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_store_span_t rows[] = {row(TID, "00f067aa0ba902b7", NULL, 1),
                               row(TID, "b7ad6b7169203331", NULL, 2)};
    rows[1].kind = 9; /* refused by the CHECK */
    aos_err_t err = {0, ""};
    assert_int_not_equal(aos_store_spans_insert(st, rows, 2, &err), 0);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), 0);
    aos_store_close(st);
}

static void test_store_retention(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    aos_err_t err = {0, ""};
    int64_t r1 = 0, r2 = 0, deleted = 0;
    assert_int_equal(aos_store_span_resource_add(st, "{\"run\":1}", &r1, &err), 0);
    /* 50 spans of the first run, ending at 1000..1049 */
    aos_store_span_t rows[50];
    char ids[50][17];
    for (int i = 0; i < 50; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%016x", i + 1);
        rows[i] = row(TID, ids[i], NULL, i);
        rows[i].end_ns = 1000 + i;
        rows[i].resource_id = r1;
    }
    insert(st, rows, 50);
    assert_int_equal(aos_store_span_resource_add(st, "{\"run\":2}", &r2, &err), 0);
    for (int i = 0; i < 50; i++) {
        rows[i].end_ns = 2000 + i;
        rows[i].resource_id = r2;
    }
    insert(st, rows, 50);

    /* by count: keep the newest 60, at most 25 per run */
    assert_int_equal(aos_store_spans_retain(st, 0, 60, 25, &deleted, &err), 0);
    assert_int_equal(deleted, 25);
    assert_int_equal(aos_store_spans_retain(st, 0, 60, 25, &deleted, &err), 0);
    assert_int_equal(deleted, 15);
    assert_int_equal(aos_store_spans_retain(st, 0, 60, 25, &deleted, &err), 0);
    assert_int_equal(deleted, 0);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), 60);
    assert_int_equal(sql_int(f, "SELECT MIN(end_time_unix_nano) FROM spans"), 1040);
    /* the first run's resource is still named */
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM span_resources"), 2);

    /* by age: those that ended before 2010 */
    assert_int_equal(aos_store_spans_retain(st, 2010, 0, 1000, &deleted, &err), 0);
    assert_int_equal(deleted, 20);
    assert_int_equal(sql_int(f, "SELECT MIN(end_time_unix_nano) FROM spans"), 2010);
    /* no span names the first run's resource now */
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM span_resources"), 1);
    assert_int_equal(sql_int(f, "SELECT MIN(id) FROM span_resources"), r2);
    /* everything old: the newest resource stays, spans may come */
    assert_int_equal(aos_store_spans_retain(st, 999999, 0, 1000, &deleted, &err), 0);
    assert_int_equal(deleted, 40);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM span_resources"), 1);
    /* a span without a resource (written by something else) does not make
     * the resources of the spans after it look unused */
    int64_t r3 = 0;
    assert_int_equal(aos_store_span_resource_add(st, "{\"run\":3}", &r3, &err), 0);
    aos_store_span_t more[] = {row(TID, "00000000000000a1", NULL, 1),
                               row(TID, "00000000000000a2", NULL, 2),
                               row(TID, "00000000000000a3", NULL, 3)};
    more[0].end_ns = 1;
    more[0].resource_id = r3;
    more[1].end_ns = 5000; /* no resource */
    more[2].end_ns = 5001;
    more[2].resource_id = r2;
    insert(st, more, 3);
    assert_int_equal(aos_store_spans_retain(st, 2, 0, 1000, &deleted, &err), 0);
    assert_int_equal(deleted, 1);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM span_resources"), 2);
    assert_int_equal(aos_store_spans_retain(st, 0, 0, 0, &deleted, &err), AOS_EINVAL);
    aos_store_close(st);
}

/* ---- the tree ---------------------------------------------------------------- */

/* The tree of rows, written and parsed back: what a client gets. */
static json_t *tree_of(const aos_store_span_t *rows, size_t n)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    assert_int_equal(aos__trace_tree(&b, rows, n), 0);
    json_error_t je;
    json_t *t = json_loads(b.ptr, 0, &je);
    if (!t)
        fail_msg("not JSON: %s: %.200s", je.text,
                 b.ptr + (je.position > 40 ? je.position - 40 : 0));
    aos_buf_release(&b);
    assert_true(json_is_array(t));
    return t;
}

static const char *name_at(json_t *list, size_t i)
{
    return json_string_value(json_object_get(json_array_get(list, i), "name"));
}

static json_t *kids(json_t *list, size_t i)
{
    return json_object_get(json_array_get(list, i), "children");
}

static void test_tree_shape(void **state)
{
    /* root -> a -> a1, a2; root -> b; an orphan whose parent is not stored */
    aos_store_span_t rows[] = {
        row(TID, "0000000000000001", NULL, 10),
        row(TID, "000000000000000a", "0000000000000001", 20),
        row(TID, "00000000000000b0", "0000000000000001", 25),
        row(TID, "00000000000000a1", "000000000000000a", 30),
        row(TID, "0000000000000fff", "00000000deadbeef", 31),
        row(TID, "00000000000000a2", "000000000000000a", 40),
    };
    json_t *t = tree_of(rows, 6);
    assert_int_equal(json_array_size(t), 2);
    assert_string_equal(name_at(t, 0), "0000000000000001");
    assert_string_equal(name_at(t, 1), "0000000000000fff"); /* the orphan, at the top */
    json_t *root = kids(t, 0);
    assert_int_equal(json_array_size(root), 2);
    assert_string_equal(name_at(root, 0), "000000000000000a");
    assert_string_equal(name_at(root, 1), "00000000000000b0");
    json_t *a = kids(root, 0);
    assert_int_equal(json_array_size(a), 2);
    assert_string_equal(name_at(a, 0), "00000000000000a1");
    assert_string_equal(name_at(a, 1), "00000000000000a2");
    assert_int_equal(json_array_size(kids(a, 0)), 0);
    /* what a span shows */
    json_t *s = json_array_get(root, 0);
    assert_string_equal(json_string_value(json_object_get(s, "parent_span_id")),
                        "0000000000000001");
    assert_string_equal(json_string_value(json_object_get(s, "kind")), "INTERNAL");
    assert_string_equal(json_string_value(json_object_get(s, "start_time_unix_nano")), "20");
    assert_string_equal(json_string_value(json_object_get(s, "end_time_unix_nano")), "1020");
    assert_true(json_real_value(json_object_get(s, "duration_ms")) == 0.001);
    assert_string_equal(json_string_value(json_object_get(json_object_get(s, "status"), "code")),
                        "UNSET");
    assert_true(json_is_null(json_object_get(json_array_get(t, 0), "parent_span_id")));
    assert_true(json_is_object(json_object_get(s, "attributes")));
    assert_true(json_is_array(json_object_get(s, "events")));
    json_decref(t);

    /* an empty page */
    t = tree_of(NULL, 0);
    assert_int_equal(json_array_size(t), 0);
    json_decref(t);
}

static void test_tree_text(void **state)
{
    /* strings that need escaping, bytes that are not UTF-8, stored JSON
     * that is not what span.c writes: the answer is JSON all the same */
    aos_store_span_t rows[] = {
        row(TID, "0000000000000001", NULL, -1500000),
        row(TID, "0000000000000002", "0000000000000001", 2),
        row(TID, "0000000000000003", "0000000000000001", 3),
    };
    rows[0].name = "q\"uote\\ back\n\t\x01\x1f end";
    rows[0].status_code = AOS_SPAN_ERROR;
    rows[0].status_message = "bad \xff byte";
    rows[0].attributes = "{\"k\":\"v \\\"q\\\" \\u00e9\",\"n\":-3,\"d\":2.5e-3,\"b\":false}";
    rows[0].trace_state = "rojo=1";
    rows[0].dropped_links = 7;
    rows[0].resource_id = 4;
    rows[1].attributes = "{\"cut\":\"of";     /* truncated */
    rows[1].events = "[\"raw\nline\"]";       /* a raw control character */
    rows[2].links = "{\"not\":\"an array\"}"; /* the wrong kind */
    rows[2].kind = 42;
    rows[2].status_code = -1;
    json_t *t = tree_of(rows, 3);
    json_t *s0 = json_array_get(t, 0);
    assert_string_equal(json_string_value(json_object_get(s0, "name")), rows[0].name);
    json_t *st = json_object_get(s0, "status");
    assert_string_equal(json_string_value(json_object_get(st, "code")), "ERROR");
    assert_string_equal(json_string_value(json_object_get(st, "message")), "bad \xef\xbf\xbd byte");
    json_t *a = json_object_get(s0, "attributes");
    assert_string_equal(json_string_value(json_object_get(a, "k")), "v \"q\" \xc3\xa9");
    assert_int_equal(json_integer_value(json_object_get(a, "n")), -3);
    assert_true(json_real_value(json_object_get(a, "d")) == 2.5e-3);
    assert_true(json_is_false(json_object_get(a, "b")));
    assert_string_equal(json_string_value(json_object_get(s0, "trace_state")), "rojo=1");
    assert_int_equal(json_integer_value(json_object_get(s0, "dropped_links_count")), 7);
    assert_null(json_object_get(s0, "dropped_events_count"));
    assert_int_equal(json_integer_value(json_object_get(s0, "resource_id")), 4);
    assert_string_equal(json_string_value(json_object_get(s0, "start_time")),
                        "1969-12-31T23:59:59.998Z");
    assert_string_equal(json_string_value(json_object_get(s0, "start_time_unix_nano")), "-1500000");
    json_t *kids0 = json_object_get(s0, "children");
    json_t *s1 = json_array_get(kids0, 0), *s2 = json_array_get(kids0, 1);
    assert_int_equal(json_object_size(json_object_get(s1, "attributes")), 0);
    assert_int_equal(json_array_size(json_object_get(s1, "events")), 0);
    assert_int_equal(json_array_size(json_object_get(s2, "links")), 0);
    assert_string_equal(json_string_value(json_object_get(s2, "kind")), "UNSPECIFIED");
    assert_string_equal(json_string_value(json_object_get(json_object_get(s2, "status"), "code")),
                        "UNSET");
    json_decref(t);

    /* the whole answer */
    aos_buf_t b;
    aos_buf_init(&b, 0);
    aos__trace_resource_t res[] = {{4, "{\"service.name\":\"aosd\"}"}, {5, "garbage"}};
    assert_int_equal(aos__trace_render(&b, TID, 3, rows, 3, res, 2, "Y3Vyc29y"), 0);
    json_t *all = json_loads(b.ptr, 0, NULL);
    assert_non_null(all);
    assert_string_equal(json_string_value(json_object_get(all, "trace_id")), TID);
    assert_int_equal(json_integer_value(json_object_get(all, "span_count")), 3);
    assert_int_equal(json_array_size(json_object_get(all, "spans")), 1);
    json_t *r = json_object_get(all, "resources");
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_array_get(r, 0), "attributes"), "service.name")),
                        "aosd");
    assert_int_equal(json_object_size(json_object_get(json_array_get(r, 1), "attributes")), 0);
    assert_string_equal(json_string_value(json_object_get(all, "next_cursor")), "Y3Vyc29y");
    json_decref(all);
    aos_buf_reset(&b);
    assert_int_equal(aos__trace_render(&b, TID, 0, NULL, 0, NULL, 0, NULL), 0);
    all = json_loads(b.ptr, 0, NULL);
    assert_true(json_is_null(json_object_get(all, "next_cursor")));
    assert_null(json_object_get(all, "logs")); /* without lines: the answer as before */
    json_decref(all);

    /* with log lines: a span's own under it, the rest beside the tree */
    aos_map_t by_span;
    aos_map_init(&by_span);
    aos_map_put(&by_span, rows[1].span_id, (void *)"[{\"message\":\"one\"}]");
    aos__trace_logs_t logs = {&by_span, "[{\"message\":\"rest\"}]", 1};
    aos_buf_reset(&b);
    assert_int_equal(aos__trace_render_logs(&b, TID, 3, rows, 3, res, 2, NULL, &logs), 0);
    all = json_loads(b.ptr, 0, NULL);
    assert_non_null(all);
    json_t *root = json_array_get(json_object_get(all, "spans"), 0);
    assert_null(json_object_get(root, "logs"));
    json_t *kid = json_array_get(json_object_get(root, "children"), 0);
    assert_string_equal(json_string_value(json_object_get(kid, "span_id")), rows[1].span_id);
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(kid, "logs"), 0), "message")),
                        "one");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(all, "logs"), 0), "message")),
                        "rest");
    assert_true(json_is_true(json_object_get(all, "logs_truncated")));
    json_decref(all);
    aos_map_release(&by_span);
    aos_buf_release(&b);
}

static void test_tree_cycles_and_duplicates(void **state)
{
    /* x <-> y point at each other; z is x's child; w is its own parent */
    aos_store_span_t rows[] = {
        row(TID, "000000000000000x", "000000000000000y", 1),
        row(TID, "000000000000000y", "000000000000000x", 2),
        row(TID, "000000000000000z", "000000000000000x", 3),
        row(TID, "000000000000000w", "000000000000000w", 4),
        row(TID, "000000000000000w", NULL, 5), /* the same id again */
    };
    json_t *t = tree_of(rows, 5);
    /* every span written once: count them all */
    size_t total = 0;
    json_t *stack[16];
    size_t sp = 0;
    stack[sp++] = t;
    while (sp) {
        json_t *list = stack[--sp];
        size_t i;
        json_t *o;
        json_array_foreach(list, i, o)
        {
            total++;
            assert_true(sp < 16);
            stack[sp++] = json_object_get(o, "children");
        }
    }
    assert_int_equal(total, 5);
    /* the two w's are roots (one its own parent), then the cycle from x */
    assert_string_equal(name_at(t, 0), "000000000000000w");
    assert_string_equal(name_at(t, 1), "000000000000000w");
    assert_string_equal(name_at(t, 2), "000000000000000x");
    json_t *x = kids(t, 2);
    assert_int_equal(json_array_size(x), 2); /* y and z */
    assert_string_equal(name_at(x, 0), "000000000000000y");
    assert_string_equal(name_at(x, 1), "000000000000000z");
    json_decref(t);
}

static void test_tree_depth(void **state)
{
    /* a chain 200 deep: nested AOS__TRACE_DEPTH levels, the rest from the top */
    enum { N = 200 };
    static char ids[N][17];
    aos_store_span_t rows[N];
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%016x", i + 1);
        rows[i] = row(TID, ids[i], i ? ids[i - 1] : NULL, i);
    }
    json_t *t = tree_of(rows, N);
    size_t depth = 0, tops = json_array_size(t);
    json_t *list = t;
    while (json_array_size(list)) {
        depth++;
        list = kids(list, 0);
    }
    assert_int_equal(depth, AOS__TRACE_DEPTH);
    assert_int_equal(tops, (N + AOS__TRACE_DEPTH - 1) / AOS__TRACE_DEPTH);
    /* the second top-level span continues the chain */
    assert_string_equal(json_string_value(json_object_get(json_array_get(t, 1), "parent_span_id")),
                        ids[AOS__TRACE_DEPTH - 1]);
    json_decref(t);
}

/* ---- the service on a loop ---------------------------------------------------- */

typedef struct {
    uv_loop_t loop;
    aos_store_t *st;
    aos_metrics_t *m;
    aos_trace_t *tr;
} svc_t;

static void svc_open_ratio(svc_t *s, fixture_t *f, unsigned long buffer, unsigned flush_ms,
                           double ratio)
{
    memset(s, 0, sizeof(*s));
    assert_int_equal(uv_loop_init(&s->loop), 0);
    s->st = open_store(f, &s->loop);
    s->m = aos_metrics_new();
    aos_trace_cfg_t c = {.loop = &s->loop,
                         .store = s->st,
                         .metrics = s->m,
                         .version = "9.9.9",
                         .buffer = buffer,
                         .flush_ms = flush_ms,
                         .sample_ratio = ratio};
    aos_err_t err = {0, ""};
    assert_int_equal(aos_trace_new(&s->tr, &c, &err), 0);
}

static void svc_open(svc_t *s, fixture_t *f, unsigned long buffer, unsigned flush_ms)
{
    svc_open_ratio(s, f, buffer, flush_ms, 1);
}

/* The rest, once the store is closed. */
static void svc_release(svc_t *s)
{
    uv_run(&s->loop, UV_RUN_NOWAIT);
    aos_trace_free(s->tr);
    aos_metrics_free(s->m);
    uv_run(&s->loop, UV_RUN_NOWAIT);
    assert_int_equal(uv_loop_close(&s->loop), 0);
}

static void svc_close(svc_t *s)
{
    aos_trace_shutdown(s->tr);
    aos_store_close(s->st);
    svc_release(s);
}

/* Runs the loop until the spans table holds want rows; fails after 5 s. */
static void run_until_rows(svc_t *s, fixture_t *f, int64_t want)
{
    for (int i = 0; i < 500; i++) {
        uv_run(&s->loop, UV_RUN_NOWAIT);
        if (sql_int(f, "SELECT COUNT(*) FROM spans") >= want)
            return;
        usleep(10000);
    }
    fail_msg("spans: %lld, want %lld", (long long)sql_int(f, "SELECT COUNT(*) FROM spans"),
             (long long)want);
}

/* The value of a metric line starting with prefix, or -1. */
static double metric(svc_t *s, const char *prefix)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    aos_metrics_render(s->m, &b);
    double v = -1;
    char line[160];
    snprintf(line, sizeof(line), "\n%s", prefix); /* a sample, not its # HELP */
    const char *p = b.ptr ? strstr(b.ptr, line) : NULL;
    if (p)
        v = strtod(p + strlen(line), NULL);
    aos_buf_release(&b);
    return v;
}

/* Runs the loop until the metric line starting with prefix says want. */
static void run_until_metric(svc_t *s, const char *prefix, double want)
{
    for (int i = 0; i < 500 && metric(s, prefix) != want; i++) {
        uv_run(&s->loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    if (metric(s, prefix) != want)
        fail_msg("%s%g, want %g", prefix, metric(s, prefix), want);
}

static void test_spans_written_within_flush(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    svc_open(&s, f, 0, 50);
    aos_tracectx_t in;
    assert_int_equal(aos_tracectx_parse(&in, "00-" TID "-00f067aa0ba902b7-01", "rojo=1"), 0);
    aos_span_t *server = aos_trace_span_start(s.tr, &in, "tools/call echo", AOS_SPAN_SERVER);
    aos_span_t *client =
        aos_trace_span_start(s.tr, aos_span_context(server), "tools/call echo", AOS_SPAN_CLIENT);
    const aos_tracectx_t *cc = aos_span_context(client);
    assert_string_equal(cc->trace_id, TID);
    assert_string_equal(cc->tracestate, "rojo=1");
    aos_span_set_str(client, AOS_ATTR_MCP_METHOD_NAME, "tools/call");
    aos_span_set_int(client, AOS_ATTR_GEN_AI_INPUT_TOKENS, 12);
    aos_span_set_double(client, "ratio", 0.5);
    aos_span_set_bool(client, "cached", 1);
    aos_span_set_str(client, "replaced", "first");
    aos_span_set_str(client, "replaced", "second");
    /* a literal of aosd's own, unscanned: the same member set_str writes;
     * a value that is not one after all goes the way of set_str */
    aos_span_set_const(client, AOS_ATTR_GEN_AI_OPERATION_NAME, "execute_tool");
    aos_span_set_const(client, "const.scrubbed", "bad \xff utf-8");
    aos_span_set_const(client, "replaced", "third");
    aos_span_set_const(client, "const.null", NULL);
    aos_span_set_error(client, "timeout", "no answer in 30 s");
    aos_span_add_event(client, "retry", json_pack("{s:i}", "attempt", 2));
    aos_tracectx_t other;
    assert_int_equal(aos_tracectx_parse(&other, "00-" TID2 "-b7ad6b7169203331-00", NULL), 0);
    aos_span_add_link(client, &other);
    aos_span_set_session(server, "a-session-id");
    char client_id[AOS_SPAN_ID_LEN + 1], server_id[AOS_SPAN_ID_LEN + 1];
    memcpy(client_id, cc->span_id, sizeof(client_id));
    memcpy(server_id, aos_span_context(server)->span_id, sizeof(server_id));
    uint64_t t0 = uv_hrtime();
    aos_span_end(client);
    aos_span_end(server);
    run_until_rows(&s, f, 2);
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    assert_true(ms < 1000); /* flush_ms is 50 */

    /* one transaction: both rows, read back through the store */
    aos_err_t err = {0, ""};
    aos_store_span_page_t pg;
    assert_int_equal(aos_store_spans_trace(s.st, TID, INT64_MIN, 0, 10, &pg, &err), 0);
    assert_int_equal(pg.n, 2);
    const aos_store_span_t *sv = &pg.rows[0], *cl = &pg.rows[1];
    assert_string_equal(sv->span_id, server_id);
    assert_string_equal(sv->parent_span_id, "00f067aa0ba902b7");
    assert_int_equal(sv->flags, 0x301); /* sampled; the parent is remote */
    assert_int_equal(sv->kind, AOS_SPAN_SERVER);
    assert_string_equal(cl->span_id, client_id);
    assert_string_equal(cl->parent_span_id, server_id);
    assert_int_equal(cl->flags, 0x101);
    assert_string_equal(cl->trace_state, "rojo=1");
    assert_int_equal(cl->status_code, AOS_SPAN_ERROR);
    assert_string_equal(cl->status_message, "no answer in 30 s");
    assert_true(cl->end_ns >= cl->start_ns);
    json_t *a = json_loads(cl->attributes, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(a, "error.type")), "timeout");
    assert_int_equal(json_integer_value(json_object_get(a, "gen_ai.usage.input_tokens")), 12);
    assert_true(json_is_real(json_object_get(a, "ratio")));
    assert_true(json_is_true(json_object_get(a, "cached")));
    assert_string_equal(json_string_value(json_object_get(a, "replaced")), "third");
    assert_string_equal(json_string_value(json_object_get(a, "gen_ai.operation.name")),
                        "execute_tool");
    assert_string_equal(json_string_value(json_object_get(a, "const.scrubbed")),
                        "bad \xef\xbf\xbd utf-8");
    assert_null(json_object_get(a, "const.null"));
    json_decref(a);
    json_t *ev = json_loads(cl->events, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ev, 0), "name")), "retry");
    json_decref(ev);
    json_t *ln = json_loads(cl->links, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ln, 0), "trace_id")),
                        TID2);
    json_decref(ln);
    /* the session id itself is not stored: a digest of it */
    json_t *sa = json_loads(sv->attributes, 0, NULL);
    const char *sid = json_string_value(json_object_get(sa, "mcp.session.id"));
    assert_non_null(sid);
    assert_int_equal(strlen(sid), 32);
    assert_null(strstr(sid, "a-session-id"));
    json_decref(sa);
    /* the resource of this process */
    char *res = NULL;
    assert_int_equal(aos_store_span_resource_get(s.st, sv->resource_id, &res, &err), 0);
    json_t *r = json_loads(res, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(r, "service.name")), "aosd");
    assert_string_equal(json_string_value(json_object_get(r, "service.version")), "9.9.9");
    assert_int_equal(json_integer_value(json_object_get(r, "process.pid")), getpid());
    json_decref(r);
    free(res);
    aos_store_span_page_release(&pg);
    run_until_metric(&s, "aos_trace_spans_stored_total ", 2);
    svc_close(&s);
}

static void test_span_limits(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    svc_open(&s, f, 0, 10);
    aos_span_t *sp = aos_trace_span_start(s.tr, NULL, NULL, AOS_SPAN_INTERNAL);
    char key[32];
    for (int i = 0; i < AOS_TRACE_ATTRS + 10; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        aos_span_set_int(sp, key, i);
    }
    aos_span_set_int(sp, "k0", -1); /* a key it has: replaced, not dropped */
    char big[AOS_TRACE_VALUE_MAX + 100];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    aos_span_set_str(sp, "k1", big);
    aos_span_set_str(sp, "k2", "bad \xff\xfe utf-8");
    for (int i = 0; i < AOS_TRACE_EVENTS + 3; i++)
        aos_span_add_event(sp, "e", NULL);
    aos_span_add_event(sp, "nested", json_pack("{s:{}}", "no", "")); /* refused attributes */
    /* NULL spans do nothing */
    aos_span_set_str(NULL, "k", "v");
    aos_span_add_event(NULL, "e", json_object());
    aos_span_end(NULL);
    assert_null(aos_span_context(NULL));
    assert_null(aos_trace_span_start(NULL, NULL, "x", AOS_SPAN_INTERNAL));
    const aos_tracectx_t *c = aos_span_context(sp);
    assert_true(aos_tracectx_valid(c));
    char tid[AOS_TRACE_ID_LEN + 1];
    memcpy(tid, c->trace_id, sizeof(tid));
    aos_span_end(sp);
    run_until_rows(&s, f, 1);
    aos_err_t err = {0, ""};
    aos_store_span_page_t pg;
    assert_int_equal(aos_store_spans_trace(s.st, tid, INT64_MIN, 0, 10, &pg, &err), 0);
    assert_int_equal(pg.n, 1);
    const aos_store_span_t *r = &pg.rows[0];
    assert_null(r->parent_span_id);
    assert_string_equal(r->name, "");
    assert_int_equal(r->dropped_attributes, 10);
    assert_int_equal(r->dropped_events, 4);
    json_t *a = json_loads(r->attributes, 0, NULL);
    assert_int_equal(json_object_size(a), AOS_TRACE_ATTRS);
    assert_int_equal(json_integer_value(json_object_get(a, "k0")), -1);
    assert_int_equal(strlen(json_string_value(json_object_get(a, "k1"))), AOS_TRACE_VALUE_MAX);
    assert_string_equal(json_string_value(json_object_get(a, "k2")),
                        "bad \xef\xbf\xbd\xef\xbf\xbd utf-8");
    json_decref(a);
    json_t *ev = json_loads(r->events, 0, NULL);
    assert_int_equal(json_array_size(ev), AOS_TRACE_EVENTS);
    json_decref(ev);
    aos_store_span_page_release(&pg);
    svc_close(&s);
}

/* Attribute values and the status message go through the redactor
 * (src/redact) before they are stored. */
static void test_span_redaction(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    svc_open(&s, f, 0, 10);
    assert_int_equal(aos_redact_add_value(aos_redact_global(), "span-secret-0042"), 0);
    aos_span_t *sp = aos_trace_span_start(s.tr, NULL, NULL, AOS_SPAN_INTERNAL);
    aos_span_set_str(sp, "db.statement", "SELECT 1 -- span-secret-0042");
    aos_span_set_str(sp, "url.full", "https://u:pw-12345@h/x");
    aos_span_set_str(sp, "plain", "nothing here");
    /* invalid UTF-8 is scrubbed first, then redacted */
    aos_span_set_str(sp, "scrubbed", "bad \xff span-secret-0042");
    /* a key that is not valid UTF-8, or too long, is stored as a name is */
    aos_span_set_str(sp, "key\xfe", "v");
    char long_key[AOS_TRACE_NAME_MAX + 20];
    memset(long_key, 'k', sizeof(long_key) - 1);
    long_key[sizeof(long_key) - 1] = '\0';
    aos_span_set_int(sp, long_key, 7);
    aos_span_set_error(sp, "x", "failed for 11010519491231002X");
    const aos_tracectx_t *c = aos_span_context(sp);
    char tid[AOS_TRACE_ID_LEN + 1];
    memcpy(tid, c->trace_id, sizeof(tid));
    aos_span_end(sp);
    run_until_rows(&s, f, 1);
    aos_err_t err = {0, ""};
    aos_store_span_page_t pg;
    assert_int_equal(aos_store_spans_trace(s.st, tid, INT64_MIN, 0, 10, &pg, &err), 0);
    assert_int_equal(pg.n, 1);
    json_t *a = json_loads(pg.rows[0].attributes, 0, NULL);
    assert_string_equal(json_string_value(json_object_get(a, "db.statement")),
                        "SELECT 1 -- [REDACTED]");
    assert_string_equal(json_string_value(json_object_get(a, "url.full")),
                        "https://u:[REDACTED]@h/x");
    assert_string_equal(json_string_value(json_object_get(a, "plain")), "nothing here");
    assert_string_equal(json_string_value(json_object_get(a, "scrubbed")),
                        "bad \xef\xbf\xbd [REDACTED]");
    assert_string_equal(json_string_value(json_object_get(a, "key\xef\xbf\xbd")), "v");
    long_key[AOS_TRACE_NAME_MAX] = '\0';
    assert_int_equal(json_integer_value(json_object_get(a, long_key)), 7);
    assert_string_equal(pg.rows[0].status_message, "failed for [REDACTED]");
    json_decref(a);
    aos_store_span_page_release(&pg);
    assert_int_equal(aos_redact_remove_value(aos_redact_global(), "span-secret-0042"), 0);
    svc_close(&s);
}

static void test_buffer_bound_and_batches(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    /* a buffer of 2,500 spans; 3,000 end while the loop does not run */
    svc_open(&s, f, 2500, 1000);
    for (int i = 0; i < 3000; i++)
        aos_span_end(aos_trace_span_start(s.tr, NULL, "s", AOS_SPAN_INTERNAL));
    assert_true(metric(&s, "aos_trace_spans_dropped_total{reason=\"buffer\"} ") == 500);
    assert_true(metric(&s, "aos_trace_spans_buffered ") == 2500);
    /* two batches of AOS_TRACE_BATCH left at once, the rest waits for them */
    run_until_rows(&s, f, 2500);
    run_until_metric(&s, "aos_trace_spans_stored_total ", 2500);
    assert_true(metric(&s, "aos_trace_spans_buffered ") == 0);
    svc_close(&s);
}

static void test_flush_for_a_reader(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    svc_open(&s, f, 0, 60000);
    /* two batches in flight (the loop does not run), 500 spans waiting */
    for (int i = 0; i < 2 * AOS_TRACE_BATCH + 500; i++)
        aos_span_end(aos_trace_span_start(s.tr, NULL, "s", AOS_SPAN_INTERNAL));
    /* what GET /api/traces does before its query: everything goes now, so
     * a job submitted next sees every span (the worker runs jobs in order) */
    aos__trace_flush(s.tr);
    aos_store_close(s.st); /* runs the jobs queued, without the loop */
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), 2 * AOS_TRACE_BATCH + 500);
    svc_release(&s);
}

static void test_flush_at_shutdown(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    /* a long flush delay: only the shutdown writes them */
    svc_open(&s, f, 0, 60000);
    for (int i = 0; i < 10; i++)
        aos_span_end(aos_trace_span_start(s.tr, NULL, "late", AOS_SPAN_INTERNAL));
    uv_run(&s.loop, UV_RUN_NOWAIT);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), 0);
    aos_trace_shutdown(s.tr);
    /* after the shutdown a span goes at once */
    aos_span_end(aos_trace_span_start(s.tr, NULL, "later", AOS_SPAN_INTERNAL));
    aos_store_close(s.st); /* runs what is queued */
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), 11);
    svc_release(&s);
}

static void test_retention_runs(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    memset(&s, 0, sizeof(s));
    assert_int_equal(uv_loop_init(&s.loop), 0);
    s.st = open_store(f, &s.loop);
    s.m = aos_metrics_new();
    /* spans of 10 days ago and now; keep 7 days */
    int64_t now = (int64_t)time(NULL) * 1000000000;
    aos_store_span_t rows[] = {row(TID, "0000000000000001", NULL, now - 10 * 86400000000000LL),
                               row(TID, "0000000000000002", NULL, now)};
    rows[0].end_ns = rows[0].start_ns;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_spans_insert(s.st, rows, 2, &err), 0);
    aos_trace_cfg_t c = {.loop = &s.loop,
                         .store = s.st,
                         .metrics = s.m,
                         .retention_days = 7,
                         .retention_check_s = 1};
    assert_int_equal(aos_trace_new(&s.tr, &c, &err), 0);
    for (int i = 0; i < 300 && sql_int(f, "SELECT COUNT(*) FROM spans") != 1; i++) {
        uv_run(&s.loop, UV_RUN_NOWAIT);
        usleep(10000);
    }
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), 1);
    run_until_metric(&s, "aos_trace_retention_deleted_total ", 1);
    svc_close(&s);
}

/* ---- a trace of 10,000 spans ---------------------------------------------------- */

static double since_ms(struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void test_ten_thousand_spans(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    enum { N = 10000 };
    /* a task: one root, 100 steps, 99 tool calls under each, each with
     * attributes like the gateway's */
    static char ids[N][17];
    aos_store_span_t *rows = calloc(N, sizeof(*rows));
    assert_non_null(rows);
    const char *attrs = "{\"mcp.method.name\":\"tools/call\",\"gen_ai.operation.name\":"
                        "\"execute_tool\",\"gen_ai.tool.name\":\"echo\",\"jsonrpc.request.id\":"
                        "\"42\",\"mcp.session.id\":\"0123456789abcdef0123456789abcdef\"}";
    for (int i = 0; i < N; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%016x", i + 1);
        const char *parent = i == 0 ? NULL : (i % 100 == 1 ? ids[0] : ids[(i - 1) / 100 * 100 + 1]);
        rows[i] = row(TID, ids[i], parent, 1700000000000000000LL + i * 1000);
        rows[i].attributes = attrs;
        rows[i].resource_id = 1;
    }
    insert(st, rows, N);
    free(rows);

    /* what GET /api/traces/:id?limit=10000 does: count, page, tree, text */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    aos_err_t err = {0, ""};
    int64_t total = 0;
    aos_store_span_page_t pg;
    assert_int_equal(aos_store_spans_count(st, TID, &total, &err), 0);
    assert_int_equal(
        aos_store_spans_trace(st, TID, INT64_MIN, 0, AOS__TRACE_PAGE_MAX + 1, &pg, &err), 0);
    double read_ms = since_ms(&t0);
    aos_buf_t b;
    aos_buf_init(&b, 0);
    aos__trace_resource_t res = {1, "{\"service.name\":\"aosd\"}"};
    assert_int_equal(aos__trace_render(&b, TID, total, pg.rows, pg.n, &res, 1, NULL), 0);
    double all_ms = since_ms(&t0);
    json_t *answer = json_loads(b.ptr, 0, NULL);
    assert_non_null(answer);
    json_t *tree = json_object_get(answer, "spans");
    assert_int_equal(total, N);
    assert_int_equal(pg.n, N);
    assert_int_equal(json_array_size(tree), 1);
    assert_int_equal(json_array_size(kids(tree, 0)), 100);
    assert_int_equal(json_array_size(kids(kids(tree, 0), 0)), 99);
    printf("# 10,000 spans: read %.1f ms, read + tree + JSON (%zu bytes) %.1f ms\n", read_ms, b.len,
           all_ms);
    /* a bound with room for ASan and a loaded machine: the release build
     * takes a fraction of it (see docs/ARCHITECTURE.md) */
    assert_true(all_ms < 2000);
    aos_buf_release(&b);
    json_decref(answer);
    aos_store_span_page_release(&pg);
    aos_store_close(st);
}

/* Traces born here are sampled by their id at the ratio; a span under a
 * parent follows the parent; what is not sampled is never stored. */
static void test_sampling(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    svc_open_ratio(&s, f, 0, 20, 0.25);
    int kept = 0;
    for (int i = 0; i < 4000; i++) {
        aos_span_t *sp = aos_trace_span_start(s.tr, NULL, "root", AOS_SPAN_INTERNAL);
        kept += (aos_span_context(sp)->flags & AOS_TRACE_SAMPLED) != 0;
        aos_span_end(sp);
    }
    assert_in_range(kept, 800, 1200); /* 1,000 expected */
    run_until_rows(&s, f, kept);
    uv_run(&s.loop, UV_RUN_NOWAIT);
    usleep(100000);
    uv_run(&s.loop, UV_RUN_NOWAIT);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), kept);
    /* a parent decides for its children, whatever the ratio */
    aos_tracectx_t yes, no;
    assert_int_equal(aos_tracectx_parse(&yes, "00-" TID "-00f067aa0ba902b7-01", NULL), 0);
    assert_int_equal(aos_tracectx_parse(&no, "00-" TID "-00f067aa0ba902b8-00", NULL), 0);
    for (int i = 0; i < 100; i++) {
        aos_span_t *a = aos_trace_span_start(s.tr, &yes, "child", AOS_SPAN_INTERNAL);
        aos_span_t *b = aos_trace_span_start(s.tr, &no, "child", AOS_SPAN_INTERNAL);
        assert_true(aos_span_context(a)->flags & AOS_TRACE_SAMPLED);
        assert_false(aos_span_context(b)->flags & AOS_TRACE_SAMPLED);
        aos_span_set_str(b, "k", "v");
        aos_span_end(a);
        aos_span_end(b);
    }
    run_until_rows(&s, f, kept + 100);
    usleep(100000);
    uv_run(&s.loop, UV_RUN_NOWAIT);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), kept + 100);
    svc_close(&s);
}

/* Sampling at 0: a trace with an error span is stored whole - the spans
 * that ended before the error (held), the error span, and those ending
 * after it - with the sampled flag set and their attributes; a trace
 * without one is not stored; aos_trace_keep stores a held trace and says
 * so; held spans are bounded (TAIL_SPANS, 4,096), the rest dropped and
 * counted; keeping off stores nothing. */
static void test_error_traces_kept(void **state)
{
    fixture_t *f = *state;
    svc_t s;
    svc_open_ratio(&s, f, 0, 20, 0);
    /* a trace without an error: held, never stored */
    aos_span_t *r1 = aos_trace_span_start(s.tr, NULL, "ok-root", AOS_SPAN_SERVER);
    aos_span_t *c1 = aos_trace_span_start(s.tr, aos_span_context(r1), "ok-child", AOS_SPAN_CLIENT);
    assert_false(aos_span_context(r1)->flags & AOS_TRACE_SAMPLED);
    aos_span_end(c1);
    aos_span_end(r1);
    /* a trace whose second child fails: the first child ended before */
    aos_span_t *r2 = aos_trace_span_start(s.tr, NULL, "err-root", AOS_SPAN_SERVER);
    char tid[AOS_TRACE_ID_LEN + 1];
    memcpy(tid, aos_span_context(r2)->trace_id, sizeof(tid));
    aos_span_t *a = aos_trace_span_start(s.tr, aos_span_context(r2), "first", AOS_SPAN_CLIENT);
    aos_span_set_str(a, "k", "v");
    aos_span_end(a);
    aos_span_t *b = aos_trace_span_start(s.tr, aos_span_context(r2), "second", AOS_SPAN_CLIENT);
    aos_span_set_error(b, "timeout", "no answer");
    aos_span_end(b);
    aos_span_end(r2);
    run_until_rows(&s, f, 3);
    char sql[256];
    snprintf(sql, sizeof(sql), "SELECT COUNT(*) FROM spans WHERE trace_id = '%s'", tid);
    assert_int_equal(sql_int(f, sql), 3);
    snprintf(sql, sizeof(sql),
             "SELECT COUNT(*) FROM spans WHERE trace_id = '%s' AND flags & 1 = 1 AND "
             "(name <> 'first' OR attributes LIKE '%%\"k\":\"v\"%%')",
             tid);
    assert_int_equal(sql_int(f, sql), 3);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans WHERE name LIKE 'ok-%'"), 0);
    /* named by an anomaly: a held trace is stored, and the answer says so */
    aos_span_t *r3 = aos_trace_span_start(s.tr, NULL, "named", AOS_SPAN_SERVER);
    memcpy(tid, aos_span_context(r3)->trace_id, sizeof(tid));
    aos_span_end(r3);
    assert_int_equal(aos_trace_keep(s.tr, tid), 1);
    assert_int_equal(aos_trace_keep(s.tr, tid), 1); /* kept already */
    run_until_rows(&s, f, 4);
    assert_int_equal(aos_trace_keep(s.tr, "0123456789abcdef0123456789abcdef"), 0); /* unknown */
    assert_int_equal(aos_trace_keep(s.tr, "short"), 0);
    /* the bound: 5,000 traces of one span held, the oldest dropped */
    for (int i = 0; i < 5000; i++)
        aos_span_end(aos_trace_span_start(s.tr, NULL, "many", AOS_SPAN_INTERNAL));
    assert_true(metric(&s, "aos_trace_tail_spans_held ") <= 4096);
    assert_true(metric(&s, "aos_trace_tail_spans_total{outcome=\"dropped\"} ") >= 5000 + 2 - 4096);
    assert_int_equal(metric(&s, "aos_trace_tail_spans_total{outcome=\"kept\"} "), 4);
    svc_close(&s);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans"), 4);

    /* keeping off: a span not sampled records nothing, an error stores nothing */
    memset(&s, 0, sizeof(s));
    assert_int_equal(uv_loop_init(&s.loop), 0);
    s.st = open_store(f, &s.loop);
    s.m = aos_metrics_new();
    aos_trace_cfg_t c = {.loop = &s.loop,
                         .store = s.st,
                         .metrics = s.m,
                         .flush_ms = 20,
                         .sample_ratio = 0,
                         .keep_errors_off = 1};
    aos_err_t err = {0, ""};
    assert_int_equal(aos_trace_new(&s.tr, &c, &err), 0);
    aos_span_t *x = aos_trace_span_start(s.tr, NULL, "off", AOS_SPAN_SERVER);
    aos_span_set_error(x, "timeout", NULL);
    aos_span_end(x);
    usleep(100000);
    uv_run(&s.loop, UV_RUN_NOWAIT);
    svc_close(&s);
    assert_int_equal(sql_int(f, "SELECT COUNT(*) FROM spans WHERE name = 'off'"), 0);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_store_rows),
        T(test_store_insert_is_atomic),
        T(test_store_retention),
        cmocka_unit_test(test_tree_shape),
        cmocka_unit_test(test_tree_text),
        cmocka_unit_test(test_tree_cycles_and_duplicates),
        cmocka_unit_test(test_tree_depth),
        T(test_spans_written_within_flush),
        T(test_span_limits),
        T(test_span_redaction),
        T(test_buffer_bound_and_batches),
        T(test_flush_for_a_reader),
        T(test_flush_at_shutdown),
        T(test_retention_runs),
        T(test_ten_thousand_spans),
        T(test_sampling),
        T(test_error_traces_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
