/* login.c - cookies, CSRF, back-off, SHA-1 and TOTP; see login.h. */
#include "login/login.h"

#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* ---- cookies ------------------------------------------------------------- */

static int ows(char c)
{
    return c == ' ' || c == '\t';
}

int aos_login_cookie_get(const char *header, const char *name, char *out, size_t cap)
{
    if (cap)
        out[0] = '\0';
    if (!header)
        return 0;
    size_t nlen = strlen(name);
    int found = 0;
    const char *p = header;
    while (*p) {
        while (ows(*p) || *p == ';')
            p++;
        if (!*p)
            break;
        const char *end = strchr(p, ';');
        if (!end)
            end = p + strlen(p);
        const char *eq = memchr(p, '=', (size_t)(end - p));
        if (!eq)
            return -1;
        const char *k = p, *kend = eq;
        while (kend > k && ows(kend[-1]))
            kend--;
        if ((size_t)(kend - k) == nlen && !memcmp(k, name, nlen)) {
            if (found)
                return -1; /* twice: which one is ours is unknowable */
            const char *v = eq + 1, *vend = end;
            while (v < vend && ows(*v))
                v++;
            while (vend > v && ows(vend[-1]))
                vend--;
            if (vend - v >= 2 && *v == '"' && vend[-1] == '"') {
                v++;
                vend--;
            }
            size_t n = (size_t)(vend - v);
            if (n + 1 > cap)
                return -1;
            memcpy(out, v, n);
            out[n] = '\0';
            found = 1;
        }
        p = end;
    }
    return found;
}

int aos_login_cookie_set(char *out, size_t cap, const char *name, const char *value,
                         long long max_age_s, int secure)
{
    int n = snprintf(out, cap, "%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s", name,
                     value, max_age_s, secure ? "; Secure" : "");
    return n < 0 || (size_t)n >= cap ? -1 : n;
}

/* ---- CSRF ---------------------------------------------------------------- */

static const char csrf_label[] = "aos csrf token v1";

void aos_login_csrf_token(const char *secret, char out[AOS_LOGIN_CSRF_LEN + 1])
{
    unsigned char mac[32];
    size_t klen = strlen(secret);
    if (klen > crypto_generichash_KEYBYTES_MAX)
        klen = crypto_generichash_KEYBYTES_MAX;
    crypto_generichash(mac, sizeof(mac), (const unsigned char *)csrf_label, sizeof(csrf_label) - 1,
                       (const unsigned char *)secret, klen);
    sodium_bin2base64(out, AOS_LOGIN_CSRF_LEN + 1, mac, sizeof(mac),
                      sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(mac, sizeof(mac));
}

int aos_login_csrf_check(const char *secret, const char *header)
{
    if (!secret || !header || strlen(header) != AOS_LOGIN_CSRF_LEN)
        return -1;
    char want[AOS_LOGIN_CSRF_LEN + 1];
    aos_login_csrf_token(secret, want);
    int ok = sodium_memcmp(want, header, AOS_LOGIN_CSRF_LEN) == 0;
    sodium_memzero(want, sizeof(want));
    return ok ? 0 : -1;
}

int aos_login_method_unsafe(const char *m)
{
    return !m || (strcmp(m, "GET") && strcmp(m, "HEAD") && strcmp(m, "OPTIONS"));
}

int aos_login_origin_ok(const char *origin, const char *host, int tls)
{
    if (!origin)
        return 1;
    const char *scheme = tls ? "https://" : "http://";
    size_t sl = strlen(scheme);
    if (!host || !*host || strncasecmp(origin, scheme, sl) != 0)
        return 0;
    return strcasecmp(origin + sl, host) == 0;
}

/* ---- back-off ------------------------------------------------------------ */

uint64_t aos_login_backoff_wait(const aos_login_backoff_t *b, uint64_t now_ms)
{
    return b->until_ms > now_ms ? b->until_ms - now_ms : 0;
}

int aos_login_backoff_fail(aos_login_backoff_t *b, const aos_login_policy_t *pol, uint64_t now_ms)
{
    if (aos_login_backoff_idle(b, pol, now_ms))
        b->failures = 0;
    if (b->failures < UINT32_MAX)
        b->failures++;
    uint64_t wait = 0;
    int locked = 0;
    if (pol->lock_after && b->failures >= pol->lock_after) {
        wait = pol->lock_ms;
        locked = 1;
    } else if (b->failures > pol->free) {
        uint32_t k = b->failures - pol->free - 1;
        wait = k >= 40 ? pol->lock_ms : 1000ull << k;
        if (wait > pol->lock_ms)
            wait = pol->lock_ms;
    }
    b->until_ms = now_ms + wait;
    return locked;
}

void aos_login_backoff_ok(aos_login_backoff_t *b)
{
    b->failures = 0;
    b->until_ms = 0;
}

int aos_login_backoff_idle(const aos_login_backoff_t *b, const aos_login_policy_t *pol,
                           uint64_t now_ms)
{
    return b->failures == 0 || now_ms >= b->until_ms + pol->lock_ms;
}

/* ---- SHA-1 (FIPS 180-4) -------------------------------------------------- */

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & c) | (~b & d);
            k = 0x5a827999;
        } else if (i < 40) {
            f = b ^ c ^ d;
            k = 0x6ed9eba1;
        } else if (i < 60) {
            f = (b & c) | (b & d) | (c & d);
            k = 0x8f1bbcdc;
        } else {
            f = b ^ c ^ d;
            k = 0xca62c1d6;
        }
        uint32_t t = ROL(a, 5) + f + e + k + w[i];
        e = d;
        d = c;
        c = ROL(b, 30);
        b = a;
        a = t;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
}

typedef struct {
    uint32_t h[5];
    uint8_t buf[64];
    size_t nbuf;
    uint64_t total;
} sha1_t;

static void sha1_init(sha1_t *s)
{
    static const uint32_t iv[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(s->h, iv, sizeof(iv));
    s->nbuf = 0;
    s->total = 0;
}

static void sha1_update(sha1_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;
    s->total += len;
    while (len) {
        size_t take = 64 - s->nbuf < len ? 64 - s->nbuf : len;
        memcpy(s->buf + s->nbuf, p, take);
        s->nbuf += take;
        p += take;
        len -= take;
        if (s->nbuf == 64) {
            sha1_block(s->h, s->buf);
            s->nbuf = 0;
        }
    }
}

static void sha1_final(sha1_t *s, uint8_t out[20])
{
    uint64_t bits = s->total * 8;
    uint8_t pad = 0x80, zero = 0;
    sha1_update(s, &pad, 1);
    while (s->nbuf != 56)
        sha1_update(s, &zero, 1);
    uint8_t len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (uint8_t)(bits >> (56 - 8 * i));
    sha1_update(s, len, 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(s->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(s->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(s->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)s->h[i];
    }
    sodium_memzero(s, sizeof(*s));
}

void aos_login_sha1(const void *data, size_t len, uint8_t out[20])
{
    sha1_t s;
    sha1_init(&s);
    sha1_update(&s, data, len);
    sha1_final(&s, out);
}

void aos_login_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen,
                         uint8_t out[20])
{
    uint8_t k[64] = {0}, pad[64], inner[20];
    if (klen > 64)
        aos_login_sha1(key, klen, k);
    else if (klen)
        memcpy(k, key, klen);
    sha1_t s;
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x36;
    sha1_init(&s);
    sha1_update(&s, pad, 64);
    sha1_update(&s, msg, mlen);
    sha1_final(&s, inner);
    for (int i = 0; i < 64; i++)
        pad[i] = k[i] ^ 0x5c;
    sha1_init(&s);
    sha1_update(&s, pad, 64);
    sha1_update(&s, inner, sizeof(inner));
    sha1_final(&s, out);
    sodium_memzero(k, sizeof(k));
    sodium_memzero(pad, sizeof(pad));
    sodium_memzero(inner, sizeof(inner));
}

/* ---- HOTP / TOTP ----------------------------------------------------------- */

uint32_t aos_login_hotp(const uint8_t *key, size_t klen, uint64_t counter, int digits)
{
    uint8_t msg[8], mac[20];
    for (int i = 0; i < 8; i++)
        msg[i] = (uint8_t)(counter >> (56 - 8 * i));
    aos_login_hmac_sha1(key, klen, msg, sizeof(msg), mac);
    unsigned off = mac[19] & 0x0f;
    uint32_t bin = (uint32_t)(mac[off] & 0x7f) << 24 | (uint32_t)mac[off + 1] << 16 |
                   (uint32_t)mac[off + 2] << 8 | mac[off + 3];
    sodium_memzero(mac, sizeof(mac));
    uint32_t mod = 1;
    for (int i = 0; i < digits; i++)
        mod *= 10;
    return bin % mod;
}

int64_t aos_login_totp_step(int64_t now_s)
{
    return now_s < 0 ? 0 : now_s / AOS_LOGIN_TOTP_STEP_S;
}

int aos_login_totp_verify(const uint8_t *key, size_t klen, const char *code, int64_t now_s,
                          int64_t last_step, int64_t *step)
{
    if (!code || strlen(code) != 6)
        return -1;
    uint32_t want = 0;
    for (int i = 0; i < 6; i++) {
        if (code[i] < '0' || code[i] > '9')
            return -1;
        want = want * 10 + (uint32_t)(code[i] - '0');
    }
    int64_t t = aos_login_totp_step(now_s);
    int hit = -1;
    for (int64_t s = t - 1; s <= t + 1; s++) {
        if (s < 0 || s <= last_step)
            continue;
        /* every candidate is computed: the time does not tell which matched */
        uint32_t got = aos_login_hotp(key, klen, (uint64_t)s, 6);
        if (got == want && hit < 0) {
            *step = s;
            hit = 0;
        }
    }
    return hit;
}

int aos_login_base32(const uint8_t *in, size_t n, char *out, size_t cap)
{
    static const char alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    size_t need = (n * 8 + 4) / 5;
    if (need + 1 > cap)
        return -1;
    size_t k = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        acc = (acc << 8) | in[i];
        bits += 8;
        while (bits >= 5) {
            out[k++] = alpha[(acc >> (bits - 5)) & 31];
            bits -= 5;
        }
    }
    if (bits > 0)
        out[k++] = alpha[(acc << (5 - bits)) & 31];
    out[k] = '\0';
    return (int)k;
}
