/* test_map.c - the hash map: string and u64 keys, replace, delete, growth
 * to many thousands of keys, iteration that visits each entry once, and
 * deleting the current key while iterating (run under ASan, a use after free
 * there would abort the test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "map/map.h"

#define MANY 50000

/* Values are small integers disguised as pointers; 0 is never used so that
 * a NULL from get always means "absent". */
#define V(i) ((void *)(uintptr_t)(i))
#define I(p) ((size_t)(uintptr_t)(p))

static void key_of(size_t i, char *out, size_t n)
{
    snprintf(out, n, "key-%zu", i);
}

/* Spreads integers over the whole 64-bit range, high bits included. */
static uint64_t u64_key(size_t i)
{
    return (uint64_t)i * 0x9e3779b97f4a7c15ULL;
}

static void test_empty_map(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    assert_int_equal(aos_map_count(&m), 0);
    assert_null(aos_map_get(&m, "x"));
    assert_null(aos_map_get(&m, ""));
    assert_null(aos_map_del(&m, "x"));
    assert_null(aos_map_get_u64(&m, 0));
    assert_null(aos_map_del_u64(&m, 7));
    assert_int_equal(aos_map_count(&m), 0);

    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *k = "untouched";
    void *v = V(1);
    assert_int_equal(aos_map_iter_next(&m, &it, &k, NULL, &v), 0);
    aos_map_release(&m);
    aos_map_release(&m); /* twice is harmless */
    assert_int_equal(aos_map_count(&m), 0);
}

static void test_put_get_string_keys(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    assert_int_equal(aos_map_put(&m, "alpha", V(1)), 0);
    assert_int_equal(aos_map_put(&m, "beta", V(2)), 0);
    assert_int_equal(aos_map_put(&m, "", V(3)), 0);
    assert_int_equal(aos_map_put(&m, "alpha2", V(4)), 0);
    assert_int_equal(aos_map_count(&m), 4);
    assert_ptr_equal(aos_map_get(&m, "alpha"), V(1));
    assert_ptr_equal(aos_map_get(&m, "beta"), V(2));
    assert_ptr_equal(aos_map_get(&m, ""), V(3));
    assert_ptr_equal(aos_map_get(&m, "alpha2"), V(4));
    /* Prefixes and case variants are other keys. */
    assert_null(aos_map_get(&m, "alph"));
    assert_null(aos_map_get(&m, "Alpha"));
    assert_null(aos_map_get(&m, "alpha "));
    aos_map_release(&m);
}

static void test_string_keys_are_copied(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    char key[16];
    snprintf(key, sizeof(key), "mutable");
    assert_int_equal(aos_map_put(&m, key, V(9)), 0);
    /* The caller's buffer changes; the map's key must not. */
    snprintf(key, sizeof(key), "changed");
    assert_null(aos_map_get(&m, "changed"));
    assert_ptr_equal(aos_map_get(&m, "mutable"), V(9));

    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *k = NULL;
    assert_int_equal(aos_map_iter_next(&m, &it, &k, NULL, NULL), 1);
    assert_non_null(k);
    assert_ptr_not_equal(k, key);
    assert_string_equal(k, "mutable");
    aos_map_release(&m);
}

static void test_put_replaces_value(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    assert_int_equal(aos_map_put(&m, "k", V(1)), 0);
    assert_int_equal(aos_map_put(&m, "k", V(2)), 0);
    assert_int_equal(aos_map_count(&m), 1);
    assert_ptr_equal(aos_map_get(&m, "k"), V(2));

    assert_int_equal(aos_map_put_u64(&m, 5, V(1)), 0);
    assert_int_equal(aos_map_put_u64(&m, 5, V(3)), 0);
    assert_int_equal(aos_map_count(&m), 2);
    assert_ptr_equal(aos_map_get_u64(&m, 5), V(3));

    /* Replacing every key of a full map does not change the count. */
    aos_map_t n;
    aos_map_init(&n);
    char key[32];
    for (size_t i = 1; i <= 100; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(aos_map_put(&n, key, V(i)), 0);
    }
    for (size_t i = 1; i <= 100; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(aos_map_put(&n, key, V(i + 1000)), 0);
    }
    assert_int_equal(aos_map_count(&n), 100);
    for (size_t i = 1; i <= 100; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(I(aos_map_get(&n, key)), i + 1000);
    }
    aos_map_release(&n);
    aos_map_release(&m);
}

static void test_delete_string_keys(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    assert_int_equal(aos_map_put(&m, "a", V(1)), 0);
    assert_int_equal(aos_map_put(&m, "b", V(2)), 0);
    assert_int_equal(aos_map_put(&m, "c", V(3)), 0);

    assert_ptr_equal(aos_map_del(&m, "b"), V(2));
    assert_int_equal(aos_map_count(&m), 2);
    assert_null(aos_map_get(&m, "b"));
    assert_ptr_equal(aos_map_get(&m, "a"), V(1));
    assert_ptr_equal(aos_map_get(&m, "c"), V(3));

    /* Deleting an absent key, or twice, changes nothing. */
    assert_null(aos_map_del(&m, "b"));
    assert_null(aos_map_del(&m, "zzz"));
    assert_int_equal(aos_map_count(&m), 2);

    /* A deleted key can be added again. */
    assert_int_equal(aos_map_put(&m, "b", V(20)), 0);
    assert_ptr_equal(aos_map_get(&m, "b"), V(20));
    assert_int_equal(aos_map_count(&m), 3);

    assert_ptr_equal(aos_map_del(&m, "a"), V(1));
    assert_ptr_equal(aos_map_del(&m, "b"), V(20));
    assert_ptr_equal(aos_map_del(&m, "c"), V(3));
    assert_int_equal(aos_map_count(&m), 0);
    aos_map_release(&m);
}

static void test_u64_keys(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    const uint64_t keys[] = {0, 1, 2, 16, 32, 1ULL << 32, 1ULL << 63, UINT64_MAX, UINT64_MAX - 1};
    const size_t n = sizeof(keys) / sizeof(keys[0]);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(aos_map_put_u64(&m, keys[i], V(i + 1)), 0);
    assert_int_equal(aos_map_count(&m), n);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(I(aos_map_get_u64(&m, keys[i])), i + 1);
    assert_null(aos_map_get_u64(&m, 3));
    assert_null(aos_map_get_u64(&m, (1ULL << 32) + 1));

    assert_ptr_equal(aos_map_del_u64(&m, 0), V(1));
    assert_null(aos_map_get_u64(&m, 0));
    assert_null(aos_map_del_u64(&m, 0));
    assert_ptr_equal(aos_map_del_u64(&m, UINT64_MAX), V(8));
    assert_int_equal(aos_map_count(&m), n - 2);
    assert_int_equal(I(aos_map_get_u64(&m, UINT64_MAX - 1)), 9);
    aos_map_release(&m);
}

static void test_growth_many_string_keys(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    char key[32];
    for (size_t i = 1; i <= MANY; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(aos_map_put(&m, key, V(i)), 0);
        assert_int_equal(aos_map_count(&m), i);
    }
    /* Load stays at most 1 and the bucket count a power of two. */
    assert_true(m.nbuckets >= MANY);
    assert_int_equal(m.nbuckets & (m.nbuckets - 1), 0);
    for (size_t i = 1; i <= MANY; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(I(aos_map_get(&m, key)), i);
    }
    key_of(MANY + 1, key, sizeof(key));
    assert_null(aos_map_get(&m, key));

    /* Delete the odd keys; the even ones survive. */
    for (size_t i = 1; i <= MANY; i += 2) {
        key_of(i, key, sizeof(key));
        assert_int_equal(I(aos_map_del(&m, key)), i);
    }
    assert_int_equal(aos_map_count(&m), MANY / 2);
    for (size_t i = 1; i <= MANY; i++) {
        key_of(i, key, sizeof(key));
        if (i % 2)
            assert_null(aos_map_get(&m, key));
        else
            assert_int_equal(I(aos_map_get(&m, key)), i);
    }
    aos_map_release(&m);
    assert_int_equal(aos_map_count(&m), 0);
    assert_null(m.buckets);
}

static void test_growth_many_u64_keys(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    /* Sequential keys and keys that differ only in high bits. */
    for (size_t i = 1; i <= MANY; i++) {
        assert_int_equal(aos_map_put_u64(&m, i, V(i)), 0);
        assert_int_equal(aos_map_put_u64(&m, (uint64_t)i << 40, V(i + MANY)), 0);
    }
    assert_int_equal(aos_map_count(&m), 2 * MANY);
    assert_true(m.nbuckets >= 2 * MANY);
    for (size_t i = 1; i <= MANY; i++) {
        assert_int_equal(I(aos_map_get_u64(&m, i)), i);
        assert_int_equal(I(aos_map_get_u64(&m, (uint64_t)i << 40)), i + MANY);
    }
    assert_null(aos_map_get_u64(&m, 0));
    assert_null(aos_map_get_u64(&m, MANY + 1));
    aos_map_release(&m);
}

static void test_iteration_visits_each_string_key_once(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    const size_t n = 5000;
    char key[32];
    for (size_t i = 1; i <= n; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(aos_map_put(&m, key, V(i)), 0);
    }
    unsigned char *seen = calloc(n + 1, 1);
    assert_non_null(seen);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *k;
    uint64_t ik;
    void *v;
    size_t visits = 0;
    while (aos_map_iter_next(&m, &it, &k, &ik, &v)) {
        size_t i = I(v);
        assert_in_range(i, 1, n);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        key_of(i, key, sizeof(key));
        assert_non_null(k);
        assert_string_equal(k, key); /* the key belongs to the value */
        visits++;
    }
    assert_int_equal(visits, n);
    /* The end is sticky. */
    assert_int_equal(aos_map_iter_next(&m, &it, &k, &ik, &v), 0);
    free(seen);
    aos_map_release(&m);
}

static void test_iteration_visits_each_u64_key_once(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    const size_t n = 5000;
    for (size_t i = 1; i <= n; i++)
        assert_int_equal(aos_map_put_u64(&m, u64_key(i), V(i)), 0);
    unsigned char *seen = calloc(n + 1, 1);
    assert_non_null(seen);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *k;
    uint64_t ik;
    void *v;
    size_t visits = 0;
    while (aos_map_iter_next(&m, &it, &k, &ik, &v)) {
        size_t i = I(v);
        assert_in_range(i, 1, n);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        assert_null(k); /* integer maps have no string key */
        assert_true(ik == u64_key(i));
        visits++;
    }
    assert_int_equal(visits, n);
    free(seen);
    aos_map_release(&m);
}

static void test_iteration_with_null_outputs(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    for (size_t i = 1; i <= 40; i++)
        assert_int_equal(aos_map_put_u64(&m, i, V(i)), 0);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    size_t visits = 0;
    while (aos_map_iter_next(&m, &it, NULL, NULL, NULL))
        visits++;
    assert_int_equal(visits, 40);
    aos_map_release(&m);
}

static void test_delete_current_key_during_iteration(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    const size_t n = 3000;
    char key[32];
    for (size_t i = 1; i <= n; i++) {
        key_of(i, key, sizeof(key));
        assert_int_equal(aos_map_put(&m, key, V(i)), 0);
    }
    unsigned char *seen = calloc(n + 1, 1);
    assert_non_null(seen);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    const char *k;
    void *v;
    size_t visits = 0;
    while (aos_map_iter_next(&m, &it, &k, NULL, &v)) {
        size_t i = I(v);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        visits++;
        /* k points into the entry being freed: copy it before deleting. */
        snprintf(key, sizeof(key), "%s", k);
        assert_ptr_equal(aos_map_del(&m, key), v);
    }
    assert_int_equal(visits, n);
    assert_int_equal(aos_map_count(&m), 0);
    for (size_t i = 1; i <= n; i++)
        assert_int_equal(seen[i], 1);
    free(seen);
    aos_map_release(&m);
}

static void test_delete_some_keys_during_iteration(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    const size_t n = 3000;
    for (size_t i = 1; i <= n; i++)
        assert_int_equal(aos_map_put_u64(&m, u64_key(i), V(i)), 0);
    unsigned char *seen = calloc(n + 1, 1);
    assert_non_null(seen);
    aos_map_iter_t it;
    aos_map_iter_init(&it);
    uint64_t ik;
    void *v;
    size_t visits = 0;
    while (aos_map_iter_next(&m, &it, NULL, &ik, &v)) {
        size_t i = I(v);
        assert_int_equal(seen[i], 0);
        seen[i] = 1;
        visits++;
        if (i % 3 == 0)
            assert_ptr_equal(aos_map_del_u64(&m, ik), v);
    }
    assert_int_equal(visits, n);
    assert_int_equal(aos_map_count(&m), n - n / 3);
    for (size_t i = 1; i <= n; i++) {
        if (i % 3 == 0)
            assert_null(aos_map_get_u64(&m, u64_key(i)));
        else
            assert_int_equal(I(aos_map_get_u64(&m, u64_key(i))), i);
    }
    free(seen);
    aos_map_release(&m);
}

static void test_release_then_reuse(void **state)
{
    (void)state;
    aos_map_t m;
    aos_map_init(&m);
    assert_int_equal(aos_map_put(&m, "x", V(1)), 0);
    aos_map_release(&m);
    assert_int_equal(aos_map_count(&m), 0);
    assert_null(aos_map_get(&m, "x"));
    assert_int_equal(aos_map_put(&m, "y", V(2)), 0);
    assert_ptr_equal(aos_map_get(&m, "y"), V(2));
    assert_int_equal(aos_map_count(&m), 1);
    aos_map_release(&m);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_empty_map),
        cmocka_unit_test(test_put_get_string_keys),
        cmocka_unit_test(test_string_keys_are_copied),
        cmocka_unit_test(test_put_replaces_value),
        cmocka_unit_test(test_delete_string_keys),
        cmocka_unit_test(test_u64_keys),
        cmocka_unit_test(test_growth_many_string_keys),
        cmocka_unit_test(test_growth_many_u64_keys),
        cmocka_unit_test(test_iteration_visits_each_string_key_once),
        cmocka_unit_test(test_iteration_visits_each_u64_key_once),
        cmocka_unit_test(test_iteration_with_null_outputs),
        cmocka_unit_test(test_delete_current_key_during_iteration),
        cmocka_unit_test(test_delete_some_keys_during_iteration),
        cmocka_unit_test(test_release_then_reuse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
