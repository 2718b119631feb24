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
 *   approval_timeouts, planning_failures, agent_crash_loop, agent_unhealthy
 *                    the orchestrator's and the agents' anomalies, by kind
 * Each suggestion carries actions: {label, method, path[, field]} a UI
 * shows on the anomaly's card (card_id) - requests to aosd's own API.
 *
 * On the card. A suggestion is shown where the failure is: the Analyzer
 * publishes it as the next version of the anomaly's own card (type
 * anomaly.detected, the same card_id, the anomaly's payload plus
 * "suggestion": {id, rule, title, detail, actions[, llm]}; topic
 * "analyzer"), once per card; a failed receipt's group gets a card of
 * its own ("analyzer:<id>"), updated at most once a minute. The Analyzer
 * ignores the events of topic "analyzer" (its own). Only live events
 * publish: the events read back at start (a restart) rebuild the groups
 * without publishing again.
 *
 * The model's suggestion. With an LLM configured (aos__analyzer_set_llm),
 * a group's first event (and one an hour later at most) asks the model
 * for a short repair suggestion from the group's rule, title, server,
 * tool, error class and message (already redacted by the bus); at most
 * LLM_INFLIGHT_MAX asks at a time, others wait for the group's next
 * event. The answer (cut to LLM_TEXT_MAX bytes) joins the group's
 * suggestion as "llm": {text, model} in the list and in a new version
 * of its card. A failed ask is logged and tried again no sooner than the
 * next hour.
 *
 * The subscription starts REPLAY events back, so a restart rebuilds the
 * recent groups from the durable bus. */
#include "monitor/internal.h"
#include "isotime/isotime.h"
#include "log/log.h"
#include "map/map.h"
#include "utf8/utf8.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GROUPS_MAX       256
#define TRACES_MAX       5
#define REPLAY           5000 /* events read back at start */
#define LIST_MAX         256
#define LLM_INFLIGHT_MAX 2
#define LLM_AGAIN_MS     (3600 * 1000) /* a group's model suggestion, asked again at most */
#define LLM_TEXT_MAX     1500          /* bytes of the model's suggestion kept */
#define LLM_MAX_TOKENS   300
#define RECEIPT_CARD_MS  60000 /* a receipt group's card, updated at most */

struct group {
    char key[160];
    int receipt;  /* 0: anomaly */
    json_t *last; /* the last event's payload, with type */
    char card_id[136];
    int64_t count;
    int64_t first_ms, last_ms;
    char traces[TRACES_MAX][40];
    char stored[TRACES_MAX]; /* the trace's spans are stored (the tracer said so) */
    int ntraces;
    char severity[16], project_id[136]; /* of the last event */
    char published_card[160];           /* the card that shows the suggestion */
    int64_t published_ms;
    char *llm; /* the model's suggestion, or NULL */
    char llm_model[96];
    int64_t llm_asked_ms;
    int llm_pending;
    struct group *prev, *next; /* most recent first */
};

/* One question to the model in flight. Detached (a = NULL) when the
 * Analyzer goes first; freed by its done callback. */
struct ask {
    aos__analyzer_t *a;
    char key[160];
    aos_llm_call_t *call;
    struct ask *prev, *next;
};

struct aos__analyzer_s {
    aos_bus_sub_t *sub;
    aos_bus_t *bus; /* borrowed: where suggestions are published */
    aos_llm_t *llm; /* borrowed, may be NULL */
    struct ask *asks;
    int nasks;
    int stopped;
    aos_map_t groups;
    size_t n;
    struct group *head, *tail;
    int (*keep)(const char *trace_id, void *data); /* the tracer's, or NULL */
    void *keep_data;
};

static const char *str_or_empty(const json_t *v)
{
    const char *s = json_string_value(v);
    return s ? s : "";
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
    free(g->llm);
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

/* The group ev joined (or started), NULL when ev is none of the Analyzer's. */
static struct group *add(aos__analyzer_t *a, const json_t *ev, int64_t at_ms)
{
    const char *type = json_string_value(json_object_get(ev, "type"));
    const json_t *p = json_object_get(ev, "payload");
    if (!type || !json_is_object(p))
        return NULL;
    const char *topic = json_string_value(json_object_get(ev, "topic"));
    if (topic && !strcmp(topic, "analyzer"))
        return NULL; /* our own suggestions */
    char key[160];
    int receipt = 0;
    if (!strncmp(type, "anomaly.", 8)) {
        const char *fp = json_string_value(json_object_get(p, "fingerprint"));
        const char *kind = json_string_value(json_object_get(p, "kind"));
        if (fp)
            snprintf(key, sizeof(key), "anomaly:%.32s", fp);
        else if (kind) /* the orchestrator's and the agents' own: by kind (and agent) */
            snprintf(key, sizeof(key), "anomaly:kind:%.40s:%.60s", kind,
                     str_or_empty(json_object_get(p, "agent")));
        else
            snprintf(key, sizeof(key), "anomaly:%.40s/%.40s/%.40s",
                     str_or_empty(json_object_get(p, "server")),
                     str_or_empty(json_object_get(p, "tool")),
                     str_or_empty(json_object_get(p, "error")));
    } else if (!strcmp(type, "task.receipt")) {
        const char *status = json_string_value(json_object_get(p, "status"));
        if (!status || !strcmp(status, "done"))
            return NULL;
        receipt = 1;
        snprintf(key, sizeof(key), "receipt:%s:%.60s",
                 receipt_class(json_string_value(json_object_get(p, "error"))),
                 str_or_empty(json_object_get(p, "agent")));
    } else {
        return NULL;
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
            return NULL;
        snprintf(g->key, sizeof(g->key), "%s", key);
        g->receipt = receipt;
        g->first_ms = at_ms;
        if (aos_map_put(&a->groups, g->key, g)) {
            free(g);
            return NULL;
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
    const char *sev = json_string_value(json_object_get(ev, "severity"));
    snprintf(g->severity, sizeof(g->severity), "%s", sev ? sev : "error");
    const char *proj = json_string_value(json_object_get(ev, "project_id"));
    snprintf(g->project_id, sizeof(g->project_id), "%s", proj ? proj : "");
    const char *trace = json_string_value(json_object_get(ev, "trace_id"));
    if (trace && *trace) {
        /* the tracer keeps an anomaly's trace whole, and says whether its
         * spans are stored: only then does the suggestion link to it */
        int stored = a->keep ? a->keep(trace, a->keep_data) : 1;
        int seen = -1;
        for (int i = 0; i < g->ntraces && seen < 0; i++)
            if (!strcmp(g->traces[i], trace))
                seen = i;
        if (seen >= 0) {
            g->stored[seen] |= (char)stored;
        } else { /* newest first */
            int n = g->ntraces < TRACES_MAX ? g->ntraces + 1 : TRACES_MAX;
            memmove(g->traces[1], g->traces[0], (size_t)(n - 1) * sizeof(g->traces[0]));
            memmove(g->stored + 1, g->stored, (size_t)(n - 1));
            snprintf(g->traces[0], sizeof(g->traces[0]), "%s", trace);
            g->stored[0] = (char)stored;
            g->ntraces = n;
        }
    }
    return g;
}

void aos__analyzer_add(aos__analyzer_t *a, const json_t *ev, int64_t at_ms)
{
    (void)add(a, ev, at_ms);
}

/* ---- rules ------------------------------------------------------------------------ */

static json_t *action(const char *label, const char *method, json_t *path, const char *field)
{
    json_t *a = json_pack("{s:s, s:s, s:o}", "label", label, "method", method, "path", path);
    if (a && field)
        json_object_set_new(a, "field", json_string(field));
    return a;
}

/* The costliest steps a receipt or a budget anomaly names: "a (0.5000
 * CNY), b (0.2000 CNY)" into out ("" when none). */
static void costliest_text(const json_t *list, char *out, size_t cap)
{
    size_t i, n = 0;
    const json_t *c;
    out[0] = '\0';
    json_array_foreach(list, i, c)
    {
        const char *step = json_string_value(json_object_get(c, "step"));
        if (!step || n >= cap)
            continue;
        int w = snprintf(out + n, cap - n, "%s%.60s (%.4f CNY)", n ? ", " : "", step,
                         json_number_value(json_object_get(c, "cost_cny")));
        if (w > 0)
            n += (size_t)w < cap - n ? (size_t)w : cap - n - 1;
    }
}

json_t *aos__analyzer_suggest(int receipt, const json_t *last, int64_t count, const char *trace,
                              const char *stored_trace)
{
    const char *server = json_string_value(json_object_get(last, "server"));
    const char *tool = json_string_value(json_object_get(last, "tool"));
    const char *error = json_string_value(json_object_get(last, "error"));
    const char *kind = json_string_value(json_object_get(last, "kind"));
    const char *agent = json_string_value(json_object_get(last, "agent"));
    const char *rule, *title_fmt, *detail;
    char split[128];
    json_t *actions = json_array();
    if (!receipt && !server && tool && strstr(tool, "__")) { /* a step's "server__tool" */
        snprintf(split, sizeof(split), "%.*s", (int)(strstr(tool, "__") - tool), tool);
        server = split;
        tool = strstr(tool, "__") + 2;
    }
    if (!receipt && kind && (!strcmp(kind, "budget") || !strcmp(kind, "deadline"))) {
        receipt = 1; /* the task's breach: the same advice as its receipt's */
        error = kind;
    }
    if (!receipt && kind && !strcmp(kind, "approval_timeout")) {
        rule = "approval_timeouts";
        title_fmt = "Approvals time out%s%s";
        detail = "Approval gates reach their deadline undecided and take their on_timeout "
                 "decision: decide them sooner (the cards are in the Chat Hub), give them a "
                 "longer timeout_s, or choose the on_timeout the task should take.";
        server = tool = "";
    } else if (!receipt && kind && !strcmp(kind, "planning")) {
        rule = "planning_failures";
        title_fmt = "The planner fails%s%s";
        detail = "Goals could not be planned: the model server did not answer or its plan was "
                 "refused. Check the LLM settings and the model server's health, or submit a "
                 "plan (the Action DSL) instead of a goal.";
        server = tool = "";
        json_array_append_new(actions, action("LLM settings", "GET", json_string("/config"), NULL));
    } else if (!receipt && kind && !strcmp(kind, "agent.crash_loop")) {
        rule = "agent_crash_loop";
        title_fmt = "Agent %s%s keeps crashing";
        detail = "The agent's processes exit again and again: their last log lines say why; "
                 "roll back to the version that ran, or stop the agent until it is fixed.";
        server = agent ? agent : "";
        tool = "";
        const char *id = json_string_value(json_object_get(last, "agent_id"));
        if (id) {
            json_array_append_new(
                actions,
                action("Agent logs", "GET", json_sprintf("/agents/%s/logs?tail=100", id), NULL));
            json_array_append_new(
                actions, action("Versions", "GET", json_sprintf("/agents/%s/versions", id), NULL));
        }
    } else if (!receipt && kind && !strcmp(kind, "agent.unhealthy")) {
        rule = "agent_unhealthy";
        title_fmt = "Remote agent %s%s stopped answering";
        detail = "aosd's health checks of the agent's endpoint fail, and calls to it are "
                 "refused until it answers again: check that the agent's service is up and "
                 "that its URL is right.";
        server = agent ? agent : "";
        tool = "";
        const char *id = json_string_value(json_object_get(last, "agent_id"));
        if (id)
            json_array_append_new(
                actions, action("Agent health", "GET", json_sprintf("/agents/%s", id), NULL));
    } else if (!receipt) {
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
    if (trace) /* its log lines are always kept */
        json_array_append_new(actions, action("Log lines", "GET",
                                              json_sprintf("/api/logs?trace_id=%s", trace), NULL));
    if (stored_trace) /* its spans only when stored: sampled, or kept for its error */
        json_array_append_new(
            actions, action("Trace", "GET", json_sprintf("/api/traces/%s", stored_trace), NULL));
    if (trace) {
        if (receipt)
            json_array_append_new(
                actions, action("Episode", "GET", json_sprintf("/api/episodes/%s", trace), NULL));
    }
    char title[400];
    snprintf(title, sizeof(title), title_fmt, server, tool);
    json_t *s = json_pack("{s:s, s:s, s:s, s:I, s:o}", "rule", rule, "title", title, "detail",
                          detail, "count", (json_int_t)count, "actions", actions);
    const json_t *costliest = json_object_get(last, "costliest");
    if (s && !strcmp(rule, "budget_breach") && json_array_size(costliest)) {
        char names[400], more[700];
        costliest_text(costliest, names, sizeof(names));
        snprintf(more, sizeof(more), "%s The costliest steps of the last one: %s.", detail, names);
        json_object_set_new(s, "detail", json_string(more));
        json_object_set(s, "costliest", (json_t *)costliest);
    }
    return s;
}

/* ---- a group's suggestion ---------------------------------------------------------- */

/* A stable id: FNV-1a of the group's key. */
static void group_id(const struct group *g, char id[24])
{
    uint64_t h = 1469598103934665603ULL;
    for (const char *p = g->key; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ULL;
    snprintf(id, 24, "sg_%016llx", (unsigned long long)h);
}

/* The rule's suggestion with its id and the model's part, if any. */
static json_t *group_suggestion(const struct group *g)
{
    const char *stored = NULL; /* the newest trace whose spans are stored */
    for (int i = 0; i < g->ntraces && !stored; i++)
        if (g->stored[i])
            stored = g->traces[i];
    json_t *s = aos__analyzer_suggest(g->receipt, g->last, g->count,
                                      g->ntraces ? g->traces[0] : NULL, stored);
    if (!s)
        return NULL;
    char id[24];
    group_id(g, id);
    json_object_set_new(s, "id", json_string(id));
    if (g->llm)
        json_object_set_new(s, "llm",
                            json_pack("{s:s, s:s}", "text", g->llm, "model", g->llm_model));
    return s;
}

/* Publishes the group's suggestion on its card (see the top). */
static void publish(aos__analyzer_t *a, struct group *g, int64_t now)
{
    if (!a->bus || a->stopped)
        return;
    json_t *sg = group_suggestion(g);
    if (!sg)
        return;
    json_t *payload;
    char card[160];
    if (!g->receipt) {
        if (!g->card_id[0]) {
            json_decref(sg);
            return;
        }
        snprintf(card, sizeof(card), "%s", g->card_id);
        payload = json_deep_copy(g->last);
        json_object_del(payload, "type");
    } else {
        char id[24];
        group_id(g, id);
        snprintf(card, sizeof(card), "analyzer:%s", id);
        payload = json_pack("{s:s, s:I}", "kind", "task.receipt", "count", (json_int_t)g->count);
        static const char *const fields[] = {"error", "agent", "status"};
        for (size_t i = 0; payload && i < sizeof(fields) / sizeof(fields[0]); i++) {
            const json_t *v = json_object_get(g->last, fields[i]);
            if (json_is_string(v))
                json_object_set(payload, fields[i], (json_t *)v);
        }
    }
    if (!payload) {
        json_decref(sg);
        return;
    }
    json_object_set_new(payload, "suggestion", sg);
    json_t *env =
        json_pack("{s:s, s:s, s:s, s:s, s:o}", "topic", "analyzer", "type", "anomaly.detected",
                  "severity", g->receipt ? "warning" : (g->severity[0] ? g->severity : "error"),
                  "card_id", card, "payload", payload);
    if (!env)
        return;
    if (g->ntraces)
        json_object_set_new(env, "trace_id", json_string(g->traces[0]));
    if (g->project_id[0])
        json_object_set_new(env, "project_id", json_string(g->project_id));
    aos_err_t err = {0, ""};
    if (aos_bus_publish(a->bus, env, NULL, NULL, &err) < 0) {
        aos_log_warn("analyzer", "a suggestion was not published: %s", aos_err_msg(&err));
        return;
    }
    snprintf(g->published_card, sizeof(g->published_card), "%s", card);
    g->published_ms = now;
}

/* ---- the model's suggestion ---------------------------------------------------------- */

static void ask_unlink(aos__analyzer_t *a, struct ask *k)
{
    if (k->prev)
        k->prev->next = k->next;
    else
        a->asks = k->next;
    if (k->next)
        k->next->prev = k->prev;
    k->prev = k->next = NULL;
    a->nasks--;
}

static void on_answer(aos_llm_result_t *res, void *data)
{
    struct ask *k = data;
    aos__analyzer_t *a = k->a;
    if (!a) { /* the Analyzer is gone */
        aos_llm_result_free(res);
        free(k);
        return;
    }
    ask_unlink(a, k);
    struct group *g = aos_map_get(&a->groups, k->key);
    if (g)
        g->llm_pending = 0;
    if (res->status) {
        if (res->status != AOS_ECANCELED)
            aos_log_warn("analyzer", "the model gave no suggestion: %s", res->errmsg);
    } else if (g && res->content && res->content_len) {
        size_t n = res->content_len > LLM_TEXT_MAX ? aos_utf8_trim(res->content, LLM_TEXT_MAX)
                                                   : res->content_len;
        while (n && (res->content[n - 1] == ' ' || res->content[n - 1] == '\n'))
            n--;
        char *text = n && aos_utf8_valid(res->content, n) ? strndup(res->content, n) : NULL;
        if (text) {
            free(g->llm);
            g->llm = text;
            const char *m = res->response_model ? res->response_model : res->request_model;
            snprintf(g->llm_model, sizeof(g->llm_model), "%s", m ? m : "");
            g->published_card[0] = '\0'; /* the card shows it: a new version */
            publish(a, g, aos_isotime_now_ms());
        }
    }
    aos_llm_result_free(res);
    free(k);
}

static void ask(aos__analyzer_t *a, struct group *g, int64_t now)
{
    if (!a->llm || a->stopped || g->llm_pending || a->nasks >= LLM_INFLIGHT_MAX ||
        (g->llm_asked_ms && now - g->llm_asked_ms < LLM_AGAIN_MS))
        return;
    json_t *facts = aos__analyzer_suggest(g->receipt, g->last, g->count, NULL, NULL);
    if (!facts)
        return;
    json_object_del(facts, "actions");
    static const char *const fields[] = {"server", "tool", "error", "message", "agent", "status"};
    for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
        const json_t *v = json_object_get(g->last, fields[i]);
        if (json_is_string(v))
            json_object_set(facts, fields[i], (json_t *)v);
    }
    char *text = json_dumps(facts, JSON_COMPACT);
    json_decref(facts);
    json_t *msgs = text ? json_pack("[{s:s, s:s}, {s:s, s:s}]", "role", "system", "content",
                                    "You are the Analyzer of AOS, a control plane for AI agents "
                                    "and MCP tool servers. Given a group of repeated failures, "
                                    "answer with one short repair suggestion for the operator: "
                                    "at most three sentences, plain text, no preamble.",
                                    "role", "user", "content", text)
                        : NULL;
    free(text);
    struct ask *k = msgs ? calloc(1, sizeof(*k)) : NULL;
    if (!k) {
        json_decref(msgs);
        return;
    }
    k->a = a;
    snprintf(k->key, sizeof(k->key), "%s", g->key);
    aos_llm_chat_t req = {.messages = msgs, .max_tokens = LLM_MAX_TOKENS};
    aos_err_t err = {0, ""};
    int rc = aos_llm_chat(a->llm, &req, on_answer, k, &k->call, &err);
    json_decref(msgs);
    g->llm_asked_ms = now; /* a failure to start is not retried before the hour either */
    if (rc) {
        aos_log_warn("analyzer", "the model was not asked: %s", aos_err_msg(&err));
        free(k);
        return;
    }
    g->llm_pending = 1;
    k->next = a->asks;
    if (a->asks)
        a->asks->prev = k;
    a->asks = k;
    a->nasks++;
}

/* ---- the service -------------------------------------------------------------------- */

/* Whether ev is a task.receipt whose stored payload begins with
 * {"status":"done" - as the orchestrator writes every receipt, status
 * first. Such a receipt makes no group (add), and telling so from the
 * text spares parsing the payload, most of what a receipt cost here: a
 * receipt of every task. Any other text is parsed and judged by add. */
static int receipt_done(const aos_bus_event_t *ev)
{
    static const char done[] = "{\"status\":\"done\"";
    if (!ev->payload || ev->payload_len < sizeof(done))
        return 0;
    const char *t = ev->payload;
    return !strncmp(t, done, sizeof(done) - 1) &&
           (t[sizeof(done) - 1] == ',' || t[sizeof(done) - 1] == '}');
}

static void on_event(aos_bus_sub_t *sub, const aos_bus_event_t *ev, void *data)
{
    aos__analyzer_t *a = data;
    if (!ev) {
        a->sub = NULL; /* the bus ended it */
        return;
    }
    (void)sub;
    if (strncmp(ev->type, "anomaly.", 8) != 0 &&
        (strcmp(ev->type, "task.receipt") != 0 || receipt_done(ev)))
        return;
    int64_t now = aos_isotime_now_ms();
    const json_t *env = aos_bus_event_json(ev);
    struct group *g = env ? add(a, env, now) : NULL;
    if (!g || ev->replay)
        return;
    /* a receipt over its budget or deadline came with the task's anomaly,
     * whose card shows the same suggestion: only failures get a card */
    if (g->receipt ? !strncmp(g->key, "receipt:failed:", 15) &&
                         (!g->published_ms || now - g->published_ms >= RECEIPT_CARD_MS)
                   : strcmp(g->published_card, g->card_id) != 0)
        publish(a, g, now);
    ask(a, g, now);
}

void aos__analyzer_set_keep(aos__analyzer_t *a, int (*keep)(const char *trace_id, void *data),
                            void *data)
{
    a->keep = keep;
    a->keep_data = data;
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
    a->bus = bus;
    int64_t last = aos_bus_last_id(bus);
    aos_bus_filter_t f = {.value_only = 1, .after_id = last > REPLAY ? last - REPLAY : 0};
    return aos_bus_subscribe(bus, &f, on_event, NULL, a, &a->sub);
}

void aos__analyzer_set_llm(aos__analyzer_t *a, aos_llm_t *llm)
{
    if (a)
        a->llm = llm;
}

void aos__analyzer_stop(aos__analyzer_t *a)
{
    if (!a)
        return;
    a->stopped = 1;
    if (a->sub) {
        aos_bus_unsubscribe(a->sub);
        a->sub = NULL;
    }
    for (struct ask *k = a->asks; k; k = k->next)
        aos_llm_cancel(k->call); /* its done comes later, from the loop */
}

void aos__analyzer_free(aos__analyzer_t *a)
{
    if (!a)
        return;
    aos__analyzer_stop(a);
    for (struct ask *k = a->asks, *n; k; k = n) {
        n = k->next;
        k->a = NULL; /* freed by its done callback */
        k->prev = k->next = NULL;
    }
    a->asks = NULL;
    for (struct group *g = a->head, *n; g; g = n) {
        n = g->next;
        group_free(g);
    }
    aos_map_release(&a->groups);
    free(a);
}

json_t *aos__analyzer_list(const aos__analyzer_t *a, size_t limit)
{
    json_t *list = json_array();
    for (const struct group *g = a->head; g && list && json_array_size(list) < limit; g = g->next) {
        json_t *s = group_suggestion(g);
        if (!s)
            continue;
        char first[32], lastt[32];
        aos_isotime_fmt(g->first_ms, first);
        aos_isotime_fmt(g->last_ms, lastt);
        json_t *traces = json_array();
        for (int i = 0; i < g->ntraces; i++)
            json_array_append_new(traces, json_string(g->traces[i]));
        json_object_set_new(s, "kind", json_string(g->receipt ? "task.receipt" : "anomaly"));
        json_object_set_new(s, "first_seen", json_string(first));
        json_object_set_new(s, "last_seen", json_string(lastt));
        json_object_set_new(s, "traces", traces);
        const char *card = g->receipt ? g->published_card : g->card_id;
        json_object_set_new(s, "card_id", card[0] ? json_string(card) : json_null());
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
