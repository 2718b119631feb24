/* agents.h - agents (issue 15): their definitions, versions and
 * templates over the store (agents.c), and the running ones (live.c):
 *
 *   GET  /agents, POST /agents, GET /agents/templates
 *   GET/PATCH/DELETE /agents/:id, GET /agents/:id/versions (with diffs),
 *   POST /agents/:id/clone
 *   POST /agents/:id/start, /stop, /scale {replicas}, /release {version}
 *   POST /agents/:id/register-mcp, GET /agents/:id/logs?tail=N (SSE),
 *   GET /agents/:id/runs
 *
 * An agent is {name, type (local | remote), replicas, config: {prompt,
 * sop, tools (the "<server>__<tool>" names or patterns it may call), env
 * (sealed; names only in answers), concurrency, url and health_interval_ms
 * (remote)}}. Every
 * change of its config is a new version; "version" is the live one (the
 * first until a release), "latest_version" the newest.
 *
 * A started local agent is `replicas` processes of the runtime shipped
 * with aosd (`aosd agent`, runtime.c), each an MCP server on stdio that
 * aosd reaches through an aos_upstream_t (src/upstream on src/proc: its own
 * process group, stderr to the log, restart with back-off, SIGTERM then
 * SIGKILL on stop). Each calls tools back through the gateway with a
 * token aosd mints at start whose grants are exactly config.tools, revoked
 * at stop. register-mcp makes it a server of the gateway: "<name>__run_task"
 * on /mcp, /agents/<name>/mcp, calls spread over the ready replicas by
 * least calls in flight. release replaces replicas one at a time (a new
 * one ready before an old one is drained and stopped). Status: starting,
 * running, degraded, crashed, stopped. docs/ARCHITECTURE.md, "Agents".
 *
 * A started remote agent is health-checked (initialize, then a ping every
 * config.health_interval_ms, default 5 s; GET shows health.state unknown,
 * healthy or unhealthy, and the status starting, running or crashed from
 * it); registered, it is a server of the gateway whose calls go to its
 * url while it is started and healthy and are refused otherwise.
 *
 * Loop thread only (aos_agent_runtime_main is a process of its own). */
#ifndef AOS_AGENTS_H
#define AOS_AGENTS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth/auth.h"
#include "err/err.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "httpc/httpc.h"
#include "logs/logs.h"
#include "metrics/metrics.h"
#include "secret/secret.h"
#include "settings/settings.h"
#include "store/store.h"

typedef struct aos_agents_s aos_agents_t;

typedef struct {
    uv_loop_t *loop; /* borrowed, as are the others */
    aos_store_t *store;
    aos_secret_box_t *secrets; /* seals and opens config.env */
    aos_auth_t *auth;          /* mints and revokes the agents' tokens; NULL: none can start */
    aos_gateway_t *gateway;    /* register-mcp; NULL: refused */
    aos_logs_t *logs;          /* the logs tail; NULL: refused */
    aos_http_t *http;          /* aosd's own port and scheme, for the runtime to call back */
    aos_httpc_t *httpc;        /* remote agents' health checks; NULL: they are unhealthy */
    aos_metrics_t *metrics;    /* aos_agent_* on /metrics; may be NULL */
    const char *listen;        /* --listen ("host:port"): the host it calls; NULL, 0.0.0.0
                                  or [::]: 127.0.0.1 */
    /* value events (anomaly.detected, recovery.start|done), stolen; may be NULL */
    void (*emit)(json_t *event, void *data);
    void *emit_data;
    /* opens the runtime secrets config.env names (for config.project_id);
     * NULL: an agent whose env names one does not start */
    aos_settings_env_open_fn env_open;
    void *env_data;
    /* each env value opened for a replica, for the redactor; may be NULL */
    void (*on_unseal)(const char *value, void *data);
    void *unseal_data;
} aos_agents_cfg_t;

int aos_agents_new(aos_agents_t **out, const aos_agents_cfg_t *cfg, aos_err_t *err);
int aos_agents_add_routes(aos_agents_t *a, aos_http_t *http);
/* At start-up, once the loop runs: closes the runs a previous aosd left
 * open (every agent is stopped then) and adds the registered agents to
 * the gateway. */
int aos_agents_load(aos_agents_t *a, aos_err_t *err);
/* The runtime secret name was set anew (deleted = 0) or deleted: each
 * running agent whose env (or, remote, headers or auth_token) names it
 * replaces its replicas one at a time like a release, so that they open
 * it again (no failed call; a replica that cannot open a deleted one does
 * not start, the old ones keep serving and its last errors say why); a
 * remote agent is checked and routed anew with it. Loop thread. */
void aos_agents_secret_changed(aos_agents_t *a, const char *name, int deleted);
/* Stops every replica; done runs once their processes are gone. */
void aos_agents_shutdown(aos_agents_t *a, void (*done)(void *data), void *data);
void aos_agents_free(aos_agents_t *a);

/* ---- supervision: pure decisions over a snapshot (supervise.c; any thread) ---- */

#define AOS_AGENTS_REPS_MAX          64    /* replicas of one agent at once, releases included */
#define AOS_AGENTS_ANOMALY_CRASHES   3     /* crashes ... */
#define AOS_AGENTS_ANOMALY_WINDOW_MS 60000 /* ... within this long: anomaly.detected */

typedef struct {
    int64_t version;
    unsigned in_flight; /* calls sent and not answered */
    int ready;          /* READY: takes calls */
    int starting;       /* STARTING: a call waits in its queue until it is ready */
    int draining;       /* takes no new call; stopped once its last is answered */
    int down;           /* went down by itself and is not back yet */
} aos_agent_rep_t;

/* starting | running | degraded | crashed | stopped: running once want
 * replicas are ready (and *ever_ready is set); none ready is crashed after
 * a crash or once it ran, else starting; fewer is degraded likewise. */
const char *aos_agents_status(const aos_agent_rep_t *reps, size_t n, int running, int want,
                              int *ever_ready);
/* The replica a call goes to: among the ready ones that are not draining
 * (else the starting ones), the fewest calls in flight, equals in turn
 * (turn: a counter the caller moves on). -1: none. */
long aos_agents_pick(const aos_agent_rep_t *reps, size_t n, unsigned turn);

typedef struct {
    int spawn;                         /* new replicas of the version to start */
    size_t drain[AOS_AGENTS_REPS_MAX]; /* indexes of replicas to drain */
    size_t ndrain;
} aos_agents_step_t;
/* The next step toward want replicas of version. Replicas of another
 * version (a release or a rollback) are replaced one at a time: one is
 * drained for each new one ready beyond want, and a new one starts only
 * once the new ones before it are ready. Without can_spawn (the version's
 * token is not there yet) nothing starts. */
void aos_agents_step(const aos_agent_rep_t *reps, size_t n, int64_t version, int want,
                     int can_spawn, aos_agents_step_t *out);

typedef struct {
    uint64_t at[AOS_AGENTS_ANOMALY_CRASHES]; /* the last crashes, a ring */
    unsigned n;
    uint64_t anomaly_ms; /* the last anomaly raised */
} aos_agents_crashes_t;
/* Notes a crash at now_ms: 1 when it makes AOS_AGENTS_ANOMALY_CRASHES within
 * AOS_AGENTS_ANOMALY_WINDOW_MS and none was raised in the last window. */
int aos_agents_crash(aos_agents_crashes_t *c, uint64_t now_ms);

/* The runtime: main() of `aosd agent` (argv[0] is "agent"). */
int aos_agent_runtime_main(int argc, char **argv);
/* The tools an agent's runtime serves (run_task), a new array. */
json_t *aos_agent_runtime_tools(const char *name, const char *prompt);

#endif
