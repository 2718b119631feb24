/* tracectx.c - W3C Trace Context: traceparent and tracestate parsed and
 * written, ids made. See tracectx.h; the section numbers below are those of
 * the specification's "Trace Context HTTP Headers Format". */
#include "tracectx/tracectx.h"
#include "err/err.h"

#include <sodium.h>
#include <string.h>

#define STATE_MEMBERS    32  /* list-members in a tracestate */
#define STATE_KEY_MAX    256 /* bytes of a key */
#define STATE_VALUE_MAX  256 /* bytes of a value */
#define STATE_MEMBER_BIG 128 /* members longer than this go first when cutting */

static int lhex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

int aos_tracectx_id_valid(const char *s, size_t n)
{
    int nonzero = 0;
    for (size_t i = 0; i < n; i++) {
        if (!lhex(s[i]))
            return 0;
        nonzero |= s[i] != '0';
    }
    return n > 0 && nonzero;
}

static int is_ows(char c)
{
    return c == ' ' || c == '\t';
}

/* traceparent: version "-" version-format. Version 00 is exactly 55
 * characters; a higher version (not ff) is read as 00 when it is at least
 * 55 long and what follows the flags is nothing or "-" (Versioning of
 * traceparent). */
static int parse_parent(aos_tracectx_t *out, const char *s, size_t n)
{
    if (n < AOS_TRACEPARENT_LEN || !lhex(s[0]) || !lhex(s[1]) || s[2] != '-')
        return AOS_EINVAL;
    int version = hexval(s[0]) * 16 + hexval(s[1]);
    if (version == 0xff || (version == 0 && n != AOS_TRACEPARENT_LEN))
        return AOS_EINVAL;
    if (n > AOS_TRACEPARENT_LEN && s[AOS_TRACEPARENT_LEN] != '-')
        return AOS_EINVAL;
    const char *tid = s + 3, *sid = s + 3 + AOS_TRACE_ID_LEN + 1, *fl = sid + AOS_SPAN_ID_LEN + 1;
    if (tid[AOS_TRACE_ID_LEN] != '-' || sid[AOS_SPAN_ID_LEN] != '-' ||
        !aos_tracectx_id_valid(tid, AOS_TRACE_ID_LEN) ||
        !aos_tracectx_id_valid(sid, AOS_SPAN_ID_LEN) || !lhex(fl[0]) || !lhex(fl[1]))
        return AOS_EINVAL;
    memcpy(out->trace_id, tid, AOS_TRACE_ID_LEN);
    out->trace_id[AOS_TRACE_ID_LEN] = '\0';
    memcpy(out->span_id, sid, AOS_SPAN_ID_LEN);
    out->span_id[AOS_SPAN_ID_LEN] = '\0';
    /* only the flags this version defines; the others "MUST be zero" */
    out->flags = (uint8_t)((hexval(fl[0]) * 16 + hexval(fl[1])) & AOS_TRACE_SAMPLED);
    out->remote = 1;
    return 0;
}

int aos_tracectx_parse(aos_tracectx_t *out, const char *traceparent, const char *tracestate)
{
    memset(out, 0, sizeof(*out));
    if (!traceparent)
        return AOS_EINVAL;
    const char *s = traceparent, *e = s + strlen(s);
    while (s < e && is_ows(*s))
        s++;
    while (e > s && is_ows(e[-1]))
        e--;
    /* a bound on what a future version may add: nothing legitimate is near it */
    if (e - s > 4 * AOS_TRACEPARENT_LEN || parse_parent(out, s, (size_t)(e - s)) < 0) {
        memset(out, 0, sizeof(*out));
        return AOS_EINVAL;
    }
    if (tracestate)
        aos_tracectx_state(out->tracestate, sizeof(out->tracestate), tracestate,
                           strlen(tracestate));
    return 0;
}

/* ---- tracestate ----------------------------------------------------------- */

/* key = (lcalpha / DIGIT) 0*255(lcalpha / DIGIT / "_" / "-" / "*" / "/" / "@") */
static int key_ok(const char *k, size_t n)
{
    if (n == 0 || n > STATE_KEY_MAX ||
        !((k[0] >= 'a' && k[0] <= 'z') || (k[0] >= '0' && k[0] <= '9')))
        return 0;
    for (size_t i = 1; i < n; i++) {
        char c = k[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-' ||
              c == '*' || c == '/' || c == '@'))
            return 0;
    }
    return 1;
}

/* value = 0*255(chr) nblk-chr; chr = %x20 / nblk-chr; nblk-chr = printable
 * ASCII but ',' and '=' */
static int value_ok(const char *v, size_t n)
{
    if (n == 0 || n > STATE_VALUE_MAX || v[n - 1] == ' ')
        return 0;
    for (size_t i = 0; i < n; i++)
        if (v[i] < 0x20 || v[i] > 0x7e || v[i] == ',' || v[i] == '=')
            return 0;
    return 1;
}

typedef struct {
    const char *p;
    size_t n;   /* the member, "key=value" */
    size_t key; /* the key's length */
} member_t;

size_t aos_tracectx_state(char *out, size_t cap, const char *s, size_t n)
{
    member_t m[STATE_MEMBERS];
    size_t count = 0;
    out[0] = '\0';
    for (size_t i = 0; i <= n;) {
        size_t j = i;
        while (j < n && s[j] != ',')
            j++;
        size_t a = i, b = j;
        while (a < b && is_ows(s[a]))
            a++;
        while (b > a && is_ows(s[b - 1]))
            b--;
        i = j + 1;
        if (a == b)
            continue; /* empty members are allowed */
        const char *eq = memchr(s + a, '=', b - a);
        if (!eq || count == STATE_MEMBERS)
            return 0;
        size_t klen = (size_t)(eq - (s + a));
        if (!key_ok(s + a, klen) || !value_ok(eq + 1, b - a - klen - 1))
            return 0;
        for (size_t k = 0; k < count; k++)
            if (m[k].key == klen && !memcmp(m[k].p, s + a, klen))
                return 0; /* a key twice */
        m[count].p = s + a;
        m[count].n = b - a;
        m[count].key = klen;
        count++;
    }
    /* what fits: drop members over 128 bytes while too long, then from the end */
    size_t limit = cap - 1 < AOS_TRACESTATE_MAX ? cap - 1 : AOS_TRACESTATE_MAX;
    size_t total = 0, left = count;
    for (size_t k = 0; k < count; k++)
        total += m[k].n + (k > 0);
    for (int pass = 0; pass < 2; pass++) {
        for (size_t k = count; total > limit && k-- > 0;) {
            if (!m[k].n || (pass == 0 && m[k].n <= STATE_MEMBER_BIG))
                continue;
            total -= m[k].n + (left > 1);
            m[k].n = 0;
            left--;
        }
    }
    size_t len = 0;
    for (size_t k = 0; k < count; k++) {
        if (!m[k].n)
            continue;
        if (len)
            out[len++] = ',';
        memcpy(out + len, m[k].p, m[k].n);
        len += m[k].n;
    }
    out[len] = '\0';
    return len;
}

/* ---- making and writing ---------------------------------------------------- */

/* Ids are taken from a per-thread pool of random bytes, refilled from
 * libsodium 512 bytes at a time: a span and a trace id per request would
 * otherwise cost two getrandom calls per request. Ids are not secrets (they
 * travel in headers and logs), so bytes waiting in memory are harmless. A
 * pool is only ever used by its own thread, and aosd never forks without
 * exec, so no two ids share bytes. */
#define ID_POOL 512

static void random_take(unsigned char *b, size_t n)
{
    static _Thread_local unsigned char pool[ID_POOL];
    static _Thread_local size_t left;
    if (n > sizeof(pool)) {
        randombytes_buf(b, n);
        return;
    }
    if (left < n) {
        randombytes_buf(pool, sizeof(pool));
        left = sizeof(pool);
    }
    memcpy(b, pool + sizeof(pool) - left, n);
    sodium_memzero(pool + sizeof(pool) - left, n); /* each byte serves once */
    left -= n;
}

void aos_tracectx_random_id(char *out, size_t n)
{
    unsigned char b[AOS_TRACE_ID_LEN / 2];
    size_t bytes = n / 2 > sizeof(b) ? sizeof(b) : n / 2;
    do
        random_take(b, bytes);
    while (sodium_is_zero(b, bytes));
    sodium_bin2hex(out, bytes * 2 + 1, b, bytes);
}

void aos_tracectx_new(aos_tracectx_t *out)
{
    memset(out, 0, sizeof(*out));
    aos_tracectx_random_id(out->trace_id, AOS_TRACE_ID_LEN);
    out->flags = AOS_TRACE_SAMPLED;
}

void aos_tracectx_child(aos_tracectx_t *out, const aos_tracectx_t *parent)
{
    if (!parent || !parent->trace_id[0]) {
        aos_tracectx_new(out);
    } else if (out != parent) {
        *out = *parent;
    }
    out->remote = 0;
    aos_tracectx_random_id(out->span_id, AOS_SPAN_ID_LEN);
}

int aos_tracectx_valid(const aos_tracectx_t *c)
{
    return c && c->trace_id[0] && c->span_id[0];
}

int aos_tracectx_format(const aos_tracectx_t *c, char out[AOS_TRACEPARENT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    if (!aos_tracectx_valid(c)) {
        out[0] = '\0';
        return AOS_EINVAL;
    }
    memcpy(out, "00-", 3);
    memcpy(out + 3, c->trace_id, AOS_TRACE_ID_LEN);
    out[3 + AOS_TRACE_ID_LEN] = '-';
    memcpy(out + 4 + AOS_TRACE_ID_LEN, c->span_id, AOS_SPAN_ID_LEN);
    out[4 + AOS_TRACE_ID_LEN + AOS_SPAN_ID_LEN] = '-';
    out[53] = hex[c->flags >> 4];
    out[54] = hex[c->flags & 15];
    out[55] = '\0';
    return 0;
}
