/* legacy_sse.c - the HTTP+SSE transport of MCP 2024-11-05 (transport "sse").
 *
 * A connection is one GET of the configured URL that stays open as an event
 * stream. The server's first event, `endpoint`, names the URI to POST our
 * messages to: it is resolved against the stream's URL and must be on the
 * same origin, since our static headers and token go there too. Every later
 * `message` event carries one JSON-RPC message of the server: answers,
 * notifications and its own requests. A POST is only accepted (202); its
 * answer comes on the stream.
 *
 * The core sends initialize right after connecting, before the endpoint is
 * known, so messages wait in up->lsse_outbox until it arrives (the timeout of
 * initialize bounds that wait). The stream ending or failing, a bad
 * endpoint, or a POST the server no longer routes (404) is a lost
 * connection: the core fails what is pending and backs off, and the next
 * connection gets a new endpoint and initializes again. The protocol has no
 * way to resume a session.
 *
 * Each transfer (the GET or a POST) is an up_lsse_t that holds a reference on
 * the upstream until httpc reports its end; a disconnect stops them all and
 * their ends are then ignored. The URL is resolved with libcurl's URL parser,
 * the one that httpc's transfers use, so that the origin we check is the one
 * curl connects to. */
#include "upstream/internal.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log/log.h"
#include "sse/sse.h"

#define LSSE_POST_TIMEOUT_MS 30000 /* the server only has to accept the message */
#define LSSE_MAX_OUTBOX      16    /* messages waiting for the endpoint */
#define LSSE_MAX_ENDPOINT    2048
#define LSSE_ERROR_BODY      1024 /* kept from an error response, for the message */

struct up_lsse_s {
    aos_upstream_t *up;
    aos_httpc_req_t *req;
    int is_get;
    uint64_t id; /* POST: the request it carries, or 0 */
    long status;
    int sse;          /* GET: the body is an event stream */
    int stopped;      /* abandoned by us: whatever comes is ignored */
    aos_buf_t body;   /* the start of an error response */
    aos_sse_t parser; /* GET */
    up_lsse_t *prev, *next;
};

static int ok_status(long s)
{
    return s >= 200 && s < 300;
}

/* ---- the endpoint --------------------------------------------------------- */

/* a and b have the same scheme, host and port (the default one if absent). */
static int same_origin(CURLU *a, CURLU *b)
{
    static const CURLUPart parts[] = {CURLUPART_SCHEME, CURLUPART_HOST, CURLUPART_PORT};
    int same = 1;
    for (size_t i = 0; i < sizeof(parts) / sizeof(parts[0]) && same; i++) {
        char *x = NULL, *y = NULL;
        unsigned flags = parts[i] == CURLUPART_PORT ? CURLU_DEFAULT_PORT : 0;
        same = curl_url_get(a, parts[i], &x, flags) == CURLUE_OK &&
               curl_url_get(b, parts[i], &y, flags) == CURLUE_OK && strcasecmp(x, y) == 0;
        curl_free(x);
        curl_free(y);
    }
    return same;
}

int aos__up_lsse_endpoint(const char *base, const char *ref, size_t len, char **out,
                          const char **why)
{
    *out = NULL;
    *why = NULL;
    if (len == 0 || len > LSSE_MAX_ENDPOINT) {
        *why = "the endpoint event is empty or too long";
        return AOS_EUPSTREAM;
    }
    for (size_t i = 0; i < len; i++) {
        if ((unsigned char)ref[i] <= 0x20 || ref[i] == 0x7f) {
            *why = "the endpoint event holds spaces or control characters";
            return AOS_EUPSTREAM;
        }
    }
    CURLU *b = curl_url(), *u = curl_url();
    char *s = NULL;
    int rc = AOS_ENOMEM;
    if (!b || !u)
        goto out;
    rc = AOS_EUPSTREAM;
    /* u starts as the base: setting a relative reference then resolves it */
    if (curl_url_set(b, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_URL, base, 0) != CURLUE_OK ||
        curl_url_set(u, CURLUPART_URL, ref, 0) != CURLUE_OK) {
        *why = "the endpoint event is not a valid URI";
        goto out;
    }
    if (!same_origin(b, u)) {
        *why = "the endpoint is not on the origin of the sse url";
        goto out;
    }
    rc = AOS_ENOMEM;
    if (curl_url_get(u, CURLUPART_URL, &s, 0) != CURLUE_OK || !(*out = strdup(s)))
        goto out;
    rc = 0;
out:
    if (rc == AOS_ENOMEM)
        *why = "out of memory";
    curl_free(s);
    curl_url_cleanup(u);
    curl_url_cleanup(b);
    return rc;
}

/* ---- transfers ------------------------------------------------------------ */

static int on_event(void *data, const char *type, const char *payload, size_t len);

static up_lsse_t *xfer_new(aos_upstream_t *up, int is_get, uint64_t id)
{
    up_lsse_t *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    x->up = up;
    x->is_get = is_get;
    x->id = id;
    aos_buf_init(&x->body, LSSE_ERROR_BODY);
    aos_sse_init(&x->parser, UP_MAX_MESSAGE, on_event, x);
    return x;
}

static void xfer_free(up_lsse_t *x)
{
    aos_buf_release(&x->body);
    aos_sse_release(&x->parser);
    free(x);
}

static void xfer_unlink(aos_upstream_t *up, up_lsse_t *x)
{
    if (x->prev)
        x->prev->next = x->next;
    else
        up->lsse_xfers = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void on_headers(aos_httpc_req_t *r, long status, void *data);
static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data);
static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data);

/* Starts x; on failure x is still the caller's and err says why. */
static int xfer_start(aos_upstream_t *up, up_lsse_t *x, const char *url, const char *body,
                      size_t body_len, aos_err_t *err)
{
    up_hdrs_t h;
    aos__up_hdrs_init(&h, up);
    if (x->is_get) {
        aos__up_hdrs_add(&h, "Accept: text/event-stream");
        aos__up_hdrs_add(&h, "Cache-Control: no-cache");
    } else {
        aos__up_hdrs_add(&h, "Content-Type: application/json");
        aos__up_hdrs_trace(&h, up, x->id);
    }
    char **hdrs = aos__up_hdrs_finish(&h, up);
    if (!hdrs)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    aos_httpc_opts_t o = {
        .method = x->is_get ? "GET" : "POST",
        .url = url,
        .headers = (const char *const *)hdrs,
        .body = body,
        .body_len = body_len,
        .timeout_ms = x->is_get ? 0 : LSSE_POST_TIMEOUT_MS,
        .ca_file = up->ca_file,
        .certinfo = strncasecmp(url, "https:", 6) == 0,
        .on_headers = on_headers,
        .on_data = on_data,
        .on_done = on_done,
        .data = x,
    };
    int rc = aos_httpc_start(up->httpc, &o, &x->req, err);
    aos__up_hdrs_free(hdrs);
    if (rc)
        return rc;
    x->next = up->lsse_xfers;
    if (up->lsse_xfers)
        up->lsse_xfers->prev = x;
    up->lsse_xfers = x;
    up->refs++;
    return 0;
}

/* POSTs msg to the endpoint. When msg is a request of ours, a failed POST
 * fails that request. */
static int post(aos_upstream_t *up, json_t *msg)
{
    json_t *jid = json_object_get(msg, "id");
    uint64_t id = json_object_get(msg, "method") && json_is_integer(jid)
                      ? (uint64_t)json_integer_value(jid)
                      : 0;
    char *body = json_dumps(msg, JSON_COMPACT);
    up_lsse_t *x = body ? xfer_new(up, 0, id) : NULL;
    if (!x) {
        free(body);
        return AOS_ENOMEM;
    }
    aos_err_t err;
    int rc = xfer_start(up, x, up->lsse_endpoint, body, strlen(body), &err);
    free(body);
    if (rc) {
        aos__up_log(up, AOS_LOG_WARN, "upstream '%s': unable to start an http request: %s",
                    up->name, aos_err_msg(&err));
        xfer_free(x);
        return rc == AOS_ENOMEM ? rc : AOS_EUPSTREAM;
    }
    return 0;
}

static void got_endpoint(aos_upstream_t *up, const char *payload, size_t len)
{
    if (up->lsse_endpoint) {
        aos__up_log(up, AOS_LOG_DEBUG, "upstream '%s': ignoring a second endpoint event", up->name);
        return;
    }
    const char *why;
    char *url;
    if (aos__up_lsse_endpoint(up->url, payload, len, &url, &why) != 0) {
        aos__up_conn_lost(up, why);
        return;
    }
    up->lsse_endpoint = url;
    aos__up_log(up, AOS_LOG_DEBUG, "upstream '%s': got the endpoint to post to", up->name);
    json_t *out = up->lsse_outbox;
    up->lsse_outbox = NULL;
    size_t i;
    json_t *msg;
    json_array_foreach(out, i, msg)
    {
        if (post(up, msg) != 0) {
            aos__up_conn_lost(up, "unable to post to the endpoint");
            break;
        }
    }
    json_decref(out);
}

static int on_event(void *data, const char *type, const char *payload, size_t len)
{
    up_lsse_t *x = data;
    aos_upstream_t *up = x->up;
    if (x->stopped || up->closing)
        return AOS_ECANCELED;
    if (strcmp(type, "endpoint") == 0)
        got_endpoint(up, payload, len);
    else if (strcmp(type, "message") == 0)
        aos__up_dispatch_event(up, payload, len);
    /* the callbacks above may have ended this connection or the upstream */
    return x->stopped || up->closing ? AOS_ECANCELED : 0;
}

static void on_headers(aos_httpc_req_t *r, long status, void *data)
{
    up_lsse_t *x = data;
    x->status = status;
    aos__up_note_cert(x->up, r);
    if (x->is_get && ok_status(status)) {
        const char *ct = aos_httpc_resp_header(r, "content-type");
        x->sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    }
}

static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data)
{
    up_lsse_t *x = data;
    (void)r;
    if (x->stopped)
        return AOS_ECANCELED;
    if (x->is_get && ok_status(x->status)) {
        if (!x->sse)
            return AOS_EUPSTREAM; /* not an event stream: on_done says so */
        int rc = aos_sse_feed(&x->parser, chunk, len);
        return rc < 0 ? rc : 0;
    }
    size_t room = LSSE_ERROR_BODY - x->body.len; /* enough to explain the error */
    aos_buf_append(&x->body, chunk, len < room ? len : room);
    return 0;
}

static void get_ended(aos_upstream_t *up, up_lsse_t *x, int status, const char *errmsg)
{
    char why[320], text[300];
    if (ok_status(x->status) && !x->sse) {
        snprintf(why, sizeof(why), "the sse url did not answer with an event stream");
    } else if (status == 0 && !ok_status(x->status)) {
        aos__up_http_why(up, text, sizeof(text), x->status, x->body.ptr, x->body.len);
        snprintf(why, sizeof(why), "event stream: %s", text);
    } else if (status == 0) {
        snprintf(why, sizeof(why), "the event stream ended");
    } else {
        snprintf(why, sizeof(why), "the event stream failed: %s",
                 status == AOS_ETOOBIG ? "an event is too large" : errmsg);
    }
    aos__up_conn_lost(up, why);
}

static void post_ended(aos_upstream_t *up, up_lsse_t *x, int status, const char *errmsg)
{
    char why[320];
    if (status == AOS_EUPSTREAM) {
        snprintf(why, sizeof(why), "connection to the upstream failed: %s", errmsg);
        aos__up_conn_lost(up, why);
        return;
    }
    if (status == 0 && ok_status(x->status))
        return; /* accepted: the answer comes on the stream */
    if (status == 0 && x->status == 404) {
        /* the server dropped the session behind this endpoint */
        aos__up_conn_lost(up, "the endpoint is gone (http 404)");
        return;
    }
    if (status)
        snprintf(why, sizeof(why), "posting the message failed: %s", errmsg);
    else
        aos__up_http_why(up, why, sizeof(why), x->status, x->body.ptr, x->body.len);
    if (x->id)
        aos__up_request_failed(up, x->id, AOS_EUPSTREAM, why);
    else
        aos__up_log(up, AOS_LOG_WARN, "upstream '%s': a notification or response: %s", up->name,
                    why);
}

static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data)
{
    up_lsse_t *x = data;
    aos_upstream_t *up = x->up;
    (void)r;
    xfer_unlink(up, x);
    if (up->lsse_get == x)
        up->lsse_get = NULL;
    if (!x->stopped && !up->closing) {
        if (!errmsg)
            errmsg = aos_strerror(status);
        if (x->is_get)
            get_ended(up, x, status, errmsg);
        else
            post_ended(up, x, status, errmsg);
    }
    xfer_free(x);
    aos__up_unref(up); /* may free up: last */
}

/* ---- transport entry points ------------------------------------------------- */

int aos__up_lsse_connect(aos_upstream_t *up, char *err, size_t errlen)
{
    aos__up_lsse_disconnect(up);
    up->lsse_outbox = json_array();
    up_lsse_t *x = up->lsse_outbox ? xfer_new(up, 1, 0) : NULL;
    if (!x) {
        snprintf(err, errlen, "out of memory");
        return AOS_ENOMEM;
    }
    aos_err_t e;
    int rc = xfer_start(up, x, up->url, NULL, 0, &e);
    if (rc) {
        snprintf(err, errlen, "unable to open the event stream: %s", aos_err_msg(&e));
        xfer_free(x);
        return rc;
    }
    up->lsse_get = x;
    return 0;
}

int aos__up_lsse_send(aos_upstream_t *up, json_t *msg, up_pending_t *p)
{
    (void)p; /* the answer comes on the stream, whoever asked */
    if (up->lsse_endpoint)
        return post(up, msg);
    if (!up->lsse_get || !up->lsse_outbox || json_array_size(up->lsse_outbox) >= LSSE_MAX_OUTBOX)
        return AOS_EUPSTREAM;
    return json_array_append(up->lsse_outbox, msg) ? AOS_ENOMEM : 0;
}

void aos__up_lsse_disconnect(aos_upstream_t *up)
{
    for (up_lsse_t *x = up->lsse_xfers; x; x = x->next) {
        if (!x->stopped) {
            x->stopped = 1;
            aos_httpc_cancel(x->req); /* on_done comes later, from the loop */
        }
    }
    up->lsse_get = NULL;
    free(up->lsse_endpoint);
    up->lsse_endpoint = NULL;
    json_decref(up->lsse_outbox);
    up->lsse_outbox = NULL;
}

void aos__up_lsse_close(aos_upstream_t *up)
{
    aos__up_lsse_disconnect(up);
}
