/* internal.h - what auth.c and routes.c share: the authorizer's state and
 * the helpers that load tokens and grants. Loop thread unless said. */
#ifndef AOS_AUTH_INTERNAL_H
#define AOS_AUTH_INTERNAL_H

#include "auth/auth.h"
#include "map/map.h"

#include <jansson.h>
#include <stdint.h>

/* An address range: family, address bytes (4 or 16 used), prefix length. */
typedef struct {
    int family;
    unsigned char addr[16];
    unsigned bits;
} cidr_t;

struct aos_auth_s {
    aos_store_t *store; /* borrowed */
    aos_http_t *http;   /* borrowed, once routes are added: to close streams */
    int mcp_anonymous;
    aos_map_t by_hash; /* token hash -> aos_principal_t (revoked ones too) */
    aos_map_t by_id;   /* token id -> the same aos_principal_t */
    json_t *grants;    /* the stored grants, [{id, principal, role, resource, ...}] */
    aos_principal_t anonymous;
    aos_principal_t scraper; /* no role: an allowed address on AOS_PERM_METRICS */
    cidr_t *scrape;          /* addresses that may scrape without a token */
    size_t nscrape;
};

/* Every token and grant from the store (start-up, or a store job: any
 * thread with the store). */
int auth_load_rows(aos_store_t *st, json_t **tokens, json_t **grants, aos_err_t *err);
/* Makes a's tokens and grants those rows (both stolen); a token already in
 * memory keeps its address, so requests holding it see the change. */
void auth_apply_rows(aos_auth_t *a, json_t *tokens, json_t *grants);
/* Unix ms now; ISO-8601 UTC with milliseconds of ms (as the store writes).
 * Any thread. */
int64_t auth_now_ms(void);
void auth_iso_fmt(int64_t ms, char *buf, size_t cap);

#endif
