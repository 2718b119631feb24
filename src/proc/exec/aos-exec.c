/* aos-exec - the last step into a sandbox (src/proc/sandbox.c): runs
 * inside bubblewrap, after its seccomp filter, as
 *   aos-exec [--status-fd=N] [--cpu=S] [--as=B] [--nofile=N] [--nproc=N]
 *            [--fsize=B] -- FILE ARGV0 ARGS...
 * It sets the rlimits (soft and hard: the command cannot raise them; the
 * hard CPU limit is a second above the soft one, so SIGXCPU comes first),
 * forks the command, forwards SIGTERM/SIGINT/SIGHUP to it, waits for it
 * with wait4 and writes one JSON line to the status fd: {"status":N} or
 * {"signal":N}, and the command's resource use. Then it exits as the
 * command did. Standalone: no aoscore, no allocation after the fork. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t child_pid;

static void forward(int sig)
{
    if (child_pid > 0)
        kill(child_pid, sig);
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

    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "aos-exec: fork: %s\n", strerror(errno));
        return 126;
    }
    if (pid == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        signal(SIGHUP, SIG_DFL);
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
    while (wait4(pid, &st, 0, &ru) < 0) {
        if (errno != EINTR) {
            fprintf(stderr, "aos-exec: wait4: %s\n", strerror(errno));
            return 126;
        }
    }
    if (status_fd >= 0) {
        char line[512];
        int n = snprintf(line, sizeof(line),
                         "{\"%s\":%d,\"user_us\":%lld,\"sys_us\":%lld,\"max_rss_kb\":%ld,"
                         "\"minflt\":%ld,\"majflt\":%ld,\"nvcsw\":%ld,\"nivcsw\":%ld}\n",
                         WIFSIGNALED(st) ? "signal" : "status",
                         WIFSIGNALED(st) ? WTERMSIG(st) : WEXITSTATUS(st),
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
