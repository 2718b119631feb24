/* sandbox_spawn.c - spawn-to-exit of /bin/true through src/proc, plain and
 * sandboxed (bubblewrap + seccomp + the helper's rlimits), one at a time:
 * from aos_proc_spawn to on_exit (the child exited and its pipes closed).
 * Rounds alternate plain and sandboxed so that a shared machine's drift
 * hits both. Prints p50, p99 and max of each, in ms.
 *
 * usage: sandbox_spawn [N per mode, default 300] [rounds, default 3] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "proc/proc.h"

static int done;

static void on_exit_cb(aos_proc_t *p, const aos_proc_exit_t *ex, void *data)
{
    if (ex->exit_status != 0 || ex->term_signal)
        fprintf(stderr, "child failed: exit %lld signal %d\n", (long long)ex->exit_status,
                ex->term_signal);
    done = 1;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int one(uv_loop_t *loop, const aos_proc_sandbox_t *sb, double *ms)
{
    char *argv[] = {"/bin/true", NULL};
    aos_proc_opts_t o = {.file = argv[0], .argv = argv, .on_exit = on_exit_cb, .sandbox = sb};
    aos_proc_t *p;
    aos_err_t err = {0, ""};
    done = 0;
    uint64_t t0 = uv_hrtime();
    if (aos_proc_spawn(loop, &o, &p, &err) != 0) {
        fprintf(stderr, "spawn: %s\n", aos_err_msg(&err));
        return -1;
    }
    while (!done)
        uv_run(loop, UV_RUN_ONCE);
    *ms = (double)(uv_hrtime() - t0) / 1e6;
    uv_run(loop, UV_RUN_NOWAIT);
    return 0;
}

int main(int argc, char **argv)
{
    int n = argc > 1 ? (int)strtol(argv[1], NULL, 10) : 300;
    int rounds = argc > 2 ? (int)strtol(argv[2], NULL, 10) : 3;
    if (n < 10 || rounds < 1)
        return 2;
    uv_loop_t *loop = uv_default_loop();
    char ws[] = "/tmp/aos-bench-sandbox-XXXXXX";
    if (!mkdtemp(ws))
        return 1;
    if (geteuid() == 0 && chown(ws, 65534, 65534) != 0)
        return 1;
    aos_err_t err = {0, ""};
    if (aos_proc_sandbox_probe(NULL, aos_proc_helper_path(), &err) != 0) {
        fprintf(stderr, "%s\n", aos_err_msg(&err));
        return 1;
    }
    aos_proc_sandbox_t sb = {.helper = aos_proc_helper_path(), .workspace = ws};
    sb.limits = (aos_proc_limits_t){
        .cpu_s = 10, .as_bytes = 512u << 20, .nproc = 64, .nofile = 256, .fsize_bytes = 64u << 20};
    size_t total = (size_t)n * (size_t)rounds;
    double *plain = calloc(total, sizeof(double)), *boxed = calloc(total, sizeof(double));
    if (!plain || !boxed)
        return 1;
    /* warm-up: page cache, the seccomp program */
    double w;
    for (int i = 0; i < 10; i++)
        if (one(loop, NULL, &w) || one(loop, &sb, &w))
            return 1;
    for (int r = 0; r < rounds; r++) {
        for (int i = 0; i < n; i++)
            if (one(loop, NULL, &plain[(size_t)r * n + i]))
                return 1;
        for (int i = 0; i < n; i++)
            if (one(loop, &sb, &boxed[(size_t)r * n + i]))
                return 1;
    }
    qsort(plain, total, sizeof(double), cmp);
    qsort(boxed, total, sizeof(double), cmp);
    const char *names[] = {"plain", "sandboxed"};
    double *v[] = {plain, boxed};
    for (int k = 0; k < 2; k++)
        printf("%-10s n=%zu p50=%.2f ms p99=%.2f ms max=%.2f ms\n", names[k], total,
               v[k][total / 2], v[k][(size_t)((double)total * 0.99)], v[k][total - 1]);
    rmdir(ws);
    free(plain);
    free(boxed);
    return 0;
}
