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
#include <stdint.h>

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
/* A histogram's series set whole from counts kept elsewhere: buckets holds
 * the family's nbounds + 1 counts (not cumulative, the last one +Inf), sum
 * the observations' sum. */
void aos_metric_set_histogram(aos_metric_t *f, const uint64_t *buckets, double sum, ...);
/* Drops every series of a family (e.g. before re-setting gauges). */
void aos_metric_clear(aos_metric_t *f);

/* fn runs before each render, to set gauges from live state. */
typedef void (*aos_metrics_collect_fn)(aos_metrics_t *m, void *data);
int aos_metrics_on_collect(aos_metrics_t *m, aos_metrics_collect_fn fn, void *data);

int aos_metrics_render(aos_metrics_t *m, aos_buf_t *out);

/* ---- reading the registry (the metric history, src/monitor) -------------- */
typedef enum { AOS_METRIC_COUNTER, AOS_METRIC_GAUGE, AOS_METRIC_HISTOGRAM } aos_metric_type_t;

/* One series as it is now. Everything is borrowed for the call. */
typedef struct {
    const char *name; /* the family's */
    aos_metric_type_t type;
    const char *labels;   /* k1="v1",k2="v2" escaped as in the exposition; "" for none */
    double value;         /* counter, gauge; a histogram's sum */
    uint64_t count;       /* histogram: observations */
    const double *bounds; /* histogram: upper bounds, ascending (+Inf implicit) */
    size_t nbounds;
    const uint64_t *buckets; /* histogram: nbounds + 1 counts, not cumulative */
} aos_metric_sample_t;
typedef void (*aos_metrics_each_fn)(const aos_metric_sample_t *s, void *data);

/* Runs the collect functions (as a render does). */
void aos_metrics_collect(aos_metrics_t *m);
/* fn for every series of every family, in the exposition's order. The
 * registry must not change during the walk. */
void aos_metrics_each(aos_metrics_t *m, aos_metrics_each_fn fn, void *data);

/* The process's own metrics under the names Prometheus' client libraries
 * use: process_cpu_seconds_total, process_resident_memory_bytes,
 * process_virtual_memory_bytes, process_open_fds, process_max_fds,
 * process_threads, process_start_time_seconds, read from getrusage(2),
 * getrlimit(2) and /proc/self (procfs: no disk) at each collect. Linux;
 * elsewhere a value that cannot be read is left out. */
int aos_metrics_process(aos_metrics_t *m);

/* method when it is one of MCP's methods (2025-11-25), else "other": a
 * label value from a client stays within a known set. NULL gives "". */
const char *aos_metrics_mcp_method(const char *method);

#endif
