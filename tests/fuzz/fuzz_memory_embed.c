/* fuzz_memory_embed.c - an embeddings answer as --memory-embed llm takes
 * it: the llm client's reader (src/llm/response.c) fed the body in pieces,
 * then the memory service's check (mem_embed_check: count, dimension,
 * L2 normalisation) and the index's dimension rule (mem_index_ready). The
 * first byte picks how many texts were sent (1 to 8) and the size of the
 * pieces. Checked: a failure has a reason and a message; a success has
 * one vector per text, 1..MEM_EMBED_DIMS_MAX dimensions, every value
 * finite and each vector of unit length (or zero); the index takes the
 * dimension, refuses another, and finds a vector it was given. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/internal.h"
#include "memory/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    size_t n = (size_t)(data[0] % 8) + 1;
    size_t step = (size_t)(data[0] / 8 % 31) + 1;
    aos__llm_rd_t rd;
    aos__llm_rd_init(&rd, AOS_LLM_EMBED, 0, 1 << 20, NULL, NULL);
    int rc = 0;
    for (size_t at = 1; at < size && !rc; at += step) {
        size_t k = size - at < step ? size - at : step;
        rc = aos__llm_rd_feed(&rd, (const char *)data + at, k);
    }
    aos_llm_result_t *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->op = AOS_LLM_EMBED;
    if (!rc)
        rc = aos__llm_rd_finish(&rd, r, n);
    if (rc) {
        if (!rd.why[0])
            abort();
        r->status = rc;
        memcpy(r->errmsg, rd.why,
               sizeof(r->errmsg) < sizeof(rd.why) ? sizeof(r->errmsg) : sizeof(rd.why));
        r->errmsg[sizeof(r->errmsg) - 1] = '\0';
    }
    aos__llm_rd_release(&rd);
    aos_err_t err = {0, ""};
    int crc = mem_embed_check(r, n, "fuzz-model", &err);
    if (rc && crc != rc)
        abort(); /* the reader's failure is the answer */
    if (crc) {
        if (!strstr(aos_err_msg(&err), "fuzz-model"))
            abort();
        aos_llm_result_free(r);
        return 0;
    }
    if (r->nvectors != n || !r->vectors || r->dim < 1 || r->dim > MEM_EMBED_DIMS_MAX)
        abort();
    for (size_t i = 0; i < n; i++) {
        double ss = 0;
        for (size_t k = 0; k < r->dim; k++) {
            float x = r->vectors[i * r->dim + k];
            if (!isfinite(x))
                abort();
            ss += (double)x * x;
        }
        if (ss != 0 && fabs(ss - 1) > 1e-3)
            abort();
    }
    aos_memory_t m;
    memset(&m, 0, sizeof(m));
    m.model = "fuzz-model";
    if (mem_index_ready(&m, (int)r->dim, &err) || m.dims != (int)r->dim)
        abort();
    if (mem_index_ready(&m, (int)r->dim + 1, &err) != AOS_EUPSTREAM)
        abort();
    if (aos_memory_index_add(m.index, 1, 0, r->vectors))
        abort();
    aos_memory_hit_t hit;
    if (aos_memory_index_search(m.index, r->vectors, 1, AOS_MEMORY_SEARCH_EXACT, 0, NULL, NULL,
                                &hit) != 1 ||
        hit.id != 1)
        abort();
    aos_memory_index_free(m.index);
    aos_llm_result_free(r);
    return 0;
}
