/* sse.h - incremental parser of a text/event-stream body, for the clients
 * that read event streams (the MCP upstream transports, the LLM client).
 *
 * Follows the WHATWG "event stream interpretation": lines end with CRLF, LF
 * or CR (also when split across chunks); "data" lines are joined with "\n";
 * "event", "id" and "retry" fields are kept; a blank line dispatches the
 * event unless its data is empty; comments (":...") are skipped. Feed it the
 * body in chunks of any size. A line or an event's data longer than max fails
 * the stream, so a hostile server cannot make it grow without bound. */
#ifndef AOS_SSE_H
#define AOS_SSE_H

#include <stddef.h>

#include "buf/buf.h"

/* One event: type ("message" when the stream named none), its data (the
 * joined data lines, NUL-terminated, len bytes). Return 0 to go on, < 0 to
 * stop: aos_sse_feed then returns that value. */
typedef int (*aos_sse_event_fn)(void *data, const char *type, const char *payload, size_t len);

typedef struct {
    aos_buf_t line;    /* the current, incomplete line */
    aos_buf_t data;    /* data of the event being built */
    char type[64];     /* "event" field of the event being built */
    char last_id[256]; /* last "id" field seen, "" if none (resumption) */
    long retry_ms;     /* last valid "retry" field, -1 if none */
    int after_cr;      /* the previous chunk ended with CR: skip a leading LF */
    int started;       /* past the optional byte order mark */
    aos_sse_event_fn on_event;
    void *cb_data; /* borrowed */
} aos_sse_t;

/* max: bound on a line and on an event's data, in bytes. */
void aos_sse_init(aos_sse_t *s, size_t max, aos_sse_event_fn fn, void *data);
void aos_sse_release(aos_sse_t *s);
/* Returns 0, AOS_ETOOBIG (a line or event over max), or what on_event
 * returned to stop. */
int aos_sse_feed(aos_sse_t *s, const char *chunk, size_t len);

#endif
