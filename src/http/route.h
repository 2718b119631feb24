/* route.h - matching request paths against the route table's patterns
 * (internal to http/).
 *
 * A pattern is a path of segments: a literal ("api"), a parameter
 * (":id", any one segment) or, as its last segment only, "*" (the rest of
 * the path, at least one segment, separators kept). Leading slashes are
 * ignored, a trailing one is too ("/a/" is "/a"), and an empty segment in
 * the middle ("/a//b") is a segment of its own that only a parameter
 * matches.
 *
 * Each pattern is split once, when its table is added
 * (aos__route_compile); each request's path once, whatever the number of
 * routes (aos__route_split); matching a route is then a comparison of
 * segment counts and lengths before any bytes (aos__route_match), so a
 * table of hundreds of routes costs little per request.
 *
 * Ownership: a compiled route points into nothing (offsets into its
 * pattern, which the caller keeps); a split path owns one buffer, buf,
 * which the caller frees; matched names point into the pattern, values
 * into buf. Pure functions, no I/O: tests/unit/test_http_route.c. */
#ifndef AOS_HTTP_ROUTE_H
#define AOS_HTTP_ROUTE_H

#include <stddef.h>
#include <stdint.h>

#define AOS__ROUTE_MAX_SEGMENTS 32
#define AOS__ROUTE_MAX_PATTERN  255 /* bytes; a longer pattern never matches */

typedef struct {
    uint8_t nseg, star, bad; /* bad: too long or too many segments */
    uint8_t len[AOS__ROUTE_MAX_SEGMENTS];
    uint8_t off[AOS__ROUTE_MAX_SEGMENTS];
} aos__route_t;

typedef struct {
    char *buf; /* owned: two copies of the path, the first split in place */
    char *seg[AOS__ROUTE_MAX_SEGMENTS];
    size_t len[AOS__ROUTE_MAX_SEGMENTS];
    int n;             /* -1: more than AOS__ROUTE_MAX_SEGMENTS, nothing matches */
    const char *whole; /* the second copy, unsplit */
} aos__route_path_t;

void aos__route_compile(const char *pattern, aos__route_t *c);

/* Splits path into p (p->buf malloc'd); 0, or AOS_ENOMEM. */
int aos__route_split(const char *path, aos__route_path_t *p);

/* 1 if p matches the compiled pattern, with *nparams parameters stored in
 * name[]/val[] (at most max; a route with more does not match), else 0. */
int aos__route_match(const char *pattern, const aos__route_t *c, const aos__route_path_t *p,
                     const char **name, const char **val, int max, int *nparams);

#endif
