/* llm.h - a client of OpenAI-compatible model servers (POST /chat/completions
 * and /embeddings under a base URL such as https://api.openai.com/v1), on
 * the libuv loop through httpc: a call waiting for a model is a callback,
 * never a blocked thread.
 *
 * A chat call sends messages, optional function tools, tool_choice and
 * response_format, and gets back the assistant's text, its tool calls (each
 * with its arguments parsed, or the reason they did not parse), the finish
 * reason, token usage and its cost in CNY from the configured prices. With
 * stream set the answer comes as server-sent events: text deltas reach
 * on_delta as they arrive and tool-call deltas are assembled by index, so
 * the result is the same either way. An embeddings call turns texts into
 * vectors.
 *
 * Failures are AOS_E* codes from src/err with a short message: 401/403 is
 * AOS_EUPAUTH, 429 AOS_ERATE (with the server's Retry-After), a 5xx or any
 * other refusal AOS_EUPSTREAM (with the status and the server's message cut
 * short), a malformed body or stream AOS_EUPSTREAM (with where it broke), a
 * response past cfg.max_response AOS_EUPSTREAM, no complete answer within
 * cfg.timeout_ms AOS_ETIMEDOUT. A call is tried again, up to cfg.retries
 * times with jittered exponential back-off, only when the request surely
 * did nothing: the connection was never made, or the server answered 429,
 * 408 or 5xx (or said x-should-retry: true) - never after a timeout or a
 * connection lost once the request was sent, and never when the server
 * said x-should-retry: false.
 *
 * The API key is a secret: it goes only into the request's Authorization
 * header. No error message, log line or metric carries it, nor any 8 bytes
 * of it (a server's message that quotes part of it is cut there); cfg
 * .on_secret hands it to the log redactor.
 *
 * Tracing: the caller's W3C traceparent is sent as the traceparent header,
 * and aos_llm_result_span() gives the OpenTelemetry GenAI attributes of
 * the call for the span the caller records.
 *
 * Threading: loop thread only; every callback runs there. */
#ifndef AOS_LLM_H
#define AOS_LLM_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "err/err.h"
#include "httpc/httpc.h"
#include "metrics/metrics.h"

typedef struct aos_llm_s aos_llm_t;           /* one model server */
typedef struct aos_llm_call_s aos_llm_call_t; /* one call in flight */

/* The model server and how to call it. Every string is copied. A zero
 * number means the default given, except where it says otherwise. */
typedef struct {
    const char *base_url;    /* http(s)://host[:port]/path, e.g. ".../v1"; required */
    const char *model;       /* the chat model; required */
    const char *embed_model; /* the embeddings model; NULL: model */
    const char *api_key;     /* a secret; NULL or "": sent without one (local servers) */
    /* NULL: "Authorization: Bearer KEY"; else the header that carries the
     * key as it is (Azure OpenAI: "api-key") */
    const char *api_key_header;
    const char *const *headers; /* more "Name: value" lines, NULL-terminated; may be NULL */
    double temperature;         /* sent when 0..2; negative or NaN: not sent */
    unsigned max_tokens;        /* sent as max_tokens when > 0 */
    unsigned timeout_ms;        /* one attempt, streamed or not (default 120000) */
    unsigned retries;           /* attempts after the first (0: none; at most 10) */
    unsigned retry_base_ms;     /* first back-off (default 500) */
    unsigned retry_max_ms;      /* longest wait before an attempt, a server's
                                   Retry-After included (default 30000) */
    double price_in_cny;        /* per 1,000 input (prompt) tokens, >= 0 */
    double price_out_cny;       /* per 1,000 output (completion) tokens, >= 0 */
    size_t max_response;        /* bytes of text, tool arguments or body kept (default 8 MiB) */
    const char *ca_file;        /* PEM bundle for https; NULL: the system's */
    aos_metrics_t *metrics;     /* borrowed, may be NULL: aos_llm_* metrics */
    /* Gets every secret value of this configuration (the key) once, when
     * it is set, so that the log redactor knows it. May be NULL. */
    void (*on_secret)(const char *value, void *data);
    void *secret_data; /* borrowed */
} aos_llm_cfg_t;

/* Creates a client. httpc and loop are borrowed and must outlive it.
 * Returns 0, or AOS_EINVAL (err says which setting) / AOS_ENOMEM. */
int aos_llm_new(aos_llm_t **out, uv_loop_t *loop, aos_httpc_t *httpc, const aos_llm_cfg_t *cfg,
                aos_err_t *err);
/* Replaces the configuration for the calls started from now on; calls in
 * flight keep theirs. On failure nothing changes. */
int aos_llm_configure(aos_llm_t *llm, const aos_llm_cfg_t *cfg, aos_err_t *err);
/* Ends every call in flight (each done runs now, with AOS_ECANCELED) and
 * frees llm. Handles still closing are released by the loop: run it
 * afterwards. llm may be NULL. Not from a callback of llm. */
void aos_llm_free(aos_llm_t *llm);
/* The chat model calls use unless they name another. */
const char *aos_llm_model(const aos_llm_t *llm);

/* ---- results --------------------------------------------------------------- */

typedef struct {
    char *id;             /* the model's id for the call ("" when it sent none) */
    char *name;           /* the function's name */
    char *arguments_text; /* the arguments as the model sent them */
    json_t *arguments;    /* parsed: an object; NULL when error is set */
    char *error;          /* why arguments is NULL (invalid JSON, not an object, no name) */
} aos_llm_tool_call_t;

typedef enum { AOS_LLM_CHAT = 0, AOS_LLM_EMBED } aos_llm_op_t;

/* The outcome of a call; handed to its done callback, which owns it
 * (aos_llm_result_free). On failure only status, errmsg and the fields
 * about the request and its timing are meaningful. */
typedef struct {
    aos_llm_op_t op;
    int status;       /* 0 or a negative AOS_E* code */
    char errmsg[256]; /* when status != 0: short, never a secret */
    char *error_type; /* the server's error code or type ("context_length_exceeded"), or NULL */
    long http_status; /* of the last response, 0 when none came */
    uint64_t retry_after_ms; /* AOS_ERATE: the wait the server asked for (0: it said none) */

    /* chat */
    char *content; /* the assistant's text (NUL-terminated, content_len bytes), or NULL */
    size_t content_len;
    char *reasoning; /* reasoning text (DeepSeek's, Qwen's reasoning_content), or NULL */
    aos_llm_tool_call_t *tool_calls;
    size_t ntool_calls;
    char *finish_reason; /* "stop", "length", "tool_calls", "content_filter", ...; or NULL */

    /* embeddings: nvectors vectors of dim floats, one per text, in order */
    float *vectors; /* nvectors * dim */
    size_t nvectors, dim;

    /* both */
    char *request_model;  /* the model asked for */
    char *response_model; /* the model that answered, as the server names it; or NULL */
    char *response_id;    /* the server's id of the completion, or NULL */
    int has_usage;        /* the server reported usage */
    uint64_t input_tokens, output_tokens;
    double cost_cny;             /* input_tokens/1000 * price_in + output_tokens/1000 * price_out */
    double request_temperature;  /* as sent; NaN when none was */
    unsigned request_max_tokens; /* as sent; 0 when none was */
    char server_address[256];    /* host of the base URL */
    int server_port;
    uint64_t started_ms;     /* wall clock (ms since the epoch) when the call started */
    uint64_t latency_ms;     /* start to end, retries and waits included */
    uint64_t first_token_ms; /* streamed chat: start to the first text; 0 if none */
    unsigned attempts;       /* requests sent (or tried) */
} aos_llm_result_t;

void aos_llm_result_free(aos_llm_result_t *r);
/* The assistant message for the next turn of the conversation: {"role":
 * "assistant", "content", "tool_calls": [{"id", "type": "function",
 * "function": {"name", "arguments"}}]}, arguments as the model sent them.
 * New reference; NULL for a failed call or on ENOMEM. */
json_t *aos_llm_result_message(const aos_llm_result_t *r);
/* The OpenTelemetry GenAI attributes of the call's span: gen_ai.operation
 * .name ("chat" | "embeddings"), gen_ai.request.model, .temperature,
 * .max_tokens, gen_ai.response.model, .id, .finish_reasons,
 * gen_ai.usage.input_tokens, .output_tokens, server.address, server.port,
 * error.type (the AOS error code string) when it failed, and aos.cost_cny,
 * aos.attempts. The span's name is "<operation> <request model>", its start
 * started_ms and its length latency_ms. New reference; NULL on ENOMEM. */
json_t *aos_llm_result_span(const aos_llm_result_t *r);

/* Runs once per call, with the result (the callback's to free). It may
 * start and cancel calls. */
typedef void (*aos_llm_done_fn)(aos_llm_result_t *res, void *data);
/* A piece of the streamed answer's text (not NUL-terminated); without a
 * stream, the whole text once. It may call aos_llm_cancel. */
typedef void (*aos_llm_delta_fn)(const char *text, size_t len, void *data);

/* ---- chat ------------------------------------------------------------------- */

typedef struct {
    /* The conversation in the OpenAI form, borrowed: objects with "role"
     * system | developer | user | assistant | tool, "content" (a string;
     * an array of parts for user; null for an assistant with tool calls),
     * optional "name"; an assistant's "tool_calls" [{"id", "type":
     * "function", "function": {"name", "arguments" (a string or an
     * object)}}]; a tool message's "tool_call_id". Anything else is
     * refused (AOS_EINVAL naming the message and the member). */
    json_t *messages;
    /* Function tools, borrowed, may be NULL: [{"name", "description",
     * "parameters" (a JSON Schema object; default: no arguments)}], or the
     * OpenAI form {"type": "function", "function": {...}}. Names are
     * [A-Za-z0-9_-]{1,64}, unique. */
    json_t *tools;
    /* NULL (the server's default), "auto", "none", "required", or the name
     * of one of tools (that function must be called). */
    const char *tool_choice;
    /* Borrowed, may be NULL: {"type": "json_object"}, or "json_schema" with
     * its schema, as the server takes it. */
    json_t *response_format;
    int stream;          /* 1: ask for server-sent events */
    const char *model;   /* NULL: the configured model */
    unsigned max_tokens; /* 0: the configured max_tokens */
    /* Borrowed, may be NULL: more members of the request body ("seed",
     * "temperature", "top_p", a server's own options); they win over the
     * configuration but may not be model, messages, tools, tool_choice,
     * response_format, stream or stream_options. */
    json_t *extra;
    const char *traceparent;   /* W3C trace context, sent as the traceparent header; may be NULL */
    aos_llm_delta_fn on_delta; /* streamed text as it comes; may be NULL */
    void *delta_data;          /* borrowed */
} aos_llm_chat_t;

/* Starts a chat call. On success *out (when out is not NULL) is the call,
 * valid until its done callback returns, and done runs exactly once, later,
 * from the loop. On failure (AOS_EINVAL: err names the message or field;
 * AOS_ENOMEM; AOS_EINTERNAL) done never runs. Nothing in req is kept. */
int aos_llm_chat(aos_llm_t *llm, const aos_llm_chat_t *req, aos_llm_done_fn done, void *data,
                 aos_llm_call_t **out, aos_err_t *err);

/* ---- embeddings ------------------------------------------------------------- */

typedef struct {
    const char *const *texts; /* ntexts strings, each non-empty; copied */
    size_t ntexts;            /* 1 to 2048 */
    const char *model;        /* NULL: the configured embed_model (or model) */
    const char *traceparent;  /* may be NULL */
} aos_llm_embed_t;

/* Starts an embeddings call; as aos_llm_chat. */
int aos_llm_embed(aos_llm_t *llm, const aos_llm_embed_t *req, aos_llm_done_fn done, void *data,
                  aos_llm_call_t **out, aos_err_t *err);

/* Cancels a call: its done runs once with AOS_ECANCELED, later from the
 * loop (never inside this call); nothing is delivered to on_delta after
 * this. Does nothing once done has run or is running. */
void aos_llm_cancel(aos_llm_call_t *call);

#endif
