/* test_store.c - the SQLite store: migrations, the domain functions,
 * transactions and the worker thread. Each test gets a fresh temporary
 * directory; schema checks read the file with libsqlite3 directly, so they do
 * not trust the code under test. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rawsql.h"
#include "tmpdir.h"

#include <dirent.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/internal.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    char path[96];
    char url[128];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    if (aos_test_mkdtemp(f->dir, sizeof(f->dir), "store")) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/aos.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static aos_store_t *open_store(fixture_t *f, uv_loop_t *loop)
{
    aos_store_t *st = NULL;
    aos_err_t err = {0};
    if (aos_store_open(&st, loop, f->url, &err) != 0)
        fail_msg("aos_store_open: %s", aos_err_msg(&err));
    return st;
}

/* One integer from a query on the database file, read without the store. */
static int64_t raw_int(fixture_t *f, const char *sql)
{
    return aos_test_sql_int(f->path, sql);
}

static json_t *entry(const char *name, const char *description)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:b}, s:{s:s, s:[s]}, s:s, s:i, s:b}", "name", name,
                     "transport", "stdio", "base_url", "stdio:npx", "description", description,
                     "capabilities", "tools", 1, "config", "command", "npx", "args", "-y",
                     "auth_token", "v1:SEALEDTOKEN", "timeout_ms", 15000, "enabled", 0);
}

/* The version of the last built-in migration and how many there are: the
 * schema tests hold whatever migrations later issues add. */
static int builtin_version(void)
{
    int n = 0;
    while (aos_migrations[n + 1].name)
        n++;
    return (int)strtol(aos_migrations[n].name, NULL, 10);
}

static int64_t builtin_count(void)
{
    int64_t n = 0;
    while (aos_migrations[n].name)
        n++;
    return n;
}

/* Schema ---------------------------------------------------------------- */

static void test_open_creates_schema(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    assert_string_equal(aos_store_backend_name(st), "sqlite");
    assert_int_equal(aos_store_schema_version(st), builtin_version());
    aos_store_close(st);

    struct stat sb;
    assert_int_equal(stat(f->path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* Every table with the columns of SPEC §9 and the gateway's. */
    static const char *selects[] = {
        "SELECT id, trace_id, topic, type, severity, payload, created_at FROM events",
        "SELECT id, trace_id, spec, status, priority, scheduled_at, started_at, finished_at, "
        "error FROM jobs",
        "SELECT trace_id, status, cost_cny, latency_ms, started_at, finished_at FROM traces",
        "SELECT id, name, type, version, route_prefix, replicas, status, config, caps, "
        "created_at FROM agents",
        "SELECT run_id, agent_id, trace_id, status, stats, started_at, finished_at FROM "
        "agent_runs",
        "SELECT id, subject, project_id, dims, embedding, meta, updated_at FROM mem_embeddings",
        "SELECT id, project_id, name, scope, usage, secret_ref, last_rotated, audit_ref FROM "
        "project_vars",
        "SELECT id, actor, action, resource, diff, created_at FROM audit_logs",
        "SELECT name, transport, base_url, description, capabilities, config, auth_token, "
        "timeout_ms, enabled, created_at, updated_at FROM mcp_registry",
        "SELECT id, name, entry_file, description, schedule_ms, env, created_at, updated_at "
        "FROM sandbox_scripts",
        "SELECT id, name, role, token_hash, created_at, last_used_at FROM api_tokens",
        "SELECT key, value, updated_at FROM settings",
        "SELECT name, period, value, updated_at FROM counters",
        "SELECT version, applied_at FROM schema_migrations",
    };
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    for (size_t i = 0; i < sizeof(selects) / sizeof(selects[0]); i++) {
        sqlite3_stmt *stmt = NULL;
        if (sqlite3_prepare_v2(db, selects[i], -1, &stmt, NULL) != SQLITE_OK)
            fail_msg("%s: %s", selects[i], sqlite3_errmsg(db));
        sqlite3_finalize(stmt);
    }
    sqlite3_close(db);
    /* the tables of 0001; later migrations add their own */
    assert_int_equal(raw_int(f,
                             "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name "
                             "IN ('events', 'jobs', 'traces', 'agents', 'agent_runs', "
                             "'mem_embeddings', 'project_vars', 'audit_logs', 'mcp_registry', "
                             "'sandbox_scripts', 'api_tokens', 'settings', 'schema_migrations')"),
                     13);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                                "name IN ('events_trace_id_idx', 'audit_logs_created_at_idx')"),
                     2);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM schema_migrations WHERE version = 1"), 1);

    /* WAL is a property of the file, so it is visible from outside. */
    assert_int_equal(raw_int(f, "SELECT journal_mode = 'wal' FROM pragma_journal_mode"), 1);
}

static void test_reopen_is_idempotent_and_keeps_data(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    json_t *e = entry("fs", "files");
    assert_int_equal(aos_store_registry_put(st, e, &err), 0);
    json_decref(e);
    aos_store_close(st);

    for (int i = 0; i < 2; i++) {
        st = open_store(f, NULL);
        assert_int_equal(aos_store_schema_version(st), builtin_version());
        json_t *got = NULL;
        assert_int_equal(aos_store_registry_get(st, "fs", &got, &err), 0);
        assert_string_equal(json_string_value(json_object_get(got, "description")), "files");
        json_decref(got);
        aos_store_close(st);
    }
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM schema_migrations"), builtin_count());
}

static void test_migrations_apply_only_new_ones(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = NULL;
    static const char extra[] = "CREATE TABLE extra (id INTEGER PRIMARY KEY, note TEXT);\n"
                                "INSERT INTO extra (note) VALUES ('once');\n";
    const aos_embed_t one[] = {aos_migrations[0], {NULL, NULL, 0}};
    const aos_embed_t two[] = {aos_migrations[0],
                               {"0002_extra.sql", (const unsigned char *)extra, sizeof(extra) - 1},
                               {NULL, NULL, 0}};

    assert_int_equal(aos__store_open_with(&st, NULL, f->url, one, &err), 0); /* version 1 */
    aos_store_close(st);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(aos__store_open_with(&st, NULL, f->url, two, &err), 0);
        assert_int_equal(aos_store_schema_version(st), 2);
        aos_store_close(st);
    }
    /* 0002 ran once: its INSERT would have run twice otherwise. */
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM extra"), 1);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM schema_migrations"), 2);

    /* An older aosd refuses a newer database. */
    assert_int_equal(aos__store_open_with(&st, NULL, f->url, one, &err), AOS_ESTORE);
    assert_null(st);
    assert_non_null(strstr(err.msg, "newer"));
}

/* A database written by the aosd of migration 0009 (before 0010 moved the
 * plan out of task_state) holding a task waiting for an approval opens with
 * every later migration, and the task reads back whole: its plan, cursor,
 * steps and pending approval, and it is still listed as open so the
 * orchestrator resumes it. */
static void test_upgrade_keeps_a_v9_waiting_task(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = NULL;
    aos_embed_t upto9[16] = {{0}};
    int n = 0;
    for (; aos_migrations[n].name && strtol(aos_migrations[n].name, NULL, 10) <= 9; n++)
        upto9[n] = aos_migrations[n];
    assert_int_equal(n, 9);
    assert_int_equal(aos__store_open_with(&st, NULL, f->url, upto9, &err), 0);
    assert_int_equal(aos_store_schema_version(st), 9);
    aos_store_close(st);

    static const char v9_rows[] =
        "INSERT INTO jobs (trace_id, spec, status, project_id, created_at) VALUES "
        "('0af7651916cd43dd8448eb211c80319c', '{\"goal\":\"clean\"}', 'waiting', 'p1', "
        "'2026-12-06T10:00:00.000Z');"
        "INSERT INTO traces (trace_id, status) VALUES "
        "('0af7651916cd43dd8448eb211c80319c', 'waiting');"
        "INSERT INTO task_state (trace_id, plan, cursor, vars, status, updated_at) VALUES "
        "('0af7651916cd43dd8448eb211c80319c', "
        "'{\"steps\":[{\"id\":\"s1\",\"tool\":\"aos__echo\"},{\"id\":\"gate\",\"approval\":{}}]}', "
        "1, '{\"decisions\":{}}', 'waiting', '2026-12-06T10:00:01.000Z');"
        "INSERT INTO task_steps (trace_id, step_id, attempt, seq, kind, status, output, "
        "started_at, finished_at) VALUES ('0af7651916cd43dd8448eb211c80319c', 's1', 1, 1, "
        "'tool', 'done', '{\"ok\":true}', '2026-12-06T10:00:00.500Z', "
        "'2026-12-06T10:00:00.900Z');"
        "INSERT INTO approvals (trace_id, step_id, status, message, decisions, created_at) "
        "VALUES ('0af7651916cd43dd8448eb211c80319c', 'gate', 'pending', 'ship it?', "
        "'[\"approve\",\"reject\"]', '2026-12-06T10:00:01.000Z');";
    aos_test_sql_exec(f->path, v9_rows);

    st = open_store(f, NULL);
    assert_int_equal(aos_store_schema_version(st), builtin_version());
    json_t *open = NULL;
    assert_int_equal(aos_store_tasks_open(st, &open, &err), 0);
    assert_int_equal(json_array_size(open), 1);
    json_decref(open);
    json_t *task = NULL;
    assert_int_equal(aos_store_task_get(st, "0af7651916cd43dd8448eb211c80319c", &task, &err), 0);
    assert_string_equal(json_string_value(json_object_get(task, "status")), "waiting");
    json_t *ts = json_object_get(task, "state");
    json_t *plan = json_object_get(ts, "plan");
    assert_int_equal(json_array_size(json_object_get(plan, "steps")), 2);
    assert_int_equal(json_integer_value(json_object_get(ts, "cursor")), 1);
    json_t *steps = json_object_get(task, "steps");
    assert_int_equal(json_array_size(steps), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(steps, 0), "status")),
                        "done");
    json_t *ap = json_array_get(json_object_get(task, "approvals"), 0);
    assert_string_equal(json_string_value(json_object_get(ap, "status")), "pending");
    assert_int_equal(json_array_size(json_object_get(ap, "decisions")), 2);
    json_decref(task);
    aos_store_close(st);
    /* The plan moved: task_state no longer carries a copy. */
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_state WHERE plan IS NOT NULL"), 0);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_plans"), 1);
    /* 0030 made task_steps again: the row came over whole */
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_steps WHERE step_id = 's1' AND "
                                "attempt = 1 AND seq = 1 AND kind = 'tool' AND status = 'done' "
                                "AND output = '{\"ok\":true}' AND input IS NULL AND "
                                "started_at = '2026-12-06T10:00:00.500Z' AND "
                                "finished_at = '2026-12-06T10:00:00.900Z'"),
                     1);
}

/* A step's row takes the kinds and statuses of migration 0009 and no other,
 * on insert and on update (0030 wrote the same sets as OR chains), and the
 * upsert keeps what it kept: the first input, seq, kind and start. Only a
 * re-run has an entry in task_state_rerun_idx. */
static void test_task_rows_allowed_values(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    static const char *const kinds[] = {"plan", "tool", "approval", "milestone"};
    static const char *const statuses[] = {"running", "done", "failed", "skipped", "reused"};
    const char *trace = "0af7651916cd43dd8448eb211c80319c";
    char id[16];
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        for (size_t s = 0; s < sizeof(statuses) / sizeof(statuses[0]); s++) {
            snprintf(id, sizeof(id), "s%zu%zu", k, s);
            aos_store_step_t row = {.trace_id = trace,
                                    .step_id = id,
                                    .attempt = 1,
                                    .seq = (int64_t)(k * 10 + s),
                                    .kind = kinds[k],
                                    .status = statuses[s],
                                    .input = "{\"in\":1}",
                                    .started_at = "2026-12-07T10:00:00.000Z"};
            assert_int_equal(aos_store_task_step_put(st, &row, &err), 0);
        }
    }
    aos_store_step_t bad = {.trace_id = trace,
                            .step_id = "x",
                            .attempt = 1,
                            .seq = 99,
                            .kind = "Tool",
                            .status = "done",
                            .started_at = "2026-12-07T10:00:00.000Z"};
    assert_int_not_equal(aos_store_task_step_put(st, &bad, &err), 0);
    bad.kind = "tool";
    bad.status = "doneish";
    assert_int_not_equal(aos_store_task_step_put(st, &bad, &err), 0);
    bad.status = "";
    assert_int_not_equal(aos_store_task_step_put(st, &bad, &err), 0);
    /* an update to a status outside the set is refused and changes nothing */
    aos_store_step_t upd = {.trace_id = trace,
                            .step_id = "s10",
                            .attempt = 1,
                            .seq = 77,
                            .kind = "plan",
                            .status = "cancelled",
                            .output = "{\"out\":2}",
                            .started_at = "2026-12-07T11:00:00.000Z",
                            .finished_at = "2026-12-07T11:00:01.000Z"};
    assert_int_not_equal(aos_store_task_step_put(st, &upd, &err), 0);
    upd.status = "done";
    assert_int_equal(aos_store_task_step_put(st, &upd, &err), 0);
    aos_store_close(st);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_steps"), 20);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_steps WHERE step_id = 's10' AND "
                                "kind = 'tool' AND seq = 10 AND status = 'done' AND "
                                "input = '{\"in\":1}' AND output = '{\"out\":2}' AND "
                                "started_at = '2026-12-07T10:00:00.000Z' AND "
                                "finished_at = '2026-12-07T11:00:01.000Z'"),
                     1);

    st = open_store(f, NULL);
    aos_store_task_state_t plain = {trace, NULL, 0, "{}", "running", NULL, NULL};
    aos_store_task_state_t rerun = {
        "1af7651916cd43dd8448eb211c80319c", NULL, 0, "{}", "running", trace, "s1"};
    assert_int_equal(aos_store_task_state_put(st, &plain, &err), 0);
    assert_int_equal(aos_store_task_state_put(st, &rerun, &err), 0);
    aos_store_close(st);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_state"), 2);
    /* the index holds the re-runs only; a read by rerun_of walks it */
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND "
                                "name = 'task_state_rerun_idx' AND "
                                "sql LIKE '%WHERE rerun_of IS NOT NULL'"),
                     1);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_state INDEXED BY task_state_rerun_idx "
                                "WHERE rerun_of IS NOT NULL"),
                     1);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM task_state INDEXED BY task_state_rerun_idx "
                                "WHERE rerun_of = '0af7651916cd43dd8448eb211c80319c'"),
                     1);
}

/* A migration numbered below one already applied (two branches merged in
 * the other order) is still applied, once. */
static void test_migration_filling_a_gap_is_applied(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = NULL;
    static const char two_sql[] = "CREATE TABLE gap_two (id INTEGER PRIMARY KEY);\n";
    static const char three_sql[] = "CREATE TABLE gap_three (id INTEGER PRIMARY KEY);\n";
    const aos_embed_t first[] = {
        aos_migrations[0],
        {"0003_three.sql", (const unsigned char *)three_sql, sizeof(three_sql) - 1},
        {NULL, NULL, 0}};
    const aos_embed_t all[] = {
        aos_migrations[0],
        {"0002_two.sql", (const unsigned char *)two_sql, sizeof(two_sql) - 1},
        {"0003_three.sql", (const unsigned char *)three_sql, sizeof(three_sql) - 1},
        {NULL, NULL, 0}};
    assert_int_equal(aos__store_open_with(&st, NULL, f->url, first, &err), 0);
    aos_store_close(st);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(aos__store_open_with(&st, NULL, f->url, all, &err), 0);
        aos_store_close(st);
    }
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'gap_two'"), 1);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM schema_migrations"), 3);
}

static void test_failed_migration_rolls_back(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = NULL;
    static const char bad[] = "CREATE TABLE half (id INTEGER);\n"
                              "INSERT INTO no_such_table VALUES (1);\n";
    const aos_embed_t list[] = {aos_migrations[0],
                                {"0002_bad.sql", (const unsigned char *)bad, sizeof(bad) - 1},
                                {NULL, NULL, 0}};
    assert_int_equal(aos__store_open_with(&st, NULL, f->url, list, &err), AOS_ESTORE);
    assert_null(st);
    assert_non_null(strstr(err.msg, "0002_bad.sql"));
    assert_non_null(strstr(err.msg, "no_such_table"));
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'half'"), 0);
    assert_int_equal(raw_int(f, "SELECT MAX(version) FROM schema_migrations"), 1);

    const aos_embed_t misnamed[] = {{"init.sql", (const unsigned char *)bad, sizeof(bad) - 1},
                                    {NULL, NULL, 0}};
    assert_int_equal(aos__store_open_with(&st, NULL, f->url, misnamed, &err), AOS_EINTERNAL);
}

static void test_open_errors(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = (aos_store_t *)0x1;

    assert_int_equal(aos_store_open(&st, NULL, "sqlite:/nonexistent-dir/x/aos.db", &err),
                     AOS_ESTORE);
    assert_null(st);
    assert_non_null(strstr(err.msg, "unable to open '/nonexistent-dir/x/aos.db'"));

    assert_int_equal(aos_store_open(&st, NULL, "postgres://aos:hunter2@db/aos", &err), AOS_EINVAL);
    assert_null(strstr(err.msg, "hunter2"));
    assert_int_equal(aos_store_open(&st, NULL, "", &err), AOS_EINVAL);
    assert_int_equal(aos_store_open(&st, NULL, "sqlite:", &err), AOS_EINVAL);

    FILE *fp = fopen(f->path, "w");
    fputs("this is not a database, but it is long enough to have a header of 100 bytes........"
          "...................................................",
          fp);
    fclose(fp);
    assert_int_equal(aos_store_open(&st, NULL, f->path, &err), AOS_ESTORE);
    assert_non_null(strstr(err.msg, "unable to open"));
}

/* Registry --------------------------------------------------------------- */

static void test_registry_round_trip(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    json_t *got = NULL, *list = NULL;

    json_t *b = entry("beta", "second");
    json_t *a = json_pack("{s:s, s:s, s:s}", "name", "alpha", "transport", "streamable-http",
                          "base_url", "https://mcp.example.com/mcp");
    assert_int_equal(aos_store_registry_put(st, b, &err), 0);
    assert_int_equal(aos_store_registry_put(st, a, &err), 0);

    assert_int_equal(aos_store_registry_get(st, "beta", &got, &err), 0);
    assert_string_equal(json_string_value(json_object_get(got, "transport")), "stdio");
    assert_string_equal(json_string_value(json_object_get(got, "base_url")), "stdio:npx");
    assert_true(
        json_equal(json_object_get(got, "capabilities"), json_object_get(b, "capabilities")));
    assert_true(json_equal(json_object_get(got, "config"), json_object_get(b, "config")));
    assert_string_equal(json_string_value(json_object_get(got, "auth_token")), "v1:SEALEDTOKEN");
    assert_int_equal(json_integer_value(json_object_get(got, "timeout_ms")), 15000);
    assert_true(json_is_false(json_object_get(got, "enabled")));
    const char *created = json_string_value(json_object_get(got, "created_at"));
    assert_non_null(created);
    assert_int_equal(strlen(created), 24); /* 2025-01-31T12:00:00.000Z */
    assert_int_equal(created[23], 'Z');
    char created_copy[32];
    snprintf(created_copy, sizeof(created_copy), "%s", created);
    json_decref(got);

    /* Defaults for what alpha left out. */
    assert_int_equal(aos_store_registry_get(st, "alpha", &got, &err), 0);
    assert_true(json_is_null(json_object_get(got, "description")));
    assert_true(json_is_null(json_object_get(got, "auth_token")));
    assert_true(json_is_null(json_object_get(got, "timeout_ms")));
    assert_true(json_is_true(json_object_get(got, "enabled")));
    assert_int_equal(json_object_size(json_object_get(got, "config")), 0);
    assert_true(json_is_object(json_object_get(got, "capabilities")));
    json_decref(got);

    assert_int_equal(aos_store_registry_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "name")),
                        "alpha");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 1), "name")),
                        "beta");
    json_decref(list);

    /* Update: every column replaced but created_at. */
    usleep(5000);
    json_object_set_new(b, "description", json_string("changed"));
    json_object_set_new(b, "capabilities", json_pack("[s]", "tools"));
    json_object_set_new(b, "created_at", json_string("1999-01-01T00:00:00.000Z"));
    assert_int_equal(aos_store_registry_put(st, b, &err), 0);
    assert_int_equal(aos_store_registry_get(st, "beta", &got, &err), 0);
    assert_string_equal(json_string_value(json_object_get(got, "description")), "changed");
    assert_true(json_is_array(json_object_get(got, "capabilities")));
    assert_string_equal(json_string_value(json_object_get(got, "created_at")), created_copy);
    assert_true(strcmp(json_string_value(json_object_get(got, "updated_at")), created_copy) > 0);
    json_decref(got);

    assert_int_equal(aos_store_registry_delete(st, "beta", &err), 0);
    got = (json_t *)0x1;
    assert_int_equal(aos_store_registry_get(st, "beta", &got, &err), AOS_ENOTFOUND);
    assert_null(got);
    assert_non_null(strstr(err.msg, "beta"));
    assert_int_equal(aos_store_registry_delete(st, "beta", &err), AOS_ENOTFOUND);
    assert_int_equal(aos_store_registry_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);

    json_decref(a);
    json_decref(b);
    aos_store_close(st);
}

static void test_registry_rejects_bad_input(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    static const struct {
        const char *field;
        const char *json;
    } bad[] = {
        {"name", "{\"transport\":\"stdio\",\"base_url\":\"stdio:x\"}"},
        {"name", "{\"name\":\"\",\"transport\":\"stdio\",\"base_url\":\"stdio:x\"}"},
        {"transport", "{\"name\":\"x\",\"transport\":\"ftp\",\"base_url\":\"stdio:x\"}"},
        {"base_url", "{\"name\":\"x\",\"transport\":\"stdio\"}"},
        {"capabilities",
         "{\"name\":\"x\",\"transport\":\"sse\",\"base_url\":\"u\",\"capabilities\":\"all\"}"},
        {"config", "{\"name\":\"x\",\"transport\":\"sse\",\"base_url\":\"u\",\"config\":[]}"},
        {"timeout_ms", "{\"name\":\"x\",\"transport\":\"sse\",\"base_url\":\"u\","
                       "\"timeout_ms\":-1}"},
        {"enabled", "{\"name\":\"x\",\"transport\":\"sse\",\"base_url\":\"u\",\"enabled\":1}"},
        {"auth_token", "{\"name\":\"x\",\"transport\":\"sse\",\"base_url\":\"u\","
                       "\"auth_token\":42}"},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *e = json_loads(bad[i].json, 0, NULL);
        assert_non_null(e);
        /* A sealed token must never show up in an error message. */
        if (!json_object_get(e, "auth_token"))
            json_object_set_new(e, "auth_token", json_string("v1:TOPSECRET"));
        memset(&err, 0, sizeof(err));
        assert_int_equal(aos_store_registry_put(st, e, &err), AOS_EINVAL);
        assert_non_null(strstr(err.msg, bad[i].field));
        assert_null(strstr(err.msg, "TOPSECRET"));
        json_decref(e);
    }
    assert_int_equal(aos_store_registry_put(st, NULL, &err), AOS_EINVAL);
    json_t *list = NULL;
    assert_int_equal(aos_store_registry_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
    aos_store_close(st);
}

/* Transactions ------------------------------------------------------------ */

static int tx_put_and_audit(aos_store_t *st, void *arg, aos_err_t *err)
{
    const char *name = arg;
    json_t *e = entry(name, "in tx");
    int rc = aos_store_registry_put(st, e, err);
    json_decref(e);
    if (rc == 0)
        rc = aos_store_audit_append(st, "tester", "registry.put", name, NULL, err);
    return rc;
}

static int tx_put_then_fail(aos_store_t *st, void *arg, aos_err_t *err)
{
    int rc = tx_put_and_audit(st, arg, err);
    assert_int_equal(rc, 0);
    return aos_err_set(err, AOS_ECONFLICT, "changed my mind");
}

static int tx_nested(aos_store_t *st, void *arg, aos_err_t *err)
{
    aos_err_t inner = {0};
    /* The inner transaction fails; only its own work is undone. */
    assert_int_equal(aos_store_tx(st, tx_put_then_fail, "inner", &inner), AOS_ECONFLICT);
    return tx_put_and_audit(st, "outer", err);
}

static int64_t count_rows(aos_store_t *st)
{
    aos_err_t err = {0};
    json_t *list = NULL, *audit = NULL;
    assert_int_equal(aos_store_registry_list(st, &list, &err), 0);
    assert_int_equal(aos_store_audit_list(st, 0, 100, &audit, &err), 0);
    int64_t n = (int64_t)(json_array_size(list) * 1000 + json_array_size(audit));
    json_decref(list);
    json_decref(audit);
    return n;
}

static void test_tx_commit_rollback_nested(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);

    assert_int_equal(aos_store_tx(st, tx_put_then_fail, "gone", &err), AOS_ECONFLICT);
    assert_string_equal(err.msg, "changed my mind");
    assert_int_equal(count_rows(st), 0);

    assert_int_equal(aos_store_tx(st, tx_put_and_audit, "kept", &err), 0);
    assert_int_equal(count_rows(st), 1001);

    assert_int_equal(aos_store_tx(st, tx_nested, NULL, &err), 0);
    assert_int_equal(count_rows(st), 2002);
    json_t *got = NULL;
    assert_int_equal(aos_store_registry_get(st, "inner", &got, &err), AOS_ENOTFOUND);
    assert_int_equal(aos_store_registry_get(st, "outer", &got, &err), 0);
    json_decref(got);

    /* Outside a tx, statements autocommit again: data survives a reopen. */
    aos_store_close(st);
    st = open_store(f, NULL);
    assert_int_equal(count_rows(st), 2002);
    aos_store_close(st);
}

/* Audit, settings, tokens --------------------------------------------------- */

static void test_audit_paging(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    for (int i = 1; i <= 25; i++) {
        json_t *diff = json_pack("{s:i}", "n", i);
        assert_int_equal(
            aos_store_audit_append(st, "alice", "setting.put", i % 2 ? "k" : NULL, diff, &err), 0);
        json_decref(diff);
    }
    assert_int_equal(aos_store_audit_append(st, "bob", "login", NULL, NULL, &err), 0);

    json_t *page = NULL;
    int64_t before = 0, seen = 0, expect = 26;
    do {
        assert_int_equal(aos_store_audit_list(st, before, 10, &page, &err), 0);
        size_t n = json_array_size(page);
        for (size_t i = 0; i < n; i++) {
            json_t *row = json_array_get(page, i);
            assert_int_equal(json_integer_value(json_object_get(row, "id")), expect);
            if (expect == 26) {
                assert_string_equal(json_string_value(json_object_get(row, "actor")), "bob");
                assert_true(json_is_null(json_object_get(row, "diff")));
            } else {
                assert_int_equal(
                    json_integer_value(json_object_get(json_object_get(row, "diff"), "n")), expect);
                assert_true(expect % 2 ? json_is_string(json_object_get(row, "resource"))
                                       : json_is_null(json_object_get(row, "resource")));
            }
            assert_non_null(json_string_value(json_object_get(row, "created_at")));
            expect--;
            seen++;
            before = json_integer_value(json_object_get(row, "id"));
        }
        json_decref(page);
        if (n < 10)
            break;
    } while (1);
    assert_int_equal(seen, 26);

    assert_int_equal(aos_store_audit_list(st, 0, 0, &page, &err), AOS_EINVAL);
    assert_int_equal(aos_store_audit_list(st, 0, AOS_STORE_LIST_MAX + 1, &page, &err), AOS_EINVAL);
    assert_int_equal(aos_store_audit_append(st, "", "x", NULL, NULL, &err), AOS_EINVAL);
    aos_store_close(st);
}

static void test_settings(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    json_t *got = (json_t *)0x1;

    assert_int_equal(aos_store_setting_get(st, "llm", &got, &err), AOS_ENOTFOUND);
    assert_null(got);

    json_t *v = json_pack("{s:s, s:f, s:[i, i]}", "model", "m-1", "temperature", 0.5, "l", 1, 2);
    assert_int_equal(aos_store_setting_put(st, "llm", v, &err), 0);
    assert_int_equal(aos_store_setting_get(st, "llm", &got, &err), 0);
    assert_true(json_equal(got, v));
    json_decref(got);
    json_decref(v);

    /* Overwrite, with a scalar. */
    v = json_string("plain");
    assert_int_equal(aos_store_setting_put(st, "llm", v, &err), 0);
    assert_int_equal(aos_store_setting_get(st, "llm", &got, &err), 0);
    assert_string_equal(json_string_value(got), "plain");
    json_decref(got);
    json_decref(v);

    assert_int_equal(aos_store_setting_put(st, "", json_null(), &err), AOS_EINVAL);
    assert_int_equal(aos_store_setting_put(st, "k", NULL, &err), AOS_EINVAL);
    aos_store_close(st);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM settings"), 1);
}

/* Memory vectors by model (migration 0029): the load reads one model's,
 * the re-embedding lists the live items without a vector of the model (or
 * of its dimension) and writes a vector only if the item is unchanged. */
static int count_vec(int64_t id, const char *project_id, const float *vec, int dims, void *arg,
                     aos_err_t *err)
{
    (void)id;
    (void)project_id;
    (void)vec;
    (void)err;
    *(int *)arg += dims;
    return 0;
}

static int64_t mem_put(aos_store_t *st, const char *text, const char *model, const float *vec,
                       int dims)
{
    aos_err_t err = {0};
    aos_store_mem_t m = {.project_id = "p",
                         .text = text,
                         .tags = "[]",
                         .source = "test",
                         .terms = text,
                         .vec = vec,
                         .dims = dims,
                         .model = model};
    assert_int_equal(aos_store_mem_insert(st, &m, &err), 0);
    return m.id;
}

static void test_mem_vectors_by_model(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    const float v4[4] = {1, 0, 0, 0}, v2[2] = {0, 1}, v3[3] = {1, 1, 1};
    int64_t a1 = mem_put(st, "one", "a", v4, 4);
    int64_t b1 = mem_put(st, "two", "b", v2, 2);
    int64_t none = mem_put(st, "three", NULL, NULL, 0);
    int64_t a3 = mem_put(st, "four", "a", v3, 3); /* model a, another dimension */
    int64_t gone = mem_put(st, "five", "b", v2, 2);
    assert_int_equal(aos_store_mem_set_deleted(st, gone, 1, &err), 0);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM mem_embeddings WHERE model = 'a'"), 2);

    int dims = 0;
    assert_int_equal(aos_store_mem_vectors(st, 0, "a", count_vec, &dims, &err), 0);
    assert_int_equal(dims, 7);
    dims = 0;
    assert_int_equal(aos_store_mem_vectors(st, 0, NULL, count_vec, &dims, &err), 0);
    assert_int_equal(dims, 9); /* the deleted one left out */
    dims = 0;
    assert_int_equal(aos_store_mem_vectors(st, b1, "a", count_vec, &dims, &err), 0);
    assert_int_equal(dims, 0);

    json_t *rows = NULL;
    assert_int_equal(aos_store_mem_stale(st, "a", 4, 0, 100, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 3);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), b1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 1), "id")), none);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 2), "id")), a3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rows, 0), "text")), "two");
    json_decref(rows);
    /* without a dimension: the model alone; after an id; a limit */
    assert_int_equal(aos_store_mem_stale(st, "a", 0, b1, 1, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(rows, 0), "id")), none);
    json_decref(rows);
    assert_int_equal(aos_store_mem_stale(st, "a", 0, 0, 0, &rows, &err), AOS_EINVAL);

    /* written only at the version read, and only while live */
    char project[64] = "";
    int written = -1;
    assert_int_equal(
        aos_store_mem_set_vector(st, b1, 2, "a", v4, 4, project, sizeof(project), &written, &err),
        0);
    assert_int_equal(written, 0);
    assert_int_equal(
        aos_store_mem_set_vector(st, gone, 2, "a", v4, 4, project, sizeof(project), &written, &err),
        0);
    assert_int_equal(written, 0);
    assert_int_equal(
        aos_store_mem_set_vector(st, 9999, 1, "a", v4, 4, project, sizeof(project), &written, &err),
        0);
    assert_int_equal(written, 0);
    assert_int_equal(
        aos_store_mem_set_vector(st, b1, 1, "a", v4, 4, project, sizeof(project), &written, &err),
        0);
    assert_int_equal(written, 1);
    assert_string_equal(project, "p");
    assert_int_equal(aos_store_mem_set_vector(st, none, 1, "a", v4, 4, NULL, 0, &written, &err), 0);
    assert_int_equal(written, 1);
    assert_int_equal(aos_store_mem_stale(st, "a", 4, 0, 100, &rows, &err), 0);
    assert_int_equal(json_array_size(rows), 1); /* a3 only */
    json_decref(rows);
    (void)a1;
    aos_store_close(st);
    assert_int_equal(
        raw_int(f, "SELECT COUNT(*) FROM mem_embeddings WHERE model = 'a' AND dims = 4 AND "
                   "json_extract(meta, '$.model') = 'a'"),
        3);
}

static void test_counters(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    int64_t period = -1, value = -1;

    assert_int_equal(aos_store_counter_get(st, "quota:a", &period, &value, &err), AOS_ENOTFOUND);
    assert_int_equal(period, -1);
    assert_int_equal(aos_store_counter_put(st, "quota:a", 20261206, 7, &err), 0);
    assert_int_equal(aos_store_counter_put(st, "quota:b", 202612, 1000000000000LL, &err), 0);
    assert_int_equal(aos_store_counter_get(st, "quota:a", &period, &value, &err), 0);
    assert_int_equal(period, 20261206);
    assert_int_equal(value, 7);
    /* 64-bit values (PostgreSQL: BIGINT) */
    assert_int_equal(aos_store_counter_get(st, "quota:b", &period, &value, &err), 0);
    assert_int_equal(value, 1000000000000LL);

    /* a new period replaces the row: one row per counter */
    assert_int_equal(aos_store_counter_put(st, "quota:a", 20261207, 1, &err), 0);
    assert_int_equal(aos_store_counter_get(st, "quota:a", &period, &value, &err), 0);
    assert_int_equal(period, 20261207);
    assert_int_equal(value, 1);

    /* bad input changes nothing */
    assert_int_equal(aos_store_counter_put(st, "", 1, 1, &err), AOS_EINVAL);
    assert_int_equal(aos_store_counter_put(st, NULL, 1, 1, &err), AOS_EINVAL);
    assert_int_equal(aos_store_counter_put(st, "quota:a", 20261208, -1, &err), AOS_EINVAL);
    assert_int_equal(aos_store_counter_get(st, "", &period, &value, &err), AOS_EINVAL);
    aos_store_close(st);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM counters"), 2);

    /* durable: a new connection reads what the last one wrote */
    st = open_store(f, NULL);
    assert_int_equal(aos_store_counter_get(st, "quota:a", &period, &value, &err), 0);
    assert_int_equal(period, 20261207);
    assert_int_equal(value, 1);
    aos_store_close(st);
}

static void test_tokens(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    assert_int_equal(aos_store_token_put(st, "t1", "ci", "operator", "aa11", &err), 0);
    assert_int_equal(aos_store_token_put(st, "t2", NULL, "owner", "bb22", &err), 0);
    assert_int_equal(aos_store_token_put(st, "t3", "dup", "viewer", "aa11", &err), AOS_ECONFLICT);
    assert_int_equal(aos_store_token_put(st, "t1", "dup", "viewer", "cc33", &err), AOS_ECONFLICT);
    assert_int_equal(aos_store_token_put(st, "t4", "x", "", "dd44", &err), AOS_EINVAL);

    json_t *list = NULL;
    assert_int_equal(aos_store_token_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    json_t *t1 = json_array_get(list, 0), *t2 = json_array_get(list, 1);
    assert_string_equal(json_string_value(json_object_get(t1, "id")), "t1");
    assert_string_equal(json_string_value(json_object_get(t1, "name")), "ci");
    assert_string_equal(json_string_value(json_object_get(t1, "role")), "operator");
    assert_string_equal(json_string_value(json_object_get(t1, "token_hash")), "aa11");
    assert_non_null(json_string_value(json_object_get(t1, "created_at")));
    assert_true(json_is_null(json_object_get(t1, "last_used_at")));
    assert_true(json_is_null(json_object_get(t2, "name")));
    json_decref(list);

    /* created with prefix, creator and expiry; revoked once; touched */
    assert_int_equal(aos_store_token_create(st, "t5", "exp", "none", "ee55", "aos_abcd", "token:t2",
                                            "2030-01-01T00:00:00.000Z", &err),
                     0);
    assert_int_equal(aos_store_token_revoke(st, "t5", &err), 0);
    assert_int_equal(aos_store_token_revoke(st, "t5", &err), AOS_ENOTFOUND);
    assert_int_equal(aos_store_token_revoke(st, "nope", &err), AOS_ENOTFOUND);
    assert_int_equal(aos_store_token_touch(st, "t1", "2026-12-07T00:00:00.000Z", &err), 0);
    assert_int_equal(aos_store_token_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 3);
    t1 = json_array_get(list, 0);
    json_t *t5 = json_array_get(list, 2);
    assert_string_equal(json_string_value(json_object_get(t1, "last_used_at")),
                        "2026-12-07T00:00:00.000Z");
    assert_true(json_is_null(json_object_get(t1, "revoked_at")));
    assert_string_equal(json_string_value(json_object_get(t5, "prefix")), "aos_abcd");
    assert_string_equal(json_string_value(json_object_get(t5, "created_by")), "token:t2");
    assert_string_equal(json_string_value(json_object_get(t5, "expires_at")),
                        "2030-01-01T00:00:00.000Z");
    assert_non_null(json_string_value(json_object_get(t5, "revoked_at")));
    json_decref(list);

    /* grants: put, list in order, a duplicate id, delete once */
    assert_int_equal(
        aos_store_grant_put(st, "g1", "token:t1", "operator", "tool:ev__*", "token:t2", &err), 0);
    assert_int_equal(aos_store_grant_put(st, "g2", "token:t1", "viewer", "task:x", NULL, &err), 0);
    assert_int_equal(aos_store_grant_put(st, "g1", "token:t1", "viewer", "task:y", NULL, &err),
                     AOS_ECONFLICT);
    assert_int_equal(aos_store_grant_put(st, "g3", "token:t1", "", "task:y", NULL, &err),
                     AOS_EINVAL);
    assert_int_equal(aos_store_grant_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "resource")),
                        "tool:ev__*");
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "created_by")),
                        "token:t2");
    json_decref(list);
    assert_int_equal(aos_store_grant_delete(st, "g1", &err), 0);
    assert_int_equal(aos_store_grant_delete(st, "g1", &err), AOS_ENOTFOUND);
    assert_int_equal(aos_store_grant_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_decref(list);
    aos_store_close(st);
}

/* Agents' status and runs: a run per start, updated and finished; the
 * runs a previous aosd left open are aborted at start-up, and every agent
 * is stopped then. */
static void test_agent_runs(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    aos_store_agent_t a = {.id = "ag1",
                           .name = "one",
                           .type = "local",
                           .version = "1",
                           .status = "stopped",
                           .config = "{}",
                           .replicas = 2};
    assert_int_equal(aos_store_agent_put(st, &a, 1, &err), 0);
    assert_int_equal(aos_store_agent_set_status(st, "ag1", "running", &err), 0);
    assert_int_equal(aos_store_agent_set_status(st, "nope", "running", &err), AOS_ENOTFOUND);
    json_t *row = NULL;
    assert_int_equal(aos_store_agent_get(st, "one", &row, &err), 0);
    assert_string_equal(json_string_value(json_object_get(row, "status")), "running");
    json_decref(row);

    assert_int_equal(aos_store_agent_run_start(st, "r1", "ag1", NULL, "{\"version\":1}", &err), 0);
    assert_int_equal(aos_store_agent_run_update(st, "r1", "stopped", "{\"calls\":5}", 1, &err), 0);
    assert_int_equal(aos_store_agent_run_start(st, "r2", "ag1", "t2", NULL, &err), 0);
    json_t *runs = NULL;
    assert_int_equal(aos_store_agent_runs(st, "ag1", 10, &runs, &err), 0);
    assert_int_equal(json_array_size(runs), 2);
    json_t *r1 = NULL, *r2 = NULL;
    size_t i;
    json_t *r;
    json_array_foreach(runs, i, r)
    {
        if (!strcmp(json_string_value(json_object_get(r, "run_id")), "r1"))
            r1 = r;
        else
            r2 = r;
    }
    assert_non_null(r1);
    assert_non_null(r2);
    assert_string_equal(json_string_value(json_object_get(r1, "status")), "stopped");
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r1, "stats"), "calls")), 5);
    assert_non_null(json_string_value(json_object_get(r1, "finished_at")));
    assert_string_equal(json_string_value(json_object_get(r2, "status")), "running");
    assert_string_equal(json_string_value(json_object_get(r2, "trace_id")), "t2");
    assert_true(json_is_null(json_object_get(r2, "finished_at")));
    json_decref(runs);

    assert_int_equal(aos_store_agent_runs_abandon(st, &err), 0);
    assert_int_equal(aos_store_agent_runs(st, "ag1", 1, &runs, &err), 0);
    assert_int_equal(json_array_size(runs), 1);
    json_decref(runs);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM agent_runs WHERE status = 'aborted' AND "
                                "run_id = 'r2' AND finished_at IS NOT NULL"),
                     1);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM agent_runs WHERE status = 'stopped'"), 1);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM agents WHERE status = 'stopped'"), 1);
    /* delete takes the runs too */
    assert_int_equal(aos_store_agent_delete(st, "ag1", &err), 0);
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM agent_runs"), 0);
    aos_store_close(st);
}

/* The backend contract, through internal.h. */
static int read_count(const aos__sql_val_t *cols, int ncols, void *arg, aos_err_t *err)
{
    assert_int_equal(ncols, 1);
    assert_int_equal(cols[0].type, AOS__SQL_INT);
    *(int64_t *)arg = cols[0].i;
    return 0;
}

static void test_backend_contract(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_store_t *st = open_store(f, NULL);
    int64_t changes = -1, n = -1;

    aos__sql_val_t agent[] = {aos__sql_text("a1"), aos__sql_text("planner"), aos__sql_text("local"),
                              aos__sql_text("2025-01-01T00:00:00.000Z")};
    const char *ins = "INSERT INTO agents (id, name, type, created_at) VALUES (?, ?, ?, ?)";
    assert_int_equal(aos__store_exec(st, ins, agent, 4, &changes, &err), 0);
    assert_int_equal(changes, 1);
    assert_int_equal(aos__store_exec(st, ins, agent, 4, NULL, &err), AOS_ECONFLICT);
    agent[0] = aos__sql_text("a2");
    agent[1] = aos__sql_text("other");
    agent[2] = aos__sql_text("cloud"); /* CHECK constraint */
    assert_int_equal(aos__store_exec(st, ins, agent, 4, NULL, &err), AOS_EINVAL);

    /* foreign_keys=ON: a run of an unknown agent is refused. */
    aos__sql_val_t run[] = {aos__sql_text("r1"), aos__sql_text("nobody")};
    assert_int_equal(aos__store_exec(st, "INSERT INTO agent_runs (run_id, agent_id) VALUES (?, ?)",
                                     run, 2, NULL, &err),
                     AOS_EINVAL);
    run[1] = aos__sql_text("a1");
    assert_int_equal(aos__store_exec(st, "INSERT INTO agent_runs (run_id, agent_id) VALUES (?, ?)",
                                     run, 2, NULL, &err),
                     0);

    /* Blobs of float32 and the length check against dims. */
    float vec[3] = {1.0f, 2.0f, 3.0f};
    aos__sql_val_t emb[] = {aos__sql_text("m1"), aos__sql_int(3), aos__sql_blob(vec, sizeof(vec)),
                            aos__sql_text("2025-01-01T00:00:00.000Z")};
    const char *ins_emb =
        "INSERT INTO mem_embeddings (id, dims, embedding, updated_at) VALUES (?, ?, ?, ?)";
    assert_int_equal(aos__store_exec(st, ins_emb, emb, 4, NULL, &err), 0);
    emb[0] = aos__sql_text("m2");
    emb[1] = aos__sql_int(4);
    assert_int_equal(aos__store_exec(st, ins_emb, emb, 4, NULL, &err), AOS_EINVAL);

    /* Ids of append-only tables come back through last_insert_id. */
    aos__sql_val_t ev[] = {aos__sql_text("step"), aos__sql_text("{}"),
                           aos__sql_text("2025-01-01T00:00:00.000Z")};
    const char *ins_ev = "INSERT INTO events (type, payload, created_at) VALUES (?, ?, ?)";
    assert_int_equal(aos__store_exec(st, ins_ev, ev, 3, NULL, &err), 0);
    assert_int_equal(aos__store_last_insert_id(st), 1);
    assert_int_equal(aos__store_exec(st, ins_ev, ev, 3, NULL, &err), 0);
    assert_int_equal(aos__store_last_insert_id(st), 2);

    assert_int_equal(
        aos__store_query(st, "SELECT COUNT(*) FROM events", NULL, 0, read_count, &n, &err), 0);
    assert_int_equal(n, 2);
    /* A wrong parameter count and bad SQL fail cleanly. */
    assert_int_equal(aos__store_exec(st, ins_ev, ev, 2, NULL, &err), AOS_EINTERNAL);
    memset(&err, 0, sizeof(err));
    assert_int_equal(aos__store_exec(st, "SELEC nonsense", NULL, 0, NULL, &err), AOS_ESTORE);
    assert_non_null(strstr(err.msg, "syntax error"));
    aos_store_close(st);
}

/* The worker ---------------------------------------------------------------- */

#define NJOBS 40

typedef struct {
    uv_thread_t loop_thread;
    int order[NJOBS];
    int ndone;
    int nran;
    int bad_thread; /* set if a fn ran on the loop thread or a done off it */
    int late_submit_rc;
    int late_done_called;
    aos_store_t *st;
    int close_in_done; /* close the store from this done callback (by index) */
} async_state_t;

typedef struct {
    async_state_t *as;
    int index;
} job_arg_t;

static int job_fn(aos_store_t *st, void *arg, aos_err_t *err)
{
    job_arg_t *ja = arg;
    uv_thread_t self = uv_thread_self();
    if (uv_thread_equal(&self, &ja->as->loop_thread))
        ja->as->bad_thread = 1;
    ja->as->nran++;         /* only the worker writes it until close joins it */
    if (ja->index % 2 == 0) /* the others count as "other" */
        aos_store_job_note("even", ja->index);
    /* Domain functions work from a job. */
    char key[32];
    snprintf(key, sizeof(key), "job.%d", ja->index);
    json_t *v = json_integer(ja->index);
    int rc = aos_store_setting_put(st, key, v, err);
    json_decref(v);
    if (rc == 0 && ja->index % 7 == 3)
        return aos_err_set(err, AOS_ENOTFOUND, "job %d says not found", ja->index);
    return rc;
}

static int slow_job_fn(aos_store_t *st, void *arg, aos_err_t *err)
{
    usleep(20000);
    return job_fn(st, arg, err);
}

static void late_done(int status, const aos_err_t *err, void *arg)
{
    async_state_t *as = arg;
    as->late_done_called++;
}

static int late_fn(aos_store_t *st, void *arg, aos_err_t *err)
{
    return 0;
}

static void done_fn(int status, const aos_err_t *err, void *arg)
{
    job_arg_t *ja = arg;
    async_state_t *as = ja->as;
    uv_thread_t self = uv_thread_self();
    if (!uv_thread_equal(&self, &as->loop_thread))
        as->bad_thread = 1;
    assert_non_null(err);
    if (ja->index % 7 == 3) {
        assert_int_equal(status, AOS_ENOTFOUND);
        assert_int_equal(err->code, AOS_ENOTFOUND);
        char want[64];
        snprintf(want, sizeof(want), "job %d says not found", ja->index);
        assert_string_equal(err->msg, want);
    } else {
        assert_int_equal(status, 0);
        assert_int_equal(err->code, 0);
    }
    as->order[as->ndone++] = ja->index;
    if (as->close_in_done && ja->index == as->close_in_done) {
        aos_store_t *st = as->st;
        as->st = NULL;
        aos_store_close(st);
    }
}

static void on_guard(uv_timer_t *t)
{
    *(int *)t->data = 1;
}

/* Checkpoints happen off the committing thread: 1,500 commits of 16 KiB
 * (about 24 MB) must reach the database file while the connection is open
 * and idle. Without the background checkpointer (or with one that silently
 * does nothing) everything stays in the WAL until it reaches 20,000 pages
 * and the writer checkpoints itself, so the database file stays tiny. */
static void test_background_checkpoint(void **state)
{
    fixture_t *f = *state;
    void *conn = NULL;
    aos_err_t err = {0};
    assert_int_equal(aos__store_sqlite.open(&conn, f->path, &err), 0);
    assert_int_equal(aos__store_sqlite.exec(conn, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)",
                                            NULL, 0, NULL, &err),
                     0);
    static char blob[16 * 1024];
    memset(blob, 'x', sizeof(blob));
    for (int i = 0; i < 1500; i++) {
        aos__sql_val_t v = aos__sql_blob(blob, sizeof(blob));
        assert_int_equal(
            aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &v, 1, NULL, &err), 0);
    }
    /* one more commit wakes the checkpointer for whatever is left */
    aos__sql_val_t v = aos__sql_blob(blob, 16);
    assert_int_equal(
        aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &v, 1, NULL, &err), 0);
    struct stat sb = {0};
    for (int i = 0; i < 500; i++) { /* up to 5 s on a loaded machine */
        if (stat(f->path, &sb) == 0 && sb.st_size >= 12 * 1024 * 1024)
            break;
        usleep(10 * 1000);
    }
    aos__store_sqlite.close(conn);
    if (sb.st_size < 12 * 1024 * 1024)
        fail_msg("the database file holds %lld bytes of ~24 MB written: no checkpoint ran",
                 (long long)sb.st_size);
}

/* Frames in the WAL of path now, seen from a connection of its own (a
 * PASSIVE checkpoint reports them; what it copies does not matter here). */
static int wal_frames(const char *path)
{
    sqlite3 *db = NULL;
    int log = -1, copied = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    }
    sqlite3_close(db);
    return log;
}

/* A large WAL starts over without the writer running a checkpoint (its two
 * syncs would hold up whatever job comes next): at gaps between jobs
 * (upkeep, no job waiting) the writer only wakes the checkpointer, whose
 * pass copies everything while the writer is idle, and the next commit
 * starts the WAL over. */
static void test_wal_restart_off_the_writer(void **state)
{
    fixture_t *f = *state;
    void *conn = NULL;
    aos_err_t err = {0};
    assert_int_equal(aos__store_sqlite.open(&conn, f->path, &err), 0);
    assert_int_equal(aos__store_sqlite.exec(conn, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)",
                                            NULL, 0, NULL, &err),
                     0);
    /* one commit of ~10,000 pages: past the size from which the WAL may
     * start over, short of the one where the writer copies it itself */
    static char blob[64 * 1024];
    memset(blob, 'x', sizeof(blob));
    assert_int_equal(aos__store_sqlite.begin(conn, &err), 0);
    for (int i = 0; i < 600; i++) {
        aos__sql_val_t v = aos__sql_blob(blob, sizeof(blob));
        assert_int_equal(
            aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &v, 1, NULL, &err), 0);
    }
    assert_int_equal(aos__store_sqlite.commit(conn, &err), 0);
    char wal[4096];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    struct stat sb = {0};
    assert_int_equal(stat(wal, &sb), 0);
    int before = (int)(sb.st_size / (4096 + 24)); /* frames of a 4 KiB page */
    assert_true(before >= 8000);
    /* gaps between jobs, and a small commit, which the checkpointer has
     * yet to copy: the writer copies nothing itself */
    aos__sql_val_t v = aos__sql_blob(blob, 16);
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 50; i++) {
            assert_int_equal(aos__store_sqlite.upkeep(conn, 0), 0);
            usleep(20 * 1000);
        }
        if (round == 0)
            assert_int_equal(
                aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &v, 1, NULL, &err), 0);
    }
    assert_int_equal(
        aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &v, 1, NULL, &err), 0);
    int after = wal_frames(f->path);
    aos__store_sqlite.close(conn);
    if (after < 0 || after > 10)
        fail_msg("the WAL did not start over: %d frames after a commit (%d before)", after, before);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM t"), 602);
}

/* Past 20,000 pages (CKPT_HARD_PAGES in sqlite.c) the writer copies the
 * rest itself, but only at a gap with no job waiting, where a request can
 * arrive during its syncs at worst: with jobs waiting it leaves the copy
 * to the checkpointer. At a gap the WAL then starts over with the next
 * commit. A reader that holds a snapshot from before the large commit
 * keeps the checkpointer from copying it meanwhile. */
static void test_wal_restart_hard(void **state)
{
    fixture_t *f = *state;
    void *conn = NULL;
    aos_err_t err = {0};
    assert_int_equal(aos__store_sqlite.open(&conn, f->path, &err), 0);
    assert_int_equal(aos__store_sqlite.exec(conn, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)",
                                            NULL, 0, NULL, &err),
                     0);
    static char blob[64 * 1024];
    memset(blob, 'x', sizeof(blob));
    aos__sql_val_t small = aos__sql_blob(blob, 16);
    assert_int_equal(
        aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &small, 1, NULL, &err), 0);
    sqlite3 *reader = NULL;
    assert_int_equal(sqlite3_open_v2(f->path, &reader, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(reader, "BEGIN; SELECT count(*) FROM t", NULL, NULL, NULL),
                     SQLITE_OK);
    assert_int_equal(aos__store_sqlite.begin(conn, &err), 0);
    for (int i = 0; i < 1300; i++) { /* ~21,000 pages */
        aos__sql_val_t v = aos__sql_blob(blob, sizeof(blob));
        assert_int_equal(
            aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &v, 1, NULL, &err), 0);
    }
    assert_int_equal(aos__store_sqlite.commit(conn, &err), 0);
    char wal[4096];
    snprintf(wal, sizeof(wal), "%s-wal", f->path);
    struct stat sb = {0};
    assert_int_equal(stat(wal, &sb), 0);
    int before = (int)(sb.st_size / (4096 + 24));
    assert_true(before >= 20000 && before < 24000);
    /* the checkpointer's pass, woken by that commit, copies nothing; then
     * gaps with jobs waiting */
    usleep(200 * 1000);
    for (int i = 0; i < 20; i++)
        assert_int_equal(aos__store_sqlite.upkeep(conn, 1), 0);
    assert_int_equal(sqlite3_exec(reader, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(reader);
    /* gaps with none: once the checkpointer is idle the writer copies the
     * rest, unless the checkpointer did */
    for (int i = 0; i < 200 && aos__store_sqlite.upkeep(conn, 0) == 0; i++)
        usleep(20 * 1000);
    assert_int_equal(
        aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &small, 1, NULL, &err), 0);
    int after = wal_frames(f->path);
    aos__store_sqlite.close(conn);
    if (after < 0 || after > 10)
        fail_msg("the WAL did not start over: %d frames after a commit (%d before)", after, before);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM t"), 1302);
}

/* Open file descriptors of this process. */
static int open_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* A savepoint's journal stays in memory: a savepoint that changes ~400 KB
 * of existing pages (SQLite journals each one first; its default keeps
 * 64 KiB in memory, then opens a temporary file) opens no file. The
 * orchestrator's group commit runs one savepoint per task transition. */
static void test_savepoint_journal_in_memory(void **state)
{
    fixture_t *f = *state;
    void *conn = NULL;
    aos_err_t err = {0};
    assert_int_equal(aos__store_sqlite.open(&conn, f->path, &err), 0);
    assert_int_equal(aos__store_sqlite.exec(conn, "CREATE TABLE t (id INTEGER PRIMARY KEY, b BLOB)",
                                            NULL, 0, NULL, &err),
                     0);
    static char blob[2048];
    memset(blob, 'x', sizeof(blob));
    for (int i = 0; i < 200; i++) {
        aos__sql_val_t v = aos__sql_blob(blob, sizeof(blob));
        assert_int_equal(
            aos__store_sqlite.exec(conn, "INSERT INTO t (b) VALUES (?)", &v, 1, NULL, &err), 0);
    }
    static const char *const before[] = {"BEGIN IMMEDIATE", "SAVEPOINT s"};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(aos__store_sqlite.exec(conn, before[i], NULL, 0, NULL, &err), 0);
    int fds = open_fds();
    assert_int_equal(
        aos__store_sqlite.exec(conn, "UPDATE t SET b = zeroblob(2048)", NULL, 0, NULL, &err), 0);
    int during = open_fds();
    static const char *const after[] = {"RELEASE s", "COMMIT"};
    for (size_t i = 0; i < 2; i++)
        assert_int_equal(aos__store_sqlite.exec(conn, after[i], NULL, 0, NULL, &err), 0);
    aos__store_sqlite.close(conn);
    assert_int_equal(raw_int(f, "SELECT count(*) FROM t WHERE b = zeroblob(2048)"), 200);
    if (during != fds)
        fail_msg("the savepoint opened %d file(s) for its journal", during - fds);
}

static void test_async_order_and_threads(void **state)
{
    fixture_t *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    async_state_t as = {.loop_thread = uv_thread_self()};
    job_arg_t args[NJOBS];
    as.st = open_store(f, &loop);

    for (int i = 0; i < NJOBS; i++) {
        args[i] = (job_arg_t){&as, i};
        assert_int_equal(aos_store_submit(as.st, job_fn, done_fn, &args[i]), 0);
    }
    int timed_out = 0;
    uv_timer_t guard;
    uv_timer_init(&loop, &guard);
    guard.data = &timed_out;
    uv_timer_start(&guard, on_guard, 10000, 0);
    while (as.ndone < NJOBS && !timed_out)
        uv_run(&loop, UV_RUN_ONCE);
    assert_false(timed_out);
    assert_false(as.bad_thread);
    for (int i = 0; i < NJOBS; i++)
        assert_int_equal(as.order[i], i);

    /* The jobs' writes are there. */
    aos_err_t err = {0};
    json_t *v = NULL;
    assert_int_equal(aos_store_setting_get(as.st, "job.39", &v, &err), 0);
    assert_int_equal(json_integer_value(v), 39);
    json_decref(v);

    /* Every job timed, by the kind it noted (or "other"), with its entries. */
    aos_store_job_time_t jt[AOS_STORE_JOB_KINDS];
    size_t nk = aos_store_job_times(as.st, jt, AOS_STORE_JOB_KINDS);
    uint64_t seen = 0;
    int even = 0;
    for (size_t k = 0; k < nk; k++) {
        uint64_t in_buckets = 0;
        for (size_t b = 0; b <= AOS_STORE_JOB_BOUNDS; b++)
            in_buckets += jt[k].buckets[b];
        assert_int_equal(in_buckets, jt[k].count);
        assert_true(jt[k].seconds > 0 && jt[k].max_seconds > 0);
        assert_true(jt[k].max_seconds <= jt[k].seconds);
        seen += jt[k].count;
        if (strcmp(jt[k].kind, "even") == 0) {
            even = 1;
            assert_int_equal(jt[k].count, NJOBS / 2);
            assert_int_equal(jt[k].entries, (NJOBS / 2) * (NJOBS - 2) / 2); /* 0 + 2 + ... */
        } else {
            assert_string_equal(jt[k].kind, "other");
            assert_int_equal(jt[k].count, NJOBS - NJOBS / 2);
            assert_int_equal(jt[k].entries, 0);
        }
    }
    assert_true(even);
    assert_int_equal(seen, NJOBS);

    assert_int_equal(aos_store_submit(as.st, NULL, NULL, NULL), AOS_EINVAL);
    aos_store_close(as.st);
    uv_close((uv_handle_t *)&guard, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* A done callback that tries to queue more work while the store closes. */
static void done_then_submit(int status, const aos_err_t *err, void *arg)
{
    job_arg_t *ja = arg;
    done_fn(status, err, arg);
    ja->as->late_submit_rc = aos_store_submit(ja->as->st, late_fn, late_done, ja->as);
}

static void test_close_drains_then_rejects(void **state)
{
    fixture_t *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    async_state_t as = {.loop_thread = uv_thread_self()};
    job_arg_t args[5];
    as.st = open_store(f, &loop);
    for (int i = 0; i < 5; i++) {
        args[i] = (job_arg_t){&as, i};
        assert_int_equal(aos_store_submit(as.st, slow_job_fn, done_then_submit, &args[i]), 0);
    }
    /* Close at once, without running the loop: it waits for the five slow
     * jobs and delivers their done callbacks here, on the loop thread. */
    aos_store_close(as.st);
    assert_int_equal(as.nran, 5);
    assert_int_equal(as.ndone, 5);
    for (int i = 0; i < 5; i++)
        assert_int_equal(as.order[i], i);
    assert_false(as.bad_thread);
    assert_int_equal(as.late_submit_rc, AOS_EUNAVAIL);

    uv_run(&loop, UV_RUN_DEFAULT); /* releases the store's async handle */
    assert_int_equal(as.late_done_called, 0);
    assert_int_equal(uv_loop_close(&loop), 0);

    /* Every job's write was committed before the close. */
    assert_int_equal(raw_int(f, "SELECT COUNT(*) FROM settings WHERE key LIKE 'job.%'"), 5);
}

static void test_close_from_done_callback(void **state)
{
    fixture_t *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    async_state_t as = {.loop_thread = uv_thread_self(), .close_in_done = 1};
    job_arg_t args[4];
    as.st = open_store(f, &loop);
    for (int i = 0; i < 4; i++) {
        args[i] = (job_arg_t){&as, i};
        assert_int_equal(aos_store_submit(as.st, slow_job_fn, done_fn, &args[i]), 0);
    }
    /* done of job 1 closes the store; the others are still delivered, once. */
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_null(as.st);
    assert_int_equal(as.ndone, 4);
    for (int i = 0; i < 4; i++)
        assert_int_equal(as.order[i], i);
    assert_int_equal(uv_loop_close(&loop), 0);
}

/* aosd shuts the store down while modules that hold it still have timers
 * on the winding-down loop: their submits are refused, the memory stays
 * until the close (a use-after-free before aos_store_shutdown). */
static void test_shutdown_then_submit(void **state)
{
    fixture_t *f = *state;
    uv_loop_t loop;
    assert_int_equal(uv_loop_init(&loop), 0);
    async_state_t as = {.loop_thread = uv_thread_self()};
    job_arg_t args[2];
    as.st = open_store(f, &loop);
    for (int i = 0; i < 2; i++) {
        args[i] = (job_arg_t){&as, i};
        assert_int_equal(aos_store_submit(as.st, slow_job_fn, done_fn, &args[i]), 0);
    }
    aos_store_shutdown(as.st);
    assert_int_equal(as.ndone, 2);
    assert_int_equal(aos_store_submit(as.st, late_fn, late_done, &as), AOS_EUNAVAIL);
    aos_store_shutdown(as.st);     /* a second time: nothing */
    uv_run(&loop, UV_RUN_DEFAULT); /* the store no longer holds the loop */
    assert_int_equal(aos_store_submit(as.st, late_fn, late_done, &as), AOS_EUNAVAIL);
    assert_int_equal(as.late_done_called, 0);
    assert_string_equal(aos_store_backend_name(as.st), "sqlite");
    aos_store_close(as.st);
    assert_int_equal(uv_loop_close(&loop), 0);
}

static void test_sync_store_has_no_submit(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = open_store(f, NULL);
    assert_int_equal(aos_store_submit(st, late_fn, NULL, NULL), AOS_EINVAL);
    aos_store_close(st);
    aos_store_close(NULL);
}

int main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_open_creates_schema),
        T(test_reopen_is_idempotent_and_keeps_data),
        T(test_migrations_apply_only_new_ones),
        T(test_migration_filling_a_gap_is_applied),
        T(test_upgrade_keeps_a_v9_waiting_task),
        T(test_task_rows_allowed_values),
        T(test_failed_migration_rolls_back),
        T(test_open_errors),
        T(test_registry_round_trip),
        T(test_registry_rejects_bad_input),
        T(test_tx_commit_rollback_nested),
        T(test_audit_paging),
        T(test_settings),
        T(test_mem_vectors_by_model),
        T(test_counters),
        T(test_tokens),
        T(test_agent_runs),
        T(test_backend_contract),
        T(test_background_checkpoint),
        T(test_wal_restart_off_the_writer),
        T(test_wal_restart_hard),
        T(test_savepoint_journal_in_memory),
        T(test_async_order_and_threads),
        T(test_close_drains_then_rejects),
        T(test_close_from_done_callback),
        T(test_shutdown_then_submit),
        T(test_sync_store_has_no_submit),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
