/* stdio.c - the stdio transport: the server is a child process speaking
 * newline-delimited JSON-RPC on its stdin/stdout; its stderr lines go to the
 * log.
 *
 * Each spawn is one up_child_t with its own pipes and timer, so a dying
 * child can finish closing while its successor already runs; the upstream
 * only listens to the child in up->child. The child is started in its own
 * process group (setsid), so stopping it also stops whatever it started.
 * A child counts as gone once it has exited and its stdout reached EOF (or
 * 200 ms passed after the exit, in case a grandchild keeps stdout open).
 *
 * Messages to the child are serialised (aos_rpc_dump) straight into one
 * buffer and written once per turn of the loop (by a check handle after
 * the poll phase, and a prepare handle before the loop blocks, so that
 * messages made in any phase go out before it sleeps): the requests of
 * every client that arrived together reach the child in one write, and
 * the child reads them in one read. Its stdout is read 64 KiB at a time
 * and split into lines in place. */
#include "upstream/internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"
#include "jsonrpc/jsonrpc.h"
#include "log/log.h"

#define CHILD_KILL_AFTER_MS   2000
#define CHILD_EXIT_GRACE_MS   200
#define CHILD_MAX_STDERR      4096                /* longer stderr lines are split */
#define CHILD_MAX_WRITE_QUEUE (64u * 1024 * 1024) /* unread stdin: the child is stuck */

extern char **environ;

struct up_child_s {
    aos_upstream_t *up; /* holds a reference until every handle is closed */
    uv_process_t proc;
    uv_pipe_t in, out, err;
    uv_timer_t timer;    /* SIGKILL escalation, then exit grace */
    uv_check_t flush;    /* writes wbuf after the poll phase */
    uv_prepare_t flush2; /* ... and before the loop blocks */
    aos_buf_t wbuf;      /* messages for stdin not yet handed to uv_write */
    int handles;         /* open handles */
    int pid;
    aos_buf_t obuf;   /* incomplete stdout line */
    aos_buf_t ebuf;   /* incomplete stderr line */
    int skipping;     /* dropping the rest of an over-long stdout line */
    unsigned garbage; /* stdout lines that were not JSON */
    int exited, out_eof, killing, finished;
    int64_t exit_status;
    int term_signal;
    char rbuf[64 * 1024];
};

typedef struct {
    uv_write_t req;
    char *data;
} child_write_t;

static void child_handle_closed(uv_handle_t *h)
{
    up_child_t *ch = h->data;
    if (--ch->handles > 0)
        return;
    aos_upstream_t *up = ch->up;
    aos_buf_release(&ch->obuf);
    aos_buf_release(&ch->ebuf);
    aos_buf_release(&ch->wbuf);
    free(ch);
    aos__up_unref(up);
}

static void child_close_handles(up_child_t *ch)
{
    uv_handle_t *hs[] = {(uv_handle_t *)&ch->in,    (uv_handle_t *)&ch->out,
                         (uv_handle_t *)&ch->err,   (uv_handle_t *)&ch->timer,
                         (uv_handle_t *)&ch->flush, (uv_handle_t *)&ch->flush2,
                         (uv_handle_t *)&ch->proc};
    for (size_t i = 0; i < sizeof(hs) / sizeof(hs[0]); i++)
        if (!uv_is_closing(hs[i]))
            uv_close(hs[i], child_handle_closed);
}

static void child_signal(up_child_t *ch, int sig)
{
    if (ch->pid <= 0)
        return;
    if (kill(-ch->pid, sig) != 0 && !ch->exited)
        uv_process_kill(&ch->proc, sig);
}

/* The child is gone: release it and, if it was the live one, tell the core. */
static void child_finish(up_child_t *ch)
{
    if (ch->finished)
        return;
    ch->finished = 1;
    child_signal(ch, SIGKILL); /* leftovers of its process group */
    child_close_handles(ch);
    aos_upstream_t *up = ch->up;
    if (up->child != ch)
        return;
    up->child = NULL;
    char why[96];
    if (ch->term_signal)
        snprintf(why, sizeof(why), "upstream exited (signal %d)", ch->term_signal);
    else
        snprintf(why, sizeof(why), "upstream exited (code %lld)", (long long)ch->exit_status);
    aos__up_conn_lost(up, why);
}

static void on_kill_timer(uv_timer_t *t)
{
    up_child_t *ch = t->data;
    if (ch->exited) {
        child_finish(ch); /* exit grace elapsed */
        return;
    }
    aos__up_log(ch->up, AOS_LOG_WARN, "upstream '%s': pid %d ignored SIGTERM, killing it",
                ch->up->name, ch->pid);
    child_signal(ch, SIGKILL);
}

static void child_kill(up_child_t *ch)
{
    if (ch->exited || ch->killing)
        return;
    ch->killing = 1;
    child_signal(ch, SIGTERM);
    uv_timer_start(&ch->timer, on_kill_timer, CHILD_KILL_AFTER_MS, 0);
}

static void child_on_exit(uv_process_t *p, int64_t status, int sig)
{
    up_child_t *ch = p->data;
    ch->exited = 1;
    ch->exit_status = status;
    ch->term_signal = sig;
    aos__up_log(ch->up, sig && !ch->killing ? AOS_LOG_WARN : AOS_LOG_INFO,
                "upstream '%s': pid %d exited (code %lld, signal %d)", ch->up->name, ch->pid,
                (long long)status, sig);
    if (ch->out_eof)
        child_finish(ch);
    else
        uv_timer_start(&ch->timer, on_kill_timer, CHILD_EXIT_GRACE_MS, 0);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    up_child_t *ch = h->data;
    (void)hint;
    /* one buffer serves both pipes: each read is consumed before the next */
    *buf = uv_buf_init(ch->rbuf, sizeof(ch->rbuf));
}

/* ---- stdout: one JSON-RPC message per line ------------------------------ */

static void handle_line(up_child_t *ch, const char *line, size_t n)
{
    aos_upstream_t *up = ch->up;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;
    json_error_t jerr;
    json_t *msg = json_loadb(line, n, JSON_ALLOW_NUL, &jerr);
    if (!msg) {
        ch->garbage++;
        if (ch->garbage <= 5 || ch->garbage % 1000 == 0)
            aos__up_log(up, AOS_LOG_WARN,
                        "upstream '%s': ignoring a stdout line that is not JSON (%zu bytes, "
                        "%u so far): %.*s",
                        up->name, n, ch->garbage, (int)(n < 120 ? n : 120), line);
        return;
    }
    aos__up_dispatch(up, msg);
    json_decref(msg);
}

static int child_current(const up_child_t *ch)
{
    return ch->up->child == ch && !ch->up->closing;
}

static void too_long(up_child_t *ch)
{
    aos__up_log(ch->up, AOS_LOG_WARN, "upstream '%s': stdout line over %u bytes, skipped",
                ch->up->name, UP_MAX_MESSAGE);
    aos_buf_release(&ch->obuf);
    ch->skipping = 1;
}

static void out_feed(up_child_t *ch, const char *p, size_t n)
{
    const char *end = p + n;
    while (p < end && child_current(ch)) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (ch->skipping) {
            if (nl)
                ch->skipping = 0;
        } else if (ch->obuf.len + len > UP_MAX_MESSAGE) {
            too_long(ch);
            if (nl)
                ch->skipping = 0;
        } else if (!nl) {
            if (aos_buf_append(&ch->obuf, p, len) != 0)
                too_long(ch);
        } else if (ch->obuf.len > 0) {
            if (aos_buf_append(&ch->obuf, p, len) == 0) {
                handle_line(ch, ch->obuf.ptr, ch->obuf.len);
                /* a huge line's memory is not worth keeping */
                if (ch->obuf.cap > 1024 * 1024)
                    aos_buf_release(&ch->obuf);
                else
                    aos_buf_reset(&ch->obuf);
            } else {
                aos_buf_release(&ch->obuf);
            }
        } else {
            handle_line(ch, p, len); /* the common case: no copy */
        }
        p = nl ? nl + 1 : end;
    }
}

static void on_out(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    up_child_t *ch = s->data;
    if (nread > 0) {
        out_feed(ch, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    ch->out_eof = 1;
    uv_read_stop(s);
    if (ch->exited)
        child_finish(ch);
    else
        child_kill(ch); /* no stdout, no server */
}

/* ---- stderr: log lines ---------------------------------------------------- */

static void log_stderr(up_child_t *ch, const char *line, size_t n)
{
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == '\n'))
        n--;
    if (n == 0)
        return;
    aos_log(
        AOS_LOG_INFO, "upstream",
        json_pack("{s:s, s:s, s:i}", "server", ch->up->name, "stream", "stderr", "pid", ch->pid),
        "%.*s", (int)n, line);
}

static void on_err(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    up_child_t *ch = s->data;
    if (nread < 0) {
        log_stderr(ch, ch->ebuf.ptr, ch->ebuf.len);
        aos_buf_release(&ch->ebuf);
        uv_read_stop(s);
        return;
    }
    const char *p = buf->base, *end = p + nread;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = (size_t)((nl ? nl : end) - p);
        if (ch->ebuf.len + len > CHILD_MAX_STDERR) {
            size_t take = CHILD_MAX_STDERR - ch->ebuf.len;
            aos_buf_append(&ch->ebuf, p, take);
            log_stderr(ch, ch->ebuf.ptr, ch->ebuf.len);
            aos_buf_reset(&ch->ebuf);
            p += take;
            continue;
        }
        if (!nl) {
            aos_buf_append(&ch->ebuf, p, len);
            break;
        }
        if (ch->ebuf.len) {
            aos_buf_append(&ch->ebuf, p, len);
            log_stderr(ch, ch->ebuf.ptr, ch->ebuf.len);
            aos_buf_reset(&ch->ebuf);
        } else {
            log_stderr(ch, p, len);
        }
        p = nl + 1;
    }
}

/* ---- transport entry points --------------------------------------------- */

/* What a child inherits from aosd's environment besides its entry's
 * env_passthrough: enough to find programs, a home, the locale and the time
 * zone. aosd's environment also holds its secrets (AOS_BOOTSTRAP_TOKEN,
 * AOS_MASTER_KEY, ...), so nothing else is inherited. */
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
static char **env_build(char **own, char **passthrough)
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

int aos__up_stdio_connect(aos_upstream_t *up, char *err, size_t errlen)
{
    up_child_t *ch = calloc(1, sizeof(*ch));
    size_t nargs = 0;
    while (up->args && up->args[nargs])
        nargs++;
    char **argv = calloc(nargs + 2, sizeof(*argv));
    char **env = env_build(up->env, up->passthrough);
    if (!ch || !argv || !env) {
        free(ch);
        free(argv);
        free(env);
        snprintf(err, errlen, "out of memory");
        return AOS_ENOMEM;
    }
    argv[0] = up->command;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = up->args[i];

    ch->up = up;
    aos_buf_init(&ch->obuf, 0);
    aos_buf_init(&ch->ebuf, 0);
    aos_buf_init(&ch->wbuf, 0);
    uv_pipe_init(up->loop, &ch->in, 0);
    uv_pipe_init(up->loop, &ch->out, 0);
    uv_pipe_init(up->loop, &ch->err, 0);
    uv_timer_init(up->loop, &ch->timer);
    uv_check_init(up->loop, &ch->flush);
    uv_prepare_init(up->loop, &ch->flush2);
    ch->in.data = ch->out.data = ch->err.data = ch->timer.data = ch->proc.data = ch;
    ch->flush.data = ch->flush2.data = ch;
    ch->handles = 7;
    up->refs++;

    uv_stdio_container_t stdio[3] = {
        {.flags = UV_CREATE_PIPE | UV_READABLE_PIPE, .data.stream = (uv_stream_t *)&ch->in},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&ch->out},
        {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&ch->err},
    };
    uv_process_options_t o = {
        .exit_cb = child_on_exit,
        .file = up->command,
        .args = argv,
        .env = env,
        .cwd = up->cwd,
        .flags = UV_PROCESS_DETACHED, /* own process group, killed as one */
        .stdio_count = 3,
        .stdio = stdio,
    };
    int rc = uv_spawn(up->loop, &ch->proc, &o);
    free(argv);
    free(env);
    if (rc != 0) {
        snprintf(err, errlen, "unable to start '%.100s': %s", up->command, uv_strerror(rc));
        ch->finished = 1;
        child_close_handles(ch);
        return AOS_EUPSTREAM;
    }
    ch->pid = ch->proc.pid;
    uv_read_start((uv_stream_t *)&ch->out, on_alloc, on_out);
    uv_read_start((uv_stream_t *)&ch->err, on_alloc, on_err);
    up->child = ch;
    aos__up_log(up, AOS_LOG_INFO, "upstream '%s': started '%s' as pid %d", up->name, up->command,
                ch->pid);
    return 0;
}

static void child_write_failed(up_child_t *ch, int rc)
{
    /* its stdin is gone: a child that cannot be asked anything is stopped,
     * and its exit fails what was pending (a child that closed its stdin
     * and lived on would otherwise leave every request to its timeout) */
    if (!ch->exited && !ch->killing)
        aos__up_log(ch->up, AOS_LOG_WARN, "upstream '%s': writing to pid %d failed: %s",
                    ch->up->name, ch->pid, uv_strerror(rc));
    child_kill(ch);
}

static void on_write(uv_write_t *req, int status)
{
    child_write_t *w = (child_write_t *)req;
    up_child_t *ch = req->handle->data;
    free(w->data);
    free(w);
    if (status < 0 && status != UV_ECANCELED) /* canceled: the pipe is being closed */
        child_write_failed(ch, status);
}

/* Hands what wbuf holds to one uv_write. */
static void child_flush(up_child_t *ch)
{
    uv_check_stop(&ch->flush);
    uv_prepare_stop(&ch->flush2);
    if (!ch->wbuf.len)
        return;
    child_write_t *w = malloc(sizeof(*w));
    if (!w) {
        aos_buf_reset(&ch->wbuf); /* those requests time out */
        return;
    }
    size_t n;
    w->data = aos_buf_detach(&ch->wbuf, &n);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)n);
    int rc = uv_write(&w->req, (uv_stream_t *)&ch->in, &b, 1, on_write);
    if (rc != 0) {
        free(w->data);
        free(w);
        child_write_failed(ch, rc);
    }
}

static void on_flush(uv_check_t *h)
{
    child_flush(h->data);
}

static void on_flush2(uv_prepare_t *h)
{
    child_flush(h->data);
}

int aos__up_stdio_send(aos_upstream_t *up, json_t *msg)
{
    up_child_t *ch = up->child;
    if (!ch || ch->exited || ch->killing)
        return AOS_EUNAVAIL;
    if (uv_stream_get_write_queue_size((uv_stream_t *)&ch->in) + ch->wbuf.len >
        CHILD_MAX_WRITE_QUEUE)
        return AOS_EUPSTREAM;
    /* compact output escapes newlines inside strings: one message, one line */
    size_t was = ch->wbuf.len;
    if (aos_rpc_dump(msg, &ch->wbuf) != 0 || aos_buf_append(&ch->wbuf, "\n", 1) != 0) {
        ch->wbuf.len = was; /* nothing of it goes */
        if (ch->wbuf.ptr)
            ch->wbuf.ptr[was] = '\0';
        return AOS_ENOMEM;
    }
    if (!uv_is_active((uv_handle_t *)&ch->flush)) {
        uv_check_start(&ch->flush, on_flush);
        uv_prepare_start(&ch->flush2, on_flush2);
    }
    return 0;
}

void aos__up_stdio_disconnect(aos_upstream_t *up)
{
    up_child_t *ch = up->child;
    if (!ch)
        return;
    up->child = NULL; /* its end is no longer news */
    child_kill(ch);
}

void aos__up_stdio_close(aos_upstream_t *up)
{
    aos__up_stdio_disconnect(up);
}

int aos__up_stdio_pid(const aos_upstream_t *up)
{
    return up->child && !up->child->exited ? up->child->pid : 0;
}
