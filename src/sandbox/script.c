/* script.c - what a sandbox script is: validation of a client's script
 * (unknown fields refused), its caps with their bounds and defaults, and
 * its public form (env values never leave aosd: only their names). */
#include "sandbox/internal.h"
#include "cron/cron.h"
#include "settings/settings.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SB_MAX_FILES      64
#define SB_MAX_FILE_BYTES (1024u * 1024) /* all files together */
#define SB_MAX_ENV        64
#define SB_MAX_VALUE      (32u * 1024)

/* caps: XX(field, min, max, default, help) - integers */
#define SB_CAPS_MAP(XX)                                                                            \
    XX(timeout_ms, 100, 3600000, 30000, "wall-clock limit of a run")                               \
    XX(cpu_s, 1, 3600, 10, "CPU seconds (RLIMIT_CPU)")                                             \
    XX(memory_mb, 16, 65536, 512, "resident memory in MiB; address space 4x (RLIMIT_AS)")          \
    XX(nproc, 1, 4096, 64, "processes (RLIMIT_NPROC)")                                             \
    XX(nofile, 16, 65536, 256, "open files (RLIMIT_NOFILE)")                                       \
    XX(fsize_mb, 1, 65536, 64, "largest file written, MiB (RLIMIT_FSIZE)")                         \
    XX(output_kb, 1, 1024, 64, "stdout and stderr kept in the run record, KiB each")

int sb_path_ok(const char *path)
{
    size_t n = strlen(path);
    if (n == 0 || n > 255 || path[0] == '/' || path[n - 1] == '/')
        return 0;
    const char *seg = path;
    for (const char *p = path;; p++) {
        if (*p == '/' || *p == '\0') {
            size_t len = (size_t)(p - seg);
            if (len == 0 || (len == 1 && seg[0] == '.') ||
                (len == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (*p == '\0')
                return 1;
            seg = p + 1;
            continue;
        }
        unsigned char c = (unsigned char)*p;
        if (!(c == '.' || c == '_' || c == '-' || (c >= 'a' && c <= 'z') ||
              (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return 0;
    }
}

static int env_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 128 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    /* the sandbox sets these itself */
    static const char *const own[] = {"PATH", "HOME", "TMPDIR", "LANG", NULL};
    for (size_t i = 0; own[i]; i++)
        if (!strcmp(s, own[i]))
            return 0;
    return 1;
}

int sb_caps_parse(const json_t *caps, sb_caps_t *c, aos_err_t *err)
{
    memset(c, 0, sizeof(*c));
    if (caps && !json_is_null(caps) && !json_is_object(caps))
        return aos_err_set(err, AOS_EINVAL, "caps must be an object");
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)caps, k, v)
    {
        int known = !strcmp(k, "network");
#define XX(f, lo, hi, def, help) known |= !strcmp(k, #f);
        SB_CAPS_MAP(XX)
#undef XX
        if (!known)
            return aos_err_set(err, AOS_EINVAL, "caps: unknown field '%.64s'", k);
    }
    const json_t *net = json_object_get(caps, "network");
    if (net && !json_is_boolean(net))
        return aos_err_set(err, AOS_EINVAL, "caps.network must be true or false");
    c->network = json_is_true(net);
    int64_t val;
#define XX(f, lo, hi, def, help)                                                                   \
    {                                                                                              \
        const json_t *j = json_object_get(caps, #f);                                               \
        if (j && !json_is_integer(j))                                                              \
            return aos_err_set(err, AOS_EINVAL, "caps." #f " must be an integer");                 \
        val = j ? json_integer_value(j) : (def);                                                   \
        if (val < (lo) || val > (hi))                                                              \
            return aos_err_set(err, AOS_EINVAL, "caps." #f " must be from %d to %d (" help ")",    \
                               (int)(lo), (int)(hi));                                              \
        if (!strcmp(#f, "timeout_ms"))                                                             \
            c->timeout_ms = (uint32_t)val;                                                         \
        else if (!strcmp(#f, "cpu_s"))                                                             \
            c->limits.cpu_s = (uint64_t)val;                                                       \
        else if (!strcmp(#f, "memory_mb")) {                                                       \
            c->limits.rss_bytes = (uint64_t)val * 1024 * 1024;                                     \
            c->limits.as_bytes = (uint64_t)val * 4 * 1024 * 1024;                                  \
        } else if (!strcmp(#f, "nproc"))                                                           \
            c->limits.nproc = (uint64_t)val;                                                       \
        else if (!strcmp(#f, "nofile"))                                                            \
            c->limits.nofile = (uint64_t)val;                                                      \
        else if (!strcmp(#f, "fsize_mb"))                                                          \
            c->limits.fsize_bytes = (uint64_t)val * 1024 * 1024;                                   \
        else if (!strcmp(#f, "output_kb"))                                                         \
            c->output_kb = (uint32_t)val;                                                          \
    }
    SB_CAPS_MAP(XX)
#undef XX
    return 0;
}

static int check_files(const json_t *files, const char *entry, aos_err_t *err)
{
    if (!json_is_object(files) || json_object_size(files) == 0)
        return aos_err_set(err, AOS_EINVAL, "files must be a non-empty object {path: content}");
    if (json_object_size(files) > SB_MAX_FILES)
        return aos_err_set(err, AOS_EINVAL, "at most %d files", SB_MAX_FILES);
    size_t total = 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)files, k, v)
    {
        if (!sb_path_ok(k))
            return aos_err_set(err, AOS_EINVAL,
                               "file path '%.100s' must be relative, of segments of "
                               "[A-Za-z0-9._-], without '.' or '..'",
                               k);
        if (!json_is_string(v))
            return aos_err_set(err, AOS_EINVAL, "the content of '%.100s' must be a string", k);
        total += json_string_length(v);
    }
    if (total > SB_MAX_FILE_BYTES)
        return aos_err_set(err, AOS_EINVAL, "files hold %zu bytes, more than %u", total,
                           SB_MAX_FILE_BYTES);
    /* a file may not also be a directory of another */
    json_object_foreach((json_t *)files, k, v)
    {
        size_t n = strlen(k);
        const char *k2;
        const json_t *v2;
        json_object_foreach(
            (json_t *)files, k2,
            v2) if (strlen(k2) > n && !strncmp(k2, k, n) &&
                    k2[n] == '/') return aos_err_set(err, AOS_EINVAL,
                                                     "'%.100s' is a file and a directory", k);
    }
    if (!json_object_get(files, entry))
        return aos_err_set(err, AOS_EINVAL, "entry_file '%.100s' is not one of files", entry);
    return 0;
}

/* env: {NAME: "value"} from the client, each value sealed, or {NAME:
 * {"secret": "<runtime secret>"}}, kept as it is and opened when a run
 * starts; a value given as null keeps the stored one (prev_env). */
static json_t *seal_env(aos_sandbox_t *sb, const json_t *env, const json_t *prev_env,
                        aos_err_t *err)
{
    if (!env || json_is_null(env))
        return json_object();
    if (!json_is_object(env)) {
        aos_err_set(err, AOS_EINVAL, "env must be an object {NAME: value}");
        return NULL;
    }
    if (json_object_size(env) > SB_MAX_ENV) {
        aos_err_set(err, AOS_EINVAL, "at most %d env entries", SB_MAX_ENV);
        return NULL;
    }
    json_t *out = json_object();
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        if (!env_name_ok(k)) {
            aos_err_set(err, AOS_EINVAL,
                        "env name '%.64s' must be [A-Za-z_][A-Za-z0-9_]* and not PATH, HOME, "
                        "TMPDIR or LANG",
                        k);
            json_decref(out);
            return NULL;
        }
        if (json_is_null(v) && json_object_get(prev_env, k)) {
            json_object_set(out, k, json_object_get(prev_env, k));
            continue;
        }
        const char *name, *var;
        int ref = aos_settings_env_ref(v, &name, &var);
        if (ref) { /* a script has no project: no variables */
            if (ref < 0 || var) {
                aos_err_set(err, AOS_EINVAL,
                            "env '%.64s' must be a string or {\"secret\": \"<runtime secret "
                            "name>\"}",
                            k);
                json_decref(out);
                return NULL;
            }
            json_object_set_new(out, k, json_pack("{s:s}", "secret", name));
            continue;
        }
        if (!json_is_string(v) || json_string_length(v) > SB_MAX_VALUE ||
            memchr(json_string_value(v), '\0', json_string_length(v))) {
            aos_err_set(err, AOS_EINVAL, "env '%.64s' must be a string of at most %u bytes", k,
                        SB_MAX_VALUE);
            json_decref(out);
            return NULL;
        }
        char *sealed = aos_secret_seal(sb->secrets, json_string_value(v), json_string_length(v));
        if (!sealed) {
            aos_err_set(err, AOS_EINTERNAL, "unable to seal env '%.64s'", k);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, json_string(sealed));
        free(sealed);
    }
    return out;
}

int sb_script_normalize(aos_sandbox_t *sb, const json_t *in, const json_t *prev,
                        aos_store_sandbox_script_t *out, char **env_text, char **files_text,
                        char **caps_text, aos_err_t *err)
{
    *env_text = *files_text = *caps_text = NULL;
    if (!json_is_object(in))
        return aos_err_set(err, AOS_EINVAL, "a script must be a JSON object");
    static const char *const fields[] = {"name",        "entry_file",  "files",
                                         "description", "schedule_ms", "schedule_cron",
                                         "env",         "caps",        NULL};
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        int known = 0;
        for (size_t i = 0; fields[i]; i++)
            known |= !strcmp(k, fields[i]);
        if (!strcmp(k, "cron") || !strcmp(k, "schedule"))
            return aos_err_set(err, AOS_EINVAL,
                               "unknown field '%.64s': a cron expression is 'schedule_cron'", k);
        if (!known)
            return aos_err_set(err, AOS_EINVAL, "unknown field '%.64s'", k);
    }
#define FIELD(name)                                                                                \
    (json_object_get(in, name) ? json_object_get(in, name) : json_object_get(prev, name))
    const json_t *name = FIELD("name"), *entry = FIELD("entry_file"), *files = FIELD("files");
    const json_t *desc = FIELD("description"), *sched = FIELD("schedule_ms"), *caps = FIELD("caps");
    const json_t *cron = FIELD("schedule_cron");
#undef FIELD
    /* one schedule: a change given for one of them clears the other */
    const json_t *in_ms = json_object_get(in, "schedule_ms"),
                 *in_cron = json_object_get(in, "schedule_cron");
    if (in_ms && !json_is_null(in_ms) && in_cron && !json_is_null(in_cron))
        return aos_err_set(err, AOS_EINVAL, "give schedule_ms or schedule_cron, not both");
    if (in_ms && !json_is_null(in_ms))
        cron = NULL;
    else if (in_cron && !json_is_null(in_cron))
        sched = NULL;
    if (!json_is_string(name) || json_string_length(name) == 0 || json_string_length(name) > 100)
        return aos_err_set(err, AOS_EINVAL, "name must be a string of 1 to 100 bytes");
    if (!json_is_string(entry) || !sb_path_ok(json_string_value(entry)))
        return aos_err_set(err, AOS_EINVAL, "entry_file must be a relative path");
    int rc = check_files(files, json_string_value(entry), err);
    if (rc)
        return rc;
    if (desc && !json_is_null(desc) && (!json_is_string(desc) || json_string_length(desc) > 4000))
        return aos_err_set(err, AOS_EINVAL, "description must be a string of at most 4000 bytes");
    int64_t every = 0;
    if (sched && !json_is_null(sched)) {
        if (!json_is_integer(sched) || json_integer_value(sched) < 1000 ||
            json_integer_value(sched) > 86400000LL * 366)
            return aos_err_set(err, AOS_EINVAL,
                               "schedule_ms must be an integer from 1000 to a year, or null");
        every = json_integer_value(sched);
    }
    if (cron && !json_is_null(cron)) {
        aos_cron_t parsed;
        aos_err_t e = {0, ""};
        if (!json_is_string(cron) || every)
            return aos_err_set(
                err, AOS_EINVAL,
                "schedule_cron must be a cron expression (\"*/5 * * * *\"), or null");
        if (aos_cron_parse(json_string_value(cron), &parsed, &e))
            return aos_err_set(err, AOS_EINVAL, "schedule_cron: %s", aos_err_msg(&e));
        out->schedule_cron = json_string_value(cron);
    }
    sb_caps_t c;
    if ((rc = sb_caps_parse(caps, &c, err)))
        return rc;
    json_t *env;
    if (json_object_get(in, "env"))
        env = seal_env(sb, json_object_get(in, "env"), json_object_get(prev, "env"), err);
    else
        env = json_is_object(json_object_get(prev, "env")) ? json_copy(json_object_get(prev, "env"))
                                                           : json_object();
    if (!env)
        return err->code ? err->code : AOS_ENOMEM;
    *env_text = json_dumps(env, JSON_COMPACT);
    json_decref(env);
    *files_text = json_dumps(files, JSON_COMPACT);
    json_t *cobj = json_is_object(caps) ? json_incref((json_t *)caps) : json_object();
    *caps_text = cobj ? json_dumps(cobj, JSON_COMPACT) : NULL;
    json_decref(cobj);
    if (!*env_text || !*files_text || !*caps_text)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    out->name = json_string_value(name);
    out->entry_file = json_string_value(entry);
    out->description = json_is_string(desc) ? json_string_value(desc) : NULL;
    out->schedule_ms = every;
    out->env = *env_text;
    out->files = *files_text;
    out->caps = *caps_text;
    return 0;
}

json_t *sb_script_public(const json_t *stored)
{
    json_t *pub = json_deep_copy(stored);
    if (!pub)
        return NULL;
    json_t *names = json_array(), *refs = json_object();
    const char *k;
    const json_t *v;
    json_object_foreach(json_object_get(stored, "env"), k, v)
    {
        json_array_append_new(names, json_string(k));
        if (json_is_object(v)) /* a runtime secret's name is no secret */
            json_object_set(refs, k, json_object_get(v, "secret"));
    }
    json_object_del(pub, "env");
    json_object_set_new(pub, "env_names", names);
    json_object_set_new(pub, "env_secrets", refs);
    return pub;
}
