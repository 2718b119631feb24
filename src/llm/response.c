/* response.c - reading a model server's answer; see internal.h.
 *
 * A stream is fed through the shared event-stream parser (src/sse); each
 * event's data is one chat.completion.chunk, applied to the result as it
 * comes, or "[DONE]". A JSON body is kept whole (bounded) and read at the
 * end. Both kinds end in the same slots (text, reasoning, tool calls), so
 * aos__llm_rd_finish builds the result one way. Reasons name where the
 * input broke (an event's number, a line and column), never its text: the
 * input is the server's, and a server may echo what it was sent. */
#include "llm/internal.h"

#include <math.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8/utf8.h"

#define RD_MAX_INDEX    100000 /* a tool call's index in a stream */
#define RD_MAX_DIM      65536  /* floats in one embedding */
#define RD_REASON_BYTES 100    /* of a server's error message */
#define RD_ERR_TYPE_LEN 64

static int fail(aos__llm_rd_t *rd, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(aos__llm_rd_t *rd, int code, const char *fmt, ...)
{
    if (!rd->failed) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(rd->why, sizeof(rd->why), fmt, ap);
        va_end(ap);
        rd->failed = code;
    }
    return rd->failed;
}

/* ---- text of a server's error ------------------------------------------------ */

/* Copies at most RD_REASON_BYTES of s into out: controls become spaces,
 * runs of spaces one, invalid UTF-8 U+FFFD, cut on a character boundary. */
static void reason_text(const char *s, size_t len, char *out, size_t n)
{
    char clean[3 * RD_REASON_BYTES + 1];
    size_t m =
        aos_utf8_scrub(clean, sizeof(clean), s, len < RD_REASON_BYTES ? len : RD_REASON_BYTES);
    size_t o = 0;
    for (size_t i = 0; i < m && o + 1 < n; i++) {
        char c = (unsigned char)clean[i] < 0x20 || clean[i] == 0x7f ? ' ' : clean[i];
        if (c == ' ' && (o == 0 || out[o - 1] == ' '))
            continue;
        out[o++] = c;
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    o = aos_utf8_trim(out, o);
    out[o] = '\0';
}

/* An error object's message (cut) and its code or type. */
static void error_object(const json_t *e, char *msg, size_t n, char **type)
{
    const json_t *m = json_object_get(e, "message");
    if (json_is_string(m))
        reason_text(json_string_value(m), json_string_length(m), msg, n);
    else if (json_is_string(e)) /* {"error": "text"} */
        reason_text(json_string_value(e), json_string_length(e), msg, n);
    else if (n > 0)
        msg[0] = '\0';
    if (!type)
        return;
    const json_t *t = json_object_get(e, "code");
    if (!json_is_string(t))
        t = json_object_get(e, "type");
    if (json_is_string(t) && json_string_length(t) > 0) {
        char text[RD_ERR_TYPE_LEN + 1];
        reason_text(json_string_value(t), json_string_length(t), text, sizeof(text));
        *type = strdup(text);
    }
}

void aos__llm_http_why(long status, const char *body, size_t len, char *why, size_t n, char **type)
{
    char text[RD_REASON_BYTES + 8] = "";
    if (type)
        *type = NULL;
    json_t *doc = len ? json_loadb(body, len, JSON_ALLOW_NUL, NULL) : NULL;
    const json_t *e = json_object_get(doc, "error");
    if (e)
        error_object(e, text, sizeof(text), type);
    else if (json_is_string(json_object_get(doc, "message"))) /* some servers: flat */
        error_object(doc, text, sizeof(text), type);
    json_decref(doc);
    const char *phrase =
        status >= 100 && status < 1000 ? MHD_get_reason_phrase_for((unsigned)status) : NULL;
    if (!phrase || strcmp(phrase, "Unknown") == 0)
        phrase = "";
    snprintf(why, n, "http %ld%s%s%s%s", status, *phrase ? " " : "", phrase, text[0] ? ": " : "",
             text);
}

void aos__llm_scrub(char *s, size_t size, const char *secret)
{
    static const char mark[] = "[REDACTED]";
    size_t klen = secret ? strlen(secret) : 0;
    size_t len = strnlen(s, size);
    if (klen < 8 || len < 8)
        return;
    for (size_t i = 0; i + 8 <= len;) {
        if (!memmem(secret, klen, s + i, 8)) {
            i++;
            continue;
        }
        /* grow the run while it still occurs in the secret */
        size_t end = i + 8;
        while (end < len && memmem(secret, klen, s + i, end + 1 - i))
            end++;
        size_t run = end - i, put = sizeof(mark) - 1 <= run ? sizeof(mark) - 1 : 0;
        if (put == 0) { /* the mark is longer: the run becomes '*' */
            memset(s + i, '*', run);
            i = end;
            continue;
        }
        memcpy(s + i, mark, put);
        memmove(s + i + put, s + end, len - end + 1);
        len -= run - put;
        i += put;
    }
}

/* ---- slots ------------------------------------------------------------------- */

static size_t kept(const aos__llm_rd_t *rd)
{
    size_t n = rd->content.len + rd->reasoning.len;
    for (size_t i = 0; i < rd->ncalls; i++)
        n += rd->calls[i].args.len + rd->calls[i].name.len + rd->calls[i].id.len;
    return n;
}

static int keep(aos__llm_rd_t *rd, aos_buf_t *b, const char *s, size_t n)
{
    if (kept(rd) + n > rd->max)
        return fail(rd, AOS_ETOOBIG, "the answer is larger than %zu bytes", rd->max);
    if (aos_buf_append(b, s, n))
        return fail(rd, AOS_ENOMEM, "out of memory");
    return 0;
}

static int add_text(aos__llm_rd_t *rd, const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return 0;
    int rc = keep(rd, &rd->content, json_string_value(v), json_string_length(v));
    if (rc)
        return rc;
    rd->has_text = 1;
    if (rd->on_delta)
        rd->on_delta(json_string_value(v), json_string_length(v), rd->delta_data);
    return 0;
}

static int set_str(aos__llm_rd_t *rd, char **dst, const json_t *v)
{
    if (!json_is_string(v))
        return 0;
    char *s = strdup(json_string_value(v));
    if (!s)
        return fail(rd, AOS_ENOMEM, "out of memory");
    free(*dst);
    *dst = s;
    return 0;
}

static void take_usage(aos__llm_rd_t *rd, const json_t *u)
{
    if (!json_is_object(u))
        return;
    const json_t *in = json_object_get(u, "prompt_tokens");
    const json_t *out = json_object_get(u, "completion_tokens");
    if (!in)
        in = json_object_get(u, "input_tokens");
    if (!out)
        out = json_object_get(u, "output_tokens");
    if (!json_is_integer(in) && !json_is_integer(out))
        return;
    rd->has_usage = 1;
    rd->input_tokens = json_integer_value(in) > 0 ? (uint64_t)json_integer_value(in) : 0;
    rd->output_tokens = json_integer_value(out) > 0 ? (uint64_t)json_integer_value(out) : 0;
}

static aos__llm_tc_t *slot_new(aos__llm_rd_t *rd, long index)
{
    if (rd->ncalls >= AOS_LLM_MAX_TOOL_CALLS) {
        fail(rd, AOS_EUPSTREAM, "more than %d tool calls", AOS_LLM_MAX_TOOL_CALLS);
        return NULL;
    }
    aos__llm_tc_t *c = realloc(rd->calls, (rd->ncalls + 1) * sizeof(*c));
    if (!c) {
        fail(rd, AOS_ENOMEM, "out of memory");
        return NULL;
    }
    rd->calls = c;
    c = &rd->calls[rd->ncalls++];
    memset(c, 0, sizeof(*c));
    aos_buf_init(&c->id, 0);
    aos_buf_init(&c->name, 0);
    aos_buf_init(&c->args, 0);
    c->index = index;
    return c;
}

/* The slot a delta belongs to: by its index; without one (some servers
 * omit it), a new call when its id differs from the last call's. */
static aos__llm_tc_t *slot_for(aos__llm_rd_t *rd, const json_t *tc)
{
    const json_t *ix = json_object_get(tc, "index");
    if (json_is_integer(ix)) {
        json_int_t v = json_integer_value(ix);
        if (v < 0 || v > RD_MAX_INDEX) {
            fail(rd, AOS_EUPSTREAM, "a tool call has an index out of range");
            return NULL;
        }
        for (size_t i = 0; i < rd->ncalls; i++)
            if (rd->calls[i].index == (long)v)
                return &rd->calls[i];
        return slot_new(rd, (long)v);
    }
    if (ix && !json_is_null(ix)) {
        fail(rd, AOS_EUPSTREAM, "a tool call's index is not an integer");
        return NULL;
    }
    const json_t *id = json_object_get(tc, "id");
    aos__llm_tc_t *last = rd->ncalls ? &rd->calls[rd->ncalls - 1] : NULL;
    if (!last || (json_is_string(id) && json_string_length(id) > 0 && last->id.len > 0 &&
                  strcmp(last->id.ptr, json_string_value(id)) != 0))
        return slot_new(rd, -1);
    return last;
}

/* A name or id: set when empty; the same again is ignored (some servers
 * repeat them in every delta); anything else is a continuation. */
static int merge_word(aos__llm_rd_t *rd, aos_buf_t *b, const json_t *v)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return 0;
    if (b->len == json_string_length(v) && memcmp(b->ptr, json_string_value(v), b->len) == 0)
        return 0;
    return keep(rd, b, json_string_value(v), json_string_length(v));
}

static int apply_tool_call(aos__llm_rd_t *rd, const json_t *tc, int whole)
{
    if (!json_is_object(tc))
        return fail(rd, AOS_EUPSTREAM, "a tool call is not an object");
    aos__llm_tc_t *c = whole ? slot_new(rd, -1) : slot_for(rd, tc);
    if (!c)
        return rd->failed;
    const json_t *id = json_object_get(tc, "id");
    if (json_is_string(id) && c->id.len == 0 && merge_word(rd, &c->id, id))
        return rd->failed;
    const json_t *fn = json_object_get(tc, "function");
    if (fn && !json_is_object(fn))
        return fail(rd, AOS_EUPSTREAM, "a tool call's function is not an object");
    if (merge_word(rd, &c->name, json_object_get(fn, "name")))
        return rd->failed;
    const json_t *args = json_object_get(fn, "arguments");
    if (json_is_string(args))
        return keep(rd, &c->args, json_string_value(args), json_string_length(args));
    if (json_is_object(args)) { /* not the protocol, but unambiguous */
        char *text = json_dumps(args, JSON_COMPACT);
        if (!text)
            return fail(rd, AOS_ENOMEM, "out of memory");
        int rc = keep(rd, &c->args, text, strlen(text));
        free(text);
        return rc;
    }
    return 0;
}

static int apply_tool_calls(aos__llm_rd_t *rd, const json_t *list, int whole)
{
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list))
        return fail(rd, AOS_EUPSTREAM, "tool_calls is not an array");
    size_t i;
    const json_t *tc;
    json_array_foreach(list, i, tc)
    {
        int rc = apply_tool_call(rd, tc, whole);
        if (rc)
            return rc;
    }
    return 0;
}

/* The choice the result is about: the one with index 0 (we never ask for
 * more than one), else the first. */
static const json_t *first_choice(const json_t *choices)
{
    size_t i;
    const json_t *c;
    json_array_foreach(choices, i, c)
    {
        const json_t *ix = json_object_get(c, "index");
        if (!ix || (json_is_integer(ix) && json_integer_value(ix) == 0))
            return c;
    }
    return json_array_get(choices, 0);
}

static int server_error(aos__llm_rd_t *rd, const json_t *e)
{
    char text[RD_REASON_BYTES + 8];
    free(rd->error_type);
    rd->error_type = NULL;
    error_object(e, text, sizeof(text), &rd->error_type);
    return fail(rd, AOS_EUPSTREAM, "the model server failed%s%s", text[0] ? ": " : "", text);
}

/* ---- streams ------------------------------------------------------------------ */

static int apply_chunk(aos__llm_rd_t *rd, const json_t *chunk)
{
    const json_t *e = json_object_get(chunk, "error");
    if (e && !json_is_null(e))
        return server_error(rd, e);
    if ((!rd->id && set_str(rd, &rd->id, json_object_get(chunk, "id"))) ||
        (!rd->model && set_str(rd, &rd->model, json_object_get(chunk, "model"))))
        return rd->failed;
    take_usage(rd, json_object_get(chunk, "usage"));
    const json_t *choices = json_object_get(chunk, "choices");
    if (choices && !json_is_array(choices) && !json_is_null(choices))
        return fail(rd, AOS_EUPSTREAM, "choices is not an array");
    const json_t *c = first_choice(choices);
    if (!c)
        return 0; /* the usage chunk (stream_options.include_usage) has none */
    if (!json_is_object(c))
        return fail(rd, AOS_EUPSTREAM, "a choice is not an object");
    const json_t *d = json_object_get(c, "delta");
    if (!d)
        d = json_object_get(c, "message");
    if (d && !json_is_object(d) && !json_is_null(d))
        return fail(rd, AOS_EUPSTREAM, "a delta is not an object");
    int rc = add_text(rd, json_object_get(d, "content"));
    if (rc)
        return rc;
    const json_t *r = json_object_get(d, "reasoning_content");
    if (!r)
        r = json_object_get(d, "reasoning");
    if (json_is_string(r) &&
        (rc = keep(rd, &rd->reasoning, json_string_value(r), json_string_length(r))))
        return rc;
    if ((rc = apply_tool_calls(rd, json_object_get(d, "tool_calls"), 0)))
        return rc;
    return set_str(rd, &rd->finish_reason, json_object_get(c, "finish_reason"));
}

static int on_event(void *data, const char *type, const char *payload, size_t len)
{
    aos__llm_rd_t *rd = data;
    if (rd->failed || rd->done)
        return rd->failed;
    rd->events++;
    size_t a = 0, b = len;
    while (a < b && (payload[a] == ' ' || payload[a] == '\t' || payload[a] == '\n'))
        a++;
    while (b > a && (payload[b - 1] == ' ' || payload[b - 1] == '\t' || payload[b - 1] == '\n'))
        b--;
    if (b - a == 6 && memcmp(payload + a, "[DONE]", 6) == 0) {
        rd->done = 1;
        return 0;
    }
    json_error_t jerr;
    json_t *chunk = json_loadb(payload, len, 0, &jerr);
    if (strcmp(type, "error") == 0) { /* event: error (some servers) */
        int rc = chunk ? server_error(rd, json_object_get(chunk, "error")
                                              ? json_object_get(chunk, "error")
                                              : chunk)
                       : fail(rd, AOS_EUPSTREAM, "the model server failed in the stream");
        json_decref(chunk);
        return rc;
    }
    if (!chunk)
        return fail(rd, AOS_EUPSTREAM, "malformed JSON in event %lu of the stream (column %d)",
                    rd->events, jerr.column);
    int rc =
        json_is_object(chunk)
            ? apply_chunk(rd, chunk)
            : fail(rd, AOS_EUPSTREAM, "event %lu of the stream is not a JSON object", rd->events);
    json_decref(chunk);
    return rc;
}

/* ---- the reader ------------------------------------------------------------------ */

void aos__llm_rd_init(aos__llm_rd_t *rd, aos_llm_op_t op, int stream, size_t max,
                      aos_llm_delta_fn on_delta, void *delta_data)
{
    memset(rd, 0, sizeof(*rd));
    rd->op = op;
    rd->stream = stream;
    rd->max = max;
    rd->on_delta = on_delta;
    rd->delta_data = delta_data;
    aos_sse_init(&rd->sse, max, on_event, rd);
    aos_buf_init(&rd->body, max);
    aos_buf_init(&rd->content, 0);
    aos_buf_init(&rd->reasoning, 0);
}

void aos__llm_rd_release(aos__llm_rd_t *rd)
{
    aos_sse_release(&rd->sse);
    aos_buf_release(&rd->body);
    aos_buf_release(&rd->content);
    aos_buf_release(&rd->reasoning);
    for (size_t i = 0; i < rd->ncalls; i++) {
        aos_buf_release(&rd->calls[i].id);
        aos_buf_release(&rd->calls[i].name);
        aos_buf_release(&rd->calls[i].args);
    }
    free(rd->calls);
    free(rd->finish_reason);
    free(rd->id);
    free(rd->model);
    free(rd->error_type);
    memset(rd, 0, sizeof(*rd));
}

int aos__llm_rd_feed(aos__llm_rd_t *rd, const char *p, size_t n)
{
    if (rd->failed)
        return rd->failed;
    if (!rd->stream) {
        if (aos_buf_append(&rd->body, p, n))
            return fail(rd, AOS_ETOOBIG, "the response is larger than %zu bytes", rd->max);
        return 0;
    }
    int rc = aos_sse_feed(&rd->sse, p, n);
    if (rc == AOS_ETOOBIG)
        return fail(rd, AOS_ETOOBIG, "an event of the stream is larger than %zu bytes", rd->max);
    return rc ? fail(rd, rc, "the stream failed") : 0;
}

/* ---- building the result ---------------------------------------------------------- */

static char *detach_or_null(aos_buf_t *b, size_t *len)
{
    if (b->len == 0) {
        if (len)
            *len = 0;
        return NULL;
    }
    return aos_buf_detach(b, len);
}

static int parse_args(aos_llm_tool_call_t *t, const char *text, size_t len)
{
    size_t a = 0;
    while (a < len && (text[a] == ' ' || text[a] == '\n' || text[a] == '\t' || text[a] == '\r'))
        a++;
    if (!t->name || !t->name[0]) {
        t->error = strdup("the tool call has no function name");
        return t->error ? 0 : AOS_ENOMEM;
    }
    if (a == len) { /* a function without parameters: some models send "" */
        t->arguments = json_object();
        return t->arguments ? 0 : AOS_ENOMEM;
    }
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_DECODE_ANY, &jerr);
    if (json_is_object(v)) {
        t->arguments = v;
        return 0;
    }
    char why[96];
    if (!v)
        snprintf(why, sizeof(why), "the arguments are not valid JSON (at byte %d)", jerr.position);
    else
        snprintf(why, sizeof(why), "the arguments are not a JSON object");
    json_decref(v);
    t->error = strdup(why);
    return t->error ? 0 : AOS_ENOMEM;
}

static int take_calls(aos__llm_rd_t *rd, aos_llm_result_t *res)
{
    if (rd->ncalls == 0)
        return 0;
    /* by index, as the model numbered them (stable: calls without an
     * index keep the order they came in) */
    for (size_t i = 1; i < rd->ncalls; i++) {
        aos__llm_tc_t t = rd->calls[i];
        size_t j = i;
        for (; j > 0 && t.index >= 0 && rd->calls[j - 1].index > t.index; j--)
            rd->calls[j] = rd->calls[j - 1];
        rd->calls[j] = t;
    }
    res->tool_calls = calloc(rd->ncalls, sizeof(*res->tool_calls));
    if (!res->tool_calls)
        return fail(rd, AOS_ENOMEM, "out of memory");
    res->ntool_calls = rd->ncalls;
    for (size_t i = 0; i < rd->ncalls; i++) {
        aos__llm_tc_t *c = &rd->calls[i];
        aos_llm_tool_call_t *t = &res->tool_calls[i];
        size_t alen = c->args.len;
        t->id = aos_buf_detach(&c->id, NULL);
        t->name = aos_buf_detach(&c->name, NULL);
        t->arguments_text = aos_buf_detach(&c->args, NULL);
        if (!t->id || !t->name || !t->arguments_text || parse_args(t, t->arguments_text, alen) != 0)
            return fail(rd, AOS_ENOMEM, "out of memory");
    }
    return 0;
}

/* A whole chat.completion body. */
static int read_completion(aos__llm_rd_t *rd, const json_t *doc)
{
    const json_t *e = json_object_get(doc, "error");
    if (e && !json_is_null(e))
        return server_error(rd, e);
    if ((set_str(rd, &rd->id, json_object_get(doc, "id"))) ||
        set_str(rd, &rd->model, json_object_get(doc, "model")))
        return rd->failed;
    take_usage(rd, json_object_get(doc, "usage"));
    const json_t *choices = json_object_get(doc, "choices");
    const json_t *c = json_is_array(choices) ? first_choice(choices) : NULL;
    if (!json_is_object(c))
        return fail(rd, AOS_EUPSTREAM, "the response has no choices");
    const json_t *m = json_object_get(c, "message");
    if (!json_is_object(m))
        return fail(rd, AOS_EUPSTREAM, "the response's choice has no message");
    const json_t *content = json_object_get(m, "content");
    if (content && !json_is_string(content) && !json_is_null(content))
        return fail(rd, AOS_EUPSTREAM, "the message's content is not a string");
    int rc = add_text(rd, content);
    const json_t *r = json_object_get(m, "reasoning_content");
    if (!r)
        r = json_object_get(m, "reasoning");
    if (!rc && json_is_string(r))
        rc = keep(rd, &rd->reasoning, json_string_value(r), json_string_length(r));
    if (!rc)
        rc = apply_tool_calls(rd, json_object_get(m, "tool_calls"), 1);
    if (!rc)
        rc = set_str(rd, &rd->finish_reason, json_object_get(c, "finish_reason"));
    return rc;
}

static int read_embeddings(aos__llm_rd_t *rd, const json_t *doc, aos_llm_result_t *res,
                           size_t nexpect)
{
    const json_t *e = json_object_get(doc, "error");
    if (e && !json_is_null(e))
        return server_error(rd, e);
    if (set_str(rd, &rd->model, json_object_get(doc, "model")))
        return rd->failed;
    take_usage(rd, json_object_get(doc, "usage"));
    const json_t *list = json_object_get(doc, "data");
    if (!json_is_array(list) || json_array_size(list) != nexpect)
        return fail(rd, AOS_EUPSTREAM, "the response has %zu embeddings for %zu texts",
                    json_is_array(list) ? json_array_size(list) : 0, nexpect);
    size_t dim = json_array_size(json_object_get(json_array_get(list, 0), "embedding"));
    if (dim == 0 || dim > RD_MAX_DIM)
        return fail(rd, AOS_EUPSTREAM, "an embedding has %zu dimensions", dim);
    float *v = calloc(nexpect * dim, sizeof(float));
    unsigned char *seen = calloc(nexpect, 1);
    if (!v || !seen) {
        free(v);
        free(seen);
        return fail(rd, AOS_ENOMEM, "out of memory");
    }
    size_t i;
    const json_t *item;
    json_array_foreach(list, i, item)
    {
        const json_t *emb = json_object_get(item, "embedding");
        const json_t *ix = json_object_get(item, "index");
        json_int_t at = ix ? (json_is_integer(ix) ? json_integer_value(ix) : -1) : (json_int_t)i;
        if (at < 0 || (size_t)at >= nexpect || seen[at]) {
            fail(rd, AOS_EUPSTREAM, "embedding %zu has a bad index", i);
            break;
        }
        seen[at] = 1;
        if (!json_is_array(emb) || json_array_size(emb) != dim) {
            fail(rd, AOS_EUPSTREAM, "embedding %zu is not %zu numbers", i, dim);
            break;
        }
        size_t k;
        const json_t *x;
        json_array_foreach(emb, k, x)
        {
            double d = json_number_value(x);
            if (!json_is_number(x) || !isfinite(d) || fabs(d) > 3.0e38) {
                fail(rd, AOS_EUPSTREAM, "embedding %zu holds something other than a number", i);
                break;
            }
            v[(size_t)at * dim + k] = (float)d;
        }
        if (rd->failed)
            break;
    }
    free(seen);
    if (rd->failed) {
        free(v);
        return rd->failed;
    }
    res->vectors = v;
    res->nvectors = nexpect;
    res->dim = dim;
    return 0;
}

int aos__llm_rd_finish(aos__llm_rd_t *rd, aos_llm_result_t *res, size_t nexpect)
{
    if (rd->failed)
        return rd->failed;
    if (rd->stream) {
        if (!rd->done && !rd->finish_reason)
            return fail(rd, AOS_EUPSTREAM, "the stream ended before [DONE]");
    } else {
        json_error_t jerr;
        json_t *doc = json_loadb(rd->body.ptr ? rd->body.ptr : "", rd->body.len, 0, &jerr);
        if (!doc)
            return fail(rd, AOS_EUPSTREAM, "malformed JSON in the response (line %d, column %d)",
                        jerr.line, jerr.column);
        int rc = !json_is_object(doc) ? fail(rd, AOS_EUPSTREAM, "the response is not a JSON object")
                 : rd->op == AOS_LLM_EMBED ? read_embeddings(rd, doc, res, nexpect)
                                           : read_completion(rd, doc);
        json_decref(doc);
        if (rc)
            return rc;
    }
    if (rd->op == AOS_LLM_CHAT && take_calls(rd, res))
        return rd->failed;
    res->content = detach_or_null(&rd->content, &res->content_len);
    res->reasoning = detach_or_null(&rd->reasoning, NULL);
    res->finish_reason = rd->finish_reason;
    res->response_id = rd->id;
    res->response_model = rd->model;
    rd->finish_reason = rd->id = rd->model = NULL;
    res->has_usage = rd->has_usage;
    res->input_tokens = rd->input_tokens;
    res->output_tokens = rd->output_tokens;
    return 0;
}

/* ---- results ---------------------------------------------------------------------- */

void aos_llm_result_free(aos_llm_result_t *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->ntool_calls; i++) {
        aos_llm_tool_call_t *t = &r->tool_calls[i];
        free(t->id);
        free(t->name);
        free(t->arguments_text);
        json_decref(t->arguments);
        free(t->error);
    }
    free(r->tool_calls);
    free(r->content);
    free(r->reasoning);
    free(r->finish_reason);
    free(r->vectors);
    free(r->request_model);
    free(r->response_model);
    free(r->response_id);
    free(r->error_type);
    free(r);
}

json_t *aos_llm_result_message(const aos_llm_result_t *r)
{
    if (!r || r->status || r->op != AOS_LLM_CHAT)
        return NULL;
    json_t *m = json_pack("{s:s, s:o}", "role", "assistant", "content",
                          r->content ? json_stringn(r->content, r->content_len) : json_null());
    if (!m || r->ntool_calls == 0)
        return m;
    json_t *calls = json_array();
    if (!calls || json_object_set_new(m, "tool_calls", calls)) {
        json_decref(m);
        return NULL;
    }
    for (size_t i = 0; i < r->ntool_calls; i++) {
        const aos_llm_tool_call_t *t = &r->tool_calls[i];
        if (json_array_append_new(calls, json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", t->id, "type",
                                                   "function", "function", "name", t->name,
                                                   "arguments", t->arguments_text))) {
            json_decref(m);
            return NULL;
        }
    }
    return m;
}

json_t *aos_llm_result_span(const aos_llm_result_t *r)
{
    json_t *a =
        json_pack("{s:s, s:s*, s:s*, s:i}", "gen_ai.operation.name",
                  r->op == AOS_LLM_EMBED ? "embeddings" : "chat", "gen_ai.request.model",
                  r->request_model, "server.address",
                  r->server_address[0] ? r->server_address : NULL, "server.port", r->server_port);
    if (!a)
        return NULL;
    int bad = 0;
    if (!isnan(r->request_temperature))
        bad |=
            json_object_set_new(a, "gen_ai.request.temperature", json_real(r->request_temperature));
    if (r->request_max_tokens)
        bad |= json_object_set_new(a, "gen_ai.request.max_tokens",
                                   json_integer(r->request_max_tokens));
    if (r->response_model)
        bad |= json_object_set_new(a, "gen_ai.response.model", json_string(r->response_model));
    if (r->response_id)
        bad |= json_object_set_new(a, "gen_ai.response.id", json_string(r->response_id));
    if (r->finish_reason)
        bad |= json_object_set_new(a, "gen_ai.response.finish_reasons",
                                   json_pack("[s]", r->finish_reason));
    if (r->has_usage) {
        bad |= json_object_set_new(a, "gen_ai.usage.input_tokens",
                                   json_integer((json_int_t)r->input_tokens));
        bad |= json_object_set_new(a, "gen_ai.usage.output_tokens",
                                   json_integer((json_int_t)r->output_tokens));
    }
    if (r->status)
        bad |= json_object_set_new(a, "error.type", json_string(aos_err_code(r->status)));
    bad |= json_object_set_new(a, "aos.cost_cny", json_real(r->cost_cny));
    bad |= json_object_set_new(a, "aos.attempts", json_integer(r->attempts));
    if (bad) {
        json_decref(a);
        return NULL;
    }
    return a;
}
