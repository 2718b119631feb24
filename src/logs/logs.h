/* logs.h - the log service (SPEC §6): ingest, query and live streams of log
 * entries, over REST, SSE and a built-in MCP server.
 *
 *   POST /api/logs                a batch of entries (Operator)
 *   GET  /api/logs                filters, full text, cursor pages, group counts (Viewer)
 *   GET  /api/logs/stream         SSE: the same filters, live, resumable by id (Viewer)
 *   POST /mcp/logs/publish|query|subscribe   the MCP tools' REST forms
 *   MCP server "logs"             tools logs.publish, logs.query, logs.subscribe
 *
 * An entry is {ts, level, message, topic, attributes, trace_id, span_id,
 * source}; only message is required. A batch is validated as a whole (one
 * bad entry rejects it, naming the entry and the field), redacted (message
 * and attribute values, see aos_logs_set_redactor), then inserted by the
 * store's worker in one transaction; the client gets its 2xx only after the
 * commit, and live subscribers get the entries right after it, pushed from
 * the loop (no subscriber ever polls the database).
 *
 * aosd's own log lines (aos_log, which includes child processes' stderr,
 * component "upstream") land here too once aos_logs_capture() is called:
 * a sink queues them (bounded; overflow is counted and reported) and the
 * loop inserts them in batches. Lines of component "logs" are not captured,
 * so the service never feeds on its own failures.
 *
 * Retention (by age and by row count) runs periodically on the store worker.
 *
 * Threads: everything here on the loop thread, except the sink installed by
 * aos_logs_capture (any thread) and the redactors (called on the loop). */
#ifndef AOS_LOGS_H
#define AOS_LOGS_H

#include "buf/buf.h"
#include "builtin/builtin.h"
#include "err/err.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <uv.h>

typedef struct aos_logs_s aos_logs_t;

typedef struct {
    uv_loop_t *loop;                 /* borrowed */
    aos_store_t *store;              /* borrowed */
    aos_metrics_t *metrics;          /* borrowed, may be NULL */
    unsigned long retention_days;    /* delete entries older than this; 0: never */
    unsigned long retention_rows;    /* keep at most this many; 0: no limit */
    unsigned long retention_check_s; /* how often retention runs; 0: 60 */
} aos_logs_cfg_t;

int aos_logs_new(aos_logs_t **out, const aos_logs_cfg_t *cfg, aos_err_t *err);
/* The routes above; l must outlive http. */
int aos_logs_add_routes(aos_logs_t *l, aos_http_t *http);
/* The built-in MCP server "logs", for aos_gateway_add_builtin; owned by l. */
const aos_builtin_t *aos_logs_builtin(aos_logs_t *l);
/* Answers req (an authorized GET) with an SSE stream of the entries of
 * source (exact): the last tail of them (at most AOS_STORE_LIST_MAX), then
 * live ones, framed as GET /api/logs/stream frames them. */
int aos_logs_tail(aos_logs_t *l, aos_http_req_t *req, const char *source, unsigned tail);
/* Installs the aos_log sink: from now on aosd's own log lines are stored. */
void aos_logs_capture(aos_logs_t *l);
/* Stops capture, retention and streams (their clients may resume later)
 * and closes l's handles; pending inserts still complete. Idempotent. */
void aos_logs_shutdown(aos_logs_t *l);
/* After aos_store_close (no store callback may still reach l) and after the
 * loop ran the close callbacks of aos_logs_shutdown (called here if it was
 * not). May be NULL. */
void aos_logs_free(aos_logs_t *l);

/* Publishes entries (an array of entries as POST /api/logs takes them; a
 * reference is taken, and the array may be redacted in place) as one
 * batch, for another module (src/telemetry's OTLP ingest): done runs once,
 * on the loop, after the commit (err NULL, accepted entries) or with the
 * refusal. Returns 0, or a code with err set (done then never runs). via
 * names the path for metrics. */
typedef void (*aos_logs_publish_fn)(void *ctx, size_t accepted, const aos_err_t *err);
int aos_logs_publish(aos_logs_t *l, json_t *entries, const char *via, aos_logs_publish_fn done,
                     void *ctx, aos_err_t *err);

/* --- redaction ------------------------------------------------------------
 * A redactor sees each string before it is stored: the message (key NULL),
 * every string value inside attributes (key = the name of the member
 * holding it, or of the array holding it) and every member name inside
 * attributes (key NULL; a replaced name that collides with another gets
 * "~N" appended). It returns 0 when the text may be stored as is, 1 when it
 * wrote a replacement to out (which arrives empty), or a negative AOS_E*
 * code, which rejects the batch. It runs on libuv's thread pool. */
typedef int (*aos_logs_redact_fn)(const char *key, const char *text, size_t len, aos_buf_t *out,
                                  void *data);
/* Replaces the redactor (fn NULL: the default, aos_redact_field with the
 * process's redactor, src/redact). data is borrowed. */
void aos_logs_set_redactor(aos_logs_t *l, aos_logs_redact_fn fn, void *data);

#endif
