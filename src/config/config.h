/* config.h - aosd settings from flags, AOS_* environment variables and a
 * JSON config file, in that order of precedence (flag > env > file > default).
 *
 * AOS_CONFIG_MAP lists every setting once: its field, type, flag, env var,
 * default and help; the parser, the --help text and the tests all read it. */
#ifndef AOS_CONFIG_H
#define AOS_CONFIG_H

#include "err/err.h"

/* XX(field, type, flag, env, default, help); type S = string, B = bool, U = unsigned,
 * D = a finite decimal number */
#define AOS_CONFIG_MAP(XX)                                                                         \
    XX(listen, S, "listen", "AOS_LISTEN", "127.0.0.1:8080", "HOST:PORT to serve on")               \
    XX(data_dir, S, "data-dir", "AOS_DATA_DIR", "./data", "directory for the database and keys")   \
    XX(store, S, "store", "AOS_STORE", NULL, "store URL (default sqlite:DATA_DIR/aos.db)")         \
    XX(bootstrap_token, S, "bootstrap-token", "AOS_BOOTSTRAP_TOKEN", NULL,                         \
       "the Owner's API token on first start (else one is generated)")                             \
    XX(mcp_anonymous, B, "mcp-anonymous", "AOS_MCP_ANONYMOUS", "false",                            \
       "let loopback clients use the MCP endpoints without a token")                               \
    XX(mcp_anonymous_role, S, "mcp-anonymous-role", "AOS_MCP_ANONYMOUS_ROLE", "viewer",            \
       "role on system of an anonymous MCP client: viewer (list only) or operator (call tools)")   \
    XX(login_idle_s, U, "login-idle", "AOS_LOGIN_IDLE", "1800",                                    \
       "seconds a browser session may be idle before it ends")                                     \
    XX(login_max_age_s, U, "login-max-age", "AOS_LOGIN_MAX_AGE", "43200",                          \
       "seconds a browser session lasts at most, however busy")                                    \
    XX(login_lockout_after, U, "login-lockout-after", "AOS_LOGIN_LOCKOUT_AFTER", "10",             \
       "failed logins of one name or address that lock it (from the 3rd: wait 1 s, 2 s, 4 s ...)") \
    XX(login_lockout_s, U, "login-lockout", "AOS_LOGIN_LOCKOUT", "900",                            \
       "seconds a locked name or address waits (and the longest back-off)")                        \
    XX(cookie_secure, B, "cookie-secure", "AOS_COOKIE_SECURE", "false",                            \
       "mark the session cookie Secure on plain HTTP too (behind a TLS proxy)")                    \
    XX(tls_cert, S, "tls-cert", "AOS_TLS_CERT", NULL, "PEM certificate: serve HTTPS")              \
    XX(tls_key, S, "tls-key", "AOS_TLS_KEY", NULL, "PEM private key for --tls-cert")               \
    XX(log_level, S, "log-level", "AOS_LOG_LEVEL", "info", "debug | info | warn | error")          \
    XX(allowed_hosts, S, "allowed-hosts", "AOS_ALLOWED_HOSTS", NULL,                               \
       "extra Host names accepted on MCP endpoints (comma-separated)")                             \
    XX(allowed_origins, S, "allowed-origins", "AOS_ALLOWED_ORIGINS", NULL,                         \
       "extra Origins accepted on MCP endpoints (comma-separated; null: Origin: null)")            \
    XX(master_key, S, "master-key", "AOS_MASTER_KEY", NULL,                                        \
       "base64 key for secrets (default: DATA_DIR/master.key)")                                    \
    XX(max_body, U, "max-body", "AOS_MAX_BODY", "4194304",                                         \
       "request body limit in bytes of a route that sets none")                                    \
    XX(http_writers, U, "http-writers", "AOS_HTTP_WRITERS", "2",                                   \
       "threads sending stream (SSE) data on plain HTTP (0: the loop thread)")                     \
    XX(http_max_conns, U, "http-max-conns", "AOS_HTTP_MAX_CONNS", "4096",                          \
       "most connections at once; past it the longest-idle one is closed for a new client")        \
    XX(http_max_conns_per_ip, U, "http-max-conns-per-ip", "AOS_HTTP_MAX_CONNS_PER_IP", "1024",     \
       "most connections from one address (an IPv6 /64; all loopback counts as one; 0: no limit)") \
    XX(http_head_timeout_s, U, "http-head-timeout", "AOS_HTTP_HEAD_TIMEOUT", "10",                 \
       "seconds a new connection has to send a complete request head")                             \
    XX(http_idle_timeout_s, U, "http-idle-timeout", "AOS_HTTP_IDLE_TIMEOUT", "120",                \
       "seconds a kept-alive connection has for its next request, and an upload or download "      \
       "without a byte")                                                                           \
    XX(http_body_memory, U, "http-body-memory", "AOS_HTTP_BODY_MEMORY", "67108864",                \
       "bytes of request bodies held at once, all requests together (503 past it)")                \
    XX(session_idle_s, U, "session-idle", "AOS_SESSION_IDLE", "1800",                              \
       "seconds before an idle MCP session is dropped")                                            \
    XX(mcp_replay_bytes, U, "mcp-replay-bytes", "AOS_MCP_REPLAY_BYTES", "1048576",                 \
       "bytes of recent SSE events kept per MCP session for resumption (0: none)")                 \
    XX(mcp_replay_total, U, "mcp-replay-total", "AOS_MCP_REPLAY_TOTAL", "67108864",                \
       "bytes of recent SSE events kept for all MCP sessions together")                            \
    XX(mcp_replay_s, U, "mcp-replay-seconds", "AOS_MCP_REPLAY_SECONDS", "300",                     \
       "seconds an SSE event stays resumable on the MCP endpoints")                                \
    XX(mcp_sse_hold_ms, U, "mcp-sse-hold-ms", "AOS_MCP_SSE_HOLD_MS", "0",                          \
       "close a resumable MCP call stream unanswered after this long; the client polls (0: "       \
       "never)")                                                                                   \
    XX(events_heartbeat_ms, U, "events-heartbeat-ms", "AOS_EVENTS_HEARTBEAT_MS", "15000",          \
       "milliseconds between heartbeat comments on /agent/events")                                 \
    XX(events_buffer, U, "events-buffer", "AOS_EVENTS_BUFFER", "1048576",                          \
       "bytes an /agent/events client may leave unread before it is disconnected")                 \
    XX(log_retention_days, U, "log-retention-days", "AOS_LOG_RETENTION_DAYS", "7",                 \
       "days the log service keeps an entry (0: no age limit)")                                    \
    XX(log_retention_rows, U, "log-retention-rows", "AOS_LOG_RETENTION_ROWS", "1000000",           \
       "most entries the log service keeps (0: no limit)")                                         \
    XX(log_retention_check_s, U, "log-retention-check", "AOS_LOG_RETENTION_CHECK", "60",           \
       "seconds between two retention runs of the log service")                                    \
    XX(trace_retention_days, U, "trace-retention-days", "AOS_TRACE_RETENTION_DAYS", "7",           \
       "days a span is kept (0: no age limit)")                                                    \
    XX(trace_retention_spans, U, "trace-retention-spans", "AOS_TRACE_RETENTION_SPANS", "1000000",  \
       "most spans kept (0: no limit)")                                                            \
    XX(trace_retention_check_s, U, "trace-retention-check", "AOS_TRACE_RETENTION_CHECK", "60",     \
       "seconds between two retention runs of the spans")                                          \
    XX(trace_buffer, U, "trace-buffer", "AOS_TRACE_BUFFER", "10000",                               \
       "spans waiting to be written at most; past it a span is dropped and counted")               \
    XX(trace_sample, D, "trace-sample", "AOS_TRACE_SAMPLE", "0.1",                                 \
       "share of the traces born at aosd that are recorded (0..1; a caller's traceparent "         \
       "decides for its own, tasks are always recorded)")                                          \
    XX(trace_keep_errors, B, "trace-keep-errors", "AOS_TRACE_KEEP_ERRORS", "false",                \
       "also store a trace that was not sampled when one of its spans ends with an error "         \
       "(every span then records its attributes: ~30% more CPU per gateway call at 0.1)")          \
    XX(otlp_endpoint, S, "otlp-endpoint", "AOS_OTLP_ENDPOINT", NULL,                               \
       "OTLP/HTTP receiver to export spans to (its base URL; /v1/traces is appended)")             \
    XX(otlp_protocol, S, "otlp-protocol", "AOS_OTLP_PROTOCOL", "http/protobuf",                    \
       "encoding of the OTLP export: http/protobuf or http/json")                                  \
    XX(otlp_queue, U, "otlp-queue", "AOS_OTLP_QUEUE", "2048",                                      \
       "spans waiting for the OTLP receiver at most; past it a span is dropped and counted")       \
    XX(otlp_flush_ms, U, "otlp-flush-ms", "AOS_OTLP_FLUSH_MS", "1000",                             \
       "milliseconds a span waits for a fuller OTLP export batch at most")                         \
    XX(otlp_backoff_max_ms, U, "otlp-backoff-max-ms", "AOS_OTLP_BACKOFF_MAX_MS", "30000",          \
       "longest wait between two tries of a failed OTLP export (from 1 s, doubling)")              \
    XX(metrics_allow, S, "metrics-allow", "AOS_METRICS_ALLOW", NULL,                               \
       "addresses that may read /metrics without a token (CIDR, comma-separated)")                 \
    XX(redact_patterns, S, "redact-patterns", "AOS_REDACT_PATTERNS", "default",                    \
       "what is redacted besides stored secrets: keys,bearer,url,email,phone,cn_id, all, none; "   \
       "default is all but email and phone; +email / -cn_id change the default")                   \
    XX(metrics_max_series, U, "metrics-max-series", "AOS_METRICS_MAX_SERIES", "2000",              \
       "most series one metric keeps; later label values count as \"other\"")                      \
    XX(metrics_history_series, U, "metrics-history-series", "AOS_METRICS_HISTORY_SERIES", "512",   \
       "series the built-in metric history keeps, 23 KB each (0: no history)")                     \
    XX(orch_max_running, U, "orch-max-running", "AOS_ORCH_MAX_RUNNING", "64",                      \
       "tasks running (or waiting for approval) at once; others queue by priority")                \
    XX(orch_max_per_project, U, "orch-max-per-project", "AOS_ORCH_MAX_PER_PROJECT", "0",           \
       "tasks of one project running at once (0: orch-max-running)")                               \
    XX(audit_retention_days, U, "audit-retention-days", "AOS_AUDIT_RETENTION_DAYS", "0",           \
       "days an audit row is kept (0: for ever); the oldest go and the chain keeps an anchor")     \
    XX(episode_retention_days, U, "episode-retention-days", "AOS_EPISODE_RETENTION_DAYS", "30",    \
       "days a finished run (its steps, events and workspace rows) is kept (0: for ever)")         \
    XX(memory_hnsw_min_items, U, "memory-hnsw-min-items", "AOS_MEMORY_HNSW_MIN_ITEMS", "200000",   \
       "memory vectors past which an HNSW graph is built in the background (0: never)")            \
    XX(memory_embed, S, "memory-embed", "AOS_MEMORY_EMBED", "builtin",                             \
       "memory vectors: builtin (hashed n-grams, no network) or llm (--llm-embed-model)")          \
    XX(memory_hnsw_threads, U, "memory-hnsw-threads", "AOS_MEMORY_HNSW_THREADS", "1",              \
       "threads building that graph, at a lower priority (1-8)")                                   \
    XX(memory_hnsw_m, U, "memory-hnsw-m", "AOS_MEMORY_HNSW_M", "16",                               \
       "links per node of that graph, 2M on its bottom layer (2-64)")                              \
    XX(memory_hnsw_efc, U, "memory-hnsw-efc", "AOS_MEMORY_HNSW_EFC", "200",                        \
       "candidates kept while inserting into that graph (efConstruction, 1-4096)")                 \
    XX(memory_hnsw_ef, U, "memory-hnsw-ef", "AOS_MEMORY_HNSW_EF", "0",                             \
       "candidates kept while searching that graph (0: max(64, k); 1-4096, at least k)")           \
    XX(llm_base_url, S, "llm-base-url", "AOS_LLM_BASE_URL", NULL,                                  \
       "OpenAI-compatible API, e.g. https://api.openai.com/v1 (unset: no LLM, offline planner)")   \
    XX(llm_model, S, "llm-model", "AOS_LLM_MODEL", NULL, "model to call at --llm-base-url")        \
    XX(llm_embed_model, S, "llm-embed-model", "AOS_LLM_EMBED_MODEL", NULL,                         \
       "embeddings model at --llm-base-url, for --memory-embed llm (e.g. text-embedding-3-small)") \
    XX(llm_api_key, S, "llm-api-key", "AOS_LLM_API_KEY", NULL,                                     \
       "API key for --llm-base-url (a secret: prefer the environment variable)")                   \
    XX(llm_temperature, D, "llm-temperature", "AOS_LLM_TEMPERATURE", "-1",                         \
       "sampling temperature, 0 to 2 (negative: not sent, the model's default)")                   \
    XX(llm_max_tokens, U, "llm-max-tokens", "AOS_LLM_MAX_TOKENS", "0",                             \
       "most tokens of one answer (0: not sent, the model's own limit)")                           \
    XX(llm_timeout_ms, U, "llm-timeout-ms", "AOS_LLM_TIMEOUT_MS", "120000",                        \
       "milliseconds one LLM request may take, streamed or not")                                   \
    XX(llm_retries, U, "llm-retries", "AOS_LLM_RETRIES", "2",                                      \
       "times an LLM request is tried again after a 429, a 5xx or a refused connection")           \
    XX(llm_price_in_cny, D, "llm-price-in-cny", "AOS_LLM_PRICE_IN_CNY", "0",                       \
       "price of 1,000 input (prompt) tokens in CNY, for the cost of each call")                   \
    XX(llm_price_out_cny, D, "llm-price-out-cny", "AOS_LLM_PRICE_OUT_CNY", "0",                    \
       "price of 1,000 output (completion) tokens in CNY")                                         \
    XX(analyzer_llm, B, "analyzer-llm", "AOS_ANALYZER_LLM", "true",                                \
       "the Analyzer asks the LLM (--llm-base-url) for a repair suggestion per failure group")     \
    XX(ip_allowlist, S, "ip-allowlist", "AOS_IP_ALLOWLIST", NULL,                                  \
       "only these addresses may connect (CIDR, comma-separated; unset: the stored security "      \
       "policy, else all)")

typedef struct {
#define XX_S(f)                        char *f;
#define XX_B(f)                        int f;
#define XX_U(f)                        unsigned long f;
#define XX_D(f)                        double f;
#define XX(f, t, flag, env, def, help) XX_##t(f)
    AOS_CONFIG_MAP(XX)
#undef XX
#undef XX_S
#undef XX_B
#undef XX_U
#undef XX_D
    char *config_file;
    int help;
    int version;
} aos_config_t;

/* Fills cfg with the defaults. */
int aos_config_init(aos_config_t *cfg);
void aos_config_release(aos_config_t *cfg);
/* Applies file (from --config or AOS_CONFIG), then env, then argv. The
 * secret settings (bootstrap_token, master_key, llm_api_key) are then wiped from the
 * environment (unset, their text overwritten) and from argv (overwritten
 * in place, which must be writable), so that /proc shows them to no one. */
int aos_config_load(aos_config_t *cfg, int argc, char **argv, aos_err_t *err);
/* Wipes and frees the values of the secret settings, once they were used. */
void aos_config_forget_secrets(aos_config_t *cfg);
/* Sets one setting by its field name from text (used for files and tests). */
int aos_config_set(aos_config_t *cfg, const char *field, const char *value, aos_err_t *err);
void aos_config_usage(const char *prog);

#endif
