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
    aos_principal_t anonymous;
    aos_principal_t scraper;    /* no role: an allowed address on AOS_PERM_METRICS */
    aos_cidr_list_t scrape;     /* addresses that may scrape without a token */
    struct auth_users_s *users; /* users and browser sessions (users.c); NULL until started */
};

/* Every token and grant from the store (start-up, or a store job: any
 * thread with the store). */
int auth_load_rows(aos_store_t *st, json_t **tokens, json_t **grants, aos_err_t *err);
/* Makes a's tokens and grants those rows (both stolen); a token already in
 * memory keeps its address, so requests holding it see the change. */
void auth_apply_rows(aos_auth_t *a, json_t *tokens, json_t *grants);
/* A stored ISO-8601 time -> Unix ms; 0 for NULL or anything else. */
int64_t auth_iso_ms(const char *s);

/* Shared by routes.c and users.c (loop thread). */
void auth_random_id(char *out, size_t cap, const char *prefix);
aos_perm_t auth_perm_of_role(aos_role_t r);
int auth_only_fields(const json_t *obj, const char *const *known, const char *what, aos_err_t *err);
int auth_role_field(const json_t *v, int none_ok, const char *what, aos_role_t *out,
                    aos_err_t *err);
int auth_grant_field(const aos_principal_t *caller, const json_t *g, size_t i, aos_role_t *role,
                     const char **resource, aos_err_t *err);
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
/* 1 if principal "user:<id>" exists (for POST /rbac/grants). */
int auth_user_exists(const aos_auth_t *a, const char *id);
void auth_users_free(aos_auth_t *a);
int auth_users_add_routes(aos_auth_t *a, aos_http_t *h);

#endif
