/* internal.h - what the sandbox's files share: run.c (runs, workspaces,
 * schedules), script.c (validation of scripts), routes.c (REST) and
 * shell.c (the shell tool). Nothing here is visible outside src/sandbox. */
#ifndef AOS_SANDBOX_INTERNAL_H
#define AOS_SANDBOX_INTERNAL_H

#include "sandbox/sandbox.h"
#include "cron/cron.h"

#include <limits.h>

#include "buf/buf.h"
#include "proc/proc.h"

#define SB_ID_LEN 32
#define SB_UID    65534 /* who a sandboxed command is when aosd runs as root */

/* What a run may use; caps of a script, or of a shell call. */
typedef struct {
    int network;
    uint32_t timeout_ms;
    uint32_t output_kb; /* kept of each stream in the run's row */
    aos_proc_limits_t limits;
} sb_caps_t;

typedef struct sb_run_s sb_run_t;
typedef void (*sb_run_done_fn)(sb_run_t *r, void *data);

struct sb_run_s {
    aos_sandbox_t *sb;
    char id[SB_ID_LEN + 1];
    char trace_id[SB_ID_LEN + 1];
    char script_id[SB_ID_LEN + 1]; /* "" for a shell call */
    char actor[96];
    /* what runs */
    json_t *files; /* {path: content} to write, or NULL */
    char **argv;   /* owned, NULL-terminated */
    char **env;    /* "K=V", owned; values may be secrets: wiped */
    sb_caps_t caps;
    char workspace[PATH_MAX];
    int own_workspace; /* made for this run: removed after it */
    /* state */
    aos_proc_t *proc;
    int scheduled, canceled, started, finished;
    aos_buf_t out, err;
    int truncated;
    char status[16];
    char error[256];
    aos_proc_exit_t ex;
    sb_run_done_fn done; /* the shell's answer; may be NULL */
    void *done_data;
    sb_run_t *next;
};

typedef struct sb_sched_s {
    aos_sandbox_t *sb;
    uv_timer_t timer;
    char script_id[SB_ID_LEN + 1];
    uint64_t every_ms; /* 0: on cron */
    aos_cron_t cron;   /* every_ms 0: the timer is re-armed for its next time */
    struct sb_sched_s *next;
} sb_sched_t;

struct aos_sandbox_s {
    uv_loop_t *loop;
    aos_store_t *store;
    aos_secret_box_t *secrets;
    char *root; /* $TMPDIR/aos-sandbox-XXXXXX: runs/<id> are the workspaces */
    int root_made;
    char *bwrap;   /* may be NULL */
    char *helper;  /* may be NULL: unavailable */
    int available; /* the probe passed */
    char why[400]; /* why not */
    unsigned max_running, running;
    sb_run_t *runs; /* in memory until their end is stored */
    sb_sched_t *scheds;
    unsigned pending; /* jobs and workspace removals in flight */
    int closing;
    void (*down)(void *data);
    void *down_data;
    void (*on_unseal)(const char *value, void *data);
    void *unseal_data;
    char *(*env_open)(const char *name, const char *project_id, size_t *len, aos_err_t *err,
                      void *data);
    void *env_data;
    aos_builtin_t shell;
    aos_metric_t *m_runs, *m_duration, *m_running, *m_max, *m_available; /* or NULL */
};

/* ---- script.c ---- */
/* Validates a client's script (in; prev: the stored one for PATCH, else
 * NULL) into the columns to store; secrets in env sealed. */
int sb_script_normalize(aos_sandbox_t *sb, const json_t *in, const json_t *prev,
                        aos_store_sandbox_script_t *out, char **env, char **files, char **caps,
                        aos_err_t *err);
/* The public form of a stored script: env as the names only. */
json_t *sb_script_public(const json_t *stored);
/* caps (object or NULL) into c, defaults for what it leaves out. */
int sb_caps_parse(const json_t *caps, sb_caps_t *c, aos_err_t *err);
/* 1 if path is a relative path of plain segments. */
int sb_path_ok(const char *path);

/* ---- run.c ---- */
void sb_new_id(char out[SB_ID_LEN + 1]);
sb_run_t *sb_run_new(aos_sandbox_t *sb, const char *actor);
void sb_run_free(sb_run_t *r);
/* Makes r's argv and env from a stored script (secrets unsealed). */
int sb_run_from_script(sb_run_t *r, const json_t *script, aos_err_t *err);
/* Inserts r's row (and an audit row) in a store job, then prepares its
 * workspace and starts it. cb (may be NULL) runs when the row is stored
 * (status 0) or was refused; r then belongs to the sandbox either way. */
int sb_run_submit(sb_run_t *r,
                  void (*cb)(sb_run_t *r, int status, const aos_err_t *err, void *data), void *data,
                  aos_err_t *err);
sb_run_t *sb_run_find(aos_sandbox_t *sb, const char *id);
void sb_run_cancel(sb_run_t *r);
/* The run's public form, while it runs. */
json_t *sb_run_json(const sb_run_t *r);
int sb_refuse(aos_sandbox_t *sb, aos_err_t *err); /* 0, or why no run may start */
/* Runs script_id every every_ms, or on cron (a checked expression; NULL),
 * or not at all (every_ms <= 0 and cron NULL). */
void sb_sched_set(aos_sandbox_t *sb, const char *script_id, int64_t every_ms, const char *cron);
void sb_unref(aos_sandbox_t *sb);

/* ---- shell.c ---- */
void sb_shell_init(aos_sandbox_t *sb);

/* ---- routes.c ---- */
const char *sb_actor(aos_http_req_t *req, char *buf, size_t n);

#endif
