/* internal.h - shared inside the gateway module only.
 *
 * Objects and who owns them:
 *   aos_gateway_t  owns the servers (by name) and the sessions (by id).
 *   gw_server_t    one registry entry and its upstream (or a built-in).
 *   gw_session_t   one MCP client session (Mcp-Session-Id), bound either to
 *                  the aggregated endpoint (server_name NULL) or to one server.
 *   gw_call_t      one client request in flight; linked into its session and
 *                  its server; owned by the gateway until answered.
 *   gw_outreq_t    one server->client request (sampling, elicitation, roots)
 *                  waiting for the client's answer; owned by its session.
 *   gw_stream_t    one SSE stream of a session (a call's answer stream, or the
 *                  session's GET stream); owned by its session, outlives its
 *                  connections so that a client can resume it (stream.c).
 *   gw_event_t     one event of a stream kept for replay; owned by the
 *                  session's replay buffer, linked into the gateway's too. */
#ifndef AOS_GATEWAY_INTERNAL_H
#define AOS_GATEWAY_INTERNAL_H

#include "gateway/gateway.h"
#include "buf/buf.h"
#include "jsonrpc/jsonrpc.h"
#include "map/map.h"
#include "guard/guard.h"
#include "registry/registry.h"
#include "upstream/upstream.h"

#include <jansson.h>
#include <stdint.h>

#define GW_SEP     "__"
#define GW_BUILTIN "aos"
/* Log lines of a shared upstream kept in aosd's log: a flood of them must
 * not flood the log service (a server may send thousands a second). */
#define GW_SHARED_LOG_RATE  20
#define GW_SHARED_LOG_BURST 100
/* Lists fetched again because a call named what they lack: at most this often. */
#define GW_REFRESH_MIN_MS 1000

typedef struct gw_server gw_server_t;

/* What an upstream offers, for the aggregated endpoint: fetched (every
 * page) when it becomes READY and again on its list_changed. A list is
 * NULL until fetched, and stays NULL when the server lacks the capability. */
typedef struct {
    json_t *tools, *resources, *templates, *prompts;
    int pending; /* fetches in flight */
} gw_lists_t;
typedef enum { GW_TOOLS, GW_RESOURCES, GW_TEMPLATES, GW_PROMPTS } gw_list_t;
typedef struct gw_session gw_session_t;
typedef struct gw_call gw_call_t;
typedef struct gw_stream gw_stream_t;
typedef struct gw_event gw_event_t;

/* A queue of things due after one fixed delay, so that adding keeps it in
 * due order: one timer for all of them (stream.c). */
typedef struct gw_tq_node {
    struct gw_tq_node *prev, *next;
    uint64_t due_ms;
    int linked;
} gw_tq_node_t;
typedef struct {
    gw_tq_node_t *head, *tail;
    uv_timer_t timer;
    void (*fire)(gw_tq_node_t *n); /* n is unlinked first */
} gw_tq_t;

/* A client session's own upstream of a server (see gw_upstream_for). */
typedef struct {
    aos_gateway_t *gw;
    gw_session_t *sess; /* borrowed; NULL once its upstream is closed */
    gw_server_t *sv;    /* borrowed; NULL once closing */
    char *server;
    aos_upstream_t *up;
    gw_lists_t lists;
} gw_sup_t;

struct gw_server {
    aos_gateway_t *gw; /* borrowed */
    char *name;
    json_t *entry; /* stored registry entry (secrets sealed) */
    const aos_builtin_t *builtin;
    int agent;          /* an agent's (src/agents): not a registry entry, not stored */
    char *hold;         /* a remote agent's: calls are refused (AOS_EUNAVAIL) with this, or NULL */
    aos_upstream_t *up; /* the shared upstream */
    int per_client;     /* session_mode "per-client": one upstream per client session */
    unsigned own_ups;   /* client sessions' own upstreams of this server, alive */
    int enabled;
    gw_lists_t lists;      /* what the shared upstream (or the built-in) offers */
    uint64_t refreshed_ms; /* when gw_server_refresh last asked for lists */
    uint64_t ready_since_ms;
    gw_call_t *calls; /* sent, queued or waiting to retry; newest first */
    int closing;
    int taught; /* its entry's secret values went to cfg.on_unseal */
    /* isolation (call.c) */
    aos_limits_t limits;
    aos_bucket_t bucket;
    aos_quota_t quota;
    aos_breaker_t breaker;
    aos_map_t callers;       /* caller id -> aos_bucket_t (per-caller rate) */
    aos_bucket_t log_bucket; /* the shared upstream's log lines kept per second */
    uint64_t log_dropped;    /* ... and those dropped beyond it, since the last kept */
    unsigned active;         /* calls sent and not yet answered */
    gw_call_t *queue;        /* waiting for a slot, oldest first (linked by q_next) */
    unsigned queued;
    gw_call_t *counting;       /* counted by the quota, waiting for the store to hold the
                                  count (oldest first, linked by q_next) */
    struct gw_quota_job *qjob; /* the quota count being written, or NULL */
    /* health (gateway.c) */
    uv_timer_t *health_timer;
    int ping_pending;
    uint64_t ping_sent_ms;
    double ping_ms; /* latency of the last ping, -1 if it failed */
    char last_ping_error[160];
    char start_error[160]; /* why the upstream could not be created, "" if it was */
    gw_server_t *next_closing;
};

enum gw_call_kind { GW_CALL_MCP, GW_CALL_REST, GW_CALL_INPROC };

enum gw_call_phase {
    GW_PHASE_NONE = 0,
    GW_PHASE_SENT,
    GW_PHASE_QUEUED,
    GW_PHASE_RETRY,
    GW_PHASE_COUNTING /* waits for its quota count to be stored */
};

/* What to do with the upstream's answer before it goes to the client. */
enum gw_call_xform { GW_XF_NONE, GW_XF_INIT };

struct gw_call {
    aos_gateway_t *gw;
    enum gw_call_kind kind;
    gw_session_t *sess;  /* borrowed; NULL for REST */
    json_t *id;          /* the client's JSON-RPC id */
    aos_http_req_t *req; /* the POST to answer; NULL once the client left or
                            once the answer became a stream (st) */
    int accept_sse;
    gw_stream_t *st;     /* the answer's SSE stream, once it is one */
    gw_tq_node_t prime;  /* in gw->prime until the answer is a stream or sent */
    gw_server_t *server; /* borrowed, while phase != NONE */
    aos_upstream_t *up;  /* borrowed: where it was sent (shared or the session's) */
    enum gw_call_phase phase;
    uint64_t up_id;
    char *method;   /* kept for queued sends and retries */
    json_t *params; /* likewise */
    unsigned attempts;
    int probe; /* let through as the half-open breaker's probe */
    uv_timer_t *retry_timer;
    gw_call_t *q_next;
    char caller[40];   /* the principal's id, for per-caller limits */
    uint64_t progress; /* our progress token upstream, 0 = none */
    json_t *client_progress;
    enum gw_call_xform xform;
    char *tool;               /* for logs and metrics */
    char *server_name;        /* for logs and metrics */
    struct gw_ticket *ticket; /* a built-in call in progress */
    /* in-process calls (aos_gateway_call) */
    aos_gateway_done_fn done;
    void *done_data;
    aos_gateway_progress_fn on_progress;
    json_t *caps;            /* the caller's, for built-ins; may be NULL */
    char *idempotency_key;   /* may be NULL */
    char *on_behalf_of;      /* a task's submitter (aos_caller_t); may be NULL */
    json_t *env;             /* the caller's opened secrets, wiped at free; may be NULL */
    uint32_t timeout_ms;     /* 0 = the server's */
    int starting;            /* inside aos_gateway_call: an answer now waits a turn */
    json_t *deferred;        /* that answer, until defer_timer delivers it */
    uv_timer_t *defer_timer; /* allocated up front; initialized only when armed */
    int defer_armed;
    aos_span_t *span;     /* the attempt's span (in-process calls), until it ends */
    aos_tracectx_t trace; /* what the call runs in: the request's span, sent upstream */
    uint64_t started_ns;
    gw_call_t *s_prev, *s_next;   /* in sess->calls */
    gw_call_t *sv_prev, *sv_next; /* in server->calls */
};

typedef struct {
    char *server;
    json_t *up_id; /* the upstream's id for the request */
    uint64_t down_id;
} gw_outreq_t;

struct gw_session {
    aos_gateway_t *gw;
    char id[33];
    char *server_name; /* NULL: aggregated endpoint */
    char owner[56];    /* "<kind>:<id>" of the principal that opened it: only it may use it */
    char protocol[16];
    json_t *client_caps;
    json_t *client_info;
    /* Its upstreams are its own on every server (gw_upstream_for): it
     * declared sampling, elicitation or roots, or asked for log messages,
     * so what an upstream asks or says in its name must reach it alone. */
    int exclusive;
    json_t *up_caps;   /* what its own upstreams are told it can do */
    int log_level;     /* index in gw_log_levels; messages below are dropped */
    int log_level_set; /* the client asked for a level (logging/setLevel) */
    int resumable;     /* 2025-11-25 or later: priming events, polling */
    /* SSE streams (stream.c): ids "<no>-<seq>", the replay buffer */
    gw_stream_t *streams; /* every stream it still knows */
    gw_stream_t *get;     /* the GET stream, once opened */
    uint32_t next_stream;
    gw_event_t *ev_head, *ev_tail; /* the replay buffer, oldest first */
    size_t ev_bytes;
    uint64_t last_seen_ms;
    gw_call_t *calls;
    aos_map_t outreqs; /* down_id -> gw_outreq_t */
    uint64_t next_out_id;
    json_t *subscriptions; /* uri -> true */
    aos_map_t ups;         /* server name -> gw_sup_t (per-client servers) */
};

struct aos_gateway_s {
    aos_gateway_cfg_t cfg;
    char **hosts;           /* allowed Host names (lowercase, no port) */
    char **origins;         /* allowed Origins */
    aos_map_t servers;      /* name -> gw_server_t */
    aos_map_t sessions;     /* id -> gw_session_t */
    aos_map_t progress;     /* our token -> gw_call_t */
    aos_map_t fingerprints; /* error fingerprint -> its anomaly window */
    uint64_t next_progress;
    gw_server_t *closing; /* servers whose upstream is closing */
    uv_timer_t sweep;
    int shutting_down;
    int pending_closes;
    void (*on_shutdown)(void *data);
    void *shutdown_data;
    json_t *client_caps; /* what the shared upstreams are told a client can do */
    /* SSE streams (stream.c) */
    gw_event_t *ev_head, *ev_tail; /* every session's replay buffer, oldest first */
    size_t ev_bytes;
    gw_tq_t prime; /* calls to turn into a primed stream */
    gw_tq_t hold;  /* connections of unanswered streams to close (polling) */
    int timers_open;
    /* metrics */
    aos_metric_t *m_calls, *m_latency, *m_sessions, *m_up, *m_queue, *m_rejected, *m_breaker,
        *m_health, *m_replay;
    aos_metric_t *m_client_op; /* mcp_client_operation_duration_seconds (OpenTelemetry) */
};

extern const char *const gw_log_levels[]; /* debug .. emergency */
int gw_log_level_index(const char *name);

/* gateway.c: servers */
gw_server_t *gw_server_get(aos_gateway_t *gw, const char *name);
/* The servers in name order (live_only: enabled and not being removed);
 * *n set; free() the array (NULL on ENOMEM). */
gw_server_t **gw_servers_sorted(aos_gateway_t *gw, int live_only, size_t *n);
/* Creates or replaces the live server for a stored entry. */
int gw_server_apply(aos_gateway_t *gw, const json_t *entry, aos_err_t *err);
void gw_server_remove(aos_gateway_t *gw, const char *name);
json_t *gw_server_health(gw_server_t *sv); /* new object */
int gw_server_ready(const gw_server_t *sv);
/* The upstream the calls of session s (NULL: a REST call) go to on sv: an
 * upstream of the session's own, created on first use, when sv is
 * per-client or s is exclusive; else sv's shared upstream, which serves
 * only sessions that nothing may be asked of in their name. NULL when an
 * upstream of its own is needed and cannot be had (per-client server at
 * its limit, or out of memory). */
aos_upstream_t *gw_upstream_for(gw_server_t *sv, gw_session_t *s);
/* Session s's own upstream of server, or NULL; never creates one. */
aos_upstream_t *gw_sup_get(gw_session_t *s, const char *server);
/* Closes session s's own upstream of server (if any). */
void gw_sup_close(gw_session_t *s, const char *server);
/* Fetches sv's lists again (which: "tools", "resources", "prompts", NULL =
 * all), at most once in GW_REFRESH_MIN_MS. */
void gw_server_refresh(gw_server_t *sv, const char *which);
/* The list of sv that session s (may be NULL) sees: its own upstream's
 * when it has one that listed it, else the shared one's. Borrowed; NULL if
 * not known. */
json_t *gw_list_for(gw_server_t *sv, gw_session_t *s, gw_list_t which);
/* 1 if the cached tools of sv are known and hold no tool named tool. A
 * cache can lag behind the upstream, so callers still forward the call and
 * let the upstream decide, and ask for a refresh. */
int gw_server_lacks_tool(const gw_server_t *sv, const char *tool);
/* 1 if the cached tools of sv are known and hold tool. */
int gw_server_has_tool(const gw_server_t *sv, const char *tool);
uint64_t gw_now_ms(void);

/* calls (gateway.c) */
gw_call_t *gw_call_new(aos_gateway_t *gw, enum gw_call_kind kind, gw_session_t *sess,
                       const json_t *id, aos_http_req_t *req);
/* Sends method/params (stolen) to sv for call c through sv's limits; the
 * answer goes to the client when it arrives. Returns 0, or an error in err
 * (with when to retry, in seconds, for ERATE/EUNAVAIL); c is then not
 * answered: the caller answers and frees it (gw_call_fail). */
int gw_call_forward(gw_call_t *c, gw_server_t *sv, const char *method, json_t *params,
                    aos_err_t *err, uint64_t *retry_after_s);
/* Answers c with err (as a JSON-RPC error, or REST error with Retry-After). */
void gw_call_fail(gw_call_t *c, const aos_err_t *err, uint64_t retry_after_s);
/* Ends queued and retrying calls of a server being removed. */
void gw_calls_abandon(gw_server_t *sv);
/* The quota count of sv outlives a restart (see guard.h): restores it from
 * the store, synchronously (at start-up, before the loop runs). */
void gw_quota_load(gw_server_t *sv);
/* Writes the exact count of sv (a clean stop, or sv is replaced); sv may be
 * freed before the write ends. */
void gw_quota_settle(gw_server_t *sv);
/* sv is about to be freed: a write in flight forgets it. */
void gw_quota_detach(gw_server_t *sv);
void gw_fingerprints_sweep(aos_gateway_t *gw);
/* Answers c with a full JSON-RPC message (stolen) and frees c. */
void gw_call_finish(gw_call_t *c, json_t *msg);
/* Sends an intermediate message (stolen) on c's stream (or the session's). */
void gw_call_send(gw_call_t *c, json_t *msg);
void gw_call_free(gw_call_t *c);
/* Zeroes the string values of an env object ({"NAME": "secret"}) in place. */
void gw_wipe_env(json_t *env);

/* session.c */
gw_session_t *gw_session_new(aos_gateway_t *gw, const char *server_name);
gw_session_t *gw_session_get(aos_gateway_t *gw, const char *id);
/* The session id if req's principal opened it (else NULL, as if there
 * were none: another principal's session id gives nothing away). */
gw_session_t *gw_session_get_for(aos_gateway_t *gw, const char *id, aos_http_req_t *req);
/* Writes the owner key of req's principal ("token:<id>", "user:<id>",
 * ":anonymous") into out. */
void gw_session_owner(aos_http_req_t *req, char *out, size_t cap);
void gw_session_free(gw_session_t *s);
/* Sends msg (stolen) on the session's GET stream (kept for replay while
 * its connection is away); drops it if the session never opened one. */
int gw_session_send(gw_session_t *s, json_t *msg);
/* Answers a POST with one JSON-RPC message (stolen): one SSE event when the
 * client accepts text/event-stream, else application/json. */
int gw_respond_msg(aos_http_req_t *req, json_t *msg);
/* The same for a message given as its text (one line of JSON, no CR or
 * LF), with id_text spliced in place of text[id_off..id_off+id_len):
 * an upstream's answer passed on with the client's id. sse: as one SSE
 * event (the client accepts text/event-stream). */
int gw_respond_text(aos_http_req_t *req, int sse, const char *text, size_t len, size_t id_off,
                    size_t id_len, const char *id_text, size_t id_text_len);
/* One SSE "message" event carrying msg, with id (may be NULL), appended to b. */
int gw_sse_frame(const json_t *msg, const char *id, aos_buf_t *b);
void gw_sessions_sweep(aos_gateway_t *gw);

/* stream.c: SSE streams of client sessions, their event ids and the replay
 * buffer that lets a client resume one (GET with Last-Event-ID). */
void gw_streams_init(aos_gateway_t *gw);
/* Takes n out of q (if it is in). */
void gw_tq_del(gw_tq_t *q, gw_tq_node_t *n);
/* Closes the timers; done(gw) runs once they are closed. */
void gw_streams_close(aos_gateway_t *gw, void (*done)(uv_handle_t *));
/* Makes c's answer an SSE stream on its POST (primed when the session is
 * resumable). 0, or an error and c unchanged. */
int gw_call_open_stream(gw_call_t *c);
/* Queues c to be primed if its answer takes a while (see stream.c). */
void gw_call_prime_later(gw_call_t *c);
/* Writes msg (borrowed) as the next event of st, keeping it for replay;
 * final: it ends the stream (a call's answer). */
void gw_stream_send(gw_stream_t *st, const json_t *msg, int final);
/* The call of st was freed: the stream ends (if its answer was not sent,
 * without one). */
void gw_stream_orphan(gw_stream_t *st);
/* Opens the session's GET stream on req (AOS_ECONFLICT if it is connected). */
int gw_session_attach_stream(gw_session_t *s, aos_http_req_t *req);
/* GET with Last-Event-ID: replays on req what came after last on its
 * stream, then carries the stream on (or ends when it has ended). An
 * error (AOS_EBADREQ: not an id of this session, or events after it are no
 * longer kept) leaves req unanswered and changes nothing. */
int gw_stream_resume(gw_session_t *s, aos_http_req_t *req, const char *last, aos_err_t *err);
/* 1 if the session's GET stream has a connection now. */
int gw_session_connected(const gw_session_t *s);
/* Heartbeat on the GET stream's connection, if any; 1 if there was one. */
int gw_session_ping(gw_session_t *s);
/* Frees the streams and replay buffer of s (closing their connections). */
void gw_session_streams_free(gw_session_t *s);
/* Drops replayable events older than the window. */
void gw_replay_expire(aos_gateway_t *gw);
/* The initialize result a session on sv gets (new reference). */
json_t *gw_init_result(gw_session_t *s, gw_server_t *sv);

/* mcp.c: the Streamable HTTP endpoints */
int gw_mcp_handle(aos_http_req_t *req, void *data);
/* Records on req's server span (if any) how the MCP message it carries was
 * answered: msg, a JSON-RPC response (borrowed). An error is error.type and
 * rpc.response.status_code = its code, and status ERROR with its message; a
 * tool result with isError is error.type "tool_error". */
void gw_span_outcome(aos_http_req_t *req, const json_t *msg);
/* The tool-result-with-isError case of gw_span_outcome on its own. */
void gw_span_tool_error(aos_http_req_t *req);
/* The same for a failure of ours with an AOS_E* code. */
void gw_span_fail(aos_span_t *s, int code, const char *msg);
/* Routing of what an upstream up of sv sends by itself. only: the session
 * whose own upstream up is, or NULL for sv's shared upstream. Nothing from
 * a shared upstream that a client's call may have caused (requests, log
 * lines, cancels) reaches a client: aosd cannot know whose it is. */
void gw_route_notification(gw_server_t *sv, gw_session_t *only, aos_upstream_t *up, json_t *msg);
/* up: the upstream that asked, to answer it */
void gw_route_request(gw_server_t *sv, gw_session_t *only, aos_upstream_t *up, json_t *msg);

/* Runs tool of the built-in sv for c; the answer finishes c. */
int gw_call_builtin(gw_call_t *c, gw_server_t *sv, const char *tool, const json_t *args);

/* builtin.c */
extern const aos_builtin_t gw_builtin_aos;

/* rest.c */
extern const aos_http_route_t gw_routes[];
extern const size_t gw_nroutes;

#endif
