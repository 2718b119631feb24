/* internal.h - shared inside the trace module, and with its unit tests.
 *
 * span.c     the spans (start, attributes, end), their queue and the
 *            batches the store's worker writes, retention, the service's
 *            life
 * tree.c     pure: a page of stored spans as the tree GET /api/traces
 *            answers with; callable from any thread
 * routes.c   GET /api/traces/:traceId */
#ifndef AOS_TRACE_INTERNAL_H
#define AOS_TRACE_INTERNAL_H

#include "buf/buf.h"
#include "map/map.h"
#include "trace/trace.h"

#include <stddef.h>
#include <stdint.h>

#define AOS__TRACE_PAGE     1000  /* spans in a page of GET /api/traces by default */
#define AOS__TRACE_PAGE_MAX 10000 /* ... and at most */
#define AOS__TRACE_DEPTH    64    /* nesting in the tree; deeper spans go to the top */

/* OTLP's SpanFlags bits beside the W3C flags: the parent's remoteness is known
 * (always, here) and the parent is remote. */
#define AOS__SPAN_FLAG_HAS_IS_REMOTE 0x100
#define AOS__SPAN_FLAG_IS_REMOTE     0x200

/* Where one attribute is in its span's text: the member "key":value at
 * off, len bytes, its "key" the first klen; hash: of that "key". */
struct aos__span_attr {
    uint32_t hash, off, len, klen;
};

/* A span being recorded, then queued for the store. */
struct aos_span_s {
    aos_trace_t *tr;                     /* borrowed */
    aos_tracectx_t ctx;                  /* its own: trace id, span id, flags, tracestate */
    char parent_id[AOS_SPAN_ID_LEN + 1]; /* "" for a root */
    int parent_remote;
    char *name;
    aos_span_kind_t kind;
    int64_t start_ns, end_ns;
    uint64_t start_hr; /* uv_hrtime() at the start: the duration is monotonic */
    aos_span_status_t status;
    char *status_message;
    /* the attributes as the JSON object text stored, {"key":value,...} in
     * the order first set (empty until the first), built as they are set:
     * no JSON values are made for them, and the worker dumps none */
    aos_buf_t attrs;
    struct aos__span_attr *attr; /* nattrs of them, room for cap_attrs */
    uint32_t nattrs, cap_attrs;
    json_t *events, *links; /* NULL until the first one */
    uint32_t dropped_attrs, dropped_events, dropped_links;
    aos_span_t *next; /* in the queue, once ended */
    int recording;    /* sampled, or tail: kept and stored; else only its context counts */
    int tail;         /* not sampled: stored only if its trace is kept (span.c) */
    /* kept on every SERVER span, recorded or not, for
     * mcp_server_operation_duration_seconds (sampling must not thin a
     * metric): mcp.method.name (one of MCP's, aos_metrics_mcp_method),
     * error.type, network.transport */
    const char *m_method, *m_transport;
    char m_error[48];
};

/* Flushes the spans queued now (read-your-writes for a query submitted to
 * the store right after: the worker runs jobs in order). */
void aos__trace_flush(aos_trace_t *tr);
uv_loop_t *aos__trace_loop(const aos_trace_t *tr);
aos_store_t *aos__trace_store(const aos_trace_t *tr);

/* rows[0..n) (in start order, as aos_store_spans_trace reads them) as a
 * tree, appended to out as a JSON array: the spans whose parent is not
 * among rows (roots, orphans, children of spans on an earlier page), each
 * with its children under "children" in start order. A span nested
 * AOS__TRACE_DEPTH deep goes to the top level instead, after the others,
 * as do spans of a parent cycle (none is written twice). 0 or AOS_ENOMEM. */
int aos__trace_tree(aos_buf_t *out, const aos_store_span_t *rows, size_t n);

/* A resource of the page: its id and attributes (JSON text). */
typedef struct {
    int64_t id;
    const char *attributes;
} aos__trace_resource_t;

/* The whole answer of GET /api/traces/:traceId, appended to out:
 * {trace_id, span_count: total, spans: the tree, resources, next_cursor
 * (NULL: null)}. 0 or AOS_ENOMEM. */
int aos__trace_render(aos_buf_t *out, const char *trace_id, int64_t total,
                      const aos_store_span_t *rows, size_t n, const aos__trace_resource_t *res,
                      size_t nres, const char *next_cursor);

/* The log lines of a trace (GET /api/traces/:traceId), as JSON array
 * texts: by_span maps a span id of the page to its lines, others holds
 * the rest (no span id, or a span not in the page; NULL: none);
 * truncated: the trace has more lines than were read. */
typedef struct {
    const aos_map_t *by_span;
    const char *others;
    int truncated;
} aos__trace_logs_t;

/* aos__trace_render, each span with "logs" (its lines, when it has any)
 * and the answer with "logs" (the others) and "logs_truncated". */
int aos__trace_render_logs(aos_buf_t *out, const char *trace_id, int64_t total,
                           const aos_store_span_t *rows, size_t n, const aos__trace_resource_t *res,
                           size_t nres, const char *next_cursor, const aos__trace_logs_t *logs);

/* "2025-01-31T12:00:00.123Z" for ns since the epoch. */
void aos__trace_iso(int64_t ns, char out[32]);

#endif
