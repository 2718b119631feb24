/* monitor.h - the data behind the UI's Monitor (issue 18): a metric
 * history with no Prometheus, the metrics of the HTTP server, the store
 * and the process, trace search and the topology of calls.
 *
 *   GET /api/metrics/query   a metric's series from the built-in history
 *   GET /api/traces          traces that started in a window (search)
 *   GET /api/topology        services, agents, MCP servers, tools and
 *                            models, and the calls between them
 *   GET /api/analyzer/suggestions  repair suggestions from the anomalies
 *                            and failed tasks on the bus (the Analyzer)
 *
 * (all Viewer). The history samples the whole registry once a second on a
 * libuv timer into rings of 1 s for an hour, 1 min for a day and 1 h for
 * 30 days (src/monitor/internal.h: what a slot holds, the memory bound).
 * It is saved to the store (migration 0026) each minute and at
 * aos_monitor_shutdown, and read back by aos_monitor_new: a query after a
 * restart answers for the time before it (the minute aosd was down shows
 * as missing slots, and up to a minute before a crash is lost).
 *
 *   GET /api/metrics/names   the names, types and label sets the history
 *                            holds (?prefix= narrows them)
 *
 * Metrics it adds to the registry: the process's (aos_metrics_process),
 * OpenTelemetry's http.server.request.duration as
 * http_server_request_duration_seconds{http_request_method, http_route,
 * http_response_status_code} (the route's pattern, not the path, so the
 * label stays bounded; a method HTTP does not define is "_OTHER", as
 * OpenTelemetry names it), http_server_active_requests, the connection
 * counts, the store worker's jobs, queue and time, and the history's own
 * size.
 *
 * Loop thread only. */
#ifndef AOS_MONITOR_H
#define AOS_MONITOR_H

#include "bus/bus.h"
#include "llm/llm.h"
#include "err/err.h"
#include "http/http.h"
#include "metrics/metrics.h"
#include "store/store.h"

#include <uv.h>

typedef struct aos_monitor_s aos_monitor_t;

typedef struct {
    uv_loop_t *loop;        /* borrowed */
    aos_metrics_t *metrics; /* borrowed */
    aos_store_t *store;     /* borrowed */
    aos_http_t *http;       /* borrowed: observed for the HTTP metrics */
    size_t history_series;  /* series the history keeps (--metrics-history-series); 0: none */
    /* The tracer's aos_trace_keep, asked by the Analyzer for every trace an
     * anomaly names (it keeps the trace whole; the suggestion links to
     * the trace only when its spans are stored). NULL: every trace is
     * taken as stored. */
    int (*trace_keep)(const char *trace_id, void *data);
    void *trace_keep_data;
} aos_monitor_cfg_t;

/* Registers the metrics, observes http and starts the history's timer. */
int aos_monitor_new(aos_monitor_t **out, const aos_monitor_cfg_t *cfg, aos_err_t *err);
int aos_monitor_add_routes(aos_monitor_t *mo, aos_http_t *http);
/* Starts the Analyzer on bus (GET /api/analyzer/suggestions; analyzer.c):
 * after the bus exists, before the loop runs. */
int aos_monitor_analyze(aos_monitor_t *mo, aos_bus_t *bus);
/* The model the Analyzer asks for repair suggestions (borrowed, may be
 * NULL); aos_monitor_shutdown stops using it, so call that before freeing
 * llm. */
void aos_monitor_set_llm(aos_monitor_t *mo, aos_llm_t *llm);
/* Stops the history's timer (it reads state other services own: stop it
 * before they go). Idempotent. */
void aos_monitor_shutdown(aos_monitor_t *mo);
/* After the loop ran the close callbacks of aos_monitor_shutdown and the
 * store's jobs ended. May be NULL. */
void aos_monitor_free(aos_monitor_t *mo);

#endif
