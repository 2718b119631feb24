/* api.h - aosd's own REST routes: health, metrics and the UI (the audit
 * view is src/audit's).
 * The gateway registers its routes itself (gateway.h). Loop thread only. */
#ifndef AOS_API_H
#define AOS_API_H

#include "http/http.h"
#include "metrics/metrics.h"
#include "store/store.h"

typedef struct {
    aos_metrics_t *metrics; /* borrowed */
    aos_store_t *store;     /* borrowed */
    const char *version;
    uint64_t started_ms;
} aos_api_t;

int aos_api_add_routes(aos_api_t *api, aos_http_t *http);

#endif
