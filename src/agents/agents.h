/* agents.h - agents (issue 15, first slice): their definitions, versions
 * and templates, over the store:
 *
 *   GET  /agents, POST /agents, GET /agents/templates
 *   GET/PATCH/DELETE /agents/:id, GET /agents/:id/versions (with diffs),
 *   POST /agents/:id/clone, POST /agents/:id/release ({version}: make it
 *   live; an older one rolls back), POST /agents/:id/scale ({replicas})
 *
 * An agent is {name, type (local | remote), replicas, config: {prompt,
 * sop, tools (the "<server>__<tool>" names or patterns it may call), env
 * (sealed; names only in answers), concurrency, url (remote)}}. Every
 * change of its config is a new version; "version" is the live one (the
 * first until a release), "latest_version" the newest. release and scale
 * change the row only: no process runs yet. Not built: start/stop,
 * supervised replicas, logs, register-mcp, the runtime (docs/NEXT.md).
 * Loop thread only. */
#ifndef AOS_AGENTS_H
#define AOS_AGENTS_H

#include "err/err.h"
#include "http/http.h"
#include "secret/secret.h"
#include "store/store.h"

typedef struct aos_agents_s aos_agents_t;

int aos_agents_new(aos_agents_t **out, aos_store_t *store, aos_secret_box_t *secrets,
                   aos_err_t *err);
int aos_agents_add_routes(aos_agents_t *a, aos_http_t *http);
void aos_agents_free(aos_agents_t *a);

#endif
