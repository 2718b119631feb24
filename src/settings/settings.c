/* settings.c - start-up (pins, stored values, the secrets in memory), the
 * IP allowlist gate, and GET/PUT /config/system; see settings.h.
 *
 * A PUT is checked whole on the loop (schema, pins, secret references,
 * the caller's own address), then the new stored object and the audit row
 * are written by one store job in one transaction; its done callback
 * applies what is live and answers. Only one PUT runs at a time (409
 * otherwise), so that two never compute their diff from the same state. */
#include "settings/internal.h"

#include "auth/auth.h"
#include "file/file.h"
#include "log/log.h"
#include "redact/redact.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SYSTEM_KEY "system"

void settings_random_id(char *out, size_t cap, const char *prefix)
{
    unsigned char b[8];
    char hex[17];
    randombytes_buf(b, sizeof(b));
    sodium_bin2hex(hex, sizeof(hex), b, sizeof(b));
    snprintf(out, cap, "%s%s", prefix, hex);
}

void settings_actor(aos_http_req_t *req, char *out, size_t cap)
{
    aos_auth_actor(aos_auth_principal(req), out, cap);
}

int settings_only_fields(const json_t *obj, const char *const *known, const char *what,
                         aos_err_t *err)
{
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)obj, k, v)
    {
        int ok = 0;
        for (const char *const *f = known; *f && !ok; f++)
            ok = !strcmp(*f, k);
        if (!ok)
            return aos_err_set(err, AOS_EINVAL, "unknown field '%.64s' in %s", k, what);
    }
    return 0;
}

size_t settings_ad(char *buf, size_t cap, const char *name, const char *scope)
{
    int n = snprintf(buf, cap, "aos.runtime_secret%c%s%c%s", 0, name, 0, scope);
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

size_t settings_change_ad(char *buf, size_t cap, const char *id, const char *name,
                          const char *scope)
{
    int n =
        snprintf(buf, cap, "aos.secret_change%c%s%c%s%c%s", 0, id, 0, name, 0, scope ? scope : "");
    return n < 0 ? 0 : (size_t)n < cap ? (size_t)n : cap - 1;
}

/* The value a key has (stored or running) as the API shows it. */
static json_t *value_of(const aos_settings_t *s, size_t i)
{
    const char *key = settings_keys[i].key;
    if (s->pinned[i])
        return json_object_get(s->effective, key);
    json_t *v = json_object_get(s->stored, key);
    return v ? v : json_object_get(s->effective, key);
}

/* The security policy from the effective values and the flag. */
static void apply_security(aos_settings_t *s)
{
    s->two_person = json_is_true(json_object_get(s->effective, "security.two_person_secrets"));
    aos_cidr_list_t l = {NULL, 0};
    if (s->pinned[settings_key_find("security.ip_allowlist")])
        aos_cidr_list_parse(s->cfg.config->ip_allowlist, &l, NULL); /* checked in main() */
    else
        aos_cidr_list_from_json(json_object_get(s->effective, "security.ip_allowlist"), NULL, &l,
                                NULL);
    aos_cidr_list_release(&s->allow);
    s->allow = l;
    /* the redaction patterns: the running configuration holds the flag's,
     * the stored or the changed value (checked before it got there) */
    unsigned bits;
    char bad[64];
    if (s->cfg.config->redact_patterns &&
        aos_redact_parse_patterns(s->cfg.config->redact_patterns, &bits, bad) == 0)
        aos_redact_set_patterns(aos_redact_global(), bits);
}

int aos_settings_gate(aos_http_req_t *req, const char *peer, aos_err_t *err, void *data)
{
    aos_settings_t *s = data;
    (void)req;
    if (!s->allow.n || aos_cidr_list_match(&s->allow, peer))
        return 0;
    return aos_err_set(err, AOS_EIPDENIED, "address %.64s is not in the IP allowlist",
                       peer && *peer ? peer : "(unknown)");
}

static int load_secrets(aos_settings_t *s, aos_err_t *err)
{
    json_t *secrets = NULL, *changes = NULL;
    int rc = aos_store_secret_list(s->cfg.store, &secrets, err);
    if (!rc)
        rc = aos_store_secret_change_list(s->cfg.store, &changes, err);
    if (rc) {
        json_decref(secrets);
        return rc;
    }
    settings_load_rows(s, secrets, changes);
    return 0;
}

void settings_load_rows(aos_settings_t *s, json_t *secrets, json_t *changes)
{
    json_t *m = json_object(), *c = json_object();
    size_t i;
    json_t *row;
    json_array_foreach(secrets, i, row)
    {
        json_t *copy = json_deep_copy(row);
        json_object_del(copy, "name");
        json_object_set_new(m, json_string_value(json_object_get(row, "name")), copy);
    }
    json_array_foreach(changes, i, row)
    {
        json_t *copy = json_deep_copy(row);
        json_object_del(copy, "id");
        json_object_set_new(c, json_string_value(json_object_get(row, "id")), copy);
    }
    json_decref(secrets);
    json_decref(changes);
    json_decref(s->secrets);
    json_decref(s->changes);
    s->secrets = m;
    s->changes = c;
}

/* Opens the stored value of secret name (its row in memory). */
char *settings_open_row(aos_settings_t *s, const char *name, const json_t *row, size_t *len)
{
    char ad[160];
    const char *scope = json_string_value(json_object_get(row, "scope"));
    size_t n = settings_ad(ad, sizeof(ad), name, scope ? scope : "");
    return aos_secret_open_ad(s->cfg.secrets, json_string_value(json_object_get(row, "sealed")), ad,
                              n, len);
}

char *aos_settings_secret_open(aos_settings_t *s, const char *name, const char *project_id,
                               size_t *len, aos_err_t *err)
{
    const json_t *row = name ? json_object_get(s->secrets, name) : NULL;
    const char *scope = json_string_value(json_object_get(row, "scope"));
    char want[160];
    snprintf(want, sizeof(want), "project:%s", project_id ? project_id : "");
    if (!row || !scope || (strcmp(scope, "system") && (!project_id || strcmp(scope, want)))) {
        aos_err_set(err, AOS_ENOTFOUND, "runtime secret '%.64s' not found%s", name ? name : "",
                    row ? " in the task's scope" : "");
        return NULL;
    }
    char *plain = settings_open_row(s, name, row, len);
    if (!plain) {
        aos_err_set(err, AOS_EINTERNAL,
                    "runtime secret '%.64s' does not open (sealed for another row or key)", name);
        return NULL;
    }
    return plain; /* the redactor knows it since it was loaded or set */
}

char *aos_settings_llm_key(aos_settings_t *s)
{
    const char *name = json_string_value(json_object_get(s->effective, "llm.api_key_secret"));
    if (!name)
        return NULL;
    aos_err_t err = {0, ""};
    char *plain = aos_settings_secret_open(s, name, NULL, NULL, &err);
    if (!plain)
        aos_log_warn("settings", "llm.api_key_secret: %s", aos_err_msg(&err));
    return plain;
}

char **aos_settings_otel_headers(aos_settings_t *s)
{
    json_t *h = json_object_get(s->effective, "otel.headers");
    size_t n = json_object_size(h), i = 0;
    if (!n)
        return NULL;
    char **out = calloc(n + 1, sizeof(*out));
    if (!out)
        return NULL;
    const char *name;
    json_t *v;
    json_object_foreach(h, name, v)
    {
        const char *text = json_string_value(v);
        char *plain = NULL;
        size_t len = text ? strlen(text) : 0;
        if (!text) {
            aos_err_t err = {0, ""};
            const char *secret = json_string_value(json_object_get(v, "secret"));
            plain = secret ? aos_settings_secret_open(s, secret, NULL, &len, &err) : NULL;
            if (!plain) {
                aos_log_warn("settings", "otel.headers.%s: %s", name, aos_err_msg(&err));
                continue;
            }
            text = plain;
            for (size_t k = 0; k < len; k++)
                if ((unsigned char)plain[k] < 0x20 || plain[k] == 0x7f) {
                    aos_log_warn("settings",
                                 "otel.headers.%s: the secret holds a control "
                                 "character; left out",
                                 name);
                    aos_secret_wipe(plain);
                    plain = NULL;
                    break;
                }
            if (!plain)
                continue;
        }
        size_t cap = strlen(name) + len + 3;
        if ((out[i] = malloc(cap)))
            snprintf(out[i++], cap, "%s: %.*s", name, (int)len, text);
        if (plain)
            aos_secret_wipe(plain);
    }
    return out;
}

void aos_settings_headers_free(char **headers)
{
    for (size_t i = 0; headers && headers[i]; i++) {
        sodium_memzero(headers[i], strlen(headers[i]));
        free(headers[i]);
    }
    free(headers);
}

int aos_settings_env_check(const json_t *env, aos_err_t *err)
{
    if (!json_is_object(env) || json_object_size(env) > 64)
        return aos_err_set(err, AOS_EINVAL,
                           "'env' must be an object of at most 64 {\"NAME\": {\"secret\": "
                           "\"<runtime secret>\"}}");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        size_t n = strlen(k);
        int ok = n >= 1 && n <= 128 && !(k[0] >= '0' && k[0] <= '9');
        for (size_t i = 0; i < n && ok; i++)
            ok = (k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= 'a' && k[i] <= 'z') ||
                 (k[i] >= '0' && k[i] <= '9') || k[i] == '_';
        if (!ok)
            return aos_err_set(err, AOS_EINVAL,
                               "'env': '%.64s' is not a variable name ([A-Za-z_][A-Za-z0-9_]*)", k);
        /* {"secret": S}, {"var": V} (a variable of the task's project), or
         * both once the variable is resolved to its secret */
        const char *sec, *var;
        if (aos_settings_env_ref(v, &sec, &var) != 1)
            return aos_err_set(err, AOS_EINVAL,
                               "'env.%s' must be {\"secret\": \"<runtime secret name>\"} or "
                               "{\"var\": \"<project variable>\"}",
                               k);
    }
    return 0;
}

int aos_settings_env_ref(const json_t *v, const char **secret, const char **var)
{
    *secret = *var = NULL;
    if (!json_is_object(v))
        return 0;
    const json_t *sec = json_object_get(v, "secret"), *vr = json_object_get(v, "var");
    size_t want = (sec != NULL) + (vr != NULL);
    if (!want || json_object_size(v) != want ||
        (sec && !aos_settings_name_ok(json_string_value(sec))) ||
        (vr && !aos_settings_name_ok(json_string_value(vr))))
        return AOS_EINVAL;
    *secret = json_string_value(sec);
    *var = json_string_value(vr);
    return 1;
}

int aos_settings_env_resolve(json_t *env, const json_t *vars, const char *project, aos_err_t *err)
{
    const char *k;
    json_t *ent;
    json_object_foreach(env, k, ent)
    {
        const char *name = json_string_value(json_object_get(ent, "var"));
        if (!name || json_object_get(ent, "secret"))
            continue;
        const char *secret = NULL;
        size_t i;
        json_t *row;
        json_array_foreach(vars, i, row)
        {
            const char *ref = json_string_value(json_object_get(row, "secret_ref"));
            const char *rn = json_string_value(json_object_get(row, "name"));
            if (!rn || strcmp(rn, name) != 0 || !ref)
                continue;
            const char *scope = json_string_value(json_object_get(row, "scope"));
            if (!secret || (scope && !strcmp(scope, "task")))
                secret = ref;
        }
        /* (not "env.NAME: ...": a name such as API_KEY before a colon reads
         * as a secret's assignment to the redactor) */
        if (!secret)
            return aos_err_set(
                err, AOS_EINVAL,
                "project '%.128s' has no variable '%.128s' with a secret (in env.%.64s)",
                project ? project : "", name, k);
        json_object_set_new(ent, "secret", json_string(secret));
    }
    return 0;
}

char *aos_settings_env_value(const char *k, const json_t *v, aos_secret_box_t *box,
                             aos_settings_env_open_fn open, void *data, const char *project_id,
                             size_t *len, aos_err_t *err)
{
    /* the entry's name last: "NAME: ..." with a name such as API_KEY reads
     * as a secret's assignment to the redactor */
    const char *secret, *var;
    int ref = aos_settings_env_ref(v, &secret, &var);
    *len = 0;
    if (ref == 0) {
        char *plain = json_is_string(v) ? aos_secret_open(box, json_string_value(v), len) : NULL;
        if (!plain)
            aos_err_set(err, AOS_EINTERNAL, "a sealed value does not open (in env.%.64s)", k);
        return plain;
    }
    if (ref < 0 || !secret) {
        aos_err_set(err, AOS_EINVAL, "%s (in env.%.64s)",
                    ref < 0 ? "not a value or a reference" : "a project variable not resolved", k);
        return NULL;
    }
    if (!open) {
        aos_err_set(err, AOS_EUNAVAIL, "runtime secret '%.64s': no secret store (in env.%.64s)",
                    secret, k);
        return NULL;
    }
    aos_err_t e = {0, ""};
    char *plain = open(secret, project_id, len, &e, data);
    if (plain)
        return plain;
    if (e.code)
        aos_err_set(err, e.code, "%s (in env.%.64s)", aos_err_msg(&e), k);
    else
        aos_err_set(err, AOS_EINTERNAL, "runtime secret '%.64s' does not open (in env.%.64s)",
                    secret, k);
    return NULL;
}

int aos_settings_env_authorize(const aos_http_req_t *req, const json_t *env, aos_err_t *err)
{
    const char *k;
    json_t *v;
    char res[96];
    json_object_foreach((json_t *)env, k, v)
    {
        const char *name = json_string_value(json_object_get(v, "secret"));
        if (!name)
            continue; /* a value, or malformed: the entry's own check says so */
        snprintf(res, sizeof(res), "secret:%.64s", name);
        if (aos_auth_req_check(req, AOS_PERM_OPERATE, res))
            return aos_err_set(err, AOS_EFORBIDDEN,
                               "this token may not use runtime secret '%.64s' (in env.%.64s)", name,
                               k);
    }
    return 0;
}

char *aos_settings_stored_database(aos_store_t *st)
{
    json_t *v = NULL;
    aos_err_t err = {0, ""};
    if (aos_store_setting_get(st, SYSTEM_KEY, &v, &err))
        return NULL;
    const char *url = json_string_value(json_object_get(v, "database.url"));
    char *out = url && *url ? strdup(url) : NULL;
    json_decref(v);
    return out;
}

/* An interrupted rotation left master.key.next: it is the key when it
 * opens what the store holds and the current key does not. */
static void recover_rotation(aos_settings_t *s)
{
    char path[4200], next[4220];
    snprintf(path, sizeof(path), "%s/%s", s->cfg.data_dir, AOS_SECRET_KEY_FILE);
    snprintf(next, sizeof(next), "%s.next", path);
    if (access(next, F_OK) != 0)
        return;
    aos_secret_box_t *nb = NULL;
    aos_err_t err = {0, ""};
    FILE *f = fopen(next, "r");
    char key[128] = "";
    if (f) {
        if (!fgets(key, sizeof(key), f))
            key[0] = '\0';
        fclose(f);
    }
    int use_next = 0;
    if (key[0] && aos_secret_box_open(&nb, NULL, key, &err) == 0) {
        const char *name;
        json_t *row;
        json_object_foreach(s->secrets, name, row)
        {
            char ad[160];
            const char *scope = json_string_value(json_object_get(row, "scope"));
            size_t n = settings_ad(ad, sizeof(ad), name, scope ? scope : "");
            const char *sealed = json_string_value(json_object_get(row, "sealed"));
            char *a = aos_secret_open_ad(s->cfg.secrets, sealed, ad, n, NULL);
            char *b = a ? NULL : aos_secret_open_ad(nb, sealed, ad, n, NULL);
            use_next = b != NULL;
            aos_secret_wipe(a);
            aos_secret_wipe(b);
            break; /* the rotation resealed all or none */
        }
    }
    sodium_memzero(key, sizeof(key));
    if (use_next && aos_file_rename(next, path, NULL) == 0) {
        aos_secret_box_swap(s->cfg.secrets, nb);
        nb = NULL;
        aos_log_warn("settings", "finished an interrupted master-key rotation");
    } else {
        unlink(next);
        aos_log_warn("settings", "discarded the key of an interrupted master-key rotation");
    }
    aos_secret_box_free(nb);
}

int aos_settings_new(aos_settings_t **out, const aos_settings_cfg_t *cfg, aos_err_t *err)
{
    *out = NULL;
    aos_settings_t *s = calloc(1, sizeof(*s));
    if (!s || !(s->pinned = calloc(settings_nkeys, 1)))
        goto nomem;
    s->cfg = *cfg;
    aos_config_init(&s->defaults);
    s->stored = json_object();
    s->effective = json_object();
    s->restart = json_object();
    s->secrets = json_object();
    s->changes = json_object();
    /* pinned: set by a flag, an env var or the config file */
    for (size_t i = 0; i < settings_nkeys; i++) {
        const set_key_t *k = &settings_keys[i];
        if (k->cf == CF_NONE) {
            s->pinned[i] = !strcmp(k->key, "llm.api_key_secret") && cfg->config->llm_api_key;
            continue;
        }
        json_t *a = settings_key_from_config(k, cfg->config),
               *b = settings_key_from_config(k, &s->defaults);
        s->pinned[i] = !json_equal(a, b);
        json_decref(a);
        json_decref(b);
    }
    json_t *stored = NULL;
    aos_err_t e2 = {0, ""};
    int rc = aos_store_setting_get(cfg->store, SYSTEM_KEY, &stored, &e2);
    if (rc && rc != AOS_ENOTFOUND) {
        *err = e2;
        aos_settings_free(s);
        return rc;
    }
    const char *key;
    json_t *v;
    json_object_foreach(stored, key, v)
    {
        int i = settings_key_find(key);
        if (i < 0 || settings_key_check(&settings_keys[i], v, &e2)) {
            aos_log_warn("settings", "stored setting '%.64s' ignored: %s", key,
                         i < 0 ? "no longer a setting" : aos_err_msg(&e2));
            continue;
        }
        json_object_set(s->stored, key, v);
    }
    json_decref(stored);
    for (size_t i = 0; i < settings_nkeys; i++) {
        const set_key_t *k = &settings_keys[i];
        json_t *sv = json_object_get(s->stored, k->key);
        if (sv && !s->pinned[i] &&
            (rc = settings_key_to_config(k, sv, cfg->config, &s->defaults, err))) {
            aos_settings_free(s);
            return rc;
        }
        json_t *eff = settings_key_from_config(k, cfg->config);
        if (!eff)
            eff = sv && !s->pinned[i] ? json_incref(sv) : settings_key_default(k);
        json_object_set_new(s->effective, k->key, eff);
    }
    if ((rc = load_secrets(s, err))) {
        aos_settings_free(s);
        return rc;
    }
    recover_rotation(s);
    apply_security(s);
    if (s->allow.n)
        aos_log_info("settings", "IP allowlist: %zu range(s)%s", s->allow.n,
                     s->pinned[settings_key_find("security.ip_allowlist")] ? " from --ip-allowlist"
                                                                           : "");
    /* the redactor learns every value before anything could print one */
    if (cfg->on_secret) {
        const char *name;
        json_t *row;
        json_object_foreach(s->secrets, name, row)
        {
            char *plain = settings_open_row(s, name, row, NULL);
            if (plain)
                cfg->on_secret(plain, 1, cfg->data);
            else
                aos_log_warn("settings", "runtime secret '%s' does not open", name);
            aos_secret_wipe(plain);
        }
    }
    *out = s;
    return 0;
nomem:
    if (s)
        free(s->pinned);
    free(s);
    return aos_err_set(err, AOS_ENOMEM, NULL);
}

void aos_settings_free(aos_settings_t *s)
{
    if (!s)
        return;
    aos_config_release(&s->defaults);
    free(s->pinned);
    json_decref(s->stored);
    json_decref(s->effective);
    json_decref(s->restart);
    json_decref(s->secrets);
    json_decref(s->changes);
    aos_cidr_list_release(&s->allow);
    free(s);
}

/* ---- GET/PUT /config/system ---------------------------------------------- */

static int route_system_get(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    json_t *values = json_object(), *sources = json_object(), *restart = json_array();
    for (size_t i = 0; i < settings_nkeys; i++) {
        const char *key = settings_keys[i].key;
        json_object_set(values, key, value_of(s, i));
        json_object_set_new(sources, key,
                            json_string(s->pinned[i]                      ? "flag"
                                        : json_object_get(s->stored, key) ? "stored"
                                                                          : "default"));
        if (json_object_get(s->restart, key))
            json_array_append_new(restart, json_string(key));
    }
    return aos_http_respond_json(req, 200,
                                 json_pack("{s:o, s:o, s:o, s:o}", "settings", values, "sources",
                                           sources, "restart_pending", restart, "schema",
                                           settings_schema_json()));
}

struct sys_job {
    aos_settings_t *s;
    aos_http_req_t *req;
    char actor[64];
    json_t *stored; /* the new stored object */
    json_t *diff;   /* {key: {from, to}} */
};

static void sys_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct sys_job *)data)->req = NULL;
}

static int sys_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct sys_job *j = arg;
    int rc = aos_store_setting_put(st, SYSTEM_KEY, j->stored, err);
    if (!rc)
        rc = aos_store_audit_append(st, j->actor, "settings.system.update", "settings:system",
                                    j->diff, err);
    return rc;
}

static int sys_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    return aos_store_tx(st, sys_tx, arg, err);
}

/* Which keys of diff wait for a restart: those of no live group, and those
 * of a group the owner cannot apply now. */
static json_t *restart_keys(aos_settings_t *s, const json_t *diff, int dry_run, int *llm_live)
{
    json_t *out = json_array();
    int llm = -1;
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)diff, key, v)
    {
        const set_key_t *k = &settings_keys[settings_key_find(key)];
        int live = k->group && !strcmp(k->group, "security");
        if (k->group && !strcmp(k->group, "llm")) {
            if (llm < 0)
                llm = s->cfg.apply && s->cfg.apply("llm", 1, s->cfg.data) == 0;
            live = llm;
            /* turning the LLM off, like on, takes a restart */
            const json_t *to = json_object_get(v, "to");
            if (!strcmp(key, "llm.base_url") && (!json_is_string(to) || !json_string_length(to)))
                live = 0;
        }
        if (!live)
            json_array_append_new(out, json_string(key));
    }
    (void)dry_run;
    *llm_live = llm > 0;
    return out;
}

static void sys_done(int status, const aos_err_t *err, void *arg)
{
    struct sys_job *j = arg;
    aos_settings_t *s = j->s;
    s->busy = 0;
    if (j->req)
        aos_http_on_close(j->req, NULL, NULL);
    if (status) {
        aos_log_error("settings", "%s", aos_err_msg(err));
        if (j->req)
            aos_http_respond_err(j->req, err);
        goto out;
    }
    json_decref(s->stored);
    s->stored = json_incref(j->stored);
    int llm_live = 0;
    json_t *restart = restart_keys(s, j->diff, 0, &llm_live);
    const char *key;
    json_t *v;
    json_object_foreach(j->diff, key, v)
    {
        int i = settings_key_find(key);
        const set_key_t *k = &settings_keys[i];
        json_t *to = json_object_get(v, "to");
        int waits = 0;
        size_t x;
        json_t *r;
        json_array_foreach(restart, x, r) waits |= !strcmp(json_string_value(r), key);
        if (waits) {
            json_object_set_new(s->restart, key, json_true());
            continue;
        }
        json_object_del(s->restart, key);
        json_t *eff = json_is_null(to) ? settings_key_from_config(k, &s->defaults) : NULL;
        if (!eff)
            eff = json_is_null(to) ? settings_key_default(k) : json_incref(to);
        json_object_set_new(s->effective, key, eff);
        aos_err_t e = {0, ""};
        settings_key_to_config(k, to, s->cfg.config, &s->defaults, &e);
    }
    apply_security(s);
    if (llm_live && s->cfg.apply && s->cfg.apply("llm", 0, s->cfg.data))
        aos_log_warn("settings", "the LLM settings apply at the next start");
    aos_log_info("settings", "system settings changed by %s (%zu key(s), %zu at the next start)",
                 j->actor, json_object_size(j->diff), json_array_size(restart));
    if (j->req)
        aos_http_respond_json(j->req, 200,
                              json_pack("{s:b, s:O, s:o}", "dry_run", 0, "diff", j->diff,
                                        "restart_required", restart));
    else
        json_decref(restart);
out:
    json_decref(j->stored);
    json_decref(j->diff);
    free(j);
}

static int route_system_put(aos_http_req_t *req, void *data)
{
    aos_settings_t *s = data;
    aos_err_t err = {0, ""};
    const char *dr = aos_http_query(req, "dry_run");
    int dry_run = dr && (!strcmp(dr, "1") || !strcmp(dr, "true"));
    if (dr && !dry_run && strcmp(dr, "0") && strcmp(dr, "false"))
        return aos_http_respond_error(req, AOS_EINVAL, "'dry_run' must be 1 or 0");
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    int rc = aos_settings_validate(body, &err);
    json_t *stored = NULL, *diff = NULL;
    const char *key;
    json_t *v;
    if (!rc)
        json_object_foreach(body, key, v)
        {
            int i = settings_key_find(key);
            const set_key_t *k = &settings_keys[i];
            if (s->pinned[i]) {
                rc = aos_err_set(&err, AOS_ECONFLICT,
                                 "'%s' is set by --%s (or its AOS_* variable or the config file), "
                                 "which wins over stored settings; remove it there to manage it "
                                 "here",
                                 key, k->flag);
                break;
            }
            if (k->kind == K_SECRET && json_is_string(v)) {
                const json_t *row = json_object_get(s->secrets, json_string_value(v));
                const char *scope = json_string_value(json_object_get(row, "scope"));
                if (!row || !scope || strcmp(scope, "system")) {
                    rc = aos_err_set(&err, AOS_EINVAL,
                                     "'%s': no runtime secret '%.64s' of scope system", key,
                                     json_string_value(v));
                    break;
                }
            }
            if (k->kind == K_CIDRS && json_array_size(v)) {
                aos_cidr_list_t l;
                aos_cidr_list_from_json(v, key, &l, NULL);
                int in = aos_cidr_list_match(&l, aos_http_peer(req));
                aos_cidr_list_release(&l);
                if (!in) {
                    rc = aos_err_set(&err, AOS_ECONFLICT,
                                     "'%s' would lock out your own address %.64s; include it", key,
                                     aos_http_peer(req));
                    break;
                }
            }
        }
    if (!rc && json_is_string(json_object_get(body, "llm.base_url")) &&
        json_string_length(json_object_get(body, "llm.base_url")) &&
        json_is_null(value_of(s, (size_t)settings_key_find("llm.model"))) &&
        !json_is_string(json_object_get(body, "llm.model")))
        rc = aos_err_set(&err, AOS_EINVAL, "'llm.model' is required with 'llm.base_url'");
    if (!rc && s->busy)
        rc = aos_err_set(&err, AOS_ECONFLICT, "another change of the settings is being saved");
    if (rc) {
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    stored = json_deep_copy(s->stored);
    diff = json_object();
    json_object_foreach(body, key, v)
    {
        int i = settings_key_find(key);
        json_t *from = value_of(s, (size_t)i);
        json_t *to = v;
        if (json_is_null(v)) {
            json_object_del(stored, key);
            json_t *d = settings_key_from_config(&settings_keys[i], &s->defaults);
            to = d ? d : settings_key_default(&settings_keys[i]);
        } else {
            json_object_set(stored, key, v);
            json_incref(to);
        }
        if (!json_equal(from, to))
            json_object_set_new(diff, key, json_pack("{s:O, s:O}", "from", from, "to", to));
        json_decref(to);
    }
    json_decref(body);
    if (dry_run || json_object_size(diff) == 0) {
        int llm_live = 0;
        json_t *restart = restart_keys(s, diff, 1, &llm_live);
        json_decref(stored);
        return aos_http_respond_json(req, 200,
                                     json_pack("{s:b, s:o, s:o}", "dry_run", dry_run, "diff", diff,
                                               "restart_required", restart));
    }
    struct sys_job *j = calloc(1, sizeof(*j));
    if (!j) {
        json_decref(stored);
        json_decref(diff);
        return AOS_ENOMEM;
    }
    j->s = s;
    j->req = req;
    j->stored = stored;
    j->diff = diff;
    settings_actor(req, j->actor, sizeof(j->actor));
    aos_http_on_close(req, sys_closed, j);
    s->busy = 1;
    if ((rc = aos_store_submit(s->cfg.store, sys_run, sys_done, j))) {
        s->busy = 0;
        aos_http_on_close(req, NULL, NULL);
        json_decref(stored);
        json_decref(diff);
        free(j);
        return aos_http_respond_error(req, rc, "unable to save the settings");
    }
    return 0;
}

static const aos_http_route_t system_routes[] = {
    {"GET", "/config/system", AOS_PERM_READ, route_system_get, 0, NULL},
    {"PUT", "/config/system", AOS_PERM_ADMIN, route_system_put, 256 << 10, NULL},
};

int aos_settings_add_routes(aos_settings_t *s, aos_http_t *http)
{
    s->http = http;
    int rc = aos_http_add_routes(http, system_routes,
                                 sizeof(system_routes) / sizeof(system_routes[0]), s);
    if (!rc)
        rc = settings_add_secret_routes(s, http);
    return rc;
}
