/* redact_lines.c - how many 200-byte log lines per second the redactor
 * (src/redact) gets through on one core (issue 16: redaction must be
 * cheap enough to run on every log line, event, span attribute and error).
 *
 * Lines are 200 bytes of log-like text (words, numbers, paths, JSON bits,
 * some UTF-8); one in ten holds something to redact (a stored value, a
 * bearer token, an API key, a URL with a password, an e-mail address, a
 * phone number, an ID number). The redactor knows 100 stored values of 12
 * to 40 bytes. Three runs each with the default patterns and with all of
 * them; prints the best:
 *   redact_lines <patterns>: N lines of 200 bytes, X lines/s (Y MB/s), Z redacted
 * Usage: redact_lines [--lines N] (default 2,000,000). */
#include "../args.h"
#include "redact/redact.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE  200
#define NLINE 1024

static uint64_t rng = 0x2545f4914f6cdd1dull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static const char *const words[] = {"request",
                                    "GET",
                                    "/api/jobs",
                                    "status=200",
                                    "took",
                                    "12ms",
                                    "upstream",
                                    "fs",
                                    "tool",
                                    "call",
                                    "ok",
                                    "trace",
                                    "b7ad6b7169203331",
                                    "step",
                                    "s1",
                                    "retry",
                                    "2",
                                    "\"x\":1,",
                                    "\xe4\xbb\xbb\xe5\x8a\xa1",
                                    "done",
                                    "user_id=42",
                                    "bytes",
                                    "4096",
                                    "cache",
                                    "miss",
                                    "2026-12-07T03:00:00Z"};
static const char *const secrets[] = {"Bearer abcdefgh12345678",
                                      "sk-abcdefghijklmnop1234",
                                      "postgres://u:pw12345@db/x",
                                      "bob@example.com",
                                      "13812345678",
                                      "11010519491231002X",
                                      NULL};

int main(int argc, char **argv)
{
    long n = 2000000;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--lines") && i + 1 < argc)
            n = bench_num("--lines", argv[++i]);
        else {
            fprintf(stderr, "usage: redact_lines [--lines N]\n");
            return 2;
        }
    }
    aos_redact_t *r = aos_redact_new(AOS_REDACT_DEFAULT);
    char vals[100][48];
    for (int v = 0; v < 100; v++) {
        int len = 12 + (int)(next() % 29);
        for (int k = 0; k < len; k++)
            vals[v][k] =
                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_"[next() % 64];
        vals[v][len] = '\0';
        if (aos_redact_add_value(r, vals[v]))
            return 1;
    }
    static char lines[NLINE][LINE + 1];
    for (int l = 0; l < NLINE; l++) {
        char *p = lines[l];
        size_t used = 0;
        int secret_at = (l % 10 == 0) ? (int)(next() % 5) : -1, w = 0;
        while (used < LINE) {
            const char *t = words[next() % (sizeof(words) / sizeof(words[0]))];
            if (w++ == secret_at) {
                int k = (int)(next() % 7);
                t = k < 6 ? secrets[k] : vals[next() % 100];
            }
            size_t tl = strlen(t);
            if (used + tl + 1 > LINE)
                tl = LINE - used - 1;
            memcpy(p + used, t, tl);
            used += tl;
            p[used++] = ' ';
        }
        p[LINE] = '\0';
    }
    aos_buf_t b;
    aos_buf_init(&b, 0);
    const struct {
        const char *name;
        unsigned p;
    } sets[] = {{"default", AOS_REDACT_DEFAULT}, {"all", AOS_REDACT_ALL}};
    for (size_t s = 0; s < 2; s++) {
        aos_redact_set_patterns(r, sets[s].p);
        double best = 1e9;
        long red = 0;
        for (int round = 0; round < 3; round++) {
            red = 0;
            double t0 = now_s();
            for (long i = 0; i < n; i++) {
                aos_buf_reset(&b);
                int rc = aos_redact_text(r, lines[i % NLINE], LINE, &b);
                if (rc < 0)
                    return 1;
                red += rc;
            }
            double t = now_s() - t0;
            if (t < best)
                best = t;
        }
        printf("redact_lines %s: %ld lines of %d bytes, %.0f lines/s (%.0f MB/s), %ld redacted\n",
               sets[s].name, n, LINE, (double)n / best, (double)n * LINE / best / 1e6, red);
    }
    aos_buf_release(&b);
    aos_redact_free(r);
    return 0;
}
