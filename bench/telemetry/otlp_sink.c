/* otlp_sink.c - the OTLP/HTTP receiver bench/telemetry exports to: as
 * little as a receiver can cost, so that the export's overhead measured on
 * the same cores is aosd's, not the sink's (the node sink it replaces was
 * ~3 % of a request by itself).
 *
 * libmicrohttpd with one internal thread (epoll): every POST's body is
 * read into a buffer of the connection, then answered 200 with an empty
 * ExportTraceServiceResponse (no bytes in protobuf, "{}" in JSON), the
 * request's Content-Type back. The spans are counted: exactly for
 * protobuf (a walk of ExportTraceServiceRequest.resource_spans[]
 * .scope_spans[].spans[], the fields' tags and lengths only), for JSON by
 * the "spanId" keys outside a "links" array (a scan, not a parse). Prints
 * "sink: ready" once listening and, at SIGINT or SIGTERM,
 *   sink: R requests, S spans, B bytes, E malformed
 *
 *   otlp_sink --port 4318 [--threads 1] */
#include "../args.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define BODY_MAX (64u << 20)

static atomic_ullong n_requests, n_spans, n_bytes, n_bad;
static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

typedef struct {
    unsigned char *p;
    size_t n, cap;
    int too_big;
} body_t;

/* A varint at *p (< end); 0 when it runs past end or over 10 bytes. */
static int varint(const unsigned char **p, const unsigned char *end, uint64_t *out)
{
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 70; shift += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *out = v;
            return 1;
        }
    }
    return 0;
}

/* Counts the length-delimited fields numbered path[0] in [p, end), and
 * inside each of them path[1], ... down to depth; the last level's
 * occurrences are what is counted. -1 for a message that does not walk. */
static long long count_pb(const unsigned char *p, const unsigned char *end, const int *path,
                          int depth)
{
    long long n = 0;
    while (p < end) {
        uint64_t key, len, skip;
        if (!varint(&p, end, &key))
            return -1;
        switch (key & 7) {
        case 0:
            if (!varint(&p, end, &skip))
                return -1;
            break;
        case 1:
            if (end - p < 8)
                return -1;
            p += 8;
            break;
        case 5:
            if (end - p < 4)
                return -1;
            p += 4;
            break;
        case 2:
            if (!varint(&p, end, &len) || len > (uint64_t)(end - p))
                return -1;
            if ((int)(key >> 3) == path[0]) {
                if (depth == 1) {
                    n++;
                } else {
                    long long k = count_pb(p, p + len, path + 1, depth - 1);
                    if (k < 0)
                        return -1;
                    n += k;
                }
            }
            p += len;
            break;
        default:
            return -1;
        }
    }
    return n;
}

/* "spanId" keys outside a "links" array (a link names a span too): a
 * scan of strings and brackets, not a parse. */
static long long count_json(const char *s, size_t n)
{
    long long spans = 0;
    int depth = 0, skip = 0; /* skip: the depth of a "links" array, 0: none */
    int after_links = 0;     /* the last key was "links" */
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            size_t j = i + 1;
            while (j < n && s[j] != '"')
                j += s[j] == '\\' ? 2 : 1;
            size_t len = j - i - 1;
            if (len == 6 && !memcmp(s + i + 1, "spanId", 6) && !skip)
                spans++;
            after_links = len == 5 && !memcmp(s + i + 1, "links", 5);
            i = j;
        } else if (c == '[' || c == '{') {
            depth++;
            if (c == '[' && after_links && !skip)
                skip = depth;
            after_links = 0;
        } else if (c == ']' || c == '}') {
            if (skip == depth)
                skip = 0;
            depth--;
        }
    }
    return spans;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *size, void **state)
{
    (void)cls;
    (void)version;
    body_t *b = *state;
    if (!b) {
        if (!(b = calloc(1, sizeof(*b))))
            return MHD_NO;
        *state = b;
        return MHD_YES;
    }
    if (*size) {
        if (b->n + *size > BODY_MAX) {
            b->too_big = 1;
        } else if (!b->too_big) {
            if (b->n + *size > b->cap) {
                size_t cap = b->cap ? b->cap : 65536;
                while (cap < b->n + *size)
                    cap *= 2;
                unsigned char *p = realloc(b->p, cap);
                if (!p)
                    return MHD_NO;
                b->p = p;
                b->cap = cap;
            }
            memcpy(b->p + b->n, data, *size);
            b->n += *size;
        }
        *size = 0;
        return MHD_YES;
    }
    const char *ct = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
    int json = ct && !strncmp(ct, "application/json", 16);
    unsigned status = MHD_HTTP_OK;
    atomic_fetch_add(&n_requests, 1);
    atomic_fetch_add(&n_bytes, b->n);
    if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/traces") != 0) {
        status = MHD_HTTP_NOT_FOUND;
    } else if (b->too_big) {
        status = MHD_HTTP_CONTENT_TOO_LARGE;
    } else {
        static const int path[] = {1, 2, 2}; /* resource_spans, scope_spans, spans */
        long long k =
            json ? count_json((const char *)b->p, b->n) : count_pb(b->p, b->p + b->n, path, 3);
        if (k < 0) {
            status = MHD_HTTP_BAD_REQUEST;
            atomic_fetch_add(&n_bad, 1);
        } else {
            atomic_fetch_add(&n_spans, (unsigned long long)k);
        }
    }
    static const char empty_json[] = "{}";
    struct MHD_Response *r = MHD_create_response_from_buffer(
        json ? 2 : 0, json ? (void *)empty_json : (void *)"", MHD_RESPMEM_PERSISTENT);
    if (!r)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type",
                            json ? "application/json" : "application/x-protobuf");
    enum MHD_Result rc = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return rc;
}

static void done(void *cls, struct MHD_Connection *c, void **state,
                 enum MHD_RequestTerminationCode t)
{
    (void)cls;
    (void)c;
    (void)t;
    body_t *b = *state;
    if (b) {
        free(b->p);
        free(b);
    }
    *state = NULL;
}

int main(int argc, char **argv)
{
    long port = 0, threads = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--port"))
            port = bench_num("--port", argv[i + 1]);
        else if (!strcmp(argv[i], "--threads"))
            threads = bench_num("--threads", argv[i + 1]);
        else {
            fprintf(stderr, "usage: otlp_sink --port N [--threads N]\n");
            return 2;
        }
    }
    if (port < 1 || port > 65535 || threads < 1 || threads > 16) {
        fprintf(stderr, "usage: otlp_sink --port N [--threads N]\n");
        return 2;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL;
    struct MHD_Daemon *d =
        MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, answer, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                         MHD_OPTION_THREAD_POOL_SIZE, (unsigned)(threads > 1 ? threads : 0),
                         MHD_OPTION_NOTIFY_COMPLETED, done, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
                         60u, MHD_OPTION_END);
    if (!d) {
        fprintf(stderr, "otlp_sink: unable to listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("sink: ready\n");
    fflush(stdout);
    while (!stop)
        pause();
    MHD_stop_daemon(d);
    printf("sink: %llu requests, %llu spans, %llu bytes, %llu malformed\n",
           (unsigned long long)n_requests, (unsigned long long)n_spans, (unsigned long long)n_bytes,
           (unsigned long long)n_bad);
    return 0;
}
