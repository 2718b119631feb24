/* registry.h - what an MCP server entry of the registry is: validation of
 * the JSON a client sends, the stored form, the public form, and the import
 * of the {"mcpServers":{...}} files used by Claude Desktop and IDEs.
 *
 * Pure functions over jansson values; the gateway owns the live servers and
 * the store persists entries. Secret values (auth_token, env values, header
 * values) are sealed with the secret box before they are stored and never
 * appear in the public form. */
#ifndef AOS_REGISTRY_H
#define AOS_REGISTRY_H

#include <jansson.h>

#include "err/err.h"
#include "secret/secret.h"

#define AOS_REGISTRY_NAME_MAX           64
#define AOS_REGISTRY_DEFAULT_TIMEOUT_MS 30000

/* Per-server isolation settings ("limits" in an entry), each with its
 * bounds and default. XX(field, kind D=double U=unsigned, min, max, default, help) */
#define AOS_LIMITS_MAP(XX)                                                                         \
    XX(rate_per_s, D, 0, 1e6, 0, "calls per second (token bucket); 0 = unlimited")                 \
    XX(burst, D, 0, 1e6, 0, "calls banked beyond the rate; 0 = the rate")                          \
    XX(caller_rate_per_s, D, 0, 1e6, 0, "calls per second per caller token; 0 = unlimited")        \
    XX(caller_burst, D, 0, 1e6, 0, "per-caller burst; 0 = the per-caller rate")                    \
    XX(quota, U, 0, 1e12, 0, "calls per quota period; 0 = unlimited")                              \
    XX(quota_month, U, 0, 1, 0, "1: the quota period is a calendar month, 0: a day (UTC)")         \
    XX(max_concurrency, U, 1, 100000, 64, "calls in flight at once")                               \
    XX(queue, U, 0, 100000, 256, "calls waiting for a free slot; beyond: 503")                     \
    XX(max_client_upstreams, U, 0, 10000, 64,                                                      \
       "client sessions with an upstream of their own at once (a child each for stdio)")           \
    XX(retries, U, 0, 10, 2, "retries of calls that are safe to retry")                            \
    XX(retry_base_ms, U, 1, 60000, 100, "first retry delay (doubles, with jitter)")                \
    XX(retry_max_ms, U, 1, 600000, 2000, "longest retry delay")                                    \
    XX(breaker_failures, U, 1, 100000, 5, "consecutive failures that open the breaker")            \
    XX(breaker_error_rate, D, 0, 1, 0.5, "failure ratio in the window that opens it; 0 = off")     \
    XX(breaker_min_calls, U, 1, 100000, 20, "calls in the window before the ratio counts")         \
    XX(breaker_window_ms, U, 100, 3600000, 30000, "window of the failure ratio")                   \
    XX(breaker_cooldown_ms, U, 10, 3600000, 10000, "open time before a probe is let through")      \
    XX(health_interval_ms, U, 100, 3600000, 15000, "time between health pings")                    \
    XX(health_timeout_ms, U, 10, 600000, 5000, "a ping slower than this fails")

typedef struct {
#define XX_D(f)                     double f;
#define XX_U(f)                     double f;
#define XX(f, k, lo, hi, def, help) XX_##k(f)
    AOS_LIMITS_MAP(XX)
#undef XX
#undef XX_D
#undef XX_U
} aos_limits_t;

/* The effective limits of a stored entry: its "limits" over the defaults. */
void aos_registry_limits(const json_t *stored, aos_limits_t *out);

/* 1 if name is a valid server name: [A-Za-z0-9][A-Za-z0-9_.-]{0,63}, no "__". */
int aos_registry_name_ok(const char *name);

/* The names of aosd's built-in servers, present and planned: the one list.
 * No registry entry may take one (in any case), and only these names may
 * be given to a built-in. */
#define AOS_REGISTRY_RESERVED_NAMES                                                                \
    {                                                                                              \
        "aos", "logs", "git", "http", "files", "db", "csv", "viz", "memory", "shell", NULL         \
    }
/* 1 if name is reserved for a built-in server (compared ignoring case). */
int aos_registry_name_reserved(const char *name);

/* Validates a client's entry and returns the stored form (new reference):
 * {"name","transport","base_url","description","capabilities","config",
 *  "auth_token","timeout_ms","enabled"} with config holding command, args,
 * env, cwd (stdio) or url, headers (HTTP), and every secret value sealed.
 * prev (may be NULL): the stored entry being updated; a secret the client
 * leaves out is kept from it. */
json_t *aos_registry_normalize(const json_t *in, const json_t *prev, aos_secret_box_t *box,
                               aos_err_t *err);

/* The public form of a stored entry (new reference): secrets replaced by
 * "has_auth_token" and the names of env variables and headers. */
json_t *aos_registry_public(const json_t *stored);

/* Turns {"mcpServers":{"name":{...}}} into an array of client entries, ready
 * for aos_registry_normalize (new reference). */
json_t *aos_registry_import(const json_t *doc, aos_err_t *err);

#endif
