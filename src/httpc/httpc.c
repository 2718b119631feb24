/* httpc.c - libcurl multi driven by libuv; see httpc.h.
 *
 * curl asks for sockets to be watched through sock_cb (one uv_poll per
 * socket, attached to the socket with curl_multi_assign) and for a wake-up
 * through timer_cb (one uv_timer). Readiness goes back to curl through
 * drive(), after which finished transfers are collected and reported.
 *
 * libcurl forbids calling curl_multi_* from inside its own callbacks, and our
 * users' callbacks (on_headers, on_data) run there. So work that the user
 * asks for from inside curl - starting a transfer, cancelling one - is only
 * recorded, and the `defer` timer (0 ms) performs it on the next loop turn,
 * outside curl. */
#include "httpc/httpc.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define HTTPC_CONNECT_TIMEOUT_MS 10000L
#define HTTPC_MAX_HEADER_BYTES   (64 * 1024) /* response header lines kept per request */

typedef struct httpc_sock_s httpc_sock_t;

struct aos_httpc_s {
    uv_loop_t *loop; /* borrowed */
    CURLM *multi;
    uv_timer_t timer; /* curl's wake-up */
    uv_timer_t defer; /* deferred adds and cancellations, outside curl */
    int in_curl;      /* > 0 while curl_multi_socket_action runs */
    int open_handles; /* uv handles not yet closed; the struct goes with the last */
    int freeing;

    aos_httpc_req_t *reqs; /* every live request (added or waiting) */
    httpc_sock_t *socks;   /* every watched socket */
    int ncanceled;         /* requests canceled but not yet reported */
    int nwaiting;          /* requests waiting to be added to curl */
};

struct httpc_sock_s {
    uv_poll_t poll;
    curl_socket_t fd;
    aos_httpc_t *c;
    httpc_sock_t *prev, *next;
};

struct aos_httpc_req_s {
    aos_httpc_t *c;
    CURL *easy;
    struct curl_slist *hdrs;
    char *body;
    void (*on_headers)(aos_httpc_req_t *r, long status, void *data);
    int (*on_data)(aos_httpc_req_t *r, const char *chunk, size_t len, void *data);
    void (*on_done)(aos_httpc_req_t *r, int status, const char *errmsg, void *data);
    void *data;
    int (*on_connect)(const struct sockaddr *addr, unsigned addrlen, void *data);
    long timeout_ms;

    long status;      /* final response status, after on_headers */
    int headers_done; /* the final header block ended */
    char **resp_hdrs; /* "name\0value" pairs of the final response */
    size_t nresp_hdrs, cap_resp_hdrs, resp_hdr_bytes;

    int added;        /* in the multi handle */
    int waiting;      /* to be added by the defer timer */
    int canceled;     /* aos_httpc_cancel was called */
    int done;         /* on_done is running or has run */
    int abort_status; /* code on_data returned to abort */
    char errbuf[CURL_ERROR_SIZE];
    aos_httpc_req_t *prev, *next;
};

/* The client goes with its last handle (see aos_httpc_free). */
static void handle_released(aos_httpc_t *c)
{
    if (--c->open_handles == 0) {
        free(c);
        curl_global_cleanup();
    }
}

static void handle_closed(uv_handle_t *h)
{
    handle_released(h->data);
}

static void sock_closed(uv_handle_t *h)
{
    httpc_sock_t *s = h->data;
    aos_httpc_t *c = s->c;
    free(s);
    handle_released(c);
}

/* ---- requests ---------------------------------------------------------- */

static void req_unlink(aos_httpc_req_t *r)
{
    aos_httpc_t *c = r->c;
    if (r->prev)
        r->prev->next = r->next;
    else
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

static void resp_hdrs_clear(aos_httpc_req_t *r)
{
    for (size_t i = 0; i < r->nresp_hdrs; i++)
        free(r->resp_hdrs[i]);
    r->nresp_hdrs = 0;
    r->resp_hdr_bytes = 0;
}

static void req_free(aos_httpc_req_t *r)
{
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hdrs);
    free(r->body);
    resp_hdrs_clear(r);
    free(r->resp_hdrs);
    free(r);
}

/* Reports r's end and frees it. Must run outside curl callbacks. */
static void req_finish(aos_httpc_req_t *r, int status, const char *errmsg)
{
    aos_httpc_t *c = r->c;
    if (r->done)
        return;
    r->done = 1;
    if (r->canceled)
        c->ncanceled--;
    if (r->waiting)
        c->nwaiting--;
    r->waiting = 0;
    if (r->added) {
        curl_multi_remove_handle(c->multi, r->easy);
        r->added = 0;
    }
    req_unlink(r);
    r->on_done(r, status, errmsg, r->data);
    req_free(r);
}

static int map_result(aos_httpc_req_t *r, CURLcode rc, const char **msg)
{
    *msg = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    if (r->canceled) {
        *msg = "request cancelled";
        return AOS_ECANCELED;
    }
    switch (rc) {
    case CURLE_OK:
        *msg = NULL;
        return 0;
    case CURLE_OPERATION_TIMEDOUT:
        return AOS_ETIMEDOUT;
    case CURLE_WRITE_ERROR:
        if (r->abort_status) {
            *msg = "aborted by the receiver";
            return r->abort_status;
        }
        return AOS_EUPSTREAM;
    case CURLE_OUT_OF_MEMORY:
        return AOS_ENOMEM;
    default:
        return AOS_EUPSTREAM;
    }
}

static void check_multi_info(aos_httpc_t *c)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(c->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        aos_httpc_req_t *r = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        if (!r)
            continue;
        const char *msg;
        int status = map_result(r, rc, &msg);
        req_finish(r, status, msg);
    }
}

static void drive(aos_httpc_t *c, curl_socket_t fd, int flags)
{
    int running;
    c->in_curl++;
    curl_multi_socket_action(c->multi, fd, flags, &running);
    c->in_curl--;
    check_multi_info(c);
}

/* ---- curl <-> libuv ---------------------------------------------------- */

static void on_poll(uv_poll_t *p, int status, int events)
{
    httpc_sock_t *s = p->data;
    int flags = 0;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    drive(s->c, s->fd, flags);
}

static void on_timer(uv_timer_t *t)
{
    drive(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static void sock_release(aos_httpc_t *c, httpc_sock_t *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    aos_httpc_t *c = userp;
    httpc_sock_t *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s) {
            curl_multi_assign(c->multi, fd, NULL);
            sock_release(c, s);
        }
        return 0;
    }
    if (!s) {
        s = calloc(1, sizeof(*s));
        if (!s)
            return -1;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) != 0) {
            free(s);
            return -1;
        }
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        c->open_handles++;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    int events = 0;
    if (what == CURL_POLL_IN || what == CURL_POLL_INOUT)
        events |= UV_READABLE;
    if (what == CURL_POLL_OUT || what == CURL_POLL_INOUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    aos_httpc_t *c = userp;
    (void)multi;
    if (timeout_ms < 0)
        uv_timer_stop(&c->timer);
    else
        uv_timer_start(&c->timer, on_timer, (uint64_t)timeout_ms, 0);
    return 0;
}

/* Adds waiting requests to curl and reports cancelled ones. */
static void on_defer(uv_timer_t *t)
{
    aos_httpc_t *c = t->data;
    /* A finished request's on_done may start or cancel others: rescan from
     * the head after each report. */
    while (c->nwaiting > 0 || c->ncanceled > 0) {
        aos_httpc_req_t *r = c->reqs;
        /* req_finish unlinks r from r->c, which the analyzer cannot tell is c */
        /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
        while (r && !(r->canceled && !r->done) && !r->waiting)
            r = r->next;
        if (!r)
            break;
        if (r->canceled) {
            req_finish(r, AOS_ECANCELED, "request cancelled");
            continue;
        }
        r->waiting = 0;
        c->nwaiting--;
        if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
            req_finish(r, AOS_EINTERNAL, "unable to add the transfer");
            continue;
        }
        r->added = 1;
    }
}

static void defer_arm(aos_httpc_t *c)
{
    if (!uv_is_active((uv_handle_t *)&c->defer))
        uv_timer_start(&c->defer, on_defer, 0, 0);
}

/* ---- curl easy callbacks ------------------------------------------------ */

static void headers_complete(aos_httpc_req_t *r)
{
    long code = 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
    r->headers_done = 1;
    r->status = code;
    if (r->on_headers && !r->canceled)
        r->on_headers(r, code, r->data);
}

static int resp_hdr_add(aos_httpc_req_t *r, const char *line, size_t n)
{
    const char *colon = memchr(line, ':', n);
    if (!colon || r->resp_hdr_bytes + n > HTTPC_MAX_HEADER_BYTES)
        return 0;
    if (r->nresp_hdrs == r->cap_resp_hdrs) {
        size_t cap = r->cap_resp_hdrs ? r->cap_resp_hdrs * 2 : 16;
        char **p = realloc(r->resp_hdrs, cap * sizeof(*p));
        if (!p)
            return -1;
        r->resp_hdrs = p;
        r->cap_resp_hdrs = cap;
    }
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    char *h = malloc(n + 2);
    if (!h)
        return -1;
    memcpy(h, line, nlen);
    h[nlen] = '\0';
    memcpy(h + nlen + 1, v, (size_t)(end - v));
    h[nlen + 1 + (size_t)(end - v)] = '\0';
    r->resp_hdrs[r->nresp_hdrs++] = h;
    r->resp_hdr_bytes += n;
    return 0;
}

static size_t header_cb(char *buf, size_t size, size_t nitems, void *userp)
{
    aos_httpc_req_t *r = userp;
    size_t n = size * nitems, len = n;
    if (r->canceled)
        return 0;
    if (r->headers_done) /* trailers */
        return n;
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    if (len >= 5 && strncmp(buf, "HTTP/", 5) == 0) {
        resp_hdrs_clear(r); /* a new response: 1xx before, or the next hop */
        return n;
    }
    if (len == 0) {
        long code = 0;
        curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &code);
        if (code >= 200 || code == 0)
            headers_complete(r);
        return r->canceled ? 0 : n;
    }
    if (resp_hdr_add(r, buf, len) < 0)
        return 0;
    return n;
}

static size_t write_cb(char *ptr, size_t size, size_t nmemb, void *userp)
{
    aos_httpc_req_t *r = userp;
    size_t n = size * nmemb;
    if (r->canceled)
        return 0;
    if (!r->headers_done) {
        headers_complete(r);
        if (r->canceled)
            return 0;
    }
    if (r->on_data && n > 0) {
        int rc = r->on_data(r, ptr, n, r->data);
        if (rc < 0) {
            r->abort_status = rc;
            return 0;
        }
    }
    return r->canceled ? 0 : n;
}

/* Opens the socket curl asks for, if the request's on_connect allows the
 * address: the check sees the very address that is then connected to. */
static curl_socket_t opensocket_cb(void *userp, curlsocktype purpose, struct curl_sockaddr *a)
{
    aos_httpc_req_t *r = userp;
    if (purpose != CURLSOCKTYPE_IPCXN ||
        r->on_connect((const struct sockaddr *)&a->addr, a->addrlen, r->data) != 0)
        return CURL_SOCKET_BAD;
    return socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
}

/* ---- public API --------------------------------------------------------- */

int aos_httpc_new(aos_httpc_t **out, uv_loop_t *loop, aos_err_t *err)
{
    *out = NULL;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return aos_err_set(err, AOS_EINTERNAL, "unable to initialize libcurl");
    aos_httpc_t *c = calloc(1, sizeof(*c));
    if (!c) {
        curl_global_cleanup();
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    c->loop = loop;
    c->multi = curl_multi_init();
    if (!c->multi) {
        free(c);
        curl_global_cleanup();
        return aos_err_set(err, AOS_EINTERNAL, "unable to create a curl multi handle");
    }
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    uv_timer_init(loop, &c->timer);
    uv_timer_init(loop, &c->defer);
    c->timer.data = c;
    c->defer.data = c;
    c->open_handles = 2;
    *out = c;
    return 0;
}

void aos_httpc_free(aos_httpc_t *c)
{
    if (!c || c->freeing)
        return;
    c->freeing = 1;
    while (c->reqs) /* as in on_defer: r->c is c */
        /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
        req_finish(c->reqs, AOS_ECANCELED, "http client closed");
    curl_multi_cleanup(c->multi); /* may still report sockets to sock_cb */
    c->multi = NULL;
    while (c->socks)
        sock_release(c, c->socks);
    uv_close((uv_handle_t *)&c->timer, handle_closed);
    uv_close((uv_handle_t *)&c->defer, handle_closed);
}

static int req_setup(aos_httpc_req_t *r, const aos_httpc_opts_t *o, aos_err_t *err)
{
    CURL *e = r->easy;
    const char *method = o->method ? o->method : "GET";
    for (const char *const *h = o->headers; h && *h; h++) {
        struct curl_slist *l = curl_slist_append(r->hdrs, *h);
        if (!l)
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
        r->hdrs = l;
    }
    /* curl would otherwise wait up to a second for "100 Continue" on big bodies */
    struct curl_slist *l = curl_slist_append(r->hdrs, "Expect:");
    if (!l)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    r->hdrs = l;

    curl_easy_setopt(e, CURLOPT_URL, o->url);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(e, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, HTTPC_CONNECT_TIMEOUT_MS);
    if (o->timeout_ms > 0)
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o->timeout_ms);
    if (o->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, o->ca_file);
    if (o->on_connect) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, opensocket_cb);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, r);
        curl_easy_setopt(e, CURLOPT_PROXY, "");
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    }
    if (o->certinfo)
        curl_easy_setopt(e, CURLOPT_CERTINFO, 1L);
    if (o->insecure) {
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (o->body || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
        strcmp(method, "PATCH") == 0) {
        if (o->body && o->body_len > 0) {
            r->body = malloc(o->body_len);
            if (!r->body)
                return aos_err_set(err, AOS_ENOMEM, "out of memory");
            memcpy(r->body, o->body, o->body_len);
        }
        curl_easy_setopt(e, CURLOPT_POST, 1L);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(r->body ? o->body_len : 0));
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    }
    if (strcmp(method, "GET") == 0) {
        if (o->body)
            curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "GET");
    } else if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
    }
    return 0;
}

int aos_httpc_start(aos_httpc_t *c, const aos_httpc_opts_t *o, aos_httpc_req_t **out,
                    aos_err_t *err)
{
    if (out)
        *out = NULL;
    if (!c || c->freeing || !o || !o->url || !o->on_done)
        return aos_err_set(err, AOS_EINVAL, "missing url or on_done");
    if (strncasecmp(o->url, "http://", 7) != 0 && strncasecmp(o->url, "https://", 8) != 0)
        return aos_err_set(err, AOS_EINVAL, "unsupported url scheme in '%.64s'", o->url);
    aos_httpc_req_t *r = calloc(1, sizeof(*r));
    if (!r)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    r->c = c;
    r->on_headers = o->on_headers;
    r->on_data = o->on_data;
    r->on_done = o->on_done;
    r->data = o->data;
    r->on_connect = o->on_connect;
    r->timeout_ms = o->timeout_ms;
    r->easy = curl_easy_init();
    if (!r->easy) {
        req_free(r);
        return aos_err_set(err, AOS_EINTERNAL, "unable to create a curl handle");
    }
    int rc = req_setup(r, o, err);
    if (rc) {
        req_free(r);
        return rc;
    }
    if (c->in_curl) {
        r->waiting = 1;
        c->nwaiting++;
        defer_arm(c);
    } else if (curl_multi_add_handle(c->multi, r->easy) != CURLM_OK) {
        req_free(r);
        return aos_err_set(err, AOS_EINTERNAL, "unable to add the transfer");
    } else {
        r->added = 1;
    }
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    if (out)
        *out = r;
    return 0;
}

const char *aos_httpc_resp_header(aos_httpc_req_t *r, const char *name)
{
    for (size_t i = 0; i < r->nresp_hdrs; i++)
        if (strcasecmp(r->resp_hdrs[i], name) == 0)
            return r->resp_hdrs[i] + strlen(r->resp_hdrs[i]) + 1;
    return NULL;
}

long aos_httpc_status(const aos_httpc_req_t *r)
{
    return r->headers_done ? r->status : 0;
}

int aos_httpc_sent(aos_httpc_req_t *r)
{
    /* the bytes of request heads curl wrote, over every connection it tried;
     * a body never goes out before its head */
    curl_off_t n = 0;
    if (curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &n) != CURLE_OK)
        return 1; /* unknown: assume the worst */
    return n > 0;
}

/* "Name:value" of a certinfo list into dst when the name matches. */
static void cert_field(const char *line, const char *name, char *dst, size_t cap)
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) == 0 && line[n] == ':')
        snprintf(dst, cap, "%s", line + n + 1);
}

int aos_httpc_peer_cert(aos_httpc_req_t *r, aos_httpc_cert_t *out)
{
    struct curl_certinfo *ci = NULL;
    memset(out, 0, sizeof(*out));
    if (curl_easy_getinfo(r->easy, CURLINFO_CERTINFO, &ci) != CURLE_OK || !ci ||
        ci->num_of_certs < 1 || !ci->certinfo)
        return 0;
    for (struct curl_slist *l = ci->certinfo[0]; l; l = l->next) {
        cert_field(l->data, "Subject", out->subject, sizeof(out->subject));
        cert_field(l->data, "Issuer", out->issuer, sizeof(out->issuer));
        cert_field(l->data, "Start date", out->not_before, sizeof(out->not_before));
        cert_field(l->data, "Expire date", out->not_after, sizeof(out->not_after));
    }
    return out->subject[0] || out->issuer[0];
}

void aos_httpc_cancel(aos_httpc_req_t *r)
{
    if (!r || r->done || r->canceled)
        return;
    r->canceled = 1;
    r->c->ncanceled++;
    defer_arm(r->c);
}
