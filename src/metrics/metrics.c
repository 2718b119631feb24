/* metrics.c - metric families and the Prometheus text exposition.
 *
 * Each family indexes its series by their joined label values; the series
 * count is capped (metrics.h), the overflow going to one series labelled
 * "other", so a render is at most families x max_series series. A render
 * runs on the loop, so it does little per line: a series keeps its labels
 * as the escaped text of the exposition and a histogram its "le" values,
 * both made once, and a line is a few appends with integers written by
 * hand, not printf. */
#include "metrics/metrics.h"
#include "err/err.h"
#include "map/map.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS  4
#define MAX_COLLECT 16

enum type { COUNTER, GAUGE, HISTOGRAM };

struct series {
    char *labels; /* k1="v1",k2="v2" (escaped), or NULL without labels */
    size_t labels_len;
    double value;   /* counter, gauge; histogram sum */
    uint64_t count; /* histogram */
    uint64_t *buckets;
    struct series *next; /* in creation order, for stable output */
};

struct aos_metric_s {
    aos_metrics_t *m; /* borrowed: the registry it belongs to */
    char *name, *help;
    enum type type;
    char *label_names[MAX_LABELS];
    int nlabels;
    double *bounds;
    char (*le)[32]; /* bounds as text, then "+Inf" */
    size_t nbounds;
    aos_map_t index; /* joined label values -> series */
    size_t nseries;
    struct series *first, *last;
    aos_metric_t *next;
};

struct aos_metrics_s {
    aos_metric_t *first, *last;
    size_t max_series;
    aos_metric_t *overflow; /* aos_metrics_overflow_total, made when first needed */
    size_t last_len;        /* bytes of the last render: room made at once */
    struct {
        aos_metrics_collect_fn fn;
        void *data;
    } collect[MAX_COLLECT];
    int ncollect;
};

aos_metrics_t *aos_metrics_new(void)
{
    aos_metrics_t *m = calloc(1, sizeof(aos_metrics_t));
    if (m)
        m->max_series = AOS_METRICS_MAX_SERIES;
    return m;
}

void aos_metrics_set_max_series(aos_metrics_t *m, size_t max)
{
    m->max_series = max ? max : 1;
}

static void series_free(struct series *s)
{
    free(s->labels);
    free(s->buckets);
    free(s);
}

void aos_metric_clear(aos_metric_t *f)
{
    for (struct series *s = f->first, *n; s; s = n) {
        n = s->next;
        series_free(s);
    }
    f->first = f->last = NULL;
    f->nseries = 0;
    aos_map_release(&f->index);
}

void aos_metrics_free(aos_metrics_t *m)
{
    if (!m)
        return;
    for (aos_metric_t *f = m->first, *n; f; f = n) {
        n = f->next;
        aos_metric_clear(f);
        for (int i = 0; i < f->nlabels; i++)
            free(f->label_names[i]);
        free(f->name);
        free(f->help);
        free(f->bounds);
        free(f->le);
        free(f);
    }
    free(m);
}

/* The shortest text that reads back as exactly v. */
static void fmt_double(char *out, size_t n, double v)
{
    for (int prec = 15; prec <= 17; prec++) {
        snprintf(out, n, "%.*g", prec, v);
        if (strtod(out, NULL) == v)
            return;
    }
}

static aos_metric_t *family(aos_metrics_t *m, const char *name, const char *help,
                            const char *labels, enum type t)
{
    aos_metric_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
    f->m = m;
    f->name = strdup(name);
    f->help = strdup(help);
    f->type = t;
    aos_map_init(&f->index);
    if (labels) {
        char *copy = strdup(labels), *save = NULL;
        for (char *tok = strtok_r(copy, ",", &save); tok && f->nlabels < MAX_LABELS;
             tok = strtok_r(NULL, ",", &save))
            f->label_names[f->nlabels++] = strdup(tok);
        free(copy);
    }
    if (m->last)
        m->last->next = f;
    else
        m->first = f;
    m->last = f;
    return f;
}

aos_metric_t *aos_metrics_counter(aos_metrics_t *m, const char *name, const char *help,
                                  const char *labels)
{
    return family(m, name, help, labels, COUNTER);
}

aos_metric_t *aos_metrics_gauge(aos_metrics_t *m, const char *name, const char *help,
                                const char *labels)
{
    return family(m, name, help, labels, GAUGE);
}

aos_metric_t *aos_metrics_histogram(aos_metrics_t *m, const char *name, const char *help,
                                    const char *labels, const double *bounds, size_t nbounds)
{
    aos_metric_t *f = family(m, name, help, labels, HISTOGRAM);
    if (!f)
        return NULL;
    f->bounds = malloc((nbounds ? nbounds : 1) * sizeof(double));
    f->le = calloc(nbounds + 1, sizeof(*f->le));
    if (f->bounds && f->le && bounds && nbounds) {
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
        for (size_t i = 0; i < nbounds; i++)
            fmt_double(f->le[i], sizeof(f->le[i]), bounds[i]);
    }
    return f;
}

/* s escaped for the exposition: backslash and newline, and in a label
 * value the double quote. Plain runs go in whole. */
static int put_escaped(aos_buf_t *o, const char *s, int help)
{
    int rc = 0;
    while (*s && !rc) {
        size_t n = strcspn(s, help ? "\\\n" : "\\\n\"");
        rc = aos_buf_append(o, s, n);
        s += n;
        if (*s && !rc) {
            rc = aos_buf_puts(o, *s == '\\' ? "\\\\" : *s == '\n' ? "\\n" : "\\\"");
            s++;
        }
    }
    return rc;
}

/* The series of exactly these label values, or NULL. key: each value with
 * its length in front, so that no two lists of values share a key. */
/* A series' key: "<length>:<value>" per label, so that no two lists of
 * values make the same key. Values are at most AOS_METRICS_MAX_VALUE bytes
 * (lookup sees to it), so a key fits on the stack: this runs for every
 * count of every call. */
#define KEY_MAX (MAX_LABELS * (AOS_METRICS_MAX_VALUE + 5) + 1)

static void make_key(const aos_metric_t *f, const char *const *vals, char *key)
{
    size_t o = 0;
    for (int i = 0; i < f->nlabels; i++) {
        size_t len = strlen(vals[i]), n = len;
        char d[4];
        int nd = 0;
        do
            d[nd++] = (char)('0' + n % 10);
        while ((n /= 10) && nd < 4);
        while (nd)
            key[o++] = d[--nd];
        key[o++] = ':';
        memcpy(key + o, vals[i], len);
        o += len;
    }
    key[o] = '\0';
}

static struct series *find(aos_metric_t *f, const char *const *vals, char *key)
{
    make_key(f, vals, key);
    return aos_map_get(&f->index, key);
}

static struct series *create(aos_metric_t *f, const char *const *vals, const char *key)
{
    struct series *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    aos_buf_t text = AOS_BUF_INIT;
    int rc = 0;
    for (int i = 0; i < f->nlabels && !rc; i++) {
        if (i)
            rc = aos_buf_puts(&text, ",");
        if (!rc)
            rc = aos_buf_puts(&text, f->label_names[i]);
        if (!rc)
            rc = aos_buf_puts(&text, "=\"");
        if (!rc)
            rc = put_escaped(&text, vals[i], 0);
        if (!rc)
            rc = aos_buf_puts(&text, "\"");
    }
    s->labels = text.ptr;
    s->labels_len = text.len;
    if (f->type == HISTOGRAM && !(s->buckets = calloc(f->nbounds + 1, sizeof(uint64_t))))
        rc = AOS_ENOMEM;
    if (rc || aos_map_put(&f->index, key, s)) {
        series_free(s);
        return NULL;
    }
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
    f->nseries++;
    return s;
}

/* A full family's observation for new label values: counted, and given
 * to its overflow series. */
static void overflowed(aos_metric_t *f)
{
    aos_metrics_t *m = f->m;
    if (f == m->overflow)
        return; /* one series per family at most: cannot fill up */
    if (!m->overflow)
        m->overflow = aos_metrics_counter(
            m, "aos_metrics_overflow_total",
            "Observations counted under the label value \"other\" because their metric "
            "reached its limit of series",
            "metric");
    aos_metric_add(m->overflow, 1, f->name);
}

static struct series *lookup(aos_metric_t *f, va_list ap)
{
    const char *vals[MAX_LABELS];
    for (int i = 0; i < f->nlabels; i++) {
        vals[i] = va_arg(ap, const char *);
        if (!vals[i])
            vals[i] = "";
        else if (strlen(vals[i]) > AOS_METRICS_MAX_VALUE)
            vals[i] = AOS_METRICS_OTHER;
    }
    char key[KEY_MAX];
    struct series *s = find(f, vals, key);
    if (!s && f->nseries >= f->m->max_series) {
        overflowed(f);
        for (int i = 0; i < f->nlabels; i++)
            vals[i] = AOS_METRICS_OTHER;
        s = find(f, vals, key);
    }
    if (!s) /* the overflow series may be one past the limit */
        s = create(f, vals, key);
    return s;
}

void aos_metric_add(aos_metric_t *f, double v, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, v);
    struct series *s = lookup(f, ap);
    va_end(ap);
    if (s)
        s->value += v;
}

void aos_metric_set(aos_metric_t *f, double v, ...)
{
    if (!f)
        return;
    va_list ap;
    va_start(ap, v);
    struct series *s = lookup(f, ap);
    va_end(ap);
    if (s)
        s->value = v;
}

void aos_metric_observe(aos_metric_t *f, double v, ...)
{
    if (!f || f->type != HISTOGRAM)
        return;
    va_list ap;
    va_start(ap, v);
    struct series *s = lookup(f, ap);
    va_end(ap);
    if (!s || !s->buckets)
        return;
    size_t i = 0;
    while (i < f->nbounds && v > f->bounds[i])
        i++;
    s->buckets[i]++;
    s->count++;
    s->value += v;
}

void aos_metric_set_histogram(aos_metric_t *f, const uint64_t *buckets, double sum, ...)
{
    if (!f || f->type != HISTOGRAM)
        return;
    va_list ap;
    va_start(ap, sum);
    struct series *s = lookup(f, ap);
    va_end(ap);
    if (!s || !s->buckets)
        return;
    s->count = 0;
    for (size_t i = 0; i <= f->nbounds; i++) {
        s->buckets[i] = buckets[i];
        s->count += buckets[i];
    }
    s->value = sum;
}

int aos_metrics_on_collect(aos_metrics_t *m, aos_metrics_collect_fn fn, void *data)
{
    if (m->ncollect == MAX_COLLECT)
        return AOS_ETOOBIG;
    m->collect[m->ncollect].fn = fn;
    m->collect[m->ncollect++].data = data;
    return 0;
}

/* v as text: integers (most values: counts, buckets) by hand. */
static int put_value(aos_buf_t *o, double v)
{
    char t[40];
    size_t n;
    if (v == floor(v) && fabs(v) < 1e15) {
        uint64_t u = (uint64_t)fabs(v);
        char *p = t + sizeof(t);
        do
            *--p = (char)('0' + u % 10);
        while (u /= 10);
        if (v < 0)
            *--p = '-';
        n = (size_t)(t + sizeof(t) - p);
        memmove(t, p, n);
    } else {
        fmt_double(t, sizeof(t), v);
        n = strlen(t);
    }
    int rc = aos_buf_grow(o, n + 2);
    if (rc)
        return rc;
    o->ptr[o->len++] = ' ';
    memcpy(o->ptr + o->len, t, n);
    o->len += n;
    o->ptr[o->len++] = '\n';
    o->ptr[o->len] = '\0';
    return 0;
}

/* One sample line: name+suffix, labels (and le), value. */
static int put_sample(aos_buf_t *o, const aos_metric_t *f, const char *suffix,
                      const struct series *s, const char *le, double v)
{
    int rc = aos_buf_puts(o, f->name);
    if (!rc && *suffix)
        rc = aos_buf_puts(o, suffix);
    if (!rc && (s->labels_len || le)) {
        rc = aos_buf_puts(o, "{");
        if (!rc && s->labels_len)
            rc = aos_buf_append(o, s->labels, s->labels_len);
        if (!rc && le)
            rc = aos_buf_puts(o, s->labels_len ? ",le=\"" : "le=\"");
        if (!rc && le)
            rc = aos_buf_puts(o, le);
        if (!rc)
            rc = aos_buf_puts(o, le ? "\"}" : "}");
    }
    return rc ? rc : put_value(o, v);
}

void aos_metrics_collect(aos_metrics_t *m)
{
    for (int i = 0; i < m->ncollect; i++)
        m->collect[i].fn(m, m->collect[i].data);
}

void aos_metrics_each(aos_metrics_t *m, aos_metrics_each_fn fn, void *data)
{
    for (aos_metric_t *f = m->first; f; f = f->next)
        for (struct series *s = f->first; s; s = s->next) {
            aos_metric_sample_t x = {
                .name = f->name,
                .type = f->type == COUNTER ? AOS_METRIC_COUNTER
                        : f->type == GAUGE ? AOS_METRIC_GAUGE
                                           : AOS_METRIC_HISTOGRAM,
                .labels = s->labels ? s->labels : "",
                .value = s->value,
                .count = s->count,
                .bounds = f->bounds,
                .nbounds = f->nbounds,
                .buckets = s->buckets,
            };
            fn(&x, data);
        }
}

int aos_metrics_render(aos_metrics_t *m, aos_buf_t *o)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    aos_metrics_collect(m);
    size_t start = o->len;
    if (m->last_len)
        aos_buf_grow(o, m->last_len + m->last_len / 8); /* a hint: failing is fine */
    for (aos_metric_t *f = m->first; f && !rc; f = f->next) {
        rc = aos_buf_printf(o, "# HELP %s ", f->name);
        if (!rc)
            rc = put_escaped(o, f->help, 1);
        if (!rc)
            rc = aos_buf_printf(o, "\n# TYPE %s %s\n", f->name, types[f->type]);
        for (struct series *s = f->first; s && !rc; s = s->next) {
            if (f->type != HISTOGRAM) {
                rc = put_sample(o, f, "", s, NULL, s->value);
                continue;
            }
            uint64_t cum = 0;
            for (size_t b = 0; b <= f->nbounds && !rc; b++) {
                cum += s->buckets[b];
                rc =
                    put_sample(o, f, "_bucket", s, b < f->nbounds ? f->le[b] : "+Inf", (double)cum);
            }
            if (!rc)
                rc = put_sample(o, f, "_sum", s, NULL, s->value);
            if (!rc)
                rc = put_sample(o, f, "_count", s, NULL, (double)s->count);
        }
    }
    if (!rc)
        m->last_len = o->len - start;
    return rc;
}

const char *aos_metrics_mcp_method(const char *method)
{
    static const char *const known[] = {
        "initialize",
        "ping",
        "tools/list",
        "tools/call",
        "resources/list",
        "resources/read",
        "resources/templates/list",
        "resources/subscribe",
        "resources/unsubscribe",
        "prompts/list",
        "prompts/get",
        "completion/complete",
        "logging/setLevel",
        "sampling/createMessage",
        "elicitation/create",
        "roots/list",
        "tasks/get",
        "tasks/result",
        "tasks/list",
        "tasks/cancel",
        "notifications/initialized",
        "notifications/cancelled",
        "notifications/progress",
        "notifications/message",
        "notifications/roots/list_changed",
        "notifications/tools/list_changed",
        "notifications/resources/list_changed",
        "notifications/resources/updated",
        "notifications/prompts/list_changed",
        "notifications/elicitation/complete",
        "notifications/tasks/status",
    };
    if (!method)
        return "";
    for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
        if (!strcmp(method, known[i]))
            return known[i];
    return AOS_METRICS_OTHER;
}
