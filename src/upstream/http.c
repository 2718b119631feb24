/* http.c - the Streamable HTTP transport (MCP 2025-03-26 to 2025-11-25).
 *
 * Every message we send is one POST to the endpoint. A request's answer
 * comes back in that POST's response, either as one application/json body or
 * as a text/event-stream that may first carry notifications and requests of
 * the server, then the response. After READY a GET stream (optional for the
 * server: 405 means none) carries messages the server sends on its own.
 *
 * Each transfer is an up_post_t that holds a reference on the upstream until
 * httpc reports its end. Transfers to start later (reopening the GET stream,
 * resuming a request's event stream with Last-Event-ID after the server
 * closed it early, as 2025-11-25 allows) wait on up->delayed, started by
 * http_timer. A request's pending entry points at the transfer that will
 * carry its answer (p->post), so that a timeout or cancel can abort it.
 *
 * The request headers (aos__up_hdrs_*) and the text of an HTTP error are
 * built here for legacy_sse.c as well. */
#include "upstream/internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log/log.h"
#include "sse/sse.h"

#define HTTP_MESSAGE_TIMEOUT_MS 30000 /* POST of a notification or response */
#define HTTP_DELETE_TIMEOUT_MS  2000
#define HTTP_RETRY_MS           1000 /* reconnect delay when the server gave none */
#define HTTP_GET_MAX_DELAY_MS   30000
#define HTTP_MAX_SESSION_ID     256
#define HTTP_ERROR_BODY         1024 /* kept from an error response, for the message */

typedef enum { POST_REQUEST, POST_MESSAGE, GET_STREAM, GET_RESUME, DELETE_SESSION } post_kind_t;

struct up_post_s {
    aos_upstream_t *up;
    aos_httpc_req_t *req; /* NULL while delayed */
    post_kind_t kind;
    uint64_t id; /* the request answered here (POST_REQUEST, GET_RESUME) */
    int is_init;
    int initialized;       /* carries notifications/initialized: READY once it is taken */
    char *session;         /* the Mcp-Session-Id it carries, or NULL */
    char resume_from[256]; /* Last-Event-ID to send (GET_*) */
    long status;
    int sse;         /* the body is an event stream */
    int stopped;     /* abandoned by us: whatever comes is ignored */
    unsigned events; /* SSE events seen */
    uint64_t due;    /* delayed: when to start */
    aos_buf_t body;
    aos_sse_t parser;
    up_post_t *prev, *next; /* up->posts or up->delayed */
};

static void post_link(up_post_t **head, up_post_t *p)
{
    p->prev = NULL;
    p->next = *head;
    if (*head)
        (*head)->prev = p;
    *head = p;
}

static void post_unlink(up_post_t **head, up_post_t *p)
{
    if (*head == p) /* by identity: the static analyzer then sees the head move */
        *head = p->next;
    else
        p->prev->next = p->next;
    if (p->next)
        p->next->prev = p->prev;
    p->prev = p->next = NULL;
}

static int on_event(void *data, const char *type, const char *payload, size_t len);

static up_post_t *post_new(aos_upstream_t *up, post_kind_t kind, const char *session)
{
    up_post_t *p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    p->up = up;
    p->kind = kind;
    if (session && !(p->session = strdup(session))) {
        free(p);
        return NULL;
    }
    aos_buf_init(&p->body, UP_MAX_MESSAGE);
    aos_sse_init(&p->parser, UP_MAX_MESSAGE, on_event, p);
    return p;
}

static void post_free(up_post_t *p)
{
    free(p->session);
    aos_buf_release(&p->body);
    aos_sse_release(&p->parser);
    free(p);
}

/* Forgets p as the carrier of its request's answer. */
static void post_detach_pending(aos_upstream_t *up, up_post_t *p)
{
    up_pending_t *pd = p->id ? aos__up_pending_find(up, p->id) : NULL;
    if (pd && pd->post == p)
        pd->post = NULL;
}

/* Aborts a live transfer (its end is then ignored) or drops a delayed one. */
static void post_stop(aos_upstream_t *up, up_post_t *p)
{
    if (up->get_stream == p)
        up->get_stream = NULL;
    if (p->req) {
        if (!p->stopped) {
            p->stopped = 1;
            aos_httpc_cancel(p->req);
        }
        return;
    }
    post_unlink(&up->delayed, p);
    post_detach_pending(up, p);
    post_free(p);
}

static int session_id_valid(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++)
        if ((unsigned char)s[n] < 0x21 || (unsigned char)s[n] > 0x7e || n >= HTTP_MAX_SESSION_ID)
            return 0;
    return n > 0;
}

static int same_session(const aos_upstream_t *up, const up_post_t *p)
{
    return p->session && up->session_id && strcmp(p->session, up->session_id) == 0;
}

/* ---- starting transfers -------------------------------------------------- */

void aos__up_hdrs_init(up_hdrs_t *h, const aos_upstream_t *up)
{
    size_t nstatic = 0;
    while (up->headers && up->headers[nstatic])
        nstatic++;
    h->n = 0;
    h->cap = nstatic + 10; /* the transport's own lines (8 at most), the token, the NULL */
    h->v = calloc(h->cap, sizeof(*h->v));
    h->failed = !h->v;
}

void aos__up_hdrs_add(up_hdrs_t *h, const char *fmt, ...)
{
    if (h->failed || h->n + 1 >= h->cap) {
        h->failed = 1;
        return;
    }
    aos_buf_t b = AOS_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    int rc = aos_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (rc) {
        h->failed = 1;
        return;
    }
    h->v[h->n++] = b.ptr;
}

void aos__up_hdrs_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++) {
        memset(v[i], 0, strlen(v[i])); /* may hold the token */
        free(v[i]);
    }
    free(v);
}

char **aos__up_hdrs_finish(up_hdrs_t *h, const aos_upstream_t *up)
{
    for (size_t i = 0; up->headers && up->headers[i]; i++)
        aos__up_hdrs_add(h, "%s", up->headers[i]);
    if (up->bearer)
        aos__up_hdrs_add(h, "Authorization: Bearer %s", up->bearer);
    char **v = h->v;
    h->v = NULL;
    if (h->failed) {
        aos__up_hdrs_free(v);
        return NULL;
    }
    return v;
}

void aos__up_hdrs_trace(up_hdrs_t *h, aos_upstream_t *up, uint64_t id)
{
    const up_pending_t *p = id ? aos__up_pending_find(up, id) : NULL;
    if (!p || !p->traceparent[0])
        return;
    aos__up_hdrs_add(h, "traceparent: %s", p->traceparent);
    if (p->tracestate)
        aos__up_hdrs_add(h, "tracestate: %s", p->tracestate);
}

static const char *reason_phrase(long status)
{
    static const struct {
        long status;
        const char *phrase;
    } phrases[] = {
        {400, "Bad Request"},
        {401, "Unauthorized"},
        {403, "Forbidden"},
        {404, "Not Found"},
        {405, "Method Not Allowed"},
        {406, "Not Acceptable"},
        {408, "Request Timeout"},
        {409, "Conflict"},
        {410, "Gone"},
        {413, "Content Too Large"},
        {415, "Unsupported Media Type"},
        {422, "Unprocessable Content"},
        {429, "Too Many Requests"},
        {500, "Internal Server Error"},
        {501, "Not Implemented"},
        {502, "Bad Gateway"},
        {503, "Service Unavailable"},
        {504, "Gateway Timeout"},
    };
    for (size_t i = 0; i < sizeof(phrases) / sizeof(phrases[0]); i++)
        if (phrases[i].status == status)
            return phrases[i].phrase;
    return "";
}

void aos__up_http_why(const aos_upstream_t *up, char *why, size_t n, long status, const char *body,
                      size_t len)
{
    char text[128] = "";
    json_t *msg = len ? json_loadb(body, len, JSON_ALLOW_NUL, NULL) : NULL;
    const json_t *m = json_object_get(json_object_get(msg, "error"), "message");
    if (json_is_string(m))
        aos__up_reason(up, json_string_value(m), json_string_length(m), text, sizeof(text));
    json_decref(msg);
    const char *phrase = reason_phrase(status);
    snprintf(why, n, "http %ld%s%s%s%s", status, *phrase ? " " : "", phrase, text[0] ? ": " : "",
             text);
}

static char **build_headers(aos_upstream_t *up, const up_post_t *p)
{
    up_hdrs_t h;
    aos__up_hdrs_init(&h, up);
    if (p->kind == POST_REQUEST || p->kind == POST_MESSAGE) {
        aos__up_hdrs_add(&h, "Content-Type: application/json");
        aos__up_hdrs_add(&h, "Accept: application/json, text/event-stream");
        if (p->kind == POST_REQUEST)
            aos__up_hdrs_trace(&h, up, p->id);
    } else if (p->kind == GET_STREAM || p->kind == GET_RESUME) {
        aos__up_hdrs_add(&h, "Accept: text/event-stream");
        if (p->resume_from[0])
            aos__up_hdrs_add(&h, "Last-Event-ID: %s", p->resume_from);
    }
    if (up->proto[0] && !p->is_init)
        aos__up_hdrs_add(&h, "MCP-Protocol-Version: %s", up->proto);
    if (p->session)
        aos__up_hdrs_add(&h, "Mcp-Session-Id: %s", p->session);
    return aos__up_hdrs_finish(&h, up);
}

static void on_headers(aos_httpc_req_t *r, long status, void *data);
static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data);
static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data);

static int start_transfer(aos_upstream_t *up, up_post_t *p, const char *method, const char *body,
                          size_t body_len, long timeout_ms)
{
    char **h = build_headers(up, p);
    if (!h)
        return AOS_ENOMEM;
    aos_httpc_opts_t o = {
        .method = method,
        .url = up->url,
        .headers = (const char *const *)h,
        .body = body,
        .body_len = body_len,
        .timeout_ms = timeout_ms,
        .ca_file = up->ca_file,
        .certinfo = strncasecmp(up->url, "https:", 6) == 0,
        .on_headers = on_headers,
        .on_data = on_data,
        .on_done = on_done,
        .data = p,
    };
    aos_err_t err;
    int rc = aos_httpc_start(up->httpc, &o, &p->req, &err);
    aos__up_hdrs_free(h);
    if (rc) {
        aos__up_log(up, AOS_LOG_WARN, "upstream '%s': unable to start an http request: %s",
                    up->name, aos_err_msg(&err));
        return rc;
    }
    p->up = up;
    post_link(&up->posts, p);
    up->refs++;
    return 0;
}

static void on_http_timer(uv_timer_t *t);

static void delay_post(aos_upstream_t *up, up_post_t *p, uint64_t ms)
{
    uint64_t now = uv_now(up->loop);
    p->due = now + ms;
    post_link(&up->delayed, p);
    uint64_t due = uv_is_active((uv_handle_t *)&up->http_timer)
                       ? now + uv_timer_get_due_in(&up->http_timer)
                       : UINT64_MAX;
    if (p->due < due)
        uv_timer_start(&up->http_timer, on_http_timer, ms, 0);
}

static void schedule_get(aos_upstream_t *up, uint64_t ms)
{
    if (up->get_stream || up->get_unsupported || up->state != AOS_UP_READY || up->closing)
        return;
    up_post_t *p = post_new(up, GET_STREAM, up->session_id);
    if (!p)
        return;
    snprintf(p->resume_from, sizeof(p->resume_from), "%s", up->get_last_id);
    delay_post(up, p, ms);
    up->get_stream = p;
}

static void start_delayed(aos_upstream_t *up, up_post_t *p)
{
    if (start_transfer(up, p, "GET", NULL, 0, 0) == 0)
        return;
    if (p->kind == GET_STREAM) {
        if (up->get_stream == p)
            up->get_stream = NULL;
        post_free(p);
        uint32_t d = up->get_delay_ms;
        up->get_delay_ms = d * 2 > HTTP_GET_MAX_DELAY_MS ? HTTP_GET_MAX_DELAY_MS : d * 2;
        schedule_get(up, d);
        return;
    }
    uint64_t id = p->id;
    post_detach_pending(up, p);
    post_free(p);
    aos__up_request_failed(up, id, AOS_EUPSTREAM, "unable to resume the event stream");
}

static void on_http_timer(uv_timer_t *t)
{
    aos_upstream_t *up = t->data;
    uint64_t now = uv_now(up->loop), next = UINT64_MAX;
    up_post_t *due = NULL;
    for (up_post_t *p = up->delayed, *nx; p; p = nx) {
        nx = p->next;
        if (p->due <= now) {
            post_unlink(&up->delayed, p);
            post_link(&due, p);
        } else if (p->due < next) {
            next = p->due;
        }
    }
    if (next != UINT64_MAX)
        uv_timer_start(&up->http_timer, on_http_timer, next - now, 0);
    while (due) {
        up_post_t *p = due;
        post_unlink(&due, p);
        if (up->closing) {
            post_free(p);
            continue;
        }
        start_delayed(up, p);
    }
}

/* ---- transfer callbacks -------------------------------------------------- */

static int ok_status(long s)
{
    return s >= 200 && s < 300;
}

/* The server's "retry" field, bounded: a hostile value must not park us. */
static uint64_t retry_delay(const up_post_t *p)
{
    if (p->parser.retry_ms < 0)
        return HTTP_RETRY_MS;
    return p->parser.retry_ms > HTTP_GET_MAX_DELAY_MS ? HTTP_GET_MAX_DELAY_MS
                                                      : (uint64_t)p->parser.retry_ms;
}

static void on_headers(aos_httpc_req_t *r, long status, void *data)
{
    up_post_t *p = data;
    aos_upstream_t *up = p->up;
    p->status = status;
    aos__up_note_cert(up, r);
    if (!ok_status(status) || p->stopped)
        return;
    const char *ct = aos_httpc_resp_header(r, "content-type");
    p->sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    if (p->is_init) {
        const char *sid = aos_httpc_resp_header(r, "mcp-session-id");
        if (sid && session_id_valid(sid)) {
            char *s = strdup(sid);
            if (s) {
                free(up->session_id);
                up->session_id = s;
            }
        } else if (sid) {
            aos__up_log(up, AOS_LOG_WARN, "upstream '%s': ignoring an invalid Mcp-Session-Id",
                        up->name);
        }
    }
}

static int on_event(void *data, const char *type, const char *payload, size_t len)
{
    up_post_t *p = data;
    aos_upstream_t *up = p->up;
    if (p->stopped || up->closing)
        return AOS_ECANCELED;
    p->events++;
    size_t i = 0;
    while (i < len && (payload[i] == ' ' || payload[i] == '\t' || payload[i] == '\n'))
        i++;
    if (i == len || strcmp(type, "message") != 0)
        return 0; /* a priming event (only an id, for resumption) or not ours */
    aos__up_dispatch_event(up, payload, len);
    return p->stopped || up->closing ? AOS_ECANCELED : 0;
}

static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data)
{
    up_post_t *p = data;
    (void)r;
    if (p->stopped)
        return AOS_ECANCELED;
    if (ok_status(p->status) && p->sse) {
        int rc = aos_sse_feed(&p->parser, chunk, len);
        return rc < 0 ? rc : 0;
    }
    if (ok_status(p->status))
        return aos_buf_append(&p->body, chunk, len) ? AOS_ETOOBIG : 0;
    if (p->body.len < HTTP_ERROR_BODY) /* enough to explain the error */
        aos_buf_append(&p->body, chunk,
                       len < HTTP_ERROR_BODY - p->body.len ? len : HTTP_ERROR_BODY - p->body.len);
    return 0;
}

/* The request's answer stream or body is complete. */
static void answer_done(aos_upstream_t *up, up_post_t *p)
{
    if (!p->sse && p->body.len > 0) {
        json_error_t jerr;
        json_t *msg = json_loadb(p->body.ptr, p->body.len, JSON_ALLOW_NUL, &jerr);
        if (!msg) {
            aos__up_request_failed(up, p->id, AOS_EUPSTREAM, "the response is not JSON");
            return;
        }
        aos__up_dispatch(up, msg);
        json_decref(msg);
        if (up->closing)
            return;
    }
    up_pending_t *pd = aos__up_pending_find(up, p->id);
    if (!pd || pd->post != p)
        return; /* answered, or carried elsewhere now */
    const char *last = p->parser.last_id[0] ? p->parser.last_id : p->resume_from;
    if (p->sse && last[0] && up->session_id) {
        /* the server closed the stream early: poll it again from the last event */
        up_post_t *r = post_new(up, GET_RESUME, p->session);
        if (r) {
            r->id = p->id;
            snprintf(r->resume_from, sizeof(r->resume_from), "%s", last);
            delay_post(up, r, retry_delay(p));
            pd->post = r;
            return;
        }
    }
    if (!p->sse && p->body.len == 0 && p->status == 202) {
        pd->post = NULL; /* accepted: the answer may come on the GET stream */
        return;
    }
    aos__up_request_failed(up, p->id, AOS_EUPSTREAM,
                           p->sse ? "the event stream ended without a response"
                                  : "the response did not answer the request");
}

static void http_error(aos_upstream_t *up, up_post_t *p)
{
    char why[320];
    json_t *msg = p->body.len ? json_loadb(p->body.ptr, p->body.len, JSON_ALLOW_NUL, NULL) : NULL;
    json_t *id = json_object_get(msg, "id");
    if (json_is_integer(id) && (uint64_t)json_integer_value(id) == p->id &&
        json_object_get(msg, "error")) {
        aos__up_dispatch(up, msg); /* a JSON-RPC error that answers the request */
        json_decref(msg);
        return;
    }
    json_decref(msg);
    aos__up_http_why(up, why, sizeof(why), p->status, p->body.ptr, p->body.len);
    aos__up_request_failed(up, p->id, AOS_EUPSTREAM, why);
}

static void get_ended(aos_upstream_t *up, up_post_t *p, int status)
{
    if (up->state != AOS_UP_READY)
        return;
    if (status == 0 && p->status == 405) {
        up->get_unsupported = 1;
        return;
    }
    if (status == 0 && p->status == 404 && p->session) {
        aos__up_session_expired(up, 0, same_session(up, p));
        return;
    }
    int progress =
        p->events > 0 || (p->parser.last_id[0] && strcmp(p->parser.last_id, up->get_last_id) != 0);
    if (p->parser.last_id[0])
        snprintf(up->get_last_id, sizeof(up->get_last_id), "%s", p->parser.last_id);
    uint64_t delay;
    if (progress) {
        delay = retry_delay(p);
        up->get_delay_ms = HTTP_RETRY_MS;
    } else {
        delay = up->get_delay_ms;
        up->get_delay_ms = up->get_delay_ms * 2 > HTTP_GET_MAX_DELAY_MS ? HTTP_GET_MAX_DELAY_MS
                                                                        : up->get_delay_ms * 2;
    }
    if (status || !ok_status(p->status))
        aos__up_log(up, AOS_LOG_DEBUG, "upstream '%s': GET stream ended (%ld); again in %llu ms",
                    up->name, p->status, (unsigned long long)delay);
    schedule_get(up, delay);
}

/* The POST of notifications/initialized ended: the server took it, or the
 * connection fails as an initialize that failed would. */
static void initialized_done(aos_upstream_t *up, up_post_t *p, int status, const char *errmsg)
{
    char why[320];
    if (status) {
        snprintf(why, sizeof(why), "notifications/initialized: %s", errmsg);
    } else if (p->status == 404 && p->session) {
        aos__up_session_expired(up, 0, same_session(up, p));
        return;
    } else if (!ok_status(p->status)) {
        aos__up_http_why(up, why, sizeof(why), p->status, p->body.ptr, p->body.len);
    } else {
        aos__up_initialized(up);
        return;
    }
    aos__up_conn_lost(up, why);
}

static void post_finish(aos_upstream_t *up, up_post_t *p, int status, const char *errmsg,
                        int was_get)
{
    char why[320];
    if (status == AOS_EUPSTREAM && (p->kind == POST_REQUEST || p->kind == POST_MESSAGE)) {
        snprintf(why, sizeof(why), "connection to the upstream failed: %s", errmsg);
        aos__up_conn_lost(up, why);
        return;
    }
    switch (p->kind) {
    case POST_REQUEST:
    case GET_RESUME:
        if (status) {
            snprintf(why, sizeof(why), "%s",
                     status == AOS_ETOOBIG ? "the response is too large" : errmsg);
            aos__up_request_failed(up, p->id, AOS_EUPSTREAM, why);
        } else if (ok_status(p->status)) {
            answer_done(up, p);
        } else if (p->status == 404 && p->session && !p->is_init) {
            if (p->kind == POST_REQUEST) {
                aos__up_session_expired(up, p->id, same_session(up, p));
            } else {
                int current = same_session(up, p);
                aos__up_request_failed(up, p->id, AOS_EUPSTREAM, "the session expired");
                if (!up->closing)
                    aos__up_session_expired(up, 0, current);
            }
        } else {
            http_error(up, p);
        }
        return;
    case POST_MESSAGE:
        if (p->initialized) {
            initialized_done(up, p, status, errmsg);
            return;
        }
        if (status) {
            aos__up_log(up, AOS_LOG_WARN, "upstream '%s': sending a message failed: %s", up->name,
                        errmsg);
        } else if (p->status == 404 && p->session) {
            aos__up_session_expired(up, 0, same_session(up, p));
        } else if (!ok_status(p->status)) {
            aos__up_log(up, AOS_LOG_WARN, "upstream '%s': http %ld for a notification or response",
                        up->name, p->status);
        } else if (!p->sse && p->body.len > 0) {
            json_t *msg = json_loadb(p->body.ptr, p->body.len, JSON_ALLOW_NUL, NULL);
            if (msg)
                aos__up_dispatch(up, msg);
            json_decref(msg);
        }
        return;
    case GET_STREAM:
        if (was_get)
            get_ended(up, p, status);
        return;
    case DELETE_SESSION:
        return;
    }
}

static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data)
{
    up_post_t *p = data;
    aos_upstream_t *up = p->up;
    (void)r;
    post_unlink(&up->posts, p);
    int was_get = up->get_stream == p;
    if (was_get)
        up->get_stream = NULL;
    /* p->req stays set meanwhile: post_stop (from a callback) then only marks
     * p stopped, and cancelling a finished request does nothing */
    if (!p->stopped && !up->closing)
        post_finish(up, p, status, errmsg ? errmsg : aos_strerror(status), was_get);
    p->req = NULL;
    post_detach_pending(up, p);
    post_free(p);
    aos__up_unref(up); /* may free up: last */
}

/* ---- transport entry points ---------------------------------------------- */

int aos__up_http_send(aos_upstream_t *up, json_t *msg, up_pending_t *pd)
{
    char *body = json_dumps(msg, JSON_COMPACT);
    if (!body)
        return AOS_ENOMEM;
    int init = pd && pd->internal;
    up_post_t *p = post_new(up, pd ? POST_REQUEST : POST_MESSAGE, init ? NULL : up->session_id);
    if (!p) {
        free(body);
        return AOS_ENOMEM;
    }
    p->id = pd ? pd->id : 0;
    p->is_init = init;
    int rc = start_transfer(up, p, "POST", body, strlen(body), pd ? 0 : HTTP_MESSAGE_TIMEOUT_MS);
    free(body);
    if (rc) {
        post_free(p);
        return rc == AOS_ENOMEM ? rc : AOS_EUPSTREAM;
    }
    if (pd)
        pd->post = p;
    return 0;
}

int aos__up_http_send_initialized(aos_upstream_t *up, json_t *msg)
{
    char *body = json_dumps(msg, JSON_COMPACT);
    up_post_t *p = body ? post_new(up, POST_MESSAGE, up->session_id) : NULL;
    if (p)
        p->initialized = 1;
    int rc =
        p ? start_transfer(up, p, "POST", body, strlen(body), HTTP_MESSAGE_TIMEOUT_MS) : AOS_ENOMEM;
    free(body);
    if (rc) {
        if (p)
            post_free(p);
        return rc == AOS_ENOMEM ? rc : AOS_EUPSTREAM;
    }
    return 0;
}

void aos__up_http_abandon(aos_upstream_t *up, up_pending_t *pd)
{
    up_post_t *p = pd->post;
    if (!p)
        return;
    pd->post = NULL;
    post_stop(up, p);
}

void aos__up_http_init(aos_upstream_t *up)
{
    if (up->get_stream)
        post_stop(up, up->get_stream);
    free(up->session_id);
    up->session_id = NULL;
    up->get_last_id[0] = '\0';
}

void aos__up_http_ready(aos_upstream_t *up)
{
    up->get_unsupported = 0;
    up->get_last_id[0] = '\0';
    up->get_delay_ms = HTTP_RETRY_MS;
    schedule_get(up, 0);
}

void aos__up_http_disconnect(aos_upstream_t *up)
{
    for (up_post_t *p = up->posts, *nx; p; p = nx) {
        nx = p->next;
        if (p->kind != DELETE_SESSION)
            post_stop(up, p);
    }
    while (up->delayed)
        post_stop(up, up->delayed);
    up->get_stream = NULL;
    uv_timer_stop(&up->http_timer);
}

void aos__up_http_close(aos_upstream_t *up)
{
    aos__up_http_disconnect(up);
    if (!up->session_id)
        return;
    /* end the session (best effort): the server may free its state now */
    up_post_t *p = post_new(up, DELETE_SESSION, up->session_id);
    if (p && start_transfer(up, p, "DELETE", NULL, 0, HTTP_DELETE_TIMEOUT_MS) != 0)
        post_free(p);
}
