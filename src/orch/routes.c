/* routes.c - the orchestrator's REST routes for submitting, listing and
 * cancelling jobs and deciding approvals, and the route table of all of
 * them (episodes in episode.c, chat in chat.c). A handler that waits for a
 * commit keeps its request in a waiter that forgets it if the client
 * leaves first. */
#include "orch/internal.h"
#include "settings/settings.h"
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
    return aos_auth_actor(aos_auth_principal(req), buf, n);
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
int orch_tools_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err)
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

/* Who may run a task: operate on every task ("task:*"), or on the project
 * the spec names (a grant on "project:<id>" reaches that project's tasks). */
int orch_project_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err)
{
    if (aos_auth_req_check(req, AOS_PERM_OPERATE, "task:*") == 0)
        return 0;
    const char *pid = json_string_value(json_object_get(spec, "project_id"));
    if (!pid)
        return aos_err_set(err, AOS_EFORBIDDEN,
                           "this token may run tasks only in its projects: give 'project_id'");
    if (aos_auth_req_check_task(req, AOS_PERM_OPERATE, NULL, pid))
        return aos_err_set(err, AOS_EFORBIDDEN, "this token may not run tasks in project '%.128s'",
                           pid);
    return 0;
}

int orch_env_of_submitter(aos_http_req_t *req, const json_t *spec, aos_err_t *err)
{
    return aos_settings_env_authorize(req, json_object_get(spec, "env"), err);
}

/* constraints.memory: the most relevant memory items, searched as the
 * submitter (its project rights) before the task is submitted, go into
 * the task's inputs as inputs.memory = [{id, subject, text, tags, score}]:
 * the planner sees them with the goal, steps reach them as
 * ${inputs.memory}, and the stored TaskSpec keeps what the task was given.
 * q defaults to the goal, k to 5 (at most 20). */
#define MEMORY_K_DEFAULT 5
#define MEMORY_K_MAX     20

struct run_wait {
    aos_orch_t *o;
    orch_waiter_t *w;
    json_t *spec;
    char actor[64];
};

static void run_go(struct run_wait *r)
{
    aos_err_t err = {0, ""};
    orch_waiter_t *w = r->w;
    int rc = aos_orch_submit(r->o, r->spec, r->actor, run_submitted, w, &err); /* takes spec */
    if (rc) {
        if (w->req)
            aos_http_respond_err(w->req, &err);
        orch_waiter_free(w);
    }
    free(r);
}

static void run_memory_found(int status, json_t *result, const aos_err_t *err, void *data)
{
    struct run_wait *r = data;
    if (status || !r->w->req) {
        if (status && r->w->req)
            aos_http_respond_err(r->w->req, err);
        orch_waiter_free(r->w);
        json_decref(r->spec);
        json_decref(result);
        free(r);
        return;
    }
    json_t *items = json_array(), *inputs = json_object_get(r->spec, "inputs");
    size_t i;
    json_t *x;
    json_array_foreach(json_object_get(result, "results"), i, x) json_array_append_new(
        items, json_pack("{s:O, s:O, s:O, s:O, s:O}", "id", json_object_get(x, "id"), "subject",
                         json_object_get(x, "subject"), "text", json_object_get(x, "text"), "tags",
                         json_object_get(x, "tags"), "score", json_object_get(x, "score")));
    json_decref(result);
    if (!inputs) {
        inputs = json_object();
        json_object_set_new(r->spec, "inputs", inputs);
    }
    json_object_set_new(inputs, "memory", items);
    run_go(r);
}

/* Starts the search of constraints.memory: 0 (r is the search's now), or
 * an error in err (r untouched). */
static int run_memory(aos_http_req_t *req, struct run_wait *r, const json_t *m, aos_err_t *err)
{
    if (!r->o->cfg.memory)
        return aos_err_set(err, AOS_EINVAL, "'constraints.memory': no memory service");
    const json_t *inputs = json_object_get(r->spec, "inputs");
    if (json_object_get(inputs, "memory"))
        return aos_err_set(err, AOS_EINVAL,
                           "'inputs.memory' is where constraints.memory puts the items it "
                           "finds: use another name");
    if (inputs && !json_is_object(inputs))
        return aos_err_set(err, AOS_EINVAL, "'inputs' must be an object");
    json_t *args = json_deep_copy(m);
    if (!args)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    const json_t *goal = json_object_get(r->spec, "goal");
    if (!json_object_get(args, "q") && json_is_string(goal))
        json_object_set_new(args, "q",
                            json_stringn(json_string_value(goal), json_string_length(goal) > 1024
                                                                      ? 1024
                                                                      : json_string_length(goal)));
    const json_t *k = json_object_get(args, "k");
    if (!k)
        json_object_set_new(args, "k", json_integer(MEMORY_K_DEFAULT));
    else if (json_is_integer(k) && json_integer_value(k) > MEMORY_K_MAX)
        json_object_set_new(args, "k", json_integer(MEMORY_K_MAX + 1)); /* refused below */
    int rc = json_is_integer(json_object_get(args, "k")) &&
                     json_integer_value(json_object_get(args, "k")) > MEMORY_K_MAX
                 ? aos_err_set(err, AOS_EINVAL, "'k' must be 1..%d", MEMORY_K_MAX)
                 : aos_memory_search(r->o->cfg.memory, aos_auth_principal(req), args,
                                     run_memory_found, r, err);
    json_decref(args);
    if (rc && err->code == AOS_EINVAL) {
        char msg[sizeof(err->msg)];
        snprintf(msg, sizeof(msg), "%s", err->msg);
        aos_err_set(err, AOS_EINVAL, "'constraints.memory': %s", msg);
    }
    return rc;
}

/* The checks and steps after a spec's project variables are resolved:
 * its secrets, its shape, then constraints.memory or the submission.
 * Consumes r (answers the request on failure). */
static void run_continue(struct run_wait *r)
{
    aos_http_req_t *req = r->w->req;
    aos_err_t err = {0, ""};
    if (!req || orch_env_of_submitter(req, r->spec, &err) || orch_spec_check(r->spec, &err)) {
        if (req)
            aos_http_respond_err(req, &err);
        orch_waiter_free(r->w);
        json_decref(r->spec);
        free(r);
        return;
    }
    const json_t *m = json_object_get(json_object_get(r->spec, "constraints"), "memory");
    if (!m) {
        run_go(r);
        return;
    }
    if (run_memory(req, r, m, &err)) {
        aos_http_respond_err(req, &err);
        orch_waiter_free(r->w);
        json_decref(r->spec);
        free(r);
    }
}

/* ---- env entries naming project variables --------------------------------------- */

struct vars_job {
    struct run_wait *r;
    char project[129];
    json_t *rows;
};

static int vars_read(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct vars_job *v = arg;
    return aos_store_project_var_list(st, v->project, &v->rows, err);
}

/* Each {"var": NAME} of the spec's env becomes {"secret": <its secret>,
 * "var": NAME} (the stored spec says what it resolved to); a variable of
 * scope "task" is preferred to one of scope "project" of the same name. */
static void vars_read_done(int status, const aos_err_t *err, void *arg)
{
    struct vars_job *v = arg;
    struct run_wait *r = v->r;
    aos_err_t e = {0, ""};
    if (status)
        e = *err;
    else
        aos_settings_env_resolve(json_object_get(r->spec, "env"), v->rows, v->project, &e);
    json_decref(v->rows);
    free(v);
    if (e.code) {
        if (r->w->req)
            aos_http_respond_err(r->w->req, &e);
        orch_waiter_free(r->w);
        json_decref(r->spec);
        free(r);
        return;
    }
    run_continue(r);
}

/* 1 if the spec's env names a project variable still to resolve. */
static int env_has_vars(const json_t *spec)
{
    const char *k;
    json_t *ent;
    json_object_foreach(json_object_get(spec, "env"), k, ent)
    {
        if (json_object_get(ent, "var") && !json_object_get(ent, "secret"))
            return 1;
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
    if (orch_project_of_submitter(req, spec, &err) || orch_tools_of_submitter(req, spec, &err)) {
        json_decref(spec);
        return aos_http_respond_err(req, &err);
    }
    int vars = env_has_vars(spec);
    const char *pid = json_string_value(json_object_get(spec, "project_id"));
    if (vars && (!pid || !*pid || strlen(pid) > 128)) {
        json_decref(spec);
        return aos_http_respond_error(req, AOS_EINVAL,
                                      "'env' names a project variable: give 'project_id'");
    }
    struct run_wait *r = calloc(1, sizeof(*r));
    orch_waiter_t *w = r ? orch_waiter_new(req) : NULL;
    if (!w) {
        free(r);
        json_decref(spec);
        return aos_http_respond_error(req, AOS_ENOMEM, "out of memory");
    }
    r->o = o;
    r->w = w;
    r->spec = spec;
    orch_actor(req, r->actor, sizeof(r->actor));
    if (!vars) {
        run_continue(r);
        return 0;
    }
    struct vars_job *v = calloc(1, sizeof(*v));
    if (v) {
        v->r = r;
        snprintf(v->project, sizeof(v->project), "%s", pid);
    }
    if (!v || aos_store_submit(o->cfg.store, vars_read, vars_read_done, v)) {
        free(v);
        orch_waiter_free(w);
        json_decref(spec);
        free(r);
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the store takes no more work");
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
            json_t *next = last ? json_incref(json_object_get(last, "id")) : json_null();
            /* a caller let in by a project grant sees its projects' jobs:
             * a page may then hold fewer than limit, next_before still goes on */
            if (aos_auth_req_check(j->w->req, AOS_PERM_READ, "system")) {
                for (size_t i = n; i-- > 0;) {
                    const json_t *row = json_array_get(j->rows, i);
                    if (aos_auth_req_check_task(
                            j->w->req, AOS_PERM_READ,
                            json_string_value(json_object_get(row, "trace_id")),
                            json_string_value(json_object_get(row, "project_id"))))
                        json_array_remove(j->rows, i);
                }
            }
            json_t *body = json_pack("{s:O, s:o}", "jobs", j->rows, "next_before", next);
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
    if (aos_auth_req_check_task(req, AOS_PERM_OPERATE, t->trace_id, t->project_id))
        return aos_http_respond_error(req, AOS_EFORBIDDEN, "this token may not cancel job %lld",
                                      jid);
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
    if (aos_auth_req_check_task(req, AOS_PERM_OPERATE, t->trace_id, t->project_id)) {
        rc = aos_http_respond_error(req, AOS_EFORBIDDEN, "this token may not decide for task %s",
                                    t->trace_id);
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
    {"POST", "/api/run", AOS_PERM_OPERATE, route_run, 16 << 20, "task:*|project"},
    {"GET", "/api/jobs", AOS_PERM_READ, route_jobs, 0, "system|project"},
    {"POST", "/api/jobs/:id/cancel", AOS_PERM_OPERATE, route_cancel, 0, "system|project"},
    {"POST", "/agent/approve", AOS_PERM_OPERATE, route_approve, 64 << 10, "system|project"},
    {"GET", "/api/episodes/:trace", AOS_PERM_READ, orch_route_episode, 0, "task:{trace}|project"},
    {"GET", "/api/episodes/:trace/replay", AOS_PERM_READ, orch_route_replay, 0,
     "task:{trace}|project"},
    {"GET", "/api/episodes/:trace/artifacts/:name", AOS_PERM_READ, orch_route_artifact, 0,
     "task:{trace}|project"},
    {"POST", "/api/episodes/:trace/rerun", AOS_PERM_OPERATE, orch_route_rerun, 1 << 20,
     "system|project"},
    {"POST", "/api/chat/send", AOS_PERM_OPERATE, orch_route_chat_send, 16 << 20, "task:*|project"},
    {"GET", "/api/chat/conversations", AOS_PERM_READ, orch_route_conversations, 0,
     "system|project"},
    {"GET", "/api/chat/conversations/:id", AOS_PERM_READ, orch_route_conversation, 0,
     "system|project"},
};
const size_t orch_nroutes = sizeof(orch_routes) / sizeof(orch_routes[0]);
