/* aosd.c - main(): read the settings, open the store and the secret box,
 * wire the modules to one libuv loop, serve until SIGINT/SIGTERM, then shut
 * down in order: stop accepting, fail what is in flight, stop the children,
 * close the store. */
#include "api/api.h"
#include "audit/audit.h" /* wiring: audit */
#include "auth/auth.h"
#include "bus/bus.h"
#include "config/config.h"
#include "gateway/gateway.h"
#include "http/http.h"
#include "httpc/httpc.h"
#include "llm/llm.h" /* wiring: llm */
#include "log/log.h"
#include "logs/logs.h"       /* wiring: logs */
#include "memory/memory.h"   /* wiring: memory */
#include "orch/orch.h"       /* wiring: orch */
#include "redact/redact.h"   /* wiring: redact */
#include "sandbox/sandbox.h" /* wiring: sandbox */
#include "agents/agents.h"   /* wiring: agents */
#include "metrics/metrics.h"
#include "monitor/monitor.h"
#include "secret/secret.h"
#include "settings/settings.h" /* wiring: settings */
#include "cidr/cidr.h"         /* wiring: settings */
#include "store/store.h"
#include "tools/tools.h"         /* wiring: tools */
#include "trace/trace.h"         /* wiring: trace */
#include "telemetry/telemetry.h" /* wiring: telemetry */
#include "tools/net.h"           /* wiring: nettools */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

/* the allocator the build linked in front of the C library's (CMakeLists.txt,
 * AOS_ALLOCATOR); `aosd --version` says which */
#ifdef AOS_JEMALLOC
#define AOS_MALLOC_NAME "jemalloc"
#else
#define AOS_MALLOC_NAME "system"
#endif

/* Descriptors kept beside the client connections: the store, upstream
 * connections and children's pipes, logs, and the connections the HTTP
 * server has closed but not yet cleaned up. */
#define FD_RESERVE 512

/* The daemon: every long-lived object, owned here. */
typedef struct {
    aos_config_t cfg;
    uv_loop_t *loop;
    aos_store_t *store;
    aos_secret_box_t *secrets;
    aos_settings_t *settings; /* wiring: settings (system settings, runtime secrets) */
    int llm_key_flag;         /* wiring: settings -- the LLM key came from --llm-api-key */
    aos_auth_t *auth;
    aos_metrics_t *metrics;
    aos_httpc_t *httpc;
    aos_gateway_t *gateway;
    aos_http_t *http;
    aos_api_t api;
    aos_audit_t *audit; /* wiring: audit (/audit/logs, /audit/verify) */
    /* wiring: bus (event bus and value-event stream) */
    aos_bus_t *bus;
    /* wiring: logs (log service) */
    aos_logs_t *logs;
    /* wiring: memory (memory items and search) */
    aos_memory_t *memory;
    /* wiring: orch (the orchestrator) */
    aos_orch_t *orch;
    /* wiring: trace (spans) */
    aos_trace_t *trace;
    /* wiring: telemetry (OTLP export and ingest) */
    aos_telemetry_t *telemetry;
    /* wiring: sandbox (scripts, runs, the shell tool) */
    aos_sandbox_t *sandbox;
    /* wiring: agents (definitions, versions, templates) */
    aos_agents_t *agents;
    /* wiring: monitor (metric history, HTTP/store/process metrics, trace search, topology) */
    aos_monitor_t *monitor;
    /* wiring: llm (OpenAI-compatible client; NULL without --llm-base-url) */
    aos_llm_t *llm;
    /* wiring: nettools (the built-in servers git and http) */
    aos_tools_git_t *git_tools;
    aos_tools_http_t *http_tools;
    /* wiring: tools (built-in servers files, db, csv, viz) */
    aos_tools_t *tools;
    int redact_full; /* the log redactor refused a secret: warned once */
    char *generated; /* the Owner token made on first start, until printed */
    uv_signal_t sigint, sigterm;
    int signals; /* sigint and sigterm are initialized */
    uv_timer_t deadline;
    int stopping;
} aos_daemon_t;

static void on_gateway_down(void *data)
{
    aos_daemon_t *d = data;
    aos_log_info("aosd", "upstreams stopped");
    uv_timer_stop(&d->deadline);
    uv_close((uv_handle_t *)&d->deadline, NULL);
    aos_http_free(d->http);
    d->http = NULL;
    aos_gateway_free(d->gateway);
    d->gateway = NULL;
    aos_memory_stop(d->memory); /* wiring: memory -- its re-embedding, before the llm client */
    aos_llm_free(d->llm);       /* wiring: llm -- before httpc, which carries its calls */
    d->llm = NULL;
    aos_telemetry_shutdown(d->telemetry); /* wiring: telemetry -- before httpc */
    aos_httpc_free(d->httpc);
    d->httpc = NULL;
    aos_orch_free(d->orch); /* wiring: orch */
    d->orch = NULL;
    aos_sandbox_free(d->sandbox); /* wiring: sandbox -- its runs are over */
    d->sandbox = NULL;
    aos_agents_free(d->agents); /* wiring: agents */
    d->agents = NULL;
    aos_audit_stop(d->audit); /* wiring: audit -- its retention timer */
    aos_tools_stop(d->tools); /* wiring: tools -- the sweep of idempotency records */
    aos_bus_free(d->bus);     /* wiring: bus -- before the store, which finishes its jobs */
    d->bus = NULL;
    /* wiring: trace -- the requests have ended their spans: write them */
    aos_trace_shutdown(d->trace);
    /* the store keeps the loop alive while it is open; the modules that
     * still hold it (a timer firing as the loop winds down) are refused
     * until main() closes it after the loop */
    aos_store_shutdown(d->store);
}

static void on_deadline(uv_timer_t *t)
{
    aos_log_warn("aosd", "shutdown is taking too long; exiting");
    exit(1);
}

/* wiring: agents -- their replicas stop (and tokens are revoked) before the gateway */
static void on_agents_down(void *data)
{
    aos_daemon_t *d = data;
    if (d->gateway)
        aos_gateway_shutdown(d->gateway, on_gateway_down, d);
    else
        on_gateway_down(d);
}

static void on_sandbox_down(void *data)
{
    aos_daemon_t *d = data;
    if (d->agents)
        aos_agents_shutdown(d->agents, on_agents_down, d);
    else
        on_agents_down(d);
}

/* wiring: sandbox -- its runs end (and are stored) before the gateway stops */
static void on_orch_down(void *data)
{
    aos_daemon_t *d = data;
    if (d->sandbox)
        aos_sandbox_shutdown(d->sandbox, on_sandbox_down, d);
    else
        on_sandbox_down(d);
}

static void shutdown_daemon(aos_daemon_t *d, const char *why)
{
    if (d->stopping)
        return;
    d->stopping = 1;
    aos_log_info("aosd", "shutting down (%s)", why);
    aos_monitor_shutdown(d->monitor); /* wiring: monitor -- its sampler reads the others */
    if (d->signals) {
        uv_close((uv_handle_t *)&d->sigint, NULL);
        uv_close((uv_handle_t *)&d->sigterm, NULL);
    }
    uv_timer_init(d->loop, &d->deadline);
    uv_timer_start(&d->deadline, on_deadline, 10000, 0);
    aos_logs_shutdown(d->logs); /* wiring: logs -- ends its streams, stores what it captured */
    if (d->http)
        aos_http_stop(d->http);
    /* wiring: orch -- tasks stop before the gateway's calls fail under them */
    if (d->orch)
        aos_orch_shutdown(d->orch, on_orch_down, d);
    else
        on_orch_down(d);
}

static void on_signal(uv_signal_t *s, int signum)
{
    shutdown_daemon(s->data, signum == SIGINT ? "SIGINT" : "SIGTERM");
}

/* wiring: trace -- the Analyzer asks the tracer to keep an anomaly's
 * trace (and whether its spans are stored) */
static int trace_keep(const char *trace_id, void *data)
{
    return aos_trace_keep(data, trace_id);
}

/* The gateway's events (tool.error, anomaly.detected) go to the bus; one
 * that cannot be written is logged, never lost silently. */
static void emit_event(json_t *event, void *data)
{
    aos_daemon_t *d = data;
    aos_err_t err = {0, ""};
    if (!d->bus) {
        json_decref(event);
        return;
    }
    if (aos_bus_publish(d->bus, event, NULL, NULL, &err)) /* event is taken either way */
        aos_log_warn("aosd", "event not published: %s", aos_err_msg(&err));
}

/* A secret value the gateway unsealed, or the LLM client's key, goes to the
 * redactor (redact.h) of the logs, events, spans, audit diffs and errors;
 * one too short to redact (under 4 bytes) is left out, with a warning. */
static void on_unseal(const char *value, void *data)
{
    aos_daemon_t *d = data;
    if (aos_redact_add_value(aos_redact_global(), value) == AOS_EINVAL && !d->redact_full++)
        aos_log_warn("aosd", "a secret of under %d bytes cannot be redacted", AOS_REDACT_MIN_VALUE);
}

/* A registry entry's secret value, its entry replaced or removed: that
 * addition leaves the redactor (one another entry or secret shares stays). */
static void on_forget(const char *value, void *data)
{
    (void)data;
    aos_redact_remove_value(aos_redact_global(), value);
}

/* wiring: settings -- a runtime secret's value, known or forgotten: the
 * redactor learns it when it is loaded, set or approved, and drops that
 * addition when the secret is deleted (a value two secrets share, or that
 * the gateway unsealed too, stays: the redactor counts additions). */
static void on_runtime_secret(const char *value, int added, void *data)
{
    if (added)
        on_unseal(value, data);
    else
        on_forget(value, data);
}

/* wiring: settings -> agents -- a runtime secret set anew or deleted:
 * the running agents that name it roll their replicas (remote ones: their
 * route) so they open it again */
static void on_runtime_secret_change(const char *name, int deleted, void *data)
{
    aos_daemon_t *d = data;
    if (d->agents)
        aos_agents_secret_changed(d->agents, name, deleted);
}

/* wiring: settings -- a runtime secret of a TaskSpec's env, for one call */
static char *open_env_secret(const char *secret, const char *project_id, size_t *len,
                             aos_err_t *err, void *data)
{
    aos_daemon_t *d = data;
    return aos_settings_secret_open(d->settings, secret, project_id, len, err);
}

/* wiring: gateway -- a runtime secret a registry entry's header or env
 * value names ({"secret": name}), opened at each connect; entries are
 * written by Admins on system, who may use every secret. System scope. */
static char *open_entry_secret(const char *name, size_t *len, aos_err_t *err, void *data)
{
    aos_daemon_t *d = data;
    return aos_settings_secret_open(d->settings, name, NULL, len, err);
}

/* wiring: nettools -- a runtime secret an http tool call's header names,
 * for that request only: acting ("token:<id>", "anonymous") must be able
 * to operate on secret:<name>, as for a TaskSpec's env */
static char *open_header_secret(const char *acting, const char *secret, const char *project,
                                size_t *len, aos_err_t *err, void *data)
{
    aos_daemon_t *d = data;
    const aos_principal_t *p = aos_auth_find(d->auth, acting);
    char res[96];
    snprintf(res, sizeof(res), "secret:%.64s", secret);
    if (!p || aos_auth_check(p, AOS_PERM_OPERATE, res)) {
        aos_err_set(err, AOS_EFORBIDDEN,
                    "the caller may not use it (it needs operate on the secret)");
        return NULL;
    }
    return aos_settings_secret_open(d->settings, secret, project, len, err);
}

/* wiring: settings -- the LLM settings changed: the client takes them for
 * the calls it starts from now on (turning the LLM on takes a restart). */
static int apply_settings(const char *group, int dry_run, void *data)
{
    aos_daemon_t *d = data;
    aos_config_t *c = &d->cfg;
    /* a key from --llm-api-key is wiped once the client has it: without it
     * the client cannot be configured again until the next start */
    if (strcmp(group, "llm") || !d->llm || d->llm_key_flag || !c->llm_base_url || !*c->llm_base_url)
        return AOS_EUNAVAIL;
    if (dry_run)
        return 0;
    char *key = aos_settings_llm_key(d->settings);
    aos_llm_cfg_t mc = {.base_url = c->llm_base_url,
                        .model = c->llm_model,
                        .embed_model = c->llm_embed_model,
                        .api_key = key,
                        .temperature = c->llm_temperature,
                        .max_tokens = (unsigned)c->llm_max_tokens,
                        .timeout_ms = (unsigned)c->llm_timeout_ms,
                        .retries = (unsigned)c->llm_retries,
                        .price_in_cny = c->llm_price_in_cny,
                        .price_out_cny = c->llm_price_out_cny,
                        .metrics = d->metrics,
                        .on_secret = on_unseal,
                        .secret_data = d};
    aos_err_t err = {0, ""};
    int rc = aos_llm_configure(d->llm, &mc, &err);
    aos_secret_wipe(key);
    if (rc)
        aos_log_warn("aosd", "LLM settings not applied: %s", aos_err_msg(&err));
    else
        aos_log_info("aosd", "LLM client reconfigured: model %s", c->llm_model);
    return rc ? AOS_EUNAVAIL : 0;
}

/* wiring: telemetry -- the OTLP exporter (otel.* settings, --otlp-*) fed
 * by the trace service, and the ingest routes */
static int start_telemetry(aos_daemon_t *d, aos_err_t *err)
{
    const aos_config_t *c = &d->cfg;
    int enc = aos_otlp_encoding_parse(c->otlp_protocol);
    if (enc < 0)
        return aos_err_set(err, AOS_EINVAL, "--otlp-protocol must be http/protobuf or http/json");
    char **headers = aos_settings_otel_headers(d->settings);
    aos_telemetry_cfg_t tc = {.loop = d->loop,
                              .store = d->store,
                              .logs = d->logs,
                              .httpc = d->httpc,
                              .metrics = d->metrics,
                              .endpoint = c->otlp_endpoint,
                              .headers = (const char *const *)headers,
                              .encoding = (aos_otlp_encoding_t)enc,
                              .queue = c->otlp_queue,
                              .flush_ms = (unsigned)c->otlp_flush_ms,
                              .backoff_max_ms = (unsigned)c->otlp_backoff_max_ms};
    int rc = aos_telemetry_new(&d->telemetry, &tc, err);
    aos_settings_headers_free(headers);
    if (rc)
        return rc;
    if (c->otlp_endpoint && *c->otlp_endpoint)
        aos_trace_on_stored(d->trace, aos_telemetry_export, d->telemetry);
    if ((rc = aos_telemetry_add_routes(d->telemetry, d->http)))
        return aos_err_set(err, rc, "unable to add the OTLP routes");
    return 0;
}

/* wiring: settings -- the stored database.url, unless --store pins one:
 * the store is reopened there. */
static int reopen_store(aos_daemon_t *d, const char *url, aos_err_t *err)
{
    if (d->cfg.store)
        return 0;
    char *want = aos_settings_stored_database(d->store);
    if (!want || !strcmp(want, url)) {
        free(want);
        return 0;
    }
    aos_log_info("aosd", "database.url: using the stored database");
    aos_store_close(d->store);
    uv_run(d->loop, UV_RUN_NOWAIT);
    d->store = NULL;
    int rc = aos_store_open(&d->store, d->loop, want, err);
    free(want);
    return rc;
}

/* wiring: memory -- an MCP caller's principal by id, for its per-project checks */
static const aos_principal_t *memory_principal(void *data, const char *id)
{
    return aos_auth_find(data, id);
}

/* Zeroes and frees a secret of plain heap memory (NULL is ignored). */
static void forget(char *s)
{
    if (s) {
        explicit_bzero(s, strlen(s));
        free(s);
    }
}

static int make_dir(const char *path, aos_err_t *err)
{
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            if (mkdir(buf, 0700) && errno != EEXIST)
                return aos_err_set(err, AOS_EIO, "unable to create '%s': %s", buf, strerror(errno));
            *p = '/';
        }
    }
    if (mkdir(buf, 0700) && errno != EEXIST)
        return aos_err_set(err, AOS_EIO, "unable to create '%s': %s", buf, strerror(errno));
    return 0;
}

/* Every connection is a descriptor: raise the soft limit on open files to
 * what --http-max-conns needs (within the hard limit), else lower the
 * connection limit to what the descriptors allow - so that the server
 * reaches its own limit, and makes room for new clients, before accept()
 * starts failing and new clients wait in the backlog. */
static void fit_fd_limit(aos_config_t *c)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl))
        return;
    rlim_t need = (rlim_t)c->http_max_conns + FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        struct rlimit want = rl;
        want.rlim_cur = (rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need) ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &want) == 0)
            rl = want;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need) {
        unsigned long fit =
            rl.rlim_cur > FD_RESERVE + 16 ? (unsigned long)rl.rlim_cur - FD_RESERVE : 16;
        aos_log_warn("aosd",
                     "open files are limited to %llu: --http-max-conns lowered from %lu to %lu",
                     (unsigned long long)rl.rlim_cur, c->http_max_conns, fit);
        c->http_max_conns = fit;
    }
}

static int run(aos_daemon_t *d, aos_err_t *err)
{
    int rc;
    aos_config_t *c = &d->cfg;
    if ((rc = make_dir(c->data_dir, err)))
        return rc;
    unsigned patterns; /* wiring: redact -- before anything is stored or sent */
    char bad[64];
    if (aos_redact_parse_patterns(c->redact_patterns, &patterns, bad) < 0)
        return aos_err_set(err, AOS_EINVAL, "--redact-patterns: unknown pattern '%s'", bad);
    aos_redact_set_patterns(aos_redact_global(), patterns);
    char url[4200];
    if (c->store)
        snprintf(url, sizeof(url), "%s", c->store);
    else
        snprintf(url, sizeof(url), "sqlite:%s/aos.db", c->data_dir);
    d->loop = uv_default_loop();
    if ((rc = aos_store_open(&d->store, d->loop, url, err)))
        return rc;
    if ((rc = reopen_store(d, url, err))) /* wiring: settings */
        return rc;
    if ((rc = aos_secret_box_open(&d->secrets, c->data_dir, c->master_key, err)))
        return rc;
    /* wiring: settings -- stored settings overlay the defaults (a flag wins) */
    aos_settings_cfg_t sc = {.loop = d->loop,
                             .store = d->store,
                             .secrets = d->secrets,
                             .config = c,
                             .data_dir = c->data_dir,
                             .master_key_from_flag = c->master_key && *c->master_key,
                             .apply = apply_settings,
                             .on_secret = on_runtime_secret,
                             .on_secret_change = on_runtime_secret_change,
                             .data = d};
    if ((rc = aos_settings_new(&d->settings, &sc, err)))
        return rc;
    aos_role_t anon = aos_role_parse(c->mcp_anonymous_role);
    if (anon == AOS_ROLE_NONE || anon > AOS_ROLE_OPERATOR)
        return aos_err_set(err, AOS_EINVAL,
                           "--mcp-anonymous-role must be viewer or operator, not '%.32s'",
                           c->mcp_anonymous_role ? c->mcp_anonymous_role : "");
    if ((rc = aos_auth_new(&d->auth, d->store, c->mcp_anonymous, anon, err)))
        return rc;
    if (c->metrics_allow && (rc = aos_auth_allow_scrape(d->auth, c->metrics_allow, err)))
        return rc; /* checked in main() already */
    if ((rc = aos_auth_bootstrap(d->auth, c->bootstrap_token, &d->generated, err)))
        return rc;
    aos_auth_login_cfg_t alc = {.loop = d->loop,
                                .box = d->secrets,
                                .idle_s = (unsigned)c->login_idle_s,
                                .max_age_s = (unsigned)c->login_max_age_s,
                                .cookie_secure = c->cookie_secure,
                                .lockout_after = (unsigned)c->login_lockout_after,
                                .lockout_s = (unsigned)c->login_lockout_s};
    if ((rc = aos_auth_login_start(d->auth, &alc, err)))
        return rc;
    if (!(d->metrics = aos_metrics_new()))
        return aos_err_set(err, AOS_ENOMEM, NULL);
    aos_metrics_set_max_series(d->metrics, (size_t)c->metrics_max_series);
    if ((rc = aos_httpc_new(&d->httpc, d->loop, err)))
        return rc;
    /* wiring: trace -- create (the gateway makes spans), add routes below */
    aos_trace_cfg_t tc = {.loop = d->loop,
                          .store = d->store,
                          .metrics = d->metrics,
                          .version = AOS_VERSION,
                          .retention_days = c->trace_retention_days,
                          .retention_spans = c->trace_retention_spans,
                          .retention_check_s = c->trace_retention_check_s,
                          .buffer = c->trace_buffer,
                          .sample_ratio = c->trace_sample,
                          .keep_errors_off = !c->trace_keep_errors};
    if ((rc = aos_trace_new(&d->trace, &tc, err)))
        return rc;
    aos_gateway_cfg_t gc = {.loop = d->loop,
                            .httpc = d->httpc,
                            .store = d->store,
                            .secrets = d->secrets,
                            .metrics = d->metrics,
                            .trace = d->trace,
                            .allowed_hosts = c->allowed_hosts,
                            .allowed_origins = c->allowed_origins,
                            .session_idle_s = (unsigned)c->session_idle_s,
                            .replay_bytes = (size_t)c->mcp_replay_bytes,
                            .replay_total = (size_t)c->mcp_replay_total,
                            .replay_s = (unsigned)c->mcp_replay_s,
                            .sse_hold_ms = (unsigned)c->mcp_sse_hold_ms,
                            .version = AOS_VERSION,
                            .on_unseal = on_unseal,
                            .on_forget = on_forget,
                            .unseal_data = d,
                            .open_secret = open_entry_secret,
                            .open_secret_data = d,
                            .emit = emit_event,
                            .emit_data = d};
    if ((rc = aos_gateway_new(&d->gateway, &gc, err)))
        return rc;
    fit_fd_limit(c);
    aos_http_cfg_t hc = {.listen = c->listen,
                         .tls_cert = c->tls_cert,
                         .tls_key = c->tls_key,
                         .max_body = c->max_body,
                         .conn_limit = (unsigned)c->http_max_conns,
                         .conn_per_ip = (unsigned)c->http_max_conns_per_ip,
                         .head_timeout_s = (unsigned)c->http_head_timeout_s,
                         .conn_timeout_s = (unsigned)c->http_idle_timeout_s,
                         .body_memory = c->http_body_memory,
                         .writers = (unsigned)c->http_writers};
    if ((rc = aos_http_new(&d->http, d->loop, &hc, err)))
        return rc;
    aos_http_set_authorizer(d->http, aos_auth_authorize, d->auth);
    aos_http_set_gate(d->http, aos_settings_gate, d->settings); /* wiring: settings */
    if ((rc = aos_settings_add_routes(d->settings, d->http)))
        return aos_err_set(err, rc, "unable to add the settings routes");
    if ((rc = aos_auth_add_routes(d->auth, d->http)))
        return aos_err_set(err, rc, "unable to add the auth routes");
    d->api.metrics = d->metrics;
    d->api.store = d->store;
    d->api.version = AOS_VERSION;
    d->api.started_ms = uv_hrtime() / 1000000;
    aos_api_add_routes(&d->api, d->http);
    if (!(d->audit = aos_audit_new(d->store)) || aos_audit_add_routes(d->audit, d->http) ||
        aos_audit_retain(d->audit, d->loop, (unsigned)c->audit_retention_days))
        return aos_err_set(err, AOS_ENOMEM, "unable to add the audit routes"); /* wiring: audit */
    aos_gateway_add_routes(d->gateway, d->http);
    if ((rc = aos_trace_add_routes(d->trace, d->http))) /* wiring: trace */
        return aos_err_set(err, rc, "unable to add the trace routes");
    /* wiring: monitor -- create, add routes */
    aos_monitor_cfg_t moc = {.loop = d->loop,
                             .metrics = d->metrics,
                             .store = d->store,
                             .http = d->http,
                             .history_series = (size_t)c->metrics_history_series,
                             .trace_keep = trace_keep, /* wiring: trace -- error traces kept */
                             .trace_keep_data = d->trace};
    if ((rc = aos_monitor_new(&d->monitor, &moc, err)) ||
        (rc = aos_monitor_add_routes(d->monitor, d->http)))
        return rc;
    /* wiring: bus -- create, add routes */
    aos_bus_cfg_t bc = {.loop = d->loop,
                        .store = d->store,
                        .metrics = d->metrics,
                        .heartbeat_ms = (unsigned)c->events_heartbeat_ms,
                        .stream_buffer = (size_t)c->events_buffer};
    if ((rc = aos_bus_new(&d->bus, &bc, err)) || (rc = aos_bus_add_routes(d->bus, d->http)))
        return rc;
    if ((rc = aos_monitor_analyze(d->monitor, d->bus))) /* wiring: monitor -- the Analyzer */
        return aos_err_set(err, rc, "unable to start the analyzer");
    /* wiring: logs -- create, add routes, add the "logs" built-in to the gateway */
    aos_logs_cfg_t lc = {.loop = d->loop,
                         .store = d->store,
                         .metrics = d->metrics,
                         .retention_days = c->log_retention_days,
                         .retention_rows = c->log_retention_rows,
                         .retention_check_s = c->log_retention_check_s};
    if ((rc = aos_logs_new(&d->logs, &lc, err)) || (rc = aos_logs_add_routes(d->logs, d->http)))
        return rc;
    if ((rc = start_telemetry(d, err))) /* wiring: telemetry */
        return rc;
    aos_logs_set_redactor(d->logs, aos_redact_field, aos_redact_global()); /* wiring: redact */
    if ((rc = aos_gateway_add_builtin(d->gateway, aos_logs_builtin(d->logs))))
        return aos_err_set(err, rc, "unable to add the built-in server 'logs'");
    /* wiring: nettools -- the built-in servers git and http */
    aos_tools_http_cfg_t htc = {.loop = d->loop,
                                .httpc = d->httpc,
                                .data_dir = c->data_dir,
                                .store = d->store,
                                .open_secret = open_header_secret,
                                .open_data = d};
    if ((rc = aos_tools_git_new(&d->git_tools, d->loop, err)) ||
        (rc = aos_tools_http_new(&d->http_tools, &htc, err)))
        return rc;
    if ((rc = aos_gateway_add_builtin(d->gateway, aos_tools_git_builtin(d->git_tools))) ||
        (rc = aos_gateway_add_builtin(d->gateway, aos_tools_http_builtin(d->http_tools))))
        return aos_err_set(err, rc, "unable to add the built-in servers 'git' and 'http'");
    /* wiring: tools -- the workspace tools and skills as built-in servers */
    aos_tools_cfg_t tcfg = {.loop = d->loop, .data_dir = c->data_dir};
    if ((rc = aos_tools_new(&d->tools, &tcfg, err)))
        return rc;
    if ((rc = aos_tools_sweep_start(d->tools)))
        return aos_err_set(err, rc, "unable to start the sweep of idempotency records");
    const aos_builtin_t *tb[] = {aos_tools_files(d->tools), aos_tools_db(d->tools),
                                 aos_tools_csv(d->tools), aos_tools_viz(d->tools)};
    for (size_t i = 0; i < sizeof(tb) / sizeof(tb[0]); i++)
        if ((rc = aos_gateway_add_builtin(d->gateway, tb[i])))
            return aos_err_set(err, rc, "unable to add the built-in server '%s'", tb[i]->name);
    /* wiring: llm -- the client the planner (and later the Critic, agents,
     * memory) calls, when a model server is configured; it hands its key to
     * the redactor through on_unseal */
    if (c->llm_base_url && *c->llm_base_url) {
        char *stored_key = c->llm_api_key ? NULL : aos_settings_llm_key(d->settings);
        d->llm_key_flag = c->llm_api_key != NULL;
        aos_llm_cfg_t mc = {.base_url = c->llm_base_url,
                            .model = c->llm_model,
                            .embed_model = c->llm_embed_model,
                            .api_key = c->llm_api_key ? c->llm_api_key : stored_key,
                            .temperature = c->llm_temperature,
                            .max_tokens = (unsigned)c->llm_max_tokens,
                            .timeout_ms = (unsigned)c->llm_timeout_ms,
                            .retries = (unsigned)c->llm_retries,
                            .price_in_cny = c->llm_price_in_cny,
                            .price_out_cny = c->llm_price_out_cny,
                            .metrics = d->metrics,
                            .on_secret = on_unseal,
                            .secret_data = d};
        rc = aos_llm_new(&d->llm, d->loop, d->httpc, &mc, err);
        aos_secret_wipe(stored_key);
        if (rc) {
            char why[sizeof(err->msg)];
            snprintf(why, sizeof(why), "%s", aos_err_msg(err));
            return aos_err_set(err, rc, "llm: %s", why);
        }
        aos_log_info("aosd", "LLM client: model %s", c->llm_model);
        if (c->analyzer_llm) /* wiring: monitor -- the Analyzer asks it */
            aos_monitor_set_llm(d->monitor, d->llm);
    } else if (c->llm_api_key) {
        aos_log_warn("aosd", "--llm-api-key is ignored without --llm-base-url");
    }
    /* wiring: memory -- create (loads the vector index), add routes and the "memory" built-in;
     * after the llm client, which --memory-embed llm embeds with */
    /* (after the stored settings: llm.base_url and llm.embed_model may come from them) */
    if (!strcmp(c->memory_embed, "llm") && (!d->llm || !c->llm_embed_model))
        return aos_err_set(err, AOS_EINVAL,
                           "--memory-embed llm needs --llm-base-url and --llm-embed-model");
    aos_memory_cfg_t memc = {.loop = d->loop,
                             .store = d->store,
                             .principal_of = memory_principal,
                             .principal_data = d->auth,
                             .hnsw_min_items = (size_t)c->memory_hnsw_min_items,
                             .hnsw_threads = (int)c->memory_hnsw_threads,
                             .hnsw_m = (int)c->memory_hnsw_m,
                             .hnsw_efc = (int)c->memory_hnsw_efc,
                             .hnsw_ef = (int)c->memory_hnsw_ef,
                             .data_dir = c->data_dir,
                             /* --memory-embed llm: the model server's vectors */
                             .llm = strcmp(c->memory_embed, "llm") ? NULL : d->llm,
                             .embed_model = c->llm_embed_model};
    if ((rc = aos_memory_new(&d->memory, &memc, err)) ||
        (rc = aos_memory_add_routes(d->memory, d->http)))
        return rc;
    if ((rc = aos_gateway_add_builtin(d->gateway, aos_memory_builtin(d->memory))))
        return aos_err_set(err, rc, "unable to add the built-in server 'memory'");
    /* wiring: orch -- create, add routes; started after the gateway is loaded */
    aos_orch_cfg_t oc = {.loop = d->loop,
                         .store = d->store,
                         .bus = d->bus,
                         .gateway = d->gateway,
                         .metrics = d->metrics,
                         .trace = d->trace,
                         .llm = d->llm,
                         .memory = d->memory, /* wiring: memory -- constraints.memory */
                         .data_dir = c->data_dir,
                         .max_running = (unsigned)c->orch_max_running,
                         .max_per_project = (unsigned)c->orch_max_per_project,
                         .retention_days = (unsigned)c->episode_retention_days,
                         .env_open = open_env_secret, /* wiring: settings */
                         .env_data = d};
    if ((rc = aos_orch_new(&d->orch, &oc, err)) || (rc = aos_orch_add_routes(d->orch, d->http)))
        return rc;
    /* wiring: sandbox -- probes bubblewrap, loads schedules, adds the "shell" built-in */
    aos_sandbox_cfg_t sbc = {.loop = d->loop,
                             .store = d->store,
                             .secrets = d->secrets,
                             .data_dir = c->data_dir,
                             .on_unseal = on_unseal,
                             .unseal_data = d,
                             .env_open = open_env_secret, /* wiring: settings */
                             .env_data = d,
                             .metrics = d->metrics};
    if ((rc = aos_sandbox_new(&d->sandbox, &sbc, err)) ||
        (rc = aos_sandbox_add_routes(d->sandbox, d->http)) ||
        (rc = aos_sandbox_share_workspaces(c->data_dir, err)))
        return rc;
    if ((rc = aos_gateway_add_builtin(d->gateway, aos_sandbox_shell_builtin(d->sandbox))))
        return aos_err_set(err, rc, "unable to add the built-in server 'shell'");
    /* wiring: agents -- routes over the store; replicas, tokens, register-mcp, logs */
    aos_agents_cfg_t agc = {.loop = d->loop,
                            .store = d->store,
                            .secrets = d->secrets,
                            .auth = d->auth,
                            .gateway = d->gateway,
                            .logs = d->logs,
                            .http = d->http,
                            .httpc = d->httpc,
                            .metrics = d->metrics,
                            .listen = c->listen,
                            .env_open = open_env_secret, /* wiring: settings */
                            .env_data = d,
                            .emit = emit_event,
                            .emit_data = d,
                            .on_unseal = on_unseal,
                            .unseal_data = d};
    if ((rc = aos_agents_new(&d->agents, &agc, err)) ||
        (rc = aos_agents_add_routes(d->agents, d->http)))
        return rc;
    /* secrets aosd holds never reach a log, event, span, audit row or error */
    const char *secrets[] = {c->bootstrap_token, c->master_key, d->generated};
    for (size_t i = 0; i < sizeof(secrets) / sizeof(secrets[0]); i++)
        if (secrets[i])
            on_unseal(secrets[i], d);
    aos_config_forget_secrets(c); /* the box and the owner have them now */
    aos_logs_capture(d->logs);
    if ((rc = aos_http_start(d->http, err)))
        return rc;
    if ((rc = aos_gateway_load(d->gateway, err)))
        return rc;
    if ((rc = aos_orch_start(d->orch, err))) /* wiring: orch -- resumes unfinished tasks */
        return rc;
    if ((rc = aos_agents_load(d->agents, err))) /* wiring: agents -- registered ones served */
        return rc;

    uv_signal_init(d->loop, &d->sigint);
    uv_signal_init(d->loop, &d->sigterm);
    d->sigint.data = d->sigterm.data = d;
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    d->signals = 1;

    char host[256];
    snprintf(host, sizeof(host), "%s", c->listen);
    char *colon = strrchr(host, ':');
    if (colon)
        *colon = '\0';
    if (!strcmp(host, "0.0.0.0") || !strcmp(host, "[::]"))
        snprintf(host, sizeof(host), "127.0.0.1");
    const char *scheme = aos_http_is_tls(d->http) ? "https" : "http";
    aos_log(AOS_LOG_INFO, "aosd",
            json_pack("{s:s, s:i, s:s}", "listen", c->listen, "port", aos_http_port(d->http),
                      "store", aos_store_backend_name(d->store)),
            "aosd %s listening on %s://%s:%u", AOS_VERSION, scheme, host, aos_http_port(d->http));
    printf("aosd %s ready: %s://%s:%u/\n", AOS_VERSION, scheme, host, aos_http_port(d->http));
    if (d->generated) {
        printf("owner token (shown once, keep it): %s\n", d->generated);
        forget(d->generated);
        d->generated = NULL;
    }
    fflush(stdout);

    uv_run(d->loop, UV_RUN_DEFAULT);
    return 0;
}

/* NULL, or what is wrong with the LLM settings (the client checks the URL). */
static const char *check_llm(const aos_config_t *c)
{
    if (!c->llm_base_url || !*c->llm_base_url)
        return NULL;
    if (!c->llm_model || !*c->llm_model)
        return "--llm-model is required with --llm-base-url";
    if (c->llm_temperature > 2)
        return "--llm-temperature must be from 0 to 2 (negative: not sent)";
    if (c->llm_price_in_cny < 0 || c->llm_price_out_cny < 0)
        return "--llm-price-in-cny and --llm-price-out-cny must be zero or more";
    if (c->llm_timeout_ms < 1 || c->llm_timeout_ms > 86400000)
        return "--llm-timeout-ms must be from 1 to 86400000";
    if (c->llm_retries > 10)
        return "--llm-retries must be from 0 to 10";
    if (c->llm_max_tokens > 10000000)
        return "--llm-max-tokens must be at most 10000000";
    if (c->llm_embed_model && (!*c->llm_embed_model || strlen(c->llm_embed_model) > 200))
        return "--llm-embed-model must be 1 to 200 bytes";
    return NULL;
}

/* NULL, or what is wrong with the HTTP limits (or the memory graph's). */
static const char *check_http_limits(const aos_config_t *c)
{
    if (c->http_max_conns < 1 || c->http_max_conns > 1000000)
        return "--http-max-conns must be from 1 to 1000000";
    if (c->http_max_conns_per_ip > 1000000)
        return "--http-max-conns-per-ip must be from 0 (no limit) to 1000000";
    if (c->http_head_timeout_s < 1 || c->http_head_timeout_s > 3600)
        return "--http-head-timeout must be from 1 to 3600 seconds";
    if (c->http_idle_timeout_s < 1 || c->http_idle_timeout_s > 86400)
        return "--http-idle-timeout must be from 1 to 86400 seconds";
    if (c->max_body < 1 || c->max_body > ((size_t)1 << 40))
        return "--max-body must be from 1 byte to 1 TiB";
    if (c->http_body_memory <= c->max_body || c->http_body_memory > ((size_t)1 << 40))
        return "--http-body-memory must be larger than --max-body (and at most 1 TiB)";
    if (c->memory_hnsw_threads < 1 || c->memory_hnsw_threads > 8)
        return "--memory-hnsw-threads must be from 1 to 8";
    if (c->memory_hnsw_min_items > 100000000)
        return "--memory-hnsw-min-items must be from 0 (never) to 100000000";
    if (!c->memory_embed || (strcmp(c->memory_embed, "builtin") && strcmp(c->memory_embed, "llm")))
        return "--memory-embed must be builtin or llm";
    if (c->memory_hnsw_m < 2 || c->memory_hnsw_m > 64)
        return "--memory-hnsw-m must be from 2 to 64";
    if (c->memory_hnsw_efc < 1 || c->memory_hnsw_efc > 4096)
        return "--memory-hnsw-efc must be from 1 to 4096";
    if (c->memory_hnsw_ef > 4096)
        return "--memory-hnsw-ef must be from 0 (max(64, k)) to 4096";
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "agent")) /* wiring: agents -- the runtime */
        return aos_agent_runtime_main(argc - 1, argv + 1);
    aos_daemon_t d;
    memset(&d, 0, sizeof(d));
    aos_err_t err = {0, ""};
    signal(SIGPIPE, SIG_IGN);
    aos_config_init(&d.cfg);
    if (aos_config_load(&d.cfg, argc, argv, &err)) {
        fprintf(stderr, "aosd: %s\n", aos_err_msg(&err));
        aos_config_usage(argv[0]);
        aos_config_release(&d.cfg);
        return 2;
    }
    if (d.cfg.help || d.cfg.version) {
        if (d.cfg.help)
            aos_config_usage(argv[0]);
        else
            printf("aosd %s (malloc: %s)\n", AOS_VERSION, AOS_MALLOC_NAME);
        aos_config_release(&d.cfg);
        return 0;
    }
    int lvl = aos_log_parse_level(d.cfg.log_level);
    if (lvl < 0) {
        fprintf(stderr, "aosd: unknown log level '%s'\n", d.cfg.log_level);
        return 2;
    }
    aos_log_set_level((aos_log_level_t)lvl);
    if (d.cfg.http_writers > 64) {
        fprintf(stderr, "aosd: --http-writers must be from 0 to 64, got %lu\n", d.cfg.http_writers);
        aos_config_release(&d.cfg);
        return 2;
    }
    if (d.cfg.metrics_allow && aos_auth_scrape_list_check(d.cfg.metrics_allow, &err)) {
        fprintf(stderr, "aosd: --metrics-allow: %s\n", aos_err_msg(&err));
        aos_config_release(&d.cfg);
        return 2;
    }
    aos_cidr_list_t allow; /* wiring: settings */
    if (d.cfg.ip_allowlist && aos_cidr_list_parse(d.cfg.ip_allowlist, &allow, &err)) {
        fprintf(stderr, "aosd: --ip-allowlist: %s\n", aos_err_msg(&err));
        aos_config_release(&d.cfg);
        return 2;
    }
    if (d.cfg.ip_allowlist)
        aos_cidr_list_release(&allow);
    const char *bad = check_http_limits(&d.cfg);
    if (!bad)
        bad = check_llm(&d.cfg);
    if (bad) {
        fprintf(stderr, "aosd: %s\n", bad);
        aos_config_release(&d.cfg);
        return 2;
    }
    int rc = run(&d, &err);
    if (rc) {
        aos_log_error("aosd", "%s", aos_err_msg(&err));
        /* what run() started stops as on a signal: the store, the gateway's
         * children and the log service keep the loop alive until then */
        if (d.loop) {
            shutdown_daemon(&d, "start-up failed");
            uv_run(d.loop, UV_RUN_DEFAULT);
        }
    }
    /* what run() opened, in reverse order */
    aos_monitor_shutdown(d.monitor); /* wiring: monitor -- before what it observes goes */
    if (d.http) {
        aos_http_stop(d.http);
        aos_http_free(d.http);
    }
    if (d.gateway)
        aos_gateway_free(d.gateway);
    aos_llm_free(d.llm);                 /* wiring: llm */
    aos_telemetry_shutdown(d.telemetry); /* wiring: telemetry -- before httpc */
    if (d.httpc)
        aos_httpc_free(d.httpc);
    aos_bus_free(d.bus);         /* wiring: bus */
    aos_audit_stop(d.audit);     /* wiring: audit */
    aos_tools_stop(d.tools);     /* wiring: tools */
    aos_logs_shutdown(d.logs);   /* wiring: logs */
    aos_trace_shutdown(d.trace); /* wiring: trace */
    if (d.loop)
        uv_run(d.loop, UV_RUN_DEFAULT);
    aos_metrics_free(d.metrics);
    aos_auth_free(d.auth);
    aos_settings_free(d.settings); /* wiring: settings */
    aos_secret_box_free(d.secrets);
    aos_store_close(d.store);
    aos_audit_free(d.audit); /* wiring: audit -- after the store, whose callbacks reach it */
    aos_logs_free(d.logs);   /* wiring: logs -- after the store, whose callbacks reach it */
    aos_trace_free(d.trace); /* wiring: trace -- likewise */
    aos_telemetry_free(d.telemetry);   /* wiring: telemetry -- likewise */
    aos_monitor_free(d.monitor);       /* wiring: monitor -- likewise */
    aos_tools_http_free(d.http_tools); /* wiring: nettools -- after httpc ended their calls */
    aos_tools_git_free(d.git_tools);
    aos_tools_free(d.tools);   /* wiring: tools -- after the loop ran out: no work in flight */
    aos_memory_free(d.memory); /* wiring: memory -- after the store, whose callbacks reach it */
    if (d.loop)
        uv_loop_close(d.loop);
    forget(d.generated);
    aos_config_release(&d.cfg);
    if (!rc)
        aos_log_info("aosd", "stopped");
    return rc ? 1 : 0;
}
