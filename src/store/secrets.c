/* secrets.c - the store's part of runtime secrets (migration 0014): the
 * sealed values, the changes waiting for a second person, and project
 * variables (0001's project_vars). Values arrive sealed by src/secret;
 * nothing here ever sees a plaintext, and messages name rows, never
 * values. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <string.h>

static const col_t secret_cols[] = {
    {"name", COL_TEXT},         {"scope", COL_TEXT},      {"purpose", COL_TEXT},
    {"sealed", COL_TEXT},       {"created_by", COL_TEXT}, {"created_at", COL_TEXT},
    {"last_rotated", COL_TEXT},
};

int aos_store_secret_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st,
                               "SELECT name, scope, purpose, sealed, created_by, created_at, "
                               "last_rotated FROM runtime_secrets ORDER BY name",
                               NULL, 0, secret_cols, NCOLS(secret_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list runtime secrets");
    return 0;
}

int aos_store_secret_put(aos_store_t *st, const char *name, const char *scope, const char *purpose,
                         const char *sealed, const char *actor, aos_err_t *err)
{
    if (!name || !*name || !scope || !*scope || !sealed || !*sealed)
        return aos_err_set(err, AOS_EINVAL,
                           "unable to save runtime secret: name, scope and value are required");
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(name),   aos__sql_text(scope), aos__sql_text(purpose),
                          aos__sql_text(sealed), aos__sql_text(actor), aos__sql_text(now),
                          aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO runtime_secrets (name, scope, purpose, sealed, "
                             "created_by, created_at, last_rotated) VALUES (?, ?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, "
                             "purpose = excluded.purpose, sealed = excluded.sealed, "
                             "last_rotated = excluded.last_rotated",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save runtime secret '%.64s'", name);
    return 0;
}

int aos_store_secret_delete(aos_store_t *st, const char *name, aos_err_t *err)
{
    aos__sql_val_t p = aos__sql_text(name);
    int64_t changes = 0;
    int rc =
        aos__store_exec(st, "DELETE FROM runtime_secrets WHERE name = ?", &p, 1, &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete runtime secret '%.64s'", name);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "runtime secret '%.64s' not found", name);
    return 0;
}

int aos_store_secret_reseal(aos_store_t *st, const char *name, const char *sealed, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(sealed), aos__sql_text(name)};
    int rc = aos__store_exec(st, "UPDATE runtime_secrets SET sealed = ? WHERE name = ?", p,
                             NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to reseal runtime secret '%.64s'", name);
    return 0;
}

static const col_t change_cols[] = {
    {"id", COL_TEXT},           {"op", COL_TEXT},         {"name", COL_TEXT},
    {"scope", COL_TEXT},        {"purpose", COL_TEXT},    {"sealed", COL_TEXT},
    {"requested_by", COL_TEXT}, {"created_at", COL_TEXT},
};

int aos_store_secret_change_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st,
                               "SELECT id, op, name, scope, purpose, sealed, requested_by, "
                               "created_at FROM secret_changes ORDER BY created_at, id",
                               NULL, 0, change_cols, NCOLS(change_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list pending secret changes");
    return 0;
}

int aos_store_secret_change_put(aos_store_t *st, const char *id, const char *op, const char *name,
                                const char *scope, const char *purpose, const char *sealed,
                                const char *requested_by, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(id),           aos__sql_text(op),
                          aos__sql_text(name),         aos__sql_text(scope),
                          aos__sql_text(purpose),      aos__sql_text(sealed),
                          aos__sql_text(requested_by), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO secret_changes (id, op, name, scope, purpose, sealed, "
                             "requested_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save pending change '%.64s'", id);
    return 0;
}

int aos_store_secret_change_delete(aos_store_t *st, const char *id, aos_err_t *err)
{
    aos__sql_val_t p = aos__sql_text(id);
    int64_t changes = 0;
    int rc = aos__store_exec(st, "DELETE FROM secret_changes WHERE id = ?", &p, 1, &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete pending change '%.64s'", id);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "pending change '%.64s' not found", id);
    return 0;
}

int aos_store_secret_change_reseal(aos_store_t *st, const char *id, const char *sealed,
                                   aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(sealed), aos__sql_text(id)};
    int rc = aos__store_exec(st, "UPDATE secret_changes SET sealed = ? WHERE id = ?", p, NCOLS(p),
                             NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to reseal pending change '%.64s'", id);
    return 0;
}

static const col_t var_cols[] = {
    {"id", COL_TEXT},           {"project_id", COL_TEXT}, {"name", COL_TEXT},
    {"scope", COL_TEXT},        {"usage", COL_TEXT},      {"secret_ref", COL_TEXT},
    {"last_rotated", COL_TEXT}, {"audit_ref", COL_INT},
};

int aos_store_project_var_list(aos_store_t *st, const char *project_id, json_t **out,
                               aos_err_t *err)
{
    aos__sql_val_t p = aos__sql_text(project_id);
    int rc = aos__store_select(st,
                               "SELECT id, project_id, name, scope, usage, secret_ref, "
                               "last_rotated, audit_ref FROM project_vars WHERE project_id = ? "
                               "ORDER BY name, scope",
                               &p, 1, var_cols, NCOLS(var_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list the variables of '%.64s'", project_id);
    return 0;
}

int aos_store_project_var_put(aos_store_t *st, const char *id, const char *project_id,
                              const char *name, const char *scope, const char *usage,
                              const char *secret_ref, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {
        aos__sql_text(id),    aos__sql_text(project_id), aos__sql_text(name), aos__sql_text(scope),
        aos__sql_text(usage), aos__sql_text(secret_ref), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO project_vars (id, project_id, name, scope, usage, "
                             "secret_ref, last_rotated) VALUES (?, ?, ?, ?, ?, ?, ?) "
                             "ON CONFLICT (project_id, scope, name) DO UPDATE SET "
                             "usage = excluded.usage, secret_ref = excluded.secret_ref, "
                             "last_rotated = excluded.last_rotated",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save variable '%.64s'", name);
    return 0;
}

int aos_store_project_var_delete(aos_store_t *st, const char *project_id, const char *name,
                                 aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(project_id), aos__sql_text(name)};
    int64_t changes = 0;
    int rc = aos__store_exec(st, "DELETE FROM project_vars WHERE project_id = ? AND name = ?", p,
                             NCOLS(p), &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete variable '%.64s'", name);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "variable '%.64s' not found", name);
    return 0;
}
