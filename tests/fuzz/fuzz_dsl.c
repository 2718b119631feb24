/* fuzz_dsl.c - Action DSL text as a user types it in the Chat Hub
 * (aos_dsl_parse), and everything the executor then does with the plan.
 * Checked:
 *  - a refusal has a message, and a syntax error starts with "line:col: "
 *    inside the text;
 *  - an accepted plan passes aos_plan_validate again unchanged (the
 *    normalized form is a fixed point), and with a tool allow-list it is
 *    accepted or refused with a message;
 *  - aos_dsl_format of it parses back to the same plan;
 *  - resolving each step's arguments and condition in a scope where every
 *    step has run, and the Critic's check against a result made of the
 *    arguments, never crash (they may refuse);
 *  - the same text as a goal for the offline planner (aos_plan_offline,
 *    which reads plain words too) gives a valid plan or a message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan.h"

/* "L:C: " with 1 <= L <= lines of the text + 1 and C >= 1. */
static int positioned(const char *msg, const uint8_t *data, size_t size)
{
    char *end;
    long line = strtol(msg, &end, 10);
    if (end == msg || *end != ':')
        return 0;
    const char *c = end + 1;
    long col = strtol(c, &end, 10);
    if (end == c || *end != ':' || line < 1 || col < 1)
        return 0;
    long lines = 1;
    for (size_t i = 0; i < size; i++)
        lines += data[i] == '\n';
    return line <= lines;
}

static json_t *scope_for(const json_t *plan)
{
    json_t *steps = json_object();
    size_t i;
    const json_t *st;
    json_array_foreach(json_object_get(plan, "steps"), i, st)
    {
        const char *id = json_string_value(json_object_get(st, "id"));
        json_object_set_new(
            steps, id,
            json_pack("{s:O, s:s}", "result", json_object_get(st, "args"), "decision", "approve"));
    }
    return json_pack("{s:{s:s, s:i}, s:o, s:{s:s, s:s}}", "inputs", "file", "data.csv", "n", 3,
                     "steps", steps, "task", "trace_id", "t1", "workspace", "/w");
}

static void run_steps(const json_t *plan, const uint8_t *data, size_t size)
{
    json_t *scope = scope_for(plan);
    size_t i;
    const json_t *st;
    json_array_foreach(json_object_get(plan, "steps"), i, st)
    {
        aos_err_t err = {0, ""};
        json_t *args = aos_plan_resolve(json_object_get(st, "args"), scope, &err);
        if (!args && !err.msg[0])
            abort();
        json_t *refs = aos_plan_step_refs(st, &err);
        if (!refs)
            abort(); /* a validated plan's references parse */
        json_decref(refs);
        const char *when = json_string_value(json_object_get(st, "when"));
        int yes = 0;
        if (when && aos_plan_when(when, NULL, &yes, &err) != 0)
            abort(); /* validated: the syntax is right */
        if (when)
            aos_plan_when(when, scope, &yes, &err);
        const json_t *chk = json_object_get(st, "check");
        if (chk) {
            json_t *res =
                json_pack("{s:[{s:s, s:s%}], s:O?, s:b}", "content", "type", "text", "text",
                          (const char *)data, size, "structuredContent", args, "isError", 0);
            char why[160];
            if (res && aos_plan_check(chk, res, why, sizeof(why)) != 0 && !why[0])
                abort();
            json_decref(res);
        }
        json_decref(args);
    }
    json_decref(scope);
}

/* data as a goal in words (or DSL) for the offline planner. */
static void offline(const uint8_t *data, size_t size)
{
    char *goal = malloc(size + 1);
    if (!goal)
        return;
    memcpy(goal, data, size);
    goal[size] = '\0';
    aos_err_t err = {0, ""};
    json_t *inputs = json_pack("{s:s}", "file", "in.csv");
    json_t *plan = aos_plan_offline(goal, inputs, &err);
    if (!plan && !err.msg[0])
        abort();
    if (plan) {
        aos_plan_opts_t opts = {.inputs = inputs};
        json_t *again = aos_plan_validate(plan, &opts, &err);
        if (!again || !json_equal(again, plan))
            abort(); /* the planner's plan is not a valid, normalized one */
        json_decref(again);
        char *text = aos_dsl_format(plan);
        if (!text)
            abort();
        free(text);
    }
    json_decref(plan);
    json_decref(inputs);
    free(goal);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    aos_err_t err = {0, ""};
    if (size <= 8192 && !memchr(data, 0, size))
        offline(data, size);
    json_t *plan = aos_dsl_parse((const char *)data, size, &err);
    if (!plan) {
        if (!err.code || !err.msg[0])
            abort();
        if (err.code == AOS_EINVAL && !positioned(err.msg, data, size))
            abort(); /* a syntax error without its position */
        return 0;
    }
    json_t *again = aos_plan_validate(plan, NULL, &err);
    if (!again || !json_equal(again, plan))
        abort(); /* the normalized form is not a fixed point */
    json_decref(again);
    json_t *allowed = json_pack("[s, s]", "files__*", "csv__clean");
    aos_plan_opts_t opts = {.tools = allowed, .max_steps = 20};
    again = aos_plan_validate(plan, &opts, &err);
    if (!again && !err.msg[0])
        abort();
    json_decref(again);
    json_decref(allowed);
    char *text = aos_dsl_format(plan);
    if (!text)
        abort(); /* a valid plan the DSL cannot write */
    json_t *back = aos_dsl_parse(text, strlen(text), &err);
    if (!back || !json_equal(back, plan))
        abort(); /* plan -> DSL -> plan changed it */
    json_decref(back);
    free(text);
    if (!memchr(data, 0, size)) /* the check's text must be a C string */
        run_steps(plan, data, size);
    json_decref(plan);
    return 0;
}
