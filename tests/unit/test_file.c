/* test_file.c - replacing a file (src/file): the content and mode exact
 * whatever the umask, no temporary file left, an open reader keeps the old
 * content, a temporary file a crash left (or a link planted under its name)
 * does not get in the way, and every failure leaves the path as it was and
 * no temporary file behind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "err/err.h"
#include "file/file.h"

static char dir[] = "/tmp/aos-test-file-XXXXXX";

static void at(char *out, const char *name)
{
    snprintf(out, PATH_MAX, "%s/%s", dir, name);
}

static char *slurp(const char *path)
{
    static char text[4096];
    FILE *f = fopen(path, "r");
    if (!f)
        return NULL;
    size_t n = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    text[n] = '\0';
    return text;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

static void test_replace_writes_content_and_mode(void **state)
{
    (void)state;
    char p[PATH_MAX], tmp[PATH_MAX + 8];
    at(p, "key");
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    mode_t old = umask(077);
    aos_err_t err = {0, ""};
    assert_int_equal(aos_file_replace(p, "one\n", 4, 0644, &err), 0);
    umask(old);
    assert_string_equal(slurp(p), "one\n");
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0644); /* the mode given, not the umask's */
    assert_false(exists(tmp));

    /* replaced: a reader that opened the old file keeps reading it whole */
    int fd = open(p, O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(aos_file_replace(p, "two, longer\n", 12, 0600, &err), 0);
    char buf[16] = "";
    assert_int_equal(read(fd, buf, sizeof(buf) - 1), 4);
    assert_string_equal(buf, "one\n");
    close(fd);
    assert_string_equal(slurp(p), "two, longer\n");
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* empty content is a file too */
    assert_int_equal(aos_file_replace(p, "", 0, 0600, &err), 0);
    assert_string_equal(slurp(p), "");
    unlink(p);
}

static void test_leftovers_and_planted_links(void **state)
{
    (void)state;
    char p[PATH_MAX], tmp[PATH_MAX + 8], victim[PATH_MAX];
    at(p, "graph");
    at(victim, "victim");
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    aos_err_t err = {0, ""};
    /* a half-written temporary file from a crash */
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs("torn half of an earl", f);
    fclose(f);
    assert_int_equal(aos_file_replace(p, "whole\n", 6, 0600, &err), 0);
    assert_string_equal(slurp(p), "whole\n");
    assert_false(exists(tmp));
    /* a link planted under the temporary name: removed, its target untouched */
    f = fopen(victim, "w");
    assert_non_null(f);
    fputs("keep me", f);
    fclose(f);
    assert_int_equal(symlink(victim, tmp), 0);
    assert_int_equal(aos_file_replace(p, "again\n", 6, 0600, &err), 0);
    assert_string_equal(slurp(victim), "keep me");
    assert_string_equal(slurp(p), "again\n");
    assert_false(exists(tmp));
    unlink(p);
    unlink(victim);
}

static void test_failures_change_nothing(void **state)
{
    (void)state;
    char p[PATH_MAX], tmp[PATH_MAX + 8];
    aos_err_t err = {0, ""};
    /* no such directory */
    at(p, "missing/key");
    assert_int_equal(aos_file_replace(p, "x", 1, 0600, &err), AOS_EIO);
    assert_non_null(strstr(err.msg, "missing/key.tmp"));
    /* a path too long for the temporary name */
    char longp[PATH_MAX + 16];
    memset(longp, 'a', sizeof(longp) - 1);
    longp[sizeof(longp) - 1] = '\0';
    err.code = 0;
    assert_int_equal(aos_file_replace(longp, "x", 1, 0600, &err), AOS_EINVAL);
    assert_int_equal(err.code, AOS_EINVAL);
    /* the rename fails (a non-empty directory is in the way): no temporary
     * file left, the directory as it was */
    at(p, "adir");
    assert_int_equal(mkdir(p, 0700), 0);
    char inner[PATH_MAX + 8];
    snprintf(inner, sizeof(inner), "%s/inner", p);
    assert_int_equal(aos_file_replace(inner, "in", 2, 0600, &err), 0);
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    assert_int_equal(aos_file_replace(p, "over", 4, 0600, &err), AOS_EIO);
    assert_non_null(strstr(err.msg, "rename"));
    assert_false(exists(tmp));
    assert_string_equal(slurp(inner), "in");
    /* a streaming writer's commit closes its descriptor on failure too */
    int fd = aos_file_tmp(p, tmp, sizeof(tmp), 0600, &err);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "z", 1), 1);
    assert_int_equal(aos_file_commit(fd, tmp, p, &err), AOS_EIO);
    assert_int_equal(fcntl(fd, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    assert_false(exists(tmp));
    unlink(inner);
    rmdir(p);
}

static void test_rename_and_sync_dir(void **state)
{
    (void)state;
    char a[PATH_MAX], b[PATH_MAX];
    at(a, "master.key.next");
    at(b, "master.key");
    aos_err_t err = {0, ""};
    assert_int_equal(aos_file_replace(b, "old", 3, 0600, &err), 0);
    assert_int_equal(aos_file_replace(a, "new", 3, 0600, &err), 0);
    assert_int_equal(aos_file_rename(a, b, &err), 0);
    assert_string_equal(slurp(b), "new");
    assert_false(exists(a));
    assert_int_equal(aos_file_rename(a, b, &err), AOS_EIO); /* from is gone */
    assert_non_null(strstr(err.msg, "master.key.next"));
    assert_string_equal(slurp(b), "new");
    assert_int_equal(aos_file_rename(a, b, NULL), AOS_EIO); /* err may be NULL */
    assert_int_equal(aos_file_sync_dir(b), 0);
    assert_int_equal(aos_file_sync_dir("/etc"), 0);     /* the root's */
    assert_int_equal(aos_file_sync_dir("no-slash"), 0); /* the working directory's */
    assert_int_equal(aos_file_sync_dir("/no/such/dir/x"), -1);
    unlink(b);
}

int main(void)
{
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_replace_writes_content_and_mode),
        cmocka_unit_test(test_leftovers_and_planted_links),
        cmocka_unit_test(test_failures_change_nothing),
        cmocka_unit_test(test_rename_and_sync_dir),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
