/* auth.c - decisions (aos_auth_check and the grant index), tokens in
 * memory, the scrape list and the HTTP authorizer; see auth.h. The routes
 * that manage tokens and grants are in routes.c. */
#include "auth/auth.h"
#include "buf/buf.h"
#include "cidr/cidr.h"
#include "isotime/isotime.h"
#include "auth/internal.h"
#include "log/log.h"
#include "map/map.h"
#include "secret/secret.h"

#include <sodium.h>
#include <stdlib.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

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

aos_role_t aos_auth_role_for(aos_perm_t perm)
{
    switch (perm) {
    case AOS_PERM_PUBLIC:
        return AOS_ROLE_NONE;
    case AOS_PERM_METRICS:
    case AOS_PERM_READ:
    case AOS_PERM_MCP:
    case AOS_PERM_ANY:
        return AOS_ROLE_VIEWER;
    case AOS_PERM_OPERATE:
        return AOS_ROLE_OPERATOR;
    case AOS_PERM_ADMIN:
        return AOS_ROLE_ADMIN;
    case AOS_PERM_OWNER:
        return AOS_ROLE_OWNER;
    }
    return AOS_ROLE_OWNER;
}

/* ---- resources and grants ---------------------------------------------- */

static const char *const kind_names[AOS_RES_KINDS] = {"system", "project", "task",
                                                      "agent",  "tool",    "secret"};

/* resource -> kind and name (after "<kind>:"); -1 if the kind is unknown. */
static int resource_split(const char *resource, aos_res_kind_t *kind, const char **name)
{
    if (!resource)
        return -1;
    if (!strcmp(resource, "system")) {
        *kind = AOS_RES_SYSTEM;
        *name = "";
        return 0;
    }
    const char *colon = strchr(resource, ':');
    if (!colon)
        return -1;
    size_t n = (size_t)(colon - resource);
    for (int k = 1; k < AOS_RES_KINDS; k++)
        if (strlen(kind_names[k]) == n && !memcmp(kind_names[k], resource, n)) {
            *kind = (aos_res_kind_t)k;
            *name = colon + 1;
            return 0;
        }
    return -1;
}

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
           c == '_' || c == '-' || c == '@' || c == '/' || c == ':';
}

int aos_auth_resource_check(const char *resource, aos_err_t *err)
{
    aos_res_kind_t kind;
    const char *name;
    if (!resource || resource_split(resource, &kind, &name))
        return aos_err_set(err, AOS_EINVAL,
                           "resource '%.100s' must be 'system' or '<kind>:<name>' with kind "
                           "project, task, agent, tool or secret",
                           resource ? resource : "");
    if (kind == AOS_RES_SYSTEM)
        return 0;
    size_t n = strlen(name);
    if (n == 0 || n > AOS_AUTH_RESOURCE_MAX)
        return aos_err_set(err, AOS_EINVAL,
                           "resource '%.100s': the name must have 1 to %d characters", resource,
                           AOS_AUTH_RESOURCE_MAX);
    for (size_t i = 0; i < n; i++) {
        if (name[i] == '*' && i == n - 1)
            break;
        if (!name_char((unsigned char)name[i]))
            return aos_err_set(err, AOS_EINVAL,
                               "resource '%.100s': '%c' is not allowed in a name (letters, digits, "
                               "'.', '_', '-', '@', '/', ':' and a final '*')",
                               resource, name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?');
    }
    return 0;
}

/* Inserts name (len bytes) into a sorted list, keeping the higher role of a
 * duplicate. */
static int list_insert(char ***list, aos_role_t **roles, size_t *n, const char *name, size_t len,
                       aos_role_t role)
{
    size_t lo = 0, hi = *n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp((*list)[mid], name, len);
        if (c == 0 && (*list)[mid][len] != '\0')
            c = 1;
        if (c == 0) {
            if ((*roles)[mid] < role)
                (*roles)[mid] = role;
            return 0;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    char **nl = realloc(*list, (*n + 1) * sizeof(**list));
    if (!nl)
        return AOS_ENOMEM;
    *list = nl;
    aos_role_t *nr = realloc(*roles, (*n + 1) * sizeof(**roles));
    if (!nr)
        return AOS_ENOMEM;
    *roles = nr;
    char *copy = strndup(name, len);
    if (!copy)
        return AOS_ENOMEM;
    memmove(nl + lo + 1, nl + lo, (*n - lo) * sizeof(*nl));
    memmove(nr + lo + 1, nr + lo, (*n - lo) * sizeof(*nr));
    nl[lo] = copy;
    nr[lo] = role;
    (*n)++;
    return 0;
}

#define FNV_BASIS 14695981039346656037ull
#define FNV_PRIME 1099511628211ull

static uint64_t fnv(const char *s, size_t n)
{
    uint64_t h = FNV_BASIS;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * FNV_PRIME;
    return h;
}

/* The slot of prefix (h, s, n) in g's table: its own, or the empty one
 * where it would go. The table is never full. */
static aos_grant_prefix_t *prefix_slot(const aos_grant_index_t *g, uint64_t h, const char *s,
                                       size_t n)
{
    size_t mask = g->pcap - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        aos_grant_prefix_t *e = &g->ptab[i];
        if (!e->s || (e->h == h && e->len == n && !memcmp(e->s, s, n)))
            return e;
    }
}

/* Adds prefix s (n bytes) with role, keeping the higher role of one it has:
 * 1 if added, 0 if it had it, AOS_ENOMEM. */
static int prefix_insert(aos_grant_index_t *g, const char *s, size_t n, aos_role_t role)
{
    if ((g->nprefix + 1) * 2 > g->pcap) {
        size_t cap = g->pcap ? g->pcap * 2 : 8;
        aos_grant_index_t bigger = *g;
        bigger.pcap = cap;
        if (!(bigger.ptab = calloc(cap, sizeof(*bigger.ptab))))
            return AOS_ENOMEM;
        for (size_t i = 0; i < g->pcap; i++)
            if (g->ptab[i].s)
                *prefix_slot(&bigger, g->ptab[i].h, g->ptab[i].s, g->ptab[i].len) = g->ptab[i];
        free(g->ptab);
        g->ptab = bigger.ptab;
        g->pcap = cap;
    }
    uint64_t h = fnv(s, n);
    aos_grant_prefix_t *e = prefix_slot(g, h, s, n);
    if (e->s) {
        if (e->role < role)
            e->role = role;
        return 0;
    }
    if (!(e->s = strndup(s, n)))
        return AOS_ENOMEM;
    e->h = h;
    e->len = (uint16_t)n;
    e->role = role;
    g->nprefix++;
    return 1;
}

int aos_auth_principal_grant(aos_principal_t *p, aos_role_t role, const char *resource)
{
    aos_res_kind_t kind;
    const char *name;
    if (resource_split(resource, &kind, &name) || role == AOS_ROLE_NONE)
        return AOS_EINVAL;
    p->ngrants++;
    if (kind == AOS_RES_SYSTEM) {
        if (p->role < role)
            p->role = role;
        return 0;
    }
    aos_grant_index_t *g = &p->grants[kind];
    size_t n = strlen(name);
    if (n && name[n - 1] == '*') {
        n--;
        if (n > UINT16_MAX)
            return AOS_EINVAL;
        int rc = prefix_insert(g, name, n, role);
        if (rc <= 0)
            return rc; /* an error, or a prefix it had already */
        size_t i = 0;
        while (i < g->nlens && g->lens[i] < n)
            i++;
        if (i < g->nlens && g->lens[i] == n)
            return 0;
        uint16_t *nl = realloc(g->lens, (g->nlens + 1) * sizeof(*nl));
        if (!nl)
            return AOS_ENOMEM;
        memmove(nl + i + 1, nl + i, (g->nlens - i) * sizeof(*nl));
        nl[i] = (uint16_t)n;
        g->lens = nl;
        g->nlens++;
        return 0;
    }
    return list_insert(&g->exact, &g->exact_role, &g->nexact, name, n, role);
}

void aos_auth_principal_release(aos_principal_t *p)
{
    for (int k = 0; k < AOS_RES_KINDS; k++) {
        aos_grant_index_t *g = &p->grants[k];
        for (size_t i = 0; i < g->nexact; i++)
            free(g->exact[i]);
        for (size_t i = 0; i < g->pcap; i++)
            free(g->ptab[i].s);
        free(g->exact);
        free(g->exact_role);
        free(g->ptab);
        free(g->lens);
        memset(g, 0, sizeof(*g));
    }
    p->ngrants = 0;
}

/* The index of name (len bytes) in a sorted list, or -1. */
static long list_find(char *const *list, size_t n, const char *name, size_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strncmp(list[mid], name, len);
        if (c == 0 && list[mid][len] != '\0')
            c = 1;
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

int aos_auth_check(const aos_principal_t *p, aos_perm_t perm, const char *resource)
{
    if (perm == AOS_PERM_PUBLIC)
        return 0;
    if (!p)
        return AOS_EFORBIDDEN;
    aos_role_t need = aos_auth_role_for(perm);
    if (perm == AOS_PERM_MCP || perm == AOS_PERM_ANY)
        return p->role >= need || p->ngrants > 0 ? 0 : AOS_EFORBIDDEN;
    if (p->role >= need)
        return 0; /* the role on system holds everywhere */
    aos_res_kind_t kind;
    const char *name;
    if (resource_split(resource, &kind, &name) || kind == AOS_RES_SYSTEM)
        return AOS_EFORBIDDEN;
    const aos_grant_index_t *g = &p->grants[kind];
    size_t n = strlen(name);
    int wild = n && name[n - 1] == '*';
    if (wild)
        n--; /* a pattern: only a prefix grant covering it will do */
    else if (g->nexact) {
        long i = list_find(g->exact, g->nexact, name, n);
        if (i >= 0 && g->exact_role[i] >= need)
            return 0;
    }
    /* the name's prefixes of the lengths there are, hashed as it is read */
    uint64_t h = FNV_BASIS;
    size_t at = 0;
    for (size_t l = 0; l < g->nlens && g->lens[l] <= n; l++) {
        for (; at < g->lens[l]; at++)
            h = (h ^ (unsigned char)name[at]) * FNV_PRIME;
        const aos_grant_prefix_t *e = prefix_slot(g, h, name, at);
        if (e->s && e->role >= need)
            return 0;
    }
    return AOS_EFORBIDDEN;
}

int aos_auth_check_some(const aos_principal_t *p, aos_perm_t perm, aos_res_kind_t kind)
{
    if (!p || kind <= AOS_RES_SYSTEM || kind >= AOS_RES_KINDS)
        return AOS_EFORBIDDEN;
    aos_role_t need = aos_auth_role_for(perm);
    if (p->role >= need)
        return 0;
    const aos_grant_index_t *g = &p->grants[kind];
    for (size_t i = 0; i < g->nexact; i++)
        if (g->exact_role[i] >= need)
            return 0;
    for (size_t i = 0; i < g->pcap; i++)
        if (g->ptab[i].s && g->ptab[i].role >= need)
            return 0;
    return AOS_EFORBIDDEN;
}

int aos_auth_check_task(const aos_principal_t *p, aos_perm_t perm, const char *trace,
                        const char *project)
{
    char res[AOS_AUTH_RESOURCE_MAX + 16];
    if (trace && (size_t)snprintf(res, sizeof(res), "task:%s", trace) < sizeof(res) &&
        aos_auth_check(p, perm, res) == 0)
        return 0;
    if (project && *project &&
        (size_t)snprintf(res, sizeof(res), "project:%s", project) < sizeof(res) &&
        aos_auth_check(p, perm, res) == 0)
        return 0;
    return AOS_EFORBIDDEN;
}

/* 1 if pattern a covers b (both checked, of one kind): every name b
 * matches, a matches too. */
static int pattern_covers(const char *a, size_t na, const char *b, size_t nb)
{
    int wa = na && a[na - 1] == '*', wb = nb && b[nb - 1] == '*';
    if (!wa)
        return !wb && na == nb && !memcmp(a, b, na);
    na--; /* a's stem */
    if (wb)
        nb--;
    return nb >= na && !memcmp(a, b, na);
}

const char *aos_auth_resource_meet(const char *a, const char *b)
{
    aos_res_kind_t ka, kb;
    const char *na, *nb;
    if (resource_split(a, &ka, &na) || resource_split(b, &kb, &nb))
        return NULL;
    if (ka == AOS_RES_SYSTEM)
        return b;
    if (kb == AOS_RES_SYSTEM)
        return a;
    if (ka != kb)
        return NULL;
    size_t la = strlen(na), lb = strlen(nb);
    if (pattern_covers(na, la, nb, lb))
        return b;
    if (pattern_covers(nb, lb, na, la))
        return a;
    return NULL; /* prefixes neither of which extends the other share no name */
}

int aos_auth_role_name_check(const char *name, aos_err_t *err)
{
    size_t n = name ? strlen(name) : 0;
    int ok = n >= 1 && n <= AOS_AUTH_ROLE_NAME_MAX && name[0] >= 'a' && name[0] <= 'z';
    for (size_t i = 0; ok && i < n; i++)
        ok = (name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
             name[i] == '.' || name[i] == '_' || name[i] == '-';
    if (!ok)
        return aos_err_set(err, AOS_EINVAL,
                           "a role's name must be 1 to %d of a-z 0-9 . _ - and begin with a "
                           "letter",
                           AOS_AUTH_ROLE_NAME_MAX);
    if (aos_role_parse(name) != AOS_ROLE_NONE || !strcmp(name, "none"))
        return aos_err_set(err, AOS_EINVAL, "'%s' is a built-in role's name", name);
    return 0;
}

/* The one place where a grant becomes rights: a built-in role on its
 * resource, or each {role, resource} of a custom role narrowed to the
 * grant's resource (a pattern that shares no name with it gives nothing). */
int auth_grant_rights(const aos_auth_t *a, const char *role, const char *resource, auth_right_fn fn,
                      void *data)
{
    aos_role_t r = aos_role_parse(role);
    if (r != AOS_ROLE_NONE)
        return fn(r, resource, data);
    const json_t *custom = role && a->roles ? json_object_get(a->roles, role) : NULL;
    if (!custom)
        return AOS_ENOTFOUND;
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(custom, "grants"), i, g)
    {
        const char *res = aos_auth_resource_meet(json_string_value(json_object_get(g, "resource")),
                                                 resource ? resource : "system");
        aos_role_t gr = aos_role_parse(json_string_value(json_object_get(g, "role")));
        int rc = res && gr != AOS_ROLE_NONE ? fn(gr, res, data) : 0;
        if (rc)
            return rc;
    }
    return 0;
}

static int right_add(aos_role_t role, const char *resource, void *data)
{
    return aos_auth_principal_grant(data, role, resource) == AOS_ENOMEM ? AOS_ENOMEM : 0;
}

void auth_principal_apply(const aos_auth_t *a, aos_principal_t *p, const json_t *g)
{
    const char *role = json_string_value(json_object_get(g, "role"));
    int rc =
        auth_grant_rights(a, role, json_string_value(json_object_get(g, "resource")), right_add, p);
    if (rc == AOS_ENOMEM)
        aos_log_error("auth", "out of memory loading a grant of %s %s", p->kind, p->id);
    else if (rc == AOS_ENOTFOUND)
        aos_log_warn("auth", "grant %s names no role '%.64s': it gives nothing",
                     json_string_value(json_object_get(g, "id")) ?: "?", role ? role : "");
}

struct give_check {
    const aos_principal_t *caller;
    aos_role_t role;
    char resource[AOS_AUTH_RESOURCE_MAX + 16];
};

static int right_held(aos_role_t role, const char *resource, void *data)
{
    struct give_check *c = data;
    if (aos_auth_check(c->caller, auth_perm_of_role(role), resource) == 0)
        return 0;
    c->role = role;
    snprintf(c->resource, sizeof(c->resource), "%s", resource);
    return AOS_EFORBIDDEN;
}

int auth_may_give(const aos_auth_t *a, const aos_principal_t *caller, const char *role,
                  const char *resource, const char *what, aos_err_t *err)
{
    struct give_check c = {caller, AOS_ROLE_NONE, ""};
    int rc = auth_grant_rights(a, role, resource, right_held, &c);
    if (rc == AOS_ENOTFOUND)
        return aos_err_set(err, AOS_EINVAL, "%s: there is no role '%.64s'", what, role ? role : "");
    if (rc == 0)
        return 0;
    if (aos_role_parse(role) != AOS_ROLE_NONE)
        return aos_err_set(err, AOS_EFORBIDDEN, "%s: you do not hold '%s' on '%.100s'", what,
                           aos_role_name(c.role), c.resource);
    return aos_err_set(err, AOS_EFORBIDDEN,
                       "%s: role '%.64s' gives '%s' on '%.100s', which you do not hold", what, role,
                       aos_role_name(c.role), c.resource);
}

int auth_store_grant_put(aos_store_t *st, const json_t *g, const char *actor, aos_err_t *err)
{
    const char *role = json_string_value(json_object_get(g, "role"));
    if (aos_role_parse(role) == AOS_ROLE_NONE) {
        json_t *row = NULL;
        int rc = aos_store_role_get(st, role ? role : "", &row, err);
        json_decref(row);
        if (rc == AOS_ENOTFOUND)
            return aos_err_set(err, AOS_ECONFLICT, "role '%.64s' was deleted meanwhile",
                               role ? role : "");
        if (rc)
            return rc;
    }
    return aos_store_grant_put(st, json_string_value(json_object_get(g, "id")),
                               json_string_value(json_object_get(g, "principal")), role,
                               json_string_value(json_object_get(g, "resource")), actor, err);
}

static int right_list(aos_role_t role, const char *resource, void *data)
{
    return json_array_append_new(
               data, json_pack("{s:s, s:s}", "role", aos_role_name(role), "resource", resource))
               ? AOS_ENOMEM
               : 0;
}

json_t *auth_rights_of(const aos_auth_t *a, const char *principal)
{
    json_t *out = json_array();
    size_t i;
    const json_t *g;
    json_array_foreach(a->grants, i, g)
    {
        if (out && !strcmp(json_string_value(json_object_get(g, "principal")) ?: "", principal))
            auth_grant_rights(a, json_string_value(json_object_get(g, "role")),
                              json_string_value(json_object_get(g, "resource")), right_list, out);
    }
    return out;
}

/* ---- tokens in memory ---------------------------------------------------- */

/* A stored time -> Unix ms; 0 for NULL or anything unreadable. */
int64_t auth_iso_ms(const char *s)
{
    int64_t ms;
    return aos_isotime_parse(s, 0, &ms) == 0 ? ms : 0;
}

static void principal_free(aos_principal_t *p)
{
    if (!p)
        return;
    aos_auth_principal_release(p);
    free(p);
}

/* Applies one stored grant row to its token (if it has one in memory). */
static void grant_apply(aos_auth_t *a, const json_t *g)
{
    const char *who = json_string_value(json_object_get(g, "principal"));
    if (!who || strncmp(who, "token:", 6) != 0)
        return;
    aos_principal_t *p = aos_map_get(&a->by_id, who + 6);
    if (p)
        auth_principal_apply(a, p, g);
}

/* Rebuilds every token's grants from a->grants. Tokens in use by requests
 * keep their address; only their index changes (loop thread). */
static void grants_rebuild(aos_auth_t *a)
{
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->by_id, &it, NULL, NULL, &v)) {
        aos_principal_t *p = v;
        aos_auth_principal_release(p);
        p->role = p->base_role;
    }
    size_t i;
    json_t *g;
    json_array_foreach(a->grants, i, g) grant_apply(a, g);
    auth_users_rebuild(a);
}

/* A stored token row -> its principal, in both maps (replacing one of the
 * same id, which keeps its address for requests that hold it). */
static void token_apply(aos_auth_t *a, const json_t *t)
{
    const char *id = json_string_value(json_object_get(t, "id"));
    const char *h = json_string_value(json_object_get(t, "token_hash"));
    if (!id || !h)
        return;
    aos_principal_t *p = aos_map_get(&a->by_id, id);
    if (!p) {
        if (!(p = calloc(1, sizeof(*p))) || aos_map_put(&a->by_id, id, p) ||
            aos_map_put(&a->by_hash, h, p)) {
            aos_map_del(&a->by_id, id);
            free(p);
            aos_log_error("auth", "out of memory loading token %s", id);
            return;
        }
    }
    snprintf(p->id, sizeof(p->id), "%s", id);
    snprintf(p->kind, sizeof(p->kind), "token");
    snprintf(p->name, sizeof(p->name), "%s", json_string_value(json_object_get(t, "name")) ?: "");
    p->base_role = p->role = aos_role_parse(json_string_value(json_object_get(t, "role")));
    p->expires_ms = auth_iso_ms(json_string_value(json_object_get(t, "expires_at")));
    p->revoked = json_string_value(json_object_get(t, "revoked_at")) != NULL;
    snprintf(p->prefix, sizeof(p->prefix), "%s",
             json_string_value(json_object_get(t, "prefix")) ?: "");
    snprintf(p->created_by, sizeof(p->created_by), "%s",
             json_string_value(json_object_get(t, "created_by")) ?: "");
    snprintf(p->created_at, sizeof(p->created_at), "%s",
             json_string_value(json_object_get(t, "created_at")) ?: "");
    int64_t used = auth_iso_ms(json_string_value(json_object_get(t, "last_used_at")));
    if (used > p->last_used_ms)
        p->last_used_ms = used;
    p->last_saved_ms = used;
}

/* Reads every token, grant and custom role from the store (start-up, or a
 * job). */
int auth_load_rows(aos_store_t *st, auth_rows_t *out, aos_err_t *err)
{
    memset(out, 0, sizeof(*out));
    int rc = aos_store_token_list(st, &out->tokens, err);
    if (rc == 0)
        rc = aos_store_grant_list(st, &out->grants, err);
    if (rc == 0)
        rc = aos_store_role_list(st, &out->roles, err);
    if (rc)
        auth_rows_release(out);
    return rc;
}

void auth_rows_release(auth_rows_t *rows)
{
    json_decref(rows->tokens);
    json_decref(rows->grants);
    json_decref(rows->roles);
    memset(rows, 0, sizeof(*rows));
}

void auth_apply_rows(aos_auth_t *a, auth_rows_t *rows)
{
    size_t i;
    json_t *t;
    json_array_foreach(rows->tokens, i, t) token_apply(a, t);
    json_t *roles = json_object();
    json_array_foreach(rows->roles, i, t)
    {
        const char *name = json_string_value(json_object_get(t, "name"));
        if (name && roles)
            json_object_set(roles, name, t);
    }
    if (roles) {
        json_decref(a->roles);
        a->roles = roles;
    }
    json_decref(a->grants);
    a->grants = json_incref(rows->grants);
    grants_rebuild(a);
    auth_rows_release(rows);
}

static int load(aos_auth_t *a, aos_err_t *err)
{
    auth_rows_t rows;
    int rc = auth_load_rows(a->store, &rows, err);
    if (rc == 0)
        auth_apply_rows(a, &rows);
    return rc;
}

int aos_auth_new(aos_auth_t **out, aos_store_t *st, int mcp_anonymous, aos_role_t anonymous_role,
                 aos_err_t *err)
{
    aos_auth_t *a = calloc(1, sizeof(*a));
    if (!a)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    a->store = st;
    a->mcp_anonymous = mcp_anonymous;
    aos_map_init(&a->by_hash);
    aos_map_init(&a->by_id);
    a->grants = json_array();
    a->roles = json_object();
    snprintf(a->anonymous.id, sizeof(a->anonymous.id), "anonymous");
    snprintf(a->anonymous.name, sizeof(a->anonymous.name), "anonymous");
    a->anonymous.role = a->anonymous.base_role =
        anonymous_role == AOS_ROLE_NONE ? AOS_ROLE_VIEWER : anonymous_role;
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
    while (aos_map_iter_next(&a->by_id, &it, NULL, NULL, &v))
        principal_free(v);
    aos_map_release(&a->by_id);
    aos_map_release(&a->by_hash);
    auth_users_free(a);
    json_decref(a->grants);
    json_decref(a->roles);
    aos_cidr_list_release(&a->scrape);
    free(a);
}

int aos_auth_scrape_list_check(const char *cidrs, aos_err_t *err)
{
    aos_cidr_list_t l;
    int rc = aos_cidr_list_parse(cidrs ? cidrs : "", &l, err);
    if (rc == 0)
        aos_cidr_list_release(&l);
    return rc;
}

int aos_auth_allow_scrape(aos_auth_t *a, const char *cidrs, aos_err_t *err)
{
    aos_cidr_list_t l;
    int rc = aos_cidr_list_parse(cidrs ? cidrs : "", &l, err);
    if (rc)
        return rc;
    aos_cidr_list_release(&a->scrape);
    a->scrape = l;
    return 0;
}

int aos_auth_may_scrape(const aos_auth_t *a, const char *addr)
{
    return addr && aos_cidr_list_match(&a->scrape, addr);
}

static int bootstrap_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    int rc = aos_store_token_put(st, "owner", "owner", "owner", arg, err);
    if (rc == 0)
        rc = aos_store_audit_append(st, "aosd", "auth.bootstrap", "api_tokens/owner", NULL, err);
    return rc;
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
    int rc = aos_store_tx(a->store, bootstrap_tx, h, err); /* the token and its audit row */
    if (rc == 0)
        rc = load(a, err);
    if (rc) {
        free(tok);
        return rc;
    }
    *generated = tok;
    return 0;
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

/* The route's resource with "{param}" filled in from the path; 0 or -1 if
 * it does not fit or a parameter is missing. */
static int route_resource(const aos_http_req_t *req, const char *tmpl, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *t = tmpl; *t;) {
        const char *val = NULL;
        size_t n;
        if (*t == '{') {
            const char *end = strchr(t, '}');
            char pname[32];
            if (!end || (size_t)(end - t - 1) >= sizeof(pname))
                return -1;
            memcpy(pname, t + 1, (size_t)(end - t - 1));
            pname[end - t - 1] = '\0';
            if (!(val = aos_http_param(req, pname)))
                return -1;
            n = strlen(val);
            t = end + 1;
        } else {
            val = t;
            n = 1;
            t++;
        }
        if (k + n >= cap)
            return -1;
        memcpy(out + k, val, n);
        k += n;
    }
    out[k] = '\0';
    return 0;
}

/* Every this many ms at most, a token's last use is written to the store. */
#define LAST_USED_EVERY_MS 60000

struct touch_job {
    char id[40];
    char at[32];
};

static int touch_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct touch_job *j = arg;
    return aos_store_token_touch(st, j->id, j->at, err);
}

static void touch_done(int status, const aos_err_t *err, void *arg)
{
    if (status)
        aos_log_warn("auth", "unable to record a token's last use: %s", aos_err_msg(err));
    free(arg);
}

static void touched(aos_auth_t *a, aos_principal_t *p, int64_t now)
{
    p->last_used_ms = now;
    if (now - p->last_saved_ms < LAST_USED_EVERY_MS)
        return;
    struct touch_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    p->last_saved_ms = now;
    snprintf(j->id, sizeof(j->id), "%s", p->id);
    aos_isotime_fmt(now, j->at);
    if (aos_store_submit(a->store, touch_run, touch_done, j))
        free(j);
}

/* What a kept-alive connection's last bearer token was: its bytes (to
 * compare in constant time) and its principal, so that the next request
 * with the same token skips hashing it and looking the hash up. Held
 * while the connection lives, wiped when it closes; a principal is never
 * freed before the authorizer, and revocation and expiry are checked on
 * every request all the same. */
typedef struct {
    aos_http_conn_slot_t base;
    aos_principal_t *p;
    size_t len;
    char token[AOS_AUTH_TOKEN_MAX];
} token_slot_t;

static void token_slot_release(aos_http_conn_slot_t *slot)
{
    sodium_memzero(slot, sizeof(token_slot_t));
    free(slot);
}

/* The principal of token tok (len bytes), or NULL. */
static aos_principal_t *token_lookup(aos_auth_t *a, aos_http_req_t *req, const char *tok,
                                     size_t len)
{
    aos_http_conn_slot_t *slot = aos_http_conn_slot(req);
    token_slot_t *ts = slot && slot->release == token_slot_release ? (token_slot_t *)slot : NULL;
    if (ts && ts->len == len && sodium_memcmp(ts->token, tok, len) == 0)
        return ts->p;
    char copy[AOS_AUTH_TOKEN_MAX + 1], hash[65];
    memcpy(copy, tok, len);
    copy[len] = '\0';
    aos_secret_token_hash(copy, hash);
    sodium_memzero(copy, sizeof(copy));
    aos_principal_t *p = aos_map_get(&a->by_hash, hash);
    if (!p)
        return NULL;
    if (!ts && (ts = malloc(sizeof(*ts)))) {
        ts->base.release = token_slot_release;
        if (aos_http_set_conn_slot(req, &ts->base)) {
            free(ts);
            ts = NULL;
        }
    }
    if (ts) {
        ts->p = p;
        ts->len = len;
        memcpy(ts->token, tok, len);
    }
    return p;
}

/* The token's principal from an Authorization value, or an error. */
static int token_principal(aos_auth_t *a, aos_http_req_t *req, const char *h, aos_principal_t **out,
                           aos_err_t *err)
{
    const char *tok;
    size_t len;
    if (bearer_token(h, &tok, &len))
        return aos_err_set(err, AOS_EUNAUTH, "Authorization must be 'Bearer <token>'");
    aos_principal_t *p = token_lookup(a, req, tok, len);
    if (!p)
        return aos_err_set(err, AOS_EUNAUTH, "invalid token");
    if (p->revoked)
        return aos_err_set(err, AOS_EUNAUTH, "token revoked");
    int64_t now = aos_isotime_now_ms();
    if (p->expires_ms && now >= p->expires_ms)
        return aos_err_set(err, AOS_EUNAUTH, "token expired");
    touched(a, p, now);
    *out = p;
    return 0;
}

int aos_auth_authorize(aos_http_req_t *req, aos_perm_t perm, aos_err_t *err, void *data)
{
    aos_auth_t *a = data;
    const char *h = aos_http_header(req, "Authorization");
    aos_principal_t *p = NULL;
    int rc;
    if (h) {
        if ((rc = token_principal(a, req, h, &p, err)))
            return rc;
    } else if ((rc = auth_session_principal(a, req, &p, err)) <= 0) {
        if (rc)
            return rc; /* a session cookie that is not (or no longer) good */
    } else if (perm == AOS_PERM_MCP && a->mcp_anonymous && aos_http_peer_is_loopback(req)) {
        p = &a->anonymous;
    } else if (perm == AOS_PERM_METRICS && aos_auth_may_scrape(a, aos_http_peer(req))) {
        aos_http_set_principal(req, &a->scraper);
        return 0; /* the address is the permission: no role */
    } else {
        return aos_err_set(err, AOS_EUNAUTH,
                           "missing token: send 'Authorization: Bearer <token>' (or log in at "
                           "POST /auth/login)");
    }
    if (!p)
        return aos_err_set(err, AOS_EUNAUTH, "invalid token");
    const aos_http_route_t *rt = aos_http_route(req);
    char resource[AOS_AUTH_RESOURCE_MAX + 32];
    const char *tmpl = rt && rt->resource ? rt->resource : "system";
    size_t tn = strlen(tmpl);
    int by_project = tn > 8 && !strcmp(tmpl + tn - 8, "|project");
    char base[128];
    if (by_project) { /* the handler checks the project of what it touches */
        snprintf(base, sizeof(base), "%.*s", (int)(tn - 8), tmpl);
        tmpl = base;
    }
    if (route_resource(req, tmpl, resource, sizeof(resource)))
        return aos_err_set(err, AOS_EFORBIDDEN, "no access to this resource");
    if (aos_auth_check(p, perm, resource) &&
        !(by_project && aos_auth_check_some(p, perm, AOS_RES_PROJECT) == 0)) {
        if (perm == AOS_PERM_MCP || perm == AOS_PERM_ANY)
            return aos_err_set(err, AOS_EFORBIDDEN, "this %s has no role and no grant",
                               strcmp(p->kind, "user") ? "token" : "user");
        return aos_err_set(err, AOS_EFORBIDDEN, "role '%s' may not %s '%.120s' (needs '%s')",
                           aos_role_name(p->role), aos_http_perm_name(perm), resource,
                           aos_role_name(aos_auth_role_for(perm)));
    }
    aos_http_set_principal(req, p);
    return 0;
}

const aos_principal_t *aos_auth_principal(const aos_http_req_t *req)
{
    return aos_http_principal(req);
}

/* "a", or "a:b" when b is not NULL, in buf (n >= 1), cut as snprintf cuts:
 * these run on every request (spans, sessions). */
static const char *name2(char *buf, size_t n, const char *a, const char *b)
{
    size_t k = 0;
    buf[0] = '\0';
    aos_str_put(buf, n, &k, a, SIZE_MAX);
    if (b) {
        aos_str_put(buf, n, &k, ":", 1);
        aos_str_put(buf, n, &k, b, SIZE_MAX);
    }
    return buf;
}

const char *aos_auth_actor(const aos_principal_t *p, char *buf, size_t n)
{
    if (!p)
        return name2(buf, n, "anonymous", NULL);
    if (p->kind[0])
        return name2(buf, n, p->kind, p->id);
    return name2(buf, n, p->id, NULL);
}

const char *aos_auth_display(const aos_principal_t *p, char *buf, size_t n)
{
    size_t mp = strlen(AOS_AUTH_MINTED_PREFIX);
    if (!p || !p->kind[0])
        return aos_auth_actor(p, buf, n);
    if (!strcmp(p->kind, "token") && !strncmp(p->name, AOS_AUTH_MINTED_PREFIX, mp) && p->name[mp])
        return name2(buf, n, p->name, NULL); /* "agent:<agent>" */
    return name2(buf, n, p->kind, p->name[0] ? p->name : p->id);
}

const aos_principal_t *aos_auth_find(aos_auth_t *a, const char *id)
{
    if (!a || !id)
        return NULL;
    if (!strcmp(id, "anonymous"))
        return a->mcp_anonymous ? &a->anonymous : NULL;
    if (!strncmp(id, "user:", 5)) /* a browser session's user */
        return auth_users_find(a, id + 5);
    if (!strncmp(id, "token:", 6)) /* as aos_auth_actor names it */
        id += 6;
    const aos_principal_t *p = aos_map_get(&a->by_id, id);
    if (!p) /* an MCP caller names a session's user by its id alone */
        return auth_users_find(a, id);
    if (!p || p->revoked || (p->expires_ms && aos_isotime_now_ms() >= p->expires_ms))
        return NULL;
    return p;
}

int aos_auth_req_check_task(const aos_http_req_t *req, aos_perm_t perm, const char *trace,
                            const char *project)
{
    return aos_auth_check_task(aos_http_principal(req), perm, trace, project);
}

int aos_auth_req_check(const aos_http_req_t *req, aos_perm_t perm, const char *resource)
{
    return aos_auth_check(aos_http_principal(req), perm, resource);
}
