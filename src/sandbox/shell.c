/* shell.c - the built-in server "shell": its tool "run" runs a command
 * with /bin/sh -c in the sandbox, in the caller's workspace when its caps
 * name one ({"workspace": "<dir>"}), else in a workspace of its own that
 * is removed after the call. caps {"shell": false} refuses the tool;
 * {"network": true} gives the command the host's network. The answer is
 * the command's stdout as text, and {exit_code, signal, reason, stdout,
 * stderr, duration_ms, run_id, trace_id} as structuredContent; isError
 * when it did not exit 0. Each call is a row of sandbox_runs. The
 * secrets granted to the call (a task's TaskSpec env, opened by the
 * orchestrator) are the command's environment, and their values are
 * replaced by "[REDACTED]" in its output and record. */
#include "sandbox/internal.h"

#include <stdio.h>
#include <errno.h>
#include <unistd.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sodium.h>
#include <string.h>

#include "utf8/utf8.h"

#define SHELL_MAX_COMMAND (64u * 1024)

static json_t *shell_tools(void *data)
{
    return json_pack(
        "[{s:s, s:s, s:{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s, s:i, s:i}}, s:[s]}, s:{s:b, s:b}}]",
        "name", "run", "description",
        "Runs a shell command (/bin/sh -c) in the sandbox: no network unless the caller's caps "
        "allow it, the caller's workspace at /workspace, limited CPU, memory, processes and time",
        "inputSchema", "type", "object", "properties", "command", "type", "string", "description",
        "the command line", "timeout_ms", "type", "integer", "description", "wall-clock limit (ms)",
        "minimum", 100, "maximum", 3600000, "required", "command", "annotations", "readOnlyHint", 0,
        "destructiveHint", 1);
}

typedef struct {
    aos_builtin_done_fn done;
    void *ctx;
} shell_call_t;

static json_t *text_of(const aos_buf_t *b)
{
    size_t cap = b->len * 3 + 1;
    char *s = malloc(cap);
    if (!s)
        return json_string("");
    size_t n = aos_utf8_scrub(s, cap, b->ptr ? b->ptr : "", b->len);
    json_t *j = json_stringn(s, n);
    free(s);
    return j ? j : json_string("");
}

static void shell_finished(sb_run_t *r, void *data)
{
    shell_call_t *c = data;
    const aos_proc_exit_t *ex = &r->ex;
    if (r->error[0] && !r->started) {
        aos_err_t err;
        aos_err_set(&err, AOS_EUNAVAIL, "%s", r->error);
        c->done(c->ctx, NULL, &err);
        free(c);
        return;
    }
    json_t *sc = json_pack("{s:s, s:s, s:s, s:o, s:o, s:I}", "run_id", r->id, "trace_id",
                           r->trace_id, "status", r->status, "stdout", text_of(&r->out), "stderr",
                           text_of(&r->err), "duration_ms", (json_int_t)ex->duration_ms);
    if (ex->term_signal)
        json_object_set_new(sc, "signal", json_integer(ex->term_signal));
    else if (!r->error[0])
        json_object_set_new(sc, "exit_code", json_integer(ex->exit_status));
    const char *reason = r->canceled ? "canceled" : ex->reason;
    if (reason)
        json_object_set_new(sc, "reason", json_string(reason));
    if (r->error[0])
        json_object_set_new(sc, "error", json_string(r->error));
    if (r->truncated)
        json_object_set_new(sc, "truncated", json_true());
    int failed = strcmp(r->status, "succeeded") != 0;
    json_t *text = json_incref(json_object_get(sc, "stdout"));
    if (failed) {
        json_decref(text);
        text =
            json_sprintf("%s (exit %lld, signal %d%s%s)%s%s", r->status, (long long)ex->exit_status,
                         ex->term_signal, reason ? ", " : "", reason ? reason : "",
                         r->err.len ? ": " : "", json_string_value(json_object_get(sc, "stderr")));
    }
    json_t *res =
        json_pack("{s:[{s:s, s:o}], s:o, s:b}", "content", "type", "text", "text",
                  text ? text : json_string(""), "structuredContent", sc, "isError", failed);
    c->done(c->ctx, res, NULL);
    free(c);
}

static void shell_submitted(sb_run_t *r, int status, const aos_err_t *err, void *data)
{
    shell_call_t *c = data;
    if (status) { /* no row: finished never runs */
        r->done = NULL;
        c->done(c->ctx, NULL, err);
        free(c);
    }
}

/* The secrets granted to the call ({"NAME": "value"}: a task's TaskSpec
 * env) as "NAME=value" strings for the run's environment, NULL-terminated;
 * the run wipes them when it is freed. NULL when out of memory. */
static char **env_of(const json_t *env)
{
    char **v = calloc(json_object_size(env) + 1, sizeof(char *));
    if (!v)
        return NULL;
    size_t i = 0;
    const char *k;
    json_t *val;
    json_object_foreach((json_t *)env, k, val)
    {
        if (!json_is_string(val))
            continue;
        size_t n = strlen(k) + 1 + json_string_length(val) + 1;
        if (!(v[i] = malloc(n))) {
            for (size_t j = 0; j < i; j++) {
                sodium_memzero(v[j], strlen(v[j]));
                free(v[j]);
            }
            free(v);
            return NULL;
        }
        snprintf(v[i++], n, "%s=%s", k, json_string_value(val));
    }
    return v;
}

/* The caller's workspace, for a command that runs as SB_UID (aosd is
 * root): owned by SB_UID so the command may create, replace and remove
 * files there (files aosd wrote stay root's: readable, not writable in
 * place). Its parents were opened for crossing at start
 * (aos_sandbox_share_workspaces). Not a symlink. */
static int share_workspace(const char *ws, aos_err_t *err)
{
    if (geteuid() != 0)
        return 0;
    int fd = open(ws, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || (st.st_uid != SB_UID && fchown(fd, SB_UID, SB_UID) != 0)) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return aos_err_set(err, AOS_EIO, "unable to give the sandbox the workspace: %s",
                           strerror(e));
    }
    close(fd);
    return 0;
}

static int shell_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                      aos_builtin_done_fn done, void *ctx)
{
    aos_sandbox_t *sb = data;
    aos_err_t err = {0, ""};
    if (strcmp(tool, "run") != 0) {
        aos_err_set(&err, AOS_ENOTFOUND, "server 'shell' has no tool '%.100s'", tool);
        done(ctx, NULL, &err);
        return 0;
    }
    const json_t *caps = caller ? caller->caps : NULL;
    if (json_is_false(json_object_get(caps, "shell"))) {
        aos_err_set(&err, AOS_EFORBIDDEN, "the caller's caps do not allow the shell");
        done(ctx, NULL, &err);
        return 0;
    }
    const json_t *cmd = json_object_get(args, "command");
    const json_t *tmo = json_object_get(args, "timeout_ms");
    if (!json_is_string(cmd) || json_string_length(cmd) == 0 ||
        json_string_length(cmd) > SHELL_MAX_COMMAND ||
        memchr(json_string_value(cmd), '\0', json_string_length(cmd))) {
        aos_err_set(&err, AOS_EINVAL, "run needs a string 'command' of 1 to %u bytes",
                    SHELL_MAX_COMMAND);
        done(ctx, NULL, &err);
        return 0;
    }
    if (tmo && (!json_is_integer(tmo) || json_integer_value(tmo) < 100 ||
                json_integer_value(tmo) > 3600000)) {
        aos_err_set(&err, AOS_EINVAL, "timeout_ms must be an integer from 100 to 3600000");
        done(ctx, NULL, &err);
        return 0;
    }
    const json_t *ws = json_object_get(caps, "workspace");
    if (ws && (!json_is_string(ws) || json_string_value(ws)[0] != '/')) {
        aos_err_set(&err, AOS_EINVAL, "caps.workspace must be an absolute directory");
        done(ctx, NULL, &err);
        return 0;
    }
    if (sb_refuse(sb, &err) || (ws && share_workspace(json_string_value(ws), &err))) {
        done(ctx, NULL, &err);
        return 0;
    }
    sb_run_t *r = sb_run_new(sb, caller && caller->principal ? caller->principal : "mcp");
    shell_call_t *c = calloc(1, sizeof(*c));
    if (!r || !c) {
        sb_run_free(r);
        free(c);
        return AOS_ENOMEM;
    }
    sb_caps_parse(NULL, &r->caps, &err); /* the defaults */
    r->caps.network = json_is_true(json_object_get(caps, "network"));
    if (tmo)
        r->caps.timeout_ms = (uint32_t)json_integer_value(tmo);
    r->argv = calloc(4, sizeof(char *));
    r->env = env_of(caller ? caller->env : NULL);
    if (!r->argv || !r->env || !(r->argv[0] = strdup("/bin/sh")) || !(r->argv[1] = strdup("-c")) ||
        !(r->argv[2] = strdup(json_string_value(cmd)))) {
        sb_run_free(r);
        free(c);
        return AOS_ENOMEM;
    }
    if (ws) {
        snprintf(r->workspace, sizeof(r->workspace), "%s", json_string_value(ws));
    } else {
        snprintf(r->workspace, sizeof(r->workspace), "%s/runs/%s", sb->root, r->id);
        r->own_workspace = 1;
        r->files = json_object();
    }
    c->done = done;
    c->ctx = ctx;
    r->done = shell_finished;
    r->done_data = c;
    if (sb_run_submit(r, shell_submitted, c, &err)) {
        sb_run_free(r);
        free(c);
        return err.code ? err.code : AOS_EINTERNAL;
    }
    return 0;
}

void sb_shell_init(aos_sandbox_t *sb)
{
    sb->shell =
        (aos_builtin_t){"shell", "a command run in aosd's sandbox", shell_tools, shell_call, sb};
}

const aos_builtin_t *aos_sandbox_shell_builtin(aos_sandbox_t *sb)
{
    return &sb->shell;
}
