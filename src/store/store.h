/* store.h - durable state of aosd: the database behind the registry, API
 * tokens, settings and the audit log (SPEC §9).
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
 * callbacks (on this thread: any aos_store_submit from them fails), then
 * closes the connection and frees st. The loop must run once more afterwards
 * (e.g. uv_run(loop, UV_RUN_NOWAIT)) to release the store's uv handle before
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
/* [{id, name, role, token_hash, created_at, last_used_at}], oldest first. */
int aos_store_token_list(aos_store_t *st, json_t **out, aos_err_t *err);

/* Settings: any JSON value under a key. value is borrowed. */
int aos_store_setting_get(aos_store_t *st, const char *key, json_t **out, aos_err_t *err);
int aos_store_setting_put(aos_store_t *st, const char *key, const json_t *value, aos_err_t *err);

/* Audit log. resource and diff may be NULL; diff is borrowed and must not
 * hold secret values. */
int aos_store_audit_append(aos_store_t *st, const char *actor, const char *action,
                           const char *resource, const json_t *diff, aos_err_t *err);
/* Newest first: up to limit (1..AOS_STORE_LIST_MAX) rows with id < before_id
 * (before_id <= 0: from the newest) as [{id, actor, action, resource, diff,
 * created_at}]. Pass the last id of a page as before_id for the next. */
int aos_store_audit_list(aos_store_t *st, int64_t before_id, int limit, json_t **out,
                         aos_err_t *err);

#endif
