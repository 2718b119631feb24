/* redact.c - the redactor of redact.h.
 *
 * One pass over the text. At each byte i:
 *   1. literal values: a bitmap of the values' first two bytes says in one
 *      lookup whether any value can start here; if so, the values that
 *      start with s[i] (a list per first byte, longest first) are compared;
 *   2. the patterns that can start with s[i] (a table of which byte starts
 *      which pattern), tried only at a word boundary where they need one.
 * Found: [from, to) is replaced by the mark (from may lie before i for an
 * e-mail, whose '@' is what is found; it never lies before what was copied
 * out already), and the scan goes on at to. Nothing found: i + 1. So the
 * work is one table lookup per byte plus the patterns' own length at the
 * few bytes that can start one; no regular expressions. */
#include "redact/redact.h"
#include "err/err.h"

#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <uv.h>

typedef struct {
    char *v;
    size_t len;
    int count; /* additions not yet removed */
} value_t;

struct aos_redact_s {
    uv_rwlock_t lock;
    unsigned patterns;
    value_t *vals; /* unsorted; owned */
    size_t nvals, cap;
    /* derived from vals: the values by first byte, longest first */
    value_t **by_byte[256];
    size_t n_by_byte[256];
    uint8_t pair[65536 / 8]; /* bit (a << 8 | b): some value starts with a, b */
};

/* Classes of bytes -------------------------------------------------------------- */

static int alnum(unsigned char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int key_char(unsigned char c)
{
    return alnum(c) || c == '-' || c == '_' || c == '.' || c == '+' || c == '/' || c == '=' ||
           c == '~';
}

static int b64url_char(unsigned char c)
{
    return alnum(c) || c == '-' || c == '_';
}

static int upper_digit(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || digit(c);
}

static int email_local(unsigned char c)
{
    return alnum(c) || c == '.' || c == '_' || c == '%' || c == '+' || c == '-';
}

static size_t run(const unsigned char *s, size_t i, size_t len, int (*cls)(unsigned char))
{
    size_t j = i;
    while (j < len && cls(s[j]))
        j++;
    return j - i;
}

static int has_prefix(const unsigned char *s, size_t i, size_t len, const char *p)
{
    size_t n = strlen(p);
    return len - i >= n && memcmp(s + i, p, n) == 0;
}

/* lower-case ASCII letter of c */
static unsigned char lower(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c | 0x20) : c;
}

/* word at s[i], any case; its first letter is compared first (the common
 * miss costs one comparison) */
static int word_at(const unsigned char *s, size_t i, size_t len, const char *w, size_t n)
{
    if (len - i < n || lower(s[i]) != (unsigned char)w[0])
        return 0;
    for (size_t k = 1; k < n; k++)
        if (lower(s[i + k]) != (unsigned char)w[k])
            return 0;
    return 1;
}

/* Life ------------------------------------------------------------------------- */

aos_redact_t *aos_redact_new(unsigned patterns)
{
    aos_redact_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    if (uv_rwlock_init(&r->lock) != 0) {
        free(r);
        return NULL;
    }
    r->patterns = patterns & AOS_REDACT_ALL;
    return r;
}

static void clear_index(aos_redact_t *r)
{
    for (int b = 0; b < 256; b++) {
        free(r->by_byte[b]);
        r->by_byte[b] = NULL;
        r->n_by_byte[b] = 0;
    }
    memset(r->pair, 0, sizeof(r->pair));
}

void aos_redact_free(aos_redact_t *r)
{
    if (!r)
        return;
    clear_index(r);
    for (size_t i = 0; i < r->nvals; i++) {
        explicit_bzero(r->vals[i].v, r->vals[i].len);
        free(r->vals[i].v);
    }
    free(r->vals);
    uv_rwlock_destroy(&r->lock);
    free(r);
}

void aos_redact_set_patterns(aos_redact_t *r, unsigned patterns)
{
    uv_rwlock_wrlock(&r->lock);
    r->patterns = patterns & AOS_REDACT_ALL;
    uv_rwlock_wrunlock(&r->lock);
}

unsigned aos_redact_patterns(aos_redact_t *r)
{
    uv_rwlock_rdlock(&r->lock);
    unsigned p = r->patterns;
    uv_rwlock_rdunlock(&r->lock);
    return p;
}

static const struct {
    const char *name;
    unsigned bit;
} pattern_names[] = {
    {"keys", AOS_REDACT_KEYS},   {"bearer", AOS_REDACT_BEARER},   {"url", AOS_REDACT_URL},
    {"email", AOS_REDACT_EMAIL}, {"phone", AOS_REDACT_PHONE},     {"cn_id", AOS_REDACT_CN_ID},
    {"all", AOS_REDACT_ALL},     {"default", AOS_REDACT_DEFAULT}, {"none", 0},
};

int aos_redact_parse_patterns(const char *spec, unsigned *out, char bad[64])
{
    unsigned set = 0;
    int relative = 0, any = 0;
    const char *p = spec ? spec : "";
    bad[0] = '\0';
    while (*p) {
        const char *e = strchr(p, ',');
        size_t n = e ? (size_t)(e - p) : strlen(p);
        int sign = 0;
        if (n && (*p == '+' || *p == '-')) {
            sign = *p == '+' ? 1 : -1;
            p++;
            n--;
        }
        unsigned bit = 0;
        int found = 0;
        for (size_t k = 0; k < sizeof(pattern_names) / sizeof(pattern_names[0]) && !found; k++)
            if (strlen(pattern_names[k].name) == n && !strncmp(pattern_names[k].name, p, n)) {
                bit = pattern_names[k].bit;
                found = 1;
            }
        if (!found) {
            snprintf(bad, 64, "%.*s", (int)(n > 60 ? 60 : n), p);
            return -1;
        }
        if (sign) {
            if (!relative && !any)
                set = AOS_REDACT_DEFAULT;
            relative = 1;
            set = sign > 0 ? set | bit : set & ~bit;
        } else {
            set |= bit;
        }
        any = 1;
        p += n;
        if (*p == ',')
            p++;
    }
    *out = set;
    return 0;
}

static int by_len_desc(const void *a, const void *b)
{
    const value_t *x = *(value_t *const *)a, *y = *(value_t *const *)b;
    return (x->len < y->len) - (x->len > y->len);
}

/* Rebuilds the per-byte lists and the pair bitmap (under the write lock). */
static int reindex(aos_redact_t *r)
{
    clear_index(r);
    for (size_t i = 0; i < r->nvals; i++)
        r->n_by_byte[(unsigned char)r->vals[i].v[0]]++;
    for (int b = 0; b < 256; b++) {
        if (r->n_by_byte[b] && !(r->by_byte[b] = malloc(r->n_by_byte[b] * sizeof(value_t *)))) {
            clear_index(r);
            return AOS_ENOMEM;
        }
        r->n_by_byte[b] = 0;
    }
    for (size_t i = 0; i < r->nvals; i++) {
        value_t *v = &r->vals[i];
        unsigned char a = (unsigned char)v->v[0], c = (unsigned char)v->v[1];
        r->by_byte[a][r->n_by_byte[a]++] = v;
        unsigned k = (unsigned)a << 8 | c;
        r->pair[k >> 3] |= (uint8_t)(1u << (k & 7));
    }
    for (int b = 0; b < 256; b++)
        if (r->n_by_byte[b] > 1)
            qsort(r->by_byte[b], r->n_by_byte[b], sizeof(value_t *), by_len_desc);
    return 0;
}

int aos_redact_add_value(aos_redact_t *r, const char *value)
{
    if (!r || !value)
        return AOS_EINVAL;
    size_t n = strlen(value);
    if (n < AOS_REDACT_MIN_VALUE)
        return AOS_EINVAL;
    int rc = 0;
    uv_rwlock_wrlock(&r->lock);
    for (size_t i = 0; i < r->nvals; i++)
        if (r->vals[i].len == n && !memcmp(r->vals[i].v, value, n)) {
            r->vals[i].count++;
            goto out;
        }
    if (r->nvals == r->cap) {
        size_t cap = r->cap ? 2 * r->cap : 16;
        value_t *nv = realloc(r->vals, cap * sizeof(*nv));
        if (!nv) {
            rc = AOS_ENOMEM;
            goto out;
        }
        r->vals = nv;
        r->cap = cap;
    }
    char *copy = malloc(n + 1);
    if (!copy) {
        rc = AOS_ENOMEM;
        goto out;
    }
    memcpy(copy, value, n + 1);
    r->vals[r->nvals++] = (value_t){copy, n, 1};
    rc = reindex(r); /* the lists point into vals, which may have moved */
out:
    uv_rwlock_wrunlock(&r->lock);
    return rc;
}

int aos_redact_remove_value(aos_redact_t *r, const char *value)
{
    if (!r || !value)
        return AOS_EINVAL;
    size_t n = strlen(value);
    int rc = AOS_ENOTFOUND;
    uv_rwlock_wrlock(&r->lock);
    for (size_t i = 0; i < r->nvals; i++) {
        if (r->vals[i].len != n || memcmp(r->vals[i].v, value, n))
            continue;
        rc = 0;
        if (--r->vals[i].count > 0)
            break;
        explicit_bzero(r->vals[i].v, n);
        free(r->vals[i].v);
        r->vals[i] = r->vals[--r->nvals];
        if (reindex(r) < 0)
            rc = AOS_ENOMEM;
        break;
    }
    uv_rwlock_wrunlock(&r->lock);
    return rc;
}

/* Patterns ------------------------------------------------------------------------ */

/* An API-key shape at s[i] (a word boundary): its end in *end. */
static int key_at(const unsigned char *s, size_t i, size_t len, size_t *end)
{
    size_t n;
    switch (s[i]) {
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
        if (len - i > 4 && s[i + 1] == 'h' && strchr("pousr", s[i + 2]) && s[i + 2] &&
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
        if (has_prefix(s, i, len, "eyJ")) { /* a JWT: header.payload[.signature] */
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

/* "Bearer xyz" / "Basic xyz" at s[i]: the credentials' start and end. */
static int bearer_at(const unsigned char *s, size_t i, size_t len, size_t *from, size_t *end)
{
    size_t k;
    if (word_at(s, i, len, "bearer ", 7))
        k = 7;
    else if (word_at(s, i, len, "basic ", 6))
        k = 6;
    else
        return 0;
    while (i + k < len && s[i + k] == ' ')
        k++;
    size_t n = run(s, i + k, len, key_char);
    if (n < 8)
        return 0;
    *from = i + k;
    *end = i + k + n;
    return 1;
}

/* Names whose value is a secret, whatever it looks like. */
static const char *const secret_words[] = {
    "password",   "passwd",      "secret",        "token",  "api_key",    "apikey",      "api-key",
    "access_key", "private_key", "authorization", "cookie", "credential", "session_key",
};
/* Names whose value is a secret when it looks like one (16+ characters of a
 * token, letters and digits). */
static const char *const key_words[] = {"key", "auth", "sig", "signature"};
static const size_t secret_lens[] = {8, 6, 6, 5, 7, 6, 7, 10, 11, 13, 6, 10, 11};
static const size_t key_lens[] = {3, 4, 3, 9};
_Static_assert(sizeof(secret_lens) / sizeof(secret_lens[0]) ==
                   sizeof(secret_words) / sizeof(secret_words[0]),
               "one length per secret word");
_Static_assert(sizeof(key_lens) / sizeof(key_lens[0]) == sizeof(key_words) / sizeof(key_words[0]),
               "one length per key word");

static int high_entropy(const unsigned char *s, size_t from, size_t to)
{
    if (to - from < 16)
        return 0;
    int letters = 0, digits = 0;
    for (size_t k = from; k < to; k++) {
        if (!key_char(s[k]))
            return 0;
        letters |= (s[k] | 0x20) >= 'a' && (s[k] | 0x20) <= 'z';
        digits |= digit(s[k]);
    }
    return letters && digits;
}

/* With s[i] at a name: "name=value", "name: value", "\"name\": \"value\"".
 * The value's start and end; strong: any value, else only a token. */
static int value_after(const unsigned char *s, size_t j, size_t len, int strong, size_t *vstart,
                       size_t *vend)
{
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
    if (strong && (word_at(s, j, len, "bearer ", 7) || word_at(s, j, len, "basic ", 6))) {
        j += (s[j + 1] == 'e' || s[j + 1] == 'E') ? 7 : 6;
        while (j < len && s[j] == ' ')
            j++;
    }
    size_t k = j;
    while (k < len && s[k] != ' ' && s[k] != '"' && s[k] != '\'' && s[k] != ',' && s[k] != ';' &&
           s[k] != '&' && s[k] != '}' && s[k] != ')' && s[k] != '\n' && s[k] != '\t' &&
           s[k] != '\r')
        k++;
    if (k == j || (!strong && !high_entropy(s, j, k)))
        return 0;
    *vstart = j;
    *vend = k;
    return 1;
}

/* "token:owner", "token:tok_0123456789abcdef": how aosd names a caller
 * (aos_auth_actor) in events and audit rows - the token's id, never its
 * secret - with s[i] at "token" (n bytes) and the value at [v, e). */
static int principal_at(const unsigned char *s, size_t i, size_t n, size_t len, size_t v, size_t e)
{
    if (n != 5 || v != i + 6 || i + 5 >= len || s[i + 5] != ':' || (i > 0 && alnum(s[i - 1])))
        return 0;
    if (e - v == 5 && !memcmp(s + v, "owner", 5))
        return 1;
    if (e - v != 20 || memcmp(s + v, "tok_", 4))
        return 0;
    for (size_t k = v + 4; k < e; k++)
        if (!digit(s[k]) && (s[k] < 'a' || s[k] > 'f'))
            return 0;
    return 1;
}

static int assignment_at(const unsigned char *s, size_t i, size_t len, size_t *vstart, size_t *vend)
{
    for (size_t w = 0; w < sizeof(secret_words) / sizeof(secret_words[0]); w++) {
        /* the name may be a suffix of a longer one: db_password=, x-api-key: */
        size_t n = secret_lens[w];
        if (word_at(s, i, len, secret_words[w], n))
            return value_after(s, i + n, len, 1, vstart, vend) &&
                   !principal_at(s, i, n, len, *vstart, *vend);
    }
    for (size_t w = 0; w < sizeof(key_words) / sizeof(key_words[0]); w++) {
        size_t n = key_lens[w];
        if (word_at(s, i, len, key_words[w], n) && !(i + n < len && alnum(s[i + n])))
            return value_after(s, i + n, len, 0, vstart, vend);
    }
    return 0;
}

static int userinfo_char(unsigned char c)
{
    return c > 0x20 && c != 0x7f && c != '/' && c != '?' && c != '#' && c != '@' && c != '"' &&
           c != '\'' && c != '<' && c != '>' && c != ':';
}

/* "scheme://user:password@host" with s[i] the ':' before the password: the
 * password. The user part before it was scanned like any text (it may hold
 * a key or a stored value), so it is looked at again here without regard to
 * what was replaced in it; only the password is replaced. */
static int url_at(const unsigned char *s, size_t i, size_t len, size_t *from, size_t *end)
{
    size_t b = i, lo = i > 512 ? i - 512 : 0;
    while (b > lo && userinfo_char(s[b - 1]))
        b--;
    if (b < 4 || b == i || s[b - 1] != '/' || s[b - 2] != '/' || s[b - 3] != ':' ||
        !alnum(s[b - 4]))
        return 0;
    for (size_t j = i + 1; j < len; j++) {
        unsigned char c = s[j];
        if (c == '@') {
            if (j == i + 1)
                return 0;
            *from = i + 1;
            *end = j;
            return 1;
        }
        if (c == '/' || c == '?' || c == '#' || c <= 0x20 || c == '"' || c == '\'' || c == '<' ||
            c == '>' || c == 0x7f)
            return 0;
    }
    return 0;
}

/* The domain of an e-mail address from s[at] == '@': its end, or 0. */
static size_t email_domain(const unsigned char *s, size_t at, size_t len)
{
    size_t j = at + 1, label = 0, dots = 0, last_label = 0, tld_alpha = 1;
    while (j < len) {
        unsigned char c = s[j];
        if (alnum(c) || (c == '-' && label > 0)) {
            label++;
            tld_alpha &= !digit(c) && c != '-';
            j++;
        } else if (c == '.' && label > 0 && j + 1 < len && alnum(s[j + 1])) {
            dots++;
            label = 0;
            tld_alpha = 1;
            j++;
        } else {
            break;
        }
        last_label = label;
    }
    while (j > at + 1 && s[j - 1] == '-') /* a label does not end with '-' */
        j--, last_label--;
    if (!dots || last_label < 2 || !tld_alpha)
        return 0;
    return j;
}

/* An e-mail address around s[at] == '@', its local part not before lo. */
static int email_at(const unsigned char *s, size_t at, size_t lo, size_t len, size_t *from,
                    size_t *end)
{
    size_t b = at;
    while (b > lo && email_local(s[b - 1]))
        b--;
    while (b < at && s[b] == '.')
        b++;
    if (b == at || (b > 0 && b == lo && lo > 0 && alnum(s[lo - 1])))
        return 0;
    size_t e = email_domain(s, at, len);
    if (!e)
        return 0;
    *from = b;
    *end = e;
    return 1;
}

/* 18 characters of a resident identity number at s[i]: 17 digits and a
 * digit or X, a birth date YYYYMMDD at 6..13 (1900..2099), and the check
 * character of ISO 7064 MOD 11-2 (GB 11643-1999). */
static int cn_id_at(const unsigned char *s, size_t i, size_t len)
{
    static const int w[17] = {7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2};
    static const char check[] = "10X98765432";
    if (len - i < 18 || s[i] == '0')
        return 0;
    int sum = 0;
    for (int k = 0; k < 17; k++) {
        if (!digit(s[i + k]))
            return 0;
        sum += (s[i + k] - '0') * w[k];
    }
    unsigned char c = s[i + 17] == 'x' ? 'X' : s[i + 17];
    if (c != (unsigned char)check[sum % 11])
        return 0;
    if (i + 18 < len && alnum(s[i + 18]))
        return 0;
    int y =
        (s[i + 6] - '0') * 1000 + (s[i + 7] - '0') * 100 + (s[i + 8] - '0') * 10 + (s[i + 9] - '0');
    int m = (s[i + 10] - '0') * 10 + (s[i + 11] - '0');
    int d = (s[i + 12] - '0') * 10 + (s[i + 13] - '0');
    static const int days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1900 || y > 2099 || m < 1 || m > 12 || d < 1 || d > days[m - 1])
        return 0;
    if (m == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 0;
    return 1;
}

/* A mobile number of mainland China at s[i]: 1[3-9] and 9 more digits, no
 * digit after. */
static int cn_mobile_at(const unsigned char *s, size_t i, size_t len)
{
    if (len - i < 11 || s[i] != '1' || s[i + 1] < '3' || s[i + 1] > '9')
        return 0;
    for (size_t k = 2; k < 11; k++)
        if (!digit(s[i + k]))
            return 0;
    return !(i + 11 < len && alnum(s[i + 11]));
}

/* "+" and 8..15 digits, the first not 0, groups apart by one space or
 * dash: the end. */
static int intl_phone_at(const unsigned char *s, size_t i, size_t len, size_t *end)
{
    size_t j = i + 1, n = 0, last = 0;
    if (j >= len || s[j] < '1' || s[j] > '9')
        return 0;
    while (j < len && n < 16) {
        if (digit(s[j])) {
            n++;
            j++;
            last = j;
        } else if ((s[j] == ' ' || s[j] == '-') && j + 1 < len && digit(s[j + 1]) &&
                   digit(s[j - 1])) {
            j++;
        } else {
            break;
        }
    }
    if (n < 8 || n > 15 || (last < len && alnum(s[last])))
        return 0;
    *end = last;
    return 1;
}

/* Which patterns a byte can start (at a boundary, except URL and EMAIL). */
static unsigned starts(unsigned char c)
{
    unsigned m = 0;
    switch (c) {
    case 's':
    case 'a':
    case 'g':
    case 'x':
    case 'A':
    case 'e':
        m |= AOS_REDACT_KEYS;
        break;
    case ':':
        m |= AOS_REDACT_URL;
        break;
    case '@':
        m |= AOS_REDACT_EMAIL;
        break;
    case '+':
        m |= AOS_REDACT_PHONE;
        break;
    default:
        break;
    }
    if ((c | 0x20) == 'b')
        m |= AOS_REDACT_BEARER;
    /* the first letters of secret_words and key_words, any case */
    switch (c | 0x20) {
    case 'p':
    case 's':
    case 't':
    case 'a':
    case 'c':
    case 'k':
        if (alnum(c))
            m |= AOS_REDACT_KEYS;
        break;
    default:
        break;
    }
    if (c == '1')
        m |= AOS_REDACT_PHONE;
    if (c >= '1' && c <= '9')
        m |= AOS_REDACT_CN_ID;
    return m;
}

/* The literal value starting at s[i], longest first: its end, or 0. */
static size_t value_at(const aos_redact_t *r, const unsigned char *s, size_t i, size_t len)
{
    if (i + 1 >= len)
        return 0;
    unsigned k = (unsigned)s[i] << 8 | s[i + 1];
    if (!(r->pair[k >> 3] & (1u << (k & 7))))
        return 0;
    value_t *const *l = r->by_byte[s[i]];
    for (size_t n = 0; n < r->n_by_byte[s[i]]; n++) {
        const value_t *v = l[n];
        if (v->len > len - i || memcmp(s + i, v->v, v->len) != 0)
            continue;
        if (v->len < AOS_REDACT_WORD_VALUE &&
            ((i > 0 && alnum(s[i - 1])) || (i + v->len < len && alnum(s[i + v->len]))))
            continue;
        return i + v->len;
    }
    return 0;
}

static unsigned start_table[256]; /* starts(c), filled once */
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* The secret words (by their bit) that start with each byte, as c | 0x20
 * folds it (secret_name). */
static unsigned secret_first[256];
_Static_assert(sizeof(secret_words) / sizeof(secret_words[0]) <= 32, "a bit per secret word");

static void init_table(void)
{
    for (int c = 0; c < 256; c++)
        start_table[c] = starts((unsigned char)c);
    for (size_t w = 0; w < sizeof(secret_words) / sizeof(secret_words[0]); w++)
        secret_first[(unsigned char)secret_words[w][0]] |= 1u << w;
}

static int scan(const aos_redact_t *r, const unsigned char *s, size_t len, aos_buf_t *out)
{
    const unsigned on = r->patterns;
    const int vals = r->nvals > 0;
    size_t copied = 0, i = 0;
    int changed = 0;
    while (i < len) {
        size_t from = i, to = 0;
        int url = 0;
        unsigned m = start_table[s[i]] & on;
        if (vals)
            to = value_at(r, s, i, len);
        if (!to && m) {
            int boundary = i == 0 || !alnum(s[i - 1]);
            size_t f, e;
            if ((m & AOS_REDACT_KEYS) && boundary && key_at(s, i, len, &e)) {
                to = e;
            } else if ((m & AOS_REDACT_BEARER) && boundary && bearer_at(s, i, len, &f, &e)) {
                from = f;
                to = e;
            } else if ((m & AOS_REDACT_KEYS) && boundary && assignment_at(s, i, len, &f, &e)) {
                from = f;
                to = e;
            } else if ((m & AOS_REDACT_URL) && url_at(s, i, len, &f, &e)) {
                from = f;
                to = e;
                url = 1; /* its '@' is the host's */
            } else if ((m & AOS_REDACT_EMAIL) && email_at(s, i, copied, len, &f, &e)) {
                from = f;
                to = e;
            } else if ((m & AOS_REDACT_CN_ID) && (i == 0 || !alnum(s[i - 1])) &&
                       cn_id_at(s, i, len)) {
                to = i + 18;
            } else if ((m & AOS_REDACT_PHONE) && s[i] == '1' && (i == 0 || !alnum(s[i - 1])) &&
                       cn_mobile_at(s, i, len)) {
                to = i + 11;
            } else if ((m & AOS_REDACT_PHONE) && s[i] == '+' &&
                       (i == 0 || (!alnum(s[i - 1]) && s[i - 1] != '+')) &&
                       intl_phone_at(s, i, len, &e)) {
                to = e;
            }
        }
        if (!to) {
            i++;
            continue;
        }
        /* a match that is an e-mail's user part: the whole address */
        if ((on & AOS_REDACT_EMAIL) && !url && to < len && s[to] == '@') {
            size_t e = email_domain(s, to, len);
            if (e) {
                size_t f = from;
                while (f > copied && email_local(s[f - 1]))
                    f--;
                from = f;
                to = e;
            }
        }
        if (aos_buf_append(out, s + copied, from - copied) < 0 ||
            aos_buf_puts(out, AOS_REDACT_MARK) < 0)
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

int aos_redact_text(aos_redact_t *r, const char *text, size_t len, aos_buf_t *out)
{
    if (!r || !text || !len)
        return 0;
    pthread_once(&table_once, init_table);
    uv_rwlock_rdlock(&r->lock);
    int rc = scan(r, (const unsigned char *)text, len, out);
    uv_rwlock_rdunlock(&r->lock);
    return rc;
}

/* Whether key holds a secret word, in any case. Each word is compared only
 * where key has its first letter (c | 0x20 folds an ASCII capital; a
 * character it folds onto a letter by chance is only compared in full):
 * this runs for every string of every event and span. */
static int secret_name(const char *key)
{
    if (!key)
        return 0;
    pthread_once(&table_once, init_table);
    size_t n = strlen(key);
    /* at each byte only the words that start with it (folded) */
    for (size_t i = 0; i < n; i++) {
        unsigned m = secret_first[(unsigned char)(key[i] | 0x20)];
        while (m) {
            int w = __builtin_ctz(m);
            m &= m - 1;
            if (i + secret_lens[w] <= n && !strncasecmp(key + i, secret_words[w], secret_lens[w]))
                return 1;
        }
    }
    return 0;
}

/* aos_redact_field, under r's read lock already. */
static int field_locked(const char *key, const char *text, size_t len, aos_buf_t *out,
                        aos_redact_t *r)
{
    if (len > 0 && secret_name(key)) {
        if (aos_buf_puts(out, AOS_REDACT_MARK) < 0)
            return AOS_ENOMEM;
        return 1;
    }
    return text && len ? scan(r, (const unsigned char *)text, len, out) : 0;
}

int aos_redact_field(const char *key, const char *text, size_t len, aos_buf_t *out, void *r)
{
    if (len > 0 && secret_name(key)) {
        if (aos_buf_puts(out, AOS_REDACT_MARK) < 0)
            return AOS_ENOMEM;
        return 1;
    }
    return aos_redact_text(r, text, len, out);
}

int aos_redact_cstr(aos_redact_t *r, char *text, size_t cap)
{
    if (!text || !cap)
        return 0;
    aos_buf_t b;
    aos_buf_init(&b, 0);
    size_t n = strnlen(text, cap);
    int rc = aos_redact_text(r, text, n, &b);
    if (rc == 1) {
        if (b.len < cap) {
            memcpy(text, b.ptr, b.len);
            text[b.len] = '\0';
        } else {
            snprintf(text, cap, "%s", AOS_REDACT_MARK);
        }
    } else if (rc < 0) { /* out of memory: say nothing rather than leak */
        snprintf(text, cap, "%s", AOS_REDACT_MARK);
        rc = 1;
    }
    aos_buf_release(&b);
    return rc;
}

static int json_walk(aos_redact_t *r, json_t *v, const char *key, aos_buf_t *b, int depth)
{
    if (depth > 64) /* jansson's parser stops at 2048; aosd's trees are shallow */
        return 0;
    int changed = 0, rc;
    if (json_is_string(v)) {
        aos_buf_reset(b);
        rc = field_locked(key, json_string_value(v), json_string_length(v), b, r);
        if (rc < 0)
            return rc;
        if (rc == 1 && json_string_setn(v, b->ptr ? b->ptr : "", b->len) < 0)
            return AOS_ENOMEM;
        return rc;
    }
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m)
        {
            if ((rc = json_walk(r, m, k, b, depth + 1)) < 0)
                return rc;
            changed |= rc;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if ((rc = json_walk(r, m, key, b, depth + 1)) < 0)
                return rc;
            changed |= rc;
        }
    }
    return changed;
}

int aos_redact_json(aos_redact_t *r, json_t *v)
{
    if (!r || !v)
        return 0;
    aos_buf_t b;
    aos_buf_init(&b, 0);
    /* the read lock once for the whole tree, not once per string */
    pthread_once(&table_once, init_table);
    uv_rwlock_rdlock(&r->lock);
    int rc = json_walk(r, v, NULL, &b, 0);
    uv_rwlock_rdunlock(&r->lock);
    aos_buf_release(&b);
    return rc;
}

static aos_redact_t *global;
static pthread_once_t global_once = PTHREAD_ONCE_INIT;

static void global_make(void)
{
    global = aos_redact_new(AOS_REDACT_DEFAULT);
    if (!global)
        abort();
}

aos_redact_t *aos_redact_global(void)
{
    pthread_once(&global_once, global_make);
    return global;
}
