-- 0008_spans.sql - the spans of aosd's traces (src/trace), one row per
-- finished span, each column one field of OpenTelemetry's Span
-- (opentelemetry/proto/trace/v1/trace.proto), so that an OTLP exporter
-- reads a row straight into a Span:
--   trace_id, span_id, parent_span_id   lowercase hex (proto: bytes); no
--                                       parent: NULL
--   trace_state                         the W3C tracestate, NULL for none
--   flags                               W3C trace flags in bits 0-7, bit 8
--                                       "has is_remote", bit 9 "parent is
--                                       remote" (proto: SpanFlags)
--   kind                                1 INTERNAL, 2 SERVER, 3 CLIENT,
--                                       4 PRODUCER, 5 CONSUMER (SpanKind)
--   start/end_time_unix_nano            nanoseconds since the epoch
--   status_code, status_message         0 UNSET, 1 OK, 2 ERROR (StatusCode)
--   attributes                          a JSON object: string, integer,
--                                       double and boolean values (KeyValue)
--   events, links                       JSON arrays of {time_unix_nano,
--                                       name, attributes} and {trace_id,
--                                       span_id, trace_state, flags,
--                                       attributes}, NULL for none
--   dropped_*_count                     what the span's limits left out
--   resource_id                         the span_resources row: who made it
-- id is the order of insertion: retention deletes the oldest rows first.
--
-- Portable: INTEGER PRIMARY KEY AUTOINCREMENT is translated by the
-- PostgreSQL backend (src/store/internal.h).
CREATE TABLE span_resources (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    attributes TEXT NOT NULL,
    created_at TEXT NOT NULL
);

CREATE TABLE spans (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_span_id TEXT,
    trace_state TEXT,
    flags INTEGER NOT NULL DEFAULT 0,
    name TEXT NOT NULL,
    kind INTEGER NOT NULL CHECK (kind BETWEEN 0 AND 5),
    start_time_unix_nano BIGINT NOT NULL,
    end_time_unix_nano BIGINT NOT NULL,
    status_code INTEGER NOT NULL DEFAULT 0 CHECK (status_code BETWEEN 0 AND 2),
    status_message TEXT,
    attributes TEXT,
    dropped_attributes_count INTEGER NOT NULL DEFAULT 0,
    events TEXT,
    dropped_events_count INTEGER NOT NULL DEFAULT 0,
    links TEXT,
    dropped_links_count INTEGER NOT NULL DEFAULT 0,
    resource_id BIGINT
);
-- A trace's spans in start order: GET /api/traces/:traceId pages through it.
CREATE INDEX spans_trace_idx ON spans (trace_id, start_time_unix_nano, id);
