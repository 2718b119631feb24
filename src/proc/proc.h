/* proc.h - child processes of aosd: spawn, pipes, stderr lines to the log,
 * stop (SIGTERM, then SIGKILL after a grace period), a wall-clock timeout,
 * exit status or signal with the reason aosd stopped it, and - for a
 * sandboxed child - its resource use. One module for every child: the
 * stdio transport's MCP servers, sandbox scripts, the shell tool, agents.
 *
 * A child gets its own session and process group (setsid), so stopping it
 * stops whatever it started. Its environment is explicit: a few variables
 * of aosd's own (PATH, HOME, USER, LOGNAME, SHELL, TERM, LANG, LC_ALL, TZ,
 * TMPDIR, and the names in passthrough; never one named AOS_*), then its
 * own "K=V" entries, which win. A sandboxed child inherits nothing of
 * aosd's environment (docs/SANDBOX.md).
 *
 * A child is finished once it has exited and its stdout reached EOF (or
 * 200 ms passed after the exit, in case a grandchild keeps stdout open):
 * then on_exit runs, once, and the aos_proc_t frees itself right after
 * it returns. A child that could not be spawned calls nothing.
 *
 * The sandbox (opts.sandbox) runs the command under bubblewrap (new user,
 * PID, IPC, UTS, cgroup and network namespaces; read-only system
 * directories; a private writable workspace at AOS_PROC_WORKDIR; a private
 * /tmp), a seccomp filter (aos_proc_seccomp_bpf) and rlimits, through the
 * helper aos-exec, which reports the child's resource use (wait4). When
 * user namespaces cannot be had the spawn fails with AOS_EUNAVAIL: a
 * sandboxed child never runs unconfined.
 *
 * Loop thread only, except aos_proc_seccomp_bpf, aos_proc_backoff_next,
 * aos_proc_sandbox_probe (any thread; the probe blocks for a spawn) and
 * aos_proc_run (worker threads: it runs a short child to completion). */
#ifndef AOS_PROC_H
#define AOS_PROC_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err/err.h"

typedef struct aos_proc_s aos_proc_t;

/* Where a sandboxed child's workspace is, inside its sandbox. */
#define AOS_PROC_WORKDIR "/workspace"

/* rlimits of a sandboxed child; 0 leaves one unset. */
typedef struct {
    uint64_t cpu_s;       /* RLIMIT_CPU, seconds of CPU time */
    uint64_t as_bytes;    /* RLIMIT_AS, address space */
    uint64_t nofile;      /* RLIMIT_NOFILE, open files */
    uint64_t nproc;       /* RLIMIT_NPROC, processes (of its user) */
    uint64_t fsize_bytes; /* RLIMIT_FSIZE, the largest file it may write */
    uint64_t rss_bytes;   /* resident memory of all its processes (checked every 20 ms:
                             past it they are killed, reason "memory") */
} aos_proc_limits_t;

typedef struct {
    const char *bwrap;     /* bubblewrap's path; NULL: "bwrap" on PATH */
    const char *helper;    /* aos-exec's path (aos_proc_helper_path) */
    const char *workspace; /* host directory bound read-write at AOS_PROC_WORKDIR */
    int network;           /* 1: the host's network; 0: none (a network namespace of its own) */
    aos_proc_limits_t limits;
    /* aosd running as root starts bubblewrap as this uid/gid (0: 65534),
     * so that the child's processes count against an unprivileged user
     * (RLIMIT_NPROC) and it cannot read root's files; the workspace must
     * be writable by it. Ignored when aosd is not root. */
    uint32_t uid, gid;
} aos_proc_sandbox_t;

typedef struct {
    int64_t user_us, sys_us; /* CPU time */
    int64_t max_rss_kb;
    int64_t minflt, majflt, nvcsw, nivcsw;
} aos_proc_usage_t;

typedef struct {
    int64_t exit_status;  /* when term_signal is 0 */
    int term_signal;      /* the signal that ended it, else 0 */
    const char *reason;   /* why it ended when aosd or a limit ended it: "stopped",
                             "timeout", "cpu", "file_size", "memory", "processes";
                             NULL: it exited by itself */
    uint64_t duration_ms; /* spawn to exit */
    int has_usage;        /* usage is filled (sandboxed children that reported it) */
    aos_proc_usage_t usage;
    int landlock_abi; /* sandboxed: the Landlock ABI the helper applied, 0 when the kernel
                         has none; -1: not reported (not sandboxed, or it did not start) */
} aos_proc_exit_t;

typedef struct {
    const char *file;         /* the program (PATH is searched if it has no '/') */
    char *const *argv;        /* argv[0] included; NULL-terminated */
    char *const *env;         /* "K=V" entries of its own; may be NULL */
    char *const *passthrough; /* names of aosd's variables it also inherits; may be NULL */
    const char *cwd;          /* may be NULL; ignored in the sandbox (AOS_PROC_WORKDIR) */
    int stdin_pipe;           /* 1: aos_proc_write feeds its stdin; 0: /dev/null */
    /* stdout_lines: stdout is also split into lines and logged like stderr
     * ("stream": "stdout"). */
    int stdout_lines;
    /* 1: stdout reaching EOF while the child lives stops it (a server
     * without stdout is no server). */
    int stop_on_stdout_eof;
    const char *component;             /* log component of its stderr lines; NULL: "proc" */
    json_t *log_fields;                /* borrowed, copied: members added to each line logged */
    uint32_t kill_after_ms;            /* SIGTERM to SIGKILL; 0: 2000 */
    uint32_t timeout_ms;               /* wall clock, then stopped with reason "timeout"; 0: none */
    const aos_proc_sandbox_t *sandbox; /* NULL: not sandboxed */

    /* Callbacks, on the loop; data is borrowed. */
    void (*on_stdout)(aos_proc_t *p, const char *buf, size_t n, void *data); /* may be NULL */
    /* each stderr line (n bytes, no newline; at most 4096 bytes a piece) */
    void (*on_stderr)(aos_proc_t *p, const char *line, size_t n, void *data); /* may be NULL */
    /* writing to stdin failed (status a libuv error); may be NULL: then it is stopped */
    void (*on_write_error)(aos_proc_t *p, int status, void *data);
    void (*on_exit)(aos_proc_t *p, const aos_proc_exit_t *ex, void *data);
    void *data;
} aos_proc_opts_t;

/* Starts a child. 0 and *out, or AOS_EINVAL, AOS_ENOMEM, AOS_EUNAVAIL (the
 * sandbox cannot be had), AOS_EIO (the spawn failed), with err saying why. */
int aos_proc_spawn(uv_loop_t *loop, const aos_proc_opts_t *opts, aos_proc_t **out, aos_err_t *err);
/* Writes data (len bytes, malloc'd: taken either way) to stdin. 0, or
 * AOS_EUNAVAIL (no stdin pipe, exited, stopping) or the libuv error as
 * AOS_EIO. */
int aos_proc_write(aos_proc_t *p, char *data, size_t len);
/* Bytes handed to aos_proc_write that the child has not read yet. */
size_t aos_proc_write_queue(const aos_proc_t *p);
/* SIGTERM to its process group, SIGKILL after kill_after_ms; reason
 * (static; NULL: "stopped") is what on_exit reports. Idempotent. */
void aos_proc_stop(aos_proc_t *p, const char *reason);
/* SIGKILL now, with reason as for aos_proc_stop. */
void aos_proc_kill(aos_proc_t *p, const char *reason);
int aos_proc_pid(const aos_proc_t *p); /* 0 once it exited */
int aos_proc_exited(const aos_proc_t *p);
int aos_proc_stopping(const aos_proc_t *p);
uint64_t aos_proc_started_ms(const aos_proc_t *p); /* uv_now at spawn */

/* Runs file (looked up on PATH=/usr/local/bin:/usr/bin:/bin; argv[0] its
 * name; no shell) to completion ON THE CALLING THREAD - a worker thread of
 * libuv's pool, never the loop: it waits for the child. Its environment is
 * PATH and LANG=C.UTF-8 only, its process group its own. stdin gets
 * in[0..in_len); stdout is collected into *out (malloc'd, the caller
 * frees, *out_len bytes). 0 when it exited 0; else AOS_EUNAVAIL (file not
 * found), AOS_ETOOBIG (more than max_out bytes on stdout: killed),
 * AOS_ETIMEDOUT (still running after timeout_ms, 0: 10 s: killed), AOS_EIO
 * (another exit or signal; err holds the first bytes of its stderr). */
int aos_proc_run(const char *file, char *const argv[], const void *in, size_t in_len, char **out,
                 size_t *out_len, size_t max_out, uint32_t timeout_ms, aos_err_t *err);

/* ---- the sandbox --------------------------------------------------------- */

/* The seccomp filter of sandboxed children as a compiled BPF program
 * (libseccomp's seccomp_export_bpf) in *out (malloc'd), *len bytes.
 * It fails with EPERM: ptrace, process_vm_readv/writev, mount, umount2,
 * pivot_root, the new mount API, swapon/off, reboot, kexec_load,
 * kexec_file_load, init_module, finit_module, delete_module, keyctl,
 * add_key, request_key, bpf, perf_event_open, userfaultfd, syslog, acct,
 * quotactl, iopl, ioperm, open_by_handle_at, name_to_handle_at,
 * fanotify_init, setns, unshare, clone with any CLONE_NEW* flag, ioctl
 * TIOCSTI and TIOCLINUX, chroot; and clone3
 * with ENOSYS (its flags cannot be inspected; libc falls back to clone).
 * Calls of other architectures (32-bit) kill the process. */
int aos_proc_seccomp_bpf(void **out, size_t *len, aos_err_t *err);
/* The syscall names the filter denies, NULL-terminated (for tests and docs). */
const char *const *aos_proc_seccomp_denied(void);

/* The helper's path: $AOS_EXEC_HELPER if set, else "aos-exec" beside the
 * running program, else beside its parent directory (a test binary in
 * build/tests). NULL when none exists. Static storage. */
const char *aos_proc_helper_path(void);

/* bubblewrap opens the helper by its path as the sandbox's uid (65534 when
 * aosd is root), so a helper under a directory that uid cannot cross (a
 * build in /root or a 0700 mktemp dir) cannot be bound: copies src to
 * dir/aos-exec (0755; dir should be crossable, e.g. 0711), written under a
 * temporary name and renamed. Returns the copy's path (malloc'd), or NULL
 * with err saying why. Any thread. */
char *aos_proc_helper_copy(const char *src, const char *dir, aos_err_t *err);

/* Whether sandboxed children can run here: spawns bubblewrap once with
 * every namespace (blocking, a few ms; call at start-up). 0, or
 * AOS_EUNAVAIL with err saying what is missing (bubblewrap, the helper,
 * user namespaces). */
int aos_proc_sandbox_probe(const char *bwrap, const char *helper, aos_err_t *err);

/* rlimit arguments of the helper ("--cpu=N", ...), for tests: writes at
 * most n entries (each a static-free malloc'd string) into out, returns
 * how many, or -1 when out of memory. */
int aos_proc_limit_args(const aos_proc_limits_t *l, char **out, size_t n);

/* ---- restart back-off ----------------------------------------------------
 * Exponential, capped, with jitter, reset after a stable period: a
 * supervisor calls aos_proc_backoff_next when its child died, with the
 * time the child started and now (ms), and waits the delay it returns. */
typedef struct {
    uint32_t min_ms, max_ms; /* first delay; the cap */
    uint32_t stable_ms;      /* a child that ran this long resets the delay */
    uint32_t cur_ms;         /* state: the last delay (0: none yet) */
    uint32_t failures;       /* state: deaths in a row without a stable run */
    uint64_t rng;            /* state: xorshift seed; 0 = a fixed one */
} aos_proc_backoff_t;
uint32_t aos_proc_backoff_next(aos_proc_backoff_t *b, uint64_t started_ms, uint64_t now_ms);

#endif
