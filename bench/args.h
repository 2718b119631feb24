/* args.h - a number on a benchmark's command line: the whole argument must
 * be a decimal number that fits a long, or the program stops and says which
 * flag was wrong (atoi would take "1k" as 1 and "x" as 0). Header-only: each
 * C file of bench/ is its own program. */
#ifndef AOS_BENCH_ARGS_H
#define AOS_BENCH_ARGS_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

static inline long bench_num(const char *flag, const char *v)
{
    char *end;
    errno = 0;
    long n = strtol(v, &end, 10);
    if (errno || end == v || *end) {
        fprintf(stderr, "%s wants a number, not '%s'\n", flag, v);
        exit(2);
    }
    return n;
}

#endif
