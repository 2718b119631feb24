/* logs_limit.c - the ceiling for the log service's ingest: the same rows
 * (bench_rows.h) inserted straight into SQLite, with the same schema
 * (migrations 0003_logs.sql, 0004_logs_ingest.sql and 0005_logs_topics.sql:
 * table, trace and topic groups, time batches, FTS5), the same pragmas as aosd's store (WAL,
 * synchronous=NORMAL) and the same statements, prepared once: the INSERT
 * per row, one logs_traces row per trace and one logs_topics row per topic
 * of the batch, one logs_batches
 * row, the full-text index's INSERT ... SELECT per batch, one transaction
 * per batch. No HTTP,
 * no JSON, no validation, no redaction: aosd cannot be faster than this.
 * (aosd's checkpoints run on a thread of their own; here SQLite runs them
 * in the committing call, as it does by default.)
 *
 *   logs_limit --schema src/store/migrations/0003_logs.sql \
 *              --schema src/store/migrations/0004_logs_ingest.sql \
 *              --schema src/store/migrations/0005_logs_topics.sql \
 *              --db /tmp/x.db --rows 300000 --batch 1000
 *   -> logs_limit: batch 1000: 300000 rows in 1.234 s = 243000 entries/s
 *
 * --fill writes into an existing aosd database (schema already there,
 * nothing timed that matters): how the 1,000,000-row query test is set up.
 * --offset K starts at entry K. */
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

typedef struct {
    const bench_row_t *row;
    sqlite3_int64 id;
} idrow_t;

/* The key of a group index: trace_id or topic. */
static const char *key_of(const bench_row_t *r, int topic)
{
    return topic ? r->topic : r->trace_id;
}

static int by_trace_then_id(const void *a, const void *b)
{
    const idrow_t *x = a, *y = b;
    int c = strcmp(x->row->trace_id, y->row->trace_id);
    return c ? c : (x->id < y->id ? -1 : x->id > y->id);
}

static int by_topic_then_id(const void *a, const void *b)
{
    const idrow_t *x = a, *y = b;
    int c = strcmp(x->row->topic, y->row->topic);
    return c ? c : (x->id < y->id ? -1 : x->id > y->id);
}

/* One logs_traces (topic 0) or logs_topics (topic 1) row per trace or
 * topic of the batch, as src/store/logs.c writes them. */
static void insert_groups(sqlite3 *db, sqlite3_stmt *grp, idrow_t *v, size_t n, int topic)
{
    static char ids[1 << 16];
    qsort(v, n, sizeof(*v), topic ? by_topic_then_id : by_trace_then_id);
    for (size_t i = 0, j; i < n; i = j) {
        size_t len = 0;
        const char *key = key_of(v[i].row, topic);
        ids[len++] = '[';
        for (j = i; j < n && !strcmp(key_of(v[j].row, topic), key); j++)
            len += (size_t)snprintf(ids + len, sizeof(ids) - len, j > i ? ",%lld" : "%lld",
                                    (long long)v[j].id);
        ids[len++] = ']';
        sqlite3_bind_text(grp, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_int64(grp, 2, v[i].id);
        sqlite3_bind_int64(grp, 3, v[j - 1].id);
        sqlite3_bind_text(grp, 4, ids, (int)len, SQLITE_STATIC);
        if (sqlite3_step(grp) != SQLITE_DONE)
            die(db, topic ? "topic index" : "trace index");
        sqlite3_reset(grp);
    }
}

/* Inserts n rows and indexes them as aosd's store does: the rows one by
 * one, the trace groups, the batch's time range, then the full-text index
 * for the batch in one statement. */
static void insert_batch(sqlite3 *db, sqlite3_stmt *ins, sqlite3_stmt *grp, sqlite3_stmt *tgrp,
                         sqlite3_stmt *bat, sqlite3_stmt *fts, const bench_row_t *rows, size_t n)
{
    static idrow_t v[1 << 16];
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
        v[i].row = r;
        v[i].id = sqlite3_last_insert_rowid(db);
        if (i == 0)
            first = v[i].id;
        last = v[i].id;
    }
    insert_groups(db, grp, v, n, 0); /* sorts v */
    insert_groups(db, tgrp, v, n, 1);
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
    sqlite3_bind_int64(fts, 1, first);
    /* not sqlite3_last_insert_rowid: logs_batches (a rowid table) was
     * written last */
    sqlite3_bind_int64(fts, 2, last);
    if (sqlite3_step(fts) != SQLITE_DONE)
        die(db, "full-text index");
    sqlite3_reset(fts);
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
            rows = atol(argv[++i]);
        else if (!strcmp(argv[i], "--batch") && i + 1 < argc)
            batch = atol(argv[++i]);
        else if (!strcmp(argv[i], "--offset") && i + 1 < argc)
            offset = atol(argv[++i]);
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
    sqlite3_stmt *grp = prepare(db, "INSERT INTO logs_traces (trace_id, first_id, last_id, ids) "
                                    "VALUES (?, ?, ?, ?)");
    sqlite3_stmt *tgrp = prepare(db, "INSERT INTO logs_topics (topic, first_id, last_id, ids) "
                                     "VALUES (?, ?, ?, ?)");
    sqlite3_stmt *bat = prepare(db, "INSERT INTO logs_batches (first_id, last_id, min_ts, max_ts) "
                                    "VALUES (?, ?, ?, ?)");
    sqlite3_stmt *fts = prepare(db, "INSERT INTO logs_fts (rowid, message) SELECT id, message "
                                    "FROM logs WHERE id BETWEEN ? AND ?");

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
            insert_batch(db, ins, grp, tgrp, bat, fts, all, n);
        } else {
            insert_batch(db, ins, grp, tgrp, bat, fts, all + done, n);
        }
    }
    double dt = now_s() - t0;
    sqlite3_finalize(ins);
    sqlite3_finalize(grp);
    sqlite3_finalize(tgrp);
    sqlite3_finalize(bat);
    sqlite3_finalize(fts);
    sqlite3_close(db);
    free(all);
    printf("logs_limit: batch %ld: %ld rows in %.3f s = %.0f entries/s\n", batch, rows, dt,
           (double)rows / dt);
    return 0;
}
