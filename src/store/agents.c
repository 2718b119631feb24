/* agents.c - the rows of agents and their versions (0001, 0019): plain
 * reads and writes in portable SQL; src/agents decides what they mean. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const col_t agent_cols[] = {
    {"id", COL_TEXT},         {"name", COL_TEXT},         {"type", COL_TEXT},
    {"version", COL_TEXT},    {"route_prefix", COL_TEXT}, {"replicas", COL_INT},
    {"status", COL_TEXT},     {"config", COL_JSON},       {"caps", COL_JSON},
    {"created_at", COL_TEXT},
};
#define AGENT_SELECT                                                                               \
    "SELECT id, name, type, version, route_prefix, replicas, status, config, caps, created_at "    \
    "FROM agents"

static aos__sql_val_t opt_text(const char *s)
{
    return s ? aos__sql_text(s) : aos__sql_null();
}

int aos_store_agent_put(aos_store_t *st, const aos_store_agent_t *a, int create, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    int64_t n = 0;
    int rc;
    if (create) {
        aos__sql_val_t p[] = {aos__sql_text(a->id),      aos__sql_text(a->name),
                              aos__sql_text(a->type),    aos__sql_text(a->version),
                              opt_text(a->route_prefix), aos__sql_int(a->replicas),
                              aos__sql_text(a->status),  aos__sql_text(a->config),
                              opt_text(a->caps),         aos__sql_text(now)};
        rc = aos__store_exec(st,
                             "INSERT INTO agents (id, name, type, version, route_prefix, replicas, "
                             "status, config, caps, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, "
                             "?, ?)",
                             p, NCOLS(p), &n, err);
    } else {
        aos__sql_val_t p[] = {aos__sql_text(a->version), opt_text(a->route_prefix),
                              aos__sql_int(a->replicas), aos__sql_text(a->status),
                              aos__sql_text(a->config),  opt_text(a->caps),
                              aos__sql_text(a->id)};
        rc = aos__store_exec(st,
                             "UPDATE agents SET version = ?, route_prefix = ?, replicas = ?, "
                             "status = ?, config = ?, caps = ? WHERE id = ?",
                             p, NCOLS(p), &n, err);
    }
    if (rc == AOS_ECONFLICT)
        return aos_err_set(err, AOS_ECONFLICT, "an agent named '%.64s' exists already", a->name);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save agent %.64s", a->name);
    if (n == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "no agent %.40s", a->id);
    return 0;
}

int aos_store_agent_get(aos_store_t *st, const char *id, json_t **out, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(id), aos__sql_text(id)};
    json_t *rows = NULL;
    int rc = aos__store_select(st, AGENT_SELECT " WHERE id = ? OR name = ?", p, NCOLS(p),
                               agent_cols, NCOLS(agent_cols), &rows, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read agent %.64s", id);
    if (json_array_size(rows) == 0) {
        json_decref(rows);
        return aos_err_set(err, AOS_ENOTFOUND, "no agent %.64s", id);
    }
    *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return 0;
}

int aos_store_agent_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st, AGENT_SELECT " ORDER BY name LIMIT 1000", NULL, 0, agent_cols,
                               NCOLS(agent_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list agents") : 0;
}

int aos_store_agent_delete(aos_store_t *st, const char *id, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(id)};
    int64_t n = 0;
    int rc = aos__store_exec(st, "DELETE FROM agent_versions WHERE agent_id = ?", p, NCOLS(p), NULL,
                             err);
    if (rc >= 0)
        rc = aos__store_exec(st, "DELETE FROM agent_runs WHERE agent_id = ?", p, NCOLS(p), NULL,
                             err);
    if (rc >= 0)
        rc = aos__store_exec(st, "DELETE FROM agents WHERE id = ?", p, NCOLS(p), &n, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete agent %.40s", id);
    if (n == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "no agent %.40s", id);
    return 0;
}

int aos_store_agent_version_add(aos_store_t *st, const char *agent_id, int64_t version,
                                const char *config, const char *created_by, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(agent_id), aos__sql_int(version), aos__sql_text(config),
                          opt_text(created_by), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO agent_versions (agent_id, version, config, created_by, "
                             "created_at) VALUES (?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to save version %lld of agent %.40s",
                                    (long long)version, agent_id)
                  : 0;
}

static const col_t version_cols[] = {
    {"version", COL_INT}, {"config", COL_JSON}, {"created_by", COL_TEXT}, {"created_at", COL_TEXT}};

int aos_store_agent_versions(aos_store_t *st, const char *agent_id, json_t **out, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(agent_id)};
    int rc = aos__store_select(st,
                               "SELECT version, config, created_by, created_at FROM "
                               "agent_versions WHERE agent_id = ? ORDER BY version LIMIT 1000",
                               p, NCOLS(p), version_cols, NCOLS(version_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list the versions of %.40s", agent_id) : 0;
}

int aos_store_agent_set_status(aos_store_t *st, const char *id, const char *status, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(status), aos__sql_text(id)};
    int64_t n = 0;
    int rc = aos__store_exec(st, "UPDATE agents SET status = ? WHERE id = ?", p, NCOLS(p), &n, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to set the status of agent %.40s", id);
    return n == 0 ? aos_err_set(err, AOS_ENOTFOUND, "no agent %.40s", id) : 0;
}

int aos_store_agent_run_start(aos_store_t *st, const char *run_id, const char *agent_id,
                              const char *trace_id, const char *stats, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(run_id), aos__sql_text(agent_id), opt_text(trace_id),
                          opt_text(stats), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO agent_runs (run_id, agent_id, trace_id, status, stats, "
                             "started_at) VALUES (?, ?, ?, 'running', ?, ?)",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to save run %.40s", run_id) : 0;
}

int aos_store_agent_run_update(aos_store_t *st, const char *run_id, const char *status,
                               const char *stats, int finished, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(status), opt_text(stats),
                          finished ? aos__sql_text(now) : aos__sql_null(), aos__sql_text(run_id)};
    int rc = aos__store_exec(st,
                             "UPDATE agent_runs SET status = ?, stats = ?, finished_at = ? "
                             "WHERE run_id = ?",
                             p, NCOLS(p), NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to update run %.40s", run_id) : 0;
}

static const col_t run_cols[] = {{"run_id", COL_TEXT},     {"trace_id", COL_TEXT},
                                 {"status", COL_TEXT},     {"stats", COL_JSON},
                                 {"started_at", COL_TEXT}, {"finished_at", COL_TEXT}};

int aos_store_agent_runs(aos_store_t *st, const char *agent_id, int limit, json_t **out,
                         aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(agent_id), aos__sql_int(limit)};
    int rc = aos__store_select(st,
                               "SELECT run_id, trace_id, status, stats, started_at, finished_at "
                               "FROM agent_runs WHERE agent_id = ? ORDER BY started_at DESC, "
                               "run_id LIMIT ?",
                               p, NCOLS(p), run_cols, NCOLS(run_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list the runs of %.40s", agent_id) : 0;
}

int aos_store_agent_runs_abandon(aos_store_t *st, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "UPDATE agent_runs SET status = 'aborted', finished_at = ? "
                             "WHERE finished_at IS NULL",
                             p, NCOLS(p), NULL, err);
    if (rc >= 0)
        rc = aos__store_exec(st, "UPDATE agents SET status = 'stopped' WHERE status <> 'stopped'",
                             NULL, 0, NULL, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to close the runs of a previous start") : 0;
}
