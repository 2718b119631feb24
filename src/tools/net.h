/* net.h - the built-in MCP servers "git" and "http" of issue 14.
 *
 * git (git.c): init, status, diff, log, add, commit, branch, checkout on a
 * repository inside the caller's workspace (caps "workspace": a task's
 * DATA/workspaces/<trace_id>/, or a directory an admin grants), with
 * libgit2. Work runs on the libuv thread pool; done runs on the loop.
 *
 * http (http.c): get, post, put, delete to the hosts the caller's caps allow,
 * caps {"http": {"allow_hosts": ["example.com", ".example.org", "*"],
 * "allow_private": false}}. Every address a connection is opened to - after
 * DNS resolution, on every redirect hop - is classified here and refused
 * unless public (or caps allow private ones); the check runs in curl's
 * open-socket callback, on the very address then connected to, so DNS
 * rebinding between check and connect cannot slip through. Transfers run on
 * the loop through src/httpc (curl multi, threaded resolver).
 *
 * Caps: NULL (a REST or MCP client, limited by its role only) lets http reach
 * any public host and gives git no workspace; an object (a task, or caps an
 * admin set on /mcp/call) grants only what it names.
 *
 * Threading: everything here is called on the loop thread, except the pure
 * classifiers, which any thread may call. */
#ifndef AOS_TOOLS_NET_H
#define AOS_TOOLS_NET_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "builtin/builtin.h"
#include "err/err.h"
#include "httpc/httpc.h"
#include "store/store.h"

/* ---- git ------------------------------------------------------------------ */

typedef struct aos_tools_git_s aos_tools_git_t;

/* Initialises libgit2 (no global or system git configuration is read) and
 * makes the server. 0, or AOS_ENOMEM / AOS_EINTERNAL with err set. */
int aos_tools_git_new(aos_tools_git_t **out, uv_loop_t *loop, aos_err_t *err);
/* The built-in server "git", valid until aos_tools_git_free. */
const aos_builtin_t *aos_tools_git_builtin(aos_tools_git_t *g);
/* Frees g. Calls still running on the thread pool finish on their own (they
 * do not use g). g may be NULL. */
void aos_tools_git_free(aos_tools_git_t *g);

/* ---- http ----------------------------------------------------------------- */

typedef struct aos_tools_http_s aos_tools_http_t;

typedef struct {
    uv_loop_t *loop;      /* borrowed */
    aos_httpc_t *httpc;   /* borrowed; outlives every call (aos_httpc_free ends them) */
    const char *data_dir; /* copied: idempotency records go to <data_dir>/idempotency/http/ */
    /* Request header values that name a runtime secret, {"secret": "S"},
     * or a project variable, {"var": "V"} (resolved to its secret through
     * the project variables of the caller's caps.project, read from store),
     * are opened when the request is made, with open_secret: it checks
     * that acting (the caller's principal, or for a task's call the
     * principal it acts for) may use secret S and opens it for project
     * (NULL: none), returning guarded memory (aos_secret_wipe) or NULL with
     * err (AOS_EFORBIDDEN, AOS_ENOTFOUND, ...; never quoting a value).
     * NULL open_secret or store: such headers are refused. Loop thread. */
    aos_store_t *store; /* borrowed */
    char *(*open_secret)(const char *acting, const char *secret, const char *project, size_t *len,
                         aos_err_t *err, void *data);
    void *open_data;
} aos_tools_http_cfg_t;

int aos_tools_http_new(aos_tools_http_t **out, const aos_tools_http_cfg_t *cfg, aos_err_t *err);
/* The built-in server "http", valid until aos_tools_http_free. */
const aos_builtin_t *aos_tools_http_builtin(aos_tools_http_t *h);
/* Frees h, after aos_httpc_free has ended its transfers. h may be NULL. */
void aos_tools_http_free(aos_tools_http_t *h);

/* What an IP address is, for the SSRF check. Only AOS_ADDR_PUBLIC is
 * reachable unless caps allow private addresses. */
typedef enum {
    AOS_ADDR_PUBLIC = 0,
    AOS_ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
    AOS_ADDR_LOOPBACK,    /* 127.0.0.0/8, ::1 */
    AOS_ADDR_PRIVATE,     /* 10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10 */
    AOS_ADDR_LINK_LOCAL,  /* 169.254/16, fe80::/10 */
    AOS_ADDR_CGNAT,       /* 100.64/10 (shared address space) */
    AOS_ADDR_MULTICAST,   /* 224/4, ff00::/8 */
    AOS_ADDR_MAPPED,      /* ::ffff:0:0/96, IPv4-mapped IPv6, whatever the IPv4 */
    AOS_ADDR_RESERVED,    /* 192.0.0/24, documentation, benchmarking, 240/4,
                             broadcast, 100::/64, 2001:db8::/32, 2001::/32 Teredo,
                             and IPv6 forms embedding a non-public IPv4 */
} aos_addr_class_t;

/* The class of an IPv4 address given in network byte order (as in
 * struct in_addr). Pure; any thread. */
aos_addr_class_t aos_tools_addr_class4(const uint8_t a[4]);
/* The class of an IPv6 address. IPv4-compatible (::a.b.c.d), NAT64
 * (64:ff9b::/96, 64:ff9b:1::/48) and 6to4 (2002::/16) addresses take the
 * class of the IPv4 address they embed (non-public ones as RESERVED, or
 * their own class when loopback/private...). Pure; any thread. */
aos_addr_class_t aos_tools_addr_class6(const uint8_t a[16]);
/* The class of a socket address; AOS_ADDR_RESERVED for a family other than
 * AF_INET/AF_INET6 or a short length. Pure; any thread. */
aos_addr_class_t aos_tools_addr_class(const struct sockaddr *sa, size_t len);
/* "public", "loopback", ... */
const char *aos_tools_addr_class_name(aos_addr_class_t c);

/* Whether host (as in a URL: a name, an IPv4 literal or a bracketed IPv6
 * literal; any case, one trailing dot ignored) matches one of the patterns
 * of allow (a JSON array of strings): "*" matches every host, ".example.org"
 * (or "*.example.org") every name below example.org but not example.org
 * itself, anything else exactly that host. IP literals match only an exact
 * entry ("127.0.0.1", "[::1]" or "::1"). 1 or 0. Pure; any thread. */
int aos_tools_host_allowed(const json_t *allow, const char *host);

#endif
