/* span.c - spans and how they reach the store (see trace.h).
 *
 * A span lives on the loop thread while it is open; aos_span_end stamps
 * its end and appends it to the service's queue. The queue is written in
 * batches: a batch leaves when AOS_TRACE_BATCH spans wait, or flush_ms
 * after the first span of a quiet period, or when a batch in flight comes
 * back (group commit: what arrived meanwhile goes in one transaction). At
 * most two batches are in flight, one being inserted and one waiting, so
 * the worker never waits for the loop and the loop never waits for the
 * disk. A span's attributes are kept as the JSON text stored, written as
 * they are set (redacted, and a key set again takes its new value in its
 * place, as in a JSON object); the worker turns its events and links into
 * JSON text and inserts the batch; the span objects go back to the loop to
 * be freed. Ended spans are immutable, so the worker reads them without a
 * lock: the store's queue orders the hand-over.
 *
 * The resource (who made the spans: aosd, its version, this process) is
 * added by the first batch, on the worker, and named by every span of this
 * process.
 *
 * Error traces are kept whole whatever the sampling (tail-based keep, as
 * Tempo's and the OpenTelemetry Collector's tail samplers do): a span of
 * a trace that is not sampled still records (span->tail), and when it
 * ends it waits in the trace's bucket instead of the queue. A span whose
 * status becomes ERROR (or aos_trace_keep naming the trace) marks its
 * trace kept: the bucket's spans go to the queue, and the trace's spans
 * that end later go there at once. Buckets leave oldest first, dropped,
 * once the held spans pass TAIL_SPANS or about TAIL_BYTES, or a bucket is
 * TAIL_HOLD_MS old (checked as spans arrive). The kept traces are a ring
 * of KEEP_MAX ids, each for KEEP_TTL_MS. A kept trace's spans are stored
 * with the W3C sampled flag set (the exporter sends them); the flag sent
 * on to the servers called was already cleared. The cost: the spans of
 * traces not sampled build their attributes as the sampled ones do. */
#include "trace/internal.h"
#include "buf/buf.h"

#include "log/log.h"
#include "redact/redact.h"
#include "utf8/utf8.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_BUFFER   10000
#define DEFAULT_FLUSH_MS 100
#define BATCHES_INFLIGHT 2
#define RETAIN_CHUNK     10000 /* spans deleted per retention job */
#define TAIL_SPANS       4096  /* spans of unsampled traces held, at most */
#define TAIL_BYTES       (16u << 20)
#define TAIL_HOLD_MS     60000
#define KEEP_MAX         4096 /* traces kept by an error, remembered */
#define KEEP_TTL_MS      (10 * 60 * 1000)

/* An unsampled trace's ended spans, waiting for an error. */
struct tail {
    char trace_id[AOS_TRACE_ID_LEN + 1];
    aos_span_t *head, **last;
    size_t n, bytes;
    uint64_t born_ms;
    struct tail *prev, *next; /* oldest first */
};

struct kept {
    char trace_id[AOS_TRACE_ID_LEN + 1];
    uint64_t at_ms;
};

struct aos_trace_s {
    aos_trace_cfg_t cfg;
    char *resource;      /* the resource's attributes, JSON text */
    int64_t resource_id; /* worker only: the row the first batch added */

    aos_span_t *q_head, **q_tail; /* ended spans waiting for a batch */
    size_t queued;
    size_t inflight; /* spans in batches the worker has not given back */
    int batches;     /* batches in flight */
    uv_timer_t *flush_timer;

    uv_timer_t *retain_timer;
    int retaining;
    int shut;

    aos_metric_t *m_stored, *m_dropped, *m_deleted, *m_buffered;
    aos_trace_stored_fn on_stored; /* the exporter's feed, or NULL */
    void *on_stored_data;
    aos_metric_t *m_server_op; /* mcp_server_operation_duration_seconds */

    /* tail-based keep (see the top) */
    aos_map_t tails; /* trace id -> struct tail */
    struct tail *t_first, *t_last;
    size_t t_spans, t_bytes;
    aos_map_t kept;      /* trace id -> its struct kept in the ring */
    struct kept *k_ring; /* KEEP_MAX */
    size_t k_head, k_n;
    aos_metric_t *m_tail, *m_tail_held;
};

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- values --------------------------------------------------------------- */

/* s as a JSON string of at most max bytes: cut at a character's end,
 * invalid UTF-8 shown as U+FFFD. */
static json_t *text_json(const char *s, size_t max)
{
    size_t n = strlen(s);
    if (n > max)
        n = aos_utf8_trim(s, max);
    if (aos_utf8_valid(s, n))
        return json_stringn_nocheck(s, n); /* checked just now */
    size_t cap = 3 * n + 1;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t m = aos_utf8_scrub(buf, cap, s, n);
    if (m > max)
        m = aos_utf8_trim(buf, max);
    json_t *v = json_stringn(buf, m);
    free(buf);
    return v;
}

/* A malloc'd copy of s as text_json makes it. */
static char *text_copy(const char *s, size_t max)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    if (n > max)
        n = aos_utf8_trim(s, max);
    if (aos_utf8_valid(s, n)) { /* nearly always: no JSON string made */
        char *out = malloc(n + 1);
        if (out) {
            memcpy(out, s, n);
            out[n] = '\0';
        }
        return out;
    }
    json_t *v = text_json(s, max);
    char *out = v ? strdup(json_string_value(v)) : NULL;
    json_decref(v);
    return out;
}

/* Appends value, as text_json makes it and redacted (redact.h) on its
 * own bytes, to out as a JSON string. 0, or -1: out of memory, or a
 * redaction that failed or made invalid UTF-8 (the attribute is then
 * dropped rather than stored unredacted). */
static int put_redacted(aos_buf_t *out, const char *value, size_t max)
{
    size_t n = strlen(value);
    if (n > max)
        n = aos_utf8_trim(value, max);
    const char *t = value;
    char *scrubbed = NULL;
    if (!aos_utf8_valid(value, n)) {
        size_t cap = 3 * n + 1;
        if (!(scrubbed = malloc(cap)))
            return -1;
        n = aos_utf8_scrub(scrubbed, cap, value, n);
        if (n > max)
            n = aos_utf8_trim(scrubbed, max);
        t = scrubbed;
    }
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = aos_redact_text(aos_redact_global(), t, n, &b);
    if (rc == 0)
        rc = aos_buf_json_str(out, t, n) ? -1 : 0; /* valid UTF-8: checked or scrubbed */
    else if (rc == 1)
        rc = aos_utf8_valid(b.ptr ? b.ptr : "", b.len) &&
                     !aos_buf_json_str(out, b.ptr ? b.ptr : "", b.len)
                 ? 0
                 : -1;
    else
        rc = -1;
    aos_buf_release(&b);
    free(scrubbed);
    return rc;
}

/* key as an attribute's name, as text_copy makes it: key itself when it is
 * valid UTF-8 within AOS_TRACE_NAME_MAX (aosd's own names: all), else a
 * copy, left in *copy for the caller to free. NULL: out of memory. */
static const char *attr_key(const char *key, char **copy)
{
    size_t n = strlen(key);
    *copy = NULL;
    if (n <= AOS_TRACE_NAME_MAX && aos_utf8_valid(key, n))
        return key;
    return *copy = text_copy(key, AOS_TRACE_NAME_MAX);
}

static void span_free(aos_span_t *s)
{
    free(s->name);
    free(s->status_message);
    aos_buf_release(&s->attrs);
    free(s->attr);
    json_decref(s->events);
    json_decref(s->links);
    free(s);
}

/* ---- the span API ----------------------------------------------------------- */

/* TraceIdRatioBased: sampled when the trace id's last 16 hex digits, as a
 * number, are below ratio * 2^64 - the same decision for a trace id
 * wherever it is made. */
static void sample(const aos_trace_t *tr, aos_tracectx_t *ctx)
{
    double r = tr->cfg.sample_ratio;
    int keep = 1;
    if (r >= 0 && r < 1) {
        uint64_t v = strtoull(ctx->trace_id + AOS_TRACE_ID_LEN - 16, NULL, 16);
        keep = (double)v < r * 18446744073709551616.0;
    }
    if (keep)
        ctx->flags |= AOS_TRACE_SAMPLED;
    else
        ctx->flags &= (uint8_t)~AOS_TRACE_SAMPLED;
}

/* A sampled span records; one that is not records too while error traces
 * are kept (tail: it waits for its trace's verdict). */
static void set_recording(const aos_trace_t *tr, aos_span_t *s)
{
    int sampled = (s->ctx.flags & AOS_TRACE_SAMPLED) != 0;
    s->tail = !sampled && tr->k_ring;
    s->recording = sampled || s->tail;
}

static void keep_trace(aos_trace_t *tr, const char *trace_id, int *known);

aos_span_t *aos_trace_span_start(aos_trace_t *tr, const aos_tracectx_t *parent, const char *name,
                                 aos_span_kind_t kind)
{
    if (!tr)
        return NULL;
    aos_span_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->tr = tr;
    s->name = text_copy(name, AOS_TRACE_NAME_MAX);
    if (!s->name) {
        free(s);
        return NULL;
    }
    if (parent && parent->trace_id[0] && parent->span_id[0]) {
        memcpy(s->parent_id, parent->span_id, sizeof(s->parent_id));
        s->parent_remote = parent->remote;
    }
    aos_tracectx_child(&s->ctx, parent);
    if (!parent || !parent->trace_id[0]) /* a trace born here: sampled by its id */
        sample(tr, &s->ctx);
    set_recording(tr, s);
    s->kind = kind >= AOS_SPAN_INTERNAL && kind <= AOS_SPAN_CONSUMER ? kind : AOS_SPAN_INTERNAL;
    s->start_ns = now_ns();
    s->start_hr = uv_hrtime();
    return s;
}

const aos_tracectx_t *aos_span_context(const aos_span_t *s)
{
    return s ? &s->ctx : NULL;
}

static uint32_t key_hash(const char *p, size_t n)
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 16777619u;
    return h;
}

/* An attribute being written in place, at the end of its span's text. */
typedef struct {
    size_t was;       /* the text's length before (0, or it ended in "}") */
    size_t off, klen; /* the member's offset, and the length of its "key" */
} attr_w;

/* The text as it was before w began. */
static void attr_abort(aos_span_t *s, const attr_w *w)
{
    aos_buf_t *t = &s->attrs;
    t->len = w->was;
    if (t->ptr) {
        if (w->was)
            t->ptr[w->was - 1] = '}';
        t->ptr[w->was] = '\0';
    }
}

/* Begins an attribute's member at the end of the span's text, in place of
 * its "}": "," (or "{") and "key": with key as text_copy makes a name.
 * 0, or -1 with the text as it was. */
static int attr_begin(aos_span_t *s, const char *key, attr_w *w)
{
    aos_buf_t *t = &s->attrs;
    w->was = t->len;
    if (t->len)
        t->len--; /* the "}" */
    char *copy;
    const char *k = attr_key(key, &copy);
    int rc = !k || aos_buf_append(t, s->nattrs ? "," : "{", 1);
    w->off = t->len;
    rc = rc || aos_buf_json_str(t, k, strlen(k));
    w->klen = t->len - w->off;
    rc = rc || aos_buf_append(t, ":", 1);
    free(copy);
    if (rc)
        attr_abort(s, w);
    return rc ? -1 : 0;
}

/* Ends the member w began (its value written after it), within the span's
 * attribute limit: a key already set keeps its place and takes the new
 * value, as a JSON object's member would. */
static void attr_end(aos_span_t *s, const attr_w *w)
{
    aos_buf_t *t = &s->attrs;
    size_t mlen = t->len - w->off;
    const char *m = t->ptr + w->off;
    uint32_t h = key_hash(m, w->klen);
    for (uint32_t i = 0; i < s->nattrs; i++) {
        struct aos__span_attr *a = &s->attr[i];
        if (a->hash != h || a->klen != w->klen || memcmp(t->ptr + a->off, m, w->klen) != 0)
            continue;
        /* set again: the text is made anew, the new member in the old one's
         * place (the text before w is t[0 .. was - 1) and its "}") */
        aos_buf_t n;
        aos_buf_init(&n, 0);
        size_t end = a->off + a->len;
        if (aos_buf_append(&n, t->ptr, a->off) || aos_buf_append(&n, m, mlen) ||
            aos_buf_append(&n, t->ptr + end, w->was - 1 - end) || aos_buf_append(&n, "}", 1)) {
            aos_buf_release(&n);
            attr_abort(s, w);
            s->dropped_attrs++;
            return;
        }
        uint32_t old = a->len;
        a->len = (uint32_t)mlen;
        for (uint32_t j = i + 1; j < s->nattrs; j++)
            s->attr[j].off = s->attr[j].off - old + a->len;
        aos_buf_release(t);
        *t = n;
        return;
    }
    if (s->nattrs >= AOS_TRACE_ATTRS || aos_buf_append(t, "}", 1)) {
        attr_abort(s, w);
        s->dropped_attrs++;
        return;
    }
    if (s->nattrs == s->cap_attrs) {
        uint32_t cap = s->cap_attrs ? 2 * s->cap_attrs : 8;
        struct aos__span_attr *more = realloc(s->attr, cap * sizeof(*more));
        if (!more) {
            attr_abort(s, w);
            s->dropped_attrs++;
            return;
        }
        s->attr = more;
        s->cap_attrs = cap;
    }
    s->attr[s->nattrs++] =
        (struct aos__span_attr){h, (uint32_t)w->off, (uint32_t)mlen, (uint32_t)w->klen};
}

/* Sets key to v (stolen), within the span's attribute limit. */
static void set_attr(aos_span_t *s, const char *key, json_t *v)
{
    if (!s || !s->recording) {
        json_decref(v);
        return;
    }
    attr_w w;
    /* no key, or a value JSON cannot hold (NaN) */
    if (!key || !*key || !v || attr_begin(s, key, &w)) {
        s->dropped_attrs++;
    } else if (aos_buf_json(&s->attrs, v)) {
        attr_abort(s, &w);
        s->dropped_attrs++;
    } else {
        attr_end(s, &w);
    }
    json_decref(v);
}

/* What the MCP server metric needs of a SERVER span (internal.h). */
static void metric_attr(aos_span_t *s, const char *key, const char *value)
{
    if (!strcmp(key, AOS_ATTR_MCP_METHOD_NAME))
        s->m_method = aos_metrics_mcp_method(value);
    else if (!strcmp(key, AOS_ATTR_ERROR_TYPE))
        snprintf(s->m_error, sizeof(s->m_error), "%s", value);
    else if (!strcmp(key, AOS_ATTR_NETWORK_TRANSPORT))
        s->m_transport = !strcmp(value, "tcp") ? "tcp" : !strcmp(value, "pipe") ? "pipe" : "other";
}

/* The setters build no value for a span that is not recorded: most spans
 * are not, and each would cost an allocation for nothing. A literal of
 * aosd's own (valid UTF-8, within the limit) is written as it is; any
 * other value, and a "literal" that is not one, redacted. */
static void set_text(aos_span_t *s, const char *key, const char *value, int literal)
{
    if (s && s->kind == AOS_SPAN_SERVER && key && value)
        metric_attr(s, key, value);
    if (!s || !s->recording || !value)
        return;
    size_t n = 0;
    if (literal) {
        n = strlen(value);
        literal = n <= AOS_TRACE_VALUE_MAX && aos_utf8_valid(value, n);
    }
    attr_w w;
    if (!key || !*key || attr_begin(s, key, &w)) {
        s->dropped_attrs++;
    } else if (literal ? aos_buf_json_str(&s->attrs, value, n)
                       : put_redacted(&s->attrs, value, AOS_TRACE_VALUE_MAX)) {
        attr_abort(s, &w);
        s->dropped_attrs++;
    } else {
        attr_end(s, &w);
    }
}

void aos_span_set_str(aos_span_t *s, const char *key, const char *value)
{
    set_text(s, key, value, 0);
}

void aos_span_set_const(aos_span_t *s, const char *key, const char *value)
{
    set_text(s, key, value, 1);
}

void aos_span_set_int(aos_span_t *s, const char *key, int64_t value)
{
    if (!s || !s->recording)
        return;
    attr_w w;
    if (!key || !*key || attr_begin(s, key, &w)) {
        s->dropped_attrs++;
    } else if (aos_buf_int(&s->attrs, value)) { /* as aos_buf_json writes an integer */
        attr_abort(s, &w);
        s->dropped_attrs++;
    } else {
        attr_end(s, &w);
    }
}

void aos_span_set_double(aos_span_t *s, const char *key, double value)
{
    /* JSON has no NaN or infinity; jansson refuses them */
    if (s && s->recording)
        set_attr(s, key, json_real(value));
}

void aos_span_set_bool(aos_span_t *s, const char *key, int value)
{
    if (s && s->recording)
        set_attr(s, key, json_boolean(value));
}

void aos_span_set_session(aos_span_t *s, const char *session_id)
{
    if (!s || !s->recording || !session_id)
        return;
    unsigned char d[16];
    char hex[sizeof(d) * 2 + 1];
    crypto_generichash(d, sizeof(d), (const unsigned char *)session_id, strlen(session_id), NULL,
                       0);
    sodium_bin2hex(hex, sizeof(hex), d, sizeof(d));
    aos_span_set_str(s, AOS_ATTR_MCP_SESSION_ID, hex);
}

void aos_span_set_status(aos_span_t *s, aos_span_status_t code, const char *message)
{
    if (!s || !s->recording || code < AOS_SPAN_UNSET || code > AOS_SPAN_ERROR)
        return;
    if (code == AOS_SPAN_ERROR && s->tr->k_ring) /* the whole trace is kept */
        keep_trace(s->tr, s->ctx.trace_id, NULL);
    s->status = code;
    free(s->status_message);
    /* OTLP: the message is only for ERROR */
    s->status_message =
        code == AOS_SPAN_ERROR && message ? text_copy(message, AOS_TRACE_VALUE_MAX) : NULL;
    aos_buf_t b; /* redacted (redact.h) */
    aos_buf_init(&b, 0);
    if (s->status_message && aos_redact_text(aos_redact_global(), s->status_message,
                                             strlen(s->status_message), &b) == 1) {
        free(s->status_message);
        s->status_message = aos_buf_detach(&b, NULL);
    }
    aos_buf_release(&b);
}

void aos_span_set_error(aos_span_t *s, const char *type, const char *message)
{
    if (!s)
        return;
    aos_span_set_str(s, AOS_ATTR_ERROR_TYPE, type && *type ? type : "_OTHER");
    aos_span_set_status(s, AOS_SPAN_ERROR, message);
}

/* Appends item (stolen) to *list within max, or counts it in *dropped. */
static void append_limited(json_t **list, json_t *item, size_t max, uint32_t *dropped)
{
    if (!item || (!*list && !(*list = json_array())) || json_array_size(*list) >= max) {
        json_decref(item);
        (*dropped)++;
        return;
    }
    json_array_append_new(*list, item);
}

/* attrs (stolen) if it is an object of at most AOS_TRACE_ATTRS scalar
 * values, else an empty object. */
static json_t *scalar_attrs(json_t *attrs)
{
    if (!attrs)
        return json_object();
    int ok = json_is_object(attrs) && json_object_size(attrs) <= AOS_TRACE_ATTRS;
    if (ok) {
        const char *k;
        json_t *v;
        json_object_foreach(attrs, k, v)
        {
            if (!json_is_string(v) && !json_is_number(v) && !json_is_boolean(v))
                ok = 0;
        }
    }
    if (!ok) {
        json_decref(attrs);
        return json_object();
    }
    return attrs;
}

void aos_span_add_event(aos_span_t *s, const char *name, json_t *attrs)
{
    if (!s || !s->recording) {
        json_decref(attrs);
        return;
    }
    json_t *a = scalar_attrs(attrs);
    json_t *n = text_json(name ? name : "", AOS_TRACE_NAME_MAX);
    json_t *ev = NULL;
    if (a && n)
        ev = json_pack("{s:I, s:O, s:O}", "time_unix_nano", (json_int_t)now_ns(), "name", n,
                       "attributes", a);
    json_decref(a);
    json_decref(n);
    append_limited(&s->events, ev, AOS_TRACE_EVENTS, &s->dropped_events);
}

void aos_span_add_link(aos_span_t *s, const aos_tracectx_t *ctx)
{
    if (!s || !s->recording || !aos_tracectx_valid(ctx))
        return;
    json_t *l = json_pack(
        "{s:s, s:s, s:i, s:{}}", "trace_id", ctx->trace_id, "span_id", ctx->span_id, "flags",
        ctx->flags | AOS__SPAN_FLAG_HAS_IS_REMOTE | (ctx->remote ? AOS__SPAN_FLAG_IS_REMOTE : 0),
        "attributes");
    if (l && ctx->tracestate[0])
        json_object_set_new(l, "trace_state", json_string(ctx->tracestate));
    append_limited(&s->links, l, AOS_TRACE_LINKS, &s->dropped_links);
}

/* ---- the queue and its batches ---------------------------------------------- */

struct batch {
    aos_trace_t *tr;
    aos_span_t *spans; /* the list, linked by next */
    size_t n;
    aos_store_span_t *rows;
    char **texts;  /* JSON texts made on the worker: 3 per span */
    json_t **json; /* what they were made from: 3 per span, borrowed; only
                      when someone is fed the stored spans (on_stored) */
};

static void drop(aos_trace_t *tr, size_t n, const char *reason)
{
    if (tr->m_dropped && n)
        aos_metric_add(tr->m_dropped, (double)n, reason);
}

static char *dump_or_null(const json_t *v)
{
    return v && json_array_size(v) + json_object_size(v) ? aos_buf_json_text(v, NULL) : NULL;
}

static int batch_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct batch *b = arg;
    aos_trace_t *tr = b->tr;
    int rc;
    if (!tr->resource_id &&
        (rc = aos_store_span_resource_add(st, tr->resource, &tr->resource_id, err)) < 0)
        return rc;
    b->rows = calloc(b->n, sizeof(*b->rows));
    b->texts = calloc(b->n * 3, sizeof(*b->texts));
    /* on_stored is set while aosd is wired, before the first batch */
    b->json = tr->on_stored ? calloc(b->n * 3, sizeof(*b->json)) : NULL;
    if (!b->rows || !b->texts || (tr->on_stored && !b->json))
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    size_t i = 0;
    for (aos_span_t *s = b->spans; s; s = s->next, i++) {
        aos_store_span_t *r = &b->rows[i];
        char **t = &b->texts[3 * i];
        /* the attributes' text was made as they were set (t[0] stays NULL) */
        const char *attrs = s->attrs.len ? s->attrs.ptr : NULL;
        t[1] = dump_or_null(s->events);
        t[2] = dump_or_null(s->links);
        if (b->json) { /* the feed reads values: the attributes parsed (owned) */
            b->json[3 * i] = attrs ? json_loads(attrs, 0, NULL) : NULL;
            b->json[3 * i + 1] = t[1] ? s->events : NULL;
            b->json[3 * i + 2] = t[2] ? s->links : NULL;
        }
        r->trace_id = s->ctx.trace_id;
        r->span_id = s->ctx.span_id;
        r->parent_span_id = s->parent_id[0] ? s->parent_id : NULL;
        r->trace_state = s->ctx.tracestate[0] ? s->ctx.tracestate : NULL;
        r->flags = s->ctx.flags | AOS__SPAN_FLAG_HAS_IS_REMOTE |
                   (s->parent_remote ? AOS__SPAN_FLAG_IS_REMOTE : 0);
        r->name = s->name;
        r->kind = (int)s->kind;
        r->start_ns = s->start_ns;
        r->end_ns = s->end_ns;
        r->status_code = (int)s->status;
        r->status_message = s->status_message;
        r->attributes = attrs;
        r->events = t[1];
        r->links = t[2];
        r->dropped_attributes = s->dropped_attrs;
        r->dropped_events = s->dropped_events;
        r->dropped_links = s->dropped_links;
        r->resource_id = tr->resource_id;
    }
    return aos_store_spans_insert(st, b->rows, b->n, err);
}

static void flush(aos_trace_t *tr, int all);

static void batch_free(struct batch *b)
{
    for (aos_span_t *s = b->spans, *next; s; s = next) {
        next = s->next;
        span_free(s);
    }
    for (size_t i = 0; b->texts && i < 3 * b->n; i++)
        free(b->texts[i]);
    for (size_t i = 0; b->json && i < b->n; i++)
        json_decref(b->json[3 * i]); /* the attributes' (batch_run) */
    free(b->texts);
    free(b->json);
    free(b->rows);
    free(b);
}

static void batch_done(int status, const aos_err_t *err, void *arg)
{
    struct batch *b = arg;
    aos_trace_t *tr = b->tr;
    tr->batches--;
    tr->inflight -= b->n;
    if (status) {
        aos_log_warn("trace", "%zu spans were not stored: %s", b->n, aos_err_msg(err));
        drop(tr, b->n, "store");
    } else {
        if (tr->m_stored)
            aos_metric_add(tr->m_stored, (double)b->n);
        if (tr->on_stored && b->rows)
            tr->on_stored(b->rows, b->json, b->n, tr->resource, tr->on_stored_data);
    }
    batch_free(b);
    if (tr->queued)
        flush(tr, 0); /* what arrived while the worker was busy */
}

/* Submits the queue in batches: at most BATCHES_INFLIGHT in flight, unless
 * all (or after shutdown): then everything goes now. */
static void flush(aos_trace_t *tr, int all)
{
    while (tr->queued && (tr->batches < BATCHES_INFLIGHT || all || tr->shut)) {
        struct batch *b = calloc(1, sizeof(*b));
        if (!b)
            return; /* the timer or the next batch tries again */
        b->tr = tr;
        b->spans = tr->q_head;
        aos_span_t *last = tr->q_head;
        b->n = 1;
        while (last->next && b->n < AOS_TRACE_BATCH) {
            last = last->next;
            b->n++;
        }
        tr->q_head = last->next;
        last->next = NULL;
        if (!tr->q_head)
            tr->q_tail = &tr->q_head;
        tr->queued -= b->n;
        if (aos_store_submit(tr->cfg.store, batch_run, batch_done, b) < 0) {
            drop(tr, b->n, "store");
            batch_free(b);
            continue;
        }
        tr->batches++;
        tr->inflight += b->n;
    }
    if (tr->flush_timer && !tr->queued)
        uv_timer_stop(tr->flush_timer);
}

void aos__trace_flush(aos_trace_t *tr)
{
    if (tr->queued)
        flush(tr, 1);
}

static void on_flush_timer(uv_timer_t *t)
{
    if (t->data)
        flush(t->data, 0);
}

/* ---- tail-based keep -------------------------------------------------------------- */

static void queue(aos_trace_t *tr, aos_span_t *s);

static uint64_t now_ms(const aos_trace_t *tr)
{
    return uv_now(tr->cfg.loop);
}

/* What a held span costs, about: the struct, its texts and values. */
static size_t span_bytes(const aos_span_t *s)
{
    size_t n =
        sizeof(*s) + strlen(s->name) + 1 + (s->status_message ? strlen(s->status_message) : 0);
    n += s->attrs.len + s->cap_attrs * sizeof(*s->attr);
    return n + (json_array_size(s->events) + json_array_size(s->links)) * 256;
}

static void tail_unlink(aos_trace_t *tr, struct tail *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        tr->t_first = t->next;
    if (t->next)
        t->next->prev = t->prev;
    else
        tr->t_last = t->prev;
    aos_map_del(&tr->tails, t->trace_id);
    tr->t_spans -= t->n;
    tr->t_bytes -= t->bytes;
}

static void tail_drop(aos_trace_t *tr, struct tail *t)
{
    tail_unlink(tr, t);
    if (tr->m_tail && t->n)
        aos_metric_add(tr->m_tail, (double)t->n, "dropped");
    for (aos_span_t *s = t->head, *next; s; s = next) {
        next = s->next;
        span_free(s);
    }
    free(t);
}

static void tail_add(aos_trace_t *tr, aos_span_t *s)
{
    struct tail *t = aos_map_get(&tr->tails, s->ctx.trace_id);
    if (!t) {
        if (!(t = calloc(1, sizeof(*t)))) {
            span_free(s);
            return;
        }
        memcpy(t->trace_id, s->ctx.trace_id, sizeof(t->trace_id));
        t->last = &t->head;
        t->born_ms = now_ms(tr);
        if (aos_map_put(&tr->tails, t->trace_id, t)) {
            free(t);
            span_free(s);
            return;
        }
        t->prev = tr->t_last;
        if (tr->t_last)
            tr->t_last->next = t;
        else
            tr->t_first = t;
        tr->t_last = t;
    }
    size_t bytes = span_bytes(s);
    s->next = NULL;
    *t->last = s;
    t->last = &s->next;
    t->n++;
    t->bytes += bytes;
    tr->t_spans++;
    tr->t_bytes += bytes;
    uint64_t now = now_ms(tr);
    while (tr->t_first && (tr->t_spans > TAIL_SPANS || tr->t_bytes > TAIL_BYTES ||
                           now - tr->t_first->born_ms > TAIL_HOLD_MS))
        tail_drop(tr, tr->t_first);
}

static int kept_has(aos_trace_t *tr, const char *trace_id)
{
    const struct kept *k = aos_map_get(&tr->kept, trace_id);
    return k && now_ms(tr) - k->at_ms <= KEEP_TTL_MS;
}

/* Marks trace_id kept and queues its held spans; *known (if not NULL):
 * spans of it are stored or on their way (it was kept already, or had
 * held spans). */
static void keep_trace(aos_trace_t *tr, const char *trace_id, int *known)
{
    uint64_t now = now_ms(tr);
    int was = kept_has(tr, trace_id);
    if (!was) {
        while (tr->k_n &&
               (tr->k_n == KEEP_MAX || now - tr->k_ring[tr->k_head].at_ms > KEEP_TTL_MS)) {
            struct kept *old = &tr->k_ring[tr->k_head];
            if (aos_map_get(&tr->kept, old->trace_id) == old)
                aos_map_del(&tr->kept, old->trace_id);
            tr->k_head = (tr->k_head + 1) % KEEP_MAX;
            tr->k_n--;
        }
        struct kept *k = &tr->k_ring[(tr->k_head + tr->k_n) % KEEP_MAX];
        snprintf(k->trace_id, sizeof(k->trace_id), "%s", trace_id);
        k->at_ms = now;
        if (aos_map_put(&tr->kept, k->trace_id, k) == 0)
            tr->k_n++;
    }
    struct tail *t = aos_map_get(&tr->tails, trace_id);
    if (known)
        *known = was || t;
    if (!t)
        return;
    tail_unlink(tr, t);
    if (tr->m_tail)
        aos_metric_add(tr->m_tail, (double)t->n, "kept");
    for (aos_span_t *s = t->head, *next; s; s = next) {
        next = s->next;
        s->ctx.flags |= AOS_TRACE_SAMPLED;
        queue(tr, s);
    }
    free(t);
}

int aos_trace_keep(aos_trace_t *tr, const char *trace_id)
{
    if (!tr || !trace_id || strlen(trace_id) != AOS_TRACE_ID_LEN)
        return 0;
    int known = 0;
    if (tr->k_ring) /* keeping on */
        keep_trace(tr, trace_id, &known);
    if (!known) { /* a trace born here is sampled by its id (a caller's
                   * traceparent may have decided otherwise: trace.h) */
        aos_tracectx_t c;
        memset(&c, 0, sizeof(c));
        memcpy(c.trace_id, trace_id, AOS_TRACE_ID_LEN);
        sample(tr, &c);
        known = (c.flags & AOS_TRACE_SAMPLED) != 0;
    }
    return known;
}

void aos_span_end(aos_span_t *s)
{
    if (!s)
        return;
    aos_trace_t *tr = s->tr;
    if (s->m_method && tr->m_server_op) /* OpenTelemetry's mcp.server.operation.duration */
        aos_metric_observe(tr->m_server_op, (double)(uv_hrtime() - s->start_hr) / 1e9, s->m_method,
                           s->m_error, s->m_transport ? s->m_transport : "");
    if (!s->recording) {
        span_free(s);
        return;
    }
    s->end_ns = s->start_ns + (int64_t)(uv_hrtime() - s->start_hr);
    if (s->tail) {
        if (!kept_has(tr, s->ctx.trace_id)) {
            tail_add(tr, s);
            return;
        }
        s->ctx.flags |= AOS_TRACE_SAMPLED;
        if (tr->m_tail)
            aos_metric_add(tr->m_tail, 1, "kept");
    }
    queue(tr, s);
}

static void queue(aos_trace_t *tr, aos_span_t *s)
{
    if (tr->queued + tr->inflight >= tr->cfg.buffer) {
        drop(tr, 1, "buffer");
        span_free(s);
        return;
    }
    s->next = NULL;
    *tr->q_tail = s;
    tr->q_tail = &s->next;
    tr->queued++;
    if (tr->shut || tr->queued >= AOS_TRACE_BATCH)
        flush(tr, 0);
    else if (tr->flush_timer && !uv_is_active((uv_handle_t *)tr->flush_timer))
        uv_timer_start(tr->flush_timer, on_flush_timer, tr->cfg.flush_ms, 0);
}

/* ---- request spans ------------------------------------------------------------ */

static void request_span_end(void *span, int aborted)
{
    aos_span_t *s = span;
    if (aborted)
        aos_span_add_event(s, "client_closed", NULL);
    aos_span_end(s);
}

aos_span_t *aos_trace_request_span(aos_trace_t *tr, aos_http_req_t *req,
                                   const aos_tracectx_t *parent, const char *name)
{
    if (!tr)
        return NULL;
    if (aos_http_span(req))
        return aos_http_span(req);
    const aos_tracectx_t *http = aos_http_trace(req);
    aos_span_t *s = aos_trace_span_start(tr, parent ? parent : http, name, AOS_SPAN_SERVER);
    if (!s)
        return NULL;
    if (!parent && !http->remote) { /* no caller's context: the trace is born here */
        sample(tr, &s->ctx);
        set_recording(tr, s);
    }
    if (parent && http->remote && strcmp(http->span_id, parent->span_id) != 0)
        aos_span_add_link(s, http);
    aos_span_set_str(s, AOS_ATTR_CLIENT_ADDRESS, aos_http_peer(req));
    aos_http_set_traceparent(req, &s->ctx);
    aos_http_set_span(req, s, request_span_end);
    return s;
}

aos_span_t *aos_trace_request_span_of(aos_http_req_t *req)
{
    return req ? aos_http_span(req) : NULL;
}

/* ---- retention ------------------------------------------------------------------ */

struct retain {
    aos_trace_t *tr;
    int64_t before_ns, keep, deleted;
};

static int retain_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct retain *r = arg;
    return aos_store_spans_retain(st, r->before_ns, r->keep, RETAIN_CHUNK, &r->deleted, err);
}

static void retain_start(aos_trace_t *tr);

static void retain_done(int status, const aos_err_t *err, void *arg)
{
    struct retain *r = arg;
    aos_trace_t *tr = r->tr;
    tr->retaining = 0;
    if (status) {
        aos_log_warn("trace", "span retention failed: %s", aos_err_msg(err));
    } else if (r->deleted) {
        if (tr->m_deleted)
            aos_metric_add(tr->m_deleted, (double)r->deleted);
        if (r->deleted == RETAIN_CHUNK)
            retain_start(tr); /* more to do, behind the jobs waiting now */
    }
    free(r);
}

static void retain_start(aos_trace_t *tr)
{
    const aos_trace_cfg_t *c = &tr->cfg;
    if (tr->retaining || tr->shut || (!c->retention_days && !c->retention_spans))
        return;
    struct retain *r = calloc(1, sizeof(*r));
    if (!r)
        return;
    r->tr = tr;
    /* beyond 100,000 days nothing is old enough (and ns would overflow) */
    if (c->retention_days && c->retention_days < 100000)
        r->before_ns = now_ns() - (int64_t)c->retention_days * 86400 * 1000000000;
    r->keep = c->retention_spans > INT64_MAX / 2 ? 0 : (int64_t)c->retention_spans;
    if ((!r->before_ns && !r->keep) || aos_store_submit(c->store, retain_run, retain_done, r) < 0) {
        free(r);
        return;
    }
    tr->retaining = 1;
}

static void on_retain_timer(uv_timer_t *t)
{
    if (t->data)
        retain_start(t->data);
}

/* ---- life ------------------------------------------------------------------------- */

static void collect(aos_metrics_t *m, void *data)
{
    aos_trace_t *tr = data;
    aos_metric_set(tr->m_buffered, (double)(tr->queued + tr->inflight));
    aos_metric_set(tr->m_tail_held, (double)tr->t_spans);
}

static uv_timer_t *timer_new(aos_trace_t *tr)
{
    uv_timer_t *t = malloc(sizeof(*t));
    if (!t)
        return NULL;
    uv_timer_init(tr->cfg.loop, t);
    t->data = tr;
    uv_unref((uv_handle_t *)t);
    return t;
}

static void close_handle(uv_timer_t *t)
{
    if (t) {
        t->data = NULL;
        uv_close((uv_handle_t *)t, (uv_close_cb)free);
    }
}

/* The resource of this process: service.name, .version, .instance.id,
 * host.name, process.pid. */
static char *resource_text(const char *version)
{
    char instance[AOS_TRACE_ID_LEN + 1], host[256] = "";
    aos_tracectx_random_id(instance, AOS_TRACE_ID_LEN);
    json_t *r = json_pack("{s:s, s:s, s:s, s:I}", "service.name", "aosd", "service.version",
                          version ? version : "", "service.instance.id", instance, "process.pid",
                          (json_int_t)getpid());
    if (r && gethostname(host, sizeof(host) - 1) == 0 && host[0])
        json_object_set_new(r, "host.name", text_json(host, sizeof(host) - 1));
    char *text = r ? json_dumps(r, JSON_COMPACT) : NULL;
    json_decref(r);
    return text;
}

int aos_trace_new(aos_trace_t **out, const aos_trace_cfg_t *cfg, aos_err_t *err)
{
    *out = NULL;
    if (!cfg->loop || !cfg->store)
        return aos_err_set(err, AOS_EINVAL, "tracing needs a loop and a store");
    aos_trace_t *tr = calloc(1, sizeof(*tr));
    if (!tr)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    tr->cfg = *cfg;
    tr->cfg.version = NULL; /* not kept: it is in the resource */
    if (!tr->cfg.buffer)
        tr->cfg.buffer = DEFAULT_BUFFER;
    if (!tr->cfg.flush_ms)
        tr->cfg.flush_ms = DEFAULT_FLUSH_MS;
    if (!tr->cfg.retention_check_s)
        tr->cfg.retention_check_s = 60;
    tr->q_tail = &tr->q_head;
    aos_map_init(&tr->tails);
    aos_map_init(&tr->kept);
    if (!cfg->keep_errors_off && !(tr->k_ring = calloc(KEEP_MAX, sizeof(*tr->k_ring)))) {
        aos_trace_free(tr);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    tr->resource = resource_text(cfg->version);
    tr->flush_timer = timer_new(tr);
    tr->retain_timer = timer_new(tr);
    if (!tr->resource || !tr->flush_timer || !tr->retain_timer) {
        aos_trace_free(tr);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    uv_timer_start(tr->retain_timer, on_retain_timer, 1000,
                   (uint64_t)tr->cfg.retention_check_s * 1000);
    if (cfg->metrics) {
        tr->m_stored = aos_metrics_counter(cfg->metrics, "aos_trace_spans_stored_total",
                                           "Spans written to the store", NULL);
        tr->m_dropped = aos_metrics_counter(
            cfg->metrics, "aos_trace_spans_dropped_total",
            "Spans lost: the write buffer was full (buffer) or the insert failed (store)",
            "reason");
        tr->m_deleted = aos_metrics_counter(cfg->metrics, "aos_trace_retention_deleted_total",
                                            "Spans deleted by retention", NULL);
        tr->m_buffered = aos_metrics_gauge(cfg->metrics, "aos_trace_spans_buffered",
                                           "Spans ended and not yet written", NULL);
        static const double mcp_bounds[] = {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1,
                                            2,    5,    10,   30,  60,  120, 300};
        tr->m_server_op = aos_metrics_histogram(
            cfg->metrics, "mcp_server_operation_duration_seconds",
            "MCP requests aosd served, as OpenTelemetry's mcp.server.operation.duration "
            "(from the spans it records)",
            "mcp_method_name,error_type,network_transport", mcp_bounds,
            sizeof(mcp_bounds) / sizeof(mcp_bounds[0]));
        tr->m_tail = aos_metrics_counter(
            cfg->metrics, "aos_trace_tail_spans_total",
            "Spans of traces not sampled, held for an error: stored (kept: the trace had an "
            "error or was named) or dropped",
            "outcome");
        tr->m_tail_held = aos_metrics_gauge(cfg->metrics, "aos_trace_tail_spans_held",
                                            "Spans of traces not sampled held now", NULL);
        aos_metrics_on_collect(cfg->metrics, collect, tr);
    }
    *out = tr;
    return 0;
}

void aos_trace_shutdown(aos_trace_t *tr)
{
    if (!tr || tr->shut)
        return;
    tr->shut = 1;
    close_handle(tr->flush_timer);
    close_handle(tr->retain_timer);
    tr->flush_timer = tr->retain_timer = NULL;
    while (tr->t_first) /* no error came for them */
        tail_drop(tr, tr->t_first);
    flush(tr, 1); /* the store runs what is queued before it closes */
}

void aos_trace_on_stored(aos_trace_t *tr, aos_trace_stored_fn fn, void *data)
{
    tr->on_stored = fn;
    tr->on_stored_data = data;
}

uv_loop_t *aos__trace_loop(const aos_trace_t *tr)
{
    return tr->cfg.loop;
}

aos_store_t *aos__trace_store(const aos_trace_t *tr)
{
    return tr->cfg.store;
}

void aos_trace_free(aos_trace_t *tr)
{
    if (!tr)
        return;
    aos_trace_shutdown(tr);
    /* spans a closed store refused were counted and freed by flush */
    for (aos_span_t *s = tr->q_head, *next; s; s = next) {
        next = s->next;
        span_free(s);
    }
    while (tr->t_first)
        tail_drop(tr, tr->t_first);
    aos_map_release(&tr->tails);
    aos_map_release(&tr->kept);
    free(tr->k_ring);
    free(tr->resource);
    free(tr);
}
