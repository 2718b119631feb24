/* fuzz_logs_batch.c - a POST /api/logs body through what the log service
 * does with it before the store: JSON (aos_http_parse_json), the batch's
 * validation and the default redaction (aos__logs_batch_parse), then each
 * accepted entry back to JSON (aos__logs_entry_json). A secret registered
 * with the redactor must not survive in the message or the attributes of
 * an accepted entry (the fields the redactor covers; names and ids are
 * checked against a character set instead). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "logs/internal.h"
#include "logs/logs.h"
#include "redact/redact.h"

#define SECRET "fuzz-secret-value-0123456789"

/* The secret in a string value or member name at any depth. The text
 * itself, not its JSON: an escape such as \f before "uzz-..." must not
 * look like the secret. */
static int holds_secret(const json_t *v)
{
    if (json_is_string(v))
        return memmem(json_string_value(v), json_string_length(v), SECRET, strlen(SECRET)) != NULL;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach((json_t *)v, k, m)
        {
            if (strstr(k, SECRET) || holds_secret(m))
                return 1;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m)
        {
            if (holds_secret(m))
                return 1;
        }
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aos_redact_t *red;
    if (!red) {
        red = aos_redact_new(AOS_REDACT_DEFAULT);
        aos_redact_add_value(red, SECRET);
    }
    aos_err_t err = {0, ""};
    json_t *body = aos_http_parse_json((const char *)data, size, &err);
    if (!body)
        return 0;
    json_t *entries = json_is_object(body) ? json_object_get(body, "entries") : body;
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    if (aos__logs_batch_parse(&b, entries, aos_redact_field, red, &fault, &err) == 0) {
        for (size_t i = 0; i < b.n; i++) {
            json_t *e = aos__logs_entry_json(&b, i);
            if (holds_secret(json_object_get(e, "message")) ||
                holds_secret(json_object_get(e, "attributes")))
                abort(); /* redaction missed a registered secret */
            json_decref(e);
        }
        aos__logs_batch_release(&b);
    }
    json_decref(body);
    return 0;
}
