/* agents.c - agent definitions, versions and templates (agents.h): the
 * validation of a client's agent (unknown fields refused), and the routes,
 * each one store job that reads or writes the rows with its audit row;
 * what runs (start, stop, scale, release, register-mcp) is then applied
 * to the live agents (live.c) in the job's done callback. */
#include "agents/internal.h"

#include <ctype.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "log/log.h"
#include "registry/registry.h"
#include "settings/settings.h"

#define AG_TEXT_MAX  65536
#define AG_TOOLS_MAX 256
#define AG_ENV_MAX   64

/* ---- templates --------------------------------------------------------------- */

static json_t *templates(void)
{
    return json_pack(
        "[{s:s, s:s, s:s, s:{s:s, s:s, s:[s, s, s], s:i}},"
        " {s:s, s:s, s:s, s:{s:s, s:s, s:[s], s:i}},"
        " {s:s, s:s, s:s, s:{s:s, s:s, s:[s], s:i}}]",
        "name", "csv-analyst", "description", "Cleans a CSV file and plots it", "type", "local",
        "config", "prompt",
        "You are a data analyst. Clean the CSV file you are given, then plot its main columns "
        "and say what the plot shows.",
        "sop", "csv.clean(input) -> clean; viz.plot(clean) -> chart", "tools", "csv__*", "viz__*",
        "files__*", "concurrency", 2, "name", "log-triage", "description",
        "Finds the errors of a trace in the logs and summarises them", "type", "local", "config",
        "prompt",
        "You triage incidents. Query the logs of the trace you are given, group the errors and "
        "report the likely cause.",
        "sop", "logs.query(trace_id, level=error) -> errors; summarise(errors)", "tools", "logs__*",
        "concurrency", 4, "name", "shell-runner", "description",
        "Runs the commands of a task in the sandbox", "type", "local", "config", "prompt",
        "Run the commands you are given in the sandbox, one at a time, and report their output.",
        "sop", "shell.run(command) -> output", "tools", "shell__run", "concurrency", 1);
}

static json_t *template_find(const char *name)
{
    json_t *all = templates(), *found = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(all, i, t) if (!strcmp(json_string_value(json_object_get(t, "name")), name))
        found = json_incref(t);
    json_decref(all);
    return found;
}

/* ---- validation ------------------------------------------------------------------ */

/* A tool pattern: "<server>__<tool>", or a prefix of one ending in '*'. */
static int tool_pattern_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 200)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '*' && i != n - 1)
            return 0;
        if (!(c == '*' || c == '_' || c == '-' || c == '.' || c == '/' || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
    return s[n - 1] == '*' || strstr(s, "__") != NULL;
}

static int project_id_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || s[i] == '.' || s[i] == ':' || s[i] == '-' ||
              (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

static int env_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    if (!strncmp(s, "AOS_", 4)) /* aosd's own, and what it gives the runtime */
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

/* A header a remote agent may send: an RFC 9110 token, not one aosd sets
 * (the gateway's registry refuses those too, when the route is made). */
static int header_name_ok(const char *k)
{
    static const char *const managed[] = {"Host",
                                          "Content-Length",
                                          "Content-Type",
                                          "Transfer-Encoding",
                                          "Connection",
                                          "Accept",
                                          "Authorization",
                                          "Mcp-Session-Id",
                                          "Mcp-Protocol-Version",
                                          "Last-Event-ID",
                                          "traceparent",
                                          "tracestate",
                                          NULL};
    if (!*k || strlen(k) > 128)
        return 0;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return 0;
    for (const char *const *m = managed; *m; m++)
        if (!strcasecmp(*m, k))
            return 0;
    return 1;
}

/* A credential of a remote agent as stored: {"secret": NAME} as given, or
 * a string sealed (NULL with err otherwise). */
static json_t *cred_value(aos_agents_t *a, const char *what, const char *k, const json_t *v,
                          aos_err_t *err)
{
    const char *sec, *var;
    int ref = aos_settings_env_ref(v, &sec, &var);
    if (ref > 0 && sec && !var)
        return json_pack("{s:s}", "secret", sec);
    if (ref || !json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 8192) {
        aos_err_set(err, AOS_EINVAL,
                    "config.%s%s%.64s must be {\"secret\": \"<runtime secret>\"} or a string "
                    "(1 to 8192 bytes)",
                    what, k ? "." : "", k ? k : "");
        return NULL;
    }
    const char *s = json_string_value(v);
    for (size_t i = 0; i < json_string_length(v); i++)
        if (((unsigned char)s[i] < 0x20 && s[i] != '\t') || s[i] == 0x7f) {
            aos_err_set(err, AOS_EINVAL, "config.%s%s%.64s holds a control character", what,
                        k ? "." : "", k ? k : "");
            return NULL;
        }
    char *sealed = aos_secret_seal(a->cfg.secrets, s, json_string_length(v));
    if (!sealed) {
        aos_err_set(err, AOS_EINTERNAL, "unable to seal config.%s", what);
        return NULL;
    }
    json_t *o = json_string(sealed);
    free(sealed);
    return o;
}

/* config.headers ({Name: credential}, at most 32) and config.auth_token
 * (a credential sent as "Authorization: Bearer ...") of a remote agent: c
 * gets them from in over base's; in a header, null keeps the stored value
 * (and a null auth_token removes it). */
static int remote_creds_normalize(aos_agents_t *a, const char *type, json_t *c, const json_t *in,
                                  const json_t *base, aos_err_t *err)
{
    const json_t *h_in = json_object_get(in, "headers"), *t_in = json_object_get(in, "auth_token");
    if (strcmp(type, "remote") != 0) {
        if ((h_in && !json_is_null(h_in)) || (t_in && !json_is_null(t_in)))
            return aos_err_set(err, AOS_EINVAL,
                               "config.headers and config.auth_token are for remote agents");
        json_object_del(c, "headers");
        json_object_del(c, "auth_token");
        return 0;
    }
    if (h_in) {
        const json_t *prev = json_object_get(base, "headers");
        if (json_is_null(h_in)) {
            json_object_del(c, "headers");
        } else if (!json_is_object(h_in) || json_object_size(h_in) > 32) {
            return aos_err_set(err, AOS_EINVAL,
                               "config.headers must be an object of at most 32 headers");
        } else {
            json_t *h = json_object();
            json_object_set_new(c, "headers", h);
            const char *k;
            const json_t *v;
            json_object_foreach((json_t *)h_in, k, v)
            {
                if (!header_name_ok(k))
                    return aos_err_set(err, AOS_EINVAL,
                                       "config.headers: '%.64s' is not a header name a remote "
                                       "agent may set (an HTTP token; not Authorization - that "
                                       "is auth_token -, Host, Mcp-Session-Id ...)",
                                       k);
                if (json_is_null(v) && json_object_get(prev, k)) {
                    json_object_set(h, k, json_object_get(prev, k));
                    continue;
                }
                json_t *o = cred_value(a, "headers", k, v, err);
                if (!o)
                    return err->code;
                json_object_set_new(h, k, o);
            }
        }
    }
    if (t_in) {
        if (json_is_null(t_in)) {
            json_object_del(c, "auth_token");
        } else {
            json_t *o = cred_value(a, "auth_token", NULL, t_in, err);
            if (!o)
                return err->code;
            json_object_set_new(c, "auth_token", o);
        }
    }
    return 0;
}

/* The config to store: base (the template's or the stored one; may be NULL)
 * with in's fields over it; env values sealed (null keeps the stored one). */
static json_t *config_normalize(aos_agents_t *a, const char *type, const json_t *base,
                                const json_t *in, aos_err_t *err)
{
    if (in && !json_is_object(in)) {
        aos_err_set(err, AOS_EINVAL, "config must be an object");
        return NULL;
    }
    static const char *const fields[] = {"prompt",
                                         "sop",
                                         "tools",
                                         "env",
                                         "concurrency",
                                         "url",
                                         "health_interval_ms",
                                         "project_id",
                                         "planner",
                                         "headers",
                                         "auth_token",
                                         NULL};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        int known = 0;
        for (size_t i = 0; fields[i]; i++)
            known |= !strcmp(k, fields[i]);
        if (!known) {
            aos_err_set(err, AOS_EINVAL, "config: unknown field '%.64s'", k);
            return NULL;
        }
    }
    json_t *c = base ? json_deep_copy(base) : json_object();
    json_object_foreach((json_t *)in, k, v)
    {
        if (strcmp(k, "env") && strcmp(k, "headers") && strcmp(k, "auth_token"))
            json_object_set(c, k, (json_t *)v);
    }
    for (const char *const *f = (const char *const[]){"prompt", "sop", NULL}; *f; f++) {
        json_t *t = json_object_get(c, *f);
        if (t && !json_is_null(t) && (!json_is_string(t) || json_string_length(t) > AG_TEXT_MAX)) {
            aos_err_set(err, AOS_EINVAL, "config.%s must be a string of at most %d bytes", *f,
                        AG_TEXT_MAX);
            goto fail;
        }
    }
    json_t *tools = json_object_get(c, "tools");
    if (!tools)
        json_object_set_new(c, "tools", tools = json_array());
    if (!json_is_array(tools) || json_array_size(tools) > AG_TOOLS_MAX) {
        aos_err_set(err, AOS_EINVAL, "config.tools must be an array of at most %d names",
                    AG_TOOLS_MAX);
        goto fail;
    }
    size_t i;
    json_t *t;
    json_array_foreach(tools, i,
                       t) if (!json_is_string(t) || !tool_pattern_ok(json_string_value(t)))
    {
        aos_err_set(err, AOS_EINVAL,
                    "config.tools[%zu] must be '<server>__<tool>' or a prefix ending in '*'", i);
        goto fail;
    }
    json_t *conc = json_object_get(c, "concurrency");
    if (!conc)
        json_object_set_new(c, "concurrency", conc = json_integer(4));
    if (!json_is_integer(conc) || json_integer_value(conc) < 1 || json_integer_value(conc) > 1000) {
        aos_err_set(err, AOS_EINVAL, "config.concurrency must be from 1 to 1000");
        goto fail;
    }
    json_t *url = json_object_get(c, "url");
    if (!strcmp(type, "remote")) {
        const char *u = json_string_value(url);
        if (!u || (strncmp(u, "http://", 7) && strncmp(u, "https://", 8)) || strlen(u) > 2000) {
            aos_err_set(err, AOS_EINVAL, "a remote agent needs config.url (http or https)");
            goto fail;
        }
    } else if (url && !json_is_null(url)) {
        aos_err_set(err, AOS_EINVAL, "config.url is for remote agents");
        goto fail;
    }
    json_t *every = json_object_get(c, "health_interval_ms");
    if (every && !json_is_null(every) &&
        (strcmp(type, "remote") || !json_is_integer(every) || json_integer_value(every) < 100 ||
         json_integer_value(every) > 3600000)) {
        aos_err_set(err, AOS_EINVAL,
                    "config.health_interval_ms is for remote agents: from 100 to 3600000");
        goto fail;
    }
    json_t *project = json_object_get(c, "project_id");
    if (project && !json_is_null(project) &&
        (!json_is_string(project) || !project_id_ok(json_string_value(project)))) {
        aos_err_set(err, AOS_EINVAL,
                    "config.project_id must be 1 to 128 of A-Z a-z 0-9 _ . : - (the project "
                    "whose variables and secrets its env may name)");
        goto fail;
    }
    json_t *planner = json_object_get(c, "planner");
    const char *pl = json_string_value(planner);
    if (planner && !json_is_null(planner) &&
        (!pl || (strcmp(pl, "local") && strcmp(pl, "orchestrator")))) {
        aos_err_set(err, AOS_EINVAL, "config.planner must be \"local\" or \"orchestrator\"");
        goto fail;
    }
    if (pl && !strcmp(pl, "orchestrator") &&
        (!strcmp(type, "remote") || !json_is_string(json_object_get(c, "project_id")))) {
        aos_err_set(err, AOS_EINVAL,
                    "config.planner \"orchestrator\" is for local agents with a "
                    "config.project_id (their tasks run in that project)");
        goto fail;
    }
    /* env: sealed values, or references to runtime secrets and project
     * variables (opened at each start of a replica) */
    const json_t *env_in = json_object_get(in, "env");
    const json_t *env_prev = json_object_get(base, "env");
    if (env_in) {
        if (!json_is_object(env_in) || json_object_size(env_in) > AG_ENV_MAX) {
            aos_err_set(err, AOS_EINVAL, "config.env must be an object of at most %d entries",
                        AG_ENV_MAX);
            goto fail;
        }
        json_t *env = json_object();
        json_object_set_new(c, "env", env);
        json_object_foreach((json_t *)env_in, k, v)
        {
            if (!env_name_ok(k)) {
                aos_err_set(err, AOS_EINVAL,
                            "config.env name '%.64s' is not a variable name (or is AOS_*)", k);
                goto fail;
            }
            if (json_is_null(v) && json_object_get(env_prev, k)) {
                json_object_set(env, k, json_object_get(env_prev, k));
                continue;
            }
            const char *sec, *var;
            int ref = aos_settings_env_ref(v, &sec, &var);
            if (ref > 0 && !(sec && var)) {
                json_object_set_new(env, k,
                                    sec ? json_pack("{s:s}", "secret", sec)
                                        : json_pack("{s:s}", "var", var));
                continue;
            }
            if (ref || !json_is_string(v) || json_string_length(v) > AG_TEXT_MAX) {
                aos_err_set(err, AOS_EINVAL,
                            "config.env '%.64s' must be a string, {\"secret\": \"<runtime "
                            "secret>\"} or {\"var\": \"<project variable>\"}",
                            k);
                goto fail;
            }
            char *sealed =
                aos_secret_seal(a->cfg.secrets, json_string_value(v), json_string_length(v));
            if (!sealed) {
                aos_err_set(err, AOS_EINTERNAL, "unable to seal config.env '%.64s'", k);
                goto fail;
            }
            json_object_set_new(env, k, json_string(sealed));
            free(sealed);
        }
    } else if (!json_object_get(c, "env")) {
        json_object_set_new(c, "env", json_object());
    }
    if (remote_creds_normalize(a, type, c, in, base, err))
        goto fail;
    /* a project variable needs the project */
    json_object_foreach(json_object_get(c, "env"), k, v)
    {
        if (json_object_get(v, "var") && !json_is_string(json_object_get(c, "project_id"))) {
            aos_err_set(err, AOS_EINVAL,
                        "config.env '%.64s' names a project variable: config.project_id is needed",
                        k);
            goto fail;
        }
    }
    return c;
fail:
    json_decref(c);
    return NULL;
}

/* The public form of a config: env names, and the names of the secrets
 * and variables it refers to (no value, sealed or not). */
json_t *ag_config_public(const json_t *config)
{
    json_t *c = json_deep_copy(config);
    json_t *names = json_array(), *refs = json_object();
    const char *k;
    const json_t *v;
    json_object_foreach(json_object_get(config, "env"), k, v)
    {
        json_array_append_new(names, json_string(k));
        const char *sec, *var;
        if (aos_settings_env_ref(v, &sec, &var) > 0)
            json_object_set_new(
                refs, k, var ? json_pack("{s:s}", "var", var) : json_pack("{s:s}", "secret", sec));
    }
    json_object_del(c, "env");
    json_object_set_new(c, "env_names", names);
    json_object_set_new(c, "env_refs", refs);
    /* a remote agent's credentials: header names, and which secrets they name */
    const json_t *h = json_object_get(config, "headers");
    if (h) {
        json_t *hn = json_array(), *hr = json_object();
        json_object_foreach((json_t *)h, k, v)
        {
            json_array_append_new(hn, json_string(k));
            if (json_is_object(v))
                json_object_set(hr, k, (json_t *)v);
        }
        json_object_del(c, "headers");
        json_object_set_new(c, "header_names", hn);
        json_object_set_new(c, "header_refs", hr);
    }
    const json_t *tok = json_object_get(config, "auth_token");
    if (tok) {
        json_object_del(c, "auth_token");
        json_object_set_new(c, "has_auth_token", json_true());
        if (json_is_object(tok))
            json_object_set(c, "auth_token_ref", (json_t *)tok);
    }
    return c;
}

static json_t *agent_public(const json_t *row, int64_t latest)
{
    json_t *o = json_deep_copy(row);
    json_object_set_new(o, "config", ag_config_public(json_object_get(row, "config")));
    const char *v = json_string_value(json_object_get(row, "version"));
    json_object_set_new(o, "version", json_integer(v ? strtoll(v, NULL, 10) : 0));
    if (latest > 0)
        json_object_set_new(o, "latest_version", json_integer(latest));
    return o;
}

/* ---- store jobs --------------------------------------------------------------------- */

typedef enum {
    OP_LIST,
    OP_CREATE,
    OP_GET,
    OP_PATCH,
    OP_DELETE,
    OP_VERSIONS,
    OP_CLONE,
    OP_RELEASE,
    OP_SCALE,
    OP_START,
    OP_STOP,
    OP_REGISTER,
    OP_UNREGISTER,
    OP_LOGS,
    OP_RUNS
} op_t;

typedef struct {
    aos_agents_t *a;
    aos_http_req_t *req;
    op_t op;
    char id[AOS_REGISTRY_NAME_MAX + 40];
    char actor[96];
    json_t *body, *result;
    int64_t latest;
    json_t *config;  /* start, release: the config of the version made live */
    int64_t version; /* ... and its number */
    char run_id[40]; /* start, stop: the agent_runs row */
    int phase;       /* start: 0 reads and checks its config, 1 stores the start */
    char *stats;     /* stop: the run's statistics (JSON text) */
    unsigned tail;   /* logs */
} ag_job_t;

static void new_id(char out[33])
{
    unsigned char b[16];
    randombytes_buf(b, sizeof(b));
    sodium_bin2hex(out, 33, b, sizeof(b));
}

static int latest_version(aos_store_t *st, const char *id, int64_t *out, json_t **all,
                          aos_err_t *err)
{
    json_t *v = NULL;
    int rc = aos_store_agent_versions(st, id, &v, err);
    if (rc)
        return rc;
    *out =
        json_integer_value(json_object_get(json_array_get(v, json_array_size(v) - 1), "version"));
    if (all)
        *all = v;
    else
        json_decref(v);
    return 0;
}

/* A new agent from body (create) or from the stored agent src (clone). */
static int create_row(ag_job_t *j, aos_store_t *st, const json_t *body, const json_t *src,
                      aos_err_t *err)
{
    static const char *const fields[] = {"name", "type", "template", "replicas", "config", NULL};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)body, k, v)
    {
        int known = 0;
        for (size_t i = 0; fields[i]; i++)
            known |= !strcmp(k, fields[i]);
        if (!known || (src && strcmp(k, "name") != 0))
            return aos_err_set(err, AOS_EINVAL, "unknown field '%.64s'", k);
    }
    const char *name = json_string_value(json_object_get(body, "name"));
    if (!name || !aos_registry_name_ok(name) || aos_registry_name_reserved(name))
        return aos_err_set(err, AOS_EINVAL,
                           "name must be [A-Za-z0-9][A-Za-z0-9_.-]{0,63} without '__', and not "
                           "a built-in server's");
    json_t *tmpl = NULL;
    const json_t *tname = json_object_get(body, "template");
    if (tname && !(json_is_string(tname) && (tmpl = template_find(json_string_value(tname)))))
        return aos_err_set(err, AOS_EINVAL, "no template '%.64s' (GET /agents/templates)",
                           json_is_string(tname) ? json_string_value(tname) : "?");
    const char *type = src ? json_string_value(json_object_get(src, "type"))
                           : json_string_value(json_object_get(body, "type"));
    if (!type)
        type = tmpl ? json_string_value(json_object_get(tmpl, "type")) : "local";
    if (strcmp(type, "local") && strcmp(type, "remote")) {
        json_decref(tmpl);
        return aos_err_set(err, AOS_EINVAL, "type must be local or remote");
    }
    type = !strcmp(type, "local") ? "local" : "remote"; /* static: tmpl goes below */
    const json_t *rep = src ? json_object_get(src, "replicas") : json_object_get(body, "replicas");
    if (rep &&
        (!json_is_integer(rep) || json_integer_value(rep) < 1 || json_integer_value(rep) > 16)) {
        json_decref(tmpl);
        return aos_err_set(err, AOS_EINVAL, "replicas must be from 1 to 16");
    }
    json_t *config;
    if (src) {
        config = json_deep_copy(json_object_get(src, "config"));
    } else {
        const json_t *base = json_object_get(tmpl, "config");
        config = config_normalize(j->a, type, base, json_object_get(body, "config"), err);
    }
    json_decref(tmpl);
    if (!config)
        return err->code ? err->code : AOS_EINVAL;
    char id[33];
    new_id(id);
    char *text = json_dumps(config, JSON_COMPACT);
    json_decref(config);
    if (!text)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    aos_store_agent_t row = {.id = id,
                             .name = name,
                             .type = type,
                             .version = "1",
                             .status = "stopped",
                             .config = text,
                             .replicas = rep ? json_integer_value(rep) : 1};
    int rc = aos_store_agent_put(st, &row, 1, err);
    if (!rc)
        rc = aos_store_agent_version_add(st, id, 1, text, j->actor, err);
    free(text);
    if (!rc)
        rc = aos_store_agent_get(st, id, &j->result, err);
    if (!rc) {
        char res[128];
        snprintf(res, sizeof(res), "agent:%s", name);
        json_t *pub = agent_public(j->result, 1);
        json_t *diff = json_pack("{s:s, s:s, s:O}", "id", id, "type", type, "config",
                                 json_object_get(pub, "config"));
        json_decref(pub);
        rc = aos_store_audit_append(st, j->actor, src ? "agent.clone" : "agent.create", res, diff,
                                    err);
        json_decref(diff);
    }
    j->latest = 1;
    return rc;
}

/* *config (replaced by a copy of its own) with each {"var": V} of its env
 * resolved to the secret of config.project_id's variable V. */
static int resolve_vars(aos_store_t *st, json_t **config, aos_err_t *err)
{
    json_t *c = json_deep_copy(*config);
    json_decref(*config);
    *config = c;
    if (!c)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    json_t *env = json_object_get(c, "env");
    const char *k;
    json_t *v;
    int vars = 0;
    json_object_foreach(env, k, v) vars |= json_object_get(v, "var") != NULL;
    if (!vars)
        return 0;
    const char *project = json_string_value(json_object_get(c, "project_id"));
    if (!project)
        return aos_err_set(err, AOS_EINVAL,
                           "config.env names project variables: config.project_id is needed");
    json_t *rows = NULL;
    int rc = aos_store_project_var_list(st, project, &rows, err);
    if (!rc)
        rc = aos_settings_env_resolve(env, rows, project, err);
    json_decref(rows);
    return rc;
}

/* The config of version n of agent id (a new reference in *out). */
static int version_config(aos_store_t *st, const char *id, int64_t n, json_t **out, aos_err_t *err)
{
    json_t *all = NULL;
    int rc = aos_store_agent_versions(st, id, &all, err);
    if (rc)
        return rc;
    size_t i;
    json_t *v;
    *out = NULL;
    json_array_foreach(all, i, v) if (json_integer_value(json_object_get(v, "version")) == n) *out =
        json_incref(json_object_get(v, "config"));
    json_decref(all);
    return *out ? 0
                : aos_err_set(err, AOS_ENOTFOUND, "agent %.40s has no version %lld", id,
                              (long long)n);
}

/* Rewrites the agent's row as it is with route_prefix (NULL: none), the
 * store write of register-mcp and unregister-mcp. */
static int put_route_prefix(aos_store_t *st, const char *id, const char *v, const json_t *row,
                            const char *prefix, aos_err_t *err)
{
    char *text = json_dumps(json_object_get(row, "config"), JSON_COMPACT);
    aos_store_agent_t a = {.id = id,
                           .version = v,
                           .route_prefix = prefix,
                           .status = json_string_value(json_object_get(row, "status")),
                           .config = text,
                           .replicas = json_integer_value(json_object_get(row, "replicas"))};
    int rc = text ? aos_store_agent_put(st, &a, 0, err) : aos_err_set(err, AOS_ENOMEM, NULL);
    free(text);
    return rc;
}

static int audit(ag_job_t *j, aos_store_t *st, const json_t *row, const char *action, json_t *diff,
                 aos_err_t *err)
{
    char res[128];
    snprintf(res, sizeof(res), "agent:%s", json_string_value(json_object_get(row, "name")));
    int rc = aos_store_audit_append(st, j->actor, action, res, diff, err);
    json_decref(diff);
    return rc;
}

/* start, stop, register-mcp, unregister-mcp, logs, runs: their store work. */
static int job_live(ag_job_t *j, aos_store_t *st, aos_err_t *err)
{
    json_t *row = NULL;
    int rc = aos_store_agent_get(st, j->id, &row, err);
    if (rc)
        return rc;
    char id[40]; /* row is released before the last reads */
    snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(row, "id")));
    const char *v = json_string_value(json_object_get(row, "version"));
    j->version = v ? strtoll(v, NULL, 10) : 1;
    switch (j->op) {
    case OP_START: {
        if (!j->phase) {
            /* the live version's config, its variables resolved; its
             * secrets are checked on the loop before anything is stored */
            if ((rc = version_config(st, id, j->version, &j->config, err)) == 0)
                rc = resolve_vars(st, &j->config, err);
            break;
        }
        new_id(j->run_id);
        char stats[96];
        snprintf(stats, sizeof(stats), "{\"version\":%lld,\"replicas\":%lld}",
                 (long long)j->version,
                 (long long)json_integer_value(json_object_get(row, "replicas")));
        if ((rc = aos_store_agent_run_start(st, j->run_id, id, NULL, stats, err)) ||
            (rc = aos_store_agent_set_status(st, id, "starting", err)))
            break;
        rc = audit(j, st, row, "agent.start",
                   json_pack("{s:I, s:O, s:s}", "version", (json_int_t)j->version, "replicas",
                             json_object_get(row, "replicas"), "run_id", j->run_id),
                   err);
        break;
    }
    case OP_STOP:
        if (j->run_id[0] &&
            (rc = aos_store_agent_run_update(st, j->run_id, "stopped", j->stats, 1, err)))
            break;
        if ((rc = aos_store_agent_set_status(st, id, "stopped", err)))
            break;
        rc = audit(j, st, row, "agent.stop", json_pack("{s:s}", "run_id", j->run_id), err);
        break;
    case OP_REGISTER: {
        char prefix[AOS_REGISTRY_NAME_MAX + 16];
        snprintf(prefix, sizeof(prefix), "/agents/%s/mcp",
                 json_string_value(json_object_get(row, "name")));
        const char *had = json_string_value(json_object_get(row, "route_prefix"));
        if (had && !strcmp(had, prefix))
            break; /* registered already: nothing changes */
        rc = put_route_prefix(st, id, v, row, prefix, err);
        if (!rc)
            rc = audit(j, st, row, "agent.register",
                       json_pack("{s:s, s:s}", "route_prefix", prefix, "tools", "<name>__run_task"),
                       err);
        break;
    }
    case OP_UNREGISTER: {
        const char *had = json_string_value(json_object_get(row, "route_prefix"));
        if (!had)
            break; /* not registered: nothing changes */
        rc = put_route_prefix(st, id, v, row, NULL, err);
        if (!rc)
            rc =
                audit(j, st, row, "agent.unregister", json_pack("{s:s}", "route_prefix", had), err);
        break;
    }
    case OP_RUNS: {
        json_t *runs = NULL;
        if ((rc = aos_store_agent_runs(st, id, 50, &runs, err)))
            break;
        j->result = runs;
        json_decref(row);
        return 0;
    }
    default:
        break;
    }
    if (!rc) {
        json_decref(row);
        row = NULL;
        rc = aos_store_agent_get(st, id, &j->result, err);
        if (!rc)
            rc = latest_version(st, id, &j->latest, NULL, err);
    }
    json_decref(row);
    return rc;
}

static int job_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    ag_job_t *j = arg;
    json_t *row = NULL;
    int rc;
    switch (j->op) {
    case OP_START:
    case OP_STOP:
    case OP_REGISTER:
    case OP_UNREGISTER:
    case OP_LOGS:
    case OP_RUNS:
        return job_live(j, st, err);
    case OP_LIST:
        return aos_store_agent_list(st, &j->result, err);
    case OP_CREATE:
        return create_row(j, st, j->body, NULL, err);
    case OP_GET:
        if ((rc = aos_store_agent_get(st, j->id, &j->result, err)))
            return rc;
        return latest_version(st, json_string_value(json_object_get(j->result, "id")), &j->latest,
                              NULL, err);
    case OP_VERSIONS: {
        if ((rc = aos_store_agent_get(st, j->id, &row, err)))
            return rc;
        json_t *all = NULL;
        rc = latest_version(st, json_string_value(json_object_get(row, "id")), &j->latest, &all,
                            err);
        json_decref(row);
        if (rc)
            return rc;
        /* each version's config (env names only) and what changed from the one before */
        j->result = json_array();
        json_t *prev = NULL;
        size_t i;
        json_t *v;
        json_array_foreach(all, i, v)
        {
            json_t *cfg = ag_config_public(json_object_get(v, "config"));
            json_t *diff = json_object();
            const char *k;
            json_t *x;
            json_object_foreach(cfg, k, x) if (!prev || !json_equal(x, json_object_get(prev, k)))
                json_object_set_new(
                    diff, k, json_pack("{s:O?, s:O}", "from", json_object_get(prev, k), "to", x));
            json_object_foreach(prev, k, x) if (!json_object_get(cfg, k))
                json_object_set_new(diff, k, json_pack("{s:O, s:n}", "from", x, "to"));
            json_array_append_new(
                j->result,
                json_pack("{s:O, s:O, s:O, s:o, s:o}", "version", json_object_get(v, "version"),
                          "created_by", json_object_get(v, "created_by"), "created_at",
                          json_object_get(v, "created_at"), "config", cfg, "diff", diff));
            prev = cfg;
        }
        json_decref(all);
        return 0;
    }
    case OP_PATCH: {
        if ((rc = aos_store_agent_get(st, j->id, &row, err)))
            return rc;
        const char *k;
        json_t *v;
        json_object_foreach(j->body, k, v) if (strcmp(k, "config") != 0)
        {
            json_decref(row);
            return aos_err_set(err, AOS_EINVAL,
                               "only config may be changed ('%.64s': not yet, see docs/NEXT.md)",
                               k);
        }
        char id[40]; /* row is released before the last read */
        snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(row, "id")));
        const char *type = json_string_value(json_object_get(row, "type"));
        json_t *cfg = config_normalize(j->a, type, json_object_get(row, "config"),
                                       json_object_get(j->body, "config"), err);
        if (!cfg) {
            json_decref(row);
            return err->code ? err->code : AOS_EINVAL;
        }
        if ((rc = latest_version(st, id, &j->latest, NULL, err))) {
            json_decref(cfg);
            json_decref(row);
            return rc;
        }
        if (!json_equal(cfg, json_object_get(row, "config"))) {
            char *text = json_dumps(cfg, JSON_COMPACT);
            aos_store_agent_t a = {
                .id = id,
                .version = json_string_value(json_object_get(row, "version")),
                .route_prefix = json_string_value(json_object_get(row, "route_prefix")),
                .status = json_string_value(json_object_get(row, "status")),
                .config = text,
                .replicas = json_integer_value(json_object_get(row, "replicas"))};
            rc = text ? aos_store_agent_put(st, &a, 0, err) : AOS_ENOMEM;
            if (!rc)
                rc = aos_store_agent_version_add(st, id, ++j->latest, text, j->actor, err);
            free(text);
            if (!rc) {
                char res[128];
                snprintf(res, sizeof(res), "agent:%s",
                         json_string_value(json_object_get(row, "name")));
                json_t *diff = json_pack("{s:o, s:o, s:I}", "before",
                                         ag_config_public(json_object_get(row, "config")), "after",
                                         ag_config_public(cfg), "version", (json_int_t)j->latest);
                rc = aos_store_audit_append(st, j->actor, "agent.update", res, diff, err);
                json_decref(diff);
            }
        }
        json_decref(cfg);
        json_decref(row);
        if (!rc)
            rc = aos_store_agent_get(st, id, &j->result, err);
        return rc;
    }
    case OP_DELETE: {
        if ((rc = aos_store_agent_get(st, j->id, &row, err)))
            return rc;
        char res[128];
        snprintf(res, sizeof(res), "agent:%s", json_string_value(json_object_get(row, "name")));
        rc = aos_store_agent_delete(st, json_string_value(json_object_get(row, "id")), err);
        if (!rc)
            rc = aos_store_audit_append(st, j->actor, "agent.delete", res, NULL, err);
        json_decref(row);
        return rc;
    }
    case OP_RELEASE:
    case OP_SCALE: {
        /* release: {version} (absent: the newest) becomes the live one (an
         * older one: a rollback); scale: {replicas}. The row changes now;
         * replicas follow when the lifecycle exists (docs/NEXT.md). */
        if ((rc = aos_store_agent_get(st, j->id, &row, err)))
            return rc;
        const char *field = j->op == OP_RELEASE ? "version" : "replicas";
        const char *k;
        json_t *v;
        json_object_foreach(j->body, k, v) if (strcmp(k, field) != 0)
        {
            json_decref(row);
            return aos_err_set(err, AOS_EINVAL, "unknown field '%.64s'", k);
        }
        char id[40];
        snprintf(id, sizeof(id), "%s", json_string_value(json_object_get(row, "id")));
        if ((rc = latest_version(st, id, &j->latest, NULL, err))) {
            json_decref(row);
            return rc;
        }
        const json_t *want = json_object_get(j->body, field);
        int64_t n;
        if (j->op == OP_RELEASE) {
            n = want ? json_integer_value(want) : j->latest;
            if ((want && !json_is_integer(want)) || n < 1 || n > j->latest) {
                json_decref(row);
                return aos_err_set(err, AOS_EINVAL, "version must be from 1 to %lld",
                                   (long long)j->latest);
            }
        } else {
            n = json_integer_value(want);
            if (!json_is_integer(want) || n < 1 || n > 16) {
                json_decref(row);
                return aos_err_set(err, AOS_EINVAL, "replicas must be from 1 to 16");
            }
        }
        const char *live = json_string_value(json_object_get(row, "version"));
        int64_t before = j->op == OP_RELEASE ? (live ? strtoll(live, NULL, 10) : 0)
                                             : json_integer_value(json_object_get(row, "replicas"));
        char vtext[24];
        snprintf(vtext, sizeof(vtext), "%lld", (long long)(j->op == OP_RELEASE ? n : before));
        if (j->op == OP_SCALE)
            snprintf(vtext, sizeof(vtext), "%s", live ? live : "1");
        json_t *config = json_object_get(row, "config");
        char *text = json_dumps(config, JSON_COMPACT);
        aos_store_agent_t a = {
            .id = id,
            .version = vtext,
            .route_prefix = json_string_value(json_object_get(row, "route_prefix")),
            .status = json_string_value(json_object_get(row, "status")),
            .config = text,
            .replicas =
                j->op == OP_SCALE ? n : json_integer_value(json_object_get(row, "replicas"))};
        rc = text ? aos_store_agent_put(st, &a, 0, err) : AOS_ENOMEM;
        free(text);
        if (!rc) {
            char res[128];
            snprintf(res, sizeof(res), "agent:%s", json_string_value(json_object_get(row, "name")));
            json_t *diff =
                json_pack("{s:{s:I, s:I}}", field, "from", (json_int_t)before, "to", (json_int_t)n);
            rc = aos_store_audit_append(st, j->actor,
                                        j->op == OP_RELEASE
                                            ? (n < before ? "agent.rollback" : "agent.release")
                                            : "agent.scale",
                                        res, diff, err);
            json_decref(diff);
        }
        json_decref(row);
        if (!rc && j->op == OP_RELEASE) {
            j->version = n;
            if ((rc = version_config(st, id, n, &j->config, err)) == 0)
                rc = resolve_vars(st, &j->config, err);
        }
        if (!rc)
            rc = aos_store_agent_get(st, id, &j->result, err);
        return rc;
    }
    case OP_CLONE:
        if ((rc = aos_store_agent_get(st, j->id, &row, err)))
            return rc;
        rc = create_row(j, st, j->body, row, err);
        json_decref(row);
        return rc;
    }
    return 0;
}

static void job_done(int status, const aos_err_t *err, void *arg)
{
    ag_job_t *j = arg;
    aos_agents_t *a = j->a;
    if (status && j->op == OP_START && !j->req)
        aos_log_warn("agents", "agent %s not started: %s", j->id, aos_err_msg(err));
    const char *id = json_string_value(json_object_get(j->result, "id"));
    aos_err_t e2 = {0, ""};
    if (!status && j->op == OP_START && !j->phase) {
        /* every runtime secret its env names opens (for its project), or
         * the start fails here, naming it, with nothing stored */
        if (ag_env_check(a, j->config, &e2) == 0) {
            j->phase = 1;
            json_decref(j->result);
            j->result = NULL;
            if (aos_store_submit(a->cfg.store, job_run, job_done, j) == 0)
                return;
            aos_err_set(&e2, AOS_EUNAVAIL, "the store takes no more work");
        }
        status = e2.code;
        err = &e2;
        if (!j->req)
            aos_log_warn("agents", "agent %s not started: %s", j->id, aos_err_msg(err));
    }
    /* what runs follows what is stored */
    if (!status && j->op == OP_START)
        ag_live_start(a, j->result, j->config, j->version, j->run_id, j->actor);
    else if (!status && j->op == OP_STOP)
        ag_live_stop(a, id, j->actor);
    else if (!status && j->op == OP_SCALE)
        ag_live_scale(a, id, json_integer_value(json_object_get(j->result, "replicas")));
    else if (!status && j->op == OP_RELEASE)
        ag_live_release(a, id, j->version, j->config, j->actor);
    else if (!status && j->op == OP_DELETE)
        ag_live_forget(a, j->id);
    else if (!status && j->op == OP_UNREGISTER)
        ag_live_unregister(a, id);
    else if (!status && j->op == OP_REGISTER && ag_live_register(a, j->result, &e2)) {
        status = e2.code;
        err = &e2;
    }
    if (!status && j->op == OP_LOGS && j->req) {
        aos_http_req_t *req = j->req;
        aos_http_on_close(req, NULL, NULL);
        j->req = NULL;
        char source[AOS_REGISTRY_NAME_MAX + 32];
        snprintf(source, sizeof(source), "upstream:agent:%s",
                 json_string_value(json_object_get(j->result, "name")));
        if (!a->cfg.logs)
            aos_http_respond_error(req, AOS_EUNAVAIL, "no log service");
        else if (aos_logs_tail(a->cfg.logs, req, source, j->tail) == AOS_ENOMEM)
            aos_http_respond_error(req, AOS_ENOMEM, "out of memory");
    }
    if (j->req) {
        aos_http_on_close(j->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(j->req, err);
        } else if (j->op == OP_LIST) {
            json_t *arr = json_array();
            size_t i;
            json_t *r;
            json_array_foreach(j->result, i, r)
            {
                json_t *view = agent_public(r, 0);
                ag_live_view(a, json_string_value(json_object_get(r, "id")), view);
                json_array_append_new(arr, view);
            }
            aos_http_respond_json(j->req, 200, json_pack("{s:o}", "agents", arr));
        } else if (j->op == OP_VERSIONS) {
            aos_http_respond_json(j->req, 200, json_pack("{s:O}", "versions", j->result));
        } else if (j->op == OP_DELETE) {
            aos_http_respond_json(j->req, 200, json_pack("{s:s}", "deleted", j->id));
        } else if (j->op == OP_RUNS) {
            aos_http_respond_json(j->req, 200, json_pack("{s:O}", "runs", j->result));
        } else {
            json_t *view = agent_public(j->result, j->latest);
            ag_live_view(a, id, view);
            aos_http_respond_json(j->req, j->op == OP_CREATE || j->op == OP_CLONE ? 201 : 200,
                                  view);
        }
    }
    json_decref(j->body);
    json_decref(j->result);
    json_decref(j->config);
    free(j->stats);
    free(j);
}

static void req_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((ag_job_t *)data)->req = NULL;
}

static int submit_job(aos_agents_t *a, aos_http_req_t *req, op_t op, int with_body,
                      void (*setup)(ag_job_t *j, void *arg), void *arg);

static int submit(aos_agents_t *a, aos_http_req_t *req, op_t op, int with_body)
{
    return submit_job(a, req, op, with_body, NULL, NULL);
}

static int submit_job(aos_agents_t *a, aos_http_req_t *req, op_t op, int with_body,
                      void (*setup)(ag_job_t *j, void *arg), void *arg)
{
    aos_err_t err = {0, ""};
    json_t *body = NULL;
    if (with_body && !(body = aos_http_body_json(req, &err)))
        return aos_http_respond_err(req, &err);
    if (with_body && !json_is_object(body)) {
        json_decref(body);
        return aos_http_respond_error(req, AOS_EINVAL, "the body must be a JSON object");
    }
    const char *id = aos_http_param(req, "id");
    if (id && strlen(id) >= sizeof(((ag_job_t *)0)->id)) {
        json_decref(body);
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no such agent");
    }
    /* naming a runtime secret in env, a header or the token takes operate on it */
    const json_t *bc = json_object_get(body, "config");
    json_t *creds = json_pack("{s:O?}", "auth_token", json_object_get(bc, "auth_token"));
    if (creds && json_is_object(json_object_get(bc, "headers"))) {
        const char *hk;
        json_t *hv;
        json_object_foreach(json_object_get(bc, "headers"), hk, hv)
        {
            char key[160];
            snprintf(key, sizeof(key), "headers.%.128s", hk);
            json_object_set(creds, key, hv);
        }
    }
    if (body && (aos_settings_env_authorize(req, json_object_get(bc, "env"), &err) ||
                 (creds && aos_settings_env_authorize(req, creds, &err)))) {
        json_decref(creds);
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    json_decref(creds);
    ag_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        json_decref(body);
        return AOS_ENOMEM;
    }
    j->a = a;
    j->req = req;
    j->op = op;
    j->body = body;
    if (id)
        snprintf(j->id, sizeof(j->id), "%s", id);
    aos_auth_actor(aos_auth_principal(req), j->actor, sizeof(j->actor));
    if (setup)
        setup(j, arg);
    int rc = aos_store_submit(a->cfg.store, job_run, job_done, j);
    if (rc) {
        json_decref(body);
        free(j);
        return aos_http_respond_error(req, rc, "the store takes no more work");
    }
    aos_http_on_close(req, req_closed, j);
    return 0;
}

static int h_list(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_LIST, 0);
}
static int h_create(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_CREATE, 1);
}
static int h_get(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_GET, 0);
}
static int h_patch(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_PATCH, 1);
}
static int h_versions(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_VERSIONS, 0);
}
static int h_clone(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_CLONE, 1);
}
static int h_release(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_RELEASE, 1);
}
static int h_scale(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_SCALE, 1);
}
static int h_delete(aos_http_req_t *req, void *data)
{
    if (ag_live_running(data, aos_http_param(req, "id")))
        return aos_http_respond_error(req, AOS_ECONFLICT, "the agent is started: stop it first");
    return submit(data, req, OP_DELETE, 0);
}
static int h_start(aos_http_req_t *req, void *data)
{
    aos_agents_t *a = data;
    if (ag_live_running(a, aos_http_param(req, "id")))
        return aos_http_respond_error(req, AOS_ECONFLICT, "the agent is started already");
    if (!a->cfg.auth || !a->cfg.http || !a->exe[0])
        return aos_http_respond_error(req, AOS_EUNAVAIL, "agents cannot be started here");
    return submit(a, req, OP_START, 0);
}
static void stop_setup(ag_job_t *j, void *arg)
{
    snprintf(j->run_id, sizeof(j->run_id), "%s", ag_live_run_id(j->a, j->id));
    j->stats = ag_live_stats(j->a, j->id);
}
static int h_stop(aos_http_req_t *req, void *data)
{
    /* stopping a stopped agent changes nothing: its view */
    if (!ag_live_running(data, aos_http_param(req, "id")))
        return submit(data, req, OP_GET, 0);
    return submit_job(data, req, OP_STOP, 0, stop_setup, NULL);
}
static int h_register(aos_http_req_t *req, void *data)
{
    aos_agents_t *a = data;
    if (!a->cfg.gateway)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "no gateway");
    return submit(a, req, OP_REGISTER, 0);
}
/* The agent leaves the gateway (its tools on /mcp, /agents/<name>/mcp)
 * and stays as it is: running or not, its versions, its runs. */
static int h_unregister(aos_http_req_t *req, void *data)
{
    aos_agents_t *a = data;
    if (!a->cfg.gateway)
        return aos_http_respond_error(req, AOS_EUNAVAIL, "no gateway");
    return submit(a, req, OP_UNREGISTER, 0);
}
static int h_runs(aos_http_req_t *req, void *data)
{
    return submit(data, req, OP_RUNS, 0);
}
static void logs_setup(ag_job_t *j, void *arg)
{
    j->tail = *(unsigned *)arg;
}
static int h_logs(aos_http_req_t *req, void *data)
{
    const char *t = aos_http_query(req, "tail");
    unsigned long n = 100;
    if (t) {
        char *end = NULL;
        n = strtoul(t, &end, 10);
        if (!*t || *end || n > AOS_STORE_LIST_MAX || t[0] < '0' || t[0] > '9')
            return aos_http_respond_error(req, AOS_EINVAL, "tail must be from 0 to %d",
                                          AOS_STORE_LIST_MAX);
    }
    unsigned tail = (unsigned)n;
    return submit_job(data, req, OP_LOGS, 0, logs_setup, &tail);
}
static int h_templates(aos_http_req_t *req, void *data)
{
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "templates", templates()));
}

static const aos_http_route_t routes[] = {
    {"GET", "/agents/templates", AOS_PERM_READ, h_templates, 0, NULL},
    {"GET", "/agents", AOS_PERM_READ, h_list, 0, NULL},
    {"POST", "/agents", AOS_PERM_ADMIN, h_create, 0, NULL},
    {"GET", "/agents/:id", AOS_PERM_READ, h_get, 0, "agent:{id}"},
    {"PATCH", "/agents/:id", AOS_PERM_ADMIN, h_patch, 0, "agent:{id}"},
    {"DELETE", "/agents/:id", AOS_PERM_ADMIN, h_delete, 0, "agent:{id}"},
    {"GET", "/agents/:id/versions", AOS_PERM_READ, h_versions, 0, "agent:{id}"},
    {"POST", "/agents/:id/clone", AOS_PERM_ADMIN, h_clone, 0, "agent:{id}"},
    {"POST", "/agents/:id/release", AOS_PERM_OPERATE, h_release, 0, "agent:{id}"},
    {"POST", "/agents/:id/scale", AOS_PERM_OPERATE, h_scale, 0, "agent:{id}"},
    {"POST", "/agents/:id/start", AOS_PERM_OPERATE, h_start, 0, "agent:{id}"},
    {"POST", "/agents/:id/stop", AOS_PERM_OPERATE, h_stop, 0, "agent:{id}"},
    {"POST", "/agents/:id/register-mcp", AOS_PERM_ADMIN, h_register, 0, "agent:{id}"},
    {"POST", "/agents/:id/unregister-mcp", AOS_PERM_ADMIN, h_unregister, 0, "agent:{id}"},
    {"GET", "/agents/:id/logs", AOS_PERM_READ, h_logs, 0, "agent:{id}"},
    {"GET", "/agents/:id/runs", AOS_PERM_READ, h_runs, 0, "agent:{id}"},
};

int aos_agents_new(aos_agents_t **out, const aos_agents_cfg_t *cfg, aos_err_t *err)
{
    aos_agents_t *a = calloc(1, sizeof(*a));
    if (!a)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    a->cfg = *cfg;
    aos_map_init(&a->live);
    ag_metrics_init(a);
    size_t n = sizeof(a->exe);
    if (uv_exepath(a->exe, &n) != 0)
        a->exe[0] = '\0'; /* agents cannot start; the rest works */
    *out = a;
    return 0;
}

int aos_agents_add_routes(aos_agents_t *a, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), a);
}

typedef struct {
    aos_agents_t *a;
    json_t *rows;
} load_job_t;

static int load_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    load_job_t *j = arg;
    int rc = aos_store_agent_list(st, &j->rows, err);
    return rc ? rc : aos_store_agent_runs_abandon(st, err);
}

/* Starts agent id as aosd (no request): the start of a local agent that
 * ran when aosd stopped. */
static void start_internal(aos_agents_t *a, const char *id)
{
    ag_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->a = a;
    j->op = OP_START;
    snprintf(j->id, sizeof(j->id), "%s", id);
    snprintf(j->actor, sizeof(j->actor), "aosd");
    if (aos_store_submit(a->cfg.store, job_run, job_done, j) < 0)
        free(j);
}

static void load_done(int status, const aos_err_t *err, void *arg)
{
    load_job_t *j = arg;
    if (status)
        aos_log_error("agents", "agents not loaded: %s", aos_err_msg(err));
    /* tokens of agents a previous aosd ran and could not stop (it died):
     * no replica holds them any more */
    size_t stale = j->a->cfg.auth ? aos_auth_token_revoke_minted(j->a->cfg.auth, "aosd") : 0;
    if (stale)
        aos_log_warn("agents", "%zu agent token(s) of a previous start revoked", stale);
    size_t i;
    json_t *r;
    json_array_foreach(j->rows, i, r)
    {
        /* what ran when aosd stopped runs again (its run was closed as
         * aborted); a stopped agent stays stopped */
        const char *st = json_string_value(json_object_get(r, "status"));
        const char *type = json_string_value(json_object_get(r, "type"));
        if (st && strcmp(st, "stopped") != 0 && type &&
            (!strcmp(type, "remote") || (j->a->cfg.auth && j->a->exe[0]))) {
            aos_log_info("agents", "agent '%s' was %s when aosd stopped: starting it",
                         json_string_value(json_object_get(r, "name")), st);
            start_internal(j->a, json_string_value(json_object_get(r, "id")));
        }
        if (!json_is_string(json_object_get(r, "route_prefix")))
            continue;
        aos_err_t e = {0, ""};
        if (ag_live_register(j->a, r, &e))
            aos_log_warn("agents", "agent '%s' not served on the gateway: %s",
                         json_string_value(json_object_get(r, "name")), aos_err_msg(&e));
    }
    json_decref(j->rows);
    free(j);
}

int aos_agents_load(aos_agents_t *a, aos_err_t *err)
{
    load_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    j->a = a;
    if (aos_store_submit(a->cfg.store, load_run, load_done, j) < 0) {
        free(j);
        return aos_err_set(err, AOS_EUNAVAIL, "the store takes no more work");
    }
    return 0;
}

void aos_agents_free(aos_agents_t *a)
{
    if (!a)
        return;
    aos__agents_live_release(a);
    free(a);
}
