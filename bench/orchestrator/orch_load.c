/* orch_load.c - the load generator of bench/orchestrator: tasks submitted
 * to aosd with POST /api/run and watched to their end on the value-event
 * stream GET /agent/events (loopback only).
 *
 * Completion is observed on one SSE stream, not by polling /api/jobs: a
 * poll is a store read that queues on the store's one worker, in front of
 * the commits it measures, while an event already committed costs aosd one
 * read of the outbox it makes anyway and a write to one socket. The stream
 * is read by one thread that decodes the chunked body, splits the SSE
 * events and scans each for its type and trace id (no JSON parser: ~6
 * value events per task).
 *
 * Modes (each prints one line of key=value pairs):
 *   tasks    --conc C --seconds S --warmup W [--steps 4] [--drain 30]
 *            C workers, each with its own keep-alive connection, in a
 *            closed loop: POST /api/run a plan of STEPS aos__echo steps,
 *            wait for that trace's task.receipt, again. Tasks sent and
 *            ended inside the measured window count; latency is POST sent
 *            -> receipt received. Then no new task is sent and the ones in
 *            flight end (at most --drain s), so every task sent is whole.
 *   replay   --steps N --rounds R
 *            one task of N aos__echo steps, run to its receipt; then
 *            GET /api/episodes/:trace/replay R + 1 times (the first warms
 *            the caches and is not counted), each answer checked (N + 1
 *            frames: the plan's row and one per step).
 *   inflight --count N --tool SERVER__TOOL [--ms MS] [--calls-file F]
 *            N tasks of 4 steps whose second step calls TOOL {"ms": MS}
 *            (a tool that sleeps); returns once every task has finished
 *            its first step (its progress event: the second step's start
 *            is committed with it) and, with --calls-file, once F (one
 *            line per call, written by the tool) has N lines. Prints the
 *            last event id seen, for `recover`.
 *   recover  --count N --after ID --t0-ns NS
 *            for an aosd being started again after kill -9: connects as
 *            soon as it answers, reads the events after ID and stops once
 *            N traces have recovery.done (restart). NS: CLOCK_REALTIME (ns)
 *            just before aosd was started; prints the time from it to the
 *            last recovery.done, as aosd stamped it (created_at, ms) and as
 *            received here.
 *
 * Common: --port P --token T [--pid AOSD_PID: its CPU seconds in the window,
 * and those of its loop thread and its store's worker apart, tasks mode]. */
#include "../args.h"
#include "../common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static struct {
    int port;
    const char *token;
    int pid; /* aosd's, for its CPU time; 0: not read */
} cfg;

static void die(const char *what)
{
    fprintf(stderr, "orch_load: %s\n", what);
    exit(1);
}

/* A connected socket, or -1 (quiet: recover retries). */
static int try_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)cfg.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0)
        return -1;
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        close(fd);
        return -1;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

static int connect_local(void)
{
    int fd = try_connect();
    if (fd < 0)
        die("unable to connect to aosd");
    return fd;
}

/* A response with a Content-Length body: the status, or -1. *body gets a
 * malloc'd copy of the body (NUL-terminated), *blen its length. */
static int read_response(int fd, char **body, size_t *blen)
{
    char head[8192];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have == sizeof(head) - 1)
            return -1;
        ssize_t r = read(fd, head + have, sizeof(head) - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        head[have] = '\0';
        end = strstr(head, "\r\n\r\n");
    }
    int status = (int)strtol(head + 9, NULL, 10);
    const char *cl = strcasestr(head, "\r\nContent-Length:");
    if (!cl)
        return -1;
    size_t len = (size_t)strtoul(cl + 17, NULL, 10);
    size_t hlen = (size_t)(end + 4 - head);
    char *b = malloc(len + 1);
    if (!b)
        return -1;
    size_t got = have - hlen < len ? have - hlen : len;
    memcpy(b, head + hlen, got);
    while (got < len) {
        ssize_t r = read(fd, b + got, len - got);
        if (r <= 0) {
            free(b);
            return -1;
        }
        got += (size_t)r;
    }
    b[len] = '\0';
    *body = b;
    if (blen)
        *blen = len;
    return status;
}

/* "value" of "key":"value" in a compact JSON text, copied into out (n
 * bytes); 0 if absent. */
static int scan_str(const char *json, const char *key, char *out, size_t n)
{
    char pat[64];
    snprintf(pat, sizeof(pat), "\"%s\":\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return 0;
    p += strlen(pat);
    const char *q = strchr(p, '"');
    if (!q || (size_t)(q - p) >= n)
        return 0;
    memcpy(out, p, (size_t)(q - p));
    out[q - p] = '\0';
    return 1;
}

/* ---- the plans -------------------------------------------------------------- */

/* POST /api/run with a plan of steps aos__echo steps; step `blocking`
 * (1-based, 0: none) calls tool {"ms": ms} instead. malloc'd request. */
static char *run_request(int steps, int blocking, const char *tool, long ms, size_t *len)
{
    size_t cap = 256 + (size_t)steps * 96;
    char *body = malloc(cap);
    if (!body)
        die("out of memory");
    size_t n = (size_t)snprintf(body, cap, "{\"plan\":{\"steps\":[");
    for (int i = 1; i <= steps; i++) {
        if (i == blocking)
            n += (size_t)snprintf(body + n, cap - n,
                                  "%s{\"id\":\"s%d\",\"tool\":\"%s\",\"args\":{\"ms\":%ld}}",
                                  i > 1 ? "," : "", i, tool, ms);
        else
            n += (size_t)snprintf(body + n, cap - n,
                                  "%s{\"id\":\"s%d\",\"tool\":\"aos__echo\",\"args\":{"
                                  "\"message\":\"%d\"}}",
                                  i > 1 ? "," : "", i, i);
    }
    n += (size_t)snprintf(body + n, cap - n, "]}}");
    char *req = malloc(n + 512);
    if (!req)
        die("out of memory");
    int hn = snprintf(req, 512,
                      "POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer "
                      "%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      cfg.port, cfg.token, n);
    memcpy(req + hn, body, n);
    free(body);
    *len = (size_t)hn + n;
    return req;
}

/* Sends a prepared POST /api/run on fd; the trace id (33 bytes) or -1. */
static int submit(int fd, const char *req, size_t len, char trace[33])
{
    char *body = NULL;
    if (bench_write_all(fd, req, len) < 0)
        return -1;
    int status = read_response(fd, &body, NULL);
    if (status != 201 || !scan_str(body, "trace_id", trace, 33) || strlen(trace) != 32) {
        fprintf(stderr, "orch_load: POST /api/run: %d %.300s\n", status, body ? body : "");
        free(body);
        return -1;
    }
    free(body);
    return 0;
}

/* ---- the event stream ------------------------------------------------------------ */

typedef void (*event_fn)(const char *data, long long id, void *arg);

typedef struct {
    int fd;
    char buf[1 << 16];
    size_t have, pos;
    /* chunked decoding */
    size_t chunk_left;
    int in_chunk_crlf;
    /* the SSE event being read */
    char *line;
    size_t line_len, line_cap;
    char *data;
    size_t data_len, data_cap;
    long long id;
} sse_t;

/* GET path on a new connection; 0 once the stream answered 200, else -1
 * (quiet when quiet is set). */
static int sse_open(sse_t *s, const char *path, int quiet)
{
    memset(s, 0, sizeof(*s));
    s->fd = quiet ? try_connect() : connect_local();
    if (s->fd < 0)
        return -1;
    char req[1024];
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer %s\r\n"
                     "Accept: text/event-stream\r\n\r\n",
                     path, cfg.port, cfg.token);
    if (bench_write_all(s->fd, req, (size_t)n) < 0) {
        close(s->fd);
        return -1;
    }
    char *end = NULL;
    while (!end) {
        if (s->have == sizeof(s->buf) - 1)
            break;
        ssize_t r = read(s->fd, s->buf + s->have, sizeof(s->buf) - 1 - s->have);
        if (r <= 0)
            break;
        s->have += (size_t)r;
        s->buf[s->have] = '\0';
        end = strstr(s->buf, "\r\n\r\n");
    }
    if (!end || strtol(s->buf + 9, NULL, 10) != 200 || !strcasestr(s->buf, "chunked")) {
        if (!quiet)
            fprintf(stderr, "orch_load: GET %s: %.200s\n", path, s->buf);
        close(s->fd);
        return -1;
    }
    s->pos = (size_t)(end + 4 - s->buf);
    return 0;
}

static void grow(char **p, size_t *cap, size_t need)
{
    if (need <= *cap)
        return;
    size_t c = *cap ? *cap : 1024;
    while (c < need)
        c *= 2;
    *p = realloc(*p, c);
    if (!*p)
        die("out of memory");
    *cap = c;
}

/* One decoded byte of the SSE body. */
static void sse_byte(sse_t *s, char c, event_fn fn, void *arg)
{
    if (c != '\n') {
        grow(&s->line, &s->line_cap, s->line_len + 2);
        s->line[s->line_len++] = c;
        return;
    }
    if (s->line_len && s->line[s->line_len - 1] == '\r')
        s->line_len--;
    s->line = s->line ? s->line : malloc(1);
    s->line[s->line_len] = '\0';
    if (s->line_len == 0) { /* the end of an event */
        if (s->data_len) {
            s->data[s->data_len] = '\0';
            fn(s->data, s->id, arg);
        }
        s->data_len = 0;
    } else if (!strncmp(s->line, "data: ", 6)) {
        grow(&s->data, &s->data_cap, s->data_len + s->line_len + 1);
        memcpy(s->data + s->data_len, s->line + 6, s->line_len - 6);
        s->data_len += s->line_len - 6;
    } else if (!strncmp(s->line, "id: ", 4)) {
        s->id = strtoll(s->line + 4, NULL, 10);
    } else if (!strncmp(s->line, "event: ", 7)) {
        fprintf(stderr, "orch_load: the stream says '%s'\n", s->line);
        exit(1);
    }
    s->line_len = 0;
}

/* Reads the stream and calls fn per event until *stop is set (checked
 * after each read) or the stream ends; -1 when it ended. */
static int sse_run(sse_t *s, event_fn fn, void *arg, atomic_int *stop)
{
    for (;;) {
        while (s->pos < s->have) {
            if (s->chunk_left) {
                size_t n = s->have - s->pos < s->chunk_left ? s->have - s->pos : s->chunk_left;
                for (size_t i = 0; i < n; i++)
                    sse_byte(s, s->buf[s->pos + i], fn, arg);
                s->pos += n;
                s->chunk_left -= n;
                if (!s->chunk_left)
                    s->in_chunk_crlf = 1;
                continue;
            }
            /* a size line "HEX\r\n" (after the CRLF that ends a chunk) */
            char *nl = memchr(s->buf + s->pos, '\n', s->have - s->pos);
            if (!nl)
                break;
            char *line = s->buf + s->pos;
            s->pos = (size_t)(nl + 1 - s->buf);
            if (s->in_chunk_crlf) {
                s->in_chunk_crlf = 0;
                continue;
            }
            s->chunk_left = (size_t)strtoul(line, NULL, 16);
            if (!s->chunk_left)
                return -1; /* the last chunk */
        }
        if (stop && atomic_load(stop))
            return 0;
        /* keep what is not consumed (a partial size line) */
        memmove(s->buf, s->buf + s->pos, s->have - s->pos);
        s->have -= s->pos;
        s->pos = 0;
        ssize_t r = read(s->fd, s->buf + s->have, sizeof(s->buf) - 1 - s->have);
        if (r <= 0)
            return -1;
        s->have += (size_t)r;
    }
}

static void sse_close(sse_t *s)
{
    if (s->fd >= 0)
        close(s->fd);
    free(s->line);
    free(s->data);
    s->fd = -1;
}

/* ---- aosd's commit metrics ------------------------------------------------------------ */

/* The histograms aos_orch_commit_seconds and aos_orch_commit_transitions
 * from GET /metrics: cumulative bucket counts, sum, count. */
#define HMAX 32
typedef struct {
    int n;
    double le[HMAX], cum[HMAX], sum, count;
} hist_t;

typedef struct {
    hist_t secs, txs;
} commit_metrics_t;

static void parse_hist(const char *text, const char *name, hist_t *h)
{
    char pat[96];
    memset(h, 0, sizeof(*h));
    snprintf(pat, sizeof(pat), "\n%s_bucket{le=\"", name);
    for (const char *p = text; (p = strstr(p, pat)) && h->n < HMAX; p++) {
        const char *v = p + strlen(pat);
        h->le[h->n] = !strncmp(v, "+Inf", 4) ? 1e300 : strtod(v, NULL);
        const char *sp = strchr(v, ' ');
        h->cum[h->n++] = sp ? strtod(sp + 1, NULL) : 0;
    }
    snprintf(pat, sizeof(pat), "\n%s_sum ", name);
    const char *p = strstr(text, pat);
    h->sum = p ? strtod(p + strlen(pat), NULL) : 0;
    snprintf(pat, sizeof(pat), "\n%s_count ", name);
    p = strstr(text, pat);
    h->count = p ? strtod(p + strlen(pat), NULL) : 0;
}

static void scrape(commit_metrics_t *m)
{
    int fd = connect_local();
    char req[512], *body = NULL;
    int n = snprintf(req, sizeof(req),
                     "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer "
                     "%s\r\nConnection: close\r\n\r\n",
                     cfg.port, cfg.token);
    if (bench_write_all(fd, req, (size_t)n) < 0 || read_response(fd, &body, NULL) != 200)
        die("GET /metrics failed");
    close(fd);
    parse_hist(body, "aos_orch_commit_seconds", &m->secs);
    parse_hist(body, "aos_orch_commit_transitions", &m->txs);
    free(body);
    if (!m->secs.n)
        die("no aos_orch_commit_seconds in /metrics");
}

/* Percentile p of the observations between a and b (a histogram's
 * difference), interpolated linearly inside its bucket (the first bucket
 * from 0). */
static double hist_pct(const hist_t *a, const hist_t *b, double p)
{
    double total = b->count - a->count, want = p * total, prev = 0, lo = 0;
    if (total <= 0)
        return 0;
    for (int i = 0; i < b->n; i++) {
        double c = b->cum[i] - (i < a->n ? a->cum[i] : 0);
        if (c >= want) {
            double hi = b->le[i] > 1e299 ? lo : b->le[i];
            return c > prev ? lo + (hi - lo) * (want - prev) / (c - prev) : hi;
        }
        prev = c;
        lo = b->le[i];
    }
    return lo;
}

/* ---- tasks ----------------------------------------------------------------------- */

#define UNCLAIMED 4096

typedef struct {
    int id;
    pthread_t th;
    pthread_cond_t cv;
    char trace[33];
    int waiting, ended;
    long done, errors, total;
    double *lat;
    size_t nlat, caplat;
} worker_t;

static struct {
    pthread_mutex_t mu;
    worker_t *w;
    int nw;
    char unclaimed[UNCLAIMED][33]; /* receipts nobody waited for yet */
    int nunclaimed;
    atomic_int phase; /* 0 warm-up, 1 measured, 2 drain, 3 stop */
    atomic_int sse_stop;
    int steps;
    long receipts, not_done;
} T = {.mu = PTHREAD_MUTEX_INITIALIZER};

static void on_task_event(const char *data, long long id, void *arg)
{
    (void)id;
    (void)arg;
    char type[48], trace[33], status[24];
    if (!scan_str(data, "type", type, sizeof(type)) || strcmp(type, "task.receipt") ||
        !scan_str(data, "trace_id", trace, sizeof(trace)))
        return;
    int ok = scan_str(data, "status", status, sizeof(status)) && !strcmp(status, "done");
    pthread_mutex_lock(&T.mu);
    T.receipts++;
    if (!ok)
        T.not_done++;
    int found = 0;
    for (int i = 0; i < T.nw && !found; i++) {
        worker_t *w = &T.w[i];
        if (w->waiting && !strcmp(w->trace, trace)) {
            w->waiting = 0;
            w->ended = 1;
            if (!ok)
                w->errors++;
            pthread_cond_signal(&w->cv);
            found = 1;
        }
    }
    if (!found) { /* its POST has not come back yet */
        if (T.nunclaimed == UNCLAIMED)
            T.nunclaimed = 0; /* cannot happen with fewer workers; forget */
        snprintf(T.unclaimed[T.nunclaimed++], 33, "%s", trace);
    }
    pthread_mutex_unlock(&T.mu);
}

static void *sse_main(void *arg)
{
    sse_t *s = arg;
    if (sse_run(s, on_task_event, NULL, &T.sse_stop) < 0 && !atomic_load(&T.sse_stop))
        die("the event stream ended");
    return NULL;
}

static void *worker_main(void *arg)
{
    worker_t *w = arg;
    int fd = connect_local();
    size_t len;
    char *req = run_request(T.steps, 0, NULL, 0, &len);
    while (atomic_load(&T.phase) < 2) {
        int ph = atomic_load(&T.phase);
        double t0 = bench_now_ms();
        char trace[33];
        if (submit(fd, req, len, trace) < 0)
            die("a task was refused");
        pthread_mutex_lock(&T.mu);
        snprintf(w->trace, sizeof(w->trace), "%s", trace);
        w->ended = 0;
        for (int i = 0; i < T.nunclaimed; i++) {
            if (!strcmp(T.unclaimed[i], trace)) {
                memcpy(T.unclaimed[i], T.unclaimed[--T.nunclaimed], 33);
                w->ended = 1;
                break;
            }
        }
        w->waiting = !w->ended;
        while (!w->ended && atomic_load(&T.phase) < 3)
            pthread_cond_wait(&w->cv, &T.mu);
        int ended = w->ended;
        w->waiting = 0;
        pthread_mutex_unlock(&T.mu);
        if (!ended)
            break; /* past the drain */
        double dt = bench_now_ms() - t0;
        w->total++;
        if (ph == 1 && atomic_load(&T.phase) == 1) {
            w->done++;
            if (w->nlat == w->caplat) {
                w->caplat = w->caplat ? 2 * w->caplat : 4096;
                w->lat = realloc(w->lat, w->caplat * sizeof(double));
                if (!w->lat)
                    die("out of memory");
            }
            w->lat[w->nlat++] = dt;
        }
    }
    free(req);
    close(fd);
    return NULL;
}

static int run_tasks(int conc, int seconds, int warmup, int drain)
{
    sse_t *s = calloc(1, sizeof(*s));
    if (!s || sse_open(s, "/agent/events", 0) < 0)
        die("unable to open /agent/events");
    pthread_t sse_th;
    pthread_create(&sse_th, NULL, sse_main, s);
    T.w = calloc((size_t)conc, sizeof(worker_t));
    T.nw = conc;
    for (int i = 0; i < conc; i++) {
        T.w[i].id = i;
        pthread_cond_init(&T.w[i].cv, NULL);
    }
    for (int i = 0; i < conc; i++)
        pthread_create(&T.w[i].th, NULL, worker_main, &T.w[i]);
    usleep((useconds_t)warmup * 1000000);
    commit_metrics_t m0, m1;
    scrape(&m0);
    double a0 = bench_proc_cpu_s(cfg.pid);
    double l0 = bench_thread_cpu_s(cfg.pid, "aosd"), w0 = bench_thread_cpu_s(cfg.pid, "aos-store");
    double c0 = bench_cpu_s(), t0 = bench_now_ms();
    atomic_store(&T.phase, 1);
    usleep((useconds_t)seconds * 1000000);
    atomic_store(&T.phase, 2);
    double t1 = bench_now_ms(), c1 = bench_cpu_s();
    double a1 = bench_proc_cpu_s(cfg.pid);
    double l1 = bench_thread_cpu_s(cfg.pid, "aosd"), w1 = bench_thread_cpu_s(cfg.pid, "aos-store");
    scrape(&m1);
    /* the drain: every worker's task in flight ends, or the time is up */
    double d0 = bench_now_ms();
    for (;;) {
        pthread_mutex_lock(&T.mu);
        int busy = 0;
        for (int i = 0; i < conc; i++)
            busy += T.w[i].waiting;
        pthread_mutex_unlock(&T.mu);
        if (!busy || bench_now_ms() - d0 > drain * 1e3)
            break;
        usleep(10000);
    }
    pthread_mutex_lock(&T.mu);
    atomic_store(&T.phase, 3);
    int stuck = 0;
    for (int i = 0; i < conc; i++) {
        stuck += T.w[i].waiting;
        pthread_cond_signal(&T.w[i].cv);
    }
    pthread_mutex_unlock(&T.mu);
    for (int i = 0; i < conc; i++)
        pthread_join(T.w[i].th, NULL);
    atomic_store(&T.sse_stop, 1);
    shutdown(s->fd, SHUT_RDWR);
    pthread_join(sse_th, NULL);
    sse_close(s);
    long done = 0, errors = 0, total = 0;
    size_t nlat = 0;
    for (int i = 0; i < conc; i++) {
        done += T.w[i].done;
        errors += T.w[i].errors;
        total += T.w[i].total;
        nlat += T.w[i].nlat;
    }
    double *lat = malloc((nlat ? nlat : 1) * sizeof(double));
    size_t at = 0;
    for (int i = 0; i < conc; i++) {
        memcpy(lat + at, T.w[i].lat, T.w[i].nlat * sizeof(double));
        at += T.w[i].nlat;
        free(T.w[i].lat);
    }
    qsort(lat, nlat, sizeof(double), bench_cmp_double);
    double secs = (t1 - t0) / 1e3;
    double commits = m1.secs.count - m0.secs.count, txs = m1.txs.sum - m0.txs.sum;
    printf("mode=tasks conc=%d steps=%d tasks=%ld secs=%.3f tps=%.1f p50_ms=%.3f p99_ms=%.3f "
           "max_ms=%.3f errors=%ld total_tasks=%ld unfinished=%d loadgen_cpu_s=%.2f "
           "commits=%.0f transitions=%.0f commit_p50_us=%.1f commit_p99_us=%.1f "
           "per_transition_us=%.1f cpu_s=%.2f loop_cpu_s=%.2f store_cpu_s=%.2f\n",
           conc, T.steps, done, secs, (double)done / secs, bench_pct(lat, nlat, 0.5),
           bench_pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0.0, errors, total, stuck, c1 - c0,
           commits, txs, hist_pct(&m0.secs, &m1.secs, 0.5) * 1e6,
           hist_pct(&m0.secs, &m1.secs, 0.99) * 1e6,
           txs > 0 ? (m1.secs.sum - m0.secs.sum) * 1e6 / txs : 0.0, a1 - a0, l1 - l0, w1 - w0);
    free(lat);
    free(T.w);
    free(s);
    return errors || stuck ? 1 : 0;
}

/* ---- replay ------------------------------------------------------------------------ */

struct wait_receipt {
    atomic_int seen;
    char status[24];
};

static void on_replay_event(const char *data, long long id, void *arg)
{
    (void)id;
    struct wait_receipt *w = arg;
    char type[48];
    if (scan_str(data, "type", type, sizeof(type)) && !strcmp(type, "task.receipt")) {
        scan_str(data, "status", w->status, sizeof(w->status));
        atomic_store(&w->seen, 1);
    }
}

static int run_replay(int steps, int rounds)
{
    int fd = connect_local();
    size_t len;
    char *req = run_request(steps, 0, NULL, 0, &len);
    char trace[33];
    double r0 = bench_now_ms();
    if (submit(fd, req, len, trace) < 0)
        die("the task was refused");
    free(req);
    /* its events from the first: the receipt may already be written */
    char path[128];
    snprintf(path, sizeof(path), "/agent/events?trace_id=%s&after=0", trace);
    sse_t s;
    if (sse_open(&s, path, 0) < 0)
        die("unable to open the event stream");
    struct wait_receipt w = {0, ""};
    if (sse_run(&s, on_replay_event, &w, &w.seen) < 0 && !atomic_load(&w.seen))
        die("the event stream ended before the receipt");
    double run_ms = bench_now_ms() - r0;
    sse_close(&s);
    if (strcmp(w.status, "done"))
        die("the task did not end done");
    char get[512];
    int gn = snprintf(get, sizeof(get),
                      "GET /api/episodes/%s/replay HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                      "Authorization: Bearer %s\r\n\r\n",
                      trace, cfg.port, cfg.token);
    double *t = calloc((size_t)rounds, sizeof(double));
    size_t bytes = 0;
    for (int r = 0; r <= rounds; r++) {
        char *body = NULL;
        double t0 = bench_now_ms();
        if (bench_write_all(fd, get, (size_t)gn) < 0)
            die("write failed");
        int status = read_response(fd, &body, &bytes);
        double dt = bench_now_ms() - t0;
        if (status != 200)
            die("GET replay failed");
        /* one frame per step row: the plan's and one per step */
        int frames = 0;
        for (const char *p = body; (p = strstr(p, "\"frame\":")); p++)
            frames++;
        if (frames != steps + 1) {
            fprintf(stderr, "orch_load: %d frames, %d expected\n", frames, steps + 1);
            exit(1);
        }
        free(body);
        if (r > 0)
            t[r - 1] = dt;
    }
    close(fd);
    qsort(t, (size_t)rounds, sizeof(double), bench_cmp_double);
    printf("mode=replay steps=%d frames=%d run_ms=%.1f p50_ms=%.3f min_ms=%.3f max_ms=%.3f "
           "bytes=%zu rounds=%d trace=%s\n",
           steps, steps + 1, run_ms, bench_pct(t, (size_t)rounds, 0.5), t[0], t[rounds - 1], bytes,
           rounds, trace);
    free(t);
    return 0;
}

/* ---- inflight and recover ---------------------------------------------------------------- */

/* A set of trace ids (open addressing). */
#define SET_CAP 16384
typedef struct {
    char k[SET_CAP][33];
    int n;
} set_t;

static int set_add(set_t *s, const char *trace)
{
    unsigned h = 2166136261u;
    for (const char *p = trace; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    for (unsigned i = h % SET_CAP;; i = (i + 1) % SET_CAP) {
        if (!s->k[i][0]) {
            if (s->n >= SET_CAP / 2)
                die("too many traces");
            snprintf(s->k[i], 33, "%s", trace);
            s->n++;
            return 1;
        }
        if (!strcmp(s->k[i], trace))
            return 0;
    }
}

static struct {
    set_t started; /* traces past their first step */
    set_t done;    /* traces with recovery.done (restart) */
    set_t rstart;  /* ... recovery.start (restart) */
    long long last_id;
    int want;
    atomic_int stop;
    int64_t last_done_ms; /* created_at of the last recovery.done, ms since the epoch */
    int64_t last_done_rx_ns;
} R;

static int64_t iso_ms(const char *iso)
{
    struct tm tm = {0};
    const char *e = strptime(iso, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!e)
        return 0;
    return (int64_t)timegm(&tm) * 1000 + (e[0] == '.' ? strtol(e + 1, NULL, 10) : 0);
}

static void on_inflight_event(const char *data, long long id, void *arg)
{
    (void)arg;
    char type[48], trace[33], step[16];
    if (id > R.last_id)
        R.last_id = id;
    if (scan_str(data, "type", type, sizeof(type)) && !strcmp(type, "task.progress.milestone") &&
        scan_str(data, "trace_id", trace, sizeof(trace)) &&
        scan_str(data, "step", step, sizeof(step)) && !strcmp(step, "s1")) {
        set_add(&R.started, trace);
        if (R.started.n >= R.want)
            atomic_store(&R.stop, 1);
    }
}

static long count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    long n = 0;
    int c;
    while (f && (c = getc(f)) != EOF)
        n += c == '\n';
    if (f)
        fclose(f);
    return n;
}

struct submitter {
    pthread_t th;
    int from, to;
    const char *tool;
    long ms;
};

static void *submit_main(void *arg)
{
    struct submitter *sb = arg;
    int fd = connect_local();
    size_t len;
    char *req = run_request(4, 2, sb->tool, sb->ms, &len);
    char trace[33];
    for (int i = sb->from; i < sb->to; i++)
        if (submit(fd, req, len, trace) < 0)
            die("a task was refused");
    free(req);
    close(fd);
    return NULL;
}

static int run_inflight(int count, const char *tool, long ms, const char *calls_file)
{
    sse_t s;
    if (sse_open(&s, "/agent/events", 0) < 0)
        die("unable to open /agent/events");
    R.want = count;
    double t0 = bench_now_ms();
    enum { NSUB = 8 };
    struct submitter sb[NSUB];
    for (int i = 0; i < NSUB; i++) {
        sb[i].from = count * i / NSUB;
        sb[i].to = count * (i + 1) / NSUB;
        sb[i].tool = tool;
        sb[i].ms = ms;
        pthread_create(&sb[i].th, NULL, submit_main, &sb[i]);
    }
    for (int i = 0; i < NSUB; i++)
        pthread_join(sb[i].th, NULL);
    double t1 = bench_now_ms();
    while (!atomic_load(&R.stop))
        if (sse_run(&s, on_inflight_event, NULL, &R.stop) < 0)
            die("the event stream ended");
    double t2 = bench_now_ms();
    long calls = 0;
    if (calls_file) {
        while ((calls = count_lines(calls_file)) < count) {
            if (bench_now_ms() - t2 > 120e3) {
                fprintf(stderr, "orch_load: %ld of %d calls arrived\n", calls, count);
                exit(1);
            }
            usleep(20000);
        }
    }
    sse_close(&s);
    printf("mode=inflight tasks=%d submit_ms=%.0f inflight_ms=%.0f calls=%ld last_event_id=%lld\n",
           count, t1 - t0, bench_now_ms() - t0, calls, R.last_id);
    return 0;
}

static void on_recover_event(const char *data, long long id, void *arg)
{
    (void)id;
    (void)arg;
    char type[48], trace[33], reason[32], at[40];
    if (!scan_str(data, "type", type, sizeof(type)) || strncmp(type, "recovery.", 9) ||
        !scan_str(data, "trace_id", trace, sizeof(trace)) ||
        !scan_str(data, "reason", reason, sizeof(reason)) || strcmp(reason, "restart"))
        return;
    if (!strcmp(type, "recovery.start")) {
        set_add(&R.rstart, trace);
        return;
    }
    if (strcmp(type, "recovery.done") || !set_add(&R.done, trace))
        return;
    if (scan_str(data, "created_at", at, sizeof(at))) {
        int64_t ms = iso_ms(at);
        if (ms > R.last_done_ms)
            R.last_done_ms = ms;
    }
    R.last_done_rx_ns = bench_real_ns();
    if (R.done.n >= R.want)
        atomic_store(&R.stop, 1);
}

static int run_recover(int count, long long after, int64_t t0_ns)
{
    char path[128];
    snprintf(path, sizeof(path), "/agent/events?after=%lld", after);
    sse_t s;
    R.want = count;
    int64_t connected = 0;
    for (;;) {
        if (sse_open(&s, path, 1) == 0) {
            connected = bench_real_ns();
            break;
        }
        if (bench_real_ns() - t0_ns > 60 * (int64_t)1000000000)
            die("aosd did not open the event stream within 60 s");
        usleep(2000);
    }
    while (!atomic_load(&R.stop)) {
        if (sse_run(&s, on_recover_event, NULL, &R.stop) < 0)
            die("the event stream ended");
        if (bench_real_ns() - t0_ns > 120 * (int64_t)1000000000) {
            fprintf(stderr, "orch_load: %d of %d tasks recovered in 120 s\n", R.done.n, count);
            exit(1);
        }
    }
    sse_close(&s);
    printf("mode=recover tasks=%d recovery_start=%d recovery_done=%d "
           "last_done_ms=%.0f received_ms=%.1f stream_open_ms=%.1f\n",
           count, R.rstart.n, R.done.n, (double)(R.last_done_ms - t0_ns / 1000000),
           (double)(R.last_done_rx_ns - t0_ns) / 1e6, (double)(connected - t0_ns) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "", *tool = NULL, *calls_file = NULL;
    long conc = 1, seconds = 10, warmup = 2, drain = 30, steps = 4, rounds = 20, count = 1000,
         ms = 600000, after = 0, t0 = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v)
            goto usage;
        i++;
        if (!strcmp(a, "--port"))
            cfg.port = (int)bench_num(a, v);
        else if (!strcmp(a, "--token"))
            cfg.token = v;
        else if (!strcmp(a, "--pid"))
            cfg.pid = (int)bench_num(a, v);
        else if (!strcmp(a, "--conc"))
            conc = bench_num(a, v);
        else if (!strcmp(a, "--seconds"))
            seconds = bench_num(a, v);
        else if (!strcmp(a, "--warmup"))
            warmup = bench_num(a, v);
        else if (!strcmp(a, "--drain"))
            drain = bench_num(a, v);
        else if (!strcmp(a, "--steps"))
            steps = bench_num(a, v);
        else if (!strcmp(a, "--rounds"))
            rounds = bench_num(a, v);
        else if (!strcmp(a, "--count"))
            count = bench_num(a, v);
        else if (!strcmp(a, "--tool"))
            tool = v;
        else if (!strcmp(a, "--ms"))
            ms = bench_num(a, v);
        else if (!strcmp(a, "--calls-file"))
            calls_file = v;
        else if (!strcmp(a, "--after"))
            after = bench_num(a, v);
        else if (!strcmp(a, "--t0-ns"))
            t0 = bench_num(a, v);
        else
            goto usage;
    }
    if (cfg.port <= 0 || !cfg.token || conc < 1 || conc > 4096 || seconds < 1 || warmup < 0 ||
        steps < 1 || steps > 100000 || rounds < 1 || count < 1 || count > SET_CAP / 2)
        goto usage;
    T.steps = (int)steps;
    if (!strcmp(mode, "tasks"))
        return run_tasks((int)conc, (int)seconds, (int)warmup, (int)drain);
    if (!strcmp(mode, "replay"))
        return run_replay((int)steps, (int)rounds);
    if (!strcmp(mode, "inflight") && tool)
        return run_inflight((int)count, tool, ms, calls_file);
    if (!strcmp(mode, "recover") && t0 > 0)
        return run_recover((int)count, after, (int64_t)t0);
usage:
    fprintf(stderr,
            "usage: %s tasks    --port P --token T --conc C --seconds S --warmup W [--steps 4] "
            "[--drain 30] [--pid AOSD_PID]\n"
            "       %s replay   --port P --token T --steps N --rounds R\n"
            "       %s inflight --port P --token T --count N --tool SERVER__TOOL [--ms MS] "
            "[--calls-file F]\n"
            "       %s recover  --port P --token T --count N --after ID --t0-ns NS\n",
            argv[0], argv[0], argv[0], argv[0]);
    return 2;
}
