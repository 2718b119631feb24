/* routes.c - the routes that manage API tokens and grants: GET/POST
 * /auth/tokens, DELETE /auth/tokens/:id, GET /auth/me, GET /rbac/routes,
 * GET/POST /rbac/grants, DELETE /rbac/grants/:id (custom roles: roles.c);
 * see auth.h.
 *
 * A change is validated on the loop (unknown fields, types, roles,
 * patterns, and that the caller holds what it gives), then written by a
 * store job in one transaction with its audit row; the job reads every
 * token and grant back and the done callback applies them, so memory
 * follows the store. A revocation then closes the token's open streams. */
#include "auth/internal.h"
#include "isotime/isotime.h"
#include "log/log.h"
#include "secret/secret.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

static void job_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct auth_job *)data)->req = NULL;
}

static int job_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct auth_job *j = arg;
    int rc = 0;
    char res[96];
    json_t *diff = NULL;
    switch (j->op) {
    case OP_TOKEN_CREATE: {
        const json_t *t = j->token;
        rc = aos_store_token_create(st, j->id, json_string_value(json_object_get(t, "name")),
                                    json_string_value(json_object_get(t, "role")),
                                    json_string_value(json_object_get(t, "hash")),
                                    json_string_value(json_object_get(t, "prefix")), j->actor,
                                    json_string_value(json_object_get(t, "expires_at")), err);
        diff = json_pack("{s:O, s:O, s:O, s:O}", "name", json_object_get(t, "name"), "role",
                         json_object_get(t, "role"), "expires_at", json_object_get(t, "expires_at"),
                         "grants", j->grants);
        snprintf(res, sizeof(res), "api_tokens/%s", j->id);
        break;
    }
    case OP_TOKEN_REVOKE:
        rc = aos_store_token_revoke(st, j->id, err);
        snprintf(res, sizeof(res), "api_tokens/%s", j->id);
        break;
    case OP_GRANT_PUT:
        diff = json_incref(json_array_get(j->grants, 0));
        snprintf(res, sizeof(res), "rbac_grants/%s",
                 json_string_value(json_object_get(diff, "id")));
        break;
    case OP_GRANT_DELETE:
        rc = aos_store_grant_delete(st, j->id, err);
        snprintf(res, sizeof(res), "rbac_grants/%s", j->id);
        break;
    case OP_ROLE_CREATE:
    case OP_ROLE_UPDATE:
    case OP_ROLE_DELETE:
        rc = auth_role_tx(st, j, err);
        diff = json_incref(j->diff);
        snprintf(res, sizeof(res), "rbac_roles/%.80s", j->id);
        break;
    }
    size_t i;
    json_t *g;
    json_array_foreach(j->grants, i, g)
    {
        if (rc)
            break;
        rc = auth_store_grant_put(st, g, j->actor, err);
    }
    static const char *const actions[] = {
        "auth.token.create", "auth.token.revoke", "rbac.grant.create", "rbac.grant.delete",
        "rbac.role.create",  "rbac.role.update",  "rbac.role.delete"};
    if (rc == 0)
        rc = aos_store_audit_append(st, j->actor, actions[j->op], res, diff, err);
    json_decref(diff);
    return rc;
}

static int job_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct auth_job *j = arg;
    int rc = aos_store_tx(st, job_tx, arg, err);
    if (rc == 0)
        rc = auth_load_rows(st, &j->now, err);
    return rc;
}

void auth_job_free(struct auth_job *j)
{
    if (j->req)
        aos_http_on_close(j->req, NULL, NULL);
    json_decref(j->token);
    json_decref(j->grants);
    json_decref(j->role);
    json_decref(j->answer);
    json_decref(j->diff);
    auth_rows_release(&j->now);
    free(j);
}

static void job_done(int status, const aos_err_t *err, void *arg)
{
    struct auth_job *j = arg;
    aos_auth_t *a = j->a;
    if (status) {
        if (status != AOS_ENOTFOUND)
            aos_log_error("auth", "%s", aos_err_msg(err));
        if (j->req)
            aos_http_respond_err(j->req, err);
        if (j->cb)
            j->cb(status, err, j->id, NULL, j->cb_data);
        auth_job_free(j);
        return;
    }
    auth_apply_rows(a, &j->now);
    if (j->op == OP_TOKEN_REVOKE) {
        aos_principal_t *p = aos_map_get(&a->by_id, j->id);
        size_t n = p && a->http ? aos_http_close_streams_of(a->http, p) : 0;
        aos_log_info("auth", "token %s revoked by %s; %zu open stream(s) closed", j->id, j->actor,
                     n);
    }
    if (j->req)
        aos_http_respond_json(
            j->req,
            j->op == OP_TOKEN_CREATE || j->op == OP_GRANT_PUT || j->op == OP_ROLE_CREATE ? 201
                                                                                         : 200,
            json_incref(j->answer));
    if (j->cb)
        j->cb(0, NULL, j->id, json_string_value(json_object_get(j->answer, "token")), j->cb_data);
    auth_job_free(j);
}

struct auth_job *auth_job_new(aos_auth_t *a, aos_http_req_t *req, enum auth_job_op op)
{
    struct auth_job *j = calloc(1, sizeof(*j));
    if (!j)
        return NULL;
    j->a = a;
    j->req = req;
    j->op = op;
    j->grants = json_array();
    if (req)
        aos_auth_actor(aos_auth_principal(req), j->actor, sizeof(j->actor));
    return j;
}

int auth_job_submit(struct auth_job *j)
{
    if (j->req)
        aos_http_on_close(j->req, job_closed, j);
    int rc = aos_store_submit(j->a->store, job_run, job_done, j);
    if (rc) {
        auth_job_free(j);
        return rc;
    }
    return 0;
}

void auth_random_id(char *out, size_t cap, const char *prefix)
{
    unsigned char b[8];
    randombytes_buf(b, sizeof(b));
    char hex[17];
    sodium_bin2hex(hex, sizeof(hex), b, sizeof(b));
    snprintf(out, cap, "%s%s", prefix, hex);
}

aos_perm_t auth_perm_of_role(aos_role_t r)
{
    switch (r) {
    case AOS_ROLE_VIEWER:
        return AOS_PERM_READ;
    case AOS_ROLE_OPERATOR:
        return AOS_PERM_OPERATE;
    case AOS_ROLE_ADMIN:
        return AOS_PERM_ADMIN;
    default:
        return AOS_PERM_OWNER;
    }
}

/* Fields of obj not in known: AOS_EINVAL naming the first. */
int auth_only_fields(const json_t *obj, const char *const *known, const char *what, aos_err_t *err)
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

/* A role named in a request: "viewer".."owner" (none_ok: also "none"). */
int auth_role_field(const json_t *v, int none_ok, const char *what, aos_role_t *out, aos_err_t *err)
{
    const char *s = json_string_value(v);
    aos_role_t r = aos_role_parse(s);
    *out = AOS_ROLE_NONE;
    if (!s || (r == AOS_ROLE_NONE && !(none_ok && !strcmp(s, "none"))))
        return aos_err_set(err, AOS_EINVAL, "%s must be one of %sviewer, operator, admin, owner",
                           what, none_ok ? "none, " : "");
    *out = r;
    return 0;
}

static int right_count(aos_role_t role, const char *resource, void *data)
{
    (void)role;
    (void)resource;
    ++*(size_t *)data;
    return 0;
}

int auth_grant_field(const aos_auth_t *a, const aos_principal_t *caller, const json_t *g, size_t i,
                     const char **role, const char **resource, aos_err_t *err)
{
    static const char *const known[] = {"role", "resource", NULL};
    *role = NULL;
    *resource = NULL;
    char what[48];
    snprintf(what, sizeof(what), "grants[%zu]", i);
    if (!json_is_object(g))
        return aos_err_set(err, AOS_EINVAL, "%s must be an object {role, resource}", what);
    int rc = auth_only_fields(g, known, what, err);
    if (rc)
        return rc;
    const char *name = json_string_value(json_object_get(g, "role"));
    aos_role_t builtin = aos_role_parse(name);
    const json_t *custom = NULL;
    if (builtin != AOS_ROLE_NONE)
        *role = aos_role_name(builtin);
    else if (name && (custom = json_object_get(a->roles, name)))
        *role = json_string_value(json_object_get(custom, "name"));
    else
        return aos_err_set(err, AOS_EINVAL,
                           "grants[%zu].role must be one of viewer, operator, admin, owner or a "
                           "custom role's name%s%.64s%s",
                           i, name ? " (there is no role '" : "", name ? name : "",
                           name ? "')" : "");
    const json_t *rv = json_object_get(g, "resource");
    *resource = json_string_value(rv);
    if ((!rv || json_is_null(rv)) && custom)
        *resource = "system"; /* the custom role's grants as they are */
    else if (!*resource)
        return aos_err_set(err, AOS_EINVAL, "grants[%zu].resource must be a string", i);
    if ((rc = aos_auth_resource_check(*resource, err)))
        return rc;
    size_t rights = 0;
    if (custom && (auth_grant_rights(a, *role, *resource, right_count, &rights), rights == 0))
        return aos_err_set(err, AOS_EINVAL,
                           "grants[%zu]: role '%.64s' gives nothing on '%.100s' (none of its "
                           "grants' resources meets it)",
                           i, *role, *resource);
    return auth_may_give(a, caller, *role, *resource, what, err);
}

/* The grants of principal ("token:<id>") as [{id, role, resource}]. */
json_t *auth_grants_of(const aos_auth_t *a, const char *principal)
{
    json_t *out = json_array();
    size_t i;
    json_t *g;
    json_array_foreach(a->grants, i, g)
    {
        if (!strcmp(json_string_value(json_object_get(g, "principal")) ?: "", principal))
            json_array_append_new(out, json_pack("{s:O, s:O, s:O}", "id", json_object_get(g, "id"),
                                                 "role", json_object_get(g, "role"), "resource",
                                                 json_object_get(g, "resource")));
    }
    return out;
}

json_t *auth_iso_or_null(int64_t ms)
{
    if (!ms)
        return json_null();
    char buf[32];
    aos_isotime_fmt(ms, buf);
    return json_string(buf);
}

static json_t *token_view(const aos_auth_t *a, const aos_principal_t *p)
{
    char who[48];
    snprintf(who, sizeof(who), "token:%s", p->id);
    return json_pack("{s:s, s:s, s:s, s:s, s:o, s:s?, s:s, s:o, s:o, s:b}", "id", p->id, "name",
                     p->name, "prefix", p->prefix, "role", aos_role_name(p->base_role), "grants",
                     auth_grants_of(a, who), "owner", p->created_by[0] ? p->created_by : NULL,
                     "created_at", p->created_at, "last_used_at", auth_iso_or_null(p->last_used_ms),
                     "expires_at", auth_iso_or_null(p->expires_ms), "revoked", p->revoked);
}

static int cmp_token(const void *x, const void *y)
{
    const aos_principal_t *p = *(aos_principal_t *const *)x, *q = *(aos_principal_t *const *)y;
    int c = strcmp(p->created_at, q->created_at);
    return c ? c : strcmp(p->id, q->id);
}

static int route_tokens_list(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    size_t n = aos_map_count(&a->by_id), k = 0;
    aos_principal_t **all = calloc(n ? n : 1, sizeof(*all));
    if (!all)
        return AOS_ENOMEM;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (k < n && aos_map_iter_next(&a->by_id, &it, NULL, NULL, &v))
        all[k++] = v;
    qsort(all, k, sizeof(*all), cmp_token);
    json_t *list = json_array();
    for (size_t i = 0; i < k; i++)
        json_array_append_new(list, token_view(a, all[i]));
    free(all);
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "tokens", list));
}

/* The most seconds a token may be created to live: ten years. */
#define TOKEN_TTL_MAX_S (10LL * 366 * 24 * 3600)

static int route_tokens_create(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"name", "role", "grants", "expires_in_s", NULL};
    int rc = 0;
    struct auth_job *j = NULL;
    char *tok = NULL;
    aos_role_t role = AOS_ROLE_NONE;
    const char *name = json_string_value(json_object_get(body, "name"));
    const json_t *grants = json_object_get(body, "grants");
    const json_t *ttl = json_object_get(body, "expires_in_s");
    if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the token", &err)))
        ;
    else if (!name || !*name || strlen(name) >= sizeof(caller->name))
        rc = aos_err_set(&err, AOS_EINVAL, "'name' must be a string of 1 to %zu characters",
                         sizeof(caller->name) - 1);
    else if (!strncmp(name, AOS_AUTH_MINTED_PREFIX, strlen(AOS_AUTH_MINTED_PREFIX)))
        rc = aos_err_set(&err, AOS_EINVAL, "names '%s*' are for the tokens aosd mints",
                         AOS_AUTH_MINTED_PREFIX);
    else if (json_object_get(body, "role") &&
             (rc = auth_role_field(json_object_get(body, "role"), 1, "'role'", &role, &err)))
        ;
    else if (grants &&
             (!json_is_array(grants) || json_array_size(grants) > AOS_AUTH_TOKEN_GRANTS_MAX))
        rc = aos_err_set(&err, AOS_EINVAL,
                         "'grants' must be an array of at most %d {role, resource}",
                         AOS_AUTH_TOKEN_GRANTS_MAX);
    else if (ttl && (!json_is_integer(ttl) || json_integer_value(ttl) < 1 ||
                     json_integer_value(ttl) > TOKEN_TTL_MAX_S))
        rc = aos_err_set(&err, AOS_EINVAL, "'expires_in_s' must be an integer from 1 to %lld",
                         (long long)TOKEN_TTL_MAX_S);
    else if (role != AOS_ROLE_NONE && aos_auth_check(caller, auth_perm_of_role(role), "system"))
        rc = aos_err_set(&err, AOS_EFORBIDDEN,
                         "you may not create a token with role '%s': it is more than yours",
                         aos_role_name(role));
    if (rc)
        goto out;
    if (!(j = auth_job_new(a, req, OP_TOKEN_CREATE)) || !(tok = aos_secret_token_new())) {
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
        goto out;
    }
    auth_random_id(j->id, sizeof(j->id), "tok_");
    char who[96];
    snprintf(who, sizeof(who), "token:%s", j->id);
    size_t i;
    json_t *g;
    json_t *answer_grants = json_array();
    json_array_foreach(grants, i, g)
    {
        const char *gr = NULL, *res = NULL;
        if ((rc = auth_grant_field(a, caller, g, i, &gr, &res, &err)))
            break;
        char gid[40];
        auth_random_id(gid, sizeof(gid), "grt_");
        json_array_append_new(j->grants, json_pack("{s:s, s:s, s:s, s:s}", "id", gid, "principal",
                                                   who, "role", gr, "resource", res));
        json_array_append_new(answer_grants,
                              json_pack("{s:s, s:s, s:s}", "id", gid, "role", gr, "resource", res));
    }
    if (rc) {
        json_decref(answer_grants);
        goto out;
    }
    char hash[65], prefix[16];
    aos_secret_token_hash(tok, hash);
    snprintf(prefix, sizeof(prefix), "%.8s", tok);
    json_t *expires =
        ttl ? auth_iso_or_null(aos_isotime_now_ms() + json_integer_value(ttl) * 1000) : json_null();
    j->token = json_pack("{s:s, s:s, s:s, s:s, s:O}", "name", name, "role", aos_role_name(role),
                         "hash", hash, "prefix", prefix, "expires_at", expires);
    /* the token itself is in this answer only */
    j->answer = json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s}", "id", j->id, "name", name,
                          "token", tok, "prefix", prefix, "role", aos_role_name(role), "grants",
                          answer_grants, "expires_at", expires, "owner", j->actor);
    rc = auth_job_submit(j);
    j = NULL;
    if (rc)
        rc = aos_err_set(&err, rc, "unable to save the token");
out:
    if (tok) {
        sodium_memzero(tok, strlen(tok));
        free(tok);
    }
    if (j)
        auth_job_free(j);
    json_decref(body);
    return rc ? aos_http_respond_err(req, &err) : 0;
}

/* Non-revoked Owner tokens other than except. */
static size_t other_owners(aos_auth_t *a, const aos_principal_t *except)
{
    size_t n = 0;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->by_id, &it, NULL, NULL, &v)) {
        const aos_principal_t *p = v;
        n += p != except && !p->revoked && p->role == AOS_ROLE_OWNER &&
             (!p->expires_ms || p->expires_ms > aos_isotime_now_ms());
    }
    return n + auth_owner_users(a, NULL);
}

static int route_tokens_revoke(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    const char *id = aos_http_param(req, "id");
    aos_principal_t *p = aos_map_get(&a->by_id, id);
    if (!p || p->revoked)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "token '%.100s' not found", id);
    if (p->role > caller->role)
        return aos_http_respond_error(req, AOS_EFORBIDDEN,
                                      "you may not revoke a token with role '%s': it is more than "
                                      "yours",
                                      aos_role_name(p->role));
    if (p->role == AOS_ROLE_OWNER && !other_owners(a, p))
        return aos_http_respond_error(req, AOS_ECONFLICT, "the last Owner token cannot be revoked");
    struct auth_job *j = auth_job_new(a, req, OP_TOKEN_REVOKE);
    if (!j)
        return AOS_ENOMEM;
    snprintf(j->id, sizeof(j->id), "%s", p->id);
    j->answer = json_pack("{s:s, s:b}", "id", p->id, "revoked", 1);
    return auth_job_submit(j);
}

static int route_me(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *p = aos_auth_principal(req);
    char who[48];
    int token = aos_map_get(&a->by_id, p->id) == p, user = !strcmp(p->kind, "user");
    snprintf(who, sizeof(who), "%s:%s", user ? "user" : "token", p->id);
    json_t *me = json_pack("{s:s, s:s, s:s, s:s, s:o, s:o}", "id", p->id, "kind",
                           token  ? "token"
                           : user ? "user"
                                  : p->id,
                           "name", p->name, "role", aos_role_name(p->role), "grants",
                           token || user ? auth_grants_of(a, who) : json_array(), "expires_at",
                           auth_iso_or_null(p->expires_ms));
    /* what the grants give, custom roles expanded (the UI hides by it) */
    json_object_set_new(me, "effective_grants",
                        token || user ? auth_rights_of(a, who) : json_array());
    if (user)
        auth_me_session(a, req, me);
    return aos_http_respond_json(req, 200, me);
}

static int route_routes(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    return aos_http_respond_json(req, 200,
                                 json_pack("{s:o}", "routes", aos_http_route_list(a->http)));
}

static int route_grants_list(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    return aos_http_respond_json(req, 200, json_pack("{s:O}", "grants", a->grants));
}

static int route_grants_create(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"principal", "role", "resource", NULL};
    int rc = 0;
    const char *role = NULL, *res = NULL;
    const char *who = json_string_value(json_object_get(body, "principal"));
    const aos_principal_t *p = NULL;
    if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the grant", &err)))
        ;
    else if (!who || (strncmp(who, "token:", 6) != 0 && strncmp(who, "user:", 5) != 0))
        rc = aos_err_set(&err, AOS_EINVAL, "'principal' must be 'token:<id>' or 'user:<id>'");
    else if (who[0] == 't' && (!(p = aos_map_get(&a->by_id, who + 6)) || p->revoked))
        rc = aos_err_set(&err, AOS_EINVAL, "'principal': no token '%.100s'", who + 6);
    else if (who[0] == 'u' && !auth_user_exists(a, who + 5))
        rc = aos_err_set(&err, AOS_EINVAL, "'principal': no user '%.100s'", who + 5);
    else {
        json_t *g = json_pack("{s:O?, s:O?}", "role", json_object_get(body, "role"), "resource",
                              json_object_get(body, "resource"));
        /* role and res stay valid: g shares its strings with body */
        rc = auth_grant_field(a, caller, g, 0, &role, &res, &err);
        json_decref(g);
        if (rc && !strncmp(aos_err_msg(&err), "grants[0]", 9)) {
            char msg[sizeof(err.msg)];
            const char *m = aos_err_msg(&err) + 9; /* "grants[0]" off: ".role ...", ": ..." */
            m += *m == '.' ? 1 : *m == ':' ? 2 : 0;
            snprintf(msg, sizeof(msg), "%s", m);
            aos_err_set(&err, rc, "%s", msg);
        }
    }
    struct auth_job *j = NULL;
    if (rc == 0 && !(j = auth_job_new(a, req, OP_GRANT_PUT)))
        rc = aos_err_set(&err, AOS_ENOMEM, NULL);
    if (rc) {
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    char gid[40];
    auth_random_id(gid, sizeof(gid), "grt_");
    json_array_append_new(j->grants, json_pack("{s:s, s:s, s:s, s:s}", "id", gid, "principal", who,
                                               "role", role, "resource", res));
    j->answer = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", gid, "principal", who, "role", role,
                          "resource", res, "created_by", j->actor);
    json_decref(body);
    return auth_job_submit(j);
}

static int route_grants_delete(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    const char *id = aos_http_param(req, "id");
    const json_t *found = NULL;
    size_t i;
    json_t *g;
    json_array_foreach(a->grants, i, g)
    {
        if (!strcmp(json_string_value(json_object_get(g, "id")) ?: "", id))
            found = g;
    }
    if (!found)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "grant '%.100s' not found", id);
    aos_err_t err = {0, ""};
    /* removing it needs what giving it needs (a role deleted since: nothing) */
    if (auth_may_give(a, caller, json_string_value(json_object_get(found, "role")),
                      json_string_value(json_object_get(found, "resource")), "the grant",
                      &err) == AOS_EFORBIDDEN)
        return aos_http_respond_err(req, &err);
    struct auth_job *j = auth_job_new(a, req, OP_GRANT_DELETE);
    if (!j)
        return AOS_ENOMEM;
    snprintf(j->id, sizeof(j->id), "%s", id);
    j->answer = json_pack("{s:s}", "deleted", id);
    return auth_job_submit(j);
}

/* ---- tokens aosd mints for its own processes (an agent's runtime) ---- */

int aos_auth_token_mint(aos_auth_t *a, const char *name, const char *const *resources,
                        const char *actor, aos_auth_minted_fn cb, void *data, aos_err_t *err)
{
    if (!name || strncmp(name, AOS_AUTH_MINTED_PREFIX, strlen(AOS_AUTH_MINTED_PREFIX)) != 0 ||
        strlen(name) >= sizeof(((aos_principal_t *)0)->name))
        return aos_err_set(err, AOS_EINVAL, "a token name '%s...' of at most %zu characters",
                           AOS_AUTH_MINTED_PREFIX, sizeof(((aos_principal_t *)0)->name) - 1);
    struct auth_job *j = auth_job_new(a, NULL, OP_TOKEN_CREATE);
    char *tok = j ? aos_secret_token_new() : NULL;
    if (!tok) {
        if (j)
            auth_job_free(j);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    snprintf(j->actor, sizeof(j->actor), "%s", actor ? actor : "aosd");
    j->cb = cb;
    j->cb_data = data;
    auth_random_id(j->id, sizeof(j->id), "tok_");
    char who[96];
    snprintf(who, sizeof(who), "token:%s", j->id);
    int rc = 0;
    for (size_t i = 0; resources && resources[i]; i++) {
        const char *res = resources[i];
        if (i >= AOS_AUTH_TOKEN_GRANTS_MAX) {
            rc = aos_err_set(err, AOS_EINVAL, "more than %d grants", AOS_AUTH_TOKEN_GRANTS_MAX);
            break;
        }
        if (strncmp(res, "tool:", 5) != 0 && strncmp(res, "project:", 8) != 0) {
            rc = aos_err_set(err, AOS_EINVAL, "a minted token's grant is on tool:* or project:*");
            break;
        }
        if ((rc = aos_auth_resource_check(res, err)))
            break;
        char gid[40];
        auth_random_id(gid, sizeof(gid), "grt_");
        json_array_append_new(j->grants, json_pack("{s:s, s:s, s:s, s:s}", "id", gid, "principal",
                                                   who, "role", "operator", "resource", res));
    }
    if (rc) {
        sodium_memzero(tok, strlen(tok));
        free(tok);
        auth_job_free(j);
        return rc;
    }
    char hash[65], prefix[16];
    aos_secret_token_hash(tok, hash);
    snprintf(prefix, sizeof(prefix), "%.8s", tok);
    j->token = json_pack("{s:s, s:s, s:s, s:s, s:n}", "name", name, "role", "none", "hash", hash,
                         "prefix", prefix, "expires_at");
    j->answer = json_pack("{s:s}", "token", tok);
    sodium_memzero(tok, strlen(tok));
    free(tok);
    if ((rc = auth_job_submit(j)))
        return aos_err_set(err, rc, "the store takes no more work");
    return 0;
}

size_t aos_auth_token_revoke_minted(aos_auth_t *a, const char *actor)
{
    size_t n = 0;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&a->by_id, &it, NULL, NULL, &v)) {
        const aos_principal_t *p = v;
        aos_err_t err = {0, ""};
        if (!p->revoked &&
            !strncmp(p->name, AOS_AUTH_MINTED_PREFIX, strlen(AOS_AUTH_MINTED_PREFIX)) &&
            aos_auth_token_revoke(a, p->id, actor, NULL, NULL, &err) == 0)
            n++;
    }
    return n;
}

int aos_auth_token_revoke(aos_auth_t *a, const char *id, const char *actor, aos_auth_minted_fn cb,
                          void *data, aos_err_t *err)
{
    aos_principal_t *p = aos_map_get(&a->by_id, id);
    if (!p || p->revoked)
        return aos_err_set(err, AOS_ENOTFOUND, "token '%.40s' not found", id);
    struct auth_job *j = auth_job_new(a, NULL, OP_TOKEN_REVOKE);
    if (!j)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    snprintf(j->actor, sizeof(j->actor), "%s", actor ? actor : "aosd");
    snprintf(j->id, sizeof(j->id), "%s", p->id);
    j->cb = cb;
    j->cb_data = data;
    int rc = auth_job_submit(j);
    return rc ? aos_err_set(err, rc, "the store takes no more work") : 0;
}

static const aos_http_route_t auth_routes[] = {
    {"GET", "/auth/me", AOS_PERM_ANY, route_me, 0, NULL},
    {"GET", "/auth/tokens", AOS_PERM_ADMIN, route_tokens_list, 0, NULL},
    {"POST", "/auth/tokens", AOS_PERM_ADMIN, route_tokens_create, 64 << 10, NULL},
    {"DELETE", "/auth/tokens/:id", AOS_PERM_ADMIN, route_tokens_revoke, 0, NULL},
    {"GET", "/rbac/routes", AOS_PERM_READ, route_routes, 0, NULL},
    {"GET", "/rbac/grants", AOS_PERM_ADMIN, route_grants_list, 0, NULL},
    {"POST", "/rbac/grants", AOS_PERM_ADMIN, route_grants_create, 16 << 10, NULL},
    {"DELETE", "/rbac/grants/:id", AOS_PERM_ADMIN, route_grants_delete, 0, NULL},
};

int aos_auth_add_routes(aos_auth_t *a, aos_http_t *h)
{
    a->http = h;
    if (a->mcp_anonymous)
        aos_log_info("auth",
                     "--mcp-anonymous: loopback MCP clients without a token act as 'anonymous' "
                     "with role '%s' on system",
                     aos_role_name(a->anonymous.role));
    int rc = aos_http_add_routes(h, auth_routes, sizeof(auth_routes) / sizeof(auth_routes[0]), a);
    if (rc == 0)
        rc = auth_roles_add_routes(a, h);
    return rc ? rc : auth_users_add_routes(a, h);
}
