/* test_secret.c - the master key file, sealing and opening secrets, and API
 * tokens. Each test works in its own temporary data directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <ctype.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret/secret.h"

/* base64 of the bytes 0, 1, ..., 31 */
#define FIXED_KEY "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

typedef struct {
    char dir[64];
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    if (aos_test_mkdtemp(f->dir, sizeof(f->dir), "secret")) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static aos_secret_box_t *open_box(const char *dir, const char *key)
{
    aos_secret_box_t *b = NULL;
    aos_err_t err = {0};
    int rc = aos_secret_box_open(&b, dir, key, &err);
    if (rc != 0)
        fail_msg("aos_secret_box_open: %s", aos_err_msg(&err));
    assert_non_null(b);
    return b;
}

static void test_seal_open_round_trip(void **state)
{
    fixture_t *f = *state;
    aos_secret_box_t *b = open_box(f->dir, NULL);
    const char *msg = "ghp_supersecret token";
    char *sealed = aos_secret_seal(b, msg, strlen(msg));
    assert_non_null(sealed);
    assert_memory_equal(sealed, "v1:", 3);
    assert_null(strstr(sealed, "supersecret"));

    size_t len = 99;
    char *plain = aos_secret_open(b, sealed, &len);
    assert_non_null(plain);
    assert_int_equal(len, strlen(msg));
    assert_string_equal(plain, msg);
    aos_secret_wipe(plain);

    /* Random nonces: the same plaintext seals differently each time. */
    char *again = aos_secret_seal(b, msg, strlen(msg));
    assert_string_not_equal(again, sealed);
    free(again);

    /* Binary content with a NUL and the empty string both survive. */
    const char bin[] = {'a', '\0', 'b'};
    char *s2 = aos_secret_seal(b, bin, sizeof(bin));
    plain = aos_secret_open(b, s2, &len);
    assert_non_null(plain);
    assert_int_equal(len, 3);
    assert_memory_equal(plain, bin, 3);
    aos_secret_wipe(plain);
    free(s2);
    char *s3 = aos_secret_seal(b, "", 0);
    plain = aos_secret_open(b, s3, &len);
    assert_non_null(plain);
    assert_int_equal(len, 0);
    assert_string_equal(plain, "");
    aos_secret_wipe(plain);
    free(s3);

    assert_null(aos_secret_seal(b, "x", AOS_SECRET_MAX + 1));
    free(sealed);
    aos_secret_box_free(b);
}

static void test_tamper_detected(void **state)
{
    fixture_t *f = *state;
    aos_secret_box_t *b = open_box(f->dir, NULL);
    char *sealed = aos_secret_seal(b, "hunter2", 7);
    assert_non_null(sealed);
    size_t n = strlen(sealed);
    size_t len = 99;

    /* Flip one base64 digit in the nonce, in the middle and in the tag. */
    size_t at[] = {4, n / 2, n - 3};
    for (size_t i = 0; i < sizeof(at) / sizeof(at[0]); i++) {
        char *t = strdup(sealed);
        t[at[i]] = t[at[i]] == 'A' ? 'B' : 'A';
        assert_null(aos_secret_open(b, t, &len));
        assert_int_equal(len, 0);
        free(t);
    }
    /* Truncated, wrong version, not base64, too short, empty. */
    char *t = strdup(sealed);
    t[n - 4] = '\0';
    assert_null(aos_secret_open(b, t, NULL));
    t[0] = 'v';
    t[1] = '2';
    assert_null(aos_secret_open(b, t, NULL));
    free(t);
    assert_null(aos_secret_open(b, sealed + 3, NULL));
    assert_null(aos_secret_open(b, "v1:!!!!", NULL));
    assert_null(aos_secret_open(b, "v1:AAAA", NULL));
    assert_null(aos_secret_open(b, "", NULL));
    assert_null(aos_secret_open(b, NULL, NULL));

    /* The untouched text still opens. */
    char *plain = aos_secret_open(b, sealed, &len);
    assert_non_null(plain);
    assert_string_equal(plain, "hunter2");
    aos_secret_wipe(plain);
    free(sealed);
    aos_secret_box_free(b);
}

static void test_key_file_created_private_and_reused(void **state)
{
    fixture_t *f = *state;
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", f->dir, AOS_SECRET_KEY_FILE);
    struct stat sb;
    assert_int_equal(stat(path, &sb), -1);

    aos_secret_box_t *b1 = open_box(f->dir, NULL);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    assert_true(S_ISREG(sb.st_mode));

    /* The file is base64 text of 32 bytes, and no temporary file is left. */
    char text[128] = {0};
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    size_t n = fread(text, 1, sizeof(text) - 1, fp);
    fclose(fp);
    assert_int_equal(n, 45); /* 44 chars + newline */
    DIR *d = opendir(f->dir);
    struct dirent *e;
    int entries = 0;
    while ((e = readdir(d)))
        entries += e->d_name[0] != '.';
    closedir(d);
    assert_int_equal(entries, 1);

    char *sealed = aos_secret_seal(b1, "reuse me", 8);
    aos_secret_box_free(b1);

    aos_secret_box_t *b2 = open_box(f->dir, NULL);
    char *plain = aos_secret_open(b2, sealed, NULL);
    assert_non_null(plain);
    assert_string_equal(plain, "reuse me");
    aos_secret_wipe(plain);
    aos_secret_box_free(b2);

    /* The same key given as text opens it too. */
    text[44] = '\0';
    aos_secret_box_t *b3 = open_box(NULL, text);
    plain = aos_secret_open(b3, sealed, NULL);
    assert_non_null(plain);
    aos_secret_wipe(plain);
    aos_secret_box_free(b3);
    free(sealed);
}

static void test_other_key_cannot_open(void **state)
{
    fixture_t *f = *state;
    aos_secret_box_t *file_box = open_box(f->dir, NULL);
    aos_secret_box_t *fixed = open_box(f->dir, FIXED_KEY);
    char *sealed = aos_secret_seal(file_box, "mine", 4);
    assert_null(aos_secret_open(fixed, sealed, NULL));
    free(sealed);

    /* A given key wins over the data directory and works in any variant. */
    sealed = aos_secret_seal(fixed, "fixed", 5);
    aos_secret_box_t *nopad = open_box(NULL, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n");
    char *plain = aos_secret_open(nopad, sealed, NULL);
    assert_non_null(plain);
    assert_string_equal(plain, "fixed");
    aos_secret_wipe(plain);
    assert_null(aos_secret_open(file_box, sealed, NULL));
    free(sealed);
    aos_secret_box_free(nopad);
    aos_secret_box_free(fixed);
    aos_secret_box_free(file_box);
}

static void test_bad_keys_rejected(void **state)
{
    fixture_t *f = *state;
    aos_secret_box_t *b = (aos_secret_box_t *)0x1;
    aos_err_t err = {0};
    /* 16 bytes, not 32 */
    assert_int_equal(aos_secret_box_open(&b, f->dir, "AAECAwQFBgcICQoLDA0ODw==", &err), AOS_EINVAL);
    assert_null(b);
    assert_null(strstr(err.msg, "AAEC"));
    assert_int_equal(aos_secret_box_open(&b, f->dir, "not base64 at all!", &err), AOS_EINVAL);
    assert_int_equal(aos_secret_box_open(&b, NULL, NULL, &err), AOS_EINVAL);

    /* A key file with junk is an error, not silently replaced. */
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", f->dir, AOS_SECRET_KEY_FILE);
    FILE *fp = fopen(path, "w");
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(aos_secret_box_open(&b, f->dir, NULL, &err), AOS_EINVAL);
    assert_non_null(strstr(err.msg, AOS_SECRET_KEY_FILE));
    assert_int_equal(aos_secret_box_open(&b, "/nonexistent/aos", NULL, &err), AOS_EIO);
}

static void test_token_format(void **state)
{
    (void)state;
    char *t1 = aos_secret_token_new();
    char *t2 = aos_secret_token_new();
    assert_non_null(t1);
    assert_non_null(t2);
    assert_int_equal(strlen(t1), AOS_SECRET_TOKEN_LEN);
    assert_memory_equal(t1, "aos_", 4);
    for (const char *p = t1 + 4; *p; p++)
        assert_true(isalnum((unsigned char)*p) || *p == '-' || *p == '_');
    assert_string_not_equal(t1, t2);

    char h1[65], h1again[65], h2[65];
    aos_secret_token_hash(t1, h1);
    aos_secret_token_hash(t1, h1again);
    aos_secret_token_hash(t2, h2);
    assert_int_equal(strlen(h1), 64);
    assert_string_equal(h1, h1again);
    assert_string_not_equal(h1, h2);
    free(t1);
    free(t2);
}

static void test_token_hash_known_value(void **state)
{
    (void)state;
    char h[65];
    /* BLAKE2b-256, unkeyed: python3 -c "hashlib.blake2b(b'aos_test', digest_size=32)" */
    aos_secret_token_hash("aos_test", h);
    assert_string_equal(h, "192964f627f020c89ff8e1910a276564b62789ca2a79e7723f61c0ee5b6c4790");
    aos_secret_token_hash("", h);
    assert_string_equal(h, "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");
}

static void test_equal(void **state)
{
    (void)state;
    assert_true(aos_secret_equal("abc", "abc"));
    assert_true(aos_secret_equal("", ""));
    assert_false(aos_secret_equal("abc", "abd"));
    assert_false(aos_secret_equal("abc", "abcd"));
    assert_false(aos_secret_equal("abc", NULL));
    assert_false(aos_secret_equal(NULL, NULL));
}

/* "v2" values are bound to their associated data: the same data opens,
 * another (a value copied into another row, another scope) does not, nor
 * does the v1 opener, nor a v1 value through the v2 opener. */
static void test_ad_bound(void **state)
{
    fixture_t *f = *state;
    aos_secret_box_t *b = open_box(f->dir, NULL);
    const char ad1[] = "name=API_KEY\0scope=system";
    const char ad2[] = "name=OTHER\0scope=system";
    const char ad3[] = "name=API_KEY\0scope=project:p1";
    char *s = aos_secret_seal_ad(b, "sk-value-123", 12, ad1, sizeof(ad1));
    assert_non_null(s);
    assert_memory_equal(s, "v2:", 3);
    size_t len = 0;
    char *p = aos_secret_open_ad(b, s, ad1, sizeof(ad1), &len);
    assert_non_null(p);
    assert_int_equal(len, 12);
    assert_string_equal(p, "sk-value-123");
    aos_secret_wipe(p);
    assert_null(aos_secret_open_ad(b, s, ad2, sizeof(ad2), &len));
    assert_int_equal(len, 0);
    assert_null(aos_secret_open_ad(b, s, ad3, sizeof(ad3), NULL));
    assert_null(aos_secret_open_ad(b, s, ad1, sizeof(ad1) - 1, NULL)); /* a prefix of it */
    assert_null(aos_secret_open_ad(b, s, NULL, 0, NULL));
    assert_null(aos_secret_open(b, s, NULL));
    char *v1 = aos_secret_seal(b, "x", 1);
    assert_null(aos_secret_open_ad(b, v1, NULL, 0, NULL));
    /* the v1 body under a v2 prefix does not open either */
    v1[1] = '2';
    assert_null(aos_secret_open_ad(b, v1, NULL, 0, NULL));
    free(v1);
    /* empty associated data is allowed, and differs from any other */
    char *e = aos_secret_seal_ad(b, "y", 1, NULL, 0);
    p = aos_secret_open_ad(b, e, "", 0, NULL);
    assert_non_null(p);
    aos_secret_wipe(p);
    assert_null(aos_secret_open_ad(b, e, ad1, sizeof(ad1), NULL));
    free(e);
    free(s);
    aos_secret_box_free(b);
}

/* Rotation: values resealed into a new box open there and not with the
 * old key alone; after a swap the box seals with the new key and still
 * opens what the old one sealed; a saved key file opens the new values. */
static void test_rotation(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    aos_secret_box_t *b = open_box(f->dir, NULL);
    const char ad[] = "n\0system";
    char *v1 = aos_secret_seal(b, "registry-token", 14);
    char *v2 = aos_secret_seal_ad(b, "runtime-secret", 14, ad, sizeof(ad));
    aos_secret_box_t *nb = NULL;
    assert_int_equal(aos_secret_box_new(&nb, &err), 0);
    char *r1 = aos_secret_reseal(b, nb, v1, NULL, 0);
    char *r2 = aos_secret_reseal(b, nb, v2, ad, sizeof(ad));
    assert_non_null(r1);
    assert_non_null(r2);
    assert_memory_equal(r1, "v1:", 3);
    assert_memory_equal(r2, "v2:", 3);
    assert_null(aos_secret_open(b, r1, NULL));
    assert_null(aos_secret_open_ad(b, r2, ad, sizeof(ad), NULL));
    assert_null(aos_secret_reseal(b, nb, v2, "x", 1)); /* wrong ad: not resealed */
    char path[128];
    snprintf(path, sizeof(path), "%s/next.key", f->dir);
    assert_int_equal(aos_secret_box_save(nb, path, &err), 0);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    aos_secret_box_swap(b, nb); /* frees nb */
    char *p = aos_secret_open_ad(b, r2, ad, sizeof(ad), NULL);
    assert_string_equal(p, "runtime-secret");
    aos_secret_wipe(p);
    p = aos_secret_open(b, v1, NULL); /* the retired key still opens */
    assert_string_equal(p, "registry-token");
    aos_secret_wipe(p);
    /* a box from the saved file opens the new values, not the old ones */
    FILE *fp = fopen(path, "r");
    char key[128] = "";
    assert_non_null(fgets(key, sizeof(key), fp));
    fclose(fp);
    aos_secret_box_t *c = open_box(f->dir, key);
    p = aos_secret_open(c, r1, NULL);
    assert_string_equal(p, "registry-token");
    aos_secret_wipe(p);
    assert_null(aos_secret_open(c, v1, NULL));
    char *s = aos_secret_seal(b, "z", 1); /* sealed with the new key */
    p = aos_secret_open(c, s, NULL);
    assert_string_equal(p, "z");
    aos_secret_wipe(p);
    free(s);
    aos_secret_box_free(c);
    free(v1);
    free(v2);
    free(r1);
    free(r2);
    aos_secret_box_free(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_seal_open_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tamper_detected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_key_file_created_private_and_reused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_key_cannot_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_keys_rejected, setup, teardown),
        cmocka_unit_test(test_token_format),
        cmocka_unit_test(test_token_hash_known_value),
        cmocka_unit_test(test_equal),
        cmocka_unit_test_setup_teardown(test_ad_bound, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
