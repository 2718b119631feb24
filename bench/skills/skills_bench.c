/* skills_bench.c - one call of a tool server of src/tools, timed in this
 * process, for bench/skills/run.sh: the builtin is called as the gateway
 * calls it (its work on libuv's thread pool) and the wall time from call
 * to answer is printed with this process's peak RSS.
 *
 *   skills_bench <workspace> <server> <tool> '<args JSON>'
 *
 * prints one line: {"secs":..., "peak_rss_kb":..., "result":{...}} (the
 * structuredContent, or the error text). Exit 1 when the tool failed. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "tools/tools.h"

static int done;
static json_t *answer;

static void on_done(void *ctx, json_t *result, const aos_err_t *err)
{
    (void)ctx;
    answer = result ? result : json_pack("{s:s}", "error", aos_err_msg(err));
    done = 1;
}

int main(int argc, char **argv)
{
    if (argc != 5) {
        fprintf(stderr, "usage: skills_bench <workspace> <server> <tool> '<args JSON>'\n");
        return 2;
    }
    json_error_t je;
    json_t *args = json_loads(argv[4], 0, &je);
    if (!args) {
        fprintf(stderr, "skills_bench: bad args: %s\n", je.text);
        return 2;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    aos_tools_t *t;
    aos_err_t err;
    aos_tools_cfg_t cfg = {.loop = &loop, .data_dir = "/nonexistent"};
    if (aos_tools_new(&t, &cfg, &err)) {
        fprintf(stderr, "skills_bench: %s\n", aos_err_msg(&err));
        return 1;
    }
    const aos_builtin_t *b = !strcmp(argv[2], "files") ? aos_tools_files(t)
                             : !strcmp(argv[2], "csv") ? aos_tools_csv(t)
                             : !strcmp(argv[2], "viz") ? aos_tools_viz(t)
                                                       : aos_tools_db(t);
    json_t *caps = json_pack("{s:s}", "workspace", argv[1]);
    aos_caller_t who = {.principal = "bench", .caps = caps};
    uint64_t t0 = uv_hrtime();
    if (b->call(b->data, &who, argv[3], args, on_done, NULL)) {
        fprintf(stderr, "skills_bench: no such tool\n");
        return 1;
    }
    while (!done)
        uv_run(&loop, UV_RUN_ONCE);
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    int failed =
        json_is_true(json_object_get(answer, "isError")) || json_object_get(answer, "error");
    json_t *res = json_object_get(answer, "structuredContent");
    json_t *line = json_pack("{s:f, s:I, s:O}", "secs", secs, "peak_rss_kb",
                             (json_int_t)ru.ru_maxrss, "result", res ? res : answer);
    /* the reports can be long (examples); the summary fields are enough */
    json_t *r = json_object_get(line, "result");
    json_object_del(r, "changes");
    json_object_del(r, "matches");
    char *s = json_dumps(line, JSON_COMPACT);
    printf("%s\n", s);
    free(s);
    json_decref(line);
    json_decref(answer);
    json_decref(args);
    json_decref(caps);
    uv_run(&loop, UV_RUN_DEFAULT);
    aos_tools_free(t);
    uv_loop_close(&loop);
    return failed;
}
