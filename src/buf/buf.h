/* buf.h - a growable byte buffer for building text (request bodies, SSE
 * frames, Prometheus output), and compact JSON written into it
 * (aos_buf_json: jansson's text, at a fraction of its cost).
 *
 * Invariants: ptr is either NULL (len == cap == 0) or points to cap bytes of
 * which the first len are the content, always followed by a '\0' so that ptr
 * may be used as a C string. max (0 = unlimited) caps len: an append that
 * would pass it fails with AOS_ETOOBIG and leaves the buffer unchanged. */
#ifndef AOS_BUF_H
#define AOS_BUF_H

#include <jansson.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *ptr;
    size_t len;
    size_t cap;
    size_t max; /* 0: no limit */
} aos_buf_t;

#define AOS_BUF_INIT                                                                               \
    {                                                                                              \
        NULL, 0, 0, 0                                                                              \
    }

void aos_buf_init(aos_buf_t *b, size_t max);
/* Frees the content; the buffer may be reused after aos_buf_init. */
void aos_buf_release(aos_buf_t *b);
/* Empties the buffer, keeping its memory. */
void aos_buf_reset(aos_buf_t *b);
int aos_buf_grow(aos_buf_t *b, size_t extra);
int aos_buf_append(aos_buf_t *b, const void *data, size_t n);
int aos_buf_puts(aos_buf_t *b, const char *s);
int aos_buf_printf(aos_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
int aos_buf_vprintf(aos_buf_t *b, const char *fmt, va_list ap);
/* Appends the decimal digits of v, as printf's %lld (and JSON) writes them. */
int aos_buf_int(aos_buf_t *b, int64_t v);
/* Appends the compact JSON text of v, byte for byte what jansson's
 * json_dumpb(v, ..., JSON_COMPACT | JSON_ENCODE_ANY) writes (members in
 * their order, strings escaped as jansson does, UTF-8 as it is), at a
 * fraction of its cost: no loop check by printf'd addresses, no callback
 * per token. 0, or AOS_ENOMEM / AOS_ETOOBIG / AOS_EINVAL (a real jansson
 * refuses, or a value nested deeper than jansson's parser reads back:
 * 2048) with the buffer as it was. */
int aos_buf_json(aos_buf_t *b, const json_t *v);
/* Appends s[0..n) as a JSON string, escaped as aos_buf_json does. */
int aos_buf_json_str(aos_buf_t *b, const char *s, size_t n);
/* The same text as a new string (free() it; *len its length when len is
 * not NULL): what json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) returns.
 * NULL for a NULL v or on failure. */
char *aos_buf_json_text(const json_t *v, size_t *len);
/* Drops the first n bytes (n <= len). */
void aos_buf_consume(aos_buf_t *b, size_t n);
/* Appends at most max bytes of s to the string out[0..*len) in cap bytes
 * (cap >= 1, *len < cap), cutting where snprintf would and keeping out
 * NUL-terminated: short names built on a hot path without snprintf's
 * format parsing. */
static inline void aos_str_put(char *out, size_t cap, size_t *len, const char *s, size_t max)
{
    size_t k = *len;
    while (*s && max-- && k + 1 < cap)
        out[k++] = *s++;
    out[k] = '\0';
    *len = k;
}

/* Hands the content to the caller (free() it); the buffer is left empty.
 * Returns an empty allocated string for an empty buffer, NULL on ENOMEM. */
char *aos_buf_detach(aos_buf_t *b, size_t *len);

#endif
