/* guard.c - rate limits, quotas, circuit breakers, back-off and error
 * fingerprints; see guard.h. */
#include "guard/guard.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

/* ---- token bucket ------------------------------------------------------- */

void aos_bucket_init(aos_bucket_t *b, double rate, double burst, uint64_t now_ms)
{
    b->rate = rate > 0 ? rate : 0;
    b->burst = burst >= 1 ? burst : (rate > 1 ? rate : 1);
    b->tokens = b->burst;
    b->last_ms = now_ms;
}

uint64_t aos_bucket_take(aos_bucket_t *b, uint64_t now_ms)
{
    if (b->rate <= 0)
        return 0;
    if (now_ms > b->last_ms) {
        b->tokens += (double)(now_ms - b->last_ms) * b->rate / 1000.0;
        if (b->tokens > b->burst)
            b->tokens = b->burst;
        b->last_ms = now_ms;
    }
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    double wait = (1.0 - b->tokens) * 1000.0 / b->rate;
    return (uint64_t)wait + 1;
}

/* ---- quota ------------------------------------------------------------------ */

void aos_quota_init(aos_quota_t *q, uint64_t limit, aos_quota_period_t period)
{
    q->limit = limit;
    q->period = period;
    q->used = 0;
    q->period_key = 0;
    q->stored = 0;
}

long aos_quota_key(const aos_quota_t *q, time_t now)
{
    struct tm tm;
    gmtime_r(&now, &tm);
    return q->period == AOS_QUOTA_DAY
               ? (long)(tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday
               : (long)(tm.tm_year + 1900) * 100 + (tm.tm_mon + 1);
}

uint64_t aos_quota_take(aos_quota_t *q, time_t now)
{
    if (!q->limit)
        return 0;
    long key = aos_quota_key(q, now);
    if (key != q->period_key) {
        q->period_key = key;
        q->used = 0;
        q->stored = 0;
    }
    if (q->used < q->limit) {
        q->used++;
        return 0;
    }
    /* seconds to the start of the next day or month (UTC) */
    struct tm tm;
    gmtime_r(&now, &tm);
    struct tm next = tm;
    next.tm_hour = next.tm_min = next.tm_sec = 0;
    if (q->period == AOS_QUOTA_DAY) {
        next.tm_mday += 1;
    } else {
        next.tm_mday = 1;
        next.tm_mon += 1;
    }
    time_t t = timegm(&next);
    return t > now ? (uint64_t)(t - now) : 1;
}

uint64_t aos_quota_used(const aos_quota_t *q, time_t now)
{
    return q->period_key == aos_quota_key(q, now) ? q->used : 0;
}

void aos_quota_restore(aos_quota_t *q, long key, uint64_t count, time_t now)
{
    q->period_key = aos_quota_key(q, now);
    q->used = q->stored = key == q->period_key ? count : 0;
}

uint64_t aos_quota_reserve(const aos_quota_t *q)
{
    if (!q->limit || q->stored >= q->used)
        return 0;
    uint64_t block = q->limit / 100;
    block = block < 1 ? 1 : block > 1000 ? 1000 : block;
    uint64_t want = q->used + block - 1;
    return want < q->limit ? want : (q->used > q->limit ? q->used : q->limit);
}

void aos_quota_stored(aos_quota_t *q, long key, uint64_t count)
{
    if (key == q->period_key)
        q->stored = count;
}

/* ---- circuit breaker ---------------------------------------------------------- */

void aos_breaker_init(aos_breaker_t *b, unsigned failures, double error_rate, unsigned min_calls,
                      uint64_t window_ms, uint64_t cooldown_ms)
{
    memset(b, 0, sizeof(*b));
    b->failures = failures ? failures : 5;
    b->error_rate = error_rate;
    b->min_calls = min_calls ? min_calls : 20;
    b->window_ms = window_ms ? window_ms : 30000;
    b->cooldown_ms = cooldown_ms ? cooldown_ms : 10000;
    b->probes = 1;
    b->state = AOS_BREAKER_CLOSED;
}

static void open_breaker(aos_breaker_t *b, uint64_t now)
{
    b->state = AOS_BREAKER_OPEN;
    b->opened_ms = now;
    b->probes_out = 0;
    b->transitions++;
}

aos_breaker_state_t aos_breaker_state(aos_breaker_t *b, uint64_t now)
{
    if (b->state == AOS_BREAKER_OPEN && now - b->opened_ms >= b->cooldown_ms) {
        b->state = AOS_BREAKER_HALF_OPEN;
        b->probes_out = 0;
    }
    return b->state;
}

int aos_breaker_allow(aos_breaker_t *b, uint64_t now)
{
    switch (aos_breaker_state(b, now)) {
    case AOS_BREAKER_CLOSED:
        return 1;
    case AOS_BREAKER_OPEN:
        return 0;
    case AOS_BREAKER_HALF_OPEN:
        if (b->probes_out >= b->probes)
            return 0;
        b->probes_out++;
        return 1;
    }
    return 0;
}

void aos_breaker_release(aos_breaker_t *b)
{
    if (b->state == AOS_BREAKER_HALF_OPEN && b->probes_out)
        b->probes_out--;
}

/* The slot of the window that now falls in, emptied if it is stale. */
static void count(aos_breaker_t *b, uint64_t now, int ok)
{
    uint64_t width = b->window_ms / AOS_BREAKER_SLOTS;
    if (!width)
        width = 1;
    uint64_t start = now - now % width;
    unsigned i = (unsigned)((now / width) % AOS_BREAKER_SLOTS);
    if (b->slot[i].start_ms != start) {
        b->slot[i].start_ms = start;
        b->slot[i].ok = b->slot[i].failed = 0;
    }
    if (ok)
        b->slot[i].ok++;
    else
        b->slot[i].failed++;
}

static int rate_exceeded(const aos_breaker_t *b, uint64_t now)
{
    if (b->error_rate <= 0)
        return 0;
    unsigned ok = 0, failed = 0;
    for (unsigned i = 0; i < AOS_BREAKER_SLOTS; i++) {
        if (now - b->slot[i].start_ms < b->window_ms) {
            ok += b->slot[i].ok;
            failed += b->slot[i].failed;
        }
    }
    unsigned total = ok + failed;
    return total >= b->min_calls && (double)failed > b->error_rate * (double)total;
}

void aos_breaker_record(aos_breaker_t *b, uint64_t now, int ok)
{
    aos_breaker_state_t st = aos_breaker_state(b, now);
    count(b, now, ok);
    if (st == AOS_BREAKER_HALF_OPEN) {
        if (b->probes_out)
            b->probes_out--;
        if (ok) {
            b->state = AOS_BREAKER_CLOSED;
            b->consecutive = 0;
            /* a fresh start: old failures do not count against it */
            memset(b->slot, 0, sizeof(b->slot));
        } else {
            open_breaker(b, now);
        }
        return;
    }
    if (st == AOS_BREAKER_OPEN)
        return; /* a late answer of a call let through before it opened */
    if (ok) {
        b->consecutive = 0;
        return;
    }
    b->consecutive++;
    if (b->consecutive >= b->failures || rate_exceeded(b, now))
        open_breaker(b, now);
}

uint64_t aos_breaker_retry_after(const aos_breaker_t *b, uint64_t now)
{
    if (b->state != AOS_BREAKER_OPEN)
        return 0;
    uint64_t end = b->opened_ms + b->cooldown_ms;
    return end > now ? end - now : 0;
}

const char *aos_breaker_state_name(aos_breaker_state_t s)
{
    switch (s) {
    case AOS_BREAKER_CLOSED:
        return "closed";
    case AOS_BREAKER_OPEN:
        return "open";
    case AOS_BREAKER_HALF_OPEN:
        return "half-open";
    }
    return "unknown";
}

/* ---- retries ---------------------------------------------------------------- */

uint64_t aos_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd)
{
    uint64_t d = base_ms ? base_ms : 1;
    for (unsigned i = 1; i < attempt && d < max_ms && d <= UINT64_MAX / 2; i++)
        d *= 2;
    if (d > max_ms)
        d = max_ms;
    /* jitter: uniform in [d/2, d] keeps some spacing (in double: no overflow) */
    return d / 2 + (uint64_t)((double)(d - d / 2) * ((double)rnd / (double)UINT32_MAX));
}

/* ---- fingerprints -------------------------------------------------------------- */

static int is_hex_run(const char *s, size_t n)
{
    size_t digits = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isxdigit((unsigned char)s[i]))
            return 0;
        digits += isdigit((unsigned char)s[i]) != 0;
    }
    return n >= 8 && digits > 0;
}

void aos_fingerprint_normalize(const char *m, char *out, size_t n)
{
    size_t o = 0;
    const char *start = m;
    if (!n)
        return;
#define PUT(str)                                                                                   \
    do {                                                                                           \
        for (const char *q_ = (str); *q_ && o + 1 < n; q_++)                                       \
            out[o++] = *q_;                                                                        \
    } while (0)
    while (m && *m && o + 1 < n) {
        unsigned char c = (unsigned char)*m;
        /* a path: / followed by a word, up to whitespace or a quote */
        if (c == '/' && m[1] && !isspace((unsigned char)m[1])) {
            while (*m && !isspace((unsigned char)*m) && *m != '\'' && *m != '"' && *m != ',')
                m++;
            PUT("<path>");
            continue;
        }
        /* a quote opens a string only where a word does not go on ("can't") */
        if ((c == '\'' || c == '"') && (m == start || !isalnum((unsigned char)m[-1]))) {
            const char *e = strchr(m + 1, (char)c);
            if (e) {
                m = e + 1;
                PUT("<str>");
                continue;
            }
        }
        if (isalnum(c)) {
            /* a token: letters, digits, '-' and '_' */
            size_t len = 0;
            while (m[len] && (isalnum((unsigned char)m[len]) || m[len] == '-' || m[len] == '_'))
                len++;
            int has_digit = 0, all_digits = 1;
            for (size_t i = 0; i < len; i++) {
                if (isdigit((unsigned char)m[i]))
                    has_digit = 1;
                else if (m[i] != '.')
                    all_digits = 0;
            }
            if (all_digits) {
                PUT("<n>");
            } else if (len == 36 && m[8] == '-' && m[13] == '-') {
                PUT("<uuid>");
            } else if (is_hex_run(m, len)) {
                PUT("<id>");
            } else if (isdigit(c)) {
                /* a number with a unit: "30s", "50ms" */
                size_t d = 0;
                while (d < len && isdigit((unsigned char)m[d]))
                    d++;
                int more_digits = 0;
                for (size_t i = d; i < len; i++)
                    more_digits |= isdigit((unsigned char)m[i]) != 0;
                if (more_digits) {
                    PUT("<id>"); /* "0x1f", "3a7f9" */
                } else {
                    PUT("<n>");
                    for (size_t i = d; i < len && o + 1 < n; i++)
                        out[o++] = (char)tolower((unsigned char)m[i]);
                }
            } else if (has_digit && len > 3) {
                /* words with digits in them: "pid1234", "req-77" */
                PUT("<id>");
            } else {
                for (size_t i = 0; i < len && o + 1 < n; i++)
                    out[o++] = (char)tolower((unsigned char)m[i]);
            }
            m += len;
            continue;
        }
        out[o++] = (char)c;
        m++;
    }
#undef PUT
    out[o] = '\0';
}

void aos_fingerprint(const char *server, const char *tool, const char *err_class, const char *msg,
                     char out[17])
{
    char norm[1024];
    aos_fingerprint_normalize(msg ? msg : "", norm, sizeof(norm));
    crypto_generichash_state st;
    unsigned char h[8];
    crypto_generichash_init(&st, NULL, 0, sizeof(h));
    const char *parts[] = {server ? server : "", tool ? tool : "", err_class ? err_class : "",
                           norm};
    for (size_t i = 0; i < 4; i++)
        crypto_generichash_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, 17, h, sizeof(h));
}
