/* task.c - one task's loop: Executor -> Critic -> Reviser, step by step.
 *
 * Every move of a task is a transition (commit.c): the writes of that move
 * with its events, committed before anything that depends on it happens.
 * advance() walks the plan from the cursor: steps skipped by their `when`,
 * fallback-only steps and milestones are written into the same transition
 * and the walk goes on; a tool step writes its attempt row ("running", with
 * its resolved input and idempotency key) and the walk stops: once that
 * commits, the tool is called. Its answer is judged by the Critic
 * (aos_plan_check); a good one is written with the next steps' start in
 * one transition, a bad one goes to revise(): another attempt after a
 * back-off (anomaly.detected, recovery.start; recovery.done when one
 * succeeds), the step's fallback, an optional step's skip, a question to
 * a person (an approval with continue, downgrade, abort) or the end. An
 * approval step writes its pending row and waits for a decision or its
 * deadline. The end writes the job, the trace and task.receipt.
 *
 * What to do once a transition commits is t->next when it was queued
 * (tx->then). A task's transitions commit in the order they were queued,
 * and the loop waits for one before it does what depends on it being
 * durable: a call of a tool that may change something outside aosd, an
 * approval's wait, the end. A tool of aosd's own that only reads (a
 * built-in with readOnlyHint, aos_gateway_tool_local) is called at once
 * instead, its start still queued: after a crash the store holds a prefix
 * of the task's transitions, so at worst that step runs again, with the
 * same idempotency key, and nothing outside aosd can tell. So a run of such
 * steps needs no commit of its own per step; t->busy counts the task's
 * transitions not yet committed. */
#include "orch/internal.h"
#include "buf/buf.h"
#include "isotime/isotime.h"
#include "guard/guard.h"
#include "log/log.h"
#include "secret/secret.h"

#include <math.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const status_names[] = {"queued", "running", "waiting",
                                           "done",   "failed",  "cancelled"};

const char *orch_status_name(enum orch_status s)
{
    return status_names[s];
}

/* An object of n members, given as (const char *key, json_t *value)
 * pairs, the values stolen; NULL when one is NULL or out of memory. What
 * json_pack makes, without a format parsed at each of the executor's
 * calls (per step and per task). Keys: literals, valid UTF-8. */
static json_t *obj(int n, ...)
{
    va_list ap;
    va_start(ap, n);
    json_t *o = json_object();
    for (int i = 0; i < n; i++) {
        const char *k = va_arg(ap, const char *);
        json_t *v = va_arg(ap, json_t *);
        if (!o) {
            json_decref(v);
        } else if (json_object_set_new_nocheck(o, k, v)) { /* v is taken either way */
            json_decref(o);
            o = NULL;
        }
    }
    va_end(ap);
    return o;
}

orch_task_t *orch_task_new(aos_orch_t *o, const char *trace_id)
{
    orch_task_t *t = calloc(1, sizeof(*t));
    if (!t)
        return NULL;
    t->o = o;
    snprintf(t->trace_id, sizeof(t->trace_id), "%s", trace_id);
    t->vars =
        obj(4, "decided", json_object(), "downgraded", json_false(), "cost_cny", json_real(0.0),
            "counts",
            obj(3, "done", json_integer(0), "failed", json_integer(0), "skipped", json_integer(0)));
    if (!t->vars) {
        free(t);
        return NULL;
    }
    return t;
}

static void on_timer_closed(uv_handle_t *h)
{
    free(h);
}

static void timer_stop(orch_task_t *t)
{
    if (t->timer) {
        t->timer->data = NULL;
        uv_close((uv_handle_t *)t->timer, on_timer_closed);
        t->timer = NULL;
    }
}

void orch_task_free(orch_task_t *t)
{
    timer_stop(t);
    /* open spans end with aosd (a restart resumes under the stored root) */
    aos_span_t *open[] = {t->step_span, t->span};
    for (size_t i = 0; i < 2; i++) {
        if (open[i]) {
            aos_span_add_event(open[i], "aosd stopped", NULL);
            aos_span_end(open[i]);
        }
    }
    json_decref(t->spec);
    json_decref(t->plan);
    json_decref(t->scope);
    json_decref(t->vars);
    json_decref(t->cur_input);
    free(t->info_fb);
    json_decref(t->caps);
    free(t->project_id);
    free(t->actor);
    free(t->cancel_actor);
    free(t->workspace);
    free(t);
}

json_t *orch_scope_new(orch_task_t *t, const json_t *inputs)
{
    return obj(3, "inputs", inputs ? json_incref((json_t *)inputs) : json_object(), "steps",
               json_object(), "task",
               obj(2, "trace_id", json_string(t->trace_id), "workspace",
                   json_string(t->workspace ? t->workspace : "")));
}

int orch_scope_add_step(json_t *scope, const char *kind, const char *step_id, const json_t *output)
{
    json_t *steps = json_object_get(scope, "steps");
    if (!strcmp(kind, "tool"))
        return json_object_set_new(steps, step_id, obj(1, "result", aos_plan_result(output)));
    if (!strcmp(kind, "approval"))
        return json_object_set_new(steps, step_id,
                                   json_pack("{s:O}", "decision",
                                             json_object_get(output, "decision")
                                                 ? json_object_get(output, "decision")
                                                 : json_null()));
    return 0;
}

/* ---- small helpers ------------------------------------------------------------ */

static const char *step_id(const json_t *step)
{
    return json_string_value(json_object_get(step, "id"));
}

/* Whether v holds a string with a '$' (a ${reference} may be in it). */
static int has_dollar(const json_t *v)
{
    if (json_is_string(v))
        return memchr(json_string_value(v), '$', json_string_length(v)) != NULL;
    size_t i;
    const char *k;
    json_t *e;
    if (json_is_array(v)) {
        json_array_foreach(v, i, e)
        {
            if (has_dollar(e))
                return 1;
        }
    } else if (json_is_object(v)) {
        json_object_foreach((json_t *)v, k, e)
        {
            if (has_dollar(e))
                return 1;
        }
    }
    return 0;
}

/* Finds what the walk asks of the plan's steps at every turn - which run
 * only as a fallback, whether any reads the scope - once per plan rather
 * than a scan of the steps per turn. 0, or -1 (out of memory: the callers
 * scan as before). */
static int plan_info(orch_task_t *t)
{
    if (t->info_plan && t->info_plan == t->plan)
        return 0;
    free(t->info_fb);
    t->info_fb = NULL;
    t->info_plan = NULL;
    const json_t *steps = json_object_get(t->plan, "steps");
    size_t n = json_array_size(steps), i, j;
    unsigned char *fb = calloc(n ? n : 1, 1);
    if (!fb)
        return -1;
    int scope = 0;
    const json_t *s, *o;
    json_array_foreach(steps, i, s)
    {
        const char *f = json_string_value(json_object_get(s, "fallback"));
        json_array_foreach(steps, j, o)
        {
            const char *oid = f ? step_id(o) : NULL;
            if (oid && !strcmp(oid, f))
                fb[j] = 1;
        }
        scope = scope || json_object_get(s, "when") || has_dollar(json_object_get(s, "args")) ||
                has_dollar(json_object_get(json_object_get(s, "approval"), "message"));
    }
    t->info_plan = t->plan;
    t->info_steps = steps;
    t->info_fb = fb;
    t->info_scope = scope;
    return 0;
}

static const json_t *steps_of(orch_task_t *t)
{
    return plan_info(t) == 0 ? t->info_steps : json_object_get(t->plan, "steps");
}

/* Whether a step's result or decision is needed in the scope: only a
 * `when`, a ${reference} in args or an approval's message reads it. */
static int scope_read(orch_task_t *t)
{
    return plan_info(t) != 0 || t->info_scope;
}

static const json_t *step_by_id(orch_task_t *t, const char *id)
{
    size_t i;
    const json_t *s;
    json_array_foreach(steps_of(t), i, s)
    {
        if (!strcmp(step_id(s), id))
            return s;
    }
    return NULL;
}

/* Another step names this one (steps[at]) as its fallback: it never runs
 * on its own. */
static int fallback_only(orch_task_t *t, size_t at, const char *id)
{
    if (plan_info(t) == 0)
        return t->info_fb[at];
    size_t i;
    const json_t *s;
    json_array_foreach(steps_of(t), i, s)
    {
        const char *f = json_string_value(json_object_get(s, "fallback"));
        if (f && !strcmp(f, id))
            return 1;
    }
    return 0;
}

static void count(orch_task_t *t, const char *what)
{
    json_t *c = json_object_get(t->vars, "counts");
    json_object_set_new(c, what, json_integer(json_integer_value(json_object_get(c, what)) + 1));
}

/* A step row into tx; input, output and error as JSON (may be NULL). */
static void step_row(orch_tx_t *tx, orch_task_t *t, const char *id, const char *kind,
                     const char *status, int attempt, int64_t seq, const json_t *input,
                     const json_t *output, const json_t *error, const char *started,
                     const char *finished, const char *key, double cost)
{
    aos_store_step_t s = {t->trace_id, id,   attempt, seq,  kind,    status,  NULL,
                          NULL,        NULL, key,     cost, started, finished};
    orch_tx_step_json(tx, &s, input, output, error);
}

/* "a" then "b" (NULL: "") into out[0..n), cut as snprintf would: the
 * short names built for each step, without snprintf's format parsing. */
static void join2(char *out, size_t n, const char *a, const char *b)
{
    size_t k = 0;
    out[0] = '\0';
    aos_str_put(out, n, &k, a, SIZE_MAX);
    aos_str_put(out, n, &k, b ? b : "", SIZE_MAX);
}

static void idempotency_key(const orch_task_t *t, const char *id, int attempt, char *out, size_t n)
{
    /* trace:step:attempt */
    char d[16], *p = d + sizeof(d);
    unsigned u = attempt < 0 ? 0u - (unsigned)attempt : (unsigned)attempt;
    *--p = '\0';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (attempt < 0)
        *--p = '-';
    size_t k = 0;
    out[0] = '\0';
    aos_str_put(out, n, &k, t->trace_id, SIZE_MAX);
    aos_str_put(out, n, &k, ":", 1);
    aos_str_put(out, n, &k, id ? id : "", SIZE_MAX);
    aos_str_put(out, n, &k, ":", 1);
    aos_str_put(out, n, &k, p, SIZE_MAX);
}

/* A step event's line of aosd's log under the task's trace, so the run's
 * log lines (the run page, Monitor) say what its steps did (nothing is
 * made when the level drops it). */
static void step_log(orch_task_t *t, const char *type, const char *id, const char *tool,
                     const char *why)
{
    aos_log_level_t level = !strcmp(type, "step.failed") ? AOS_LOG_WARN : AOS_LOG_INFO;
    if (level < aos_log_get_level())
        return;
    const char *what = strchr(type, '.') ? strchr(type, '.') + 1 : type;
    aos_log(level, "orch", json_pack("{s:s, s:s}", "trace_id", t->trace_id, "step", id),
            "step %s %s%s%s%s%s%s", id, what, tool ? " (" : "", tool ? tool : "", tool ? ")" : "",
            why ? ": " : "", why ? why : "");
}

/* A step event (topic task) and its log line. */
static void step_event(orch_tx_t *tx, orch_task_t *t, const char *type, const char *id,
                       json_t *more)
{
    json_t *p = obj(1, "step", json_string(id));
    if (more) {
        json_object_update(p, more);
        json_decref(more);
    }
    aos_log_level_t level = !strcmp(type, "step.failed") ? AOS_LOG_WARN : AOS_LOG_INFO;
    if (level >= aos_log_get_level()) { /* what the line says, only when it is made */
        const char *why = json_string_value(json_object_get(p, "error"));
        if (!why)
            why = json_string_value(json_object_get(p, "reason"));
        step_log(t, type, id, json_string_value(json_object_get(p, "tool")), why);
    }
    orch_tx_event(tx, t, type, "info", NULL, p);
}

static void progress(orch_tx_t *tx, orch_task_t *t, const char *id, const char *label)
{
    json_t *c = json_object_get(t->vars, "counts");
    size_t total = json_array_size(steps_of(t));
    json_int_t done = json_integer_value(json_object_get(c, "done")) +
                      json_integer_value(json_object_get(c, "skipped")) +
                      json_integer_value(json_object_get(c, "failed"));
    char card[48];
    join2(card, sizeof(card), "progress:", t->trace_id);
    orch_tx_progress(tx, t, card, id, label ? label : id, done, (int64_t)total);
}

/* Commits tx for t; `next` says what follows once it is durable. */
static void task_commit(orch_tx_t *tx, orch_task_t *t);

static void finish(orch_task_t *t, orch_tx_t *tx, enum orch_status st, const char *why);
static void advance(orch_task_t *t, orch_tx_t *tx);
static void begin_tool(orch_task_t *t, orch_tx_t *tx, const json_t *step, const json_t *for_step,
                       int attempt);
static void wait_approval(orch_task_t *t, orch_tx_t *tx, const json_t *step, int failure,
                          const char *why);

static void owe_recovery_done(orch_tx_t *tx, orch_task_t *t)
{
    if (!t->recovering)
        return;
    t->recovering = 0;
    char card[48];
    snprintf(card, sizeof(card), "recovery:%s", t->trace_id);
    orch_tx_event(tx, t, "recovery.done", "info", card,
                  json_pack("{s:s, s:I}", "reason", "restart", "cursor", (json_int_t)t->cursor));
}

void orch_task_add_cost(orch_task_t *t, const char *step, double cost)
{
    if (!(cost > 0))
        return;
    json_object_set_new(t->vars, "cost_cny",
                        json_real(json_number_value(json_object_get(t->vars, "cost_cny")) + cost));
    json_t *by = json_object_get(t->vars, "step_costs");
    if (!json_is_object(by)) {
        by = json_object();
        if (json_object_set_new(t->vars, "step_costs", by))
            return;
    }
    const char *key = step ? step : "";
    json_object_set_new(by, key, json_real(json_number_value(json_object_get(by, key)) + cost));
}

json_t *orch_task_costliest(const orch_task_t *t)
{
    enum { TOP = 3 };
    const char *name[TOP] = {0};
    double cost[TOP] = {0};
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(t->vars, "step_costs"), k, v)
    {
        double c = json_number_value(v);
        for (int i = 0; i < TOP; i++) {
            if (c > cost[i]) { /* insert at i, the rest moves down */
                for (int j = TOP - 1; j > i; j--) {
                    name[j] = name[j - 1];
                    cost[j] = cost[j - 1];
                }
                name[i] = k;
                cost[i] = c;
                break;
            }
        }
    }
    if (!name[0])
        return NULL;
    json_t *out = json_array();
    for (int i = 0; out && i < TOP && name[i]; i++)
        json_array_append_new(out, json_pack("{s:s, s:f}", "step", name[i], "cost_cny", cost[i]));
    return out;
}

/* Budget and deadline, before a step: a breach ends the task. */
static int limits_breached(orch_task_t *t, orch_tx_t *tx)
{
    char now[32];
    aos_isotime_now(now);
    const char *what = NULL;
    char why[200];
    double cost = json_number_value(json_object_get(t->vars, "cost_cny"));
    if (t->deadline[0] && strcmp(now, t->deadline) > 0) {
        what = "deadline";
        snprintf(why, sizeof(why), "past the deadline %s", t->deadline);
    } else if (t->budget_cny > 0 && cost > t->budget_cny) {
        what = "budget";
        snprintf(why, sizeof(why), "cost %.4f CNY is over the budget of %.4f CNY", cost,
                 t->budget_cny);
    }
    if (!what)
        return 0;
    char card[64];
    snprintf(card, sizeof(card), "anomaly:%s:%s", t->trace_id, what);
    json_t *payload = json_pack("{s:s, s:s, s:f}", "kind", what, "message", why, "cost_cny", cost);
    json_t *top = orch_task_costliest(t);
    if (payload && top)
        json_object_set_new(payload, "costliest", top);
    else
        json_decref(top);
    orch_tx_event(tx, t, "anomaly.detected", "error", card, payload);
    finish(t, tx, ST_FAILED, why);
    return 1;
}

/* ---- the walk ------------------------------------------------------------------- */

static void skip(orch_task_t *t, orch_tx_t *tx, const json_t *step, const char *why)
{
    char now[32];
    aos_isotime_now(now);
    const char *kind = json_object_get(step, "tool")       ? "tool"
                       : json_object_get(step, "approval") ? "approval"
                                                           : "milestone";
    json_t *out = json_pack("{s:s}", "skipped", why);
    step_row(tx, t, step_id(step), kind, "skipped", 1, t->seq++, NULL, out, NULL, now, now, NULL,
             0);
    json_decref(out);
    step_event(tx, t, "step.skipped", step_id(step), json_pack("{s:s}", "reason", why));
    count(t, "skipped");
}

static void milestone(orch_task_t *t, orch_tx_t *tx, const json_t *step)
{
    char now[32];
    aos_isotime_now(now);
    const char *label = json_string_value(json_object_get(step, "milestone"));
    json_t *out = json_pack("{s:s}", "label", label ? label : "");
    step_row(tx, t, step_id(step), "milestone", "done", 1, t->seq++, NULL, out, NULL, now, now,
             NULL, 0);
    json_decref(out);
    count(t, "done");
    progress(tx, t, step_id(step), label);
}

static void advance(orch_task_t *t, orch_tx_t *tx)
{
    owe_recovery_done(tx, t);
    for (;;) {
        if (t->cancel) {
            finish(t, tx, ST_CANCELLED, "cancelled");
            return;
        }
        const json_t *steps = steps_of(t);
        if (t->cursor >= json_array_size(steps)) {
            finish(t, tx, ST_DONE, NULL);
            return;
        }
        if (limits_breached(t, tx))
            return;
        const json_t *step = json_array_get(steps, t->cursor);
        const char *id = step_id(step);
        if (fallback_only(t, t->cursor, id)) {
            /* one that ran in its step's stead has its rows already */
            if (!json_object_get(json_object_get(t->vars, "fell_back"), id))
                skip(t, tx, step, "runs only as a fallback");
            t->cursor++;
            continue;
        }
        const char *when = json_string_value(json_object_get(step, "when"));
        if (when) {
            int yes = 0;
            aos_err_t e = {0, ""};
            /* a condition naming what a skipped step never produced is false */
            if (aos_plan_when(when, t->scope, &yes, &e) != 0)
                yes = 0;
            if (!yes) {
                skip(t, tx, step, "its condition is false");
                t->cursor++;
                continue;
            }
        }
        if (json_object_get(step, "milestone")) {
            milestone(t, tx, step);
            t->cursor++;
            continue;
        }
        if (json_object_get(step, "approval")) {
            wait_approval(t, tx, step, 0, NULL);
            return;
        }
        begin_tool(t, tx, step, NULL, 1);
        return;
    }
}

static void fail_attempt(orch_task_t *t, orch_tx_t *tx, const json_t *result, const char *why,
                         int code, uint64_t retry_after_s, int final);
static void call_tool(orch_task_t *t);

/* Writes the attempt's start; the call goes once it is durable (at once for
 * a local read-only tool). */
static void begin_tool(orch_task_t *t, orch_tx_t *tx, const json_t *step, const json_t *for_step,
                       int attempt)
{
    const char *id = step_id(step);
    t->cur = step;
    t->cur_for = for_step;
    t->attempt = attempt;
    json_decref(t->cur_input);
    aos_err_t e = {0, ""};
    const json_t *args = json_object_get(step, "args");
    /* args with no '$' in any string (no step's has one) resolve to a copy
     * of themselves: the plan's own value serves, as nothing changes a
     * call's input (the gateway borrows it) */
    t->cur_input =
        args && !scope_read(t) ? json_incref((json_t *)args) : aos_plan_resolve(args, t->scope, &e);
    aos_isotime_now(t->cur_started);
    char key[128];
    idempotency_key(t, id, attempt, key, sizeof(key));
    if (!t->cur_input) {
        /* nothing to call with: the attempt fails at once, for good */
        json_t *err =
            json_pack("{s:s, s:s}", "code", aos_err_code(e.code), "message", aos_err_msg(&e));
        step_row(tx, t, id, "tool", "failed", attempt, t->seq++, NULL, NULL, err, t->cur_started,
                 t->cur_started, key, 0);
        json_decref(err);
        char why[320];
        snprintf(why, sizeof(why), "its arguments: %s", aos_err_msg(&e));
        fail_attempt(t, tx, NULL, why, e.code, 0, 1);
        return;
    }
    step_row(tx, t, id, "tool", "running", attempt, t->seq++, t->cur_input, NULL, NULL,
             t->cur_started, NULL, key, 0);
    t->status = ST_RUNNING;
    orch_tx_state(tx, t, 0);
    const char *tool = json_string_value(json_object_get(step, "tool"));
    step_log(t, "step.started", id, tool, NULL);
    orch_tx_step_started(tx, t, id, tool, attempt, key);
    if (!t->cancel && !t->o->shutting_down && aos_gateway_tool_local(t->o->cfg.gateway, tool)) {
        /* nothing outside aosd can see this call: it need not wait for its
         * start to be durable (the rule is in docs/ORCHESTRATOR.md) */
        t->next = NEXT_NONE;
        t->local_call = 1;
        t->o->local_calls++; /* before the commit: it waits for this call */
        task_commit(tx, t);
        call_tool(t);
        return;
    }
    if (!t->ws_made) {
        /* made before the first tool that may use it (not per task: most
         * of a task's cost when it only runs aosd's own tools) */
        orch_tx_mkdir(tx, t->workspace);
        t->ws_made = 1;
    }
    t->next = NEXT_CALL;
    task_commit(tx, t);
}

static void on_tool_done(json_t *result, const aos_err_t *err, uint64_t retry_after_s, void *data);
static void on_answer(orch_task_t *t, json_t *result, const aos_err_t *err, uint64_t retry_after_s);

/* The task's root span (invoke_workflow), started once per run of aosd: in
 * the task's own trace, as the root the first time, and after a restart
 * under the root's stored id (vars.span_id), whose span was lost with the
 * process: the new steps hang under the same parent as the old ones. */
static void root_span(orch_task_t *t)
{
    aos_trace_t *tr = t->o->cfg.trace;
    if (!tr || t->span)
        return;
    aos_tracectx_t parent;
    memset(&parent, 0, sizeof(parent));
    snprintf(parent.trace_id, sizeof(parent.trace_id), "%s", t->trace_id);
    parent.flags = AOS_TRACE_SAMPLED;
    const char *stored = json_string_value(json_object_get(t->vars, "span_id"));
    if (stored && aos_tracectx_id_valid(stored, AOS_SPAN_ID_LEN))
        snprintf(parent.span_id, sizeof(parent.span_id), "%s", stored);
    const char *goal = json_string_value(json_object_get(t->spec, "goal"));
    char name[160];
    snprintf(name, sizeof(name), "invoke_workflow %.100s%s", goal ? goal : t->trace_id,
             stored ? " (resumed)" : "");
    t->span = aos_trace_span_start(tr, &parent, name, AOS_SPAN_INTERNAL);
    aos_span_set_const(t->span, AOS_ATTR_GEN_AI_OPERATION_NAME, AOS_ATTR_GEN_AI_OP_INVOKE_WORKFLOW);
    aos_span_set_int(t->span, "aos.job.id", t->job_id);
    if (t->project_id)
        aos_span_set_str(t->span, "aos.project.id", t->project_id);
    if (!stored && t->span)
        json_object_set_new(t->vars, "span_id", json_string(aos_span_context(t->span)->span_id));
}

/* The TaskSpec's env opened for one call: {"NAME": "value"} (a new
 * object the caller wipes and frees with env_free), or NULL when the spec
 * has none; on failure NULL with *failed and err naming the variable. */
static json_t *env_open(orch_task_t *t, int *failed, aos_err_t *err)
{
    const json_t *env = json_object_get(t->spec, "env");
    *failed = 0;
    if (!json_is_object(env) || !json_object_size(env))
        return NULL;
    const char *project = json_string_value(json_object_get(t->spec, "project_id"));
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        const char *name = json_string_value(json_object_get(v, "secret"));
        aos_err_t e = {0, ""};
        size_t len = 0;
        char *plain = t->o->cfg.env_open
                          ? t->o->cfg.env_open(name, project, &len, &e, t->o->cfg.env_data)
                          : NULL;
        if (!plain) {
            if (!t->o->cfg.env_open)
                aos_err_set(&e, AOS_EUNAVAIL, "no secret store");
            aos_err_set(err, e.code ? e.code : AOS_EINTERNAL, "env.%.64s: %s", k, aos_err_msg(&e));
            *failed = 1;
            orch_env_free(out);
            return NULL;
        }
        json_object_set_new(out, k, json_stringn(plain, len));
        aos_secret_wipe(plain);
    }
    return out;
}

void orch_env_free(json_t *env)
{
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (json_is_string(v))
            sodium_memzero((char *)json_string_value(v), json_string_length(v));
    }
    json_decref(env);
}

/* What the task's calls may do (c: the spec's constraints), made at its
 * first call and handed to every call after: nothing changes it once made
 * (the gateway keeps a reference for a call and changes nothing in it). */
static json_t *task_caps(orch_task_t *t, const json_t *c)
{
    if (t->caps)
        return t->caps;
    json_t *caps = json_object();
    json_object_set_new_nocheck(caps, "workspace", json_string(t->workspace ? t->workspace : ""));
    json_t *tools = json_object_get(c, "tools"), *http = json_object_get(c, "http");
    if (json_is_array(tools))
        json_object_set(caps, "tools", tools);
    if (json_is_object(http))
        json_object_set(caps, "http", http);
    if (t->project_id) /* where http's {"var"} headers and secrets' scope look */
        json_object_set_new(caps, "project", json_string(t->project_id));
    return t->caps = caps;
}

static void call_tool(orch_task_t *t)
{
    aos_orch_t *o = t->o;
    const json_t *step = t->cur;
    const char *sid = step_id(step);
    char principal[48], key[128];
    join2(principal, sizeof(principal), "task:", t->trace_id);
    idempotency_key(t, sid, t->attempt, key, sizeof(key));
    json_t *caps = task_caps(t, json_object_get(t->spec, "constraints"));
    root_span(t);
    char name[AOS_PLAN_ID_MAX + 16];
    join2(name, sizeof(name), "step ", sid);
    t->step_span =
        aos_trace_span_start(t->o->cfg.trace, aos_span_context(t->span), name, AOS_SPAN_INTERNAL);
    aos_span_set_str(t->step_span, "aos.step.id", sid);
    aos_span_set_int(t->step_span, "aos.step.attempt", t->attempt);
    char tp[AOS_TRACEPARENT_LEN + 1] = "";
    if (t->step_span)
        aos_tracectx_format(aos_span_context(t->step_span), tp);
    const char *tool = json_string_value(json_object_get(step, "tool"));
    aos_err_t env_err = {0, ""};
    int env_failed = 0;
    json_t *env = env_open(t, &env_failed, &env_err);
    if (env_failed) {
        on_tool_done(NULL, &env_err, 0, t);
        return;
    }
    aos_gateway_call_opts_t opts = {
        .caller = {.principal = principal,
                   .caps = caps,
                   .idempotency_key = key,
                   .traceparent = tp[0] ? tp : NULL,
                   .env = env,
                   .on_behalf_of = t->actor},
        .timeout_ms = (uint32_t)json_integer_value(json_object_get(step, "timeout_ms")),
    };
    int rc = aos_gateway_call(o->cfg.gateway, &opts, tool, t->cur_input, on_tool_done, t, &t->call);
    orch_env_free(env); /* the gateway keeps its own copy for the call */
    if (rc) {
        t->call = NULL;
        aos_err_t e = {0, ""};
        aos_err_set(&e, rc, "%s: %s", tool, aos_strerror(rc));
        on_tool_done(NULL, &e, 0, t);
    }
}

/* The Critic's verdict on what the tool answered, then the next move: the
 * step's deterministic checks here, its check.llm (a question for the
 * model) in critic.c, which comes back to orch_task_judged. */
static void on_tool_done(json_t *result, const aos_err_t *err, uint64_t retry_after_s, void *data)
{
    orch_task_t *t = data;
    t->call = NULL;
    if (t->step_span) {
        if (!result)
            aos_span_set_error(t->step_span, aos_err_code(err->code), aos_err_msg(err));
        else if (json_is_true(json_object_get(result, "isError")))
            aos_span_set_error(t->step_span, AOS_ATTR_ERROR_TOOL, NULL);
        aos_span_end(t->step_span);
        t->step_span = NULL;
    }
    if (t->local_call) {
        /* the commit waiting for this call goes once the transition it
         * causes is queued (or now, when none comes) */
        aos_orch_t *o = t->o;
        t->local_call = 0;
        on_answer(t, result, err, retry_after_s);
        orch_tx_local_done(o);
        return;
    }
    on_answer(t, result, err, retry_after_s);
}

/* What a tool answered, for t. */
static void on_answer(orch_task_t *t, json_t *result, const aos_err_t *err, uint64_t retry_after_s)
{
    if (t->broken) { /* a transition before this call failed: it ends */
        json_decref(result);
        return;
    }
    if (t->o->shutting_down) {
        /* the attempt stays "running" in the store: it runs again at the
         * next start, with the same idempotency key */
        json_decref(result);
        return;
    }
    const json_t *check = json_object_get(t->cur, "check");
    char why[512] = "";
    int ok = result && aos_plan_check(check, result, why, sizeof(why)) == 0;
    if (!result)
        snprintf(why, sizeof(why), "%s", aos_err_msg(err));
    const char *question = json_string_value(json_object_get(check, "llm"));
    if (ok && question && !t->cancel) {
        orch_critique(t, result, question);
        return;
    }
    orch_task_judged(t, result, ok ? 0 : (result ? AOS_EINVAL : err->code), why, retry_after_s,
                     NULL, 0);
}

void orch_task_judged(orch_task_t *t, json_t *result, int code, const char *why,
                      uint64_t retry_after_s, json_t *critique, double cost)
{
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx) {
        json_decref(result);
        json_decref(critique);
        aos_log_error("orch", "trace %s: out of memory", t->trace_id);
        return;
    }
    const json_t *step = t->cur;
    const char *id = step_id(step);
    char key[128], now[32];
    idempotency_key(t, id, t->attempt, key, sizeof(key));
    aos_isotime_now(now);
    orch_task_add_cost(t, id, cost);
    if (t->cancel) {
        json_t *e =
            json_pack("{s:s, s:s}", "code", "canceled", "message", "the task was cancelled");
        step_row(tx, t, id, "tool", "failed", t->attempt, 0, NULL, result, e, t->cur_started, now,
                 key, cost);
        json_decref(e);
        json_decref(result);
        json_decref(critique);
        finish(t, tx, ST_CANCELLED, "cancelled");
        return;
    }
    if (code) {
        const char *ecode = !result    ? aos_err_code(code)
                            : critique ? "critique_failed"
                                       : "check_failed";
        json_t *e = json_pack("{s:s, s:s}", "code", ecode, "message", why);
        if (critique)
            json_object_set(e, "critique", critique);
        step_row(tx, t, id, "tool", "failed", t->attempt, 0, NULL, result, e, t->cur_started, now,
                 key, cost);
        json_decref(e);
        json_t *more = json_pack("{s:i, s:s}", "attempt", t->attempt, "error", why);
        if (critique)
            json_object_set(more, "critique", critique);
        step_event(tx, t, "step.failed", id, more);
        fail_attempt(t, tx, result, why, result ? AOS_EINVAL : code, retry_after_s, 0);
        json_decref(result);
        json_decref(critique);
        return;
    }
    step_row(tx, t, id, "tool", "done", t->attempt, 0, NULL, result, NULL, t->cur_started, now, key,
             cost);
    if (scope_read(t)) {
        orch_scope_add_step(t->scope, "tool", id, result);
        if (t->cur_for) /* a fallback's result stands for the step it replaced */
            orch_scope_add_step(t->scope, "tool", step_id(t->cur_for), result);
    }
    json_decref(result);
    count(t, "done");
    json_t *more = obj(1, "attempt", json_integer(t->attempt));
    if (critique)
        json_object_set(more, "critique", critique);
    json_decref(critique);
    step_event(tx, t, "step.finished", id, more);
    if (json_object_get(t->vars, "retrying")) {
        char card[64];
        snprintf(card, sizeof(card), "recovery:%s:%s", t->trace_id, id);
        orch_tx_event(tx, t, "recovery.done", "info", card,
                      json_pack("{s:s, s:i, s:s}", "step", id, "attempts", t->attempt, "reason",
                                "the step succeeded again"));
        json_object_del(t->vars, "retrying");
    }
    progress(tx, t, id, json_string_value(json_object_get(step, "tool")));
    t->cur = t->cur_for = NULL;
    t->cursor++;
    advance(t, tx);
}

/* An attempt of the current tool step failed (why); final: no retry. */
static void fail_attempt(orch_task_t *t, orch_tx_t *tx, const json_t *result, const char *why,
                         int code, uint64_t retry_after_s, int final)
{
    const json_t *step = t->cur;
    const char *id = step_id(step);
    const json_t *retry = json_object_get(step, "retry");
    int max = (int)json_integer_value(json_object_get(retry, "max"));
    const char *tool = json_string_value(json_object_get(step, "tool"));
    /* the anomaly, with the gateway's kind of fingerprint: server, tool, class, message */
    char fp[17], server[80] = "";
    const char *sep = tool ? strstr(tool, "__") : NULL;
    if (sep)
        snprintf(server, sizeof(server), "%.*s", (int)(sep - tool), tool);
    aos_fingerprint(server, sep ? sep + 2 : (tool ? tool : ""), aos_err_code(code), why, fp);
    int again = !final && t->attempt <= max && code != AOS_EFORBIDDEN;
    char card[80];
    snprintf(card, sizeof(card), "anomaly:%s:%s:%d", t->trace_id, id, t->attempt);
    orch_tx_event(tx, t, "anomaly.detected", again ? "warning" : "error", card,
                  json_pack("{s:s, s:s, s:s, s:i, s:s, s:s, s:b}", "kind", "step_failure", "step",
                            id, "tool", tool ? tool : "", "attempt", t->attempt, "message", why,
                            "fingerprint", fp, "retrying", again));
    if (again) {
        uint64_t backoff = (uint64_t)json_integer_value(json_object_get(retry, "backoff_ms"));
        uint64_t delay = backoff << (t->attempt - 1 < 16 ? t->attempt - 1 : 16);
        if (retry_after_s * 1000 > delay)
            delay = retry_after_s * 1000;
        if (delay > 600000)
            delay = 600000;
        char rcard[64];
        snprintf(rcard, sizeof(rcard), "recovery:%s:%s", t->trace_id, id);
        orch_tx_event(tx, t, "recovery.start", "info", rcard,
                      json_pack("{s:s, s:i, s:I, s:s}", "step", id, "attempt", t->attempt + 1,
                                "in_ms", (json_int_t)delay, "reason", why));
        json_object_set_new(t->vars, "retrying", json_string(id));
        orch_tx_state(tx, t, 0);
        t->next = NEXT_RETRY;
        t->next_delay_ms = delay;
        task_commit(tx, t);
        return;
    }
    json_object_del(t->vars, "retrying");
    const char *fb = json_string_value(json_object_get(step, "fallback"));
    if (fb && !t->cur_for) {
        const json_t *fstep = step_by_id(t, fb);
        if (fstep && json_object_get(fstep, "tool")) {
            count(t, "failed");
            json_t *fell = json_object_get(t->vars, "fell_back");
            if (!fell)
                json_object_set_new(t->vars, "fell_back", fell = json_object());
            json_object_set_new(fell, fb, json_true());
            begin_tool(t, tx, fstep, step, 1);
            return;
        }
    }
    const json_t *for_step = t->cur_for ? t->cur_for : step;
    count(t, "failed");
    if (json_is_true(json_object_get(for_step, "optional"))) {
        t->cur = t->cur_for = NULL;
        t->cursor++;
        advance(t, tx);
        return;
    }
    const char *policy =
        json_string_value(json_object_get(json_object_get(t->spec, "constraints"), "approval"));
    if (!policy || strcmp(policy, "never") != 0) {
        wait_approval(t, tx, for_step, 1, why);
        return;
    }
    char msg[600];
    snprintf(msg, sizeof(msg), "step '%s' failed: %s", step_id(for_step), why);
    finish(t, tx, ST_FAILED, msg);
}

/* ---- approvals ------------------------------------------------------------------------ */

static void iso_in(uint64_t secs, char out[32])
{
    aos_isotime_fmt(aos_isotime_now_ms() + (int64_t)secs * 1000, out);
}

/* Seconds from now to an ISO-8601 UTC time (0 if past or unreadable). */
static uint64_t secs_until(const char *iso)
{
    int64_t when, now = aos_isotime_now_ms();
    if (aos_isotime_parse(iso, 0, &when) != 0 || when <= now)
        return 0;
    return (uint64_t)(when - now + 999) / 1000;
}

static void wait_approval(orch_task_t *t, orch_tx_t *tx, const json_t *step, int failure,
                          const char *why)
{
    const char *id = step_id(step);
    const json_t *a = json_object_get(step, "approval");
    const json_t *c = json_object_get(t->spec, "constraints");
    char message[1200], deadline[32];
    uint64_t timeout;
    json_t *decisions;
    if (failure) {
        snprintf(message, sizeof(message),
                 "Step '%s' failed: %.900s. Continue (run it again), downgrade (go on without "
                 "it) or abort?",
                 id, why ? why : "");
        json_int_t ts = json_integer_value(json_object_get(c, "approval_timeout_s"));
        timeout = ts > 0 ? (uint64_t)ts : 3600;
        decisions = json_pack("[s, s, s]", "continue", "downgrade", "abort");
    } else {
        const char *raw = json_string_value(json_object_get(a, "message"));
        aos_err_t e = {0, ""};
        json_t *m = raw ? aos_plan_resolve(json_object_get(a, "message"), t->scope, &e) : NULL;
        snprintf(message, sizeof(message), "%s",
                 json_is_string(m) ? json_string_value(m) : (raw ? raw : "Approve?"));
        json_decref(m);
        timeout = (uint64_t)json_integer_value(json_object_get(a, "timeout_s"));
        decisions = json_pack("[s, s, s, s]", "approve", "continue", "downgrade", "abort");
    }
    iso_in(timeout, deadline);
    char now[32];
    aos_isotime_now(now);
    orch_tx_approval_put(tx, t->trace_id, id, message, decisions, deadline);
    if (!failure)
        step_row(tx, t, id, "approval", "running", 1, t->seq++, NULL, NULL, NULL, now, NULL, NULL,
                 0);
    t->status = ST_WAITING;
    snprintf(t->waiting, sizeof(t->waiting), "%s", id);
    t->waiting_failure = failure;
    json_t *w = json_pack("{s:s, s:b, s:s}", "step", id, "failure", failure, "deadline", deadline);
    if (failure) { /* what a decision to continue runs again */
        json_object_set_new(w, "cur", json_string(step_id(t->cur)));
        json_object_set_new(w, "attempt", json_integer(t->attempt));
        if (t->cur_for)
            json_object_set_new(w, "cur_for", json_string(step_id(t->cur_for)));
    }
    json_object_set_new(t->vars, "waiting", w);
    orch_tx_state(tx, t, 0);
    orch_tx_job_update(tx, t->trace_id, "waiting", NULL, NULL, NULL);
    char card[AOS_PLAN_ID_MAX + 48];
    snprintf(card, sizeof(card), "approval:%s:%s", t->trace_id, id);
    orch_tx_event(tx, t, "approval.request", "warning", card,
                  json_pack("{s:s, s:s, s:o, s:s, s:b, s:I}", "step", id, "message", message,
                            "decisions", decisions, "deadline", deadline, "failure", failure,
                            "timeout_s", (json_int_t)timeout));
    t->next = NEXT_WAIT;
    t->next_delay_ms = timeout * 1000;
    task_commit(tx, t);
}

static int allowed(const orch_task_t *t, const char *decision)
{
    static const char *const gate[] = {"approve", "continue", "downgrade", "abort", NULL};
    static const char *const failed[] = {"continue", "downgrade", "abort", NULL};
    const char *const *v = t->waiting_failure ? failed : gate;
    for (int i = 0; v[i]; i++)
        if (!strcmp(v[i], decision))
            return 1;
    return 0;
}

static void apply_decision(orch_task_t *t, orch_tx_t *tx, const char *decision, const char *comment,
                           const char *actor)
{
    char id[AOS_PLAN_ID_MAX + 1], now[32];
    snprintf(id, sizeof(id), "%s", t->waiting);
    aos_isotime_now(now);
    timer_stop(t);
    orch_tx_approval_decide(tx, t->trace_id, id, "decided", decision, comment, actor);
    /* the request's card, decided: every Chat Hub showing it drops its
     * buttons, whoever decided and wherever */
    char card[AOS_PLAN_ID_MAX + 48];
    snprintf(card, sizeof(card), "approval:%s:%s", t->trace_id, id);
    orch_tx_event(tx, t, "approval.decided", "info", card,
                  json_pack("{s:s, s:s, s:s?, s:s, s:b}", "step", id, "decision", decision,
                            "comment", comment, "actor", actor, "failure", t->waiting_failure));
    orch_tx_audit(
        tx, actor, "task.decide", t->trace_id,
        json_pack("{s:s, s:s, s:s?}", "step", id, "decision", decision, "comment", comment));
    json_object_set_new(json_object_get(t->vars, "decided"), id, json_string(decision));
    json_object_del(t->vars, "waiting");
    t->waiting[0] = '\0';
    t->status = ST_RUNNING;
    orch_tx_job_update(tx, t->trace_id, "running", NULL, NULL, NULL);
    owe_recovery_done(tx, t);
    if (!strcmp(decision, "downgrade"))
        json_object_set_new(t->vars, "downgraded", json_true());
    if (!t->waiting_failure) {
        json_t *out =
            json_pack("{s:s, s:s?, s:s}", "decision", decision, "comment", comment, "actor", actor);
        step_row(tx, t, id, "approval", "done", 1, 0, NULL, out, NULL, now, now, NULL, 0);
        orch_scope_add_step(t->scope, "approval", id, out);
        json_decref(out);
        if (!strcmp(decision, "abort")) {
            char why[200];
            snprintf(why, sizeof(why), "aborted at '%s' by %s", id, actor);
            finish(t, tx, ST_FAILED, why);
            return;
        }
        count(t, "done");
        t->cursor++;
        advance(t, tx);
        return;
    }
    /* about a failed tool step (t->cur, t->cur_for) */
    if (!strcmp(decision, "continue")) {
        json_object_set_new(t->vars, "retrying", json_string(step_id(t->cur)));
        /* the failure was counted: this attempt may end it otherwise */
        json_t *c = json_object_get(t->vars, "counts");
        json_object_set_new(c, "failed",
                            json_integer(json_integer_value(json_object_get(c, "failed")) - 1));
        begin_tool(t, tx, t->cur, t->cur_for, t->attempt + 1);
        return;
    }
    if (!strcmp(decision, "abort")) {
        char why[200];
        snprintf(why, sizeof(why), "aborted after step '%s' failed, by %s", id, actor);
        finish(t, tx, ST_FAILED, why);
        return;
    }
    t->cur = t->cur_for = NULL; /* downgrade: on without it */
    t->cursor++;
    advance(t, tx);
}

int orch_task_decide(orch_task_t *t, const char *step_id_, const char *decision,
                     const char *comment, const char *actor, void (*reply)(orch_tx_t *tx),
                     void *data, aos_err_t *err)
{
    if (t->status != ST_WAITING || t->busy || strcmp(t->waiting, step_id_) != 0)
        return aos_err_set(err, AOS_ECONFLICT, "task %s is not waiting for a decision on '%.64s'",
                           t->trace_id, step_id_);
    if (!allowed(t, decision))
        return aos_err_set(err, AOS_EINVAL, "'%.32s' is not a decision for '%.64s'%s", decision,
                           step_id_,
                           t->waiting_failure ? " (continue, downgrade or abort)"
                                              : " (approve, continue, downgrade or abort)");
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    tx->reply = reply;
    tx->reply_data = data;
    apply_decision(t, tx, decision, comment, actor);
    return 0;
}

static void on_deadline(uv_timer_t *h)
{
    orch_task_t *t = h->data;
    if (!t || t->status != ST_WAITING)
        return;
    if (t->busy) { /* a transition is committing: try again soon */
        uv_timer_start(h, on_deadline, 100, 0);
        return;
    }
    const char *on = "abort";
    if (!t->waiting_failure) {
        const json_t *step = step_by_id(t, t->waiting);
        const char *v =
            json_string_value(json_object_get(json_object_get(step, "approval"), "on_timeout"));
        if (v)
            on = v;
    }
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx)
        return;
    char card[AOS_PLAN_ID_MAX + 64];
    snprintf(card, sizeof(card), "anomaly:%s:%s:timeout", t->trace_id, t->waiting);
    orch_tx_event(tx, t, "anomaly.detected", "warning", card,
                  json_pack("{s:s, s:s, s:s}", "kind", "approval_timeout", "step", t->waiting,
                            "decision", on));
    apply_decision(t, tx, !strcmp(on, "approve") ? "approve" : on,
                   "no decision before the deadline", "aosd:timeout");
}

static void on_retry(uv_timer_t *h)
{
    orch_task_t *t = h->data;
    if (!t)
        return;
    timer_stop(t);
    if (t->o->shutting_down)
        return;
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx)
        return;
    if (t->cancel) {
        finish(t, tx, ST_CANCELLED, "cancelled");
        return;
    }
    begin_tool(t, tx, t->cur, t->cur_for, t->attempt + 1);
}

void orch_task_planned(orch_task_t *t, orch_tx_t *tx)
{
    advance(t, tx);
}

void orch_task_abandon(orch_task_t *t, orch_tx_t *tx, const char *why)
{
    if (!why || t->cancel)
        finish(t, tx, ST_CANCELLED, "cancelled");
    else
        finish(t, tx, ST_FAILED, why);
}

void orch_task_retry_now(orch_task_t *t)
{
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx)
        return;
    owe_recovery_done(tx, t);
    begin_tool(t, tx, t->cur, t->cur_for, t->attempt + 1);
}

static void arm(orch_task_t *t, uint64_t ms, uv_timer_cb cb)
{
    timer_stop(t);
    t->timer = malloc(sizeof(*t->timer));
    if (!t->timer)
        return;
    uv_timer_init(t->o->cfg.loop, t->timer);
    t->timer->data = t;
    uv_timer_start(t->timer, cb, ms, 0);
}

/* ---- the end ---------------------------------------------------------------------- */

static void finish(orch_task_t *t, orch_tx_t *tx, enum orch_status st, const char *why)
{
    char now[32];
    aos_isotime_now(now);
    timer_stop(t);
    t->status = st;
    if (st == ST_CANCELLED && t->cancel_actor) {
        orch_tx_audit(tx, t->cancel_actor, "task.cancel", t->trace_id, NULL);
        free(t->cancel_actor);
        t->cancel_actor = NULL;
    }
    if (st == ST_CANCELLED && t->cancel_reply && !tx->reply) {
        tx->reply = t->cancel_reply;
        tx->reply_data = t->cancel_data;
        t->cancel_reply = NULL;
    }
    json_object_del(t->vars, "waiting");
    if (t->waiting[0]) {
        orch_tx_approval_decide(tx, t->trace_id, t->waiting, "cancelled", NULL, why, "aosd");
        t->waiting[0] = '\0';
    }
    orch_tx_state(tx, t, 0);
    json_t *error = why ? json_pack("{s:s}", "message", why) : NULL;
    orch_tx_job_update(tx, t->trace_id, orch_status_name(st), NULL, now, error);
    orch_tx_trace_update(tx, t, now);
    double cost = json_number_value(json_object_get(t->vars, "cost_cny"));
    uint64_t latency = t->started_ms ? uv_now(t->o->cfg.loop) - t->started_ms : 0;
    /* status first: a reader may tell a done receipt from its text's start
     * (the Analyzer does) */
    char episode[64], trace[64];
    join2(episode, sizeof(episode), "/api/episodes/", t->trace_id);
    join2(trace, sizeof(trace), "/api/traces/", t->trace_id);
    json_t *counts = json_object_get(t->vars, "counts");
    json_t *payload =
        obj(6, "status", json_string(orch_status_name(st)), "summary",
            counts ? json_incref(counts) : NULL, "downgraded",
            json_boolean(json_is_true(json_object_get(t->vars, "downgraded"))), "cost_cny",
            json_real(cost), "latency_ms", json_integer((json_int_t)latency), "links",
            obj(2, "episode", json_string(episode), "trace", json_string(trace)));
    if (why)
        json_object_set_new(payload, "error", json_string(why));
    json_t *top = orch_task_costliest(t);
    if (payload && top)
        json_object_set_new(payload, "costliest", top);
    else
        json_decref(top);
    json_decref(error);
    orch_tx_receipt(tx, t, payload);
    if (t->span) {
        if (st == ST_DONE)
            aos_span_set_status(t->span, AOS_SPAN_OK, NULL);
        else
            aos_span_set_error(t->span, orch_status_name(st), why);
        aos_span_set_double(t->span, "aos.cost_cny", cost);
        aos_span_end(t->span);
        t->span = NULL;
    }
    t->next = NEXT_END;
    task_commit(tx, t);
}

int orch_task_cancel(orch_task_t *t, const char *actor, void (*reply)(orch_tx_t *tx), void *data,
                     aos_err_t *err)
{
    if (t->status >= ST_DONE || t->cancel)
        return aos_err_set(err, AOS_ECONFLICT, "task %s is %s already", t->trace_id,
                           t->cancel ? "being cancelled" : orch_status_name(t->status));
    if (!(t->cancel_actor = strdup(actor ? actor : "unknown")))
        return aos_err_set(err, AOS_ENOMEM, NULL);
    t->cancel = 1;
    if (t->llm_call && !t->busy) {
        t->cancel_reply = reply;
        t->cancel_data = data;
        aos_llm_cancel(t->llm_call);
        return 0;
    }
    if (t->busy || t->call) {
        /* the transition or the call in flight ends it, and the reply
         * comes with that end; the call is cut short now (the server
         * hears notifications/cancelled) */
        t->cancel_reply = reply;
        t->cancel_data = data;
        if (t->call && !t->busy)
            aos_gateway_call_cancel(t->call);
        return 0;
    }
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    tx->reply = reply;
    tx->reply_data = data;
    finish(t, tx, ST_CANCELLED, "cancelled");
    return 0;
}

/* ---- commits and what follows them ------------------------------------------------- */

static void committed(orch_tx_t *tx)
{
    orch_task_t *t = tx->task;
    t->busy--;
    if (tx->status && !t->broken) {
        /* the store refused the move: the task is as the store says; it
         * runs again from there at the next start. What it queued after
         * this move is not written. */
        aos_log(AOS_LOG_ERROR, "orch", json_pack("{s:s}", "trace_id", t->trace_id),
                "task %s: a transition failed: %s", t->trace_id, aos_err_msg(&tx->err));
        t->broken = 1;
        t->status = ST_FAILED;
        orch_tx_drop_queued(t->o, t);
    }
    if (t->broken) {
        if (t->call) /* a local tool's, started before this commit */
            aos_gateway_call_cancel(t->call);
        if (!t->busy)
            orch_task_ended(t);
        return;
    }
    if (t->o->shutting_down && tx->then != NEXT_END)
        return;
    switch (tx->then) {
    case NEXT_PLAN:
        if (t->cancel) {
            orch_tx_t *c = orch_tx_new(t->o, t);
            if (c)
                finish(t, c, ST_CANCELLED, "cancelled");
            return;
        }
        orch_plan_llm(t);
        break;
    case NEXT_CALL:
        if (t->cancel) {
            orch_tx_t *c = orch_tx_new(t->o, t);
            if (c)
                finish(t, c, ST_CANCELLED, "cancelled");
            return;
        }
        call_tool(t);
        break;
    case NEXT_WAIT:
        arm(t, tx->then_delay_ms, on_deadline);
        if (t->cancel) {
            orch_tx_t *c = orch_tx_new(t->o, t);
            if (c)
                finish(t, c, ST_CANCELLED, "cancelled");
        }
        break;
    case NEXT_RETRY:
        arm(t, tx->then_delay_ms, on_retry);
        break;
    case NEXT_END:
        orch_task_ended(t);
        break;
    case NEXT_NONE:
        break;
    }
}

static void task_commit(orch_tx_t *tx, orch_task_t *t)
{
    t->busy++;
    tx->then = t->next;
    tx->then_delay_ms = t->next_delay_ms;
    tx->done = committed;
    orch_tx_commit(tx);
}

/* ---- starting ---------------------------------------------------------------------- */

void orch_task_run(orch_task_t *t)
{
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx) {
        aos_log_error("orch", "task %s: out of memory", t->trace_id);
        return;
    }
    if (!t->started_ms)
        t->started_ms = uv_now(t->o->cfg.loop);
    root_span(t);
    if (t->status == ST_QUEUED) {
        aos_isotime_now(t->started_at);
        t->status = ST_RUNNING;
        orch_tx_job_update(tx, t->trace_id, "running", t->started_at, NULL, NULL);
        if (!t->plan) { /* the model plans it, once this is durable */
            orch_tx_state(tx, t, 0);
            t->next = NEXT_PLAN;
            task_commit(tx, t);
            return;
        }
        /* no state row of its own here: every way advance ends writes one
         * into this transaction (a tool's start, an approval's wait, a
         * retry, the end), which would replace it */
        advance(t, tx);
        return;
    }
    if (t->status == ST_WAITING) {
        /* recovered while waiting: the deadline goes on from the store */
        owe_recovery_done(tx, t);
        const json_t *w = json_object_get(t->vars, "waiting");
        t->next = NEXT_WAIT;
        t->next_delay_ms = secs_until(json_string_value(json_object_get(w, "deadline"))) * 1000;
        task_commit(tx, t);
        return;
    }
    if (!t->plan) { /* recovered before its plan was made */
        owe_recovery_done(tx, t);
        t->next = NEXT_PLAN;
        task_commit(tx, t);
        return;
    }
    if (t->cur) {
        /* recovered with an attempt in flight: the same attempt again, so
         * the same idempotency key */
        owe_recovery_done(tx, t);
        t->next = NEXT_CALL;
        task_commit(tx, t);
        return;
    }
    advance(t, tx);
}
