/* err.c - lookups over AOS_ERR_MAP; each is an exhaustive switch so that the
 * compiler flags a code added to the enum without a row in the table. */
#include "err/err.h"

#include <stdio.h>
#include <string.h>

const char *aos_err_name(int code)
{
    switch ((aos_errno_t)code) {
    case AOS_OK:
        return "OK";
#define XX(name, status, rpc, c, msg)                                                              \
    case AOS_##name:                                                                               \
        return #name;
        AOS_ERR_MAP(XX)
#undef XX
    case AOS__EFIRST:
    case AOS__ELAST:
        break;
    }
    return "EUNKNOWN";
}

const char *aos_err_code(int code)
{
    switch ((aos_errno_t)code) {
    case AOS_OK:
        return "ok";
#define XX(name, status, rpc, c, msg)                                                              \
    case AOS_##name:                                                                               \
        return c;
        AOS_ERR_MAP(XX)
#undef XX
    case AOS__EFIRST:
    case AOS__ELAST:
        break;
    }
    return "internal";
}

const char *aos_strerror(int code)
{
    switch ((aos_errno_t)code) {
    case AOS_OK:
        return "ok";
#define XX(name, status, rpc, c, msg)                                                              \
    case AOS_##name:                                                                               \
        return msg;
        AOS_ERR_MAP(XX)
#undef XX
    case AOS__EFIRST:
    case AOS__ELAST:
        break;
    }
    return "unknown error";
}

int aos_err_http_status(int code)
{
    switch ((aos_errno_t)code) {
    case AOS_OK:
        return 200;
#define XX(name, status, rpc, c, msg)                                                              \
    case AOS_##name:                                                                               \
        return status;
        AOS_ERR_MAP(XX)
#undef XX
    case AOS__EFIRST:
    case AOS__ELAST:
        break;
    }
    return 500;
}

int aos_err_rpc_code(int code)
{
    switch ((aos_errno_t)code) {
    case AOS_OK:
        return 0;
#define XX(name, status, rpc, c, msg)                                                              \
    case AOS_##name:                                                                               \
        return rpc;
        AOS_ERR_MAP(XX)
#undef XX
    case AOS__EFIRST:
    case AOS__ELAST:
        break;
    }
    return -32603;
}

int aos_err_set(aos_err_t *err, int code, const char *fmt, ...)
{
    if (err) {
        err->code = code;
        if (fmt) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
            va_end(ap);
        } else {
            err->msg[0] = '\0';
        }
    }
    return code;
}

const char *aos_err_msg(const aos_err_t *err)
{
    if (!err)
        return "unknown error";
    if (err->msg[0])
        return err->msg;
    return aos_strerror(err->code);
}
