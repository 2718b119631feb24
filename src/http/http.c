/* http.c - libmicrohttpd on the libuv loop; see http.h.
 *
 * MHD runs with its own epoll set (MHD_USE_EPOLL, no internal thread). We
 * watch that epoll fd with a uv_poll and call MHD_run() when it is readable
 * or when MHD's timeout expires. MHD_ALLOW_SUSPEND_RESUME registers an
 * eventfd in the same set, so resuming a connection from any callback wakes
 * the poll and MHD picks the connection up on the next turn of the loop.
 *
 * Connections are admitted by conns.h (limits per address group and in
 * all, the oldest idle connection making room, deadlines for request
 * heads): MHD's accept policy asks it, its connection notifications keep
 * its records, the access callback marks a connection busy and the
 * completion callback idle again, and a timer sweeps the deadlines. To
 * close an idle connection we shut its socket down; MHD sees the hang-up
 * on its next run and cleans up.
 *
 * A request goes through: its head (checked, routed, authorized - any
 * refusal is answered at once and MHD then closes the connection without
 * reading the body) -> its body (bounded per route and within the
 * server's body memory) -> handler. A handler that does not answer at once leaves
 * the connection suspended; aos_http_respond*() later stores the response
 * and resumes it, and the access callback queues it on re-entry. Streams
 * use a callback response whose reader suspends the connection when it has
 * nothing to send and is resumed by aos_http_stream_write(). On plain HTTP
 * a stream whose reader finds nothing to send is instead handed to a writer
 * thread (writer.h) for the rest of its life, so that fanning one event out
 * to many streams does not put every send() on the loop thread. */
#include "http/http.h"
#include "buf/buf.h"
#include "http/conns.h"
#include "http/json.h"
#include "http/route.h"
#include "http/writer.h"
#include "log/log.h"
#include "redact/redact.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_PARAMS       8
#define MAX_RESP_HEADERS 12
/* MHD's own connection limit is ours plus this: connections we closed to
 * make room still count in MHD until its next run cleans them up, and MHD
 * refuses (or stops accepting) at its limit before asking us */
#define MHD_LIMIT_SLACK 64
/* per connection: request line and headers up to about half of it, and
 * the read buffer (see aos_http_start) */
#define AOS_HTTP_CONN_MEMORY (16u * 1024)
#define LIMIT_LOG_MS         10000 /* at most one warning per 10 s about limits */
/* A refused request body read and dropped before the answer, at most */
#define HTTP_DRAIN_MAX (4u << 20)

struct route_set {
    const aos_http_route_t *routes;
    aos__route_t *c; /* each pattern compiled, one per route */
    size_t n;
    size_t pages; /* how many of them are PAGE routes */
    void *data;
    struct route_set *next;
};

struct aos_http_s {
    uv_loop_t *loop; /* borrowed */
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    uv_timer_t sweep; /* the next deadline of an idle connection */
    int handles_open;
    aos_http_cfg_t cfg;
    char *listen; /* owned copy of cfg.listen */
    char *tls_cert_pem, *tls_key_pem;
    struct route_set *routes;
    size_t pages; /* PAGE routes in all the sets: none, no lookup per GET */
    aos_http_authorize_fn authorize;
    void *authorize_data;
    aos_http_gate_fn gate;
    void *gate_data;
    aos_http_handler_fn fallback;
    void *fallback_data;
    uint16_t port;
    int stopping;
    aos__writers_t *writers; /* NULL: streams are sent on the loop */
    aos_http_req_t *live;    /* every request between first call and completion */
    aos__conns_t conns;      /* every connection MHD has */
    size_t body_held;        /* bytes allocated for request bodies, all requests */
    uint64_t limit_logged_ms;
    uint64_t limit_logged_n; /* evicted + refused when last logged */
    aos_http_observe_fn observe;
    void *observe_data;
    unsigned nlive; /* requests in h->live */
};

enum req_state { REQ_RECEIVING, REQ_DISPATCHED, REQ_ANSWERED };

struct aos_http_req_s {
    aos_http_t *h; /* borrowed */
    struct MHD_Connection *conn;
    const char *method; /* MHD's, valid for the request */
    const char *url;    /* MHD's */
    const aos_http_route_t *route;
    void *route_data;
    char *pathcopy; /* owns the captured param values */
    const char *pname[MAX_PARAMS];
    const char *pval[MAX_PARAMS];
    int nparams;
    aos_buf_t body; /* its cap counts in h->body_held */
    size_t max_body;
    int too_big;  /* the body passed max_body: discarded, 413 */
    int refusing; /* refused from the head; the body is read and dropped first */
    aos_err_t refusal;
    size_t drained;  /* bytes of it dropped so far */
    int over_cap;    /* the body did not fit in the body memory: discarded, 503 */
    aos__conn_t *cn; /* its connection's record; NULL if untracked */
    enum req_state state;
    int in_handler;
    int suspended;
    struct MHD_Response *pending; /* answer waiting for the resume */
    unsigned pending_status;
    char *hname[MAX_RESP_HEADERS];
    char *hval[MAX_RESP_HEADERS];
    int nheaders;
    /* streaming */
    int streaming;
    int stream_closed;
    int reader_suspended;
    int http11;        /* MHD frames unknown-length bodies as chunks */
    int direct;        /* handed to a writer thread: ds is in use */
    int direct_broken; /* the writer saw the peer go away */
    aos__dstream_t ds;
    aos_buf_t out;
    aos_http_close_fn on_close;
    void *close_data;
    void *principal;       /* borrowed: owned by the authorizer's cache */
    aos_tracectx_t *trace; /* owned: the request's context, parsed on first use */
    char traceparent[AOS_TRACEPARENT_LEN + 1]; /* for the response, "" for none */
    void *span;                                /* the server span, ended by span_end */
    void (*span_end)(void *span, int aborted);
    char peer[INET6_ADDRSTRLEN + 8];
    uint64_t started_hr; /* uv_hrtime() at its first byte */
    unsigned status;     /* the answer's, 0 until one is queued */
    aos_http_req_t *prev, *next;
};

static void update_timer(aos_http_t *h);
static void on_timer(uv_timer_t *t);
static void body_release(aos_http_req_t *r);

/* MHD picks up a resumed connection on its next run; in external-polling
 * mode nothing wakes it, so run it on the next turn of the loop. */
static void kick(aos_http_t *h)
{
    if (h->d)
        uv_timer_start(&h->timer, on_timer, 0, 0);
}

/* ---- the loop side --------------------------------------------------- */

static void run_mhd(aos_http_t *h)
{
    if (!h->d)
        return;
    MHD_run(h->d);
    update_timer(h);
}

static void on_poll(uv_poll_t *p, int status, int events)
{
    run_mhd(p->data);
}

static void on_timer(uv_timer_t *t)
{
    run_mhd(t->data);
}

static void on_sweep(uv_timer_t *t);

/* Closes the idle connections past their deadline and waits for the next
 * one. The hang-ups wake MHD through its epoll set. */
static void sweep(aos_http_t *h)
{
    uint64_t now = uv_now(h->loop);
    uint64_t next = aos__conns_sweep(&h->conns, now);
    if (next)
        uv_timer_start(&h->sweep, on_sweep, next > now ? next - now : 0, 0);
    else
        uv_timer_stop(&h->sweep);
}

static void on_sweep(uv_timer_t *t)
{
    sweep(t->data);
}

static void update_timer(aos_http_t *h)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (h->d && MHD_get_timeout(h->d, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&h->timer);
    if (h->d)
        sweep(h);
}

/* ---- connections --------------------------------------------------------- */

/* conns.h's close: the socket is shut down, MHD sees the hang-up. */
static void conn_close(aos__conn_t *c, void *data)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c->owner, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (ci)
        shutdown(ci->connect_fd, SHUT_RDWR);
}

static void log_limits(aos_http_t *h)
{
    aos__conns_t *cs = &h->conns;
    uint64_t now = uv_now(h->loop), n = cs->evicted + cs->refused;
    if (n == h->limit_logged_n || now - h->limit_logged_ms < LIMIT_LOG_MS)
        return;
    h->limit_logged_ms = now;
    h->limit_logged_n = n;
    aos_log_warn("http",
                 "connection limits reached: %llu idle connections closed to make room and %llu "
                 "new ones refused so far (%u open)",
                 (unsigned long long)cs->evicted, (unsigned long long)cs->refused, cs->count);
}

static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
    aos_http_t *h = cls;
    uint64_t n = h->conns.evicted + h->conns.refused;
    int ok = aos__conns_admit(&h->conns, addr, uv_now(h->loop));
    if (h->conns.evicted + h->conns.refused != n)
        log_limits(h);
    return ok ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    aos_http_t *h = cls;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
        aos__conn_t *c =
            aos__conns_add(&h->conns, ci ? ci->client_addr : NULL, uv_now(h->loop), conn);
        *socket_context = c;
        if (!c) { /* out of memory: not one connection we cannot account for */
            ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
            if (ci)
                shutdown(ci->connect_fd, SHUT_RDWR);
        }
        return;
    }
    aos__conn_t *c = *socket_context;
    if (c) {
        aos_http_conn_slot_t *slot = c->slot;
        c->slot = NULL;
        if (slot)
            slot->release(slot);
        aos__conns_remove(&h->conns, c);
    }
    *socket_context = NULL;
}

static aos__conn_t *conn_record(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* ---- requests ---------------------------------------------------------- */

static void live_add(aos_http_t *h, aos_http_req_t *r)
{
    h->nlive++;
    r->next = h->live;
    if (h->live)
        h->live->prev = r;
    h->live = r;
}

static void live_remove(aos_http_t *h, aos_http_req_t *r)
{
    if (r->prev || h->live == r)
        h->nlive--;
    if (r->prev)
        r->prev->next = r->next;
    else
        h->live = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void req_free(aos_http_req_t *r)
{
    if (r->pending)
        MHD_destroy_response(r->pending);
    for (int i = 0; i < r->nheaders; i++) {
        free(r->hname[i]);
        free(r->hval[i]);
    }
    body_release(r);
    aos_buf_release(&r->out);
    if (r->direct)
        aos__writers_dispose(&r->ds);
    free(r->trace);
    free(r->pathcopy);
    free(r);
}

/* Param names point into the pattern, which continues past the name with
 * "/..."; compare up to the name's end. */
const char *aos_http_param(const aos_http_req_t *r, const char *name)
{
    size_t n = strlen(name);
    for (int i = 0; i < r->nparams; i++) {
        const char *p = r->pname[i];
        if (strncmp(p, name, n) == 0 && (p[n] == '\0' || p[n] == '/'))
            return r->pval[i];
    }
    return NULL;
}

/* A browser navigating to a page of the UI: a GET whose Accept header
 * starts with text/html (what browsers send for a navigation; fetch and
 * EventSource send other types first, API clients rarely send any). */
static int is_page_request(aos_http_req_t *r)
{
    if (strcmp(r->method, "GET") != 0)
        return 0;
    const char *accept = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Accept");
    return accept && !strncasecmp(accept, "text/html", 9);
}

/* 1 if a PAGE route's pattern is exactly url (pages are plain paths). */
static int has_page_route(aos_http_t *h, const char *url)
{
    if (!h->pages)
        return 0;
    for (struct route_set *s = h->routes; s; s = s->next)
        for (size_t i = 0; s->pages && i < s->n; i++)
            if (!strcmp(s->routes[i].method, "PAGE") && !strcmp(s->routes[i].pattern, url))
                return 1;
    return 0;
}

static int find_route(aos_http_t *h, aos_http_req_t *r)
{
    int path_matched = 0, page = -1; /* page: unknown until a route needs it */
    aos__route_path_t u;
    free(r->pathcopy);
    r->pathcopy = NULL;
    if (aos__route_split(r->url, &u))
        return AOS_ENOMEM;
    r->pathcopy = u.buf;
    for (struct route_set *s = h->routes; s; s = s->next) {
        for (size_t i = 0; i < s->n; i++) {
            const aos_http_route_t *rt = &s->routes[i];
            if (!aos__route_match(rt->pattern, &s->c[i], &u, r->pname, r->pval, MAX_PARAMS,
                                  &r->nparams))
                continue;
            if (!strcmp(rt->method, "PAGE")) {
                if (page < 0)
                    page = is_page_request(r);
                if (!page)
                    continue; /* an API call: the API route of the path serves it */
                r->route = rt;
                r->route_data = s->data;
                return 0;
            }
            if (page != 0 && !strcmp(rt->method, "GET") && !strcmp(r->method, "GET") &&
                has_page_route(h, r->url)) {
                if (page < 0)
                    page = is_page_request(r);
                if (page)
                    continue; /* a browser navigating: the page route serves it */
            }
            if (strcmp(rt->method, "*") != 0 && strcmp(rt->method, r->method) != 0) {
                path_matched = 1;
                continue;
            }
            r->route = rt;
            r->route_data = s->data;
            return 0;
        }
    }
    r->nparams = 0;
    return path_matched ? AOS_EMETHOD : AOS_ENOTFOUND;
}

static int queue_now(aos_http_req_t *r, unsigned status, struct MHD_Response *resp)
{
    for (int i = 0; i < r->nheaders; i++)
        MHD_add_response_header(resp, r->hname[i], r->hval[i]);
    if (r->traceparent[0])
        MHD_add_response_header(resp, "traceparent", r->traceparent);
    enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ok == MHD_YES ? 0 : AOS_EIO;
}

/* Queues resp now if we are inside MHD's access callback, else keeps it
 * and resumes the connection so that the callback runs again. */
static int deliver(aos_http_req_t *r, unsigned status, struct MHD_Response *resp)
{
    if (r->state == REQ_ANSWERED) {
        MHD_destroy_response(resp);
        return AOS_EINVAL;
    }
    r->state = REQ_ANSWERED;
    r->status = status;
    if (r->in_handler)
        return queue_now(r, status, resp);
    r->pending = resp;
    r->pending_status = status;
    if (r->suspended) {
        r->suspended = 0;
        MHD_resume_connection(r->conn);
        kick(r->h);
    }
    return 0;
}

int aos_http_respond(aos_http_req_t *r, unsigned status, const char *content_type, const void *body,
                     size_t len)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return AOS_ENOMEM;
    if (content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    return deliver(r, status, resp);
}

int aos_http_respond_json(aos_http_req_t *r, unsigned status, json_t *body)
{
    struct MHD_Response *resp;
    if (body) {
        /* jansson's compact text, written by aos_buf_json (an object or an
         * array: json_dumps refuses anything else) */
        char *s =
            json_is_object(body) || json_is_array(body) ? aos_buf_json_text(body, NULL) : NULL;
        json_decref(body);
        if (!s)
            return AOS_ENOMEM;
        resp = MHD_create_response_from_buffer(strlen(s), s, MHD_RESPMEM_MUST_FREE);
        if (!resp) {
            free(s);
            return AOS_ENOMEM;
        }
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    } else {
        resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
        if (!resp)
            return AOS_ENOMEM;
    }
    return deliver(r, status, resp);
}

static int respond_code(aos_http_req_t *r, int code, const char *msg)
{
    if (code == AOS_EUNAUTH)
        aos_http_add_header(r, "WWW-Authenticate", "Bearer");
    /* an error message may quote what it refused: redacted (redact.h) */
    char text[sizeof(((aos_err_t *)0)->msg) + 64];
    snprintf(text, sizeof(text), "%s", msg && *msg ? msg : aos_strerror(code));
    aos_redact_cstr(aos_redact_global(), text, sizeof(text));
    json_t *b = json_pack("{s:{s:s, s:s}}", "error", "code", aos_err_code(code), "message", text);
    return aos_http_respond_json(r, (unsigned)aos_err_http_status(code), b);
}

int aos_http_respond_error(aos_http_req_t *r, int code, const char *fmt, ...)
{
    char msg[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
    }
    return respond_code(r, code, msg);
}

int aos_http_respond_err(aos_http_req_t *r, const aos_err_t *err)
{
    return respond_code(r, err->code, aos_err_msg(err));
}

int aos_http_answered(const aos_http_req_t *r)
{
    return r->state == REQ_ANSWERED;
}

/* ---- streams ------------------------------------------------------------ */

/* MHD has sent everything so far (it only asks the reader for more with an
 * empty write buffer) and the connection is now suspended: from here on the
 * socket is the writer's until it hands it back (on_released). */
static void go_direct(aos_http_req_t *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    if (!ci)
        return;
    memset(&r->ds, 0, sizeof(r->ds));
    r->ds.owner = r;
    if (aos__writers_attach(r->h->writers, &r->ds, ci->connect_fd, r->http11) == 0)
        r->direct = 1;
}

/* The writer let go of the socket: let MHD end the response. */
static void on_released(aos__dstream_t *d, void *data)
{
    aos_http_req_t *r = d->owner;
    r->stream_closed = 1;
    r->direct_broken = d->broken;
    if (r->reader_suspended) {
        r->reader_suspended = 0;
        MHD_resume_connection(r->conn);
        kick(r->h);
    }
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    aos_http_req_t *r = cls;
    if (r->out.len) {
        size_t n = r->out.len < max ? r->out.len : max;
        memcpy(buf, r->out.ptr, n);
        aos_buf_consume(&r->out, n);
        return (ssize_t)n;
    }
    if (r->stream_closed)
        return r->direct_broken ? MHD_CONTENT_READER_END_WITH_ERROR
                                : MHD_CONTENT_READER_END_OF_STREAM;
    r->reader_suspended = 1;
    MHD_suspend_connection(r->conn);
    if (r->h->writers && !r->direct)
        go_direct(r);
    return 0;
}

int aos_http_stream_open(aos_http_req_t *r, unsigned status, const char *content_type)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, stream_reader, r, NULL);
    if (!resp)
        return AOS_ENOMEM;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    r->streaming = 1;
    return deliver(r, status, resp);
}

static void wake_reader(aos_http_req_t *r)
{
    if (r->reader_suspended && !r->direct) {
        r->reader_suspended = 0;
        MHD_resume_connection(r->conn);
        kick(r->h);
    }
}

int aos_http_stream_write(aos_http_req_t *r, const void *data, size_t len)
{
    if (!r->streaming || r->stream_closed)
        return AOS_EINVAL;
    if (r->direct)
        return aos__writers_write(&r->ds, data, len);
    int rc = aos_buf_append(&r->out, data, len);
    if (rc)
        return rc;
    wake_reader(r);
    return 0;
}

size_t aos_http_stream_pending(const aos_http_req_t *r)
{
    if (r->direct)
        return aos__writers_pending((aos__dstream_t *)&r->ds);
    return r->out.len;
}

int aos_http_stream_close(aos_http_req_t *r)
{
    if (!r->streaming || r->stream_closed)
        return AOS_EINVAL;
    r->stream_closed = 1;
    if (r->direct)
        aos__writers_close(&r->ds); /* on_released resumes it */
    else
        wake_reader(r);
    return 0;
}

/* ---- MHD callbacks ------------------------------------------------------- */

static void set_peer(aos_http_req_t *r)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    r->peer[0] = '\0';
    if (!ci || !ci->client_addr)
        return;
    const struct sockaddr *sa = ci->client_addr;
    if (sa->sa_family == AF_INET)
        inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, r->peer, sizeof(r->peer));
    else if (sa->sa_family == AF_INET6)
        inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, r->peer,
                  sizeof(r->peer));
}

/* ---- the request head ------------------------------------------------------ */

/* libmicrohttpd 0.9.75 cuts a field value at a NUL byte and silently drops
 * what follows ("Bearer <token>\0junk" reads as "Bearer <token>"); RFC 9110
 * section 5.5 wants such a message refused. Its parser works in place:
 * each field line stays where it was received, the colon and the line
 * terminator (CRLF or LF) zeroed, so a value is followed by one or two
 * zero bytes and then by the next line. Anything else between a value and
 * the next line means the value held a NUL byte (or the field was folded
 * over lines, which RFC 9112 section 5.2 lets a server refuse too). */
struct head_scan {
    const char *start, *end; /* the raw head: request line to empty line */
    const char *prev;        /* end of the previous line's content */
    int bad;
    int authorization; /* Authorization fields seen */
};

static int all_zero(const char *p, const char *e)
{
    for (; p < e; p++)
        if (*p)
            return 0;
    return 1;
}

static enum MHD_Result scan_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  size_t key_size, const char *value, size_t value_size)
{
    struct head_scan *s = cls;
    if (!key || !value || key < s->start || value < key + key_size + 1 ||
        value + value_size > s->end || (s->prev && (key < s->prev + 1 || key > s->prev + 2)) ||
        (s->prev && !all_zero(s->prev, key))) {
        s->bad = 1;
        return MHD_NO;
    }
    /* between name and value: the zeroed colon, then optional whitespace */
    for (const char *p = key + key_size + 1; p < value; p++) {
        if (*p != ' ' && *p != '\t') {
            s->bad = 1;
            return MHD_NO;
        }
    }
    if (key_size == 13 && !strncasecmp(key, "Authorization", 13))
        s->authorization++;
    s->prev = value + value_size;
    return MHD_YES;
}

/* 0 if the head is clean, else AOS_EBADREQ with a message. */
static int check_head(aos_http_req_t *r, const char *version, aos_err_t *err)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!ci || !r->method)
        return 0;
    struct head_scan s = {r->method, r->method + ci->header_size, NULL, 0, 0};
    /* the request line ends with the version, in place too (or "" if none) */
    if (version && version > s.start && version < s.end)
        s.prev = version + strlen(version);
    MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, scan_field, &s);
    /* after the last field: its terminator and the empty line's */
    if (!s.bad && s.prev && (s.end - s.prev < 2 || s.end - s.prev > 4 || !all_zero(s.prev, s.end)))
        s.bad = 1;
    if (s.bad)
        return aos_err_set(err, AOS_EBADREQ,
                           "malformed request head: a NUL byte in a header, or a header folded "
                           "over lines");
    if (s.authorization > 1)
        return aos_err_set(err, AOS_EBADREQ, "more than one Authorization header");
    return 0;
}

/* ---- request bodies ------------------------------------------------------- */

/* Makes room for n more body bytes within the route's limit and the
 * server's body memory: 0, AOS_ETOOBIG (past the route's limit),
 * AOS_EUNAVAIL (past the body memory) or AOS_ENOMEM. exact: n is the
 * whole declared body (one allocation); else the buffer doubles. The
 * buffer keeps aos_buf's invariants; its cap is what counts. */
static int body_room(aos_http_req_t *r, size_t n, int exact)
{
    aos_http_t *h = r->h;
    aos_buf_t *b = &r->body;
    if (n > r->max_body || b->len > r->max_body - n)
        return AOS_ETOOBIG;
    size_t need = b->len + n + 1;
    if (need <= b->cap)
        return 0;
    size_t cap = need;
    if (!exact) {
        cap = b->cap < 4096 ? 4096 : b->cap * 2;
        if (cap < need)
            cap = need;
        if (cap > r->max_body + 1)
            cap = r->max_body + 1;
    }
    size_t extra = cap - b->cap;
    if (extra > h->cfg.body_memory - h->body_held)
        return AOS_EUNAVAIL;
    char *p = realloc(b->ptr, cap);
    if (!p)
        return AOS_ENOMEM;
    if (!b->ptr)
        p[0] = '\0';
    b->ptr = p;
    b->cap = cap;
    h->body_held += extra;
    return 0;
}

static void body_release(aos_http_req_t *r)
{
    r->h->body_held -= r->body.cap;
    aos_buf_release(&r->body);
}

/* A refusal decided from the head. MHD closes the connection right after
 * an answer given before the body was read, and a client still sending a
 * body then reads a reset instead of the answer (libmicrohttpd 0.9.75 has
 * no lingering close). So for a caller the authorizer let in (drain: a
 * body too large for the route), a small body (at most HTTP_DRAIN_MAX
 * bytes, declared or chunked) is read and dropped first - never kept,
 * never counted in the body memory - and the answer given at its end. A
 * larger one, a client that asked for 100 Continue (it sends nothing
 * yet), and every caller that was not let in are answered at once. */
static void refuse(aos_http_req_t *r, const aos_err_t *err, int drain)
{
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    const char *te = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding");
    const char *ex = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Expect");
    unsigned long long n = cl ? strtoull(cl, NULL, 10) : 0;
    int body = te || n > 0;
    if (drain && body && !ex && n <= HTTP_DRAIN_MAX && r->state == REQ_RECEIVING) {
        r->refusing = 1;
        r->refusal = *err;
        return;
    }
    aos_http_respond_err(r, err);
}

static void refuse_code(aos_http_req_t *r, int drain, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void refuse_code(aos_http_req_t *r, int drain, int code, const char *fmt, ...)
{
    aos_err_t err = {code, ""};
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err.msg, sizeof(err.msg), fmt, ap);
    va_end(ap);
    refuse(r, &err, drain);
}

/* Answers at once a body that may not come (from the first call). */
static void body_admit(aos_http_t *h, aos_http_req_t *r)
{
    if (MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Transfer-Encoding"))
        return; /* chunked: counted as it arrives */
    const char *cl = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Content-Length");
    if (!cl)
        return;
    /* MHD has checked it is a number */
    unsigned long long n = strtoull(cl, NULL, 10);
    if (n == 0)
        return;
    if (n > r->max_body) {
        refuse_code(r, r->route && r->route->perm != AOS_PERM_PUBLIC, AOS_ETOOBIG,
                    "request body exceeds %zu bytes", r->max_body);
        return;
    }
    if (n >= h->cfg.body_memory) {
        aos_http_respond_error(r, AOS_ETOOBIG,
                               "request body exceeds the %zu bytes this server holds for request "
                               "bodies",
                               h->cfg.body_memory);
        return;
    }
    int rc = body_room(r, (size_t)n, 1);
    if (rc == AOS_EUNAVAIL) {
        aos_http_add_header(r, "Retry-After", "1");
        aos_http_respond_error(r, AOS_EUNAVAIL, "too many request bodies in flight; retry later");
    } else if (rc) {
        aos_http_respond_error(r, rc, NULL);
    }
}

/* The first call: everything decided from the head is decided here, and a
 * refusal answered at once (MHD then closes the connection without reading
 * the body, and sends no 100 Continue); see refuse for the one exception. */
static void on_head(aos_http_t *h, aos_http_req_t *r, const char *version, int route_rc)
{
    aos_err_t err = {0, ""};
    r->in_handler = 1;
    if (h->gate && h->gate(r, r->peer, &err, h->gate_data))
        aos_http_respond_err(r, &err);
    else if (check_head(r, version, &err))
        aos_http_respond_err(r, &err);
    else if (h->stopping)
        aos_http_respond_error(r, AOS_EUNAVAIL, "server is shutting down");
    else if (route_rc == AOS_ENOMEM)
        aos_http_respond_error(r, AOS_ENOMEM, NULL);
    else if (route_rc == AOS_EMETHOD)
        aos_http_respond_error(r, AOS_EMETHOD, "%s not allowed on %s", r->method, r->url);
    else if (!r->route && !h->fallback)
        aos_http_respond_error(r, AOS_ENOTFOUND, "no route for %s %s", r->method, r->url);
    else if (r->route && r->route->perm != AOS_PERM_PUBLIC && h->authorize &&
             h->authorize(r, r->route->perm, &err, h->authorize_data))
        aos_http_respond_err(r, &err);
    else
        body_admit(h, r);
    r->in_handler = 0;
}

static void dispatch(aos_http_t *h, aos_http_req_t *r)
{
    if (h->stopping) {
        aos_http_respond_error(r, AOS_EUNAVAIL, "server is shutting down");
        return;
    }
    if (r->refusing) { /* its body is read: now the answer */
        aos_http_respond_err(r, &r->refusal);
        return;
    }
    if (r->too_big) {
        aos_http_respond_error(r, AOS_ETOOBIG, "request body exceeds %zu bytes", r->max_body);
        return;
    }
    if (r->over_cap) {
        aos_http_add_header(r, "Retry-After", "1");
        aos_http_respond_error(r, AOS_EUNAVAIL, "too many request bodies in flight; retry later");
        return;
    }
    aos_http_handler_fn fn = r->route ? r->route->handler : h->fallback;
    void *data = r->route ? r->route_data : h->fallback_data;
    int rc = fn(r, data);
    if (rc < 0 && r->state != REQ_ANSWERED)
        respond_code(r, rc, NULL);
}

static void on_upload(aos_http_req_t *r, const char *data, size_t n)
{
    if (r->refusing) {
        r->drained += n;
        if (r->drained > HTTP_DRAIN_MAX) { /* more than it said: answered now */
            r->refusing = 0;
            aos_http_respond_err(r, &r->refusal);
        }
        return;
    }
    if (r->too_big || r->over_cap)
        return; /* discarded; answered at the end */
    int rc = body_room(r, n, 0);
    if (!rc)
        rc = aos_buf_append(&r->body, data, n);
    if (!rc)
        return;
    if (rc == AOS_EUNAVAIL)
        r->over_cap = 1;
    else
        r->too_big = 1;
    body_release(r);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    aos_http_t *h = cls;
    aos_http_req_t *r = *con_cls;
    if (!r) {
        aos__conn_t *cn = conn_record(conn);
        if (cn && cn->state == AOS__CONN_CLOSING)
            return MHD_NO; /* closed to make room or past its deadline */
        if (cn)
            aos__conns_busy(&h->conns, cn);
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->h = h;
        r->conn = conn;
        r->cn = cn;
        r->started_hr = uv_hrtime();
        r->method = method;
        r->url = url;
        r->state = REQ_RECEIVING;
        r->http11 = version && strncmp(version, "HTTP/1.", 7) == 0 && version[7] >= '1' &&
                    version[7] <= '9';
        aos_buf_init(&r->body, 0);
        aos_buf_init(&r->out, 0);
        set_peer(r);
        live_add(h, r);
        *con_cls = r;
        int rc = find_route(h, r);
        if (r->route && r->route->max_body)
            r->max_body = r->route->max_body;
        else if (r->route && r->route->perm != AOS_PERM_PUBLIC)
            r->max_body = h->cfg.max_body;
        else
            r->max_body = 0; /* a body is only read for an authorized caller */
        on_head(h, r, version, rc);
        return MHD_YES;
    }
    if (r->state == REQ_ANSWERED && !r->pending)
        return MHD_YES; /* answered from the head; MHD discards the body */
    if (*upload_size) {
        on_upload(r, upload, *upload_size);
        *upload_size = 0;
        return MHD_YES;
    }
    r->in_handler = 1;
    if (r->pending) {
        struct MHD_Response *resp = r->pending;
        r->pending = NULL;
        queue_now(r, r->pending_status, resp);
    } else if (r->state == REQ_RECEIVING) {
        r->state = REQ_DISPATCHED;
        dispatch(h, r);
    }
    r->in_handler = 0;
    if (r->state != REQ_ANSWERED && !r->suspended) {
        r->suspended = 1;
        MHD_suspend_connection(conn);
    }
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    aos_http_t *h = cls;
    aos_http_req_t *r = *con_cls;
    if (!r)
        return;
    *con_cls = NULL;
    live_remove(h, r);
    aos__conn_t *cn = r->cn;
    if (h->observe)
        h->observe(r, r->status, (double)(uv_hrtime() - r->started_hr) / 1e9,
                   toe != MHD_REQUEST_TERMINATED_COMPLETED_OK, h->observe_data);
    if (r->span_end)
        r->span_end(r->span, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK);
    if (r->on_close)
        r->on_close(r, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK, r->close_data);
    req_free(r);
    /* kept alive for the next request (or closed right after: removed then) */
    if (cn)
        aos__conns_idle(&h->conns, cn, uv_now(h->loop));
}

void aos_http_set_observer(aos_http_t *h, aos_http_observe_fn fn, void *data)
{
    h->observe = fn;
    h->observe_data = data;
}

void aos_http_stats(const aos_http_t *h, aos_http_stats_t *out)
{
    out->conns = h->conns.count;
    out->requests = h->nlive;
    out->evicted = h->conns.evicted;
    out->refused = h->conns.refused;
    out->timed_out = h->conns.timed_out;
}

static void mhd_logger(void *cls, const char *fmt, va_list ap)
{
    char msg[512];
    vsnprintf(msg, sizeof(msg), fmt, ap);
    size_t n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    aos_log_debug("http", "%s", msg);
}

/* ---- the request accessors -------------------------------------------- */

const char *aos_http_method(const aos_http_req_t *r)
{
    return r->method;
}

const char *aos_http_path(const aos_http_req_t *r)
{
    return r->url;
}

const char *aos_http_header(aos_http_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

const char *aos_http_query(aos_http_req_t *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *aos_http_body(const aos_http_req_t *r, size_t *len)
{
    if (len)
        *len = r->body.len;
    return r->body.ptr ? r->body.ptr : "";
}

json_t *aos_http_parse_json(const char *body, size_t len, aos_err_t *err)
{
    if (!len) {
        aos_err_set(err, AOS_EPARSE, "request body is empty");
        return NULL;
    }
    json_t *j = aos__json_fast(body, len); /* the common case, in a fraction of the time */
    if (j)
        return j;
    json_error_t je;
    j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        aos_err_set(err, AOS_EPARSE, "malformed JSON at line %d column %d: %s", je.line, je.column,
                    je.text);
    return j;
}

json_t *aos_http_body_json(aos_http_req_t *r, aos_err_t *err)
{
    return aos_http_parse_json(r->body.ptr, r->body.len, err);
}

/* ---- form bodies ------------------------------------------------------------------ */

int aos_http_body_is_form(aos_http_req_t *r)
{
    const char *ct = aos_http_header(r, "Content-Type");
    return ct && (!strncasecmp(ct, "multipart/form-data", 19) ||
                  !strncasecmp(ct, "application/x-www-form-urlencoded", 33));
}

struct form_build {
    aos_http_form_t *form;
    aos_buf_t cur; /* the bytes of the last part */
    int nomem, toomany;
};

static char *dup_or_null(const char *s, int *nomem)
{
    char *d = s ? strdup(s) : NULL;
    if (s && !d)
        *nomem = 1;
    return d;
}

/* Ends the part being collected: its bytes go to the last part. */
static void form_close_part(struct form_build *b)
{
    if (b->form->n == 0)
        return;
    aos_http_form_part_t *p = &b->form->parts[b->form->n - 1];
    if (p->data)
        return;
    p->len = b->cur.len;
    p->data = malloc(b->cur.len + 1);
    if (!p->data) {
        b->nomem = 1;
    } else {
        if (b->cur.len)
            memcpy(p->data, b->cur.ptr, b->cur.len);
        p->data[b->cur.len] = '\0';
    }
    b->cur.len = 0;
}

/* MHD calls this with each piece of each field: off 0 starts a field. */
static enum MHD_Result form_piece(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *filename, const char *content_type,
                                  const char *transfer_encoding, const char *data, uint64_t off,
                                  size_t size)
{
    (void)kind;
    (void)transfer_encoding;
    struct form_build *b = cls;
    aos_http_form_t *f = b->form;
    if (off == 0) {
        form_close_part(b);
        if (f->n == AOS_HTTP_FORM_PARTS_MAX) {
            b->toomany = 1;
            return MHD_NO;
        }
        aos_http_form_part_t *np = realloc(f->parts, (f->n + 1) * sizeof(*np));
        if (!np) {
            b->nomem = 1;
            return MHD_NO;
        }
        f->parts = np;
        aos_http_form_part_t *p = &f->parts[f->n++];
        memset(p, 0, sizeof(*p));
        p->name = dup_or_null(key ? key : "", &b->nomem);
        p->filename = dup_or_null(filename, &b->nomem);
        p->content_type = dup_or_null(content_type, &b->nomem);
    }
    if (size && aos_buf_append(&b->cur, data, size))
        b->nomem = 1;
    return b->nomem ? MHD_NO : MHD_YES;
}

int aos_http_body_form(aos_http_req_t *r, aos_http_form_t *form, aos_err_t *err)
{
    memset(form, 0, sizeof(*form));
    if (!aos_http_body_is_form(r))
        return aos_err_set(err, AOS_EINVAL,
                           "the body must be multipart/form-data or "
                           "application/x-www-form-urlencoded");
    struct form_build b = {.form = form};
    aos_buf_init(&b.cur, 0);
    struct MHD_PostProcessor *pp = MHD_create_post_processor(r->conn, 64 * 1024, form_piece, &b);
    if (!pp) {
        aos_buf_release(&b.cur);
        return aos_err_set(err, AOS_EINVAL,
                           "the form's Content-Type is malformed (a multipart body needs its "
                           "boundary)");
    }
    enum MHD_Result ok = MHD_YES;
    if (r->body.len)
        ok = MHD_post_process(pp, r->body.ptr, r->body.len);
    /* MHD_NO here: the body ended inside a field */
    enum MHD_Result whole = MHD_destroy_post_processor(pp);
    if (ok == MHD_YES && !b.nomem)
        form_close_part(&b);
    aos_buf_release(&b.cur);
    int rc = 0;
    if (b.nomem)
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
    else if (b.toomany)
        rc = aos_err_set(err, AOS_EINVAL, "the form has more than %d fields",
                         AOS_HTTP_FORM_PARTS_MAX);
    else if (ok != MHD_YES || whole != MHD_YES)
        rc = aos_err_set(err, AOS_EINVAL, "the form body is malformed or cut short");
    if (rc)
        aos_http_form_release(form);
    return rc;
}

const aos_http_form_part_t *aos_http_form_field(const aos_http_form_t *form, const char *name)
{
    for (size_t i = 0; i < form->n; i++)
        if (!form->parts[i].filename && !strcmp(form->parts[i].name, name))
            return &form->parts[i];
    return NULL;
}

void aos_http_form_release(aos_http_form_t *form)
{
    for (size_t i = 0; i < form->n; i++) {
        free(form->parts[i].name);
        free(form->parts[i].filename);
        free(form->parts[i].content_type);
        free(form->parts[i].data);
    }
    free(form->parts);
    memset(form, 0, sizeof(*form));
}

int aos_http_peer_is_loopback(aos_http_req_t *r)
{
    return strncmp(r->peer, "127.", 4) == 0 || strcmp(r->peer, "::1") == 0 ||
           strncmp(r->peer, "::ffff:127.", 11) == 0;
}

const char *aos_http_peer(aos_http_req_t *r)
{
    return r->peer;
}

const aos_http_route_t *aos_http_route(const aos_http_req_t *r)
{
    return r->route;
}

const char *aos_http_perm_name(aos_perm_t perm)
{
    static const char *const names[] = {"public", "metrics", "mcp",   "any",
                                        "read",   "operate", "admin", "owner"};
    return (unsigned)perm < sizeof(names) / sizeof(names[0]) ? names[perm] : "owner";
}

json_t *aos_http_route_list(const aos_http_t *h)
{
    json_t *out = json_array();
    for (struct route_set *s = h->routes; s && out; s = s->next)
        for (size_t i = 0; i < s->n; i++) {
            const aos_http_route_t *rt = &s->routes[i];
            json_array_append_new(out,
                                  json_pack("{s:s, s:s, s:s, s:s}", "method", rt->method, "path",
                                            rt->pattern, "permission", aos_http_perm_name(rt->perm),
                                            "resource", rt->resource ? rt->resource : "system"));
        }
    return out;
}

size_t aos_http_close_streams_of(aos_http_t *h, const void *principal)
{
    size_t n = 0;
    for (aos_http_req_t *r = h->live; r; r = r->next)
        if (principal && r->principal == principal && r->streaming && !r->stream_closed &&
            aos_http_stream_close(r) == 0)
            n++;
    return n;
}

int aos_http_principal_in_use(const aos_http_t *h, const void *principal)
{
    for (const aos_http_req_t *r = h->live; r; r = r->next)
        if (r->principal == principal)
            return 1;
    return 0;
}

void aos_http_set_principal(aos_http_req_t *r, void *p)
{
    r->principal = p;
}

aos_http_conn_slot_t *aos_http_conn_slot(const aos_http_req_t *r)
{
    return r->cn ? r->cn->slot : NULL;
}

int aos_http_set_conn_slot(aos_http_req_t *r, aos_http_conn_slot_t *slot)
{
    if (!r->cn)
        return AOS_EINVAL;
    aos_http_conn_slot_t *old = r->cn->slot;
    r->cn->slot = slot;
    if (old && old != slot)
        old->release(old);
    return 0;
}

void *aos_http_principal(const aos_http_req_t *r)
{
    return r->principal;
}

int aos_http_add_header(aos_http_req_t *r, const char *name, const char *value)
{
    if (r->nheaders == MAX_RESP_HEADERS)
        return AOS_ETOOBIG;
    char *n = strdup(name), *v = strdup(value);
    if (!n || !v) {
        free(n);
        free(v);
        return AOS_ENOMEM;
    }
    r->hname[r->nheaders] = n;
    r->hval[r->nheaders++] = v;
    return 0;
}

void aos_http_on_close(aos_http_req_t *r, aos_http_close_fn fn, void *data)
{
    r->on_close = fn;
    r->close_data = data;
}

/* ---- trace context -------------------------------------------------------- */

struct trace_fields {
    const char *traceparent;
    int nparent;
    aos_buf_t state; /* every tracestate field, joined with ',' */
    int failed;
};

static enum MHD_Result trace_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct trace_fields *f = cls;
    if (!key || !value)
        return MHD_YES;
    if (!strcasecmp(key, "traceparent")) {
        f->traceparent = value;
        f->nparent++;
    } else if (!strcasecmp(key, "tracestate")) {
        /* past what is kept there is nothing to parse (a whole-member cut
         * needs the members, so keep a margin) */
        if (f->state.len > 4 * AOS_TRACESTATE_MAX ||
            (f->state.len && aos_buf_puts(&f->state, ",")) || aos_buf_puts(&f->state, value))
            f->failed = 1;
    }
    return MHD_YES;
}

const aos_tracectx_t *aos_http_trace(aos_http_req_t *r)
{
    static const aos_tracectx_t none; /* out of memory: an empty context */
    if (r->trace)
        return r->trace;
    if (!(r->trace = malloc(sizeof(*r->trace))))
        return &none;
    struct trace_fields f = {NULL, 0, AOS_BUF_INIT, 0};
    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, trace_field, &f);
    /* a traceparent sent twice is invalid: the trace restarts */
    if (f.nparent != 1 ||
        aos_tracectx_parse(r->trace, f.traceparent, f.failed ? NULL : f.state.ptr) < 0)
        aos_tracectx_new(r->trace);
    aos_buf_release(&f.state);
    return r->trace;
}

void aos_http_set_traceparent(aos_http_req_t *r, const aos_tracectx_t *ctx)
{
    if (aos_tracectx_format(ctx, r->traceparent) < 0)
        r->traceparent[0] = '\0';
}

void aos_http_set_span(aos_http_req_t *r, void *span, void (*end)(void *span, int aborted))
{
    r->span = span;
    r->span_end = end;
}

void *aos_http_span(const aos_http_req_t *r)
{
    return r->span;
}

/* ---- the server --------------------------------------------------------- */

static char *read_file(const char *path, aos_err_t *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        aos_err_set(err, AOS_EIO, "unable to open '%s'", path);
        return NULL;
    }
    aos_buf_t b;
    aos_buf_init(&b, 1 << 20);
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (aos_buf_append(&b, chunk, n)) {
            aos_err_set(err, AOS_ETOOBIG, "'%s' is too large", path);
            aos_buf_release(&b);
            fclose(f);
            return NULL;
        }
    }
    fclose(f);
    return aos_buf_detach(&b, NULL);
}

int aos_http_new(aos_http_t **out, uv_loop_t *loop, const aos_http_cfg_t *cfg, aos_err_t *err)
{
    aos_http_t *h = calloc(1, sizeof(*h));
    if (!h)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    h->loop = loop;
    h->cfg = *cfg;
    h->listen = strdup(cfg->listen ? cfg->listen : "127.0.0.1:8080");
    h->cfg.listen = h->listen;
    if (!h->cfg.max_body)
        h->cfg.max_body = 4 << 20;
    if (!h->cfg.conn_limit)
        h->cfg.conn_limit = 4096;
    if (!h->cfg.conn_timeout_s)
        h->cfg.conn_timeout_s = 120;
    if (!h->cfg.head_timeout_s)
        h->cfg.head_timeout_s = 10;
    if (!h->cfg.body_memory)
        h->cfg.body_memory = (size_t)64 << 20;
    if (cfg->tls_cert || cfg->tls_key) {
        if (!cfg->tls_cert || !cfg->tls_key) {
            free(h->listen);
            free(h);
            return aos_err_set(err, AOS_EINVAL, "HTTPS needs both a certificate and a key");
        }
        h->tls_cert_pem = read_file(cfg->tls_cert, err);
        h->tls_key_pem = h->tls_cert_pem ? read_file(cfg->tls_key, err) : NULL;
        if (!h->tls_key_pem) {
            free(h->tls_cert_pem);
            free(h->listen);
            free(h);
            return err ? err->code : AOS_EIO;
        }
    }
    h->cfg.tls_cert = h->cfg.tls_key = NULL;
    aos__conns_cfg_t cc = {.max_conns = h->cfg.conn_limit,
                           .max_per_ip = h->cfg.conn_per_ip,
                           .head_timeout_ms = (uint64_t)h->cfg.head_timeout_s * 1000,
                           .idle_timeout_ms = (uint64_t)h->cfg.conn_timeout_s * 1000,
                           .close = conn_close,
                           .data = h};
    aos__conns_init(&h->conns, &cc);
    *out = h;
    return 0;
}

int aos_http_add_routes(aos_http_t *h, const aos_http_route_t *routes, size_t n, void *data)
{
    struct route_set *s = calloc(1, sizeof(*s));
    if (!s)
        return AOS_ENOMEM;
    s->routes = routes;
    s->n = n;
    s->data = data;
    if (n && !(s->c = calloc(n, sizeof(*s->c)))) {
        free(s);
        return AOS_ENOMEM;
    }
    for (size_t i = 0; i < n; i++)
        aos__route_compile(routes[i].pattern, &s->c[i]);
    for (size_t i = 0; i < n; i++)
        s->pages += !strcmp(routes[i].method, "PAGE");
    h->pages += s->pages;
    struct route_set **p = &h->routes;
    while (*p)
        p = &(*p)->next;
    *p = s;
    return 0;
}

void aos_http_set_authorizer(aos_http_t *h, aos_http_authorize_fn fn, void *data)
{
    h->authorize = fn;
    h->authorize_data = data;
}

void aos_http_set_gate(aos_http_t *h, aos_http_gate_fn fn, void *data)
{
    h->gate = fn;
    h->gate_data = data;
}

void aos_http_set_fallback(aos_http_t *h, aos_http_handler_fn fn, void *data)
{
    h->fallback = fn;
    h->fallback_data = data;
}

static int parse_listen(const char *s, struct sockaddr_storage *ss, aos_err_t *err)
{
    char host[256];
    const char *port;
    if (s[0] == '[') {
        const char *e = strchr(s, ']');
        if (!e || e[1] != ':' || (size_t)(e - s - 1) >= sizeof(host))
            return aos_err_set(err, AOS_EINVAL, "bad listen address '%s'", s);
        memcpy(host, s + 1, (size_t)(e - s - 1));
        host[e - s - 1] = '\0';
        port = e + 2;
    } else {
        const char *c = strrchr(s, ':');
        if (!c || (size_t)(c - s) >= sizeof(host))
            return aos_err_set(err, AOS_EINVAL, "bad listen address '%s' (want HOST:PORT)", s);
        memcpy(host, s, (size_t)(c - s));
        host[c - s] = '\0';
        port = c + 1;
    }
    char *end;
    long p = strtol(port, &end, 10);
    if (*port == '\0' || *end || p < 0 || p > 65535)
        return aos_err_set(err, AOS_EINVAL, "bad port in listen address '%s'", s);
    struct addrinfo hints = {0}, *ai = NULL;
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    if (getaddrinfo(host, port, &hints, &ai) != 0 || !ai)
        return aos_err_set(err, AOS_EINVAL, "unable to resolve listen host '%s'", host);
    memcpy(ss, ai->ai_addr, ai->ai_addrlen);
    freeaddrinfo(ai);
    return 0;
}

int aos_http_start(aos_http_t *h, aos_err_t *err)
{
    struct sockaddr_storage ss = {0};
    int rc = parse_listen(h->cfg.listen, &ss, err);
    if (rc)
        return rc;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    if (h->tls_cert_pem)
        flags |= MHD_USE_TLS;
    struct MHD_OptionItem opts[10];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    /* libmicrohttpd zeroes a connection's whole memory pool after every
     * request (and the part the read buffer gives back): 32 KiB by default.
     * The pool holds the request line and headers and the read buffer;
     * bodies pass through the buffer in pieces, so their size does not
     * depend on it. */
    opts[n++] =
        (struct MHD_OptionItem){MHD_OPTION_CONNECTION_MEMORY_LIMIT, AOS_HTTP_CONN_MEMORY, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT,
                                        h->cfg.conn_limit + MHD_LIMIT_SLACK, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, h->cfg.conn_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    if (h->tls_cert_pem) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key_pem};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    h->d = MHD_start_daemon(flags, 0, on_accept, h, on_access, h, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, h, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
                            MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h, MHD_OPTION_ARRAY, opts,
                            MHD_OPTION_END);
    if (!h->d)
        return aos_err_set(err, AOS_EIO, "unable to listen on '%s'", h->cfg.listen);
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = di ? di->port : 0;
    di = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_EPOLL_FD);
    if (!di) {
        MHD_stop_daemon(h->d);
        h->d = NULL;
        return aos_err_set(err, AOS_EINTERNAL, "libmicrohttpd has no epoll fd");
    }
    uv_poll_init(h->loop, &h->poll, di->epoll_fd);
    h->poll.data = h;
    uv_timer_init(h->loop, &h->timer);
    h->timer.data = h;
    uv_timer_init(h->loop, &h->sweep);
    h->sweep.data = h;
    h->handles_open = 3;
    uv_poll_start(&h->poll, UV_READABLE, on_poll);
    update_timer(h);
    /* TLS streams stay with MHD: the socket carries GnuTLS records */
    if (h->cfg.writers && !h->tls_cert_pem &&
        aos__writers_new(&h->writers, h->loop, h->cfg.writers, on_released, h) != 0)
        aos_log_warn("http", "no stream writer threads; streams are sent on the loop thread");
    return 0;
}

uint16_t aos_http_port(const aos_http_t *h)
{
    return h->port;
}

int aos_http_is_tls(const aos_http_t *h)
{
    return h->tls_cert_pem != NULL;
}

void aos_http_stop(aos_http_t *h)
{
    if (!h->d || h->stopping)
        return;
    h->stopping = 1;
    MHD_socket ls = MHD_quiesce_daemon(h->d);
    if (ls != MHD_INVALID_SOCKET)
        close(ls);
    /* answer what is kept; end open streams */
    for (aos_http_req_t *r = h->live, *next; r; r = next) {
        next = r->next;
        if (r->state == REQ_DISPATCHED)
            aos_http_respond_error(r, AOS_EUNAVAIL, "server is shutting down");
        else if (r->streaming && !r->stream_closed)
            aos_http_stream_close(r);
    }
    run_mhd(h);
}

static void server_free(aos_http_t *h)
{
    aos__conns_release(&h->conns);
    free(h->tls_cert_pem);
    free(h->tls_key_pem);
    free(h->listen);
    free(h);
}

static void handle_gone(void *data)
{
    aos_http_t *h = data;
    if (--h->handles_open == 0)
        server_free(h);
}

static void on_handle_closed(uv_handle_t *hd)
{
    handle_gone(hd->data);
}

void aos_http_free(aos_http_t *h)
{
    if (!h)
        return;
    if (h->writers) { /* hands every socket back (on_released) */
        h->handles_open++;
        aos__writers_free(h->writers, handle_gone, h);
        h->writers = NULL;
    }
    if (h->d) {
        /* resume anything still suspended: stopping with suspended
         * connections is an API violation in MHD */
        for (aos_http_req_t *r = h->live; r; r = r->next) {
            if (r->suspended) {
                r->suspended = 0;
                MHD_resume_connection(r->conn);
            }
            wake_reader(r);
        }
        MHD_run(h->d);
        MHD_stop_daemon(h->d);
        h->d = NULL;
    }
    for (struct route_set *s = h->routes, *n; s; s = n) {
        n = s->next;
        free(s->c);
        free(s);
    }
    h->routes = NULL;
    if (h->handles_open) {
        uv_close((uv_handle_t *)&h->poll, on_handle_closed);
        uv_close((uv_handle_t *)&h->timer, on_handle_closed);
        uv_close((uv_handle_t *)&h->sweep, on_handle_closed);
    } else {
        server_free(h);
    }
}
