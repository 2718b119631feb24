/* rawsql.h - the first column of the first row of a query, read from a
 * database file with a read-only connection of its own: how a unit test
 * looks at what the store wrote without going through the store; and
 * statements run the same way, to write what an older aosd would have.
 * Header-only; include after <cmocka.h>. */
#ifndef AOS_TEST_RAWSQL_H
#define AOS_TEST_RAWSQL_H

#include <sqlite3.h>
#include <stdint.h>

/* The value as an integer; -1 when the query gives no row. */
static inline int64_t aos_test_sql_int(const char *path, const char *sql)
{
    sqlite3 *db;
    sqlite3_stmt *stmt;
    int64_t v = -1;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &stmt, NULL), SQLITE_OK);
    if (sqlite3_step(stmt) == SQLITE_ROW)
        v = sqlite3_column_int64(stmt, 0);
    sqlite3_finalize(stmt);
    sqlite3_close(db);
    return v;
}

/* Runs sql (one or more statements) on the file; fails the test on error. */
static inline void aos_test_sql_exec(const char *path, const char *sql)
{
    sqlite3 *db;
    char *msg = NULL;
    assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL), SQLITE_OK);
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        fail_msg("sqlite3_exec: %s", msg ? msg : sqlite3_errstr(rc));
    sqlite3_close(db);
}

#endif
