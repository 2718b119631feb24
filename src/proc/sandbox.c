/* sandbox.c - the walls of a sandboxed child (docs/SANDBOX.md).
 *
 * The child runs as
 *   bwrap --unshare-all [--share-net] --die-with-parent --new-session
 *         <read-only system directories> --proc /proc --dev /dev
 *         --tmpfs /tmp --bind-fd 4 /workspace --chdir /workspace --clearenv
 *         --setenv ... --seccomp 5 --ro-bind-fd 6 /.aos-exec
 *         -- /.aos-exec --status-fd=3 --cpu=N ... -- <command>
 * where fd 4 is the workspace directory (opened by aosd, so bubblewrap
 * need not reach its path), fd 5 the seccomp program built here with
 * libseccomp and exported as BPF, fd 6 the helper aos-exec, and fd 3 the
 * pipe on which the helper reports the command's exit and wait4 resource
 * use. The helper sets the rlimits inside the new user namespace (so
 * RLIMIT_NPROC counts only the sandbox's processes) and forks the command.
 * aosd running as root starts bubblewrap as an unprivileged uid. */
#include "proc/internal.h"
#include "file/file.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <grp.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#include <sched.h>

static const char *const denied[] = {"ptrace",
                                     "process_vm_readv",
                                     "process_vm_writev",
                                     "mount",
                                     "umount2",
                                     "pivot_root",
                                     "move_mount",
                                     "open_tree",
                                     "fsopen",
                                     "fsconfig",
                                     "fsmount",
                                     "fspick",
                                     "mount_setattr",
                                     "swapon",
                                     "swapoff",
                                     "reboot",
                                     "kexec_load",
                                     "kexec_file_load",
                                     "init_module",
                                     "finit_module",
                                     "delete_module",
                                     "keyctl",
                                     "add_key",
                                     "request_key",
                                     "bpf",
                                     "perf_event_open",
                                     "userfaultfd",
                                     "syslog",
                                     "acct",
                                     "quotactl",
                                     "iopl",
                                     "ioperm",
                                     "open_by_handle_at",
                                     "name_to_handle_at",
                                     "fanotify_init",
                                     "setns",
                                     "unshare",
                                     "lookup_dcookie",
                                     "chroot",
                                     NULL};

const char *const *aos_proc_seccomp_denied(void)
{
    return denied;
}

static int build_filter(scmp_filter_ctx ctx, aos_err_t *err)
{
    const uint32_t eperm = SCMP_ACT_ERRNO(EPERM);
    int rc;
    for (size_t i = 0; denied[i]; i++) {
        int nr = seccomp_syscall_resolve_name(denied[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture */
        if ((rc = seccomp_rule_add(ctx, eperm, nr, 0)) != 0)
            return aos_err_set(err, AOS_EINTERNAL, "seccomp: %s: %s", denied[i], strerror(-rc));
    }
    /* new namespaces through clone; clone3 hides its flags in memory */
    static const unsigned long ns_flags[] = {CLONE_NEWNS,     CLONE_NEWUSER, CLONE_NEWPID,
                                             CLONE_NEWNET,    CLONE_NEWIPC,  CLONE_NEWUTS,
                                             CLONE_NEWCGROUP, CLONE_NEWTIME};
    for (size_t i = 0; i < sizeof(ns_flags) / sizeof(ns_flags[0]); i++)
        if ((rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(clone), 1,
                                   SCMP_A0(SCMP_CMP_MASKED_EQ, ns_flags[i], ns_flags[i]))) != 0)
            return aos_err_set(err, AOS_EINTERNAL, "seccomp: clone: %s", strerror(-rc));
    if ((rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0)) != 0)
        return aos_err_set(err, AOS_EINTERNAL, "seccomp: clone3: %s", strerror(-rc));
    /* typing into the terminal of someone else */
    static const unsigned long ioctls[] = {TIOCSTI, TIOCLINUX};
    for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]); i++)
        if ((rc = seccomp_rule_add(ctx, eperm, SCMP_SYS(ioctl), 1,
                                   SCMP_A1(SCMP_CMP_MASKED_EQ, 0xffffffffu, ioctls[i]))) != 0)
            return aos_err_set(err, AOS_EINTERNAL, "seccomp: ioctl: %s", strerror(-rc));
    return 0;
}

int aos_proc_seccomp_bpf(void **out, size_t *len, aos_err_t *err)
{
    *out = NULL;
    *len = 0;
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ALLOW);
    if (!ctx)
        return aos_err_set(err, AOS_ENOMEM, "seccomp_init failed");
    /* calls of another architecture (int 0x80 on x86-64) kill the process */
    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    int rc = build_filter(ctx, err);
    if (rc) {
        seccomp_release(ctx);
        return rc;
    }
    /* export through a memory file, then read it back */
    int fd = memfd_create("aos-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        seccomp_release(ctx);
        return aos_err_set(err, AOS_EIO, "memfd_create: %s", strerror(errno));
    }
    rc = seccomp_export_bpf(ctx, fd);
    seccomp_release(ctx);
    struct stat st;
    if (rc != 0 || fstat(fd, &st) != 0 || st.st_size <= 0) {
        close(fd);
        return aos_err_set(err, AOS_EINTERNAL, "seccomp_export_bpf failed: %s", strerror(-rc));
    }
    char *buf = malloc((size_t)st.st_size);
    if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
        free(buf);
        close(fd);
        return aos_err_set(err, AOS_EIO, "reading the seccomp program failed");
    }
    close(fd);
    *out = buf;
    *len = (size_t)st.st_size;
    return 0;
}

/* The program, built once (loop thread). */
static void *bpf_prog;
static size_t bpf_len;

static int seccomp_fd(aos_err_t *err)
{
    if (!bpf_prog) {
        int rc = aos_proc_seccomp_bpf(&bpf_prog, &bpf_len, err);
        if (rc)
            return rc;
    }
    int fd = memfd_create("aos-seccomp", MFD_CLOEXEC);
    if (fd < 0)
        return aos_err_set(err, AOS_EIO, "memfd_create: %s", strerror(errno));
    if (pwrite(fd, bpf_prog, bpf_len, 0) != (ssize_t)bpf_len) {
        close(fd);
        return aos_err_set(err, AOS_EIO, "writing the seccomp program failed");
    }
    return fd;
}

/* ---- the helper --------------------------------------------------------------- */

static int exists_exec(const char *path)
{
    return access(path, X_OK) == 0;
}

const char *aos_proc_helper_path(void)
{
    static char path[PATH_MAX];
    const char *env = getenv("AOS_EXEC_HELPER");
    if (env && *env) {
        snprintf(path, sizeof(path), "%s", env);
        return exists_exec(path) ? path : NULL;
    }
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = '\0';
    for (int up = 0; up < 2; up++) {
        char *slash = strrchr(self, '/');
        if (!slash)
            return NULL;
        *slash = '\0';
        if ((size_t)snprintf(path, sizeof(path), "%s/aos-exec", self) < sizeof(path) &&
            exists_exec(path))
            return path;
    }
    return NULL;
}

char *aos_proc_helper_copy(const char *src, const char *dir, aos_err_t *err)
{
    char dst[PATH_MAX], tmp[PATH_MAX];
    if ((size_t)snprintf(dst, sizeof(dst), "%s/aos-exec", dir) >= sizeof(dst)) {
        aos_err_set(err, AOS_EINVAL, "the helper's directory path is too long");
        return NULL;
    }
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        aos_err_set(err, AOS_EIO, "unable to copy the helper aos-exec into %s: %s", dir,
                    strerror(errno));
        return NULL;
    }
    int out = aos_file_tmp(dst, tmp, sizeof(tmp), 0755, err);
    int ok = out >= 0, e = 0;
    char buf[65536];
    ssize_t n;
    while (ok && (n = read(in, buf, sizeof(buf))) != 0) {
        if (n < 0) {
            if (errno == EINTR)
                continue;
            e = errno;
            ok = 0;
            break;
        }
        for (ssize_t off = 0; ok && off < n;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0) {
                e = w < 0 ? errno : EIO;
                ok = 0;
            } else {
                off += w;
            }
        }
    }
    close(in);
    if (out < 0)
        return NULL; /* err set by aos_file_tmp */
    if (!ok) {
        close(out);
        (void)unlink(tmp);
        aos_err_set(err, AOS_EIO, "unable to copy the helper aos-exec into %s: %s", dir,
                    strerror(e));
        return NULL;
    }
    if (aos_file_commit(out, tmp, dst, err))
        return NULL;
    char *r = strdup(dst);
    if (!r)
        aos_err_set(err, AOS_ENOMEM, NULL);
    return r;
}

int aos_proc_limit_args(const aos_proc_limits_t *l, char **out, size_t n)
{
    struct {
        const char *name;
        uint64_t v;
    } lim[] = {{"cpu", l->cpu_s},   {"as", l->as_bytes},       {"nofile", l->nofile},
               {"nproc", l->nproc}, {"fsize", l->fsize_bytes}, {"rss", l->rss_bytes}};
    size_t k = 0;
    for (size_t i = 0; i < sizeof(lim) / sizeof(lim[0]) && k < n; i++) {
        if (!lim[i].v)
            continue;
        char buf[64];
        snprintf(buf, sizeof(buf), "--%s=%llu", lim[i].name, (unsigned long long)lim[i].v);
        if (!(out[k] = strdup(buf))) {
            while (k > 0)
                free(out[--k]);
            return -1;
        }
        k++;
    }
    return (int)k;
}

/* ---- the command line ------------------------------------------------------- */

typedef struct {
    char **v;
    size_t n, cap;
    int failed;
} argv_t;

static void arg(argv_t *a, const char *s)
{
    if (a->failed)
        return;
    if (a->n + 2 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 64;
        char **v = realloc(a->v, cap * sizeof(*v));
        if (!v) {
            a->failed = 1;
            return;
        }
        a->v = v;
        a->cap = cap;
    }
    if (!(a->v[a->n] = strdup(s))) {
        a->failed = 1;
        return;
    }
    a->v[++a->n] = NULL;
}

static void args3(argv_t *a, const char *x, const char *y, const char *z)
{
    arg(a, x);
    arg(a, y);
    if (z)
        arg(a, z);
}

/* The system directories, read-only: /usr, and /bin, /lib ... as the host
 * has them (symlinks into /usr on a merged-/usr system), and the few files
 * of /etc that programs need to start. */
static void system_dirs(argv_t *a, int network)
{
    args3(a, "--ro-bind", "/usr", "/usr");
    static const char *const top[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32", NULL};
    for (size_t i = 0; top[i]; i++) {
        char path[64], target[PATH_MAX];
        snprintf(path, sizeof(path), "/%s", top[i]);
        ssize_t n = readlink(path, target, sizeof(target) - 1);
        if (n > 0) {
            target[n] = '\0';
            args3(a, "--symlink", target, path);
        } else {
            args3(a, "--ro-bind-try", path, path);
        }
    }
    static const char *const etc[] = {"/etc/ld.so.cache",  "/etc/ld.so.conf",
                                      "/etc/ld.so.conf.d", "/etc/alternatives",
                                      "/etc/localtime",    "/etc/passwd",
                                      "/etc/group",        "/etc/nsswitch.conf",
                                      "/etc/ssl",          "/etc/ca-certificates",
                                      "/etc/mime.types",   "/etc/python3",
                                      "/etc/python3.11",   NULL};
    for (size_t i = 0; etc[i]; i++)
        args3(a, "--ro-bind-try", etc[i], etc[i]);
    if (network) {
        args3(a, "--ro-bind-try", "/etc/resolv.conf", "/etc/resolv.conf");
        args3(a, "--ro-bind-try", "/etc/hosts", "/etc/hosts");
    }
}

/* 1 if s is a portable environment variable name. */
static int env_name_ok(const char *s, size_t n)
{
    if (n == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!(s[i] == '_' || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
              (s[i] >= '0' && s[i] <= '9')))
            return 0;
    return 1;
}

static int find_bwrap(const char *given, char *out, size_t n)
{
    if (given && *given) {
        snprintf(out, n, "%s", given);
        return exists_exec(out);
    }
    const char *path = getenv("PATH");
    if (!path || !*path)
        path = "/usr/bin:/bin";
    while (*path) {
        const char *colon = strchr(path, ':');
        size_t len = colon ? (size_t)(colon - path) : strlen(path);
        if ((size_t)snprintf(out, n, "%.*s/bwrap", (int)len, path) < n && exists_exec(out))
            return 1;
        path += len + (colon ? 1 : 0);
    }
    return 0;
}

int aos__proc_sandbox_prepare(const aos_proc_opts_t *o, aos__proc_spawn_t *sp, aos_err_t *err)
{
    const aos_proc_sandbox_t *sb = o->sandbox;
    for (int i = 0; i < AOS__PROC_SANDBOX_FDS; i++)
        sp->fds[i] = -1;
    char bwrap[PATH_MAX];
    if (!find_bwrap(sb->bwrap, bwrap, sizeof(bwrap)))
        return aos_err_set(err, AOS_EUNAVAIL,
                           "sandbox unavailable: bubblewrap (bwrap) is not installed");
    if (!sb->helper || !exists_exec(sb->helper))
        return aos_err_set(err, AOS_EUNAVAIL,
                           "sandbox unavailable: the helper aos-exec is missing");
    if (!sb->workspace)
        return aos_err_set(err, AOS_EINVAL, "a sandboxed child needs a workspace");
    if ((sp->fds[0] = open(sb->workspace, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
        return aos_err_set(err, AOS_EIO, "unable to open the workspace: %s", strerror(errno));
    if ((sp->fds[2] = open(sb->helper, O_PATH | O_CLOEXEC)) < 0)
        return aos_err_set(err, AOS_EIO, "unable to open the helper: %s", strerror(errno));
    int rc = seccomp_fd(err);
    if (rc < 0)
        return rc;
    sp->fds[1] = rc;

    argv_t a = {0};
    arg(&a, bwrap);
    arg(&a, "--unshare-all");
    if (sb->network)
        arg(&a, "--share-net");
    arg(&a, "--die-with-parent");
    arg(&a, "--new-session");
    system_dirs(&a, sb->network);
    args3(&a, "--proc", "/proc", NULL);
    args3(&a, "--dev", "/dev", NULL);
    args3(&a, "--tmpfs", "/tmp", NULL);
    args3(&a, "--bind-fd", "4", AOS_PROC_WORKDIR);
    args3(&a, "--ro-bind-fd", "6", "/.aos-exec");
    /* the root (a tmpfs bubblewrap made, with /etc's mount points) is
     * read-only: only /workspace and /tmp are writable */
    args3(&a, "--remount-ro", "/", NULL);
    args3(&a, "--chdir", AOS_PROC_WORKDIR, NULL);
    args3(&a, "--uid", "1000", NULL);
    args3(&a, "--gid", "1000", NULL);
    args3(&a, "--hostname", "sandbox", NULL);
    arg(&a, "--clearenv");
    args3(&a, "--setenv", "PATH", "/usr/local/bin:/usr/bin:/bin");
    args3(&a, "--setenv", "HOME", AOS_PROC_WORKDIR);
    args3(&a, "--setenv", "TMPDIR", "/tmp");
    args3(&a, "--setenv", "LANG", "C.UTF-8");
    for (size_t i = 0; o->env && o->env[i]; i++) {
        const char *eq = strchr(o->env[i], '=');
        if (!eq || !env_name_ok(o->env[i], (size_t)(eq - o->env[i]))) {
            for (size_t j = 0; j < a.n; j++)
                free(a.v[j]);
            free(a.v);
            return aos_err_set(err, AOS_EINVAL, "environment entry %zu is not NAME=value", i);
        }
        char name[256];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - o->env[i]), o->env[i]);
        args3(&a, "--setenv", name, eq + 1);
    }
    args3(&a, "--seccomp", "5", NULL);
    arg(&a, "--");
    arg(&a, "/.aos-exec");
    arg(&a, "--status-fd=3");
    if (!sb->network)
        arg(&a, "--no-net"); /* Landlock: no TCP either, where the kernel can say so */
    char *lim[8];
    int nl = aos_proc_limit_args(&sb->limits, lim, 8);
    if (nl < 0)
        a.failed = 1;
    for (int i = 0; i < nl; i++) {
        arg(&a, lim[i]);
        free(lim[i]);
    }
    arg(&a, "--");
    arg(&a, o->file);
    for (size_t i = 0; o->argv[i]; i++)
        arg(&a, o->argv[i]);
    sp->argv = a.v;
    if (a.failed)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    sp->file = sp->argv[0];
    sp->env = calloc(2, sizeof(char *));
    if (!sp->env || !(sp->env[0] = strdup("PATH=/usr/bin:/bin")))
        return aos_err_set(err, AOS_ENOMEM, NULL);
    if (geteuid() == 0) {
        sp->uid = sb->uid ? sb->uid : 65534;
        sp->gid = sb->gid ? sb->gid : 65534;
    }
    return 0;
}

void aos__proc_spawn_release(aos__proc_spawn_t *sp, int sandboxed)
{
    if (sandboxed) {
        for (size_t i = 0; sp->argv && sp->argv[i]; i++)
            free(sp->argv[i]);
        free(sp->argv);
        for (size_t i = 0; sp->env && sp->env[i]; i++)
            free(sp->env[i]);
        for (int i = 0; i < AOS__PROC_SANDBOX_FDS; i++)
            if (sp->fds[i] >= 0)
                close(sp->fds[i]);
    }
    free(sp->env);
    memset(sp, 0, sizeof(*sp));
}

static void status_line(json_t *j, aos_proc_exit_t *ex);

/* The helper's report: a line {"landlock":N} when it has applied its
 * Landlock ruleset (before the command starts), then one line with the
 * command's end and resource use. */
void aos__proc_status_parse(const aos_proc_t *p, aos_proc_exit_t *ex)
{
    const char *s = p->sbuf.ptr, *end = p->sbuf.ptr + p->sbuf.len;
    while (s && s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t n = nl ? (size_t)(nl - s) : (size_t)(end - s);
        json_t *j = n ? json_loadb(s, n, 0, NULL) : NULL;
        s = nl ? nl + 1 : end;
        if (!json_is_object(j)) {
            json_decref(j);
            continue;
        }
        json_t *ll = json_object_get(j, "landlock");
        if (json_is_integer(ll) && json_integer_value(ll) >= 0 && json_integer_value(ll) < 1000) {
            ex->landlock_abi = (int)json_integer_value(ll);
            json_decref(j);
            continue;
        }
        status_line(j, ex);
        json_decref(j);
    }
}

static void status_line(json_t *j, aos_proc_exit_t *ex)
{
    json_t *sig = json_object_get(j, "signal"), *st = json_object_get(j, "status");
    const char *why = json_string_value(json_object_get(j, "reason"));
    if (why && !strcmp(why, "memory"))
        ex->reason = "memory"; /* the helper killed it */
    if (json_is_integer(sig)) {
        ex->term_signal = (int)json_integer_value(sig);
        ex->exit_status = 0;
    } else if (json_is_integer(st)) {
        ex->term_signal = 0;
        ex->exit_status = json_integer_value(st);
    }
    ex->has_usage = 1;
    ex->usage.user_us = json_integer_value(json_object_get(j, "user_us"));
    ex->usage.sys_us = json_integer_value(json_object_get(j, "sys_us"));
    ex->usage.max_rss_kb = json_integer_value(json_object_get(j, "max_rss_kb"));
    ex->usage.minflt = json_integer_value(json_object_get(j, "minflt"));
    ex->usage.majflt = json_integer_value(json_object_get(j, "majflt"));
    ex->usage.nvcsw = json_integer_value(json_object_get(j, "nvcsw"));
    ex->usage.nivcsw = json_integer_value(json_object_get(j, "nivcsw"));
}

/* ---- the probe ---------------------------------------------------------------- */

int aos_proc_sandbox_probe(const char *bwrap_given, const char *helper, aos_err_t *err)
{
    char bwrap[PATH_MAX];
    if (!find_bwrap(bwrap_given, bwrap, sizeof(bwrap)))
        return aos_err_set(err, AOS_EUNAVAIL,
                           "sandbox unavailable: bubblewrap (bwrap) is not installed");
    if (!helper || !exists_exec(helper))
        return aos_err_set(err, AOS_EUNAVAIL,
                           "sandbox unavailable: the helper aos-exec is missing");
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return aos_err_set(err, AOS_EIO, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return aos_err_set(err, AOS_EIO, "fork: %s", strerror(errno));
    }
    if (pid == 0) {
        dup2(pfd[1], 2);
        int devnull = open("/dev/null", O_RDWR);
        if (devnull >= 0) {
            dup2(devnull, 0);
            dup2(devnull, 1);
        }
        if (geteuid() == 0 && (setgroups(0, NULL) || setgid(65534) || setuid(65534)))
            _exit(126);
        char *const argv[] = {bwrap,
                              "--unshare-all",
                              "--die-with-parent",
                              "--new-session",
                              "--ro-bind",
                              "/usr",
                              "/usr",
                              "--symlink",
                              "usr/bin",
                              "/bin",
                              "--symlink",
                              "usr/lib",
                              "/lib",
                              "--symlink",
                              "usr/lib64",
                              "/lib64",
                              "--proc",
                              "/proc",
                              "--dev",
                              "/dev",
                              "--tmpfs",
                              "/tmp",
                              "--clearenv",
                              "--",
                              "/usr/bin/true",
                              NULL};
        char *const env[] = {"PATH=/usr/bin:/bin", NULL};
        execve(bwrap, argv, env);
        _exit(127);
    }
    close(pfd[1]);
    char why[512];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof(why) - 1 && (r = read(pfd[0], why + got, sizeof(why) - 1 - got)) != 0) {
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            break;
        got += (size_t)r;
    }
    close(pfd[0]);
    why[got] = '\0';
    while (got > 0 && (why[got - 1] == '\n' || why[got - 1] == '\r'))
        why[--got] = '\0';
    int status = 0;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    return aos_err_set(err, AOS_EUNAVAIL,
                       "sandbox unavailable: bubblewrap cannot create its namespaces here (user "
                       "namespaces disabled?): %.200s",
                       got ? why : "no message");
}
