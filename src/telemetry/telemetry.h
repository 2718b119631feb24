/* telemetry.h - OpenTelemetry's OTLP/HTTP for aosd: its spans exported to
 * any OTLP receiver, and other frameworks' traces and logs ingested.
 *
 * Export (export.c). src/trace stores every span aosd makes; once a batch
 * of them is durable, aos_telemetry_export gets it (on the loop) and
 * copies the spans whose W3C sampled flag is set into a bounded queue
 * (cfg.queue spans, those being sent included); past the bound a span is
 * dropped and counted in aos_otlp_export_spans_dropped_total{reason=
 * "queue"}. The queue leaves in batches of at most cfg.batch spans, one
 * request at a time, as ExportTraceServiceRequest to <endpoint>/v1/traces
 * in protobuf (application/x-protobuf, the default) or JSON (OTLP/JSON),
 * flush_ms after the first span of a quiet period or at once when a batch
 * is full. A 429, a 502/503/504, a timeout or a connection failure keeps
 * the batch at the head of the queue and tries it again after a back-off
 * (1 s doubling to 30 s, +-20 % jitter, or the response's Retry-After
 * when it says longer, up to 5 minutes); any other 4xx/5xx drops it
 * (reason="rejected"), as does a 200 whose partial_success rejects spans
 * (counted, its message logged). Nothing here blocks the loop: the
 * requests go through src/httpc. Headers (cfg.headers) may carry keys:
 * they are sent and never logged, shown or put in a metric. The resource
 * is src/trace's: service.name "aosd", service.version,
 * service.instance.id (one per start), host.name, process.pid. Spans still
 * queued at shutdown are dropped (reason="shutdown").
 *
 * Ingest (ingest.c). POST /v1/traces and POST /v1/logs (OTLP/HTTP; the
 * Operator permission, as POST /api/logs) take an Export*ServiceRequest in
 * application/x-protobuf or application/json, Content-Encoding gzip or
 * identity. The body is decoded off the loop (libuv's thread pool); a body
 * that does not decode gets 400 and stores nothing. Spans go into the
 * spans table beside aosd's own (their resource into span_resources) and
 * log records through the log service (src/logs: redacted, source
 * "otlp:<service.name>"), both committed before the 200, which is an
 * Export*ServiceResponse in the request's encoding: empty, or
 * partial_success with the count of the spans (records) refused and why
 * (an id of the wrong length or all zeros, a kind or status out of range,
 * attributes too large for a log line).
 *
 * Codec (otlp.c): pure functions, callable from any thread; the fuzz
 * target tests/fuzz/fuzz_otlp.c and tests/unit/test_telemetry.c use them.
 *
 * Threads: the loop thread, except the codec. */
#ifndef AOS_TELEMETRY_H
#define AOS_TELEMETRY_H

#include "buf/buf.h"
#include "err/err.h"
#include "http/http.h"
#include "httpc/httpc.h"
#include "logs/logs.h"
#include "metrics/metrics.h"
#include "redact/redact.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

typedef struct aos_telemetry_s aos_telemetry_t;

typedef enum {
    AOS_OTLP_PROTOBUF = 0, /* application/x-protobuf */
    AOS_OTLP_JSON = 1,     /* application/json (OTLP/JSON) */
} aos_otlp_encoding_t;

typedef struct {
    uv_loop_t *loop;        /* borrowed */
    aos_store_t *store;     /* borrowed: ingested spans go here */
    aos_logs_t *logs;       /* borrowed, may be NULL: /v1/logs answers 503 */
    aos_httpc_t *httpc;     /* borrowed, may be NULL: no export */
    aos_metrics_t *metrics; /* borrowed, may be NULL */
    /* Export: the receiver's base URL (".../v1/traces" is appended unless
     * it ends so already); NULL or "": no export. */
    const char *endpoint;
    const char *const *headers; /* NULL-terminated "Name: value" lines, copied; may be NULL */
    aos_otlp_encoding_t encoding;
    unsigned long queue;     /* spans queued or being sent at most; 0: 2048 */
    unsigned long batch;     /* spans in one request at most; 0: 512 */
    unsigned flush_ms;       /* the longest a span waits for a batch; 0: 1000 */
    unsigned timeout_ms;     /* one request; 0: 10000 */
    unsigned backoff_max_ms; /* the longest back-off of its own; 0: 30000 */
} aos_telemetry_cfg_t;

int aos_telemetry_new(aos_telemetry_t **out, const aos_telemetry_cfg_t *cfg, aos_err_t *err);
/* POST /v1/traces and POST /v1/logs; t must outlive http. */
int aos_telemetry_add_routes(aos_telemetry_t *t, aos_http_t *http);
/* Queues rows[0..n) (stored spans of the resource whose attributes are
 * the JSON text resource; all borrowed for the call) for export. Matches
 * the hook of aos_trace_on_stored. */
void aos_telemetry_export(const aos_store_span_t *rows, json_t *const *json, size_t n,
                          const char *resource, void *t);
/* Stops the export (the request in flight is cancelled, the queue
 * dropped and counted) and refuses new ingest requests (503); ingests
 * under way still finish. Call before aos_httpc_free. Idempotent. */
void aos_telemetry_shutdown(aos_telemetry_t *t);
/* After aos_store_close and once the loop ran the close callbacks of
 * aos_telemetry_shutdown (called here if it was not). May be NULL. */
void aos_telemetry_free(aos_telemetry_t *t);

/* Parses an encoding's name: "http/protobuf" or "protobuf", "http/json" or
 * "json"; -1 for anything else. */
int aos_otlp_encoding_parse(const char *s);

/* ---- the codec (otlp.c): pure, any thread ---------------------------------- */

/* A decoded ExportTraceServiceRequest: the spans that were accepted, as
 * store rows whose resource_id is an index into resources (JSON texts of
 * the resources' attributes), and how many were refused and why. */
typedef struct {
    aos_store_span_t *rows; /* owned, with their strings */
    size_t n, cap;
    char **resources; /* owned */
    size_t nres, capres;
    int64_t rejected;
    char message[256];    /* the first refusal, "" for none */
    aos_redact_t *redact; /* borrowed, while decoding */
} aos_otlp_traces_t;

/* A decoded ExportLogsServiceRequest: entries for the log service's
 * publish (an array of {ts, level, message, topic, source, attributes,
 * trace_id, span_id}), and the records refused. */
typedef struct {
    json_t *entries; /* owned */
    int64_t rejected;
    char message[256];
} aos_otlp_logs_t;

/* Decodes body (len bytes, already inflated) in encoding: 0 with out
 * filled (release it with aos_otlp_traces_release, also after a failure),
 * or AOS_EINVAL with err saying what is malformed. With redact (may be
 * NULL), every string of the spans' attributes, events and links, their
 * status messages and the resources' attributes are redacted (redact.h),
 * as aosd's own spans are. */
int aos_otlp_traces_decode(const void *body, size_t len, aos_otlp_encoding_t enc,
                           aos_redact_t *redact, aos_otlp_traces_t *out, aos_err_t *err);
void aos_otlp_traces_release(aos_otlp_traces_t *t);
int aos_otlp_logs_decode(const void *body, size_t len, aos_otlp_encoding_t enc,
                         aos_otlp_logs_t *out, aos_err_t *err);
void aos_otlp_logs_release(aos_otlp_logs_t *l);

/* An ExportTraceServiceRequest of rows[0..n) (their resource_id ignored)
 * under the resource whose attributes are the JSON object text resource,
 * appended to out. json, when not NULL, holds the rows' attributes, events
 * and links already parsed (3 per row, as aos_trace_stored_fn gives them;
 * read, never changed): the rows' texts are then not parsed again. 0 or
 * AOS_ENOMEM. */
int aos_otlp_traces_encode(const aos_store_span_t *rows, json_t *const *json, size_t n,
                           const char *resource, aos_otlp_encoding_t enc, aos_buf_t *out);
/* An Export{Trace,Logs}ServiceResponse (logs: 1) with partial_success
 * when rejected > 0, appended to out. 0 or AOS_ENOMEM. */
int aos_otlp_response_encode(int logs, int64_t rejected, const char *message,
                             aos_otlp_encoding_t enc, aos_buf_t *out);
/* The partial_success of an ExportTraceServiceResponse: *rejected (0 when
 * none) and its message into msg. 0, or AOS_EINVAL for a body that is not
 * one (an empty body is an empty response). */
int aos_otlp_response_decode(const void *body, size_t len, aos_otlp_encoding_t enc,
                             int64_t *rejected, char *msg, size_t msg_cap);

/* Inflates a gzip (or zlib) body into a new buffer of at most max bytes:
 * 0 with *out (malloc'd) and *out_len, AOS_EINVAL for a body that is not
 * gzip or inflates beyond max. */
int aos_otlp_gunzip(const void *in, size_t len, size_t max, void **out, size_t *out_len,
                    aos_err_t *err);

#endif
