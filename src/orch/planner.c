/* planner.c - the LLM planner: a goal in plain language becomes a plan
 * through any OpenAI-compatible model (src/llm), when one is configured.
 *
 * The model sees the plan format, the tools the task may use (names,
 * descriptions, input schemas) and the goal with the task's inputs, and
 * must call the function submit_plan with the plan. What it sends is
 * validated like any other plan (aos_plan_validate, with the task's allowed
 * tools and inputs); an invalid plan goes back to the model once with the
 * reason. A model that cannot plan leaves the goal to the offline planner,
 * and a goal neither understands ends the task (failed, with an anomaly).
 * Every call's tokens and cost are recorded on the plan's row and in the
 * task's cost; every call is a `chat {model}` span under the task. */
#include "orch/internal.h"
#include "isotime/isotime.h"
#include "buf/buf.h"
#include "log/log.h"

#include <stdlib.h>
#include <string.h>

#define PLAN_ATTEMPTS 2
#define TOOLS_LISTED  100  /* tools described to the model at most */
#define SCHEMA_MAX    1200 /* bytes of one tool's input schema in the prompt */

static const char *const system_prompt =
    "You are the planner of AOS, an agent operating system. Turn the user's goal into a plan "
    "and submit it by calling the function submit_plan.\n"
    "A plan is {\"steps\": [...]}, run in order. Each step has an \"id\" "
    "([A-Za-z_][A-Za-z0-9_-]*, unique) and exactly one of:\n"
    "- \"tool\": the exact name of one of the tools listed below, with \"args\", an object that "
    "fits the tool's input schema;\n"
    "- \"approval\": {\"message\": \"...\"} to ask a person before something risky or "
    "costly;\n"
    "- \"milestone\": a short label of progress.\n"
    "A tool step may add \"retry\" (0-10 attempts more), \"check\" (e.g. {\"non_empty\": "
    "true}, or {\"llm\": \"what the result must show\"} to have it judged) and "
    "\"optional\": true. Arguments may use the result of an earlier step with "
    "${STEP.result} or ${STEP.result.field}, and the task's inputs with ${inputs.NAME}. Use only "
    "the tools listed. Keep the plan as short as the goal allows.\n\nTools:\n";

/* The JSON Schema of submit_plan's arguments. */
static json_t *plan_schema(void)
{
    return json_pack(
        "{s:s, s:{s:{s:s, s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, s:{s:{s:s}}, s:[s]}, "
        "s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}, s:[s]}}}, s:[s]}",
        "type", "object", "properties", "steps", "type", "array", "items", "type", "object",
        "properties", "id", "type", "string", "tool", "type", "string", "args", "type", "object",
        "approval", "type", "object", "properties", "message", "type", "string", "required",
        "message", "milestone", "type", "string", "check", "type", "object", "retry", "type",
        "integer", "optional", "type", "boolean", "when", "type", "string", "required", "id",
        "required", "steps");
}

/* The system message: the format and the tools the task may use. */
static char *system_message(orch_task_t *t)
{
    const json_t *c = json_object_get(t->spec, "constraints");
    json_t *tools = aos_gateway_tool_list(t->o->cfg.gateway, json_object_get(c, "tools"));
    aos_buf_t b;
    aos_buf_init(&b, 0);
    aos_buf_puts(&b, system_prompt);
    size_t i;
    json_t *tool;
    json_array_foreach(tools, i, tool)
    {
        if (i >= TOOLS_LISTED) {
            aos_buf_printf(&b, "(and %zu more)\n", json_array_size(tools) - TOOLS_LISTED);
            break;
        }
        char *schema = json_dumps(json_object_get(tool, "inputSchema"), JSON_COMPACT);
        const char *desc = json_string_value(json_object_get(tool, "description"));
        aos_buf_printf(&b, "- %s: %.300s Arguments: %.*s\n",
                       json_string_value(json_object_get(tool, "name")), desc ? desc : "",
                       SCHEMA_MAX, schema ? schema : "{}");
        free(schema);
    }
    if (json_array_size(tools) == 0)
        aos_buf_puts(&b, "(none: plan approvals and milestones only)\n");
    json_decref(tools);
    char *out = b.ptr ? strndup(b.ptr, b.len) : NULL;
    aos_buf_release(&b);
    return out;
}

struct planning {
    orch_task_t *t;
    json_t *messages;
    int attempts;
    double cost;
    uint64_t in_tokens, out_tokens;
    char model[128];
};

static void ask(struct planning *p);

/* The span of one model call, under the task (the Critic's too). */
void orch_chat_span(orch_task_t *t, const aos_llm_result_t *r)
{
    char name[160];
    snprintf(name, sizeof(name), "chat %s", r->request_model ? r->request_model : "model");
    aos_span_t *s =
        aos_trace_span_start(t->o->cfg.trace, aos_span_context(t->span), name, AOS_SPAN_CLIENT);
    if (!s)
        return;
    json_t *attrs = aos_llm_result_span(r);
    const char *k;
    json_t *v;
    json_object_foreach(attrs, k, v)
    {
        if (json_is_string(v))
            aos_span_set_str(s, k, json_string_value(v));
        else if (json_is_integer(v))
            aos_span_set_int(s, k, json_integer_value(v));
        else if (json_is_real(v))
            aos_span_set_double(s, k, json_real_value(v));
        else if (json_is_boolean(v))
            aos_span_set_bool(s, k, json_is_true(v));
    }
    json_decref(attrs);
    if (r->status)
        aos_span_set_error(s, r->error_type ? r->error_type : aos_err_code(r->status), r->errmsg);
    else
        aos_span_set_status(s, AOS_SPAN_OK, NULL);
    aos_span_end(s);
}

/* The plan the model sent: submit_plan's arguments, or its text when it
 * wrote the plan as JSON instead. NULL, with why, when neither. */
static json_t *candidate(const aos_llm_result_t *r, const char **call_id, char *why, size_t n)
{
    *call_id = NULL;
    for (size_t i = 0; i < r->ntool_calls; i++) {
        const aos_llm_tool_call_t *c = &r->tool_calls[i];
        if (!c->name || strcmp(c->name, "submit_plan") != 0)
            continue;
        *call_id = c->id;
        if (!c->arguments) {
            snprintf(why, n, "the arguments of submit_plan are not JSON: %s",
                     c->error ? c->error : "unreadable");
            return NULL;
        }
        return json_incref(c->arguments);
    }
    json_t *j = r->content ? json_loadb(r->content, r->content_len, 0, NULL) : NULL;
    if (json_is_object(j) && json_object_get(j, "steps"))
        return j;
    json_decref(j);
    snprintf(why, n, "no call of submit_plan in the answer");
    return NULL;
}

/* A tool of plan that no server lists (the model must use the listed
 * ones): 1 with why. */
static int unknown_tool(orch_task_t *t, const json_t *plan, char *why, size_t n)
{
    json_t *tools = aos_gateway_tool_list(t->o->cfg.gateway, NULL);
    size_t i, k;
    json_t *step, *tool;
    int bad = 0;
    json_array_foreach(json_object_get(plan, "steps"), i, step)
    {
        const char *name = json_string_value(json_object_get(step, "tool"));
        int found = !name;
        json_array_foreach(tools, k, tool)
        {
            if (name && !strcmp(name, json_string_value(json_object_get(tool, "name"))))
                found = 1;
        }
        if (!found) {
            snprintf(why, n,
                     "the plan is not valid: steps[%zu] calls '%.100s', which is not one "
                     "of the tools listed",
                     i, name);
            bad = 1;
            break;
        }
    }
    json_decref(tools);
    return bad;
}

static void planned(orch_task_t *t, struct planning *p, json_t *plan, const char *planner,
                    const char *why)
{
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx) {
        json_decref(plan);
        return;
    }
    char now[32];
    aos_isotime_now(now);
    orch_task_add_cost(t, "plan", p->cost);
    json_t *in =
        json_pack("{s:s, s:s, s:s, s:i}", "planner", planner, "model", p->model, "goal",
                  json_string_value(json_object_get(t->spec, "goal")), "calls", p->attempts);
    json_t *out = json_pack("{s:s, s:I, s:I, s:I, s:f}", "planner", planner, "steps",
                            (json_int_t)json_array_size(json_object_get(plan, "steps")),
                            "input_tokens", (json_int_t)p->in_tokens, "output_tokens",
                            (json_int_t)p->out_tokens, "cost_cny", p->cost);
    if (why)
        json_object_set_new(out, "llm_error", json_string(why));
    char *ins = json_dumps(in, JSON_COMPACT), *outs = json_dumps(out, JSON_COMPACT);
    aos_store_step_t row = {t->trace_id, "plan", 1,    0,       "plan", "done", ins,
                            outs,        NULL,   NULL, p->cost, now,    now};
    orch_tx_step(tx, &row);
    free(ins);
    free(outs);
    json_decref(in);
    json_decref(out);
    t->plan = plan;
    orch_tx_state(tx, t, 1);
    orch_task_planned(t, tx);
}

static void fail_planning(orch_task_t *t, struct planning *p, const char *why)
{
    orch_tx_t *tx = orch_tx_new(t->o, t);
    if (!tx)
        return;
    orch_task_add_cost(t, "plan", p->cost);
    char card[64], msg[600];
    snprintf(card, sizeof(card), "anomaly:%s:plan", t->trace_id);
    snprintf(msg, sizeof(msg), "unable to plan the goal: %s", why);
    orch_tx_event(tx, t, "anomaly.detected", "error", card,
                  json_pack("{s:s, s:s}", "kind", "planning", "message", msg));
    orch_task_abandon(t, tx, msg);
}

static void on_answer(aos_llm_result_t *r, void *data)
{
    struct planning *p = data;
    orch_task_t *t = p->t;
    t->llm_call = NULL;
    if (t->o->shutting_down || (r->status == AOS_ECANCELED && !t->cancel)) {
        aos_llm_result_free(r);
        json_decref(p->messages);
        free(p);
        return;
    }
    if (t->cancel) {
        orch_tx_t *tx = orch_tx_new(t->o, t);
        if (tx)
            orch_task_abandon(t, tx, NULL);
        aos_llm_result_free(r);
        json_decref(p->messages);
        free(p);
        return;
    }
    orch_chat_span(t, r);
    p->cost += r->cost_cny;
    p->in_tokens += r->input_tokens;
    p->out_tokens += r->output_tokens;
    char why[400] = "";
    json_t *plan = NULL;
    if (r->status) {
        snprintf(why, sizeof(why), "the model failed: %s", r->errmsg);
    } else {
        const char *call_id;
        json_t *cand = candidate(r, &call_id, why, sizeof(why));
        if (cand) {
            const json_t *c = json_object_get(t->spec, "constraints");
            aos_plan_opts_t opts = {.tools = json_object_get(c, "tools"),
                                    .inputs = json_object_get(t->spec, "inputs")};
            aos_err_t e = {0, ""};
            plan = aos_plan_validate(cand, &opts, &e);
            if (!plan)
                snprintf(why, sizeof(why), "the plan is not valid: %s", aos_err_msg(&e));
            else if (unknown_tool(t, plan, why, sizeof(why))) {
                json_decref(plan);
                plan = NULL;
            }
            json_decref(cand);
        }
        if (!plan && p->attempts < PLAN_ATTEMPTS) {
            /* once more, with the reason */
            json_array_append_new(p->messages, aos_llm_result_message(r));
            char fix[600];
            snprintf(fix, sizeof(fix), "%s. Call submit_plan again with a corrected plan.", why);
            if (call_id)
                json_array_append_new(p->messages,
                                      json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id",
                                                call_id, "content", fix));
            else
                json_array_append_new(p->messages,
                                      json_pack("{s:s, s:s}", "role", "user", "content", fix));
            aos_llm_result_free(r);
            ask(p);
            return;
        }
    }
    aos_llm_result_free(r);
    if (plan) {
        planned(t, p, plan, "llm", NULL);
    } else {
        /* the offline planner may still know the goal */
        aos_err_t e = {0, ""};
        json_t *off = aos_plan_offline(json_string_value(json_object_get(t->spec, "goal")),
                                       json_object_get(t->spec, "inputs"), &e);
        const json_t *c = json_object_get(t->spec, "constraints");
        aos_plan_opts_t opts = {.tools = json_object_get(c, "tools"),
                                .inputs = json_object_get(t->spec, "inputs")};
        json_t *v = off ? aos_plan_validate(off, &opts, &e) : NULL;
        json_decref(off);
        if (v) {
            aos_log(AOS_LOG_WARN, "orch", json_pack("{s:s}", "trace_id", t->trace_id),
                    "task %s: %s; the offline planner planned it", t->trace_id, why);
            planned(t, p, v, "offline", why);
        } else {
            fail_planning(t, p, why);
        }
    }
    json_decref(p->messages);
    free(p);
}

static void ask(struct planning *p)
{
    orch_task_t *t = p->t;
    p->attempts++;
    json_t *tools = json_pack("[{s:s, s:s, s:o}]", "name", "submit_plan", "description",
                              "Submit the plan for the goal.", "parameters", plan_schema());
    char tp[AOS_TRACEPARENT_LEN + 1] = "";
    if (t->span)
        aos_tracectx_format(aos_span_context(t->span), tp);
    aos_llm_chat_t req = {.messages = p->messages,
                          .tools = tools,
                          .tool_choice = "submit_plan",
                          .traceparent = tp[0] ? tp : NULL};
    aos_err_t err = {0, ""};
    int rc = aos_llm_chat(t->o->cfg.llm, &req, on_answer, p, &t->llm_call, &err);
    json_decref(tools);
    if (rc) {
        t->llm_call = NULL;
        char why[300];
        snprintf(why, sizeof(why), "the model cannot be asked: %s", aos_err_msg(&err));
        fail_planning(t, p, why);
        json_decref(p->messages);
        free(p);
    }
}

void orch_plan_llm(orch_task_t *t)
{
    struct planning *p = calloc(1, sizeof(*p));
    char *sys = p ? system_message(t) : NULL;
    if (!sys) {
        free(p);
        aos_log_error("orch", "task %s: out of memory", t->trace_id);
        return;
    }
    p->t = t;
    snprintf(p->model, sizeof(p->model), "%s", aos_llm_model(t->o->cfg.llm));
    char *inputs = json_object_get(t->spec, "inputs")
                       ? json_dumps(json_object_get(t->spec, "inputs"), JSON_COMPACT)
                       : NULL;
    json_t *user = json_sprintf("Goal: %s%s%s", json_string_value(json_object_get(t->spec, "goal")),
                                inputs ? "\nInputs: " : "", inputs ? inputs : "");
    free(inputs);
    p->messages = json_pack("[{s:s, s:s}, {s:s, s:o}]", "role", "system", "content", sys, "role",
                            "user", "content", user);
    free(sys);
    ask(p);
}
