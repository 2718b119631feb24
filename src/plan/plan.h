/* plan.h - what a task's plan is: the JSON form every planner produces and
 * the executor runs (docs/ORCHESTRATOR.md, "The plan"), its validation,
 * the ${...} references between steps, `when` conditions, the Critic's
 * checks of a tool's result, the Action DSL (docs/DSL.md) and the offline
 * planner.
 *
 * Pure functions over jansson values: no I/O, no loop, no global state;
 * callable from any thread. Every function that returns a json_t * or a
 * char * returns a new reference (or allocation, free() it) that the caller
 * owns, and NULL on failure with err filled; arguments are borrowed.
 *
 * The flow: a planner (aos_dsl_parse, aos_plan_offline, or an LLM's JSON)
 * gives a plan; aos_plan_validate checks it against the caller's allowed
 * tools and returns it normalized (every default filled in), which is the
 * form the executor stores and runs. Before a step runs, the executor
 * resolves its arguments (aos_plan_resolve) and its condition
 * (aos_plan_when) against the scope of the task; after a tool step, it
 * derives the step's result (aos_plan_result) and asks the Critic
 * (aos_plan_check). */
#ifndef AOS_PLAN_H
#define AOS_PLAN_H

#include <jansson.h>
#include <stddef.h>

#include "err/err.h"

/* Bounds of a plan (aos_plan_validate refuses what is past them). */
#define AOS_PLAN_MAX_STEPS    1000    /* default of aos_plan_opts_t.max_steps */
#define AOS_PLAN_ID_MAX       64      /* a step id: [A-Za-z_][A-Za-z0-9_-]{0,63} */
#define AOS_PLAN_TOOL_MAX     192     /* <server>__<tool>: 64 + 2 + 126 */
#define AOS_PLAN_DEPTH_MAX    32      /* nesting of args, check.schema, DSL values */
#define AOS_PLAN_TEXT_MAX     4096    /* approval.message, check.contains, when */
#define AOS_PLAN_LABEL_MAX    256     /* milestone label */
#define AOS_PLAN_REGEX_MAX    1024    /* check.matches, bytes */
#define AOS_PLAN_MATCH_MAX    4096    /* bytes of a result check.matches looks at */
#define AOS_PLAN_REF_MAX      1024    /* one ${...}, bytes */
#define AOS_PLAN_REF_SEGS     32      /* .name and [index] parts of one reference */
#define AOS_PLAN_RESOLVED_MAX 1048576 /* a string with references, once resolved */

/* What aos_plan_validate allows beyond the rules of the format. */
typedef struct {
    /* Allowed tools (borrowed): an array of strings, each an exact
     * aggregated name ("files__read") or a pattern where '*' matches any
     * run of characters ("files__*", "*"). NULL: any tool. A tool step
     * outside them is refused with AOS_EFORBIDDEN. */
    const json_t *tools;
    /* The most steps a plan may have; 0: AOS_PLAN_MAX_STEPS. */
    size_t max_steps;
    /* The task's inputs (borrowed), or NULL. When given, ${inputs.NAME...}
     * must name one of its members. */
    const json_t *inputs;
} aos_plan_opts_t;

/* Checks every rule of the plan format and returns the normalized plan:
 * {"steps":[...]} with, for a tool step, args (default {}), check
 * ({"non_empty":false,"not_error":true} plus what was given), retry
 * ({"max":0,"backoff_ms":500}; an integer n is {"max":n}) and optional
 * (false); for an approval, timeout_s (3600) and on_timeout ("abort");
 * `when` in its canonical spelling (one space around the operator).
 * opts may be NULL (any tool, AOS_PLAN_MAX_STEPS).
 * Fails with AOS_EINVAL (AOS_EFORBIDDEN for a tool the opts do not allow)
 * and a message naming the step index, its id and the field:
 * "steps[2] (s2).retry.max: must be an integer 0..10". */
json_t *aos_plan_validate(const json_t *plan, const aos_plan_opts_t *opts, aos_err_t *err);

/* ---- references ------------------------------------------------------------
 *
 * ${inputs.NAME...}, ${STEP.result...}, ${STEP.decision}, ${task.trace_id},
 * ${task.workspace}; a path continues with .name, ["any key"] and [index]
 * ([-1] is the last item). $${ is a literal ${. The scope they resolve in:
 *
 *   {"inputs": {...},
 *    "steps": {"s1": {"result": <aos_plan_result of its CallToolResult>},
 *              "gate": {"decision": "approve"}},
 *    "task": {"trace_id": "...", "workspace": "..."}}
 */

/* A deep copy of value (any JSON) with every reference in its strings (not
 * in object keys) resolved in scope. A string that is one whole reference
 * becomes the value it names, of any JSON type; a reference inside a longer
 * string is written as text (a string as it is, anything else as compact
 * JSON). Fails with AOS_EINVAL (malformed reference, values nested past
 * 64), AOS_ENOTFOUND (the reference names nothing in scope: the message
 * names the reference and what is missing) or AOS_ETOOBIG (a string longer
 * than AOS_PLAN_RESOLVED_MAX once resolved). */
json_t *aos_plan_resolve(const json_t *value, const json_t *scope, aos_err_t *err);

/* The ids of the steps that value's strings reference (not "inputs" or
 * "task"), each once, in order of first appearance: a JSON array of
 * strings. AOS_EINVAL for a malformed reference. */
json_t *aos_plan_refs(const json_t *value, aos_err_t *err);

/* The same for a step of a plan: the steps its args, approval message,
 * milestone label and `when` reference (the strings of its check are
 * literal text, not references). */
json_t *aos_plan_step_refs(const json_t *step, aos_err_t *err);

/* Evaluates a `when` condition: REF, !REF, REF == LITERAL or REF != LITERAL
 * (LITERAL: a string in '...' or "...", a number, true, false, null). REF
 * alone is true unless its value is false, null, 0, "", [] or {}; == and !=
 * compare JSON values (numbers by value). *out = 1 or 0. With scope NULL,
 * only checks the syntax (and leaves *out alone). AOS_EINVAL for bad syntax,
 * AOS_ENOTFOUND when the reference names nothing in scope. */
int aos_plan_when(const char *expr, const json_t *scope, int *out, aos_err_t *err);

/* ---- results and the Critic ------------------------------------------------ */

/* The result of a tool step, from its CallToolResult (a new reference):
 * structuredContent when present; else the text items of content joined
 * with "\n", parsed as JSON when the whole text parses, else that text;
 * else (no text item) the content array when it is not empty; else null. */
json_t *aos_plan_result(const json_t *call_result);

/* The Critic's verdict on a CallToolResult against a step's check (as
 * aos_plan_validate normalized it; NULL: the default, not_error only).
 * 0: it passes. AOS_EINVAL: it fails, and why (n bytes, n > 0) says what
 * failed: "the tool returned an error: ...", "the result is empty",
 * "does not contain \"x\"", "does not match /x/",
 * "$.rows: expected integer, got string". contains and matches look at the
 * result as text (a string as it is, anything else as compact JSON):
 * contains at all of it, matches at its first AOS_PLAN_MATCH_MAX bytes
 * (glibc's matcher costs up to length squared); schema checks the result
 * value. Costs at most a few tens of milliseconds (a pathological pattern
 * on 4 KiB). */
int aos_plan_check(const json_t *check, const json_t *call_result, char *why, size_t n);

/* ---- the Action DSL (docs/DSL.md) ------------------------------------------ */

#define AOS_DSL_MAX_INPUT 262144 /* bytes */
#define AOS_DSL_MAX_LINE  8192   /* bytes */

/* Parses DSL text (len bytes, need not be NUL-terminated) into a plan and
 * validates it (aos_plan_validate, no tool restriction): the normalized
 * plan, or NULL with AOS_EINVAL and "line:column: message" (columns count
 * characters, both from 1). A validation error is prefixed with the
 * position of the step it names. */
json_t *aos_dsl_parse(const char *text, size_t len, aos_err_t *err);

/* The DSL text of a plan as aos_plan_validate returns it (malloc'd,
 * NUL-terminated; free() it): aos_dsl_parse of it gives the same plan.
 * NULL if plan is not a normalized plan, or on ENOMEM. */
char *aos_dsl_format(const json_t *plan);

/* ---- the offline planner (docs/DSL.md, "Plain-language goals") ------------- */

/* A plan for goal without an LLM: DSL text (recognized by its first
 * statement) goes to aos_dsl_parse; otherwise a few plain-language
 * patterns in English and Simplified Chinese ("clean data.csv and plot
 * revenue by month", "清洗 data.csv 并按月绘制 revenue", "list the files",
 * "search the logs for timeout", "call server__tool with {...}"). inputs
 * (may be NULL): the task's inputs; a goal that names no file uses the
 * input named file or path. Returns the normalized plan, validated with
 * inputs (every ${inputs.NAME} in it names one) but no tool restriction
 * (the caller validates it again with its own); AOS_ENOTFOUND
 * with a message listing what it understands when no pattern fits;
 * AOS_EINVAL when one fits but lacks something (which file to plot). */
json_t *aos_plan_offline(const char *goal, const json_t *inputs, aos_err_t *err);

#endif
