/* otlp.c - the OTLP codec: ExportTraceServiceRequest and
 * ExportLogsServiceRequest from protobuf (protobuf-c, the C code generated
 * at build time from third_party/opentelemetry-proto) or OTLP/JSON
 * (jansson) into store rows and log entries, and aosd's spans back into a
 * request, plus the responses and gzip. Pure: no state, any thread.
 *
 * Both decoders walk their tree into the same helpers, so that a span
 * means the same whatever its encoding. Attribute values become what the
 * spans table holds (see 0008_spans.sql): strings (valid UTF-8, cut at
 * AOS_OTLP_VALUE_MAX bytes), integers, doubles, booleans; an array or a
 * key-value list becomes its JSON text, bytes their base64. A span is
 * refused (counted in rejected, the first reason kept) when its trace or
 * span id is not 16 / 8 bytes or is all zeros, its parent id is not 8
 * bytes, or its kind or status code is out of range; a whole body is
 * refused only when it does not decode. */
#include "telemetry/internal.h"

#include "utf8/utf8.h"

#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb-c.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any_t;
typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv_t;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array_t;
typedef Opentelemetry__Proto__Common__V1__KeyValueList pb_kvlist_t;
typedef Opentelemetry__Proto__Common__V1__InstrumentationScope pb_scope_t;
typedef Opentelemetry__Proto__Resource__V1__Resource pb_resource_t;
typedef Opentelemetry__Proto__Trace__V1__Span pb_span_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Event pb_event_t;
typedef Opentelemetry__Proto__Trace__V1__Span__Link pb_link_t;
typedef Opentelemetry__Proto__Trace__V1__Status pb_status_t;
typedef Opentelemetry__Proto__Trace__V1__ScopeSpans pb_scope_spans_t;
typedef Opentelemetry__Proto__Trace__V1__ResourceSpans pb_resource_spans_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceRequest pb_treq_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTraceServiceResponse pb_tresp_t;
typedef Opentelemetry__Proto__Collector__Trace__V1__ExportTracePartialSuccess pb_tpartial_t;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest pb_lreq_t;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse pb_lresp_t;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsPartialSuccess pb_lpartial_t;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_log_t;

#define ANY(c) OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_##c

/* ---- small helpers ----------------------------------------------------------- */

/* s (n bytes) as a JSON string of at most max bytes: cut at a character's
 * end, invalid UTF-8 shown as U+FFFD. */
static json_t *text_json(const char *s, size_t n, size_t max)
{
    if (!s)
        return json_string("");
    if (n > max)
        n = aos_utf8_trim(s, max);
    if (aos_utf8_valid(s, n) && !memchr(s, '\0', n))
        return json_stringn(s, n);
    size_t cap = 3 * n + 1;
    char *buf = malloc(cap);
    if (!buf)
        return NULL;
    size_t m = aos_utf8_scrub(buf, cap, s, n);
    for (size_t i = 0; i < m; i++)
        if (buf[i] == '\0')
            buf[i] = '?';
    if (m > max)
        m = aos_utf8_trim(buf, max);
    json_t *v = json_stringn(buf, m);
    free(buf);
    return v;
}

static char *text_dup(const char *s, size_t n, size_t max)
{
    json_t *v = text_json(s, n, max);
    char *out = v ? strdup(json_string_value(v)) : NULL;
    json_decref(v);
    return out;
}

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i])
            return 0;
    return 1;
}

static void hex_of(const unsigned char *p, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[p[i] >> 4];
        out[2 * i + 1] = d[p[i] & 15];
    }
    out[2 * n] = '\0';
}

/* hex (2*n digits, any case) into p; -1 if it is not that. */
static int hex_to(const char *hex, size_t len, unsigned char *p, size_t n)
{
    if (!hex || len != 2 * n)
        return -1;
    for (size_t i = 0; i < 2 * n; i++) {
        char c = hex[i];
        int v = c >= '0' && c <= '9'   ? c - '0'
                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                       : -1;
        if (v < 0)
            return -1;
        if (i % 2)
            p[i / 2] = (unsigned char)(p[i / 2] | v);
        else
            p[i / 2] = (unsigned char)(v << 4);
    }
    return 0;
}

static void reject(int64_t *rejected, char *msg, size_t cap, const char *what, size_t i,
                   const char *why)
{
    if (!*rejected)
        snprintf(msg, cap, "%s[%zu]: %s", what, i, why);
    (*rejected)++;
}

/* ---- attribute values ------------------------------------------------------------ */

/* A value as the spans table keeps it; complex values as their JSON text.
 * NULL for a value that cannot be kept (a NaN, nothing set). */
static json_t *flat(json_t *v)
{
    if (!v)
        return NULL;
    if (json_is_array(v) || json_is_object(v)) {
        char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(v);
        if (!t)
            return NULL;
        json_t *s = text_json(t, strlen(t), AOS_OTLP_VALUE_MAX);
        free(t);
        return s;
    }
    return v;
}

static json_t *bytes_json(const unsigned char *p, size_t n)
{
    if (n > AOS_OTLP_VALUE_MAX)
        n = AOS_OTLP_VALUE_MAX;
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *b = malloc(cap);
    if (!b)
        return NULL;
    sodium_bin2base64(b, cap, p, n, sodium_base64_VARIANT_ORIGINAL);
    json_t *v = json_string(b);
    free(b);
    return v;
}

/* protobuf AnyValue -> a JSON value (nested: arrays and objects), depth-bounded */
static json_t *pb_any(const pb_any_t *a, int depth)
{
    if (!a || depth > 16)
        return NULL;
    switch (a->value_case) {
    case ANY(STRING_VALUE):
        return text_json(a->string_value, strlen(a->string_value), AOS_OTLP_VALUE_MAX);
    case ANY(BOOL_VALUE):
        return json_boolean(a->bool_value);
    case ANY(INT_VALUE):
        return json_integer((json_int_t)a->int_value);
    case ANY(DOUBLE_VALUE):
        return isfinite(a->double_value) ? json_real(a->double_value) : NULL;
    case ANY(BYTES_VALUE):
        return bytes_json(a->bytes_value.data, a->bytes_value.len);
    case ANY(ARRAY_VALUE): {
        json_t *arr = json_array();
        for (size_t i = 0; arr && a->array_value && i < a->array_value->n_values; i++) {
            json_t *e = pb_any(a->array_value->values[i], depth + 1);
            json_array_append_new(arr, e ? e : json_null());
        }
        return arr;
    }
    case ANY(KVLIST_VALUE): {
        json_t *obj = json_object();
        for (size_t i = 0; obj && a->kvlist_value && i < a->kvlist_value->n_values; i++) {
            const pb_kv_t *kv = a->kvlist_value->values[i];
            json_t *e = kv && kv->key ? pb_any(kv->value, depth + 1) : NULL;
            if (e && json_object_set_new(obj, kv->key, e))
                continue; /* a key that is not UTF-8: left out */
        }
        return obj;
    }
    default:
        return NULL;
    }
}

/* OTLP/JSON AnyValue -> a JSON value, depth-bounded */
static int json_i64(const json_t *v, int64_t *out);

static json_t *js_any(const json_t *a, int depth)
{
    if (!json_is_object(a) || depth > 16)
        return NULL;
    json_t *v;
    if ((v = json_object_get(a, "stringValue")) && json_is_string(v))
        return text_json(json_string_value(v), json_string_length(v), AOS_OTLP_VALUE_MAX);
    if ((v = json_object_get(a, "boolValue")) && json_is_boolean(v))
        return json_boolean(json_is_true(v));
    if ((v = json_object_get(a, "intValue"))) {
        int64_t i;
        return json_i64(v, &i) == 0 ? json_integer((json_int_t)i) : NULL;
    }
    if ((v = json_object_get(a, "doubleValue"))) {
        double d = json_is_number(v)   ? json_number_value(v)
                   : json_is_string(v) ? strtod(json_string_value(v), NULL)
                                       : NAN;
        return isfinite(d) ? json_real(d) : NULL;
    }
    if ((v = json_object_get(a, "bytesValue")) && json_is_string(v))
        return json_incref(v);
    if ((v = json_object_get(a, "arrayValue")) && json_is_object(v)) {
        json_t *vals = json_object_get(v, "values"), *arr = json_array(), *e;
        size_t i;
        json_array_foreach(vals, i, e)
        {
            json_t *x = js_any(e, depth + 1);
            json_array_append_new(arr, x ? x : json_null());
        }
        return arr;
    }
    if ((v = json_object_get(a, "kvlistValue")) && json_is_object(v)) {
        json_t *vals = json_object_get(v, "values"), *obj = json_object(), *e;
        size_t i;
        json_array_foreach(vals, i, e)
        {
            const char *k = json_string_value(json_object_get(e, "key"));
            json_t *x = k ? js_any(json_object_get(e, "value"), depth + 1) : NULL;
            if (x)
                json_object_set_new(obj, k, x);
        }
        return obj;
    }
    return NULL;
}

/* Sets key to v (stolen, flattened) in obj within AOS_OTLP_ATTRS, or counts it. */
static void attr_put(json_t *obj, const char *key, size_t klen, json_t *v, uint32_t *dropped)
{
    v = flat(v);
    json_t *k = v && key ? text_json(key, klen, AOS_OTLP_NAME_MAX) : NULL;
    if (!k || !json_string_length(k) ||
        (!json_object_get(obj, json_string_value(k)) && json_object_size(obj) >= AOS_OTLP_ATTRS)) {
        (*dropped)++;
        json_decref(v);
    } else {
        json_object_set_new(obj, json_string_value(k), v);
    }
    json_decref(k);
}

static json_t *pb_attrs(pb_kv_t *const *kvs, size_t n, uint32_t *dropped)
{
    json_t *obj = json_object();
    for (size_t i = 0; obj && i < n; i++)
        attr_put(obj, kvs[i]->key, kvs[i]->key ? strlen(kvs[i]->key) : 0, pb_any(kvs[i]->value, 0),
                 dropped);
    return obj;
}

static json_t *js_attrs(const json_t *list, uint32_t *dropped)
{
    json_t *obj = json_object(), *e;
    size_t i;
    json_array_foreach(list, i, e)
    {
        json_t *k = json_object_get(e, "key");
        if (obj)
            attr_put(obj, json_string_value(k), json_string_length(k),
                     js_any(json_object_get(e, "value"), 0), dropped);
    }
    return obj;
}

static char *dump_or_null(json_t *v)
{
    return v && json_array_size(v) + json_object_size(v) ? json_dumps(v, JSON_COMPACT) : NULL;
}

/* ---- JSON scalars --------------------------------------------------------------- */

/* an int64 given as a JSON integer or a string of digits (proto3 JSON) */
static int json_i64(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = (int64_t)json_integer_value(v);
        return 0;
    }
    if (json_is_real(v) && json_real_value(v) >= 0 && json_real_value(v) < 9.2e18) {
        *out = (int64_t)json_real_value(v);
        return 0;
    }
    if (!json_is_string(v) || !json_string_length(v))
        return -1;
    char *end;
    errno = 0;
    const char *s = json_string_value(v);
    long long x = strtoll(s, &end, 10);
    if (*end || errno)
        return -1;
    *out = (int64_t)x;
    return 0;
}

/* a fixed64 time: absent is 0; a value that is no time is -1 */
static int64_t js_time(const json_t *v)
{
    if (!v || json_is_null(v))
        return 0;
    if (json_is_string(v)) { /* unsigned: up to 2^64-1 */
        char *end;
        errno = 0;
        unsigned long long x = strtoull(json_string_value(v), &end, 10);
        if (*end || errno || !json_string_length(v) || json_string_value(v)[0] == '-')
            return -1;
        return x > INT64_MAX ? INT64_MAX : (int64_t)x;
    }
    int64_t i;
    if (json_i64(v, &i) == 0)
        return i < 0 ? -1 : i;
    return -1;
}

static int64_t clamp_u64(uint64_t v)
{
    return v > INT64_MAX ? INT64_MAX : (int64_t)v;
}

static uint32_t js_u32(const json_t *v)
{
    int64_t i;
    if (json_i64(v, &i) < 0 || i < 0)
        return 0;
    return i > UINT32_MAX ? UINT32_MAX : (uint32_t)i;
}

/* ---- traces: the common part ------------------------------------------------------ */

/* One span as both decoders see it. */
typedef struct {
    const unsigned char *tid, *sid, *pid; /* NULL: absent / malformed */
    size_t tid_len, sid_len, pid_len;
    int pid_bad;
    const char *trace_state;
    uint32_t flags;
    const char *name;
    size_t name_len;
    int64_t kind;
    int64_t start, end;
    int64_t status_code;
    const char *status_message;
    size_t status_len;
    json_t *attrs, *events, *links; /* stolen */
    uint32_t dattrs, devents, dlinks;
} span_in_t;

static void span_in_release(span_in_t *s)
{
    json_decref(s->attrs);
    json_decref(s->events);
    json_decref(s->links);
}

static int traces_grow(aos_otlp_traces_t *t)
{
    if (t->n < t->cap)
        return 0;
    size_t cap = t->cap ? 2 * t->cap : 64;
    aos_store_span_t *r = realloc(t->rows, cap * sizeof(*r));
    if (!r)
        return AOS_ENOMEM;
    t->rows = r;
    t->cap = cap;
    return 0;
}

static int traces_resource(aos_otlp_traces_t *t, json_t *attrs)
{
    if (t->nres == t->capres) {
        size_t cap = t->capres ? 2 * t->capres : 4;
        char **r = realloc(t->resources, cap * sizeof(*r));
        if (!r)
            return AOS_ENOMEM;
        t->resources = r;
        t->capres = cap;
    }
    if (t->redact && aos_redact_json(t->redact, attrs) < 0)
        return AOS_ENOMEM;
    char *text = json_dumps(attrs, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        return AOS_ENOMEM;
    t->resources[t->nres++] = text;
    return 0;
}

/* Validates s and appends it to t (resource index res), or counts it. */
static int traces_add(aos_otlp_traces_t *t, size_t idx, span_in_t *s, int64_t res)
{
    const char *why = NULL;
    if (!s->tid || s->tid_len != 16 || all_zero(s->tid, 16))
        why = "trace_id must be 16 bytes, not all zeros";
    else if (!s->sid || s->sid_len != 8 || all_zero(s->sid, 8))
        why = "span_id must be 8 bytes, not all zeros";
    else if (s->pid_bad || (s->pid && s->pid_len && s->pid_len != 8))
        why = "parent_span_id must be 8 bytes or empty";
    else if (s->kind < 0 || s->kind > 5)
        why = "kind must be 0 to 5";
    else if (s->status_code < 0 || s->status_code > 2)
        why = "status.code must be 0 to 2";
    else if (s->start < 0 || s->end < 0)
        why = "start and end times must be unsigned nanoseconds";
    if (why) {
        reject(&t->rejected, t->message, sizeof(t->message), "spans", idx, why);
        return 0;
    }
    if (traces_grow(t) < 0)
        return AOS_ENOMEM;
    if (t->redact && ((s->attrs && aos_redact_json(t->redact, s->attrs) < 0) ||
                      (s->events && aos_redact_json(t->redact, s->events) < 0) ||
                      (s->links && aos_redact_json(t->redact, s->links) < 0)))
        return AOS_ENOMEM;
    aos_store_span_t *r = &t->rows[t->n];
    memset(r, 0, sizeof(*r));
    char *tid = malloc(33), *sid = malloc(17), *pid = NULL;
    int has_parent = s->pid && s->pid_len == 8 && !all_zero(s->pid, 8);
    if (has_parent)
        pid = malloc(17);
    if (!tid || !sid || (has_parent && !pid)) {
        free(tid), free(sid), free(pid);
        return AOS_ENOMEM;
    }
    hex_of(s->tid, 16, tid);
    hex_of(s->sid, 8, sid);
    if (pid)
        hex_of(s->pid, 8, pid);
    r->trace_id = tid;
    r->span_id = sid;
    r->parent_span_id = pid;
    r->trace_state = s->trace_state && *s->trace_state
                         ? text_dup(s->trace_state, strlen(s->trace_state), 512)
                         : NULL;
    r->flags = s->flags;
    r->name = text_dup(s->name, s->name ? s->name_len : 0, AOS_OTLP_NAME_MAX);
    r->kind = (int)s->kind;
    r->start_ns = s->start;
    r->end_ns = s->end;
    r->status_code = (int)s->status_code;
    r->status_message = s->status_message && s->status_len
                            ? text_dup(s->status_message, s->status_len, AOS_OTLP_VALUE_MAX)
                            : NULL;
    if (t->redact && r->status_message) {
        char *m = (char *)r->status_message;
        aos_redact_cstr(t->redact, m, strlen(m) + 1);
    }
    r->attributes = dump_or_null(s->attrs);
    r->events = dump_or_null(s->events);
    r->links = dump_or_null(s->links);
    r->dropped_attributes = s->dattrs;
    r->dropped_events = s->devents;
    r->dropped_links = s->dlinks;
    r->resource_id = res;
    t->n++;
    if (!r->name)
        return AOS_ENOMEM;
    return 0;
}

void aos_otlp_traces_release(aos_otlp_traces_t *t)
{
    for (size_t i = 0; i < t->n; i++) {
        aos_store_span_t *r = &t->rows[i];
        free((char *)r->trace_id);
        free((char *)r->span_id);
        free((char *)r->parent_span_id);
        free((char *)r->trace_state);
        free((char *)r->name);
        free((char *)r->status_message);
        free((char *)r->attributes);
        free((char *)r->events);
        free((char *)r->links);
    }
    free(t->rows);
    for (size_t i = 0; i < t->nres; i++)
        free(t->resources[i]);
    free(t->resources);
    memset(t, 0, sizeof(*t));
}

/* An event or a link, appended within the limit. */
static void list_put(json_t **list, json_t *item, uint32_t *dropped)
{
    if (!item || (!*list && !(*list = json_array())) || json_array_size(*list) >= AOS_OTLP_EVENTS) {
        json_decref(item);
        (*dropped)++;
        return;
    }
    json_array_append_new(*list, item);
}

static json_t *event_json(int64_t time, const char *name, size_t name_len, json_t *attrs)
{
    json_t *n = text_json(name, name ? name_len : 0, AOS_OTLP_NAME_MAX);
    json_t *ev = n && attrs ? json_pack("{s:I, s:o, s:o}", "time_unix_nano", (json_int_t)time,
                                        "name", n, "attributes", attrs)
                            : NULL;
    if (!ev) {
        json_decref(n);
        json_decref(attrs);
    }
    return ev;
}

/* NULL when the ids are malformed: the link is dropped */
static json_t *link_json(const unsigned char *tid, size_t tl, const unsigned char *sid, size_t sl,
                         const char *state, uint32_t flags, json_t *attrs)
{
    if (!tid || tl != 16 || !sid || sl != 8) {
        json_decref(attrs);
        return NULL;
    }
    char t[33], s[17];
    hex_of(tid, 16, t);
    hex_of(sid, 8, s);
    json_t *l = json_pack("{s:s, s:s, s:I, s:o}", "trace_id", t, "span_id", s, "flags",
                          (json_int_t)flags, "attributes", attrs ? attrs : json_object());
    if (l && state && *state)
        json_object_set_new(l, "trace_state", text_json(state, strlen(state), 512));
    return l;
}

/* ---- traces: protobuf -------------------------------------------------------------- */

static int pb_traces(const pb_treq_t *req, aos_otlp_traces_t *t)
{
    size_t idx = 0;
    int rc;
    for (size_t i = 0; i < req->n_resource_spans; i++) {
        const pb_resource_spans_t *rs = req->resource_spans[i];
        uint32_t rd = 0;
        json_t *ra = rs->resource
                         ? pb_attrs(rs->resource->attributes, rs->resource->n_attributes, &rd)
                         : json_object();
        if (!ra)
            return AOS_ENOMEM;
        rc = traces_resource(t, ra);
        json_decref(ra);
        if (rc < 0)
            return rc;
        int64_t res = (int64_t)t->nres - 1;
        for (size_t j = 0; j < rs->n_scope_spans; j++) {
            const pb_scope_spans_t *ss = rs->scope_spans[j];
            for (size_t k = 0; k < ss->n_spans; k++, idx++) {
                const pb_span_t *p = ss->spans[k];
                span_in_t s = {0};
                s.tid = p->trace_id.data;
                s.tid_len = p->trace_id.len;
                s.sid = p->span_id.data;
                s.sid_len = p->span_id.len;
                s.pid = p->parent_span_id.data;
                s.pid_len = p->parent_span_id.len;
                s.trace_state = p->trace_state;
                s.flags = p->flags;
                s.name = p->name;
                s.name_len = p->name ? strlen(p->name) : 0;
                s.kind = (int64_t)p->kind;
                s.start = clamp_u64(p->start_time_unix_nano);
                s.end = clamp_u64(p->end_time_unix_nano);
                if (p->status) {
                    s.status_code = (int64_t)p->status->code;
                    s.status_message = p->status->message;
                    s.status_len = p->status->message ? strlen(p->status->message) : 0;
                }
                s.dattrs = p->dropped_attributes_count;
                s.devents = p->dropped_events_count;
                s.dlinks = p->dropped_links_count;
                s.attrs = pb_attrs(p->attributes, p->n_attributes, &s.dattrs);
                if (ss->scope && ss->scope->name && *ss->scope->name && s.attrs &&
                    !json_object_get(s.attrs, "otel.scope.name"))
                    attr_put(s.attrs, "otel.scope.name", 15,
                             text_json(ss->scope->name, strlen(ss->scope->name), 256), &s.dattrs);
                for (size_t e = 0; e < p->n_events; e++) {
                    const pb_event_t *ev = p->events[e];
                    uint32_t d = 0;
                    list_put(&s.events,
                             event_json(clamp_u64(ev->time_unix_nano), ev->name,
                                        ev->name ? strlen(ev->name) : 0,
                                        pb_attrs(ev->attributes, ev->n_attributes, &d)),
                             &s.devents);
                }
                for (size_t l = 0; l < p->n_links; l++) {
                    const pb_link_t *ln = p->links[l];
                    uint32_t d = 0;
                    list_put(&s.links,
                             link_json(ln->trace_id.data, ln->trace_id.len, ln->span_id.data,
                                       ln->span_id.len, ln->trace_state, ln->flags,
                                       pb_attrs(ln->attributes, ln->n_attributes, &d)),
                             &s.dlinks);
                }
                rc = s.attrs ? traces_add(t, idx, &s, res) : AOS_ENOMEM;
                span_in_release(&s);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

/* ---- traces: OTLP/JSON --------------------------------------------------------------- */

/* a hex id field into buf: *p set (NULL if absent), *len its bytes; -1 if
 * present but not hex of n bytes */
static int js_id(const json_t *obj, const char *key, unsigned char *buf, size_t n,
                 const unsigned char **p, size_t *len)
{
    json_t *v = json_object_get(obj, key);
    *p = NULL;
    *len = 0;
    if (!v || json_is_null(v) || (json_is_string(v) && !json_string_length(v)))
        return 0;
    if (!json_is_string(v) || hex_to(json_string_value(v), json_string_length(v), buf, n) < 0)
        return -1;
    *p = buf;
    *len = n;
    return 0;
}

static int64_t js_int(const json_t *v, int64_t dflt)
{
    int64_t i;
    if (!v || json_is_null(v))
        return dflt;
    return json_i64(v, &i) == 0 ? i : -1;
}

static int js_traces(const json_t *root, aos_otlp_traces_t *t, aos_err_t *err)
{
    if (!json_is_object(root))
        return aos_err_set(err, AOS_EINVAL, "the body must be a JSON ExportTraceServiceRequest");
    json_t *rss = json_object_get(root, "resourceSpans");
    if (rss && !json_is_array(rss))
        return aos_err_set(err, AOS_EINVAL, "resourceSpans must be an array");
    size_t idx = 0, i;
    json_t *rs;
    int rc;
    json_array_foreach(rss, i, rs)
    {
        uint32_t rd = 0;
        json_t *ra = js_attrs(json_object_get(json_object_get(rs, "resource"), "attributes"), &rd);
        if (!ra)
            return AOS_ENOMEM;
        rc = traces_resource(t, ra);
        json_decref(ra);
        if (rc < 0)
            return rc;
        int64_t res = (int64_t)t->nres - 1;
        size_t j;
        json_t *ss;
        json_array_foreach(json_object_get(rs, "scopeSpans"), j, ss)
        {
            const char *scope =
                json_string_value(json_object_get(json_object_get(ss, "scope"), "name"));
            size_t k;
            json_t *p;
            json_array_foreach(json_object_get(ss, "spans"), k, p)
            {
                span_in_t s = {0};
                unsigned char tid[16], sid[8], pid[8];
                int bad = js_id(p, "traceId", tid, 16, &s.tid, &s.tid_len) < 0;
                bad |= js_id(p, "spanId", sid, 8, &s.sid, &s.sid_len) < 0;
                if (bad)
                    s.tid = NULL;
                s.pid_bad = js_id(p, "parentSpanId", pid, 8, &s.pid, &s.pid_len) < 0;
                s.trace_state = json_string_value(json_object_get(p, "traceState"));
                s.flags = js_u32(json_object_get(p, "flags"));
                json_t *nm = json_object_get(p, "name");
                s.name = json_string_value(nm);
                s.name_len = json_string_length(nm);
                s.kind = js_int(json_object_get(p, "kind"), 0);
                s.start = js_time(json_object_get(p, "startTimeUnixNano"));
                s.end = js_time(json_object_get(p, "endTimeUnixNano"));
                json_t *st = json_object_get(p, "status");
                s.status_code = js_int(json_object_get(st, "code"), 0);
                json_t *sm = json_object_get(st, "message");
                s.status_message = json_string_value(sm);
                s.status_len = json_string_length(sm);
                s.dattrs = js_u32(json_object_get(p, "droppedAttributesCount"));
                s.devents = js_u32(json_object_get(p, "droppedEventsCount"));
                s.dlinks = js_u32(json_object_get(p, "droppedLinksCount"));
                s.attrs = js_attrs(json_object_get(p, "attributes"), &s.dattrs);
                if (scope && *scope && s.attrs && !json_object_get(s.attrs, "otel.scope.name"))
                    attr_put(s.attrs, "otel.scope.name", 15, text_json(scope, strlen(scope), 256),
                             &s.dattrs);
                size_t e;
                json_t *ev;
                json_array_foreach(json_object_get(p, "events"), e, ev)
                {
                    uint32_t d = 0;
                    json_t *en = json_object_get(ev, "name");
                    int64_t tm = js_time(json_object_get(ev, "timeUnixNano"));
                    list_put(&s.events,
                             event_json(tm < 0 ? 0 : tm, json_string_value(en),
                                        json_string_length(en),
                                        js_attrs(json_object_get(ev, "attributes"), &d)),
                             &s.devents);
                }
                json_t *ln;
                json_array_foreach(json_object_get(p, "links"), e, ln)
                {
                    uint32_t d = 0;
                    unsigned char lt[16], ls[8];
                    const unsigned char *ltp, *lsp;
                    size_t ltl, lsl;
                    int lbad = js_id(ln, "traceId", lt, 16, &ltp, &ltl) < 0;
                    lbad |= js_id(ln, "spanId", ls, 8, &lsp, &lsl) < 0;
                    list_put(&s.links,
                             lbad ? NULL
                                  : link_json(ltp, ltl, lsp, lsl,
                                              json_string_value(json_object_get(ln, "traceState")),
                                              js_u32(json_object_get(ln, "flags")),
                                              js_attrs(json_object_get(ln, "attributes"), &d)),
                             &s.dlinks);
                }
                rc = s.attrs ? traces_add(t, idx++, &s, res) : AOS_ENOMEM;
                span_in_release(&s);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

int aos_otlp_traces_decode(const void *body, size_t len, aos_otlp_encoding_t enc,
                           aos_redact_t *redact, aos_otlp_traces_t *out, aos_err_t *err)
{
    memset(out, 0, sizeof(*out));
    out->redact = redact;
    int rc;
    if (enc == AOS_OTLP_PROTOBUF) {
        pb_treq_t *req =
            opentelemetry__proto__collector__trace__v1__export_trace_service_request__unpack(
                NULL, len, body);
        if (!req)
            return aos_err_set(err, AOS_EINVAL,
                               "the body is not a protobuf ExportTraceServiceRequest");
        rc = pb_traces(req, out);
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__free_unpacked(
            req, NULL);
    } else {
        json_error_t je;
        json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
            return aos_err_set(err, AOS_EINVAL, "the body is not JSON: %s at line %d", je.text,
                               je.line);
        rc = js_traces(root, out, err);
        json_decref(root);
        if (rc == AOS_EINVAL)
            return rc;
    }
    if (rc < 0)
        return aos_err_set(err, rc, "out of memory");
    return 0;
}

/* ---- logs -------------------------------------------------------------------------- */

static const char *severity_level(int64_t n, const char *text)
{
    if (n >= 1 && n <= 4)
        return "trace";
    if (n >= 5 && n <= 8)
        return "debug";
    if (n >= 9 && n <= 12)
        return "info";
    if (n >= 13 && n <= 16)
        return "warn";
    if (n >= 17 && n <= 20)
        return "error";
    if (n >= 21 && n <= 24)
        return "fatal";
    static const char *const names[] = {"trace", "debug", "info", "warn", "error", "fatal"};
    for (size_t i = 0; text && i < 6; i++)
        if (!strncasecmp(text, names[i], strlen(names[i])))
            return names[i];
    if (text && !strncasecmp(text, "warning", 7))
        return "warn";
    return "info";
}

/* A name for the log service (topic, source): no control characters, at
 * most 200 bytes, not empty. */
static json_t *name_json(const char *prefix, const char *s)
{
    char buf[256];
    snprintf(buf, sizeof(buf), "%s%.200s", prefix, s ? s : "");
    size_t n = aos_utf8_trim(buf, strlen(buf));
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
            buf[i] = '?';
    return text_json(buf, n, 255);
}

/* One record as both decoders see it. */
typedef struct {
    int64_t time, observed, sev;
    const char *sev_text;
    json_t *body;  /* a JSON value, stolen; NULL: none */
    json_t *attrs; /* stolen */
    const unsigned char *tid, *sid;
    size_t tid_len, sid_len;
    int ids_bad;
    const char *event_name;
} log_in_t;

static int logs_add(aos_otlp_logs_t *l, size_t idx, log_in_t *r, const char *service,
                    const char *scope)
{
    const char *why = NULL;
    char tid[33] = "", sid[17] = "";
    if (r->ids_bad || (r->tid && r->tid_len != 16) || (r->sid && r->sid_len != 8))
        why = "trace_id must be 16 bytes and span_id 8, or empty";
    if (!why && r->tid && r->tid_len == 16 && !all_zero(r->tid, 16))
        hex_of(r->tid, 16, tid);
    if (!why && r->sid && r->sid_len == 8 && !all_zero(r->sid, 8))
        hex_of(r->sid, 8, sid);
    int64_t ns = r->time > 0 ? r->time : r->observed;
    if (!why && (ns < 0 || ns / 1000000 > 253402300799999LL))
        why = "time_unix_nano is out of range";
    char *attrs = NULL;
    if (!why && r->event_name && *r->event_name)
        json_object_set_new(r->attrs, "event.name",
                            text_json(r->event_name, strlen(r->event_name), 256));
    if (!why && json_object_size(r->attrs)) {
        attrs = json_dumps(r->attrs, JSON_COMPACT);
        if (attrs && strlen(attrs) > 32768)
            why = "attributes are longer than 32768 bytes as JSON";
    }
    free(attrs);
    if (why) {
        reject(&l->rejected, l->message, sizeof(l->message), "log_records", idx, why);
        return 0;
    }
    json_t *msg;
    if (!r->body || json_is_null(r->body))
        msg = json_string("");
    else if (json_is_string(r->body))
        msg = text_json(json_string_value(r->body), json_string_length(r->body), 65536);
    else {
        char *t = json_dumps(r->body, JSON_COMPACT | JSON_ENCODE_ANY);
        msg = t ? text_json(t, strlen(t), 65536) : NULL;
        free(t);
    }
    json_t *e = msg ? json_pack("{s:o, s:s, s:o, s:o}", "message", msg, "level",
                                severity_level(r->sev, r->sev_text), "topic",
                                name_json("", scope && *scope ? scope : "otlp"), "source",
                                name_json("otlp:", service && *service ? service : "unknown"))
                    : NULL;
    if (!e)
        return AOS_ENOMEM;
    if (ns > 0)
        json_object_set_new(e, "ts", json_integer((json_int_t)(ns / 1000000)));
    if (json_object_size(r->attrs))
        json_object_set(e, "attributes", r->attrs);
    if (tid[0])
        json_object_set_new(e, "trace_id", json_string(tid));
    if (sid[0])
        json_object_set_new(e, "span_id", json_string(sid));
    return json_array_append_new(l->entries, e) ? AOS_ENOMEM : 0;
}

static void log_in_release(log_in_t *r)
{
    json_decref(r->body);
    json_decref(r->attrs);
}

void aos_otlp_logs_release(aos_otlp_logs_t *l)
{
    json_decref(l->entries);
    memset(l, 0, sizeof(*l));
}

static int pb_logs(const pb_lreq_t *req, aos_otlp_logs_t *l)
{
    size_t idx = 0;
    for (size_t i = 0; i < req->n_resource_logs; i++) {
        const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[i];
        const char *service = NULL;
        for (size_t a = 0; rl->resource && a < rl->resource->n_attributes; a++) {
            const pb_kv_t *kv = rl->resource->attributes[a];
            if (kv->key && !strcmp(kv->key, "service.name") && kv->value &&
                kv->value->value_case == ANY(STRING_VALUE))
                service = kv->value->string_value;
        }
        for (size_t j = 0; j < rl->n_scope_logs; j++) {
            const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[j];
            const char *scope = sl->scope ? sl->scope->name : NULL;
            for (size_t k = 0; k < sl->n_log_records; k++, idx++) {
                const pb_log_t *p = sl->log_records[k];
                log_in_t r = {0};
                uint32_t d = 0;
                r.time = clamp_u64(p->time_unix_nano);
                r.observed = clamp_u64(p->observed_time_unix_nano);
                r.sev = (int64_t)p->severity_number;
                r.sev_text = p->severity_text;
                r.body = pb_any(p->body, 0);
                r.attrs = pb_attrs(p->attributes, p->n_attributes, &d);
                r.tid = p->trace_id.len ? p->trace_id.data : NULL;
                r.tid_len = p->trace_id.len;
                r.sid = p->span_id.len ? p->span_id.data : NULL;
                r.sid_len = p->span_id.len;
                r.event_name = p->event_name;
                int rc = r.attrs ? logs_add(l, idx, &r, service, scope) : AOS_ENOMEM;
                log_in_release(&r);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

static int js_logs(const json_t *root, aos_otlp_logs_t *l, aos_err_t *err)
{
    if (!json_is_object(root))
        return aos_err_set(err, AOS_EINVAL, "the body must be a JSON ExportLogsServiceRequest");
    json_t *rls = json_object_get(root, "resourceLogs");
    if (rls && !json_is_array(rls))
        return aos_err_set(err, AOS_EINVAL, "resourceLogs must be an array");
    size_t idx = 0, i;
    json_t *rl;
    json_array_foreach(rls, i, rl)
    {
        const char *service = NULL;
        size_t a;
        json_t *kv;
        json_array_foreach(json_object_get(json_object_get(rl, "resource"), "attributes"), a, kv)
        {
            if (!strcmp(json_string_value(json_object_get(kv, "key")) ?: "", "service.name"))
                service =
                    json_string_value(json_object_get(json_object_get(kv, "value"), "stringValue"));
        }
        size_t j;
        json_t *sl;
        json_array_foreach(json_object_get(rl, "scopeLogs"), j, sl)
        {
            const char *scope =
                json_string_value(json_object_get(json_object_get(sl, "scope"), "name"));
            size_t k;
            json_t *p;
            json_array_foreach(json_object_get(sl, "logRecords"), k, p)
            {
                log_in_t r = {0};
                uint32_t d = 0;
                unsigned char tid[16], sid[8];
                r.time = js_time(json_object_get(p, "timeUnixNano"));
                r.observed = js_time(json_object_get(p, "observedTimeUnixNano"));
                r.sev = js_int(json_object_get(p, "severityNumber"), 0);
                r.sev_text = json_string_value(json_object_get(p, "severityText"));
                r.body = js_any(json_object_get(p, "body"), 0);
                r.attrs = js_attrs(json_object_get(p, "attributes"), &d);
                r.ids_bad = js_id(p, "traceId", tid, 16, &r.tid, &r.tid_len) < 0;
                r.ids_bad |= js_id(p, "spanId", sid, 8, &r.sid, &r.sid_len) < 0;
                r.event_name = json_string_value(json_object_get(p, "eventName"));
                int rc = r.attrs ? logs_add(l, idx++, &r, service, scope) : AOS_ENOMEM;
                log_in_release(&r);
                if (rc < 0)
                    return rc;
            }
        }
    }
    return 0;
}

int aos_otlp_logs_decode(const void *body, size_t len, aos_otlp_encoding_t enc,
                         aos_otlp_logs_t *out, aos_err_t *err)
{
    memset(out, 0, sizeof(*out));
    if (!(out->entries = json_array()))
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    int rc;
    if (enc == AOS_OTLP_PROTOBUF) {
        pb_lreq_t *req =
            opentelemetry__proto__collector__logs__v1__export_logs_service_request__unpack(
                NULL, len, body);
        if (!req)
            return aos_err_set(err, AOS_EINVAL,
                               "the body is not a protobuf ExportLogsServiceRequest");
        rc = pb_logs(req, out);
        opentelemetry__proto__collector__logs__v1__export_logs_service_request__free_unpacked(req,
                                                                                              NULL);
    } else {
        json_error_t je;
        json_t *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
        if (!root)
            return aos_err_set(err, AOS_EINVAL, "the body is not JSON: %s at line %d", je.text,
                               je.line);
        rc = js_logs(root, out, err);
        json_decref(root);
        if (rc == AOS_EINVAL)
            return rc;
    }
    if (rc < 0)
        return aos_err_set(err, rc, "out of memory");
    return 0;
}

/* ---- encoding aosd's spans ------------------------------------------------------------ */

/* Every allocation of one encoding, freed together: a bump allocator over
 * zeroed chunks (one calloc per ARENA_CHUNK bytes, not one per message).
 * Strings are not copied: protobuf-c's pack only reads them, and the rows
 * and JSON values they point into outlive the encoding. */
#define ARENA_CHUNK 65536

typedef struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    max_align_t data[];
} arena_chunk_t;

typedef struct {
    arena_chunk_t *head;
} arena_t;

static void *arena_alloc(arena_t *a, size_t size)
{
    const size_t align = sizeof(max_align_t);
    size = (size + align - 1) / align * align;
    if (!size)
        size = align;
    arena_chunk_t *c = a->head;
    if (!c || c->cap - c->used < size) {
        size_t cap = size > ARENA_CHUNK ? size : ARENA_CHUNK;
        c = calloc(1, sizeof(*c) + cap);
        if (!c)
            return NULL;
        c->cap = cap;
        c->next = a->head;
        a->head = c;
    }
    void *m = (char *)c->data + c->used;
    c->used += size;
    return m;
}

static char *ref(const char *s)
{
    return (char *)s; /* packed, never written */
}

static void arena_free(arena_t *a)
{
    for (arena_chunk_t *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
}

/* a JSON object of scalars -> KeyValue[] */
static pb_kv_t **pb_kvs(arena_t *a, const json_t *obj, size_t *n)
{
    *n = 0;
    size_t cnt = json_object_size(obj);
    if (!cnt)
        return NULL;
    pb_kv_t **kvs = arena_alloc(a, cnt * sizeof(*kvs));
    if (!kvs)
        return NULL;
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        pb_kv_t *kv = arena_alloc(a, sizeof(*kv));
        pb_any_t *av = arena_alloc(a, sizeof(*av));
        if (!kv || !av)
            return NULL;
        opentelemetry__proto__common__v1__key_value__init(kv);
        opentelemetry__proto__common__v1__any_value__init(av);
        kv->key = ref(k);
        kv->value = av;
        if (json_is_string(v)) {
            av->value_case = ANY(STRING_VALUE);
            av->string_value = ref(json_string_value(v));
        } else if (json_is_integer(v)) {
            av->value_case = ANY(INT_VALUE);
            av->int_value = (int64_t)json_integer_value(v);
        } else if (json_is_real(v)) {
            av->value_case = ANY(DOUBLE_VALUE);
            av->double_value = json_real_value(v);
        } else if (json_is_boolean(v)) {
            av->value_case = ANY(BOOL_VALUE);
            av->bool_value = json_is_true(v);
        } else {
            char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            size_t tn = t ? strlen(t) : 0;
            char *m = arena_alloc(a, tn + 1);
            if (m && t)
                memcpy(m, t, tn);
            free(t);
            av->value_case = ANY(STRING_VALUE);
            av->string_value = m;
        }
        if (av->value_case == ANY(STRING_VALUE) && !av->string_value)
            return NULL;
        kvs[(*n)++] = kv;
    }
    return kvs;
}

static int bin_of(arena_t *a, const char *hex, size_t n, ProtobufCBinaryData *out)
{
    out->len = 0;
    out->data = NULL;
    if (!hex || !*hex)
        return 0;
    unsigned char *p = arena_alloc(a, n);
    if (!p)
        return AOS_ENOMEM;
    if (hex_to(hex, strlen(hex), p, n) == 0) {
        out->data = p;
        out->len = n;
    }
    return 0;
}

/* Row i's attributes (k 0), events (1) or links (2), parsed: json's
 * value when there is one (a new reference), else the row's text parsed;
 * NULL for none. */
static json_t *row_json(const aos_store_span_t *rows, json_t *const *json, size_t i, int k)
{
    json_t *v = json ? json[3 * i + (size_t)k] : NULL;
    if (v)
        return json_incref(v);
    const char *text = k == 0 ? rows[i].attributes : k == 1 ? rows[i].events : rows[i].links;
    return text ? json_loads(text, 0, NULL) : NULL;
}

/* The request built as protobuf-c's structs and packed by it: the
 * reference pb_write_traces is checked against (internal.h). */
int aos__otlp_traces_encode_pbc(const aos_store_span_t *rows, json_t *const *json, size_t n,
                                const json_t *resource, aos_buf_t *out)
{
    arena_t a = {0};
    int rc = AOS_ENOMEM;
    json_t **held = NULL; /* the rows' JSON values, 3 per span */
    pb_treq_t req = OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
    pb_resource_spans_t rs = OPENTELEMETRY__PROTO__TRACE__V1__RESOURCE_SPANS__INIT;
    pb_resource_t res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
    pb_scope_spans_t ss = OPENTELEMETRY__PROTO__TRACE__V1__SCOPE_SPANS__INIT;
    pb_scope_t scope = OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
    pb_resource_spans_t *rsp = &rs;
    pb_scope_spans_t *ssp = &ss;
    req.n_resource_spans = 1;
    req.resource_spans = &rsp;
    rs.resource = &res;
    rs.n_scope_spans = 1;
    rs.scope_spans = &ssp;
    scope.name = "aosd";
    ss.scope = &scope;
    res.attributes = pb_kvs(&a, resource, &res.n_attributes);
    ss.spans = n ? arena_alloc(&a, n * sizeof(*ss.spans)) : NULL;
    held = n ? arena_alloc(&a, 3 * n * sizeof(*held)) : NULL;
    if (n && (!ss.spans || !held))
        goto done;
    for (size_t i = 0; i < n; i++) {
        const aos_store_span_t *r = &rows[i];
        pb_span_t *s = arena_alloc(&a, sizeof(*s));
        pb_status_t *st = arena_alloc(&a, sizeof(*st));
        if (!s || !st)
            goto done;
        opentelemetry__proto__trace__v1__span__init(s);
        opentelemetry__proto__trace__v1__status__init(st);
        if (bin_of(&a, r->trace_id, 16, &s->trace_id) || bin_of(&a, r->span_id, 8, &s->span_id) ||
            bin_of(&a, r->parent_span_id, 8, &s->parent_span_id))
            goto done;
        s->trace_state = ref(r->trace_state ? r->trace_state : "");
        s->flags = r->flags;
        s->name = ref(r->name ? r->name : "");
        s->kind = (Opentelemetry__Proto__Trace__V1__Span__SpanKind)r->kind;
        s->start_time_unix_nano = (uint64_t)r->start_ns;
        s->end_time_unix_nano = (uint64_t)r->end_ns;
        st->code = (Opentelemetry__Proto__Trace__V1__Status__StatusCode)r->status_code;
        st->message = ref(r->status_message ? r->status_message : "");
        s->status = st;
        s->dropped_attributes_count = r->dropped_attributes;
        s->dropped_events_count = r->dropped_events;
        s->dropped_links_count = r->dropped_links;
        /* held until the request is packed: its strings are packed from them */
        json_t *attrs = held[3 * i] = row_json(rows, json, i, 0);
        s->attributes = pb_kvs(&a, attrs, &s->n_attributes);
        json_t *evs = held[3 * i + 1] = row_json(rows, json, i, 1);
        size_t ne = json_array_size(evs), k;
        json_t *ev;
        s->events = ne ? arena_alloc(&a, ne * sizeof(*s->events)) : NULL;
        json_array_foreach(evs, k, ev)
        {
            pb_event_t *e = arena_alloc(&a, sizeof(*e));
            if (!e || !s->events)
                break;
            opentelemetry__proto__trace__v1__span__event__init(e);
            e->time_unix_nano = (uint64_t)json_integer_value(json_object_get(ev, "time_unix_nano"));
            e->name = ref(json_string_value(json_object_get(ev, "name")) ?: "");
            e->attributes = pb_kvs(&a, json_object_get(ev, "attributes"), &e->n_attributes);
            s->events[s->n_events++] = e;
        }
        json_t *lks = held[3 * i + 2] = row_json(rows, json, i, 2), *lk;
        size_t nl = json_array_size(lks);
        s->links = nl ? arena_alloc(&a, nl * sizeof(*s->links)) : NULL;
        json_array_foreach(lks, k, lk)
        {
            pb_link_t *l = arena_alloc(&a, sizeof(*l));
            if (!l || !s->links)
                break;
            opentelemetry__proto__trace__v1__span__link__init(l);
            bin_of(&a, json_string_value(json_object_get(lk, "trace_id")), 16, &l->trace_id);
            bin_of(&a, json_string_value(json_object_get(lk, "span_id")), 8, &l->span_id);
            const char *ts = json_string_value(json_object_get(lk, "trace_state"));
            l->trace_state = ref(ts ? ts : "");
            l->flags = (uint32_t)json_integer_value(json_object_get(lk, "flags"));
            l->attributes = pb_kvs(&a, json_object_get(lk, "attributes"), &l->n_attributes);
            s->links[s->n_links++] = l;
        }
        ss.spans[ss.n_spans++] = s;
    }
    size_t size =
        opentelemetry__proto__collector__trace__v1__export_trace_service_request__get_packed_size(
            &req);
    if (aos_buf_grow(out, size + 1) < 0)
        goto done;
    opentelemetry__proto__collector__trace__v1__export_trace_service_request__pack(
        &req, (uint8_t *)out->ptr + out->len);
    out->len += size;
    rc = 0;
done:
    for (size_t i = 0; held && i < 3 * n; i++)
        json_decref(held[i]);
    arena_free(&a);
    return rc;
}

/* ---- protobuf, written by hand -------------------------------------------------------
 * What protobuf-c's pack makes of the same request, byte for byte (the unit
 * test compares them: aos__otlp_traces_encode_pbc), without building its
 * message structs or walking its descriptors: fields in number order,
 * proto3's defaults (0, "", no bytes) left out, a oneof's value and a set
 * submessage always written. A nested message is written in place and its
 * length put in front of it afterwards (one memmove of what it holds); a
 * KeyValue's length is known beforehand and written first. */

typedef struct {
    aos_buf_t *b;
    int oom;
} pbw_t;

static size_t vlen(uint64_t v)
{
    size_t n = 1;
    while (v > 0x7f) {
        v >>= 7;
        n++;
    }
    return n;
}

static size_t vput(unsigned char *t, uint64_t v)
{
    size_t n = 0;
    do {
        t[n++] = (unsigned char)((v & 0x7f) | (v > 0x7f ? 0x80 : 0));
        v >>= 7;
    } while (v);
    return n;
}

/* Room for n more bytes at the end of the buffer (grown by at least
 * 64 KiB at a time, so that most writes only check); 0 when out of it. */
static int w_room(pbw_t *w, size_t n)
{
    if (w->oom)
        return 0;
    if (w->b->cap - w->b->len > n)
        return 1;
    if (aos_buf_grow(w->b, n > 65536 ? n : 65536) < 0) {
        w->oom = 1;
        return 0;
    }
    return 1;
}

static void w_raw(pbw_t *w, const void *p, size_t n)
{
    if (w_room(w, n)) {
        memcpy(w->b->ptr + w->b->len, p, n);
        w->b->len += n;
    }
}

static void w_varint(pbw_t *w, uint64_t v)
{
    if (w_room(w, 10))
        w->b->len += vput((unsigned char *)w->b->ptr + w->b->len, v);
}

static void w_tag(pbw_t *w, unsigned field, unsigned type)
{
    w_varint(w, (uint64_t)field << 3 | type);
}

static void w_len(pbw_t *w, unsigned field, const void *p, size_t n)
{
    w_tag(w, field, 2);
    w_varint(w, n);
    w_raw(w, p, n);
}

/* proto3 scalars: a default value is not written */
static void w_str(pbw_t *w, unsigned field, const char *s)
{
    if (s && *s)
        w_len(w, field, s, strlen(s));
}

static void w_uint(pbw_t *w, unsigned field, uint64_t v)
{
    if (v) {
        w_tag(w, field, 0);
        w_varint(w, v);
    }
}

static void w_fixed(pbw_t *w, unsigned field, uint64_t v, int bytes)
{
    if (!v)
        return;
    unsigned char t[8];
    for (int i = 0; i < bytes; i++)
        t[i] = (unsigned char)(v >> (8 * i));
    w_tag(w, field, bytes == 8 ? 1 : 5);
    w_raw(w, t, (size_t)bytes);
}

/* An id: hex of n bytes; left out when it is not that (as bin_of). */
static void w_id(pbw_t *w, unsigned field, const char *hex, size_t n)
{
    unsigned char p[16];
    if (hex && *hex && n <= sizeof(p) && hex_to(hex, strlen(hex), p, n) == 0)
        w_len(w, field, p, n);
}

/* A submessage: its tag now; w_end puts its length in front of it. */
static size_t w_begin(pbw_t *w, unsigned field)
{
    w_tag(w, field, 2);
    return w->b->len;
}

static void w_end(pbw_t *w, size_t start)
{
    if (w->oom)
        return;
    size_t len = w->b->len - start;
    unsigned char t[10];
    size_t n = vput(t, len);
    if (!w_room(w, n))
        return;
    memmove(w->b->ptr + start + n, w->b->ptr + start, len);
    memcpy(w->b->ptr + start, t, n);
    w->b->len += n;
}

/* A JSON object of scalars as KeyValues in field (anything else as its
 * JSON text, as pb_kvs does). */
static void w_kvs(pbw_t *w, unsigned field, const json_t *obj)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        unsigned char num[8];
        const char *s = NULL;
        char *text = NULL;
        size_t sn = 0, any; /* the AnyValue's size */
        uint64_t iv = 0;
        unsigned vf; /* its field */
        if (json_is_string(v) || (!json_is_integer(v) && !json_is_real(v) && !json_is_boolean(v))) {
            if (json_is_string(v)) {
                s = json_string_value(v);
                sn = strlen(s); /* as protobuf-c packs a char * */
            } else if (!(s = text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY))) {
                w->oom = 1;
                return;
            } else {
                sn = strlen(text);
            }
            vf = 1;
            any = 1 + vlen(sn) + sn;
        } else if (json_is_integer(v)) {
            vf = 3;
            iv = (uint64_t)(int64_t)json_integer_value(v);
            any = 1 + vlen(iv);
        } else if (json_is_real(v)) {
            vf = 4;
            double d = json_real_value(v);
            memcpy(&iv, &d, 8);
            any = 1 + 8;
        } else {
            vf = 2;
            iv = json_is_true(v);
            any = 1 + 1;
        }
        size_t kn = strlen(k);
        size_t kv = (kn ? 1 + vlen(kn) + kn : 0) + 1 + vlen(any) + any;
        w_tag(w, field, 2);
        w_varint(w, kv);
        if (kn)
            w_len(w, 1, k, kn);
        w_tag(w, 2, 2);
        w_varint(w, any);
        if (vf == 1) {
            w_len(w, 1, s, sn);
        } else if (vf == 4) {
            for (int i = 0; i < 8; i++)
                num[i] = (unsigned char)(iv >> (8 * i));
            w_tag(w, 4, 1);
            w_raw(w, num, 8);
        } else {
            w_tag(w, vf, 0);
            w_varint(w, iv);
        }
        free(text);
    }
}

static int pb_write_traces(const aos_store_span_t *rows, json_t *const *json, size_t n,
                           const json_t *resource, aos_buf_t *out)
{
    pbw_t w = {out, 0};
    size_t len0 = out->len;
    size_t rs = w_begin(&w, 1);  /* resource_spans */
    size_t res = w_begin(&w, 1); /* resource */
    w_kvs(&w, 1, resource);
    w_end(&w, res);
    size_t ss = w_begin(&w, 2); /* scope_spans */
    size_t scope = w_begin(&w, 1);
    w_str(&w, 1, "aosd");
    w_end(&w, scope);
    for (size_t i = 0; i < n && !w.oom; i++) {
        const aos_store_span_t *r = &rows[i];
        size_t sp = w_begin(&w, 2);
        w_id(&w, 1, r->trace_id, 16);
        w_id(&w, 2, r->span_id, 8);
        w_str(&w, 3, r->trace_state);
        w_id(&w, 4, r->parent_span_id, 8);
        w_str(&w, 5, r->name);
        w_uint(&w, 6, (uint32_t)r->kind);
        w_fixed(&w, 7, (uint64_t)r->start_ns, 8);
        w_fixed(&w, 8, (uint64_t)r->end_ns, 8);
        json_t *attrs = row_json(rows, json, i, 0);
        w_kvs(&w, 9, attrs);
        json_decref(attrs);
        w_uint(&w, 10, r->dropped_attributes);
        json_t *evs = row_json(rows, json, i, 1), *ev;
        size_t k;
        json_array_foreach(evs, k, ev)
        {
            size_t e = w_begin(&w, 11);
            w_fixed(&w, 1, (uint64_t)json_integer_value(json_object_get(ev, "time_unix_nano")), 8);
            w_str(&w, 2, json_string_value(json_object_get(ev, "name")));
            w_kvs(&w, 3, json_object_get(ev, "attributes"));
            w_end(&w, e);
        }
        json_decref(evs);
        w_uint(&w, 12, r->dropped_events);
        json_t *lks = row_json(rows, json, i, 2), *lk;
        json_array_foreach(lks, k, lk)
        {
            size_t l = w_begin(&w, 13);
            w_id(&w, 1, json_string_value(json_object_get(lk, "trace_id")), 16);
            w_id(&w, 2, json_string_value(json_object_get(lk, "span_id")), 8);
            w_str(&w, 3, json_string_value(json_object_get(lk, "trace_state")));
            w_kvs(&w, 4, json_object_get(lk, "attributes"));
            w_fixed(&w, 6, (uint32_t)json_integer_value(json_object_get(lk, "flags")), 4);
            w_end(&w, l);
        }
        json_decref(lks);
        w_uint(&w, 14, r->dropped_links);
        size_t st = w_begin(&w, 15); /* status: always there */
        w_str(&w, 2, r->status_message);
        w_uint(&w, 3, (uint32_t)r->status_code);
        w_end(&w, st);
        w_fixed(&w, 16, r->flags, 4);
        w_end(&w, sp);
    }
    w_end(&w, ss);
    w_end(&w, rs);
    if (w.oom) {
        out->len = len0;
        return AOS_ENOMEM;
    }
    return 0;
}

static json_t *js_kvs(const json_t *obj)
{
    json_t *arr = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        json_t *av;
        if (json_is_string(v))
            av = json_pack("{s:O}", "stringValue", v);
        else if (json_is_integer(v)) {
            char num[24];
            snprintf(num, sizeof(num), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
            av = json_pack("{s:s}", "intValue", num);
        } else if (json_is_real(v))
            av = json_pack("{s:O}", "doubleValue", v);
        else if (json_is_boolean(v))
            av = json_pack("{s:O}", "boolValue", v);
        else {
            char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
            av = json_pack("{s:s}", "stringValue", t ? t : "");
            free(t);
        }
        json_array_append_new(arr, json_pack("{s:s, s:o}", "key", k, "value", av));
    }
    return arr;
}

static json_t *u64_str(int64_t v)
{
    char num[24];
    snprintf(num, sizeof(num), "%" PRId64, v);
    return json_string(num);
}

static int js_encode_traces(const aos_store_span_t *rows, json_t *const *json, size_t n,
                            const json_t *resource, aos_buf_t *out)
{
    json_t *spans = json_array();
    for (size_t i = 0; spans && i < n; i++) {
        const aos_store_span_t *r = &rows[i];
        json_t *s = json_pack("{s:s, s:s, s:I, s:s, s:i, s:o, s:o, s:{s:i}}", "traceId",
                              r->trace_id, "spanId", r->span_id, "flags", (json_int_t)r->flags,
                              "name", r->name ? r->name : "", "kind", r->kind, "startTimeUnixNano",
                              u64_str(r->start_ns), "endTimeUnixNano", u64_str(r->end_ns), "status",
                              "code", r->status_code);
        if (!s)
            continue;
        if (r->parent_span_id)
            json_object_set_new(s, "parentSpanId", json_string(r->parent_span_id));
        if (r->trace_state)
            json_object_set_new(s, "traceState", json_string(r->trace_state));
        if (r->status_message)
            json_object_set_new(json_object_get(s, "status"), "message",
                                json_string(r->status_message));
        json_t *attrs = row_json(rows, json, i, 0);
        json_object_set_new(s, "attributes", js_kvs(attrs));
        json_decref(attrs);
        if (r->dropped_attributes)
            json_object_set_new(s, "droppedAttributesCount", json_integer(r->dropped_attributes));
        json_t *evs = row_json(rows, json, i, 1), *ev, *list = json_array();
        size_t k;
        json_array_foreach(evs, k, ev)
        {
            json_array_append_new(
                list, json_pack("{s:o, s:O, s:o}", "timeUnixNano",
                                u64_str(json_integer_value(json_object_get(ev, "time_unix_nano"))),
                                "name", json_object_get(ev, "name"), "attributes",
                                js_kvs(json_object_get(ev, "attributes"))));
        }
        json_decref(evs);
        json_object_set_new(s, "events", list);
        if (r->dropped_events)
            json_object_set_new(s, "droppedEventsCount", json_integer(r->dropped_events));
        json_t *lks = row_json(rows, json, i, 2), *lk;
        list = json_array();
        json_array_foreach(lks, k, lk)
        {
            json_t *l = json_pack(
                "{s:O, s:O, s:O, s:o}", "traceId", json_object_get(lk, "trace_id"), "spanId",
                json_object_get(lk, "span_id"), "flags", json_object_get(lk, "flags"), "attributes",
                js_kvs(json_object_get(lk, "attributes")));
            if (l && json_object_get(lk, "trace_state"))
                json_object_set(l, "traceState", json_object_get(lk, "trace_state"));
            json_array_append_new(list, l);
        }
        json_decref(lks);
        json_object_set_new(s, "links", list);
        if (r->dropped_links)
            json_object_set_new(s, "droppedLinksCount", json_integer(r->dropped_links));
        json_array_append_new(spans, s);
    }
    json_t *root =
        json_pack("{s:[{s:{s:o}, s:[{s:{s:s}, s:o}]}]}", "resourceSpans", "resource", "attributes",
                  js_kvs(resource), "scopeSpans", "scope", "name", "aosd", "spans", spans);
    if (!root)
        return AOS_ENOMEM;
    char *text = json_dumps(root, JSON_COMPACT);
    json_decref(root);
    int rc = text ? aos_buf_puts(out, text) : AOS_ENOMEM;
    free(text);
    return rc < 0 ? AOS_ENOMEM : 0;
}

int aos_otlp_traces_encode(const aos_store_span_t *rows, json_t *const *json, size_t n,
                           const char *resource, aos_otlp_encoding_t enc, aos_buf_t *out)
{
    json_t *res = resource ? json_loads(resource, 0, NULL) : NULL;
    if (!res)
        res = json_object();
    if (!res)
        return AOS_ENOMEM;
    int rc = enc == AOS_OTLP_JSON ? js_encode_traces(rows, json, n, res, out)
                                  : pb_write_traces(rows, json, n, res, out);
    json_decref(res);
    return rc;
}

/* ---- responses --------------------------------------------------------------------- */

int aos_otlp_response_encode(int logs, int64_t rejected, const char *message,
                             aos_otlp_encoding_t enc, aos_buf_t *out)
{
    if (enc == AOS_OTLP_JSON) {
        json_t *r = json_object();
        if (r && rejected > 0) {
            char num[24];
            snprintf(num, sizeof(num), "%" PRId64, rejected);
            json_object_set_new(r, "partialSuccess",
                                json_pack("{s:s, s:s}",
                                          logs ? "rejectedLogRecords" : "rejectedSpans", num,
                                          "errorMessage", message ? message : ""));
        }
        char *t = r ? json_dumps(r, JSON_COMPACT) : NULL;
        json_decref(r);
        int rc = t ? aos_buf_puts(out, t) : AOS_ENOMEM;
        free(t);
        return rc < 0 ? AOS_ENOMEM : 0;
    }
    size_t size;
    if (logs) {
        pb_lresp_t r =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_RESPONSE__INIT;
        pb_lpartial_t p =
            OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_PARTIAL_SUCCESS__INIT;
        p.rejected_log_records = rejected;
        p.error_message = (char *)(message ? message : "");
        if (rejected > 0)
            r.partial_success = &p;
        size =
            opentelemetry__proto__collector__logs__v1__export_logs_service_response__get_packed_size(
                &r);
        if (aos_buf_grow(out, size + 1) < 0)
            return AOS_ENOMEM;
        opentelemetry__proto__collector__logs__v1__export_logs_service_response__pack(
            &r, (uint8_t *)out->ptr + out->len);
    } else {
        pb_tresp_t r =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_SERVICE_RESPONSE__INIT;
        pb_tpartial_t p =
            OPENTELEMETRY__PROTO__COLLECTOR__TRACE__V1__EXPORT_TRACE_PARTIAL_SUCCESS__INIT;
        p.rejected_spans = rejected;
        p.error_message = (char *)(message ? message : "");
        if (rejected > 0)
            r.partial_success = &p;
        size =
            opentelemetry__proto__collector__trace__v1__export_trace_service_response__get_packed_size(
                &r);
        if (aos_buf_grow(out, size + 1) < 0)
            return AOS_ENOMEM;
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__pack(
            &r, (uint8_t *)out->ptr + out->len);
    }
    out->len += size;
    return 0;
}

int aos_otlp_response_decode(const void *body, size_t len, aos_otlp_encoding_t enc,
                             int64_t *rejected, char *msg, size_t msg_cap)
{
    *rejected = 0;
    if (msg_cap)
        msg[0] = '\0';
    if (!len)
        return 0;
    if (enc == AOS_OTLP_JSON) {
        json_t *r = json_loadb(body, len, 0, NULL);
        if (!json_is_object(r)) {
            json_decref(r);
            return AOS_EINVAL;
        }
        json_t *p = json_object_get(r, "partialSuccess");
        int64_t n = js_int(json_object_get(p, "rejectedSpans"), 0);
        *rejected = n < 0 ? 0 : n;
        const char *m = json_string_value(json_object_get(p, "errorMessage"));
        if (m && msg_cap)
            snprintf(msg, msg_cap, "%s", m);
        json_decref(r);
        return 0;
    }
    pb_tresp_t *r =
        opentelemetry__proto__collector__trace__v1__export_trace_service_response__unpack(NULL, len,
                                                                                          body);
    if (!r)
        return AOS_EINVAL;
    if (r->partial_success) {
        *rejected = r->partial_success->rejected_spans < 0 ? 0 : r->partial_success->rejected_spans;
        if (r->partial_success->error_message && msg_cap)
            snprintf(msg, msg_cap, "%s", r->partial_success->error_message);
    }
    opentelemetry__proto__collector__trace__v1__export_trace_service_response__free_unpacked(r,
                                                                                             NULL);
    return 0;
}

/* ---- gzip ------------------------------------------------------------------------------ */

int aos_otlp_gunzip(const void *in, size_t len, size_t max, void **out, size_t *out_len,
                    aos_err_t *err)
{
    *out = NULL;
    *out_len = 0;
    z_stream z;
    memset(&z, 0, sizeof(z));
    if (inflateInit2(&z, 15 + 32) != Z_OK) /* gzip or zlib, by the header */
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    size_t cap = len * 4 < 65536 ? 65536 : len * 4, n = 0;
    if (cap > max + 1)
        cap = max + 1;
    unsigned char *buf = malloc(cap);
    int rc = buf ? Z_OK : Z_MEM_ERROR;
    z.next_in = (unsigned char *)in;
    while (rc == Z_OK) {
        if (n == cap) {
            if (cap > max) {
                rc = Z_BUF_ERROR;
                break;
            }
            size_t ncap = cap * 2 > max + 1 ? max + 1 : cap * 2;
            unsigned char *b = realloc(buf, ncap);
            if (!b) {
                rc = Z_MEM_ERROR;
                break;
            }
            buf = b;
            cap = ncap;
        }
        size_t chunk_in = len - (size_t)(z.next_in - (unsigned char *)in);
        z.avail_in = chunk_in > UINT32_MAX ? UINT32_MAX : (uInt)chunk_in;
        z.next_out = buf + n;
        z.avail_out = (uInt)(cap - n > UINT32_MAX ? UINT32_MAX : cap - n);
        size_t before = z.avail_out;
        rc = inflate(&z, Z_NO_FLUSH);
        n += before - z.avail_out;
        if (rc == Z_BUF_ERROR && z.avail_in == 0 && z.avail_out > 0)
            break; /* input ended before the stream did */
        if (rc == Z_BUF_ERROR && z.avail_out == 0)
            rc = Z_OK; /* more room needed */
    }
    inflateEnd(&z);
    if (rc == Z_MEM_ERROR) {
        free(buf);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    if (rc != Z_STREAM_END || n > max) {
        free(buf);
        if (n > max)
            return aos_err_set(err, AOS_EINVAL, "the body inflates beyond %zu bytes", max);
        return aos_err_set(err, AOS_EINVAL, "the body is not valid gzip");
    }
    *out = buf;
    *out_len = n;
    return 0;
}

int aos_otlp_encoding_parse(const char *s)
{
    if (!s || !strcmp(s, "http/protobuf") || !strcmp(s, "protobuf"))
        return s ? AOS_OTLP_PROTOBUF : -1;
    if (!strcmp(s, "http/json") || !strcmp(s, "json"))
        return AOS_OTLP_JSON;
    return -1;
}
