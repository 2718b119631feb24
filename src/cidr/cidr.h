/* cidr.h - IPv4 and IPv6 address ranges (CIDR) and lists of them: parsed
 * from text, matched against a peer's address. Pure: no I/O, no state, no
 * allocation except a list's array; fuzzed by tests/fuzz/fuzz_cidr.c.
 *
 * A range is "ADDR/BITS" or a bare "ADDR" (just that address): ADDR as
 * inet_pton reads it (dotted quad, or any IPv6 form), BITS 0..32 for IPv4
 * and 0..128 for IPv6, written with 1 to 3 digits. Host bits below the
 * prefix are allowed and ignored ("10.1.2.3/8" is 10.0.0.0/8). An
 * IPv4-mapped IPv6 address ("::ffff:10.0.0.1", "::ffff:0:0/96") is the
 * IPv4 address it maps, both as a range and as a peer, so an IPv4 client
 * of a dual-stack socket matches IPv4 ranges.
 *
 * Threads: any; a list is read-only once parsed. */
#ifndef AOS_CIDR_H
#define AOS_CIDR_H

#include <jansson.h>
#include <stddef.h>

#include "err/err.h"

#define AOS_CIDR_TEXT_MAX 64   /* longest range text: an IPv6 address, '/', 3 digits */
#define AOS_CIDR_LIST_MAX 1024 /* most ranges in one list */

typedef struct {
    int v6;                 /* 0: IPv4 (addr[0..3]), 1: IPv6 */
    unsigned char addr[16]; /* host bits cleared */
    unsigned bits;
} aos_cidr_t;

typedef struct {
    aos_cidr_t *v; /* malloc'ed; NULL when n == 0 */
    size_t n;
} aos_cidr_list_t;

/* Parses one range of len bytes (no NUL needed, no spaces): 0, or -1 when
 * it is not a range. */
int aos_cidr_parse(const char *text, size_t len, aos_cidr_t *out);
/* Parses an address (no prefix) of len bytes: 0 or -1. *v6 and addr as in
 * aos_cidr_t (a mapped IPv6 address is IPv4). */
int aos_cidr_addr_parse(const char *text, size_t len, int *v6, unsigned char addr[16]);
/* 1 if the address is in c. */
int aos_cidr_match(const aos_cidr_t *c, int v6, const unsigned char addr[16]);

/* A comma-separated list ("10.0.0.0/8, ::1"; spaces around entries and
 * empty entries ignored) into out (released with aos_cidr_list_release).
 * AOS_EINVAL naming the first bad entry (out then empty), AOS_ENOMEM. */
int aos_cidr_list_parse(const char *text, aos_cidr_list_t *out, aos_err_t *err);
/* The same from a JSON array of strings; the error names the index and
 * what it holds ("'security.ip_allowlist[2]': ..." when what is given). */
int aos_cidr_list_from_json(const json_t *arr, const char *what, aos_cidr_list_t *out,
                            aos_err_t *err);
/* 1 if the address in text (as a peer's address is written) is in one of
 * l's ranges; 0 if not or if text is not an address. */
int aos_cidr_list_match(const aos_cidr_list_t *l, const char *text);
void aos_cidr_list_release(aos_cidr_list_t *l);

#endif
