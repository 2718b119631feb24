/* test_monitor.c - the metric history's rings (src/monitor/history.c):
 * samples of a real registry at times the test chooses, then queries.
 * Counters as rates and increases at every ring, gauges as means, gaps
 * left missing, rings that wrap, histogram quantiles per slot, the cap on
 * series, counter resets, label matching and the query's bounds; the
 * history saved to a real store (SQLite in a temporary directory) and
 * read back into a new one, as across a restart; the names it holds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "monitor/internal.h"
#include "tmpdir.h"

#define T0 1800000000 /* a whole hour: 2027-01-15T08:00:00Z */

static json_t *run(aos__mh_t *h, int64_t now, const char *name, const char *match, int64_t from,
                   int64_t to, int64_t step, aos__mh_fn_t fn, int want)
{
    json_t *m = match ? aos__mh_labels(match) : NULL;
    aos__mh_query_t q = {name, m, from, to, step, fn};
    json_t *out = NULL;
    aos_err_t err = {0, ""};
    int rc = aos__mh_query(h, now, &q, &out, &err);
    json_decref(m);
    if (rc != want)
        fail_msg("query %s: %d (%s), wanted %d", name, rc, err.msg, want);
    return out;
}

/* The points of the only series of out. */
static json_t *points(json_t *out)
{
    json_t *series = json_object_get(out, "series");
    assert_int_equal(json_array_size(series), 1);
    return json_object_get(json_array_get(series, 0), "points");
}

static double pv(json_t *pts, size_t i)
{
    return json_real_value(json_array_get(json_array_get(pts, i), 1));
}

static int64_t pt(json_t *pts, size_t i)
{
    return json_integer_value(json_array_get(json_array_get(pts, i), 0));
}

static void test_counter_rate_and_increase(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *c = aos_metrics_counter(m, "aos_c_total", "C.", NULL);
    aos__mh_t *h = aos__mh_new(16);
    /* before the first sample: counted in the first slot (the registry and
     * the history start together: requests made before the first sample
     * are not lost) */
    aos_metric_add(c, 100);
    for (int i = 0; i <= 10; i++) {
        aos__mh_sample(h, m, T0 + i);
        aos_metric_add(c, 2);
    }
    int64_t now = T0 + 10;
    json_t *out = run(h, now, "aos_c_total", NULL, T0, now, 1, AOS__MH_RATE, 0);
    json_t *p = points(out);
    assert_int_equal(json_array_size(p), 11);
    assert_true(pv(p, 0) == 100.0);
    for (size_t i = 1; i < 11; i++) {
        assert_int_equal(pt(p, i), T0 + (int64_t)i);
        assert_true(pv(p, i) == 2.0);
    }
    assert_int_equal(json_integer_value(json_object_get(out, "resolution")), 1);
    json_decref(out);
    out = run(h, now, "aos_c_total", NULL, T0, now, 5, AOS__MH_INCREASE, 0);
    p = points(out);
    assert_int_equal(json_array_size(p), 3); /* [T0,T0+5) [T0+5,T0+10) [T0+10] */
    assert_true(pv(p, 0) == 108.0 && pv(p, 1) == 10.0 && pv(p, 2) == 2.0);
    json_decref(out);
    /* a counter has no plain value */
    assert_null(run(h, now, "aos_c_total", NULL, T0, now, 1, AOS__MH_VALUE, AOS_EINVAL));
    /* the second ring's slots summed to a point a minute long */
    out = run(h, now, "aos_c_total", NULL, T0, now, 60, AOS__MH_INCREASE, 0);
    p = points(out);
    assert_int_equal(json_array_size(p), 1);
    assert_true(pv(p, 0) == 120.0);
    json_decref(out);
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_new_series_counts_from_zero_and_resets(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *c = aos_metrics_counter(m, "aos_c_total", "C.", "k");
    aos__mh_t *h = aos__mh_new(16);
    aos__mh_sample(h, m, T0); /* the history has started: a series born later counts from 0 */
    aos_metric_add(c, 3, "a");
    aos__mh_sample(h, m, T0 + 1);
    /* a reset (the registry's value goes down): the new value is the increase */
    aos_metric_clear(c);
    aos_metric_add(c, 1, "a");
    aos__mh_sample(h, m, T0 + 2);
    json_t *out = run(h, T0 + 2, "aos_c_total", NULL, T0, T0 + 2, 1, AOS__MH_INCREASE, 0);
    json_t *p = points(out);
    assert_int_equal(json_array_size(p), 2);
    assert_true(pv(p, 0) == 3.0 && pv(p, 1) == 1.0);
    json_decref(out);
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_gauge_means_gaps_and_wrap(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *g = aos_metrics_gauge(m, "aos_g", "G.", NULL);
    aos__mh_t *h = aos__mh_new(16);
    /* three hours, one sample a second, except a gap of 10 s at the end;
     * the value is the minute of the hour */
    int64_t end = T0 + 3 * 3600;
    for (int64_t t = T0; t < end; t++) {
        if (t >= end - 20 && t < end - 10)
            continue;
        aos_metric_set(g, (double)((t - T0) / 60 % 60));
        aos__mh_sample(h, m, t);
    }
    int64_t now = end - 1;
    /* the last 30 s at 1 s: the gap is missing, not zero */
    json_t *out = run(h, now, "aos_g", NULL, now - 29, now, 1, AOS__MH_VALUE, 0);
    json_t *p = points(out);
    assert_int_equal(json_array_size(p), 20);
    for (size_t i = 0; i < json_array_size(p); i++)
        assert_true(pt(p, i) < end - 20 || pt(p, i) >= end - 10);
    json_decref(out);
    /* two hours ago is past the 1 s ring: the minute ring answers, each
     * slot the mean of its minute (a constant here) */
    int64_t from = T0 + 3600 - 120; /* [59 min, 60 min) of the first hour, then minute 0 */
    out = run(h, now, "aos_g", NULL, from, from + 179, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_integer_value(json_object_get(out, "resolution")), 60);
    assert_int_equal(json_integer_value(json_object_get(out, "step")), 60);
    p = points(out);
    assert_int_equal(json_array_size(p), 3);
    assert_true(pv(p, 0) == 58 && pv(p, 1) == 59 && pv(p, 2) == 0);
    json_decref(out);
    /* hours from the minute ring (it reaches back far enough): the mean of
     * the minutes' means, 0..59 */
    out = run(h, now, "aos_g", NULL, T0, now, 3600, AOS__MH_VALUE, 0);
    assert_int_equal(json_integer_value(json_object_get(out, "resolution")), 60);
    p = points(out);
    assert_int_equal(json_array_size(p), 3);
    for (size_t i = 0; i < 3; i++)
        assert_true(fabs(pv(p, i) - 29.5) < 1e-4);
    json_decref(out);
    /* rate on a gauge is refused */
    assert_null(run(h, now, "aos_g", NULL, now - 10, now, 1, AOS__MH_RATE, AOS_EINVAL));
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_hour_ring(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *g = aos_metrics_gauge(m, "aos_g", "G.", NULL);
    aos_metric_t *c = aos_metrics_counter(m, "aos_c_total", "C.", NULL);
    aos__mh_t *h = aos__mh_new(16);
    /* 27 hours, a sample a minute: the gauge is the hour's number plus
     * the minute / 100, the counter grows by 1 a minute */
    int64_t end = T0 + 27 * 3600;
    for (int64_t t = T0; t < end; t += 60) {
        aos_metric_set(g, (double)((t - T0) / 3600) + (double)((t - T0) / 60 % 60) / 100);
        aos__mh_sample(h, m, t);
        aos_metric_add(c, 1);
    }
    int64_t now = end - 60;
    json_t *out = run(h, now, "aos_g", NULL, T0, now, 3600, AOS__MH_VALUE, 0);
    assert_int_equal(json_integer_value(json_object_get(out, "resolution")), 3600);
    json_t *p = points(out);
    assert_int_equal(json_array_size(p), 27);
    for (size_t i = 0; i < 27; i++) {
        assert_int_equal(pt(p, i), T0 + 3600 * (int64_t)i);
        assert_true(fabs(pv(p, i) - ((double)i + 0.295)) < 1e-4);
    }
    json_decref(out);
    out = run(h, now, "aos_c_total", NULL, T0, now, 7200, AOS__MH_INCREASE, 0);
    assert_int_equal(json_integer_value(json_object_get(out, "step")), 7200);
    p = points(out);
    assert_int_equal(json_array_size(p), 14);
    assert_true(pv(p, 0) == 119); /* its first add follows the first sample */
    for (size_t i = 1; i < 13; i++)
        assert_true(pv(p, i) == 120);
    assert_true(pv(p, 13) == 60); /* the 27th hour alone */
    json_decref(out);
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_ring_forgets_after_a_turn(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *g = aos_metrics_gauge(m, "aos_g", "G.", NULL);
    aos__mh_t *h = aos__mh_new(16);
    aos_metric_set(g, 5);
    aos__mh_sample(h, m, T0);
    /* one sample 2 h later: the 1 s slot of T0 has been passed (its slot
     * index is reused 2 turns later) and must not read as the old value */
    aos_metric_set(g, 9);
    aos__mh_sample(h, m, T0 + 7201);
    json_t *out =
        run(h, T0 + 7201, "aos_g", NULL, T0 + 7201 - 3599, T0 + 7201, 1, AOS__MH_VALUE, 0);
    json_t *p = points(out);
    assert_int_equal(json_array_size(p), 1);
    assert_true(pv(p, 0) == 9);
    json_decref(out);
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_histogram_quantiles_per_slot(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    static const double b[] = {1, 2, 4, 8};
    aos_metric_t *x = aos_metrics_histogram(m, "aos_d_seconds", "D.", "k", b, 4);
    aos__mh_t *h = aos__mh_new(16);
    aos_metric_observe(x, 0.5, "a"); /* before the first sample: in the first slot */
    aos__mh_sample(h, m, T0);
    /* second 1: 100 observations in (1, 2]; second 2: 100 in (4, 8] */
    for (int i = 0; i < 100; i++)
        aos_metric_observe(x, 1.5, "a");
    aos__mh_sample(h, m, T0 + 1);
    for (int i = 0; i < 100; i++)
        aos_metric_observe(x, 5, "a");
    aos__mh_sample(h, m, T0 + 2);
    json_t *out =
        run(h, T0 + 2, "aos_d_seconds", "quantile=\"0.5\"", T0, T0 + 2, 1, AOS__MH_VALUE, 0);
    json_t *p = points(out);
    assert_int_equal(json_array_size(p), 3);
    assert_true(fabs(pv(p, 0) - 0.5) < 1e-6); /* the middle of (0, 1] */
    assert_true(fabs(pv(p, 1) - 1.5) < 1e-6); /* the middle of (1, 2] */
    assert_true(fabs(pv(p, 2) - 6) < 1e-6);   /* the middle of (4, 8] */
    json_decref(out);
    /* the minute's p50 is over all 201 observations: rank 100.5, near the
     * top of (1, 2] - not the mean of 0.5, 1.5 and 6 */
    out = run(h, T0 + 2, "aos_d_seconds", "quantile=\"0.5\",k=\"a\"", T0 - 7200, T0 + 2, 60,
              AOS__MH_VALUE, 0);
    assert_int_equal(json_integer_value(json_object_get(out, "resolution")), 60);
    p = points(out);
    assert_int_equal(json_array_size(p), 1);
    assert_true(fabs(pv(p, 0) - 1.995) < 1e-6);
    json_decref(out);
    /* count and sum are counters */
    out = run(h, T0 + 2, "aos_d_seconds_count", NULL, T0, T0 + 2, 1, AOS__MH_INCREASE, 0);
    p = points(out);
    assert_true(pv(p, 0) == 1 && pv(p, 1) == 100 && pv(p, 2) == 100);
    json_decref(out);
    out = run(h, T0 + 2, "aos_d_seconds_sum", NULL, T0, T0 + 2, 2, AOS__MH_INCREASE, 0);
    p = points(out);
    assert_true(fabs(pv(p, 0) - 150.5) < 1e-3 && fabs(pv(p, 1) - 500) < 1e-3);
    json_decref(out);
    /* three quantile series under the family's name */
    out = run(h, T0 + 2, "aos_d_seconds", NULL, T0, T0 + 2, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(json_object_get(out, "series")), 3);
    json_decref(out);
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_series_cap(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *g = aos_metrics_gauge(m, "aos_g", "G.", "k");
    static const double b[] = {1};
    aos_metric_t *x = aos_metrics_histogram(m, "aos_h", "H.", NULL, b, 1);
    aos__mh_t *h = aos__mh_new(4);
    for (int i = 0; i < 6; i++) {
        char k[8];
        snprintf(k, sizeof(k), "%d", i);
        aos_metric_set(g, i, k);
    }
    aos_metric_observe(x, 1);
    aos__mh_sample(h, m, T0);
    assert_int_equal(aos__mh_series(h), 4);
    assert_int_equal(aos__mh_dropped(h), 2 + 5); /* two gauges, and the histogram's five */
    assert_int_equal(aos__mh_bytes(h), 4 * (3600 + 1440 + 720) * sizeof(float));
    assert_null(run(h, T0, "aos_h", NULL, T0, T0, 1, AOS__MH_VALUE, AOS_ENOTFOUND));
    json_t *out = run(h, T0, "aos_g", NULL, T0, T0, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(json_object_get(out, "series")), 4);
    json_decref(out);
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_labels_parse_and_match(void **state)
{
    (void)state;
    json_t *l = aos__mh_labels("a=\"x\\\"y\",b=\"\\\\\", c = plain ");
    assert_non_null(l);
    assert_string_equal(json_string_value(json_object_get(l, "a")), "x\"y");
    assert_string_equal(json_string_value(json_object_get(l, "b")), "\\");
    assert_string_equal(json_string_value(json_object_get(l, "c")), "plain");
    json_decref(l);
    l = aos__mh_labels("");
    assert_int_equal(json_object_size(l), 0);
    json_decref(l);
    assert_null(aos__mh_labels("a"));
    assert_null(aos__mh_labels("a=\"open"));
    assert_null(aos__mh_labels("=\"v\""));
    assert_null(aos__mh_labels("a=\"v\" b=\"w\""));

    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *g = aos_metrics_gauge(m, "aos_g", "G.", "server,tool");
    aos_metric_set(g, 1, "s1", "t\"q");
    aos_metric_set(g, 2, "s1", "u");
    aos_metric_set(g, 3, "s2", "u");
    aos__mh_t *h = aos__mh_new(16);
    aos__mh_sample(h, m, T0);
    json_t *out = run(h, T0, "aos_g", "server=\"s1\"", T0, T0, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(json_object_get(out, "series")), 2);
    json_decref(out);
    out = run(h, T0, "aos_g", "server=\"s1\",tool=\"t\\\"q\"", T0, T0, 1, AOS__MH_VALUE, 0);
    json_t *p = points(out);
    assert_true(pv(p, 0) == 1);
    json_decref(out);
    out = run(h, T0, "aos_g", "server=\"s3\"", T0, T0, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(json_object_get(out, "series")), 0);
    json_decref(out);
    /* a label the series lacks matches only the empty value */
    out = run(h, T0, "aos_g", "zone=\"\"", T0, T0, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(json_object_get(out, "series")), 3);
    json_decref(out);
    aos__mh_free(h);
    aos_metrics_free(m);
}

static void test_query_bounds_and_clock_going_back(void **state)
{
    (void)state;
    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *g = aos_metrics_gauge(m, "aos_g", "G.", NULL);
    aos__mh_t *h = aos__mh_new(16);
    aos_metric_set(g, 4);
    aos__mh_sample(h, m, T0 + 10);
    aos_metric_set(g, 6);
    aos__mh_sample(h, m, T0 + 5); /* the clock went back: into the current slot */
    json_t *out = run(h, T0 + 10, "aos_g", NULL, T0, T0 + 10, 1, AOS__MH_VALUE, 0);
    json_t *p = points(out);
    assert_int_equal(json_array_size(p), 1);
    assert_int_equal(pt(p, 0), T0 + 10);
    assert_true(pv(p, 0) == 5);
    json_decref(out);
    /* past every ring: hours; 11,001 points are refused, 11,000 fine */
    assert_null(
        run(h, T0 + 10, "aos_g", NULL, T0 - 3600LL * 11000, T0 + 10, 1, AOS__MH_VALUE, AOS_EINVAL));
    json_decref(run(h, T0 + 10, "aos_g", NULL, T0 - 3600LL * 10999, T0 + 10, 1, AOS__MH_VALUE, 0));
    assert_null(run(h, T0 + 10, "aos_g", NULL, T0 + 11, T0 + 10, 1, AOS__MH_VALUE, AOS_EINVAL));
    assert_null(run(h, T0 + 10, "aos_none", NULL, T0, T0 + 10, 1, AOS__MH_VALUE, AOS_ENOTFOUND));
    aos__mh_free(h);
    aos_metrics_free(m);
}

/* ---- the Analyzer ----------------------------------------------------------- */

static json_t *anomaly(const char *fp, const char *server, const char *error, const char *trace)
{
    return json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:s, s:s}}", "type",
                     "anomaly.detected", "trace_id", trace, "card_id", "card_1", "topic", "mcp",
                     "payload", "fingerprint", fp, "server", server, "tool", "t", "error", error,
                     "message", "boom");
}

static const json_t *find_rule(const json_t *list, const char *rule)
{
    size_t i;
    const json_t *s;
    json_array_foreach(list, i, s)
    {
        if (!strcmp(json_string_value(json_object_get(s, "rule")), rule))
            return s;
    }
    return NULL;
}

/* Saves h's dump into st; returns the rows written. */
static size_t save_into(aos__mh_t *h, aos_store_t *st, int64_t now)
{
    aos__mh_dump_t d;
    assert_int_equal(aos__mh_dump(h, &d), 0);
    int64_t keep[AOS__MH_RINGS];
    aos__mh_keep_from(now, keep);
    aos_err_t err = {0, ""};
    if (aos_store_mhist_put(st, d.rows, d.n, keep, AOS__MH_RINGS, &err))
        fail_msg("put: %s", err.msg);
    size_t n = d.n;
    aos__mh_dump_free(&d);
    return n;
}

typedef struct {
    aos__mh_t *h;
    int64_t now;
    int bad;
} loader_t;

static void on_row(const aos_store_mhist_row_t *row, void *arg)
{
    loader_t *l = arg;
    if (aos__mh_load(l->h, row, l->now))
        l->bad++;
}

static aos__mh_t *load_from(aos_store_t *st, size_t max, int64_t now)
{
    loader_t l = {aos__mh_new(max), now, 0};
    int64_t keep[AOS__MH_RINGS];
    aos__mh_keep_from(now, keep);
    aos_err_t err = {0, ""};
    if (aos_store_mhist_load(st, keep, AOS__MH_RINGS, on_row, &l, &err))
        fail_msg("load: %s", err.msg);
    assert_int_equal(l.bad, 0);
    return l.h;
}

static void test_saved_and_loaded(void **state)
{
    (void)state;
    char dir[64], url[128];
    assert_int_equal(aos_test_mkdtemp(dir, sizeof(dir), "mhist"), 0);
    snprintf(url, sizeof(url), "sqlite:%s/aos.db", dir);
    aos_store_t *st = NULL;
    aos_err_t err = {0, ""};
    if (aos_store_open(&st, NULL, url, &err))
        fail_msg("open: %s", err.msg);

    aos_metrics_t *m = aos_metrics_new();
    aos_metric_t *c = aos_metrics_counter(m, "aos_c_total", "C.", "k");
    aos_metric_t *g = aos_metrics_gauge(m, "aos_g", "G.", NULL);
    static const double b[] = {1, 2, 4, 8};
    aos_metric_t *x = aos_metrics_histogram(m, "aos_d_seconds", "D.", NULL, b, 4);
    aos__mh_t *h = aos__mh_new(32);
    /* 150 s: the counter +2/s, the gauge = the second, 1.5 s observations */
    for (int i = 0; i < 150; i++) {
        aos_metric_add(c, 2, "a\"b");
        aos_metric_set(g, i);
        aos_metric_observe(x, 1.5);
        aos__mh_sample(h, m, T0 + i);
    }
    int64_t now = T0 + 149;
    size_t first = save_into(h, st, now);
    /* each series' three rings: chunks of 60 s (three), of 60 min, of 60 h */
    assert_int_equal(first, aos__mh_series(h) * (3 + 1 + 1));
    /* nothing new: nothing but the current chunks is written again */
    assert_int_equal(save_into(h, st, now), 0);
    aos_metric_add(c, 2, "a\"b");
    aos__mh_sample(h, m, T0 + 150);
    assert_int_equal(save_into(h, st, T0 + 150), aos__mh_series(h) * 3);
    json_t *before_s = run(h, T0 + 150, "aos_c_total", NULL, T0, T0 + 150, 1, AOS__MH_RATE, 0);
    json_t *before_m =
        run(h, T0 + 150, "aos_c_total", NULL, T0 - 3600, T0 + 150, 60, AOS__MH_INCREASE, 0);
    json_t *before_q =
        run(h, T0 + 150, "aos_d_seconds", "quantile=\"0.99\"", T0, T0 + 150, 10, AOS__MH_VALUE, 0);
    size_t nseries = aos__mh_series(h);
    aos__mh_free(h);
    aos_metrics_free(m);

    /* a restart 50 s later: the same answers for the time before it */
    int64_t later = T0 + 200;
    h = load_from(st, 32, later);
    assert_int_equal(aos__mh_series(h), nseries);
    json_t *after = run(h, later, "aos_c_total", NULL, T0, T0 + 150, 1, AOS__MH_RATE, 0);
    assert_true(json_equal(json_object_get(after, "series"), json_object_get(before_s, "series")));
    assert_int_equal(json_array_size(points(after)), 151);
    json_decref(after);
    after =
        run(h, later, "aos_c_total", "k=\"a\\\"b\"", T0 - 3600, T0 + 150, 60, AOS__MH_INCREASE, 0);
    assert_true(json_equal(json_object_get(after, "series"), json_object_get(before_m, "series")));
    json_decref(after);
    after = run(h, later, "aos_d_seconds", "quantile=\"0.99\"", T0, T0 + 150, 10, AOS__MH_VALUE, 0);
    assert_true(json_equal(json_object_get(after, "series"), json_object_get(before_q, "series")));
    json_decref(after);
    json_decref(before_s);
    json_decref(before_m);
    json_decref(before_q);

    /* the new process samples on: its counter starts at 0 again, the
     * seconds it was down are missing, the histogram takes up its loaded
     * quantile series (no second series of the same labels) */
    m = aos_metrics_new();
    c = aos_metrics_counter(m, "aos_c_total", "C.", "k");
    x = aos_metrics_histogram(m, "aos_d_seconds", "D.", NULL, b, 4);
    aos_metric_add(c, 5, "a\"b");
    aos_metric_observe(x, 5);
    aos__mh_sample(h, m, later);
    assert_int_equal(aos__mh_series(h), nseries);
    after = run(h, later, "aos_c_total", NULL, T0 + 140, later, 1, AOS__MH_INCREASE, 0);
    json_t *p = points(after);
    assert_int_equal(json_array_size(p), 11 + 1); /* T0+140..T0+150, and now */
    assert_int_equal(pt(p, 11), later);
    assert_true(pv(p, 11) == 5.0);
    json_decref(after);
    after = run(h, later, "aos_d_seconds", NULL, later, later, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(json_object_get(after, "series")), 3);
    json_decref(after);
    /* the names it holds */
    json_t *names = aos__mh_names(h, "aos_d");
    assert_int_equal(json_array_size(names), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(names, 0), "name")),
                        "aos_d_seconds");
    assert_int_equal(json_array_size(json_object_get(json_array_get(names, 0), "labels")), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(names, 1), "type")),
                        "counter");
    json_decref(names);

    /* a history loaded full (its cap = the series saved) takes up the
     * histogram it holds the series of: no room needed for them again */
    aos__mh_t *full = load_from(st, nseries, later);
    assert_int_equal(aos__mh_series(full), nseries);
    aos__mh_sample(full, m, later + 1);
    assert_int_equal(aos__mh_dropped(full), 0);
    after = run(full, later + 1, "aos_d_seconds", "quantile=\"0.5\"", later + 1, later + 1, 1,
                AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(points(after)), 1);
    json_decref(after);
    aos__mh_free(full);

    /* a day and a half later the 1 s and 1 min chunks are past their
     * rings: a save deletes them, and a load leaves them out */
    int64_t much_later = T0 + 36 * 3600;
    aos_metric_add(c, 1, "a\"b");
    aos__mh_sample(h, m, much_later);
    save_into(h, st, much_later);
    aos__mh_free(h);
    h = load_from(st, 32, much_later);
    after = run(h, much_later, "aos_c_total", NULL, T0, much_later, 3600, AOS__MH_INCREASE, 0);
    p = points(after);
    /* the hour ring still has T0's hour (300 + 2 + 5) and the new one */
    assert_int_equal(json_array_size(p), 2);
    assert_true(pv(p, 0) == 307.0 && pv(p, 1) == 1.0);
    json_decref(after);
    after = run(h, much_later, "aos_g", NULL, much_later - 60, much_later, 1, AOS__MH_VALUE, 0);
    assert_int_equal(json_array_size(points(after)), 0);
    json_decref(after);
    aos__mh_free(h);
    aos_metrics_free(m);
    aos_store_close(st);
    aos_test_rmdir(dir);
}

static void test_analyzer_groups_and_rules(void **state)
{
    (void)state;
    aos__analyzer_t *a = aos__analyzer_new();
    char trace[33];
    for (int i = 0; i < 7; i++) { /* one fingerprint, seven traces: the last five kept */
        snprintf(trace, sizeof(trace), "%032d", i + 1);
        json_t *e = anomaly("fp1", "slow", "timeout", trace);
        aos__analyzer_add(a, e, 1000 + i);
        json_decref(e);
    }
    json_t *e = anomaly("fp2", "flaky", "unavailable", "0000000000000000000000000000000a");
    aos__analyzer_add(a, e, 2000);
    json_decref(e);
    e = anomaly("fp3", "broken", "upstream_error", "0000000000000000000000000000000b");
    aos__analyzer_add(a, e, 3000);
    json_decref(e);
    e = anomaly("fp4", "odd", "invalid_argument", "0000000000000000000000000000000c");
    aos__analyzer_add(a, e, 4000);
    json_decref(e);
    /* receipts: done is no failure; budget and deadline by their error */
    const char *const receipts[][2] = {
        {"done", NULL},
        {"failed", "cost 2.0000 CNY is over the budget of 1.0000 CNY"},
        {"failed", "cost 3.0000 CNY is over the budget of 1.0000 CNY"},
        {"failed", "past the deadline 2026-01-01T00:00:00Z"},
        {"failed", "step s1: tool failed"},
        {"cancelled", NULL},
    };
    for (size_t i = 0; i < sizeof(receipts) / sizeof(receipts[0]); i++) {
        e = json_pack("{s:s, s:s, s:{s:s, s:s*}}", "type", "task.receipt", "trace_id",
                      "000000000000000000000000000000ff", "payload", "status", receipts[i][0],
                      "error", receipts[i][1]);
        aos__analyzer_add(a, e, 5000 + (int64_t)i);
        json_decref(e);
    }
    /* events of other types are not grouped */
    e = json_pack("{s:s, s:{}}", "type", "tool.error", "payload");
    aos__analyzer_add(a, e, 6000);
    json_decref(e);
    /* nor the Analyzer's own suggestions (a new version of fp1's card) */
    e = anomaly("fp1", "slow", "timeout", "00000000000000000000000000000009");
    json_object_set_new(e, "topic", json_string("analyzer"));
    aos__analyzer_add(a, e, 6001);
    json_decref(e);

    json_t *list = aos__analyzer_list(a, 100);
    /* fp1..fp4, budget, deadline, failed (the failure and the cancellation) */
    assert_int_equal(json_array_size(list), 7);
    const json_t *t = find_rule(list, "timeout_storm");
    assert_non_null(t);
    assert_int_equal(json_integer_value(json_object_get(t, "count")), 7);
    assert_string_equal(json_string_value(json_object_get(t, "server")), "slow");
    assert_string_equal(json_string_value(json_object_get(t, "fingerprint")), "fp1");
    assert_string_equal(json_string_value(json_object_get(t, "card_id")), "card_1");
    assert_string_equal(json_string_value(json_object_get(t, "title")),
                        "Calls to slow/t keep timing out");
    json_t *traces = json_object_get(t, "traces");
    assert_int_equal(json_array_size(traces), 5);
    assert_string_equal(json_string_value(json_array_get(traces, 0)),
                        "00000000000000000000000000000007"); /* newest first */
    json_t *act = json_array_get(json_object_get(t, "actions"), 0);
    assert_string_equal(json_string_value(json_object_get(act, "method")), "PATCH");
    assert_string_equal(json_string_value(json_object_get(act, "path")), "/mcp/registry/slow");
    assert_string_equal(json_string_value(json_object_get(act, "field")), "timeout_ms");
    assert_non_null(find_rule(list, "breaker_opens"));
    assert_non_null(find_rule(list, "server_errors"));
    assert_non_null(find_rule(list, "repeated_failure"));
    const json_t *b = find_rule(list, "budget_breach");
    assert_non_null(b);
    assert_int_equal(json_integer_value(json_object_get(b, "count")), 2);
    json_t *acts = json_object_get(b, "actions");
    assert_string_equal(json_string_value(json_object_get(json_array_get(acts, 0), "path")),
                        "/api/logs?trace_id=000000000000000000000000000000ff");
    assert_string_equal(json_string_value(json_object_get(json_array_get(acts, 2), "path")),
                        "/api/episodes/000000000000000000000000000000ff");
    assert_non_null(find_rule(list, "deadline_missed"));
    assert_int_equal(json_integer_value(json_object_get(find_rule(list, "task_failures"), "count")),
                     2);
    /* most recently seen first; ids stable and distinct */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "rule")),
                        "task_failures");
    json_t *again = aos__analyzer_list(a, 2);
    assert_int_equal(json_array_size(again), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(again, 0), "id")),
                        json_string_value(json_object_get(json_array_get(list, 0), "id")));
    assert_string_not_equal(json_string_value(json_object_get(json_array_get(list, 0), "id")),
                            json_string_value(json_object_get(json_array_get(list, 1), "id")));
    json_decref(again);
    json_decref(list);
    aos__analyzer_free(a);
}

/* The orchestrator's and the agents' anomalies carry a kind, no
 * fingerprint: grouped by kind (and agent), each with its rule; a step's
 * tool "server__tool" is split; a budget breach names its costliest steps. */
static void test_analyzer_kinds(void **state)
{
    (void)state;
    aos__analyzer_t *a = aos__analyzer_new();
    json_t *e = json_pack(
        "{s:s, s:s, s:{s:s, s:s, s:f, s:[{s:s, s:f}, {s:s, s:f}]}}", "type", "anomaly.detected",
        "trace_id", "000000000000000000000000000000a1", "payload", "kind", "budget", "message",
        "cost 0.0060 CNY is over the budget of 0.0040 CNY", "cost_cny", 0.006, "costliest", "step",
        "plan", "cost_cny", 0.004, "step", "s2", "cost_cny", 0.002);
    aos__analyzer_add(a, e, 1000);
    json_decref(e);
    e = json_pack("{s:s, s:{s:s, s:s, s:s}}", "type", "anomaly.detected", "payload", "kind",
                  "approval_timeout", "step", "gate", "decision", "abort");
    aos__analyzer_add(a, e, 2000);
    aos__analyzer_add(a, e, 2001);
    json_decref(e);
    e = json_pack("{s:s, s:{s:s, s:s}}", "type", "anomaly.detected", "payload", "kind", "planning",
                  "message", "unable to plan the goal: timeout");
    aos__analyzer_add(a, e, 3000);
    json_decref(e);
    e = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "type", "anomaly.detected", "payload", "kind",
                  "agent.crash_loop", "agent", "writer", "agent_id", "ag_1", "message", "exit 1");
    aos__analyzer_add(a, e, 4000);
    json_decref(e);
    e = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "type", "anomaly.detected", "payload", "kind",
                  "agent.unhealthy", "agent", "far", "agent_id", "ag_2", "message", "refused");
    aos__analyzer_add(a, e, 4500);
    json_decref(e);
    e = json_pack("{s:s, s:{s:s, s:s, s:s, s:s}}", "type", "anomaly.detected", "payload", "kind",
                  "step_failure", "tool", "files__read", "message", "no such file", "fingerprint",
                  "fpstep");
    aos__analyzer_add(a, e, 5000);
    json_decref(e);

    json_t *list = aos__analyzer_list(a, 100);
    assert_int_equal(json_array_size(list), 6);
    const json_t *un = find_rule(list, "agent_unhealthy");
    assert_non_null(un);
    assert_string_equal(json_string_value(json_object_get(un, "title")),
                        "Remote agent far stopped answering");
    const json_t *b = find_rule(list, "budget_breach");
    assert_non_null(b);
    assert_non_null(strstr(json_string_value(json_object_get(b, "detail")),
                           "plan (0.0040 CNY), s2 (0.0020 CNY)"));
    assert_int_equal(json_array_size(json_object_get(b, "costliest")), 2);
    const json_t *ap = find_rule(list, "approval_timeouts");
    assert_non_null(ap);
    assert_int_equal(json_integer_value(json_object_get(ap, "count")), 2);
    assert_non_null(find_rule(list, "planning_failures"));
    const json_t *cl = find_rule(list, "agent_crash_loop");
    assert_non_null(cl);
    assert_string_equal(json_string_value(json_object_get(cl, "title")),
                        "Agent writer keeps crashing");
    json_t *act = json_array_get(json_object_get(cl, "actions"), 0);
    assert_string_equal(json_string_value(json_object_get(act, "path")),
                        "/agents/ag_1/logs?tail=100");
    const json_t *st = find_rule(list, "repeated_failure");
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(st, "title")),
                        "files/read fails the same way again and again");
    json_decref(list);
    aos__analyzer_free(a);
}

static void test_analyzer_is_bounded(void **state)
{
    (void)state;
    aos__analyzer_t *a = aos__analyzer_new();
    for (int i = 0; i < 1000; i++) {
        char fp[24];
        snprintf(fp, sizeof(fp), "fp%d", i);
        json_t *e = anomaly(fp, "s", "timeout", "00000000000000000000000000000001");
        aos__analyzer_add(a, e, i);
        json_decref(e);
    }
    json_t *list = aos__analyzer_list(a, 100000);
    assert_int_equal(json_array_size(list), 256); /* the least recently seen went */
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "fingerprint")),
                        "fp999");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(list, 255), "fingerprint")), "fp744");
    json_decref(list);
    aos__analyzer_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter_rate_and_increase),
        cmocka_unit_test(test_new_series_counts_from_zero_and_resets),
        cmocka_unit_test(test_gauge_means_gaps_and_wrap),
        cmocka_unit_test(test_hour_ring),
        cmocka_unit_test(test_ring_forgets_after_a_turn),
        cmocka_unit_test(test_histogram_quantiles_per_slot),
        cmocka_unit_test(test_series_cap),
        cmocka_unit_test(test_labels_parse_and_match),
        cmocka_unit_test(test_query_bounds_and_clock_going_back),
        cmocka_unit_test(test_saved_and_loaded),
        cmocka_unit_test(test_analyzer_groups_and_rules),
        cmocka_unit_test(test_analyzer_kinds),
        cmocka_unit_test(test_analyzer_is_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
