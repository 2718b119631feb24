/* bench_rows.h - the log entries both halves of the log benchmark write:
 * logs_load sends them to aosd as JSON, logs_limit inserts them into SQLite
 * directly. Entry i is always the same, so the two write the same rows.
 *
 * Shape, chosen to look like service logs: a message of 8 to 14 words with
 * a request number and a duration; 20 topics, 8 sources, levels mostly
 * info; a trace of 20 consecutive entries (so 1,000,000 rows hold 50,000
 * traces); a small attributes object. Two words have a known frequency, for
 * the full-text queries: "timeout" in 1 entry of 1000, "connection" in 1 of
 * 20. Header-only: each C file of bench/logs is its own program. */
#ifndef AOS_BENCH_ROWS_H
#define AOS_BENCH_ROWS_H

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BENCH_TRACE_LEN 20 /* entries per trace */

typedef struct {
    char ts[32];
    int level; /* 0..5 */
    char message[200];
    char topic[32];
    char attributes[96]; /* compact JSON object */
    char trace_id[40];
    char span_id[24];
    char source[24];
} bench_row_t;

static const char *const bench_levels[] = {"trace", "debug", "info", "warn", "error", "fatal"};

static uint64_t bench_mix(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb3fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}

/* The trace id of entry i's trace: 32 hex digits. */
static void bench_trace_id(uint64_t trace, char out[40])
{
    snprintf(out, 40, "%016llx%016llx", (unsigned long long)bench_mix(trace + 1),
             (unsigned long long)bench_mix(trace + 0x9e3779b97f4a7c15ULL));
}

static void bench_row(uint64_t i, bench_row_t *r)
{
    static const char *const verbs[] = {"handled", "accepted", "forwarded", "rejected",
                                        "queued",  "retried",  "completed", "started"};
    static const char *const nouns[] = {"request", "job", "message", "call", "task", "upload"};
    static const char *const words[] = {"user",   "cache",  "disk",    "queue",  "agent",
                                        "tool",   "model",  "planner", "critic", "store",
                                        "worker", "tenant", "budget",  "policy", "route"};
    static const char *const topics[] = {
        "agent.run",  "agent.plan",  "agent.tool", "gateway.call", "gateway.session",
        "store.job",  "http.access", "bus.event",  "sandbox.run",  "memory.search",
        "auth.check", "llm.call",    "llm.stream", "orchestrator", "critic.review",
        "reviser",    "scheduler",   "telemetry",  "registry",     "secrets"};
    static const char *const sources[] = {"api",     "agent-1", "agent-2", "agent-3",
                                          "planner", "sandbox", "gateway", "worker"};
    uint64_t h = bench_mix(i);
    uint64_t secs = 1735689600 + i / 50; /* 2025-01-01, 50 entries a second */
    unsigned day = (unsigned)(secs / 86400 - 20089), rem = (unsigned)(secs % 86400);
    snprintf(r->ts, sizeof(r->ts), "2025-%02u-%02uT%02u:%02u:%02u.%03uZ", 1 + day / 28 % 12,
             1 + day % 28, rem / 3600, rem / 60 % 60, rem % 60, (unsigned)(i % 1000));
    unsigned lv = (unsigned)(h % 100);
    r->level = lv < 3 ? 0 : lv < 13 ? 1 : lv < 88 ? 2 : lv < 96 ? 3 : lv < 99 ? 4 : 5;
    int n =
        snprintf(r->message, sizeof(r->message), "%s %s %llu for %s %s in %u ms", verbs[h >> 8 & 7],
                 nouns[(h >> 11) % 6], (unsigned long long)(i * 7919 % 1000003),
                 words[(h >> 14) % 15], words[(h >> 18) % 15], (unsigned)(h >> 22) % 2000);
    int extra = (int)(h >> 33) % 6;
    for (int k = 0; k < extra && n < 150; k++)
        n += snprintf(r->message + n, sizeof(r->message) - (size_t)n, " %s",
                      words[(h >> (36 + 4 * k)) % 15]);
    if (h % 1000 == 7)
        snprintf(r->message + n, sizeof(r->message) - (size_t)n, " after timeout");
    else if (h % 20 == 3)
        snprintf(r->message + n, sizeof(r->message) - (size_t)n, " on connection %u",
                 (unsigned)(h >> 40) % 64);
    snprintf(r->topic, sizeof(r->topic), "%s", topics[(h >> 44) % 20]);
    snprintf(r->source, sizeof(r->source), "%s", sources[(h >> 49) % 8]);
    snprintf(r->attributes, sizeof(r->attributes), "{\"user\":\"u%u\",\"latency_ms\":%u}",
             (unsigned)(h >> 52) % 5000, (unsigned)(h >> 22) % 2000);
    bench_trace_id(i / BENCH_TRACE_LEN, r->trace_id);
    snprintf(r->span_id, sizeof(r->span_id), "%016llx", (unsigned long long)bench_mix(i ^ 0xabc));
}

#endif
