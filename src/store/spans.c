/* spans.c - the store side of tracing (store.h, "spans"): batch insert,
 * a trace's spans page by page in start order, the resources spans name,
 * and retention. src/trace decides what a span holds; these functions keep
 * the rows, in portable SQL with bound parameters only.
 *
 * A page read owns its strings in a chain of chunks (a bump allocator), so
 * reading 10,000 spans costs a few allocations, not one per string. */
#include "store/internal.h"
#include "isotime/isotime.h"

#include <stdlib.h>
#include <string.h>

#define CHUNK_SIZE (64 * 1024)
#define PAGE_MAX   100000

#define SPAN_COLS                                                                                  \
    "id, trace_id, span_id, parent_span_id, trace_state, flags, name, kind, "                      \
    "start_time_unix_nano, end_time_unix_nano, status_code, status_message, attributes, "          \
    "dropped_attributes_count, events, dropped_events_count, links, dropped_links_count, "         \
    "resource_id"
#define NSPAN_COLS 19

/* Rows go in with multi-row INSERTs of 32, 4 or 1 rows (three statements
 * for the cache, at most 576 parameters: under SQLite's oldest limit,
 * 999): a statement's fixed cost (its start and halt, AUTOINCREMENT's read
 * and write of sqlite_sequence) is paid once per chunk, not per span. Rows
 * are inserted in their order, so ids keep the order of the batch. */
#define INSERT_HEAD                                                                                \
    "INSERT INTO spans (trace_id, span_id, parent_span_id, trace_state, flags, name, kind, "       \
    "start_time_unix_nano, end_time_unix_nano, status_code, status_message, attributes, "          \
    "dropped_attributes_count, events, dropped_events_count, links, dropped_links_count, "         \
    "resource_id) VALUES "
#define INSERT_PARAMS 18
#define VALUES_1      "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
#define VALUES_2      VALUES_1 ", " VALUES_1
#define VALUES_4      VALUES_2 ", " VALUES_2
#define VALUES_8      VALUES_4 ", " VALUES_4
#define VALUES_16     VALUES_8 ", " VALUES_8
#define VALUES_32     VALUES_16 ", " VALUES_16

static const struct {
    size_t rows;
    const char *sql;
} insert_chunks[] = {
    {32, INSERT_HEAD VALUES_32},
    {4, INSERT_HEAD VALUES_4},
    {1, INSERT_HEAD VALUES_1},
};

struct aos_store_chunk_s {
    struct aos_store_chunk_s *next;
    size_t used, cap;
    char data[];
};

/* ---- resources ----------------------------------------------------------- */

int aos_store_span_resource_add(aos_store_t *st, const char *attributes, int64_t *id,
                                aos_err_t *err)
{
    char now[32];
    aos_isotime_now(now);
    aos__sql_val_t p[] = {aos__sql_text(attributes), aos__sql_text(now)};
    uv_mutex_lock(&st->db_lock); /* the insert and its id, together */
    int rc = aos__store_exec(
        st, "INSERT INTO span_resources (attributes, created_at) VALUES (?, ?)", p, 2, NULL, err);
    if (rc == 0)
        *id = aos__store_last_insert_id(st);
    uv_mutex_unlock(&st->db_lock);
    return rc < 0 ? aos__store_fail(err, rc, "unable to add a span resource") : 0;
}

static int read_text(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    char **out = arg;
    if (n < 1 || c[0].type != AOS__SQL_TEXT)
        return aos_err_set(err, AOS_ESTORE, "unreadable span resource");
    free(*out);
    if (!(*out = malloc(c[0].len + 1)))
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    memcpy(*out, c[0].p, c[0].len);
    (*out)[c[0].len] = '\0';
    return 0;
}

int aos_store_span_resource_get(aos_store_t *st, int64_t id, char **attributes, aos_err_t *err)
{
    *attributes = NULL;
    aos__sql_val_t p = aos__sql_int(id);
    int rc = aos__store_query(st, "SELECT attributes FROM span_resources WHERE id = ?", &p, 1,
                              read_text, attributes, err);
    if (rc == 0 && !*attributes)
        rc = aos_err_set(err, AOS_ENOTFOUND, "no span resource %lld", (long long)id);
    if (rc < 0) {
        free(*attributes);
        *attributes = NULL;
        return aos__store_fail(err, rc, "unable to read a span resource");
    }
    return 0;
}

/* ---- insert -------------------------------------------------------------- */

struct insert_arg {
    const aos_store_span_t *rows;
    size_t n;
};

static aos__sql_val_t opt_int(int64_t v)
{
    return v ? aos__sql_int(v) : aos__sql_null();
}

/* The parameters of r, INSERT_PARAMS of them, into p. */
static void span_params(const aos_store_span_t *r, aos__sql_val_t *p)
{
    p[0] = aos__sql_text(r->trace_id);
    p[1] = aos__sql_text(r->span_id);
    p[2] = aos__sql_text(r->parent_span_id);
    p[3] = aos__sql_text(r->trace_state);
    p[4] = aos__sql_int(r->flags);
    p[5] = aos__sql_text(r->name);
    p[6] = aos__sql_int(r->kind);
    p[7] = aos__sql_int(r->start_ns);
    p[8] = aos__sql_int(r->end_ns);
    p[9] = aos__sql_int(r->status_code);
    p[10] = aos__sql_text(r->status_message);
    p[11] = aos__sql_text(r->attributes);
    p[12] = aos__sql_int(r->dropped_attributes);
    p[13] = aos__sql_text(r->events);
    p[14] = aos__sql_int(r->dropped_events);
    p[15] = aos__sql_text(r->links);
    p[16] = aos__sql_int(r->dropped_links);
    p[17] = opt_int(r->resource_id);
}

static int insert_rows(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct insert_arg *a = arg;
    aos__sql_val_t p[32 * INSERT_PARAMS];
    size_t i = 0;
    for (size_t c = 0; c < sizeof(insert_chunks) / sizeof(insert_chunks[0]); c++) {
        size_t k = insert_chunks[c].rows;
        for (; a->n - i >= k; i += k) {
            for (size_t j = 0; j < k; j++)
                span_params(&a->rows[i + j], &p[j * INSERT_PARAMS]);
            /* aos_store_tx holds db_lock; the backend keeps the statement
             * prepared */
            int rc = st->be->exec(st->conn, insert_chunks[c].sql, p, (int)(k * INSERT_PARAMS), NULL,
                                  err);
            if (rc < 0)
                return aos__store_fail(err, rc, "spans %zu to %zu", i, i + k - 1);
        }
    }
    return 0;
}

int aos_store_spans_insert(aos_store_t *st, const aos_store_span_t *rows, size_t n, aos_err_t *err)
{
    if (n == 0)
        return 0;
    struct insert_arg a = {rows, n};
    int rc = aos_store_tx(st, insert_rows, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to insert %zu spans", n);
    return 0;
}

/* ---- read ---------------------------------------------------------------- */

struct page_arg {
    aos_store_span_page_t *page;
    size_t cap;
};

/* A NUL-terminated copy of v's text in the page's chunks; NULL for SQL NULL. */
static int copy_text(aos_store_span_page_t *pg, const aos__sql_val_t *v, const char **out,
                     aos_err_t *err)
{
    *out = NULL;
    if (v->type == AOS__SQL_NULL)
        return 0;
    if (v->type != AOS__SQL_TEXT)
        return aos_err_set(err, AOS_ESTORE, "unreadable span column");
    struct aos_store_chunk_s *c = pg->chunks;
    if (!c || c->cap - c->used < v->len + 1) {
        size_t cap = v->len + 1 > CHUNK_SIZE ? v->len + 1 : CHUNK_SIZE;
        c = malloc(sizeof(*c) + cap);
        if (!c)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        c->used = 0;
        c->cap = cap;
        c->next = pg->chunks;
        pg->chunks = c;
    }
    char *s = c->data + c->used;
    memcpy(s, v->p, v->len);
    s[v->len] = '\0';
    c->used += v->len + 1;
    *out = s;
    return 0;
}

static int64_t int_or(const aos__sql_val_t *v, int64_t dflt)
{
    return v->type == AOS__SQL_INT ? v->i : dflt;
}

static int page_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    struct page_arg *a = arg;
    aos_store_span_page_t *pg = a->page;
    if (n != NSPAN_COLS || c[0].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable span row");
    if (pg->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        aos_store_span_t *rows = realloc(pg->rows, cap * sizeof(*rows));
        if (!rows)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        pg->rows = rows;
        a->cap = cap;
    }
    aos_store_span_t *r = &pg->rows[pg->n];
    memset(r, 0, sizeof(*r));
    r->id = c[0].i;
    const struct {
        int col;
        const char **to;
    } texts[] = {{1, &r->trace_id},    {2, &r->span_id}, {3, &r->parent_span_id},
                 {4, &r->trace_state}, {6, &r->name},    {11, &r->status_message},
                 {12, &r->attributes}, {14, &r->events}, {16, &r->links}};
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        int rc = copy_text(pg, &c[texts[i].col], texts[i].to, err);
        if (rc < 0)
            return rc;
    }
    r->flags = (uint32_t)int_or(&c[5], 0);
    r->kind = (int)int_or(&c[7], 0);
    r->start_ns = int_or(&c[8], 0);
    r->end_ns = int_or(&c[9], 0);
    r->status_code = (int)int_or(&c[10], 0);
    r->dropped_attributes = (uint32_t)int_or(&c[13], 0);
    r->dropped_events = (uint32_t)int_or(&c[15], 0);
    r->dropped_links = (uint32_t)int_or(&c[17], 0);
    r->resource_id = int_or(&c[18], 0);
    if (!r->trace_id || !r->span_id || !r->name)
        return aos_err_set(err, AOS_ESTORE, "span row %lld lacks an id or a name",
                           (long long)r->id);
    pg->n++;
    return 0;
}

void aos_store_span_page_release(aos_store_span_page_t *pg)
{
    while (pg->chunks) {
        struct aos_store_chunk_s *next = pg->chunks->next;
        free(pg->chunks);
        pg->chunks = next;
    }
    free(pg->rows);
    pg->rows = NULL;
    pg->n = 0;
}

int aos_store_spans_trace(aos_store_t *st, const char *trace_id, int64_t after_start_ns,
                          int64_t after_id, int limit, aos_store_span_page_t *page, aos_err_t *err)
{
    memset(page, 0, sizeof(*page));
    if (!trace_id || limit < 1 || limit > PAGE_MAX)
        return aos_err_set(err, AOS_EINVAL, "unable to read spans: bad arguments");
    struct page_arg a = {page, 0};
    aos__sql_val_t p[] = {aos__sql_text(trace_id), aos__sql_int(after_start_ns),
                          aos__sql_int(after_start_ns), aos__sql_int(after_id),
                          aos__sql_int(limit)};
    int rc = aos__store_query(st,
                              "SELECT " SPAN_COLS " FROM spans WHERE trace_id = ? AND "
                              "(start_time_unix_nano > ? OR (start_time_unix_nano = ? AND id > ?)) "
                              "ORDER BY start_time_unix_nano, id LIMIT ?",
                              p, 5, page_row, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read the spans of a trace");
    return 0;
}

static int read_int(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    (void)err;
    int64_t *out = arg;
    *out = (n > 0 && c[0].type == AOS__SQL_INT) ? c[0].i : 0;
    return 0;
}

int aos_store_spans_count(aos_store_t *st, const char *trace_id, int64_t *n, aos_err_t *err)
{
    *n = 0;
    aos__sql_val_t p = aos__sql_text(trace_id);
    int rc = aos__store_query(st, "SELECT COUNT(*) FROM spans WHERE trace_id = ?", &p, 1, read_int,
                              n, err);
    return rc < 0 ? aos__store_fail(err, rc, "unable to count the spans of a trace") : 0;
}

/* ---- retention ------------------------------------------------------------ */

struct retain_arg {
    int64_t end_before_ns, keep_rows, max_delete, deleted;
};

static int retain_rows(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct retain_arg *a = arg;
    int64_t budget = a->max_delete, changes = 0, lo = 0, hi = 0;
    int rc;
    if (a->keep_rows > 0) {
        /* ids only grow and retention deletes the oldest: the newest
         * keep_rows spans are those with id > MAX(id) - keep_rows */
        if ((rc = aos__store_query(st, "SELECT MIN(id) FROM spans", NULL, 0, read_int, &lo, err)) ||
            (rc = aos__store_query(st, "SELECT MAX(id) FROM spans", NULL, 0, read_int, &hi, err)))
            return rc;
        int64_t keep_from = hi - a->keep_rows + 1;
        if (lo > 0 && lo < keep_from) {
            aos__sql_val_t p = aos__sql_int(keep_from - lo > budget ? lo + budget : keep_from);
            if ((rc = aos__store_exec(st, "DELETE FROM spans WHERE id < ?", &p, 1, &changes, err)))
                return rc;
            a->deleted += changes;
            budget -= changes;
        }
    }
    if (a->end_before_ns && budget > 0) {
        /* spans are inserted as they end, so the old ones are among the
         * oldest ids: look at no more than budget of those */
        aos__sql_val_t p[] = {aos__sql_int(budget), aos__sql_int(a->end_before_ns)};
        if ((rc = aos__store_exec(st,
                                  "DELETE FROM spans WHERE id IN (SELECT id FROM spans ORDER BY id "
                                  "LIMIT ?) AND end_time_unix_nano < ?",
                                  p, 2, &changes, err)))
            return rc;
        a->deleted += changes;
    }
    if (a->deleted) {
        /* resources are added in time order, as spans are: those older than
         * the oldest span's are named by none (the newest always stays) */
        rc = aos__store_exec(st,
                             "DELETE FROM span_resources WHERE id < COALESCE("
                             "(SELECT resource_id FROM spans WHERE resource_id IS NOT NULL "
                             "ORDER BY id LIMIT 1), (SELECT MAX(id) FROM span_resources))",
                             NULL, 0, NULL, err);
        if (rc)
            return rc;
    }
    return 0;
}

int aos_store_spans_retain(aos_store_t *st, int64_t end_before_ns, int64_t keep_rows,
                           int64_t max_delete, int64_t *deleted, aos_err_t *err)
{
    struct retain_arg a = {end_before_ns, keep_rows, max_delete, 0};
    if (deleted)
        *deleted = 0;
    if (max_delete < 1 || keep_rows < 0 || end_before_ns < 0)
        return aos_err_set(err, AOS_EINVAL, "unable to apply span retention: bad limits");
    int rc = aos_store_tx(st, retain_rows, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to apply span retention");
    if (deleted)
        *deleted = a.deleted;
    return 0;
}

/* ---- windows (the Monitor: search and topology) ------------------------------ */

/* SPAN_COLS without the columns a window's readers do not look at (trace
 * state, status message, events, links): a span's events can be large */
#define WINDOW_COLS                                                                                \
    "id, trace_id, span_id, parent_span_id, NULL, flags, name, kind, "                             \
    "start_time_unix_nano, end_time_unix_nano, status_code, NULL, attributes, "                    \
    "0, NULL, 0, NULL, 0, resource_id"

int aos_store_spans_window(aos_store_t *st, int64_t from_ns, int64_t to_ns, int64_t before_start_ns,
                           int64_t before_id, int limit, aos_store_span_page_t *page,
                           aos_err_t *err)
{
    memset(page, 0, sizeof(*page));
    if (limit < 1 || limit > PAGE_MAX)
        return aos_err_set(err, AOS_EINVAL, "unable to read spans: bad arguments");
    struct page_arg a = {page, 0};
    aos__sql_val_t p[] = {aos__sql_int(from_ns),         aos__sql_int(to_ns),
                          aos__sql_int(before_start_ns), aos__sql_int(before_start_ns),
                          aos__sql_int(before_id),       aos__sql_int(limit)};
    int rc = aos__store_query(
        st,
        "SELECT " WINDOW_COLS " FROM spans WHERE start_time_unix_nano >= ? AND "
        "start_time_unix_nano <= ? AND (start_time_unix_nano < ? OR "
        "(start_time_unix_nano = ? AND id < ?)) ORDER BY start_time_unix_nano DESC, id DESC "
        "LIMIT ?",
        p, 6, page_row, &a, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to read the spans of a window");
    return 0;
}

static int read_two(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    (void)err;
    int64_t *out = arg;
    out[0] = (n > 0 && c[0].type == AOS__SQL_INT) ? c[0].i : 0;
    out[1] = (n > 1 && c[1].type == AOS__SQL_INT) ? c[1].i : 0;
    return 0;
}

int aos_store_spans_stats(aos_store_t *st, const char *trace_id, int64_t *n, int64_t *errors,
                          aos_err_t *err)
{
    int64_t v[2] = {0, 0};
    aos__sql_val_t p = aos__sql_text(trace_id);
    int rc = aos__store_query(st,
                              "SELECT COUNT(*), COALESCE(SUM(CASE WHEN status_code = 2 THEN 1 "
                              "ELSE 0 END), 0) FROM spans WHERE trace_id = ?",
                              &p, 1, read_two, v, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to count the spans of a trace");
    *n = v[0];
    *errors = v[1];
    return 0;
}

struct res_arg {
    json_t *list;
    int max;
};

static int res_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    struct res_arg *a = arg;
    if (n < 2 || c[0].type != AOS__SQL_INT || c[1].type != AOS__SQL_TEXT)
        return aos_err_set(err, AOS_ESTORE, "unreadable span resource");
    if ((int)json_array_size(a->list) >= a->max)
        return 0;
    json_t *attrs = json_loadb(c[1].p, c[1].len, 0, NULL);
    json_array_append_new(a->list, json_pack("[I, o]", (json_int_t)c[0].i,
                                             json_is_object(attrs) ? attrs : json_object()));
    if (attrs && !json_is_object(attrs))
        json_decref(attrs);
    return 0;
}

int aos_store_span_resources(aos_store_t *st, int max, json_t **out, aos_err_t *err)
{
    struct res_arg a = {json_array(), max};
    *out = NULL;
    if (!a.list)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    aos__sql_val_t p = aos__sql_int(max);
    int rc =
        aos__store_query(st, "SELECT id, attributes FROM span_resources ORDER BY id DESC LIMIT ?",
                         &p, 1, res_row, &a, err);
    if (rc < 0) {
        json_decref(a.list);
        return aos__store_fail(err, rc, "unable to read the span resources");
    }
    *out = a.list;
    return 0;
}
