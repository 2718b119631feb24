/* run.c - one run in the sandbox, from its row to its end:
 *
 *   submit   a store job loads the script (a script's run), inserts the
 *            run's row and an audit row; then, on the loop, the script's
 *            env is unsealed into the run's environment
 *   prepare  the workspace is made off the loop (uv_queue_work): a new
 *            directory under <root>/runs, each file written with
 *            O_CREAT|O_EXCL|O_NOFOLLOW, owned by the sandbox's uid
 *   run      a sandboxed child of src/proc; its lines go to the log under
 *            the run's trace id, the first output_kb of each stream is kept
 *   finish   the end is stored (status, exit code or signal, reason,
 *            duration, resource use, output), the shell's caller answered,
 *            the workspace removed (nftw, never following a symlink)
 *
 * A run counts in sb->pending from submit to its free, so shutdown waits
 * for every one. Schedules are one uv_timer per script with schedule_ms;
 * a tick is skipped while the previous scheduled run still runs. */
#include "sandbox/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "isotime/isotime.h"
#include "log/log.h"
#include "settings/settings.h"
#include "utf8/utf8.h"

void sb_new_id(char out[SB_ID_LEN + 1])
{
    unsigned char b[SB_ID_LEN / 2];
    randombytes_buf(b, sizeof(b));
    sodium_bin2hex(out, SB_ID_LEN + 1, b, sizeof(b));
}

void sb_unref(aos_sandbox_t *sb)
{
    if (--sb->pending > 0 || !sb->closing || !sb->down)
        return;
    void (*down)(void *) = sb->down;
    sb->down = NULL;
    down(sb->down_data);
}

sb_run_t *sb_run_new(aos_sandbox_t *sb, const char *actor)
{
    sb_run_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->sb = sb;
    sb_new_id(r->id);
    sb_new_id(r->trace_id);
    snprintf(r->actor, sizeof(r->actor), "%s", actor ? actor : "system");
    snprintf(r->status, sizeof(r->status), "queued");
    aos_buf_init(&r->out, 0);
    aos_buf_init(&r->err, 0);
    return r;
}

static void free_strv(char **v, int wipe)
{
    for (size_t i = 0; v && v[i]; i++) {
        if (wipe)
            sodium_memzero(v[i], strlen(v[i]));
        free(v[i]);
    }
    free(v);
}

void sb_run_free(sb_run_t *r)
{
    if (!r)
        return;
    json_decref(r->files);
    free_strv(r->argv, 0);
    free_strv(r->env, 1);
    aos_buf_release(&r->out);
    aos_buf_release(&r->err);
    free(r);
}

sb_run_t *sb_run_find(aos_sandbox_t *sb, const char *id)
{
    for (sb_run_t *r = sb->runs; r; r = r->next)
        if (!strcmp(r->id, id))
            return r;
    return NULL;
}

int sb_refuse(aos_sandbox_t *sb, aos_err_t *err)
{
    if (sb->closing)
        return aos_err_set(err, AOS_EUNAVAIL, "aosd is shutting down");
    if (!sb->available)
        return aos_err_set(err, AOS_EUNAVAIL, "%s", sb->why);
    if (sb->running >= sb->max_running)
        return aos_err_set(err, AOS_EUNAVAIL, "%u sandbox runs are running already: try later",
                           sb->running);
    return 0;
}

/* ---- the command of a script ------------------------------------------------ */

static char **strv(const char *const *src)
{
    size_t n = 0;
    while (src[n])
        n++;
    char **v = calloc(n + 1, sizeof(*v));
    for (size_t i = 0; v && i < n; i++)
        if (!(v[i] = strdup(src[i]))) {
            free_strv(v, 0);
            return NULL;
        }
    return v;
}

/* How the entry file runs, by its extension; anything else is executed. */
static char **entry_argv(const char *entry)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", AOS_PROC_WORKDIR, entry);
    const char *dot = strrchr(entry, '.');
    if (dot && !strcmp(dot, ".py"))
        return strv((const char *const[]){"python3", path, NULL});
    if (dot && !strcmp(dot, ".sh"))
        return strv((const char *const[]){"/bin/sh", path, NULL});
    if (dot && (!strcmp(dot, ".js") || !strcmp(dot, ".mjs")))
        return strv((const char *const[]){"node", path, NULL});
    return strv((const char *const[]){path, NULL});
}

int sb_run_from_script(sb_run_t *r, const json_t *script, aos_err_t *err)
{
    aos_sandbox_t *sb = r->sb;
    int rc = sb_caps_parse(json_object_get(script, "caps"), &r->caps, err);
    if (rc)
        return rc;
    const json_t *files = json_object_get(script, "files");
    const char *entry = json_string_value(json_object_get(script, "entry_file"));
    if (!json_is_object(files) || !entry)
        return aos_err_set(err, AOS_EINVAL, "the stored script has no files or entry_file");
    r->files = json_incref((json_t *)files);
    if (!(r->argv = entry_argv(entry)))
        return aos_err_set(err, AOS_ENOMEM, NULL);
    const json_t *env = json_object_get(script, "env");
    r->env = calloc(json_object_size(env) + 1, sizeof(char *));
    if (!r->env)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    size_t i = 0;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)env, k, v)
    {
        size_t len = 0;
        /* a sealed value, or a runtime secret opened now for this run only */
        char *plain =
            aos_settings_env_value(k, v, sb->secrets, sb->env_open, sb->env_data, NULL, &len, err);
        if (!plain)
            return err->code;
        if (sb->on_unseal)
            sb->on_unseal(plain, sb->unseal_data);
        size_t n = strlen(k) + 1 + len + 1;
        char *kv = malloc(n);
        if (kv)
            snprintf(kv, n, "%s=%s", k, plain);
        aos_secret_wipe(plain);
        if (!kv)
            return aos_err_set(err, AOS_ENOMEM, NULL);
        r->env[i++] = kv;
    }
    snprintf(r->workspace, sizeof(r->workspace), "%s/runs/%s", sb->root, r->id);
    r->own_workspace = 1;
    return 0;
}

/* ---- the workspace (thread pool) --------------------------------------------- */

typedef struct {
    uv_work_t req;
    sb_run_t *r;
    char error[256];
} ws_work_t;

static int mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(buf, mode) && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(buf, mode) && errno != EEXIST ? -1 : 0;
}

/* Writes path (relative, checked) with content under the directory dfd:
 * the directories on the way made, nothing followed. */
static int write_file(int dfd, const char *path, const char *data, size_t len, int exec, int root)
{
    char buf[PATH_MAX];
    snprintf(buf, sizeof(buf), "%s", path);
    int cur = dup(dfd);
    if (cur < 0)
        return -1;
    char *seg = buf;
    for (char *slash; (slash = strchr(seg, '/')); seg = slash + 1) {
        *slash = '\0';
        if (mkdirat(cur, seg, 0755) != 0 && errno != EEXIST) {
            close(cur);
            return -1;
        }
        int next = openat(cur, seg, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (next >= 0 && root && fchownat(cur, seg, SB_UID, SB_UID, AT_SYMLINK_NOFOLLOW) != 0) {
            close(next);
            next = -1;
        }
        close(cur);
        if (next < 0)
            return -1;
        cur = next;
    }
    int fd =
        openat(cur, seg, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, exec ? 0755 : 0644);
    close(cur);
    if (fd < 0)
        return -1;
    size_t off = 0;
    while (off < len) {
        ssize_t w = write(fd, data + off, len - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            return -1;
        }
        off += (size_t)w;
    }
    int rc = root ? fchown(fd, SB_UID, SB_UID) : 0;
    return close(fd) == 0 && rc == 0 ? 0 : -1;
}

static void ws_make(uv_work_t *req)
{
    ws_work_t *w = req->data;
    sb_run_t *r = w->r;
    int root = geteuid() == 0;
    if (!r->own_workspace) { /* the caller's: it must be there */
        struct stat st;
        if (stat(r->workspace, &st) != 0 || !S_ISDIR(st.st_mode))
            snprintf(w->error, sizeof(w->error), "the workspace is not a directory");
        return;
    }
    char parent[PATH_MAX];
    snprintf(parent, sizeof(parent), "%s", r->workspace);
    *strrchr(parent, '/') = '\0';
    if (mkdirs(parent, 0700) != 0 || mkdir(r->workspace, 0700) != 0) {
        snprintf(w->error, sizeof(w->error), "unable to create the workspace: %s", strerror(errno));
        return;
    }
    if (root && chown(r->workspace, SB_UID, SB_UID) != 0) {
        snprintf(w->error, sizeof(w->error), "unable to give the workspace away: %s",
                 strerror(errno));
        return;
    }
    int dfd = open(r->workspace, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0) {
        snprintf(w->error, sizeof(w->error), "unable to open the workspace: %s", strerror(errno));
        return;
    }
    const char *entry = r->argv && r->argv[1] ? NULL : r->argv ? r->argv[0] : NULL;
    const char *k;
    json_t *v;
    json_object_foreach(r->files, k, v)
    {
        char full[PATH_MAX];
        snprintf(full, sizeof(full), "%s/%s", AOS_PROC_WORKDIR, k);
        int exec = entry && !strcmp(full, entry);
        if (write_file(dfd, k, json_string_value(v), json_string_length(v), exec, root) != 0) {
            snprintf(w->error, sizeof(w->error), "unable to write '%.100s': %s", k,
                     strerror(errno));
            break;
        }
    }
    close(dfd);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)f;
    /* what cannot be removed is left: the next removal tries again */
    if (flag == FTW_DP)
        (void)rmdir(path);
    else
        (void)unlink(path);
    return 0;
}

static void ws_remove(uv_work_t *req)
{
    ws_work_t *w = req->data;
    /* FTW_PHYS: a symlink a script left is removed, never followed */
    if (nftw(w->r->workspace, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0 && errno != ENOENT)
        snprintf(w->error, sizeof(w->error), "%s", strerror(errno));
}

/* ---- the end ------------------------------------------------------------------ */

static void run_unlink(sb_run_t *r)
{
    aos_sandbox_t *sb = r->sb;
    for (sb_run_t **pp = &sb->runs; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
}

static void ws_removed(uv_work_t *req, int status)
{
    ws_work_t *w = req->data;
    sb_run_t *r = w->r;
    aos_sandbox_t *sb = r->sb;
    if (w->error[0])
        aos_log(AOS_LOG_WARN, "sandbox", json_pack("{s:s}", "trace_id", r->trace_id),
                "run %s: removing its workspace failed: %s", r->id, w->error);
    free(w);
    sb_run_free(r);
    sb_unref(sb);
}

static void run_release(sb_run_t *r)
{
    run_unlink(r);
    aos_sandbox_t *sb = r->sb;
    if (r->own_workspace && r->started) {
        ws_work_t *w = calloc(1, sizeof(*w));
        if (w) {
            w->r = r;
            w->req.data = w;
            if (uv_queue_work(sb->loop, &w->req, ws_remove, ws_removed) == 0)
                return;
            free(w);
        }
    }
    sb_run_free(r);
    sb_unref(sb);
}

static json_t *usage_json(const aos_proc_exit_t *ex)
{
    if (!ex->has_usage)
        return NULL;
    return json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "user_us",
                     (json_int_t)ex->usage.user_us, "sys_us", (json_int_t)ex->usage.sys_us,
                     "max_rss_kb", (json_int_t)ex->usage.max_rss_kb, "minflt",
                     (json_int_t)ex->usage.minflt, "majflt", (json_int_t)ex->usage.majflt, "nvcsw",
                     (json_int_t)ex->usage.nvcsw, "nivcsw", (json_int_t)ex->usage.nivcsw);
}

/* The values of the run's environment (its secrets) in b become
 * "[REDACTED]": the run's row is read through the API. */
static void redact(const sb_run_t *r, aos_buf_t *b)
{
    for (size_t i = 0; r->env && r->env[i]; i++) {
        const char *v = strchr(r->env[i], '=');
        size_t vn = v ? strlen(++v) : 0;
        if (vn < 4 || !b->len)
            continue;
        aos_buf_t o;
        aos_buf_init(&o, 0);
        const char *p = b->ptr, *end = b->ptr + b->len, *hit;
        while ((hit = memmem(p, (size_t)(end - p), v, vn))) {
            aos_buf_append(&o, p, (size_t)(hit - p));
            aos_buf_append(&o, "[REDACTED]", 10);
            p = hit + vn;
        }
        if (p == b->ptr) {
            aos_buf_release(&o);
            continue;
        }
        aos_buf_append(&o, p, (size_t)(end - p));
        sodium_memzero(b->ptr, b->len);
        aos_buf_release(b);
        *b = o;
    }
}

/* Text fit for a JSON string: invalid bytes become U+FFFD. */
static char *scrub(const aos_buf_t *b)
{
    size_t cap = b->len * 3 + 1;
    char *s = malloc(cap);
    if (s)
        aos_utf8_scrub(s, cap, b->ptr ? b->ptr : "", b->len);
    return s;
}

typedef struct {
    sb_run_t *r;
    aos_store_sandbox_run_t row;
    char *usage, *out, *err;
} finish_job_t;

static int finish_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    finish_job_t *j = arg;
    return aos_store_sandbox_run_finish(st, &j->row, err);
}

static void finish_done(int status, const aos_err_t *err, void *arg)
{
    finish_job_t *j = arg;
    if (status)
        aos_log(AOS_LOG_ERROR, "sandbox", json_pack("{s:s}", "trace_id", j->r->trace_id),
                "run %s: its end was not stored: %s", j->r->id, aos_err_msg(err));
    free(j->usage);
    free(j->out);
    free(j->err);
    sb_run_t *r = j->r;
    free(j);
    run_release(r);
}

json_t *sb_run_json(const sb_run_t *r)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:s}", "id", r->id, "trace_id", r->trace_id, "status",
                          r->status, "actor", r->actor);
    if (o && r->script_id[0])
        json_object_set_new(o, "script_id", json_string(r->script_id));
    return o;
}

static void run_finish(sb_run_t *r)
{
    if (r->finished)
        return;
    r->finished = 1;
    aos_sandbox_t *sb = r->sb;
    if (r->started)
        sb->running--;
    const aos_proc_exit_t *ex = &r->ex;
    const char *status;
    if (r->error[0])
        status = "error";
    else if (r->canceled)
        status = "canceled";
    else if (ex->reason || ex->term_signal)
        status = "killed";
    else
        status = ex->exit_status == 0 ? "succeeded" : "failed";
    snprintf(r->status, sizeof(r->status), "%s", status);
    aos_metric_add(sb->m_runs, 1, status);
    if (r->started)
        aos_metric_observe(sb->m_duration, (double)ex->duration_ms / 1000.0);
    const char *reason = r->canceled && !r->error[0] ? "canceled" : ex->reason;
    aos_log(!strcmp(status, "succeeded") ? AOS_LOG_INFO : AOS_LOG_WARN, "sandbox",
            json_pack("{s:s, s:s}", "trace_id", r->trace_id, "run_id", r->id),
            "run %s %s (exit %lld, signal %d%s%s, %llu ms)%s%s", r->id, status,
            (long long)ex->exit_status, ex->term_signal, reason ? ", " : "", reason ? reason : "",
            (unsigned long long)ex->duration_ms, r->error[0] ? ": " : "", r->error);
    redact(r, &r->out);
    redact(r, &r->err);
    if (r->done) {
        sb_run_done_fn done = r->done;
        r->done = NULL;
        done(r, r->done_data);
    }
    finish_job_t *j = calloc(1, sizeof(*j));
    if (!j) {
        run_release(r);
        return;
    }
    j->r = r;
    json_t *u = usage_json(ex);
    j->usage = u ? json_dumps(u, JSON_COMPACT) : NULL;
    json_decref(u);
    j->out = scrub(&r->out);
    j->err = scrub(&r->err);
    j->row = (aos_store_sandbox_run_t){.id = r->id,
                                       .status = status,
                                       .has_exit = r->started && !ex->term_signal,
                                       .exit_code = ex->exit_status,
                                       .signal = ex->term_signal,
                                       .reason = reason,
                                       .usage = j->usage,
                                       .out = j->out,
                                       .errout = j->err,
                                       .error = r->error[0] ? r->error : NULL,
                                       .duration_ms = (int64_t)ex->duration_ms,
                                       .truncated = r->truncated,
                                       .landlock_abi = r->started ? ex->landlock_abi : -1};
    aos_err_t err = {0, ""};
    if ((err.code = aos_store_submit(sb->store, finish_job, finish_done, j)) != 0) {
        aos_log_error("sandbox", "run %s: its end was not stored: %s", r->id, aos_err_msg(&err));
        free(j->usage);
        free(j->out);
        free(j->err);
        free(j);
        run_release(r);
    }
}

/* ---- the child ----------------------------------------------------------------- */

static void keep(sb_run_t *r, aos_buf_t *b, const char *s, size_t n, int line)
{
    size_t cap = (size_t)r->caps.output_kb * 1024;
    size_t room = b->len < cap ? cap - b->len : 0;
    if (n + (size_t)line > room) {
        r->truncated = 1;
        if (room)
            aos_buf_append(b, s, room < n ? room : n);
        return;
    }
    aos_buf_append(b, s, n);
    if (line)
        aos_buf_append(b, "\n", 1);
}

static void on_stdout(aos_proc_t *p, const char *buf, size_t n, void *data)
{
    sb_run_t *r = data;
    keep(r, &r->out, buf, n, 0);
}

static void on_stderr(aos_proc_t *p, const char *line, size_t n, void *data)
{
    sb_run_t *r = data;
    keep(r, &r->err, line, n, 1);
}

static void run_on_exit(aos_proc_t *p, const aos_proc_exit_t *ex, void *data)
{
    sb_run_t *r = data;
    r->proc = NULL;
    r->ex = *ex;
    /* no report from the helper, and nobody ended it: the sandbox itself
     * failed (bubblewrap's message is on stderr) */
    if (!ex->has_usage && !ex->reason && !r->canceled)
        snprintf(r->error, sizeof(r->error), "the sandbox did not start: %.*s",
                 r->err.len ? (int)(r->err.len < 200 ? r->err.len : 200) : 10,
                 r->err.len ? r->err.ptr : "no message");
    run_finish(r);
}

static void run_spawn(sb_run_t *r)
{
    aos_sandbox_t *sb = r->sb;
    aos_proc_sandbox_t box = {.bwrap = sb->bwrap,
                              .helper = sb->helper,
                              .workspace = r->workspace,
                              .network = r->caps.network,
                              .limits = r->caps.limits};
    json_t *fields = json_pack("{s:s, s:s}", "trace_id", r->trace_id, "run_id", r->id);
    if (fields && r->script_id[0])
        json_object_set_new(fields, "script_id", json_string(r->script_id));
    aos_proc_opts_t o = {.file = r->argv[0],
                         .argv = r->argv,
                         .env = r->env,
                         .stdout_lines = 1,
                         .component = "sandbox",
                         .log_fields = fields,
                         .timeout_ms = r->caps.timeout_ms,
                         .sandbox = &box,
                         .on_stdout = on_stdout,
                         .on_stderr = on_stderr,
                         .on_exit = run_on_exit,
                         .data = r};
    aos_err_t err = {0, ""};
    int rc = aos_proc_spawn(sb->loop, &o, &r->proc, &err);
    json_decref(fields);
    if (rc) {
        snprintf(r->error, sizeof(r->error), "%s", aos_err_msg(&err));
        run_finish(r);
        return;
    }
    snprintf(r->status, sizeof(r->status), "running");
    aos_log(AOS_LOG_INFO, "sandbox",
            json_pack("{s:s, s:s}", "trace_id", r->trace_id, "run_id", r->id),
            "run %s started (pid %d)", r->id, aos_proc_pid(r->proc));
}

static void ws_made(uv_work_t *req, int status)
{
    ws_work_t *w = req->data;
    sb_run_t *r = w->r;
    if (w->error[0])
        snprintf(r->error, sizeof(r->error), "%s", w->error);
    free(w);
    if (r->error[0] || r->canceled || r->sb->closing) {
        if (!r->error[0] && r->sb->closing)
            snprintf(r->error, sizeof(r->error), "aosd is shutting down");
        run_finish(r);
        return;
    }
    run_spawn(r);
}

/* The row is stored: make the workspace, then run. */
static void run_prepare(sb_run_t *r)
{
    aos_sandbox_t *sb = r->sb;
    r->started = 1;
    sb->running++;
    ws_work_t *w = calloc(1, sizeof(*w));
    if (!w) {
        snprintf(r->error, sizeof(r->error), "out of memory");
        run_finish(r);
        return;
    }
    w->r = r;
    w->req.data = w;
    if (uv_queue_work(sb->loop, &w->req, ws_make, ws_made) != 0) {
        free(w);
        snprintf(r->error, sizeof(r->error), "unable to queue the workspace");
        run_finish(r);
    }
}

/* ---- submit ---------------------------------------------------------------------- */

typedef struct {
    sb_run_t *r;
    json_t *script; /* loaded by the job for a script's run */
    void (*cb)(sb_run_t *r, int status, const aos_err_t *err, void *data);
    void *data;
} submit_job_t;

static int submit_job(aos_store_t *st, void *arg, aos_err_t *err)
{
    submit_job_t *j = arg;
    sb_run_t *r = j->r;
    int rc;
    if (r->script_id[0] && !r->argv &&
        (rc = aos_store_sandbox_script_get(st, r->script_id, &j->script, err)))
        return rc;
    aos_store_sandbox_run_t row = {.id = r->id,
                                   .script_id = r->script_id[0] ? r->script_id : NULL,
                                   .trace_id = r->trace_id,
                                   .status = "running",
                                   .actor = r->actor};
    if ((rc = aos_store_sandbox_run_insert(st, &row, err)))
        return rc;
    char res[64];
    snprintf(res, sizeof(res), "sandbox:%s", r->script_id[0] ? r->script_id : "shell");
    json_t *diff = json_pack("{s:s, s:s}", "run_id", r->id, "trace_id", r->trace_id);
    rc = aos_store_audit_append(
        st, r->actor, r->scheduled ? "sandbox.run.scheduled" : "sandbox.run", res, diff, err);
    json_decref(diff);
    return rc;
}

static void submit_done(int status, const aos_err_t *err, void *arg)
{
    submit_job_t *j = arg;
    sb_run_t *r = j->r;
    aos_sandbox_t *sb = r->sb;
    aos_err_t e2 = {0, ""};
    if (status == 0 && j->script && sb_run_from_script(r, j->script, &e2) != 0)
        snprintf(r->error, sizeof(r->error), "%s", aos_err_msg(&e2));
    json_decref(j->script);
    if (j->cb)
        j->cb(r, status, err, j->data);
    free(j);
    if (status != 0) { /* no row: nothing to finish */
        sb_run_free(r);
        sb_unref(sb);
        return;
    }
    r->next = sb->runs;
    sb->runs = r;
    snprintf(r->status, sizeof(r->status), "running");
    if (r->error[0] || sb->closing) {
        if (!r->error[0])
            snprintf(r->error, sizeof(r->error), "aosd is shutting down");
        run_finish(r);
        return;
    }
    run_prepare(r);
}

int sb_run_submit(sb_run_t *r,
                  void (*cb)(sb_run_t *r, int status, const aos_err_t *err, void *data), void *data,
                  aos_err_t *err)
{
    aos_sandbox_t *sb = r->sb;
    submit_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    j->r = r;
    j->cb = cb;
    j->data = data;
    sb->pending++;
    int rc = aos_store_submit(sb->store, submit_job, submit_done, j);
    if (rc) {
        aos_err_set(err, rc, "the store takes no more work");
        sb->pending--;
        free(j);
    }
    return rc;
}

void sb_run_cancel(sb_run_t *r)
{
    r->canceled = 1;
    if (r->proc)
        aos_proc_kill(r->proc, "canceled");
}

/* ---- schedules ----------------------------------------------------------------------- */

static void sched_closed(uv_handle_t *h)
{
    sb_sched_t *s = h->data;
    aos_sandbox_t *sb = s->sb;
    free(s);
    sb_unref(sb);
}

static void sched_started(sb_run_t *r, int status, const aos_err_t *err, void *data)
{
    if (status)
        aos_log_warn("sandbox", "scheduled run of %s not started: %s", r->script_id,
                     aos_err_msg(err));
}

static void on_sched(uv_timer_t *t);

/* A schedule on cron: the timer for its next time after now (wall clock:
 * the loop's own clock does not follow the calendar). */
static void sched_arm_cron(sb_sched_t *s)
{
    int64_t now = aos_isotime_now_ms(), next = aos_cron_next(&s->cron, now);
    if (next < 0) {
        aos_log_warn("sandbox", "script %s: its cron expression never fires again", s->script_id);
        return;
    }
    uv_timer_start(&s->timer, on_sched, (uint64_t)(next - now), 0);
}

static void on_sched(uv_timer_t *t)
{
    sb_sched_t *s = t->data;
    aos_sandbox_t *sb = s->sb;
    if (!s->every_ms)
        sched_arm_cron(s);
    for (sb_run_t *r = sb->runs; r; r = r->next)
        if (r->scheduled && !r->finished && !strcmp(r->script_id, s->script_id)) {
            aos_log_info("sandbox", "script %s: the previous scheduled run still runs, skipped",
                         s->script_id);
            return;
        }
    aos_err_t err = {0, ""};
    if (sb_refuse(sb, &err)) {
        aos_log_warn("sandbox", "scheduled run of %s not started: %s", s->script_id,
                     aos_err_msg(&err));
        return;
    }
    sb_run_t *r = sb_run_new(sb, "schedule");
    if (!r)
        return;
    snprintf(r->script_id, sizeof(r->script_id), "%s", s->script_id);
    r->scheduled = 1;
    if (sb_run_submit(r, sched_started, NULL, &err)) {
        aos_log_warn("sandbox", "scheduled run of %s not started: %s", s->script_id,
                     aos_err_msg(&err));
        sb_run_free(r);
    }
}

void sb_sched_set(aos_sandbox_t *sb, const char *script_id, int64_t every_ms, const char *cron)
{
    aos_cron_t parsed;
    aos_err_t err = {0, ""};
    if (cron && aos_cron_parse(cron, &parsed, &err)) {
        aos_log_warn("sandbox", "script %s: schedule_cron: %s", script_id, aos_err_msg(&err));
        cron = NULL;
    }
    if (cron)
        every_ms = 0;
    else if (every_ms <= 0)
        every_ms = -1; /* no schedule */
    sb_sched_t **pp = &sb->scheds, *s = NULL;
    for (; *pp; pp = &(*pp)->next)
        if (!strcmp((*pp)->script_id, script_id)) {
            s = *pp;
            break;
        }
    if (s && (every_ms < 0 || sb->closing)) {
        *pp = s->next;
        uv_close((uv_handle_t *)&s->timer, sched_closed);
        return;
    }
    if (every_ms < 0 || sb->closing)
        return;
    if (!s) {
        if (!(s = calloc(1, sizeof(*s))))
            return;
        s->sb = sb;
        snprintf(s->script_id, sizeof(s->script_id), "%s", script_id);
        uv_timer_init(sb->loop, &s->timer);
        s->timer.data = s;
        s->next = sb->scheds;
        sb->scheds = s;
        sb->pending++;
    }
    s->every_ms = (uint64_t)every_ms;
    if (cron) {
        s->cron = parsed;
        sched_arm_cron(s);
    } else {
        uv_timer_start(&s->timer, on_sched, s->every_ms, s->every_ms);
    }
}
