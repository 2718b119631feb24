/* internal.h - shared by agents.c (definitions, routes) and live.c (the
 * running agents). Loop thread only. */
#ifndef AOS_AGENTS_INTERNAL_H
#define AOS_AGENTS_INTERNAL_H

#include "agents/agents.h"
#include "map/map.h"
#include "registry/registry.h"

#define AG_REPLICAS_MAX 16
#define AG_ERRORS_MAX   10

typedef struct ag_live ag_live_t;

struct aos_agents_s {
    aos_agents_cfg_t cfg;
    aos_map_t live; /* agent id -> ag_live_t: started or registered */
    char exe[4096]; /* aosd's own path: the runtime is `aosd agent` */
    int shutting_down;
    unsigned closing; /* replicas whose upstream is still closing */
    void (*on_down)(void *data);
    void *down_data;
    /* metrics (live.c: ag_metrics_init); NULL without cfg.metrics */
    aos_metric_t *m_desired, *m_running, *m_health, *m_inflight, *m_restarts, *m_calls;
};

/* live.c */
ag_live_t *ag_live_find(aos_agents_t *a, const char *id_or_name);
/* The live part of GET /agents/:id (status, load, replicas, errors) set on
 * view; nothing when the agent is neither started nor registered. */
void ag_live_view(aos_agents_t *a, const char *id, json_t *view);
/* After the start job stored it (row: the agent's row, config: the live
 * version's config, run_id: its agent_runs row): mints the token, spawns
 * the replicas. */
void ag_live_start(aos_agents_t *a, const json_t *row, const json_t *config, int64_t version,
                   const char *run_id, const char *actor);
/* After the stop job: stops every replica (SIGTERM, SIGKILL after the
 * grace period), revokes the token. */
void ag_live_stop(aos_agents_t *a, const char *id, const char *actor);
/* The run id of a started agent ("" if none), for the stop job. */
const char *ag_live_run_id(aos_agents_t *a, const char *id);
/* The run's statistics as JSON text (malloc'd), or NULL. */
char *ag_live_stats(aos_agents_t *a, const char *id);
void ag_live_scale(aos_agents_t *a, const char *id, int64_t replicas);
/* Rolls the replicas to version (its config), one at a time. */
void ag_live_release(aos_agents_t *a, const char *id, int64_t version, const json_t *config,
                     const char *actor);
/* Adds the agent to the gateway (name). 0, AOS_ECONFLICT (another server
 * has the name), AOS_ENOMEM. */
int ag_live_register(aos_agents_t *a, const json_t *row, aos_err_t *err);
/* Forgets an agent being deleted (it is stopped). */
void ag_live_forget(aos_agents_t *a, const char *id);
/* The agent leaves the gateway (nothing else changes); not registered:
 * nothing. */
void ag_live_unregister(aos_agents_t *a, const char *id);
int ag_live_running(aos_agents_t *a, const char *id);

/* Whether every runtime secret config's env (and a remote agent's headers
 * and auth_token) names opens (its variables resolved); the values are
 * wiped at once. 0, or the error naming the
 * entry and the secret. */
int ag_env_check(aos_agents_t *a, const json_t *config, aos_err_t *err);

/* Registers the aos_agent_* metrics and their collect function. */
void ag_metrics_init(aos_agents_t *a);

/* Frees every live agent (aos_agents_free). */
void aos__agents_live_release(aos_agents_t *a);

/* The public form of a config (env names only). */
json_t *ag_config_public(const json_t *config);

#endif
