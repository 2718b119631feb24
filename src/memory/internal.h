/* internal.h - what the files of src/memory share: the service, and the
 * operations that REST (service.c) and MCP (mcp.c) both start. */
#ifndef AOS_MEMORY_INTERNAL_H
#define AOS_MEMORY_INTERNAL_H

#include "llm/llm.h"
#include "memory/memory.h"

#include <jansson.h>

/* Limits of an item and a search; past them a request is refused (400). */
#define MEM_TEXT_MAX       32768 /* bytes of text */
#define MEM_SUBJECT_MAX    256
#define MEM_TAG_MAX        64 /* bytes of a tag */
#define MEM_TAGS_MAX       32
#define MEM_META_MAX       16384 /* bytes of meta as compact JSON */
#define MEM_PROJECT_MAX    128
#define MEM_Q_MAX          1024
#define MEM_K_MAX          100
#define MEM_BODY_MAX       (128 << 10)
#define MEM_EMBED_DIMS_MAX 16384               /* dimensions of a model's vector */
#define MEM_GRAPH_FILE     "memory-hnsw.graph" /* the HNSW graph's file, in the data dir */

struct aos_memory_s {
    aos_memory_cfg_t cfg;
    aos_builtin_t builtin;
    aos_memory_index_t *index; /* owned; written by store jobs only; NULL until the
                                  model's first vector (llm) */
    int dims;                  /* the index's dimension (store jobs) */
    char *model;               /* the embedding model: AOS_MEMORY_EMBED_MODEL or cfg.embed_model */
    int loaded;                /* the index load job finished (loop) */
    int load_failed;
    size_t load_skipped;                   /* the model's vectors of another dimension at load */
    int hnsw_started;                      /* the graph's build was started (store jobs) */
    uint64_t hnsw_retry_at, hnsw_retry_ns; /* a failed build: the next start, back-off */
    char *graph_path;                      /* <data_dir>/MEM_GRAPH_FILE, or NULL */
    int stopping;                          /* aos_memory_stop ran (loop) */

    /* re-embedding the items whose vector is of another model (embed.c;
     * loop) */
    struct {
        int running, busy, waiting, dirty;
        int single;    /* a batch was refused (4xx): one text a call until the pass ends */
        int64_t after; /* the pass is past this id */
        size_t written;
        unsigned backoff_ms;
        uv_timer_t *timer; /* the back-off; closed by aos_memory_stop */
        aos_llm_call_t *call;
    } re;

    /* projects seen, interned: an item's vector carries its project's
     * number as its index group. Appended by store jobs, read by the
     * loop, under proj_lock. */
    uv_mutex_t proj_lock;
    char **projects;
    size_t nprojects, proj_cap;
};

typedef enum {
    MEM_OP_CREATE,
    MEM_OP_GET,
    MEM_OP_UPDATE,
    MEM_OP_DELETE,
    MEM_OP_RESTORE,
    MEM_OP_SEARCH,
    MEM_OP_PROFILE_GET, /* the caller's own profile */
    MEM_OP_PROFILE_PUT, /* fields: the new profile */
    MEM_OP_LIST,        /* newest first: project, tags, deleted, before, k as the limit */
} mem_op_kind_t;

typedef struct mem_op mem_op_t;
/* The end of an operation, on the loop: result (stolen) or err. */
typedef void (*mem_finish_fn)(mem_op_t *op, int status, json_t *result, const aos_err_t *err);

typedef enum { MODE_KEYWORD, MODE_VECTOR, MODE_HYBRID } mem_mode_t;

struct mem_op {
    aos_memory_t *m;
    mem_op_kind_t kind;
    const aos_principal_t *who; /* borrowed: loop only */
    char actor[80];             /* who, as sources and audit rows name it */
    mem_finish_fn finish;
    void *ctx; /* the finisher's */

    int64_t id;                        /* GET, UPDATE, DELETE, RESTORE */
    json_t *fields;                    /* CREATE, UPDATE: the checked fields */
    char project[MEM_PROJECT_MAX + 1]; /* writes: the project checked (the row's) */
    int write_phase;                   /* UPDATE/DELETE/RESTORE: 1 once authorized */

    /* SEARCH */
    char *q;
    mem_mode_t mode;
    int k;
    json_t *tags;   /* array of strings, or NULL */
    char **allowed; /* project names the caller may read (NULL with all_projects) */
    size_t nallowed;
    int all_projects;
    uint8_t *groups_ok; /* per interned project: may read */
    size_t ngroups;

    /* LIST (with tags, project and the allowed projects of SEARCH) */
    int deleted;    /* the soft-deleted items instead of the live ones */
    int64_t before; /* ids under this one; 0: from the newest */

    float *vec; /* llm: the text's or query's vector (dims floats), embedded on the loop */
    int dims;

    json_t *row;    /* the item read or written */
    json_t *result; /* the answer */
};

/* Checks a create (update: partial = 1) body: unknown fields, types,
 * limits; normalizes tags (sorted, unique). *out gets the fields (new). */
int mem_check_fields(const json_t *body, int partial, json_t **out, aos_err_t *err);
/* Checks a profile (R1): an object of language, timezone (strings),
 * task_defaults, notifications, preferences (objects), at most
 * MEM_META_MAX bytes. *out gets a copy. */
int mem_check_profile(const json_t *body, json_t **out, aos_err_t *err);
/* Checks search parameters into op (q, mode, k, tags, project). Strings
 * may be NULL (absent). */
int mem_check_search(mem_op_t *op, const char *q, const char *mode, const char *k, const char *tags,
                     const char *project_id, aos_err_t *err);
/* Checks list parameters into op (project_id, tags, deleted, before,
 * limit); strings may be NULL. */
int mem_check_list(mem_op_t *op, const char *project_id, const char *tags, const char *deleted,
                   const char *before, const char *limit, aos_err_t *err);
/* The same from JSON arguments (MCP). */
int mem_check_search_json(mem_op_t *op, const json_t *args, aos_err_t *err);

mem_op_t *mem_op_new(aos_memory_t *m, mem_op_kind_t kind, const aos_principal_t *who,
                     mem_finish_fn finish, void *ctx);
void mem_op_free(mem_op_t *op);
/* Runs op: authorization, store jobs, then op->finish exactly once, also
 * on failure (now or later). */
void mem_op_start(mem_op_t *op);

/* 1 if p is a project id: 1..MEM_PROJECT_MAX of A-Z a-z 0-9 . _ - @ / : */
int mem_project_ok(const char *p);

/* Ends op with err (op->finish). */
void mem_op_fail(mem_op_t *op, const aos_err_t *err);
/* The number of project name, interned if new; UINT32_MAX without memory. */
uint32_t mem_proj_intern(aos_memory_t *m, const char *name);
/* Store jobs, after an add: starts the HNSW graph's build past the threshold. */
void mem_maybe_build(aos_memory_t *m);

/* embed.c: vectors from the model server (cfg.llm) */
/* Checks the result of embedding n texts with model (the call's error, the
 * count, the dimension) and L2-normalises its vectors in place: 0 or an
 * AOS_E* code with err naming the model. */
int mem_embed_check(aos_llm_result_t *r, size_t n, const char *model, aos_err_t *err);
/* Store jobs: creates the index for dims if there is none yet, else
 * checks that dims is its dimension (AOS_EUPSTREAM naming both). */
int mem_index_ready(aos_memory_t *m, int dims, aos_err_t *err);
/* Embeds text for op (op->vec, op->dims), then runs next(op) on the loop;
 * on failure ends op with the error instead. */
typedef void (*mem_next_fn)(mem_op_t *op);
void mem_embed_then(mem_op_t *op, const char *text, mem_next_fn next);
/* Starts re-embedding the items whose vector is missing or of another
 * model, or goes on at once after a back-off (loop). */
void mem_reembed_kick(aos_memory_t *m);
/* Goes on at once with a pass waiting for its back-off (loop). */
void mem_reembed_resume(aos_memory_t *m);

/* blueprint.c: the routes of R2 blueprints */
int mem_blueprint_add_routes(aos_memory_t *m, aos_http_t *http);

/* mcp.c */
extern const aos_builtin_t mem_builtin_template;

#endif
