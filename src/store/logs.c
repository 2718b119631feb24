/* logs.c - the store side of the log service (store.h, "logs"): batch
 * insert, filtered and paged queries, group counts, retention, and the
 * full-text query built from user words.
 *
 * Every statement is built from fixed fragments with `?` placeholders; user
 * values only ever travel as bound parameters, the full-text words included
 * (quoted as FTS5 strings, then bound). The forms of a query are few (one
 * per combination of filters), so the backend's statement cache keeps them
 * prepared. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include "buf/buf.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS    64
#define FTS_MAX_WORDS 16
#define FTS_MAX_BYTES 512
#define INDEX_STEP    AOS_STORE_LOGS_INDEX_STEP /* entries per full-text statement of a fill */
/* pages per FTS5 merge step of a fill: ~0.7 ms on bench/logs' VM (32
 * took 2-3 ms). A step ends only between two terms, so a word in every
 * entry ("for", "ms") makes one step of a merge of large segments last
 * longer all the same. */
#define FTS_MERGE_PAGES  8
#define FTS_MERGE_STEPS  256     /* merge steps per fill, at most */
#define FILL_BUDGET_NS   1000000 /* an idle fill's steps, and its merges, each (1 ms) */
#define BEHIND_BUDGET_NS 2000000 /* a fill behind's steps (2 ms); its merges get FILL_BUDGET_NS */
/* the last id the indexes hold (0006_logs_index_tail.sql), as a subquery */
#define INDEXED_UPTO "(SELECT indexed_upto FROM logs_index_state)"

static const char *const level_names[AOS_STORE_LOG_LEVELS] = {"trace", "debug", "info",
                                                              "warn",  "error", "fatal"};

const char *aos_store_log_level_name(int level)
{
    return level >= 0 && level < AOS_STORE_LOG_LEVELS ? level_names[level] : NULL;
}

/* Insert ----------------------------------------------------------------- */

#define FTS_RANGE_SQL                                                                              \
    "INSERT INTO logs_fts (rowid, message) SELECT id, message FROM logs WHERE id > ? AND id <= ?"

#define INSERT_SQL                                                                                 \
    "INSERT INTO logs (ts, level, message, topic, attributes, trace_id, span_id, source, "         \
    "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"

struct insert_arg {
    aos_store_log_t *rows;
    size_t n;
    const char *now;
    int64_t unindexed; /* out */
};

static int read_int(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    (void)err;
    int64_t *out = arg;
    *out = (n > 0 && c[0].type == AOS__SQL_INT) ? c[0].i : 0;
    return 0;
}

static int read_upto(aos_store_t *st, int64_t *upto, aos_err_t *err)
{
    *upto = 0;
    return aos__store_query(st, "SELECT " INDEXED_UPTO, NULL, 0, read_int, upto, err);
}

/* The group indexes (0004_logs_ingest.sql, 0005_logs_topics.sql): per
 * indexing window, one row per trace and one per topic, holding the ids of
 * its entries as a JSON array. Grouped here rather than with SQL's GROUP
 * BY, which cost 2.5 us per entry on bench/logs' rows. */
typedef struct {
    const char *what;
    const char *sql;
    size_t key;                             /* offset of the key's field in aos_store_log_t */
    int (*cmp)(const void *, const void *); /* by key, then id */
} group_index_t;

static int by_key_then_id(const aos_store_log_t *x, const aos_store_log_t *y, size_t key)
{
    int c = strcmp(*(const char *const *)((const char *)x + key),
                   *(const char *const *)((const char *)y + key));
    if (c)
        return c;
    return x->id < y->id ? -1 : x->id > y->id;
}

static int by_trace(const void *a, const void *b)
{
    return by_key_then_id(*(aos_store_log_t *const *)a, *(aos_store_log_t *const *)b,
                          offsetof(aos_store_log_t, trace_id));
}

static int by_topic(const void *a, const void *b)
{
    return by_key_then_id(*(aos_store_log_t *const *)a, *(aos_store_log_t *const *)b,
                          offsetof(aos_store_log_t, topic));
}

static const group_index_t group_indexes[] = {
    {"trace index",
     "INSERT INTO logs_traces (trace_id, first_id, last_id, ids) VALUES (?, ?, ?, ?)",
     offsetof(aos_store_log_t, trace_id), by_trace},
    {"topic index", "INSERT INTO logs_topics (topic, first_id, last_id, ids) VALUES (?, ?, ?, ?)",
     offsetof(aos_store_log_t, topic), by_topic},
};

static const char *group_key(const aos_store_log_t *r, const group_index_t *gi)
{
    return *(const char *const *)((const char *)r + gi->key);
}

/* ",<id>" (or "<id>" if !comma) onto b: printf's cost showed in profiles. */
static int append_id(aos_buf_t *b, int64_t id, int comma)
{
    char t[24];
    size_t n = sizeof(t);
    uint64_t v = id < 0 ? 0 - (uint64_t)id : (uint64_t)id;
    do {
        t[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    if (id < 0)
        t[--n] = '-';
    if (comma)
        t[--n] = ',';
    return aos_buf_append(b, t + n, sizeof(t) - n);
}

/* One group row per key among rows[0..n) (v: room for n pointers). */
static int insert_groups(aos_store_t *st, aos_store_log_t *const *rows, size_t n,
                         const group_index_t *gi, aos_store_log_t **v, aos_buf_t *ids,
                         aos_err_t *err)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (group_key(rows[i], gi))
            v[m++] = rows[i];
    qsort(v, m, sizeof(*v), gi->cmp);
    int rc = 0;
    for (size_t i = 0, j; rc == 0 && i < m; i = j) {
        const char *key = group_key(v[i], gi);
        aos_buf_reset(ids);
        rc = aos_buf_puts(ids, "[");
        for (j = i; rc == 0 && j < m && !strcmp(group_key(v[j], gi), key); j++)
            rc = append_id(ids, v[j]->id, j > i);
        if (rc == 0)
            rc = aos_buf_puts(ids, "]");
        if (rc < 0)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        aos__sql_val_t p[] = {aos__sql_text(key), aos__sql_int(v[i]->id),
                              aos__sql_int(v[j - 1]->id), aos__sql_text(ids->ptr)};
        rc = st->be->exec(st->conn, gi->sql, p, 4, NULL, err);
        if (rc < 0)
            rc = aos__store_fail(err, rc, "%s", gi->what);
    }
    return rc;
}

/* The tail's entries written by earlier transactions, read back: ids and
 * the keys of the group indexes (copied). */
struct tail {
    aos_store_log_t *rows;
    size_t n, cap;
};

static int tail_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    struct tail *t = arg;
    if (n != 3 || c[0].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable log entry");
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 256;
        aos_store_log_t *rows = realloc(t->rows, cap * sizeof(*rows));
        if (!rows)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        t->rows = rows;
        t->cap = cap;
    }
    aos_store_log_t *r = &t->rows[t->n];
    memset(r, 0, sizeof(*r));
    r->id = c[0].i;
    char *keys[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        if (c[1 + k].type != AOS__SQL_TEXT)
            continue;
        if (!(keys[k] = malloc(c[1 + k].len + 1))) {
            free(keys[0]);
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        }
        memcpy(keys[k], c[1 + k].p, c[1 + k].len);
        keys[k][c[1 + k].len] = '\0';
    }
    r->trace_id = keys[0];
    r->topic = keys[1];
    t->n++;
    return 0;
}

static void tail_release(struct tail *t)
{
    for (size_t i = 0; i < t->n; i++) {
        free((char *)t->rows[i].trace_id);
        free((char *)t->rows[i].topic);
    }
    free(t->rows);
}

/* Ids (upto, hi] into the indexes (0006_logs_index_tail.sql): one group
 * per trace and per topic among rows[0..n) (exactly the entries of that
 * range, in id order), the full-text index unless with_fts is 0 (the
 * caller did it), then indexed_upto moves to hi. */
static int index_range(aos_store_t *st, aos_store_log_t **rows, size_t n, int64_t upto, int64_t hi,
                       int with_fts, aos_err_t *err)
{
    int rc = 0;
    if (hi == upto)
        return 0;
    aos_store_log_t **v = malloc((n ? n : 1) * sizeof(*v));
    if (!v)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    aos_buf_t ids;
    aos_buf_init(&ids, 0);
    for (size_t k = 0; rc == 0 && k < sizeof(group_indexes) / sizeof(group_indexes[0]); k++)
        rc = insert_groups(st, rows, n, &group_indexes[k], v, &ids, err);
    aos_buf_release(&ids);
    free(v);
    if (rc < 0)
        return rc;
    aos__sql_val_t range[] = {aos__sql_int(upto), aos__sql_int(hi)};
    if (with_fts && (rc = aos__store_exec(st, FTS_RANGE_SQL, range, 2, NULL, err)) < 0)
        return aos__store_fail(err, rc, "full-text index");
    if ((rc = aos__store_exec(st, "UPDATE logs_index_state SET indexed_upto = ?", &range[1], 1,
                              NULL, err)) < 0)
        return aos__store_fail(err, rc, "index state");
    return 0;
}

/* Every entry above indexed_upto (upto) into the indexes, rows[0..n) (the
 * batch just inserted, the newest) from memory, the older ones read back. */
static int index_tail(aos_store_t *st, int64_t upto, aos_store_log_t *rows, size_t n,
                      aos_err_t *err)
{
    struct tail t = {NULL, 0, 0};
    aos__sql_val_t lim[] = {aos__sql_int(upto), aos__sql_int(rows[0].id)};
    int rc = aos__store_query(st, "SELECT id, trace_id, topic FROM logs WHERE id > ? AND id < ?",
                              lim, 2, tail_row, &t, err);
    size_t m = t.n + n;
    aos_store_log_t **all = rc == 0 ? malloc(m * sizeof(*all)) : NULL;
    if (rc == 0 && !all)
        rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
    if (all) { /* only allocated when the query succeeded */
        for (size_t i = 0; i < t.n; i++)
            all[i] = &t.rows[i];
        for (size_t i = 0; i < n; i++)
            all[t.n + i] = &rows[i];
        rc = index_range(st, all, m, upto, rows[n - 1].id, 1, err);
    }
    free(all);
    tail_release(&t);
    return rc < 0 ? aos__store_fail(err, rc, "unable to index the newest log entries") : 0;
}

static int insert_rows(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct insert_arg *a = arg;
    for (size_t i = 0; i < a->n; i++) {
        aos_store_log_t *r = &a->rows[i];
        aos__sql_val_t msg = aos__sql_text(r->message);
        msg.len = r->message_len;
        aos__sql_val_t p[] = {
            aos__sql_text(r->ts),      aos__sql_int(r->level),       msg,
            aos__sql_text(r->topic),   aos__sql_text(r->attributes), aos__sql_text(r->trace_id),
            aos__sql_text(r->span_id), aos__sql_text(r->source),     aos__sql_text(a->now),
        };
        /* The backend keeps the statement prepared: one prepare per batch at most. */
        int rc = st->be->exec(st->conn, INSERT_SQL, p, 9, NULL, err);
        if (rc < 0)
            return aos__store_fail(err, rc, "entry %zu", i);
        r->id = st->be->last_insert_id(st->conn);
    }
    /* The time index (0004_logs_ingest.sql): one row per batch. ts is
     * normalized ISO-8601 text, so text order is time order. */
    const char *lo = a->rows[0].ts, *hi = a->rows[0].ts;
    for (size_t i = 1; i < a->n; i++) {
        if (strcmp(a->rows[i].ts, lo) < 0)
            lo = a->rows[i].ts;
        if (strcmp(a->rows[i].ts, hi) > 0)
            hi = a->rows[i].ts;
    }
    aos__sql_val_t b[] = {aos__sql_int(a->rows[0].id), aos__sql_int(a->rows[a->n - 1].id),
                          aos__sql_text(lo), aos__sql_text(hi)};
    int rc = st->be->exec(st->conn,
                          "INSERT INTO logs_batches (first_id, last_id, min_ts, max_ts) "
                          "VALUES (?, ?, ?, ?)",
                          b, 4, NULL, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "time index");
    /* The other indexes are the caller's to fill (aos_store_logs_index),
     * unless it left AOS_STORE_LOGS_TAIL_MAX entries waiting. */
    int64_t upto;
    if ((rc = read_upto(st, &upto, err)) < 0)
        return aos__store_fail(err, rc, "index state");
    a->unindexed = a->rows[a->n - 1].id - upto;
    aos_store_job_note("logs_insert", (int64_t)a->n);
    if (a->unindexed >= AOS_STORE_LOGS_TAIL_MAX) {
        if ((rc = index_tail(st, upto, a->rows, a->n, err)) < 0)
            return rc;
        aos_store_job_note("logs_insert_index", a->unindexed);
        a->unindexed = 0;
    }
    return 0;
}

struct index_arg {
    int64_t max;
    int mode;          /* AOS_STORE_LOGS_FILL_* */
    int64_t unindexed; /* out */
};

/* FTS5's merges (automerge is off, 0012_logs_fts_merge.sql): up to steps
 * of FTS_MERGE_PAGES pages, until deadline (ns, 0: none) and, if yield,
 * while no job waits; done when a step changes nothing (FTS5's own
 * test). */
static int fts_merge(aos_store_t *st, int yield, int steps, uint64_t deadline, aos_err_t *err)
{
    int rc = 0;
    for (int i = 0; rc == 0 && i < steps; i++) {
        if ((yield && aos__store_busy(st)) || (deadline && uv_hrtime() >= deadline))
            break;
        int64_t before = 0, after = 0;
        aos__sql_val_t pages = aos__sql_int(FTS_MERGE_PAGES);
        if ((rc = aos__store_query(st, "SELECT total_changes()", NULL, 0, read_int, &before, err)) <
                0 ||
            (rc = aos__store_exec(st, "INSERT INTO logs_fts (logs_fts, rank) VALUES ('merge', ?)",
                                  &pages, 1, NULL, err)) < 0 ||
            (rc = aos__store_query(st, "SELECT total_changes()", NULL, 0, read_int, &after, err)) <
                0)
            return aos__store_fail(err, rc, "full-text merge");
        if (after - before < 2)
            break;
    }
    return rc;
}

/* The next step of a fill: up to want entries above *hi read back (ids
 * and group keys) onto t, and into the full-text index; *hi moves to the
 * last. */
static int fill_step(aos_store_t *st, struct tail *t, int64_t *hi, int64_t want, aos_err_t *err)
{
    size_t had = t->n;
    aos__sql_val_t p[] = {aos__sql_int(*hi), aos__sql_int(want)};
    int rc = aos__store_query(st,
                              "SELECT id, trace_id, topic FROM logs WHERE id > ? "
                              "ORDER BY id LIMIT ?",
                              p, 2, tail_row, t, err);
    if (rc < 0 || t->n == had)
        return rc;
    aos__sql_val_t range[] = {aos__sql_int(*hi), aos__sql_int(t->rows[t->n - 1].id)};
    if ((rc = aos__store_exec(st, FTS_RANGE_SQL, range, 2, NULL, err)) < 0)
        return aos__store_fail(err, rc, "full-text index");
    *hi = t->rows[t->n - 1].id;
    return 0;
}

/* rows[0..n) of t into the groups, the range (upto, hi] done. */
static int fill_groups(aos_store_t *st, struct tail *t, int64_t upto, int64_t hi, aos_err_t *err)
{
    aos_store_log_t **all = t->n ? malloc(t->n * sizeof(*all)) : NULL;
    if (t->n && !all)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    for (size_t i = 0; i < t->n; i++)
        all[i] = &t->rows[i];
    int rc = index_range(st, all, t->n, upto, hi, 0, err);
    free(all);
    return rc;
}

/* A fill in steps: each step whole - INDEX_STEP entries into the
 * full-text index, FTS5's pending terms flushed into a segment, the
 * groups, indexed_upto - so that it may end after any step, since the
 * commit's cost grows with the work (FTS5 would otherwise flush every
 * step's terms at the commit, and a commit writes every page the fill
 * changed). An idle fill (the store otherwise idle) ends when a job waits
 * or after FILL_BUDGET_NS of work, a fill behind (inserts always waiting)
 * after BEHIND_BUDGET_NS, whatever waits, and at least one step. Then
 * merges for another FILL_BUDGET_NS at most, an idle fill's only while no
 * job waits. */
static int index_steps(aos_store_t *st, struct index_arg *a, int64_t upto, int64_t *done,
                       aos_err_t *err)
{
    int yield = a->mode == AOS_STORE_LOGS_FILL_IDLE;
    uint64_t deadline = uv_hrtime() + (yield ? FILL_BUDGET_NS : BEHIND_BUDGET_NS);
    int64_t hi = upto;
    int rc = 0;
    while (rc == 0) {
        struct tail t = {NULL, 0, 0};
        int64_t from = hi, want = INDEX_STEP;
        if (a->max > 0 && a->max - *done < want)
            want = a->max - *done;
        if (want <= 0 || (rc = fill_step(st, &t, &hi, want, err)) < 0 || t.n == 0) {
            tail_release(&t);
            break;
        }
        /* FTS5 writes its pending terms out when a savepoint begins (its
         * xSavepoint; the 'flush' command is newer than Debian 12's 3.40) */
        if ((rc = aos__store_exec(st, "SAVEPOINT aos_fts_flush", NULL, 0, NULL, err)) < 0 ||
            (rc = aos__store_exec(st, "RELEASE aos_fts_flush", NULL, 0, NULL, err)) < 0)
            rc = aos__store_fail(err, rc, "full-text flush");
        if (rc == 0)
            rc = fill_groups(st, &t, from, hi, err);
        *done += (int64_t)t.n;
        int short_step = (int64_t)t.n < want;
        tail_release(&t);
        if (short_step || (yield && aos__store_busy(st)) || uv_hrtime() >= deadline)
            break;
    }
    /* merges get a budget of their own: the steps flush a segment each,
     * and if they used up the fill's budget every time, segments would
     * pile up until FTS5 merged 16 at once inside a flush (crisismerge) */
    if (rc == 0)
        rc = fts_merge(st, yield, FTS_MERGE_STEPS, uv_hrtime() + FILL_BUDGET_NS, err);
    return rc;
}

/* aos_store_logs_index. Idle and behind: index_steps. Else (the whole
 * tail, inserts far behind): the oldest unindexed entries,
 * INDEX_STEP at a time into the full-text index (its costly part), their
 * ids and keys read back for the groups, which are written for all of
 * them at the end; between the two, FTS5's segment merges in steps. */
static int index_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct index_arg *a = arg;
    struct tail t = {NULL, 0, 0};
    int64_t upto = 0, last = 0, hi, done = 0;
    int rc = read_upto(st, &upto, err);
    if (rc == 0)
        rc = aos__store_query(st, "SELECT COALESCE(MAX(id), 0) FROM logs", NULL, 0, read_int, &last,
                              err);
    hi = upto;
    if (rc == 0 && a->mode != AOS_STORE_LOGS_FILL_ALL) {
        rc = index_steps(st, a, upto, &done, err);
        if (rc == 0)
            rc = read_upto(st, &hi, err);
        goto out;
    }
    while (rc == 0) {
        size_t had = t.n;
        int64_t want = INDEX_STEP;
        if (a->max > 0 && a->max - (int64_t)had < want)
            want = a->max - (int64_t)had;
        if ((rc = fill_step(st, &t, &hi, want, err)) < 0 || t.n == had)
            break;
        if ((int64_t)(t.n - had) < want || (a->max > 0 && (int64_t)t.n >= a->max))
            break;
    }
    if (rc == 0)
        rc = fts_merge(st, 0, FTS_MERGE_STEPS, 0, err);
    if (rc == 0) /* if nothing was read, hi == upto: nothing to do */
        rc = fill_groups(st, &t, upto, hi, err);
    done = (int64_t)t.n;
    tail_release(&t);
out:
    if (rc == 0)
        a->unindexed = last > hi ? last - hi : 0;
    aos_store_job_note(a->mode == AOS_STORE_LOGS_FILL_IDLE     ? "logs_fill"
                       : a->mode == AOS_STORE_LOGS_FILL_BEHIND ? "logs_fill_behind"
                                                               : "logs_fill_all",
                       done);
    return rc;
}

int aos_store_logs_index(aos_store_t *st, int64_t max, int mode, int64_t *unindexed, aos_err_t *err)
{
    struct index_arg a = {max, mode, 0};
    if (unindexed)
        *unindexed = 0;
    int rc = aos_store_tx(st, index_tx, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to index the newest log entries");
    if (unindexed)
        *unindexed = a.unindexed;
    return 0;
}

int aos_store_logs_insert(aos_store_t *st, aos_store_log_t *rows, size_t n, char created_at[32],
                          int64_t *unindexed, aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    if (created_at)
        memcpy(created_at, now, sizeof(now));
    if (unindexed)
        *unindexed = 0;
    if (n == 0)
        return 0;
    struct insert_arg a = {rows, n, now, 0};
    /* aos_store_tx holds db_lock: insert_rows may use the backend directly. */
    int rc = aos_store_tx(st, insert_rows, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to insert %zu log entries", n);
    if (unindexed)
        *unindexed = a.unindexed;
    return 0;
}

/* Full text --------------------------------------------------------------- */

int aos_store_logs_token_char(unsigned char c)
{
    return c >= 0x80 || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

int aos_store_logs_next_word(const char **q, const char **word, size_t *len, int *prefix)
{
    const unsigned char *p = (const unsigned char *)*q;
    while (*p) {
        while (is_space(*p))
            p++;
        const unsigned char *w = p;
        while (*p && !is_space(*p))
            p++;
        size_t n = (size_t)(p - w);
        int star = 0;
        while (n > 0 && w[n - 1] == '*') {
            star = 1;
            n--;
        }
        for (size_t i = 0; i < n; i++) {
            if (aos_store_logs_token_char(w[i])) {
                *q = (const char *)p;
                *word = (const char *)w;
                *len = n;
                *prefix = star;
                return 1;
            }
        }
        /* only separators: nothing the index could match */
    }
    *q = (const char *)p;
    return 0;
}

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

int aos_store_logs_word_tokens(const char *word, size_t n, char **out)
{
    const unsigned char *w = (const unsigned char *)word;
    char *t = malloc(n + 1);
    *out = t;
    if (!t)
        return AOS_ENOMEM;
    size_t len = 0;
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        if (aos_store_logs_token_char(w[i])) {
            if (!len || t[len - 1] == ' ')
                count++;
            t[len++] = (char)fold(w[i]);
        } else if (len && t[len - 1] != ' ') {
            t[len++] = ' ';
        }
    }
    while (len && t[len - 1] == ' ')
        len--;
    t[len] = '\0';
    return count;
}

/* The next token of s[0..len) from *pos: its start and length; 0 at the end. */
static int next_token(const unsigned char *s, size_t len, size_t *pos, size_t *start, size_t *n)
{
    size_t i = *pos;
    while (i < len && !aos_store_logs_token_char(s[i]))
        i++;
    if (i == len)
        return 0;
    *start = i;
    while (i < len && aos_store_logs_token_char(s[i]))
        i++;
    *n = i - *start;
    *pos = i;
    return 1;
}

/* 1 if message token m equals folded token w, or starts with it when
 * prefix is set. */
static int token_eq(const unsigned char *m, size_t mn, const char *w, size_t wn, int prefix)
{
    if (mn < wn || (!prefix && mn != wn))
        return 0;
    for (size_t i = 0; i < wn; i++)
        if (fold(m[i]) != (unsigned char)w[i])
            return 0;
    return 1;
}

int aos_store_logs_phrase_match(const char *msg, size_t len, const char *tokens, int prefix)
{
    const unsigned char *m = (const unsigned char *)msg;
    size_t pos = 0, start, n;
    while (next_token(m, len, &pos, &start, &n)) {
        /* try the phrase from this token on */
        const char *wt = tokens;
        size_t mpos = pos, ms = start, mn = n;
        for (;;) {
            const char *sp = strchr(wt, ' ');
            size_t wn = sp ? (size_t)(sp - wt) : strlen(wt);
            if (!token_eq(m + ms, mn, wt, wn, !sp && prefix))
                break;
            if (!sp)
                return 1;
            wt = sp + 1;
            if (!next_token(m, len, &mpos, &ms, &mn))
                return 0; /* the message ends inside the phrase */
        }
    }
    return 0;
}

int aos_store_logs_fts(const char *q, char **out, aos_err_t *err)
{
    *out = NULL;
    if (!q)
        return aos_err_set(err, AOS_EINVAL, "'q' is required");
    if (strlen(q) > FTS_MAX_BYTES)
        return aos_err_set(err, AOS_EINVAL, "'q' is longer than %d bytes", FTS_MAX_BYTES);
    aos_buf_t b;
    aos_buf_init(&b, 4 * FTS_MAX_BYTES);
    int words = 0, rc = 0, prefix;
    const char *wp;
    size_t n;
    while (aos_store_logs_next_word(&q, &wp, &n, &prefix)) {
        if (++words > FTS_MAX_WORDS) {
            rc = aos_err_set(err, AOS_EINVAL, "'q' has more than %d words", FTS_MAX_WORDS);
            goto out;
        }
        /* Each token an FTS5 string of its own ("..."; tokens hold no '"'),
         * the last one a prefix for a word ending in '*'. The index keeps
         * no positions (0004): a word of several tokens is their AND here,
         * and the statement checks the order (aos_logs_phrase). */
        char *t;
        if (aos_store_logs_word_tokens(wp, n, &t) < 0) {
            rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
            goto out;
        }
        rc = aos_buf_puts(&b, words > 1 ? " \"" : "\"");
        for (const char *c = t; rc == 0 && *c; c++)
            rc = aos_buf_puts(&b, *c == ' ' ? "\" \"" : (char[]){*c, '\0'});
        if (rc == 0)
            rc = aos_buf_puts(&b, prefix ? "\"*" : "\"");
        free(t);
        if (rc < 0) {
            rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
            goto out;
        }
    }
    if (words == 0) {
        rc = aos_err_set(err, AOS_EINVAL, "'q' has no word to search for");
        goto out;
    }
    *out = aos_buf_detach(&b, NULL);
    if (!*out)
        rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
out:
    aos_buf_release(&b);
    return rc;
}

/* Statements ------------------------------------------------------------- */

typedef struct {
    aos_buf_t sql;
    aos__sql_val_t p[MAX_PARAMS];
    int n;
    char *fts;                       /* owned: the bound full-text query */
    char *phrase[2 * FTS_MAX_WORDS]; /* owned: bound phrases to check in order */
    int nphrases;
    int nconds;
} stmt_t;

static void stmt_release(stmt_t *s)
{
    aos_buf_release(&s->sql);
    free(s->fts);
    for (int i = 0; i < s->nphrases; i++)
        free(s->phrase[i]);
}

static void cond(stmt_t *s, const char *text, aos__sql_val_t v);

/* The words of q as aos_logs_phrase(col, "t1 t2[*]") conditions, ANDed:
 * every word (all: the entries above indexed_upto, which only this finds),
 * or only the words of more than one token (the rows the index found: the
 * FTS5 query only asks for all their tokens, not their order). inner: inside
 * a subquery that has its WHERE already. */
static int phrase_conds(stmt_t *s, const char *q, int all, const char *col, int inner,
                        aos_err_t *err)
{
    const char *wp;
    size_t n;
    int prefix;
    while (aos_store_logs_next_word(&q, &wp, &n, &prefix)) {
        char *t;
        int count = aos_store_logs_word_tokens(wp, n, &t);
        if (count < 0)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        if (count < (all ? 1 : 2) || s->nphrases == 2 * FTS_MAX_WORDS) {
            free(t);
            continue;
        }
        if (prefix) {
            size_t len = strlen(t);
            char *tp = realloc(t, len + 2);
            if (!tp) {
                free(t);
                return aos_err_set(err, AOS_ENOMEM, "out of memory");
            }
            t = tp;
            memcpy(t + len, "*", 2);
        }
        s->phrase[s->nphrases++] = t;
        aos_buf_printf(&s->sql, "%saos_logs_phrase(%s, ?)",
                       inner || s->nconds++ ? " AND " : " WHERE ", col);
        s->p[s->n++] = aos__sql_text(t);
    }
    return 0;
}

/* Appends " WHERE"/" AND" cond, binding v. */
static void cond(stmt_t *s, const char *text, aos__sql_val_t v)
{
    aos_buf_puts(&s->sql, s->nconds++ ? " AND " : " WHERE ");
    aos_buf_puts(&s->sql, text);
    s->p[s->n++] = v;
}

static const char *group_column(const char *group_by)
{
    static const char *const cols[] = {"topic", "level", "source"};
    for (size_t i = 0; i < sizeof(cols) / sizeof(cols[0]); i++)
        if (group_by && !strcmp(group_by, cols[i]))
            return cols[i];
    return NULL;
}

#define ENTRY_COLUMNS                                                                              \
    "logs.id, logs.ts, logs.level, logs.message, logs.topic, logs.attributes, logs.trace_id, "     \
    "logs.span_id, logs.source, logs.created_at"

/* Which entries a statement reads. The indexes (full text, trace and
 * topic groups) hold the entries up to logs_index_state.indexed_upto
 * (0006_logs_index_tail.sql); the few above it, the tail, are checked row
 * by row. */
typedef enum {
    PART_ALL,     /* both, in one statement: an index's set is its ids and the
                     tail's matching ones (counts, a trace, no index at all) */
    PART_INDEXED, /* an index alone drives the scan: the full-text index, or
                     a chunk of a topic's groups (ids) */
    PART_TAIL,    /* the tail alone, every filter a check per row */
} part_t;

/* Entries whose key (column of logs: trace_id, topic) is v: the ids in
 * its groups (table: logs_traces, logs_topics) and the tail's entries
 * that have it. table and column are fixed names, v is bound. */
static void group_cond(stmt_t *s, const char *table, const char *column, const char *v)
{
    aos_buf_printf(&s->sql,
                   "%slogs.id IN (SELECT j.value FROM %s t, json_each(t.ids) j WHERE t.%s = ? "
                   "UNION ALL SELECT tail.id FROM logs tail WHERE tail.id > " INDEXED_UPTO
                   " AND tail.%s = ?)",
                   s->nconds++ ? " AND " : " WHERE ", table, column, column);
    s->p[s->n++] = aos__sql_text(v);
    s->p[s->n++] = aos__sql_text(v);
}

/* The statement for f: entries (group_by NULL) or counts per group_by.
 * ids, a JSON array, restricts the entries to those ids (a chunk of a
 * topic's groups, see walk_topic). */
static int build(stmt_t *s, const aos_store_logs_filter_t *f, const char *group_by, const char *ids,
                 part_t part, aos_err_t *err)
{
    memset(s, 0, sizeof(*s));
    aos_buf_init(&s->sql, 0);
    const char *gcol = NULL;
    if (group_by && !(gcol = group_column(group_by)))
        return aos_err_set(err, AOS_EINVAL, "'group_by' must be topic, level or source");
    if (f->limit < 1 || f->limit > AOS_STORE_LIST_MAX + 1)
        return aos_err_set(err, AOS_EINVAL, "'limit' must be from 1 to %d", AOS_STORE_LIST_MAX);
    if (f->q) {
        int rc = aos_store_logs_fts(f->q, &s->fts, err);
        if (rc < 0)
            return rc;
    }
    /* Who drives the scan, for a page of `limit` newest (or oldest) matches:
     *  - with a trace id, its groups (a trace is small); the full-text match
     *    is then a set of rowids looked up per row;
     *  - else with full text, the FTS table, in rowid order, so that the
     *    page stops after `limit` matches instead of collecting them all
     *    (text_page; the tail is read apart);
     *  - else with a topic, its groups (0005_logs_topics.sql): counts read
     *    all of them, a page walks them a chunk at a time (walk_topic),
     *    each chunk's ids given here (the tail is read apart);
     *  - else the table itself, newest first, stopping after `limit`; a
     *    time range first becomes a range of ids through logs_batches
     *    (each batch's first and last id and its smallest and largest ts,
     *    0004_logs_ingest.sql), so only the batches that may hold entries
     *    of that time are read. */
    int fts_drives = s->fts && part == PART_INDEXED;
    const char *id = fts_drives ? "logs_fts.rowid" : "logs.id";
    if (gcol)
        aos_buf_printf(&s->sql, "SELECT logs.%s, COUNT(*) FROM ", gcol);
    else
        aos_buf_puts(&s->sql, "SELECT " ENTRY_COLUMNS " FROM ");
    aos_buf_puts(&s->sql, fts_drives ? "logs_fts JOIN logs ON logs.id = logs_fts.rowid" : "logs");
    int rc = 0;
    if (fts_drives) {
        cond(s, "logs_fts MATCH ?", aos__sql_text(s->fts));
        rc = phrase_conds(s, f->q, 0, "logs.message", 0, err);
    } else if (part == PART_TAIL) {
        aos_buf_puts(&s->sql, s->nconds++ ? " AND " : " WHERE ");
        aos_buf_puts(&s->sql, "logs.id > " INDEXED_UPTO);
        if (s->fts)
            rc = phrase_conds(s, f->q, 1, "logs.message", 0, err);
    } else if (s->fts) {
        cond(s,
             "logs.id IN (SELECT rowid FROM logs_fts WHERE logs_fts MATCH ? UNION ALL "
             "SELECT tail.id FROM logs tail WHERE tail.id > " INDEXED_UPTO,
             aos__sql_text(s->fts));
        if ((rc = phrase_conds(s, f->q, 1, "tail.message", 1, err)) == 0) {
            aos_buf_puts(&s->sql, ")");
            rc = phrase_conds(s, f->q, 0, "logs.message", 0, err);
        }
    }
    if (rc < 0)
        return rc;
    if (f->min_level > 0)
        cond(s, "logs.level >= ?", aos__sql_int(f->min_level));
    if (f->trace_id && part == PART_ALL) /* its groups, then each id by primary key */
        group_cond(s, "logs_traces", "trace_id", f->trace_id);
    else if (f->trace_id)
        cond(s, "logs.trace_id = ?", aos__sql_text(f->trace_id));
    if (ids)
        cond(s, "logs.id IN (SELECT value FROM json_each(?))", aos__sql_text(ids));
    if (f->topic && gcol && !f->trace_id && !s->fts && part == PART_ALL)
        group_cond(s, "logs_topics", "topic", f->topic);
    else if (f->topic)
        cond(s, "logs.topic = ?", aos__sql_text(f->topic));
    if (f->source)
        cond(s, "logs.source = ?", aos__sql_text(f->source));
    if (f->after) {
        cond(s, "logs.ts > ?", aos__sql_text(f->after));
        aos_buf_printf(&s->sql,
                       " AND %s >= (SELECT COALESCE(MIN(first_id), %lld) FROM logs_batches "
                       "WHERE max_ts > ?)",
                       id, (long long)INT64_MAX);
        s->p[s->n++] = aos__sql_text(f->after);
    }
    if (f->before) {
        cond(s, "logs.ts < ?", aos__sql_text(f->before));
        aos_buf_printf(&s->sql,
                       " AND %s <= (SELECT COALESCE(MAX(last_id), 0) FROM logs_batches "
                       "WHERE min_ts < ?)",
                       id);
        s->p[s->n++] = aos__sql_text(f->before);
    }
    if (f->after_id > 0) {
        aos_buf_printf(&s->sql, "%s%s > ?", s->nconds++ ? " AND " : " WHERE ", id);
        s->p[s->n++] = aos__sql_int(f->after_id);
    }
    if (f->before_id > 0) {
        aos_buf_printf(&s->sql, "%s%s < ?", s->nconds++ ? " AND " : " WHERE ", id);
        s->p[s->n++] = aos__sql_int(f->before_id);
    }
    if (gcol)
        aos_buf_printf(&s->sql, " GROUP BY logs.%s ORDER BY COUNT(*) DESC, logs.%s", gcol, gcol);
    else
        aos_buf_printf(&s->sql, " ORDER BY %s %s", id, f->ascending ? "ASC" : "DESC");
    aos_buf_puts(&s->sql, " LIMIT ?");
    s->p[s->n++] = aos__sql_int(f->limit);
    if (!s->sql.ptr)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return 0;
}

int aos_store_logs_sql(const aos_store_logs_filter_t *f, const char *group_by, char **sql,
                       json_t **params, aos_err_t *err)
{
    stmt_t s;
    *sql = NULL;
    *params = NULL;
    part_t part = f->q && !group_by && !f->trace_id ? PART_INDEXED : PART_ALL;
    int rc = build(&s, f, group_by, NULL, part, err);
    if (rc == 0) {
        json_t *a = json_array();
        for (int i = 0; a && i < s.n; i++)
            json_array_append_new(a, s.p[i].type == AOS__SQL_INT
                                         ? json_integer(s.p[i].i)
                                         : json_stringn(s.p[i].p, s.p[i].len));
        *sql = aos_buf_detach(&s.sql, NULL);
        *params = a;
        if (!*sql || !a) {
            free(*sql);
            json_decref(a);
            *sql = NULL;
            *params = NULL;
            rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
        }
    }
    stmt_release(&s);
    return rc;
}

/* Rows -------------------------------------------------------------------- */

static json_t *text_or_null(const aos__sql_val_t *v)
{
    return v->type == AOS__SQL_TEXT ? json_stringn(v->p, v->len) : json_null();
}

static int entry_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    json_t *rows = arg;
    if (n != 10 || c[0].type != AOS__SQL_INT || c[2].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable log entry");
    json_t *attrs = c[5].type == AOS__SQL_TEXT ? json_loadb(c[5].p, c[5].len, 0, NULL) : NULL;
    const char *level = aos_store_log_level_name((int)c[2].i);
    json_t *e = json_pack("{s:I, s:o, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "id",
                          (json_int_t)c[0].i, "ts", text_or_null(&c[1]), "level",
                          level ? level : "info", "message", text_or_null(&c[3]), "topic",
                          text_or_null(&c[4]), "attributes", attrs ? attrs : json_null(),
                          "trace_id", text_or_null(&c[6]), "span_id", text_or_null(&c[7]), "source",
                          text_or_null(&c[8]), "created_at", text_or_null(&c[9]));
    if (!e || json_array_append_new(rows, e) < 0)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return 0;
}

static int count_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    json_t *rows = arg;
    if (n != 2 || c[1].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable count");
    json_t *key;
    if (c[0].type == AOS__SQL_INT) {
        const char *name = aos_store_log_level_name((int)c[0].i);
        key = name ? json_string(name) : json_integer(c[0].i);
    } else {
        key = text_or_null(&c[0]);
    }
    json_t *g = json_pack("{s:o, s:I}", "key", key, "count", (json_int_t)c[1].i);
    if (!g || json_array_append_new(rows, g) < 0)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return 0;
}

/* Runs the statement of f (ids, part: see build) onto rows. */
static int select_into(aos_store_t *st, const aos_store_logs_filter_t *f, const char *group_by,
                       const char *ids, part_t part, json_t *rows, aos_err_t *err)
{
    stmt_t s;
    int rc = build(&s, f, group_by, ids, part, err);
    if (rc == 0)
        rc = aos__store_query(st, s.sql.ptr, s.p, s.n, group_by ? count_row : entry_row, rows, err);
    stmt_release(&s);
    return rc;
}

/* A chunk of a topic's groups: their ids as one JSON array. */
struct chunk {
    aos_buf_t ids;
    int groups;
    int64_t last; /* first_id of the last group read */
};

static int chunk_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    struct chunk *k = arg;
    if (n != 2 || c[0].type != AOS__SQL_INT || c[1].type != AOS__SQL_TEXT)
        return aos_err_set(err, AOS_ESTORE, "unreadable topic group");
    /* "[1,2,3]" -> "1,2,3", after a comma if not the first */
    const char *t = c[1].p, *p = memchr(t, '[', c[1].len), *e = t + c[1].len;
    while (e > t && e[-1] != ']')
        e--;
    k->groups++;
    k->last = c[0].i;
    if (!p || e <= p + 1 || e - 1 == p + 1)
        return 0;
    if ((k->ids.len > 1 && aos_buf_puts(&k->ids, ",")) ||
        aos_buf_append(&k->ids, p + 1, (size_t)(e - 1 - (p + 1))))
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return 0;
}

#define WALK_FIRST 4    /* groups in the first chunk */
#define WALK_MAX   1024 /* and at most, doubling */

/* The indexed half of a page by topic (no trace id, no full text): the
 * topic's groups newest first (oldest first for an ascending page), a
 * chunk at a time, each chunk's ids through the statement of f until
 * f->limit more rows are in rows or the groups run out. A topic's groups
 * never overlap, so chunk order is id order. */
static int walk_topic(aos_store_t *st, const aos_store_logs_filter_t *f, json_t *rows,
                      aos_err_t *err)
{
    size_t start = json_array_size(rows);
    int64_t cursor = f->before_id > 0 ? f->before_id : INT64_MAX;
    int rc = 0;
    if (f->ascending) { /* from the group holding after_id, or the first */
        aos__sql_val_t p[] = {aos__sql_text(f->topic), aos__sql_int(f->after_id)};
        int64_t g = 0;
        if (f->after_id > 0 &&
            (rc = aos__store_query(st,
                                   "SELECT COALESCE(MAX(first_id), 0) FROM logs_topics "
                                   "WHERE topic = ? AND first_id <= ?",
                                   p, 2, read_int, &g, err)) < 0)
            return rc;
        cursor = g - 1;
    }
    struct chunk k;
    aos_buf_init(&k.ids, 0);
    for (int size = WALK_FIRST;; size = size < WALK_MAX ? size * 2 : WALK_MAX) {
        size_t have = json_array_size(rows) - start;
        if (have >= (size_t)f->limit)
            break;
        aos_buf_reset(&k.ids);
        k.groups = 0;
        if (aos_buf_puts(&k.ids, "[")) {
            rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
            break;
        }
        aos__sql_val_t p[] = {aos__sql_text(f->topic), aos__sql_int(cursor), aos__sql_int(size)};
        rc =
            aos__store_query(st,
                             f->ascending ? "SELECT first_id, ids FROM logs_topics WHERE topic = ? "
                                            "AND first_id > ? ORDER BY first_id LIMIT ?"
                                          : "SELECT first_id, ids FROM logs_topics WHERE topic = ? "
                                            "AND first_id < ? ORDER BY first_id DESC LIMIT ?",
                             p, 3, chunk_row, &k, err);
        if (rc < 0 || k.groups == 0)
            break;
        if (aos_buf_puts(&k.ids, "]")) {
            rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
            break;
        }
        aos_store_logs_filter_t g = *f;
        g.limit = f->limit - (int)have;
        if ((rc = select_into(st, &g, NULL, k.ids.ptr, PART_INDEXED, rows, err)) < 0 ||
            k.groups < size)
            break;
        cursor = k.last;
    }
    aos_buf_release(&k.ids);
    return rc;
}

/* The indexed half of a page by text without a trace: the full-text
 * index drives the scan, so a page stops after `limit` matches instead of
 * collecting them all. */
static int text_indexed(aos_store_t *st, const aos_store_logs_filter_t *f, json_t *rows,
                        aos_err_t *err)
{
    return select_into(st, f, NULL, NULL, PART_INDEXED, rows, err);
}

/* A page whose filter an index drives (indexed: text_indexed or
 * walk_topic), in two halves: the tail, every id above the indexed ones,
 * read row by row - first for a newest-first page, last for an
 * oldest-first one - and the rest through the index. */
static int two_halves(aos_store_t *st, const aos_store_logs_filter_t *f, json_t *rows,
                      int (*indexed)(aos_store_t *, const aos_store_logs_filter_t *, json_t *,
                                     aos_err_t *),
                      aos_err_t *err)
{
    for (int k = 0; k < 2; k++) {
        int tail = (k == 0) == !f->ascending;
        size_t have = json_array_size(rows);
        if (have >= (size_t)f->limit)
            break;
        aos_store_logs_filter_t g = *f;
        g.limit = f->limit - (int)have;
        int rc = tail ? select_into(st, &g, NULL, NULL, PART_TAIL, rows, err)
                      : indexed(st, &g, rows, err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

static int run_select(aos_store_t *st, const aos_store_logs_filter_t *f, const char *group_by,
                      json_t **out, aos_err_t *err)
{
    *out = NULL;
    json_t *rows = json_array();
    if (!rows)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    int rc;
    if (group_by || f->trace_id || (!f->q && !f->topic))
        rc = select_into(st, f, group_by, NULL, PART_ALL, rows, err);
    else
        rc = two_halves(st, f, rows, f->q ? text_indexed : walk_topic, err);
    if (rc < 0) {
        json_decref(rows);
        return rc;
    }
    *out = rows;
    return 0;
}

int aos_store_logs_query(aos_store_t *st, const aos_store_logs_filter_t *f, json_t **out,
                         aos_err_t *err)
{
    int rc = run_select(st, f, NULL, out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to query logs");
    return 0;
}

int aos_store_logs_count(aos_store_t *st, const aos_store_logs_filter_t *f, const char *group_by,
                         json_t **out, aos_err_t *err)
{
    if (!group_by)
        return aos_err_set(err, AOS_EINVAL, "unable to count logs: no group");
    int rc = run_select(st, f, group_by, out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to count logs");
    return 0;
}

int aos_store_logs_last_id(aos_store_t *st, int64_t *out, aos_err_t *err)
{
    *out = 0;
    /* sqlite_sequence remembers ids of deleted rows too; MAX(id) is the
     * portable fallback and equal while the newest row exists. */
    int rc = aos__store_query(st, "SELECT MAX(id) FROM logs", NULL, 0, read_int, out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read the last log id");
    return 0;
}

/* Retention --------------------------------------------------------------- */

struct retain_arg {
    const char *created_before;
    int64_t keep_rows;
    int64_t max_delete;
    int64_t deleted;
};

static int retain_rows(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct retain_arg *a = arg;
    int64_t budget = a->max_delete, changes = 0, lo = 0, hi = 0;
    int rc;
    if (a->keep_rows > 0) {
        /* ids only grow and retention deletes the oldest, so the newest
         * keep_rows entries are those with id > MAX(id) - keep_rows (fewer
         * if ids have gaps, never more). */
        if ((rc = aos__store_query(st, "SELECT MIN(id) FROM logs", NULL, 0, read_int, &lo, err)) ||
            (rc = aos__store_query(st, "SELECT MAX(id) FROM logs", NULL, 0, read_int, &hi, err)))
            return rc;
        int64_t keep_from = hi - a->keep_rows + 1;
        if (lo > 0 && lo < keep_from) {
            int64_t upto = keep_from - lo > budget ? lo + budget : keep_from;
            aos__sql_val_t p = aos__sql_int(upto);
            /* the full-text index first: it needs the text being deleted */
            if ((rc = aos__store_exec(
                     st,
                     "INSERT INTO logs_fts (logs_fts, rowid, message) SELECT "
                     "'delete', id, message FROM logs WHERE id < ? AND id <= " INDEXED_UPTO,
                     &p, 1, NULL, err)) ||
                (rc = aos__store_exec(st, "DELETE FROM logs WHERE id < ?", &p, 1, &changes, err)))
                return rc;
            a->deleted += changes;
            budget -= changes;
        }
    }
    if (a->created_before && budget > 0) {
        /* created_at follows id (both set at insert), so the old entries are
         * among the oldest ids: look at no more than budget of those. The
         * two statements select the same rows: nothing else writes between. */
        aos__sql_val_t p[] = {aos__sql_int(budget), aos__sql_text(a->created_before)};
        if ((rc = aos__store_exec(
                 st,
                 "INSERT INTO logs_fts (logs_fts, rowid, message) SELECT "
                 "'delete', id, message FROM logs WHERE id IN (SELECT id FROM "
                 "logs ORDER BY id LIMIT ?) AND created_at < ? AND id <= " INDEXED_UPTO,
                 p, 2, NULL, err)) ||
            (rc = aos__store_exec(st,
                                  "DELETE FROM logs WHERE id IN (SELECT id FROM logs ORDER BY id "
                                  "LIMIT ?) AND created_at < ?",
                                  p, 2, &changes, err)))
            return rc;
        a->deleted += changes;
    }
    if (a->deleted) { /* groups and batches whose entries are all gone */
        aos__sql_val_t p = aos__sql_int(INT64_MAX);
        if ((rc = aos__store_exec(st,
                                  "DELETE FROM logs_traces WHERE last_id < "
                                  "(SELECT COALESCE(MIN(id), ?) FROM logs)",
                                  &p, 1, NULL, err)) ||
            (rc = aos__store_exec(st,
                                  "DELETE FROM logs_topics WHERE last_id < "
                                  "(SELECT COALESCE(MIN(id), ?) FROM logs)",
                                  &p, 1, NULL, err)) ||
            (rc = aos__store_exec(st,
                                  "DELETE FROM logs_batches WHERE last_id < "
                                  "(SELECT COALESCE(MIN(id), ?) FROM logs)",
                                  &p, 1, NULL, err)))
            return rc;
    }
    return 0;
}

int aos_store_logs_retain(aos_store_t *st, const char *created_before, int64_t keep_rows,
                          int64_t max_delete, int64_t *deleted, aos_err_t *err)
{
    struct retain_arg a = {created_before, keep_rows, max_delete, 0};
    if (deleted)
        *deleted = 0;
    if (max_delete < 1 || keep_rows < 0)
        return aos_err_set(err, AOS_EINVAL, "unable to apply log retention: bad limits");
    int rc = aos_store_tx(st, retain_rows, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to apply log retention");
    if (deleted)
        *deleted = a.deleted;
    return 0;
}
