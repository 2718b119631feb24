/* audit.h - the audit log's routes: GET /audit/logs (paged, filtered) and
 * GET /audit/verify (the hash chain, checked on the store's worker in
 * chunks). Both need Admin. The rows and the chain are the store's
 * (store.h, aos_store_audit_*); every module appends its own rows there,
 * in the transaction of the change. Loop thread only.
 *
 * GET /audit/logs?actor=&action=&resource=&from=&to=&limit=&cursor=
 *   actor exact; action exact, or a prefix when it ends with '*'
 *   ("auth.*"); resource a prefix; from/to ISO-8601 (a date, or a date
 *   and time with Z or an offset): created_at >= from and < to; limit
 *   1..500 (50). Newest first: {"items": [...], "next_cursor": "..."|null};
 *   pass next_cursor as cursor for the next page. A bad value gets 400
 *   naming the field. ("before=<id>" is the cursor's older name.)
 * GET /audit/verify?from=&to=
 *   Rows from..to by id (default: all). {"ok": true, "checked": N,
 *   "head": {"id", "hash"}, "took_ms"} or {"ok": false, "checked": N
 *   (intact rows before it), "broken": {"id", "reason"}, "head", "took_ms"};
 *   200 either way.
 *   At most AOS_AUDIT_VERIFY_MAX run at once (503 beyond). */
#ifndef AOS_AUDIT_H
#define AOS_AUDIT_H

#include "http/http.h"
#include "store/store.h"

#include <uv.h>

#define AOS_AUDIT_VERIFY_MAX   2
#define AOS_AUDIT_VERIFY_CHUNK 20000 /* rows per store job */

typedef struct aos_audit_s aos_audit_t;

/* store is borrowed and must outlive a. */
aos_audit_t *aos_audit_new(aos_store_t *store);
/* Retention: every hour (and a minute after this call), rows older than
 * days are deleted, oldest first, AOS_AUDIT_PRUNE_ROWS per store job, and
 * the chain keeps an anchor (aos_store_audit_prune: a deletion is itself
 * an audit row). days 0: kept for ever (nothing starts). Loop thread. */
#define AOS_AUDIT_PRUNE_ROWS 10000
int aos_audit_retain(aos_audit_t *a, uv_loop_t *loop, unsigned days);
/* Stops retention (its timer is closed: the loop can end). May be NULL. */
void aos_audit_stop(aos_audit_t *a);
int aos_audit_add_routes(aos_audit_t *a, aos_http_t *http);
/* After the store is closed (no job of a's may be pending). May be NULL. */
void aos_audit_free(aos_audit_t *a);

#endif
