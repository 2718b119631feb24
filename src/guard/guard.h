/* guard.h - the policies that keep one bad upstream from hurting the rest:
 * token-bucket rate limits, call quotas per day or month, circuit breakers,
 * retry back-off, and error fingerprints.
 *
 * Pure state machines over times the caller passes in (milliseconds of a
 * monotonic clock, or wall-clock seconds for quotas), so that they can be
 * tested with a fake clock. No allocation; embed them in the owner's struct.
 * Not thread-safe: each belongs to one thread. */
#ifndef AOS_GUARD_H
#define AOS_GUARD_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* ---- token bucket ---------------------------------------------------------
 * rate tokens per second, at most burst banked. rate 0 = unlimited. */
typedef struct {
    double rate;
    double burst;
    double tokens;
    uint64_t last_ms;
} aos_bucket_t;

void aos_bucket_init(aos_bucket_t *b, double rate, double burst, uint64_t now_ms);
/* Takes one token: 0 if taken, else how many ms until one is there. */
uint64_t aos_bucket_take(aos_bucket_t *b, uint64_t now_ms);

/* ---- quota ----------------------------------------------------------------
 * At most limit calls per UTC day or month. limit 0 = unlimited.
 *
 * The count outlives a restart when its owner keeps it in a store: it
 * restores the stored count at start (aos_quota_restore), and after each
 * take asks aos_quota_reserve whether the store must first hold a larger
 * count before the calls counted so far may go. Reservations run ahead by a
 * block of calls (1 % of the limit, 1 to 1,000), so the store is written
 * once per block; the owner writes the exact count at a clean stop. After a
 * crash the restored count is thus never below the calls that went, and at
 * most a block - 1 above. */
typedef enum { AOS_QUOTA_DAY = 0, AOS_QUOTA_MONTH } aos_quota_period_t;

typedef struct {
    uint64_t limit;
    aos_quota_period_t period;
    uint64_t used;
    long period_key; /* yyyymmdd or yyyymm of the counted period */
    uint64_t stored; /* the count the owner's store holds for period_key */
} aos_quota_t;

void aos_quota_init(aos_quota_t *q, uint64_t limit, aos_quota_period_t period);
/* The key of the period now is in: yyyymmdd (day) or yyyymm (month), UTC. */
long aos_quota_key(const aos_quota_t *q, time_t now);
/* Counts one call: 0 if allowed, else seconds until the period resets. */
uint64_t aos_quota_take(aos_quota_t *q, time_t now);
/* Calls counted in the period now is in (0 once the counted one is over). */
uint64_t aos_quota_used(const aos_quota_t *q, time_t now);
/* Sets the count read back from a store: count calls in period key. A key
 * that is not the period now (an earlier day or month) leaves the quota
 * empty for the period now. */
void aos_quota_restore(aos_quota_t *q, long key, uint64_t count, time_t now);
/* After a take: the count the store must hold before the calls counted so
 * far may go (used plus the block ahead, at most limit), or 0 when it holds
 * enough already. */
uint64_t aos_quota_reserve(const aos_quota_t *q);
/* The store now holds count for period key (a write of the owner's ended);
 * ignored when key is not the counted period. */
void aos_quota_stored(aos_quota_t *q, long key, uint64_t count);

/* ---- circuit breaker ------------------------------------------------------
 * closed: calls pass; it opens after `failures` consecutive failures, or when
 * at least `min_calls` calls in the last window_ms failed at more than
 * error_rate. open: calls fail fast for cooldown_ms, then half-open: up to
 * `probes` calls pass; one success closes it, one failure opens it again. */
typedef enum {
    AOS_BREAKER_CLOSED = 0,
    AOS_BREAKER_OPEN,
    AOS_BREAKER_HALF_OPEN
} aos_breaker_state_t;

#define AOS_BREAKER_SLOTS 10

typedef struct {
    /* settings */
    unsigned failures;
    double error_rate;
    unsigned min_calls;
    uint64_t window_ms;
    uint64_t cooldown_ms;
    unsigned probes;
    /* state */
    aos_breaker_state_t state;
    unsigned consecutive;
    uint64_t opened_ms;
    unsigned probes_out;
    struct {
        uint64_t start_ms;
        unsigned ok, failed;
    } slot[AOS_BREAKER_SLOTS]; /* the window in AOS_BREAKER_SLOTS slices */
    unsigned transitions;      /* times it opened, for metrics */
} aos_breaker_t;

void aos_breaker_init(aos_breaker_t *b, unsigned failures, double error_rate, unsigned min_calls,
                      uint64_t window_ms, uint64_t cooldown_ms);
/* 1 if a call may go (a half-open probe is counted), 0 to fail fast. */
int aos_breaker_allow(aos_breaker_t *b, uint64_t now_ms);
/* Gives back a half-open probe slot of an allowed call that ended without
 * an outcome (refused later, or cancelled). */
void aos_breaker_release(aos_breaker_t *b);
/* Records the outcome of an allowed call. */
void aos_breaker_record(aos_breaker_t *b, uint64_t now_ms, int ok);
/* The state now (open turns half-open once the cool-down passed). */
aos_breaker_state_t aos_breaker_state(aos_breaker_t *b, uint64_t now_ms);
/* ms until an open breaker lets a probe through (0 when not open). */
uint64_t aos_breaker_retry_after(const aos_breaker_t *b, uint64_t now_ms);
const char *aos_breaker_state_name(aos_breaker_state_t s);

/* ---- retries ----------------------------------------------------------------
 * Delay before retry number attempt (1, 2, ...): exponential from base_ms,
 * capped at max_ms, with full jitter from rnd (a uniform 32-bit number). */
uint64_t aos_backoff_ms(unsigned attempt, uint64_t base_ms, uint64_t max_ms, uint32_t rnd);

/* ---- error fingerprints -------------------------------------------------------
 * A stable short hash (16 hex chars) of (server, tool, error class, message)
 * where the message has numbers, hex ids, UUIDs, quoted strings and paths
 * replaced, so that the same failure with different details groups together.
 * aos_fingerprint_normalize exposes the normalized message (for tests). */
void aos_fingerprint_normalize(const char *msg, char *out, size_t n);
void aos_fingerprint(const char *server, const char *tool, const char *err_class, const char *msg,
                     char out[17]);

#endif
