/* bus.c - the core of the bus: subscriptions, the pump that reads what is
 * new from the backend and fans it out, replay for subscribers that resume
 * from an id, and publishing.
 *
 * No loss, no duplicate. The bus keeps tail_id, the last id the pump
 * delivered; each subscription keeps cursor, the last id it got, and is
 * offered an event only if its id is above the cursor. A subscription that
 * resumes from an id older than tail_id first reads pages from the backend
 * (replay) and ignores live events meanwhile; when a page comes back short
 * it has everything up to that read, and it turns live. Reads complete in
 * the order they were issued (the store has one FIFO worker), so every live
 * event it ignored was committed before its last read and so was in it; and
 * every later one arrives live, above its cursor.
 * While every subscription takes value events only (the Chat Hub's
 * streams, the monitor's analyzer), the pump reads value events only: the
 * step events between them are skipped, not read and dropped. A
 * subscription that takes every type makes the pump read everything again
 * from tail_id, and a value-only read in flight when it came is not
 * delivered but read again, all of it.
 *
 * Callbacks may unsubscribe anyone, subscribe, or free the bus: a dead
 * subscription is only marked during a fan-out and unlinked afterwards
 * (sweep), and the bus's memory goes only when nothing is in flight. */
#include "bus/internal.h"
#include "isotime/isotime.h"
#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAIL_PAGE   1000 /* rows per pump read (<= AOS_STORE_LIST_MAX) */
#define REPLAY_PAGE 256  /* rows per replay read */
#define RETRY_MS    20   /* replay waiting for ready(): ask again after */

static void pump(aos_bus_t *bus);
static int replay_next(aos_bus_sub_t *s);

/* Lifecycle ---------------------------------------------------------------- */

static void collect(aos_metrics_t *m, void *data)
{
    aos_bus_t *bus = data;
    aos_metric_set(bus->m_published, (double)bus->published);
    aos_metric_set(bus->m_delivered, (double)bus->delivered);
    aos_metric_set(bus->m_cut, (double)bus->cut);
    aos_metric_set(bus->m_subs, (double)bus->nsubs);
    aos_metric_set(bus->m_streams, (double)bus->nstreams);
}

static void on_kick(uv_async_t *h)
{
    pump(h->data);
}

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void timer_init(aos_bus_t *bus, uv_timer_t *t)
{
    uv_timer_init(bus->cfg.loop, t);
    uv_unref((uv_handle_t *)t);
    t->data = bus;
    bus->handles++;
}

int aos_bus_new(aos_bus_t **out, const aos_bus_cfg_t *cfg, aos_err_t *err)
{
    *out = NULL;
    if (!cfg->loop || !cfg->store)
        return aos_err_set(err, AOS_EINVAL, "unable to start the bus: no loop or store");
    aos_bus_t *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    bus->cfg = *cfg;
    if (!bus->cfg.poll_ms)
        bus->cfg.poll_ms = 500;
    if (!bus->cfg.heartbeat_ms)
        bus->cfg.heartbeat_ms = 15000;
    if (!bus->cfg.stream_buffer)
        bus->cfg.stream_buffer = 1 << 20;
    bus->be = &aos__bus_outbox;
    bus->be_data = aos__bus_outbox_new(cfg->store);
    if (!bus->be_data) {
        free(bus);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    int rc = bus->be->last_id(bus->be_data, &bus->tail_id, err);
    if (rc) {
        bus->be->free(bus->be_data);
        free(bus);
        return rc;
    }
    aos_map_init(&bus->by_trace);

    uv_async_init(cfg->loop, &bus->kick, on_kick);
    uv_unref((uv_handle_t *)&bus->kick);
    bus->kick.data = bus;
    bus->handles++;
    timer_init(bus, &bus->poll);
    timer_init(bus, &bus->fold);
    timer_init(bus, &bus->retry);
    timer_init(bus, &bus->heartbeat);
    uv_timer_start(&bus->poll, on_timer, bus->cfg.poll_ms, bus->cfg.poll_ms);

    aos_metrics_t *m = cfg->metrics;
    if (m) {
        bus->m_published = aos_metrics_counter(m, "aos_events_published_total",
                                               "Events made durable through the bus", NULL);
        bus->m_delivered = aos_metrics_counter(m, "aos_events_delivered_total",
                                               "Events written to value-event streams", NULL);
        bus->m_cut = aos_metrics_counter(
            m, "aos_events_slow_subscribers_total",
            "Value-event streams cut off because their client did not read", NULL);
        bus->m_subs = aos_metrics_gauge(m, "aos_events_subscribers",
                                        "Subscriptions to the bus, streams included", NULL);
        bus->m_streams =
            aos_metrics_gauge(m, "aos_events_streams", "Open value-event streams (SSE)", NULL);
        aos_metrics_on_collect(m, collect, bus);
    }
    /* folds left pending by a previous run are due by now */
    pump(bus);
    *out = bus;
    return 0;
}

static void free_sub(aos_bus_sub_t *s)
{
    free(s->trace_id);
    free(s->project_id);
    free(s);
}

static void unlink_sub(aos_bus_t *bus, aos_bus_sub_t *s)
{
    aos__bus_bucket_t *bk = s->bucket;
    if (s->prev)
        s->prev->next = s->next;
    else
        bk->head = s->next;
    if (s->next)
        s->next->prev = s->prev;
    if (!bk->head && bk != &bus->any) {
        aos_map_del(&bus->by_trace, s->trace_id);
        free(bk);
    }
    if (s->waiting) {
        aos_bus_sub_t **p = &bus->waiting;
        while (*p && *p != s)
            p = &(*p)->wnext;
        if (*p)
            *p = s->wnext;
        s->waiting = 0;
    }
}

/* Unlinks and frees dead subscriptions that no read is in flight for. */
static void sweep(aos_bus_t *bus)
{
    if (bus->dispatching)
        return;
    aos_bus_sub_t **p = &bus->graveyard;
    while (*p) {
        aos_bus_sub_t *s = *p;
        if (s->reading) {
            p = &s->anext;
            continue;
        }
        *p = s->anext;
        unlink_sub(bus, s);
        free_sub(s);
    }
}

void aos__bus_maybe_free(aos_bus_t *bus)
{
    if (!bus->closing || bus->handles || bus->jobs || bus->dispatching)
        return;
    sweep(bus);
    aos_map_release(&bus->by_trace);
    bus->be->free(bus->be_data);
    free(bus);
}

static void on_closed(uv_handle_t *h)
{
    aos_bus_t *bus = h->data;
    bus->handles--;
    aos__bus_maybe_free(bus);
}

/* Tells the subscriber its subscription is over, and ends it. */
static void end_sub(aos_bus_sub_t *s)
{
    if (s->dead)
        return;
    aos_bus_t *bus = s->bus;
    bus->dispatching++; /* s stays allocated while its callback unsubscribes */
    s->fn(s, NULL, s->data);
    aos_bus_unsubscribe(s);
    bus->dispatching--;
    sweep(bus);
}

void aos_bus_free(aos_bus_t *bus)
{
    if (!bus || bus->closing)
        return;
    bus->closing = 1;
    aos__bus_streams_close(bus);
    while (bus->all) /* each call takes the head off the list */
        end_sub(bus->all);
    uv_close((uv_handle_t *)&bus->kick, on_closed);
    uv_close((uv_handle_t *)&bus->poll, on_closed);
    uv_close((uv_handle_t *)&bus->fold, on_closed);
    uv_close((uv_handle_t *)&bus->retry, on_closed);
    uv_close((uv_handle_t *)&bus->heartbeat, on_closed);
    sweep(bus);
}

int64_t aos_bus_last_id(const aos_bus_t *bus)
{
    return bus->tail_id;
}

size_t aos_bus_subscribers(const aos_bus_t *bus)
{
    return bus->nsubs;
}

void aos_bus_kick(aos_bus_t *bus)
{
    if (bus)
        uv_async_send(&bus->kick);
}

int aos__bus_read(aos_bus_t *bus, const aos__bus_query_t *q, aos__bus_read_fn done, void *arg)
{
    int rc = bus->be->read(bus->be_data, q, done, arg);
    if (rc == 0)
        bus->jobs++;
    return rc;
}

/* Fan-out ---------------------------------------------------------------- */

static void offer(aos__bus_bucket_t *bk, const aos_bus_event_t *ev)
{
    for (aos_bus_sub_t *s = bk->head, *next; s; s = next) {
        next = s->next; /* s may unsubscribe; nothing is unlinked meanwhile */
        if (s->dead || !s->live || ev->id <= s->cursor)
            continue;
        if (s->value_only && !ev->value)
            continue;
        if (s->project_id && (!ev->project_id || strcmp(s->project_id, ev->project_id) != 0))
            continue;
        s->cursor = ev->id;
        s->fn(s, ev, s->data);
    }
}

static void dispatch(aos_bus_t *bus, const aos_bus_event_t *ev)
{
    offer(&bus->any, ev);
    if (ev->trace_id) {
        aos__bus_bucket_t *bk = aos_map_get(&bus->by_trace, ev->trace_id);
        if (bk)
            offer(bk, ev);
    }
}

/* Fans out what a read found after tail_id, in id order. */
static void deliver(aos_bus_t *bus, aos__bus_batch_t *b)
{
    bus->dispatching++;
    /* the loop's time, fixed for one turn of the loop: fan-outs in one turn
     * (several writes done at once) are one round, since nothing is sent
     * between them */
    bus->round = uv_now(bus->cfg.loop);
    for (size_t i = 0; i < b->n && !bus->closing; i++) {
        if (b->v[i].id <= bus->tail_id)
            continue; /* an earlier read delivered it */
        bus->tail_id = b->v[i].id;
        dispatch(bus, &b->v[i]);
    }
    bus->dispatching--;
    if (b->n == TAIL_PAGE)
        bus->pump_again = 1; /* there may be more */
}

static void pump_done(int status, const aos_err_t *err, aos__bus_batch_t *b, void *arg)
{
    aos_bus_t *bus = arg;
    bus->jobs--;
    bus->pumping = 0;
    if (bus->closing) {
        aos__bus_maybe_free(bus);
        return;
    }
    if (status) {
        aos_log_warn("bus", "unable to read new events: %s", aos_err_msg(err));
    } else {
        if (bus->pump_value_only && bus->nsubs_every > 0)
            bus->pump_again = 1; /* read it again: someone takes every event now */
        else
            deliver(bus, b);
        if (b->next_due_ms && !bus->closing) {
            int64_t wait = b->next_due_ms - aos_isotime_now_ms();
            uv_timer_start(&bus->fold, on_timer, wait > 0 ? (uint64_t)wait : 1, 0);
        }
    }
    sweep(bus);
    if (bus->closing) {
        aos__bus_maybe_free(bus);
        return;
    }
    if (bus->pump_again) {
        bus->pump_again = 0;
        pump(bus);
    }
}

/* Reads what is new since tail_id (writing the folds that are due first).
 * One read at a time; a kick meanwhile makes another one follow. */
static void pump(aos_bus_t *bus)
{
    if (bus->closing)
        return;
    if (bus->pumping) {
        bus->pump_again = 1;
        return;
    }
    aos__bus_query_t q = {0};
    q.after_id = bus->tail_id;
    q.limit = TAIL_PAGE;
    q.flush = 1;
    q.value_only = bus->nsubs_every == 0;
    bus->pump_value_only = q.value_only;
    int rc = aos__bus_read(bus, &q, pump_done, bus);
    if (rc == 0)
        bus->pumping = 1;
    else if (rc != AOS_EUNAVAIL)
        aos_log_warn("bus", "unable to read new events: %s", aos_strerror(rc));
}

/* Subscriptions ------------------------------------------------------------ */

static void replay_done(int status, const aos_err_t *err, aos__bus_batch_t *b, void *arg)
{
    aos_bus_sub_t *s = arg;
    aos_bus_t *bus = s->bus;
    bus->jobs--;
    s->reading = 0;
    if (s->dead || bus->closing) {
        sweep(bus);
        aos__bus_maybe_free(bus);
        return;
    }
    if (status) {
        aos_log_warn("bus", "unable to replay events: %s", aos_err_msg(err));
        end_sub(s);
        sweep(bus);
        return;
    }
    bus->dispatching++;
    for (size_t i = 0; i < b->n && !s->dead; i++) {
        aos_bus_event_t *ev = &b->v[i];
        if (ev->id <= s->cursor)
            continue;
        ev->replay = 1;
        s->cursor = ev->id;
        s->fn(s, ev, s->data);
    }
    bus->dispatching--;
    if (!s->dead && !bus->closing) {
        if (b->n < REPLAY_PAGE)
            s->live = 1; /* caught up: see the top of the file */
        else if (replay_next(s))
            end_sub(s);
    }
    sweep(bus);
    if (bus->closing)
        aos__bus_maybe_free(bus);
}

static void on_retry(uv_timer_t *t)
{
    aos_bus_t *bus = t->data;
    aos_bus_sub_t *list = bus->waiting;
    bus->waiting = NULL;
    while (list && !bus->closing) {
        aos_bus_sub_t *s = list;
        list = s->wnext;
        s->waiting = 0;
        if (!s->dead && replay_next(s))
            end_sub(s);
    }
    sweep(bus);
}

/* Reads the next replay page for s, or parks it until ready() says yes. */
static int replay_next(aos_bus_sub_t *s)
{
    aos_bus_t *bus = s->bus;
    if (s->ready && !s->ready(s->data)) {
        s->waiting = 1;
        s->wnext = bus->waiting;
        bus->waiting = s;
        if (!uv_is_active((uv_handle_t *)&bus->retry))
            uv_timer_start(&bus->retry, on_retry, RETRY_MS, 0);
        return 0;
    }
    aos__bus_query_t q = {0};
    q.after_id = s->cursor;
    q.trace_id = s->trace_id;
    q.project_id = s->project_id;
    q.value_only = s->value_only;
    q.limit = REPLAY_PAGE;
    int rc = aos__bus_read(bus, &q, replay_done, s);
    if (rc == 0)
        s->reading = 1;
    return rc;
}

int aos_bus_subscribe(aos_bus_t *bus, const aos_bus_filter_t *f, aos_bus_event_fn fn,
                      aos_bus_ready_fn ready, void *data, aos_bus_sub_t **out)
{
    *out = NULL;
    if (bus->closing)
        return AOS_EUNAVAIL;
    if (!fn)
        return AOS_EINVAL;
    aos_bus_sub_t *s = calloc(1, sizeof(*s));
    if (!s)
        return AOS_ENOMEM;
    s->bus = bus;
    s->trace_id = f->trace_id ? strdup(f->trace_id) : NULL;
    s->project_id = f->project_id ? strdup(f->project_id) : NULL;
    if ((f->trace_id && !s->trace_id) || (f->project_id && !s->project_id)) {
        free_sub(s);
        return AOS_ENOMEM;
    }
    aos__bus_bucket_t *bk = &bus->any;
    if (s->trace_id) {
        bk = aos_map_get(&bus->by_trace, s->trace_id);
        if (!bk) {
            bk = calloc(1, sizeof(*bk));
            if (!bk || aos_map_put(&bus->by_trace, s->trace_id, bk)) {
                free(bk);
                free_sub(s);
                return AOS_ENOMEM;
            }
        }
    }
    s->value_only = f->value_only;
    s->fn = fn;
    s->ready = ready;
    s->data = data;
    s->bucket = bk;
    s->next = bk->head;
    if (bk->head)
        bk->head->prev = s;
    bk->head = s;
    s->anext = bus->all;
    if (bus->all)
        bus->all->aprev = s;
    bus->all = s;
    bus->nsubs++;
    if (!s->value_only)
        bus->nsubs_every++;

    if (f->after_id < 0 || f->after_id >= bus->tail_id) {
        s->cursor = f->after_id < 0 ? bus->tail_id : f->after_id;
        s->live = 1;
    } else {
        s->cursor = f->after_id;
        int rc = replay_next(s);
        if (rc) {
            aos_bus_unsubscribe(s);
            return rc;
        }
    }
    *out = s;
    return 0;
}

void aos_bus_unsubscribe(aos_bus_sub_t *s)
{
    if (!s || s->dead)
        return;
    aos_bus_t *bus = s->bus;
    s->dead = 1;
    bus->nsubs--;
    if (!s->value_only)
        bus->nsubs_every--;
    /* out of bus->all at once, into the graveyard (same links) */
    if (s->aprev)
        s->aprev->anext = s->anext;
    else
        bus->all = s->anext;
    if (s->anext)
        s->anext->aprev = s->aprev;
    s->aprev = NULL;
    s->anext = bus->graveyard;
    bus->graveyard = s;
    sweep(bus);
}

/* Publishing --------------------------------------------------------------- */

/* 1 if any event of a write was folded. */
static int results_folded(const json_t *results)
{
    size_t i;
    json_t *r;
    json_array_foreach(results, i, r) if (json_is_true(json_object_get(r, "folded"))) return 1;
    return 0;
}

struct publish {
    aos_bus_t *bus;
    aos_bus_done_fn done;
    void *ctx;
    size_t n;
};

static void publish_done(int status, const aos_err_t *err, const json_t *results,
                         aos__bus_batch_t *b, void *arg)
{
    struct publish *p = arg;
    aos_bus_t *bus = p->bus;
    bus->jobs--;
    if (status == 0)
        bus->published += p->n;
    if (p->done)
        p->done(status, err, results, p->ctx);
    free(p);
    if (!bus->closing) {
        if (b) /* the write read its events back: deliver them now */
            deliver(bus, b);
        if (!b || results_folded(results))
            pump(bus); /* a folded event needs the fold timer armed */
        else if (bus->pump_again && !bus->pumping) {
            bus->pump_again = 0;
            pump(bus);
        }
        sweep(bus);
    }
    aos__bus_maybe_free(bus);
}

int aos_bus_publish(aos_bus_t *bus, json_t *events, aos_bus_done_fn done, void *ctx, aos_err_t *err)
{
    json_t *checked = NULL;
    int rc;
    if (bus->closing) {
        rc = aos_err_set(err, AOS_EUNAVAIL, "the bus is shutting down");
        goto out;
    }
    int batch = json_is_array(events);
    size_t n = batch ? json_array_size(events) : 1;
    if (batch && (n == 0 || n > AOS_BUS_MAX_BATCH)) {
        rc = aos_err_set(err, AOS_EINVAL, "a batch holds 1 to %d events", AOS_BUS_MAX_BATCH);
        goto out;
    }
    checked = json_array();
    if (!checked) {
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *env;
        rc = aos_bus_event_check(batch ? json_array_get(events, i) : events, &env, err);
        if (rc) {
            if (batch) {
                char msg[sizeof(err->msg)];
                snprintf(msg, sizeof(msg), "%s", aos_err_msg(err));
                aos_err_set(err, rc, "event %zu: %s", i, msg);
            }
            goto out;
        }
        if (json_array_append_new(checked, env)) {
            rc = aos_err_set(err, AOS_ENOMEM, NULL);
            goto out;
        }
    }
    struct publish *p = calloc(1, sizeof(*p));
    if (!p) {
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    p->bus = bus;
    p->done = done;
    p->ctx = ctx;
    p->n = n;
    rc = bus->be->write(bus->be_data, checked, bus->tail_id, TAIL_PAGE, publish_done, p);
    checked = NULL; /* stolen */
    if (rc) {
        free(p);
        aos_err_set(err, rc, "unable to publish: %s", aos_strerror(rc));
        goto out;
    }
    bus->jobs++;
out:
    json_decref(events);
    json_decref(checked);
    return rc;
}
