/* audit.c - the audit log (store.h): appending rows to a hash chain,
 * listing them with filters, and verifying the chain in steps.
 *
 * Each row's hash is BLAKE2b-256 (libsodium crypto_generichash) over
 *   "aos.audit.v1\n" | prev_hash (32 bytes) | id (8 bytes, big-endian) |
 *   actor | action | resource | diff | created_at
 * where each text field is a tag byte (0: SQL NULL, 1: text) and, for
 * text, its length (8 bytes, big-endian) and its bytes: no two different
 * rows encode alike (a NUL or a separator inside a field cannot shift
 * another field's start, and NULL differs from ""). prev_hash is the
 * previous row's hash, 32 zero bytes for the first row; the table keeps
 * both as lower-case hex.
 *
 * Appending (aos_store_audit_append) runs in the caller's transaction
 * (or one of its own): it first advances the one row of audit_head, which
 * holds the write lock on that row until the transaction ends, and takes
 * the previous id and hash from it (an UPDATE, then a SELECT of the row it
 * wrote), then inserts the row with the next id. (On SQLite, whose
 * transactions hold the database's write lock from their start, it reads
 * the head, inserts, and advances the head once, id and hash together.) Two appenders -
 * two aosd on one PostgreSQL database - queue on that lock, so the chain
 * never forks and ids follow the chain without gaps (the id is ours, not a
 * sequence's, and a rolled back append rolls back the head too). On
 * PostgreSQL this needs READ COMMITTED (the default), where the waiting
 * UPDATE sees the committed head.
 *
 * Rows from before migration 0015 are sealed once, when the store opens
 * (aos__store_audit_seal): hashed in id order, chained from the zero hash.
 *
 * Verification reads the rows in id order, a chunk at a time, and stops at
 * the first row whose stored prev_hash is not the hash of the row before
 * it, whose id does not follow it, or whose fields do not give its stored
 * hash; at the end it compares the last row with audit_head (rows cut off
 * at the end). After a retention prune (aos_store_audit_prune) the chain
 * starts at the anchor - the id and hash of the last row deleted, kept in
 * audit_head - instead of the zero hash. A chain is only as good as a copy of its head kept
 * elsewhere: whoever can write the database can also rewrite every hash
 * after the row they changed (docs/SECURITY.md). */
#include "store/internal.h"
#include "buf/buf.h"
#include "isotime/isotime.h"

#include "redact/redact.h"

#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAG      "aos.audit.v1\n"
#define ZERO_HEX "0000000000000000000000000000000000000000000000000000000000000000"

/* Hashing ------------------------------------------------------------------ */

static void put_be64(unsigned char out[8], uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        out[i] = (unsigned char)(v & 0xff);
}

static void put_field(crypto_generichash_state *h, const char *p, size_t len)
{
    unsigned char hd[9];
    if (!p) {
        hd[0] = 0;
        crypto_generichash_update(h, hd, 1);
        return;
    }
    hd[0] = 1;
    put_be64(hd + 1, (uint64_t)len);
    crypto_generichash_update(h, hd, sizeof(hd));
    crypto_generichash_update(h, (const unsigned char *)p, len);
}

void aos_store_audit_hash(const unsigned char prev[AOS_STORE_AUDIT_HASH_LEN],
                          const aos_store_audit_row_t *r,
                          unsigned char out[AOS_STORE_AUDIT_HASH_LEN])
{
    crypto_generichash_state h;
    unsigned char id[8];
    crypto_generichash_init(&h, NULL, 0, AOS_STORE_AUDIT_HASH_LEN);
    crypto_generichash_update(&h, (const unsigned char *)TAG, sizeof(TAG) - 1);
    crypto_generichash_update(&h, prev, AOS_STORE_AUDIT_HASH_LEN);
    put_be64(id, (uint64_t)r->id);
    crypto_generichash_update(&h, id, sizeof(id));
    put_field(&h, r->actor, r->actor_len);
    put_field(&h, r->action, r->action_len);
    put_field(&h, r->resource, r->resource_len);
    put_field(&h, r->diff, r->diff_len);
    put_field(&h, r->created_at, r->created_at_len);
    crypto_generichash_final(&h, out, AOS_STORE_AUDIT_HASH_LEN);
}

static const unsigned char hexval[256] = {
    /* 0xff: not a digit */
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0,    1,    2,    3,    4,    5,    6,    7,    8,    9,    0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 10,   11,   12,   13,   14,   15,   0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
};

/* 64 lower-case hex digits -> 32 bytes; -1 if s is anything else. */
static int from_hex(const char *s, size_t len, unsigned char out[AOS_STORE_AUDIT_HASH_LEN])
{
    if (len != 2 * AOS_STORE_AUDIT_HASH_LEN)
        return -1;
    const unsigned char *u = (const unsigned char *)s;
    int bad = 0;
    for (size_t i = 0; i < AOS_STORE_AUDIT_HASH_LEN; i++) {
        unsigned hi = hexval[u[2 * i]], lo = hexval[u[2 * i + 1]];
        bad |= (int)(hi | lo);
        out[i] = (unsigned char)((hi & 0xf) << 4 | (lo & 0xf));
    }
    return bad & 0xf0 ? -1 : 0;
}

static void to_hex(const unsigned char in[AOS_STORE_AUDIT_HASH_LEN], char out[65])
{
    sodium_bin2hex(out, 65, in, AOS_STORE_AUDIT_HASH_LEN);
}

/* Appending ---------------------------------------------------------------- */

typedef struct {
    int64_t last_id;
    char last_hash[65]; /* "" when NULL */
    int rows;
} head_t;

static int read_head(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    head_t *h = arg;
    if (n != 2 || c[0].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable audit head");
    h->last_id = c[0].i;
    h->last_hash[0] = '\0';
    if (c[1].type == AOS__SQL_TEXT && c[1].len == 64) {
        memcpy(h->last_hash, c[1].p, 64);
        h->last_hash[64] = '\0';
    } else if (c[1].type != AOS__SQL_NULL) {
        return aos_err_set(err, AOS_ESTORE, "unreadable audit head hash");
    }
    h->rows++;
    return 0;
}

struct append {
    const char *actor, *action, *resource, *diff;
};

static int append_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct append *a = arg;
    head_t h = {0};
    int rc;
    /* SQLite: the transaction holds the database's write lock from its
     * BEGIN IMMEDIATE, so the head is read, and advanced once, with the
     * new hash, after the insert. Elsewhere the UPDATE takes the row's
     * lock first and the SELECT reads what it wrote (a RETURNING would
     * say the same, through a temporary table SQLite makes each time). */
    int locked = st->be == &aos__store_sqlite;
    if (locked) {
        rc = aos__store_query(st, "SELECT last_id, last_hash FROM audit_head WHERE id = 1", NULL, 0,
                              read_head, &h, err);
        h.last_id++;
    } else {
        int64_t changed = 0;
        rc = aos__store_exec(st, "UPDATE audit_head SET last_id = last_id + 1 WHERE id = 1", NULL,
                             0, &changed, err);
        if (rc == 0 && changed == 1)
            rc = aos__store_query(st, "SELECT last_id, last_hash FROM audit_head WHERE id = 1",
                                  NULL, 0, read_head, &h, err);
    }
    if (rc < 0)
        return rc;
    if (h.rows != 1)
        return aos_err_set(err, AOS_ESTORE, "the audit head row is missing");
    unsigned char prev[AOS_STORE_AUDIT_HASH_LEN] = {0}, hash[AOS_STORE_AUDIT_HASH_LEN];
    if (h.last_hash[0]) {
        if (from_hex(h.last_hash, 64, prev) < 0)
            return aos_err_set(err, AOS_ESTORE, "unreadable audit head hash");
    } else if (h.last_id != 1) {
        return aos_err_set(err, AOS_ESTORE, "the audit log is not sealed");
    }
    char now[32];
    aos_isotime_now(now);
    aos_store_audit_row_t r = {h.last_id,
                               a->actor,
                               strlen(a->actor),
                               a->action,
                               strlen(a->action),
                               a->resource,
                               a->resource ? strlen(a->resource) : 0,
                               a->diff,
                               a->diff ? strlen(a->diff) : 0,
                               now,
                               strlen(now)};
    aos_store_audit_hash(prev, &r, hash);
    char prev_hex[65], hash_hex[65];
    to_hex(prev, prev_hex);
    to_hex(hash, hash_hex);
    aos__sql_val_t p[] = {aos__sql_int(h.last_id),  aos__sql_text(a->actor),
                          aos__sql_text(a->action), aos__sql_text(a->resource),
                          aos__sql_text(a->diff),   aos__sql_text(now),
                          aos__sql_text(prev_hex),  aos__sql_text(hash_hex)};
    rc = aos__store_exec(st,
                         "INSERT INTO audit_logs (id, actor, action, resource, diff, created_at, "
                         "prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                         p, NCOLS(p), NULL, err);
    if (rc < 0)
        return rc;
    if (locked) {
        aos__sql_val_t q[] = {aos__sql_int(h.last_id), aos__sql_text(hash_hex)};
        return aos__store_exec(st, "UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1",
                               q, NCOLS(q), NULL, err);
    }
    aos__sql_val_t q[] = {aos__sql_text(hash_hex)};
    return aos__store_exec(st, "UPDATE audit_head SET last_hash = ? WHERE id = 1", q, NCOLS(q),
                           NULL, err);
}

int aos_store_audit_append(aos_store_t *st, const char *actor, const char *action,
                           const char *resource, const json_t *diff, aos_err_t *err)
{
    if (!actor || !actor[0] || !action || !action[0])
        return aos_err_set(err, AOS_EINVAL,
                           "unable to append audit: actor and action are required");
    char *text = NULL;
    json_t *red = diff ? json_deep_copy(diff) : NULL; /* redacted (redact.h) */
    if (diff && (!red || aos_redact_json(aos_redact_global(), red) < 0 ||
                 !(text = aos_buf_json_text(red, NULL)))) { /* jansson's text, faster */
        json_decref(red);
        return aos_err_set(err, AOS_ENOMEM, "unable to append audit: out of memory");
    }
    json_decref(red);
    int rc;
    if (st->audit_chain) {
        struct append a = {actor, action, resource, text};
        rc = aos__store_in_tx(st, append_tx, &a, err);
    } else { /* a store of tests, opened without migration 0015 */
        char now[32];
        aos_isotime_now(now);
        aos__sql_val_t p[] = {aos__sql_text(actor), aos__sql_text(action), aos__sql_text(resource),
                              aos__sql_text(text), aos__sql_text(now)};
        rc = aos__store_exec(st,
                             "INSERT INTO audit_logs (actor, action, resource, diff, created_at) "
                             "VALUES (?, ?, ?, ?, ?)",
                             p, NCOLS(p), NULL, err);
    }
    free(text);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to append audit '%.100s'", action);
    return 0;
}

/* Sealing rows from before 0015 --------------------------------------------- */

struct seal {
    aos_store_t *st;
    unsigned char prev[AOS_STORE_AUDIT_HASH_LEN];
    char prev_hex[65];
    int64_t last_id;
    int64_t n;
};

static int seal_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    struct seal *s = arg;
    if (n != 6 || c[0].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable audit row");
    aos_store_audit_row_t r = {.id = c[0].i};
    const char **f[] = {&r.actor, &r.action, &r.resource, &r.diff, &r.created_at};
    size_t *l[] = {&r.actor_len, &r.action_len, &r.resource_len, &r.diff_len, &r.created_at_len};
    for (int i = 0; i < 5; i++) {
        *f[i] = c[i + 1].type == AOS__SQL_TEXT ? c[i + 1].p : NULL;
        *l[i] = c[i + 1].len;
    }
    unsigned char hash[AOS_STORE_AUDIT_HASH_LEN];
    char hex[65];
    aos_store_audit_hash(s->prev, &r, hash);
    to_hex(hash, hex);
    aos__sql_val_t p[] = {aos__sql_text(s->prev_hex), aos__sql_text(hex), aos__sql_int(r.id)};
    int rc = aos__store_exec(s->st, "UPDATE audit_logs SET prev_hash = ?, hash = ? WHERE id = ?", p,
                             NCOLS(p), NULL, err);
    if (rc < 0)
        return rc;
    memcpy(s->prev, hash, sizeof(hash));
    memcpy(s->prev_hex, hex, sizeof(hex));
    s->last_id = r.id;
    s->n++;
    return 0;
}

static int seal_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct seal *s = arg;
    head_t h = {0};
    /* the write lock first, as an append takes it */
    int rc = aos__store_query(st,
                              "UPDATE audit_head SET last_id = last_id WHERE id = 1 "
                              "RETURNING last_id, last_hash",
                              NULL, 0, read_head, &h, err);
    if (rc < 0)
        return rc;
    if (h.rows != 1)
        return aos_err_set(err, AOS_ESTORE, "the audit head row is missing");
    if (h.last_hash[0] || h.last_id == 0)
        return 0; /* sealed already, or nothing to seal */
    memcpy(s->prev_hex, ZERO_HEX, 65);
    /* the rows of 0001..0014 only: ids up to the head's; none has a hash */
    aos__sql_val_t p[] = {aos__sql_int(h.last_id)};
    rc = aos__store_query(st,
                          "SELECT id, actor, action, resource, diff, created_at FROM audit_logs "
                          "WHERE id <= ? ORDER BY id",
                          p, NCOLS(p), seal_row, s, err);
    if (rc < 0)
        return rc;
    /* head.last_id counts ids, and the last row may have been cut off
     * before the upgrade: the head is the last row there is */
    aos__sql_val_t q[] = {aos__sql_int(s->n ? s->last_id : 0),
                          s->n ? aos__sql_text(s->prev_hex) : aos__sql_null()};
    return aos__store_exec(st, "UPDATE audit_head SET last_id = ?, last_hash = ? WHERE id = 1", q,
                           NCOLS(q), NULL, err);
}

int aos__store_audit_seal(aos_store_t *st, int64_t *sealed, aos_err_t *err)
{
    struct seal s = {.st = st};
    *sealed = 0;
    int rc = aos_store_tx(st, seal_tx, &s, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to seal the audit log");
    *sealed = s.n;
    return 0;
}

/* Listing ------------------------------------------------------------------ */

static const col_t audit_cols[] = {
    {"id", COL_INT},    {"actor", COL_TEXT},      {"action", COL_TEXT},    {"resource", COL_TEXT},
    {"diff", COL_JSON}, {"created_at", COL_TEXT}, {"prev_hash", COL_TEXT}, {"hash", COL_TEXT},
};

int aos_store_audit_query(aos_store_t *st, const aos_store_audit_filter_t *f, json_t **out,
                          aos_err_t *err)
{
    *out = NULL;
    if (f->limit < 1 || f->limit > AOS_STORE_LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "unable to list audit: limit must be 1..%d",
                           AOS_STORE_LIST_MAX);
    char sql[600];
    aos__sql_val_t p[10];
    int n = 0;
    size_t len = (size_t)snprintf(sql, sizeof(sql),
                                  "SELECT id, actor, action, resource, diff, created_at%s FROM "
                                  "audit_logs WHERE id < ?",
                                  st->audit_chain ? ", prev_hash, hash" : "");
    p[n++] = aos__sql_int(f->before_id > 0 ? f->before_id : INT64_MAX);
#define ADD(cond, frag, ...)                                                                       \
    do {                                                                                           \
        if (cond) {                                                                                \
            len += (size_t)snprintf(sql + len, sizeof(sql) - len, "%s", frag);                     \
            aos__sql_val_t vs[] = {__VA_ARGS__};                                                   \
            for (size_t k = 0; k < sizeof(vs) / sizeof(vs[0]); k++)                                \
                p[n++] = vs[k];                                                                    \
        }                                                                                          \
    } while (0)
    ADD(f->actor, " AND actor = ?", aos__sql_text(f->actor));
    ADD(f->action, " AND action = ?", aos__sql_text(f->action));
    ADD(f->action_prefix, " AND substr(action, 1, ?) = ?",
        aos__sql_int((int64_t)(f->action_prefix ? strlen(f->action_prefix) : 0)),
        aos__sql_text(f->action_prefix));
    ADD(f->resource_prefix, " AND substr(resource, 1, ?) = ?",
        aos__sql_int((int64_t)(f->resource_prefix ? strlen(f->resource_prefix) : 0)),
        aos__sql_text(f->resource_prefix));
    ADD(f->from, " AND created_at >= ?", aos__sql_text(f->from));
    ADD(f->to, " AND created_at < ?", aos__sql_text(f->to));
#undef ADD
    snprintf(sql + len, sizeof(sql) - len, " ORDER BY id DESC LIMIT ?");
    p[n++] = aos__sql_int(f->limit);
    int rc = aos__store_select(st, sql, p, n, audit_cols, st->audit_chain ? 8 : 6, out, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to list audit");
    return 0;
}

int aos_store_audit_list(aos_store_t *st, int64_t before_id, int limit, json_t **out,
                         aos_err_t *err)
{
    aos_store_audit_filter_t f = {.before_id = before_id, .limit = limit};
    return aos_store_audit_query(st, &f, out, err);
}

/* Verifying ---------------------------------------------------------------- */

void aos_store_audit_verify_init(aos_store_audit_verify_t *v, int64_t from_id, int64_t to_id)
{
    memset(v, 0, sizeof(*v));
    v->from_id = from_id > 0 ? from_id : 0;
    v->to_id = to_id > 0 ? to_id : 0;
}

static int broken(aos_store_audit_verify_t *v, int64_t id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int broken(aos_store_audit_verify_t *v, int64_t id, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->reason, sizeof(v->reason), fmt, ap);
    va_end(ap);
    v->broken_id = id;
    v->done = 1;
    return 0; /* not an error: verify_row skips the rest of the chunk */
}

static int verify_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    aos_store_audit_verify_t *v = arg;
    if (v->done)
        return 0;
    if (n != 8 || c[0].type != AOS__SQL_INT)
        return aos_err_set(err, AOS_ESTORE, "unreadable audit row");
    int64_t id = c[0].i;
    aos_store_audit_row_t r = {.id = id};
    const char **f[] = {&r.actor, &r.action, &r.resource, &r.diff, &r.created_at};
    size_t *l[] = {&r.actor_len, &r.action_len, &r.resource_len, &r.diff_len, &r.created_at_len};
    for (int i = 0; i < 5; i++) {
        *f[i] = c[i + 1].type == AOS__SQL_TEXT ? c[i + 1].p : NULL;
        *l[i] = c[i + 1].len;
    }
    const aos__sql_val_t *ph = &c[6], *hh = &c[7];
    unsigned char prev[AOS_STORE_AUDIT_HASH_LEN], stored[AOS_STORE_AUDIT_HASH_LEN],
        hash[AOS_STORE_AUDIT_HASH_LEN];
    if (ph->type != AOS__SQL_TEXT || from_hex(ph->p, ph->len, prev) < 0)
        return broken(v, id, "row %lld: prev_hash is missing or not 64 hex digits", (long long)id);
    if (hh->type != AOS__SQL_TEXT || from_hex(hh->p, hh->len, stored) < 0)
        return broken(v, id, "row %lld: hash is missing or not 64 hex digits", (long long)id);
    if (memcmp(prev, v->prev, sizeof(prev)) != 0) {
        if (v->have_prev && id != v->last_id + 1)
            return broken(v, id,
                          "row %lld: prev_hash is not the hash of row %lld, the row before it: "
                          "rows %lld to %lld are missing",
                          (long long)id, (long long)v->last_id, (long long)v->last_id + 1,
                          (long long)id - 1);
        if (v->have_prev)
            return broken(v, id,
                          "row %lld: prev_hash is not the hash of row %lld, the row before it",
                          (long long)id, (long long)v->last_id);
        return broken(v, id,
                      "row %lld: prev_hash is not the zero hash of a first row: rows before it "
                      "are missing",
                      (long long)id);
    }
    aos_store_audit_hash(prev, &r, hash);
    if (memcmp(hash, stored, sizeof(hash)) != 0)
        return broken(v, id,
                      "row %lld: its fields do not give its hash (a field or the hash was "
                      "changed after it was written)",
                      (long long)id);
    memcpy(v->prev, stored, sizeof(stored));
    v->have_prev = 1;
    v->last_id = id;
    v->checked++;
    v->chunk_rows++;
    return 0;
}

/* The stored hash of the row before from_id (the start of a range). */
static int read_hash(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    aos_store_audit_verify_t *v = arg;
    if (n != 2 || c[0].type != AOS__SQL_INT || c[1].type != AOS__SQL_TEXT ||
        from_hex(c[1].p, c[1].len, v->prev) < 0)
        return aos_err_set(err, AOS_ESTORE, "unreadable audit row before the range");
    v->last_id = c[0].i;
    v->have_prev = 1;
    return 0;
}

typedef struct {
    int64_t id;
    char hash[65];
} anchor_t;

static int read_anchor(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    anchor_t *a = arg;
    if (n != 2 || c[0].type != AOS__SQL_INT ||
        (c[1].type != AOS__SQL_NULL && (c[1].type != AOS__SQL_TEXT || c[1].len != 64)))
        return aos_err_set(err, AOS_ESTORE, "unreadable audit anchor");
    a->id = c[0].i;
    if (c[1].type == AOS__SQL_TEXT) {
        memcpy(a->hash, c[1].p, 64);
        a->hash[64] = '\0';
    }
    return 0;
}

/* Retention ----------------------------------------------------------------- */

struct prune {
    const char *before;
    int max_rows;
    int64_t last_id; /* the last row to delete */
    char last_hash[65];
    int64_t n;
    int stop; /* a row not older than before was reached */
};

static int prune_row(const aos__sql_val_t *c, int n, void *arg, aos_err_t *err)
{
    struct prune *p = arg;
    if (p->stop)
        return 0;
    if (n != 3 || c[0].type != AOS__SQL_INT || c[1].type != AOS__SQL_TEXT ||
        c[2].type != AOS__SQL_TEXT || c[2].len != 64)
        return aos_err_set(err, AOS_ESTORE, "unreadable audit row");
    /* created_at is the store's sortable text */
    if (c[1].len != strlen(p->before) || memcmp(c[1].p, p->before, c[1].len) >= 0) {
        p->stop = 1;
        return 0;
    }
    p->last_id = c[0].i;
    memcpy(p->last_hash, c[2].p, 64);
    p->last_hash[64] = '\0';
    p->n++;
    return 0;
}

static int prune_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct prune *p = arg;
    head_t h = {0};
    /* the head's write lock first, as an append takes it */
    int rc = aos__store_query(st,
                              "UPDATE audit_head SET last_id = last_id WHERE id = 1 "
                              "RETURNING last_id, last_hash",
                              NULL, 0, read_head, &h, err);
    if (rc < 0)
        return rc;
    if (h.rows != 1)
        return aos_err_set(err, AOS_ESTORE, "the audit head row is missing");
    /* the oldest rows, in chain order, while older than before; never the
     * head itself (the newest row stays, so the chain has an end to check) */
    aos__sql_val_t q[] = {aos__sql_int(h.last_id), aos__sql_int(p->max_rows)};
    rc = aos__store_query(st,
                          "SELECT id, created_at, hash FROM audit_logs WHERE id < ? ORDER BY id "
                          "LIMIT ?",
                          q, NCOLS(q), prune_row, p, err);
    if (rc < 0 || p->n == 0)
        return rc < 0 ? rc : 0;
    aos__sql_val_t d[] = {aos__sql_int(p->last_id)};
    if ((rc = aos__store_exec(st, "DELETE FROM audit_logs WHERE id <= ?", d, NCOLS(d), NULL, err)) <
        0)
        return rc;
    aos__sql_val_t a[] = {aos__sql_int(p->last_id), aos__sql_text(p->last_hash)};
    if ((rc = aos__store_exec(st,
                              "UPDATE audit_head SET anchor_id = ?, anchor_hash = ? WHERE id = 1",
                              a, NCOLS(a), NULL, err)) < 0)
        return rc;
    /* the deletion is itself a row of the chain */
    json_t *diff =
        json_pack("{s:s, s:I, s:I, s:s}", "before", p->before, "deleted", (json_int_t)p->n,
                  "anchor_id", (json_int_t)p->last_id, "anchor_hash", p->last_hash);
    rc = diff ? aos_store_audit_append(st, "aosd", "audit.prune", "audit_logs", diff, err)
              : aos_err_set(err, AOS_ENOMEM, NULL);
    json_decref(diff);
    return rc;
}

int aos_store_audit_prune(aos_store_t *st, const char *before, int max_rows, int64_t *deleted,
                          int64_t *anchor_id, aos_err_t *err)
{
    *deleted = 0;
    if (!st->audit_chain || !st->audit_anchor)
        return aos_err_set(err, AOS_EUNAVAIL, "this store has no audit retention");
    if (!before || strlen(before) != 24 || max_rows < 1)
        return aos_err_set(err, AOS_EINVAL, "audit prune: a time as the store writes it");
    struct prune p = {.before = before, .max_rows = max_rows};
    int rc = aos_store_tx(st, prune_tx, &p, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to prune the audit log");
    *deleted = p.n;
    if (anchor_id)
        *anchor_id = p.n ? p.last_id : 0;
    return 0;
}

int aos_store_audit_verify_step(aos_store_t *st, aos_store_audit_verify_t *v, int max_rows,
                                aos_err_t *err)
{
    if (v->done)
        return 0;
    if (!st->audit_chain)
        return aos_err_set(err, AOS_EUNAVAIL, "this store has no audit chain");
    if (max_rows < 1)
        max_rows = 1;
    int rc;
    if (!v->started) {
        v->started = 1;
        v->next_id = v->from_id > 1 ? v->from_id : 1;
        if (st->audit_anchor) { /* rows deleted by retention: start at the anchor */
            anchor_t a = {0};
            rc = aos__store_query(st, "SELECT anchor_id, anchor_hash FROM audit_head WHERE id = 1",
                                  NULL, 0, read_anchor, &a, err);
            if (rc < 0)
                return aos__store_fail(err, rc, "unable to verify the audit log");
            if (a.id > 0 && v->next_id <= a.id) {
                if (from_hex(a.hash, strlen(a.hash), v->prev) < 0)
                    return aos_err_set(err, AOS_ESTORE, "unreadable audit anchor");
                v->have_prev = 1;
                v->last_id = a.id;
                v->next_id = a.id + 1;
            }
        }
        if (v->from_id > 1 && !v->have_prev) { /* trusts the row before the range */
            aos__sql_val_t p[] = {aos__sql_int(v->from_id)};
            rc = aos__store_query(st,
                                  "SELECT id, hash FROM audit_logs WHERE id < ? ORDER BY id DESC "
                                  "LIMIT 1",
                                  p, 1, read_hash, v, err);
            if (rc < 0)
                return aos__store_fail(err, rc, "unable to verify the audit log");
        }
    }
    int64_t hi = v->to_id > 0 ? v->to_id : INT64_MAX;
    aos__sql_val_t p[] = {aos__sql_int(v->next_id), aos__sql_int(hi), aos__sql_int(max_rows)};
    v->chunk_rows = 0;
    rc = aos__store_query(st,
                          "SELECT id, actor, action, resource, diff, created_at, prev_hash, hash "
                          "FROM audit_logs WHERE id >= ? AND id <= ? ORDER BY id LIMIT ?",
                          p, NCOLS(p), verify_row, v, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to verify the audit log");
    if (v->done) /* broken */
        return 0;
    v->next_id = v->last_id + 1;
    if (v->chunk_rows == max_rows && v->last_id < hi)
        return 0; /* more to read */
    /* the end of the range; the end of the log is checked against the head */
    head_t h = {0};
    rc = aos__store_query(st, "SELECT last_id, last_hash FROM audit_head WHERE id = 1", NULL, 0,
                          read_head, &h, err);
    if (rc < 0)
        return aos__store_fail(err, rc, "unable to verify the audit log");
    v->head_id = h.last_id;
    snprintf(v->head_hash, sizeof(v->head_hash), "%s", h.last_hash);
    if (v->to_id > 0 && v->to_id <= h.last_id) { /* a range that ends inside the log */
        if (v->last_id < v->to_id)
            return broken(v, v->last_id + 1, "rows %lld to %lld are missing",
                          (long long)v->last_id + 1, (long long)v->to_id);
        v->done = 1;
        return 0;
    }
    if (h.last_id > v->last_id) {
        if (v->chunk_rows > 0)
            return 0; /* rows were appended meanwhile: read them */
        return broken(v, v->last_id + 1,
                      "rows %lld to %lld are missing: the head of the chain is row %lld",
                      (long long)v->last_id + 1, (long long)h.last_id, (long long)h.last_id);
    }
    if (h.last_id < v->last_id)
        return broken(v, h.last_id + 1,
                      "row %lld is past the head of the chain (row %lld): rows were added "
                      "around aosd",
                      (long long)h.last_id + 1, (long long)h.last_id);
    if (v->last_id > 0) {
        char hex[65];
        to_hex(v->prev, hex);
        if (strcmp(hex, h.last_hash) != 0)
            return broken(v, v->last_id,
                          "row %lld: its hash is not the one the head of the chain holds",
                          (long long)v->last_id);
    }
    v->done = 1;
    return 0;
}
