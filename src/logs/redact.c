/* redact.c - the default redactor of the log service: literal secrets and
 * the shapes of credentials that show up in logs, replaced by "[REDACTED]"
 * before an entry is stored. One pass over the text; a position is looked
 * at only when its byte can start something to redact. The security issue
 * brings configurable rules later, through aos_logs_set_redactor. */
#include "logs/internal.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MARK        "[REDACTED]"
#define MIN_SECRET  8
#define MAX_SECRETS 512 /* aosd's own, and every registry entry's env and header values */

struct aos_logs_redactor_s {
    char *secrets[MAX_SECRETS];
    size_t lens[MAX_SECRETS];
    int n;
};

aos_logs_redactor_t *aos_logs_redactor_new(void)
{
    return calloc(1, sizeof(aos_logs_redactor_t));
}

void aos_logs_redactor_free(aos_logs_redactor_t *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n; i++)
        free(r->secrets[i]);
    free(r);
}

int aos_logs_redactor_add_secret(aos_logs_redactor_t *r, const char *secret)
{
    if (!r || !secret || strlen(secret) < MIN_SECRET)
        return AOS_EINVAL;
    for (int i = 0; i < r->n; i++)
        if (!strcmp(r->secrets[i], secret))
            return 0;
    if (r->n == MAX_SECRETS)
        return AOS_ETOOBIG;
    char *s = strdup(secret);
    if (!s)
        return AOS_ENOMEM;
    r->secrets[r->n] = s;
    r->lens[r->n++] = strlen(s);
    return 0;
}

static int alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

/* Characters of a token or key: letters, digits and what base64 and
 * base64url add, plus the separators keys use. */
static int key_char(unsigned char c)
{
    return alnum(c) || c == '-' || c == '_' || c == '.' || c == '+' || c == '/' || c == '=' ||
           c == '~';
}

static size_t run(const unsigned char *s, size_t i, size_t len, int (*cls)(unsigned char))
{
    size_t j = i;
    while (j < len && cls(s[j]))
        j++;
    return j - i;
}

static int b64url_char(unsigned char c)
{
    return alnum(c) || c == '-' || c == '_';
}

static int upper_digit(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int has_prefix_ci(const unsigned char *s, size_t i, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len - i >= n && strncasecmp((const char *)s + i, p, n) == 0;
}

static int has_prefix(const unsigned char *s, size_t i, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len - i >= n && memcmp(s + i, p, n) == 0;
}

/* Names whose value is a secret, in a key=value text or as an attribute. */
static const char *const secret_words[] = {
    "password",   "passwd",      "secret",        "token",  "api_key",    "apikey",      "api-key",
    "access_key", "private_key", "authorization", "cookie", "credential", "session_key",
};

static int secret_name(const char *key)
{
    if (!key)
        return 0;
    size_t n = strlen(key);
    for (size_t w = 0; w < sizeof(secret_words) / sizeof(secret_words[0]); w++) {
        size_t m = strlen(secret_words[w]);
        for (size_t i = 0; i + m <= n; i++)
            if (!strncasecmp(key + i, secret_words[w], m))
                return 1;
    }
    return 0;
}

/* A credential shape starting at s[i] (i at a word boundary): the end of
 * the part to replace in *end, and in *keep how many leading bytes stay
 * (e.g. "Bearer "). 0 if none starts here. */
static int credential_at(const unsigned char *s, size_t i, size_t len, size_t *keep, size_t *end)
{
    size_t n;
    *keep = 0;
    switch (s[i]) {
    case 'B':
    case 'b':
        if (has_prefix_ci(s, i, len, "bearer ") || has_prefix_ci(s, i, len, "basic ")) {
            size_t k = (s[i + 1] == 'e' || s[i + 1] == 'E') ? 7 : 6;
            while (i + k < len && s[i + k] == ' ')
                k++;
            n = run(s, i + k, len, key_char);
            if (n >= 8) {
                *keep = k;
                *end = i + k + n;
                return 1;
            }
        }
        break;
    case 's':
        if (has_prefix(s, i, len, "sk-") && (n = run(s, i + 3, len, b64url_char)) >= 16) {
            *end = i + 3 + n;
            return 1;
        }
        break;
    case 'a':
        if (has_prefix(s, i, len, "aos_") && (n = run(s, i + 4, len, b64url_char)) >= 20) {
            *end = i + 4 + n;
            return 1;
        }
        break;
    case 'g':
        if (has_prefix(s, i, len, "github_pat_") && (n = run(s, i + 11, len, b64url_char)) >= 20) {
            *end = i + 11 + n;
            return 1;
        }
        if (len - i > 4 && s[i + 1] == 'h' && s[i + 2] && strchr("pousr", s[i + 2]) &&
            s[i + 3] == '_' && (n = run(s, i + 4, len, alnum)) >= 20) {
            *end = i + 4 + n;
            return 1;
        }
        break;
    case 'x':
        if (len - i > 5 && has_prefix(s, i, len, "xox") && s[i + 3] && strchr("abprs", s[i + 3]) &&
            s[i + 4] == '-' && (n = run(s, i + 5, len, b64url_char)) >= 10) {
            *end = i + 5 + n;
            return 1;
        }
        break;
    case 'A':
        if (has_prefix(s, i, len, "AKIA") && run(s, i + 4, len, upper_digit) >= 16) {
            *end = i + 20;
            return 1;
        }
        break;
    case 'e':
        /* a JWT: header.payload[.signature], both JSON objects in base64url */
        if (has_prefix(s, i, len, "eyJ")) {
            size_t a = run(s, i, len, b64url_char);
            if (a >= 10 && i + a < len && s[i + a] == '.' && has_prefix(s, i + a + 1, len, "eyJ")) {
                size_t b = run(s, i + a + 1, len, b64url_char);
                size_t e = i + a + 1 + b;
                if (e < len && s[e] == '.')
                    e += 1 + run(s, e + 1, len, b64url_char);
                *end = e;
                return 1;
            }
        }
        break;
    }
    return 0;
}

/* "password=...", "\"token\": \"...\"", "api_key: ...": with s[i] at the
 * start of a secret word, the value's start and end. */
static int assignment_at(const unsigned char *s, size_t i, size_t len, size_t *vstart, size_t *vend)
{
    unsigned char c = s[i] | 0x20;
    if (c != 'p' && c != 's' && c != 't' && c != 'a' && c != 'c')
        return 0;
    for (size_t w = 0; w < sizeof(secret_words) / sizeof(secret_words[0]); w++) {
        if (!has_prefix_ci(s, i, len, secret_words[w]))
            continue;
        size_t j = i + strlen(secret_words[w]);
        if (j < len && (s[j] == '"' || s[j] == '\''))
            j++;
        while (j < len && s[j] == ' ')
            j++;
        if (j == len || (s[j] != '=' && s[j] != ':'))
            return 0;
        j++;
        while (j < len && s[j] == ' ')
            j++;
        if (j < len && (s[j] == '"' || s[j] == '\''))
            j++;
        /* "Authorization: Bearer xyz": the secret is what follows the scheme */
        if (has_prefix_ci(s, j, len, "bearer ") || has_prefix_ci(s, j, len, "basic ")) {
            j += (s[j + 1] == 'e' || s[j + 1] == 'E') ? 7 : 6;
            while (j < len && s[j] == ' ')
                j++;
        }
        size_t k = j;
        while (k < len && s[k] != ' ' && s[k] != '"' && s[k] != '\'' && s[k] != ',' &&
               s[k] != ';' && s[k] != '&' && s[k] != '}' && s[k] != ')' && s[k] != '\n' &&
               s[k] != '\t' && s[k] != '\r')
            k++;
        if (k == j)
            return 0;
        *vstart = j;
        *vend = k;
        return 1;
    }
    return 0;
}

int aos_logs_redact_default(const char *key, const char *text, size_t len, aos_buf_t *out,
                            void *data)
{
    const aos_logs_redactor_t *r = data;
    const unsigned char *s = (const unsigned char *)text;
    if (key && secret_name(key) && len > 0) {
        if (aos_buf_puts(out, MARK) < 0)
            return AOS_ENOMEM;
        return 1;
    }
    size_t copied = 0, i = 0;
    int changed = 0;
    while (i < len) {
        size_t from = 0, to = 0, keep = 0;
        int hit = 0;
        for (int k = 0; r && k < r->n && !hit; k++) {
            if (s[i] == (unsigned char)r->secrets[k][0] && len - i >= r->lens[k] &&
                !memcmp(s + i, r->secrets[k], r->lens[k])) {
                from = i;
                to = i + r->lens[k];
                hit = 1;
            }
        }
        if (!hit && (i == 0 || !alnum(s[i - 1]))) {
            if (credential_at(s, i, len, &keep, &to)) {
                from = i + keep;
                hit = 1;
            } else if (assignment_at(s, i, len, &from, &to)) {
                hit = 1;
            }
        }
        if (!hit) {
            i++;
            continue;
        }
        if (aos_buf_append(out, s + copied, from - copied) < 0 || aos_buf_puts(out, MARK) < 0)
            return AOS_ENOMEM;
        copied = i = to;
        changed = 1;
    }
    if (!changed)
        return 0;
    if (aos_buf_append(out, s + copied, len - copied) < 0)
        return AOS_ENOMEM;
    return 1;
}
