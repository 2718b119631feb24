/* redact.h - secrets and personal data replaced by "[REDACTED]" before
 * text is stored or sent: in log lines, value events, span attributes,
 * audit diffs and error messages (issue 16, SPEC §11 "secret leakage").
 *
 * A redactor holds
 *   - literal values: every stored secret's value, added when it is set or
 *     unsealed and removed when it is deleted (counted: a value added twice
 *     is removed twice). A value of 8 bytes or more is replaced wherever it
 *     occurs; one of 4 to 7 bytes only as a whole word (no letter or digit
 *     on either side), since a short value inside other words is both
 *     common and a hint about the secret; under 4 bytes it is refused
 *     (AOS_EINVAL): replacing it would say more than it hides;
 *   - built-in patterns, each on or off (AOS_REDACT_*):
 *       KEYS      API-key shapes: sk-..., aos_..., ghp_/gho_/ghu_/ghs_/ghr_,
 *                 github_pat_..., xox[abprs]-..., AKIA + 16, JWTs; the value
 *                 of password=, secret:, token=, api_key=, authorization: ...
 *                 and of key=/auth=/credentials= when it is a long
 *                 high-entropy token (16+ characters, letters and digits);
 *       BEARER    the credentials after "Bearer " or "Basic ";
 *       URL       the password in scheme://user:password@host;
 *       EMAIL     e-mail addresses (user@example.com);
 *       PHONE     mobile numbers of mainland China (1[3-9] + 9 digits) and
 *                 international numbers (+ and 8 to 15 digits, single
 *                 spaces or dashes between groups);
 *       CN_ID     resident identity numbers of China: 18 characters, a valid
 *                 birth date and the ISO 7064 MOD 11-2 check character.
 *     AOS_REDACT_DEFAULT is all but EMAIL and PHONE: addresses and numbers
 *     are often what a log or an audit row is about (a user's login, a
 *     contact field), so a deployment turns them on when its data needs it
 *     (aosd --redact-patterns).
 * Text is scanned once, left to right; at each byte only the patterns that
 * can start with it are tried. The leftmost match wins and the scan goes
 * on after it; a match that runs into an e-mail's '@' (a phone number as
 * the user part) grows to the whole address when EMAIL is on. Bytes other
 * than the matches are copied as they are (UTF-8 around a match stays
 * intact: every pattern starts and ends on an ASCII byte).
 *
 * Threads: every function is safe from any thread; the scanning ones take
 * a read lock, adding and removing values and setting patterns a write
 * lock. The functions do not keep pointers to their arguments. */
#ifndef AOS_REDACT_H
#define AOS_REDACT_H

#include "buf/buf.h"

#include <jansson.h>
#include <stddef.h>

#define AOS_REDACT_MARK "[REDACTED]"

enum {
    AOS_REDACT_KEYS = 1u << 0,
    AOS_REDACT_BEARER = 1u << 1,
    AOS_REDACT_URL = 1u << 2,
    AOS_REDACT_EMAIL = 1u << 3,
    AOS_REDACT_PHONE = 1u << 4,
    AOS_REDACT_CN_ID = 1u << 5,
    AOS_REDACT_ALL = (1u << 6) - 1,
    AOS_REDACT_DEFAULT = AOS_REDACT_KEYS | AOS_REDACT_BEARER | AOS_REDACT_URL | AOS_REDACT_CN_ID,
};

#define AOS_REDACT_MIN_VALUE  4 /* shorter values are refused */
#define AOS_REDACT_WORD_VALUE 8 /* shorter values match whole words only */

typedef struct aos_redact_s aos_redact_t;

/* NULL when out of memory. */
aos_redact_t *aos_redact_new(unsigned patterns);
void aos_redact_free(aos_redact_t *r);

void aos_redact_set_patterns(aos_redact_t *r, unsigned patterns);
unsigned aos_redact_patterns(aos_redact_t *r);
/* "keys,bearer,url,email,phone,cn_id" (any subset, in any order; "all",
 * "none", "default"; "+email" or "-phone" change the default) -> *out; -1
 * with the bad word in bad (64 bytes) if spec has an unknown one. */
int aos_redact_parse_patterns(const char *spec, unsigned *out, char bad[64]);

/* value: NUL-terminated, copied. 0; AOS_EINVAL under AOS_REDACT_MIN_VALUE
 * bytes (nothing added); AOS_ENOMEM. */
int aos_redact_add_value(aos_redact_t *r, const char *value);
/* Drops one addition of value: 0, or AOS_ENOTFOUND. */
int aos_redact_remove_value(aos_redact_t *r, const char *value);

/* Scans text[0..len): 0 when nothing is to be replaced (out untouched), 1
 * when the redacted text was appended to out, or AOS_ENOMEM. */
int aos_redact_text(aos_redact_t *r, const char *text, size_t len, aos_buf_t *out);
/* Like aos_redact_text for the value of a field named key (may be NULL):
 * when the name says it holds a secret (password, secret, token, api_key,
 * authorization, cookie, credential, ...) and text is not empty, the whole
 * value is replaced. The shape of the log service's redactor hook
 * (aos_logs_redact_fn, logs.h), with r as data. */
int aos_redact_field(const char *key, const char *text, size_t len, aos_buf_t *out, void *r);
/* Redacts the NUL-terminated text in place when the result fits in cap
 * bytes (with the NUL), else replaces all of it with the mark: 0
 * unchanged, 1 changed. */
int aos_redact_cstr(aos_redact_t *r, char *text, size_t cap);
/* Every string in v (member values by their member's name, see
 * aos_redact_field), in place: 0 unchanged, 1 changed, or AOS_ENOMEM. */
int aos_redact_json(aos_redact_t *r, json_t *v);

/* The process's redactor: made on first use with AOS_REDACT_DEFAULT; aosd
 * feeds it the values of its secrets and the patterns of its flags, and
 * the modules that store or send text run it. Never NULL once made (an
 * allocation failure at first use aborts: redaction cannot be skipped). */
aos_redact_t *aos_redact_global(void);

#endif
