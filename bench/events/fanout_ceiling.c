/* fanout_ceiling.c - the fan-out ceiling of bench/events: the least a
 * server has to do on this machine to get each published event to its SSE
 * subscribers, run with the same load generator (events_load.c) as aosd.
 *
 * It speaks just enough HTTP/1.1 for events_load:
 *   GET /healthz                  200, for run.sh's start check
 *   GET /agent/events[?trace_id=X] 200 text/event-stream, chunked, a greeting
 *                                 chunk, then one chunk per event (only the
 *                                 events of trace X, when given)
 *   POST /api/events              201 once the body is in, then the event
 *                                 goes to every matching subscriber
 * Each event frame has aosd's shape and size ("id: N\ndata: {envelope}\n\n",
 * with the body's trace_id, type and payload copied into it), so the bytes
 * on the wire match.
 *
 * What it leaves out, to stay a ceiling: no durability (nothing is written
 * to disk; aosd commits every event to SQLite before it is sent), no auth,
 * no JSON parsing (trace_id, type and payload are found by a scan that is
 * right for the flat bodies events_load sends, not for JSON in general),
 * no replay, no folding, no per-subscriber limits. aosd can only be slower;
 * the ratio says what those cost.
 *
 * Threads: the main thread accepts, reads every request and answers it; the
 * sends of the fan-out go to --threads sender threads (subscriber i to
 * sender i % N), each with its own epoll for sockets that filled up, the
 * way aosd's stream writers work (--threads 0: the main thread sends).
 * --send uring batches each sender's sends into io_uring submissions of up
 * to 256 (as aosd does); --send plain calls send() once per subscriber.
 *
 * Usage: fanout_ceiling [--port P] [--threads N] [--send uring|plain]
 * Defaults: port 3331, 2 sender threads (as many as aosd's writers),
 * uring. Listens on 127.0.0.1 only; runs until SIGINT or SIGTERM. */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "../args.h"

#define RING_SIZE 256

/* One event, shared by the senders; freed by the last one done with it. */
typedef struct frame_s {
    atomic_int refs;
    char trace[64]; /* the event's trace_id */
    size_t len;
    struct frame_s *next[64]; /* one queue link per sender */
    char data[];
} frame_t;

typedef struct {
    int fd;
    int sender;
    char trace[64]; /* the filter; "" for every event */
    char *pend;     /* bytes a full socket did not take */
    size_t plen, pcap;
    int watching; /* EPOLLOUT armed */
    int dead;
} sub_t;

typedef struct {
    pthread_t thread;
    int efd, epfd;           /* wake-up eventfd; epoll for it and for full sockets */
    pthread_mutex_t mu;      /* head, tail */
    frame_t *head, *tail;    /* frames to send, oldest first */
    pthread_mutex_t subs_mu; /* subs, nsubs: the main thread adds */
    sub_t **subs;            /* the subscribers this sender owns */
    size_t nsubs, capsubs;
    struct io_uring ring;
    int have_ring;
    int idx;
} sender_t;

/* A request connection being read (GET or POST) on the main thread. */
typedef struct {
    int fd;
    char in[8192];
    size_t inlen;
} conn_t;

static struct {
    int port, threads, uring;
} cfg = {3331, 2, 1};

static sender_t *senders;
static sender_t inline_sender; /* --threads 0 */
static uint64_t next_id = 1;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

static void die(const char *what)
{
    fprintf(stderr, "fanout_ceiling: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int send_all_now(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            return -1;
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* --- senders ------------------------------------------------------------- */

static void sub_keep(sender_t *s, sub_t *u, const char *p, size_t n)
{
    if (u->plen + n > u->pcap) {
        size_t cap = (u->plen + n) * 2;
        char *q = realloc(u->pend, cap);
        if (!q) {
            u->dead = 1;
            return;
        }
        u->pend = q;
        u->pcap = cap;
    }
    memcpy(u->pend + u->plen, p, n);
    u->plen += n;
    if (!u->watching) {
        struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = u};
        if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, u->fd, &ev) == 0)
            u->watching = 1;
        else
            u->dead = 1;
    }
}

/* Sends what a full socket kept, once it is writable again. */
static void sub_flush(sender_t *s, sub_t *u)
{
    while (u->plen) {
        ssize_t k = send(u->fd, u->pend, u->plen, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k > 0) {
            memmove(u->pend, u->pend + k, u->plen - (size_t)k);
            u->plen -= (size_t)k;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        u->dead = 1;
        break;
    }
    if (u->watching) {
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, u->fd, NULL);
        u->watching = 0;
    }
}

static int wants(const sub_t *u, const frame_t *f)
{
    return !u->dead && (!u->trace[0] || strcmp(u->trace, f->trace) == 0);
}

static void fan_plain(sender_t *s, frame_t *f)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        sub_t *u = s->subs[i];
        if (!wants(u, f))
            continue;
        if (u->plen) { /* behind: keep the order */
            sub_keep(s, u, f->data, f->len);
            continue;
        }
        ssize_t k = send(u->fd, f->data, f->len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k == (ssize_t)f->len)
            continue;
        if (k < 0 && errno != EAGAIN && errno != EINTR) {
            u->dead = 1;
            continue;
        }
        size_t done = k > 0 ? (size_t)k : 0;
        sub_keep(s, u, f->data + done, f->len - done);
    }
}

static void fan_uring(sender_t *s, frame_t *f)
{
    size_t i = 0;
    while (i < s->nsubs) {
        unsigned queued = 0;
        for (; i < s->nsubs && queued < RING_SIZE; i++) {
            sub_t *u = s->subs[i];
            if (!wants(u, f))
                continue;
            if (u->plen) {
                sub_keep(s, u, f->data, f->len);
                continue;
            }
            struct io_uring_sqe *sqe = io_uring_get_sqe(&s->ring);
            io_uring_prep_send(sqe, u->fd, f->data, f->len, MSG_NOSIGNAL | MSG_DONTWAIT);
            io_uring_sqe_set_data(sqe, u);
            queued++;
        }
        if (!queued)
            continue;
        while (io_uring_submit_and_wait(&s->ring, queued) == -EINTR)
            ;
        for (unsigned k = 0; k < queued; k++) {
            struct io_uring_cqe *cqe;
            while (io_uring_wait_cqe(&s->ring, &cqe) == -EINTR)
                ;
            sub_t *u = io_uring_cqe_get_data(cqe);
            int res = cqe->res;
            io_uring_cqe_seen(&s->ring, cqe);
            if (res == (int)f->len)
                continue;
            if (res < 0 && res != -EAGAIN && res != -EINTR) {
                u->dead = 1;
                continue;
            }
            size_t done = res > 0 ? (size_t)res : 0;
            sub_keep(s, u, f->data + done, f->len - done);
        }
    }
}

static void frame_put(frame_t *f)
{
    if (atomic_fetch_sub(&f->refs, 1) == 1)
        free(f);
}

static void fan_out(sender_t *s, frame_t *f)
{
    pthread_mutex_lock(&s->subs_mu);
    if (s->have_ring)
        fan_uring(s, f);
    else
        fan_plain(s, f);
    pthread_mutex_unlock(&s->subs_mu);
    frame_put(f);
}

static void *sender_main(void *arg)
{
    sender_t *s = arg;
    struct epoll_event evs[64];
    while (!stop) {
        int n = epoll_wait(s->epfd, evs, 64, 200);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                uint64_t v;
                if (read(s->efd, &v, sizeof(v)) < 0 && errno != EAGAIN)
                    die("eventfd");
                continue;
            }
            sub_flush(s, evs[i].data.ptr);
        }
        for (;;) {
            pthread_mutex_lock(&s->mu);
            frame_t *f = s->head;
            if (f) {
                s->head = f->next[s->idx];
                if (!s->head)
                    s->tail = NULL;
            }
            pthread_mutex_unlock(&s->mu);
            if (!f)
                break;
            fan_out(s, f);
        }
    }
    return NULL;
}

static void sender_init(sender_t *s, int idx)
{
    s->idx = idx;
    pthread_mutex_init(&s->mu, NULL);
    pthread_mutex_init(&s->subs_mu, NULL);
    s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->efd < 0 || s->epfd < 0)
        die("sender");
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->efd, &ev) != 0)
        die("epoll_ctl");
    s->have_ring = cfg.uring && io_uring_queue_init(RING_SIZE, &s->ring, 0) == 0;
    if (cfg.uring && !s->have_ring)
        fprintf(stderr, "fanout_ceiling: no io_uring here; send() instead\n");
}

/* Main thread: hands a new subscriber to its sender. */
static void sender_add(sender_t *s, sub_t *u)
{
    pthread_mutex_lock(&s->subs_mu);
    if (s->nsubs == s->capsubs) {
        size_t cap = s->capsubs ? s->capsubs * 2 : 256;
        sub_t **p = realloc(s->subs, cap * sizeof(*p));
        if (!p)
            die("out of memory");
        s->subs = p;
        s->capsubs = cap;
    }
    s->subs[s->nsubs++] = u;
    pthread_mutex_unlock(&s->subs_mu);
}

/* Main thread: queues f on every sender (or sends it here). */
static void publish(frame_t *f)
{
    if (cfg.threads == 0) {
        atomic_store(&f->refs, 1);
        fan_out(&inline_sender, f);
        return;
    }
    atomic_store(&f->refs, cfg.threads);
    for (int k = 0; k < cfg.threads; k++) {
        sender_t *s = &senders[k];
        f->next[k] = NULL;
        pthread_mutex_lock(&s->mu);
        if (s->tail)
            s->tail->next[k] = f;
        else
            s->head = f;
        s->tail = f;
        pthread_mutex_unlock(&s->mu);
        uint64_t one = 1;
        if (write(s->efd, &one, sizeof(one)) < 0 && errno != EAGAIN)
            die("eventfd");
    }
}

/* --- requests ------------------------------------------------------------ */

/* The value of "key":"..." or "key":{...} (flat: no nested braces) in b. */
static int scan_member(const char *b, size_t n, const char *key, const char **v, size_t *vlen)
{
    char pat[40];
    int pl = snprintf(pat, sizeof(pat), "\"%s\":", key);
    const char *p = memmem(b, n, pat, (size_t)pl);
    if (!p)
        return -1;
    p += pl;
    const char *end = b + n;
    if (p < end && *p == '"') {
        const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
        if (!q)
            return -1;
        *v = p + 1;
        *vlen = (size_t)(q - p - 1);
        return 0;
    }
    if (p < end && *p == '{') {
        const char *q = memchr(p, '}', (size_t)(end - p));
        if (!q)
            return -1;
        *v = p;
        *vlen = (size_t)(q - p + 1);
        return 0;
    }
    return -1;
}

static void on_post(conn_t *c, const char *body, size_t blen)
{
    const char *tr = "", *ty = "task.acceptance", *pl = "{}";
    size_t trl = 0, tyl = strlen(ty), pll = 2;
    scan_member(body, blen, "trace_id", &tr, &trl);
    scan_member(body, blen, "type", &ty, &tyl);
    scan_member(body, blen, "payload", &pl, &pll);
    if (trl >= sizeof(((frame_t *)0)->trace))
        trl = 0;
    uint64_t id = next_id++;
    char json[1024];
    int jn = snprintf(json, sizeof(json),
                      "id: %" PRIu64 "\ndata: {\"id\":%" PRIu64
                      ",\"trace_id\":\"%.*s\",\"topic\":null,\"type\":\"%.*s\","
                      "\"severity\":\"info\",\"payload\":%.*s,\"created_at\":"
                      "\"2026-01-01T00:00:00.000Z\",\"card_id\":\"card_%024" PRIx64 "\","
                      "\"card_version\":1,\"project_id\":null}\n\n",
                      id, id, (int)trl, tr, (int)tyl, ty, (int)pll, pl, id);
    if (jn <= 0 || (size_t)jn >= sizeof(json))
        return;
    char resp[256];
    int rn = snprintf(resp, sizeof(resp), "{\"ids\":[%" PRIu64 "]}", id);
    char head[256];
    int hn = snprintf(head, sizeof(head),
                      "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\n"
                      "Content-Length: %d\r\n\r\n%s",
                      rn, resp);
    send_all_now(c->fd, head, (size_t)hn);

    frame_t *f = malloc(sizeof(*f) + (size_t)jn + 32);
    if (!f)
        die("out of memory");
    memcpy(f->trace, tr, trl);
    f->trace[trl] = '\0';
    int cn = snprintf(f->data, 32, "%x\r\n", jn);
    memcpy(f->data + cn, json, (size_t)jn);
    memcpy(f->data + cn + jn, "\r\n", 2);
    f->len = (size_t)cn + (size_t)jn + 2;
    publish(f);
}

static void on_subscribe(int epfd, conn_t *c, const char *target)
{
    static int n;
    sub_t *u = calloc(1, sizeof(*u));
    if (!u)
        die("out of memory");
    u->fd = c->fd;
    const char *q = strstr(target, "trace_id=");
    if (q) {
        q += 9;
        size_t k = strcspn(q, "& ");
        if (k < sizeof(u->trace)) {
            memcpy(u->trace, q, k);
            u->trace[k] = '\0';
        }
    }
    static const char hello[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                "Cache-Control: no-store\r\nTransfer-Encoding: chunked\r\n\r\n"
                                "20\r\nretry: 1000\n: aos value events\n\n\r\n";
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL); /* the sender owns it now */
    if (send_all_now(c->fd, hello, sizeof(hello) - 1) != 0) {
        close(c->fd);
        free(u);
        free(c);
        return;
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    sender_t *s = cfg.threads ? &senders[n++ % cfg.threads] : &inline_sender;
    sender_add(s, u);
    free(c);
}

/* Reads what came on c; answers each whole request. 0: keep c, -1: c went. */
static int on_readable(int epfd, conn_t *c)
{
    for (;;) {
        ssize_t k = recv(c->fd, c->in + c->inlen, sizeof(c->in) - 1 - c->inlen, 0);
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0 && errno == EAGAIN)
            break;
        if (k <= 0 || c->inlen + (size_t)k >= sizeof(c->in) - 1)
            goto gone;
        c->inlen += (size_t)k;
    }
    for (;;) {
        c->in[c->inlen] = '\0';
        char *h = strstr(c->in, "\r\n\r\n");
        if (!h)
            return 0;
        size_t hlen = (size_t)(h + 4 - c->in);
        if (strncmp(c->in, "GET /agent/events", 17) == 0) {
            on_subscribe(epfd, c, c->in + 4);
            return -1;
        }
        if (strncmp(c->in, "GET /healthz", 12) == 0) {
            static const char ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            send_all_now(c->fd, ok, sizeof(ok) - 1);
            memmove(c->in, c->in + hlen, c->inlen - hlen);
            c->inlen -= hlen;
            continue;
        }
        if (strncmp(c->in, "POST /api/events", 16) != 0)
            goto gone;
        const char *cl = strcasestr(c->in, "Content-Length:");
        size_t blen = cl && cl < h ? strtoul(cl + 15, NULL, 10) : 0;
        if (c->inlen < hlen + blen)
            return 0;
        on_post(c, c->in + hlen, blen);
        memmove(c->in, c->in + hlen + blen, c->inlen - hlen - blen);
        c->inlen -= hlen + blen;
    }
    return 0;
gone:
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c);
    return -1;
}

static int arg(int argc, char **argv, int *i, const char *name, const char **out)
{
    if (strcmp(argv[*i], name) != 0)
        return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "fanout_ceiling: %s needs a value\n", name);
        exit(2);
    }
    *out = argv[++*i];
    return 1;
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (arg(argc, argv, &i, "--port", &v))
            cfg.port = (int)bench_num("--port", v);
        else if (arg(argc, argv, &i, "--threads", &v))
            cfg.threads = (int)bench_num("--threads", v);
        else if (arg(argc, argv, &i, "--send", &v))
            cfg.uring = strcmp(v, "uring") == 0;
        else {
            fprintf(stderr,
                    "usage: fanout_ceiling [--port P] [--threads N] [--send uring|plain]\n");
            return 2;
        }
    }
    if (cfg.port <= 0 || cfg.threads < 0 || cfg.threads > 64) {
        fprintf(stderr, "fanout_ceiling: --port > 0, --threads 0-64\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);

    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg.port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof(a)) != 0 || listen(lfd, 4096) != 0)
        die("listen");
    int epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = NULL};
    if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, lfd, &lev) != 0)
        die("epoll");

    if (cfg.threads == 0) {
        sender_init(&inline_sender, 0);
    } else {
        senders = calloc((size_t)cfg.threads, sizeof(*senders));
        if (!senders)
            die("out of memory");
        for (int k = 0; k < cfg.threads; k++) {
            sender_init(&senders[k], k);
            if (pthread_create(&senders[k].thread, NULL, sender_main, &senders[k]) != 0)
                die("pthread_create");
        }
    }
    fprintf(stderr, "fanout_ceiling: 127.0.0.1:%d, %d sender thread(s), %s\n", cfg.port,
            cfg.threads, cfg.uring ? "io_uring" : "send()");

    struct epoll_event evs[256];
    while (!stop) {
        int n = epoll_wait(epfd, evs, 256, 200);
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == NULL) {
                for (;;) {
                    int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                    if (fd < 0)
                        break;
                    conn_t *c = calloc(1, sizeof(*c));
                    if (!c)
                        die("out of memory");
                    c->fd = fd;
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
                        close(fd);
                        free(c);
                    }
                }
                continue;
            }
            on_readable(epfd, evs[i].data.ptr);
        }
        if (cfg.threads == 0) { /* the inline sender's full sockets */
            int m = epoll_wait(inline_sender.epfd, evs, 256, 0);
            for (int i = 0; i < m; i++)
                if (evs[i].data.ptr)
                    sub_flush(&inline_sender, evs[i].data.ptr);
        }
    }
    for (int k = 0; k < cfg.threads; k++)
        pthread_join(senders[k].thread, NULL);
    return 0;
}
