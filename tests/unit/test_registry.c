/* test_registry.c - registry entries: server names, normalizing a client's
 * entry into the stored form (defaults, every rejection, sealed secrets,
 * secrets kept across an update), the public form that never shows a
 * secret, and the import of {"mcpServers": {...}} files. Each test gets a
 * secret box whose master key lives in its own temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "tmpdir.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "registry/registry.h"
#include "secret/secret.h"

typedef struct {
    char dir[64];
    aos_secret_box_t *box;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/aos-registry-XXXXXX");
    aos_err_t err = {0};
    if (!mkdtemp(f->dir) || aos_secret_box_open(&f->box, f->dir, NULL, &err) != 0) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    aos_secret_box_free(f->box);
    aos_test_rmdir(f->dir);
    free(f);
    return 0;
}

static json_t *J(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!j)
        fail_msg("bad test JSON '%s': %s", text, je.text);
    return j;
}

/* Normalizes the entry written as text; fails the test if it is refused. */
static json_t *normalize_ok(fixture_t *f, const char *text, const json_t *prev)
{
    json_t *in = J(text);
    aos_err_t err = {0};
    json_t *out = aos_registry_normalize(in, prev, f->box, &err);
    json_decref(in);
    if (!out)
        fail_msg("normalize refused %s: %s", text, err.msg);
    return out;
}

/* Asserts the entry is refused with AOS_EINVAL and a message containing
 * want. */
static void expect_refused(fixture_t *f, const char *text, const char *want)
{
    json_t *in = J(text);
    aos_err_t err = {0};
    json_t *out = aos_registry_normalize(in, NULL, f->box, &err);
    json_decref(in);
    if (out) {
        char *s = json_dumps(out, JSON_COMPACT);
        json_decref(out);
        fail_msg("normalize accepted %s as %s", text, s);
    }
    assert_int_equal(err.code, AOS_EINVAL);
    if (!strstr(err.msg, want))
        fail_msg("error for %s is '%s', expected it to mention '%s'", text, err.msg, want);
}

/* Asserts that obj[key] is sealed text that opens to plain. */
static void expect_sealed(fixture_t *f, const json_t *obj, const char *key, const char *plain)
{
    const char *sealed = json_string_value(json_object_get(obj, key));
    if (!sealed)
        fail_msg("'%s' is not a string", key);
    assert_memory_equal(sealed, "v1:", 3);
    /* Short plaintexts could occur in random base64 by chance. */
    if (strlen(plain) >= 8)
        assert_null(strstr(sealed, plain));
    size_t len = 0;
    char *p = aos_secret_open(f->box, sealed, &len);
    assert_non_null(p);
    assert_int_equal(len, strlen(plain));
    assert_string_equal(p, plain);
    aos_secret_wipe(p);
}

/* expect_sealed, then replaces obj[key] with "SEALED" so that the whole
 * object can be compared with json_equal. obj must not be shared. */
static void unseal(fixture_t *f, json_t *obj, const char *key, const char *plain)
{
    expect_sealed(f, obj, key, plain);
    json_object_set_new(obj, key, json_string("SEALED"));
}

static void expect_equal_json(const json_t *got, const char *want_text)
{
    json_t *want = J(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("got:  %s\nwant: %s\n", g, w);
        free(g);
        free(w);
        json_decref(want);
        fail();
    }
    json_decref(want);
}

/* Fails if plain appears anywhere in the serialized value. */
static void expect_absent(const json_t *j, const char *plain)
{
    char *s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    if (strstr(s, plain))
        fail_msg("'%s' found in %s", plain, s);
    free(s);
}

/* ---- names ---- */

static void test_name_ok_accepts(void **state)
{
    (void)state;
    char max[AOS_REGISTRY_NAME_MAX + 1];
    memset(max, 'n', AOS_REGISTRY_NAME_MAX);
    max[AOS_REGISTRY_NAME_MAX] = '\0';
    const char *good[] = {"a",    "Z",       "0",         "github", "my-server", "my_server",
                          "v1.2", "a-b_c.d", "9lives",    "a..b",   "a_",        "a-",
                          "A.B",  "x_y_z",   "a-_-b.c.d", max};
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
        if (!aos_registry_name_ok(good[i]))
            fail_msg("'%s' should be a valid name", good[i]);
}

static void test_name_ok_rejects(void **state)
{
    (void)state;
    char over[AOS_REGISTRY_NAME_MAX + 2];
    memset(over, 'n', AOS_REGISTRY_NAME_MAX + 1);
    over[AOS_REGISTRY_NAME_MAX + 1] = '\0';
    const char *bad[] = {"",    "-a",  "_a",  ".a",   "a b",   "a/b",         "a__b",
                         "__",  "a__", "a:b", "a\nb", "é",     "caf\xc3\xa9", "a@b",
                         "a+b", " a",  "a ",  "a\\b", "a___b", over};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (aos_registry_name_ok(bad[i]))
            fail_msg("'%s' should be an invalid name", bad[i]);
    assert_false(aos_registry_name_ok(NULL));
}

/* ---- normalize: stdio ---- */

static void test_normalize_stdio_full(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(f,
                              "{\"name\":\"gh\",\"command\":\"npx\",\"args\":[\"-y\",\"srv\"],"
                              "\"env\":{\"TOKEN\":\"s3cret-env\",\"EMPTY\":\"\"},\"cwd\":\"/tmp\","
                              "\"description\":\"GitHub\",\"auth_token\":\"tok-secret\","
                              "\"timeout_ms\":1234,\"enabled\":true}",
                              NULL);
    expect_absent(st, "s3cret-env");
    expect_absent(st, "tok-secret");
    json_t *env = json_object_get(json_object_get(st, "config"), "env");
    unseal(f, env, "TOKEN", "s3cret-env");
    unseal(f, env, "EMPTY", "");
    unseal(f, st, "auth_token", "tok-secret");
    expect_equal_json(st, "{\"name\":\"gh\",\"transport\":\"stdio\",\"base_url\":\"stdio:npx\","
                          "\"description\":\"GitHub\",\"capabilities\":{},"
                          "\"config\":{\"command\":\"npx\",\"args\":[\"-y\",\"srv\"],"
                          "\"env\":{\"TOKEN\":\"SEALED\",\"EMPTY\":\"SEALED\"},\"cwd\":\"/tmp\"},"
                          "\"auth_token\":\"SEALED\",\"timeout_ms\":1234,\"enabled\":true}");
    json_decref(st);
}

static void test_normalize_stdio_defaults(void **state)
{
    fixture_t *f = *state;
    /* No transport: a command means stdio. */
    json_t *st = normalize_ok(f, "{\"name\":\"min\",\"command\":\"/usr/bin/srv\"}", NULL);
    expect_equal_json(st, "{\"name\":\"min\",\"transport\":\"stdio\","
                          "\"base_url\":\"stdio:/usr/bin/srv\",\"description\":\"\","
                          "\"capabilities\":{},"
                          "\"config\":{\"command\":\"/usr/bin/srv\",\"args\":[],\"env\":{}},"
                          "\"auth_token\":null,\"timeout_ms\":30000,\"enabled\":true}");
    assert_int_equal(json_integer_value(json_object_get(st, "timeout_ms")),
                     AOS_REGISTRY_DEFAULT_TIMEOUT_MS);
    json_decref(st);

    /* Explicit transport, null optional fields and an empty token. */
    st = normalize_ok(f,
                      "{\"name\":\"min\",\"transport\":\"stdio\",\"command\":\"srv\","
                      "\"cwd\":null,\"description\":null,\"auth_token\":\"\"}",
                      NULL);
    expect_equal_json(st, "{\"name\":\"min\",\"transport\":\"stdio\",\"base_url\":\"stdio:srv\","
                          "\"description\":\"\",\"capabilities\":{},"
                          "\"config\":{\"command\":\"srv\",\"args\":[],\"env\":{}},"
                          "\"auth_token\":null,\"timeout_ms\":30000,\"enabled\":true}");
    json_decref(st);
}

static void test_normalize_does_not_modify_input(void **state)
{
    fixture_t *f = *state;
    const char *text = "{\"name\":\"gh\",\"command\":\"npx\",\"args\":[\"a\"],"
                       "\"env\":{\"K\":\"v\"},\"capabilities\":{\"tools\":{}}}";
    json_t *in = J(text);
    json_t *copy = J(text);
    aos_err_t err = {0};
    json_t *st = aos_registry_normalize(in, NULL, f->box, &err);
    assert_non_null(st);
    assert_true(json_equal(in, copy));
    /* The stored form does not share mutable parts with the input. */
    json_object_set_new(json_object_get(in, "capabilities"), "x", json_true());
    assert_null(json_object_get(json_object_get(st, "capabilities"), "x"));
    json_decref(st);
    json_decref(in);
    json_decref(copy);
}

/* ---- normalize: streamable-http ---- */

static void test_normalize_http_full(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(
        f,
        "{\"name\":\"remote\",\"url\":\"https://mcp.example.com/mcp\","
        "\"headers\":{\"Authorization\":\"Bearer hdr-secret\",\"X-Api-Key\":\"key-secret\"},"
        "\"auth_token\":\"tok-secret\",\"timeout_ms\":5000,\"enabled\":false,"
        "\"capabilities\":{\"tools\":{\"listChanged\":true}},\"description\":\"Remote\"}",
        NULL);
    expect_absent(st, "hdr-secret");
    expect_absent(st, "key-secret");
    expect_absent(st, "tok-secret");
    json_t *h = json_object_get(json_object_get(st, "config"), "headers");
    unseal(f, h, "Authorization", "Bearer hdr-secret");
    unseal(f, h, "X-Api-Key", "key-secret");
    unseal(f, st, "auth_token", "tok-secret");
    expect_equal_json(st, "{\"name\":\"remote\",\"transport\":\"streamable-http\","
                          "\"base_url\":\"https://mcp.example.com/mcp\",\"description\":\"Remote\","
                          "\"capabilities\":{\"tools\":{\"listChanged\":true}},"
                          "\"config\":{\"url\":\"https://mcp.example.com/mcp\","
                          "\"headers\":{\"Authorization\":\"SEALED\",\"X-Api-Key\":\"SEALED\"}},"
                          "\"auth_token\":\"SEALED\",\"timeout_ms\":5000,\"enabled\":false}");
    json_decref(st);
}

/* A header or env value may name a runtime secret instead: kept as the
 * reference (the gateway opens it at each connect), shown by name in the
 * public form; anything else of object form is refused. */
static void test_normalize_secret_refs(void **state)
{
    fixture_t *f = *state;
    json_t *st =
        normalize_ok(f,
                     "{\"name\":\"r\",\"url\":\"http://127.0.0.1:9/mcp\","
                     "\"headers\":{\"X-Key\":{\"secret\":\"API_KEY\"},\"X-B\":\"plain-b\"}}",
                     NULL);
    json_t *h = json_object_get(json_object_get(st, "config"), "headers");
    expect_equal_json(json_object_get(h, "X-Key"), "{\"secret\":\"API_KEY\"}");
    unseal(f, h, "X-B", "plain-b");
    json_t *pub = aos_registry_public(st);
    expect_equal_json(json_object_get(pub, "header_secrets"), "{\"X-Key\":\"API_KEY\"}");
    expect_absent(pub, "plain-b");
    json_decref(pub);
    json_decref(st);
    st = normalize_ok(
        f, "{\"name\":\"s\",\"command\":\"c\",\"env\":{\"K\":{\"secret\":\"a.b-c\"}}}", NULL);
    expect_equal_json(json_object_get(json_object_get(st, "config"), "env"),
                      "{\"K\":{\"secret\":\"a.b-c\"}}");
    json_decref(st);
    const char *bad[] = {
        "{\"secret\":\"\"}",
        "{\"secret\":\"a b\"}",
        "{\"secret\":1}",
        "{}",
        "{\"secret\":\"A\",\"x\":1}",
        "{\"var\":\"A\"}",
        "{\"secret\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char in[300];
        snprintf(in, sizeof(in), "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"X-K\":%s}}",
                 bad[i]);
        expect_refused(f, in, "'headers.X-K' must be a string or {\"secret\"");
    }
    expect_refused(
        f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"host\":{\"secret\":\"A\"}}}",
        "invalid name 'host'");
}

static void test_normalize_http_defaults(void **state)
{
    fixture_t *f = *state;
    /* No transport and no command: streamable-http. */
    json_t *st = normalize_ok(f, "{\"name\":\"r\",\"url\":\"http://127.0.0.1:9/mcp\"}", NULL);
    expect_equal_json(st, "{\"name\":\"r\",\"transport\":\"streamable-http\","
                          "\"base_url\":\"http://127.0.0.1:9/mcp\",\"description\":\"\","
                          "\"capabilities\":{},"
                          "\"config\":{\"url\":\"http://127.0.0.1:9/mcp\",\"headers\":{}},"
                          "\"auth_token\":null,\"timeout_ms\":30000,\"enabled\":true}");
    json_decref(st);

    st = normalize_ok(f,
                      "{\"name\":\"r\",\"transport\":\"streamable-http\","
                      "\"url\":\"https://x.example\",\"capabilities\":[\"tools\"]}",
                      NULL);
    assert_string_equal(json_string_value(json_object_get(st, "transport")), "streamable-http");
    expect_equal_json(json_object_get(st, "capabilities"), "[\"tools\"]");
    json_decref(st);
}

static void test_normalize_timeout_bounds(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(f, "{\"name\":\"t\",\"command\":\"c\",\"timeout_ms\":1}", NULL);
    assert_int_equal(json_integer_value(json_object_get(st, "timeout_ms")), 1);
    json_decref(st);
    st = normalize_ok(f, "{\"name\":\"t\",\"command\":\"c\",\"timeout_ms\":3600000}", NULL);
    assert_int_equal(json_integer_value(json_object_get(st, "timeout_ms")), 3600000);
    json_decref(st);
}

/* ---- normalize: rejections ---- */

static void test_reject_not_an_object(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "[]", "object");
    expect_refused(f, "\"gh\"", "object");
    expect_refused(f, "null", "object");
    aos_err_t err = {0};
    assert_null(aos_registry_normalize(NULL, NULL, f->box, &err));
    assert_int_equal(err.code, AOS_EINVAL);
}

static void test_reject_unknown_fields(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"foo\":1}", "unknown field 'foo'");
    /* IDE spellings are import's job, not normalize's. */
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"type\":\"stdio\"}",
                   "unknown field 'type'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"disabled\":true}",
                   "unknown field 'disabled'");
    /* Stored-form keys are not input keys. */
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"config\":{}}", "unknown field 'config'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"base_url\":\"x\"}",
                   "unknown field 'base_url'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"Name\":\"a\"}", "unknown field 'Name'");
}

static void test_reject_bad_name(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "{\"command\":\"c\"}", "'name' is required");
    expect_refused(f, "{\"name\":null,\"command\":\"c\"}", "'name' is required");
    expect_refused(f, "{\"name\":5,\"command\":\"c\"}", "'name' must be a string");
    expect_refused(f, "{\"name\":\"\",\"command\":\"c\"}", "invalid name");
    expect_refused(f, "{\"name\":\"a__b\",\"command\":\"c\"}", "invalid name 'a__b'");
    expect_refused(f, "{\"name\":\"bad name\",\"command\":\"c\"}", "invalid name");
}

static void test_reject_bad_types(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "{\"name\":\"a\",\"command\":5}", "'command' must be a string");
    expect_refused(f, "{\"name\":\"a\",\"url\":[\"http://x\"]}", "'url' must be a string");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"cwd\":1}", "'cwd' must be a string");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"description\":{}}",
                   "'description' must be a string");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"auth_token\":123}",
                   "'auth_token' must be a string");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"transport\":1}",
                   "'transport' must be a string");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"args\":\"-y srv\"}", "'args'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"args\":[\"ok\",2]}", "'args[1]'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"args\":[null]}", "'args[0]'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":\"K=V\"}", "'env'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":[\"K=V\"]}", "'env'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"K\":1}}", "'env.K'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"K\":null}}", "'env.K'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"\":\"v\"}}", "'env.'");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":[]}", "'headers'");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"H\":true}}",
                   "'headers.H'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"capabilities\":\"tools\"}",
                   "'capabilities'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"capabilities\":1}", "'capabilities'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"enabled\":\"yes\"}", "'enabled'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"enabled\":1}", "'enabled'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"enabled\":null}", "'enabled'");
}

/* Issue 12, item 11: what would end a header line, a variable or an
 * argument early is refused with a clear 400, not stored to leave the
 * server "stopped" with no error. */
static void test_reject_control_characters(void **state)
{
    fixture_t *f = *state;
    expect_refused(f,
                   "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"X-A\":\"v\\r\\nX-B: 1\"}}",
                   "'headers.X-A' holds a line break");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"X-A\":\"v\\n\"}}",
                   "line break");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"X-A\":\"v\\u0000w\"}}",
                   "'headers.X-A'");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"X A\":\"v\"}}",
                   "invalid name 'X A' in 'headers'");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"X:A\":\"v\"}}",
                   "invalid name");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"host\":\"evil\"}}",
                   "invalid name 'host'");
    expect_refused(f,
                   "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"Content-Length\":\"1\"}}",
                   "invalid name");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"auth_token\":\"t\\r\\nX-B: 1\"}",
                   "'auth_token' holds a line break");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"A=B\":\"v\"}}",
                   "invalid name 'A=B' in 'env'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"1A\":\"v\"}}", "invalid name");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"A B\":\"v\"}}", "invalid name");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"A\":\"v\\u0000w\"}}",
                   "'env.A' holds a NUL character");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\\u0000d\"}", "'command' holds a NUL");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"args\":[\"x\\u0000y\"]}", "'args[0]'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"cwd\":\"/t\\u0000mp\"}", "'cwd' holds");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"description\":\"d\\u0000\"}",
                   "'description' holds");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x/\\r\\nHost: y\"}", "'url' must name");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x/a b\"}", "'url' must name");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http:///path\"}", "'url' must name a host");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://u:p@/path\"}", "'url' must name a host");
    /* what is fine stays fine: tabs in a header value, newlines in an env value */
    json_t *ok = normalize_ok(
        f, "{\"name\":\"a\",\"url\":\"http://x\",\"headers\":{\"X-A\":\"v\\tw\"}}", NULL);
    json_decref(ok);
    ok = normalize_ok(f, "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"_A1\":\"line1\\nline2\"}}",
                      NULL);
    json_decref(ok);
}

/* env_passthrough: names of aosd's variables a stdio child also gets;
 * never aosd's own (AOS_*), stored and shown as given. */
static void test_env_passthrough(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(
        f,
        "{\"name\":\"a\",\"command\":\"c\",\"env_passthrough\":[\"NODE_OPTIONS\",\"http_proxy\"]}",
        NULL);
    expect_equal_json(json_object_get(json_object_get(st, "config"), "env_passthrough"),
                      "[\"NODE_OPTIONS\",\"http_proxy\"]");
    json_t *pub = aos_registry_public(st);
    expect_equal_json(json_object_get(pub, "env_passthrough"), "[\"NODE_OPTIONS\",\"http_proxy\"]");
    json_decref(pub);
    json_decref(st);
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env_passthrough\":[\"AOS_MASTER_KEY\"]}",
                   "AOS_*");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env_passthrough\":[\"aos_x\"]}",
                   "AOS_*");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env_passthrough\":[\"A=B\"]}",
                   "'env_passthrough[0]' must be a variable name");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env_passthrough\":[\"A\",1]}",
                   "'env_passthrough[1]'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"env_passthrough\":\"PATH\"}",
                   "must be an array");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"http://x\",\"env_passthrough\":[\"A\"]}",
                   "'env_passthrough' does not apply");
}

/* Issue 12, item 7: the built-in servers' names are never an entry's. */
static void test_reject_reserved_names(void **state)
{
    fixture_t *f = *state;
    assert_true(aos_registry_name_reserved("aos"));
    assert_true(aos_registry_name_reserved("logs"));
    assert_true(aos_registry_name_reserved("Logs"));
    assert_false(aos_registry_name_reserved("logs2"));
    assert_false(aos_registry_name_reserved("log"));
    assert_false(aos_registry_name_reserved(NULL));
    expect_refused(f, "{\"name\":\"logs\",\"command\":\"c\"}", "'logs' is the name of a built-in");
    expect_refused(f, "{\"name\":\"LOGS\",\"command\":\"c\"}", "built-in");
    expect_refused(f, "{\"name\":\"aos\",\"url\":\"http://x\"}", "built-in");
    json_t *ok = normalize_ok(f, "{\"name\":\"logs-archive\",\"command\":\"c\"}", NULL);
    json_decref(ok);
}

static void test_reject_missing_command(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"stdio\"}", "'command' is required");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"\"}", "'command' is required");
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"stdio\",\"command\":null}",
                   "'command' is required");
    /* A url does not stand in for a command. */
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"stdio\",\"url\":\"http://x\"}",
                   "'command' is required");
}

static void test_reject_missing_or_bad_url(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "{\"name\":\"a\"}", "'url'");
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"streamable-http\"}", "'url'");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"\"}", "'url'");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"ftp://x\"}", "http:// or https://");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"mcp.example.com/mcp\"}", "http:// or https://");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"file:///etc/passwd\"}", "http:// or https://");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"httpx://x\"}", "http:// or https://");
}

static void test_reject_mixed_transport_fields(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"url\":\"http://x\"}",
                   "'url' does not apply");
    expect_refused(f,
                   "{\"name\":\"a\",\"transport\":\"streamable-http\",\"url\":\"http://x\","
                   "\"command\":\"c\"}",
                   "'command' does not apply");
}

static void test_sse_transport_and_ca_file(void **state)
{
    fixture_t *f = *state;
    json_t *in = J("{\"name\":\"a\",\"transport\":\"sse\",\"url\":\"https://x/sse\","
                   "\"ca_file\":\"/etc/aos/ca.pem\"}");
    aos_err_t err = {0};
    json_t *st = aos_registry_normalize(in, NULL, f->box, &err);
    assert_non_null(st);
    assert_string_equal(json_string_value(json_object_get(st, "transport")), "sse");
    assert_string_equal(json_string_value(json_object_get(st, "base_url")), "https://x/sse");
    json_t *cfg = json_object_get(st, "config");
    assert_string_equal(json_string_value(json_object_get(cfg, "ca_file")), "/etc/aos/ca.pem");
    json_t *pub = aos_registry_public(st);
    assert_string_equal(json_string_value(json_object_get(pub, "ca_file")), "/etc/aos/ca.pem");
    json_decref(pub);
    json_decref(st);
    json_decref(in);
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"sse\"}", "'url'");
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"sse\",\"url\":\"ftp://x/sse\"}", "'url'");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"https://x\",\"ca_file\":\"ca.pem\"}",
                   "'ca_file' must be an absolute path");
    expect_refused(f, "{\"name\":\"a\",\"url\":\"https://x\",\"ca_file\":7}", "'ca_file'");
    expect_refused(f, "{\"name\":\"a\",\"command\":\"c\",\"ca_file\":\"/ca.pem\"}",
                   "'ca_file' does not apply");
    /* certificate verification has no switch */
    expect_refused(f, "{\"name\":\"a\",\"url\":\"https://x\",\"insecure\":true}",
                   "unknown field 'insecure'");
}

static void test_reject_unknown_transport(void **state)
{
    fixture_t *f = *state;
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"websocket\",\"url\":\"http://x\"}",
                   "unknown transport 'websocket'");
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"http\",\"url\":\"http://x\"}",
                   "unknown transport 'http'");
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"STDIO\",\"command\":\"c\"}",
                   "unknown transport");
    expect_refused(f, "{\"name\":\"a\",\"transport\":\"\",\"command\":\"c\"}", "unknown transport");
}

static void test_reject_bad_timeout(void **state)
{
    fixture_t *f = *state;
    const char *bad[] = {"0",       "-1",   "3600001", "\"30000\"", "1.5",
                         "30000.0", "true", "null",    "{}",        "9223372036854775807"};
    char text[160];
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        snprintf(text, sizeof(text), "{\"name\":\"a\",\"command\":\"c\",\"timeout_ms\":%s}",
                 bad[i]);
        expect_refused(f, text, "'timeout_ms'");
    }
}

static void test_reject_error_is_optional(void **state)
{
    fixture_t *f = *state;
    json_t *in = J("{\"name\":\"a\",\"transport\":\"pigeon\",\"url\":\"http://x\"}");
    assert_null(aos_registry_normalize(in, NULL, f->box, NULL));
    json_decref(in);
}

/* ---- secrets ---- */

static void test_secrets_sealed_with_fresh_nonces(void **state)
{
    fixture_t *f = *state;
    const char *text = "{\"name\":\"a\",\"command\":\"c\",\"env\":{\"K\":\"same-secret\"},"
                       "\"auth_token\":\"same-secret\"}";
    json_t *s1 = normalize_ok(f, text, NULL);
    json_t *s2 = normalize_ok(f, text, NULL);
    const char *t1 = json_string_value(json_object_get(s1, "auth_token"));
    const char *t2 = json_string_value(json_object_get(s2, "auth_token"));
    const char *e1 = json_string_value(
        json_object_get(json_object_get(json_object_get(s1, "config"), "env"), "K"));
    assert_non_null(t1);
    assert_non_null(t2);
    assert_non_null(e1);
    /* Sealing twice (or two fields with one value) never gives equal text. */
    assert_string_not_equal(t1, t2);
    assert_string_not_equal(t1, e1);
    expect_absent(s1, "same-secret");
    json_decref(s1);
    json_decref(s2);
}

static void test_secrets_need_the_same_key(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(f, "{\"name\":\"a\",\"command\":\"c\",\"auth_token\":\"t0k\"}", NULL);
    aos_secret_box_t *other = NULL;
    aos_err_t err = {0};
    assert_int_equal(
        aos_secret_box_open(&other, NULL, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &err), 0);
    assert_null(aos_secret_open(other, json_string_value(json_object_get(st, "auth_token")), NULL));
    aos_secret_box_free(other);
    json_decref(st);
}

/* ---- update with prev ---- */

static void test_update_keeps_omitted_secrets_stdio(void **state)
{
    fixture_t *f = *state;
    json_t *prev = normalize_ok(f,
                                "{\"name\":\"gh\",\"command\":\"npx\","
                                "\"env\":{\"TOKEN\":\"env-secret-1\"},"
                                "\"auth_token\":\"tok-secret-1\"}",
                                NULL);
    json_t *before = json_deep_copy(prev);
    /* The client sends the entry again without its secrets. */
    json_t *st = normalize_ok(f, "{\"name\":\"gh\",\"command\":\"npx2\",\"args\":[\"x\"]}", prev);
    assert_string_equal(json_string_value(json_object_get(st, "auth_token")),
                        json_string_value(json_object_get(prev, "auth_token")));
    json_t *env = json_object_get(json_object_get(st, "config"), "env");
    assert_true(json_equal(env, json_object_get(json_object_get(prev, "config"), "env")));
    expect_sealed(f, env, "TOKEN", "env-secret-1");
    expect_sealed(f, st, "auth_token", "tok-secret-1");
    expect_absent(st, "secret-1");
    /* The other fields come from the new entry. */
    assert_string_equal(json_string_value(json_object_get(st, "base_url")), "stdio:npx2");
    expect_equal_json(json_object_get(json_object_get(st, "config"), "args"), "[\"x\"]");
    /* prev itself is untouched by the update. */
    assert_true(json_equal(prev, before));
    json_decref(st);
    assert_true(json_equal(prev, before));
    json_decref(before);
    json_decref(prev);
}

static void test_update_replaces_given_secrets(void **state)
{
    fixture_t *f = *state;
    json_t *prev = normalize_ok(f,
                                "{\"name\":\"gh\",\"command\":\"npx\","
                                "\"env\":{\"OLD\":\"env-secret-1\",\"KEEP\":\"env-secret-k\"},"
                                "\"auth_token\":\"tok-secret-1\"}",
                                NULL);
    /* A given env replaces the whole set: OLD and KEEP are gone. */
    json_t *st = normalize_ok(f,
                              "{\"name\":\"gh\",\"command\":\"npx\","
                              "\"env\":{\"NEW\":\"env-secret-2\"},\"auth_token\":\"tok-secret-2\"}",
                              prev);
    json_t *env = json_object_get(json_object_get(st, "config"), "env");
    assert_int_equal(json_object_size(env), 1);
    expect_sealed(f, env, "NEW", "env-secret-2");
    expect_sealed(f, st, "auth_token", "tok-secret-2");
    json_decref(st);

    /* An empty env and an empty token clear them. */
    st = normalize_ok(f, "{\"name\":\"gh\",\"command\":\"npx\",\"env\":{},\"auth_token\":\"\"}",
                      prev);
    assert_int_equal(json_object_size(json_object_get(json_object_get(st, "config"), "env")), 0);
    assert_true(json_is_null(json_object_get(st, "auth_token")));
    json_decref(st);
    json_decref(prev);
}

static void test_update_keeps_omitted_secrets_http(void **state)
{
    fixture_t *f = *state;
    json_t *prev = normalize_ok(f,
                                "{\"name\":\"r\",\"url\":\"https://x.example/mcp\","
                                "\"headers\":{\"Authorization\":\"Bearer hdr-secret-1\"},"
                                "\"auth_token\":\"tok-secret-1\"}",
                                NULL);
    json_t *st = normalize_ok(f, "{\"name\":\"r\",\"url\":\"https://y.example/mcp\"}", prev);
    json_t *h = json_object_get(json_object_get(st, "config"), "headers");
    assert_true(json_equal(h, json_object_get(json_object_get(prev, "config"), "headers")));
    expect_sealed(f, h, "Authorization", "Bearer hdr-secret-1");
    expect_sealed(f, st, "auth_token", "tok-secret-1");
    assert_string_equal(json_string_value(json_object_get(st, "base_url")),
                        "https://y.example/mcp");
    json_decref(st);
    json_decref(prev);
}

static void test_update_without_prev_secrets(void **state)
{
    fixture_t *f = *state;
    json_t *prev = normalize_ok(f, "{\"name\":\"gh\",\"command\":\"npx\"}", NULL);
    json_t *st = normalize_ok(f, "{\"name\":\"gh\",\"command\":\"npx\"}", prev);
    assert_true(json_is_null(json_object_get(st, "auth_token")));
    assert_int_equal(json_object_size(json_object_get(json_object_get(st, "config"), "env")), 0);
    json_decref(st);
    json_decref(prev);
}

static void test_update_refused_leaves_prev_alone(void **state)
{
    fixture_t *f = *state;
    json_t *prev =
        normalize_ok(f, "{\"name\":\"gh\",\"command\":\"npx\",\"auth_token\":\"t1\"}", NULL);
    json_t *copy = json_deep_copy(prev);
    json_t *in = J("{\"name\":\"gh\",\"command\":\"npx\",\"timeout_ms\":0}");
    aos_err_t err = {0};
    assert_null(aos_registry_normalize(in, prev, f->box, &err));
    assert_int_equal(err.code, AOS_EINVAL);
    assert_true(json_equal(prev, copy));
    /* The prev's references are intact (ASan would catch a double free). */
    assert_int_equal(json_object_get(prev, "auth_token")->refcount, 1);
    json_decref(in);
    json_decref(copy);
    json_decref(prev);
}

/* ---- public form ---- */

static void test_public_stdio_hides_secrets(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(f,
                              "{\"name\":\"gh\",\"command\":\"npx\",\"args\":[\"-y\",\"srv\"],"
                              "\"env\":{\"TOKEN\":\"s3cret-env\",\"HOME\":\"/h\"},\"cwd\":\"/w\","
                              "\"auth_token\":\"tok-secret\",\"description\":\"d\"}",
                              NULL);
    json_object_set_new(st, "created_at", json_string("2024-01-01T00:00:00Z"));
    json_object_set_new(st, "updated_at", json_string("2024-01-02T00:00:00Z"));
    json_t *pub = aos_registry_public(st);
    assert_non_null(pub);
    expect_absent(pub, "s3cret-env");
    expect_absent(pub, "tok-secret");
    expect_absent(pub, "v1:"); /* not even sealed text */
    /* the effective limits are shown with their defaults; checked here, then
     * left out of the exact comparison below */
    json_t *lim = json_object_get(pub, "limits");
    assert_non_null(lim);
    assert_int_equal(json_integer_value(json_object_get(lim, "max_concurrency")), 64);
    assert_int_equal(json_integer_value(json_object_get(lim, "retries")), 2);
    json_object_del(pub, "limits");
    assert_string_equal(json_string_value(json_object_get(pub, "session_mode")), "shared");
    json_object_del(pub, "session_mode");
    expect_equal_json(pub, "{\"name\":\"gh\",\"transport\":\"stdio\",\"base_url\":\"stdio:npx\","
                           "\"description\":\"d\",\"capabilities\":{},\"timeout_ms\":30000,"
                           "\"enabled\":true,\"has_auth_token\":true,\"command\":\"npx\","
                           "\"args\":[\"-y\",\"srv\"],\"cwd\":\"/w\","
                           "\"env_keys\":[\"TOKEN\",\"HOME\"],"
                           "\"created_at\":\"2024-01-01T00:00:00Z\","
                           "\"updated_at\":\"2024-01-02T00:00:00Z\"}");
    json_decref(pub);
    json_decref(st);
}

static void test_public_http_hides_secrets(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(f,
                              "{\"name\":\"r\",\"url\":\"https://x.example/mcp\","
                              "\"headers\":{\"Authorization\":\"Bearer hdr-secret\"},"
                              "\"enabled\":false,\"timeout_ms\":10}",
                              NULL);
    json_t *pub = aos_registry_public(st);
    assert_non_null(pub);
    expect_absent(pub, "hdr-secret");
    expect_absent(pub, "v1:");
    /* the effective limits are shown with their defaults; checked here, then
     * left out of the exact comparison below */
    json_t *lim = json_object_get(pub, "limits");
    assert_non_null(lim);
    assert_int_equal(json_integer_value(json_object_get(lim, "max_concurrency")), 64);
    assert_int_equal(json_integer_value(json_object_get(lim, "retries")), 2);
    json_object_del(pub, "limits");
    assert_string_equal(json_string_value(json_object_get(pub, "session_mode")), "shared");
    json_object_del(pub, "session_mode");
    expect_equal_json(pub, "{\"name\":\"r\",\"transport\":\"streamable-http\","
                           "\"base_url\":\"https://x.example/mcp\",\"description\":\"\","
                           "\"capabilities\":{},\"timeout_ms\":10,\"enabled\":false,"
                           "\"has_auth_token\":false,\"url\":\"https://x.example/mcp\","
                           "\"header_names\":[\"Authorization\"]}");
    json_decref(pub);
    json_decref(st);
}

/* Issue 12, item 8: credentials in a URL are never in the public form. */
static void test_public_url_without_credentials(void **state)
{
    fixture_t *f = *state;
    static const struct {
        const char *url, *shown;
    } cases[] = {
        {"https://user:pw-secret@x.example:8443/mcp?api_key=k-secret&v=2#frag",
         "https://[REDACTED]@x.example:8443/mcp?api_key=[REDACTED]&v=[REDACTED]#[REDACTED]"},
        {"http://tok-secret@x.example/mcp", "http://[REDACTED]@x.example/mcp"},
        {"http://x.example/mcp?flag&key=", "http://x.example/mcp?flag&key="},
        {"http://x.example/a@b", "http://x.example/a@b"},
        {"http://127.0.0.1:9/mcp", "http://127.0.0.1:9/mcp"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *in = json_pack("{s:s, s:s}", "name", "r", "url", cases[i].url);
        aos_err_t err = {0};
        json_t *st = aos_registry_normalize(in, NULL, f->box, &err);
        json_decref(in);
        assert_non_null(st);
        json_t *pub = aos_registry_public(st);
        assert_string_equal(json_string_value(json_object_get(pub, "url")), cases[i].shown);
        assert_string_equal(json_string_value(json_object_get(pub, "base_url")), cases[i].shown);
        expect_absent(pub, "secret");
        json_decref(pub);
        /* the stored form keeps the real URL: it is what aosd connects to */
        assert_string_equal(
            json_string_value(json_object_get(json_object_get(st, "config"), "url")), cases[i].url);
        json_decref(st);
    }
}

static void test_public_does_not_share_with_stored(void **state)
{
    fixture_t *f = *state;
    json_t *st = normalize_ok(f, "{\"name\":\"gh\",\"command\":\"npx\",\"args\":[\"a\"]}", NULL);
    json_t *pub = aos_registry_public(st);
    assert_non_null(pub);
    json_decref(pub);
    /* Freeing the public form left the stored one whole. */
    expect_equal_json(json_object_get(json_object_get(st, "config"), "args"), "[\"a\"]");
    json_decref(st);
}

/* ---- import ---- */

static void test_import_maps_ide_fields(void **state)
{
    (void)state;
    json_t *doc = J("{\"mcpServers\":{"
                    "\"gh\":{\"command\":\"npx\",\"args\":[\"-y\",\"srv\"],\"env\":{\"K\":\"V\"}},"
                    "\"remote\":{\"type\":\"http\",\"url\":\"https://x.example/mcp\","
                    "\"headers\":{\"Authorization\":\"Bearer z\"}},"
                    "\"camel\":{\"type\":\"streamableHttp\",\"url\":\"https://c.example\"},"
                    "\"dashed\":{\"type\":\"streamable-http\",\"url\":\"https://d.example\"},"
                    "\"local\":{\"type\":\"stdio\",\"command\":\"srv\"},"
                    "\"legacy\":{\"type\":\"sse\",\"url\":\"https://s.example/sse\"},"
                    "\"off\":{\"command\":\"c\",\"disabled\":true},"
                    "\"on\":{\"command\":\"c\",\"disabled\":false}}}");
    aos_err_t err = {0};
    json_t *out = aos_registry_import(doc, &err);
    assert_non_null(out);
    /* In file order, each entry named by its key. */
    expect_equal_json(out, "["
                           "{\"name\":\"gh\",\"command\":\"npx\",\"args\":[\"-y\",\"srv\"],"
                           "\"env\":{\"K\":\"V\"}},"
                           "{\"name\":\"remote\",\"transport\":\"streamable-http\","
                           "\"url\":\"https://x.example/mcp\","
                           "\"headers\":{\"Authorization\":\"Bearer z\"}},"
                           "{\"name\":\"camel\",\"transport\":\"streamable-http\","
                           "\"url\":\"https://c.example\"},"
                           "{\"name\":\"dashed\",\"transport\":\"streamable-http\","
                           "\"url\":\"https://d.example\"},"
                           "{\"name\":\"local\",\"transport\":\"stdio\",\"command\":\"srv\"},"
                           "{\"name\":\"legacy\",\"transport\":\"sse\","
                           "\"url\":\"https://s.example/sse\"},"
                           "{\"name\":\"off\",\"command\":\"c\",\"enabled\":false},"
                           "{\"name\":\"on\",\"command\":\"c\",\"enabled\":true}"
                           "]");
    const char *order[] = {"gh", "remote", "camel", "dashed", "local", "legacy", "off", "on"};
    assert_int_equal(json_array_size(out), 8);
    for (size_t i = 0; i < 8; i++)
        assert_string_equal(json_string_value(json_object_get(json_array_get(out, i), "name")),
                            order[i]);
    json_decref(out);
    json_decref(doc);
}

static void test_import_then_normalize(void **state)
{
    fixture_t *f = *state;
    json_t *doc =
        J("{\"mcpServers\":{"
          "\"gh\":{\"command\":\"npx\",\"args\":[\"srv\"],\"env\":{\"K\":\"env-secret\"}},"
          "\"remote\":{\"type\":\"http\",\"url\":\"https://x.example/mcp\"},"
          "\"off\":{\"command\":\"c\",\"disabled\":true},"
          "\"legacy\":{\"type\":\"sse\",\"url\":\"https://s.example/sse\"}}}");
    aos_err_t err = {0};
    json_t *entries = aos_registry_import(doc, &err);
    assert_non_null(entries);
    const char *want_transport[] = {"stdio", "streamable-http", "stdio", "sse"};
    const int want_enabled[] = {1, 1, 0, 1};
    for (size_t i = 0; i < json_array_size(entries); i++) {
        json_t *st = aos_registry_normalize(json_array_get(entries, i), NULL, f->box, &err);
        if (!st)
            fail_msg("entry %zu refused: %s", i, err.msg);
        assert_string_equal(json_string_value(json_object_get(st, "transport")), want_transport[i]);
        assert_int_equal(json_is_true(json_object_get(st, "enabled")), want_enabled[i]);
        expect_absent(st, "env-secret");
        json_decref(st);
    }
    json_decref(entries);
    json_decref(doc);
}

static void test_import_empty(void **state)
{
    (void)state;
    json_t *doc = J("{\"mcpServers\":{}}");
    aos_err_t err = {0};
    json_t *out = aos_registry_import(doc, &err);
    assert_non_null(out);
    assert_true(json_is_array(out));
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    json_decref(doc);
}

static void test_import_errors(void **state)
{
    (void)state;
    const char *bad_docs[] = {
        "{}", "{\"servers\":{}}", "{\"mcpServers\":[]}", "{\"mcpServers\":null}", "[]", "\"x\""};
    for (size_t i = 0; i < sizeof(bad_docs) / sizeof(bad_docs[0]); i++) {
        json_t *doc = J(bad_docs[i]);
        aos_err_t err = {0};
        assert_null(aos_registry_import(doc, &err));
        assert_int_equal(err.code, AOS_EINVAL);
        assert_non_null(strstr(err.msg, "mcpServers"));
        json_decref(doc);
    }
    aos_err_t err = {0};
    assert_null(aos_registry_import(NULL, &err));
    assert_int_equal(err.code, AOS_EINVAL);

    /* One bad server fails the whole import, naming it, without leaks. */
    json_t *doc = J("{\"mcpServers\":{\"good\":{\"command\":\"c\"},\"broken\":\"npx srv\"}}");
    assert_null(aos_registry_import(doc, &err));
    assert_int_equal(err.code, AOS_EINVAL);
    assert_non_null(strstr(err.msg, "broken"));
    json_decref(doc);
}

static void test_import_non_string_type_ignored(void **state)
{
    (void)state;
    json_t *doc = J("{\"mcpServers\":{\"a\":{\"type\":5,\"command\":\"c\"}}}");
    aos_err_t err = {0};
    json_t *out = aos_registry_import(doc, &err);
    assert_non_null(out);
    expect_equal_json(out, "[{\"name\":\"a\",\"command\":\"c\"}]");
    json_decref(out);
    json_decref(doc);
}

/* ---- Suspected bug, kept apart for the lead: see the report. ----
 * aos_registry_import copies every key it does not know, so a file written
 * by an IDE that stores its own per-server settings (Cline's "autoApprove",
 * "timeout"; many tools' "alwaysAllow") yields entries that
 * aos_registry_normalize refuses ("unknown field 'autoApprove'"), although
 * registry.h says import's output is "ready for aos_registry_normalize". */
static void test_regression_import_ide_extra_keys_refused_by_normalize(void **state)
{
    fixture_t *f = *state;
    json_t *doc = J("{\"mcpServers\":{\"gh\":{\"command\":\"npx\",\"args\":[\"srv\"],"
                    "\"autoApprove\":[],\"disabled\":false}}}");
    aos_err_t err = {0};
    json_t *entries = aos_registry_import(doc, &err);
    json_decref(doc);
    assert_non_null(entries);
    json_t *st = aos_registry_normalize(json_array_get(entries, 0), NULL, f->box, &err);
    json_decref(entries);
    if (!st)
        fail_msg("normalize refused an imported entry: %s", err.msg);
    json_decref(st);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_name_ok_accepts),
        T(test_name_ok_rejects),
        T(test_normalize_stdio_full),
        T(test_normalize_stdio_defaults),
        T(test_normalize_does_not_modify_input),
        T(test_normalize_http_full),
        T(test_normalize_secret_refs),
        T(test_normalize_http_defaults),
        T(test_normalize_timeout_bounds),
        T(test_reject_not_an_object),
        T(test_reject_unknown_fields),
        T(test_reject_bad_name),
        T(test_reject_bad_types),
        T(test_reject_control_characters),
        T(test_env_passthrough),
        T(test_reject_reserved_names),
        T(test_reject_missing_command),
        T(test_reject_missing_or_bad_url),
        T(test_reject_mixed_transport_fields),
        T(test_sse_transport_and_ca_file),
        T(test_reject_unknown_transport),
        T(test_reject_bad_timeout),
        T(test_reject_error_is_optional),
        T(test_secrets_sealed_with_fresh_nonces),
        T(test_secrets_need_the_same_key),
        T(test_update_keeps_omitted_secrets_stdio),
        T(test_update_replaces_given_secrets),
        T(test_update_keeps_omitted_secrets_http),
        T(test_update_without_prev_secrets),
        T(test_update_refused_leaves_prev_alone),
        T(test_public_stdio_hides_secrets),
        T(test_public_http_hides_secrets),
        T(test_public_url_without_credentials),
        T(test_public_does_not_share_with_stored),
        T(test_import_maps_ide_fields),
        T(test_import_then_normalize),
        T(test_import_empty),
        T(test_import_errors),
        T(test_import_non_string_type_ignored),
        /* Suspected bug, see the comment above the function. */
        T(test_regression_import_ide_extra_keys_refused_by_normalize),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
