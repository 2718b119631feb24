/* registry.c - registry entry validation, public view and import. */
#include "registry/registry.h"
#include "buf/buf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int aos_registry_name_ok(const char *name)
{
    if (!name || !isalnum((unsigned char)name[0]))
        return 0;
    size_t n = strlen(name);
    if (n > AOS_REGISTRY_NAME_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (!isalnum(c) && c != '_' && c != '-' && c != '.')
            return 0;
    }
    return strstr(name, "__") == NULL;
}

int aos_registry_name_reserved(const char *name)
{
    static const char *const reserved[] = AOS_REGISTRY_RESERVED_NAMES;
    for (size_t i = 0; name && reserved[i]; i++)
        if (!strcasecmp(reserved[i], name))
            return 1;
    return 0;
}

static int check_keys(const json_t *o, const char *const *allowed, const char *what, aos_err_t *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        int ok = 0;
        for (const char *const *a = allowed; *a; a++)
            if (!strcmp(*a, k))
                ok = 1;
        if (!ok)
            return aos_err_set(err, AOS_EINVAL, "unknown field '%s' in %s", k, what);
    }
    return 0;
}

/* An environment variable's name: a letter or '_', then letters, digits
 * and '_' (the portable names of POSIX; no '=', no NUL). */
static int env_name_ok(const char *k)
{
    if (!*k || isdigit((unsigned char)*k) || strlen(k) > 256)
        return 0;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '_')
            return 0;
    return 1;
}

/* Headers aosd sets itself: the message framing and the MCP transport's. */
static const char *const managed_headers[] = {"Host",
                                              "Content-Length",
                                              "Transfer-Encoding",
                                              "Connection",
                                              "Upgrade",
                                              "TE",
                                              "Trailer",
                                              "Keep-Alive",
                                              "Proxy-Connection",
                                              "Content-Type",
                                              "Mcp-Session-Id",
                                              "MCP-Protocol-Version",
                                              "Last-Event-ID",
                                              NULL};

/* A header field name: an RFC 9110 token, and not one aosd sets itself. */
static int header_name_ok(const char *k)
{
    if (!*k || strlen(k) > 256)
        return 0;
    for (const char *p = k; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("!#$%&'*+-.^_`|~", *p))
            return 0;
    for (const char *const *m = managed_headers; *m; m++)
        if (!strcasecmp(*m, k))
            return 0;
    return 1;
}

/* A header field value: visible characters, spaces and tabs; no CR, LF,
 * NUL or other control character, which would end the field early. */
static int header_value_ok(const char *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

/* The checks of one kind of map (env, headers). */
struct map_rules {
    const char *what;
    int (*name_ok)(const char *k);
    const char *name_rule;
    int value_nul_only; /* values: only NUL refused (env), else header_value_ok */
};

static const struct map_rules env_rules = {"env", env_name_ok,
                                           "a letter or '_', then letters, digits or '_'", 1};
static const struct map_rules header_rules = {
    "headers", header_name_ok,
    "an HTTP token, and not a header aosd sets itself (Host, Content-Length, Mcp-Session-Id, ...)",
    0};

/* The runtime secret a value names, {"secret": "<name>"} (1..64 of A-Z
 * a-z 0-9 _ . -), or NULL when v is not such a reference. */
static const char *secret_ref(const json_t *v)
{
    const char *s = json_string_value(json_object_get(v, "secret"));
    if (!json_is_object(v) || json_object_size(v) != 1 || !s)
        return NULL;
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return NULL;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
              *p == '_' || *p == '.' || *p == '-'))
            return NULL;
    return s;
}

/* Checks one name and its value against r. */
static int map_entry_ok(const struct map_rules *r, const char *k, const json_t *v, aos_err_t *err)
{
    if (*k && json_is_object(v)) {
        if (!secret_ref(v))
            return aos_err_set(err, AOS_EINVAL,
                               "'%s.%.64s' must be a string or {\"secret\": \"<runtime secret "
                               "name>\"} (1 to 64 of A-Z a-z 0-9 _ . -)",
                               r->what, k);
        if (!r->name_ok(k))
            return aos_err_set(err, AOS_EINVAL, "invalid name '%.64s' in '%s': use %s", k, r->what,
                               r->name_rule);
        return 0;
    }
    if (!json_is_string(v) || !*k)
        return aos_err_set(err, AOS_EINVAL, "'%s.%.64s' must be a string", r->what, k);
    if (!r->name_ok(k))
        return aos_err_set(err, AOS_EINVAL, "invalid name '%.64s' in '%s': use %s", k, r->what,
                           r->name_rule);
    const char *s = json_string_value(v);
    size_t n = json_string_length(v);
    if (r->value_nul_only ? memchr(s, '\0', n) != NULL : !header_value_ok(s, n))
        return aos_err_set(err, AOS_EINVAL, "'%s.%s' holds %s", r->what, k,
                           r->value_nul_only ? "a NUL character"
                                             : "a line break or another control character");
    return 0;
}

/* Copies an object of strings, sealing each value (a reference to a
 * runtime secret, {"secret": "<name>"}, is kept as it is: the gateway
 * opens the secret each time it connects); a value equal to
 * "(keep)" or missing keys are not special: the client sends the full set
 * or nothing (then prev's set is kept). */
static json_t *seal_map(const json_t *in, const struct map_rules *r, aos_secret_box_t *box,
                        aos_err_t *err)
{
    const char *what = r->what;
    if (!json_is_object(in)) {
        aos_err_set(err, AOS_EINVAL, "'%s' must be an object of strings", what);
        return NULL;
    }
    json_t *out = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        if (map_entry_ok(r, k, v, err)) {
            json_decref(out);
            return NULL;
        }
        if (json_is_object(v)) {
            json_object_set_new(out, k, json_pack("{s:s}", "secret", secret_ref(v)));
            continue;
        }
        char *sealed = aos_secret_seal(box, json_string_value(v), json_string_length(v));
        if (!sealed) {
            aos_err_set(err, AOS_EINTERNAL, "unable to seal '%s.%s'", what, k);
            json_decref(out);
            return NULL;
        }
        json_object_set_new(out, k, json_string(sealed));
        free(sealed);
    }
    return out;
}

static const char *str_field(const json_t *o, const char *k, int required, const char *ctx,
                             aos_err_t *err, int *bad)
{
    const json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v)) {
        if (required) {
            aos_err_set(err, AOS_EINVAL, "'%s' is required%s", k, ctx);
            *bad = 1;
        }
        return NULL;
    }
    if (!json_is_string(v)) {
        aos_err_set(err, AOS_EINVAL, "'%s' must be a string", k);
        *bad = 1;
        return NULL;
    }
    if (memchr(json_string_value(v), '\0', json_string_length(v))) {
        aos_err_set(err, AOS_EINVAL, "'%s' holds a NUL character", k);
        *bad = 1;
        return NULL;
    }
    return json_string_value(v);
}

/* The names of aosd's environment variables a stdio child also gets:
 * an array of variable names, none of them AOS_* (aosd's own settings and
 * secrets). */
static json_t *check_passthrough(const json_t *in, aos_err_t *err)
{
    if (!json_is_array(in) || json_array_size(in) > 64) {
        aos_err_set(err, AOS_EINVAL, "'env_passthrough' must be an array of at most 64 names");
        return NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(in, i, v)
    {
        const char *k = json_string_value(v);
        if (!k || json_string_length(v) != strlen(k) || !env_name_ok(k)) {
            aos_err_set(err, AOS_EINVAL,
                        "'env_passthrough[%zu]' must be a variable name: a letter or '_', then "
                        "letters, digits or '_'",
                        i);
            return NULL;
        }
        if (!strncasecmp(k, "AOS_", 4)) {
            aos_err_set(err, AOS_EINVAL,
                        "'env_passthrough[%zu]': aosd's own variables (AOS_*) are never passed on",
                        i);
            return NULL;
        }
    }
    return json_deep_copy(in);
}

/* An http(s) URL with a host, and nothing in it that ends a header line or
 * a URL early (spaces, control characters). */
static int url_ok(const char *url)
{
    const char *host;
    if (!strncmp(url, "http://", 7))
        host = url + 7;
    else if (!strncmp(url, "https://", 8))
        host = url + 8;
    else
        return 0;
    for (const char *p = url; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 0;
    const char *at = strpbrk(host, "@/?#");
    if (at && *at == '@')
        host = at + 1;
    return *host && !strchr("/?#:@", *host);
}

struct limit_def {
    const char *name;
    int is_unsigned;
    double lo, hi, def;
    size_t off;
};

static const struct limit_def limit_defs[] = {
#define XX(f, k, lo, hi, def, help) {#f, #k[0] == 'U', lo, hi, def, offsetof(aos_limits_t, f)},
    AOS_LIMITS_MAP(XX)
#undef XX
};
#define NLIMITS (sizeof(limit_defs) / sizeof(limit_defs[0]))

/* Checks a client's "limits" object; returns a copy holding only known keys. */
static json_t *check_limits(const json_t *in, aos_err_t *err)
{
    if (!json_is_object(in)) {
        aos_err_set(err, AOS_EINVAL, "'limits' must be an object");
        return NULL;
    }
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)in, k, v)
    {
        const struct limit_def *d = NULL;
        for (size_t i = 0; i < NLIMITS; i++)
            if (!strcmp(limit_defs[i].name, k))
                d = &limit_defs[i];
        if (!d) {
            aos_err_set(err, AOS_EINVAL, "unknown field '%.64s' in 'limits'", k);
            return NULL;
        }
        double x = json_number_value(v);
        if (!json_is_number(v) || (d->is_unsigned && !json_is_integer(v)) || x < d->lo ||
            x > d->hi) {
            aos_err_set(err, AOS_EINVAL, "'limits.%s' must be %s from %g to %g", k,
                        d->is_unsigned ? "an integer" : "a number", d->lo, d->hi);
            return NULL;
        }
    }
    return json_deep_copy(in);
}

void aos_registry_limits(const json_t *stored, aos_limits_t *out)
{
    const json_t *l = json_object_get(json_object_get(stored, "config"), "limits");
    for (size_t i = 0; i < NLIMITS; i++) {
        const json_t *v = json_object_get(l, limit_defs[i].name);
        *(double *)((char *)out + limit_defs[i].off) =
            json_is_number(v) ? json_number_value(v) : limit_defs[i].def;
    }
}

json_t *aos_registry_normalize(const json_t *in, const json_t *prev, aos_secret_box_t *box,
                               aos_err_t *err)
{
    static const char *const allowed[] = {
        "name",       "transport", "command", "args",        "env",          "env_passthrough",
        "cwd",        "url",       "headers", "description", "capabilities", "auth_token",
        "timeout_ms", "enabled",   "limits",  "ca_file",     "session_mode", NULL};
    int bad = 0;
    if (!json_is_object(in)) {
        aos_err_set(err, AOS_EINVAL, "an entry must be a JSON object");
        return NULL;
    }
    if (check_keys(in, allowed, "the entry", err))
        return NULL;
    const char *name = str_field(in, "name", 1, "", err, &bad);
    if (bad)
        return NULL;
    if (!aos_registry_name_ok(name)) {
        aos_err_set(err, AOS_EINVAL,
                    "invalid name '%.80s': use letters, digits, '_', '-', '.', at most 64, no '__'",
                    name);
        return NULL;
    }
    if (aos_registry_name_reserved(name)) {
        aos_err_set(err, AOS_EINVAL, "'%s' is the name of a built-in server", name);
        return NULL;
    }
    const char *transport = str_field(in, "transport", 0, "", err, &bad);
    const char *command = str_field(in, "command", 0, "", err, &bad);
    const char *url = str_field(in, "url", 0, "", err, &bad);
    const char *cwd = str_field(in, "cwd", 0, "", err, &bad);
    const char *desc = str_field(in, "description", 0, "", err, &bad);
    const char *token = str_field(in, "auth_token", 0, "", err, &bad);
    const char *ca_file = str_field(in, "ca_file", 0, "", err, &bad);
    if (bad)
        return NULL;
    if (!transport)
        transport = command ? "stdio" : "streamable-http";
    json_t *config = json_object();
    json_t *out = NULL;
    const json_t *pcfg = prev ? json_object_get(prev, "config") : NULL;
    char *base_url = NULL;
    if (!strcmp(transport, "stdio")) {
        if (!command || !*command) {
            aos_err_set(err, AOS_EINVAL, "'command' is required for transport 'stdio'");
            goto fail;
        }
        if (url || json_object_get(in, "headers")) {
            aos_err_set(err, AOS_EINVAL, "'%s' does not apply to transport 'stdio'",
                        url ? "url" : "headers");
            goto fail;
        }
        if (ca_file) {
            aos_err_set(err, AOS_EINVAL, "'ca_file' does not apply to transport 'stdio'");
            goto fail;
        }
        json_object_set_new(config, "command", json_string(command));
        const json_t *args = json_object_get(in, "args");
        json_t *a = json_array();
        if (args && !json_is_array(args)) {
            json_decref(a);
            aos_err_set(err, AOS_EINVAL, "'args' must be an array of strings");
            goto fail;
        }
        size_t i;
        json_t *v;
        json_array_foreach(args, i, v)
        {
            if (!json_is_string(v) || memchr(json_string_value(v), '\0', json_string_length(v))) {
                json_decref(a);
                aos_err_set(err, AOS_EINVAL, "'args[%zu]' must be a string without NUL", i);
                goto fail;
            }
            json_array_append(a, v);
        }
        json_object_set_new(config, "args", a);
        const json_t *env = json_object_get(in, "env");
        if (env) {
            json_t *sealed = seal_map(env, &env_rules, box, err);
            if (!sealed)
                goto fail;
            json_object_set_new(config, "env", sealed);
        } else if (pcfg && json_object_get(pcfg, "env")) {
            json_object_set_new(config, "env", json_deep_copy(json_object_get(pcfg, "env")));
        } else {
            json_object_set_new(config, "env", json_object());
        }
        const json_t *pass = json_object_get(in, "env_passthrough");
        if (pass) {
            json_t *p = check_passthrough(pass, err);
            if (!p)
                goto fail;
            json_object_set_new(config, "env_passthrough", p);
        }
        if (cwd)
            json_object_set_new(config, "cwd", json_string(cwd));
        size_t n = strlen(command) + 7;
        base_url = malloc(n);
        if (base_url)
            snprintf(base_url, n, "stdio:%s", command);
    } else if (!strcmp(transport, "streamable-http") || !strcmp(transport, "sse")) {
        if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8))) {
            aos_err_set(err, AOS_EINVAL,
                        "'url' (http:// or https://) is required for transport '%s'", transport);
            goto fail;
        }
        if (!url_ok(url)) {
            aos_err_set(err, AOS_EINVAL,
                        "'url' must name a host and hold no spaces or control characters");
            goto fail;
        }
        const char *stdio_only[] = {"command", "args", "env", "cwd", "env_passthrough"};
        for (size_t i = 0; i < sizeof(stdio_only) / sizeof(stdio_only[0]); i++) {
            if (json_object_get(in, stdio_only[i])) {
                aos_err_set(err, AOS_EINVAL, "'%s' does not apply to transport '%s'", stdio_only[i],
                            transport);
                goto fail;
            }
        }
        /* a CA bundle to verify the server with; verification itself is
         * never turned off */
        if (ca_file && ca_file[0] != '/') {
            aos_err_set(err, AOS_EINVAL, "'ca_file' must be an absolute path to a PEM file");
            goto fail;
        }
        json_object_set_new(config, "url", json_string(url));
        if (ca_file)
            json_object_set_new(config, "ca_file", json_string(ca_file));
        const json_t *h = json_object_get(in, "headers");
        if (h) {
            json_t *sealed = seal_map(h, &header_rules, box, err);
            if (!sealed)
                goto fail;
            json_object_set_new(config, "headers", sealed);
        } else if (pcfg && json_object_get(pcfg, "headers")) {
            json_object_set_new(config, "headers",
                                json_deep_copy(json_object_get(pcfg, "headers")));
        } else {
            json_object_set_new(config, "headers", json_object());
        }
        base_url = strdup(url);
    } else {
        aos_err_set(err, AOS_EINVAL, "unknown transport '%.40s' (stdio, streamable-http, sse)",
                    transport);
        goto fail;
    }
    const json_t *caps = json_object_get(in, "capabilities");
    if (caps && !json_is_object(caps) && !json_is_array(caps)) {
        aos_err_set(err, AOS_EINVAL, "'capabilities' must be an object or an array");
        goto fail;
    }
    const json_t *sm = json_object_get(in, "session_mode");
    if (sm) {
        const char *v = json_string_value(sm);
        if (!v || (strcmp(v, "shared") && strcmp(v, "per-client"))) {
            aos_err_set(err, AOS_EINVAL, "'session_mode' must be \"shared\" or \"per-client\"");
            goto fail;
        }
        json_object_set_new(config, "session_mode", json_string(v));
    }
    const json_t *lim = json_object_get(in, "limits");
    if (lim) {
        json_t *l = check_limits(lim, err);
        if (!l)
            goto fail;
        json_object_set_new(config, "limits", l);
    }
    const json_t *to = json_object_get(in, "timeout_ms");
    json_int_t timeout = AOS_REGISTRY_DEFAULT_TIMEOUT_MS;
    if (to) {
        if (!json_is_integer(to) || json_integer_value(to) < 1 ||
            json_integer_value(to) > 3600000) {
            aos_err_set(err, AOS_EINVAL, "'timeout_ms' must be an integer from 1 to 3600000");
            goto fail;
        }
        timeout = json_integer_value(to);
    }
    const json_t *en = json_object_get(in, "enabled");
    if (en && !json_is_boolean(en)) {
        aos_err_set(err, AOS_EINVAL, "'enabled' must be true or false");
        goto fail;
    }
    json_t *sealed_token = json_null();
    if (token && !header_value_ok(token, strlen(token))) {
        aos_err_set(err, AOS_EINVAL,
                    "'auth_token' holds a line break or another control character");
        goto fail;
    }
    if (token && *token) {
        char *s = aos_secret_seal(box, token, strlen(token));
        if (!s) {
            aos_err_set(err, AOS_EINTERNAL, "unable to seal the auth token");
            goto fail;
        }
        sealed_token = json_string(s);
        free(s);
    } else if (!json_object_get(in, "auth_token") && prev &&
               json_is_string(json_object_get(prev, "auth_token"))) {
        /* left out: keep it; null or "" removes it */
        sealed_token = json_deep_copy(json_object_get(prev, "auth_token"));
    }
    json_t *capv = caps ? json_deep_copy(caps) : json_object();
    out = json_pack("{s:s, s:s, s:s, s:s, s:o, s:O, s:o, s:I, s:b}", "name", name, "transport",
                    transport, "base_url", base_url ? base_url : "", "description",
                    desc ? desc : "", "capabilities", capv, "config", config, "auth_token",
                    sealed_token, "timeout_ms", timeout, "enabled", en ? json_is_true(en) : 1);
fail:
    free(base_url);
    json_decref(config);
    return out;
}

#define REDACTED "[REDACTED]"

/* A URL as the public form shows it: what may be a credential - the
 * userinfo ("user:pw@"), every query value ("?api_key=..."), a fragment -
 * becomes [REDACTED]; scheme, host, port, path and query names stay. */
static json_t *url_public(const char *url)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    const char *p = url, *auth = strstr(url, "://");
    if (auth) {
        auth += 3;
        size_t alen = strcspn(auth, "/?#");
        const char *at = memchr(auth, '@', alen);
        aos_buf_append(&b, url, (size_t)(auth - url));
        if (at)
            aos_buf_puts(&b, REDACTED "@");
        p = at ? at + 1 : auth;
    }
    size_t n = strcspn(p, "?#");
    aos_buf_append(&b, p, n);
    p += n;
    while (*p == '?' || *p == '&') {
        aos_buf_append(&b, p++, 1);
        size_t plen = strcspn(p, "&#");
        const char *eq = memchr(p, '=', plen);
        aos_buf_append(&b, p, eq ? (size_t)(eq + 1 - p) : plen);
        if (eq && eq + 1 < p + plen)
            aos_buf_puts(&b, REDACTED);
        p += plen;
    }
    if (*p == '#')
        aos_buf_puts(&b, "#" REDACTED);
    json_t *out = b.ptr ? json_stringn(b.ptr, b.len) : json_string("");
    aos_buf_release(&b);
    return out;
}

static json_t *names_of(const json_t *o)
{
    json_t *a = json_array();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v) json_array_append_new(a, json_string(k));
    return a;
}

/* {"<name>": "<runtime secret>"} of the entries of o that name one. */
static json_t *refs_of(const json_t *o)
{
    json_t *r = json_object();
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        const char *s = secret_ref(v);
        if (s)
            json_object_set_new(r, k, json_string(s));
    }
    return r;
}

json_t *aos_registry_public(const json_t *st)
{
    const json_t *cfg = json_object_get(st, "config");
    json_t *out = json_pack(
        "{s:O, s:O, s:O, s:O, s:O, s:O, s:b}", "name", json_object_get(st, "name"), "transport",
        json_object_get(st, "transport"), "base_url", json_object_get(st, "base_url"),
        "description", json_object_get(st, "description"), "capabilities",
        json_object_get(st, "capabilities"), "timeout_ms", json_object_get(st, "timeout_ms"),
        "enabled", json_is_true(json_object_get(st, "enabled")));
    if (!out)
        return NULL;
    json_object_set_new(out, "has_auth_token",
                        json_boolean(json_is_string(json_object_get(st, "auth_token"))));
    const char *plain[] = {"command", "args", "env_passthrough", "cwd", "ca_file"};
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        json_t *v = json_object_get(cfg, plain[i]);
        if (v)
            json_object_set(out, plain[i], v);
    }
    const char *url = json_string_value(json_object_get(cfg, "url"));
    if (url) {
        json_object_set_new(out, "url", url_public(url));
        json_object_set_new(out, "base_url", url_public(url));
    }
    if (json_object_get(cfg, "env")) {
        json_object_set_new(out, "env_keys", names_of(json_object_get(cfg, "env")));
        json_t *r = refs_of(json_object_get(cfg, "env"));
        if (json_object_size(r))
            json_object_set(out, "env_secrets", r);
        json_decref(r);
    }
    const json_t *smode = json_object_get(cfg, "session_mode");
    json_object_set_new(out, "session_mode",
                        json_string(json_is_string(smode) ? json_string_value(smode) : "shared"));
    aos_limits_t lim;
    aos_registry_limits(st, &lim);
    json_t *lj = json_object();
    for (size_t i = 0; i < NLIMITS; i++) {
        double x = *(double *)((char *)&lim + limit_defs[i].off);
        json_object_set_new(lj, limit_defs[i].name,
                            limit_defs[i].is_unsigned ? json_integer((json_int_t)x) : json_real(x));
    }
    json_object_set_new(out, "limits", lj);
    if (json_object_get(cfg, "headers")) {
        json_object_set_new(out, "header_names", names_of(json_object_get(cfg, "headers")));
        json_t *r = refs_of(json_object_get(cfg, "headers"));
        if (json_object_size(r)) /* which values name a runtime secret */
            json_object_set(out, "header_secrets", r);
        json_decref(r);
    }
    const char *ts[] = {"created_at", "updated_at"};
    for (size_t i = 0; i < 2; i++)
        if (json_object_get(st, ts[i]))
            json_object_set(out, ts[i], json_object_get(st, ts[i]));
    return out;
}

json_t *aos_registry_import(const json_t *doc, aos_err_t *err)
{
    const json_t *servers = json_object_get(doc, "mcpServers");
    if (!json_is_object(servers)) {
        aos_err_set(err, AOS_EINVAL, "expected {\"mcpServers\": {...}}");
        return NULL;
    }
    json_t *out = json_array();
    const char *name;
    json_t *s;
    json_object_foreach((json_t *)servers, name, s)
    {
        if (!json_is_object(s)) {
            aos_err_set(err, AOS_EINVAL, "mcpServers.%.64s must be an object", name);
            json_decref(out);
            return NULL;
        }
        json_t *e = json_object();
        json_object_set_new(e, "name", json_string(name));
        const char *k;
        json_t *v;
        json_object_foreach(s, k, v)
        {
            if (!strcmp(k, "type")) {
                /* IDE files say "type": "stdio" | "http" | "streamable-http" | "sse" */
                const char *t = json_string_value(v);
                if (t && (!strcmp(t, "http") || !strcmp(t, "streamableHttp") ||
                          !strcmp(t, "streamable-http")))
                    json_object_set_new(e, "transport", json_string("streamable-http"));
                else if (t)
                    json_object_set_new(e, "transport", json_string(t));
            } else if (!strcmp(k, "disabled")) {
                json_object_set_new(e, "enabled", json_boolean(!json_is_true(v)));
            } else if (!strcmp(k, "command") || !strcmp(k, "args") || !strcmp(k, "env") ||
                       !strcmp(k, "cwd") || !strcmp(k, "url") || !strcmp(k, "headers") ||
                       !strcmp(k, "description")) {
                json_object_set(e, k, v);
            }
            /* other keys are other tools' settings (autoApprove, alwaysAllow,
             * ...): not ours, left out */
        }
        json_array_append_new(out, e);
    }
    return out;
}
