/* test_redact.c - the redactor (src/redact): literal values long and
 * short, each built-in pattern with its edges (Chinese resident ID check
 * characters and dates, phone numbers, e-mail, URLs, keys, bearer tokens),
 * overlapping matches, UTF-8 around matches, pattern flags, JSON trees and
 * C strings. Every case states its exact output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "err/err.h"
#include "redact/redact.h"

/* in -> want through r (want NULL: unchanged). */
static void check(aos_redact_t *r, const char *in, const char *want)
{
    aos_buf_t b;
    aos_buf_init(&b, 0);
    int rc = aos_redact_text(r, in, strlen(in), &b);
    if (!want) {
        if (rc != 0)
            fail_msg("'%s' should stay, got '%s'", in, b.ptr);
    } else {
        if (rc != 1)
            fail_msg("'%s' should become '%s', stayed", in, want);
        if (strcmp(b.ptr, want) != 0)
            fail_msg("'%s' became '%s', want '%s'", in, b.ptr, want);
    }
    aos_buf_release(&b);
}

static void test_cn_id(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(AOS_REDACT_CN_ID);
    check(r, "11010519491231002X", "[REDACTED]");
    check(r, "id 11010519491231002x.", "id [REDACTED].");
    check(r, "110105194912310021", NULL);         /* wrong check character */
    check(r, "11010519491231002Y", NULL);         /* not a check character */
    check(r, "310115200002290013", "[REDACTED]"); /* 29 February 2000 */
    check(r, "310115190002290017", NULL);         /* 1900 was no leap year */
    check(r, "440304199013071233", NULL);         /* month 13, check character right */
    check(r, "11010519491231002X5", NULL);        /* a longer number */
    check(r, "911010519491231002X", NULL);        /* likewise, before */
    check(r, "011010519491231002", NULL);         /* starts with 0 */
    check(r, "1101051949123100", NULL);           /* too short */
    check(r,
          "\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81\xef\xbc\x9a"
          "11010519491231002X\xef\xbc\x8c\xe8\xaf\xb7\xe6\xa0\xb8\xe5\xaf\xb9",
          "\xe8\xba\xab\xe4\xbb\xbd\xe8\xaf\x81\xef\xbc\x9a[REDACTED]\xef\xbc\x8c\xe8\xaf\xb7"
          "\xe6\xa0\xb8\xe5\xaf\xb9"); /* 身份证：...，请核对 */
    check(r, "a 11010519491231002X b 310115200002290013", "a [REDACTED] b [REDACTED]");
    aos_redact_free(r);
}

static void test_phone(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(AOS_REDACT_PHONE);
    check(r, "call 13812345678 now", "call [REDACTED] now");
    check(r,
          "\xe7\x94\xb5\xe8\xaf\x9d"
          "13812345678\xe3\x80\x82",
          "\xe7\x94\xb5\xe8\xaf\x9d[REDACTED]\xe3\x80\x82"); /* 电话...。 */
    check(r, "12812345678", NULL);                           /* 12 is no mobile prefix */
    check(r, "138123456789", NULL);                          /* 12 digits */
    check(r, "x13812345678", NULL);                          /* inside a word */
    check(r, "+86 138 1234 5678.", "[REDACTED].");
    check(r, "tel:+1-202-555-0143", "tel:[REDACTED]");
    check(r, "+12 345", NULL);     /* too few digits */
    check(r, "+0123456789", NULL); /* no country code starts with 0 */
    check(r, "t=+08:00", NULL);
    check(r, "+1234567890123456", NULL);                 /* 16 digits */
    check(r, "13812345678@qq.com", "[REDACTED]@qq.com"); /* e-mail off */
    aos_redact_free(r);
}

static void test_email(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(AOS_REDACT_EMAIL);
    check(r, "mail bob.smith+tag@example.co.uk, thanks", "mail [REDACTED], thanks");
    check(r, "<a@b.io>", "<[REDACTED]>");
    check(r, "user@localhost", NULL);
    check(r, "a@b.c1", NULL);
    check(r, "@example.com", NULL);
    check(r, "x @ y.com", NULL);
    check(r, "\xe9\x82\xae\xe7\xae\xb1 zhang.san@163.com \xe8\xb0\xa2",
          "\xe9\x82\xae\xe7\xae\xb1 [REDACTED] \xe8\xb0\xa2");
    check(r, "end with dot a@b.com.", "end with dot [REDACTED].");
    aos_redact_free(r);
    /* a phone number as the user part: the whole address */
    r = aos_redact_new(AOS_REDACT_EMAIL | AOS_REDACT_PHONE);
    check(r, "13812345678@qq.com", "[REDACTED]");
    check(r, "x 13812345678@qq.com y", "x [REDACTED] y");
    aos_redact_free(r);
}

static void test_url_bearer_keys(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(AOS_REDACT_DEFAULT);
    check(r, "postgres://admin:s3cr3t@db.internal:5432/x",
          "postgres://admin:[REDACTED]@db.internal:5432/x");
    check(r, "https://example.com/a:b@c", NULL);
    check(r, "https://user@host/x", NULL);
    check(r, "Authorization: Bearer abcdefgh12345678", "Authorization: Bearer [REDACTED]");
    check(r, "got bearer abcdefgh12345678 ok", "got bearer [REDACTED] ok");
    check(r, "Bearer short", NULL);
    check(r, "key sk-abcdefghijklmnop1234 end", "key [REDACTED] end");
    check(r, "ghp_abcdefghijklmnopqrstuvwxyz0123", "[REDACTED]");
    check(r, "AKIAABCDEFGHIJKLMNOP!", "[REDACTED]!");
    check(r, "aos_0123456789abcdefghij", "[REDACTED]");
    check(r, "xsk-abcdefghijklmnop1234", NULL); /* not at a word start */
    check(r, "token=abc&x=1", "token=[REDACTED]&x=1");
    /* how aosd names a caller (aos_auth_actor): a token's id, not its secret */
    check(r, "{\"actor\":\"token:owner\"}", NULL);
    check(r, "by token:tok_0123456789abcdef at 10:00", NULL);
    check(r, "token:tok_0123456789abcdeX", "token:[REDACTED]"); /* not an id */
    check(r, "token:owners", "token:[REDACTED]");
    check(r, "token: owner", "token: [REDACTED]"); /* a header line, not a name */
    check(r, "token=owner", "token=[REDACTED]");
    check(r, "db_password: \"hunter2\"", "db_password: \"[REDACTED]\"");
    check(r, "key=0123456789abcdefXYZ", "key=[REDACTED]");
    check(r, "key=name", NULL);                   /* key= only for a token */
    check(r, "key=abcdefghijklmnopqrst", NULL);   /* no digit: a word */
    check(r, "monkey=0123456789abcdefXYZ", NULL); /* another name */
    check(r, "x-auth: 0123456789abcdefXYZ", "x-auth: [REDACTED]");
    check(r, "a.b eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.sig_1 c", "a.b [REDACTED] c");
    check(r, "mail bob@example.com 13812345678", NULL); /* e-mail and phone are off */
    aos_redact_free(r);
}

static void test_values(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(0);
    assert_int_equal(aos_redact_add_value(r, "abc"), AOS_EINVAL);
    assert_int_equal(aos_redact_add_value(r, ""), AOS_EINVAL);
    assert_int_equal(aos_redact_add_value(r, "hunter2"), 0);
    assert_int_equal(aos_redact_add_value(r, "S3CR3T-VALUE-0001"), 0);
    assert_int_equal(aos_redact_add_value(r, "S3CR3T-VALUE-0001-LONGER"), 0);
    /* short: whole words only */
    check(r, "pw hunter2.", "pw [REDACTED].");
    check(r, "hunter2", "[REDACTED]");
    check(r, "hunter22 xhunter2", NULL);
    check(r, "\xe5\xaf\x86\xe7\xa0\x81hunter2\xe3\x80\x82",
          "\xe5\xaf\x86\xe7\xa0\x81[REDACTED]\xe3\x80\x82"); /* 密码...。 UTF-8 is no word */
    /* long: anywhere; the longest first where two start alike */
    check(r, "aS3CR3T-VALUE-0001b", "a[REDACTED]b");
    check(r, "S3CR3T-VALUE-0001-LONGER!", "[REDACTED]!");
    check(r, "S3CR3T-VALUE-0001S3CR3T-VALUE-0001", "[REDACTED][REDACTED]");
    check(r, "S3CR3T-VALUE-000", NULL);
    /* counted */
    assert_int_equal(aos_redact_add_value(r, "hunter2"), 0);
    assert_int_equal(aos_redact_remove_value(r, "hunter2"), 0);
    check(r, "hunter2", "[REDACTED]");
    assert_int_equal(aos_redact_remove_value(r, "hunter2"), 0);
    check(r, "hunter2", NULL);
    assert_int_equal(aos_redact_remove_value(r, "hunter2"), AOS_ENOTFOUND);
    check(r, "S3CR3T-VALUE-0001", "[REDACTED]");
    aos_redact_free(r);
}

/* The leftmost match wins, then the scan goes on after it. */
static void test_overlaps(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(AOS_REDACT_ALL);
    assert_int_equal(aos_redact_add_value(r, "zz-sk-abcdefghijklmnop"), 0);
    /* the value starts first and holds a key shape */
    check(r, "zz-sk-abcdefghijklmnop1234", "[REDACTED]1234");
    /* a key shape starts first and runs into the value */
    assert_int_equal(aos_redact_add_value(r, "mnop1234.tail"), 0);
    check(r, "sk-abcdefghijklmnop1234.tail", "[REDACTED].tail");
    /* an ID number and a phone number back to back with a space */
    check(r, "11010519491231002X 13812345678", "[REDACTED] [REDACTED]");
    /* a URL whose password is a stored value */
    assert_int_equal(aos_redact_add_value(r, "pa55word-xyz"), 0);
    check(r, "redis://u:pa55word-xyz@h", "redis://u:[REDACTED]@h");
    /* a stored value or a key as the user part: both parts (found by
     * fuzz_redact: the user part was copied out unscanned) */
    assert_int_equal(aos_redact_add_value(r, "S3cr3t-V4lue"), 0);
    check(r, "res://uS3cr3t-V4lue:4ss@h", "res://u[REDACTED]:[REDACTED]@h");
    check(r, "https://ghp_abcdefghijklmnopqrstuvwxyz0123:pw123456@github.com/x",
          "https://[REDACTED]:[REDACTED]@github.com/x");
    check(r, "a://b:c:d@e", "a://b:[REDACTED]@e");
    aos_redact_free(r);
}

static void test_patterns_parse(void **state)
{
    (void)state;
    unsigned p;
    char bad[64];
    assert_int_equal(aos_redact_parse_patterns("keys,email", &p, bad), 0);
    assert_int_equal(p, AOS_REDACT_KEYS | AOS_REDACT_EMAIL);
    assert_int_equal(aos_redact_parse_patterns("+email", &p, bad), 0);
    assert_int_equal(p, AOS_REDACT_DEFAULT | AOS_REDACT_EMAIL);
    assert_int_equal(aos_redact_parse_patterns("-cn_id,+phone", &p, bad), 0);
    assert_int_equal(p, (AOS_REDACT_DEFAULT & ~AOS_REDACT_CN_ID) | AOS_REDACT_PHONE);
    assert_int_equal(aos_redact_parse_patterns("all", &p, bad), 0);
    assert_int_equal(p, AOS_REDACT_ALL);
    assert_int_equal(aos_redact_parse_patterns("none", &p, bad), 0);
    assert_int_equal(p, 0);
    assert_int_equal(aos_redact_parse_patterns("keys,bogus", &p, bad), -1);
    assert_string_equal(bad, "bogus");
    /* patterns switched at run time */
    aos_redact_t *r = aos_redact_new(AOS_REDACT_DEFAULT);
    check(r, "bob@example.com", NULL);
    aos_redact_set_patterns(r, AOS_REDACT_DEFAULT | AOS_REDACT_EMAIL);
    assert_int_equal(aos_redact_patterns(r), AOS_REDACT_DEFAULT | AOS_REDACT_EMAIL);
    check(r, "bob@example.com", "[REDACTED]");
    aos_redact_free(r);
}

/* A field whose name holds a secret word is redacted whatever its value,
 * the word in any case and anywhere in the name; a name with none is not. */
static void test_secret_field_names(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(AOS_REDACT_DEFAULT);
    static const char *const secret[] = {
        "password",      "PASSWORD", "db_Password", "x-api-key",     "X-API-KEY",
        "apikey",        "ApiKey",   "passwd",      "client_secret", "SECRET",
        "refresh_token", "Token",    "access_key",  "private_key",   "Authorization",
        "set-cookie",    "Cookie",   "credentials", "session_key",   "my-api_key-2",
        "tokentoken"};
    static const char *const plain[] = {"name",  "pass",    "passw0rd", "tok",     "apikez",
                                        "cook",  "session", "access",   "author",  "key",
                                        "steps", "output",  "",         "p@ssword"};
    aos_buf_t b;
    aos_buf_init(&b, 0);
    for (size_t i = 0; i < sizeof(secret) / sizeof(secret[0]); i++) {
        aos_buf_reset(&b);
        if (aos_redact_field(secret[i], "plain words", 11, &b, r) != 1)
            fail_msg("'%s' is not taken for a secret's name", secret[i]);
        assert_int_equal(b.len, strlen(AOS_REDACT_MARK));
    }
    for (size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++) {
        aos_buf_reset(&b);
        if (aos_redact_field(plain[i], "plain words", 11, &b, r) != 0)
            fail_msg("'%s' is taken for a secret's name", plain[i]);
    }
    aos_buf_reset(&b);
    assert_int_equal(aos_redact_field(NULL, "plain words", 11, &b, r), 0);
    aos_buf_release(&b);
    aos_redact_free(r);
}

static void test_json_and_cstr(void **state)
{
    (void)state;
    aos_redact_t *r = aos_redact_new(AOS_REDACT_DEFAULT);
    assert_int_equal(aos_redact_add_value(r, "VALUE-OF-A-SECRET"), 0);
    json_t *v = json_pack("{s:s, s:s, s:i, s:[s, s], s:{s:s}, s:s}", "password", "x", "msg",
                          "sent Bearer abcdefgh12345678", "n", 5, "list", "ok", "VALUE-OF-A-SECRET",
                          "inner", "api_key", "anything", "name", "plain");
    assert_int_equal(aos_redact_json(r, v), 1);
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
    assert_string_equal(s,
                        "{\"inner\":{\"api_key\":\"[REDACTED]\"},\"list\":[\"ok\",\"[REDACTED]\"],"
                        "\"msg\":\"sent Bearer [REDACTED]\",\"n\":5,\"name\":\"plain\","
                        "\"password\":\"[REDACTED]\"}");
    free(s);
    assert_int_equal(aos_redact_json(r, v), 1); /* the names still say so */
    json_decref(v);
    v = json_pack("{s:s}", "name", "plain");
    assert_int_equal(aos_redact_json(r, v), 0);
    json_decref(v);

    char msg[64] = "bad value 'VALUE-OF-A-SECRET' here";
    assert_int_equal(aos_redact_cstr(r, msg, sizeof(msg)), 1);
    assert_string_equal(msg, "bad value '[REDACTED]' here");
    char tiny[12] = "hi abcd";
    assert_int_equal(aos_redact_add_value(r, "abcd"), 0);
    assert_int_equal(aos_redact_cstr(r, tiny, 8), 1); /* "hi [REDACTED]" does not fit */
    assert_string_equal(tiny, "[REDACT");
    aos_redact_free(r);
}

static void test_global(void **state)
{
    (void)state;
    aos_redact_t *g = aos_redact_global();
    assert_non_null(g);
    assert_ptr_equal(g, aos_redact_global());
    assert_int_equal(aos_redact_patterns(g), AOS_REDACT_DEFAULT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cn_id),          cmocka_unit_test(test_phone),
        cmocka_unit_test(test_email),          cmocka_unit_test(test_url_bearer_keys),
        cmocka_unit_test(test_values),         cmocka_unit_test(test_overlaps),
        cmocka_unit_test(test_patterns_parse), cmocka_unit_test(test_secret_field_names),
        cmocka_unit_test(test_json_and_cstr),  cmocka_unit_test(test_global),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
