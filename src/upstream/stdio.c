/* stdio.c - the stdio transport: the server is a child process speaking
 * newline-delimited JSON-RPC on its stdin/stdout; its stderr lines go to the
 * log.
 *
 * Each spawn is one up_child_t around an aos_proc_t (src/proc: its own
 * session and process group, pipes, stderr lines logged, SIGTERM then
 * SIGKILL, the environment rules), so a dying child can finish closing
 * while its successor already runs; the upstream only listens to the child
 * in up->child. A child counts as gone once the process module says it
 * finished (exited and stdout at EOF, or 200 ms after the exit).
 *
 * Messages to the child are serialised (aos_rpc_dump) straight into one
 * buffer. A request to a ready child is written straight from its method
 * and params, with the trace context spliced into params._meta as it is
 * written (no message object is built, copied and freed per call), and the
 * buffer goes to the child at once: the child starts on the first request
 * of a turn while aosd still reads the others (when it is busy it reads
 * what has piled up in one read anyway). Other messages (initialize,
 * notifications, cancellations, answers to the child's own requests) are
 * written once per turn of the loop (by a check handle after the poll
 * phase, and a prepare handle before the loop blocks, so that messages
 * made in any phase go out before it sleeps), or with the next request.
 * Its stdout arrives 64 KiB at a time and is split into lines in place. */
#include "upstream/internal.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf/buf.h"
#include "jsonrpc/jsonrpc.h"
#include "log/log.h"
#include "proc/proc.h"
#include "utf8/utf8.h"

#define CHILD_MAX_WRITE_QUEUE (64u * 1024 * 1024) /* unread stdin: the child is stuck */

struct up_child_s {
    aos_upstream_t *up;  /* holds a reference until the child and handles are gone */
    aos_proc_t *proc;    /* NULL once it finished */
    uv_check_t flush;    /* writes wbuf after the poll phase */
    uv_prepare_t flush2; /* ... and before the loop blocks */
    aos_buf_t wbuf;      /* messages for stdin not yet handed to aos_proc_write */
    int handles;         /* open handles, and 1 for the process */
    int pid;
    aos_buf_t obuf;   /* incomplete stdout line */
    int skipping;     /* dropping the rest of an over-long stdout line */
    unsigned garbage; /* stdout lines that were not JSON */
};

static void child_unref(up_child_t *ch)
{
    if (--ch->handles > 0)
        return;
    aos_upstream_t *up = ch->up;
    aos_buf_release(&ch->obuf);
    aos_buf_release(&ch->wbuf);
    free(ch);
    aos__up_unref(up);
}

static void child_handle_closed(uv_handle_t *h)
{
    child_unref(h->data);
}

static void child_write_failed(aos_proc_t *p, int rc, void *data);

static void child_kill(up_child_t *ch)
{
    if (ch->proc)
        aos_proc_stop(ch->proc, NULL);
}

/* The child is gone: release it and, if it was the live one, tell the core. */
static void child_on_exit(aos_proc_t *p, const aos_proc_exit_t *ex, void *data)
{
    up_child_t *ch = data;
    ch->proc = NULL;
    aos__up_log(ch->up, ex->term_signal && !ex->reason ? AOS_LOG_WARN : AOS_LOG_INFO,
                "upstream '%s': pid %d exited (code %lld, signal %d)", ch->up->name, ch->pid,
                (long long)ex->exit_status, ex->term_signal);
    uv_close((uv_handle_t *)&ch->flush, child_handle_closed);
    uv_close((uv_handle_t *)&ch->flush2, child_handle_closed);
    aos_upstream_t *up = ch->up;
    int current = up->child == ch;
    if (current)
        up->child = NULL;
    if (current) {
        char why[96];
        if (ex->term_signal)
            snprintf(why, sizeof(why), "upstream exited (signal %d)", ex->term_signal);
        else
            snprintf(why, sizeof(why), "upstream exited (code %lld)", (long long)ex->exit_status);
        aos__up_conn_lost(up, why);
    }
    child_unref(ch);
}
/* ---- stdout: one JSON-RPC message per line ------------------------------ */

static void handle_line(up_child_t *ch, const char *line, size_t n)
{
    aos_upstream_t *up = ch->up;
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    if (n == 0)
        return;
    /* a plain answer to a caller that takes it as text: no parse */
    if (aos__up_dispatch_raw(up, line, n))
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

static void on_out(aos_proc_t *p, const char *buf, size_t n, void *data)
{
    out_feed(data, buf, n);
}

/* ---- transport entry points --------------------------------------------- */

int aos__up_stdio_connect(aos_upstream_t *up, char *err, size_t errlen)
{
    up_child_t *ch = calloc(1, sizeof(*ch));
    size_t nargs = 0;
    while (up->args && up->args[nargs])
        nargs++;
    char **argv = calloc(nargs + 2, sizeof(*argv));
    if (!ch || !argv) {
        free(ch);
        free(argv);
        snprintf(err, errlen, "out of memory");
        return AOS_ENOMEM;
    }
    argv[0] = up->command;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = up->args[i];

    ch->up = up;
    aos_buf_init(&ch->obuf, 0);
    aos_buf_init(&ch->wbuf, 0);
    json_t *fields = json_pack("{s:s}", "server", up->name);
    aos_proc_opts_t o = {
        .file = up->command,
        .argv = argv,
        .env = up->env,
        .passthrough = up->passthrough,
        .cwd = up->cwd,
        .stdin_pipe = 1,
        .stop_on_stdout_eof = 1, /* no stdout, no server */
        .component = "upstream",
        .log_fields = fields,
        .on_stdout = on_out,
        .on_write_error = child_write_failed,
        .on_exit = child_on_exit,
        .data = ch,
    };
    aos_err_t perr = {0, ""};
    int rc = aos_proc_spawn(up->loop, &o, &ch->proc, &perr);
    free(argv);
    json_decref(fields);
    if (rc != 0) {
        aos_buf_release(&ch->obuf);
        aos_buf_release(&ch->wbuf);
        free(ch);
        snprintf(err, errlen, "%s", aos_err_msg(&perr));
        return rc == AOS_ENOMEM ? AOS_ENOMEM : AOS_EUPSTREAM;
    }
    uv_check_init(up->loop, &ch->flush);
    uv_prepare_init(up->loop, &ch->flush2);
    ch->flush.data = ch->flush2.data = ch;
    ch->handles = 3; /* flush, flush2, the process */
    up->refs++;
    ch->pid = aos_proc_pid(ch->proc);
    up->child = ch;
    aos__up_log(up, AOS_LOG_INFO, "upstream '%s': started '%s' as pid %d", up->name, up->command,
                ch->pid);
    return 0;
}

static int child_gone(const up_child_t *ch)
{
    return !ch->proc || aos_proc_exited(ch->proc) || aos_proc_stopping(ch->proc);
}

static void child_write_failed(aos_proc_t *p, int rc, void *data)
{
    up_child_t *ch = data;
    /* its stdin is gone: a child that cannot be asked anything is stopped,
     * and its exit fails what was pending (a child that closed its stdin
     * and lived on would otherwise leave every request to its timeout) */
    if (!child_gone(ch))
        aos__up_log(ch->up, AOS_LOG_WARN, "upstream '%s': writing to pid %d failed: %s",
                    ch->up->name, ch->pid, uv_strerror(rc));
    child_kill(ch);
}

/* Hands what wbuf holds to one write. */
static void child_flush(up_child_t *ch)
{
    uv_check_stop(&ch->flush);
    uv_prepare_stop(&ch->flush2);
    if (!ch->wbuf.len)
        return;
    if (!ch->proc) {
        aos_buf_reset(&ch->wbuf);
        return;
    }
    size_t n;
    char *data = aos_buf_detach(&ch->wbuf, &n);
    int rc = aos_proc_write(ch->proc, data, n); /* takes data */
    if (rc == AOS_ENOMEM)
        return; /* those requests time out */
    if (rc != 0)
        child_write_failed(ch->proc, UV_EPIPE, ch);
}

static void on_flush(uv_check_t *h)
{
    child_flush(h->data);
}

static void on_flush2(uv_prepare_t *h)
{
    child_flush(h->data);
}

/* Appends "key":value to b, a comma first unless *first. */
static int put_member(aos_buf_t *b, int *first, const char *k, size_t klen, const json_t *v)
{
    int rc;
    if ((!*first && (rc = aos_buf_append(b, ",", 1))) || (rc = aos_buf_json_str(b, k, klen)) ||
        (rc = aos_buf_append(b, ":", 1)) || (rc = aos_buf_json(b, v)))
        return rc;
    *first = 0;
    return 0;
}

/* Appends "key":"string" to b, a comma first unless *first. */
static int put_str_member(aos_buf_t *b, int *first, const char *k, const char *s)
{
    int rc;
    if ((!*first && (rc = aos_buf_append(b, ",", 1))) || (rc = aos_buf_json_str(b, k, strlen(k))) ||
        (rc = aos_buf_append(b, ":", 1)) || (rc = aos_buf_json_str(b, s, strlen(s))))
        return rc;
    *first = 0;
    return 0;
}

/* Appends params (an object or NULL) with the trace context in its _meta:
 * the members of params but _meta, then _meta with the members of the old
 * one but traceparent and tracestate, then those two (upstream.c's
 * with_trace, the same values). */
static int put_traced_params(aos_buf_t *b, const json_t *params, const char *traceparent,
                             const char *tracestate)
{
    const json_t *old = json_object_get(params, "_meta");
    const char *k;
    size_t klen;
    json_t *v;
    int rc, first = 1;
    if ((rc = aos_buf_append(b, "{", 1)))
        return rc;
    if (params)
        json_object_keylen_foreach((json_t *)params, k, klen, v)
        {
            if (!(klen == 5 && memcmp(k, "_meta", 5) == 0) &&
                (rc = put_member(b, &first, k, klen, v)))
                return rc;
        }
    if ((!first && (rc = aos_buf_append(b, ",", 1))) || (rc = aos_buf_puts(b, "\"_meta\":{")))
        return rc;
    first = 1;
    if (old)
        json_object_keylen_foreach((json_t *)old, k, klen, v)
        {
            if (!(klen == 11 && memcmp(k, "traceparent", 11) == 0) &&
                !(klen == 10 && memcmp(k, "tracestate", 10) == 0) &&
                (rc = put_member(b, &first, k, klen, v)))
                return rc;
        }
    if ((rc = put_str_member(b, &first, "traceparent", traceparent)) ||
        (tracestate && (rc = put_str_member(b, &first, "tracestate", tracestate))))
        return rc;
    return aos_buf_append(b, "}}", 2);
}

int aos__up_stdio_send(aos_upstream_t *up, json_t *msg)
{
    up_child_t *ch = up->child;
    if (!ch || child_gone(ch))
        return AOS_EUNAVAIL;
    if (aos_proc_write_queue(ch->proc) + ch->wbuf.len > CHILD_MAX_WRITE_QUEUE)
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

int aos__up_stdio_request(aos_upstream_t *up, const up_pending_t *p, const char *method,
                          const json_t *params)
{
    up_child_t *ch = up->child;
    if (!ch || child_gone(ch))
        return AOS_EUNAVAIL;
    if (aos_proc_write_queue(ch->proc) + ch->wbuf.len > CHILD_MAX_WRITE_QUEUE)
        return AOS_EUPSTREAM;
    size_t mlen = strlen(method);
    if (!aos_utf8_valid(method, mlen))
        return AOS_ENOMEM; /* as json_string() refusing it did */
    /* the trace goes where with_trace puts it: into an object's _meta
     * that is an object or absent, else params go as they are */
    const json_t *meta = params ? json_object_get(params, "_meta") : NULL;
    int traced =
        p->traceparent[0] && (!params || json_is_object(params)) && (!meta || json_is_object(meta));
    aos_buf_t *b = &ch->wbuf;
    size_t was = b->len;
    if (aos_buf_puts(b, "{\"jsonrpc\":\"2.0\",\"id\":") || aos_buf_int(b, (int64_t)p->id) ||
        aos_buf_puts(b, ",\"method\":") || aos_buf_json_str(b, method, mlen) ||
        ((traced || params) && aos_buf_puts(b, ",\"params\":")) ||
        (traced && put_traced_params(b, params, p->traceparent, p->tracestate)) ||
        (!traced && params && aos_buf_json(b, params)) || aos_buf_append(b, "}\n", 2)) {
        b->len = was; /* nothing of it goes */
        if (b->ptr)
            b->ptr[was] = '\0';
        return AOS_ENOMEM; /* as aos__up_stdio_send */
    }
    child_flush(ch); /* at once: the child may be idle (see the top) */
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
    return up->child && up->child->proc ? aos_proc_pid(up->child->proc) : 0;
}
