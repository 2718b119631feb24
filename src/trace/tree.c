/* tree.c - a page of stored spans as the JSON GET /api/traces/:traceId
 * answers with. Pure: no loop, no store; it runs on libuv's thread pool.
 *
 * The parent of each span is found by binary search in the page's span ids
 * sorted once (no allocation per span), children are laid out per parent
 * in start order (a prefix sum over the child counts), and the tree is
 * written depth first with an explicit stack: a trace as deep as it is
 * long costs no recursion here, and no client has to parse JSON nested
 * more than AOS__TRACE_DEPTH levels - deeper spans go to the top level with
 * their parent_span_id, as do the spans of a parent cycle, which ids from
 * outside could make.
 *
 * The text is written straight into a buffer rather than through a jansson
 * tree: for a trace of 10,000 spans the tree (some 300,000 values, the
 * stored attributes parsed again) took 0.5 to 1 s and tens of megabytes of
 * small allocations to build, print and free on our test machine, the
 * direct writer a few tens of milliseconds. The attributes, events and
 * links are the JSON text span.c stored (jansson's output), copied as they
 * are when they have the shape it gives them (the right brackets, UTF-8, no
 * control character), else shown empty; every other string is escaped
 * here. The unit tests parse what this writes with jansson. */
#include "trace/internal.h"

#include "utf8/utf8.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NONE SIZE_MAX

void aos__trace_iso(int64_t ns, char out[32])
{
    int64_t rem = ns % 1000000000;
    time_t secs = (time_t)(ns / 1000000000);
    if (rem < 0) { /* before the epoch: floor */
        rem += 1000000000;
        secs--;
    }
    int ms = (int)(rem / 1000000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm)) {
        snprintf(out, 32, "1970-01-01T00:00:00.000Z");
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", ms);
}

/* ---- writing JSON text ------------------------------------------------------ */

typedef struct {
    aos_buf_t *b;
    int failed;            /* out of memory: everything after is skipped */
    const aos_map_t *logs; /* span id -> JSON array text of its log lines; may be NULL */
} writer_t;

static void put(writer_t *w, const char *s, size_t n)
{
    if (!w->failed && aos_buf_append(w->b, s, n) < 0)
        w->failed = 1;
}

static void puts_(writer_t *w, const char *s)
{
    put(w, s, strlen(s));
}

static void put_int(writer_t *w, long long v)
{
    char t[24];
    int n = snprintf(t, sizeof(t), "%lld", v);
    put(w, t, (size_t)n);
}

/* s as a JSON string: quotes, backslashes and control characters escaped,
 * invalid UTF-8 shown as U+FFFD. */
static void put_str(writer_t *w, const char *s)
{
    size_t n = strlen(s);
    char *scrubbed = NULL;
    if (!aos_utf8_valid(s, n)) {
        size_t cap = 3 * n + 1;
        if (!(scrubbed = malloc(cap))) {
            w->failed = 1;
            return;
        }
        n = aos_utf8_scrub(scrubbed, cap, s, n);
        s = scrubbed;
    }
    put(w, "\"", 1);
    size_t run = 0; /* bytes copied as they are, waiting */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            run++;
            continue;
        }
        put(w, s + i - run, run);
        run = 0;
        char esc[8];
        switch (c) {
        case '"':
            puts_(w, "\\\"");
            break;
        case '\\':
            puts_(w, "\\\\");
            break;
        case '\n':
            puts_(w, "\\n");
            break;
        case '\r':
            puts_(w, "\\r");
            break;
        case '\t':
            puts_(w, "\\t");
            break;
        default:
            snprintf(esc, sizeof(esc), "\\u%04x", c);
            puts_(w, esc);
        }
    }
    put(w, s + n - run, run);
    put(w, "\"", 1);
    free(scrubbed);
}

/* "name": (a constant key) */
static void put_key(writer_t *w, const char *key)
{
    put(w, "\"", 1);
    puts_(w, key);
    put(w, "\":", 2);
}

/* JSON text stored by span.c, as it is when it has the shape jansson gives
 * an object (open '{') or an array ('['), else dflt. */
static void put_stored(writer_t *w, const char *text, char open, char close, const char *dflt)
{
    size_t n = text ? strlen(text) : 0;
    int ok = n >= 2 && text[0] == open && text[n - 1] == close && aos_utf8_valid(text, n);
    for (size_t i = 0; ok && i < n; i++)
        ok = (unsigned char)text[i] >= 0x20;
    if (ok)
        put(w, text, n);
    else
        puts_(w, dflt);
}

static const char *const kinds[] = {"UNSPECIFIED", "INTERNAL", "SERVER",
                                    "CLIENT",      "PRODUCER", "CONSUMER"};
static const char *const codes[] = {"UNSET", "OK", "ERROR"};

/* One span, without the closing "]}" of its children. */
static void put_span(writer_t *w, const aos_store_span_t *r)
{
    char iso[32], dur[48];
    aos__trace_iso(r->start_ns, iso);
    put(w, "{", 1);
    put_key(w, "span_id");
    put_str(w, r->span_id);
    puts_(w, ",");
    put_key(w, "parent_span_id");
    if (r->parent_span_id)
        put_str(w, r->parent_span_id);
    else
        puts_(w, "null");
    puts_(w, ",");
    put_key(w, "name");
    put_str(w, r->name);
    puts_(w, ",");
    put_key(w, "kind");
    put_str(w, r->kind >= 0 && r->kind <= 5 ? kinds[r->kind] : kinds[0]);
    puts_(w, ",");
    put_key(w, "start_time");
    put_str(w, iso);
    puts_(w, ",");
    put_key(w, "duration_ms");
    snprintf(dur, sizeof(dur), "%.6f", (double)(r->end_ns - r->start_ns) / 1e6);
    puts_(w, dur);
    /* nanoseconds as strings, as OTLP/JSON writes 64-bit integers: a
     * JavaScript number loses them past 2^53 */
    puts_(w, ",\"start_time_unix_nano\":\"");
    put_int(w, (long long)r->start_ns);
    puts_(w, "\",\"end_time_unix_nano\":\"");
    put_int(w, (long long)r->end_ns);
    puts_(w, "\",\"status\":{\"code\":");
    put_str(w, r->status_code >= 0 && r->status_code <= 2 ? codes[r->status_code] : codes[0]);
    if (r->status_message) {
        puts_(w, ",\"message\":");
        put_str(w, r->status_message);
    }
    puts_(w, "},\"attributes\":");
    put_stored(w, r->attributes, '{', '}', "{}");
    puts_(w, ",\"events\":");
    put_stored(w, r->events, '[', ']', "[]");
    puts_(w, ",\"links\":");
    put_stored(w, r->links, '[', ']', "[]");
    puts_(w, ",\"flags\":");
    put_int(w, (long long)r->flags);
    if (r->trace_state) {
        puts_(w, ",\"trace_state\":");
        put_str(w, r->trace_state);
    }
    if (r->resource_id) {
        puts_(w, ",\"resource_id\":");
        put_int(w, (long long)r->resource_id);
    }
    const struct {
        const char *name;
        uint32_t n;
    } dropped[] = {{"dropped_attributes_count", r->dropped_attributes},
                   {"dropped_events_count", r->dropped_events},
                   {"dropped_links_count", r->dropped_links}};
    for (size_t i = 0; i < sizeof(dropped) / sizeof(dropped[0]); i++) {
        if (dropped[i].n) {
            puts_(w, ",");
            put_key(w, dropped[i].name);
            put_int(w, (long long)dropped[i].n);
        }
    }
    const char *logs = w->logs ? aos_map_get(w->logs, r->span_id) : NULL;
    if (logs) {
        puts_(w, ",\"logs\":");
        puts_(w, logs);
    }
    puts_(w, ",\"children\":[");
}

/* ---- the tree ---------------------------------------------------------------- */

typedef struct {
    const char *id;
    size_t idx;
} by_id_t;

static int cmp_id(const void *a, const void *b)
{
    const by_id_t *x = a, *y = b;
    int c = strcmp(x->id, y->id);
    return c ? c : (x->idx < y->idx ? -1 : x->idx > y->idx);
}

/* The first row (in start order) whose span id is id, or NONE. */
static size_t find(const by_id_t *sorted, size_t n, const char *id)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (strcmp(sorted[mid].id, id) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && !strcmp(sorted[lo].id, id) ? sorted[lo].idx : NONE;
}

typedef struct {
    size_t idx;
    size_t next; /* the next of its children to look at: kids[next] */
    int wrote;   /* a child was written: the next needs a comma */
} frame_t;

struct tree {
    const aos_store_span_t *rows;
    size_t n;
    size_t *kids, *off; /* children of p: kids[off[p] .. off[p + 1]) */
    unsigned char *done;
    size_t *later; /* spans sent to the top level: too deep */
    size_t nlater;
    int wrote; /* a top-level span was written */
};

/* Writes the subtree of root at the top level, depth first. */
static void emit(struct tree *t, writer_t *w, size_t root)
{
    frame_t stack[AOS__TRACE_DEPTH];
    size_t sp = 0;
    if (t->done[root])
        return;
    if (t->wrote)
        puts_(w, ",");
    t->wrote = 1;
    t->done[root] = 1;
    put_span(w, &t->rows[root]);
    stack[sp++] = (frame_t){root, t->off[root], 0};
    while (sp && !w->failed) {
        frame_t *f = &stack[sp - 1];
        if (f->next == t->off[f->idx + 1]) {
            puts_(w, "]}");
            sp--;
            continue;
        }
        size_t c = t->kids[f->next++];
        if (t->done[c])
            continue; /* a parent cycle led back here */
        if (sp == AOS__TRACE_DEPTH) {
            t->later[t->nlater++] = c; /* each span is some one's child once */
            continue;
        }
        if (f->wrote)
            puts_(w, ",");
        f->wrote = 1;
        t->done[c] = 1;
        put_span(w, &t->rows[c]);
        stack[sp++] = (frame_t){c, t->off[c], 0};
    }
}

static int write_tree(writer_t *w, const aos_store_span_t *rows, size_t n)
{
    struct tree t = {rows, n, NULL, NULL, NULL, NULL, 0, 0};
    size_t m = n ? n : 1;
    by_id_t *sorted = malloc(m * sizeof(*sorted));
    size_t *parent = malloc(m * sizeof(*parent));
    t.kids = malloc(m * sizeof(*t.kids));
    t.off = calloc(n + 2, sizeof(*t.off));
    t.done = calloc(m, 1);
    t.later = malloc(m * sizeof(*t.later));
    if (!sorted || !parent || !t.kids || !t.off || !t.done || !t.later) {
        w->failed = 1;
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = (by_id_t){rows[i].span_id, i};
    qsort(sorted, n, sizeof(*sorted), cmp_id);
    for (size_t i = 0; i < n; i++) {
        size_t p = rows[i].parent_span_id ? find(sorted, n, rows[i].parent_span_id) : NONE;
        parent[i] = p == i ? NONE : p;
        if (parent[i] != NONE)
            t.off[parent[i] + 2]++;
    }
    /* off[p + 1] = where p's children start; moved to their end as they are
     * filled in start order, so that p's are then off[p] .. off[p + 1] */
    for (size_t p = 0; p < n; p++)
        t.off[p + 2] += t.off[p + 1];
    for (size_t i = 0; i < n; i++)
        if (parent[i] != NONE)
            t.kids[t.off[parent[i] + 1]++] = i;
    puts_(w, "[");
    /* roots in start order, then what was too deep, then parent cycles */
    for (size_t i = 0; i < n; i++)
        if (parent[i] == NONE)
            emit(&t, w, i);
    for (size_t k = 0; k < t.nlater; k++)
        emit(&t, w, t.later[k]);
    for (size_t i = 0; i < n; i++) {
        if (t.done[i])
            continue;
        size_t from = t.nlater;
        emit(&t, w, i);
        for (size_t k = from; k < t.nlater; k++)
            emit(&t, w, t.later[k]);
    }
    puts_(w, "]");
out:
    free(sorted);
    free(parent);
    free(t.kids);
    free(t.off);
    free(t.done);
    free(t.later);
    return w->failed ? AOS_ENOMEM : 0;
}

int aos__trace_tree(aos_buf_t *out, const aos_store_span_t *rows, size_t n)
{
    writer_t w = {out, 0, NULL};
    return write_tree(&w, rows, n);
}

int aos__trace_render(aos_buf_t *out, const char *trace_id, int64_t total,
                      const aos_store_span_t *rows, size_t n, const aos__trace_resource_t *res,
                      size_t nres, const char *next_cursor)
{
    return aos__trace_render_logs(out, trace_id, total, rows, n, res, nres, next_cursor, NULL);
}

int aos__trace_render_logs(aos_buf_t *out, const char *trace_id, int64_t total,
                           const aos_store_span_t *rows, size_t n, const aos__trace_resource_t *res,
                           size_t nres, const char *next_cursor, const aos__trace_logs_t *logs)
{
    writer_t w = {out, 0, logs ? logs->by_span : NULL};
    puts_(&w, "{\"trace_id\":");
    put_str(&w, trace_id);
    puts_(&w, ",\"span_count\":");
    put_int(&w, (long long)total);
    puts_(&w, ",\"spans\":");
    write_tree(&w, rows, n);
    puts_(&w, ",\"resources\":[");
    for (size_t i = 0; i < nres; i++) {
        puts_(&w, i ? ",{\"id\":" : "{\"id\":");
        put_int(&w, (long long)res[i].id);
        puts_(&w, ",\"attributes\":");
        put_stored(&w, res[i].attributes, '{', '}', "{}");
        puts_(&w, "}");
    }
    puts_(&w, "]");
    if (logs) {
        puts_(&w, ",\"logs\":");
        puts_(&w, logs->others ? logs->others : "[]");
        puts_(&w, logs->truncated ? ",\"logs_truncated\":true" : ",\"logs_truncated\":false");
    }
    puts_(&w, ",\"next_cursor\":");
    if (next_cursor)
        put_str(&w, next_cursor);
    else
        puts_(&w, "null");
    puts_(&w, "}");
    return w.failed ? AOS_ENOMEM : 0;
}
