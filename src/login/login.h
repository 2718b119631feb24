/* login.h - the pure parts of browser logins: the session cookie, the CSRF
 * token and Origin check, the back-off of failed logins and TOTP.
 *
 * Nothing here allocates, logs or reads a clock: times are passed in (as in
 * src/guard), so every piece is tested with a fake clock. Any thread.
 *
 * - Cookies (RFC 6265): aos_login_cookie_get finds one cookie in a Cookie
 *   header; a name sent twice is refused (a sub-domain could have set the
 *   second one). aos_login_cookie_set writes a Set-Cookie value with
 *   HttpOnly, SameSite=Strict, Path=/ and Secure when asked.
 * - CSRF: the token of a session is derived from its secret (keyed
 *   BLAKE2b of a fixed label), so it is never stored and changes with the
 *   session; a state-changing request with the cookie must send it back in
 *   X-CSRF-Token (compared in constant time) and, if it sends an Origin,
 *   one of this server.
 * - Back-off: consecutive failures of one key (a user name, a client
 *   address): the first 'free' cost nothing, each later one makes the key
 *   wait 1 s, 2 s, 4 s ... (at most lock_ms), and at lock_after failures
 *   the key is locked for lock_ms; a success or lock_ms of quiet after the
 *   wait forgets them.
 * - TOTP (RFC 6238 over RFC 4226): HMAC-SHA-1, 30 s steps, 6 digits, the
 *   step before and after accepted, a step never accepted twice. libsodium
 *   has no SHA-1, nor does anything else aosd links directly (libcurl's
 *   TLS library is not ours to call), so SHA-1 (FIPS 180-4) and HMAC
 *   (RFC 2104) are here, tested against FIPS, RFC 2202 and RFC 6238
 *   vectors. SHA-1 serves TOTP only. */
#ifndef AOS_LOGIN_H
#define AOS_LOGIN_H

#include <stddef.h>
#include <stdint.h>

/* ---- cookies ------------------------------------------------------------- */

#define AOS_LOGIN_COOKIE "aos_session"
/* The session secret in the cookie: 32 random bytes, base64url, no padding. */
#define AOS_LOGIN_SECRET_LEN 43

/* The value of cookie name in a Cookie header ("a=1; b=2") into out (cap
 * bytes, NUL-terminated): 1 found, 0 absent, -1 malformed (a pair without
 * '='), sent twice, or longer than cap - 1. */
int aos_login_cookie_get(const char *header, const char *name, char *out, size_t cap);
/* A Set-Cookie value: "<name>=<value>; Path=/; Max-Age=<max_age_s>;
 * HttpOnly; SameSite=Strict[; Secure]". value "" with max_age_s 0 clears
 * it. Returns the length, or -1 if it does not fit in cap. */
int aos_login_cookie_set(char *out, size_t cap, const char *name, const char *value,
                         long long max_age_s, int secure);

/* ---- CSRF ---------------------------------------------------------------- */

#define AOS_LOGIN_CSRF_LEN 43
/* The CSRF token of the session whose cookie holds secret. */
void aos_login_csrf_token(const char *secret, char out[AOS_LOGIN_CSRF_LEN + 1]);
/* 0 if header (X-CSRF-Token, may be NULL) is the token of secret, else -1.
 * Constant time for a header of the right length. */
int aos_login_csrf_check(const char *secret, const char *header);
/* 1 for the methods that change state: anything but GET, HEAD, OPTIONS. */
int aos_login_method_unsafe(const char *method);
/* 1 if origin (an Origin header; NULL: none sent) may make a request to
 * the server the client reached as host (the Host header) over tls:
 * absent, or exactly "<scheme>://<host>" (scheme and host case-insensitive).
 * "null" and anything else: 0. */
int aos_login_origin_ok(const char *origin, const char *host, int tls);

/* ---- back-off ------------------------------------------------------------ */

typedef struct {
    uint32_t free;       /* failures that cost nothing */
    uint32_t lock_after; /* failures that lock the key */
    uint64_t lock_ms;    /* how long a lock lasts; the longest wait */
} aos_login_policy_t;

typedef struct {
    uint32_t failures;
    uint64_t until_ms; /* no attempt before this */
} aos_login_backoff_t;

/* ms to wait before the key may try again (0: now). */
uint64_t aos_login_backoff_wait(const aos_login_backoff_t *b, uint64_t now_ms);
/* Counts a failure at now_ms; returns 1 if it locked the key. */
int aos_login_backoff_fail(aos_login_backoff_t *b, const aos_login_policy_t *pol, uint64_t now_ms);
/* A success: forgets the failures. */
void aos_login_backoff_ok(aos_login_backoff_t *b);
/* 1 if the key has nothing worth keeping at now_ms: no failures, or its
 * wait ended lock_ms ago (the failures are forgotten then). */
int aos_login_backoff_idle(const aos_login_backoff_t *b, const aos_login_policy_t *pol,
                           uint64_t now_ms);

/* ---- SHA-1, HMAC-SHA-1, TOTP -------------------------------------------- */

void aos_login_sha1(const void *data, size_t len, uint8_t out[20]);
void aos_login_hmac_sha1(const void *key, size_t klen, const void *msg, size_t mlen,
                         uint8_t out[20]);
/* RFC 4226 HOTP of counter with digits (6..8) digits. */
uint32_t aos_login_hotp(const uint8_t *key, size_t klen, uint64_t counter, int digits);

#define AOS_LOGIN_TOTP_STEP_S 30
/* The TOTP step of Unix time now_s. */
int64_t aos_login_totp_step(int64_t now_s);
/* Checks a 6-digit code for the steps of now_s - 30, now_s and now_s + 30
 * that are later than last_step (a step used already is refused): 0 with
 * *step set to the step it matched, or -1 (not 6 digits, or no match). */
int aos_login_totp_verify(const uint8_t *key, size_t klen, const char *code, int64_t now_s,
                          int64_t last_step, int64_t *step);
/* RFC 4648 base32 (no padding) of n bytes into out: -1 if cap is short. */
int aos_login_base32(const uint8_t *in, size_t n, char *out, size_t cap);

#endif
