/* fuzz_memory_graph.c - the loader of the HNSW graph's file (src/memory
 * index.c, "the graph's file") on any bytes: an index of 16 fixed vectors
 * (8 dims) is given the bytes as its graph file and starts its graph (M 4,
 * efConstruction 8, one thread); the loader must never crash, leak or
 * read out of bounds, the graph must end up in use (read from the file or
 * built after ignoring it), and a search must return only the index's ids,
 * each with its vector's exact score, and (a built graph) find the vector
 * searched for. The file lives in a private directory (under /dev/shm
 * when there is one), read only: the index does not save its graph (the
 * seed corpus's valid file was written by a build of these vectors). */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "memory/memory.h"

#define NV   16
#define DIMS 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static float vecs[NV][DIMS];
static char dir[128], path[256];

static void cleanup(void)
{
    char tmp[300];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    unlink(path);
    unlink(tmp);
    rmdir(dir);
}

static void init(void)
{
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (int i = 0; i < NV; i++) {
        double s = 0;
        for (int j = 0; j < DIMS; j++) {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            vecs[i][j] =
                (float)((double)((x * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0 - 0.5);
            s += (double)vecs[i][j] * vecs[i][j];
        }
        for (int j = 0; j < DIMS; j++)
            vecs[i][j] = (float)(vecs[i][j] / sqrt(s));
    }
    snprintf(dir, sizeof(dir), "%s/aos-fuzz-graph-XXXXXX",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    if (!mkdtemp(dir))
        abort();
    snprintf(path, sizeof(path), "%s/graph", dir);
    atexit(cleanup);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!path[0])
        init();
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, size, f) != size || fclose(f))
        abort();
    aos_memory_index_t *ix;
    if (aos_memory_index_new(&ix, DIMS, 1))
        abort();
    for (int i = 0; i < NV; i++)
        if (aos_memory_index_add(ix, i + 1, 0, vecs[i]))
            abort();
    if (aos_memory_index_hnsw_file(ix, path, 0) || aos_memory_index_hnsw_start(ix, 4, 8, 1, 0) ||
        aos_memory_index_hnsw_wait(ix))
        abort();
    aos_memory_hnsw_info_t in;
    aos_memory_index_hnsw_info(ix, &in);
    if (in.state != AOS_MEMORY_HNSW_READY)
        abort();
    aos_memory_hit_t hits[8];
    for (int i = 0; i < NV; i += 2) {
        int n =
            aos_memory_index_search(ix, vecs[i], 8, AOS_MEMORY_SEARCH_HNSW, NV, NULL, NULL, hits);
        if (n < 1 || n > 8)
            abort();
        for (int h = 0; h < n; h++) {
            if (hits[h].id < 1 || hits[h].id > NV)
                abort();
            float s = 0;
            for (int j = 0; j < DIMS; j++)
                s += vecs[i][j] * vecs[hits[h].id - 1][j];
            if (fabsf(s - hits[h].score) > 1e-4f)
                abort();
        }
        /* a loaded graph may be poor, never wrong: with ef as large as
         * the set a connected graph finds everything; the file may have cut
         * links, so only a built graph is held to it */
        if (!in.from_file && hits[0].id != i + 1)
            abort();
    }
    aos_memory_index_free(ix);
    return 0;
}
