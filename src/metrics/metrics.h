/* metrics.h - counters, gauges and histograms with labels, rendered in the
 * Prometheus text format for GET /metrics.
 *
 * A metric is a family (name, help, label names); its series are created on
 * first use with their label values. Values passed to aos_metric_* are
 * variadic label values, exactly as many as the family has labels. Loop
 * thread only.
 *
 * Bounded: a family holds at most max_series series (see
 * aos_metrics_set_max_series). Once it is full, a new list of label values
 * is counted in the family's overflow series, whose every label value is
 * "other" (AOS_METRICS_OTHER), and in aos_metrics_overflow_total{metric}; a
 * label value longer than AOS_METRICS_MAX_VALUE bytes counts as "other"
 * too. So the exposition, and the time the loop spends rendering it, stay
 * bounded whatever values reach a label. Callers still pass only values
 * from a known set (e.g. the registry's servers and tools), so that the
 * limit is a safety net, not the normal path. */
#ifndef AOS_METRICS_H
#define AOS_METRICS_H

#include "buf/buf.h"

#include <stddef.h>

typedef struct aos_metrics_s aos_metrics_t;
typedef struct aos_metric_s aos_metric_t;

#define AOS_METRICS_OTHER      "other"
#define AOS_METRICS_MAX_SERIES 2000 /* default limit of series per family */
#define AOS_METRICS_MAX_VALUE  128  /* bytes of one label value */

aos_metrics_t *aos_metrics_new(void);
void aos_metrics_free(aos_metrics_t *m);
/* The most series one family may hold (>= 1; default AOS_METRICS_MAX_SERIES),
 * for series created from now on. */
void aos_metrics_set_max_series(aos_metrics_t *m, size_t max);

/* labels: comma-separated label names, or NULL. The returned family is owned
 * by m. name must be a valid Prometheus metric name. */
aos_metric_t *aos_metrics_counter(aos_metrics_t *m, const char *name, const char *help,
                                  const char *labels);
aos_metric_t *aos_metrics_gauge(aos_metrics_t *m, const char *name, const char *help,
                                const char *labels);
/* bounds: ascending upper bounds (+Inf is implicit); copied. */
aos_metric_t *aos_metrics_histogram(aos_metrics_t *m, const char *name, const char *help,
                                    const char *labels, const double *bounds, size_t nbounds);

void aos_metric_add(aos_metric_t *f, double v, ...);     /* counters and gauges */
void aos_metric_set(aos_metric_t *f, double v, ...);     /* gauges */
void aos_metric_observe(aos_metric_t *f, double v, ...); /* histograms */
/* Drops every series of a family (e.g. before re-setting gauges). */
void aos_metric_clear(aos_metric_t *f);

/* fn runs before each render, to set gauges from live state. */
typedef void (*aos_metrics_collect_fn)(aos_metrics_t *m, void *data);
int aos_metrics_on_collect(aos_metrics_t *m, aos_metrics_collect_fn fn, void *data);

int aos_metrics_render(aos_metrics_t *m, aos_buf_t *out);

#endif
