/* commit.c - the transitions of tasks and their group commit.
 *
 * A transition (orch_tx_t) is the list of writes one change of one task
 * makes: its step rows, its state row, its job and trace rows, its events.
 * Transitions are queued on the loop; one store job at a time takes every
 * transition queued so far and runs them in one transaction, all together;
 * only if one of them fails (an approval decided twice) is that undone and
 * the batch run again, each transition in a savepoint of its own, so that
 * the one that fails undoes only itself. When the job is done each transition's done
 * callback runs on the loop, the bus is kicked for the events, and the next
 * batch goes. So a task waits for a commit only where something depends
 * on a transition being durable, and a thousand tasks ready at once share
 * a few commits instead of a thousand.
 * A transition nothing waits for (the start of a local read-only tool
 * step, task.c) does not start a commit while such a call is in flight:
 * the transitions that call causes come next, and one commit takes them
 * all; a transition something waits for (a reply, a tool with effects, an
 * approval, a retry, the end) starts the commit at once, with whatever is
 * queued. (A local call is aosd's own code: it answers in a later turn of
 * the loop or after a store read; one that took long would hold back only
 * the commits nothing waits for, such as its own start's.) Each commit's time on the worker (BEGIN
 * to COMMIT) and its number of transitions go to the metrics aos_orch_commit_seconds and
 * aos_orch_commit_transitions.
 * The operations run on the store's worker; they own copies of everything
 * they write. */
#include "orch/internal.h"
#include "buf/buf.h"
#include "isotime/isotime.h"
#include "log/log.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

orch_tx_t *orch_tx_new(aos_orch_t *o, orch_task_t *t)
{
    orch_tx_t *tx = calloc(1, sizeof(*tx));
    if (!tx)
        return NULL;
    tx->o = o;
    tx->task = t;
    tx->tail = &tx->ops;
    return tx;
}

static void op_free(orch_op_t *op)
{
    json_decref(op->json);
    free(op); /* its strings with it */
}

void orch_tx_free(orch_tx_t *tx)
{
    while (tx->ops) {
        orch_op_t *op = tx->ops;
        tx->ops = op->next;
        op_free(op);
    }
    free(tx);
}

orch_op_t *orch_tx_op(orch_tx_t *tx,
                      int (*run)(aos_store_t *, orch_op_t *, orch_tx_t *, aos_err_t *), int n,
                      const char *const *strs)
{
    /* one block: the operation, then its strings */
    size_t len[ORCH_OP_STRS], total = sizeof(orch_op_t);
    for (int i = 0; i < n; i++) {
        len[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
        total += len[i];
    }
    orch_op_t *op = malloc(total);
    if (!op) {
        tx->nomem = 1;
        return NULL;
    }
    memset(op, 0, sizeof(*op));
    op->run = run;
    char *p = (char *)(op + 1);
    for (int i = 0; i < n; i++) {
        if (strs[i]) {
            memcpy(p, strs[i], len[i]);
            op->s[i] = p;
            p += len[i];
        }
    }
    *tx->tail = op;
    tx->tail = &op->next;
    return op;
}

#define op_add orch_tx_op

/* The JSON text of v appended to the loop's scratch buffer, NUL-ended
 * (the operation copies it): its offset there, or -1 for a NULL v or a
 * failure (as the NULL of aos_buf_json_text). The buffer keeps its memory
 * from one transition to the next: no allocation per text. */
static ptrdiff_t scratch_json(orch_tx_t *tx, const json_t *v)
{
    if (!v)
        return -1;
    aos_buf_t *b = &tx->o->scratch;
    size_t at = b->len;
    if (aos_buf_json(b, v) || aos_buf_append(b, "", 1))
        return -1;
    return (ptrdiff_t)at;
}

static const char *scratch_at(orch_tx_t *tx, ptrdiff_t at)
{
    return at < 0 ? NULL : tx->o->scratch.ptr + at;
}

static void scratch_reset(orch_tx_t *tx)
{
    if (tx->o->scratch.cap > (1u << 20)) /* a huge plan once: not kept */
        aos_buf_release(&tx->o->scratch);
    aos_buf_reset(&tx->o->scratch);
}

/* ---- the operations ------------------------------------------------------- */

static int run_job_insert(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    aos_store_job_t j = {op->s[0], op->s[1], op->s[2], (int)op->n[0], op->s[3], op->s[4]};
    return aos_store_job_insert(st, &j, &tx->job_id, err);
}

void orch_tx_job_insert(orch_tx_t *tx, orch_task_t *t)
{
    scratch_reset(tx);
    const char *spec = scratch_at(tx, scratch_json(tx, t->spec));
    char sched[32] = "";
    const char *at = json_string_value(json_object_get(t->spec, "scheduled_at"));
    if (at && orch_iso_norm(at, sched) != 0)
        sched[0] = '\0';
    const char *s[] = {t->trace_id, spec, orch_status_name(t->status), sched[0] ? sched : NULL,
                       t->project_id};
    orch_op_t *op = spec ? op_add(tx, run_job_insert, 5, s) : NULL;
    if (!spec)
        tx->nomem = 1;
    if (op)
        op->n[0] = t->priority;
}

static int run_job_update(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    return aos_store_job_update(st, op->s[0], op->s[1], op->s[2], op->s[3], op->s[4], err);
}

void orch_tx_job_update(orch_tx_t *tx, const char *trace_id, const char *status,
                        const char *started_at, const char *finished_at, const json_t *error)
{
    scratch_reset(tx);
    const char *e = scratch_at(tx, scratch_json(tx, error));
    const char *s[] = {trace_id, status, started_at, finished_at, e};
    op_add(tx, run_job_update, 5, s);
}

static int run_trace_update(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    return aos_store_trace_update(st, op->s[0], op->s[1], op->x, op->n[0], op->s[2], err);
}

void orch_tx_trace_update(orch_tx_t *tx, orch_task_t *t, const char *finished_at)
{
    const char *s[] = {t->trace_id, orch_status_name(t->status), finished_at};
    orch_op_t *op = op_add(tx, run_trace_update, 3, s);
    if (op) {
        op->x = json_number_value(json_object_get(t->vars, "cost_cny"));
        op->n[0] = t->started_ms ? (int64_t)(uv_now(t->o->cfg.loop) - t->started_ms) : 0;
    }
}

static int run_state(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    aos_store_task_state_t s = {op->s[0], op->s[1], op->n[0], op->s[2],
                                op->s[3], op->s[4], op->s[5]};
    return aos_store_task_state_put(st, &s, err);
}

void orch_tx_state(orch_tx_t *tx, orch_task_t *t, int with_plan)
{
    scratch_reset(tx);
    ptrdiff_t plan_at = with_plan ? scratch_json(tx, t->plan) : -1;
    ptrdiff_t vars_at = scratch_json(tx, t->vars);
    const char *plan = scratch_at(tx, plan_at), *vars = scratch_at(tx, vars_at);
    const char *s[] = {t->trace_id,
                       plan,
                       vars,
                       orch_status_name(t->status),
                       json_string_value(json_object_get(t->vars, "rerun_of")),
                       json_string_value(json_object_get(t->vars, "from_step"))};
    orch_op_t *op = vars ? op_add(tx, run_state, 6, s) : NULL;
    if (!vars)
        tx->nomem = 1;
    if (op)
        op->n[0] = (int64_t)t->cursor;
}

static int run_step(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    aos_store_step_t s = {op->s[0], op->s[1], (int)op->n[0], op->n[1], op->s[2], op->s[3], op->s[4],
                          op->s[5], op->s[6], op->s[7],      op->x,    op->s[8], op->s[9]};
    return aos_store_task_step_put(st, &s, err);
}

void orch_tx_step(orch_tx_t *tx, const aos_store_step_t *st)
{
    const char *s[] = {st->trace_id,   st->step_id,    st->kind,  st->status,
                       st->input,      st->output,     st->error, st->idempotency_key,
                       st->started_at, st->finished_at};
    if (!st->started_at) { /* every attempt has its start */
        tx->nomem = 1;
        return;
    }
    orch_op_t *op = op_add(tx, run_step, 10, s);
    if (!op)
        return;
    op->n[0] = st->attempt;
    op->n[1] = st->seq;
    op->x = st->cost_cny;
}

static int run_approval_put(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    return aos_store_approval_put(st, op->s[0], op->s[1], op->s[2], op->s[3], op->s[4], err);
}

void orch_tx_step_json(orch_tx_t *tx, aos_store_step_t *st, const json_t *input,
                       const json_t *output, const json_t *error)
{
    scratch_reset(tx);
    ptrdiff_t in = scratch_json(tx, input), out = scratch_json(tx, output),
              er = scratch_json(tx, error);
    st->input = scratch_at(tx, in);
    st->output = scratch_at(tx, out);
    st->error = scratch_at(tx, er);
    orch_tx_step(tx, st);
}

void orch_tx_approval_put(orch_tx_t *tx, const char *trace_id, const char *step_id,
                          const char *message, const json_t *decisions, const char *deadline)
{
    scratch_reset(tx);
    const char *d = scratch_at(tx, scratch_json(tx, decisions));
    const char *s[] = {trace_id, step_id, message, d, deadline};
    op_add(tx, run_approval_put, 5, s);
}

static int run_approval_decide(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    return aos_store_approval_decide(st, op->s[0], op->s[1], op->s[2], op->s[3], op->s[4], op->s[5],
                                     err);
}

void orch_tx_approval_decide(orch_tx_t *tx, const char *trace_id, const char *step_id,
                             const char *status, const char *decision, const char *comment,
                             const char *actor)
{
    const char *s[] = {trace_id, step_id, status, decision, comment, actor};
    op_add(tx, run_approval_decide, 6, s);
}

/* An event operation: s[0] the trace, s[1] the type, s[2] the severity,
 * s[3] the card (value events), s[4] the project; json its payload. The
 * operations own their payloads and drop them once run: the bus takes
 * the payload as it is (redacting it in place), no copy, and no envelope
 * is built (aos_bus_append_in_tx). */
enum { EV_TRACE, EV_TYPE, EV_SEVERITY, EV_CARD, EV_PROJECT, EV_NSTRS };

static int append_event(aos_store_t *st, const char *trace, const char *type, const char *severity,
                        const char *card, const char *project, json_t *payload, aos_err_t *err)
{
    aos_store_event_in_t in = {.type = type,
                               .trace_id = trace,
                               .topic = "task",
                               .severity = severity,
                               .card_id = card,
                               .project_id = project};
    return aos_bus_append_in_tx(st, &in, payload, NULL, err);
}

static int run_event(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    return append_event(st, op->s[EV_TRACE], op->s[EV_TYPE], op->s[EV_SEVERITY], op->s[EV_CARD],
                        op->s[EV_PROJECT], op->json, err);
}

/* step.started, made on the worker when it is written: most often (a local
 * read-only tool's attempt, started and ended in one commit) its
 * step.finished or step.failed takes it over (coalesce) and it is never
 * made. s: trace id, step id, tool, idempotency key, project id; n[0]: the
 * attempt. The event is the one step_event (task.c) would have queued. */
static int run_started(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    /* json_pack("{s:s, s:s, s:i, s:s}", ...)'s object, built directly */
    json_t *p = op->s[1] && op->s[2] && op->s[3] ? json_object() : NULL;
    if (p && (json_object_set_new_nocheck(p, "step", json_string(op->s[1])) ||
              json_object_set_new_nocheck(p, "tool", json_string(op->s[2])) ||
              json_object_set_new_nocheck(p, "attempt", json_integer((int)op->n[0])) ||
              json_object_set_new_nocheck(p, "idempotency_key", json_string(op->s[3])))) {
        json_decref(p);
        p = NULL;
    }
    int rc = p && op->s[0]
                 ? append_event(st, op->s[0], "step.started", "info", NULL, op->s[4], p, err)
                 : aos_err_set(err, AOS_ENOMEM, NULL);
    json_decref(p);
    return rc;
}

/* task.progress.milestone, made on the worker when it is written: of a
 * card's progress in one savepoint only the newest is (coalesce). s:
 * trace id, card, step id, label, project id; n: done, total. */
static int run_progress(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    /* json_pack("{s:I, s:I, s:s, s:s}", ...)'s object, built directly */
    json_t *p = op->s[2] && op->s[3] ? json_object() : NULL;
    if (p && (json_object_set_new_nocheck(p, "done", json_integer((json_int_t)op->n[0])) ||
              json_object_set_new_nocheck(p, "total", json_integer((json_int_t)op->n[1])) ||
              json_object_set_new_nocheck(p, "step", json_string(op->s[2])) ||
              json_object_set_new_nocheck(p, "label", json_string(op->s[3])))) {
        json_decref(p);
        p = NULL;
    }
    int rc = p && op->s[0] ? append_event(st, op->s[0], "task.progress.milestone", "info", op->s[1],
                                          op->s[4], p, err)
                           : aos_err_set(err, AOS_ENOMEM, NULL);
    json_decref(p);
    return rc;
}

void orch_tx_progress(orch_tx_t *tx, orch_task_t *t, const char *card, const char *step_id,
                      const char *label, int64_t done, int64_t total)
{
    const char *s[] = {t->trace_id, card, step_id, label, t->project_id};
    orch_op_t *op = op_add(tx, run_progress, 5, s);
    if (op) {
        op->n[0] = done;
        op->n[1] = total;
    }
}

void orch_tx_step_started(orch_tx_t *tx, orch_task_t *t, const char *step_id, const char *tool,
                          int attempt, const char *key)
{
    const char *s[] = {t->trace_id, step_id, tool ? tool : "", key, t->project_id};
    orch_op_t *op = op_add(tx, run_started, 5, s);
    if (op)
        op->n[0] = attempt;
}

/* An event operation of t (run: run_event or run_receipt, whose more
 * strings follow the event's), or NULL (tx->nomem); payload is stolen. */
static orch_op_t *event_op(orch_tx_t *tx, orch_task_t *t, const char *type, const char *severity,
                           const char *card_id, json_t *payload,
                           int (*run)(aos_store_t *, orch_op_t *, orch_tx_t *, aos_err_t *),
                           int nmore, const char *const *more)
{
    const char *s[ORCH_OP_STRS] = {t->trace_id, type, severity ? severity : "info",
                                   card_id && aos_bus_is_value_type(type) ? card_id : NULL,
                                   t->project_id};
    for (int i = 0; i < nmore && EV_NSTRS + i < ORCH_OP_STRS; i++)
        s[EV_NSTRS + i] = more[i];
    if (!payload)
        payload = json_object();
    orch_op_t *op = payload && type ? op_add(tx, run, EV_NSTRS + nmore, s) : NULL;
    if (!op) {
        tx->nomem = 1;
        json_decref(payload);
        return NULL;
    }
    op->json = payload;
    return op;
}

void orch_tx_event(orch_tx_t *tx, orch_task_t *t, const char *type, const char *severity,
                   const char *card_id, json_t *payload)
{
    event_op(tx, t, type, severity, card_id, payload, run_event, 0, NULL);
}

#define RECEIPT_ARTIFACTS_BYTES (32u * 1024) /* of the event's 64 KiB */

/* task.receipt: the event's strings, then s[5] the workspace. */
static int run_receipt(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    /* the list fits in the event whatever the workspace holds: past the
     * budget it is cut and artifacts_total says how many there are (the
     * episode lists them all) */
    size_t total = 0;
    json_object_set_new(
        op->json, "artifacts",
        orch_artifacts_list(op->s[EV_NSTRS], op->s[EV_TRACE], RECEIPT_ARTIFACTS_BYTES, &total));
    json_object_set_new(op->json, "artifacts_total", json_integer((json_int_t)total));
    return run_event(st, op, tx, err);
}

void orch_tx_receipt(orch_tx_t *tx, orch_task_t *t, json_t *payload)
{
    char card[48];
    snprintf(card, sizeof(card), "task:%s", t->trace_id);
    const char *s[] = {t->workspace};
    event_op(tx, t, "task.receipt", "info", card, payload, run_receipt, 1, s);
}

static int run_mkdir(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    /* <data>/workspaces/<trace>: the parent first */
    char *slash = strrchr(op->s[0], '/');
    if (slash) {
        *slash = '\0';
        mkdir(op->s[0], 0700);
        *slash = '/';
    }
    if (mkdir(op->s[0], 0700) != 0 && errno != EEXIST)
        return aos_err_set(err, AOS_EIO, "unable to create the workspace '%s': %s", op->s[0],
                           strerror(errno));
    return 0;
}

void orch_tx_mkdir(orch_tx_t *tx, const char *path)
{
    const char *s[] = {path};
    op_add(tx, run_mkdir, 1, s);
}

static int run_message(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    int rc = aos_store_conversation_touch(st, op->s[0], op->s[1], op->s[2], err);
    if (rc == 0)
        rc = aos_store_message_add(st, op->s[0], op->s[3], op->s[4], op->s[5], op->s[6], NULL, err);
    if (rc == 0 && op->s[3] && !strcmp(op->s[3], "user")) { /* what a person said */
        char res[160];
        snprintf(res, sizeof(res), "conversations/%.120s", op->s[0]);
        json_t *diff = json_pack("{s:s?}", "trace_id", op->s[6]);
        rc = aos_store_audit_append(st, op->s[2] ? op->s[2] : "unknown", "chat.send", res, diff,
                                    err);
        json_decref(diff);
    }
    return rc;
}

void orch_tx_message(orch_tx_t *tx, const char *conversation_id, const char *title,
                     const char *actor, const char *role, const char *content, const char *dsl,
                     const char *trace_id)
{
    const char *s[] = {conversation_id, title, actor, role, content, dsl, trace_id};
    op_add(tx, run_message, 7, s);
}

static int run_audit(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    (void)tx;
    char res[64];
    snprintf(res, sizeof(res), "tasks/%.40s", op->s[2]);
    return aos_store_audit_append(st, op->s[0], op->s[1], res, op->json, err);
}

void orch_tx_audit(orch_tx_t *tx, const char *actor, const char *action, const char *trace_id,
                   json_t *diff)
{
    const char *s[] = {actor ? actor : "unknown", action, trace_id};
    orch_op_t *op = op_add(tx, run_audit, 3, s);
    if (op)
        op->json = diff;
    else
        json_decref(diff);
}

/* ---- coalescing ------------------------------------------------------------------ */

/* Within one savepoint, a write that a later one of the same row replaces
 * whole need not be made: the savepoint commits both or neither, so what
 * the store holds after it is the same. Per row (the key), the later
 * operation takes what the earlier one set and it does not (the columns
 * the upsert keeps), and the earlier one is dropped (run = NULL):
 *   the state row          the last one (with the plan, the re-run's
 *                          origin, when an earlier one had them)
 *   an attempt's row       started and ended in the same commit: one
 *                          insert, with the start's input, order, key and
 *                          time
 *   the job's row          the last update, with the earlier times
 *   step.started           dropped when its step.finished / step.failed
 *                          (same step and attempt) follows: that event
 *                          takes its tool and idempotency key - one step
 *                          event per attempt
 *   task.progress.milestone the last of each card: the bus folds a
 *                          card's burst to its newest anyway (bus.h)
 * This is what lets a run of aosd's own read-only steps, which all land
 * in one commit (task.c), write each row once. */
/* The row an operation writes: kind ('S' state, 'J' job, 'T' attempt,
 * 'E' step event, 'P' progress card) and what names it within the kind;
 * pointers into the operation's own strings and JSON. */
typedef struct {
    orch_op_t *op;
    const char *a, *b, *type;
    int64_t n;
    char kind; /* 0: not one coalescing knows */
} row_t;

static void row_set(row_t *r, char kind, const char *a, const char *b, int64_t n)
{
    r->kind = kind;
    r->a = a;
    r->b = b ? b : "";
    r->n = n;
}

static int row_same(const row_t *x, const row_t *y)
{
    return x->kind == y->kind && x->n == y->n && !strcmp(x->a, y->a) && !strcmp(x->b, y->b);
}

static void steal(char **to, char **from)
{
    if (!*to && *from) {
        *to = *from;
        *from = NULL;
    }
}

/* The row of r->op (r->kind 0 when it is not one coalescing knows). */
static void op_key(row_t *r)
{
    orch_op_t *op = r->op;
    r->kind = 0;
    r->type = NULL;
    if (op->run == run_state && op->s[0]) {
        row_set(r, 'S', op->s[0], NULL, 0);
        return;
    }
    if (op->run == run_job_update && op->s[0]) {
        row_set(r, 'J', op->s[0], NULL, 0);
        return;
    }
    if (op->run == run_step && op->s[0] && op->s[1]) {
        row_set(r, 'T', op->s[0], op->s[1], op->n[0]);
        return;
    }
    if (op->run == run_started) {
        r->type = "step.started";
        row_set(r, 'E', op->s[0], op->s[1], op->n[0]);
        return;
    }
    if (op->run == run_progress) {
        r->type = "task.progress.milestone";
        row_set(r, 'P', op->s[1], NULL, 0);
        return;
    }
    if (op->run != run_event)
        return;
    const char *t = op->s[EV_TYPE], *trace = op->s[EV_TRACE];
    const char *step = json_string_value(json_object_get(op->json, "step"));
    if (!t || !trace)
        return;
    r->type = t;
    if (!strcmp(t, "task.progress.milestone")) {
        if (op->s[EV_CARD])
            row_set(r, 'P', op->s[EV_CARD], NULL, 0);
        return;
    }
    if (step &&
        (!strcmp(t, "step.started") || !strcmp(t, "step.finished") || !strcmp(t, "step.failed")))
        row_set(r, 'E', trace, step, json_integer_value(json_object_get(op->json, "attempt")));
}

/* later takes over what earlier wrote; earlier is dropped (or kept: 0). */
static int merge_into(orch_op_t *later, orch_op_t *earlier, const char *type)
{
    if (earlier->run == run_started && later->run == run_event && type &&
        (!strcmp(type, "step.finished") || !strcmp(type, "step.failed"))) {
        /* a step's end takes over its start's event: the tool and the
         * key, after the end's own members, as json_object_update_missing
         * with the start's payload would */
        json_t *p = later->json;
        /* both strings came from JSON strings (the plan's tool, the key
         * made of the ids it checked): valid UTF-8 already */
        if ((!json_object_get(p, "tool") &&
             json_object_set_new_nocheck(p, "tool", json_string_nocheck(earlier->s[2]))) ||
            (!json_object_get(p, "idempotency_key") &&
             json_object_set_new_nocheck(p, "idempotency_key", json_string_nocheck(earlier->s[3]))))
            return 0;
        earlier->run = NULL;
        return 1;
    }
    if (later->run != earlier->run)
        return 0;
    if (later->run == run_progress) { /* the newest of the card */
        earlier->run = NULL;
        return 1;
    }
    if (later->run == run_state) {
        steal(&later->s[1], &earlier->s[1]); /* the plan */
        steal(&later->s[4], &earlier->s[4]); /* rerun_of, from_step */
        steal(&later->s[5], &earlier->s[5]);
    } else if (later->run == run_job_update) {
        for (int i = 2; i <= 4; i++) /* started_at, finished_at, error: COALESCE */
            steal(&later->s[i], &earlier->s[i]);
    } else if (later->run == run_step) {
        /* the upsert keeps the first insert's seq, kind, key and start */
        static const int kept[] = {2, 7, 8}; /* kind, idempotency_key, started_at */
        for (size_t i = 0; i < sizeof(kept) / sizeof(kept[0]); i++) {
            later->s[kept[i]] = earlier->s[kept[i]]; /* in earlier's block, freed with it */
            earlier->s[kept[i]] = NULL;
        }
        steal(&later->s[4], &earlier->s[4]); /* input: COALESCE */
        later->n[1] = earlier->n[1];
    } else if (!type) {
        return 0;
    } else if (strcmp(type, "task.progress.milestone") != 0) { /* progress: the newest */
        /* a step's end takes over its start's event */
        const char *et = earlier->s[EV_TYPE];
        if (!et || strcmp(et, "step.started") || !strcmp(type, "step.started"))
            return 0;
        json_object_update_missing(later->json, earlier->json);
    }
    earlier->run = NULL;
    return 1;
}

static void coalesce(orch_tx_t *tx)
{
    if (!tx->ops || !tx->ops->next)
        return;
    /* each operation's row, named before any merge; then each one takes
     * over the nearest earlier one of the same row (a scan: a task's
     * savepoint holds tens of operations, not a map's worth) */
    size_t n = 0;
    for (orch_op_t *op = tx->ops; op; op = op->next)
        n++;
    row_t local[64], *rows = n <= 64 ? local : malloc(n * sizeof(*rows));
    if (!rows)
        return; /* on no memory: nothing merged, all written */
    size_t i = 0;
    for (orch_op_t *op = tx->ops; op; op = op->next, i++) {
        rows[i].op = op;
        op_key(&rows[i]);
    }
    for (i = 1; i < n; i++) {
        if (!rows[i].kind)
            continue;
        for (size_t j = i; j-- > 0;) {
            if (row_same(&rows[i], &rows[j])) {
                merge_into(rows[i].op, rows[j].op, rows[i].type);
                break;
            }
        }
    }
    if (rows != local)
        free(rows);
}

/* ---- the group commit -------------------------------------------------------- */

/* Why tx is not run at all (it writes nothing), or 0. */
static int refused(const orch_tx_t *tx, aos_err_t *err)
{
    if (tx->nomem)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    if (tx->dropped || (tx->after && tx->after->status))
        return aos_err_set(err, AOS_ECONFLICT, "an earlier transition of the task failed");
    return 0;
}

/* An event with no card (a step event): its writing may wait, in order
 * with the others, until the next operation that writes events. */
static int plain_event(const orch_op_t *op)
{
    return op->run == run_event && !aos_bus_is_value_type(op->s[EV_TYPE]);
}

/* An operation that writes no event: the waiting events may be written
 * after it (nothing in the transaction reads them). */
static int writes_no_event(const orch_op_t *op)
{
    return op->run == run_step || op->run == run_state || op->run == run_job_update ||
           op->run == run_trace_update;
}

#define WAITING_MAX AOS_BUS_APPEND_N_MAX

/* The waiting events, w[0..*n), written together, in order. */
static int write_waiting(aos_store_t *st, orch_op_t **w, size_t *n, aos_err_t *err)
{
    aos_store_event_in_t ev[WAITING_MAX];
    json_t *payload[WAITING_MAX];
    for (size_t i = 0; i < *n; i++) {
        ev[i] = (aos_store_event_in_t){.type = w[i]->s[EV_TYPE],
                                       .trace_id = w[i]->s[EV_TRACE],
                                       .topic = "task",
                                       .severity = w[i]->s[EV_SEVERITY],
                                       .project_id = w[i]->s[EV_PROJECT]};
        payload[i] = w[i]->json;
    }
    int rc = *n ? aos_bus_append_in_n_tx(st, ev, payload, *n, err) : 0;
    *n = 0;
    return rc;
}

static int run_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    orch_tx_t *tx = arg;
    int rc = refused(tx, err);
    if (rc)
        return rc;
    coalesce(tx);
    /* the step events of a run of steps (each between its step's row and
     * the next one's) go in one INSERT of a few rows: their ids follow
     * their order, as one by one */
    orch_op_t *waiting[WAITING_MAX];
    size_t nw = 0;
    for (orch_op_t *op = tx->ops; op; op = op->next) {
        if (!op->run)
            continue;
        if (plain_event(op)) {
            waiting[nw++] = op;
            if (nw == WAITING_MAX && (rc = write_waiting(st, waiting, &nw, err)))
                return rc;
            continue;
        }
        if (!writes_no_event(op) && (rc = write_waiting(st, waiting, &nw, err)))
            return rc;
        if ((rc = op->run(st, op, tx, err)))
            return rc;
    }
    return write_waiting(st, waiting, &nw, err);
}

static int run_group(aos_store_t *st, void *arg, aos_err_t *err)
{
    for (orch_tx_t *tx = arg; tx; tx = tx->next) {
        if (tx->into) { /* written in an earlier one's savepoint: its fate */
            tx->status = tx->into->status;
            if (tx->status)
                tx->err = tx->into->err;
            continue;
        }
        /* a savepoint each: one failing transition undoes only itself */
        tx->status = aos_store_tx(st, run_tx, tx, &tx->err);
    }
    return 0;
}

struct flat {
    orch_tx_t *batch;
    int failed; /* a transition failed: the batch goes again, in savepoints */
};

/* Whether running op a second time, after the transaction of the first was
 * undone, does what running it once does: the store's writes, a mkdir, the
 * receipt's listing of the workspace. Not the operations that create files
 * (a task's files, a re-run's copy of the workspace: orch.c), which refuse
 * a file that exists; nor one this list does not know. */
static int op_repeatable(const orch_op_t *op)
{
    static int (*const known[])(aos_store_t *, orch_op_t *, orch_tx_t *, aos_err_t *) = {
        run_job_insert,   run_job_update,      run_trace_update, run_state,   run_step,
        run_approval_put, run_approval_decide, run_event,        run_started, run_progress,
        run_receipt,      run_mkdir,           run_message,      run_audit,
    };
    if (!op->run)
        return 1;
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (op->run == known[i])
            return 1;
    return 0;
}

static int batch_repeatable(const orch_tx_t *batch)
{
    for (const orch_tx_t *tx = batch; tx; tx = tx->next)
        for (const orch_op_t *op = tx->ops; op; op = op->next)
            if (!op_repeatable(op))
                return 0;
    return 1;
}

/* The batch without a savepoint per transition: the first transition that
 * fails stops it, and the whole transaction is undone (group_job). One
 * refused before it writes anything fails alone, as in run_group. */
static int run_flat(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct flat *f = arg;
    for (orch_tx_t *tx = f->batch; tx; tx = tx->next) {
        if (tx->into) { /* its ops went into its head's: its fate */
            tx->status = tx->into->status;
            if (tx->status)
                tx->err = tx->into->err;
            continue;
        }
        if ((tx->status = refused(tx, &tx->err)))
            continue;
        int rc = run_tx(st, tx, &tx->err);
        if (rc) {
            f->failed = 1;
            return aos_err_set(err, rc, "%s", aos_err_msg(&tx->err));
        }
    }
    return 0;
}

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

struct orch_batch {
    aos_orch_t *o;
    orch_tx_t *txs;
    size_t n;          /* transitions in it */
    unsigned gen;      /* o->gen when it was taken */
    unsigned base_gen; /* the oldest batch in flight then (its own gen if none) */
    int64_t ns;        /* its transaction's time, set on the worker */
    int kicked;        /* the bus was kicked when it was submitted */
    orch_batch_t *next;
};

/* On the worker: whether a transition of t failed in a batch from base_gen
 * on, before gen - one whose callbacks had not run when this batch was
 * taken, so that t's later transitions are in it all the same. */
static int failed_before(const aos_orch_t *o, const orch_task_t *t, unsigned base_gen, unsigned gen)
{
    unsigned n = o->wfail_n < 32 ? o->wfail_n : 32;
    for (unsigned i = 0; i < n; i++)
        if (o->wfail[i].task == t && o->wfail[i].gen >= base_gen && o->wfail[i].gen < gen)
            return 1;
    return 0;
}

static void note_failed(aos_orch_t *o, const orch_task_t *t, unsigned gen)
{
    o->wfail[o->wfail_n % 32].task = t;
    o->wfail[o->wfail_n % 32].gen = gen;
    o->wfail_n++;
}

/* The batch b (set on the loop before the job was submitted, and left
 * alone until its done callback, which also reads b->ns). */
static int group_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    orch_batch_t *b = arg;
    aos_orch_t *o = b->o;
    int64_t t0 = mono_ns();
    /* A batch taken while an earlier one was in flight may hold later
     * transitions of a task whose transition failed in that one: they are
     * not written, as committed() (task.c) would have dropped them had
     * they still been queued when it saw the failure. (A ring of the last
     * 32 failures: failures are rare, and only those of the batches in
     * flight at once, ORCH_MAX_INFLIGHT, matter.) */
    if (o->wfail_n && b->base_gen < b->gen)
        for (orch_tx_t *tx = b->txs; tx; tx = tx->next)
            if (tx->task && failed_before(o, tx->task, b->base_gen, b->gen))
                tx->dropped = 1;
    /* Almost always every transition succeeds: the batch runs first with no
     * savepoint per transition (each costs SQLite a statement at each end
     * and a copy of every page the transition changes first). Only when
     * one fails is it all undone and run again, each in a savepoint, so
     * that the failure undoes only its own. Running an operation again
     * does what it did the first time (coalesce merged its rows already,
     * its event is redacted already, the store writes what it wrote); a
     * batch with one that would not (op_repeatable) goes in savepoints
     * at once. */
    struct flat f = {b->txs, !batch_repeatable(b->txs)};
    int rc = f.failed ? 0 : aos_store_tx(st, run_flat, &f, err);
    if (f.failed) {
        for (orch_tx_t *tx = b->txs; tx; tx = tx->next) {
            tx->status = 0;
            tx->err = (aos_err_t){0, ""};
            tx->job_id = 0;
        }
        rc = aos_store_tx(st, run_group, b->txs, err);
    }
    for (orch_tx_t *tx = b->txs; tx; tx = tx->next)
        if (tx->task && (rc || tx->status))
            note_failed(o, tx->task, b->gen);
    b->ns = mono_ns() - t0;
    return rc;
}

static void flush(aos_orch_t *o);

/* b's transitions are committed or failed: their callbacks, then the
 * next batch. */
static void batch_end(orch_batch_t *b, int status, const aos_err_t *err)
{
    aos_orch_t *o = b->o;
    orch_tx_t *batch = b->txs;
    if (status)
        aos_log_error("orch", "a group commit failed: %s", aos_err_msg(err));
    if (o->m_commit && b->ns > 0) { /* 0: the job never ran */
        aos_metric_observe(o->m_commit, (double)b->ns / 1e9);
        aos_metric_observe(o->m_commit_tx, (double)b->n);
    }
    if (!b->kicked)
        aos_bus_kick(o->cfg.bus);
    free(b);
    /* What was queued while this batch was on the worker goes now, before
     * this batch's callbacks run: the worker writes it while the loop does
     * what follows this one (replies, the tasks' next moves), instead of
     * the two taking turns. It never depends on this batch's callbacks: a
     * transition that must wait for another's commit is queued from that
     * one's callback. Except when something in this batch failed: then
     * the callbacks drop what the failed tasks queued (committed(), task.c)
     * before anything of theirs goes, as before. */
    int clean = !status;
    for (orch_tx_t *tx = batch; tx && clean; tx = tx->next)
        if (tx->status)
            clean = 0;
    if (clean && o->pending && !o->shutting_down)
        flush(o);
    while (batch) {
        orch_tx_t *tx = batch;
        batch = tx->next;
        if (status && !tx->status) {
            tx->status = status;
            tx->err = *err;
        }
        if (tx->reply)
            tx->reply(tx);
        if (tx->done)
            tx->done(tx);
        orch_tx_free(tx);
    }
    flush(o);
}

static void group_done(int status, const aos_err_t *err, void *arg)
{
    orch_batch_t *b = arg;
    aos_orch_t *o = b->o;
    /* the store runs its jobs in order: b is the oldest in flight */
    o->inflight = b->next;
    if (!o->inflight)
        o->inflight_tail = &o->inflight;
    o->ninflight--;
    batch_end(b, status, err);
}

static int mergeable(const orch_tx_t *tx)
{
    return !tx->reply && !tx->nomem && !tx->dropped;
}

static void take(aos_orch_t *o);

/* Whether what is queued may go into a group commit now. */
static int may_take(const aos_orch_t *o)
{
    if (!o->pending || o->ninflight >= ORCH_MAX_INFLIGHT)
        return 0;
    /* what the local calls in flight cause goes in the same commit */
    return o->urgent || !o->local_calls || o->shutting_down;
}

static void on_flusher(uv_check_t *h)
{
    aos_orch_t *o = h->data;
    uv_check_stop(h);
    o->flush_armed = 0;
    if (may_take(o))
        take(o);
}

/* Takes what is queued into a group commit when it may go: at once when
 * the worker has none of ours (the latency of one task alone), else at the
 * end of this turn of the loop (a uv_check), so that what the turn queues
 * goes together - a batch per transition would cost a commit each. A batch
 * armed for the end of a turn is never left waiting: one is in flight, and
 * its done callback wakes the loop. */
static void flush(aos_orch_t *o)
{
    if (!o->pending) {
        if (!o->ninflight)
            orch_idle(o);
        return;
    }
    if (!may_take(o))
        return;
    if (!o->ninflight || o->shutting_down) {
        take(o);
        return;
    }
    if (!o->flush_armed) {
        o->flush_armed = 1;
        uv_check_start(&o->flusher, on_flusher);
    }
}

static void take(aos_orch_t *o)
{
    orch_batch_t *b = calloc(1, sizeof(*b));
    if (!b) {
        aos_log_error("orch", "a group commit: out of memory");
        return; /* what is queued goes with the next flush */
    }
    b->o = o;
    o->urgent = 0;
    b->txs = o->pending;
    o->pending = NULL;
    o->pending_tail = &o->pending;
    b->gen = ++o->gen;
    b->base_gen = o->inflight ? o->inflight->gen : b->gen;
    for (orch_tx_t *tx = b->txs; tx; tx = tx->next) {
        b->n++;
        orch_task_t *t = tx->task;
        if (!t)
            continue;
        tx->after = t->batch_gen == o->gen ? t->batch_last : NULL;
        t->batch_gen = o->gen;
        t->batch_last = tx;
        /* The transitions of a task in one group commit that no caller
         * waits on (no reply: a 409 on a decision must undo only itself)
         * share one savepoint: the task's run in this commit is then
         * written in one piece, each row once (coalesce). If it fails,
         * all of them fail, as the later ones did when an earlier one
         * failed; the store keeps a prefix of the task's transitions. */
        orch_tx_t *prev = tx->after;
        if (prev && mergeable(prev) && mergeable(tx)) {
            orch_tx_t *head = prev->into ? prev->into : prev;
            if (tx->ops) {
                *head->tail = tx->ops;
                head->tail = tx->tail;
                tx->ops = NULL;
                tx->tail = &tx->ops;
            }
            tx->into = head;
        }
    }
    /* A worker with nothing else to do: the bus's read of the new events
     * is queued right behind this commit (the store runs its jobs in
     * order, so it finds them), and the worker and the loop wake once for
     * both instead of once each. A busy worker: the read is asked for
     * when the commit is done, so that one read may serve several. */
    aos_store_stats_t ss;
    aos_store_stats(o->cfg.store, &ss);
    int idle = ss.queued == 0 && !ss.running;
    if (aos_store_submit(o->cfg.store, group_job, group_done, b) != 0) {
        aos_err_t e = {0, ""};
        aos_err_set(&e, AOS_EUNAVAIL, "the store is closing");
        batch_end(b, AOS_EUNAVAIL, &e);
        return;
    }
    /* its done callback runs on this loop, later: linked after the submit */
    *o->inflight_tail = b;
    o->inflight_tail = &b->next;
    o->ninflight++;
    if (idle) {
        b->kicked = 1;
        aos_bus_kick(o->cfg.bus);
    }
}

void orch_tx_drop_queued(aos_orch_t *o, orch_task_t *t)
{
    for (orch_tx_t *tx = o->pending; tx; tx = tx->next)
        if (tx->task == t)
            tx->dropped = 1;
}

void orch_tx_local_done(aos_orch_t *o)
{
    o->local_calls--;
    flush(o);
}

void orch_tx_commit(orch_tx_t *tx)
{
    aos_orch_t *o = tx->o;
    /* only a local step's start waits for nothing: task.c says so with
     * then == 0 (NEXT_NONE) */
    if (!tx->task || tx->reply || tx->then != 0)
        o->urgent++;
    tx->next = NULL;
    *o->pending_tail = tx;
    o->pending_tail = &tx->next;
    flush(o);
}
