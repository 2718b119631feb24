/* session.c - MCP client sessions (Mcp-Session-Id) of the gateway's
 * endpoints: creation, lookup, the optional GET stream that carries what
 * no request is waiting for, and the sweep of idle sessions. */
#include "gateway/internal.h"
#include "buf/buf.h"
#include "log/log.h"

#include <sodium.h>
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

static void stream_closed(aos_http_req_t *req, int aborted, void *data)
{
    gw_session_t *s = data;
    if (s->stream == req)
        s->stream = NULL;
}

void gw_session_free(gw_session_t *s)
{
    aos_gateway_t *gw = s->gw;
    aos_map_del(&gw->sessions, s->id);
    while (s->calls) {
        gw_call_t *c = s->calls;
        gw_call_finish(c, aos_rpc_error_aos(c->id, AOS_ECANCELED, "session ended"));
    }
    if (s->stream) {
        aos_http_on_close(s->stream, NULL, NULL);
        aos_http_stream_close(s->stream);
        s->stream = NULL;
    }
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

/* One SSE "message" event carrying msg, appended to b. */
static int sse_frame(const json_t *msg, aos_buf_t *b)
{
    char *s = json_dumps(msg, JSON_COMPACT);
    if (!s)
        return AOS_ENOMEM;
    int rc = aos_buf_puts(b, "event: message\ndata: ");
    if (!rc)
        rc = aos_buf_puts(b, s);
    if (!rc)
        rc = aos_buf_puts(b, "\n\n");
    free(s);
    return rc;
}

int gw_sse_write(aos_http_req_t *req, const json_t *msg)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = sse_frame(msg, &b);
    if (!rc)
        rc = aos_http_stream_write(req, b.ptr, b.len);
    aos_buf_release(&b);
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
    int rc = sse_frame(msg, &b);
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

int gw_session_send(gw_session_t *s, json_t *msg)
{
    int rc = AOS_ENOTFOUND;
    if (s->stream) {
        /* a reader that stopped reading is cut off rather than buffered forever */
        if (aos_http_stream_pending(s->stream) > (8u << 20)) {
            aos_log_warn("gateway", "session %s: GET stream is not read; closing it", s->id);
            aos_http_req_t *r = s->stream;
            s->stream = NULL;
            aos_http_on_close(r, NULL, NULL);
            aos_http_stream_close(r);
        } else {
            rc = gw_sse_write(s->stream, msg);
        }
    }
    json_decref(msg);
    return rc;
}

int gw_session_attach_stream(gw_session_t *s, aos_http_req_t *req)
{
    if (s->stream)
        return AOS_ECONFLICT;
    aos_http_add_header(req, "Mcp-Session-Id", s->id);
    int rc = aos_http_stream_open(req, 200, "text/event-stream");
    if (rc)
        return rc;
    s->stream = req;
    aos_http_on_close(req, stream_closed, s);
    /* a comment first, so that clients see the stream is open */
    aos_http_stream_write(req, ": stream open\n\n", 15);
    return 0;
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
        if (s->stream) {
            /* a live stream keeps the session; a heartbeat finds dead ones */
            aos_http_stream_write(s->stream, ": ping\n\n", 8);
            continue;
        }
        aos_log_info("gateway", "session %s expired after %u s idle", s->id,
                     gw->cfg.session_idle_s);
        gw_session_free(s);
    }
}
