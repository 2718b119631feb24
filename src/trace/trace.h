/* trace.h - spans: what aosd did for a request, a task, a step, a tool
 * call or an LLM call, stored locally (table spans) and served as a tree by
 * GET /api/traces/:traceId.
 *
 * A span is OpenTelemetry's Span, field for field, so that an OTLP exporter
 * maps a stored row 1:1 (opentelemetry/proto/trace/v1/trace.proto): trace
 * id, span id, parent span id, tracestate, flags, name, kind, start and end
 * (unix nanoseconds), status (code and message), attributes (string,
 * integer, double, boolean), events, links, and the resource that made it
 * (service.name "aosd", its version, service.instance.id per start).
 *
 * Using it (loop thread):
 *
 *     aos_span_t *s = aos_trace_span_start(tr, parent, "tools/call echo", AOS_SPAN_CLIENT);
 *     aos_span_set_str(s, AOS_ATTR_MCP_METHOD_NAME, "tools/call");
 *     aos_upstream_request(up, "tools/call", params, 0, aos_span_context(s), cb, s, NULL);
 *     ...and in cb: if failed, aos_span_set_error(s, "timeout", msg); aos_span_end(s);
 *
 * parent is the context the span runs under (an aos_tracectx_t: a request's
 * aos_http_trace(), another span's aos_span_context(), or NULL for a new
 * trace). Every function taking a span accepts NULL and does nothing, so
 * that code runs the same with tracing off (tr NULL, or out of memory).
 * Strings are copied (invalid UTF-8 shown as U+FFFD, cut at
 * AOS_TRACE_VALUE_MAX bytes); past the limits below, attributes, events and
 * links are dropped and counted in the span.
 *
 * Writing: aos_span_end queues the span; the spans queued are inserted by
 * the store's worker thread in batches (one transaction each), a batch once
 * AOS_TRACE_BATCH spans wait or flush_ms after the first one, so a span is
 * durable within about flush_ms and the loop never waits for the disk.
 * The queue is bounded (buffer spans, those in flight included): past it a
 * span is dropped and counted in aos_trace_spans_dropped_total{reason=
 * "buffer"} (a failed insert in {reason="store"}). aos_trace_shutdown
 * writes what is queued. Retention deletes spans older than
 * retention_days and beyond the newest retention_spans.
 *
 * Sampling (sample_ratio below): a trace born here is sampled by its id,
 * a caller's traceparent decides for its trace, and the W3C flag is
 * passed on unchanged. With keep_errors_off 0 (--trace-keep-errors), a
 * trace not sampled is still stored when one of its spans ends with ERROR
 * or aos_trace_keep names it (tail-based keep: span.c), with the sampled
 * flag set so that the exporter sends it; that makes every span record
 * its attributes (+32% instructions per gateway call at sampling 0.1).
 *
 * Threads: everything on the loop thread. */
#ifndef AOS_TRACE_H
#define AOS_TRACE_H

#include "err/err.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "store/store.h"
#include "tracectx/tracectx.h"

#include <jansson.h>
#include <stdint.h>
#include <uv.h>

/* Limits per span (OpenTelemetry's defaults for counts). */
#define AOS_TRACE_ATTRS     128  /* attributes */
#define AOS_TRACE_EVENTS    128  /* events */
#define AOS_TRACE_LINKS     128  /* links */
#define AOS_TRACE_VALUE_MAX 4096 /* bytes of a string value */
#define AOS_TRACE_NAME_MAX  256  /* bytes of a span's or event's name */
#define AOS_TRACE_BATCH     1000 /* spans written in one transaction */

/* ---- semantic conventions -------------------------------------------------
 * Attribute names and values of OpenTelemetry's GenAI and MCP semantic
 * conventions (gen-ai-spans.md, mcp.md; status: development), as aosd uses
 * them:
 *   a task          INTERNAL "invoke_workflow {name}", gen_ai.operation.name
 *                   = invoke_workflow
 *   a tool call     CLIENT "tools/call {tool}" (also gen_ai.operation.name =
 *                   execute_tool, gen_ai.tool.name, gen_ai.tool.call.id)
 *   an LLM call     CLIENT "chat {model}", gen_ai.operation.name = chat,
 *                   gen_ai.request.model, gen_ai.usage.input_tokens /
 *                   output_tokens
 *   an MCP request  SERVER "{mcp.method.name} {target}" (target: the tool
 *                   or prompt name), mcp.method.name, mcp.session.id,
 *                   mcp.protocol.version, jsonrpc.request.id, error.type on
 *                   failure (the JSON-RPC code, or "tool_error"). */
#define AOS_ATTR_GEN_AI_OPERATION_NAME     "gen_ai.operation.name"
#define AOS_ATTR_GEN_AI_OP_INVOKE_WORKFLOW "invoke_workflow"
#define AOS_ATTR_GEN_AI_OP_EXECUTE_TOOL    "execute_tool"
#define AOS_ATTR_GEN_AI_OP_CHAT            "chat"
#define AOS_ATTR_GEN_AI_PROVIDER_NAME      "gen_ai.provider.name"
#define AOS_ATTR_GEN_AI_REQUEST_MODEL      "gen_ai.request.model"
#define AOS_ATTR_GEN_AI_RESPONSE_MODEL     "gen_ai.response.model"
#define AOS_ATTR_GEN_AI_INPUT_TOKENS       "gen_ai.usage.input_tokens"
#define AOS_ATTR_GEN_AI_OUTPUT_TOKENS      "gen_ai.usage.output_tokens"
#define AOS_ATTR_GEN_AI_TOOL_NAME          "gen_ai.tool.name"
#define AOS_ATTR_GEN_AI_TOOL_CALL_ID       "gen_ai.tool.call.id"
#define AOS_ATTR_GEN_AI_PROMPT_NAME        "gen_ai.prompt.name"
#define AOS_ATTR_GEN_AI_CONVERSATION_ID    "gen_ai.conversation.id"
#define AOS_ATTR_MCP_METHOD_NAME           "mcp.method.name"
#define AOS_ATTR_MCP_SESSION_ID            "mcp.session.id"
#define AOS_ATTR_MCP_PROTOCOL_VERSION      "mcp.protocol.version"
#define AOS_ATTR_MCP_RESOURCE_URI          "mcp.resource.uri"
#define AOS_ATTR_JSONRPC_REQUEST_ID        "jsonrpc.request.id"
#define AOS_ATTR_RPC_RESPONSE_STATUS_CODE  "rpc.response.status_code"
#define AOS_ATTR_ERROR_TYPE                "error.type"
#define AOS_ATTR_ERROR_TOOL                "tool_error" /* error.type of a CallToolResult isError */
#define AOS_ATTR_NETWORK_TRANSPORT         "network.transport"     /* "tcp", "pipe" */
#define AOS_ATTR_NETWORK_PROTOCOL_NAME     "network.protocol.name" /* "http" */
#define AOS_ATTR_CLIENT_ADDRESS            "client.address"
#define AOS_ATTR_SERVER_ADDRESS            "server.address"
#define AOS_ATTR_SERVER_PORT               "server.port"
/* aosd's own: the registry entry a call goes to (a tool's name alone does
 * not say, on /mcp/call and /mcp/servers/:name) */
#define AOS_ATTR_AOS_MCP_SERVER "aos.mcp.server"
/* Who made the request (aos_auth_display: "token:<name>", "user:<name>",
 * "agent:<agent>", "anonymous"): the topology's client nodes. */
#define AOS_ATTR_AOS_PRINCIPAL "aos.principal"

/* OTLP's SpanKind and StatusCode, with their numbers. */
typedef enum {
    AOS_SPAN_INTERNAL = 1,
    AOS_SPAN_SERVER = 2,
    AOS_SPAN_CLIENT = 3,
    AOS_SPAN_PRODUCER = 4,
    AOS_SPAN_CONSUMER = 5,
} aos_span_kind_t;

typedef enum {
    AOS_SPAN_UNSET = 0,
    AOS_SPAN_OK = 1,
    AOS_SPAN_ERROR = 2,
} aos_span_status_t;

typedef struct aos_trace_s aos_trace_t;
typedef struct aos_span_s aos_span_t;

typedef struct {
    uv_loop_t *loop;                 /* borrowed */
    aos_store_t *store;              /* borrowed */
    aos_metrics_t *metrics;          /* borrowed, may be NULL */
    const char *version;             /* service.version of the resource */
    unsigned long retention_days;    /* delete spans older than this; 0: never */
    unsigned long retention_spans;   /* keep at most this many; 0: no limit */
    unsigned long retention_check_s; /* how often retention runs; 0: 60 */
    unsigned long buffer;            /* spans queued or in flight at most; 0: 10000 */
    unsigned flush_ms;               /* the longest a span waits to be written; 0: 100 */
    /* The share of new traces recorded (0..1; NaN or out of range: 1): a
     * trace that starts at aosd (a request without traceparent, a span
     * without a parent) is sampled by its trace id, as OpenTelemetry's
     * TraceIdRatioBased sampler does; a span under a parent follows the
     * parent's sampled flag (a caller's traceparent decides for its trace).
     * A span that is not sampled still has a context (its flag cleared,
     * sent on); it is stored only when its trace is kept for an error
     * (keep_errors_off below). */
    double sample_ratio;
    /* 0: error traces are kept whatever the sampling (span.c: a trace not
     * sampled is held, bounded, until a span of it ends with ERROR or
     * aos_trace_keep names it, then stored whole); 1: off (the spans of a
     * trace not sampled record nothing). aosd: off unless
     * --trace-keep-errors. */
    int keep_errors_off;
} aos_trace_cfg_t;

int aos_trace_new(aos_trace_t **out, const aos_trace_cfg_t *cfg, aos_err_t *err);
/* GET /api/traces/:traceId (Viewer); tr must outlive http. */
int aos_trace_add_routes(aos_trace_t *tr, aos_http_t *http);
/* Stops retention and queues every span waiting for the store; spans ended
 * later are written one batch at a time, at once. Idempotent. */
void aos_trace_shutdown(aos_trace_t *tr);
/* After aos_store_close (whose done callbacks reach tr) and the loop ran
 * the close callbacks of aos_trace_shutdown (called here if it was not).
 * Spans still open are the caller's: end them before. May be NULL. */
void aos_trace_free(aos_trace_t *tr);

/* fn sees every batch of spans once it is stored (on the loop: rows borrowed
 * for the call; resource the JSON text of their resource's attributes):
 * the OTLP exporter's feed (src/telemetry). json holds the rows'
 * attributes, events and links as the values their texts were made from,
 * 3 per row (NULL where the text is NULL), borrowed: a receiver that keeps
 * one takes a reference (json_incref) and may then read it on any thread -
 * an ended span's values never change and jansson counts references
 * atomically - but never changes it. fn NULL: none. */
typedef void (*aos_trace_stored_fn)(const aos_store_span_t *rows, json_t *const *json, size_t n,
                                    const char *resource, void *data);
void aos_trace_on_stored(aos_trace_t *tr, aos_trace_stored_fn fn, void *data);

/* Keeps trace trace_id whole, as an error span does: its spans held
 * now are stored, and those that end within the next 10 minutes. 1 when
 * spans of it are stored or on their way: it had an error span, was kept
 * before, had spans held, or its id is one sample_ratio samples (a trace
 * born here; one whose caller's traceparent said "not sampled", that had
 * no error and whose held spans were dropped, is the case this gets
 * wrong); else 0. With keeping off only the sampling counts. 0 for tr
 * NULL. */
int aos_trace_keep(aos_trace_t *tr, const char *trace_id);

/* A position in the spans' order (start time, row id) as the opaque cursor
 * the span routes answer with (GET /api/traces/:id, GET /api/traces):
 * out holds at least 80 bytes. decode: 0, or AOS_EINVAL for text that is
 * not such a cursor. */
void aos_trace_cursor_encode(int64_t start_ns, int64_t id, char *out, size_t cap);
int aos_trace_cursor_decode(const char *s, int64_t *start_ns, int64_t *id);

/* ---- spans -------------------------------------------------------------- */

/* Starts a span named name under parent (NULL or empty: the root of a new
 * trace). NULL when tr is NULL or out of memory. The span is the caller's
 * until aos_span_end. */
aos_span_t *aos_trace_span_start(aos_trace_t *tr, const aos_tracectx_t *parent, const char *name,
                                 aos_span_kind_t kind);

/* The SERVER span of an HTTP request that starts work, named name: its
 * parent is parent when given (MCP's params._meta context), else the
 * request's own context (aos_http_trace); when parent is given and the
 * request carried a traceparent of its own, that one is linked (as MCP's
 * semantic conventions ask). Sets client.address. The response carries the
 * span's traceparent. The span ends when the request does (answered and
 * sent, or the client went away): never end it yourself; find it with
 * aos_trace_request_span_of. A second call for req gives the first span.
 * NULL as aos_trace_span_start. */
aos_span_t *aos_trace_request_span(aos_trace_t *tr, aos_http_req_t *req,
                                   const aos_tracectx_t *parent, const char *name);
/* The span aos_trace_request_span gave req, or NULL. */
aos_span_t *aos_trace_request_span_of(aos_http_req_t *req);

/* The span's own context: what its children start under and what goes to
 * the servers it calls. Valid until aos_span_end. NULL for NULL. */
const aos_tracectx_t *aos_span_context(const aos_span_t *s);

/* Attributes: a key set again replaces its value. key and value are copied. */
void aos_span_set_str(aos_span_t *s, const char *key, const char *value);
/* aos_span_set_str for a value that is a string literal of aosd's own
 * ("execute_tool", "tools/call"): no secret can be in it, so the redactor
 * does not scan it (a scan costs about as much as the rest of the set). */
void aos_span_set_const(aos_span_t *s, const char *key, const char *value);
void aos_span_set_int(aos_span_t *s, const char *key, int64_t value);
void aos_span_set_double(aos_span_t *s, const char *key, double value);
void aos_span_set_bool(aos_span_t *s, const char *key, int value);
/* mcp.session.id from an MCP session id: a digest of it (16 bytes, hex),
 * since the id itself lets whoever knows it act in the session. */
void aos_span_set_session(aos_span_t *s, const char *session_id);

/* Status: OK, or ERROR with a message (may be NULL). */
void aos_span_set_status(aos_span_t *s, aos_span_status_t code, const char *message);
/* A failure: error.type = type (a low-cardinality class: "timeout", a
 * JSON-RPC code, "tool_error") and status ERROR with message (may be NULL). */
void aos_span_set_error(aos_span_t *s, const char *type, const char *message);

/* An event now, named name, with attrs (an object of string, integer,
 * real and boolean values; stolen; may be NULL). */
void aos_span_add_event(aos_span_t *s, const char *name, json_t *attrs);
/* A link to another span's context (copied; ignored unless it names a span). */
void aos_span_add_link(aos_span_t *s, const aos_tracectx_t *ctx);

/* Ends s now and queues it for the store; s is gone afterwards. */
void aos_span_end(aos_span_t *s);

#endif
