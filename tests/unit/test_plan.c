/* test_plan.c - the plan module: validation (every rule, with its exact
 * message, and the normalized form), ${...} references (types, escapes,
 * errors, bounds), `when`, the Critic's checks (each kind, the schema
 * subset, the bounds on regular expressions), the result of a step, the
 * Action DSL (every construct, every error class with its line:column, the
 * round trip through aos_dsl_format) and the offline planner's patterns in
 * English and Chinese.
 *
 * Plans are written as JSON text or DSL text in the tests, so that what is
 * checked reads like what users and planners send. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/internal.h"
#include "plan/plan.h"

/* ---- helpers ------------------------------------------------------------------------ */

/* Appends s to dst (cap bytes in all). */
static void cat(char *dst, size_t cap, const char *s)
{
    size_t d = strlen(dst), n = strlen(s);
    if (d + n >= cap) {
        fail_msg("test buffer too small");
        return; /* cmocka's _fail is not declared noreturn */
    }
    memcpy(dst + d, s, n + 1);
}

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad test JSON '%s': %s", text, je.text);
    return j;
}

static void expect_json(const json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!got || !json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        print_error("got:  %s\nwant: %s\n", g ? g : "(null)", w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

static json_t *valid(const char *text, const aos_plan_opts_t *opts)
{
    json_t *in = J(text);
    aos_err_t err = {0, ""};
    json_t *out = aos_plan_validate(in, opts, &err);
    json_decref(in);
    if (!out)
        fail_msg("refused %s: %s", text, err.msg);
    return out;
}

/* The plan is refused with code and exactly msg. */
static void refused(const char *text, const aos_plan_opts_t *opts, int code, const char *msg)
{
    json_t *in = J(text);
    aos_err_t err = {0, ""};
    json_t *out = aos_plan_validate(in, opts, &err);
    json_decref(in);
    if (out) {
        char *s = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        fail_msg("accepted %s as %s", text, s);
    }
    if (err.code != code || strcmp(err.msg, msg))
        fail_msg("for %s\n got: %s (%s)\nwant: %s (%s)", text, err.msg, aos_err_name(err.code), msg,
                 aos_err_name(code));
}

/* A one-step plan whose step is {"id":"s1","tool":"x__y", <extra>}. */
static void tool_refused(const char *extra, const char *msg)
{
    char text[2048];
    snprintf(text, sizeof(text), "{\"steps\":[{\"id\":\"s1\",\"tool\":\"x__y\",%s}]}", extra);
    refused(text, NULL, AOS_EINVAL, msg);
}

static json_t *dsl(const char *text)
{
    aos_err_t err = {0, ""};
    json_t *p = aos_dsl_parse(text, strlen(text), &err);
    if (!p)
        fail_msg("DSL refused:\n%s\n%s", text, err.msg);
    return p;
}

static void dsl_refused(const char *text, const char *msg)
{
    aos_err_t err = {0, ""};
    json_t *p = aos_dsl_parse(text, strlen(text), &err);
    if (p) {
        char *s = json_dumps(p, JSON_COMPACT);
        json_decref(p);
        print_error("DSL accepted:\n%s\nas %s\n", text, s);
        free(s);
        fail();
    }
    if (err.code != AOS_EINVAL || strcmp(err.msg, msg))
        fail_msg("for DSL:\n%s\n got: %s (%s)\nwant: %s", text, err.msg, aos_err_name(err.code),
                 msg);
}

/* ---- validation: the normalized form ------------------------------------------------- */

static void test_validate_normalizes(void **state)
{
    json_t *p = valid("{\"steps\":["
                      "{\"id\":\"s1\",\"tool\":\"files__read\"},"
                      "{\"id\":\"gate\",\"approval\":{\"message\":\"go?\"}},"
                      "{\"id\":\"m1\",\"milestone\":\"done\"}]}",
                      NULL);
    expect_json(p, "{\"steps\":["
                   "{\"id\":\"s1\",\"tool\":\"files__read\",\"args\":{},"
                   "\"check\":{\"non_empty\":false,\"not_error\":true},"
                   "\"retry\":{\"max\":0,\"backoff_ms\":500},\"optional\":false},"
                   "{\"id\":\"gate\",\"approval\":{\"message\":\"go?\",\"timeout_s\":3600,"
                   "\"on_timeout\":\"abort\"}},"
                   "{\"id\":\"m1\",\"milestone\":\"done\"}]}");
    /* normalized again: the same (a fixed point) */
    aos_err_t err = {0, ""};
    json_t *again = aos_plan_validate(p, NULL, &err);
    assert_true(json_equal(p, again));
    json_decref(again);
    json_decref(p);

    /* every field given, as the doc's example */
    p = valid("{\"steps\":[{\"id\":\"s1\",\"tool\":\"files__read\",\"args\":{\"path\":"
              "\"${inputs.file}\"},\"check\":{\"non_empty\":true,\"contains\":\"a\","
              "\"matches\":\"^a\",\"schema\":{\"type\":\"string\"}},\"retry\":{\"max\":2,"
              "\"backoff_ms\":100},\"fallback\":\"s1b\",\"optional\":true,\"timeout_ms\":"
              "5000},{\"id\":\"s1b\",\"tool\":\"files__stat\"},{\"id\":\"gate\","
              "\"approval\":{\"message\":\"Plot ${s1.result.rows} rows?\",\"timeout_s\":600,"
              "\"on_timeout\":\"downgrade\"}},{\"id\":\"s2\",\"tool\":\"viz__plot\","
              "\"args\":{\"data\":\"${s1.result}\"},\"when\":\"${gate.decision}!='downgrade'\"},"
              "{\"id\":\"m1\",\"milestone\":\"plotted\",\"when\":\"!${s2.result}\"}]}",
              NULL);
    expect_json(p, "{\"steps\":[{\"id\":\"s1\",\"tool\":\"files__read\",\"args\":{\"path\":"
                   "\"${inputs.file}\"},\"check\":{\"non_empty\":true,\"not_error\":true,"
                   "\"contains\":\"a\",\"matches\":\"^a\",\"schema\":{\"type\":\"string\"}},"
                   "\"retry\":{\"max\":2,\"backoff_ms\":100},\"fallback\":\"s1b\","
                   "\"optional\":true,\"timeout_ms\":5000},"
                   "{\"id\":\"s1b\",\"tool\":\"files__stat\",\"args\":{},\"check\":{"
                   "\"non_empty\":false,\"not_error\":true},\"retry\":{\"max\":0,"
                   "\"backoff_ms\":500},\"optional\":false},"
                   "{\"id\":\"gate\",\"approval\":{\"message\":\"Plot ${s1.result.rows} rows?\","
                   "\"timeout_s\":600,\"on_timeout\":\"downgrade\"}},"
                   "{\"id\":\"s2\",\"tool\":\"viz__plot\",\"args\":{\"data\":\"${s1.result}\"},"
                   "\"check\":{\"non_empty\":false,\"not_error\":true},\"retry\":{\"max\":0,"
                   "\"backoff_ms\":500},\"optional\":false,"
                   "\"when\":\"${gate.decision} != 'downgrade'\"},"
                   "{\"id\":\"m1\",\"milestone\":\"plotted\",\"when\":\"!${s2.result}\"}]}");
    json_decref(p);

    /* retry as a count */
    p = valid("{\"steps\":[{\"id\":\"s1\",\"tool\":\"x__y\",\"retry\":3}]}", NULL);
    expect_json(json_object_get(json_array_get(json_object_get(p, "steps"), 0), "retry"),
                "{\"max\":3,\"backoff_ms\":500}");
    json_decref(p);
}

/* ---- validation: every rule ------------------------------------------------------------ */

static void test_validate_plan_shape(void **state)
{
    refused("[]", NULL, AOS_EINVAL, "plan: must be an object {\"steps\": [...]}");
    refused("{\"steps\":[],\"why\":1}", NULL, AOS_EINVAL,
            "why: unknown field (a plan has steps only)");
    refused("{}", NULL, AOS_EINVAL, "steps: must be an array of 1 to 1000 steps");
    refused("{\"steps\":{}}", NULL, AOS_EINVAL, "steps: must be an array of 1 to 1000 steps");
    refused("{\"steps\":[]}", NULL, AOS_EINVAL, "steps: must be an array of 1 to 1000 steps");
    aos_plan_opts_t two = {.max_steps = 2};
    refused("{\"steps\":[{\"id\":\"a\",\"milestone\":\"x\"},{\"id\":\"b\",\"milestone\":\"x\"},"
            "{\"id\":\"c\",\"milestone\":\"x\"}]}",
            &two, AOS_EINVAL, "steps: must be an array of 1 to 2 steps");
    json_decref(valid("{\"steps\":[{\"id\":\"a\",\"milestone\":\"x\"},{\"id\":\"b\","
                      "\"milestone\":\"x\"}]}",
                      &two));
    /* 1000 steps by default, 1001 refused */
    json_t *steps = json_array();
    for (int i = 0; i < 1001; i++) {
        char id[16];
        snprintf(id, sizeof(id), "m%d", i);
        json_array_append_new(steps, json_pack("{s:s, s:s}", "id", id, "milestone", "x"));
    }
    json_t *plan = json_pack("{s:o}", "steps", steps);
    aos_err_t err = {0, ""};
    assert_null(aos_plan_validate(plan, NULL, &err));
    assert_string_equal(err.msg, "steps: must be an array of 1 to 1000 steps");
    json_array_remove(steps, 1000);
    json_t *ok = aos_plan_validate(plan, NULL, &err);
    assert_non_null(ok);
    json_decref(ok);
    json_decref(plan);
    refused("{\"steps\":[7]}", NULL, AOS_EINVAL, "steps[0]: must be an object");
}

static void test_validate_ids(void **state)
{
    const char *bad[] = {
        "{}",
        "{\"id\":3}",
        "{\"id\":\"\"}",
        "{\"id\":\"1a\"}",
        "{\"id\":\"a.b\"}",
        "{\"id\":\"a b\"}",
        "{\"id\":\"-a\"}",
        "{\"id\":\"a123456789012345678901234567890123456789012345678901234567890123"
        "4\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"steps\":[%s]}", bad[i]);
        refused(text, NULL, AOS_EINVAL, "steps[0].id: must match [A-Za-z_][A-Za-z0-9_-]{0,63}");
    }
    /* 64 characters, '_' and '-' are fine */
    json_decref(
        valid("{\"steps\":[{\"id\":\"a12345678901234567890123456789012345678901234567890"
              "1234567890123\",\"milestone\":\"x\"},{\"id\":\"_b-c\",\"milestone\":\"x\"}]}",
              NULL));
    refused("{\"steps\":[{\"id\":\"inputs\",\"milestone\":\"x\"}]}", NULL, AOS_EINVAL,
            "steps[0] (inputs).id: 'inputs' is reserved (references use it)");
    refused("{\"steps\":[{\"id\":\"task\",\"milestone\":\"x\"}]}", NULL, AOS_EINVAL,
            "steps[0] (task).id: 'task' is reserved (references use it)");
    refused("{\"steps\":[{\"id\":\"a\",\"milestone\":\"x\"},{\"id\":\"b\",\"milestone\":\"x\"},"
            "{\"id\":\"a\",\"milestone\":\"y\"}]}",
            NULL, AOS_EINVAL, "steps[2] (a).id: duplicate of steps[0]");
}

static void test_validate_kinds(void **state)
{
    refused("{\"steps\":[{\"id\":\"a\"}]}", NULL, AOS_EINVAL,
            "steps[0] (a): needs exactly one of tool, approval and milestone");
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"milestone\":\"m\"}]}", NULL, AOS_EINVAL,
            "steps[0] (a): needs exactly one of tool, approval and milestone");
    refused("{\"steps\":[{\"id\":\"a\",\"milestone\":\"x\",\"colour\":1}]}", NULL, AOS_EINVAL,
            "steps[0] (a).colour: unknown field");
    /* tool-only fields on other steps */
    const char *fields[] = {"args", "check", "retry", "fallback", "optional", "timeout_ms"};
    for (size_t i = 0; i < 6; i++) {
        char text[256], msg[128];
        snprintf(text, sizeof(text),
                 "{\"steps\":[{\"id\":\"g\",\"approval\":{\"message\":\"m\"},\"%s\":1}]}",
                 fields[i]);
        snprintf(msg, sizeof(msg), "steps[0] (g).%s: only a tool step has %s", fields[i],
                 fields[i]);
        refused(text, NULL, AOS_EINVAL, msg);
        snprintf(text, sizeof(text), "{\"steps\":[{\"id\":\"g\",\"milestone\":\"m\",\"%s\":1}]}",
                 fields[i]);
        refused(text, NULL, AOS_EINVAL, msg);
    }
}

static void test_validate_tool(void **state)
{
    const char *msg = "steps[0] (s1).tool: must be <server>__<tool> (server "
                      "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}, tool [A-Za-z0-9_./-], at most 192 bytes "
                      "in all)";
    const char *bad[] = {"\"xy\"",     "\"__y\"",    "\"x__\"",    "\"-x__y\"",
                         "\"x y__z\"", "\"x__y z\"", "\"x__y:z\"", "\"_x__y\""};
    for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
        char text[256];
        snprintf(text, sizeof(text), "{\"steps\":[{\"id\":\"s1\",\"tool\":%s}]}", bad[i]);
        refused(text, NULL, AOS_EINVAL, msg);
    }
    refused("{\"steps\":[{\"id\":\"s1\",\"tool\":7}]}", NULL, AOS_EINVAL,
            "steps[0] (s1).tool: must be a string: <server>__<tool>");
    /* a server name of 65 characters */
    refused("{\"steps\":[{\"id\":\"s1\",\"tool\":\"a1234567890123456789012345678901234567890123456"
            "789012345678901234__t\"}]}",
            NULL, AOS_EINVAL, msg);
    /* accepted shapes: the logs server's dotted tool, a digit first, a slash */
    json_decref(
        valid("{\"steps\":[{\"id\":\"a\",\"tool\":\"logs__logs.query\"},{\"id\":\"b\","
              "\"tool\":\"2fa__verify\"},{\"id\":\"c\",\"tool\":\"my-srv.v2__ns/tool_x\"}]}",
              NULL));

    /* allowed tools */
    json_t *allow = J("[\"files__*\", \"csv__clean\", \"*__ping\", \"a*b__c\"]");
    aos_plan_opts_t opts = {.tools = allow};
    json_decref(
        valid("{\"steps\":[{\"id\":\"a\",\"tool\":\"files__read\"},{\"id\":\"b\",\"tool\":"
              "\"csv__clean\"},{\"id\":\"c\",\"tool\":\"any__ping\"},{\"id\":\"d\",\"tool\":"
              "\"axxb__c\"},{\"id\":\"e\",\"tool\":\"ab__c\"}]}",
              &opts));
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"csv__clean2\"}]}", &opts, AOS_EFORBIDDEN,
            "steps[0] (a).tool: 'csv__clean2' is not among the tools this task may use");
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"filesx__read\"}]}", &opts, AOS_EFORBIDDEN,
            "steps[0] (a).tool: 'filesx__read' is not among the tools this task may use");
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"any__pingx\"}]}", &opts, AOS_EFORBIDDEN,
            "steps[0] (a).tool: 'any__pingx' is not among the tools this task may use");
    json_decref(allow);
    allow = J("[]");
    opts.tools = allow;
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\"}]}", &opts, AOS_EFORBIDDEN,
            "steps[0] (a).tool: 'x__y' is not among the tools this task may use");
    /* approvals and milestones need no tool permission */
    json_decref(valid("{\"steps\":[{\"id\":\"a\",\"milestone\":\"m\"}]}", &opts));
    json_decref(allow);
    allow = J("[\"*\"]");
    opts.tools = allow;
    json_decref(valid("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\"}]}", &opts));
    json_decref(allow);
}

/* aos__json_copy: what json_deep_copy makes (types, members in order),
 * and a value of its own: changing the copy leaves the original. */
static void test_json_copy_is_a_deep_copy(void **state)
{
    (void)state;
    json_t *v = json_loads("{\"z\":1,\"a\":[true,false,null,-2.5,\"x\\u0000y\",{\"k\":[[]]}],"
                           "\"m\":{},\"n\":{\"q\":\"caf\\u00e9\"}}",
                           JSON_ALLOW_NUL, NULL);
    assert_non_null(v);
    json_t *c = aos__json_copy(v), *d = json_deep_copy(v);
    char *a = json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY),
         *b = json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_string_equal(a, b);
    assert_int_equal(json_string_length(json_array_get(json_object_get(c, "a"), 4)), 3);
    assert_ptr_not_equal(c, v);
    json_object_set_new(json_object_get(c, "n"), "q", json_integer(7));
    json_integer_set(json_object_get(c, "z"), 2);
    json_array_append_new(json_object_get(c, "a"), json_null());
    assert_true(json_equal(v, d));
    assert_null(aos__json_copy(NULL));
    json_t *s = json_string("alone");
    json_t *sc = aos__json_copy(s);
    assert_ptr_not_equal(s, sc);
    assert_string_equal(json_string_value(sc), "alone");
    free(a);
    free(b);
    json_decref(s);
    json_decref(sc);
    json_decref(c);
    json_decref(d);
    json_decref(v);
}

static void test_validate_args(void **state)
{
    tool_refused("\"args\":[]", "steps[0] (s1).args: must be an object");
    tool_refused("\"args\":\"x\"", "steps[0] (s1).args: must be an object");
    /* a value 33 deep (args itself is 0): refused; 32: fine */
    for (int depth = 32; depth <= 33; depth++) {
        char text[1024] = "{\"steps\":[{\"id\":\"s1\",\"tool\":\"x__y\",\"args\":";
        char path[256] = "steps[0] (s1).args";
        for (int i = 0; i < depth; i++) {
            cat(text, sizeof(text), "{\"a\":");
            cat(path, sizeof(path), ".a");
        }
        cat(text, sizeof(text), "1");
        for (int i = 0; i < depth; i++)
            cat(text, sizeof(text), "}");
        cat(text, sizeof(text), "}]}");
        cat(path, sizeof(path), ": nested deeper than 32");
        if (depth == 32)
            json_decref(valid(text, NULL));
        else
            refused(text, NULL, AOS_EINVAL, path);
    }
    /* a NUL in a string */
    tool_refused("\"args\":{\"p\":[\"a\\u0000b\"]}",
                 "steps[0] (s1).args.p[0]: a string holds a NUL character");
    /* the path names odd keys with ["..."] */
    tool_refused("\"args\":{\"a b\":{\"c\":\"${zz.result}\"}}",
                 "steps[0] (s1).args[\"a b\"].c: '${zz.result}': no step 'zz' (nor inputs or "
                 "task)");
}

static void test_validate_references(void **state)
{
    const char *head = "{\"steps\":[{\"id\":\"t\",\"tool\":\"x__y\"},{\"id\":\"g\",\"approval\":{"
                       "\"message\":\"m\"}},{\"id\":\"m\",\"milestone\":\"x\"},";
    struct {
        const char *value, *msg;
    } cases[] = {
        {"${zz.result}", "'${zz.result}': no step 'zz' (nor inputs or task)"},
        {"${me.result}", "'${me.result}': step 'me' does not run before this one"},
        {"${later.result}", "'${later.result}': step 'later' does not run before this one"},
        {"${m.result}", "'${m.result}': step 'm' is a milestone, with no value"},
        {"${t}", "'${t}': step 't' is a tool step: use ${t.result...}"},
        {"${t.decision}", "'${t.decision}': step 't' is a tool step: use ${t.result...}"},
        {"${t[0]}", "'${t[0]}': step 't' is a tool step: use ${t.result...}"},
        {"${g.result}", "'${g.result}': step 'g' is an approval: use ${g.decision...}"},
        {"${g.decision.x}", "'${g.decision.x}': a decision is a string, with no parts"},
        {"${task}", "'${task}': a task reference is ${task.trace_id} or ${task.workspace}"},
        {"${task.goal}", "'${task.goal}': a task reference is ${task.trace_id} or "
                         "${task.workspace}"},
        {"${task.trace_id.x}", "'${task.trace_id.x}': a task reference is ${task.trace_id} or "
                               "${task.workspace}"},
        {"${inputs[0]}", "'${inputs[0]}': inputs is an object, not an array"},
        {"x ${t.result", "malformed reference '${t.result': missing '}'"},
        {"${}", "malformed reference '${}': expected inputs, task or a step id after '${'"},
        {"${t.}", "malformed reference '${t.}': expected a name after '.'"},
        {"${t.result[x]}", "malformed reference '${t.result[x': expected an index of 1 to 9 "
                           "digits in [...]"},
        {"${t.result[1}", "malformed reference '${t.result[1}': missing ']'"},
        {"${t.result[-0]}", "malformed reference '${t.result[-0]': [-0] is not an index"},
        {"${t.result[\\\"a]}", "malformed reference '${t.result[\"a]}': missing '\"]'"},
        {"${t.result[\\\"a\\\"}", "malformed reference '${t.result[\"a\"}': missing ']' after "
                                  "[\"...\""},
        {"${t.result x}", "malformed reference '${t.result ': expected '.', '[' or '}'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char text[512], msg[300];
        snprintf(text, sizeof(text),
                 "%s{\"id\":\"me\",\"tool\":\"x__y\",\"args\":{\"v\":\"%s\"}},{\"id\":\"later\","
                 "\"milestone\":\"x\"}]}",
                 head, cases[i].value);
        snprintf(msg, sizeof(msg), "steps[3] (me).args.v: %s", cases[i].msg);
        refused(text, NULL, AOS_EINVAL, msg);
    }
    /* what is fine: paths, quoted keys, indexes from the end, escapes */
    char text[1024];
    snprintf(
        text, sizeof(text),
        "%s{\"id\":\"me\",\"tool\":\"x__y\",\"args\":{\"a\":\"${t.result.rows[0].x}\","
        "\"b\":\"${t.result[\\\"a b\\\"][-1]}\",\"c\":\"${g.decision}\",\"d\":"
        "\"${task.trace_id}/${task.workspace}\",\"e\":\"$${zz.result} $$ $\",\"f\":"
        "\"${inputs}\",\"g\":\"${inputs.anything.at.all}\",\"h\":\"${t.result.\xe6\x97\xa5}\"}}]}",
        head);
    json_decref(valid(text, NULL));
    /* with the task's inputs known, a reference must name one of them */
    json_t *inputs = J("{\"file\":\"a.csv\"}");
    aos_plan_opts_t opts = {.inputs = inputs};
    json_decref(valid("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"args\":{\"p\":"
                      "\"${inputs.file}\"}}]}",
                      &opts));
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"args\":{\"p\":\"${inputs.path}\"}}]}",
            &opts, AOS_EINVAL,
            "steps[0] (a).args.p: '${inputs.path}': the task has no input 'path'");
    json_decref(inputs);
    /* references in approval messages and milestone labels are checked too */
    refused("{\"steps\":[{\"id\":\"g\",\"approval\":{\"message\":\"${x.result}\"}}]}", NULL,
            AOS_EINVAL,
            "steps[0] (g).approval.message: '${x.result}': no step 'x' (nor inputs or task)");
    refused("{\"steps\":[{\"id\":\"m\",\"milestone\":\"${m.result}\"}]}", NULL, AOS_EINVAL,
            "steps[0] (m).milestone: '${m.result}': step 'm' does not run before this one");
    /* a reference of more than 32 parts, or longer than 1024 bytes */
    char many[512] = "${t.result";
    for (int i = 0; i < 32; i++)
        cat(many, sizeof(many), ".a");
    cat(many, sizeof(many), "}");
    snprintf(text, sizeof(text), "%s{\"id\":\"me\",\"tool\":\"x__y\",\"args\":{\"v\":\"%s\"}}]}",
             head, many);
    refused(text, NULL, AOS_EINVAL,
            "steps[3] (me).args.v: malformed reference '${t.result.a.a.a.a.a.a.a.a.a.a.a.a.a.a."
            "a.a.a.a.a.a.a.a.a.a.a...': more than 32 parts");
    many[strlen(many) - 3] = '}';
    many[strlen(many) - 2] = '\0';
    snprintf(text, sizeof(text), "%s{\"id\":\"me\",\"tool\":\"x__y\",\"args\":{\"v\":\"%s\"}}]}",
             head, many);
    json_decref(valid(text, NULL));
    char longref[1200] = "${t.result.";
    memset(longref + 11, 'a', 1020);
    longref[1031] = '}';
    longref[1032] = '\0';
    char big[1400];
    snprintf(big, sizeof(big), "%s{\"id\":\"me\",\"tool\":\"x__y\",\"args\":{\"v\":\"%s\"}}]}",
             head, longref);
    json_t *in = J(big);
    aos_err_t err = {0, ""};
    assert_null(aos_plan_validate(in, NULL, &err));
    assert_non_null(strstr(err.msg, "': longer than 1024 bytes"));
    json_decref(in);
}

static void test_validate_approval(void **state)
{
    const char *p = "{\"steps\":[{\"id\":\"g\",\"approval\":%s}]}";
    struct {
        const char *approval, *msg;
    } cases[] = {
        {"\"go?\"", "steps[0] (g).approval: must be an object with a message"},
        {"{}", "steps[0] (g).approval.message: must be a string of 1 to 4096 bytes"},
        {"{\"message\":\"\"}",
         "steps[0] (g).approval.message: must be a string of 1 to 4096 bytes"},
        {"{\"message\":3}", "steps[0] (g).approval.message: must be a string of 1 to 4096 bytes"},
        {"{\"message\":\"m\",\"timeout_s\":0}",
         "steps[0] (g).approval.timeout_s: must be an integer 1..2592000"},
        {"{\"message\":\"m\",\"timeout_s\":2592001}",
         "steps[0] (g).approval.timeout_s: must be an integer 1..2592000"},
        {"{\"message\":\"m\",\"timeout_s\":1.5}",
         "steps[0] (g).approval.timeout_s: must be an integer 1..2592000"},
        {"{\"message\":\"m\",\"on_timeout\":\"continue\"}",
         "steps[0] (g).approval.on_timeout: must be approve, abort or downgrade"},
        {"{\"message\":\"m\",\"decisions\":[]}",
         "steps[0] (g).approval: unknown field 'decisions' (message, timeout_s, on_timeout)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char text[256];
        snprintf(text, sizeof(text), p, cases[i].approval);
        refused(text, NULL, AOS_EINVAL, cases[i].msg);
    }
    char text[5000];
    char msg[4200];
    memset(msg, 'x', 4097);
    msg[4097] = '\0';
    snprintf(text, sizeof(text), "{\"steps\":[{\"id\":\"g\",\"approval\":{\"message\":\"%s\"}}]}",
             msg);
    refused(text, NULL, AOS_EINVAL,
            "steps[0] (g).approval.message: must be a string of 1 to 4096 bytes");
    msg[4096] = '\0';
    snprintf(text, sizeof(text),
             "{\"steps\":[{\"id\":\"g\",\"approval\":{\"message\":\"%s\","
             "\"timeout_s\":2592000,\"on_timeout\":\"approve\"}}]}",
             msg);
    json_decref(valid(text, NULL));
}

static void test_validate_milestone(void **state)
{
    const char *msg = "steps[0] (m).milestone: must be a label of 1 to 256 bytes";
    refused("{\"steps\":[{\"id\":\"m\",\"milestone\":\"\"}]}", NULL, AOS_EINVAL, msg);
    refused("{\"steps\":[{\"id\":\"m\",\"milestone\":true}]}", NULL, AOS_EINVAL, msg);
    char label[300], text[400];
    memset(label, 'l', 257);
    label[257] = '\0';
    snprintf(text, sizeof(text), "{\"steps\":[{\"id\":\"m\",\"milestone\":\"%s\"}]}", label);
    refused(text, NULL, AOS_EINVAL, msg);
    label[256] = '\0';
    snprintf(text, sizeof(text), "{\"steps\":[{\"id\":\"m\",\"milestone\":\"%s\"}]}", label);
    json_decref(valid(text, NULL));
}

static void test_validate_check(void **state)
{
    tool_refused("\"check\":true", "steps[0] (s1).check: must be an object");
    tool_refused("\"check\":{\"non_empty\":1}",
                 "steps[0] (s1).check.non_empty: must be true or false");
    tool_refused("\"check\":{\"not_error\":\"no\"}",
                 "steps[0] (s1).check.not_error: must be true or false");
    tool_refused("\"check\":{\"contains\":\"\"}",
                 "steps[0] (s1).check.contains: must be a string of 1 to 4096 bytes (no NUL)");
    tool_refused("\"check\":{\"contains\":[\"a\"]}",
                 "steps[0] (s1).check.contains: must be a string of 1 to 4096 bytes (no NUL)");
    tool_refused("\"check\":{\"matches\":1}",
                 "steps[0] (s1).check.matches: must be a string: a POSIX extended regular "
                 "expression");
    tool_refused("\"check\":{\"matches\":\"a(\"}",
                 "steps[0] (s1).check.matches: invalid regular expression: Unmatched ( or \\(");
    tool_refused("\"check\":{\"matches\":\"(a)\\\\1\"}",
                 "steps[0] (s1).check.matches: back-references (\\1 ...) are not supported");
    tool_refused("\"check\":{\"matches\":\"(a{100}){100}\"}",
                 "steps[0] (s1).check.matches: regular expression too complex");
    tool_refused("\"check\":{\"matches\":\"a{256}\"}",
                 "steps[0] (s1).check.matches: a repetition count over 255");
    tool_refused("\"check\":{\"schema\":[]}",
                 "steps[0] (s1).check.schema: must be an object (a schema)");
    tool_refused("\"check\":{\"schema\":{\"type\":\"int\"}}",
                 "steps[0] (s1).check.schema: type: unknown type 'int'");
    tool_refused("\"check\":{\"schema\":{\"properties\":{\"rows\":{\"type\":[\"integer\",1]}}}}",
                 "steps[0] (s1).check.schema: properties.rows.type: must be a type name or an "
                 "array of them");
    tool_refused("\"check\":{\"schema\":{\"items\":{\"pattern\":\"x\"}}}",
                 "steps[0] (s1).check.schema: items.pattern: unsupported keyword (type, required, "
                 "properties, items, enum, minimum, maximum, minLength, maxLength, minItems, "
                 "maxItems, description, title)");
    tool_refused("\"check\":{\"schema\":{\"required\":\"a\"}}",
                 "steps[0] (s1).check.schema: required: must be an array of property names");
    tool_refused("\"check\":{\"schema\":{\"enum\":[]}}",
                 "steps[0] (s1).check.schema: enum: must be a non-empty array");
    tool_refused("\"check\":{\"schema\":{\"minimum\":\"1\"}}",
                 "steps[0] (s1).check.schema: minimum: must be a number");
    tool_refused("\"check\":{\"schema\":{\"minLength\":-1}}",
                 "steps[0] (s1).check.schema: minLength: must be a non-negative integer");
    tool_refused("\"check\":{\"schema\":{\"properties\":[]}}",
                 "steps[0] (s1).check.schema: properties: must be an object of schemas");
    tool_refused("\"check\":{\"schema\":{\"title\":1}}",
                 "steps[0] (s1).check.schema: title: must be a string");
    tool_refused("\"check\":{\"regex\":\"a\"}",
                 "steps[0] (s1).check: unknown field 'regex' (non_empty, not_error, contains, "
                 "matches, schema, llm)");
    tool_refused("\"check\":{\"llm\":\"\"}",
                 "steps[0] (s1).check.llm: must be a string of 1 to 4096 bytes (no NUL)");
    /* a schema nested past 32 */
    char text[2048] = "\"check\":{\"schema\":";
    for (int i = 0; i < 17; i++)
        cat(text, sizeof(text), "{\"items\":");
    cat(text, sizeof(text), "{}");
    for (int i = 0; i < 17; i++)
        cat(text, sizeof(text), "}");
    cat(text, sizeof(text), "}");
    json_decref(valid("{\"steps\":[{\"id\":\"s1\",\"tool\":\"x__y\",\"check\":{\"schema\":{"
                      "\"type\":[\"object\",\"null\"],\"required\":[\"a\"],\"properties\":{\"a\":{"
                      "\"enum\":[1,\"x\"],\"minimum\":0,\"maximum\":9.5}},\"items\":{\"minLength\":"
                      "1,\"maxLength\":2,\"minItems\":0,\"maxItems\":3},\"title\":\"t\","
                      "\"description\":\"d\"}}}]}",
                      NULL));
    char deep[4096] = "\"check\":{\"schema\":";
    for (int i = 0; i < 33; i++)
        cat(deep, sizeof(deep), "{\"items\":");
    cat(deep, sizeof(deep), "1");
    for (int i = 0; i < 33; i++)
        cat(deep, sizeof(deep), "}");
    cat(deep, sizeof(deep), "}");
    tool_refused(deep, "steps[0] (s1).check.schema: nested deeper than 32");
}

static void test_validate_retry_fallback_when(void **state)
{
    tool_refused("\"retry\":11", "steps[0] (s1).retry: must be an integer 0..10 or an object");
    tool_refused("\"retry\":-1", "steps[0] (s1).retry: must be an integer 0..10 or an object");
    tool_refused("\"retry\":\"2\"", "steps[0] (s1).retry: must be an integer 0..10 or an object");
    tool_refused("\"retry\":{\"max\":11}", "steps[0] (s1).retry.max: must be an integer 0..10");
    tool_refused("\"retry\":{\"max\":1.0}", "steps[0] (s1).retry.max: must be an integer 0..10");
    tool_refused("\"retry\":{\"backoff_ms\":600001}",
                 "steps[0] (s1).retry.backoff_ms: must be an integer 0..600000");
    tool_refused("\"retry\":{\"tries\":1}",
                 "steps[0] (s1).retry: unknown field 'tries' (max, backoff_ms)");
    tool_refused("\"optional\":1", "steps[0] (s1).optional: must be true or false");
    tool_refused("\"timeout_ms\":0", "steps[0] (s1).timeout_ms: must be an integer 1..3600000");
    tool_refused("\"timeout_ms\":3600001",
                 "steps[0] (s1).timeout_ms: must be an integer 1..3600000");

    tool_refused("\"fallback\":1",
                 "steps[0] (s1).fallback: must be the id of a later step or a tool");
    tool_refused("\"fallback\":\"zz\"", "steps[0] (s1).fallback: no step 'zz'");
    tool_refused("\"fallback\":\"s1\"", "steps[0] (s1).fallback: step 's1' is not after this one");
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\"},{\"id\":\"b\",\"tool\":\"x__y\","
            "\"fallback\":\"a\"}]}",
            NULL, AOS_EINVAL, "steps[1] (b).fallback: step 'a' is not after this one");
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"fallback\":\"c\"},{\"id\":\"b\","
            "\"tool\":\"x__y\",\"fallback\":\"c\"},{\"id\":\"c\",\"tool\":\"x__y\"}]}",
            NULL, AOS_EINVAL,
            "steps[1] (b).fallback: step 'c' is already the fallback of steps[0]");
    /* a fallback that is a tool becomes a step: the tool with the step's
     * args, check and timeout, run only in its stead */
    json_t *p = valid("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"args\":{\"q\":1},"
                      "\"check\":{\"non_empty\":true},\"timeout_ms\":5000,\"fallback\":"
                      "\"x__z\"},{\"id\":\"b\",\"milestone\":\"m\"}]}",
                      NULL);
    expect_json(p, "{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"args\":{\"q\":1},"
                   "\"check\":{\"non_empty\":true,\"not_error\":true},\"retry\":{\"max\":0,"
                   "\"backoff_ms\":500},\"timeout_ms\":5000,\"fallback\":\"a-fallback\","
                   "\"optional\":false},{\"id\":\"b\",\"milestone\":\"m\"},"
                   "{\"id\":\"a-fallback\",\"tool\":\"x__z\",\"args\":{\"q\":1},\"check\":{"
                   "\"non_empty\":true,\"not_error\":true},\"retry\":{\"max\":0,"
                   "\"backoff_ms\":500},\"timeout_ms\":5000,\"optional\":false}]}");
    json_decref(p);
    /* ... and the tools a caller allows apply to it */
    json_t *tools = json_pack("[s]", "x__y");
    aos_plan_opts_t o = {.tools = tools};
    refused("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"fallback\":\"x__z\"}]}", &o,
            AOS_EFORBIDDEN,
            "steps[1] (a-fallback).tool: 'x__z' is not among the tools this task may use");
    json_decref(tools);
    /* a chain of fallbacks, and a fallback that is an approval */
    json_decref(valid("{\"steps\":[{\"id\":\"a\",\"tool\":\"x__y\",\"fallback\":\"b\"},{\"id\":"
                      "\"b\",\"tool\":\"x__y\",\"fallback\":\"c\"},{\"id\":\"c\",\"approval\":{"
                      "\"message\":\"m\"}}]}",
                      NULL));

    tool_refused("\"when\":true",
                 "steps[0] (s1).when: must be a string: ${REF}, !${REF}, ${REF} == LITERAL or "
                 "${REF} != LITERAL");
    tool_refused("\"when\":\"yes\"",
                 "steps[0] (s1).when: expected a reference: ${REF}, !${REF}, ${REF} == LITERAL or "
                 "${REF} != LITERAL");
    tool_refused("\"when\":\"${inputs.a} = 1\"",
                 "steps[0] (s1).when: unexpected '= 1' after the condition");
    tool_refused("\"when\":\"${inputs.a} == \"",
                 "steps[0] (s1).when: expected a literal after the operator ('text', a number, "
                 "true, false or null)");
    tool_refused("\"when\":\"${inputs.a} == yes\"",
                 "steps[0] (s1).when: expected a literal after the operator ('text', a number, "
                 "true, false or null)");
    tool_refused("\"when\":\"!${inputs.a} == 1\"",
                 "steps[0] (s1).when: unexpected '== 1' after the condition");
    tool_refused("\"when\":\"${inputs.a} == 'x\"", "steps[0] (s1).when: unterminated string at "
                                                   "offset 17");
    tool_refused("\"when\":\"${inputs.a} == '${s1.result}'\"",
                 "steps[0] (s1).when: a literal may not contain '${'");
    tool_refused("\"when\":\"${s1.result}\"",
                 "steps[0] (s1).when: '${s1.result}': step 's1' does not run before this one");
    tool_refused("\"when\":\"${inputs.a} == 1e999\"",
                 "steps[0] (s1).when: number out of range: 1e999");
    /* canonical spelling */
    p = valid("{\"steps\":[{\"id\":\"g\",\"approval\":{\"message\":\"m\"}},{\"id\":\"m\","
              "\"milestone\":\"x\",\"when\":\"  ${g.decision}==\\\"a b\\\"  \"},{\"id\":"
              "\"n\",\"milestone\":\"x\",\"when\":\"! ${g.decision}\"},{\"id\":\"o\","
              "\"milestone\":\"x\",\"when\":\"${inputs.n}!=-1.5e3\"}]}",
              NULL);
    json_t *st = json_object_get(p, "steps");
    assert_string_equal(json_string_value(json_object_get(json_array_get(st, 1), "when")),
                        "${g.decision} == \"a b\"");
    assert_string_equal(json_string_value(json_object_get(json_array_get(st, 2), "when")),
                        "!${g.decision}");
    assert_string_equal(json_string_value(json_object_get(json_array_get(st, 3), "when")),
                        "${inputs.n} != -1.5e3");
    json_decref(p);
}

/* ---- references ----------------------------------------------------------------------- */

static const char *SCOPE =
    "{\"inputs\":{\"file\":\"data.csv\",\"n\":3},"
    "\"steps\":{\"s1\":{\"result\":{\"rows\":42,\"ok\":true,\"ratio\":0.5,\"none\":null,"
    "\"cols\":[\"month\",\"revenue\"],\"obj\":{\"a\":1},\"a b\":\"spaced\",\"q\\\"\":\"quoted\","
    "\"\xe6\x97\xa5\":\"day\"}},"
    "\"gate\":{\"decision\":\"downgrade\"}},"
    "\"task\":{\"trace_id\":\"t-1\",\"workspace\":\"/data/ws/t-1\"}}";

static void resolves(const char *value, const char *want)
{
    json_t *scope = J(SCOPE), *v = J(value);
    aos_err_t err = {0, ""};
    json_t *got = aos_plan_resolve(v, scope, &err);
    if (!got)
        fail_msg("%s: %s", value, err.msg);
    expect_json(got, want);
    json_decref(got);
    json_decref(v);
    json_decref(scope);
}

static void resolve_fails(const char *value, int code, const char *msg)
{
    json_t *scope = J(SCOPE), *v = J(value);
    aos_err_t err = {0, ""};
    json_t *got = aos_plan_resolve(v, scope, &err);
    if (got)
        fail_msg("%s resolved", value);
    if (err.code != code || strcmp(err.msg, msg))
        fail_msg("for %s\n got: %s (%s)\nwant: %s", value, err.msg, aos_err_name(err.code), msg);
    json_decref(v);
    json_decref(scope);
}

static void test_resolve_types(void **state)
{
    /* a whole-string reference keeps the type */
    resolves("\"${s1.result.rows}\"", "42");
    resolves("\"${s1.result.ok}\"", "true");
    resolves("\"${s1.result.ratio}\"", "0.5");
    resolves("\"${s1.result.none}\"", "null");
    resolves("\"${s1.result.cols}\"", "[\"month\",\"revenue\"]");
    resolves("\"${s1.result.obj}\"", "{\"a\":1}");
    resolves("\"${inputs.n}\"", "3");
    resolves("\"${inputs}\"", "{\"file\":\"data.csv\",\"n\":3}");
    resolves("\"${gate.decision}\"", "\"downgrade\"");
    /* inside a longer string: text */
    resolves("\"rows=${s1.result.rows} ok=${s1.result.ok} r=${s1.result.ratio} "
             "n=${s1.result.none} c=${s1.result.cols} o=${s1.result.obj}\"",
             "\"rows=42 ok=true r=0.5 n=null c=[\\\"month\\\",\\\"revenue\\\"] o={\\\"a\\\":1}\"");
    resolves("\"${task.workspace}/${inputs.file}\"", "\"/data/ws/t-1/data.csv\"");
    /* paths */
    resolves("\"${s1.result.cols[1]}\"", "\"revenue\"");
    resolves("\"${s1.result.cols[-1]}\"", "\"revenue\"");
    resolves("\"${s1.result.cols[-2]}\"", "\"month\"");
    resolves("\"${s1.result[\\\"a b\\\"]}\"", "\"spaced\"");
    resolves("\"${s1.result[\\\"q\\\\\\\"\\\"]}\"", "\"quoted\"");
    resolves("\"${s1.result.\xe6\x97\xa5}\"", "\"day\"");
    /* escapes and lone dollars */
    resolves("\"$${s1.result.rows}\"", "\"${s1.result.rows}\"");
    resolves("\"a $${x} ${inputs.n} $$ $ $\"", "\"a ${x} 3 $$ $ $\"");
    resolves("\"$$${inputs.n}\"", "\"$${inputs.n}\"");
    /* deep copy of any JSON; keys are not resolved */
    resolves("{\"${inputs.n}\":[\"${inputs.n}\",{\"k\":\"${inputs.file}\"},1,true,null,2.5]}",
             "{\"${inputs.n}\":[3,{\"k\":\"data.csv\"},1,true,null,2.5]}");
    /* the value is copied, not shared */
    json_t *scope = J(SCOPE), *v = J("\"${s1.result.obj}\"");
    json_t *got = aos_plan_resolve(v, scope, NULL);
    json_object_set_new(got, "a", json_integer(2));
    expect_json(
        json_object_get(
            json_object_get(json_object_get(json_object_get(scope, "steps"), "s1"), "result"),
            "obj"),
        "{\"a\":1}");
    json_decref(got);
    json_decref(v);
    json_decref(scope);
}

static void test_resolve_errors(void **state)
{
    resolve_fails("\"${s2.result}\"", AOS_ENOTFOUND, "'${s2.result}': step 's2' has not run");
    resolve_fails("[\"x ${s1.result.nope} y\"]", AOS_ENOTFOUND,
                  "'${s1.result.nope}': no member \"nope\"");
    resolve_fails("\"${s1.result.rows.x}\"", AOS_ENOTFOUND,
                  "'${s1.result.rows.x}': \"x\" of an integer");
    resolve_fails("\"${s1.result.cols.x}\"", AOS_ENOTFOUND,
                  "'${s1.result.cols.x}': \"x\" of an array");
    resolve_fails("\"${s1.result.obj[0]}\"", AOS_ENOTFOUND,
                  "'${s1.result.obj[0]}': [0] of a object");
    resolve_fails("\"${s1.result.cols[2]}\"", AOS_ENOTFOUND,
                  "'${s1.result.cols[2]}': index 2 out of range (2 items)");
    resolve_fails("\"${s1.result.cols[-3]}\"", AOS_ENOTFOUND,
                  "'${s1.result.cols[-3]}': index -3 out of range (2 items)");
    resolve_fails("\"${inputs.nope}\"", AOS_ENOTFOUND, "'${inputs.nope}': no member \"nope\"");
    resolve_fails("\"${s1.result\"", AOS_EINVAL, "malformed reference '${s1.result': missing '}'");
    resolve_fails("\"a ${1x} b\"", AOS_EINVAL,
                  "malformed reference '${1x}': expected inputs, task or a step id after '${'");
    /* the task without inputs */
    json_t *scope = J("{\"steps\":{}}"), *v = J("\"${inputs.a}\"");
    aos_err_t err = {0, ""};
    assert_null(aos_plan_resolve(v, scope, &err));
    assert_int_equal(err.code, AOS_ENOTFOUND);
    assert_string_equal(err.msg, "'${inputs.a}': the task has no inputs");
    json_decref(v);
    json_decref(scope);
    /* values nested deeper than 64 */
    json_t *deep = json_string("x"), *top;
    for (int i = 0; i < 65; i++)
        deep = json_pack("[o]", deep);
    scope = J(SCOPE);
    assert_null(aos_plan_resolve(deep, scope, &err));
    assert_int_equal(err.code, AOS_EINVAL);
    assert_string_equal(err.msg, "values nested deeper than 64");
    top = json_array_get(deep, 0);
    json_t *ok = aos_plan_resolve(top, scope, &err);
    assert_non_null(ok);
    json_decref(ok);
    json_decref(deep);
    /* a string past 1 MiB once resolved */
    char *big = malloc(600000);
    memset(big, 'x', 599999);
    big[599999] = '\0';
    json_t *sc = json_pack("{s:{s:s}}", "inputs", "big", big);
    v = json_string("${inputs.big}+${inputs.big}");
    assert_null(aos_plan_resolve(v, sc, &err));
    assert_int_equal(err.code, AOS_ETOOBIG);
    assert_string_equal(err.msg,
                        "a string is longer than 1048576 bytes once its references are resolved");
    json_decref(v);
    /* ... while a whole-string reference to it is a copy, not text */
    v = json_string("${inputs.big}");
    ok = aos_plan_resolve(v, sc, &err);
    assert_int_equal(json_string_length(ok), 599999);
    json_decref(ok);
    json_decref(v);
    json_decref(sc);
    json_decref(scope);
    free(big);
}

static void test_refs(void **state)
{
    json_t *v = J("{\"a\":\"${s1.result} ${inputs.x} ${task.trace_id}\",\"b\":[\"${s2.result}\","
                  "\"${s1.result.y}\",\"$${s3.result}\",{\"c\":\"${gate.decision}\"}],"
                  "\"${s4.result}\":1}");
    aos_err_t err = {0, ""};
    json_t *ids = aos_plan_refs(v, &err);
    expect_json(ids, "[\"s1\",\"s2\",\"gate\"]");
    json_decref(ids);
    json_decref(v);
    v = J("[\"${s1.result\"]");
    assert_null(aos_plan_refs(v, &err));
    assert_int_equal(err.code, AOS_EINVAL);
    assert_string_equal(err.msg, "malformed reference '${s1.result': missing '}'");
    json_decref(v);
    v = J("42");
    ids = aos_plan_refs(v, &err);
    expect_json(ids, "[]");
    json_decref(ids);
    json_decref(v);
    /* a step: its args, message, label and condition, not its check */
    json_t *p = dsl("step a: x__y\napprove g: \"${a.result.n} rows?\"\n"
                    "step b: x__z p=[${g.decision}, ${a.result}] q=${inputs.f}\n"
                    "  check contains \"${zz.result}\"\n"
                    "  when ${a.result.ok}\n"
                    "milestone m: \"${b.result}\"\n");
    const char *want[] = {"[]", "[\"a\"]", "[\"g\",\"a\"]", "[\"b\"]"};
    for (size_t i = 0; i < 4; i++) {
        ids = aos_plan_step_refs(json_array_get(json_object_get(p, "steps"), i), &err);
        expect_json(ids, want[i]);
        json_decref(ids);
    }
    json_decref(p);
}

static void test_when(void **state)
{
    json_t *scope = J("{\"inputs\":{\"t\":true,\"f\":false,\"z\":0,\"zr\":0.0,\"n\":3,\"e\":\"\","
                      "\"s\":\"a b\",\"ea\":[],\"eo\":{},\"a\":[0],\"o\":{\"k\":1},\"nul\":null,"
                      "\"x\":1.0},\"steps\":{\"g\":{\"decision\":\"downgrade\"}}}");
    struct {
        const char *expr;
        int want;
    } cases[] = {
        {"${inputs.t}", 1},
        {"${inputs.f}", 0},
        {"${inputs.z}", 0},
        {"${inputs.zr}", 0},
        {"${inputs.n}", 1},
        {"${inputs.e}", 0},
        {"${inputs.s}", 1},
        {"${inputs.ea}", 0},
        {"${inputs.eo}", 0},
        {"${inputs.a}", 1},
        {"${inputs.o}", 1},
        {"${inputs.nul}", 0},
        {"!${inputs.nul}", 1},
        {"! ${inputs.t}", 0},
        {"${inputs.n} == 3", 1},
        {"${inputs.n} == 3.0", 1},
        {"${inputs.x} == 1", 1},
        {"${inputs.n} != 3", 0},
        {"${inputs.n} == '3'", 0},
        {"${inputs.s} == 'a b'", 1},
        {"${inputs.s} == \"a b\"", 1},
        {"${inputs.s}!='a b'", 0},
        {"${inputs.nul} == null", 1},
        {"${inputs.t} == true", 1},
        {"${inputs.f} == false", 1},
        {"${inputs.f} == null", 0},
        {"${g.decision} != 'downgrade'", 0},
        {"${g.decision} == 'downgrade'", 1},
        {"${inputs.s} == 'a\\u0020b'", 1},
        {"${inputs.n} == -3", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        int out = -1;
        aos_err_t err = {0, ""};
        if (aos_plan_when(cases[i].expr, scope, &out, &err) != 0)
            fail_msg("%s: %s", cases[i].expr, err.msg);
        if (out != cases[i].want)
            fail_msg("%s gave %d", cases[i].expr, out);
        /* the syntax alone, without a scope, leaves out alone */
        out = 7;
        assert_int_equal(aos_plan_when(cases[i].expr, NULL, &out, &err), 0);
        assert_int_equal(out, 7);
    }
    int out = 7;
    aos_err_t err = {0, ""};
    assert_int_equal(aos_plan_when("${inputs.q}", scope, &out, &err), AOS_ENOTFOUND);
    assert_string_equal(err.msg, "'${inputs.q}': no member \"q\"");
    assert_int_equal(aos_plan_when("${s9.result}", scope, &out, &err), AOS_ENOTFOUND);
    assert_string_equal(err.msg, "'${s9.result}': step 's9' has not run");
    assert_int_equal(aos_plan_when("${inputs.n} > 2", scope, &out, &err), AOS_EINVAL);
    assert_string_equal(err.msg, "unexpected '> 2' after the condition");
    assert_int_equal(aos_plan_when("${inputs.n} == 3 x", scope, &out, &err), AOS_EINVAL);
    assert_string_equal(err.msg, "unexpected 'x' after the condition");
    assert_int_equal(aos_plan_when("", scope, &out, &err), AOS_EINVAL);
    assert_int_equal(aos_plan_when(NULL, scope, &out, &err), AOS_EINVAL);
    assert_int_equal(out, 7);
    json_decref(scope);
}

/* ---- results and checks -------------------------------------------------------------- */

static void result_is(const char *call_result, const char *want)
{
    json_t *cr = J(call_result);
    json_t *r = aos_plan_result(cr);
    expect_json(r, want);
    json_decref(r);
    json_decref(cr);
}

static void test_result(void **state)
{
    result_is("{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"structuredContent\":{\"a\":1}}",
              "{\"a\":1}");
    result_is("{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"rows\\\": 3}\"}]}", "{\"rows\":3}");
    result_is("{\"content\":[{\"type\":\"text\",\"text\":\" 42 \"}]}", "42");
    result_is("{\"content\":[{\"type\":\"text\",\"text\":\"hello\"}]}", "\"hello\"");
    result_is("{\"content\":[{\"type\":\"text\",\"text\":\"[1,\"},{\"type\":\"image\","
              "\"data\":\"AA==\"},{\"type\":\"text\",\"text\":\"2]\"}]}",
              "[1,2]");
    result_is(
        "{\"content\":[{\"type\":\"text\",\"text\":\"a\"},{\"type\":\"text\",\"text\":\"b\"}]}",
        "\"a\\nb\"");
    result_is("{\"content\":[{\"type\":\"image\",\"data\":\"AA==\",\"mimeType\":\"image/png\"}]}",
              "[{\"type\":\"image\",\"data\":\"AA==\",\"mimeType\":\"image/png\"}]");
    result_is("{\"content\":[]}", "null");
    result_is("{}", "null");
    result_is("{\"content\":[{\"type\":\"text\",\"text\":\"x\"}],\"structuredContent\":null}",
              "\"x\"");
}

static int check(const char *chk, const char *call_result, char *why)
{
    json_t *c = chk ? J(chk) : NULL, *r = J(call_result);
    int rc = aos_plan_check(c, r, why, 200);
    json_decref(c);
    json_decref(r);
    return rc;
}

static void check_fails(const char *chk, const char *call_result, const char *want)
{
    char why[200];
    int rc = check(chk, call_result, why);
    if (rc != AOS_EINVAL || strcmp(why, want))
        fail_msg("check %s on %s\n got: %d '%s'\nwant: '%s'", chk ? chk : "NULL", call_result, rc,
                 why, want);
}

static void check_passes(const char *chk, const char *call_result)
{
    char why[200];
    if (check(chk, call_result, why) != 0)
        fail_msg("check %s on %s failed: %s", chk ? chk : "NULL", call_result, why);
}

#define TEXT(t)   "{\"content\":[{\"type\":\"text\",\"text\":\"" t "\"}]}"
#define STRUCT(s) "{\"content\":[],\"structuredContent\":" s "}"

static void test_check_error_and_empty(void **state)
{
    const char *err =
        "{\"content\":[{\"type\":\"text\",\"text\":\"no such file\"}],\"isError\":true}";
    check_fails(NULL, err, "the tool returned an error: no such file");
    check_fails("{\"not_error\":true}", err, "the tool returned an error: no such file");
    check_fails("{}", "{\"content\":[],\"isError\":true}", "the tool returned an error");
    check_passes("{\"not_error\":false}", err);
    check_passes("{\"non_empty\":false,\"not_error\":true}", TEXT(""));
    check_passes(NULL, TEXT("ok"));
    check_fails(NULL, "[]", "the result is not a CallToolResult (an object)");
    /* a long error is cut at 160 bytes, on a character boundary */
    char long_err[600] = "{\"content\":[{\"type\":\"text\",\"text\":\"";
    for (int i = 0; i < 100; i++)
        cat(long_err, sizeof(long_err), "\xe6\x97\xa5");
    cat(long_err, sizeof(long_err), "\"}],\"isError\":true}");
    char why[200];
    assert_int_equal(check(NULL, long_err, why), AOS_EINVAL);
    assert_int_equal(strlen(why), strlen("the tool returned an error: ") + 159 + 3);
    assert_string_equal(why + strlen(why) - 3, "...");

    const char *ne = "{\"non_empty\":true}";
    check_fails(ne, TEXT(""), "the result is empty");
    check_fails(ne, TEXT(" \\n\\t "), "the result is empty");
    check_fails(ne, TEXT("[]"), "the result is empty");
    check_fails(ne, TEXT("{}"), "the result is empty");
    check_fails(ne, TEXT("null"), "the result is empty");
    check_fails(ne, "{\"content\":[]}", "the result is empty");
    check_fails(ne, STRUCT("{}"), "the result is empty");
    check_passes(ne, TEXT("0"));
    check_passes(ne, TEXT("false"));
    check_passes(ne, TEXT(" x "));
    check_passes(ne, STRUCT("{\"a\":null}"));
    check_passes(ne, "{\"content\":[{\"type\":\"image\",\"data\":\"AA==\"}]}");
}

static void test_check_contains_matches(void **state)
{
    check_passes("{\"contains\":\"ell\"}", TEXT("hello"));
    check_fails("{\"contains\":\"xyz\"}", TEXT("hello"), "does not contain \"xyz\"");
    /* on anything but a string: its compact JSON */
    check_passes("{\"contains\":\"\\\"rows\\\":3\"}", STRUCT("{\"rows\": 3}"));
    check_passes("{\"matches\":\"^[a-z]+$\"}", TEXT("hello"));
    check_passes("{\"matches\":\"l{2}\"}", TEXT("hello"));
    check_passes("{\"matches\":\"rows\\\":[0-9]+\"}", STRUCT("{\"rows\":12}"));
    check_fails("{\"matches\":\"^[0-9]+$\"}", TEXT("hello"), "does not match /^[0-9]+$/");
    check_fails("{\"matches\":\"a(\"}", TEXT("hello"),
                "invalid regular expression: Unmatched ( or \\(");
    check_passes("{\"matches\":\"\xe6\x97\xa5\"}", TEXT("\xe6\x98\xa8\xe6\x97\xa5"));
    /* matches looks at the first 4096 bytes, contains at all */
    char *big = malloc(10000);
    snprintf(big, 10000, "{\"content\":[{\"type\":\"text\",\"text\":\"");
    size_t at = strlen(big);
    memset(big + at, 'a', 5000);
    snprintf(big + at + 5000, 100, "!\"}]}");
    check_passes("{\"contains\":\"a!\"}", big);
    check_fails("{\"matches\":\"a!\"}", big, "does not match /a!/ in the first 4096 bytes of 5001");
    big[at + 4095] = '!';
    check_passes("{\"matches\":\"a!\"}", big);
    free(big);
    /* all checks of a step, in order: the first failure is reported */
    check_fails("{\"non_empty\":true,\"contains\":\"x\",\"matches\":\"y\"}", TEXT("x"),
                "does not match /y/");
}

static void test_regex_bounds(void **state)
{
    char why[200];
    /* found by fuzz_dsl: x+ is copied by glibc, so f++++... asked for gigabytes */
    char plus[200] = "{\"matches\":\"f";
    for (int i = 0; i < 100; i++)
        cat(plus, sizeof(plus), "+");
    cat(plus, sizeof(plus), "\"}");
    check_fails(plus, TEXT("f"), "regular expression too complex");
    check_fails("{\"matches\":\"(a{100}){100}\"}", TEXT("a"), "regular expression too complex");
    check_fails("{\"matches\":\"((a{50}){50})\"}", TEXT("a"), "regular expression too complex");
    check_fails("{\"matches\":\"a{0,256}\"}", TEXT("a"), "a repetition count over 255");
    check_fails("{\"matches\":\"(a)\\\\1\"}", TEXT("aa"),
                "back-references (\\1 ...) are not supported");
    /* what is fine: a repetition of 255, brackets with ']' and classes */
    check_passes("{\"matches\":\"^a{0,255}$\"}", TEXT("aaa"));
    check_passes("{\"matches\":\"^[]a]+[[:digit:]]{2}$\"}", TEXT("a]a12"));
    check_passes("{\"matches\":\"(a|b)+c?\\\\.\"}", TEXT("ab."));
    /* groups nested 33 deep, and a pattern past 1024 bytes */
    char nest[300] = "{\"matches\":\"";
    for (int i = 0; i < 33; i++)
        cat(nest, sizeof(nest), "(");
    cat(nest, sizeof(nest), "a");
    for (int i = 0; i < 33; i++)
        cat(nest, sizeof(nest), ")");
    cat(nest, sizeof(nest), "\"}");
    check_fails(nest, TEXT("a"), "groups nested deeper than 32");
    char *longp = malloc(1200);
    snprintf(longp, 1200, "{\"matches\":\"");
    memset(longp + 12, 'a', 1025);
    snprintf(longp + 12 + 1025, 100, "\"}");
    assert_int_equal(check(longp, TEXT("a"), why), AOS_EINVAL);
    assert_string_equal(why, "regular expression longer than 1024 bytes");
    free(longp);
}

static void test_check_schema(void **state)
{
    const char *res = STRUCT("{\"rows\":3,\"name\":\"\xe6\x97\xa5\xe6\x9c\x9f\",\"ratio\":2.0,"
                             "\"items\":[{\"n\":1},{\"n\":\"x\"}],\"kind\":\"bar\",\"a b\":1}");
    check_passes("{\"schema\":{\"type\":\"object\",\"required\":[\"rows\",\"name\"],"
                 "\"properties\":{\"rows\":{\"type\":\"integer\",\"minimum\":1,\"maximum\":3},"
                 "\"name\":{\"type\":\"string\",\"minLength\":2,\"maxLength\":2},"
                 "\"ratio\":{\"type\":\"integer\"},\"kind\":{\"enum\":[\"bar\",\"line\"]},"
                 "\"items\":{\"type\":\"array\",\"minItems\":2,\"maxItems\":2},"
                 "\"missing\":{\"type\":\"string\"}}}}",
                 res);
    struct {
        const char *schema, *why;
    } cases[] = {
        {"{\"type\":\"array\"}", "$: expected array, got object"},
        {"{\"type\":[\"array\",\"null\"]}", "$: expected array or null, got object"},
        {"{\"required\":[\"rows\",\"cols\"]}", "$: missing required property \"cols\""},
        {"{\"properties\":{\"rows\":{\"type\":\"string\"}}}",
         "$.rows: expected string, got integer"},
        {"{\"properties\":{\"ratio\":{\"type\":\"boolean\"}}}",
         "$.ratio: expected boolean, got number"},
        {"{\"properties\":{\"rows\":{\"minimum\":4}}}", "$.rows: 3 is less than the minimum 4"},
        {"{\"properties\":{\"rows\":{\"maximum\":2.5}}}", "$.rows: 3 is more than the maximum 2.5"},
        {"{\"properties\":{\"name\":{\"minLength\":3}}}", "$.name: shorter than 3 characters"},
        {"{\"properties\":{\"name\":{\"maxLength\":1}}}", "$.name: longer than 1 characters"},
        {"{\"properties\":{\"items\":{\"minItems\":3}}}", "$.items: fewer than 3 items"},
        {"{\"properties\":{\"items\":{\"maxItems\":1}}}", "$.items: more than 1 items"},
        {"{\"properties\":{\"kind\":{\"enum\":[\"line\",1]}}}",
         "$.kind: not one of the allowed values"},
        {"{\"properties\":{\"items\":{\"items\":{\"properties\":{\"n\":{\"type\":\"integer\"}}}}}}",
         "$.items[1].n: expected integer, got string"},
        {"{\"properties\":{\"a b\":{\"type\":\"null\"}}}",
         "$[\"a b\"]: expected null, got integer"},
        {"{\"type\":\"objet\"}", "invalid schema: type: unknown type 'objet'"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
        char chk[512];
        snprintf(chk, sizeof(chk), "{\"schema\":%s}", cases[i].schema);
        check_fails(chk, res, cases[i].why);
    }
    /* on a text result parsed as JSON, and on a plain text */
    check_passes("{\"schema\":{\"type\":\"integer\",\"enum\":[3.0]}}", TEXT("3"));
    check_fails("{\"schema\":{\"type\":\"number\"}}", TEXT("three"),
                "$: expected number, got string");
}

/* ---- the DSL --------------------------------------------------------------------------- */

static void test_dsl_example(void **state)
{
    json_t *p =
        dsl("# clean a CSV and plot it\n"
            "step clean: csv__clean path=\"data.csv\" drop_empty=true\n"
            "  check non_empty\n"
            "approve gate: \"Plot ${clean.result.rows} rows?\" timeout 10m on_timeout abort\n"
            "step plot: viz__plot data=${clean.result} x=\"month\" y=revenue retry 2\n"
            "  when ${gate.decision} != 'downgrade'\n"
            "milestone done: \"plotted\"\n");
    expect_json(p, "{\"steps\":["
                   "{\"id\":\"clean\",\"tool\":\"csv__clean\",\"args\":{\"path\":\"data.csv\","
                   "\"drop_empty\":true},\"check\":{\"non_empty\":true,\"not_error\":true},"
                   "\"retry\":{\"max\":0,\"backoff_ms\":500},\"optional\":false},"
                   "{\"id\":\"gate\",\"approval\":{\"message\":\"Plot ${clean.result.rows} rows?\","
                   "\"timeout_s\":600,\"on_timeout\":\"abort\"}},"
                   "{\"id\":\"plot\",\"tool\":\"viz__plot\",\"args\":{\"data\":\"${clean.result}\","
                   "\"x\":\"month\",\"y\":\"revenue\"},\"check\":{\"non_empty\":false,"
                   "\"not_error\":true},\"retry\":{\"max\":2,\"backoff_ms\":500},"
                   "\"optional\":false,\"when\":\"${gate.decision} != 'downgrade'\"},"
                   "{\"id\":\"done\",\"milestone\":\"plotted\"}]}");
    json_decref(p);
}

static void test_dsl_values(void **state)
{
    json_t *p = dsl("step a: x__y s=\"q\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\" "
                    "sq='it\\'s \"x\"' i=-12 r=1.5e-3 z=0 t=true f=false n=null "
                    "bare=data.csv path=./out/a_b-c.svg glob=*.csv cjk=\xe6\x97\xa5\xe6\x9c\x9f "
                    "ref=${inputs.file} emb=\"a ${inputs.file} $${x}\" \"odd key\"=1 "
                    "o={k: 1, \"j k\": [1, [2, {}], []], r: ${inputs.x}} e={} l=[]\n");
    expect_json(
        json_object_get(json_array_get(json_object_get(p, "steps"), 0), "args"),
        "{\"s\":\"q\\\"\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d\\ude00\",\"sq\":\"it's \\\"x\\\"\","
        "\"i\":-12,\"r\":0.0015,\"z\":0,\"t\":true,\"f\":false,\"n\":null,"
        "\"bare\":\"data.csv\",\"path\":\"./out/a_b-c.svg\",\"glob\":\"*.csv\","
        "\"cjk\":\"\xe6\x97\xa5\xe6\x9c\x9f\",\"ref\":\"${inputs.file}\","
        "\"emb\":\"a ${inputs.file} $${x}\",\"odd key\":1,"
        "\"o\":{\"k\":1,\"j k\":[1,[2,{}],[]],\"r\":\"${inputs.x}\"},\"e\":{},\"l\":[]}");
    assert_true(json_is_real(json_object_get(
        json_object_get(json_array_get(json_object_get(p, "steps"), 0), "args"), "r")));
    json_decref(p);
    /* multi-line values, continuation lines, comments, ';', CRLF */
    p = dsl("step a: x__y o={  # a comment inside\n"
            "  k: [1,\n      2],\n  m: \"#not a comment\"\n} \\\n"
            "  tail=1   # the end\r\n"
            "step b: x__z; retry 1; optional\r\n");
    expect_json(json_object_get(json_array_get(json_object_get(p, "steps"), 0), "args"),
                "{\"o\":{\"k\":[1,2],\"m\":\"#not a comment\"},\"tail\":1}");
    json_t *b = json_array_get(json_object_get(p, "steps"), 1);
    expect_json(json_object_get(b, "retry"), "{\"max\":1,\"backoff_ms\":500}");
    assert_true(json_is_true(json_object_get(b, "optional")));
    json_decref(p);
}

static void test_dsl_statements_and_options(void **state)
{
    json_t *p = dsl("step files__list\n"
                    "approve \"ok?\"\n"
                    "milestone \"m\"\n"
                    "step s9: x__y\n"
                    "step x__z a=1 check non_empty not_error contains \"c\" matches \"^m\" "
                    "schema {\"type\": \"object\"} retry 3 backoff 1500ms timeout 2m fallback f "
                    "optional when !${s9.result}\n"
                    "step f: x__f\n"
                    "  check allow_error\n"
                    "  timeout 1h\n"
                    "  when ${s2.decision} == \"approve\"\n"
                    "approve g2: 'sure?' timeout 45s on_timeout downgrade when ${inputs.ask}\n"
                    "milestone m2: \"done\" when ${inputs.n} != 0\n");
    expect_json(p,
                "{\"steps\":["
                "{\"id\":\"s1\",\"tool\":\"files__list\",\"args\":{},\"check\":{\"non_empty\":"
                "false,\"not_error\":true},\"retry\":{\"max\":0,\"backoff_ms\":500},\"optional\":"
                "false},"
                "{\"id\":\"s2\",\"approval\":{\"message\":\"ok?\",\"timeout_s\":3600,"
                "\"on_timeout\":\"abort\"}},"
                "{\"id\":\"s3\",\"milestone\":\"m\"},"
                "{\"id\":\"s9\",\"tool\":\"x__y\",\"args\":{},\"check\":{\"non_empty\":false,"
                "\"not_error\":true},\"retry\":{\"max\":0,\"backoff_ms\":500},\"optional\":false},"
                "{\"id\":\"s5\",\"tool\":\"x__z\",\"args\":{\"a\":1},\"check\":{\"non_empty\":true,"
                "\"not_error\":true,\"contains\":\"c\",\"matches\":\"^m\",\"schema\":{\"type\":"
                "\"object\"}},\"retry\":{\"max\":3,\"backoff_ms\":1500},\"timeout_ms\":120000,"
                "\"fallback\":\"f\",\"optional\":true,\"when\":\"!${s9.result}\"},"
                "{\"id\":\"f\",\"tool\":\"x__f\",\"args\":{},\"check\":{\"non_empty\":false,"
                "\"not_error\":false},\"retry\":{\"max\":0,\"backoff_ms\":500},\"optional\":false,"
                "\"timeout_ms\":3600000,\"when\":\"${s2.decision} == \\\"approve\\\"\"},"
                "{\"id\":\"g2\",\"approval\":{\"message\":\"sure?\",\"timeout_s\":45,"
                "\"on_timeout\":\"downgrade\"},\"when\":\"${inputs.ask}\"},"
                "{\"id\":\"m2\",\"milestone\":\"done\",\"when\":\"${inputs.n} != 0\"}]}");
    json_decref(p);
    /* arguments named like options and keywords are arguments */
    p = dsl("step a: x__y retry=1 when=2 step=3 true=4 check=5\n");
    expect_json(json_object_get(json_array_get(json_object_get(p, "steps"), 0), "args"),
                "{\"retry\":1,\"when\":2,\"step\":3,\"true\":4,\"check\":5}");
    json_decref(p);
}

static void test_dsl_errors(void **state)
{
    struct {
        const char *text, *msg;
    } cases[] = {
        /* lexical */
        {"step a: x__y p=\"abc\n", "1:16: unterminated string"},
        {"step a: x__y p=\"a\tb\"", "1:18: control character in a string"},
        {"step a: x__y p=\"a\\qb\"", "1:18: invalid escape in a string (\\\" \\' \\\\ \\/ \\b \\f "
                                     "\\n \\r \\t \\uXXXX)"},
        {"step a: x__y p=\"\\u12\"", "1:17: \\u needs four hex digits"},
        {"step a: x__y p=\"\\ud800\"", "1:17: a \\u high surrogate without its low surrogate"},
        {"step a: x__y p=\"\\udc00\"", "1:17: a \\u low surrogate without its high surrogate"},
        {"step a: x__y p=\"\\u0000\"", "1:17: \\u0000 is not allowed in a string"},
        {"step a: x__y p=${a.result", "1:16: malformed reference '${a.result': missing '}'"},
        {"step a: x__y p=$x", "1:16: unexpected '$' (a reference is ${...})"},
        {"step a: x__y p=-x", "1:16: unexpected '-'"},
        {"step a: x__y p=^", "1:16: unexpected character '^'"},
        {"step a: x__y p=2024-01-01", "1:16: invalid number '2024-01-01' (quote text: "
                                      "\"2024-01-01\")"},
        {"step a: x__y p=1e999", "1:16: number out of range"},
        {"step a: x__y p=99999999999999999999", "1:16: number out of range"},
        /* the text as a whole */
        {"step a: x__y\nstep b: x__\xff", "2:12: invalid UTF-8"},
        {"\n\n  \xe6\x97\xa5\xc3", "3:4: invalid UTF-8"},
        /* statements */
        {"", "1:1: no steps (a plan is lines of step, approve and milestone)"},
        {"# only a comment\n\n", "3:1: no steps (a plan is lines of step, approve and milestone)"},
        {"run a: x__y", "1:1: unknown statement 'run' (step, approve or milestone)"},
        {"\"step\" a: x__y",
         "1:1: expected a statement (step, approve or milestone), got a string"},
        {"retry 2", "1:1: 'retry' before any step: options follow the step they are for"},
        {"step a x__y", "1:6: expected a tool name <server>__<tool>, got 'a' (an id is followed by "
                        "':' - step ID: TOOL)"},
        {"step a: xy", "1:9: expected a tool name <server>__<tool>, got 'xy'"},
        {"step a:", "1:8: expected a tool name <server>__<tool>, got the end of the text"},
        {"step 1a: x__y", "1:6: expected a tool name <server>__<tool>, got '1a'"},
        {"step a.b: x__y", "1:6: invalid step id 'a.b' ([A-Za-z_][A-Za-z0-9_-]{0,63})"},
        {"step a: x__y p=1 p=2", "1:18: argument 'p' given twice"},
        {"step a: x__y p=", "1:16: expected a value (a string, number, true, false, null, ${...}, "
                            "{...} or [...]), got the end of the text"},
        {"step a: x__y p=1 q", "1:18: expected name=value or an option (check, retry, when, "
                               "fallback, optional, timeout), got 'q'"},
        {"step a: x__y retry 1 p=1", "1:22: arguments (name=value) come before the options"},
        {"step a: x__y p=1 :", "1:18: unexpected ':'"},
        {"approve a: 3", "1:12: expected a message (a string) after approve, got '3'"},
        {"milestone a: x", "1:14: expected a label (a string) after milestone, got 'x'"},
        {"approve \"a\" extra", "1:13: unexpected 'extra'"},
        /* values */
        {"step a: x__y o={a:1", "1:16: '{' is not closed"},
        {"step a: x__y o=[1,\n2,\n", "1:16: '[' is not closed"},
        {"step a: x__y o={a 1}", "1:19: expected ':' after the key, got '1'"},
        {"step a: x__y o={1: 2}", "1:17: expected a key (a string or a name), got '1'"},
        {"step a: x__y o={a: 1, a: 2}", "1:23: key \"a\" given twice"},
        {"step a: x__y o=[1 2]", "1:19: expected ',' or ']', got '2'"},
        {"step a: x__y o=[1,]", "1:19: expected a value (a string, number, true, false, null, "
                                "${...}, {...} or [...]), got ']'"},
        /* options */
        {"approve a: \"m\" retry 2", "1:16: retry does not apply to an approval (timeout, "
                                     "on_timeout, when)"},
        {"milestone a: \"m\" timeout 1s", "1:18: timeout does not apply to a milestone (when)"},
        {"step a: x__y on_timeout abort", "1:14: on_timeout applies to an approval only"},
        {"approve a: \"m\" timeout=5s", "1:16: write options without '=': timeout ..."},
        {"step a: x__y\nretry=2", "2:1: write options without '=': retry ... (name=value is an "
                                  "argument, before the options)"},
        {"step a: x__y retry", "1:19: expected a count after retry (retry 3), got the end of the "
                               "text"},
        {"step a: x__y retry 1.5", "1:20: expected a count after retry (retry 3), got '1.5'"},
        {"step a: x__y retry 1 retry 2", "1:22: retry given twice"},
        {"step a: x__y retry 1 backoff 5", "1:30: a duration needs a unit: 500ms, 30s, 10m, 1h"},
        {"step a: x__y timeout 5d", "1:22: unknown unit 'd' (ms, s, m, h)"},
        {"step a: x__y timeout 1.5s", "1:22: a duration is a whole number and a unit: 500ms, 30s, "
                                      "10m, 1h"},
        {"step a: x__y timeout 1234567890s", "1:22: duration out of range"},
        {"step a: x__y timeout \"5s\"", "1:22: expected a duration (500ms, 30s, 10m, 1h), got a "
                                        "string"},
        {"approve a: \"m\" timeout 1500ms", "1:24: an approval's timeout is whole seconds"},
        {"approve a: \"m\" on_timeout later", "1:27: expected approve, abort or downgrade after "
                                              "on_timeout, got 'later'"},
        {"step a: x__y check",
         "1:19: expected a check after 'check' (non_empty, not_error, "
         "allow_error, contains, matches, schema, llm), got the end of the text"},
        {"step a: x__y check llm 3", "1:24: expected a string (the requirement) after llm, "
                                     "got '3'"},
        {"step a: x__y check contains 3", "1:29: expected a string after contains, got '3'"},
        {"step a: x__y check matches x", "1:28: expected a string (a regular expression) after "
                                         "matches, got 'x'"},
        {"step a: x__y check schema [1]", "1:27: expected a JSON object after schema, got '['"},
        {"step a: x__y check not_error\n  check allow_error", "2:9: not_error or allow_error given "
                                                              "twice"},
        {"step a: x__y check non_empty non_empty", "1:30: non_empty given twice"},
        {"step a: x__y when x", "1:19: expected a reference ${...} after when, got 'x'"},
        {"step a: x__y when ${inputs.a} == x", "1:34: expected a literal (a string, number, true, "
                                               "false or null), got 'x'"},
        {"step a: x__y when ${inputs.a} when ${inputs.b}", "1:31: when given twice"},
        {"step a: x__y fallback \"b\"", "1:23: expected a step id after fallback, got a string"},
        {"step a: x__y optional optional", "1:23: optional given twice"},
        {"step a: x__y fallback b\n  fallback c", "2:3: fallback given twice"},
        {"step a: x__y timeout 1s timeout 2s", "1:25: timeout given twice"},
        {"approve a: \"m\" timeout 1s\n  timeout 2s", "2:3: timeout given twice"},
        {"approve a: \"m\" on_timeout abort on_timeout approve", "1:33: on_timeout given twice"},
        {"step a: x__y when ${inputs.a} == 5x", "1:34: invalid number"},
        /* rules of the plan, at the field (or statement) they are about */
        {"step a: x__y\n  retry 20", "2:3: steps[0] (a).retry.max: must be an integer 0..10"},
        {"step a: x__y p=1 q=${zz.result}", "1:18: steps[0] (a).args.q: '${zz.result}': no step "
                                            "'zz' (nor inputs or task)"},
        {"step a: x__y \"a b\"=${zz.result}", "1:14: steps[0] (a).args[\"a b\"]: '${zz.result}': "
                                              "no step 'zz' (nor inputs or task)"},
        {"step a: x__y\n  when ${a.result}", "2:3: steps[0] (a).when: '${a.result}': step 'a' does "
                                             "not run before this one"},
        {"milestone m: \"x\"\n\nstep a: x__y fallback m", "3:14: steps[1] (a).fallback: step 'm' "
                                                          "is not after this one"},
        {"step a: x__y\nstep a: x__z", "2:6: steps[1] (a).id: duplicate of steps[0]"},
        {"step inputs: x__y", "1:6: steps[0] (inputs).id: 'inputs' is reserved (references use "
                              "it)"},
        {"step a: x__y timeout 2h", "1:14: steps[0] (a).timeout_ms: must be an integer "
                                    "1..3600000"},
        {"approve g: \"m\"\n  timeout 31d", "2:11: unknown unit 'd' (ms, s, m, h)"},
        {"approve g: \"m\" timeout 0s", "1:16: steps[0] (g).approval.timeout_s: must be an integer "
                                        "1..2592000"},
        {"approve g: \"\"", "1:12: steps[0] (g).approval.message: must be a string of 1 to 4096 "
                            "bytes"},
        {"step a: x__y check matches \"(\"", "1:14: steps[0] (a).check.matches: invalid regular "
                                             "expression: Unmatched ( or \\("},
        {"step a: x__y\nstep x__y\nstep s2: x__z", "3:6: steps[2] (s2).id: duplicate of steps[1]"},
        {"step a: x__a+b", "1:9: steps[0] (a).tool: must be <server>__<tool> (server "
                           "[A-Za-z0-9][A-Za-z0-9_.-]{0,63}, tool [A-Za-z0-9_./-], at most 192 "
                           "bytes in all)"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
        dsl_refused(cases[i].text, cases[i].msg);
}

static void test_dsl_bounds(void **state)
{
    /* the whole text, a line, the steps, the nesting */
    size_t n = AOS_DSL_MAX_INPUT + 1;
    char *big = malloc(n + 1);
    memset(big, '\n', n);
    big[n] = '\0';
    aos_err_t err = {0, ""};
    assert_null(aos_dsl_parse(big, n, &err));
    assert_string_equal(err.msg, "1:1: the text is longer than 262144 bytes");
    memcpy(big, "step a: x__y p=\"", 16);
    memset(big + 16, 'x', AOS_DSL_MAX_LINE);
    assert_null(aos_dsl_parse(big, AOS_DSL_MAX_LINE + 20, &err));
    assert_string_equal(err.msg, "1:8193: line longer than 8192 bytes");
    big[AOS_DSL_MAX_LINE - 2] = '"';
    big[AOS_DSL_MAX_LINE - 1] = '\n';
    json_t *p = aos_dsl_parse(big, AOS_DSL_MAX_LINE, &err);
    if (!p)
        fail_msg("a line of 8191 bytes and its newline: %s", err.msg);
    json_decref(p);
    /* a NUL byte */
    assert_null(aos_dsl_parse("step a: x__y\n p=\0", 17, &err));
    assert_string_equal(err.msg, "2:4: NUL byte");
    /* 1000 steps, then 1001 */
    size_t used = 0;
    for (int i = 0; i < 1001; i++)
        used += (size_t)snprintf(big + used, n + 1 - used, "milestone \"m\"\n");
    assert_null(aos_dsl_parse(big, used, &err));
    assert_string_equal(err.msg, "1001:1: more than 1000 steps");
    p = aos_dsl_parse(big, used - strlen("milestone \"m\"\n"), &err);
    assert_non_null(p);
    assert_int_equal(json_array_size(json_object_get(p, "steps")), 1000);
    json_decref(p);
    /* values nested 32 deep are fine in the DSL, 33 are not */
    snprintf(big, n + 1, "step a: x__y o=");
    for (int i = 0; i < 33; i++)
        cat(big, n + 1, "[");
    assert_null(aos_dsl_parse(big, strlen(big), &err));
    assert_string_equal(err.msg, "1:48: values nested deeper than 32");
    snprintf(big, n + 1, "step a: x__y o=");
    for (int i = 0; i < 31; i++)
        cat(big, n + 1, "[");
    for (int i = 0; i < 31; i++)
        cat(big, n + 1, "]");
    p = aos_dsl_parse(big, strlen(big), &err);
    if (!p)
        fail_msg("31 levels: %s", err.msg);
    json_decref(p);
    free(big);
    /* text not NUL-terminated: only len bytes are read */
    char exact[] = {'m', 'i', 'l', 'e', 's', 't', 'o', 'n', 'e', ' ', '"', 'x', '"', '!'};
    p = aos_dsl_parse(exact, 13, &err);
    assert_non_null(p);
    json_decref(p);
}

static void roundtrip(const char *text)
{
    json_t *p = dsl(text);
    char *f = aos_dsl_format(p);
    assert_non_null(f);
    aos_err_t err = {0, ""};
    json_t *q = aos_dsl_parse(f, strlen(f), &err);
    if (!q || !json_equal(p, q))
        fail_msg("round trip of:\n%s\nformatted:\n%s\n%s", text, f, q ? "differs" : err.msg);
    json_decref(q);
    free(f);
    json_decref(p);
}

static void test_dsl_format(void **state)
{
    json_t *p = dsl("step clean: csv__clean path=data.csv\n"
                    "  check non_empty\n"
                    "approve gate: \"Plot ${clean.result.rows} rows?\" timeout 10m "
                    "on_timeout downgrade\n"
                    "step plot: viz__plot data=${clean.result} \"odd key\"={a: [1, 2.5]} "
                    "retry 2 backoff 250ms timeout 90s fallback alt optional\n"
                    "  check allow_error contains \"svg\" matches \"^<\" schema {type: object}\n"
                    "  check llm \"a chart of revenue by month\"\n"
                    "  when ${gate.decision} != 'downgrade'\n"
                    "step alt: viz__plot retry 0 backoff 1s timeout 1h\n"
                    "milestone done: \"plotted \\\"it\\\"\" when !${inputs.quiet}\n");
    char *f = aos_dsl_format(p);
    assert_string_equal(
        f, "step clean: csv__clean path=\"data.csv\"\n"
           "  check non_empty\n"
           "approve gate: \"Plot ${clean.result.rows} rows?\" timeout 10m "
           "on_timeout downgrade\n"
           "step plot: viz__plot data=\"${clean.result}\" \"odd key\"={\"a\":[1,2.5]}\n"
           "  check allow_error contains \"svg\" matches \"^<\" schema "
           "{\"type\":\"object\"} llm \"a chart of revenue by month\"\n"
           "  retry 2 backoff 250ms\n"
           "  timeout 90s\n"
           "  fallback alt\n"
           "  optional\n"
           "  when ${gate.decision} != 'downgrade'\n"
           "step alt: viz__plot\n"
           "  retry 0 backoff 1s\n"
           "  timeout 1h\n"
           "milestone done: \"plotted \\\"it\\\"\"\n"
           "  when !${inputs.quiet}\n");
    free(f);
    json_decref(p);
    roundtrip(
        "step a: x__y p=\"\\u0001\\u007f\xe6\x97\xa5 \\\\ '\" r=-1.0E+300 z=0.1 "
        "n=-0 big=9007199254740993 e=\"\" \"\"=1 \"a.b\"=2 \"1x\"=3 \"-\"=4\n"
        "  when ${inputs.s} == 'a\\'b\\u00e9'\n"
        "approve \"ok\" timeout 1s\nmilestone \"m\" when ${s2.decision} == null\n"
        "step b: srv__t when ${inputs.n} != -1.5e-3\n  timeout 1ms\n  retry 10 backoff 0ms\n");
    roundtrip("step x: 2fa__verify code=\"123\"\n  retry 1 backoff 600000ms\n"
              "step y: my-srv.v2__ns/tool_x "
              "deep=[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]\n");
    /* not a normalized plan: NULL */
    json_t *bad = J("{\"steps\":[{\"id\":\"a b\",\"milestone\":\"x\"}]}");
    assert_null(aos_dsl_format(bad));
    json_decref(bad);
    bad = J("{\"steps\":[]}");
    assert_null(aos_dsl_format(bad));
    json_decref(bad);
    bad = J("{\"steps\":[{\"id\":\"a\"}]}");
    assert_null(aos_dsl_format(bad));
    json_decref(bad);
    assert_null(aos_dsl_format(NULL));
}

/* ---- the offline planner ------------------------------------------------------------- */

/* The plan for goal, as DSL text. */
static void offline(const char *goal, const char *inputs, const char *want_dsl)
{
    json_t *in = inputs ? J(inputs) : NULL;
    aos_err_t err = {0, ""};
    json_t *p = aos_plan_offline(goal, in, &err);
    if (!p)
        fail_msg("no plan for '%s': %s", goal, err.msg);
    char *f = aos_dsl_format(p);
    if (strcmp(f, want_dsl))
        fail_msg("for '%s'\n got:\n%s\nwant:\n%s", goal, f, want_dsl);
    free(f);
    json_decref(p);
    json_decref(in);
}

static void offline_fails(const char *goal, const char *inputs, int code, const char *msg)
{
    json_t *in = inputs ? J(inputs) : NULL;
    aos_err_t err = {0, ""};
    json_t *p = aos_plan_offline(goal, in, &err);
    if (p) {
        char *f = aos_dsl_format(p);
        json_decref(p);
        print_error("'%s' planned:\n%s", goal, f);
        free(f);
        fail();
    }
    if (err.code != code || strcmp(err.msg, msg))
        fail_msg("for '%s'\n got: %s (%s)\nwant: %s", goal, err.msg, aos_err_name(err.code), msg);
    json_decref(in);
}

#define CLEAN_PLOT                                                                                 \
    "step clean: csv__clean path=\"data.csv\" output=\"data.clean.csv\"\n"                         \
    "step plot: viz__plot path=\"data.clean.csv\" kind=\"line\" x=\"month\" y=\"revenue\" "        \
    "output=\"revenue_by_month.svg\"\n"

static void test_offline_english(void **state)
{
    offline("clean data.csv and plot revenue by month", NULL, CLEAN_PLOT);
    offline("Please clean data.csv, then plot revenue by month.", NULL, CLEAN_PLOT);
    offline("Clean DATA.csv and then Plot Revenue per Month", NULL,
            "step clean: csv__clean path=\"DATA.csv\" output=\"DATA.clean.csv\"\n"
            "step plot: viz__plot path=\"DATA.clean.csv\" kind=\"line\" x=\"Month\" "
            "y=\"Revenue\" output=\"Revenue_by_Month.svg\"\n");
    offline("plot a bar chart of sales by region from out/s.csv", NULL,
            "step plot: viz__plot path=\"out/s.csv\" kind=\"bar\" x=\"region\" y=\"sales\" "
            "output=\"sales_by_region.svg\"\n");
    offline("plot data.csv revenue over date as a scatter plot", NULL,
            "step plot: viz__plot path=\"data.csv\" kind=\"scatter\" x=\"date\" y=\"revenue\" "
            "output=\"revenue_by_date.svg\"\n");
    offline("plot \"net revenue\" by month from 'q 1.csv'", NULL,
            "step plot: viz__plot path=\"q 1.csv\" kind=\"line\" x=\"month\" y=\"net revenue\" "
            "output=\"net_revenue_by_month.svg\"\n");
    offline("plot area by region from a.csv", NULL,
            "step plot: viz__plot path=\"a.csv\" kind=\"line\" x=\"region\" y=\"area\" "
            "output=\"area_by_region.svg\"\n");
    offline("list the files", NULL, "step list: files__list path=\".\"\n");
    offline("show all files", NULL, "step list: files__list path=\".\"\n");
    offline("list the artifacts in out/charts", NULL,
            "step list: files__list path=\"out/charts\"\n");
    offline("read notes.txt", NULL, "step read: files__read path=\"notes.txt\"\n");
    offline("show me report.md", NULL, "step read: files__read path=\"report.md\"\n");
    offline("search the logs for timeout", NULL, "step search: logs__logs.query q=\"timeout\"\n");
    offline("search for \"connection refused\" in the logs", NULL,
            "step search: logs__logs.query q=\"connection refused\"\n");
    offline("find errors and warnings in the logs", NULL,
            "step search: logs__logs.query q=\"errors and warnings\"\n");
    offline("call srv__echo with {\"message\": \"hi\", \"n\": [1]}", NULL,
            "step call: srv__echo message=\"hi\" n=[1]\n");
    offline("call everything__getTinyImage", NULL, "step call: everything__getTinyImage\n");
    /* no clause ends inside the JSON of a call */
    offline("call srv__echo with {\"m\": \"x and plot y by z\", \"l\": [\"a, list files\"]} "
            "and list the files",
            NULL,
            "step call: srv__echo m=\"x and plot y by z\" l=[\"a, list files\"]\n"
            "step list: files__list path=\".\"\n");
    offline("clean data.csv, plot revenue by month and list the files", NULL,
            CLEAN_PLOT "step list: files__list path=\".\"\n");
    offline("clean a.csv and clean b.csv", NULL,
            "step clean: csv__clean path=\"a.csv\" output=\"a.clean.csv\"\n"
            "step clean2: csv__clean path=\"b.csv\" output=\"b.clean.csv\"\n");
}

static void test_offline_chinese(void **state)
{
    offline("清洗 data.csv 并按月绘制 revenue", NULL, CLEAN_PLOT);
    offline("清洗data.csv，然后按月绘制revenue。", NULL, CLEAN_PLOT);
    offline("请清理 data.csv 再按月份画 revenue 的折线图", NULL, CLEAN_PLOT);
    offline("按地区绘制 sales.csv 的 销售额 柱状图", NULL,
            "step plot: viz__plot path=\"sales.csv\" kind=\"bar\" x=\"地区\" y=\"销售额\" "
            "output=\"销售额_by_地区.svg\"\n");
    offline("按年绘制 a.csv 中的 收入", NULL,
            "step plot: viz__plot path=\"a.csv\" kind=\"line\" x=\"year\" y=\"收入\" "
            "output=\"收入_by_year.svg\"\n");
    offline("列出文件", NULL, "step list: files__list path=\".\"\n");
    offline("列出所有的文件", NULL, "step list: files__list path=\".\"\n");
    offline("列出 out 中的文件", NULL, "step list: files__list path=\"out\"\n");
    offline("列出产物", NULL, "step list: files__list path=\".\"\n");
    offline("读取 notes.txt", NULL, "step read: files__read path=\"notes.txt\"\n");
    offline("在日志中搜索 超时", NULL, "step search: logs__logs.query q=\"超时\"\n");
    offline("搜索日志中的 “连接被拒绝”", NULL, "step search: logs__logs.query q=\"连接被拒绝\"\n");
    offline("调用 srv__echo 参数 {\"message\": \"你好\"}", NULL,
            "step call: srv__echo message=\"你好\"\n");
    offline("清洗 data.csv，按月绘制 revenue，然后列出文件", NULL,
            CLEAN_PLOT "step list: files__list path=\".\"\n");
}

static void test_offline_inputs_and_dsl(void **state)
{
    offline("clean the data and plot revenue by month", "{\"file\":\"in/sales.csv\"}",
            "step clean: csv__clean path=\"${inputs.file}\" output=\"in/sales.clean.csv\"\n"
            "step plot: viz__plot path=\"in/sales.clean.csv\" kind=\"line\" x=\"month\" "
            "y=\"revenue\" output=\"revenue_by_month.svg\"\n");
    offline("plot revenue by month", "{\"path\":\"a.csv\"}",
            "step plot: viz__plot path=\"${inputs.path}\" kind=\"line\" x=\"month\" y=\"revenue\" "
            "output=\"revenue_by_month.svg\"\n");
    offline("清洗数据", "{\"upload\":\"x.tsv\",\"n\":1}",
            "step clean: csv__clean path=\"${inputs.upload}\" output=\"x.clean.tsv\"\n");
    /* DSL text is parsed as DSL */
    offline("# mine\nstep a: files__read path=x.txt\n", NULL,
            "step a: files__read path=\"x.txt\"\n");
    offline("approve \"go?\"\nstep files__list", NULL,
            "approve s1: \"go?\"\nstep s2: files__list\n");
    /* validated with the inputs */
    offline_fails("step a: files__read path=${inputs.path}", "{\"file\":\"a.csv\"}", AOS_EINVAL,
                  "1:21: steps[0] (a).args.path: '${inputs.path}': the task has no input 'path'");
    /* and its errors are the DSL's */
    offline_fails("step a: files__read path=\n", NULL, AOS_EINVAL,
                  "1:26: expected a value (a string, number, true, false, null, ${...}, {...} or "
                  "[...]), got the end of the line");
    /* words that start like DSL are still words (not a DSL error) */
    offline_fails("step one: list the files", NULL, AOS_ENOTFOUND,
                  "no offline plan for \"step one: list the files\": it understands Action DSL "
                  "and: clean F.csv; plot Y by X [from F]; list the files [in DIR]; read F; search "
                  "the logs for X; call S__T with {...} (or in Chinese)");
}

static void test_offline_errors(void **state)
{
    offline_fails("make me a sandwich", NULL, AOS_ENOTFOUND,
                  "no offline plan for \"make me a sandwich\": it understands Action DSL and: "
                  "clean F.csv; plot Y by X [from F]; list the files [in DIR]; read F; search the "
                  "logs for X; call S__T with {...} (or in Chinese)");
    offline_fails("clean data.csv and bake a cake", NULL, AOS_ENOTFOUND,
                  "no offline plan for \"clean data.csv and bake a cake\": it understands Action "
                  "DSL and: clean F.csv; plot Y by X [from F]; list the files [in DIR]; read F; "
                  "search the logs for X; call S__T with {...} (or in Chinese)");
    offline_fails("plot revenue by month", NULL, AOS_EINVAL,
                  "plot: which file? as in: plot revenue by month from data.csv");
    offline_fails(
        "clean the data", NULL, AOS_EINVAL,
        "clean: which file? as in: clean data.csv (or give the task an input named file)");
    offline_fails("call srv__echo with [1]", NULL, AOS_EINVAL,
                  "call srv__echo: the arguments must be a JSON object, as in: call srv__echo with "
                  "{\"name\": \"value\"}");
    offline_fails("call srv__echo with {\"a\": \"${nope.result}\"}", NULL, AOS_EINVAL,
                  "steps[0] (call).args.a: '${nope.result}': no step 'nope' (nor inputs or task)");
    offline_fails("search the logs for", NULL, AOS_EINVAL,
                  "search the logs: for what? as in: search the logs for timeout");
    offline_fails(NULL, NULL, AOS_EINVAL, "no goal");
    offline_fails("clean \xff.csv", NULL, AOS_EINVAL, "the goal is not valid UTF-8");
    char *big = malloc(5000);
    memset(big, 'a', 4999);
    big[4999] = '\0';
    offline_fails(big, NULL, AOS_EINVAL,
                  "a goal in words is at most 4096 bytes (Action DSL: 262144)");
    free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate_normalizes),
        cmocka_unit_test(test_validate_plan_shape),
        cmocka_unit_test(test_validate_ids),
        cmocka_unit_test(test_validate_kinds),
        cmocka_unit_test(test_validate_tool),
        cmocka_unit_test(test_json_copy_is_a_deep_copy),
        cmocka_unit_test(test_validate_args),
        cmocka_unit_test(test_validate_references),
        cmocka_unit_test(test_validate_approval),
        cmocka_unit_test(test_validate_milestone),
        cmocka_unit_test(test_validate_check),
        cmocka_unit_test(test_validate_retry_fallback_when),
        cmocka_unit_test(test_resolve_types),
        cmocka_unit_test(test_resolve_errors),
        cmocka_unit_test(test_refs),
        cmocka_unit_test(test_when),
        cmocka_unit_test(test_result),
        cmocka_unit_test(test_check_error_and_empty),
        cmocka_unit_test(test_check_contains_matches),
        cmocka_unit_test(test_regex_bounds),
        cmocka_unit_test(test_check_schema),
        cmocka_unit_test(test_dsl_example),
        cmocka_unit_test(test_dsl_values),
        cmocka_unit_test(test_dsl_statements_and_options),
        cmocka_unit_test(test_dsl_errors),
        cmocka_unit_test(test_dsl_bounds),
        cmocka_unit_test(test_dsl_format),
        cmocka_unit_test(test_offline_english),
        cmocka_unit_test(test_offline_chinese),
        cmocka_unit_test(test_offline_inputs_and_dsl),
        cmocka_unit_test(test_offline_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
