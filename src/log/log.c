/* log.c - JSON-lines logger. The level and sink are process-wide settings
 * made once at start-up, before threads exist; writing is mutex-protected.
 * No line is lost to its bytes: text that is not UTF-8 is repaired (see
 * aos_log). Every line goes through the process's redactor (redact.h)
 * before it is written or handed to the sink. */
#include "log/log.h"
#include "buf/buf.h"
#include "isotime/isotime.h"
#include "redact/redact.h"
#include "utf8/utf8.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static struct {
    aos_log_level_t level;
    aos_log_sink_fn sink;
    void *sink_data;
    pthread_mutex_t lock;
} logger = {AOS_LOG_INFO, NULL, NULL, PTHREAD_MUTEX_INITIALIZER};

static const char *names[] = {"debug", "info", "warn", "error"};

void aos_log_set_level(aos_log_level_t level)
{
    logger.level = level;
}

aos_log_level_t aos_log_get_level(void)
{
    return logger.level;
}

int aos_log_parse_level(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (s && strcmp(s, names[i]) == 0)
            return i;
    if (s && strcmp(s, "warning") == 0)
        return AOS_LOG_WARN;
    return -1;
}

const char *aos_log_level_name(aos_log_level_t level)
{
    return (unsigned)level < 4 ? names[level] : "info";
}

void aos_log_set_sink(aos_log_sink_fn fn, void *data)
{
    logger.sink = fn;
    logger.sink_data = data;
}

void aos_log(aos_log_level_t level, const char *component, json_t *fields, const char *fmt, ...)
{
    if (level < logger.level) {
        json_decref(fields);
        return;
    }
    char msg[1024], clean[3 * sizeof(msg)];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    /* The text may come from outside (a child's stderr) and need not be
     * UTF-8, which jansson would refuse, losing the line: a character cut
     * by the size limit goes, other invalid bytes show as U+FFFD. */
    size_t len = n < 0 ? 0 : (size_t)n;
    if (len >= sizeof(msg))
        len = aos_utf8_trim(msg, sizeof(msg) - 1);
    msg[len] = '\0';
    const char *text = msg;
    if (!aos_utf8_valid(msg, len)) {
        aos_utf8_scrub(clean, sizeof(clean), msg, len);
        text = clean;
    }

    char when[32];
    aos_isotime_now(when);

    json_t *e = json_pack("{s:s, s:s, s:s, s:s}", "ts", when, "level", aos_log_level_name(level),
                          "component", component ? component : "aosd", "msg", text);
    if (!e) {
        json_decref(fields);
        return;
    }
    if (fields) {
        json_object_update_missing(e, fields);
        json_decref(fields);
    }
    /* secrets and patterns (redact.h) out of the message and the fields,
     * before the line reaches stderr (the journal) or the sink */
    aos_redact_json(aos_redact_global(), e);
    char *line = aos_buf_json_text(e, NULL); /* json_dumps' text, in order, faster */
    pthread_mutex_lock(&logger.lock);
    if (line) {
        fputs(line, stderr);
        fputc('\n', stderr);
    }
    if (logger.sink)
        logger.sink(e, logger.sink_data);
    pthread_mutex_unlock(&logger.lock);
    free(line);
    json_decref(e);
}
