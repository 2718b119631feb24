/* session.c - MCP client sessions (Mcp-Session-Id) of the gateway's
 * endpoints: creation, lookup, the framing of their messages, and the sweep
 * of idle sessions. Their SSE streams (the GET stream that carries what no
 * request is waiting for, and calls' answer streams) are in stream.c. */
#include "gateway/internal.h"
#include "auth/auth.h"
#include "buf/buf.h"
#include "log/log.h"

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

gw_session_t *gw_session_new(aos_gateway_t *gw, const char *server_name)
{
    gw_session_t *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->gw = gw;
    unsigned char rnd[16];
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(s->id, sizeof(s->id), rnd, sizeof(rnd));
    s->server_name = server_name ? strdup(server_name) : NULL;
    s->log_level = 0;
    s->last_seen_ms = gw_now_ms();
    s->subscriptions = json_object();
    aos_map_init(&s->outreqs);
    aos_map_init(&s->ups);
    if (aos_map_put(&gw->sessions, s->id, s)) {
        free(s->server_name);
        json_decref(s->subscriptions);
        free(s);
        return NULL;
    }
    return s;
}

gw_session_t *gw_session_get(aos_gateway_t *gw, const char *id)
{
    gw_session_t *s = id ? aos_map_get(&gw->sessions, id) : NULL;
    if (s)
        s->last_seen_ms = gw_now_ms();
    return s;
}

void gw_session_owner(aos_http_req_t *req, char *out, size_t cap)
{
    aos_auth_actor(aos_auth_principal(req), out, cap);
}

gw_session_t *gw_session_get_for(aos_gateway_t *gw, const char *id, aos_http_req_t *req)
{
    gw_session_t *s = id ? aos_map_get(&gw->sessions, id) : NULL;
    char who[sizeof(s->owner)];
    gw_session_owner(req, who, sizeof(who));
    if (!s || strcmp(s->owner, who))
        return NULL;
    return gw_session_get(gw, id);
}

void gw_session_free(gw_session_t *s)
{
    aos_gateway_t *gw = s->gw;
    aos_map_del(&gw->sessions, s->id);
    while (s->calls) {
        gw_call_t *c = s->calls;
        gw_call_finish(c, aos_rpc_error_aos(c->id, AOS_ECANCELED, "session ended"));
    }
    gw_session_streams_free(s);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&s->outreqs, &it, NULL, NULL, &v)) {
        gw_outreq_t *o = v;
        aos_upstream_t *up = gw_sup_get(s, o->server);
        if (up)
            aos_upstream_respond(
                up, aos_rpc_error_aos(o->up_id, AOS_ECANCELED, "client session ended"));
        json_decref(o->up_id);
        free(o->server);
        free(o);
    }
    aos_map_release(&s->outreqs);
    const char *name;
    aos_map_iter_init(&it);
    while (aos_map_iter_next(&s->ups, &it, &name, NULL, NULL))
        gw_sup_close(s, name);
    aos_map_release(&s->ups);
    json_decref(s->client_caps);
    json_decref(s->up_caps);
    json_decref(s->client_info);
    json_decref(s->subscriptions);
    free(s->server_name);
    free(s);
}

/* The message is serialised straight into b (compact JSON escapes
 * newlines: one data line). */
int gw_sse_frame(const json_t *msg, const char *id, aos_buf_t *b)
{
    int rc = 0;
    if (id) {
        rc = aos_buf_puts(b, "id: ");
        if (!rc)
            rc = aos_buf_puts(b, id);
        if (!rc)
            rc = aos_buf_puts(b, "\n");
    }
    if (!rc)
        rc = aos_buf_puts(b, "event: message\ndata: ");
    if (!rc)
        rc = aos_rpc_dump(msg, b);
    if (!rc)
        rc = aos_buf_puts(b, "\n\n");
    return rc;
}

int gw_respond_msg(aos_http_req_t *req, json_t *msg)
{
    gw_span_outcome(req, msg);
    const char *accept = aos_http_header(req, "Accept");
    if (!accept || !strstr(accept, "text/event-stream"))
        return aos_http_respond_json(req, 200, msg);
    /* the whole answer is known: one SSE event in a plain body, as the
     * reference SDK server answers */
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = gw_sse_frame(msg, NULL, &b);
    json_decref(msg);
    if (rc) {
        aos_buf_release(&b);
        return rc;
    }
    aos_http_add_header(req, "Cache-Control", "no-cache");
    rc = aos_http_respond(req, 200, "text/event-stream", b.ptr, b.len);
    aos_buf_release(&b);
    return rc;
}

int gw_respond_text(aos_http_req_t *req, int sse, const char *text, size_t len, size_t id_off,
                    size_t id_len, const char *id_text, size_t id_text_len)
{
    static const char pre[] = "event: message\ndata: ";
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = aos_buf_grow(&b, sizeof(pre) + len + id_text_len + 2);
    if (!rc && sse)
        rc = aos_buf_append(&b, pre, sizeof(pre) - 1);
    if (!rc)
        rc = aos_buf_append(&b, text, id_off);
    if (!rc)
        rc = aos_buf_append(&b, id_text, id_text_len);
    if (!rc)
        rc = aos_buf_append(&b, text + id_off + id_len, len - id_off - id_len);
    if (!rc && sse)
        rc = aos_buf_append(&b, "\n\n", 2);
    if (!rc) {
        if (sse)
            aos_http_add_header(req, "Cache-Control", "no-cache");
        rc = aos_http_respond(req, 200, sse ? "text/event-stream" : "application/json", b.ptr,
                              b.len);
    }
    aos_buf_release(&b);
    return rc;
}

void gw_sessions_sweep(aos_gateway_t *gw)
{
    uint64_t now = gw_now_ms();
    uint64_t idle = (uint64_t)gw->cfg.session_idle_s * 1000;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&gw->sessions, &it, NULL, NULL, &v)) {
        gw_session_t *s = v;
        if (s->calls || now - s->last_seen_ms < idle)
            continue;
        /* a live stream keeps the session; a heartbeat finds dead ones */
        if (gw_session_ping(s))
            continue;
        aos_log_info("gateway", "session %s expired after %u s idle", s->id,
                     gw->cfg.session_idle_s);
        gw_session_free(s);
    }
    gw_replay_expire(gw);
}
