/* cron.c - cron expressions (see cron.h).
 *
 * Parsing turns each field into a bit set. The next time is found by
 * walking forward from the second after the start: a field that does not
 * match moves the time to the start of the next unit above it (a month
 * that does not match: the first day of the next month at 00:00:00; an
 * hour: the next hour at :00:00), so the walk takes at most a few
 * thousand steps for any expression, and stops after 5 years. Calendar
 * arithmetic is isotime's (H. Hinnant's days_from_civil / civil_from_days): no time
 * zone, no libc state. */
#include "cron/cron.h"
#include "isotime/isotime.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

enum { F_SEC, F_MIN, F_HOUR, F_DOM, F_MON, F_DOW, F_N };

static const struct {
    const char *name;
    int lo, hi;
} fields[F_N] = {
    {"second", 0, 59},       {"minute", 0, 59}, {"hour", 0, 23},
    {"day of month", 1, 31}, {"month", 1, 12},  {"day of week", 0, 7},
};

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};
static const char *const days[] = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

/* A value of field f at *p: digits, or a month's or day's name. -1 if none. */
static int value(int f, const char **p)
{
    const char *s = *p;
    if (*s >= '0' && *s <= '9') {
        int v = 0, n = 0;
        while (*s >= '0' && *s <= '9' && n < 3) {
            v = v * 10 + (*s++ - '0');
            n++;
        }
        if (*s >= '0' && *s <= '9')
            return -1;
        *p = s;
        return v;
    }
    const char *const *names = f == F_MON ? months : f == F_DOW ? days : NULL;
    int count = f == F_MON ? 12 : 7;
    for (int i = 0; names && i < count; i++) {
        if (!strncasecmp(s, names[i], 3)) {
            *p = s + 3;
            return f == F_MON ? i + 1 : i;
        }
    }
    return -1;
}

/* One field of len bytes at s into *bits. */
static int field(int f, const char *s, size_t len, uint64_t *bits, int *star, aos_err_t *err)
{
    char buf[AOS_CRON_MAX + 1];
    memcpy(buf, s, len);
    buf[len] = '\0';
    *bits = 0;
    *star = !strcmp(buf, "*");
    const char *p = buf;
    int lo = fields[f].lo, hi = fields[f].hi;
    for (;;) {
        int a, b, step = 1, single = 0;
        if (*p == '*') {
            a = lo;
            b = hi;
            p++;
        } else {
            if ((a = value(f, &p)) < 0)
                return aos_err_set(err, AOS_EINVAL, "%s: '%.40s' is not a value", fields[f].name,
                                   buf);
            b = a;
            single = *p != '-';
            if (*p == '-') {
                p++;
                if ((b = value(f, &p)) < 0)
                    return aos_err_set(err, AOS_EINVAL, "%s: a range needs an end ('%.40s')",
                                       fields[f].name, buf);
            }
        }
        if (*p == '/') {
            p++;
            const char *q = p;
            step = value(F_SEC, &p); /* digits only */
            if (step < 1 || p == q)
                return aos_err_set(err, AOS_EINVAL, "%s: a step is a number of 1 or more",
                                   fields[f].name);
            if (single)
                b = hi; /* "5/10": from 5 to the end */
        }
        if (a < lo || b > hi || a > b)
            return aos_err_set(err, AOS_EINVAL, "%s: %d-%d is outside %d-%d or backwards",
                               fields[f].name, a, b, lo, hi);
        for (int v = a; v <= b; v += step) {
            unsigned bit = f == F_DOW && v == 7 ? 0u : (unsigned)v; /* 0..59: lo >= 0 */
            if (bit < 64)
                *bits |= 1ull << bit;
        }
        if (*p == '\0')
            return 0;
        if (*p++ != ',' || *p == '\0')
            return aos_err_set(err, AOS_EINVAL, "%s: '%.40s' is not a list of values",
                               fields[f].name, buf);
    }
}

int aos_cron_parse(const char *text, aos_cron_t *out, aos_err_t *err)
{
    static const struct {
        const char *name, *is;
    } macros[] = {{"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
                  {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
                  {"@hourly", "0 * * * *"}};
    if (!text || strlen(text) > AOS_CRON_MAX)
        return aos_err_set(err, AOS_EINVAL, "a cron expression is 1 to %d bytes", AOS_CRON_MAX);
    for (size_t i = 0; text[0] == '@' && i < sizeof(macros) / sizeof(macros[0]); i++)
        if (!strcasecmp(text, macros[i].name))
            return aos_cron_parse(macros[i].is, out, err);
    if (text[0] == '@')
        return aos_err_set(err, AOS_EINVAL,
                           "'%.40s' is not one of @yearly, @monthly, @weekly, @daily, @hourly",
                           text);
    const char *start[F_N];
    size_t len[F_N];
    int n = 0;
    for (const char *p = text; *p;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p)
            break;
        if (n == F_N)
            return aos_err_set(err, AOS_EINVAL, "a cron expression has 5 or 6 fields");
        start[n] = p;
        while (*p && *p != ' ' && *p != '\t')
            p++;
        len[n] = (size_t)(p - start[n]);
        n++;
    }
    if (n != 5 && n != 6)
        return aos_err_set(err, AOS_EINVAL,
                           "a cron expression has 5 fields (minute hour day month weekday) or 6 "
                           "(a second first)");
    memset(out, 0, sizeof(*out));
    uint64_t bits[F_N];
    int star[F_N];
    int first = n == 6 ? F_SEC : F_MIN;
    bits[F_SEC] = 1; /* 5 fields: at second 0 */
    star[F_SEC] = 0;
    for (int i = 0; i < n; i++) {
        int rc = field(first + i, start[i], len[i], &bits[first + i], &star[first + i], err);
        if (rc)
            return rc;
    }
    out->second = bits[F_SEC];
    out->minute = bits[F_MIN];
    out->hour = (uint32_t)bits[F_HOUR];
    out->dom = (uint32_t)bits[F_DOM];
    out->month = (uint16_t)bits[F_MON];
    out->dow = (uint8_t)bits[F_DOW];
    out->dom_star = (uint8_t)star[F_DOM];
    out->dow_star = (uint8_t)star[F_DOW];
    return 0;
}

/* ---- the calendar: isotime.h's days_from_civil / civil_from_days ---------- */

static int day_ok(const aos_cron_t *c, int64_t day, int d)
{
    int dow = (int)(((day % 7) + 11) % 7); /* 1970-01-01 was a Thursday (4) */
    int in_dom = (c->dom >> d) & 1, in_dow = (c->dow >> dow) & 1;
    if (c->dom_star || c->dow_star)
        return in_dom && in_dow;
    return in_dom || in_dow;
}

int64_t aos_cron_next(const aos_cron_t *c, int64_t after_ms)
{
    int64_t t = (after_ms >= 0 ? after_ms / 1000 : (after_ms - 999) / 1000) + 1;
    int64_t end = t + 5 * 366 * 86400LL;
    while (t < end) {
        int64_t day = t >= 0 ? t / 86400 : (t - 86399) / 86400;
        int64_t sod = t - day * 86400;
        int64_t y;
        int m, d;
        aos_isotime_civil_from_days(day, &y, &m, &d);
        if (!((c->month >> m) & 1)) { /* the first day of the next month */
            t = aos_isotime_days_from_civil(m == 12 ? y + 1 : y, m == 12 ? 1 : m + 1, 1) * 86400;
            continue;
        }
        if (!day_ok(c, day, d)) {
            t = (day + 1) * 86400;
            continue;
        }
        int h = (int)(sod / 3600), mi = (int)(sod / 60 % 60), s = (int)(sod % 60);
        if (!((c->hour >> h) & 1)) {
            t = day * 86400 + (h + 1) * 3600LL;
            continue;
        }
        if (!((c->minute >> mi) & 1)) {
            t = day * 86400 + h * 3600LL + (mi + 1) * 60LL;
            continue;
        }
        if (!((c->second >> s) & 1)) {
            t++;
            continue;
        }
        return t * 1000;
    }
    return -1;
}
