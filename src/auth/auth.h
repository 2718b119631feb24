/* auth.h - who is calling: API tokens, roles and the authorizer that the
 * HTTP server runs before every route.
 *
 * Tokens are random ("aos_" + 43 chars) and stored only as BLAKE2b hashes.
 * A request carries one in 'Authorization: Bearer <token>', parsed exactly
 * (scheme case-insensitive, one or more spaces, a token of visible ASCII,
 * nothing after it); the authorizer runs on the request head, before any
 * body byte is read.
 * Roles, from most to least: Owner, Admin, Operator, Viewer. A route's
 * aos_perm_t names the least role allowed. MCP endpoints need an Operator;
 * with mcp_anonymous set, loopback clients without a token are let in as
 * the Operator "anonymous" (for clients that cannot send headers).
 * /metrics needs a Viewer, or no token at all from an address in the
 * scrape list (aos_auth_allow_scrape), as Prometheus servers scrape.
 *
 * Loop thread, except aos_auth_bootstrap (start-up, before the loop runs). */
#ifndef AOS_AUTH_H
#define AOS_AUTH_H

#include "err/err.h"
#include "http/http.h"
#include "store/store.h"

typedef enum {
    AOS_ROLE_NONE = 0,
    AOS_ROLE_VIEWER,
    AOS_ROLE_OPERATOR,
    AOS_ROLE_ADMIN,
    AOS_ROLE_OWNER
} aos_role_t;

typedef struct {
    char id[40];
    char name[64];
    aos_role_t role;
} aos_principal_t;

typedef struct aos_auth_s aos_auth_t;

/* The longest token accepted in 'Authorization: Bearer <token>' (and as a
 * bootstrap token); tokens are 1 to this many visible ASCII characters. */
#define AOS_AUTH_TOKEN_MAX 256

int aos_auth_new(aos_auth_t **out, aos_store_t *st, int mcp_anonymous, aos_err_t *err);
void aos_auth_free(aos_auth_t *a);

/* On first start (no token stored): stores the Owner token, either token
 * (when given) or a new one returned in *generated (caller frees, shows it
 * once). Later starts leave the stored tokens alone. */
int aos_auth_bootstrap(aos_auth_t *a, const char *token, char **generated, aos_err_t *err);

/* Lets addresses in cidrs ("127.0.0.1/8,::1,10.1.0.0/16": IPv4 or IPv6,
 * comma-separated, a bare address meaning just it) read routes of
 * AOS_PERM_METRICS without a token. Replaces an earlier list; AOS_EINVAL
 * with err naming the entry if one is malformed (the list is then
 * unchanged). An IPv4 peer reached over IPv6 (::ffff:a.b.c.d) matches as
 * IPv4. */
int aos_auth_allow_scrape(aos_auth_t *a, const char *cidrs, aos_err_t *err);
/* What aos_auth_allow_scrape would say of cidrs, without an aos_auth_t:
 * for checking a flag before start-up. Any thread. */
int aos_auth_scrape_list_check(const char *cidrs, aos_err_t *err);
/* 1 if addr (the text of a peer address) is in the scrape list. */
int aos_auth_may_scrape(const aos_auth_t *a, const char *addr);

const char *aos_role_name(aos_role_t r);
aos_role_t aos_role_parse(const char *s);

/* An aos_http_authorize_fn; data is the aos_auth_t. */
int aos_auth_authorize(aos_http_req_t *req, aos_perm_t perm, aos_err_t *err, void *data);
/* The caller of an authorized request (never NULL after authorization). */
const aos_principal_t *aos_auth_principal(const aos_http_req_t *req);

#endif
