/* aos-exec - the last step into a sandbox (src/proc/sandbox.c): runs
 * inside bubblewrap, after its seccomp filter, as
 *   aos-exec [--status-fd=N] [--cpu=S] [--as=B] [--nofile=N] [--nproc=N]
 *            [--fsize=B] [--rss=B] -- FILE ARGV0 ARGS...
 * It sets the rlimits (soft and hard: the command cannot raise them; the
 * hard CPU limit is a second above the soft one, so SIGXCPU comes first),
 * forks the command, forwards SIGTERM/SIGINT/SIGHUP to it; with --rss it
 * checks the resident memory of the sandbox's processes every 20 ms and
 * kills them all past the limit ("reason":"memory"); it waits for it
 * with wait4 and writes one JSON line to the status fd: {"status":N} or
 * {"signal":N}, and the command's resource use. Then it exits as the
 * command did. Standalone: no aoscore, no allocation after the fork. */
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
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
    int status_fd = -1, i;
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
