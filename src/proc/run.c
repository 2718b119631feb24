/* run.c - aos_proc_run: a short child run to completion on the calling
 * (worker) thread, for a tool that converts data with a program (proc.h).
 *
 * posix_spawn with a fixed argument vector (no shell), a process group of
 * its own, an environment of PATH and LANG only, stdin/stdout/stderr on
 * pipes that one poll(2) loop serves: stdin written from the caller's
 * bytes, stdout collected up to a bound, stderr's first bytes kept for the
 * error. Past the deadline or the bound, SIGKILL to the group; the child
 * is always reaped before returning. Never on the loop thread: it waits. */
#include "proc/proc.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int aos_proc_run(const char *file, char *const argv[], const void *in, size_t in_len, char **out,
                 size_t *out_len, size_t max_out, uint32_t timeout_ms, aos_err_t *err)
{
    *out = NULL;
    *out_len = 0;
    int pin[2] = {-1, -1}, pout[2] = {-1, -1}, perr[2] = {-1, -1};
    if (pipe2(pin, O_CLOEXEC) || pipe2(pout, O_CLOEXEC) || pipe2(perr, O_CLOEXEC)) {
        int e = errno;
        for (int i = 0; i < 2; i++) {
            close_fd(&pin[i]);
            close_fd(&pout[i]);
            close_fd(&perr[i]);
        }
        return aos_err_set(err, AOS_EIO, "pipe: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&at);
    posix_spawn_file_actions_adddup2(&fa, pin[0], 0);
    posix_spawn_file_actions_adddup2(&fa, pout[1], 1);
    posix_spawn_file_actions_adddup2(&fa, perr[1], 2);
    sigset_t none, dfl;
    sigemptyset(&none);
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &dfl);
    posix_spawnattr_setpgroup(&at, 0);
    posix_spawnattr_setflags(&at, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                      POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
    char *const env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", "LANG=C.UTF-8", NULL};
    pid_t pid;
    int rc = posix_spawnp(&pid, file, &fa, &at, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    close_fd(&pin[0]);
    close_fd(&pout[1]);
    close_fd(&perr[1]);
    if (rc) {
        close_fd(&pin[1]);
        close_fd(&pout[0]);
        close_fd(&perr[0]);
        return aos_err_set(err, rc == ENOENT ? AOS_EUNAVAIL : AOS_EIO, "unable to run %s: %s", file,
                           strerror(rc));
    }
    fcntl(pin[1], F_SETFL, O_NONBLOCK);
    size_t cap = 0, sent = 0, elen = 0;
    char *buf = NULL, ebuf[512];
    const char *why = NULL;
    uint64_t deadline = now_ms() + (timeout_ms ? timeout_ms : 10000);
    if (!in_len)
        close_fd(&pin[1]);
    while (pout[0] >= 0 || perr[0] >= 0) {
        struct pollfd pf[3];
        int np = 0, iw = -1, io = -1, ie = -1;
        if (pin[1] >= 0)
            pf[iw = np++] = (struct pollfd){pin[1], POLLOUT, 0};
        if (pout[0] >= 0)
            pf[io = np++] = (struct pollfd){pout[0], POLLIN, 0};
        if (perr[0] >= 0)
            pf[ie = np++] = (struct pollfd){perr[0], POLLIN, 0};
        uint64_t t = now_ms();
        if (t >= deadline) {
            why = "timeout";
            break;
        }
        int n = poll(pf, (nfds_t)np, (int)(deadline - t));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            why = "poll";
            break;
        }
        if (iw >= 0 && pf[iw].revents) {
            ssize_t w = write(pin[1], (const char *)in + sent, in_len - sent);
            if (w > 0)
                sent += (size_t)w;
            if ((w < 0 && errno != EAGAIN && errno != EINTR) || sent == in_len)
                close_fd(&pin[1]); /* all given, or the child stopped reading */
        }
        if (io >= 0 && pf[io].revents) {
            if (cap - *out_len < 65536) {
                size_t ncap = cap ? cap * 2 : 65536;
                if (ncap > max_out + 1)
                    ncap = max_out + 1;
                char *nb = ncap > cap ? realloc(buf, ncap) : NULL;
                if (!nb && ncap > cap) {
                    why = "memory";
                    break;
                }
                if (nb) {
                    buf = nb;
                    cap = ncap;
                }
            }
            if (*out_len >= max_out) {
                why = "output too large";
                break;
            }
            ssize_t r = read(pout[0], buf + *out_len, cap - *out_len);
            if (r > 0)
                *out_len += (size_t)r;
            else if (r == 0 || (errno != EAGAIN && errno != EINTR))
                close_fd(&pout[0]);
        }
        if (ie >= 0 && pf[ie].revents) {
            char tmp[512];
            ssize_t r = read(perr[0], tmp, sizeof(tmp));
            if (r > 0) {
                size_t k =
                    (size_t)r < sizeof(ebuf) - 1 - elen ? (size_t)r : sizeof(ebuf) - 1 - elen;
                memcpy(ebuf + elen, tmp, k);
                elen += k;
            } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
                close_fd(&perr[0]);
            }
        }
    }
    if (why)
        kill(-pid, SIGKILL);
    close_fd(&pin[1]);
    close_fd(&pout[0]);
    close_fd(&perr[0]);
    /* its output is closed; it may still run (a child that closed its
     * pipes): the deadline holds for the exit too */
    int st = 0;
    for (;;) {
        pid_t w = waitpid(pid, &st, why ? 0 : WNOHANG);
        if (w == pid || (w < 0 && errno != EINTR))
            break;
        if (w == 0 && now_ms() >= deadline) {
            why = "timeout";
            kill(-pid, SIGKILL);
        } else if (w == 0) {
            nanosleep(&(struct timespec){0, 2000000}, NULL);
        }
    }
    ebuf[elen] = '\0';
    for (size_t i = 0; i < elen; i++)
        if (ebuf[i] == '\n' || ebuf[i] == '\r')
            ebuf[i] = ' ';
    if (why || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        free(buf);
        *out_len = 0;
        if (why && !strcmp(why, "output too large"))
            return aos_err_set(err, AOS_ETOOBIG, "%s wrote more than %zu bytes", file, max_out);
        if (why && !strcmp(why, "timeout"))
            return aos_err_set(err, AOS_ETIMEDOUT, "%s took longer than %u ms", file,
                               timeout_ms ? timeout_ms : 10000);
        if (why)
            return aos_err_set(err, AOS_EIO, "%s: %s", file, why);
        if (WIFSIGNALED(st))
            return aos_err_set(err, AOS_EIO, "%s died of signal %d: %.300s", file, WTERMSIG(st),
                               ebuf);
        return aos_err_set(err, AOS_EIO, "%s exited %d: %.300s", file, WEXITSTATUS(st), ebuf);
    }
    *out = buf ? buf : malloc(1);
    if (!*out)
        return aos_err_set(err, AOS_ENOMEM, NULL);
    return 0;
}
