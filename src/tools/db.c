/* db.c - the built-in server "db": SQL on a SQLite file of the workspace,
 * in the spirit of the reference sqlite MCP server (query, execute,
 * tables).
 *
 * Read-only is enforced by how the file is opened, not by reading the
 * SQL: "query" and "tables" open the file that openat2 resolved beneath
 * the workspace through its /proc/self/fd link, SQLITE_OPEN_READONLY and
 * immutable (no journal, no lock files), so the file SQLite reads is the
 * one that was checked. "execute" opens the file for writing only when
 * the caller's caps allow it (caps.db_write true, or no caps: an API
 * client whose role already allows calling tools); otherwise it opens it
 * read-only too and SQLite refuses any change. A writable connection
 * needs the real path (SQLite makes its journal beside it): the path the
 * kernel resolved, opened with SQLITE_OPEN_NOFOLLOW, and checked to be the
 * same inode before and after.
 *
 * Every connection is defensive (SQLITE_DBCONFIG_DEFENSIVE, untrusted
 * schema), may attach nothing (ATTACH and VACUUM INTO would reach files
 * outside the workspace: the authorizer denies them), runs at most
 * timeout_ms (a progress handler) and returns at most max_rows rows. */
#include "tools/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utf8/utf8.h"

#define ROWS_DEFAULT 1000
#define ROWS_MAX     10000
#define MS_DEFAULT   5000
#define MS_MAX       60000
#define CELL_MAX     (1u << 20) /* bytes of one text or blob value returned */

typedef struct {
    uint64_t deadline_ns;
    int timed_out;
} limits_t;

static int on_progress(void *arg)
{
    limits_t *l = arg;
    if (uv_hrtime() > l->deadline_ns) {
        l->timed_out = 1;
        return 1;
    }
    return 0;
}

static int authorize(void *arg, int action, const char *a, const char *b, const char *c,
                     const char *d)
{
    (void)arg;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    if (action == SQLITE_ATTACH || action == SQLITE_DETACH)
        return SQLITE_DENY;
    return SQLITE_OK;
}

/* Opens the database at the job's "path". write: a writable connection. */
static sqlite3 *open_db(tools_job_t *j, int write, int create, limits_t *lim, aos_err_t *err)
{
    const char *path = aos__tools_path(j->args, "path", err);
    if (!path)
        return NULL;
    int fd;
    if (write && create) {
        const char *name;
        int dir = aos_tools_ws_parent(j->root, path, 1, &name, err);
        if (dir < 0)
            return NULL;
        close(dir);
        fd = aos_tools_ws_open(j->root, path, O_RDWR | O_CREAT, 0644, 0, err);
    } else {
        fd = aos_tools_ws_open(j->root, path, write ? O_RDWR : O_RDONLY, 0, 0, err);
    }
    if (fd < 0)
        return NULL;
    struct stat sb, after;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        aos_err_set(err, AOS_EINVAL, "'%.200s' is not a file", path);
        return NULL;
    }
    char uri[4200];
    sqlite3 *db = NULL;
    int rc;
    if (!write) {
        snprintf(uri, sizeof(uri), "file:/proc/self/fd/%d?immutable=1", fd);
        rc = sqlite3_open_v2(uri, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
    } else {
        char link[64], real[4096];
        snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
        ssize_t n = readlink(link, real, sizeof(real) - 1);
        if (n <= 0) {
            close(fd);
            aos_err_set(err, AOS_EIO, "unable to resolve '%.200s'", path);
            return NULL;
        }
        real[n] = '\0';
        rc = sqlite3_open_v2(real, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOFOLLOW, NULL);
        /* the same file as the one resolved beneath the workspace */
        if (rc == SQLITE_OK &&
            (stat(real, &after) != 0 || after.st_ino != sb.st_ino || after.st_dev != sb.st_dev)) {
            sqlite3_close(db);
            close(fd);
            aos_err_set(err, AOS_ECONFLICT, "'%.200s' changed while it was being opened", path);
            return NULL;
        }
    }
    close(fd); /* SQLite has its own descriptor now */
    if (rc != SQLITE_OK) {
        aos_err_set(err, AOS_EIO, "unable to open '%.200s': %s", path,
                    db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return NULL;
    }
    sqlite3_db_config(db, SQLITE_DBCONFIG_DEFENSIVE, 1, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_TRUSTED_SCHEMA, 0, NULL);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 0, NULL);
    sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, 0);
    sqlite3_limit(db, SQLITE_LIMIT_LENGTH, 64 << 20);
    sqlite3_set_authorizer(db, authorize, NULL);
    sqlite3_progress_handler(db, 1000, on_progress, lim);
    sqlite3_busy_timeout(db, 1000);
    return db;
}

static json_t *cell(sqlite3_stmt *st, int i)
{
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_INTEGER:
        return json_integer((json_int_t)sqlite3_column_int64(st, i));
    case SQLITE_FLOAT:
        return json_real(sqlite3_column_double(st, i));
    case SQLITE_TEXT: {
        const char *s = (const char *)sqlite3_column_text(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        if (n > CELL_MAX)
            n = aos_utf8_trim(s, CELL_MAX);
        if (aos_utf8_valid(s, n))
            return json_stringn_nocheck(s, n);
        char *o = malloc(3 * n + 1);
        json_t *v = NULL;
        if (o) {
            aos_utf8_scrub(o, 3 * n + 1, s, n);
            v = json_string(o);
        }
        free(o);
        return v;
    }
    case SQLITE_BLOB: {
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        if (n > CELL_MAX)
            n = CELL_MAX;
        size_t b = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
        char *o = malloc(b);
        if (!o)
            return NULL;
        sodium_bin2base64(o, b, sqlite3_column_blob(st, i), n, sodium_base64_VARIANT_ORIGINAL);
        json_t *v = json_pack("{s:s}", "base64", o);
        free(o);
        return v;
    }
    default:
        return json_null();
    }
}

static int bind_params(sqlite3_stmt *st, const json_t *params, aos_err_t *err)
{
    if (!params || json_is_null(params))
        return 0;
    if (!json_is_array(params))
        return aos_err_set(err, AOS_EINVAL, "'params' must be an array");
    if ((int)json_array_size(params) != sqlite3_bind_parameter_count(st))
        return aos_err_set(err, AOS_EINVAL, "the statement takes %d parameters, %zu given",
                           sqlite3_bind_parameter_count(st), json_array_size(params));
    size_t i;
    const json_t *v;
    json_array_foreach(params, i, v)
    {
        int k = (int)i + 1, rc;
        if (json_is_integer(v))
            rc = sqlite3_bind_int64(st, k, json_integer_value(v));
        else if (json_is_real(v))
            rc = sqlite3_bind_double(st, k, json_real_value(v));
        else if (json_is_string(v))
            rc = sqlite3_bind_text(st, k, json_string_value(v), (int)json_string_length(v),
                                   SQLITE_TRANSIENT);
        else if (json_is_boolean(v))
            rc = sqlite3_bind_int(st, k, json_is_true(v));
        else if (json_is_null(v))
            rc = sqlite3_bind_null(st, k);
        else
            return aos_err_set(err, AOS_EINVAL, "parameter %d must be a scalar", k);
        if (rc != SQLITE_OK)
            return aos_err_set(err, AOS_EINVAL, "parameter %d: %s", k, sqlite3_errstr(rc));
    }
    return 0;
}

/* Runs the one statement of "sql": columns, rows (at most max_rows). */
static json_t *run_sql(tools_job_t *j, int write, aos_err_t *err)
{
    const json_t *sqlv = json_object_get(j->args, "sql");
    if (!json_is_string(sqlv) || !json_string_length(sqlv))
        return aos_err_set(err, AOS_EINVAL, "'sql' must be a statement"), NULL;
    long long max = aos__tools_int(j->args, "max_rows", ROWS_DEFAULT);
    long long ms = aos__tools_int(j->args, "timeout_ms", MS_DEFAULT);
    if (max < 1 || max > ROWS_MAX || ms < 1 || ms > MS_MAX)
        return aos_err_set(err, AOS_EINVAL, "max_rows must be 1..%d and timeout_ms 1..%d", ROWS_MAX,
                           MS_MAX),
               NULL;
    limits_t lim = {uv_hrtime() + (uint64_t)ms * 1000000, 0};
    int allowed = write && (j->flags & TOOLS_DB_WRITE);
    if (write && !allowed && aos__tools_bool(j->args, "create", 0))
        return aos_err_set(err, AOS_EFORBIDDEN,
                           "the caller's caps do not allow database writes: nothing is created"),
               NULL;
    sqlite3 *db = open_db(j, allowed, allowed && aos__tools_bool(j->args, "create", 0), &lim, err);
    if (!db)
        return NULL;
    sqlite3_stmt *st = NULL;
    const char *tail = NULL;
    json_t *out = NULL, *cols = NULL, *rows = NULL;
    int rc =
        sqlite3_prepare_v2(db, json_string_value(sqlv), (int)json_string_length(sqlv), &st, &tail);
    if (rc != SQLITE_OK || !st) {
        aos_err_set(err, AOS_EINVAL, "%s",
                    st || rc != SQLITE_OK ? sqlite3_errmsg(db) : "no statement in 'sql'");
        goto out;
    }
    while (tail &&
           (*tail == ' ' || *tail == '\n' || *tail == '\t' || *tail == ';' || *tail == '\r'))
        tail++;
    if (tail && *tail) {
        aos_err_set(err, AOS_EINVAL, "one statement per call");
        goto out;
    }
    if (!write && !sqlite3_stmt_readonly(st)) {
        aos_err_set(err, AOS_EINVAL, "query runs statements that read: use execute to write");
        goto out;
    }
    if (bind_params(st, json_object_get(j->args, "params"), err))
        goto out;
    int nc = sqlite3_column_count(st);
    cols = json_array();
    rows = json_array();
    for (int i = 0; i < nc; i++)
        json_array_append_new(cols, json_string(sqlite3_column_name(st, i) ?: ""));
    int truncated = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if ((long long)json_array_size(rows) >= max) {
            truncated = 1;
            break;
        }
        json_t *row = json_array();
        for (int i = 0; i < nc; i++)
            json_array_append_new(row, cell(st, i));
        json_array_append_new(rows, row);
    }
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
        if (lim.timed_out)
            aos_err_set(err, AOS_ETIMEDOUT, "the statement ran longer than %lld ms", ms);
        else if (rc == SQLITE_READONLY || (write && !allowed && rc == SQLITE_AUTH))
            aos_err_set(err, AOS_EFORBIDDEN,
                        "the database is open read-only: the caller's caps do not allow "
                        "writes (%s)",
                        sqlite3_errmsg(db));
        else if (rc == SQLITE_AUTH)
            aos_err_set(err, AOS_EFORBIDDEN, "%s (ATTACH and VACUUM INTO are not allowed)",
                        sqlite3_errmsg(db));
        else
            aos_err_set(err, AOS_EINVAL, "%s", sqlite3_errmsg(db));
        goto out;
    }
    out = json_pack("{s:O, s:O, s:I, s:b}", "columns", cols, "rows", rows, "row_count",
                    (json_int_t)json_array_size(rows), "truncated", truncated);
    if (out && write)
        json_object_set_new(out, "changes", json_integer(sqlite3_changes(db)));
out:
    json_decref(cols);
    json_decref(rows);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return out;
}

static json_t *run_query(tools_job_t *j, aos_err_t *err)
{
    return run_sql(j, 0, err);
}

static json_t *run_execute(tools_job_t *j, aos_err_t *err)
{
    return run_sql(j, 1, err);
}

static json_t *run_tables(tools_job_t *j, aos_err_t *err)
{
    json_t *args = json_pack("{s:O, s:s}", "path", json_object_get(j->args, "path"), "sql",
                             "SELECT name, type, sql FROM sqlite_schema WHERE type IN "
                             "('table','view') AND name NOT LIKE 'sqlite_%' ORDER BY name");
    json_t *saved = j->args;
    j->args = args;
    json_t *res = run_sql(j, 0, err);
    j->args = saved;
    json_decref(args);
    if (!res)
        return NULL;
    json_t *tables = json_array();
    size_t i;
    json_t *row;
    json_array_foreach(json_object_get(res, "rows"), i, row) json_array_append_new(
        tables, json_pack("{s:O, s:O, s:O}", "name", json_array_get(row, 0), "type",
                          json_array_get(row, 1), "sql", json_array_get(row, 2)));
    json_decref(res);
    return json_pack("{s:o}", "tables", tables);
}

static json_t *db_tools(void *data)
{
    json_t *sql_in = json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:i, s:i}, s:{s:s, s:i, "
        "s:i}}, s:[s,s]}",
        "type", "object", "properties", "path", "type", "string", "description",
        "the SQLite file (in the workspace)", "sql", "type", "string", "description",
        "one SQL statement", "params", "type", "array", "description",
        "values for the statement's ? parameters", "max_rows", "type", "integer", "minimum", 1,
        "maximum", ROWS_MAX, "timeout_ms", "type", "integer", "minimum", 1, "maximum", MS_MAX,
        "required", "path", "sql");
    json_t *exec_in = json_deep_copy(sql_in);
    json_object_set_new(json_object_get(exec_in, "properties"), "create",
                        json_pack("{s:s, s:s}", "type", "boolean", "description",
                                  "make the database file if it is missing"));
    json_t *rows_out =
        json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}, s:[s,s]}", "type", "object",
                  "properties", "columns", "type", "array", "rows", "type", "array", "row_count",
                  "type", "integer", "truncated", "type", "boolean", "required", "columns", "rows");
    json_t *exec_out = json_deep_copy(rows_out);
    json_object_set_new(json_object_get(exec_out, "properties"), "changes",
                        json_pack("{s:s}", "type", "integer"));
    return json_pack(
        "[o, o, o]",
        aos__tools_def("query",
                       "Run one read-only SQL statement (SELECT, read-only PRAGMA ...) on a "
                       "SQLite file of the workspace: columns and rows (at most max_rows).",
                       sql_in, rows_out, 1, 0, 1),
        aos__tools_def("execute",
                       "Run one SQL statement that may change a SQLite file of the workspace "
                       "(INSERT, UPDATE, CREATE ...). Refused unless the caller's caps allow "
                       "database writes.",
                       exec_in, exec_out, 0, 1, 0),
        aos__tools_def("tables", "The tables and views of a SQLite file, with their SQL.",
                       json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object", "properties",
                                 "path", "type", "string", "required", "path"),
                       json_pack("{s:s, s:{s:{s:s}}}", "type", "object", "properties", "tables",
                                 "type", "array"),
                       1, 0, 1));
}

static int db_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                   aos_builtin_done_fn done, void *ctx)
{
    int flags = 0;
    tools_run_fn run;
    if (!strcmp(tool, "query"))
        run = run_query;
    else if (!strcmp(tool, "tables"))
        run = run_tables;
    else if (!strcmp(tool, "execute")) {
        run = run_execute;
        const json_t *caps = caller ? caller->caps : NULL;
        flags = TOOLS_WRITE;
        if (!caps || json_is_true(json_object_get(caps, "db_write")))
            flags |= TOOLS_DB_WRITE;
    } else
        return AOS_ENOTFOUND;
    return aos__tools_submit(data, caller, "db", tool, args, flags, run, done, ctx);
}

void aos__tools_db_init(aos_tools_t *t)
{
    t->db = (aos_builtin_t){"db", "SQL on SQLite files of the caller's workspace", db_tools,
                            db_call, t};
}
