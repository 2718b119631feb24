/* event.c - what an event is: the whitelist of value events, the fold
 * policy, the checks on what publishers send, and the SSE frame each event
 * is sent as. No I/O here; every function may run on any thread. */
#include "bus/internal.h"
#include "buf/buf.h"
#include "redact/redact.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const value_types[] = {
    "task.acceptance",  "task.progress.milestone", "task.receipt",
    "approval.request", "approval.decided",        "anomaly.detected",
    "recovery.start",   "recovery.done",           "agent.status",
};

static const char *const severities[] = {"debug", "info", "notice", "warning", "error", "critical"};

#define MILESTONE  "task.progress.milestone"
#define MAX_TYPE   64
#define MAX_IDTEXT 128

static int in_list(const char *s, const char *const *list, size_t n)
{
    if (!s)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (strcmp(s, list[i]) == 0)
            return 1;
    return 0;
}

int aos_bus_is_value_type(const char *type)
{
    return in_list(type, value_types, sizeof(value_types) / sizeof(value_types[0]));
}

int aos_bus_is_severity(const char *severity)
{
    return in_list(severity, severities, sizeof(severities) / sizeof(severities[0]));
}

int64_t aos_bus_fold_window_ms(const char *type)
{
    return type && strcmp(type, MILESTONE) == 0 ? AOS_BUS_FOLD_MS : 0;
}

/* Checks ------------------------------------------------------------------- */

/* The string member key of in, into out (NULL when absent or null). */
static int take_str(const json_t *in, const char *key, size_t max, json_t *out, aos_err_t *err)
{
    json_t *v = json_object_get(in, key);
    /* the keys are this file's ASCII names: no UTF-8 check of them */
    if (!v || json_is_null(v))
        return json_object_set_new_nocheck(out, key, json_null()) ? AOS_ENOMEM : 0;
    if (!json_is_string(v))
        return aos_err_set(err, AOS_EINVAL, "'%s' must be a string", key);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (n == 0)
        return aos_err_set(err, AOS_EINVAL, "'%s' must not be empty", key);
    if (n > max)
        return aos_err_set(err, AOS_EINVAL, "'%s' is longer than %zu bytes", key, max);
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return aos_err_set(err, AOS_EINVAL, "'%s' holds a control character", key);
    return json_object_set_new_nocheck(out, key, json_incref(v)) ? AOS_ENOMEM : 0;
}

static int valid_type(const char *s, size_t n)
{
    if (n == 0 || n > MAX_TYPE)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

static int new_card_id(json_t *out)
{
    unsigned char rnd[12];
    char hex[2 * sizeof(rnd) + 1], id[sizeof(hex) + 8];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
    snprintf(id, sizeof(id), "card_%s", hex);
    return json_object_set_new(out, "card_id", json_string(id)) ? AOS_ENOMEM : 0;
}

/* 1 for a member a publisher may send, 2 for one the bus assigns, 0 for
 * any other: by length first, one comparison at most. */
static int member(const char *k, size_t n)
{
    switch (n) {
    case 2:
        return memcmp(k, "id", 2) ? 0 : 2;
    case 4:
        return memcmp(k, "type", 4) ? 0 : 1;
    case 5:
        return memcmp(k, "topic", 5) ? 0 : 1;
    case 7:
        return memcmp(k, "payload", 7) == 0 || memcmp(k, "card_id", 7) == 0;
    case 8:
        return memcmp(k, "trace_id", 8) == 0 || memcmp(k, "severity", 8) == 0;
    case 10:
        return memcmp(k, "project_id", 10) == 0 ? 1 : memcmp(k, "created_at", 10) == 0 ? 2 : 0;
    case 12:
        return memcmp(k, "card_version", 12) ? 0 : 2;
    default:
        return 0;
    }
}

static int check(const json_t *in, json_t *out, int own, aos_err_t *err)
{
    const char *key;
    size_t klen;
    json_t *v;
    int rc;
    if (!json_is_object(in))
        return aos_err_set(err, AOS_EINVAL, "an event must be an object");
    json_object_keylen_foreach((json_t *)in, key, klen, v)
    {
        int m = member(key, klen);
        if (m == 2)
            return aos_err_set(err, AOS_EINVAL, "'%.64s' is assigned by the bus", key);
        if (m == 0)
            return aos_err_set(err, AOS_EINVAL, "unknown member '%.64s'", key);
    }
    v = json_object_get(in, "type");
    if (!v || json_is_null(v))
        return aos_err_set(err, AOS_EINVAL, "'type' is required");
    if (!json_is_string(v) || !valid_type(json_string_value(v), json_string_length(v)))
        return aos_err_set(err, AOS_EINVAL,
                           "'type' must be 1 to %d characters of a-z, 0-9, '.', '_', '-'",
                           MAX_TYPE);
    const char *type = json_string_value(v);
    if (json_object_set_new_nocheck(out, "type", json_incref(v)))
        return AOS_ENOMEM;
    if ((rc = take_str(in, "trace_id", MAX_IDTEXT, out, err)) ||
        (rc = take_str(in, "topic", MAX_IDTEXT, out, err)) ||
        (rc = take_str(in, "project_id", MAX_IDTEXT, out, err)) ||
        (rc = take_str(in, "card_id", MAX_IDTEXT, out, err)))
        return rc;

    v = json_object_get(in, "severity");
    if (v && !json_is_null(v)) {
        if (!aos_bus_is_severity(json_string_value(v)))
            return aos_err_set(err, AOS_EINVAL,
                               "'severity' must be one of debug, info, notice, warning, error, "
                               "critical");
        if (json_object_set_new_nocheck(out, "severity", json_incref(v)))
            return AOS_ENOMEM;
    } else if (json_object_set_new_nocheck(out, "severity", json_string("info"))) {
        return AOS_ENOMEM;
    }

    v = json_object_get(in, "payload");
    if (own && json_is_object(v)) {
        /* the caller gives the tree up: redacted in place, then written
         * out once, as the text the store keeps (the limit bounds that) */
        aos_buf_t text;
        aos_buf_init(&text, AOS_BUS_MAX_PAYLOAD);
        if (aos_redact_json(aos_redact_global(), (json_t *)v) < 0) {
            aos_buf_release(&text);
            return AOS_ENOMEM;
        }
        if (aos_buf_json(&text, v) || text.len == 0 || text.len > AOS_BUS_MAX_PAYLOAD) {
            aos_buf_release(&text);
            return aos_err_set(err, AOS_EINVAL, "'payload' is larger than %d bytes",
                               AOS_BUS_MAX_PAYLOAD);
        }
        json_t *t = json_stringn_nocheck(text.ptr, text.len);
        aos_buf_release(&text);
        if (!t || json_object_set_new(out, "payload", t))
            return AOS_ENOMEM;
    } else if (v && !json_is_null(v)) {
        if (!json_is_object(v))
            return aos_err_set(err, AOS_EINVAL, "'payload' must be an object");
        aos_buf_t text; /* its size, as jansson would write it */
        aos_buf_init(&text, AOS_BUS_MAX_PAYLOAD);
        size_t n = aos_buf_json(&text, v) ? 0 : text.len;
        aos_buf_release(&text);
        if (n == 0 || n > AOS_BUS_MAX_PAYLOAD)
            return aos_err_set(err, AOS_EINVAL, "'payload' is larger than %d bytes",
                               AOS_BUS_MAX_PAYLOAD);
        /* a copy, redacted (redact.h): the caller's tree is left alone */
        json_t *copy = json_deep_copy(v);
        if (!copy || aos_redact_json(aos_redact_global(), copy) < 0 ||
            json_object_set_new(out, "payload", copy)) {
            json_decref(copy);
            return AOS_ENOMEM;
        }
    } else if (json_object_set_new(out, "payload", json_object())) {
        return AOS_ENOMEM;
    }

    const char *trace = json_string_value(json_object_get(out, "trace_id"));
    int has_card = json_is_string(json_object_get(out, "card_id"));
    if (!aos_bus_is_value_type(type)) {
        if (has_card)
            return aos_err_set(err, AOS_EINVAL, "'card_id' is only for value events");
    } else if (!has_card) {
        if (strcmp(type, MILESTONE) == 0 && trace) {
            /* one progress card per task: its milestones fold into it */
            char id[MAX_IDTEXT + 16];
            snprintf(id, sizeof(id), "progress:%s", trace);
            if (json_object_set_new(out, "card_id", json_string(id)))
                return AOS_ENOMEM;
        } else if ((rc = new_card_id(out))) {
            return rc;
        }
    }
    return 0;
}

int aos__bus_event_check(const json_t *in, int own, json_t **out, aos_err_t *err)
{
    json_t *o = json_object();
    *out = NULL;
    if (!o)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    int rc = check(in, o, own, err);
    if (rc) {
        json_decref(o);
        if (rc == AOS_ENOMEM)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        return rc;
    }
    *out = o;
    return 0;
}

int aos_bus_event_check(const json_t *in, json_t **out, aos_err_t *err)
{
    return aos__bus_event_check(in, 0, out, err);
}

/* The checks of take_str on a C string (NULL: absent). */
static int check_str(const char *s, const char *key, size_t max, aos_err_t *err)
{
    if (!s)
        return 0;
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x20 || s[n] == 0x7f)
            return aos_err_set(err, AOS_EINVAL, "'%s' holds a control character", key);
    if (n == 0)
        return aos_err_set(err, AOS_EINVAL, "'%s' must not be empty", key);
    if (n > max)
        return aos_err_set(err, AOS_EINVAL, "'%s' is longer than %zu bytes", key, max);
    return 0;
}

int aos__bus_event_check_in(aos_store_event_in_t *ev, json_t *payload, aos_buf_t *text,
                            char card[AOS__BUS_CARD_MAX], aos_err_t *err)
{
    int rc;
    if (!ev->type)
        return aos_err_set(err, AOS_EINVAL, "'type' is required");
    if (!valid_type(ev->type, strlen(ev->type)))
        return aos_err_set(err, AOS_EINVAL,
                           "'type' must be 1 to %d characters of a-z, 0-9, '.', '_', '-'",
                           MAX_TYPE);
    if ((rc = check_str(ev->trace_id, "trace_id", MAX_IDTEXT, err)) ||
        (rc = check_str(ev->topic, "topic", MAX_IDTEXT, err)) ||
        (rc = check_str(ev->project_id, "project_id", MAX_IDTEXT, err)) ||
        (rc = check_str(ev->card_id, "card_id", MAX_IDTEXT, err)))
        return rc;
    if (!ev->severity)
        ev->severity = "info";
    else if (!aos_bus_is_severity(ev->severity))
        return aos_err_set(err, AOS_EINVAL,
                           "'severity' must be one of debug, info, notice, warning, error, "
                           "critical");
    if (payload && !json_is_object(payload))
        return aos_err_set(err, AOS_EINVAL, "'payload' must be an object");
    /* redacted in place, then written out once, as the text the store
     * keeps (the limit bounds that): as check() does for an owned tree */
    aos_buf_reset(text);
    if (payload && aos_redact_json(aos_redact_global(), payload) < 0)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    if ((payload ? aos_buf_json(text, payload) : aos_buf_append(text, "{}", 2)) || text->len == 0 ||
        text->len > AOS_BUS_MAX_PAYLOAD)
        return aos_err_set(err, AOS_EINVAL, "'payload' is larger than %d bytes",
                           AOS_BUS_MAX_PAYLOAD);
    ev->payload = text->ptr;

    if (!aos_bus_is_value_type(ev->type)) {
        if (ev->card_id)
            return aos_err_set(err, AOS_EINVAL, "'card_id' is only for value events");
    } else if (!ev->card_id) {
        if (strcmp(ev->type, MILESTONE) == 0 && ev->trace_id) {
            /* one progress card per task: its milestones fold into it */
            snprintf(card, AOS__BUS_CARD_MAX, "progress:%s", ev->trace_id);
        } else {
            unsigned char rnd[12];
            char hex[2 * sizeof(rnd) + 1];
            randombytes_buf(rnd, sizeof(rnd));
            sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
            snprintf(card, AOS__BUS_CARD_MAX, "card_%s", hex);
        }
        ev->card_id = card;
    }
    return 0;
}

/* Delivered events ---------------------------------------------------------- */

/* The envelope's key order, as the store's rows give it (bus.h). */
static const struct {
    const char *key; /* with its quotes and colon, as the frame writes it */
    int col;         /* AOS_STORE_EV_*, or -1 for id, -2 for card_version */
} env_keys[] = {
    {"\"id\":", -1},
    {",\"trace_id\":", AOS_STORE_EV_TRACE_ID},
    {",\"topic\":", AOS_STORE_EV_TOPIC},
    {",\"type\":", AOS_STORE_EV_TYPE},
    {",\"severity\":", AOS_STORE_EV_SEVERITY},
    {",\"payload\":", AOS_STORE_EV_PAYLOAD},
    {",\"created_at\":", AOS_STORE_EV_CREATED_AT},
    {",\"card_id\":", AOS_STORE_EV_CARD_ID},
    {",\"card_version\":", -2},
    {",\"project_id\":", AOS_STORE_EV_PROJECT_ID},
};
#define NENV_KEYS (sizeof(env_keys) / sizeof(env_keys[0]))

/* "id: N\ndata: <envelope>\n\n" from the row's columns: byte for byte what
 * jansson writes for the envelope (compact), the stored payload's text as
 * it is - it was written as compact JSON (store events.c). */
static int put_frame(aos_buf_t *b, const aos_store_event_row_t *r)
{
    int rc;
    if ((rc = aos_buf_append(b, "id: ", 4)) || (rc = aos_buf_int(b, r->id)) ||
        (rc = aos_buf_append(b, "\ndata: {", 8)))
        return rc;
    for (size_t k = 0; k < NENV_KEYS; k++) {
        int col = env_keys[k].col;
        if ((rc = aos_buf_puts(b, env_keys[k].key)))
            return rc;
        if (col == -1)
            rc = aos_buf_int(b, r->id);
        else if (col == -2 && r->card_version)
            rc = aos_buf_int(b, r->card_version);
        else if (col == -2 || !r->text[col])
            rc = aos_buf_append(b, "null", 4);
        else if (col == AOS_STORE_EV_PAYLOAD)
            rc = aos_buf_append(b, r->text[col], r->len[col]);
        else
            rc = aos_buf_json_str(b, r->text[col], r->len[col]);
        if (rc)
            return rc;
    }
    return aos_buf_append(b, "}\n\n", 3);
}

int aos__bus_event_init(aos_bus_event_t *e, const aos_store_event_row_t *r, int frame)
{
    memset(e, 0, sizeof(*e));
    /* one block: the frame (value events: no stream sends another), then
     * each column's text, NUL-terminated */
    aos_buf_t b;
    aos_buf_init(&b, 0);
    size_t need = 2;
    for (int k = 0; k < AOS_STORE_EV_NTEXT; k++)
        need += r->text[k] ? r->len[k] + 1 : 0;
    char type[MAX_TYPE + 1] = "";
    if (r->text[AOS_STORE_EV_TYPE] && r->len[AOS_STORE_EV_TYPE] <= MAX_TYPE) {
        memcpy(type, r->text[AOS_STORE_EV_TYPE], r->len[AOS_STORE_EV_TYPE]);
        type[r->len[AOS_STORE_EV_TYPE]] = '\0';
    }
    /* what a stream may get: live a value type, replayed a row with a card */
    frame = frame && (aos_bus_is_value_type(type) || r->text[AOS_STORE_EV_CARD_ID]);
    if (aos_buf_grow(&b, need + (frame ? 2 * need + 160 : 0)) || (frame && put_frame(&b, r))) {
        aos_buf_release(&b);
        return AOS_ENOMEM;
    }
    size_t sse_len = b.len, at[AOS_STORE_EV_NTEXT];
    if (frame)
        b.len++; /* the frame is a C string too: past its '\0' */
    for (int k = 0; k < AOS_STORE_EV_NTEXT; k++) {
        at[k] = b.len;
        if (!r->text[k])
            continue;
        if (aos_buf_append(&b, r->text[k], r->len[k])) {
            aos_buf_release(&b);
            return AOS_ENOMEM;
        }
        b.len++; /* past the '\0' aos_buf_append keeps after the content */
    }
    char *mem = aos_buf_detach(&b, NULL);
    if (!mem)
        return AOS_ENOMEM;
    const char *t[AOS_STORE_EV_NTEXT];
    for (int k = 0; k < AOS_STORE_EV_NTEXT; k++)
        t[k] = r->text[k] ? mem + at[k] : NULL;
    e->mem = mem;
    e->id = r->id;
    e->type = t[AOS_STORE_EV_TYPE];
    e->trace_id = t[AOS_STORE_EV_TRACE_ID];
    e->project_id = t[AOS_STORE_EV_PROJECT_ID];
    e->topic = t[AOS_STORE_EV_TOPIC];
    e->severity = t[AOS_STORE_EV_SEVERITY];
    e->created_at = t[AOS_STORE_EV_CREATED_AT];
    e->card_id = t[AOS_STORE_EV_CARD_ID];
    e->card_version = r->card_version;
    e->payload = t[AOS_STORE_EV_PAYLOAD];
    e->payload_len = r->len[AOS_STORE_EV_PAYLOAD];
    e->value = aos_bus_is_value_type(e->type);
    if (frame) {
        e->sse = mem;
        e->sse_len = sse_len;
    }
    return 0;
}

/* s as a JSON string, or null. */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

const json_t *aos_bus_event_json(const aos_bus_event_t *e)
{
    if (e->envelope)
        return e->envelope;
    /* built once, the first time a subscriber asks: the stored payload
     * parsed in its place (a text that is no object reads as {}) */
    json_t *p = e->payload ? json_loadb(e->payload, e->payload_len, 0, NULL) : NULL;
    if (p && !json_is_object(p)) {
        json_decref(p);
        p = NULL;
    }
    json_t *env = json_object();
    const struct {
        const char *key;
        json_t *v;
    } m[NENV_KEYS] = {
        {"id", json_integer(e->id)},
        {"trace_id", str_or_null(e->trace_id)},
        {"topic", str_or_null(e->topic)},
        {"type", str_or_null(e->type)},
        {"severity", str_or_null(e->severity)},
        {"payload", p ? p : json_object()},
        {"created_at", str_or_null(e->created_at)},
        {"card_id", str_or_null(e->card_id)},
        {"card_version", e->card_version ? json_integer(e->card_version) : json_null()},
        {"project_id", str_or_null(e->project_id)},
    };
    int bad = !env;
    for (size_t k = 0; k < NENV_KEYS; k++) {
        if (bad)
            json_decref(m[k].v); /* (set_new takes the value, even when it fails) */
        else if (json_object_set_new_nocheck(env, m[k].key, m[k].v))
            bad = 1;
    }
    if (bad) {
        json_decref(env);
        return NULL;
    }
    ((aos_bus_event_t *)e)->envelope = env; /* the event's cache: see bus.h */
    return env;
}

void aos__bus_event_release(aos_bus_event_t *e)
{
    json_decref(e->envelope);
    free(e->mem);
    memset(e, 0, sizeof(*e));
}

void aos__bus_batch_free(aos__bus_batch_t *b)
{
    if (!b)
        return;
    for (size_t i = 0; i < b->n; i++)
        aos__bus_event_release(&b->v[i]);
    free(b->v);
    free(b);
}
