/* sse.c - text/event-stream parser; see sse.h. */
#include "sse/sse.h"

#include <string.h>

#include "err/err.h"

void aos_sse_init(aos_sse_t *s, size_t max, aos_sse_event_fn fn, void *data)
{
    memset(s, 0, sizeof(*s));
    aos_buf_init(&s->line, max);
    aos_buf_init(&s->data, max);
    s->retry_ms = -1;
    s->on_event = fn;
    s->cb_data = data;
}

void aos_sse_release(aos_sse_t *s)
{
    aos_buf_release(&s->line);
    aos_buf_release(&s->data);
}

static int dispatch(aos_sse_t *s)
{
    int rc = 0;
    if (s->data.len > 0) {
        s->data.len--; /* the "\n" after the last data line */
        s->data.ptr[s->data.len] = '\0';
        rc = s->on_event(s->cb_data, s->type[0] ? s->type : "message", s->data.ptr, s->data.len);
    }
    aos_buf_reset(&s->data);
    s->type[0] = '\0';
    return rc;
}

static int field(aos_sse_t *s, const char *line, size_t n)
{
    if (n == 0)
        return dispatch(s);
    if (line[0] == ':')
        return 0;
    const char *colon = memchr(line, ':', n);
    size_t nlen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = (size_t)(line + n - v);
    if (vlen > 0 && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (nlen == 4 && memcmp(line, "data", 4) == 0) {
        int rc = aos_buf_append(&s->data, v, vlen);
        return rc ? rc : aos_buf_append(&s->data, "\n", 1);
    }
    if (nlen == 5 && memcmp(line, "event", 5) == 0) {
        if (vlen >= sizeof(s->type))
            vlen = sizeof(s->type) - 1;
        memcpy(s->type, v, vlen);
        s->type[vlen] = '\0';
    } else if (nlen == 2 && memcmp(line, "id", 2) == 0) {
        /* an id with NUL is ignored; a longer one than we keep is unusable */
        if (!memchr(v, '\0', vlen) && vlen < sizeof(s->last_id)) {
            memcpy(s->last_id, v, vlen);
            s->last_id[vlen] = '\0';
        }
    } else if (nlen == 5 && memcmp(line, "retry", 5) == 0) {
        long ms = 0;
        size_t i;
        for (i = 0; i < vlen && v[i] >= '0' && v[i] <= '9' && ms < 100000000; i++)
            ms = ms * 10 + (v[i] - '0');
        if (vlen > 0 && i == vlen)
            s->retry_ms = ms;
    }
    return 0;
}

int aos_sse_feed(aos_sse_t *s, const char *p, size_t len)
{
    const char *end = p + len;
    if (!s->started) {
        /* a UTF-8 BOM may open the stream; it can arrive split, so wait for
         * three bytes before deciding */
        static const char bom[] = "\xEF\xBB\xBF";
        size_t have = s->line.len, take = len < 3 - have ? len : 3 - have;
        if (aos_buf_append(&s->line, p, take))
            return AOS_ETOOBIG;
        p += take;
        if (s->line.len < 3 && memcmp(s->line.ptr, bom, s->line.len) == 0)
            return 0;
        s->started = 1;
        if (s->line.len == 3 && memcmp(s->line.ptr, bom, 3) == 0) {
            aos_buf_reset(&s->line);
        } else {
            /* not a BOM: parse those bytes as ordinary input */
            char head[3];
            size_t n = s->line.len;
            memcpy(head, s->line.ptr, n);
            aos_buf_reset(&s->line);
            int rc = aos_sse_feed(s, head, n);
            if (rc)
                return rc;
        }
    }
    while (p < end) {
        if (s->after_cr) {
            s->after_cr = 0;
            if (*p == '\n') {
                p++;
                continue;
            }
        }
        const char *eol = p;
        while (eol < end && *eol != '\n' && *eol != '\r')
            eol++;
        if (eol == end) { /* incomplete line: keep it */
            if (aos_buf_append(&s->line, p, (size_t)(end - p)))
                return AOS_ETOOBIG;
            break;
        }
        int rc;
        if (s->line.len > 0) {
            if (aos_buf_append(&s->line, p, (size_t)(eol - p)))
                return AOS_ETOOBIG;
            rc = field(s, s->line.ptr, s->line.len);
            aos_buf_reset(&s->line);
        } else {
            if (s->line.max && (size_t)(eol - p) > s->line.max)
                return AOS_ETOOBIG;
            rc = field(s, p, (size_t)(eol - p));
        }
        if (rc)
            return rc;
        if (*eol == '\r')
            s->after_cr = 1;
        p = eol + 1;
    }
    return 0;
}
