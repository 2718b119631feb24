/* history.c - the built-in metric history (internal.h): per series, three
 * rings of float slots (1 s x 3,600, 1 min x 1,440, 1 h x 720), filled
 * from a walk of the metrics registry at a time the caller passes in, and
 * range queries over them. Pure: no clock, no I/O, no loop; the service
 * (monitor.c) samples once a second on a libuv timer.
 *
 * Each series remembers, per ring, the last slot it wrote; slots between
 * that one and a newer one are cleared when the newer one is written (so a
 * second with no sample is a missing slot, not a stale one from an hour
 * ago), and a reader treats every slot after the last written, or a full
 * turn of the ring before it, as missing. A sample walks the registry once
 * and costs a hash lookup and three slot writes per series; there is no
 * per-ring pass over idle series. */
#include "monitor/internal.h"
#include "map/map.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    int64_t step; /* seconds per slot */
    int64_t n;    /* slots */
} RING[AOS__MH_RINGS] = {{1, 3600}, {60, 1440}, {3600, 720}};
static const size_t OFF[AOS__MH_RINGS] = {0, 3600, 3600 + 1440};
#define SLOTS (3600 + 1440 + 720)

static const double QUANTILES[3] = {0.5, 0.95, 0.99};
static const char *const QLABEL[3] = {"0.5", "0.95", "0.99"};

enum kind { K_COUNTER, K_GAUGE };

struct series {
    char *name;
    json_t *labels; /* object */
    enum kind kind;
    float *v;                  /* SLOTS values: ring r at OFF[r] */
    int64_t k[AOS__MH_RINGS];  /* the last slot written, per ring; -1: none */
    double sum[AOS__MH_RINGS]; /* gauge: the current slot's samples */
    unsigned cnt[AOS__MH_RINGS];
    double last; /* counter: the value at the last sample */
    int has_last;
    /* persistence: the slots of ring r before flushed[r] are saved (or
     * were never written); dirty: a slot was written since the last dump */
    int64_t flushed[AOS__MH_RINGS];
    int dirty;
    char *ptext; /* the series' identity as saved: {key, name, kind, labels} */
    char *key;
    struct series *next;
};

/* A histogram series: its bucket counts now, and per ring as they were at
 * the end of the ring's previous slot. */
struct hist {
    size_t nb; /* buckets, +Inf included */
    double *bounds;
    uint64_t *cur, *base[AOS__MH_RINGS];
    int64_t k[AOS__MH_RINGS];
    int started;
    struct series *count, *sum, *q[3];
    struct hist *next;
};

struct aos__mh_s {
    size_t max_series, nseries, dropped;
    uint64_t samples;
    aos_map_t index;  /* key -> struct series */
    aos_map_t hindex; /* key -> struct hist */
    struct series *first;
    struct hist *hfirst;
};

aos__mh_t *aos__mh_new(size_t max_series)
{
    aos__mh_t *h = calloc(1, sizeof(*h));
    if (!h)
        return NULL;
    h->max_series = max_series;
    aos_map_init(&h->index);
    aos_map_init(&h->hindex);
    return h;
}

void aos__mh_free(aos__mh_t *h)
{
    if (!h)
        return;
    for (struct series *s = h->first, *n; s; s = n) {
        n = s->next;
        free(s->name);
        json_decref(s->labels);
        free(s->v);
        free(s->ptext);
        free(s->key);
        free(s);
    }
    for (struct hist *x = h->hfirst, *n; x; x = n) {
        n = x->next;
        free(x->bounds);
        free(x->cur);
        for (int r = 0; r < AOS__MH_RINGS; r++)
            free(x->base[r]);
        free(x);
    }
    aos_map_release(&h->index);
    aos_map_release(&h->hindex);
    free(h);
}

size_t aos__mh_series(const aos__mh_t *h)
{
    return h->nseries;
}

size_t aos__mh_dropped(const aos__mh_t *h)
{
    return h->dropped;
}

size_t aos__mh_bytes(const aos__mh_t *h)
{
    return h->nseries * SLOTS * sizeof(float);
}

/* ---- labels ------------------------------------------------------------------ */

json_t *aos__mh_labels(const char *p)
{
    json_t *o = json_object();
    char key[128], val[AOS_METRICS_MAX_VALUE * 2 + 1];
    while (o && *p) {
        while (isspace((unsigned char)*p) || *p == ',')
            p++;
        if (!*p)
            break;
        size_t kn = 0;
        while ((isalnum((unsigned char)*p) || *p == '_') && kn < sizeof(key) - 1)
            key[kn++] = *p++;
        key[kn] = '\0';
        while (isspace((unsigned char)*p))
            p++;
        if (!kn || *p++ != '=')
            goto bad;
        while (isspace((unsigned char)*p))
            p++;
        size_t vn = 0;
        if (*p == '"') {
            p++;
            while (*p && *p != '"') {
                char c = *p++;
                if (c == '\\') {
                    c = *p++;
                    if (c == 'n')
                        c = '\n';
                    else if (c != '\\' && c != '"')
                        goto bad;
                }
                if (vn == sizeof(val) - 1)
                    goto bad;
                val[vn++] = c;
            }
            if (*p++ != '"')
                goto bad;
        } else {
            while (*p && *p != ',' && vn < sizeof(val) - 1)
                val[vn++] = *p++;
            while (vn && isspace((unsigned char)val[vn - 1]))
                vn--;
        }
        val[vn] = '\0';
        json_object_set_new(o, key, json_stringn(val, vn));
        while (isspace((unsigned char)*p))
            p++;
        if (*p && *p != ',')
            goto bad;
    }
    return o;
bad:
    json_decref(o);
    return NULL;
}

/* ---- slots ------------------------------------------------------------------- */

static float *slot(struct series *s, int r, int64_t k)
{
    return s->v + OFF[r] + (size_t)(k % RING[r].n);
}

/* Moves s's ring r on to slot k (k >= its last): the slots skipped are
 * cleared, and the new slot starts empty. */
static void advance(struct series *s, int r, int64_t k)
{
    if (k <= s->k[r])
        return;
    if (s->k[r] < 0)
        s->flushed[r] = k;
    int64_t from = s->k[r] < 0 ? k : s->k[r] + 1;
    if (from < k - RING[r].n + 1)
        from = k - RING[r].n + 1;
    for (int64_t j = from; j <= k; j++)
        *slot(s, r, j) = NAN;
    s->k[r] = k;
    s->sum[r] = 0;
    s->cnt[r] = 0;
}

/* The slot of ring r for time now: never before the series' last. */
static int64_t slot_of(const struct series *s, int r, int64_t now)
{
    int64_t k = now / RING[r].step;
    return k < s->k[r] ? s->k[r] : k;
}

static void counter_put(aos__mh_t *h, struct series *s, int64_t now, double cur)
{
    (void)h;
    /* a new series counts from 0: the registry's counters start at 0 with
     * the process, as the history does, so what a counter holds when it is
     * first seen happened since (a baseline would lose the requests made
     * before the first sample); a reset counts from 0 too */
    double inc = !s->has_last ? cur : cur >= s->last ? cur - s->last : cur;
    s->last = cur;
    s->has_last = 1;
    for (int r = 0; r < AOS__MH_RINGS; r++) {
        advance(s, r, slot_of(s, r, now));
        float *p = slot(s, r, s->k[r]);
        if (!isnan(inc))
            *p = isnan(*p) ? (float)inc : *p + (float)inc;
    }
    s->dirty = 1;
}

static void gauge_put(struct series *s, int64_t now, double v)
{
    if (isnan(v))
        return;
    for (int r = 0; r < AOS__MH_RINGS; r++) {
        advance(s, r, slot_of(s, r, now));
        s->sum[r] += v;
        s->cnt[r]++;
        *slot(s, r, s->k[r]) = (float)(s->sum[r] / s->cnt[r]);
    }
    s->dirty = 1;
}

/* ---- series ------------------------------------------------------------------ */

static void make_key(char *key, size_t cap, const char *name, const char *suffix,
                     const char *labels)
{
    snprintf(key, cap, "%s%s\x01%s", name, suffix, labels);
}

static struct series *series_new(aos__mh_t *h, const char *name, const char *suffix, json_t *labels,
                                 enum kind kind, const char *key)
{
    struct series *s = calloc(1, sizeof(*s));
    size_t n = strlen(name) + strlen(suffix) + 1;
    if (!s || !(s->name = malloc(n)) || !(s->v = malloc(SLOTS * sizeof(float))) ||
        !(s->key = strdup(key))) {
        if (s) {
            free(s->name);
            free(s->v);
            free(s);
        }
        json_decref(labels);
        return NULL;
    }
    snprintf(s->name, n, "%s%s", name, suffix);
    for (size_t i = 0; i < SLOTS; i++)
        s->v[i] = NAN;
    for (int r = 0; r < AOS__MH_RINGS; r++)
        s->k[r] = -1;
    s->labels = labels;
    s->kind = kind;
    if (aos_map_put(&h->index, key, s)) {
        free(s->name);
        free(s->v);
        free(s->key);
        json_decref(labels);
        free(s);
        return NULL;
    }
    s->next = h->first;
    h->first = s;
    h->nseries++;
    return s;
}

static struct series *get(aos__mh_t *h, const aos_metric_sample_t *x, const char *suffix,
                          enum kind kind)
{
    char key[1024];
    make_key(key, sizeof(key), x->name, suffix, x->labels);
    struct series *s = aos_map_get(&h->index, key);
    if (s)
        return s;
    if (h->nseries >= h->max_series) {
        h->dropped++;
        return NULL;
    }
    json_t *labels = aos__mh_labels(x->labels);
    return labels ? series_new(h, x->name, suffix, labels, kind, key) : NULL;
}

/* The quantile q of the observations counted in d[0..nb) (per bucket, not
 * cumulative), interpolated inside its bucket as Prometheus'
 * histogram_quantile does: from 0 (or the bucket below) to the bound; in
 * +Inf, the highest bound. */
static double quantile(double q, const double *bounds, size_t nb, const uint64_t *d)
{
    uint64_t total = 0;
    for (size_t i = 0; i < nb; i++)
        total += d[i];
    if (!total)
        return NAN;
    double rank = q * (double)total, below = 0;
    for (size_t i = 0; i < nb; i++) {
        if (below + (double)d[i] >= rank && d[i]) {
            if (i == nb - 1)
                return nb > 1 ? bounds[nb - 2] : NAN;
            double lo = i ? bounds[i - 1] : 0, hi = bounds[i];
            if (lo > hi)
                lo = hi;
            return lo + (hi - lo) * (rank - below) / (double)d[i];
        }
        below += (double)d[i];
    }
    return nb > 1 ? bounds[nb - 2] : NAN;
}

/* The index key of quantile series i of histogram x. */
static void qkey_of(char *qkey, size_t cap, const aos_metric_sample_t *x, int i)
{
    make_key(qkey, cap, x->name, "", x->labels);
    size_t n = strlen(qkey);
    snprintf(qkey + n, cap - n, "%squantile=\"%s\"", *x->labels ? "," : "", QLABEL[i]);
}

static struct hist *hist_get(aos__mh_t *h, const aos_metric_sample_t *x)
{
    char key[1024];
    make_key(key, sizeof(key), x->name, "\x02", x->labels);
    struct hist *hs = aos_map_get(&h->hindex, key);
    if (hs)
        return hs;
    /* the five series it needs, less those loaded from the store */
    size_t need = 0;
    static const char *const sfx[2] = {"_count", "_sum"};
    for (int i = 0; i < 5; i++) {
        if (i < 2)
            make_key(key, sizeof(key), x->name, sfx[i], x->labels);
        else
            qkey_of(key, sizeof(key), x, i - 2);
        need += !aos_map_get(&h->index, key);
    }
    make_key(key, sizeof(key), x->name, "\x02", x->labels);
    if (h->nseries + need > h->max_series) {
        h->dropped += need;
        return NULL;
    }
    if (!(hs = calloc(1, sizeof(*hs))))
        return NULL;
    hs->nb = x->nbounds + 1;
    hs->bounds = malloc((x->nbounds ? x->nbounds : 1) * sizeof(double));
    hs->cur = calloc(hs->nb, sizeof(uint64_t));
    int ok = hs->bounds && hs->cur;
    for (int r = 0; r < AOS__MH_RINGS && ok; r++) {
        ok = (hs->base[r] = calloc(hs->nb, sizeof(uint64_t))) != NULL;
        hs->k[r] = -1;
    }
    if (ok) {
        if (x->nbounds)
            memcpy(hs->bounds, x->bounds, x->nbounds * sizeof(double));
        hs->count = get(h, x, "_count", K_COUNTER);
        hs->sum = get(h, x, "_sum", K_COUNTER);
        for (int i = 0; i < 3 && ok; i++) {
            char qkey[1024];
            qkey_of(qkey, sizeof(qkey), x, i);
            /* loaded from the store (aos__mh_load) before the histogram was seen */
            if ((hs->q[i] = aos_map_get(&h->index, qkey)))
                continue;
            json_t *labels = aos__mh_labels(x->labels);
            if (labels)
                json_object_set_new(labels, "quantile", json_string(QLABEL[i]));
            hs->q[i] = labels ? series_new(h, x->name, "", labels, K_GAUGE, qkey) : NULL;
        }
        ok = hs->count && hs->sum && hs->q[0] && hs->q[1] && hs->q[2] &&
             aos_map_put(&h->hindex, key, hs) == 0;
    }
    if (!ok) { /* the series made stay, empty; the histogram is tried again */
        free(hs->bounds);
        free(hs->cur);
        for (int r = 0; r < AOS__MH_RINGS; r++)
            free(hs->base[r]);
        free(hs);
        return NULL;
    }
    hs->next = h->hfirst;
    h->hfirst = hs;
    return hs;
}

static void hist_put(aos__mh_t *h, struct hist *hs, const aos_metric_sample_t *x, int64_t now)
{
    counter_put(h, hs->count, now, (double)x->count);
    counter_put(h, hs->sum, now, x->value);
    if (!x->buckets || x->nbounds + 1 != hs->nb)
        return;
    if (!hs->started) {
        hs->started = 1;
        /* every observation so far is new: the bases stay 0 (as counters) */
        for (int r = 0; r < AOS__MH_RINGS; r++)
            hs->k[r] = now / RING[r].step;
    }
    uint64_t d[64], *dp = hs->nb <= 64 ? d : malloc(hs->nb * sizeof(uint64_t));
    if (!dp)
        return;
    for (int r = 0; r < AOS__MH_RINGS; r++) {
        int64_t k = now / RING[r].step;
        if (k > hs->k[r]) { /* a new slot: it counts from the last sample on */
            memcpy(hs->base[r], hs->cur, hs->nb * sizeof(uint64_t));
            hs->k[r] = k;
        }
        for (size_t i = 0; i < hs->nb; i++)
            dp[i] =
                x->buckets[i] >= hs->base[r][i] ? x->buckets[i] - hs->base[r][i] : x->buckets[i];
        for (int i = 0; i < 3; i++) {
            struct series *s = hs->q[i];
            advance(s, r, slot_of(s, r, now));
            double v = quantile(QUANTILES[i], hs->bounds, hs->nb, dp);
            *slot(s, r, s->k[r]) = (float)v;
            s->dirty = 1;
        }
    }
    memcpy(hs->cur, x->buckets, hs->nb * sizeof(uint64_t));
    if (dp != d)
        free(dp);
}

struct walk {
    aos__mh_t *h;
    int64_t now;
};

static void on_series(const aos_metric_sample_t *x, void *data)
{
    struct walk *w = data;
    if (x->type == AOS_METRIC_HISTOGRAM) {
        struct hist *hs = hist_get(w->h, x);
        if (hs)
            hist_put(w->h, hs, x, w->now);
        return;
    }
    struct series *s = get(w->h, x, "", x->type == AOS_METRIC_COUNTER ? K_COUNTER : K_GAUGE);
    if (!s)
        return;
    if (s->kind == K_COUNTER)
        counter_put(w->h, s, w->now, x->value);
    else
        gauge_put(s, w->now, x->value);
}

void aos__mh_sample(aos__mh_t *h, aos_metrics_t *m, int64_t now)
{
    if (now < 0)
        return;
    h->dropped = 0;
    struct walk w = {h, now};
    aos_metrics_each(m, on_series, &w);
    h->samples++;
}

/* ---- queries ----------------------------------------------------------------- */

static int matches(const struct series *s, const json_t *match)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)match, k, v)
    {
        const char *have = json_string_value(json_object_get(s->labels, k));
        if (!have ? *json_string_value(v) != '\0' : strcmp(have, json_string_value(v)) != 0)
            return 0;
    }
    return 1;
}

/* The slot k of ring r of s, or NaN when it was never written or is past. */
static double read_slot(const struct series *s, int r, int64_t k)
{
    if (k < 0 || k > s->k[r] || k <= s->k[r] - RING[r].n)
        return NAN;
    return s->v[OFF[r] + (size_t)(k % RING[r].n)];
}

int aos__mh_query(const aos__mh_t *h, int64_t now, const aos__mh_query_t *q, json_t **out,
                  aos_err_t *err)
{
    *out = NULL;
    if (q->from > q->to || q->step < 1)
        return aos_err_set(err, AOS_EINVAL, "from must not be after to, and step at least 1");
    int r = -1;
    for (int i = 0; i < AOS__MH_RINGS && r < 0; i++) {
        int64_t oldest = (now / RING[i].step - RING[i].n + 1) * RING[i].step;
        if (RING[i].step <= q->step && q->from >= oldest)
            r = i;
    }
    for (int i = 0; i < AOS__MH_RINGS && r < 0; i++) {
        int64_t oldest = (now / RING[i].step - RING[i].n + 1) * RING[i].step;
        if (q->from >= oldest)
            r = i;
    }
    if (r < 0)
        r = AOS__MH_RINGS - 1;
    int64_t rs = RING[r].step;
    int64_t step = q->step < rs ? rs : (q->step + rs - 1) / rs * rs;
    int64_t t0 = q->from / rs * rs;
    int64_t npoints = (q->to - t0) / step + 1;
    if (npoints > AOS__MH_MAX_POINTS)
        return aos_err_set(err, AOS_EINVAL,
                           "%lld points per series: at most %d (a larger step, or a shorter range)",
                           (long long)npoints, AOS__MH_MAX_POINTS);
    json_t *series = json_array();
    int named = 0;
    const char *type_err = NULL;
    for (const struct series *s = h->first; s && series; s = s->next) {
        if (strcmp(s->name, q->name) != 0)
            continue;
        named = 1;
        if (s->kind == K_COUNTER ? q->fn == AOS__MH_VALUE : q->fn != AOS__MH_VALUE) {
            type_err = s->kind == K_COUNTER ? "counter" : "gauge";
            continue;
        }
        if (q->match && !matches(s, q->match))
            continue;
        json_t *pts = json_array();
        for (int64_t t = t0; t <= q->to && pts; t += step) {
            double sum = 0;
            int present = 0;
            for (int64_t k = t / rs; k < (t + step) / rs; k++) {
                double v = read_slot(s, r, k);
                if (!isnan(v)) {
                    sum += v;
                    present++;
                }
            }
            if (!present)
                continue;
            double v = q->fn == AOS__MH_INCREASE ? sum
                       : q->fn == AOS__MH_RATE   ? sum / (double)(present * rs)
                                                 : sum / present;
            char txt[32]; /* a float's 7 digits, not its binary tail */
            snprintf(txt, sizeof(txt), "%.7g", v);
            json_array_append_new(pts, json_pack("[I, f]", (json_int_t)t, strtod(txt, NULL)));
        }
        json_array_append_new(series,
                              json_pack("{s:O, s:s, s:o*}", "labels", s->labels, "type",
                                        s->kind == K_COUNTER ? "counter" : "gauge", "points", pts));
    }
    if (!series)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    if (!named) {
        json_decref(series);
        return aos_err_set(err, AOS_ENOTFOUND, "no metric '%s' in the history", q->name);
    }
    if (type_err && json_array_size(series) == 0) {
        json_decref(series);
        return aos_err_set(err, AOS_EINVAL, "'%s' is a %s: %s", q->name, type_err,
                           !strcmp(type_err, "counter")
                               ? "ask for fn=rate or fn=increase"
                               : "fn=rate and fn=increase are for counters (fn=value)");
    }
    static const char *fns[] = {"value", "rate", "increase"};
    *out = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:o}", "name", q->name, "fn", fns[q->fn],
                     "from", (json_int_t)t0, "to", (json_int_t)q->to, "step", (json_int_t)step,
                     "resolution", (json_int_t)rs, "series", series);
    return *out ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
}

/* ---- names ------------------------------------------------------------------- */

static int by_name(const void *a, const void *b)
{
    return strcmp(json_string_value(json_object_get(*(json_t *const *)a, "name")),
                  json_string_value(json_object_get(*(json_t *const *)b, "name")));
}

json_t *aos__mh_names(const aos__mh_t *h, const char *prefix)
{
    aos_map_t seen; /* name -> its entry (borrowed from out) */
    aos_map_init(&seen);
    json_t *list = json_array();
    size_t plen = prefix ? strlen(prefix) : 0;
    for (const struct series *s = h->first; s && list; s = s->next) {
        if (plen && strncmp(s->name, prefix, plen) != 0)
            continue;
        json_t *e = aos_map_get(&seen, s->name);
        if (!e) {
            e = json_pack("{s:s, s:s, s:[]}", "name", s->name, "type",
                          s->kind == K_COUNTER ? "counter" : "gauge", "labels");
            if (!e || json_array_append_new(list, e) || aos_map_put(&seen, s->name, e)) {
                json_decref(list);
                list = NULL;
                break;
            }
        }
        json_array_append(json_object_get(e, "labels"), s->labels);
    }
    aos_map_release(&seen);
    if (!list)
        return NULL;
    /* sorted by name, for a stable answer */
    size_t n = json_array_size(list);
    json_t **v = malloc((n ? n : 1) * sizeof(*v));
    if (!v) {
        json_decref(list);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        v[i] = json_incref(json_array_get(list, i));
    qsort(v, n, sizeof(*v), by_name);
    json_array_clear(list);
    for (size_t i = 0; i < n; i++)
        json_array_append_new(list, v[i]);
    free(v);
    return list;
}

/* ---- persistence ------------------------------------------------------------- */

static void put_le(unsigned char *p, float v)
{
    uint32_t u;
    memcpy(&u, &v, 4);
    p[0] = (unsigned char)u;
    p[1] = (unsigned char)(u >> 8);
    p[2] = (unsigned char)(u >> 16);
    p[3] = (unsigned char)(u >> 24);
}

static float get_le(const unsigned char *p)
{
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

void aos__mh_keep_from(int64_t now, int64_t keep_from[AOS__MH_RINGS])
{
    for (int r = 0; r < AOS__MH_RINGS; r++) {
        int64_t oldest = now / RING[r].step - RING[r].n + 1;
        keep_from[r] = oldest < 0 ? 0 : oldest / AOS__MH_CHUNK;
    }
}

static const char *ptext(struct series *s)
{
    if (!s->ptext) {
        json_t *o = json_pack("{s:s, s:s, s:s, s:O}", "key", s->key, "name", s->name, "kind",
                              s->kind == K_COUNTER ? "counter" : "gauge", "labels", s->labels);
        s->ptext = o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS) : NULL;
        json_decref(o);
    }
    return s->ptext;
}

void aos__mh_dump_free(aos__mh_dump_t *d)
{
    for (size_t i = 0; d->rows && i < d->n; i++)
        free((char *)d->rows[i].series);
    free(d->rows);
    free(d->bytes);
    memset(d, 0, sizeof(*d));
}

int aos__mh_dump(aos__mh_t *h, aos__mh_dump_t *d)
{
    memset(d, 0, sizeof(*d));
    size_t n = 0;
    for (struct series *s = h->first; s; s = s->next)
        for (int r = 0; r < AOS__MH_RINGS && s->dirty; r++) {
            if (s->k[r] < 0)
                continue;
            int64_t lo = s->flushed[r], min = s->k[r] - RING[r].n + 1;
            if (lo < min)
                lo = min;
            n += (size_t)(s->k[r] / AOS__MH_CHUNK - lo / AOS__MH_CHUNK + 1);
        }
    if (!n)
        return 0;
    d->rows = calloc(n, sizeof(*d->rows));
    d->bytes = malloc(n * AOS__MH_CHUNK * 4);
    if (!d->rows || !d->bytes) {
        aos__mh_dump_free(d);
        return AOS_ENOMEM;
    }
    for (struct series *s = h->first; s; s = s->next) {
        if (!s->dirty)
            continue;
        const char *text = ptext(s);
        if (!text)
            goto nomem;
        for (int r = 0; r < AOS__MH_RINGS; r++) {
            if (s->k[r] < 0)
                continue;
            int64_t lo = s->flushed[r], min = s->k[r] - RING[r].n + 1;
            if (lo < min)
                lo = min;
            for (int64_t c = lo / AOS__MH_CHUNK; c <= s->k[r] / AOS__MH_CHUNK; c++) {
                aos_store_mhist_row_t *row = &d->rows[d->n];
                unsigned char *b = d->bytes + d->n * AOS__MH_CHUNK * 4;
                int any = 0;
                for (int j = 0; j < AOS__MH_CHUNK; j++) {
                    double v = read_slot(s, r, c * AOS__MH_CHUNK + j);
                    any |= !isnan(v);
                    put_le(b + j * 4, (float)v);
                }
                /* a chunk with nothing in it (a gap) has no row to update:
                 * a slot, named by its time, is never missing again once
                 * written */
                if (!any)
                    continue;
                if (!(row->series = strdup(text)))
                    goto nomem;
                d->n++;
                row->ring = r;
                row->chunk = c;
                row->slots = b;
                row->len = AOS__MH_CHUNK * 4;
            }
            /* the current slot's chunk is written again at the next dump */
            s->flushed[r] = s->k[r];
        }
        s->dirty = 0;
    }
    return 0;
nomem:
    aos__mh_dump_free(d);
    return AOS_ENOMEM;
}

void aos__mh_rewind(aos__mh_t *h, int64_t t)
{
    for (struct series *s = h->first; s; s = s->next) {
        for (int r = 0; r < AOS__MH_RINGS; r++)
            if (s->k[r] >= 0 && s->flushed[r] > t / RING[r].step)
                s->flushed[r] = t / RING[r].step;
        s->dirty = 1;
    }
}

int aos__mh_load(aos__mh_t *h, const aos_store_mhist_row_t *row, int64_t now)
{
    int r = row->ring;
    if (r < 0 || r >= AOS__MH_RINGS || row->len != AOS__MH_CHUNK * 4)
        return AOS_EINVAL;
    json_error_t je;
    json_t *o = json_loads(row->series, 0, &je);
    const char *key = json_string_value(json_object_get(o, "key"));
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *kind = json_string_value(json_object_get(o, "kind"));
    json_t *labels = json_object_get(o, "labels");
    if (!key || !name || !kind || !json_is_object(labels) ||
        (strcmp(kind, "counter") && strcmp(kind, "gauge"))) {
        json_decref(o);
        return AOS_EINVAL;
    }
    enum kind k = !strcmp(kind, "counter") ? K_COUNTER : K_GAUGE;
    struct series *s = aos_map_get(&h->index, key);
    if (!s) {
        if (h->nseries >= h->max_series) {
            json_decref(o);
            return AOS_ETOOBIG;
        }
        s = series_new(h, name, "", json_incref(labels), k, key);
    }
    json_decref(o);
    if (!s)
        return AOS_ENOMEM;
    if (s->kind != k)
        return AOS_EINVAL;
    int64_t newest = now / RING[r].step, oldest = newest - RING[r].n + 1;
    const unsigned char *b = row->slots;
    for (int j = 0; j < AOS__MH_CHUNK; j++) {
        int64_t at = row->chunk * AOS__MH_CHUNK + j;
        float v = get_le(b + j * 4);
        if (at < oldest || at > newest || isnan(v))
            continue;
        if (at > s->k[r]) {
            /* the slots between the last loaded and this one stay missing:
             * they were NaN when the series was made, and rows come in
             * order of chunk */
            s->k[r] = at;
            s->flushed[r] = at;
        }
        *slot(s, r, at) = v;
    }
    return 0;
}
