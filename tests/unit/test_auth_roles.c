/* test_auth_roles.c - custom roles (issue 16): how two resource patterns
 * meet (a custom role's grant narrowed by the grant's resource), which
 * names a custom role may have, the store's rbac_roles rows (conflicts,
 * updates, a delete refused while a grant names the role), and what a
 * token granted a custom role may do - before and after the role changes,
 * narrowed, and whether a caller may give it (an Admin may not give a
 * role with Owner rights). The routes are exercised end to end
 * (tests/e2e/roles.test.mjs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/internal.h"
#include "store/store.h"

typedef struct {
    char dir[64];
    aos_store_t *st;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char url[128];
    aos_err_t err = {0, ""};
    if (!f || aos_test_mkdtemp(f->dir, sizeof(f->dir), "roles"))
        return -1;
    snprintf(url, sizeof(url), "sqlite:%s/aos.db", f->dir);
    if (aos_store_open(&f->st, NULL, url, &err)) {
        fprintf(stderr, "setup: %s\n", aos_err_msg(&err));
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

static void test_meet(void **state)
{
    (void)state;
    static const char *const cases[][3] = {
        /* a, b, the meet ("" for none) */
        {"system", "tool:files__*", "tool:files__*"},
        {"project:p1", "system", "project:p1"},
        {"system", "system", "system"},
        {"tool:files__*", "tool:files__read*", "tool:files__read*"},
        {"tool:files__read*", "tool:files__*", "tool:files__read*"},
        {"tool:files__*", "tool:files__read_file", "tool:files__read_file"},
        {"tool:files__read_file", "tool:*", "tool:files__read_file"},
        {"tool:files__*", "tool:files__*", "tool:files__*"},
        {"tool:files__*", "tool:csv__*", ""},
        {"tool:files__a", "tool:files__b", ""},
        {"tool:files__a", "tool:files__a", "tool:files__a"},
        {"tool:files__ab", "tool:files__a", ""}, /* an exact name covers no other name */
        {"project:p1", "tool:*", ""},            /* other kinds share no name */
        {"project:p1", "project:p1*", "project:p1"},
        {"project:p10", "project:p1", ""},
        {"bogus:x", "system", ""},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *m = aos_auth_resource_meet(cases[i][0], cases[i][1]);
        if (strcmp(m ? m : "", cases[i][2]))
            fail_msg("meet(%s, %s) = %s, not %s", cases[i][0], cases[i][1], m ? m : "(none)",
                     cases[i][2]);
    }
}

static void test_role_names(void **state)
{
    (void)state;
    aos_err_t err = {0, ""};
    const char *good[] = {"data-analyst", "a", "ops.v2", "x_y-z.0", NULL};
    for (int i = 0; good[i]; i++)
        if (aos_auth_role_name_check(good[i], &err))
            fail_msg("'%s' refused: %s", good[i], aos_err_msg(&err));
    const char *bad[] = {"",   "Viewer", "viewer", "owner", "none", "Data", "1abc",
                         "-x", "a b",    "a/b",    "a:b",   "a*",   NULL};
    for (int i = 0; bad[i]; i++)
        assert_int_equal(aos_auth_role_name_check(bad[i], &err), AOS_EINVAL);
    assert_non_null(
        strstr((aos_auth_role_name_check("admin", &err), aos_err_msg(&err)), "built-in"));
    char longname[AOS_AUTH_ROLE_NAME_MAX + 2];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(aos_auth_role_name_check(longname, &err), AOS_EINVAL);
    longname[AOS_AUTH_ROLE_NAME_MAX] = '\0';
    assert_int_equal(aos_auth_role_name_check(longname, &err), 0);
}

static void test_store_roles(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0, ""};
    aos_store_t *st = f->st;
    const char *g1 = "[{\"role\":\"operator\",\"resource\":\"tool:files__*\"}]";
    assert_int_equal(aos_store_role_create(st, "r1", "first", g1, "token:owner", &err), 0);
    assert_int_equal(aos_store_role_create(st, "r1", NULL, g1, NULL, &err), AOS_ECONFLICT);
    assert_int_equal(aos_store_role_create(st, "r2", NULL, "", NULL, &err), AOS_EINVAL);
    json_t *r = NULL;
    assert_int_equal(aos_store_role_get(st, "r1", &r, &err), 0);
    assert_string_equal(json_string_value(json_object_get(r, "description")), "first");
    assert_string_equal(json_string_value(json_object_get(r, "created_by")), "token:owner");
    assert_string_equal(json_string_value(json_object_get(
                            json_array_get(json_object_get(r, "grants"), 0), "resource")),
                        "tool:files__*");
    json_decref(r);
    /* an update keeps what it is not given */
    assert_int_equal(aos_store_role_update(st, "r1", NULL,
                                           "[{\"role\":\"viewer\",\"resource\":\"project:p1\"}]",
                                           &err),
                     0);
    assert_int_equal(aos_store_role_get(st, "r1", &r, &err), 0);
    assert_string_equal(json_string_value(json_object_get(r, "description")), "first");
    assert_string_equal(
        json_string_value(json_object_get(json_array_get(json_object_get(r, "grants"), 0), "role")),
        "viewer");
    json_decref(r);
    assert_int_equal(aos_store_role_update(st, "r1", "second", NULL, &err), 0);
    assert_int_equal(aos_store_role_update(st, "nope", "x", NULL, &err), AOS_ENOTFOUND);
    assert_int_equal(aos_store_role_get(st, "nope", &r, &err), AOS_ENOTFOUND);
    /* held by a grant: the delete is refused and changes nothing */
    assert_int_equal(aos_store_grant_put(st, "grt_1", "token:t", "r1", "system", NULL, &err), 0);
    int64_t n = 0;
    assert_int_equal(aos_store_role_grants(st, "r1", &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(aos_store_role_delete(st, "r1", &err), AOS_ECONFLICT);
    assert_non_null(strstr(aos_err_msg(&err), "held by 1 grant"));
    json_t *list = NULL;
    assert_int_equal(aos_store_role_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(list, 0), "description")),
                        "second");
    json_decref(list);
    assert_int_equal(aos_store_grant_delete(st, "grt_1", &err), 0);
    assert_int_equal(aos_store_role_delete(st, "r1", &err), 0);
    assert_int_equal(aos_store_role_delete(st, "r1", &err), AOS_ENOTFOUND);
    assert_int_equal(aos_store_role_list(st, &list, &err), 0);
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void put_token(aos_store_t *st, const char *id, const char *role)
{
    aos_err_t err = {0, ""};
    char hash[80];
    snprintf(hash, sizeof(hash), "hash-of-%s", id);
    assert_int_equal(aos_store_token_create(st, id, id, role, hash, "aos_xxxx", "test", NULL, &err),
                     0);
}

static void reload(aos_auth_t *a, aos_store_t *st)
{
    aos_err_t err = {0, ""};
    auth_rows_t rows;
    assert_int_equal(auth_load_rows(st, &rows, &err), 0);
    auth_apply_rows(a, &rows);
}

static void test_custom_role_grants(void **state)
{
    fixture_t *f = *state;
    aos_store_t *st = f->st;
    aos_err_t err = {0, ""};
    assert_int_equal(
        aos_store_role_create(st, "data-analyst", NULL,
                              "[{\"role\":\"operator\",\"resource\":\"tool:files__*\"},"
                              "{\"role\":\"operator\",\"resource\":\"tool:csv__*\"},"
                              "{\"role\":\"viewer\",\"resource\":\"project:p1\"}]",
                              NULL, &err),
        0);
    put_token(st, "tok_a", "none");
    put_token(st, "tok_b", "none");
    put_token(st, "tok_c", "none");
    assert_int_equal(
        aos_store_grant_put(st, "g1", "token:tok_a", "data-analyst", "system", NULL, &err), 0);
    /* narrowed: the role's grants that meet tool:files__read* */
    assert_int_equal(aos_store_grant_put(st, "g2", "token:tok_b", "data-analyst",
                                         "tool:files__read*", NULL, &err),
                     0);
    /* a grant naming no role gives nothing */
    assert_int_equal(aos_store_grant_put(st, "g3", "token:tok_c", "ghost", "system", NULL, &err),
                     0);
    aos_auth_t *a = NULL;
    assert_int_equal(aos_auth_new(&a, st, 0, AOS_ROLE_VIEWER, &err), 0);
    const aos_principal_t *pa = aos_auth_find(a, "tok_a"), *pb = aos_auth_find(a, "tok_b"),
                          *pc = aos_auth_find(a, "tok_c");
    assert_non_null(pa);
    assert_non_null(pb);
    assert_non_null(pc);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_OPERATE, "tool:files__read_file"), 0);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_OPERATE, "tool:csv__clean"), 0);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_OPERATE, "tool:shell__run"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_ADMIN, "tool:files__read_file"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_READ, "project:p1"), 0);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_OPERATE, "project:p1"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_READ, "project:p2"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_READ, "system"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check_task(pa, AOS_PERM_READ, "t1", "p1"), 0);
    assert_int_equal(aos_auth_check(pb, AOS_PERM_OPERATE, "tool:files__read_file"), 0);
    assert_int_equal(aos_auth_check(pb, AOS_PERM_OPERATE, "tool:files__write_file"),
                     AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pb, AOS_PERM_OPERATE, "tool:csv__clean"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pb, AOS_PERM_READ, "project:p1"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pc, AOS_PERM_ANY, "system"), AOS_EFORBIDDEN);
    /* the rights as /auth/me lists them */
    json_t *rights = auth_rights_of(a, "token:tok_b");
    assert_int_equal(json_array_size(rights), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(rights, 0), "resource")),
                        "tool:files__read*");
    json_decref(rights);

    /* the role changes: existing grants follow at once, same principal */
    assert_int_equal(
        aos_store_role_update(st, "data-analyst", NULL,
                              "[{\"role\":\"operator\",\"resource\":\"tool:files__*\"},"
                              "{\"role\":\"operator\",\"resource\":\"project:p2\"}]",
                              &err),
        0);
    reload(a, st);
    assert_ptr_equal(aos_auth_find(a, "tok_a"), pa);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_OPERATE, "tool:csv__clean"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_READ, "project:p1"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_OPERATE, "project:p2"), 0);
    assert_int_equal(aos_auth_check(pa, AOS_PERM_OPERATE, "tool:files__x"), 0);
    assert_int_equal(aos_auth_check(pb, AOS_PERM_OPERATE, "tool:files__read_file"), 0);

    /* who may give it: an Admin holds everything but Owner rights */
    aos_principal_t admin = {.id = "adm", .role = AOS_ROLE_ADMIN};
    assert_int_equal(auth_may_give(a, &admin, "data-analyst", "system", "g", &err), 0);
    assert_int_equal(aos_store_role_create(st, "root-ish", NULL,
                                           "[{\"role\":\"owner\",\"resource\":\"secret:*\"},"
                                           "{\"role\":\"viewer\",\"resource\":\"system\"}]",
                                           NULL, &err),
                     0);
    reload(a, st);
    assert_int_equal(auth_may_give(a, &admin, "root-ish", "system", "g", &err), AOS_EFORBIDDEN);
    assert_non_null(strstr(aos_err_msg(&err), "gives 'owner' on 'secret:*'"));
    /* narrowed away from its Owner part, it is the Admin's to give */
    assert_int_equal(auth_may_give(a, &admin, "root-ish", "project:p9", "g", &err), 0);
    assert_int_equal(auth_may_give(a, &admin, "ghost", "system", "g", &err), AOS_EINVAL);
    aos_principal_t narrow = {.id = "n"};
    assert_int_equal(aos_auth_principal_grant(&narrow, AOS_ROLE_OPERATOR, "tool:files__*"), 0);
    assert_int_equal(auth_may_give(a, &narrow, "data-analyst", "tool:files__a*", "g", &err), 0);
    assert_int_equal(auth_may_give(a, &narrow, "data-analyst", "system", "g", &err),
                     AOS_EFORBIDDEN);
    aos_auth_principal_release(&narrow);
    aos_auth_free(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_meet),
        cmocka_unit_test(test_role_names),
        cmocka_unit_test_setup_teardown(test_store_roles, setup, teardown),
        cmocka_unit_test_setup_teardown(test_custom_role_grants, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
