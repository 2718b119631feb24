/* stdio_ceiling.c - the throughput ceiling of a stdio MCP server with no
 * gateway in front of it.
 *
 * Spawns the server (default `tests/tools/mcp-server.sh everything` of the
 * source tree it was built from, found through __FILE__), speaks
 * newline-delimited JSON-RPC to it over its stdin and stdout (initialize,
 * notifications/initialized), then keeps --inflight
 * `tools/call echo {"message":"hello"}` requests outstanding, closed loop,
 * for --warmup seconds (not counted) and --seconds seconds (measured).
 *
 * Every response is parsed with jansson and checked: a known id, a "result"
 * whose content[0].text is "Echo: hello". Latency is from the write of the
 * request to the parse of its response, counted in a 1-microsecond
 * histogram. Requests produced while handling one read are written to the
 * pipe in one uv_write, as a gateway multiplexing many clients onto one
 * child would do.
 *
 * This is the number bench/gateway/run.sh divides aosd's
 * /mcp/servers/everything throughput by: a gateway that adds nothing reaches
 * it. The last line printed is
 *   stdio_ceiling: RPS calls/s, p50 X ms, p99 Y ms
 * Exit status: 0 if every response was valid, 1 otherwise, 2 on usage error.
 */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "../common.h"
#include "buf/buf.h"

#define LINE_MAX_BYTES (1u << 20) /* a server line longer than this is an error */
#define HIST_US        1000000u   /* histogram range: 1 s in 1 us buckets, then overflow */
#define STALL_MS       10000      /* no response for this long: give up */

enum phase { PH_INIT, PH_WARMUP, PH_MEASURE, PH_DRAIN, PH_DONE };

struct slot {
    uint64_t id;      /* JSON-RPC id of the request in flight, 0 = free */
    uint64_t sent_ns; /* uv_hrtime() when it was queued for writing */
};

struct bench {
    /* configuration */
    double seconds;
    double warmup;
    int inflight;
    char *argv[4]; /* backend command, argument, NULL; argv[0] owned by main */

    /* libuv handles */
    uv_loop_t *loop;
    uv_process_t proc;
    uv_pipe_t to_child;   /* the child's stdin */
    uv_pipe_t from_child; /* the child's stdout */
    uv_timer_t phase_timer;
    uv_timer_t stall_timer;
    uv_timer_t kill_timer; /* armed by close_all if the child outlives its stdin */
    int kill_armed;
    int child_exited;
    char rbuf[64 * 1024]; /* read buffer: one read at a time */

    /* protocol state */
    enum phase phase;
    aos_buf_t line; /* partial line read from the child */
    aos_buf_t wbuf; /* requests not yet handed to uv_write */
    struct slot *slots;
    uint64_t next_seq;
    int outstanding;

    /* results */
    uint64_t t0_ns, t1_ns; /* measured window */
    uint64_t measured;     /* valid responses inside the window */
    uint64_t total_ok;
    uint64_t errors;
    uint64_t server_requests; /* requests from the server, answered with an error */
    double cpu0, cpu1;        /* child's CPU seconds at the window's edges, -1 unknown */
    uint32_t *hist;           /* HIST_US + 1 buckets */
    int failed;               /* fatal: protocol or process error */
};

struct write_req {
    uv_write_t req;
    char *data; /* owned; freed in on_write */
};

static void fail(struct bench *b, const char *what, const char *detail)
{
    fprintf(stderr, "stdio_ceiling: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    b->failed = 1;
    b->phase = PH_DONE;
}

static void close_all(struct bench *b);

static void on_write(uv_write_t *req, int status)
{
    struct write_req *w = (struct write_req *)req;
    struct bench *b = req->data;

    if (status < 0 && b->phase != PH_DONE) {
        fail(b, "write to child failed", uv_strerror(status));
        close_all(b);
    }
    free(w->data);
    free(w);
}

static void flush_writes(struct bench *b)
{
    struct write_req *w;
    uv_buf_t ub;
    size_t len;
    int rc;

    if (b->wbuf.len == 0 || b->phase == PH_DONE)
        return;
    w = malloc(sizeof(*w));
    if (w == NULL || (w->data = aos_buf_detach(&b->wbuf, &len)) == NULL) {
        free(w);
        fail(b, "out of memory", NULL);
        close_all(b);
        return;
    }
    w->req.data = b;
    ub = uv_buf_init(w->data, (unsigned int)len);
    rc = uv_write(&w->req, (uv_stream_t *)&b->to_child, &ub, 1, on_write);
    if (rc < 0) {
        free(w->data);
        free(w);
        fail(b, "uv_write", uv_strerror(rc));
        close_all(b);
    }
}

/* Appends one JSON-RPC message (and its newline) to the write batch. */
static int queue_message(struct bench *b, json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    int rc;

    json_decref(msg);
    if (text == NULL)
        return -1;
    rc = aos_buf_puts(&b->wbuf, text);
    free(text);
    if (rc == 0)
        rc = aos_buf_append(&b->wbuf, "\n", 1);
    return rc;
}

static int send_call(struct bench *b, int slot)
{
    /* id = seq * inflight + slot + 1: the slot is recovered from the id, and
     * 0 never appears (the initialize request uses it). */
    uint64_t id = b->next_seq++ * (uint64_t)b->inflight + (uint64_t)slot + 1;
    json_t *msg = json_pack("{s:s, s:I, s:s, s:{s:s, s:{s:s}}}", "jsonrpc", "2.0", "id",
                            (json_int_t)id, "method", "tools/call", "params", "name", "echo",
                            "arguments", "message", "hello");

    if (msg == NULL || queue_message(b, msg) < 0)
        return -1;
    b->slots[slot].id = id;
    b->slots[slot].sent_ns = uv_hrtime();
    b->outstanding++;
    return 0;
}

/* Only calls answered inside the measured window count, with their full
 * latency (as wrk does); those still in flight when it closes are drained
 * and checked but not counted. */
static void record(struct bench *b, uint64_t sent_ns, uint64_t now)
{
    uint64_t us;

    if (b->phase != PH_MEASURE)
        return;
    us = (now - sent_ns) / 1000;
    b->hist[us < HIST_US ? us : HIST_US]++;
    b->measured++;
}

/* Checks a tools/call result: content[0] is {"type":"text","text":"Echo: hello"}. */
static int echo_ok(json_t *result)
{
    const char *type = NULL, *text = NULL;
    int is_error = 0;

    if (json_unpack(result, "{s?b, s:[{s:s, s:s}]}", "isError", &is_error, "content", "type", &type,
                    "text", &text) < 0)
        return 0;
    return !is_error && strcmp(type, "text") == 0 && strcmp(text, "Echo: hello") == 0;
}

static void start_phase(struct bench *b, enum phase p);

static void handle_init_reply(struct bench *b, json_t *msg)
{
    const char *pv = NULL;
    json_t *note;
    int i;

    if (json_unpack(msg, "{s:{s:s}}", "result", "protocolVersion", &pv) < 0) {
        fail(b, "initialize failed", NULL);
        return;
    }
    fprintf(stderr, "stdio_ceiling: initialized, protocol %s\n", pv);
    note = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", "notifications/initialized");
    if (note == NULL || queue_message(b, note) < 0) {
        fail(b, "out of memory", NULL);
        return;
    }
    start_phase(b, b->warmup > 0 ? PH_WARMUP : PH_MEASURE);
    for (i = 0; i < b->inflight; i++) {
        if (send_call(b, i) < 0) {
            fail(b, "out of memory", NULL);
            return;
        }
    }
}

static void handle_line(struct bench *b, const char *text, size_t len, uint64_t now)
{
    json_error_t jerr;
    json_t *msg = json_loadb(text, len, 0, &jerr);
    json_t *id, *result;
    uint64_t n;
    int slot;

    if (msg == NULL || !json_is_object(msg)) {
        fprintf(stderr, "stdio_ceiling: unparsable line from server: %.200s\n", text);
        b->errors++;
        json_decref(msg);
        return;
    }
    id = json_object_get(msg, "id");
    if (json_object_get(msg, "method") != NULL) {
        /* A notification needs nothing; a request from the server (we
         * declared no client capabilities) gets "method not found". */
        if (id != NULL) {
            json_t *reply = json_pack("{s:s, s:O, s:{s:i, s:s}}", "jsonrpc", "2.0", "id", id,
                                      "error", "code", -32601, "message", "method not found");
            b->server_requests++;
            if (reply == NULL || queue_message(b, reply) < 0)
                fail(b, "out of memory", NULL);
        }
        json_decref(msg);
        return;
    }
    if (!json_is_integer(id) || json_integer_value(id) < 0) {
        fprintf(stderr, "stdio_ceiling: response without a numeric id: %.200s\n", text);
        b->errors++;
        json_decref(msg);
        return;
    }
    n = (uint64_t)json_integer_value(id);
    if (n == 0 && b->phase == PH_INIT) {
        handle_init_reply(b, msg);
        json_decref(msg);
        return;
    }
    slot = (int)((n - 1) % (uint64_t)b->inflight);
    if (n == 0 || b->slots[slot].id != n) {
        fprintf(stderr, "stdio_ceiling: response to unknown id %" PRIu64 "\n", n);
        b->errors++;
        json_decref(msg);
        return;
    }
    result = json_object_get(msg, "result");
    if (result != NULL && echo_ok(result)) {
        b->total_ok++;
        record(b, b->slots[slot].sent_ns, now);
    } else {
        if (b->errors < 5)
            fprintf(stderr, "stdio_ceiling: bad tools/call reply: %.200s\n", text);
        b->errors++;
    }
    json_decref(msg);
    b->slots[slot].id = 0;
    b->outstanding--;
    if (b->phase == PH_WARMUP || b->phase == PH_MEASURE) {
        if (send_call(b, slot) < 0)
            fail(b, "out of memory", NULL);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct bench *b = h->data;

    (void)suggested;
    *buf = uv_buf_init(b->rbuf, sizeof(b->rbuf));
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct bench *b = s->data;
    uint64_t now = uv_hrtime();
    const char *p = buf->base, *end = buf->base + (nread > 0 ? nread : 0), *nl;

    if (nread < 0) {
        if (b->phase != PH_DONE)
            fail(b, "server closed its stdout", uv_strerror((int)nread));
        close_all(b);
        return;
    }
    uv_timer_again(&b->stall_timer);
    while (p < end && b->phase != PH_DONE) {
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL) {
            if (aos_buf_append(&b->line, p, (size_t)(end - p)) < 0)
                fail(b, "line from server too long", NULL);
            break;
        }
        if (b->line.len > 0) {
            if (aos_buf_append(&b->line, p, (size_t)(nl - p)) < 0) {
                fail(b, "line from server too long", NULL);
                break;
            }
            if (b->line.len > 0)
                handle_line(b, b->line.ptr, b->line.len, now);
            aos_buf_reset(&b->line);
        } else if (nl > p) {
            handle_line(b, p, (size_t)(nl - p), now);
        }
        p = nl + 1;
    }
    if (b->phase == PH_DRAIN && b->outstanding == 0)
        start_phase(b, PH_DONE);
    else if (b->phase == PH_DONE)
        close_all(b);
    else
        flush_writes(b);
}

static void on_phase_timer(uv_timer_t *t)
{
    struct bench *b = t->data;

    if (b->phase == PH_WARMUP)
        start_phase(b, PH_MEASURE);
    else if (b->phase == PH_MEASURE)
        start_phase(b, PH_DRAIN);
    else if (b->phase == PH_DRAIN) {
        fail(b, "in-flight calls not answered within 10 s after the run", NULL);
        close_all(b);
    }
}

static void on_stall(uv_timer_t *t)
{
    struct bench *b = t->data;

    fail(b, "no message from the server for 10 s", NULL);
    close_all(b);
}

static void start_phase(struct bench *b, enum phase p)
{
    uint64_t now = uv_hrtime();

    b->phase = p;
    switch (p) {
    case PH_WARMUP:
        uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->warmup * 1000), 0);
        break;
    case PH_MEASURE:
        b->t0_ns = now;
        b->cpu0 = bench_proc_cpu_s(b->proc.pid);
        uv_timer_start(&b->phase_timer, on_phase_timer, (uint64_t)(b->seconds * 1000), 0);
        break;
    case PH_DRAIN:
        b->t1_ns = now;
        b->cpu1 = bench_proc_cpu_s(b->proc.pid);
        if (b->outstanding == 0)
            start_phase(b, PH_DONE);
        else
            uv_timer_start(&b->phase_timer, on_phase_timer, 10000, 0);
        break;
    case PH_DONE:
        close_all(b);
        break;
    case PH_INIT:
        break;
    }
}

static void on_child_exit(uv_process_t *proc, int64_t status, int sig)
{
    struct bench *b = proc->data;

    b->child_exited = 1;
    if (b->phase != PH_DONE) {
        fprintf(stderr, "stdio_ceiling: server exited early (status %" PRId64 ", signal %d)\n",
                status, sig);
        b->failed = 1;
        b->phase = PH_DONE;
    }
    close_all(b);
}

static void close_if_open(uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Closing the child's stdin ends a stdio MCP server; the process handle is
 * closed once it has exited (on_child_exit), or after a SIGTERM if it lingers. */
static void on_kill_timer(uv_timer_t *t)
{
    struct bench *b = t->data;

    if (!b->child_exited)
        uv_process_kill(&b->proc, SIGTERM);
    close_if_open((uv_handle_t *)t);
}

static void close_all(struct bench *b)
{
    b->phase = PH_DONE;
    close_if_open((uv_handle_t *)&b->phase_timer);
    close_if_open((uv_handle_t *)&b->stall_timer);
    close_if_open((uv_handle_t *)&b->to_child);
    close_if_open((uv_handle_t *)&b->from_child);
    if (b->child_exited) {
        close_if_open((uv_handle_t *)&b->proc);
        if (b->kill_armed)
            close_if_open((uv_handle_t *)&b->kill_timer);
    } else if (!b->kill_armed) {
        b->kill_armed = 1;
        uv_timer_init(b->loop, &b->kill_timer);
        b->kill_timer.data = b;
        uv_timer_start(&b->kill_timer, on_kill_timer, 2000, 0);
    }
}

static double percentile_ms(const struct bench *b, double pct)
{
    uint64_t want = (uint64_t)((double)b->measured * pct / 100.0 + 0.5), seen = 0;
    uint32_t us;

    if (want == 0)
        want = 1;
    for (us = 0; us <= HIST_US; us++) {
        seen += b->hist[us];
        if (seen >= want)
            return us / 1000.0;
    }
    return HIST_US / 1000.0;
}

static void usage(void)
{
    fprintf(stderr, "usage: stdio_ceiling [--seconds S] [--inflight K] [--warmup W] "
                    "[--backend CMD [--backend-arg ARG]]\n"
                    "  defaults: 10 s, 16 in flight, 2 s warm-up,\n"
                    "  <source tree>/tests/tools/mcp-server.sh everything\n");
}

static int parse_num(const char *s, double min, double max, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    struct bench b;
    uv_process_options_t opt;
    uv_stdio_container_t stdio[3];
    char backend_default[4096];
    const char *backend = NULL, *backend_arg = "everything";
    double inflight = 16, secs;
    struct rusage ru;
    int i, rc;

    memset(&b, 0, sizeof(b));
    b.seconds = 10;
    b.warmup = 2;
    b.cpu0 = b.cpu1 = -1;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (v != NULL && strcmp(a, "--seconds") == 0 && parse_num(v, 0.1, 3600, &b.seconds) == 0)
            i++;
        else if (v != NULL && strcmp(a, "--warmup") == 0 && parse_num(v, 0, 3600, &b.warmup) == 0)
            i++;
        else if (v != NULL && strcmp(a, "--inflight") == 0 && parse_num(v, 1, 4096, &inflight) == 0)
            i++;
        else if (v != NULL && strcmp(a, "--backend") == 0)
            backend = argv[++i];
        else if (v != NULL && strcmp(a, "--backend-arg") == 0)
            backend_arg = argv[++i];
        else {
            usage();
            return 2;
        }
    }
    b.inflight = (int)inflight;
    if (backend == NULL) { /* __FILE__ is <root>/bench/gateway/stdio_ceiling.c */
        static const char self[] = "bench/gateway/stdio_ceiling.c";
        size_t n = strlen(__FILE__), k = sizeof(self) - 1;
        if (n < k || strcmp(__FILE__ + n - k, self) != 0) {
            fprintf(stderr, "stdio_ceiling: built outside its source tree: pass --backend\n");
            return 2;
        }
        snprintf(backend_default, sizeof(backend_default), "%.*stests/tools/mcp-server.sh",
                 (int)(n - k), __FILE__);
        backend = backend_default;
    }

    b.slots = calloc((size_t)b.inflight, sizeof(*b.slots));
    b.hist = calloc(HIST_US + 1, sizeof(*b.hist));
    if (b.slots == NULL || b.hist == NULL) {
        fprintf(stderr, "stdio_ceiling: out of memory\n");
        return 1;
    }
    aos_buf_init(&b.line, LINE_MAX_BYTES);
    aos_buf_init(&b.wbuf, 0);
    b.loop = uv_default_loop();
    b.argv[0] = (char *)backend;
    b.argv[1] = (char *)backend_arg;
    b.argv[2] = NULL;

    uv_pipe_init(b.loop, &b.to_child, 0);
    uv_pipe_init(b.loop, &b.from_child, 0);
    uv_timer_init(b.loop, &b.phase_timer);
    uv_timer_init(b.loop, &b.stall_timer);
    b.to_child.data = b.from_child.data = &b;
    b.phase_timer.data = b.stall_timer.data = &b;
    b.proc.data = &b;

    stdio[0].flags = UV_CREATE_PIPE | UV_READABLE_PIPE;
    stdio[0].data.stream = (uv_stream_t *)&b.to_child;
    stdio[1].flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE;
    stdio[1].data.stream = (uv_stream_t *)&b.from_child;
    stdio[2].flags = UV_INHERIT_FD; /* install errors and server logs stay visible */
    stdio[2].data.fd = 2;
    memset(&opt, 0, sizeof(opt));
    opt.file = backend;
    opt.args = b.argv;
    opt.exit_cb = on_child_exit;
    opt.stdio = stdio;
    opt.stdio_count = 3;
    rc = uv_spawn(b.loop, &b.proc, &opt);
    if (rc < 0) {
        fprintf(stderr, "stdio_ceiling: cannot start '%s': %s\n", backend, uv_strerror(rc));
        return 1;
    }
    uv_read_start((uv_stream_t *)&b.from_child, on_alloc, on_read);
    /* The first start installs the server from npm: allow a minute for it. */
    uv_timer_start(&b.stall_timer, on_stall, 60000, STALL_MS);

    {
        json_t *init =
            json_pack("{s:s, s:i, s:s, s:{s:s, s:{}, s:{s:s, s:s}}}", "jsonrpc", "2.0", "id", 0,
                      "method", "initialize", "params", "protocolVersion", "2025-06-18",
                      "capabilities", "clientInfo", "name", "stdio_ceiling", "version", "1.0.0");
        if (init == NULL || queue_message(&b, init) < 0) {
            fprintf(stderr, "stdio_ceiling: out of memory\n");
            return 1;
        }
        flush_writes(&b);
    }

    uv_run(b.loop, UV_RUN_DEFAULT);
    uv_loop_close(b.loop);

    secs = b.t1_ns > b.t0_ns ? (double)(b.t1_ns - b.t0_ns) / 1e9 : 0;
    getrusage(RUSAGE_SELF, &ru);
    fprintf(stdout,
            "stdio_ceiling-detail: calls=%" PRIu64 " seconds=%.2f inflight=%d errors=%" PRIu64
            " server_requests=%" PRIu64 " server_cpu_s=%.2f client_cpu_s_total=%.2f\n",
            b.measured, secs, b.inflight, b.errors, b.server_requests,
            b.cpu0 >= 0 && b.cpu1 >= 0 ? b.cpu1 - b.cpu0 : -1.0,
            (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
                ru.ru_stime.tv_usec / 1e6);
    fprintf(stdout, "stdio_ceiling: %.1f calls/s, p50 %.3f ms, p99 %.3f ms\n",
            secs > 0 ? (double)b.measured / secs : 0.0, b.measured ? percentile_ms(&b, 50) : 0.0,
            b.measured ? percentile_ms(&b, 99) : 0.0);
    aos_buf_release(&b.line);
    aos_buf_release(&b.wbuf);
    free(b.slots);
    free(b.hist);
    return b.failed || b.errors > 0 || b.measured == 0 ? 1 : 0;
}
