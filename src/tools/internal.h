/* internal.h - shared inside src/tools: the tool job (a call run on the
 * thread pool), tool definitions and results, and the pure parts of the
 * skills that the unit tests reach (CSV sniffing and normalisation, chart
 * ticks, LTTB). */
#ifndef AOS_TOOLS_INTERNAL_H
#define AOS_TOOLS_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "tools/tools.h"

struct aos_tools_s {
    uv_loop_t *loop; /* borrowed */
    char *data_dir;
    aos_builtin_t files, db, csv, viz;
    pthread_mutex_t idem; /* one keyed write at a time: look up, apply, record */
    /* At most TOOLS_RUNNING jobs on libuv's pool at once (it has 4 threads
     * by default and the log service and trace queries use it too); the
     * others wait here in order. Loop thread only. */
    unsigned running;
    struct tools_job *wait_head, *wait_tail;
    struct sweep *sweep; /* sweep.c; NULL: not started */
};

#define TOOLS_RUNNING 2

/* ---- jobs (tools.c) ---------------------------------------------------------- */

typedef struct tools_job tools_job_t;
/* Runs on a worker: the structuredContent of the answer (new), or NULL
 * with err (the tool's isError answer names it). */
typedef json_t *(*tools_run_fn)(tools_job_t *j, aos_err_t *err);

#define TOOLS_WRITE    0x1 /* changes the workspace: the idempotency key applies */
#define TOOLS_DB_WRITE 0x2 /* the caps allow writing databases */

struct tools_job {
    uv_work_t work;
    aos_tools_t *t;
    char name[96]; /* "<server>__<tool>" */
    json_t *args;  /* owned copy */
    char *ws;      /* the workspace directory */
    char *principal;
    char *key;       /* idempotency key, or NULL */
    int flags;       /* TOOLS_* */
    int root;        /* the workspace, O_PATH, while run() runs */
    json_t *pending; /* a keyed write that did not finish before: what it recorded */
    tools_run_fn run;
    aos_builtin_done_fn done;
    void *ctx;
    struct tools_job *next; /* in the wait list */
    json_t *result;
    char *text; /* the answer's text content (owned); NULL: result as JSON */
    aos_err_t err;
};

/* Starts run on the thread pool for caller (copied); done gets the
 * CallToolResult on the loop. 0, or a code without calling done. */
int aos__tools_submit(aos_tools_t *t, const aos_caller_t *caller, const char *server,
                      const char *tool, const json_t *args, int flags, tools_run_fn run,
                      aos_builtin_done_fn done, void *ctx);
/* A keyed write records what it is about to do (info, borrowed) durably
 * before it does it; a repeat finds it in j->pending. No key: nothing. */
int aos__tools_pending(tools_job_t *j, const json_t *info, aos_err_t *err);

/* A tool definition: inputSchema and outputSchema are stolen. */
json_t *aos__tools_def(const char *name, const char *description, json_t *input, json_t *output,
                       int read_only, int destructive, int idempotent);
json_t *aos__tools_error(const char *message); /* an isError CallToolResult */

/* Argument helpers: the string/integer/bool at key, or def. */
const char *aos__tools_str(const json_t *args, const char *key, const char *def);
long long aos__tools_int(const json_t *args, const char *key, long long def);
int aos__tools_bool(const json_t *args, const char *key, int def);
/* A workspace path argument, checked (aos_tools_ws_check); NULL with err. */
const char *aos__tools_path(const json_t *args, const char *key, aos_err_t *err);
/* Makes a temporary file (aos__tools_tmpfile) the file name of dirfd
 * durably: fsync, rename over name (a file or symlink there is replaced,
 * never written through), fsync of the directory. On failure the
 * temporary file is removed. Closes nothing. */
int aos__tools_commit(int dirfd, const char *tmpname, const char *name, int fd, aos_err_t *err);
/* A new temporary file in rel's directory (made if missing): its fd, its
 * name in *tmpname (caller frees), its directory in *dirfd. */
int aos__tools_tmpfile(int root, const char *rel, int *dirfd, char **tmpname, aos_err_t *err);

void aos__tools_files_init(aos_tools_t *t);
void aos__tools_db_init(aos_tools_t *t);
void aos__tools_csv_init(aos_tools_t *t);
void aos__tools_viz_init(aos_tools_t *t);

/* ---- CSV (csv.c) ----------------------------------------------------------------- */

typedef enum {
    CSV_ENC_UTF8,
    CSV_ENC_UTF8_BOM,
    CSV_ENC_GB18030,
} csv_enc_t;
const char *aos__csv_enc_name(csv_enc_t e);
/* The encoding of a file's first bytes (n of them): a BOM, else valid
 * UTF-8 (an incomplete sequence at the end is allowed), else GB18030. */
csv_enc_t aos__csv_detect_enc(const unsigned char *buf, size_t n);

typedef struct {
    char delim; /* ',', ';', '\t' or '|' */
    char quote; /* '"' or '\'' or 0 */
} csv_dialect_t;
/* Sniffs the dialect from sample text (UTF-8): the delimiter giving the
 * most rows with one consistent field count. */
csv_dialect_t aos__csv_sniff(const char *sample, size_t n);

/* A streaming reader of records: fields are NUL-terminated and trimmed of
 * nothing (the cleaner trims). A quote left open at the end of a line that
 * ends the file, or runs past 1 MiB, is closed there ("broken quote"). */
typedef struct csv_reader csv_reader_t;
csv_reader_t *aos__csv_reader_new(FILE *in, csv_enc_t enc, csv_dialect_t d);
/* 1: a record (*fields, *n valid until the next call), 0: end, <0: error. */
int aos__csv_read(csv_reader_t *r, char ***fields, size_t *n);
/* Records whose quotes were broken so far. */
size_t aos__csv_broken(const csv_reader_t *r);
const char *aos__csv_reader_error(const csv_reader_t *r);
void aos__csv_reader_free(csv_reader_t *r);

typedef enum {
    CSV_T_EMPTY = 0,
    CSV_T_BOOL,
    CSV_T_INT,
    CSV_T_DEC,
    CSV_T_DATE,
    CSV_T_DATETIME,
    CSV_T_TEXT,
} csv_type_t;
const char *aos__csv_type_name(csv_type_t t);

/* What normalising a value did (bits), for the report. */
#define CSV_N_TRIM     0x001
#define CSV_N_THOUSAND 0x002
#define CSV_N_CURRENCY 0x004
#define CSV_N_PERCENT  0x008
#define CSV_N_FULLW    0x010
#define CSV_N_DATE     0x020
#define CSV_N_BOOL     0x040
#define CSV_N_NEG      0x080 /* (123) or trailing minus: a negative number */
#define CSV_N_NULL     0x100 /* "NULL", "N/A", "-", ... made empty */

/* 1 if v (trimmed) is a token for "no value": NULL, N/A, NaN, None, -, ... */
int aos__csv_null_token(const char *v);
/* Classifies one value (trimmed first): the narrowest type it fits. For
 * a slashed date a/b/yyyy, *order is 1 when only day-first reads it, 2
 * when only month-first does, 3 when both do; else 0. */
csv_type_t aos__csv_classify(const char *v, int *order);
/* Normalises v (trimmed first) as type t into out (size n): a number
 * without separators or symbols (percentages divided by 100), a date as
 * YYYY-MM-DD, a date-time as YYYY-MM-DDTHH:MM:SS (with its zone if
 * written), a boolean as true/false; slashed dates read day first when
 * dayfirst. Returns the CSV_N_* bits of what changed, or -1 when v does
 * not fit t (out is then v trimmed). */
int aos__csv_normalize(const char *v, csv_type_t t, int dayfirst, char *out, size_t n);

/* ---- charts (viz.c) --------------------------------------------------------------- */

/* "Nice" axis ticks for [lo, hi] with about want of them: step 1, 2 or 5
 * times a power of ten; *first, *step and the count returned. */
int aos__viz_ticks(double lo, double hi, int want, double *first, double *step);
/* Largest-Triangle-Three-Buckets: picks out indices of n points (x, y)
 * keeping the shape, the first and last always; returns how many (<= m). */
size_t aos__viz_lttb(const double *x, const double *y, size_t n, size_t m, size_t *out);

#endif
