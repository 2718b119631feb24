/* bus.h - the event bus: one publish/subscribe API over a durable, ordered
 * log of events, and the value-event stream of the Chat Hub (SPEC §3, §4;
 * GET /agent/events, GET /agent/events/history, POST /api/events).
 *
 * An event is the envelope
 *   {"id", "trace_id", "topic", "type", "severity", "payload" (object),
 *    "created_at", "card_id", "card_version", "project_id"}
 * The bus assigns id (monotonic, the cursor of every reader), created_at and,
 * for value events, card_version. Value events are the whitelisted types of
 * SPEC §3 (aos_bus_is_value_type); each belongs to a card: card_id names the
 * card the Chat Hub shows and card_version counts its updates. Other events
 * (step events, ...) travel on the same bus without a card and never reach
 * the Chat Hub stream.
 *
 * Durability first: an event is delivered to subscribers only after it is
 * committed, and subscribers read it back by id, so live delivery, replay
 * after a reconnect and replay after a restart all see the same sequence.
 * The default backend is an outbox in the store (the events table): an event
 * is written in the same transaction as the state change that caused it
 * (aos_bus_append_tx), then aos_bus_kick() tells the bus to read the new rows
 * and push them to subscribers. A timer polls too, so rows committed by
 * another process are seen within cfg.poll_ms. Other backends (PostgreSQL
 * LISTEN/NOTIFY, NATS JetStream, Redis Streams) plug in behind the backend
 * table of src/bus/internal.h without changing this API.
 *
 * Aggregation (the 1-second window, SPEC §3, §11). Folding happens on the
 * publisher side, when an event is written, so that the store, live delivery
 * and replay all agree: a task.progress.milestone whose card was written less
 * than AOS_BUS_FOLD_MS ago does not become an event at once; it replaces the
 * card's pending fold (kept durably in the same transaction), and when the
 * window ends the newest pending state is written as the card's next
 * version. So a card gets at most one version per window and its final state
 * is always delivered. A burst's first milestone is written at once (the
 * leading edge is not delayed). Every other type is written at once and
 * never folded; a value event that is not a milestone first writes the
 * pending folds of its trace, so a task's last progress precedes its receipt
 * (this may put two versions of a card less than a window apart).
 *
 * Threads: loop thread for everything, except aos_bus_append_tx (a store job
 * on the worker, inside aos_store_tx), aos_bus_kick (any thread) and the pure
 * functions (any thread). */
#ifndef AOS_BUS_H
#define AOS_BUS_H

#include "err/err.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* The aggregation window of task.progress.milestone, per card. */
#define AOS_BUS_FOLD_MS 1000
/* Largest payload, as compact JSON. */
#define AOS_BUS_MAX_PAYLOAD (64 * 1024)
/* Most events in one aos_bus_publish (and one POST /api/events). */
#define AOS_BUS_MAX_BATCH 1000

typedef struct aos_bus_s aos_bus_t;
typedef struct aos_bus_sub_s aos_bus_sub_t;

typedef struct {
    uv_loop_t *loop;        /* borrowed */
    aos_store_t *store;     /* borrowed: the outbox; must outlive the bus */
    aos_metrics_t *metrics; /* borrowed, may be NULL */
    unsigned poll_ms;       /* fallback poll of the outbox; 0: 500 */
    unsigned heartbeat_ms;  /* SSE heartbeat comment; 0: 15000 */
    size_t stream_buffer;   /* SSE: bytes a client may leave unread (see routes); 0: 1 MiB */
} aos_bus_cfg_t;

/* Reads the last event id (the stream starts there), starts the poll timer.
 * Call before the loop runs or on the loop thread. */
int aos_bus_new(aos_bus_t **out, const aos_bus_cfg_t *cfg, aos_err_t *err);
/* GET /agent/events (READ): SSE of value events, "id:" = event id;
 *   ?trace_id= ?project= filter; Last-Event-ID (or ?after=ID) replays exactly
 *   the events after that id, then goes on live; a ": hb" comment every
 *   cfg.heartbeat_ms. A client holding more than cfg.stream_buffer bytes
 *   unread when the next fan-out starts gets a last
 *   "event: overflow" / data {"reason", "resume_after": ID} and is
 *   disconnected (an EventSource then reconnects with Last-Event-ID = ID).
 * GET /agent/events/history?before=ID&limit=N (READ): value events newest
 *   first, {"events": [...], "next_before": ID or null}; same filters.
 * POST /api/events (OPERATE): an envelope or an array of them; 201
 *   {"ids": [...], "events": [results as aos_bus_done_fn's]} once durable. */
int aos_bus_add_routes(aos_bus_t *bus, aos_http_t *http);
/* Ends every subscription (SSE streams are closed, in-process subscribers get
 * their callback with ev == NULL) and stops the timers. The memory goes once
 * the store jobs in flight are done: call it before aos_store_close, which
 * delivers them. The bus's handles do not keep the loop alive. */
void aos_bus_free(aos_bus_t *bus);

/* --- events (pure; any thread) ------------------------------------------ */

/* 1 for the types of SPEC §3: task.acceptance, task.progress.milestone,
 * task.receipt, approval.request, anomaly.detected, recovery.start,
 * recovery.done. */
int aos_bus_is_value_type(const char *type);
/* How long events of type are folded per card: AOS_BUS_FOLD_MS for
 * task.progress.milestone, 0 (never) for everything else. */
int64_t aos_bus_fold_window_ms(const char *type);
/* 1 for the severities an event may have: debug, info, notice, warning,
 * error, critical. */
int aos_bus_is_severity(const char *severity);

/* Validates what a publisher sends (in, borrowed) and returns in *out the
 * envelope to write (a new object the caller decrefs): type (required,
 * [a-z0-9._-], at most 64 bytes), trace_id, topic, project_id (strings of at
 * most 128 bytes, no control characters), severity (default "info"), payload
 * (object of at most AOS_BUS_MAX_PAYLOAD bytes, default {}), card_id (value
 * events only; default: "progress:<trace_id>" for a milestone with a trace,
 * else a new random "card_<hex>"). id, created_at and card_version are
 * assigned by the bus and refused, as is any unknown member. AOS_EINVAL with
 * a message naming the member. */
int aos_bus_event_check(const json_t *in, json_t **out, aos_err_t *err);

/* --- publishing ----------------------------------------------------------- */

/* Writes event (borrowed; checked as aos_bus_event_check does) to the outbox
 * in the caller's transaction: call it from a store job, inside the
 * aos_store_tx that makes the state change, and aos_bus_kick() once it has
 * committed. *id (may be NULL) gets the event's id, or 0 when the event was
 * folded into its card's pending update. A failure fails the caller's
 * transaction: return it from the aos_store_tx function (the event may be
 * partly written, and only that rollback undoes it). */
int aos_bus_append_tx(aos_store_t *st, json_t *event, int64_t *id, aos_err_t *err);
/* The same for a caller that drops event afterwards: its payload is taken
 * as it is and redacted in place, not copied first. */
int aos_bus_append_tx_own(aos_store_t *st, json_t *event, int64_t *id, aos_err_t *err);

/* The same for an event given as its columns (ev, borrowed; its payload
 * member ignored; its strings valid UTF-8, checked as aos_bus_event_check
 * checks the envelope's) and payload (may be NULL: {}; the caller's, which
 * it drops afterwards: redacted in place, not copied): no envelope is
 * built. */
int aos_bus_append_in_tx(aos_store_t *st, const aos_store_event_in_t *ev, json_t *payload,
                         int64_t *id, aos_err_t *err);

/* aos_bus_append_in_tx for n (at most AOS_BUS_APPEND_N_MAX) events that
 * are not value events (AOS_EINVAL for one that is): ev[i] with
 * payload[i], each checked and redacted alike, all checked before any is
 * written, then written in order, a few rows to a statement. */
#define AOS_BUS_APPEND_N_MAX 16
int aos_bus_append_in_n_tx(aos_store_t *st, const aos_store_event_in_t *ev, json_t *const *payload,
                           size_t n, aos_err_t *err);

/* New rows are committed: read and deliver them soon. Any thread, but not
 * once aos_bus_free was called. With the store's outbox, a kick right
 * after submitting the store job that commits the rows will do as well:
 * the bus's read is a store job too, and the worker runs jobs in order. */
void aos_bus_kick(aos_bus_t *bus);

/* results (borrowed for the call) has one object per event, in order:
 * {"id": N or null when folded, "type", "card_id", "card_version": N or
 * null, "folded": bool}. */
typedef void (*aos_bus_done_fn)(int status, const aos_err_t *err, const json_t *results, void *ctx);

/* Checks events (an envelope or an array of 1..AOS_BUS_MAX_BATCH of them;
 * stolen) and writes them in one transaction on the store's worker; done
 * (may be NULL) runs on the loop once they are durable (or failed), and the
 * new events are then delivered. A check failure returns AOS_EINVAL at once
 * (err says which event and member; "event 3: 'type' is required") and
 * never calls done. */
int aos_bus_publish(aos_bus_t *bus, json_t *events, aos_bus_done_fn done, void *ctx,
                    aos_err_t *err);

/* --- subscribing ---------------------------------------------------------- */

/* One delivered event: the columns of its row. Every pointer is borrowed
 * for the callback; strings are NUL-terminated, NULL when absent. */
typedef struct {
    int64_t id;
    const char *type;
    const char *trace_id;
    const char *project_id;
    int value;  /* aos_bus_is_value_type(type) */
    int replay; /* read back for a subscriber catching up, not live */
    const char *topic, *severity, *created_at, *card_id;
    int64_t card_version; /* 0: none */
    /* the payload as stored: its compact JSON text (an object's) */
    const char *payload;
    size_t payload_len;
    /* value events: "id: N\ndata: <envelope>\n\n", the envelope's compact
     * JSON as aos_bus_event_json would dump it; NULL for other events (no
     * stream sends them) */
    const char *sse;
    size_t sse_len;
    /* private: the envelope once aos_bus_event_json built it, the block
     * that holds the strings and the frame */
    json_t *envelope;
    char *mem;
} aos_bus_event_t;

/* The envelope of e (bus.h's top), built the first time it is asked for
 * (the frame and the columns above never need it), its payload parsed;
 * borrowed as e is; NULL on no memory. A stored payload that is not a JSON
 * object reads as {}. Loop thread, as the callbacks that get e. */
const json_t *aos_bus_event_json(const aos_bus_event_t *e);

typedef struct {
    const char *trace_id;   /* NULL: any; copied */
    const char *project_id; /* NULL: any; copied */
    int value_only;         /* 1: only value events */
    /* < 0: only events newer than the subscription. >= 0: first every event
     * with id > after_id, read from the store in pages, then live: none
     * lost, none twice, in id order. */
    int64_t after_id;
} aos_bus_filter_t;

/* ev == NULL: the bus ended the subscription (store failure, shutdown);
 * sub is gone after the call. The callback may call aos_bus_unsubscribe. */
typedef void (*aos_bus_event_fn)(aos_bus_sub_t *sub, const aos_bus_event_t *ev, void *data);
/* Optional: 0 while the subscriber cannot take another page of replayed
 * events (the bus asks again a little later). */
typedef int (*aos_bus_ready_fn)(void *data);

int aos_bus_subscribe(aos_bus_t *bus, const aos_bus_filter_t *f, aos_bus_event_fn fn,
                      aos_bus_ready_fn ready, void *data, aos_bus_sub_t **out);
/* No callback runs for sub after this; safe from inside a callback. */
void aos_bus_unsubscribe(aos_bus_sub_t *sub);

/* The highest id delivered so far. */
int64_t aos_bus_last_id(const aos_bus_t *bus);
/* Active subscriptions, SSE streams included. */
size_t aos_bus_subscribers(const aos_bus_t *bus);

#endif
