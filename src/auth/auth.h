/* auth.h - who is calling and what they may do: API tokens, roles, grants
 * and the authorizer that the HTTP server runs before every route.
 *
 * Tokens are random ("aos_" + 43 chars) and stored only as BLAKE2b hashes.
 * A request carries one in 'Authorization: Bearer <token>', parsed exactly
 * (scheme case-insensitive, one or more spaces, a token of visible ASCII,
 * nothing after it); the authorizer runs on the request head, before any
 * body byte is read. An expired or revoked token is refused (401) with a
 * message that says so; a revoked token's open streams are closed at once.
 *
 * Decisions (aos_auth_check) are separate from HTTP: a principal (a token,
 * the anonymous MCP client, a task) has a role on "system" (or none) and
 * grants, each a role on a resource pattern. Resources are "system" or
 * "<kind>:<name>" with kind project, task, agent, tool ("<server>__<tool>")
 * or secret; a grant's name may end in '*' (a prefix: "tool:files__*",
 * "task:*"). Roles, from least to most: Viewer (read), Operator (read and
 * operate: run tasks, call tools, publish), Admin (also administer: the
 * registry, tokens, grants, the audit log), Owner (everything). The role on
 * system holds on every resource; a grant only on the resources its
 * pattern matches. Deny by default. docs/RBAC.md has the whole table.
 *
 * /metrics needs a Viewer, or no token at all from an address in the
 * scrape list (aos_auth_allow_scrape), as Prometheus servers scrape. With
 * mcp_anonymous set, loopback clients without a token reach the MCP
 * endpoints as the principal "anonymous" with a configurable role on
 * system (Viewer by default: it may list, not call).
 *
 * Loop thread, except aos_auth_bootstrap (start-up, before the loop runs)
 * and aos_auth_check, which is pure and reads only the principal. */
#ifndef AOS_AUTH_H
#define AOS_AUTH_H

#include <stdint.h>

#include "err/err.h"
#include "http/http.h"
#include "secret/secret.h"
#include "store/store.h"

#include <uv.h>

typedef enum {
    AOS_ROLE_NONE = 0,
    AOS_ROLE_VIEWER,
    AOS_ROLE_OPERATOR,
    AOS_ROLE_ADMIN,
    AOS_ROLE_OWNER
} aos_role_t;

/* Resource kinds; AOS_RES_SYSTEM is the whole system. */
typedef enum {
    AOS_RES_SYSTEM = 0,
    AOS_RES_PROJECT,
    AOS_RES_TASK,
    AOS_RES_AGENT,
    AOS_RES_TOOL,
    AOS_RES_SECRET,
    AOS_RES_KINDS
} aos_res_kind_t;

/* The longest resource name (after "<kind>:") in a grant or a check. */
#define AOS_AUTH_RESOURCE_MAX 200
/* The most grants one token may be created with. */
#define AOS_AUTH_TOKEN_GRANTS_MAX 256

/* A principal's compiled grants of one kind: exact names sorted (bsearch);
 * prefixes in an open-addressing hash table (FNV-1a of the prefix) with
 * the distinct prefix lengths, so a name is checked against its own
 * prefixes of those lengths, hashed as it is read once. Opaque to callers. */
typedef struct {
    char *s; /* NULL: an empty slot */
    uint64_t h;
    uint16_t len;
    aos_role_t role;
} aos_grant_prefix_t;

typedef struct {
    char **exact;
    aos_role_t *exact_role;
    size_t nexact;
    aos_grant_prefix_t *ptab; /* pcap slots, a power of two, at most half full */
    size_t pcap, nprefix;
    uint16_t *lens; /* distinct prefix lengths, ascending */
    size_t nlens;
} aos_grant_index_t;

typedef struct aos_principal_s {
    char id[40];          /* a token's or user's id; "anonymous", "scraper", "task:<trace>" */
    char kind[8];         /* "token", "user" (a browser session's user); "" for the others */
    char name[64];        /* the token's name */
    aos_role_t role;      /* on system (every resource), grants on "system" included */
    aos_role_t base_role; /* the token's own role on system, grants left out */
    aos_grant_index_t grants[AOS_RES_KINDS];
    size_t ngrants;     /* grants in all */
    int64_t expires_ms; /* Unix ms; 0: never */
    int revoked;
    /* for GET /auth/tokens (loop thread) */
    char prefix[16];
    char created_by[64];
    char created_at[32];
    int64_t last_used_ms;  /* Unix ms of the last request, in memory */
    int64_t last_saved_ms; /* what the store has */
} aos_principal_t;

typedef struct aos_auth_s aos_auth_t;

/* The longest token accepted in 'Authorization: Bearer <token>' (and as a
 * bootstrap token); tokens are 1 to this many visible ASCII characters. */
#define AOS_AUTH_TOKEN_MAX 256

/* anonymous_role: the role on system of the anonymous MCP client
 * (mcp_anonymous set; AOS_ROLE_NONE means Viewer). */
int aos_auth_new(aos_auth_t **out, aos_store_t *st, int mcp_anonymous, aos_role_t anonymous_role,
                 aos_err_t *err);
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
/* "viewer", "operator", "admin", "owner" (any case); "none" and anything
 * else: AOS_ROLE_NONE. */
aos_role_t aos_role_parse(const char *s);
/* The least role that has perm (AOS_PERM_READ -> Viewer, ...). */
aos_role_t aos_auth_role_for(aos_perm_t perm);

/* --- decisions --------------------------------------------------------- */

/* Whether p may do perm on resource: 0, or AOS_EFORBIDDEN (p NULL, an
 * unknown or malformed resource, or no right). resource is "system" or
 * "<kind>:<name>"; a name ending in '*' asks for all the names it
 * matches, which only the role on system or a grant whose pattern covers
 * it ("tool:ev__*" covers "tool:ev__*" and "tool:ev__a*") gives.
 * AOS_PERM_PUBLIC is always allowed; AOS_PERM_MCP and AOS_PERM_ANY need
 * any right at all (a role or a grant). Pure (reads p only); any thread. */
int aos_auth_check(const aos_principal_t *p, aos_perm_t perm, const char *resource);

/* Whether p may do perm on at least one resource of kind: its role on
 * system, or one grant of that kind with a role that has perm. 0 or
 * AOS_EFORBIDDEN. Pure; any thread. */
int aos_auth_check_some(const aos_principal_t *p, aos_perm_t perm, aos_res_kind_t kind);
/* A task belongs to its project: p may do perm on the task trace when it
 * may on "task:<trace>", or on "project:<project>" (project NULL or "":
 * the task is in no project). 0 or AOS_EFORBIDDEN. Pure; any thread. */
int aos_auth_check_task(const aos_principal_t *p, aos_perm_t perm, const char *trace,
                        const char *project);

/* Checks a resource pattern as a grant may hold it: "system" or
 * "<kind>:<name>[*]" (name: 1 to AOS_AUTH_RESOURCE_MAX of A-Z a-z 0-9
 * . _ - @ / :, a single '*' only at the end; "<kind>:*" is all of a kind).
 * 0 or AOS_EINVAL with err naming what is wrong. Any thread. */
int aos_auth_resource_check(const char *resource, aos_err_t *err);

/* The narrower of two resource patterns (each "system" or as
 * aos_auth_resource_check takes them) when one covers the other: every
 * name it matches, both match. NULL when they share no name (prefix
 * patterns either nest or are disjoint, so there is no third case).
 * "system" covers everything. Returns a or b itself. Pure; any thread. */
const char *aos_auth_resource_meet(const char *a, const char *b);

/* --- custom roles ----------------------------------------------------------
 * A custom role is a named, stored set of grants ({built-in role, resource
 * pattern}) that a principal is granted as one: a grant whose role is the
 * custom role's name gives each of its grants narrowed to the grant's
 * resource (aos_auth_resource_meet; "system": as they are). Changing the
 * role changes what every grant of it gives, at once. docs/RBAC.md. */
#define AOS_AUTH_ROLE_NAME_MAX 64
/* The most grants in one custom role, and the most custom roles. */
#define AOS_AUTH_ROLE_GRANTS_MAX 256
#define AOS_AUTH_ROLES_MAX       1000
/* A custom role's name: 1 to AOS_AUTH_ROLE_NAME_MAX of a-z 0-9 . _ -,
 * beginning with a letter, and not a built-in role's ("none" included).
 * 0 or AOS_EINVAL with err saying which. Any thread. */
int aos_auth_role_name_check(const char *name, aos_err_t *err);

/* Adds one grant (role on resource, already checked) to p's index. Not for
 * a principal that requests are using on another thread. 0 or AOS_ENOMEM. */
int aos_auth_principal_grant(aos_principal_t *p, aos_role_t role, const char *resource);
/* Releases what p's grants hold (not p itself). */
void aos_auth_principal_release(aos_principal_t *p);

/* --- users and browser sessions (users.c) ----------------------------------
 * Users log in with a name and password (and a TOTP code once they enrolled
 * one) at POST /auth/login and get a session cookie; see docs/RBAC.md. */
typedef struct {
    uv_loop_t *loop;        /* runs password hashing on its thread pool */
    aos_secret_box_t *box;  /* seals TOTP secrets */
    unsigned idle_s;        /* a session ends after this long unused; 0: 1800 */
    unsigned max_age_s;     /* and after this long anyway; 0: 43200 */
    int cookie_secure;      /* Secure on plain HTTP too (a TLS proxy in front) */
    unsigned lockout_after; /* failures that lock a name or address; 0: 10 */
    unsigned lockout_s;     /* how long; the longest back-off; 0: 900 */
} aos_auth_login_cfg_t;

/* Loads the users and open sessions (start-up, before the loop runs). */
int aos_auth_login_start(aos_auth_t *a, const aos_auth_login_cfg_t *cfg, aos_err_t *err);

/* --- HTTP ----------------------------------------------------------------- */

/* An aos_http_authorize_fn; data is the aos_auth_t. Checks the route's
 * permission on its resource ("{param}" filled in from the path). A
 * resource ending in "|project" ("task:{trace}|project", "system|project")
 * also lets in a principal that has the permission on some project: the
 * route's handler then checks the project of what it touches
 * (aos_auth_req_check_task), before it reads or changes anything. */
int aos_auth_authorize(aos_http_req_t *req, aos_perm_t perm, aos_err_t *err, void *data);
/* The caller of an authorized request (never NULL after authorization). */
const aos_principal_t *aos_auth_principal(const aos_http_req_t *req);
/* Who p is, as audit rows, requesters and owners name it: "token:<id>",
 * "user:<id>" (a browser session's user), or the id itself for the
 * principals of no kind ("anonymous", "scraper", "task:<trace>");
 * "anonymous" for NULL. Written to buf (n bytes, truncated); returns buf.
 * Pure; any thread. */
const char *aos_auth_actor(const aos_principal_t *p, char *buf, size_t n);
/* Who p is, by name, for a span (aos.principal) and the topology's client
 * nodes: "token:<name>" (the id when the token has no name),
 * "agent:<agent>" for a token minted for an agent (AOS_AUTH_MINTED_PREFIX),
 * "user:<name>", or the id of a principal of no kind ("anonymous",
 * "scraper", "task:<trace>"); never a secret. Pure; any thread. */
const char *aos_auth_display(const aos_principal_t *p, char *buf, size_t n);
/* The principal whose id is id (a token's id - also as "token:<id>", the
 * form aos_auth_actor writes -, a user's with a live browser session -
 * also as "user:<id>" -, or "anonymous" when the
 * anonymous MCP client is allowed), as tool calls name their caller; NULL
 * when there is none or its token is revoked or expired (its sessions
 * ended). Loop thread: the
 * pointer is valid until the loop next applies token changes. */
const aos_principal_t *aos_auth_find(aos_auth_t *a, const char *id);
/* aos_auth_check for the caller of req. */
int aos_auth_req_check(const aos_http_req_t *req, aos_perm_t perm, const char *resource);
/* aos_auth_check_task for the caller of req. */
int aos_auth_req_check_task(const aos_http_req_t *req, aos_perm_t perm, const char *trace,
                            const char *project);

/* --- tokens aosd mints for processes of its own (an agent's runtime) ---
 * Their names begin with AOS_AUTH_MINTED_PREFIX, which POST /auth/tokens
 * refuses. A token with no role and an Operator grant on each of resources
 * ("tool:<pattern>": it may call those tools; "project:<id>": it may run
 * tasks in that project; no other kind): it may do exactly that (and
 * nothing else). Stored, audited (auth.token.create by actor) and applied
 * like a token a client creates; cb runs once, later, with the token's id
 * and the token itself (a secret: borrowed for the call; status 0), or an
 * error. The resources are borrowed for the call. 0, or an error and cb
 * never runs. */
#define AOS_AUTH_MINTED_PREFIX "agent:"
typedef void (*aos_auth_minted_fn)(int status, const aos_err_t *err, const char *id,
                                   const char *token, void *data);
int aos_auth_token_mint(aos_auth_t *a, const char *name, const char *const *resources,
                        const char *actor, aos_auth_minted_fn cb, void *data, aos_err_t *err);
/* Revokes token id (audited as auth.token.revoke by actor) and closes its
 * streams; cb (may be NULL) runs once, later, with token NULL. */
int aos_auth_token_revoke(aos_auth_t *a, const char *id, const char *actor, aos_auth_minted_fn cb,
                          void *data, aos_err_t *err);
/* Revokes every minted token not revoked yet (at start-up: those a
 * previous aosd that died could not revoke); returns how many. */
size_t aos_auth_token_revoke_minted(aos_auth_t *a, const char *actor);

/* Adds GET /auth/me, GET/POST /auth/tokens, DELETE /auth/tokens/:id,
 * GET/POST /rbac/roles, PATCH/DELETE /rbac/roles/:name, GET /rbac/routes,
 * GET/POST /rbac/grants and DELETE /rbac/grants/:id; remembers h to close a revoked token's
 * streams. Also logs, once, what the anonymous MCP client may do. */
int aos_auth_add_routes(aos_auth_t *a, aos_http_t *h);

#endif
