/* orch_limit.c - the ceiling of bench/orchestrator: the writes aosd's
 * orchestrator makes for a task of STEPS aos__echo steps, made straight
 * through the store, with nothing else - no HTTP, no event loop, no
 * gateway call, no Critic, no event delivery. aosd cannot run tasks faster
 * than this on the same store.
 *
 * The same database and pragmas (aos_store_open: the migrations, WAL,
 * synchronous=NORMAL, the checkpointer thread), the same store functions
 * with the same rows as src/orch/task.c writes (the job and trace, the
 * plan's step row, the state row, one row per attempt, the events through
 * aos_bus_append_tx with its folding, the receipt's listing of the
 * workspace - not made: aos__echo is aosd's own read-only tool), in the
 * same transitions: per task 2 + STEPS (acceptance; start with the first
 * step's start; each step's end with the next one's start; the last end
 * with the finish), each in a savepoint of its own. The commits are the
 * fewest aosd's rule allows (docs/ORCHESTRATOR.md, Durability): the
 * acceptance commits before the task runs (the 201 waits for it); the
 * transitions of aos__echo steps need no commit of their own, so all the
 * rest of the task is one commit. As aosd's group commit does, a commit
 * takes what is next of each of --conc tasks in flight: --conc 1 is two
 * commits per task, --conc 64 the next part of 64 tasks.
 *
 *   orch_limit --db /tmp/x/aos.db --conc 64 --seconds 10 --warmup 2 [--steps 4]
 *   -> mode=limit conc=64 tasks=... tps=... commit_p50_us=... commit_p99_us=...
 *   orch_limit --init --db /tmp/x/aos.db    (the schema only: a baseline size)
 *
 * Commit time: the transaction (BEGIN to COMMIT) around the transitions,
 * exact (CLOCK_MONOTONIC) for every commit of the measured window. */
#include "../args.h"
#include "../common.h"
#include "bus/bus.h"
#include "plan/plan.h"
#include "store/store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

enum { OP_JOB_INSERT, OP_STEP, OP_STATE, OP_EVENT, OP_RECEIPT, OP_JOB_UPDATE, OP_TRACE_UPDATE };

typedef struct {
    int kind;
    char *s[8];
    int64_t n[2];
    json_t *ev;
} op_t;

#define MAX_OPS 16
typedef struct {
    op_t op[MAX_OPS];
    int nops;
    int64_t job_id;
} tx_t;

/* What one commit writes of one task: its acceptance, or all the rest. */
typedef struct {
    tx_t *tx; /* steps + 1 */
    int n;
} unit_t;

typedef struct {
    char trace[33];
    int stage; /* the next transition: 0 .. steps + 1 */
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

static void new_trace(char out[33])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 32; i++)
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
    if (tx->nops == MAX_OPS) {
        fprintf(stderr, "orch_limit: too many operations\n");
        exit(1);
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

static void step_start(tx_t *tx, task_t *t, int k, const char *now)
{
    char id[16], key[64], in[32];
    snprintf(id, sizeof(id), "s%d", k);
    snprintf(key, sizeof(key), "%s:%s:1", t->trace, id);
    snprintf(in, sizeof(in), "{\"message\":\"%d\"}", k);
    step_row(tx, t, id, "tool", "running", t->seq++, in, NULL, now, NULL, key);
    state_row(tx, t, NULL, k - 1, k - 1, "running");
    event(tx, t, "step.started", NULL,
          json_pack("{s:s, s:s, s:i, s:s}", "step", id, "tool", "aos__echo", "attempt", 1,
                    "idempotency_key", key));
}

static void step_end(tx_t *tx, task_t *t, int k, const char *now)
{
    char id[16], key[64], out[96], card[48];
    snprintf(id, sizeof(id), "s%d", k);
    snprintf(key, sizeof(key), "%s:%s:1", t->trace, id);
    snprintf(out, sizeof(out), "{\"content\":[{\"type\":\"text\",\"text\":\"Echo: %d\"}]}", k);
    step_row(tx, t, id, "tool", "done", 0, NULL, out, now, now, key);
    event(tx, t, "step.finished", NULL, json_pack("{s:s, s:i}", "step", id, "attempt", 1));
    snprintf(card, sizeof(card), "progress:%s", t->trace);
    event(tx, t, "task.progress.milestone", card,
          json_pack("{s:i, s:i, s:s, s:s}", "done", k, "total", C.steps, "step", id, "label",
                    "aos__echo"));
}

/* The writes of transition t->stage of t, as src/orch builds them. */
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
    } else if (t->stage == 1) { /* orch_task_run, advance, begin_tool */
        snprintf(t->started_at, sizeof(t->started_at), "%s", now);
        t->started_ms = bench_now_ms();
        op_t *op = add(tx, OP_JOB_UPDATE);
        op->s[0] = sdup(t->trace);
        op->s[1] = sdup("running");
        op->s[2] = sdup(now);
        state_row(tx, t, NULL, 0, 0, "running");
        step_start(tx, t, 1, now);
    } else if (t->stage <= C.steps) { /* on_tool_done, advance, begin_tool */
        step_end(tx, t, t->stage - 1, now);
        step_start(tx, t, t->stage, now);
    } else { /* on_tool_done, advance, finish */
        step_end(tx, t, C.steps, now);
        state_row(tx, t, NULL, C.steps, C.steps, "done");
        op_t *op = add(tx, OP_JOB_UPDATE);
        op->s[0] = sdup(t->trace);
        op->s[1] = sdup("done");
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
        json_t *p = json_pack("{s:s, s:{s:i, s:i, s:i}, s:b, s:f, s:I, s:{s:o, s:o}}", "status",
                              "done", "summary", "done", C.steps, "failed", 0, "skipped", 0,
                              "downgraded", 0, "cost_cny", 0.0, "latency_ms", (json_int_t)op->n[0],
                              "links", "episode", json_sprintf("/api/episodes/%s", t->trace),
                              "trace", json_sprintf("/api/traces/%s", t->trace));
        op->ev =
            json_pack("{s:s, s:s, s:s, s:s, s:o, s:s}", "type", "task.receipt", "trace_id",
                      t->trace, "topic", "task", "severity", "info", "payload", p, "card_id", card);
    }
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
        return aos_bus_append_tx(st, op->ev, NULL, err);
    case OP_RECEIPT:
        json_object_set_new(json_object_get(op->ev, "payload"), "artifacts", list_dir(op->s[0]));
        return aos_bus_append_tx(st, op->ev, NULL, err);
    case OP_JOB_UPDATE:
        return aos_store_job_update(st, op->s[0], op->s[1], op->s[2], op->s[3], NULL, err);
    case OP_TRACE_UPDATE:
        return aos_store_trace_update(st, op->s[0], "done", 0, op->n[0], op->s[1], err);
    }
    return 0;
}

static int run_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    tx_t *tx = arg;
    for (int i = 0; i < tx->nops; i++) {
        int rc = run_op(st, &tx->op[i], tx, err);
        if (rc)
            return rc;
    }
    return 0;
}

typedef struct {
    unit_t *units;
    int n;
} group_t;

static int run_group(aos_store_t *st, void *arg, aos_err_t *err)
{
    group_t *g = arg;
    for (int i = 0; i < g->n; i++) {
        for (int k = 0; k < g->units[i].n; k++) {
            aos_err_t e = {0, ""};
            if (aos_store_tx(st, run_tx, &g->units[i].tx[k], &e)) {
                fprintf(stderr, "orch_limit: a transition failed: %s\n", aos_err_msg(&e));
                exit(1);
            }
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
    tx_t *txs = calloc((size_t)conc * (size_t)(C.steps + 1), sizeof(*txs));
    for (int i = 0; i < conc; i++)
        units[i].tx = txs + (size_t)i * (size_t)(C.steps + 1);
    size_t cap = 1 << 16, ncommit = 0;
    double *commit = malloc(cap * sizeof(double));
    long done = 0, total = 0, transitions = 0, commits = 0;
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
        }
        if (phase == 1 && now - t0 >= (double)seconds * 1e3) {
            t1 = now;
            cpu1 = bench_cpu_s();
            break;
        }
        long ntx = 0;
        for (int i = 0; i < conc; i++) {
            task_t *t = &tasks[i];
            unit_t *u = &units[i];
            if (t->stage == 0) {
                build(&u->tx[0], t);
                u->n = 1;
            } else {
                for (u->n = 0; t->stage <= C.steps + 1; t->stage++)
                    build(&u->tx[u->n++], t);
            }
            ntx += u->n;
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
            for (int k = 0; k < units[i].n; k++)
                tx_clear(&units[i].tx[k]);
            if (t->stage == 0) {
                t->done = phase; /* accepted inside the window */
                t->stage = 1;
            } else {
                total++;
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
           "per_transition_us=%.1f cpu_s=%.2f\n",
           conc, C.steps, done, secs, (double)done / secs, bench_pct(lat, nlat, 0.5),
           bench_pct(lat, nlat, 0.99), total, commits, transitions,
           bench_pct(commit, ncommit, 0.5) * 1e3, bench_pct(commit, ncommit, 0.99) * 1e3,
           transitions ? sum * 1e3 / (double)transitions : 0, cpu1 - cpu0);
    free(txs);
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
