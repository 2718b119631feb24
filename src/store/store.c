/* store.c - the life of a store: opening a backend by URL, applying the
 * migrations, transactions, and the worker thread that runs jobs off the
 * loop and hands their results back to it.
 *
 * The worker takes jobs from a FIFO (todo), runs each with db_lock held, puts
 * it on a second FIFO (done) and wakes the loop with uv_async_send; the async
 * callback then calls the done callbacks in order. One worker keeps jobs, and
 * so their results, in submission order. Between two jobs the backend gets
 * a call for the work it put off (upkeep), told whether jobs wait. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include "log/log.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct aos__store_job_s {
    aos__store_job_t *next;
    aos_store_job_fn fn;
    aos_store_done_fn done;
    void *arg; /* borrowed: the submitter's */
    int status;
    aos_err_t err;
    uint64_t queued_ns; /* uv_hrtime() at submit */
};

aos__sql_val_t aos__sql_text(const char *s)
{
    aos__sql_val_t v = {0};
    if (s) {
        v.type = AOS__SQL_TEXT;
        v.p = s;
        v.len = strlen(s);
    }
    return v;
}

aos__sql_val_t aos__sql_int(int64_t i)
{
    aos__sql_val_t v = {0};
    v.type = AOS__SQL_INT;
    v.i = i;
    return v;
}

aos__sql_val_t aos__sql_blob(const void *p, size_t len)
{
    aos__sql_val_t v = {0};
    v.type = AOS__SQL_BLOB;
    v.p = p;
    v.len = len;
    return v;
}

aos__sql_val_t aos__sql_null(void)
{
    aos__sql_val_t v = {0};
    return v;
}

aos__sql_val_t aos__sql_real(double r)
{
    aos__sql_val_t v = {.type = AOS__SQL_REAL, .r = r};
    return v;
}

int aos__store_fail(aos_err_t *err, int code, const char *fmt, ...)
{
    if (!err)
        return code;
    char prev[sizeof(err->msg)];
    char op[sizeof(err->msg)];
    snprintf(prev, sizeof(prev), "%s", err->code ? aos_err_msg(err) : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(op, sizeof(op), fmt, ap);
    va_end(ap);
    if (prev[0])
        return aos_err_set(err, code, "%s: %s", op, prev);
    return aos_err_set(err, code, "%s", op);
}

int aos__store_exec(aos_store_t *st, const char *sql, const aos__sql_val_t *params, int nparams,
                    int64_t *changes, aos_err_t *err)
{
    uv_mutex_lock(&st->db_lock);
    int rc = st->be->exec(st->conn, sql, params, nparams, changes, err);
    uv_mutex_unlock(&st->db_lock);
    return rc;
}

int aos__store_query(aos_store_t *st, const char *sql, const aos__sql_val_t *params, int nparams,
                     aos__store_row_fn fn, void *arg, aos_err_t *err)
{
    uv_mutex_lock(&st->db_lock);
    int rc = st->be->query(st->conn, sql, params, nparams, fn, arg, err);
    uv_mutex_unlock(&st->db_lock);
    return rc;
}

int64_t aos__store_last_insert_id(aos_store_t *st)
{
    uv_mutex_lock(&st->db_lock);
    int64_t id = st->be->last_insert_id(st->conn);
    uv_mutex_unlock(&st->db_lock);
    return id;
}

int aos__store_busy(aos_store_t *st)
{
    uv_mutex_lock(&st->q_lock);
    int busy = st->todo != NULL;
    uv_mutex_unlock(&st->q_lock);
    return busy;
}

/* Migrations ------------------------------------------------------------ */

/* "0001_init.sql" -> 1; -1 unless the name is digits, '_', a name, ".sql". */
static int migration_version(const char *name)
{
    int v = 0;
    const char *p = name;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (v > 100000)
            return -1;
        v = v * 10 + (*p - '0');
    }
    size_t n = strlen(name);
    if (p == name || *p != '_' || n < 5 || strcmp(name + n - 4, ".sql") != 0)
        return -1;
    return v;
}

static int read_int(const aos__sql_val_t *cols, int ncols, void *arg, aos_err_t *err)
{
    int64_t *out = arg;
    if (ncols > 0 && cols[0].type == AOS__SQL_INT)
        *out = cols[0].i;
    return 0;
}

static int apply_migration(aos_store_t *st, const aos_embed_t *m, int version, aos_err_t *err)
{
    int64_t found = 0;
    int rc = st->be->begin(st->conn, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to apply migration '%s'", m->name);
    /* Another process may have applied it since we looked. */
    aos__sql_val_t v = aos__sql_int(version);
    rc = st->be->query(st->conn, "SELECT 1 FROM schema_migrations WHERE version = ?", &v, 1,
                       read_int, &found, err);
    if (rc == 0 && !found) {
        rc = st->be->exec_script(st->conn, (const char *)m->data, err);
        if (rc == 0) {
            char now[32];
            aos_isotime_now(now);
            aos__sql_val_t p[2] = {aos__sql_int(version), aos__sql_text(now)};
            rc = st->be->exec(st->conn,
                              "INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
                              p, 2, NULL, err);
        }
    }
    if (rc == 0)
        rc = st->be->commit(st->conn, err);
    if (rc < 0) {
        aos_err_t ignored = {0};
        st->be->rollback(st->conn, &ignored);
        return aos__store_fail(err, AOS_ESTORE, "unable to apply migration '%s'", m->name);
    }
    if (!found)
        aos_log_info("store", "applied migration %s", m->name);
    return 0;
}

static int migrate(aos_store_t *st, const aos_embed_t *migrations, aos_err_t *err)
{
    int64_t current = 0;
    int rc = st->be->exec(st->conn,
                          "CREATE TABLE IF NOT EXISTS schema_migrations ("
                          "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)",
                          NULL, 0, NULL, err);
    if (rc == 0)
        rc = st->be->query(st->conn, "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
                           NULL, 0, read_int, &current, err);
    if (rc < 0)
        return aos__store_fail(err, AOS_ESTORE, "unable to read schema version");

    int last = 0;
    for (const aos_embed_t *m = migrations; m->name; m++) {
        int version = migration_version(m->name);
        if (version <= last)
            return aos_err_set(err, AOS_EINTERNAL, "migration '%s' is misnamed or out of order",
                               m->name);
        last = version;
        if (version == 15)
            st->audit_chain = 1; /* 0015_audit_chain.sql */
        if (version == 24)
            st->audit_anchor = 1; /* 0024_audit_anchor.sql */
        /* each one by its own record, not by the highest applied: a database
         * that saw 0003 before 0002 existed still gets 0002 */
        rc = apply_migration(st, m, version, err);
        if (rc < 0)
            return rc;
    }
    if (current > last)
        return aos_err_set(err, AOS_ESTORE,
                           "database schema version %d is newer than this aosd knows (%d)",
                           (int)current, last);
    st->schema_version = last;
    return 0;
}

/* The worker ------------------------------------------------------------ */

const double aos_store_job_bounds[AOS_STORE_JOB_BOUNDS] = {0.0005, 0.001, 0.002, 0.003, 0.005,
                                                           0.0075, 0.01,  0.02,  0.03,  0.05};

/* What the job running on this thread said it is (aos_store_job_note):
 * only the worker's copy is ever read. */
static _Thread_local const char *job_kind;
static _Thread_local int64_t job_entries;

void aos_store_job_note(const char *kind, int64_t entries)
{
    job_kind = kind;
    job_entries = entries;
}

/* Under q_lock: one job (or upkeep) of kind that took ns. */
static void job_timed(aos_store_t *st, const char *kind, uint64_t ns, int64_t entries)
{
    if (st->ntimes == 0)
        st->times[st->ntimes++].kind = "other";
    aos_store_job_time_t *t = &st->times[0];
    for (size_t i = 0; kind && i < st->ntimes; i++)
        if (strcmp(st->times[i].kind, kind) == 0) {
            t = &st->times[i];
            kind = NULL;
        }
    if (kind && st->ntimes < AOS_STORE_JOB_KINDS) {
        t = &st->times[st->ntimes++];
        t->kind = kind;
    }
    double s = (double)ns / 1e9;
    size_t b = 0;
    while (b < AOS_STORE_JOB_BOUNDS && s > aos_store_job_bounds[b])
        b++;
    t->buckets[b]++;
    t->count++;
    t->seconds += s;
    if (s > t->max_seconds)
        t->max_seconds = s;
    if (entries > 0)
        t->entries += (uint64_t)entries;
}

size_t aos_store_job_times(aos_store_t *st, aos_store_job_time_t *out, size_t max)
{
    if (!st->async)
        return 0;
    uv_mutex_lock(&st->q_lock);
    size_t n = st->ntimes < max ? st->ntimes : max;
    memcpy(out, st->times, n * sizeof(*out));
    uv_mutex_unlock(&st->q_lock);
    return n;
}

static void worker_main(void *arg)
{
    aos_store_t *st = arg;
    pthread_setname_np(pthread_self(), "aos-store");
    uv_mutex_lock(&st->q_lock);
    for (;;) {
        if (st->be->upkeep && !st->closing) {
            int busy = st->todo != NULL;
            uv_mutex_unlock(&st->q_lock);
            uint64_t t0 = uv_hrtime();
            uv_mutex_lock(&st->db_lock);
            int pages = st->be->upkeep(st->conn, busy);
            uv_mutex_unlock(&st->db_lock);
            uint64_t t1 = uv_hrtime();
            uv_mutex_lock(&st->q_lock);
            if (pages > 0)
                job_timed(st, "checkpoint", t1 - t0, pages);
        }
        while (!st->todo && !st->closing)
            uv_cond_wait(&st->q_cond, &st->q_lock);
        aos__store_job_t *job = st->todo;
        if (!job)
            break; /* closing and drained */
        st->todo = job->next;
        if (!st->todo)
            st->todo_tail = &st->todo;
        st->stats.queued--;
        st->stats.running = 1;
        uv_mutex_unlock(&st->q_lock);

        uint64_t t0 = uv_hrtime();
        job_kind = NULL;
        job_entries = 0;
        uv_mutex_lock(&st->db_lock);
        job->status = job->fn(st, job->arg, &job->err);
        uv_mutex_unlock(&st->db_lock);
        uint64_t t1 = uv_hrtime();
        if (job->status > 0)
            job->status = AOS_EINTERNAL;
        if (job->status == 0) /* fn may have recovered from a failure */
            memset(&job->err, 0, sizeof(job->err));
        else if (job->err.code == 0)
            aos_err_set(&job->err, job->status, NULL);

        uv_mutex_lock(&st->q_lock);
        st->stats.running = 0;
        st->stats.wait_seconds += (double)(t0 - job->queued_ns) / 1e9;
        st->stats.busy_seconds += (double)(t1 - t0) / 1e9;
        st->stats.done++;
        job_timed(st, job_kind, t1 - t0, job_entries);
        if (job->status)
            st->stats.failed++;
        job->next = NULL;
        *st->done_tail = job;
        st->done_tail = &job->next;
        uv_async_send(st->async);
    }
    uv_mutex_unlock(&st->q_lock);
}

static aos__store_job_t *pop_done(aos_store_t *st)
{
    uv_mutex_lock(&st->q_lock);
    aos__store_job_t *job = st->done;
    if (job) {
        st->done = job->next;
        if (!st->done)
            st->done_tail = &st->done;
    }
    uv_mutex_unlock(&st->q_lock);
    return job;
}

static void deliver(aos__store_job_t *job)
{
    if (job->done)
        job->done(job->status, &job->err, job->arg);
    free(job);
}

/* One job at a time, re-reading h->data: a done callback may close the store,
 * which clears it and delivers the rest itself. */
static void on_async(uv_async_t *h)
{
    aos_store_t *st;
    aos__store_job_t *job;
    while ((st = h->data) && (job = pop_done(st)))
        deliver(job);
}

static void on_async_closed(uv_handle_t *h)
{
    free(h);
}

int aos_store_submit(aos_store_t *st, aos_store_job_fn fn, aos_store_done_fn done, void *arg)
{
    if (!st || !fn)
        return AOS_EINVAL;
    if (st->closing) /* shut down (its caller's thread): no worker, no handle */
        return AOS_EUNAVAIL;
    if (!st->async)
        return AOS_EINVAL;
    aos__store_job_t *job = calloc(1, sizeof(*job));
    if (!job)
        return AOS_ENOMEM;
    job->fn = fn;
    job->done = done;
    job->arg = arg;
    uv_mutex_lock(&st->q_lock);
    if (st->closing) {
        uv_mutex_unlock(&st->q_lock);
        free(job);
        return AOS_EUNAVAIL;
    }
    job->queued_ns = uv_hrtime();
    *st->todo_tail = job;
    st->todo_tail = &job->next;
    st->stats.queued++;
    uv_cond_signal(&st->q_cond);
    uv_mutex_unlock(&st->q_lock);
    return 0;
}

void aos_store_stats(aos_store_t *st, aos_store_stats_t *out)
{
    if (!st->async) {
        memset(out, 0, sizeof(*out));
        return;
    }
    uv_mutex_lock(&st->q_lock);
    *out = st->stats;
    uv_mutex_unlock(&st->q_lock);
}

/* Open and close --------------------------------------------------------- */

/* The backend for url, and in *target what to hand it; NULL (AOS_EINVAL) if
 * url names none. Only the scheme of an unknown URL is quoted: the rest may
 * hold a password. */
static const aos__store_backend_t *pick_backend(const char *url, const char **target,
                                                aos_err_t *err)
{
    if (!url || !url[0]) {
        aos_err_set(err, AOS_EINVAL, "unable to open store: empty database url");
        return NULL;
    }
    if (strncmp(url, "sqlite:", 7) == 0) {
        *target = url + 7;
        if (strncmp(*target, "//", 2) == 0)
            *target += 2;
        if (!**target) {
            aos_err_set(err, AOS_EINVAL, "unable to open '%s': no path", url);
            return NULL;
        }
        return &aos__store_sqlite;
    }
    const char *colon = strstr(url, "://");
    if (colon) {
        int n = (int)(colon - url);
        aos_err_set(err, AOS_EINVAL, "unable to open store: unsupported backend '%.*s'",
                    n > 32 ? 32 : n, url);
        return NULL;
    }
    *target = url;
    return &aos__store_sqlite;
}

static void store_free(aos_store_t *st)
{
    if (st->conn)
        st->be->close(st->conn);
    uv_mutex_destroy(&st->db_lock);
    uv_mutex_destroy(&st->q_lock);
    uv_cond_destroy(&st->q_cond);
    free(st);
}

int aos__store_open_with(aos_store_t **out, uv_loop_t *loop, const char *url,
                         const aos_embed_t *migrations, aos_err_t *err)
{
    const char *target = NULL;
    int rc;
    *out = NULL;
    const aos__store_backend_t *be = pick_backend(url, &target, err);
    if (!be)
        return AOS_EINVAL;
    aos_store_t *st = calloc(1, sizeof(*st));
    if (!st)
        return aos_err_set(err, AOS_ENOMEM, "unable to open '%s': out of memory", url);
    st->folds_maybe = 1; /* until the bus's first flush looks */
    if (uv_mutex_init_recursive(&st->db_lock) != 0) {
        free(st);
        return aos_err_set(err, AOS_EINTERNAL, "unable to open '%s': no mutex", url);
    }
    if (uv_mutex_init(&st->q_lock) != 0) {
        uv_mutex_destroy(&st->db_lock);
        free(st);
        return aos_err_set(err, AOS_EINTERNAL, "unable to open '%s': no mutex", url);
    }
    if (uv_cond_init(&st->q_cond) != 0) {
        uv_mutex_destroy(&st->db_lock);
        uv_mutex_destroy(&st->q_lock);
        free(st);
        return aos_err_set(err, AOS_EINTERNAL, "unable to open '%s': no condition", url);
    }
    st->be = be;
    st->loop = loop;
    st->todo_tail = &st->todo;
    st->done_tail = &st->done;

    rc = be->open(&st->conn, target, err);
    if (rc == 0)
        rc = migrate(st, migrations, err);
    int64_t sealed = 0;
    if (rc == 0 && st->audit_chain)
        rc = aos__store_audit_seal(st, &sealed, err);
    if (rc < 0)
        goto fail;
    if (sealed)
        aos_log_info("store", "audit log: %lld rows from before the hash chain sealed",
                     (long long)sealed);

    if (loop) {
        st->async = malloc(sizeof(*st->async));
        if (!st->async) {
            rc = aos_err_set(err, AOS_ENOMEM, "unable to open '%s': out of memory", url);
            goto fail;
        }
        if (uv_async_init(loop, st->async, on_async) != 0) {
            free(st->async);
            st->async = NULL;
            rc = aos_err_set(err, AOS_EINTERNAL, "unable to open '%s': no async handle", url);
            goto fail;
        }
        st->async->data = st;
        if (uv_thread_create(&st->worker, worker_main, st) != 0) {
            st->async->data = NULL;
            uv_close((uv_handle_t *)st->async, on_async_closed);
            rc = aos_err_set(err, AOS_EINTERNAL, "unable to open '%s': no worker thread", url);
            goto fail;
        }
        st->worker_started = 1;
    }
    *out = st;
    return 0;
fail:
    store_free(st);
    return rc;
}

int aos_store_open(aos_store_t **out, uv_loop_t *loop, const char *url, aos_err_t *err)
{
    return aos__store_open_with(out, loop, url, aos_migrations, err);
}

void aos_store_shutdown(aos_store_t *st)
{
    if (!st)
        return;
    uv_mutex_lock(&st->q_lock);
    if (st->closing) {
        /* Shut down already, or called again from a done callback that this
         * shutdown delivers. */
        uv_mutex_unlock(&st->q_lock);
        return;
    }
    st->closing = 1;
    uv_cond_signal(&st->q_cond);
    uv_mutex_unlock(&st->q_lock);

    if (st->worker_started)
        uv_thread_join(&st->worker);
    st->worker_started = 0;
    if (st->async) {
        /* Detach first: if we are inside on_async, it stops after this call. */
        st->async->data = NULL;
        uv_close((uv_handle_t *)st->async, on_async_closed);
        st->async = NULL;
    }
    st->delivering = 1;
    aos__store_job_t *job;
    while ((job = pop_done(st)))
        deliver(job);
    st->delivering = 0;
}

void aos_store_close(aos_store_t *st)
{
    if (!st || st->delivering)
        return;
    aos_store_shutdown(st);
    store_free(st);
}

const char *aos_store_backend_name(const aos_store_t *st)
{
    return st->be->name;
}

int aos_store_schema_version(aos_store_t *st)
{
    return st->schema_version;
}

/* Transactions ----------------------------------------------------------- */

static int tx_begin(aos_store_t *st, int depth, aos_err_t *err)
{
    if (depth == 0)
        return st->be->begin(st->conn, err);
    char sql[48];
    snprintf(sql, sizeof(sql), "SAVEPOINT aos_tx_%d", depth);
    return st->be->exec(st->conn, sql, NULL, 0, NULL, err);
}

static int tx_commit(aos_store_t *st, int depth, aos_err_t *err)
{
    if (depth == 0)
        return st->be->commit(st->conn, err);
    char sql[48];
    snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT aos_tx_%d", depth);
    return st->be->exec(st->conn, sql, NULL, 0, NULL, err);
}

static void tx_rollback(aos_store_t *st, int depth)
{
    aos_err_t ignored = {0};
    if (depth == 0) {
        st->be->rollback(st->conn, &ignored);
        return;
    }
    char sql[48];
    snprintf(sql, sizeof(sql), "ROLLBACK TO SAVEPOINT aos_tx_%d", depth);
    st->be->exec(st->conn, sql, NULL, 0, NULL, &ignored);
    snprintf(sql, sizeof(sql), "RELEASE SAVEPOINT aos_tx_%d", depth);
    st->be->exec(st->conn, sql, NULL, 0, NULL, &ignored);
}

int aos__store_in_tx(aos_store_t *st, aos_store_tx_fn fn, void *arg, aos_err_t *err)
{
    /* db_lock is recursive: held by this thread inside its aos_store_tx,
     * and tx_depth is read under it */
    uv_mutex_lock(&st->db_lock);
    int rc = st->tx_depth > 0 ? fn(st, arg, err) : aos_store_tx(st, fn, arg, err);
    uv_mutex_unlock(&st->db_lock);
    if (rc > 0)
        rc = AOS_EINTERNAL;
    return rc;
}

int aos_store_tx(aos_store_t *st, aos_store_tx_fn fn, void *arg, aos_err_t *err)
{
    if (!st || !fn)
        return aos_err_set(err, AOS_EINVAL, "unable to run transaction: no function");
    uv_mutex_lock(&st->db_lock);
    int depth = st->tx_depth;
    int rc = tx_begin(st, depth, err);
    if (rc < 0) {
        rc = aos__store_fail(err, rc, "unable to begin transaction");
        goto out;
    }
    st->tx_depth++;
    rc = fn(st, arg, err);
    st->tx_depth--;
    if (rc > 0)
        rc = AOS_EINTERNAL;
    if (rc == 0) {
        rc = tx_commit(st, depth, err);
        if (rc < 0) {
            rc = aos__store_fail(err, rc, "unable to commit transaction");
            tx_rollback(st, depth);
        } else if (depth == 0 && !st->worker_started && st->be->upkeep) {
            st->be->upkeep(st->conn, 1); /* no worker to do it between jobs */
        }
    } else {
        if (err && err->code == 0)
            aos_err_set(err, rc, NULL);
        tx_rollback(st, depth);
    }
out:
    uv_mutex_unlock(&st->db_lock);
    return rc;
}
