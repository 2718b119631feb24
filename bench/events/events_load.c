/* events_load.c - the load generator of bench/events: many SSE subscribers
 * on GET /agent/events and a publisher posting value events to
 * POST /api/events at a fixed rate, measuring publish -> receive latency.
 *
 * The publisher and the clock run on the main libuv loop; the subscribers
 * are spread over --threads receiver threads (default 2), each with a loop
 * of its own: reading 1,000 copies of an event takes one thread about as
 * long as aosd takes to send them (~8 us each on the project's VM), so a
 * single reading thread would add its own queue to the latency it
 * measures. Subscribers are plain TCP connections that
 * send one HTTP/1.1 GET and decode the chunked SSE body themselves; each
 * event carries the publisher's send time (uv_hrtime, CLOCK_MONOTONIC, the
 * same clock in every process) in payload.t, so latency = receive time - t:
 * it covers the POST, the durable write, the pump and the fan-out.
 *
 * Modes:
 *   fanout   every subscriber watches all value events (no filter); RATE
 *            events/s, each delivered to every subscriber.
 *   pertask  subscriber i filters on trace_id "task-<i>"; RATE events/s in
 *            all, round robin over the traces: each event to one subscriber.
 * The publisher keeps up to --pubconns keep-alive connections, one POST (one
 * event) in flight on each; an event due while all are busy is counted as
 * "late" and sent as soon as one frees (its latency counts from that send,
 * so a run with many late events understates latency: keep late near 0).
 *
 * Timeline: connect every subscriber (and wait for its stream to open),
 * --warmup seconds of load (not measured), --seconds measured, then 1 s to
 * drain. Only events sent inside the measured window count.
 *
 * Output (one line, key=value, for run.sh), e.g.
 *   mode=fanout subs=1000 rate=100 sent=1000 expected=1000000 received=1000000
 *   lost=0 p50_ms=1.2 p90_ms=... p99_ms=... max_ms=... post_p50_ms=...
 *   post_p99_ms=... late=0 errors=0 gen_cpu_s=... aosd_cpu_s=... aosd_rss_mb=...
 *   first_p50_ms=... first_p99_ms=... last_p50_ms=... last_p99_ms=...
 * first_* and last_*: over the events of the window, the latency of the
 * first and of the last subscriber to get each (the spread of one fan-out).
 * aosd's CPU (utime + stime over the window) and peak RSS (sampled every
 * 100 ms) are read from /proc/<--pid>.
 *
 * Usage: events_load --port P --token T [--host 127.0.0.1] [--mode fanout|pertask]
 *          [--subs 1000] [--rate 100] [--seconds 10] [--warmup 2] [--pubconns 8]
 *          [--threads 2] [--pid AOSD_PID] */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "../args.h"

#define LAT_BUCKET_US 10
#define LAT_BUCKETS   200000 /* 10 us buckets up to 2 s; beyond is the last one */

typedef struct {
    uint64_t n;
    uint64_t max_us;
    uint32_t *b;
} hist_t;

static void hist_add(hist_t *h, uint64_t us)
{
    size_t i = us / LAT_BUCKET_US;
    if (i >= LAT_BUCKETS)
        i = LAT_BUCKETS - 1;
    h->b[i]++;
    h->n++;
    if (us > h->max_us)
        h->max_us = us;
}

static double hist_pct(const hist_t *h, double p)
{
    if (!h->n)
        return 0;
    uint64_t want = (uint64_t)(p * (double)h->n);
    if (want >= h->n)
        want = h->n - 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < LAT_BUCKETS; i++) {
        seen += h->b[i];
        if (seen > want)
            return (double)(i * LAT_BUCKET_US + LAT_BUCKET_US / 2) / 1000.0;
    }
    return (double)h->max_us / 1000.0;
}

/* --- settings and state ------------------------------------------------ */

static struct {
    const char *host, *token, *mode;
    int port, subs, rate, seconds, warmup, pubconns, pid, threads;
    int pertask;
} cfg = {"127.0.0.1", NULL, "fanout", 0, 1000, 100, 10, 2, 8, 0, 2, 0};

/* A receiver thread: its loop, its subscribers, its latencies. */
typedef struct {
    uv_loop_t loop;
    uv_async_t stop; /* from the main thread: close everything */
    uv_thread_t thread;
    int first, count; /* subs[first .. first + count) */
    hist_t lat;
} recv_t;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    char req[512];
    recv_t *r;
    int idx;
    int open;       /* the 200 and the greeting came */
    int hdr_done;   /* past the response headers */
    char hdr[1024]; /* response header bytes */
    size_t hlen;
    /* chunked decoding */
    int cstate; /* 0: size line, 1: data, 2: CRLF after data */
    size_t cleft;
    char cline[32];
    size_t clen;
    /* SSE frames */
    char *sse;
    size_t slen, scap;
    uint64_t received;
} sub_t;

typedef struct {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t wr;
    int ready, busy;
    char out[1024];
    char in[4096];
    size_t inlen;
    uint64_t sent_ns;
    int measured;
} pub_t;

static uv_loop_t *loop; /* the main loop: publisher, timers */
static sub_t *subs;
static pub_t *pubs;
static recv_t *recvs;
static struct sockaddr_in addr;
static uv_timer_t tick, phase;
/* shared with the receiver threads */
static atomic_int phase_no; /* 0 connecting, 1 warm-up, 2 measuring, 3 draining */
static _Atomic uint64_t t_measure0, t_measure1;
static atomic_ulong errors;
static atomic_int opened;
/* main thread only */
static uint64_t t_load0;
static uint64_t due_sent, sent_measured, late, posts_ok;
static uint64_t seq;
static int connected_pubs;
static hist_t lat, post_lat;
/* per event of the window (by payload.s): its first and its last delivery,
 * us after the send + 1 (0: none yet), so that a tail can be told apart:
 * late to start (the POST, the commit, the dispatch) or long to finish
 * (the copies) */
static _Atomic uint64_t *ev_first, *ev_last;
static uint64_t ev_cap;
static double gen_cpu0, aosd_cpu0, gen_cpu, aosd_cpu;
static long aosd_rss_peak_kb;
static int next_trace;

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static double proc_cpu(int pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return 0;
    unsigned long ut = 0, st = 0;
    /* fields after the name: state(3) ... utime(14) stime(15) */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return 0;
    return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

static long proc_rss_kb(int pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    long kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kb = strtol(line + 6, NULL, 10);
    fclose(f);
    return kb;
}

static void die(const char *what, int rc)
{
    fprintf(stderr, "events_load: %s: %s\n", what, rc ? uv_strerror(rc) : "failed");
    exit(1);
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    static _Thread_local char *slab; /* one per thread, for its reads */
    if (!slab && !(slab = malloc(256 * 1024)))
        die("out of memory", 0);
    buf->base = slab;
    buf->len = 256 * 1024;
}

/* --- subscribers -------------------------------------------------------- */

static void sse_frame(sub_t *s, const char *f, size_t n)
{
    const char *p = memmem(f, n, "\"payload\":{\"t\":", 15);
    if (!p) { /* the greeting or a heartbeat */
        if (!s->open) {
            s->open = 1;
            opened++;
        }
        return;
    }
    char *end;
    uint64_t t = strtoull(p + 15, &end, 10);
    uint64_t now = uv_hrtime();
    s->received++;
    uint64_t m0 = atomic_load(&t_measure0), m1 = atomic_load(&t_measure1);
    if (!m1 || t < m0 || t >= m1)
        return;
    uint64_t us = (now - t) / 1000;
    hist_add(&s->r->lat, us);
    uint64_t sq = strncmp(end, ",\"s\":", 5) == 0 ? strtoull(end + 5, NULL, 10) : UINT64_MAX;
    if (sq >= ev_cap)
        return;
    uint64_t v = atomic_load(&ev_first[sq]);
    while ((v == 0 || us + 1 < v) && !atomic_compare_exchange_weak(&ev_first[sq], &v, us + 1))
        ;
    v = atomic_load(&ev_last[sq]);
    while (us + 1 > v && !atomic_compare_exchange_weak(&ev_last[sq], &v, us + 1))
        ;
}

static void sse_bytes(sub_t *s, const char *d, size_t n)
{
    if (s->slen + n > s->scap) {
        s->scap = (s->slen + n) * 2;
        s->sse = realloc(s->sse, s->scap);
        if (!s->sse)
            die("out of memory", 0);
    }
    memcpy(s->sse + s->slen, d, n);
    s->slen += n;
    size_t start = 0;
    for (;;) {
        char *e = memmem(s->sse + start, s->slen - start, "\n\n", 2);
        if (!e)
            break;
        size_t flen = (size_t)(e - (s->sse + start));
        sse_frame(s, s->sse + start, flen);
        start += flen + 2;
    }
    if (start) {
        memmove(s->sse, s->sse + start, s->slen - start);
        s->slen -= start;
    }
}

/* Decodes Transfer-Encoding: chunked. */
static void body_bytes(sub_t *s, const char *d, size_t n)
{
    while (n) {
        if (s->cstate == 0) {
            char c = *d++;
            n--;
            if (c == '\n') {
                s->cline[s->clen] = '\0';
                s->cleft = strtoul(s->cline, NULL, 16);
                s->clen = 0;
                s->cstate = s->cleft ? 1 : 2;
            } else if (c != '\r' && s->clen < sizeof(s->cline) - 1) {
                s->cline[s->clen++] = c;
            }
        } else if (s->cstate == 1) {
            size_t k = n < s->cleft ? n : s->cleft;
            sse_bytes(s, d, k);
            d += k;
            n -= k;
            s->cleft -= k;
            if (!s->cleft)
                s->cstate = 2;
        } else {
            char c = *d++;
            n--;
            if (c == '\n')
                s->cstate = 0;
        }
    }
}

static void on_sub_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    sub_t *s = st->data;
    if (nread < 0) {
        if (phase_no < 3) {
            fprintf(stderr, "events_load: subscriber %d: %s\n", s->idx, uv_strerror((int)nread));
            errors++;
        }
        uv_close((uv_handle_t *)st, NULL);
        return;
    }
    const char *d = buf->base;
    size_t n = (size_t)nread;
    if (!s->hdr_done) {
        size_t k = 0;
        while (k < n && !s->hdr_done) {
            if (s->hlen < sizeof(s->hdr) - 1)
                s->hdr[s->hlen++] = d[k];
            k++;
            if (s->hlen >= 4 && memcmp(s->hdr + s->hlen - 4, "\r\n\r\n", 4) == 0) {
                s->hdr[s->hlen] = '\0';
                s->hdr_done = 1;
                if (strncmp(s->hdr, "HTTP/1.1 200", 12) != 0) {
                    fprintf(stderr, "events_load: subscriber %d: %.40s\n", s->idx, s->hdr);
                    exit(1);
                }
            }
        }
        d += k;
        n -= k;
    }
    if (n)
        body_bytes(s, d, n);
}

static void on_sub_written(uv_write_t *w, int status)
{
    if (status)
        die("subscriber write", status);
}

static void on_sub_connect(uv_connect_t *c, int status)
{
    sub_t *s = c->data;
    if (status)
        die("subscriber connect", status);
    uv_buf_t b = uv_buf_init(s->req, (unsigned)strlen(s->req));
    uv_write(&s->wr, (uv_stream_t *)&s->tcp, &b, 1, on_sub_written);
    uv_read_start((uv_stream_t *)&s->tcp, on_alloc, on_sub_read);
}

static void connect_sub(recv_t *r, int i)
{
    sub_t *s = &subs[i];
    s->idx = i;
    s->r = r;
    if (cfg.pertask)
        snprintf(s->req, sizeof(s->req),
                 "GET /agent/events?trace_id=task-%d HTTP/1.1\r\nHost: %s:%d\r\n"
                 "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n",
                 i, cfg.host, cfg.port, cfg.token);
    else
        snprintf(s->req, sizeof(s->req),
                 "GET /agent/events HTTP/1.1\r\nHost: %s:%d\r\n"
                 "Authorization: Bearer %s\r\nAccept: text/event-stream\r\n\r\n",
                 cfg.host, cfg.port, cfg.token);
    uv_tcp_init(&r->loop, &s->tcp);
    uv_tcp_nodelay(&s->tcp, 1);
    s->tcp.data = s;
    s->conn.data = s;
    int rc = uv_tcp_connect(&s->conn, &s->tcp, (const struct sockaddr *)&addr, on_sub_connect);
    if (rc)
        die("subscriber connect", rc);
}

static void on_recv_stop(uv_async_t *a)
{
    recv_t *r = a->data;
    for (int i = r->first; i < r->first + r->count; i++)
        if (!uv_is_closing((uv_handle_t *)&subs[i].tcp))
            uv_close((uv_handle_t *)&subs[i].tcp, NULL);
    uv_close((uv_handle_t *)&r->stop, NULL);
}

static void recv_main(void *arg)
{
    recv_t *r = arg;
    for (int i = r->first; i < r->first + r->count; i++)
        connect_sub(r, i);
    uv_run(&r->loop, UV_RUN_DEFAULT);
}

/* --- the publisher ------------------------------------------------------ */

static void pub_send(pub_t *p);

static void on_pub_written(uv_write_t *w, int status)
{
    if (status)
        die("publisher write", status);
}

static void on_pub_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    pub_t *p = st->data;
    if (nread < 0) {
        /* a connection with no request on it may be closed by aosd's
         * head timeout (10 s without a request: at a low rate only the
         * first connections are used): it is not used again */
        if (phase_no < 3 && p->busy)
            die("publisher connection closed", (int)nread);
        p->ready = 0;
        if (!uv_is_closing((uv_handle_t *)st))
            uv_close((uv_handle_t *)st, NULL);
        return;
    }
    if (p->inlen + (size_t)nread >= sizeof(p->in))
        die("publisher response too large", 0);
    memcpy(p->in + p->inlen, buf->base, (size_t)nread);
    p->inlen += (size_t)nread;
    p->in[p->inlen] = '\0';
    char *h = strstr(p->in, "\r\n\r\n");
    if (!h)
        return;
    const char *cl = strcasestr(p->in, "Content-Length:");
    size_t blen = cl && cl < h ? strtoul(cl + 15, NULL, 10) : 0;
    size_t total = (size_t)(h + 4 - p->in) + blen;
    if (p->inlen < total)
        return;
    if (strncmp(p->in, "HTTP/1.1 201", 12) != 0) {
        if (errors++ < 5)
            fprintf(stderr, "events_load: publish: %.200s\n", p->in);
    } else {
        posts_ok++;
        if (p->measured)
            hist_add(&post_lat, (uv_hrtime() - p->sent_ns) / 1000);
    }
    memmove(p->in, p->in + total, p->inlen - total);
    p->inlen -= total;
    p->busy = 0;
    if (late && phase_no >= 1 && phase_no <= 2) {
        late--; /* owed: send it now */
        pub_send(p);
    }
}

static void pub_send(pub_t *p)
{
    char body[256];
    uint64_t now = uv_hrtime();
    int trace = cfg.pertask ? next_trace++ % cfg.subs : -1;
    int n;
    if (trace >= 0)
        n = snprintf(body, sizeof(body),
                     "{\"type\":\"task.progress.milestone\",\"trace_id\":\"task-%d\","
                     "\"card_id\":\"c-%" PRIu64 "\",\"payload\":{\"t\":%" PRIu64 ",\"s\":%" PRIu64
                     "}}",
                     trace, seq, now, seq);
    else
        n = snprintf(body, sizeof(body),
                     "{\"type\":\"task.acceptance\",\"trace_id\":\"fan\","
                     "\"payload\":{\"t\":%" PRIu64 ",\"s\":%" PRIu64 "}}",
                     now, seq);
    seq++;
    int m = snprintf(p->out, sizeof(p->out),
                     "POST /api/events HTTP/1.1\r\nHost: %s:%d\r\nAuthorization: Bearer %s\r\n"
                     "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
                     cfg.host, cfg.port, cfg.token, n, body);
    p->busy = 1;
    p->sent_ns = now;
    p->measured = phase_no == 2;
    if (p->measured)
        sent_measured++;
    uv_buf_t b = uv_buf_init(p->out, (unsigned)m);
    int rc = uv_write(&p->wr, (uv_stream_t *)&p->tcp, &b, 1, on_pub_written);
    if (rc)
        die("publisher write", rc);
}

static void on_pub_connect(uv_connect_t *c, int status)
{
    pub_t *p = c->data;
    if (status)
        die("publisher connect", status);
    p->ready = 1;
    connected_pubs++;
    uv_read_start((uv_stream_t *)&p->tcp, on_alloc, on_pub_read);
}

static void on_tick(uv_timer_t *t)
{
    if (phase_no < 1 || phase_no > 2)
        return;
    uint64_t due = (uv_hrtime() - t_load0) * (uint64_t)cfg.rate / 1000000000u;
    while (due_sent < due) {
        due_sent++;
        pub_t *free_pub = NULL;
        for (int i = 0; i < cfg.pubconns && !free_pub; i++)
            if (pubs[i].ready && !pubs[i].busy)
                free_pub = &pubs[i];
        if (free_pub)
            pub_send(free_pub);
        else
            late++;
    }
    if (phase_no == 2 && aosd_rss_peak_kb >= 0 && cfg.pid) {
        static uint64_t last_sample;
        uint64_t now = uv_hrtime();
        if (now - last_sample > 100000000u) {
            long kb = proc_rss_kb(cfg.pid);
            if (kb > aosd_rss_peak_kb)
                aosd_rss_peak_kb = kb;
            last_sample = now;
        }
    }
}

static void stop_all(void)
{
    uv_timer_stop(&tick);
    uv_close((uv_handle_t *)&tick, NULL);
    uv_close((uv_handle_t *)&phase, NULL);
    for (int k = 0; k < cfg.threads; k++)
        uv_async_send(&recvs[k].stop);
    for (int i = 0; i < cfg.pubconns; i++)
        if (!uv_is_closing((uv_handle_t *)&pubs[i].tcp))
            uv_close((uv_handle_t *)&pubs[i].tcp, NULL);
}

static void on_phase(uv_timer_t *t)
{
    static int waited;
    if (phase_no == 0) {
        if (opened < cfg.subs || connected_pubs < cfg.pubconns) {
            if (++waited > 600) {
                fprintf(stderr, "events_load: only %d of %d streams opened\n", opened, cfg.subs);
                exit(1);
            }
            uv_timer_start(&phase, on_phase, 50, 0);
            return;
        }
        fprintf(stderr, "events_load: %d streams open; warm-up %d s\n", opened, cfg.warmup);
        phase_no = 1;
        t_load0 = uv_hrtime();
        uv_timer_start(&tick, on_tick, 1, 1);
        uv_timer_start(&phase, on_phase, (uint64_t)cfg.warmup * 1000, 0);
    } else if (phase_no == 1) {
        phase_no = 2;
        t_measure0 = uv_hrtime();
        atomic_store(&t_measure1, UINT64_MAX); /* open until the end of the window */
        gen_cpu0 = self_cpu();
        aosd_cpu0 = cfg.pid ? proc_cpu(cfg.pid) : 0;
        uv_timer_start(&phase, on_phase, (uint64_t)cfg.seconds * 1000, 0);
    } else if (phase_no == 2) {
        phase_no = 3;
        atomic_store(&t_measure1, uv_hrtime());
        gen_cpu = self_cpu() - gen_cpu0;
        aosd_cpu = cfg.pid ? proc_cpu(cfg.pid) - aosd_cpu0 : 0;
        uv_timer_start(&phase, on_phase, 1000, 0); /* drain */
    } else {
        stop_all();
    }
}

static int arg(int argc, char **argv, int *i, const char *name, const char **out)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "events_load: %s needs a value\n", name);
        exit(2);
    }
    *out = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (arg(argc, argv, &i, "--host", &cfg.host) ||
            arg(argc, argv, &i, "--token", &cfg.token) || arg(argc, argv, &i, "--mode", &cfg.mode))
            continue;
        if (arg(argc, argv, &i, "--port", &v))
            cfg.port = (int)bench_num("--port", v);
        else if (arg(argc, argv, &i, "--subs", &v))
            cfg.subs = (int)bench_num("--subs", v);
        else if (arg(argc, argv, &i, "--rate", &v))
            cfg.rate = (int)bench_num("--rate", v);
        else if (arg(argc, argv, &i, "--seconds", &v))
            cfg.seconds = (int)bench_num("--seconds", v);
        else if (arg(argc, argv, &i, "--warmup", &v))
            cfg.warmup = (int)bench_num("--warmup", v);
        else if (arg(argc, argv, &i, "--pubconns", &v))
            cfg.pubconns = (int)bench_num("--pubconns", v);
        else if (arg(argc, argv, &i, "--pid", &v))
            cfg.pid = (int)bench_num("--pid", v);
        else if (arg(argc, argv, &i, "--threads", &v))
            cfg.threads = (int)bench_num("--threads", v);
        else {
            fprintf(stderr, "events_load: unknown argument '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!cfg.port || !cfg.token || cfg.subs < 1 || cfg.rate < 1 || cfg.seconds < 1 ||
        cfg.pubconns < 1 || cfg.threads < 1 || cfg.threads > 64) {
        fprintf(stderr, "usage: events_load --port P --token T [--mode fanout|pertask] "
                        "[--subs N] [--rate R] [--seconds S] [--warmup W] [--pubconns C] "
                        "[--threads T] [--pid AOSD_PID]\n");
        return 2;
    }
    cfg.pertask = strcmp(cfg.mode, "pertask") == 0;
    if (!cfg.pertask && strcmp(cfg.mode, "fanout") != 0) {
        fprintf(stderr, "events_load: --mode is fanout or pertask\n");
        return 2;
    }
    ev_cap = (uint64_t)cfg.rate * (uint64_t)(cfg.warmup + cfg.seconds + 5) + 16;
    ev_first = calloc(ev_cap, sizeof(*ev_first));
    ev_last = calloc(ev_cap, sizeof(*ev_last));
    if (!ev_first || !ev_last)
        die("out of memory", 0);
    lat.b = calloc(LAT_BUCKETS, sizeof(uint32_t));
    post_lat.b = calloc(LAT_BUCKETS, sizeof(uint32_t));
    subs = calloc((size_t)cfg.subs, sizeof(*subs));
    pubs = calloc((size_t)cfg.pubconns, sizeof(*pubs));
    if (!lat.b || !post_lat.b || !subs || !pubs)
        die("out of memory", 0);
    loop = uv_default_loop();
    int rc = uv_ip4_addr(cfg.host, cfg.port, &addr);
    if (rc)
        die("address", rc);
    if (cfg.threads > cfg.subs)
        cfg.threads = cfg.subs;
    recvs = calloc((size_t)cfg.threads, sizeof(*recvs));
    if (!recvs)
        die("out of memory", 0);
    for (int k = 0; k < cfg.threads; k++) {
        recv_t *r = &recvs[k];
        r->first = (int)((int64_t)cfg.subs * k / cfg.threads);
        r->count = (int)((int64_t)cfg.subs * (k + 1) / cfg.threads) - r->first;
        r->lat.b = calloc(LAT_BUCKETS, sizeof(uint32_t));
        if (!r->lat.b || uv_loop_init(&r->loop) != 0)
            die("receiver", 0);
        uv_async_init(&r->loop, &r->stop, on_recv_stop);
        r->stop.data = r;
        if (uv_thread_create(&r->thread, recv_main, r) != 0)
            die("receiver thread", 0);
    }
    for (int i = 0; i < cfg.pubconns; i++) {
        pub_t *p = &pubs[i];
        uv_tcp_init(loop, &p->tcp);
        uv_tcp_nodelay(&p->tcp, 1);
        p->tcp.data = p;
        p->conn.data = p;
        rc = uv_tcp_connect(&p->conn, &p->tcp, (const struct sockaddr *)&addr, on_pub_connect);
        if (rc)
            die("publisher connect", rc);
    }
    uv_timer_init(loop, &tick);
    uv_timer_init(loop, &phase);
    uv_timer_start(&phase, on_phase, 50, 0);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int k = 0; k < cfg.threads; k++) { /* their latencies into one histogram */
        recv_t *r = &recvs[k];
        uv_thread_join(&r->thread);
        uv_loop_close(&r->loop);
        for (size_t b = 0; b < LAT_BUCKETS; b++)
            lat.b[b] += r->lat.b[b];
        lat.n += r->lat.n;
        if (r->lat.max_us > lat.max_us)
            lat.max_us = r->lat.max_us;
        free(r->lat.b);
    }
    free(recvs);

    hist_t first = {0, 0, calloc(LAT_BUCKETS, sizeof(uint32_t))};
    hist_t last = {0, 0, calloc(LAT_BUCKETS, sizeof(uint32_t))};
    if (!first.b || !last.b)
        die("out of memory", 0);
    for (uint64_t i = 0; i < ev_cap; i++)
        if (ev_last[i]) {
            hist_add(&first, ev_first[i] - 1);
            hist_add(&last, ev_last[i] - 1);
        }

    /* events sent in the window, and how many deliveries they owe */
    uint64_t expected = cfg.pertask ? sent_measured : sent_measured * (uint64_t)cfg.subs;
    printf("mode=%s subs=%d rate=%d seconds=%d sent=%" PRIu64 " expected=%" PRIu64
           " received=%" PRIu64 " lost=%" PRId64 " p50_ms=%.3f p90_ms=%.3f p99_ms=%.3f"
           " p999_ms=%.3f max_ms=%.3f post_p50_ms=%.3f post_p99_ms=%.3f late=%" PRIu64
           " errors=%" PRIu64 " gen_cpu_s=%.2f aosd_cpu_s=%.2f aosd_rss_mb=%.1f"
           " first_p50_ms=%.3f first_p99_ms=%.3f last_p50_ms=%.3f last_p99_ms=%.3f\n",
           cfg.mode, cfg.subs, cfg.rate, cfg.seconds, sent_measured, expected, lat.n,
           (int64_t)expected - (int64_t)lat.n, hist_pct(&lat, 0.50), hist_pct(&lat, 0.90),
           hist_pct(&lat, 0.99), hist_pct(&lat, 0.999), (double)lat.max_us / 1000.0,
           hist_pct(&post_lat, 0.50), hist_pct(&post_lat, 0.99), late, (uint64_t)errors, gen_cpu,
           aosd_cpu, (double)aosd_rss_peak_kb / 1024.0, hist_pct(&first, 0.50),
           hist_pct(&first, 0.99), hist_pct(&last, 0.50), hist_pct(&last, 0.99));
    free(first.b);
    free(last.b);
    free(ev_first);
    free(ev_last);
    for (int i = 0; i < cfg.subs; i++)
        free(subs[i].sse);
    free(subs);
    free(pubs);
    free(lat.b);
    free(post_lat.b);
    return errors ? 1 : 0;
}
