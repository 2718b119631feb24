/* fuzz_http_route.c - the route table's path matching (src/http/route.h).
 * The input's first line is a pattern, the rest a request path. Checked:
 * a match's parameter values are parts of the path (a "*" value its tail,
 * separators kept); a path used as its own pattern (no ':' or '*', within
 * the limits) matches itself with no parameters; matching changes neither
 * the compiled pattern nor the split path (a second match answers the
 * same). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/route.h"

#define MAX 4096

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX)
        return 0;
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    char *nl = memchr(buf, '\n', size);
    const char *pattern = buf, *path = nl ? nl + 1 : "";
    if (nl)
        *nl = '\0';
    aos__route_t c;
    aos__route_path_t p;
    aos__route_compile(pattern, &c);
    if (aos__route_split(path, &p)) {
        free(buf);
        return 0;
    }
    const char *name[8], *val[8];
    int n = 0;
    int ok = aos__route_match(pattern, &c, &p, name, val, 8, &n);
    size_t plen = strlen(path);
    for (int i = 0; ok && i < n; i++) {
        const char *v = val[i];
        int in_split = v >= p.buf && v <= p.buf + plen;
        int in_whole = v >= p.whole && v <= p.whole + plen;
        if (!in_split && !in_whole)
            abort();
        if (in_whole && strcmp(v, path + (v - p.whole)) != 0)
            abort(); /* a "*" value is the path's tail */
        /* only a "*" route's last value is a tail (":*" is a parameter
         * named "*") */
        if (in_whole != (c.star && i == n - 1))
            abort();
    }
    int n2 = 0;
    if (aos__route_match(pattern, &c, &p, name, val, 8, &n2) != ok || n2 != n)
        abort();
    free(p.buf);
    /* the path as its own pattern */
    aos__route_t self;
    aos__route_compile(path, &self);
    if (!strpbrk(path, ":*") && !self.bad) {
        if (aos__route_split(path, &p) == 0) {
            if (p.n >= 0 && (!aos__route_match(path, &self, &p, name, val, 8, &n) || n != 0))
                abort();
            free(p.buf);
        }
    }
    free(buf);
    return 0;
}
