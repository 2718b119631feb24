/* orch_limit.c - the ceiling of bench/orchestrator: the writes aosd's
 * orchestrator makes for a task of STEPS aos__echo steps, made straight
 * through the store, with nothing else - no HTTP, no event loop, no
 * gateway call, no Critic, no event delivery. aosd cannot run tasks faster
 * than this on the same store.
 *
 * The same database and pragmas (aos_store_open: the migrations, WAL,
 * synchronous=NORMAL, the checkpointer thread), the same store functions
 * with the same rows as src/orch writes (the job and trace, the plan's
 * step row, the state row, one row per attempt, the events through
 * aos_bus_append_tx with its folding, the receipt's listing of the
 * workspace - not made: aos__echo is aosd's own read-only tool), in the
 * shape src/orch/commit.c gives them: the acceptance, committed before
 * the task runs (the 201 waits for it); the rest
 * of the task - its start, 2 + STEPS transitions in all, each step's end
 * with the next one's start, the last with the finish - needs no commit
 * of its own (aos__echo's steps do not wait for theirs, docs/ORCHESTRATOR.md
 * Durability), so it is one commit, and its transitions, which no caller
 * waits on, are written as one, each row once
 * (commit.c, coalesce): one insert per attempt (started and ended there),
 * one step.finished event per step (no step.started), the last progress
 * of the card, the last state row and job update. Trace ids are
 * time-ordered, as aosd's (orch.c). As aosd's group commit does, a commit
 * takes what is next of each of --conc tasks in flight: --conc 1 is two
 * commits per task, --conc 64 the next part of 64 tasks. As aosd's group
 * commit does when none of them fails, the commit's transitions run with
 * no savepoint each, and their events are given to the bus as columns
 * (aos_bus_append_in_tx, the step events a few to an INSERT with
 * aos_bus_append_in_n_tx: redacted in place, written out once).
 *
 *   orch_limit --db /tmp/x/aos.db --conc 64 --seconds 10 --warmup 2 [--steps 4]
 *   -> mode=limit conc=64 tasks=... tps=... commit_p50_us=... commit_p99_us=...
 *      stmts_per_task=... wal_bytes_per_task=... cpu_s=...
 *   orch_limit --init --db /tmp/x/aos.db    (the schema only: a baseline size)
 *
 * Commit time: the transaction (BEGIN to COMMIT) around the transitions,
 * exact (CLOCK_MONOTONIC) for every commit of the measured window.
 * Statements: executions of a prepared statement (sqlite3_step on a
 * statement not yet started, savepoints included), counted by defining
 * sqlite3_step here in front of libsqlite3's. WAL bytes: what pwrite64
 * wrote to a file whose name ends in -wal, counted the same way. Both over
 * the measured window, per task done. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "../args.h"
#include "../common.h"
#include "bus/bus.h"
#include "plan/plan.h"
#include "store/store.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- counting: statements and WAL bytes --------------------------------------- */

static atomic_long n_stmts, wal_bytes;

int sqlite3_step(sqlite3_stmt *stmt)
{
    static int (*real)(sqlite3_stmt *);
    if (!real)
        real = (int (*)(sqlite3_stmt *))dlsym(RTLD_NEXT, "sqlite3_step");
    if (!sqlite3_stmt_busy(stmt))
        atomic_fetch_add(&n_stmts, 1);
    return real(stmt);
}

/* per fd: 1 a -wal file, else 0 or 2 */
static _Atomic unsigned char fd_kind[4096];

static void count_write(int fd, ssize_t w)
{
    if (w > 0 && fd >= 0 && fd < 4096 && fd_kind[fd] == 1)
        atomic_fetch_add(&wal_bytes, (long)w);
}

/* SQLite opens its files with open64 and closes them with close: the fds
 * of -wal files are marked there */
int open64(const char *path, int flags, ...)
{
    static int (*real)(const char *, int, ...);
    if (!real)
        real = (int (*)(const char *, int, ...))dlsym(RTLD_NEXT, "open64");
    va_list ap;
    va_start(ap, flags);
    mode_t mode = (flags & (O_CREAT | O_TMPFILE)) ? va_arg(ap, mode_t) : 0;
    va_end(ap);
    int fd = real(path, flags, mode);
    size_t l = strlen(path);
    if (fd >= 0 && fd < 4096)
        fd_kind[fd] = l > 4 && !strcmp(path + l - 4, "-wal") ? 1 : 2;
    return fd;
}

int close(int fd)
{
    static int (*real)(int);
    if (!real)
        real = (int (*)(int))dlsym(RTLD_NEXT, "close");
    if (fd >= 0 && fd < 4096)
        fd_kind[fd] = 0;
    return real(fd);
}

/* SQLite writes its files with pwrite (or pwrite64, by its build) */
ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite");
    ssize_t w = real(fd, buf, n, off);
    count_write(fd, w);
    return w;
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off)
{
    static ssize_t (*real)(int, const void *, size_t, off_t);
    if (!real)
        real = (ssize_t(*)(int, const void *, size_t, off_t))dlsym(RTLD_NEXT, "pwrite64");
    ssize_t w = real(fd, buf, n, off);
    count_write(fd, w);
    return w;
}

enum { OP_JOB_INSERT, OP_STEP, OP_STATE, OP_EVENT, OP_RECEIPT, OP_JOB_UPDATE, OP_TRACE_UPDATE };

typedef struct {
    int kind;
    char *s[8];
    int64_t n[2];
    json_t *ev;
} op_t;

typedef struct {
    op_t *op;
    int nops, cap;
    int64_t job_id;
} tx_t;

/* What one commit writes of one task: its acceptance, or all the rest. */
typedef struct {
    tx_t tx;
    int transitions; /* that it stands for: 1, or steps + 1 */
} unit_t;

typedef struct {
    char trace[33];
    int stage; /* 0: accept next; 1: run next */
    int64_t seq;
    int done;
    double started_ms;
    char started_at[32];
} task_t;

static struct {
    int steps;
    const char *ws_root;
    json_t *spec, *plan;
    char *spec_s, *plan_s;
} C;

static void iso_now(char out[32])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char base[24];
    strftime(base, sizeof(base), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 32, "%.19s.%03dZ", base, (int)(ts.tv_nsec / 1000000) % 1000);
}

/* time-ordered, as aosd's (src/orch/orch.c): 12 hex digits of
 * milliseconds, 20 random */
static void new_trace(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 12; i++)
        out[i] = hex[(ms >> (4 * (11 - i))) & 15];
    for (int i = 12; i < 32; i++)
        out[i] = hex[rand() & 15];
    out[32] = '\0';
}

static char *sdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *dump(const json_t *v)
{
    return v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
}

static op_t *add(tx_t *tx, int kind)
{
    if (tx->nops == tx->cap) {
        tx->cap = tx->cap ? 2 * tx->cap : 16;
        tx->op = realloc(tx->op, (size_t)tx->cap * sizeof(*tx->op));
        if (!tx->op) {
            fprintf(stderr, "orch_limit: out of memory\n");
            exit(1);
        }
    }
    op_t *op = &tx->op[tx->nops++];
    memset(op, 0, sizeof(*op));
    op->kind = kind;
    return op;
}

static void step_row(tx_t *tx, task_t *t, const char *id, const char *kind, const char *status,
                     int64_t seq, const char *in, const char *out, const char *started,
                     const char *finished, const char *key)
{
    op_t *op = add(tx, OP_STEP);
    const char *s[] = {t->trace, id, kind, status, in, out, started, finished};
    for (int i = 0; i < 8; i++)
        op->s[i] = sdup(s[i]);
    op->n[0] = seq;
    op->ev = key ? json_string(key) : NULL;
}

static void state_row(tx_t *tx, task_t *t, const char *plan, int64_t cursor, int done,
                      const char *status)
{
    op_t *op = add(tx, OP_STATE);
    json_t *vars = json_pack("{s:{}, s:b, s:f, s:{s:i, s:i, s:i}}", "decided", "downgraded", 0,
                             "cost_cny", 0.0, "counts", "done", done, "failed", 0, "skipped", 0);
    op->s[0] = sdup(t->trace);
    op->s[1] = sdup(plan);
    op->s[2] = dump(vars);
    op->s[3] = sdup(status);
    op->n[0] = cursor;
    json_decref(vars);
}

static void event(tx_t *tx, task_t *t, const char *type, const char *card, json_t *payload)
{
    op_t *op = add(tx, OP_EVENT);
    op->ev = json_pack("{s:s, s:s, s:s, s:s, s:o}", "type", type, "trace_id", t->trace, "topic",
                       "task", "severity", "info", "payload", payload);
    if (card)
        json_object_set_new(op->ev, "card_id", json_string(card));
}

/* Step k of the run: its attempt row written once (its start and end in
 * the same commit) and its one step event. */
static void step_run(tx_t *tx, task_t *t, int k, const char *now)
{
    char id[16], key[64], in[32], out[96];
    snprintf(id, sizeof(id), "s%d", k);
    snprintf(key, sizeof(key), "%s:%s:1", t->trace, id);
    snprintf(in, sizeof(in), "{\"message\":\"%d\"}", k);
    snprintf(out, sizeof(out), "{\"content\":[{\"type\":\"text\",\"text\":\"Echo: %d\"}]}", k);
    step_row(tx, t, id, "tool", "done", t->seq++, in, out, now, now, key);
    event(tx, t, "step.finished", NULL,
          json_pack("{s:s, s:i, s:s, s:s}", "step", id, "attempt", 1, "tool", "aos__echo",
                    "idempotency_key", key));
}

/* The writes of t's next commit, as src/orch builds and coalesces them. */
static void build(tx_t *tx, task_t *t)
{
    char now[32], card[48];
    iso_now(now);
    tx->nops = 0;
    if (t->stage == 0) { /* orch_accept */
        op_t *op = add(tx, OP_JOB_INSERT);
        op->s[0] = sdup(t->trace);
        op->s[1] = sdup(C.spec_s);
        char out[64];
        snprintf(out, sizeof(out), "{\"planner\":\"given\",\"steps\":%d}", C.steps);
        step_row(tx, t, "plan", "plan", "done", t->seq++, "{\"planner\":\"given\"}", out, now, now,
                 NULL);
        state_row(tx, t, C.plan_s, 0, 0, "queued");
        snprintf(card, sizeof(card), "task:%s", t->trace);
        event(tx, t, "task.acceptance", card,
              json_pack("{s:s, s:i, s:s, s:s}", "planner", "given", "steps", C.steps, "actor",
                        "token:owner", "status", "queued"));
        return;
    }
    /* orch_task_run, then per step on_tool_done + advance + begin_tool, then
     * finish: 1 + STEPS transitions, coalesced */
    snprintf(t->started_at, sizeof(t->started_at), "%s", now);
    t->started_ms = bench_now_ms();
    for (int k = 1; k <= C.steps; k++)
        step_run(tx, t, k, now);
    char last[16];
    snprintf(last, sizeof(last), "s%d", C.steps);
    snprintf(card, sizeof(card), "progress:%s", t->trace);
    event(tx, t, "task.progress.milestone", card,
          json_pack("{s:i, s:i, s:s, s:s}", "done", C.steps, "total", C.steps, "step", last,
                    "label", "aos__echo"));
    state_row(tx, t, NULL, C.steps, C.steps, "done");
    op_t *op = add(tx, OP_JOB_UPDATE);
    op->s[0] = sdup(t->trace);
    op->s[1] = sdup("done");
    op->s[2] = sdup(now);
    op->s[3] = sdup(now);
    op = add(tx, OP_TRACE_UPDATE);
    op->s[0] = sdup(t->trace);
    op->s[1] = sdup(now);
    op->n[0] = (int64_t)(bench_now_ms() - t->started_ms);
    op = add(tx, OP_RECEIPT);
    char ws[4096];
    snprintf(ws, sizeof(ws), "%s/%s", C.ws_root, t->trace);
    op->s[0] = sdup(ws);
    snprintf(card, sizeof(card), "task:%s", t->trace);
    json_t *p = json_pack("{s:s, s:{s:i, s:i, s:i}, s:b, s:f, s:I, s:{s:o, s:o}}", "status", "done",
                          "summary", "done", C.steps, "failed", 0, "skipped", 0, "downgraded", 0,
                          "cost_cny", 0.0, "latency_ms", (json_int_t)op->n[0], "links", "episode",
                          json_sprintf("/api/episodes/%s", t->trace), "trace",
                          json_sprintf("/api/traces/%s", t->trace));
    op->ev =
        json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "type", "task.receipt", "trace_id", t->trace,
                  "topic", "task", "severity", "info", "payload", p, "card_id", card);
}

static void tx_clear(tx_t *tx)
{
    for (int i = 0; i < tx->nops; i++) {
        for (int k = 0; k < 8; k++)
            free(tx->op[i].s[k]);
        json_decref(tx->op[i].ev);
    }
    tx->nops = 0;
}

static json_t *list_dir(const char *dir)
{
    json_t *out = json_array();
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.')
            json_array_append_new(out, json_string(e->d_name));
    if (d)
        closedir(d);
    return out;
}

/* An event's columns from its envelope (the strings stay the envelope's). */
static json_t *columns(json_t *ev, aos_store_event_in_t *in)
{
    *in = (aos_store_event_in_t){0};
    in->type = json_string_value(json_object_get(ev, "type"));
    in->trace_id = json_string_value(json_object_get(ev, "trace_id"));
    in->topic = json_string_value(json_object_get(ev, "topic"));
    in->severity = json_string_value(json_object_get(ev, "severity"));
    in->card_id = json_string_value(json_object_get(ev, "card_id"));
    return json_object_get(ev, "payload");
}

static int run_op(aos_store_t *st, op_t *op, tx_t *tx, aos_err_t *err)
{
    switch (op->kind) {
    case OP_JOB_INSERT: {
        aos_store_job_t j = {op->s[0], op->s[1], "queued", 0, NULL, NULL};
        return aos_store_job_insert(st, &j, &tx->job_id, err);
    }
    case OP_STEP: {
        aos_store_step_t s = {op->s[0], op->s[1], 1,        op->n[0], op->s[2],
                              op->s[3], op->s[4], op->s[5], NULL,     json_string_value(op->ev),
                              0,        op->s[6], op->s[7]};
        return aos_store_task_step_put(st, &s, err);
    }
    case OP_STATE: {
        aos_store_task_state_t s = {op->s[0], op->s[1], op->n[0], op->s[2], op->s[3], NULL, NULL};
        return aos_store_task_state_put(st, &s, err);
    }
    case OP_EVENT:
    case OP_RECEIPT: {
        if (op->kind == OP_RECEIPT)
            json_object_set_new(json_object_get(op->ev, "payload"), "artifacts",
                                list_dir(op->s[0]));
        aos_store_event_in_t in;
        json_t *payload = columns(op->ev, &in);
        return aos_bus_append_in_tx(st, &in, payload, NULL, err);
    }
    case OP_JOB_UPDATE:
        return aos_store_job_update(st, op->s[0], op->s[1], op->s[2], op->s[3], NULL, err);
    case OP_TRACE_UPDATE:
        return aos_store_trace_update(st, op->s[0], "done", 0, op->n[0], op->s[1], err);
    }
    return 0;
}

/* As commit.c runs a transition: the step events (no card) wait, in order,
 * for the next event with a card or the end, and go in one multi-row
 * INSERT (aos_bus_append_in_n_tx); an event with a card goes alone
 * (aos_bus_append_in_tx); payloads redacted in place, written out once. */
static int run_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    tx_t *tx = arg;
    aos_store_event_in_t in[AOS_BUS_APPEND_N_MAX];
    json_t *payload[AOS_BUS_APPEND_N_MAX];
    size_t n = 0;
    int rc = 0;
    for (int i = 0; i < tx->nops && !rc; i++) {
        op_t *op = &tx->op[i];
        if (op->kind == OP_EVENT && !json_object_get(op->ev, "card_id") &&
            n < AOS_BUS_APPEND_N_MAX) {
            payload[n] = columns(op->ev, &in[n]);
            n++;
            continue;
        }
        if (n && (op->kind == OP_EVENT || op->kind == OP_RECEIPT)) {
            rc = aos_bus_append_in_n_tx(st, in, payload, n, err);
            n = 0;
            if (rc)
                break;
        }
        rc = run_op(st, op, tx, err);
    }
    if (!rc && n)
        rc = aos_bus_append_in_n_tx(st, in, payload, n, err);
    return rc;
}

typedef struct {
    unit_t *units;
    int n;
} group_t;

static int run_group(aos_store_t *st, void *arg, aos_err_t *err)
{
    group_t *g = arg;
    for (int i = 0; i < g->n; i++) {
        aos_err_t e = {0, ""};
        if (run_tx(st, &g->units[i].tx, &e)) {
            fprintf(stderr, "orch_limit: a transition failed: %s\n", aos_err_msg(&e));
            exit(1);
        }
    }
    return 0;
}

int main(int argc, char **argv)
{
    const char *db = NULL;
    long conc = 1, seconds = 10, warmup = 2, steps = 4;
    int init = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        const char *a = argv[i], *v = argv[i + 1];
        if (!strcmp(a, "--init")) {
            init = 1;
            i--;
            continue;
        }
        if (!strcmp(a, "--db"))
            db = v;
        else if (!strcmp(a, "--conc"))
            conc = bench_num(a, v);
        else if (!strcmp(a, "--seconds"))
            seconds = bench_num(a, v);
        else if (!strcmp(a, "--warmup"))
            warmup = bench_num(a, v);
        else if (!strcmp(a, "--steps"))
            steps = bench_num(a, v);
        else
            goto usage;
    }
    if (!db || (argc - init) % 2 == 0 || conc < 1 || conc > 4096 || seconds < 1 || warmup < 0 ||
        steps < 1 || steps > 1000)
        goto usage;
    C.steps = (int)steps;
    srand((unsigned)time(NULL));

    /* the spec orch_load sends, and the plan aosd stores for it */
    json_t *arr = json_array();
    for (int k = 1; k <= C.steps; k++) {
        char id[16], m[16];
        snprintf(id, sizeof(id), "s%d", k);
        snprintf(m, sizeof(m), "%d", k);
        json_array_append_new(arr, json_pack("{s:s, s:s, s:{s:s}}", "id", id, "tool", "aos__echo",
                                             "args", "message", m));
    }
    C.spec = json_pack("{s:{s:o}}", "plan", "steps", arr);
    aos_err_t err = {0, ""};
    C.plan = aos_plan_validate(json_object_get(C.spec, "plan"), NULL, &err);
    if (!C.plan) {
        fprintf(stderr, "orch_limit: %s\n", aos_err_msg(&err));
        return 1;
    }
    C.spec_s = dump(C.spec);
    C.plan_s = dump(C.plan);
    char root[4096];
    snprintf(root, sizeof(root), "%s", db);
    char *slash = strrchr(root, '/');
    snprintf(slash ? slash + 1 : root, sizeof(root) - (size_t)(slash ? slash + 1 - root : 0),
             "workspaces");
    C.ws_root = root;

    aos_store_t *st;
    if (aos_store_open(&st, NULL, db, &err)) {
        fprintf(stderr, "orch_limit: %s\n", aos_err_msg(&err));
        return 1;
    }
    if (init) { /* the schema only: the baseline of the database's size */
        aos_store_close(st);
        free(C.spec_s);
        free(C.plan_s);
        json_decref(C.spec);
        json_decref(C.plan);
        return 0;
    }
    task_t *tasks = calloc((size_t)conc, sizeof(*tasks));
    unit_t *units = calloc((size_t)conc, sizeof(*units));
    size_t cap = 1 << 16, ncommit = 0;
    double *commit = malloc(cap * sizeof(double));
    long done = 0, total = 0, transitions = 0, commits = 0, ran = 0;
    long stmts0 = 0, stmts1 = 0, wal0 = 0, wal1 = 0;
    double *lat = malloc(cap * sizeof(double));
    size_t nlat = 0, caplat = cap;
    for (int i = 0; i < conc; i++)
        new_trace(tasks[i].trace);
    double start = bench_now_ms(), t0 = 0, t1 = 0, cpu0 = 0, cpu1 = 0;
    int phase = 0;
    for (;;) {
        double now = bench_now_ms();
        if (phase == 0 && now - start >= (double)warmup * 1e3) {
            phase = 1;
            t0 = now;
            cpu0 = bench_cpu_s();
            stmts0 = atomic_load(&n_stmts);
            wal0 = atomic_load(&wal_bytes);
        }
        if (phase == 1 && now - t0 >= (double)seconds * 1e3) {
            t1 = now;
            cpu1 = bench_cpu_s();
            stmts1 = atomic_load(&n_stmts);
            wal1 = atomic_load(&wal_bytes);
            break;
        }
        long ntx = 0;
        for (int i = 0; i < conc; i++) {
            task_t *t = &tasks[i];
            unit_t *u = &units[i];
            build(&u->tx, t);
            u->transitions = t->stage == 0 ? 1 : C.steps + 1;
            ntx += u->transitions;
        }
        group_t g = {units, (int)conc};
        double c0 = bench_now_ms();
        if (aos_store_tx(st, run_group, &g, &err)) {
            fprintf(stderr, "orch_limit: a commit failed: %s\n", aos_err_msg(&err));
            return 1;
        }
        double c1 = bench_now_ms();
        if (phase == 1) {
            if (ncommit == cap) {
                cap *= 2;
                commit = realloc(commit, cap * sizeof(double));
            }
            commit[ncommit++] = c1 - c0;
            commits++;
            transitions += ntx;
        }
        for (int i = 0; i < conc; i++) {
            task_t *t = &tasks[i];
            tx_clear(&units[i].tx);
            if (t->stage == 0) {
                t->done = phase; /* accepted inside the window */
                t->stage = 1;
            } else {
                total++;
                ran += phase;
                if (phase == 1 && t->done) {
                    done++;
                    if (nlat == caplat) {
                        caplat *= 2;
                        lat = realloc(lat, caplat * sizeof(double));
                    }
                    lat[nlat++] = bench_now_ms() - t->started_ms;
                }
                memset(t, 0, sizeof(*t));
                new_trace(t->trace);
            }
        }
    }
    aos_store_close(st);
    qsort(commit, ncommit, sizeof(double), bench_cmp_double);
    qsort(lat, nlat, sizeof(double), bench_cmp_double);
    double secs = (t1 - t0) / 1e3, sum = 0;
    for (size_t i = 0; i < ncommit; i++)
        sum += commit[i];
    printf("mode=limit conc=%ld steps=%d tasks=%ld secs=%.3f tps=%.1f p50_ms=%.3f p99_ms=%.3f "
           "total_tasks=%ld commits=%ld transitions=%ld commit_p50_us=%.1f commit_p99_us=%.1f "
           "per_transition_us=%.1f cpu_s=%.2f stmts_per_task=%.1f wal_bytes_per_task=%.0f "
           "tasks_per_cpu_s=%.0f\n",
           conc, C.steps, done, secs, (double)done / secs, bench_pct(lat, nlat, 0.5),
           bench_pct(lat, nlat, 0.99), total, commits, transitions,
           bench_pct(commit, ncommit, 0.5) * 1e3, bench_pct(commit, ncommit, 0.99) * 1e3,
           transitions ? sum * 1e3 / (double)transitions : 0, cpu1 - cpu0,
           ran ? (double)(stmts1 - stmts0) / (double)ran : 0,
           ran ? (double)(wal1 - wal0) / (double)ran : 0,
           cpu1 > cpu0 ? (double)ran / (cpu1 - cpu0) : 0);
    for (int i = 0; i < conc; i++)
        free(units[i].tx.op);
    free(units);
    free(tasks);
    free(commit);
    free(lat);
    free(C.spec_s);
    free(C.plan_s);
    json_decref(C.spec);
    json_decref(C.plan);
    return 0;
usage:
    fprintf(stderr,
            "usage: %s --db PATH --conc C --seconds S --warmup W [--steps 4]\n"
            "       %s --init --db PATH\n"
            "  PATH's directory also gets workspaces/<trace>/, as aosd's data dir\n",
            argv[0], argv[0]);
    return 2;
}
