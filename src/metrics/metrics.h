/* metrics.h - counters, gauges and histograms with labels, rendered in the
 * Prometheus text format for GET /metrics.
 *
 * A metric is a family (name, help, label names); its series are created on
 * first use with their label values. Values passed to aos_metric_* are
 * variadic label values, exactly as many as the family has labels. Loop
 * thread only. */
#ifndef AOS_METRICS_H
#define AOS_METRICS_H

#include "buf/buf.h"

#include <stddef.h>

typedef struct aos_metrics_s aos_metrics_t;
typedef struct aos_metric_s aos_metric_t;

aos_metrics_t *aos_metrics_new(void);
void aos_metrics_free(aos_metrics_t *m);

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
