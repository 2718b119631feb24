/* fuzz_llm_stream.c - the LLM client's answer reader (src/llm/response.c):
 * the first byte picks the kind of body (an event stream of chat chunks, a
 * chat.completion JSON document, or an embeddings document expecting 1 to
 * 4 vectors) and the size of the pieces it is fed in, so that events and
 * JSON split anywhere are covered. Checked: a failure has a reason; a
 * result's text is NUL-terminated at its length and within the bound;
 * every tool call has an id, a name and its text, and exactly one of
 * parsed arguments (an object) or an error; vectors match their count. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "llm/internal.h"

#define LIMIT 8192

static size_t delivered;

static void on_delta(const char *text, size_t len, void *data)
{
    (void)data;
    if (!text || len == 0)
        abort();
    delivered += len;
}

static void check(const aos_llm_result_t *r, size_t nexpect)
{
    if (r->content && (strlen(r->content) > r->content_len || r->content[r->content_len] != '\0'))
        abort();
    if (r->content_len > LIMIT || (!r->content && r->content_len))
        abort();
    for (size_t i = 0; i < r->ntool_calls; i++) {
        const aos_llm_tool_call_t *t = &r->tool_calls[i];
        if (!t->id || !t->name || !t->arguments_text || !t->arguments == !t->error)
            abort();
        if (t->arguments && !json_is_object(t->arguments))
            abort();
    }
    if (r->op == AOS_LLM_EMBED && (r->nvectors != nexpect || !r->vectors || r->dim == 0))
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int kind = data[0] % 3;
    size_t step = (size_t)(data[0] / 3 % 31) + 1;
    size_t nexpect = (size_t)(data[0] % 4) + 1;
    aos__llm_rd_t rd;
    aos__llm_rd_init(&rd, kind == 2 ? AOS_LLM_EMBED : AOS_LLM_CHAT, kind == 0, LIMIT, on_delta,
                     NULL);
    delivered = 0;
    int rc = 0;
    for (size_t at = 1; at < size && !rc; at += step) {
        size_t n = size - at < step ? size - at : step;
        rc = aos__llm_rd_feed(&rd, (const char *)data + at, n);
    }
    aos_llm_result_t *r = calloc(1, sizeof(*r));
    if (!r)
        abort();
    r->op = kind == 2 ? AOS_LLM_EMBED : AOS_LLM_CHAT;
    if (!rc)
        rc = aos__llm_rd_finish(&rd, r, nexpect);
    if (rc && !rd.why[0])
        abort();
    if (!rc) {
        check(r, nexpect);
        if (delivered != r->content_len)
            abort(); /* the deltas are the text */
    }
    aos__llm_rd_release(&rd);
    aos_llm_result_free(r);
    return 0;
}
