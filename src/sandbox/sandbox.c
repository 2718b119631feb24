/* sandbox.c - the sandbox service: start-up (probe, schedules), shutdown,
 * and the REST routes of scripts and runs (sandbox.h). Each route that
 * reads or writes the store does so in one store job (a state change with
 * its audit row); the answer is sent on the loop when the job is done,
 * unless the client left first. At start the helper aos-exec is copied
 * into the sandbox's own 0711 directory (copy_helper: bubblewrap opens it
 * by path as the sandbox's uid). */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "auth/auth.h"
#include "log/log.h"
#include "settings/settings.h"

/* ---- the service -------------------------------------------------------------- */

static void sb_collect(aos_metrics_t *m, void *data)
{
    (void)m;
    aos_sandbox_t *sb = data;
    aos_metric_set(sb->m_running, (double)sb->running);
    aos_metric_set(sb->m_max, (double)sb->max_running);
    aos_metric_set(sb->m_available, sb->available ? 1 : 0);
}

/* The helper's copy in the sandbox's own directory (aos_proc_helper_copy:
 * bubblewrap opens it by path as the sandbox's uid), or the original when
 * it cannot be copied (a warning says why). malloc'd. */
static char *copy_helper(const char *src, const char *dir)
{
    aos_err_t err = {0, ""};
    char *copy = dir ? aos_proc_helper_copy(src, dir, &err) : NULL;
    if (copy)
        return copy;
    aos_log_warn("sandbox", "%s; binding the helper from %s", aos_err_msg(&err), src);
    return strdup(src);
}

int aos_sandbox_new(aos_sandbox_t **out, const aos_sandbox_cfg_t *cfg, aos_err_t *err)
{
    aos_sandbox_t *sb = calloc(1, sizeof(*sb));
    if (!sb)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    sb->loop = cfg->loop;
    sb->store = cfg->store;
    sb->secrets = cfg->secrets;
    sb->max_running = cfg->max_running ? cfg->max_running : 8;
    sb->on_unseal = cfg->on_unseal;
    sb->unseal_data = cfg->unseal_data;
    sb->env_open = cfg->env_open;
    sb->env_data = cfg->env_data;
    const char *helper = cfg->helper ? cfg->helper : aos_proc_helper_path();
    /* workspaces live outside the data directory (mode 0700: the sandbox's
     * uid could not reach them), in a directory of this aosd's own that
     * others may cross (0711) but not list */
    const char *tmp = cfg->work_root ? cfg->work_root : getenv("TMPDIR");
    size_t n = strlen(tmp && *tmp ? tmp : "/tmp") + 32;
    sb->root = malloc(n);
    if (sb->root) {
        snprintf(sb->root, n, "%s/aos-sandbox-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        char runs[PATH_MAX];
        if (!mkdtemp(sb->root) || chmod(sb->root, 0711) != 0 ||
            (size_t)snprintf(runs, sizeof(runs), "%s/runs", sb->root) >= sizeof(runs) ||
            mkdir(runs, 0711) != 0) {
            int e = errno;
            aos_sandbox_free(sb);
            return aos_err_set(err, AOS_EIO, "unable to create the sandbox's directory: %s",
                               strerror(e));
        }
        sb->root_made = 1;
    }
    sb->helper = helper ? copy_helper(helper, sb->root) : NULL;
    sb->bwrap = cfg->bwrap ? strdup(cfg->bwrap) : NULL;
    if (!sb->root || (helper && !sb->helper) || (cfg->bwrap && !sb->bwrap)) {
        aos_sandbox_free(sb);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    sb_shell_init(sb);
    aos_err_t perr = {0, ""};
    if (aos_proc_sandbox_probe(sb->bwrap, sb->helper, &perr) == 0) {
        sb->available = 1;
        aos_log_info("sandbox",
                     "sandbox ready: bubblewrap with user namespaces, seccomp, rlimits%s",
                     geteuid() == 0 ? " (runs as uid 65534)" : "");
    } else {
        snprintf(sb->why, sizeof(sb->why), "%s", aos_err_msg(&perr));
        aos_log_warn("sandbox", "%s: sandbox scripts and the shell tool are refused", sb->why);
    }
    /* runs that were running when aosd last stopped are over */
    int rc = aos_store_sandbox_runs_abandon(sb->store, err);
    json_t *scripts = NULL;
    if (!rc)
        rc = aos_store_sandbox_script_list(sb->store, &scripts, err);
    if (rc) {
        aos_sandbox_free(sb);
        return rc;
    }
    size_t i;
    json_t *s;
    json_array_foreach(scripts, i, s)
    {
        json_int_t every = json_integer_value(json_object_get(s, "schedule_ms"));
        const char *cron = json_string_value(json_object_get(s, "schedule_cron"));
        if (every > 0 || cron)
            sb_sched_set(sb, json_string_value(json_object_get(s, "id")), every, cron);
    }
    json_decref(scripts);
    /* last: the collect function holds sb */
    if (cfg->metrics) {
        static const double bounds[] = {0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900};
        aos_metrics_t *m = cfg->metrics;
        sb->m_runs = aos_metrics_counter(m, "aos_sandbox_runs_total",
                                         "Sandbox runs ended, by status", "status");
        sb->m_duration = aos_metrics_histogram(m, "aos_sandbox_run_duration_seconds",
                                               "Wall-clock time of sandbox runs", NULL, bounds,
                                               sizeof(bounds) / sizeof(bounds[0]));
        sb->m_running =
            aos_metrics_gauge(m, "aos_sandbox_runs_running", "Sandbox runs running", NULL);
        sb->m_max =
            aos_metrics_gauge(m, "aos_sandbox_max_running", "Sandbox runs allowed at once", NULL);
        sb->m_available = aos_metrics_gauge(m, "aos_sandbox_available",
                                            "1 if runs can be sandboxed (the probe passed)", NULL);
        aos_metrics_on_collect(m, sb_collect, sb);
    }
    *out = sb;
    return 0;
}

void aos_sandbox_shutdown(aos_sandbox_t *sb, void (*done)(void *data), void *data)
{
    sb->closing = 1;
    sb->down = done;
    sb->down_data = data;
    while (sb->scheds) /* each close drops its count in pending */
        sb_sched_set(sb, sb->scheds->script_id, 0, NULL);
    for (sb_run_t *r = sb->runs; r; r = r->next)
        if (r->proc)
            aos_proc_kill(r->proc, "shutdown");
    if (sb->pending == 0 && sb->down) {
        sb->down = NULL;
        done(data);
    }
}

void aos_sandbox_free(aos_sandbox_t *sb)
{
    if (!sb)
        return;
    if (sb->root_made) {
        char runs[PATH_MAX];
        snprintf(runs, sizeof(runs), "%s/runs", sb->root);
        (void)rmdir(runs);
        snprintf(runs, sizeof(runs), "%s/aos-exec", sb->root);
        (void)unlink(runs);
        (void)rmdir(sb->root);
    }
    free(sb->root);
    free(sb->helper);
    free(sb->bwrap);
    free(sb);
}

/* ---- requests ------------------------------------------------------------------------ */

const char *sb_actor(aos_http_req_t *req, char *buf, size_t n)
{
    return aos_auth_actor(aos_auth_principal(req), buf, n);
}

typedef enum {
    OP_LIST,
    OP_CREATE,
    OP_GET,
    OP_PATCH,
    OP_DELETE,
    OP_RUNS,
    OP_RUN_GET,
    OP_CANCEL_CHECK,
    OP_CANCEL_AUDIT
} op_t;

typedef struct {
    aos_sandbox_t *sb;
    aos_http_req_t *req; /* NULL once the client left */
    op_t op;
    char id[SB_ID_LEN + 1];
    char actor[96];
    json_t *body;   /* the client's (create, patch) */
    json_t *result; /* what the job read */
    int64_t schedule_ms;
    char schedule_cron[AOS_CRON_MAX + 1]; /* "" : none */
    int limit;
    char script_id[SB_ID_LEN + 1]; /* cancel: the run's script, "" for the shell */
} sb_job_t;

static void job_req_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((sb_job_t *)data)->req = NULL;
}

static json_t *audit_diff(const json_t *stored)
{
    json_t *paths = json_array();
    const char *k;
    const json_t *v;
    json_object_foreach(json_object_get(stored, "files"), k, v)
        json_array_append_new(paths, json_string(k));
    json_t *pub = sb_script_public(stored);
    json_object_del(pub, "files");
    json_object_set_new(pub, "file_paths", paths);
    return pub;
}

static int job_run(aos_store_t *st, void *arg, aos_err_t *err)
{
    sb_job_t *j = arg;
    int rc = 0;
    char res[64];
    snprintf(res, sizeof(res), "sandbox:%s", j->id);
    switch (j->op) {
    case OP_LIST:
        return aos_store_sandbox_script_list(st, &j->result, err);
    case OP_GET:
        return aos_store_sandbox_script_get(st, j->id, &j->result, err);
    case OP_RUN_GET:
        return aos_store_sandbox_run_get(st, j->id, &j->result, err);
    case OP_RUNS:
        if ((rc = aos_store_sandbox_script_get(st, j->id, &j->result, err)))
            return rc;
        json_decref(j->result);
        j->result = NULL;
        return aos_store_sandbox_runs_list(st, j->id, j->limit, &j->result, err);
    case OP_CANCEL_CHECK:
        return aos_store_sandbox_run_get(st, j->id, &j->result, err);
    case OP_CANCEL_AUDIT: {
        snprintf(res, sizeof(res), "sandbox:%s", j->script_id[0] ? j->script_id : "shell");
        json_t *diff = json_pack("{s:s}", "run_id", j->id);
        rc = aos_store_audit_append(st, j->actor, "sandbox.run.cancel", res, diff, err);
        json_decref(diff);
        return rc;
    }
    case OP_DELETE:
        if ((rc = aos_store_sandbox_script_delete(st, j->id, err)))
            return rc;
        return aos_store_audit_append(st, j->actor, "sandbox.script.delete", res, NULL, err);
    case OP_CREATE:
    case OP_PATCH: {
        json_t *prev = NULL;
        if (j->op == OP_PATCH && (rc = aos_store_sandbox_script_get(st, j->id, &prev, err)))
            return rc;
        aos_store_sandbox_script_t row = {.id = j->id, .created_by = j->actor};
        char *env = NULL, *files = NULL, *caps = NULL;
        rc = sb_script_normalize(j->sb, j->body, prev, &row, &env, &files, &caps, err);
        if (!rc)
            rc = aos_store_sandbox_script_put(st, &row, j->op == OP_CREATE, err);
        j->schedule_ms = row.schedule_ms;
        snprintf(j->schedule_cron, sizeof(j->schedule_cron), "%s",
                 row.schedule_cron ? row.schedule_cron : "");
        free(env);
        free(files);
        free(caps);
        if (!rc)
            rc = aos_store_sandbox_script_get(st, j->id, &j->result, err);
        if (!rc) {
            json_t *diff = audit_diff(j->result);
            if (prev) {
                json_t *before = audit_diff(prev);
                diff = json_pack("{s:o, s:o}", "before", before, "after", diff);
            }
            rc = aos_store_audit_append(st, j->actor,
                                        j->op == OP_CREATE ? "sandbox.script.create"
                                                           : "sandbox.script.update",
                                        res, diff, err);
            json_decref(diff);
        }
        json_decref(prev);
        return rc;
    }
    }
    return rc;
}

static void job_done(int status, const aos_err_t *err, void *arg)
{
    sb_job_t *j = arg;
    aos_sandbox_t *sb = j->sb;
    if (status == 0 && (j->op == OP_CREATE || j->op == OP_PATCH))
        sb_sched_set(sb, j->id, j->schedule_ms, j->schedule_cron[0] ? j->schedule_cron : NULL);
    if (status == 0 && j->op == OP_DELETE)
        sb_sched_set(sb, j->id, 0, NULL);
    if (j->req) {
        aos_http_on_close(j->req, NULL, NULL);
        if (status) {
            aos_http_respond_err(j->req, err);
        } else if (j->op == OP_LIST) {
            json_t *arr = json_array();
            size_t i;
            json_t *s;
            json_array_foreach(j->result, i, s) json_array_append_new(arr, sb_script_public(s));
            aos_http_respond_json(j->req, 200, json_pack("{s:o}", "scripts", arr));
        } else if (j->op == OP_CREATE || j->op == OP_PATCH || j->op == OP_GET) {
            aos_http_respond_json(j->req, j->op == OP_CREATE ? 201 : 200,
                                  sb_script_public(j->result));
        } else if (j->op == OP_DELETE) {
            aos_http_respond_json(j->req, 200, json_pack("{s:s}", "deleted", j->id));
        } else if (j->op == OP_RUNS) {
            aos_http_respond_json(j->req, 200, json_pack("{s:O}", "runs", j->result));
        } else if (j->op == OP_RUN_GET) {
            aos_http_respond_json(j->req, 200, json_incref(j->result));
        } else if (j->op == OP_CANCEL_CHECK) {
            aos_http_respond_error(j->req, AOS_ECONFLICT, "run %s is not running (%s)", j->id,
                                   json_string_value(json_object_get(j->result, "status")));
        } else if (j->op == OP_CANCEL_AUDIT) {
            aos_http_respond_json(j->req, 202,
                                  json_pack("{s:s, s:s}", "id", j->id, "status", "canceling"));
        }
    }
    json_decref(j->body);
    json_decref(j->result);
    free(j);
}

static int job_submit2(aos_sandbox_t *sb, aos_http_req_t *req, op_t op, const char *id,
                       json_t *body, const char *script_id)
{
    sb_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        json_decref(body);
        return AOS_ENOMEM;
    }
    j->sb = sb;
    j->req = req;
    j->op = op;
    j->body = body;
    j->limit = 50;
    if (id)
        snprintf(j->id, sizeof(j->id), "%s", id);
    if (script_id)
        snprintf(j->script_id, sizeof(j->script_id), "%s", script_id);
    sb_actor(req, j->actor, sizeof(j->actor));
    const char *lim = aos_http_query(req, "limit");
    if (lim) {
        char *end;
        long v = strtol(lim, &end, 10);
        if (*end || v < 1 || v > AOS_STORE_LIST_MAX) {
            json_decref(body);
            free(j);
            return aos_http_respond_error(req, AOS_EINVAL, "limit must be 1..%d",
                                          AOS_STORE_LIST_MAX);
        }
        j->limit = (int)v;
    }
    int rc = aos_store_submit(sb->store, job_run, job_done, j);
    if (rc) {
        json_decref(body);
        free(j);
        return aos_http_respond_error(req, rc, "the store takes no more work");
    }
    aos_http_on_close(req, job_req_closed, j);
    return 0;
}

/* A script's env may name runtime secrets ({"NAME": {"secret": name}}):
 * the writer needs operate on each (403 naming it). */
static int env_of_writer(aos_http_req_t *req, const json_t *body, aos_err_t *err)
{
    return aos_settings_env_authorize(req, json_object_get(body, "env"), err);
}

static int job_submit(aos_sandbox_t *sb, aos_http_req_t *req, op_t op, const char *id, json_t *body)
{
    return job_submit2(sb, req, op, id, body, NULL);
}

/* An id in a route: 32 lowercase hex digits, else 404 at once. */
static int id_ok(const char *id)
{
    if (!id || strlen(id) != SB_ID_LEN)
        return 0;
    for (const char *p = id; *p; p++)
        if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
            return 0;
    return 1;
}

static int h_list(aos_http_req_t *req, void *data)
{
    return job_submit(data, req, OP_LIST, NULL, NULL);
}

static int h_create(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    if (env_of_writer(req, body, &err)) {
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    char id[SB_ID_LEN + 1];
    sb_new_id(id);
    return job_submit(data, req, OP_CREATE, id, body);
}

static int with_id(aos_http_req_t *req, void *data, op_t op, json_t *body)
{
    const char *id = aos_http_param(req, "id");
    if (!id_ok(id)) {
        json_decref(body);
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no such %s",
                                      op == OP_RUN_GET || op == OP_CANCEL_CHECK ? "run" : "script");
    }
    return job_submit(data, req, op, id, body);
}

static int h_get(aos_http_req_t *req, void *data)
{
    return with_id(req, data, OP_GET, NULL);
}

static int h_patch(aos_http_req_t *req, void *data)
{
    aos_err_t err = {0, ""};
    json_t *body = aos_http_body_json(req, &err);
    if (!body)
        return aos_http_respond_err(req, &err);
    if (env_of_writer(req, body, &err)) {
        json_decref(body);
        return aos_http_respond_err(req, &err);
    }
    return with_id(req, data, OP_PATCH, body);
}

static int h_delete(aos_http_req_t *req, void *data)
{
    return with_id(req, data, OP_DELETE, NULL);
}

static int h_runs(aos_http_req_t *req, void *data)
{
    return with_id(req, data, OP_RUNS, NULL);
}

static int h_run_get(aos_http_req_t *req, void *data)
{
    return with_id(req, data, OP_RUN_GET, NULL);
}

/* POST /sandbox/scripts/:id/run ------------------------------------------------ */

typedef struct {
    aos_http_req_t *req;
} run_waiter_t;

static void waiter_closed(aos_http_req_t *req, int aborted, void *data)
{
    ((run_waiter_t *)data)->req = NULL;
}

static void run_submitted(sb_run_t *r, int status, const aos_err_t *err, void *data)
{
    run_waiter_t *w = data;
    if (w->req) {
        aos_http_on_close(w->req, NULL, NULL);
        if (status)
            aos_http_respond_err(w->req, err);
        else
            aos_http_respond_json(w->req, 202,
                                  json_pack("{s:s, s:s, s:s, s:s}", "id", r->id, "trace_id",
                                            r->trace_id, "script_id", r->script_id, "status",
                                            r->error[0] ? "error" : "running"));
    }
    free(w);
}

static int h_run(aos_http_req_t *req, void *data)
{
    aos_sandbox_t *sb = data;
    const char *id = aos_http_param(req, "id");
    if (!id_ok(id))
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no such script");
    aos_err_t err = {0, ""};
    if (sb_refuse(sb, &err))
        return aos_http_respond_err(req, &err);
    char actor[96];
    sb_run_t *r = sb_run_new(sb, sb_actor(req, actor, sizeof(actor)));
    run_waiter_t *w = calloc(1, sizeof(*w));
    if (!r || !w) {
        sb_run_free(r);
        free(w);
        return AOS_ENOMEM;
    }
    snprintf(r->script_id, sizeof(r->script_id), "%s", id);
    w->req = req;
    if (sb_run_submit(r, run_submitted, w, &err)) {
        sb_run_free(r);
        free(w);
        return aos_http_respond_err(req, &err);
    }
    aos_http_on_close(req, waiter_closed, w);
    return 0;
}

static int h_cancel(aos_http_req_t *req, void *data)
{
    aos_sandbox_t *sb = data;
    const char *id = aos_http_param(req, "id");
    if (!id_ok(id))
        return aos_http_respond_error(req, AOS_ENOTFOUND, "no such run");
    sb_run_t *r = sb_run_find(sb, id);
    if (!r || r->finished)
        return job_submit(sb, req, OP_CANCEL_CHECK, id, NULL); /* 404 or 409 */
    sb_run_cancel(r);
    return job_submit2(sb, req, OP_CANCEL_AUDIT, id, NULL, r->script_id);
}

static int h_status(aos_http_req_t *req, void *data)
{
    aos_sandbox_t *sb = data;
    json_t *o = json_pack("{s:b, s:i, s:i, s:b}", "available", sb->available, "running",
                          (int)sb->running, "max_running", (int)sb->max_running, "seccomp", 1);
    if (!sb->available)
        json_object_set_new(o, "reason", json_string(sb->why));
    return aos_http_respond_json(req, 200, o);
}

static const aos_http_route_t routes[] = {
    {"GET", "/sandbox/status", AOS_PERM_READ, h_status, 0, NULL},
    {"GET", "/sandbox/scripts", AOS_PERM_READ, h_list, 0, NULL},
    {"POST", "/sandbox/scripts", AOS_PERM_ADMIN, h_create, 2u * 1024 * 1024, NULL},
    {"GET", "/sandbox/scripts/:id", AOS_PERM_READ, h_get, 0, NULL},
    {"PATCH", "/sandbox/scripts/:id", AOS_PERM_ADMIN, h_patch, 2u * 1024 * 1024, NULL},
    {"DELETE", "/sandbox/scripts/:id", AOS_PERM_ADMIN, h_delete, 0, NULL},
    {"POST", "/sandbox/scripts/:id/run", AOS_PERM_OPERATE, h_run, 0, NULL},
    {"GET", "/sandbox/scripts/:id/runs", AOS_PERM_READ, h_runs, 0, NULL},
    {"GET", "/sandbox/runs/:id", AOS_PERM_READ, h_run_get, 0, NULL},
    {"POST", "/sandbox/runs/:id/cancel", AOS_PERM_OPERATE, h_cancel, 0, NULL},
};

int aos_sandbox_add_routes(aos_sandbox_t *sb, aos_http_t *http)
{
    return aos_http_add_routes(http, routes, sizeof(routes) / sizeof(routes[0]), sb);
}

int aos_sandbox_share_workspaces(const char *data_dir, aos_err_t *err)
{
    if (geteuid() != 0)
        return 0;
    char ws[PATH_MAX];
    if ((size_t)snprintf(ws, sizeof(ws), "%s/workspaces", data_dir) >= sizeof(ws))
        return aos_err_set(err, AOS_EINVAL, "the data directory's path is too long");
    if (mkdir(ws, 0711) != 0 && errno != EEXIST)
        return aos_err_set(err, AOS_EIO, "unable to create '%s': %s", ws, strerror(errno));
    if (chmod(data_dir, 0711) != 0 || chmod(ws, 0711) != 0)
        return aos_err_set(err, AOS_EIO, "unable to let the sandbox cross '%s': %s", ws,
                           strerror(errno));
    return 0;
}
