/* live.c - running agents (agents.h): the replicas of a started local
 * agent, its token, its gateway entry, its status and events.
 *
 * An agent started or registered has an ag_live_t in a->live. Each replica
 * is an ag_rep_t around an aos_upstream_t of transport stdio running
 * `aosd agent` (the upstream module runs it on src/proc, does the MCP
 * handshake, matches answers and restarts a dead child with back-off).
 * Its on_state tells a crash (READY or STARTING -> BACKOFF while nobody
 * stops it) from a recovery (READY again): recovery.start and
 * recovery.done events, the crash in the agent's last errors, and after
 * AOS_AGENTS_ANOMALY_CRASHES crashes within AOS_AGENTS_ANOMALY_WINDOW_MS
 * an anomaly.detected event.
 *
 * reconcile() makes the replicas match what is wanted: `want` replicas of
 * the live version. Replicas of another version (a release or rollback in
 * progress) are replaced one at a time: a new one is spawned, and only
 * once it is READY is one old one drained - it takes no new calls, and is
 * stopped when its last call has been answered - so there is always a
 * ready replica and no call is cut (the decisions are supervise.c's).
 * Each version gets a token of its own (its tool mapping may differ); an
 * earlier one is revoked once no replica holds it.
 *
 * A call (the gateway's in-process server interface, builtin.h) goes to
 * the READY, non-draining replica with the fewest calls in flight (ties in
 * turn); a call the upstream could not send (its replica went down before
 * sending it) is tried on another replica, at most AG_CALL_TRIES times.
 *
 * A remote agent has no replicas: aosd checks its url (an MCP session of
 * its own - initialize, then a ping every health_interval_ms; the upstream
 * reconnects with back-off while it fails) and keeps its health (unknown,
 * healthy, unhealthy; the transitions are anomaly.detected and
 * recovery.start, then recovery.done). Registered, it is a server of the
 * gateway (aos_gateway_add_remote_agent: an upstream like a registry
 * entry's, with its limits, breaker and metrics), connected while started;
 * while it is stopped or unhealthy the gateway refuses its calls with
 * that reason (aos_gateway_agent_hold). */
#include "agents/internal.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log/log.h"
#include "registry/registry.h"
#include "upstream/upstream.h"

#define AG_CALL_TRIES      3
#define AG_RETIRED         4 /* tokens of earlier versions still in use */
#define AG_CALL_TIMEOUT_MS 300000
#define AG_HEALTH_MS       5000 /* a remote agent's pings, unless health_interval_ms */

typedef struct ag_rep ag_rep_t;

struct ag_rep {
    ag_live_t *ag; /* NULL once the agent is gone (a closing replica) */
    aos_agents_t *a;
    aos_upstream_t *up; /* NULL once closed */
    int index;
    int64_t version;
    unsigned inflight;
    int ready, draining, closing;
    int down;          /* went down by itself: recovery pending */
    uint64_t down_ms;  /* when */
    uint64_t ready_ms; /* when it was last READY */
    unsigned restarts;
    unsigned gen;      /* the agent's secrets generation it was started with */
    char token_id[40]; /* the token it was started with */
    ag_rep_t *next;
};

struct ag_live {
    aos_agents_t *a;
    char id[40], name[AOS_REGISTRY_NAME_MAX + 1];
    char run_id[40];
    int running;  /* started, not stopped */
    int starting; /* waiting for its token */
    int64_t version;
    json_t *config; /* the live version's (env sealed) */
    int want;
    ag_rep_t *reps;
    int next_index;
    char token_id[40], *token; /* of version token_version */
    int64_t token_version;
    /* tokens replaced by a newer one, revoked once no replica has them */
    char retired[AG_RETIRED][40];
    unsigned mints; /* token mints in flight */
    int registered;
    aos_builtin_t bi;
    char status[16]; /* the last stored */
    int ever_ready;  /* had all its replicas ready once since the start */
    json_t *errors;  /* the last AG_ERRORS_MAX [{at, replica, message}] */
    aos_agents_crashes_t crashw;
    int no_token; /* the last mint failed */
    uint64_t calls, failures, crashes, restarts;
    unsigned turn;
    char actor[96];
    /* a remote agent: its health check (an MCP session of its own) */
    int remote;
    aos_upstream_t *hc;   /* NULL unless started */
    uv_timer_t *hc_timer; /* the pings; freed by its close callback */
    int hc_pending;       /* a ping in flight */
    uint64_t hc_sent_ms;
    const char *health;   /* "unknown" | "healthy" | "unhealthy" */
    char health_why[200]; /* why it is unhealthy */
    char health_since[32];
    uint64_t unhealthy_ms; /* when it became unhealthy */
    double latency_ms;     /* of the last good ping, -1: none */
    uint64_t checks, check_failures;
    unsigned gen; /* bumped when a runtime secret it names changes: older replicas roll */
};

typedef struct {
    ag_live_t *ag;
    ag_rep_t *rep;
    json_t *params;
    aos_builtin_done_fn done;
    void *ctx;
    aos_tracectx_t trace;
    int has_trace;
    unsigned tries;
} ag_call_t;

static uint64_t now_ms(void)
{
    return uv_hrtime() / 1000000;
}

static void emit(ag_live_t *ag, const char *type, const char *severity, json_t *payload)
{
    aos_agents_t *a = ag->a;
    json_object_set_new(payload, "agent", json_string(ag->name));
    json_object_set_new(payload, "agent_id", json_string(ag->id));
    json_t *ev = json_pack("{s:s, s:s, s:s, s:o}", "topic", "agents", "type", type, "severity",
                           severity, "payload", payload);
    if (a->cfg.emit && ev)
        a->cfg.emit(ev, a->cfg.emit_data);
    else
        json_decref(ev);
}

static void add_error(ag_live_t *ag, int replica, const char *msg)
{
    char at[32];
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_array_append_new(
        ag->errors, json_pack("{s:s, s:i, s:s}", "at", at, "replica", replica, "message", msg));
    while (json_array_size(ag->errors) > AG_ERRORS_MAX)
        json_array_remove(ag->errors, 0);
}

/* ---- status ------------------------------------------------------------- */

/* The replicas as supervise.c sees them; map[i] is the replica of v[i]. */
static size_t snapshot(const ag_live_t *ag, aos_agent_rep_t *v, ag_rep_t **map)
{
    size_t n = 0;
    for (ag_rep_t *r = ag->reps; r && n < AOS_AGENTS_REPS_MAX; r = r->next) {
        /* a replica started before a secret it opened changed counts as
         * another version: replaced one at a time, like a release */
        v[n] =
            (aos_agent_rep_t){.version = r->gen == ag->gen ? r->version : -1,
                              .in_flight = r->inflight,
                              .ready = r->ready,
                              .starting = !r->ready && aos_upstream_state(r->up) == AOS_UP_STARTING,
                              .draining = r->draining,
                              .down = r->down};
        map[n++] = r;
    }
    return n;
}

static const char *status_of(ag_live_t *ag)
{
    if (ag->remote) /* its health says: starting until known, crashed while unhealthy */
        return !ag->running                       ? "stopped"
               : !strcmp(ag->health, "healthy")   ? "running"
               : !strcmp(ag->health, "unhealthy") ? "crashed"
                                                  : "starting";
    if (ag->running && ag->no_token && !ag->reps)
        return "crashed"; /* it cannot run at all: its last errors say why */
    aos_agent_rep_t v[AOS_AGENTS_REPS_MAX];
    ag_rep_t *map[AOS_AGENTS_REPS_MAX];
    size_t n = snapshot(ag, v, map);
    return aos_agents_status(v, n, ag->running, ag->want, &ag->ever_ready);
}

typedef struct {
    aos_agents_t *a;
    char id[40], status[16];
} status_job_t;

static int status_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    status_job_t *j = arg;
    return aos_store_agent_set_status(st, j->id, j->status, err);
}

static void status_done(int status, const aos_err_t *err, void *arg)
{
    if (status && status != AOS_ENOTFOUND)
        aos_log_warn("agents", "agent status not stored: %s", aos_err_msg(err));
    free(arg);
}

/* The status becomes s: an agent.status value event when it changed (one
 * card per agent, "agent:<id>", each change a new version of it). */
static void status_set(ag_live_t *ag, const char *s)
{
    if (!strcmp(s, ag->status))
        return;
    char was[sizeof(ag->status)];
    snprintf(was, sizeof(was), "%s", ag->status);
    snprintf(ag->status, sizeof(ag->status), "%s", s);
    aos_agents_t *a = ag->a;
    size_t ready = 0;
    for (ag_rep_t *r = ag->reps; r; r = r->next)
        ready += r->ready && !r->down && !r->closing;
    json_t *payload =
        json_pack("{s:s, s:s, s:I, s:i, s:I}", "status", s, "previous", was, "version",
                  (json_int_t)ag->version, "replicas", ag->want, "ready", (json_int_t)ready);
    if (!payload)
        return;
    if (ag->remote)
        json_object_set_new(payload, "health", json_string(ag->health));
    json_object_set_new(payload, "agent", json_string(ag->name));
    json_object_set_new(payload, "agent_id", json_string(ag->id));
    const char *sev = !strcmp(s, "crashed") ? "error" : !strcmp(s, "degraded") ? "warning" : "info";
    char card[64];
    snprintf(card, sizeof(card), "agent:%s", ag->id);
    json_t *ev = json_pack("{s:s, s:s, s:s, s:s, s:o}", "topic", "agents", "type", "agent.status",
                           "severity", sev, "card_id", card, "payload", payload);
    if (a->cfg.emit && ev)
        a->cfg.emit(ev, a->cfg.emit_data);
    else
        json_decref(ev);
}

/* Stores the status when it changed (the supervisor's view; the routes
 * store starting and stopped with their audit rows themselves). */
static void status_update(ag_live_t *ag)
{
    const char *s = status_of(ag);
    if (!ag->running || !strcmp(s, ag->status))
        return;
    status_set(ag, s);
    status_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    snprintf(j->id, sizeof(j->id), "%s", ag->id);
    snprintf(j->status, sizeof(j->status), "%s", s);
    if (aos_store_submit(ag->a->cfg.store, status_run, status_done, j) < 0)
        free(j);
}

/* ---- replicas ----------------------------------------------------------- */

static void reconcile(ag_live_t *ag);
static void rep_close(ag_rep_t *r);
static void retire_check(ag_live_t *ag);
static void retire(ag_live_t *ag, char *id);
static void token_revoke(ag_live_t *ag, char *id, const char *actor);
static void on_revoked(int status, const aos_err_t *err, const char *id, const char *token,
                       void *data);

static void on_rep_state(aos_upstream_t *up, aos_upstream_state_t st, const char *why, void *data)
{
    ag_rep_t *r = data;
    ag_live_t *ag = r->ag;
    if (!ag || r->closing || st == AOS_UP_CLOSED)
        return;
    if (st == AOS_UP_READY) {
        r->ready = 1;
        r->ready_ms = now_ms();
        if (r->down) {
            r->down = 0;
            aos_log_info("agents", "agent '%s': replica %d recovered (pid %d)", ag->name, r->index,
                         aos_upstream_pid(up));
            emit(ag, "recovery.done", "notice",
                 json_pack("{s:i, s:i, s:I, s:I}", "replica", r->index, "pid", aos_upstream_pid(up),
                           "version", (json_int_t)r->version, "downtime_ms",
                           (json_int_t)(r->ready_ms - r->down_ms)));
        }
        reconcile(ag);
    } else if (st == AOS_UP_BACKOFF) {
        r->ready = 0;
        r->restarts++;
        ag->restarts++;
        ag->crashes++;
        if (ag->a->m_restarts)
            aos_metric_add(ag->a->m_restarts, 1, ag->name);
        char msg[256];
        snprintf(msg, sizeof(msg), "replica %d: %s", r->index, why ? why : "failed");
        add_error(ag, r->index, msg);
        aos_log_warn("agents", "agent '%s': %s; restarting with back-off", ag->name, msg);
        if (!r->down) {
            r->down = 1;
            r->down_ms = now_ms();
            emit(ag, "recovery.start", "warning",
                 json_pack("{s:i, s:I, s:s}", "replica", r->index, "version",
                           (json_int_t)r->version, "reason", why ? why : "failed"));
        }
        /* repeated crashes: an anomaly, once a window */
        if (aos_agents_crash(&ag->crashw, now_ms()))
            emit(ag, "anomaly.detected", "error",
                 json_pack("{s:s, s:i, s:i, s:s}", "kind", "agent.crash_loop", "crashes",
                           AOS_AGENTS_ANOMALY_CRASHES, "window_s",
                           AOS_AGENTS_ANOMALY_WINDOW_MS / 1000, "message", msg));
        /* a draining replica that died has nothing left to drain */
        if (r->draining) {
            rep_close(r);
            retire_check(ag);
        }
    }
    status_update(ag);
}

static void down_check(aos_agents_t *a);

static void on_rep_closed(aos_upstream_t *up, void *data)
{
    ag_rep_t *r = data;
    aos_agents_t *a = r->a;
    a->closing--;
    free(r);
    down_check(a);
}

/* Unlinks r and closes its upstream (SIGTERM, SIGKILL after 2 s); calls
 * still pending on it fail with AOS_ECANCELED first. */
static void rep_close(ag_rep_t *r)
{
    if (r->closing)
        return;
    r->closing = 1;
    ag_live_t *ag = r->ag;
    if (ag) {
        for (ag_rep_t **p = &ag->reps; *p; p = &(*p)->next)
            if (*p == r) {
                *p = r->next;
                break;
            }
    }
    r->a->closing++;
    aos_upstream_close(r->up, on_rep_closed, r);
}

static void env_add(json_t *env, const char *k, const char *v)
{
    char *kv = NULL;
    if (asprintf(&kv, "%s=%s", k, v) > 0)
        json_array_append_new(env, json_string(kv));
    if (kv) {
        sodium_memzero(kv, strlen(kv));
        free(kv);
    }
}

static int rep_spawn(ag_live_t *ag)
{
    aos_agents_t *a = ag->a;
    ag_rep_t *r = calloc(1, sizeof(*r));
    if (!r)
        return AOS_ENOMEM;
    r->ag = ag;
    r->a = a;
    r->index = ++ag->next_index;
    r->version = ag->version;
    r->gen = ag->gen;
    snprintf(r->token_id, sizeof(r->token_id), "%s", ag->token_id);
    /* its environment: where aosd is, its token, its config (env names
     * only; the values are opened into variables of their own) */
    json_t *env = json_array();
    char url[300], num[24], host[256] = "127.0.0.1";
    const char *colon = a->cfg.listen ? strrchr(a->cfg.listen, ':') : NULL;
    if (colon && colon > a->cfg.listen && (size_t)(colon - a->cfg.listen) < sizeof(host)) {
        snprintf(host, sizeof(host), "%.*s", (int)(colon - a->cfg.listen), a->cfg.listen);
        if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
            snprintf(host, sizeof(host), "127.0.0.1");
    }
    snprintf(url, sizeof(url), "%s://%s:%u", aos_http_is_tls(a->cfg.http) ? "https" : "http", host,
             aos_http_port(a->cfg.http));
    env_add(env, "AOS_AGENT_URL", url);
    env_add(env, "AOS_AGENT_TOKEN", ag->token);
    env_add(env, "AOS_AGENT_NAME", ag->name);
    snprintf(num, sizeof(num), "%lld", (long long)ag->version);
    env_add(env, "AOS_AGENT_VERSION", num);
    snprintf(num, sizeof(num), "%d", r->index);
    env_add(env, "AOS_AGENT_REPLICA", num);
    json_t *pub = ag_config_public(ag->config);
    json_object_del(pub, "env_names");
    json_object_del(pub, "env_refs");
    char *cfg = json_dumps(pub, JSON_COMPACT);
    json_decref(pub);
    env_add(env, "AOS_AGENT_CONFIG", cfg ? cfg : "{}");
    free(cfg);
    /* its env: sealed values and runtime secrets, opened now (a secret
     * gone since the start is this replica's error) */
    const char *k;
    json_t *v;
    aos_err_t err = {0, ""};
    const char *project = json_string_value(json_object_get(ag->config, "project_id"));
    json_object_foreach(json_object_get(ag->config, "env"), k, v)
    {
        size_t len = 0;
        char *plain = aos_settings_env_value(k, v, a->cfg.secrets, a->cfg.env_open, a->cfg.env_data,
                                             project, &len, &err);
        if (!plain)
            break;
        if (a->cfg.on_unseal)
            a->cfg.on_unseal(plain, a->cfg.unseal_data);
        env_add(env, k, plain);
        aos_secret_wipe(plain);
    }
    size_t n = json_array_size(env);
    const char **envv = err.code ? NULL : calloc(n + 1, sizeof(*envv));
    for (size_t i = 0; envv && i < n; i++)
        envv[i] = json_string_value(json_array_get(env, i));
    static const char *const args[] = {"agent", NULL};
    char uname[AOS_REGISTRY_NAME_MAX + 8];
    snprintf(uname, sizeof(uname), "agent:%s", ag->name);
    aos_upstream_cfg_t uc = {.name = uname,
                             .transport = "stdio",
                             .command = a->exe,
                             .args = args,
                             .env = envv,
                             .request_timeout_ms = AG_CALL_TIMEOUT_MS,
                             .restart_min_ms = 200,
                             .restart_max_ms = 10000};
    static const aos_upstream_cb_t cb = {on_rep_state, NULL, NULL};
    int rc = err.code ? err.code
             : envv   ? aos_upstream_new(&r->up, a->cfg.loop, NULL, &uc, &cb, r, &err)
                      : aos_err_set(&err, AOS_ENOMEM, NULL);
    /* the copies of the token and env values in env go now */
    size_t i;
    json_t *e;
    json_array_foreach(env, i, e)
        sodium_memzero((char *)json_string_value(e), json_string_length(e));
    json_decref(env);
    free(envv);
    if (!rc)
        rc = aos_upstream_start(r->up);
    if (rc) {
        char msg[256];
        snprintf(msg, sizeof(msg), "replica %d: unable to start: %s", r->index, aos_err_msg(&err));
        add_error(ag, r->index, msg);
        aos_log_error("agents", "agent '%s': %s", ag->name, msg);
        if (r->up) {
            r->closing = 1;
            a->closing++;
            aos_upstream_close(r->up, on_rep_closed, r);
        } else {
            free(r);
        }
        return rc;
    }
    r->next = ag->reps;
    ag->reps = r;
    return 0;
}

static void rep_drain(ag_rep_t *r)
{
    r->draining = 1;
    if (r->inflight == 0)
        rep_close(r);
}

/* The replica a call goes to (aos_agents_pick), or NULL. */
static ag_rep_t *pick(ag_live_t *ag)
{
    aos_agent_rep_t v[AOS_AGENTS_REPS_MAX];
    ag_rep_t *map[AOS_AGENTS_REPS_MAX];
    size_t n = snapshot(ag, v, map);
    long i = aos_agents_pick(v, n, ag->turn++);
    return i < 0 ? NULL : map[i];
}

static void reconcile(ag_live_t *ag)
{
    if (!ag->running || ag->a->shutting_down)
        return;
    aos_agent_rep_t v[AOS_AGENTS_REPS_MAX];
    ag_rep_t *map[AOS_AGENTS_REPS_MAX];
    size_t n = snapshot(ag, v, map);
    aos_agents_step_t step;
    aos_agents_step(v, n, ag->version, ag->want, ag->token && ag->token_version == ag->version,
                    &step);
    for (size_t i = 0; i < step.ndrain; i++)
        rep_drain(map[step.drain[i]]);
    for (int i = 0; i < step.spawn && n + (size_t)i < AOS_AGENTS_REPS_MAX; i++)
        if (rep_spawn(ag) != 0)
            break;
    retire_check(ag);
    status_update(ag);
}

/* ---- calls (the gateway's in-process server) ------------------------------ */

static int send_call(ag_call_t *c);

static void call_end(ag_call_t *c, json_t *result, const aos_err_t *err)
{
    if (!result && c->ag)
        c->ag->failures++;
    if (c->ag && c->ag->a->m_calls)
        aos_metric_add(c->ag->a->m_calls, 1, c->ag->name,
                       result && !json_is_true(json_object_get(result, "isError")) ? "ok"
                                                                                   : "error");
    c->done(c->ctx, result, err);
    json_decref(c->params);
    free(c);
}

static void on_reply(aos_upstream_t *up, json_t *reply, int status, const char *errmsg, void *data)
{
    ag_call_t *c = data;
    ag_rep_t *r = c->rep;
    c->rep = NULL;
    r->inflight--;
    if (r->draining && r->inflight == 0 && !r->closing) {
        rep_close(r);
        if (r->ag)
            retire_check(r->ag);
    }
    aos_err_t err = {0, ""};
    if (status == AOS_EUNAVAIL && c->ag && c->tries < AG_CALL_TRIES) {
        /* never sent: another replica may take it */
        if (send_call(c) == 0)
            return;
        status = AOS_EUNAVAIL;
    }
    if (status) {
        aos_err_set(&err, status, "agent replica: %s", errmsg && *errmsg ? errmsg : "failed");
        call_end(c, NULL, &err);
        return;
    }
    const json_t *res = json_object_get(reply, "result");
    if (json_is_object(res)) {
        call_end(c, json_incref((json_t *)res), NULL);
        return;
    }
    const char *m = json_string_value(json_object_get(json_object_get(reply, "error"), "message"));
    aos_err_set(&err, AOS_EUPSTREAM, "agent: %s", m ? m : "error");
    call_end(c, NULL, &err);
}

static int send_call(ag_call_t *c)
{
    ag_live_t *ag = c->ag;
    ag_rep_t *r = ag && ag->running ? pick(ag) : NULL;
    if (!r)
        return AOS_EUNAVAIL;
    c->tries++;
    c->rep = r;
    r->inflight++;
    int rc = aos_upstream_request(r->up, "tools/call", json_incref(c->params), AG_CALL_TIMEOUT_MS,
                                  c->has_trace ? &c->trace : NULL, on_reply, c, NULL);
    if (rc) {
        r->inflight--;
        c->rep = NULL;
    }
    return rc;
}

static json_t *ag_tools(void *data)
{
    ag_live_t *ag = data;
    return aos_agent_runtime_tools(ag->name,
                                   json_string_value(json_object_get(ag->config, "prompt")));
}

static int ag_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                   aos_builtin_done_fn done, void *ctx)
{
    ag_live_t *ag = data;
    aos_err_t err = {0, ""};
    if (strcmp(tool, "run_task") != 0) {
        aos_err_set(&err, AOS_ENOTFOUND, "agent '%s' has no tool '%.100s'", ag->name, tool);
        done(ctx, NULL, &err);
        return 0;
    }
    ag_call_t *c = calloc(1, sizeof(*c));
    if (!c)
        return AOS_ENOMEM;
    c->ag = ag;
    c->done = done;
    c->ctx = ctx;
    c->params = json_pack("{s:s, s:O}", "name", tool, "arguments", args);
    if (caller->traceparent && aos_tracectx_parse(&c->trace, caller->traceparent, NULL) == 0)
        c->has_trace = 1;
    ag->calls++;
    int rc = send_call(c);
    if (rc) {
        aos_err_set(&err, AOS_EUNAVAIL, "agent '%s' has no replica to take the call (%s)", ag->name,
                    status_of(ag));
        call_end(c, NULL, &err);
    }
    return 0;
}

int ag_env_check(aos_agents_t *a, const json_t *config, aos_err_t *err)
{
    const char *project = json_string_value(json_object_get(config, "project_id"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(config, "env"), k, v)
    {
        if (!json_is_object(v))
            continue; /* a sealed value: opened at each spawn */
        size_t len = 0;
        char *plain = aos_settings_env_value(k, v, a->cfg.secrets, a->cfg.env_open, a->cfg.env_data,
                                             project, &len, err);
        if (!plain) /* the agent's config names what is not there: its error, not a 404 */
            return err->code == AOS_ENOTFOUND ? (err->code = AOS_EINVAL) : err->code;
        aos_secret_wipe(plain);
    }
    /* a remote agent's credentials likewise */
    json_t *creds = json_object();
    json_object_foreach(json_object_get(config, "headers"), k, v)
    {
        char key[160];
        snprintf(key, sizeof(key), "headers.%.128s", k);
        json_object_set(creds, key, v);
    }
    if (json_object_get(config, "auth_token"))
        json_object_set(creds, "auth_token", json_object_get(config, "auth_token"));
    json_object_foreach(creds, k, v)
    {
        if (!json_is_object(v))
            continue;
        size_t len = 0;
        char *plain = aos_settings_env_value(k, v, a->cfg.secrets, a->cfg.env_open, a->cfg.env_data,
                                             project, &len, err);
        if (!plain) {
            json_decref(creds);
            return err->code == AOS_ENOTFOUND ? (err->code = AOS_EINVAL) : err->code;
        }
        aos_secret_wipe(plain);
    }
    json_decref(creds);
    return 0;
}

/* ---- metrics ------------------------------------------------------------------- */

/* The gauges of the started agents, from their state at each render. */
static void collect(aos_metrics_t *m, void *data)
{
    aos_agents_t *a = data;
    aos_metric_clear(a->m_desired);
    aos_metric_clear(a->m_running);
    aos_metric_clear(a->m_health);
    aos_metric_clear(a->m_inflight);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->live, &it, NULL, NULL, &v)) {
        ag_live_t *ag = v;
        if (!ag->running)
            continue;
        const char *st = status_of(ag);
        double health = !strcmp(st, "running") ? 0 : !strcmp(st, "starting") ? 1 : 2;
        aos_metric_set(a->m_health, health, ag->name);
        if (ag->remote)
            continue;
        unsigned ready = 0, inflight = 0;
        for (ag_rep_t *r = ag->reps; r; r = r->next) {
            ready += r->ready && !r->draining;
            inflight += r->inflight;
        }
        aos_metric_set(a->m_desired, ag->want, ag->name);
        aos_metric_set(a->m_running, ready, ag->name);
        aos_metric_set(a->m_inflight, inflight, ag->name);
    }
}

void ag_metrics_init(aos_agents_t *a)
{
    aos_metrics_t *m = a->cfg.metrics;
    if (!m)
        return;
    a->m_desired = aos_metrics_gauge(m, "aos_agent_replicas_desired",
                                     "Replicas a started local agent should have", "agent");
    a->m_running = aos_metrics_gauge(
        m, "aos_agent_replicas_running",
        "Replicas of a started local agent that are ready and take calls", "agent");
    a->m_health = aos_metrics_gauge(
        m, "aos_agent_health",
        "A started agent: 0 healthy (running), 1 unknown (starting), 2 unhealthy (degraded, "
        "crashed; a remote agent that fails its checks)",
        "agent");
    a->m_inflight =
        aos_metrics_gauge(m, "aos_agent_calls_in_flight",
                          "Calls sent to a local agent's replicas, not answered", "agent");
    a->m_restarts = aos_metrics_counter(
        m, "aos_agent_restarts_total",
        "Replicas of a local agent that went down by themselves and were restarted (a remote "
        "agent: each time it turned unhealthy)",
        "agent");
    a->m_calls = aos_metrics_counter(
        m, "aos_agent_calls_total",
        "Calls of a local agent's tools, by outcome (a remote agent's: aos_mcp_calls_total)",
        "agent,outcome");
    aos_metrics_on_collect(m, collect, a);
}

/* ---- remote agents: health checks, the gateway's route ------------------- */

static void iso_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint32_t health_every(const ag_live_t *ag)
{
    json_int_t v = json_integer_value(json_object_get(ag->config, "health_interval_ms"));
    return v > 0 ? (uint32_t)v : AG_HEALTH_MS;
}

/* A ping (and the initialize of a new session) may take this long. */
static uint32_t health_timeout(const ag_live_t *ag)
{
    uint32_t every = health_every(ag);
    return every < 2000 ? 2000 : every > 10000 ? 10000 : every;
}

/* A remote agent's credentials, opened: its headers as {Name: value} and
 * its bearer token (guarded memory, NULL when it has none). Each value
 * is taught to the log redactor. AOS_ENOTFOUND etc. with err naming the
 * header or token and its secret (never a value). */
static int remote_creds(ag_live_t *ag, json_t **headers, char **token, aos_err_t *err)
{
    aos_agents_t *a = ag->a;
    *headers = json_object();
    *token = NULL;
    if (!*headers)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    const char *project = json_string_value(json_object_get(ag->config, "project_id"));
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(ag->config, "headers"), k, v)
    {
        char what[160];
        snprintf(what, sizeof(what), "headers.%.128s", k);
        size_t len = 0;
        char *plain = aos_settings_env_value(what, v, a->cfg.secrets, a->cfg.env_open,
                                             a->cfg.env_data, project, &len, err);
        if (!plain) {
            json_decref(*headers);
            *headers = NULL;
            return err->code;
        }
        if (a->cfg.on_unseal)
            a->cfg.on_unseal(plain, a->cfg.unseal_data);
        json_object_set_new(*headers, k, json_stringn(plain, len));
        aos_secret_wipe(plain);
    }
    const json_t *t = json_object_get(ag->config, "auth_token");
    if (t) {
        size_t len = 0;
        *token = aos_settings_env_value("auth_token", t, a->cfg.secrets, a->cfg.env_open,
                                        a->cfg.env_data, project, &len, err);
        if (!*token) {
            json_decref(*headers);
            *headers = NULL;
            return err->code;
        }
        if (a->cfg.on_unseal)
            a->cfg.on_unseal(*token, a->cfg.unseal_data);
    }
    return 0;
}

/* Puts the remote agent's server in the gateway as the agent is now:
 * connected while it runs, its calls refused while it is stopped or
 * unhealthy; with its headers and bearer token, opened now. */
static int remote_route(ag_live_t *ag, aos_err_t *err)
{
    aos_agents_t *a = ag->a;
    if (!a->cfg.gateway)
        return aos_err_set(err, AOS_EUNAVAIL, "no gateway");
    char hold[320];
    const char *why = NULL;
    if (!ag->running) {
        snprintf(hold, sizeof(hold), "agent '%s' is stopped", ag->name);
        why = hold;
    } else if (!strcmp(ag->health, "unhealthy")) {
        snprintf(hold, sizeof(hold), "agent '%s' is unhealthy: %s", ag->name, ag->health_why);
        why = hold;
    }
    json_t *headers = NULL;
    char *token = NULL;
    int rc = remote_creds(ag, &headers, &token, err);
    if (rc)
        return rc;
    const char *url = json_string_value(json_object_get(ag->config, "url"));
    rc = aos_gateway_add_remote_agent(a->cfg.gateway, ag->name, url ? url : "", headers, token,
                                      ag->running, why, err);
    json_decref(headers);
    if (token)
        aos_secret_wipe(token);
    return rc;
}

/* A health transition: value events, the agent's last errors, the
 * gateway's route (calls refused while unhealthy). */
static void health_set(ag_live_t *ag, const char *h, const char *why)
{
    const char *was = ag->health;
    if (why)
        snprintf(ag->health_why, sizeof(ag->health_why), "%s", why);
    if (!strcmp(was, h))
        return;
    ag->health = h;
    iso_now(ag->health_since);
    aos_agents_t *a = ag->a;
    char hold[320];
    if (!strcmp(h, "unhealthy")) {
        ag->unhealthy_ms = now_ms();
        ag->crashes++;
        if (a->m_restarts)
            aos_metric_add(a->m_restarts, 1, ag->name);
        char msg[256];
        snprintf(msg, sizeof(msg), "unhealthy: %s", ag->health_why);
        add_error(ag, 0, msg);
        aos_log_warn("agents", "agent '%s' is %s; checking again with back-off", ag->name, msg);
        emit(ag, "anomaly.detected", "error",
             json_pack("{s:s, s:s}", "kind", "agent.unhealthy", "message", msg));
        emit(ag, "recovery.start", "warning",
             json_pack("{s:s, s:s}", "kind", "agent.unhealthy", "reason", ag->health_why));
        snprintf(hold, sizeof(hold), "agent '%s' is unhealthy: %s", ag->name, ag->health_why);
        if (ag->registered && a->cfg.gateway)
            aos_gateway_agent_hold(a->cfg.gateway, ag->name, hold);
    } else if (!strcmp(h, "healthy")) {
        aos_log_info("agents", "agent '%s' is healthy", ag->name);
        if (!strcmp(was, "unhealthy")) {
            ag->restarts++;
            emit(ag, "recovery.done", "notice",
                 json_pack("{s:s, s:I}", "kind", "agent.unhealthy", "downtime_ms",
                           (json_int_t)(now_ms() - ag->unhealthy_ms)));
        }
        ag->health_why[0] = '\0';
        /* the gateway's session to it may be backing off after the outage:
         * a new one now */
        aos_err_t err = {0, ""};
        if (ag->registered && !strcmp(was, "unhealthy") && remote_route(ag, &err))
            aos_log_warn("agents", "agent '%s': not routed: %s", ag->name, aos_err_msg(&err));
        else if (ag->registered && a->cfg.gateway)
            aos_gateway_agent_hold(a->cfg.gateway, ag->name, NULL);
    }
    status_update(ag);
}

static void on_hc_state(aos_upstream_t *up, aos_upstream_state_t st, const char *why, void *data)
{
    ag_live_t *ag = data;
    if (up != ag->hc)
        return; /* CLOSED: hc_stop */
    if (st == AOS_UP_READY) {
        ag->checks++;
        health_set(ag, "healthy", NULL); /* it answered initialize */
    } else if (st == AOS_UP_BACKOFF) {
        ag->checks++;
        ag->check_failures++;
        ag->latency_ms = -1;
        health_set(ag, "unhealthy", why && *why ? why : "unreachable");
    }
}

static void on_hc_ping(aos_upstream_t *up, json_t *reply, int status, const char *errmsg,
                       void *data)
{
    ag_live_t *ag = data;
    if (status == AOS_ECANCELED || up != ag->hc)
        return;
    ag->hc_pending = 0;
    ag->checks++;
    if (status || !reply || json_object_get(reply, "error")) {
        ag->check_failures++;
        ag->latency_ms = -1;
        char why[200];
        snprintf(why, sizeof(why), "ping failed: %s",
                 errmsg && *errmsg ? errmsg : (status ? aos_strerror(status) : "error reply"));
        health_set(ag, "unhealthy", why);
        return;
    }
    ag->latency_ms = (double)(now_ms() - ag->hc_sent_ms);
    health_set(ag, "healthy", NULL);
}

static void on_hc_timer(uv_timer_t *t)
{
    ag_live_t *ag = t->data;
    if (!ag || !ag->hc || ag->hc_pending || aos_upstream_state(ag->hc) != AOS_UP_READY)
        return; /* not connected: the upstream tries again with back-off */
    ag->hc_sent_ms = now_ms();
    if (aos_upstream_request(ag->hc, "ping", NULL, health_timeout(ag), NULL, on_hc_ping, ag,
                             NULL) == 0)
        ag->hc_pending = 1;
}

static void on_hc_closed(aos_upstream_t *up, void *data)
{
    aos_agents_t *a = data;
    a->closing--;
    down_check(a);
}

static void hc_stop(ag_live_t *ag)
{
    if (ag->hc_timer) {
        uv_timer_stop(ag->hc_timer);
        ag->hc_timer->data = NULL;
        uv_close((uv_handle_t *)ag->hc_timer, (uv_close_cb)free);
        ag->hc_timer = NULL;
    }
    if (ag->hc) {
        aos_upstream_t *up = ag->hc;
        ag->hc = NULL;
        ag->a->closing++;
        aos_upstream_close(up, on_hc_closed, ag->a);
    }
    ag->hc_pending = 0;
}

/* Starts the health checks of a started remote agent: an MCP session of
 * its own (initialize; the upstream reconnects with back-off 250 ms ..
 * 10 s while it fails) and a ping every health_interval_ms. */
static void hc_start(ag_live_t *ag)
{
    aos_agents_t *a = ag->a;
    ag->health = "unknown";
    ag->health_why[0] = '\0';
    iso_now(ag->health_since);
    ag->latency_ms = -1;
    char uname[AOS_REGISTRY_NAME_MAX + 16];
    snprintf(uname, sizeof(uname), "agent:%s", ag->name);
    aos_upstream_cfg_t uc = {.name = uname,
                             .transport = "streamable-http",
                             .url = json_string_value(json_object_get(ag->config, "url")),
                             .request_timeout_ms = health_timeout(ag),
                             .restart_min_ms = 250,
                             .restart_max_ms = 10000};
    static const aos_upstream_cb_t cb = {on_hc_state, NULL, NULL};
    aos_err_t err = {0, ""};
    /* the check sends what the gateway's calls send */
    json_t *headers = NULL;
    char *token = NULL, **lines = NULL;
    int rc = remote_creds(ag, &headers, &token, &err);
    if (!rc) {
        size_t n = json_object_size(headers), i = 0;
        lines = calloc(n + 1, sizeof(*lines));
        const char *k;
        json_t *v;
        json_object_foreach(headers, k, v)
        {
            if (!lines || asprintf(&lines[i], "%s: %s", k, json_string_value(v)) < 0) {
                if (lines)
                    lines[i] = NULL;
                rc = aos_err_set(&err, AOS_ENOMEM, NULL);
                break;
            }
            i++;
        }
        if (!lines)
            rc = aos_err_set(&err, AOS_ENOMEM, NULL);
        uc.headers = (const char *const *)lines;
        uc.bearer_token = token;
    }
    if (!rc)
        rc = a->cfg.httpc ? aos_upstream_new(&ag->hc, a->cfg.loop, a->cfg.httpc, &uc, &cb, ag, &err)
                          : aos_err_set(&err, AOS_EUNAVAIL, "no HTTP client");
    for (size_t i = 0; lines && lines[i]; i++) {
        sodium_memzero(lines[i], strlen(lines[i]));
        free(lines[i]);
    }
    free(lines);
    json_decref(headers);
    if (token)
        aos_secret_wipe(token);
    if (!rc && (rc = aos_upstream_start(ag->hc)) != 0)
        aos_err_set(&err, rc, "unable to connect");
    if (!rc && (ag->hc_timer = malloc(sizeof(*ag->hc_timer))) != NULL) {
        uv_timer_init(a->cfg.loop, ag->hc_timer);
        ag->hc_timer->data = ag;
        uv_timer_start(ag->hc_timer, on_hc_timer, health_every(ag), health_every(ag));
    }
    if (rc) {
        if (ag->hc) {
            aos_upstream_t *up = ag->hc;
            ag->hc = NULL;
            a->closing++;
            aos_upstream_close(up, on_hc_closed, a);
        }
        health_set(ag, "unhealthy", aos_err_msg(&err));
    }
}

/* ---- the live agent ------------------------------------------------------------ */

ag_live_t *ag_live_find(aos_agents_t *a, const char *id_or_name)
{
    ag_live_t *ag = aos_map_get(&a->live, id_or_name);
    if (ag)
        return ag;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->live, &it, NULL, NULL, &v))
        if (!strcmp(((ag_live_t *)v)->name, id_or_name))
            return v;
    return NULL;
}

static ag_live_t *live_get(aos_agents_t *a, const json_t *row)
{
    const char *id = json_string_value(json_object_get(row, "id"));
    ag_live_t *ag = aos_map_get(&a->live, id);
    if (ag)
        return ag;
    ag = calloc(1, sizeof(*ag));
    if (!ag)
        return NULL;
    ag->a = a;
    snprintf(ag->id, sizeof(ag->id), "%s", id);
    snprintf(ag->name, sizeof(ag->name), "%s", json_string_value(json_object_get(row, "name")));
    snprintf(ag->status, sizeof(ag->status), "stopped");
    ag->errors = json_array();
    ag->config = json_deep_copy(json_object_get(row, "config"));
    ag->want = (int)json_integer_value(json_object_get(row, "replicas"));
    const char *type = json_string_value(json_object_get(row, "type"));
    ag->remote = type && !strcmp(type, "remote");
    ag->health = "unknown";
    ag->latency_ms = -1;
    ag->bi.name = ag->name;
    ag->bi.description = "an agent of aosd";
    ag->bi.tools = ag_tools;
    ag->bi.call = ag_call;
    ag->bi.data = ag;
    if (aos_map_put(&a->live, ag->id, ag)) {
        json_decref(ag->errors);
        json_decref(ag->config);
        free(ag);
        return NULL;
    }
    return ag;
}

static void live_free(ag_live_t *ag)
{
    for (ag_rep_t *r = ag->reps; r; r = r->next)
        r->ag = NULL;
    json_decref(ag->errors);
    json_decref(ag->config);
    if (ag->token) {
        sodium_memzero(ag->token, strlen(ag->token));
        free(ag->token);
    }
    free(ag);
}

int ag_live_running(aos_agents_t *a, const char *id)
{
    ag_live_t *ag = ag_live_find(a, id);
    return ag && ag->running;
}

const char *ag_live_run_id(aos_agents_t *a, const char *id)
{
    ag_live_t *ag = ag_live_find(a, id);
    return ag && ag->running ? ag->run_id : "";
}

char *ag_live_stats(aos_agents_t *a, const char *id)
{
    ag_live_t *ag = ag_live_find(a, id);
    if (!ag)
        return NULL;
    json_t *s = json_pack("{s:I, s:I, s:I, s:I, s:I, s:i}", "calls", (json_int_t)ag->calls,
                          "failures", (json_int_t)ag->failures, "crashes", (json_int_t)ag->crashes,
                          "restarts", (json_int_t)ag->restarts, "version", (json_int_t)ag->version,
                          "replicas", ag->want);
    char *t = s ? json_dumps(s, JSON_COMPACT) : NULL;
    json_decref(s);
    return t;
}

void ag_live_view(aos_agents_t *a, const char *id, json_t *view)
{
    ag_live_t *ag = ag_live_find(a, id);
    if (!ag) {
        json_object_set_new(view, "load", json_integer(0));
        json_object_set_new(view, "registered", json_false());
        const char *type = json_string_value(json_object_get(view, "type"));
        if (type && !strcmp(type, "remote"))
            json_object_set_new(view, "health", json_pack("{s:s}", "state", "unknown"));
        return;
    }
    json_object_set_new(view, "status", json_string(status_of(ag)));
    unsigned load = 0;
    json_t *reps = json_array();
    for (ag_rep_t *r = ag->reps; r; r = r->next) {
        load += r->inflight;
        json_array_append_new(reps, json_pack("{s:i, s:i, s:s, s:I, s:i, s:b, s:i}", "replica",
                                              r->index, "pid", aos_upstream_pid(r->up), "state",
                                              aos_upstream_state_name(aos_upstream_state(r->up)),
                                              "version", (json_int_t)r->version, "in_flight",
                                              (int)r->inflight, "draining", r->draining, "restarts",
                                              (int)r->restarts));
    }
    json_object_set_new(view, "load", json_integer(load));
    json_object_set_new(view, "live_replicas", reps);
    json_object_set_new(view, "errors", json_deep_copy(ag->errors));
    json_object_set_new(view, "registered", json_boolean(ag->registered));
    if (ag->remote && ag->running) {
        json_t *h =
            json_pack("{s:s, s:s, s:I, s:I, s:I}", "state", ag->health, "since", ag->health_since,
                      "interval_ms", (json_int_t)health_every(ag), "checks", (json_int_t)ag->checks,
                      "failures", (json_int_t)ag->check_failures);
        if (ag->health_why[0])
            json_object_set_new(h, "last_error", json_string(ag->health_why));
        if (ag->latency_ms >= 0)
            json_object_set_new(h, "latency_ms", json_real(ag->latency_ms));
        json_object_set_new(view, "health", h);
    } else if (ag->remote) {
        json_object_set_new(view, "health", json_pack("{s:s}", "state", "unknown"));
    }
    if (ag->running) {
        json_object_set_new(view, "run_id", json_string(ag->run_id));
        json_object_set_new(view, "running_version", json_integer(ag->version));
        json_object_set_new(view, "stats",
                            json_pack("{s:I, s:I, s:I, s:I}", "calls", (json_int_t)ag->calls,
                                      "failures", (json_int_t)ag->failures, "crashes",
                                      (json_int_t)ag->crashes, "restarts",
                                      (json_int_t)ag->restarts));
    }
}

typedef struct {
    aos_agents_t *a;
    char id[40];
    int64_t version;
} mint_t;

static void on_minted(int status, const aos_err_t *err, const char *tok_id, const char *token,
                      void *data)
{
    mint_t *m = data;
    ag_live_t *ag = aos_map_get(&m->a->live, m->id);
    if (ag)
        ag->mints--;
    if (!ag || !ag->running || m->a->shutting_down) {
        /* stopped meanwhile: nobody will use it */
        if (!status && m->a->cfg.auth) {
            aos_err_t e = {0, ""};
            if (aos_auth_token_revoke(m->a->cfg.auth, tok_id, "aosd", on_revoked, m->a, &e) == 0)
                m->a->closing++;
        }
        free(m);
        return;
    }
    if (status) {
        char msg[256];
        snprintf(msg, sizeof(msg), "no token: %s", aos_err_msg(err));
        add_error(ag, 0, msg);
        aos_log_error("agents", "agent '%s': %s", ag->name, msg);
        free(m);
        ag->no_token = 1;
        status_update(ag);
        return;
    }
    ag->no_token = 0;
    if (m->version != ag->version) {
        /* a later release or rollback wants its own: this one is not used */
        char stale[40];
        snprintf(stale, sizeof(stale), "%s", tok_id);
        token_revoke(ag, stale, ag->actor);
        free(m);
        return;
    }
    free(m);
    /* the replicas of the previous token keep it until they are gone */
    if (ag->token_id[0])
        retire(ag, ag->token_id);
    snprintf(ag->token_id, sizeof(ag->token_id), "%s", tok_id);
    if (ag->token) {
        sodium_memzero(ag->token, strlen(ag->token));
        free(ag->token);
    }
    ag->token = strdup(token);
    ag->token_version = ag->version;
    reconcile(ag);
}

static void mint(ag_live_t *ag)
{
    aos_agents_t *a = ag->a;
    aos_err_t err = {0, ""};
    /* its grants: its tool mapping, and its project when its run_task
     * runs tasks of the orchestrator */
    const json_t *tools = json_object_get(ag->config, "tools");
    const char *planner = json_string_value(json_object_get(ag->config, "planner"));
    const char *project = json_string_value(json_object_get(ag->config, "project_id"));
    json_t *res = json_array();
    size_t i;
    json_t *t;
    json_array_foreach(tools, i, t)
        json_array_append_new(res, json_sprintf("tool:%s", json_string_value(t)));
    if (planner && !strcmp(planner, "orchestrator") && project)
        json_array_append_new(res, json_sprintf("project:%s", project));
    size_t n = json_array_size(res);
    const char **pats = calloc(n + 1, sizeof(*pats));
    mint_t *m = calloc(1, sizeof(*m));
    int rc = pats && m && json_array_size(res) == n ? 0 : aos_err_set(&err, AOS_ENOMEM, NULL);
    for (i = 0; !rc && i < n; i++)
        pats[i] = json_string_value(json_array_get(res, i));
    char name[sizeof(((aos_principal_t *)0)->name)]; /* a long name is cut */
    snprintf(name, sizeof(name), "agent:%.*s", (int)sizeof(name) - 7, ag->name);
    if (!rc && !a->cfg.auth)
        rc = aos_err_set(&err, AOS_EUNAVAIL, "no authorizer");
    if (!rc) {
        m->a = a;
        snprintf(m->id, sizeof(m->id), "%s", ag->id);
        m->version = ag->version;
        rc = aos_auth_token_mint(a->cfg.auth, name, pats, ag->actor, on_minted, m, &err);
    }
    free(pats);
    json_decref(res);
    if (rc) {
        free(m);
        char msg[256];
        snprintf(msg, sizeof(msg), "no token: %s", aos_err_msg(&err));
        add_error(ag, 0, msg);
        aos_log_error("agents", "agent '%s': %s", ag->name, msg);
        ag->no_token = 1;
        status_update(ag);
        return;
    }
    ag->mints++;
}

typedef struct {
    char run_id[40], status[16];
} run_job_t;

static int run_end_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    run_job_t *j = arg;
    return aos_store_agent_run_update(st, j->run_id, j->status, NULL, 1, err);
}

static void run_end_done(int status, const aos_err_t *err, void *arg)
{
    if (status)
        aos_log_warn("agents", "agent run not closed: %s", aos_err_msg(err));
    free(arg);
}

/* Closes agent_runs row run_id with status. */
static void run_end(aos_agents_t *a, const char *run_id, const char *status)
{
    run_job_t *j = run_id && *run_id ? calloc(1, sizeof(*j)) : NULL;
    if (!j)
        return;
    snprintf(j->run_id, sizeof(j->run_id), "%s", run_id);
    snprintf(j->status, sizeof(j->status), "%s", status);
    if (aos_store_submit(a->cfg.store, run_end_run, run_end_done, j) < 0)
        free(j);
}

void ag_live_start(aos_agents_t *a, const json_t *row, const json_t *config, int64_t version,
                   const char *run_id, const char *actor)
{
    ag_live_t *ag = a->shutting_down ? NULL : live_get(a, row);
    if (!ag || ag->running) {
        /* started twice at once (aosd's restart of it and a client's
         * start), or aosd is stopping: the run that did not happen ends */
        run_end(a, run_id, "aborted");
        return;
    }
    ag->no_token = 0;
    json_decref(ag->config);
    ag->config = json_deep_copy(config);
    ag->version = version;
    ag->want = (int)json_integer_value(json_object_get(row, "replicas"));
    ag->running = 1;
    ag->ever_ready = 0;
    ag->calls = ag->failures = ag->crashes = ag->restarts = 0;
    ag->checks = ag->check_failures = 0;
    memset(&ag->crashw, 0, sizeof(ag->crashw));
    status_set(ag, "starting");
    snprintf(ag->run_id, sizeof(ag->run_id), "%s", run_id);
    snprintf(ag->actor, sizeof(ag->actor), "%s", actor);
    if (ag->remote) {
        /* aosd runs nothing: it checks the endpoint and routes to it */
        aos_log_info("agents", "agent '%s': remote, health checks every %u ms", ag->name,
                     health_every(ag));
        hc_start(ag);
        aos_err_t err = {0, ""};
        if (ag->registered && remote_route(ag, &err))
            aos_log_warn("agents", "agent '%s': not routed: %s", ag->name, aos_err_msg(&err));
        return;
    }
    mint(ag);
}

static void down_check(aos_agents_t *a)
{
    if (a->shutting_down && a->closing == 0 && a->on_down) {
        void (*done)(void *) = a->on_down;
        a->on_down = NULL;
        done(a->down_data);
    }
}

static void on_revoked(int status, const aos_err_t *err, const char *id, const char *token,
                       void *data)
{
    aos_agents_t *a = data;
    if (status)
        aos_log_warn("agents", "token %s not revoked: %s", id, aos_err_msg(err));
    a->closing--;
    down_check(a);
}

/* Revokes token id (then empty); aosd's shutdown waits for it. */
static void token_revoke(ag_live_t *ag, char *id, const char *actor)
{
    aos_agents_t *a = ag->a;
    if (!id[0] || !a->cfg.auth)
        return;
    aos_err_t err = {0, ""};
    if (aos_auth_token_revoke(a->cfg.auth, id, actor, on_revoked, a, &err))
        aos_log_warn("agents", "agent '%s': token not revoked: %s", ag->name, aos_err_msg(&err));
    else
        a->closing++;
    id[0] = '\0';
}

/* Keeps token id (then empty) until no replica holds it. */
static void retire(ag_live_t *ag, char *id)
{
    size_t k = 0;
    while (k < AG_RETIRED && ag->retired[k][0])
        k++;
    if (k == AG_RETIRED) /* releases faster than replicas turn over: the oldest goes now */
        token_revoke(ag, ag->retired[k = 0], ag->actor);
    snprintf(ag->retired[k], sizeof(ag->retired[k]), "%s", id);
    id[0] = '\0';
}

static void retire_check(ag_live_t *ag)
{
    for (size_t k = 0; k < AG_RETIRED; k++) {
        if (!ag->retired[k][0])
            continue;
        int used = 0;
        for (ag_rep_t *r = ag->reps; r && !used; r = r->next)
            used = !strcmp(r->token_id, ag->retired[k]);
        if (!used)
            token_revoke(ag, ag->retired[k], ag->actor);
    }
}

static void live_halt(ag_live_t *ag, const char *actor)
{
    ag->running = 0;
    hc_stop(ag);
    while (ag->reps)
        rep_close(ag->reps);
    token_revoke(ag, ag->token_id, actor);
    for (size_t k = 0; k < AG_RETIRED; k++)
        token_revoke(ag, ag->retired[k], actor);
    if (ag->token) {
        sodium_memzero(ag->token, strlen(ag->token));
        free(ag->token);
        ag->token = NULL;
    }
    status_set(ag, "stopped");
}

void ag_live_stop(aos_agents_t *a, const char *id, const char *actor)
{
    ag_live_t *ag = ag_live_find(a, id);
    if (!ag || !ag->running)
        return;
    if (ag->remote)
        aos_log_info("agents", "agent '%s': remote, stopped: no health checks, no calls", ag->name);
    else
        aos_log_info("agents", "agent '%s': stopping %d replica(s)", ag->name, ag->want);
    live_halt(ag, actor);
    aos_err_t err = {0, ""};
    if (ag->remote && ag->registered && remote_route(ag, &err))
        aos_log_warn("agents", "agent '%s': not routed: %s", ag->name, aos_err_msg(&err));
}

/* 1 if the agent's config names runtime secret name: in env, or a remote
 * agent's headers and auth_token. */
static int names_secret(const ag_live_t *ag, const char *name)
{
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(ag->config, "env"), k, v)
    {
        const char *sec = json_string_value(json_object_get(v, "secret"));
        if (sec && !strcmp(sec, name))
            return 1;
    }
    json_object_foreach(json_object_get(ag->config, "headers"), k, v)
    {
        const char *sec = json_string_value(json_object_get(v, "secret"));
        if (sec && !strcmp(sec, name))
            return 1;
    }
    const char *sec =
        json_string_value(json_object_get(json_object_get(ag->config, "auth_token"), "secret"));
    return sec && !strcmp(sec, name);
}

void aos_agents_secret_changed(aos_agents_t *a, const char *name, int deleted)
{
    if (a->shutting_down)
        return;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->live, &it, NULL, NULL, &v)) {
        ag_live_t *ag = v;
        if (!ag->running || !names_secret(ag, name))
            continue;
        aos_log_info("agents", "agent '%s': runtime secret '%s' %s: %s", ag->name, name,
                     deleted ? "deleted" : "changed",
                     ag->remote ? "checked and routed anew"
                                : "replacing its replicas one at a time");
        if (deleted) {
            char msg[200];
            snprintf(msg, sizeof(msg), "runtime secret '%.64s' was deleted", name);
            add_error(ag, 0, msg);
        }
        if (ag->remote) {
            hc_stop(ag);
            hc_start(ag);
            aos_err_t err = {0, ""};
            if (ag->registered && remote_route(ag, &err)) {
                aos_log_warn("agents", "agent '%s': not routed: %s", ag->name, aos_err_msg(&err));
                if (a->cfg.gateway) {
                    char hold[320];
                    snprintf(hold, sizeof(hold), "agent '%s' is unhealthy: %s", ag->name,
                             aos_err_msg(&err));
                    aos_gateway_agent_hold(a->cfg.gateway, ag->name, hold);
                }
            }
            continue;
        }
        ag->gen++;
        reconcile(ag);
    }
}

void ag_live_scale(aos_agents_t *a, const char *id, int64_t replicas)
{
    ag_live_t *ag = ag_live_find(a, id);
    if (!ag)
        return;
    ag->want = (int)replicas;
    if (!ag->remote)
        reconcile(ag);
}

void ag_live_release(aos_agents_t *a, const char *id, int64_t version, const json_t *config,
                     const char *actor)
{
    ag_live_t *ag = ag_live_find(a, id);
    if (!ag || version == ag->version) {
        if (ag && !ag->running) {
            json_decref(ag->config);
            ag->config = json_deep_copy(config);
        }
        return;
    }
    json_decref(ag->config);
    ag->config = json_deep_copy(config);
    ag->version = version;
    if (ag->remote) {
        /* its url may have changed: checked and routed anew */
        aos_err_t err = {0, ""};
        if (ag->running) {
            hc_stop(ag);
            hc_start(ag);
        }
        if (ag->registered && remote_route(ag, &err))
            aos_log_warn("agents", "agent '%s': not routed: %s", ag->name, aos_err_msg(&err));
        return;
    }
    if (!ag->running)
        return;
    snprintf(ag->actor, sizeof(ag->actor), "%s", actor);
    aos_log_info("agents", "agent '%s': rolling its replicas to version %lld", ag->name,
                 (long long)version);
    /* its token follows its tool mapping: a new one for the new version;
     * reconcile waits for it */
    mint(ag);
}

int ag_live_register(aos_agents_t *a, const json_t *row, aos_err_t *err)
{
    if (!a->cfg.gateway)
        return aos_err_set(err, AOS_EUNAVAIL, "no gateway");
    ag_live_t *ag = live_get(a, row);
    if (!ag)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    if (ag->registered)
        return 0;
    int rc = ag->remote ? remote_route(ag, err) : aos_gateway_add_agent(a->cfg.gateway, &ag->bi);
    if (rc && ag->remote) {
        if (rc == AOS_ECONFLICT)
            aos_err_set(err, rc, "a server named '%s' exists already", ag->name);
        return rc;
    }
    if (rc == AOS_ECONFLICT)
        return aos_err_set(err, rc, "a server named '%s' exists already", ag->name);
    if (rc)
        return aos_err_set(err, rc, "unable to add agent '%s' to the gateway", ag->name);
    ag->registered = 1;
    return 0;
}

void ag_live_unregister(aos_agents_t *a, const char *id)
{
    ag_live_t *ag = ag_live_find(a, id);
    if (!ag || !ag->registered)
        return;
    if (a->cfg.gateway)
        aos_gateway_remove_agent(a->cfg.gateway, ag->name);
    ag->registered = 0;
    aos_log_info("agents", "agent '%s': unregistered from the gateway", ag->name);
}

void ag_live_forget(aos_agents_t *a, const char *id)
{
    ag_live_t *ag = ag_live_find(a, id);
    if (!ag)
        return;
    if (ag->running)
        live_halt(ag, "aosd");
    if (ag->registered && a->cfg.gateway)
        aos_gateway_remove_agent(a->cfg.gateway, ag->name);
    aos_map_del(&a->live, ag->id);
    live_free(ag);
}

void aos_agents_shutdown(aos_agents_t *a, void (*done)(void *data), void *data)
{
    a->shutting_down = 1;
    a->on_down = done;
    a->down_data = data;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->live, &it, NULL, NULL, &v)) {
        ag_live_t *ag = v;
        hc_stop(ag);
        if (ag->running) {
            ag->running = 0;
            while (ag->reps)
                rep_close(ag->reps);
            token_revoke(ag, ag->token_id, "aosd");
            for (size_t k = 0; k < AG_RETIRED; k++)
                token_revoke(ag, ag->retired[k], "aosd");
        }
    }
    down_check(a);
}

void aos__agents_live_release(aos_agents_t *a)
{
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->live, &it, NULL, NULL, &v))
        live_free(v);
    aos_map_release(&a->live);
}
