/* tools.h - the built-in tool servers of aosd (SPEC §4, "Tool domain"):
 * the Env-MCP servers "files" and "db" and the skills "csv" (tool clean)
 * and "viz" (tool plot), each an aos_builtin_t the gateway serves as
 * <server>__<tool>.
 *
 * Every tool works inside the caller's workspace: the directory
 * caps.workspace names (a task's DATA/workspaces/<trace_id>/, set by the
 * orchestrator), else DATA/workspace/ (the shared workspace of API and MCP
 * clients, made on first use). Paths are relative to it and resolved with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so that "..", absolute
 * paths and symlinks leading out fail whatever a concurrent writer does;
 * device files, FIFOs and sockets are refused, and so are files with
 * other hard links (they could be files outside the workspace).
 *
 * The work itself (disk, SQLite, parsing) runs on libuv's thread pool;
 * call() and done run on the loop. Writes honour the caller's idempotency
 * key (a repeated write with the same key returns the first answer and
 * changes nothing): the record is a file under <workspace>/.aos/idem/,
 * written durably with the change, so it survives a restart (when the
 * orchestrator re-runs an unfinished step with the same key) and goes
 * away with the workspace. ".aos" is reserved: no tool reads or writes it.
 *
 * aos_tools_new on the loop thread; aos_tools_free after the loop ran to
 * its end (no work in flight). */
#ifndef AOS_TOOLS_H
#define AOS_TOOLS_H

#include <jansson.h>
#include <sys/types.h>
#include <uv.h>

#include "builtin/builtin.h"
#include "err/err.h"

typedef struct aos_tools_s aos_tools_t;

typedef struct {
    uv_loop_t *loop;      /* borrowed */
    const char *data_dir; /* copied; the shared workspace is <data_dir>/workspace */
} aos_tools_cfg_t;

int aos_tools_new(aos_tools_t **out, const aos_tools_cfg_t *cfg, aos_err_t *err);
void aos_tools_free(aos_tools_t *t);

/* Idempotency records (of the http tool, and of files/git/db in the shared
 * workspace) are kept this long, then deleted (sweep.c). */
#define AOS_TOOLS_IDEM_KEEP_S (7 * 86400)
/* Deletes the records last changed before now_s - keep_s: regular files
 * of <data_dir>/idempotency/http and <data_dir>/workspace/.aos/idem.
 * Returns how many. Blocking I/O: the thread pool, or tests. */
long aos_tools_idem_prune(const char *data_dir, int64_t now_s, int64_t keep_s);
/* Starts the hourly sweep (a minute from now; the timer does not hold the
 * loop); aos_tools_stop closes it before the loop ends. Loop thread. */
int aos_tools_sweep_start(aos_tools_t *t);
void aos_tools_stop(aos_tools_t *t);

/* The built-in servers; each lives as long as t. */
const aos_builtin_t *aos_tools_files(aos_tools_t *t);
const aos_builtin_t *aos_tools_db(aos_tools_t *t);
const aos_builtin_t *aos_tools_csv(aos_tools_t *t);
const aos_builtin_t *aos_tools_viz(aos_tools_t *t);

/* ---- workspace confinement (ws.c), for every tool of this folder ----------
 * Any thread. Errors fill err with a message naming the path and the cause
 * (AOS_EINVAL for a path that may never be used, AOS_EFORBIDDEN for one
 * leading out or to a special file, AOS_ENOTFOUND, AOS_EIO). */

/* The caller's workspace directory (caps.workspace, an absolute path, else
 * <data_dir>/workspace): a new string, or NULL with err. Loop or worker. */
char *aos_tools_ws_dir(const char *data_dir, const aos_caller_t *caller, aos_err_t *err);
/* Opens the workspace dir (made if missing) as an O_PATH directory fd. */
int aos_tools_ws_root(const char *dir, aos_err_t *err);
/* Checks a workspace-relative path given by a client: not empty, no NUL
 * (len is its length), not absolute, no ".." component, not under ".aos". */
int aos_tools_ws_check(const char *rel, size_t len, aos_err_t *err);

#define AOS_TOOLS_WS_LINKS_OK 0x1 /* accept a regular file with st_nlink > 1 */
/* Opens rel beneath root with flags (O_* of open(2), O_CREAT with mode):
 * a regular file or directory only (others are refused before they are
 * opened for I/O), never O_TRUNC (truncate after the checks). Returns the
 * fd, or a negative AOS_E* code with err. */
int aos_tools_ws_open(int root, const char *rel, int flags, mode_t mode, int ws_flags,
                      aos_err_t *err);
/* Opens the directory that holds rel's last component (made, with its
 * parents, when mkdirs), beneath root; *name is that last component
 * inside rel. Returns an O_DIRECTORY fd or a negative code with err. */
int aos_tools_ws_parent(int root, const char *rel, int mkdirs, const char **name, aos_err_t *err);

#endif
