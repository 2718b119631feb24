/* internal.h - what the files of src/bus share: the backend table, the bus
 * and subscription structs, and the helpers of event.c.
 *
 * Files: event.c (envelopes: checks, whitelist, SSE frames; pure), bus.c
 * (subscriptions, the pump that reads new events and fans them out, replay,
 * publishing), outbox.c (the store backend), routes.c (the HTTP routes).
 *
 * A backend makes events durable and reads them back by id. It is a table of
 * asynchronous calls whose callbacks run on the loop thread:
 *   - write: a batch of checked envelopes, in order, in one transaction;
 *     folding (AOS_BUS_FOLD_MS) is the backend's to apply, since it must be
 *     as durable as the events themselves.
 *   - read: events after an id (ascending) or before one (newest first),
 *     with the filters of a subscription; optionally first writes the folds
 *     that are due (the outbox keeps them in a table; a broker-backed backend
 *     would keep them in a compacted stream).
 * New events are noticed through aos_bus_kick() (the outbox's writers call
 * it; a LISTEN/NOTIFY or JetStream backend would call it from its
 * notification) and the poll timer. The core keeps the one cursor that
 * matters, the last id delivered, so a backend only needs ids that grow in
 * commit order: SQLite gives that (one writer at a time); a PostgreSQL
 * backend must read only ids below the oldest in-flight transaction's
 * (pg_snapshot_xmin), JetStream and Redis Streams give it by construction. */
#ifndef AOS_BUS_INTERNAL_H
#define AOS_BUS_INTERNAL_H

#include "bus/bus.h"
#include "buf/buf.h"
#include "map/map.h"

/* A batch of events read by a backend. Each event owns its memory (mem:
 * the strings and the SSE frame; envelope once built). */
typedef struct {
    aos_bus_event_t *v;
    size_t n;
    int64_t next_due_ms; /* read with flush: earliest pending fold, 0 for none */
} aos__bus_batch_t;

typedef struct {
    int newest_first; /* 0: id > after_id ascending; 1: id < before_id descending */
    int64_t after_id;
    int64_t before_id;      /* <= 0: from the newest */
    const char *trace_id;   /* NULL: any (copied by the backend) */
    const char *project_id; /* NULL: any (copied by the backend) */
    int value_only;
    int limit;
    int flush; /* first write the folds that are due */
} aos__bus_query_t;

/* b is borrowed for the call (the backend frees it afterwards). */
typedef void (*aos__bus_read_fn)(int status, const aos_err_t *err, aos__bus_batch_t *b, void *arg);
/* results as aos_bus_done_fn's, and b what the write read back (see write
 * below; may be NULL), both borrowed for the call. */
typedef void (*aos__bus_write_fn)(int status, const aos_err_t *err, const json_t *results,
                                  aos__bus_batch_t *b, void *arg);

typedef struct {
    const char *name;
    /* events: an array of checked envelopes, stolen. After the commit, the
     * backend may also read up to limit events after after_id, as read
     * does, and hand them to done: the publisher's events then reach
     * subscribers without another round trip to the worker. */
    int (*write)(void *be, json_t *events, int64_t after_id, int limit, aos__bus_write_fn done,
                 void *arg);
    int (*read)(void *be, const aos__bus_query_t *q, aos__bus_read_fn done, void *arg);
    /* Synchronous, at start: the highest id written. */
    int (*last_id)(void *be, int64_t *id, aos_err_t *err);
    /* No call is in flight when the core frees the backend. */
    void (*free)(void *be);
} aos__bus_backend_t;

/* The outbox backend over st (borrowed). */
void *aos__bus_outbox_new(aos_store_t *st);
extern const aos__bus_backend_t aos__bus_outbox;

typedef struct aos__bus_stream_s aos__bus_stream_t;

/* Subscribers with the same trace filter (or none) share a bucket, so that an
 * event of one task is offered only to those that watch it or watch all. */
typedef struct {
    aos_bus_sub_t *head;
} aos__bus_bucket_t;

struct aos_bus_sub_s {
    aos_bus_t *bus;
    char *trace_id, *project_id; /* owned; NULL: any */
    int value_only;
    aos_bus_event_fn fn;
    aos_bus_ready_fn ready;
    void *data;
    int64_t cursor; /* the last id delivered (or skipped as older) */
    int live;       /* 0 while catching up from the store */
    int dead;       /* unsubscribed: freed once no read is in flight for it */
    int reading;    /* a replay read is in flight */
    int waiting;    /* on bus->waiting: a replay page waits for ready() */
    aos__bus_bucket_t *bucket;
    aos_bus_sub_t *prev, *next;   /* in bucket */
    aos_bus_sub_t *wnext;         /* in bus->waiting or bus->graveyard */
    aos_bus_sub_t *aprev, *anext; /* in bus->all */
};

struct aos_bus_s {
    aos_bus_cfg_t cfg;
    const aos__bus_backend_t *be;
    void *be_data; /* owned */

    /* Subscriptions. */
    aos_bus_sub_t *all; /* every live (not dead) one */
    size_t nsubs;
    size_t nsubs_every;       /* of them, those that take events of every type */
    int pump_value_only;      /* the pump's read in flight reads value events only */
    aos__bus_bucket_t any;    /* those without a trace filter */
    aos_map_t by_trace;       /* trace_id -> aos__bus_bucket_t* (owned) */
    aos_bus_sub_t *waiting;   /* replays waiting for ready() */
    aos_bus_sub_t *graveyard; /* dead, to free when not dispatching */
    int dispatching;

    /* The pump: reads what is new after tail_id and fans it out. */
    int64_t tail_id;
    int pumping;    /* a read is in flight */
    int pump_again; /* kicked while pumping */
    uint64_t round; /* uv_now() of the last fan-out (slow-client checks, routes.c) */

    /* Handles (unreferenced: they never keep the loop alive). */
    uv_async_t kick;
    uv_timer_t poll, fold, retry, heartbeat;
    int handles; /* open ones */

    /* SSE streams (routes.c). */
    aos__bus_stream_t *streams;
    size_t nstreams;

    /* Counters for /metrics. */
    aos_metric_t *m_published, *m_delivered, *m_cut, *m_subs, *m_streams;
    uint64_t published, delivered, cut;

    int jobs;    /* backend calls in flight */
    int closing; /* aos_bus_free was called */
};

/* Frees the bus once it is closing and nothing is in flight or open. Every
 * backend callback calls it last. */
void aos__bus_maybe_free(aos_bus_t *bus);

/* Reads through the backend, counting the call in bus->jobs. */
int aos__bus_read(aos_bus_t *bus, const aos__bus_query_t *q, aos__bus_read_fn done, void *arg);

/* event.c */
/* Fills e from the row r (copied), building the SSE frame of a value
 * event when frame is 1. The envelope waits for aos_bus_event_json. */
int aos__bus_event_init(aos_bus_event_t *e, const aos_store_event_row_t *r, int frame);
/* aos_bus_event_check; own: in's payload is taken, not copied (redacted in
 * place), and *out's payload is its compact JSON text, a string, as
 * aos__bus_append_checked writes it (the limit then bounds the redacted
 * text: it is written out once, not measured first and written again). */
int aos__bus_event_check(const json_t *in, int own, json_t **out, aos_err_t *err);
/* The checks of aos_bus_event_check on an event given as its columns (ev,
 * its payload member ignored) and payload (may be NULL: {}), which is
 * redacted in place and written out to text (reset first; the limit
 * bounds the redacted text): then ev->payload is text's, severity the
 * default when NULL, and a value event without a card gets its default
 * one, written in card. ev's strings must be valid UTF-8. */
#define AOS__BUS_CARD_MAX 160
int aos__bus_event_check_in(aos_store_event_in_t *ev, json_t *payload, aos_buf_t *text,
                            char card[AOS__BUS_CARD_MAX], aos_err_t *err);
void aos__bus_event_release(aos_bus_event_t *e);
void aos__bus_batch_free(aos__bus_batch_t *b);
/* Writes one checked envelope with the fold policy: the body of
 * aos_bus_append_tx and of the outbox's batches. */
int aos__bus_append_checked(aos_store_t *st, const json_t *env, int64_t now_ms, int64_t *id,
                            int64_t *version, aos_err_t *err);
/* The same for a checked event given as its columns. */
int aos__bus_append_in(aos_store_t *st, const aos_store_event_in_t *ev, int64_t now_ms, int64_t *id,
                       int64_t *version, aos_err_t *err);

/* routes.c */
void aos__bus_streams_close(aos_bus_t *bus);

#endif
