/* ws.c - workspace confinement: every path a tool is given is resolved by
 * the kernel beneath the workspace's directory fd with openat2
 * (RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so that "..", absolute
 * symlinks and symlinks leading out fail with EXDEV however the tree
 * changes during the call (a check-then-open on path strings would lose
 * that race). A file is first opened O_PATH (no side effect even on a
 * device) and refused unless it is a regular file or a directory with one
 * link; the real open then checks it got the same inode. */
#include "tools/tools.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

char *aos_tools_ws_dir(const char *data_dir, const aos_caller_t *caller, aos_err_t *err)
{
    const json_t *w = caller ? json_object_get(caller->caps, "workspace") : NULL;
    char *dir = NULL;
    if (json_is_string(w) && json_string_length(w) > 0) {
        const char *s = json_string_value(w);
        if (s[0] != '/' || strlen(s) != json_string_length(w)) {
            aos_err_set(err, AOS_EINVAL, "caps.workspace must be an absolute directory path");
            return NULL;
        }
        dir = strdup(s);
    } else if (w && !json_is_null(w) && !(json_is_string(w) && json_string_length(w) == 0)) {
        aos_err_set(err, AOS_EINVAL, "caps.workspace must be a string");
        return NULL;
    } else if (data_dir && *data_dir) {
        size_t n = strlen(data_dir) + sizeof("/workspace");
        dir = malloc(n);
        if (dir)
            snprintf(dir, n, "%s/workspace", data_dir);
    } else {
        aos_err_set(err, AOS_EINVAL, "the caller has no workspace");
        return NULL;
    }
    if (!dir)
        aos_err_set(err, AOS_ENOMEM, NULL);
    return dir;
}

int aos_tools_ws_root(const char *dir, aos_err_t *err)
{
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return aos_err_set(err, AOS_EIO, "unable to make the workspace: %s", strerror(errno));
    int fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return aos_err_set(err, AOS_EIO, "unable to open the workspace: %s", strerror(errno));
    return fd;
}

int aos_tools_ws_check(const char *rel, size_t len, aos_err_t *err)
{
    if (!rel || len == 0)
        return aos_err_set(err, AOS_EINVAL, "the path is empty");
    if (strlen(rel) != len)
        return aos_err_set(err, AOS_EINVAL, "the path holds a NUL character");
    if (len >= 4096)
        return aos_err_set(err, AOS_EINVAL, "the path is longer than 4095 bytes");
    if (rel[0] == '/')
        return aos_err_set(err, AOS_EINVAL,
                           "'%.200s' is absolute: paths are relative to the workspace", rel);
    const char *p = rel;
    int seen = 0; /* a component other than "." came before: "./.aos" is .aos too */
    for (;;) {
        const char *e = strchr(p, '/');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        if (n == 2 && p[0] == '.' && p[1] == '.')
            return aos_err_set(err, AOS_EINVAL, "'%.200s': '..' is not allowed in a workspace path",
                               rel);
        if (!seen && n == 4 && !memcmp(p, ".aos", 4))
            return aos_err_set(err, AOS_EFORBIDDEN, "'%.200s': .aos is reserved for aosd", rel);
        if (n && !(n == 1 && p[0] == '.'))
            seen = 1;
        if (!e)
            break;
        p = e + 1;
    }
    return 0;
}

/* openat2 beneath dirfd; EAGAIN (a rename raced the lookup) is retried. */
static int beneath(int dirfd, const char *rel, int flags, mode_t mode)
{
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC),
                           .mode = (flags & O_CREAT) ? mode : 0,
                           .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
    long fd = -1;
    for (int i = 0; i < 64; i++) {
        fd = syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0 || errno != EAGAIN)
            break;
    }
    return (int)fd;
}

/* The message of a failed resolution of rel (errno as openat2 left it). */
static int open_error(const char *rel, aos_err_t *err)
{
    int e = errno;
    switch (e) {
    case EXDEV:
        return aos_err_set(err, AOS_EFORBIDDEN, "'%.200s' leads outside the workspace", rel);
    case ELOOP:
        return aos_err_set(err, AOS_EFORBIDDEN, "'%.200s': too many levels of symbolic links", rel);
    case ENOENT:
        return aos_err_set(err, AOS_ENOTFOUND, "no such file or directory '%.200s'", rel);
    case ENOTDIR:
        return aos_err_set(err, AOS_EINVAL, "'%.200s': a component is not a directory", rel);
    case EISDIR:
        return aos_err_set(err, AOS_EINVAL, "'%.200s' is a directory", rel);
    case EEXIST:
        return aos_err_set(err, AOS_ECONFLICT, "'%.200s' exists", rel);
    case EACCES:
    case EPERM:
    case EROFS:
        return aos_err_set(err, AOS_EFORBIDDEN, "'%.200s': %s", rel, strerror(e));
    case ENAMETOOLONG:
        return aos_err_set(err, AOS_EINVAL, "'%.200s': name too long", rel);
    case ENOSPC:
    case EDQUOT:
        return aos_err_set(err, AOS_EIO, "'%.200s': no space left", rel);
    default:
        return aos_err_set(err, AOS_EIO, "'%.200s': %s", rel, strerror(e));
    }
}

/* Refuses what is not a regular file or directory, and a file with other
 * hard links (which may be outside the workspace). */
static int check_kind(const struct stat *sb, const char *rel, int ws_flags, aos_err_t *err)
{
    if (!S_ISREG(sb->st_mode) && !S_ISDIR(sb->st_mode))
        return aos_err_set(err, AOS_EFORBIDDEN,
                           "'%.200s' is a device, FIFO or socket: only regular files and "
                           "directories may be used",
                           rel);
    if (S_ISREG(sb->st_mode) && sb->st_nlink > 1 && !(ws_flags & AOS_TOOLS_WS_LINKS_OK))
        return aos_err_set(err, AOS_EFORBIDDEN,
                           "'%.200s' has %lu hard links: a file linked from elsewhere may be "
                           "outside the workspace",
                           rel, (unsigned long)sb->st_nlink);
    return 0;
}

int aos_tools_ws_open(int root, const char *rel, int flags, mode_t mode, int ws_flags,
                      aos_err_t *err)
{
    struct stat pre, sb;
    int have_pre = 0;
    flags &= ~O_TRUNC;
    int creat_excl = (flags & O_CREAT) && (flags & O_EXCL);
    if (!creat_excl) {
        /* look first without opening for I/O: a device's open may act */
        int p = beneath(root, rel, O_PATH | ((flags & O_NOFOLLOW) ? O_NOFOLLOW : 0), 0);
        if (p < 0) {
            if (!(errno == ENOENT && (flags & O_CREAT)))
                return open_error(rel, err);
        } else {
            int rc = fstat(p, &pre);
            close(p);
            if (rc != 0)
                return aos_err_set(err, AOS_EIO, "'%.200s': %s", rel, strerror(errno));
            if ((rc = check_kind(&pre, rel, ws_flags, err)))
                return rc;
            have_pre = 1;
        }
    }
    int path_only = (flags & O_PATH) != 0;
    int fd = beneath(root, rel, path_only ? flags : flags | O_NONBLOCK | O_NOCTTY, mode);
    if (fd < 0)
        return open_error(rel, err);
    int rc = 0;
    if (fstat(fd, &sb) != 0)
        rc = aos_err_set(err, AOS_EIO, "'%.200s': %s", rel, strerror(errno));
    else if ((rc = check_kind(&sb, rel, ws_flags, err)))
        ;
    else if (have_pre && (pre.st_ino != sb.st_ino || pre.st_dev != sb.st_dev))
        rc = aos_err_set(err, AOS_ECONFLICT, "'%.200s' changed while it was being opened", rel);
    else if (!path_only && fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0)
        rc = aos_err_set(err, AOS_EIO, "'%.200s': %s", rel, strerror(errno));
    if (rc) {
        close(fd);
        return rc;
    }
    return fd;
}

int aos_tools_ws_parent(int root, const char *rel, int mkdirs, const char **name, aos_err_t *err)
{
    const char *slash = strrchr(rel, '/');
    const char *last = slash ? slash + 1 : rel;
    if (!*last || !strcmp(last, "."))
        return aos_err_set(err, AOS_EINVAL, "'%.200s' does not name a file", rel);
    *name = last;
    if (!slash) {
        int fd = beneath(root, ".", O_DIRECTORY | O_RDONLY, 0);
        return fd < 0 ? open_error(rel, err) : fd;
    }
    size_t n = (size_t)(slash - rel);
    char *dir = strndup(rel, n ? n : 1);
    if (!dir)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    int fd = beneath(root, dir, O_DIRECTORY | O_RDONLY, 0);
    if (fd >= 0 || errno != ENOENT || !mkdirs) {
        if (fd < 0)
            fd = open_error(dir, err);
        free(dir);
        return fd;
    }
    /* make the missing directories one component at a time, each looked
     * up beneath the one before */
    int cur = beneath(root, ".", O_DIRECTORY | O_RDONLY, 0);
    char *save = NULL;
    for (char *c = strtok_r(dir, "/", &save); c && cur >= 0; c = strtok_r(NULL, "/", &save)) {
        if (!strcmp(c, "."))
            continue;
        if (mkdirat(cur, c, 0755) != 0 && errno != EEXIST) {
            int rc = aos_err_set(err, errno == ENOSPC ? AOS_EIO : AOS_EFORBIDDEN,
                                 "unable to make the directory '%.200s': %s", c, strerror(errno));
            close(cur);
            free(dir);
            return rc;
        }
        int next = beneath(cur, c, O_DIRECTORY | O_RDONLY, 0);
        int e = errno;
        close(cur);
        cur = next;
        if (cur < 0) {
            errno = e;
            int rc = open_error(rel, err);
            free(dir);
            return rc;
        }
    }
    free(dir);
    if (cur < 0)
        return open_error(rel, err);
    return cur;
}
