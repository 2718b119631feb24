/* users.c - the domain functions of store.h for users and their browser
 * sessions (migration 0013), in portable SQL over internal.h. Passwords
 * arrive hashed and TOTP secrets sealed: nothing here sees a secret. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <string.h>

static const col_t user_cols[] = {
    {"id", COL_TEXT},           {"name", COL_TEXT},
    {"role", COL_TEXT},         {"password_hash", COL_TEXT},
    {"disabled", COL_BOOL},     {"totp_secret", COL_TEXT},
    {"totp_enabled", COL_BOOL}, {"totp_last_step", COL_INT},
    {"created_by", COL_TEXT},   {"created_at", COL_TEXT},
    {"updated_at", COL_TEXT},   {"password_changed_at", COL_TEXT},
};

int aos_store_user_create(aos_store_t *st, const char *id, const char *name, const char *role,
                          const char *password_hash, const char *created_by, aos_err_t *err)
{
    if (!id || !*id || !name || !*name || !role || !*role)
        return aos_err_set(err, AOS_EINVAL, "unable to save user: id, name and role are required");
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(id),         aos__sql_text(name),
                          aos__sql_text(role),       aos__sql_text(password_hash),
                          aos__sql_text(created_by), aos__sql_text(now),
                          aos__sql_text(now),        aos__sql_text(password_hash ? now : NULL)};
    int rc = aos__store_exec(st,
                             "INSERT INTO users (id, name, role, password_hash, created_by, "
                             "created_at, updated_at, password_changed_at) "
                             "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save user '%.64s'", name);
    return 0;
}

int aos_store_user_update(aos_store_t *st, const char *id, const char *name, const char *role,
                          int disabled, const char *password_hash, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    char sql[256];
    size_t k = (size_t)snprintf(sql, sizeof(sql), "UPDATE users SET updated_at = ?");
    aos__sql_val_t p[8];
    int n = 0;
    p[n++] = aos__sql_text(now);
    if (name) {
        k += (size_t)snprintf(sql + k, sizeof(sql) - k, ", name = ?");
        p[n++] = aos__sql_text(name);
    }
    if (role) {
        k += (size_t)snprintf(sql + k, sizeof(sql) - k, ", role = ?");
        p[n++] = aos__sql_text(role);
    }
    if (disabled >= 0) {
        k += (size_t)snprintf(sql + k, sizeof(sql) - k, ", disabled = ?");
        p[n++] = aos__sql_int(disabled ? 1 : 0);
    }
    if (password_hash) {
        k += (size_t)snprintf(sql + k, sizeof(sql) - k,
                              ", password_hash = ?, password_changed_at = ?");
        p[n++] = aos__sql_text(password_hash);
        p[n++] = aos__sql_text(now);
    }
    snprintf(sql + k, sizeof(sql) - k, " WHERE id = ?");
    p[n++] = aos__sql_text(id);
    int64_t changes = 0;
    int rc = aos__store_exec(st, sql, p, n, &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update user '%.64s'", id);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "user '%.64s' not found", id);
    return 0;
}

int aos_store_user_totp(aos_store_t *st, const char *id, const char *sealed, int enabled,
                        int64_t last_step, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(sealed), aos__sql_int(enabled ? 1 : 0),
                          aos__sql_int(last_step), aos__sql_text(now), aos__sql_text(id)};
    int64_t changes = 0;
    int rc = aos__store_exec(st,
                             "UPDATE users SET totp_secret = ?, totp_enabled = ?, "
                             "totp_last_step = ?, updated_at = ? WHERE id = ?",
                             p, NCOLS(p), &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update user '%.64s'", id);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "user '%.64s' not found", id);
    return 0;
}

int aos_store_user_totp_step(aos_store_t *st, const char *id, int64_t step, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_int(step), aos__sql_text(id), aos__sql_int(step)};
    int64_t changes = 0;
    int rc = aos__store_exec(
        st, "UPDATE users SET totp_last_step = ? WHERE id = ? AND totp_last_step < ?", p, NCOLS(p),
        &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update user '%.64s'", id);
    if (changes == 0)
        return aos_err_set(err, AOS_ECONFLICT, "this code was used already");
    return 0;
}

int aos_store_user_delete(aos_store_t *st, const char *id, aos_err_t *err)
{
    char principal[80];
    snprintf(principal, sizeof(principal), "user:%s", id);
    aos__sql_val_t p[] = {aos__sql_text(id)};
    aos__sql_val_t g[] = {aos__sql_text(principal)};
    int64_t changes = 0;
    int rc = aos__store_exec(st, "DELETE FROM users WHERE id = ?", p, NCOLS(p), &changes, err);
    if (rc == 0 && changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "user '%.64s' not found", id);
    if (rc == 0)
        rc = aos__store_exec(st, "DELETE FROM rbac_grants WHERE principal = ?", g, NCOLS(g), NULL,
                             err);
    if (rc == 0)
        rc = aos__store_exec(st, "DELETE FROM auth_sessions WHERE user_id = ?", p, NCOLS(p), NULL,
                             err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete user '%.64s'", id);
    return 0;
}

int aos_store_user_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st,
                               "SELECT id, name, role, password_hash, disabled, totp_secret, "
                               "totp_enabled, totp_last_step, created_by, created_at, "
                               "updated_at, password_changed_at FROM users ORDER BY created_at, id",
                               NULL, 0, user_cols, NCOLS(user_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list users");
    return 0;
}

/* Sessions ---------------------------------------------------------------- */

static const col_t session_cols[] = {
    {"id", COL_TEXT},         {"user_id", COL_TEXT},    {"session_hash", COL_TEXT},
    {"created_at", COL_TEXT}, {"expires_at", COL_TEXT}, {"last_seen_at", COL_TEXT},
    {"client", COL_TEXT},
};

int aos_store_session_create(aos_store_t *st, const char *id, const char *user_id,
                             const char *session_hash, const char *expires_at, const char *client,
                             aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(id),           aos__sql_text(user_id),
                          aos__sql_text(session_hash), aos__sql_text(now),
                          aos__sql_text(expires_at),   aos__sql_text(now),
                          aos__sql_text(client)};
    int rc = aos__store_exec(st,
                             "INSERT INTO auth_sessions (id, user_id, session_hash, created_at, "
                             "expires_at, last_seen_at, client) VALUES (?, ?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save session '%.64s'", id);
    return 0;
}

int aos_store_session_end(aos_store_t *st, const char *id, const char *user_id, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(now), aos__sql_text(id ? id : user_id)};
    int rc = aos__store_exec(st,
                             id ? "UPDATE auth_sessions SET ended_at = ? WHERE id = ? AND ended_at "
                                  "IS NULL"
                                : "UPDATE auth_sessions SET ended_at = ? WHERE user_id = ? AND "
                                  "ended_at IS NULL",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to end a session");
    return 0;
}

int aos_store_session_touch(aos_store_t *st, const char *id, const char *at, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(at), aos__sql_text(id)};
    int rc = aos__store_exec(st, "UPDATE auth_sessions SET last_seen_at = ? WHERE id = ?", p,
                             NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update session '%.64s'", id);
    return 0;
}

int aos_store_session_list(aos_store_t *st, const char *now, json_t **out, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(now)};
    int rc = aos__store_select(st,
                               "SELECT id, user_id, session_hash, created_at, expires_at, "
                               "last_seen_at, client FROM auth_sessions WHERE ended_at IS NULL "
                               "AND expires_at > ? ORDER BY created_at, id",
                               p, NCOLS(p), session_cols, NCOLS(session_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list sessions");
    return 0;
}

int aos_store_session_purge(aos_store_t *st, const char *before, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(before), aos__sql_text(before)};
    int rc = aos__store_exec(st, "DELETE FROM auth_sessions WHERE ended_at < ? OR expires_at < ?",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to purge sessions");
    return 0;
}
