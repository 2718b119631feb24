/* internal.h - shared inside the logs module, and with its unit tests.
 *
 * entry.c    pure functions: timestamps, levels, batch validation (with
 *            redaction), query arguments -> store filter, cursors, and the
 *            live matcher that decides which subscriber gets an entry
 * scan.c     the same validation straight from a request body, without a
 *            JSON tree (the fast path of POST /api/logs)
 * logs.c     the service: ingest, query and subscribe operations, REST and
 *            SSE routes, aosd's own log capture, retention
 * mcp.c      the built-in MCP server "logs" and the REST forms of its tools */
#ifndef AOS_LOGS_INTERNAL_H
#define AOS_LOGS_INTERNAL_H

#include "logs/logs.h"

#include <jansson.h>
#include <stdint.h>

#define AOS__LOGS_MAX_BATCH   10000 /* entries in one publish */
#define AOS__LOGS_MAX_MESSAGE 65536 /* bytes of one message */
#define AOS__LOGS_MAX_ATTRS   32768 /* bytes of one entry's attributes, as JSON */
#define AOS__LOGS_MAX_NAME    256   /* topic, source */
#define AOS__LOGS_MAX_ID      128   /* trace_id, span_id */
#define AOS__LOGS_PAGE        100   /* default limit of a query */
#define AOS__LOGS_BODY_MAX    (16u << 20)
#define AOS__LOGS_MS_MAX      253402300799999LL /* 9999-12-31T23:59:59.999Z */

/* Why input was refused: the entry index (-1: not about one entry) and the
 * argument or field, for the error body. */
typedef struct {
    long index;
    char field[32];
} aos__logs_fault_t;

/* A validated batch. rows (contiguous, for aos_store_logs_insert) borrow
 * their strings from src and aux (a batch from a tree), or from arena (a
 * batch scanned from text). */
typedef struct {
    char ts[32];      /* the normalized timestamp */
    json_t *attrs;    /* tree: borrowed from src, the redacted attributes, or NULL */
    char *attrs_text; /* tree: owned, compact JSON of attrs */
} aos__logs_aux_t;

typedef struct {
    aos_store_log_t *rows;
    aos__logs_aux_t *aux;
    size_t n;
    json_t *src; /* tree: a reference to the entries array */
    char *arena; /* scan: owned, the rows' strings */
    char created_at[32];
} aos__logs_batch_t;

/* "trace".."fatal" (any case; "warning" = warn) -> 0..5; -1 otherwise. */
int aos__logs_level_parse(const char *s);
/* An RFC 3339 timestamp with a zone ("2025-01-31T12:00:00.5+02:00") or an
 * integer of milliseconds since 1970 -> "2025-01-31T10:00:00.500Z".
 * 0, or AOS_EINVAL with err set. */
int aos__logs_ts_parse(const json_t *v, char out[32], aos_err_t *err);

/* Validates entries (an array, modified in place: redacted strings are
 * replaced), redacting with fn(data) (fn NULL: no redaction). On failure
 * returns AOS_EINVAL (or the redactor's code) with err ("entries[3].level:
 * ...") and fault set, and b empty. entries is referenced by b. */
int aos__logs_batch_parse(aos__logs_batch_t *b, json_t *entries, aos_logs_redact_fn fn, void *data,
                          aos__logs_fault_t *fault, aos_err_t *err);
void aos__logs_batch_release(aos__logs_batch_t *b);
/* 1 if source is one aosd writes itself ("aosd", "upstream:<server>"). */
int aos__logs_source_reserved(const char *source);
/* AOS_EFORBIDDEN, with err and fault naming the entry, if an entry of b
 * claims a reserved source: only aosd's own captured lines may. Else 0. */
int aos__logs_batch_check_sources(const aos__logs_batch_t *b, aos__logs_fault_t *fault,
                                  aos_err_t *err);
/* The same from the raw text of a publish body (an object with "entries"
 * or a bare array): 0 with b filled, exactly as aos_http_parse_json and
 * aos__logs_batch_parse would fill it; 1 (b empty) for anything else -
 * bad input, or a case the scan leaves to the tree path, which then says
 * what is wrong. Entries without ts get the time of the call. */
int aos__logs_batch_scan(aos__logs_batch_t *b, const char *body, size_t len, aos_logs_redact_fn fn,
                         void *data);
/* Why a topic or source (name) or a trace or span id (id) of n bytes is
 * refused, or NULL. */
const char *aos__logs_check_name(const char *s, size_t n, size_t max);
const char *aos__logs_check_id(const char *s, size_t n, size_t max);
/* Entry i as the API shows it (new object), once its id is known. */
json_t *aos__logs_entry_json(const aos__logs_batch_t *b, size_t i);

/* Cursors are opaque to clients: base64url of "n<id>" (next page of a
 * newest-first listing: ids below) or "o<id>" (oldest-first: ids above). */
int aos__logs_cursor_encode(int64_t id, int ascending, char out[48]);
int aos__logs_cursor_decode(const char *s, int64_t *id, int *ascending);

/* Which arguments an operation takes. */
typedef enum {
    AOS__LOGS_QUERY,     /* GET /api/logs, logs.query */
    AOS__LOGS_STREAM,    /* GET /api/logs/stream */
    AOS__LOGS_SUBSCRIBE, /* logs.subscribe */
} aos__logs_kind_t;

/* One full-text word, for the live matcher: its tokens (lowercase ASCII,
 * non-ASCII bytes as they are) in a row. */
typedef struct {
    char *text; /* owned: tokens separated by single spaces */
    int prefix; /* the last token may be a prefix */
} aos__logs_word_t;

typedef struct {
    aos_store_logs_filter_t f; /* strings point into src, after, before */
    char after[32], before[32];
    const char *group_by; /* static: "topic", "level", "source" or NULL */
    int has_cursor;
    int has_after_id;
    json_t *src; /* a reference to the arguments */
    aos__logs_word_t *words;
    int nwords;
} aos__logs_query_t;

/* Arguments (a JSON object whose values may also be strings of digits
 * where integers are expected, as query strings give them) -> q. Names:
 * level, traceId (or trace_id), topic, source, after, before, q, limit; and
 * for QUERY cursor, order (asc|desc), group_by; for SUBSCRIBE cursor; for
 * STREAM after_id. Unknown names are refused. */
int aos__logs_query_parse(aos__logs_query_t *q, json_t *args, aos__logs_kind_t kind,
                          aos__logs_fault_t *fault, aos_err_t *err);
void aos__logs_query_release(aos__logs_query_t *q);
/* 1 if the stored entry r matches q's filters (ids and limit aside),
 * full-text words included, with the rules of the FTS5 'ascii' tokenizer. */
int aos__logs_query_match(const aos__logs_query_t *q, const aos_store_log_t *r);

/* ---- the service (logs.c), for mcp.c ---------------------------------- */

typedef enum { AOS__LOGS_OP_PUBLISH, AOS__LOGS_OP_QUERY, AOS__LOGS_OP_SUBSCRIBE } aos__logs_op_t;

/* The answer of an operation: result (stolen) or err, with fault (may be
 * NULL) naming the entry and field a publish failed on. */
typedef void (*aos__logs_done_fn)(void *ctx, json_t *result, const aos_err_t *err,
                                  const aos__logs_fault_t *fault);

/* Starts op with args (a reference is taken; publish may redact it in
 * place, on the thread pool: the caller must not touch args meanwhile).
 * Returns 0 and calls done later, once - a publish's bad entries are
 * reported there, with fault; or fails now, with err and fault set, without
 * calling done. via names the path for metrics. */
int aos__logs_op(aos_logs_t *l, aos__logs_op_t op, json_t *args, const char *via,
                 aos__logs_done_fn done, void *ctx, aos__logs_fault_t *fault, aos_err_t *err);
/* A publish from a raw JSON body (copied): an object with "entries" or a
 * bare array of entries, parsed and validated on the thread pool. */
int aos__logs_publish_body(aos_logs_t *l, const char *body, size_t len, const char *via,
                           aos__logs_done_fn done, void *ctx, aos_err_t *err);
/* Answers req with the REST error for err and fault. */
int aos__logs_respond_error(aos_http_req_t *req, const aos_err_t *err,
                            const aos__logs_fault_t *fault);

/* Runs op with the JSON body of req as its arguments (a publish may also
 * be a bare array of entries) and answers with status and the result. */
int aos__logs_http_op(aos_http_req_t *req, aos_logs_t *l, aos__logs_op_t op, unsigned status,
                      const char *via);

/* The trailing indexes (logs.c): entries per fill between inserts, the
 * unindexed entries after which a fill (of ~2 ms) goes in between inserts
 * without waiting for the store to idle, and those after which that fill
 * takes the whole tail. */
#define AOS__LOGS_INDEX_CHUNK  1000
#define AOS__LOGS_INDEX_BEHIND 4000
#define AOS__LOGS_INDEX_FAR    8000

/* What the group commit and the trailing indexes are doing (tests). */
typedef struct {
    int parsing;           /* batches on the thread pool */
    size_t queued;         /* parsed batches waiting for a group */
    int groups;            /* groups submitted to the store, not done */
    int64_t unindexed;     /* entries the indexes trail by, as last reported */
    int indexing;          /* a fill job is in flight */
    uint64_t fills_idle;   /* fills submitted with no insert under way */
    uint64_t fills_behind; /* ... and while inserts were, the tail too long */
} aos__logs_ingest_t;
void aos__logs_ingest_state(const aos_logs_t *l, aos__logs_ingest_t *out);

/* mcp.c */
void aos__logs_builtin_init(aos_builtin_t *b, aos_logs_t *l);
extern const aos_http_route_t aos__logs_mcp_routes[];
extern const size_t aos__logs_mcp_nroutes;

#endif
