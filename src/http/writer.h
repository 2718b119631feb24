/* writer.h - stream writer threads of the HTTP server (internal to http/).
 *
 * A long-lived plain-HTTP stream (SSE) spends its life waiting for data;
 * when data comes it is often the same data for many streams at once (one
 * value event to every Chat Hub client). Sending each copy through
 * libmicrohttpd on the loop thread puts one send() per client on that one
 * thread. Instead, once a stream's headers and first data are out and
 * libmicrohttpd has nothing buffered for it, the connection stays suspended
 * in libmicrohttpd and its socket is handed to one of a few writer threads:
 * the loop appends framed bytes to the stream's buffer, the writer sends
 * them, waits for writability on EAGAIN and watches for the peer hanging
 * up. Closing (by us, or because the peer went away) hands the socket back:
 * the writer stops touching it and tells the loop, which resumes the
 * connection so that libmicrohttpd ends the response and closes or reuses
 * the connection as usual.
 *
 * Threading: aos__writers_new/attach/write/pending/close/free are called on
 * the loop thread; `released` callbacks run on the loop thread. A stream's
 * buffer is shared under its own mutex; nothing else is shared. */
#ifndef AOS_HTTP_WRITER_H
#define AOS_HTTP_WRITER_H

#include <stddef.h>
#include <uv.h>

#include "buf/buf.h"

typedef struct aos__writers_s aos__writers_t;
typedef struct aos__writer_s aos__writer_t;
typedef struct aos__dstream_s aos__dstream_t;

/* One stream handed to a writer. Embedded in its owner (the request); valid
 * from attach until its `released` callback has run. */
struct aos__dstream_s {
    uv_mutex_t mu;      /* guards out and the flags below */
    aos_buf_t out;      /* bytes not yet sent, already framed */
    aos_buf_t inflight; /* writer thread: bytes handed to io_uring */
    int fd;
    int chunked;  /* frame writes as HTTP/1.1 chunks */
    int queued;   /* on the writer's ready list */
    int closing;  /* the loop asked to end the stream */
    int broken;   /* a send failed or the peer hung up */
    int released; /* the writer let go of the socket */
    int blocked;  /* the last send found the socket full */
    int service;  /* writer: after a batch, service() still has work */
    int watched;  /* the writer watches the socket for a hang-up: the
                   * loop may send on it itself while nothing is pending */
    /* writer-thread side */
    aos__writer_t *w;
    uv_poll_t poll;
    int poll_events; /* what poll watches now; 0: not started */
    int attached;    /* on the writer's attached list once */
    int wait_poll;   /* letting go: poll handle still closing */
    int wait_list;   /* letting go: still on the ready list */
    aos__dstream_t *next_ready, *next_released;
    aos__dstream_t *prev_att, *next_att; /* the writer's attached list */
    void *owner;
};

/* Called on the loop thread once the writer let go of d's socket (after a
 * close or because it broke); d->broken tells which. */
typedef void (*aos__writers_released_fn)(aos__dstream_t *d, void *data);

/* n writer threads (n >= 1). */
int aos__writers_new(aos__writers_t **out, uv_loop_t *loop, unsigned n,
                     aos__writers_released_fn released, void *data);
/* Hands fd to a writer; d must be zeroed except owner. */
int aos__writers_attach(aos__writers_t *ws, aos__dstream_t *d, int fd, int chunked);
/* Appends data (framed as a chunk if chunked) and wakes the writer. Data
 * written after a close or once the stream broke is dropped. While nothing
 * of the stream is pending (nothing buffered, nothing in the writer's
 * hands) the loop sends it itself, at most a few streams per millisecond
 * of the loop (a burst to many streams still goes to the writers): one
 * wake of another thread less between an event and its client. */
int aos__writers_write(aos__dstream_t *d, const void *data, size_t len);
/* Bytes waiting because the peer does not read: those buffered while the
 * socket is full. Bytes the writer has not got to yet are not counted - a
 * writer behind on a busy machine is not the client's fault. */
size_t aos__writers_pending(aos__dstream_t *d);
/* The writer sends what is buffered, then lets go (released callback). */
void aos__writers_close(aos__dstream_t *d);
/* Frees what attach set up; after the released callback ran. */
void aos__writers_dispose(aos__dstream_t *d);
/* Stops the threads: every attached stream is let go (released callbacks
 * run before this returns) and the threads are joined. The loop handle
 * used for the callbacks is closed; on_closed(data) runs once it is. */
void aos__writers_free(aos__writers_t *ws, void (*on_closed)(void *), void *data);

#endif
