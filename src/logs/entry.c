/* entry.c - the log service's pure parts: what a valid entry is, how
 * timestamps and levels are normalized, how query arguments become a store
 * filter, cursors, and the matcher that picks the live entries a stream
 * subscriber gets. Nothing here touches the loop or the store. */
#include "logs/internal.h"

#include "isotime/isotime.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

/* Levels ------------------------------------------------------------------ */

int aos__logs_level_parse(const char *s)
{
    if (!s)
        return -1;
    if (!strcasecmp(s, "warning"))
        return 3;
    for (int i = 0; i < AOS_STORE_LOG_LEVELS; i++)
        if (!strcasecmp(s, aos_store_log_level_name(i)))
            return i;
    return -1;
}

/* Timestamps ---------------------------------------------------------------- */

int aos__logs_ts_parse(const json_t *v, char out[32], aos_err_t *err)
{
    int64_t ms = -1;
    if (json_is_integer(v))
        ms = json_integer_value(v);
    else if (!json_is_string(v))
        return aos_err_set(err, AOS_EINVAL,
                           "must be an RFC 3339 timestamp or milliseconds since 1970");
    else if (aos_isotime_parse(json_string_value(v), 0, &ms) != 0)
        ms = -1;
    if (ms < 0 || ms > AOS__LOGS_MS_MAX)
        return aos_err_set(err, AOS_EINVAL,
                           "must be an RFC 3339 timestamp with a zone (2025-01-31T12:00:00Z) "
                           "between 1970 and 9999, or milliseconds since 1970");
    aos_isotime_fmt(ms, out);
    return 0;
}

/* Entries ---------------------------------------------------------------------- */

static const char *const entry_fields[] = {"ts",         "level",    "message", "topic",
                                           "attributes", "trace_id", "span_id", "source"};

static int fault_at(aos__logs_fault_t *fault, aos_err_t *err, long index, const char *field,
                    int code, const char *what)
{
    if (fault) {
        fault->index = index;
        snprintf(fault->field, sizeof(fault->field), "%s", field ? field : "");
    }
    if (index < 0)
        return aos_err_set(err, code, "'%s' %s", field, what);
    if (field && *field)
        return aos_err_set(err, code, "entries[%ld].%.40s: %s", index, field, what);
    return aos_err_set(err, code, "entries[%ld]: %s", index, what);
}

/* A name-like string: 1..max bytes, no control characters. */
const char *aos__logs_check_name(const char *text, size_t n, size_t max)
{
    const unsigned char *s = (const unsigned char *)text;
    if (n == 0)
        return "must not be empty";
    if (n > max)
        return "is too long";
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return "must not hold control characters";
    return NULL;
}

/* The sources aosd writes itself: "aosd" and "upstream:<server>", any case
 * (so that no client's line passes for one of them in a list). */
int aos__logs_source_reserved(const char *s)
{
    return s && (!strcasecmp(s, "aosd") || !strncasecmp(s, "upstream:", 9));
}

int aos__logs_batch_check_sources(const aos__logs_batch_t *b, aos__logs_fault_t *fault,
                                  aos_err_t *err)
{
    for (size_t i = 0; i < b->n; i++)
        if (aos__logs_source_reserved(b->rows[i].source))
            return fault_at(fault, err, (long)i, "source", AOS_EFORBIDDEN,
                            "is reserved for aosd's own log lines");
    return 0;
}

/* A trace or span id: 1..max of [A-Za-z0-9._:-]. */
const char *aos__logs_check_id(const char *s, size_t n, size_t max)
{
    if (n == 0 || n > max)
        return "must have 1 to 128 characters";
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '.' || c == '_' || c == ':' || c == '-'))
            return "may hold only letters, digits and . _ : -";
    }
    return NULL;
}

static const char *check_name(const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return "must be a string";
    return aos__logs_check_name(json_string_value(v), json_string_length(v), max);
}

static const char *check_id(const json_t *v, size_t max)
{
    if (!json_is_string(v))
        return "must be a string";
    return aos__logs_check_id(json_string_value(v), json_string_length(v), max);
}

/* Redacts the string v in place (key: the member it belongs to). */
static int redact_string(json_t *v, const char *key, aos_logs_redact_fn fn, void *data,
                         aos_buf_t *tmp)
{
    aos_buf_reset(tmp);
    int rc = fn(key, json_string_value(v), json_string_length(v), tmp, data);
    if (rc == 1)
        rc = json_string_setn(v, tmp->ptr ? tmp->ptr : "", tmp->len) ? AOS_EINVAL : 0;
    return rc < 0 ? rc : 0;
}

/* The member names of object o, redacted as text: a secret can be a key
 * too. A redacted name that collides with another gets "~N" appended. */
static int redact_keys(json_t *o, aos_logs_redact_fn fn, void *data, aos_buf_t *tmp)
{
    const char *k;
    json_t *m;
    void *it;
    json_t *renamed = NULL; /* new name -> value, for the names that change */
    json_t *gone = NULL;    /* the old names */
    json_object_foreach_safe(o, it, k, m)
    {
        aos_buf_reset(tmp);
        int rc = fn(NULL, k, strlen(k), tmp, data);
        if (rc < 0)
            goto nomem;
        if (rc != 1)
            continue;
        if (!renamed && (!(renamed = json_object()) || !(gone = json_array())))
            goto nomem;
        char name[600];
        snprintf(name, sizeof(name), "%.500s", tmp->ptr ? tmp->ptr : "");
        for (int n = 2; json_object_get(o, name) || json_object_get(renamed, name); n++)
            snprintf(name, sizeof(name), "%.500s~%d", tmp->ptr ? tmp->ptr : "", n);
        if (json_object_set(renamed, name, m) || json_array_append_new(gone, json_string(k)))
            goto nomem;
    }
    if (renamed) {
        size_t i;
        json_t *g;
        json_array_foreach(gone, i, g) json_object_del(o, json_string_value(g));
        if (json_object_update(o, renamed))
            goto nomem;
    }
    json_decref(renamed);
    json_decref(gone);
    return 0;
nomem:
    json_decref(renamed);
    json_decref(gone);
    return AOS_ENOMEM;
}

/* Every string value inside v, at any depth, and every member name. */
static int redact_tree(json_t *v, const char *key, aos_logs_redact_fn fn, void *data,
                       aos_buf_t *tmp)
{
    int rc = 0;
    if (json_is_string(v))
        return redact_string(v, key, fn, data, tmp);
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            if ((rc = redact_tree(m, k, fn, data, tmp)) < 0)
                return rc;
        }
        if ((rc = redact_keys(v, fn, data, tmp)) < 0)
            return rc;
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if ((rc = redact_tree(m, key, fn, data, tmp)) < 0)
                return rc;
        }
    }
    return 0;
}

static int parse_entry(aos__logs_batch_t *b, size_t i, json_t *e, aos_logs_redact_fn fn, void *data,
                       aos_buf_t *tmp, aos__logs_fault_t *fault, aos_err_t *err)
{
    aos_store_log_t *r = &b->rows[i];
    aos__logs_aux_t *x = &b->aux[i];
    long idx = (long)i;
    const char *why;
    if (!json_is_object(e))
        return fault_at(fault, err, idx, NULL, AOS_EINVAL, "must be an object");
    const char *k;
    json_t *v;
    json_object_foreach(e, k, v)
    {
        size_t f = 0, nf = sizeof(entry_fields) / sizeof(entry_fields[0]);
        while (f < nf && strcmp(k, entry_fields[f]) != 0)
            f++;
        if (f == nf)
            return fault_at(fault, err, idx, k, AOS_EINVAL, "unknown field");
    }

    v = json_object_get(e, "message");
    if (!json_is_string(v))
        return fault_at(fault, err, idx, "message", AOS_EINVAL,
                        v ? "must be a string" : "is required");
    if (json_string_length(v) > AOS__LOGS_MAX_MESSAGE)
        return fault_at(fault, err, idx, "message", AOS_EINVAL, "is longer than 65536 bytes");
    if (strlen(json_string_value(v)) != json_string_length(v))
        return fault_at(fault, err, idx, "message", AOS_EINVAL, "must not hold NUL characters");

    r->level = 2;
    v = json_object_get(e, "level");
    if (v && !json_is_null(v)) {
        r->level = json_is_string(v) ? aos__logs_level_parse(json_string_value(v)) : -1;
        if (r->level < 0)
            return fault_at(fault, err, idx, "level", AOS_EINVAL,
                            "must be one of trace, debug, info, warn, error, fatal");
    }

    v = json_object_get(e, "ts");
    if (v && !json_is_null(v)) {
        aos_err_t e2 = {0, ""};
        if (aos__logs_ts_parse(v, x->ts, &e2) < 0)
            return fault_at(fault, err, idx, "ts", AOS_EINVAL, aos_err_msg(&e2));
    } else {
        aos_isotime_fmt(aos_isotime_now_ms(), x->ts);
    }
    r->ts = x->ts;

    static const struct {
        const char *name;
        int id; /* 1: an id, else a name */
        size_t max;
    } strs[] = {{"topic", 0, AOS__LOGS_MAX_NAME},
                {"source", 0, AOS__LOGS_MAX_NAME},
                {"trace_id", 1, AOS__LOGS_MAX_ID},
                {"span_id", 1, AOS__LOGS_MAX_ID}};
    const char **dst[] = {&r->topic, &r->source, &r->trace_id, &r->span_id};
    for (size_t s = 0; s < 4; s++) {
        v = json_object_get(e, strs[s].name);
        *dst[s] = NULL;
        if (!v || json_is_null(v))
            continue;
        why = strs[s].id ? check_id(v, strs[s].max) : check_name(v, strs[s].max);
        if (why)
            return fault_at(fault, err, idx, strs[s].name, AOS_EINVAL, why);
        *dst[s] = json_string_value(v);
    }

    v = json_object_get(e, "attributes");
    x->attrs = NULL;
    if (v && !json_is_null(v)) {
        if (!json_is_object(v))
            return fault_at(fault, err, idx, "attributes", AOS_EINVAL, "must be an object");
        x->attrs = v;
    }

    if (fn) {
        int rc = redact_string(json_object_get(e, "message"), NULL, fn, data, tmp);
        if (rc == 0 && x->attrs)
            rc = redact_tree(x->attrs, NULL, fn, data, tmp);
        if (rc < 0)
            return fault_at(fault, err, idx, NULL, rc, "redaction failed");
    }
    v = json_object_get(e, "message");
    r->message = json_string_value(v);
    r->message_len = json_string_length(v);
    r->attributes = NULL;
    if (x->attrs && json_object_size(x->attrs) > 0) {
        x->attrs_text = json_dumps(x->attrs, JSON_COMPACT);
        if (!x->attrs_text)
            return fault_at(fault, err, idx, "attributes", AOS_EINVAL, "cannot be encoded");
        if (strlen(x->attrs_text) > AOS__LOGS_MAX_ATTRS)
            return fault_at(fault, err, idx, "attributes", AOS_EINVAL,
                            "is larger than 32768 bytes as JSON");
        r->attributes = x->attrs_text;
    }
    return 0;
}

void aos__logs_batch_release(aos__logs_batch_t *b)
{
    for (size_t i = 0; b->aux && i < b->n; i++)
        free(b->aux[i].attrs_text);
    free(b->rows);
    free(b->aux);
    free(b->arena);
    json_decref(b->src);
    memset(b, 0, sizeof(*b));
}

int aos__logs_batch_parse(aos__logs_batch_t *b, json_t *entries, aos_logs_redact_fn fn, void *data,
                          aos__logs_fault_t *fault, aos_err_t *err)
{
    memset(b, 0, sizeof(*b));
    if (fault) {
        fault->index = -1;
        snprintf(fault->field, sizeof(fault->field), "entries");
    }
    if (!json_is_array(entries))
        return aos_err_set(err, AOS_EINVAL, "'entries' must be an array of log entries");
    size_t n = json_array_size(entries);
    if (n == 0)
        return aos_err_set(err, AOS_EINVAL, "'entries' must not be empty");
    if (n > AOS__LOGS_MAX_BATCH)
        return aos_err_set(err, AOS_EINVAL, "'entries' holds more than %d entries",
                           AOS__LOGS_MAX_BATCH);
    b->rows = calloc(n, sizeof(*b->rows));
    b->aux = calloc(n, sizeof(*b->aux));
    b->src = json_incref(entries);
    b->n = n;
    if (!b->rows || !b->aux) {
        aos__logs_batch_release(b);
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    aos_buf_t tmp;
    aos_buf_init(&tmp, 0);
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++)
        rc = parse_entry(b, i, json_array_get(entries, i), fn, data, &tmp, fault, err);
    aos_buf_release(&tmp);
    if (rc < 0)
        aos__logs_batch_release(b);
    return rc;
}

static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

json_t *aos__logs_entry_json(const aos__logs_batch_t *b, size_t i)
{
    const aos_store_log_t *r = &b->rows[i];
    const aos__logs_aux_t *x = &b->aux[i];
    /* a scanned batch has the attributes as text only */
    json_t *attrs = !r->attributes ? json_null()
                    : x->attrs     ? json_incref(x->attrs)
                                   : json_loads(r->attributes, 0, NULL);
    return json_pack(
        "{s:I, s:s, s:s, s:s%, s:o, s:o, s:o, s:o, s:o, s:s}", "id", (json_int_t)r->id, "ts", r->ts,
        "level", aos_store_log_level_name(r->level), "message", r->message, r->message_len, "topic",
        str_or_null(r->topic), "attributes", attrs, "trace_id", str_or_null(r->trace_id), "span_id",
        str_or_null(r->span_id), "source", str_or_null(r->source), "created_at", b->created_at);
}

/* Cursors ------------------------------------------------------------------------- */

int aos__logs_cursor_encode(int64_t id, int ascending, char out[48])
{
    char raw[24];
    int n = snprintf(raw, sizeof(raw), "%c%lld", ascending ? 'o' : 'n', (long long)id);
    sodium_bin2base64(out, 48, (const unsigned char *)raw, (size_t)n,
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return 0;
}

int aos__logs_cursor_decode(const char *s, int64_t *id, int *ascending)
{
    unsigned char raw[24];
    size_t n = 0;
    if (!s || strlen(s) > 32 ||
        sodium_base642bin(raw, sizeof(raw) - 1, s, strlen(s), NULL, &n, NULL,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        n < 2 || n > 20 || (raw[0] != 'n' && raw[0] != 'o'))
        return AOS_EINVAL;
    int64_t v = 0;
    for (size_t i = 1; i < n; i++) {
        int d = raw[i] - '0';
        if (d < 0 || d > 9 || v > (INT64_MAX - d) / 10)
            return AOS_EINVAL;
        v = v * 10 + d;
    }
    if (raw[1] == '0' && n > 2) /* one spelling per cursor */
        return AOS_EINVAL;
    *id = v;
    *ascending = raw[0] == 'o';
    return 0;
}

/* Query arguments ------------------------------------------------------------------- */

static int arg_fault(aos__logs_fault_t *fault, aos_err_t *err, const char *name, const char *what)
{
    return fault_at(fault, err, -1, name, AOS_EINVAL, what);
}

/* An integer argument: a JSON integer or a string of digits. */
static int arg_int(const json_t *v, int64_t *out)
{
    if (json_is_integer(v)) {
        *out = json_integer_value(v);
        return 0;
    }
    if (!json_is_string(v))
        return -1;
    const char *s = json_string_value(v);
    int64_t n = 0;
    if (!*s || strlen(s) > 18)
        return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return -1;
        n = n * 10 + (*s - '0');
    }
    *out = n;
    return 0;
}

/* The words of q for live matching, split as the store splits them for
 * FTS5, each reduced to its folded tokens separated by single spaces. */
static int parse_words(aos__logs_query_t *q, const char *text)
{
    const char *wp;
    size_t n;
    int prefix;
    while (aos_store_logs_next_word(&text, &wp, &n, &prefix)) {
        char *t;
        if (aos_store_logs_word_tokens(wp, n, &t) < 0)
            return AOS_ENOMEM;
        aos__logs_word_t *nw = realloc(q->words, (size_t)(q->nwords + 1) * sizeof(*nw));
        if (!nw) {
            free(t);
            return AOS_ENOMEM;
        }
        q->words = nw;
        q->words[q->nwords].text = t;
        q->words[q->nwords++].prefix = prefix;
    }
    return 0;
}

void aos__logs_query_release(aos__logs_query_t *q)
{
    for (int i = 0; i < q->nwords; i++)
        free(q->words[i].text);
    free(q->words);
    json_decref(q->src);
    memset(q, 0, sizeof(*q));
}

static int allowed(const char *name, aos__logs_kind_t kind)
{
    static const char *const common[] = {"level", "traceId", "trace_id", "topic", "source",
                                         "after", "before",  "q",        "limit"};
    for (size_t i = 0; i < sizeof(common) / sizeof(common[0]); i++)
        if (!strcmp(name, common[i]))
            return 1;
    switch (kind) {
    case AOS__LOGS_QUERY:
        return !strcmp(name, "cursor") || !strcmp(name, "order") || !strcmp(name, "group_by");
    case AOS__LOGS_SUBSCRIBE:
        return !strcmp(name, "cursor");
    case AOS__LOGS_STREAM:
        return !strcmp(name, "after_id");
    }
    return 0;
}

int aos__logs_query_parse(aos__logs_query_t *q, json_t *args, aos__logs_kind_t kind,
                          aos__logs_fault_t *fault, aos_err_t *err)
{
    memset(q, 0, sizeof(*q));
    if (fault)
        fault->index = -1;
    if (args && !json_is_object(args))
        return arg_fault(fault, err, "arguments", "must be an object");
    q->src = json_incref(args);
    q->f.limit = AOS__LOGS_PAGE;
    aos_store_logs_filter_t *f = &q->f;
    const char *k;
    json_t *v;
    int rc = 0;
    const char *why;
    json_object_foreach(args, k, v)
    {
        if (!allowed(k, kind)) {
            rc = arg_fault(fault, err, k, "is not a known argument");
            goto fail;
        }
        if (json_is_null(v))
            continue;
        if (!strcmp(k, "level")) {
            f->min_level = json_is_string(v) ? aos__logs_level_parse(json_string_value(v)) : -1;
            if (f->min_level < 0) {
                rc = arg_fault(fault, err, k,
                               "must be one of trace, debug, info, warn, error, fatal");
                goto fail;
            }
        } else if (!strcmp(k, "traceId") || !strcmp(k, "trace_id")) {
            if ((why = check_id(v, AOS__LOGS_MAX_ID))) {
                rc = arg_fault(fault, err, k, why);
                goto fail;
            }
            f->trace_id = json_string_value(v);
        } else if (!strcmp(k, "topic") || !strcmp(k, "source")) {
            if ((why = check_name(v, AOS__LOGS_MAX_NAME))) {
                rc = arg_fault(fault, err, k, why);
                goto fail;
            }
            *(k[0] == 't' ? &f->topic : &f->source) = json_string_value(v);
        } else if (!strcmp(k, "after") || !strcmp(k, "before")) {
            char *dst = k[0] == 'a' ? q->after : q->before;
            aos_err_t e2 = {0, ""};
            int64_t ms;
            /* a query string gives milliseconds as text */
            if (json_is_string(v) && arg_int(v, &ms) == 0) {
                json_t *n = json_integer(ms);
                rc = aos__logs_ts_parse(n, dst, &e2);
                json_decref(n);
            } else {
                rc = aos__logs_ts_parse(v, dst, &e2);
            }
            if (rc < 0) {
                rc = arg_fault(fault, err, k, aos_err_msg(&e2));
                goto fail;
            }
            *(k[0] == 'a' ? &f->after : &f->before) = dst;
        } else if (!strcmp(k, "q")) {
            char *expr = NULL;
            aos_err_t e2 = {0, ""};
            if (!json_is_string(v)) {
                rc = arg_fault(fault, err, k, "must be a string");
                goto fail;
            }
            if (aos_store_logs_fts(json_string_value(v), &expr, &e2) < 0) {
                /* the store's message already names 'q' */
                if (fault)
                    snprintf(fault->field, sizeof(fault->field), "q");
                rc = aos_err_set(err, AOS_EINVAL, "%s", aos_err_msg(&e2));
                goto fail;
            }
            free(expr);
            f->q = json_string_value(v);
            if ((rc = parse_words(q, f->q)) < 0) {
                rc = aos_err_set(err, rc, "out of memory");
                goto fail;
            }
        } else if (!strcmp(k, "limit")) {
            int64_t n;
            if (arg_int(v, &n) < 0 || n < 1 || n > AOS_STORE_LIST_MAX) {
                rc = arg_fault(fault, err, k, "must be an integer from 1 to 1000");
                goto fail;
            }
            f->limit = (int)n;
        } else if (!strcmp(k, "after_id")) {
            int64_t n;
            if (arg_int(v, &n) < 0 || n < 0) {
                rc = arg_fault(fault, err, k, "must be an entry id (an integer >= 0)");
                goto fail;
            }
            f->after_id = n;
            q->has_after_id = 1;
        } else if (!strcmp(k, "order")) {
            const char *o = json_string_value(v);
            if (!o || (strcmp(o, "asc") && strcmp(o, "desc"))) {
                rc = arg_fault(fault, err, k, "must be asc or desc");
                goto fail;
            }
            f->ascending = !strcmp(o, "asc");
        } else if (!strcmp(k, "group_by")) {
            const char *g = json_string_value(v);
            static const char *const groups[] = {"topic", "level", "source"};
            for (size_t i = 0; g && i < 3; i++)
                if (!strcmp(g, groups[i]))
                    q->group_by = groups[i];
            if (!q->group_by) {
                rc = arg_fault(fault, err, k, "must be topic, level or source");
                goto fail;
            }
        }
    }
    /* The cursor last: it must agree with the order. */
    v = json_object_get(args, "cursor");
    if (v && !json_is_null(v)) {
        int64_t id;
        int asc;
        if (!json_is_string(v) || aos__logs_cursor_decode(json_string_value(v), &id, &asc) < 0) {
            rc = arg_fault(fault, err, "cursor", "is not a cursor this service gave out");
            goto fail;
        }
        if (kind == AOS__LOGS_SUBSCRIBE && !asc) {
            rc = arg_fault(fault, err, "cursor", "is a query cursor, not a subscription's");
            goto fail;
        }
        if (kind == AOS__LOGS_QUERY && asc != f->ascending) {
            rc = arg_fault(fault, err, "cursor", "was given for the other order");
            goto fail;
        }
        if (asc)
            f->after_id = id;
        else
            f->before_id = id;
        q->has_cursor = 1;
    }
    if (kind == AOS__LOGS_SUBSCRIBE)
        f->ascending = 1;
    if (q->group_by && q->has_cursor) {
        rc = arg_fault(fault, err, "cursor", "cannot be used with group_by");
        goto fail;
    }
    return 0;
fail:
    aos__logs_query_release(q);
    return rc;
}

/* Live matching --------------------------------------------------------------------- */

int aos__logs_query_match(const aos__logs_query_t *q, const aos_store_log_t *r)
{
    const aos_store_logs_filter_t *f = &q->f;
    if (r->level < f->min_level)
        return 0;
    if (f->trace_id && (!r->trace_id || strcmp(f->trace_id, r->trace_id)))
        return 0;
    if (f->topic && (!r->topic || strcmp(f->topic, r->topic)))
        return 0;
    if (f->source && (!r->source || strcmp(f->source, r->source)))
        return 0;
    if (f->after && strcmp(r->ts, f->after) <= 0)
        return 0;
    if (f->before && strcmp(r->ts, f->before) >= 0)
        return 0;
    for (int i = 0; i < q->nwords; i++)
        if (!aos_store_logs_phrase_match(r->message, r->message_len, q->words[i].text,
                                         q->words[i].prefix))
            return 0;
    return 1;
}
