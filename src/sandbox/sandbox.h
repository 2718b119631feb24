/* sandbox.h - sandbox scripts, their runs and schedules, and the built-in
 * "shell" server (issue 15; docs/SANDBOX.md):
 *
 *   GET/POST         /sandbox/scripts
 *   GET/PATCH/DELETE /sandbox/scripts/:id
 *   POST             /sandbox/scripts/:id/run
 *   GET              /sandbox/scripts/:id/runs
 *   GET              /sandbox/runs/:id
 *   POST             /sandbox/runs/:id/cancel
 *   GET              /sandbox/status
 *   MCP              shell__run (a command in the sandbox, in the caller's
 *                    workspace when its caps name one)
 *
 * Every run is a sandboxed child of src/proc (bubblewrap, seccomp,
 * rlimits, a wall-clock timeout) in a workspace of its own under
 * $TMPDIR/aos-sandbox-XXXXXX/runs/<run id>, removed after the run. Its stdout and
 * stderr lines go to the log service under the run's trace id; the first
 * bytes of each are kept in the run's row with its status, exit code or
 * signal, duration, resource use and the reason it was ended. Secrets in
 * a script's env are sealed in the store and unsealed only into that run's
 * environment. When the sandbox cannot be had (no user namespaces, no
 * bubblewrap), runs are refused with 503 and the reason: nothing runs
 * unconfined.
 *
 * Loop thread only, except aos_sandbox_new (start-up: it probes). */
#ifndef AOS_SANDBOX_H
#define AOS_SANDBOX_H

#include <uv.h>

#include "builtin/builtin.h"
#include "err/err.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "secret/secret.h"
#include "store/store.h"

typedef struct aos_sandbox_s aos_sandbox_t;

typedef struct {
    uv_loop_t *loop;           /* borrowed */
    aos_store_t *store;        /* borrowed */
    aos_secret_box_t *secrets; /* borrowed */
    const char *data_dir;      /* not used yet */
    /* where runs' workspaces go: <work_root>/aos-sandbox-XXXXXX/runs/<id>
     * (NULL: $TMPDIR, else /tmp); removed at shutdown */
    const char *work_root;
    const char *bwrap;    /* NULL: bwrap on PATH */
    const char *helper;   /* NULL: aos_proc_helper_path() */
    unsigned max_running; /* runs at once; 0: 8 */
    /* each secret value unsealed for a run, so that the logs redact it */
    void (*on_unseal)(const char *value, void *data);
    void *unseal_data;
    /* Opens the runtime secret name for a run whose env names it
     * ({"NAME": {"secret": name}}): a new plaintext of *len bytes the
     * sandbox wipes, or NULL with err set (unknown, does not open). NULL
     * callback: such an env refuses the run. */
    char *(*env_open)(const char *name, const char *project_id, size_t *len, aos_err_t *err,
                      void *data);
    void *env_data;
    /* borrowed, may be NULL: aos_sandbox_runs_total{status},
     * aos_sandbox_run_duration_seconds, aos_sandbox_runs_running,
     * aos_sandbox_max_running, aos_sandbox_available */
    aos_metrics_t *metrics;
} aos_sandbox_cfg_t;

/* Probes the sandbox (a bubblewrap spawn) and loads the schedules from
 * the store (synchronously: at start-up, before the loop runs). A sandbox
 * that cannot be had is no error here: it is logged, and runs are refused. */
int aos_sandbox_new(aos_sandbox_t **out, const aos_sandbox_cfg_t *cfg, aos_err_t *err);
int aos_sandbox_add_routes(aos_sandbox_t *sb, aos_http_t *http);
/* When aosd runs as root, sandboxed commands run as an unprivileged uid,
 * which must cross data_dir and data_dir/workspaces to reach a task's
 * workspace (the shell tool binds it): both get mode 0711 - crossed, not
 * listed; the files in them stay 0600 - and workspaces is made if missing.
 * Nothing when not root. At start-up (it touches the disk). */
int aos_sandbox_share_workspaces(const char *data_dir, aos_err_t *err);
/* The built-in server "shell" (tool "run"), for aos_gateway_add_builtin. */
const aos_builtin_t *aos_sandbox_shell_builtin(aos_sandbox_t *sb);
/* Stops the schedules, kills every run, and calls done once each run's end
 * is stored and its workspace removed. */
void aos_sandbox_shutdown(aos_sandbox_t *sb, void (*done)(void *data), void *data);
void aos_sandbox_free(aos_sandbox_t *sb);

#endif
