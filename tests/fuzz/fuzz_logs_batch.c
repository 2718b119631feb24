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

#define SECRET "fuzz-secret-value-0123456789"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aos_logs_redactor_t *red;
    if (!red) {
        red = aos_logs_redactor_new();
        aos_logs_redactor_add_secret(red, SECRET);
    }
    aos_err_t err = {0, ""};
    json_t *body = aos_http_parse_json((const char *)data, size, &err);
    if (!body)
        return 0;
    json_t *entries = json_is_object(body) ? json_object_get(body, "entries") : body;
    aos__logs_batch_t b;
    aos__logs_fault_t fault;
    if (aos__logs_batch_parse(&b, entries, aos_logs_redact_default, red, &fault, &err) == 0) {
        for (size_t i = 0; i < b.n; i++) {
            json_t *e = aos__logs_entry_json(&b, i);
            json_t *covered = json_pack("[O, O]", json_object_get(e, "message"),
                                        json_object_get(e, "attributes"));
            char *s = covered ? json_dumps(covered, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
            if (s && strstr(s, SECRET))
                abort(); /* redaction missed a registered secret */
            free(s);
            json_decref(covered);
            json_decref(e);
        }
        aos__logs_batch_release(&b);
    }
    json_decref(body);
    return 0;
}
