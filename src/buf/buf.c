/* buf.c - growable byte buffer; see buf.h for the invariants. */
#include "buf/buf.h"
#include "err/err.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void aos_buf_init(aos_buf_t *b, size_t max)
{
    b->ptr = NULL;
    b->len = b->cap = 0;
    b->max = max;
}

void aos_buf_release(aos_buf_t *b)
{
    free(b->ptr);
    b->ptr = NULL;
    b->len = b->cap = 0;
}

void aos_buf_reset(aos_buf_t *b)
{
    b->len = 0;
    if (b->ptr)
        b->ptr[0] = '\0';
}

int aos_buf_grow(aos_buf_t *b, size_t extra)
{
    if (b->max && (extra > b->max || b->len > b->max - extra))
        return AOS_ETOOBIG;
    if (extra > SIZE_MAX / 2 - b->len - 1)
        return AOS_ENOMEM;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    char *p = realloc(b->ptr, cap);
    if (!p)
        return AOS_ENOMEM;
    b->ptr = p;
    b->cap = cap;
    return 0;
}

int aos_buf_append(aos_buf_t *b, const void *data, size_t n)
{
    int rc = aos_buf_grow(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->ptr + b->len, data, n);
    b->len += n;
    b->ptr[b->len] = '\0';
    return 0;
}

int aos_buf_puts(aos_buf_t *b, const char *s)
{
    return aos_buf_append(b, s, strlen(s));
}

int aos_buf_vprintf(aos_buf_t *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n < 0)
        return AOS_EINVAL;
    int rc = aos_buf_grow(b, (size_t)n);
    if (rc)
        return rc;
    vsnprintf(b->ptr + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return 0;
}

int aos_buf_printf(aos_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int rc = aos_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

void aos_buf_consume(aos_buf_t *b, size_t n)
{
    if (n >= b->len) {
        aos_buf_reset(b);
        return;
    }
    memmove(b->ptr, b->ptr + n, b->len - n);
    b->len -= n;
    b->ptr[b->len] = '\0';
}

char *aos_buf_detach(aos_buf_t *b, size_t *len)
{
    char *p = b->ptr;
    if (!p) {
        p = calloc(1, 1);
        if (len)
            *len = 0;
        return p;
    }
    if (len)
        *len = b->len;
    b->ptr = NULL;
    b->len = b->cap = 0;
    return p;
}
