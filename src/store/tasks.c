/* tasks.c - the orchestrator's rows (migration 0009): jobs, traces, the
 * task state, one row per attempt of a step, approvals, conversations and
 * their messages. Plain reads and writes in portable SQL; what they mean is
 * src/orch's. Every write is one statement, meant to run inside the
 * caller's aos_store_tx with the others of one transition. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static aos__sql_val_t opt_text(const char *s)
{
    return s ? aos__sql_text(s) : aos__sql_null();
}

/* Jobs and traces ---------------------------------------------------------- */

int aos_store_job_insert(aos_store_t *st, const aos_store_job_t *j, int64_t *id, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {
        aos__sql_text(j->trace_id), aos__sql_text(j->spec),    aos__sql_text(j->status),
        aos__sql_int(j->priority),  opt_text(j->scheduled_at), opt_text(j->project_id),
        aos__sql_text(now),
    };
    int rc = aos__store_exec(st,
                             "INSERT INTO jobs (trace_id, spec, status, priority, scheduled_at, "
                             "project_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save the job of trace %.40s", j->trace_id);
    if (id)
        *id = aos__store_last_insert_id(st);
    aos__sql_val_t t[] = {aos__sql_text(j->trace_id), aos__sql_text(j->status), aos__sql_text(now)};
    rc = aos__store_exec(st,
                         "INSERT INTO traces (trace_id, status, cost_cny, latency_ms, started_at) "
                         "VALUES (?, ?, 0, 0, ?)",
                         t, NCOLS(t), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save trace %.40s", j->trace_id);
    return 0;
}

int aos_store_job_update(aos_store_t *st, const char *trace_id, const char *status,
                         const char *started_at, const char *finished_at, const char *error,
                         aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(status), opt_text(started_at), opt_text(finished_at),
                          opt_text(error), aos__sql_text(trace_id)};
    int64_t n = 0;
    int rc = aos__store_exec(st,
                             "UPDATE jobs SET status = ?, started_at = COALESCE(?, started_at), "
                             "finished_at = COALESCE(?, finished_at), error = COALESCE(?, error) "
                             "WHERE trace_id = ?",
                             p, NCOLS(p), &n, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update the job of trace %.40s", trace_id);
    if (n == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "no job for trace %.40s", trace_id);
    return 0;
}

int aos_store_trace_update(aos_store_t *st, const char *trace_id, const char *status,
                           double cost_cny, int64_t latency_ms, const char *finished_at,
                           aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(status), aos__sql_real(cost_cny), aos__sql_int(latency_ms),
                          opt_text(finished_at), aos__sql_text(trace_id)};
    int rc = aos__store_exec(st,
                             "UPDATE traces SET status = ?, cost_cny = ?, latency_ms = ?, "
                             "finished_at = COALESCE(?, finished_at) WHERE trace_id = ?",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update trace %.40s", trace_id);
    return 0;
}

static const col_t job_cols[] = {
    {"id", COL_INT},          {"trace_id", COL_TEXT},    {"spec", COL_JSON},
    {"status", COL_TEXT},     {"priority", COL_INT},     {"scheduled_at", COL_TEXT},
    {"started_at", COL_TEXT}, {"finished_at", COL_TEXT}, {"error", COL_JSON},
    {"project_id", COL_TEXT}, {"created_at", COL_TEXT},  {"cost_cny", COL_REAL},
    {"latency_ms", COL_INT},
};
#define JOB_SELECT                                                                                 \
    "SELECT j.id, j.trace_id, j.spec, j.status, j.priority, j.scheduled_at, j.started_at, "        \
    "j.finished_at, j.error, j.project_id, j.created_at, t.cost_cny, t.latency_ms "                \
    "FROM jobs j LEFT JOIN traces t ON t.trace_id = j.trace_id"

int aos_store_jobs_list(aos_store_t *st, const char *status, int64_t before_id, int limit,
                        json_t **out, aos_err_t *err)
{
    if (limit < 1 || limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "limit must be 1..%d", AOS_STORE_LIST_MAX);
    aos__sql_val_t p[] = {opt_text(status), opt_text(status),
                          aos__sql_int(before_id > 0 ? before_id : INT64_MAX), aos__sql_int(limit)};
    int rc = aos__store_select(st,
                               JOB_SELECT " WHERE (? IS NULL OR j.status = ?) AND j.id < ? "
                                          "ORDER BY j.id DESC LIMIT ?",
                               p, NCOLS(p), job_cols, NCOLS(job_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list jobs") : 0;
}

/* Task state and steps ------------------------------------------------------- */

int aos_store_task_state_put(aos_store_t *st, const aos_store_task_state_t *s, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    int rc;
    if (s->plan) { /* its own row, written once: the state row is rewritten at every move */
        aos__sql_val_t p[] = {aos__sql_text(s->trace_id), aos__sql_text(s->plan)};
        rc = aos__store_exec(st,
                             "INSERT INTO task_plans (trace_id, plan) VALUES (?, ?) "
                             "ON CONFLICT (trace_id) DO UPDATE SET plan = excluded.plan",
                             p, NCOLS(p), NULL, err);
        if (rc < 0)
            return aos__store_fail(err, rc, "unable to save the plan of trace %.40s", s->trace_id);
    }
    aos__sql_val_t p[] = {aos__sql_text(s->trace_id), aos__sql_int(s->cursor),
                          aos__sql_text(s->vars),     aos__sql_text(s->status),
                          opt_text(s->rerun_of),      opt_text(s->from_step),
                          aos__sql_text(now)};
    rc = aos__store_exec(
        st,
        "INSERT INTO task_state (trace_id, cursor, vars, status, rerun_of, from_step, "
        "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (trace_id) DO UPDATE SET "
        "cursor = excluded.cursor, vars = excluded.vars, status = excluded.status, "
        "updated_at = excluded.updated_at",
        p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save the state of trace %.40s", s->trace_id);
    return 0;
}

int aos_store_task_step_put(aos_store_t *st, const aos_store_step_t *s, aos_err_t *err)
{
    aos__sql_val_t p[] = {
        aos__sql_text(s->trace_id),   aos__sql_text(s->step_id),  aos__sql_int(s->attempt),
        aos__sql_int(s->seq),         aos__sql_text(s->kind),     aos__sql_text(s->status),
        opt_text(s->input),           opt_text(s->output),        opt_text(s->error),
        opt_text(s->idempotency_key), aos__sql_real(s->cost_cny), aos__sql_text(s->started_at),
        opt_text(s->finished_at),
    };
    int rc = aos__store_exec(
        st,
        "INSERT INTO task_steps (trace_id, step_id, attempt, seq, kind, status, input, output, "
        "error, idempotency_key, cost_cny, started_at, finished_at) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (trace_id, step_id, attempt) DO UPDATE SET status = excluded.status, "
        "input = COALESCE(excluded.input, task_steps.input), output = excluded.output, "
        "error = excluded.error, cost_cny = excluded.cost_cny, finished_at = excluded.finished_at",
        p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save step %.64s of trace %.40s", s->step_id,
                               s->trace_id);
    return 0;
}

/* Approvals ---------------------------------------------------------------- */

int aos_store_approval_put(aos_store_t *st, const char *trace_id, const char *step_id,
                           const char *message, const char *decisions, const char *deadline,
                           aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(trace_id),  aos__sql_text(step_id), opt_text(message),
                          aos__sql_text(decisions), opt_text(deadline),     aos__sql_text(now)};
    int rc =
        aos__store_exec(st,
                        "INSERT INTO approvals (trace_id, step_id, status, message, decisions, "
                        "deadline, created_at) VALUES (?, ?, 'pending', ?, ?, ?, ?) "
                        "ON CONFLICT (trace_id, step_id) DO UPDATE SET status = 'pending', "
                        "message = excluded.message, decisions = excluded.decisions, "
                        "deadline = excluded.deadline, decision = NULL, comment = NULL, "
                        "actor = NULL, decided_at = NULL, created_at = excluded.created_at",
                        p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save the approval %.64s of trace %.40s", step_id,
                               trace_id);
    return 0;
}

int aos_store_approval_decide(aos_store_t *st, const char *trace_id, const char *step_id,
                              const char *status, const char *decision, const char *comment,
                              const char *actor, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(status), opt_text(decision), opt_text(comment),
                          opt_text(actor),       aos__sql_text(now), aos__sql_text(trace_id),
                          aos__sql_text(step_id)};
    int64_t n = 0;
    int rc =
        aos__store_exec(st,
                        "UPDATE approvals SET status = ?, decision = ?, comment = ?, actor = ?, "
                        "decided_at = ? WHERE trace_id = ? AND step_id = ? AND "
                        "status = 'pending'",
                        p, NCOLS(p), &n, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to decide approval %.64s", step_id);
    if (n == 0)
        return aos_err_set(err, AOS_ECONFLICT, "approval '%.64s' of trace %.40s is not pending",
                           step_id, trace_id);
    return 0;
}

/* Reading tasks back ------------------------------------------------------------ */

static const col_t state_cols[] = {
    {"trace_id", COL_TEXT},  {"plan", COL_JSON},       {"cursor", COL_INT},
    {"vars", COL_JSON},      {"status", COL_TEXT},     {"rerun_of", COL_TEXT},
    {"from_step", COL_TEXT}, {"updated_at", COL_TEXT},
};
static const col_t step_cols[] = {
    {"step_id", COL_TEXT},  {"attempt", COL_INT},     {"seq", COL_INT},
    {"kind", COL_TEXT},     {"status", COL_TEXT},     {"input", COL_JSON},
    {"output", COL_JSON},   {"error", COL_JSON},      {"idempotency_key", COL_TEXT},
    {"cost_cny", COL_REAL}, {"started_at", COL_TEXT}, {"finished_at", COL_TEXT},
};
static const col_t approval_cols[] = {
    {"step_id", COL_TEXT},    {"status", COL_TEXT},   {"message", COL_TEXT},
    {"decisions", COL_JSON},  {"decision", COL_TEXT}, {"comment", COL_TEXT},
    {"actor", COL_TEXT},      {"deadline", COL_TEXT}, {"created_at", COL_TEXT},
    {"decided_at", COL_TEXT},
};

/* Adds state, steps and approvals of job's trace to the job object. */
static int task_details(aos_store_t *st, json_t *job, aos_err_t *err)
{
    aos__sql_val_t p = aos__sql_text(json_string_value(json_object_get(job, "trace_id")));
    json_t *rows = NULL;
    int rc = aos__store_select(st,
                               "SELECT s.trace_id, p.plan, s.cursor, s.vars, s.status, "
                               "s.rerun_of, s.from_step, s.updated_at FROM task_state s "
                               "LEFT JOIN task_plans p ON p.trace_id = s.trace_id "
                               "WHERE s.trace_id = ?",
                               &p, 1, state_cols, NCOLS(state_cols), &rows, err);
    if (rc < 0)
        return rc;
    json_object_set(job, "state", json_array_size(rows) ? json_array_get(rows, 0) : json_null());
    json_decref(rows);
    rc = aos__store_select(st,
                           "SELECT step_id, attempt, seq, kind, status, input, output, error, "
                           "idempotency_key, cost_cny, started_at, finished_at FROM task_steps "
                           "WHERE trace_id = ? ORDER BY seq, attempt",
                           &p, 1, step_cols, NCOLS(step_cols), &rows, err);
    if (rc < 0)
        return rc;
    json_object_set_new(job, "steps", rows);
    rc = aos__store_select(st,
                           "SELECT step_id, status, message, decisions, decision, comment, actor, "
                           "deadline, created_at, decided_at FROM approvals WHERE trace_id = ? "
                           "ORDER BY created_at",
                           &p, 1, approval_cols, NCOLS(approval_cols), &rows, err);
    if (rc < 0)
        return rc;
    json_object_set_new(job, "approvals", rows);
    return 0;
}

int aos_store_task_get(aos_store_t *st, const char *trace_id, json_t **out, aos_err_t *err)
{
    aos__sql_val_t p = aos__sql_text(trace_id);
    json_t *rows = NULL;
    *out = NULL;
    int rc = aos__store_select(st, JOB_SELECT " WHERE j.trace_id = ?", &p, 1, job_cols,
                               NCOLS(job_cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read trace %.40s", trace_id);
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return aos_err_set(err, AOS_ENOTFOUND, "no task with trace id '%.40s'", trace_id);
    }
    json_t *job = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    if ((rc = task_details(st, job, err)) < 0) {
        json_decref(job);
        return aos__store_fail(err, rc, "unable to read trace %.40s", trace_id);
    }
    *out = job;
    return 0;
}

int aos_store_tasks_open(aos_store_t *st, json_t **out, aos_err_t *err)
{
    json_t *jobs = NULL;
    *out = NULL;
    int rc = aos__store_select(st,
                               JOB_SELECT " WHERE j.status IN ('queued', 'running', 'waiting') "
                                          "ORDER BY j.id",
                               NULL, 0, job_cols, NCOLS(job_cols), &jobs, err);
    size_t i;
    json_t *job;
    json_array_foreach(jobs, i, job)
    {
        if (rc < 0)
            break;
        rc = task_details(st, job, err);
    }
    if (rc < 0) {
        json_decref(jobs);
        return aos__store_fail(err, rc, "unable to read the unfinished tasks");
    }
    *out = jobs;
    return 0;
}

int aos_store_tasks_expire(aos_store_t *st, const char *finished_before, int limit, int *n,
                           aos_err_t *err)
{
    static const char *const tables[] = {"task_steps", "approvals", "task_state",
                                         "task_plans", "events",    "traces"};
    aos__sql_val_t p[] = {aos__sql_text(finished_before), aos__sql_int(limit)};
    json_t *rows = NULL;
    static const col_t cols[] = {{"trace_id", COL_TEXT}};
    int rc = aos__store_select(st,
                               "SELECT trace_id FROM jobs WHERE status IN ('done', 'failed', "
                               "'cancelled') AND finished_at < ? ORDER BY finished_at LIMIT ?",
                               p, NCOLS(p), cols, NCOLS(cols), &rows, err);
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        aos__sql_val_t t = aos__sql_text(json_string_value(json_object_get(r, "trace_id")));
        char sql[96];
        for (size_t k = 0; rc == 0 && k < sizeof(tables) / sizeof(tables[0]); k++) {
            snprintf(sql, sizeof(sql), "DELETE FROM %s WHERE trace_id = ?", tables[k]);
            rc = aos__store_exec(st, sql, &t, 1, NULL, err);
        }
        if (rc == 0)
            rc = aos__store_exec(st, "DELETE FROM jobs WHERE trace_id = ?", &t, 1, NULL, err);
        if (rc < 0)
            break;
    }
    if (n)
        *n = rc < 0 ? 0 : (int)json_array_size(rows);
    json_decref(rows);
    return rc < 0 ? aos__store_fail(err, rc, "unable to expire old tasks") : 0;
}

/* Chat ------------------------------------------------------------------------ */

int aos_store_conversation_touch(aos_store_t *st, const char *id, const char *title,
                                 const char *actor, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(id), opt_text(title), opt_text(actor), aos__sql_text(now),
                          aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO conversations (id, title, actor, created_at, updated_at) "
                             "VALUES (?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET "
                             "updated_at = excluded.updated_at",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to save conversation %.40s", id) : 0;
}

int aos_store_message_add(aos_store_t *st, const char *conversation_id, const char *role,
                          const char *content, const char *dsl, const char *trace_id, int64_t *id,
                          aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(conversation_id),
                          aos__sql_text(role),
                          aos__sql_text(content),
                          opt_text(dsl),
                          opt_text(trace_id),
                          aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO messages (conversation_id, role, content, dsl, trace_id, "
                             "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save a message");
    if (id)
        *id = aos__store_last_insert_id(st);
    return 0;
}

int aos_store_conversations_list(aos_store_t *st, const char *before, int limit, json_t **out,
                                 aos_err_t *err)
{
    static const col_t cols[] = {{"id", COL_TEXT},         {"title", COL_TEXT},
                                 {"actor", COL_TEXT},      {"created_at", COL_TEXT},
                                 {"updated_at", COL_TEXT}, {"messages", COL_INT}};
    if (limit < 1 || limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "limit must be 1..%d", AOS_STORE_LIST_MAX);
    aos__sql_val_t p[] = {opt_text(before), opt_text(before), aos__sql_int(limit)};
    int rc = aos__store_select(st,
                               "SELECT c.id, c.title, c.actor, c.created_at, c.updated_at, "
                               "(SELECT COUNT(*) FROM messages m WHERE m.conversation_id = c.id) "
                               "FROM conversations c WHERE (? IS NULL OR c.updated_at < ?) "
                               "ORDER BY c.updated_at DESC LIMIT ?",
                               p, NCOLS(p), cols, NCOLS(cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list conversations") : 0;
}

int aos_store_messages_list(aos_store_t *st, const char *conversation_id, int64_t after_id,
                            int limit, json_t **out, aos_err_t *err)
{
    static const col_t cols[] = {{"id", COL_INT},         {"role", COL_TEXT},
                                 {"content", COL_TEXT},   {"dsl", COL_TEXT},
                                 {"trace_id", COL_TEXT},  {"created_at", COL_TEXT},
                                 {"project_id", COL_TEXT}};
    if (limit < 1 || limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "limit must be 1..%d", AOS_STORE_LIST_MAX);
    aos__sql_val_t p[] = {aos__sql_text(conversation_id), aos__sql_int(after_id),
                          aos__sql_int(limit)};
    int rc = aos__store_select(st,
                               "SELECT m.id, m.role, m.content, m.dsl, m.trace_id, m.created_at, "
                               "j.project_id FROM messages m "
                               "LEFT JOIN jobs j ON j.trace_id = m.trace_id "
                               "WHERE m.conversation_id = ? AND m.id > ? ORDER BY m.id LIMIT ?",
                               p, NCOLS(p), cols, NCOLS(cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to read conversation %.40s", conversation_id)
                  : 0;
}

int aos_store_conversation_tasks(aos_store_t *st, const char *conversation_id, json_t **out,
                                 aos_err_t *err)
{
    static const col_t cols[] = {
        {"trace_id", COL_TEXT}, {"project_id", COL_TEXT}, {"messages", COL_INT}};
    aos__sql_val_t p[] = {aos__sql_text(conversation_id)};
    int rc = aos__store_select(st,
                               "SELECT m.trace_id, j.project_id, COUNT(*) FROM messages m "
                               "LEFT JOIN jobs j ON j.trace_id = m.trace_id "
                               "WHERE m.conversation_id = ? AND m.trace_id IS NOT NULL "
                               "GROUP BY m.trace_id, j.project_id",
                               p, NCOLS(p), cols, NCOLS(cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to read conversation %.40s", conversation_id)
                  : 0;
}

int aos_store_task_project(aos_store_t *st, const char *trace_id, char **project, aos_err_t *err)
{
    static const col_t cols[] = {{"project_id", COL_TEXT}};
    aos__sql_val_t p[] = {aos__sql_text(trace_id)};
    json_t *rows = NULL;
    *project = NULL;
    int rc = aos__store_select(st, "SELECT project_id FROM jobs WHERE trace_id = ?", p, NCOLS(p),
                               cols, NCOLS(cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read trace %.40s", trace_id);
    const json_t *row = json_array_get(rows, 0);
    const char *pid = json_string_value(json_object_get(row, "project_id"));
    if (!row)
        rc = aos_err_set(err, AOS_ENOTFOUND, "no task with trace id '%.40s'", trace_id);
    else if (pid && !(*project = strdup(pid)))
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
    json_decref(rows);
    return rc;
}
