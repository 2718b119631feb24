/* test_store_users.c - the store's users and browser sessions (migration
 * 0013): a unique lowercase name, updates of some fields only, a TOTP step
 * recorded once, deleting a user with its grants and sessions, sessions
 * listed while open and unexpired, ended one or all at once, purged. The
 * cascade is checked on the file with libsqlite3 directly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "rawsql.h"
#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"

typedef struct {
    char dir[64];
    char path[96];
    char url[128];
    aos_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f || aos_test_mkdtemp(f->dir, sizeof(f->dir), "store_users")) {
        free(f);
        return -1;
    }
    snprintf(f->path, sizeof(f->path), "%s/aos.db", f->dir);
    snprintf(f->url, sizeof(f->url), "sqlite:%s", f->path);
    aos_err_t err = {0};
    if (aos_store_open(&f->st, NULL, f->url, &err)) {
        aos_test_rmdir(f->dir);
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_store_close(f->st);
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static const char *str(const json_t *row, const char *k)
{
    return json_string_value(json_object_get(row, k));
}

static void test_users_create_update(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    assert_int_equal(
        aos_store_user_create(f->st, "u1", "alice", "viewer", "$argon2id$x", "token:owner", &err),
        0);
    assert_int_equal(
        aos_store_user_create(f->st, "u2", "alice", "viewer", "$argon2id$y", NULL, &err),
        AOS_ECONFLICT);
    assert_int_equal(aos_store_user_create(f->st, "u1", "bob", "viewer", NULL, NULL, &err),
                     AOS_ECONFLICT);
    assert_int_equal(aos_store_user_create(f->st, "u3", "", "viewer", NULL, NULL, &err),
                     AOS_EINVAL);
    json_t *list = NULL;
    assert_int_equal(aos_store_user_list(f->st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    json_t *u = json_array_get(list, 0);
    assert_string_equal(str(u, "name"), "alice");
    assert_string_equal(str(u, "password_hash"), "$argon2id$x");
    assert_string_equal(str(u, "created_by"), "token:owner");
    assert_false(json_is_true(json_object_get(u, "disabled")));
    assert_non_null(str(u, "password_changed_at"));
    json_decref(list);

    /* only what is given changes */
    assert_int_equal(aos_store_user_update(f->st, "u1", NULL, "admin", 1, NULL, &err), 0);
    assert_int_equal(aos_store_user_update(f->st, "nope", "x", NULL, -1, NULL, &err),
                     AOS_ENOTFOUND);
    assert_int_equal(aos_store_user_list(f->st, &list, &err), 0);
    u = json_array_get(list, 0);
    assert_string_equal(str(u, "name"), "alice");
    assert_string_equal(str(u, "role"), "admin");
    assert_string_equal(str(u, "password_hash"), "$argon2id$x");
    assert_true(json_is_true(json_object_get(u, "disabled")));
    json_decref(list);
    assert_int_equal(aos_store_user_update(f->st, "u1", "alice2", NULL, 0, "$argon2id$z", &err), 0);
    assert_int_equal(aos_store_user_list(f->st, &list, &err), 0);
    u = json_array_get(list, 0);
    assert_string_equal(str(u, "name"), "alice2");
    assert_string_equal(str(u, "password_hash"), "$argon2id$z");
    assert_false(json_is_true(json_object_get(u, "disabled")));
    json_decref(list);
}

static void test_users_totp_step_once(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    assert_int_equal(aos_store_user_create(f->st, "u1", "t", "admin", "h", NULL, &err), 0);
    assert_int_equal(aos_store_user_totp(f->st, "u1", "v1:sealed", 1, 100, &err), 0);
    assert_int_equal(aos_store_user_totp_step(f->st, "u1", 100, &err), AOS_ECONFLICT);
    assert_int_equal(aos_store_user_totp_step(f->st, "u1", 99, &err), AOS_ECONFLICT);
    assert_int_equal(aos_store_user_totp_step(f->st, "u1", 101, &err), 0);
    assert_int_equal(aos_store_user_totp_step(f->st, "u1", 101, &err), AOS_ECONFLICT);
    json_t *list = NULL;
    assert_int_equal(aos_store_user_list(f->st, &list, &err), 0);
    json_t *u = json_array_get(list, 0);
    assert_int_equal(json_integer_value(json_object_get(u, "totp_last_step")), 101);
    assert_true(json_is_true(json_object_get(u, "totp_enabled")));
    assert_string_equal(str(u, "totp_secret"), "v1:sealed");
    json_decref(list);
    assert_int_equal(aos_store_user_totp(f->st, "u1", NULL, 0, 0, &err), 0);
    assert_int_equal(aos_store_user_totp(f->st, "nope", NULL, 0, 0, &err), AOS_ENOTFOUND);
}

static void test_sessions_and_delete_cascade(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0};
    assert_int_equal(aos_store_user_create(f->st, "u1", "a", "viewer", "h", NULL, &err), 0);
    assert_int_equal(aos_store_user_create(f->st, "u2", "b", "viewer", "h", NULL, &err), 0);
    assert_int_equal(aos_store_grant_put(f->st, "g1", "user:u1", "admin", "system", NULL, &err), 0);
    assert_int_equal(aos_store_grant_put(f->st, "g2", "user:u2", "admin", "system", NULL, &err), 0);
    const char *later = "2999-01-01T00:00:00.000Z", *past = "2000-01-01T00:00:00.000Z";
    assert_int_equal(aos_store_session_create(f->st, "s1", "u1", "h1", later, "127.0.0.1", &err),
                     0);
    assert_int_equal(aos_store_session_create(f->st, "s2", "u1", "h2", later, NULL, &err), 0);
    assert_int_equal(aos_store_session_create(f->st, "s3", "u2", "h3", later, NULL, &err), 0);
    assert_int_equal(aos_store_session_create(f->st, "s4", "u2", "h4", past, NULL, &err), 0);
    assert_int_equal(aos_store_session_create(f->st, "s5", "u2", "h3", later, NULL, &err),
                     AOS_ECONFLICT);
    json_t *list = NULL;
    assert_int_equal(aos_store_session_list(f->st, "2026-01-01T00:00:00.000Z", &list, &err), 0);
    assert_int_equal(json_array_size(list), 3); /* s4 expired */
    json_decref(list);
    /* one, then all of a user's */
    assert_int_equal(aos_store_session_end(f->st, "s1", NULL, &err), 0);
    assert_int_equal(aos_store_session_list(f->st, "2026-01-01T00:00:00.000Z", &list, &err), 0);
    assert_int_equal(json_array_size(list), 2);
    json_decref(list);
    assert_int_equal(aos_store_session_end(f->st, NULL, "u1", &err), 0);
    assert_int_equal(aos_store_session_touch(f->st, "s3", "2026-06-01T00:00:00.000Z", &err), 0);
    assert_int_equal(aos_store_session_list(f->st, "2026-01-01T00:00:00.000Z", &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(str(json_array_get(list, 0), "id"), "s3");
    assert_string_equal(str(json_array_get(list, 0), "last_seen_at"), "2026-06-01T00:00:00.000Z");
    json_decref(list);
    /* deleting u1 takes its grants and sessions, not u2's */
    assert_int_equal(aos_store_user_delete(f->st, "u1", &err), 0);
    assert_int_equal(aos_store_user_delete(f->st, "u1", &err), AOS_ENOTFOUND);
    assert_int_equal(
        aos_test_sql_int(f->path, "SELECT count(*) FROM rbac_grants WHERE principal = 'user:u1'"),
        0);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT count(*) FROM rbac_grants"), 1);
    assert_int_equal(
        aos_test_sql_int(f->path, "SELECT count(*) FROM auth_sessions WHERE user_id = 'u1'"), 0);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT count(*) FROM auth_sessions"), 2);
    /* purge: rows ended or expired before the date */
    assert_int_equal(aos_store_session_purge(f->st, "2026-01-01T00:00:00.000Z", &err), 0);
    assert_int_equal(aos_test_sql_int(f->path, "SELECT count(*) FROM auth_sessions"), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_users_create_update, setup, teardown),
        cmocka_unit_test_setup_teardown(test_users_totp_step_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sessions_and_delete_cascade, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
