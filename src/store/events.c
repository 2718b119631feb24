/* events.c - the outbox of the event bus: appending events, the cards that
 * number value events, the fold buffer of the aggregation window, and
 * reading events by id (store.h, "events (bus)").
 *
 * The bus decides what folds and for how long (src/bus); this file only
 * keeps the three tables consistent, in portable SQL, inside one savepoint
 * per operation so that an event joins the caller's transaction. While the
 * fold buffer is known to be empty (st->folds_maybe, internal.h) a value
 * event neither flushes its trace's folds nor deletes its card's fold:
 * both would find nothing. */
#include "store/internal.h"
#include "buf/buf.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EVENT_COLS                                                                                 \
    "id, trace_id, topic, type, severity, payload, created_at, card_id, card_version, project_id"
#define NEVENT_COLS 10

/* One envelope from the columns of EVENT_COLS, in order (the payload as
 * its text when raw). */
static json_t *event_from_row(const aos__sql_val_t *c, int raw)
{
    static const char *const names[NEVENT_COLS] = {
        "id",      "trace_id",   "topic",   "type",         "severity",
        "payload", "created_at", "card_id", "card_version", "project_id"};
    json_t *ev = json_object();
    if (!ev)
        return NULL;
    for (int i = 0; i < NEVENT_COLS; i++) {
        json_t *v;
        if (c[i].type == AOS__SQL_NULL)
            v = json_null();
        else if (c[i].type == AOS__SQL_INT)
            v = json_integer(c[i].i);
        else if (i == 5 && !raw) /* payload */
            v = json_loadb(c[i].p, c[i].len, 0, NULL);
        else if (c[i].type == AOS__SQL_TEXT)
            v = json_stringn(c[i].p, c[i].len);
        else
            v = NULL;
        /* the names are ASCII: no UTF-8 check of them for every row */
        if (!v || json_object_set_new_nocheck(ev, names[i], v) < 0) {
            json_decref(ev);
            return NULL;
        }
    }
    return ev;
}

struct collect {
    json_t *rows;
    int raw;
};

static int collect_event(const aos__sql_val_t *cols, int ncols, void *arg, aos_err_t *err)
{
    struct collect *c = arg;
    if (ncols != NEVENT_COLS)
        return aos_err_set(err, AOS_EINTERNAL, "event query returned %d columns", ncols);
    json_t *ev = event_from_row(cols, c->raw);
    if (!ev)
        return aos_err_set(err, AOS_ESTORE, "unreadable event row");
    if (json_array_append_new(c->rows, ev) < 0)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return 0;
}

static int read_int64(const aos__sql_val_t *cols, int ncols, void *arg, aos_err_t *err)
{
    int64_t *out = arg;
    if (ncols > 0 && cols[0].type == AOS__SQL_INT)
        *out = cols[0].i;
    return 0;
}

/* Writes the next version of card_id (NULL: no card) and the event itself;
 * *version gets the version when want_version (else 0: the card's row
 * gives it to the event's INSERT, one statement fewer). */
static int write_event(aos_store_t *st, const char *trace_id, const char *topic, const char *type,
                       const char *severity, const char *payload, const char *card_id, int card_new,
                       const char *project_id, const char *created_at, int64_t now_ms, int64_t *id,
                       int64_t *version, int want_version, aos_err_t *err)
{
    int rc;
    aos__sql_val_t version_val = aos__sql_null();
    *version = 0;
    if (card_id && card_new) {
        /* no row yet (the caller just read that, in this transaction): the
         * first version, one plain insert */
        aos__sql_val_t p[] = {aos__sql_text(card_id), aos__sql_int(now_ms)};
        rc = aos__store_exec(st,
                             "INSERT INTO event_cards (card_id, version, last_ms) VALUES (?, 1, ?)",
                             p, 2, NULL, err);
        if (rc < 0)
            return rc;
        *version = 1;
        version_val = aos__sql_int(1);
    } else if (card_id) {
        /* the upsert, then the version it wrote: two plain statements cost
         * SQLite less than one with RETURNING (a temporary table each time) */
        aos__sql_val_t p[] = {aos__sql_text(card_id), aos__sql_int(now_ms)};
        rc = aos__store_exec(st,
                             "INSERT INTO event_cards (card_id, version, last_ms) VALUES (?, 1, ?) "
                             "ON CONFLICT (card_id) DO UPDATE SET "
                             "version = event_cards.version + 1, last_ms = excluded.last_ms",
                             p, 2, NULL, err);
        if (rc == 0 && !want_version) {
            /* the version the upsert wrote, read by the INSERT itself */
            aos__sql_val_t q[] = {
                aos__sql_text(trace_id), aos__sql_text(topic),   aos__sql_text(type),
                aos__sql_text(severity), aos__sql_text(payload), aos__sql_text(created_at),
                aos__sql_text(card_id),  aos__sql_text(card_id), aos__sql_text(project_id)};
            rc = aos__store_exec(st,
                                 "INSERT INTO events (trace_id, topic, type, severity, payload, "
                                 "created_at, card_id, card_version, project_id) VALUES "
                                 "(?, ?, ?, ?, ?, ?, ?, "
                                 "(SELECT version FROM event_cards WHERE card_id = ?), ?)",
                                 q, 9, NULL, err);
            if (rc < 0)
                return rc;
            *id = aos__store_last_insert_id(st);
            return 0;
        }
        if (rc == 0)
            rc = aos__store_query(st, "SELECT version FROM event_cards WHERE card_id = ?", p, 1,
                                  read_int64, version, err);
        if (rc == 0 && *version <= 0)
            rc = aos_err_set(err, AOS_ESTORE, "the card %.64s has no version", card_id);
        if (rc < 0)
            return rc;
        version_val = aos__sql_int(*version);
    }
    aos__sql_val_t p[] = {aos__sql_text(trace_id),  aos__sql_text(topic),
                          aos__sql_text(type),      aos__sql_text(severity),
                          aos__sql_text(payload),   aos__sql_text(created_at),
                          aos__sql_text(card_id),   version_val,
                          aos__sql_text(project_id)};
    rc =
        aos__store_exec(st,
                        "INSERT INTO events (trace_id, topic, type, severity, payload, created_at, "
                        "card_id, card_version, project_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        p, 9, NULL, err);
    if (rc < 0)
        return rc;
    *id = aos__store_last_insert_id(st);
    return 0;
}

struct append {
    const aos_store_event_in_t *ev;
    int64_t now_ms, fold_ms;
    int64_t id, version;
    int want_version;
};

static int append_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct append *a = arg;
    const aos_store_event_in_t *ev = a->ev;
    const char *type = ev->type, *card_id = ev->card_id;
    const char *text = ev->payload ? ev->payload : "{}";
    int rc;
    if (!type || !type[0])
        return aos_err_set(err, AOS_EINVAL, "'type' is required");
    char now[32];
    aos_isotime_now(now);

    int card_new = 0; /* the card is known to have no row yet */
    if (card_id && a->fold_ms > 0) {
        int64_t last_ms = -1;
        aos__sql_val_t k = aos__sql_text(card_id);
        rc = aos__store_query(st, "SELECT last_ms FROM event_cards WHERE card_id = ?", &k, 1,
                              read_int64, &last_ms, err);
        if (rc < 0)
            return rc;
        card_new = last_ms < 0;
        if (last_ms >= 0 && a->now_ms - last_ms < a->fold_ms) {
            st->folds_maybe = 1;
            aos__sql_val_t p[] = {aos__sql_text(card_id),      aos__sql_int(last_ms + a->fold_ms),
                                  aos__sql_text(ev->trace_id), aos__sql_text(ev->topic),
                                  aos__sql_text(type),         aos__sql_text(ev->severity),
                                  aos__sql_text(text),         aos__sql_text(ev->project_id),
                                  aos__sql_text(now)};
            rc = aos__store_exec(st,
                                 "INSERT INTO event_folds (card_id, due_ms, trace_id, topic, type, "
                                 "severity, payload, project_id, created_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                                 "ON CONFLICT (card_id) DO UPDATE SET due_ms = excluded.due_ms, "
                                 "trace_id = excluded.trace_id, topic = excluded.topic, "
                                 "type = excluded.type, severity = excluded.severity, "
                                 "payload = excluded.payload, project_id = excluded.project_id, "
                                 "created_at = excluded.created_at",
                                 p, 9, NULL, err);
            a->id = a->version = 0;
            return rc;
        }
    }
    if (card_id && st->folds_maybe) {
        aos__sql_val_t k = aos__sql_text(card_id);
        rc = aos__store_exec(st, "DELETE FROM event_folds WHERE card_id = ?", &k, 1, NULL, err);
        if (rc < 0)
            return rc;
    }
    return write_event(st, ev->trace_id, ev->topic, type, ev->severity, text, card_id, card_new,
                       ev->project_id, now, a->now_ms, &a->id, &a->version, a->want_version, err);
}

int aos_store_event_put(aos_store_t *st, const aos_store_event_in_t *ev, int64_t now_ms,
                        int64_t fold_ms, int64_t *id, int64_t *card_version, aos_err_t *err)
{
    struct append a = {ev, now_ms, fold_ms, 0, 0, card_version != NULL};
    int rc = aos__store_in_tx(st, append_tx, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to append event");
    if (id)
        *id = a.id;
    if (card_version)
        *card_version = a.version;
    return 0;
}

/* The INSERT of 1..INSERT_ROWS events without a card. */
#define INSERT_ROWS 4
#define INSERT_HEAD                                                                                \
    "INSERT INTO events (trace_id, topic, type, severity, payload, created_at, project_id) "       \
    "VALUES "
#define INSERT_ROW "(?, ?, ?, ?, ?, ?, ?)"
static const char *const insert_sql[INSERT_ROWS + 1] = {
    NULL,
    INSERT_HEAD INSERT_ROW,
    INSERT_HEAD INSERT_ROW ", " INSERT_ROW,
    INSERT_HEAD INSERT_ROW ", " INSERT_ROW ", " INSERT_ROW,
    INSERT_HEAD INSERT_ROW ", " INSERT_ROW ", " INSERT_ROW ", " INSERT_ROW,
};

struct insert {
    const aos_store_event_in_t *ev;
    size_t n;
};

static int insert_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    const struct insert *a = arg;
    char now[32];
    aos_isotime_now(now);
    for (size_t at = 0; at < a->n; at += INSERT_ROWS) {
        size_t k = a->n - at < INSERT_ROWS ? a->n - at : INSERT_ROWS;
        aos__sql_val_t p[7 * INSERT_ROWS];
        for (size_t i = 0; i < k; i++) {
            const aos_store_event_in_t *e = &a->ev[at + i];
            if (!e->type || !e->type[0] || e->card_id)
                return aos_err_set(err, AOS_EINVAL, "event %zu: %s", at + i,
                                   e->card_id ? "has a card" : "'type' is required");
            aos__sql_val_t *r = p + 7 * i;
            r[0] = aos__sql_text(e->trace_id);
            r[1] = aos__sql_text(e->topic);
            r[2] = aos__sql_text(e->type);
            r[3] = aos__sql_text(e->severity);
            r[4] = aos__sql_text(e->payload ? e->payload : "{}");
            r[5] = aos__sql_text(now);
            r[6] = aos__sql_text(e->project_id);
        }
        int rc = aos__store_exec(st, insert_sql[k], p, (int)(7 * k), NULL, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int aos_store_event_insert(aos_store_t *st, const aos_store_event_in_t *ev, size_t n,
                           aos_err_t *err)
{
    struct insert a = {ev, n};
    int rc = n ? aos__store_in_tx(st, insert_tx, &a, err) : 0;
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to append events");
    return 0;
}

/* Folds ------------------------------------------------------------------ */

#define FOLD_COLS "card_id, trace_id, topic, type, severity, payload, project_id, created_at"

static int collect_fold(const aos__sql_val_t *c, int ncols, void *arg, aos_err_t *err)
{
    json_t *row = json_array();
    if (!row || json_array_append_new(arg, row) < 0)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    for (int i = 0; i < ncols; i++) {
        json_t *v = c[i].type == AOS__SQL_TEXT ? json_stringn(c[i].p, c[i].len) : json_null();
        if (!v || json_array_append_new(row, v) < 0)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    return 0;
}

struct flush {
    int64_t now_ms;
    const char *trace_id;
    int n;
    int64_t next_due;
    int want_next; /* the caller asks for next_due */
};

static int flush_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct flush *f = arg;
    if (f->trace_id && !st->folds_maybe)
        return 0; /* nothing of this trace (nor any other) is folded */
    json_t *rows = json_array();
    int rc;
    if (!rows)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    if (f->trace_id) {
        aos__sql_val_t p = aos__sql_text(f->trace_id);
        rc = aos__store_query(st,
                              "SELECT " FOLD_COLS " FROM event_folds WHERE trace_id = ? "
                              "ORDER BY due_ms, card_id",
                              &p, 1, collect_fold, rows, err);
    } else {
        aos__sql_val_t p = aos__sql_int(f->now_ms);
        rc = aos__store_query(st,
                              "SELECT " FOLD_COLS " FROM event_folds WHERE due_ms <= ? "
                              "ORDER BY due_ms, card_id",
                              &p, 1, collect_fold, rows, err);
    }
    size_t i;
    json_t *r;
    json_array_foreach(rows, i, r)
    {
        if (rc < 0)
            break;
#define COL(n) json_string_value(json_array_get(r, n))
        int64_t id, version;
        aos__sql_val_t k = aos__sql_text(COL(0));
        rc = aos__store_exec(st, "DELETE FROM event_folds WHERE card_id = ?", &k, 1, NULL, err);
        if (rc == 0)
            rc = write_event(st, COL(1), COL(2), COL(3), COL(4), COL(5), COL(0), 0, COL(6), COL(7),
                             f->now_ms, &id, &version, 0, err);
#undef COL
        if (rc == 0)
            f->n++;
    }
    json_decref(rows);
    if (rc == 0 && f->want_next) {
        f->next_due = 0;
        rc = aos__store_query(st, "SELECT MIN(due_ms) FROM event_folds", NULL, 0, read_int64,
                              &f->next_due, err);
    }
    return rc;
}

int aos_store_event_flush(aos_store_t *st, int64_t now_ms, const char *trace_id, int *n,
                          int64_t *next_due_ms, aos_err_t *err)
{
    struct flush f = {now_ms, trace_id, 0, 0, next_due_ms != NULL};
    /* in the caller's transaction when there is one (an event appended
     * with a transition: no savepoint of its own, as append), else one of
     * its own */
    uv_mutex_lock(&st->db_lock);
    int own = st->tx_depth == 0;
    int rc = aos__store_in_tx(st, flush_tx, &f, err);
    /* committed, all that was due written: what is left is what MIN(due_ms)
     * saw (NULL: nothing). Not in a caller's transaction: it may roll back. */
    if (rc == 0 && own && !trace_id && f.want_next)
        st->folds_maybe = f.next_due != 0;
    uv_mutex_unlock(&st->db_lock);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to flush folded events");
    if (n)
        *n = f.n;
    if (next_due_ms)
        *next_due_ms = f.next_due;
    return 0;
}

/* Reading ----------------------------------------------------------------- */

/* The statement of q and its parameters (p: 4): their number, or
 * AOS_EINVAL for a limit outside 1..AOS_STORE_LIST_MAX. The text is one of a few
 * fixed variants (order, filters), so each stays in the backend's statement
 * cache; each has an index to walk: the primary key, (trace_id, id) or
 * (project_id, id). */
static int event_query(const aos_store_event_query_t *q, char *sql, size_t size, aos__sql_val_t *p,
                       aos_err_t *err)
{
    if (q->limit < 1 || q->limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "unable to list events: limit must be 1..%d",
                           AOS_STORE_LIST_MAX);
    int np = 0;
    if (q->newest_first)
        p[np++] = aos__sql_int(q->before_id > 0 ? q->before_id : INT64_MAX);
    else
        p[np++] = aos__sql_int(q->after_id > 0 ? q->after_id : 0);
    if (q->trace_id)
        p[np++] = aos__sql_text(q->trace_id);
    if (q->project_id)
        p[np++] = aos__sql_text(q->project_id);
    p[np++] = aos__sql_int(q->limit);
    snprintf(sql, size,
             "SELECT " EVENT_COLS " FROM events WHERE id %s ?%s%s%s ORDER BY id %s LIMIT ?",
             q->newest_first ? "<" : ">", q->trace_id ? " AND trace_id = ?" : "",
             q->project_id ? " AND project_id = ?" : "",
             q->value_only ? " AND card_id IS NOT NULL" : "", q->newest_first ? "DESC" : "ASC");
    return np;
}

int aos_store_event_list(aos_store_t *st, const aos_store_event_query_t *q, json_t **out,
                         aos_err_t *err)
{
    *out = NULL;
    aos__sql_val_t p[4];
    char sql[512];
    int np = event_query(q, sql, sizeof(sql), p, err);
    if (np < 0)
        return np;
    json_t *rows = json_array();
    if (!rows)
        return aos_err_set(err, AOS_ENOMEM, "unable to list events: out of memory");
    struct collect c = {rows, q->raw_payload};
    int rc = aos__store_query(st, sql, p, np, collect_event, &c, err);
    if (rc < 0) {
        json_decref(rows);
        return aos__store_fail(err, rc, "unable to list events");
    }
    *out = rows;
    return 0;
}

struct scan {
    aos_store_event_fn fn;
    void *arg;
    int rc; /* fn's, when it stopped the read */
};

static int scan_event(const aos__sql_val_t *c, int ncols, void *arg, aos_err_t *err)
{
    /* the text columns of EVENT_COLS, in the order of AOS_STORE_EV_* */
    static const int cols[AOS_STORE_EV_NTEXT] = {1, 2, 3, 4, 5, 6, 7, 9};
    struct scan *s = arg;
    aos_store_event_row_t r;
    if (ncols != NEVENT_COLS || c[0].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable event row");
    r.id = c[0].i;
    r.card_version = c[8].type == AOS__SQL_INT ? c[8].i : 0;
    for (int k = 0; k < AOS_STORE_EV_NTEXT; k++) {
        const aos__sql_val_t *v = &c[cols[k]];
        if (v->type == AOS__SQL_NULL) {
            r.text[k] = NULL;
            r.len[k] = 0;
        } else if (v->type == AOS__SQL_TEXT) {
            r.text[k] = v->p;
            r.len[k] = v->len;
        } else {
            return aos_err_set(err, AOS_ESTORE, "unreadable event row");
        }
    }
    int rc = s->fn(&r, s->arg, err);
    if (rc)
        s->rc = rc;
    return rc;
}

int aos_store_event_scan(aos_store_t *st, const aos_store_event_query_t *q, aos_store_event_fn fn,
                         void *arg, aos_err_t *err)
{
    aos__sql_val_t p[4];
    char sql[512];
    int np = event_query(q, sql, sizeof(sql), p, err);
    if (np < 0)
        return np;
    struct scan s = {fn, arg, 0};
    int rc = aos__store_query(st, sql, p, np, scan_event, &s, err);
    if (rc < 0 && !s.rc)
        return aos__store_fail(err, rc, "unable to list events");
    return rc;
}

int aos_store_event_last_id(aos_store_t *st, int64_t *id, aos_err_t *err)
{
    *id = 0;
    int rc = aos__store_query(st, "SELECT COALESCE(MAX(id), 0) FROM events", NULL, 0, read_int64,
                              id, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read the last event id");
    return 0;
}
