/* test_settings.c - src/settings without HTTP: the schema's validation of
 * a PUT body, TaskSpec env checks, and start-up against a real store:
 * stored values overlaid on the configuration except where a flag pins
 * them, runtime secrets opened only in their row and scope, and the IP
 * allowlist gate. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <string.h>

#include "settings/internal.h"

static void valid(const char *json)
{
    json_error_t je;
    json_t *b = json_loads(json, 0, &je);
    aos_err_t err = {0, ""};
    if (!b)
        fail_msg("bad test JSON %s", json);
    if (aos_settings_validate(b, &err))
        fail_msg("%s: %s", json, aos_err_msg(&err));
    json_decref(b);
}

/* json is refused, with a message holding what */
static void invalid(const char *json, const char *what)
{
    json_error_t je;
    json_t *b = json_loads(json, JSON_DECODE_ANY, &je);
    aos_err_t err = {0, ""};
    if (!b)
        fail_msg("bad test JSON %s", json);
    assert_int_equal(aos_settings_validate(b, &err), AOS_EINVAL);
    if (!strstr(err.msg, what))
        fail_msg("%s: '%s' does not name '%s'", json, err.msg, what);
    json_decref(b);
}

static void test_validate(void **state)
{
    (void)state;
    valid("{\"llm.model\": \"gpt-4o\", \"llm.temperature\": 0.5, \"llm.max_tokens\": 100}");
    valid("{\"llm.temperature\": -1, \"llm.price_in_cny\": 0, \"otel.sample_ratio\": 1}");
    valid("{\"llm.base_url\": null, \"security.ip_allowlist\": []}");
    valid("{\"security.ip_allowlist\": [\"10.0.0.0/8\", \"::1\", \"::ffff:127.0.0.1\"]}");
    valid("{\"otel.headers\": {\"x-team\": \"a\", \"Authorization\": {\"secret\": \"OTLP\"}}}");
    valid("{\"database.url\": \"sqlite:/var/lib/aos/aos.db\", \"security.two_person_secrets\": "
          "true}");
    valid("{\"http.max_body\": 1, \"gateway.replay_total\": 17179869184}");
    invalid("[]", "object");
    invalid("{}", "no setting");
    invalid("{\"llm.model\": \"x\", \"llm.colour\": 1}", "'llm.colour'");
    invalid("{\"llm.model\": 5}", "'llm.model'");
    invalid("{\"llm.model\": \"\"}", "'llm.model'");
    invalid("{\"llm.model\": \"a\\u0001b\"}", "'llm.model'");
    invalid("{\"llm.temperature\": 2.5}", "'llm.temperature'");
    invalid("{\"llm.temperature\": \"1\"}", "'llm.temperature'");
    invalid("{\"llm.max_tokens\": -1}", "'llm.max_tokens'");
    invalid("{\"llm.max_tokens\": 1.5}", "'llm.max_tokens'");
    invalid("{\"llm.retries\": 11}", "'llm.retries'");
    invalid("{\"llm.base_url\": \"file:///etc/passwd\"}", "'llm.base_url'");
    invalid("{\"llm.api_key_secret\": \"has space\"}", "'llm.api_key_secret'");
    invalid("{\"security.two_person_secrets\": 1}", "'security.two_person_secrets'");
    invalid("{\"security.ip_allowlist\": [\"10.0.0.0/8\", \"nope\"]}",
            "'security.ip_allowlist[1]'");
    invalid("{\"security.ip_allowlist\": [7]}", "'security.ip_allowlist[0]'");
    invalid("{\"security.ip_allowlist\": \"10.0.0.0/8\"}", "'security.ip_allowlist'");
    invalid("{\"otel.headers\": {\"a b\": \"x\"}}", "'otel.headers'");
    invalid("{\"otel.headers\": {\"a\": \"x\\ny\"}}", "'otel.headers.a'");
    invalid("{\"otel.headers\": {\"a\": {\"secret\": \"x\", \"more\": 1}}}", "'otel.headers.a'");
    invalid("{\"otel.headers\": []}", "'otel.headers'");
    invalid("{\"database.url\": \"postgresql://u:p@h/d\"}", "PostgreSQL");
    invalid("{\"database.url\": \"mysql://h/d\"}", "'database.url'");
    invalid("{\"http.max_conns\": 0}", "'http.max_conns'");
    /* every key of the table validates its own null (back to the default) */
    for (size_t i = 0; i < settings_nkeys; i++) {
        json_t *b = json_pack("{s:n}", settings_keys[i].key);
        aos_err_t err = {0, ""};
        assert_int_equal(aos_settings_validate(b, &err), 0);
        json_decref(b);
    }
}

static void test_env_check(void **state)
{
    (void)state;
    aos_err_t err = {0, ""};
    json_t *ok =
        json_pack("{s:{s:s}, s:{s:s}}", "API_KEY", "secret", "k1", "_x9", "secret", "a.b-c");
    assert_int_equal(aos_settings_env_check(ok, &err), 0);
    json_decref(ok);
    const char *bad[] = {"{\"9A\": {\"secret\": \"k\"}}",
                         "{\"A-B\": {\"secret\": \"k\"}}",
                         "{\"A\": \"literal\"}",
                         "{\"A\": {\"secret\": \"\"}}",
                         "{\"A\": {\"secret\": \"k\", \"x\": 1}}",
                         "{\"A\": {\"secret\": 5}}",
                         "[]",
                         "{\"\": {\"secret\": \"k\"}}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *e = json_loads(bad[i], JSON_DECODE_ANY, NULL);
        assert_non_null(e);
        if (aos_settings_env_check(e, &err) != AOS_EINVAL)
            fail_msg("accepted %s", bad[i]);
        json_decref(e);
    }
    json_t *many = json_object();
    for (int i = 0; i < 65; i++) {
        char k[16];
        snprintf(k, sizeof(k), "V%d", i);
        json_object_set_new(many, k, json_pack("{s:s}", "secret", "k"));
    }
    assert_int_equal(aos_settings_env_check(many, &err), AOS_EINVAL);
    json_decref(many);
    assert_true(aos_settings_name_ok("a"));
    assert_false(aos_settings_name_ok(""));
    assert_false(aos_settings_name_ok("a/b"));
    char long_name[66];
    memset(long_name, 'a', 65);
    long_name[65] = '\0';
    assert_false(aos_settings_name_ok(long_name));
}

/* The references an env entry may be, their resolution to a project
 * variable's secret, and opening one (a fake store: the function). */
static char *open_fake(const char *secret, const char *project_id, size_t *len, aos_err_t *err,
                       void *data)
{
    (void)data;
    if (strcmp(secret, "S1") != 0 || (project_id && strcmp(project_id, "p1") != 0)) {
        aos_err_set(err, AOS_ENOTFOUND, "runtime secret '%s' not found", secret);
        return NULL;
    }
    char *v = malloc(4);
    memcpy(v, "one", 4);
    *len = 3;
    return v;
}

static void test_env_refs(void **state)
{
    (void)state;
    const char *sec, *var;
    json_t *v = json_pack("{s:s}", "secret", "S1");
    assert_int_equal(aos_settings_env_ref(v, &sec, &var), 1);
    assert_string_equal(sec, "S1");
    assert_null(var);
    json_decref(v);
    v = json_pack("{s:s, s:s}", "var", "V", "secret", "S1");
    assert_int_equal(aos_settings_env_ref(v, &sec, &var), 1);
    assert_string_equal(var, "V");
    json_decref(v);
    v = json_string("v1:sealed");
    assert_int_equal(aos_settings_env_ref(v, &sec, &var), 0);
    json_decref(v);
    v = json_pack("{s:s}", "name", "S1");
    assert_int_equal(aos_settings_env_ref(v, &sec, &var), AOS_EINVAL);
    json_decref(v);

    /* a task-scoped variable wins over the project's of the same name */
    json_t *env = json_pack("{s:{s:s}, s:{s:s}}", "A", "var", "V", "B", "secret", "S1");
    json_t *vars =
        json_pack("[{s:s, s:s, s:s}, {s:s, s:s, s:s}]", "name", "V", "scope", "task", "secret_ref",
                  "S1", "name", "V", "scope", "project", "secret_ref", "S2");
    aos_err_t err = {0, ""};
    assert_int_equal(aos_settings_env_resolve(env, vars, "p1", &err), 0);
    assert_string_equal(json_string_value(json_object_get(json_object_get(env, "A"), "secret")),
                        "S1");
    json_t *none = json_array();
    json_t *env2 = json_pack("{s:{s:s}}", "API_KEY", "var", "W");
    assert_int_equal(aos_settings_env_resolve(env2, none, "p1", &err), AOS_EINVAL);
    assert_non_null(strstr(aos_err_msg(&err), "no variable 'W'"));

    /* opening: the value, or an error naming the entry last */
    size_t len = 0;
    char *plain = aos_settings_env_value("A", json_object_get(env, "A"), NULL, open_fake, NULL,
                                         "p1", &len, &err);
    assert_non_null(plain);
    assert_int_equal(len, 3);
    free(plain);
    json_t *gone = json_pack("{s:s}", "secret", "S9");
    assert_null(aos_settings_env_value("API_KEY", gone, NULL, open_fake, NULL, NULL, &len, &err));
    assert_int_equal(err.code, AOS_ENOTFOUND);
    assert_string_equal(aos_err_msg(&err), "runtime secret 'S9' not found (in env.API_KEY)");
    assert_null(aos_settings_env_value("A", gone, NULL, NULL, NULL, NULL, &len, &err));
    assert_int_equal(err.code, AOS_EUNAVAIL);
    assert_null(aos_settings_env_value("A", json_object_get(env2, "API_KEY"), NULL, open_fake, NULL,
                                       NULL, &len, &err));
    assert_int_equal(err.code, AOS_EINVAL);
    json_decref(gone);
    json_decref(env);
    json_decref(env2);
    json_decref(vars);
    json_decref(none);
}

typedef struct {
    char dir[64];
    char url[128];
    aos_store_t *st;
    aos_secret_box_t *box;
    aos_config_t cfg;
} fx_t;

static int setup(void **state)
{
    fx_t *f = calloc(1, sizeof(*f));
    aos_err_t err = {0, ""};
    if (!f || aos_test_mkdtemp(f->dir, sizeof(f->dir), "settings"))
        return -1;
    snprintf(f->url, sizeof(f->url), "sqlite:%s/aos.db", f->dir);
    if (aos_store_open(&f->st, NULL, f->url, &err) ||
        aos_secret_box_open(&f->box, f->dir, NULL, &err))
        return -1;
    aos_config_init(&f->cfg);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fx_t *f = *state;
    aos_config_release(&f->cfg);
    aos_secret_box_free(f->box);
    aos_store_close(f->st);
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static void put_secret(fx_t *f, const char *name, const char *scope, const char *value)
{
    char ad[160];
    size_t n = settings_ad(ad, sizeof(ad), name, scope);
    char *sealed = aos_secret_seal_ad(f->box, value, strlen(value), ad, n);
    aos_err_t err = {0, ""};
    assert_int_equal(aos_store_secret_put(f->st, name, scope, NULL, sealed, "test", &err), 0);
    free(sealed);
}

static aos_settings_t *open_settings(fx_t *f)
{
    aos_settings_cfg_t c = {
        .store = f->st, .secrets = f->box, .config = &f->cfg, .data_dir = f->dir};
    aos_settings_t *s = NULL;
    aos_err_t err = {0, ""};
    if (aos_settings_new(&s, &c, &err))
        fail_msg("aos_settings_new: %s", aos_err_msg(&err));
    return s;
}

static void test_startup(void **state)
{
    fx_t *f = *state;
    aos_err_t err = {0, ""};
    json_t *stored = json_pack("{s:i, s:i, s:[s], s:b, s:i}", "gateway.session_idle_s", 5,
                               "llm.retries", 3, "security.ip_allowlist", "10.0.0.0/8",
                               "security.two_person_secrets", 1, "http.max_conns", 0 /* bad */);
    assert_int_equal(aos_store_setting_put(f->st, "system", stored, &err), 0);
    json_decref(stored);
    put_secret(f, "A", "system", "value-of-a");
    put_secret(f, "B", "project:p1", "value-of-b");
    assert_int_equal(aos_config_set(&f->cfg, "llm_retries", "7", &err), 0); /* a flag */
    aos_settings_t *s = open_settings(f);
    assert_int_equal(f->cfg.session_idle_s, 5);    /* stored */
    assert_int_equal(f->cfg.llm_retries, 7);       /* the flag wins */
    assert_int_equal(f->cfg.http_max_conns, 4096); /* a bad stored value is left out */
    assert_true(s->two_person);
    /* the gate */
    assert_int_equal(aos_settings_gate(NULL, "10.9.8.7", &err, s), 0);
    assert_int_equal(aos_settings_gate(NULL, "::ffff:10.9.8.7", &err, s), 0);
    assert_int_equal(aos_settings_gate(NULL, "127.0.0.1", &err, s), AOS_EIPDENIED);
    assert_non_null(strstr(err.msg, "127.0.0.1"));
    /* secrets in their scope */
    size_t len = 0;
    char *p = aos_settings_secret_open(s, "A", NULL, &len, &err);
    assert_string_equal(p, "value-of-a");
    assert_int_equal(len, 10);
    aos_secret_wipe(p);
    assert_null(aos_settings_secret_open(s, "B", NULL, NULL, &err));
    assert_int_equal(err.code, AOS_ENOTFOUND);
    assert_null(aos_settings_secret_open(s, "B", "p2", NULL, &err));
    p = aos_settings_secret_open(s, "B", "p1", NULL, &err);
    assert_string_equal(p, "value-of-b");
    aos_secret_wipe(p);
    assert_null(aos_settings_secret_open(s, "C", NULL, NULL, &err));
    aos_settings_free(s);

    /* A's sealed text copied into B's row does not open there */
    json_t *rows = NULL;
    assert_int_equal(aos_store_secret_list(f->st, &rows, &err), 0);
    const char *sealed_a = json_string_value(json_object_get(json_array_get(rows, 0), "sealed"));
    assert_int_equal(aos_store_secret_reseal(f->st, "B", sealed_a, &err), 0);
    json_decref(rows);
    s = open_settings(f);
    assert_null(aos_settings_secret_open(s, "B", "p1", NULL, &err));
    assert_int_equal(err.code, AOS_EINTERNAL);
    assert_non_null(strstr(err.msg, "does not open"));
    p = aos_settings_secret_open(s, "A", NULL, NULL, &err);
    assert_string_equal(p, "value-of-a");
    aos_secret_wipe(p);
    aos_settings_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_validate),
        cmocka_unit_test(test_env_check),
        cmocka_unit_test(test_env_refs),
        cmocka_unit_test_setup_teardown(test_startup, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
