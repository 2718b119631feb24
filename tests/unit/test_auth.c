/* test_auth.c - the scrape allow list of /metrics (issue 12, item 4):
 * which address ranges parse, which peer addresses they admit (IPv4,
 * IPv6, IPv4 reached over IPv6), and that a bad list changes nothing; and
 * the decisions of aos_auth_check (issue 16): roles on system, grants on
 * exact names and patterns, patterns covering patterns, deny by default,
 * and which resource patterns a grant may hold. The authorizer and the
 * routes are exercised end to end (tests/e2e/rbac.test.mjs). */
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
#include "store/store.h"

typedef struct {
    char dir[64];
    aos_store_t *st;
    aos_auth_t *auth;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    char url[128];
    aos_err_t err = {0, ""};
    if (!f || aos_test_mkdtemp(f->dir, sizeof(f->dir), "auth"))
        return -1;
    snprintf(url, sizeof(url), "sqlite:%s/aos.db", f->dir);
    if (aos_store_open(&f->st, NULL, url, &err) ||
        aos_auth_new(&f->auth, f->st, 0, AOS_ROLE_VIEWER, &err)) {
        fprintf(stderr, "setup: %s\n", aos_err_msg(&err));
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_auth_free(f->auth);
    aos_store_close(f->st);
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static void test_scrape_list_syntax(void **state)
{
    (void)state;
    static const char *const good[] = {
        "",         "127.0.0.1", "127.0.0.1/8", " 10.0.0.0/8 , ::1 ", "::1/128",
        "fd00::/8", "0.0.0.0/0", "::/0",        "10.1.2.3/32",        "::ffff:10.0.0.0/104",
    };
    static const char *const bad[] = {
        "127.0.0.1/33",   "::1/129",     "1.2.3",
        "localhost",      "127.0.0.1/",  "/8",
        "127.0.0.1/8x",   "10.0.0.0/-1", "10.0.0.0/0008",
        "127.0.0.1,nope", "1.2.3.4 5",   "::ffff:10.0.0.0/95",
    };
    aos_err_t err = {0, ""};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (aos_auth_scrape_list_check(good[i], &err))
            fail_msg("'%s' refused: %s", good[i], aos_err_msg(&err));
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (aos_auth_scrape_list_check(bad[i], &err) != AOS_EINVAL)
            fail_msg("'%s' taken", bad[i]);
        assert_non_null(strstr(aos_err_msg(&err), "is not an address or a range"));
    }
}

static void test_scrape_matches(void **state)
{
    fixture_t *f = *state;
    aos_err_t err = {0, ""};
    /* nothing is allowed until a list is set */
    assert_false(aos_auth_may_scrape(f->auth, "127.0.0.1"));
    assert_int_equal(
        aos_auth_allow_scrape(f->auth, "127.0.0.1/8,10.1.0.0/16,::1,fd00::/8,192.0.2.7", &err), 0);
    static const struct {
        const char *addr;
        int want;
    } cases[] = {
        {"127.0.0.1", 1},
        {"127.255.255.255", 1},
        {"128.0.0.1", 0},
        {"126.255.255.255", 0},
        {"10.1.0.0", 1},
        {"10.1.255.255", 1},
        {"10.2.0.0", 0},
        {"10.0.255.255", 0},
        {"192.0.2.7", 1},
        {"192.0.2.8", 0},
        {"::1", 1},
        {"::2", 0},
        {"fd12:3456::1", 1},
        {"fe80::1", 0},
        {"::ffff:127.0.0.1", 1}, /* IPv4 over an IPv6 socket */
        {"::ffff:11.0.0.1", 0},
        {"", 0},
        {"not an address", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        if (aos_auth_may_scrape(f->auth, cases[i].addr) != cases[i].want)
            fail_msg("%s: expected %d", cases[i].addr, cases[i].want);
    assert_false(aos_auth_may_scrape(f->auth, NULL));

    /* a bad list is refused and the old one stays */
    assert_int_equal(aos_auth_allow_scrape(f->auth, "10.0.0.0/8,bogus", &err), AOS_EINVAL);
    assert_true(aos_auth_may_scrape(f->auth, "127.0.0.1"));
    assert_false(aos_auth_may_scrape(f->auth, "10.9.0.1"));
    /* prefix lengths that are not a multiple of 8; everything; nothing */
    assert_int_equal(aos_auth_allow_scrape(f->auth, "172.16.0.0/12", &err), 0);
    assert_true(aos_auth_may_scrape(f->auth, "172.31.255.255"));
    assert_false(aos_auth_may_scrape(f->auth, "172.32.0.0"));
    assert_false(aos_auth_may_scrape(f->auth, "127.0.0.1"));
    assert_int_equal(aos_auth_allow_scrape(f->auth, "::ffff:10.0.0.0/104", &err), 0);
    assert_true(aos_auth_may_scrape(f->auth, "10.200.0.1"));
    assert_true(aos_auth_may_scrape(f->auth, "::ffff:10.200.0.1"));
    assert_false(aos_auth_may_scrape(f->auth, "11.0.0.1"));
    assert_int_equal(aos_auth_allow_scrape(f->auth, "0.0.0.0/0", &err), 0);
    assert_true(aos_auth_may_scrape(f->auth, "203.0.113.9"));
    assert_false(aos_auth_may_scrape(f->auth, "::1"));
    assert_int_equal(aos_auth_allow_scrape(f->auth, "", &err), 0);
    assert_false(aos_auth_may_scrape(f->auth, "203.0.113.9"));
}

static void test_check_roles(void **state)
{
    (void)state;
    aos_principal_t p = {.id = "t"};
    assert_int_equal(aos_auth_check(NULL, AOS_PERM_READ, "system"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(NULL, AOS_PERM_PUBLIC, "system"), 0);
    /* no role and no grant: nothing but public */
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "system"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_ANY, "system"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_MCP, "system"), AOS_EFORBIDDEN);
    p.role = AOS_ROLE_VIEWER;
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "system"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "task:abc"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev__echo"), AOS_EFORBIDDEN);
    p.role = AOS_ROLE_OPERATOR;
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev__echo"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:*"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_ADMIN, "system"), AOS_EFORBIDDEN);
    p.role = AOS_ROLE_ADMIN;
    assert_int_equal(aos_auth_check(&p, AOS_PERM_ADMIN, "system"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OWNER, "system"), AOS_EFORBIDDEN);
    p.role = AOS_ROLE_OWNER;
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OWNER, "secret:x"), 0);
    /* a malformed or unknown resource is denied below the role on system */
    p.role = AOS_ROLE_NONE;
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "nothing:x"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, NULL), AOS_EFORBIDDEN);
}

static void test_check_grants(void **state)
{
    (void)state;
    aos_principal_t p = {.id = "t"};
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_OPERATOR, "tool:ev__*"), 0);
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_VIEWER, "task:t1"), 0);
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_VIEWER, "project:p1"), 0);
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_OPERATOR, "project:p1"), 0);
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_NONE, "task:t2"), AOS_EINVAL);
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_VIEWER, "bogus:t2"), AOS_EINVAL);
    /* any right at all */
    assert_int_equal(aos_auth_check(&p, AOS_PERM_ANY, "system"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "system"), AOS_EFORBIDDEN);
    /* a prefix grant: its tools, not another server's, not a longer server name */
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev__echo"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "tool:ev__echo"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev__"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:evx__echo"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:aos__echo"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_ADMIN, "tool:ev__echo"), AOS_EFORBIDDEN);
    /* the same name of another kind is another resource */
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "agent:ev__echo"), AOS_EFORBIDDEN);
    /* patterns asked for: only a grant covering all of them */
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev__*"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev__ec*"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev*"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:*"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "task:*"), AOS_EFORBIDDEN);
    /* exact names: that one only; duplicates keep the higher role */
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "task:t1"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "task:t1"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "task:t10"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "task:t"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "project:p1"), 0);
    /* a grant on system is the role on system */
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_VIEWER, "system"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "secret:s"), 0);
    /* everything of a kind */
    assert_int_equal(aos_auth_principal_grant(&p, AOS_ROLE_OPERATOR, "tool:*"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:*"), 0);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:aos__echo"), 0);
    aos_auth_principal_release(&p);
    /* released: the grants are gone, the role on system (Viewer) stays */
    assert_int_equal(aos_auth_check(&p, AOS_PERM_OPERATE, "tool:ev__echo"), AOS_EFORBIDDEN);
    assert_int_equal(aos_auth_check(&p, AOS_PERM_READ, "tool:ev__echo"), 0);
}

/* An actor names the principal's kind and id; principals of no kind by id. */
static void test_actor_names(void **state)
{
    (void)state;
    char buf[80];
    aos_principal_t p;
    memset(&p, 0, sizeof(p));
    snprintf(p.id, sizeof(p.id), "tok_1");
    snprintf(p.kind, sizeof(p.kind), "token");
    assert_string_equal(aos_auth_actor(&p, buf, sizeof(buf)), "token:tok_1");
    snprintf(p.id, sizeof(p.id), "u_7");
    snprintf(p.kind, sizeof(p.kind), "user");
    assert_string_equal(aos_auth_actor(&p, buf, sizeof(buf)), "user:u_7");
    p.kind[0] = '\0';
    snprintf(p.id, sizeof(p.id), "task:0af7651916cd43dd8448eb211c80319c");
    assert_string_equal(aos_auth_actor(&p, buf, sizeof(buf)),
                        "task:0af7651916cd43dd8448eb211c80319c");
    snprintf(p.id, sizeof(p.id), "anonymous");
    assert_string_equal(aos_auth_actor(&p, buf, sizeof(buf)), "anonymous");
    assert_string_equal(aos_auth_actor(NULL, buf, sizeof(buf)), "anonymous");
    char small[8];
    snprintf(p.kind, sizeof(p.kind), "token");
    assert_string_equal(aos_auth_actor(&p, small, sizeof(small)), "token:a"); /* truncated */
}

static void test_resource_syntax(void **state)
{
    (void)state;
    aos_err_t err = {0, ""};
    const char *good[] = {"system",  "project:p1",   "task:*",         "tool:files__*",
                          "agent:a", "secret:db/pw", "tool:a.b-c@d:e", NULL};
    for (int i = 0; good[i]; i++)
        assert_int_equal(aos_auth_resource_check(good[i], &err), 0);
    const char *bad[] = {"",          "System",   "tool",     "tool:",  "files__*",
                         "tool:a*b",  "tool:**",  "tool:a b", "user:x", "project:p\n",
                         "task:a\"b", "system:x", NULL};
    for (int i = 0; bad[i]; i++) {
        err.code = 0;
        assert_int_equal(aos_auth_resource_check(bad[i], &err), AOS_EINVAL);
        assert_int_equal(err.code, AOS_EINVAL);
    }
    char longname[AOS_AUTH_RESOURCE_MAX + 16];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    memcpy(longname, "task:", 5);
    assert_int_equal(aos_auth_resource_check(longname, &err), AOS_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scrape_list_syntax),
        cmocka_unit_test(test_check_roles),
        cmocka_unit_test(test_actor_names),
        cmocka_unit_test(test_check_grants),
        cmocka_unit_test(test_resource_syntax),
        cmocka_unit_test_setup_teardown(test_scrape_matches, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
