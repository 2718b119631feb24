/* aos-exec - the last step into a sandbox (src/proc/sandbox.c): runs
 * inside bubblewrap, after its seccomp filter, as
 *   aos-exec [--status-fd=N] [--cpu=S] [--as=B] [--nofile=N] [--nproc=N]
 *            [--fsize=B] [--rss=B] [--no-net] -- FILE ARGV0 ARGS...
 * Where the kernel has Landlock it first restricts itself and so the
 * command (landlock() below): read and execute on the system directories
 * bubblewrap bound, read on /proc, read and write of the device nodes,
 * everything on /workspace and /tmp only; with --no-net (a sandbox
 * without network) no TCP bind or connect (ABI 4); no abstract UNIX
 * sockets or signals out of the sandbox (ABI 6). It writes the ABI that
 * applied as a first line {"landlock":N} on the status fd (0: the kernel
 * has none); a kernel that has Landlock but refuses the ruleset is a
 * failure (exit 126), never an unconfined run. It sets the rlimits (soft and hard: the command
 * cannot raise them; the hard CPU limit is a second above the soft one, so SIGXCPU comes first),
 * forks the command, forwards SIGTERM/SIGINT/SIGHUP to it; with --rss it
 * checks the resident memory of the sandbox's processes every 20 ms and
 * kills them all past the limit ("reason":"memory"); it waits for it
 * with wait4 and writes one JSON line to the status fd: {"status":N} or
 * {"signal":N}, and the command's resource use. Then it exits as the
 * command did. Standalone: no aoscore, no allocation after the fork. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
}

/* Resident memory of every process of the sandbox but this one, in bytes
 * (its /proc is the sandbox's PID namespace). */
static unsigned long long sandbox_rss(void)
{
    unsigned long long total = 0;
    long page = sysconf(_SC_PAGESIZE);
    DIR *d = opendir("/proc");
    if (!d)
        return 0;
    struct dirent *e;
    pid_t self = getpid();
    while ((e = readdir(d))) {
        char *end;
        long pid = strtol(e->d_name, &end, 10);
        if (*end || pid <= 1 || pid == self)
            continue;
        char path[64], buf[128];
        snprintf(path, sizeof(path), "/proc/%ld/statm", pid);
        FILE *f = fopen(path, "re");
        if (!f)
            continue;
        if (fgets(buf, sizeof(buf), f)) {
            /* statm: size resident shared ... (pages) */
            char *p2, *q;
            errno = 0;
            unsigned long long size = strtoull(buf, &p2, 10);
            unsigned long long rss = strtoull(p2, &q, 10);
            if (!errno && p2 != buf && q != p2 && rss <= size)
                total += rss * (unsigned long long)page;
        }
        fclose(f);
    }
    closedir(d);
    return total;
}

/* ---- Landlock (its uapi, as the kernel defines it; the libc headers may
 * predate the later ABIs) ---------------------------------------------- */

#ifndef __NR_landlock_create_ruleset
#define __NR_landlock_create_ruleset 444
#define __NR_landlock_add_rule       445
#define __NR_landlock_restrict_self  446
#endif

enum {
    LL_FS_EXECUTE = 1 << 0,
    LL_FS_WRITE_FILE = 1 << 1,
    LL_FS_READ_FILE = 1 << 2,
    LL_FS_READ_DIR = 1 << 3,
    LL_FS_REMOVE_DIR = 1 << 4,
    LL_FS_REMOVE_FILE = 1 << 5,
    LL_FS_MAKE_CHAR = 1 << 6,
    LL_FS_MAKE_DIR = 1 << 7,
    LL_FS_MAKE_REG = 1 << 8,
    LL_FS_MAKE_SOCK = 1 << 9,
    LL_FS_MAKE_FIFO = 1 << 10,
    LL_FS_MAKE_BLOCK = 1 << 11,
    LL_FS_MAKE_SYM = 1 << 12,
    LL_FS_REFER = 1 << 13,    /* ABI 2 */
    LL_FS_TRUNCATE = 1 << 14, /* ABI 3 */
    LL_FS_IOCTL_DEV = 1 << 15 /* ABI 5 */
};
#define LL_NET_BIND_TCP           1ULL /* ABI 4 */
#define LL_NET_CONNECT_TCP        2ULL /* ABI 4 */
#define LL_SCOPE_ABSTRACT_UNIX    1ULL /* ABI 6 */
#define LL_SCOPE_SIGNAL           2ULL /* ABI 6 */
#define LL_RULE_PATH_BENEATH      1
#define LL_CREATE_RULESET_VERSION 1U

struct ll_ruleset_attr {
    uint64_t handled_access_fs, handled_access_net, scoped;
};
struct ll_path_beneath_attr {
    uint64_t allowed_access;
    int32_t parent_fd;
} __attribute__((packed));

/* The ABI the kernel answers, 0 when it has no Landlock (not built, or
 * not enabled at boot). */
static int landlock_abi(void)
{
    long abi = syscall(__NR_landlock_create_ruleset, NULL, 0, LL_CREATE_RULESET_VERSION);
    return abi > 0 ? (int)abi : 0;
}

/* Allows access under path (a path missing in this sandbox is skipped). */
static int landlock_allow(int rs, const char *path, uint64_t access, uint64_t handled)
{
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_WRITE_FILE | LL_FS_TRUNCATE |
                  LL_FS_IOCTL_DEV; /* a file's own rights only */
    struct ll_path_beneath_attr pb = {.allowed_access = access & handled, .parent_fd = fd};
    long rc = syscall(__NR_landlock_add_rule, rs, LL_RULE_PATH_BENEATH, &pb, 0);
    int e = errno;
    close(fd);
    errno = e;
    return rc == 0 ? 0 : -1;
}

/* Restricts this process and what it starts, by what the kernel's ABI
 * offers; the ABI applied, 0 when there is none, -1 (errno, *what) when
 * the kernel has Landlock and refused it. */
static int landlock(int no_net, const char **what)
{
    int abi = landlock_abi();
    if (abi == 0)
        return 0;
    const uint64_t rx = LL_FS_EXECUTE | LL_FS_READ_FILE | LL_FS_READ_DIR;
    uint64_t fs = (LL_FS_MAKE_SYM << 1) - 1; /* ABI 1 */
    if (abi >= 2)
        fs |= LL_FS_REFER;
    if (abi >= 3)
        fs |= LL_FS_TRUNCATE;
    if (abi >= 5)
        fs |= LL_FS_IOCTL_DEV;
    struct ll_ruleset_attr attr = {.handled_access_fs = fs};
    size_t size = sizeof(uint64_t);
    if (abi >= 4) {
        size = 2 * sizeof(uint64_t);
        if (no_net)
            attr.handled_access_net = LL_NET_BIND_TCP | LL_NET_CONNECT_TCP; /* none allowed */
    }
    if (abi >= 6) {
        size = sizeof(attr);
        attr.scoped = LL_SCOPE_ABSTRACT_UNIX | LL_SCOPE_SIGNAL;
    }
    *what = "landlock_create_ruleset";
    int rs = (int)syscall(__NR_landlock_create_ruleset, &attr, size, 0);
    if (rs < 0)
        return -1;
    static const struct {
        const char *path;
        uint64_t access;
    } rules[] = {
        /* what bubblewrap bound read-only (src/proc/sandbox.c); /bin, /lib
         * ... are symlinks into /usr on a merged-/usr system */
        {"/usr", rx},
        {"/bin", rx},
        {"/sbin", rx},
        {"/lib", rx},
        {"/lib32", rx},
        {"/lib64", rx},
        {"/libx32", rx},
        {"/etc", rx},
        {"/.aos-exec", rx},
        {"/proc", LL_FS_READ_FILE | LL_FS_READ_DIR},
        /* the device nodes (null, zero, tty, urandom, ptmx, pts): no new ones */
        {"/dev",
         LL_FS_READ_FILE | LL_FS_READ_DIR | LL_FS_WRITE_FILE | LL_FS_TRUNCATE | LL_FS_IOCTL_DEV},
        {"/workspace", ~0ULL},
        {"/tmp", ~0ULL},
    };
    *what = "landlock_add_rule";
    for (size_t i = 0; i < sizeof(rules) / sizeof(rules[0]); i++)
        if (landlock_allow(rs, rules[i].path, rules[i].access, fs) != 0) {
            int e = errno;
            close(rs);
            errno = e;
            return -1;
        }
    /* bubblewrap set no_new_privs for its seccomp filter; again, to be sure */
    *what = "landlock_restrict_self";
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        syscall(__NR_landlock_restrict_self, rs, 0) != 0) {
        int e = errno;
        close(rs);
        errno = e;
        return -1;
    }
    close(rs);
    return abi;
}

static int set_limit(int res, const char *v)
{
    char *end;
    errno = 0;
    unsigned long long n = strtoull(v, &end, 10);
    if (errno || *end || end == v)
        return -1;
    /* CPU: SIGXCPU at the soft limit, SIGKILL a second later if caught */
    struct rlimit rl = {(rlim_t)n, (rlim_t)n + (res == RLIMIT_CPU ? 1 : 0)};
    return setrlimit(res, &rl);
}

int main(int argc, char **argv)
{
    int status_fd = -1, no_net = 0, i;
    unsigned long long rss_max = 0;
    static const struct {
        const char *name;
        int res;
    } lims[] = {{"--cpu=", RLIMIT_CPU},
                {"--as=", RLIMIT_AS},
                {"--nofile=", RLIMIT_NOFILE},
                {"--nproc=", RLIMIT_NPROC},
                {"--fsize=", RLIMIT_FSIZE}};
    for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++) {
        size_t k, n = sizeof(lims) / sizeof(lims[0]);
        if (!strncmp(argv[i], "--status-fd=", 12)) {
            char *end;
            long fd = strtol(argv[i] + 12, &end, 10);
            if (*end || end == argv[i] + 12 || fd < 3 || fd > 1024) {
                fprintf(stderr, "aos-exec: bad option '%s'\n", argv[i]);
                return 126;
            }
            status_fd = (int)fd;
            continue;
        }
        if (!strcmp(argv[i], "--no-net")) {
            no_net = 1;
            continue;
        }
        if (!strncmp(argv[i], "--rss=", 6)) {
            char *end;
            errno = 0;
            rss_max = strtoull(argv[i] + 6, &end, 10);
            if (errno || *end || rss_max == 0) {
                fprintf(stderr, "aos-exec: bad option '%s'\n", argv[i]);
                return 126;
            }
            continue;
        }
        for (k = 0; k < n; k++)
            if (!strncmp(argv[i], lims[k].name, strlen(lims[k].name)))
                break;
        if (k == n || set_limit(lims[k].res, argv[i] + strlen(lims[k].name)) != 0) {
            fprintf(stderr, "aos-exec: bad or refused option '%s'\n", argv[i]);
            return 126;
        }
    }
    if (i + 2 >= argc) {
        fprintf(stderr, "usage: aos-exec [options] -- FILE ARGV0 [ARGS...]\n");
        return 126;
    }
    const char *file = argv[i + 1];
    char **cargv = argv + i + 2;
    /* the command, same uid, may not read this process's fds or memory */
    prctl(PR_SET_DUMPABLE, 0);

    const char *what = "";
    int abi = landlock(no_net, &what);
    if (abi < 0) {
        fprintf(stderr, "aos-exec: the kernel has Landlock but refused it (%s: %s)\n", what,
                strerror(errno));
        return 126;
    }
    if (status_fd >= 0) {
        char line[32];
        int n = snprintf(line, sizeof(line), "{\"landlock\":%d}\n", abi);
        if (write(status_fd, line, (size_t)n) < 0)
            fprintf(stderr, "aos-exec: status: %s\n", strerror(errno));
    }

    struct sigaction sa = {0};
    sa.sa_handler = forward;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);

    /* with a memory limit, SIGCHLD is waited for with a timeout, so that
     * the sandbox's resident memory is checked every 20 ms meanwhile */
    sigset_t chld;
    sigemptyset(&chld);
    sigaddset(&chld, SIGCHLD);
    if (rss_max)
        sigprocmask(SIG_BLOCK, &chld, NULL);
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "aos-exec: fork: %s\n", strerror(errno));
        return 126;
    }
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
        sigprocmask(SIG_UNBLOCK, &chld, NULL);
        if (status_fd >= 0)
            close(status_fd);
        execvp(file, cargv);
        fprintf(stderr, "aos-exec: unable to run '%s': %s\n", file, strerror(errno));
        _exit(errno == ENOENT ? 127 : 126);
    }
    child_pid = pid;
    int st = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    int over = 0;
    for (;;) {
        pid_t w = wait4(pid, &st, rss_max ? WNOHANG : 0, &ru);
        if (w == pid)
            break;
        if (w < 0 && errno != EINTR) {
            fprintf(stderr, "aos-exec: wait4: %s\n", strerror(errno));
            return 126;
        }
        if (w == 0) {
            if (!over && sandbox_rss() > rss_max) {
                over = 1;
                kill(-1, SIGKILL); /* every process of the sandbox but this one and init */
            }
            struct timespec ts = {0, 20 * 1000 * 1000};
            sigtimedwait(&chld, NULL, &ts);
        }
    }
    if (status_fd >= 0) {
        char line[512];
        int n = snprintf(line, sizeof(line),
                         "{\"%s\":%d,%s\"user_us\":%lld,\"sys_us\":%lld,\"max_rss_kb\":%ld,"
                         "\"minflt\":%ld,\"majflt\":%ld,\"nvcsw\":%ld,\"nivcsw\":%ld}\n",
                         WIFSIGNALED(st) ? "signal" : "status",
                         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
                         over ? "\"reason\":\"memory\"," : "",
                         (long long)ru.ru_utime.tv_sec * 1000000 + ru.ru_utime.tv_usec,
                         (long long)ru.ru_stime.tv_sec * 1000000 + ru.ru_stime.tv_usec,
                         ru.ru_maxrss, ru.ru_minflt, ru.ru_majflt, ru.ru_nvcsw, ru.ru_nivcsw);
        if (n > 0 && write(status_fd, line, (size_t)n) < 0)
            fprintf(stderr, "aos-exec: status: %s\n", strerror(errno));
        close(status_fd);
    }
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        signal(sig, SIG_DFL);
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, sig);
        sigprocmask(SIG_UNBLOCK, &set, NULL);
        struct rlimit core = {0, 0};
        setrlimit(RLIMIT_CORE, &core);
        kill(getpid(), sig);
        return 128 + sig;
    }
    return WEXITSTATUS(st);
}
