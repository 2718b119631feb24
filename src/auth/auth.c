/* auth.c - API tokens and roles; see auth.h. */
#include "auth/auth.h"
#include "log/log.h"
#include "map/map.h"
#include "secret/secret.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* An address range: family, address bytes (4 or 16 used), prefix length. */
typedef struct {
    int family;
    unsigned char addr[16];
    unsigned bits;
} cidr_t;

struct aos_auth_s {
    aos_store_t *store; /* borrowed */
    int mcp_anonymous;
    aos_map_t by_hash; /* token hash -> aos_principal_t */
    aos_principal_t anonymous;
    aos_principal_t scraper; /* no role: an allowed address on AOS_PERM_METRICS */
    cidr_t *scrape;          /* addresses that may scrape without a token */
    size_t nscrape;
};

static const char *const role_names[] = {"none", "viewer", "operator", "admin", "owner"};

const char *aos_role_name(aos_role_t r)
{
    return (unsigned)r <= AOS_ROLE_OWNER ? role_names[r] : "none";
}

aos_role_t aos_role_parse(const char *s)
{
    for (int i = 1; s && i <= AOS_ROLE_OWNER; i++)
        if (!strcasecmp(s, role_names[i]))
            return (aos_role_t)i;
    return AOS_ROLE_NONE;
}

static int load(aos_auth_t *a, aos_err_t *err)
{
    json_t *list = NULL;
    int rc = aos_store_token_list(a->store, &list, err);
    if (rc)
        return rc;
    size_t i;
    json_t *t;
    json_array_foreach(list, i, t)
    {
        aos_principal_t *p = calloc(1, sizeof(*p));
        if (!p)
            break;
        snprintf(p->id, sizeof(p->id), "%s", json_string_value(json_object_get(t, "id")));
        snprintf(p->name, sizeof(p->name), "%s", json_string_value(json_object_get(t, "name")));
        p->role = aos_role_parse(json_string_value(json_object_get(t, "role")));
        const char *h = json_string_value(json_object_get(t, "token_hash"));
        free(aos_map_del(&a->by_hash, h));
        aos_map_put(&a->by_hash, h, p);
    }
    json_decref(list);
    return 0;
}

int aos_auth_new(aos_auth_t **out, aos_store_t *st, int mcp_anonymous, aos_err_t *err)
{
    aos_auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    a->store = st;
    a->mcp_anonymous = mcp_anonymous;
    aos_map_init(&a->by_hash);
    snprintf(a->anonymous.id, sizeof(a->anonymous.id), "anonymous");
    snprintf(a->anonymous.name, sizeof(a->anonymous.name), "anonymous");
    a->anonymous.role = AOS_ROLE_OPERATOR;
    snprintf(a->scraper.id, sizeof(a->scraper.id), "scraper");
    snprintf(a->scraper.name, sizeof(a->scraper.name), "metrics scraper");
    a->scraper.role = AOS_ROLE_NONE;
    int rc = load(a, err);
    if (rc) {
        aos_auth_free(a);
        return rc;
    }
    *out = a;
    return 0;
}

void aos_auth_free(aos_auth_t *a)
{
    if (!a)
        return;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->by_hash, &it, NULL, NULL, &v))
        free(v);
    aos_map_release(&a->by_hash);
    free(a->scrape);
    free(a);
}

/* An address in text -> family and bytes; an IPv4-mapped IPv6 address
 * becomes IPv4 (*mapped set). 0, or -1 if it is not an address. */
static int addr_parse(const char *text, int *family, unsigned char out[16], int *mapped)
{
    *mapped = 0;
    if (inet_pton(AF_INET, text, out) == 1) {
        *family = AF_INET;
        return 0;
    }
    if (inet_pton(AF_INET6, text, out) != 1)
        return -1;
    static const unsigned char prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (!memcmp(out, prefix, sizeof(prefix))) {
        memmove(out, out + 12, 4);
        *family = AF_INET;
        *mapped = 1;
    } else {
        *family = AF_INET6;
    }
    return 0;
}

static int cidr_parse(const char *text, cidr_t *c)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t n = slash ? (size_t)(slash - text) : strlen(text);
    if (n == 0 || n >= sizeof(addr))
        return -1;
    memcpy(addr, text, n);
    addr[n] = '\0';
    int mapped;
    if (addr_parse(addr, &c->family, c->addr, &mapped))
        return -1;
    unsigned max = c->family == AF_INET && !mapped ? 32 : 128;
    c->bits = c->family == AF_INET ? 32 : 128;
    if (slash) {
        const char *d = slash + 1;
        unsigned bits = 0;
        if (!*d || strlen(d) > 3)
            return -1;
        for (; *d; d++) {
            if (*d < '0' || *d > '9')
                return -1;
            bits = bits * 10 + (unsigned)(*d - '0');
        }
        if (bits > max || (mapped && bits < 96))
            return -1;
        c->bits = mapped ? bits - 96 : bits;
    }
    return 0;
}

static int cidr_match(const cidr_t *c, int family, const unsigned char *addr)
{
    if (c->family != family)
        return 0;
    unsigned whole = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, whole))
        return 0;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return !rest || ((c->addr[whole] ^ addr[whole]) & mask) == 0;
}

/* cidrs -> a new array of n ranges (n may be 0); AOS_EINVAL naming the
 * first malformed entry. */
static int scrape_list_parse(const char *cidrs, cidr_t **out, size_t *n, aos_err_t *err)
{
    size_t cap = 1;
    for (const char *p = cidrs; p && *p; p++)
        cap += *p == ',';
    cidr_t *list = calloc(cap, sizeof(*list));
    char *copy = strdup(cidrs ? cidrs : "");
    if (!list || !copy) {
        free(list);
        free(copy);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    size_t k = 0;
    char *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        while (*t == ' ')
            t++;
        size_t len = strlen(t);
        while (len && t[len - 1] == ' ')
            t[--len] = '\0';
        if (!len)
            continue;
        if (cidr_parse(t, &list[k])) {
            int rc = aos_err_set(err, AOS_EINVAL,
                                 "'%.64s' is not an address or a range (e.g. 127.0.0.1/8, ::1)", t);
            free(list);
            free(copy);
            return rc;
        }
        k++;
    }
    free(copy);
    *out = list;
    *n = k;
    return 0;
}

int aos_auth_scrape_list_check(const char *cidrs, aos_err_t *err)
{
    cidr_t *list = NULL;
    size_t n = 0;
    int rc = scrape_list_parse(cidrs, &list, &n, err);
    if (rc == 0)
        free(list);
    return rc;
}

int aos_auth_allow_scrape(aos_auth_t *a, const char *cidrs, aos_err_t *err)
{
    cidr_t *list = NULL;
    size_t n = 0;
    int rc = scrape_list_parse(cidrs, &list, &n, err);
    if (rc)
        return rc;
    free(a->scrape);
    a->scrape = list;
    a->nscrape = n;
    return 0;
}

int aos_auth_may_scrape(const aos_auth_t *a, const char *addr)
{
    int family, mapped;
    unsigned char bytes[16];
    if (!a->nscrape || !addr || addr_parse(addr, &family, bytes, &mapped))
        return 0;
    for (size_t i = 0; i < a->nscrape; i++)
        if (cidr_match(&a->scrape[i], family, bytes))
            return 1;
    return 0;
}

int aos_auth_bootstrap(aos_auth_t *a, const char *token, char **generated, aos_err_t *err)
{
    *generated = NULL;
    if (aos_map_count(&a->by_hash) > 0) {
        if (token) {
            char h[65];
            aos_secret_token_hash(token, h);
            if (!aos_map_get(&a->by_hash, h))
                aos_log_warn("auth", "the bootstrap token is ignored: tokens exist already");
        }
        return 0;
    }
    char *tok = NULL;
    if (token) {
        size_t n = strlen(token);
        int visible = 1;
        for (size_t i = 0; i < n; i++)
            visible &= token[i] >= 0x21 && token[i] <= 0x7e;
        if (n < 16 || n > AOS_AUTH_TOKEN_MAX || !visible)
            return aos_err_set(err, AOS_EINVAL,
                               "the bootstrap token must have 16 to %d visible ASCII characters "
                               "(no spaces)",
                               AOS_AUTH_TOKEN_MAX);
    } else {
        tok = aos_secret_token_new();
        if (!tok)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        token = tok;
    }
    char h[65];
    aos_secret_token_hash(token, h);
    int rc = aos_store_token_put(a->store, "owner", "owner", "owner", h, err);
    if (rc == 0)
        rc = aos_store_audit_append(a->store, "aosd", "auth.bootstrap", "api_tokens/owner", NULL,
                                    err);
    if (rc == 0)
        rc = load(a, err);
    if (rc) {
        free(tok);
        return rc;
    }
    *generated = tok;
    return 0;
}

static aos_role_t need(aos_perm_t perm)
{
    switch (perm) {
    case AOS_PERM_PUBLIC:
        return AOS_ROLE_NONE;
    case AOS_PERM_METRICS:
    case AOS_PERM_READ:
        return AOS_ROLE_VIEWER;
    case AOS_PERM_MCP:
    case AOS_PERM_OPERATE:
        return AOS_ROLE_OPERATOR;
    case AOS_PERM_ADMIN:
        return AOS_ROLE_ADMIN;
    case AOS_PERM_OWNER:
        return AOS_ROLE_OWNER;
    }
    return AOS_ROLE_OWNER;
}

/* Finds the token in an Authorization value: credentials = "Bearer" 1*SP
 * token (RFC 6750 section 2.1; the scheme is case-insensitive, RFC 9110
 * section 11.1), nothing after it but the field's trailing whitespace,
 * which is not part of the value. The token is 1 to AOS_AUTH_TOKEN_MAX
 * visible ASCII characters. The HTTP server has refused a value with a
 * NUL byte and a second Authorization header already. */
static int bearer_token(const char *h, const char **tok, size_t *len)
{
    if (strncasecmp(h, "Bearer ", 7) != 0)
        return -1;
    const char *t = h + 7;
    while (*t == ' ')
        t++;
    size_t n = strlen(t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0 || n > AOS_AUTH_TOKEN_MAX)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (t[i] < 0x21 || t[i] > 0x7e)
            return -1;
    *tok = t;
    *len = n;
    return 0;
}

int aos_auth_authorize(aos_http_req_t *req, aos_perm_t perm, aos_err_t *err, void *data)
{
    aos_auth_t *a = data;
    const char *h = aos_http_header(req, "Authorization");
    aos_principal_t *p = NULL;
    if (h) {
        const char *tok;
        size_t len;
        if (bearer_token(h, &tok, &len))
            return aos_err_set(err, AOS_EUNAUTH, "Authorization must be 'Bearer <token>'");
        char copy[AOS_AUTH_TOKEN_MAX + 1], hash[65];
        memcpy(copy, tok, len);
        copy[len] = '\0';
        aos_secret_token_hash(copy, hash);
        sodium_memzero(copy, sizeof(copy));
        p = aos_map_get(&a->by_hash, hash);
        if (!p)
            return aos_err_set(err, AOS_EUNAUTH, "invalid token");
    } else if (perm == AOS_PERM_MCP && a->mcp_anonymous && aos_http_peer_is_loopback(req)) {
        p = &a->anonymous;
    } else if (perm == AOS_PERM_METRICS && aos_auth_may_scrape(a, aos_http_peer(req))) {
        aos_http_set_principal(req, &a->scraper);
        return 0; /* the address is the permission: no role */
    } else {
        return aos_err_set(err, AOS_EUNAUTH, "missing token: send 'Authorization: Bearer <token>'");
    }
    if (p->role < need(perm))
        return aos_err_set(err, AOS_EFORBIDDEN, "role '%s' may not do this (needs '%s')",
                           aos_role_name(p->role), aos_role_name(need(perm)));
    aos_http_set_principal(req, p);
    return 0;
}

const aos_principal_t *aos_auth_principal(const aos_http_req_t *req)
{
    return aos_http_principal(req);
}
