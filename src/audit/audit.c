/* audit.c - GET /audit/logs and GET /audit/verify (audit.h).
 *
 * Both check their query on the loop and read on the store's worker. A
 * verification is a chain of store jobs, each checking at most
 * AOS_AUDIT_VERIFY_CHUNK rows (aos_store_audit_verify_step): between two
 * of them the worker runs whatever else was queued, so a long check holds
 * neither the loop nor the worker for long. A client that goes away stops
 * the chain at the next step. */
#include "audit/audit.h"
#include "isotime/isotime.h"
#include "log/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct aos_audit_s {
    aos_store_t *store;
    int verifying; /* verifications in flight */
    /* retention */
    uv_timer_t *sweep; /* NULL: none */
    unsigned days;
    int pruning; /* a prune job is queued */
};

aos_audit_t *aos_audit_new(aos_store_t *store)
{
    aos_audit_t *a = calloc(1, sizeof(*a));
    if (a)
        a->store = store;
    return a;
}

/* ---- retention ---------------------------------------------------------- */

struct prune_job {
    aos_audit_t *a;
    char before[32];
    int64_t deleted, anchor;
};

static int prune_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct prune_job *j = arg;
    return aos_store_audit_prune(st, j->before, AOS_AUDIT_PRUNE_ROWS, &j->deleted, &j->anchor, err);
}

static void on_sweep(uv_timer_t *t);

static void prune_done(int status, const aos_err_t *err, void *arg)
{
    struct prune_job *j = arg;
    aos_audit_t *a = j->a;
    a->pruning = 0;
    if (status)
        aos_log_warn("audit", "retention: %s", aos_err_msg(err));
    else if (j->deleted)
        aos_log_info("audit", "retention: %lld row(s) older than %s deleted, anchor row %lld",
                     (long long)j->deleted, j->before, (long long)j->anchor);
    /* a full step: more may be due, go on soon (other jobs run between) */
    if (!status && j->deleted == AOS_AUDIT_PRUNE_ROWS && a->sweep)
        uv_timer_start(a->sweep, on_sweep, 100, 3600 * 1000);
    free(j);
}

static void on_sweep(uv_timer_t *t)
{
    aos_audit_t *a = t->data;
    if (a->pruning)
        return;
    struct prune_job *j = calloc(1, sizeof(*j));
    if (!j)
        return;
    j->a = a;
    aos_isotime_fmt(aos_isotime_now_ms() - (int64_t)a->days * 86400000, j->before);
    a->pruning = 1;
    if (aos_store_submit(a->store, prune_run, prune_done, j)) {
        a->pruning = 0;
        free(j);
    }
}

int aos_audit_retain(aos_audit_t *a, uv_loop_t *loop, unsigned days)
{
    if (!a || !days)
        return 0;
    if (a->sweep || !(a->sweep = malloc(sizeof(*a->sweep))))
        return a->sweep ? AOS_EINVAL : AOS_ENOMEM;
    uv_timer_init(loop, a->sweep);
    uv_unref((uv_handle_t *)a->sweep);
    a->sweep->data = a;
    a->days = days;
    uv_timer_start(a->sweep, on_sweep, 60 * 1000, 3600 * 1000);
    return 0;
}

void aos_audit_stop(aos_audit_t *a)
{
    if (a && a->sweep) {
        uv_close((uv_handle_t *)a->sweep, (uv_close_cb)free);
        a->sweep = NULL;
    }
}

void aos_audit_free(aos_audit_t *a)
{
    free(a);
}

/* "2025-01-31", "2025-01-31T12:00:00Z", "2025-01-31T12:00:00.123+08:00"
 * -> the store's form in out; -1 if s is none of those. */
static int time_arg(const char *s, char out[32])
{
    int64_t ms;
    if (aos_isotime_parse(s, AOS_ISOTIME_DATE_OK, &ms) != 0)
        return -1;
    aos_isotime_fmt(ms, out);
    return 0;
}

/* GET /audit/logs ------------------------------------------------------------ */

struct list_job {
    aos_http_req_t *req;
    aos_store_audit_filter_t f;
    char actor[257], action[257], resource[257], from[32], to[32];
    json_t *rows;
};

static void list_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct list_job *)data)->req = NULL;
}

static int list_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct list_job *j = arg;
    return aos_store_audit_query(st, &j->f, &j->rows, err);
}

static void list_done(int status, const aos_err_t *err, void *arg)
{
    struct list_job *j = arg;
    if (j->req) {
        aos_http_on_close(j->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(j->req, err);
        } else {
            size_t n = json_array_size(j->rows);
            json_t *next = json_null();
            if (n == (size_t)j->f.limit)
                next = json_sprintf("%lld", (long long)json_integer_value(json_object_get(
                                                json_array_get(j->rows, n - 1), "id")));
            aos_http_respond_json(j->req, 200,
                                  json_pack("{s:O, s:o}", "items", j->rows, "next_cursor", next));
        }
    }
    json_decref(j->rows);
    free(j);
}

/* A text filter: 1..256 bytes without control characters. */
static int text_arg(aos_http_req_t *req, const char *name, char *out, size_t cap)
{
    const char *v = aos_http_query(req, name);
    if (!v)
        return 0;
    size_t n = strlen(v);
    if (n == 0 || n >= cap)
        return -1;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return -1;
    memcpy(out, v, n + 1);
    return 1;
}

/* A positive id in *out (0 when absent); -1 if malformed. */
static int id_arg(const char *v, long long *out)
{
    *out = 0;
    if (!v)
        return 0;
    char *end = NULL;
    if (!*v || *v < '0' || *v > '9')
        return -1;
    long long x = strtoll(v, &end, 10);
    if (*end || x <= 0 || x == INT64_MAX)
        return -1;
    *out = x;
    return 1;
}

static int audit_logs(aos_http_req_t *req, void *data)
{
    aos_audit_t *a = data;
    struct list_job *j = calloc(1, sizeof(*j));
    if (!j)
        return AOS_ENOMEM;
    const char *bad = NULL, *why = "";
    const char *l = aos_http_query(req, "limit");
    const char *cur = aos_http_query(req, "cursor");
    const char *before = aos_http_query(req, "before");
    long long id = 0;
    char *end = NULL;
    long limit = l ? strtol(l, &end, 10) : 50;
    if (l && (*l == '\0' || *end || limit < 1 || limit > 500)) {
        bad = "limit";
        why = "must be from 1 to 500";
    } else if (id_arg(cur, &id) < 0) {
        bad = "cursor";
        why = "must be the next_cursor of a page";
    } else if (!cur && id_arg(before, &id) < 0) {
        bad = "before";
        why = "must be a positive id";
    } else if (text_arg(req, "actor", j->actor, sizeof(j->actor)) < 0) {
        bad = "actor";
    } else if ((text_arg(req, "action", j->action, sizeof(j->action))) < 0) {
        bad = "action";
    } else if (text_arg(req, "resource", j->resource, sizeof(j->resource)) < 0) {
        bad = "resource";
    } else if (aos_http_query(req, "from") && time_arg(aos_http_query(req, "from"), j->from) < 0) {
        bad = "from";
        why = "must be an ISO-8601 date, or date and time with a zone (2025-01-31T12:00:00Z)";
    } else if (aos_http_query(req, "to") && time_arg(aos_http_query(req, "to"), j->to) < 0) {
        bad = "to";
        why = "must be an ISO-8601 date, or date and time with a zone (2025-01-31T12:00:00Z)";
    } else if (j->from[0] && j->to[0] && strcmp(j->from, j->to) >= 0) {
        bad = "to";
        why = "must be after 'from'";
    }
    if (bad) {
        free(j);
        if (!*why)
            why = "must be 1 to 256 characters without control characters";
        return aos_http_respond_error(req, AOS_EINVAL, "'%s' %s", bad, why);
    }
    j->req = req;
    j->f.before_id = id;
    j->f.limit = (int)limit;
    j->f.actor = j->actor[0] ? j->actor : NULL;
    size_t an = strlen(j->action);
    if (an && j->action[an - 1] == '*') {
        j->action[an - 1] = '\0';
        j->f.action_prefix = j->action[0] ? j->action : NULL;
    } else if (an) {
        j->f.action = j->action;
    }
    j->f.resource_prefix = j->resource[0] ? j->resource : NULL;
    j->f.from = j->from[0] ? j->from : NULL;
    j->f.to = j->to[0] ? j->to : NULL;
    aos_http_on_close(req, list_closed, j);
    int rc = aos_store_submit(a->store, list_run, list_done, j);
    if (rc) {
        aos_http_on_close(req, NULL, NULL);
        free(j);
    }
    return rc;
}

/* GET /audit/verify ------------------------------------------------------------ */

struct verify_job {
    aos_audit_t *a;
    aos_http_req_t *req;
    aos_store_audit_verify_t v;
    uint64_t started_ms;
};

static void verify_closed(aos_http_req_t *req, int aborted, void *data)
{
    (void)req;
    (void)aborted;
    ((struct verify_job *)data)->req = NULL;
}

static int verify_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct verify_job *j = arg;
    return aos_store_audit_verify_step(st, &j->v, AOS_AUDIT_VERIFY_CHUNK, err);
}

static void verify_end(struct verify_job *j)
{
    if (j->req)
        aos_http_on_close(j->req, NULL, NULL);
    j->a->verifying--;
    free(j);
}

static void verify_done(int status, const aos_err_t *err, void *arg)
{
    struct verify_job *j = arg;
    if (!j->req) { /* the client left: stop here */
        verify_end(j);
        return;
    }
    if (status) {
        aos_http_respond_err(j->req, err);
        verify_end(j);
        return;
    }
    if (!j->v.done) {
        int rc = aos_store_submit(j->a->store, verify_run, verify_done, j);
        if (rc) {
            aos_http_respond_error(j->req, rc, "unable to verify the audit log: the store is %s",
                                   rc == AOS_EUNAVAIL ? "closing" : "out of memory");
            verify_end(j);
        }
        return;
    }
    const aos_store_audit_verify_t *v = &j->v;
    uint64_t ms = uv_hrtime() / 1000000 - j->started_ms;
    json_t *body = json_pack("{s:b, s:I, s:{s:I, s:s?}, s:I}", "ok", v->broken_id == 0, "checked",
                             (json_int_t)v->checked, "head", "id", (json_int_t)v->head_id, "hash",
                             v->head_hash[0] ? v->head_hash : NULL, "took_ms", (json_int_t)ms);
    if (v->broken_id) {
        json_object_set_new(
            body, "broken",
            json_pack("{s:I, s:s}", "id", (json_int_t)v->broken_id, "reason", v->reason));
        aos_log_warn("audit", "the audit chain is broken: %s", v->reason);
    }
    aos_http_respond_json(j->req, 200, body);
    verify_end(j);
}

static int audit_verify(aos_http_req_t *req, void *data)
{
    aos_audit_t *a = data;
    long long from = 0, to = 0;
    if (id_arg(aos_http_query(req, "from"), &from) < 0)
        return aos_http_respond_error(req, AOS_EINVAL, "'from' must be a positive id");
    if (id_arg(aos_http_query(req, "to"), &to) < 0)
        return aos_http_respond_error(req, AOS_EINVAL, "'to' must be a positive id");
    if (from && to && to < from)
        return aos_http_respond_error(req, AOS_EINVAL, "'to' must not be below 'from'");
    if (a->verifying >= AOS_AUDIT_VERIFY_MAX)
        return aos_http_respond_error(req, AOS_EUNAVAIL,
                                      "%d verifications of the audit log run already; try later",
                                      a->verifying);
    struct verify_job *j = calloc(1, sizeof(*j));
    if (!j)
        return AOS_ENOMEM;
    j->a = a;
    j->req = req;
    j->started_ms = uv_hrtime() / 1000000;
    aos_store_audit_verify_init(&j->v, from, to);
    aos_http_on_close(req, verify_closed, j);
    int rc = aos_store_submit(a->store, verify_run, verify_done, j);
    if (rc) {
        aos_http_on_close(req, NULL, NULL);
        free(j);
        return rc;
    }
    a->verifying++;
    return 0;
}

static const aos_http_route_t routes[] = {
    {"GET", "/audit/logs", AOS_PERM_ADMIN, audit_logs, 0, NULL},
    {"GET", "/audit/verify", AOS_PERM_ADMIN, audit_verify, 0, NULL},
};

int aos_audit_add_routes(aos_audit_t *a, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), a);
}
