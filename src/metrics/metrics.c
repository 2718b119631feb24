/* metrics.c - metric families and the Prometheus text exposition. */
#include "metrics/metrics.h"
#include "err/err.h"
#include "map/map.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_LABELS 4
#define MAX_COLLECT 8

enum type { COUNTER, GAUGE, HISTOGRAM };

struct series {
    char *labels[MAX_LABELS];
    double value;    /* counter, gauge; histogram sum */
    uint64_t count;  /* histogram */
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
    f->bounds = malloc(nbounds * sizeof(double));
    if (f->bounds) {
        memcpy(f->bounds, bounds, nbounds * sizeof(double));
        f->nbounds = nbounds;
    }
    return f;
}

static struct series *lookup(aos_metric_t *f, va_list ap)
{
    const char *vals[MAX_LABELS];
    char key[512];
    size_t k = 0;
    key[0] = '\0';
    for (int i = 0; i < f->nlabels; i++) {
        vals[i] = va_arg(ap, const char *);
        if (!vals[i])
            vals[i] = "";
        size_t n = strlen(vals[i]);
        if (k + n + 2 < sizeof(key)) {
            memcpy(key + k, vals[i], n);
            k += n;
            key[k++] = '\x1f';
            key[k] = '\0';
        }
    }
    struct series *s = aos_map_get(&f->index, key);
    if (s)
        return s;
    s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    for (int i = 0; i < f->nlabels; i++)
        s->labels[i] = strdup(vals[i]);
    if (f->type == HISTOGRAM)
        s->buckets = calloc(f->nbounds + 1, sizeof(uint64_t));
    if (aos_map_put(&f->index, key, s)) {
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

static void put_escaped(aos_buf_t *o, const char *s)
{
    for (; *s; s++) {
        if (*s == '\\')
            aos_buf_puts(o, "\\\\");
        else if (*s == '"')
            aos_buf_puts(o, "\\\"");
        else if (*s == '\n')
            aos_buf_puts(o, "\\n");
        else
            aos_buf_append(o, s, 1);
    }
}

static void put_labels(aos_buf_t *o, const aos_metric_t *f, const struct series *s,
                       const char *le)
{
    if (!f->nlabels && !le)
        return;
    aos_buf_puts(o, "{");
    for (int i = 0; i < f->nlabels; i++) {
        aos_buf_printf(o, "%s%s=\"", i ? "," : "", f->label_names[i]);
        put_escaped(o, s->labels[i]);
        aos_buf_puts(o, "\"");
    }
    if (le)
        aos_buf_printf(o, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    aos_buf_puts(o, "}");
}

static void put_value(aos_buf_t *o, double v)
{
    if (v == floor(v) && fabs(v) < 1e15)
        aos_buf_printf(o, " %.0f\n", v);
    else
        aos_buf_printf(o, " %.9g\n", v);
}

int aos_metrics_render(aos_metrics_t *m, aos_buf_t *o)
{
    static const char *types[] = {"counter", "gauge", "histogram"};
    for (int i = 0; i < m->ncollect; i++)
        m->collect[i].fn(m, m->collect[i].data);
    for (aos_metric_t *f = m->first; f; f = f->next) {
        aos_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                       types[f->type]);
        for (struct series *s = f->first; s; s = s->next) {
            if (f->type != HISTOGRAM) {
                aos_buf_puts(o, f->name);
                put_labels(o, f, s, NULL);
                put_value(o, s->value);
                continue;
            }
            uint64_t cum = 0;
            for (size_t b = 0; b <= f->nbounds; b++) {
                char le[32];
                if (b < f->nbounds)
                    snprintf(le, sizeof(le), "%g", f->bounds[b]);
                else
                    strcpy(le, "+Inf");
                cum += s->buckets[b];
                aos_buf_printf(o, "%s_bucket", f->name);
                put_labels(o, f, s, le);
                put_value(o, (double)cum);
            }
            aos_buf_printf(o, "%s_sum", f->name);
            put_labels(o, f, s, NULL);
            put_value(o, s->value);
            aos_buf_printf(o, "%s_count", f->name);
            put_labels(o, f, s, NULL);
            put_value(o, (double)s->count);
        }
    }
    return 0;
}
