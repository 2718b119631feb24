/* settings.h - system settings, runtime secrets and the IP allowlist
 * (issue 16; docs/SETTINGS.md).
 *
 * System settings: one table of keys (schema.c: type, range, live or at
 * the next start, the flag that pins it) read and changed over
 * GET/PUT /config/system. A change is validated whole (400 naming the
 * field; unknown keys refused), stored in the settings table (key
 * "system") with its audit row in one store job, then applied: live keys
 * at once (the security policy here, the LLM client through cfg.apply),
 * the others at the next start, which the answer lists. ?dry_run=1 gives
 * the diff without applying it. Precedence: a key set by a flag, an
 * AOS_* variable or the config file is pinned - shown with source "flag"
 * and refused (409) by PUT; otherwise the stored value, otherwise the
 * default.
 *
 * Runtime secrets: values sealed with the master key bound to their name
 * and scope (src/secret "v2"), write-only: no route, log, event, span,
 * audit diff or error carries a value. With security.two_person_secrets
 * on, a PUT or DELETE waits (202) for a second Admin or Owner to approve
 * it. POST /config/runtime/rotate-master-key reseals every value (these,
 * the pending ones and the registry's) under a new key in one
 * transaction. A task's TaskSpec env ({"NAME": {"secret": "name"}}) is
 * opened only when its tool calls start (aos_settings_secret_open).
 *
 * IP allowlist: aos_settings_gate, the HTTP server's gate, refuses (403
 * ip_not_allowed) a peer outside the effective list (--ip-allowlist, else
 * security.ip_allowlist; empty: everyone) before anything else.
 *
 * Threads: the loop thread, except where a function says otherwise. */
#ifndef AOS_SETTINGS_H
#define AOS_SETTINGS_H

#include <jansson.h>
#include <uv.h>

#include "config/config.h"
#include "err/err.h"
#include "http/http.h"
#include "secret/secret.h"
#include "store/store.h"

typedef struct aos_settings_s aos_settings_t;

typedef struct {
    uv_loop_t *loop;           /* borrowed */
    aos_store_t *store;        /* borrowed */
    aos_secret_box_t *secrets; /* borrowed; rotation swaps its key */
    aos_config_t *config;      /* borrowed: the running configuration, which
                                  aos_settings_new overlays with the stored
                                  settings and live changes update */
    const char *data_dir;      /* where master.key lives */
    int master_key_from_flag;  /* --master-key / AOS_MASTER_KEY: no rotation */
    /* A live group of keys ("llm") changed, or - with dry_run - would:
     * 0 if it is (would be) applied at once, else AOS_EUNAVAIL (at the next
     * start). May be NULL (every key then waits for a restart). */
    int (*apply)(const char *group, int dry_run, void *data);
    /* Every plaintext of a runtime secret as it becomes known (added = 1:
     * at start, when set, when opened for a task) or is deleted (0), for
     * the redactor (borrowed for the call). May be NULL. */
    void (*on_secret)(const char *value, int added, void *data);
    /* A runtime secret was set anew (deleted = 0) or deleted (1), once the
     * store has it (a two-person change: once approved), so that what
     * opened the old value (agents' replicas, remote agents' routes) can
     * open it again. Loop thread; name borrowed for the call. May be NULL. */
    void (*on_secret_change)(const char *name, int deleted, void *data);
    void *data;
} aos_settings_cfg_t;

/* Computes which keys the flags pin (cfg.config against the defaults: call
 * before anything changes it), reads the stored settings, overlays them on
 * cfg.config, finishes an interrupted master-key rotation, and loads the
 * runtime secrets. At start-up, before the loop runs (reads the store
 * synchronously). A stored value that no longer validates is logged and
 * left out. */
int aos_settings_new(aos_settings_t **out, const aos_settings_cfg_t *cfg, aos_err_t *err);
void aos_settings_free(aos_settings_t *s);
/* Adds GET/PUT /config/system, GET /config/runtime, PUT/DELETE
 * /config/runtime/:name, GET /config/runtime/pending, POST
 * /config/runtime/pending/:id/approve|reject, POST
 * /config/runtime/rotate-master-key, GET /projects/:id/vars, PUT/DELETE
 * /projects/:id/vars/:name. */
int aos_settings_add_routes(aos_settings_t *s, aos_http_t *http);

/* An aos_http_gate_fn (data: the aos_settings_t): the IP allowlist. */
int aos_settings_gate(aos_http_req_t *req, const char *peer, aos_err_t *err, void *data);

/* The stored database URL (database.url) of the store st, or NULL; a new
 * string. Start-up only: aosd reopens its store there unless --store
 * pins it. */
char *aos_settings_stored_database(aos_store_t *st);

/* The plaintext of the runtime secret name for a task of project
 * project_id (NULL: none): the secret's scope must be "system" or
 * "project:<project_id>". Guarded memory the caller releases with
 * aos_secret_wipe; *len its length. NULL with err: AOS_ENOTFOUND (no such
 * secret, or out of scope), AOS_EINTERNAL (it does not open: moved or
 * tampered with). */
char *aos_settings_secret_open(aos_settings_t *s, const char *name, const char *project_id,
                               size_t *len, aos_err_t *err);
/* The LLM key of llm.api_key_secret, opened, or NULL (unset, or it does not
 * open): guarded memory, released with aos_secret_wipe. */
char *aos_settings_llm_key(aos_settings_t *s);

/* The headers of otel.headers as "Name: value" lines, NULL-terminated, the
 * values of {"secret": name} opened (a secret that does not open is logged,
 * by name, and its header left out); NULL when none or out of memory.
 * Secrets: free with aos_settings_headers_free, which wipes them. */
char **aos_settings_otel_headers(aos_settings_t *s);
void aos_settings_headers_free(char **headers);

/* Checks a TaskSpec's "env" member: an object of at most 64 names
 * ([A-Za-z_][A-Za-z0-9_]*, 1..128) each {"secret": "<name>"}, {"var":
 * "<project variable>"} or both. 0 or AOS_EINVAL naming the entry. Pure;
 * any thread. */
int aos_settings_env_check(const json_t *env, aos_err_t *err);
/* Whether the caller of req may use every runtime secret that env (a
 * TaskSpec's or a script's, {NAME: {"secret": name}, ...}; other entries
 * are skipped) names: operate on "secret:<name>". 0, or AOS_EFORBIDDEN
 * with err naming the first it may not. Loop thread. */
int aos_settings_env_authorize(const aos_http_req_t *req, const json_t *env, aos_err_t *err);
/* A runtime secret's name: 1..64 of A-Z a-z 0-9 _ . - */
int aos_settings_name_ok(const char *name);

/* --- env entries that name secrets: TaskSpecs, scripts, agents ------------
 * An env entry is a value of its owner's (a string, sealed) or a
 * reference: {"secret": "<runtime secret>"}, {"var": "<project variable>"}
 * or both once the variable is resolved to its secret. */

/* 1 if v is a well-formed reference, with *secret and *var (borrowed from
 * v; NULL when absent), 0 if v is not an object (a value), AOS_EINVAL if
 * it is an object of any other form. Pure; any thread. */
int aos_settings_env_ref(const json_t *v, const char **secret, const char **var);
/* Resolves each {"var": V} entry of env (an object; others are left) to
 * its secret: vars are the project's variables (aos_store_project_var_list
 * rows); a variable of scope "task" is preferred to one of scope "project"
 * of the same name. The entry becomes {"secret": S, "var": V}. 0, or
 * AOS_EINVAL naming the first variable project has not (project is for the
 * message). Pure; any thread. */
int aos_settings_env_resolve(json_t *env, const json_t *vars, const char *project, aos_err_t *err);
/* Opens a runtime secret for project_id (NULL: none): the owner's
 * env_open callback (aosd wires it to aos_settings_secret_open). */
typedef char *(*aos_settings_env_open_fn)(const char *secret, const char *project_id, size_t *len,
                                          aos_err_t *err, void *data);
/* The plaintext of env entry k = v for a process: a sealed value opened
 * with box, or the runtime secret of a (resolved) reference opened with
 * open(data) for project_id. Guarded memory released with
 * aos_secret_wipe; *len its length. NULL with err naming k and the secret
 * (never a value): AOS_ENOTFOUND (no such secret, or out of scope),
 * AOS_EINVAL (an unresolved variable, a malformed entry), AOS_EUNAVAIL (no
 * open), AOS_EINTERNAL (it does not open). Loop thread (open's). */
char *aos_settings_env_value(const char *k, const json_t *v, aos_secret_box_t *box,
                             aos_settings_env_open_fn open, void *data, const char *project_id,
                             size_t *len, aos_err_t *err);

/* --- the schema of /config/system, for tests ------------------------------ */
/* Validates a PUT body against the schema (without the store-dependent
 * checks: pins, secret references, the caller's address): 0 or AOS_EINVAL
 * naming the key. Pure; any thread. */
int aos_settings_validate(const json_t *body, aos_err_t *err);

#endif
