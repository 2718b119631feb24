/* logs_limit.c - the ceiling for the log service's ingest: the same rows
 * (bench_rows.h) inserted straight into SQLite, with the same schema
 * (migrations 0003_logs.sql to 0006_logs_index_tail.sql: table, trace and
 * topic groups, time batches, FTS5 trailing by fewer than 2,000 entries), the same pragmas as
 * aosd's store (WAL, synchronous=NORMAL) and the same statements, prepared once: the INSERT per
 * row, one logs_traces row per trace and one logs_topics row per topic of the batch, one
 * logs_batches row, the full-text index's INSERT ... SELECT once 2,000 entries wait, one
 * transaction per batch. No HTTP, no JSON, no validation, no redaction: aosd cannot be faster than
 * this. (aosd's checkpoints run on a thread of their own; here SQLite runs them in the committing
 * call, as it does by default.)
 *
 *   logs_limit --schema src/store/migrations/0003_logs.sql \
 *              --schema src/store/migrations/0004_logs_ingest.sql \
 *              --schema src/store/migrations/0005_logs_topics.sql \
 *              --schema src/store/migrations/0006_logs_index_tail.sql \
 *              --db /tmp/x.db --rows 300000 --batch 1000
 *   -> logs_limit: batch 1000: 300000 rows in 1.234 s = 243000 entries/s
 *
 * --fill writes into an existing aosd database (schema already there,
 * nothing timed that matters): how the 1,000,000-row query test is set up.
 * --offset K starts at entry K. */
#include "../args.h"
#include "bench_rows.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(sqlite3 *db, const char *what)
{
    fprintf(stderr, "logs_limit: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
    exit(1);
}

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "logs_limit: unable to open '%s'\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    if (!s || fread(s, 1, (size_t)n, f) != (size_t)n)
        exit(1);
    s[n] = '\0';
    fclose(f);
    return s;
}

/* One of aosd's statements, prepared once for the whole run. */
static sqlite3_stmt *prepare(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *stmt;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, NULL) != SQLITE_OK)
        die(db, "prepare");
    return stmt;
}

static void now_text(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
}

#define INDEX_TAIL 2000 /* as src/store/logs.c */

/* aosd's statements for the indexes (0006_logs_index_tail.sql): how far
 * they go; the tail's older entries, read back; a trace group, a topic
 * group; the entries above that into the full-text index; their new end. */
typedef struct {
    sqlite3_stmt *upto, *older, *trace, *topic, *fts, *moved;
} index_t;

/* An entry of the tail: its id and the keys of the group indexes. */
typedef struct {
    sqlite3_int64 id;
    const char *key[2]; /* trace_id, topic */
} keyed_t;

static int sorting; /* which key by_key compares (the bench is single-threaded) */

static int by_key(const void *a, const void *b)
{
    const keyed_t *x = a, *y = b;
    int c = strcmp(x->key[sorting], y->key[sorting]);
    return c ? c : (x->id < y->id ? -1 : x->id > y->id);
}

/* One group row per trace (k 0) or topic (k 1) among all[0..n), as
 * src/store/logs.c writes them (entries without the key left out). */
static void insert_groups(sqlite3 *db, sqlite3_stmt *grp, const keyed_t *all, size_t total, int k)
{
    static char ids[1 << 20];
    static keyed_t v[1 << 17];
    size_t n = 0;
    for (size_t i = 0; i < total; i++)
        if (all[i].key[k])
            v[n++] = all[i];
    sorting = k;
    qsort(v, n, sizeof(*v), by_key);
    for (size_t i = 0, j; i < n; i = j) {
        size_t len = 0;
        ids[len++] = '[';
        for (j = i; j < n && !strcmp(v[j].key[k], v[i].key[k]); j++)
            len += (size_t)snprintf(ids + len, sizeof(ids) - len, j > i ? ",%lld" : "%lld",
                                    (long long)v[j].id);
        ids[len++] = ']';
        sqlite3_bind_text(grp, 1, v[i].key[k], -1, SQLITE_STATIC);
        sqlite3_bind_int64(grp, 2, v[i].id);
        sqlite3_bind_int64(grp, 3, v[j - 1].id);
        sqlite3_bind_text(grp, 4, ids, (int)len, SQLITE_STATIC);
        if (sqlite3_step(grp) != SQLITE_DONE)
            die(db, k ? "topic index" : "trace index");
        sqlite3_reset(grp);
    }
}

/* The tail into the indexes: its older entries read back, with rows[0..n)
 * (ids first..first+n-1) grouped by trace and by topic, then the full-text
 * index and the new end. */
static void index_tail(sqlite3 *db, const index_t *ix, sqlite3_int64 upto, const bench_row_t *rows,
                       size_t n, sqlite3_int64 first)
{
    static keyed_t v[1 << 17];
    static char keys[1 << 17][2][40];
    size_t m = 0;
    sqlite3_bind_int64(ix->older, 1, upto);
    sqlite3_bind_int64(ix->older, 2, first);
    while (sqlite3_step(ix->older) == SQLITE_ROW && m < (1 << 16)) {
        v[m].id = sqlite3_column_int64(ix->older, 0);
        for (int k = 0; k < 2; k++) {
            const char *key = (const char *)sqlite3_column_text(ix->older, 1 + k);
            snprintf(keys[m][k], sizeof(keys[m][k]), "%s", key ? key : "");
            v[m].key[k] = key ? keys[m][k] : NULL;
        }
        m++;
    }
    sqlite3_reset(ix->older);
    for (size_t i = 0; i < n && m < (1 << 17); i++, m++) {
        v[m].id = first + (sqlite3_int64)i;
        v[m].key[0] = rows[i].trace_id;
        v[m].key[1] = rows[i].topic;
    }
    insert_groups(db, ix->trace, v, m, 0);
    insert_groups(db, ix->topic, v, m, 1);
    if (sqlite3_step(ix->fts) != SQLITE_DONE || sqlite3_step(ix->moved) != SQLITE_DONE)
        die(db, "indexes");
    sqlite3_reset(ix->fts);
    sqlite3_reset(ix->moved);
}

/* Inserts n rows and indexes them as aosd's store does: the rows one by
 * one, the batch's time range, then, once INDEX_TAIL entries wait, the
 * full-text index, one group per trace and one per topic for all of
 * them. */
static void insert_batch(sqlite3 *db, sqlite3_stmt *ins, sqlite3_stmt *bat, const index_t *ix,
                         const bench_row_t *rows, size_t n)
{
    sqlite3_int64 first = 0, last = 0;
    char now[32];
    now_text(now);
    if (sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        die(db, "begin");
    for (size_t i = 0; i < n; i++) {
        const bench_row_t *r = &rows[i];
        sqlite3_bind_text(ins, 1, r->ts, -1, SQLITE_STATIC);
        sqlite3_bind_int(ins, 2, r->level);
        sqlite3_bind_text(ins, 3, r->message, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 4, r->topic, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 5, r->attributes, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 6, r->trace_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 7, r->span_id, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 8, r->source, -1, SQLITE_STATIC);
        sqlite3_bind_text(ins, 9, now, -1, SQLITE_STATIC);
        if (sqlite3_step(ins) != SQLITE_DONE)
            die(db, "insert");
        sqlite3_reset(ins);
        last = sqlite3_last_insert_rowid(db);
        if (i == 0)
            first = last;
    }
    const char *lo = rows[0].ts, *hi = rows[0].ts;
    for (size_t i = 1; i < n; i++) {
        if (strcmp(rows[i].ts, lo) < 0)
            lo = rows[i].ts;
        if (strcmp(rows[i].ts, hi) > 0)
            hi = rows[i].ts;
    }
    sqlite3_bind_int64(bat, 1, first);
    sqlite3_bind_int64(bat, 2, last);
    sqlite3_bind_text(bat, 3, lo, -1, SQLITE_STATIC);
    sqlite3_bind_text(bat, 4, hi, -1, SQLITE_STATIC);
    if (sqlite3_step(bat) != SQLITE_DONE)
        die(db, "time index");
    sqlite3_reset(bat);
    if (sqlite3_step(ix->upto) != SQLITE_ROW)
        die(db, "index state");
    sqlite3_int64 upto = sqlite3_column_int64(ix->upto, 0);
    sqlite3_reset(ix->upto);
    if (last - upto >= INDEX_TAIL)
        index_tail(db, ix, upto, rows, n, first);
    if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
        die(db, "commit");
}

int main(int argc, char **argv)
{
    const char *schema[8], *path = NULL;
    int nschema = 0;
    long rows = 100000, batch = 1000, offset = 0;
    int fill = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--schema") && i + 1 < argc && nschema < 8)
            schema[nschema++] = argv[++i];
        else if (!strcmp(argv[i], "--db") && i + 1 < argc)
            path = argv[++i];
        else if (!strcmp(argv[i], "--rows") && i + 1 < argc)
            rows = bench_num("--rows", argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = bench_num("--batch", argv[++i]);
        else if (!strcmp(argv[i], "--offset") && i + 1 < argc)
            offset = bench_num("--offset", argv[++i]);
        else if (!strcmp(argv[i], "--fill"))
            fill = 1;
        else {
            fprintf(stderr,
                    "usage: %s --db FILE (--schema FILE.sql... | --fill) [--rows N] "
                    "[--batch N] [--offset K]\n",
                    argv[0]);
            return 2;
        }
    }
    if (!path || (!nschema && !fill) || rows < 1 || batch < 1 || offset < 0 || batch > 60000) {
        fprintf(stderr, "logs_limit: --db and --schema (or --fill) are required\n");
        return 2;
    }
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK)
        die(db, "open");
    /* the pragmas of src/store/sqlite.c */
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "PRAGMA foreign_keys=ON;",
                     NULL, NULL, NULL) != SQLITE_OK)
        die(db, "pragmas");
    for (int k = 0; !fill && k < nschema; k++) {
        char *sql = read_file(schema[k]);
        if (sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
            die(db, "schema");
        free(sql);
    }
    sqlite3_stmt *ins = prepare(db, "INSERT INTO logs (ts, level, message, topic, attributes, "
                                    "trace_id, span_id, source, created_at) "
                                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    sqlite3_stmt *bat = prepare(db, "INSERT INTO logs_batches (first_id, last_id, min_ts, max_ts) "
                                    "VALUES (?, ?, ?, ?)");
    index_t ix = {
        prepare(db, "SELECT indexed_upto FROM logs_index_state"),
        prepare(db, "SELECT id, trace_id, topic FROM logs WHERE id > ? AND id < ?"),
        prepare(db, "INSERT INTO logs_traces (trace_id, first_id, last_id, ids) "
                    "VALUES (?, ?, ?, ?)"),
        prepare(db, "INSERT INTO logs_topics (topic, first_id, last_id, ids) VALUES (?, ?, ?, ?)"),
        prepare(db, "INSERT INTO logs_fts (rowid, message) SELECT id, message FROM logs "
                    "WHERE id > (SELECT indexed_upto FROM logs_index_state)"),
        prepare(db, "UPDATE logs_index_state SET indexed_upto = "
                    "(SELECT COALESCE(MAX(id), indexed_upto) FROM logs)"),
    };

    /* rows are made before the clock starts (in --fill, a batch at a time) */
    size_t held = fill ? (size_t)batch : (size_t)rows;
    bench_row_t *all = malloc(held * sizeof(*all));
    if (!all)
        die(NULL, "out of memory");
    if (!fill)
        for (long i = 0; i < rows; i++)
            bench_row((uint64_t)(offset + i), &all[i]);
    double t0 = now_s();
    for (long done = 0; done < rows; done += batch) {
        size_t n = (size_t)(rows - done < batch ? rows - done : batch);
        if (fill) {
            for (size_t i = 0; i < n; i++)
                bench_row((uint64_t)(offset + done) + i, &all[i]);
            insert_batch(db, ins, bat, &ix, all, n);
        } else {
            insert_batch(db, ins, bat, &ix, all + done, n);
        }
    }
    double dt = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_finalize(bat);
    sqlite3_stmt *stmts[] = {ix.upto, ix.older, ix.trace, ix.topic, ix.fts, ix.moved};
    for (size_t k = 0; k < sizeof(stmts) / sizeof(stmts[0]); k++)
        sqlite3_finalize(stmts[k]);
    sqlite3_close(db);
    free(all);
    printf("logs_limit: batch %ld: %ld rows in %.3f s = %.0f entries/s\n", batch, rows, dt,
           (double)rows / dt);
    return 0;
}
