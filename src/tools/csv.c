/* csv.c - the skill "csv" (tool clean, csv__clean): cleans a CSV file of
 * the workspace into a new one, with a JSON Schema of its columns and a
 * report of every change.
 *
 * Two passes over the input, both streaming (csvparse.c), so memory does
 * not grow with the file: the first detects the encoding (UTF-8, UTF-8
 * with BOM, GB18030), the dialect and the header and infers each column's
 * type from all its values; the second normalises every value to its
 * column's type, drops empty and duplicate rows and writes UTF-8 CSV
 * (RFC 4180) to a temporary file renamed over the output when complete.
 *
 * Duplicates are found with a set of 64-bit SipHash values of the
 * normalised rows (random key per call): 8 bytes a distinct row, at most
 * DEDUP_ROWS rows (64 MiB of table); past that, further distinct rows are
 * still compared with those in the set but not added, and the report says
 * so (dedupe.limit_reached). Two different rows share a hash with
 * probability ~n^2/2^65 (1e-6 at 10 million rows). */
#include "tools/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "utf8/utf8.h"

#define SAMPLE     (64u << 10)
#define DEDUP_ROWS (4u << 20) /* distinct rows the duplicate set holds */
#define EXAMPLES   3
#define COLS_MAX   1024
#define VALUE_MAX  (64u << 10)

enum {
    R_TRIM,
    R_FULLW,
    R_THOUSAND,
    R_CURRENCY,
    R_PERCENT,
    R_NEG,
    R_DATE,
    R_BOOL,
    R_NULL,
    R_EMPTY_ROWS,
    R_DUP_ROWS,
    R_BROKEN,
    R_PADDED,
    R_MERGED,
    R_INVALID,
    R_N
};
static const char *rule_names[R_N] = {"trimmed",
                                      "full_width",
                                      "thousands_separators",
                                      "currency_symbols",
                                      "percentages",
                                      "negative_parentheses",
                                      "dates",
                                      "booleans",
                                      "null_tokens",
                                      "empty_rows",
                                      "duplicate_rows",
                                      "broken_quotes",
                                      "padded_rows",
                                      "merged_fields",
                                      "invalid_text"};

typedef struct {
    char *name;
    size_t n[CSV_T_TEXT + 1];
    size_t nulls;
    int order_seen; /* bits: 1 day-first only seen, 2 month-first only seen */
    int only01;     /* every integer is 0 or 1 */
    csv_type_t type;
    int dayfirst;
    size_t empty_out; /* empty values written */
} col_t;

typedef struct {
    size_t count[R_N];
    json_t *examples[R_N];
} report_t;

static void note(report_t *rp, int rule, long long record, const char *col, const char *from,
                 const char *to)
{
    rp->count[rule]++;
    if (json_array_size(rp->examples[rule]) >= EXAMPLES)
        return;
    json_t *e = json_pack("{s:I}", "record", (json_int_t)record);
    if (col)
        json_object_set_new(e, "column", json_string(col));
    if (from) {
        char a[200], b[200];
        aos_utf8_scrub(a, sizeof(a), from,
                       strlen(from) > 60 ? aos_utf8_trim(from, 60) : strlen(from));
        json_object_set_new(e, "from", json_string(a));
        if (to) {
            aos_utf8_scrub(b, sizeof(b), to, strlen(to) > 60 ? aos_utf8_trim(to, 60) : strlen(to));
            json_object_set_new(e, "to", json_string(b));
        }
    }
    json_array_append_new(rp->examples[rule], e);
}

/* ---- the duplicate set ---------------------------------------------------------------- */

typedef struct {
    uint64_t *slot;
    size_t cap, used;
    int full;
    unsigned char key[crypto_shorthash_KEYBYTES];
} dedup_t;

static int dedup_grow(dedup_t *s)
{
    size_t nc = s->cap ? s->cap * 2 : 1 << 16;
    uint64_t *ns = calloc(nc, sizeof(*ns));
    if (!ns)
        return -1;
    for (size_t i = 0; i < s->cap; i++) {
        if (!s->slot[i])
            continue;
        size_t k = s->slot[i] & (nc - 1);
        while (ns[k])
            k = (k + 1) & (nc - 1);
        ns[k] = s->slot[i];
    }
    free(s->slot);
    s->slot = ns;
    s->cap = nc;
    return 0;
}

/* 1 if the row was seen before; else remembers it (while there is room). */
static int dedup_seen(dedup_t *s, const unsigned char *row, size_t n)
{
    unsigned char h[crypto_shorthash_BYTES];
    crypto_shorthash(h, row, n, s->key);
    uint64_t v;
    memcpy(&v, h, sizeof(v));
    if (!v)
        v = 1;
    if (!s->cap && dedup_grow(s))
        return 0;
    size_t k = v & (s->cap - 1);
    while (s->slot[k]) {
        if (s->slot[k] == v)
            return 1;
        k = (k + 1) & (s->cap - 1);
    }
    if (s->used >= DEDUP_ROWS) {
        s->full = 1;
        return 0;
    }
    s->slot[k] = v;
    s->used++;
    if (s->used * 2 > s->cap && s->cap < 2 * DEDUP_ROWS && dedup_grow(s))
        s->full = 1;
    return 0;
}

/* ---- output -------------------------------------------------------------------------- */

static void put_field(FILE *o, const char *v, size_t n)
{
    if (!v[strcspn(v, ",\"\r\n")] && v[0] != ' ' && (!n || v[n - 1] != ' ')) {
        fwrite(v, 1, n, o);
        return;
    }
    putc('"', o);
    for (const char *p = v; *p; p++) {
        if (*p == '"')
            putc('"', o);
        putc(*p, o);
    }
    putc('"', o);
}

static const char *schema_type(csv_type_t t)
{
    switch (t) {
    case CSV_T_BOOL:
        return "boolean";
    case CSV_T_INT:
        return "integer";
    case CSV_T_DEC:
        return "number";
    default:
        return "string";
    }
}

static json_t *schema_of(const col_t *c, size_t nc, const char *title)
{
    json_t *props = json_object(), *req = json_array(), *order = json_array();
    for (size_t i = 0; i < nc; i++) {
        json_t *p = json_pack("{s:s, s:s}", "type", schema_type(c[i].type), "x-aos-type",
                              aos__csv_type_name(c[i].type));
        if (c[i].type == CSV_T_DATE)
            json_object_set_new(p, "format", json_string("date"));
        if (c[i].type == CSV_T_DATETIME)
            json_object_set_new(p, "format", json_string("date-time"));
        json_object_set_new(props, c[i].name, p);
        if (!c[i].empty_out)
            json_array_append_new(req, json_string(c[i].name));
        json_array_append_new(order, json_string(c[i].name));
    }
    return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o}", "$schema",
                     "https://json-schema.org/draft/2020-12/schema", "title", title, "type",
                     "object", "properties", props, "required", req, "x-aos-columns", order);
}

/* ---- the two passes ---------------------------------------------------------------------- */

typedef struct {
    tools_job_t *j;
    int in; /* the input, O_RDONLY */
    csv_enc_t enc;
    csv_dialect_t d;
    col_t *cols;
    size_t ncols;
    int header;
    size_t records; /* records read in pass 1 */
    size_t ragged;
    report_t rp;
    dedup_t dd;
    size_t written;
} clean_t;

static csv_reader_t *open_reader(clean_t *c, FILE **f, aos_err_t *err)
{
    int fd = dup(c->in);
    if (fd < 0 || lseek(fd, 0, SEEK_SET) < 0 || !(*f = fdopen(fd, "r"))) {
        if (fd >= 0)
            close(fd);
        aos_err_set(err, AOS_EIO, "unable to read the input: %s", strerror(errno));
        return NULL;
    }
    setvbuf(*f, NULL, _IOFBF, 1 << 20);
    csv_reader_t *r = aos__csv_reader_new(*f, c->enc, c->d);
    if (!r) {
        fclose(*f);
        aos_err_set(err, AOS_ENOMEM, "unable to start reading (iconv)");
    }
    return r;
}

static void classify_into(col_t *col, const char *v)
{
    int order;
    csv_type_t t = aos__csv_classify(v, &order);
    if (t == CSV_T_TEXT && aos__csv_null_token(v)) {
        col->nulls++;
        return;
    }
    if (t == CSV_T_INT && col->only01) {
        while (*v == ' ')
            v++;
        size_t n = strlen(v);
        while (n && v[n - 1] == ' ')
            n--;
        if (n != 1 || (v[0] != '0' && v[0] != '1'))
            col->only01 = 0;
    }
    if (order == 1)
        col->order_seen |= 1;
    else if (order == 2)
        col->order_seen |= 2;
    col->n[t]++;
}

static csv_type_t decide(col_t *c)
{
    size_t *n = c->n;
    size_t total = n[CSV_T_BOOL] + n[CSV_T_INT] + n[CSV_T_DEC] + n[CSV_T_DATE] + n[CSV_T_DATETIME] +
                   n[CSV_T_TEXT];
    c->dayfirst = c->order_seen == 1;
    if (!total || n[CSV_T_TEXT])
        return CSV_T_TEXT;
    if (n[CSV_T_INT] == total)
        return CSV_T_INT;
    if (n[CSV_T_INT] + n[CSV_T_DEC] == total)
        return CSV_T_DEC;
    if (n[CSV_T_BOOL] + n[CSV_T_INT] == total && c->only01)
        return CSV_T_BOOL;
    if (n[CSV_T_DATE] + n[CSV_T_DATETIME] == total && c->order_seen != 3)
        return n[CSV_T_DATETIME] ? CSV_T_DATETIME : CSV_T_DATE;
    return CSV_T_TEXT;
}

static int first_row_is_header(char **f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        int order;
        csv_type_t t = aos__csv_classify(f[i], &order);
        if (t != CSV_T_TEXT && t != CSV_T_BOOL)
            return 0;
        for (size_t k = 0; k < i; k++)
            if (!strcmp(f[i], f[k]))
                return 0;
    }
    return n > 0;
}

static int pass1(clean_t *c, aos_err_t *err)
{
    FILE *f;
    csv_reader_t *r = open_reader(c, &f, err);
    if (!r)
        return err->code;
    char **fields;
    size_t n;
    int rc;
    char **first = NULL;
    size_t nfirst = 0;
    while ((rc = aos__csv_read(r, &fields, &n)) == 1) {
        c->records++;
        if (!c->cols) {
            if (n > COLS_MAX) {
                rc = aos_err_set(err, AOS_EINVAL, "more than %d columns", COLS_MAX);
                goto out;
            }
            c->ncols = n;
            c->cols = calloc(n, sizeof(*c->cols));
            first = calloc(n, sizeof(*first));
            if (!c->cols || !first) {
                rc = aos_err_set(err, AOS_ENOMEM, NULL);
                goto out;
            }
            for (size_t i = 0; i < n; i++) {
                c->cols[i].only01 = 1;
                if (!(first[i] = strdup(fields[i]))) {
                    rc = aos_err_set(err, AOS_ENOMEM, NULL);
                    goto out;
                }
                nfirst++;
            }
            continue;
        }
        if (n != c->ncols)
            c->ragged++;
        for (size_t i = 0; i < n && i < c->ncols; i++)
            if (!c->cols[i].n[CSV_T_TEXT]) /* once text, always text */
                classify_into(&c->cols[i], fields[i]);
        if (n > c->ncols) {
            /* extra fields are merged into the last column: text then */
            for (size_t i = c->ncols; i < n; i++)
                if (fields[i][0]) {
                    c->cols[c->ncols - 1].n[CSV_T_TEXT]++;
                    break;
                }
        }
    }
    if (rc < 0) {
        rc = aos_err_set(err, AOS_EINVAL, "unable to parse the input: %s",
                         aos__csv_reader_error(r) ? aos__csv_reader_error(r) : "read error");
        goto out;
    }
    rc = 0;
    if (!c->cols) {
        rc = aos_err_set(err, AOS_EINVAL, "the input has no records");
        goto out;
    }
    const json_t *h = json_object_get(c->j->args, "header");
    c->header = json_is_boolean(h) ? json_is_true(h) : first_row_is_header(first, nfirst);
    if (!c->header)
        for (size_t i = 0; i < nfirst; i++)
            classify_into(&c->cols[i], first[i]);
    for (size_t i = 0; i < c->ncols; i++) {
        col_t *col = &c->cols[i];
        col->type = decide(col);
        char name[256];
        if (c->header && first && i < nfirst) {
            if (aos__csv_normalize(first[i], CSV_T_TEXT, 0, name, sizeof(name)) < 0)
                name[0] = '\0'; /* longer than a name may be */
        } else {
            name[0] = '\0';
        }
        if (!name[0])
            snprintf(name, sizeof(name), "column_%zu", i + 1);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(c->cols[k].name, name)) {
                size_t l = strlen(name);
                snprintf(name + (l > 200 ? 200 : l), sizeof(name) - 200, "_%zu", i + 1);
                break;
            }
        if (!(col->name = strdup(name))) {
            rc = aos_err_set(err, AOS_ENOMEM, NULL);
            goto out;
        }
    }
out:
    for (size_t i = 0; i < nfirst; i++)
        free(first[i]);
    free(first);
    aos__csv_reader_free(r);
    fclose(f);
    return rc;
}

static const int flag_rule[][2] = {
    {CSV_N_TRIM, R_TRIM},         {CSV_N_FULLW, R_FULLW},     {CSV_N_THOUSAND, R_THOUSAND},
    {CSV_N_CURRENCY, R_CURRENCY}, {CSV_N_PERCENT, R_PERCENT}, {CSV_N_NEG, R_NEG},
    {CSV_N_DATE, R_DATE},         {CSV_N_BOOL, R_BOOL},
};

static int pass2(clean_t *c, FILE *o, aos_err_t *err)
{
    FILE *f;
    csv_reader_t *r = open_reader(c, &f, err);
    if (!r)
        return err->code;
    int dedupe = aos__tools_bool(c->j->args, "dedupe", 1);
    int drop_empty = aos__tools_bool(c->j->args, "drop_empty", 1);
    size_t rcap = 1 << 16;
    char *row = malloc(rcap), *val = malloc(VALUE_MAX + 16), *scrub = malloc(3 * VALUE_MAX + 1);
    size_t *offs = calloc(c->ncols, sizeof(*offs)), *lens = calloc(c->ncols, sizeof(*lens));
    int rc = 0;
    if (!row || !val || !scrub || !offs || !lens) {
        rc = aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    for (size_t i = 0; i < c->ncols; i++) {
        if (i)
            putc(',', o);
        put_field(o, c->cols[i].name, strlen(c->cols[i].name));
    }
    putc('\n', o);
    char **fields;
    size_t n;
    long long record = 0;
    while ((rc = aos__csv_read(r, &fields, &n)) == 1) {
        record++;
        if (record == 1 && c->header)
            continue;
        size_t used = 0;
        int nonempty = 0;
        if (n < c->ncols)
            note(&c->rp, R_PADDED, record, NULL, NULL, NULL);
        for (size_t i = 0; i < c->ncols; i++) {
            col_t *col = &c->cols[i];
            const char *v = i < n ? fields[i] : "";
            if (i == c->ncols - 1 && n > c->ncols) {
                /* extra fields: empty ones dropped, others joined */
                size_t last = n;
                while (last > c->ncols && !fields[last - 1][0])
                    last--;
                if (last > c->ncols) {
                    size_t k = 0;
                    for (size_t x = i; x < last && k < VALUE_MAX; x++)
                        k += (size_t)snprintf(val + k, VALUE_MAX - k, "%s%s", x > i ? "," : "",
                                              fields[x]);
                    note(&c->rp, R_MERGED, record, col->name, NULL, NULL);
                    v = val;
                }
            }
            if (v != val && v[0] && strnlen(v, VALUE_MAX + 1) > VALUE_MAX) {
                rc = aos_err_set(err, AOS_EINVAL, "record %lld: a value is longer than %u bytes",
                                 record, VALUE_MAX);
                goto out;
            }
            /* room for the value as it may grow (scrubbed: 3 bytes a byte) */
            size_t need = used + 3 * (v == val ? strlen(val) : strnlen(v, VALUE_MAX)) + 64;
            if (need > rcap) {
                size_t nc = need * 2;
                char *nr = realloc(row, nc);
                if (!nr) {
                    rc = aos_err_set(err, AOS_ENOMEM, NULL);
                    goto out;
                }
                row = nr;
                rcap = nc;
            }
            char *out = row + used;
            out[0] = '\0';
            int fl;
            if (col->type != CSV_T_TEXT && aos__csv_null_token(v)) {
                note(&c->rp, R_NULL, record, col->name, v, "");
                out[0] = '\0';
                fl = 0;
            } else {
                fl = aos__csv_normalize(v, col->type, col->dayfirst, out, rcap - used);
                if (fl < 0)
                    fl = 0;
            }
            size_t olen = strlen(out);
            if (!aos_utf8_valid(out, olen)) {
                size_t m = aos_utf8_scrub(scrub, 3 * VALUE_MAX + 1, out, olen);
                if (used + m + 1 > rcap)
                    m = 0;
                memcpy(out, scrub, m);
                out[m] = '\0';
                olen = m;
                note(&c->rp, R_INVALID, record, col->name, NULL, NULL);
            }
            for (size_t k = 0; k < sizeof(flag_rule) / sizeof(flag_rule[0]); k++)
                if (fl & flag_rule[k][0])
                    note(&c->rp, flag_rule[k][1], record, col->name, v, out);
            if (out[0])
                nonempty = 1;
            offs[i] = used;
            lens[i] = olen;
            used += olen + 1;
        }
        if (!nonempty && drop_empty) {
            note(&c->rp, R_EMPTY_ROWS, record, NULL, NULL, NULL);
            continue;
        }
        if (dedupe && dedup_seen(&c->dd, (const unsigned char *)row, used)) {
            note(&c->rp, R_DUP_ROWS, record, NULL, NULL, NULL);
            continue;
        }
        for (size_t i = 0; i < c->ncols; i++) {
            if (i)
                putc(',', o);
            if (!lens[i])
                c->cols[i].empty_out++;
            put_field(o, row + offs[i], lens[i]);
        }
        putc('\n', o);
        c->written++;
    }
    if (rc < 0) {
        rc = aos_err_set(err, AOS_EINVAL, "unable to parse the input: %s",
                         aos__csv_reader_error(r) ? aos__csv_reader_error(r) : "read error");
        goto out;
    }
    rc = 0;
    for (size_t b = aos__csv_broken(r); b > 0; b--)
        note(&c->rp, R_BROKEN, -1, NULL, NULL, NULL);
out:
    free(row);
    free(val);
    free(scrub);
    free(offs);
    free(lens);
    aos__csv_reader_free(r);
    fclose(f);
    return rc;
}

/* Writes text to rel durably (temporary file renamed over it). */
static int write_text(int root, const char *rel, const char *text, aos_err_t *err)
{
    int dir = -1;
    char *tmp = NULL;
    int fd = aos__tools_tmpfile(root, rel, &dir, &tmp, err);
    if (fd < 0)
        return fd;
    size_t n = strlen(text), off = 0;
    int rc = 0;
    while (!rc && off < n) {
        ssize_t w = write(fd, text + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            rc = aos_err_set(err, AOS_EIO, "unable to write '%.200s': %s", rel, strerror(errno));
        else
            off += (size_t)w;
    }
    const char *name = strrchr(rel, '/') ? strrchr(rel, '/') + 1 : rel;
    if (!rc)
        rc = aos__tools_commit(dir, tmp, name, fd, err);
    else
        unlinkat(dir, tmp, 0);
    close(fd);
    close(dir);
    free(tmp);
    return rc;
}

/* The existing file at rel (if any) must be a file we may replace. */
static int replaceable(int root, const char *rel, aos_err_t *err)
{
    int fd = aos_tools_ws_open(root, rel, O_RDONLY, 0, 0, err);
    if (fd < 0)
        return err->code == AOS_ENOTFOUND ? 0 : err->code;
    struct stat sb;
    int dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode);
    close(fd);
    return dir ? aos_err_set(err, AOS_EINVAL, "'%.200s' is a directory", rel) : 0;
}

static json_t *run_clean(tools_job_t *j, aos_err_t *err)
{
    clean_t c = {.j = j, .in = -1};
    const char *path = aos__tools_path(j->args, "path", err);
    if (!path)
        return NULL;
    /* no output: <path without extension>.clean.csv, as the planner names it */
    char out_def[4200];
    const char *output;
    if (json_object_get(j->args, "output")) {
        if (!(output = aos__tools_path(j->args, "output", err)))
            return NULL;
    } else {
        const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
        size_t stem =
            dot && dot > path && (!slash || dot > slash + 1) ? (size_t)(dot - path) : strlen(path);
        snprintf(out_def, sizeof(out_def), "%.*s.clean.csv", (int)stem, path);
        output = out_def;
    }
    char schema_def[4200];
    const char *schema = aos__tools_str(j->args, "schema", NULL);
    if (schema) {
        if (!(schema = aos__tools_path(j->args, "schema", err)))
            return NULL;
    } else {
        size_t ol = strlen(output);
        if (ol > 4 && !strcasecmp(output + ol - 4, ".csv"))
            ol -= 4;
        snprintf(schema_def, sizeof(schema_def), "%.*s.schema.json", (int)ol, output);
        schema = schema_def;
    }
    if (!strcmp(path, output) || !strcmp(output, schema) || !strcmp(path, schema))
        return aos_err_set(err, AOS_EINVAL, "path, output and schema must be different files"),
               NULL;
    json_t *res = NULL;
    FILE *o = NULL;
    int dir = -1, ofd = -1;
    char *tmp = NULL;
    for (int i = 0; i < R_N; i++)
        c.rp.examples[i] = json_array();
    crypto_shorthash_keygen(c.dd.key);
    if ((c.in = aos_tools_ws_open(j->root, path, O_RDONLY, 0, 0, err)) < 0)
        goto out;
    struct stat sb;
    if (fstat(c.in, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        aos_err_set(err, AOS_EINVAL, "'%.200s' is not a file", path);
        goto out;
    }
    /* encoding and dialect from the first 64 KiB */
    unsigned char *sample = malloc(SAMPLE + 1);
    if (!sample) {
        aos_err_set(err, AOS_ENOMEM, NULL);
        goto out;
    }
    ssize_t sn = pread(c.in, sample, SAMPLE, 0);
    if (sn < 0) {
        free(sample);
        aos_err_set(err, AOS_EIO, "unable to read '%.200s': %s", path, strerror(errno));
        goto out;
    }
    const char *enc = aos__tools_str(j->args, "encoding", "auto");
    if (!strcasecmp(enc, "gb18030") || !strcasecmp(enc, "gbk") || !strcasecmp(enc, "gb2312"))
        c.enc = CSV_ENC_GB18030;
    else if (!strcasecmp(enc, "utf-8") || !strcasecmp(enc, "utf8"))
        c.enc = sn >= 3 && !memcmp(sample, "\xef\xbb\xbf", 3) ? CSV_ENC_UTF8_BOM : CSV_ENC_UTF8;
    else if (!strcmp(enc, "auto"))
        c.enc = aos__csv_detect_enc(sample, (size_t)sn);
    else {
        free(sample);
        aos_err_set(err, AOS_EINVAL, "'encoding' must be auto, utf-8 or gb18030");
        goto out;
    }
    {
        /* the sample as text for sniffing: a reader over it gives UTF-8 */
        FILE *sf = fmemopen(sample, (size_t)sn ? (size_t)sn : 1, "r");
        csv_dialect_t raw = {'\n', 0}; /* whole lines */
        csv_reader_t *sr = sf ? aos__csv_reader_new(sf, c.enc, raw) : NULL;
        char *text = malloc(4 * SAMPLE + 1);
        size_t tl = 0;
        char **fl;
        size_t fn;
        while (sr && text && sn > 0 && aos__csv_read(sr, &fl, &fn) == 1) {
            size_t l = strlen(fl[0]);
            if (tl + l + 2 > 4 * SAMPLE)
                break;
            memcpy(text + tl, fl[0], l);
            tl += l;
            text[tl++] = '\n';
        }
        c.d = aos__csv_sniff(text ? text : "", tl);
        free(text);
        aos__csv_reader_free(sr);
        if (sf)
            fclose(sf);
    }
    free(sample);
    const char *delim = aos__tools_str(j->args, "delimiter", NULL);
    if (delim) {
        if (!strcmp(delim, "\\t") || !strcmp(delim, "tab"))
            delim = "\t";
        if (strlen(delim) != 1 || strchr("\"\r\n", delim[0])) {
            aos_err_set(err, AOS_EINVAL, "'delimiter' must be one character");
            goto out;
        }
        c.d.delim = delim[0];
    }
    if (pass1(&c, err))
        goto out;
    if (replaceable(j->root, output, err) || replaceable(j->root, schema, err))
        goto out;
    if ((ofd = aos__tools_tmpfile(j->root, output, &dir, &tmp, err)) < 0)
        goto out;
    int fd2 = dup(ofd);
    if (fd2 < 0 || !(o = fdopen(fd2, "w"))) {
        if (fd2 >= 0)
            close(fd2);
        aos_err_set(err, AOS_EIO, "unable to write '%.200s'", output);
        goto out;
    }
    setvbuf(o, NULL, _IOFBF, 1 << 20);
    if (pass2(&c, o, err))
        goto out;
    if (fflush(o) != 0 || ferror(o)) {
        aos_err_set(err, AOS_EIO, "unable to write '%.200s': %s", output, strerror(errno));
        goto out;
    }
    fclose(o);
    o = NULL;
    const char *oname = strrchr(output, '/') ? strrchr(output, '/') + 1 : output;
    if (aos__tools_commit(dir, tmp, oname, ofd, err)) {
        free(tmp);
        tmp = NULL;
        goto out;
    }
    free(tmp);
    tmp = NULL;
    json_t *sch = schema_of(c.cols, c.ncols, output);
    char *stext = json_dumps(sch, JSON_INDENT(2));
    json_decref(sch);
    int src = stext ? write_text(j->root, schema, stext, err) : aos_err_set(err, AOS_ENOMEM, NULL);
    free(stext);
    if (src)
        goto out;
    json_t *cols = json_array(), *changes = json_object();
    for (size_t i = 0; i < c.ncols; i++)
        json_array_append_new(cols, json_pack("{s:s, s:s, s:I}", "name", c.cols[i].name, "type",
                                              aos__csv_type_name(c.cols[i].type), "empty",
                                              (json_int_t)c.cols[i].empty_out));
    for (int i = 0; i < R_N; i++)
        if (c.rp.count[i])
            json_object_set_new(changes, rule_names[i],
                                json_pack("{s:I, s:O}", "count", (json_int_t)c.rp.count[i],
                                          "examples", c.rp.examples[i]));
    char dl[2] = {c.d.delim, 0}, ql[2] = {c.d.quote, 0};
    res =
        json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:b, s:I, s:I, s:o, s:o, s:{s:b, s:b}}", "input",
                  path, "output", output, "schema", schema, "encoding", aos__csv_enc_name(c.enc),
                  "delimiter", dl[0] == '\t' ? "\\t" : dl, "quote", ql, "header", c.header,
                  "rows_in", (json_int_t)(c.records - (c.header ? 1 : 0)), "rows_out",
                  (json_int_t)c.written, "columns", cols, "changes", changes, "dedupe", "enabled",
                  aos__tools_bool(j->args, "dedupe", 1), "limit_reached", c.dd.full);
    if (!res)
        aos_err_set(err, AOS_ENOMEM, NULL);
    else {
        json_object_set_new(res, "files", json_pack("[s,s]", output, schema));
        json_object_set_new(res, "rows", json_integer((json_int_t)c.written)); /* = rows_out */
    }
out:
    if (o)
        fclose(o);
    if (tmp)
        unlinkat(dir, tmp, 0);
    free(tmp);
    if (ofd >= 0)
        close(ofd);
    if (dir >= 0)
        close(dir);
    if (c.in >= 0)
        close(c.in);
    for (size_t i = 0; i < c.ncols && c.cols; i++)
        free(c.cols[i].name);
    free(c.cols);
    free(c.dd.slot);
    for (int i = 0; i < R_N; i++)
        json_decref(c.rp.examples[i]);
    return res;
}

/* ---- the server ------------------------------------------------------------------------------ */

static json_t *csv_tools(void *data)
{
    json_t *in = json_pack(
        "{s:s, s:{s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:[s,s,s], s:s}, "
        "s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}, s:{s:s, s:s}}, s:[s]}",
        "type", "object", "properties", "path", "type", "string", "description",
        "the CSV file to clean (in the workspace)", "output", "type", "string", "description",
        "the cleaned CSV file to write (UTF-8, comma-separated; default "
        "<path without extension>.clean.csv)",
        "schema", "type", "string", "description",
        "where to write the JSON Schema of the columns (default: "
        "<output without .csv>.schema.json)",
        "encoding", "type", "string", "enum", "auto", "utf-8", "gb18030", "description",
        "the input's encoding (default auto: BOM, UTF-8 or GB18030)", "delimiter", "type", "string",
        "description", "the input's delimiter (default: sniffed)", "header", "type", "boolean",
        "description", "whether the first record is a header (default: detected)", "dedupe", "type",
        "boolean", "description", "drop duplicate rows (default true)", "drop_empty", "type",
        "boolean", "description", "drop empty rows (default true)", "required", "path");
    json_t *out = json_pack(
        "{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, "
        "s:{s:s}, s:{s:s}, s:{s:s}}, s:[s,s,s,s]}",
        "type", "object", "properties", "input", "type", "string", "output", "type", "string",
        "schema", "type", "string", "encoding", "type", "string", "delimiter", "type", "string",
        "header", "type", "boolean", "rows_in", "type", "integer", "rows_out", "type", "integer",
        "columns", "type", "array", "changes", "type", "object", "files", "type", "array",
        "required", "output", "schema", "columns", "changes");
    return json_pack(
        "[o]", aos__tools_def("clean",
                              "Clean a CSV file: detect encoding (UTF-8, BOM, GB18030), "
                              "delimiter, quoting and header; infer column types (integer, "
                              "decimal, date, date-time, boolean, text); trim; normalise "
                              "numbers (thousands separators, currency, percentages, full-width "
                              "digits) and dates (ISO 8601, incl. 2025年9月26日); drop empty and "
                              "duplicate rows. Writes the cleaned CSV and a JSON Schema of its "
                              "columns, and reports every change (counts per rule, examples).",
                              in, out, 0, 0, 1));
}

static int csv_call(void *data, const aos_caller_t *caller, const char *tool, const json_t *args,
                    aos_builtin_done_fn done, void *ctx)
{
    if (strcmp(tool, "clean"))
        return AOS_ENOTFOUND;
    return aos__tools_submit(data, caller, "csv", tool, args, TOOLS_WRITE, run_clean, done, ctx);
}

void aos__tools_csv_init(aos_tools_t *t)
{
    t->csv = (aos_builtin_t){"csv", "the skill csv.clean: clean a CSV file of the workspace",
                             csv_tools, csv_call, t};
}
