/* sandbox.c - the rows of sandbox scripts and their runs (0001, 0019):
 * plain reads and writes in portable SQL; src/sandbox decides what they
 * mean. JSON values are compact text; env values are sealed before they
 * get here. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static aos__sql_val_t opt_text(const char *s)
{
    return s ? aos__sql_text(s) : aos__sql_null();
}

static const col_t script_cols[] = {
    {"id", COL_TEXT},          {"name", COL_TEXT},       {"entry_file", COL_TEXT},
    {"description", COL_TEXT}, {"schedule_ms", COL_INT}, {"schedule_cron", COL_TEXT},
    {"env", COL_JSON},         {"files", COL_JSON},      {"caps", COL_JSON},
    {"created_by", COL_TEXT},  {"created_at", COL_TEXT}, {"updated_at", COL_TEXT},
};
#define SCRIPT_SELECT                                                                              \
    "SELECT id, name, entry_file, description, schedule_ms, schedule_cron, env, files, caps, "     \
    "created_by, created_at, updated_at FROM sandbox_scripts"

int aos_store_sandbox_script_put(aos_store_t *st, const aos_store_sandbox_script_t *s, int create,
                                 aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    int64_t n = 0;
    int rc;
    if (create) {
        aos__sql_val_t p[] = {aos__sql_text(s->id),
                              aos__sql_text(s->name),
                              aos__sql_text(s->entry_file),
                              opt_text(s->description),
                              s->schedule_ms > 0 ? aos__sql_int(s->schedule_ms) : aos__sql_null(),
                              opt_text(s->schedule_cron),
                              aos__sql_text(s->env),
                              aos__sql_text(s->files),
                              aos__sql_text(s->caps),
                              opt_text(s->created_by),
                              aos__sql_text(now),
                              aos__sql_text(now)};
        rc = aos__store_exec(st,
                             "INSERT INTO sandbox_scripts (id, name, entry_file, description, "
                             "schedule_ms, schedule_cron, env, files, caps, created_by, "
                             "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), &n, err);
    } else {
        aos__sql_val_t p[] = {aos__sql_text(s->name),
                              aos__sql_text(s->entry_file),
                              opt_text(s->description),
                              s->schedule_ms > 0 ? aos__sql_int(s->schedule_ms) : aos__sql_null(),
                              opt_text(s->schedule_cron),
                              aos__sql_text(s->env),
                              aos__sql_text(s->files),
                              aos__sql_text(s->caps),
                              aos__sql_text(now),
                              aos__sql_text(s->id)};
        rc =
            aos__store_exec(st,
                            "UPDATE sandbox_scripts SET name = ?, entry_file = ?, description = ?, "
                            "schedule_ms = ?, schedule_cron = ?, env = ?, files = ?, caps = ?, "
                            "updated_at = ? "
                            "WHERE id = ?",
                            p, NCOLS(p), &n, err);
    }
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save sandbox script %.40s", s->id);
    if (n == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "no sandbox script %.40s", s->id);
    return 0;
}

int aos_store_sandbox_script_get(aos_store_t *st, const char *id, json_t **out, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(id)};
    json_t *rows = NULL;
    int rc = aos__store_select(st, SCRIPT_SELECT " WHERE id = ?", p, NCOLS(p), script_cols,
                               NCOLS(script_cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read sandbox script %.40s", id);
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return aos_err_set(err, AOS_ENOTFOUND, "no sandbox script %.40s", id);
    }
    *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return 0;
}

int aos_store_sandbox_script_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st, SCRIPT_SELECT " ORDER BY created_at, id LIMIT 1000", NULL, 0,
                               script_cols, NCOLS(script_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list sandbox scripts") : 0;
}

int aos_store_sandbox_script_delete(aos_store_t *st, const char *id, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(id)};
    int64_t n = 0;
    int rc = aos__store_exec(st, "DELETE FROM sandbox_scripts WHERE id = ?", p, NCOLS(p), &n, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete sandbox script %.40s", id);
    if (n == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "no sandbox script %.40s", id);
    rc =
        aos__store_exec(st, "DELETE FROM sandbox_runs WHERE script_id = ?", p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to delete the runs of %.40s", id) : 0;
}

static const col_t run_cols[] = {
    {"id", COL_TEXT},          {"script_id", COL_TEXT},   {"trace_id", COL_TEXT},
    {"status", COL_TEXT},      {"exit_code", COL_INT},    {"signal", COL_INT},
    {"reason", COL_TEXT},      {"duration_ms", COL_INT},  {"usage", COL_JSON},
    {"stdout", COL_TEXT},      {"stderr", COL_TEXT},      {"truncated", COL_BOOL},
    {"error", COL_TEXT},       {"actor", COL_TEXT},       {"started_at", COL_TEXT},
    {"finished_at", COL_TEXT}, {"landlock_abi", COL_INT},
};
#define RUN_SELECT                                                                                 \
    "SELECT id, script_id, trace_id, status, exit_code, signal, reason, duration_ms, usage, "      \
    "stdout, stderr, truncated, error, actor, started_at, finished_at, landlock_abi FROM "         \
    "sandbox_runs"

int aos_store_sandbox_run_insert(aos_store_t *st, const aos_store_sandbox_run_t *r, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(r->id),       opt_text(r->script_id),
                          aos__sql_text(r->trace_id), aos__sql_text(r->status),
                          opt_text(r->actor),         aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO sandbox_runs (id, script_id, trace_id, status, actor, "
                             "started_at) VALUES (?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to save sandbox run %.40s", r->id) : 0;
}

int aos_store_sandbox_run_finish(aos_store_t *st, const aos_store_sandbox_run_t *r, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {
        aos__sql_text(r->status),
        r->has_exit ? aos__sql_int(r->exit_code) : aos__sql_null(),
        r->signal ? aos__sql_int(r->signal) : aos__sql_null(),
        opt_text(r->reason),
        aos__sql_int(r->duration_ms),
        opt_text(r->usage),
        opt_text(r->out),
        opt_text(r->errout),
        aos__sql_int(r->truncated),
        opt_text(r->error),
        aos__sql_text(now),
        r->landlock_abi >= 0 ? aos__sql_int(r->landlock_abi) : aos__sql_null(),
        aos__sql_text(r->id),
    };
    int rc = aos__store_exec(st,
                             "UPDATE sandbox_runs SET status = ?, exit_code = ?, signal = ?, "
                             "reason = ?, duration_ms = ?, usage = ?, stdout = ?, stderr = ?, "
                             "truncated = ?, error = ?, finished_at = ?, landlock_abi = ? "
                             "WHERE id = ?",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to finish sandbox run %.40s", r->id) : 0;
}

int aos_store_sandbox_run_get(aos_store_t *st, const char *id, json_t **out, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(id)};
    json_t *rows = NULL;
    int rc = aos__store_select(st, RUN_SELECT " WHERE id = ?", p, NCOLS(p), run_cols,
                               NCOLS(run_cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read sandbox run %.40s", id);
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return aos_err_set(err, AOS_ENOTFOUND, "no sandbox run %.40s", id);
    }
    *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return 0;
}

int aos_store_sandbox_runs_list(aos_store_t *st, const char *script_id, int limit, json_t **out,
                                aos_err_t *err)
{
    if (limit < 1 || limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "limit must be 1..%d", AOS_STORE_LIST_MAX);
    aos__sql_val_t p[] = {aos__sql_text(script_id), aos__sql_int(limit)};
    int rc = aos__store_select(st,
                               RUN_SELECT " WHERE script_id = ? ORDER BY started_at DESC, id "
                                          "DESC LIMIT ?",
                               p, NCOLS(p), run_cols, NCOLS(run_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list sandbox runs") : 0;
}

int aos_store_sandbox_runs_abandon(aos_store_t *st, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "UPDATE sandbox_runs SET status = 'error', error = 'aosd stopped "
                             "during the run', finished_at = ? WHERE status = 'running'",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to close unfinished sandbox runs") : 0;
}
