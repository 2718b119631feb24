/* proc.c - one child process on the loop (proc.h): uv_spawn with its own
 * session, pipes for stdin/stdout/stderr, stderr (and optionally stdout)
 * split into lines and logged, SIGTERM then SIGKILL, a wall-clock timer.
 *
 * Each child is one aos_proc_t holding its handles; it frees itself when
 * the last handle is closed, after on_exit. A sandboxed child has a fourth
 * pipe on which the helper aos-exec writes one JSON line - the real exit
 * status or signal and the wait4 resource use of the command - just before
 * it exits; on_exit runs after that pipe's EOF too (same 200 ms grace). The
 * bubblewrap command line is built in sandbox.c. */
#include "proc/internal.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log/log.h"

#define PROC_KILL_AFTER_MS 2000
#define PROC_EXIT_GRACE_MS 200
#define PROC_MAX_LINE      4096 /* longer lines are split */
#define PROC_MAX_STATUS    4096

extern char **environ;

typedef struct {
    uv_write_t req;
    char *data;
} proc_write_t;

static void proc_handle_closed(uv_handle_t *h)
{
    aos_proc_t *p = h->data;
    if (--p->handles > 0)
        return;
    aos_buf_release(&p->ebuf);
    aos_buf_release(&p->obuf);
    aos_buf_release(&p->sbuf);
    json_decref(p->fields);
    free(p->component);
    free(p);
}

static void proc_close_handles(aos_proc_t *p)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&p->in,    (uv_handle_t *)&p->out,
                         (uv_handle_t *)&p->err,   (uv_handle_t *)&p->status,
                         (uv_handle_t *)&p->timer, (uv_handle_t *)&p->deadline,
                         (uv_handle_t *)&p->proc};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (hs[i]->type != UV_UNKNOWN_HANDLE && !uv_is_closing(hs[i]))
            uv_close(hs[i], proc_handle_closed);
}

static void proc_signal(aos_proc_t *p, int sig)
{
    if (p->pid <= 0)
        return;
    if (kill(-p->pid, sig) != 0 && !p->exited)
        uv_process_kill(&p->proc, sig);
}

void aos__proc_log(aos_proc_t *p, aos_log_level_t level, json_t *extra, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    json_t *f = p->fields ? json_deep_copy(p->fields) : json_object();
    if (f && extra)
        json_object_update(f, extra);
    json_decref(extra);
    aos_log(level, p->component, f, "%s", msg);
}

/* The reason a limit explains, from what the helper reported. */
static const char *limit_reason(const aos_proc_t *p, const aos_proc_exit_t *ex)
{
    if (!p->sandboxed)
        return NULL;
    if (ex->term_signal == SIGXCPU)
        return "cpu";
    if (ex->term_signal == SIGXFSZ)
        return "file_size";
    if (ex->term_signal == SIGKILL && p->limits.cpu_s && ex->has_usage &&
        (uint64_t)(ex->usage.user_us + ex->usage.sys_us) >= p->limits.cpu_s * 800000)
        return "cpu"; /* the hard limit's SIGKILL */
    return NULL;
}

/* The child is gone: tell the owner, then release. */
static void proc_finish(aos_proc_t *p)
{
    if (p->finished)
        return;
    p->finished = 1;
    proc_signal(p, SIGKILL); /* leftovers of its process group */
    aos_proc_exit_t ex = {.exit_status = p->exit_status,
                          .term_signal = p->term_signal,
                          .reason = p->reason,
                          .duration_ms = p->exited_ms - p->started_ms,
                          .landlock_abi = -1};
    if (p->sandboxed)
        aos__proc_status_parse(p, &ex);
    if (!ex.reason)
        ex.reason = limit_reason(p, &ex);
    p->pid = 0;
    if (p->on_exit)
        p->on_exit(p, &ex, p->data);
    proc_close_handles(p);
}

static int proc_drained(const aos_proc_t *p)
{
    return p->out_eof && (!p->sandboxed || p->status_eof);
}

static void on_kill_timer(uv_timer_t *t)
{
    aos_proc_t *p = t->data;
    if (p->exited) {
        proc_finish(p); /* exit grace elapsed */
        return;
    }
    aos__proc_log(p, AOS_LOG_WARN, NULL, "pid %d ignored SIGTERM, killing it", p->pid);
    proc_signal(p, SIGKILL);
}

void aos_proc_stop(aos_proc_t *p, const char *reason)
{
    if (p->exited || p->killing)
        return;
    p->killing = 1;
    if (!p->reason)
        p->reason = reason ? reason : "stopped";
    proc_signal(p, SIGTERM);
    uv_timer_start(&p->timer, on_kill_timer, p->kill_after_ms, 0);
}

void aos_proc_kill(aos_proc_t *p, const char *reason)
{
    if (p->exited)
        return;
    if (!p->reason)
        p->reason = reason ? reason : "stopped";
    p->killing = 1;
    proc_signal(p, SIGKILL);
}

static void on_deadline(uv_timer_t *t)
{
    aos_proc_t *p = t->data;
    aos__proc_log(p, AOS_LOG_WARN, NULL, "pid %d ran past its %u ms, stopping it", p->pid,
                  p->timeout_ms);
    /* a sandbox's processes die with bubblewrap: SIGKILL at once */
    if (p->sandboxed)
        aos_proc_kill(p, "timeout");
    else
        aos_proc_stop(p, "timeout");
}

static void on_proc_exit(uv_process_t *h, int64_t status, int sig)
{
    aos_proc_t *p = h->data;
    p->exited = 1;
    p->exited_ms = uv_now(h->loop);
    p->exit_status = status;
    p->term_signal = sig;
    uv_timer_stop(&p->deadline);
    if (proc_drained(p))
        proc_finish(p);
    else
        uv_timer_start(&p->timer, on_kill_timer, PROC_EXIT_GRACE_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    aos_proc_t *p = h->data;
    (void)hint;
    /* one buffer serves every pipe: each read is consumed before the next */
    *buf = uv_buf_init(p->rbuf, sizeof(p->rbuf));
}

/* ---- lines ------------------------------------------------------------------ */

static void line_out(aos_proc_t *p, int is_err, const char *line, size_t n)
{
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    if (n == 0)
        return;
    if (is_err && p->on_stderr)
        p->on_stderr(p, line, n, p->data);
    json_t *f = p->fields ? json_deep_copy(p->fields) : json_object();
    if (f) {
        json_object_set_new(f, "stream", json_string(is_err ? "stderr" : "stdout"));
        json_object_set_new(f, "pid", json_integer(p->pid));
    }
    aos_log(AOS_LOG_INFO, p->component, f, "%.*s", (int)n, line);
}

/* Splits data into lines for line_out, keeping an incomplete one in b. */
static void lines_feed(aos_proc_t *p, int is_err, aos_buf_t *b, const char *s, size_t len)
{
    const char *end = s + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = (size_t)((nl ? nl : end) - s);
        if (b->len + n > PROC_MAX_LINE) {
            size_t take = PROC_MAX_LINE - b->len;
            aos_buf_append(b, s, take);
            line_out(p, is_err, b->ptr, b->len);
            aos_buf_reset(b);
            s += take;
            continue;
        }
        if (!nl) {
            aos_buf_append(b, s, n);
            break;
        }
        if (b->len) {
            aos_buf_append(b, s, n);
            line_out(p, is_err, b->ptr, b->len);
            aos_buf_reset(b);
        } else {
            line_out(p, is_err, s, n);
        }
        s = nl + 1;
    }
}

static void lines_flush(aos_proc_t *p, int is_err, aos_buf_t *b)
{
    line_out(p, is_err, b->ptr ? b->ptr : "", b->len);
    aos_buf_release(b);
}

static void stream_eof(aos_proc_t *p)
{
    if (!proc_drained(p))
        return;
    if (p->exited)
        proc_finish(p);
}

static void on_out(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    aos_proc_t *p = s->data;
    if (nread > 0) {
        if (p->stdout_lines)
            lines_feed(p, 0, &p->obuf, buf->base, (size_t)nread);
        if (p->on_stdout && !p->finished)
            p->on_stdout(p, buf->base, (size_t)nread, p->data);
        return;
    }
    if (nread == 0)
        return;
    if (p->stdout_lines)
        lines_flush(p, 0, &p->obuf);
    p->out_eof = 1;
    uv_read_stop(s);
    if (!p->exited && p->stop_on_eof)
        aos_proc_stop(p, NULL); /* no stdout, no server */
    stream_eof(p);
}

static void on_err(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    aos_proc_t *p = s->data;
    if (nread < 0) {
        lines_flush(p, 1, &p->ebuf);
        uv_read_stop(s);
        return;
    }
    lines_feed(p, 1, &p->ebuf, buf->base, (size_t)nread);
}

static void on_status(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    aos_proc_t *p = s->data;
    if (nread > 0) {
        if (p->sbuf.len + (size_t)nread <= PROC_MAX_STATUS)
            aos_buf_append(&p->sbuf, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    p->status_eof = 1;
    uv_read_stop(s);
    stream_eof(p);
}

/* ---- the environment ------------------------------------------------------- */

/* What a child inherits from aosd's environment besides its passthrough:
 * enough to find programs, a home, the locale and the time zone. aosd's
 * environment also holds its secrets (AOS_BOOTSTRAP_TOKEN, AOS_MASTER_KEY,
 * ...), so nothing else is inherited. */
static const char *const child_inherits[] = {"PATH", "HOME",   "USER", "LOGNAME", "SHELL", "TERM",
                                             "LANG", "LC_ALL", "TZ",   "TMPDIR",  NULL};

/* 1 if the variable var (a "K=V" string) is named by one of names: "K"
 * (names) or "K=..." (entries). */
static int var_named(const char *var, size_t klen, const char *const *names, int entries)
{
    for (size_t j = 0; names && names[j]; j++)
        if (strncmp(names[j], var, klen) == 0 && names[j][klen] == (entries ? '=' : '\0'))
            return 1;
    return 0;
}

/* The child's environment: the variables of aosd's environment it inherits
 * (never one named AOS_*), then its own "K=V" entries, which win. The
 * strings are borrowed. */
static char **env_build(char *const *own, char *const *passthrough)
{
    size_t n = 0, m = 0, k = 0;
    while (environ && environ[n])
        n++;
    while (own && own[m])
        m++;
    char **env = calloc(n + m + 1, sizeof(*env));
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(environ[i], '=');
        if (!eq || strncmp(environ[i], "AOS_", 4) == 0)
            continue;
        size_t klen = (size_t)(eq - environ[i]);
        if (!var_named(environ[i], klen, child_inherits, 0) &&
            !var_named(environ[i], klen, (const char *const *)passthrough, 0))
            continue;
        if (!var_named(environ[i], klen, (const char *const *)own, 1))
            env[k++] = environ[i];
    }
    for (size_t j = 0; j < m; j++)
        env[k++] = own[j];
    return env;
}

/* ---- spawn ------------------------------------------------------------------ */

int aos_proc_spawn(uv_loop_t *loop, const aos_proc_opts_t *o, aos_proc_t **out, aos_err_t *err)
{
    if (!o->file || !o->argv || !o->argv[0] || !o->on_exit)
        return aos_err_set(err, AOS_EINVAL, "a child needs a program, argv and on_exit");
    aos_proc_t *p = calloc(1, sizeof(*p));
    if (!p || !(p->component = strdup(o->component ? o->component : "proc"))) {
        free(p);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    p->fields = o->log_fields ? json_deep_copy(o->log_fields) : NULL;
    p->on_stdout = o->on_stdout;
    p->on_stderr = o->on_stderr;
    p->on_write_error = o->on_write_error;
    p->on_exit = o->on_exit;
    p->data = o->data;
    p->stdout_lines = o->stdout_lines;
    p->stop_on_eof = o->stop_on_stdout_eof;
    p->kill_after_ms = o->kill_after_ms ? o->kill_after_ms : PROC_KILL_AFTER_MS;
    p->timeout_ms = o->timeout_ms;
    aos_buf_init(&p->obuf, 0);
    aos_buf_init(&p->ebuf, 0);
    aos_buf_init(&p->sbuf, 0);

    aos__proc_spawn_t sp = {0};
    int rc;
    if (o->sandbox) {
        p->sandboxed = 1;
        p->limits = o->sandbox->limits;
        rc = aos__proc_sandbox_prepare(o, &sp, err);
    } else {
        sp.file = o->file;
        sp.argv = (char **)o->argv;
        sp.env = env_build(o->env, o->passthrough);
        sp.cwd = o->cwd;
        rc = sp.env ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
    }
    if (rc) {
        aos__proc_spawn_release(&sp, o->sandbox != NULL);
        json_decref(p->fields);
        free(p->component);
        free(p);
        return rc;
    }

    uv_pipe_init(loop, &p->in, 0);
    uv_pipe_init(loop, &p->out, 0);
    uv_pipe_init(loop, &p->err, 0);
    uv_timer_init(loop, &p->timer);
    uv_timer_init(loop, &p->deadline);
    p->in.data = p->out.data = p->err.data = p->timer.data = p->deadline.data = p->proc.data = p;
    p->handles = 6;
    if (p->sandboxed) {
        uv_pipe_init(loop, &p->status, 0);
        p->status.data = p;
        p->handles++;
    }

    uv_stdio_container_t stdio[7] = {
        {.flags = o->stdin_pipe ? UV_CREATE_PIPE | UV_READABLE_PIPE : UV_IGNORE,
         .data.stream = (uv_stream_t *)&p->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&p->err},
    };
    int nstdio = 3;
    if (p->sandboxed) {
        stdio[3] = (uv_stdio_container_t){.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE,
                                          .data.stream = (uv_stream_t *)&p->status};
        for (int i = 0; i < AOS__PROC_SANDBOX_FDS; i++)
            stdio[4 + i] = (uv_stdio_container_t){.flags = UV_INHERIT_FD, .data.fd = sp.fds[i]};
        nstdio = 4 + AOS__PROC_SANDBOX_FDS;
    }
    uv_process_options_t po = {
        .exit_cb = on_proc_exit,
        .file = sp.file,
        .args = sp.argv,
        .env = sp.env,
        .cwd = sp.cwd,
        .flags = UV_PROCESS_DETACHED, /* own session and process group, killed as one */
        .stdio_count = nstdio,
        .stdio = stdio,
    };
    if (sp.uid) {
        po.flags |= UV_PROCESS_SETUID | UV_PROCESS_SETGID;
        po.uid = (uv_uid_t)sp.uid;
        po.gid = (uv_gid_t)sp.gid;
    }
    p->started_ms = uv_now(loop);
    rc = uv_spawn(loop, &p->proc, &po);
    aos__proc_spawn_release(&sp, p->sandboxed);
    if (rc != 0) {
        aos_err_set(err, AOS_EIO, "unable to start '%.100s': %s", o->file, uv_strerror(rc));
        p->finished = 1;
        p->on_exit = NULL;
        proc_close_handles(p);
        return AOS_EIO;
    }
    p->pid = p->proc.pid;
    if (!o->stdin_pipe) {
        p->in_closed = 1;
        uv_close((uv_handle_t *)&p->in, proc_handle_closed);
    }
    uv_read_start((uv_stream_t *)&p->out, on_alloc, on_out);
    uv_read_start((uv_stream_t *)&p->err, on_alloc, on_err);
    if (p->sandboxed)
        uv_read_start((uv_stream_t *)&p->status, on_alloc, on_status);
    if (p->timeout_ms)
        uv_timer_start(&p->deadline, on_deadline, p->timeout_ms, 0);
    *out = p;
    return 0;
}

/* ---- stdin ------------------------------------------------------------------ */

static void on_write(uv_write_t *req, int status)
{
    proc_write_t *w = (proc_write_t *)req;
    aos_proc_t *p = req->handle->data;
    free(w->data);
    free(w);
    if (status >= 0 || status == UV_ECANCELED) /* canceled: the pipe is being closed */
        return;
    if (p->on_write_error && !p->finished)
        p->on_write_error(p, status, p->data);
    else
        aos_proc_stop(p, NULL);
}

int aos_proc_write(aos_proc_t *p, char *data, size_t len)
{
    if (p->in_closed || p->exited || p->killing || p->finished) {
        free(data);
        return AOS_EUNAVAIL;
    }
    proc_write_t *w = malloc(sizeof(*w));
    if (!w) {
        free(data);
        return AOS_ENOMEM;
    }
    w->data = data;
    uv_buf_t b = uv_buf_init(data, (unsigned)len);
    int rc = uv_write(&w->req, (uv_stream_t *)&p->in, &b, 1, on_write);
    if (rc != 0) {
        free(data);
        free(w);
        return AOS_EIO;
    }
    return 0;
}

size_t aos_proc_write_queue(const aos_proc_t *p)
{
    return p->in_closed ? 0 : uv_stream_get_write_queue_size((const uv_stream_t *)&p->in);
}

int aos_proc_pid(const aos_proc_t *p)
{
    return p->exited ? 0 : p->pid;
}

int aos_proc_exited(const aos_proc_t *p)
{
    return p->exited;
}

int aos_proc_stopping(const aos_proc_t *p)
{
    return p->killing;
}

uint64_t aos_proc_started_ms(const aos_proc_t *p)
{
    return p->started_ms;
}

/* ---- back-off --------------------------------------------------------------- */

uint32_t aos_proc_backoff_next(aos_proc_backoff_t *b, uint64_t started_ms, uint64_t now_ms)
{
    uint32_t lo = b->min_ms ? b->min_ms : 100, hi = b->max_ms >= lo ? b->max_ms : lo;
    if (b->stable_ms && now_ms >= started_ms && now_ms - started_ms >= b->stable_ms) {
        b->cur_ms = 0; /* it ran long enough: start over */
        b->failures = 0;
    }
    uint64_t next = b->cur_ms ? (uint64_t)b->cur_ms * 2 : lo;
    if (next > hi)
        next = hi;
    b->cur_ms = (uint32_t)next;
    b->failures++;
    /* jitter: the delay is taken from [3/4, 1] of it, so replicas that died
     * together do not restart together */
    uint64_t x = b->rng ? b->rng : 0x9E3779B97F4A7C15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b->rng = x;
    uint64_t quarter = next / 4;
    return (uint32_t)(next - (quarter ? x % (quarter + 1) : 0));
}
