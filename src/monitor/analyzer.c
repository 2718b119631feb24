/* analyzer.c - the Analyzer (issue 18, SPEC §10 M1): a subscriber of the
 * bus that groups anomaly.* and failed task.receipt events and turns each
 * group into a repair suggestion by offline rules, listed at
 * GET /api/analyzer/suggestions (a Viewer).
 *
 * Groups: an anomaly by its error fingerprint (the gateway's hash of
 * server, tool, error class and normalized message), else by server, tool
 * and error; a receipt that did not end "done" by the class of its error
 * (budget, deadline, other) and the agent when the payload names one. A
 * group keeps its count, first and last time, the last five trace ids,
 * the last card id and the fields of its last event; at most GROUPS_MAX
 * groups, the least recently seen dropped first.
 *
 * Rules (aos__analyzer_suggest, pure):
 *   timeout_storm    anomalies of error class "timeout": raise the
 *                    server's timeout_ms, or look at its health
 *   breaker_opens    class "unavailable" (refused: breaker open, queue
 *                    full): the server's last errors and its health
 *   server_errors    class "upstream_error": the server's last errors
 *   repeated_failure any other anomaly: the failing calls' traces
 *   budget_breach    receipts over their budget: the costliest steps are
 *                    in the episode
 *   deadline_missed  receipts past their deadline: raise the deadline or
 *                    look at the slow steps
 *   task_failures    other failed receipts
 * Each suggestion carries actions: {label, method, path[, field]} a UI
 * shows on the anomaly's card (card_id) - requests to aosd's own API.
 *
 * The subscription starts REPLAY events back, so a restart rebuilds the
 * recent groups from the durable bus. No LLM suggestion yet (NEXT.md). */
#include "monitor/internal.h"
#include "map/map.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUPS_MAX 256
#define TRACES_MAX 5
#define REPLAY     5000 /* events read back at start */
#define LIST_MAX   256

struct group {
    char key[160];
    int receipt;  /* 0: anomaly */
    json_t *last; /* the last event's payload, with type */
    char card_id[136];
    int64_t count;
    int64_t first_ms, last_ms;
    char traces[TRACES_MAX][40];
    int ntraces;
    struct group *prev, *next; /* most recent first */
};

struct aos__analyzer_s {
    aos_bus_sub_t *sub;
    aos_map_t groups;
    size_t n;
    struct group *head, *tail;
};

static const char *str_or_empty(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void unlink_group(aos__analyzer_t *a, struct group *g)
{
    if (g->prev)
        g->prev->next = g->next;
    else
        a->head = g->next;
    if (g->next)
        g->next->prev = g->prev;
    else
        a->tail = g->prev;
    g->prev = g->next = NULL;
}

static void push_front(aos__analyzer_t *a, struct group *g)
{
    g->next = a->head;
    if (a->head)
        a->head->prev = g;
    a->head = g;
    if (!a->tail)
        a->tail = g;
}

static void group_free(struct group *g)
{
    json_decref(g->last);
    free(g);
}

/* The class of a receipt's error text. */
static const char *receipt_class(const char *error)
{
    if (!error)
        return "failed";
    if (strstr(error, "budget"))
        return "budget";
    if (strstr(error, "deadline"))
        return "deadline";
    return "failed";
}

void aos__analyzer_add(aos__analyzer_t *a, const json_t *ev, int64_t at_ms)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const json_t *p = json_object_get(ev, "payload");
    if (!type || !json_is_object(p))
        return;
    char key[160];
    int receipt = 0;
    if (!strncmp(type, "anomaly.", 8)) {
        const char *fp = json_string_value(json_object_get(p, "fingerprint"));
        if (fp)
            snprintf(key, sizeof(key), "anomaly:%.32s", fp);
        else
            snprintf(key, sizeof(key), "anomaly:%.40s/%.40s/%.40s",
                     str_or_empty(json_object_get(p, "server")),
                     str_or_empty(json_object_get(p, "tool")),
                     str_or_empty(json_object_get(p, "error")));
    } else if (!strcmp(type, "task.receipt")) {
        const char *status = json_string_value(json_object_get(p, "status"));
        if (!status || !strcmp(status, "done"))
            return;
        receipt = 1;
        snprintf(key, sizeof(key), "receipt:%s:%.60s",
                 receipt_class(json_string_value(json_object_get(p, "error"))),
                 str_or_empty(json_object_get(p, "agent")));
    } else {
        return;
    }
    struct group *g = aos_map_get(&a->groups, key);
    if (!g) {
        if (a->n >= GROUPS_MAX) { /* the least recently seen goes */
            struct group *old = a->tail;
            unlink_group(a, old);
            aos_map_del(&a->groups, old->key);
            group_free(old);
            a->n--;
        }
        if (!(g = calloc(1, sizeof(*g))))
            return;
        snprintf(g->key, sizeof(g->key), "%s", key);
        g->receipt = receipt;
        g->first_ms = at_ms;
        if (aos_map_put(&a->groups, g->key, g)) {
            free(g);
            return;
        }
        a->n++;
    } else {
        unlink_group(a, g);
    }
    push_front(a, g);
    g->count++;
    g->last_ms = at_ms;
    json_decref(g->last);
    g->last = json_deep_copy(p);
    if (g->last)
        json_object_set_new(g->last, "type", json_string(type));
    const char *card = json_string_value(json_object_get(ev, "card_id"));
    if (card)
        snprintf(g->card_id, sizeof(g->card_id), "%s", card);
    const char *trace = json_string_value(json_object_get(ev, "trace_id"));
    if (trace && *trace) {
        int seen = 0;
        for (int i = 0; i < g->ntraces && !seen; i++)
            seen = !strcmp(g->traces[i], trace);
        if (!seen) { /* newest first */
            int n = g->ntraces < TRACES_MAX ? g->ntraces + 1 : TRACES_MAX;
            memmove(g->traces[1], g->traces[0], (size_t)(n - 1) * sizeof(g->traces[0]));
            snprintf(g->traces[0], sizeof(g->traces[0]), "%s", trace);
            g->ntraces = n;
        }
    }
}

/* ---- rules ------------------------------------------------------------------------ */

static json_t *action(const char *label, const char *method, json_t *path, const char *field)
{
    json_t *a = json_pack("{s:s, s:s, s:o}", "label", label, "method", method, "path", path);
    if (a && field)
        json_object_set_new(a, "field", json_string(field));
    return a;
}

json_t *aos__analyzer_suggest(int receipt, const json_t *last, int64_t count, const char *trace)
{
    const char *server = json_string_value(json_object_get(last, "server"));
    const char *tool = json_string_value(json_object_get(last, "tool"));
    const char *error = json_string_value(json_object_get(last, "error"));
    const char *rule, *title_fmt, *detail;
    json_t *actions = json_array();
    if (!receipt) {
        server = server ? server : "";
        tool = tool ? tool : "";
        if (error && !strcmp(error, "timeout")) {
            rule = "timeout_storm";
            title_fmt = "Calls to %s/%s keep timing out";
            detail = "The same call timed out again and again. Raise the server's timeout_ms if "
                     "the tool is slow by nature, or look at the server's health: a server that "
                     "stopped answering times out every call.";
            json_array_append_new(actions,
                                  action("Raise timeout_ms", "PATCH",
                                         json_sprintf("/mcp/registry/%s", server), "timeout_ms"));
            json_array_append_new(actions, action("Server health", "GET",
                                                  json_sprintf("/mcp/registry/%s", server), NULL));
        } else if (error && !strcmp(error, "unavailable")) {
            rule = "breaker_opens";
            title_fmt = "Calls to %s/%s are refused again and again";
            detail = "The server's breaker keeps opening (or its queue is full): its last "
                     "errors say why it fails; its health says whether it is up.";
            json_array_append_new(actions,
                                  action("Last errors", "GET",
                                         json_sprintf("/api/logs?level=warn&q=%s", server), NULL));
            json_array_append_new(actions, action("Server health", "GET",
                                                  json_sprintf("/mcp/registry/%s", server), NULL));
        } else if (error && !strcmp(error, "upstream_error")) {
            rule = "server_errors";
            title_fmt = "%s fails on %s again and again";
            detail = "The server itself fails (it crashed or answered an error): its last errors "
                     "and its stderr, in the logs, say why.";
            json_array_append_new(actions,
                                  action("Last errors", "GET",
                                         json_sprintf("/api/logs?level=warn&q=%s", server), NULL));
        } else {
            rule = "repeated_failure";
            title_fmt = "%s/%s fails the same way again and again";
            detail = "The same failure repeats: the traces of the failing calls show where.";
        }
    } else {
        const char *cls = receipt_class(error);
        server = "";
        tool = "";
        if (!strcmp(cls, "budget")) {
            rule = "budget_breach";
            title_fmt = "Tasks stop at their budget%s%s";
            detail = "Tasks ended over their budget_cny: the episode lists each step's cost; "
                     "the costliest steps are where to cut (a cheaper model, fewer retries), "
                     "or raise the budget.";
        } else if (!strcmp(cls, "deadline")) {
            rule = "deadline_missed";
            title_fmt = "Tasks miss their deadline%s%s";
            detail = "Tasks ran past their deadline: the episode shows the slow steps; raise the "
                     "deadline or the steps' timeouts.";
        } else {
            rule = "task_failures";
            title_fmt = "Tasks fail%s%s";
            detail = "Tasks ended failed: their episodes show the failing step and its error.";
        }
    }
    if (trace) { /* its log lines are always kept; its spans when it was sampled */
        json_array_append_new(actions, action("Log lines", "GET",
                                              json_sprintf("/api/logs?trace_id=%s", trace), NULL));
        json_array_append_new(actions,
                              action("Trace", "GET", json_sprintf("/api/traces/%s", trace), NULL));
        if (receipt)
            json_array_append_new(
                actions, action("Episode", "GET", json_sprintf("/api/episodes/%s", trace), NULL));
    }
    char title[400];
    snprintf(title, sizeof(title), title_fmt, server, tool);
    return json_pack("{s:s, s:s, s:s, s:I, s:o}", "rule", rule, "title", title, "detail", detail,
                     "count", (json_int_t)count, "actions", actions);
}

/* ---- the service -------------------------------------------------------------------- */

static void on_event(aos_bus_sub_t *sub, const aos_bus_event_t *ev, void *data)
{
    aos__analyzer_t *a = data;
    if (!ev) {
        a->sub = NULL; /* the bus ended it */
        return;
    }
    (void)sub;
    if (strncmp(ev->type, "anomaly.", 8) != 0 && strcmp(ev->type, "task.receipt") != 0)
        return;
    aos__analyzer_add(a, ev->json, now_ms());
}

aos__analyzer_t *aos__analyzer_new(void)
{
    aos__analyzer_t *a = calloc(1, sizeof(*a));
    if (a)
        aos_map_init(&a->groups);
    return a;
}

int aos__analyzer_start(aos__analyzer_t *a, aos_bus_t *bus)
{
    int64_t last = aos_bus_last_id(bus);
    aos_bus_filter_t f = {.value_only = 1, .after_id = last > REPLAY ? last - REPLAY : 0};
    return aos_bus_subscribe(bus, &f, on_event, NULL, a, &a->sub);
}

void aos__analyzer_stop(aos__analyzer_t *a)
{
    if (a && a->sub) {
        aos_bus_unsubscribe(a->sub);
        a->sub = NULL;
    }
}

void aos__analyzer_free(aos__analyzer_t *a)
{
    if (!a)
        return;
    aos__analyzer_stop(a);
    for (struct group *g = a->head, *n; g; g = n) {
        n = g->next;
        group_free(g);
    }
    aos_map_release(&a->groups);
    free(a);
}

static void iso_ms(int64_t ms, char out[40])
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char day[24] = "";
    gmtime_r(&s, &tm);
    strftime(day, sizeof(day), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, 40, "%s.%03dZ", day, (int)(ms % 1000));
}

json_t *aos__analyzer_list(const aos__analyzer_t *a, size_t limit)
{
    json_t *list = json_array();
    for (const struct group *g = a->head; g && list && json_array_size(list) < limit; g = g->next) {
        json_t *s =
            aos__analyzer_suggest(g->receipt, g->last, g->count, g->ntraces ? g->traces[0] : NULL);
        if (!s)
            continue;
        char first[40], lastt[40], id[24];
        iso_ms(g->first_ms, first);
        iso_ms(g->last_ms, lastt);
        /* a stable id: FNV-1a of the group's key */
        uint64_t h = 1469598103934665603ULL;
        for (const char *p = g->key; *p; p++)
            h = (h ^ (unsigned char)*p) * 1099511628211ULL;
        snprintf(id, sizeof(id), "sg_%016llx", (unsigned long long)h);
        json_t *traces = json_array();
        for (int i = 0; i < g->ntraces; i++)
            json_array_append_new(traces, json_string(g->traces[i]));
        json_object_set_new(s, "id", json_string(id));
        json_object_set_new(s, "kind", json_string(g->receipt ? "task.receipt" : "anomaly"));
        json_object_set_new(s, "first_seen", json_string(first));
        json_object_set_new(s, "last_seen", json_string(lastt));
        json_object_set_new(s, "traces", traces);
        json_object_set_new(s, "card_id", g->card_id[0] ? json_string(g->card_id) : json_null());
        static const char *const fields[] = {"server",      "tool",    "error",
                                             "fingerprint", "message", "agent"};
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
            const json_t *v = json_object_get(g->last, fields[i]);
            if (json_is_string(v))
                json_object_set(s, fields[i], (json_t *)v);
        }
        json_array_append_new(list, s);
    }
    return list;
}

size_t aos__analyzer_limit_max(void)
{
    return LIST_MAX;
}
