/* api.c - health, metrics and audit routes. /metrics needs a Viewer, or
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

/* GET /audit/logs?before=ID&limit=N: read on the store's worker. */
struct audit_job {
    aos_http_req_t *req;
    int64_t before;
    int limit;
    json_t *rows;
};

static void audit_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((struct audit_job *)data)->req = NULL;
}

static int audit_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct audit_job *j = arg;
    return aos_store_audit_list(st, j->before, j->limit, &j->rows, err);
}

static void audit_done(int status, const aos_err_t *err, void *arg)
{
    struct audit_job *j = arg;
    if (j->req) {
        aos_http_on_close(j->req, NULL, NULL);
        if (status)
            aos_http_respond_err(j->req, err);
        else
            aos_http_respond_json(j->req, 200, json_pack("{s:O}", "items", j->rows));
    }
    json_decref(j->rows);
    free(j);
}

static int audit_logs(aos_http_req_t *req, void *data)
{
    aos_api_t *api = data;
    const char *b = aos_http_query(req, "before");
    const char *l = aos_http_query(req, "limit");
    char *end = NULL;
    long long before = b ? strtoll(b, &end, 10) : 0;
    if (b && (*b == '\0' || *end || before < 0))
        return aos_http_respond_error(req, AOS_EINVAL, "'before' must be a positive id");
    long limit = l ? strtol(l, &end, 10) : 50;
    if (l && (*l == '\0' || *end || limit < 1 || limit > 500))
        return aos_http_respond_error(req, AOS_EINVAL, "'limit' must be from 1 to 500");
    struct audit_job *j = calloc(1, sizeof(*j));
    if (!j)
        return AOS_ENOMEM;
    j->req = req;
    j->before = before;
    j->limit = (int)limit;
    aos_http_on_close(req, audit_closed, j);
    int rc = aos_store_submit(api->store, audit_run, audit_done, j);
    if (rc) {
        aos_http_on_close(req, NULL, NULL);
        free(j);
    }
    return rc;
}

static const aos_http_route_t routes[] = {
    {"GET", "/", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/ui/*", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/healthz", AOS_PERM_PUBLIC, healthz, 0, NULL},
    {"GET", "/metrics", AOS_PERM_METRICS, metrics, 0, NULL},
    {"GET", "/audit/logs", AOS_PERM_ADMIN, audit_logs, 0, NULL},
};

int aos_api_add_routes(aos_api_t *api, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), api);
}
