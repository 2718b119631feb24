/* store.h - durable state of aosd: the database behind the registry, API
 * tokens, settings, counters and the audit log (SPEC §9).
 *
 * One aos_store_t owns one database connection. SQLite is the built-in
 * backend; the code above the backend is portable SQL, so a PostgreSQL
 * backend can be added without changing callers. Opening a store applies the
 * schema migrations it does not have yet.
 *
 * Threads. The store has one worker thread that owns the connection while the
 * loop runs:
 *   - aos_store_open, aos_store_close: on the loop thread (or, for a store
 *     opened with loop == NULL, on any one thread).
 *   - aos_store_submit: on the loop thread, or any thread that does not race
 *     with aos_store_close. Its job runs on the worker, its done callback on
 *     the loop thread.
 *   - Domain functions (registry, token, setting, audit, tx): synchronous and
 *     blocking. Call them from a job, or at start-up before the loop runs, or
 *     from a store opened with loop == NULL. They serialize on the store's
 *     mutex, so they are safe from any thread, but calling one on the loop
 *     thread while the loop runs stalls the loop behind the worker.
 *
 * Errors: 0 or a negative AOS_E* code with err filled: AOS_ESTORE (message
 * names the operation, e.g. "unable to open '/x/aos.db': ..."), AOS_ENOTFOUND,
 * AOS_EINVAL for bad input, AOS_ECONFLICT for a duplicate key. Messages never
 * contain stored values such as auth tokens. */
#ifndef AOS_STORE_H
#define AOS_STORE_H

#include "err/err.h"

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

typedef struct aos_store_s aos_store_t;

/* Most rows a list function returns in one call. */
#define AOS_STORE_LIST_MAX 1000

/* url: "sqlite:/path/to/aos.db", "sqlite:///path/to/aos.db" or a plain path
 * (SQLite). A new database file is created with mode 0600. loop (borrowed,
 * may be NULL for a store used only synchronously, e.g. by a CLI) receives
 * the done callbacks of aos_store_submit. */
int aos_store_open(aos_store_t **out, uv_loop_t *loop, const char *url, aos_err_t *err);

/* Stops accepting jobs, waits for the queued ones to run, calls their done
 * callbacks (on this thread: any aos_store_submit from them fails), and
 * lets the loop go (the store's uv handle is closed) - but keeps st: from
 * now on every aos_store_submit fails with AOS_EUNAVAIL, so modules that
 * still hold st (a timer of theirs firing while the loop winds down) are
 * refused instead of reaching freed memory. A second call does nothing.
 * Do not call it from a job. */
void aos_store_shutdown(aos_store_t *st);
/* aos_store_shutdown if not done yet, then closes the connection and frees
 * st. From a done callback that a shutdown delivers it does nothing (the
 * shutdown's caller closes). The loop must run once more afterwards (e.g.
 * uv_run(loop, UV_RUN_NOWAIT)) to release the store's uv handle before
 * uv_loop_close. Do not call it from a job. */
void aos_store_close(aos_store_t *st);

const char *aos_store_backend_name(const aos_store_t *st); /* "sqlite" */

/* The highest migration version applied, after open. */
int aos_store_schema_version(aos_store_t *st);

/* Async work. fn runs on the store's worker thread (one dedicated thread fed
 * by a FIFO queue, not the loop thread) with the store's mutex held, so it may
 * call the domain functions; then done(status = fn's return, err, arg) runs
 * on the loop thread, in submission order. err is borrowed for the call and
 * never NULL (its code is 0 on success). done may be NULL. Returns 0, or
 * AOS_EINVAL (no loop, no fn), AOS_ENOMEM, AOS_EUNAVAIL (store closing); a
 * submit that fails synchronously never calls done. */
typedef int (*aos_store_job_fn)(aos_store_t *st, void *arg, aos_err_t *err);
typedef void (*aos_store_done_fn)(int status, const aos_err_t *err, void *arg);
int aos_store_submit(aos_store_t *st, aos_store_job_fn fn, aos_store_done_fn done, void *arg);

/* The worker's counts since open (any thread; a copy taken under the
 * queue's lock): for the metrics. */
typedef struct {
    uint64_t done;       /* jobs run */
    uint64_t failed;     /* ... whose fn returned an error */
    uint64_t queued;     /* jobs waiting for the worker now */
    uint64_t running;    /* 1 while the worker runs a job */
    double busy_seconds; /* time jobs ran, all together */
    double wait_seconds; /* time jobs waited in the queue, all together */
} aos_store_stats_t;
void aos_store_stats(aos_store_t *st, aos_store_stats_t *out);

/* How long the worker's jobs took, by kind (for the metrics: which jobs
 * hold the store, and so the requests behind them, for how long). A job
 * names its kind from inside with aos_store_job_note; one that does not
 * counts as "other"; the backend's own work between jobs (SQLite: a WAL
 * checkpoint) counts as "checkpoint". At most AOS_STORE_JOB_KINDS kinds,
 * the rest as "other". */
#define AOS_STORE_JOB_KINDS  8
#define AOS_STORE_JOB_BOUNDS 10
/* The buckets' upper bounds in seconds (+Inf implied): 0.5 ms ... 50 ms. */
extern const double aos_store_job_bounds[AOS_STORE_JOB_BOUNDS];
typedef struct {
    const char *kind;                           /* static */
    uint64_t count;                             /* jobs */
    uint64_t buckets[AOS_STORE_JOB_BOUNDS + 1]; /* by duration, not cumulative */
    double seconds;                             /* all together */
    double max_seconds;                         /* the longest */
    uint64_t entries;                           /* items the jobs handled, all together */
} aos_store_job_time_t;
/* Copies the figures of up to max kinds into out; returns how many. */
size_t aos_store_job_times(aos_store_t *st, aos_store_job_time_t *out, size_t max);
/* From inside a job (the worker's thread; elsewhere it does nothing that
 * counts): what the job is - kind, a static string such as "logs_insert" -
 * and how many items it handled. The last call wins. */
void aos_store_job_note(const char *kind, int64_t entries);

/* Runs fn inside one transaction: commit if it returns 0, roll back
 * otherwise, and return its code. fn runs on the calling thread with the
 * store's mutex held; the domain functions it calls join the transaction. A
 * nested aos_store_tx is a savepoint: its failure undoes only its own work. */
typedef int (*aos_store_tx_fn)(aos_store_t *st, void *arg, aos_err_t *err);
int aos_store_tx(aos_store_t *st, aos_store_tx_fn fn, void *arg, aos_err_t *err);

/* MCP registry. An entry is the object
 *   {"name", "transport" ("stdio" | "streamable-http" | "sse"), "base_url",
 *    "description" (string or null), "capabilities" (object or array),
 *    "config" (object: command, args, env, cwd, url, headers),
 *    "auth_token" (string or null: text already sealed by src/secret),
 *    "timeout_ms" (integer >= 0 or null), "enabled" (bool),
 *    "created_at", "updated_at" (ISO-8601 UTC)}.
 * Returned entries carry the sealed auth_token: strip it before an entry
 * leaves aosd. *out is a new reference the caller decrefs. */
int aos_store_registry_list(aos_store_t *st, json_t **out /* array, by name */, aos_err_t *err);
int aos_store_registry_get(aos_store_t *st, const char *name, json_t **out, aos_err_t *err);
/* Inserts or replaces the entry named entry.name (borrowed): every column is
 * replaced (a missing auth_token clears it) except created_at. Missing
 * capabilities/config default to {}, missing enabled to true; created_at and
 * updated_at in entry are ignored. */
int aos_store_registry_put(aos_store_t *st, const json_t *entry, aos_err_t *err);
int aos_store_registry_delete(aos_store_t *st, const char *name, aos_err_t *err);

/* API tokens: only the hash of a token is stored. A duplicate id or hash
 * fails with AOS_ECONFLICT. name may be NULL. */
int aos_store_token_put(aos_store_t *st, const char *id, const char *name, const char *role,
                        const char *token_hash, aos_err_t *err);
/* The same with the token's prefix, creator and expiry (ISO-8601 UTC or
 * NULL: never); prefix and created_by may be NULL. */
int aos_store_token_create(aos_store_t *st, const char *id, const char *name, const char *role,
                           const char *token_hash, const char *prefix, const char *created_by,
                           const char *expires_at, aos_err_t *err);
/* [{id, name, role, token_hash, created_at, last_used_at, prefix,
 * created_by, expires_at, revoked_at}], oldest first. */
int aos_store_token_list(aos_store_t *st, json_t **out, aos_err_t *err);
/* Marks token id revoked now (AOS_ENOTFOUND if there is none, or it was
 * revoked already). */
int aos_store_token_revoke(aos_store_t *st, const char *id, aos_err_t *err);
/* Sets a token's last_used_at (ISO-8601 UTC). */
int aos_store_token_touch(aos_store_t *st, const char *id, const char *last_used_at,
                          aos_err_t *err);

/* Grants: principal ("token:<id>") has role on resource. A duplicate id is
 * AOS_ECONFLICT. */
int aos_store_grant_put(aos_store_t *st, const char *id, const char *principal, const char *role,
                        const char *resource, const char *created_by, aos_err_t *err);
/* AOS_ENOTFOUND if there is no grant id. */
int aos_store_grant_delete(aos_store_t *st, const char *id, aos_err_t *err);
/* [{id, principal, role, resource, created_by, created_at}], oldest first. */
int aos_store_grant_list(aos_store_t *st, json_t **out, aos_err_t *err);

/* Custom roles (migration 0025): name (unique: AOS_ECONFLICT) -> grants, the
 * JSON text of [{role, resource}] (src/auth checks what it holds).
 * update: NULL description or grants keep the value; AOS_ENOTFOUND for no
 * such role. delete: AOS_ECONFLICT while a grant names the role. */
int aos_store_role_create(aos_store_t *st, const char *name, const char *description,
                          const char *grants, const char *created_by, aos_err_t *err);
int aos_store_role_update(aos_store_t *st, const char *name, const char *description,
                          const char *grants, aos_err_t *err);
int aos_store_role_delete(aos_store_t *st, const char *name, aos_err_t *err);
/* How many grants name role name. */
int aos_store_role_grants(aos_store_t *st, const char *name, int64_t *n, aos_err_t *err);
/* {name, description, grants (parsed), created_by, created_at, updated_at};
 * AOS_ENOTFOUND. */
int aos_store_role_get(aos_store_t *st, const char *name, json_t **out, aos_err_t *err);
/* Every role as aos_store_role_get gives it, by name. */
int aos_store_role_list(aos_store_t *st, json_t **out, aos_err_t *err);

/* Users (migration 0013; src/store/users.c): name lowercase and unique
 * (AOS_ECONFLICT), password_hash a crypto_pwhash_str (or NULL: none set).
 * update: NULL name/role/password_hash and disabled -1 keep the value;
 * AOS_ENOTFOUND for no such user. */
int aos_store_user_create(aos_store_t *st, const char *id, const char *name, const char *role,
                          const char *password_hash, const char *created_by, aos_err_t *err);
int aos_store_user_update(aos_store_t *st, const char *id, const char *name, const char *role,
                          int disabled, const char *password_hash, aos_err_t *err);
/* Sets the sealed TOTP secret (NULL: none), whether it is confirmed, and
 * the last step used. */
int aos_store_user_totp(aos_store_t *st, const char *id, const char *sealed, int enabled,
                        int64_t last_step, aos_err_t *err);
/* Records step as used: AOS_ECONFLICT if it (or a later one) was already. */
int aos_store_user_totp_step(aos_store_t *st, const char *id, int64_t step, aos_err_t *err);
/* Deletes the user with its grants ("user:<id>") and sessions. */
int aos_store_user_delete(aos_store_t *st, const char *id, aos_err_t *err);
/* [{id, name, role, password_hash, disabled, totp_secret, totp_enabled,
 * totp_last_step, created_by, created_at, updated_at,
 * password_changed_at}], oldest first. Holds secrets' hashes and sealed
 * text: never answer with a row as it is. */
int aos_store_user_list(aos_store_t *st, json_t **out, aos_err_t *err);
/* Browser sessions: session_hash is the BLAKE2b of the cookie's secret,
 * expires_at the absolute expiry (ISO-8601 UTC). end: one session (id) or
 * all open ones of user_id (id NULL). list: open ones not expired at now.
 * purge: deletes the rows ended or expired before 'before'. */
int aos_store_session_create(aos_store_t *st, const char *id, const char *user_id,
                             const char *session_hash, const char *expires_at, const char *client,
                             aos_err_t *err);
int aos_store_session_end(aos_store_t *st, const char *id, const char *user_id, aos_err_t *err);
int aos_store_session_touch(aos_store_t *st, const char *id, const char *at, aos_err_t *err);
int aos_store_session_list(aos_store_t *st, const char *now, json_t **out, aos_err_t *err);
int aos_store_session_purge(aos_store_t *st, const char *before, aos_err_t *err);

/* Settings: any JSON value under a key. value is borrowed. */
int aos_store_setting_get(aos_store_t *st, const char *key, json_t **out, aos_err_t *err);
int aos_store_setting_put(aos_store_t *st, const char *key, const json_t *value, aos_err_t *err);

/* Counters (migration 0007): a named count of one period, which the caller
 * defines (a number such as 20261206 for a UTC day). put replaces the
 * counter's row - period and value - whatever period it held; get gives
 * what is stored, AOS_ENOTFOUND when the counter has no row. value >= 0. */
int aos_store_counter_put(aos_store_t *st, const char *name, int64_t period, int64_t value,
                          aos_err_t *err);
int aos_store_counter_get(aos_store_t *st, const char *name, int64_t *period, int64_t *value,
                          aos_err_t *err);

/* Metric history (migration 0026; src/store/mhist.c): src/monitor's rings
 * as chunks of slots. series is the caller's identity text of a series,
 * ring an index below nrings, chunk a number the caller defines, slots
 * its bytes (borrowed). put upserts rows (series, ring, chunk) and then
 * deletes, for each ring r < nrings, the chunks below keep_from[r], in one
 * transaction; load calls fn for each row of ring r with chunk >=
 * keep_from[r], by ring, series and chunk (the row is borrowed for the
 * call). */
typedef struct {
    const char *series;
    int ring;
    int64_t chunk;
    const void *slots;
    size_t len;
} aos_store_mhist_row_t;
typedef void (*aos_store_mhist_fn)(const aos_store_mhist_row_t *row, void *arg);
int aos_store_mhist_put(aos_store_t *st, const aos_store_mhist_row_t *rows, size_t n,
                        const int64_t *keep_from, int nrings, aos_err_t *err);
int aos_store_mhist_load(aos_store_t *st, const int64_t *keep_from, int nrings,
                         aos_store_mhist_fn fn, void *arg, aos_err_t *err);

/* Audit log (src/store/audit.c), append-only and hash-chained: each row
 * holds prev_hash (the previous row's hash, 64 zeros for the first) and
 * hash, BLAKE2b-256 over a length-prefixed encoding of prev_hash, id,
 * actor, action, resource, diff and created_at, both as lower-case hex.
 * Nothing in aosd updates or deletes a row.
 *
 * aos_store_audit_append joins the calling thread's transaction (call it in
 * the same transaction as the change it records), or makes one of its own.
 * It takes the previous hash under the chain head's write lock, so
 * concurrent appenders (several aosd on PostgreSQL) queue and never fork
 * the chain. resource and diff may be NULL; diff is borrowed and must not
 * hold secret values (the caller redacts it). */
int aos_store_audit_append(aos_store_t *st, const char *actor, const char *action,
                           const char *resource, const json_t *diff, aos_err_t *err);

/* Filters of aos_store_audit_query; NULL (or 0) fields do not filter.
 * Strings are borrowed. from/to are normalized timestamps
 * ("2025-01-31T12:00:00.000Z"): created_at >= from and < to. */
typedef struct {
    int64_t before_id;           /* ids below it; <= 0: from the newest */
    int limit;                   /* 1..AOS_STORE_LIST_MAX */
    const char *actor;           /* exact */
    const char *action;          /* exact */
    const char *action_prefix;   /* action starts with it */
    const char *resource_prefix; /* resource starts with it */
    const char *from, *to;
} aos_store_audit_filter_t;
/* Newest first: the rows matching f as [{id, actor, action, resource, diff,
 * created_at, prev_hash, hash}]. Pass the last id of a page as before_id
 * for the next. */
int aos_store_audit_query(aos_store_t *st, const aos_store_audit_filter_t *f, json_t **out,
                          aos_err_t *err);
/* aos_store_audit_query without filters. */
int aos_store_audit_list(aos_store_t *st, int64_t before_id, int limit, json_t **out,
                         aos_err_t *err);

/* Runtime secrets (migration 0014, src/store/secrets.c). Values are
 * src/secret's sealed text; a row is {name, scope, purpose, sealed,
 * created_by, created_at, last_rotated}; lists are by name. put inserts or
 * replaces a secret (last_rotated = now; created_* kept); reseal replaces
 * only the sealed text (a master-key rotation). delete: AOS_ENOTFOUND. */
int aos_store_secret_list(aos_store_t *st, json_t **out, aos_err_t *err);
int aos_store_secret_put(aos_store_t *st, const char *name, const char *scope, const char *purpose,
                         const char *sealed, const char *actor, aos_err_t *err);
int aos_store_secret_delete(aos_store_t *st, const char *name, aos_err_t *err);
int aos_store_secret_reseal(aos_store_t *st, const char *name, const char *sealed, aos_err_t *err);
/* Changes of runtime secrets waiting for a second person: {id, op ("put" |
 * "delete"), name, scope, purpose, sealed (NULL for a delete),
 * requested_by, created_at}, oldest first. */
int aos_store_secret_change_list(aos_store_t *st, json_t **out, aos_err_t *err);
int aos_store_secret_change_put(aos_store_t *st, const char *id, const char *op, const char *name,
                                const char *scope, const char *purpose, const char *sealed,
                                const char *requested_by, aos_err_t *err);
int aos_store_secret_change_delete(aos_store_t *st, const char *id, aos_err_t *err);
int aos_store_secret_change_reseal(aos_store_t *st, const char *id, const char *sealed,
                                   aos_err_t *err);
/* Project variables (project_vars, 0001): a name of a project (scope
 * "project" or "task") that refers to a runtime secret (secret_ref).
 * [{id, project_id, name, scope, usage, secret_ref, last_rotated,
 * audit_ref}] by name; put inserts or replaces by (project_id, scope,
 * name); delete removes every scope of name (AOS_ENOTFOUND if none). */
int aos_store_project_var_list(aos_store_t *st, const char *project_id, json_t **out,
                               aos_err_t *err);
int aos_store_project_var_put(aos_store_t *st, const char *id, const char *project_id,
                              const char *name, const char *scope, const char *usage,
                              const char *secret_ref, aos_err_t *err);
int aos_store_project_var_delete(aos_store_t *st, const char *project_id, const char *name,
                                 aos_err_t *err);

#define AOS_STORE_AUDIT_HASH_LEN 32
/* One row's fields for hashing; a NULL pointer is SQL NULL (not ""). */
typedef struct {
    int64_t id;
    const char *actor;
    size_t actor_len;
    const char *action;
    size_t action_len;
    const char *resource;
    size_t resource_len;
    const char *diff; /* the stored compact JSON text */
    size_t diff_len;
    const char *created_at;
    size_t created_at_len;
} aos_store_audit_row_t;
/* out = the hash of row r chained to prev (pure; see audit.c). */
void aos_store_audit_hash(const unsigned char prev[AOS_STORE_AUDIT_HASH_LEN],
                          const aos_store_audit_row_t *r,
                          unsigned char out[AOS_STORE_AUDIT_HASH_LEN]);

/* Verification of the chain in steps, each a bounded piece of work for a
 * job on the worker. Rows from_id..to_id (0: from the first / to the last);
 * a range that starts after the first row trusts the stored hash of the
 * row before it. The end of the log is checked against the chain head,
 * so rows cut off at the end are found too. */
typedef struct {
    /* set by aos_store_audit_verify_init */
    int64_t from_id, to_id;
    /* results, valid once done is 1 */
    int done;
    int64_t checked;   /* rows found intact */
    int64_t broken_id; /* 0: intact; else the first broken row */
    char reason[256];  /* what differs there */
    int64_t head_id;   /* the chain head: last id and hash */
    char head_hash[65];
    /* private */
    int started, have_prev, chunk_rows;
    int64_t next_id, last_id;
    unsigned char prev[AOS_STORE_AUDIT_HASH_LEN];
} aos_store_audit_verify_t;
void aos_store_audit_verify_init(aos_store_audit_verify_t *v, int64_t from_id, int64_t to_id);
/* Retention: deletes the oldest rows created before before (the store's
 * time text), at most max_rows of them in id order and never the chain's
 * head row, and keeps the id and hash of the last one deleted in
 * audit_head as the anchor verification starts from (migration 0024).
 * Stops at the first row not older than before. *deleted: how many;
 * *anchor_id (may be NULL): the new anchor, 0 when none was deleted.
 * 0, AOS_EINVAL, AOS_EUNAVAIL (a store without 0015 and 0024). */
int aos_store_audit_prune(aos_store_t *st, const char *before, int max_rows, int64_t *deleted,
                          int64_t *anchor_id, aos_err_t *err);
/* Checks up to max_rows more rows; sets v->done at the end or at the first
 * broken row (a broken chain is a result, not an error). 0, or AOS_ESTORE
 * (the rows cannot be read), AOS_EUNAVAIL (a store without migration 0015). */
int aos_store_audit_verify_step(aos_store_t *st, aos_store_audit_verify_t *v, int max_rows,
                                aos_err_t *err);

/* ---- logs ----------------------------------------------------------------
 * The log service's table (migration 0003, SPEC §6). src/logs validates,
 * normalizes and redacts entries before they get here; these functions
 * trust their input's shape. Levels are numbers 0..5 (trace, debug, info,
 * warn, error, fatal), so "at least warn" is a range. Timestamps are the
 * normalized text "2025-01-31T12:00:00.000Z". */

#define AOS_STORE_LOG_LEVELS 6
/* "trace" .. "fatal"; NULL outside 0..5. */
const char *aos_store_log_level_name(int level);

/* One entry to insert. Strings are borrowed; NULL stores SQL NULL. */
typedef struct {
    const char *ts;      /* normalized */
    int level;           /* 0..5 */
    const char *message; /* UTF-8 without NUL, message_len bytes */
    size_t message_len;
    const char *topic;
    const char *attributes; /* compact JSON object text, or NULL */
    const char *trace_id;
    const char *span_id;
    const char *source;
    int64_t id; /* out: the id the entry got */
} aos_store_log_t;

/* The indexes of the logs (full text, trace and topic groups) trail the
 * table: an insert writes the entries and the time index only, and
 * aos_store_logs_index moves the oldest unindexed entries into the other
 * indexes, in a transaction of its own, when the caller chooses (the log
 * service: when no insert waits). Queries find every entry all the same:
 * they check the unindexed ones row by row. So that they never check more
 * than this many, an insert that would leave AOS_STORE_LOGS_TAIL_MAX of
 * them indexes them all itself. */
#define AOS_STORE_LOGS_TAIL_MAX   16000
#define AOS_STORE_LOGS_INDEX_STEP 250 /* see aos_store_logs_index */

/* Inserts n entries in one transaction (a savepoint inside aos_store_tx):
 * all or none. Fills rows[i].id and created_at (the same for the batch),
 * and *unindexed (may be NULL) with how many entries the indexes now trail
 * by (ids above the last one they hold). */
int aos_store_logs_insert(aos_store_t *st, aos_store_log_t *rows, size_t n, char created_at[32],
                          int64_t *unindexed, aos_err_t *err);
/* How aos_store_logs_index goes (mode). */
enum {
    AOS_STORE_LOGS_FILL_ALL = 0,    /* max entries (all if max <= 0) in one go */
    AOS_STORE_LOGS_FILL_IDLE = 1,   /* yields to any job that waits, ~1 ms of work */
    AOS_STORE_LOGS_FILL_BEHIND = 2, /* ~2 ms of work, whatever waits */
};
/* Moves the oldest max unindexed entries (all if max <= 0) into the
 * indexes, in one transaction: a few microseconds per entry. In modes
 * IDLE and BEHIND it goes in steps of AOS_STORE_LOGS_INDEX_STEP entries,
 * each one whole (full text written out, groups, indexed_upto), and stops
 * after a step once its budget is used up - IDLE also as soon as other
 * jobs wait for the store's worker, so that it holds them up for about a
 * step and a small commit; BEHIND (for inserts that never leave the
 * worker idle) after at least one step. Then it merges the full-text
 * index's segments a few pages a step (FTS5's automerge is off) for ~1 ms
 * at most, IDLE stopping likewise. *unindexed (may be NULL) gets how many
 * entries remain. */
int aos_store_logs_index(aos_store_t *st, int64_t max, int mode, int64_t *unindexed,
                         aos_err_t *err);

/* What to select. Zero/NULL members do not filter. */
typedef struct {
    int min_level;        /* level >= min_level */
    const char *trace_id; /* equal */
    const char *topic;    /* equal */
    const char *source;   /* equal */
    const char *after;    /* ts > after (normalized) */
    const char *before;   /* ts < before (normalized) */
    const char *q;        /* full text: see aos_store_logs_fts */
    int64_t after_id;     /* id > after_id */
    int64_t before_id;    /* id < before_id */
    int ascending;        /* 1: oldest first; 0: newest first */
    int limit;            /* rows or groups: 1..AOS_STORE_LIST_MAX + 1 (a page and one more,
                             to learn whether another page follows) */
} aos_store_logs_filter_t;

/* The entries matching f, in id order, as [{id, ts, level (name), message,
 * topic, attributes (object or null), trace_id, span_id, source,
 * created_at}]. */
int aos_store_logs_query(aos_store_t *st, const aos_store_logs_filter_t *f, json_t **out,
                         aos_err_t *err);
/* Counts of the entries matching f (ids, order and limit aside from the
 * number of groups) per value of group_by ("topic", "level" or "source"),
 * largest first: [{key, count}] (key null for entries without one). */
int aos_store_logs_count(aos_store_t *st, const aos_store_logs_filter_t *f, const char *group_by,
                         json_t **out, aos_err_t *err);
/* The highest id given so far (0 for none): where a new subscriber starts. */
int aos_store_logs_last_id(aos_store_t *st, int64_t *out, aos_err_t *err);

/* Retention: deletes at most max_delete of the oldest entries that were
 * created before created_before (NULL: no age limit) or are older than the
 * newest keep_rows (0: no count limit), in one transaction. *deleted gets
 * how many; while it equals max_delete, there may be more. */
int aos_store_logs_retain(aos_store_t *st, const char *created_before, int64_t keep_rows,
                          int64_t max_delete, int64_t *deleted, aos_err_t *err);

/* Token characters of the full-text index (FTS5's 'ascii' tokenizer):
 * ASCII letters and digits, and every non-ASCII byte; ASCII case folds. */
int aos_store_logs_token_char(unsigned char c);
/* The next word of the full-text query at *q, as aos_store_logs_fts splits
 * it: white space separates words, trailing stars mark a prefix (prefix 1)
 * and are left out of the word, words without a token character are
 * skipped. Advances *q; 0 when no word is left. */
int aos_store_logs_next_word(const char **q, const char **word, size_t *len, int *prefix);

/* The tokens of a word (n bytes): folded, separated by single spaces, in
 * *out (malloc'd). Returns how many, or AOS_ENOMEM. */
int aos_store_logs_word_tokens(const char *word, size_t n, char **out);
/* 1 if tokens (as aos_store_logs_word_tokens gives them) appear one after
 * the other in msg, the last one as a prefix if prefix is set: what an
 * FTS5 phrase matches. SQLite calls it as aos_logs_phrase(message, t). */
int aos_store_logs_phrase_match(const char *msg, size_t len, const char *tokens, int prefix);

/* The full-text query of q for the backend's index (SQLite FTS5): each
 * token of each white-space separated word of q is quoted so that no FTS5
 * syntax in q has any effect; a word ending in '*' matches its last token
 * as a prefix; all tokens must match. (The index keeps no positions: the
 * query statement checks the order of a word's tokens with
 * aos_logs_phrase.) AOS_EINVAL when q has no word with a token character,
 * more than 16 words, or more than 512 bytes. *out is malloc'd. */
int aos_store_logs_fts(const char *q, char **out, aos_err_t *err);

/* For tests: the statement aos_store_logs_query (group_by NULL) or
 * aos_store_logs_count would run for f, and its parameters as a JSON array
 * of strings and integers, in order. A page by text without a trace reads
 * the entries not yet in the full-text index with a second statement, a
 * page by topic may run the statement once per chunk of groups (with
 * "logs.id IN (...)" added); this is the full-text one, without the ids.
 * *sql is malloc'd. */
int aos_store_logs_sql(const aos_store_logs_filter_t *f, const char *group_by, char **sql,
                       json_t **params, aos_err_t *err);

/* --- events (bus) --------------------------------------------------------
 * The outbox of the event bus (src/bus/bus.h has the policy; these are the
 * mechanics). An event row is the envelope
 *   {"id", "trace_id", "topic", "type", "severity", "payload" (object),
 *    "created_at", "card_id", "card_version", "project_id"}
 * with null for what is absent. Ids grow monotonically in commit order (one
 * writer at a time), so a reader may use the last id it saw as a cursor.
 * An event with a card_id is a value event: each one written is the card's
 * next version. Times (now_ms, fold_ms) are milliseconds since the epoch,
 * passed in so that tests can drive the clock. */

/* An event to append as its columns, borrowed for the call: type (not
 * empty), trace_id, topic, severity, card_id, project_id (NULL: SQL NULL)
 * and payload, the compact JSON text of an object (NULL: "{}"), all
 * checked already (the bus's checks, src/bus event.c). */
typedef struct {
    const char *type, *trace_id, *topic, *severity, *card_id, *project_id;
    const char *payload;
} aos_store_event_in_t;

/* Appends ev (borrowed). With a card_id and fold_ms > 0, if the card's
 * last version was written less than fold_ms before now_ms, ev is folded
 * instead: it replaces the card's pending fold (durable, in event_folds)
 * and is written, as the next version, by aos_store_event_flush once the
 * window ends; *id is then 0. Otherwise any pending fold of the card is
 * dropped (ev is newer) and ev is written. *id, *card_version (0 without a
 * card or when folded) may be NULL (a NULL card_version saves a statement:
 * the version is not read back). Atomic on its own: a transaction of its
 * own; inside an aos_store_tx it is part of the caller's (no savepoint of
 * its own: two statements and a journal per event), and on failure it may
 * have written part of itself, so the caller's transaction must fail too. */
int aos_store_event_put(aos_store_t *st, const aos_store_event_in_t *ev, int64_t now_ms,
                        int64_t fold_ms, int64_t *id, int64_t *card_version, aos_err_t *err);

/* Appends ev[0..n), events without a card (card_id NULL, else AOS_EINVAL),
 * in order (their ids ascending), as aos_store_event_put would one by one
 * (no card, no fold: nothing else to write), a few rows per statement. */
int aos_store_event_insert(aos_store_t *st, const aos_store_event_in_t *ev, size_t n,
                           aos_err_t *err);

/* Writes the folds that are due (due_ms <= now_ms) or, with trace_id, every
 * fold of that trace, as events; their window restarts at now_ms. *n (may be
 * NULL) gets how many were written, *next_due_ms (may be NULL) the earliest
 * due time left, or 0 when no fold is pending (read only when asked for).
 * Atomic as aos_store_event_put: a transaction of its own, or part of
 * the caller's (no savepoint), which must then fail with it. */
int aos_store_event_flush(aos_store_t *st, int64_t now_ms, const char *trace_id, int *n,
                          int64_t *next_due_ms, aos_err_t *err);

typedef struct {
    int newest_first;       /* 0: id > after_id, ascending; 1: id < before_id, descending */
    int64_t after_id;       /* 0: from the first */
    int64_t before_id;      /* <= 0: from the newest */
    const char *trace_id;   /* NULL: any */
    const char *project_id; /* NULL: any */
    int value_only;         /* 1: only events with a card */
    int limit;              /* 1..AOS_STORE_LIST_MAX */
    /* 1: each envelope's payload is a JSON string holding the stored text
     * (compact JSON, as written), not parsed: for a reader that sends the
     * text on (the bus's SSE frames) and parses only what it looks into */
    int raw_payload;
} aos_store_event_query_t;

/* Events matching q as an array of envelopes (see above). */
int aos_store_event_list(aos_store_t *st, const aos_store_event_query_t *q, json_t **out,
                         aos_err_t *err);

/* The text columns of an event row, as aos_store_event_row_t holds them. */
enum {
    AOS_STORE_EV_TRACE_ID,
    AOS_STORE_EV_TOPIC,
    AOS_STORE_EV_TYPE,
    AOS_STORE_EV_SEVERITY,
    AOS_STORE_EV_PAYLOAD, /* the stored text: compact JSON, as written */
    AOS_STORE_EV_CREATED_AT,
    AOS_STORE_EV_CARD_ID,
    AOS_STORE_EV_PROJECT_ID,
    AOS_STORE_EV_NTEXT
};

/* One event row as its columns, borrowed for the call: text[k] and len[k]
 * (NULL for SQL NULL; not NUL-terminated), card_version 0 for NULL. */
typedef struct {
    int64_t id;
    int64_t card_version;
    const char *text[AOS_STORE_EV_NTEXT];
    size_t len[AOS_STORE_EV_NTEXT];
} aos_store_event_row_t;

typedef int (*aos_store_event_fn)(const aos_store_event_row_t *row, void *arg, aos_err_t *err);

/* The events matching q (raw_payload does not apply), in order, to fn: the
 * same rows as aos_store_event_list without building an envelope of each
 * (for a reader that makes its own: the bus's delivered events). A non-zero
 * return of fn stops the read and is returned. */
int aos_store_event_scan(aos_store_t *st, const aos_store_event_query_t *q, aos_store_event_fn fn,
                         void *arg, aos_err_t *err);

/* The highest event id written (0 for none). */
int aos_store_event_last_id(aos_store_t *st, int64_t *id, aos_err_t *err);

/* --- spans (trace) --------------------------------------------------------
 * The spans of aosd's traces (migration 0008; src/trace decides what a span
 * is, these functions store and read rows). A row holds one OpenTelemetry
 * Span, field for field (see 0008_spans.sql). Times are nanoseconds since
 * the epoch. */

/* One span. Strings are borrowed (insert) or owned by the page they came in
 * (read); NULL stores SQL NULL. attributes, events and links are compact
 * JSON text (an object, arrays) or NULL. */
typedef struct {
    int64_t id; /* read: the row's id, in insertion order */
    const char *trace_id, *span_id, *parent_span_id, *trace_state;
    uint32_t flags;
    const char *name;
    int kind; /* 0..5 */
    int64_t start_ns, end_ns;
    int status_code; /* 0..2 */
    const char *status_message;
    const char *attributes, *events, *links;
    uint32_t dropped_attributes, dropped_events, dropped_links;
    int64_t resource_id; /* 0: none */
} aos_store_span_t;

/* Adds the resource (the JSON object text of its attributes) that spans
 * made from now on name; *id gets its id. */
int aos_store_span_resource_add(aos_store_t *st, const char *attributes, int64_t *id,
                                aos_err_t *err);
/* The attributes of resource id as JSON text (malloc'd), or AOS_ENOTFOUND. */
int aos_store_span_resource_get(aos_store_t *st, int64_t id, char **attributes, aos_err_t *err);

/* Inserts n spans in one transaction (a savepoint inside aos_store_tx):
 * all or none. */
int aos_store_spans_insert(aos_store_t *st, const aos_store_span_t *rows, size_t n, aos_err_t *err);

/* Spans read from the store: rows and the memory of their strings. */
typedef struct {
    aos_store_span_t *rows;
    size_t n;
    struct aos_store_chunk_s *chunks; /* owned: the strings */
} aos_store_span_page_t;

/* The spans of trace_id in start order (then id), from the one after
 * (after_start_ns, after_id) - pass INT64_MIN and 0 for the first - at
 * most limit (1..100000). page is filled (release it with
 * aos_store_span_page_release, also after a failure). */
int aos_store_spans_trace(aos_store_t *st, const char *trace_id, int64_t after_start_ns,
                          int64_t after_id, int limit, aos_store_span_page_t *page, aos_err_t *err);
void aos_store_span_page_release(aos_store_span_page_t *page);
/* How many spans trace_id has. */
int aos_store_spans_count(aos_store_t *st, const char *trace_id, int64_t *n, aos_err_t *err);

/* The Monitor's reads (src/monitor). Spans that started in [from_ns,
 * to_ns], newest first (start, then id, descending), after the position
 * (before_start_ns, before_id) - INT64_MAX and INT64_MAX for the first -
 * at most limit (1..100000), through the index of migration 0022; the rows
 * carry no trace state, status message, events or links. */
int aos_store_spans_window(aos_store_t *st, int64_t from_ns, int64_t to_ns, int64_t before_start_ns,
                           int64_t before_id, int limit, aos_store_span_page_t *page,
                           aos_err_t *err);
/* How many spans trace_id has, and how many of them have status ERROR. */
int aos_store_spans_stats(aos_store_t *st, const char *trace_id, int64_t *n, int64_t *errors,
                          aos_err_t *err);
/* The newest max span resources as [[id, attributes object], ...]. */
int aos_store_span_resources(aos_store_t *st, int max, json_t **out, aos_err_t *err);

/* Retention: deletes at most max_delete of the oldest spans that ended
 * before end_before_ns (0: no age limit) or are older than the newest
 * keep_rows (0: no count limit), in one transaction, and the resources no
 * span names any more (except the newest). *deleted gets how many spans;
 * while it equals max_delete, there may be more. */
int aos_store_spans_retain(aos_store_t *st, int64_t end_before_ns, int64_t keep_rows,
                           int64_t max_delete, int64_t *deleted, aos_err_t *err);

/* ---- tasks -------------------------------------------------------------
 * The orchestrator's rows (migration 0009, docs/ORCHESTRATOR.md): src/orch
 * decides what they mean. JSON values are passed as compact text. Writes
 * are single statements for the caller's aos_store_tx. */
typedef struct {
    const char *trace_id;
    const char *spec; /* the TaskSpec, JSON text */
    const char *status;
    int priority;
    const char *scheduled_at; /* may be NULL */
    const char *project_id;   /* may be NULL */
} aos_store_job_t;
/* Inserts the job and its traces row (status, started now); *id its id. */
int aos_store_job_insert(aos_store_t *st, const aos_store_job_t *j, int64_t *id, aos_err_t *err);
/* NULL arguments keep the stored value; AOS_ENOTFOUND when no such job. */
int aos_store_job_update(aos_store_t *st, const char *trace_id, const char *status,
                         const char *started_at, const char *finished_at, const char *error,
                         aos_err_t *err);
int aos_store_trace_update(aos_store_t *st, const char *trace_id, const char *status,
                           double cost_cny, int64_t latency_ms, const char *finished_at,
                           aos_err_t *err);
/* Newest first: [{id, trace_id, spec, status, priority, scheduled_at,
 * started_at, finished_at, error, project_id, created_at, cost_cny,
 * latency_ms}], status NULL = any, ids below before_id (<= 0: from the
 * newest). */
int aos_store_jobs_list(aos_store_t *st, const char *status, int64_t before_id, int limit,
                        json_t **out, aos_err_t *err);

typedef struct {
    const char *trace_id;
    const char *plan; /* NULL keeps the stored one */
    int64_t cursor;
    const char *vars;
    const char *status;
    const char *rerun_of, *from_step; /* written on insert only; may be NULL */
} aos_store_task_state_t;
int aos_store_task_state_put(aos_store_t *st, const aos_store_task_state_t *s, aos_err_t *err);

/* One attempt of a step: inserted, or updated (status, output, error,
 * cost, finished_at; input only when given). */
typedef struct {
    const char *trace_id, *step_id;
    int attempt;
    int64_t seq;
    const char *kind;                   /* plan | tool | approval | milestone */
    const char *status;                 /* running | done | failed | skipped | reused */
    const char *input, *output, *error; /* JSON text, may be NULL */
    const char *idempotency_key;
    double cost_cny;
    const char *started_at, *finished_at;
} aos_store_step_t;
int aos_store_task_step_put(aos_store_t *st, const aos_store_step_t *s, aos_err_t *err);

/* A pending approval (again pending if it existed). decisions: a JSON array. */
int aos_store_approval_put(aos_store_t *st, const char *trace_id, const char *step_id,
                           const char *message, const char *decisions, const char *deadline,
                           aos_err_t *err);
/* Decides a pending approval; AOS_ECONFLICT when it is not pending (decided
 * before, or none). */
int aos_store_approval_decide(aos_store_t *st, const char *trace_id, const char *step_id,
                              const char *status, const char *decision, const char *comment,
                              const char *actor, aos_err_t *err);

/* A job with its task: the job's columns (as aos_store_jobs_list), "state"
 * (the task_state row or null), "steps" (every attempt, in order: step_id,
 * attempt, seq, kind, status, input, output, error, idempotency_key,
 * cost_cny, started_at, finished_at) and "approvals". AOS_ENOTFOUND. */
int aos_store_task_get(aos_store_t *st, const char *trace_id, json_t **out, aos_err_t *err);
/* Every job queued, running or waiting, each as aos_store_task_get gives it. */
int aos_store_tasks_open(aos_store_t *st, json_t **out, aos_err_t *err);
/* Deletes up to limit finished tasks (and their rows, events included)
 * finished before finished_before; *n how many. */
int aos_store_tasks_expire(aos_store_t *st, const char *finished_before, int limit, int *n,
                           aos_err_t *err);

/* Chat: a conversation is created on its first message, touched on each. */
int aos_store_conversation_touch(aos_store_t *st, const char *id, const char *title,
                                 const char *actor, aos_err_t *err);
int aos_store_message_add(aos_store_t *st, const char *conversation_id, const char *role,
                          const char *content, const char *dsl, const char *trace_id, int64_t *id,
                          aos_err_t *err);
/* Most recently updated first: [{id, title, actor, created_at, updated_at,
 * messages}], updated before before (NULL: from the newest). */
int aos_store_conversations_list(aos_store_t *st, const char *before, int limit, json_t **out,
                                 aos_err_t *err);
/* [{id, role, content, dsl, trace_id, created_at, project_id (of the
 * message's task, or null)}], ids above after_id. */
int aos_store_messages_list(aos_store_t *st, const char *conversation_id, int64_t after_id,
                            int limit, json_t **out, aos_err_t *err);
/* The tasks a conversation's messages name: [{trace_id, project_id (or
 * null), messages (how many name it)}]. */
int aos_store_conversation_tasks(aos_store_t *st, const char *conversation_id, json_t **out,
                                 aos_err_t *err);
/* The project of the task traced trace_id: *project a malloc'd copy, or
 * NULL when the task is in none; AOS_ENOTFOUND when there is no task. */
int aos_store_task_project(aos_store_t *st, const char *trace_id, char **project, aos_err_t *err);

/* ---- memory (migration 0018) ------------------------------------------------
 * Memory items (src/memory decides what they mean and checks them); these
 * functions store and read rows. Writes are statements for the caller's
 * aos_store_tx (no transaction of their own). An item row as JSON is
 * {id, project_id, subject, text, tags (array), meta (object or null),
 * source, created_at, updated_at, deleted_at, version}. */
typedef struct {
    int64_t id;             /* update: the item; insert: out */
    const char *project_id; /* required */
    const char *subject;    /* may be NULL */
    const char *text;       /* required */
    const char *tags;       /* JSON array text, sorted and unique */
    const char *meta;       /* JSON object text, or NULL */
    const char *source;     /* insert only */
    const char *terms;      /* the keyword index's terms (space separated) */
    const float *vec;       /* dims floats; NULL: no vector */
    int dims;
    const char *model;   /* the embedding's model name */
    char updated_at[32]; /* out */
} aos_store_mem_t;
int aos_store_mem_insert(aos_store_t *st, aos_store_mem_t *m, aos_err_t *err);
/* Replaces every column but source and created_at; version + 1.
 * AOS_ENOTFOUND when there is no item m->id (deleted ones included). */
int aos_store_mem_update(aos_store_t *st, aos_store_mem_t *m, aos_err_t *err);
/* The item (deleted or not), or AOS_ENOTFOUND. */
int aos_store_mem_get(aos_store_t *st, int64_t id, json_t **out, aos_err_t *err);
/* Soft delete (deleted_at = now) or restore (deleted_at NULL): AOS_ENOTFOUND
 * when there is no item id, AOS_ECONFLICT when it already is in that state. */
int aos_store_mem_set_deleted(aos_store_t *st, int64_t id, int deleted, aos_err_t *err);
/* Keyword search over live items: terms (space separated, as stored) any
 * of which may match, ranked by bm25 (smaller is better), at most limit
 * (1..AOS_STORE_LIST_MAX); only items of one of projects (nprojects of
 * them; projects NULL: any project) having every one of tags. ids and
 * scores get the hits (room for limit), *n how many. */
int aos_store_mem_keyword(aos_store_t *st, const char *terms, const char *const *projects,
                          size_t nprojects, const char *const *tags, size_t ntags, int limit,
                          int64_t *ids, double *scores, int *n, aos_err_t *err);
/* The live items among ids (n of them, at most AOS_STORE_LIST_MAX), as an
 * array in no particular order. */
int aos_store_mem_rows(aos_store_t *st, const int64_t *ids, int n, json_t **out, aos_err_t *err);
/* Items newest first, for browsing: of projects (NULL: every project; at
 * most 500), carrying every one of tags (at most 32), deleted ones only
 * (deleted 1) or live ones only (0), with ids under before_id (0: from the
 * newest), at most limit (1..AOS_STORE_LIST_MAX). *out: an array of rows. */
int aos_store_mem_list(aos_store_t *st, const char *const *projects, size_t nprojects,
                       const char *const *tags, size_t ntags, int deleted, int64_t before_id,
                       int limit, json_t **out, aos_err_t *err);
/* Calls fn for the vector of every live item (dims floats), in id order
 * (only_id > 0: of that item only, if it is live); model: only vectors of
 * that model (mem_embeddings.model, migration 0029), NULL: any.
 * fn returns 0 to go on. */
typedef int (*aos_store_mem_vec_fn)(int64_t id, const char *project_id, const float *vec, int dims,
                                    void *arg, aos_err_t *err);
int aos_store_mem_vectors(aos_store_t *st, int64_t only_id, const char *model,
                          aos_store_mem_vec_fn fn, void *arg, aos_err_t *err);
/* The live items with ids above after_id whose vector is missing, of
 * another model than model or (dims > 0) of another dimension than dims,
 * in id order, at most limit (1..AOS_STORE_LIST_MAX): *out an array of
 * {id, text, version}. */
int aos_store_mem_stale(aos_store_t *st, const char *model, int dims, int64_t after_id, int limit,
                        json_t **out, aos_err_t *err);
/* Writes item id's vector (dims floats of model) if the item is live and
 * still at version (a write since then embedded it itself): *written 1
 * and its project into project (size bytes, may be NULL), else
 * *written 0 and nothing changes. A statement for the caller's
 * aos_store_tx or on its own. */
int aos_store_mem_set_vector(aos_store_t *st, int64_t id, int64_t version, const char *model,
                             const float *vec, int dims, char *project, size_t project_size,
                             int *written, aos_err_t *err);
/* R1 profiles: {principal, profile (object), updated_at, version} of
 * principal, or AOS_ENOTFOUND. */
int aos_store_mem_profile_get(aos_store_t *st, const char *principal, json_t **out, aos_err_t *err);
/* Inserts or replaces principal's profile (JSON object text); version + 1. */
int aos_store_mem_profile_put(aos_store_t *st, const char *principal, const char *profile,
                              aos_err_t *err);
/* R2 blueprints. A blueprint as JSON is {id, project_id, name, version,
 * created_at, updated_at, description, spec, params, diff, author} (the
 * fields after updated_at are those of the version asked for, the current
 * one by default). spec, params: JSON object text; diff: JSON array text or
 * NULL. Create: version 1 (AOS_ECONFLICT for a name the project has
 * already); *id gets the id. */
int aos_store_mem_blueprint_create(aos_store_t *st, const char *project_id, const char *name,
                                   const char *description, const char *spec, const char *params,
                                   const char *author, int64_t *id, aos_err_t *err);
/* Adds version (the current + 1, which the caller read) with its diff:
 * AOS_ECONFLICT when the current version is no longer version - 1. */
int aos_store_mem_blueprint_version_add(aos_store_t *st, int64_t id, int64_t version,
                                        const char *description, const char *spec,
                                        const char *params, const char *diff, const char *author,
                                        aos_err_t *err);
/* version <= 0: the current one. AOS_ENOTFOUND. */
int aos_store_mem_blueprint_get(aos_store_t *st, int64_t id, int64_t version, json_t **out,
                                aos_err_t *err);
/* Every version of id, oldest first, as blueprint objects. */
int aos_store_mem_blueprint_versions(aos_store_t *st, int64_t id, json_t **out, aos_err_t *err);
/* The current version of every blueprint of project_id (NULL: all), by id. */
int aos_store_mem_blueprint_list(aos_store_t *st, const char *project_id, json_t **out,
                                 aos_err_t *err);

/* ---- sandbox (migration 0019, src/sandbox) --------------------------------
 * Scripts: env is JSON text of {NAME: sealed value}; files JSON text of
 * {path: content}; caps JSON text. Runs: one row per run, finished once. */
typedef struct {
    const char *id, *name, *entry_file, *description; /* description may be NULL */
    int64_t schedule_ms;                              /* 0: none */
    const char *schedule_cron;                        /* NULL: none (0023) */
    const char *env, *files, *caps;
    const char *created_by; /* insert only; may be NULL */
} aos_store_sandbox_script_t;
/* create: insert (AOS_ECONFLICT on a duplicate id); else update every
 * column but created_* (AOS_ENOTFOUND when there is no such script). */
int aos_store_sandbox_script_put(aos_store_t *st, const aos_store_sandbox_script_t *s, int create,
                                 aos_err_t *err);
/* {id, name, entry_file, description, schedule_ms, schedule_cron, env,
 * files, caps, created_by, created_at, updated_at}; AOS_ENOTFOUND. */
int aos_store_sandbox_script_get(aos_store_t *st, const char *id, json_t **out, aos_err_t *err);
int aos_store_sandbox_script_list(aos_store_t *st, json_t **out, aos_err_t *err);
/* Deletes the script and its runs; AOS_ENOTFOUND. */
int aos_store_sandbox_script_delete(aos_store_t *st, const char *id, aos_err_t *err);

typedef struct {
    const char *id, *script_id, *trace_id, *status, *actor; /* script_id may be NULL */
    int has_exit;
    int64_t exit_code;
    int signal;
    const char *reason, *usage, *out, *errout, *error; /* may be NULL */
    int64_t duration_ms;
    int truncated;
    int landlock_abi; /* the Landlock ABI applied, 0: none in the kernel; -1: unknown (NULL) */
} aos_store_sandbox_run_t;
/* Inserts a run (id, script_id, trace_id, status, actor), started now. */
int aos_store_sandbox_run_insert(aos_store_t *st, const aos_store_sandbox_run_t *r, aos_err_t *err);
/* Writes a run's end: everything but id, script_id, trace_id, actor. */
int aos_store_sandbox_run_finish(aos_store_t *st, const aos_store_sandbox_run_t *r, aos_err_t *err);
/* {id, script_id, trace_id, status, exit_code, signal, reason, duration_ms,
 * usage, stdout, stderr, truncated, error, actor, started_at, finished_at}. */
int aos_store_sandbox_run_get(aos_store_t *st, const char *id, json_t **out, aos_err_t *err);
/* The newest limit runs of a script. */
int aos_store_sandbox_runs_list(aos_store_t *st, const char *script_id, int limit, json_t **out,
                                aos_err_t *err);
/* At start-up: runs still 'running' (aosd died under them) become 'error'. */
int aos_store_sandbox_runs_abandon(aos_store_t *st, aos_err_t *err);

/* ---- agents (0001, 0019, src/agents) --------------------------------------
 * config and caps are JSON text; version is the live version's number as
 * text. */
typedef struct {
    const char *id, *name, *type, *version, *route_prefix, *status, *config, *caps;
    int64_t replicas;
} aos_store_agent_t;
/* create: insert (AOS_ECONFLICT for a name taken); else update every
 * column but id, name, type, created_at (AOS_ENOTFOUND). */
int aos_store_agent_put(aos_store_t *st, const aos_store_agent_t *a, int create, aos_err_t *err);
/* By id or name: {id, name, type, version, route_prefix, replicas, status,
 * config, caps, created_at}; AOS_ENOTFOUND. */
int aos_store_agent_get(aos_store_t *st, const char *id, json_t **out, aos_err_t *err);
int aos_store_agent_list(aos_store_t *st, json_t **out, aos_err_t *err);
/* Deletes the agent, its versions and its runs; AOS_ENOTFOUND. */
int aos_store_agent_delete(aos_store_t *st, const char *id, aos_err_t *err);
int aos_store_agent_version_add(aos_store_t *st, const char *agent_id, int64_t version,
                                const char *config, const char *created_by, aos_err_t *err);
/* [{version, config, created_by, created_at}], oldest first. */
int aos_store_agent_versions(aos_store_t *st, const char *agent_id, json_t **out, aos_err_t *err);
/* Sets agents.status only (the supervisor's view: starting, running,
 * degraded, crashed, stopped); AOS_ENOTFOUND. */
int aos_store_agent_set_status(aos_store_t *st, const char *id, const char *status, aos_err_t *err);
/* agent_runs: one row per start of an agent (start to stop), status
 * 'running' until it ends ('stopped', 'aborted'); stats is JSON text
 * (calls, failures, restarts, crashes, versions). */
int aos_store_agent_run_start(aos_store_t *st, const char *run_id, const char *agent_id,
                              const char *trace_id, const char *stats, aos_err_t *err);
int aos_store_agent_run_update(aos_store_t *st, const char *run_id, const char *status,
                               const char *stats, int finished, aos_err_t *err);
/* The newest limit runs: [{run_id, trace_id, status, stats, started_at, finished_at}]. */
int aos_store_agent_runs(aos_store_t *st, const char *agent_id, int limit, json_t **out,
                         aos_err_t *err);
/* At start-up: runs of a previous aosd still open become 'aborted' and
 * every agent 'stopped' (its processes died with that aosd). */
int aos_store_agent_runs_abandon(aos_store_t *st, aos_err_t *err);

#endif
