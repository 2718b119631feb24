/* critic.c - the Critic's question to the model: does a step's result meet
 * what its check.llm asks?
 *
 * A tool step's result first passes its deterministic checks (task.c,
 * aos_plan_check); a step whose check has "llm" (a requirement in plain
 * language) then goes to the configured model with the tool, its arguments
 * and its result (cut at RESULT_MAX bytes), and the model must call the
 * function verdict {pass, reason}. A pass lets the step finish; a fail, an
 * answer that is no verdict, or a model that cannot be asked (after the
 * client's own retries) fails the attempt like any failed check: the
 * Reviser retries the tool, takes the fallback, skips an optional step or
 * asks a person. The verdict, its tokens and its cost are recorded on the
 * attempt's row and in its step.finished / step.failed event, the cost in
 * the task's, and the call is a `chat {model}` span under the task.
 *
 * While the model thinks, the attempt's row still says "running": a crash
 * then runs the tool again at the next start, with the same idempotency key,
 * like a crash during the call itself. A plan with check.llm is refused at
 * submission when no model is configured (orch.c). */
#include "orch/internal.h"
#include "log/log.h"

#include <stdlib.h>
#include <string.h>

#define RESULT_MAX 16384 /* bytes of the result shown to the model */
#define ARGS_MAX   4096  /* bytes of the arguments shown to the model */

static const char *const critic_prompt =
    "You are the Critic of AOS, an agent operating system. A step of a task called a tool. "
    "Judge whether the tool's result meets the requirement, from the result alone. Answer by "
    "calling the function verdict with pass (true when the requirement is met, else false) and "
    "a short reason.";

struct critique {
    orch_task_t *t;
    json_t *result;
};

static json_t *verdict_tool(void)
{
    return json_pack("[{s:s, s:s, s:{s:s, s:{s:{s:s}, s:{s:s}}, s:[s, s]}}]", "name", "verdict",
                     "description", "Give the verdict on the step's result.", "parameters", "type",
                     "object", "properties", "pass", "type", "boolean", "reason", "type", "string",
                     "required", "pass", "reason");
}

/* The verdict in the model's answer: 0 with *pass and reason (borrowed
 * from r or v), else -1 with why. */
static int read_verdict(const aos_llm_result_t *r, json_t **owned, int *pass, const char **reason,
                        char *why, size_t n)
{
    const json_t *args = NULL;
    *owned = NULL;
    for (size_t i = 0; i < r->ntool_calls; i++) {
        if (r->tool_calls[i].name && !strcmp(r->tool_calls[i].name, "verdict")) {
            args = r->tool_calls[i].arguments;
            if (!args) {
                snprintf(why, n, "the critic's verdict is not JSON: %s",
                         r->tool_calls[i].error ? r->tool_calls[i].error : "unreadable");
                return -1;
            }
            break;
        }
    }
    if (!args && r->content) /* a verdict written as text */
        args = *owned = json_loadb(r->content, r->content_len, 0, NULL);
    const json_t *p = json_object_get(args, "pass");
    if (!json_is_boolean(p)) {
        snprintf(why, n, "the critic's answer is not a verdict (no call of verdict with pass)");
        return -1;
    }
    *pass = json_is_true(p);
    *reason = json_string_value(json_object_get(args, "reason"));
    if (!*reason)
        *reason = "";
    return 0;
}

static void on_verdict(aos_llm_result_t *r, void *data)
{
    struct critique *c = data;
    orch_task_t *t = c->t;
    t->llm_call = NULL;
    if (t->o->shutting_down || (r->status == AOS_ECANCELED && !t->cancel)) {
        /* the attempt's row stays "running": it runs again at the next start */
        aos_llm_result_free(r);
        json_decref(c->result);
        free(c);
        return;
    }
    orch_chat_span(t, r);
    double cost = r->cost_cny;
    char why[700] = "";
    int code = AOS_EINVAL;
    json_t *critique =
        json_pack("{s:s, s:I, s:I, s:f}", "model", r->request_model ? r->request_model : "",
                  "input_tokens", (json_int_t)r->input_tokens, "output_tokens",
                  (json_int_t)r->output_tokens, "cost_cny", cost);
    if (r->status) {
        snprintf(why, sizeof(why), "the critic's model failed: %s", r->errmsg);
        json_object_set_new(critique, "error", json_string(why));
    } else {
        json_t *owned;
        int pass = 0;
        const char *reason = NULL;
        if (read_verdict(r, &owned, &pass, &reason, why, sizeof(why)) == 0) {
            json_object_set_new(critique, "pass", json_boolean(pass));
            json_object_set_new(critique, "reason", json_stringn(reason, strnlen(reason, 600)));
            if (pass)
                code = 0;
            else
                snprintf(why, sizeof(why), "the critic says no: %.600s", reason);
        } else {
            json_object_set_new(critique, "error", json_string(why));
        }
        json_decref(owned);
    }
    aos_llm_result_free(r);
    json_t *result = c->result;
    free(c);
    orch_task_judged(t, result, code, why, 0, critique, cost);
}

void orch_critique(orch_task_t *t, json_t *result, const char *question)
{
    if (!t->o->cfg.llm) {
        orch_task_judged(t, result, AOS_EINVAL,
                         "check.llm: no model is configured to judge the result", 0, NULL, 0);
        return;
    }
    struct critique *c = calloc(1, sizeof(*c));
    char *res = json_dumps(result, JSON_COMPACT);
    char *args = t->cur_input ? json_dumps(t->cur_input, JSON_COMPACT) : NULL;
    json_t *user = NULL;
    if (c && res)
        user = json_sprintf("Requirement: %s\nTool: %s\nArguments: %.*s%s\nResult: %.*s%s",
                            question, json_string_value(json_object_get(t->cur, "tool")), ARGS_MAX,
                            args ? args : "{}", args && strlen(args) > ARGS_MAX ? " (cut)" : "",
                            RESULT_MAX, res, strlen(res) > RESULT_MAX ? " (cut)" : "");
    free(res);
    free(args);
    json_t *messages = user ? json_pack("[{s:s, s:s}, {s:s, s:o}]", "role", "system", "content",
                                        critic_prompt, "role", "user", "content", user)
                            : NULL;
    json_t *tools = messages ? verdict_tool() : NULL;
    if (!tools) {
        json_decref(messages);
        free(c);
        orch_task_judged(t, result, AOS_ENOMEM, "out of memory", 0, NULL, 0);
        return;
    }
    c->t = t;
    c->result = result;
    char tp[AOS_TRACEPARENT_LEN + 1] = "";
    if (t->span)
        aos_tracectx_format(aos_span_context(t->span), tp);
    aos_llm_chat_t req = {.messages = messages,
                          .tools = tools,
                          .tool_choice = "verdict",
                          .traceparent = tp[0] ? tp : NULL};
    aos_err_t err = {0, ""};
    int rc = aos_llm_chat(t->o->cfg.llm, &req, on_verdict, c, &t->llm_call, &err);
    json_decref(messages);
    json_decref(tools);
    if (rc) {
        t->llm_call = NULL;
        free(c);
        char why[400];
        snprintf(why, sizeof(why), "the critic's model cannot be asked: %s", aos_err_msg(&err));
        orch_task_judged(t, result, rc, why, 0, NULL, 0);
    }
}
