/* metrics_render.c - how long GET /metrics holds the loop at the limit of
 * series (issue 12, item 4).
 *
 * Fills the families aosd has, with the label names it uses, to the limit
 * of series each (--max-series, default AOS_METRICS_MAX_SERIES) plus the
 * overflow series, with label values as long as an upstream could make
 * them (a 64-byte server name, a 128-byte tool name: AOS_METRICS_MAX_VALUE),
 * then renders the exposition --runs times (default 20) into a buffer
 * reused across renders, as the loop would. Prints
 *   metrics_render: N series per family, B bytes, best X ms, median Y ms
 * The render is the part that runs on the loop; the HTTP response copies
 * the text once more. */
#include "../args.h"
#include "../common.h"
#include "metrics/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    size_t max = AOS_METRICS_MAX_SERIES;
    int runs = 20;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--max-series"))
            max = (size_t)bench_num("--max-series", argv[i + 1]);
        else if (!strcmp(argv[i], "--runs"))
            runs = (int)bench_num("--runs", argv[i + 1]);
    }
    if (max == 0 || runs < 1 || runs > 1000) {
        fprintf(stderr, "usage: metrics_render [--max-series N] [--runs 1..1000]\n");
        return 2;
    }
    aos_metrics_t *m = aos_metrics_new();
    aos_metrics_set_max_series(m, max);
    static const double bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                    0.1,    0.25,  0.5,    1,     2.5,  5,     10};
    aos_metric_t *calls =
        aos_metrics_counter(m, "aos_mcp_calls_total", "Calls, by outcome", "server,tool,outcome");
    aos_metric_t *lat = aos_metrics_histogram(m, "aos_mcp_call_duration_seconds", "Latency",
                                              "server,tool", bounds, 14);
    static const char *const gauges[] = {"aos_mcp_server_up", "aos_mcp_server_health",
                                         "aos_mcp_breaker_state", "aos_mcp_queue_depth"};
    aos_metric_t *g[4];
    for (int i = 0; i < 4; i++)
        g[i] = aos_metrics_gauge(m, gauges[i], "A gauge per server", "server");
    aos_metric_t *rej =
        aos_metrics_counter(m, "aos_mcp_rejected_total", "Refused calls", "server,reason");
    char server[65], tool[AOS_METRICS_MAX_VALUE + 1];
    for (size_t i = 0; i < max + 10; i++) { /* past the limit: the overflow series too */
        snprintf(server, sizeof(server), "%064zu", i);
        snprintf(tool, sizeof(tool), "%0*zu", AOS_METRICS_MAX_VALUE, i);
        aos_metric_add(calls, 1, server, tool, "ok");
        aos_metric_observe(lat, 0.0007 * (double)(i % 64), server, tool);
        for (int k = 0; k < 4; k++)
            aos_metric_set(g[k], 1, server);
        aos_metric_add(rej, 1, server, "rate");
    }
    double *t = calloc((size_t)runs, sizeof(double));
    aos_buf_t out;
    aos_buf_init(&out, 0);
    size_t bytes = 0;
    for (int r = 0; r < runs && t; r++) {
        aos_buf_reset(&out);
        double t0 = bench_now_ms();
        if (aos_metrics_render(m, &out)) {
            fprintf(stderr, "metrics_render: render failed\n");
            return 1;
        }
        t[r] = bench_now_ms() - t0;
        bytes = out.len;
    }
    if (!t)
        return 1;
    qsort(t, (size_t)runs, sizeof(double), cmp);
    printf("metrics_render: %zu series per family, %zu bytes, best %.1f ms, median %.1f ms\n",
           max + 1, bytes, t[0], t[runs / 2]);
    free(t);
    aos_buf_release(&out);
    aos_metrics_free(m);
    return 0;
}
