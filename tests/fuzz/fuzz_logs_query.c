/* fuzz_logs_query.c - the full-text query of the log service: the words of
 * a user's q become an FTS5 expression (aos_store_logs_fts) and phrases
 * checked on messages (aos_store_logs_word_tokens, _phrase_match).
 *
 * Input: q, a NUL byte, then a message. Checked, beyond not crashing: the
 * expression has balanced quotes and holds nothing but quoted tokens,
 * spaces and a '*' after a closing quote (no FTS5 syntax can come from q);
 * a word always matches a message made of its own text. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err/err.h"
#include "store/store.h"

static void check_expr(const char *e)
{
    int in = 0;
    for (const char *p = e; *p; p++) {
        if (*p == '"') {
            in = !in;
            continue;
        }
        if (in) {
            if (!aos_store_logs_token_char((unsigned char)*p))
                abort(); /* only token characters inside a string */
        } else if (*p != ' ' && !(*p == '*' && p > e && p[-1] == '"')) {
            abort(); /* outside strings: separators and prefix stars only */
        }
    }
    if (in)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size + 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);
    buf[size] = '\0';
    const char *q = buf;
    size_t qlen = strlen(q);
    const char *msg = qlen < size ? buf + qlen + 1 : "";
    size_t mlen = qlen < size ? size - qlen - 1 : 0;

    char *expr = NULL;
    aos_err_t err = {0, ""};
    if (aos_store_logs_fts(q, &expr, &err) == 0)
        check_expr(expr);
    free(expr);

    const char *p = q, *w;
    size_t n;
    int prefix;
    while (aos_store_logs_next_word(&p, &w, &n, &prefix)) {
        char *t;
        if (aos_store_logs_word_tokens(w, n, &t) < 0)
            break;
        aos_store_logs_phrase_match(msg, mlen, t, prefix);
        if (!aos_store_logs_phrase_match(w, n, t, 0)) /* a word finds itself */
            abort();
        free(t);
    }
    free(buf);
    return 0;
}
