/* api.c - health, metrics and the UI's files (the audit routes are
 * src/audit's). /metrics needs a Viewer, or
 * an address allowed to scrape (--metrics-allow; see auth.h). */
#include "api/api.h"
#include "buf/buf.h"

#include <stdlib.h>
#include <string.h>

/* The files of web/, embedded by cmake/embed.cmake (same layout as there). */
typedef struct {
    const char *name;
    const unsigned char *data;
    size_t len;
} aos_web_file_t;
extern const aos_web_file_t aos_web_files[];

static const char *mime_of(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (dot && !strcmp(dot, ".html"))
        return "text/html; charset=utf-8";
    if (dot && !strcmp(dot, ".js"))
        return "text/javascript; charset=utf-8";
    if (dot && !strcmp(dot, ".css"))
        return "text/css; charset=utf-8";
    if (dot && !strcmp(dot, ".svg"))
        return "image/svg+xml";
    return "application/octet-stream";
}

/* GET / and GET /ui/<file>: the browser UI's static files. */
static int web(aos_http_req_t *req, void *data)
{
    const char *name = aos_http_param(req, "*");
    if (!name)
        name = "index.html";
    for (const aos_web_file_t *f = aos_web_files; f->name; f++) {
        if (!strcmp(f->name, name)) {
            aos_http_add_header(req, "Cache-Control", "no-cache");
            return aos_http_respond(req, 200, mime_of(f->name), f->data, f->len);
        }
    }
    return aos_http_respond_error(req, AOS_ENOTFOUND, "no file '%.100s'", name);
}

static int healthz(aos_http_req_t *req, void *data)
{
    aos_api_t *api = data;
    uint64_t up = uv_hrtime() / 1000000 - api->started_ms;
    return aos_http_respond_json(
        req, 200,
        json_pack("{s:s, s:s, s:s, s:I}", "status", "ok", "version", api->version, "store",
                  aos_store_backend_name(api->store), "uptime_ms", (json_int_t)up));
}

/* GET /metrics: rendered on the loop; the series are bounded (metrics.h),
 * so is the time. */
static int metrics(aos_http_req_t *req, void *data)
{
    aos_api_t *api = data;
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = aos_metrics_render(api->metrics, &b);
    if (rc == 0)
        rc = aos_http_respond(req, 200, "text/plain; version=0.0.4; charset=utf-8",
                              b.ptr ? b.ptr : "", b.len);
    aos_buf_release(&b);
    return rc;
}

static const aos_http_route_t routes[] = {
    {"GET", "/", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/ui/*", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/healthz", AOS_PERM_PUBLIC, healthz, 0, NULL},
    {"GET", "/metrics", AOS_PERM_METRICS, metrics, 0, NULL},
};

int aos_api_add_routes(aos_api_t *api, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), api);
}
