/* process.c - the process's own metrics (metrics.h, aos_metrics_process),
 * under the names Prometheus' client libraries give them, so that the
 * dashboards written for those work unchanged.
 *
 * A collect function sets them before each render (or history sample):
 * CPU time from getrusage(2) (microseconds, where /proc/self/stat counts
 * clock ticks), the file limit from getrlimit(2), the resident and virtual
 * size from /proc/self/statm, the threads and the start time from
 * /proc/self/stat (with the boot time of /proc/stat, read once), and the
 * open descriptors by counting /proc/self/fd. procfs is served from kernel
 * memory, so reading it on the loop costs microseconds, not a disk access;
 * a file that cannot be read (not Linux, a locked-down /proc) leaves its
 * metric out rather than reporting a made-up value. */
#include "metrics/metrics.h"
#include "err/err.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

struct proc_metrics {
    aos_metric_t *cpu, *rss, *vsz, *fds, *max_fds, *threads, *start;
    double start_time; /* seconds since the epoch; < 0: unknown */
};

/* The fields of /proc/self/stat after the command (which may hold spaces
 * and parentheses: the last ')' ends it). 0 or -1. */
static int read_stat(long long *threads, unsigned long long *start_ticks)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    /* after ") ": field 3 (state) is the first; threads is field 20,
     * starttime field 22 */
    int field = 3;
    char *save = NULL;
    for (char *tok = strtok_r(p + 1, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++) {
        if (field == 20)
            *threads = strtoll(tok, NULL, 10);
        else if (field == 22) {
            *start_ticks = strtoull(tok, NULL, 10);
            return 0;
        }
    }
    return -1;
}

static double boot_time(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (!f)
        return -1;
    char line[256];
    double bt = -1;
    while (fgets(line, sizeof(line), f))
        if (strncmp(line, "btime ", 6) == 0) {
            bt = strtod(line + 6, NULL);
            break;
        }
    fclose(f);
    return bt;
}

static long count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    if (!d)
        return -1;
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n - 1; /* the directory's own descriptor */
}

static void collect(aos_metrics_t *m, void *data)
{
    (void)m;
    struct proc_metrics *p = data;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)
        aos_metric_set(p->cpu,
                       (double)ru.ru_utime.tv_sec + (double)ru.ru_stime.tv_sec +
                           ((double)ru.ru_utime.tv_usec + (double)ru.ru_stime.tv_usec) / 1e6);
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
        aos_metric_set(p->max_fds, (double)rl.rlim_cur);
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        char line[256];
        if (fgets(line, sizeof(line), f)) { /* "size resident shared ..." in pages */
            char *end, *end2;
            unsigned long long size = strtoull(line, &end, 10);
            unsigned long long resident = strtoull(end, &end2, 10);
            if (end != line && end2 != end) {
                double page = (double)sysconf(_SC_PAGESIZE);
                aos_metric_set(p->vsz, (double)size * page);
                aos_metric_set(p->rss, (double)resident * page);
            }
        }
        fclose(f);
    }
    long fds = count_fds();
    if (fds >= 0)
        aos_metric_set(p->fds, (double)fds);
    long long threads = -1;
    unsigned long long ticks = 0;
    if (read_stat(&threads, &ticks) == 0) {
        aos_metric_set(p->threads, (double)threads);
        if (p->start_time < 0) {
            double bt = boot_time();
            long hz = sysconf(_SC_CLK_TCK);
            if (bt > 0 && hz > 0)
                p->start_time = bt + (double)ticks / (double)hz;
        }
    }
    if (p->start_time >= 0)
        aos_metric_set(p->start, p->start_time);
}

int aos_metrics_process(aos_metrics_t *m)
{
    /* one per process, freed with it: the registry keeps only the pointer */
    static struct proc_metrics p;
    p.start_time = -1;
    p.cpu = aos_metrics_counter(m, "process_cpu_seconds_total",
                                "Total user and system CPU time spent in seconds.", NULL);
    p.rss = aos_metrics_gauge(m, "process_resident_memory_bytes", "Resident memory size in bytes.",
                              NULL);
    p.vsz =
        aos_metrics_gauge(m, "process_virtual_memory_bytes", "Virtual memory size in bytes.", NULL);
    p.fds = aos_metrics_gauge(m, "process_open_fds", "Number of open file descriptors.", NULL);
    p.max_fds =
        aos_metrics_gauge(m, "process_max_fds", "Maximum number of open file descriptors.", NULL);
    p.threads =
        aos_metrics_gauge(m, "process_threads", "Number of OS threads in the process.", NULL);
    p.start = aos_metrics_gauge(m, "process_start_time_seconds",
                                "Start time of the process since unix epoch in seconds.", NULL);
    if (!p.cpu || !p.rss || !p.vsz || !p.fds || !p.max_fds || !p.threads || !p.start)
        return AOS_ENOMEM;
    return aos_metrics_on_collect(m, collect, &p);
}
