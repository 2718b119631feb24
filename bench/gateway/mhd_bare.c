/* mhd_bare.c - the HTTP ceiling: a bare libmicrohttpd responder that speaks
 * just enough MCP Streamable HTTP (stateless, application/json replies) for
 * the shared loadtest.sh to drive it.
 *
 * It is what aosd's built-in echo (/mcp/servers/aos, no upstream) is compared
 * with in bench/gateway/run.sh: the same HTTP library, the same load, and no
 * work beyond reading the body and writing a fixed reply. aosd can only be
 * slower; the ratio says how much its routing, auth, JSON-RPC and logging
 * cost.
 *
 * Every POST is answered 200 application/json:
 *   initialize    -> a result echoing the requested protocolVersion
 *   a notification (no "id") -> 202, empty body
 *   anything else -> {"jsonrpc":"2.0","id":<id>,"result":{"content":
 *                     [{"type":"text","text":"Echo: hello"}]}}
 * Other methods get 405. There is no session (loadtest.sh accepts that).
 *
 * Honesty note: to stay a ceiling, the body is NOT parsed as JSON. The id is
 * found by a cheap scan for the first "id" key and copied (a number, or a
 * string without escapes) into a reply built by snprintf from a fixed
 * template; "method":"initialize" and "protocolVersion" are found the same
 * way. This is correct for the flat requests loadtest.sh sends, not for
 * JSON-RPC in general; aosd parses every body with jansson.
 *
 * Usage: mhd_bare [--port P] [--threads N] [--mode epoll|poll|select|tpc]
 *                 [--no-turbo]
 * Defaults: port 3310, epoll, a pool of 2 threads, MHD_USE_TURBO. Listens on
 * 127.0.0.1 only; runs until SIGINT or SIGTERM.
 *
 * Why these defaults (2 cores, wrk on the same machine, 4 interleaved runs of
 * each mode): epoll with 1 or 2 threads served the most requests per CPU-second
 * (~85k), poll and select ~75k, a pool of 4 ~65k, thread-per-connection ~40k;
 * TURBO made no difference above the noise. The pool of 2 lets the responder
 * use the second core when wrk leaves it free; the best runs reach ~69k req/s.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BODY_MAX  8192 /* larger bodies get 413 */
#define TOKEN_MAX 64   /* longest id or protocolVersion copied into a reply */

struct request {
    size_t len;
    int too_big;
    char body[BODY_MAX + 1];
};

/* Finds "key" followed by optional spaces and ':' and returns the first
 * character of its value, or NULL. The first occurrence wins. */
static const char *find_value(const char *body, const char *key)
{
    const char *p = strstr(body, key);

    if (p == NULL)
        return NULL;
    p += strlen(key);
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    if (*p != ':')
        return NULL;
    p++;
    while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
        p++;
    return p;
}

/* Copies the JSON token at p (an integer, or a string without backslashes or
 * control characters, quotes included) into out. Returns its length, or -1
 * if the token is anything else or longer than TOKEN_MAX. */
static int copy_token(const char *p, char out[TOKEN_MAX + 1])
{
    int n = 0;

    if (*p == '"') {
        out[n++] = *p++;
        while (*p != '"') {
            if (*p == '\0' || *p == '\\' || (unsigned char)*p < 0x20 || n >= TOKEN_MAX - 1)
                return -1;
            out[n++] = *p++;
        }
        out[n++] = '"';
    } else {
        if (*p == '-')
            out[n++] = *p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p)) {
            if (n >= TOKEN_MAX)
                return -1;
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
    return n;
}

static enum MHD_Result reply(struct MHD_Connection *c, unsigned int status, const char *body,
                             size_t len)
{
    struct MHD_Response *r;
    enum MHD_Result ret;

    r = MHD_create_response_from_buffer(len, (void *)body, MHD_RESPMEM_MUST_COPY);
    if (r == NULL)
        return MHD_NO;
    if (len > 0)
        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result answer(struct request *req, struct MHD_Connection *c)
{
    static const char bad[] = "{\"jsonrpc\":\"2.0\",\"id\":null,\"error\":"
                              "{\"code\":-32600,\"message\":\"invalid request\"}}";
    char id[TOKEN_MAX + 1], pv[TOKEN_MAX + 1], out[512];
    const char *v;
    int n;

    req->body[req->len] = '\0';
    v = find_value(req->body, "\"id\"");
    if (v == NULL)
        return reply(c, MHD_HTTP_ACCEPTED, "", 0); /* a notification */
    if (copy_token(v, id) < 0)
        return reply(c, MHD_HTTP_BAD_REQUEST, bad, sizeof(bad) - 1);

    v = find_value(req->body, "\"method\"");
    if (v != NULL && strncmp(v, "\"initialize\"", 12) == 0) {
        v = find_value(req->body, "\"protocolVersion\"");
        if (v == NULL || *v != '"' || copy_token(v, pv) < 0)
            snprintf(pv, sizeof(pv), "\"2025-06-18\"");
        n = snprintf(out, sizeof(out),
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"protocolVersion\":%s,"
                     "\"capabilities\":{\"tools\":{}},"
                     "\"serverInfo\":{\"name\":\"mhd_bare\",\"version\":\"1.0.0\"}}}",
                     id, pv);
    } else {
        n = snprintf(out, sizeof(out),
                     "{\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":{\"content\":"
                     "[{\"type\":\"text\",\"text\":\"Echo: hello\"}]}}",
                     id);
    }
    return reply(c, MHD_HTTP_OK, out, (size_t)n);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls)
{
    struct request *req = *con_cls;

    (void)cls;
    (void)url;
    (void)version;
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
        return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, "", 0);
    if (req == NULL) {
        req = malloc(sizeof(*req));
        if (req == NULL)
            return MHD_NO;
        req->len = 0;
        req->too_big = 0;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (req->len + *upload_data_size > BODY_MAX)
            req->too_big = 1;
        else {
            memcpy(req->body + req->len, upload_data, *upload_data_size);
            req->len += *upload_data_size;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->too_big)
        return reply(c, MHD_HTTP_CONTENT_TOO_LARGE, "", 0);
    return answer(req, c);
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)c;
    (void)toe;
    free(*con_cls);
    *con_cls = NULL;
}

static void usage(void)
{
    fprintf(stderr, "usage: mhd_bare [--port P] [--threads N] [--mode epoll|poll|select|tpc] "
                    "[--no-turbo]\n");
}

int main(int argc, char **argv)
{
    struct sockaddr_in addr;
    struct MHD_Daemon *d;
    unsigned int flags, threads = 2;
    const char *mode = "epoll";
    long port = 3310;
    int turbo = 1, sig, i;
    sigset_t set;
    char *end;

    for (i = 1; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(argv[i], "--port") == 0 && v != NULL) {
            errno = 0;
            port = strtol(v, &end, 10);
            if (errno != 0 || *end != '\0' || port < 1 || port > 65535) {
                usage();
                return 2;
            }
            i++;
        } else if (strcmp(argv[i], "--threads") == 0 && v != NULL) {
            errno = 0;
            threads = (unsigned int)strtoul(v, &end, 10);
            if (errno != 0 || *end != '\0' || threads > 64) {
                usage();
                return 2;
            }
            i++;
        } else if (strcmp(argv[i], "--mode") == 0 && v != NULL) {
            mode = argv[++i];
        } else if (strcmp(argv[i], "--no-turbo") == 0) {
            turbo = 0;
        } else {
            usage();
            return 2;
        }
    }

    if (strcmp(mode, "epoll") == 0)
        flags = MHD_USE_EPOLL_INTERNAL_THREAD;
    else if (strcmp(mode, "poll") == 0)
        flags = MHD_USE_POLL_INTERNAL_THREAD;
    else if (strcmp(mode, "select") == 0)
        flags = MHD_USE_INTERNAL_POLLING_THREAD; /* select() */
    else if (strcmp(mode, "tpc") == 0) {
        flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD;
        threads = 0; /* a pool cannot be combined with thread-per-connection */
    } else {
        usage();
        return 2;
    }
    if (turbo)
        flags |= MHD_USE_TURBO;

    /* Block the stop signals before MHD starts its threads, so that they
     * inherit the mask and only sigwait() below sees them. */
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);

    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR,
                         (struct sockaddr *)&addr, MHD_OPTION_THREAD_POOL_SIZE,
                         threads > 1 ? threads : 0, MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
                         MHD_OPTION_END);
    if (d == NULL) {
        fprintf(stderr, "mhd_bare: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    printf("mhd_bare: listening on http://127.0.0.1:%ld/mcp (mode %s, threads %u, turbo %s)\n",
           port, mode, threads > 1 ? threads : 1, turbo ? "on" : "off");
    fflush(stdout);
    sigwait(&set, &sig);
    MHD_stop_daemon(d);
    return 0;
}
