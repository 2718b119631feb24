/* files.c - the built-in server "files": read, write, append, list, stat,
 * move, delete and search inside the caller's workspace, the arguments
 * as in the reference filesystem MCP server where it has the operation.
 *
 * Every path is checked (aos_tools_ws_check) on the loop and resolved
 * beneath the workspace on a worker (ws.c). Writes replace the file with
 * a temporary one renamed over it (never written through a link), and are
 * durable (fsync of file and directory) before the answer. Walking a tree
 * (list, search, delete) opens each directory relative to its parent with
 * O_NOFOLLOW and never follows a symlink. */
#include "tools/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <regex.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "utf8/utf8.h"

#define READ_DEFAULT    (1u << 20)  /* bytes read when no length is given */
#define READ_MAX        (8u << 20)  /* most bytes one read returns */
#define WRITE_MAX       (64u << 20) /* most bytes one write or append takes */
#define LIST_DEFAULT    1000
#define LIST_MAX        10000
#define SEARCH_DEFAULT  100
#define SEARCH_MAX      1000
#define SEARCH_FILE_MAX (64u << 20) /* larger files are skipped by search */
#define LINE_MAX_OUT    400         /* bytes of a matching line returned */
#define WALK_DEPTH      32

/* ---- schemas ------------------------------------------------------------------------ */

static json_t *s_str(const char *d)
{
    return json_pack("{s:s, s:s}", "type", "string", "description", d);
}

static json_t *s_int(const char *d, long long min)
{
    return json_pack("{s:s, s:I, s:s}", "type", "integer", "minimum", (json_int_t)min,
                     "description", d);
}

static json_t *s_bool(const char *d)
{
    return json_pack("{s:s, s:s}", "type", "boolean", "description", d);
}

static json_t *obj(json_t *props, const char *r1, const char *r2)
{
    json_t *o = json_pack("{s:s, s:o}", "type", "object", "properties", props);
    if (r1) {
        json_t *req = json_array();
        json_array_append_new(req, json_string(r1));
        if (r2)
            json_array_append_new(req, json_string(r2));
        json_object_set_new(o, "required", req);
    }
    return o;
}

static json_t *enc_schema(void)
{
    return json_pack("{s:s, s:[s,s,s], s:s}", "type", "string", "enum", "auto", "text", "base64",
                     "description",
                     "text (UTF-8), base64 (any bytes) or auto (text when the bytes are UTF-8)");
}

static json_t *files_tools(void *data)
{
    json_t *a = json_array();
    json_array_append_new(
        a, aos__tools_def(
               "read",
               "Read a file of the workspace, whole or a byte range (offset, length), as UTF-8 "
               "text or base64. At most 8 MiB per call; 'eof' says whether the end was reached.",
               obj(json_pack("{s:o, s:o, s:o, s:o}", "path", s_str("file path in the workspace"),
                             "offset", s_int("first byte (default 0)", 0), "length",
                             s_int("bytes to read (default: to the end, at most 1 MiB)", 0),
                             "encoding", enc_schema()),
                   "path", NULL),
               obj(json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "path", s_str(""), "size",
                             s_int("file size", 0), "offset", s_int("", 0), "length",
                             s_int("bytes returned", 0), "encoding", s_str("text or base64"),
                             "content", s_str("the bytes"), "eof", s_bool("the end was reached")),
                   "content", NULL),
               1, 0, 1));
    json_array_append_new(
        a,
        aos__tools_def(
            "write",
            "Create or replace a file (parent directories are made). The new content replaces "
            "the file atomically and is on disk before the answer.",
            obj(json_pack("{s:o, s:o, s:o}", "path", s_str("file path in the workspace"), "content",
                          s_str("the new content"), "encoding",
                          json_pack("{s:s, s:[s,s]}", "type", "string", "enum", "text", "base64")),
                "path", "content"),
            obj(json_pack("{s:o, s:o}", "path", s_str("the file written"), "bytes",
                          s_int("bytes written", 0)),
                "path", NULL),
            0, 1, 1));
    json_array_append_new(
        a,
        aos__tools_def(
            "append", "Append to a file (made if missing); on disk before the answer.",
            obj(json_pack("{s:o, s:o, s:o}", "path", s_str("file path in the workspace"), "content",
                          s_str("what to append"), "encoding",
                          json_pack("{s:s, s:[s,s]}", "type", "string", "enum", "text", "base64")),
                "path", "content"),
            obj(json_pack("{s:o, s:o, s:o}", "path", s_str("the file written"), "bytes",
                          s_int("bytes appended", 0), "size", s_int("size after", 0)),
                "path", NULL),
            0, 0, 0));
    json_array_append_new(
        a,
        aos__tools_def(
            "list",
            "List a directory of the workspace: names, types, sizes; recursive on request; "
            "filtered by a glob (matched against the name, or against the path when it "
            "holds a '/'). Symlinks are listed, not followed.",
            obj(json_pack("{s:o, s:o, s:o, s:o}", "path",
                          s_str("directory (default: the workspace)"), "pattern",
                          s_str("glob, e.g. *.csv"), "recursive", s_bool("walk subdirectories"),
                          "max_entries", s_int("most entries (default 1000, at most 10000)", 1)),
                NULL, NULL),
            obj(json_pack("{s:o, s:{s:s, s:{s:s, s:{s:o, s:o, s:o, s:o}}}, s:o}", "path", s_str(""),
                          "entries", "type", "array", "items", "type", "object", "properties",
                          "path", s_str("relative to the workspace"), "type",
                          s_str("file, directory, symlink or other"), "size", s_int("", 0), "mtime",
                          s_str("RFC 3339"), "truncated", s_bool("more entries than max_entries")),
                "entries", NULL),
            1, 0, 1));
    json_array_append_new(
        a, aos__tools_def(
               "stat", "Type, size, modification time and mode of a file or directory.",
               obj(json_pack("{s:o}", "path", s_str("path in the workspace")), "path", NULL),
               obj(json_pack("{s:o, s:o, s:o, s:o, s:o}", "path", s_str(""), "type", s_str(""),
                             "size", s_int("", 0), "mtime", s_str("RFC 3339"), "mode",
                             s_str("permission bits, octal")),
                   "type", NULL),
               1, 0, 1));
    json_array_append_new(
        a, aos__tools_def(
               "move",
               "Move or rename a file or directory (the destination's directories are made). "
               "Refuses to replace an existing destination unless overwrite is true.",
               obj(json_pack("{s:o, s:o, s:o}", "source", s_str("path in the workspace"),
                             "destination", s_str("new path in the workspace"), "overwrite",
                             s_bool("replace an existing destination file")),
                   "source", "destination"),
               obj(json_pack("{s:o, s:o}", "source", s_str(""), "destination", s_str("")),
                   "destination", NULL),
               0, 1, 0));
    json_array_append_new(
        a, aos__tools_def(
               "delete",
               "Delete a file, or a directory (with what it holds only when recursive is true).",
               obj(json_pack("{s:o, s:o}", "path", s_str("path in the workspace"), "recursive",
                             s_bool("delete a directory and everything in it")),
                   "path", NULL),
               obj(json_pack("{s:o, s:o}", "path", s_str(""), "deleted",
                             s_int("files and directories removed", 0)),
                   "path", NULL),
               0, 1, 1));
    json_array_append_new(
        a, aos__tools_def(
               "search",
               "Search file contents for a literal string or a POSIX extended regular "
               "expression: matching lines with their numbers (at most max_results).",
               obj(json_pack("{s:o, s:o, s:o, s:o, s:o, s:o}", "pattern", s_str("what to look for"),
                             "path", s_str("file or directory (default: the workspace)"), "regex",
                             s_bool("pattern is a POSIX ERE (default: literal)"), "ignore_case",
                             s_bool("ignore case"), "glob", s_str("only files whose name matches"),
                             "max_results", s_int("most matches (default 100, at most 1000)", 1)),
                   "pattern", NULL),
               obj(json_pack("{s:{s:s, s:{s:s, s:{s:o, s:o, s:o}}}, s:o, s:o}", "matches", "type",
                             "array", "items", "type", "object", "properties", "path", s_str(""),
                             "line", s_int("1-based", 1), "text",
                             s_str("the line (cut at 400 bytes)"), "files_scanned", s_int("", 0),
                             "truncated", s_bool("more matches than max_results")),
                   "matches", NULL),
               1, 0, 1));
    return a;
}

/* ---- helpers -------------------------------------------------------------------------- */

static void rfc3339(time_t t, char *out, size_t n)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static const char *kind(mode_t m)
{
    return S_ISREG(m) ? "file" : S_ISDIR(m) ? "directory" : S_ISLNK(m) ? "symlink" : "other";
}

/* The bytes of a content argument (text or base64): new buffer, *n. */
static unsigned char *content_bytes(const json_t *args, size_t *n, aos_err_t *err)
{
    const json_t *c = json_object_get(args, "content");
    const char *enc = aos__tools_str(args, "encoding", "text");
    if (!json_is_string(c)) {
        aos_err_set(err, AOS_EINVAL, "'content' must be a string");
        return NULL;
    }
    size_t len = json_string_length(c);
    if (len > (size_t)WRITE_MAX * 4 / 3 + 4) {
        aos_err_set(err, AOS_ETOOBIG, "'content' is larger than %u bytes", WRITE_MAX);
        return NULL;
    }
    unsigned char *buf = malloc(len + 1);
    if (!buf) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        return NULL;
    }
    if (!strcmp(enc, "text")) {
        memcpy(buf, json_string_value(c), len);
        *n = len;
    } else if (!strcmp(enc, "base64")) {
        if (sodium_base642bin(buf, len + 1, json_string_value(c), len, " \r\n", n, NULL,
                              sodium_base64_VARIANT_ORIGINAL) != 0) {
            free(buf);
            aos_err_set(err, AOS_EINVAL, "'content' is not valid base64");
            return NULL;
        }
    } else {
        free(buf);
        aos_err_set(err, AOS_EINVAL, "'encoding' must be text or base64");
        return NULL;
    }
    return buf;
}

static int write_all(int fd, const unsigned char *p, size_t n, aos_err_t *err)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0)
            return aos_err_set(err, AOS_EIO, "write failed: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- read ------------------------------------------------------------------------------ */

static json_t *run_read(tools_job_t *j, aos_err_t *err)
{
    const char *path = aos__tools_path(j->args, "path", err);
    if (!path)
        return NULL;
    long long off = aos__tools_int(j->args, "offset", 0);
    long long len = aos__tools_int(j->args, "length", -1);
    const char *enc = aos__tools_str(j->args, "encoding", "auto");
    if (off < 0 || (json_object_get(j->args, "length") && len < 0))
        return aos_err_set(err, AOS_EINVAL, "offset and length must be >= 0"), NULL;
    if (strcmp(enc, "auto") && strcmp(enc, "text") && strcmp(enc, "base64"))
        return aos_err_set(err, AOS_EINVAL, "'encoding' must be auto, text or base64"), NULL;
    if (len > READ_MAX)
        return aos_err_set(err, AOS_ETOOBIG, "length is more than %u bytes", READ_MAX), NULL;
    int fd = aos_tools_ws_open(j->root, path, O_RDONLY, 0, 0, err);
    if (fd < 0)
        return NULL;
    struct stat sb;
    json_t *out = NULL;
    unsigned char *buf = NULL;
    if (fstat(fd, &sb) != 0 || S_ISDIR(sb.st_mode)) {
        aos_err_set(err, AOS_EINVAL, "'%.200s' is a directory: use list", path);
        goto out;
    }
    size_t size = (size_t)sb.st_size;
    size_t want = off >= (long long)size ? 0 : size - (size_t)off;
    if (len >= 0 && (size_t)len < want)
        want = (size_t)len;
    if (len < 0 && want > READ_DEFAULT)
        want = READ_DEFAULT;
    buf = malloc(want + 1);
    if (!buf) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    size_t got = 0;
    while (got < want) {
        ssize_t r = pread(fd, buf + got, want - got, (off_t)off + (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            aos_err_set(err, AOS_EIO, "unable to read '%.200s': %s", path, strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    int text = !strcmp(enc, "text") ||
               (!strcmp(enc, "auto") &&
                aos_utf8_valid((const char *)buf, aos_utf8_trim((const char *)buf, got)) &&
                (got - aos_utf8_trim((const char *)buf, got) == 0 || (size_t)off + got < size));
    json_t *content;
    if (text) {
        if (!strcmp(enc, "text") && !aos_utf8_valid((const char *)buf, got)) {
            aos_err_set(err, AOS_EINVAL,
                        "'%.200s' is not UTF-8 text in that range: read it as base64", path);
            goto out;
        }
        content = json_stringn_nocheck((const char *)buf, got);
    } else {
        size_t b64 = sodium_base64_ENCODED_LEN(got, sodium_base64_VARIANT_ORIGINAL);
        char *s = malloc(b64);
        if (!s) {
            aos_err_set(err, AOS_ENOMEM, NULL);
            goto out;
        }
        sodium_bin2base64(s, b64, buf, got, sodium_base64_VARIANT_ORIGINAL);
        content = json_string(s);
        free(s);
    }
    out = json_pack("{s:s, s:I, s:I, s:I, s:s, s:o, s:b}", "path", path, "size", (json_int_t)size,
                    "offset", (json_int_t)off, "length", (json_int_t)got, "encoding",
                    text ? "text" : "base64", "content", content, "eof", (size_t)off + got >= size);
    if (!out)
        aos_err_set(err, AOS_ENOMEM, NULL);
    else if (text)
        j->text = strndup((const char *)buf, got);
out:
    free(buf);
    close(fd);
    return out;
}

/* ---- write, append ---------------------------------------------------------------------- */

static json_t *run_write(tools_job_t *j, aos_err_t *err)
{
    const char *path = aos__tools_path(j->args, "path", err);
    size_t n = 0;
    unsigned char *buf = path ? content_bytes(j->args, &n, err) : NULL;
    if (!buf)
        return NULL;
    if (n > WRITE_MAX) {
        free(buf);
        return aos_err_set(err, AOS_ETOOBIG, "content is larger than %u bytes", WRITE_MAX), NULL;
    }
    /* an existing target must be a file we may replace */
    int old = aos_tools_ws_open(j->root, path, O_RDONLY, 0, 0, err);
    if (old < 0 && err->code != AOS_ENOTFOUND) {
        free(buf);
        return NULL;
    }
    struct stat sb;
    if (old >= 0) {
        int dir = fstat(old, &sb) == 0 && S_ISDIR(sb.st_mode);
        close(old);
        if (dir) {
            free(buf);
            return aos_err_set(err, AOS_EINVAL, "'%.200s' is a directory", path), NULL;
        }
    }
    int dirfd = -1;
    char *tmp = NULL;
    int fd = aos__tools_tmpfile(j->root, path, &dirfd, &tmp, err);
    if (fd < 0) {
        free(buf);
        return NULL;
    }
    const char *name = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
    int rc = write_all(fd, buf, n, err);
    if (!rc)
        rc = aos__tools_commit(dirfd, tmp, name, fd, err);
    else
        unlinkat(dirfd, tmp, 0);
    close(fd);
    close(dirfd);
    free(tmp);
    free(buf);
    if (rc)
        return NULL;
    return json_pack("{s:s, s:I}", "path", path, "bytes", (json_int_t)n);
}

static json_t *run_append(tools_job_t *j, aos_err_t *err)
{
    const char *path = aos__tools_path(j->args, "path", err);
    size_t n = 0;
    unsigned char *buf = path ? content_bytes(j->args, &n, err) : NULL;
    if (!buf)
        return NULL;
    const char *name;
    json_t *out = NULL;
    int dirfd = aos_tools_ws_parent(j->root, path, 1, &name, err), fd = -1;
    if (dirfd < 0)
        goto out;
    close(dirfd);
    fd = aos_tools_ws_open(j->root, path, O_WRONLY | O_CREAT, 0644, 0, err);
    if (fd < 0)
        goto out;
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        aos_err_set(err, AOS_EINVAL, "'%.200s' is not a regular file", path);
        goto out;
    }
    off_t at = sb.st_size;
    if (j->pending) {
        /* the same append started before and may have been cut short or
         * done without its record: back to the size it started from */
        off_t was = (off_t)json_integer_value(json_object_get(j->pending, "size"));
        if (was <= sb.st_size && ftruncate(fd, was) == 0)
            at = was;
    } else {
        json_t *info = json_pack("{s:I}", "size", (json_int_t)at);
        int rc = aos__tools_pending(j, info, err);
        json_decref(info);
        if (rc)
            goto out;
    }
    if (lseek(fd, at, SEEK_SET) < 0 || write_all(fd, buf, n, err))
        goto out;
    if (fsync(fd) != 0) {
        aos_err_set(err, AOS_EIO, "unable to store '%.200s': %s", path, strerror(errno));
        goto out;
    }
    out = json_pack("{s:s, s:I, s:I}", "path", path, "bytes", (json_int_t)n, "size",
                    (json_int_t)at + (json_int_t)n);
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return out;
}

/* ---- stat --------------------------------------------------------------------------------- */

static json_t *run_stat(tools_job_t *j, aos_err_t *err)
{
    const char *path = aos__tools_path(j->args, "path", err);
    if (!path)
        return NULL;
    int fd = aos_tools_ws_open(j->root, path, O_PATH, 0, AOS_TOOLS_WS_LINKS_OK, err);
    if (fd < 0)
        return NULL;
    struct stat sb;
    int rc = fstat(fd, &sb);
    close(fd);
    if (rc != 0)
        return aos_err_set(err, AOS_EIO, "'%.200s': %s", path, strerror(errno)), NULL;
    char mt[32], mode[8];
    rfc3339(sb.st_mtime, mt, sizeof(mt));
    snprintf(mode, sizeof(mode), "%04o", (unsigned)(sb.st_mode & 07777));
    return json_pack("{s:s, s:s, s:I, s:s, s:s, s:I}", "path", path, "type", kind(sb.st_mode),
                     "size", (json_int_t)sb.st_size, "mtime", mt, "mode", mode, "links",
                     (json_int_t)sb.st_nlink);
}

/* ---- tree walks ------------------------------------------------------------------------------ */

/* Called for each entry: dirfd holds name; rel is its workspace path.
 * Return 1 to stop the walk. */
typedef int (*walk_fn)(int dirfd, const char *name, const char *rel, const struct stat *sb,
                       void *arg);

/* Walks dirfd (not closed), depth first, never through a symlink. */
static int walk(int dirfd, const char *base, int recursive, int depth, walk_fn fn, void *arg)
{
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return 0;
    }
    struct dirent *e;
    int stop = 0;
    while (!stop && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        if (!*base && !strcmp(e->d_name, ".aos"))
            continue;
        if (!strncmp(e->d_name, ".aos-tmp-", 9))
            continue;
        char rel[4096];
        int n = snprintf(rel, sizeof(rel), "%s%s%s", base, *base ? "/" : "", e->d_name);
        if (n < 0 || (size_t)n >= sizeof(rel))
            continue;
        struct stat sb;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        stop = fn(dirfd, e->d_name, rel, &sb, arg);
        if (!stop && recursive && S_ISDIR(sb.st_mode) && depth < WALK_DEPTH) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub >= 0) {
                stop = walk(sub, rel, recursive, depth + 1, fn, arg);
                close(sub);
            }
        }
    }
    closedir(d);
    return stop;
}

/* "." or "" (the workspace) opens the root itself. */
static int open_dir(int root, const char *path, aos_err_t *err)
{
    int fd = aos_tools_ws_open(root, path, O_RDONLY | O_DIRECTORY, 0, 0, err);
    if (fd < 0 && err->code == AOS_EINVAL)
        aos_err_set(err, AOS_EINVAL, "'%.200s' is not a directory", path);
    return fd;
}

/* The workspace path of a directory argument: "" for the workspace. */
static const char *dir_base(const char *path)
{
    while (path[0] == '.' && path[1] == '/')
        path += 2;
    return !strcmp(path, ".") ? "" : path;
}

struct list_ctx {
    json_t *entries;
    const char *pattern;
    int with_slash;
    size_t max;
    int truncated;
};

static int list_one(int dirfd, const char *name, const char *rel, const struct stat *sb, void *arg)
{
    struct list_ctx *c = arg;
    if (c->pattern && fnmatch(c->pattern, c->with_slash ? rel : name, 0) != 0)
        return 0;
    if (json_array_size(c->entries) >= c->max) {
        c->truncated = 1;
        return 1;
    }
    char mt[32];
    rfc3339(sb->st_mtime, mt, sizeof(mt));
    json_array_append_new(c->entries,
                          json_pack("{s:s, s:s, s:I, s:s}", "path", rel, "type", kind(sb->st_mode),
                                    "size", (json_int_t)sb->st_size, "mtime", mt));
    return 0;
}

static json_t *run_list(tools_job_t *j, aos_err_t *err)
{
    const char *path = ".";
    if (json_object_get(j->args, "path") && !(path = aos__tools_path(j->args, "path", err)))
        return NULL;
    long long max = aos__tools_int(j->args, "max_entries", LIST_DEFAULT);
    if (max < 1 || max > LIST_MAX)
        return aos_err_set(err, AOS_EINVAL, "max_entries must be 1..%d", LIST_MAX), NULL;
    int fd = open_dir(j->root, path, err);
    if (fd < 0)
        return NULL;
    struct list_ctx c = {.entries = json_array(),
                         .pattern = aos__tools_str(j->args, "pattern", NULL),
                         .max = (size_t)max};
    c.with_slash = c.pattern && strchr(c.pattern, '/');
    walk(fd, dir_base(path), aos__tools_bool(j->args, "recursive", 0), 0, list_one, &c);
    close(fd);
    return json_pack("{s:s, s:o, s:b}", "path", path, "entries", c.entries, "truncated",
                     c.truncated);
}

/* ---- move, delete ---------------------------------------------------------------------------- */

static json_t *run_move(tools_job_t *j, aos_err_t *err)
{
    const char *src = aos__tools_path(j->args, "source", err);
    const char *dst = src ? aos__tools_path(j->args, "destination", err) : NULL;
    if (!dst)
        return NULL;
    const char *sname, *dname;
    int sdir = aos_tools_ws_parent(j->root, src, 0, &sname, err), ddir = -1;
    json_t *out = NULL;
    if (sdir < 0)
        goto out;
    struct stat sb;
    if (fstatat(sdir, sname, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT && j->pending) /* moved before its record was stored */
            out = json_pack("{s:s, s:s}", "source", src, "destination", dst);
        else
            aos_err_set(err, errno == ENOENT ? AOS_ENOTFOUND : AOS_EIO, "'%.200s': %s", src,
                        strerror(errno));
        goto out;
    }
    if (!S_ISREG(sb.st_mode) && !S_ISDIR(sb.st_mode) && !S_ISLNK(sb.st_mode)) {
        aos_err_set(err, AOS_EFORBIDDEN, "'%.200s' is a device, FIFO or socket", src);
        goto out;
    }
    if ((ddir = aos_tools_ws_parent(j->root, dst, 1, &dname, err)) < 0)
        goto out;
    if (!j->pending && aos__tools_pending(j, json_object_get(j->args, "source"), err))
        goto out;
    int flags = aos__tools_bool(j->args, "overwrite", 0) ? 0 : RENAME_NOREPLACE;
    if (renameat2(sdir, sname, ddir, dname, (unsigned)flags) != 0) {
        int e = errno;
        if (e == EEXIST)
            aos_err_set(err, AOS_ECONFLICT, "'%.200s' exists: pass overwrite to replace it", dst);
        else
            aos_err_set(err, e == ENOTEMPTY || e == EISDIR || e == ENOTDIR ? AOS_EINVAL : AOS_EIO,
                        "unable to move '%.200s' to '%.200s': %s", src, dst, strerror(e));
        goto out;
    }
    if (fsync(ddir) != 0 || fsync(sdir) != 0) {
        aos_err_set(err, AOS_EIO, "unable to store the move: %s", strerror(errno));
        goto out;
    }
    out = json_pack("{s:s, s:s}", "source", src, "destination", dst);
out:
    if (sdir >= 0)
        close(sdir);
    if (ddir >= 0)
        close(ddir);
    return out;
}

/* Removes everything in dirfd (not dirfd itself), counting into *n. */
static int remove_tree(int dirfd, int depth, long long *n, aos_err_t *err)
{
    if (depth > WALK_DEPTH)
        return aos_err_set(err, AOS_EINVAL, "the tree is deeper than %d levels", WALK_DEPTH);
    int fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return aos_err_set(err, AOS_EIO, "unable to read a directory: %s", strerror(errno));
    }
    struct dirent *e;
    int rc = 0;
    while (!rc && (e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
            continue;
        struct stat sb;
        if (fstatat(dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
            continue;
        if (S_ISDIR(sb.st_mode)) {
            int sub = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (sub < 0)
                rc = aos_err_set(err, AOS_EIO, "'%.200s': %s", e->d_name, strerror(errno));
            else
                rc = remove_tree(sub, depth + 1, n, err);
            if (sub >= 0)
                close(sub);
            if (!rc && unlinkat(dirfd, e->d_name, AT_REMOVEDIR) != 0)
                rc = aos_err_set(err, AOS_EIO, "'%.200s': %s", e->d_name, strerror(errno));
        } else if (unlinkat(dirfd, e->d_name, 0) != 0) {
            rc = aos_err_set(err, AOS_EIO, "'%.200s': %s", e->d_name, strerror(errno));
        }
        if (!rc)
            (*n)++;
    }
    closedir(d);
    return rc;
}

static json_t *run_delete(tools_job_t *j, aos_err_t *err)
{
    const char *path = aos__tools_path(j->args, "path", err);
    if (!path)
        return NULL;
    const char *name;
    int dir = aos_tools_ws_parent(j->root, path, 0, &name, err);
    if (dir < 0)
        return NULL;
    json_t *out = NULL;
    long long n = 0;
    struct stat sb;
    if (fstatat(dir, name, &sb, AT_SYMLINK_NOFOLLOW) != 0) {
        if (errno == ENOENT && j->pending)
            out = json_pack("{s:s, s:I}", "path", path, "deleted", (json_int_t)0);
        else
            aos_err_set(err, errno == ENOENT ? AOS_ENOTFOUND : AOS_EIO, "'%.200s': %s", path,
                        strerror(errno));
        goto out;
    }
    if (aos__tools_pending(j, json_object_get(j->args, "path"), err))
        goto out;
    if (S_ISDIR(sb.st_mode)) {
        if (aos__tools_bool(j->args, "recursive", 0)) {
            int sub = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            int rc = sub < 0 ? aos_err_set(err, AOS_EIO, "'%.200s': %s", path, strerror(errno))
                             : remove_tree(sub, 0, &n, err);
            if (sub >= 0)
                close(sub);
            if (rc)
                goto out;
        }
        if (unlinkat(dir, name, AT_REMOVEDIR) != 0) {
            aos_err_set(err, errno == ENOTEMPTY ? AOS_ECONFLICT : AOS_EIO,
                        errno == ENOTEMPTY ? "'%.200s' is not empty: pass recursive to delete it"
                                           : "'%.200s': cannot delete",
                        path);
            goto out;
        }
    } else if (unlinkat(dir, name, 0) != 0) {
        aos_err_set(err, AOS_EIO, "unable to delete '%.200s': %s", path, strerror(errno));
        goto out;
    }
    n++;
    if (fsync(dir) != 0) {
        aos_err_set(err, AOS_EIO, "unable to store the deletion: %s", strerror(errno));
        goto out;
    }
    out = json_pack("{s:s, s:I}", "path", path, "deleted", (json_int_t)n);
out:
    close(dir);
    return out;
}

/* ---- search -----------------------------------------------------------------------------------
 */

struct search_ctx {
    const char *needle;
    size_t nlen;
    int icase;
    regex_t re;
    int regex;
    const char *glob;
    json_t *matches;
    size_t max;
    long long scanned;
    int truncated;
    unsigned char *buf;
    size_t cap;
};

static int add_match(struct search_ctx *c, const char *rel, long long line, const char *s, size_t n)
{
    if (json_array_size(c->matches) >= c->max) {
        c->truncated = 1;
        return 1;
    }
    if (n > LINE_MAX_OUT)
        n = aos_utf8_trim(s, LINE_MAX_OUT);
    char out[3 * LINE_MAX_OUT + 1];
    size_t m = aos_utf8_scrub(out, sizeof(out), s, n);
    json_array_append_new(c->matches, json_pack("{s:s, s:I, s:s%}", "path", rel, "line",
                                                (json_int_t)line, "text", out, m));
    return 0;
}

static const unsigned char *find_literal(struct search_ctx *c, const unsigned char *p,
                                         const unsigned char *end)
{
    if (!c->icase)
        return memmem(p, (size_t)(end - p), c->needle, c->nlen);
    for (; p + c->nlen <= end; p++)
        if (!strncasecmp((const char *)p, c->needle, c->nlen))
            return p;
    return NULL;
}

static int search_buf(struct search_ctx *c, const char *rel, unsigned char *b, size_t n)
{
    const unsigned char *p = b, *end = b + n, *counted = b;
    long long line = 1;
    if (!c->regex) {
        const unsigned char *hit;
        while (p < end && (hit = find_literal(c, p, end))) {
            for (const unsigned char *q = counted; (q = memchr(q, '\n', (size_t)(hit - q))); q++)
                line++;
            const unsigned char *ls = hit;
            while (ls > b && ls[-1] != '\n')
                ls--;
            const unsigned char *le = memchr(hit, '\n', (size_t)(end - hit));
            if (!le)
                le = end;
            if (add_match(c, rel, line, (const char *)ls, (size_t)(le - ls)))
                return 1;
            counted = hit;
            p = le < end ? le + 1 : end;
            if (le < end) {
                line++;
                counted = le + 1;
            }
        }
        return 0;
    }
    while (p < end) {
        unsigned char *le = memchr(p, '\n', (size_t)(end - p));
        if (!le)
            le = (unsigned char *)end;
        unsigned char save = *le;
        *le = '\0'; /* b has one byte more than n */
        int m = regexec(&c->re, (const char *)p, 0, NULL, 0) == 0;
        *le = save;
        if (m && add_match(c, rel, line, (const char *)p, (size_t)(le - p)))
            return 1;
        line++;
        p = le + 1;
    }
    return 0;
}

static int search_file(struct search_ctx *c, int fd, const char *rel)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode) || sb.st_nlink > 1 ||
        (size_t)sb.st_size > SEARCH_FILE_MAX)
        return 0;
    size_t need = (size_t)sb.st_size + 1;
    if (need > c->cap) {
        unsigned char *nb = realloc(c->buf, need);
        if (!nb)
            return 0;
        c->buf = nb;
        c->cap = need;
    }
    size_t got = 0;
    for (;;) {
        ssize_t r = read(fd, c->buf + got, need - 1 - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        got += (size_t)r;
        if (got == need - 1)
            break;
    }
    c->buf[got] = '\0';
    c->scanned++;
    /* binary files (a NUL in the first 8 KiB) are skipped, as grep -I */
    if (memchr(c->buf, '\0', got < 8192 ? got : 8192))
        return 0;
    return search_buf(c, rel, c->buf, got);
}

static int search_one(int dirfd, const char *name, const char *rel, const struct stat *sb,
                      void *arg)
{
    struct search_ctx *c = arg;
    if (!S_ISREG(sb->st_mode) || sb->st_nlink > 1)
        return 0;
    if (c->glob && fnmatch(c->glob, name, 0) != 0)
        return 0;
    int fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int stop = search_file(c, fd, rel);
    close(fd);
    return stop;
}

static json_t *run_search(tools_job_t *j, aos_err_t *err)
{
    struct search_ctx c = {0};
    const json_t *pat = json_object_get(j->args, "pattern");
    if (!json_is_string(pat) || json_string_length(pat) == 0 ||
        strlen(json_string_value(pat)) != json_string_length(pat))
        return aos_err_set(err, AOS_EINVAL, "'pattern' must be a non-empty string"), NULL;
    const char *path = ".";
    if (json_object_get(j->args, "path") && !(path = aos__tools_path(j->args, "path", err)))
        return NULL;
    long long max = aos__tools_int(j->args, "max_results", SEARCH_DEFAULT);
    if (max < 1 || max > SEARCH_MAX)
        return aos_err_set(err, AOS_EINVAL, "max_results must be 1..%d", SEARCH_MAX), NULL;
    c.needle = json_string_value(pat);
    c.nlen = json_string_length(pat);
    c.icase = aos__tools_bool(j->args, "ignore_case", 0);
    c.regex = aos__tools_bool(j->args, "regex", 0);
    c.glob = aos__tools_str(j->args, "glob", NULL);
    c.max = (size_t)max;
    if (c.regex) {
        int rc = regcomp(&c.re, c.needle, REG_EXTENDED | REG_NOSUB | (c.icase ? REG_ICASE : 0));
        if (rc) {
            char m[200];
            regerror(rc, &c.re, m, sizeof(m));
            return aos_err_set(err, AOS_EINVAL, "'pattern' is not a valid regex: %s", m), NULL;
        }
    }
    json_t *out = NULL;
    int fd = aos_tools_ws_open(j->root, path, O_RDONLY, 0, 0, err);
    if (fd < 0)
        goto out;
    c.matches = json_array();
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode))
        walk(fd, dir_base(path), 1, 0, search_one, &c);
    else
        search_file(&c, fd, path);
    close(fd);
    out = json_pack("{s:o, s:I, s:b}", "matches", c.matches, "files_scanned", (json_int_t)c.scanned,
                    "truncated", c.truncated);
out:
    if (c.regex)
        regfree(&c.re);
    free(c.buf);
    return out;
}

/* ---- the server ---------------------------------------------------------------------------------
 */

static const struct {
    const char *name;
    tools_run_fn run;
    int flags;
} ops[] = {
    {"read", run_read, 0},
    {"write", run_write, TOOLS_WRITE},
    {"append", run_append, TOOLS_WRITE},
    {"list", run_list, 0},
    {"stat", run_stat, 0},
    {"move", run_move, TOOLS_WRITE},
    {"delete", run_delete, TOOLS_WRITE},
    {"search", run_search, 0},
};

static int files_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                      aos_builtin_done_fn done, void *ctx)
{
    for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
        if (!strcmp(tool, ops[i].name))
            return aos__tools_submit(data, caller, "files", tool, args, ops[i].flags, ops[i].run,
                                     done, ctx);
    return AOS_ENOTFOUND;
}

void aos__tools_files_init(aos_tools_t *t)
{
    t->files = (aos_builtin_t){"files",
                               "files of the caller's workspace: read, write, append, list, stat, "
                               "move, delete, search",
                               files_tools, files_call, t};
}
