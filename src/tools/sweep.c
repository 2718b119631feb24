/* sweep.c - idempotency records do not pile up: the records of keyed
 * writes (<data_dir>/idempotency/http/ for the http tool, .aos/idem/ of
 * the shared workspace for files, git and db) are deleted once they are
 * AOS_TOOLS_IDEM_KEEP_S old. A task's workspace goes with its run
 * (episode retention), records and all.
 *
 * The sweep is a libuv timer (hourly, not holding the loop) that queues
 * the deletion on the thread pool: directory reads and unlinks never run
 * on the loop. One sweep at a time. */
#include "tools/internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "log/log.h"

#define SWEEP_EVERY_MS (3600 * 1000)

/* The regular files of dir last changed before cut (Unix seconds). */
static long prune_dir(const char *dir, int64_t cut)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (dfd < 0)
        return 0;
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return 0;
    }
    long n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        struct stat st;
        if (e->d_name[0] == '.' || fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 ||
            !S_ISREG(st.st_mode) || (int64_t)st.st_mtime >= cut)
            continue;
        if (unlinkat(dfd, e->d_name, 0) == 0)
            n++;
    }
    closedir(d);
    return n;
}

long aos_tools_idem_prune(const char *data_dir, int64_t now_s, int64_t keep_s)
{
    char path[4096];
    long n = 0;
    static const char *const dirs[] = {"idempotency/http", "workspace/.aos/idem"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
        if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir, dirs[i]) < sizeof(path))
            n += prune_dir(path, now_s - keep_s);
    return n;
}

struct sweep {
    uv_timer_t timer;
    uv_work_t work;
    aos_tools_t *t;
    int busy;
    long removed;
};

static void sweep_work(uv_work_t *w)
{
    struct sweep *s = w->data;
    s->removed = aos_tools_idem_prune(s->t->data_dir, (int64_t)time(NULL), AOS_TOOLS_IDEM_KEEP_S);
}

static void sweep_done(uv_work_t *w, int status)
{
    struct sweep *s = w->data;
    s->busy = 0;
    if (status == 0 && s->removed)
        aos_log_info("tools", "%ld idempotency record(s) older than %d days deleted", s->removed,
                     AOS_TOOLS_IDEM_KEEP_S / 86400);
    if (!s->t) /* stopped meanwhile: the timer is closed */
        free(s);
}

static void on_sweep(uv_timer_t *h)
{
    struct sweep *s = h->data;
    if (s->busy)
        return;
    s->work.data = s;
    if (uv_queue_work(h->loop, &s->work, sweep_work, sweep_done) == 0)
        s->busy = 1;
}

int aos_tools_sweep_start(aos_tools_t *t)
{
    if (!t || !t->loop || t->sweep)
        return AOS_EINVAL;
    struct sweep *s = calloc(1, sizeof(*s));
    if (!s)
        return AOS_ENOMEM;
    s->t = t;
    uv_timer_init(t->loop, &s->timer);
    s->timer.data = s;
    uv_unref((uv_handle_t *)&s->timer);
    uv_timer_start(&s->timer, on_sweep, 60 * 1000, SWEEP_EVERY_MS);
    t->sweep = s;
    return 0;
}

static void sweep_closed(uv_handle_t *h)
{
    struct sweep *s = h->data;
    if (!s->busy)
        free(s);
    else
        s->t = NULL; /* sweep_done frees it */
}

void aos_tools_stop(aos_tools_t *t)
{
    if (!t || !t->sweep)
        return;
    struct sweep *s = t->sweep;
    t->sweep = NULL;
    uv_close((uv_handle_t *)&s->timer, sweep_closed);
}
