/* tracectx.h - W3C Trace Context (https://www.w3.org/TR/trace-context/):
 * the `traceparent` and `tracestate` values a request carries in, and aosd
 * sends on to the servers it calls, as HTTP headers and in MCP's
 * params._meta (the keys "traceparent" and "tracestate", SEP-414).
 *
 * A context names the span whose children come next: its trace id, its span
 * id (the parent-id of what is started under it), the trace flags and the
 * caller's tracestate, carried opaquely. A context may hold a trace id
 * without a span id: the next span is then the root of that new trace. A
 * context without a trace id is empty: whatever starts under it starts a
 * new trace.
 *
 * Parsing follows the specification's rules for version 00 and for future
 * versions (a higher version is read as 00 when its first four fields have
 * 00's shape; version ff is invalid); anything it does not accept is
 * AOS_EINVAL, and the caller restarts the trace: a malformed traceparent is
 * never an error of the request. tracestate is kept only with a valid
 * traceparent, checked member by member (key and value grammar, at most 32
 * members, no key twice: else dropped whole) and cut to
 * AOS_TRACESTATE_MAX bytes by whole members as the specification says
 * (members over 128 bytes first, then from the end).
 *
 * Ids are random (libsodium's randombytes, drawn 512 bytes at a time into a
 * per-thread pool). This module is below the HTTP
 * layer: pure functions, no allocation, any thread. */
#ifndef AOS_TRACECTX_H
#define AOS_TRACECTX_H

#include <stddef.h>
#include <stdint.h>

#define AOS_TRACE_ID_LEN    32 /* hex digits of a trace id */
#define AOS_SPAN_ID_LEN     16 /* hex digits of a span id */
#define AOS_TRACEPARENT_LEN 55 /* "00-<trace id>-<span id>-<flags>" */
#define AOS_TRACESTATE_MAX  512
#define AOS_TRACE_SAMPLED   0x01 /* the one trace flag version 00 defines */

typedef struct {
    char trace_id[AOS_TRACE_ID_LEN + 1];     /* lowercase hex, "" when empty */
    char span_id[AOS_SPAN_ID_LEN + 1];       /* lowercase hex, "" for none */
    uint8_t flags;                           /* trace-flags (AOS_TRACE_SAMPLED) */
    uint8_t remote;                          /* parsed from a caller's value */
    char tracestate[AOS_TRACESTATE_MAX + 1]; /* "" for none */
} aos_tracectx_t;

/* Parses traceparent (NUL-terminated; optional whitespace around it is
 * ignored) and, only when that is valid, tracestate (may be NULL; several
 * header fields joined with commas). 0 with out filled (remote = 1), or
 * AOS_EINVAL with out empty. */
int aos_tracectx_parse(aos_tracectx_t *out, const char *traceparent, const char *tracestate);

/* A new trace: a fresh trace id, no span id, sampled, no tracestate. */
void aos_tracectx_new(aos_tracectx_t *out);

/* The context of a new span under parent: parent's trace id, flags and
 * tracestate and a fresh span id; with parent NULL or empty, a new sampled
 * trace. out may be parent. */
void aos_tracectx_child(aos_tracectx_t *out, const aos_tracectx_t *parent);

/* 1 if c names a span (a trace id and a span id): what can be sent on. */
int aos_tracectx_valid(const aos_tracectx_t *c);

/* The traceparent of c: "00-<trace id>-<span id>-<flags>" (55 chars and a
 * NUL). 0, or AOS_EINVAL when c does not name a span. */
int aos_tracectx_format(const aos_tracectx_t *c, char out[AOS_TRACEPARENT_LEN + 1]);

/* 1 if s[0..n) is an id of n hex digits as version 00 writes them:
 * lowercase, not all zeros. */
int aos_tracectx_id_valid(const char *s, size_t n);

/* Writes a random id of n hex digits (n even, at most 32) and a NUL to out,
 * never all zeros. */
void aos_tracectx_random_id(char *out, size_t n);

/* Checks and cuts a tracestate value (s[0..n), NUL bytes included) into
 * out (cap bytes, cap >= 1): the valid members joined with ','. Returns the
 * length written; 0 when s is empty or invalid (out = ""). */
size_t aos_tracectx_state(char *out, size_t cap, const char *s, size_t n);

#endif
