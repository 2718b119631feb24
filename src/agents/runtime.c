/* runtime.c - the agent runtime shipped with aosd (`aosd agent`): one
 * replica of a local agent, started and supervised by aosd (live.c). It
 * serves itself as an MCP server on stdio (newline-delimited JSON-RPC:
 * initialize, ping, tools/list, tools/call) with one tool, run_task, which
 * runs a plan - the `dsl` or `goal` it is given, else the agent's SOP (DSL
 * text, or a plain-language goal for the offline planner) - by calling
 * tools back through aosd's gateway (POST /mcp/call) with the agent's own
 * token. aosd decides what that token may call (its grants are the agent's
 * tool mapping): the runtime asks, aosd refuses what is outside it. With
 * config.planner "orchestrator" a call is a task of aosd's orchestrator
 * instead (see run_orchestrated): planned by the configured LLM, run,
 * checked and recorded there, in the agent's project, with its tools.
 *
 * What aosd gives it, in its environment (AOS_AGENT_TOKEN is removed from
 * the environment once read):
 *   AOS_AGENT_URL      aosd's base URL (http://127.0.0.1:PORT)
 *   AOS_AGENT_TOKEN    the agent's token
 *   AOS_AGENT_NAME, AOS_AGENT_VERSION, AOS_AGENT_REPLICA
 *   AOS_AGENT_CONFIG   the live version's config: {prompt, sop, tools, concurrency,
 *                      planner, project_id} (env: names and values apart)
 *
 * The main thread reads stdin; each tools/call runs on a thread of its own
 * (at most `concurrency` at once, the others wait), whose blocking HTTP
 * calls (libcurl) block nobody else; answers are written to stdout under a
 * lock, one line each. stdin at EOF (aosd closed it, or died) ends it. Its
 * stderr lines go to aosd's log (the agent's logs). */
#include "agents/agents.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "jsonrpc/jsonrpc.h"
#include "plan/plan.h"

#define RT_LINE_MAX       (4u * 1024 * 1024)
#define RT_REPLY_MAX      (16u * 1024 * 1024)
#define RT_CALL_TIMEOUT_S 300

typedef struct {
    char *url, *token, *name, *version, *replica;
    json_t *config;
    pthread_mutex_t out_lock;
    pthread_mutex_t slot_lock;
    pthread_cond_t slot_free;
    int slots; /* free call slots */
} rt_t;

static rt_t rt;

static void rt_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void rt_log(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* one line a write: aosd logs stderr line by line */
    fprintf(stderr, "agent %s v%s replica %s: %s\n", rt.name, rt.version, rt.replica, msg);
}

static void send_msg(json_t *msg)
{
    char *text = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    if (!text)
        return;
    pthread_mutex_lock(&rt.out_lock);
    fputs(text, stdout);
    fputc('\n', stdout);
    fflush(stdout);
    pthread_mutex_unlock(&rt.out_lock);
    free(text);
}

static void reply(const json_t *id, json_t *result)
{
    send_msg(json_pack("{s:s, s:O, s:o}", "jsonrpc", "2.0", "id", id, "result", result));
}

/* An error answer; code is an AOS_E* code (src/err: its JSON-RPC code). */
static void reply_error(const json_t *id, int code, const char *message)
{
    send_msg(aos_rpc_error_aos(id, code, message));
}

/* ---- calls back into aosd ------------------------------------------------ */

typedef struct {
    char *p;
    size_t n;
} rt_buf_t;

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *data)
{
    rt_buf_t *b = data;
    size_t n = size * nmemb;
    if (b->n + n > RT_REPLY_MAX)
        return 0;
    char *p = realloc(b->p, b->n + n + 1);
    if (!p)
        return 0;
    memcpy(p + b->n, ptr, n);
    b->p = p;
    b->n += n;
    p[b->n] = '\0';
    return n;
}

/* A request to aosd with the agent's token (body: JSON, or NULL for a GET):
 * the answer's JSON document (any status: *status says which), or NULL
 * with why (aosd unreachable, no JSON). */
static json_t *aosd_request(const char *path, const json_t *body, const char *traceparent,
                            long *status, char *why, size_t n)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    char url[1024], auth[512];
    snprintf(url, sizeof(url), "%s%s", rt.url, path);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", rt.token);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    char tp[128];
    if (traceparent && strlen(traceparent) < 100) {
        /* what it does is a child of the run_task call's span */
        snprintf(tp, sizeof(tp), "traceparent: %s", traceparent);
        h = curl_slist_append(h, tp);
    }
    rt_buf_t b = {NULL, 0};
    json_t *doc = NULL;
    *status = 0;
    if (!c || !h || (body && !text)) {
        snprintf(why, n, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if (text)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)RT_CALL_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    if (cc != CURLE_OK) {
        snprintf(why, n, "aosd unreachable: %s", curl_easy_strerror(cc));
        goto done;
    }
    doc = b.p ? json_loads(b.p, 0, NULL) : NULL;
    if (!json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
        snprintf(why, n, "aosd answered %s with HTTP %ld and no JSON", path, *status);
    }
done:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(b.p);
    free(text);
    return doc;
}

/* What aosd's error answer doc says, for why. */
static const char *error_of(const json_t *doc)
{
    const char *m = json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
    return m ? m : "no message";
}

/* Calls tool "<server>__<tool>" through POST /mcp/call: the CallToolResult,
 * or NULL with why (what aosd said, e.g. that the token may not call it). */
static json_t *call_tool(const char *tool, const json_t *args, const char *traceparent, char *why,
                         size_t n)
{
    const char *sep = strstr(tool, "__");
    if (!sep || sep == tool) {
        snprintf(why, n, "'%s' is not <server>__<tool>", tool);
        return NULL;
    }
    json_t *body = json_pack("{s:s%, s:s, s:O}", "server", tool, (size_t)(sep - tool), "tool",
                             sep + 2, "args", args);
    if (!body) {
        snprintf(why, n, "out of memory");
        return NULL;
    }
    long status;
    json_t *doc = aosd_request("/mcp/call", body, traceparent, &status, why, n);
    json_decref(body);
    if (doc && status != 200) {
        snprintf(why, n, "aosd refused %s (HTTP %ld): %s", tool, status, error_of(doc));
        json_decref(doc);
        return NULL;
    }
    return doc;
}

/* ---- run_task ------------------------------------------------------------ */

/* The plan of a run_task call: its dsl, its goal, else the agent's SOP. */
static json_t *plan_of(const json_t *args, const json_t *inputs, aos_err_t *err)
{
    const char *dsl = json_string_value(json_object_get(args, "dsl"));
    const char *goal = json_string_value(json_object_get(args, "goal"));
    if (dsl)
        return aos_dsl_parse(dsl, strlen(dsl), err);
    if (goal)
        return aos_plan_offline(goal, inputs, err);
    const char *sop = json_string_value(json_object_get(rt.config, "sop"));
    if (!sop || !*sop) {
        aos_err_set(err, AOS_EINVAL, "the agent has no SOP: give run_task a dsl or a goal");
        return NULL;
    }
    /* the SOP is DSL text or a goal: aos_plan_offline tells them apart */
    return aos_plan_offline(sop, inputs, err);
}

static json_t *tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *tool_error(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return json_pack("{s:[{s:s, s:s}], s:b, s:{s:s, s:s, s:s}}", "content", "type", "text", "text",
                     msg, "isError", 1, "structuredContent", "error", msg, "agent", rt.name,
                     "version", rt.version);
}

/* ---- run_task as a task of the orchestrator ------------------------------------
 * config.planner "orchestrator": the call becomes a task of aosd's
 * orchestrator (POST /api/run in the agent's project, constraints.tools =
 * its tool mapping): its dsl, or a goal made of the agent's prompt, its
 * SOP and the call's goal or input, which the orchestrator's planner - the
 * configured LLM, else the offline planner - turns into a plan; the
 * Critic, approvals, retries and the episode are the orchestrator's. The
 * runtime waits for the task's end (polling its episode) and answers with
 * its last tool step's result. */

#define RT_GOAL_MAX 16384 /* the orchestrator's limit on a goal */

static json_t *orch_goal(const json_t *args)
{
    const char *prompt = json_string_value(json_object_get(rt.config, "prompt"));
    const char *sop = json_string_value(json_object_get(rt.config, "sop"));
    const char *goal = json_string_value(json_object_get(args, "goal"));
    const json_t *input = json_object_get(args, "input");
    char *in = json_is_string(input) ? strdup(json_string_value(input))
               : input               ? json_dumps(input, JSON_COMPACT | JSON_ENCODE_ANY)
                                     : NULL;
    int has_prompt = prompt && *prompt, has_sop = sop && *sop;
    const char *task = goal ? goal : in;
    char buf[RT_GOAL_MAX];
    int n = snprintf(buf, sizeof(buf), "%s%s%s%s%s%s%s", has_prompt ? prompt : "",
                     has_prompt && (has_sop || task) ? "\n\n" : "",
                     has_sop ? "Standard operating procedure:\n" : "", has_sop ? sop : "",
                     has_sop && task ? "\n\n" : "", task ? (goal ? "Task: " : "Input: ") : "",
                     task ? task : "");
    free(in);
    if (n <= 0)
        return NULL;
    size_t len = (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1;
    /* cut at a character's start: the goal is UTF-8 text */
    while (len > 0 && ((unsigned char)buf[len] & 0xC0) == 0x80)
        len--;
    return json_stringn(buf, len);
}

/* The last attempt of episode step st. */
static const json_t *last_attempt(const json_t *st)
{
    const json_t *a = json_object_get(st, "attempts");
    size_t n = json_array_size(a);
    return n ? json_array_get(a, n - 1) : NULL;
}

/* The result of the task's plan - its last tool step that is done (a new
 * reference; null if none) - and which planner made the plan. */
static json_t *episode_result(const json_t *ep, const char **planner)
{
    json_t *last = NULL;
    size_t i, k;
    json_t *ps, *st;
    *planner = NULL;
    json_array_foreach(json_object_get(ep, "steps"), k, st)
    {
        const char *sid = json_string_value(json_object_get(st, "id"));
        if (sid && !strcmp(sid, "plan"))
            *planner = json_string_value(
                json_object_get(json_object_get(last_attempt(st), "input"), "planner"));
    }
    json_array_foreach(json_object_get(json_object_get(ep, "plan"), "steps"), i, ps)
    {
        const char *id = json_string_value(json_object_get(ps, "id"));
        if (!id || !json_object_get(ps, "tool"))
            continue;
        json_array_foreach(json_object_get(ep, "steps"), k, st)
        {
            const char *sid = json_string_value(json_object_get(st, "id"));
            const char *ss = json_string_value(json_object_get(st, "status"));
            const json_t *out = json_object_get(last_attempt(st), "output");
            if (!sid || strcmp(sid, id) != 0 || !ss || strcmp(ss, "done") != 0 || !out)
                continue;
            json_decref(last);
            last = aos_plan_result(out);
        }
    }
    return last ? last : json_null();
}

static json_t *run_orchestrated(const json_t *args, json_t *inputs, const char *traceparent)
{
    const char *dsl = json_string_value(json_object_get(args, "dsl"));
    const char *project = json_string_value(json_object_get(rt.config, "project_id"));
    json_t *spec = json_pack("{s:o, s:s?, s:{s:O}}", "inputs", inputs, "project_id", project,
                             "constraints", "tools", json_object_get(rt.config, "tools"));
    char title[256];
    snprintf(title, sizeof(title), "agent %s v%s", rt.name, rt.version);
    json_object_set_new(spec, "title", json_string(title));
    if (dsl) {
        json_object_set_new(spec, "dsl", json_string(dsl));
    } else {
        json_t *goal = orch_goal(args);
        if (!goal) {
            json_decref(spec);
            return tool_error("nothing to do: the agent has no prompt or SOP and the call no goal "
                              "or input");
        }
        json_object_set_new(spec, "goal", goal);
    }
    char why[1024] = "";
    long status;
    json_t *doc = aosd_request("/api/run", spec, traceparent, &status, why, sizeof(why));
    json_decref(spec);
    if (!doc)
        return tool_error("no task: %s", why);
    if (status != 201) {
        json_t *e = tool_error("aosd refused the task (HTTP %ld): %s", status, error_of(doc));
        json_decref(doc);
        return e;
    }
    char trace[64];
    snprintf(trace, sizeof(trace), "%s", json_string_value(json_object_get(doc, "trace_id")));
    json_decref(doc);
    rt_log("task %s: running", trace);
    /* its end: polled, 50 ms doubling to 1 s */
    char path[128];
    snprintf(path, sizeof(path), "/api/episodes/%s", trace);
    time_t deadline = time(NULL) + RT_CALL_TIMEOUT_S;
    long wait_ms = 50;
    json_t *ep = NULL;
    const char *st = "queued";
    for (;;) {
        json_decref(ep);
        ep = aosd_request(path, NULL, NULL, &status, why, sizeof(why));
        if (ep && status == 200)
            st = json_string_value(json_object_get(ep, "status"));
        if (st && (!strcmp(st, "done") || !strcmp(st, "failed") || !strcmp(st, "cancelled")))
            break;
        if (time(NULL) >= deadline) {
            json_decref(ep);
            return tool_error("task %s is still %s after %d s: see /api/episodes/%s", trace,
                              st ? st : "unknown", RT_CALL_TIMEOUT_S, trace);
        }
        struct timespec ts = {wait_ms / 1000, (wait_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (wait_ms < 1000)
            wait_ms *= 2;
    }
    json_t *out;
    if (strcmp(st, "done") != 0) {
        const json_t *e = json_object_get(ep, "error");
        char *et = json_is_string(e)       ? strdup(json_string_value(e))
                   : e && !json_is_null(e) ? json_dumps(e, JSON_COMPACT | JSON_ENCODE_ANY)
                                           : strdup("no reason given");
        out = tool_error("task %s %s: %s", trace, st, et ? et : "");
        json_object_set_new(json_object_get(out, "structuredContent"), "trace_id",
                            json_string(trace));
        free(et);
    } else {
        const char *planner = NULL;
        json_t *result = episode_result(ep, &planner);
        char *text = json_is_string(result) ? strdup(json_string_value(result))
                                            : json_dumps(result, JSON_COMPACT | JSON_ENCODE_ANY);
        json_t *cost = json_object_get(ep, "cost_cny");
        out = json_pack("{s:[{s:s, s:s}], s:{s:O, s:s, s:s?, s:O, s:s, s:s, s:s, s:i}}", "content",
                        "type", "text", "text", text ? text : "", "structuredContent", "result",
                        result, "trace_id", trace, "planner", planner, "cost_cny",
                        cost ? cost : json_null(), "agent", rt.name, "version", rt.version,
                        "replica", rt.replica, "pid", (int)getpid());
        free(text);
        json_decref(result);
    }
    rt_log("task %s: %s", trace, st);
    json_decref(ep);
    return out;
}

/* Runs the plan's steps in order; a step whose `when` is false is skipped,
 * an optional one that fails is recorded and passed. */
static json_t *run_task(const json_t *args, const char *traceparent)
{
    const json_t *in = json_object_get(args, "inputs");
    json_t *inputs = json_is_object(in) ? json_deep_copy(in) : json_object();
    const json_t *input = json_object_get(args, "input");
    if (input)
        json_object_set(inputs, "input", (json_t *)input);
    const char *planner = json_string_value(json_object_get(rt.config, "planner"));
    if (planner && !strcmp(planner, "orchestrator"))
        return run_orchestrated(args, inputs, traceparent);
    aos_err_t err = {0, ""};
    json_t *plan = plan_of(args, inputs, &err);
    if (!plan) {
        json_decref(inputs);
        return tool_error("no plan: %s", aos_err_msg(&err));
    }
    json_t *steps = json_object();
    json_t *scope = json_pack("{s:o, s:O, s:{s:s, s:s}}", "inputs", inputs, "steps", steps, "task",
                              "trace_id", "", "workspace", "");
    json_t *last = json_null(), *failure = NULL;
    size_t i;
    json_t *st;
    json_array_foreach(json_object_get(plan, "steps"), i, st)
    {
        const char *sid = json_string_value(json_object_get(st, "id"));
        const char *when = json_string_value(json_object_get(st, "when"));
        int go = 1;
        if (when && aos_plan_when(when, scope, &go, &err)) {
            failure = tool_error("step %s: when: %s", sid, aos_err_msg(&err));
            break;
        }
        if (!go)
            continue;
        if (json_object_get(st, "approval")) {
            failure = tool_error("step %s: approvals need a task of the orchestrator", sid);
            break;
        }
        const char *tool = json_string_value(json_object_get(st, "tool"));
        if (!tool)
            continue; /* a milestone */
        json_t *a = aos_plan_resolve(json_object_get(st, "args"), scope, &err);
        if (!a) {
            failure = tool_error("step %s: %s", sid, aos_err_msg(&err));
            break;
        }
        json_int_t tries = json_integer_value(json_object_get(json_object_get(st, "retry"), "max"));
        json_int_t backoff =
            json_integer_value(json_object_get(json_object_get(st, "retry"), "backoff_ms"));
        char why[1024] = "";
        json_t *res = NULL;
        for (json_int_t t = 0; t <= tries; t++) {
            if (t > 0 && backoff > 0) {
                struct timespec ts = {backoff / 1000, (backoff % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            json_decref(res);
            res = call_tool(tool, a, traceparent, why, sizeof(why));
            if (res && aos_plan_check(json_object_get(st, "check"), res, why, sizeof(why)) == 0)
                break;
            if (res && !why[0])
                snprintf(why, sizeof(why), "the check failed");
        }
        json_decref(a);
        int ok = res && aos_plan_check(json_object_get(st, "check"), res, why, sizeof(why)) == 0;
        json_t *value = res ? aos_plan_result(res) : json_null();
        json_object_set_new(steps, sid, json_pack("{s:o}", "result", value));
        json_decref(res);
        if (!ok) {
            rt_log("step %s (%s) failed: %s", sid, tool, why);
            if (json_is_true(json_object_get(st, "optional")))
                continue;
            failure = tool_error("step %s (%s) failed: %s", sid, tool, why);
            break;
        }
        last = json_object_get(json_object_get(steps, sid), "result");
    }
    json_t *out;
    if (failure) {
        out = failure;
    } else {
        char *text = json_is_string(last) ? strdup(json_string_value(last))
                                          : json_dumps(last, JSON_COMPACT | JSON_ENCODE_ANY);
        out = json_pack("{s:[{s:s, s:s}], s:{s:O, s:O, s:s, s:s, s:s, s:i}}", "content", "type",
                        "text", "text", text ? text : "", "structuredContent", "result", last,
                        "steps", steps, "agent", rt.name, "version", rt.version, "replica",
                        rt.replica, "pid", (int)getpid());
        free(text);
    }
    json_decref(scope);
    json_decref(steps);
    json_decref(plan);
    return out;
}

typedef struct {
    json_t *msg;
} rt_job_t;

static void *call_thread(void *arg)
{
    rt_job_t *j = arg;
    const json_t *id = json_object_get(j->msg, "id");
    const json_t *p = json_object_get(j->msg, "params");
    const char *name = json_string_value(json_object_get(p, "name"));
    const json_t *args = json_object_get(p, "arguments");
    pthread_mutex_lock(&rt.slot_lock);
    while (rt.slots == 0)
        pthread_cond_wait(&rt.slot_free, &rt.slot_lock);
    rt.slots--;
    pthread_mutex_unlock(&rt.slot_lock);
    if (!name || strcmp(name, "run_task") != 0)
        reply_error(id, AOS_ENOTFOUND, "unknown tool (this agent has run_task)");
    else if (args && !json_is_object(args))
        reply_error(id, AOS_EINVAL, "arguments must be an object");
    else
        reply(id, run_task(args, json_string_value(
                                     json_object_get(json_object_get(p, "_meta"), "traceparent"))));
    pthread_mutex_lock(&rt.slot_lock);
    rt.slots++;
    pthread_cond_signal(&rt.slot_free);
    pthread_mutex_unlock(&rt.slot_lock);
    json_decref(j->msg);
    free(j);
    return NULL;
}

json_t *aos_agent_runtime_tools(const char *name, const char *prompt)
{
    char desc[1024];
    snprintf(desc, sizeof(desc), "Runs a task with agent %s%s%.900s", name,
             prompt && *prompt ? ": " : "", prompt ? prompt : "");
    return json_pack(
        "[{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}}}]", "name",
        "run_task", "description", desc, "inputSchema", "type", "object", "properties", "input",
        "type", "string", "description", "the task's input (inputs.input)", "inputs", "type",
        "object", "description", "named inputs of the plan", "goal", "type", "string",
        "description", "a goal for the offline planner instead of the agent's SOP", "dsl", "type",
        "string", "description", "an Action DSL plan instead of the agent's SOP");
}

static void handle(json_t *msg)
{
    const char *method = json_string_value(json_object_get(msg, "method"));
    const json_t *id = json_object_get(msg, "id");
    if (!method || !id) /* a notification, or a response */
        return;
    if (!strcmp(method, "initialize")) {
        const char *ver =
            json_string_value(json_object_get(json_object_get(msg, "params"), "protocolVersion"));
        reply(id, json_pack("{s:s, s:{s:{}}, s:{s:s, s:s}}", "protocolVersion",
                            ver ? ver : "2025-06-18", "capabilities", "tools", "serverInfo", "name",
                            rt.name, "version", rt.version));
    } else if (!strcmp(method, "ping")) {
        reply(id, json_object());
    } else if (!strcmp(method, "tools/list")) {
        reply(id, json_pack("{s:o}", "tools",
                            aos_agent_runtime_tools(
                                rt.name, json_string_value(json_object_get(rt.config, "prompt")))));
    } else if (!strcmp(method, "tools/call")) {
        rt_job_t *j = malloc(sizeof(*j));
        pthread_t t;
        pthread_attr_t at;
        pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        if (!j || (j->msg = json_incref(msg), pthread_create(&t, &at, call_thread, j) != 0)) {
            if (j)
                json_decref(j->msg);
            free(j);
            reply_error(id, AOS_EINTERNAL, "unable to start the call");
        }
        pthread_attr_destroy(&at);
    } else {
        reply_error(id, AOS_ENOMETHOD, "method not found");
    }
}

static char *env_dup(const char *name)
{
    const char *v = getenv(name);
    return strdup(v ? v : "");
}

int aos_agent_runtime_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    rt.url = env_dup("AOS_AGENT_URL");
    rt.token = env_dup("AOS_AGENT_TOKEN");
    rt.name = env_dup("AOS_AGENT_NAME");
    rt.version = env_dup("AOS_AGENT_VERSION");
    rt.replica = env_dup("AOS_AGENT_REPLICA");
    /* what it starts never sees the token */
    char *tok = getenv("AOS_AGENT_TOKEN");
    if (tok)
        memset(tok, 0, strlen(tok));
    unsetenv("AOS_AGENT_TOKEN");
    const char *cfg = getenv("AOS_AGENT_CONFIG");
    rt.config = cfg ? json_loads(cfg, 0, NULL) : NULL;
    if (!*rt.url || !*rt.token || !*rt.name || !json_is_object(rt.config)) {
        fprintf(stderr, "aosd agent: started by aosd only (AOS_AGENT_URL, AOS_AGENT_TOKEN, "
                        "AOS_AGENT_NAME and AOS_AGENT_CONFIG are missing)\n");
        return 2;
    }
    json_int_t conc = json_integer_value(json_object_get(rt.config, "concurrency"));
    rt.slots = conc > 0 && conc <= 1000 ? (int)conc : 4;
    pthread_mutex_init(&rt.out_lock, NULL);
    pthread_mutex_init(&rt.slot_lock, NULL);
    pthread_cond_init(&rt.slot_free, NULL);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    rt_log("ready (pid %d, %d call(s) at once)", (int)getpid(), rt.slots);
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, stdin)) >= 0) {
        if ((size_t)n > RT_LINE_MAX)
            continue;
        json_t *msg = json_loadb(line, (size_t)n, 0, NULL);
        if (json_is_object(msg))
            handle(msg);
        json_decref(msg);
    }
    free(line);
    rt_log("stdin closed: exiting");
    /* calls still running end with the process: aosd has gone */
    _exit(0);
}
