/* file.c - the temporary-file, fsync, rename, fsync-the-directory sequence
 * (file.h). The temporary file is "<path>.tmp" in the same directory, so the
 * rename never crosses a file system; it is opened with O_NOFOLLOW after an
 * unlink of any earlier one, so a link planted under that name is not
 * followed. */
#include "file/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int aos_file_sync_dir(const char *path)
{
    char dir[PATH_MAX];
    size_t n = strlen(path);
    if (n >= sizeof(dir)) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(dir, path, n + 1);
    char *slash = strrchr(dir, '/');
    if (!slash)
        memcpy(dir, ".", 2);
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int aos_file_tmp(const char *path, char *tmp, size_t tmplen, mode_t mode, aos_err_t *err)
{
    int n = snprintf(tmp, tmplen, "%s.tmp", path);
    if (n < 0 || (size_t)n >= tmplen) {
        aos_err_set(err, AOS_EINVAL, "the path '%s' is too long", path);
        return -1;
    }
    (void)unlink(tmp); /* a copy a crash left */
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
    if (fd < 0) {
        aos_err_set(err, AOS_EIO, "unable to create '%s': %s", tmp, strerror(errno));
        return -1;
    }
    /* the umask may have taken bits of mode away: the file gets mode itself */
    if (fchmod(fd, mode) != 0) {
        aos_err_set(err, AOS_EIO, "unable to set the mode of '%s': %s", tmp, strerror(errno));
        close(fd);
        unlink(tmp);
        return -1;
    }
    return fd;
}

int aos_file_commit(int fd, const char *tmp, const char *path, aos_err_t *err)
{
    const char *what = "write";
    int bad = fsync(fd) != 0;
    int e = errno;
    if (close(fd) != 0 && !bad) {
        bad = 1;
        e = errno;
    }
    if (!bad && rename(tmp, path) != 0) {
        bad = 1;
        e = errno;
        what = "rename";
    }
    if (bad) {
        (void)unlink(tmp);
        return aos_err_set(err, AOS_EIO, "unable to %s '%s': %s", what, path, strerror(e));
    }
    if (aos_file_sync_dir(path) != 0)
        return aos_err_set(err, AOS_EIO, "unable to sync the directory of '%s': %s", path,
                           strerror(errno));
    return 0;
}

int aos_file_replace(const char *path, const void *data, size_t len, mode_t mode, aos_err_t *err)
{
    char tmp[PATH_MAX];
    int fd = aos_file_tmp(path, tmp, sizeof(tmp), mode, err);
    if (fd < 0)
        return err ? err->code : AOS_EIO;
    const char *p = data;
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            int e = w < 0 ? errno : EIO;
            close(fd);
            unlink(tmp);
            return aos_err_set(err, AOS_EIO, "unable to write '%s': %s", tmp, strerror(e));
        }
        p += w;
        len -= (size_t)w;
    }
    return aos_file_commit(fd, tmp, path, err);
}

int aos_file_rename(const char *from, const char *to, aos_err_t *err)
{
    if (rename(from, to) != 0)
        return aos_err_set(err, AOS_EIO, "unable to rename '%s' over '%s': %s", from, to,
                           strerror(errno));
    if (aos_file_sync_dir(to) != 0)
        return aos_err_set(err, AOS_EIO, "unable to sync the directory of '%s': %s", to,
                           strerror(errno));
    return 0;
}
