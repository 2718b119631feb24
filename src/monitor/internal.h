/* internal.h - shared inside the monitor module, and with its unit tests.
 *
 * history.c  pure: the metric history's rings, sampled from a registry
 *            walk with the time passed in, and queries over them
 * monitor.c  the service: the sampling timer, HTTP and store metrics,
 *            GET /api/metrics/query
 * search.c   GET /api/traces (search) and GET /api/topology */
#ifndef AOS_MONITOR_INTERNAL_H
#define AOS_MONITOR_INTERNAL_H

#include "err/err.h"
#include "bus/bus.h"
#include "llm/llm.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "store/store.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- history.c -------------------------------------------------------------
 * Three rings per series: 3,600 slots of 1 s (an hour), 1,440 of 1 min (a
 * day), 720 of 1 h (30 days); a slot holds a float (4 bytes), so a series
 * costs 5,760 x 4 = 23,040 bytes of values, allocated when the series is
 * first seen. At most max_series series are kept (the rest are counted in
 * aos__mh_dropped), so the memory is bounded by max_series x ~23 KB
 * (512 series: 11.3 MiB).
 *
 * What a slot holds:
 *   counter    the increase during the slot (a reset, a value lower than
 *              the last, counts from 0), so rates come out of any ring; a
 *              series counts from 0 when first seen (the registry's
 *              counters start with the process, as the history does)
 *   gauge      the mean of the samples taken during the slot
 *   histogram  <name>_count and <name>_sum as counters, and <name> with
 *              label quantile="0.5", "0.95", "0.99": the quantile of the
 *              observations made during the slot (Prometheus'
 *              histogram_quantile interpolation over the bucket deltas),
 *              each ring from its own bucket snapshot, so a 1 h slot's p99
 *              is the hour's, not a mean of minutes
 * A slot nobody wrote (aosd was down, the series did not exist) is missing,
 * not zero. Times are whole seconds since the epoch; a sample older than
 * the last goes into the current slots. */

#define AOS__MH_RINGS 3

typedef struct aos__mh_s aos__mh_t;

aos__mh_t *aos__mh_new(size_t max_series);
void aos__mh_free(aos__mh_t *h);

/* One sample of the whole registry at time now: every series that fn
 * walks (aos_metrics_each) is recorded. */
void aos__mh_sample(aos__mh_t *h, aos_metrics_t *m, int64_t now);
/* Series kept, and series seen at the last sample but not kept (the cap). */
size_t aos__mh_series(const aos__mh_t *h);
size_t aos__mh_dropped(const aos__mh_t *h);
/* Bytes of ring memory held now. */
size_t aos__mh_bytes(const aos__mh_t *h);

typedef enum { AOS__MH_VALUE, AOS__MH_RATE, AOS__MH_INCREASE } aos__mh_fn_t;

typedef struct {
    const char *name;
    const json_t *match; /* object of label -> string value, all must equal; may be NULL */
    int64_t from, to;    /* seconds since the epoch, from <= to */
    int64_t step;        /* seconds >= 1 */
    aos__mh_fn_t fn;
} aos__mh_query_t;

#define AOS__MH_MAX_POINTS 11000 /* points of one series in an answer */

/* The series named q->name whose labels match, at q->step (or the ring's
 * step when coarser: the finest ring whose step is at most q->step and
 * that reaches back to q->from, else the coarsest that does, else the
 * coarsest), as {name, fn, from, to, step, resolution, series: [{labels,
 * type, points: [[t, v], ...]}]}: each point aggregates the slots
 * starting in [t, t + step) - a counter's increases summed (fn increase)
 * or divided by the seconds they cover (fn rate), a gauge's values
 * averaged (fn value) - and a point with no slot is left out. AOS_EINVAL
 * for fn value on a counter, rate or increase on a gauge, or too many
 * points; AOS_ENOTFOUND when no series has the name. */
int aos__mh_query(const aos__mh_t *h, int64_t now, const aos__mh_query_t *q, json_t **out,
                  aos_err_t *err);

/* Label text k1="v1",k2="v2" (the exposition's escaping) as an object;
 * NULL when it does not parse. Also reads the query's labels parameter
 * (values quoted or not). */
json_t *aos__mh_labels(const char *text);

/* The names the history holds (those starting with prefix, when not NULL
 * or empty), sorted: [{name, type: counter | gauge, labels: [{...}, ...]}]
 * (a histogram's _count and _sum are counters, its quantiles a gauge with
 * label quantile). NULL when out of memory. */
json_t *aos__mh_names(const aos__mh_t *h, const char *prefix);

/* Persistence (the rows of aos_store_mhist_*, migration 0026). A ring is
 * saved as chunks of AOS__MH_CHUNK slots (ring slot k in chunk k / 60),
 * each 60 little-endian binary32 values, NaN where missing. A dump takes
 * the chunks written since the last dump (the chunk of each ring's current
 * slot always, as it may still change) into d, copies the loop may drop
 * at once; if saving them fails, aos__mh_rewind(h, t) with t the time of
 * the last dump that was saved marks what came after as unsaved again.
 * aos__mh_load puts one saved chunk back (at start, before any sample):
 * slots outside the ring's span at now are skipped, a new series counts
 * against max_series (AOS_ETOOBIG when full), AOS_EINVAL for a row that
 * does not read. keep_from: per ring, the oldest chunk the span at now
 * still reaches (what aos_store_mhist_put keeps). */
#define AOS__MH_CHUNK 60
typedef struct {
    aos_store_mhist_row_t *rows; /* series texts owned, slots in bytes */
    size_t n;
    unsigned char *bytes;
} aos__mh_dump_t;
int aos__mh_dump(aos__mh_t *h, aos__mh_dump_t *d);
void aos__mh_dump_free(aos__mh_dump_t *d);
void aos__mh_rewind(aos__mh_t *h, int64_t t);
int aos__mh_load(aos__mh_t *h, const aos_store_mhist_row_t *row, int64_t now);
void aos__mh_keep_from(int64_t now, int64_t keep_from[AOS__MH_RINGS]);

/* ---- analyzer.c (the Analyzer: see there) ----------------------------------- */
typedef struct aos__analyzer_s aos__analyzer_t;
aos__analyzer_t *aos__analyzer_new(void);
/* Subscribes to bus (replaying the recent events). */
int aos__analyzer_start(aos__analyzer_t *a, aos_bus_t *bus);
/* The model asked for suggestions (borrowed; NULL: none); before it is
 * freed, aos__analyzer_stop. */
void aos__analyzer_set_llm(aos__analyzer_t *a, aos_llm_t *llm);
/* Unsubscribes, publishes and asks nothing more, cancels the asks in
 * flight (their callbacks come later, from the loop). */
void aos__analyzer_stop(aos__analyzer_t *a);
void aos__analyzer_free(aos__analyzer_t *a);
/* One event envelope (borrowed) seen at at_ms: grouped if it is an
 * anomaly.* or a task.receipt that did not end "done". Pure. */
void aos__analyzer_add(aos__analyzer_t *a, const json_t *ev, int64_t at_ms);
/* The suggestion for a group: {rule, title, detail, count, actions}.
 * last: the group's last payload; trace: its newest trace id or NULL (the
 * log lines' action); stored_trace: its newest trace whose spans are
 * stored, or NULL (the "Trace" action: never one that would 404). */
json_t *aos__analyzer_suggest(int receipt, const json_t *last, int64_t count, const char *trace,
                              const char *stored_trace);
/* The tracer's aos_trace_keep (NULL: every trace counts as stored): asked
 * for each trace an event names, it keeps the trace whole and says
 * whether its spans are stored. */
void aos__analyzer_set_keep(aos__analyzer_t *a, int (*keep)(const char *trace_id, void *data),
                            void *data);
/* The suggestions, most recently seen first, at most limit. */
json_t *aos__analyzer_list(const aos__analyzer_t *a, size_t limit);
size_t aos__analyzer_limit_max(void);

/* ---- monitor.c, search.c ------------------------------------------------------- */

/* Unix seconds (a fraction allowed, cut), or AOS_EINVAL. */
int aos__monitor_time(const char *s, int64_t *out);

/* What the search routes need (owned by the monitor). */
typedef struct {
    uv_loop_t *loop;
    aos_store_t *store;
} aos__monitor_env_t;
/* GET /api/traces, GET /api/topology */
int aos__monitor_search_routes(aos__monitor_env_t *env, aos_http_t *http);

#endif
