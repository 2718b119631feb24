/* test_memory.c - the pieces of the memory service that stand alone: the
 * terms of Chinese, English and mixed text (exact lists), the built-in
 * embedding (deterministic, unit length, case-blind, nearer for shared
 * terms), the vector index (exact top-k against a brute force of our own,
 * int8 recall with re-ranking, HNSW recall on random data, the graph built
 * by threads while searches, adds and removes go on, removal,
 * replacement, filters, compaction; the graph's file saved, loaded,
 * loaded with changes applied, and ignored when truncated, corrupt or
 * made for other parameters or vectors; the rebuild when most nodes are
 * dead), reciprocal rank fusion (exact scores), and the handling of a
 * model server's embeddings answer (--memory-embed llm): the llm client's
 * reader fed real bodies, then mem_embed_check (count, dimension,
 * normalisation, the error naming the model), error bodies and the
 * index's dimension check. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llm/internal.h"
#include "memory/internal.h"

static char *terms(const char *s)
{
    char *out = NULL;
    assert_int_equal(aos_memory_terms_join(s, strlen(s), &out, NULL), 0);
    return out;
}

#define TERMS_EQ(in, want)                                                                         \
    do {                                                                                           \
        char *got_ = terms(in);                                                                    \
        assert_string_equal(got_, want);                                                           \
        free(got_);                                                                                \
    } while (0)

static void test_terms(void **state)
{
    (void)state;
    TERMS_EQ("Hello, World! v2.0", "hello world v2 0");
    TERMS_EQ("向量检索", "向量 量检 检索");
    TERMS_EQ("我", "我");
    TERMS_EQ("用GPT模型做向量检索。好", "用 gpt 模型 型做 做向 向量 量检 检索 好");
    TERMS_EQ("Ｆｕｌｌ　ＷＩＤＴＨ１２", "full width12");
    TERMS_EQ("café ÉTÉ", "café ÉtÉ");
    TERMS_EQ("", "");
    TERMS_EQ("  ,,, !!! ", "");
    TERMS_EQ("カタカナ・ひら", "カタ タカ カナ ひら");
    TERMS_EQ("한국어 text", "한국 국어 text");
    /* invalid UTF-8 separates */
    TERMS_EQ("ab\xff"
             "cd\xe4\xb8",
             "ab cd");
    /* a word is cut at AOS_MEMORY_TERM_MAX bytes */
    char big[200];
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *t = terms(big);
    assert_int_equal(strlen(t), AOS_MEMORY_TERM_MAX);
    free(t);
    size_t n = 0;
    char *out;
    assert_int_equal(aos_memory_terms_join("a b 中文字", strlen("a b 中文字"), &out, &n), 0);
    assert_int_equal(n, 4);
    free(out);
}

static float dotv(const float *a, const float *b, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++)
        s += (double)a[i] * b[i];
    return (float)s;
}

static void test_embed(void **state)
{
    (void)state;
    float a[AOS_MEMORY_DIMS], b[AOS_MEMORY_DIMS], c[AOS_MEMORY_DIMS];
    const char *s = "Rotate the API keys every ninety days";
    assert_int_equal(aos_memory_embed(s, strlen(s), a), 0);
    assert_true(fabsf(dotv(a, a, AOS_MEMORY_DIMS) - 1.0f) < 1e-5f);
    assert_int_equal(aos_memory_embed("ROTATE the api KEYS every Ninety days", 37, b), 0);
    assert_memory_equal(a, b, sizeof(a));
    /* nothing to embed: zero */
    assert_int_equal(aos_memory_embed("!!", 2, c), 0);
    for (int i = 0; i < AOS_MEMORY_DIMS; i++)
        assert_true(c[i] == 0.0f);
    /* a single word: its term, its stem ("key") and four trigrams (^ke key
     * eys ys$): six features, five or six buckets (a collision) */
    assert_int_equal(aos_memory_embed("keys", 4, c), 0);
    int nonzero = 0;
    for (int i = 0; i < AOS_MEMORY_DIMS; i++)
        nonzero += c[i] != 0.0f;
    assert_true(nonzero >= 5 && nonzero <= 6);
    /* function words are left out: exactly the same vector */
    assert_int_equal(aos_memory_embed("the keys of it", 14, b), 0);
    assert_memory_equal(b, c, sizeof(b));
    /* stems: rotation and rotating share "rotat" */
    float r1[AOS_MEMORY_DIMS], r2[AOS_MEMORY_DIMS], r3[AOS_MEMORY_DIMS];
    aos_memory_embed("rotation", 8, r1);
    aos_memory_embed("rotating", 8, r2);
    aos_memory_embed("rotunda", 7, r3);
    assert_true(dotv(r1, r2, AOS_MEMORY_DIMS) > dotv(r1, r3, AOS_MEMORY_DIMS) + 0.2f);
    /* shared terms are nearer than none, in both languages */
    const char *q = "API key rotation", *near = "how often to rotate api keys", *far = "lunch menu";
    float vq[AOS_MEMORY_DIMS], vn[AOS_MEMORY_DIMS], vf[AOS_MEMORY_DIMS];
    aos_memory_embed(q, strlen(q), vq);
    aos_memory_embed(near, strlen(near), vn);
    aos_memory_embed(far, strlen(far), vf);
    assert_true(dotv(vq, vn, AOS_MEMORY_DIMS) > dotv(vq, vf, AOS_MEMORY_DIMS) + 0.15f);
    const char *zq = "向量检索", *zn = "用向量做语义检索的方法", *zf = "今天的天气很好";
    aos_memory_embed(zq, strlen(zq), vq);
    aos_memory_embed(zn, strlen(zn), vn);
    aos_memory_embed(zf, strlen(zf), vf);
    assert_true(dotv(vq, vn, AOS_MEMORY_DIMS) > dotv(vq, vf, AOS_MEMORY_DIMS) + 0.2f);
}

/* ---- index ------------------------------------------------------------------ */

static uint64_t rng = 88172645463325252ULL;
static float frand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

static void random_unit(float *v, int d)
{
    double s = 0;
    for (int i = 0; i < d; i++) {
        v[i] = frand();
        s += (double)v[i] * v[i];
    }
    for (int i = 0; i < d; i++)
        v[i] /= (float)sqrt(s);
}

/* The true top k of q among n vectors (ids 1..n, skipping dead[i]). */
static void brute(const float *data, int n, int d, const float *q, int k, const char *dead,
                  aos_memory_hit_t *out)
{
    for (int j = 0; j < k; j++)
        out[j] = (aos_memory_hit_t){0, -INFINITY};
    for (int i = 0; i < n; i++) {
        if (dead && dead[i])
            continue;
        float s = dotv(q, data + (size_t)i * d, d);
        int64_t id = i + 1;
        int j = k - 1;
        if (s < out[j].score || (s == out[j].score && id > out[j].id))
            continue;
        while (j > 0 && (s > out[j - 1].score || (s == out[j - 1].score && id < out[j - 1].id))) {
            out[j] = out[j - 1];
            j--;
        }
        out[j] = (aos_memory_hit_t){id, s};
    }
}

static int overlap(const aos_memory_hit_t *a, int na, const aos_memory_hit_t *b, int nb)
{
    int n = 0;
    for (int i = 0; i < na; i++)
        for (int j = 0; j < nb; j++)
            n += a[i].id == b[j].id;
    return n;
}

#define N 3000
#define D 96
#define K 10

static float *fill(aos_memory_index_t *ix, int n, int d)
{
    float *data = malloc((size_t)n * d * sizeof(float));
    assert_non_null(data);
    for (int i = 0; i < n; i++) {
        random_unit(data + (size_t)i * d, d);
        assert_int_equal(aos_memory_index_add(ix, i + 1, (uint32_t)(i % 3), data + (size_t)i * d),
                         0);
    }
    return data;
}

static void test_index_exact(void **state)
{
    (void)state;
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, D, 1), 0);
    float *data = fill(ix, N, D);
    assert_int_equal(aos_memory_index_count(ix), N);
    float q[D];
    aos_memory_hit_t got[K], want[K];
    for (int t = 0; t < 20; t++) {
        random_unit(q, D);
        brute(data, N, D, q, K, NULL, want);
        assert_int_equal(
            aos_memory_index_search(ix, q, K, AOS_MEMORY_SEARCH_EXACT, 0, NULL, NULL, got), K);
        for (int i = 0; i < K; i++) {
            assert_int_equal(got[i].id, want[i].id);
            assert_true(fabsf(got[i].score - want[i].score) < 1e-5f);
        }
    }
    /* a vector is its own best hit, score 1 */
    assert_int_equal(
        aos_memory_index_search(ix, data + 41 * D, 1, AOS_MEMORY_SEARCH_EXACT, 0, NULL, NULL, got),
        1);
    assert_int_equal(got[0].id, 42);
    assert_true(fabsf(got[0].score - 1.0f) < 1e-5f);
    /* bad input */
    assert_int_equal(aos_memory_index_search(ix, q, 0, AOS_MEMORY_SEARCH_EXACT, 0, NULL, NULL, got),
                     AOS_EINVAL);
    assert_int_equal(aos_memory_index_search(ix, q, 1, AOS_MEMORY_SEARCH_HNSW, 0, NULL, NULL, got),
                     AOS_EINVAL); /* no graph yet */
    q[3] = NAN;
    assert_int_equal(aos_memory_index_add(ix, 99999, 0, q), AOS_EINVAL);
    assert_int_equal(aos_memory_index_count(ix), N);
    free(data);
    aos_memory_index_free(ix);
}

static void test_index_int8(void **state)
{
    (void)state;
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, D, 1), 0);
    float *data = fill(ix, N, D);
    float q[D];
    aos_memory_hit_t got[K], want[K];
    int hit = 0, total = 0;
    for (int t = 0; t < 50; t++) {
        random_unit(q, D);
        brute(data, N, D, q, K, NULL, want);
        int n = aos_memory_index_search(ix, q, K, AOS_MEMORY_SEARCH_INT8, 0, NULL, NULL, got);
        assert_int_equal(n, K);
        hit += overlap(got, n, want, K);
        total += K;
        /* scores are exact after re-ranking */
        for (int i = 0; i < n; i++)
            assert_true(fabsf(got[i].score - dotv(q, data + (got[i].id - 1) * D, D)) < 1e-5f);
    }
    assert_true((double)hit / total >= 0.99);
    free(data);
    aos_memory_index_free(ix);
}

static void test_index_hnsw(void **state)
{
    (void)state;
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, D, 0), 0);
    float *data = fill(ix, N / 2, D);
    assert_int_equal(aos_memory_index_hnsw_build(ix, 16, 200), 0);
    /* the rest inserted into the existing graph */
    data = realloc(data, (size_t)N * D * sizeof(float));
    for (int i = N / 2; i < N; i++) {
        random_unit(data + (size_t)i * D, D);
        assert_int_equal(aos_memory_index_add(ix, i + 1, (uint32_t)(i % 3), data + (size_t)i * D),
                         0);
    }
    float q[D];
    aos_memory_hit_t got[K], want[K];
    int hit = 0, total = 0;
    for (int t = 0; t < 100; t++) {
        random_unit(q, D);
        brute(data, N, D, q, K, NULL, want);
        int n = aos_memory_index_search(ix, q, K, AOS_MEMORY_SEARCH_HNSW, 128, NULL, NULL, got);
        assert_int_equal(n, K);
        hit += overlap(got, n, want, K);
        total += K;
    }
    double recall = (double)hit / total;
    print_message("hnsw recall@10 (ef 128, %d x %d random): %.3f\n", N, D, recall);
    assert_true(recall >= 0.95);
    /* removed vectors are never returned, and the rest still found */
    char *dead = calloc(N, 1);
    for (int i = 0; i < N; i += 2) {
        assert_int_equal(aos_memory_index_remove(ix, i + 1), 0);
        dead[i] = 1;
    }
    assert_int_equal(aos_memory_index_remove(ix, 1), AOS_ENOTFOUND);
    assert_int_equal(aos_memory_index_count(ix), N / 2);
    hit = total = 0;
    for (int t = 0; t < 50; t++) {
        random_unit(q, D);
        brute(data, N, D, q, K, dead, want);
        int n = aos_memory_index_search(ix, q, K, AOS_MEMORY_SEARCH_HNSW, 128, NULL, NULL, got);
        for (int i = 0; i < n; i++)
            assert_false(dead[got[i].id - 1]);
        hit += overlap(got, n, want, K);
        total += K;
    }
    assert_true((double)hit / total >= 0.9);
    free(dead);
    free(data);
    aos_memory_index_free(ix);
}

/* The graph built by two threads of the index while searches, adds and
 * removes go on: the scans answer (exactly) until the graph is swapped
 * in, then the graph answers, with what was added and removed meanwhile. */
static void test_index_hnsw_background(void **state)
{
    (void)state;
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, D, 1), 0);
    float *data = fill(ix, N, D);
    char *dead = calloc(N + 100, 1);
    assert_non_null(dead);
    assert_int_equal(aos_memory_index_hnsw_state(ix), AOS_MEMORY_HNSW_NONE);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), AOS_ENOTFOUND);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 16, 200, 0, 0), AOS_EINVAL);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 16, 200, 9, 0), AOS_EINVAL);
    /* M 1: 1 / ln(1) would make every level infinite */
    assert_int_equal(aos_memory_index_hnsw_start(ix, 1, 200, 1, 0), AOS_EINVAL);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 65, 200, 1, 0), AOS_EINVAL);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 16, 100, 2, 5), 0);
    /* a second start while building changes nothing */
    assert_int_equal(aos_memory_index_hnsw_start(ix, 16, 100, 2, 5), 0);
    float q[D];
    aos_memory_hit_t got[K], want[K];
    aos_memory_method_t used;
    /* at once, and while building: the scans, exact */
    int during = 0;
    for (int t = 0; t < 200; t++) {
        aos_memory_hnsw_state_t before = aos_memory_index_hnsw_state(ix);
        random_unit(q, D);
        brute(data, N, D, q, K, dead, want);
        int n =
            aos_memory_index_search_by(ix, q, K, AOS_MEMORY_SEARCH_AUTO, 0, NULL, NULL, got, &used);
        assert_int_equal(n, K);
        if (before != AOS_MEMORY_HNSW_BUILDING ||
            aos_memory_index_hnsw_state(ix) != AOS_MEMORY_HNSW_BUILDING)
            break;
        assert_int_equal(used, AOS_MEMORY_SEARCH_EXACT);
        assert_int_equal(overlap(got, n, want, K), K);
        during++;
    }
    print_message("searches answered by the scans during the build: %d\n", during);
    assert_true(during > 0); /* 3000 inserts take far longer than one search */
    /* adds and removes while building (or just after: either way in the graph) */
    data = realloc(data, (size_t)(N + 100) * D * sizeof(float));
    assert_non_null(data);
    for (int i = N; i < N + 100; i++) {
        random_unit(data + (size_t)i * D, D);
        assert_int_equal(aos_memory_index_add(ix, i + 1, 0, data + (size_t)i * D), 0);
    }
    for (int i = 0; i < 60; i++) {
        assert_int_equal(aos_memory_index_remove(ix, 2 * i + 1), 0);
        dead[2 * i] = 1;
    }
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    assert_int_equal(aos_memory_index_hnsw_state(ix), AOS_MEMORY_HNSW_READY);
    assert_int_equal(aos_memory_index_count(ix), N + 100 - 60);
    /* after: the graph answers */
    int hit = 0, total = 0;
    for (int t = 0; t < 100; t++) {
        random_unit(q, D);
        brute(data, N + 100, D, q, K, dead, want);
        int n = aos_memory_index_search_by(ix, q, K, AOS_MEMORY_SEARCH_AUTO, 128, NULL, NULL, got,
                                           &used);
        assert_int_equal(n, K);
        assert_int_equal(used, AOS_MEMORY_SEARCH_HNSW_INT8); /* quantization is on */
        for (int i = 0; i < n; i++)
            assert_false(dead[got[i].id - 1]);
        hit += overlap(got, n, want, K);
        total += K;
    }
    double recall = (double)hit / total;
    print_message("hnsw built in the background, recall@10 (ef 128): %.3f\n", recall);
    assert_true(recall >= 0.95);
    /* the walk on float32 */
    hit = total = 0;
    for (int t = 0; t < 100; t++) {
        random_unit(q, D);
        brute(data, N + 100, D, q, K, dead, want);
        int n = aos_memory_index_search_by(ix, q, K, AOS_MEMORY_SEARCH_HNSW, 128, NULL, NULL, got,
                                           &used);
        assert_int_equal(n, K);
        hit += overlap(got, n, want, K);
        total += K;
    }
    print_message("hnsw on float32, recall@10 (ef 128): %.3f\n", (double)hit / total);
    assert_true((double)hit / total >= 0.95);
    /* the walk on the int8 codes, chosen explicitly: exact scores */
    hit = total = 0;
    for (int t = 0; t < 100; t++) {
        random_unit(q, D);
        brute(data, N + 100, D, q, K, dead, want);
        int n = aos_memory_index_search_by(ix, q, K, AOS_MEMORY_SEARCH_HNSW_INT8, 128, NULL, NULL,
                                           got, &used);
        assert_int_equal(n, K);
        assert_int_equal(used, AOS_MEMORY_SEARCH_HNSW_INT8);
        for (int i = 0; i < n; i++) {
            assert_false(dead[got[i].id - 1]);
            assert_true(fabsf(got[i].score - dotv(q, data + (got[i].id - 1) * D, D)) < 1e-5f);
            assert_true(i == 0 || got[i].score <= got[i - 1].score);
        }
        hit += overlap(got, n, want, K);
        total += K;
    }
    print_message("hnsw on int8 codes, re-ranked, recall@10 (ef 128): %.3f\n", (double)hit / total);
    assert_true((double)hit / total >= 0.95);
    /* every vector added during the build is its own nearest */
    for (int i = N; i < N + 100; i++) {
        int n = aos_memory_index_search_by(ix, data + (size_t)i * D, 1, AOS_MEMORY_SEARCH_AUTO, 64,
                                           NULL, NULL, got, &used);
        assert_int_equal(n, 1);
        assert_int_equal(got[0].id, i + 1);
    }
    /* adds after the swap go into the graph too */
    float v[D];
    random_unit(v, D);
    assert_int_equal(aos_memory_index_add(ix, 99999, 0, v), 0);
    assert_int_equal(
        aos_memory_index_search_by(ix, v, 1, AOS_MEMORY_SEARCH_HNSW, 64, NULL, NULL, got, &used),
        1);
    assert_int_equal(got[0].id, 99999);
    free(dead);
    free(data);
    aos_memory_index_free(ix);
}

/* Freeing the index stops a build under way. */
static void test_index_hnsw_free_while_building(void **state)
{
    (void)state;
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, D, 0), 0);
    float *data = fill(ix, N, D);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 16, 200, 2, 0), 0);
    aos_memory_index_free(ix);
    free(data);
}

static int only_group(int64_t id, uint32_t group, void *arg)
{
    (void)id;
    return group == *(uint32_t *)arg;
}

static void test_index_change(void **state)
{
    (void)state;
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, D, 1), 0);
    float *data = fill(ix, 200, D);
    float q[D];
    aos_memory_hit_t got[200];
    /* the filter: only group 1 (ids 2, 5, 8, ...) */
    uint32_t g = 1;
    random_unit(q, D);
    int n = aos_memory_index_search(ix, q, 200, AOS_MEMORY_SEARCH_EXACT, 0, only_group, &g, got);
    assert_int_equal(n, 67);
    for (int i = 0; i < n; i++)
        assert_int_equal((got[i].id - 1) % 3, 1);
    /* replace id 7 with q: it becomes q's best hit, once */
    assert_int_equal(aos_memory_index_add(ix, 7, 0, q), 0);
    assert_int_equal(aos_memory_index_count(ix), 200);
    n = aos_memory_index_search(ix, q, 200, AOS_MEMORY_SEARCH_EXACT, 0, NULL, NULL, got);
    assert_int_equal(n, 200);
    assert_int_equal(got[0].id, 7);
    for (int i = 1; i < n; i++)
        assert_int_not_equal(got[i].id, 7);
    /* removing most of them compacts; the rest stay findable */
    for (int i = 1; i <= 190; i++)
        assert_int_equal(aos_memory_index_remove(ix, i), 0);
    assert_int_equal(aos_memory_index_count(ix), 10);
    n = aos_memory_index_search(ix, data + 195 * D, 3, AOS_MEMORY_SEARCH_AUTO, 0, NULL, NULL, got);
    assert_int_equal(n, 3);
    assert_int_equal(got[0].id, 196);
    assert_true(aos_memory_index_bytes(ix) > 0);
    free(data);
    aos_memory_index_free(ix);
}

/* ---- the graph's file ---------------------------------------------------- */

static char tmpdir[256];

static void make_tmpdir(void)
{
    if (tmpdir[0])
        return;
    snprintf(tmpdir, sizeof(tmpdir), "%s/aos-graph-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    assert_non_null(mkdtemp(tmpdir));
}

/* group teardown: the tests remove their files, this their directory */
static int remove_tmpdir(void **state)
{
    (void)state;
    if (tmpdir[0])
        rmdir(tmpdir);
    return 0;
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *p = malloc((size_t)len + 1);
    assert_non_null(p);
    assert_int_equal(fread(p, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    *n = (size_t)len;
    return p;
}

static void spit(const char *path, const unsigned char *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(p, 1, n, f), n);
    fclose(f);
}

/* recall@10 of the graph (ef 128) against the brute force over the live */
static double graph_recall(aos_memory_index_t *ix, const float *data, int n, int d,
                           const char *dead, int queries)
{
    float q[D];
    aos_memory_hit_t got[K], want[K];
    int hit = 0, total = 0;
    for (int t = 0; t < queries; t++) {
        random_unit(q, d);
        brute(data, n, d, q, K, dead, want);
        int k = aos_memory_index_search(ix, q, K, AOS_MEMORY_SEARCH_HNSW, 128, NULL, NULL, got);
        assert_int_equal(k, K);
        for (int i = 0; i < k; i++) {
            assert_true(got[i].id >= 1 && got[i].id <= n);
            assert_false(dead && dead[got[i].id - 1]);
            /* scores are the vectors' */
            assert_true(fabsf(got[i].score - dotv(q, data + (got[i].id - 1) * d, d)) < 1e-5f);
        }
        hit += overlap(got, k, want, K);
        total += K;
    }
    return (double)hit / total;
}

static aos_memory_index_t *index_of(const float *data, int n, int d, const char *path)
{
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, d, 1), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(aos_memory_index_add(ix, i + 1, 0, data + (size_t)i * d), 0);
    assert_int_equal(aos_memory_index_hnsw_file(ix, path, 1), 0);
    return ix;
}

/* Saved when built; loaded by a second index over the same vectors (the
 * same graph: the same answers); a third index whose vectors changed
 * since (removed, replaced, added, another order of slots) keeps the
 * matching nodes and inserts the rest. */
static void test_index_hnsw_file(void **state)
{
    (void)state;
    make_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/graph", tmpdir);
    unlink(path);
    float *data = malloc((size_t)(N + 200) * D * sizeof(float));
    assert_non_null(data);
    for (int i = 0; i < N + 200; i++)
        random_unit(data + (size_t)i * D, D);
    aos_memory_hnsw_info_t in;

    /* no file yet: built, then saved */
    aos_memory_index_t *a = index_of(data, N, D, path);
    assert_int_equal(aos_memory_index_hnsw_save(a, NULL), AOS_ENOTFOUND); /* no graph yet */
    assert_int_equal(aos_memory_index_hnsw_start(a, 16, 100, 2, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(a), 0);
    aos_memory_index_hnsw_info(a, &in);
    assert_int_equal(in.state, AOS_MEMORY_HNSW_READY);
    assert_int_equal(in.from_file, 0);
    assert_int_equal(in.builds, 1);
    assert_int_equal(aos_memory_index_hnsw_dirty(a), 0);
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    char tmp[600];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    assert_int_not_equal(access(tmp, F_OK), 0); /* renamed, not left */

    /* the same vectors: loaded, nothing inserted, the same answers */
    aos_memory_index_t *b = index_of(data, N, D, path);
    assert_int_equal(aos_memory_index_hnsw_start(b, 16, 100, 2, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(b), 0);
    aos_memory_index_hnsw_info(b, &in);
    assert_int_equal(in.state, AOS_MEMORY_HNSW_READY);
    assert_int_equal(in.from_file, 1);
    assert_int_equal(in.file_nodes, N);
    assert_int_equal(in.file_inserted, 0);
    assert_int_equal(in.m, 16);
    assert_int_equal(in.ef_construction, 100);
    assert_int_equal(aos_memory_index_hnsw_dirty(b), 0);
    for (int t = 0; t < 50; t++) {
        float q[D];
        aos_memory_hit_t ga[K], gb[K];
        random_unit(q, D);
        int na = aos_memory_index_search(a, q, K, AOS_MEMORY_SEARCH_HNSW, 32, NULL, NULL, ga);
        int nb = aos_memory_index_search(b, q, K, AOS_MEMORY_SEARCH_HNSW, 32, NULL, NULL, gb);
        assert_int_equal(na, nb);
        for (int i = 0; i < na; i++)
            assert_int_equal(ga[i].id, gb[i].id);
    }
    double r = graph_recall(b, data, N, D, NULL, 50);
    print_message("graph loaded from its file, recall@10 (ef 128): %.3f\n", r);
    assert_true(r >= 0.95);
    /* a change makes it dirty; a save makes it clean again */
    assert_int_equal(aos_memory_index_remove(b, 5), 0);
    assert_int_equal(aos_memory_index_hnsw_dirty(b), 1);
    assert_int_equal(aos_memory_index_hnsw_save(b, NULL), 0);
    assert_int_equal(aos_memory_index_hnsw_dirty(b), 0);
    aos_memory_index_free(b);
    aos_memory_index_free(a);

    /* changed since (the file now lacks id 5: saved by b after its
     * removal): slots in reverse order; ids 1..100 (odd) removed, 101..150
     * replaced, N+1..N+200 added */
    char *dead = calloc(N + 200, 1);
    assert_non_null(dead);
    aos_memory_index_t *c;
    assert_int_equal(aos_memory_index_new(&c, D, 1), 0);
    for (int i = N - 1; i >= 0; i--)
        if (i + 1 != 5)
            assert_int_equal(aos_memory_index_add(c, i + 1, 0, data + (size_t)i * D), 0);
    dead[4] = 1;
    for (int i = 0; i < 100; i += 2) {
        if (i == 4)
            continue;
        assert_int_equal(aos_memory_index_remove(c, i + 1), 0);
        dead[i] = 1;
    }
    for (int i = 100; i < 150; i++) {
        random_unit(data + (size_t)i * D, D);
        assert_int_equal(aos_memory_index_add(c, i + 1, 0, data + (size_t)i * D), 0);
    }
    for (int i = N; i < N + 200; i++)
        assert_int_equal(aos_memory_index_add(c, i + 1, 0, data + (size_t)i * D), 0);
    assert_int_equal(aos_memory_index_hnsw_file(c, path, 1), 0);
    assert_int_equal(aos_memory_index_hnsw_start(c, 16, 100, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(c), 0);
    aos_memory_index_hnsw_info(c, &in);
    assert_int_equal(in.from_file, 1);
    assert_int_equal(in.file_nodes, (N - 1) - 49 - 50); /* the file: all but id 5 */
    assert_int_equal(in.file_inserted, 50 + 200);
    assert_int_equal(aos_memory_index_count(c), N - 1 - 49 + 200);
    r = graph_recall(c, data, N + 200, D, dead, 50);
    print_message("graph loaded with changes applied, recall@10 (ef 128): %.3f\n", r);
    assert_true(r >= 0.95);
    /* every replaced or added vector is found by the graph */
    for (int i = 100; i < N + 200; i = i == 149 ? N : i + 1) {
        aos_memory_hit_t got[1];
        assert_int_equal(aos_memory_index_search(c, data + (size_t)i * D, 1, AOS_MEMORY_SEARCH_HNSW,
                                                 64, NULL, NULL, got),
                         1);
        assert_int_equal(got[0].id, i + 1);
    }
    /* it was saved after applying them: clean */
    assert_int_equal(aos_memory_index_hnsw_dirty(c), 0);
    aos_memory_index_free(c);
    free(dead);
    free(data);
    unlink(path);
}

/* Truncated, corrupted, extended, other parameters or other vectors: the
 * file is ignored, the graph built (and saved over it), never a crash or
 * a wrong hit. */
static void test_index_hnsw_file_bad(void **state)
{
    (void)state;
    enum { n = 600, d = 32 };
    make_tmpdir();
    char good[512], path[512];
    snprintf(good, sizeof(good), "%s/good", tmpdir);
    snprintf(path, sizeof(path), "%s/bad", tmpdir);
    unlink(good);
    float *data = malloc((size_t)n * d * sizeof(float));
    assert_non_null(data);
    for (int i = 0; i < n; i++)
        random_unit(data + (size_t)i * d, d);
    aos_memory_index_t *ix = index_of(data, n, d, good);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 40, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_free(ix);
    size_t len;
    unsigned char *bytes = slurp(good, &len);
    assert_true(len > 64 + (size_t)n * 24);
    aos_memory_hnsw_info_t in;

    /* the good file loads (the control) */
    ix = index_of(data, n, d, good);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 40, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.from_file, 1);
    aos_memory_index_free(ix);

    /* cases: truncations, flipped bytes, one byte more */
    size_t cuts[] = {0, 1, 8, 63, 64, 65, 64 + n * 8, 64 + n * 20, len / 2, len - 4, len - 1};
    int ncases = 0;
    for (int c = 0; c < 11 + 24 + 1; c++) {
        unsigned char *p = malloc(len + 1);
        assert_non_null(p);
        memcpy(p, bytes, len);
        size_t plen = len;
        if (c < 11) {
            plen = cuts[c];
        } else if (c < 11 + 24) {
            /* header bytes first, then spread over the body */
            size_t at = c - 11 < 8 ? (size_t)(c - 11) * 8 + 3 : 64 + (len - 64) * (c - 19) / 16;
            if (at >= len)
                at = len - 1;
            p[at] ^= 0x5a;
        } else {
            p[plen++] = 0;
        }
        spit(path, p, plen);
        free(p);
        ix = index_of(data, n, d, path);
        assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 40, 1, 0), 0);
        assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
        aos_memory_index_hnsw_info(ix, &in);
        assert_int_equal(in.state, AOS_MEMORY_HNSW_READY);
        if (in.from_file)
            print_message("case %d was loaded\n", c);
        assert_int_equal(in.from_file, 0);
        assert_true(graph_recall(ix, data, n, d, NULL, 10) >= 0.9);
        aos_memory_index_free(ix);
        /* built and saved over it: it loads now */
        ix = index_of(data, n, d, path);
        assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 40, 1, 0), 0);
        assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
        aos_memory_index_hnsw_info(ix, &in);
        assert_int_equal(in.from_file, 1);
        aos_memory_index_free(ix);
        ncases++;
    }
    print_message("%d damaged files ignored and rebuilt\n", ncases);

    /* other parameters: M, efConstruction, dims */
    spit(path, bytes, len);
    ix = index_of(data, n, d, path);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 12, 40, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.from_file, 0);
    assert_int_equal(in.m, 12);
    aos_memory_index_free(ix);
    spit(path, bytes, len);
    ix = index_of(data, n, d, path);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 41, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.from_file, 0);
    aos_memory_index_free(ix);
    spit(path, bytes, len);
    ix = index_of(data, n, 16, path); /* the first 16 floats of each: other dims */
    assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 40, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.from_file, 0);
    aos_memory_index_free(ix);
    /* other vectors under the same ids (another database): ignored */
    spit(path, bytes, len);
    float *other = malloc((size_t)n * d * sizeof(float));
    assert_non_null(other);
    for (int i = 0; i < n; i++)
        random_unit(other + (size_t)i * d, d);
    ix = index_of(other, n, d, path);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 40, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.from_file, 0);
    assert_true(graph_recall(ix, other, n, d, NULL, 10) >= 0.9);
    aos_memory_index_free(ix);
    /* a directory where the file should be: nothing to load, the save fails, no crash */
    ix = index_of(data, n, d, tmpdir);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 40, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.state, AOS_MEMORY_HNSW_READY);
    assert_int_equal(in.from_file, 0);
    assert_int_not_equal(aos_memory_index_hnsw_save(ix, NULL), 0);
    aos_memory_index_free(ix);
    free(other);
    free(bytes);
    free(data);
    unlink(path);
    unlink(good);
}

/* Past a tenth of the nodes changed (at least 10,000) since the file
 * last matched the graph, a thread of the index saves it again. */
static void test_index_hnsw_autosave(void **state)
{
    (void)state;
    enum { n = 2000, more = 10000, d = 16 };
    make_tmpdir();
    char path[512];
    snprintf(path, sizeof(path), "%s/auto", tmpdir);
    unlink(path);
    float *data = malloc((size_t)(n + more) * d * sizeof(float));
    assert_non_null(data);
    for (int i = 0; i < n + more; i++)
        random_unit(data + (size_t)i * d, d);
    aos_memory_index_t *ix = index_of(data, n, d, path);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 4, 16, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    assert_int_equal(aos_memory_index_hnsw_dirty(ix), 0);
    struct stat st0, st1;
    assert_int_equal(stat(path, &st0), 0);
    for (int i = n; i < n + more; i++) {
        assert_int_equal(aos_memory_index_add(ix, i + 1, 0, data + (size_t)i * d), 0);
        if (i == n + more - 2) { /* one short: still only dirty */
            assert_int_equal(stat(path, &st1), 0);
            assert_int_equal(st1.st_size, st0.st_size);
        }
    }
    int waited = 0;
    while (aos_memory_index_hnsw_dirty(ix) && waited < 60000) {
        usleep(10000);
        waited += 10;
    }
    assert_int_equal(aos_memory_index_hnsw_dirty(ix), 0);
    assert_int_equal(stat(path, &st1), 0);
    assert_true(st1.st_size > st0.st_size);
    aos_memory_index_free(ix);
    /* it holds every vector */
    ix = index_of(data, n + more, d, path);
    assert_int_equal(aos_memory_index_hnsw_start(ix, 4, 16, 1, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_hnsw_info_t in;
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.from_file, 1);
    assert_int_equal(in.file_nodes, n + more);
    assert_int_equal(in.file_inserted, 0);
    aos_memory_index_free(ix);
    free(data);
    unlink(path);
}

/* More than half of the slots dead: a rebuild in the background over the
 * live vectors, the old graph answering meanwhile; the holes compacted. */
static void test_index_hnsw_rebuild(void **state)
{
    (void)state;
    enum { n = 2000, d = 32 };
    float *data = malloc((size_t)n * d * sizeof(float));
    char *dead = calloc(n, 1);
    assert_non_null(data);
    assert_non_null(dead);
    aos_memory_index_t *ix;
    assert_int_equal(aos_memory_index_new(&ix, d, 1), 0);
    for (int i = 0; i < n; i++) {
        random_unit(data + (size_t)i * d, d);
        assert_int_equal(aos_memory_index_add(ix, i + 1, 0, data + (size_t)i * d), 0);
    }
    assert_int_equal(aos_memory_index_hnsw_start(ix, 8, 60, 2, 0), 0);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_hnsw_info_t in;
    /* half dead: no rebuild yet */
    int removed = 0;
    for (int i = 0; i < n && removed < n / 2; i += 1 + (i % 3 == 0)) {
        if (dead[i])
            continue;
        assert_int_equal(aos_memory_index_remove(ix, i + 1), 0);
        dead[i] = 1;
        removed++;
    }
    for (int i = 0; removed < n / 2; i++)
        if (!dead[i]) {
            assert_int_equal(aos_memory_index_remove(ix, i + 1), 0);
            dead[i] = 1;
            removed++;
        }
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.rebuilds, 0);
    assert_int_equal(in.building, 0);
    assert_int_equal(in.dead, n / 2);
    /* one more: the rebuild starts; searches meanwhile use the old graph */
    int i0 = 0;
    while (dead[i0])
        i0++;
    assert_int_equal(aos_memory_index_remove(ix, i0 + 1), 0);
    dead[i0] = 1;
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.state, AOS_MEMORY_HNSW_READY);
    /* more removed while it runs (or after): gone from the result either way */
    for (int i = n - 1, k = 0; k < 100; i--)
        if (!dead[i]) {
            assert_int_equal(aos_memory_index_remove(ix, i + 1), 0);
            dead[i] = 1;
            k++;
        }
    aos_memory_method_t used;
    aos_memory_hit_t got[K];
    float q[D];
    random_unit(q, d);
    assert_int_equal(
        aos_memory_index_search_by(ix, q, K, AOS_MEMORY_SEARCH_AUTO, 64, NULL, NULL, got, &used),
        K);
    assert_int_equal(used, AOS_MEMORY_SEARCH_HNSW_INT8);
    assert_int_equal(aos_memory_index_hnsw_wait(ix), 0);
    aos_memory_index_hnsw_info(ix, &in);
    assert_int_equal(in.rebuilds, 1);
    assert_int_equal(in.builds, 2);
    int live = n - n / 2 - 1 - 100;
    /* compacted: the slots are the live vectors (and the removals after the swap, if any) */
    assert_int_equal(aos_memory_index_count(ix), live);
    print_message("after the rebuild: %zu slots, %zu dead, %d live\n", in.slots, in.dead, live);
    assert_true(in.slots - in.dead == (size_t)live);
    assert_true(in.slots < (size_t)n);
    double r = graph_recall(ix, data, n, d, dead, 50);
    print_message("rebuilt graph, recall@10 (ef 128): %.3f\n", r);
    assert_true(r >= 0.95);
    /* adds go on into the new graph */
    float v[32];
    random_unit(v, d);
    assert_int_equal(aos_memory_index_add(ix, 99999, 0, v), 0);
    assert_int_equal(aos_memory_index_search(ix, v, 1, AOS_MEMORY_SEARCH_HNSW, 64, NULL, NULL, got),
                     1);
    assert_int_equal(got[0].id, 99999);
    free(dead);
    free(data);
    aos_memory_index_free(ix);
}

static void test_rrf(void **state)
{
    (void)state;
    int64_t a[] = {10, 20, 30}, b[] = {30, 40, 10};
    aos_memory_fused_t out[6];
    int n = aos_memory_rrf(a, 3, b, 3, 60, out);
    assert_int_equal(n, 4);
    /* 10: 1/61 + 1/63; 30: 1/63 + 1/61; tie -> smaller id first */
    assert_int_equal(out[0].id, 10);
    assert_int_equal(out[1].id, 30);
    assert_true(fabs(out[0].rrf - (1.0 / 61 + 1.0 / 63)) < 1e-12);
    assert_int_equal(out[0].rank_a, 1);
    assert_int_equal(out[0].rank_b, 3);
    assert_int_equal(out[2].id, 20); /* 1/62 */
    assert_int_equal(out[3].id, 40); /* 1/62 too; 20 < 40 */
    assert_int_equal(out[3].rank_a, 0);
    assert_int_equal(out[3].rank_b, 2);
    assert_int_equal(aos_memory_rrf(NULL, 0, b, 2, 60, out), 2);
    assert_int_equal(out[0].id, 30);
    /* a repeated id counts once, at its best rank */
    int64_t c[] = {5, 5, 6};
    assert_int_equal(aos_memory_rrf(c, 3, NULL, 0, 60, out), 2);
    assert_true(fabs(out[1].rrf - 1.0 / 63) < 1e-12);
}

/* ---- embeddings from a model server ------------------------------------------------ */

/* body read as the llm client reads an embeddings answer for n texts, then
 * checked by the memory service: the code, and the result in *out. */
static int read_embed(const char *body, size_t n, aos_llm_result_t **out, aos_err_t *err)
{
    aos__llm_rd_t rd;
    aos__llm_rd_init(&rd, AOS_LLM_EMBED, 0, 1 << 20, NULL, NULL);
    aos_llm_result_t *r = calloc(1, sizeof(*r));
    assert_non_null(r);
    r->op = AOS_LLM_EMBED;
    int rc = aos__llm_rd_feed(&rd, body, strlen(body));
    if (!rc)
        rc = aos__llm_rd_finish(&rd, r, n);
    if (rc) {
        r->status = rc;
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", rd.why);
    }
    aos__llm_rd_release(&rd);
    rc = mem_embed_check(r, n, "emb-x", err);
    *out = r;
    return rc;
}

static void expect_embed_error(const char *body, size_t n, int code, const char *part)
{
    aos_llm_result_t *r;
    aos_err_t err = {0, ""};
    assert_int_equal(read_embed(body, n, &r, &err), code);
    if (!strstr(aos_err_msg(&err), part) || !strstr(aos_err_msg(&err), "emb-x"))
        fail_msg("'%s' lacks '%s' or the model", aos_err_msg(&err), part);
    aos_llm_result_free(r);
}

static void test_embed_answer(void **state)
{
    (void)state;
    aos_llm_result_t *r;
    aos_err_t err = {0, ""};
    /* two vectors, given out of order by index, normalised */
    assert_int_equal(read_embed("{\"object\":\"list\",\"model\":\"emb-x\",\"data\":["
                                "{\"index\":1,\"embedding\":[0,0,2]},"
                                "{\"index\":0,\"embedding\":[3,4,0]}],"
                                "\"usage\":{\"prompt_tokens\":5,\"total_tokens\":5}}",
                                2, &r, &err),
                     0);
    assert_int_equal(r->nvectors, 2);
    assert_int_equal(r->dim, 3);
    const float want[] = {0.6f, 0.8f, 0, 0, 0, 1};
    for (int i = 0; i < 6; i++)
        assert_true(fabsf(r->vectors[i] - want[i]) < 1e-6f);
    aos_llm_result_free(r);
    /* a zero vector stays zero (it matches nothing) */
    assert_int_equal(read_embed("{\"data\":[{\"embedding\":[0,0]}]}", 1, &r, &err), 0);
    assert_true(r->vectors[0] == 0 && r->vectors[1] == 0);
    aos_llm_result_free(r);

    /* malformed answers */
    expect_embed_error("not json", 1, AOS_EUPSTREAM, "malformed JSON");
    expect_embed_error("[1,2]", 1, AOS_EUPSTREAM, "not a JSON object");
    expect_embed_error("{\"data\":[]}", 1, AOS_EUPSTREAM, "0 embeddings for 1");
    expect_embed_error("{\"data\":{}}", 1, AOS_EUPSTREAM, "0 embeddings for 1");
    expect_embed_error("{\"data\":[{\"embedding\":[1]}]}", 2, AOS_EUPSTREAM, "1 embeddings for 2");
    expect_embed_error("{\"data\":[{\"embedding\":[]}]}", 1, AOS_EUPSTREAM, "0 dimensions");
    expect_embed_error("{\"data\":[{\"embedding\":[1,2]},{\"embedding\":[1]}]}", 2, AOS_EUPSTREAM,
                       "embedding 1 is not 2 numbers");
    expect_embed_error("{\"data\":[{\"embedding\":[1,\"2\"]}]}", 1, AOS_EUPSTREAM,
                       "other than a number");
    expect_embed_error("{\"data\":[{\"embedding\":[1,2],\"index\":5}]}", 1, AOS_EUPSTREAM,
                       "bad index");
    expect_embed_error(
        "{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,\"embedding\":[1]}]}", 2,
        AOS_EUPSTREAM, "bad index");
    expect_embed_error("{\"data\":[{\"embedding\":[1e39]}]}", 1, AOS_EUPSTREAM,
                       "other than a number");
    /* floats whose squares overflow a float: normalised in double, not NaN */
    assert_int_equal(read_embed("{\"data\":[{\"embedding\":[3e38,-3e38]}]}", 1, &r, &err), 0);
    assert_true(fabsf(r->vectors[0] - 0.70710678f) < 1e-6f);
    assert_true(fabsf(r->vectors[1] + 0.70710678f) < 1e-6f);
    aos_llm_result_free(r);
    /* an error object in a 200 answer */
    expect_embed_error("{\"error\":{\"message\":\"model not found\",\"code\":\"model_not_found\"}}",
                       1, AOS_EUPSTREAM, "model not found");
    /* more dimensions than an index takes */
    size_t big = (size_t)MEM_EMBED_DIMS_MAX + 1;
    size_t cap = big * 2 + 64, at = 0;
    char *body = malloc(cap);
    assert_non_null(body);
    at += (size_t)snprintf(body, cap, "{\"data\":[{\"embedding\":[");
    for (size_t i = 0; i < big; i++)
        at += (size_t)snprintf(body + at, cap - at, i ? ",1" : "1");
    snprintf(body + at, cap - at, "]}]}");
    expect_embed_error(body, 1, AOS_EUPSTREAM, "16385 dimensions");
    free(body);

    /* a failed call keeps its code and message, the model named */
    r = calloc(1, sizeof(*r));
    r->status = AOS_ETIMEDOUT;
    snprintf(r->errmsg, sizeof(r->errmsg), "no answer within 1500 ms");
    assert_int_equal(mem_embed_check(r, 1, "emb-x", &err), AOS_ETIMEDOUT);
    assert_non_null(strstr(aos_err_msg(&err), "'emb-x' failed: no answer within 1500 ms"));
    aos_llm_result_free(r);
}

/* An error body as the client reports it: the status and the server's
 * message, never a piece of the key it quotes. */
static void test_embed_error_body(void **state)
{
    (void)state;
    const char *key = "sk-proj-0123456789abcdefghij";
    char why[256];
    char *type = NULL;
    const char *body = "{\"error\":{\"message\":\"Incorrect API key provided: "
                       "sk-proj-0123456789abcdefghij.\",\"type\":\"invalid_request_error\","
                       "\"code\":\"invalid_api_key\"}}";
    aos__llm_http_why(401, body, strlen(body), why, sizeof(why), &type);
    aos__llm_scrub(why, sizeof(why), key);
    assert_non_null(strstr(why, "http 401"));
    assert_null(strstr(why, "0123456789"));
    assert_string_equal(type, "invalid_api_key");
    free(type);
    aos_llm_result_t *r = calloc(1, sizeof(*r));
    r->status = AOS_EUPAUTH;
    snprintf(r->errmsg, sizeof(r->errmsg), "%s", why);
    aos_err_t err = {0, ""};
    assert_int_equal(mem_embed_check(r, 1, "emb-x", &err), AOS_EUPAUTH);
    assert_null(strstr(aos_err_msg(&err), "0123456789"));
    aos_llm_result_free(r);
    /* a body that is not JSON: the status alone */
    aos__llm_http_why(503, "<html>busy</html>", 17, why, sizeof(why), &type);
    assert_non_null(strstr(why, "http 503"));
    assert_null(type);
}

/* The index takes the first dimension it is given and refuses another,
 * naming both. */
static void test_index_dims(void **state)
{
    (void)state;
    aos_memory_t m;
    memset(&m, 0, sizeof(m));
    m.model = "emb-x";
    aos_err_t err = {0, ""};
    assert_int_equal(mem_index_ready(&m, 1536, &err), 0);
    assert_non_null(m.index);
    assert_int_equal(m.dims, 1536);
    assert_int_equal(mem_index_ready(&m, 1536, &err), 0);
    assert_int_equal(mem_index_ready(&m, 768, &err), AOS_EUPSTREAM);
    assert_non_null(strstr(aos_err_msg(&err), "'emb-x' gave 768 dimensions"));
    assert_non_null(strstr(aos_err_msg(&err), "vectors of 1536"));
    /* a model's dimension works end to end: add, search */
    float *v = calloc(1536, sizeof(float));
    v[7] = 1;
    assert_int_equal(aos_memory_index_add(m.index, 42, 0, v), 0);
    aos_memory_hit_t hit;
    assert_int_equal(
        aos_memory_index_search(m.index, v, 1, AOS_MEMORY_SEARCH_AUTO, 0, NULL, NULL, &hit), 1);
    assert_int_equal(hit.id, 42);
    assert_true(fabsf(hit.score - 1) < 1e-6f);
    free(v);
    aos_memory_index_free(m.index);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_terms),
        cmocka_unit_test(test_embed),
        cmocka_unit_test(test_index_exact),
        cmocka_unit_test(test_index_int8),
        cmocka_unit_test(test_index_hnsw),
        cmocka_unit_test(test_index_hnsw_background),
        cmocka_unit_test(test_index_hnsw_free_while_building),
        cmocka_unit_test(test_index_change),
        cmocka_unit_test(test_index_hnsw_file),
        cmocka_unit_test(test_index_hnsw_file_bad),
        cmocka_unit_test(test_index_hnsw_rebuild),
        cmocka_unit_test(test_index_hnsw_autosave),
        cmocka_unit_test(test_rrf),
        cmocka_unit_test(test_embed_answer),
        cmocka_unit_test(test_embed_error_body),
        cmocka_unit_test(test_index_dims),
    };
    return cmocka_run_group_tests(tests, NULL, remove_tmpdir);
}
