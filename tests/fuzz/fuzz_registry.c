/* fuzz_registry.c - a registry entry as a client sends it (POST
 * /mcp/registry, or an {"mcpServers":...} import): validation and sealing
 * (aos_registry_normalize), the public form and the effective limits of
 * what was accepted. Checked: every secret of the stored entry is sealed
 * (auth_token, env and header values start with "v1:") and the public form
 * has none of the members that carry them. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/http.h"
#include "registry/registry.h"
#include "secret/secret.h"

static int sealed(const json_t *v)
{
    return json_is_string(v) && strncmp(json_string_value(v), "v1:", 3) == 0;
}

/* Every secret of a stored entry is sealed, and the public form holds none
 * of the members that carry them. */
static int leaks(const json_t *stored, const json_t *pub)
{
    const json_t *t = json_object_get(stored, "auth_token");
    if (t && !json_is_null(t) && !sealed(t))
        return 1;
    const json_t *cfg = json_object_get(stored, "config");
    const char *maps[] = {"env", "headers"};
    for (size_t m = 0; m < 2; m++) {
        const char *k;
        json_t *v;
        json_object_foreach((json_t *)json_object_get(cfg, maps[m]), k, v)
        {
            if (!sealed(v))
                return 1;
        }
    }
    return json_object_get(pub, "auth_token") || json_object_get(pub, "env") ||
           json_object_get(pub, "headers");
}

static void one(aos_secret_box_t *box, const json_t *in)
{
    aos_err_t err = {0, ""};
    json_t *stored = aos_registry_normalize(in, NULL, box, &err);
    if (!stored)
        return;
    json_t *pub = aos_registry_public(stored);
    if (!pub || leaks(stored, pub))
        abort(); /* a secret stored in the clear, or shown */
    json_decref(pub);
    aos_limits_t lim;
    aos_registry_limits(stored, &lim);
    json_t *again = aos_registry_normalize(in, stored, box, &err); /* an update */
    json_decref(again);
    json_decref(stored);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static aos_secret_box_t *box;
    aos_err_t err = {0, ""};
    if (!box &&
        aos_secret_box_open(&box, NULL, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", &err) != 0)
        abort();
    json_t *doc = aos_http_parse_json((const char *)data, size, &err);
    if (!doc)
        return 0;
    if (json_is_object(doc) && json_object_get(doc, "mcpServers")) {
        json_t *list = aos_registry_import(doc, &err);
        size_t i;
        json_t *e;
        json_array_foreach(list, i, e) one(box, e);
        json_decref(list);
    } else {
        one(box, doc);
    }
    json_decref(doc);
    return 0;
}
