/* sqlite.c - the SQLite backend of the store (see internal.h for the
 * contract). The connection runs in WAL mode with synchronous=NORMAL, foreign
 * keys on and a busy timeout, and keeps its prepared statements in a small
 * cache keyed by SQL text, since the domain functions run the same few
 * statements over and over.
 *
 * Checkpoints run on a thread of their own. Left to SQLite, the commit that
 * takes the WAL past 1,000 pages copies them into the database and syncs
 * both files before it returns, so every few hundred commits one caller
 * waits several milliseconds. Here a WAL hook wakes the checkpointer thread
 * instead, once CKPT_PAGES pages wait to be copied, and it runs a PASSIVE
 * checkpoint on its own connection while the writer goes on.
 *
 * A PASSIVE checkpoint never makes the WAL start over: SQLite restarts it
 * only when a write transaction begins with every frame copied (and the
 * database synced), and under a steady stream of commits the writer always
 * commits something while the checkpointer copies and syncs (a sync alone
 * is ~3 ms on the VM of the benchmarks). A RESTART checkpoint from the
 * checkpointer would block the writer instead (it takes the write lock for
 * the copy and both syncs). So the checkpointer owns the syncing, and the
 * writer only gives it the chance: once the WAL holds CKPT_RESTART_PAGES,
 * every commit wakes the checkpointer if it is idle with anything left to
 * copy (so that it stays a few commits behind), and so does every gap
 * between two jobs of the store's worker (upkeep); a pass that ends with
 * no commit in between leaves nothing to copy, and the next commit starts
 * the WAL over. The writer never waits for it. Only past CKPT_HARD_PAGES
 * (the store never idle for as long as a pass takes) does the writer copy
 * the few pages left itself, with the two syncs - never inside a commit,
 * at a moment the checkpointer is not running, and between two jobs with
 * no job waiting, so that only a request arriving during those syncs
 * waits, and for what is left of them (with jobs waiting it wakes the
 * checkpointer instead, which keeps the rest small); past CKPT_LAST_PAGES
 * at any gap. The commit that starts the WAL over syncs its first frame
 * (SQLite's own rule).
 *
 * Temporary storage is in memory (temp_store=MEMORY), savepoint journals
 * above all. A nested aos_store_tx is a savepoint, and SQLite first copies
 * every page the savepoint changes into the savepoint's journal, which by
 * default becomes a temporary file past 64 KiB. The orchestrator's group
 * commit ran each task's transition in a savepoint (now only a batch in
 * which one failed, commit.c): at 64 transitions
 * per commit that was 20 pages per transition written to a temporary file
 * (bench/orchestrator: 43 pwrite calls per transition, 6 with it in
 * memory). The journal lives until its savepoint ends. */
#include "store/internal.h"
#include "store/store.h"
#include "log/log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#define BUSY_TIMEOUT_MS    5000
#define CACHE_SIZE         32
#define CKPT_PAGES         1000  /* uncopied pages that wake the checkpointer (SQLite's default) */
#define CKPT_RESTART_PAGES 8000  /* from here the checkpointer stays close behind the writer */
#define CKPT_HARD_PAGES    20000 /* from here the writer copies the rest itself, no job waiting */
#define CKPT_LAST_PAGES    24000 /* ... at any gap, even while the checkpointer runs */
#define FTS_PHRASE_MAX     1024  /* a query word's tokens (q is at most 512 bytes) */

/* The checkpointer thread and its connection. */
typedef struct {
    char *path;
    uv_thread_t thread;
    uv_mutex_t mu;
    uv_cond_t cond;
    int wanted, stop; /* under mu */
    int running;      /* under mu: a checkpoint is under way */
    int copied;       /* under mu: WAL frames copied as of the last checkpoint */
} ckpt_t;

typedef struct {
    char *sql; /* owned copy: the key */
    /* the caller's text it was last found by: the domain functions pass
     * string literals, so a hit is mostly one pointer compare (and one
     * strcmp to be sure), not a strcmp with each entry */
    const char *seen;
    sqlite3_stmt *stmt;
    int busy; /* in use by a query whose row callback runs another */
} cached_stmt_t;

typedef struct {
    sqlite3 *db;
    cached_stmt_t cache[CACHE_SIZE];
    int next_evict; /* round robin over a full cache */
    ckpt_t *ckpt;   /* NULL: SQLite checkpoints in the committing call */
    int wal_pages;  /* the WAL's frames after the last commit */
} conn_t;

static void ckpt_main(void *arg)
{
    ckpt_t *k = arg;
    sqlite3 *db = NULL;
    pthread_setname_np(pthread_self(), "aos-checkpoint");
    int failed = 0;
    if (sqlite3_open_v2(k->path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
        SQLITE_OK) {
        sqlite3_close(db);
        db = NULL;
    } else {
        sqlite3_busy_timeout(db, BUSY_TIMEOUT_MS);
        /* a connection learns that the file is in WAL mode when it first
         * reads it; until then checkpoints are silent no-ops */
        sqlite3_exec(db, "PRAGMA journal_mode=WAL", NULL, NULL, NULL);
    }
    uv_mutex_lock(&k->mu);
    for (;;) {
        while (!k->wanted && !k->stop)
            uv_cond_wait(&k->cond, &k->mu);
        if (k->stop)
            break;
        k->wanted = 0;
        k->running = 1;
        uv_mutex_unlock(&k->mu);
        /* PASSIVE: copies what no reader still needs, never blocks the
         * writer (see the top of the file for the rest) */
        int log = 0, copied = 0;
        int rc = db ? sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied)
                    : SQLITE_CANTOPEN;
        if (rc != SQLITE_OK && rc != SQLITE_BUSY && !failed++)
            aos_log_warn("store", "background checkpoint failed: %s; the WAL grows until %d pages",
                         db ? sqlite3_errmsg(db) : sqlite3_errstr(rc), CKPT_HARD_PAGES);
        uv_mutex_lock(&k->mu);
        k->running = 0;
        if (rc == SQLITE_OK)
            k->copied = copied;
    }
    uv_mutex_unlock(&k->mu);
    sqlite3_close(db);
}

/* Runs on the writer after each commit: pages is the WAL's size. */
static int on_wal(void *arg, sqlite3 *db, const char *name, int pages)
{
    (void)db;
    (void)name;
    conn_t *c = arg;
    ckpt_t *k = c->ckpt;
    c->wal_pages = pages;
    uv_mutex_lock(&k->mu);
    if (k->copied > pages) /* the WAL started over since */
        k->copied = 0;
    /* past CKPT_HARD_PAGES the writer takes over: a pass of ours would
     * keep it off (upkeep waits for a moment we are not running) */
    if (pages - k->copied >= CKPT_PAGES ||
        (pages >= CKPT_RESTART_PAGES && pages < CKPT_HARD_PAGES && pages > k->copied &&
         !k->running)) {
        k->wanted = 1;
        uv_cond_signal(&k->cond);
    }
    uv_mutex_unlock(&k->mu);
    return SQLITE_OK;
}

/* Between two jobs (store.c; busy: jobs wait): lets a large WAL start over,
 * see the top of the file. Returns the pages the writer copied itself (0
 * if it ran no checkpoint, or one that found the checkpointer at work). */
static int sqlite_upkeep(void *conn, int busy)
{
    conn_t *c = conn;
    ckpt_t *k = c->ckpt;
    if (!k || c->wal_pages < CKPT_RESTART_PAGES)
        return 0;
    uv_mutex_lock(&k->mu);
    int running = k->running || k->wanted; /* woken: about to run */
    int rest = c->wal_pages - (k->copied > c->wal_pages ? 0 : k->copied);
    int hard =
        c->wal_pages >= CKPT_LAST_PAGES || (c->wal_pages >= CKPT_HARD_PAGES && !busy && !running);
    /* done before the next commit, the WAL starts over; else the rest it
     * leaves is less for the writer to copy */
    if (!hard && !running && rest > 0) {
        k->wanted = 1;
        uv_cond_signal(&k->cond);
    }
    uv_mutex_unlock(&k->mu);
    if (!hard || rest == 0)
        return 0;
    int log = 0, copied = 0;
    int rc = sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &copied);
    if (rc != SQLITE_OK) /* SQLITE_BUSY: the checkpointer got there first */
        return 0;
    if (copied == log)
        c->wal_pages = 0; /* all copied: the next commit starts the WAL over */
    return rest;
}

static void ckpt_stop(ckpt_t *k)
{
    if (!k)
        return;
    uv_mutex_lock(&k->mu);
    k->stop = 1;
    uv_cond_signal(&k->cond);
    uv_mutex_unlock(&k->mu);
    uv_thread_join(&k->thread);
    uv_cond_destroy(&k->cond);
    uv_mutex_destroy(&k->mu);
    free(k->path);
    free(k);
}

/* For a database file in WAL mode; without it SQLite checkpoints itself. */
static void ckpt_start(conn_t *c, const char *path)
{
    ckpt_t *k = calloc(1, sizeof(*k));
    if (!k || !(k->path = strdup(path)))
        goto fail;
    if (uv_mutex_init(&k->mu) != 0)
        goto fail;
    if (uv_cond_init(&k->cond) != 0) {
        uv_mutex_destroy(&k->mu);
        goto fail;
    }
    if (uv_thread_create(&k->thread, ckpt_main, k) != 0) {
        uv_cond_destroy(&k->cond);
        uv_mutex_destroy(&k->mu);
        goto fail;
    }
    c->ckpt = k;
    sqlite3_wal_hook(c->db, on_wal, c); /* replaces SQLite's auto-checkpoint */
    return;
fail:
    if (k)
        free(k->path);
    free(k);
}

static int fail(conn_t *c, aos_err_t *err, int rc)
{
    int code = AOS_ESTORE;
    if ((rc & 0xff) == SQLITE_CONSTRAINT) {
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
            code = AOS_ECONFLICT;
        else
            code = AOS_EINVAL;
    } else if (rc == SQLITE_NOMEM) {
        code = AOS_ENOMEM;
    }
    return aos_err_set(err, code, "%s", c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
}

static void sqlite_close(void *conn)
{
    conn_t *c = conn;
    if (!c)
        return;
    if (c->ckpt) {
        sqlite3_wal_hook(c->db, NULL, NULL);
        ckpt_stop(c->ckpt);
        c->ckpt = NULL;
    }
    for (int i = 0; i < CACHE_SIZE; i++) {
        sqlite3_finalize(c->cache[i].stmt);
        free(c->cache[i].sql);
    }
    sqlite3_close(c->db);
    free(c);
}

/* aos_logs_phrase(message, tokens): aos_store_logs_phrase_match for SQL,
 * tokens ending in '*' for a prefix. The log queries use it to check the
 * order of a word's tokens, which the full-text index does not keep. */
static void fn_logs_phrase(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    (void)argc;
    const char *msg = (const char *)sqlite3_value_text(argv[0]);
    const char *tok = (const char *)sqlite3_value_text(argv[1]);
    if (!msg || !tok) {
        sqlite3_result_int(ctx, 0);
        return;
    }
    int len = sqlite3_value_bytes(argv[0]);
    size_t tn = strlen(tok);
    int prefix = tn && tok[tn - 1] == '*';
    char buf[FTS_PHRASE_MAX];
    if (prefix) {
        if (tn > sizeof(buf)) {
            sqlite3_result_int(ctx, 0);
            return;
        }
        memcpy(buf, tok, tn - 1);
        buf[tn - 1] = '\0';
        tok = buf;
    }
    sqlite3_result_int(ctx, aos_store_logs_phrase_match(msg, (size_t)len, tok, prefix));
}

/* Creates a missing database file with mode 0600 (SQLite would use 0644):
 * it holds token hashes and sealed secrets. SQLite gives its -wal and -shm
 * files the mode of the database. */
static int create_private(const char *path, aos_err_t *err)
{
    if (strcmp(path, ":memory:") == 0 || path[0] == '\0')
        return 0;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return 0;
        return aos_err_set(err, AOS_ESTORE, "unable to open '%s': %s", path, strerror(errno));
    }
    close(fd);
    return 0;
}

/* Before SQLite's first use in the process: no memory statistics (nothing
 * reads them), which spares every allocation of SQLite a global mutex and
 * its counters. SQLITE_MISUSE when SQLite is in use already: harmless. */
static uv_once_t mem_once = UV_ONCE_INIT;
static void mem_config(void)
{
    sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}

static int sqlite_open(void **out, const char *path, aos_err_t *err)
{
    *out = NULL;
    uv_once(&mem_once, mem_config);
    if (!sqlite3_threadsafe())
        return aos_err_set(err, AOS_ESTORE, "unable to open '%s': libsqlite3 built without threads",
                           path);
    if (create_private(path, err) < 0)
        return err ? err->code : AOS_ESTORE;
    conn_t *c = calloc(1, sizeof(*c));
    if (!c)
        return aos_err_set(err, AOS_ENOMEM, "unable to open '%s': out of memory", path);
    /* NOMUTEX: store.c serializes every use of the connection. */
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path, &c->db, flags, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    sqlite3_extended_result_codes(c->db, 1);
    sqlite3_busy_timeout(c->db, BUSY_TIMEOUT_MS);
    /* journal_mode answers with a row ("wal", or "memory" for :memory:),
     * which sqlite3_exec discards. The first read of the file happens here,
     * so this is where a file that is not a database fails. A page cache
     * of 16 MB instead of 2: with the default, log ingest at batch 100 had
     * the writer read back ~3,600 pages in 5 s (the trace groups' leaves);
     * with 16 MB none. temp_store: see the top of the file. */
    rc = sqlite3_exec(c->db,
                      "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=ON; "
                      "PRAGMA cache_size=-16384; PRAGMA temp_store=MEMORY;",
                      NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    rc = sqlite3_create_function_v2(c->db, "aos_logs_phrase", 2,
                                    SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, NULL,
                                    fn_logs_phrase, NULL, NULL, NULL);
    if (rc != SQLITE_OK)
        goto fail;
    if (strcmp(path, ":memory:") != 0 && path[0] != '\0')
        ckpt_start(c, path);
    *out = c;
    return 0;
fail:
    aos_err_set(err, AOS_ESTORE, "unable to open '%s': %s", path,
                c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
    sqlite_close(c);
    return AOS_ESTORE;
}

/* A prepared statement for sql, from the cache when it is there and free;
 * *cached tells whether to give it back with release() or finalize it. */
static int prepare(conn_t *c, const char *sql, sqlite3_stmt **out, cached_stmt_t **cached,
                   aos_err_t *err)
{
    cached_stmt_t *slot = NULL, *hint = NULL;
    int reentered = 0;
    *cached = NULL;
    for (int i = 0; i < CACHE_SIZE && !hint; i++)
        if (c->cache[i].seen == sql && c->cache[i].sql && strcmp(c->cache[i].sql, sql) == 0)
            hint = &c->cache[i];
    for (int i = 0; i < CACHE_SIZE; i++) {
        cached_stmt_t *e = hint ? hint : &c->cache[i];
        if (e->sql && (e == hint || strcmp(e->sql, sql) == 0)) {
            e->seen = sql;
            if (e->busy) {
                reentered = 1; /* use a one-off statement, leave the cache alone */
                break;
            }
            e->busy = 1;
            *cached = e;
            *out = e->stmt;
            return 0;
        }
        if (!e->sql && !slot)
            slot = e;
    }
    sqlite3_stmt *stmt = NULL;
    int rc =
        sqlite3_prepare_v3(c->db, sql, -1, reentered ? 0 : SQLITE_PREPARE_PERSISTENT, &stmt, NULL);
    if (rc != SQLITE_OK)
        return fail(c, err, rc);
    if (!stmt) /* only a comment or white space */
        return aos_err_set(err, AOS_EINTERNAL, "empty statement");
    if (reentered) {
        *out = stmt;
        return 0;
    }
    if (!slot) {
        /* Full: evict one that is not running. */
        for (int n = 0; n < CACHE_SIZE && !slot; n++) {
            cached_stmt_t *e = &c->cache[c->next_evict];
            c->next_evict = (c->next_evict + 1) % CACHE_SIZE;
            if (!e->busy) {
                sqlite3_finalize(e->stmt);
                free(e->sql);
                e->sql = NULL;
                e->stmt = NULL;
                slot = e;
            }
        }
    }
    char *key = slot ? strdup(sql) : NULL;
    if (key) {
        slot->sql = key;
        slot->seen = sql;
        slot->stmt = stmt;
        slot->busy = 1;
        *cached = slot;
    }
    *out = stmt;
    return 0;
}

static void release(sqlite3_stmt *stmt, cached_stmt_t *cached)
{
    if (cached) {
        sqlite3_reset(stmt);
        sqlite3_clear_bindings(stmt);
        cached->busy = 0;
    } else {
        sqlite3_finalize(stmt);
    }
}

static int bind_params(conn_t *c, sqlite3_stmt *stmt, const aos__sql_val_t *params, int nparams,
                       aos_err_t *err)
{
    if (sqlite3_bind_parameter_count(stmt) != nparams)
        return aos_err_set(err, AOS_EINTERNAL, "statement takes %d parameters, got %d",
                           sqlite3_bind_parameter_count(stmt), nparams);
    for (int i = 0; i < nparams; i++) {
        const aos__sql_val_t *v = &params[i];
        int rc;
        switch (v->type) {
        case AOS__SQL_INT:
            rc = sqlite3_bind_int64(stmt, i + 1, v->i);
            break;
        case AOS__SQL_REAL:
            rc = sqlite3_bind_double(stmt, i + 1, v->r);
            break;
        case AOS__SQL_TEXT:
            rc = sqlite3_bind_text64(stmt, i + 1, v->p, v->len, SQLITE_STATIC, SQLITE_UTF8);
            break;
        case AOS__SQL_BLOB:
            rc = sqlite3_bind_blob64(stmt, i + 1, v->p ? v->p : "", v->len, SQLITE_STATIC);
            break;
        case AOS__SQL_NULL:
        default:
            rc = sqlite3_bind_null(stmt, i + 1);
            break;
        }
        if (rc != SQLITE_OK)
            return fail(c, err, rc);
    }
    return 0;
}

/* A statement for sql with params bound, to run and then release(). */
static int start(conn_t *c, const char *sql, const aos__sql_val_t *params, int nparams,
                 sqlite3_stmt **stmt, cached_stmt_t **cached, aos_err_t *err)
{
    int rc = prepare(c, sql, stmt, cached, err);
    if (rc < 0)
        return rc;
    rc = bind_params(c, *stmt, params, nparams, err);
    if (rc < 0)
        release(*stmt, *cached);
    return rc;
}

static int sqlite_exec(void *conn, const char *sql, const aos__sql_val_t *params, int nparams,
                       int64_t *changes, aos_err_t *err)
{
    conn_t *c = conn;
    sqlite3_stmt *stmt = NULL;
    cached_stmt_t *cached = NULL;
    int rc = start(c, sql, params, nparams, &stmt, &cached, err);
    if (rc < 0)
        return rc;
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW)
        ;
    if (step != SQLITE_DONE) {
        rc = fail(c, err, step);
        goto out;
    }
    if (changes)
        *changes = sqlite3_changes64(c->db);
out:
    release(stmt, cached);
    return rc;
}

static int sqlite_query(void *conn, const char *sql, const aos__sql_val_t *params, int nparams,
                        aos__store_row_fn fn, void *arg, aos_err_t *err)
{
    conn_t *c = conn;
    sqlite3_stmt *stmt = NULL;
    cached_stmt_t *cached = NULL;
    aos__sql_val_t *cols = NULL;
    int rc = start(c, sql, params, nparams, &stmt, &cached, err);
    if (rc < 0)
        return rc;
    int ncols = sqlite3_column_count(stmt);
    cols = calloc(ncols > 0 ? (size_t)ncols : 1, sizeof(*cols));
    if (!cols) {
        rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
        goto out;
    }
    int step;
    while ((step = sqlite3_step(stmt)) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++) {
            aos__sql_val_t *v = &cols[i];
            memset(v, 0, sizeof(*v));
            switch (sqlite3_column_type(stmt, i)) {
            case SQLITE_INTEGER:
                v->type = AOS__SQL_INT;
                v->i = sqlite3_column_int64(stmt, i);
                break;
            case SQLITE_FLOAT:
                v->type = AOS__SQL_REAL;
                v->r = sqlite3_column_double(stmt, i);
                break;
            case SQLITE_TEXT:
                v->type = AOS__SQL_TEXT;
                v->p = sqlite3_column_text(stmt, i);
                v->len = (size_t)sqlite3_column_bytes(stmt, i);
                break;
            case SQLITE_BLOB:
                v->type = AOS__SQL_BLOB;
                v->p = sqlite3_column_blob(stmt, i);
                v->len = (size_t)sqlite3_column_bytes(stmt, i);
                break;
            default:
                v->type = AOS__SQL_NULL;
                break;
            }
        }
        rc = fn(cols, ncols, arg, err);
        if (rc < 0)
            goto out;
    }
    if (step != SQLITE_DONE)
        rc = fail(c, err, step);
out:
    free(cols);
    release(stmt, cached);
    return rc;
}

/* Migrations only: sqlite3_exec prepares and runs each statement in turn;
 * there are no parameters to bind. */
static int sqlite_exec_script(void *conn, const char *sql, aos_err_t *err)
{
    conn_t *c = conn;
    int rc = sqlite3_exec(c->db, sql, NULL, NULL, NULL);
    return rc == SQLITE_OK ? 0 : fail(c, err, rc);
}

static int sqlite_begin(void *conn, aos_err_t *err)
{
    /* IMMEDIATE takes the write lock now (waiting up to the busy timeout),
     * so a transaction that read first cannot fail on its first write. */
    return sqlite_exec(conn, "BEGIN IMMEDIATE", NULL, 0, NULL, err);
}

static int sqlite_commit(void *conn, aos_err_t *err)
{
    return sqlite_exec(conn, "COMMIT", NULL, 0, NULL, err);
}

static int sqlite_rollback(void *conn, aos_err_t *err)
{
    conn_t *c = conn;
    /* A failed statement may already have rolled the transaction back. */
    if (sqlite3_get_autocommit(c->db))
        return 0;
    return sqlite_exec(conn, "ROLLBACK", NULL, 0, NULL, err);
}

static int64_t sqlite_last_insert_id(void *conn)
{
    conn_t *c = conn;
    return sqlite3_last_insert_rowid(c->db);
}

const aos__store_backend_t aos__store_sqlite = {
    .name = "sqlite",
    .open = sqlite_open,
    .close = sqlite_close,
    .exec = sqlite_exec,
    .query = sqlite_query,
    .exec_script = sqlite_exec_script,
    .begin = sqlite_begin,
    .commit = sqlite_commit,
    .rollback = sqlite_rollback,
    .last_insert_id = sqlite_last_insert_id,
    .upkeep = sqlite_upkeep,
};
