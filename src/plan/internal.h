/* internal.h - shared inside src/plan only: the parsed form of a ${...}
 * reference, the `when` parser, the text form of a value, JSON equality
 * with numbers by value, the bounded regex compiler and the schema-subset
 * checker that validation and the Critic share. */
#ifndef AOS_PLAN_INTERNAL_H
#define AOS_PLAN_INTERNAL_H

#include <regex.h>

#include "buf/buf.h"
#include "plan/plan.h"

/* One part of a reference path: .name / ["name"] or [index]. */
typedef struct {
    int is_index;
    long long index;  /* negative: from the end */
    const char *name; /* into aos__ref_t.names, NUL-terminated */
} aos__seg_t;

/* A parsed ${...}: its span in the string and its path. */
typedef struct {
    size_t start, end; /* s[start..end) is "${...}" */
    char root[AOS_PLAN_ID_MAX + 1];
    size_t nseg;
    aos__seg_t seg[AOS_PLAN_REF_SEGS];
    char names[AOS_PLAN_REF_MAX]; /* decoded names, each NUL-terminated */
} aos__ref_t;

/* Parses the reference that starts at s[pos] ("${"). 0 or AOS_EINVAL. */
int aos__ref_parse(const char *s, size_t len, size_t pos, aos__ref_t *ref, aos_err_t *err);

/* Calls fn for each reference in s[0..len) (skipping $${ escapes); stops at
 * the first non-zero return of fn, which it returns. AOS_EINVAL for a
 * malformed reference. */
typedef int (*aos__ref_fn)(const aos__ref_t *ref, void *data);
int aos__refs_scan(const char *s, size_t len, aos__ref_fn fn, void *data, aos_err_t *err);

/* The value ref names in scope (borrowed), or NULL with AOS_ENOTFOUND. */
const json_t *aos__ref_lookup(const json_t *scope, const aos__ref_t *ref, const char *s,
                              aos_err_t *err);

/* Appends v as compact JSON. 0, AOS_ETOOBIG or AOS_ENOMEM. */
int aos__json(aos_buf_t *b, const json_t *v);

/* Appends the text form of v: a string as it is, anything else as compact
 * JSON. 0, AOS_ETOOBIG or AOS_ENOMEM. */
int aos__text(aos_buf_t *b, const json_t *v);

/* JSON equality with numbers compared by value (1 == 1.0). */
int aos__equal(const json_t *a, const json_t *b);

/* A parsed `when`. */
typedef struct {
    int neg;          /* !REF */
    int op;           /* 0: REF alone, '=': ==, '!': != */
    aos__ref_t ref;   /* positions into the expression */
    json_t *literal;  /* owned; NULL when op == 0 */
    size_t lit_start; /* the literal's text in the expression */
    size_t lit_end;
} aos__when_t;

/* Parses expr; 0 or AOS_EINVAL. Release w with aos__when_release. */
int aos__when_parse(const char *expr, aos__when_t *w, aos_err_t *err);
void aos__when_release(aos__when_t *w);
/* The canonical spelling of a parsed `when` of expr, into b. */
int aos__when_canon(const char *expr, const aos__when_t *w, aos_buf_t *b);

/* Compiles a POSIX ERE with bounds: at most AOS_PLAN_REGEX_MAX bytes, no
 * back-references, groups nested at most 32 deep and at most 4096 nodes once
 * {m,n} repetitions are expanded. 0, or AOS_EINVAL with why. */
int aos__regex_compile(regex_t *re, const char *pattern, char *why, size_t n);

/* How deep containers nest in v: 0 for a scalar, 1 for [] ... */
int aos__depth(const json_t *v);

/* Checks that schema uses only the supported subset, correctly; 0 or
 * AOS_EINVAL with why ("properties.rows.type: unknown type 'int'"). */
int aos__schema_syntax(const json_t *schema, char *why, size_t n);

/* A deep copy of v (NULL: NULL), as json_deep_copy makes it - the same
 * members in the same order, numbers anew - without its search for loops
 * (a parsed value has none). NULL when out of memory. */
json_t *aos__json_copy(const json_t *v);

/* aos_plan_validate, also telling which step failed (-1: none or the plan
 * itself) and the field its message names ("retry.max", "args.path", ""),
 * in field (n bytes). */
json_t *aos__plan_validate(const json_t *plan, const aos_plan_opts_t *opts, aos_err_t *err,
                           long *bad_step, char *field, size_t n);

/* aos_err_set with the message cut at a character boundary (messages quote
 * user text and end up in JSON, which must be valid UTF-8). */
int aos__fail(aos_err_t *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The length of s[0..n) cut to at most max bytes at a character boundary. */
int aos__snip(const char *s, size_t n, size_t max);

/* Decodes the quoted string (' or ") at s[*pos] into out (appended, not
 * NUL-counted), with JSON's escapes plus \' ; leaves *pos after the closing
 * quote. 0, or AOS_EINVAL with *pos at the offending byte and *why set (a
 * constant). Refuses control characters and \u0000. */
int aos__str_decode(const char *s, size_t len, size_t *pos, aos_buf_t *out, const char **why);

/* The end of the JSON number at s[pos] (-?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)?),
 * or pos when there is none. */
size_t aos__num_scan(const char *s, size_t len, size_t pos);
/* The value of the number s[0..n) (as aos__num_scan found it): an integer
 * when it has no fraction or exponent, else a real; NULL when out of range. */
json_t *aos__num_value(const char *s, size_t n);

/* The JSON type of v as a word ("object", "integer", ...). */
const char *aos__type_name(const json_t *v);

/* 1 if a member name k is written .k in a field path (else ["k"]). */
int aos__plain_name(const char *k);

/* 1 if s is a valid step id. */
int aos__id_ok(const char *s, size_t len);

/* aos_dsl_parse, validating with opts (may be NULL). */
json_t *aos__dsl_parse(const char *text, size_t len, const aos_plan_opts_t *opts, aos_err_t *err);

#endif
