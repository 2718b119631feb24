/* index.c - the vector index of memory.h: a contiguous float32 matrix
 * scanned exactly, int8 codes scanned then re-ranked exactly, and an HNSW
 * graph for large sets.
 *
 * Slots are append-only: slot i holds ids[i], groups[i], its vector at
 * data[i * dims] and (quantize) its codes; a removed or replaced vector's
 * slot is marked dead. by_id maps an id to its live slot + 1. Without a
 * graph, holes are compacted away once they are half of the slots; with
 * one they stay (the graph routes through them), as in hnswlib.
 *
 * The scans keep the best k in a binary heap whose root is the worst kept
 * hit. The inner products run in AVX2+FMA (float) and AVX2 (int8: widened
 * to int16, multiplied and pair-summed into int32 with vpmaddwd) when the
 * CPU has them, chosen once at run time; otherwise plain loops. GCC does
 * not vectorise a float reduction without -ffast-math, so the plain loop
 * is really scalar; hence the explicit versions.
 *
 * HNSW (Malkov & Yashunin, arXiv:1603.09320): a node's level is
 * floor(-ln(U) / ln(M)); layer 0 has up to 2M links, others M; inserting
 * searches greedily from the top down to the node's level, then with
 * efConstruction candidates on each layer below, and links to the
 * neighbours chosen by the paper's heuristic (a candidate is kept when it
 * is nearer the new node than any neighbour kept before it), shrinking a
 * neighbour's list the same way when it overflows. A search's visited
 * marks come from a small pool (one per concurrent search), stamped so
 * they need no clearing. Distances are 1 - dot (cosine distance for unit
 * vectors). A search visits a node's unvisited neighbours in two passes:
 * mark and prefetch them all, then compute their distances.
 *
 * The graph is built off the caller's thread (aos_memory_index_hnsw_start):
 * one to eight threads of the index's own insert the existing slots into a
 * private graph, one slot at a time (BUILD_CHUNK), each under the index's
 * read lock, so searches (the scans meanwhile) go on beside them and a
 * change waits for one insert per builder: a change first takes the gate
 * mutex, which the builders pass through before each chunk, so a stream
 * of chunks cannot starve it. Slots added meanwhile are appended and picked up by the next
 * chunk; removals only mark slots dead; no compaction runs while building.
 * When the builders reach the last slot, one of them takes the write lock,
 * inserts what is left, and swaps the graph in; from then on adds insert
 * into it under the write lock. With several builders each node's link
 * lists are read and written under a one-byte spin lock of the node, the
 * entry point under a mutex (held for a whole insert by the rare node that
 * becomes the new top), as in hnswlib; a lone builder and the finished
 * graph need no locks (the flag concurrent). Builders skip dead slots.
 *
 * With a graph file set (aos_memory_index_hnsw_file), the first builder
 * reads it before any insert and the builders then insert only the live
 * slots it lacks; the graph is saved to it when a build ends, by a saver
 * thread once a tenth of the nodes changed, or on request (see "the
 * graph's file" below). When more than half of the slots are dead, a
 * change starts a rebuild: the same builders make a new graph of the live
 * slots beside the one in use, and build_finish swaps it in, renumbers
 * it and compacts the slots (epoch counts those renumberings, so a save
 * under way notices and gives up). */
#include "memory/memory.h"

#include "file/file.h"
#include "log/log.h"
#include "map/map.h"

#include <errno.h>
#include <fcntl.h>
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    uint32_t *marks;
    uint32_t stamp;
    size_t cap;
} visited_t;

typedef struct {
    int m, m0, efc;
    double ml;
    int concurrent;        /* several builders: lists under the node's lock */
    size_t cap;            /* slots the per-slot arrays hold */
    uint8_t *level;        /* per slot */
    int32_t *l0;           /* per slot: count, then m0 links */
    int32_t **upper;       /* per slot: level * (1 + m) ints (count, links), or NULL */
    atomic_uchar *locks;   /* per slot: its lists' spin lock */
    uv_mutex_t entry_lock; /* entry, max_level, rng */
    int32_t entry;         /* -1: empty */
    int max_level;         /* -1: empty */
    uint64_t rng;
    uv_mutex_t pool_lock;
    visited_t **pool; /* free visited lists */
    size_t npool, pool_cap;
} hnsw_t;

#define BUILD_MAX_THREADS    8
#define BUILD_CHUNK          1 /* slots per read-locked step of a builder */
#define REBUILD_MIN_DEAD     32
#define AUTOSAVE_SHARE       10    /* a tenth of the nodes changed: save */
#define AUTOSAVE_MIN         10000 /* changes, at least */
#define REBUILD_RETRY_NS     (60ull * 1000000000ull)
#define REBUILD_RETRY_MAX_NS (3600ull * 1000000000ull)

/* A build under way (or over: done, or rc < 0). */
typedef struct {
    hnsw_t *g;         /* NULL once swapped in or freed */
    uv_rwlock_t glock; /* inserts into g shared, growing g exclusive */
    uv_mutex_t mu;     /* next, inflight, done, rc, ready */
    uv_cond_t ready_cond;
    size_t next;  /* the next slot to insert */
    int inflight; /* chunks being inserted */
    int done, rc, joined;
    atomic_int stop;
    atomic_int started;  /* builders that began (the first one loads the file) */
    int nth, nth0, nice; /* builders running, made */
    int ready;           /* the file is read (or there is none): inserts may begin */
    int compact;         /* a rebuild: dead slots dropped and slots compacted at the swap */
    int save;            /* save the graph to path when built */
    char *path;          /* the graph's file: loaded first, saved after (NULL: none) */
    uint8_t *have;       /* slots the loaded graph holds already (have_n of them) */
    size_t have_n;
    size_t file_nodes; /* nodes taken from the file */
    size_t file_count; /* nodes the file holds */
    size_t inserted;   /* slots the builders inserted */
    uv_thread_t th[BUILD_MAX_THREADS];
} build_t;

struct aos_memory_index_s {
    uv_rwlock_t lock;
    uv_mutex_t gate; /* a change holds it while it waits for the write lock */
    int dims, quantize;
    size_t n, cap, dead_count;
    float *data;
    int8_t *codes;
    float *scales;
    int64_t *ids;
    uint32_t *groups;
    uint8_t *dead;
    aos_map_t by_id;
    hnsw_t *hnsw;   /* the graph searches use, once built */
    build_t *build; /* the graph being built, or the last build's result */
    /* the graph's file and what happened to it (see "the graph's file") */
    char *path;     /* NULL: none */
    int save_built; /* a build saves the graph to path */
    /* the periodic save (see maybe_autosave) */
    uv_thread_t saver;
    int saver_made;        /* a saver thread to join */
    atomic_int saver_busy; /* it is still saving */
    atomic_int saver_stop; /* free: stop saving */
    uv_mutex_t save_lock;  /* one save at a time */
    uint64_t epoch;        /* bumped when slots are renumbered (compaction) */
    uint64_t changes;      /* adds and removes so far */
    uint64_t saved_at;     /* changes when the file last matched the graph */
    int threads, nice;     /* of the last build: a rebuild uses them again */
    uint64_t retry_at;     /* uv_hrtime before which no automatic rebuild starts */
    uint64_t retry_ns;     /* the next back-off */
    aos_memory_hnsw_info_t info;
};

/* The write lock, through the gate (see the top). */
static void wrlock(aos_memory_index_t *ix)
{
    uv_mutex_lock(&ix->gate);
    uv_rwlock_wrlock(&ix->lock);
    uv_mutex_unlock(&ix->gate);
}

/* ---- inner products ------------------------------------------------------- */

static float dot_plain(const float *a, const float *b, int d)
{
    float s = 0;
    for (int i = 0; i < d; i++)
        s += a[i] * b[i];
    return s;
}

__attribute__((target("avx2,fma"))) static float dot_avx2(const float *a, const float *b, int d)
{
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= d; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_shuffle_ps(h, h, 1));
    float s = _mm_cvtss_f32(h);
    for (; i < d; i++)
        s += a[i] * b[i];
    return s;
}

static int32_t dot8_plain(const int8_t *a, const int8_t *b, int d)
{
    int32_t s = 0;
    for (int i = 0; i < d; i++)
        s += (int32_t)a[i] * b[i];
    return s;
}

__attribute__((target("avx2"))) static int32_t dot8_avx2(const int8_t *a, const int8_t *b, int d)
{
    __m256i s = _mm256_setzero_si256();
    int i = 0;
    for (; i + 16 <= d; i += 16) {
        __m256i x = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(a + i)));
        __m256i y = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(b + i)));
        s = _mm256_add_epi32(s, _mm256_madd_epi16(x, y));
    }
    __m128i h = _mm_add_epi32(_mm256_castsi256_si128(s), _mm256_extracti128_si256(s, 1));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0x4e));
    h = _mm_add_epi32(h, _mm_shuffle_epi32(h, 0xb1));
    int32_t r = _mm_cvtsi128_si32(h);
    for (; i < d; i++)
        r += (int32_t)a[i] * b[i];
    return r;
}

static float (*dot_f)(const float *, const float *, int) = NULL;
static int32_t (*dot_8)(const int8_t *, const int8_t *, int) = NULL;
static uv_once_t simd_once = UV_ONCE_INIT;
static int simd_on;

static void simd_init(void)
{
    __builtin_cpu_init();
    simd_on = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    dot_f = simd_on ? dot_avx2 : dot_plain;
    dot_8 = simd_on ? dot8_avx2 : dot8_plain;
}

int aos_memory_index_simd(void)
{
    uv_once(&simd_once, simd_init);
    return simd_on;
}

/* ---- top-k heap: root = the worst kept hit -------------------------------- */

typedef struct {
    aos_memory_hit_t *h;
    int n, k;
} topk_t;

/* a is worse than b: lower score, or equal and larger id */
static int worse(const aos_memory_hit_t *a, const aos_memory_hit_t *b)
{
    return a->score < b->score || (a->score == b->score && a->id > b->id);
}

static void topk_push(topk_t *t, int64_t id, float score)
{
    aos_memory_hit_t x = {id, score};
    if (t->n == t->k) {
        if (!worse(&t->h[0], &x))
            return;
        /* replace the root, sift down */
        int i = 0;
        for (;;) {
            int l = 2 * i + 1, r = l + 1, w = i;
            const aos_memory_hit_t *wv = &x;
            if (l < t->n && worse(&t->h[l], wv))
                w = l, wv = &t->h[l];
            if (r < t->n && worse(&t->h[r], wv))
                w = r;
            if (w == i)
                break;
            t->h[i] = t->h[w];
            i = w;
        }
        t->h[i] = x;
        return;
    }
    int i = t->n++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!worse(&x, &t->h[p]))
            break;
        t->h[i] = t->h[p];
        i = p;
    }
    t->h[i] = x;
}

static int hit_cmp(const void *a, const void *b)
{
    const aos_memory_hit_t *x = a, *y = b;
    if (worse(x, y))
        return 1;
    if (worse(y, x))
        return -1;
    return 0;
}

/* Sorts the kept hits best first; returns how many. */
static int topk_finish(topk_t *t)
{
    qsort(t->h, (size_t)t->n, sizeof(*t->h), hit_cmp);
    return t->n;
}

/* ---- slots ------------------------------------------------------------------ */

static void *xrealloc_aligned(void *old, size_t old_bytes, size_t bytes)
{
    void *p = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
    if (!p)
        return NULL;
    if (old) {
        memcpy(p, old, old_bytes);
        free(old);
    }
    return p;
}

static int hnsw_grow(hnsw_t *g, size_t cap);

static int grow(aos_memory_index_t *ix)
{
    size_t cap = ix->cap ? ix->cap * 2 : 64, d = (size_t)ix->dims;
    float *data = xrealloc_aligned(ix->data, ix->n * d * 4, cap * d * 4);
    if (!data)
        return AOS_ENOMEM;
    ix->data = data;
    if (ix->quantize) {
        int8_t *codes = xrealloc_aligned(ix->codes, ix->n * d, cap * d);
        if (!codes)
            return AOS_ENOMEM;
        ix->codes = codes;
        float *sc = realloc(ix->scales, cap * sizeof(float));
        if (!sc)
            return AOS_ENOMEM;
        ix->scales = sc;
    }
    int64_t *ids = realloc(ix->ids, cap * sizeof(*ids));
    if (!ids)
        return AOS_ENOMEM;
    ix->ids = ids;
    uint32_t *groups = realloc(ix->groups, cap * sizeof(*groups));
    if (!groups)
        return AOS_ENOMEM;
    ix->groups = groups;
    uint8_t *dead = realloc(ix->dead, cap);
    if (!dead)
        return AOS_ENOMEM;
    ix->dead = dead;
    if (ix->hnsw && hnsw_grow(ix->hnsw, cap))
        return AOS_ENOMEM;
    ix->cap = cap;
    return 0;
}

static float quantize(const float *v, int d, int8_t *out)
{
    float mx = 0;
    for (int i = 0; i < d; i++)
        mx = fmaxf(mx, fabsf(v[i]));
    float scale = mx > 0 ? mx / 127.0f : 1.0f;
    float inv = mx > 0 ? 127.0f / mx : 0;
    for (int i = 0; i < d; i++) {
        long q = lrintf(v[i] * inv);
        out[i] = (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    return scale;
}

int aos_memory_index_new(aos_memory_index_t **out, int dims, int quantize_on)
{
    *out = NULL;
    if (dims <= 0 || dims > 65536)
        return AOS_EINVAL;
    aos_memory_index_simd();
    aos_memory_index_t *ix = calloc(1, sizeof(*ix));
    if (!ix)
        return AOS_ENOMEM;
    if (uv_rwlock_init(&ix->lock)) {
        free(ix);
        return AOS_ENOMEM;
    }
    if (uv_mutex_init(&ix->gate)) {
        uv_rwlock_destroy(&ix->lock);
        free(ix);
        return AOS_ENOMEM;
    }
    if (uv_mutex_init(&ix->save_lock)) {
        uv_mutex_destroy(&ix->gate);
        uv_rwlock_destroy(&ix->lock);
        free(ix);
        return AOS_ENOMEM;
    }
    ix->dims = dims;
    ix->quantize = quantize_on;
    atomic_init(&ix->saver_busy, 0);
    atomic_init(&ix->saver_stop, 0);
    aos_map_init(&ix->by_id);
    *out = ix;
    return 0;
}

static void hnsw_free(hnsw_t *g);
static void build_join(build_t *b);
static void build_destroy(build_t *b);

void aos_memory_index_free(aos_memory_index_t *ix)
{
    if (!ix)
        return;
    if (ix->build) {
        atomic_store(&ix->build->stop, 1);
        build_join(ix->build);
        build_destroy(ix->build);
    }
    if (ix->saver_made) {
        atomic_store(&ix->saver_stop, 1);
        uv_thread_join(&ix->saver);
    }
    hnsw_free(ix->hnsw);
    aos_map_release(&ix->by_id);
    free(ix->data);
    free(ix->codes);
    free(ix->scales);
    free(ix->ids);
    free(ix->groups);
    free(ix->dead);
    free(ix->path);
    uv_rwlock_destroy(&ix->lock);
    uv_mutex_destroy(&ix->gate);
    uv_mutex_destroy(&ix->save_lock);
    free(ix);
}

/* by_id's value for slot s: s + 1 (0 would read as absent), an integer
 * that is never dereferenced. */
static void *slot_value(size_t s)
{
    /* NOLINTNEXTLINE(performance-no-int-to-ptr) */
    return (void *)(uintptr_t)(s + 1);
}

/* Drops dead slots (no graph: nothing refers to slots but by_id, which
 * holds live ids only; replacing a key's value allocates nothing, so this
 * cannot fail). */
static void compact(aos_memory_index_t *ix)
{
    size_t d = (size_t)ix->dims, w = 0;
    for (size_t i = 0; i < ix->n; i++) {
        if (ix->dead[i])
            continue;
        if (w != i) {
            memcpy(ix->data + w * d, ix->data + i * d, d * 4);
            if (ix->quantize) {
                memcpy(ix->codes + w * d, ix->codes + i * d, d);
                ix->scales[w] = ix->scales[i];
            }
            ix->ids[w] = ix->ids[i];
            ix->groups[w] = ix->groups[i];
            ix->dead[w] = 0;
            aos_map_put_u64(&ix->by_id, (uint64_t)ix->ids[w], slot_value(w));
        }
        w++;
    }
    ix->n = w;
    ix->dead_count = 0;
    ix->epoch++;
}

static int hnsw_insert(aos_memory_index_t *ix, hnsw_t *g, int32_t slot);
static void maybe_rebuild(aos_memory_index_t *ix);
static void maybe_autosave(aos_memory_index_t *ix);

/* Compaction renumbers slots: never under a graph or a build. */
static int may_compact(const aos_memory_index_t *ix)
{
    return !ix->hnsw && (!ix->build || ix->build->done) && ix->dead_count > 32 &&
           ix->dead_count * 2 >= ix->n;
}

static int remove_locked(aos_memory_index_t *ix, int64_t id)
{
    uintptr_t s = (uintptr_t)aos_map_del_u64(&ix->by_id, (uint64_t)id);
    if (!s)
        return AOS_ENOTFOUND;
    ix->dead[s - 1] = 1;
    ix->dead_count++;
    return 0;
}

int aos_memory_index_add(aos_memory_index_t *ix, int64_t id, uint32_t group, const float *vec)
{
    int d = ix->dims;
    for (int i = 0; i < d; i++)
        if (!isfinite(vec[i]))
            return AOS_EINVAL;
    wrlock(ix);
    int rc = 0;
    if (ix->n == ix->cap && (rc = grow(ix)))
        goto out;
    size_t s = ix->n;
    /* the map entry first: the only step that can fail */
    void *old = aos_map_get_u64(&ix->by_id, (uint64_t)id);
    if (aos_map_put_u64(&ix->by_id, (uint64_t)id, slot_value(s)) < 0) {
        rc = AOS_ENOMEM;
        goto out;
    }
    if (old) {
        ix->dead[(uintptr_t)old - 1] = 1;
        ix->dead_count++;
    }
    memcpy(ix->data + s * (size_t)d, vec, (size_t)d * 4);
    if (ix->quantize)
        ix->scales[s] = quantize(vec, d, ix->codes + s * (size_t)d);
    ix->ids[s] = id;
    ix->groups[s] = group;
    ix->dead[s] = 0;
    ix->n++;
    ix->changes++;
    if (ix->hnsw && (rc = hnsw_insert(ix, ix->hnsw, (int32_t)s))) {
        /* the vector stays searchable by the scans; the graph misses it */
        rc = 0;
    }
    if (may_compact(ix))
        compact(ix);
    else if (old)
        maybe_rebuild(ix);
    maybe_autosave(ix);
out:
    uv_rwlock_wrunlock(&ix->lock);
    return rc;
}

int aos_memory_index_remove(aos_memory_index_t *ix, int64_t id)
{
    wrlock(ix);
    int rc = remove_locked(ix, id);
    if (rc == 0) {
        ix->changes++;
        if (may_compact(ix))
            compact(ix);
        else
            maybe_rebuild(ix);
        maybe_autosave(ix);
    }
    uv_rwlock_wrunlock(&ix->lock);
    return rc;
}

size_t aos_memory_index_count(aos_memory_index_t *ix)
{
    uv_rwlock_rdlock(&ix->lock);
    size_t n = ix->n - ix->dead_count;
    uv_rwlock_rdunlock(&ix->lock);
    return n;
}

size_t aos_memory_index_bytes(aos_memory_index_t *ix)
{
    uv_rwlock_rdlock(&ix->lock);
    size_t d = (size_t)ix->dims, b = ix->cap * (d * 4 + 8 + 4 + 1);
    if (ix->quantize)
        b += ix->cap * (d + 4);
    if (ix->hnsw) {
        b += ix->cap * (size_t)(ix->hnsw->m0 + 1) * 4 + ix->cap * (sizeof(void *) + 1);
        for (size_t i = 0; i < ix->n; i++)
            b += (size_t)ix->hnsw->level[i] * (size_t)(ix->hnsw->m + 1) * 4;
    }
    uv_rwlock_rdunlock(&ix->lock);
    return b;
}

/* ---- scans ------------------------------------------------------------------ */

static int keep(const aos_memory_index_t *ix, size_t s, aos_memory_filter_fn filter, void *arg)
{
    return !ix->dead[s] && (!filter || filter(ix->ids[s], ix->groups[s], arg));
}

static int scan_exact(const aos_memory_index_t *ix, const float *q, topk_t *t,
                      aos_memory_filter_fn filter, void *arg)
{
    size_t d = (size_t)ix->dims;
    for (size_t s = 0; s < ix->n; s++)
        if (keep(ix, s, filter, arg))
            topk_push(t, ix->ids[s], dot_f(q, ix->data + s * d, (int)d));
    return topk_finish(t);
}

/* int8 scan into a candidate heap of slots (the hit's id field holds the
 * slot), then the exact scores of those. */
static int scan_int8(const aos_memory_index_t *ix, const float *q, topk_t *t,
                     aos_memory_filter_fn filter, void *arg)
{
    size_t d = (size_t)ix->dims;
    int r = t->k * 4 > 64 ? t->k * 4 : 64;
    int8_t *qc = malloc(d);
    aos_memory_hit_t *cand = malloc((size_t)r * sizeof(*cand));
    if (!qc || !cand) {
        free(qc);
        free(cand);
        return AOS_ENOMEM;
    }
    float qs = quantize(q, (int)d, qc);
    topk_t c = {cand, 0, r};
    for (size_t s = 0; s < ix->n; s++)
        if (keep(ix, s, filter, arg))
            topk_push(&c, (int64_t)s,
                      (float)dot_8(qc, ix->codes + s * d, (int)d) * qs * ix->scales[s]);
    for (int i = 0; i < c.n; i++) {
        size_t s = (size_t)c.h[i].id;
        topk_push(t, ix->ids[s], dot_f(q, ix->data + s * d, (int)d));
    }
    free(qc);
    free(cand);
    return topk_finish(t);
}

/* ---- HNSW ------------------------------------------------------------------- */

static int32_t *links(hnsw_t *g, int32_t s, int layer)
{
    if (layer == 0)
        return g->l0 + (size_t)s * (size_t)(g->m0 + 1);
    return g->upper[s] + (size_t)(layer - 1) * (size_t)(g->m + 1);
}

static void node_lock(hnsw_t *g, int32_t s)
{
    if (!g->concurrent)
        return;
    for (int spins = 0; atomic_exchange_explicit(&g->locks[s], 1, memory_order_acquire);)
        if (++spins > 64) {
            sched_yield(); /* its holder may be off the CPU: 2 cores, many threads */
            spins = 0;
        }
}

static void node_unlock(hnsw_t *g, int32_t s)
{
    if (g->concurrent)
        atomic_store_explicit(&g->locks[s], 0, memory_order_release);
}

/* A copy of s's list on layer (count first) into out (room for m0 + 1). */
static int copy_links(hnsw_t *g, int32_t s, int layer, int32_t *out)
{
    node_lock(g, s);
    const int32_t *l = links(g, s, layer);
    int n = l[0];
    memcpy(out, l, (size_t)(n + 1) * 4);
    node_unlock(g, s);
    return n;
}

/* Grows the per-slot arrays to cap slots (the new ones empty). */
static int hnsw_grow(hnsw_t *g, size_t cap)
{
    if (cap <= g->cap)
        return 0;
    uint8_t *level = realloc(g->level, cap);
    if (!level)
        return AOS_ENOMEM;
    g->level = level;
    int32_t *l0 = realloc(g->l0, cap * (size_t)(g->m0 + 1) * 4);
    if (!l0)
        return AOS_ENOMEM;
    g->l0 = l0;
    int32_t **up = realloc(g->upper, cap * sizeof(*up));
    if (!up)
        return AOS_ENOMEM;
    g->upper = up;
    atomic_uchar *locks = realloc(g->locks, cap);
    if (!locks)
        return AOS_ENOMEM;
    g->locks = locks;
    for (size_t i = g->cap; i < cap; i++) {
        up[i] = NULL;
        level[i] = 0;
        l0[i * (size_t)(g->m0 + 1)] = 0;
        atomic_init(&locks[i], 0);
    }
    g->cap = cap;
    return 0;
}

static hnsw_t *hnsw_new(int m, int efc)
{
    hnsw_t *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    if (uv_mutex_init(&g->pool_lock)) {
        free(g);
        return NULL;
    }
    if (uv_mutex_init(&g->entry_lock)) {
        uv_mutex_destroy(&g->pool_lock);
        free(g);
        return NULL;
    }
    g->m = m;
    g->m0 = 2 * m;
    g->efc = efc;
    g->ml = 1.0 / log((double)m);
    g->entry = -1;
    g->max_level = -1;
    g->rng = 0x9e3779b97f4a7c15ULL;
    return g;
}

static void hnsw_free(hnsw_t *g)
{
    if (!g)
        return;
    for (size_t i = 0; i < g->cap; i++)
        free(g->upper[i]);
    free(g->upper);
    free(g->l0);
    free(g->level);
    free(g->locks);
    for (size_t i = 0; i < g->npool; i++) {
        free(g->pool[i]->marks);
        free(g->pool[i]);
    }
    free(g->pool);
    uv_mutex_destroy(&g->pool_lock);
    uv_mutex_destroy(&g->entry_lock);
    free(g);
}

static visited_t *visited_get(hnsw_t *g, size_t n)
{
    visited_t *v = NULL;
    uv_mutex_lock(&g->pool_lock);
    if (g->npool)
        v = g->pool[--g->npool];
    uv_mutex_unlock(&g->pool_lock);
    if (!v && !(v = calloc(1, sizeof(*v))))
        return NULL;
    if (v->cap < n || !v->marks) {
        free(v->marks);
        size_t cap = n < 1024 ? 1024 : n + n / 2;
        v->marks = calloc(cap, 4);
        v->cap = v->marks ? cap : 0;
        v->stamp = 0;
        if (!v->marks) {
            free(v);
            return NULL;
        }
    }
    if (++v->stamp == 0) {
        memset(v->marks, 0, v->cap * 4);
        v->stamp = 1;
    }
    return v;
}

static void visited_put(hnsw_t *g, visited_t *v)
{
    uv_mutex_lock(&g->pool_lock);
    if (g->npool == g->pool_cap) {
        size_t cap = g->pool_cap ? g->pool_cap * 2 : 4;
        visited_t **p = realloc(g->pool, cap * sizeof(*p));
        if (!p) {
            uv_mutex_unlock(&g->pool_lock);
            free(v->marks);
            free(v);
            return;
        }
        g->pool = p;
        g->pool_cap = cap;
    }
    g->pool[g->npool++] = v;
    uv_mutex_unlock(&g->pool_lock);
}

/* A heap of (dist, slot): min = 1 keeps the nearest at the root, 0 the
 * farthest. */
typedef struct {
    float d;
    int32_t s;
} dn_t;
typedef struct {
    dn_t *a;
    int n, cap, min;
} dheap_t;

static int dh_before(const dheap_t *h, const dn_t *x, const dn_t *y)
{
    return h->min ? x->d < y->d : x->d > y->d;
}

static int dh_push(dheap_t *h, float d, int32_t s)
{
    if (h->n == h->cap) {
        int cap = h->cap ? h->cap * 2 : 64;
        dn_t *a = realloc(h->a, (size_t)cap * sizeof(*a));
        if (!a)
            return AOS_ENOMEM;
        h->a = a;
        h->cap = cap;
    }
    dn_t x = {d, s};
    int i = h->n++;
    while (i > 0) {
        int p = (i - 1) / 2;
        if (!dh_before(h, &x, &h->a[p]))
            break;
        h->a[i] = h->a[p];
        i = p;
    }
    h->a[i] = x;
    return 0;
}

static dn_t dh_pop(dheap_t *h)
{
    dn_t top = h->a[0], x = h->a[--h->n];
    int i = 0;
    for (;;) {
        int l = 2 * i + 1, r = l + 1, w = i;
        const dn_t *wv = &x;
        if (l < h->n && dh_before(h, &h->a[l], wv))
            w = l, wv = &h->a[l];
        if (r < h->n && dh_before(h, &h->a[r], wv))
            w = r;
        if (w == i)
            break;
        h->a[i] = h->a[w];
        i = w;
    }
    if (h->n)
        h->a[i] = x;
    return top;
}

static const float *vec_of(const aos_memory_index_t *ix, int32_t s)
{
    return ix->data + (size_t)s * (size_t)ix->dims;
}

/* A query of the graph: float32 (c NULL), or its int8 codes c with scale
 * cs measured against the vectors' codes (a quarter of the bytes read per
 * node; the results are re-ranked with float32). */
typedef struct {
    const float *f;
    const int8_t *c;
    float cs;
} qv_t;

static float dist(const aos_memory_index_t *ix, const qv_t *q, int32_t s)
{
    if (q->c)
        return 1.0f - (float)dot_8(q->c, ix->codes + (size_t)s * (size_t)ix->dims, ix->dims) *
                          q->cs * ix->scales[s];
    return 1.0f - dot_f(q->f, vec_of(ix, s), ix->dims);
}

/* The first cache lines of what dist reads of s, ahead of it. */
static void prefetch_vec(const aos_memory_index_t *ix, const qv_t *q, int32_t s)
{
    const char *p = q->c ? (const char *)(ix->codes + (size_t)s * (size_t)ix->dims)
                         : (const char *)vec_of(ix, s);
    __builtin_prefetch(p);
    __builtin_prefetch(p + 64);
    __builtin_prefetch(p + 128);
    __builtin_prefetch(p + 192);
}

/* Greedy descent on one layer from *ep. */
static void greedy(aos_memory_index_t *ix, hnsw_t *g, const qv_t *q, int32_t *ep, float *epd,
                   int layer)
{
    int32_t l[129];
    for (int changed = 1; changed;) {
        changed = 0;
        int n = copy_links(g, *ep, layer, l);
        for (int i = 1; i <= n; i++)
            prefetch_vec(ix, q, l[i]);
        for (int i = 1; i <= n; i++) {
            float d = dist(ix, q, l[i]);
            if (d < *epd) {
                *epd = d;
                *ep = l[i];
                changed = 1;
            }
        }
    }
}

/* Search of one layer with breadth ef from ep; the results (the ef nearest
 * that pass: filter, not dead unless all) in *top, a max-heap. Each node's
 * unvisited neighbours are marked and prefetched first, then measured. */
static int search_layer(aos_memory_index_t *ix, hnsw_t *g, const qv_t *q, int32_t ep, int ef,
                        int layer, int all, aos_memory_filter_fn filter, void *arg, dheap_t *top)
{
    visited_t *v = visited_get(g, g->cap > ix->n ? g->cap : ix->n);
    if (!v)
        return AOS_ENOMEM;
    dheap_t cand = {NULL, 0, 0, 1};
    top->n = 0;
    top->min = 0;
    float d0 = dist(ix, q, ep), bound = FLT_MAX;
    int rc = dh_push(&cand, d0, ep);
    v->marks[ep] = v->stamp;
    if (!rc && (all || keep(ix, (size_t)ep, filter, arg))) {
        rc = dh_push(top, d0, ep);
        bound = d0;
    }
    int32_t l[129], fresh[129];
    while (!rc && cand.n) {
        dn_t c = dh_pop(&cand);
        if (c.d > bound && top->n >= ef)
            break;
        int n = copy_links(g, c.s, layer, l), nf = 0;
        for (int i = 1; i <= n; i++) {
            int32_t e = l[i];
            if (v->marks[e] == v->stamp)
                continue;
            v->marks[e] = v->stamp;
            prefetch_vec(ix, q, e);
            fresh[nf++] = e;
        }
        for (int i = 0; i < nf && !rc; i++) {
            int32_t e = fresh[i];
            float d = dist(ix, q, e);
            if (top->n < ef || d < bound) {
                rc = dh_push(&cand, d, e);
                if (!rc && (all || keep(ix, (size_t)e, filter, arg))) {
                    rc = dh_push(top, d, e);
                    if (top->n > ef)
                        dh_pop(top);
                    if (top->n)
                        bound = top->a[0].d;
                }
            }
        }
    }
    free(cand.a);
    visited_put(g, v);
    return rc;
}

/* The heuristic of the paper (Algorithm 4, no extension): from cands
 * (any order), nearest first, keep one when it is nearer the base than
 * every kept one. Writes at most max slots to out; returns how many. */
static int select_neighbors(aos_memory_index_t *ix, dn_t *cands, int n, int max, int32_t *out)
{
    /* nearest first */
    for (int i = 1; i < n; i++) {
        dn_t x = cands[i];
        int j = i - 1;
        while (j >= 0 && cands[j].d > x.d) {
            cands[j + 1] = cands[j];
            j--;
        }
        cands[j + 1] = x;
    }
    int k = 0;
    for (int i = 0; i < n && k < max; i++) {
        int ok = 1;
        const float *e = vec_of(ix, cands[i].s);
        for (int j = 0; j < k && ok; j++)
            if (1.0f - dot_f(e, vec_of(ix, out[j]), ix->dims) < cands[i].d)
                ok = 0;
        if (ok)
            out[k++] = cands[i].s;
    }
    return k;
}

/* Adds a link s -> t on layer, shrinking s's list by the heuristic when
 * it is full. */
static void link_to(aos_memory_index_t *ix, hnsw_t *g, int32_t s, int32_t t, int layer)
{
    int max = layer ? g->m : g->m0;
    node_lock(g, s);
    int32_t *l = links(g, s, layer);
    for (int i = 1; i <= l[0]; i++)
        if (l[i] == t) {
            node_unlock(g, s);
            return;
        }
    if (l[0] < max) {
        l[++l[0]] = t;
        node_unlock(g, s);
        return;
    }
    dn_t c[129];
    const qv_t base[1] = {{vec_of(ix, s), NULL, 0}};
    int n = 0;
    for (int i = 1; i <= l[0]; i++)
        c[n++] = (dn_t){dist(ix, base, l[i]), l[i]};
    c[n++] = (dn_t){dist(ix, base, t), t};
    int32_t out[129];
    int k = select_neighbors(ix, c, n, max, out);
    memcpy(l + 1, out, (size_t)k * 4);
    l[0] = k;
    node_unlock(g, s);
}

/* Under entry_lock. */
static int random_level(hnsw_t *g)
{
    /* xorshift64* */
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    uint64_t r = g->rng * 0x2545F4914F6CDD1DULL;
    double u = ((double)(r >> 11) + 0.5) / 9007199254740992.0;
    int l = (int)(-log(u) * g->ml);
    return l > 15 ? 15 : l;
}

/* Inserts slot s (< g->cap) into g. */
static int hnsw_insert(aos_memory_index_t *ix, hnsw_t *g, int32_t s)
{
    uv_mutex_lock(&g->entry_lock);
    int lv = random_level(g);
    int32_t *up = NULL;
    if (lv > 0 && !(up = calloc((size_t)lv * (size_t)(g->m + 1), 4)))
        lv = 0;
    node_lock(g, s);
    g->level[s] = (uint8_t)lv;
    g->upper[s] = up;
    node_unlock(g, s);
    int32_t ep = g->entry;
    int top_level = g->max_level;
    /* a new top node keeps the entry lock for its whole insert */
    int hold = lv > top_level;
    if (ep < 0) {
        g->entry = s;
        g->max_level = lv;
        uv_mutex_unlock(&g->entry_lock);
        return 0;
    }
    if (!hold)
        uv_mutex_unlock(&g->entry_lock);
    const qv_t q[1] = {{vec_of(ix, s), NULL, 0}};
    float epd = dist(ix, q, ep);
    for (int layer = top_level; layer > lv; layer--)
        greedy(ix, g, q, &ep, &epd, layer);
    dheap_t top = {NULL, 0, 0, 0};
    int rc = 0;
    for (int layer = lv < top_level ? lv : top_level; layer >= 0 && !rc; layer--) {
        rc = search_layer(ix, g, q, ep, g->efc, layer, 1, NULL, NULL, &top);
        if (rc)
            break;
        int max = layer ? g->m : g->m0;
        int32_t nb[129];
        /* the nearest found is the next layer's entry */
        int best = 0;
        for (int i = 1; i < top.n; i++)
            if (top.a[i].d < top.a[best].d)
                best = i;
        int32_t next_ep = top.n ? top.a[best].s : ep;
        int k = select_neighbors(ix, top.a, top.n, g->m < max ? g->m : max, nb);
        /* another builder may have linked s here already (it entered the
         * layer at s from above): keep its links, add ours */
        node_lock(g, s);
        int32_t *l = links(g, s, layer);
        for (int i = 0; i < k && l[0] < max; i++) {
            int dup = nb[i] == s;
            for (int j = 1; j <= l[0] && !dup; j++)
                dup = l[j] == nb[i];
            if (!dup)
                l[++l[0]] = nb[i];
        }
        node_unlock(g, s);
        for (int i = 0; i < k; i++)
            if (nb[i] != s)
                link_to(ix, g, nb[i], s, layer);
        ep = next_ep;
    }
    free(top.a);
    if (hold) {
        if (!rc) {
            g->max_level = lv;
            g->entry = s;
        }
        uv_mutex_unlock(&g->entry_lock);
    }
    return rc;
}

static void build_join(build_t *b)
{
    for (int i = 0; !b->joined && i < b->nth0; i++)
        uv_thread_join(&b->th[i]);
    b->joined = 1;
}

/* After build_join (or with no builder made). */
static void build_destroy(build_t *b)
{
    hnsw_free(b->g);
    free(b->have);
    free(b->path);
    uv_cond_destroy(&b->ready_cond);
    uv_rwlock_destroy(&b->glock);
    uv_mutex_destroy(&b->mu);
    free(b);
}

/* Slot s is in the graph read from the file already. */
static int in_file(const build_t *b, size_t s)
{
    return b->have && s < b->have_n && b->have[s];
}

/* A copy of g (its slots 0..n) renumbered by map (slot -> new slot, -1:
 * dropped, and the links to it) with room for cap slots; NULL when out of
 * memory. The entry: the old one if kept, else the highest node kept. */
static hnsw_t *hnsw_remap(hnsw_t *g, const int32_t *map, size_t n, size_t cap)
{
    hnsw_t *r = hnsw_new(g->m, g->efc);
    if (!r || hnsw_grow(r, cap)) {
        hnsw_free(r);
        return NULL;
    }
    int32_t best = -1;
    for (size_t s = 0; s < n; s++) {
        int32_t t = map[s];
        if (t < 0)
            continue;
        int lv = g->level[s];
        if (lv && !(r->upper[t] = calloc((size_t)lv * (size_t)(r->m + 1), 4))) {
            hnsw_free(r);
            return NULL;
        }
        r->level[t] = (uint8_t)lv;
        if (best < 0 || lv > r->level[best])
            best = t;
        for (int layer = 0; layer <= lv; layer++) {
            const int32_t *src = links(g, (int32_t)s, layer);
            int32_t *dst = links(r, t, layer);
            int k = 0;
            for (int i = 1; i <= src[0]; i++)
                if (src[i] >= 0 && (size_t)src[i] < n && map[src[i]] >= 0)
                    dst[++k] = map[src[i]];
            dst[0] = k;
        }
    }
    int32_t e = g->entry >= 0 && (size_t)g->entry < n ? map[g->entry] : -1;
    if (e < 0 || (best >= 0 && r->level[best] > r->level[e]))
        e = best;
    r->entry = e;
    r->max_level = e < 0 ? -1 : r->level[e];
    return r;
}

static int graph_save(aos_memory_index_t *ix, const char *path, atomic_int *stop, char *why,
                      size_t whylen);
static void graph_load(aos_memory_index_t *ix, build_t *b);

/* Under the write lock, by the last builder out: inserts the slots added
 * since the last chunk and swaps the graph in (or drops it on error); a
 * rebuild also drops the dead slots from the graph and compacts the
 * slots. Then, out of the lock, saves the graph to the file (unless it
 * is the file's as loaded). */
static void build_finish(aos_memory_index_t *ix, build_t *b)
{
    wrlock(ix);
    hnsw_t *g = b->g;
    uv_mutex_lock(&b->mu);
    int rc = b->rc;
    uv_mutex_unlock(&b->mu);
    if (!rc) {
        g->concurrent = 0;
        rc = hnsw_grow(g, ix->cap);
    }
    size_t inserted = 0;
    for (size_t s = b->next; !rc && s < ix->n; s++)
        if (!ix->dead[s] && !in_file(b, s)) {
            rc = hnsw_insert(ix, g, (int32_t)s);
            inserted++;
        }
    if (!rc && b->compact) {
        int32_t *map = malloc((ix->n ? ix->n : 1) * sizeof(*map));
        hnsw_t *r = NULL;
        if (map) {
            int32_t w = 0;
            for (size_t s = 0; s < ix->n; s++)
                map[s] = ix->dead[s] ? -1 : w++;
            r = hnsw_remap(g, map, ix->n, ix->cap);
        }
        free(map);
        if (r) {
            hnsw_free(g);
            g = r;
            compact(ix); /* renumbers as map did */
        } else {
            rc = AOS_ENOMEM;
        }
    }
    int save = 0;
    if (!rc) {
        hnsw_free(ix->hnsw); /* a rebuild's old graph */
        ix->hnsw = g;
        g = NULL;
        aos_memory_hnsw_info_t *in = &ix->info;
        uv_mutex_lock(&b->mu);
        inserted += b->inserted;
        uv_mutex_unlock(&b->mu);
        in->builds++;
        in->rebuilds += b->compact;
        in->from_file = b->file_nodes > 0;
        in->file_nodes = b->file_nodes;
        in->file_inserted = b->file_nodes ? inserted : 0;
        if (b->file_nodes && b->file_nodes == b->file_count && !inserted)
            ix->saved_at = ix->changes; /* the file is this graph */
        else
            save = b->save && b->path;
        ix->retry_ns = 0;
        ix->retry_at = 0;
    } else {
        /* a later change may try again (rebuilds), after a back-off */
        ix->retry_ns = ix->retry_ns ? ix->retry_ns * 2 : REBUILD_RETRY_NS;
        if (ix->retry_ns > REBUILD_RETRY_MAX_NS)
            ix->retry_ns = REBUILD_RETRY_MAX_NS;
        ix->retry_at = uv_hrtime() + ix->retry_ns;
    }
    hnsw_free(g);
    ix->info.last_rc = rc;
    uv_mutex_lock(&b->mu);
    b->g = NULL;
    b->rc = rc;
    b->next = ix->n;
    uv_mutex_unlock(&b->mu);
    uv_rwlock_wrunlock(&ix->lock);
    if (save) {
        char why[256];
        double t0 = (double)uv_hrtime();
        int src = graph_save(ix, b->path, &b->stop, why, sizeof(why));
        if (!src)
            aos_log_info("memory", "HNSW graph saved to %s in %.1f s", b->path,
                         ((double)uv_hrtime() - t0) / 1e9);
        else if (src != AOS_ECANCELED)
            aos_log_warn("memory", "unable to save the HNSW graph to %s: %s", b->path, why);
    }
    /* done only now (hnsw_wait returns after the save), under both locks
     * as the readers of done hold either */
    wrlock(ix);
    uv_mutex_lock(&b->mu);
    b->done = 1;
    uv_mutex_unlock(&b->mu);
    uv_rwlock_wrunlock(&ix->lock);
}

static void build_worker(void *arg)
{
    aos_memory_index_t *ix = arg;
    build_t *b = ix->build;
    if (b->nice > 0) /* Linux: a thread's own niceness */
        (void)setpriority(PRIO_PROCESS, (id_t)gettid(), b->nice);
    if (atomic_fetch_add(&b->started, 1) == 0 && b->path) {
        graph_load(ix, b); /* the first builder reads the file; the others wait */
    } else {
        uv_mutex_lock(&b->mu);
        while (!b->ready)
            uv_cond_wait(&b->ready_cond, &b->mu);
        uv_mutex_unlock(&b->mu);
    }
    for (;;) {
        if (atomic_load(&b->stop))
            break;
        uv_mutex_lock(&ix->gate); /* a waiting change goes first */
        uv_mutex_unlock(&ix->gate);
        uv_rwlock_rdlock(&ix->lock);
        uv_mutex_lock(&b->mu);
        size_t s0 = b->next, n = ix->n;
        /* past the slots with nothing to insert (all of them, nearly, after
         * a file was read) without a lock round each */
        while (s0 < n && (ix->dead[s0] || in_file(b, s0)))
            s0++;
        b->next = s0;
        if (atomic_load(&b->stop) || b->rc || b->done || s0 >= n) {
            uv_mutex_unlock(&b->mu);
            uv_rwlock_rdunlock(&ix->lock);
            break;
        }
        size_t s1 = s0 + BUILD_CHUNK < n ? s0 + BUILD_CHUNK : n;
        b->next = s1;
        b->inflight++;
        int rc = 0;
        if (s1 > b->g->cap) {
            uv_rwlock_wrlock(&b->glock);
            rc = hnsw_grow(b->g, ix->cap);
            uv_rwlock_wrunlock(&b->glock);
        }
        uv_mutex_unlock(&b->mu);
        uv_rwlock_rdlock(&b->glock);
        size_t inserted = 0;
        /* dead slots are left out: nothing would return them */
        for (size_t s = s0; s < s1 && !rc; s++)
            if (!ix->dead[s] && !in_file(b, s)) {
                rc = hnsw_insert(ix, b->g, (int32_t)s);
                inserted++;
            }
        uv_rwlock_rdunlock(&b->glock);
        uv_rwlock_rdunlock(&ix->lock);
        uv_mutex_lock(&b->mu);
        b->inflight--;
        b->inserted += inserted;
        if (rc && !b->rc)
            b->rc = rc;
        uv_mutex_unlock(&b->mu);
    }
    uv_mutex_lock(&b->mu);
    int last = --b->nth == 0 && !b->done;
    uv_mutex_unlock(&b->mu);
    if (last && !atomic_load(&b->stop))
        build_finish(ix, b);
    else if (last) {
        uv_mutex_lock(&b->mu);
        b->done = 1;
        if (!b->rc)
            b->rc = AOS_ECANCELED;
        uv_mutex_unlock(&b->mu);
    }
}

/* Under the write lock: starts a build (compact: a rebuild beside the
 * graph in use, see build_finish). */
static int start_locked(aos_memory_index_t *ix, int m, int ef_construction, int threads, int nice,
                        int compact_after)
{
    if (ix->build) { /* an earlier build is over: its threads are too, or end now */
        build_join(ix->build);
        build_destroy(ix->build);
        ix->build = NULL;
    }
    build_t *b = calloc(1, sizeof(*b));
    hnsw_t *g = hnsw_new(m, ef_construction);
    if (!b || !g || uv_mutex_init(&b->mu)) {
        free(b);
        hnsw_free(g);
        return AOS_ENOMEM;
    }
    if (uv_cond_init(&b->ready_cond)) {
        uv_mutex_destroy(&b->mu);
        free(b);
        hnsw_free(g);
        return AOS_ENOMEM;
    }
    if (uv_rwlock_init(&b->glock)) {
        uv_cond_destroy(&b->ready_cond);
        uv_mutex_destroy(&b->mu);
        free(b);
        hnsw_free(g);
        return AOS_ENOMEM;
    }
    b->g = g;
    if (hnsw_grow(g, ix->cap) || (ix->path && !(b->path = strdup(ix->path)))) {
        build_destroy(b);
        return AOS_ENOMEM;
    }
    g->concurrent = threads > 1;
    b->nice = nice;
    b->compact = compact_after;
    b->save = ix->save_built;
    b->ready = !b->path || compact_after; /* a rebuild does not read the file */
    atomic_init(&b->stop, 0);
    atomic_init(&b->started, b->ready);
    ix->build = b;
    ix->threads = threads;
    ix->nice = nice;
    /* the builders wait for the read lock, so none ends before nth is set */
    int made = 0;
    while (made < threads && !uv_thread_create(&b->th[made], build_worker, ix))
        made++;
    b->nth = b->nth0 = made;
    if (!b->nth0) {
        build_destroy(b);
        ix->build = NULL;
        return AOS_ENOMEM;
    }
    return 0;
}

/* Under the write lock, after a change: a rebuild when most slots are dead. */
static void maybe_rebuild(aos_memory_index_t *ix)
{
    if (!ix->hnsw || (ix->build && !ix->build->done) || ix->dead_count < REBUILD_MIN_DEAD ||
        ix->dead_count * 2 <= ix->n || (ix->retry_at && uv_hrtime() < ix->retry_at))
        return;
    (void)start_locked(ix, ix->hnsw->m, ix->hnsw->efc, ix->threads > 0 ? ix->threads : 1, ix->nice,
                       1);
}

int aos_memory_index_hnsw_start(aos_memory_index_t *ix, int m, int ef_construction, int threads,
                                int nice)
{
    if (m <= 0)
        m = 16;
    if (ef_construction <= 0)
        ef_construction = 200;
    if (m < 2 || m > 64 || ef_construction > 4096 || threads < 1 || threads > BUILD_MAX_THREADS ||
        nice < 0 || nice > 19)
        return AOS_EINVAL;
    wrlock(ix);
    int rc = 0;
    if (!ix->hnsw && !(ix->build && !ix->build->done)) /* else built, or being built */
        rc = start_locked(ix, m, ef_construction, threads, nice, 0);
    uv_rwlock_wrunlock(&ix->lock);
    return rc;
}

int aos_memory_index_hnsw_wait(aos_memory_index_t *ix)
{
    uv_rwlock_rdlock(&ix->lock);
    build_t *b = ix->build;
    int built = ix->hnsw != NULL;
    uv_rwlock_rdunlock(&ix->lock);
    if (!b)
        return built ? 0 : AOS_ENOTFOUND;
    build_join(b);
    uv_mutex_lock(&b->mu);
    int rc = b->rc;
    uv_mutex_unlock(&b->mu);
    return rc;
}

int aos_memory_index_hnsw_build(aos_memory_index_t *ix, int m, int ef_construction)
{
    int rc = aos_memory_index_hnsw_start(ix, m, ef_construction, 1, 0);
    return rc ? rc : aos_memory_index_hnsw_wait(ix);
}

aos_memory_hnsw_state_t aos_memory_index_hnsw_state(aos_memory_index_t *ix)
{
    uv_rwlock_rdlock(&ix->lock);
    aos_memory_hnsw_state_t st = ix->hnsw          ? AOS_MEMORY_HNSW_READY
                                 : !ix->build      ? AOS_MEMORY_HNSW_NONE
                                 : ix->build->done ? AOS_MEMORY_HNSW_FAILED
                                                   : AOS_MEMORY_HNSW_BUILDING;
    uv_rwlock_rdunlock(&ix->lock);
    return st;
}

void aos_memory_index_hnsw_info(aos_memory_index_t *ix, aos_memory_hnsw_info_t *out)
{
    uv_rwlock_rdlock(&ix->lock);
    *out = ix->info;
    out->state = ix->hnsw          ? AOS_MEMORY_HNSW_READY
                 : !ix->build      ? AOS_MEMORY_HNSW_NONE
                 : ix->build->done ? AOS_MEMORY_HNSW_FAILED
                                   : AOS_MEMORY_HNSW_BUILDING;
    out->m = ix->hnsw ? ix->hnsw->m : 0;
    out->ef_construction = ix->hnsw ? ix->hnsw->efc : 0;
    out->slots = ix->n;
    out->dead = ix->dead_count;
    out->building = ix->build && !ix->build->done;
    uv_rwlock_rdunlock(&ix->lock);
}

/* ---- the graph's file ----------------------------------------------------------
 * Host byte order (a file is read back on the machine that wrote it; one
 * from another byte order fails the version check: 1 reads as 2^24),
 * a 64-byte header, then the body:
 *
 *   0  "AOSHNSW\0"   8  u32 version (1)   12 u32 dims   16 u32 M
 *   20 u32 efConstruction   24 u64 count (nodes)   32 i64 entry (-1: none)
 *   40 u64 body bytes   48 u64 0   56 u64 checksum
 *   body: count x i64 id; count x u64 hash of the node's vector (its
 *   dims x 4 bytes); count x u32 level (0..15); then per node, per layer
 *   0..level: u32 n (<= 2M on layer 0, <= M above), n x u32 node numbers
 *   (< count, of a node whose level reaches that layer).
 *
 * Nodes are the live slots when the save began, numbered in slot order;
 * the dead are left out with the links to them. The checksum chains
 * every u32 of the body, then the header's first 56 bytes, through
 * h = (h ^ w) * odd; h ^= h >> 32 - each step a bijection, so any one
 * word changed changes the sum. The loader trusts nothing: every count,
 * node number and level is checked before use, allocations are bounded
 * by the file's size, and a node is matched to the index's live vector of
 * its id only when the vector's hash is the node's (so a vector changed
 * since, or another database's, is never linked by a stale list). A
 * graph that fails any check is dropped whole; the worst a file that
 * passes can do is a poor graph (lower recall), never a wrong hit: the
 * hits' scores come from the vectors, and dead slots are never returned.
 *
 * Loading runs in the first builder thread of aos_memory_index_hnsw_start
 * (never on the caller's thread): the ids and hashes are matched under
 * the index's read lock 4096 nodes at a time, then the lists are read
 * into a private graph numbered by slot, and the other builders then
 * insert the live slots the file does not hold, as in a build. */

#define FILE_MAGIC   "AOSHNSW"
#define FILE_VERSION 1u
#define FILE_HEADER  64
#define FILE_CHUNK   4096 /* nodes per read-locked step of a save or a load */
#define IO_BUF       (1u << 20)

static uint64_t sum_step(uint64_t h, uint32_t w)
{
    h = (h ^ w) * 0x9E3779B97F4A7C15ull;
    return h ^ (h >> 32);
}

/* A hash of a vector's bytes, 8 at a time. */
static uint64_t vec_hash(const float *v, int dims)
{
    const unsigned char *p = (const unsigned char *)v;
    size_t n = (size_t)dims * 4;
    uint64_t h = 0xCBF29CE484222325ull ^ n;
    for (; n >= 8; n -= 8, p += 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = (h ^ w) * 0x9E3779B97F4A7C15ull;
        h ^= h >> 29;
    }
    if (n) {
        uint32_t w;
        memcpy(&w, p, 4);
        h = sum_step(h, w);
    }
    return h;
}

typedef struct {
    int fd, err;
    unsigned char *buf;
    size_t pos, len;
    uint64_t sum, bytes;
} fio_t;

static void wr_flush(fio_t *w)
{
    size_t off = 0;
    while (!w->err && off < w->pos) {
        ssize_t k = write(w->fd, w->buf + off, w->pos - off);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            w->err = 1;
        else
            off += (size_t)k;
    }
    w->pos = 0;
}

static void wr_u32(fio_t *w, uint32_t v)
{
    if (w->pos + 4 > IO_BUF)
        wr_flush(w);
    memcpy(w->buf + w->pos, &v, 4);
    w->pos += 4;
    w->bytes += 4;
    w->sum = sum_step(w->sum, v);
}

static void wr_u64(fio_t *w, uint64_t v)
{
    wr_u32(w, (uint32_t)v);
    wr_u32(w, (uint32_t)(v >> 32));
}

/* The next u32 of the body; sets err at its end (or on a read error). */
static uint32_t rd_u32(fio_t *r)
{
    if (r->pos + 4 > r->len) {
        memmove(r->buf, r->buf + r->pos, r->len - r->pos);
        r->len -= r->pos;
        r->pos = 0;
        while (r->len < 4) {
            ssize_t k = read(r->fd, r->buf + r->len, IO_BUF - r->len);
            if (k < 0 && errno == EINTR)
                continue;
            if (k <= 0) {
                r->err = 1;
                return 0;
            }
            r->len += (size_t)k;
        }
    }
    uint32_t v;
    memcpy(&v, r->buf + r->pos, 4);
    r->pos += 4;
    r->bytes += 4;
    r->sum = sum_step(r->sum, v);
    return v;
}

static uint64_t rd_u64(fio_t *r)
{
    uint64_t lo = rd_u32(r);
    return lo | (uint64_t)rd_u32(r) << 32;
}

static uint64_t header_sum(uint64_t h, const unsigned char *hdr)
{
    for (int i = 0; i < 56; i += 4) {
        uint32_t w;
        memcpy(&w, hdr + i, 4);
        h = sum_step(h, w);
    }
    return h;
}

/* The read lock, a change waiting first (as the builders take it). */
static void rdlock_after_changes(aos_memory_index_t *ix)
{
    uv_mutex_lock(&ix->gate);
    uv_mutex_unlock(&ix->gate);
    uv_rwlock_rdlock(&ix->lock);
}

/* Reads b->path into a graph numbered by slot: 0, or an error with why. */
static int graph_read(aos_memory_index_t *ix, build_t *b, hnsw_t **out, char *why, size_t whylen)
{
    *out = NULL;
    fio_t r = {.fd = -1};
    int64_t *ids = NULL;
    uint64_t *hashes = NULL;
    uint8_t *level = NULL, *have = NULL;
    int32_t *map = NULL;
    hnsw_t *g = NULL;
    int rc = AOS_EINVAL, m = b->g->m, efc = b->g->efc, dims = ix->dims;
    unsigned char hdr[FILE_HEADER];
    struct stat st;
    r.fd = open(b->path, O_RDONLY | O_CLOEXEC);
    if (r.fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        rc = errno == ENOENT ? AOS_ENOTFOUND : AOS_EIO;
        goto out;
    }
    if (fstat(r.fd, &st) || pread(r.fd, hdr, FILE_HEADER, 0) != FILE_HEADER) {
        snprintf(why, whylen, "truncated (no header)");
        goto out;
    }
    uint32_t version, fdims, fm, fefc;
    uint64_t count, body, zero, sum;
    int64_t entry;
    memcpy(&version, hdr + 8, 4);
    memcpy(&fdims, hdr + 12, 4);
    memcpy(&fm, hdr + 16, 4);
    memcpy(&fefc, hdr + 20, 4);
    memcpy(&count, hdr + 24, 8);
    memcpy(&entry, hdr + 32, 8);
    memcpy(&body, hdr + 40, 8);
    memcpy(&zero, hdr + 48, 8);
    memcpy(&sum, hdr + 56, 8);
    if (memcmp(hdr, FILE_MAGIC, 8) || zero) {
        snprintf(why, whylen, "not a graph file");
        goto out;
    }
    if (version != FILE_VERSION) {
        snprintf(why, whylen, "version %u, not %u", version, FILE_VERSION);
        goto out;
    }
    if (fdims != (uint32_t)dims || fm != (uint32_t)m || fefc != (uint32_t)efc) {
        snprintf(why, whylen,
                 "made for %u dims, M %u, efConstruction %u; the index has %d dims, M %d, "
                 "efConstruction %d",
                 fdims, fm, fefc, dims, m, efc);
        rc = AOS_ECONFLICT;
        goto out;
    }
    /* each node takes at least 24 bytes: id, hash, level, layer 0's count */
    if (st.st_size < FILE_HEADER || body != (uint64_t)st.st_size - FILE_HEADER || !count ||
        count > INT32_MAX || count > body / 24 || entry < -1 || entry >= (int64_t)count) {
        snprintf(why, whylen, "truncated or corrupt (%lld bytes, header says %llu nodes in %llu)",
                 (long long)st.st_size, (unsigned long long)count, (unsigned long long)body);
        goto out;
    }
    if (lseek(r.fd, FILE_HEADER, SEEK_SET) != FILE_HEADER) {
        snprintf(why, whylen, "%s", strerror(errno));
        rc = AOS_EIO;
        goto out;
    }
    size_t n = (size_t)count;
    ids = malloc(n * sizeof(*ids));
    hashes = malloc(n * sizeof(*hashes));
    level = malloc(n);
    map = malloc(n * sizeof(*map));
    r.buf = malloc(IO_BUF);
    if (!ids || !hashes || !level || !map || !r.buf) {
        snprintf(why, whylen, "out of memory");
        rc = AOS_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < n; j++)
        ids[j] = (int64_t)rd_u64(&r);
    for (size_t j = 0; j < n; j++)
        hashes[j] = rd_u64(&r);
    for (size_t j = 0; j < n && !r.err; j++) {
        uint32_t lv = rd_u32(&r);
        if (lv > 15) {
            snprintf(why, whylen, "corrupt (node %zu: level %u)", j, lv);
            goto out;
        }
        level[j] = (uint8_t)lv;
    }
    if (r.err) {
        snprintf(why, whylen, "truncated");
        goto out;
    }
    /* each node to the live slot of its id holding the same vector */
    size_t have_n = 0, mapped = 0, live = 0;
    for (size_t j0 = 0; j0 < n; j0 += FILE_CHUNK) {
        rdlock_after_changes(ix);
        if (!have) {
            have_n = ix->n;
            have = calloc(have_n ? have_n : 1, 1);
        }
        for (size_t j = j0; have && j < n && j < j0 + FILE_CHUNK; j++) {
            uintptr_t v = (uintptr_t)aos_map_get_u64(&ix->by_id, (uint64_t)ids[j]);
            size_t s = v - 1;
            map[j] = -1;
            if (v && s < have_n && !ix->dead[s] && !have[s] &&
                vec_hash(vec_of(ix, (int32_t)s), dims) == hashes[j]) {
                map[j] = (int32_t)s;
                have[s] = 1;
                mapped++;
            }
        }
        live = ix->n - ix->dead_count;
        uv_rwlock_rdunlock(&ix->lock);
        if (!have) {
            snprintf(why, whylen, "out of memory");
            rc = AOS_ENOMEM;
            goto out;
        }
        if (atomic_load(&b->stop)) {
            snprintf(why, whylen, "stopped");
            rc = AOS_ECANCELED;
            goto out;
        }
    }
    if (mapped * 2 < live || !mapped) {
        snprintf(why, whylen, "it holds %zu of the %zu vectors", mapped, live);
        rc = AOS_ECONFLICT;
        goto out;
    }
    /* the lists, into a graph numbered by slot */
    if (!(g = hnsw_new(m, efc)) || hnsw_grow(g, have_n)) {
        snprintf(why, whylen, "out of memory");
        rc = AOS_ENOMEM;
        goto out;
    }
    for (size_t j = 0; j < n && !r.err; j++) {
        int32_t s = map[j];
        int lv = level[j];
        if (s >= 0) {
            g->level[s] = (uint8_t)lv;
            if (lv && !(g->upper[s] = calloc((size_t)lv * (size_t)(m + 1), 4))) {
                snprintf(why, whylen, "out of memory");
                rc = AOS_ENOMEM;
                goto out;
            }
        }
        for (int layer = 0; layer <= lv && !r.err; layer++) {
            uint32_t k = rd_u32(&r), max = (uint32_t)(layer ? m : 2 * m);
            if (k > max) {
                snprintf(why, whylen, "corrupt (node %zu: %u links on layer %d)", j, k, layer);
                goto out;
            }
            int32_t *l = s >= 0 ? links(g, s, layer) : NULL;
            int kept = 0;
            for (uint32_t i = 0; i < k; i++) {
                uint32_t t = rd_u32(&r);
                if (r.err)
                    break;
                if (t >= count || level[t] < layer) {
                    snprintf(why, whylen, "corrupt (node %zu: a link to %u on layer %d)", j, t,
                             layer);
                    goto out;
                }
                if (l && map[t] >= 0)
                    l[++kept] = map[t];
            }
            if (l)
                l[0] = kept;
        }
    }
    if (r.err || r.bytes != body || r.pos != r.len) {
        snprintf(why, whylen, r.err ? "truncated" : "corrupt (bytes after the last node)");
        goto out;
    }
    {
        char extra;
        if (read(r.fd, &extra, 1) != 0) {
            snprintf(why, whylen, "corrupt (bytes after the last node)");
            goto out;
        }
    }
    if (header_sum(r.sum, hdr) != sum) {
        snprintf(why, whylen, "checksum mismatch");
        goto out;
    }
    /* the entry: the file's if kept and highest, else the highest kept */
    int32_t best = -1;
    for (size_t j = 0; j < n; j++)
        if (map[j] >= 0 && (best < 0 || level[j] > g->level[best]))
            best = map[j];
    int32_t e = entry >= 0 ? map[entry] : -1;
    if (e < 0 || g->level[e] < g->level[best])
        e = best;
    g->entry = e;
    g->max_level = g->level[e];
    b->have = have;
    b->have_n = have_n;
    b->file_nodes = mapped;
    b->file_count = n;
    have = NULL;
    *out = g;
    g = NULL;
    rc = 0;
out:
    if (r.fd >= 0)
        close(r.fd);
    free(r.buf);
    free(ids);
    free(hashes);
    free(level);
    free(map);
    free(have);
    hnsw_free(g);
    return rc;
}

/* The first builder: the file's graph, if it is good, replaces the empty
 * one; then the builders go on (inserting what it lacks, or everything). */
static void graph_load(aos_memory_index_t *ix, build_t *b)
{
    char why[256] = "";
    hnsw_t *g = NULL;
    uint64_t t0 = uv_hrtime();
    int rc = graph_read(ix, b, &g, why, sizeof(why));
    if (!rc) {
        g->concurrent = b->g->concurrent;
        uv_rwlock_wrlock(&b->glock); /* no builder runs yet; for form's sake */
        hnsw_free(b->g);
        b->g = g;
        uv_rwlock_wrunlock(&b->glock);
        aos_log_info("memory",
                     "HNSW graph read from %s in %.1f s: %zu of its %zu nodes match the vectors; "
                     "inserting the rest",
                     b->path, (double)(uv_hrtime() - t0) / 1e9, b->file_nodes, b->file_count);
    } else if (rc == AOS_ENOTFOUND) {
        aos_log_info("memory", "no HNSW graph file at %s yet; building the graph", b->path);
    } else if (rc != AOS_ECANCELED) {
        aos_log_warn("memory", "HNSW graph file %s ignored: %s; building the graph", b->path, why);
    }
    uv_mutex_lock(&b->mu);
    b->ready = 1;
    uv_cond_broadcast(&b->ready_cond);
    uv_mutex_unlock(&b->mu);
}

static int graph_save(aos_memory_index_t *ix, const char *path, atomic_int *stop, char *why,
                      size_t whylen)
{
    char tmp[4096] = "";
    uv_mutex_lock(&ix->save_lock);
    fio_t w = {.fd = -1};
    int32_t *fmap = NULL;
    int rc = 0;
    uv_rwlock_rdlock(&ix->lock);
    hnsw_t *g = ix->hnsw;
    uint64_t epoch = ix->epoch, snap = ix->changes;
    size_t n = ix->n, count = 0;
    int64_t entry = -1;
    uint32_t m = 0, efc = 0;
    if (g && (fmap = malloc((n ? n : 1) * sizeof(*fmap)))) {
        for (size_t s = 0; s < n; s++)
            fmap[s] = ix->dead[s] ? -1 : (int32_t)count++;
        if (g->entry >= 0 && (size_t)g->entry < n)
            entry = fmap[g->entry];
        m = (uint32_t)g->m;
        efc = (uint32_t)g->efc;
    }
    uv_rwlock_rdunlock(&ix->lock);
    if (!g || !fmap) {
        snprintf(why, whylen, g ? "out of memory" : "no graph");
        rc = g ? AOS_ENOMEM : AOS_ENOTFOUND;
        goto out;
    }
    if (!(w.buf = malloc(IO_BUF))) {
        snprintf(why, whylen, "out of memory");
        rc = AOS_ENOMEM;
        goto out;
    }
    aos_err_t ferr = {0, ""};
    w.fd = aos_file_tmp(path, tmp, sizeof(tmp), 0600, &ferr);
    unsigned char hdr[FILE_HEADER] = {0};
    if (w.fd < 0) {
        snprintf(why, whylen, "%s", ferr.msg);
        rc = ferr.code;
        goto out;
    }
    if (pwrite(w.fd, hdr, FILE_HEADER, 0) != FILE_HEADER ||
        lseek(w.fd, FILE_HEADER, SEEK_SET) != FILE_HEADER) {
        snprintf(why, whylen, "creating the temporary file: %s", strerror(errno));
        rc = AOS_EIO;
        goto out;
    }
    /* four passes over the slots: ids, hashes, levels, lists */
    for (int pass = 0; pass < 4 && !rc; pass++)
        for (size_t s0 = 0; s0 < n && !rc; s0 += FILE_CHUNK) {
            rdlock_after_changes(ix);
            if (ix->epoch != epoch || ix->hnsw != g) {
                snprintf(why, whylen, "the graph was rebuilt meanwhile");
                rc = AOS_ECONFLICT;
            } else if (stop && atomic_load(stop)) {
                snprintf(why, whylen, "stopped");
                rc = AOS_ECANCELED;
            }
            for (size_t s = s0; !rc && s < n && s < s0 + FILE_CHUNK; s++) {
                if (fmap[s] < 0)
                    continue;
                if (pass == 0) {
                    wr_u64(&w, (uint64_t)ix->ids[s]);
                } else if (pass == 1) {
                    wr_u64(&w, vec_hash(vec_of(ix, (int32_t)s), ix->dims));
                } else if (pass == 2) {
                    wr_u32(&w, g->level[s]);
                } else {
                    for (int layer = 0; layer <= g->level[s]; layer++) {
                        const int32_t *l = links(g, (int32_t)s, layer);
                        uint32_t k = 0;
                        for (int i = 1; i <= l[0]; i++)
                            k += (size_t)l[i] < n && fmap[l[i]] >= 0;
                        wr_u32(&w, k);
                        for (int i = 1; i <= l[0]; i++)
                            if ((size_t)l[i] < n && fmap[l[i]] >= 0)
                                wr_u32(&w, (uint32_t)fmap[l[i]]);
                    }
                }
            }
            uv_rwlock_rdunlock(&ix->lock);
            if (w.err && !rc) {
                snprintf(why, whylen, "writing the temporary file: %s", strerror(errno));
                rc = AOS_EIO;
            }
        }
    if (rc)
        goto out;
    wr_flush(&w);
    uint32_t version = FILE_VERSION, dims = (uint32_t)ix->dims;
    uint64_t cnt = count;
    memcpy(hdr, FILE_MAGIC, 8);
    memcpy(hdr + 8, &version, 4);
    memcpy(hdr + 12, &dims, 4);
    memcpy(hdr + 16, &m, 4);
    memcpy(hdr + 20, &efc, 4);
    memcpy(hdr + 24, &cnt, 8);
    memcpy(hdr + 32, &entry, 8);
    memcpy(hdr + 40, &w.bytes, 8);
    uint64_t sum = header_sum(w.sum, hdr);
    memcpy(hdr + 56, &sum, 8);
    if (w.err || pwrite(w.fd, hdr, FILE_HEADER, 0) != FILE_HEADER) {
        snprintf(why, whylen, "writing the temporary file: %s", strerror(errno));
        rc = AOS_EIO;
        goto out;
    }
    int fd = w.fd;
    w.fd = -1;
    if ((rc = aos_file_commit(fd, tmp, path, &ferr))) { /* fsync, rename, fsync the directory */
        snprintf(why, whylen, "%s", ferr.msg);
        goto out;
    }
    wrlock(ix);
    if (ix->epoch == epoch && ix->hnsw == g && snap > ix->saved_at)
        ix->saved_at = snap; /* changes made during the save: still dirty */
    uv_rwlock_wrunlock(&ix->lock);
out:
    if (w.fd >= 0) {
        close(w.fd);
        unlink(tmp);
    }
    free(w.buf);
    free(fmap);
    uv_mutex_unlock(&ix->save_lock);
    return rc;
}

static void saver_main(void *arg)
{
    aos_memory_index_t *ix = arg;
    char why[256] = "", *path = NULL;
    uv_rwlock_rdlock(&ix->lock);
    path = ix->path ? strdup(ix->path) : NULL;
    int nice = ix->nice > 10 ? ix->nice : 10;
    uv_rwlock_rdunlock(&ix->lock);
    (void)setpriority(PRIO_PROCESS, (id_t)gettid(), nice);
    uint64_t t0 = uv_hrtime();
    int rc = path ? graph_save(ix, path, &ix->saver_stop, why, sizeof(why)) : AOS_ENOMEM;
    if (!rc)
        aos_log_info("memory", "HNSW graph saved to %s in %.1f s (periodic)", path,
                     (double)(uv_hrtime() - t0) / 1e9);
    else if (rc != AOS_ECANCELED && rc != AOS_ECONFLICT)
        aos_log_warn("memory", "unable to save the HNSW graph to %s: %s", path ? path : "?",
                     path ? why : "out of memory");
    free(path);
    atomic_store(&ix->saver_busy, 0);
}

/* Under the write lock, after a change: once a tenth of the graph's nodes
 * (AUTOSAVE_SHARE; at least AUTOSAVE_MIN) changed since the file last
 * matched it, a thread of the index's own (niceness as the builders', at
 * least 10) saves it, so that a crash leaves fewer changes for the next
 * start to apply. Not while a build or rebuild runs (it saves when it
 * ends). */
static void maybe_autosave(aos_memory_index_t *ix)
{
    if (!ix->hnsw || !ix->path || !ix->save_built || (ix->build && !ix->build->done))
        return;
    uint64_t live = ix->n - ix->dead_count, due = live / AUTOSAVE_SHARE;
    if (due < AUTOSAVE_MIN)
        due = AUTOSAVE_MIN;
    if (ix->changes - ix->saved_at < due || atomic_load(&ix->saver_busy))
        return;
    if (ix->saver_made) /* over: clearing busy was its last step */
        uv_thread_join(&ix->saver);
    ix->saver_made = 0;
    /* saved_at moves only when the save ends; busy holds off another */
    atomic_store(&ix->saver_busy, 1);
    if (uv_thread_create(&ix->saver, saver_main, ix))
        atomic_store(&ix->saver_busy, 0);
    else
        ix->saver_made = 1;
}

int aos_memory_index_hnsw_file(aos_memory_index_t *ix, const char *path, int save)
{
    char *p = path ? strdup(path) : NULL;
    if (path && !p)
        return AOS_ENOMEM;
    wrlock(ix);
    free(ix->path);
    ix->path = p;
    ix->save_built = save;
    uv_rwlock_wrunlock(&ix->lock);
    return 0;
}

int aos_memory_index_hnsw_save(aos_memory_index_t *ix, const char *path)
{
    char why[256] = "";
    char *own = NULL;
    if (!path) {
        uv_rwlock_rdlock(&ix->lock);
        own = ix->path ? strdup(ix->path) : NULL;
        int had = ix->path != NULL;
        uv_rwlock_rdunlock(&ix->lock);
        if (!own)
            return had ? AOS_ENOMEM : AOS_ENOTFOUND;
        path = own;
    }
    int rc = graph_save(ix, path, NULL, why, sizeof(why));
    if (rc && rc != AOS_ENOTFOUND)
        aos_log_warn("memory", "unable to save the HNSW graph to %s: %s", path, why);
    free(own);
    return rc;
}

int aos_memory_index_hnsw_dirty(aos_memory_index_t *ix)
{
    uv_rwlock_rdlock(&ix->lock);
    int d = ix->hnsw && ix->changes != ix->saved_at;
    uv_rwlock_rdunlock(&ix->lock);
    return d;
}

/* int8: the walk on the codes, the ef found re-ranked with float32. */
static int search_hnsw(aos_memory_index_t *ix, const float *qf, topk_t *t, int ef, int int8,
                       aos_memory_filter_fn filter, void *arg)
{
    hnsw_t *g = ix->hnsw;
    if (g->entry < 0 || g->max_level < 0)
        return 0;
    if (ef < t->k)
        ef = t->k;
    qv_t q[1] = {{qf, NULL, 0}};
    int8_t *qc = NULL;
    if (int8) {
        if (!(qc = malloc((size_t)ix->dims)))
            return AOS_ENOMEM;
        q->cs = quantize(qf, ix->dims, qc);
        q->c = qc;
    }
    int32_t ep = g->entry;
    float epd = dist(ix, q, ep);
    for (int layer = g->max_level; layer > 0; layer--)
        greedy(ix, g, q, &ep, &epd, layer);
    dheap_t top = {NULL, 0, 0, 0};
    int rc = search_layer(ix, g, q, ep, ef, 0, 0, filter, arg, &top);
    for (int i = 0; !rc && i < top.n; i++) {
        int32_t s = top.a[i].s;
        topk_push(t, ix->ids[s], int8 ? dot_f(qf, vec_of(ix, s), ix->dims) : 1.0f - top.a[i].d);
    }
    free(top.a);
    free(qc);
    return rc ? rc : topk_finish(t);
}

int aos_memory_index_search(aos_memory_index_t *ix, const float *q, int k,
                            aos_memory_method_t method, int ef, aos_memory_filter_fn filter,
                            void *arg, aos_memory_hit_t *hits)
{
    return aos_memory_index_search_by(ix, q, k, method, ef, filter, arg, hits, NULL);
}

int aos_memory_index_search_by(aos_memory_index_t *ix, const float *q, int k,
                               aos_memory_method_t method, int ef, aos_memory_filter_fn filter,
                               void *arg, aos_memory_hit_t *hits, aos_memory_method_t *used)
{
    if (k <= 0)
        return AOS_EINVAL;
    topk_t t = {hits, 0, k};
    uv_rwlock_rdlock(&ix->lock);
    if (method == AOS_MEMORY_SEARCH_AUTO)
        method = ix->hnsw ? (ix->quantize ? AOS_MEMORY_SEARCH_HNSW_INT8 : AOS_MEMORY_SEARCH_HNSW)
                 : ix->quantize && ix->n - ix->dead_count >= 4096 ? AOS_MEMORY_SEARCH_INT8
                                                                  : AOS_MEMORY_SEARCH_EXACT;
    if (used)
        *used = method;
    int rc;
    if (method == AOS_MEMORY_SEARCH_HNSW || method == AOS_MEMORY_SEARCH_HNSW_INT8)
        rc = ix->hnsw && (method == AOS_MEMORY_SEARCH_HNSW || ix->quantize)
                 ? search_hnsw(ix, q, &t, ef > 0 ? ef : (k > 64 ? k : 64),
                               method == AOS_MEMORY_SEARCH_HNSW_INT8, filter, arg)
                 : AOS_EINVAL;
    else if (method == AOS_MEMORY_SEARCH_INT8)
        rc = ix->quantize ? scan_int8(ix, q, &t, filter, arg) : AOS_EINVAL;
    else
        rc = scan_exact(ix, q, &t, filter, arg);
    uv_rwlock_rdunlock(&ix->lock);
    return rc;
}

/* ---- reciprocal rank fusion ------------------------------------------------- */

static int fused_cmp(const void *a, const void *b)
{
    const aos_memory_fused_t *x = a, *y = b;
    if (x->rrf != y->rrf)
        return x->rrf > y->rrf ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

int aos_memory_rrf(const int64_t *a, int na, const int64_t *b, int nb, int k0,
                   aos_memory_fused_t *out)
{
    int n = 0;
    for (int i = 0; i < na; i++) {
        int dup = 0;
        for (int j = 0; j < n && !dup; j++)
            dup = out[j].id == a[i];
        if (dup)
            continue; /* a list names an id once: its best rank counts */
        out[n++] = (aos_memory_fused_t){a[i], 1.0 / (k0 + i + 1), i + 1, 0};
    }
    for (int i = 0; i < nb; i++) {
        int j = 0;
        while (j < n && out[j].id != b[i])
            j++;
        if (j < n) {
            if (out[j].rank_b)
                continue;
            out[j].rrf += 1.0 / (k0 + i + 1);
            out[j].rank_b = i + 1;
        } else {
            out[n++] = (aos_memory_fused_t){b[i], 1.0 / (k0 + i + 1), 0, i + 1};
        }
    }
    qsort(out, (size_t)n, sizeof(*out), fused_cmp);
    return n;
}
