/* outbox.c - the default bus backend: the events table of the store (an
 * outbox, SPEC §4), written and read by jobs on the store's worker thread.
 *
 * Writes apply the fold policy of bus.h with the store's event_cards and
 * event_folds tables, in the same transaction as the events, so a folded
 * update is as durable as a written one and is flushed after a restart.
 * Reads turn rows into delivered events (columns + SSE frame) on the
 * worker, so the loop thread only matches and copies. No envelope is built
 * and the payload stays the stored text: the frame is made from the
 * columns, and the envelope only for a subscriber that looks into it
 * (aos_bus_event_json). */
#include "bus/internal.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    aos_store_t *st; /* borrowed */
    /* Worker thread only: where the last write's read-back ended. The next
     * write reads back from there, not from the loop's older cursor, so a
     * queue of writes does not read the same rows again and again. Done
     * callbacks run in job order, so everything up to it has been handed to
     * the loop by the time the next write's done runs. */
    int64_t read_back;
} outbox_t;

void *aos__bus_outbox_new(aos_store_t *st)
{
    outbox_t *ob = calloc(1, sizeof(*ob));
    if (ob)
        ob->st = st;
    return ob;
}

static void outbox_free(void *be)
{
    free(be);
}

int aos__bus_append_in(aos_store_t *st, const aos_store_event_in_t *ev, int64_t now_ms, int64_t *id,
                       int64_t *version, aos_err_t *err)
{
    int64_t fold_ms = aos_bus_fold_window_ms(ev->type);
    /* a task's pending progress goes out before its next value event */
    if (fold_ms == 0 && ev->trace_id && aos_bus_is_value_type(ev->type)) {
        int rc = aos_store_event_flush(st, now_ms, ev->trace_id, NULL, NULL, err);
        if (rc)
            return rc;
    }
    return aos_store_event_put(st, ev, now_ms, fold_ms, id, version, err);
}

static const char *str(const json_t *env, const char *key)
{
    return json_string_value(json_object_get(env, key));
}

int aos__bus_append_checked(aos_store_t *st, const json_t *env, int64_t now_ms, int64_t *id,
                            int64_t *version, aos_err_t *err)
{
    json_t *payload = json_object_get(env, "payload");
    char *text = json_is_object(payload) ? aos_buf_json_text(payload, NULL) : NULL;
    if (json_is_object(payload) && !text)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    aos_store_event_in_t in = {
        .type = str(env, "type"),
        .trace_id = str(env, "trace_id"),
        .topic = str(env, "topic"),
        .severity = str(env, "severity"),
        .card_id = str(env, "card_id"),
        .project_id = str(env, "project_id"),
        /* a checked envelope's payload is its text (event.c) */
        .payload = text ? text : json_string_value(payload),
    };
    int rc = aos__bus_append_in(st, &in, now_ms, id, version, err);
    free(text);
    return rc;
}

int aos_bus_append_in_tx(aos_store_t *st, const aos_store_event_in_t *ev, json_t *payload,
                         int64_t *id, aos_err_t *err)
{
    aos_store_event_in_t in = *ev;
    aos_buf_t text;
    char card[AOS__BUS_CARD_MAX];
    int64_t got = 0;
    aos_buf_init(&text, AOS_BUS_MAX_PAYLOAD);
    int rc = aos__bus_event_check_in(&in, payload, &text, card, err);
    if (rc == 0)
        rc = aos__bus_append_in(st, &in, aos_isotime_now_ms(), &got, NULL, err);
    aos_buf_release(&text);
    if (id)
        *id = rc ? 0 : got;
    return rc;
}

static int append_tx(aos_store_t *st, json_t *event, int own, int64_t *id, aos_err_t *err)
{
    json_t *env;
    int64_t got = 0;
    int rc = aos__bus_event_check(event, own, &env, err);
    if (rc)
        return rc;
    rc = aos__bus_append_checked(st, env, aos_isotime_now_ms(), &got, NULL, err);
    json_decref(env);
    if (id)
        *id = rc ? 0 : got;
    return rc;
}

int aos_bus_append_tx(aos_store_t *st, json_t *event, int64_t *id, aos_err_t *err)
{
    return append_tx(st, event, 0, id, err);
}

int aos_bus_append_tx_own(aos_store_t *st, json_t *event, int64_t *id, aos_err_t *err)
{
    return append_tx(st, event, 1, id, err);
}

int aos_bus_append_in_n_tx(aos_store_t *st, const aos_store_event_in_t *ev, json_t *const *payload,
                           size_t n, aos_err_t *err)
{
    if (n > AOS_BUS_APPEND_N_MAX)
        return aos_err_set(err, AOS_EINVAL, "more than %d events", AOS_BUS_APPEND_N_MAX);
    aos_store_event_in_t in[AOS_BUS_APPEND_N_MAX] = {{0}};
    aos_buf_t text[AOS_BUS_APPEND_N_MAX];
    char card[AOS__BUS_CARD_MAX];
    size_t made = 0;
    int rc = 0;
    for (; made < n && rc == 0; made++) {
        in[made] = ev[made];
        aos_buf_init(&text[made], AOS_BUS_MAX_PAYLOAD);
        if (ev[made].type && aos_bus_is_value_type(ev[made].type))
            rc = aos_err_set(err, AOS_EINVAL, "'%s' is a value event", ev[made].type);
        else
            rc = aos__bus_event_check_in(&in[made], payload[made], &text[made], card, err);
    }
    if (rc == 0)
        rc = aos_store_event_insert(st, in, n, err);
    for (size_t i = 0; i < made; i++)
        aos_buf_release(&text[i]);
    return rc;
}

/* Writes ------------------------------------------------------------------ */

struct write_job {
    outbox_t *ob;
    json_t *events;               /* owned: checked envelopes */
    json_t *results;              /* owned */
    aos_store_event_query_t tail; /* what to read back after the commit */
    aos__bus_batch_t *b;          /* owned: what was read back */
    aos__bus_write_fn done;
    void *arg;
};

static int read_batch(aos_store_t *st, const aos_store_event_query_t *q, aos__bus_batch_t *b,
                      aos_err_t *err);

static int write_all(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct write_job *j = arg;
    int64_t now = aos_isotime_now_ms();
    size_t i;
    json_t *ev;
    json_array_clear(j->results);
    json_array_foreach(j->events, i, ev)
    {
        int64_t id = 0, version = 0;
        int rc = aos__bus_append_checked(st, ev, now, &id, &version, err);
        if (rc) {
            char msg[sizeof(err->msg)];
            snprintf(msg, sizeof(msg), "%s", aos_err_msg(err));
            return aos_err_set(err, rc, "event %zu: %s", i, msg);
        }
        json_t *card = json_object_get(ev, "card_id");
        json_t *r = json_pack(
            "{s:o, s:O, s:O, s:o, s:b}", "id", id ? json_integer(id) : json_null(), "type",
            json_object_get(ev, "type"), "card_id", card ? card : json_null(), "card_version",
            version ? json_integer(version) : json_null(), "folded", id == 0);
        if (!r || json_array_append_new(j->results, r))
            return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    return 0;
}

static int write_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct write_job *j = arg;
    int rc = aos_store_tx(st, write_all, arg, err);
    if (rc || !j->b)
        return rc;
    aos_err_t ignored = {0};
    if (j->tail.after_id < j->ob->read_back)
        j->tail.after_id = j->ob->read_back;
    if (read_batch(st, &j->tail, j->b, &ignored)) {
        /* committed all the same: the pump will read them */
        aos__bus_batch_free(j->b);
        j->b = NULL;
    } else if (j->b->n) {
        j->ob->read_back = j->b->v[j->b->n - 1].id;
    }
    return 0;
}

static void write_done(int status, const aos_err_t *err, void *arg)
{
    struct write_job *j = arg;
    j->done(status, err, status ? NULL : j->results, status ? NULL : j->b, j->arg);
    aos__bus_batch_free(j->b);
    json_decref(j->events);
    json_decref(j->results);
    free(j);
}

static int outbox_write(void *be, json_t *events, int64_t after_id, int limit,
                        aos__bus_write_fn done, void *arg)
{
    outbox_t *ob = be;
    struct write_job *j = calloc(1, sizeof(*j));
    if (!j) {
        json_decref(events);
        return AOS_ENOMEM;
    }
    j->ob = ob;
    j->events = events;
    j->results = json_array();
    j->tail.after_id = after_id;
    j->tail.limit = limit;
    j->b = limit > 0 ? calloc(1, sizeof(*j->b)) : NULL;
    j->done = done;
    j->arg = arg;
    int rc = j->results ? aos_store_submit(ob->st, write_job, write_done, j) : AOS_ENOMEM;
    if (rc) {
        aos__bus_batch_free(j->b);
        json_decref(j->events);
        json_decref(j->results);
        free(j);
    }
    return rc;
}

/* Reads ------------------------------------------------------------------- */

struct read_job {
    aos_store_event_query_t q;
    char *trace_id, *project_id; /* owned copies for q */
    int flush;
    aos__bus_batch_t *b;
    aos__bus_read_fn done;
    void *arg;
};

struct take {
    aos__bus_batch_t *b;
    size_t cap;
};

/* One row into the next event of the batch. */
static int take_row(const aos_store_event_row_t *r, void *arg, aos_err_t *err)
{
    struct take *t = arg;
    aos__bus_batch_t *b = t->b;
    if (b->n == t->cap) {
        size_t cap = t->cap ? 4 * t->cap : 16;
        aos_bus_event_t *v = realloc(b->v, cap * sizeof(*v));
        if (!v)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        b->v = v;
        t->cap = cap;
    }
    if (aos__bus_event_init(&b->v[b->n], r, 1))
        return aos_err_set(err, AOS_ENOMEM, NULL);
    b->n++;
    return 0;
}

/* Events matching q into b, each with its SSE frame: straight from the
 * rows' columns, no envelope built (aos_bus_event_json makes it when a
 * subscriber asks). */
static int read_batch(aos_store_t *st, const aos_store_event_query_t *q, aos__bus_batch_t *b,
                      aos_err_t *err)
{
    struct take t = {b, 0};
    return aos_store_event_scan(st, q, take_row, &t, err);
}

static int read_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct read_job *j = arg;
    int rc = 0;
    if (j->flush)
        rc = aos_store_event_flush(st, aos_isotime_now_ms(), NULL, NULL, &j->b->next_due_ms, err);
    if (rc == 0)
        rc = read_batch(st, &j->q, j->b, err);
    return rc;
}

static void read_done(int status, const aos_err_t *err, void *arg)
{
    struct read_job *j = arg;
    j->done(status, err, j->b, j->arg);
    aos__bus_batch_free(j->b);
    free(j->trace_id);
    free(j->project_id);
    free(j);
}

static int outbox_read(void *be, const aos__bus_query_t *q, aos__bus_read_fn done, void *arg)
{
    outbox_t *ob = be;
    struct read_job *j = calloc(1, sizeof(*j));
    if (!j)
        return AOS_ENOMEM;
    j->b = calloc(1, sizeof(*j->b));
    j->trace_id = q->trace_id ? strdup(q->trace_id) : NULL;
    j->project_id = q->project_id ? strdup(q->project_id) : NULL;
    int rc = AOS_ENOMEM;
    if (j->b && (j->trace_id || !q->trace_id) && (j->project_id || !q->project_id)) {
        j->q.newest_first = q->newest_first;
        j->q.after_id = q->after_id;
        j->q.before_id = q->before_id;
        j->q.trace_id = j->trace_id;
        j->q.project_id = j->project_id;
        j->q.value_only = q->value_only;
        j->q.limit = q->limit;
        j->flush = q->flush;
        j->done = done;
        j->arg = arg;
        rc = aos_store_submit(ob->st, read_job, read_done, j);
    }
    if (rc) {
        aos__bus_batch_free(j->b);
        free(j->trace_id);
        free(j->project_id);
        free(j);
    }
    return rc;
}

static int outbox_last_id(void *be, int64_t *id, aos_err_t *err)
{
    outbox_t *ob = be;
    return aos_store_event_last_id(ob->st, id, err);
}

const aos__bus_backend_t aos__bus_outbox = {
    "outbox", outbox_write, outbox_read, outbox_last_id, outbox_free,
};
