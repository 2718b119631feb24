/* ingest.c - POST /v1/traces and POST /v1/logs (OTLP/HTTP, see
 * telemetry.h).
 *
 * A request's body is copied and decoded on libuv's thread pool (gunzip,
 * then protobuf or JSON, by Content-Type); then the spans go to the store's
 * worker in one job (their resources looked up or added, the spans
 * inserted in one transaction) and the log records to the log service's
 * publish, which commits them. The answer - an Export*ServiceResponse in
 * the request's encoding - is sent only after that commit. A client that
 * leaves meanwhile changes nothing: the data is stored all the same. */
#include "telemetry/internal.h"

#include "log/log.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct ingest {
    aos_telemetry_t *t;
    aos_http_req_t *req; /* NULL once the client left */
    int logs;            /* /v1/logs, else /v1/traces */
    aos_otlp_encoding_t enc;
    int gzip;
    uv_work_t work;
    void *body; /* owned copy */
    size_t len;
    int rc;
    aos_err_t err;
    aos_otlp_traces_t traces;
    aos_otlp_logs_t logrecs;
    int64_t *res_ids; /* worker: span_resources ids of traces.resources */
};

static void ingest_free(struct ingest *g)
{
    free(g->body);
    free(g->res_ids);
    aos_otlp_traces_release(&g->traces);
    aos_otlp_logs_release(&g->logrecs);
    free(g);
}

static void ingest_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((struct ingest *)data)->req = NULL;
}

static const char *content_type(aos_otlp_encoding_t enc)
{
    return enc == AOS_OTLP_JSON ? "application/json" : "application/x-protobuf";
}

/* Answers with the response (status 200) or err, and frees g. */
static void finish(struct ingest *g, const aos_err_t *err, size_t accepted)
{
    aos_http_req_t *req = g->req;
    int64_t rejected = g->logs ? g->logrecs.rejected : g->traces.rejected;
    const char *msg = g->logs ? g->logrecs.message : g->traces.message;
    if (!err)
        aos__telemetry_ingested(g->t, g->logs ? "logs" : "traces", accepted, rejected);
    if (req) {
        aos_http_on_close(req, NULL, NULL);
        if (err) {
            aos_http_respond_err(req, err);
        } else {
            aos_buf_t b;
            aos_buf_init(&b, 0);
            if (aos_otlp_response_encode(g->logs, rejected, msg, g->enc, &b) < 0)
                aos_http_respond_error(req, AOS_ENOMEM, "out of memory");
            else
                aos_http_respond(req, 200, content_type(g->enc), b.ptr, b.len);
            aos_buf_release(&b);
        }
    }
    ingest_free(g);
}

/* ---- traces: the store job --------------------------------------------------- */

static int traces_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct ingest *g = arg;
    aos_otlp_traces_t *tr = &g->traces;
    if (!tr->n)
        return 0;
    g->res_ids = calloc(tr->nres, sizeof(*g->res_ids));
    if (!g->res_ids)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    for (size_t i = 0; i < tr->n; i++) { /* only the resources some span names */
        int64_t *id = &g->res_ids[tr->rows[i].resource_id];
        int rc = *id ? 0
                     : aos__telemetry_resource_id(g->t, st, tr->resources[tr->rows[i].resource_id],
                                                  id, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < tr->n; i++)
        tr->rows[i].resource_id = g->res_ids[tr->rows[i].resource_id];
    return aos_store_spans_insert(st, tr->rows, tr->n, err);
}

static void traces_done(int status, const aos_err_t *err, void *arg)
{
    struct ingest *g = arg;
    if (status) {
        aos_log_warn("telemetry", "%zu ingested spans were not stored: %s", g->traces.n,
                     aos_err_msg(err));
        aos_err_t e = {0, ""};
        aos_err_set(&e, AOS_EUNAVAIL, "the spans could not be stored now; try again");
        finish(g, &e, 0);
        return;
    }
    finish(g, NULL, g->traces.n);
}

/* ---- logs: the log service's publish ------------------------------------------- */

static void logs_done(void *ctx, size_t accepted, const aos_err_t *err)
{
    finish(ctx, err, accepted);
}

/* ---- decoding, off the loop ------------------------------------------------------ */

static void decode_work(uv_work_t *w)
{
    struct ingest *g = w->data;
    if (g->gzip) {
        void *plain;
        size_t n;
        g->rc = aos_otlp_gunzip(g->body, g->len, AOS_OTLP_INFLATE_MAX, &plain, &n, &g->err);
        if (g->rc < 0)
            return;
        free(g->body);
        g->body = plain;
        g->len = n;
    }
    g->rc = g->logs ? aos_otlp_logs_decode(g->body, g->len, g->enc, &g->logrecs, &g->err)
                    : aos_otlp_traces_decode(g->body, g->len, g->enc, aos_redact_global(),
                                             &g->traces, &g->err);
}

static void decode_done(uv_work_t *w, int status)
{
    struct ingest *g = w->data;
    free(g->body);
    g->body = NULL;
    if (status < 0) {
        aos_err_set(&g->err, AOS_EUNAVAIL, "the request was cancelled");
        g->rc = AOS_EUNAVAIL;
    }
    if (g->rc < 0) {
        finish(g, &g->err, 0);
        return;
    }
    aos_err_t err = {0, ""};
    if (g->logs) {
        aos_logs_t *l = aos__telemetry_logs(g->t);
        if (!json_array_size(g->logrecs.entries)) {
            finish(g, NULL, 0);
            return;
        }
        if (!l) {
            aos_err_set(&err, AOS_EUNAVAIL, "the log service is not running");
            finish(g, &err, 0);
            return;
        }
        if (aos_logs_publish(l, g->logrecs.entries, "otlp", logs_done, g, &err) < 0)
            finish(g, &err, 0);
        return;
    }
    if (!g->traces.n) {
        finish(g, NULL, 0);
        return;
    }
    int rc = aos_store_submit(aos__telemetry_store(g->t), traces_run, traces_done, g);
    if (rc < 0) {
        aos_err_set(&err, AOS_EUNAVAIL, "the store is not available");
        finish(g, &err, 0);
    }
}

/* ---- the routes ------------------------------------------------------------------- */

/* The media type of the Content-Type header (parameters aside) is t. */
static int media_is(const char *ct, const char *t)
{
    size_t n = strlen(t);
    if (!ct || strncasecmp(ct, t, n) != 0)
        return 0;
    ct += n;
    while (*ct == ' ' || *ct == '\t')
        ct++;
    return *ct == '\0' || *ct == ';';
}

static int ingest_route(aos_http_req_t *req, aos_telemetry_t *t, int logs)
{
    if (aos__telemetry_shut(t))
        return aos_http_respond_error(req, AOS_EUNAVAIL, "aosd is shutting down");
    const char *ct = aos_http_header(req, "Content-Type");
    aos_otlp_encoding_t enc;
    if (media_is(ct, "application/x-protobuf"))
        enc = AOS_OTLP_PROTOBUF;
    else if (media_is(ct, "application/json"))
        enc = AOS_OTLP_JSON;
    else
        return aos_http_respond_error(req, AOS_EMEDIA,
                                      "Content-Type must be application/x-protobuf or "
                                      "application/json");
    const char *ce = aos_http_header(req, "Content-Encoding");
    int gzip = 0;
    if (ce && *ce && strcasecmp(ce, "identity")) {
        if (strcasecmp(ce, "gzip"))
            return aos_http_respond_error(req, AOS_EMEDIA,
                                          "Content-Encoding must be gzip or identity");
        gzip = 1;
    }
    size_t len;
    const char *body = aos_http_body(req, &len);
    struct ingest *g = calloc(1, sizeof(*g));
    if (!g)
        return AOS_ENOMEM;
    g->t = t;
    g->req = req;
    g->logs = logs;
    g->enc = enc;
    g->gzip = gzip;
    g->len = len;
    g->body = malloc(len ? len : 1);
    if (!g->body) {
        free(g);
        return AOS_ENOMEM;
    }
    if (len)
        memcpy(g->body, body, len);
    g->work.data = g;
    if (uv_queue_work(aos__telemetry_loop(t), &g->work, decode_work, decode_done) < 0) {
        ingest_free(g);
        return aos_http_respond_error(req, AOS_EUNAVAIL, "unable to decode the body now");
    }
    aos_http_on_close(req, ingest_closed, g);
    return 0;
}

static int traces_route(aos_http_req_t *req, void *data)
{
    return ingest_route(req, data, 0);
}

static int logs_route(aos_http_req_t *req, void *data)
{
    return ingest_route(req, data, 1);
}

static const aos_http_route_t routes[] = {
    {"POST", "/v1/traces", AOS_PERM_OPERATE, traces_route, AOS_OTLP_BODY_MAX, NULL},
    {"POST", "/v1/logs", AOS_PERM_OPERATE, logs_route, AOS_OTLP_BODY_MAX, NULL},
};

int aos_telemetry_add_routes(aos_telemetry_t *t, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), t);
}
