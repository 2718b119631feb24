/* fuzz_memory_terms.c - the memory service's tokenizer and embedding on
 * any bytes: aos_memory_terms_join and aos_memory_embed never crash or read
 * out of bounds, and what they give holds: every term is 1 to
 * AOS_MEMORY_TERM_MAX bytes of valid UTF-8 without a space, ASCII letters
 * lowercased; their count is the one reported; joining the terms and
 * splitting them again gives the same terms (what the FTS5 index relies
 * on); the vector is finite, and of unit length or zero. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "memory/memory.h"
#include "utf8/utf8.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_term(const char *t, size_t n, int cjk, void *arg)
{
    (void)cjk;
    size_t *count = arg;
    if (n == 0 || n > AOS_MEMORY_TERM_MAX || !aos_utf8_valid(t, n))
        abort();
    for (size_t i = 0; i < n; i++)
        if (t[i] == ' ' || (t[i] >= 'A' && t[i] <= 'Z') || t[i] == '\0')
            abort();
    (*count)++;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    size_t count = 0, joined_count = 0;
    int n = aos_memory_terms(text, size, check_term, &count);
    if (n < 0 || (size_t)n != count)
        abort();
    char *joined = NULL;
    if (aos_memory_terms_join(text, size, &joined, &joined_count))
        return 0;
    if (joined_count != count)
        abort();
    /* the joined terms, tokenized again, are themselves */
    char *again = NULL;
    size_t again_count = 0;
    if (aos_memory_terms_join(joined, strlen(joined), &again, &again_count) == 0) {
        if (again_count != count || strcmp(again, joined))
            abort();
        free(again);
    }
    free(joined);
    float v[AOS_MEMORY_DIMS];
    if (aos_memory_embed(text, size, v))
        return 0;
    double s = 0;
    for (int i = 0; i < AOS_MEMORY_DIMS; i++) {
        if (!isfinite(v[i]))
            abort();
        s += (double)v[i] * v[i];
    }
    if (s != 0 && fabs(s - 1.0) > 1e-3)
        abort();
    return 0;
}
