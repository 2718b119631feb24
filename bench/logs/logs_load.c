/* logs_load.c - load generator for the log service benchmark.
 *
 * Ingest: C connections (one thread and one keep-alive socket each) POST
 * batches of B entries (bench_rows.h, as JSON built before the clock starts)
 * to /api/logs in a closed loop; after a warm-up, it counts the entries
 * acknowledged (201) inside the measured window and the latency of each
 * request, and reports its own CPU time (it shares the machine with aosd).
 *
 *   logs_load --url http://127.0.0.1:3401 --token T --batch 1000 --conns 4 \
 *             --seconds 10 --warmup 2
 *
 * With --rate R the load is an open loop instead: R entries/s in all, each
 * connection sending its batches on a fixed schedule (every C*B/R seconds,
 * the connections staggered), and a request's latency is measured from the
 * time it was due, not from when it went out. A request held up by a slow
 * answer before it on its connection counts that wait too, so a stall of
 * the server shows as the latency every client would see, not as one slow
 * request (no coordinated omission). Requests due inside the window count;
 * --latencies FILE writes each one's due time and latency (ms) for a plot
 * or a look beside the server's own logs.
 *
 *   logs_load --url ... --token T --batch 100 --conns 4 --rate 50000 \
 *             --seconds 10 --warmup 2
 *
 * Query: GET /api/logs by trace id (traces of the rows logs_limit --fill
 * wrote), by full-text term and by topic (alone and with a level), one
 * request at a time, latency per kind.
 *
 *   logs_load --query --url ... --token T --traces 50000 --rounds 200
 *
 * Loopback only: the URL must be http://127.0.0.1:PORT. */
#include "../args.h"
#include "../common.h"
#include "bench_rows.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define POOL 24 /* distinct bodies per connection, sent in turn */

static struct {
    int port;
    const char *token;
    int batch, conns, seconds, warmup;
    long offset;
    long rate;        /* entries/s in all: open loop; 0: closed loop */
    double start_ms;  /* open loop: when the first batch is due */
    atomic_int phase; /* 0 warm-up, 1 measured, 2 stop */
} cfg = {0, NULL, 100, 4, 10, 2, 0, 0, 0, 0};

#define LATE_GRACE_MS 5000 /* open loop: how long past the window a backlog may drain */

static int connect_local(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {0};
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)cfg.port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) != 0) {
        perror("logs_load: connect");
        exit(1);
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    return fd;
}

/* Reads one response (Content-Length bodies only); returns the status, or
 * -1. body (may be NULL) receives up to cap-1 bytes of it. */
static int read_response(int fd, char *body, size_t cap)
{
    static _Thread_local char buf[1 << 16];
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have == sizeof(buf) - 1)
            return -1;
        ssize_t r = read(fd, buf + have, sizeof(buf) - 1 - have);
        if (r <= 0)
            return -1;
        have += (size_t)r;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = (int)strtol(buf + 9, NULL, 10);
    const char *cl = strcasestr(buf, "\r\nContent-Length:");
    size_t len = cl ? (size_t)strtoul(cl + 17, NULL, 10) : 0;
    size_t head = (size_t)(end + 4 - buf);
    size_t got = have - head;
    if (body && cap) {
        size_t n = got < len ? got : len;
        n = n < cap - 1 ? n : cap - 1;
        memcpy(body, buf + head, n);
        body[n] = '\0';
    }
    while (got < len) {
        char sink[1 << 14];
        size_t want = len - got < sizeof(sink) ? len - got : sizeof(sink);
        ssize_t r = read(fd, sink, want);
        if (r <= 0)
            return -1;
        if (body && got < cap - 1) {
            size_t n = (size_t)r < cap - 1 - got ? (size_t)r : cap - 1 - got;
            memcpy(body + got, sink, n);
            body[got + n] = '\0';
        }
        got += (size_t)r;
    }
    return status;
}

/* ---- ingest ------------------------------------------------------------------ */

typedef struct {
    int id;
    char *req[POOL];
    size_t req_len[POOL];
    long acked;  /* entries acknowledged inside the window */
    long errors; /* non-201 answers (any time) */
    double *lat; /* request latencies inside the window, ms */
    double *due; /* open loop: when each was due, ms after the window opened */
    size_t nlat, caplat;
    long unsent; /* open loop: due inside the window, never sent (backlog at the end) */
} conn_t;

static char *build_request(long first, int n, size_t *len)
{
    json_t *entries = json_array();
    for (int i = 0; i < n; i++) {
        bench_row_t r;
        bench_row((uint64_t)(first + i), &r);
        json_t *attrs = json_loads(r.attributes, 0, NULL);
        json_array_append_new(entries,
                              json_pack("{s:s, s:s, s:s, s:s, s:o, s:s, s:s, s:s}", "ts", r.ts,
                                        "level", bench_levels[r.level], "message", r.message,
                                        "topic", r.topic, "attributes", attrs, "trace_id",
                                        r.trace_id, "span_id", r.span_id, "source", r.source));
    }
    json_t *body = json_pack("{s:o}", "entries", entries);
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    size_t blen = strlen(text);
    char head[512];
    int hn = snprintf(head, sizeof(head),
                      "POST /api/logs HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer "
                      "%s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                      cfg.port, cfg.token, blen);
    char *req = malloc((size_t)hn + blen);
    memcpy(req, head, (size_t)hn);
    memcpy(req + hn, text, blen);
    free(text);
    *len = (size_t)hn + blen;
    return req;
}

static void add_latency(conn_t *c, double dt, double due)
{
    if (c->nlat == c->caplat) {
        c->caplat = c->caplat ? 2 * c->caplat : 4096;
        c->lat = realloc(c->lat, c->caplat * sizeof(double));
        c->due = realloc(c->due, c->caplat * sizeof(double));
        if (!c->lat || !c->due) {
            fprintf(stderr, "logs_load: out of memory\n");
            exit(1);
        }
    }
    c->lat[c->nlat] = dt;
    c->due[c->nlat++] = due;
}

static void sleep_until_ms(double t)
{
    struct timespec ts;
    ts.tv_sec = (time_t)(t / 1e3);
    ts.tv_nsec = (long)((t - (double)ts.tv_sec * 1e3) * 1e6);
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

/* Open loop: batch k of connection c is due at start + (k + c/C) * period;
 * one request in flight per connection, the next sent as soon as it is due
 * and the previous one answered. */
static void *conn_open_main(void *arg)
{
    conn_t *c = arg;
    int fd = connect_local();
    char body[512];
    double period = (double)cfg.conns * cfg.batch * 1e3 / (double)cfg.rate;
    double open = cfg.start_ms + cfg.warmup * 1e3, close_at = open + cfg.seconds * 1e3;
    for (unsigned k = 0;; k++) {
        double due = cfg.start_ms + ((double)k + (double)c->id / cfg.conns) * period;
        if (due >= close_at)
            break;
        double now = bench_now_ms();
        if (now > close_at + LATE_GRACE_MS) { /* the server fell behind for good */
            for (double d = due; d < close_at; d += period)
                c->unsent += d >= open;
            break;
        }
        if (due > now)
            sleep_until_ms(due);
        if (bench_write_all(fd, c->req[k % POOL], c->req_len[k % POOL]) < 0) {
            fprintf(stderr, "logs_load: write failed\n");
            exit(1);
        }
        int status = read_response(fd, body, sizeof(body));
        if (status < 0) {
            fprintf(stderr, "logs_load: connection lost\n");
            exit(1);
        }
        double dt = bench_now_ms() - due;
        if (status != 201) {
            if (c->errors++ == 0)
                fprintf(stderr, "logs_load: status %d: %s\n", status, body);
            continue;
        }
        if (due >= open) {
            c->acked += cfg.batch;
            add_latency(c, dt, due - open);
        }
    }
    close(fd);
    return NULL;
}

static void *conn_main(void *arg)
{
    conn_t *c = arg;
    int fd = connect_local();
    char body[512];
    for (unsigned k = 0; atomic_load(&cfg.phase) < 2; k++) {
        double t0 = bench_now_ms();
        int ph = atomic_load(&cfg.phase);
        if (bench_write_all(fd, c->req[k % POOL], c->req_len[k % POOL]) < 0) {
            fprintf(stderr, "logs_load: write failed\n");
            exit(1);
        }
        int status = read_response(fd, body, sizeof(body));
        if (status < 0) {
            fprintf(stderr, "logs_load: connection lost\n");
            exit(1);
        }
        double dt = bench_now_ms() - t0;
        if (status != 201) {
            if (c->errors++ == 0)
                fprintf(stderr, "logs_load: status %d: %s\n", status, body);
            continue;
        }
        /* a request counts when it was sent and answered inside the window */
        if (ph == 1 && atomic_load(&cfg.phase) == 1) {
            c->acked += cfg.batch;
            add_latency(c, dt, 0);
        }
    }
    close(fd);
    return NULL;
}

static int run_ingest(const char *latencies)
{
    conn_t *cs = calloc((size_t)cfg.conns, sizeof(*cs));
    pthread_t *th = calloc((size_t)cfg.conns, sizeof(*th));
    for (int i = 0; i < cfg.conns; i++) {
        cs[i].id = i;
        for (int k = 0; k < POOL; k++)
            cs[i].req[k] = build_request(cfg.offset + ((long)i * POOL + k) * cfg.batch, cfg.batch,
                                         &cs[i].req_len[k]);
    }
    double c0, c1, t0, t1;
    if (cfg.rate) {
        /* the connections are open before the first batch is due */
        cfg.start_ms = bench_now_ms() + 100;
        for (int i = 0; i < cfg.conns; i++)
            pthread_create(&th[i], NULL, conn_open_main, &cs[i]);
        t0 = cfg.start_ms + cfg.warmup * 1e3;
        t1 = t0 + cfg.seconds * 1e3;
        sleep_until_ms(t0);
        c0 = bench_cpu_s();
        sleep_until_ms(t1);
        c1 = bench_cpu_s();
        for (int i = 0; i < cfg.conns; i++)
            pthread_join(th[i], NULL);
    } else {
        for (int i = 0; i < cfg.conns; i++)
            pthread_create(&th[i], NULL, conn_main, &cs[i]);
        usleep((useconds_t)cfg.warmup * 1000000);
        c0 = bench_cpu_s();
        t0 = bench_now_ms();
        atomic_store(&cfg.phase, 1);
        usleep((useconds_t)cfg.seconds * 1000000);
        atomic_store(&cfg.phase, 2);
        t1 = bench_now_ms();
        c1 = bench_cpu_s();
        for (int i = 0; i < cfg.conns; i++)
            pthread_join(th[i], NULL);
    }
    long acked = 0, errors = 0, unsent = 0;
    size_t nlat = 0;
    for (int i = 0; i < cfg.conns; i++) {
        acked += cs[i].acked;
        errors += cs[i].errors;
        unsent += cs[i].unsent;
        nlat += cs[i].nlat;
    }
    FILE *lf = latencies ? fopen(latencies, "w") : NULL;
    if (latencies && !lf)
        perror("logs_load: --latencies");
    if (lf) /* CLOCK_MONOTONIC, to line up with other logs of the run */
        fprintf(lf, "# window opened at %.3f ms (CLOCK_MONOTONIC); due_ms latency_ms conn\n", t0);
    double *lat = malloc((nlat ? nlat : 1) * sizeof(double));
    size_t at = 0;
    long over = 0; /* answered later than 10 ms after due */
    for (int i = 0; i < cfg.conns; i++) {
        memcpy(lat + at, cs[i].lat, cs[i].nlat * sizeof(double));
        at += cs[i].nlat;
        for (size_t k = 0; k < cs[i].nlat; k++) {
            over += cs[i].lat[k] > 10;
            if (lf)
                fprintf(lf, "%.3f %.3f %d\n", cs[i].due[k], cs[i].lat[k], i);
        }
        free(cs[i].lat);
        free(cs[i].due);
        for (int k = 0; k < POOL; k++)
            free(cs[i].req[k]);
    }
    if (lf)
        fclose(lf);
    qsort(lat, nlat, sizeof(double), bench_cmp_double);
    double secs = (t1 - t0) / 1e3;
    if (cfg.rate)
        printf("logs_load: open loop %ld entries/s, batch %d, %d connections: %ld entries in %.2f "
               "s = %.0f entries/s; request p50 %.2f ms p90 %.2f ms p99 %.2f ms p99.9 %.2f ms "
               "max %.2f ms; over 10 ms %ld of %zu; unsent %ld; errors %ld; loadgen cpu %.2f s\n",
               cfg.rate, cfg.batch, cfg.conns, acked, secs, (double)acked / secs,
               bench_pct(lat, nlat, 0.5), bench_pct(lat, nlat, 0.9), bench_pct(lat, nlat, 0.99),
               bench_pct(lat, nlat, 0.999), nlat ? lat[nlat - 1] : 0, over, nlat, unsent, errors,
               c1 - c0);
    else
        printf("logs_load: batch %d, %d connections: %ld entries in %.2f s = %.0f entries/s; "
               "request p50 %.2f ms p99 %.2f ms max %.2f ms; errors %ld; loadgen cpu %.2f s\n",
               cfg.batch, cfg.conns, acked, secs, (double)acked / secs, bench_pct(lat, nlat, 0.5),
               bench_pct(lat, nlat, 0.99), nlat ? lat[nlat - 1] : 0, errors, c1 - c0);
    free(lat);
    free(cs);
    free(th);
    return errors || unsent ? 1 : 0;
}

/* ---- queries ------------------------------------------------------------------ */

static int run_query(long traces, int rounds)
{
    int fd = connect_local();
    static const char *const kinds[] = {"trace id",
                                        "text 'timeout' (0.1%)",
                                        "text 'connection' (5%)",
                                        "topic 'llm.call' (5%)",
                                        "topic 'llm.call' and level >= error (0.2%)",
                                        "text 'queue*' prefix"};
    static const char *const qs[] = {
        NULL,      "q=timeout", "q=connection", "topic=llm.call", "topic=llm.call&level=error",
        "q=queue*"};
    size_t nk = sizeof(kinds) / sizeof(kinds[0]);
    double *lat = calloc((size_t)rounds, sizeof(double));
    char *body = malloc(1 << 20);
    int rc = 0;
    for (size_t k = 0; k < nk; k++) {
        long items = 0;
        for (int i = 0; i < rounds + 5; i++) {
            char path[256], tid[40];
            if (!qs[k]) {
                bench_trace_id((uint64_t)(bench_mix((uint64_t)i) % (uint64_t)traces), tid);
                snprintf(path, sizeof(path), "/api/logs?traceId=%s&limit=100", tid);
            } else {
                snprintf(path, sizeof(path), "/api/logs?%s&limit=100", qs[k]);
            }
            char req[1024];
            int n = snprintf(req, sizeof(req),
                             "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nAuthorization: Bearer "
                             "%s\r\n\r\n",
                             path, cfg.port, cfg.token);
            double t0 = bench_now_ms();
            if (bench_write_all(fd, req, (size_t)n) < 0)
                return 1;
            int status = read_response(fd, body, 1 << 20);
            double dt = bench_now_ms() - t0;
            if (status != 200) {
                fprintf(stderr, "logs_load: %s: status %d: %.200s\n", path, status, body);
                rc = 1;
                break;
            }
            json_t *j = json_loads(body, 0, NULL);
            long got = (long)json_array_size(json_object_get(j, "items"));
            json_decref(j);
            if (i >= 5) { /* the first few warm the caches */
                lat[i - 5] = dt;
                items += got;
            }
        }
        qsort(lat, (size_t)rounds, sizeof(double), bench_cmp_double);
        printf("logs_load: query by %s: p50 %.2f ms p99 %.2f ms max %.2f ms (%.1f entries per "
               "answer)\n",
               kinds[k], bench_pct(lat, (size_t)rounds, 0.5), bench_pct(lat, (size_t)rounds, 0.99),
               lat[rounds - 1], (double)items / rounds);
    }
    free(lat);
    free(body);
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    const char *url = NULL, *latencies = NULL;
    int query = 0, rounds = 200;
    long traces = 50000;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--query")) {
            query = 1;
            continue;
        }
        if (!v)
            goto usage;
        i++;
        if (!strcmp(a, "--url"))
            url = v;
        else if (!strcmp(a, "--token"))
            cfg.token = v;
        else if (!strcmp(a, "--batch"))
            cfg.batch = (int)bench_num("--batch", v);
        else if (!strcmp(a, "--conns"))
            cfg.conns = (int)bench_num("--conns", v);
        else if (!strcmp(a, "--seconds"))
            cfg.seconds = (int)bench_num("--seconds", v);
        else if (!strcmp(a, "--warmup"))
            cfg.warmup = (int)bench_num("--warmup", v);
        else if (!strcmp(a, "--rate"))
            cfg.rate = bench_num("--rate", v);
        else if (!strcmp(a, "--latencies"))
            latencies = v;
        else if (!strcmp(a, "--offset"))
            cfg.offset = bench_num("--offset", v);
        else if (!strcmp(a, "--traces"))
            traces = bench_num("--traces", v);
        else if (!strcmp(a, "--rounds"))
            rounds = (int)bench_num("--rounds", v);
        else
            goto usage;
    }
    if (!url || !cfg.token || strncmp(url, "http://127.0.0.1:", 17) != 0)
        goto usage;
    cfg.port = (int)strtol(url + 17, NULL, 10);
    if (cfg.port <= 0 || cfg.batch < 1 || cfg.conns < 1 || cfg.seconds < 1 || rounds < 1 ||
        traces < 1 || cfg.rate < 0)
        goto usage;
    return query ? run_query(traces, rounds) : run_ingest(latencies);
usage:
    fprintf(stderr,
            "usage: %s --url http://127.0.0.1:PORT --token T [--batch N] [--conns N] "
            "[--seconds N] [--warmup N] [--offset K] [--rate ENTRIES_PER_S] [--latencies FILE]\n"
            "       %s --query --url http://127.0.0.1:PORT --token T [--traces N] [--rounds N]\n",
            argv[0], argv[0]);
    return 2;
}
