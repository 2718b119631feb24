/* csvparse.c - the pure parts of csv.clean: encoding detection, dialect
 * sniffing, a streaming record reader (GB18030 decoded with glibc's
 * iconv), and the classification and normalisation of values (numbers
 * with separators, currency, percentages and full-width digits; dates in
 * ISO, slashed, English and Chinese forms; booleans).
 *
 * The reader holds only the record it is reading: decoded text comes in
 * 64 KiB chunks into a buffer that keeps what is not yet consumed. A
 * quoted field left open is given up on after 64 lines or 1 MiB, or at the
 * end of the file: that record is then its first line alone, the quote
 * read as an ordinary character (a "broken quote"), and reading goes on
 * from the next line - so one stray quote costs one row, not the file. */
#include "tools/internal.h"

#include <ctype.h>
#include <errno.h>
#include <iconv.h>
#include <stdlib.h>
#include <string.h>

#include "utf8/utf8.h"

#define CHUNK        (64u << 10)
#define RECORD_MAX   (1u << 20)
#define QUOTED_LINES 64

const char *aos__csv_enc_name(csv_enc_t e)
{
    return e == CSV_ENC_UTF8_BOM ? "utf-8-bom" : e == CSV_ENC_GB18030 ? "gb18030" : "utf-8";
}

csv_enc_t aos__csv_detect_enc(const unsigned char *buf, size_t n)
{
    if (n >= 3 && buf[0] == 0xef && buf[1] == 0xbb && buf[2] == 0xbf)
        return CSV_ENC_UTF8_BOM;
    const unsigned char *p = buf, *end = buf + n;
    while (p < end) {
        if (*p < 0x80) {
            p++;
            continue;
        }
        size_t k = aos_utf8_seq(p, end);
        if (!k) {
            /* a sequence cut by the end of the sample is not evidence */
            if (end - p < 4 && aos_utf8_trim((const char *)buf, n) == (size_t)(p - buf))
                break;
            return CSV_ENC_GB18030;
        }
        p += k;
    }
    return CSV_ENC_UTF8;
}

/* ---- sniffing ---------------------------------------------------------------------------- */

/* Field counts of the first records of sample with delimiter d: the most
 * common count and how many records have it. */
static void count_fields(const char *s, size_t n, char d, char q, size_t *mode, size_t *hits,
                         size_t *records)
{
    size_t counts[64];
    size_t nrec = 0, f = 1;
    int inq = 0, start = 1;
    for (size_t i = 0; i < n && nrec < 64; i++) {
        char c = s[i];
        if (inq) {
            if (c == q) {
                if (i + 1 < n && s[i + 1] == q)
                    i++;
                else
                    inq = 0;
            }
            continue;
        }
        if (q && c == q && start) {
            inq = 1;
            start = 0;
        } else if (c == d) {
            f++;
            start = 1;
        } else if (c == '\n') {
            counts[nrec++] = f;
            f = 1;
            start = 1;
        } else if (c != ' ' && c != '\r') {
            start = 0;
        }
    }
    *records = nrec;
    *mode = 0;
    *hits = 0;
    for (size_t i = 0; i < nrec; i++) {
        size_t h = 0;
        for (size_t k = 0; k < nrec; k++)
            h += counts[k] == counts[i];
        if (h > *hits || (h == *hits && counts[i] > *mode)) {
            *hits = h;
            *mode = counts[i];
        }
    }
}

csv_dialect_t aos__csv_sniff(const char *sample, size_t n)
{
    static const char delims[] = {',', ';', '\t', '|'};
    csv_dialect_t best = {',', '"'};
    size_t best_hits = 0, best_mode = 0;
    /* a sample without a final newline still ends a record */
    for (size_t k = 0; k < sizeof(delims); k++) {
        size_t mode, hits, recs;
        count_fields(sample, n, delims[k], '"', &mode, &hits, &recs);
        if (mode > 1 && (hits > best_hits || (hits == best_hits && mode > best_mode))) {
            best.delim = delims[k];
            best_hits = hits;
            best_mode = mode;
        }
    }
    /* single quotes only when no double quote is used and they open fields */
    if (!memchr(sample, '"', n)) {
        size_t opens = 0;
        for (size_t i = 0; i + 1 < n; i++)
            if (sample[i + 1] == '\'' && (sample[i] == best.delim || sample[i] == '\n'))
                opens++;
        if (opens >= 2)
            best.quote = '\'';
    }
    return best;
}

/* ---- the reader ------------------------------------------------------------------------------ */

struct csv_reader {
    FILE *in;
    csv_enc_t enc;
    csv_dialect_t d;
    iconv_t cd;
    int has_cd;
    char raw[CHUNK]; /* undecoded bytes (GB18030) */
    size_t rawlen;
    int in_eof;
    char *buf; /* decoded UTF-8; [pos, len) not yet consumed */
    size_t pos, len, cap;
    int started;
    char *fb; /* the current record's fields, NUL-separated */
    size_t fcap;
    char **fields;
    size_t *offs; /* the fields' offsets in fb while splitting */
    size_t nfields, fields_cap;
    size_t broken, invalid;
    char error[128];
};

csv_reader_t *aos__csv_reader_new(FILE *in, csv_enc_t enc, csv_dialect_t d)
{
    csv_reader_t *r = calloc(1, sizeof(*r));
    if (!r)
        return NULL;
    r->in = in;
    r->enc = enc;
    r->d = d;
    if (enc == CSV_ENC_GB18030) {
        errno = 0;
        r->cd = iconv_open("UTF-8", "GB18030");
        if (errno) { /* iconv_open fails with (iconv_t)-1 and errno set */
            free(r);
            return NULL;
        }
        r->has_cd = 1;
    }
    r->cap = 4 * CHUNK;
    r->buf = malloc(r->cap);
    if (!r->buf) {
        aos__csv_reader_free(r);
        return NULL;
    }
    return r;
}

void aos__csv_reader_free(csv_reader_t *r)
{
    if (!r)
        return;
    if (r->has_cd)
        iconv_close(r->cd);
    free(r->buf);
    free(r->fb);
    free(r->fields);
    free(r->offs);
    free(r);
}

size_t aos__csv_broken(const csv_reader_t *r)
{
    return r->broken;
}

const char *aos__csv_reader_error(const csv_reader_t *r)
{
    return r->error[0] ? r->error : NULL;
}

/* Moves the unconsumed text to the front and decodes more after it: 1 if
 * text was added, 0 at the end, -1 on error. Offsets into buf from pos
 * stay valid relative to pos (callers keep offsets, not pointers). */
static int fill(csv_reader_t *r)
{
    if (r->pos) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
    }
    if (r->cap - r->len < 4 * CHUNK) {
        size_t nc = r->cap * 2;
        char *nb = realloc(r->buf, nc);
        if (!nb) {
            snprintf(r->error, sizeof(r->error), "out of memory");
            return -1;
        }
        r->buf = nb;
        r->cap = nc;
    }
    if (r->enc != CSV_ENC_GB18030) {
        size_t n = fread(r->buf + r->len, 1, CHUNK, r->in);
        if (n == 0) {
            if (ferror(r->in)) {
                snprintf(r->error, sizeof(r->error), "read failed");
                return -1;
            }
            return 0;
        }
        size_t skip = 0;
        if (!r->started && r->enc == CSV_ENC_UTF8_BOM && n >= 3 &&
            !memcmp(r->buf + r->len, "\xef\xbb\xbf", 3))
            skip = 3;
        r->started = 1;
        memmove(r->buf + r->len, r->buf + r->len + skip, n - skip);
        r->len += n - skip;
        return 1;
    }
    size_t before = r->len;
    while (r->len == before) {
        if (!r->in_eof && r->rawlen < sizeof(r->raw)) {
            size_t n = fread(r->raw + r->rawlen, 1, sizeof(r->raw) - r->rawlen, r->in);
            if (n == 0) {
                if (ferror(r->in)) {
                    snprintf(r->error, sizeof(r->error), "read failed");
                    return -1;
                }
                r->in_eof = 1;
            }
            r->rawlen += n;
        }
        if (r->rawlen == 0)
            return 0;
        char *ip = r->raw, *op = r->buf + r->len;
        size_t il = r->rawlen, ol = r->cap - r->len - 8;
        size_t rc = iconv(r->cd, &ip, &il, &op, &ol);
        r->len = (size_t)(op - r->buf);
        if (rc == (size_t)-1 && (errno == EILSEQ || (errno == EINVAL && r->in_eof))) {
            /* an invalid (or, at the end, incomplete) sequence: U+FFFD */
            memcpy(r->buf + r->len, "\xef\xbf\xbd", 3);
            r->len += 3;
            ip++;
            il--;
            r->invalid++;
        }
        memmove(r->raw, ip, il);
        r->rawlen = il;
        if (r->in_eof && r->len == before && r->rawlen == 0)
            return 0;
    }
    return 1;
}

static int add_field(csv_reader_t *r, size_t off)
{
    if (r->nfields == r->fields_cap) {
        size_t nc = r->fields_cap ? 2 * r->fields_cap : 32;
        char **nf = realloc(r->fields, nc * sizeof(*nf));
        if (!nf)
            return -1;
        r->fields = nf;
        size_t *no = realloc(r->offs, nc * sizeof(*no));
        if (!no)
            return -1;
        r->offs = no;
        r->fields_cap = nc;
    }
    r->offs[r->nfields++] = off;
    return 0;
}

/* Splits buf[s, e) into fields (unquoting), into fb. */
static int split(csv_reader_t *r, size_t s, size_t e)
{
    if (e - s + 1 > r->fcap) {
        size_t nc = e - s + 1 + 256;
        char *nb = realloc(r->fb, nc);
        if (!nb)
            return -1;
        r->fb = nb;
        r->fcap = nc;
    }
    const char *p = r->buf + s, *end = r->buf + e;
    char q = r->d.quote, d = r->d.delim;
    char *o = r->fb;
    r->nfields = 0;
    if (end > p && end[-1] == '\r')
        end--;
    for (;;) {
        if (add_field(r, (size_t)(o - r->fb)))
            return -1;
        const char *f = p;
        while (f < end && *f == ' ')
            f++;
        if (q && f < end && *f == q) {
            p = f + 1;
            for (;;) {
                if (p >= end)
                    break; /* left open (a broken record): to the end */
                if (*p == q) {
                    if (p + 1 < end && p[1] == q) {
                        *o++ = q;
                        p += 2;
                        continue;
                    }
                    p++;
                    break;
                }
                *o++ = *p++;
            }
            /* anything after the closing quote up to the delimiter is kept */
            while (p < end && *p != d)
                *o++ = *p++;
        } else {
            while (p < end && *p != d)
                *o++ = *p++;
        }
        *o++ = '\0';
        if (p >= end)
            break;
        p++; /* the delimiter */
    }
    for (size_t i = 0; i < r->nfields; i++)
        r->fields[i] = r->fb + r->offs[i];
    return 0;
}

int aos__csv_read(csv_reader_t *r, char ***fields, size_t *n)
{
    char q = r->d.quote, d = r->d.delim;
    size_t i = r->pos;
    int inq = 0, start = 1;
    unsigned lines = 0;
    for (;;) {
        if (i >= r->len) {
            size_t off = i - r->pos;
            int rc = fill(r);
            if (rc < 0)
                return -1;
            i = r->pos + off;
            if (rc == 0) {
                if (r->pos == r->len)
                    return 0;
                if (inq)
                    goto broken;
                break; /* the last record has no newline */
            }
            continue;
        }
        char c = r->buf[i];
        if (inq) {
            if (c == q) {
                if (i + 1 >= r->len) {
                    size_t off = i - r->pos;
                    int rc = fill(r);
                    if (rc < 0)
                        return -1;
                    i = r->pos + off;
                }
                if (i + 1 < r->len && r->buf[i + 1] == q) {
                    i += 2;
                    continue;
                }
                inq = 0;
            } else if ((c == '\n' && ++lines > QUOTED_LINES) || i - r->pos > RECORD_MAX) {
                goto broken;
            }
            i++;
            continue;
        }
        if (c == '\n')
            break;
        if (q && c == q && start)
            inq = 1;
        if (c == d)
            start = 1;
        else if (c != ' ')
            start = 0;
        if (i - r->pos > RECORD_MAX) {
            snprintf(r->error, sizeof(r->error), "a record is longer than %u bytes", RECORD_MAX);
            return -1;
        }
        i++;
    }
    if (split(r, r->pos, i) < 0)
        goto oom;
    r->pos = i < r->len ? i + 1 : i;
    *fields = r->fields;
    *n = r->nfields;
    return 1;
broken : {
    /* the record is its first line alone, the stray quote a character */
    r->broken++;
    const char *nl = memchr(r->buf + r->pos, '\n', r->len - r->pos);
    size_t e = nl ? (size_t)(nl - r->buf) : r->len;
    char save = r->d.quote;
    r->d.quote = 0;
    int rc = split(r, r->pos, e);
    r->d.quote = save;
    if (rc < 0)
        goto oom;
    r->pos = nl ? e + 1 : e;
    *fields = r->fields;
    *n = r->nfields;
    return 1;
}
oom:
    snprintf(r->error, sizeof(r->error), "out of memory");
    return -1;
}

/* ---- values --------------------------------------------------------------------------------- */

const char *aos__csv_type_name(csv_type_t t)
{
    static const char *names[] = {"empty", "boolean",  "integer", "decimal",
                                  "date",  "datetime", "text"};
    return names[t];
}

/* Copies v into out (n bytes) with full-width ASCII forms (U+FF01..FF5E)
 * and the ideographic space made ASCII, and spaces trimmed at both ends
 * (ASCII and U+3000, U+00A0). Sets CSV_N_FULLW / CSV_N_TRIM in *flags.
 * Returns the length, or -1 if it does not fit. */
static int fold(const char *v, char *out, size_t n, int *flags)
{
    size_t o = 0;
    const unsigned char *p = (const unsigned char *)v;
    for (; *p; p++) {
        unsigned c = *p;
        if (c == 0xef && p[1] == 0xbc && p[2] >= 0x81 && p[2] <= 0xbf) {
            c = 0x21 + (p[2] - 0x81); /* U+FF01..FF3F */
            p += 2;
            *flags |= CSV_N_FULLW;
        } else if (c == 0xef && p[1] == 0xbd && p[2] >= 0x80 && p[2] <= 0x9e) {
            c = 0x60 + (p[2] - 0x80); /* U+FF40..FF5E */
            p += 2;
            *flags |= CSV_N_FULLW;
        } else if (c == 0xe3 && p[1] == 0x80 && p[2] == 0x80) {
            c = ' '; /* U+3000 */
            p += 2;
            *flags |= CSV_N_FULLW;
        } else if (c == 0xc2 && p[1] == 0xa0) {
            c = ' '; /* no-break space */
            p += 1;
        }
        if (o + 1 >= n)
            return -1;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    size_t s = 0;
    while (s < o && (out[s] == ' ' || out[s] == '\t' || out[s] == '\r' || out[s] == '\n'))
        s++;
    size_t e = o;
    while (e > s &&
           (out[e - 1] == ' ' || out[e - 1] == '\t' || out[e - 1] == '\r' || out[e - 1] == '\n'))
        e--;
    if (s || e != o) {
        memmove(out, out + s, e - s);
        out[e - s] = '\0';
        o = e - s;
    }
    return (int)o;
}

/* ---- numbers ---- */

typedef struct {
    int neg;
    char ip[64]; /* integer digits */
    char fp[64]; /* fraction digits */
    int exp;     /* a power of ten, when written (1e5) */
    int has_exp;
    int flags;
    int percent;
} num_t;

static int starts(const char *s, const char *p)
{
    return !strncmp(s, p, strlen(p));
}

/* parse_num works on a view of the value (*b, *n bytes): trimming and
 * stripping move its ends, nothing is copied or measured again. */

/* Strips a currency sign or code at the front or back of the view. */
static int strip_currency(const char **b, size_t *n)
{
    const char *s = *b;
    size_t len = *n;
    if (!len ||
        (isdigit((unsigned char)s[0]) && (isdigit((unsigned char)s[len - 1]) || s[len - 1] == '%')))
        return 0; /* the common case: digits at both ends */
    static const struct {
        const char *s;
        size_t k;
    } signs[] = {{"US$", 3},
                 {"HK$", 3},
                 {"RMB", 3},
                 {"CNY", 3},
                 {"USD", 3},
                 {"EUR", 3},
                 {"GBP", 3},
                 {"JPY", 3},
                 {"$", 1},
                 {"\xe2\x82\xac" /* € */, 3},
                 {"\xc2\xa3" /* £ */, 2},
                 {"\xc2\xa5" /* ¥ */, 2},
                 {"\xef\xbf\xa5" /* ￥ */, 3},
                 {"\xe5\x85\x83" /* 元 */, 3}};
    for (size_t i = 0; i < sizeof(signs) / sizeof(signs[0]); i++) {
        size_t k = signs[i].k;
        if (len > k && !memcmp(s, signs[i].s, k)) {
            *b += k;
            *n -= k;
            return 1;
        }
        if (len > k && !memcmp(s + len - k, signs[i].s, k)) {
            *n -= k;
            return 1;
        }
    }
    return 0;
}

static void trim_spaces(const char **b, size_t *n)
{
    while (*n && **b == ' ') {
        (*b)++;
        (*n)--;
    }
    while (*n && (*b)[*n - 1] == ' ')
        (*n)--;
}

/* Parses a folded, trimmed number: 0 ok, -1 not a number. */
static int parse_num(const char *v, num_t *x)
{
    memset(x, 0, sizeof(*x));
    size_t n = strlen(v);
    if (n >= 128 || !n || !strpbrk(v, "0123456789"))
        return -1;
    const char *s = v;
    if (s[0] == '(' && n > 2 && s[n - 1] == ')') {
        x->neg = 1;
        x->flags |= CSV_N_NEG;
        s++;
        n -= 2;
        trim_spaces(&s, &n);
    }
    if (n && (s[0] == '-' || s[0] == '+')) {
        x->neg ^= s[0] == '-';
        s++;
        n--;
        trim_spaces(&s, &n);
    }
    if (strip_currency(&s, &n)) {
        x->flags |= CSV_N_CURRENCY;
        trim_spaces(&s, &n);
    }
    if (n && (s[0] == '-' || s[0] == '+') && !x->neg) {
        x->neg = s[0] == '-';
        s++;
        n--;
    }
    if (n && s[n - 1] == '%') {
        x->percent = 1;
        x->flags |= CSV_N_PERCENT;
        n--;
        trim_spaces(&s, &n);
    }
    if (!n)
        return -1;
    const char *end = s + n;
    /* separators: the last of '.' or ',' is the decimal point when both
     * appear; a lone ',' with groups of three is a thousands separator */
    const char *lastdot = memrchr(s, '.', n), *lastcomma = memrchr(s, ',', n);
    char dec = '.';
    if (lastdot && lastcomma)
        dec = lastdot > lastcomma ? '.' : ',';
    else if (lastcomma) {
        const char *first = memchr(s, ',', n);
        size_t after = (size_t)(end - lastcomma - 1);
        int groups = after == 3 && first != s;
        dec = groups ? 0 : ',';
        if (dec == ',' && first != lastcomma)
            return -1; /* "1,2,3" */
    }
    size_t il = 0, fl = 0;
    int in_frac = 0, digits = 0;
    size_t group = 0;
    int grouped = 0;
    for (const char *p = s; p < end; p++) {
        char c = *p;
        if (isdigit((unsigned char)c)) {
            if (in_frac) {
                if (fl + 1 >= sizeof(x->fp))
                    return -1;
                x->fp[fl++] = c;
            } else {
                if (il + 1 >= sizeof(x->ip))
                    return -1;
                x->ip[il++] = c;
                group++;
            }
            digits++;
        } else if (c == dec && !in_frac) {
            if (grouped && group != 3)
                return -1;
            in_frac = 1;
        } else if (!in_frac && (c == ',' || c == '.' || c == ' ' || c == '\'') && c != dec) {
            /* a thousands separator: groups of three after the first */
            if (il == 0 || (grouped && group != 3) || group > 3)
                return -1;
            grouped = 1;
            group = 0;
            x->flags |= CSV_N_THOUSAND;
        } else if ((c == 'e' || c == 'E') && digits && !grouped) {
            char ebuf[128];
            size_t el = (size_t)(end - p - 1);
            memcpy(ebuf, p + 1, el);
            ebuf[el] = '\0';
            char *eend;
            long e = strtol(ebuf, &eend, 10);
            if (*eend || eend == ebuf || e > 300 || e < -300)
                return -1;
            x->exp = (int)e;
            x->has_exp = 1;
            break;
        } else {
            return -1;
        }
    }
    if (!digits || (grouped && group != 3 && !in_frac))
        return -1;
    x->ip[il] = '\0';
    x->fp[fl] = '\0';
    if (!il)
        snprintf(x->ip, sizeof(x->ip), "0");
    return 0;
}

/* The number as plain decimal text: sign, digits, '.', fraction. */
static int num_format(num_t *x, char *out, size_t n)
{
    /* the digits ip fp in one row, the point after il + shift of them;
     * places left of the row or right of it are zeros */
    int shift = (x->has_exp ? x->exp : 0) - (x->percent ? 2 : 0);
    if (shift < -60 || shift > 60)
        return -1;
    char d[128], ib[192], fb[192]; /* ip, fp < 64 bytes each */
    size_t il = strlen(x->ip), fl = strlen(x->fp);
    memcpy(d, x->ip, il);
    memcpy(d + il, x->fp, fl);
    long dl = (long)(il + fl), pt = (long)il + shift;
    size_t ni = 0, nf = 0;
    for (long p = 0; p < pt; p++)
        ib[ni++] = p < dl ? d[p] : '0';
    for (long p = pt; p < dl; p++)
        fb[nf++] = p < 0 ? '0' : d[p];
    /* leading zeros of the integer part; trailing zeros a shift added */
    const char *i = ib;
    while (ni > 1 && i[0] == '0') {
        i++;
        ni--;
    }
    if (!ni) {
        i = "0";
        ni = 1;
    }
    if (x->percent || x->has_exp)
        while (nf && fb[nf - 1] == '0')
            nf--;
    int zero = ni == 1 && i[0] == '0';
    for (size_t k = 0; zero && k < nf; k++)
        zero = fb[k] == '0';
    size_t k = 0;
    if (ni + nf + 3 > n)
        return -1;
    if (x->neg && !zero)
        out[k++] = '-';
    memcpy(out + k, i, ni);
    k += ni;
    if (nf) {
        out[k++] = '.';
        memcpy(out + k, fb, nf);
        k += nf;
    }
    out[k] = '\0';
    return 0;
}

/* ---- dates ---- */

static int days_in(int y, int m)
{
    static const int d[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return d[m - 1];
}

static int month_name(const char *s, size_t *len)
{
    static const char *m[] = {"jan", "feb", "mar", "apr", "may", "jun",
                              "jul", "aug", "sep", "oct", "nov", "dec"};
    static const char *full[] = {"january",   "february", "march",    "april",
                                 "may",       "june",     "july",     "august",
                                 "september", "october",  "november", "december"};
    for (int i = 0; i < 12; i++) {
        size_t fl = strlen(full[i]);
        if (!strncasecmp(s, full[i], fl)) {
            *len = fl;
            return i + 1;
        }
        if (!strncasecmp(s, m[i], 3)) {
            *len = 3;
            if (i == 8 && !strncasecmp(s, "sept", 4))
                *len = 4;
            if (strlen(s) > *len && s[*len] == '.')
                (*len)++;
            return i + 1;
        }
    }
    return 0;
}

typedef struct {
    int y, mo, d, h, mi, s;
    int has_time;
    char zone[16]; /* "Z", "+08:00" or "" */
    int order;     /* slashed a/b/yyyy: 1 day first only, 2 month first only, 3 either */
    int a, b;      /* the two numbers of a slashed date, before the order is known */
} date_t;

static const char *num(const char *p, int min_d, int max_d, int *v)
{
    int n = 0, k = 0;
    while (isdigit((unsigned char)*p) && k < max_d) {
        n = n * 10 + (*p - '0');
        p++;
        k++;
    }
    if (k < min_d || isdigit((unsigned char)*p))
        return NULL;
    *v = n;
    return p;
}

/* Parses a time after a date: " 10:30", "T10:30:15", " 10时30分", with an
 * optional zone. Returns the end or NULL. */
static const char *parse_time(const char *p, date_t *t)
{
    if (*p == 'T' || *p == ' ')
        p++;
    else
        return NULL;
    while (*p == ' ')
        p++;
    const char *q;
    if (!(q = num(p, 1, 2, &t->h)))
        return NULL;
    if (*q == ':') {
        if (!(q = num(q + 1, 2, 2, &t->mi)))
            return NULL;
        if (*q == ':') {
            if (!(q = num(q + 1, 2, 2, &t->s)))
                return NULL;
            if (*q == '.' || *q == ',') { /* fractions of a second are dropped */
                q++;
                while (isdigit((unsigned char)*q))
                    q++;
            }
        }
    } else if (starts(q, "\xe6\x97\xb6") || starts(q, "\xe7\x82\xb9")) { /* 时, 点 */
        q += 3;
        if (*q && !(q = num(q, 1, 2, &t->mi)))
            return NULL;
        if (starts(q, "\xe5\x88\x86")) { /* 分 */
            q += 3;
            if (*q && (q = num(q, 1, 2, &t->s)) && starts(q, "\xe7\xa7\x92")) /* 秒 */
                q += 3;
            if (!q)
                return NULL;
        }
    } else {
        return NULL;
    }
    while (*q == ' ')
        q++;
    if (*q == 'Z') {
        snprintf(t->zone, sizeof(t->zone), "Z");
        q++;
    } else if ((*q == '+' || *q == '-') && isdigit((unsigned char)q[1]) &&
               isdigit((unsigned char)q[2])) {
        /* +08, +08:00, +0800 */
        int zh = (q[1] - '0') * 10 + (q[2] - '0'), zm = 0;
        const char *z = q + 3;
        if (*z == ':')
            z++;
        if (isdigit((unsigned char)z[0]) && isdigit((unsigned char)z[1])) {
            zm = (z[0] - '0') * 10 + (z[1] - '0');
            z += 2;
        } else if (z != q + 3) {
            return NULL; /* "+08:" */
        }
        if (zh > 14 || zm > 59)
            return NULL;
        snprintf(t->zone, sizeof(t->zone), "%c%02d:%02d", *q, zh, zm);
        q = z;
    }
    if (t->h > 23 || t->mi > 59 || t->s > 60)
        return NULL;
    t->has_time = 1;
    return q;
}

/* Parses a folded, trimmed date or date-time: 0 ok, -1 not a date. */
static int parse_date(const char *v, date_t *t)
{
    memset(t, 0, sizeof(*t));
    if (!isalnum((unsigned char)v[0]) || !strpbrk(v, "0123456789"))
        return -1;
    const char *p = v, *q;
    size_t ml = 0;
    int a = 0, b = 0, c = 0;
    if ((q = num(p, 4, 4, &a)) && (*q == '-' || *q == '/' || *q == '.')) {
        /* yyyy-mm-dd, yyyy/m/d, yyyy.m.d */
        char sep = *q;
        if (!(q = num(q + 1, 1, 2, &b)) || *q != sep || !(q = num(q + 1, 1, 2, &c)))
            return -1;
        t->y = a;
        t->mo = b;
        t->d = c;
    } else if ((q = num(p, 4, 4, &a)) && starts(q, "\xe5\xb9\xb4")) {  /* 年 */
        if (!(q = num(q + 3, 1, 2, &b)) || !starts(q, "\xe6\x9c\x88")) /* 月 */
            return -1;
        if (!(q = num(q + 3, 1, 2, &c)))
            return -1;
        if (starts(q, "\xe6\x97\xa5") || starts(q, "\xe5\x8f\xb7")) /* 日, 号 */
            q += 3;
        else
            return -1;
        t->y = a;
        t->mo = b;
        t->d = c;
    } else if ((q = num(p, 1, 2, &a)) && (*q == '/' || *q == '-' || *q == '.') &&
               isdigit((unsigned char)q[1])) {
        /* a/b/yyyy: day or month first, decided per column */
        char sep = *q;
        if (!(q = num(q + 1, 1, 2, &b)) || *q != sep || !(q = num(q + 1, 4, 4, &c)))
            return -1;
        if ((a > 31 || b > 31) || (a > 12 && b > 12) || !a || !b)
            return -1;
        t->y = c;
        t->a = a;
        t->b = b;
        t->order = a > 12 ? 1 : b > 12 ? 2 : 3;
        t->d = a > 12 ? a : b;
        t->mo = a > 12 ? b : a;
    } else if ((q = num(p, 1, 2, &a)) && (*q == ' ' || *q == '-') && (b = month_name(q + 1, &ml))) {
        /* 26 Sep 2025, 26-Sep-2025 */
        char sep = *q;
        q += 1 + ml;
        if (*q != sep || !(q = num(q + 1, 4, 4, &c)))
            return -1;
        t->y = c;
        t->mo = b;
        t->d = a;
    } else if ((b = month_name(p, &ml)) && p[ml] == ' ') {
        /* Sep 26, 2025 / September 26 2025 */
        if (!(q = num(p + ml + 1, 1, 2, &a)))
            return -1;
        if (*q == ',')
            q++;
        if (*q != ' ' || !(q = num(q + 1, 4, 4, &c)))
            return -1;
        t->y = c;
        t->mo = b;
        t->d = a;
    } else {
        return -1;
    }
    if (*q && !(q = parse_time(q, t)))
        return -1;
    if (*q)
        return -1;
    if (t->y < 1000 || t->mo < 1 || t->mo > 12 || t->d < 1 || t->d > days_in(t->y, t->mo))
        return -1;
    return 0;
}

static int parse_bool(const char *v, int *val)
{
    static const char *yes[] = {"true",        "yes", "y", "t", "\xe6\x98\xaf" /* 是 */,
                                "\xe7\x9c\x9f" /* 真 */};
    static const char *no[] = {"false",       "no", "n", "f", "\xe5\x90\xa6" /* 否 */,
                               "\xe5\x81\x87" /* 假 */};
    if (strlen(v) > 5)
        return -1;
    for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
        if (!strcasecmp(v, yes[i])) {
            *val = 1;
            return 0;
        }
        if (!strcasecmp(v, no[i])) {
            *val = 0;
            return 0;
        }
    }
    return -1;
}

int aos__csv_null_token(const char *v)
{
    static const char *nulls[] = {
        "null", "n/a", "na", "nan", "none", "-", "--", "\xe2\x80\x94" /* — */, "#n/a", "?", "nil"};
    char f[16] = "";
    int flags = 0;
    while (*v == ' ' || *v == '\t')
        v++;
    if (!strchr("nN-?#\xe2", *v) || !*v || strlen(v) >= sizeof(f) ||
        fold(v, f, sizeof(f), &flags) < 0)
        return 0;
    for (size_t i = 0; i < sizeof(nulls) / sizeof(nulls[0]); i++)
        if (!strcasecmp(f, nulls[i]))
            return 1;
    return 0;
}

/* The common case of a numeric column, recognised without fold() and
 * parse_num(): -?(0|[1-9][0-9]*)(.[0-9]+)?, at most 40 bytes, not a
 * negative zero integer part ("-0", "-0.5": the slow path decides their
 * sign). Returns CSV_T_INT or CSV_T_DEC, else 0; *len is v's length.
 * classify and normalize answer for such a value exactly what their full
 * paths do (tests/unit/test_csv.c compares them). */
static int plain_number(const char *v, size_t *len)
{
    const char *p = v;
    if (*p == '-')
        p++;
    if (*p < '0' || *p > '9')
        return 0;
    if (*p == '0' && (p != v || (p[1] >= '0' && p[1] <= '9')))
        return 0; /* a negative zero, or a leading zero (an identifier) */
    while (*p >= '0' && *p <= '9')
        p++;
    int t = CSV_T_INT;
    if (*p == '.') {
        const char *d = ++p;
        while (*p >= '0' && *p <= '9')
            p++;
        if (p == d)
            return 0;
        t = CSV_T_DEC;
    }
    if (*p || p - v > 40)
        return 0;
    *len = (size_t)(p - v);
    return t;
}

csv_type_t aos__csv_classify(const char *v, int *order)
{
    size_t pl;
    int plain = plain_number(v, &pl);
    if (plain) {
        *order = 0;
        return (csv_type_t)plain;
    }
    char f[256] = ""; /* all of it: the analyzer cannot follow fold() */
    int flags = 0;
    *order = 0;
    int n = fold(v, f, sizeof(f), &flags);
    if (n < 0)
        return CSV_T_TEXT;
    if (n == 0)
        return CSV_T_EMPTY;
    num_t x;
    if (parse_num(f, &x) == 0) {
        /* an integer with a leading zero is an identifier (zip, code) */
        if (!x.fp[0] && !x.has_exp && !x.percent && x.ip[0] == '0' && x.ip[1])
            return CSV_T_TEXT;
        return x.fp[0] || x.has_exp || x.percent || strchr(f, '.') ? CSV_T_DEC : CSV_T_INT;
    }
    date_t t;
    if (parse_date(f, &t) == 0) {
        *order = t.order;
        return t.has_time ? CSV_T_DATETIME : CSV_T_DATE;
    }
    int b;
    if (parse_bool(f, &b) == 0)
        return CSV_T_BOOL;
    return CSV_T_TEXT;
}

int aos__csv_normalize(const char *v, csv_type_t t, int dayfirst, char *out, size_t n)
{
    size_t pl;
    if ((t == CSV_T_INT || t == CSV_T_DEC) && plain_number(v, &pl)) {
        if (pl + 1 > n)
            return -1;
        memcpy(out, v, pl + 1);
        return 0;
    }
    char f[256] = ""; /* all of it: the analyzer cannot follow fold() */
    int flags = 0;
    size_t vl = strlen(v);
    if (t == CSV_T_TEXT || t == CSV_T_EMPTY) {
        size_t a = 0, e = vl;
        while (a < e && (v[a] == ' ' || v[a] == '\t' || v[a] == '\r' || v[a] == '\n'))
            a++;
        while (e > a &&
               (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' || v[e - 1] == '\n'))
            e--;
        if (e - a + 1 > n)
            return -1;
        memcpy(out, v + a, e - a);
        out[e - a] = '\0';
        return (a || e != vl) ? CSV_N_TRIM : 0;
    }
    int fl = fold(v, f, sizeof(f), &flags);
    if (fl < 0) {
        /* too long to be anything but text: trimmed copy */
        size_t s = 0, e = vl;
        while (s < e && isspace((unsigned char)v[s]))
            s++;
        while (e > s && isspace((unsigned char)v[e - 1]))
            e--;
        if (e - s + 1 > n)
            return -1;
        memcpy(out, v + s, e - s);
        out[e - s] = '\0';
        return t == CSV_T_TEXT ? ((s || e != vl) ? CSV_N_TRIM : 0) : -1;
    }
    /* trimmed, but with full-width forms kept for text */
    int trimmed = 0;
    {
        size_t s = 0, e = vl;
        while (s < e && (v[s] == ' ' || v[s] == '\t' || v[s] == '\r' || v[s] == '\n'))
            s++;
        while (e > s &&
               (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' || v[e - 1] == '\n'))
            e--;
        trimmed = s || e != vl;
    }
    int res = -1;
    if (fl == 0) {
        out[0] = '\0';
        return trimmed ? CSV_N_TRIM : 0;
    }
    if (t == CSV_T_INT || t == CSV_T_DEC) {
        num_t x;
        if (parse_num(f, &x) == 0 && num_format(&x, out, n) == 0) {
            res = flags | x.flags;
        }
    } else if (t == CSV_T_DATE || t == CSV_T_DATETIME) {
        date_t d;
        if (parse_date(f, &d) == 0) {
            if (d.order == 3) {
                d.d = dayfirst ? d.a : d.b;
                d.mo = dayfirst ? d.b : d.a;
            } else if ((d.order == 1 && !dayfirst) || (d.order == 2 && dayfirst)) {
                d.order = -1;
            }
            if (d.order >= 0 && d.mo <= 12 && d.d <= days_in(d.y, d.mo)) {
                int w;
                if (t == CSV_T_DATE && !d.has_time)
                    w = snprintf(out, n, "%04d-%02d-%02d", d.y, d.mo, d.d);
                else
                    w = snprintf(out, n, "%04d-%02d-%02dT%02d:%02d:%02d%s", d.y, d.mo, d.d, d.h,
                                 d.mi, d.s, d.zone);
                if (w > 0 && (size_t)w < n)
                    res = flags | (strcmp(out, f) ? CSV_N_DATE : 0);
            }
        }
    } else if (t == CSV_T_BOOL) {
        int b;
        num_t x;
        if (parse_bool(f, &b) == 0 ||
            (parse_num(f, &x) == 0 && !x.fp[0] && !x.percent &&
             (!strcmp(x.ip, "0") || !strcmp(x.ip, "1")) && (b = x.ip[0] == '1', 1))) {
            snprintf(out, n, "%s", b ? "true" : "false");
            res = flags | (strcmp(out, f) ? CSV_N_BOOL : 0);
        }
    }
    if (res < 0) {
        /* text, or a value that does not fit t: trimmed, as written */
        size_t s = 0, e = vl;
        while (s < e && (v[s] == ' ' || v[s] == '\t' || v[s] == '\r' || v[s] == '\n'))
            s++;
        while (e > s &&
               (v[e - 1] == ' ' || v[e - 1] == '\t' || v[e - 1] == '\r' || v[e - 1] == '\n'))
            e--;
        if (e - s + 1 > n)
            return -1;
        memcpy(out, v + s, e - s);
        out[e - s] = '\0';
        return t == CSV_T_TEXT ? (trimmed ? CSV_N_TRIM : 0) : -1;
    }
    return res | (trimmed ? CSV_N_TRIM : 0);
}
