/* uvtest.h - what the unit tests of loop-driven clients share: running a
 * libuv loop until a condition holds (bounded), and real servers as child
 * processes (node scripts, the reference MCP servers) that print their
 * port and die with the test. Header-only; include after cmocka.h. */
#ifndef AOS_TEST_UVTEST_H
#define AOS_TEST_UVTEST_H

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

/* ---- the loop --------------------------------------------------------------
 * Runs the loop until pred(arg) holds or ms pass; 0 when it holds. A 5 ms
 * tick re-checks pred and stops the loop, so that a condition met inside a
 * timer callback is seen at once (UV_RUN_ONCE would go on to block in poll). */
typedef int (*pred_fn)(const void *arg);

typedef struct {
    uv_timer_t tick;
    pred_fn pred;
    const void *arg;
    uint64_t deadline;
} waiter_t;

static inline void on_tick(uv_timer_t *t)
{
    waiter_t *w = t->data;
    if (w->pred(w->arg) || uv_now(t->loop) >= w->deadline)
        uv_stop(t->loop);
}

static inline int wait_for(uv_loop_t *loop, pred_fn pred, const void *arg, uint64_t ms)
{
    waiter_t w = {.pred = pred, .arg = arg, .deadline = uv_now(loop) + ms};
    uv_timer_init(loop, &w.tick);
    w.tick.data = &w;
    uv_timer_start(&w.tick, on_tick, 5, 5);
    while (!pred(arg) && uv_now(loop) < w.deadline)
        uv_run(loop, UV_RUN_DEFAULT);
    uv_close((uv_handle_t *)&w.tick, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return pred(arg) ? 0 : -1;
}

typedef struct {
    const int *flag;
    int want;
} at_least_t;

static inline int flag_reached(const void *arg)
{
    const at_least_t *a = arg;
    return *a->flag >= a->want;
}

/* Runs the loop until *flag >= want or ms pass; 0 when reached. */
static inline int run_until(uv_loop_t *loop, const int *flag, int want, uint64_t ms)
{
    at_least_t a = {flag, want};
    return wait_for(loop, flag_reached, &a, ms);
}

/* ---- child processes -------------------------------------------------------- */

typedef struct {
    pid_t pid;
    int stdin_fd; /* closing it ends the node scripts */
    int port;     /* what it printed, when asked for */
} proc_t;

/* Starts argv with extra env ("K=V" strings, NULL-terminated; may be NULL);
 * if want_port, reads the port it prints first (waiting up to 10 s). The
 * child dies with the test process (PR_SET_PDEATHSIG), even if a failed
 * assertion skips proc_stop. Returns 0 or -1. */
static inline int proc_start(proc_t *p, char *const argv[], char *const extra_env[], int want_port)
{
    int in[2], out[2];
    memset(p, 0, sizeof(*p));
    if (pipe(in) || pipe(out))
        return -1;
    pid_t parent = getpid();
    p->pid = fork();
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        int devnull = open("/dev/null", O_WRONLY);
        dup2(in[0], 0);
        dup2(want_port ? out[1] : devnull, 1);
        dup2(devnull, 2);
        close(in[1]);
        close(out[0]);
        for (size_t i = 0; extra_env && extra_env[i]; i++)
            putenv(extra_env[i]);
        execvp(argv[0], argv);
        _exit(127);
    }
    close(in[0]);
    close(out[1]);
    if (p->pid < 0) {
        close(out[0]);
        close(in[1]);
        return -1;
    }
    p->stdin_fd = in[1];
    if (want_port) {
        char line[32] = {0};
        size_t got = 0;
        struct pollfd pf = {.fd = out[0], .events = POLLIN};
        while (got < sizeof(line) - 1 && !strchr(line, '\n') && poll(&pf, 1, 10000) > 0) {
            ssize_t k = read(out[0], line + got, sizeof(line) - 1 - got);
            if (k <= 0)
                break;
            got += (size_t)k;
        }
        p->port = (int)strtol(line, NULL, 10);
    }
    close(out[0]);
    return 0;
}

static inline void proc_stop(proc_t *p)
{
    if (p->pid <= 0)
        return;
    close(p->stdin_fd);
    kill(p->pid, SIGTERM);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* A loopback port that was free a moment ago. */
static inline int free_port(void)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    bind(s, (struct sockaddr *)&a, sizeof(a));
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

/* Writes <root>/rel into buf, <root> being the source tree: AOS_SOURCE_DIR
 * (ctest sets it), else the tree this header was compiled from. */
static inline const char *source_path(char *buf, size_t len, const char *rel)
{
    const char *src = getenv("AOS_SOURCE_DIR");
    if (src != NULL && *src != '\0') {
        snprintf(buf, len, "%s/%s", src, rel);
    } else { /* __FILE__ is <root>/tests/unit/uvtest.h */
        int root = (int)(strlen(__FILE__) - strlen("tests/unit/uvtest.h"));
        snprintf(buf, len, "%.*s%s", root, __FILE__, rel);
    }
    return buf;
}

#endif
