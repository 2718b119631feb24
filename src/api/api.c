/* api.c - the browser UI's files, health and metrics (the audit routes are
 * src/audit's). /metrics needs a Viewer, or an address allowed to scrape
 * (--metrics-allow; see auth.h). */
#include "api/api.h"
#include "buf/buf.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* The browser UI, built by web/build.mjs and embedded by cmake/embed.cmake:
 * index.html, and assets whose names carry their content's hash (so they
 * never change: cached for a year, "immutable"), each with a gzip (.gz) and
 * a brotli (.br) copy. A request gets the copy its Accept-Encoding takes
 * (br, else gzip, else the file itself) with Vary: Accept-Encoding, and an
 * ETag (FNV-1a of the bytes sent) that If-None-Match turns into a 304.
 * index.html is "no-cache": revalidated each time, so a new build's asset
 * names are seen at once; it carries a Content-Security-Policy. */
typedef struct {
    const char *name;
    const unsigned char *data;
    size_t len;
} aos_web_file_t;
extern const aos_web_file_t aos_web_files[];

/* The page loads only its own files and talks only to aosd; artifacts are
 * shown from blob: URLs. */
#define WEB_CSP                                                                                    \
    "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; "         \
    "form-action 'self'; frame-ancestors 'none'"

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
    if (dot && !strcmp(dot, ".png"))
        return "image/png";
    return "application/octet-stream";
}

/* The embedded file named name + suffix. */
static const aos_web_file_t *web_find(const char *name, const char *suffix)
{
    size_t n = strlen(name), m = strlen(suffix);
    for (const aos_web_file_t *f = aos_web_files; f->name; f++)
        if (strlen(f->name) == n + m && !memcmp(f->name, name, n) && !strcmp(f->name + n, suffix))
            return f;
    return NULL;
}

/* FNV-1a of a file's bytes, computed once per file (loop thread only). */
#define WEB_ETAGS 64
static uint64_t web_etag(const aos_web_file_t *f)
{
    static uint64_t cache[WEB_ETAGS];
    size_t i = (size_t)(f - aos_web_files);
    if (i < WEB_ETAGS && cache[i])
        return cache[i];
    uint64_t h = 14695981039346656037ULL;
    for (size_t k = 0; k < f->len; k++)
        h = (h ^ f->data[k]) * 1099511628211ULL;
    h |= 1; /* never 0, the cache's "not yet" */
    if (i < WEB_ETAGS)
        cache[i] = h;
    return h;
}

static int ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && !strcmp(s + n - m, tail);
}

/* Whether an Accept-Encoding header takes coding: listed (or "*") and its
 * q not zero (RFC 9110 12.5.3). */
static int accepts(const char *ae, const char *coding)
{
    size_t clen = strlen(coding);
    const char *p = ae;
    while (p && *p) {
        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        const char *tok = p;
        while (*p && *p != ',' && *p != ';' && *p != ' ' && *p != '\t')
            p++;
        size_t tlen = (size_t)(p - tok);
        int match = (tlen == clen && !strncasecmp(tok, coding, clen)) || (tlen == 1 && *tok == '*');
        int zero = 0;
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        for (const char *q = p; q < end; q++) {
            if ((*q == 'q' || *q == 'Q') && q + 1 < end && q[1] == '=') {
                zero = q[2] == '0' && strspn(q + 3, ".0") >= (size_t)(end - q - 3);
                break;
            }
        }
        if (match)
            return !zero;
        p = *end ? end + 1 : end;
    }
    return 0;
}

/* GET /, the pages of the UI (they all answer index.html: the UI routes
 * itself, so a reload or a link lands on the same page) and /ui/<file>. */
static int web(aos_http_req_t *req, void *data)
{
    const char *name = aos_http_param(req, "*");
    if (!name)
        name = "index.html";
    const aos_web_file_t *f = NULL;
    if (!ends_with(name, ".gz") && !ends_with(name, ".br"))
        f = web_find(name, "");
    if (!f)
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no file '%.100s'", name);
    const char *ae = aos_http_header(req, "Accept-Encoding");
    const aos_web_file_t *v = NULL;
    const char *coding = NULL;
    if (ae && accepts(ae, "br") && (v = web_find(name, ".br")))
        coding = "br";
    else if (ae && accepts(ae, "gzip") && (v = web_find(name, ".gz")))
        coding = "gzip";
    else
        v = f;
    char etag[24];
    snprintf(etag, sizeof(etag), "\"%016llx\"", (unsigned long long)web_etag(v));
    aos_http_add_header(req, "Cache-Control",
                        strcmp(name, "index.html") ? "public, max-age=31536000, immutable"
                                                   : "no-cache");
    aos_http_add_header(req, "Vary", "Accept-Encoding");
    aos_http_add_header(req, "ETag", etag);
    aos_http_add_header(req, "X-Content-Type-Options", "nosniff");
    if (!strcmp(name, "index.html"))
        aos_http_add_header(req, "Content-Security-Policy", WEB_CSP);
    const char *inm = aos_http_header(req, "If-None-Match");
    if (inm && (strstr(inm, etag) || !strcmp(inm, "*")))
        return aos_http_respond(req, 304, NULL, "", 0);
    if (coding)
        aos_http_add_header(req, "Content-Encoding", coding);
    return aos_http_respond(req, 200, mime_of(f->name), v->data, v->len);
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
    /* the UI's pages (web/src/router.ts) */
    {"GET", "/telemetry", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/projects", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/memory", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/settings", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/integrations", AOS_PERM_PUBLIC, web, 0, NULL},
    /* also GET /agents of the agents API: a browser navigating gets the page */
    {"PAGE", "/agents", AOS_PERM_PUBLIC, web, 0, NULL},
    {"GET", "/healthz", AOS_PERM_PUBLIC, healthz, 0, NULL},
    {"GET", "/metrics", AOS_PERM_METRICS, metrics, 0, NULL},
};

int aos_api_add_routes(aos_api_t *api, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), api);
}
