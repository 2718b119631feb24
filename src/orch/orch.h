/* orch.h - the orchestrator: tasks run as durable Planner -> Executor ->
 * Critic -> Reviser loops (SPEC §3, §8; docs/ORCHESTRATOR.md).
 *
 * A task is submitted (POST /api/run, POST /api/chat/send) as a TaskSpec:
 * a goal, a plan or Action DSL text, with inputs and constraints. It is
 * planned (src/plan: DSL, the offline planner; an LLM when configured),
 * queued by priority, and run step by step: a tool step through the
 * gateway (aos_gateway_call, with the step's idempotency key), checked by
 * the Critic (the step's check), revised on failure (retry with back-off,
 * a fallback step, an optional step's skip, or a question to a person);
 * an approval step waits for POST /agent/approve or its timeout; a
 * milestone is a progress card. The user sees value events on the bus.
 *
 * Durability: every transition of a task (a step begins, a step ends, a
 * decision, the end) is one store transaction with its events, and the
 * task does nothing that depends on it before it commits. Transitions of
 * many tasks that are ready at once share one commit (group commit).
 * After a crash, aos_orch_start finds every unfinished task and resumes it
 * from its last committed step; the step that was in flight runs again
 * with the same idempotency key.
 *
 * A TaskSpec's "env" ({"NAME": {"secret": "<runtime secret>"}}) is
 * checked against the submitter (OPERATE on "secret:<name>") and opened
 * only when a tool step calls its tool, for that call alone (the
 * caller's env: a built-in's process environment, an upstream's
 * params._meta["aos/env"]); it is never stored opened.
 *
 * Routes (permissions as in src/auth):
 *   POST /api/run                          OPERATE  TaskSpec -> 201 {trace_id, job_id}
 *   GET  /api/jobs?status=&before=&limit=  READ
 *   POST /api/jobs/:id/cancel              OPERATE
 *   POST /agent/approve                    OPERATE  {trace_id, step_id, decision, comment}
 *   GET  /api/episodes/:traceId            READ     everything about one run
 *   GET  /api/episodes/:traceId/replay     READ     the run re-read step by step
 *   GET  /api/episodes/:traceId/artifacts/:name READ a file of the run's workspace
 *   POST /api/episodes/:traceId/rerun      OPERATE  {from_step, inputs} -> a new run
 *   POST /api/chat/send                    OPERATE  {conversation_id, message, dsl, inputs}
 *   GET  /api/chat/conversations[/:id]     READ
 *
 * Threads: the loop thread, except where a function says otherwise. */
#ifndef AOS_ORCH_H
#define AOS_ORCH_H

#include <jansson.h>
#include <uv.h>

#include "bus/bus.h"
#include "err/err.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "llm/llm.h"
#include "memory/memory.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "trace/trace.h"

typedef struct aos_orch_s aos_orch_t;

typedef struct {
    uv_loop_t *loop;          /* borrowed */
    aos_store_t *store;       /* borrowed */
    aos_bus_t *bus;           /* borrowed */
    aos_gateway_t *gateway;   /* borrowed */
    aos_metrics_t *metrics;   /* borrowed, may be NULL */
    aos_trace_t *trace;       /* borrowed, may be NULL: spans of tasks, steps, LLM calls */
    aos_llm_t *llm;           /* borrowed, may be NULL: no LLM, the offline planner plans */
    aos_memory_t *memory;     /* borrowed, may be NULL: constraints.memory is refused */
    const char *data_dir;     /* workspaces go to <data_dir>/workspaces/<trace_id>/ */
    unsigned max_running;     /* tasks running at once; 0: 64 */
    unsigned max_per_project; /* of one project; 0: max_running */
    unsigned retention_days;  /* finished runs older than this are deleted; 0: never */
    /* Opens the runtime secret a TaskSpec's env names, for one tool call of
     * a task of project project_id (may be NULL): guarded memory the
     * orchestrator wipes (aos_secret_wipe), or NULL with err. NULL: a task
     * with env fails its tool steps. */
    char *(*env_open)(const char *secret, const char *project_id, size_t *len, aos_err_t *err,
                      void *data);
    void *env_data;
} aos_orch_cfg_t;

int aos_orch_new(aos_orch_t **out, const aos_orch_cfg_t *cfg, aos_err_t *err);
/* Reads the unfinished tasks and resumes them (recovery.start, then
 * recovery.done for each once it runs again). Call once at start-up, before
 * the loop runs: it reads the store synchronously. */
int aos_orch_start(aos_orch_t *o, aos_err_t *err);
int aos_orch_add_routes(aos_orch_t *o, aos_http_t *http);

/* Submits a TaskSpec (stolen: it becomes the task's own, with no copy
 * made; taken on failure too) as the principal actor; done runs once the
 * job, its trace and its task.acceptance event are durable, with the trace
 * id and job id, or with an error. Returns 0, or AOS_EINVAL (a bad spec or
 * plan: err names the field; done is not called). */
typedef void (*aos_orch_submit_fn)(int status, const aos_err_t *err, const char *trace_id,
                                   int64_t job_id, void *data);
int aos_orch_submit(aos_orch_t *o, json_t *spec, const char *actor, aos_orch_submit_fn done,
                    void *data, aos_err_t *err);

/* Stops starting tasks and waits for the commits in flight; the tasks stay
 * as they are in the store (running, waiting) and resume at the next
 * start, as after a crash. done runs when nothing of the orchestrator is
 * pending. Call before the gateway shuts down (its calls then fail, and
 * the orchestrator ignores those answers). */
void aos_orch_shutdown(aos_orch_t *o, void (*done)(void *data), void *data);
void aos_orch_free(aos_orch_t *o);

#endif
