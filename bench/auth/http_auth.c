/* http_auth.c - what authorization costs a cheap route: aosd's HTTP server
 * (src/http) with aosd's authorizer (src/auth) and two routes answering
 * the same tiny JSON body:
 *   GET /on   AOS_PERM_READ on system: the token is hashed, looked up,
 *             checked for expiry and revocation, aos_auth_check decides;
 *   GET /off  AOS_PERM_PUBLIC: the authorizer is not called (auth off).
 * The load (bench/auth/run.sh, wrk) sends the same Authorization header to
 * both, so the only difference is the authorization itself. The token
 * table holds the Owner plus --tokens more tokens with 10 grants each.
 *
 * Usage: http_auth --data-dir DIR [--port P] [--token T] [--tokens N]
 * Listens on 127.0.0.1 only; runs until SIGINT or SIGTERM. */
#include "../args.h"
#include "auth/auth.h"
#include "http/http.h"
#include "log/log.h"
#include "secret/secret.h"
#include "store/store.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

static int pong(aos_http_req_t *req, void *data)
{
    (void)data;
    static const char body[] = "{\"ok\":true}";
    return aos_http_respond(req, 200, "application/json", body, sizeof(body) - 1);
}

static const aos_http_route_t routes[] = {
    {"GET", "/on", AOS_PERM_READ, pong, 0, NULL},
    {"GET", "/off", AOS_PERM_PUBLIC, pong, 0, NULL},
};

static aos_http_t *http;
static uv_signal_t sigs[2];

/* Stops serving and the loop: the store's worker keeps the loop alive, so
 * it is stopped here and everything closed after uv_run returns. */
static void on_signal(uv_signal_t *s, int signum)
{
    (void)signum;
    aos_http_stop(http);
    uv_stop(s->loop);
}

int main(int argc, char **argv)
{
    const char *dir = NULL, *token = "bench-auth-owner-token-0123456789";
    long port = 3501, ntokens = 1000;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--data-dir"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--port"))
            port = bench_num("--port", argv[i + 1]);
        else if (!strcmp(argv[i], "--token"))
            token = argv[i + 1];
        else if (!strcmp(argv[i], "--tokens"))
            ntokens = bench_num("--tokens", argv[i + 1]);
    }
    if (!dir || port < 1 || port > 65535 || ntokens < 0 || ntokens > 100000) {
        fprintf(stderr, "usage: http_auth --data-dir DIR [--port P] [--token T] [--tokens N]\n");
        return 2;
    }
    aos_log_set_level(AOS_LOG_WARN);
    uv_loop_t *loop = uv_default_loop();
    aos_err_t err = {0, ""};
    char url[512], listen[64], id[40], hash[65], res[96];
    snprintf(url, sizeof(url), "sqlite:%s/bench.db", dir);
    aos_store_t *st = NULL;
    aos_auth_t *auth = NULL;
    /* the extra tokens, written before the loop runs */
    if (aos_store_open(&st, NULL, url, &err)) {
        fprintf(stderr, "http_auth: %s\n", aos_err_msg(&err));
        return 1;
    }
    /* the Owner's first, as aos_auth_bootstrap would store it */
    aos_secret_token_hash(token, hash);
    if (aos_store_token_put(st, "owner", "owner", "owner", hash, &err)) {
        fprintf(stderr, "http_auth: %s (use a new --data-dir)\n", aos_err_msg(&err));
        return 1;
    }
    for (long i = 0; i < ntokens; i++) {
        snprintf(id, sizeof(id), "tok_%ld", i);
        snprintf(res, sizeof(res), "bench-token-%ld-0123456789abcdef", i);
        aos_secret_token_hash(res, hash);
        if (aos_store_token_put(st, id, id, "none", hash, &err))
            break;
        for (int g = 0; g < 10 && !err.code; g++) {
            char gid[48];
            snprintf(gid, sizeof(gid), "grt_%ld_%d", i, g);
            snprintf(res, sizeof(res), "tool:srv%ld__tool%d*", i, g);
            char who[48];
            snprintf(who, sizeof(who), "token:%s", id);
            aos_store_grant_put(st, gid, who, "operator", res, "bench", &err);
        }
    }
    aos_store_close(st);
    if (err.code) {
        fprintf(stderr, "http_auth: %s\n", aos_err_msg(&err));
        return 1;
    }
    if (aos_store_open(&st, loop, url, &err) || aos_auth_new(&auth, st, 0, AOS_ROLE_VIEWER, &err)) {
        fprintf(stderr, "http_auth: %s\n", aos_err_msg(&err));
        return 1;
    }
    snprintf(listen, sizeof(listen), "127.0.0.1:%ld", port);
    aos_http_cfg_t hc = {.listen = listen};
    if (aos_http_new(&http, loop, &hc, &err)) {
        fprintf(stderr, "http_auth: %s\n", aos_err_msg(&err));
        return 1;
    }
    aos_http_set_authorizer(http, aos_auth_authorize, auth);
    aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), NULL);
    if (aos_http_start(http, &err)) {
        fprintf(stderr, "http_auth: %s\n", aos_err_msg(&err));
        return 1;
    }
    for (int i = 0; i < 2; i++) {
        uv_signal_init(loop, &sigs[i]);
        uv_signal_start(&sigs[i], on_signal, i ? SIGTERM : SIGINT);
    }
    printf("ready: http://%s/ (%ld tokens with 10 grants each)\n", listen, ntokens);
    fflush(stdout);
    uv_run(loop, UV_RUN_DEFAULT);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&sigs[i], NULL);
    aos_http_free(http);
    aos_auth_free(auth);
    aos_store_close(st);
    uv_run(loop, UV_RUN_NOWAIT);
    return 0;
}
