#include "ferry_error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

ferry_rc ferry_error_set(ferry_error *err, ferry_rc rc, const char *cls, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return rc;
    err->rc = rc;
    snprintf(err->cls, sizeof(err->cls), "%s", cls ? cls : FERRY_EC_INTERNAL);
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    return rc;
}

void ferry_error_prefix(ferry_error *err, const char *fmt, ...)
{
    char prefix[256], old[sizeof(err->msg)];
    va_list ap;

    if (!err)
        return;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    snprintf(err->msg, sizeof(err->msg), "%s: %s", prefix, old);
}

int ferry_error_to_errstr(const ferry_error *err, char *errstr, size_t errstr_size,
                          const char *fmt, ...)
{
    char ctx[256] = "";
    va_list ap;

    if (!errstr || !errstr_size)
        return -1;
    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(ctx, sizeof(ctx), fmt, ap);
        va_end(ap);
    }
    snprintf(errstr, errstr_size, "%s%s%s", ctx, ctx[0] ? ": " : "",
             err && err->msg[0] ? err->msg : "unknown error");
    return -1;
}

void ferry_error_clear(ferry_error *err)
{
    if (!err)
        return;
    err->rc = FERRY_OK;
    err->cls[0] = '\0';
    err->msg[0] = '\0';
}

const char *ferry_rc_name(ferry_rc rc)
{
    switch (rc) {
    case FERRY_OK: return "ok";
    case FERRY_ERR_RETRYABLE: return "retryable";
    case FERRY_ERR_PERMANENT: return "permanent";
    case FERRY_ERR_CANCELLED: return "cancelled";
    }
    return "unknown";
}
