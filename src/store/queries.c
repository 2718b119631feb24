/* queries.c - the domain functions of store.h: the registry, API tokens,
 * settings and counters, written once in portable SQL over
 * the backend calls of internal.h.
 *
 * Rows come back as JSON objects through one generic collector, driven by a
 * table naming each selected column and how to turn it into JSON. JSON
 * columns are stored as compact text; timestamps are set here, not by SQL
 * defaults, so both backends write the same text. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <stdlib.h>
#include <string.h>

typedef struct {
    const col_t *cols; /* in the order of the SELECT */
    int ncols;
    json_t *rows; /* array being filled */
} collect_t;

static json_t *col_to_json(const aos__sql_val_t *v, col_kind_t kind)
{
    if (v->type == AOS__SQL_NULL)
        return json_null();
    switch (kind) {
    case COL_TEXT:
        return v->type == AOS__SQL_TEXT ? json_stringn(v->p, v->len) : NULL;
    case COL_INT:
        return v->type == AOS__SQL_INT ? json_integer(v->i) : NULL;
    case COL_BOOL:
        return v->type == AOS__SQL_INT ? json_boolean(v->i != 0) : NULL;
    case COL_JSON:
        return v->type == AOS__SQL_TEXT ? json_loadb(v->p, v->len, JSON_DECODE_ANY, NULL) : NULL;
    case COL_REAL:
        return v->type == AOS__SQL_REAL  ? json_real(v->r)
               : v->type == AOS__SQL_INT ? json_real((double)v->i)
                                         : NULL;
    }
    return NULL;
}

static int collect_row(const aos__sql_val_t *vals, int nvals, void *arg, aos_err_t *err)
{
    collect_t *c = arg;
    if (nvals != c->ncols)
        return aos_err_set(err, AOS_EINTERNAL, "query returned %d columns, expected %d", nvals,
                           c->ncols);
    json_t *row = json_object();
    if (!row || json_array_append_new(c->rows, row) < 0)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    for (int i = 0; i < nvals; i++) {
        json_t *v = col_to_json(&vals[i], c->cols[i].kind);
        if (!v)
            return aos_err_set(err, AOS_ESTORE, "unreadable value in column '%s'", c->cols[i].name);
        if (json_object_set_new(row, c->cols[i].name, v) < 0)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    return 0;
}

int aos__store_select(aos_store_t *st, const char *sql, const aos__sql_val_t *params, int nparams,
                      const col_t *cols, int ncols, json_t **out, aos_err_t *err)
{
    collect_t c = {cols, ncols, json_array()};
    *out = NULL;
    if (!c.rows)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    int rc = aos__store_query(st, sql, params, nparams, collect_row, &c, err);
    if (rc < 0) {
        json_decref(c.rows);
        return rc;
    }
    *out = c.rows;
    return 0;
}

/* Like select_rows for a query of at most one row: *out is that row, or
 * AOS_ENOTFOUND (err untouched) when there is none. */
static int select_one(aos_store_t *st, const char *sql, const char *key, const col_t *cols,
                      int ncols, json_t **out, aos_err_t *err)
{
    json_t *rows;
    aos__sql_val_t p = aos__sql_text(key);
    *out = NULL;
    int rc = aos__store_select(st, sql, &p, 1, cols, ncols, &rows, err);
    if (rc < 0)
        return rc;
    if (json_array_size(rows) == 0)
        rc = AOS_ENOTFOUND;
    else
        *out = json_incref(json_array_get(rows, 0));
    json_decref(rows);
    return rc;
}

/* Input checks ----------------------------------------------------------- */

static int nonempty(const char *s)
{
    return s && s[0];
}

/* The string member key of obj in *out: NULL when absent or null (an error
 * if required), AOS_EINVAL when it is not a string or holds a NUL. */
static int member_str(const json_t *obj, const char *key, int required, const char **out,
                      aos_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
        aos_err_set(err, AOS_EINVAL, "'%s' is required", key);
    } else if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        aos_err_set(err, AOS_EINVAL, "'%s' must be a string", key);
    } else if (required && !json_string_value(v)[0]) {
        aos_err_set(err, AOS_EINVAL, "'%s' must not be empty", key);
    } else {
        *out = json_string_value(v);
        return 0;
    }
    return AOS_EINVAL;
}

/* Compact JSON text of the member key of obj, which must be of one of the
 * accepted types; "{}" when absent or null. The caller frees *out. */
static int member_json(const json_t *obj, const char *key, int allow_array, char **out,
                       aos_err_t *err)
{
    json_t *v = json_object_get(obj, key);
    *out = NULL;
    if (v && !json_is_null(v) && !json_is_object(v) && !(allow_array && json_is_array(v)))
        return aos_err_set(err, AOS_EINVAL, "'%s' must be an object%s", key,
                           allow_array ? " or an array" : "");
    *out = (v && !json_is_null(v)) ? json_dumps(v, JSON_COMPACT) : strdup("{}");
    if (!*out)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return 0;
}

/* MCP registry ---------------------------------------------------------- */

/* Must match the SELECT list of REGISTRY_SELECT, in order. */
static const col_t registry_cols[] = {
    {"name", COL_TEXT},        {"transport", COL_TEXT},    {"base_url", COL_TEXT},
    {"description", COL_TEXT}, {"capabilities", COL_JSON}, {"config", COL_JSON},
    {"auth_token", COL_TEXT},  {"timeout_ms", COL_INT},    {"enabled", COL_BOOL},
    {"created_at", COL_TEXT},  {"updated_at", COL_TEXT},
};

#define REGISTRY_SELECT                                                                            \
    "SELECT name, transport, base_url, description, capabilities, config, auth_token, "            \
    "timeout_ms, enabled, created_at, updated_at FROM mcp_registry"

int aos_store_registry_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st, REGISTRY_SELECT " ORDER BY name", NULL, 0, registry_cols,
                               NCOLS(registry_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list registry");
    return 0;
}

int aos_store_registry_get(aos_store_t *st, const char *name, json_t **out, aos_err_t *err)
{
    *out = NULL;
    if (!nonempty(name))
        return aos_err_set(err, AOS_EINVAL, "unable to read registry entry: no name");
    int rc = select_one(st, REGISTRY_SELECT " WHERE name = ?", name, registry_cols,
                        NCOLS(registry_cols), out, err);
    if (rc == AOS_ENOTFOUND)
        return aos_err_set(err, rc, "registry entry '%.100s' not found", name);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read registry entry '%.100s'", name);
    return 0;
}

int aos_store_registry_put(aos_store_t *st, const json_t *entry, aos_err_t *err)
{
    const char *name = NULL, *transport, *base_url, *description, *auth_token;
    char *capabilities = NULL, *config = NULL;
    aos__sql_val_t timeout = aos__sql_null();
    int enabled = 1;
    int rc;

    if (!json_is_object(entry)) {
        rc = aos_err_set(err, AOS_EINVAL, "not an object");
        goto out;
    }
    if ((rc = member_str(entry, "name", 1, &name, err)) < 0 ||
        (rc = member_str(entry, "transport", 1, &transport, err)) < 0 ||
        (rc = member_str(entry, "base_url", 1, &base_url, err)) < 0 ||
        (rc = member_str(entry, "description", 0, &description, err)) < 0 ||
        (rc = member_str(entry, "auth_token", 0, &auth_token, err)) < 0)
        goto out;
    if (strcmp(transport, "stdio") != 0 && strcmp(transport, "streamable-http") != 0 &&
        strcmp(transport, "sse") != 0) {
        rc = aos_err_set(err, AOS_EINVAL,
                         "'transport' must be \"stdio\", \"streamable-http\" or \"sse\"");
        goto out;
    }
    json_t *v = json_object_get(entry, "timeout_ms");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 0) {
            rc = aos_err_set(err, AOS_EINVAL, "'timeout_ms' must be an integer >= 0");
            goto out;
        }
        timeout = aos__sql_int(json_integer_value(v));
    }
    v = json_object_get(entry, "enabled");
    if (v && !json_is_null(v)) {
        if (!json_is_boolean(v)) {
            rc = aos_err_set(err, AOS_EINVAL, "'enabled' must be a boolean");
            goto out;
        }
        enabled = json_is_true(v);
    }
    if ((rc = member_json(entry, "capabilities", 1, &capabilities, err)) < 0 ||
        (rc = member_json(entry, "config", 0, &config, err)) < 0)
        goto out;

    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {
        aos__sql_text(name),         aos__sql_text(transport),
        aos__sql_text(base_url),     aos__sql_text(description),
        aos__sql_text(capabilities), aos__sql_text(config),
        aos__sql_text(auth_token),   timeout,
        aos__sql_int(enabled),       aos__sql_text(now),
        aos__sql_text(now),
    };
    rc = aos__store_exec(st,
                         "INSERT INTO mcp_registry (name, transport, base_url, description, "
                         "capabilities, config, auth_token, timeout_ms, enabled, created_at, "
                         "updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                         "ON CONFLICT (name) DO UPDATE SET transport = excluded.transport, "
                         "base_url = excluded.base_url, description = excluded.description, "
                         "capabilities = excluded.capabilities, config = excluded.config, "
                         "auth_token = excluded.auth_token, timeout_ms = excluded.timeout_ms, "
                         "enabled = excluded.enabled, updated_at = excluded.updated_at",
                         p, NCOLS(p), NULL, err);
out:
    free(capabilities);
    free(config);
    if (rc < 0) {
        if (name)
            return aos__store_fail(err, rc, "unable to save registry entry '%.100s'", name);
        return aos__store_fail(err, rc, "unable to save registry entry");
    }
    return 0;
}

int aos_store_registry_delete(aos_store_t *st, const char *name, aos_err_t *err)
{
    int64_t changes = 0;
    if (!nonempty(name))
        return aos_err_set(err, AOS_EINVAL, "unable to delete registry entry: no name");
    aos__sql_val_t p = aos__sql_text(name);
    int rc = aos__store_exec(st, "DELETE FROM mcp_registry WHERE name = ?", &p, 1, &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete registry entry '%.100s'", name);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "registry entry '%.100s' not found", name);
    return 0;
}

/* API tokens ------------------------------------------------------------ */

static const col_t token_cols[] = {
    {"id", COL_TEXT},         {"name", COL_TEXT},       {"role", COL_TEXT},
    {"token_hash", COL_TEXT}, {"created_at", COL_TEXT}, {"last_used_at", COL_TEXT},
    {"prefix", COL_TEXT},     {"created_by", COL_TEXT}, {"expires_at", COL_TEXT},
    {"revoked_at", COL_TEXT},
};

int aos_store_token_create(aos_store_t *st, const char *id, const char *name, const char *role,
                           const char *token_hash, const char *prefix, const char *created_by,
                           const char *expires_at, aos_err_t *err)
{
    if (!nonempty(id) || !nonempty(role) || !nonempty(token_hash))
        return aos_err_set(err, AOS_EINVAL, "unable to save token: id, role and hash are required");
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(id),         aos__sql_text(name),
                          aos__sql_text(role),       aos__sql_text(token_hash),
                          aos__sql_text(now),        aos__sql_text(prefix),
                          aos__sql_text(created_by), aos__sql_text(expires_at)};
    int rc = aos__store_exec(st,
                             "INSERT INTO api_tokens (id, name, role, token_hash, created_at, "
                             "prefix, created_by, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save token '%.100s'", id);
    return 0;
}

int aos_store_token_put(aos_store_t *st, const char *id, const char *name, const char *role,
                        const char *token_hash, aos_err_t *err)
{
    return aos_store_token_create(st, id, name, role, token_hash, NULL, NULL, NULL, err);
}

int aos_store_token_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st,
                               "SELECT id, name, role, token_hash, created_at, last_used_at, "
                               "prefix, created_by, expires_at, revoked_at "
                               "FROM api_tokens ORDER BY created_at, id",
                               NULL, 0, token_cols, NCOLS(token_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list tokens");
    return 0;
}

int aos_store_token_revoke(aos_store_t *st, const char *id, aos_err_t *err)
{
    if (!nonempty(id))
        return aos_err_set(err, AOS_EINVAL, "unable to revoke token: no id");
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(now), aos__sql_text(id)};
    int64_t changes = 0;
    int rc = aos__store_exec(
        st, "UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL", p, NCOLS(p),
        &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to revoke token '%.100s'", id);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "token '%.100s' not found", id);
    return 0;
}

int aos_store_token_touch(aos_store_t *st, const char *id, const char *last_used_at, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(last_used_at), aos__sql_text(id)};
    int rc = aos__store_exec(st, "UPDATE api_tokens SET last_used_at = ? WHERE id = ?", p, NCOLS(p),
                             NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update token '%.100s'", id);
    return 0;
}

/* Grants ---------------------------------------------------------------- */

static const col_t grant_cols[] = {
    {"id", COL_TEXT},       {"principal", COL_TEXT},  {"role", COL_TEXT},
    {"resource", COL_TEXT}, {"created_by", COL_TEXT}, {"created_at", COL_TEXT},
};

int aos_store_grant_put(aos_store_t *st, const char *id, const char *principal, const char *role,
                        const char *resource, const char *created_by, aos_err_t *err)
{
    if (!nonempty(id) || !nonempty(principal) || !nonempty(role) || !nonempty(resource))
        return aos_err_set(err, AOS_EINVAL,
                           "unable to save grant: id, principal, role and resource are required");
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(id),       aos__sql_text(principal),  aos__sql_text(role),
                          aos__sql_text(resource), aos__sql_text(created_by), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO rbac_grants (id, principal, role, resource, created_by, "
                             "created_at) VALUES (?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save grant '%.100s'", id);
    return 0;
}

int aos_store_grant_delete(aos_store_t *st, const char *id, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(id)};
    int64_t changes = 0;
    int rc =
        aos__store_exec(st, "DELETE FROM rbac_grants WHERE id = ?", p, NCOLS(p), &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete grant '%.100s'", id);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "grant '%.100s' not found", id);
    return 0;
}

int aos_store_grant_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st,
                               "SELECT id, principal, role, resource, created_by, created_at "
                               "FROM rbac_grants ORDER BY created_at, id",
                               NULL, 0, grant_cols, NCOLS(grant_cols), out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list grants");
    return 0;
}

/* Custom roles (migration 0025) ----------------------------------------- */

static const col_t role_cols[] = {
    {"name", COL_TEXT},       {"description", COL_TEXT}, {"grants", COL_JSON},
    {"created_by", COL_TEXT}, {"created_at", COL_TEXT},  {"updated_at", COL_TEXT},
};

#define ROLE_SELECT                                                                                \
    "SELECT name, description, grants, created_by, created_at, updated_at FROM rbac_roles"

int aos_store_role_create(aos_store_t *st, const char *name, const char *description,
                          const char *grants, const char *created_by, aos_err_t *err)
{
    if (!nonempty(name) || !nonempty(grants))
        return aos_err_set(err, AOS_EINVAL, "unable to save role: name and grants are required");
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(name),   aos__sql_text(description),
                          aos__sql_text(grants), aos__sql_text(created_by),
                          aos__sql_text(now),    aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO rbac_roles (name, description, grants, created_by, "
                             "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    if (rc == AOS_ECONFLICT)
        return aos_err_set(err, AOS_ECONFLICT, "a role '%.64s' exists already", name);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save role '%.64s'", name);
    return 0;
}

int aos_store_role_update(aos_store_t *st, const char *name, const char *description,
                          const char *grants, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    char sql[160];
    size_t k = (size_t)snprintf(sql, sizeof(sql), "UPDATE rbac_roles SET updated_at = ?");
    aos__sql_val_t p[4];
    int n = 0;
    p[n++] = aos__sql_text(now);
    if (description) {
        k += (size_t)snprintf(sql + k, sizeof(sql) - k, ", description = ?");
        p[n++] = aos__sql_text(description);
    }
    if (grants) {
        k += (size_t)snprintf(sql + k, sizeof(sql) - k, ", grants = ?");
        p[n++] = aos__sql_text(grants);
    }
    snprintf(sql + k, sizeof(sql) - k, " WHERE name = ?");
    p[n++] = aos__sql_text(name);
    int64_t changes = 0;
    int rc = aos__store_exec(st, sql, p, n, &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to update role '%.64s'", name);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "role '%.64s' not found", name);
    return 0;
}

static int read_count(const aos__sql_val_t *cols, int ncols, void *arg, aos_err_t *err)
{
    (void)err;
    if (ncols == 1 && cols[0].type == AOS__SQL_INT)
        *(int64_t *)arg = cols[0].i;
    return 0;
}

int aos_store_role_grants(aos_store_t *st, const char *name, int64_t *n, aos_err_t *err)
{
    aos__sql_val_t p[] = {aos__sql_text(name)};
    *n = 0;
    int rc = aos__store_query(st, "SELECT COUNT(*) FROM rbac_grants WHERE role = ?", p, NCOLS(p),
                              read_count, n, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to count the grants of role '%.64s'", name)
                  : 0;
}

int aos_store_role_delete(aos_store_t *st, const char *name, aos_err_t *err)
{
    int64_t held = 0;
    int rc = aos_store_role_grants(st, name, &held, err);
    if (rc)
        return rc;
    if (held)
        return aos_err_set(err, AOS_ECONFLICT,
                           "role '%.64s' is held by %lld grant(s): delete them first", name,
                           (long long)held);
    aos__sql_val_t p[] = {aos__sql_text(name)};
    int64_t changes = 0;
    rc = aos__store_exec(st, "DELETE FROM rbac_roles WHERE name = ?", p, NCOLS(p), &changes, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to delete role '%.64s'", name);
    if (changes == 0)
        return aos_err_set(err, AOS_ENOTFOUND, "role '%.64s' not found", name);
    return 0;
}

int aos_store_role_get(aos_store_t *st, const char *name, json_t **out, aos_err_t *err)
{
    int rc =
        select_one(st, ROLE_SELECT " WHERE name = ?", name, role_cols, NCOLS(role_cols), out, err);
    if (rc == AOS_ENOTFOUND)
        return aos_err_set(err, AOS_ENOTFOUND, "role '%.64s' not found", name);
    return rc < 0 ? aos__store_fail(err, rc, "unable to read role '%.64s'", name) : 0;
}

int aos_store_role_list(aos_store_t *st, json_t **out, aos_err_t *err)
{
    int rc = aos__store_select(st, ROLE_SELECT " ORDER BY name", NULL, 0, role_cols,
                               NCOLS(role_cols), out, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to list roles") : 0;
}

/* Settings -------------------------------------------------------------- */

static const col_t setting_cols[] = {{"value", COL_JSON}};

int aos_store_setting_get(aos_store_t *st, const char *key, json_t **out, aos_err_t *err)
{
    json_t *row;
    *out = NULL;
    if (!nonempty(key))
        return aos_err_set(err, AOS_EINVAL, "unable to read setting: no key");
    int rc = select_one(st, "SELECT value FROM settings WHERE key = ?", key, setting_cols,
                        NCOLS(setting_cols), &row, err);
    if (rc == AOS_ENOTFOUND)
        return aos_err_set(err, rc, "setting '%.100s' not found", key);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read setting '%.100s'", key);
    *out = json_incref(json_object_get(row, "value"));
    json_decref(row);
    return 0;
}

int aos_store_setting_put(aos_store_t *st, const char *key, const json_t *value, aos_err_t *err)
{
    if (!nonempty(key) || !value)
        return aos_err_set(err, AOS_EINVAL, "unable to save setting: key and value are required");
    char *text = json_dumps(value, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text)
        return aos_err_set(err, AOS_ENOMEM, "unable to save setting '%.100s': out of memory", key);
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(key), aos__sql_text(text), aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?) "
                             "ON CONFLICT (key) DO UPDATE SET value = excluded.value, "
                             "updated_at = excluded.updated_at",
                             p, NCOLS(p), NULL, err);
    free(text);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save setting '%.100s'", key);
    return 0;
}

/* Counters -------------------------------------------------------------- */

static const col_t counter_cols[] = {{"period", COL_INT}, {"value", COL_INT}};

int aos_store_counter_put(aos_store_t *st, const char *name, int64_t period, int64_t value,
                          aos_err_t *err)
{
    if (!nonempty(name) || value < 0)
        return aos_err_set(err, AOS_EINVAL,
                           "unable to save counter: a name and a value >= 0 are required");
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(name), aos__sql_int(period), aos__sql_int(value),
                          aos__sql_text(now)};
    int rc = aos__store_exec(st,
                             "INSERT INTO counters (name, period, value, updated_at) "
                             "VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET "
                             "period = excluded.period, value = excluded.value, "
                             "updated_at = excluded.updated_at",
                             p, NCOLS(p), NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to save counter '%.100s'", name);
    return 0;
}

int aos_store_counter_get(aos_store_t *st, const char *name, int64_t *period, int64_t *value,
                          aos_err_t *err)
{
    json_t *row;
    if (!nonempty(name))
        return aos_err_set(err, AOS_EINVAL, "unable to read counter: no name");
    int rc = select_one(st, "SELECT period, value FROM counters WHERE name = ?", name, counter_cols,
                        NCOLS(counter_cols), &row, err);
    if (rc == AOS_ENOTFOUND)
        return aos_err_set(err, rc, "counter '%.100s' not found", name);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read counter '%.100s'", name);
    *period = json_integer_value(json_object_get(row, "period"));
    *value = json_integer_value(json_object_get(row, "value"));
    json_decref(row);
    return 0;
}
