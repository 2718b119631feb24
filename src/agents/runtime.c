/* runtime.c - the agent runtime shipped with aosd (`aosd agent`): one
 * replica of a local agent, started and supervised by aosd (live.c). It
 * serves itself as an MCP server on stdio (newline-delimited JSON-RPC:
 * initialize, ping, tools/list, tools/call) with one tool, run_task, which
 * runs a plan - the `dsl` or `goal` it is given, else the agent's SOP (DSL
 * text, or a plain-language goal for the offline planner) - by calling
 * tools back through aosd's gateway (POST /mcp/call) with the agent's own
 * token. aosd decides what that token may call (its grants are the agent's
 * tool mapping): the runtime asks, aosd refuses what is outside it.
 *
 * What aosd gives it, in its environment (AOS_AGENT_TOKEN is removed from
 * the environment once read):
 *   AOS_AGENT_URL      aosd's base URL (http://127.0.0.1:PORT)
 *   AOS_AGENT_TOKEN    the agent's token
 *   AOS_AGENT_NAME, AOS_AGENT_VERSION, AOS_AGENT_REPLICA
 *   AOS_AGENT_CONFIG   the live version's config: {prompt, sop, tools, concurrency}
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
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    char url[1024], auth[512];
    snprintf(url, sizeof(url), "%s/mcp/call", rt.url);
    snprintf(auth, sizeof(auth), "Authorization: Bearer %s", rt.token);
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    h = curl_slist_append(h, auth);
    h = curl_slist_append(h, "Content-Type: application/json");
    char tp[128];
    if (traceparent && strlen(traceparent) < 100) {
        /* the tool calls are children of the run_task call's span */
        snprintf(tp, sizeof(tp), "traceparent: %s", traceparent);
        h = curl_slist_append(h, tp);
    }
    rt_buf_t b = {NULL, 0};
    json_t *out = NULL;
    if (!c || !h || !text) {
        snprintf(why, n, "out of memory");
        goto done;
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)RT_CALL_TIMEOUT_S);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    CURLcode cc = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cc != CURLE_OK) {
        snprintf(why, n, "aosd unreachable: %s", curl_easy_strerror(cc));
        goto done;
    }
    json_t *doc = b.p ? json_loads(b.p, 0, NULL) : NULL;
    if (status == 200 && json_is_object(doc)) {
        out = doc;
    } else {
        const char *m =
            json_string_value(json_object_get(json_object_get(doc, "error"), "message"));
        snprintf(why, n, "aosd refused %s (HTTP %ld): %s", tool, status, m ? m : "no message");
        json_decref(doc);
    }
done:
    if (c)
        curl_easy_cleanup(c);
    curl_slist_free_all(h);
    free(b.p);
    free(text);
    return out;
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

/* Runs the plan's steps in order; a step whose `when` is false is skipped,
 * an optional one that fails is recorded and passed. */
static json_t *run_task(const json_t *args, const char *traceparent)
{
    const json_t *in = json_object_get(args, "inputs");
    json_t *inputs = json_is_object(in) ? json_deep_copy(in) : json_object();
    const json_t *input = json_object_get(args, "input");
    if (input)
        json_object_set(inputs, "input", (json_t *)input);
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
