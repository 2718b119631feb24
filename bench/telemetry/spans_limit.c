/* spans_limit.c - the ceiling for OTLP span ingest: the rows that
 * bench/telemetry/otlp_load.mjs sends (same names, ids, times and
 * attributes) inserted straight into SQLite with the spans table of
 * migration 0008, aosd's pragmas (WAL, synchronous=NORMAL) and the store's
 * INSERT (src/store/spans.c), prepared once, one transaction per batch.
 * No HTTP, no protobuf, no JSON: aosd's /v1/traces cannot be faster.
 *
 *   spans_limit --schema src/store/migrations/0008_spans.sql --db /tmp/x.db \
 *               --rows 300000 --batch 100
 *   -> spans_limit: batch 100: 300000 spans in 1.234 s = 243000 spans/s */
#include "../args.h"

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
    fprintf(stderr, "spans_limit: %s: %s\n", what, db ? sqlite3_errmsg(db) : "");
    exit(1);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s && fread(s, 1, (size_t)n, f) != (size_t)n) {
        free(s);
        s = NULL;
    }
    if (s)
        s[n] = '\0';
    fclose(f);
    return s;
}

int main(int argc, char **argv)
{
    const char *schema = NULL, *path = NULL;
    long rows = 300000, batch = 100;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--schema"))
            schema = argv[i + 1];
        else if (!strcmp(argv[i], "--db"))
            path = argv[i + 1];
        else if (!strcmp(argv[i], "--rows"))
            rows = bench_num("--rows", argv[i + 1]);
        else if (!strcmp(argv[i], "--batch"))
            batch = bench_num("--batch", argv[i + 1]);
    }
    if (!schema || !path || rows < 1 || batch < 1) {
        fprintf(stderr, "usage: spans_limit --schema 0008_spans.sql --db PATH [--rows N] "
                        "[--batch N]\n");
        return 2;
    }
    char *sql = slurp(schema);
    if (!sql)
        die(NULL, "cannot read the schema");
    sqlite3 *db;
    if (sqlite3_open(path, &db) != SQLITE_OK)
        die(db, "open");
    if (sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; "
                     "PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        sqlite3_exec(db, sql, NULL, NULL, NULL) != SQLITE_OK)
        die(db, "schema");
    free(sql);
    sqlite3_stmt *ins;
    if (sqlite3_prepare_v2(
            db,
            "INSERT INTO spans (trace_id, span_id, parent_span_id, trace_state, flags, name, kind, "
            "start_time_unix_nano, end_time_unix_nano, status_code, status_message, attributes, "
            "dropped_attributes_count, events, dropped_events_count, links, dropped_links_count, "
            "resource_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            -1, &ins, NULL) != SQLITE_OK)
        die(db, "prepare");
    long long t0 = (long long)time(NULL) * 1000000000LL;
    double start = now_s();
    for (long done = 0; done < rows;) {
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
            die(db, "begin");
        for (long b = 0; b < batch && done < rows; b++, done++) {
            char tid[33], sid[17], pid[17], name[32];
            /* the load's shape: 100 spans a trace, the first the parent */
            snprintf(tid, sizeof(tid), "%032lx", done / 100 + 1);
            snprintf(sid, sizeof(sid), "%016lx", done + 1);
            snprintf(pid, sizeof(pid), "%016lx", (done / 100) * 100 + 1);
            snprintf(name, sizeof(name), "chat model-%ld", done % 7);
            sqlite3_reset(ins);
            sqlite3_bind_text(ins, 1, tid, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(ins, 2, sid, -1, SQLITE_TRANSIENT);
            if (done % 100)
                sqlite3_bind_text(ins, 3, pid, -1, SQLITE_TRANSIENT);
            else
                sqlite3_bind_null(ins, 3);
            sqlite3_bind_null(ins, 4);
            sqlite3_bind_int(ins, 5, 1);
            sqlite3_bind_text(ins, 6, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_int(ins, 7, 3);
            sqlite3_bind_int64(ins, 8, t0 + done * 1000);
            sqlite3_bind_int64(ins, 9, t0 + done * 1000 + 500);
            sqlite3_bind_int(ins, 10, 0);
            sqlite3_bind_null(ins, 11);
            sqlite3_bind_text(ins, 12,
                              "{\"gen_ai.operation.name\":\"chat\",\"gen_ai.request.model\":"
                              "\"model-x\",\"gen_ai.usage.input_tokens\":120,"
                              "\"otel.scope.name\":\"bench\"}",
                              -1, SQLITE_STATIC);
            sqlite3_bind_int(ins, 13, 0);
            sqlite3_bind_null(ins, 14);
            sqlite3_bind_int(ins, 15, 0);
            sqlite3_bind_null(ins, 16);
            sqlite3_bind_int(ins, 17, 0);
            sqlite3_bind_int64(ins, 18, 1);
            if (sqlite3_step(ins) != SQLITE_DONE)
                die(db, "insert");
        }
        if (sqlite3_exec(db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
            die(db, "commit");
    }
    double secs = now_s() - start;
    printf("spans_limit: batch %ld: %ld spans in %.3f s = %.0f spans/s\n", batch, rows, secs,
           (double)rows / secs);
    sqlite3_finalize(ins);
    sqlite3_close(db);
    return 0;
}
