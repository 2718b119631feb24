/* internal.h - what proc.c and sandbox.c share; nothing here is visible
 * outside src/proc. */
#ifndef AOS_PROC_INTERNAL_H
#define AOS_PROC_INTERNAL_H

#include "proc/proc.h"

#include "buf/buf.h"
#include "log/log.h"

/* fds a sandboxed child inherits after its status pipe (3): the workspace
 * directory (4), the seccomp program (5), the helper (6). */
#define AOS__PROC_SANDBOX_FDS 3

struct aos_proc_s {
    uv_process_t proc;
    uv_pipe_t in, out, err, status;
    uv_timer_t timer;    /* SIGKILL escalation, then exit grace */
    uv_timer_t deadline; /* the wall-clock timeout */
    int handles;         /* open handles */
    int pid;
    char *component;
    json_t *fields; /* owned; added to log lines */
    void (*on_stdout)(aos_proc_t *p, const char *buf, size_t n, void *data);
    void (*on_stderr)(aos_proc_t *p, const char *line, size_t n, void *data);
    void (*on_write_error)(aos_proc_t *p, int status, void *data);
    void (*on_exit)(aos_proc_t *p, const aos_proc_exit_t *ex, void *data);
    void *data;
    aos_proc_limits_t limits;
    uint32_t kill_after_ms, timeout_ms;
    uint64_t started_ms, exited_ms;
    int sandboxed, stdout_lines, stop_on_eof;
    int exited, out_eof, status_eof, killing, finished, in_closed;
    int64_t exit_status;
    int term_signal;
    const char *reason;
    aos_buf_t obuf, ebuf; /* incomplete stdout (stdout_lines) and stderr lines */
    aos_buf_t sbuf;       /* the helper's report */
    char rbuf[64 * 1024];
};

/* What uv_spawn gets. */
typedef struct {
    const char *file;
    char **argv, **env;
    const char *cwd;
    uint32_t uid, gid; /* 0: as aosd */
    int fds[AOS__PROC_SANDBOX_FDS];
} aos__proc_spawn_t;

/* Builds the bubblewrap command for o (sandbox.c); AOS_EUNAVAIL when the
 * helper or bubblewrap is missing. */
int aos__proc_sandbox_prepare(const aos_proc_opts_t *o, aos__proc_spawn_t *sp, aos_err_t *err);
/* Frees what prepare (sandboxed) or env_build made; closes the fds. */
void aos__proc_spawn_release(aos__proc_spawn_t *sp, int sandboxed);
/* Reads the helper's report (p->sbuf) into ex, if there is one. */
void aos__proc_status_parse(const aos_proc_t *p, aos_proc_exit_t *ex);
void aos__proc_log(aos_proc_t *p, aos_log_level_t level, json_t *extra, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
