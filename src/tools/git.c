/* git.c - the built-in MCP server "git": init, status, diff, log, add,
 * commit, branch and checkout on a repository inside the caller's
 * workspace, with libgit2; see net.h.
 *
 * A call copies its arguments and the workspace (caps "workspace") and runs
 * on the libuv thread pool (one libgit2 repository object per call, which
 * is libgit2's threading rule); the CallToolResult is handed to done on the
 * loop.
 *
 * Confinement: "path" (the repository, default ".") is relative to the
 * workspace, without "..", and its real path (symbolic links resolved) must
 * lie inside the workspace's; the repository is opened with
 * GIT_REPOSITORY_OPEN_NO_SEARCH (never a parent directory's repository),
 * and its git directory, common directory and work tree (which a .git file
 * or core.worktree could point elsewhere) must lie inside too. Paths given
 * to add and diff are pathspecs relative to the repository: absolute ones
 * and ".." are refused; libgit2 then only ever looks at the work tree.
 *
 * What cannot run: libgit2 runs no hooks (it has no hook support at all,
 * by design: libgit2/libgit2#964; tests/e2e/nettools.test.mjs checks it)
 * and no external filter drivers (only filters registered in-process, of
 * which aosd registers none); these tools have no clone, fetch, push or
 * remote operation, so nothing here opens a network connection. The global,
 * XDG and system git configuration files are not read (search paths set to
 * empty at start), so only the repository's own configuration applies.
 *
 * Idempotency: commit with an idempotency key writes the key as a trailer
 * ("Aos-Idempotency-Key: <key>") in the commit message - atomically with the
 * commit itself. A repeat finds it among the newest 1000 commits of HEAD and
 * returns that commit (replayed: true) instead of committing again. The
 * other writes are idempotent by nature (add, init of an existing
 * repository, checkout of the current ref). */
#include "tools/net.h"

#include <errno.h>
#include <git2.h>
#include <limits.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GIT_PATCH_MAX  (1024 * 1024)
#define GIT_LOG_MAX    1000
#define GIT_KEY_SCAN   1000
#define GIT_STATUS_MAX 10000
#define GIT_TRAILER    "Aos-Idempotency-Key: "

struct aos_tools_git_s {
    aos_builtin_t builtin;
    uv_loop_t *loop;
};

enum git_op { OP_INIT, OP_STATUS, OP_DIFF, OP_LOG, OP_ADD, OP_COMMIT, OP_BRANCH, OP_CHECKOUT };

typedef struct {
    uv_work_t work;
    aos_builtin_done_fn done;
    void *ctx;
    enum git_op op;
    json_t *args;
    char *workspace;
    char *key;
    json_t *result;
    /* worker state */
    char ws_real[PATH_MAX];
    char repo_path[PATH_MAX];
    git_repository *repo;
} git_job_t;

static json_t *tool_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static json_t *tool_error(const char *fmt, ...)
{
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    return json_pack("{s:[{s:s, s:s}], s:b}", "content", "type", "text", "text", m, "isError", 1);
}

static json_t *ok(json_t *sc, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static json_t *ok(json_t *sc, const char *fmt, ...)
{
    char m[700];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (!sc)
        return NULL;
    return json_pack("{s:[{s:s, s:s}], s:o}", "content", "type", "text", "text", m,
                     "structuredContent", sc);
}

static const char *git_why(void)
{
    const git_error *e = git_error_last();
    return e && e->message ? e->message : "unknown libgit2 error";
}

/* ---- confinement --------------------------------------------------------- */

/* Whether p (a real path) is ws (a real path) or below it. */
static int beneath(const char *ws, const char *p)
{
    size_t n = strlen(ws);
    if (n == 1 && ws[0] == '/')
        return 1;
    return !strncmp(ws, p, n) && (p[n] == '\0' || p[n] == '/');
}

/* A relative path without "..": NULL or why not. dot_ok: "." allowed. */
static const char *rel_problem(const char *rel)
{
    if (!*rel)
        return "is empty";
    if (rel[0] == '/')
        return "is absolute (paths are relative to the workspace)";
    if (strlen(rel) > 2048)
        return "is too long";
    for (const char *p = rel; *p;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return "leaves the workspace ('..')";
        p += n + (e ? 1 : 0);
    }
    return NULL;
}

/* Real path of a directory that must be in the workspace; with make, its
 * missing parts are made (each checked as it goes). */
static json_t *repo_dir(git_job_t *j, int make)
{
    const json_t *pv = json_object_get(j->args, "path");
    const char *rel = pv ? json_string_value(pv) : ".";
    if (!rel)
        return tool_error("'path' must be a string");
    const char *prob = rel_problem(rel);
    if (prob)
        return tool_error("'path' %s", prob);
    if (!realpath(j->workspace, j->ws_real))
        return tool_error("the workspace is not available: %s", strerror(errno));
    char want[PATH_MAX];
    if (snprintf(want, sizeof(want), "%s/%s", j->ws_real, rel) >= (int)sizeof(want))
        return tool_error("'path' is too long");
    if (make) {
        /* one component at a time, each checked once made */
        char *p = want + strlen(j->ws_real) + 1;
        for (;;) {
            char *slash = strchr(p, '/');
            if (slash)
                *slash = '\0';
            if (mkdir(want, 0755) && errno != EEXIST)
                return tool_error("unable to make '%s': %s", rel, strerror(errno));
            char real[PATH_MAX];
            if (!realpath(want, real) || !beneath(j->ws_real, real))
                return tool_error("'path' leaves the workspace (through a symbolic link)");
            if (!slash)
                break;
            *slash = '/';
            p = slash + 1;
        }
    }
    if (!realpath(want, j->repo_path))
        return tool_error("'%s' does not exist in the workspace", rel);
    if (!beneath(j->ws_real, j->repo_path))
        return tool_error("'path' leaves the workspace (through a symbolic link)");
    return NULL;
}

/* Whether a path libgit2 reports (may end in '/') lies in the workspace. */
static int inside(git_job_t *j, const char *p)
{
    char real[PATH_MAX];
    return p && realpath(p, real) && beneath(j->ws_real, real);
}

static json_t *open_repo(git_job_t *j)
{
    json_t *e = repo_dir(j, 0);
    if (e)
        return e;
    if (git_repository_open_ext(&j->repo, j->repo_path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL))
        return tool_error("'%s' is not a git repository (use git init): %s",
                          json_string_value(json_object_get(j->args, "path"))
                              ? json_string_value(json_object_get(j->args, "path"))
                              : ".",
                          git_why());
    if (git_repository_is_bare(j->repo))
        return tool_error("bare repositories are not supported");
    if (!inside(j, git_repository_path(j->repo)) || !inside(j, git_repository_commondir(j->repo)) ||
        !inside(j, git_repository_workdir(j->repo)))
        return tool_error("the repository's git directory or work tree lies outside the "
                          "workspace");
    return NULL;
}

/* The "paths" argument as a pathspec; NULL entries when absent. */
static json_t *pathspec(git_job_t *j, git_strarray *ps, int required)
{
    const json_t *a = json_object_get(j->args, "paths");
    ps->strings = NULL;
    ps->count = 0;
    if (!a) {
        if (required)
            return tool_error("'paths' is required (use [\".\"] for everything)");
        return NULL;
    }
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > 1000)
        return tool_error("'paths' must be an array of 1 to 1000 paths");
    ps->strings = calloc(json_array_size(a), sizeof(char *));
    if (!ps->strings)
        return tool_error("out of memory");
    size_t i;
    const json_t *v;
    json_array_foreach(a, i, v)
    {
        const char *s = json_string_value(v);
        if (!s)
            return tool_error("paths[%zu] must be a string", i);
        const char *prob = rel_problem(s);
        if (prob)
            return tool_error("paths[%zu] '%.200s' %s", i, s, prob);
        ps->strings[ps->count++] = (char *)s;
    }
    return NULL;
}

/* ---- operations (on the pool) ------------------------------------------------ */

static json_t *head_branch(git_repository *r)
{
    git_reference *h = NULL;
    if (git_reference_lookup(&h, r, "HEAD"))
        return json_null();
    json_t *out = json_null();
    if (git_reference_type(h) == GIT_REFERENCE_SYMBOLIC) {
        const char *t = git_reference_symbolic_target(h);
        if (t && !strncmp(t, "refs/heads/", 11))
            out = json_string(t + 11);
    }
    git_reference_free(h);
    return out;
}

static int branch_name_ok(const char *name)
{
    int valid = 0;
    return name && !git_branch_name_is_valid(&valid, name) && valid;
}

static json_t *op_init(git_job_t *j)
{
    const json_t *bv = json_object_get(j->args, "initial_branch");
    const char *branch = bv ? json_string_value(bv) : "main";
    if (!branch_name_ok(branch))
        return tool_error("'initial_branch' is not a valid branch name");
    json_t *e = repo_dir(j, 1);
    if (e)
        return e;
    if (!git_repository_open_ext(&j->repo, j->repo_path, GIT_REPOSITORY_OPEN_NO_SEARCH, NULL)) {
        git_repository_free(j->repo);
        j->repo = NULL;
        e = open_repo(j);
        if (e)
            return e;
        return ok(json_pack("{s:s, s:b, s:o}", "path", j->repo_path + strlen(j->ws_real), "created",
                            0, "branch", head_branch(j->repo)),
                  "already a git repository");
    }
    git_repository_init_options o;
    git_repository_init_options_init(&o, GIT_REPOSITORY_INIT_OPTIONS_VERSION);
    o.flags = GIT_REPOSITORY_INIT_NO_REINIT;
    o.initial_head = branch;
    if (git_repository_init_ext(&j->repo, j->repo_path, &o))
        return tool_error("git init failed: %s", git_why());
    const char *rel = j->repo_path + strlen(j->ws_real);
    return ok(
        json_pack("{s:s, s:b, s:s}", "path", *rel ? rel + 1 : ".", "created", 1, "branch", branch),
        "initialised an empty git repository (branch %s)", branch);
}

static const char *status_word(unsigned s, int index)
{
    if (index) {
        if (s & GIT_STATUS_INDEX_NEW)
            return "added";
        if (s & GIT_STATUS_INDEX_MODIFIED)
            return "modified";
        if (s & GIT_STATUS_INDEX_DELETED)
            return "deleted";
        if (s & GIT_STATUS_INDEX_RENAMED)
            return "renamed";
        if (s & GIT_STATUS_INDEX_TYPECHANGE)
            return "typechange";
        return NULL;
    }
    if (s & GIT_STATUS_WT_NEW)
        return "untracked";
    if (s & GIT_STATUS_WT_MODIFIED)
        return "modified";
    if (s & GIT_STATUS_WT_DELETED)
        return "deleted";
    if (s & GIT_STATUS_WT_RENAMED)
        return "renamed";
    if (s & GIT_STATUS_WT_TYPECHANGE)
        return "typechange";
    if (s & GIT_STATUS_CONFLICTED)
        return "conflicted";
    return NULL;
}

static json_t *op_status(git_job_t *j)
{
    git_status_options o;
    git_status_options_init(&o, GIT_STATUS_OPTIONS_VERSION);
    o.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
    o.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
              GIT_STATUS_OPT_RENAMES_HEAD_TO_INDEX | GIT_STATUS_OPT_SORT_CASE_SENSITIVELY;
    git_status_list *l = NULL;
    if (git_status_list_new(&l, j->repo, &o))
        return tool_error("git status failed: %s", git_why());
    json_t *files = json_array();
    size_t n = git_status_list_entrycount(l), staged = 0, changed = 0, untracked = 0;
    for (size_t i = 0; i < n && i < GIT_STATUS_MAX; i++) {
        const git_status_entry *e = git_status_byindex(l, i);
        const git_diff_delta *d = e->head_to_index ? e->head_to_index : e->index_to_workdir;
        if (!d)
            continue;
        const char *iw = status_word(e->status, 1), *ww = status_word(e->status, 0);
        json_t *f = json_pack("{s:s}", "path", d->new_file.path);
        if (iw) {
            json_object_set_new(f, "index", json_string(iw));
            staged++;
        }
        if (ww) {
            json_object_set_new(f, "worktree", json_string(ww));
            if (e->status & GIT_STATUS_WT_NEW)
                untracked++;
            else
                changed++;
        }
        json_array_append_new(files, f);
    }
    git_status_list_free(l);
    json_t *sc = json_pack("{s:o, s:b, s:o, s:i, s:i, s:i}", "branch", head_branch(j->repo),
                           "clean", n == 0, "files", files, "staged", (json_int_t)staged, "changed",
                           (json_int_t)changed, "untracked", (json_int_t)untracked);
    return ok(sc, "%zu staged, %zu changed, %zu untracked", staged, changed, untracked);
}

struct patch_buf {
    char *p;
    size_t n, cap;
    int truncated;
};

static int patch_line(const git_diff_delta *d, const git_diff_hunk *h, const git_diff_line *l,
                      void *data)
{
    struct patch_buf *b = data;
    (void)d;
    (void)h;
    size_t add = l->content_len + 1;
    if (b->n + add > GIT_PATCH_MAX) {
        b->truncated = 1;
        return 1; /* stop */
    }
    if (b->n + add + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 8192;
        while (cap < b->n + add + 1)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    if (l->origin == GIT_DIFF_LINE_CONTEXT || l->origin == GIT_DIFF_LINE_ADDITION ||
        l->origin == GIT_DIFF_LINE_DELETION)
        b->p[b->n++] = l->origin;
    memcpy(b->p + b->n, l->content, l->content_len);
    b->n += l->content_len;
    return 0;
}

static json_t *op_diff(git_job_t *j)
{
    git_diff_options o;
    git_diff_options_init(&o, GIT_DIFF_OPTIONS_VERSION);
    json_t *e = pathspec(j, &o.pathspec, 0);
    if (e) {
        free(o.pathspec.strings);
        return e;
    }
    const json_t *cl = json_object_get(j->args, "context_lines");
    if (cl) {
        if (!json_is_integer(cl) || json_integer_value(cl) < 0 || json_integer_value(cl) > 1000) {
            free(o.pathspec.strings);
            return tool_error("'context_lines' must be an integer from 0 to 1000");
        }
        o.context_lines = (uint32_t)json_integer_value(cl);
    }
    o.flags |= GIT_DIFF_INCLUDE_UNTRACKED | GIT_DIFF_SHOW_UNTRACKED_CONTENT |
               GIT_DIFF_RECURSE_UNTRACKED_DIRS;
    int staged = json_is_true(json_object_get(j->args, "staged"));
    const char *target = json_string_value(json_object_get(j->args, "target"));
    git_object *obj = NULL;
    git_tree *tree = NULL;
    git_diff *diff = NULL;
    int rc;
    if (target || staged) {
        const char *spec = target ? target : "HEAD";
        if (git_revparse_single(&obj, j->repo, spec)) {
            if (!target && git_repository_head_unborn(j->repo) == 1) {
                obj = NULL; /* no commit yet: against the empty tree */
            } else {
                free(o.pathspec.strings);
                return tool_error("unknown revision '%.200s': %s", spec, git_why());
            }
        }
        if (obj && git_object_peel((git_object **)&tree, obj, GIT_OBJECT_TREE)) {
            git_object_free(obj);
            free(o.pathspec.strings);
            return tool_error("'%.200s' does not name a commit or tree", spec);
        }
    }
    if (staged)
        rc = git_diff_tree_to_index(&diff, j->repo, tree, NULL, &o);
    else if (target)
        rc = git_diff_tree_to_workdir_with_index(&diff, j->repo, tree, &o);
    else
        rc = git_diff_index_to_workdir(&diff, j->repo, NULL, &o);
    git_tree_free(tree);
    git_object_free(obj);
    free(o.pathspec.strings);
    if (rc)
        return tool_error("git diff failed: %s", git_why());
    struct patch_buf b = {0};
    git_diff_stats *st = NULL;
    rc = git_diff_print(diff, GIT_DIFF_FORMAT_PATCH, patch_line, &b);
    if (rc < 0 && !b.truncated) {
        git_diff_free(diff);
        free(b.p);
        return tool_error("git diff failed: %s", git_why());
    }
    size_t files = git_diff_num_deltas(diff), ins = 0, del = 0;
    if (!git_diff_get_stats(&st, diff)) {
        ins = git_diff_stats_insertions(st);
        del = git_diff_stats_deletions(st);
        git_diff_stats_free(st);
    }
    git_diff_free(diff);
    json_t *sc = json_pack("{s:s%, s:i, s:i, s:i, s:b}", "patch", b.p ? b.p : "", b.n, "files",
                           (json_int_t)files, "insertions", (json_int_t)ins, "deletions",
                           (json_int_t)del, "truncated", b.truncated);
    json_t *res = sc ? json_pack("{s:[{s:s, s:s%}], s:o}", "content", "type", "text", "text",
                                 b.p ? b.p : "", b.n, "structuredContent", sc)
                     : NULL;
    free(b.p);
    return res;
}

static json_t *commit_json(const git_commit *c)
{
    char id[GIT_OID_HEXSZ + 1];
    git_oid_tostr(id, sizeof(id), git_commit_id(c));
    const git_signature *a = git_commit_author(c);
    char when[40];
    time_t t = (time_t)a->when.time;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    json_t *parents = json_array();
    for (unsigned i = 0; i < git_commit_parentcount(c); i++) {
        char pid[GIT_OID_HEXSZ + 1];
        git_oid_tostr(pid, sizeof(pid), git_commit_parent_id(c, i));
        json_array_append_new(parents, json_string(pid));
    }
    const char *msg = git_commit_message(c);
    return json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "id", id, "author", a->name ? a->name : "",
                     "email", a->email ? a->email : "", "time", when, "message", msg ? msg : "",
                     "parents", parents);
}

static json_t *op_log(git_job_t *j)
{
    const json_t *mv = json_object_get(j->args, "max_count");
    json_int_t max = 20;
    if (mv) {
        if (!json_is_integer(mv) || json_integer_value(mv) < 1 ||
            json_integer_value(mv) > GIT_LOG_MAX)
            return tool_error("'max_count' must be an integer from 1 to %d", GIT_LOG_MAX);
        max = json_integer_value(mv);
    }
    const char *ref = json_string_value(json_object_get(j->args, "ref"));
    if (!ref && git_repository_head_unborn(j->repo) == 1)
        return ok(json_pack("{s:[]}", "commits"), "no commits yet");
    git_revwalk *w = NULL;
    git_object *obj = NULL;
    if (git_revwalk_new(&w, j->repo))
        return tool_error("git log failed: %s", git_why());
    git_revwalk_sorting(w, GIT_SORT_TIME);
    int rc;
    if (ref) {
        rc = git_revparse_single(&obj, j->repo, ref);
        if (!rc)
            rc = git_revwalk_push(w, git_object_id(obj));
    } else {
        rc = git_revwalk_push_head(w);
    }
    git_object_free(obj);
    if (rc) {
        git_revwalk_free(w);
        return tool_error("unknown revision '%.200s': %s", ref ? ref : "HEAD", git_why());
    }
    json_t *commits = json_array();
    git_oid oid;
    while ((json_int_t)json_array_size(commits) < max && !git_revwalk_next(&oid, w)) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, j->repo, &oid))
            continue;
        json_array_append_new(commits, commit_json(c));
        git_commit_free(c);
    }
    git_revwalk_free(w);
    size_t n = json_array_size(commits);
    return ok(json_pack("{s:o}", "commits", commits), "%zu commit%s", n, n == 1 ? "" : "s");
}

static json_t *op_add(git_job_t *j)
{
    git_strarray ps;
    json_t *e = pathspec(j, &ps, 1);
    git_index *idx = NULL;
    if (!e && git_repository_index(&idx, j->repo))
        e = tool_error("unable to read the index: %s", git_why());
    if (!e && (git_index_add_all(idx, &ps, GIT_INDEX_ADD_DEFAULT, NULL, NULL) ||
               git_index_update_all(idx, &ps, NULL, NULL) || git_index_write(idx)))
        e = tool_error("git add failed: %s", git_why());
    git_index_free(idx);
    free(ps.strings);
    if (e)
        return e;
    json_t *st = op_status(j);
    json_t *sc = json_object_get(st, "structuredContent");
    json_int_t staged = json_integer_value(json_object_get(sc, "staged"));
    json_t *res =
        ok(json_pack("{s:O, s:I}", "paths", json_object_get(j->args, "paths"), "staged", staged),
           "%lld path%s staged", (long long)staged, staged == 1 ? "" : "s");
    json_decref(st);
    return res;
}

/* The commit of HEAD's newest GIT_KEY_SCAN that carries key, or NULL. */
static git_commit *find_key(git_job_t *j, const char *key)
{
    if (git_repository_head_unborn(j->repo) == 1)
        return NULL;
    git_revwalk *w = NULL;
    if (git_revwalk_new(&w, j->repo) || git_revwalk_push_head(w)) {
        git_revwalk_free(w);
        return NULL;
    }
    size_t n = strlen(GIT_TRAILER) + strlen(key) + 3;
    char *needle = malloc(n);
    if (!needle) {
        git_revwalk_free(w);
        return NULL;
    }
    snprintf(needle, n, "\n" GIT_TRAILER "%s\n", key);
    git_oid oid;
    git_commit *found = NULL;
    for (int i = 0; i < GIT_KEY_SCAN && !found && !git_revwalk_next(&oid, w); i++) {
        git_commit *c = NULL;
        if (git_commit_lookup(&c, j->repo, &oid))
            continue;
        const char *m = git_commit_message(c);
        if (m && strstr(m, needle))
            found = c;
        else
            git_commit_free(c);
    }
    free(needle);
    git_revwalk_free(w);
    return found;
}

static json_t *op_commit(git_job_t *j)
{
    const char *msg = json_string_value(json_object_get(j->args, "message"));
    if (!msg || !*msg)
        return tool_error("'message' is required");
    if (strlen(msg) > 64 * 1024)
        return tool_error("'message' is too long (64 KiB at most)");
    const char *name = json_string_value(json_object_get(j->args, "author_name"));
    const char *email = json_string_value(json_object_get(j->args, "author_email"));
    if (!name)
        name = "aosd";
    if (!email)
        email = "aosd@localhost";
    if (j->key) {
        git_commit *prev = find_key(j, j->key);
        if (prev) {
            json_t *cj = commit_json(prev);
            git_commit_free(prev);
            json_object_set_new(cj, "branch", head_branch(j->repo));
            json_object_set_new(cj, "replayed", json_true());
            return ok(cj, "already committed as %.12s (same idempotency key)",
                      json_string_value(json_object_get(cj, "id")));
        }
    }
    git_index *idx = NULL;
    git_oid tree_id, commit_id;
    git_tree *tree = NULL;
    git_commit *parent = NULL;
    git_signature *sig = NULL;
    json_t *res = NULL;
    char *full = NULL;
    if (git_repository_index(&idx, j->repo) || git_index_write_tree(&tree_id, idx) ||
        git_tree_lookup(&tree, j->repo, &tree_id)) {
        res = tool_error("unable to write the tree: %s", git_why());
        goto out;
    }
    if (git_repository_head_unborn(j->repo) != 1) {
        git_object *h = NULL;
        if (git_revparse_single(&h, j->repo, "HEAD^{commit}")) {
            res = tool_error("unable to read HEAD: %s", git_why());
            goto out;
        }
        parent = (git_commit *)h;
        if (git_oid_equal(git_commit_tree_id(parent), &tree_id) &&
            !json_is_true(json_object_get(j->args, "allow_empty"))) {
            res = tool_error("nothing to commit: the index matches HEAD (git add first)");
            goto out;
        }
    } else if (git_index_entrycount(idx) == 0 &&
               !json_is_true(json_object_get(j->args, "allow_empty"))) {
        res = tool_error("nothing to commit: the index is empty (git add first)");
        goto out;
    }
    if (git_signature_now(&sig, name, email)) {
        res = tool_error("invalid author: %s", git_why());
        goto out;
    }
    size_t n = strlen(msg) + (j->key ? strlen(j->key) + sizeof(GIT_TRAILER) + 4 : 0) + 2;
    full = malloc(n);
    if (!full) {
        res = tool_error("out of memory");
        goto out;
    }
    size_t ml = strlen(msg);
    while (ml > 0 && msg[ml - 1] == '\n')
        ml--;
    if (j->key)
        snprintf(full, n, "%.*s\n\n" GIT_TRAILER "%s\n", (int)ml, msg, j->key);
    else
        snprintf(full, n, "%.*s\n", (int)ml, msg);
    const git_commit *parents[1] = {parent};
    if (git_commit_create(&commit_id, j->repo, "HEAD", sig, sig, NULL, full, tree, parent ? 1 : 0,
                          parents)) {
        res = tool_error("git commit failed: %s", git_why());
        goto out;
    }
    git_commit *c = NULL;
    if (git_commit_lookup(&c, j->repo, &commit_id)) {
        res = tool_error("git commit failed: %s", git_why());
        goto out;
    }
    json_t *cj = commit_json(c);
    git_commit_free(c);
    json_object_set_new(cj, "branch", head_branch(j->repo));
    json_object_set_new(cj, "replayed", json_false());
    res = ok(cj, "committed %.12s", json_string_value(json_object_get(cj, "id")));
out:
    free(full);
    git_signature_free(sig);
    git_commit_free(parent);
    git_tree_free(tree);
    git_index_free(idx);
    return res;
}

static json_t *op_branch(git_job_t *j)
{
    const char *name = json_string_value(json_object_get(j->args, "name"));
    const char *action = json_string_value(json_object_get(j->args, "action"));
    if (!action)
        action = name ? "create" : "list";
    if (!strcmp(action, "list")) {
        git_branch_iterator *it = NULL;
        if (git_branch_iterator_new(&it, j->repo, GIT_BRANCH_LOCAL))
            return tool_error("unable to list branches: %s", git_why());
        json_t *list = json_array();
        git_reference *ref;
        git_branch_t type;
        while (!git_branch_next(&ref, &type, it)) {
            const char *bn = NULL;
            git_branch_name(&bn, ref);
            char id[GIT_OID_HEXSZ + 1] = "";
            if (git_reference_target(ref))
                git_oid_tostr(id, sizeof(id), git_reference_target(ref));
            json_array_append_new(list,
                                  json_pack("{s:s, s:b, s:s}", "name", bn ? bn : "", "current",
                                            git_branch_is_head(ref) == 1, "id", id));
            git_reference_free(ref);
        }
        git_branch_iterator_free(it);
        return ok(json_pack("{s:o, s:o}", "branches", list, "current", head_branch(j->repo)),
                  "%zu branch%s", json_array_size(list), json_array_size(list) == 1 ? "" : "es");
    }
    if (!branch_name_ok(name))
        return tool_error("'name' must be a valid branch name");
    if (!strcmp(action, "create")) {
        const char *from = json_string_value(json_object_get(j->args, "start_point"));
        git_object *obj = NULL;
        git_commit *c = NULL;
        git_reference *ref = NULL;
        if (git_revparse_single(&obj, j->repo, from ? from : "HEAD") ||
            git_object_peel((git_object **)&c, obj, GIT_OBJECT_COMMIT)) {
            git_object_free(obj);
            return tool_error("no commit '%.200s' to start the branch from: %s",
                              from ? from : "HEAD", git_why());
        }
        git_object_free(obj);
        int rc = git_branch_create(&ref, j->repo, name, c, 0);
        char id[GIT_OID_HEXSZ + 1];
        git_oid_tostr(id, sizeof(id), git_commit_id(c));
        git_commit_free(c);
        git_reference_free(ref);
        if (rc == GIT_EEXISTS)
            return tool_error("a branch '%s' exists already", name);
        if (rc)
            return tool_error("unable to create the branch: %s", git_why());
        return ok(json_pack("{s:s, s:s, s:s}", "action", "create", "name", name, "id", id),
                  "created branch %s at %.12s", name, id);
    }
    if (!strcmp(action, "delete")) {
        git_reference *ref = NULL;
        if (git_branch_lookup(&ref, j->repo, name, GIT_BRANCH_LOCAL))
            return tool_error("no branch '%s'", name);
        if (git_branch_is_head(ref) == 1) {
            git_reference_free(ref);
            return tool_error("'%s' is the current branch; check out another first", name);
        }
        /* the reference only: git_branch_delete also drops the branch's
         * config section through a regex that libgit2 1.5 leaks (fixed in
         * 1.6, libgit2 PR #6382), and these tools write no branch config */
        int rc = git_reference_delete(ref);
        git_reference_free(ref);
        if (rc)
            return tool_error("unable to delete the branch: %s", git_why());
        return ok(json_pack("{s:s, s:s}", "action", "delete", "name", name), "deleted branch %s",
                  name);
    }
    return tool_error("'action' must be list, create or delete");
}

static json_t *op_checkout(git_job_t *j)
{
    const char *ref = json_string_value(json_object_get(j->args, "ref"));
    if (!ref || !*ref)
        return tool_error("'ref' is required (a branch or a commit)");
    int create = json_is_true(json_object_get(j->args, "create"));
    char full[600];
    git_reference *br = NULL;
    git_object *target = NULL;
    json_t *res = NULL;
    if (create) {
        if (!branch_name_ok(ref))
            return tool_error("'ref' must be a valid branch name to create");
        git_object *h = NULL;
        git_commit *c = NULL;
        if (git_revparse_single(&h, j->repo, "HEAD") ||
            git_object_peel((git_object **)&c, h, GIT_OBJECT_COMMIT)) {
            git_object_free(h);
            return tool_error("no commit to start the branch from: %s", git_why());
        }
        git_object_free(h);
        int rc = git_branch_create(&br, j->repo, ref, c, 0);
        git_commit_free(c);
        if (rc == GIT_EEXISTS)
            return tool_error("a branch '%s' exists already", ref);
        if (rc)
            return tool_error("unable to create the branch: %s", git_why());
        git_reference_free(br);
        br = NULL;
    }
    if (branch_name_ok(ref) && !git_branch_lookup(&br, j->repo, ref, GIT_BRANCH_LOCAL)) {
        snprintf(full, sizeof(full), "%s", git_reference_name(br));
        if (git_reference_peel(&target, br, GIT_OBJECT_COMMIT)) {
            res = tool_error("branch '%s' has no commit: %s", ref, git_why());
            goto out;
        }
    } else if (git_revparse_single(&target, j->repo, ref)) {
        res = tool_error("no branch or commit '%.200s'", ref);
        goto out;
    } else {
        full[0] = '\0';
        git_object *c = NULL;
        if (git_object_peel(&c, target, GIT_OBJECT_COMMIT)) {
            res = tool_error("'%.200s' is not a commit", ref);
            goto out;
        }
        git_object_free(target);
        target = c;
    }
    git_checkout_options co;
    git_checkout_options_init(&co, GIT_CHECKOUT_OPTIONS_VERSION);
    co.checkout_strategy = GIT_CHECKOUT_SAFE;
    int rc = git_checkout_tree(j->repo, target, &co);
    if (rc == GIT_ECONFLICT) {
        res = tool_error("checkout of '%.200s' would overwrite local changes (commit them or "
                         "check out a path-clean tree first): %s",
                         ref, git_why());
        goto out;
    }
    if (rc) {
        res = tool_error("checkout failed: %s", git_why());
        goto out;
    }
    rc = full[0] ? git_repository_set_head(j->repo, full)
                 : git_repository_set_head_detached(j->repo, git_object_id(target));
    if (rc) {
        res = tool_error("unable to move HEAD: %s", git_why());
        goto out;
    }
    char id[GIT_OID_HEXSZ + 1];
    git_oid_tostr(id, sizeof(id), git_object_id(target));
    res =
        ok(json_pack("{s:o, s:s, s:b, s:b}", "branch", head_branch(j->repo), "id", id, "detached",
                     !full[0], "created", create),
           full[0] ? "switched to branch %s" : "HEAD is now detached at %.12s", full[0] ? ref : id);
out:
    git_object_free(target);
    git_reference_free(br);
    return res;
}

static void git_work(uv_work_t *w)
{
    git_job_t *j = w->data;
    json_t *res;
    if (j->op == OP_INIT) {
        res = op_init(j);
    } else if (!(res = open_repo(j))) {
        switch (j->op) {
        case OP_STATUS:
            res = op_status(j);
            break;
        case OP_DIFF:
            res = op_diff(j);
            break;
        case OP_LOG:
            res = op_log(j);
            break;
        case OP_ADD:
            res = op_add(j);
            break;
        case OP_COMMIT:
            res = op_commit(j);
            break;
        case OP_BRANCH:
            res = op_branch(j);
            break;
        default:
            res = op_checkout(j);
            break;
        }
    }
    git_repository_free(j->repo);
    j->repo = NULL;
    j->result = res;
}

static void git_after(uv_work_t *w, int status)
{
    git_job_t *j = w->data;
    json_t *res = j->result;
    aos_builtin_done_fn done = j->done;
    void *ctx = j->ctx;
    json_decref(j->args);
    free(j->workspace);
    free(j->key);
    free(j);
    if (!res && status == 0)
        res = tool_error("out of memory");
    if (res) {
        done(ctx, res, NULL);
    } else {
        aos_err_t e = {0, ""};
        aos_err_set(&e, AOS_ECANCELED, "the git call was cancelled");
        done(ctx, NULL, &e);
    }
}

static int key_ok(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 256)
        return 0;
    for (; *k; k++)
        if (*k < 0x21 || *k > 0x7e)
            return 0;
    return 1;
}

static const char *const op_names[] = {"init", "status", "diff",   "log",
                                       "add",  "commit", "branch", "checkout"};

/* The arguments each tool takes (the schemas say the same). */
static const char *const op_args[][8] = {
    {"path", "initial_branch"},
    {"path"},
    {"path", "staged", "target", "paths", "context_lines"},
    {"path", "max_count", "ref"},
    {"path", "paths"},
    {"path", "message", "author_name", "author_email", "allow_empty"},
    {"path", "action", "name", "start_point"},
    {"path", "ref", "create"},
};

static int git_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                    aos_builtin_done_fn done, void *ctx)
{
    aos_tools_git_t *g = data;
    int op = -1;
    for (int i = 0; i < (int)(sizeof(op_names) / sizeof(op_names[0])); i++)
        if (!strcmp(tool, op_names[i]))
            op = i;
    if (op < 0)
        return AOS_ENOTFOUND;
    const char *k;
    const json_t *v;
    json_object_foreach((json_t *)args, k, v)
    {
        int known = 0;
        for (int i = 0; i < 8 && op_args[op][i]; i++)
            known |= !strcmp(op_args[op][i], k);
        if (!known) {
            done(ctx, tool_error("git %s has no argument '%.64s'", tool, k), NULL);
            return 0;
        }
    }
    const char *ws = json_string_value(json_object_get(caller->caps, "workspace"));
    if (!ws || ws[0] != '/') {
        done(ctx,
             tool_error("git needs a workspace, and the caller's caps grant none "
                        "(caps.workspace)"),
             NULL);
        return 0;
    }
    git_job_t *j = calloc(1, sizeof(*j));
    if (!j)
        return AOS_ENOMEM;
    j->op = (enum git_op)op;
    j->args = json_deep_copy(args);
    j->workspace = strdup(ws);
    const char *key = caller->idempotency_key;
    if (op == OP_COMMIT && key && *key) {
        if (key_ok(key)) {
            j->key = strdup(key);
        } else {
            /* one a trailer line cannot carry (spaces, line breaks...): its hash */
            unsigned char h[16];
            char hex[33];
            crypto_generichash(h, sizeof(h), (const unsigned char *)key, strlen(key), NULL, 0);
            sodium_bin2hex(hex, sizeof(hex), h, sizeof(h));
            size_t n = sizeof(hex) + 8;
            if ((j->key = malloc(n)))
                snprintf(j->key, n, "blake2b:%s", hex);
        }
    }
    j->done = done;
    j->ctx = ctx;
    j->work.data = j;
    if (!j->args || !j->workspace || uv_queue_work(g->loop, &j->work, git_work, git_after)) {
        json_decref(j->args);
        free(j->workspace);
        free(j->key);
        free(j);
        return AOS_ENOMEM;
    }
    return 0;
}

/* ---- tool definitions --------------------------------------------------------------------- */

static json_t *prop(const char *type, const char *description)
{
    return json_pack("{s:s, s:s}", "type", type, "description", description);
}

static json_t *tool_def(const char *name, const char *description, json_t *props,
                        const char *required, json_t *out, int ro, int destructive, int idempotent)
{
    json_object_set_new(props, "path",
                        prop("string", "the repository's directory, relative to the workspace "
                                       "(default \".\")"));
    json_t *in = json_pack("{s:s, s:o, s:b}", "type", "object", "properties", props,
                           "additionalProperties", 0);
    if (required)
        json_object_set_new(in, "required", json_pack("[s]", required));
    return json_pack("{s:s, s:s, s:o, s:o, s:{s:b, s:b, s:b, s:b}}", "name", name, "description",
                     description, "inputSchema", in, "outputSchema", out, "annotations",
                     "readOnlyHint", ro, "destructiveHint", destructive, "idempotentHint",
                     idempotent, "openWorldHint", 0);
}

static json_t *obj_schema(json_t *props)
{
    return json_pack("{s:s, s:o}", "type", "object", "properties", props);
}

static json_t *commit_schema(void)
{
    return json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, s:{s:s}}}}",
                     "type", "object", "properties", "id", "type", "string", "author", "type",
                     "string", "email", "type", "string", "time", "type", "string", "message",
                     "type", "string", "parents", "type", "array", "items", "type", "string");
}

static json_t *git_tools(void *data)
{
    (void)data;
    json_t *commit_out = commit_schema();
    json_object_set_new(json_object_get(commit_out, "properties"), "branch",
                        json_pack("{s:[s,s]}", "type", "string", "null"));
    json_object_set_new(json_object_get(commit_out, "properties"), "replayed",
                        json_pack("{s:s}", "type", "boolean"));
    json_t *paths =
        json_pack("{s:s, s:{s:s}, s:s}", "type", "array", "items", "type", "string", "description",
                  "paths or globs relative to the repository (\".\" for all)");
    json_t *tools = json_pack(
        "[o,o,o,o,o,o,o,o]",
        tool_def(
            "init", "Create a git repository in the workspace (does nothing if one exists).",
            json_pack("{s:o}", "initial_branch", prop("string", "default main")), NULL,
            obj_schema(json_pack("{s:{s:s}, s:{s:s}, s:{s:[s,s]}}", "path", "type", "string",
                                 "created", "type", "boolean", "branch", "type", "string", "null")),
            0, 0, 1),
        tool_def("status", "Show the branch and the staged, changed and untracked files.",
                 json_object(), NULL,
                 obj_schema(json_pack("{s:{s:[s,s]}, s:{s:s}, s:{s:s, s:{s:s}}, s:{s:s}, s:{s:s},"
                                      " s:{s:s}}",
                                      "branch", "type", "string", "null", "clean", "type",
                                      "boolean", "files", "type", "array", "items", "type",
                                      "object", "staged", "type", "integer", "changed", "type",
                                      "integer", "untracked", "type", "integer")),
                 1, 0, 1),
        tool_def("diff",
                 "Show changes as a unified diff: the work tree against the index (default), "
                 "the index against HEAD (staged), or the work tree against a revision (target).",
                 json_pack("{s:o, s:o, s:O, s:{s:s, s:i, s:i}}", "staged",
                           prop("boolean", "diff the index against HEAD"), "target",
                           prop("string", "a revision to diff the work tree against"), "paths",
                           paths, "context_lines", "type", "integer", "minimum", 0, "maximum",
                           1000),
                 NULL,
                 obj_schema(json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}", "patch",
                                      "type", "string", "files", "type", "integer", "insertions",
                                      "type", "integer", "deletions", "type", "integer",
                                      "truncated", "type", "boolean")),
                 1, 0, 1),
        tool_def("log", "List commits, newest first.",
                 json_pack("{s:{s:s, s:i, s:i}, s:o}", "max_count", "type", "integer", "minimum", 1,
                           "maximum", GIT_LOG_MAX, "ref",
                           prop("string", "start from this revision instead of HEAD")),
                 NULL,
                 obj_schema(json_pack("{s:{s:s, s:o}}", "commits", "type", "array", "items",
                                      commit_schema())),
                 1, 0, 1),
        tool_def("add", "Stage files (additions, changes and deletions) for the next commit.",
                 json_pack("{s:O}", "paths", paths), "paths",
                 obj_schema(json_pack("{s:{s:s}, s:{s:s}}", "paths", "type", "array", "staged",
                                      "type", "integer")),
                 0, 0, 1),
        tool_def("commit",
                 "Commit the staged changes. With an idempotency key, a repeat returns the "
                 "commit already made.",
                 json_pack("{s:o, s:o, s:o, s:o}", "message", prop("string", "commit message"),
                           "author_name", prop("string", "default aosd"), "author_email",
                           prop("string", "default aosd@localhost"), "allow_empty",
                           prop("boolean", "commit even if nothing changed")),
                 "message", commit_out, 0, 0, 0),
        tool_def("branch", "List, create or delete local branches.",
                 json_pack("{s:{s:s, s:[s,s,s]}, s:o, s:o}", "action", "type", "string", "enum",
                           "list", "create", "delete", "name", prop("string", "branch name"),
                           "start_point", prop("string", "revision to create it at (HEAD)")),
                 NULL,
                 obj_schema(json_pack("{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}}", "branches", "type",
                                      "array", "action", "type", "string", "name", "type", "string",
                                      "id", "type", "string")),
                 0, 1, 0),
        tool_def("checkout",
                 "Switch to a branch (or detach at a commit); refuses to overwrite local "
                 "changes.",
                 json_pack("{s:o, s:o}", "ref", prop("string", "branch name or commit"), "create",
                           prop("boolean", "create the branch at HEAD first")),
                 "ref",
                 obj_schema(json_pack("{s:{s:[s,s]}, s:{s:s}, s:{s:s}, s:{s:s}}", "branch", "type",
                                      "string", "null", "id", "type", "string", "detached", "type",
                                      "boolean", "created", "type", "boolean")),
                 0, 0, 0));
    json_decref(paths); /* diff and add hold their own references */
    return tools;
}

/* ---- lifecycle ------------------------------------------------------------------------------ */

int aos_tools_git_new(aos_tools_git_t **out, uv_loop_t *loop, aos_err_t *err)
{
    *out = NULL;
    if (git_libgit2_init() < 0)
        return aos_err_set(err, AOS_EINTERNAL, "unable to initialise libgit2");
    /* the aosd user's own git configuration has no say in the workspace */
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_SYSTEM, "");
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_XDG, "");
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_GLOBAL, "");
    git_libgit2_opts(GIT_OPT_SET_SEARCH_PATH, GIT_CONFIG_LEVEL_PROGRAMDATA, "");
    aos_tools_git_t *g = calloc(1, sizeof(*g));
    if (!g) {
        git_libgit2_shutdown();
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    g->loop = loop;
    g->builtin.name = "git";
    g->builtin.description = "git on a repository in the caller's workspace";
    g->builtin.tools = git_tools;
    g->builtin.call = git_call;
    g->builtin.data = g;
    *out = g;
    return 0;
}

const aos_builtin_t *aos_tools_git_builtin(aos_tools_git_t *g)
{
    return &g->builtin;
}

void aos_tools_git_free(aos_tools_git_t *g)
{
    if (!g)
        return;
    free(g);
    /* libgit2 stays initialised: a call may still run on the pool */
}
