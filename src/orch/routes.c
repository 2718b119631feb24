/* routes.c - the orchestrator's REST routes for submitting, listing and
 * cancelling jobs and deciding approvals, and the route table of all of
 * them (episodes in episode.c, chat in chat.c). A handler that waits for a
 * commit keeps its request in a waiter that forgets it if the client
 * leaves first. */
#include "orch/internal.h"
#include "auth/auth.h"

#include <stdlib.h>
#include <string.h>

static void waiter_closed(aos_http_req_t *req, int aborted, void *data)
{
    orch_waiter_t *w = data;
    w->req = NULL;
}

orch_waiter_t *orch_waiter_new(aos_http_req_t *req)
{
    orch_waiter_t *w = calloc(1, sizeof(*w));
    if (!w)
        return NULL;
    w->req = req;
    aos_http_on_close(req, waiter_closed, w);
    return w;
}

void orch_waiter_free(orch_waiter_t *w)
{
    if (w->req)
        aos_http_on_close(w->req, NULL, NULL);
    json_decref(w->body);
    free(w);
}

const char *orch_actor(aos_http_req_t *req, char *buf, size_t n)
{
    const aos_principal_t *p = aos_auth_principal(req);
    snprintf(buf, n, "token:%s", p ? p->id : "anonymous");
    return buf;
}

/* ---- POST /api/run ------------------------------------------------------------- */

static void run_submitted(int status, const aos_err_t *err, const char *trace_id, int64_t job_id,
                          void *data)
{
    orch_waiter_t *w = data;
    if (w->req) {
        if (status)
            aos_http_respond_err(w->req, err);
        else
            aos_http_respond_json(
                w->req, 201,
                json_pack("{s:s, s:I}", "trace_id", trace_id, "job_id", (json_int_t)job_id));
    }
    orch_waiter_free(w);
}

int orch_http_caps_check(aos_http_req_t *req, const json_t *spec, aos_err_t *err)
{
    const json_t *h = json_object_get(json_object_get(spec, "constraints"), "http");
    if (json_is_true(json_object_get(h, "allow_private")) &&
        aos_auth_req_check(req, AOS_PERM_ADMIN, "system"))
        return aos_err_set(err, AOS_EFORBIDDEN,
                           "constraints.http.allow_private: only an admin may let a task reach "
                           "private addresses");
    return 0;
}

/* A task calls its tools as "task:<trace>", limited to constraints.tools;
 * so the submitter must be allowed to call every tool the task may: each
 * name or pattern of constraints.tools, or every tool when it has none.
 * 0, or AOS_EFORBIDDEN with err naming the first it may not. (Malformed
 * entries are left to the spec's own check.) */
static int tools_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err)
{
    const json_t *tools = json_object_get(json_object_get(spec, "constraints"), "tools");
    char res[300];
    if (orch_http_caps_check(req, spec, err))
        return err->code;
    if (!json_is_array(tools)) {
        if (tools || aos_auth_req_check(req, AOS_PERM_OPERATE, "tool:*") == 0)
            return 0;
        return aos_err_set(err, AOS_EFORBIDDEN,
                           "this token may call only some tools: name them in constraints.tools");
    }
    size_t i;
    const json_t *t;
    json_array_foreach(tools, i, t)
    {
        if (!json_is_string(t))
            continue;
        snprintf(res, sizeof(res), "tool:%.250s", json_string_value(t));
        if (aos_auth_req_check(req, AOS_PERM_OPERATE, res))
            return aos_err_set(err, AOS_EFORBIDDEN,
                               "constraints.tools[%zu]: this token may not call '%.100s'", i,
                               json_string_value(t));
    }
    return 0;
}

int orch_env_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err)
{
    const char *k;
    json_t *v;
    char res[96];
    json_object_foreach(json_object_get(spec, "env"), k, v)
    {
        const char *name = json_string_value(json_object_get(v, "secret"));
        if (!name)
            continue; /* malformed: the spec's own check says so */
        snprintf(res, sizeof(res), "secret:%.64s", name);
        if (aos_auth_req_check(req, AOS_PERM_OPERATE, res))
            return aos_err_set(err, AOS_EFORBIDDEN,
                               "env.%.64s: this token may not use runtime secret '%.64s'", k, name);
    }
    return 0;
}

static int route_run(aos_http_req_t *req, void *data)
{
    aos_orch_t *o = data;
    aos_err_t err = {0, ""};
    json_t *spec = aos_http_body_json(req, &err);
    if (!spec)
        return aos_http_respond_err(req, &err);
    if (tools_of_submitter(req, spec, &err) || orch_env_of_submitter(req, spec, &err)) {
        json_decref(spec);
        return aos_http_respond_err(req, &err);
    }
    orch_waiter_t *w = orch_waiter_new(req);
    char actor[64];
    int rc =
        w ? aos_orch_submit(o, spec, orch_actor(req, actor, sizeof(actor)), run_submitted, w, &err)
          : aos_err_set(&err, AOS_ENOMEM, NULL);
    json_decref(spec);
    if (rc) {
        if (w)
            orch_waiter_free(w);
        return aos_http_respond_err(req, &err);
    }
    return 0;
}

/* ---- GET /api/jobs --------------------------------------------------------------- */

struct list_job {
    orch_waiter_t *w;
    char status[16];
    int64_t before;
    int limit;
    json_t *rows;
};

static int jobs_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct list_job *j = arg;
    return aos_store_jobs_list(st, j->status[0] ? j->status : NULL, j->before, j->limit, &j->rows,
                               err);
}

static void jobs_done(int status, const aos_err_t *err, void *arg)
{
    struct list_job *j = arg;
    if (j->w->req) {
        if (status) {
            aos_http_respond_err(j->w->req, err);
        } else {
            size_t n = json_array_size(j->rows);
            json_t *last = n == (size_t)j->limit ? json_array_get(j->rows, n - 1) : NULL;
            json_t *body = json_pack("{s:O, s:o}", "jobs", j->rows, "next_before",
                                     last ? json_incref(json_object_get(last, "id")) : json_null());
            aos_http_respond_json(j->w->req, 200, body);
        }
    }
    json_decref(j->rows);
    orch_waiter_free(j->w);
    free(j);
}

int orch_trace_ok(const char *s)
{
    if (!s || strlen(s) != 32)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

int orch_query_int(aos_http_req_t *req, const char *name, long long lo, long long hi,
                   long long dflt, long long *out, aos_err_t *err)
{
    const char *v = aos_http_query(req, name);
    if (!v) {
        *out = dflt;
        return 0;
    }
    char *end;
    long long n = strtoll(v, &end, 10);
    if (!*v || *end || n < lo || n > hi)
        return aos_err_set(err, AOS_EINVAL, "'%s' must be a whole number %lld..%lld", name, lo, hi);
    *out = n;
    return 0;
}

static int route_jobs(aos_http_req_t *req, void *data)
{
    aos_orch_t *o = data;
    aos_err_t err = {0, ""};
    const char *status = aos_http_query(req, "status");
    static const char *const known[] = {"queued", "running",   "waiting", "done",
                                        "failed", "cancelled", NULL};
    int ok = !status;
    for (int i = 0; known[i] && !ok; i++)
        ok = !strcmp(status, known[i]);
    if (!ok)
        return aos_http_respond_error(
            req, AOS_EINVAL,
            "'status' must be queued, running, waiting, done, failed or cancelled");
    long long before = 0, limit = 0;
    if (orch_query_int(req, "before", 1, INT64_MAX, 0, &before, &err) ||
        orch_query_int(req, "limit", 1, AOS_STORE_LIST_MAX, 50, &limit, &err))
        return aos_http_respond_err(req, &err);
    struct list_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->w = orch_waiter_new(req))) {
        free(j);
        return AOS_ENOMEM;
    }
    if (status)
        snprintf(j->status, sizeof(j->status), "%s", status);
    j->before = before;
    j->limit = (int)limit;
    if (aos_store_submit(o->cfg.store, jobs_job, jobs_done, j)) {
        orch_waiter_free(j->w);
        free(j);
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the store is closing");
    }
    return 0;
}

/* ---- POST /api/jobs/:id/cancel ------------------------------------------------------- */

static void cancelled(orch_tx_t *tx)
{
    orch_waiter_t *w = tx->reply_data;
    if (w->req) {
        if (tx->status)
            aos_http_respond_err(w->req, &tx->err);
        else
            aos_http_respond_json(
                w->req, 200, json_pack("{s:s, s:s}", "trace_id", w->text, "status", "cancelled"));
    }
    orch_waiter_free(w);
}

static int route_cancel(aos_http_req_t *req, void *data)
{
    aos_orch_t *o = data;
    const char *id = aos_http_param(req, "id");
    char *end;
    long long jid = id ? strtoll(id, &end, 10) : 0;
    if (!id || !*id || *end || jid <= 0)
        return aos_http_respond_error(req, AOS_EINVAL, "a job id is a positive whole number");
    orch_task_t *t = aos_map_get_u64(&o->jobs, (uint64_t)jid);
    if (!t)
        return aos_http_respond_error(
            req, AOS_ENOTFOUND, "no unfinished job %lld (finished jobs cannot be cancelled)", jid);
    orch_waiter_t *w = orch_waiter_new(req);
    if (!w)
        return AOS_ENOMEM;
    snprintf(w->text, sizeof(w->text), "%s", t->trace_id);
    aos_err_t err = {0, ""};
    char actor[64];
    if (orch_task_cancel(t, orch_actor(req, actor, sizeof(actor)), cancelled, w, &err)) {
        orch_waiter_free(w);
        return aos_http_respond_err(req, &err);
    }
    return 0;
}

/* ---- POST /agent/approve ---------------------------------------------------------------- */

static void decided(orch_tx_t *tx)
{
    orch_waiter_t *w = tx->reply_data;
    if (w->req) {
        if (tx->status)
            aos_http_respond_err(w->req, &tx->err);
        else
            aos_http_respond_json(w->req, 200, json_incref(w->body));
    }
    orch_waiter_free(w);
}

static int route_approve(aos_http_req_t *req, void *data)
{
    aos_orch_t *o = data;
    aos_err_t err = {0, ""};
    json_t *in = aos_http_body_json(req, &err);
    if (!in)
        return aos_http_respond_err(req, &err);
    const char *trace = NULL, *step = NULL, *decision = NULL, *comment = NULL;
    json_error_t je;
    int rc = 0;
    if (json_unpack_ex(in, &je, JSON_STRICT, "{s:s, s:s, s:s, s?s}", "trace_id", &trace, "step_id",
                       &step, "decision", &decision, "comment", &comment)) {
        rc = aos_http_respond_error(
            req, AOS_EINVAL,
            "body must be {\"trace_id\", \"step_id\", \"decision\", \"comment\"}: %s", je.text);
        goto out;
    }
    if (comment && strlen(comment) > 4096) {
        rc = aos_http_respond_error(req, AOS_EINVAL, "'comment' is longer than 4096 bytes");
        goto out;
    }
    orch_task_t *t = aos_map_get(&o->tasks, trace);
    if (!t) {
        rc = aos_http_respond_error(
            req, AOS_ECONFLICT, "task %.40s waits for no decision (unknown or finished)", trace);
        goto out;
    }
    orch_waiter_t *w = orch_waiter_new(req);
    if (!w) {
        rc = AOS_ENOMEM;
        goto out;
    }
    char actor[64];
    w->body = json_pack("{s:s, s:s, s:s, s:s}", "trace_id", trace, "step_id", step, "decision",
                        decision, "actor", orch_actor(req, actor, sizeof(actor)));
    if (orch_task_decide(t, step, decision, comment, actor, decided, w, &err)) {
        orch_waiter_free(w);
        rc = aos_http_respond_err(req, &err);
    }
out:
    json_decref(in);
    return rc;
}

const aos_http_route_t orch_routes[] = {
    {"POST", "/api/run", AOS_PERM_OPERATE, route_run, 16 << 20, "task:*"},
    {"GET", "/api/jobs", AOS_PERM_READ, route_jobs, 0, NULL},
    {"POST", "/api/jobs/:id/cancel", AOS_PERM_OPERATE, route_cancel, 0, NULL},
    {"POST", "/agent/approve", AOS_PERM_OPERATE, route_approve, 64 << 10, NULL},
    {"GET", "/api/episodes/:trace", AOS_PERM_READ, orch_route_episode, 0, "task:{trace}"},
    {"GET", "/api/episodes/:trace/replay", AOS_PERM_READ, orch_route_replay, 0, "task:{trace}"},
    {"GET", "/api/episodes/:trace/artifacts/:name", AOS_PERM_READ, orch_route_artifact, 0,
     "task:{trace}"},
    {"POST", "/api/episodes/:trace/rerun", AOS_PERM_OPERATE, orch_route_rerun, 1 << 20, NULL},
    {"POST", "/api/chat/send", AOS_PERM_OPERATE, orch_route_chat_send, 16 << 20, NULL},
    {"GET", "/api/chat/conversations", AOS_PERM_READ, orch_route_conversations, 0, NULL},
    {"GET", "/api/chat/conversations/:id", AOS_PERM_READ, orch_route_conversation, 0, NULL},
};
const size_t orch_nroutes = sizeof(orch_routes) / sizeof(orch_routes[0]);
