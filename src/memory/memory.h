/* memory.h - the memory service (SPEC §2 Memory page R3, issue 17): memory
 * items with tags and audit, keyword, vector and hybrid search, over REST
 * and a built-in MCP server; and the pieces it is built from, usable (and
 * tested) on their own: the text tokenizer, the built-in embedding, the
 * vector index and reciprocal rank fusion.
 *
 *   POST   /api/memory/items              create (Operator on project:<project_id>)
 *   GET    /api/memory/items/:id          read (Viewer on its project)
 *   PATCH  /api/memory/items/:id          update text, subject, tags, meta (Operator)
 *   DELETE /api/memory/items/:id          soft delete (Operator)
 *   POST   /api/memory/items/:id/restore  undo a soft delete (Operator)
 *   GET    /api/memory/search?q=&mode=keyword|vector|hybrid&tags=&project_id=&k=
 *   GET/PUT /api/memory/profile           the caller's own profile (R1)
 *   MCP server "memory"                   tools search, put, get, delete, restore, profile
 *
 * The routes are open to any token (AOS_PERM_ANY) because the project an
 * item belongs to is in the body or the row, not the path: each handler
 * checks aos_auth_check on "project:<id>" itself, and a search without a
 * project_id returns only items of projects the caller may read.
 *
 * Items live in the store (migration 0018: mem_items, mem_tags, the FTS5
 * table mem_fts and mem_embeddings); every change is one store job that
 * writes the item, its terms, its vector and its audit row in one
 * transaction. The vectors are also held in memory, in an index loaded from
 * the store at start and kept in step by those jobs.
 *
 * Vectors: the built-in embedding (below), computed in the store jobs; or
 * with cfg.llm a model's, from an OpenAI-compatible /embeddings call the
 * loop starts before the store job and waits for without blocking
 * (embed.c), the index of the model's dimension, and the items whose
 * vector is of another model re-embedded in the background.
 *
 * Threads: the service's functions run on the loop thread; its store work
 * (and searches) on the store's worker. The tokenizer, the embedding and
 * RRF are pure (any thread). The index has its own lock (see below). */
#ifndef AOS_MEMORY_H
#define AOS_MEMORY_H

#include "auth/auth.h"
#include "builtin/builtin.h"
#include "err/err.h"
#include "http/http.h"
#include "llm/llm.h"
#include "store/store.h"

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- text ------------------------------------------------------------------
 * The terms of a text, for the keyword index and the embedding: each run of
 * ASCII letters and digits is one word, lowercased; each run of CJK
 * characters (Han, Hiragana, Katakana, Hangul) gives its overlapping
 * character bigrams ("向量检索" -> 向量 量检 检索), or the character alone
 * when the run has one; any other non-ASCII letter (é, ß, Cyrillic, ...)
 * counts as a word character, unfolded. Everything else separates. Invalid
 * UTF-8 bytes separate too. Terms longer than AOS_MEMORY_TERM_MAX bytes are
 * cut (at a character boundary). */
#define AOS_MEMORY_TERM_MAX 64

/* Calls fn(term, len, cjk, arg) for each term of text[0..n) in order (cjk:
 * 1 for a CJK bigram or single character); fn returns 0 to go on. Returns
 * how many terms were given, or fn's nonzero return. */
typedef int (*aos_memory_term_fn)(const char *term, size_t len, int cjk, void *arg);
int aos_memory_terms(const char *text, size_t n, aos_memory_term_fn fn, void *arg);

/* The terms of text joined by single spaces, in *out (malloc'd,
 * NUL-terminated): what the FTS5 index stores, so that its 'ascii'
 * tokenizer (every non-ASCII byte a token character) sees exactly these
 * terms. *count (may be NULL) gets how many. 0 or AOS_ENOMEM. */
int aos_memory_terms_join(const char *text, size_t n, char **out, size_t *count);

/* ---- the built-in embedding -----------------------------------------------
 * No network and no model: signed feature hashing of the terms above (words
 * weight 1, CJK bigrams 1), of the stems of English words (a light suffix
 * stripper: rotation, rotates -> rotat; weight 1; English function words
 * such as "the", "how" are left out), of the characters of CJK
 * bigrams (0.3), of adjacent term pairs (weight 0.5) and of the
 * character trigrams of words of 3 or more bytes (weight 0.25 each,
 * for inflections: "index"/"indexes"), into AOS_MEMORY_DIMS floats, each
 * feature's term frequency damped as 1 + log(tf), then L2-normalised. A
 * feature's bucket and sign come from one 64-bit hash (FNV-1a, then a
 * murmur3 finaliser), so a vector is the same on every machine. Text
 * without any term gives the zero vector. */
#define AOS_MEMORY_DIMS        384
#define AOS_MEMORY_EMBED_MODEL "aos-hash-v1"
int aos_memory_embed(const char *text, size_t n, float out[AOS_MEMORY_DIMS]);

/* ---- vector index ---------------------------------------------------------
 * Vectors of a fixed dimension under 64-bit ids, searched by inner product
 * (cosine for L2-normalised vectors), best first.
 *
 * Layout: slot i's float32 vector at data[i * dims] (one contiguous,
 * 64-byte aligned matrix), and - with quantization on - its int8 codes at
 * codes[i * dims] with a per-vector scale (max |x| / 127). A removed vector
 * leaves a hole (its slot is marked dead and skipped) until aos_memory_index
 * compacts, which happens when holes reach half of the slots and no HNSW
 * graph exists.
 *
 * Search methods:
 *   EXACT   scans every float32 vector (AVX2+FMA when the CPU has them,
 *           chosen at run time, else a plain loop): the true top k.
 *   INT8    scans the int8 codes (AVX2 when present), keeps the best
 *           rerank candidates (at least 4k, 64), and re-ranks those with
 *           the float32 vectors: exact scores, nearly exact membership.
 *   HNSW    a hierarchical navigable small world graph (Malkov & Yashunin
 *           2016): M links per node (2M on layer 0), efConstruction
 *           candidates while inserting, ef (>= k) while searching.
 *           Built by aos_memory_index_hnsw_build (on the caller's thread)
 *           or aos_memory_index_hnsw_start (in threads of the index's own,
 *           while searches go on with the scans and changes wait at most
 *           a few inserts), and kept up to date by every later add;
 *           removal marks the node dead (still routed through, never
 *           returned).
 *   HNSW_INT8  the same walk measuring the int8 codes (quantization on;
 *           a quarter of the bytes per node), its ef found re-ranked
 *           with float32: exact scores.
 *   AUTO    HNSW_INT8 (HNSW without quantization) if the graph is built,
 *           else INT8 when quantization is on
 *           and the index holds at least 4096 vectors, else EXACT.
 *
 * Threads: every function takes the index's read-write lock, searches
 * shared, changes exclusive, so searches may run on several threads while
 * a change waits. */
typedef struct aos_memory_index_s aos_memory_index_t;

typedef enum {
    AOS_MEMORY_SEARCH_AUTO = 0,
    AOS_MEMORY_SEARCH_EXACT,
    AOS_MEMORY_SEARCH_INT8,
    AOS_MEMORY_SEARCH_HNSW,
    AOS_MEMORY_SEARCH_HNSW_INT8,
} aos_memory_method_t;

typedef struct {
    int64_t id;
    float score;
} aos_memory_hit_t;

/* A filter on candidates: 1 to keep the vector of id in group. */
typedef int (*aos_memory_filter_fn)(int64_t id, uint32_t group, void *arg);

/* quantize: keep int8 codes too (dims bytes + 4 more per vector). */
int aos_memory_index_new(aos_memory_index_t **out, int dims, int quantize);
void aos_memory_index_free(aos_memory_index_t *ix);
/* Adds (or replaces) id's vector (dims floats, copied); group is the
 * caller's label for filters (the service: its project). 0 or AOS_ENOMEM,
 * AOS_EINVAL for a non-finite value. */
int aos_memory_index_add(aos_memory_index_t *ix, int64_t id, uint32_t group, const float *vec);
/* 0, or AOS_ENOTFOUND when id has no vector. */
int aos_memory_index_remove(aos_memory_index_t *ix, int64_t id);
size_t aos_memory_index_count(aos_memory_index_t *ix);
/* Builds the HNSW graph over every vector (m: links per node, 0: 16;
 * ef_construction 0: 200). From then on adds also insert into it. */
int aos_memory_index_hnsw_build(aos_memory_index_t *ix, int m, int ef_construction);
/* Starts building the graph in threads (1..8) of the index's own, their
 * niceness raised by nice (0..19), and returns at once: 0 (also when the
 * graph is built or being built), AOS_EINVAL, AOS_ENOMEM. Searches use
 * the scans until the graph is complete, then the graph; vectors added or
 * removed meanwhile are in it. aos_memory_index_free stops a build. */
int aos_memory_index_hnsw_start(aos_memory_index_t *ix, int m, int ef_construction, int threads,
                                int nice);
/* Waits for the build started: 0 when the graph is in use, its error
 * else, AOS_ENOTFOUND when none was started. One waiter at a time. */
int aos_memory_index_hnsw_wait(aos_memory_index_t *ix);
typedef enum {
    AOS_MEMORY_HNSW_NONE = 0, /* never started */
    AOS_MEMORY_HNSW_BUILDING,
    AOS_MEMORY_HNSW_READY,  /* searches use it */
    AOS_MEMORY_HNSW_FAILED, /* out of memory: start may try again */
} aos_memory_hnsw_state_t;
aos_memory_hnsw_state_t aos_memory_index_hnsw_state(aos_memory_index_t *ix);

/* The graph's file (format and rules at "the graph's file" in index.c).
 * Sets the file (copied; NULL: none) that the next hnsw_start reads
 * first, in its own threads, and (save) that a build or a rebuild saves
 * the graph to when it ends, unless it is the file's as read. The file is used when its header
 * matches (version, dims, M, efConstruction) and its checksum holds: each node is matched to the
 * index's vector of the same id by a hash of the vector; nodes of vectors
 * removed or changed since are dropped, vectors added since are inserted.
 * Absent, truncated, corrupt, made with other parameters, or covering
 * less than half of the vectors: ignored with a log line, and the graph
 * built as without it (the scans answer meanwhile either way). 0 or
 * AOS_ENOMEM. */
int aos_memory_index_hnsw_file(aos_memory_index_t *ix, const char *path, int save);
/* Saves the graph to path (NULL: the file set above): written to
 * path.tmp, fsync'd, renamed over path, the directory fsync'd. On the
 * caller's thread, any thread; the graph is read in chunks of 4096 nodes
 * under the read lock, so searches go on and a change waits at most one
 * chunk (a change made meanwhile may or may not be in the file; the load
 * checks each node anyway). 0, AOS_ENOTFOUND (no graph or no path),
 * AOS_ECONFLICT (a rebuild renumbered the slots meanwhile: try again),
 * AOS_EIO (errno kept), AOS_ENOMEM. */
int aos_memory_index_hnsw_save(aos_memory_index_t *ix, const char *path);
/* 1 when the graph in use differs from what was last saved or loaded. */
int aos_memory_index_hnsw_dirty(aos_memory_index_t *ix);

/* Dead nodes stay in the graph (routed through, never returned). When
 * more than half of the slots are dead (and at least 32), the index
 * rebuilds the graph in the background over the live vectors with the
 * last build's M, efConstruction, threads and niceness; the old graph
 * answers meanwhile, and at the swap the holes are compacted away. A
 * failed rebuild (out of memory) is tried again on a later change, one
 * minute later at first, doubling up to an hour. */
typedef struct {
    aos_memory_hnsw_state_t state;
    int m, ef_construction; /* of the graph in use (0: none) */
    size_t slots, dead;     /* slots (vectors and holes), and holes */
    int building;           /* a build or rebuild is under way */
    int from_file;          /* the graph in use was loaded from the file */
    size_t file_nodes;      /* nodes taken from the file */
    size_t file_inserted;   /* vectors inserted since (not in the file) */
    unsigned builds;        /* graphs swapped in (built, loaded or rebuilt) */
    unsigned rebuilds;      /* of those, rebuilds that dropped the dead */
    int last_rc;            /* the last build's result (0, AOS_ENOMEM) */
} aos_memory_hnsw_info_t;
void aos_memory_index_hnsw_info(aos_memory_index_t *ix, aos_memory_hnsw_info_t *out);
/* Up to k best hits for q (dims floats) into hits, best first (ties by
 * smaller id); returns how many, or a negative AOS_E* code. ef: HNSW's
 * search breadth (0: max(64, k)). filter may be NULL. */
int aos_memory_index_search(aos_memory_index_t *ix, const float *q, int k,
                            aos_memory_method_t method, int ef, aos_memory_filter_fn filter,
                            void *arg, aos_memory_hit_t *hits);
/* The same, telling in *used (may be NULL) the method that answered (AUTO
 * resolved). */
int aos_memory_index_search_by(aos_memory_index_t *ix, const float *q, int k,
                               aos_memory_method_t method, int ef, aos_memory_filter_fn filter,
                               void *arg, aos_memory_hit_t *hits, aos_memory_method_t *used);
/* Bytes the index holds (vectors, codes, graph), for metrics and benches. */
size_t aos_memory_index_bytes(aos_memory_index_t *ix);
/* 1 when the search loops use AVX2 on this CPU. */
int aos_memory_index_simd(void);

/* ---- reciprocal rank fusion -------------------------------------------------
 * Cormack, Clarke & Büttcher 2009: score(d) = sum over the lists holding d
 * of 1 / (k0 + rank), ranks from 1. Fuses two ranked id lists (either may
 * be empty) into out (room for na + nb), best first, ties by smaller id;
 * each with its rank in a and in b (0: absent). Returns how many. */
#define AOS_MEMORY_RRF_K 60
typedef struct {
    int64_t id;
    double rrf;
    int rank_a, rank_b;
} aos_memory_fused_t;
int aos_memory_rrf(const int64_t *a, int na, const int64_t *b, int nb, int k0,
                   aos_memory_fused_t *out);

/* ---- the service ------------------------------------------------------------- */
typedef struct aos_memory_s aos_memory_t;

typedef struct {
    uv_loop_t *loop;    /* borrowed */
    aos_store_t *store; /* borrowed */
    /* The principal of an MCP caller by id (the gateway's aos_caller_t has
     * only the id), for the per-project checks of the MCP tools: NULL when
     * unknown (the call is then refused). Loop thread. */
    const aos_principal_t *(*principal_of)(void *data, const char *id);
    void *principal_data; /* borrowed */
    /* Past this many vectors the HNSW graph is built in hnsw_threads
     * threads of the index (niceness +10), the scans answering meanwhile
     * (0: never). */
    size_t hnsw_min_items;
    int hnsw_threads;
    /* The graph: M links per node (0: 16), efConstruction (0: 200), and
     * the search breadth ef (0: max(64, k)). */
    int hnsw_m, hnsw_efc, hnsw_ef;
    /* The graph is saved to <data_dir>/memory-hnsw.graph after a build and
     * at aos_memory_free when it changed, and read back by the next build
     * (NULL: not saved). */
    const char *data_dir;
    /* Vectors from this model server's /embeddings (borrowed; must outlive
     * m until aos_memory_stop) with the model embed_model (copied), or
     * NULL: the built-in embedding. */
    aos_llm_t *llm;
    const char *embed_model;
} aos_memory_cfg_t;

/* Starts loading the index from the store (a store job: queued before any
 * request's, so no search sees a partial index). */
int aos_memory_new(aos_memory_t **out, const aos_memory_cfg_t *cfg, aos_err_t *err);
/* The routes above; m must outlive http. */
int aos_memory_add_routes(aos_memory_t *m, aos_http_t *http);
/* The built-in MCP server "memory", for aos_gateway_add_builtin; owned by m. */
const aos_builtin_t *aos_memory_builtin(aos_memory_t *m);
/* A search as who (borrowed for the call: its rights are checked now),
 * for other services (the orchestrator's constraints.memory): args as the
 * tool memory.search takes them ({q, mode, k, tags, project_id}). Returns
 * 0 and calls done exactly once on the loop (now, when who may not read
 * the project asked for, else when the search is done), with the answer
 * {mode, k, results} (stolen) or an error; or fails now (AOS_EINVAL with
 * err naming the argument, AOS_ENOMEM) without calling done. */
typedef void (*aos_memory_search_fn)(int status, json_t *result, const aos_err_t *err, void *data);
int aos_memory_search(aos_memory_t *m, const aos_principal_t *who, const json_t *args,
                      aos_memory_search_fn done, void *data, aos_err_t *err);
/* Stops the background re-embedding (its call, its timer) before the llm
 * client and the loop go; operations still finish. Loop thread. */
void aos_memory_stop(aos_memory_t *m);
/* After aos_store_close (whose callbacks reach m). May be NULL. */
void aos_memory_free(aos_memory_t *m);

#endif
