/* request.c - the bodies of the requests, checked before anything is sent;
 * see internal.h.
 *
 * The caller's messages and tools are not sent as they are: each is
 * checked (a bad one is AOS_EINVAL naming it and the member) and copied
 * into the form every OpenAI-compatible server takes - tools wrapped as
 * {"type": "function", "function": {...}} with default parameters, an
 * assistant's tool-call arguments given as an object sent as its text - so
 * that a mistake is the caller's error at once, not a 400 from the server
 * after a round trip (or a retry). */
#include "llm/internal.h"
#include "tracectx/tracectx.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LLM_MAX_MESSAGES 100000
#define LLM_MAX_TOOLS    128
#define LLM_MAX_TEXTS    2048

int aos__llm_printable(const char *s, int spaces)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f || (!spaces && *p == ' '))
            return 0;
    return 1;
}

static int tool_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

/* Content: a string, or an array of parts (objects with a "type"). */
static int content_valid(const json_t *c)
{
    if (json_is_string(c))
        return 1;
    if (!json_is_array(c))
        return 0;
    size_t i;
    const json_t *p;
    json_array_foreach(c, i, p) if (!json_is_string(json_object_get(p, "type"))) return 0;
    return 1;
}

static json_t *msg_tool_calls(const json_t *list, size_t at, aos_err_t *err)
{
    if (!json_is_array(list) || json_array_size(list) == 0) {
        aos_err_set(err, AOS_EINVAL, "messages[%zu].tool_calls must be a non-empty array", at);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    const json_t *tc;
    json_array_foreach(list, i, tc)
    {
        const json_t *id = json_object_get(tc, "id"), *type = json_object_get(tc, "type");
        const json_t *fn = json_object_get(tc, "function");
        const json_t *name = json_object_get(fn, "name"), *args = json_object_get(fn, "arguments");
        const char *k;
        const json_t *v;
        int unknown = 0;
        json_object_foreach((json_t *)tc, k, v) unknown |=
            strcmp(k, "id") && strcmp(k, "type") && strcmp(k, "function");
        if (!json_is_object(tc) || unknown || !json_is_string(id) || !json_string_length(id) ||
            (type && (!json_is_string(type) || strcmp(json_string_value(type), "function"))) ||
            !json_is_string(name) || !json_string_length(name) ||
            (args && !json_is_string(args) && !json_is_object(args))) {
            aos_err_set(err, AOS_EINVAL,
                        "messages[%zu].tool_calls[%zu] must be {id, type: function, function: "
                        "{name, arguments}}",
                        at, i);
            json_decref(out);
            return NULL;
        }
        char *text = json_is_object(args) ? json_dumps(args, JSON_COMPACT)
                                          : strdup(args ? json_string_value(args) : "{}");
        json_t *o = text ? json_pack("{s:O, s:s, s:{s:O, s:s}}", "id", id, "type", "function",
                                     "function", "name", name, "arguments", text)
                         : NULL;
        free(text);
        if (!o || json_array_append_new(out, o)) {
            aos_err_set(err, AOS_ENOMEM, "out of memory");
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static json_t *check_messages(const json_t *messages, aos_err_t *err)
{
    static const char *const roles[] = {"system", "developer", "user", "assistant", "tool"};
    if (!json_is_array(messages) || json_array_size(messages) == 0 ||
        json_array_size(messages) > LLM_MAX_MESSAGES) {
        aos_err_set(err, AOS_EINVAL, "messages must be an array of 1 to %d messages",
                    LLM_MAX_MESSAGES);
        return NULL;
    }
    json_t *out = json_array();
    if (!out) {
        aos_err_set(err, AOS_ENOMEM, "out of memory");
        return NULL;
    }
    size_t i;
    const json_t *m;
    json_array_foreach(messages, i, m)
    {
        const char *role = json_string_value(json_object_get(m, "role"));
        size_t r = 0;
        while (role && r < sizeof(roles) / sizeof(roles[0]) && strcmp(role, roles[r]))
            r++;
        if (!json_is_object(m) || !role || r == sizeof(roles) / sizeof(roles[0])) {
            aos_err_set(err, AOS_EINVAL,
                        "messages[%zu].role must be system, developer, user, assistant or tool", i);
            goto fail;
        }
        int assistant = !strcmp(role, "assistant"), tool = !strcmp(role, "tool");
        const char *k;
        const json_t *v;
        json_object_foreach((json_t *)m, k, v)
        {
            if (!strcmp(k, "role") || !strcmp(k, "content") || !strcmp(k, "name") ||
                (assistant && !strcmp(k, "tool_calls")) || (tool && !strcmp(k, "tool_call_id")))
                continue;
            aos_err_set(err, AOS_EINVAL, "messages[%zu] (%s): unknown member '%.32s'", i, role, k);
            goto fail;
        }
        const json_t *content = json_object_get(m, "content"), *name = json_object_get(m, "name");
        const json_t *calls = json_object_get(m, "tool_calls");
        const json_t *call_id = json_object_get(m, "tool_call_id");
        json_t *o = json_pack("{s:s}", "role", role);
        if (!o || json_array_append_new(out, o)) {
            aos_err_set(err, AOS_ENOMEM, "out of memory");
            goto fail;
        }
        if (content && !json_is_null(content) && !content_valid(content)) {
            aos_err_set(err, AOS_EINVAL,
                        "messages[%zu].content must be a string or an array of parts", i);
            goto fail;
        }
        if ((!content || json_is_null(content)) && !(assistant && calls)) {
            aos_err_set(err, AOS_EINVAL, "messages[%zu].content is required", i);
            goto fail;
        }
        json_object_set(o, "content", content ? (json_t *)content : json_null());
        if (name) {
            if (!json_is_string(name) || !json_string_length(name) ||
                json_string_length(name) > 64) {
                aos_err_set(err, AOS_EINVAL, "messages[%zu].name must be a short string", i);
                goto fail;
            }
            json_object_set(o, "name", (json_t *)name);
        }
        if (calls) {
            json_t *tc = msg_tool_calls(calls, i, err);
            if (!tc)
                goto fail;
            json_object_set_new(o, "tool_calls", tc);
        }
        if (tool) {
            if (!json_is_string(call_id) || !json_string_length(call_id)) {
                aos_err_set(err, AOS_EINVAL, "messages[%zu] (tool) needs tool_call_id", i);
                goto fail;
            }
            json_object_set(o, "tool_call_id", (json_t *)call_id);
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static json_t *check_tools(const json_t *tools, aos_err_t *err)
{
    if (!json_is_array(tools) || json_array_size(tools) > LLM_MAX_TOOLS) {
        aos_err_set(err, AOS_EINVAL, "tools must be an array of at most %d tools", LLM_MAX_TOOLS);
        return NULL;
    }
    json_t *out = json_array();
    if (!out) {
        aos_err_set(err, AOS_ENOMEM, "out of memory");
        return NULL;
    }
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const json_t *fn = t;
        const json_t *type = json_object_get(t, "type");
        if (type) {
            fn = json_object_get(t, "function");
            if (!json_is_string(type) || strcmp(json_string_value(type), "function") ||
                json_object_size(t) != 2) {
                aos_err_set(err, AOS_EINVAL, "tools[%zu] must be {type: function, function}", i);
                goto fail;
            }
        }
        const char *name = json_string_value(json_object_get(fn, "name"));
        const json_t *desc = json_object_get(fn, "description");
        const json_t *params = json_object_get(fn, "parameters");
        const json_t *strict = json_object_get(fn, "strict");
        const char *k;
        const json_t *v;
        if (!json_is_object(fn) || !name || !tool_name_valid(name)) {
            aos_err_set(err, AOS_EINVAL, "tools[%zu].name must match [A-Za-z0-9_-]{1,64}", i);
            goto fail;
        }
        json_object_foreach((json_t *)fn, k, v)
        {
            if (strcmp(k, "name") && strcmp(k, "description") && strcmp(k, "parameters") &&
                strcmp(k, "strict")) {
                aos_err_set(err, AOS_EINVAL, "tools[%zu] (%s): unknown member '%.32s'", i, name, k);
                goto fail;
            }
        }
        if ((desc && !json_is_string(desc)) || (params && !json_is_object(params)) ||
            (strict && !json_is_boolean(strict))) {
            aos_err_set(err, AOS_EINVAL,
                        "tools[%zu] (%s): description must be a string, parameters an object, "
                        "strict a boolean",
                        i, name);
            goto fail;
        }
        for (size_t j = 0; j < i; j++) {
            const json_t *prev = json_object_get(json_array_get(out, j), "function");
            if (!strcmp(json_string_value(json_object_get(prev, "name")), name)) {
                aos_err_set(err, AOS_EINVAL, "tools[%zu]: '%s' is there twice", i, name);
                goto fail;
            }
        }
        json_t *f =
            json_pack("{s:s, s:O*, s:O*}", "name", name, "description", desc, "parameters", params);
        if (f && !params)
            json_object_set_new(f, "parameters",
                                json_pack("{s:s, s:{}}", "type", "object", "properties"));
        if (f && strict)
            json_object_set(f, "strict", (json_t *)strict);
        json_t *o = f ? json_pack("{s:s, s:o}", "type", "function", "function", f) : NULL;
        if (!o || json_array_append_new(out, o)) {
            aos_err_set(err, AOS_ENOMEM, "out of memory");
            goto fail;
        }
    }
    return out;
fail:
    json_decref(out);
    return NULL;
}

static int has_tool(const json_t *tools, const char *name)
{
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        const char *n = json_string_value(json_object_get(json_object_get(t, "function"), "name"));
        if (n && !strcmp(n, name))
            return 1;
    }
    return 0;
}

static int set_tool_choice(json_t *body, const json_t *tools, const char *choice, aos_err_t *err)
{
    if (!choice)
        return 0;
    if (!strcmp(choice, "none"))
        return json_object_set_new(body, "tool_choice", json_string(choice)) ? AOS_ENOMEM : 0;
    if (!tools || json_array_size(tools) == 0)
        return aos_err_set(err, AOS_EINVAL, "tool_choice '%.64s' needs tools", choice);
    json_t *v;
    if (!strcmp(choice, "auto") || !strcmp(choice, "required"))
        v = json_string(choice);
    else if (has_tool(tools, choice))
        v = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", choice);
    else
        return aos_err_set(err, AOS_EINVAL, "tool_choice names no tool: '%.64s'", choice);
    return json_object_set_new(body, "tool_choice", v) ? aos_err_set(err, AOS_ENOMEM, NULL) : 0;
}

static int set_extra(json_t *body, const json_t *extra, aos_err_t *err)
{
    static const char *const fixed[] = {"model",           "messages", "tools",
                                        "tool_choice",     "stream",   "stream_options",
                                        "response_format", "input"};
    if (!extra)
        return 0;
    if (!json_is_object(extra))
        return aos_err_set(err, AOS_EINVAL, "extra must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)extra, k, v)
    {
        for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
            if (!strcmp(k, fixed[i]))
                return aos_err_set(err, AOS_EINVAL, "extra may not set '%s'", k);
        if (json_is_null(v))
            json_object_del(body, k);
        else if (json_object_set(body, k, (json_t *)v))
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    return 0;
}

int aos__llm_check_common(const char *model, const char *traceparent, aos_err_t *err)
{
    if (model && (!model[0] || strlen(model) > AOS_LLM_MAX_NAME || !aos__llm_printable(model, 1)))
        return aos_err_set(err, AOS_EINVAL, "model is not a model name");
    aos_tracectx_t tc;
    if (traceparent && aos_tracectx_parse(&tc, traceparent, NULL) != 0)
        return aos_err_set(err, AOS_EINVAL, "traceparent is not a W3C trace context");
    return 0;
}

json_t *aos__llm_chat_body(const aos_llm_chat_t *req, const char *model, double temperature,
                           unsigned max_tokens, aos_err_t *err)
{
    json_t *msgs = check_messages(req->messages, err);
    if (!msgs)
        return NULL;
    json_t *tools = req->tools ? check_tools(req->tools, err) : NULL;
    if (req->tools && !tools) {
        json_decref(msgs);
        return NULL;
    }
    json_t *body = json_pack("{s:s, s:o, s:b}", "model", model, "messages", msgs, "stream",
                             req->stream ? 1 : 0);
    if (!body) {
        json_decref(tools);
        aos_err_set(err, AOS_ENOMEM, "out of memory");
        return NULL;
    }
    int rc = 0;
    if (req->stream)
        rc |= json_object_set_new(body, "stream_options", json_pack("{s:b}", "include_usage", 1));
    if (temperature >= 0) /* NaN: not sent */
        rc |= json_object_set_new(body, "temperature", json_real(temperature));
    unsigned max = req->max_tokens ? req->max_tokens : max_tokens;
    if (max)
        rc |= json_object_set_new(body, "max_tokens", json_integer(max));
    if (tools && json_array_size(tools))
        rc |= json_object_set(body, "tools", tools);
    if (rc) {
        aos_err_set(err, AOS_ENOMEM, "out of memory");
        goto fail;
    }
    if (set_tool_choice(body, tools, req->tool_choice, err))
        goto fail;
    if (req->response_format) {
        if (!json_is_string(json_object_get(req->response_format, "type"))) {
            aos_err_set(err, AOS_EINVAL, "response_format must be an object with a type");
            goto fail;
        }
        if (json_object_set(body, "response_format", req->response_format)) {
            aos_err_set(err, AOS_ENOMEM, "out of memory");
            goto fail;
        }
    }
    if (set_extra(body, req->extra, err))
        goto fail;
    json_decref(tools);
    return body;
fail:
    json_decref(tools);
    json_decref(body);
    return NULL;
}

json_t *aos__llm_embed_body(const aos_llm_embed_t *req, const char *model, aos_err_t *err)
{
    if (!req->texts || req->ntexts == 0 || req->ntexts > LLM_MAX_TEXTS) {
        aos_err_set(err, AOS_EINVAL, "texts must hold 1 to %d texts", LLM_MAX_TEXTS);
        return NULL;
    }
    json_t *input = json_array();
    for (size_t i = 0; input && i < req->ntexts; i++) {
        json_t *t = req->texts[i] && req->texts[i][0] ? json_string(req->texts[i]) : NULL;
        if (!t) {
            aos_err_set(err, AOS_EINVAL, "texts[%zu] is empty or not UTF-8", i);
            json_decref(input);
            return NULL;
        }
        if (json_array_append_new(input, t)) {
            json_decref(input);
            input = NULL;
        }
    }
    json_t *body = input ? json_pack("{s:s, s:o}", "model", model, "input", input) : NULL;
    if (!body)
        aos_err_set(err, AOS_ENOMEM, "out of memory");
    return body;
}
