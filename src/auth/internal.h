/* internal.h - what auth.c and routes.c share: the authorizer's state and
 * the helpers that load tokens and grants. Loop thread unless said. */
#ifndef AOS_AUTH_INTERNAL_H
#define AOS_AUTH_INTERNAL_H

#include "auth/auth.h"
#include "map/map.h"

#include <jansson.h>
#include <stdint.h>

#include "cidr/cidr.h"

struct aos_auth_s {
    aos_store_t *store; /* borrowed */
    aos_http_t *http;   /* borrowed, once routes are added: to close streams */
    int mcp_anonymous;
    aos_map_t by_hash; /* token hash -> aos_principal_t (revoked ones too) */
    aos_map_t by_id;   /* token id -> the same aos_principal_t */
    json_t *grants;    /* the stored grants, [{id, principal, role, resource, ...}] */
    json_t *roles;     /* the custom roles: {name: {name, description, grants, ...}} */
    aos_principal_t anonymous;
    aos_principal_t scraper;    /* no role: an allowed address on AOS_PERM_METRICS */
    aos_cidr_list_t scrape;     /* addresses that may scrape without a token */
    struct auth_users_s *users; /* users and browser sessions (users.c); NULL until started */
};

/* What the store holds of tokens, grants and custom roles (arrays of rows). */
typedef struct {
    json_t *tokens, *grants, *roles;
} auth_rows_t;

/* Every token, grant and custom role from the store (start-up, or a store
 * job: any thread with the store). */
int auth_load_rows(aos_store_t *st, auth_rows_t *out, aos_err_t *err);
void auth_rows_release(auth_rows_t *rows);
/* Makes a's tokens, grants and roles those rows (stolen: *rows is emptied);
 * a token already in memory keeps its address, so requests holding it see
 * the change. Every principal's grants are built again. */
void auth_apply_rows(aos_auth_t *a, auth_rows_t *rows);

/* A grant's rights (auth.c, the one place custom roles are expanded): fn
 * runs for each {built-in role, resource} that a grant of role (a built-in
 * or custom role's name) on resource gives; the first non-zero return of
 * fn is returned, AOS_ENOTFOUND when role names no role, else 0. */
typedef int (*auth_right_fn)(aos_role_t role, const char *resource, void *data);
int auth_grant_rights(const aos_auth_t *a, const char *role, const char *resource, auth_right_fn fn,
                      void *data);
/* Adds the rights of the stored grant row g to p (token and session
 * principals alike). */
void auth_principal_apply(const aos_auth_t *a, aos_principal_t *p, const json_t *g);
/* 0 if caller holds every right a grant of role on resource gives, else
 * AOS_EFORBIDDEN with err ("<what>: you do not hold ..." or "<what>: role
 * '<name>' gives ..., which you do not hold"), AOS_EINVAL for an unknown
 * role. what names the grant in the message. */
int auth_may_give(const aos_auth_t *a, const aos_principal_t *caller, const char *role,
                  const char *resource, const char *what, aos_err_t *err);
/* Writes the grant row g ({id, principal, role, resource}) in the caller's
 * transaction; a custom role must still exist (AOS_ECONFLICT if it was
 * deleted since the request was checked). Store thread. */
int auth_store_grant_put(aos_store_t *st, const json_t *g, const char *actor, aos_err_t *err);
/* The rights of principal's grants ("token:<id>", "user:<id>"), custom
 * roles expanded: [{role, resource}]. */
json_t *auth_rights_of(const aos_auth_t *a, const char *principal);

/* A stored ISO-8601 time -> Unix ms; 0 for NULL or anything else. */
int64_t auth_iso_ms(const char *s);

/* Shared by routes.c and users.c (loop thread). */
void auth_random_id(char *out, size_t cap, const char *prefix);
aos_perm_t auth_perm_of_role(aos_role_t r);
int auth_only_fields(const json_t *obj, const char *const *known, const char *what, aos_err_t *err);
int auth_role_field(const json_t *v, int none_ok, const char *what, aos_role_t *out,
                    aos_err_t *err);
/* One {role, resource} of a request (grants[i]): role a built-in role or
 * a custom role's name (*role: its stored spelling; borrowed from a or
 * static), resource a pattern (optional for a custom role: "system"), and
 * the caller holds all it gives. 0, AOS_EINVAL or AOS_EFORBIDDEN. */
int auth_grant_field(const aos_auth_t *a, const aos_principal_t *caller, const json_t *g, size_t i,
                     const char **role, const char **resource, aos_err_t *err);
json_t *auth_grants_of(const aos_auth_t *a, const char *principal);
json_t *auth_iso_or_null(int64_t ms);

/* users.c: the sessions' principals follow a->grants and the users (after
 * every change of either); ends the sessions of a user gone or disabled. */
void auth_users_rebuild(aos_auth_t *a);
/* The principal of the request's session cookie: 0 with *out set, 1 if
 * the request has no session cookie, or an error (401; 403 AOS_ECSRF for
 * a state-changing request without the CSRF token or from another
 * Origin). */
int auth_session_principal(aos_auth_t *a, aos_http_req_t *req, aos_principal_t **out,
                           aos_err_t *err);
/* Enabled Owner users other than except_id (may be NULL). */
size_t auth_owner_users(const aos_auth_t *a, const char *except_id);
/* Adds to a GET /auth/me answer what a cookie session has (csrf_token,
 * session expiry). */
void auth_me_session(aos_auth_t *a, aos_http_req_t *req, json_t *me);
/* The principal of a live browser session of user id (every session of a
 * user has the same rights), or NULL. Loop thread. */
const aos_principal_t *auth_users_find(aos_auth_t *a, const char *user_id);
/* 1 if principal "user:<id>" exists (for POST /rbac/grants). */
int auth_user_exists(const aos_auth_t *a, const char *id);
void auth_users_free(aos_auth_t *a);
int auth_users_add_routes(aos_auth_t *a, aos_http_t *h);

/* routes.c: a change of tokens, grants or roles, written by a store job
 * in one transaction with its audit row; the job reads the rows back and
 * its done callback applies them and answers req (201 for a creation). */
enum auth_job_op {
    OP_TOKEN_CREATE,
    OP_TOKEN_REVOKE,
    OP_GRANT_PUT,
    OP_GRANT_DELETE,
    OP_ROLE_CREATE,
    OP_ROLE_UPDATE,
    OP_ROLE_DELETE
};

struct auth_job {
    aos_auth_t *a;
    aos_http_req_t *req; /* NULL once the client went away */
    enum auth_job_op op;
    char actor[64];
    char id[72];     /* the token, grant or role changed */
    json_t *token;   /* OP_TOKEN_CREATE: {name, role, prefix, hash, expires_at} */
    json_t *grants;  /* [{id, principal, role, resource}] to put */
    json_t *role;    /* OP_ROLE_*: {description?, grants?} to write (grants as JSON text) */
    json_t *diff;    /* OP_ROLE_*: the audit row's diff */
    json_t *answer;  /* the response on success */
    auth_rows_t now; /* read back in the job */
    /* a token aosd mints for itself (aos_auth_token_mint/_revoke): no req */
    aos_auth_minted_fn cb;
    void *cb_data;
};

/* A job of op for req (may be NULL), the actor taken from its caller. */
struct auth_job *auth_job_new(aos_auth_t *a, aos_http_req_t *req, enum auth_job_op op);
/* Submits j (taken, also on failure: then a negative AOS_E* code). */
int auth_job_submit(struct auth_job *j);
void auth_job_free(struct auth_job *j);

/* roles.c: GET/POST /rbac/roles, PATCH/DELETE /rbac/roles/:name; the
 * transaction of an OP_ROLE_* job (store thread). */
int auth_roles_add_routes(aos_auth_t *a, aos_http_t *h);
int auth_role_tx(aos_store_t *st, struct auth_job *j, aos_err_t *err);

#endif
