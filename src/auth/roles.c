/* roles.c - custom roles: GET/POST /rbac/roles, PATCH and DELETE
 * /rbac/roles/:name; see auth.h and docs/RBAC.md.
 *
 * A custom role is a name and a set of grants ({built-in role, resource
 * pattern}) stored in rbac_roles (migration 0025). A grant whose role is
 * the custom role's name gives those grants, narrowed to the grant's
 * resource; auth.c (auth_grant_rights) is the one place that expands them,
 * for tokens and browser sessions alike, every time the rows are applied:
 * a change of the role reaches every grant of it at once.
 *
 * A change is checked on the loop: unknown fields, the name (not a
 * built-in role's), each grant's role (built-in only: roles do not nest)
 * and pattern, and that the caller holds every grant of the role - the
 * new ones and, to change or delete it, the old ones: an Admin neither
 * makes nor edits a role with Owner rights. It is then written by a store
 * job (routes.c) in one transaction with its audit row (rbac.role.create,
 * .update, .delete). Deleting a role some grant still names is refused
 * (409, in the transaction too, so a grant made meanwhile is not left
 * dangling): delete those grants first. */
#include "auth/internal.h"
#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DESCRIPTION_MAX 500

static const char *const builtin_desc[] = {
    NULL,
    "reads what it is granted on: jobs, episodes, events, logs, traces, the registry, tool lists",
    "a Viewer that also operates: runs and cancels tasks, approves, calls tools, publishes events "
    "and logs",
    "an Operator that also administers: the MCP registry, API tokens, grants, roles, the audit "
    "log",
    "everything, including Owner tokens",
};

/* How many grants name role. */
static size_t holders(const aos_auth_t *a, const char *role)
{
    size_t n = 0, i;
    const json_t *g;
    json_array_foreach(a->grants, i, g)
    {
        n += !strcmp(json_string_value(json_object_get(g, "role")) ?: "", role);
    }
    return n;
}

static json_t *role_view(const aos_auth_t *a, const json_t *r, int full)
{
    const char *name = json_string_value(json_object_get(r, "name"));
    json_t *v = json_pack("{s:s, s:b, s:O}", "name", name ? name : "", "builtin", 0, "description",
                          json_object_get(r, "description") ?: json_null());
    if (v && full) { /* the patterns and holders: for those who administer */
        json_object_set(v, "grants", json_object_get(r, "grants"));
        json_object_set_new(v, "holders", json_integer((json_int_t)holders(a, name ? name : "")));
        json_object_set(v, "created_by", json_object_get(r, "created_by"));
        json_object_set(v, "created_at", json_object_get(r, "created_at"));
        json_object_set(v, "updated_at", json_object_get(r, "updated_at"));
    }
    return v;
}

static int route_roles_list(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    json_t *list = json_array();
    for (int r = AOS_ROLE_VIEWER; r <= AOS_ROLE_OWNER; r++) {
        json_t *perms = json_array();
        for (int k = AOS_ROLE_VIEWER; k <= r; k++)
            json_array_append_new(perms, json_string(k == AOS_ROLE_VIEWER     ? "read"
                                                     : k == AOS_ROLE_OPERATOR ? "operate"
                                                                              : aos_role_name(k)));
        json_array_append_new(list,
                              json_pack("{s:s, s:b, s:o, s:s}", "name", aos_role_name(r), "builtin",
                                        1, "permissions", perms, "description", builtin_desc[r]));
    }
    int full = aos_auth_req_check(req, AOS_PERM_ADMIN, "system") == 0;
    const char *k;
    json_t *r;
    json_object_foreach(a->roles, k, r) json_array_append_new(list, role_view(a, r, full));
    return aos_http_respond_json(req, 200, json_pack("{s:o}", "roles", list));
}

/* The grants of a role in a request: 1..AOS_AUTH_ROLE_GRANTS_MAX of
 * {role (built-in), resource}, each held by the caller; *out the
 * normalized list. */
static int role_grants_field(const aos_auth_t *a, const aos_principal_t *caller, const json_t *v,
                             json_t **out, aos_err_t *err)
{
    static const char *const known[] = {"role", "resource", NULL};
    *out = NULL;
    if (!json_is_array(v) || json_array_size(v) < 1 ||
        json_array_size(v) > AOS_AUTH_ROLE_GRANTS_MAX)
        return aos_err_set(err, AOS_EINVAL, "'grants' must be an array of 1 to %d {role, resource}",
                           AOS_AUTH_ROLE_GRANTS_MAX);
    json_t *list = json_array();
    if (!list)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    size_t i;
    const json_t *g;
    int rc = 0;
    json_array_foreach(v, i, g)
    {
        char what[48];
        snprintf(what, sizeof(what), "grants[%zu]", i);
        if (!json_is_object(g)) {
            rc = aos_err_set(err, AOS_EINVAL, "%s must be an object {role, resource}", what);
            break;
        }
        if ((rc = auth_only_fields(g, known, what, err)))
            break;
        const json_t *rv = json_object_get(g, "role");
        aos_role_t r = aos_role_parse(json_string_value(rv));
        if (r == AOS_ROLE_NONE) {
            const char *s = json_string_value(rv);
            rc = s && json_object_get(a->roles, s)
                     ? aos_err_set(err, AOS_EINVAL,
                                   "%s.role: a custom role's grants take built-in roles only "
                                   "(viewer, operator, admin, owner), not '%.64s'",
                                   what, s)
                     : aos_err_set(err, AOS_EINVAL,
                                   "%s.role must be one of viewer, operator, admin, owner", what);
            break;
        }
        const char *res = json_string_value(json_object_get(g, "resource"));
        if (!res) {
            rc = aos_err_set(err, AOS_EINVAL, "%s.resource must be a string", what);
            break;
        }
        if ((rc = aos_auth_resource_check(res, err)))
            break;
        if ((rc = auth_may_give(a, caller, aos_role_name(r), res, what, err)))
            break;
        json_array_append_new(list,
                              json_pack("{s:s, s:s}", "role", aos_role_name(r), "resource", res));
    }
    if (rc) {
        json_decref(list);
        return rc;
    }
    *out = list;
    return 0;
}

/* The description of a request: a string of at most DESCRIPTION_MAX bytes
 * (an empty one clears it). */
static int description_field(const json_t *v, aos_err_t *err)
{
    if (!json_is_string(v) || json_string_length(v) > DESCRIPTION_MAX ||
        strlen(json_string_value(v)) != json_string_length(v))
        return aos_err_set(err, AOS_EINVAL, "'description' must be a string of at most %d bytes",
                           DESCRIPTION_MAX);
    return 0;
}

/* 0 if caller holds every grant of the stored role r (to change or delete
 * it). */
static int may_change(const aos_auth_t *a, const aos_principal_t *caller, const json_t *r,
                      aos_err_t *err)
{
    size_t i;
    const json_t *g;
    json_array_foreach(json_object_get(r, "grants"), i, g)
    {
        char what[96];
        snprintf(what, sizeof(what), "role '%.64s'", json_string_value(json_object_get(r, "name")));
        int rc = auth_may_give(a, caller, json_string_value(json_object_get(g, "role")),
                               json_string_value(json_object_get(g, "resource")), what, err);
        if (rc)
            return rc;
    }
    return 0;
}

static int route_roles_create(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"name", "description", "grants", NULL};
    const char *name = json_string_value(json_object_get(body, "name"));
    const json_t *desc = json_object_get(body, "description");
    json_t *grants = NULL;
    int rc = 0;
    if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the role", &err)))
        ;
    else if (!name)
        rc = aos_err_set(&err, AOS_EINVAL, "'name' must be a string");
    else if ((rc = aos_auth_role_name_check(name, &err)))
        ;
    else if (desc && (rc = description_field(desc, &err)))
        ;
    else if (!json_object_get(body, "grants"))
        rc = aos_err_set(&err, AOS_EINVAL, "'grants' is required: [{role, resource}]");
    else if ((rc = role_grants_field(a, caller, json_object_get(body, "grants"), &grants, &err)))
        ;
    else if (json_object_get(a->roles, name))
        rc = aos_err_set(&err, AOS_ECONFLICT, "a role '%s' exists already", name);
    else if (json_object_size(a->roles) >= AOS_AUTH_ROLES_MAX)
        rc = aos_err_set(&err, AOS_ECONFLICT, "there are %d custom roles already: delete some",
                         AOS_AUTH_ROLES_MAX);
    struct auth_job *j = rc ? NULL : auth_job_new(a, req, OP_ROLE_CREATE);
    if (!j) {
        if (!rc)
            aos_err_set(&err, AOS_ENOMEM, NULL);
        json_decref(grants);
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    snprintf(j->id, sizeof(j->id), "%s", name);
    j->role = json_pack("{s:O?, s:O}", "description", desc, "grants", grants);
    j->diff = json_pack("{s:O?, s:O}", "description", desc, "grants", grants);
    j->answer =
        json_pack("{s:s, s:b, s:O?, s:o, s:i, s:s}", "name", name, "builtin", 0, "description",
                  desc, "grants", grants, "holders", 0, "created_by", j->actor);
    json_decref(body);
    return auth_job_submit(j);
}

/* The stored role of the path's :name, or an answer (404, or 400 for a
 * built-in role). */
static const json_t *path_role(aos_auth_t *a, aos_http_req_t *req)
{
    const char *name = aos_http_param(req, "name");
    if (aos_role_parse(name) != AOS_ROLE_NONE) {
        aos_http_respond_error(req, AOS_EINVAL, "'%s' is a built-in role: it cannot be changed",
                               name);
        return NULL;
    }
    const json_t *r = name ? json_object_get(a->roles, name) : NULL;
    if (!r)
        aos_http_respond_error(req, AOS_ENOTFOUND, "role '%.64s' not found", name ? name : "");
    return r;
}

static int route_roles_update(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    const json_t *r = path_role(a, req);
    if (!r)
        return 0;
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    static const char *const known[] = {"description", "grants", NULL};
    const json_t *desc = json_object_get(body, "description");
    json_t *grants = NULL;
    int rc = 0;
    if (!json_is_object(body))
        rc = aos_err_set(&err, AOS_EINVAL, "the body must be a JSON object");
    else if ((rc = auth_only_fields(body, known, "the role", &err)))
        ;
    else if (!desc && !json_object_get(body, "grants"))
        rc = aos_err_set(&err, AOS_EINVAL, "nothing to change: send description or grants");
    else if (desc && (rc = description_field(desc, &err)))
        ;
    else if ((rc = may_change(a, caller, r, &err)))
        ;
    else if (json_object_get(body, "grants"))
        rc = role_grants_field(a, caller, json_object_get(body, "grants"), &grants, &err);
    struct auth_job *j = rc ? NULL : auth_job_new(a, req, OP_ROLE_UPDATE);
    if (!j) {
        if (!rc)
            aos_err_set(&err, AOS_ENOMEM, NULL);
        json_decref(grants);
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    const char *name = json_string_value(json_object_get(r, "name"));
    snprintf(j->id, sizeof(j->id), "%s", name);
    j->role = json_pack("{s:O?, s:O?}", "description", desc, "grants", grants);
    j->diff = json_pack("{s:O?, s:O?}", "description", desc, "grants", grants);
    j->answer = json_pack("{s:s, s:b, s:O, s:O, s:i}", "name", name, "builtin", 0, "description",
                          desc ? desc : json_object_get(r, "description") ?: json_null(), "grants",
                          grants ? grants : json_object_get(r, "grants"), "holders",
                          (int)holders(a, name));
    json_decref(grants);
    json_decref(body);
    return auth_job_submit(j);
}

static int route_roles_delete(aos_http_req_t *req, void *data)
{
    aos_auth_t *a = data;
    const aos_principal_t *caller = aos_auth_principal(req);
    const json_t *r = path_role(a, req);
    if (!r)
        return 0;
    aos_err_t err = {0, ""};
    const char *name = json_string_value(json_object_get(r, "name"));
    size_t held = holders(a, name);
    if (may_change(a, caller, r, &err))
        return aos_http_respond_err(req, &err);
    if (held)
        return aos_http_respond_error(
            req, AOS_ECONFLICT, "role '%s' is held by %zu grant(s): delete them first", name, held);
    struct auth_job *j = auth_job_new(a, req, OP_ROLE_DELETE);
    if (!j)
        return AOS_ENOMEM;
    snprintf(j->id, sizeof(j->id), "%s", name);
    j->diff = json_pack("{s:O}", "grants", json_object_get(r, "grants"));
    j->answer = json_pack("{s:s}", "deleted", name);
    return auth_job_submit(j);
}

int auth_role_tx(aos_store_t *st, struct auth_job *j, aos_err_t *err)
{
    const json_t *desc = json_object_get(j->role, "description");
    const json_t *grants = json_object_get(j->role, "grants"); /* null: kept */
    char *text = json_is_array(grants) ? json_dumps(grants, JSON_COMPACT) : NULL;
    if (json_is_array(grants) && !text)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    int rc;
    switch (j->op) {
    case OP_ROLE_CREATE:
        rc = aos_store_role_create(st, j->id, json_string_value(desc), text, j->actor, err);
        break;
    case OP_ROLE_UPDATE:
        rc = aos_store_role_update(st, j->id, json_string_value(desc), text, err);
        break;
    default:
        rc = aos_store_role_delete(st, j->id, err);
        break;
    }
    free(text);
    return rc;
}

static const aos_http_route_t role_routes[] = {
    {"GET", "/rbac/roles", AOS_PERM_ANY, route_roles_list, 0, NULL},
    {"POST", "/rbac/roles", AOS_PERM_ADMIN, route_roles_create, 256 << 10, NULL},
    {"PATCH", "/rbac/roles/:name", AOS_PERM_ADMIN, route_roles_update, 256 << 10, NULL},
    {"DELETE", "/rbac/roles/:name", AOS_PERM_ADMIN, route_roles_delete, 0, NULL},
};

int auth_roles_add_routes(aos_auth_t *a, aos_http_t *h)
{
    return aos_http_add_routes(h, role_routes, sizeof(role_routes) / sizeof(role_routes[0]), a);
}
