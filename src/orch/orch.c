/* orch.c - the orchestrator: TaskSpecs in, plans made, tasks queued by
 * priority and started while slots are free (globally and per project),
 * unfinished tasks found again at start-up, finished runs expired.
 * The loop of one task is task.c; its writes are commit.c. */
#include "orch/internal.h"
#include "buf/buf.h"
#include "isotime/isotime.h"
#include "log/log.h"
#include "settings/settings.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SPEC_GOAL_MAX  16384
#define SPEC_FILES_MAX (8u << 20)

/* Time-ordered: the first 6 bytes are the milliseconds since the epoch
 * (big-endian), the other 10 random (80 bits: W3C's "random" right-most 7
 * bytes and more). The rows of a task are keyed by its trace id in every
 * index (jobs, traces, task_state, task_plans, task_steps, events), so the
 * tasks accepted close together write their entries to the same few
 * right-most pages of each index instead of a page each at random places:
 * a group commit of 64 tasks rewrites a few pages per index, not 64. */
void orch_trace_id(char out[33])
{
    unsigned char id[16];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t ms = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
    for (int i = 0; i < 6; i++)
        id[i] = (unsigned char)(ms >> (8 * (5 - i)));
    randombytes_buf(id + 6, sizeof(id) - 6);
    sodium_bin2hex(out, 33, id, sizeof(id));
}

/* ---- the TaskSpec -------------------------------------------------------------- */

/* "YYYY-MM-DDTHH:MM:SS[.fff]Z" */
static int iso_ok(const char *s)
{
    int64_t ms;
    return aos_isotime_parse(s, 0, &ms) == 0;
}

int orch_iso_norm(const char *s, char out[32])
{
    int64_t ms;
    if (aos_isotime_parse(s, 0, &ms) != 0)
        return -1;
    aos_isotime_fmt(ms, out);
    return 0;
}

/* A TaskSpec file's bytes: its text as it is, or its content_base64
 * decoded into *owned (freed by the caller). -1 when the base64 does not
 * decode or memory runs out. */
static int file_bytes(const json_t *f, unsigned char **owned, const char **bytes, size_t *len)
{
    const json_t *b64 = json_object_get(f, "content_base64");
    *owned = NULL;
    if (!b64) {
        *bytes = json_string_value(json_object_get(f, "content"));
        *len = json_string_length(json_object_get(f, "content"));
        return 0;
    }
    size_t cap = json_string_length(b64) / 4 * 3 + 3;
    if (!(*owned = malloc(cap)) ||
        sodium_base642bin(*owned, cap, json_string_value(b64), json_string_length(b64), NULL, len,
                          NULL, sodium_base64_VARIANT_ORIGINAL) != 0) {
        free(*owned);
        *owned = NULL;
        return -1;
    }
    *bytes = (const char *)*owned;
    return 0;
}

/* Its size, without decoding (canonical base64: no line breaks, padded). */
static size_t file_size(const json_t *f)
{
    const json_t *b64 = json_object_get(f, "content_base64");
    if (!b64)
        return json_string_length(json_object_get(f, "content"));
    size_t n = json_string_length(b64), size = n / 4 * 3;
    if (size) { /* less the padding */
        const char *e = json_string_value(b64) + n;
        size -= (size_t)(e[-1] == '=') + (size_t)(e[-2] == '=');
    }
    return size;
}

int orch_spec_check(const json_t *spec, aos_err_t *err)
{
    static const char *const known[] = {"goal",  "plan",         "dsl",      "inputs",
                                        "files", "project_id",   "priority", "constraints",
                                        "env",   "scheduled_at", "title",    NULL};
    static const char *const cknown[] = {"budget_cny",         "deadline", "tools",  "approval",
                                         "approval_timeout_s", "http",     "memory", NULL};
    if (!json_is_object(spec))
        return aos_err_set(err, AOS_EINVAL, "the TaskSpec must be a JSON object");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)spec, k, v)
    {
        int ok = 0;
        for (int i = 0; known[i] && !ok; i++)
            ok = !strcmp(k, known[i]);
        if (!ok)
            return aos_err_set(err, AOS_EINVAL, "unknown member '%.64s' in the TaskSpec", k);
    }
    const json_t *goal = json_object_get(spec, "goal"), *plan = json_object_get(spec, "plan"),
                 *dsl = json_object_get(spec, "dsl");
    if (!goal && !plan && !dsl)
        return aos_err_set(err, AOS_EINVAL, "the TaskSpec needs a goal, a plan or dsl");
    if (goal && (!json_is_string(goal) || json_string_length(goal) == 0 ||
                 json_string_length(goal) > SPEC_GOAL_MAX))
        return aos_err_set(err, AOS_EINVAL, "'goal' must be text of 1..%d bytes", SPEC_GOAL_MAX);
    if (plan && !json_is_object(plan))
        return aos_err_set(err, AOS_EINVAL, "'plan' must be an object {\"steps\": [...]}");
    if (dsl && !json_is_string(dsl))
        return aos_err_set(err, AOS_EINVAL, "'dsl' must be text");
    const json_t *in = json_object_get(spec, "inputs");
    if (in && !json_is_object(in))
        return aos_err_set(err, AOS_EINVAL, "'inputs' must be an object");
    const json_t *pid = json_object_get(spec, "project_id");
    if (pid &&
        (!json_is_string(pid) || json_string_length(pid) == 0 || json_string_length(pid) > 128))
        return aos_err_set(err, AOS_EINVAL, "'project_id' must be text of 1..128 bytes");
    const json_t *pr = json_object_get(spec, "priority");
    if (pr &&
        (!json_is_integer(pr) || json_integer_value(pr) < -1000 || json_integer_value(pr) > 1000))
        return aos_err_set(err, AOS_EINVAL, "'priority' must be an integer -1000..1000");
    const json_t *at = json_object_get(spec, "scheduled_at");
    if (at && !iso_ok(json_string_value(at)))
        return aos_err_set(
            err, AOS_EINVAL,
            "'scheduled_at' must be an RFC 3339 time with a zone, 2026-01-31T12:00:00Z");
    const json_t *env = json_object_get(spec, "env");
    if (env && !(json_is_array(env) && json_array_size(env) == 0) && /* [] : none, as before */
        aos_settings_env_check(env, err))
        return AOS_EINVAL;
    const json_t *files = json_object_get(spec, "files");
    if (files) {
        if (!json_is_array(files) || json_array_size(files) > 100)
            return aos_err_set(err, AOS_EINVAL, "'files' must be an array of at most 100 files");
        size_t i, total = 0;
        json_t *f;
        json_array_foreach(files, i, f)
        {
            const char *name = json_string_value(json_object_get(f, "name"));
            const json_t *text = json_object_get(f, "content");
            const json_t *b64 = json_object_get(f, "content_base64");
            const json_t *content = text ? text : b64;
            if (!json_is_object(f) || !name || !*name || strchr(name, '/') || name[0] == '.' ||
                strlen(name) > 200 || !json_is_string(content) || json_object_size(f) != 2 ||
                strlen(name) != json_string_length(json_object_get(f, "name")))
                return aos_err_set(err, AOS_EINVAL,
                                   "files[%zu] must be {\"name\": a plain file name, \"content\": "
                                   "text} or {\"name\", \"content_base64\": the bytes in base64}",
                                   i);
            if (b64) {
                /* decoded here once to know it decodes; the store writes it */
                unsigned char *bin;
                const char *bytes;
                size_t n;
                int bad = file_bytes(f, &bin, &bytes, &n);
                free(bin);
                if (bad)
                    return aos_err_set(err, AOS_EINVAL,
                                       "files[%zu] (%s): content_base64 is not base64", i, name);
            }
            total += file_size(f);
            for (size_t j = 0; j < i; j++)
                if (!strcmp(name,
                            json_string_value(json_object_get(json_array_get(files, j), "name"))))
                    return aos_err_set(err, AOS_EINVAL, "files[%zu]: '%s' is named twice", i, name);
        }
        if (total > SPEC_FILES_MAX)
            return aos_err_set(err, AOS_EINVAL, "'files' hold more than %u bytes", SPEC_FILES_MAX);
    }
    const json_t *c = json_object_get(spec, "constraints");
    if (c) {
        if (!json_is_object(c))
            return aos_err_set(err, AOS_EINVAL, "'constraints' must be an object");
        json_object_foreach((json_t *)c, k, v)
        {
            int ok = 0;
            for (int i = 0; cknown[i] && !ok; i++)
                ok = !strcmp(k, cknown[i]);
            if (!ok)
                return aos_err_set(err, AOS_EINVAL, "unknown member 'constraints.%.64s'", k);
        }
        const json_t *b = json_object_get(c, "budget_cny");
        if (b && (!json_is_number(b) || json_number_value(b) < 0))
            return aos_err_set(err, AOS_EINVAL, "'constraints.budget_cny' must be a number >= 0");
        const json_t *d = json_object_get(c, "deadline");
        if (d && !iso_ok(json_string_value(d)))
            return aos_err_set(err, AOS_EINVAL,
                               "'constraints.deadline' must be an RFC 3339 time with a zone, "
                               "2026-01-31T12:00:00Z");
        const json_t *tools = json_object_get(c, "tools");
        size_t i;
        json_t *tv;
        if (tools && !json_is_array(tools))
            return aos_err_set(err, AOS_EINVAL, "'constraints.tools' must be an array of names");
        json_array_foreach(tools, i, tv)
        {
            if (!json_is_string(tv) || json_string_length(tv) == 0)
                return aos_err_set(err, AOS_EINVAL, "constraints.tools[%zu] must be a name", i);
        }
        const char *ap = json_string_value(json_object_get(c, "approval"));
        if (json_object_get(c, "approval") &&
            (!ap || (strcmp(ap, "never") && strcmp(ap, "on_failure"))))
            return aos_err_set(err, AOS_EINVAL,
                               "'constraints.approval' must be \"never\" or \"on_failure\"");
        const json_t *mem = json_object_get(c, "memory");
        if (mem && !json_is_object(mem))
            return aos_err_set(err, AOS_EINVAL,
                               "'constraints.memory' must be an object: {q, k, mode, tags, "
                               "project_id}");
        const json_t *at2 = json_object_get(c, "approval_timeout_s");
        if (at2 && (!json_is_integer(at2) || json_integer_value(at2) < 1 ||
                    json_integer_value(at2) > 30 * 86400))
            return aos_err_set(err, AOS_EINVAL,
                               "'constraints.approval_timeout_s' must be 1..2592000");
        /* the hosts the task's http__* calls may reach (tools/net.h) */
        const json_t *h = json_object_get(c, "http");
        const json_t *hosts = json_object_get(h, "allow_hosts");
        const json_t *priv = json_object_get(h, "allow_private");
        if (h && (!json_is_object(h) || !json_is_array(hosts) ||
                  json_object_size(h) != 1u + (priv != NULL) || (priv && !json_is_boolean(priv))))
            return aos_err_set(err, AOS_EINVAL,
                               "'constraints.http' must be {\"allow_hosts\": [hosts], "
                               "\"allow_private\": boolean}");
        json_array_foreach(hosts, i, tv)
        {
            if (!json_is_string(tv) || json_string_length(tv) == 0 || json_string_length(tv) > 253)
                return aos_err_set(err, AOS_EINVAL,
                                   "constraints.http.allow_hosts[%zu] must be a host name", i);
        }
    }
    return 0;
}

/* A plan whose checks ask the model, with no model to ask: refused. */
static json_t *needs_model(aos_orch_t *o, json_t *plan, aos_err_t *err)
{
    size_t i;
    const json_t *st;
    if (!plan || o->cfg.llm)
        return plan;
    json_array_foreach(json_object_get(plan, "steps"), i, st)
    {
        if (json_object_get(json_object_get(st, "check"), "llm")) {
            aos_err_set(err, AOS_EINVAL,
                        "steps[%zu] (%s).check.llm: no model is configured to judge results "
                        "(--llm-base-url)",
                        i, json_string_value(json_object_get(st, "id")));
            json_decref(plan);
            return NULL;
        }
    }
    return plan;
}

json_t *orch_plan(aos_orch_t *o, const json_t *spec, int *llm, aos_err_t *err)
{
    if (llm)
        *llm = 0;
    const json_t *c = json_object_get(spec, "constraints");
    aos_plan_opts_t opts = {.tools = json_object_get(c, "tools"),
                            .inputs = json_object_get(spec, "inputs")};
    const json_t *plan = json_object_get(spec, "plan");
    if (plan)
        return needs_model(o, aos_plan_validate(plan, &opts, err), err);
    const json_t *dsl = json_object_get(spec, "dsl");
    const char *goal = json_string_value(json_object_get(spec, "goal"));
    json_t *p = NULL;
    if (dsl) {
        p = aos_dsl_parse(json_string_value(dsl), json_string_length(dsl), err);
    } else if (o->cfg.llm && llm) {
        /* DSL text as a goal is planned as DSL; the rest is the model's */
        aos_err_t ignored = {0, ""};
        p = aos_dsl_parse(goal, strlen(goal), &ignored);
        if (!p) {
            *llm = 1;
            return NULL;
        }
    } else {
        p = aos_plan_offline(goal, json_object_get(spec, "inputs"), err);
    }
    if (!p)
        return NULL;
    /* the parsers check the format; the caller's tools and inputs too */
    json_t *v = aos_plan_validate(p, &opts, err);
    json_decref(p);
    return needs_model(o, v, err);
}

/* ---- accepting a task -------------------------------------------------------------- */

struct accept {
    aos_orch_t *o;
    void (*done)(orch_tx_t *tx);
    void *data;
};

static void accepted(orch_tx_t *tx)
{
    orch_task_t *t = tx->task;
    aos_orch_t *o = t->o;
    if (tx->status) {
        orch_task_free(t);
        tx->task = NULL;
        return;
    }
    t->job_id = tx->job_id;
    if (aos_map_put(&o->tasks, t->trace_id, t) ||
        aos_map_put_u64(&o->jobs, (uint64_t)t->job_id, t)) {
        aos_map_del(&o->tasks, t->trace_id);
        aos_log_error("orch", "task %s: out of memory", t->trace_id);
        orch_task_free(t);
        tx->task = NULL;
        return;
    }
    if (o->m_tasks)
        aos_metric_add(o->m_tasks, 1, "accepted");
    orch_enqueue(o, t);
    orch_schedule(o);
}

static void accept_reply(orch_tx_t *tx)
{
    struct accept *a = tx->reply_data;
    tx->reply_data = a->data;
    if (a->done)
        a->done(tx);
    tx->reply_data = NULL;
    free(a);
}

/* Writes the files of the spec into the workspace (on the worker). */
static int run_files(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    size_t i;
    json_t *f;
    json_array_foreach(op->json, i, f)
    {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", op->s[0],
                 json_string_value(json_object_get(f, "name")));
        FILE *fp = fopen(path, "wx");
        if (!fp)
            return aos_err_set(err, AOS_EIO, "unable to write the file '%s'",
                               json_string_value(json_object_get(f, "name")));
        unsigned char *bin;
        const char *bytes;
        size_t len;
        if (file_bytes(f, &bin, &bytes, &len)) {
            fclose(fp);
            return aos_err_set(err, AOS_EINVAL, "the file '%s' is not base64",
                               json_string_value(json_object_get(f, "name")));
        }
        size_t n = len ? fwrite(bytes, 1, len, fp) : 0;
        free(bin);
        /* durable with the transaction that accepts the task */
        if (fflush(fp) != 0 || fsync(fileno(fp)) != 0)
            n = (size_t)-1;
        if (fclose(fp) != 0 || n != len)
            return aos_err_set(err, AOS_EIO, "unable to write the file '%s'",
                               json_string_value(json_object_get(f, "name")));
    }
    int dir = open(op->s[0], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir >= 0) {
        fsync(dir);
        close(dir);
    }
    return 0;
}

/* Copies the tree under the open directory src into dst (both
 * descriptors, closed here): directories and regular files only - a
 * symlink, a device or a socket is left behind - at most 32 deep. */
static int copy_tree(int src, int dst, int depth, aos_err_t *err)
{
    DIR *d = fdopendir(src);
    if (!d) {
        close(src);
        close(dst);
        return aos_err_set(err, AOS_EIO, "unable to read the workspace: %s", strerror(errno));
    }
    int rc = 0;
    struct dirent *e;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat sb;
        if (fstatat(dirfd(d), e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(sb.st_mode) && depth < 32) {
            int from = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (from < 0)
                continue;
            int to = -1;
            if (mkdirat(dst, e->d_name, 0700) == 0 || errno == EEXIST)
                to = openat(dst, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (to < 0) {
                close(from);
                rc = aos_err_set(err, AOS_EIO, "unable to copy the workspace: %s", strerror(errno));
                break;
            }
            rc = copy_tree(from, to, depth + 1, err);
        } else if (S_ISREG(sb.st_mode)) {
            int from = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            int to = from < 0 ? -1
                              : openat(dst, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                                       sb.st_mode & 0700 ? sb.st_mode & 0777 : 0600);
            char buf[65536];
            ssize_t n = 0;
            while (to >= 0 && (n = read(from, buf, sizeof(buf))) > 0)
                if (write(to, buf, (size_t)n) != n) {
                    n = -1;
                    break;
                }
            if (from >= 0 && (to < 0 || n < 0))
                rc = aos_err_set(err, AOS_EIO, "unable to copy '%s' of the workspace: %s",
                                 e->d_name, strerror(errno));
            if (to >= 0 && close(to) != 0 && !rc)
                rc = aos_err_set(err, AOS_EIO, "unable to copy '%s' of the workspace", e->d_name);
            if (from >= 0)
                close(from);
        }
    }
    closedir(d);
    close(dst);
    return rc;
}

/* A re-run starts from the workspace its original left (on the worker). */
static int run_copy_workspace(aos_store_t *st, orch_op_t *op, orch_tx_t *tx, aos_err_t *err)
{
    (void)st;
    (void)tx;
    int src = open(op->s[0], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (src < 0)
        return errno == ENOENT ? 0 : aos_err_set(err, AOS_EIO, "unable to read the workspace");
    int dst = open(op->s[1], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dst < 0) {
        close(src);
        return aos_err_set(err, AOS_EIO, "unable to open the new workspace: %s", strerror(errno));
    }
    return copy_tree(src, dst, 0, err);
}

/* The loop time before which a spec's task may not start: its scheduled_at,
 * or 0 for at once. */
static uint64_t not_before(aos_orch_t *o, const json_t *spec)
{
    const char *at = json_string_value(json_object_get(spec, "scheduled_at"));
    int64_t when, now = aos_isotime_now_ms();
    if (!at || aos_isotime_parse(at, 0, &when) != 0 || when <= now)
        return 0;
    return uv_now(o->cfg.loop) + (uint64_t)(when - now);
}

int orch_accept(aos_orch_t *o, json_t *spec, json_t *plan, const char *actor, const char *rerun_of,
                const char *from_step, const json_t *prev, void (*extra)(orch_tx_t *tx, void *data),
                void (*done)(orch_tx_t *tx), void *data, aos_err_t *err)
{
    char trace[33];
    orch_trace_id(trace);
    orch_task_t *t = orch_task_new(o, trace);
    struct accept *a = calloc(1, sizeof(*a));
    orch_tx_t *tx = t ? orch_tx_new(o, t) : NULL;
    if (!t || !a || !tx) {
        json_decref(plan);
        json_decref(spec);
        free(a);
        if (t)
            orch_task_free(t);
        free(tx);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    a->o = o;
    a->done = done;
    a->data = data;
    /* the caller's spec is the task's own from here: no copy of it */
    t->spec = spec;
    t->plan = plan;
    /* the files' bytes go to the workspace, not into the stored spec: it
     * keeps their names and sizes */
    json_t *files = json_incref(json_object_get(spec, "files"));
    if (files) {
        json_t *fsum = json_array();
        size_t fi;
        const json_t *ff;
        json_array_foreach(files, fi, ff)
        {
            json_array_append_new(fsum, json_pack("{s:O, s:I}", "name", json_object_get(ff, "name"),
                                                  "size", (json_int_t)file_size(ff)));
        }
        json_object_set_new(spec, "files", fsum);
    }
    const json_t *c = json_object_get(spec, "constraints");
    const char *pid = json_string_value(json_object_get(spec, "project_id"));
    t->project_id = pid ? strdup(pid) : NULL;
    t->actor = strdup(actor ? actor : "unknown");
    t->priority = (int)json_integer_value(json_object_get(spec, "priority"));
    t->budget_cny = json_number_value(json_object_get(c, "budget_cny"));
    const char *dl = json_string_value(json_object_get(c, "deadline"));
    if (dl && orch_iso_norm(dl, t->deadline) != 0)
        t->deadline[0] = '\0';
    t->not_before = not_before(o, spec);
    char ws[4200];
    snprintf(ws, sizeof(ws), "%s/workspaces/%s", o->data_dir, trace);
    t->workspace = strdup(ws);
    t->scope = orch_scope_new(t, json_object_get(spec, "inputs"));
    t->status = ST_QUEUED;
    if (rerun_of) {
        json_object_set_new(t->vars, "rerun_of", json_string(rerun_of));
        json_object_set_new(t->vars, "from_step", json_string(from_step));
    }
    /* the plan's own row, and what a re-run reuses */
    char now[32];
    aos_isotime_now(now);
    const char *planner = json_object_get(spec, "plan")  ? "given"
                          : json_object_get(spec, "dsl") ? "dsl"
                          : !plan                        ? "llm"
                                                         : "offline";
    json_int_t nsteps = (json_int_t)json_array_size(json_object_get(plan, "steps"));
    aos_store_step_t ps = {trace, "plan", 1,    t->seq++, "plan", "done", NULL,
                           NULL,  NULL,   NULL, 0,        now,    now};
    orch_tx_job_insert(tx, t);
    if (plan) { /* the model's plan gets its row when it is made */
        /* the plan itself is task_state.plan: the row says who made it
         * ({planner, goal?} in, {planner, steps} out: json_pack's objects,
         * built without parsing a format) */
        json_t *pin = json_object(), *pout = json_object();
        if (pin)
            json_object_set_new_nocheck(pin, "planner", json_string_nocheck(planner));
        if (pin && json_object_get(spec, "goal"))
            json_object_set_nocheck(pin, "goal", json_object_get(spec, "goal"));
        if (pout) {
            json_object_set_new_nocheck(pout, "planner", json_string_nocheck(planner));
            json_object_set_new_nocheck(pout, "steps", json_integer(nsteps));
        }
        orch_tx_step_json(tx, &ps, pin, pout, NULL);
        json_decref(pin);
        json_decref(pout);
    }
    if (rerun_of && prev) {
        /* the steps before from_step: their recorded results, reused */
        size_t i;
        json_t *row;
        json_t *steps = json_object_get(plan, "steps");
        size_t stop = 0;
        while (stop < json_array_size(steps) &&
               strcmp(json_string_value(json_object_get(json_array_get(steps, stop), "id")),
                      from_step))
            stop++;
        json_t *before = json_object();
        for (size_t k = 0; k < stop; k++)
            json_object_set_new(before,
                                json_string_value(json_object_get(json_array_get(steps, k), "id")),
                                json_true());
        json_array_foreach(json_object_get(prev, "steps"), i, row)
        {
            const char *sid = json_string_value(json_object_get(row, "step_id"));
            const char *st = json_string_value(json_object_get(row, "status"));
            const char *kind = json_string_value(json_object_get(row, "kind"));
            if (!json_object_get(before, sid) ||
                (strcmp(st, "done") && strcmp(st, "reused") && strcmp(st, "skipped")))
                continue;
            char *in = json_dumps(json_object_get(row, "input"), JSON_COMPACT | JSON_ENCODE_ANY);
            char *out = json_dumps(json_object_get(row, "output"), JSON_COMPACT | JSON_ENCODE_ANY);
            aos_store_step_t rs = {trace, sid,  1,    t->seq++, kind, "reused", in,
                                   out,   NULL, NULL, 0,        now,  now};
            orch_tx_step(tx, &rs);
            free(in);
            free(out);
            if (strcmp(st, "skipped"))
                orch_scope_add_step(t->scope, kind, sid, json_object_get(row, "output"));
        }
        json_decref(before);
        t->cursor = stop;
    }
    orch_tx_state(tx, t, 1);
    if (rerun_of) {
        orch_tx_mkdir(tx, t->workspace);
        t->ws_made = 1;
        char from[4096];
        snprintf(from, sizeof(from), "%s/workspaces/%s", o->data_dir, rerun_of);
        const char *s[] = {from, t->workspace};
        orch_tx_op(tx, run_copy_workspace, 2, s);
    }
    if (json_array_size(files)) {
        orch_tx_mkdir(tx, t->workspace);
        t->ws_made = 1;
        const char *s[] = {t->workspace};
        orch_op_t *op = orch_tx_op(tx, run_files, 1, s);
        if (op)
            op->json = json_incref(files);
    }
    char card[48];
    snprintf(card, sizeof(card), "task:%s", trace);
    /* json_pack("{s:s, s:I, s:s, s:s}", ...)'s object, built directly */
    json_t *acc = t->actor ? json_object() : NULL;
    if (acc) {
        json_object_set_new_nocheck(acc, "planner", json_string_nocheck(planner));
        json_object_set_new_nocheck(acc, "steps", json_integer(nsteps));
        json_object_set_new_nocheck(acc, "actor", json_string(t->actor));
        json_object_set_new_nocheck(acc, "status", json_string_nocheck("queued"));
    }
    if (json_object_get(spec, "goal"))
        json_object_set(acc, "goal", json_object_get(spec, "goal"));
    if (json_object_get(spec, "title"))
        json_object_set(acc, "title", json_object_get(spec, "title"));
    if (rerun_of) {
        json_object_set_new(acc, "rerun_of", json_string(rerun_of));
        json_object_set_new(acc, "from_step", json_string(from_step));
    }
    orch_tx_event(tx, t, "task.acceptance", "info", card, acc);
    /* json_pack("{s:s, s:I, s:s?, s:s?, s:s?}", ...)'s object */
    json_t *ad = json_object();
    if (ad) {
        json_object_set_new_nocheck(ad, "planner", json_string_nocheck(planner));
        json_object_set_new_nocheck(ad, "steps", json_integer(nsteps));
        json_object_set_new_nocheck(ad, "project_id",
                                    t->project_id ? json_string(t->project_id) : json_null());
        json_object_set_new_nocheck(ad, "rerun_of", rerun_of ? json_string(rerun_of) : json_null());
        json_object_set_new_nocheck(ad, "from_step",
                                    from_step ? json_string(from_step) : json_null());
    }
    if (json_object_get(spec, "title"))
        json_object_set(ad, "title", json_object_get(spec, "title"));
    orch_tx_audit(tx, t->actor, rerun_of ? "task.rerun" : "task.submit", trace, ad);
    json_decref(files);
    if (extra)
        extra(tx, data);
    tx->reply = accept_reply;
    tx->reply_data = a;
    tx->done = accepted;
    orch_tx_commit(tx);
    return 0;
}

struct submit {
    aos_orch_submit_fn done;
    void *data;
};

static void submitted(orch_tx_t *tx)
{
    struct submit *s = tx->reply_data;
    s->done(tx->status, &tx->err, tx->task ? tx->task->trace_id : NULL, tx->job_id, s->data);
    free(s);
}

int aos_orch_submit(aos_orch_t *o, json_t *spec, const char *actor, aos_orch_submit_fn done,
                    void *data, aos_err_t *err)
{
    if (o->shutting_down) {
        json_decref(spec);
        return aos_err_set(err, AOS_EUNAVAIL, "aosd is shutting down");
    }
    int rc = orch_spec_check(spec, err);
    if (rc) {
        json_decref(spec);
        return rc;
    }
    int llm = 0;
    json_t *plan = orch_plan(o, spec, &llm, err);
    if (!plan && !llm) {
        json_decref(spec);
        return err->code ? err->code : AOS_EINVAL;
    }
    struct submit *s = calloc(1, sizeof(*s));
    if (!s) {
        json_decref(plan);
        json_decref(spec);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    s->done = done;
    s->data = data;
    rc = orch_accept(o, spec, plan, actor, NULL, NULL, NULL, NULL, submitted, s, err);
    if (rc)
        free(s);
    /* on success the commit's reply, submitted(), frees s */
    /* NOLINTNEXTLINE(clang-analyzer-unix.Malloc) */
    return rc;
}

/* ---- scheduling ------------------------------------------------------------------- */

void orch_enqueue(aos_orch_t *o, orch_task_t *t)
{
    orch_task_t **p = &o->queue;
    while (*p && ((*p)->priority > t->priority ||
                  ((*p)->priority == t->priority && (*p)->job_id < t->job_id)))
        p = &(*p)->q_next;
    t->q_next = *p;
    *p = t;
}

/* per_project: project id -> an unsigned count of its running tasks */
static unsigned project_running(aos_orch_t *o, const char *pid)
{
    unsigned *n = pid ? aos_map_get(&o->per_project, pid) : NULL;
    return n ? *n : 0;
}

static void project_add(aos_orch_t *o, const char *pid, int d)
{
    if (!pid)
        return;
    unsigned *n = aos_map_get(&o->per_project, pid);
    if (!n && d > 0 && (n = calloc(1, sizeof(*n))) && aos_map_put(&o->per_project, pid, n)) {
        free(n);
        n = NULL;
    }
    if (!n)
        return;
    *n = d > 0 ? *n + 1 : (*n ? *n - 1 : 0);
    if (!*n)
        free(aos_map_del(&o->per_project, pid));
}

static void on_sched_timer(uv_timer_t *h)
{
    orch_schedule(h->data);
}

void orch_schedule(aos_orch_t *o)
{
    if (o->shutting_down)
        return;
    uint64_t now = uv_now(o->cfg.loop), next = 0;
    orch_task_t **p = &o->queue;
    while (*p && o->running < o->cfg.max_running) {
        orch_task_t *t = *p;
        if (t->not_before > now) {
            if (!next || t->not_before < next)
                next = t->not_before;
            p = &t->q_next;
            continue;
        }
        if (t->project_id && project_running(o, t->project_id) >= o->cfg.max_per_project) {
            p = &t->q_next;
            continue;
        }
        *p = t->q_next;
        t->q_next = NULL;
        t->running_slot = 1;
        o->running++;
        project_add(o, t->project_id, 1);
        orch_task_run(t);
    }
    for (orch_task_t *t = *p; t && !next; t = t->q_next)
        if (t->not_before > now)
            next = t->not_before;
    if (next)
        uv_timer_start(&o->sched_timer, on_sched_timer, next - now, 0);
}

void orch_task_ended(orch_task_t *t)
{
    aos_orch_t *o = t->o;
    if (t->running_slot) {
        t->running_slot = 0;
        o->running--;
        project_add(o, t->project_id, -1);
    }
    for (orch_task_t **p = &o->queue; *p; p = &(*p)->q_next) {
        if (*p == t) {
            *p = t->q_next;
            break;
        }
    }
    if (o->m_tasks)
        aos_metric_add(o->m_tasks, 1, orch_status_name(t->status));
    if (aos_map_get(&o->tasks, t->trace_id) == t)
        aos_map_del(&o->tasks, t->trace_id);
    if (aos_map_get_u64(&o->jobs, (uint64_t)t->job_id) == t)
        aos_map_del_u64(&o->jobs, (uint64_t)t->job_id);
    orch_task_free(t);
    orch_schedule(o);
}

/* ---- recovery ------------------------------------------------------------------------ */

static enum orch_status status_of(const char *s)
{
    for (int i = ST_QUEUED; i <= ST_CANCELLED; i++)
        if (s && !strcmp(s, orch_status_name((enum orch_status)i)))
            return (enum orch_status)i;
    return ST_QUEUED;
}

static const json_t *plan_step(const orch_task_t *t, const char *id)
{
    size_t i;
    const json_t *s;
    json_array_foreach(json_object_get(t->plan, "steps"), i, s)
    {
        if (id && !strcmp(json_string_value(json_object_get(s, "id")), id))
            return s;
    }
    return NULL;
}

/* A task in memory again from its stored rows (aos_store_task_get's form). */
static orch_task_t *revive(aos_orch_t *o, const json_t *job)
{
    const json_t *state = json_object_get(job, "state");
    const char *trace = json_string_value(json_object_get(job, "trace_id"));
    orch_task_t *t = trace ? orch_task_new(o, trace) : NULL;
    if (!t)
        return NULL;
    t->job_id = json_integer_value(json_object_get(job, "id"));
    t->spec = json_incref(json_object_get(job, "spec"));
    t->plan = json_incref(json_object_get(state, "plan"));
    if (json_is_object(json_object_get(state, "vars"))) {
        json_decref(t->vars);
        t->vars = json_deep_copy(json_object_get(state, "vars"));
    }
    t->cursor = (size_t)json_integer_value(json_object_get(state, "cursor"));
    t->status = status_of(json_string_value(json_object_get(job, "status")));
    const json_t *c = json_object_get(t->spec, "constraints");
    const char *pid = json_string_value(json_object_get(job, "project_id"));
    t->project_id = pid ? strdup(pid) : NULL;
    t->actor = strdup("recovered");
    t->priority = (int)json_integer_value(json_object_get(job, "priority"));
    t->budget_cny = json_number_value(json_object_get(c, "budget_cny"));
    const char *dl = json_string_value(json_object_get(c, "deadline"));
    if (dl && orch_iso_norm(dl, t->deadline) != 0)
        t->deadline[0] = '\0';
    const char *sa = json_string_value(json_object_get(job, "started_at"));
    if (sa)
        snprintf(t->started_at, sizeof(t->started_at), "%s", sa);
    if (t->status == ST_QUEUED) /* still waiting for its time */
        t->not_before = not_before(o, t->spec);
    char ws[4200];
    snprintf(ws, sizeof(ws), "%s/workspaces/%s", o->data_dir, trace);
    t->workspace = strdup(ws);
    t->scope = orch_scope_new(t, json_object_get(t->spec, "inputs"));
    if (!t->scope || !t->spec) {
        orch_task_free(t);
        return NULL;
    }
    size_t i;
    const json_t *row, *running = NULL;
    json_array_foreach(json_object_get(job, "steps"), i, row)
    {
        const char *st = json_string_value(json_object_get(row, "status"));
        const char *kind = json_string_value(json_object_get(row, "kind"));
        const char *sid = json_string_value(json_object_get(row, "step_id"));
        int64_t seq = json_integer_value(json_object_get(row, "seq"));
        if (seq >= t->seq)
            t->seq = seq + 1;
        if (!strcmp(st, "done") || !strcmp(st, "reused"))
            orch_scope_add_step(t->scope, kind, sid, json_object_get(row, "output"));
        if (!strcmp(kind, "tool") && !strcmp(st, "running"))
            running = row;
    }
    /* a fallback's result stands for the step it replaced */
    json_array_foreach(json_object_get(t->plan, "steps"), i, row)
    {
        const char *f = json_string_value(json_object_get(row, "fallback"));
        json_t *steps = json_object_get(t->scope, "steps");
        const char *sid = json_string_value(json_object_get(row, "id"));
        if (f && json_object_get(steps, f) && !json_object_get(steps, sid) && i < t->cursor)
            json_object_set(steps, sid, json_object_get(steps, f));
    }
    const json_t *cursor_step = json_array_get(json_object_get(t->plan, "steps"), t->cursor);
    const json_t *w = json_object_get(t->vars, "waiting");
    if (running) {
        /* an attempt was in flight: it runs again, as the same attempt */
        t->cur = plan_step(t, json_string_value(json_object_get(running, "step_id")));
        t->attempt = (int)json_integer_value(json_object_get(running, "attempt"));
        t->cur_input = json_incref(json_object_get(running, "input"));
        snprintf(t->cur_started, sizeof(t->cur_started), "%s",
                 json_string_value(json_object_get(running, "started_at")));
        if (t->cur && cursor_step && t->cur != cursor_step)
            t->cur_for = cursor_step;
    } else if (w) {
        snprintf(t->waiting, sizeof(t->waiting), "%s",
                 json_string_value(json_object_get(w, "step")));
        t->waiting_failure = json_is_true(json_object_get(w, "failure"));
        if (t->waiting_failure) {
            t->cur = plan_step(t, json_string_value(json_object_get(w, "cur")));
            t->cur_for = plan_step(t, json_string_value(json_object_get(w, "cur_for")));
            t->attempt = (int)json_integer_value(json_object_get(w, "attempt"));
        }
        t->status = ST_WAITING;
    } else if (json_string_value(json_object_get(t->vars, "retrying"))) {
        /* between attempts: the next one goes now */
        const char *rid = json_string_value(json_object_get(t->vars, "retrying"));
        json_array_foreach(json_object_get(job, "steps"), i, row)
        {
            if (!strcmp(json_string_value(json_object_get(row, "step_id")), rid))
                t->attempt = (int)json_integer_value(json_object_get(row, "attempt"));
        }
        t->cur = plan_step(t, rid);
        t->cur_input = NULL;
        t->attempt++; /* begin_tool of this attempt, below */
        if (t->cur && cursor_step && t->cur != cursor_step)
            t->cur_for = cursor_step;
        json_object_set_new(t->vars, "resume_retry", json_true());
    }
    return t;
}

int aos_orch_start(aos_orch_t *o, aos_err_t *err)
{
    json_t *open = NULL;
    int rc = aos_store_tasks_open(o->cfg.store, &open, err);
    if (rc)
        return rc;
    orch_tx_t *tx = orch_tx_new(o, NULL);
    size_t i, n = 0;
    json_t *job;
    json_array_foreach(open, i, job)
    {
        orch_task_t *t = revive(o, job);
        if (!t) {
            aos_log_error("orch", "task %s cannot be resumed: its rows are incomplete",
                          json_string_value(json_object_get(job, "trace_id")));
            continue;
        }
        if (aos_map_put(&o->tasks, t->trace_id, t) ||
            aos_map_put_u64(&o->jobs, (uint64_t)t->job_id, t)) {
            orch_task_free(t);
            continue;
        }
        if (t->status == ST_QUEUED) {
            orch_enqueue(o, t);
            continue;
        }
        /* running or waiting: it had a slot; it has one again */
        t->recovering = 1;
        t->running_slot = 1;
        o->running++;
        project_add(o, t->project_id, 1);
        t->started_ms = uv_now(o->cfg.loop);
        char card[48];
        snprintf(card, sizeof(card), "recovery:%s", t->trace_id);
        if (tx)
            orch_tx_event(
                tx, t, "recovery.start", "warning", card,
                json_pack("{s:s, s:s, s:I, s:s?}", "reason", "restart", "status",
                          orch_status_name(t->status), "cursor", (json_int_t)t->cursor, "step",
                          t->cur ? json_string_value(json_object_get(t->cur, "id")) : NULL));
        n++;
    }
    json_decref(open);
    if (n)
        aos_log_info("orch", "resuming %zu unfinished task(s)", n);
    /* the recovery.start events first, then the tasks go on */
    if (tx && tx->ops) {
        orch_tx_commit(tx);
    } else if (tx) {
        orch_tx_free(tx);
    }
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&o->tasks, &it, NULL, NULL, &v)) {
        orch_task_t *t = v;
        if (!t->running_slot)
            continue;
        if (json_is_true(json_object_get(t->vars, "resume_retry"))) {
            json_object_del(t->vars, "resume_retry");
            t->attempt--; /* begin_tool adds it back */
            orch_task_retry_now(t);
        } else {
            orch_task_run(t);
        }
    }
    orch_schedule(o);
    return 0;
}

/* ---- the object ---------------------------------------------------------------------- */

static void on_sweep(uv_timer_t *h);

int aos_orch_new(aos_orch_t **out, const aos_orch_cfg_t *cfg, aos_err_t *err)
{
    aos_orch_t *o = calloc(1, sizeof(*o));
    if (!o)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    o->cfg = *cfg;
    if (!o->cfg.max_running)
        o->cfg.max_running = 64;
    if (!o->cfg.max_per_project)
        o->cfg.max_per_project = o->cfg.max_running;
    o->data_dir = strdup(cfg->data_dir ? cfg->data_dir : ".");
    aos_map_init(&o->tasks);
    aos_map_init(&o->jobs);
    aos_map_init(&o->per_project);
    o->pending_tail = &o->pending;
    o->inflight_tail = &o->inflight;
    uv_check_init(cfg->loop, &o->flusher);
    o->flusher.data = o;
    uv_unref((uv_handle_t *)&o->flusher);
    uv_timer_init(cfg->loop, &o->sched_timer);
    o->sched_timer.data = o;
    uv_unref((uv_handle_t *)&o->sched_timer);
    uv_timer_init(cfg->loop, &o->sweep);
    o->sweep.data = o;
    uv_unref((uv_handle_t *)&o->sweep);
    if (o->cfg.retention_days)
        uv_timer_start(&o->sweep, on_sweep, 60000, 3600000);
    if (cfg->metrics) {
        o->m_tasks = aos_metrics_counter(cfg->metrics, "aos_tasks_total",
                                         "tasks accepted and ended, by status", "status");
        /* fine buckets: a commit takes from 50 us to a few ms */
        static const double secs[] = {
            50e-6,  75e-6, 100e-6, 150e-6, 200e-6, 250e-6, 300e-6, 400e-6, 500e-6, 750e-6, 1e-3,
            1.5e-3, 2e-3,  3e-3,   5e-3,   7.5e-3, 10e-3,  25e-3,  50e-3,  100e-3, 250e-3, 1};
        static const double txs[] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024};
        o->m_commit = aos_metrics_histogram(
            cfg->metrics, "aos_orch_commit_seconds",
            "time of one group commit of task transitions on the store's worker (BEGIN to COMMIT)",
            NULL, secs, sizeof(secs) / sizeof(secs[0]));
        o->m_commit_tx = aos_metrics_histogram(cfg->metrics, "aos_orch_commit_transitions",
                                               "task transitions written by one group commit", NULL,
                                               txs, sizeof(txs) / sizeof(txs[0]));
    }
    *out = o;
    return 0;
}

struct expire {
    char before[32];
    int n;
};

static int expire_tx(aos_store_t *st, void *arg, aos_err_t *err)
{
    struct expire *e = arg;
    return aos_store_tasks_expire(st, e->before, 1000, &e->n, err);
}

static int expire_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    return aos_store_tx(st, expire_tx, arg, err);
}

static void expire_done(int status, const aos_err_t *err, void *arg)
{
    struct expire *e = arg;
    if (status)
        aos_log_warn("orch", "retention: %s", aos_err_msg(err));
    else if (e->n)
        aos_log_info("orch", "retention: %d finished run(s) older than %s deleted", e->n,
                     e->before);
    free(e);
}

static void on_sweep(uv_timer_t *h)
{
    aos_orch_t *o = h->data;
    struct expire *e = calloc(1, sizeof(*e));
    if (!e)
        return;
    time_t cut = time(NULL) - (time_t)o->cfg.retention_days * 86400;
    struct tm tm;
    gmtime_r(&cut, &tm);
    strftime(e->before, sizeof(e->before), "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    if (aos_store_submit(o->cfg.store, expire_job, expire_done, e))
        free(e);
}

int aos_orch_add_routes(aos_orch_t *o, aos_http_t *http)
{
    return aos_http_add_routes(http, orch_routes, orch_nroutes, o);
}

void orch_idle(aos_orch_t *o)
{
    if (o->shutting_down && o->on_shutdown) {
        void (*done)(void *) = o->on_shutdown;
        o->on_shutdown = NULL;
        done(o->shutdown_data);
    }
}

void aos_orch_shutdown(aos_orch_t *o, void (*done)(void *data), void *data)
{
    o->shutting_down = 1;
    o->on_shutdown = done;
    o->shutdown_data = data;
    uv_timer_stop(&o->sched_timer);
    uv_timer_stop(&o->sweep);
    /* timers of tasks: nothing more starts */
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&o->tasks, &it, NULL, NULL, &v)) {
        orch_task_t *t = v;
        if (t->timer)
            uv_timer_stop(t->timer);
    }
    if (!o->ninflight && !o->pending)
        orch_idle(o);
}

static void on_closed(uv_handle_t *h)
{
    aos_orch_t *o = h->data;
    if (++o->closed < 3)
        return;
    free(o->data_dir);
    free(o);
}

void aos_orch_free(aos_orch_t *o)
{
    if (!o)
        return;
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    void *v;
    while (aos_map_iter_next(&o->tasks, &it, NULL, NULL, &v)) {
        orch_task_t *t = v;
        if (t->call) /* the gateway is gone or going: nothing calls back */
            t->call = NULL;
        orch_task_free(t);
    }
    aos_map_release(&o->tasks);
    aos_map_release(&o->jobs);
    aos_map_iter_init(&it);
    while (aos_map_iter_next(&o->per_project, &it, NULL, NULL, &v))
        free(v);
    aos_map_release(&o->per_project);
    aos_buf_release(&o->scratch);
    uv_close((uv_handle_t *)&o->sched_timer, on_closed);
    uv_close((uv_handle_t *)&o->sweep, on_closed);
    uv_close((uv_handle_t *)&o->flusher, on_closed);
}
