/* writer.c - stream writer threads; see writer.h.
 *
 * Each writer is a thread running its own libuv loop with one uv_async to
 * be woken and one uv_poll per attached stream (UV_DISCONNECT always,
 * UV_WRITABLE while the socket is full). The loop thread appends to a
 * stream's buffer under the stream's mutex and, if the stream is not yet on
 * its writer's ready list, puts it there and wakes the writer. Letting go of
 * a socket closes its uv_poll first (so the fd is out of the writer's epoll
 * set before anyone may close it), then queues the stream on the released
 * list, which the loop thread drains on its own uv_async.
 *
 * A wake's sends go out together through io_uring (batch_send) when the
 * kernel allows it (AOS_WRITER_IO_URING=0 turns it off); a stream whose
 * socket is full, and every send without io_uring, goes through send()
 * in service(). */
#include "http/writer.h"
#include "err/err.h"
#include "log/log.h"

#include <errno.h>
#include <stdint.h>
#include <liburing.h>
#include <pthread.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/syscall.h>
#include <unistd.h>

#define WRITER_NICE 5

struct aos__writer_s {
    aos__writers_t *ws;
    uv_thread_t thread;
    uv_loop_t loop;
    uv_async_t wake;
    uv_mutex_t mu; /* ready list, stop */
    aos__dstream_t *ready;
    int stop;
    aos__dstream_t *attached; /* writer thread only */
    struct io_uring ring;
    int have_ring;
    aos__dstream_t **batch;
    size_t nbatch, capbatch;
};

struct aos__writers_s {
    uv_loop_t *loop; /* the main loop */
    uv_async_t released_async;
    uv_mutex_t mu; /* released list */
    aos__dstream_t *released;
    aos__writers_released_fn released_fn;
    void *data;
    void (*on_closed)(void *);
    void *closed_data;
    unsigned n, next;
    aos__writer_t *w;
    uint64_t inline_ms; /* the loop's now when inline_left was set */
    unsigned inline_left;
};

/* Sends the loop may make itself per millisecond of the loop's clock. */
#define INLINE_PER_MS 32

/* ---- the writer thread ---------------------------------------------------- */

static void service(aos__dstream_t *d);

static void post_released(aos__dstream_t *d)
{
    aos__writers_t *ws = d->w->ws;
    uv_mutex_lock(&ws->mu);
    d->next_released = ws->released;
    ws->released = d;
    uv_mutex_unlock(&ws->mu);
    uv_async_send(&ws->released_async);
}

static void att_add(aos__dstream_t *d)
{
    aos__writer_t *w = d->w;
    d->attached = 1;
    d->next_att = w->attached;
    if (w->attached)
        w->attached->prev_att = d;
    w->attached = d;
}

static void att_remove(aos__dstream_t *d)
{
    aos__writer_t *w = d->w;
    if (d->prev_att)
        d->prev_att->next_att = d->next_att;
    else if (w->attached == d)
        w->attached = d->next_att;
    if (d->next_att)
        d->next_att->prev_att = d->prev_att;
    d->prev_att = d->next_att = NULL;
}

/* The loop may free d as soon as it is posted: only once the writer holds
 * no reference to it (poll handle closed, off the ready list). */
static void maybe_post(aos__dstream_t *d)
{
    if (!d->wait_poll && !d->wait_list)
        post_released(d);
}

static void on_poll_closed(uv_handle_t *h)
{
    aos__dstream_t *d = h->data;
    d->wait_poll = 0;
    maybe_post(d);
}

/* d->released was just set by this thread: stop watching the socket and
 * hand it back. on_list: d is still on the ready list. */
static void let_go(aos__dstream_t *d, int on_list)
{
    att_remove(d);
    d->wait_list = on_list;
    if (d->poll_events) {
        d->poll_events = 0;
        d->wait_poll = 1;
        uv_close((uv_handle_t *)&d->poll, on_poll_closed);
    }
    maybe_post(d);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    aos__dstream_t *d = p->data;
    if (status < 0 || (events & UV_DISCONNECT)) {
        uv_mutex_lock(&d->mu);
        d->broken = 1;
        uv_mutex_unlock(&d->mu);
    }
    service(d);
}

/* Sends what is buffered; called with d->mu held. */
static void flush_locked(aos__dstream_t *d)
{
    while (d->out.len) {
        ssize_t n = send(d->fd, d->out.ptr, d->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            aos_buf_consume(&d->out, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            d->blocked = 1; /* the peer does not read as fast as we write */
            return;
        }
        d->broken = 1;
        return;
    }
    d->blocked = 0;
}

/* Marks d released (if it was not) and lets it go. */
static void release(aos__dstream_t *d)
{
    uv_mutex_lock(&d->mu);
    int was = d->released, on_list = d->queued;
    d->released = 1;
    uv_mutex_unlock(&d->mu);
    if (!was)
        let_go(d, on_list);
}

static void service(aos__dstream_t *d)
{
    uv_mutex_lock(&d->mu);
    if (d->released) {
        uv_mutex_unlock(&d->mu);
        return;
    }
    if (!d->broken)
        flush_locked(d);
    int done = d->broken || (d->closing && d->out.len == 0);
    int want = UV_DISCONNECT | (d->out.len ? UV_WRITABLE : 0);
    uv_mutex_unlock(&d->mu);
    if (done) {
        release(d);
        return;
    }
    if (want == d->poll_events)
        return;
    if (!d->poll_events) {
        if (uv_poll_init_socket(&d->w->loop, &d->poll, d->fd) != 0) {
            uv_mutex_lock(&d->mu);
            d->broken = 1;
            uv_mutex_unlock(&d->mu);
            release(d);
            return;
        }
        d->poll.data = d;
    }
    d->poll_events = want;
    uv_poll_start(&d->poll, want, on_poll);
    if (!d->watched) {
        uv_mutex_lock(&d->mu);
        d->watched = 1;
        uv_mutex_unlock(&d->mu);
    }
}

/* Takes the ready list in arrival order. Entries stay marked queued (so the
 * loop leaves their link alone) until the caller has read their link. */
static aos__dstream_t *take_ready(aos__writer_t *w, int *stop)
{
    uv_mutex_lock(&w->mu);
    aos__dstream_t *list = w->ready;
    w->ready = NULL;
    *stop = w->stop;
    uv_mutex_unlock(&w->mu);
    aos__dstream_t *rev = NULL;
    while (list) { /* the list is newest first */
        aos__dstream_t *next = list->next_ready;
        list->next_ready = rev;
        rev = list;
        list = next;
    }
    return rev;
}

/* Clears d->queued, with which the loop leaves d's link alone. */
static void unqueue(aos__dstream_t *d)
{
    uv_mutex_lock(&d->mu);
    d->queued = 0;
    uv_mutex_unlock(&d->mu);
}

#define RING_SIZE 256 /* sends per io_uring submission */

/* batch_send stopping early: the entries from i on were not taken, and
 * service() sends what they hold. */
static void unqueue_rest(aos__writer_t *w, size_t i)
{
    for (; i < w->nbatch; i++) {
        unqueue(w->batch[i]);
        w->batch[i]->service = 1;
    }
}

/* The sends of one wake, batched: the bytes buffered on each stream of
 * w->batch move to its inflight buffer (the loop goes on appending to a
 * fresh out), RING_SIZE sends go to the kernel in one io_uring_enter, and
 * what a send left (a full socket) goes back in front of out for
 * service(), which waits for writability as before. One syscall per
 * RING_SIZE deliveries instead of one each: on this project's VM a syscall
 * costs 1.3-1.6 us of the ~7.6 us a loopback delivery takes. */
static void batch_send(aos__writer_t *w)
{
    size_t i = 0;
    while (i < w->nbatch) {
        unsigned queued = 0;
        for (; i < w->nbatch && queued < RING_SIZE; i++) {
            aos__dstream_t *d = w->batch[i];
            uv_mutex_lock(&d->mu);
            d->queued = 0;  /* from here on the loop may queue it again */
            d->service = 1; /* unless its send below says otherwise */
            if (!d->released && !d->broken && !d->blocked && d->out.len) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
                if (sqe) { /* there is room: at most RING_SIZE per submission */
                    aos_buf_t t = d->inflight;
                    d->inflight = d->out;
                    d->out = t;
                    aos_buf_reset(&d->out);
                    io_uring_prep_send(sqe, d->fd, d->inflight.ptr, d->inflight.len,
                                       MSG_NOSIGNAL | MSG_DONTWAIT);
                    io_uring_sqe_set_data(sqe, d);
                    queued++;
                }
            }
            uv_mutex_unlock(&d->mu);
        }
        if (!queued)
            continue;
        int rc;
        while ((rc = io_uring_submit_and_wait(&w->ring, queued)) == -EINTR)
            ;
        for (unsigned k = 0; k < queued; k++) {
            struct io_uring_cqe *cqe = NULL;
            while (rc >= 0 && (rc = io_uring_wait_cqe(&w->ring, &cqe)) == -EINTR)
                ;
            if (rc < 0) {
                /* the submission failed (waiting would never end), or the
                 * wait did, which cannot happen once it succeeded; what the
                 * kernel did with the sends still out is unknown: end those
                 * streams (clients resume by id) and use send() */
                aos_log_error("http", "io_uring: %s; back to send()", strerror(-rc));
                for (size_t j = 0; j < i; j++) {
                    aos__dstream_t *d = w->batch[j];
                    uv_mutex_lock(&d->mu);
                    if (d->inflight.len) {
                        d->broken = 1;
                        aos_buf_reset(&d->inflight);
                    }
                    uv_mutex_unlock(&d->mu);
                }
                io_uring_queue_exit(&w->ring);
                w->have_ring = 0;
                unqueue_rest(w, i);
                return;
            }
            aos__dstream_t *d = io_uring_cqe_get_data(cqe);
            int res = cqe->res;
            io_uring_cqe_seen(&w->ring, cqe);
            uv_mutex_lock(&d->mu);
            if (res > 0)
                aos_buf_consume(&d->inflight, (size_t)res);
            if (res == -EINVAL || res == -EOPNOTSUPP) {
                /* this kernel's io_uring cannot send: send() from now on */
                w->have_ring = -1;
                res = -EAGAIN;
            }
            if (res < 0 && res != -EAGAIN && res != -EINTR) {
                d->broken = 1;
            } else if (d->inflight.len) {
                /* the rest goes first, before what came meanwhile */
                if (aos_buf_append(&d->inflight, d->out.ptr, d->out.len) == 0) {
                    aos_buf_t t = d->out;
                    d->out = d->inflight;
                    d->inflight = t;
                } else {
                    d->broken = 1;
                }
                d->blocked = res == -EAGAIN && w->have_ring > 0;
            } else {
                d->blocked = 0;
            }
            aos_buf_reset(&d->inflight);
            /* service() only where there is more to do than was sent: a
             * full socket to watch (or no longer), the first watch for a
             * hang-up, a close, a break, bytes left over that no later
             * batch will take. Bytes the loop wrote meanwhile put d on the
             * ready list again (queued), for the next batch. */
            d->service = d->blocked || d->broken || d->closing || (d->out.len && !d->queued) ||
                         d->poll_events != UV_DISCONNECT;
            uv_mutex_unlock(&d->mu);
        }
        if (w->have_ring < 0) {
            unqueue_rest(w, i); /* the rest goes through send() in service() */
            return;
        }
    }
}

/* Whether this kernel's io_uring can send on sockets (5.6 and later). */
static int ring_can_send(struct io_uring *ring)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(ring);
    int ok = probe && io_uring_opcode_supported(probe, IORING_OP_SEND);
    io_uring_free_probe(probe);
    return ok;
}

static void on_wake(uv_async_t *a)
{
    aos__writer_t *w = a->data;
    int stop;
    aos__dstream_t *list = take_ready(w, &stop);
    for (aos__dstream_t *d = list, *next; d; d = next) {
        next = d->next_ready;
        if (d->wait_list) { /* let go while it waited on the list */
            unqueue(d);
            d->wait_list = 0;
            maybe_post(d);
            continue;
        }
        if (!d->attached)
            att_add(d);
        if (stop || !w->have_ring) {
            unqueue(d);
            if (!stop)
                service(d);
            continue;
        }
        /* batch_send clears queued when it takes d's bytes */
        if (w->nbatch == w->capbatch) {
            size_t cap = w->capbatch ? w->capbatch * 2 : 1024;
            aos__dstream_t **b = realloc(w->batch, cap * sizeof(*b));
            if (!b) {
                unqueue(d);
                service(d);
                continue;
            }
            w->batch = b;
            w->capbatch = cap;
        }
        w->batch[w->nbatch++] = d;
    }
    if (w->nbatch) {
        batch_send(w); /* sets each entry's service */
        if (w->have_ring < 0) {
            aos_log_warn("http", "io_uring refused a send; stream writers use send()");
            io_uring_queue_exit(&w->ring);
            w->have_ring = 0;
        }
        for (size_t i = 0; i < w->nbatch; i++)
            if (w->batch[i]->service)
                service(w->batch[i]);
        w->nbatch = 0;
    }
    if (!stop)
        return;
    while (w->attached)
        release(w->attached);
    uv_close((uv_handle_t *)&w->wake, NULL);
}

static void writer_main(void *arg)
{
    aos__writer_t *w = arg;
    pthread_setname_np(pthread_self(), "aos-http-writer");
    /* Sending copies is bulk work: the loop thread, which accepts the
     * requests that publish, goes first when CPUs are short. */
    setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), WRITER_NICE);
    const char *e = getenv("AOS_WRITER_IO_URING");
    w->have_ring = !(e && !strcmp(e, "0")) && io_uring_queue_init(RING_SIZE, &w->ring, 0) == 0;
    if (w->have_ring && !ring_can_send(&w->ring)) {
        io_uring_queue_exit(&w->ring);
        w->have_ring = 0;
    }
    uv_run(&w->loop, UV_RUN_DEFAULT);
    if (w->have_ring)
        io_uring_queue_exit(&w->ring);
    free(w->batch);
}

/* ---- the loop thread ------------------------------------------------------- */

static void drain_released(aos__writers_t *ws)
{
    uv_mutex_lock(&ws->mu);
    aos__dstream_t *list = ws->released;
    ws->released = NULL;
    uv_mutex_unlock(&ws->mu);
    while (list) {
        aos__dstream_t *next = list->next_released;
        list->next_released = NULL;
        ws->released_fn(list, ws->data);
        list = next;
    }
}

static void on_released(uv_async_t *a)
{
    drain_released(a->data);
}

int aos__writers_new(aos__writers_t **out, uv_loop_t *loop, unsigned n,
                     aos__writers_released_fn released, void *data)
{
    aos__writers_t *ws = calloc(1, sizeof(*ws));
    if (!ws || !n)
        goto fail_ws;
    ws->w = calloc(n, sizeof(*ws->w));
    if (!ws->w)
        goto fail_ws;
    ws->loop = loop;
    ws->released_fn = released;
    ws->data = data;
    uv_mutex_init(&ws->mu);
    uv_async_init(loop, &ws->released_async, on_released);
    ws->released_async.data = ws;
    for (ws->n = 0; ws->n < n; ws->n++) {
        aos__writer_t *w = &ws->w[ws->n];
        w->ws = ws;
        if (uv_loop_init(&w->loop) != 0)
            break;
        uv_mutex_init(&w->mu);
        uv_async_init(&w->loop, &w->wake, on_wake);
        w->wake.data = w;
        if (uv_thread_create(&w->thread, writer_main, w) != 0) {
            uv_close((uv_handle_t *)&w->wake, NULL);
            uv_run(&w->loop, UV_RUN_DEFAULT);
            uv_loop_close(&w->loop);
            uv_mutex_destroy(&w->mu);
            break;
        }
    }
    if (ws->n == 0) {
        aos__writers_free(ws, NULL, NULL);
        return AOS_ENOMEM;
    }
    *out = ws;
    return 0;
fail_ws:
    if (ws)
        free(ws->w);
    free(ws);
    return n ? AOS_ENOMEM : AOS_EINVAL;
}

/* Puts d on its writer's ready list; called with d->mu held. */
static void enqueue_locked(aos__dstream_t *d)
{
    if (d->queued)
        return;
    d->queued = 1;
    aos__writer_t *w = d->w;
    uv_mutex_lock(&w->mu);
    d->next_ready = w->ready;
    w->ready = d;
    uv_mutex_unlock(&w->mu);
    uv_async_send(&w->wake);
}

int aos__writers_attach(aos__writers_t *ws, aos__dstream_t *d, int fd, int chunked)
{
    if (uv_mutex_init(&d->mu) != 0)
        return AOS_ENOMEM;
    aos_buf_init(&d->out, 0);
    d->fd = fd;
    d->chunked = chunked;
    d->w = &ws->w[ws->next++ % ws->n];
    /* each write is one event meant to leave now: no Nagle, no cork */
    int one = 1, zero = 0;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_CORK, &zero, sizeof(zero));
    uv_mutex_lock(&d->mu);
    enqueue_locked(d);
    uv_mutex_unlock(&d->mu);
    return 0;
}

/* "<len in hex>\r\n" into hdr (>= 19 bytes); its length. Once per write
 * of every stream: without printf. */
static size_t chunk_header(char *hdr, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = hex[len & 15];
        len >>= 4;
    } while (len);
    for (size_t i = 0; i < n; i++)
        hdr[i] = tmp[n - 1 - i];
    hdr[n] = '\r';
    hdr[n + 1] = '\n';
    return n + 2;
}

/* Whether the loop may send on d itself now: called with d->mu held. The
 * writer sends only under d->mu (flush_locked) or with bytes in d->inflight
 * (io_uring), and only what d->out held: with neither, nothing of d is on
 * its way and the next bytes go first whoever sends them. */
static int may_send_inline(const aos__dstream_t *d)
{
    if (!d->watched || d->queued || d->out.len || d->inflight.len || d->blocked)
        return 0;
    aos__writers_t *ws = d->w->ws;
    uint64_t now = uv_now(ws->loop);
    if (now != ws->inline_ms) {
        ws->inline_ms = now;
        ws->inline_left = INLINE_PER_MS;
    }
    if (!ws->inline_left)
        return 0;
    ws->inline_left--;
    return 1;
}

/* The loop's own send of one write (framed): how many bytes went, or -1
 * when the socket is broken (d->broken set). */
static ssize_t send_inline(aos__dstream_t *d, const char *hdr, size_t hlen, const void *data,
                           size_t len)
{
    struct iovec iov[3] = {{(void *)hdr, hlen}, {(void *)data, len}, {(void *)"\r\n", 2}};
    struct msghdr mh = {.msg_iov = hlen ? iov : iov + 1, .msg_iovlen = hlen ? 3 : 1};
    ssize_t n;
    do
        n = sendmsg(d->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT);
    while (n < 0 && errno == EINTR);
    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
        return 0;
    d->broken = 1;
    return -1;
}

/* Appends what is left of a framed write after `sent` bytes of it went. */
static int append_rest(aos__dstream_t *d, const char *hdr, size_t hlen, const void *data,
                       size_t len, size_t sent)
{
    const void *part[3] = {hdr, data, "\r\n"};
    size_t plen[3] = {hlen, len, hlen ? 2 : 0};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++) {
        if (sent >= plen[i]) {
            sent -= plen[i];
            continue;
        }
        rc = aos_buf_append(&d->out, (const char *)part[i] + sent, plen[i] - sent);
        sent = 0;
    }
    return rc;
}

int aos__writers_write(aos__dstream_t *d, const void *data, size_t len)
{
    if (!len)
        return 0; /* an empty chunk would end the response */
    int rc = 0;
    uv_mutex_lock(&d->mu);
    if (d->closing || d->broken || d->released) {
        uv_mutex_unlock(&d->mu);
        return AOS_EINVAL;
    }
    if (may_send_inline(d)) {
        char hdr[24];
        size_t hlen = d->chunked ? chunk_header(hdr, len) : 0;
        size_t total = hlen + len + (hlen ? 2 : 0);
        ssize_t sent = send_inline(d, hdr, hlen, data, len);
        if (sent < 0) { /* broken: the writer lets the socket go */
            enqueue_locked(d);
            uv_mutex_unlock(&d->mu);
            return AOS_EINVAL;
        }
        if ((size_t)sent < total) { /* the rest goes through the writer */
            if (append_rest(d, hdr, hlen, data, len, (size_t)sent)) {
                d->broken = 1; /* a half-sent chunk cannot be taken back */
                rc = AOS_ENOMEM;
            }
            enqueue_locked(d);
        }
        uv_mutex_unlock(&d->mu);
        return rc;
    }
    if (d->chunked) {
        char hdr[24];
        size_t n = chunk_header(hdr, len);
        rc = aos_buf_append(&d->out, hdr, n);
        if (!rc)
            rc = aos_buf_append(&d->out, data, len);
        if (!rc)
            rc = aos_buf_append(&d->out, "\r\n", 2);
    } else {
        rc = aos_buf_append(&d->out, data, len);
    }
    if (rc) /* a half-framed chunk cannot be taken back: end the stream */
        d->broken = 1;
    enqueue_locked(d);
    uv_mutex_unlock(&d->mu);
    return rc;
}

size_t aos__writers_pending(aos__dstream_t *d)
{
    uv_mutex_lock(&d->mu);
    size_t n = d->blocked ? d->out.len : 0;
    uv_mutex_unlock(&d->mu);
    return n;
}

void aos__writers_close(aos__dstream_t *d)
{
    uv_mutex_lock(&d->mu);
    d->closing = 1;
    if (!d->released)
        enqueue_locked(d);
    uv_mutex_unlock(&d->mu);
}

void aos__writers_dispose(aos__dstream_t *d)
{
    aos_buf_release(&d->out);
    aos_buf_release(&d->inflight);
    uv_mutex_destroy(&d->mu);
}

static void on_main_closed(uv_handle_t *h)
{
    aos__writers_t *ws = h->data;
    if (ws->on_closed)
        ws->on_closed(ws->closed_data);
    uv_mutex_destroy(&ws->mu);
    free(ws->w);
    free(ws);
}

void aos__writers_free(aos__writers_t *ws, void (*on_closed)(void *), void *data)
{
    for (unsigned i = 0; i < ws->n; i++) {
        aos__writer_t *w = &ws->w[i];
        uv_mutex_lock(&w->mu);
        w->stop = 1;
        uv_mutex_unlock(&w->mu);
        uv_async_send(&w->wake);
    }
    for (unsigned i = 0; i < ws->n; i++) {
        aos__writer_t *w = &ws->w[i];
        uv_thread_join(&w->thread);
        uv_loop_close(&w->loop);
        uv_mutex_destroy(&w->mu);
    }
    drain_released(ws);
    ws->on_closed = on_closed;
    ws->closed_data = data;
    uv_close((uv_handle_t *)&ws->released_async, on_main_closed);
}
