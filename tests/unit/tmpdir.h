/* tmpdir.h - a temporary directory for a unit test: made with mkdtemp and
 * removed with the files in it (one level deep) afterwards. Header-only,
 * shared by the tests that need a data directory. */
#ifndef AOS_TEST_TMPDIR_H
#define AOS_TEST_TMPDIR_H

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Fills dir with a new "/tmp/aos-<name>-XXXXXX"; 0 or -1. */
static inline int aos_test_mkdtemp(char *dir, size_t n, const char *name)
{
    snprintf(dir, n, "/tmp/aos-%s-XXXXXX", name);
    return mkdtemp(dir) ? 0 : -1;
}

/* Removes dir and the files in it. */
static inline void aos_test_rmdir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];
    while (d && (e = readdir(d))) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        unlink(path);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

#endif
