/* vec_bench.c - the vector index of src/memory under load (issue 17):
 * n vectors of 384 dimensions, top-10 queries one at a time.
 *
 *   vec_bench N QUERIES OUTDIR [hnsw] [data=clustered|uniform] [m=16]
 *             [efc=200] [threads=1] [efs=16,32,64,128,256] [graph=FILE]
 *             [build_only]
 *
 * The data: clustered (the default), as embeddings are - 1000 random
 * centres, each vector a centre plus Gaussian noise of the same scale,
 * normalised; or uniform - random directions on the sphere, which no
 * graph index handles well in 384 dimensions (every point is about as
 * far from every other) and real embeddings are not. The queries are
 * drawn the same way (not from the data). Deterministic (fixed seeds),
 * and written to OUTDIR (data.f32, queries.f32, gt.i64: the exact top 10
 * of each query) so that bench/memory/faiss_bench.py measures faiss on
 * the very same vectors. The HNSW graph (m links, efc candidates) is
 * built by `threads` threads (aos_memory_index_hnsw_start), then searched
 * on one thread at each ef of efs, measuring float32 (hnsw_ef*) and the
 * int8 codes re-ranked with float32 (hnsw8_ef*).
 *
 * graph=FILE (with hnsw): when FILE exists, the graph is read from it
 * instead of built (aos_memory_index_hnsw_file + hnsw_start, as the
 * service does at start) and must hold exactly these vectors - the
 * header's count, dims, M and efConstruction are checked first (exit 2
 * on a mismatch, nothing built), then every node's id and vector hash by
 * the loader (exit 1 if any node was not taken or a vector was missing);
 * when it does not exist, the graph is built and then saved to it
 * (aos_memory_index_hnsw_save). So a 1M graph can be built once at low
 * priority (nice -n 19 vec_bench 1000000 1 /tmp/x hnsw graph=FILE) and
 * its searches measured later in a quiet window with the same arguments.
 * build_only stops once the graph is built and saved (or read).
 * The vectors are generated again each run (deterministic: the same N and
 * data give the same vectors).
 *
 * Prints, one "key value" per line: insert rate; for exact float32, int8
 * with re-ranking and (with "hnsw") HNSW at several ef: p50/p99 latency of
 * one top-10 query and recall@10 against the exact answer; the bytes the
 * scans read per second beside this machine's memory read bandwidth
 * (measured here: a 1 GiB buffer summed with AVX2 loads, best of 3); RSS;
 * and the rate of embedding texts with the built-in embedding and adding
 * them (synthetic English and Chinese texts of ~20 words). One thread. */
#include "memory/memory.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#define D       AOS_MEMORY_DIMS
#define K       10
#define CENTRES 1000

static uint64_t rng_state = 0x2545F4914F6CDD1DULL;

static uint64_t next_u64(void)
{
    uint64_t x = rng_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    rng_state = x;
    return x * 0x2545F4914F6CDD1DULL;
}

static double uniform(void)
{
    return ((double)(next_u64() >> 11) + 0.5) / 9007199254740992.0;
}

static double gauss(void)
{
    return sqrt(-2.0 * log(uniform())) * cos(6.283185307179586 * uniform());
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void normalise(float *v)
{
    double s = 0;
    for (int i = 0; i < D; i++)
        s += (double)v[i] * v[i];
    float inv = (float)(1.0 / sqrt(s));
    for (int i = 0; i < D; i++)
        v[i] *= inv;
}

static int uniform_data;

static void draw(const float *centres, float *v)
{
    const float *c = centres + (next_u64() % CENTRES) * D;
    for (int i = 0; i < D; i++)
        v[i] = (uniform_data ? 0.0f : c[i]) + (float)gauss();
    normalise(v);
}

static int dcmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof(*v), dcmp);
    int i = (int)(p * (n - 1) + 0.5);
    return v[i];
}

static long status_kb(const char *key)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f))
        if (!strncmp(line, key, kl))
            v = strtol(line + kl + 1, NULL, 10);
    if (f)
        fclose(f);
    return v;
}

__attribute__((target("avx2"))) static double read_bandwidth(void)
{
    size_t bytes = (size_t)1 << 30;
    float *buf = aligned_alloc(64, bytes);
    if (!buf)
        return 0;
    memset(buf, 1, bytes);
    double best = 0;
    for (int r = 0; r < 3; r++) {
        double t0 = now_s();
        __m256 s0 = _mm256_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
        for (size_t i = 0; i < bytes / 4; i += 32) {
            s0 = _mm256_add_ps(s0, _mm256_load_ps(buf + i));
            s1 = _mm256_add_ps(s1, _mm256_load_ps(buf + i + 8));
            s2 = _mm256_add_ps(s2, _mm256_load_ps(buf + i + 16));
            s3 = _mm256_add_ps(s3, _mm256_load_ps(buf + i + 24));
        }
        __m256 s = _mm256_add_ps(_mm256_add_ps(s0, s1), _mm256_add_ps(s2, s3));
        float out[8];
        _mm256_storeu_ps(out, s);
        double dt = now_s() - t0;
        if (out[0] == 12345.0f)
            printf("#");
        if (bytes / dt > best)
            best = (double)bytes / dt;
    }
    free(buf);
    return best;
}

static int write_file(const char *dir, const char *name, const void *p, size_t n)
{
    char path[1024];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(p, 1, n, f) != n) {
        fprintf(stderr, "unable to write %s\n", path);
        if (f)
            fclose(f);
        return -1;
    }
    return fclose(f);
}

/* The graph file's header (see src/memory/index.c) against this run's
 * parameters: 0, or a message and 1. */
static int graph_header_check(const char *path, int n, int m, int efc)
{
    unsigned char h[64];
    FILE *f = fopen(path, "rb");
    size_t got = f ? fread(h, 1, sizeof(h), f) : 0;
    if (f)
        fclose(f);
    uint32_t dims, fm, fefc;
    uint64_t count;
    memcpy(&dims, h + 12, 4);
    memcpy(&fm, h + 16, 4);
    memcpy(&fefc, h + 20, 4);
    memcpy(&count, h + 24, 8);
    if (got != sizeof(h) || memcmp(h, "AOSHNSW", 8)) {
        fprintf(stderr, "vec_bench: %s is not a graph file\n", path);
        return 1;
    }
    if (dims != D || fm != (uint32_t)m || fefc != (uint32_t)efc || count != (uint64_t)n) {
        fprintf(stderr,
                "vec_bench: %s holds %llu nodes of %u dims, M %u, efConstruction %u; this run "
                "has %d of %d, M %d, efConstruction %d\n",
                path, (unsigned long long)count, dims, fm, fefc, n, D, m, efc);
        return 1;
    }
    return 0;
}

/* Queries one at a time with method; prints p50/p99 and recall@10. */
static void run_queries(aos_memory_index_t *ix, const char *label, const float *qs, int nq,
                        const int64_t *gt, aos_memory_method_t method, int ef, double bytes)
{
    double *lat = malloc((size_t)nq * sizeof(double));
    aos_memory_hit_t hits[K];
    int found = 0;
    for (int q = 0; q < nq; q++) {
        double t0 = now_s();
        int n = aos_memory_index_search(ix, qs + (size_t)q * D, K, method, ef, NULL, NULL, hits);
        lat[q] = now_s() - t0;
        for (int i = 0; i < n; i++)
            for (int j = 0; j < K; j++)
                found += hits[i].id == gt[(size_t)q * K + j];
    }
    double p50 = pct(lat, nq, 0.5), p99 = pct(lat, nq, 0.99);
    printf("%s_p50_ms %.3f\n%s_p99_ms %.3f\n%s_recall10 %.4f\n", label, p50 * 1e3, label, p99 * 1e3,
           label, (double)found / (nq * K));
    if (bytes > 0)
        printf("%s_scan_GBps %.2f\n", label, bytes / p50 / 1e9);
    free(lat);
}

/* ~20 words of synthetic English or Chinese. */
static void synth_text(char *out, size_t cap, int i)
{
    static const char *const en[] = {"rotate",  "keys",    "backup",  "database", "deploy",
                                     "review",  "latency", "alert",   "service",  "invoice",
                                     "refund",  "policy",  "meeting", "schedule", "cluster",
                                     "upgrade", "token",   "storage", "network",  "release"};
    static const char *const zh[] = {"数据", "备份", "密钥", "发布", "审批", "延迟",
                                     "告警", "服务", "发票", "会议", "集群", "升级"};
    size_t n = 0;
    for (int w = 0; w < 20 && n + 16 < cap; w++) {
        const char *s = (i % 3 == 0) ? zh[next_u64() % 12] : en[next_u64() % 20];
        n += (size_t)snprintf(out + n, cap - n, "%s%u ", s, (unsigned)(next_u64() % 50));
    }
}

int main(int argc, char **argv)
{
    if (argc < 4) {
        fprintf(stderr, "usage: vec_bench N QUERIES OUTDIR [hnsw] [data=clustered|uniform] "
                        "[m=16] [efc=200] [threads=1] [efs=16,32,64,128,256] [graph=FILE] "
                        "[build_only]\n");
        return 2;
    }
    int hnsw = 0, m = 16, efc = 200, threads = 1, efs[16] = {16, 32, 64, 128, 256}, nefs = 5;
    const char *graph = NULL;
    int build_only = 0;
    for (int a = 4; a < argc; a++) {
        const char *v = strchr(argv[a], '=');
        v = v ? v + 1 : "";
        if (!strcmp(argv[a], "hnsw"))
            hnsw = 1;
        else if (!strcmp(argv[a], "data=uniform"))
            uniform_data = 1;
        else if (!strcmp(argv[a], "data=clustered"))
            uniform_data = 0;
        else if (!strncmp(argv[a], "m=", 2))
            m = (int)strtol(v, NULL, 10);
        else if (!strncmp(argv[a], "efc=", 4))
            efc = (int)strtol(v, NULL, 10);
        else if (!strcmp(argv[a], "build_only"))
            build_only = 1;
        else if (!strncmp(argv[a], "graph=", 6) && *v)
            graph = v;
        else if (!strncmp(argv[a], "threads=", 8))
            threads = (int)strtol(v, NULL, 10);
        else if (!strncmp(argv[a], "efs=", 4)) {
            nefs = 0;
            for (char *e; *v && nefs < 16; v = *e ? e + 1 : e)
                efs[nefs++] = (int)strtol(v, &e, 10);
        } else {
            fprintf(stderr, "vec_bench: unknown argument %s\n", argv[a]);
            return 2;
        }
    }
    char *e1, *e2;
    long ln = strtol(argv[1], &e1, 10), lq = strtol(argv[2], &e2, 10);
    if (*e1 || *e2 || ln < 1 || ln > 10000000 || lq < 1 || lq > 100000) {
        fprintf(stderr, "vec_bench: N 1..10000000, QUERIES 1..100000\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0); /* a bounded run cut short keeps its lines */
    int n = (int)ln, nq = (int)lq;
    const char *dir = argv[3];
    printf("n %d\ndims %d\nqueries %d\ndata %s\nsimd_avx2 %d\n", n, D, nq,
           uniform_data ? "uniform" : "clustered", aos_memory_index_simd());
    printf("mem_read_GBps %.2f\n", read_bandwidth() / 1e9);

    float *centres = malloc((size_t)CENTRES * D * sizeof(float));
    float *data = malloc((size_t)n * D * sizeof(float));
    float *qs = malloc((size_t)nq * D * sizeof(float));
    int64_t *gt = malloc((size_t)nq * K * sizeof(int64_t));
    if (!centres || !data || !qs || !gt)
        return 1;
    for (int i = 0; i < CENTRES * D; i++)
        centres[i] = (float)gauss();
    for (int i = 0; i < CENTRES; i++)
        normalise(centres + (size_t)i * D);
    for (int i = 0; i < CENTRES * D; i++)
        centres[i] *= 0.9f * sqrtf((float)D); /* noise and centre of like size */
    for (int i = 0; i < n; i++)
        draw(centres, data + (size_t)i * D);
    for (int q = 0; q < nq; q++)
        draw(centres, qs + (size_t)q * D);

    aos_memory_index_t *ix;
    if (aos_memory_index_new(&ix, D, 1))
        return 1;
    long rss0 = status_kb("VmRSS:");
    double t0 = now_s();
    for (int i = 0; i < n; i++)
        if (aos_memory_index_add(ix, i, 0, data + (size_t)i * D))
            return 1;
    double dt = now_s() - t0;
    printf("insert_per_s %.0f\n", n / dt);
    printf("index_bytes %zu\n", aos_memory_index_bytes(ix));
    printf("rss_index_MB %.1f\n", (status_kb("VmRSS:") - rss0) / 1024.0);

    /* the exact answer, also the ground truth (build_only: none, no files) */
    aos_memory_hit_t hits[K];
    for (int q = 0; q < nq && !build_only; q++) {
        aos_memory_index_search(ix, qs + (size_t)q * D, K, AOS_MEMORY_SEARCH_EXACT, 0, NULL, NULL,
                                hits);
        for (int j = 0; j < K; j++)
            gt[(size_t)q * K + j] = hits[j].id;
    }
    if (!build_only && (write_file(dir, "data.f32", data, (size_t)n * D * sizeof(float)) ||
                        write_file(dir, "queries.f32", qs, (size_t)nq * D * sizeof(float)) ||
                        write_file(dir, "gt.i64", gt, (size_t)nq * K * sizeof(int64_t))))
        return 1;

    if (!build_only) {
        run_queries(ix, "exact_f32", qs, nq, gt, AOS_MEMORY_SEARCH_EXACT, 0, (double)n * D * 4);
        run_queries(ix, "int8_rerank", qs, nq, gt, AOS_MEMORY_SEARCH_INT8, 0, (double)n * D);
    }

    if (hnsw) {
        printf("hnsw_m %d\nhnsw_efc %d\nhnsw_threads %d\n", m, efc, threads);
        struct stat st;
        int load = graph && stat(graph, &st) == 0;
        if (load && graph_header_check(graph, n, m, efc))
            return 2;
        if (load && aos_memory_index_hnsw_file(ix, graph, 0))
            return 1;
        t0 = now_s();
        clock_t hc = clock(); /* the process's CPU: every builder thread */
        if (aos_memory_index_hnsw_start(ix, m, efc, threads, 0) || aos_memory_index_hnsw_wait(ix))
            return 1;
        dt = now_s() - t0;
        double hcpu = (double)(clock() - hc) / CLOCKS_PER_SEC;
        if (load) {
            aos_memory_hnsw_info_t in;
            aos_memory_index_hnsw_info(ix, &in);
            if (!in.from_file || in.file_nodes != (size_t)n || in.file_inserted) {
                fprintf(stderr,
                        "vec_bench: %s does not hold the graph of these vectors (%zu of %d "
                        "nodes matched, %zu inserted); remove it to build it again\n",
                        graph, in.file_nodes, n, in.file_inserted);
                return 1;
            }
            printf("hnsw_graph_file %s\nhnsw_load_s %.2f\nhnsw_load_cpu_s %.2f\n", graph, dt, hcpu);
        } else {
            printf("hnsw_build_s %.1f\nhnsw_build_cpu_s %.1f\nhnsw_insert_per_s %.0f\n", dt, hcpu,
                   n / dt);
            if (graph) {
                t0 = now_s();
                if (aos_memory_index_hnsw_save(ix, graph)) {
                    fprintf(stderr, "vec_bench: unable to save the graph to %s\n", graph);
                    return 1;
                }
                printf("hnsw_graph_file %s\nhnsw_save_s %.2f\n", graph, now_s() - t0);
            }
        }
        if (build_only) {
            printf("rss_peak_MB %.1f\n", status_kb("VmHWM:") / 1024.0);
            aos_memory_index_free(ix);
            return 0;
        }
        printf("index_bytes_with_hnsw %zu\n", aos_memory_index_bytes(ix));
        printf("rss_with_hnsw_MB %.1f\n", status_kb("VmRSS:") / 1024.0);
        for (int e = 0; e < nefs; e++) {
            char label[32];
            snprintf(label, sizeof(label), "hnsw_ef%d", efs[e]);
            run_queries(ix, label, qs, nq, gt, AOS_MEMORY_SEARCH_HNSW, efs[e], 0);
        }
        /* the same walk on the int8 codes, re-ranked with float32 */
        for (int e = 0; e < nefs; e++) {
            char label[32];
            snprintf(label, sizeof(label), "hnsw8_ef%d", efs[e]);
            run_queries(ix, label, qs, nq, gt, AOS_MEMORY_SEARCH_HNSW_INT8, efs[e], 0);
        }
    }
    printf("rss_peak_MB %.1f\n", status_kb("VmHWM:") / 1024.0);
    aos_memory_index_free(ix);

    /* the built-in embedding: texts embedded and added, one at a time */
    int ne = n < 100000 ? n : 100000;
    aos_memory_index_t *ex;
    if (aos_memory_index_new(&ex, D, 1))
        return 1;
    char text[512];
    float v[D];
    t0 = now_s();
    clock_t c0 = clock();
    size_t text_bytes = 0;
    for (int i = 0; i < ne; i++) {
        synth_text(text, sizeof(text), i);
        text_bytes += strlen(text);
        aos_memory_embed(text, strlen(text), v);
        aos_memory_index_add(ex, i, 0, v);
    }
    dt = now_s() - t0;
    double cpu = (double)(clock() - c0) / CLOCKS_PER_SEC;
    printf("embed_insert_per_s %.0f\nembed_insert_per_cpu_s %.0f\nembed_text_bytes_avg %.0f\n",
           ne / dt, ne / cpu, (double)text_bytes / ne);
    aos_memory_index_free(ex);
    free(centres);
    free(data);
    free(qs);
    free(gt);
    return 0;
}
