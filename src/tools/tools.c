/* tools.c - what the tool servers share: the job that runs a call on the
 * thread pool and answers on the loop, the idempotency records of keyed
 * writes, tool definitions and results, argument helpers and durable file
 * replacement.
 *
 * Idempotency: a write called with an idempotency key leaves a record in
 * <workspace>/.aos/idem/<sha256(principal, tool, key)>: the hash of its
 * arguments and its answer. A repeat with the same key and arguments gets
 * that answer and changes nothing; with other arguments it is refused
 * (the key names one logical call). The records are files, not rows of the
 * store, because they belong to the workspace: written durably next to the
 * change (fsync), they survive a restart - the orchestrator re-runs a step
 * it did not see finish with the same key - and go when the workspace
 * goes. A write that may not be repeated blindly (append) records that it
 * is about to start first (aos__tools_pending), so that a repeat after a
 * crash in between can put the file back and apply it once. One mutex
 * serialises keyed writes (look up, apply, record) so two concurrent
 * repeats cannot both apply. */
#include "tools/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log/log.h"

int aos_tools_new(aos_tools_t **out, const aos_tools_cfg_t *cfg, aos_err_t *err)
{
    aos_tools_t *t = calloc(1, sizeof(*t));
    if (!t || !(t->data_dir = strdup(cfg->data_dir ? cfg->data_dir : ""))) {
        free(t);
        return aos_err_set(err, AOS_ENOMEM, NULL);
    }
    if (sodium_init() < 0) {
        free(t->data_dir);
        free(t);
        return aos_err_set(err, AOS_EINTERNAL, "libsodium failed to start");
    }
    t->loop = cfg->loop;
    pthread_mutex_init(&t->idem, NULL);
    aos__tools_files_init(t);
    aos__tools_db_init(t);
    aos__tools_csv_init(t);
    aos__tools_viz_init(t);
    *out = t;
    return 0;
}

void aos_tools_free(aos_tools_t *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->idem);
    free(t->data_dir);
    free(t);
}

const aos_builtin_t *aos_tools_files(aos_tools_t *t)
{
    return &t->files;
}

const aos_builtin_t *aos_tools_db(aos_tools_t *t)
{
    return &t->db;
}

const aos_builtin_t *aos_tools_csv(aos_tools_t *t)
{
    return &t->csv;
}

const aos_builtin_t *aos_tools_viz(aos_tools_t *t)
{
    return &t->viz;
}

/* ---- definitions, results, arguments ------------------------------------------------- */

json_t *aos__tools_def(const char *name, const char *description, json_t *input, json_t *output,
                       int read_only, int destructive, int idempotent)
{
    return json_pack("{s:s, s:s, s:o, s:o, s:{s:b, s:b, s:b, s:b}}", "name", name, "description",
                     description, "inputSchema", input, "outputSchema", output, "annotations",
                     "readOnlyHint", read_only, "destructiveHint", destructive, "idempotentHint",
                     idempotent, "openWorldHint", 0);
}

json_t *aos__tools_error(const char *message)
{
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", message, "isError",
                     1);
}

const char *aos__tools_str(const json_t *args, const char *key, const char *def)
{
    const json_t *v = json_object_get(args, key);
    return json_is_string(v) ? json_string_value(v) : def;
}

long long aos__tools_int(const json_t *args, const char *key, long long def)
{
    const json_t *v = json_object_get(args, key);
    return json_is_integer(v) ? (long long)json_integer_value(v) : def;
}

int aos__tools_bool(const json_t *args, const char *key, int def)
{
    const json_t *v = json_object_get(args, key);
    return json_is_boolean(v) ? json_is_true(v) : def;
}

const char *aos__tools_path(const json_t *args, const char *key, aos_err_t *err)
{
    const json_t *v = json_object_get(args, key);
    if (!json_is_string(v)) {
        aos_err_set(err, AOS_EINVAL, "'%s' must be a path relative to the workspace", key);
        return NULL;
    }
    if (aos_tools_ws_check(json_string_value(v), json_string_length(v), err))
        return NULL;
    return json_string_value(v);
}

int aos__tools_tmpfile(int root, const char *rel, int *dirfd, char **tmpname, aos_err_t *err)
{
    const char *name;
    int dir = aos_tools_ws_parent(root, rel, 1, &name, err);
    if (dir < 0)
        return dir;
    char tmp[64];
    for (int i = 0; i < 16; i++) {
        snprintf(tmp, sizeof(tmp), ".aos-tmp-%08x%08x", randombytes_random(), randombytes_random());
        int fd = openat(dir, tmp, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
        if (fd >= 0) {
            if (!(*tmpname = strdup(tmp))) {
                unlinkat(dir, tmp, 0);
                close(fd);
                close(dir);
                return aos_err_set(err, AOS_ENOMEM, NULL);
            }
            *dirfd = dir;
            return fd;
        }
        if (errno != EEXIST)
            break;
    }
    int rc = aos_err_set(err, AOS_EIO, "unable to write beside '%.200s': %s", rel, strerror(errno));
    close(dir);
    return rc;
}

int aos__tools_commit(int dirfd, const char *tmpname, const char *name, int fd, aos_err_t *err)
{
    if (!tmpname || !name)
        return aos_err_set(err, AOS_EINVAL, "no file to store");
    if (fsync(fd) != 0 || renameat(dirfd, tmpname, dirfd, name) != 0 || fsync(dirfd) != 0) {
        int e = errno;
        unlinkat(dirfd, tmpname, 0);
        return aos_err_set(err, AOS_EIO, "unable to store '%.200s': %s", name, strerror(e));
    }
    return 0;
}

/* ---- idempotency records ----------------------------------------------------------------- */

static void hex(const unsigned char *h, size_t n, char *out)
{
    static const char d[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = d[h[i] >> 4];
        out[2 * i + 1] = d[h[i] & 15];
    }
    out[2 * n] = '\0';
}

static void record_name(const tools_job_t *j, char *out /* 80 */)
{
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    const char *parts[] = {j->principal ? j->principal : "", j->name, j->key};
    for (size_t i = 0; i < 3; i++)
        crypto_hash_sha256_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_hash_sha256_final(&st, h);
    memcpy(out, ".aos/idem/", 10);
    hex(h, sizeof(h), out + 10);
}

static void args_hash(const json_t *args, char *out /* 65 */)
{
    unsigned char h[crypto_hash_sha256_BYTES];
    char *s = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
    crypto_hash_sha256(h, (const unsigned char *)(s ? s : ""), s ? strlen(s) : 0);
    free(s);
    hex(h, sizeof(h), out);
}

static json_t *record_read(int root, const char *rel)
{
    aos_err_t e;
    int fd = aos_tools_ws_open(root, rel, O_RDONLY, 0, 0, &e);
    if (fd < 0)
        return NULL;
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return NULL;
    }
    json_t *rec = json_loadf(f, 0, NULL);
    fclose(f);
    return rec;
}

/* Replaces the record durably (temporary file, fsync, rename, fsync dir). */
static int record_write(int root, const char *rel, const json_t *rec, aos_err_t *err)
{
    int dir = -1;
    char *tmp = NULL;
    int fd = aos__tools_tmpfile(root, rel, &dir, &tmp, err);
    if (fd < 0)
        return fd;
    char *s = json_dumps(rec, JSON_COMPACT);
    size_t n = s ? strlen(s) : 0, off = 0;
    int rc = s ? 0 : aos_err_set(err, AOS_ENOMEM, NULL);
    while (!rc && off < n) {
        ssize_t w = write(fd, s + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = aos_err_set(err, AOS_EIO, "unable to write the idempotency record: %s",
                             strerror(errno));
        else
            off += (size_t)w;
    }
    free(s);
    if (!rc)
        rc = aos__tools_commit(dir, tmp, strrchr(rel, '/') + 1, fd, err);
    else if (tmp)
        unlinkat(dir, tmp, 0);
    close(fd);
    close(dir);
    free(tmp);
    return rc;
}

int aos__tools_pending(tools_job_t *j, const json_t *info, aos_err_t *err)
{
    if (!j->key)
        return 0;
    char rel[80], ah[65];
    record_name(j, rel);
    args_hash(j->args, ah);
    json_t *rec = json_pack("{s:s, s:s, s:O}", "args", ah, "state", "pending", "info", info);
    int rc = rec ? record_write(j->root, rel, rec, err) : aos_err_set(err, AOS_ENOMEM, NULL);
    json_decref(rec);
    return rc;
}

/* ---- jobs ----------------------------------------------------------------------------------- */

static void keyed_run(tools_job_t *j)
{
    char rel[80], ah[65];
    record_name(j, rel);
    args_hash(j->args, ah);
    pthread_mutex_lock(&j->t->idem);
    json_t *rec = record_read(j->root, rel);
    const char *state = json_string_value(json_object_get(rec, "state"));
    if (rec && strcmp(json_string_value(json_object_get(rec, "args")) ?: "", ah) != 0) {
        aos_err_set(&j->err, AOS_ECONFLICT,
                    "the idempotency key was used before for a call with other arguments");
    } else if (state && !strcmp(state, "done")) {
        j->result = json_deep_copy(json_object_get(rec, "result"));
        if (!j->result)
            aos_err_set(&j->err, AOS_ENOMEM, NULL);
    } else {
        if (state && !strcmp(state, "pending"))
            j->pending = json_incref(json_object_get(rec, "info"));
        j->result = j->run(j, &j->err);
        if (j->result) {
            aos_err_t e = {0, ""};
            json_t *done =
                json_pack("{s:s, s:s, s:O}", "args", ah, "state", "done", "result", j->result);
            if (!done || record_write(j->root, rel, done, &e))
                aos_log_warn("tools", "%s: the idempotency record was not stored: %s", j->name,
                             done ? aos_err_msg(&e) : "out of memory");
            json_decref(done);
        }
    }
    pthread_mutex_unlock(&j->t->idem);
    json_decref(rec);
}

static void job_work(uv_work_t *w)
{
    tools_job_t *j = w->data;
    j->root = aos_tools_ws_root(j->ws, &j->err);
    if (j->root < 0)
        return;
    if ((j->flags & TOOLS_WRITE) && j->key)
        keyed_run(j);
    else
        j->result = j->run(j, &j->err);
    close(j->root);
    j->root = -1;
}

static void job_free(tools_job_t *j)
{
    json_decref(j->args);
    json_decref(j->result);
    json_decref(j->pending);
    free(j->ws);
    free(j->principal);
    free(j->key);
    free(j->text);
    free(j);
}

static void job_done(uv_work_t *w, int status);

/* Starts waiting jobs while fewer than TOOLS_RUNNING run. A job that
 * cannot be queued is answered with an error. */
static void start_waiting(aos_tools_t *t)
{
    while (t->running < TOOLS_RUNNING && t->wait_head) {
        tools_job_t *j = t->wait_head;
        t->wait_head = j->next;
        if (!t->wait_head)
            t->wait_tail = NULL;
        j->next = NULL;
        t->running++;
        if (uv_queue_work(t->loop, &j->work, job_work, job_done) != 0) {
            aos_err_set(&j->err, AOS_EINTERNAL, "unable to start the job");
            job_done(&j->work, 0);
        }
    }
}

static void job_done(uv_work_t *w, int status)
{
    tools_job_t *j = w->data;
    aos_tools_t *t = j->t;
    json_t *res = NULL;
    if (j->result) {
        char *text = j->text ? j->text : json_dumps(j->result, JSON_COMPACT);
        j->text = NULL;
        if (text)
            res = json_pack("{s:[{s:s, s:s}], s:O}", "content", "type", "text", "text", text,
                            "structuredContent", j->result);
        free(text);
    } else {
        char msg[sizeof(j->err.msg) + 64];
        snprintf(msg, sizeof(msg), "%s: %s", j->name,
                 status == UV_ECANCELED ? "cancelled" : aos_err_msg(&j->err));
        res = aos__tools_error(msg);
    }
    if (res) {
        j->done(j->ctx, res, NULL);
    } else {
        aos_err_t e = {0, ""};
        aos_err_set(&e, AOS_ENOMEM, NULL);
        j->done(j->ctx, NULL, &e);
    }
    job_free(j);
    t->running--;
    start_waiting(t);
}

int aos__tools_submit(aos_tools_t *t, const aos_caller_t *caller, const char *server,
                      const char *tool, const json_t *args, int flags, tools_run_fn run,
                      aos_builtin_done_fn done, void *ctx)
{
    tools_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return AOS_ENOMEM;
    j->t = t;
    j->root = -1;
    snprintf(j->name, sizeof(j->name), "%s__%s", server, tool);
    j->args = json_deep_copy(args ? args : json_null());
    j->principal = strdup(caller && caller->principal ? caller->principal : "");
    if (caller && caller->idempotency_key && *caller->idempotency_key)
        j->key = strdup(caller->idempotency_key);
    j->flags = flags;
    j->run = run;
    j->done = done;
    j->ctx = ctx;
    j->work.data = j;
    aos_err_t err = {0, ""};
    j->ws = aos_tools_ws_dir(t->data_dir, caller, &err);
    if (!j->ws) {
        if (err.code == AOS_ENOMEM) {
            job_free(j);
            return AOS_ENOMEM;
        }
        char msg[sizeof(err.msg) + 64];
        snprintf(msg, sizeof(msg), "%s: %s", j->name, aos_err_msg(&err));
        job_free(j);
        done(ctx, aos__tools_error(msg), NULL);
        return 0;
    }
    if (!j->args || !j->principal || (caller && caller->idempotency_key && !j->key)) {
        job_free(j);
        return AOS_ENOMEM;
    }
    if (t->wait_tail)
        t->wait_tail->next = j;
    else
        t->wait_head = j;
    t->wait_tail = j;
    start_waiting(t);
    return 0;
}
