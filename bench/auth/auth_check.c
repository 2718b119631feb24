/* auth_check.c - how long one authorization decision takes with 10,000
 * grants in the table (issue 16: target p99 <= 5 us).
 *
 * Two shapes of the same 10,000 grants, built with the module's own
 * aos_auth_principal_grant (what aosd does when it loads the grants):
 *   spread: 1,000 tokens of 10 grants each (4 exact tool names, 3 tool
 *           patterns "<server>__<prefix>*", 2 exact tasks, 1 project
 *           pattern), the usual case;
 *   one:    a single token holding all 10,000 (5,000 exact tool names and
 *           5,000 patterns of lengths 6 to 40), the worst case for one
 *           decision.
 * Each decision asks aos_auth_check about a random principal: half the
 * time one of its own grants (a name under a pattern, with the role's
 * permission), half the time a random resource and permission, nearly
 * always denied (other servers, other tasks, a higher role, patterns
 * asking for more). Every decision is timed
 * on its own with CLOCK_MONOTONIC (the clock's own cost, about 20-40 ns,
 * is included). Prints, per shape:
 *   auth_check <shape>: N decisions, allowed A, p50 X ns, p99 Y ns, max Z ns
 * Usage: auth_check [--decisions N] (default 1,000,000 per shape). */
#include "../args.h"
#include "auth/auth.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GRANTS 10000

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static uint64_t next(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* What each principal was granted, to ask about half the time. */
typedef struct {
    char res[96];
    aos_perm_t perm;
} asked_t;
static asked_t *granted;
static size_t per; /* grants per principal */

static void grant(aos_principal_t *p, size_t pi, size_t gi, aos_role_t role, const char *res)
{
    if (aos_auth_principal_grant(p, role, res)) {
        fprintf(stderr, "grant '%s' refused\n", res);
        exit(1);
    }
    asked_t *a = &granted[pi * per + gi];
    /* a pattern is asked about with a name under it */
    size_t n = strlen(res);
    snprintf(a->res, sizeof(a->res), "%.*s%s", (int)(res[n - 1] == '*' ? n - 1 : n), res,
             res[n - 1] == '*' ? "x_tool" : "");
    a->perm = role == AOS_ROLE_VIEWER     ? AOS_PERM_READ
              : role == AOS_ROLE_OPERATOR ? AOS_PERM_OPERATE
                                          : AOS_PERM_ADMIN;
}

/* A random resource to ask about: one of the names the shapes use, or a
 * near miss of it. */
static void pick(char *res, size_t cap, aos_perm_t *perm)
{
    unsigned k = (unsigned)(next() % 8);
    unsigned s = (unsigned)(next() % 1200), t = (unsigned)(next() % 60);
    *perm = next() % 4 == 0 ? AOS_PERM_ADMIN : (next() % 2 ? AOS_PERM_OPERATE : AOS_PERM_READ);
    switch (k) {
    case 0:
    case 1:
        snprintf(res, cap, "tool:srv%u__tool%u", s, t);
        break;
    case 2:
        snprintf(res, cap, "tool:srv%u__read_file_%u", s, t);
        break;
    case 3:
        snprintf(res, cap, "tool:srv%u__*", s);
        break;
    case 4:
        snprintf(res, cap, "task:%032u", s * 7 + t);
        break;
    case 5:
        snprintf(res, cap, "project:proj%u-sub%u", s, t);
        break;
    case 6:
        snprintf(res, cap, "tool:srv%u__tool%u_long_name_of_a_tool_with_many_parts", s, t);
        break;
    default:
        snprintf(res, cap, "agent:agent%u", s);
        break;
    }
}

static void run(const char *shape, aos_principal_t *ps, size_t np, long n)
{
    uint64_t *lat = malloc((size_t)n * sizeof(*lat));
    if (!lat) {
        fprintf(stderr, "out of memory\n");
        exit(1);
    }
    long allowed = 0;
    char res[256];
    for (long i = 0; i < n; i++) {
        aos_perm_t perm;
        size_t pi = (size_t)(next() % np);
        const aos_principal_t *p = &ps[pi];
        if (next() % 2) {
            const asked_t *a = &granted[pi * per + (size_t)(next() % per)];
            snprintf(res, sizeof(res), "%s", a->res);
            perm = a->perm;
        } else {
            pick(res, sizeof(res), &perm);
        }
        uint64_t t0 = now_ns();
        int rc = aos_auth_check(p, perm, res);
        lat[i] = now_ns() - t0;
        allowed += rc == 0;
    }
    qsort(lat, (size_t)n, sizeof(*lat), cmp);
    printf("auth_check %s: %ld decisions, allowed %ld, p50 %llu ns, p99 %llu ns, max %llu ns\n",
           shape, n, allowed, (unsigned long long)lat[n / 2],
           (unsigned long long)lat[(size_t)((double)n * 0.99)], (unsigned long long)lat[n - 1]);
    free(lat);
}

int main(int argc, char **argv)
{
    long n = 1000000;
    for (int i = 1; i + 1 < argc; i += 2)
        if (!strcmp(argv[i], "--decisions"))
            n = bench_num("--decisions", argv[i + 1]);
    if (n < 100 || n > 100000000) {
        fprintf(stderr, "usage: auth_check [--decisions 100..100000000]\n");
        return 2;
    }
    char res[256];
    /* spread: 1,000 tokens x 10 grants */
    size_t np = GRANTS / 10;
    aos_principal_t *ps = calloc(np, sizeof(*ps));
    per = 10;
    granted = calloc(GRANTS, sizeof(*granted));
    for (size_t i = 0; i < np; i++) {
        snprintf(ps[i].id, sizeof(ps[i].id), "tok_%zu", i);
        for (int g = 0; g < 4; g++) {
            snprintf(res, sizeof(res), "tool:srv%llu__tool%llu",
                     (unsigned long long)(next() % 1200), (unsigned long long)(next() % 60));
            grant(&ps[i], i, (size_t)g, g % 2 ? AOS_ROLE_OPERATOR : AOS_ROLE_VIEWER, res);
        }
        for (int g = 0; g < 3; g++) {
            snprintf(res, sizeof(res), "tool:srv%llu__%s*", (unsigned long long)(next() % 1200),
                     g == 0   ? ""
                     : g == 1 ? "read_"
                              : "tool1");
            grant(&ps[i], i, 4 + (size_t)g, AOS_ROLE_OPERATOR, res);
        }
        for (int g = 0; g < 2; g++) {
            snprintf(res, sizeof(res), "task:%032llu", (unsigned long long)(next() % 8400));
            grant(&ps[i], i, 7 + (size_t)g, AOS_ROLE_VIEWER, res);
        }
        snprintf(res, sizeof(res), "project:proj%llu*", (unsigned long long)(next() % 1200));
        grant(&ps[i], i, 9, AOS_ROLE_ADMIN, res);
    }
    run("spread (1,000 tokens x 10 grants)", ps, np, n);
    for (size_t i = 0; i < np; i++)
        aos_auth_principal_release(&ps[i]);
    free(ps);

    /* one: a single token with all 10,000 */
    aos_principal_t one = {.id = "tok_all"};
    per = GRANTS;
    for (int g = 0; g < GRANTS / 2; g++) {
        snprintf(res, sizeof(res), "tool:srv%llu__tool%llu", (unsigned long long)(next() % 1200),
                 (unsigned long long)(next() % 60));
        grant(&one, 0, (size_t)g * 2, AOS_ROLE_OPERATOR, res);
        /* patterns of many lengths: "srvN__" ... up to 40 characters */
        unsigned len = 6 + (unsigned)(next() % 35);
        char pat[64];
        snprintf(pat, sizeof(pat), "srv%llu__tool%llu_long_name_of_a_tool_with_many_parts",
                 (unsigned long long)(next() % 1200), (unsigned long long)(next() % 60));
        if (len < strlen(pat))
            pat[len] = '\0';
        snprintf(res, sizeof(res), "tool:%s*", pat);
        grant(&one, 0, (size_t)g * 2 + 1, AOS_ROLE_OPERATOR, res);
    }
    run("one (1 token x 10,000 grants)", &one, 1, n);
    aos_auth_principal_release(&one);
    free(granted);
    return 0;
}
