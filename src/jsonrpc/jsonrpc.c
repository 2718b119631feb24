/* jsonrpc.c - JSON-RPC 2.0 message helpers; see jsonrpc.h. */
#include "jsonrpc/jsonrpc.h"
#include "redact/redact.h"

#include <stdio.h>
#include <string.h>

aos_rpc_kind_t aos_rpc_classify(const json_t *msg, aos_err_t *err)
{
    if (!json_is_object(msg)) {
        aos_err_set(err, AOS_EBADREQ, "a JSON-RPC message must be an object");
        return AOS_RPC_INVALID;
    }
    const json_t *v = json_object_get(msg, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        aos_err_set(err, AOS_EBADREQ, "\"jsonrpc\" must be \"2.0\"");
        return AOS_RPC_INVALID;
    }
    const json_t *id = json_object_get(msg, "id");
    if (id && !json_is_string(id) && !json_is_integer(id)) {
        aos_err_set(err, AOS_EBADREQ, "\"id\" must be a string or an integer");
        return AOS_RPC_INVALID;
    }
    const json_t *method = json_object_get(msg, "method");
    if (method) {
        if (!json_is_string(method) || json_string_length(method) == 0) {
            aos_err_set(err, AOS_EBADREQ, "\"method\" must be a non-empty string");
            return AOS_RPC_INVALID;
        }
        const json_t *params = json_object_get(msg, "params");
        if (params && !json_is_object(params) && !json_is_array(params)) {
            aos_err_set(err, AOS_EBADREQ, "\"params\" must be an object or an array");
            return AOS_RPC_INVALID;
        }
        return id ? AOS_RPC_REQUEST : AOS_RPC_NOTIFICATION;
    }
    if (!id) {
        aos_err_set(err, AOS_EBADREQ, "a message needs \"method\" or \"id\"");
        return AOS_RPC_INVALID;
    }
    const json_t *res = json_object_get(msg, "result");
    const json_t *e = json_object_get(msg, "error");
    if ((res != NULL) == (e != NULL)) {
        aos_err_set(err, AOS_EBADREQ, "a response needs exactly one of \"result\" and \"error\"");
        return AOS_RPC_INVALID;
    }
    if (e && (!json_is_object(e) || !json_is_integer(json_object_get(e, "code")))) {
        aos_err_set(err, AOS_EBADREQ, "\"error\" must be an object with an integer \"code\"");
        return AOS_RPC_INVALID;
    }
    return AOS_RPC_RESPONSE;
}

static json_t *id_copy(const json_t *id)
{
    return id ? json_deep_copy(id) : json_null();
}

json_t *aos_rpc_result(const json_t *id, json_t *result)
{
    return json_pack("{s:s, s:o, s:o}", "jsonrpc", "2.0", "id", id_copy(id), "result",
                     result ? result : json_object());
}

json_t *aos_rpc_error(const json_t *id, int rpc_code, const char *message, json_t *data)
{
    /* an error message may quote what it refused: redacted (redact.h) */
    char text[1024];
    snprintf(text, sizeof(text), "%s", message ? message : "");
    aos_redact_cstr(aos_redact_global(), text, sizeof(text));
    json_t *e = json_pack("{s:i, s:s}", "code", rpc_code, "message", text);
    if (data)
        json_object_set_new(e, "data", data);
    return json_pack("{s:s, s:o, s:o}", "jsonrpc", "2.0", "id", id_copy(id), "error", e);
}

json_t *aos_rpc_error_aos(const json_t *id, int aos_code, const char *message)
{
    return aos_rpc_error(id, aos_err_rpc_code(aos_code),
                         message && *message ? message : aos_strerror(aos_code), NULL);
}

json_t *aos_rpc_request(const json_t *id, const char *method, json_t *params)
{
    json_t *m = json_pack("{s:s, s:o, s:s}", "jsonrpc", "2.0", "id", id_copy(id), "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    return m;
}

json_t *aos_rpc_notification(const char *method, json_t *params)
{
    json_t *m = json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method);
    if (params)
        json_object_set_new(m, "params", params);
    return m;
}

const char *aos_rpc_method(const json_t *msg)
{
    return json_string_value(json_object_get(msg, "method"));
}

json_t *aos_rpc_id(const json_t *msg)
{
    return json_object_get(msg, "id");
}

json_t *aos_rpc_params(const json_t *msg)
{
    return json_object_get(msg, "params");
}

/* ---- serialising ---------------------------------------------------------- */

#define DUMP_MAX_DEPTH 2048

static int dump_string(const char *s, size_t n, aos_buf_t *b)
{
    static const char hex[] = "0123456789abcdef";
    if (aos_buf_grow(b, n + 2))
        return AOS_ENOMEM;
    b->ptr[b->len++] = '"';
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        if (aos_buf_append(b, s + run, i - run))
            return AOS_ENOMEM;
        run = i + 1;
        char e[6] = {'\\', 0, 0, 0, 0, 0};
        size_t en = 2;
        switch (c) {
        case '"':
        case '\\':
            e[1] = (char)c;
            break;
        case '\b':
            e[1] = 'b';
            break;
        case '\f':
            e[1] = 'f';
            break;
        case '\n':
            e[1] = 'n';
            break;
        case '\r':
            e[1] = 'r';
            break;
        case '\t':
            e[1] = 't';
            break;
        default:
            memcpy(e + 1, "u00", 3);
            e[4] = hex[c >> 4];
            e[5] = hex[c & 15];
            en = 6;
        }
        if (aos_buf_append(b, e, en))
            return AOS_ENOMEM;
    }
    if (aos_buf_append(b, s + run, n - run) || aos_buf_append(b, "\"", 1))
        return AOS_ENOMEM;
    return 0;
}

static int dump_int(json_int_t v, aos_buf_t *b)
{
    char d[24];
    size_t i = sizeof(d);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do
        d[--i] = (char)('0' + u % 10);
    while (u /= 10);
    if (v < 0)
        d[--i] = '-';
    return aos_buf_append(b, d + i, sizeof(d) - i) ? AOS_ENOMEM : 0;
}

static int dump_value(const json_t *v, aos_buf_t *b, int depth)
{
    if (depth > DUMP_MAX_DEPTH)
        return AOS_EINVAL;
    int rc = 0;
    switch (json_typeof(v)) {
    case JSON_OBJECT: {
        if (aos_buf_append(b, "{", 1))
            return AOS_ENOMEM;
        int first = 1;
        for (void *it = json_object_iter((json_t *)v); it && !rc;
             it = json_object_iter_next((json_t *)v, it), first = 0) {
            if (!first && aos_buf_append(b, ",", 1))
                return AOS_ENOMEM;
            rc = dump_string(json_object_iter_key(it), json_object_iter_key_len(it), b);
            if (!rc && aos_buf_append(b, ":", 1))
                rc = AOS_ENOMEM;
            if (!rc)
                rc = dump_value(json_object_iter_value(it), b, depth + 1);
        }
        return rc ? rc : aos_buf_append(b, "}", 1) ? AOS_ENOMEM : 0;
    }
    case JSON_ARRAY: {
        if (aos_buf_append(b, "[", 1))
            return AOS_ENOMEM;
        for (size_t i = 0; i < json_array_size(v) && !rc; i++) {
            if (i && aos_buf_append(b, ",", 1))
                return AOS_ENOMEM;
            rc = dump_value(json_array_get(v, i), b, depth + 1);
        }
        return rc ? rc : aos_buf_append(b, "]", 1) ? AOS_ENOMEM : 0;
    }
    case JSON_STRING:
        return dump_string(json_string_value(v), json_string_length(v), b);
    case JSON_INTEGER:
        return dump_int(json_integer_value(v), b);
    case JSON_REAL: {
        /* rare: jansson's own formatting (precision, the ".0" it adds) */
        char t[64];
        size_t n = json_dumpb(v, t, sizeof(t), JSON_ENCODE_ANY | JSON_COMPACT);
        if (n == 0 || n > sizeof(t))
            return AOS_EINVAL;
        return aos_buf_append(b, t, n) ? AOS_ENOMEM : 0;
    }
    case JSON_TRUE:
        return aos_buf_append(b, "true", 4) ? AOS_ENOMEM : 0;
    case JSON_FALSE:
        return aos_buf_append(b, "false", 5) ? AOS_ENOMEM : 0;
    case JSON_NULL:
        return aos_buf_append(b, "null", 4) ? AOS_ENOMEM : 0;
    }
    return AOS_EINVAL;
}

int aos_rpc_dump(const json_t *v, aos_buf_t *b)
{
    return v ? dump_value(v, b, 0) : AOS_EINVAL;
}
