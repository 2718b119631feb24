/* internal.h - what the files of the llm module share (llm.c: the client,
 * its calls and retries; request.c: building request bodies; response.c:
 * reading answers, and the results), and what its unit test and fuzz
 * harness reach: the parts that need no loop and no server.
 *
 * The reader (aos__llm_rd_t) takes the body of a successful response in
 * pieces of any size, either one JSON document or an event stream of
 * chat.completion.chunk objects, and assembles the result: text deltas
 * joined (and passed to on_delta as they come), tool-call deltas joined by
 * their index, the last usage seen. Everything it keeps is bounded by max;
 * whatever breaks the format stops it with a short reason that quotes none
 * of the input. */
#ifndef AOS_LLM_INTERNAL_H
#define AOS_LLM_INTERNAL_H

#include "buf/buf.h"
#include "llm/llm.h"
#include "sse/sse.h"

#define AOS_LLM_MAX_TOOL_CALLS 128
#define AOS_LLM_MAX_NAME       256 /* bytes of a model's name */

typedef struct {
    aos_buf_t id, name, args;
    long index; /* the stream's index of the call, -1 when it gave none */
} aos__llm_tc_t;

typedef struct {
    aos_llm_op_t op;
    int stream; /* reading an event stream (else one JSON body) */
    size_t max;
    aos_sse_t sse;
    aos_buf_t body; /* the JSON body, when not a stream */
    aos_buf_t content, reasoning;
    aos__llm_tc_t *calls;
    size_t ncalls;
    char *finish_reason, *id, *model;
    int has_usage;
    uint64_t input_tokens, output_tokens;
    int done;             /* the stream said [DONE] */
    int failed;           /* why is set; everything after is ignored */
    int has_text;         /* some text arrived (for the time to the first token) */
    unsigned long events; /* events of the stream so far */
    char why[160];
    char *error_type; /* an error object's code or type, from a stream */
    aos_llm_delta_fn on_delta;
    void *delta_data; /* borrowed */
} aos__llm_rd_t;

/* stream: the body is text/event-stream. max bounds the text, the
 * reasoning, the tool calls' arguments (together) and a stream's event or
 * the JSON body. */
void aos__llm_rd_init(aos__llm_rd_t *rd, aos_llm_op_t op, int stream, size_t max,
                      aos_llm_delta_fn on_delta, void *delta_data);
void aos__llm_rd_release(aos__llm_rd_t *rd);
/* A piece of the body. Returns 0, or AOS_EUPSTREAM / AOS_ETOOBIG /
 * AOS_ENOMEM with rd->why set; later pieces are then refused the same way. */
int aos__llm_rd_feed(aos__llm_rd_t *rd, const char *p, size_t n);
/* The body ended: moves what was read into res (content, reasoning,
 * tool_calls, finish_reason, response_id, response_model, usage; for
 * embeddings the vectors, of which there must be nexpect). Returns 0, or
 * an AOS_E* code with rd->why set (a stream that ended before [DONE] and
 * without a finish reason, a body that is not what the operation
 * answers). */
int aos__llm_rd_finish(aos__llm_rd_t *rd, aos_llm_result_t *res, size_t nexpect);

/* The message of a failed HTTP response, for errmsg: "http STATUS Reason"
 * and, when the body is JSON with an error message, ": " and that message
 * cut to 100 printable bytes. *type gets the error's code or type (a copy,
 * cut to 64 bytes) or NULL. */
void aos__llm_http_why(long status, const char *body, size_t len, char *why, size_t n, char **type);
/* Cuts out of s (in place) every run of 8 or more bytes that also occurs in
 * secret, replacing it with "[REDACTED]" when it fits; nothing for a secret
 * shorter than 8 bytes. */
void aos__llm_scrub(char *s, size_t size, const char *secret);

/* ---- request.c: request bodies ----
 * Each checks what the caller gave (AOS_EINVAL with err naming the part)
 * and returns the body to send (new reference), or NULL with err set. */

/* 1 if s has no control characters (and no spaces unless spaces). */
int aos__llm_printable(const char *s, int spaces);
/* A request's model override and traceparent (each may be NULL). */
int aos__llm_check_common(const char *model, const char *traceparent, aos_err_t *err);
/* temperature: sent when >= 0 (NaN: not sent); max_tokens: the default
 * when req->max_tokens is 0, sent when > 0. extra is applied last. */
json_t *aos__llm_chat_body(const aos_llm_chat_t *req, const char *model, double temperature,
                           unsigned max_tokens, aos_err_t *err);
json_t *aos__llm_embed_body(const aos_llm_embed_t *req, const char *model, aos_err_t *err);

#endif
