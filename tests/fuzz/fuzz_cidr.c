/* fuzz_cidr.c - the address range parser (src/cidr). The input is a list
 * as --ip-allowlist takes it; the first line is also parsed as one range
 * and as one address. Checked: a parsed range has bits within its family
 * and no host bits set, matches its own network address, and the text of
 * that address with its prefix parses to the same range; a list parses
 * all or nothing; a parsed address matches the /32 or /128 range of its
 * own text. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cidr/cidr.h"

#define MAX 4096

static void check_range(const aos_cidr_t *c)
{
    unsigned max = c->v6 ? 128 : 32;
    if (c->bits > max)
        abort();
    for (unsigned b = c->bits; b < 128; b++)
        if (c->addr[b / 8] & (0x80 >> (b % 8)))
            abort();
    if (!aos_cidr_match(c, c->v6, c->addr))
        abort();
    char text[AOS_CIDR_TEXT_MAX], addr[INET6_ADDRSTRLEN];
    inet_ntop(c->v6 ? AF_INET6 : AF_INET, c->addr, addr, sizeof(addr));
    snprintf(text, sizeof(text), "%s/%u", addr, c->bits);
    aos_cidr_t again;
    if (aos_cidr_parse(text, strlen(text), &again) || memcmp(&again, c, sizeof(again)))
        abort();
}

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
    const char *nl = memchr(buf, '\n', size);
    size_t first = nl ? (size_t)(nl - buf) : size;
    aos_cidr_t c;
    if (aos_cidr_parse(buf, first, &c) == 0)
        check_range(&c);
    int v6;
    unsigned char a[16];
    if (aos_cidr_addr_parse(buf, first, &v6, a) == 0) {
        char text[INET6_ADDRSTRLEN];
        inet_ntop(v6 ? AF_INET6 : AF_INET, a, text, sizeof(text));
        aos_cidr_t self;
        if (aos_cidr_parse(text, strlen(text), &self) || self.bits != (v6 ? 128u : 32u) ||
            !aos_cidr_match(&self, v6, a))
            abort();
    }
    aos_cidr_list_t l;
    aos_err_t err = {0, ""};
    if (aos_cidr_list_parse(buf, &l, &err) == 0) {
        for (size_t i = 0; i < l.n; i++)
            check_range(&l.v[i]);
        aos_cidr_list_release(&l);
    } else if (l.n || l.v) {
        abort();
    }
    free(buf);
    return 0;
}
