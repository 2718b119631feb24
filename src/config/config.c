/* config.c - settings parser over AOS_CONFIG_MAP; see config.h. */
#include "config/config.h"

#include <errno.h>
#include <math.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum kind { KIND_S, KIND_B, KIND_U, KIND_D };

struct setting {
    const char *field, *flag, *env, *def, *help;
    enum kind kind;
    size_t off;
};

static const struct setting settings[] = {
#define XX(f, t, fl, en, d, h) {#f, fl, en, d, h, KIND_##t, offsetof(aos_config_t, f)},
    AOS_CONFIG_MAP(XX)
#undef XX
};
#define NSETTINGS (sizeof(settings) / sizeof(settings[0]))

static int parse_bool(const char *v, int *out)
{
    if (!strcmp(v, "1") || !strcmp(v, "true") || !strcmp(v, "yes") || !strcmp(v, "on"))
        *out = 1;
    else if (!strcmp(v, "0") || !strcmp(v, "false") || !strcmp(v, "no") || !strcmp(v, "off"))
        *out = 0;
    else
        return -1;
    return 0;
}

static int apply(aos_config_t *cfg, const struct setting *s, const char *v, aos_err_t *err)
{
    char *base = (char *)cfg;
    switch (s->kind) {
    case KIND_S: {
        char **p = (char **)(base + s->off);
        char *copy = v ? strdup(v) : NULL;
        if (v && !copy)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        free(*p);
        *p = copy;
        return 0;
    }
    case KIND_B:
        if (parse_bool(v, (int *)(base + s->off)))
            return aos_err_set(err, AOS_EINVAL, "'%s' wants true or false, not '%s'", s->flag, v);
        return 0;
    case KIND_U: {
        char *end;
        errno = 0;
        unsigned long n = strtoul(v, &end, 10);
        /* strtoul skips spaces and takes a sign: accept digits only */
        if (errno || *v < '0' || *v > '9' || *end)
            return aos_err_set(err, AOS_EINVAL, "'%s' wants a number, not '%s'", s->flag, v);
        *(unsigned long *)(base + s->off) = n;
        return 0;
    }
    case KIND_D: {
        char *end;
        errno = 0;
        double d = strtod(v, &end);
        /* strtod also takes spaces, hex, "inf" and "nan": a plain decimal only */
        int plain = (*v >= '0' && *v <= '9') || *v == '.' || (*v == '-' && v[1] != '\0');
        for (const char *q = v; plain && *q; q++)
            if (*q == 'x' || *q == 'X' || *q == 'n' || *q == 'N' || *q == 'i' || *q == 'I')
                plain = 0;
        if (errno || !plain || *end || !isfinite(d))
            return aos_err_set(err, AOS_EINVAL, "'%s' wants a decimal number, not '%s'", s->flag,
                               v);
        *(double *)(base + s->off) = d;
        return 0;
    }
    }
    return aos_err_set(err, AOS_EINTERNAL, NULL);
}

int aos_config_set(aos_config_t *cfg, const char *field, const char *value, aos_err_t *err)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (!strcmp(settings[i].field, field))
            return apply(cfg, &settings[i], value, err);
    return aos_err_set(err, AOS_EINVAL, "unknown setting '%s'", field);
}

int aos_config_init(aos_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    for (size_t i = 0; i < NSETTINGS; i++)
        if (settings[i].def && apply(cfg, &settings[i], settings[i].def, NULL))
            return AOS_EINTERNAL;
    return 0;
}

void aos_config_release(aos_config_t *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (settings[i].kind == KIND_S) {
            char **p = (char **)((char *)cfg + settings[i].off);
            free(*p);
            *p = NULL;
        }
    }
    free(cfg->config_file);
    cfg->config_file = NULL;
}

static const struct setting *find_flag(const char *name, size_t len);

static int load_file(aos_config_t *cfg, const char *path, aos_err_t *err)
{
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!root)
        return aos_err_set(err, AOS_EINVAL, "unable to read config '%s': %s (line %d)", path,
                           je.text, je.line);
    int rc = 0;
    if (!json_is_object(root)) {
        rc = aos_err_set(err, AOS_EINVAL, "config '%s' must be a JSON object", path);
        goto out;
    }
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        /* a key is a flag name ("data-dir") or a field name ("data_dir") */
        const struct setting *st = find_flag(key, strlen(key));
        for (size_t i = 0; !st && i < NSETTINGS; i++)
            if (!strcmp(settings[i].field, key))
                st = &settings[i];
        if (!st) {
            rc = aos_err_set(err, AOS_EINVAL, "unknown setting '%s'", key);
            goto out;
        }
        char text[64];
        const char *s = NULL;
        if (json_is_string(v))
            s = json_string_value(v);
        else if (json_is_boolean(v))
            s = json_is_true(v) ? "true" : "false";
        else if (json_is_integer(v)) {
            snprintf(text, sizeof(text), "%lld", (long long)json_integer_value(v));
            s = text;
        } else if (json_is_real(v) && st->kind == KIND_D) {
            snprintf(text, sizeof(text), "%.17g", json_real_value(v));
            s = text;
        } else if (json_is_null(v))
            continue;
        else {
            rc = aos_err_set(err, AOS_EINVAL, "config '%s': '%s' has an unsupported type", path,
                             key);
            goto out;
        }
        rc = apply(cfg, st, s, err);
        if (rc)
            goto out;
    }
out:
    json_decref(root);
    return rc;
}

/* Settings whose values are secrets. Once read they are wiped from aosd's
 * environment and command line, where any process of the same user (a
 * stdio MCP server aosd started, for one) could read them in
 * /proc/<pid>/environ and /proc/<pid>/cmdline. */
static int is_secret(const struct setting *s)
{
    return !strcmp(s->field, "bootstrap_token") || !strcmp(s->field, "master_key") ||
           !strcmp(s->field, "llm_api_key");
}

/* Overwrites a value in place (the memory /proc shows), keeping its length. */
static void wipe_text(char *v)
{
    memset(v, 'x', strlen(v));
}

/* Wipes the secret settings' variables: their text, then the variables. */
static void scrub_env(void)
{
    extern char **environ;
    for (size_t i = 0; i < NSETTINGS; i++) {
        if (!is_secret(&settings[i]))
            continue;
        size_t n = strlen(settings[i].env);
        for (char **e = environ; e && *e; e++)
            if (!strncmp(*e, settings[i].env, n) && (*e)[n] == '=')
                wipe_text(*e + n + 1);
        unsetenv(settings[i].env);
    }
}

void aos_config_forget_secrets(aos_config_t *cfg)
{
    for (size_t i = 0; i < NSETTINGS; i++) {
        char **p = (char **)((char *)cfg + settings[i].off);
        if (is_secret(&settings[i]) && *p) {
            explicit_bzero(*p, strlen(*p));
            free(*p);
            *p = NULL;
        }
    }
}

static const struct setting *find_flag(const char *name, size_t len)
{
    for (size_t i = 0; i < NSETTINGS; i++)
        if (strlen(settings[i].flag) == len && !strncmp(settings[i].flag, name, len))
            return &settings[i];
    return NULL;
}

int aos_config_load(aos_config_t *cfg, int argc, char **argv, aos_err_t *err)
{
    /* the config file comes first, so find --config before anything else */
    const char *file = getenv("AOS_CONFIG");
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--config")) {
            if (i + 1 >= argc)
                return aos_err_set(err, AOS_EINVAL, "option '--config' needs a value");
            file = argv[i + 1];
        } else if (!strncmp(argv[i], "--config=", 9)) {
            file = argv[i] + 9;
        }
    }
    if (file && *file) {
        cfg->config_file = strdup(file);
        int rc = load_file(cfg, file, err);
        if (rc)
            return rc;
    }
    for (size_t i = 0; i < NSETTINGS; i++) {
        const char *v = getenv(settings[i].env);
        if (v) {
            int rc = apply(cfg, &settings[i], v, err);
            if (rc)
                return rc;
        }
    }
    scrub_env();
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            cfg->help = 1;
            continue;
        }
        if (!strcmp(a, "--version")) {
            cfg->version = 1;
            continue;
        }
        if (strncmp(a, "--", 2) != 0)
            return aos_err_set(err, AOS_EINVAL, "unexpected argument '%s'", a);
        const char *name = a + 2;
        const char *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 6 && !strncmp(name, "config", 6)) {
            if (!eq)
                i++;
            continue;
        }
        const struct setting *s = find_flag(name, len);
        if (!s)
            return aos_err_set(err, AOS_EINVAL, "unknown option '%s'", a);
        char *v;
        if (eq)
            v = (char *)eq + 1;
        else if (s->kind == KIND_B && (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0 ||
                                       parse_bool(argv[i + 1], &(int){0}) != 0))
            v = "true";
        else if (i + 1 < argc)
            v = argv[++i];
        else
            return aos_err_set(err, AOS_EINVAL, "option '%s' needs a value", a);
        int rc = apply(cfg, s, v, err);
        if (rc)
            return rc;
        if (is_secret(s))
            wipe_text(v);
    }
    return 0;
}

void aos_config_usage(const char *prog)
{
    fprintf(stderr, "usage: %s [options]\n\noptions (flag > environment > config file):\n", prog);
    fprintf(stderr, "  --%-22s %-26s %s\n", "config FILE", "AOS_CONFIG", "JSON settings file");
    for (size_t i = 0; i < NSETTINGS; i++) {
        char def[96] = "";
        if (settings[i].def)
            snprintf(def, sizeof(def), " [%s]", settings[i].def);
        fprintf(stderr, "  --%-22s %-26s %s%s\n", settings[i].flag, settings[i].env,
                settings[i].help, def);
    }
    fprintf(stderr, "  --%-22s %-26s %s\n", "version", "", "print the version");
    fprintf(stderr,
            "\n       %s agent   the agent runtime (aosd starts it for an agent's "
            "replicas)\n",
            prog);
}
