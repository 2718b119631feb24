/* internal.h - shared inside the orchestrator only.
 *
 * Objects and who owns them:
 *   aos_orch_t   owns the tasks it knows (by trace id and by job id), the
 *                run queue and the group commit.
 *   orch_task_t  one task in memory while it is unfinished (queued,
 *                running, waiting); freed once it ends and nothing of it
 *                is in flight. What it is is in the store; the struct
 *                holds what the loop needs to go on without reading it.
 *   orch_tx_t    one transition: the operations a task's change writes,
 *                run in one savepoint of a group commit (commit.c); owns
 *                its operations.
 *   orch_op_t    one write of a transition (a step row, the task state, an
 *                event ...), run on the store's worker. */
#ifndef AOS_ORCH_INTERNAL_H
#define AOS_ORCH_INTERNAL_H

#include "orch/orch.h"
#include "buf/buf.h"
#include "map/map.h"
#include "plan/plan.h"

#include <stdint.h>

typedef struct orch_task orch_task_t;
typedef struct orch_tx orch_tx_t;
typedef struct orch_op orch_op_t;

enum orch_status { ST_QUEUED, ST_RUNNING, ST_WAITING, ST_DONE, ST_FAILED, ST_CANCELLED };
const char *orch_status_name(enum orch_status s);

/* ---- transitions (commit.c) -------------------------------------------- */

#define ORCH_OP_STRS 10
struct orch_op {
    orch_op_t *next;
    int (*run)(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err);
    /* strings in the operation's own block (orch_tx_op), freed with it;
     * what each means is up to run. Coalescing moves them between the
     * operations of one transition, all freed together. */
    char *s[ORCH_OP_STRS];
    int64_t n[3];
    double x;
    json_t *json; /* owned */
};

/* One group commit: the transitions taken together, on the worker from its
 * submission until its done callback (commit.c). */
typedef struct orch_batch orch_batch_t;
/* Group commits on the store's queue at once: the next is taken while the
 * worker writes one, so the loop and the worker need not take turns. */
#define ORCH_MAX_INFLIGHT 2

struct orch_tx {
    aos_orch_t *o;
    orch_task_t *task; /* may be NULL */
    orch_op_t *ops, **tail;
    int status; /* after the commit: 0 or an AOS_E* code, with err */
    aos_err_t err;
    int64_t job_id; /* set by an OP_JOB_INSERT */
    int nomem;      /* an operation could not be built: the commit fails */
    /* on the loop once committed (or failed), reply first (the API caller
     * waiting for it), then done (the task's next move); either may be
     * NULL. They free nothing: the tx is freed after they return. */
    void (*reply)(orch_tx_t *tx);
    void *reply_data;
    void (*done)(orch_tx_t *tx);
    orch_tx_t *next;
    /* what the task does once this commits (task.c: t->next when queued) */
    int then;
    int dropped; /* an earlier transition of its task failed: not written */
    uint64_t then_delay_ms;
    /* the task's previous transition in the same group commit (set on the
     * loop when the group is taken; read on the worker): if that one
     * failed, this one is not written */
    orch_tx_t *after;
    /* the transition of the same task, earlier in the same group commit,
     * whose savepoint took this one's operations (commit.c), or NULL */
    orch_tx_t *into;
};

orch_tx_t *orch_tx_new(aos_orch_t *o, orch_task_t *t);
/* Queues tx for the next group commit (and starts one if none is in
 * flight). tx->done runs on the loop afterwards. */
void orch_tx_commit(orch_tx_t *tx);
void orch_tx_free(orch_tx_t *tx);
/* A local read-only tool call ended (task.c): the group commit that
 * waited for the transitions it causes may go. */
void orch_tx_local_done(aos_orch_t *o);
/* A transition of t failed: those of t still queued are not written. */
void orch_tx_drop_queued(aos_orch_t *o, orch_task_t *t);

/* A new operation at the end of tx, its n strings (NULL stays NULL)
 * copied into the one block that holds it; NULL (and tx->nomem set) on no
 * memory. */
orch_op_t *orch_tx_op(orch_tx_t *tx,
                      int (*run)(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err),
                      int n, const char *const *strs);
/* The writes a transition may hold; strings are copied. */
void orch_tx_job_insert(orch_tx_t *tx, orch_task_t *t);
void orch_tx_job_update(orch_tx_t *tx, const char *trace_id, const char *status,
                        const char *started_at, const char *finished_at, const json_t *error);
void orch_tx_trace_update(orch_tx_t *tx, orch_task_t *t, const char *finished_at);
/* the task's state row from t (plan written when with_plan) */
void orch_tx_state(orch_tx_t *tx, orch_task_t *t, int with_plan);
void orch_tx_step(orch_tx_t *tx, const aos_store_step_t *s);
/* orch_tx_step with input, output and error the JSON texts of these (each
 * may be NULL); s's three strings are set to what was written. */
void orch_tx_step_json(orch_tx_t *tx, aos_store_step_t *s, const json_t *input,
                       const json_t *output, const json_t *error);
void orch_tx_approval_put(orch_tx_t *tx, const char *trace_id, const char *step_id,
                          const char *message, const json_t *decisions, const char *deadline);
void orch_tx_approval_decide(orch_tx_t *tx, const char *trace_id, const char *step_id,
                             const char *status, const char *decision, const char *comment,
                             const char *actor);
/* The step.started event of t's attempt of step_id (made when it is
 * written, if its end does not take it over in the same savepoint). */
void orch_tx_step_started(orch_tx_t *tx, orch_task_t *t, const char *step_id, const char *tool,
                          int attempt, const char *key);
/* task.progress.milestone of t on card ({done, total, step, label}; made
 * when it is written, and only the newest of the card in a savepoint). */
void orch_tx_progress(orch_tx_t *tx, orch_task_t *t, const char *card, const char *step_id,
                      const char *label, int64_t done, int64_t total);
/* An event: type, severity, payload (stolen); card_id may be NULL. */
void orch_tx_event(orch_tx_t *tx, orch_task_t *t, const char *type, const char *severity,
                   const char *card_id, json_t *payload);
/* task.receipt with the artifacts of the task's workspace, listed on the worker. */
void orch_tx_receipt(orch_tx_t *tx, orch_task_t *t, json_t *payload);
void orch_tx_mkdir(orch_tx_t *tx, const char *path);
void orch_tx_message(orch_tx_t *tx, const char *conversation_id, const char *title,
                     const char *actor, const char *role, const char *content, const char *dsl,
                     const char *trace_id);
/* The audit row of a change someone asked for (aos_store_audit_append, in
 * the transition's savepoint); diff is stolen (may be NULL). */
void orch_tx_audit(orch_tx_t *tx, const char *actor, const char *action, const char *trace_id,
                   json_t *diff);

/* ---- tasks (task.c) ----------------------------------------------------------- */

struct orch_task {
    aos_orch_t *o;
    int64_t job_id;
    json_t *spec;  /* the TaskSpec */
    json_t *plan;  /* normalized; NULL until planned */
    json_t *scope; /* {"inputs", "steps": {id: {result | decision}}, "task"} */
    json_t *vars;  /* {"decided": {id: decision}, "downgraded": bool, "cost_cny": n} */
    /* what the walk asks of the plan's steps, found once (task.c plan_info;
     * a task's plan does not change once it has one) */
    const json_t *info_plan;  /* the plan it was found in, or NULL */
    const json_t *info_steps; /* its steps */
    unsigned char *info_fb;   /* per step: another names it as fallback */
    int info_scope;           /* a step's when, args or message may read the scope */
    json_t *caps;             /* what its calls may do: made at the first (call_tool) */
    char *project_id;
    char *actor;
    char *workspace;
    uint64_t not_before; /* scheduled_at, in uv_now ms; 0: at once */
    size_t cursor;       /* index of the plan step to run next, or the one running */
    int64_t seq;         /* the next step row's order */
    /* the attempt in flight (a tool step) */
    const json_t *cur;     /* the step (borrowed from plan) */
    const json_t *cur_for; /* the plan step it stands in for (a fallback), or NULL */
    json_t *cur_input;
    aos_gateway_call_t *call;
    uv_timer_t *timer;                   /* retry back-off or approval deadline */
    uint64_t started_ms;                 /* uv_now when it began running */
    double budget_cny;                   /* 0: none */
    void (*cancel_reply)(orch_tx_t *tx); /* who waits for a cancel to end */
    void *cancel_data;
    char *cancel_actor;       /* who asked for the cancel (audited with the end) */
    orch_tx_t *batch_last;    /* its transition in the group commit batch_gen */
    orch_task_t *q_next;      /* in the run queue */
    aos_span_t *span;         /* invoke_workflow: from the start (or a restart) to the end */
    aos_span_t *step_span;    /* the tool step's attempt in flight */
    aos_llm_call_t *llm_call; /* the planner's or the Critic's model call in flight */
    uint64_t next_delay_ms;   /* NEXT_RETRY: the back-off; NEXT_WAIT: to the deadline */
    int priority;
    enum orch_status status;
    int attempt;
    int waiting_failure; /* it asks about a failed step (cur) */
    int busy;            /* its transitions queued or committing (a local read-only
                            tool step does not wait for its start to be durable,
                            so there may be several) */
    int broken;          /* one of them failed: it ends once none is left */
    int ws_made;         /* its workspace directory is made (or queued) */
    int local_call;      /* the call in flight is a local read-only tool's */
    int cancel;          /* a cancel waits for the transition in flight */
    int recovering;      /* recovery.done is owed */
    unsigned batch_gen;  /* the group commit batch_last belongs to */
    int running_slot;    /* counted in the running tasks */
    /* what to do once the transition in flight commits */
    enum { NEXT_NONE, NEXT_PLAN, NEXT_CALL, NEXT_WAIT, NEXT_RETRY, NEXT_END } next;
    char trace_id[33];
    char cur_started[32];
    char started_at[32];
    char deadline[32];                 /* ISO-8601, "" = none */
    char waiting[AOS_PLAN_ID_MAX + 1]; /* the approval waited for, or "" */
};

orch_task_t *orch_task_new(aos_orch_t *o, const char *trace_id);
void orch_task_free(orch_task_t *t);
/* Starts or goes on with a task that may run (scheduled): runs steps until
 * one has to wait for a tool, a person or a timer. */
void orch_task_run(orch_task_t *t);
/* A decision on the approval t waits for: AOS_ECONFLICT (with err) if it
 * does not wait for step_id now, AOS_EINVAL for a decision the approval
 * does not allow. Else reply(tx) runs once the decision is durable (or
 * failed: tx->status), and the task goes on. */
int orch_task_decide(orch_task_t *t, const char *step_id, const char *decision, const char *comment,
                     const char *actor, void (*reply)(orch_tx_t *tx), void *data, aos_err_t *err);
/* The LLM planner has made t's plan (t->plan set): its rows are in tx;
 * the task goes on with its steps. */
void orch_task_planned(orch_task_t *t, orch_tx_t *tx);
/* t cannot go on: it ends failed with why (NULL: it was cancelled), in tx. */
void orch_task_abandon(orch_task_t *t, orch_tx_t *tx, const char *why);
/* Adds cost (CNY) to t's total (vars.cost_cny) and to step's share
 * (vars.step_costs[step]); nothing for cost <= 0. */
void orch_task_add_cost(orch_task_t *t, const char *step, double cost);
/* The costliest steps of t so far: [{step, cost_cny}], at most 3, the
 * costliest first; NULL when nothing cost anything. New reference. */
json_t *orch_task_costliest(const orch_task_t *t);
/* planner.c: asks the model for t's plan (t->plan NULL, t running). */
void orch_plan_llm(orch_task_t *t);
/* planner.c: the `chat {model}` span of one model call, under t's span. */
void orch_chat_span(orch_task_t *t, const aos_llm_result_t *r);
/* critic.c: asks the model whether result (owned) of t's step in flight
 * meets question (the step's check.llm); orch_task_judged follows. */
void orch_critique(orch_task_t *t, json_t *result, const char *question);
/* The Critic's verdict on the attempt in flight: code 0 (passed) or the
 * failure's AOS_E* code with why; result (owned, NULL when the call
 * failed), critique (owned, may be NULL: the model's verdict) and its
 * cost go into the attempt's row; then the next move. */
void orch_task_judged(orch_task_t *t, json_t *result, int code, const char *why,
                      uint64_t retry_after_s, json_t *critique, double cost);
/* A recovered task that was between two attempts: the next goes now. */
void orch_task_retry_now(orch_task_t *t);
/* Cancels t (queued, running or waiting); reply(tx) once it is durable.
 * AOS_ECONFLICT if t is cancelled already. */
int orch_task_cancel(orch_task_t *t, const char *actor, void (*reply)(orch_tx_t *tx), void *data,
                     aos_err_t *err);
/* The scope of a task from its stored steps (recovery, re-run). */
int orch_scope_add_step(json_t *scope, const char *kind, const char *step_id, const json_t *output);
json_t *orch_scope_new(orch_task_t *t, const json_t *inputs);

/* ---- the orchestrator (orch.c) -------------------------------------------------- */

struct aos_orch_s {
    aos_orch_cfg_t cfg;
    char *data_dir;
    aos_map_t tasks;    /* trace id -> orch_task_t */
    aos_map_t jobs;     /* job id -> orch_task_t */
    orch_task_t *queue; /* queued tasks, by priority then job id */
    unsigned running;
    aos_map_t per_project;  /* project id -> (uintptr_t) running count */
    uv_timer_t sched_timer; /* the earliest scheduled_at in the queue */
    uv_timer_t sweep;       /* retention */
    /* group commit (commit.c) */
    orch_tx_t *pending, **pending_tail;
    orch_batch_t *inflight, **inflight_tail; /* submitted, oldest first */
    unsigned ninflight;                      /* batches in inflight: at most ORCH_MAX_INFLIGHT */
    unsigned gen;                            /* group commits taken so far */
    unsigned local_calls;                    /* local read-only tool calls in flight (task.c) */
    unsigned urgent;                         /* queued transitions something waits for */
    uv_check_t flusher;                      /* the end of this turn's flush (commit.c) */
    int flush_armed;
    /* the store worker's own (group_job): tasks whose transition failed in
     * a recent batch, with its generation, so that a batch taken before
     * the loop saw that failure does not write their later transitions */
    struct {
        const orch_task_t *task;
        unsigned gen;
    } wfail[32];
    unsigned wfail_n;  /* entries written, the ring's next is wfail_n % 32 */
    aos_buf_t scratch; /* the JSON texts of the transition being built */
    int shutting_down;
    int closed; /* handles closed, of 3 */
    void (*on_shutdown)(void *data);
    void *shutdown_data;
    aos_metric_t *m_tasks, *m_commit, *m_commit_tx, *m_steps;
};

/* The task may run when a slot is free: into the queue. */
void orch_enqueue(aos_orch_t *o, orch_task_t *t);
/* Starts queued tasks while slots are free. */
void orch_schedule(aos_orch_t *o);
/* t ended (done, failed, cancelled): its slot is free; t is forgotten and
 * freed once nothing of it is in flight. */
void orch_task_ended(orch_task_t *t);
/* The group commit has nothing in flight any more (shutdown waits for it). */
void orch_idle(aos_orch_t *o);
/* An RFC 3339 time with a zone -> the store's form in out; -1 if it is none. */
int orch_iso_norm(const char *s, char out[32]);
/* A new trace id: 32 lowercase hex digits, time-ordered (orch.c). */
void orch_trace_id(char out[33]);

/* Plans spec (borrowed) for a task: its plan, DSL or goal (the offline
 * planner). The normalized plan, or NULL with err - or NULL with *llm set
 * (llm may be NULL: never) when a model is configured and the goal is not
 * DSL: the LLM planner plans it once the task runs. */
json_t *orch_plan(aos_orch_t *o, const json_t *spec, int *llm, aos_err_t *err);
/* Checks a TaskSpec's members (unknown ones refused). */
int orch_spec_check(const json_t *spec, aos_err_t *err);
/* constraints.http.allow_private needs admin on system: 0 or AOS_EFORBIDDEN
 * (err set). routes.c. */
int orch_http_caps_check(aos_http_req_t *req, const json_t *spec, aos_err_t *err);

/* ---- artifacts (episode.c) ----------------------------------------------------------- */

#define ORCH_ARTIFACTS_MAX 1000 /* files listed of one workspace */

/* The regular files of the workspace dir (no dot files, no links; at most
 * ORCH_ARTIFACTS_MAX), sorted by name, each {name, type (by extension),
 * size, url (the name percent-encoded)}. With budget > 0 the list ends
 * before the entry that could take its compact JSON past budget bytes (a
 * receipt must fit in an event). *total (NULL: not asked) is the number
 * of files found. A new array; NULL dir or a missing one: []. */
json_t *orch_artifacts_list(const char *dir, const char *trace_id, size_t budget, size_t *total);

/* ---- routes (routes.c, episode.c, chat.c) ------------------------------------------ */

/* A request waiting for a commit or a store job; req is NULL once the
 * client left. */
typedef struct {
    aos_http_req_t *req;
    json_t *body; /* what to answer, when known ahead */
    char text[80];
} orch_waiter_t;
orch_waiter_t *orch_waiter_new(aos_http_req_t *req);
void orch_waiter_free(orch_waiter_t *w);
/* "token:<id>" of the request's principal. */
const char *orch_actor(aos_http_req_t *req, char *buf, size_t n);
/* A whole number in [lo, hi] from query parameter name, or dflt. */
int orch_query_int(aos_http_req_t *req, const char *name, long long lo, long long hi,
                   long long dflt, long long *out, aos_err_t *err);
/* A trace id in a route: 32 lowercase hex digits. */
int orch_trace_ok(const char *s);
extern const aos_http_route_t orch_routes[];
extern const size_t orch_nroutes;
int orch_route_episode(aos_http_req_t *req, void *data);
int orch_route_replay(aos_http_req_t *req, void *data);
int orch_route_artifact(aos_http_req_t *req, void *data);
int orch_route_rerun(aos_http_req_t *req, void *data);
/* The submitter of spec may use every runtime secret its env names
 * (OPERATE on "secret:<name>"): 0, or AOS_EFORBIDDEN naming the first. */
/* Zeroes the values of an opened env ({"NAME": "value"}) and frees it. */
void orch_env_free(json_t *env);
/* What a submitter must hold to run spec as a task (routes.c): operate on
 * every task or on the spec's project; each tool the task may call. 0, or
 * AOS_EFORBIDDEN with err saying what is missing. Loop thread. */
int orch_project_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err);
int orch_tools_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err);
int orch_env_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err);
int orch_route_chat_send(aos_http_req_t *req, void *data);
int orch_route_conversations(aos_http_req_t *req, void *data);
int orch_route_conversation(aos_http_req_t *req, void *data);

/* Starts a task already planned: plan and spec (both stolen, on failure
 * too: the spec becomes the task's own, with no copy made), inputs in
 * the spec. With rerun_of: the steps before from_step reuse the recorded
 * outputs of prev (the stored task of rerun_of). More writes (a chat
 * message) may be added to the acceptance transition by extra(tx, data).
 * done(tx) runs once it is durable (tx->status, tx->job_id, tx->task). */
int orch_accept(aos_orch_t *o, json_t *spec, json_t *plan, const char *actor, const char *rerun_of,
                const char *from_step, const json_t *prev, void (*extra)(orch_tx_t *tx, void *data),
                void (*done)(orch_tx_t *tx), void *data, aos_err_t *err);

#endif
