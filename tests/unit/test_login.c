/* test_login.c - the pure parts of browser logins: SHA-1 against FIPS 180
 * vectors, HMAC-SHA-1 against RFC 2202, HOTP against RFC 4226 appendix D,
 * TOTP against RFC 6238 appendix B (the SHA-1 rows) with the window and
 * replay rules, base32 against RFC 4648, cookie parsing and Set-Cookie,
 * the CSRF token and Origin check, and the back-off state machine driven
 * by a clock the test moves. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "login/login.h"

static void hex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

static void assert_sha1(const void *data, size_t len, const char *want)
{
    uint8_t d[20];
    char h[41];
    aos_login_sha1(data, len, d);
    hex(d, 20, h);
    assert_string_equal(h, want);
}

static void test_sha1_fips_vectors(void **state)
{
    (void)state;
    assert_sha1("abc", 3, "a9993e364706816aba3e25717850c26c9cd0d89d");
    assert_sha1("", 0, "da39a3ee5e6b4b0d3255bfef95601890afd80709");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_sha1(two, strlen(two), "84983e441c3bd26ebaae4aa1f95129e5e54670f1");
    static char million[1000000];
    memset(million, 'a', sizeof(million));
    assert_sha1(million, sizeof(million), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
    /* 55, 56 and 64 bytes: the padding's edge cases */
    char x[64];
    memset(x, 'x', sizeof(x));
    uint8_t a[20], b[20];
    aos_login_sha1(x, 55, a);
    aos_login_sha1(x, 56, b);
    assert_memory_not_equal(a, b, 20);
}

static void assert_hmac(const void *key, size_t klen, const void *msg, size_t mlen,
                        const char *want)
{
    uint8_t d[20];
    char h[41];
    aos_login_hmac_sha1(key, klen, msg, mlen, d);
    hex(d, 20, h);
    assert_string_equal(h, want);
}

static void test_hmac_sha1_rfc2202(void **state)
{
    (void)state;
    uint8_t k1[20];
    memset(k1, 0x0b, sizeof(k1));
    assert_hmac(k1, 20, "Hi There", 8, "b617318655057264e28bc0b6fb378c8ef146be00");
    assert_hmac("Jefe", 4, "what do ya want for nothing?", 28,
                "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
    uint8_t k3[20], d3[50];
    memset(k3, 0xaa, sizeof(k3));
    memset(d3, 0xdd, sizeof(d3));
    assert_hmac(k3, 20, d3, 50, "125d7342b9ac11cd91a39af48aa17b4f63f175d3");
    uint8_t k6[80];
    memset(k6, 0xaa, sizeof(k6));
    const char *m6 = "Test Using Larger Than Block-Size Key - Hash Key First";
    assert_hmac(k6, 80, m6, strlen(m6), "aa4ae5e15272d00e95705637ce8a3b55ed402112");
    const char *m7 = "Test Using Larger Than Block-Size Key and Larger Than One Block-Size Data";
    assert_hmac(k6, 80, m7, strlen(m7), "e8e99d0f45237d786d6bbaa7965c7808bbff1a91");
}

static const uint8_t rfc_key[] = "12345678901234567890";

static void test_hotp_rfc4226(void **state)
{
    (void)state;
    static const uint32_t want[] = {755224, 287082, 359152, 969429, 338314,
                                    254676, 287922, 162583, 399871, 520489};
    for (uint64_t c = 0; c < 10; c++)
        assert_int_equal(aos_login_hotp(rfc_key, 20, c, 6), want[c]);
}

static void test_totp_rfc6238_sha1(void **state)
{
    (void)state;
    /* appendix B, SHA-1, 8 digits */
    static const struct {
        int64_t t;
        uint32_t code;
    } rows[] = {{59, 94287082},         {1111111109, 7081804},  {1111111111, 14050471},
                {1234567890, 89005924}, {2000000000, 69279037}, {20000000000LL, 65353130}};
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        assert_int_equal(aos_login_hotp(rfc_key, 20, (uint64_t)aos_login_totp_step(rows[i].t), 8),
                         rows[i].code);
    /* 6 digits are the last 6 of those: verify takes them */
    int64_t step = 0;
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, "005924", 1234567890, 0, &step), 0);
    assert_int_equal(step, 1234567890 / 30);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, "050471", 1111111111, 0, &step), 0);
}

static void test_totp_window_and_replay(void **state)
{
    (void)state;
    int64_t t = 1234567890, s = t / 30, step = 0;
    char prev[8], cur[8], next[8], far[8];
    snprintf(prev, sizeof(prev), "%06u", aos_login_hotp(rfc_key, 20, (uint64_t)(s - 1), 6));
    snprintf(cur, sizeof(cur), "%06u", aos_login_hotp(rfc_key, 20, (uint64_t)s, 6));
    snprintf(next, sizeof(next), "%06u", aos_login_hotp(rfc_key, 20, (uint64_t)(s + 1), 6));
    snprintf(far, sizeof(far), "%06u", aos_login_hotp(rfc_key, 20, (uint64_t)(s + 2), 6));
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, prev, t, 0, &step), 0);
    assert_int_equal(step, s - 1);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, next, t, 0, &step), 0);
    assert_int_equal(step, s + 1);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, far, t, 0, &step), -1);
    /* a step used already is refused, and so are the ones before it */
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, cur, t, s, &step), -1);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, prev, t, s, &step), -1);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, next, t, s, &step), 0);
    /* malformed codes */
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, "12345", t, 0, &step), -1);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, "1234567", t, 0, &step), -1);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, "12a456", t, 0, &step), -1);
    assert_int_equal(aos_login_totp_verify(rfc_key, 20, NULL, t, 0, &step), -1);
}

static void test_base32_rfc4648(void **state)
{
    (void)state;
    static const char *in[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *want[] = {"", "MY", "MZXQ", "MZXW6", "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI"};
    char out[32];
    for (size_t i = 0; i < 7; i++) {
        assert_int_equal(aos_login_base32((const uint8_t *)in[i], strlen(in[i]), out, sizeof(out)),
                         (int)strlen(want[i]));
        assert_string_equal(out, want[i]);
    }
    assert_int_equal(aos_login_base32((const uint8_t *)"foobar", 6, out, 10), -1);
}

static void test_cookie_get(void **state)
{
    (void)state;
    char v[64];
    assert_int_equal(aos_login_cookie_get("aos_session=abc", "aos_session", v, sizeof(v)), 1);
    assert_string_equal(v, "abc");
    assert_int_equal(aos_login_cookie_get("a=1; aos_session=xyz; b=2", "aos_session", v, sizeof(v)),
                     1);
    assert_string_equal(v, "xyz");
    assert_int_equal(aos_login_cookie_get("a=1;aos_session= q ;b=2", "aos_session", v, sizeof(v)),
                     1);
    assert_string_equal(v, "q");
    assert_int_equal(aos_login_cookie_get("aos_session=\"quoted\"", "aos_session", v, sizeof(v)),
                     1);
    assert_string_equal(v, "quoted");
    /* a name that only starts or ends like ours is another cookie */
    assert_int_equal(
        aos_login_cookie_get("xaos_session=1; aos_session_x=2", "aos_session", v, sizeof(v)), 0);
    assert_int_equal(aos_login_cookie_get("", "aos_session", v, sizeof(v)), 0);
    assert_int_equal(aos_login_cookie_get(NULL, "aos_session", v, sizeof(v)), 0);
    /* twice, malformed, too long */
    assert_int_equal(
        aos_login_cookie_get("aos_session=a; aos_session=b", "aos_session", v, sizeof(v)), -1);
    assert_int_equal(aos_login_cookie_get("junk; aos_session=a", "aos_session", v, sizeof(v)), -1);
    assert_int_equal(aos_login_cookie_get("aos_session=0123456789", "aos_session", v, 5), -1);
    assert_int_equal(aos_login_cookie_get("aos_session=", "aos_session", v, sizeof(v)), 1);
    assert_string_equal(v, "");
}

static void test_cookie_set(void **state)
{
    (void)state;
    char out[256];
    assert_true(aos_login_cookie_set(out, sizeof(out), "aos_session", "v", 600, 0) > 0);
    assert_string_equal(out, "aos_session=v; Path=/; Max-Age=600; HttpOnly; SameSite=Strict");
    assert_true(aos_login_cookie_set(out, sizeof(out), "aos_session", "", 0, 1) > 0);
    assert_string_equal(out, "aos_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict; Secure");
    assert_int_equal(aos_login_cookie_set(out, 10, "aos_session", "v", 600, 0), -1);
}

static void test_csrf(void **state)
{
    (void)state;
    const char *s1 = "Z2V0IHlvdXIgb3duIHNlY3JldCwgdGhpcyBpcyBvdXJzIQ";
    const char *s2 = "Z2V0IHlvdXIgb3duIHNlY3JldCwgdGhpcyBpcyBvdXJzIR";
    char t1[AOS_LOGIN_CSRF_LEN + 1], t2[AOS_LOGIN_CSRF_LEN + 1];
    aos_login_csrf_token(s1, t1);
    aos_login_csrf_token(s2, t2);
    assert_int_equal(strlen(t1), AOS_LOGIN_CSRF_LEN);
    assert_string_not_equal(t1, t2);
    assert_null(strstr(t1, s1));
    assert_int_equal(aos_login_csrf_check(s1, t1), 0);
    assert_int_equal(aos_login_csrf_check(s2, t1), -1);
    assert_int_equal(aos_login_csrf_check(s1, NULL), -1);
    assert_int_equal(aos_login_csrf_check(s1, ""), -1);
    char shorter[AOS_LOGIN_CSRF_LEN];
    memcpy(shorter, t1, sizeof(shorter) - 1);
    shorter[sizeof(shorter) - 1] = '\0';
    assert_int_equal(aos_login_csrf_check(s1, shorter), -1);
    t1[5] ^= 1;
    assert_int_equal(aos_login_csrf_check(s1, t1), -1);
}

static void test_methods_and_origin(void **state)
{
    (void)state;
    assert_false(aos_login_method_unsafe("GET"));
    assert_false(aos_login_method_unsafe("HEAD"));
    assert_false(aos_login_method_unsafe("OPTIONS"));
    assert_true(aos_login_method_unsafe("POST"));
    assert_true(aos_login_method_unsafe("PUT"));
    assert_true(aos_login_method_unsafe("PATCH"));
    assert_true(aos_login_method_unsafe("DELETE"));
    assert_true(aos_login_origin_ok(NULL, "127.0.0.1:8080", 0));
    assert_true(aos_login_origin_ok("http://127.0.0.1:8080", "127.0.0.1:8080", 0));
    assert_true(aos_login_origin_ok("HTTP://Example.COM", "example.com", 0));
    assert_true(aos_login_origin_ok("https://example.com", "example.com", 1));
    assert_false(aos_login_origin_ok("http://example.com", "example.com", 1));
    assert_false(aos_login_origin_ok("https://example.com", "example.com", 0));
    assert_false(aos_login_origin_ok("http://evil.test", "127.0.0.1:8080", 0));
    assert_false(aos_login_origin_ok("http://127.0.0.1:8081", "127.0.0.1:8080", 0));
    assert_false(aos_login_origin_ok("null", "127.0.0.1:8080", 0));
    assert_false(aos_login_origin_ok("http://127.0.0.1:8080", NULL, 0));
    assert_false(aos_login_origin_ok("http://127.0.0.1:8080/", "127.0.0.1:8080", 0));
}

static void test_backoff_waits_then_locks(void **state)
{
    (void)state;
    aos_login_policy_t pol = {.free = 2, .lock_after = 6, .lock_ms = 60000};
    aos_login_backoff_t b = {0};
    uint64_t now = 1000000;
    assert_int_equal(aos_login_backoff_wait(&b, now), 0);
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 0);
    assert_int_equal(aos_login_backoff_wait(&b, now), 0);
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 0);
    assert_int_equal(aos_login_backoff_wait(&b, now), 0);
    /* third: 1 s, fourth: 2 s, fifth: 4 s */
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 0);
    assert_int_equal(aos_login_backoff_wait(&b, now), 1000);
    assert_int_equal(aos_login_backoff_wait(&b, now + 400), 600);
    now += 1000;
    assert_int_equal(aos_login_backoff_wait(&b, now), 0);
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 0);
    assert_int_equal(aos_login_backoff_wait(&b, now), 2000);
    now += 2000;
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 0);
    assert_int_equal(aos_login_backoff_wait(&b, now), 4000);
    now += 4000;
    /* sixth: locked for lock_ms */
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 1);
    assert_int_equal(aos_login_backoff_wait(&b, now), 60000);
    now += 60000;
    assert_int_equal(aos_login_backoff_wait(&b, now), 0);
    /* one more failure right after the lock: locked again at once */
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 1);
    assert_int_equal(aos_login_backoff_wait(&b, now), 60000);
    assert_false(aos_login_backoff_idle(&b, &pol, now + 60000));
    /* lock_ms of quiet after the wait forgets it all */
    now += 120000;
    assert_true(aos_login_backoff_idle(&b, &pol, now));
    assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 0);
    assert_int_equal(b.failures, 1);
    assert_int_equal(aos_login_backoff_wait(&b, now), 0);
}

static void test_backoff_success_forgets_and_caps(void **state)
{
    (void)state;
    aos_login_policy_t pol = {.free = 0, .lock_after = 0, .lock_ms = 5000};
    aos_login_backoff_t b = {0};
    uint64_t now = 50;
    assert_true(aos_login_backoff_idle(&b, &pol, now));
    aos_login_backoff_fail(&b, &pol, now);
    assert_int_equal(aos_login_backoff_wait(&b, now), 1000);
    aos_login_backoff_ok(&b);
    assert_int_equal(aos_login_backoff_wait(&b, now), 0);
    assert_true(aos_login_backoff_idle(&b, &pol, now));
    /* no lock (lock_after 0): the wait doubles up to lock_ms and stays */
    uint64_t want[] = {1000, 2000, 4000, 5000, 5000};
    for (int i = 0; i < 5; i++) {
        assert_int_equal(aos_login_backoff_fail(&b, &pol, now), 0);
        assert_int_equal(aos_login_backoff_wait(&b, now), want[i]);
        now += want[i];
    }
    /* a huge count does not overflow the shift */
    b.failures = 1000;
    aos_login_backoff_fail(&b, &pol, now);
    assert_int_equal(aos_login_backoff_wait(&b, now), 5000);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_fips_vectors),
        cmocka_unit_test(test_hmac_sha1_rfc2202),
        cmocka_unit_test(test_hotp_rfc4226),
        cmocka_unit_test(test_totp_rfc6238_sha1),
        cmocka_unit_test(test_totp_window_and_replay),
        cmocka_unit_test(test_base32_rfc4648),
        cmocka_unit_test(test_cookie_get),
        cmocka_unit_test(test_cookie_set),
        cmocka_unit_test(test_csrf),
        cmocka_unit_test(test_methods_and_origin),
        cmocka_unit_test(test_backoff_waits_then_locks),
        cmocka_unit_test(test_backoff_success_forgets_and_caps),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
