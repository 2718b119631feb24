/* test_audit.c - the audit log's hash chain (src/store/audit.c): the
 * encoding against vectors computed independently (Python's hashlib
 * BLAKE2b over the documented encoding), appends, the upgrade of rows
 * written before migration 0015, filters, and verification finding rows
 * edited, deleted or re-hashed with libsqlite3 behind the store's back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rawsql.h"
#include "tmpdir.h"

#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/internal.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    char path[96];
    char url[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f || aos_test_mkdtemp(f->dir, sizeof(f->dir), "audit")) {
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

static aos_store_t *open_store(fixture_t *f)
{
    aos_store_t *st = NULL;
    aos_err_t err = {0};
    if (aos_store_open(&st, NULL, f->url, &err) != 0)
        fail_msg("aos_store_open: %s", aos_err_msg(&err));
    return st;
}

/* Runs sql on the file with a connection of its own (what an attacker with
 * the sqlite3 shell does). */
static void raw_exec(fixture_t *f, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg);
    sqlite3_close(db);
}

static void hex(const unsigned char *h, char out[65])
{
    sodium_bin2hex(out, 65, h, 32);
}

static size_t len_of(const char *s)
{
    return s ? strlen(s) : 0;
}

#define ROW(id_, actor_, action_, res_, diff_, at_)                                                \
    {                                                                                              \
        (id_), (actor_), len_of(actor_), (action_), len_of(action_), (res_), len_of(res_),         \
            (diff_), len_of(diff_), (at_), len_of(at_)                                             \
    }

/* Vectors from Python: hashlib.blake2b(b"aos.audit.v1\n" + prev + id as 8
 * bytes big-endian + each field as 0x00 (NULL) or 0x01 + 8-byte
 * big-endian length + bytes, digest_size=32). */
static void test_hash_vectors(void **state)
{
    (void)state;
    unsigned char zero[32] = {0}, h1[32], h2[32], h3[32];
    char x[65];
    aos_store_audit_row_t r1 = ROW(1, "token:owner", "auth.token.create", "api_tokens/t1",
                                   "{\"name\":\"ci\"}", "2026-12-07T03:00:00.000Z");
    aos_store_audit_hash(zero, &r1, h1);
    hex(h1, x);
    assert_string_equal(x, "c7d176192bb2f3eab2626194ea2212b4866d60283024c1b636ec75fee3880fe5");
    aos_store_audit_row_t r2 =
        ROW(2, "aosd", "auth.bootstrap", NULL, NULL, "2026-12-07T03:00:01.000Z");
    aos_store_audit_hash(h1, &r2, h2);
    hex(h2, x);
    assert_string_equal(x, "44dcd460e9a53734a5b272cdb654a1e5a941944a7f96f4b702d3dbc1624964bb");
    /* UTF-8 and an empty (not NULL) resource */
    aos_store_audit_row_t r3 =
        ROW(2, "\xe5\xbc\xa0\xe4\xb8\x89", "x", "", NULL, "2026-12-07T03:00:01.000Z");
    aos_store_audit_hash(h1, &r3, h3);
    hex(h3, x);
    assert_string_equal(x, "df38b32746d69276ad6b6e35660ba89619305ac12ea9a8eccbb59d2ab5c7d694");
}

/* No two rows encode alike: bytes moved from one field to the next, NULL
 * against "", another id or another prev all change the hash. */
static void test_hash_is_unambiguous(void **state)
{
    (void)state;
    unsigned char zero[32] = {0}, one[32] = {1}, a[32], b[32];
    aos_store_audit_row_t ra = ROW(7, "ab", "c", "r", "{}", "t");
    aos_store_audit_row_t rb = ROW(7, "a", "bc", "r", "{}", "t");
    aos_store_audit_hash(zero, &ra, a);
    aos_store_audit_hash(zero, &rb, b);
    assert_memory_not_equal(a, b, 32);
    aos_store_audit_row_t rn = ROW(7, "ab", "c", NULL, "{}", "t");
    aos_store_audit_row_t re = ROW(7, "ab", "c", "", "{}", "t");
    aos_store_audit_hash(zero, &rn, a);
    aos_store_audit_hash(zero, &re, b);
    assert_memory_not_equal(a, b, 32);
    aos_store_audit_row_t r8 = ROW(8, "ab", "c", NULL, "{}", "t");
    aos_store_audit_hash(zero, &r8, b);
    assert_memory_not_equal(a, b, 32);
    aos_store_audit_hash(one, &rn, b);
    assert_memory_not_equal(a, b, 32);
    /* a NUL inside a field counts as a byte, not as an end */
    aos_store_audit_row_t z1 = {1, "a\0b", 3, "c", 1, NULL, 0, NULL, 0, "t", 1};
    aos_store_audit_row_t z2 = {1, "a", 1, "\0bc", 3, NULL, 0, NULL, 0, "t", 1};
    aos_store_audit_hash(zero, &z1, a);
    aos_store_audit_hash(zero, &z2, b);
    assert_memory_not_equal(a, b, 32);
}

static void append_n(aos_store_t *st, int n, const char *actor)
{
    aos_err_t err = {0};
    for (int i = 0; i < n; i++) {
        char res[32];
        snprintf(res, sizeof(res), "thing/%d", i);
        json_t *diff = json_pack("{s:i, s:s}", "i", i, "note", "\xe4\xbd\xa0\xe5\xa5\xbd");
        if (aos_store_audit_append(st, actor, i % 3 ? "thing.put" : "thing.delete", res, diff,
                                   &err))
            fail_msg("append: %s", aos_err_msg(&err));
        json_decref(diff);
    }
}

/* Verifies in steps of chunk rows; returns the result. */
static aos_store_audit_verify_t verify(aos_store_t *st, int64_t from, int64_t to, int chunk)
{
    aos_store_audit_verify_t v;
    aos_err_t err = {0};
    aos_store_audit_verify_init(&v, from, to);
    int steps = 0;
    while (!v.done) {
        if (aos_store_audit_verify_step(st, &v, chunk, &err))
            fail_msg("verify: %s", aos_err_msg(&err));
        assert_true(++steps < 100000);
    }
    return v;
}

static void test_chain_appends_and_verifies(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    aos_store_audit_verify_t v = verify(st, 0, 0, 10);
    assert_int_equal(v.broken_id, 0); /* an empty log is intact */
    assert_int_equal(v.checked, 0);
    append_n(st, 25, "alice");
    for (int chunk = 1; chunk <= 30; chunk += 7) {
        v = verify(st, 0, 0, chunk);
        assert_int_equal(v.broken_id, 0);
        assert_int_equal(v.checked, 25);
        assert_int_equal(v.head_id, 25);
    }
    /* the stored chain: ids 1..25, each prev_hash the hash before it */
    assert_int_equal(aos_test_sql_int(f->path, "SELECT COUNT(*) FROM audit_logs a JOIN audit_logs "
                                               "b ON b.id = a.id + 1 WHERE b.prev_hash = a.hash"),
                     24);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT COUNT(*) FROM audit_logs WHERE id = 1 AND "
                                               "prev_hash = printf('%064d', 0)"),
                     1);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT COUNT(*) FROM audit_head h JOIN audit_logs "
                                               "a ON a.id = h.last_id AND a.hash = h.last_hash"),
                     1);
    /* a range */
    v = verify(st, 10, 20, 4);
    assert_int_equal(v.broken_id, 0);
    assert_int_equal(v.checked, 11);
    aos_store_close(st);
}

/* An append inside a transaction that fails leaves no row and no gap. */
static int put_then_fail(aos_store_t *st, void *arg, aos_err_t *err)
{
    (void)arg;
    int rc = aos_store_audit_append(st, "bob", "doomed", NULL, NULL, err);
    if (rc)
        return rc;
    return aos_err_set(err, AOS_EINVAL, "the change failed");
}

static void test_rolled_back_append_leaves_no_trace(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    aos_err_t err = {0};
    append_n(st, 2, "alice");
    assert_int_equal(aos_store_tx(st, put_then_fail, NULL, &err), AOS_EINVAL);
    append_n(st, 2, "alice");
    aos_store_audit_verify_t v = verify(st, 0, 0, 100);
    assert_int_equal(v.broken_id, 0);
    assert_int_equal(v.checked, 4);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT MAX(id) FROM audit_logs"), 4);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT COUNT(*) FROM audit_logs WHERE action = "
                                               "'doomed'"),
                     0);
    aos_store_close(st);
}

static void test_edited_row_is_named(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    append_n(st, 12, "alice");
    aos_store_close(st);
    raw_exec(f, "UPDATE audit_logs SET actor = 'mallory' WHERE id = 7");
    st = open_store(f);
    aos_store_audit_verify_t v = verify(st, 0, 0, 5);
    assert_int_equal(v.broken_id, 7);
    assert_int_equal(v.checked, 6);
    assert_non_null(strstr(v.reason, "row 7: its fields do not give its hash"));
    /* a diff edited: the same */
    raw_exec(f, "UPDATE audit_logs SET actor = 'alice' WHERE id = 7");
    v = verify(st, 0, 0, 5);
    assert_int_equal(v.broken_id, 0);
    raw_exec(f, "UPDATE audit_logs SET diff = '{\"i\":3}' WHERE id = 3");
    v = verify(st, 0, 0, 5);
    assert_int_equal(v.broken_id, 3);
    aos_store_close(st);
}

/* The same, while the store is open (WAL: the shell writes beside it). */
static void test_edit_while_open_is_found(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    append_n(st, 5, "alice");
    raw_exec(f, "UPDATE audit_logs SET created_at = '2020-01-01T00:00:00.000Z' WHERE id = 2");
    aos_store_audit_verify_t v = verify(st, 0, 0, 100);
    assert_int_equal(v.broken_id, 2);
    aos_store_close(st);
}

static void test_deleted_row_is_named(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    append_n(st, 10, "alice");
    raw_exec(f, "DELETE FROM audit_logs WHERE id = 5");
    aos_store_audit_verify_t v = verify(st, 0, 0, 3);
    assert_int_equal(v.broken_id, 6);
    assert_int_equal(v.checked, 4);
    assert_string_equal(v.reason, "row 6: prev_hash is not the hash of row 4, the row before it: "
                                  "rows 5 to 5 are missing");
    /* the first row */
    raw_exec(f, "DELETE FROM audit_logs WHERE id = 1");
    v = verify(st, 0, 0, 3);
    assert_int_equal(v.broken_id, 2);
    assert_non_null(strstr(v.reason, "rows before it are missing"));
    aos_store_close(st);
}

static void test_deleted_tail_is_found(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    append_n(st, 6, "alice");
    raw_exec(f, "DELETE FROM audit_logs WHERE id >= 5");
    aos_store_audit_verify_t v = verify(st, 0, 0, 4);
    assert_int_equal(v.broken_id, 5);
    assert_string_equal(v.reason, "rows 5 to 6 are missing: the head of the chain is row 6");
    aos_store_close(st);
}

#define ZERO64 "0000000000000000000000000000000000000000000000000000000000000000"

/* Retention deletes the oldest rows and keeps an anchor: the rest still
 * verifies, a deletion is a row of the chain, and tampering after the
 * anchor (or with the anchor) is still found. */
static void test_prune_keeps_an_anchor(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    append_n(st, 10, "alice");
    raw_exec(f, "UPDATE audit_logs SET created_at = '2020-01-0' || id || 'T00:00:00.000Z' "
                "WHERE id <= 6");
    /* the edit broke rows 1..6's hashes: seal them again as if written then */
    aos_store_close(st);
    raw_exec(f, "UPDATE audit_logs SET prev_hash = NULL, hash = NULL");
    raw_exec(f, "UPDATE audit_head SET last_hash = NULL");
    st = open_store(f); /* seals every row from the zero hash */
    assert_int_equal(verify(st, 0, 0, 100).broken_id, 0);
    aos_err_t err = {0};
    int64_t deleted = 0, anchor = 0;
    /* nothing older than 2019 */
    assert_int_equal(
        aos_store_audit_prune(st, "2019-01-01T00:00:00.000Z", 100, &deleted, &anchor, &err), 0);
    assert_int_equal(deleted, 0);
    /* at most 4 rows a step, stopping at the first row not older */
    assert_int_equal(
        aos_store_audit_prune(st, "2020-02-01T00:00:00.000Z", 4, &deleted, &anchor, &err), 0);
    assert_int_equal(deleted, 4);
    assert_int_equal(anchor, 4);
    assert_int_equal(
        aos_store_audit_prune(st, "2020-02-01T00:00:00.000Z", 100, &deleted, &anchor, &err), 0);
    assert_int_equal(deleted, 2);
    assert_int_equal(anchor, 6);
    /* rows 7..10 stay, plus the two prune rows; the chain verifies from the anchor */
    aos_store_audit_verify_t v = verify(st, 0, 0, 3);
    assert_int_equal(v.broken_id, 0);
    assert_int_equal(v.checked, 6);
    json_t *rows = NULL;
    aos_store_audit_filter_t flt = {.action = "audit.prune", .limit = 10};
    assert_int_equal(aos_store_audit_query(st, &flt, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 2);
    json_decref(rows);
    /* tampering after the anchor is found; so is a changed anchor */
    aos_store_close(st);
    raw_exec(f, "UPDATE audit_logs SET actor = 'mallory' WHERE id = 8");
    st = open_store(f);
    assert_int_equal(verify(st, 0, 0, 100).broken_id, 8);
    raw_exec(f, "UPDATE audit_logs SET actor = 'alice' WHERE id = 8");
    assert_int_equal(verify(st, 0, 0, 100).broken_id, 0);
    raw_exec(f, "UPDATE audit_head SET anchor_hash = '" ZERO64 "'");
    aos_store_audit_verify_t w = verify(st, 0, 0, 100);
    assert_int_equal(w.broken_id, 7);
    assert_non_null(strstr(w.reason, "row 7: prev_hash is not the hash of row 6"));
    /* rows deleted past the anchor are missing rows */
    raw_exec(f,
             "UPDATE audit_head SET anchor_hash = (SELECT prev_hash FROM audit_logs WHERE id = 7)");
    assert_int_equal(verify(st, 0, 0, 100).broken_id, 0);
    raw_exec(f, "DELETE FROM audit_logs WHERE id = 7");
    w = verify(st, 0, 0, 100);
    assert_int_equal(w.broken_id, 8);
    assert_non_null(strstr(w.reason, "rows 7 to 7 are missing"));
    /* the head row itself is never pruned */
    assert_int_equal(
        aos_store_audit_prune(st, "2099-01-01T00:00:00.000Z", 100, &deleted, &anchor, &err), 0);
    json_t *left = NULL;
    assert_int_equal(aos_store_audit_list(st, 0, 10, &left, &err), 0);
    assert_true(json_array_size(left) >= 1);
    /* the newest row (the prune's own) is the head and stays */
    assert_string_equal(json_string_value(json_object_get(json_array_get(left, 0), "action")),
                        "audit.prune");
    json_decref(left);
    assert_int_equal(verify(st, 0, 0, 100).broken_id, 0);
    aos_store_close(st);
}

static void test_changed_hash_is_named(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    append_n(st, 8, "alice");
    /* a well-formed hash of something else */
    raw_exec(f, "UPDATE audit_logs SET hash = (SELECT hash FROM audit_logs WHERE id = 2) "
                "WHERE id = 4");
    aos_store_audit_verify_t v = verify(st, 0, 0, 100);
    assert_int_equal(v.broken_id, 4);
    assert_non_null(strstr(v.reason, "row 4: its fields do not give its hash"));
    /* the next row's link edited to follow the forged hash: row 4 still */
    raw_exec(f, "UPDATE audit_logs SET prev_hash = (SELECT hash FROM audit_logs WHERE id = 4) "
                "WHERE id = 5");
    v = verify(st, 0, 0, 100);
    assert_int_equal(v.broken_id, 4);
    /* garbage */
    raw_exec(f, "UPDATE audit_logs SET hash = 'xyz' WHERE id = 3");
    v = verify(st, 0, 0, 100);
    assert_int_equal(v.broken_id, 3);
    assert_non_null(strstr(v.reason, "not 64 hex digits"));
    aos_store_close(st);
}

/* A database written before 0015: its rows are sealed at open, new rows
 * follow them, and the whole chain verifies. */
static void test_upgrade_seals_old_rows(void **state)
{
    fixture_t *f = *state;
    size_t n = 0;
    while (aos_migrations[n].name && strncmp(aos_migrations[n].name, "0015", 4) < 0)
        n++;
    aos_embed_t *old = calloc(n + 1, sizeof(*old));
    assert_non_null(old);
    memcpy(old, aos_migrations, n * sizeof(*old));
    aos_store_t *st = NULL;
    aos_err_t err = {0};
    assert_int_equal(aos__store_open_with(&st, NULL, f->url, old, &err), 0);
    append_n(st, 7, "old");
    aos_store_close(st);
    free(old);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT COUNT(*) FROM audit_logs"), 7);

    st = open_store(f);
    assert_int_equal(
        aos_test_sql_int(f->path, "SELECT COUNT(*) FROM audit_logs WHERE hash IS NULL"), 0);
    append_n(st, 3, "new");
    aos_store_audit_verify_t v = verify(st, 0, 0, 4);
    assert_int_equal(v.broken_id, 0);
    assert_int_equal(v.checked, 10);
    assert_int_equal(v.head_id, 10);
    aos_store_close(st);
    /* opening again seals nothing more and changes nothing */
    raw_exec(f, "CREATE TABLE snap AS SELECT id, hash FROM audit_logs");
    st = open_store(f);
    aos_store_close(st);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT COUNT(*) FROM snap s JOIN audit_logs a "
                                               "ON a.id = s.id AND a.hash = s.hash"),
                     10);
}

static void test_query_filters(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f);
    aos_err_t err = {0};
    append_n(st, 9, "alice"); /* ids 1..9; delete at 1, 4, 7 */
    append_n(st, 2, "bob");   /* ids 10, 11 */
    json_t *rows = NULL;
    aos_store_audit_filter_t fl = {.limit = 100, .actor = "alice", .action = "thing.delete"};
    assert_int_equal(aos_store_audit_query(st, &fl, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), 7);
    assert_int_equal(json_string_length(json_object_get(json_array_get(rows, 0), "hash")), 64);
    json_decref(rows);

    aos_store_audit_filter_t pre = {.limit = 100, .resource_prefix = "thing/1"};
    assert_int_equal(aos_store_audit_query(st, &pre, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 2); /* thing/1 of alice and of bob */
    json_decref(rows);

    aos_store_audit_filter_t ap = {.limit = 2, .action_prefix = "thing.", .before_id = 6};
    assert_int_equal(aos_store_audit_query(st, &ap, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "id")), 4);
    json_decref(rows);

    /* the time range: [from, to) */
    raw_exec(f, "UPDATE audit_logs SET created_at = '2020-01-01T00:00:00.000Z' WHERE id <= 3");
    aos_store_audit_filter_t tr = {
        .limit = 100, .from = "2020-01-01T00:00:00.000Z", .to = "2020-01-01T00:00:00.001Z"};
    assert_int_equal(aos_store_audit_query(st, &tr, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 3);
    json_decref(rows);
    tr.to = "2020-01-01T00:00:00.000Z";
    assert_int_equal(aos_store_audit_query(st, &tr, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 0);
    json_decref(rows);
    aos_store_close(st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_vectors),
        cmocka_unit_test(test_hash_is_unambiguous),
        cmocka_unit_test_setup_teardown(test_chain_appends_and_verifies, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rolled_back_append_leaves_no_trace, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edited_row_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_edit_while_open_is_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_row_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_deleted_tail_is_found, setup, teardown),
        cmocka_unit_test_setup_teardown(test_changed_hash_is_named, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prune_keeps_an_anchor, setup, teardown),
        cmocka_unit_test_setup_teardown(test_upgrade_seals_old_rows, setup, teardown),
        cmocka_unit_test_setup_teardown(test_query_filters, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
