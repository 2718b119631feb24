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

int aos_rpc_dump(const json_t *v, aos_buf_t *b)
{
    return v ? aos_buf_json(b, v) : AOS_EINVAL;
}
