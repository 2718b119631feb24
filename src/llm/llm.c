/* llm.c - calls to an OpenAI-compatible model server; see llm.h.
 *
 * A call (aos_llm_call_t) owns its request - URL, JSON body (request.c),
 * header lines, built once when it starts and sent again as they are on a
 * retry - and a result it fills. Each attempt is one httpc transfer:
 * on_headers picks how to read the body (an event stream or one JSON
 * document, whatever was asked: the Content-Type decides), on_data feeds
 * the reader of response.c (or keeps the start of an error body), on_done
 * decides: the result, a retry after a back-off on the call's timer, or a
 * failure.
 *
 * The configuration is a reference-counted copy (llm_cfg_t): a call keeps
 * the one it started with, so aos_llm_configure never changes a call in
 * flight, and a call can outlive aos_llm_free until httpc reports the end
 * of its transfer. The copy of the key, and the header lines holding it,
 * are wiped before they are freed.
 *
 * A call ends once (finish): the result goes to done, the call leaves the
 * client's list, then its memory goes when both its transfer and its timer
 * are over (call_release). */
#include "llm/internal.h"
#include "isotime/isotime.h"

#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "guard/guard.h"
#include "log/log.h"

#define LLM_TIMEOUT_MS     120000
#define LLM_RETRY_BASE_MS  500
#define LLM_RETRY_MAX_MS   30000
#define LLM_MAX_RESPONSE   ((size_t)8 << 20)
#define LLM_MAX_RETRIES    10
#define LLM_MAX_TIMEOUT_MS 86400000u
#define LLM_ERROR_BODY     4096 /* kept of an error response, for its message */
#define LLM_MAX_URL        2048
#define LLM_MAX_KEY        4096
#define LLM_COMPONENT      "llm"

#ifndef AOS_VERSION
#define AOS_VERSION "0"
#endif

typedef struct {
    int refs;
    char *base, *query; /* the base URL without, and its query (NULL if none) */
    char *model, *embed_model;
    char *api_key; /* NULL: none */
    char *key_header;
    char **headers;     /* NULL-terminated copies */
    double temperature; /* NaN: not sent */
    unsigned max_tokens, timeout_ms, retries, retry_base_ms, retry_max_ms;
    double price_in, price_out;
    size_t max_response;
    char *ca_file;
    char host[256];
    int port;
} llm_cfg_t;

struct aos_llm_s {
    uv_loop_t *loop;    /* borrowed */
    aos_httpc_t *httpc; /* borrowed */
    llm_cfg_t *cfg;     /* a reference */
    void (*on_secret)(const char *value, void *data);
    void *secret_data;                                                  /* borrowed */
    aos_metric_t *m_calls, *m_tokens, *m_cost, *m_duration, *m_retries; /* borrowed, or NULL */
    aos_metric_t *m_op_duration, *m_token_usage; /* OpenTelemetry GenAI's; or NULL */
    aos_llm_call_t *calls;                       /* not yet reported */
};

struct aos_llm_call_s {
    aos_llm_t *llm; /* NULL once reported */
    llm_cfg_t *cfg; /* a reference */
    aos_llm_op_t op;
    char *url;
    char *body;
    size_t body_len;
    char **headers;       /* NULL-terminated; hold the key: wiped when freed */
    aos_httpc_req_t *req; /* the attempt in flight, or NULL */
    uv_timer_t timer;     /* back-off, and reporting a cancel from the loop */
    aos__llm_rd_t rd;
    int rd_live;   /* rd was initialized for this attempt */
    aos_buf_t err; /* start of an error response's body */
    long status;   /* HTTP status of this attempt, 0 before its headers */
    aos_llm_done_fn done;
    void *data; /* borrowed */
    aos_llm_delta_fn on_delta;
    void *delta_data; /* borrowed */
    aos_llm_result_t *res;
    size_t nexpect; /* embeddings: the number of texts */
    uint64_t t0;    /* uv_hrtime at the start */
    char trace_id[33];
    int canceled, reported, closing;
    aos_llm_call_t *prev, *next;
};

/* ---- small helpers ---------------------------------------------------------- */

static void wipe_free(char *s)
{
    if (s) {
        sodium_memzero(s, strlen(s));
        free(s);
    }
}

static void wipe_strv(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        wipe_free(v[i]);
    free(v);
}

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

/* An HTTP token (RFC 9110 tchar). */
static int token(const char *s, size_t n)
{
    static const char extra[] = "!#$%&'*+-.^_`|~";
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c && strchr(extra, c))))
            return 0;
    }
    return 1;
}

/* Header names the client sets itself, or that frame the message. */
static int reserved_header(const char *name, size_t n)
{
    static const char *const names[] = {
        "content-type", "content-length", "transfer-encoding", "host",        "connection",
        "expect",       "accept",         "authorization",     "traceparent", "tracestate",
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i]) == n && strncasecmp(names[i], name, n) == 0)
            return 1;
    return 0;
}

static uint64_t wall_ms(void)
{
    return (uint64_t)aos_isotime_now_ms();
}

/* ---- configuration ------------------------------------------------------------ */

static void cfg_unref(llm_cfg_t *c)
{
    if (!c || --c->refs > 0)
        return;
    free(c->base);
    free(c->query);
    free(c->model);
    free(c->embed_model);
    wipe_free(c->api_key);
    free(c->key_header);
    wipe_strv(c->headers);
    free(c->ca_file);
    free(c);
}

/* Splits base_url into c->base (no trailing '/') and c->query, and finds
 * the host and port for the span. */
static int cfg_url(llm_cfg_t *c, const char *url, aos_err_t *err)
{
    size_t n = strlen(url);
    const char *rest;
    if (strncasecmp(url, "https://", 8) == 0) {
        rest = url + 8;
        c->port = 443;
    } else if (strncasecmp(url, "http://", 7) == 0) {
        rest = url + 7;
        c->port = 80;
    } else {
        return aos_err_set(err, AOS_EINVAL, "base_url must be an http:// or https:// URL");
    }
    if (n > LLM_MAX_URL || !aos__llm_printable(url, 0))
        return aos_err_set(err, AOS_EINVAL, "base_url holds spaces or control characters");
    if (strchr(url, '#'))
        return aos_err_set(err, AOS_EINVAL, "base_url may not have a fragment");
    size_t hlen = strcspn(rest, "/?");
    if (memchr(rest, '@', hlen))
        return aos_err_set(err, AOS_EINVAL, "base_url may not hold credentials: use the API key");
    const char *h = rest, *port = NULL;
    size_t alen = hlen;
    if (*h == '[') { /* [v6]:port */
        const char *close = memchr(h, ']', hlen);
        if (!close)
            return aos_err_set(err, AOS_EINVAL, "base_url has a bad host");
        h++;
        alen = (size_t)(close - h);
        if (close + 1 < rest + hlen && close[1] == ':')
            port = close + 2;
    } else {
        const char *colon = memchr(h, ':', hlen);
        if (colon) {
            alen = (size_t)(colon - h);
            port = colon + 1;
        }
    }
    if (alen == 0 || alen >= sizeof(c->host))
        return aos_err_set(err, AOS_EINVAL, "base_url has no host");
    memcpy(c->host, h, alen);
    c->host[alen] = '\0';
    if (port) {
        long p = 0;
        const char *q = port;
        for (; q < rest + hlen && *q >= '0' && *q <= '9' && p <= 65535; q++)
            p = p * 10 + (*q - '0');
        if (q != rest + hlen || q == port || p < 1 || p > 65535)
            return aos_err_set(err, AOS_EINVAL, "base_url has a bad port");
        c->port = (int)p;
    }
    const char *qm = strchr(url, '?');
    size_t blen = qm ? (size_t)(qm - url) : n;
    while (blen > 0 && url[blen - 1] == '/')
        blen--;
    c->base = strndup(url, blen);
    if (qm && qm[1])
        c->query = strdup(qm + 1);
    if (!c->base || (qm && qm[1] && !c->query))
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return 0;
}

static int cfg_headers(llm_cfg_t *c, const aos_llm_cfg_t *in, aos_err_t *err)
{
    size_t n = 0;
    while (in->headers && in->headers[n])
        n++;
    c->headers = calloc(n + 1, sizeof(char *));
    if (!c->headers)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const char *h = in->headers[i], *colon = strchr(h, ':');
        if (!colon || !token(h, (size_t)(colon - h)))
            return aos_err_set(err, AOS_EINVAL, "headers[%zu] is not 'Name: value'", i);
        for (const unsigned char *p = (const unsigned char *)colon + 1; *p; p++)
            if ((*p < 0x20 && *p != '\t') || *p == 0x7f)
                return aos_err_set(err, AOS_EINVAL, "headers[%zu] holds a control character", i);
        if (reserved_header(h, (size_t)(colon - h)) ||
            (c->key_header && strlen(c->key_header) == (size_t)(colon - h) &&
             strncasecmp(c->key_header, h, (size_t)(colon - h)) == 0))
            return aos_err_set(err, AOS_EINVAL, "headers[%zu]: '%.*s' is set by the client", i,
                               (int)(colon - h), h);
        if (!(c->headers[i] = strdup(h)))
            return aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    return 0;
}

/* Checks in and fills *out with a copy (one reference); *out stays NULL
 * on failure. */
static int cfg_fill(llm_cfg_t **out, const aos_llm_cfg_t *in, aos_err_t *err)
{
    *out = NULL;
    if (!in || !in->base_url || !in->base_url[0])
        return aos_err_set(err, AOS_EINVAL, "base_url is required");
    if (!in->model || !in->model[0] || strlen(in->model) > AOS_LLM_MAX_NAME ||
        !aos__llm_printable(in->model, 1))
        return aos_err_set(err, AOS_EINVAL, "model is required (printable, at most %d bytes)",
                           AOS_LLM_MAX_NAME);
    if (in->embed_model && (!in->embed_model[0] || strlen(in->embed_model) > AOS_LLM_MAX_NAME ||
                            !aos__llm_printable(in->embed_model, 1)))
        return aos_err_set(err, AOS_EINVAL, "embed_model is not a model name");
    if (in->api_key && (strlen(in->api_key) > LLM_MAX_KEY || !aos__llm_printable(in->api_key, 0)))
        return aos_err_set(err, AOS_EINVAL,
                           "the API key holds a character a header cannot carry, or is too long");
    if (in->api_key_header && (!token(in->api_key_header, strlen(in->api_key_header)) ||
                               (reserved_header(in->api_key_header, strlen(in->api_key_header)) &&
                                strcasecmp(in->api_key_header, "authorization") != 0)))
        return aos_err_set(err, AOS_EINVAL, "api_key_header is not a header name of its own");
    if (!isnan(in->temperature) && in->temperature > 2.0)
        return aos_err_set(err, AOS_EINVAL, "temperature must be from 0 to 2");
    if (!isfinite(in->price_in_cny) || in->price_in_cny < 0 || !isfinite(in->price_out_cny) ||
        in->price_out_cny < 0)
        return aos_err_set(err, AOS_EINVAL, "prices must be zero or more");
    if (in->timeout_ms > LLM_MAX_TIMEOUT_MS)
        return aos_err_set(err, AOS_EINVAL, "timeout_ms must be at most %u", LLM_MAX_TIMEOUT_MS);
    if (in->retries > LLM_MAX_RETRIES)
        return aos_err_set(err, AOS_EINVAL, "retries must be at most %d", LLM_MAX_RETRIES);
    if (in->max_response && in->max_response < 256)
        return aos_err_set(err, AOS_EINVAL, "max_response must be at least 256 bytes");

    llm_cfg_t *c = calloc(1, sizeof(*c));
    if (!c)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    c->refs = 1;
    int rc = cfg_url(c, in->base_url, err);
    if (!rc) {
        c->model = strdup(in->model);
        c->embed_model = dup_or_null(in->embed_model);
        c->api_key = in->api_key && in->api_key[0] ? strdup(in->api_key) : NULL;
        c->key_header = dup_or_null(in->api_key_header);
        c->ca_file = dup_or_null(in->ca_file);
        if (!c->model || (in->embed_model && !c->embed_model) ||
            (in->api_key && in->api_key[0] && !c->api_key) ||
            (in->api_key_header && !c->key_header) || (in->ca_file && !c->ca_file))
            rc = aos_err_set(err, AOS_ENOMEM, "out of memory");
    }
    if (!rc)
        rc = cfg_headers(c, in, err);
    if (rc) {
        cfg_unref(c);
        return rc;
    }
    c->temperature = in->temperature >= 0 ? in->temperature : NAN;
    c->max_tokens = in->max_tokens;
    c->timeout_ms = in->timeout_ms ? in->timeout_ms : LLM_TIMEOUT_MS;
    c->retries = in->retries;
    c->retry_base_ms = in->retry_base_ms ? in->retry_base_ms : LLM_RETRY_BASE_MS;
    c->retry_max_ms = in->retry_max_ms ? in->retry_max_ms : LLM_RETRY_MAX_MS;
    if (c->retry_base_ms > c->retry_max_ms)
        c->retry_base_ms = c->retry_max_ms;
    c->price_in = in->price_in_cny;
    c->price_out = in->price_out_cny;
    c->max_response = in->max_response ? in->max_response : LLM_MAX_RESPONSE;
    *out = c;
    return 0;
}

/* A checked copy of in (one reference), or NULL with err set. */
static llm_cfg_t *cfg_new(const aos_llm_cfg_t *in, aos_err_t *err)
{
    llm_cfg_t *c = NULL;
    return cfg_fill(&c, in, err) ? NULL : c;
}

static void tell_secret(aos_llm_t *llm)
{
    if (llm->on_secret && llm->cfg->api_key)
        llm->on_secret(llm->cfg->api_key, llm->secret_data);
}

int aos_llm_new(aos_llm_t **out, uv_loop_t *loop, aos_httpc_t *httpc, const aos_llm_cfg_t *cfg,
                aos_err_t *err)
{
    aos_err_t local = {0, ""};
    if (!err)
        err = &local;
    *out = NULL;
    if (!loop || !httpc)
        return aos_err_set(err, AOS_EINVAL, "a loop and an http client are required");
    aos_llm_t *llm = calloc(1, sizeof(*llm));
    if (!llm)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    err->code = 0;
    if (!(llm->cfg = cfg_new(cfg, err))) {
        free(llm);
        return err->code ? err->code : AOS_EINVAL;
    }
    llm->loop = loop;
    llm->httpc = httpc;
    llm->on_secret = cfg->on_secret;
    llm->secret_data = cfg->secret_data;
    if (cfg->metrics) {
        static const double bounds[] = {0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300};
        aos_metrics_t *m = cfg->metrics;
        llm->m_calls = aos_metrics_counter(m, "aos_llm_calls_total",
                                           "LLM calls by outcome (ok, or the error code)",
                                           "operation,model,outcome");
        llm->m_tokens = aos_metrics_counter(m, "aos_llm_tokens_total",
                                            "tokens of LLM calls as the server counted them",
                                            "operation,model,type");
        llm->m_cost =
            aos_metrics_counter(m, "aos_llm_cost_cny_total",
                                "cost of LLM calls in CNY, from the configured prices", "model");
        llm->m_duration = aos_metrics_histogram(
            m, "aos_llm_call_duration_seconds", "time of LLM calls, retries included",
            "operation,model", bounds, sizeof(bounds) / sizeof(bounds[0]));
        llm->m_retries = aos_metrics_counter(m, "aos_llm_retries_total",
                                             "LLM requests sent again after a failure", "model");
        /* OpenTelemetry's GenAI client metrics (gen-ai-metrics.md), with
         * the buckets it advises, in Prometheus' naming */
        static const double secs[] = {0.01, 0.02, 0.04, 0.08,  0.16,  0.32,  0.64,
                                      1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92};
        static const double toks[] = {1,     4,     16,     64,      256,     1024,     4096,
                                      16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864};
        llm->m_op_duration =
            aos_metrics_histogram(m, "gen_ai_client_operation_duration_seconds",
                                  "GenAI operation duration (gen_ai.client.operation.duration)",
                                  "gen_ai_operation_name,gen_ai_request_model,error_type", secs,
                                  sizeof(secs) / sizeof(secs[0]));
        llm->m_token_usage = aos_metrics_histogram(
            m, "gen_ai_client_token_usage",
            "Number of input and output tokens used (gen_ai.client.token.usage)",
            "gen_ai_operation_name,gen_ai_request_model,gen_ai_token_type", toks,
            sizeof(toks) / sizeof(toks[0]));
    }
    tell_secret(llm);
    *out = llm;
    return 0;
}

int aos_llm_configure(aos_llm_t *llm, const aos_llm_cfg_t *cfg, aos_err_t *err)
{
    aos_err_t local = {0, ""};
    if (!err)
        err = &local;
    err->code = 0;
    llm_cfg_t *c = cfg_new(cfg, err);
    if (!c)
        return err->code ? err->code : AOS_EINVAL;
    cfg_unref(llm->cfg);
    llm->cfg = c;
    tell_secret(llm);
    return 0;
}

const char *aos_llm_model(const aos_llm_t *llm)
{
    return llm->cfg->model;
}

/* ---- calls: lifetime ---------------------------------------------------------------- */

static void call_freed(uv_handle_t *h)
{
    aos_llm_call_t *call = h->data;
    if (call->rd_live)
        aos__llm_rd_release(&call->rd);
    aos_buf_release(&call->err);
    free(call->url);
    if (call->body) {
        sodium_memzero(call->body, call->body_len);
        free(call->body);
    }
    wipe_strv(call->headers);
    aos_llm_result_free(call->res);
    cfg_unref(call->cfg);
    free(call);
}

/* Frees the call once its transfer is over (else on_done comes back here). */
static void call_release(aos_llm_call_t *call)
{
    if (call->req || call->closing)
        return;
    call->closing = 1;
    uv_close((uv_handle_t *)&call->timer, call_freed);
}

static void call_unlink(aos_llm_call_t *call)
{
    aos_llm_t *llm = call->llm;
    if (call->prev)
        call->prev->next = call->next;
    else
        llm->calls = call->next;
    if (call->next)
        call->next->prev = call->prev;
    call->prev = call->next = NULL;
}

static const char *model_label(const aos_llm_call_t *call)
{
    return call->res->request_model ? call->res->request_model : "";
}

static void record(aos_llm_t *llm, aos_llm_call_t *call)
{
    aos_llm_result_t *r = call->res;
    const char *op = r->op == AOS_LLM_EMBED ? "embeddings" : "chat";
    const char *outcome = r->status ? aos_err_code(r->status) : "ok";
    if (llm->m_calls)
        aos_metric_add(llm->m_calls, 1, op, model_label(call), outcome);
    if (llm->m_duration)
        aos_metric_observe(llm->m_duration, (double)r->latency_ms / 1000.0, op, model_label(call));
    aos_metric_observe(llm->m_op_duration, (double)r->latency_ms / 1000.0, op, model_label(call),
                       r->status ? aos_err_code(r->status) : "");
    if (r->has_usage) {
        aos_metric_observe(llm->m_token_usage, (double)r->input_tokens, op, model_label(call),
                           "input");
        aos_metric_observe(llm->m_token_usage, (double)r->output_tokens, op, model_label(call),
                           "output");
    }
    if (r->has_usage && llm->m_tokens) {
        aos_metric_add(llm->m_tokens, (double)r->input_tokens, op, model_label(call), "input");
        aos_metric_add(llm->m_tokens, (double)r->output_tokens, op, model_label(call), "output");
    }
    if (r->has_usage && llm->m_cost)
        aos_metric_add(llm->m_cost, r->cost_cny, model_label(call));
    json_t *f =
        json_pack("{s:s, s:s, s:s, s:I, s:i, s:I, s:I, s:f}", "operation", op, "model",
                  model_label(call), "outcome", outcome, "latency_ms", (json_int_t)r->latency_ms,
                  "attempts", (int)r->attempts, "input_tokens", (json_int_t)r->input_tokens,
                  "output_tokens", (json_int_t)r->output_tokens, "cost_cny", r->cost_cny);
    if (f && call->trace_id[0])
        json_object_set_new(f, "trace_id", json_string(call->trace_id));
    if (r->status == 0)
        aos_log(AOS_LOG_INFO, LLM_COMPONENT, f, "%s %s: %llu+%llu tokens in %llu ms", op,
                model_label(call), (unsigned long long)r->input_tokens,
                (unsigned long long)r->output_tokens, (unsigned long long)r->latency_ms);
    else
        aos_log(r->status == AOS_ECANCELED ? AOS_LOG_INFO : AOS_LOG_WARN, LLM_COMPONENT, f,
                "%s %s failed: %s", op, model_label(call), r->errmsg);
}

/* Ends the call: the result goes to done. */
static void finish(aos_llm_call_t *call, int status, const char *why)
{
    aos_llm_t *llm = call->llm;
    aos_llm_result_t *r = call->res;
    if (call->reported || !r)
        return;
    call->reported = 1;
    uv_timer_stop(&call->timer);
    r->status = status;
    if (status) {
        snprintf(r->errmsg, sizeof(r->errmsg), "%s", why && *why ? why : aos_strerror(status));
        aos__llm_scrub(r->errmsg, sizeof(r->errmsg), call->cfg->api_key);
    }
    if (r->error_type) /* the server's word, like its message */
        aos__llm_scrub(r->error_type, strlen(r->error_type) + 1, call->cfg->api_key);
    if (r->has_usage)
        r->cost_cny = (double)r->input_tokens / 1000.0 * call->cfg->price_in +
                      (double)r->output_tokens / 1000.0 * call->cfg->price_out;
    r->latency_ms = (uv_hrtime() - call->t0) / 1000000;
    record(llm, call);
    call_unlink(call);
    call->llm = NULL;
    call->res = NULL;
    call->done(r, call->data);
    call_release(call);
}

/* ---- calls: attempts ------------------------------------------------------------------ */

static void on_headers(aos_httpc_req_t *r, long status, void *data);
static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data);
static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data);

static int attempt(aos_llm_call_t *call, aos_httpc_t *httpc, aos_err_t *err)
{
    if (call->rd_live)
        aos__llm_rd_release(&call->rd);
    call->rd_live = 0;
    aos_buf_reset(&call->err);
    call->status = 0;
    call->res->attempts++;
    aos_httpc_opts_t o = {.method = "POST",
                          .url = call->url,
                          .headers = (const char *const *)call->headers,
                          .body = call->body,
                          .body_len = call->body_len,
                          .timeout_ms = (long)call->cfg->timeout_ms,
                          .ca_file = call->cfg->ca_file,
                          .on_headers = on_headers,
                          .on_data = on_data,
                          .on_done = on_done,
                          .data = call};
    return aos_httpc_start(httpc, &o, &call->req, err);
}

static void on_timer(uv_timer_t *t)
{
    aos_llm_call_t *call = t->data;
    if (call->reported)
        return;
    if (call->canceled) {
        finish(call, AOS_ECANCELED, "the call was cancelled");
        return;
    }
    aos_err_t err = {0, ""};
    int rc = attempt(call, call->llm->httpc, &err);
    if (rc)
        finish(call, rc, aos_err_msg(&err));
}

/* The text of a streamed answer, to the caller's on_delta. */
static void call_delta(const char *text, size_t len, void *data)
{
    aos_llm_call_t *call = data;
    if (call->canceled || call->reported)
        return;
    if (!call->res->first_token_ms && call->rd.stream)
        call->res->first_token_ms = (uv_hrtime() - call->t0) / 1000000;
    if (call->on_delta)
        call->on_delta(text, len, call->delta_data);
}

static int ok_status(long s)
{
    return s >= 200 && s < 300;
}

static void on_headers(aos_httpc_req_t *r, long status, void *data)
{
    aos_llm_call_t *call = data;
    call->status = status;
    if (!ok_status(status))
        return;
    const char *ct = aos_httpc_resp_header(r, "content-type");
    int sse = ct && strncasecmp(ct, "text/event-stream", 17) == 0;
    aos__llm_rd_init(&call->rd, call->op, sse, call->cfg->max_response, call_delta, call);
    call->rd_live = 1;
}

static int on_data(aos_httpc_req_t *r, const char *chunk, size_t len, void *data)
{
    aos_llm_call_t *call = data;
    (void)r;
    if (call->canceled)
        return AOS_ECANCELED;
    if (call->rd_live)
        return aos__llm_rd_feed(&call->rd, chunk, len);
    if (call->err.len < LLM_ERROR_BODY)
        aos_buf_append(&call->err, chunk,
                       len < LLM_ERROR_BODY - call->err.len ? len : LLM_ERROR_BODY - call->err.len);
    return 0;
}

/* The wait the server asked for, in ms: retry-after-ms (OpenAI's), else
 * Retry-After in seconds or as an HTTP date. 0 when it said nothing. */
static uint64_t server_delay(aos_httpc_req_t *r)
{
    const char *ms = aos_httpc_resp_header(r, "retry-after-ms");
    const char *s = aos_httpc_resp_header(r, "retry-after");
    char *end;
    if (ms && *ms >= '0' && *ms <= '9') {
        double v = strtod(ms, &end);
        if (*end == '\0' && isfinite(v) && v >= 0 && v < 1e12)
            return (uint64_t)v;
    }
    if (!s)
        return 0;
    if (*s >= '0' && *s <= '9') {
        double v = strtod(s, &end);
        return *end == '\0' && isfinite(v) && v < 1e9 ? (uint64_t)(v * 1000) : 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof(tm));
    const char *p = strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm);
    if (!p || *p)
        return 0;
    time_t at = timegm(&tm);
    time_t now = time(NULL);
    return at > now ? (uint64_t)(at - now) * 1000 : 0;
}

/* Tries again after a back-off, or returns 0 when it may not. */
static int retry(aos_llm_call_t *call, uint64_t server_ms, const char *why)
{
    llm_cfg_t *c = call->cfg;
    if (call->res->attempts > c->retries || server_ms > c->retry_max_ms)
        return 0;
    uint64_t d = aos_backoff_ms(call->res->attempts, c->retry_base_ms, c->retry_max_ms,
                                randombytes_random());
    if (server_ms > d)
        d = server_ms;
    aos_log(
        AOS_LOG_INFO, LLM_COMPONENT,
        json_pack("{s:s, s:i}", "model", model_label(call), "attempt", (int)call->res->attempts),
        "retrying in %llu ms after: %s", (unsigned long long)d, why);
    if (call->llm->m_retries)
        aos_metric_add(call->llm->m_retries, 1, model_label(call));
    uv_timer_start(&call->timer, on_timer, d, 0);
    return 1;
}

/* An HTTP answer that is not 2xx. */
static void http_failed(aos_llm_call_t *call, aos_httpc_req_t *r)
{
    aos_llm_result_t *res = call->res;
    long st = call->status;
    char why[256];
    free(res->error_type);
    aos__llm_http_why(st, call->err.ptr, call->err.len, why, sizeof(why), &res->error_type);
    aos__llm_scrub(why, sizeof(why), call->cfg->api_key);
    if (st == 401 || st == 403) {
        /* the server's message may quote the key it refused: only its type */
        char msg[200];
        snprintf(msg, sizeof(msg), "the model server refused the API key (http %ld%s%s)", st,
                 res->error_type ? ": " : "", res->error_type ? res->error_type : "");
        finish(call, AOS_EUPAUTH, msg);
        return;
    }
    int may = st == 429 || st == 408 || st >= 500;
    const char *should = aos_httpc_resp_header(r, "x-should-retry");
    if (should && strcasecmp(should, "true") == 0)
        may = 1;
    else if (should && strcasecmp(should, "false") == 0)
        may = 0;
    uint64_t wait = server_delay(r);
    if (may && retry(call, wait, why))
        return;
    if (st == 429) {
        res->retry_after_ms = wait;
        char msg[sizeof(why) + 96];
        if (wait)
            snprintf(msg, sizeof(msg), "rate limited by the model server (retry after %llu ms): %s",
                     (unsigned long long)wait, why);
        else
            snprintf(msg, sizeof(msg), "rate limited by the model server: %s", why);
        finish(call, AOS_ERATE, msg);
        return;
    }
    finish(call, AOS_EUPSTREAM, why);
}

static void on_done(aos_httpc_req_t *r, int status, const char *errmsg, void *data)
{
    aos_llm_call_t *call = data;
    call->req = NULL;
    if (call->reported) { /* ended by aos_llm_free */
        call_release(call);
        return;
    }
    aos_llm_result_t *res = call->res;
    res->http_status = call->status;
    char why[256];
    if (call->canceled) {
        finish(call, AOS_ECANCELED, "the call was cancelled");
    } else if (call->rd_live && call->rd.failed) { /* the reader stopped the transfer */
        int code = call->rd.failed;
        snprintf(why, sizeof(why), "%s", call->rd.why);
        if (call->rd.error_type && !res->error_type)
            res->error_type = strdup(call->rd.error_type);
        finish(call, code == AOS_ETOOBIG ? AOS_EUPSTREAM : code, why);
    } else if (status == 0 && ok_status(call->status)) {
        int rc = aos__llm_rd_finish(&call->rd, res, call->nexpect);
        if (rc && call->rd.error_type && !res->error_type)
            res->error_type = strdup(call->rd.error_type);
        finish(call, rc == AOS_ETOOBIG ? AOS_EUPSTREAM : rc, rc ? call->rd.why : NULL);
    } else if (status == 0) {
        http_failed(call, r);
    } else if (status == AOS_ETIMEDOUT || status == AOS_EUPSTREAM) {
        /* tried again only when the request never left: else the server may
         * be working on it (and billing it) */
        int sent = aos_httpc_sent(r);
        if (status == AOS_ETIMEDOUT)
            snprintf(why, sizeof(why), "%s within %u ms",
                     sent ? "no complete answer" : "unable to connect", call->cfg->timeout_ms);
        else
            snprintf(why, sizeof(why), "%s: %s",
                     sent ? "the connection failed after the request was sent"
                          : "unable to reach the model server",
                     errmsg ? errmsg : "connection failed");
        if (!sent && retry(call, 0, why))
            return;
        finish(call, status, why);
    } else {
        finish(call, status, errmsg);
    }
}

/* ---- calls: starting ----------------------------------------------------------------- */

static char **build_headers(const llm_cfg_t *c, int stream, const char *traceparent)
{
    size_t n = 0;
    while (c->headers[n])
        n++;
    char **v = calloc(n + 6, sizeof(char *));
    if (!v)
        return NULL;
    size_t k = 0;
    aos_buf_t b = AOS_BUF_INIT;
    int bad = 0;
#define ADD(...)                                                                                   \
    do {                                                                                           \
        aos_buf_init(&b, 0);                                                                       \
        if (aos_buf_printf(&b, __VA_ARGS__) || !(v[k++] = aos_buf_detach(&b, NULL)))               \
            bad = 1;                                                                               \
    } while (0)
    ADD("Content-Type: application/json");
    ADD("Accept: %s", stream ? "text/event-stream" : "application/json");
    ADD("User-Agent: aosd/%s", AOS_VERSION);
    if (c->api_key && c->key_header)
        ADD("%s: %s", c->key_header, c->api_key);
    else if (c->api_key)
        ADD("Authorization: Bearer %s", c->api_key);
    if (traceparent)
        ADD("traceparent: %s", traceparent);
    for (size_t i = 0; i < n; i++)
        ADD("%s", c->headers[i]);
#undef ADD
    if (bad) {
        if (b.ptr)
            sodium_memzero(b.ptr, b.cap);
        aos_buf_release(&b);
        wipe_strv(v);
        return NULL;
    }
    return v;
}

static char *build_url(const llm_cfg_t *c, const char *path)
{
    aos_buf_t b = AOS_BUF_INIT;
    if (aos_buf_printf(&b, "%s%s%s%s", c->base, path, c->query ? "?" : "",
                       c->query ? c->query : "")) {
        aos_buf_release(&b);
        return NULL;
    }
    return aos_buf_detach(&b, NULL);
}

/* A call with its request built, not started; NULL when out of memory. */
static aos_llm_call_t *call_new(aos_llm_t *llm, aos_llm_op_t op, const char *model,
                                const char *path, json_t *body, int stream, const char *traceparent)
{
    aos_llm_call_t *call = calloc(1, sizeof(*call));
    aos_llm_result_t *res = calloc(1, sizeof(*res));
    if (!call || !res) {
        free(call);
        free(res);
        return NULL;
    }
    call->cfg = llm->cfg;
    call->cfg->refs++;
    call->op = op;
    call->res = res;
    call->t0 = uv_hrtime();
    aos_buf_init(&call->err, 0);
    res->op = op;
    res->started_ms = wall_ms();
    res->request_temperature = NAN;
    snprintf(res->server_address, sizeof(res->server_address), "%s", llm->cfg->host);
    res->server_port = llm->cfg->port;
    if (traceparent)
        snprintf(call->trace_id, sizeof(call->trace_id), "%.32s", traceparent + 3);
    call->body = json_dumps(body, JSON_COMPACT);
    call->body_len = call->body ? strlen(call->body) : 0;
    call->url = build_url(llm->cfg, path);
    call->headers = build_headers(llm->cfg, stream, traceparent);
    res->request_model = strdup(model);
    uv_timer_init(llm->loop, &call->timer);
    call->timer.data = call;
    if (!call->body || !call->url || !call->headers || !res->request_model) {
        call_release(call);
        return NULL;
    }
    return call;
}

/* Starts the first attempt and links the call, or frees it. */
static int call_start(aos_llm_t *llm, aos_llm_call_t *call, aos_llm_done_fn done, void *data,
                      aos_llm_call_t **out, aos_err_t *err)
{
    call->done = done;
    call->data = data;
    int rc = attempt(call, llm->httpc, err);
    if (rc) {
        call_release(call);
        return rc;
    }
    call->llm = llm;
    call->next = llm->calls;
    if (llm->calls)
        llm->calls->prev = call;
    llm->calls = call;
    if (out)
        *out = call;
    return 0;
}

int aos_llm_chat(aos_llm_t *llm, const aos_llm_chat_t *req, aos_llm_done_fn done, void *data,
                 aos_llm_call_t **out, aos_err_t *err)
{
    aos_err_t local = {0, ""};
    if (!err)
        err = &local;
    if (out)
        *out = NULL;
    if (!llm || !req || !done)
        return aos_err_set(err, AOS_EINVAL, "a client, a request and a callback are required");
    int rc = aos__llm_check_common(req->model, req->traceparent, err);
    if (rc)
        return rc;
    const char *model = req->model ? req->model : llm->cfg->model;
    err->code = 0;
    json_t *body = aos__llm_chat_body(req, model, llm->cfg->temperature, llm->cfg->max_tokens, err);
    if (!body)
        return err->code ? err->code : AOS_ENOMEM;
    aos_llm_call_t *call = call_new(llm, AOS_LLM_CHAT, model, "/chat/completions", body,
                                    req->stream, req->traceparent);
    if (call) {
        const json_t *t = json_object_get(body, "temperature");
        const json_t *m = json_object_get(body, "max_tokens");
        if (!m)
            m = json_object_get(body, "max_completion_tokens");
        call->res->request_temperature = json_is_number(t) ? json_number_value(t) : NAN;
        call->res->request_max_tokens =
            json_is_integer(m) && json_integer_value(m) > 0 ? (unsigned)json_integer_value(m) : 0;
        call->on_delta = req->on_delta;
        call->delta_data = req->delta_data;
    }
    json_decref(body);
    if (!call)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    return call_start(llm, call, done, data, out, err);
}

int aos_llm_embed(aos_llm_t *llm, const aos_llm_embed_t *req, aos_llm_done_fn done, void *data,
                  aos_llm_call_t **out, aos_err_t *err)
{
    aos_err_t local = {0, ""};
    if (!err)
        err = &local;
    if (out)
        *out = NULL;
    if (!llm || !req || !done)
        return aos_err_set(err, AOS_EINVAL, "a client, a request and a callback are required");
    int rc = aos__llm_check_common(req->model, req->traceparent, err);
    if (rc)
        return rc;
    const char *model = req->model              ? req->model
                        : llm->cfg->embed_model ? llm->cfg->embed_model
                                                : llm->cfg->model;
    json_t *body = aos__llm_embed_body(req, model, err);
    if (!body)
        return err->code;
    aos_llm_call_t *call =
        call_new(llm, AOS_LLM_EMBED, model, "/embeddings", body, 0, req->traceparent);
    json_decref(body);
    if (!call)
        return aos_err_set(err, AOS_ENOMEM, "out of memory");
    call->nexpect = req->ntexts;
    return call_start(llm, call, done, data, out, err);
}

void aos_llm_cancel(aos_llm_call_t *call)
{
    if (!call || call->reported || call->canceled)
        return;
    call->canceled = 1;
    if (call->req)
        aos_httpc_cancel(call->req); /* on_done reports it */
    else
        uv_timer_start(&call->timer, on_timer, 0, 0); /* waiting to try again */
}

void aos_llm_free(aos_llm_t *llm)
{
    if (!llm)
        return;
    while (llm->calls) {
        aos_llm_call_t *call = llm->calls;
        if (call->req)
            aos_httpc_cancel(call->req);
        call->canceled = 1;
        finish(call, AOS_ECANCELED, "the LLM client was closed");
    }
    cfg_unref(llm->cfg);
    free(llm);
}
