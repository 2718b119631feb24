/* http.c - libmicrohttpd on the libuv loop; see http.h.
 *
 * MHD runs with its own epoll set (MHD_USE_EPOLL, no internal thread). We
 * watch that epoll fd with a uv_poll and call MHD_run() when it is readable
 * or when MHD's timeout expires. MHD_ALLOW_SUSPEND_RESUME registers an
 * eventfd in the same set, so resuming a connection from any callback wakes
 * the poll and MHD picks the connection up on the next turn of the loop.
 *
 * A request goes through: body upload (bounded) -> route match and
 * authorization -> handler. A handler that does not answer at once leaves
 * the connection suspended; aos_http_respond*() later stores the response
 * and resumes it, and the access callback queues it on re-entry. Streams
 * use a callback response whose reader suspends the connection when it has
 * nothing to send and is resumed by aos_http_stream_write(). On plain HTTP
 * a stream whose reader finds nothing to send is instead handed to a writer
 * thread (writer.h) for the rest of its life, so that fanning one event out
 * to many streams does not put every send() on the loop thread. */
#include "http/http.h"
#include "buf/buf.h"
#include "http/writer.h"
#include "log/log.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_PARAMS       8
#define MAX_SEGMENTS     32
#define MAX_RESP_HEADERS 12

struct route_set {
    const aos_http_route_t *routes;
    size_t n;
    void *data;
    struct route_set *next;
};

struct aos_http_s {
    uv_loop_t *loop; /* borrowed */
    struct MHD_Daemon *d;
    uv_poll_t poll;
    uv_timer_t timer;
    int handles_open;
    aos_http_cfg_t cfg;
    char *listen; /* owned copy of cfg.listen */
    char *tls_cert_pem, *tls_key_pem;
    struct route_set *routes;
    aos_http_authorize_fn authorize;
    void *authorize_data;
    aos_http_handler_fn fallback;
    void *fallback_data;
    uint16_t port;
    int stopping;
    aos__writers_t *writers; /* NULL: streams are sent on the loop */
    aos_http_req_t *live;    /* every request between first call and completion */
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
    aos_buf_t body;
    size_t max_body;
    int too_big;
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
    void *principal; /* borrowed: owned by the authorizer's cache */
    char peer[INET6_ADDRSTRLEN + 8];
    aos_http_req_t *prev, *next;
};

static void update_timer(aos_http_t *h);
static void on_timer(uv_timer_t *t);

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

static void update_timer(aos_http_t *h)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (h->d && MHD_get_timeout(h->d, &ms) == MHD_YES)
        uv_timer_start(&h->timer, on_timer, ms, 0);
    else
        uv_timer_stop(&h->timer);
}

/* ---- requests ---------------------------------------------------------- */

static void live_add(aos_http_t *h, aos_http_req_t *r)
{
    r->next = h->live;
    if (h->live)
        h->live->prev = r;
    h->live = r;
}

static void live_remove(aos_http_t *h, aos_http_req_t *r)
{
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
    aos_buf_release(&r->body);
    aos_buf_release(&r->out);
    if (r->direct)
        aos__writers_dispose(&r->ds);
    free(r->pathcopy);
    free(r);
}

/* Splits a path into segments in place; returns the count or -1. */
static int split_path(char *p, char **seg, int max)
{
    int n = 0;
    while (*p == '/')
        p++;
    while (*p) {
        if (n == max)
            return -1;
        seg[n++] = p;
        char *s = strchr(p, '/');
        if (!s)
            break;
        *s = '\0';
        p = s + 1;
    }
    return n;
}

/* Matches url against pattern; fills params pointing into r->pathcopy. */
static int match_route(aos_http_req_t *r, const char *pattern, const char *url)
{
    char pat[256];
    char *ps[MAX_SEGMENTS], *us[MAX_SEGMENTS];
    size_t plen = strlen(pattern);
    if (plen >= sizeof(pat))
        return 0;
    memcpy(pat, pattern, plen + 1);
    free(r->pathcopy);
    r->pathcopy = strdup(url);
    if (!r->pathcopy)
        return 0;
    int np = split_path(pat, ps, MAX_SEGMENTS);
    int nu = split_path(r->pathcopy, us, MAX_SEGMENTS);
    int ok = 0;
    r->nparams = 0;
    if (np < 0 || nu < 0)
        goto out;
    for (int i = 0; i < np; i++) {
        if (strcmp(ps[i], "*") == 0 && i == np - 1) {
            if (i >= nu)
                goto out;
            /* the rest of the path: put the separators back */
            for (int j = i; j < nu - 1; j++)
                us[j][strlen(us[j])] = '/';
            r->pname[r->nparams] = "*";
            r->pval[r->nparams++] = us[i];
            ok = 1;
            goto out;
        }
        if (i >= nu)
            goto out;
        if (ps[i][0] == ':') {
            if (r->nparams == MAX_PARAMS)
                goto out;
            /* names live in the route table: point into the pattern there */
            r->pname[r->nparams] = pattern + (ps[i] - pat) + 1;
            r->pval[r->nparams++] = us[i];
        } else if (strcmp(ps[i], us[i]) != 0) {
            goto out;
        }
    }
    ok = (np == nu);
out:
    return ok;
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

static int find_route(aos_http_t *h, aos_http_req_t *r)
{
    int path_matched = 0;
    for (struct route_set *s = h->routes; s; s = s->next) {
        for (size_t i = 0; i < s->n; i++) {
            const aos_http_route_t *rt = &s->routes[i];
            if (!match_route(r, rt->pattern, r->url))
                continue;
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
        char *s = json_dumps(body, JSON_COMPACT);
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
    json_t *b = json_pack("{s:{s:s, s:s}}", "error", "code", aos_err_code(code), "message",
                          msg && *msg ? msg : aos_strerror(code));
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

static int dispatch(aos_http_t *h, aos_http_req_t *r)
{
    if (h->stopping)
        return aos_http_respond_error(r, AOS_EUNAVAIL, "server is shutting down");
    if (r->too_big)
        return aos_http_respond_error(r, AOS_ETOOBIG, "request body exceeds %zu bytes",
                                      r->max_body);
    aos_http_handler_fn fn;
    void *data;
    if (r->route) {
        aos_err_t err = {0, ""};
        if (h->authorize && r->route->perm != AOS_PERM_PUBLIC) {
            int rc = h->authorize(r, r->route->perm, &err, h->authorize_data);
            if (rc)
                return aos_http_respond_err(r, &err);
        }
        fn = r->route->handler;
        data = r->route_data;
    } else if (h->fallback) {
        fn = h->fallback;
        data = h->fallback_data;
    } else {
        return aos_http_respond_error(r, AOS_ENOTFOUND, "no route for %s %s", r->method, r->url);
    }
    int rc = fn(r, data);
    if (rc < 0 && r->state != REQ_ANSWERED)
        respond_code(r, rc, NULL);
    return 0;
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    aos_http_t *h = cls;
    aos_http_req_t *r = *con_cls;
    if (!r) {
        r = calloc(1, sizeof(*r));
        if (!r)
            return MHD_NO;
        r->h = h;
        r->conn = conn;
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
        r->max_body = (r->route && r->route->max_body) ? r->route->max_body : h->cfg.max_body;
        if (rc == AOS_EMETHOD) {
            r->in_handler = 1;
            aos_http_respond_error(r, AOS_EMETHOD, "%s not allowed on %s", method, url);
            r->in_handler = 0;
            return MHD_YES;
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && strtoull(cl, NULL, 10) > r->max_body)
            r->too_big = 1;
        return MHD_YES;
    }
    if (r->state == REQ_ANSWERED && !r->pending)
        return MHD_YES; /* answered early (e.g. 405) while the body still arrives */
    if (*upload_size) {
        if (!r->too_big && r->body.len + *upload_size > r->max_body)
            r->too_big = 1;
        if (!r->too_big && aos_buf_append(&r->body, upload, *upload_size))
            r->too_big = 1;
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
    if (r->on_close)
        r->on_close(r, toe != MHD_REQUEST_TERMINATED_COMPLETED_OK, r->close_data);
    req_free(r);
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
    json_error_t je;
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        aos_err_set(err, AOS_EPARSE, "malformed JSON at line %d column %d: %s", je.line, je.column,
                    je.text);
    return j;
}

json_t *aos_http_body_json(aos_http_req_t *r, aos_err_t *err)
{
    return aos_http_parse_json(r->body.ptr, r->body.len, err);
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

void aos_http_set_principal(aos_http_req_t *r, void *p)
{
    r->principal = p;
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
    struct MHD_OptionItem opts[8];
    int n = 0;
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_SOCK_ADDR, 0, &ss};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_LIMIT, h->cfg.conn_limit, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_CONNECTION_TIMEOUT, h->cfg.conn_timeout_s, NULL};
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL};
    if (h->tls_cert_pem) {
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert_pem};
        opts[n++] = (struct MHD_OptionItem){MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key_pem};
    }
    opts[n++] = (struct MHD_OptionItem){MHD_OPTION_END, 0, NULL};

    h->d = MHD_start_daemon(flags, 0, NULL, NULL, on_access, h, MHD_OPTION_NOTIFY_COMPLETED,
                            on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_logger, h,
                            MHD_OPTION_ARRAY, opts, MHD_OPTION_END);
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
    h->handles_open = 2;
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

static void handle_gone(void *data)
{
    aos_http_t *h = data;
    if (--h->handles_open == 0) {
        free(h->tls_cert_pem);
        free(h->tls_key_pem);
        free(h->listen);
        free(h);
    }
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
        free(s);
    }
    h->routes = NULL;
    if (h->handles_open) {
        uv_close((uv_handle_t *)&h->poll, on_handle_closed);
        uv_close((uv_handle_t *)&h->timer, on_handle_closed);
    } else {
        free(h->tls_cert_pem);
        free(h->tls_key_pem);
        free(h->listen);
        free(h);
    }
}
