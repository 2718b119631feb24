/* logs.c - the log service: the publish, query and subscribe operations
 * shared by REST and MCP, the REST and SSE routes, the capture of aosd's own
 * log lines, and retention. See logs.h.
 *
 * Work is split between the loop and the store's worker: the loop parses,
 * validates and redacts a batch, the worker inserts it in one transaction
 * (one prepared statement), and the done callback, back on the loop, answers
 * the client and fans the entries out to the live streams. The worker runs
 * jobs in submission order and their done callbacks run in the same order;
 * a stream resuming from an id relies on that (see replay below).
 *
 * The full-text index and the trace and topic groups trail the table
 * (store.h): an insert writes only the entries and the time index, and
 * fill jobs of their own move the oldest unindexed entries into the other
 * indexes, INDEX_CHUNK at a time, submitted only when no insert group is
 * queued or running. A batch arriving during a fill waits for one chunk at
 * most, never for a whole window of the indexes, and the fills use the
 * store's idle time. Should inserts never leave the store idle, a fill of
 * ~2 ms goes in between two of them once INDEX_BEHIND entries wait, and a
 * fill of the whole tail once INDEX_FAR do (a load at full speed), so that
 * queries check a bounded tail. */
#include "logs/internal.h"
#include "isotime/isotime.h"

#include "log/log.h"
#include "redact/redact.h"
#include "utf8/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STREAMS_MAX      1024      /* open SSE streams */
#define STREAM_BUFFER    (1 << 20) /* unsent bytes after which a stream is dropped */
#define REPLAY_PAGE      500       /* entries per replay query */
#define HEARTBEAT_MS     15000
#define CAPTURE_MAX      10000 /* own log lines waiting to be stored */
#define CAPTURE_BATCH    512   /* store at once when this many wait */
#define CAPTURE_DELAY_MS 50    /* else gather for this long */
#define RETAIN_CHUNK     10000 /* entries deleted per retention job */
#define GROUP_MAX        20000 /* entries inserted in one transaction, batches allowing */
#define GROUPS_INFLIGHT  2     /* one inserting, one queued: the worker never waits for us */
#define INDEX_CHUNK      AOS__LOGS_INDEX_CHUNK
#define INDEX_BEHIND     AOS__LOGS_INDEX_BEHIND
#define INDEX_FAR        AOS__LOGS_INDEX_FAR

typedef struct sub sub_t;

/* One SSE stream. Owned by the list in aos_logs_t until its request
 * closes; while a replay job is in flight the job's done callback frees it
 * instead. */
struct sub {
    aos_logs_t *l;
    aos_http_req_t *req; /* NULL once the client left */
    aos__logs_query_t q;
    int64_t last_id; /* the newest entry sent (or the resume point) */
    int replaying;   /* catching up from the store; live entries wait */
    int ended;       /* we closed the stream (overflow, shutdown) */
    sub_t *prev, *next;
};

struct aos_logs_s {
    aos_logs_cfg_t cfg;
    aos_builtin_t builtin;
    aos_logs_redact_fn redact;
    void *redact_data;       /* borrowed */
    uv_rwlock_t redact_lock; /* parsers (thread pool) read; setting a redactor
                                writes */

    /* live streams */
    sub_t *subs;
    size_t nsubs;
    uv_timer_t *heartbeat; /* owned; freed by its close callback */

    /* capture of aosd's own lines: the sink (any thread) fills the queue */
    uv_mutex_t cap_lock;
    json_t *cap_queue;     /* under cap_lock: copies of aos_log entries */
    uint64_t cap_dropped;  /* under cap_lock: lines lost to a full queue */
    int cap_closed;        /* under cap_lock */
    uint64_t cap_reported; /* loop: dropped lines already reported */
    int capturing;
    uv_async_t *cap_async; /* owned; freed by its close callback */
    uv_timer_t *cap_timer;

    /* group commit: validated batches waiting for the store, oldest first */
    struct op *ins_head, **ins_tail;
    int ins_inflight; /* groups submitted to the store, not yet done */
    int parsing;      /* batches being parsed on the thread pool */

    /* the trailing indexes */
    int64_t unindexed;  /* entries they trail by, as of the last insert or fill */
    int indexing;       /* a fill job is in flight */
    int index_failed;   /* the last fill failed (reported once) */
    int64_t chunk_left; /* of the chunk the idle fills are on (each ends within its budget) */
    uint64_t fills_idle, fills_behind;

    /* retention */
    uv_timer_t *retain_timer;
    int retaining;

    int shut;
    aos_metric_t *m_entries, *m_dropped, *m_deleted, *m_streams;
};

static void handle_free(uv_handle_t *h)
{
    free(h);
}

/* ---- live streams --------------------------------------------------------- */

static void sub_free(sub_t *s)
{
    aos__logs_query_release(&s->q);
    free(s);
}

static void sub_unlink(aos_logs_t *l, sub_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else if (l->subs == s)
        l->subs = s->next;
    if (s->next)
        s->next->prev = s->prev;
    s->prev = s->next = NULL;
    l->nsubs--;
    if (l->m_streams)
        aos_metric_set(l->m_streams, (double)l->nsubs);
}

/* Ends the stream from our side; the client may resume from its last id. */
static void sub_end(sub_t *s, const char *reason)
{
    if (!s->req || s->ended)
        return;
    s->ended = 1;
    json_t *d = json_pack("{s:s, s:I}", "reason", reason, "last_id", (json_int_t)s->last_id);
    char *text = d ? json_dumps(d, JSON_COMPACT) : NULL;
    json_decref(d);
    if (text) {
        char frame[256];
        int n = snprintf(frame, sizeof(frame), "event: end\ndata: %s\n\n", text);
        if (n > 0 && (size_t)n < sizeof(frame))
            aos_http_stream_write(s->req, frame, (size_t)n);
        free(text);
    }
    aos_http_stream_close(s->req);
}

/* A client that left STREAM_BUFFER bytes unread is not reading and is
 * dropped, so that it costs bounded memory: at most that plus one batch.
 * The check comes before a batch, not inside it, so that a batch larger
 * than the buffer still reaches a client that reads. */
static int sub_check(sub_t *s)
{
    if (!s->req || s->ended)
        return 0;
    if (aos_http_stream_pending(s->req) > STREAM_BUFFER) {
        sub_end(s, "slow consumer");
        return 0;
    }
    return 1;
}

static void sub_write(sub_t *s, const char *data, size_t len)
{
    if (s->req && !s->ended && aos_http_stream_write(s->req, data, len) < 0)
        sub_end(s, "out of memory");
}

/* "id: N\nevent: log\ndata: {...}\n\n" for entry e. */
static int frame_entry(aos_buf_t *b, int64_t id, const json_t *e)
{
    char *text = json_dumps(e, JSON_COMPACT);
    if (!text)
        return AOS_ENOMEM;
    aos_buf_reset(b);
    int rc = aos_buf_printf(b, "id: %lld\nevent: log\ndata: %s\n\n", (long long)id, text);
    free(text);
    return rc;
}

/* Right after a batch committed: each live stream gets the entries it
 * matches and has not had. Streams still replaying skip them: their replay
 * query runs after this batch's insert and will read them. */
static void fanout(aos_logs_t *l, const aos__logs_batch_t *b)
{
    if (!l->subs)
        return;
    for (sub_t *s = l->subs, *next; s; s = next) {
        next = s->next;
        sub_check(s);
    }
    aos_buf_t frame;
    aos_buf_init(&frame, 0);
    for (size_t i = 0; i < b->n; i++) {
        const aos_store_log_t *r = &b->rows[i];
        int built = 0;
        for (sub_t *s = l->subs, *next; s; s = next) {
            next = s->next;
            if (!s->req || s->ended || s->replaying || r->id <= s->last_id ||
                !aos__logs_query_match(&s->q, r))
                continue;
            if (!built) {
                json_t *e = aos__logs_entry_json(b, i);
                int rc = e ? frame_entry(&frame, r->id, e) : AOS_ENOMEM;
                json_decref(e);
                if (rc < 0)
                    break;
                built = 1;
            }
            s->last_id = r->id;
            sub_write(s, frame.ptr, frame.len);
        }
    }
    aos_buf_release(&frame);
}

/* Replay: a stream that resumes from an id reads what it missed from the
 * store, a page at a time, before it takes live entries. Batches committed
 * before a page's query are in the page; those committed after it reach the
 * stream live (their done callbacks run after the page's). */
struct replay {
    sub_t *s;
    aos_store_logs_filter_t f;
    json_t *rows;
};

static int replay_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct replay *r = arg;
    return aos_store_logs_query(st, &r->f, &r->rows, err);
}

static void replay_next(sub_t *s);

static void replay_done(int status, const aos_err_t *err, void *arg)
{
    struct replay *r = arg;
    sub_t *s = r->s;
    size_t n = json_array_size(r->rows);
    if (!s->req) { /* the client left meanwhile */
        sub_free(s);
        goto out;
    }
    if (status) {
        aos_log_warn("logs", "stream replay failed: %s", aos_err_msg(err));
        s->replaying = 0;
        sub_end(s, "store error");
        goto out;
    }
    sub_check(s);
    aos_buf_t frame;
    aos_buf_init(&frame, 0);
    size_t i;
    json_t *e;
    json_array_foreach(r->rows, i, e)
    {
        int64_t id = json_integer_value(json_object_get(e, "id"));
        if (frame_entry(&frame, id, e) < 0)
            break;
        s->last_id = id;
        sub_write(s, frame.ptr, frame.len);
    }
    aos_buf_release(&frame);
    if (n == (size_t)r->f.limit && !s->ended && !s->l->shut)
        replay_next(s);
    else
        s->replaying = 0;
out:
    json_decref(r->rows);
    free(r);
}

static void replay_next(sub_t *s)
{
    struct replay *r = calloc(1, sizeof(*r));
    if (r) {
        r->s = s;
        r->f = s->q.f;
        r->f.after_id = s->last_id;
        r->f.before_id = 0;
        r->f.ascending = 1;
        r->f.limit = REPLAY_PAGE;
    }
    if (!r || aos_store_submit(s->l->cfg.store, replay_run, replay_done, r) < 0) {
        free(r);
        s->replaying = 0;
        sub_end(s, "unavailable");
        return;
    }
    s->replaying = 1;
}

static void sub_closed(aos_http_req_t *req, int aborted, void *data)
{
    sub_t *s = data;
    s->req = NULL;
    sub_unlink(s->l, s);
    if (!s->replaying)
        sub_free(s);
}

static void on_heartbeat(uv_timer_t *t)
{
    aos_logs_t *l = t->data;
    for (sub_t *s = l->subs, *next; s; s = next) {
        next = s->next;
        if (sub_check(s))
            sub_write(s, ": ping\n\n", 8);
    }
}

/* ---- operations -------------------------------------------------------------- */

struct op {
    aos_logs_t *l;
    struct op *next; /* in l's insert queue */
    aos__logs_op_t kind;
    const char *via;
    aos__logs_done_fn done;
    void *ctx;
    aos__logs_batch_t batch; /* publish */
    /* publish: parsed on libuv's thread pool, from args or a raw body */
    uv_work_t work;
    json_t *args;
    char *body;
    size_t body_len;
    int own; /* aosd's own captured lines: parsed on the loop (small, and at
                shutdown the store must get them before it closes), and the
                only ones that may use the reserved sources */
    int parse_rc;
    aos_err_t parse_err;
    aos__logs_fault_t parse_fault;
    aos__logs_query_t q; /* query, subscribe */
    aos_store_logs_filter_t f;
    json_t *rows;
    int64_t last_id;
};

static void op_free(struct op *o)
{
    json_decref(o->args);
    free(o->body);
    aos__logs_batch_release(&o->batch);
    aos__logs_query_release(&o->q);
    json_decref(o->rows);
    free(o);
}

static void publish_done(struct op *o, int status, const aos_err_t *err)
{
    aos_logs_t *l = o->l;
    json_t *res = NULL;
    if (status == 0) {
        aos__logs_batch_t *b = &o->batch;
        if (l->m_entries)
            aos_metric_add(l->m_entries, (double)b->n, o->via);
        fanout(l, b);
        res = json_pack("{s:I, s:I, s:I}", "accepted", (json_int_t)b->n, "first_id",
                        (json_int_t)b->rows[0].id, "last_id", (json_int_t)b->rows[b->n - 1].id);
    }
    if (o->done)
        o->done(o->ctx, res, status ? err : NULL, NULL);
    else
        json_decref(res);
    op_free(o);
}

/* Group commit. Batches that arrive while the store has GROUPS_INFLIGHT
 * groups to insert wait in l's queue; when a group commits, all of them go
 * in the next one: one transaction (and one full-text flush) for many
 * batches, while the loop keeps parsing. Each batch still gets its answer
 * only after its commit, and groups commit in arrival order (the worker is
 * FIFO), so fan-out and ids keep that order. */
struct group {
    aos_logs_t *l;
    struct op *ops; /* the batches, in order */
    aos_store_log_t *rows;
    size_t n;
    char created_at[32];
    int64_t unindexed;
};

static int group_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct group *g = arg;
    return aos_store_logs_insert(st, g->rows, g->n, g->created_at, &g->unindexed, err);
}

static void insert_next(aos_logs_t *l);
static void index_next(aos_logs_t *l);

static void group_done(int status, const aos_err_t *err, void *arg)
{
    struct group *g = arg;
    aos_logs_t *l = g->l;
    size_t at = 0;
    l->ins_inflight--;
    if (status == 0)
        l->unindexed = g->unindexed;
    for (struct op *o = g->ops, *next; o; o = next) {
        next = o->next;
        aos__logs_batch_t *b = &o->batch;
        for (size_t i = 0; i < b->n; i++)
            b->rows[i].id = g->rows[at + i].id;
        at += b->n;
        memcpy(b->created_at, g->created_at, sizeof(b->created_at));
        publish_done(o, status, err);
    }
    free(g->rows);
    free(g);
    insert_next(l);
    index_next(l);
}

static void insert_next(aos_logs_t *l)
{
    if (l->ins_inflight >= GROUPS_INFLIGHT || !l->ins_head)
        return;
    struct group *g = calloc(1, sizeof(*g));
    size_t n = 0;
    struct op *last = l->ins_head;
    n = last->batch.n;
    while (last->next && n + last->next->batch.n <= GROUP_MAX) {
        last = last->next;
        n += last->batch.n;
    }
    aos_store_log_t *rows = g ? malloc(n * sizeof(*rows)) : NULL;
    struct op *ops = l->ins_head;
    l->ins_head = last->next;
    if (!l->ins_head)
        l->ins_tail = &l->ins_head;
    last->next = NULL;
    int rc = AOS_ENOMEM;
    if (rows) {
        size_t at = 0;
        for (struct op *o = ops; o; o = o->next) {
            memcpy(rows + at, o->batch.rows, o->batch.n * sizeof(*rows));
            at += o->batch.n;
        }
        g->l = l;
        g->ops = ops;
        g->rows = rows;
        g->n = n;
        rc = aos_store_submit(l->cfg.store, group_run, group_done, g);
    }
    if (rc == 0) {
        l->ins_inflight++;
        return;
    }
    /* no store: these batches fail, the next ones get their own try */
    aos_err_t err = {0, ""};
    aos_err_set(&err, rc, rc == AOS_EUNAVAIL ? "the store is closing" : "out of memory");
    for (struct op *o = ops, *next; o; o = next) {
        next = o->next;
        publish_done(o, rc, &err);
    }
    free(rows);
    free(g);
    insert_next(l);
}

/* Filling the trailing indexes: one job at a time, a chunk of INDEX_CHUNK
 * entries when no insert group is queued or running; once INDEX_BEHIND wait
 * (inserts never left the store idle) ~2 ms of work in between two groups,
 * and the whole tail once INDEX_FAR wait (inserts outrun those: a load at
 * full speed, where one large fill costs less per entry than many). A fill
 * of a chunk ends after a step of it when a job waits, or after ~1 ms of
 * work (the store, aos_store_logs_index), so a batch that arrives
 * meanwhile waits for about a step; the next fill goes on with the chunk
 * as soon as the store is free of inserts again. Groups report the tail's
 * length, a fill what it left. */
struct fill {
    aos_logs_t *l;
    int64_t max;
    int mode; /* AOS_STORE_LOGS_FILL_* */
    int64_t unindexed;
};

static int fill_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct fill *f = arg;
    return aos_store_logs_index(st, f->max, f->mode, &f->unindexed, err);
}

static void fill_done(int status, const aos_err_t *err, void *arg)
{
    struct fill *f = arg;
    aos_logs_t *l = f->l;
    l->indexing = 0;
    if (status == 0) {
        /* the inserts that ran before it have reported: what it did */
        int64_t done = l->unindexed - f->unindexed;
        l->chunk_left = f->mode == AOS_STORE_LOGS_FILL_IDLE && done > 0 && l->chunk_left > done
                            ? l->chunk_left - done
                            : 0;
        l->unindexed = f->unindexed;
        l->index_failed = 0;
    } else if (!l->index_failed) {
        /* the next insert tries again; queries still see every entry */
        l->index_failed = 1;
        aos_log_warn("logs", "indexing the newest entries failed: %s", aos_err_msg(err));
    }
    free(f);
    if (status == 0)
        index_next(l);
}

static void index_next(aos_logs_t *l)
{
    int inserting = l->ins_inflight > 0 || l->ins_head;
    int go_on = !inserting && l->chunk_left > 0 && l->unindexed > 0;
    if (l->indexing || l->shut || (l->unindexed < INDEX_CHUNK && !go_on))
        return;
    if (inserting && l->unindexed < INDEX_BEHIND)
        return;
    struct fill *f = calloc(1, sizeof(*f));
    if (!f)
        return; /* the next insert tries again */
    if (!inserting && !go_on)
        l->chunk_left = INDEX_CHUNK;
    f->l = l;
    f->max = inserting ? 0 : l->chunk_left;
    f->mode = !inserting                  ? AOS_STORE_LOGS_FILL_IDLE
              : l->unindexed >= INDEX_FAR ? AOS_STORE_LOGS_FILL_ALL
                                          : AOS_STORE_LOGS_FILL_BEHIND;
    if (aos_store_submit(l->cfg.store, fill_run, fill_done, f) < 0) {
        free(f);
        return;
    }
    l->indexing = 1;
    if (inserting)
        l->fills_behind++;
    else
        l->fills_idle++;
}

void aos__logs_ingest_state(const aos_logs_t *l, aos__logs_ingest_t *out)
{
    memset(out, 0, sizeof(*out));
    out->parsing = l->parsing;
    for (const struct op *o = l->ins_head; o; o = o->next)
        out->queued++;
    out->groups = l->ins_inflight;
    out->unindexed = l->unindexed;
    out->indexing = l->indexing;
    out->fills_idle = l->fills_idle;
    out->fills_behind = l->fills_behind;
}

static int query_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct op *o = arg;
    if (o->kind == AOS__LOGS_OP_SUBSCRIBE && !o->q.has_cursor)
        return aos_store_logs_last_id(st, &o->last_id, err);
    if (o->q.group_by)
        return aos_store_logs_count(st, &o->f, o->q.group_by, &o->rows, err);
    return aos_store_logs_query(st, &o->f, &o->rows, err);
}

static void query_done(int status, const aos_err_t *err, void *arg)
{
    struct op *o = arg;
    json_t *res = NULL;
    char cursor[48];
    if (status)
        goto out;
    if (o->q.group_by) {
        res = json_pack("{s:s, s:O}", "group_by", o->q.group_by, "groups", o->rows);
        goto out;
    }
    if (o->kind == AOS__LOGS_OP_SUBSCRIBE && !o->q.has_cursor) {
        /* a new subscription starts at the newest entry */
        aos__logs_cursor_encode(o->last_id, 1, cursor);
        res = json_pack("{s:[], s:s, s:b}", "items", "next_cursor", cursor, "more", 0);
        goto out;
    }
    int limit = o->q.f.limit;
    int more = json_array_size(o->rows) > (size_t)limit;
    if (more)
        json_array_remove(o->rows, (size_t)limit);
    size_t n = json_array_size(o->rows);
    json_t *last = n ? json_array_get(o->rows, n - 1) : NULL;
    json_t *next = json_null();
    if (o->kind == AOS__LOGS_OP_SUBSCRIBE) {
        /* polling goes on from the last entry seen, or stays where it was */
        int64_t at = last ? json_integer_value(json_object_get(last, "id")) : o->q.f.after_id;
        aos__logs_cursor_encode(at, 1, cursor);
        next = json_string(cursor);
    } else if (more && last) {
        aos__logs_cursor_encode(json_integer_value(json_object_get(last, "id")), o->q.f.ascending,
                                cursor);
        next = json_string(cursor);
    }
    res = json_pack("{s:O, s:o, s:b}", "items", o->rows, "next_cursor", next, "more", more);
out:
    if (!status && !res) {
        aos_err_t e2 = {0, ""};
        aos_err_set(&e2, AOS_ENOMEM, "out of memory");
        o->done(o->ctx, NULL, &e2, NULL);
    } else {
        o->done(o->ctx, res, status ? err : NULL, NULL);
    }
    op_free(o);
}

/* Publishing, step 1, on libuv's thread pool: the body to JSON (REST), the
 * arguments checked, every entry validated and redacted. A batch of 1,000
 * entries takes milliseconds of CPU; on the loop it would hold up every
 * other request meanwhile. The op is the thread's alone until parse_done. */
static void parse_work(uv_work_t *w)
{
    struct op *o = w->data;
    aos_logs_t *l = o->l;
    aos_err_t *err = &o->parse_err;
    aos__logs_fault_t *fault = &o->parse_fault;
    fault->index = -1;
    fault->field[0] = '\0';
    if (o->body) {
        /* the common case, without a tree; anything else below */
        uv_rwlock_rdlock(&l->redact_lock);
        int scanned =
            aos__logs_batch_scan(&o->batch, o->body, o->body_len, l->redact, l->redact_data) == 0;
        uv_rwlock_rdunlock(&l->redact_lock);
        if (scanned) {
            free(o->body);
            o->body = NULL;
            o->parse_rc = 0;
            goto sources;
        }
        json_t *body = aos_http_parse_json(o->body, o->body_len, err);
        free(o->body);
        o->body = NULL;
        if (!body) {
            o->parse_rc = err->code;
            return;
        }
        if (json_is_array(body)) /* a bare array of entries */
            body = json_pack("{s:o}", "entries", body);
        else if (!json_is_object(body)) {
            json_decref(body);
            o->parse_rc = aos_err_set(err, AOS_EINVAL, "the body must be a JSON object");
            return;
        }
        if (!body) {
            o->parse_rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
            return;
        }
        o->args = body;
    }
    const char *k;
    json_t *v;
    json_object_foreach(o->args, k, v)
    {
        if (strcmp(k, "entries") != 0) {
            snprintf(fault->field, sizeof(fault->field), "%.31s", k);
            o->parse_rc = aos_err_set(err, AOS_EINVAL, "'%.64s' is not a known argument", k);
            return;
        }
    }
    uv_rwlock_rdlock(&l->redact_lock);
    o->parse_rc = aos__logs_batch_parse(&o->batch, json_object_get(o->args, "entries"), l->redact,
                                        l->redact_data, fault, err);
    uv_rwlock_rdunlock(&l->redact_lock);
sources:
    if (o->parse_rc == 0 && !o->own &&
        (o->parse_rc = aos__logs_batch_check_sources(&o->batch, fault, err)))
        aos__logs_batch_release(&o->batch);
}

/* Step 2, on the loop: into the group-commit queue, or the error out. */
static void parse_done(uv_work_t *w, int status)
{
    struct op *o = w->data;
    aos_logs_t *l = o->l;
    if (!o->own)
        l->parsing--;
    json_decref(o->args); /* the batch keeps what it needs */
    o->args = NULL;
    /* after aos_logs_shutdown the store may be closed already: a batch
     * still parsing then fails like one arriving now */
    if (status == UV_ECANCELED || (l->shut && o->parse_rc == 0))
        o->parse_rc = aos_err_set(&o->parse_err, AOS_EUNAVAIL, "the log service is shutting down");
    if (o->parse_rc < 0) {
        if (o->done)
            o->done(o->ctx, NULL, &o->parse_err, &o->parse_fault);
        op_free(o);
        return;
    }
    *l->ins_tail = o;
    l->ins_tail = &o->next;
    insert_next(l);
}

static int parse_start(struct op *o, aos_err_t *err)
{
    o->work.data = o;
    if (o->own) { /* aosd's own few lines: no thread hop */
        parse_work(&o->work);
        parse_done(&o->work, 0);
        return 0;
    }
    int rc = uv_queue_work(o->l->cfg.loop, &o->work, parse_work, parse_done);
    if (rc)
        return aos_err_set(err, AOS_EINTERNAL, "unable to queue the batch: %s", uv_strerror(rc));
    o->l->parsing++;
    return 0;
}

int aos__logs_publish_body(aos_logs_t *l, const char *body, size_t len, const char *via,
                           aos__logs_done_fn done, void *ctx, aos_err_t *err)
{
    if (l->shut)
        return aos_err_set(err, AOS_EUNAVAIL, "the log service is shutting down");
    struct op *o = calloc(1, sizeof(*o));
    char *copy = malloc(len ? len : 1);
    if (!o || !copy) {
        free(o);
        free(copy);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    memcpy(copy, body, len);
    o->l = l;
    o->kind = AOS__LOGS_OP_PUBLISH;
    o->via = via;
    o->done = done;
    o->ctx = ctx;
    o->body = copy;
    o->body_len = len;
    int rc = parse_start(o, err);
    if (rc < 0)
        op_free(o);
    return rc;
}

/* aos__logs_op; own: a publish of aosd's own lines (see struct op). */
static int op_start(aos_logs_t *l, aos__logs_op_t op, json_t *args, const char *via,
                    aos__logs_done_fn done, void *ctx, int own, aos__logs_fault_t *fault,
                    aos_err_t *err)
{
    int rc;
    if (fault) {
        fault->index = -1;
        fault->field[0] = '\0';
    }
    if (l->shut)
        return aos_err_set(err, AOS_EUNAVAIL, "the log service is shutting down");
    if (args && !json_is_object(args))
        return aos_err_set(err, AOS_EINVAL, "arguments must be an object");
    struct op *o = calloc(1, sizeof(*o));
    if (!o)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    o->l = l;
    o->kind = op;
    o->via = via;
    o->done = done;
    o->ctx = ctx;
    if (op == AOS__LOGS_OP_PUBLISH) {
        o->args = json_incref(args);
        o->own = own;
        rc = parse_start(o, err);
        if (rc < 0)
            goto fail;
        return 0;
    } else {
        aos__logs_kind_t kind = op == AOS__LOGS_OP_QUERY ? AOS__LOGS_QUERY : AOS__LOGS_SUBSCRIBE;
        rc = aos__logs_query_parse(&o->q, args, kind, fault, err);
        if (rc < 0)
            goto fail;
        o->f = o->q.f;
        if (!o->q.group_by)
            o->f.limit++; /* one more: is there another page? */
        rc = aos_store_submit(l->cfg.store, query_run, query_done, o);
    }
    if (rc < 0) {
        rc = aos_err_set(err, rc, "the store is not available");
        goto fail;
    }
    return 0;
fail:
    op_free(o);
    return rc;
}

int aos__logs_op(aos_logs_t *l, aos__logs_op_t op, json_t *args, const char *via,
                 aos__logs_done_fn done, void *ctx, aos__logs_fault_t *fault, aos_err_t *err)
{
    return op_start(l, op, args, via, done, ctx, 0, fault, err);
}

struct publish_wait {
    aos_logs_publish_fn done;
    void *ctx;
};

static void publish_wait_done(void *ctx, json_t *result, const aos_err_t *err,
                              const aos__logs_fault_t *fault)
{
    struct publish_wait *w = ctx;
    w->done(w->ctx, result ? (size_t)json_integer_value(json_object_get(result, "accepted")) : 0,
            result ? NULL : err);
    json_decref(result);
    free(w);
}

int aos_logs_publish(aos_logs_t *l, json_t *entries, const char *via, aos_logs_publish_fn done,
                     void *ctx, aos_err_t *err)
{
    struct publish_wait *w = calloc(1, sizeof(*w));
    json_t *args = w ? json_pack("{s:O}", "entries", entries) : NULL;
    if (!args) {
        free(w);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    w->done = done;
    w->ctx = ctx;
    int rc = aos__logs_op(l, AOS__LOGS_OP_PUBLISH, args, via, publish_wait_done, w, NULL, err);
    json_decref(args);
    if (rc < 0)
        free(w);
    /* w belongs to the operation now (publish_wait_done frees it): the
     * analyzer does not follow it through aos__logs_op's ctx */
    /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
    return rc;
}

/* ---- REST ------------------------------------------------------------------------ */

int aos__logs_respond_error(aos_http_req_t *req, const aos_err_t *err,
                            const aos__logs_fault_t *fault)
{
    json_t *e =
        json_pack("{s:s, s:s}", "code", aos_err_code(err->code), "message", aos_err_msg(err));
    if (e && fault && fault->index >= 0)
        json_object_set_new(e, "index", json_integer(fault->index));
    if (e && fault && fault->field[0])
        json_object_set_new(e, "field", json_string(fault->field));
    return aos_http_respond_json(req, (unsigned)aos_err_http_status(err->code),
                                 json_pack("{s:o}", "error", e));
}

/* A request waiting for an operation; req is cleared if the client leaves. */
struct http_wait {
    aos_http_req_t *req;
    unsigned status;
};

static void wait_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((struct http_wait *)data)->req = NULL;
}

static void wait_done(void *ctx, json_t *result, const aos_err_t *err,
                      const aos__logs_fault_t *fault)
{
    struct http_wait *w = ctx;
    if (w->req) {
        aos_http_on_close(w->req, NULL, NULL);
        if (result)
            aos_http_respond_json(w->req, w->status, json_incref(result));
        else
            aos__logs_respond_error(w->req, err, fault);
    }
    json_decref(result);
    free(w);
}

/* Runs op for req with args (stolen) and answers with status when it ends. */
static int run_for(aos_logs_t *l, aos_http_req_t *req, aos__logs_op_t op, json_t *args,
                   unsigned status, const char *via)
{
    struct http_wait *w = calloc(1, sizeof(*w));
    if (!w) {
        json_decref(args);
        return AOS_ENOMEM;
    }
    w->req = req;
    w->status = status;
    aos__logs_fault_t fault;
    aos_err_t err = {0, ""};
    aos_http_on_close(req, wait_closed, w);
    int rc = aos__logs_op(l, op, args, via, wait_done, w, &fault, &err);
    json_decref(args);
    if (rc < 0) {
        aos_http_on_close(req, NULL, NULL);
        free(w);
        return aos__logs_respond_error(req, &err, &fault);
    }
    return 0;
}

/* The JSON body as the arguments of op: a publish may also be a bare array. */
static int body_args(aos_http_req_t *req, int publish, json_t **out)
{
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    *out = NULL;
    if (!body)
        return aos__logs_respond_error(req, &err, NULL) < 0 ? -1 : 1;
    if (publish && json_is_array(body)) {
        *out = json_pack("{s:o}", "entries", body);
        return *out ? 0 : -1;
    }
    if (!json_is_object(body)) {
        json_decref(body);
        aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
        return aos__logs_respond_error(req, &err, NULL) < 0 ? -1 : 1;
    }
    *out = body;
    return 0;
}

int aos__logs_http_op(aos_http_req_t *req, aos_logs_t *l, aos__logs_op_t op, unsigned status,
                      const char *via)
{
    if (op == AOS__LOGS_OP_PUBLISH) { /* parsed off the loop */
        struct http_wait *w = calloc(1, sizeof(*w));
        if (!w)
            return AOS_ENOMEM;
        w->req = req;
        w->status = status;
        aos_err_t err = {0, ""};
        size_t len;
        const char *body = aos_http_body(req, &len);
        aos_http_on_close(req, wait_closed, w);
        if (aos__logs_publish_body(l, body, len, via, wait_done, w, &err) < 0) {
            aos_http_on_close(req, NULL, NULL);
            free(w);
            return aos__logs_respond_error(req, &err, NULL);
        }
        return 0;
    }
    json_t *args;
    int rc = body_args(req, op == AOS__LOGS_OP_PUBLISH, &args);
    if (rc)
        return rc < 0 ? AOS_ENOMEM : 0;
    return run_for(l, req, op, args, status, via);
}

static int publish_route(aos_http_req_t *req, void *data)
{
    return aos__logs_http_op(req, data, AOS__LOGS_OP_PUBLISH, 201, "rest");
}

/* One query-string argument (or header) value onto a: a value that is not
 * UTF-8 (e.g. "%ff") is refused, naming the argument, rather than dropped,
 * which would widen the filter to everything. */
static int put_arg(json_t *a, const char *name, const char *v, aos__logs_fault_t *fault,
                   aos_err_t *err)
{
    if (!aos_utf8_valid(v, strlen(v))) {
        fault->index = -1;
        snprintf(fault->field, sizeof(fault->field), "%s", name);
        return aos_err_set(err, AOS_EINVAL, "'%s' is not valid UTF-8", name);
    }
    if (json_object_set_new(a, name, json_string(v)))
        return aos_err_set(err, AOS_ENOMEM, NULL);
    return 0;
}

/* Query-string arguments of kind as a JSON object of strings: 0 and *out,
 * or an error with err and fault set. */
static int query_args(aos_http_req_t *req, aos__logs_kind_t kind, json_t **out,
                      aos__logs_fault_t *fault, aos_err_t *err)
{
    static const char *const common[] = {"level", "traceId", "trace_id", "topic", "source",
                                         "after", "before",  "q",        "limit"};
    static const char *const query[] = {"cursor", "order", "group_by"};
    static const char *const stream[] = {"after_id"};
    const char *const *extra = kind == AOS__LOGS_QUERY ? query : stream;
    size_t ncommon = sizeof(common) / sizeof(common[0]);
    size_t nextra = kind == AOS__LOGS_QUERY ? 3 : 1;
    json_t *a = json_object();
    int rc = a ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
    for (size_t i = 0; !rc && i < ncommon + nextra; i++) {
        const char *name = i < ncommon ? common[i] : extra[i - ncommon];
        const char *v = aos_http_query(req, name);
        if (v)
            rc = put_arg(a, name, v, fault, err);
    }
    if (rc) {
        json_decref(a);
        a = NULL;
    }
    *out = a;
    return rc;
}

static int query_route(aos_http_req_t *req, void *data)
{
    json_t *args;
    aos_err_t err = {0, ""};
    aos__logs_fault_t fault = {-1, ""};
    if (query_args(req, AOS__LOGS_QUERY, &args, &fault, &err))
        return aos__logs_respond_error(req, &err, &fault);
    return run_for(data, req, AOS__LOGS_OP_QUERY, args, 200, "rest");
}

static int stream_route(aos_http_req_t *req, void *data)
{
    aos_logs_t *l = data;
    aos_err_t err = {0, ""};
    aos__logs_fault_t fault = {-1, ""};
    if (l->shut)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the log service is shutting down");
    if (l->nsubs >= STREAMS_MAX)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "too many log streams (%d)", STREAMS_MAX);
    json_t *args;
    if (query_args(req, AOS__LOGS_STREAM, &args, &fault, &err))
        return aos__logs_respond_error(req, &err, &fault);
    /* an EventSource that reconnects says where it was */
    const char *resume = aos_http_header(req, "Last-Event-ID");
    if (resume && *resume && put_arg(args, "after_id", resume, &fault, &err)) {
        json_decref(args);
        if (err.code == AOS_EINVAL) {
            snprintf(fault.field, sizeof(fault.field), "Last-Event-ID");
            aos_err_set(&err, AOS_EINVAL, "'Last-Event-ID' is not valid UTF-8");
        }
        return aos__logs_respond_error(req, &err, &fault);
    }
    sub_t *s = calloc(1, sizeof(*s));
    if (!s) {
        json_decref(args);
        return AOS_ENOMEM;
    }
    int rc = aos__logs_query_parse(&s->q, args, AOS__LOGS_STREAM, &fault, &err);
    json_decref(args);
    if (rc < 0) {
        free(s);
        if (resume && *resume && !strcmp(fault.field, "after_id"))
            snprintf(fault.field, sizeof(fault.field), "Last-Event-ID");
        return aos__logs_respond_error(req, &err, &fault);
    }
    rc = aos_http_stream_open(req, 200, "text/event-stream");
    if (rc < 0) {
        sub_free(s);
        return rc;
    }
    s->l = l;
    s->req = req;
    s->last_id = s->q.f.after_id;
    s->next = l->subs;
    if (l->subs)
        l->subs->prev = s;
    l->subs = s;
    l->nsubs++;
    if (l->m_streams)
        aos_metric_set(l->m_streams, (double)l->nsubs);
    aos_http_on_close(req, sub_closed, s);
    static const char hello[] = "retry: 1000\n: stream of log entries\n\n";
    aos_http_stream_write(req, hello, sizeof(hello) - 1);
    if (s->q.has_after_id)
        replay_next(s);
    return 0;
}

/* ---- a tail: the last N entries of a source, then live (aos_logs_tail) ---- */

struct tail {
    aos_logs_t *l;
    aos_http_req_t *req; /* NULL once the client left */
    char source[AOS__LOGS_MAX_NAME];
    int live_only;
    aos_store_logs_filter_t f;
    json_t *rows;
};

static void tail_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((struct tail *)data)->req = NULL;
}

static int tail_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct tail *t = arg;
    return aos_store_logs_query(st, &t->f, &t->rows, err);
}

static void tail_done(int status, const aos_err_t *err, void *arg)
{
    struct tail *t = arg;
    aos_http_req_t *req = t->req;
    if (req)
        aos_http_on_close(req, NULL, NULL);
    if (!req) {
        ;
    } else if (status) {
        aos_http_respond_err(req, err);
    } else {
        /* the stream resumes just before the oldest of the last N (the
         * replay sends them, and what came since, before live entries);
         * tail 0 resumes at the newest entry of any source */
        size_t n = json_array_size(t->rows);
        int64_t from = 0;
        if (n && t->live_only)
            from = json_integer_value(json_object_get(json_array_get(t->rows, 0), "id"));
        else if (n)
            from = json_integer_value(json_object_get(json_array_get(t->rows, n - 1), "id")) - 1;
        char id[24];
        snprintf(id, sizeof(id), "%lld", (long long)from);
        json_t *args = json_pack("{s:s, s:s}", "source", t->source, "after_id", id);
        aos__logs_fault_t fault = {-1, ""};
        aos_err_t e = {0, ""};
        sub_t *s = calloc(1, sizeof(*s));
        int rc = !args || !s ? AOS_ENOMEM
                             : aos__logs_query_parse(&s->q, args, AOS__LOGS_STREAM, &fault, &e);
        json_decref(args);
        if (rc < 0) {
            free(s);
            aos_http_respond_error(req, rc, "unable to open the stream");
        } else if (aos_http_stream_open(req, 200, "text/event-stream") < 0) {
            sub_free(s);
        } else {
            aos_logs_t *l = t->l;
            s->l = l;
            s->req = req;
            s->last_id = s->q.f.after_id;
            s->next = l->subs;
            if (l->subs)
                l->subs->prev = s;
            l->subs = s;
            l->nsubs++;
            if (l->m_streams)
                aos_metric_set(l->m_streams, (double)l->nsubs);
            aos_http_on_close(req, sub_closed, s);
            static const char hello[] = "retry: 1000\n: stream of log entries\n\n";
            aos_http_stream_write(req, hello, sizeof(hello) - 1);
            if (s->q.has_after_id)
                replay_next(s);
        }
    }
    json_decref(t->rows);
    free(t);
}

int aos_logs_tail(aos_logs_t *l, aos_http_req_t *req, const char *source, unsigned tail)
{
    if (l->shut)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the log service is shutting down");
    if (l->nsubs >= STREAMS_MAX)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "too many log streams (%d)", STREAMS_MAX);
    struct tail *t = calloc(1, sizeof(*t));
    if (!t)
        return AOS_ENOMEM;
    t->l = l;
    t->req = req;
    snprintf(t->source, sizeof(t->source), "%s", source);
    t->f.source = t->source;
    t->f.ascending = 0;
    /* tail 0: only what comes from now on - the newest id of any source
     * marks "now" */
    t->live_only = tail == 0;
    if (tail == 0)
        t->f.source = NULL;
    t->f.limit = tail == 0 ? 1 : (int)(tail > AOS_STORE_LIST_MAX ? AOS_STORE_LIST_MAX : tail);
    if (aos_store_submit(l->cfg.store, tail_run, tail_done, t) < 0) {
        free(t);
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the store takes no more work");
    }
    aos_http_on_close(req, tail_closed, t);
    return 0;
}

static const aos_http_route_t routes[] = {
    {"POST", "/api/logs", AOS_PERM_OPERATE, publish_route, AOS__LOGS_BODY_MAX, NULL},
    {"GET", "/api/logs", AOS_PERM_READ, query_route, 0, NULL},
    {"GET", "/api/logs/stream", AOS_PERM_READ, stream_route, 0, NULL},
};

int aos_logs_add_routes(aos_logs_t *l, aos_http_t *http)
{
    int rc = aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), l);
    if (rc == 0)
        rc = aos_http_add_routes(http, aos__logs_mcp_routes, aos__logs_mcp_nroutes, l);
    return rc;
}

/* ---- capture of aosd's own lines ---------------------------------------------------- */

/* The aos_log sink: any thread, under the logger's lock, so it only copies
 * and wakes the loop. Lines of this module stay out: storing them could
 * fail and log again, forever. */
static void capture_sink(const json_t *entry, void *data)
{
    aos_logs_t *l = data;
    const char *comp = json_string_value(json_object_get(entry, "component"));
    if (comp && !strcmp(comp, "logs"))
        return;
    uv_mutex_lock(&l->cap_lock);
    if (!l->cap_closed) {
        json_t *copy;
        if (json_array_size(l->cap_queue) >= CAPTURE_MAX || !(copy = json_deep_copy(entry)))
            l->cap_dropped++;
        else
            json_array_append_new(l->cap_queue, copy);
        uv_async_send(l->cap_async);
    }
    uv_mutex_unlock(&l->cap_lock);
}

static int simple_id(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > AOS__LOGS_MAX_ID)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '-' || s[i] == '_'))
            return 0;
    return 1;
}

/* An aos_log line {ts, level, component, msg, ...} as a log entry: topic =
 * component, source = "aosd" (or "upstream:<server>" for a child's stderr),
 * the other fields as attributes. */
static json_t *captured_entry(json_t *line)
{
    json_t *e = json_object(), *attrs = json_object();
    if (!e || !attrs) {
        json_decref(e);
        json_decref(attrs);
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach(line, k, v)
    {
        if (!strcmp(k, "ts") || !strcmp(k, "level"))
            json_object_set(e, k, v);
        else if (!strcmp(k, "msg"))
            json_object_set(e, "message", v);
        else if (!strcmp(k, "component"))
            json_object_set(e, "topic", v);
        else if ((!strcmp(k, "trace_id") || !strcmp(k, "span_id")) &&
                 simple_id(json_string_value(v)))
            json_object_set(e, k, v);
        else
            json_object_set(attrs, k, v);
    }
    const char *comp = json_string_value(json_object_get(line, "component"));
    const char *server = json_string_value(json_object_get(attrs, "server"));
    const char *stream = json_string_value(json_object_get(attrs, "stream"));
    if (comp && server && stream && !strcmp(comp, "upstream") && !strcmp(stream, "stderr")) {
        char src[AOS__LOGS_MAX_NAME];
        snprintf(src, sizeof(src), "upstream:%s", server);
        json_object_set_new(e, "source", json_string(src));
    } else {
        json_object_set_new(e, "source", json_string("aosd"));
    }
    if (json_object_size(attrs))
        json_object_set(e, "attributes", attrs);
    json_decref(attrs);
    return e;
}

static void capture_done(void *ctx, json_t *result, const aos_err_t *err,
                         const aos__logs_fault_t *fault)
{
    if (!result)
        aos_log_warn("logs", "unable to store aosd's own log lines: %s", aos_err_msg(err));
    json_decref(result);
}

static void capture_flush(aos_logs_t *l)
{
    json_t *fresh = json_array();
    if (!fresh)
        return;
    uv_mutex_lock(&l->cap_lock);
    json_t *lines = l->cap_queue;
    l->cap_queue = fresh;
    uint64_t dropped = l->cap_dropped;
    uv_mutex_unlock(&l->cap_lock);

    json_t *entries = json_array();
    size_t i;
    json_t *line;
    json_array_foreach(lines, i, line)
    {
        json_t *e = captured_entry(line);
        if (e)
            json_array_append_new(entries, e);
    }
    json_decref(lines);
    if (dropped > l->cap_reported) {
        uint64_t n = dropped - l->cap_reported;
        l->cap_reported = dropped;
        if (l->m_dropped)
            aos_metric_add(l->m_dropped, (double)n);
        char msg[128];
        snprintf(msg, sizeof(msg), "%llu log lines of aosd were dropped: the queue was full",
                 (unsigned long long)n);
        json_array_append_new(entries, json_pack("{s:s, s:s, s:s, s:s}", "level", "warn", "message",
                                                 msg, "topic", "logs", "source", "aosd"));
    }
    /* a batch is at most CAPTURE_MAX + 1 entries: within AOS__LOGS_MAX_BATCH */
    if (json_array_size(entries)) {
        json_t *args = json_pack("{s:o}", "entries", entries);
        aos_err_t err = {0, ""};
        if (args &&
            op_start(l, AOS__LOGS_OP_PUBLISH, args, "self", capture_done, l, 1, NULL, &err) < 0)
            aos_log_warn("logs", "unable to store aosd's own log lines: %s", aos_err_msg(&err));
        json_decref(args);
    } else {
        json_decref(entries);
    }
}

static void on_capture_timer(uv_timer_t *t)
{
    capture_flush(t->data);
}

static void on_capture_async(uv_async_t *a)
{
    aos_logs_t *l = a->data;
    uv_mutex_lock(&l->cap_lock);
    size_t n = json_array_size(l->cap_queue);
    uv_mutex_unlock(&l->cap_lock);
    if (n >= CAPTURE_BATCH)
        capture_flush(l);
    else if (!uv_is_active((uv_handle_t *)l->cap_timer))
        uv_timer_start(l->cap_timer, on_capture_timer, CAPTURE_DELAY_MS, 0);
}

void aos_logs_capture(aos_logs_t *l)
{
    if (l->capturing || l->shut)
        return;
    l->capturing = 1;
    aos_log_set_sink(capture_sink, l);
}

/* ---- retention ------------------------------------------------------------------------- */

struct retain {
    aos_logs_t *l;
    char cutoff[32];
    int has_cutoff;
    int64_t keep;
    int64_t deleted;
};

static int retain_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct retain *r = arg;
    return aos_store_logs_retain(st, r->has_cutoff ? r->cutoff : NULL, r->keep, RETAIN_CHUNK,
                                 &r->deleted, err);
}

static void retain_start(aos_logs_t *l);

static void retain_done(int status, const aos_err_t *err, void *arg)
{
    struct retain *r = arg;
    aos_logs_t *l = r->l;
    l->retaining = 0;
    if (status) {
        aos_log_warn("logs", "retention failed: %s", aos_err_msg(err));
    } else if (r->deleted) {
        if (l->m_deleted)
            aos_metric_add(l->m_deleted, (double)r->deleted);
        aos_log_debug("logs", "retention deleted %lld entries", (long long)r->deleted);
        if (r->deleted == RETAIN_CHUNK)
            retain_start(l); /* more to do: queued behind the jobs waiting now */
    }
    free(r);
}

static void retain_start(aos_logs_t *l)
{
    const aos_logs_cfg_t *c = &l->cfg;
    if (l->retaining || l->shut || (!c->retention_days && !c->retention_rows))
        return;
    struct retain *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->l = l;
    /* beyond 100,000 days (270 years) nothing is old enough */
    if (c->retention_days && c->retention_days < 100000) {
        aos_isotime_fmt(aos_isotime_now_ms() - (int64_t)c->retention_days * 86400000, r->cutoff);
        r->has_cutoff = 1;
    }
    r->keep = c->retention_rows > INT64_MAX / 2 ? 0 : (int64_t)c->retention_rows;
    if (!r->has_cutoff && !r->keep) {
        free(r);
        return;
    }
    if (aos_store_submit(c->store, retain_run, retain_done, r) < 0) {
        free(r);
        return;
    }
    l->retaining = 1;
}

static void on_retain_timer(uv_timer_t *t)
{
    retain_start(t->data);
}

/* ---- life ------------------------------------------------------------------------------ */

void aos_logs_set_redactor(aos_logs_t *l, aos_logs_redact_fn fn, void *data)
{
    uv_rwlock_wrlock(&l->redact_lock);
    l->redact = fn ? fn : aos_redact_field;
    l->redact_data = fn ? data : aos_redact_global();
    uv_rwlock_wrunlock(&l->redact_lock);
}

const aos_builtin_t *aos_logs_builtin(aos_logs_t *l)
{
    return &l->builtin;
}

static uv_timer_t *timer_new(aos_logs_t *l)
{
    uv_timer_t *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    uv_timer_init(l->cfg.loop, t);
    t->data = l;
    uv_unref((uv_handle_t *)t);
    return t;
}

static void collect(aos_metrics_t *m, void *data)
{
    aos_logs_t *l = data;
    aos_metric_set(l->m_streams, (double)l->nsubs);
}

int aos_logs_new(aos_logs_t **out, const aos_logs_cfg_t *cfg, aos_err_t *err)
{
    *out = NULL;
    if (!cfg->loop || !cfg->store)
        return aos_err_set(err, AOS_EINVAL, "the log service needs a loop and a store");
    aos_logs_t *l = calloc(1, sizeof(*l));
    if (!l)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    l->cfg = *cfg;
    l->ins_tail = &l->ins_head;
    if (!l->cfg.retention_check_s)
        l->cfg.retention_check_s = 60;
    if (uv_mutex_init(&l->cap_lock) != 0) {
        free(l);
        return aos_err_set(err, AOS_EINTERNAL, "unable to create the log service: no mutex");
    }
    if (uv_rwlock_init(&l->redact_lock) != 0) {
        uv_mutex_destroy(&l->cap_lock);
        free(l);
        return aos_err_set(err, AOS_EINTERNAL, "unable to create the log service: no lock");
    }
    l->cap_queue = json_array();
    l->cap_async = malloc(sizeof(*l->cap_async));
    l->heartbeat = timer_new(l);
    l->cap_timer = timer_new(l);
    l->retain_timer = timer_new(l);
    if (!l->cap_queue || !l->cap_async || !l->heartbeat || !l->cap_timer || !l->retain_timer) {
        free(l->cap_async);
        l->cap_async = NULL;
        aos_logs_free(l);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    uv_async_init(cfg->loop, l->cap_async, on_capture_async);
    l->cap_async->data = l;
    uv_unref((uv_handle_t *)l->cap_async);
    aos_logs_set_redactor(l, NULL, NULL);
    aos__logs_builtin_init(&l->builtin, l);

    uv_timer_start(l->heartbeat, on_heartbeat, HEARTBEAT_MS, HEARTBEAT_MS);
    uint64_t every = (uint64_t)l->cfg.retention_check_s * 1000;
    uv_timer_start(l->retain_timer, on_retain_timer, 1000, every);

    if (cfg->metrics) {
        l->m_entries = aos_metrics_counter(cfg->metrics, "aos_logs_entries_total",
                                           "Log entries stored, by path (rest, mcp, self)", "via");
        l->m_dropped = aos_metrics_counter(cfg->metrics, "aos_logs_capture_dropped_total",
                                           "aosd log lines lost to a full capture queue", NULL);
        l->m_deleted = aos_metrics_counter(cfg->metrics, "aos_logs_retention_deleted_total",
                                           "Log entries deleted by retention", NULL);
        l->m_streams = aos_metrics_gauge(cfg->metrics, "aos_logs_streams",
                                         "Open log streams (GET /api/logs/stream)", NULL);
        aos_metrics_on_collect(cfg->metrics, collect, l);
    }
    *out = l;
    return 0;
}

static void close_handle(uv_handle_t *h)
{
    if (h && !uv_is_closing(h)) {
        h->data = NULL;
        uv_close(h, handle_free);
    }
}

void aos_logs_shutdown(aos_logs_t *l)
{
    if (!l || l->shut)
        return;
    if (l->capturing) {
        uv_mutex_lock(&l->cap_lock);
        l->cap_closed = 1;
        uv_mutex_unlock(&l->cap_lock);
        capture_flush(l); /* the store still runs what is queued before it closes */
    }
    l->shut = 1;
    for (sub_t *s = l->subs; s; s = s->next)
        sub_end(s, "shutdown");
    close_handle((uv_handle_t *)l->cap_async);
    close_handle((uv_handle_t *)l->cap_timer);
    close_handle((uv_handle_t *)l->heartbeat);
    close_handle((uv_handle_t *)l->retain_timer);
    l->cap_async = NULL;
    l->cap_timer = l->heartbeat = l->retain_timer = NULL;
}

void aos_logs_free(aos_logs_t *l)
{
    if (!l)
        return;
    if (l->capturing) {
        /* the store is closed: what is still queued is lost */
        uv_mutex_lock(&l->cap_lock);
        l->cap_closed = 1;
        uv_mutex_unlock(&l->cap_lock);
        aos_log_set_sink(NULL, NULL);
        l->capturing = 0;
    }
    aos_logs_shutdown(l);
    while (l->parsing) /* batches still on the thread pool point to l */
        uv_run(l->cfg.loop, UV_RUN_ONCE);
    /* batches that never reached the (now closed) store fail */
    aos_err_t err = {0, ""};
    aos_err_set(&err, AOS_EUNAVAIL, "the store is closed");
    for (struct op *o = l->ins_head, *next; o; o = next) {
        next = o->next;
        publish_done(o, AOS_EUNAVAIL, &err);
    }
    l->ins_head = NULL;
    /* http is gone: every request closed and unlinked its stream */
    for (sub_t *s = l->subs, *next; s; s = next) {
        next = s->next;
        sub_free(s);
    }
    json_decref(l->cap_queue);
    uv_mutex_destroy(&l->cap_lock);
    uv_rwlock_destroy(&l->redact_lock);
    free(l);
}
