/* log.h - structured logs: one JSON object per line on stderr.
 *
 * Each entry has ts (RFC 3339, UTC, ms), level, component, msg, and any extra
 * fields the caller passes. A sink (the log service, later) may also receive
 * every entry. Callable from any thread; writes are serialized.
 * Never pass a secret value in msg or fields. */
#ifndef AOS_LOG_H
#define AOS_LOG_H

#include <jansson.h>

typedef enum { AOS_LOG_DEBUG = 0, AOS_LOG_INFO, AOS_LOG_WARN, AOS_LOG_ERROR } aos_log_level_t;

/* Receives each entry (borrowed) after it was written to stderr. */
typedef void (*aos_log_sink_fn)(const json_t *entry, void *data);

void aos_log_set_level(aos_log_level_t level);
aos_log_level_t aos_log_get_level(void);
/* "debug" | "info" | "warn" | "error"; returns -1 for anything else. */
int aos_log_parse_level(const char *s);
const char *aos_log_level_name(aos_log_level_t level);
void aos_log_set_sink(aos_log_sink_fn fn, void *data);

/* fields: extra members for the entry, stolen (may be NULL). */
void aos_log(aos_log_level_t level, const char *component, json_t *fields, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define aos_log_debug(comp, ...) aos_log(AOS_LOG_DEBUG, comp, NULL, __VA_ARGS__)
#define aos_log_info(comp, ...)  aos_log(AOS_LOG_INFO, comp, NULL, __VA_ARGS__)
#define aos_log_warn(comp, ...)  aos_log(AOS_LOG_WARN, comp, NULL, __VA_ARGS__)
#define aos_log_error(comp, ...) aos_log(AOS_LOG_ERROR, comp, NULL, __VA_ARGS__)

#endif
