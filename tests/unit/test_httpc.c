/* test_httpc.c - the loop-driven HTTP client against a real HTTP server.
 *
 * The server is a small node script started once for the whole file (node is
 * part of the toolchain); it prints its port and exits when its stdin closes,
 * so it never outlives the test process. Every test runs the loop until its
 * transfers are done, bounded by a guard timer. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "buf/buf.h"
#include "httpc/httpc.h"
#include "uvtest.h"

extern char **environ;

static const char server_js[] =
    "const http=require('http');"
    "const s=http.createServer((q,r)=>{const b=[];q.on('data',d=>b.push(d));q.on('end',()=>{"
    " const body=Buffer.concat(b);"
    " if(q.url==='/hello'){r.writeHead(200,{'Content-Type':'text/plain','X-Test':' yes '});"
    "  r.end('hello world');}"
    " else if(q.url==='/echo'){r.writeHead(201,{'Content-Type':q.headers['content-type']||'none',"
    "  'X-Method':q.method,'X-Custom':q.headers['x-custom']||'','X-Len':String(body.length)});"
    "  r.end(body);}"
    " else if(q.url==='/stream'){r.writeHead(200,{'Content-Type':'text/plain'});let i=0;"
    "  const t=setInterval(()=>{r.write('chunk'+i+'\\n');if(++i===5){clearInterval(t);r.end();}},"
    "  40);}"
    " else if(q.url==='/drop'){q.socket.destroy();}"
    " else if(q.url==='/slow'){const t=setTimeout(()=>{r.writeHead(200);r.end('late');},5000);"
    "  r.on('close',()=>clearTimeout(t));}"
    " else if(q.url==='/forever'){r.writeHead(200,{'Content-Type':'text/event-stream'});"
    "  r.write('data: first\\n\\n');const t=setInterval(()=>r.write(': ping\\n\\n'),50);"
    "  r.on('close',()=>clearInterval(t));}"
    " else{r.writeHead(404);r.end('no');}"
    "});});"
    "s.listen(0,'127.0.0.1',()=>console.log(s.address().port));"
    "process.stdin.on('end',()=>process.exit(0));process.stdin.resume();";

static pid_t server_pid;
static int server_stdin = -1;
static int server_port;
static char base_url[64];

static int spawn_server(void **state)
{
    int in[2], out[2];
    (void)state;
    if (pipe(in) || pipe(out))
        return -1;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    posix_spawn_file_actions_addclose(&fa, in[1]);
    posix_spawn_file_actions_addclose(&fa, out[0]);
    char *argv[] = {"node", "-e", (char *)server_js, NULL};
    int rc = posix_spawnp(&server_pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    if (rc)
        return -1;
    server_stdin = in[1];
    char line[32] = {0};
    size_t n = 0;
    struct pollfd p = {.fd = out[0], .events = POLLIN};
    while (n < sizeof(line) - 1 && !strchr(line, '\n') && poll(&p, 1, 10000) > 0) {
        ssize_t k = read(out[0], line + n, sizeof(line) - 1 - n);
        if (k <= 0)
            break;
        n += (size_t)k;
    }
    close(out[0]);
    server_port = (int)strtol(line, NULL, 10);
    snprintf(base_url, sizeof(base_url), "http://127.0.0.1:%d", server_port);
    return server_port > 0 ? 0 : -1;
}

static int stop_server(void **state)
{
    (void)state;
    close(server_stdin);
    kill(server_pid, SIGTERM);
    waitpid(server_pid, NULL, 0);
    return 0;
}

/* ---- loop helpers ------------------------------------------------------- */

typedef struct xfer_s xfer_t;
struct xfer_s {
    long status;
    int nheaders;
    int ndata;
    int ndone;
    int done_status;
    char errmsg[256];
    int sent; /* aos_httpc_sent in on_done */
    aos_buf_t body;
    char x_test[32], x_method[16], x_custom[16];
    int cancel_in_data; /* cancel the request from on_data */
    int abort_with;     /* on_data returns this */
    aos_httpc_t *c;     /* for starting a request from a callback */
    xfer_t *child;      /* started from on_data */
    void *hook;         /* test_on_connect's record */
    int has_cert;       /* aos_httpc_peer_cert in on_headers */
    aos_httpc_cert_t cert;
};

static void copy_hdr(aos_httpc_req_t *r, const char *name, char *dst, size_t n)
{
    const char *v = aos_httpc_resp_header(r, name);
    snprintf(dst, n, "%s", v ? v : "");
}

static void on_headers(aos_httpc_req_t *r, long status, void *data)
{
    xfer_t *x = data;
    x->status = status;
    x->nheaders++;
    assert_int_equal(aos_httpc_status(r), status);
    copy_hdr(r, "x-TEST", x->x_test, sizeof(x->x_test));
    copy_hdr(r, "X-Method", x->x_method, sizeof(x->x_method));
    copy_hdr(r, "x-custom", x->x_custom, sizeof(x->x_custom));
    x->has_cert = aos_httpc_peer_cert(r, &x->cert);
}

static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data);

static aos_httpc_opts_t opts_for(xfer_t *x, const char *method, const char *path);

static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data)
{
    xfer_t *x = data;
    assert_int_equal(x->nheaders, 1);
    x->ndata++;
    aos_buf_append(&x->body, chunk, len);
    if (x->abort_with)
        return x->abort_with;
    if (x->child && x->ndata == 1) {
        /* inside curl: the new transfer must be deferred, not refused */
        aos_httpc_opts_t o = opts_for(x->child, "GET", "/hello");
        assert_int_equal(aos_httpc_start(x->c, &o, NULL, NULL), 0);
    }
    if (x->cancel_in_data) {
        aos_httpc_cancel(r);
        aos_httpc_cancel(r); /* twice is harmless */
    }
    return 0;
}

static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data)
{
    xfer_t *x = data;
    x->ndone++;
    x->done_status = status;
    x->sent = aos_httpc_sent(r);
    snprintf(x->errmsg, sizeof(x->errmsg), "%s", errmsg ? errmsg : "");
}

static aos_httpc_opts_t opts_for(xfer_t *x, const char *method, const char *path)
{
    static char url[128];
    snprintf(url, sizeof(url), "%s%s", base_url, path);
    aos_httpc_opts_t o = {.method = method,
                          .url = url,
                          .timeout_ms = 5000,
                          .on_headers = on_headers,
                          .on_data = on_data,
                          .on_done = on_done,
                          .data = x};
    return o;
}

typedef struct {
    uv_loop_t loop;
    aos_httpc_t *c;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    uv_loop_init(&f->loop);
    aos_err_t err;
    if (aos_httpc_new(&f->c, &f->loop, &err) != 0)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_httpc_free(f->c);
    uv_run(&f->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    free(f);
    return 0;
}

/* ---- tests -------------------------------------------------------------- */

static void test_get(void **state)
{
    fixture_t *f = *state;
    xfer_t x = {.body = AOS_BUF_INIT};
    aos_httpc_opts_t o = opts_for(&x, NULL, "/hello");
    aos_httpc_req_t *r = NULL;
    assert_int_equal(aos_httpc_start(f->c, &o, &r, NULL), 0);
    assert_non_null(r);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, 0);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.nheaders, 1);
    assert_string_equal(x.x_test, "yes");
    assert_string_equal(x.body.ptr, "hello world");
    assert_int_equal(x.sent, 1);
    aos_buf_release(&x.body);
}

/* certinfo on a plain http transfer: no handshake, so no certificate and
 * every field empty (the https side is tests/e2e/transports.test.mjs). */
static void test_certinfo_plain(void **state)
{
    fixture_t *f = *state;
    xfer_t x = {.body = AOS_BUF_INIT, .has_cert = -1};
    memset(&x.cert, 'x', sizeof(x.cert));
    aos_httpc_opts_t o = opts_for(&x, NULL, "/hello");
    o.certinfo = 1;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, 0);
    assert_int_equal(x.status, 200);
    assert_int_equal(x.has_cert, 0);
    assert_string_equal(x.cert.subject, "");
    assert_string_equal(x.cert.issuer, "");
    assert_string_equal(x.cert.not_after, "");
    aos_buf_release(&x.body);
}

static void test_post_and_delete(void **state)
{
    fixture_t *f = *state;
    xfer_t x = {.body = AOS_BUF_INIT};
    const char *hdrs[] = {"Content-Type: application/json", "X-Custom: v1", NULL};
    static const char body[] = "{\"a\":1,\"b\":\"\\u0000\"}";
    aos_httpc_opts_t o = opts_for(&x, "POST", "/echo");
    o.headers = hdrs;
    o.body = body;
    o.body_len = sizeof(body) - 1;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, 0);
    assert_int_equal(x.status, 201);
    assert_string_equal(x.x_method, "POST");
    assert_string_equal(x.x_custom, "v1");
    assert_string_equal(x.body.ptr, body);
    aos_buf_release(&x.body);

    xfer_t d = {.body = AOS_BUF_INIT};
    o = opts_for(&d, "DELETE", "/echo");
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &d.ndone, 1, 5000), 0);
    assert_int_equal(d.done_status, 0);
    assert_string_equal(d.x_method, "DELETE");
    aos_buf_release(&d.body);
}

static void test_streaming(void **state)
{
    fixture_t *f = *state;
    xfer_t x = {.body = AOS_BUF_INIT};
    aos_httpc_opts_t o = opts_for(&x, "GET", "/stream");
    o.timeout_ms = 0;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, 0);
    assert_true(x.ndata >= 3); /* the chunks arrived as they were written */
    assert_string_equal(x.body.ptr, "chunk0\nchunk1\nchunk2\nchunk3\nchunk4\n");
    aos_buf_release(&x.body);
}

static void test_timeout(void **state)
{
    fixture_t *f = *state;
    xfer_t x = {.body = AOS_BUF_INIT};
    aos_httpc_opts_t o = opts_for(&x, "GET", "/slow");
    o.timeout_ms = 200;
    uint64_t t0 = uv_now(&f->loop);
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    uv_update_time(&f->loop);
    assert_int_equal(x.done_status, AOS_ETIMEDOUT);
    assert_true(uv_now(&f->loop) - t0 < 2000);
    assert_int_equal(x.nheaders, 0);
    assert_int_equal(x.sent, 1); /* the server has it: trying again could repeat it */
    aos_buf_release(&x.body);
}

static void test_connection_refused(void **state)
{
    fixture_t *f = *state;
    /* a port that was free a moment ago */
    uv_tcp_t tcp;
    struct sockaddr_in a;
    struct sockaddr_storage got;
    int len = sizeof(got);
    uv_tcp_init(&f->loop, &tcp);
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_bind(&tcp, (struct sockaddr *)&a, 0), 0);
    uv_tcp_getsockname(&tcp, (struct sockaddr *)&got, &len);
    int port = ntohs(((struct sockaddr_in *)&got)->sin_port);
    uv_close((uv_handle_t *)&tcp, NULL);
    uv_run(&f->loop, UV_RUN_NOWAIT);

    xfer_t x = {.body = AOS_BUF_INIT};
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%d/", port);
    aos_httpc_opts_t o = opts_for(&x, "GET", "/");
    o.url = url;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, AOS_EUPSTREAM);
    assert_true(x.errmsg[0] != '\0');
    assert_int_equal(x.nheaders, 0);
    assert_int_equal(x.sent, 0); /* nothing left: safe to try again */

    /* the server takes the request, then drops the connection unanswered */
    xfer_t y = {.body = AOS_BUF_INIT};
    o = opts_for(&y, "POST", "/drop");
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &y.ndone, 1, 5000), 0);
    assert_int_equal(y.done_status, AOS_EUPSTREAM);
    assert_int_equal(y.nheaders, 0);
    assert_int_equal(y.sent, 1);
}

/* on_connect: what it is shown and what refusing does. */
typedef struct {
    int calls, refuse;
    char addr[64];
} hook_t;

static int hook(const struct sockaddr *sa, unsigned len, void *data)
{
    hook_t *h = ((xfer_t *)data)->hook;
    h->calls++;
    if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        char ip[INET_ADDRSTRLEN];
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        snprintf(h->addr, sizeof(h->addr), "%s:%d", ip, ntohs(in->sin_port));
    }
    return h->refuse;
}

static void test_on_connect(void **state)
{
    fixture_t *f = *state;
    char want[64];
    snprintf(want, sizeof(want), "%s", base_url + strlen("http://"));
    /* a plain request first: it leaves a connection in the cache */
    xfer_t p = {.body = AOS_BUF_INIT};
    aos_httpc_opts_t o = opts_for(&p, "GET", "/hello");
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &p.ndone, 1, 5000), 0);
    assert_int_equal(p.status, 200);
    /* with the hook: asked about the address (no cached connection used),
     * and the request goes through when it says yes */
    hook_t h = {0};
    xfer_t x = {.body = AOS_BUF_INIT, .hook = &h};
    o = opts_for(&x, "GET", "/hello");
    o.on_connect = hook;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, 0);
    assert_int_equal(x.status, 200);
    assert_int_equal(h.calls, 1);
    assert_string_equal(h.addr, want);
    /* again: a new connection again, never one left by the last */
    xfer_t y = {.body = AOS_BUF_INIT, .hook = &h};
    o = opts_for(&y, "GET", "/hello");
    o.on_connect = hook;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &y.ndone, 1, 5000), 0);
    assert_int_equal(y.status, 200);
    assert_int_equal(h.calls, 2);
    /* refused: nothing sent, the transfer fails */
    hook_t no = {.refuse = 1};
    xfer_t z = {.body = AOS_BUF_INIT, .hook = &no};
    o = opts_for(&z, "POST", "/hello");
    o.on_connect = hook;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &z.ndone, 1, 5000), 0);
    assert_int_equal(z.done_status, AOS_EUPSTREAM);
    assert_int_equal(z.sent, 0);
    assert_int_equal(z.nheaders, 0);
    assert_true(no.calls >= 1);
    aos_buf_release(&p.body);
    aos_buf_release(&x.body);
    aos_buf_release(&y.body);
    aos_buf_release(&z.body);
}

static void test_bad_args(void **state)
{
    fixture_t *f = *state;
    xfer_t x = {.body = AOS_BUF_INIT};
    aos_httpc_opts_t o = opts_for(&x, "GET", "/");
    o.url = "file:///etc/passwd";
    aos_err_t err = {0};
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, &err), AOS_EINVAL);
    assert_int_equal(err.code, AOS_EINVAL);
    o.url = NULL;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), AOS_EINVAL);
    uv_run(&f->loop, UV_RUN_NOWAIT);
    assert_int_equal(x.ndone, 0); /* a synchronous failure never calls back */
}

static void test_cancel(void **state)
{
    fixture_t *f = *state;
    /* from inside on_data: no more data, one on_done with ECANCELED */
    xfer_t x = {.body = AOS_BUF_INIT, .cancel_in_data = 1};
    aos_httpc_opts_t o = opts_for(&x, "GET", "/forever");
    o.timeout_ms = 0;
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, AOS_ECANCELED);
    assert_int_equal(x.ndata, 1);
    aos_buf_release(&x.body);

    /* right after start, from outside: deferred, no headers ever */
    xfer_t y = {.body = AOS_BUF_INIT};
    aos_httpc_req_t *r;
    o = opts_for(&y, "GET", "/forever");
    o.timeout_ms = 0;
    assert_int_equal(aos_httpc_start(f->c, &o, &r, NULL), 0);
    aos_httpc_cancel(r);
    assert_int_equal(y.ndone, 0); /* not re-entrant */
    assert_int_equal(run_until(&f->loop, &y.ndone, 1, 5000), 0);
    assert_int_equal(y.done_status, AOS_ECANCELED);
    assert_int_equal(y.nheaders, 0);
    run_until(&f->loop, &y.ndone, 2, 100); /* and never twice */
    assert_int_equal(y.ndone, 1);
}

static void test_abort_from_on_data(void **state)
{
    fixture_t *f = *state;
    xfer_t x = {.body = AOS_BUF_INIT, .abort_with = AOS_ETOOBIG};
    aos_httpc_opts_t o = opts_for(&x, "GET", "/forever");
    assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, AOS_ETOOBIG);
    assert_int_equal(x.ndata, 1);
    aos_buf_release(&x.body);
}

static void test_start_from_callback(void **state)
{
    fixture_t *f = *state;
    xfer_t child = {.body = AOS_BUF_INIT};
    xfer_t x = {.body = AOS_BUF_INIT, .c = f->c, .child = &child};
    aos_httpc_req_t *r;
    aos_httpc_opts_t o = opts_for(&x, "GET", "/forever");
    o.timeout_ms = 0;
    assert_int_equal(aos_httpc_start(f->c, &o, &r, NULL), 0);
    assert_int_equal(run_until(&f->loop, &child.ndone, 1, 5000), 0);
    assert_int_equal(child.done_status, 0);
    assert_string_equal(child.body.ptr, "hello world");
    assert_int_equal(x.ndone, 0);
    aos_httpc_cancel(r);
    assert_int_equal(run_until(&f->loop, &x.ndone, 1, 5000), 0);
    assert_int_equal(x.done_status, AOS_ECANCELED);
    aos_buf_release(&x.body);
    aos_buf_release(&child.body);
}

static void test_many_concurrent(void **state)
{
    fixture_t *f = *state;
    enum { N = 100 };
    xfer_t *xs = calloc(N, sizeof(*xs));
    for (int i = 0; i < N; i++) {
        aos_httpc_opts_t o = opts_for(&xs[i], i % 2 ? "POST" : "GET", i % 2 ? "/echo" : "/hello");
        char body[16];
        snprintf(body, sizeof(body), "n%d", i);
        o.body = i % 2 ? body : NULL;
        o.body_len = i % 2 ? strlen(body) : 0;
        assert_int_equal(aos_httpc_start(f->c, &o, NULL, NULL), 0);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(run_until(&f->loop, &xs[i].ndone, 1, 5000), 0);
    for (int i = 0; i < N; i++) {
        char want[16];
        snprintf(want, sizeof(want), "n%d", i);
        assert_int_equal(xs[i].done_status, 0);
        assert_string_equal(xs[i].body.ptr, i % 2 ? want : "hello world");
        aos_buf_release(&xs[i].body);
    }
    free(xs);
}

static void test_free_aborts(void **state)
{
    (void)state;
    uv_loop_t loop;
    aos_httpc_t *c;
    uv_loop_init(&loop);
    assert_int_equal(aos_httpc_new(&c, &loop, NULL), 0);
    xfer_t x = {.body = AOS_BUF_INIT}, y = {.body = AOS_BUF_INIT};
    aos_httpc_opts_t o = opts_for(&x, "GET", "/forever");
    o.timeout_ms = 0;
    assert_int_equal(aos_httpc_start(c, &o, NULL, NULL), 0);
    assert_int_equal(run_until(&loop, &x.ndata, 1, 5000), 0);
    o = opts_for(&y, "GET", "/slow");
    assert_int_equal(aos_httpc_start(c, &o, NULL, NULL), 0);
    aos_httpc_free(c);
    assert_int_equal(x.ndone, 1);
    assert_int_equal(x.done_status, AOS_ECANCELED);
    assert_int_equal(y.ndone, 1);
    assert_int_equal(y.done_status, AOS_ECANCELED);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
    aos_buf_release(&x.body);
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_get, setup, teardown),
        cmocka_unit_test_setup_teardown(test_certinfo_plain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_post_and_delete, setup, teardown),
        cmocka_unit_test_setup_teardown(test_streaming, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connection_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_on_connect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort_from_on_data, setup, teardown),
        cmocka_unit_test_setup_teardown(test_start_from_callback, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test(test_free_aborts),
    };
    return cmocka_run_group_tests(tests, spawn_server, stop_server);
}
