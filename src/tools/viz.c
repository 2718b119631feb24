/* viz.c - the skill "viz" (tool plot, viz__plot): a line, bar, scatter or
 * area chart of a CSV file of the workspace, as a standalone SVG.
 *
 * One streaming pass reads the CSV (the reader of csvparse.c, so the same
 * encodings and dialects as csv.clean): the x column (numbers, dates or
 * categories, decided from its first values) and one or more y columns,
 * optionally split into series by a group-by column and aggregated (sum,
 * mean, count, min, max) per x, or per day/week/month/quarter/year of a
 * date x. Points are kept as doubles (at most POINTS_MAX in all); a series
 * longer than max_points is reduced with Largest-Triangle-Three-Buckets
 * (line, area, bar) or to one point per 2x2-pixel cell (scatter), so the
 * SVG stays small (about 12 bytes a point) whatever the input's size.
 *
 * The chart: axes with "nice" ticks (1, 2 or 5 times a power of ten;
 * calendar steps for dates), a title, axis labels, a legend, the
 * Okabe-Ito colour-blind-safe palette (dashes tell series apart past its
 * eight colours) and a font stack that has CJK faces. Elements carry
 * classes (axis, tick, series, legend-item) so that tests and styles can
 * find them. An output named *.png is the same SVG rasterised by
 * rsvg-convert (librsvg, Debian's librsvg2-bin) run as a child of this
 * worker thread (aos_proc_run: fixed argv, SVG on stdin, PNG on stdout,
 * bounded in size and time), then written like the SVG. */
#include "tools/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf/buf.h"
#include "proc/proc.h"
#include "utf8/utf8.h"

#define POINTS_MAX         (8u << 20) /* points kept before drawing */
#define SERIES_MAX         24
#define CATS_MAX           1000
#define DEFAULT_MAX_POINTS 1000
#define W_DEFAULT          960
#define H_DEFAULT          540
#define PNG_MAX            (32u << 20) /* bytes of a PNG rsvg-convert may write */
#define PNG_TIMEOUT_MS     20000

static const char *palette[] = {"#0072B2", "#E69F00", "#009E73", "#D55E00",
                                "#CC79A7", "#56B4E9", "#F0E442", "#000000"};
static const char *dashes[] = {"", "6 3", "2 3", "8 3 2 3"};
#define FONTS                                                                                      \
    "system-ui, -apple-system, 'Segoe UI', 'Noto Sans CJK SC', 'Source Han Sans SC', "             \
    "'PingFang SC', 'Microsoft YaHei', 'WenQuanYi Micro Hei', 'Noto Sans', Arial, sans-serif"

/* ---- ticks, LTTB ------------------------------------------------------------------------ */

int aos__viz_ticks(double lo, double hi, int want, double *first, double *step)
{
    if (!(hi > lo)) {
        double d = fabs(lo) > 0 ? fabs(lo) * 0.1 : 1;
        lo -= d;
        hi += d;
    }
    if (want < 2)
        want = 2;
    double raw = (hi - lo) / want;
    double mag = pow(10, floor(log10(raw)));
    double f = raw / mag;
    double nf = f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10;
    *step = nf * mag;
    *first = ceil(lo / *step - 1e-9) * *step;
    int n = (int)floor((hi - *first) / *step + 1e-9) + 1;
    return n < 1 ? 1 : n;
}

size_t aos__viz_lttb(const double *x, const double *y, size_t n, size_t m, size_t *out)
{
    if (m >= n || m < 3) {
        size_t k = n < m || m >= n ? n : m;
        if (m < 3 && n > m) {
            k = 0;
            if (m >= 1 && n)
                out[k++] = 0;
            if (m >= 2 && n > 1)
                out[k++] = n - 1;
            return k;
        }
        for (size_t i = 0; i < k; i++)
            out[i] = i;
        return k;
    }
    double every = (double)(n - 2) / (double)(m - 2);
    size_t a = 0, k = 0;
    out[k++] = 0;
    for (size_t i = 0; i < m - 2; i++) {
        size_t s = (size_t)floor((double)(i + 1) * every) + 1;
        size_t e = (size_t)floor((double)(i + 2) * every) + 1;
        if (e > n)
            e = n;
        double ax = 0, ay = 0;
        size_t cnt = e > s ? e - s : 0;
        for (size_t t = s; t < e; t++) {
            ax += x[t];
            ay += y[t];
        }
        if (cnt) {
            ax /= (double)cnt;
            ay /= (double)cnt;
        } else {
            ax = x[n - 1];
            ay = y[n - 1];
        }
        size_t rs = (size_t)floor((double)i * every) + 1;
        size_t re = (size_t)floor((double)(i + 1) * every) + 1;
        if (re > n - 1)
            re = n - 1;
        double best = -1;
        size_t pick = rs;
        for (size_t t = rs; t < re; t++) {
            double area = fabs((x[a] - ax) * (y[t] - y[a]) - (x[a] - x[t]) * (ay - y[a])) * 0.5;
            if (area > best) {
                best = area;
                pick = t;
            }
        }
        out[k++] = pick;
        a = pick;
    }
    out[k++] = n - 1;
    return k;
}

/* ---- dates ------------------------------------------------------------------------------ */

static long long days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    long long era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (unsigned)(m + (m > 2 ? -3 : 9)) + 2) / 5 + (unsigned)d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (long long)doe - 719468;
}

static void civil_from_days(long long z, int *y, int *m, int *d)
{
    z += 719468;
    long long era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    long long yy = (long long)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

/* Seconds since 1970 of a date or date-time value, or NAN. */
static double parse_time_value(const char *v)
{
    char iso[64];
    int fl = aos__csv_normalize(v, CSV_T_DATETIME, 0, iso, sizeof(iso));
    if (fl < 0)
        fl = aos__csv_normalize(v, CSV_T_DATE, 0, iso, sizeof(iso));
    if (fl < 0)
        return NAN;
    /* YYYY-MM-DD[THH:MM:SS...], as aos__csv_normalize writes it */
    size_t il = strlen(iso);
    if (il < 10)
        return NAN;
#define D2(p) (((p)[0] - '0') * 10 + ((p)[1] - '0'))
    int y = D2(iso) * 100 + D2(iso + 2), mo = D2(iso + 5), d = D2(iso + 8), h = 0, mi = 0, s = 0;
    if (il >= 19 && iso[10] == 'T') {
        h = D2(iso + 11);
        mi = D2(iso + 14);
        s = D2(iso + 17);
    }
#undef D2
    return (double)days_from_civil(y, mo, d) * 86400.0 + h * 3600 + mi * 60 + s;
}

/* [-]digits[.digits] with at most 15 digits in all: exact as one
 * correctly rounded division (mantissa < 2^53, divisor 10^k, k <= 22);
 * else NAN and the caller uses strtod. */
static double fast_decimal(const char *p)
{
    static const double p10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
    int neg = *p == '-';
    p += neg;
    uint64_t m = 0;
    int digits = 0, frac = -1;
    for (;; p++) {
        if (*p >= '0' && *p <= '9') {
            m = m * 10 + (uint64_t)(*p - '0');
            if (++digits > 15)
                return NAN;
            if (frac >= 0)
                frac++;
        } else if (*p == '.' && frac < 0) {
            frac = 0;
        } else {
            break;
        }
    }
    if (*p || !digits)
        return NAN;
    double x = (double)m / p10[frac > 0 ? frac : 0];
    return neg ? -x : x;
}

static double parse_number(const char *v)
{
    double f = fast_decimal(v);
    if (!isnan(f))
        return f;
    char *end;
    double x = strtod(v, &end);
    if (end != v && !*end && isfinite(x))
        return x;
    char n[128];
    if (aos__csv_normalize(v, CSV_T_DEC, 0, n, sizeof(n)) < 0 || !n[0])
        return NAN;
    x = strtod(n, &end);
    return *end || !isfinite(x) ? NAN : x;
}

/* ---- data ----------------------------------------------------------------------------- */

enum { X_NUM, X_TIME, X_CAT };
enum { AGG_NONE, AGG_SUM, AGG_MEAN, AGG_COUNT, AGG_MIN, AGG_MAX };
enum { B_NONE, B_DAY, B_WEEK, B_MONTH, B_QUARTER, B_YEAR };

typedef struct {
    char *name;
    double *x, *y;
    double *cnt; /* aggregation: count per point */
    size_t n, cap, in;
    size_t *keep;
    size_t nkeep;
} series_t;

typedef struct {
    int xtype, agg, bucket, kind;
    series_t s[SERIES_MAX];
    size_t ns;
    char *cats[CATS_MAX];
    size_t ncats;
    size_t total, skipped;
} data_t;

static int cat_index(data_t *d, const char *v)
{
    for (size_t i = 0; i < d->ncats; i++)
        if (!strcmp(d->cats[i], v))
            return (int)i;
    if (d->ncats >= CATS_MAX)
        return -1;
    d->cats[d->ncats] = strdup(v);
    return d->cats[d->ncats] ? (int)d->ncats++ : -1;
}

static series_t *series_get(data_t *d, const char *name, aos_err_t *err)
{
    for (size_t i = 0; i < d->ns; i++)
        if (!strcmp(d->s[i].name, name))
            return &d->s[i];
    if (d->ns >= SERIES_MAX) {
        aos_err_set(err, AOS_EINVAL, "more than %d series: group by a column with fewer values",
                    SERIES_MAX);
        return NULL;
    }
    series_t *s = &d->s[d->ns];
    if (!(s->name = strdup(name))) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        return NULL;
    }
    d->ns++;
    return s;
}

static int series_add(data_t *d, series_t *s, double x, double y, aos_err_t *err)
{
    s->in++;
    if (d->agg != AGG_NONE) {
        /* aggregated series are small: a linear probe from the end finds
         * the common case (rows in x order) at once */
        for (size_t i = s->n; i-- > 0;) {
            if (s->x[i] == x) {
                s->cnt[i]++;
                if (d->agg == AGG_SUM || d->agg == AGG_MEAN)
                    s->y[i] += y;
                else if (d->agg == AGG_MIN && y < s->y[i])
                    s->y[i] = y;
                else if (d->agg == AGG_MAX && y > s->y[i])
                    s->y[i] = y;
                return 0;
            }
            if (s->n - i > 64)
                break;
        }
        for (size_t i = 0; s->n > 64 && i < s->n - 64; i++)
            if (s->x[i] == x) {
                s->cnt[i]++;
                if (d->agg == AGG_SUM || d->agg == AGG_MEAN)
                    s->y[i] += y;
                else if (d->agg == AGG_MIN && y < s->y[i])
                    s->y[i] = y;
                else if (d->agg == AGG_MAX && y > s->y[i])
                    s->y[i] = y;
                return 0;
            }
        if (s->n >= 100000)
            return aos_err_set(err, AOS_EINVAL,
                               "more than 100000 distinct x values to aggregate: use a bucket");
    }
    if (d->total >= POINTS_MAX)
        return aos_err_set(err, AOS_ETOOBIG,
                           "more than %u points: aggregate them (agg, bucket) first", POINTS_MAX);
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 1024;
        double *nx = realloc(s->x, nc * sizeof(double));
        if (nx)
            s->x = nx;
        double *ny = nx ? realloc(s->y, nc * sizeof(double)) : NULL;
        if (ny)
            s->y = ny;
        double *nn = ny && d->agg != AGG_NONE ? realloc(s->cnt, nc * sizeof(double)) : NULL;
        if (nn)
            s->cnt = nn;
        if (!nx || !ny || (d->agg != AGG_NONE && !nn))
            return aos_err_set(err, AOS_ENOMEM, NULL);
        s->cap = nc;
    }
    s->x[s->n] = x;
    s->y[s->n] = d->agg == AGG_COUNT ? 0 : y;
    if (d->agg != AGG_NONE)
        s->cnt[s->n] = 1;
    s->n++;
    d->total++;
    return 0;
}

static double bucket_of(int b, double secs)
{
    long long days = (long long)floor(secs / 86400.0);
    int y, m, dd;
    civil_from_days(days, &y, &m, &dd);
    switch (b) {
    case B_DAY:
        return (double)days * 86400.0;
    case B_WEEK: /* weeks start on Monday; 1970-01-01 was a Thursday */
        return (double)(days - ((days + 3) % 7 + 7) % 7) * 86400.0;
    case B_MONTH:
        return (double)days_from_civil(y, m, 1) * 86400.0;
    case B_QUARTER:
        return (double)days_from_civil(y, (m - 1) / 3 * 3 + 1, 1) * 86400.0;
    case B_YEAR:
        return (double)days_from_civil(y, 1, 1) * 86400.0;
    default:
        return secs;
    }
}

/* ---- svg ---------------------------------------------------------------------------------- */

/* The SVG being built: a failed append marks it bad. */
typedef struct {
    aos_buf_t b;
    int bad;
} svg_t;

__attribute__((format(printf, 2, 3))) static void sp(svg_t *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (aos_buf_vprintf(&s->b, fmt, ap))
        s->bad = 1;
    va_end(ap);
}

static void ss(svg_t *s, const char *str)
{
    if (aos_buf_puts(&s->b, str))
        s->bad = 1;
}

static void sa(svg_t *s, const char *p, size_t n)
{
    if (aos_buf_append(&s->b, p, n))
        s->bad = 1;
}

static void esc(svg_t *b, const char *s)
{
    char clean[1024];
    size_t n = strlen(s);
    if (n > 300)
        n = aos_utf8_trim(s, 300);
    aos_utf8_scrub(clean, sizeof(clean), s, n);
    for (const char *p = clean; *p; p++) {
        switch (*p) {
        case '&':
            ss(b, "&amp;");
            break;
        case '<':
            ss(b, "&lt;");
            break;
        case '>':
            ss(b, "&gt;");
            break;
        case '"':
            ss(b, "&quot;");
            break;
        default:
            if ((unsigned char)*p < 0x20)
                ss(b, " ");
            else
                sa(b, p, 1);
        }
    }
}

/* A rough width of text in px at size px: CJK a full em, others 0.6. */
static double text_width(const char *s, double px)
{
    double w = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p < 0x80)
            w += 0.6;
        else if (*p >= 0xe0)
            w += 1.0;
        else if (*p >= 0xc0)
            w += 0.6;
    }
    return w * px;
}

static void fmt_num(double v, double step, char *out, size_t n)
{
    double a = fabs(v);
    if (a >= 1e9)
        snprintf(out, n, "%gB", v / 1e9);
    else if (a >= 1e6)
        snprintf(out, n, "%gM", v / 1e6);
    else {
        int dec = step >= 1 ? 0 : (int)ceil(-log10(step) - 1e-9);
        if (dec > 8)
            dec = 8;
        snprintf(out, n, "%.*f", dec, v);
        if (!strcmp(out, "-0"))
            snprintf(out, n, "0");
    }
}

typedef struct {
    double x0, x1, y0, y1; /* data domain */
    double L, R, T, B;     /* plot area in px */
} frame_t;

static double px(const frame_t *f, double x)
{
    return f->x1 > f->x0 ? f->L + (x - f->x0) / (f->x1 - f->x0) * (f->R - f->L) : (f->L + f->R) / 2;
}

static double py(const frame_t *f, double y)
{
    return f->y1 > f->y0 ? f->B - (y - f->y0) / (f->y1 - f->y0) * (f->B - f->T) : (f->T + f->B) / 2;
}

/* Time ticks: a calendar step (years, months, days, hours) giving at
 * most want ticks over [lo, hi] seconds. */
static void time_ticks(svg_t *b, const frame_t *f, double lo, double hi, int want)
{
    double span = hi - lo;
    static const struct {
        double secs;
        int months;
    } steps[] = {{3600, 0}, {6 * 3600, 0}, {86400, 0}, {7 * 86400, 0}, {0, 1},   {0, 3},
                 {0, 6},    {0, 12},       {0, 24},    {0, 60},        {0, 120}, {0, 600}};
    size_t k = 0;
    for (; k < sizeof(steps) / sizeof(steps[0]) - 1; k++) {
        double s = steps[k].secs ? steps[k].secs : steps[k].months * 30.44 * 86400;
        if (span / s <= want)
            break;
    }
    long long days = (long long)floor(lo / 86400.0);
    int y, m, d;
    civil_from_days(days, &y, &m, &d);
    double t;
    int months = steps[k].months;
    if (months) {
        /* the first month boundary at or after lo on the step's grid */
        int idx = y * 12 + (m - 1);
        idx = (idx + months - 1) / months * months;
        t = (double)days_from_civil(idx / 12, idx % 12 + 1, 1) * 86400.0;
        if (t < lo) {
            idx += months;
            t = (double)days_from_civil(idx / 12, idx % 12 + 1, 1) * 86400.0;
        }
        for (int i = 0; t <= hi + 1 && i < 100; i++) {
            char lab[32];
            if (months >= 12)
                snprintf(lab, sizeof(lab), "%d", idx / 12);
            else
                snprintf(lab, sizeof(lab), "%d-%02d", idx / 12, idx % 12 + 1);
            sp(b,
               "<g class=\"tick\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" "
               "y2=\"%.1f\" stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\" "
               "text-anchor=\"middle\">%s</text></g>",
               px(f, t), px(f, t), f->B, f->B + 5, px(f, t), f->B + 19, lab);
            idx += months;
            t = (double)days_from_civil(idx / 12, idx % 12 + 1, 1) * 86400.0;
        }
        return;
    }
    double s = steps[k].secs;
    double t0 = ceil(lo / s) * s;
    for (int i = 0; i < 100 && (t = t0 + i * s) <= hi + 1; i++) {
        char lab[32];
        civil_from_days((long long)floor(t / 86400.0), &y, &m, &d);
        if (s < 86400)
            snprintf(lab, sizeof(lab), "%02d-%02d %02d:00", m, d, (int)(fmod(t, 86400.0) / 3600.0));
        else
            snprintf(lab, sizeof(lab), "%d-%02d-%02d", y, m, d);
        sp(b,
           "<g class=\"tick\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
           "stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\" "
           "text-anchor=\"middle\">%s</text></g>",
           px(f, t), px(f, t), f->B, f->B + 5, px(f, t), f->B + 19, lab);
    }
}

typedef struct {
    const char *title, *xlabel, *ylabel;
    int w, h;
    size_t max_points;
} opts_t;

typedef struct {
    double x, y;
} pt_t;

static int by_x(const void *a, const void *b)
{
    double x = ((const pt_t *)a)->x, y = ((const pt_t *)b)->x;
    return x < y ? -1 : x > y;
}

/* Sorts a series by x, unless it is sorted already (the common case). */
static int sort_series(series_t *s)
{
    int sorted = 1;
    for (size_t i = 1; i < s->n && sorted; i++)
        sorted = s->x[i - 1] <= s->x[i];
    if (sorted)
        return 0;
    pt_t *p = malloc(s->n * sizeof(*p));
    if (!p)
        return -1;
    for (size_t i = 0; i < s->n; i++)
        p[i] = (pt_t){s->x[i], s->y[i]};
    qsort(p, s->n, sizeof(*p), by_x);
    for (size_t i = 0; i < s->n; i++) {
        s->x[i] = p[i].x;
        s->y[i] = p[i].y;
    }
    free(p);
    return 0;
}

static const char *kind_names[] = {"line", "bar", "scatter", "area"};
enum { K_LINE, K_BAR, K_SCATTER, K_AREA };

static char *render(data_t *d, const opts_t *o, aos_err_t *err)
{
    svg_t b = {.bad = 0};
    aos_buf_init(&b.b, 0);
    frame_t f = {0};
    int has = 0;
    for (size_t i = 0; i < d->ns; i++)
        for (size_t k = 0; k < d->s[i].nkeep; k++) {
            size_t p = d->s[i].keep[k];
            double x = d->s[i].x[p], y = d->s[i].y[p];
            if (!has) {
                f.x0 = f.x1 = x;
                f.y0 = f.y1 = y;
                has = 1;
            }
            f.x0 = fmin(f.x0, x);
            f.x1 = fmax(f.x1, x);
            f.y0 = fmin(f.y0, y);
            f.y1 = fmax(f.y1, y);
        }
    if (!has) {
        aos_buf_release(&b.b);
        aos_err_set(err, AOS_EINVAL, "no points to plot: no row has both x and y values");
        return NULL;
    }
    if (d->kind == K_BAR || d->kind == K_AREA) {
        f.y0 = fmin(f.y0, 0);
        f.y1 = fmax(f.y1, 0);
    }
    double ys, yfirst;
    aos__viz_ticks(f.y0, f.y1, 6, &yfirst, &ys);
    f.y0 = floor(f.y0 / ys + 1e-9) * ys;
    f.y1 = ceil(f.y1 / ys - 1e-9) * ys;
    if (f.y1 <= f.y0)
        f.y1 = f.y0 + ys;
    int ny = aos__viz_ticks(f.y0, f.y1, 6, &yfirst, &ys);
    /* layout */
    char lab[64];
    double ylw = 0;
    for (int i = 0; i < ny; i++) {
        fmt_num(yfirst + i * ys, ys, lab, sizeof(lab));
        ylw = fmax(ylw, text_width(lab, 12));
    }
    int legend = d->ns > 1 || (d->ns == 1 && strcmp(d->s[0].name, o->ylabel ? o->ylabel : ""));
    f.L = 30 + ylw + 12;
    f.R = o->w - 20;
    f.T = 48 + (legend ? 24 : 0);
    f.B = o->h - 52;
    int cat = d->xtype == X_CAT;
    double band = 0;
    if (cat) {
        f.x0 = -0.5;
        f.x1 = (double)d->ncats - 0.5;
        band = (f.R - f.L) / (double)(d->ncats ? d->ncats : 1);
    } else if (d->kind == K_BAR) {
        /* room for the first and last bars */
        size_t n = 0;
        for (size_t i = 0; i < d->ns; i++)
            n = d->s[i].nkeep > n ? d->s[i].nkeep : n;
        double pad = (f.x1 - f.x0) / (double)(n > 1 ? n - 1 : 1) / 2;
        if (!(pad > 0))
            pad = 1;
        f.x0 -= pad;
        f.x1 += pad;
        band = (f.R - f.L) / (double)(n ? n : 1);
    }
    sp(&b,
       "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
       "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
       "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"",
       o->w, o->h, o->w, o->h);
    esc(&b, o->title);
    sp(&b, "\" font-family=\"%s\" font-size=\"12\" data-kind=\"%s\">\n<title>", FONTS,
       kind_names[d->kind]);
    esc(&b, o->title);
    sp(&b,
       "</title>\n<rect width=\"100%%\" height=\"100%%\" fill=\"#fff\"/>\n"
       "<text class=\"title\" x=\"%.1f\" y=\"26\" text-anchor=\"middle\" "
       "font-size=\"18\" font-weight=\"600\">",
       o->w / 2.0);
    esc(&b, o->title);
    ss(&b, "</text>\n");
    /* y axis: grid lines, ticks, labels */
    sp(&b,
       "<g class=\"axis y-axis\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" "
       "y2=\"%.1f\" stroke=\"#444\"/>",
       f.L, f.L, f.T, f.B);
    for (int i = 0; i < ny; i++) {
        double v = yfirst + i * ys, y = py(&f, v);
        fmt_num(v, ys, lab, sizeof(lab));
        sp(&b,
           "<g class=\"tick\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" "
           "stroke=\"#ddd\"/><text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%s</text>"
           "</g>",
           f.L, f.R, y, y, f.L - 6, y + 4, lab);
    }
    sp(&b,
       "<text class=\"label\" transform=\"translate(14 %.1f) rotate(-90)\" "
       "text-anchor=\"middle\">",
       (f.T + f.B) / 2);
    esc(&b, o->ylabel ? o->ylabel : "");
    ss(&b, "</text></g>\n");
    /* x axis */
    sp(&b,
       "<g class=\"axis x-axis\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" "
       "y2=\"%.1f\" stroke=\"#444\"/>",
       f.L, f.R, f.B, f.B);
    if (cat) {
        double maxw = 0;
        for (size_t i = 0; i < d->ncats; i++)
            maxw = fmax(maxw, text_width(d->cats[i], 12));
        size_t every = 1;
        while (every < d->ncats && band * (double)every < maxw + 8)
            every++;
        for (size_t i = 0; i < d->ncats; i += every) {
            double x = px(&f, (double)i);
            sp(&b,
               "<g class=\"tick\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" "
               "y2=\"%.1f\" stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\" "
               "text-anchor=\"middle\">",
               x, x, f.B, f.B + 5, x, f.B + 19);
            esc(&b, d->cats[i]);
            ss(&b, "</text></g>");
        }
    } else if (d->xtype == X_TIME) {
        time_ticks(&b, &f, f.x0, f.x1, (int)((f.R - f.L) / 90));
    } else {
        double xs, xfirst;
        int nx = aos__viz_ticks(f.x0, f.x1, (int)((f.R - f.L) / 90), &xfirst, &xs);
        for (int i = 0; i < nx; i++) {
            double v = xfirst + i * xs, x = px(&f, v);
            fmt_num(v, xs, lab, sizeof(lab));
            sp(&b,
               "<g class=\"tick\"><line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" "
               "y2=\"%.1f\" stroke=\"#444\"/><text x=\"%.1f\" y=\"%.1f\" "
               "text-anchor=\"middle\">%s</text></g>",
               x, x, f.B, f.B + 5, x, f.B + 19, lab);
        }
    }
    sp(&b, "<text class=\"label\" x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">", (f.L + f.R) / 2,
       (double)o->h - 12);
    esc(&b, o->xlabel ? o->xlabel : "");
    ss(&b, "</text></g>\n");
    /* series */
    sp(&b, "<g class=\"plot\" clip-path=\"inset(0)\">");
    for (size_t si = 0; si < d->ns; si++) {
        series_t *s = &d->s[si];
        const char *col = palette[si % 8], *dash = dashes[(si / 8) % 4];
        ss(&b, "<g class=\"series\" data-name=\"");
        esc(&b, s->name);
        sp(&b, "\" data-points=\"%zu\">", s->nkeep);
        if (d->kind == K_BAR) {
            double bw = band * 0.8 / (double)d->ns;
            double y0 = py(&f, fmax(f.y0, fmin(0, f.y1)));
            for (size_t k = 0; k < s->nkeep; k++) {
                size_t p = s->keep[k];
                double cx = px(&f, s->x[p]) - band * 0.4 + bw * (double)si;
                double yv = py(&f, s->y[p]);
                sp(&b,
                   "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" "
                   "fill=\"%s\"/>",
                   cx, fmin(yv, y0), fmax(bw - 1, 0.5), fabs(y0 - yv), col);
            }
        } else {
            ss(&b, "<path d=\"");
            double y0 = py(&f, fmax(f.y0, fmin(0, f.y1)));
            for (size_t k = 0; k < s->nkeep; k++) {
                size_t p = s->keep[k];
                double x = px(&f, s->x[p]), y = py(&f, s->y[p]);
                if (d->kind == K_SCATTER)
                    sp(&b, "M%.1f %.1fh0", x, y);
                else if (d->kind == K_AREA && k == 0)
                    sp(&b, "M%.1f %.1fL%.1f %.1f", x, y0, x, y);
                else
                    sp(&b, "%c%.1f %.1f", k ? 'L' : 'M', x, y);
            }
            if (d->kind == K_AREA && s->nkeep)
                sp(&b, "L%.1f %.1fZ", px(&f, s->x[s->keep[s->nkeep - 1]]), y0);
            if (d->kind == K_SCATTER)
                sp(&b,
                   "\" fill=\"none\" stroke=\"%s\" stroke-width=\"5\" "
                   "stroke-linecap=\"round\" stroke-opacity=\"0.75\"/>",
                   col);
            else if (d->kind == K_AREA)
                sp(&b,
                   "\" fill=\"%s\" fill-opacity=\"0.35\" stroke=\"%s\" "
                   "stroke-width=\"1.5\" stroke-dasharray=\"%s\"/>",
                   col, col, dash);
            else
                sp(&b,
                   "\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\" "
                   "stroke-linejoin=\"round\" stroke-dasharray=\"%s\"/>",
                   col, dash);
        }
        ss(&b, "</g>");
    }
    ss(&b, "</g>\n");
    /* legend: one row under the title, wrapped to the width */
    ss(&b, "<g class=\"legend\">");
    double lx = f.L, ly = 44;
    for (size_t si = 0; si < d->ns && legend; si++) {
        double w = 18 + text_width(d->s[si].name, 12) + 16;
        if (lx + w > f.R && lx > f.L) {
            lx = f.L;
            ly += 18;
        }
        sp(&b,
           "<g class=\"legend-item\"><rect x=\"%.1f\" y=\"%.1f\" width=\"12\" "
           "height=\"12\" fill=\"%s\"/><text x=\"%.1f\" y=\"%.1f\">",
           lx, ly, palette[si % 8], lx + 16, ly + 10);
        esc(&b, d->s[si].name);
        ss(&b, "</text></g>");
        lx += w;
    }
    ss(&b, "</g>\n</svg>\n");
    if (b.bad) {
        aos_buf_release(&b.b);
        aos_err_set(err, AOS_ENOMEM, NULL);
        return NULL;
    }
    char *out = aos_buf_detach(&b.b, NULL);
    if (!out)
        aos_err_set(err, AOS_ENOMEM, NULL);
    return out;
}

/* ---- the tool -------------------------------------------------------------------------------- */

static int pick(const char *v, const char *const *names, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(v, names[i]))
            return (int)i;
    return -1;
}

static int col_index(char **h, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(h[i], name))
            return (int)i;
    return -1;
}

/* Reduces each series to at most max points (by x order). */
static int reduce(data_t *d, const opts_t *o, aos_err_t *err)
{
    for (size_t i = 0; i < d->ns; i++) {
        series_t *s = &d->s[i];
        if (d->agg == AGG_MEAN)
            for (size_t k = 0; k < s->n; k++)
                s->y[k] /= s->cnt[k];
        if (d->agg == AGG_COUNT)
            for (size_t k = 0; k < s->n; k++)
                s->y[k] = s->cnt[k];
        if (d->kind != K_SCATTER && sort_series(s))
            return aos_err_set(err, AOS_ENOMEM, NULL);
        s->keep = malloc((s->n ? s->n : 1) * sizeof(size_t));
        if (!s->keep)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        size_t max = o->max_points;
        if (d->kind != K_SCATTER) {
            s->nkeep = aos__viz_lttb(s->x, s->y, s->n, max, s->keep);
            continue;
        }
        /* scatter: the first point of each 2x2 px cell, then every k-th */
        double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
        for (size_t k = 0; k < s->n; k++) {
            x0 = fmin(x0, s->x[k]);
            x1 = fmax(x1, s->x[k]);
            y0 = fmin(y0, s->y[k]);
            y1 = fmax(y1, s->y[k]);
        }
        size_t gw = (size_t)o->w / 2, gh = (size_t)o->h / 2;
        unsigned char *seen = calloc(gw * gh, 1);
        if (!seen)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        for (size_t k = 0; k < s->n; k++) {
            size_t cx = x1 > x0 ? (size_t)((s->x[k] - x0) / (x1 - x0) * (double)(gw - 1)) : 0;
            size_t cy = y1 > y0 ? (size_t)((s->y[k] - y0) / (y1 - y0) * (double)(gh - 1)) : 0;
            if (!seen[cy * gw + cx]) {
                seen[cy * gw + cx] = 1;
                s->keep[s->nkeep++] = k;
            }
        }
        free(seen);
        if (s->nkeep > max) {
            size_t m = 0;
            for (size_t k = 0; k < max; k++)
                s->keep[m++] = s->keep[k * s->nkeep / max];
            s->nkeep = m;
        }
    }
    return 0;
}

static json_t *run_plot(tools_job_t *j, aos_err_t *err)
{
    static const char *const kinds[] = {"line", "bar", "scatter", "area"};
    static const char *const aggs[] = {"none", "sum", "mean", "count", "min", "max"};
    static const char *const buckets[] = {"none", "day", "week", "month", "quarter", "year"};
    const char *path = aos__tools_path(j->args, "path", err);
    if (!path)
        return NULL;
    char out_def[600];
    const char *output = out_def;
    if (json_object_get(j->args, "output")) {
        if (!(output = aos__tools_path(j->args, "output", err)))
            return NULL;
    } else {
        /* "<y>_by_<x>.svg", as the planner names it */
        const json_t *ya = json_object_get(j->args, "y");
        const char *y0 =
            json_is_string(ya) ? json_string_value(ya) : json_string_value(json_array_get(ya, 0));
        snprintf(out_def, sizeof(out_def), "%.200s_by_%.200s.svg", y0 ? y0 : "y",
                 aos__tools_str(j->args, "x", "x"));
        for (char *p = out_def; *p; p++)
            if (strchr("/\\ :*?\"<>|", *p))
                *p = '_';
    }
    data_t d = {0};
    opts_t o = {0};
    d.kind = pick(aos__tools_str(j->args, "kind", "line"), kinds, 4);
    d.agg = pick(aos__tools_str(j->args, "agg", "none"), aggs, 6);
    d.bucket = pick(aos__tools_str(j->args, "bucket", "none"), buckets, 6);
    const char *xname = aos__tools_str(j->args, "x", NULL);
    const char *group = aos__tools_str(j->args, "group_by", NULL);
    const json_t *yarg = json_object_get(j->args, "y");
    if (d.kind < 0 || d.agg < 0 || d.bucket < 0)
        return aos_err_set(err, AOS_EINVAL,
                           "kind must be line, bar, scatter or area; agg none, sum, mean, "
                           "count, min or max; bucket none, day, week, month, quarter or year"),
               NULL;
    if (!xname || !(json_is_string(yarg) || (json_is_array(yarg) && json_array_size(yarg))))
        return aos_err_set(err, AOS_EINVAL,
                           "'x' must be a column name and 'y' a column name or a list of them"),
               NULL;
    size_t oln = strlen(output);
    int png = oln >= 5 && !strcasecmp(output + oln - 4, ".png");
    if (oln < 5 || (strcasecmp(output + oln - 4, ".svg") && !png))
        return aos_err_set(err, AOS_EINVAL, "'output' must be an .svg or a .png file"), NULL;
    o.w = (int)aos__tools_int(j->args, "width", W_DEFAULT);
    o.h = (int)aos__tools_int(j->args, "height", H_DEFAULT);
    o.max_points = (size_t)aos__tools_int(j->args, "max_points", DEFAULT_MAX_POINTS);
    if (o.w < 200 || o.w > 4000 || o.h < 150 || o.h > 4000 || o.max_points < 3 ||
        o.max_points > 20000)
        return aos_err_set(err, AOS_EINVAL,
                           "width 200..4000, height 150..4000, max_points 3..20000"),
               NULL;
    json_t *res = NULL;
    FILE *f = NULL;
    csv_reader_t *r = NULL;
    char **hdr = NULL;
    size_t nh = 0;
    char *svg = NULL;
    int in = aos_tools_ws_open(j->root, path, O_RDONLY, 0, 0, err);
    if (in < 0)
        return NULL;
    unsigned char sample[16384];
    ssize_t sn = pread(in, sample, sizeof(sample), 0);
    csv_enc_t enc = aos__csv_detect_enc(sample, sn > 0 ? (size_t)sn : 0);
    csv_dialect_t dl = aos__csv_sniff((const char *)sample, sn > 0 ? (size_t)sn : 0);
    if (!(f = fdopen(in, "r"))) {
        close(in);
        aos_err_set(err, AOS_EIO, "unable to read '%.200s'", path);
        goto out;
    }
    setvbuf(f, NULL, _IOFBF, 1 << 20);
    if (!(r = aos__csv_reader_new(f, enc, dl))) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    char **fl;
    size_t n;
    if (aos__csv_read(r, &fl, &n) != 1) {
        aos_err_set(err, AOS_EINVAL, "'%.200s' has no header row", path);
        goto out;
    }
    hdr = calloc(n, sizeof(*hdr));
    for (size_t i = 0; hdr && i < n; i++) {
        char t[256];
        aos__csv_normalize(fl[i], CSV_T_TEXT, 0, t, sizeof(t));
        if (!(hdr[nh] = strdup(t)))
            break;
        nh++;
    }
    if (!hdr || nh < n) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    int xi = col_index(hdr, nh, xname), gi = group ? col_index(hdr, nh, group) : -1;
    int yi[SERIES_MAX];
    series_t *plain[SERIES_MAX] = {0}; /* the series of each y, without group_by */
    size_t nyc = json_is_string(yarg) ? 1 : json_array_size(yarg);
    if (xi < 0 || (group && gi < 0)) {
        aos_err_set(err, AOS_EINVAL, "no column named '%.100s' in '%.200s'", xi < 0 ? xname : group,
                    path);
        goto out;
    }
    if (nyc > SERIES_MAX) {
        aos_err_set(err, AOS_EINVAL, "at most %d y columns", SERIES_MAX);
        goto out;
    }
    for (size_t i = 0; i < nyc; i++) {
        const json_t *yn = json_is_string(yarg) ? yarg : json_array_get(yarg, i);
        if (!json_is_string(yn) || (yi[i] = col_index(hdr, nh, json_string_value(yn))) < 0) {
            aos_err_set(err, AOS_EINVAL, "no column named '%.100s' in '%.200s'",
                        json_is_string(yn) ? json_string_value(yn) : "?", path);
            goto out;
        }
    }
    /* the x type: from the first values that are not empty */
    int xdecided = 0;
    while (aos__csv_read(r, &fl, &n) == 1) {
        const char *xv = (size_t)xi < n ? fl[xi] : "";
        char xt_s[256];
        aos__csv_normalize(xv, CSV_T_TEXT, 0, xt_s, sizeof(xt_s));
        if (!xt_s[0]) {
            d.skipped++;
            continue;
        }
        if (!xdecided) {
            /* decided on the first value; a later one that does not fit is
             * skipped (and counted) */
            int order;
            csv_type_t t = aos__csv_classify(xt_s, &order);
            d.xtype = t == CSV_T_INT || t == CSV_T_DEC         ? X_NUM
                      : t == CSV_T_DATE || t == CSV_T_DATETIME ? X_TIME
                                                               : X_CAT;
            if (d.bucket != B_NONE && d.xtype != X_TIME) {
                aos_err_set(err, AOS_EINVAL, "'bucket' needs dates in the x column");
                goto out;
            }
            if (d.agg == AGG_NONE && (d.bucket != B_NONE || d.xtype == X_CAT))
                d.agg = AGG_SUM;
            xdecided = 1;
        }
        double x;
        if (d.xtype == X_NUM)
            x = parse_number(xt_s);
        else if (d.xtype == X_TIME)
            x = parse_time_value(xt_s);
        else {
            int c = cat_index(&d, xt_s);
            if (c < 0) {
                aos_err_set(err, AOS_EINVAL, "more than %d x categories", CATS_MAX);
                goto out;
            }
            x = c;
        }
        if (isnan(x)) {
            d.skipped++;
            continue;
        }
        if (d.bucket != B_NONE)
            x = bucket_of(d.bucket, x);
        for (size_t i = 0; i < nyc; i++) {
            const char *yv = (size_t)yi[i] < n ? fl[yi[i]] : "";
            double y = d.agg == AGG_COUNT ? 0 : parse_number(yv);
            if (isnan(y)) {
                d.skipped++;
                continue;
            }
            if (gi < 0 && plain[i]) {
                if (series_add(&d, plain[i], x, y, err))
                    goto out;
                continue;
            }
            char sname[512];
            const char *yn = hdr[yi[i]];
            if (gi >= 0) {
                char gv[256];
                aos__csv_normalize((size_t)gi < n ? fl[gi] : "", CSV_T_TEXT, 0, gv, sizeof(gv));
                if (nyc > 1)
                    snprintf(sname, sizeof(sname), "%s %s", gv[0] ? gv : "(empty)", yn);
                else
                    snprintf(sname, sizeof(sname), "%s", gv[0] ? gv : "(empty)");
            } else {
                snprintf(sname, sizeof(sname), "%s", yn);
            }
            series_t *s = series_get(&d, sname, err);
            if (!s || series_add(&d, s, x, y, err))
                goto out;
            if (gi < 0)
                plain[i] = s;
        }
    }
    if (aos__csv_reader_error(r)) {
        aos_err_set(err, AOS_EINVAL, "unable to parse '%.200s': %s", path,
                    aos__csv_reader_error(r));
        goto out;
    }
    if (reduce(&d, &o, err))
        goto out;
    char title[1024], ylab[512];
    {
        size_t k = 0;
        ylab[0] = '\0';
        for (size_t i = 0; i < nyc && k < 300; i++) {
            int w = snprintf(ylab + k, sizeof(ylab) - k, "%s%.100s", i ? ", " : "", hdr[yi[i]]);
            k += w > 0 ? (size_t)w : 0;
        }
        if (d.agg != AGG_NONE && d.agg != AGG_COUNT) {
            char t[512];
            snprintf(t, sizeof(t), "%s of %.450s", aggs[d.agg], ylab);
            snprintf(ylab, sizeof(ylab), "%s", t);
        } else if (d.agg == AGG_COUNT) {
            snprintf(ylab, sizeof(ylab), "count");
        }
        snprintf(title, sizeof(title), "%.500s by %.200s%s%s", ylab, hdr[xi],
                 d.bucket != B_NONE ? " per " : "", d.bucket != B_NONE ? buckets[d.bucket] : "");
    }
    o.title = aos__tools_str(j->args, "title", title);
    o.xlabel = aos__tools_str(j->args, "x_label", hdr[xi]);
    o.ylabel = aos__tools_str(j->args, "y_label", ylab);
    if (!(svg = render(&d, &o, err)))
        goto out;
    /* a .png output: the SVG rasterised by rsvg-convert (librsvg) */
    char *body = svg;
    size_t len = strlen(svg);
    if (png) {
        char *const argv[] = {"rsvg-convert", "--format=png", NULL};
        char *pbuf;
        size_t plen;
        int prc = aos_proc_run("rsvg-convert", argv, svg, len, &pbuf, &plen, PNG_MAX,
                               PNG_TIMEOUT_MS, err);
        if (prc == AOS_EUNAVAIL) {
            aos_err_set(err, AOS_EUNAVAIL,
                        "PNG output needs rsvg-convert (Debian package librsvg2-bin); write an "
                        ".svg instead");
            goto out;
        }
        if (prc)
            goto out;
        free(svg);
        svg = body = pbuf;
        len = plen;
    }
    /* write it durably beside, then rename */
    int dir = -1;
    char *tmp = NULL;
    int fd = aos__tools_tmpfile(j->root, output, &dir, &tmp, err);
    if (fd < 0)
        goto out;
    size_t off = 0;
    int rc = 0;
    while (!rc && off < len) {
        ssize_t w = write(fd, body + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = aos_err_set(err, AOS_EIO, "unable to write '%.200s': %s", output, strerror(errno));
        else
            off += (size_t)w;
    }
    const char *oname = strrchr(output, '/') ? strrchr(output, '/') + 1 : output;
    if (!rc)
        rc = aos__tools_commit(dir, tmp, oname, fd, err);
    else
        unlinkat(dir, tmp, 0);
    close(fd);
    close(dir);
    free(tmp);
    if (rc)
        goto out;
    json_t *ser = json_array();
    for (size_t i = 0; i < d.ns; i++)
        json_array_append_new(ser, json_pack("{s:s, s:I, s:I, s:s}", "name", d.s[i].name,
                                             "points_in", (json_int_t)d.s[i].in, "points_drawn",
                                             (json_int_t)d.s[i].nkeep, "color", palette[i % 8]));
    static const char *xtypes[] = {"number", "time", "category"};
    res = json_pack("{s:s, s:s, s:s, s:s, s:{s:s, s:s}, s:o, s:I, s:I, s:s, s:[s]}", "input", path,
                    "output", output, "format", png ? "png" : "svg", "kind", kinds[d.kind], "x",
                    "column", hdr[xi], "type", xtypes[d.xtype], "series", ser, "rows_skipped",
                    (json_int_t)d.skipped, "bytes", (json_int_t)len, "aggregation", aggs[d.agg],
                    "files", output);
    if (!res)
        aos_err_set(err, AOS_ENOMEM, NULL);
out:
    free(svg);
    aos__csv_reader_free(r);
    if (f)
        fclose(f);
    for (size_t i = 0; i < nh; i++)
        free(hdr[i]);
    free(hdr);
    for (size_t i = 0; i < d.ns; i++) {
        free(d.s[i].name);
        free(d.s[i].x);
        free(d.s[i].y);
        free(d.s[i].cnt);
        free(d.s[i].keep);
    }
    for (size_t i = 0; i < d.ncats; i++)
        free(d.cats[i]);
    return res;
}

static json_t *viz_tools(void *data)
{
    json_t *in = json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s, s:[s,s,s,s], s:s}, s:{s:s, s:s}, s:{s:[{s:s}, "
        "{s:s, s:{s:s}}], s:s}, s:{s:s, s:s}, s:{s:s, s:[s,s,s,s,s,s]}, s:{s:s, "
        "s:[s,s,s,s,s,s]}, s:{s:s, s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, "
        "s:s}}, s:[s,s,s]}",
        "type", "object", "properties", "path", "type", "string", "description",
        "the CSV file (in the workspace; first row: column names)", "kind", "type", "string",
        "enum", "line", "bar", "scatter", "area", "description", "chart kind", "x", "type",
        "string", "description", "the x column", "y", "anyOf", "type", "string", "type", "array",
        "items", "type", "string", "description", "the y column(s)", "group_by", "type", "string",
        "description", "one series per value of this column", "agg", "type", "string", "enum",
        "none", "sum", "mean", "count", "min", "max", "bucket", "type", "string", "enum", "none",
        "day", "week", "month", "quarter", "year", "output", "type", "string", "description",
        "the file to write (in the workspace; default <y>_by_<x>.svg): .svg, or .png for the "
        "chart rasterised",
        "title", "type", "string", "x_label", "type", "string", "y_label", "type", "string",
        "width", "type", "integer", "height", "type", "integer", "max_points", "type", "integer",
        "description", "most points drawn per series (default 1000; LTTB keeps the shape)",
        "required", "path", "x", "y");
    json_t *out = json_pack(
        "{s:s, s:{s:{s:s}, s:{s:s, s:[s,s]}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}, s:[s,s]}", "type",
        "object", "properties", "output", "type", "string", "format", "type", "string", "enum",
        "svg", "png", "kind", "type", "string", "series", "type", "array", "bytes", "type",
        "integer", "files", "type", "array", "required", "output", "series");
    return json_pack(
        "[o]",
        aos__tools_def("plot",
                       "Plot a CSV file of the workspace as a line, bar, scatter or area chart "
                       "(x, one or more y, optional group_by and aggregation such as sum per "
                       "month) into a standalone SVG with axes, ticks, labels, title and legend. "
                       "Large series are downsampled (LTTB) so the SVG stays small; an output "
                       "ending in .png is the chart as a PNG image.",
                       in, out, 0, 0, 1));
}

static int viz_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                    aos_builtin_done_fn done, void *ctx)
{
    if (strcmp(tool, "plot"))
        return AOS_ENOTFOUND;
    return aos__tools_submit(data, caller, "viz", tool, args, TOOLS_WRITE, run_plot, done, ctx);
}

void aos__tools_viz_init(aos_tools_t *t)
{
    t->viz = (aos_builtin_t){"viz", "the skill viz.plot: charts of CSV files as SVG", viz_tools,
                             viz_call, t};
}
