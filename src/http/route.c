/* route.c - path patterns split once, request paths split once, matched
 * by segment (route.h). */
#include "http/route.h"

#include <stdlib.h>
#include <string.h>

#include "err/err.h"

/* Splits a path into segments in place; returns the count or -1. */
static int split(char *p, char **seg, int max)
{
    int n = 0;
    while (*p == '/')
        p++;
    while (*p) {
        if (n == max)
            return -1;
        seg[n++] = p;
        char *s = strchr(p, '/');
        if (!s)
            break;
        *s = '\0';
        p = s + 1;
    }
    return n;
}

void aos__route_compile(const char *pattern, aos__route_t *c)
{
    char pat[AOS__ROUTE_MAX_PATTERN + 1];
    char *ps[AOS__ROUTE_MAX_SEGMENTS];
    size_t plen = strlen(pattern);
    memset(c, 0, sizeof(*c));
    int np;
    if (plen > AOS__ROUTE_MAX_PATTERN ||
        (memcpy(pat, pattern, plen + 1), np = split(pat, ps, AOS__ROUTE_MAX_SEGMENTS)) < 0) {
        c->bad = 1;
        return;
    }
    c->nseg = (uint8_t)np;
    for (int i = 0; i < np; i++) {
        c->off[i] = (uint8_t)(ps[i] - pat);
        c->len[i] = (uint8_t)strlen(ps[i]);
    }
    c->star = np > 0 && c->len[np - 1] == 1 && ps[np - 1][0] == '*';
}

int aos__route_split(const char *path, aos__route_path_t *p)
{
    size_t n = strlen(path);
    if (!(p->buf = malloc(2 * n + 2)))
        return AOS_ENOMEM;
    memcpy(p->buf, path, n + 1);
    memcpy(p->buf + n + 1, path, n + 1);
    p->whole = p->buf + n + 1;
    p->n = split(p->buf, p->seg, AOS__ROUTE_MAX_SEGMENTS);
    for (int i = 0; i < p->n; i++)
        p->len[i] = strlen(p->seg[i]);
    return 0;
}

int aos__route_match(const char *pattern, const aos__route_t *c, const aos__route_path_t *p,
                     const char **name, const char **val, int max, int *nparams)
{
    *nparams = 0;
    if (c->bad || p->n < 0)
        return 0;
    int np = c->nseg;
    if (c->star ? p->n < np : p->n != np)
        return 0;
    for (int i = 0; i < np; i++) {
        const char *ps = pattern + c->off[i];
        if (c->star && i == np - 1) {
            if (*nparams == max)
                return 0;
            name[*nparams] = "*";
            val[(*nparams)++] = p->whole + (p->seg[i] - p->buf);
            return 1;
        }
        if (ps[0] == ':') {
            if (*nparams == max)
                return 0;
            name[*nparams] = ps + 1; /* ends at the pattern's next '/' or its end */
            val[(*nparams)++] = p->seg[i];
        } else if (c->len[i] != p->len[i] || memcmp(ps, p->seg[i], p->len[i]) != 0) {
            return 0;
        }
    }
    return 1;
}
