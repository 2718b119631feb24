/* metrics.c - metric families and the Prometheus text exposition. */
#include "metrics/metrics.h"
#include "err/err.h"
#include "map/map.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS  4
#define MAX_COLLECT 8

enum type { COUNTER, GAUGE, HISTOGRAM };

struct series {
    char *labels[MAX_LABELS];
    double value;   /* counter, gauge; histogram sum */
    uint64_t count; /* histogram */
    uint64_t *buckets;
    struct series *next; /* in creation order, for stable output */
};

struct aos_metric_s {
    char *name, *help;
    enum type type;
    char *label_names[MAX_LABELS];
    int nlabels;
    double *bounds;
    size_t nbounds;
    aos_map_t index; /* joined label values -> series */
    struct series *first, *last;
    aos_metric_t *next;
};

struct aos_metrics_s {
    aos_metric_t *first, *last;
    struct {
        aos_metrics_collect_fn fn;
        void *data;
    } collect[MAX_COLLECT];
    int ncollect;
};

aos_metrics_t *aos_metrics_new(void)
{
    return calloc(1, sizeof(aos_metrics_t));
}

static void series_free(struct series *s, int nlabels)
{
    for (int i = 0; i < nlabels; i++)
        free(s->labels[i]);
    free(s->buckets);
    free(s);
}

void aos_metric_clear(aos_metric_t *f)
{
    for (struct series *s = f->first, *n; s; s = n) {
        n = s->next;
        series_free(s, f->nlabels);
    }
    f->first = f->last = NULL;
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
        free(f);
    }
    free(m);
}

static aos_metric_t *family(aos_metrics_t *m, const char *name, const char *help,
                            const char *labels, enum type t)
{
    aos_metric_t *f = calloc(1, sizeof(*f));
    if (!f)
        return NULL;
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
    if (f->bounds && bounds && nbounds) {
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    return f;
}

static struct series *lookup(aos_metric_t *f, va_list ap)
{
    const char *vals[MAX_LABELS];
    /* the key: each value with its length in front, so that no two lists
     * of values share a key */
    aos_buf_t key;
    aos_buf_init(&key, 0);
    for (int i = 0; i < f->nlabels; i++) {
        vals[i] = va_arg(ap, const char *);
        if (!vals[i])
            vals[i] = "";
        aos_buf_printf(&key, "%zu:", strlen(vals[i]));
        aos_buf_puts(&key, vals[i]);
    }
    struct series *s = aos_map_get(&f->index, key.ptr ? key.ptr : "");
    if (s) {
        aos_buf_release(&key);
        return s;
    }
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    for (int i = 0; i < f->nlabels; i++)
        s->labels[i] = strdup(vals[i]);
    if (f->type == HISTOGRAM)
        s->buckets = calloc(f->nbounds + 1, sizeof(uint64_t));
    int rc = aos_map_put(&f->index, key.ptr ? key.ptr : "", s);
    aos_buf_release(&key);
    if (rc) {
        series_free(s, f->nlabels);
        return NULL;
    }
    if (f->last)
        f->last->next = s;
    else
        f->first = s;
    f->last = s;
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

int aos_metrics_on_collect(aos_metrics_t *m, aos_metrics_collect_fn fn, void *data)
{
    if (m->ncollect == MAX_COLLECT)
        return AOS_ETOOBIG;
    m->collect[m->ncollect].fn = fn;
    m->collect[m->ncollect++].data = data;
    return 0;
}

static int put_escaped(aos_buf_t *o, const char *s, int help)
{
    int rc = 0;
    for (; *s && !rc; s++) {
        if (*s == '\\')
            rc = aos_buf_puts(o, "\\\\");
        else if (*s == '"' && !help)
            rc = aos_buf_puts(o, "\\\"");
        else if (*s == '\n')
            rc = aos_buf_puts(o, "\\n");
        else
            rc = aos_buf_append(o, s, 1);
    }
    return rc;
}

static int put_labels(aos_buf_t *o, const aos_metric_t *f, const struct series *s, const char *le)
{
    int rc = 0;
    if (!f->nlabels && !le)
        return 0;
    rc = aos_buf_puts(o, "{");
    for (int i = 0; i < f->nlabels && !rc; i++) {
        rc = aos_buf_printf(o, "%s%s=\"", i ? "," : "", f->label_names[i]);
        if (!rc)
            rc = put_escaped(o, s->labels[i], 0);
        if (!rc)
            rc = aos_buf_puts(o, "\"");
    }
    if (le && !rc)
        rc = aos_buf_printf(o, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    return rc ? rc : aos_buf_puts(o, "}");
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

static int put_value(aos_buf_t *o, double v)
{
    char t[40];
    if (v == floor(v) && fabs(v) < 1e15)
        return aos_buf_printf(o, " %.0f\n", v);
    fmt_double(t, sizeof(t), v);
    return aos_buf_printf(o, " %s\n", t);
}

/* One sample line: name+suffix, labels, value. */
static int put_sample(aos_buf_t *o, const aos_metric_t *f, const char *suffix,
                      const struct series *s, const char *le, double v)
{
    int rc = aos_buf_printf(o, "%s%s", f->name, suffix);
    if (!rc)
        rc = put_labels(o, f, s, le);
    return rc ? rc : put_value(o, v);
}

int aos_metrics_render(aos_metrics_t *m, aos_buf_t *o)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    int rc = 0;
    for (int i = 0; i < m->ncollect; i++)
        m->collect[i].fn(m, m->collect[i].data);
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
                char le[32];
                if (b < f->nbounds)
                    fmt_double(le, sizeof(le), f->bounds[b]);
                else
                    snprintf(le, sizeof(le), "+Inf");
                cum += s->buckets[b];
                rc = put_sample(o, f, "_bucket", s, le, (double)cum);
            }
            if (!rc)
                rc = put_sample(o, f, "_sum", s, NULL, s->value);
            if (!rc)
                rc = put_sample(o, f, "_count", s, NULL, (double)s->count);
        }
    }
    return rc;
}
