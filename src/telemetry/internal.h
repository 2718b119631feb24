/* internal.h - shared inside the telemetry module.
 *
 * otlp.c     the codec (pure): OTLP protobuf and JSON to rows and entries,
 *            aosd's spans to a request, responses, gzip
 * export.c   the exporter: its queue, batches, requests and back-off, and
 *            the service's life
 * ingest.c   POST /v1/traces and POST /v1/logs */
#ifndef AOS_TELEMETRY_INTERNAL_H
#define AOS_TELEMETRY_INTERNAL_H

#include "telemetry/telemetry.h"

/* Limits of an ingested span, as src/trace's own (trace.h). */
#define AOS_OTLP_ATTRS     128
#define AOS_OTLP_EVENTS    128
#define AOS_OTLP_VALUE_MAX 4096
#define AOS_OTLP_NAME_MAX  256

#define AOS_OTLP_BODY_MAX    (16u << 20) /* bytes of a request body as sent */
#define AOS_OTLP_INFLATE_MAX (16u << 20) /* ... and once inflated (a JSON tree is ~10x) */

/* The service (export.c); ingest.c reads these. */
struct aos_telemetry_s;
aos_store_t *aos__telemetry_store(const aos_telemetry_t *t);
aos_logs_t *aos__telemetry_logs(const aos_telemetry_t *t);
uv_loop_t *aos__telemetry_loop(const aos_telemetry_t *t);
int aos__telemetry_shut(const aos_telemetry_t *t);
/* Counts what an ingest stored and refused (signal: "traces", "logs"). */
void aos__telemetry_ingested(aos_telemetry_t *t, const char *signal, size_t accepted,
                             int64_t rejected);
/* The span_resources id of the resource text, from the worker's cache or
 * added now (worker thread only). */
int aos__telemetry_resource_id(aos_telemetry_t *t, aos_store_t *st, const char *text, int64_t *id,
                               aos_err_t *err);

/* aos_otlp_traces_encode's protobuf through protobuf-c's structs and
 * pack (otlp.c): slower, kept as the reference the hand-written encoder
 * must match byte for byte (tests/unit/test_telemetry.c). */
int aos__otlp_traces_encode_pbc(const aos_store_span_t *rows, json_t *const *json, size_t n,
                                const json_t *resource, aos_buf_t *out);

#endif
