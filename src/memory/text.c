/* text.c - the terms of a text and the built-in embedding (memory.h).
 *
 * One pass over the UTF-8 decodes each character and sorts it into word
 * characters (ASCII letters and digits, lowercased; fullwidth ones folded
 * to ASCII; other letters outside the CJK and punctuation blocks, as they
 * are), CJK characters, or separators. Words are emitted when a separator
 * or a CJK character ends them; a CJK run as its overlapping bigrams, or
 * its single character.
 *
 * Why not FTS5's own tokenizers: 'unicode61' makes a whole run of Han
 * characters one token, so "检索" would not find "向量检索"; 'trigram'
 * (SQLite 3.34+, here 3.40) needs three characters per query term, and
 * most Chinese words have two. Bigrams computed here, stored as text that
 * FTS5's 'ascii' tokenizer splits at the spaces only, work for both
 * languages, and the same code builds the query and the embedding. */
#include "memory/memory.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum cls { SEP = 0, WORD, CJK };

/* Decodes one character at p (< end): its code point in *cp and length
 * in *len; an invalid byte is U+FFFD of length 1. */
static void decode(const unsigned char *p, const unsigned char *end, uint32_t *cp, size_t *len)
{
    unsigned c = p[0];
    if (c < 0x80) {
        *cp = c;
        *len = 1;
        return;
    }
    size_t n = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
    int ok = c >= 0xc2 && c <= 0xf4 && (size_t)(end - p) >= n;
    uint32_t v = c & (n == 2 ? 0x1f : n == 3 ? 0x0f : 0x07);
    for (size_t i = 1; ok && i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            ok = 0;
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (ok && ((n == 3 && (v < 0x800 || (v >= 0xd800 && v <= 0xdfff))) ||
               (n == 4 && (v < 0x10000 || v > 0x10ffff))))
        ok = 0;
    *cp = ok ? v : 0xfffd;
    *len = ok ? n : 1;
}

static enum cls classify(uint32_t cp)
{
    if (cp < 0x80)
        return (cp >= '0' && cp <= '9') || (cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')
                   ? WORD
                   : SEP;
    if ((cp >= 0x4e00 && cp <= 0x9fff) || (cp >= 0x3400 && cp <= 0x4dbf) ||
        (cp >= 0x20000 && cp <= 0x2ffff) || (cp >= 0xf900 && cp <= 0xfaff) ||
        (cp >= 0x3040 && cp <= 0x30ff) || (cp >= 0xac00 && cp <= 0xd7af) ||
        (cp >= 0x1100 && cp <= 0x11ff) || (cp >= 0x3130 && cp <= 0x318f))
        return cp == 0x30fb ? SEP : CJK; /* katakana middle dot separates */
    if ((cp >= 0xff10 && cp <= 0xff19) || (cp >= 0xff21 && cp <= 0xff3a) ||
        (cp >= 0xff41 && cp <= 0xff5a))
        return WORD;
    if (cp <= 0xbf || cp == 0xd7 || cp == 0xf7 || (cp >= 0x2000 && cp <= 0x2bff) ||
        (cp >= 0x3000 && cp <= 0x303f) || (cp >= 0xfe30 && cp <= 0xfe4f) ||
        (cp >= 0xff00 && cp <= 0xffef) || cp >= 0x1f000 || cp == 0xfffd ||
        (cp >= 0xe000 && cp <= 0xf8ff))
        return SEP;
    return WORD;
}

/* The folded bytes of a word character: ASCII lowercased, fullwidth
 * letters and digits as ASCII; others as they are. Returns the length. */
static size_t fold(uint32_t cp, const unsigned char *p, size_t len, char out[4])
{
    if (cp >= 0xff10 && cp <= 0xff5a)
        cp -= 0xfee0;
    if (cp < 0x80) {
        out[0] = (char)(cp >= 'A' && cp <= 'Z' ? cp + 32 : cp);
        return 1;
    }
    memcpy(out, p, len);
    return len;
}

int aos_memory_terms(const char *text, size_t n, aos_memory_term_fn fn, void *arg)
{
    const unsigned char *p = (const unsigned char *)text, *end = p + n;
    char word[AOS_MEMORY_TERM_MAX];
    size_t wlen = 0;
    int wfull = 0, count = 0, rc;
    /* the CJK run: the previous character's bytes */
    const unsigned char *prev = NULL;
    size_t prev_len = 0;
    int run = 0; /* characters in the current CJK run */
    while (p <= end) {
        uint32_t cp = 0;
        size_t len = 0;
        enum cls c = SEP;
        if (p < end) {
            decode(p, end, &cp, &len);
            c = classify(cp);
        }
        if (c != WORD && wlen) {
            if ((rc = fn(word, wlen, 0, arg)))
                return rc;
            count++;
            wlen = 0;
            wfull = 0;
        }
        if (c != CJK && run) {
            if (run == 1) {
                if ((rc = fn((const char *)prev, prev_len, 1, arg)))
                    return rc;
                count++;
            }
            run = 0;
        }
        if (p == end)
            break;
        if (c == WORD && !wfull) {
            char f[4];
            size_t fl = fold(cp, p, len, f);
            if (wlen + fl <= sizeof(word)) {
                memcpy(word + wlen, f, fl);
                wlen += fl;
            } else {
                wfull = 1; /* cut at a character boundary; the rest is dropped */
            }
        } else if (c == CJK) {
            if (run) {
                if ((rc = fn((const char *)prev, prev_len + len, 1, arg)))
                    return rc;
                count++;
            }
            prev = p;
            prev_len = len;
            run++;
        }
        p += len;
    }
    return count;
}

struct join {
    char *buf;
    size_t len, cap, count;
};

static int join_term(const char *term, size_t len, int cjk, void *arg)
{
    struct join *j = arg;
    if (j->len + len + 2 > j->cap) {
        size_t cap = (j->cap + len + 2) * 2;
        char *b = realloc(j->buf, cap);
        if (!b)
            return AOS_ENOMEM;
        j->buf = b;
        j->cap = cap;
    }
    if (j->len)
        j->buf[j->len++] = ' ';
    memcpy(j->buf + j->len, term, len);
    j->len += len;
    j->count++;
    return 0;
}

int aos_memory_terms_join(const char *text, size_t n, char **out, size_t *count)
{
    struct join j = {malloc(64), 0, 64, 0};
    *out = NULL;
    if (!j.buf)
        return AOS_ENOMEM;
    int rc = aos_memory_terms(text, n, join_term, &j);
    if (rc < 0) {
        free(j.buf);
        return rc;
    }
    j.buf[j.len] = '\0';
    *out = j.buf;
    if (count)
        *count = j.count;
    return 0;
}

/* ---- embedding ---------------------------------------------------------------- */

typedef struct {
    uint64_t h;
    float w;
} feat_t;

struct feats {
    feat_t *f;
    size_t n, cap;
    /* the previous term, for pairs */
    char prev[AOS_MEMORY_TERM_MAX];
    size_t prev_len;
};

static uint64_t hash(char kind, const char *s, size_t n, const char *s2, size_t n2)
{
    uint64_t h = 0xcbf29ce484222325ULL;
    h = (h ^ (unsigned char)kind) * 0x100000001b3ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    if (s2) {
        h = (h ^ 0xff) * 0x100000001b3ULL;
        for (size_t i = 0; i < n2; i++)
            h = (h ^ (unsigned char)s2[i]) * 0x100000001b3ULL;
    }
    /* murmur3's finaliser: every input bit reaches the bucket and sign */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

static int feat_add(struct feats *fs, uint64_t h, float w)
{
    if (fs->n == fs->cap) {
        size_t cap = fs->cap ? fs->cap * 2 : 256;
        feat_t *f = realloc(fs->f, cap * sizeof(*f));
        if (!f)
            return AOS_ENOMEM;
        fs->f = f;
        fs->cap = cap;
    }
    fs->f[fs->n++] = (feat_t){h, w};
    return 0;
}

static int ends(const char *w, size_t n, const char *suf)
{
    size_t k = strlen(suf);
    return n >= k + 3 && !memcmp(w + n - k, suf, k);
}

/* A light English stemmer (an ASCII word of 4+ letters): one inflection
 * off (-s, -es, -ies, -ing, -ed), then one derivation (-ation -> -ate,
 * -ment, -al, -ly), then a final e, so that rotate, rotates, rotating and
 * rotation share "rotat", approve, approved and approval "approv". Writes
 * the stem to out; returns its length (0: not an ASCII word). */
static size_t stem(const char *w, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)w[i] >= 0x80)
            return 0;
    if (n < 4)
        return 0;
    memcpy(out, w, n);
    if (ends(out, n, "ies")) {
        n -= 2;
        out[n - 1] = 'y';
    } else if (ends(out, n, "ing") || ends(out, n, "ed") || ends(out, n, "es")) {
        n -= ends(out, n, "ing") ? 3 : 2;
    } else if (out[n - 1] == 's' && out[n - 2] != 's') {
        n--;
    }
    if (ends(out, n, "ation")) {
        n -= 2;
        out[n - 1] = 'e';
    } else if (ends(out, n, "ment")) {
        n -= 4;
    } else if (ends(out, n, "al") || ends(out, n, "ly")) {
        n -= 2;
    }
    if (n > 3 && out[n - 1] == 'e')
        n--;
    return n;
}

/* English function words: they carry no topic, and without corpus
 * statistics (no IDF) they would make unrelated notes look alike. */
static int stopword(const char *w, size_t n)
{
    static const char *const list[] = {
        "a",     "an",     "and",  "are", "as",    "at",   "be",  "by",  "can", "do",   "does",
        "for",   "from",   "how",  "i",   "in",    "is",   "it",  "its", "of",  "on",   "or",
        "our",   "should", "that", "the", "their", "this", "to",  "was", "we",  "what", "when",
        "where", "which",  "who",  "why", "will",  "with", "you", NULL};
    if (n > 6)
        return 0;
    for (const char *const *s = list; *s; s++)
        if (strlen(*s) == n && !memcmp(*s, w, n))
            return 1;
    return 0;
}

static int embed_term(const char *term, size_t len, int cjk, void *arg)
{
    struct feats *fs = arg;
    if (!cjk && stopword(term, len))
        return 0;
    int rc = feat_add(fs, hash('t', term, len, NULL, 0), 1.0f);
    char st[AOS_MEMORY_TERM_MAX];
    size_t sl = cjk ? 0 : stem(term, len, st);
    if (!rc && sl)
        rc = feat_add(fs, hash('s', st, sl, NULL, 0), 1.0f);
    if (!rc && fs->prev_len)
        rc = feat_add(fs, hash('p', fs->prev, fs->prev_len, term, len), 0.5f);
    if (!rc && cjk) {
        /* the characters of a bigram, weakly: a two-character query term
         * then meets a longer word that shares one character */
        size_t first = 1;
        while (first < len && ((unsigned char)term[first] & 0xc0) == 0x80)
            first++;
        rc = feat_add(fs, hash('c', term, first, NULL, 0), 0.3f);
        if (!rc && first < len)
            rc = feat_add(fs, hash('c', term + first, len - first, NULL, 0), 0.3f);
    } else if (!rc && len >= 3) {
        /* character trigrams of the word (3+ bytes) with boundary marks: ^ab, abc, .. yz$ */
        char b[AOS_MEMORY_TERM_MAX + 2];
        b[0] = '^';
        memcpy(b + 1, term, len);
        b[len + 1] = '$';
        for (size_t i = 0; i + 3 <= len + 2 && !rc; i++)
            rc = feat_add(fs, hash('g', b + i, 3, NULL, 0), 0.25f);
    }
    memcpy(fs->prev, term, len);
    fs->prev_len = len;
    return rc;
}

static int feat_cmp(const void *a, const void *b)
{
    const feat_t *x = a, *y = b;
    return x->h < y->h ? -1 : x->h > y->h;
}

int aos_memory_embed(const char *text, size_t n, float out[AOS_MEMORY_DIMS])
{
    memset(out, 0, AOS_MEMORY_DIMS * sizeof(float));
    struct feats fs = {0};
    int rc = aos_memory_terms(text, n, embed_term, &fs);
    if (rc < 0) {
        free(fs.f);
        return rc;
    }
    if (fs.n)
        qsort(fs.f, fs.n, sizeof(*fs.f), feat_cmp);
    for (size_t i = 0; i < fs.n;) {
        size_t j = i;
        while (j < fs.n && fs.f[j].h == fs.f[i].h)
            j++;
        float w = fs.f[i].w * (1.0f + logf((float)(j - i)));
        uint64_t h = fs.f[i].h;
        out[h % AOS_MEMORY_DIMS] += (h >> 63) ? -w : w;
        i = j;
    }
    free(fs.f);
    double s = 0;
    for (int i = 0; i < AOS_MEMORY_DIMS; i++)
        s += (double)out[i] * out[i];
    if (s > 0) {
        float inv = (float)(1.0 / sqrt(s));
        for (int i = 0; i < AOS_MEMORY_DIMS; i++)
            out[i] *= inv;
    }
    return 0;
}
