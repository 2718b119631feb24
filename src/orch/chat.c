/* chat.c - the Chat Hub's API: POST /api/chat/send takes a message (and
 * optionally Action DSL), keeps it in its conversation, plans it (the DSL;
 * else the offline planner; an LLM when one is configured) and starts the
 * task, answering with the trace id and the first events. A message no
 * planner understands gets an assistant reply saying so, and no task.
 * The message comes as JSON, or as multipart/form-data (what a browser's
 * form sends) whose file parts become the task's files: written into its
 * workspace before it starts.
 * GET /api/chat/conversations[/:id] read them back. */
#include "orch/internal.h"
#include "auth/auth.h"

#include "buf/buf.h"
#include "utf8/utf8.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#define MESSAGE_MAX 16384

struct send {
    aos_orch_t *o;
    orch_waiter_t *w;
    char conversation[65];
    char *message, *dsl, *title, *reply, *actor;
    char trace[33];
    int64_t job_id;
    json_t *plan; /* borrowed from the task once accepted: a copy */
    json_t *events;
};

static void send_free(struct send *s)
{
    if (s->w)
        orch_waiter_free(s->w);
    free(s->message);
    free(s->dsl);
    free(s->title);
    free(s->reply);
    free(s->actor);
    json_decref(s->plan);
    json_decref(s->events);
    free(s);
}

static int conversation_ok(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > 64)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* What the assistant says about a plan: its steps, one line each. */
static char *plan_reply(const json_t *plan)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    const json_t *steps = json_object_get(plan, "steps");
    aos_buf_printf(&b, "Planned %zu step%s:", json_array_size(steps),
                   json_array_size(steps) == 1 ? "" : "s");
    size_t i;
    const json_t *s;
    json_array_foreach(steps, i, s)
    {
        const char *id = json_string_value(json_object_get(s, "id"));
        if (json_object_get(s, "tool"))
            aos_buf_printf(&b, "\n%zu. %s: call %s", i + 1, id,
                           json_string_value(json_object_get(s, "tool")));
        else if (json_object_get(s, "approval"))
            aos_buf_printf(&b, "\n%zu. %s: ask for approval", i + 1, id);
        else
            aos_buf_printf(&b, "\n%zu. %s: milestone \"%s\"", i + 1, id,
                           json_string_value(json_object_get(s, "milestone")));
    }
    char *out = b.ptr ? strndup(b.ptr, b.len) : NULL;
    aos_buf_release(&b);
    return out;
}

static int events_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct send *s = arg;
    aos_store_event_query_t q = {.trace_id = s->trace, .limit = 20};
    return aos_store_event_list(st, &q, &s->events, err);
}

static void events_done(int status, const aos_err_t *err, void *arg)
{
    struct send *s = arg;
    if (s->w->req)
        aos_http_respond_json(s->w->req, 201,
                              json_pack("{s:s, s:s, s:I, s:s, s:O, s:O}", "conversation_id",
                                        s->conversation, "trace_id", s->trace, "job_id",
                                        (json_int_t)s->job_id, "reply", s->reply, "plan", s->plan,
                                        "events", s->events ? s->events : json_array()));
    send_free(s);
}

static void send_accepted(orch_tx_t *tx)
{
    struct send *s = tx->reply_data;
    if (tx->status) {
        if (s->w->req)
            aos_http_respond_err(s->w->req, &tx->err);
        send_free(s);
        return;
    }
    snprintf(s->trace, sizeof(s->trace), "%s", tx->task->trace_id);
    s->job_id = tx->job_id;
    if (aos_store_submit(s->o->cfg.store, events_job, events_done, s)) {
        aos_err_t e = {0, ""};
        events_done(AOS_EUNAVAIL, &e, s);
    }
}

static void send_extra(orch_tx_t *tx, void *data)
{
    struct send *s = data;
    orch_tx_message(tx, s->conversation, s->title, s->actor, "user", s->message, s->dsl,
                    tx->task->trace_id);
    orch_tx_message(tx, s->conversation, s->title, s->actor, "assistant", s->reply, NULL,
                    tx->task->trace_id);
}

static void unplanned_done(orch_tx_t *tx)
{
    struct send *s = tx->reply_data;
    if (s->w->req) {
        if (tx->status)
            aos_http_respond_err(s->w->req, &tx->err);
        else
            aos_http_respond_json(s->w->req, 200,
                                  json_pack("{s:s, s:n, s:s, s:O}", "conversation_id",
                                            s->conversation, "trace_id", "reply", s->reply, "error",
                                            s->events));
    }
    send_free(s);
}

/* A multipart/form-data message as the JSON body it stands for: the text
 * fields as strings, inputs and constraints as JSON text, and every file
 * part in files (text as content, other bytes as content_base64), under
 * the last segment of its file name. NULL with err. */
static json_t *form_message(aos_http_req_t *req, aos_err_t *err)
{
    aos_http_form_t form;
    if (aos_http_body_form(req, &form, err))
        return NULL;
    static const char *const text[] = {"message", "dsl", "conversation_id", "title", "project_id"};
    json_t *in = json_object(), *files = NULL;
    int rc = in ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
    for (size_t i = 0; !rc && i < form.n; i++) {
        const aos_http_form_part_t *p = &form.parts[i];
        if (p->filename) {
            const char *name = p->filename;
            for (const char *q = p->filename; *q; q++)
                if (*q == '/' || *q == '\\')
                    name = q + 1;
            json_t *f;
            if (aos_utf8_valid(p->data, p->len) && memchr(p->data, 0, p->len) == NULL) {
                f = json_pack("{s:s, s:s%}", "name", name, "content", p->data, p->len);
            } else {
                size_t cap = sodium_base64_ENCODED_LEN(p->len, sodium_base64_VARIANT_ORIGINAL);
                char *b64 = malloc(cap);
                f = b64 ? json_pack("{s:s, s:s}", "name", name, "content_base64",
                                    sodium_bin2base64(b64, cap, (const unsigned char *)p->data,
                                                      p->len, sodium_base64_VARIANT_ORIGINAL))
                        : NULL;
                free(b64);
            }
            if (!files && f)
                json_object_set_new(in, "files", files = json_array());
            if (!f || !files || json_array_append_new(files, f))
                rc = aos_err_set(err, AOS_EINVAL, "file '%.100s': its name is not UTF-8 text",
                                 p->filename);
            continue;
        }
        if (json_object_get(in, p->name)) {
            rc = aos_err_set(err, AOS_EINVAL, "the form field '%.64s' is given twice", p->name);
            break;
        }
        int known = 0;
        for (size_t k = 0; k < sizeof(text) / sizeof(text[0]); k++)
            known |= !strcmp(p->name, text[k]);
        json_t *v = NULL;
        if (known) {
            v = json_stringn(p->data, p->len);
            if (!v)
                rc = aos_err_set(err, AOS_EINVAL, "the form field '%s' is not UTF-8 text", p->name);
        } else if (!strcmp(p->name, "inputs") || !strcmp(p->name, "constraints")) {
            aos_err_t je = {0, ""};
            v = aos_http_parse_json(p->data, p->len, &je);
            if (!v)
                rc = aos_err_set(err, AOS_EINVAL, "the form field '%s': %s", p->name,
                                 aos_err_msg(&je));
        } else {
            rc = aos_err_set(err, AOS_EINVAL,
                             "unknown form field '%.64s' (message, dsl, conversation_id, title, "
                             "project_id, inputs, constraints, and files)",
                             p->name);
        }
        if (v && json_object_set_new(in, p->name, v))
            rc = aos_err_set(err, AOS_ENOMEM, NULL);
    }
    aos_http_form_release(&form);
    if (rc) {
        json_decref(in);
        return NULL;
    }
    return in;
}

int orch_route_chat_send(aos_http_req_t *req, void *data)
{
    aos_orch_t *o = data;
    aos_err_t err = {0, ""};
    json_t *in =
        aos_http_body_is_form(req) ? form_message(req, &err) : aos_http_body_json(req, &err);
    if (!in)
        return aos_http_respond_err(req, &err);
    const char *conv = NULL, *message = NULL, *dsl = NULL, *title = NULL, *project = NULL;
    json_t *inputs = NULL, *files = NULL, *constraints = NULL;
    json_error_t je;
    int rc = 0;
    struct send *s = NULL;
    if (json_unpack_ex(in, &je, JSON_STRICT, "{s?s, s?s, s?s, s?s, s?s, s?o, s?o, s?o}",
                       "conversation_id", &conv, "message", &message, "dsl", &dsl, "title", &title,
                       "project_id", &project, "inputs", &inputs, "files", &files, "constraints",
                       &constraints)) {
        rc = aos_http_respond_error(req, AOS_EINVAL,
                                    "body must be {\"message\", \"dsl\", \"conversation_id\", "
                                    "\"inputs\", \"files\", \"constraints\", \"title\", "
                                    "\"project_id\"}: %s",
                                    je.text);
        goto out;
    }
    if ((!message || !*message) && (!dsl || !*dsl)) {
        rc = aos_http_respond_error(req, AOS_EINVAL, "a message or dsl is required");
        goto out;
    }
    /* the message becomes a task of the sender's: checked as a submission */
    json_t *cspec = json_pack("{s:O?, s:s?}", "constraints", constraints, "project_id", project);
    int denied = !cspec ? aos_err_set(&err, AOS_ENOMEM, NULL)
                        : orch_project_of_submitter(req, cspec, &err) ||
                              orch_tools_of_submitter(req, cspec, &err);
    json_decref(cspec);
    if (denied) {
        rc = aos_http_respond_err(req, &err);
        goto out;
    }
    if ((message && strlen(message) > MESSAGE_MAX) || (dsl && strlen(dsl) > AOS_DSL_MAX_INPUT)) {
        rc = aos_http_respond_error(req, AOS_ETOOBIG, "the message or dsl is too long");
        goto out;
    }
    if (conv && !conversation_ok(conv)) {
        rc = aos_http_respond_error(req, AOS_EINVAL,
                                    "'conversation_id' must be 1..64 of [a-z0-9_-]");
        goto out;
    }
    s = calloc(1, sizeof(*s));
    if (!s || !(s->w = orch_waiter_new(req))) {
        rc = AOS_ENOMEM;
        goto out;
    }
    s->o = o;
    if (conv) {
        snprintf(s->conversation, sizeof(s->conversation), "%s", conv);
    } else {
        unsigned char rnd[16];
        randombytes_buf(rnd, sizeof(rnd));
        sodium_bin2hex(s->conversation, 33, rnd, sizeof(rnd));
    }
    s->message = strdup(message ? message : dsl);
    s->dsl = dsl ? strdup(dsl) : NULL;
    s->title = strdup(title ? title : s->message);
    if (strlen(s->title) > 80)
        s->title[80] = '\0';
    char actor[64];
    s->actor = strdup(orch_actor(req, actor, sizeof(actor)));
    /* the TaskSpec of this message */
    json_t *spec = json_pack("{s:s}", "goal", s->message);
    if (dsl)
        json_object_set_new(spec, "dsl", json_string(dsl));
    if (inputs)
        json_object_set(spec, "inputs", inputs);
    if (files)
        json_object_set(spec, "files", files);
    if (constraints)
        json_object_set(spec, "constraints", constraints);
    if (project)
        json_object_set_new(spec, "project_id", json_string(project));
    json_object_set_new(spec, "title", json_string(s->title));
    json_t *plan = NULL;
    int llm = 0;
    if (orch_spec_check(spec, &err) == 0)
        plan = orch_plan(o, spec, &llm, &err);
    if (!plan && !llm) {
        /* said and kept, but nothing to run: the assistant says why */
        size_t n = strlen(aos_err_msg(&err)) + 64;
        s->reply = malloc(n);
        snprintf(s->reply, n, "I could not make a plan of that: %s", aos_err_msg(&err));
        s->events = json_pack("{s:s, s:s}", "code", aos_err_code(err.code ? err.code : AOS_EINVAL),
                              "message", aos_err_msg(&err));
        orch_tx_t *tx = orch_tx_new(o, NULL);
        if (!tx) {
            json_decref(spec);
            rc = AOS_ENOMEM;
            goto out;
        }
        orch_tx_message(tx, s->conversation, s->title, s->actor, "user", s->message, s->dsl, NULL);
        orch_tx_message(tx, s->conversation, s->title, s->actor, "assistant", s->reply, NULL, NULL);
        tx->reply = unplanned_done;
        tx->reply_data = s;
        orch_tx_commit(tx);
        s = NULL;
        json_decref(spec);
        goto out;
    }
    s->reply = plan ? plan_reply(plan) : strdup("Planning it with the model...");
    s->plan = plan ? json_deep_copy(plan) : json_null();
    /* takes spec */
    if (orch_accept(o, spec, plan, s->actor, NULL, NULL, NULL, send_extra, send_accepted, s, &err))
        rc = aos_http_respond_err(req, &err);
    else
        s = NULL;
out:
    if (s)
        send_free(s);
    json_decref(in);
    return rc;
}

/* ---- reading conversations ------------------------------------------------------------ */

struct conv_job {
    orch_waiter_t *w;
    char id[65];
    char before[32];
    long long after, limit;
    int by_project; /* the caller reads only what its projects' tasks said */
    json_t *rows;
};

static int convs_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct conv_job *j = arg;
    if (j->id[0])
        return aos_store_messages_list(st, j->id, j->after, (int)j->limit, &j->rows, err);
    int rc = aos_store_conversations_list(st, j->before[0] ? j->before : NULL, (int)j->limit,
                                          &j->rows, err);
    size_t i;
    json_t *row;
    json_array_foreach(j->by_project && rc == 0 ? j->rows : NULL, i, row)
    {
        json_t *tasks = NULL;
        if ((rc = aos_store_conversation_tasks(
                 st, json_string_value(json_object_get(row, "id")) ?: "", &tasks, err)))
            break;
        json_object_set_new(row, "tasks", tasks);
    }
    return rc;
}

/* A caller let in by a project grant (the routes' "|project") sees the
 * messages of its projects' tasks (task or project grants) and the
 * conversations that hold one, each counting only those messages; a
 * message of no task, or of another project's, is left out. */
static void convs_filter(struct conv_job *j, aos_http_req_t *req)
{
    for (size_t i = json_array_size(j->rows); i-- > 0;) {
        json_t *row = json_array_get(j->rows, i);
        if (j->id[0]) {
            if (aos_auth_req_check_task(req, AOS_PERM_READ,
                                        json_string_value(json_object_get(row, "trace_id")),
                                        json_string_value(json_object_get(row, "project_id"))))
                json_array_remove(j->rows, i);
            continue;
        }
        json_int_t seen = 0;
        size_t k;
        const json_t *t;
        json_array_foreach(json_object_get(row, "tasks"), k, t)
        {
            if (!aos_auth_req_check_task(req, AOS_PERM_READ,
                                         json_string_value(json_object_get(t, "trace_id")),
                                         json_string_value(json_object_get(t, "project_id"))))
                seen += json_integer_value(json_object_get(t, "messages"));
        }
        json_object_del(row, "tasks");
        if (seen)
            json_object_set_new(row, "messages", json_integer(seen));
        else
            json_array_remove(j->rows, i);
    }
}

static void convs_done(int status, const aos_err_t *err, void *arg)
{
    struct conv_job *j = arg;
    aos_http_req_t *req = j->w->req;
    /* where the next page of messages starts, read before any is left out */
    size_t n = json_array_size(j->rows);
    json_t *next = j->id[0] && n == (size_t)j->limit
                       ? json_incref(json_object_get(json_array_get(j->rows, n - 1), "id"))
                       : json_null();
    if (req && !status && j->by_project)
        convs_filter(j, req);
    if (req && status) {
        aos_http_respond_err(req, err);
    } else if (req && j->id[0]) {
        if (json_array_size(j->rows) == 0 && j->after == 0)
            aos_http_respond_error(req, AOS_ENOTFOUND, "no conversation '%s'", j->id);
        else
            aos_http_respond_json(
                req, 200,
                json_pack("{s:s, s:O, s:O}", "id", j->id, "messages", j->rows, "next_after", next));
    } else if (req) {
        aos_http_respond_json(req, 200, json_pack("{s:O}", "conversations", j->rows));
    }
    json_decref(next);
    json_decref(j->rows);
    orch_waiter_free(j->w);
    free(j);
}

static int conv_read(aos_http_req_t *req, aos_orch_t *o, const char *id)
{
    aos_err_t err = {0, ""};
    long long limit = 0, after = 0;
    if (orch_query_int(req, "limit", 1, AOS_STORE_LIST_MAX, 100, &limit, &err) ||
        orch_query_int(req, "after", 0, INT64_MAX, 0, &after, &err))
        return aos_http_respond_err(req, &err);
    const char *before = aos_http_query(req, "before");
    if (before && strlen(before) >= 32)
        return aos_http_respond_error(req, AOS_EINVAL, "'before' is a time");
    struct conv_job *j = calloc(1, sizeof(*j));
    if (!j || !(j->w = orch_waiter_new(req))) {
        free(j);
        return AOS_ENOMEM;
    }
    if (id)
        snprintf(j->id, sizeof(j->id), "%s", id);
    if (before)
        snprintf(j->before, sizeof(j->before), "%s", before);
    j->limit = limit;
    j->after = after;
    j->by_project = aos_auth_req_check(req, AOS_PERM_READ, "system") != 0;
    if (aos_store_submit(o->cfg.store, convs_job, convs_done, j)) {
        orch_waiter_free(j->w);
        free(j);
        return aos_http_respond_error(req, AOS_EUNAVAIL, "the store is closing");
    }
    return 0;
}

int orch_route_conversations(aos_http_req_t *req, void *data)
{
    return conv_read(req, data, NULL);
}

int orch_route_conversation(aos_http_req_t *req, void *data)
{
    const char *id = aos_http_param(req, "id");
    if (!conversation_ok(id))
        return aos_http_respond_error(req, AOS_EINVAL, "a conversation id is 1..64 of [a-z0-9_-]");
    return conv_read(req, data, id);
}
