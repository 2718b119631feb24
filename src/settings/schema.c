/* schema.c - the one table of system settings: each key's type, range,
 * whether it applies live (its group) or at the next start, and the
 * aos_config_t field and flag behind it; and the pure checks and
 * conversions built on it. */
#include "settings/internal.h"
#include "redact/redact.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CFG(f, t) .cf = (t), .off = offsetof(aos_config_t, f)
#define NOCFG     .cf = CF_NONE, .off = 0
#define KEY(k, kd, lo, hi, grp, cfg, fl, hlp)                                                      \
    {                                                                                              \
        .key = (k), .kind = (kd), .min = (lo), .max = (hi), .group = (grp), cfg, .flag = (fl),     \
        .help = (hlp)                                                                              \
    }

/* key, kind, min, max, live group, config field, flag, help */
const set_key_t settings_keys[] = {
    KEY("llm.base_url", K_URL, 0, 2048, "llm", CFG(llm_base_url, CF_S), "llm-base-url",
        "OpenAI-compatible API base URL (null: no LLM; turning it on takes a restart)"),
    KEY("llm.model", K_STR, 1, 200, "llm", CFG(llm_model, CF_S), "llm-model", "chat model"),
    KEY("llm.embed_model", K_STR, 1, 200, NULL, CFG(llm_embed_model, CF_S), "llm-embed-model",
        "embeddings model for --memory-embed llm (next start: the items are re-embedded then)"),
    KEY("llm.api_key_secret", K_SECRET, 1, 64, "llm", NOCFG, "llm-api-key",
        "name of the runtime secret (scope system) holding the API key"),
    KEY("llm.temperature", K_NUM, -1, 2, "llm", CFG(llm_temperature, CF_D), "llm-temperature",
        "sampling temperature 0..2 (negative: not sent)"),
    KEY("llm.max_tokens", K_UINT, 0, 10000000, "llm", CFG(llm_max_tokens, CF_U), "llm-max-tokens",
        "most tokens of one answer (0: not sent)"),
    KEY("llm.timeout_ms", K_UINT, 1, 86400000, "llm", CFG(llm_timeout_ms, CF_U), "llm-timeout-ms",
        "milliseconds one LLM request may take"),
    KEY("llm.retries", K_UINT, 0, 10, "llm", CFG(llm_retries, CF_U), "llm-retries",
        "retries after a 429, a 5xx or a refused connection"),
    KEY("llm.price_in_cny", K_NUM, 0, 1e6, "llm", CFG(llm_price_in_cny, CF_D), "llm-price-in-cny",
        "CNY per 1,000 input tokens"),
    KEY("llm.price_out_cny", K_NUM, 0, 1e6, "llm", CFG(llm_price_out_cny, CF_D),
        "llm-price-out-cny", "CNY per 1,000 output tokens"),
    KEY("otel.endpoint", K_URL, 0, 2048, NULL, CFG(otlp_endpoint, CF_S), "otlp-endpoint",
        "OTLP/HTTP receiver to export spans to (base URL; /v1/traces is appended)"),
    KEY("otel.protocol", K_STR, 1, 32, NULL, CFG(otlp_protocol, CF_S), "otlp-protocol",
        "encoding of the OTLP export: http/protobuf or http/json"),
    KEY("otel.queue", K_UINT, 1, 1000000, NULL, CFG(otlp_queue, CF_U), "otlp-queue",
        "spans waiting for the OTLP receiver at most; beyond, dropped and counted"),
    KEY("otel.headers", K_HEADERS, 0, 32, NULL, NOCFG, NULL,
        "headers sent to otel.endpoint: {name: text} or {name: {\"secret\": name}}"),
    KEY("otel.sample_ratio", K_NUM, 0, 1, NULL, CFG(trace_sample, CF_D), "trace-sample",
        "share of the traces born at aosd that are recorded"),
    KEY("database.url", K_DB, 1, 4096, NULL, CFG(store, CF_S), "store",
        "sqlite:PATH or a path (PostgreSQL: not in this build)"),
    KEY("gateway.session_idle_s", K_UINT, 1, 86400, NULL, CFG(session_idle_s, CF_U), "session-idle",
        "seconds before an idle MCP session is dropped"),
    KEY("gateway.replay_bytes", K_UINT, 0, 1u << 30, NULL, CFG(mcp_replay_bytes, CF_U),
        "mcp-replay-bytes", "bytes of SSE events kept per MCP session for resumption"),
    KEY("gateway.replay_total", K_UINT, 0, 1ull << 34, NULL, CFG(mcp_replay_total, CF_U),
        "mcp-replay-total", "bytes of SSE events kept for all MCP sessions"),
    KEY("gateway.replay_s", K_UINT, 0, 86400, NULL, CFG(mcp_replay_s, CF_U), "mcp-replay-seconds",
        "seconds an SSE event stays resumable"),
    KEY("gateway.sse_hold_ms", K_UINT, 0, 3600000, NULL, CFG(mcp_sse_hold_ms, CF_U),
        "mcp-sse-hold-ms", "close an unanswered resumable call stream after this long (0: never)"),
    KEY("http.max_body", K_UINT, 1, 1ull << 40, NULL, CFG(max_body, CF_U), "max-body",
        "request body limit in bytes of a route that sets none"),
    KEY("http.max_conns", K_UINT, 1, 1000000, NULL, CFG(http_max_conns, CF_U), "http-max-conns",
        "most connections at once"),
    KEY("http.max_conns_per_ip", K_UINT, 0, 1000000, NULL, CFG(http_max_conns_per_ip, CF_U),
        "http-max-conns-per-ip", "most connections from one address (0: no limit)"),
    KEY("http.head_timeout_s", K_UINT, 1, 3600, NULL, CFG(http_head_timeout_s, CF_U),
        "http-head-timeout", "seconds a new connection has to send its request head"),
    KEY("http.idle_timeout_s", K_UINT, 1, 86400, NULL, CFG(http_idle_timeout_s, CF_U),
        "http-idle-timeout", "seconds a kept-alive or stalled connection lives"),
    KEY("http.body_memory", K_UINT, 1, 1ull << 40, NULL, CFG(http_body_memory, CF_U),
        "http-body-memory", "bytes of request bodies held at once"),
    KEY("orch.max_running", K_UINT, 1, 100000, NULL, CFG(orch_max_running, CF_U),
        "orch-max-running", "tasks running at once"),
    KEY("orch.max_per_project", K_UINT, 0, 100000, NULL, CFG(orch_max_per_project, CF_U),
        "orch-max-per-project", "tasks of one project running at once (0: orch.max_running)"),
    KEY("audit.retention_days", K_UINT, 0, 36500, NULL, CFG(audit_retention_days, CF_U),
        "audit-retention-days", "days an audit row is kept (0: for ever)"),
    KEY("security.two_person_secrets", K_BOOL, 0, 0, "security", NOCFG, NULL,
        "a change of a runtime secret waits for a second Admin or Owner"),
    KEY("security.ip_allowlist", K_CIDRS, 0, AOS_CIDR_LIST_MAX, "security", CFG(ip_allowlist, CF_S),
        "ip-allowlist", "only these addresses (CIDR) may connect; empty: all"),
    KEY("security.redact_patterns", K_STR, 1, 200, "security", CFG(redact_patterns, CF_S),
        "redact-patterns",
        "what logs, events, spans, audit diffs and errors have redacted besides stored secrets: "
        "keys,bearer,url,email,phone,cn_id, all, none, default; +email / -cn_id change the "
        "default"),
};
const size_t settings_nkeys = sizeof(settings_keys) / sizeof(settings_keys[0]);

static const char *const kind_names[] = {"string", "url",    "boolean", "integer", "number",
                                         "cidr[]", "secret", "headers", "database"};

int settings_key_find(const char *key)
{
    for (size_t i = 0; i < settings_nkeys; i++)
        if (!strcmp(settings_keys[i].key, key))
            return (int)i;
    return -1;
}

static int text_ok(const char *s, size_t len)
{
    if (strlen(s) != len)
        return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return 0;
    return 1;
}

static int header_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] >= 'A' && s[i] <= 'Z') && !(s[i] >= 'a' && s[i] <= 'z') &&
            !(s[i] >= '0' && s[i] <= '9') && !strchr("-_.", s[i]))
            return 0;
    return 1;
}

int aos_settings_name_ok(const char *name)
{
    size_t n = name ? strlen(name) : 0;
    if (n < 1 || n > 64)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(name[i] >= 'A' && name[i] <= 'Z') && !(name[i] >= 'a' && name[i] <= 'z') &&
            !(name[i] >= '0' && name[i] <= '9') && !strchr("_.-", name[i]))
            return 0;
    return 1;
}

int settings_key_check(const set_key_t *k, const json_t *v, aos_err_t *err)
{
    if (json_is_null(v))
        return 0;
    const char *key = k->key;
    switch (k->kind) {
    case K_STR:
    case K_URL:
    case K_SECRET:
    case K_DB: {
        if (!json_is_string(v))
            return aos_err_set(err, AOS_EINVAL, "'%s' must be a string or null", key);
        const char *s = json_string_value(v);
        size_t n = json_string_length(v);
        if (!text_ok(s, n))
            return aos_err_set(err, AOS_EINVAL, "'%s' holds a control character", key);
        if (n < (size_t)k->min || n > (size_t)k->max)
            return aos_err_set(err, AOS_EINVAL, "'%s' must be %.0f to %.0f characters long", key,
                               k->min, k->max);
        if (k->kind == K_URL && n && strncmp(s, "http://", 7) && strncmp(s, "https://", 8))
            return aos_err_set(err, AOS_EINVAL, "'%s' must be an http:// or https:// URL", key);
        unsigned bits;
        char bad[64];
        if (!strcmp(key, "security.redact_patterns") && aos_redact_parse_patterns(s, &bits, bad))
            return aos_err_set(err, AOS_EINVAL,
                               "'%s': unknown pattern '%s' (keys, bearer, url, email, phone, "
                               "cn_id, all, none, default; +name or -name)",
                               key, bad);
        if (!strcmp(key, "otel.protocol") && strcmp(s, "http/protobuf") && strcmp(s, "http/json"))
            return aos_err_set(err, AOS_EINVAL, "'%s' must be http/protobuf or http/json", key);
        if (k->kind == K_URL && n && strchr(s, ' '))
            return aos_err_set(err, AOS_EINVAL, "'%s' must be a URL without spaces", key);
        if (k->kind == K_SECRET && !aos_settings_name_ok(s))
            return aos_err_set(err, AOS_EINVAL,
                               "'%s' must name a runtime secret (1 to 64 of A-Z a-z 0-9 _ . -)",
                               key);
        if (k->kind == K_DB) {
            if (!strncmp(s, "postgres://", 11) || !strncmp(s, "postgresql://", 13))
                return aos_err_set(err, AOS_EINVAL,
                                   "'%s': this aosd has no PostgreSQL backend yet; use sqlite:PATH",
                                   key);
            if (strstr(s, "://") && strncmp(s, "sqlite:", 7))
                return aos_err_set(err, AOS_EINVAL, "'%s' must be sqlite:PATH or a path", key);
            if (!strcmp(s, "sqlite:") || !strcmp(s, "sqlite://"))
                return aos_err_set(err, AOS_EINVAL, "'%s': sqlite: needs a path", key);
        }
        return 0;
    }
    case K_BOOL:
        if (!json_is_boolean(v))
            return aos_err_set(err, AOS_EINVAL, "'%s' must be true or false", key);
        return 0;
    case K_UINT:
        if (!json_is_integer(v) || (double)json_integer_value(v) < k->min ||
            (double)json_integer_value(v) > k->max)
            return aos_err_set(err, AOS_EINVAL, "'%s' must be an integer from %.0f to %.0f", key,
                               k->min, k->max);
        return 0;
    case K_NUM: {
        double d = json_number_value(v);
        if (!json_is_number(v) || !isfinite(d) || d < k->min || d > k->max)
            return aos_err_set(err, AOS_EINVAL, "'%s' must be a number from %g to %g", key, k->min,
                               k->max);
        return 0;
    }
    case K_CIDRS: {
        aos_cidr_list_t l;
        int rc = aos_cidr_list_from_json(v, key, &l, err);
        aos_cidr_list_release(&l);
        return rc;
    }
    case K_HEADERS: {
        if (!json_is_object(v) || json_object_size(v) > (size_t)k->max)
            return aos_err_set(err, AOS_EINVAL, "'%s' must be an object of at most %.0f headers",
                               key, k->max);
        const char *name;
        json_t *hv;
        json_object_foreach((json_t *)v, name, hv)
        {
            if (!header_name_ok(name))
                return aos_err_set(err, AOS_EINVAL, "'%s': '%.64s' is not a header name", key,
                                   name);
            if (json_is_string(hv)) {
                if (!text_ok(json_string_value(hv), json_string_length(hv)) ||
                    json_string_length(hv) > 4096)
                    return aos_err_set(err, AOS_EINVAL,
                                       "'%s.%s' must be text of at most 4096 characters without "
                                       "control characters",
                                       key, name);
            } else if (!json_is_object(hv) || json_object_size(hv) != 1 ||
                       !aos_settings_name_ok(json_string_value(json_object_get(hv, "secret")))) {
                return aos_err_set(err, AOS_EINVAL,
                                   "'%s.%s' must be text or {\"secret\": \"<runtime secret>\"}",
                                   key, name);
            }
        }
        return 0;
    }
    }
    return aos_err_set(err, AOS_EINTERNAL, "'%s': unknown kind", key);
}

int aos_settings_validate(const json_t *body, aos_err_t *err)
{
    if (!json_is_object(body))
        return aos_err_set(err, AOS_EINVAL,
                           "the body must be a JSON object {\"<key>\": value, ...}");
    if (json_object_size(body) == 0)
        return aos_err_set(err, AOS_EINVAL, "the body names no setting");
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)body, key, v)
    {
        int i = settings_key_find(key);
        if (i < 0)
            return aos_err_set(err, AOS_EINVAL,
                               "unknown setting '%.64s' (GET /config/system lists them)", key);
        int rc = settings_key_check(&settings_keys[i], v, err);
        if (rc)
            return rc;
    }
    return 0;
}

static void *field(const set_key_t *k, const aos_config_t *cfg)
{
    return (char *)cfg + k->off;
}

json_t *settings_key_from_config(const set_key_t *k, const aos_config_t *cfg)
{
    switch (k->cf) {
    case CF_NONE:
        return NULL;
    case CF_S: {
        const char *s = *(char *const *)field(k, cfg);
        if (k->kind == K_CIDRS) {
            json_t *arr = json_array();
            aos_cidr_list_t l;
            if (s && aos_cidr_list_parse(s, &l, NULL) == 0) {
                /* the entries as written */
                char *copy = strdup(s), *save = NULL;
                for (char *t = copy ? strtok_r(copy, ",", &save) : NULL; t;
                     t = strtok_r(NULL, ",", &save)) {
                    while (*t == ' ' || *t == '\t')
                        t++;
                    size_t n = strlen(t);
                    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
                        t[--n] = '\0';
                    if (n)
                        json_array_append_new(arr, json_string(t));
                }
                free(copy);
                aos_cidr_list_release(&l);
            }
            return arr;
        }
        return s ? json_string(s) : json_null();
    }
    case CF_U:
        return json_integer((json_int_t) * (const unsigned long *)field(k, cfg));
    case CF_D:
        return json_real(*(const double *)field(k, cfg));
    case CF_B:
        return json_boolean(*(const int *)field(k, cfg));
    }
    return json_null();
}

int settings_key_to_config(const set_key_t *k, const json_t *v, aos_config_t *cfg,
                           const aos_config_t *dflt, aos_err_t *err)
{
    if (k->cf == CF_NONE)
        return 0;
    if (!v || json_is_null(v)) {
        if (k->cf == CF_S) {
            char **p = field(k, cfg);
            const char *d = *(char *const *)field(k, dflt);
            free(*p);
            *p = d ? strdup(d) : NULL;
        } else {
            memcpy(field(k, cfg), field(k, dflt),
                   k->cf == CF_U   ? sizeof(unsigned long)
                   : k->cf == CF_D ? sizeof(double)
                                   : sizeof(int));
        }
        return 0;
    }
    switch (k->cf) {
    case CF_S: {
        char **p = field(k, cfg);
        char *text = NULL;
        if (k->kind == K_CIDRS) {
            size_t cap = 1, i, at = 0;
            json_t *e;
            json_array_foreach(v, i, e) cap += json_string_length(e) + 1;
            text = malloc(cap);
            json_array_foreach(v, i, e)
            {
                if (!text)
                    break;
                if (i)
                    text[at++] = ',';
                memcpy(text + at, json_string_value(e), json_string_length(e));
                at += json_string_length(e);
            }
            if (text)
                text[at] = '\0';
        } else {
            text = strdup(json_string_value(v));
        }
        if (!text)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        free(*p);
        *p = text;
        return 0;
    }
    case CF_U:
        *(unsigned long *)field(k, cfg) = (unsigned long)json_integer_value(v);
        return 0;
    case CF_D:
        *(double *)field(k, cfg) = json_number_value(v);
        return 0;
    case CF_B:
        *(int *)field(k, cfg) = json_is_true(v);
        return 0;
    case CF_NONE:
        break;
    }
    return 0;
}

json_t *settings_key_default(const set_key_t *k)
{
    switch (k->kind) {
    case K_BOOL:
        return json_false();
    case K_HEADERS:
        return json_object();
    case K_CIDRS:
        return json_array();
    default:
        return json_null();
    }
}

json_t *settings_schema_json(void)
{
    json_t *out = json_array();
    for (size_t i = 0; i < settings_nkeys; i++) {
        const set_key_t *k = &settings_keys[i];
        json_t *e = json_pack("{s:s, s:s, s:b, s:s}", "key", k->key, "type", kind_names[k->kind],
                              "live", k->group != NULL, "help", k->help);
        if (k->kind == K_UINT || k->kind == K_NUM) {
            json_object_set_new(e, "min", json_real(k->min));
            json_object_set_new(e, "max", json_real(k->max));
        }
        if (k->flag)
            json_object_set_new(e, "flag", json_sprintf("--%s", k->flag));
        json_array_append_new(out, e);
    }
    return out;
}
