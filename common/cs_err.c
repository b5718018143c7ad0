/* cs_err.c - return codes, error detail and panics. */
#include "cs_err.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <nng/nng.h>
#include <uv.h>

const char *cs_rc_str(cs_rc rc)
{
    switch (rc) {
#define CS_RC_CASE(name, value, text) \
    case name:                        \
        return text;
        CS_RC_LIST(CS_RC_CASE)
#undef CS_RC_CASE
    }
    return "unknown error";
}

const char *cs_rc_name(cs_rc rc)
{
    switch (rc) {
#define CS_RC_CASE(name, value, text) \
    case name:                        \
        return #name;
        CS_RC_LIST(CS_RC_CASE)
#undef CS_RC_CASE
    }
    return "CS_E?";
}

cs_rc cs_err_vset(cs_err *err, cs_rc rc, int cause, const char *fmt, va_list ap)
{
    if (!err) {
        return rc;
    }
    err->rc = rc;
    err->cause = cause;
    if (fmt) {
        vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    } else {
        snprintf(err->msg, sizeof(err->msg), "%s", cs_rc_str(rc));
    }
    return rc;
}

cs_rc cs_err_set(cs_err *err, cs_rc rc, int cause, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    cs_err_vset(err, rc, cause, fmt, ap);
    va_end(ap);
    return rc;
}

static cs_rc rc_from_errno(int e)
{
    switch (e) {
    case ENOMEM:
        return CS_ENOMEM;
    case ENOENT:
    case ENOTDIR:
        return CS_ENOENT;
    case EEXIST:
        return CS_EEXIST;
    case ENOSPC:
#ifdef EDQUOT
    case EDQUOT:
#endif
        return CS_ENOSPC;
    case EINVAL:
        return CS_EINVAL;
    case ERANGE:
    case EOVERFLOW:
        return CS_ERANGE;
    case ETIMEDOUT:
        return CS_ETIMEDOUT;
    case EBUSY:
        return CS_EBUSY;
    case EACCES:
    case EPERM:
        return CS_EAUTH;
    default:
        return CS_EIO;
    }
}

cs_rc cs_err_errno(cs_err *err, int errno_value, const char *fmt, ...)
{
    cs_rc rc = rc_from_errno(errno_value);
    char what[192];
    va_list ap;
    if (!err) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cs_err_set(err, rc, errno_value, "%s: %s", what, strerror(errno_value));
}

cs_rc cs_err_nng(cs_err *err, int rv, cs_rc dflt, const char *fmt, ...)
{
    cs_rc rc = rv == NNG_ETIMEDOUT ? CS_ETIMEDOUT : rv == NNG_ENOMEM ? CS_ENOMEM : dflt;
    char what[192];
    va_list ap;
    if (!err) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cs_err_set(err, rc, rv, "%s: %s", what, nng_strerror(rv));
}

cs_rc cs_err_uv(cs_err *err, int rv, const char *fmt, ...)
{
    cs_rc rc = rv == UV_ENOENT   ? CS_ENOENT
               : rv == UV_EACCES ? CS_EAUTH
               : rv == UV_ENOMEM ? CS_ENOMEM
                                 : CS_EIO;
    char what[192];
    va_list ap;
    if (!err) {
        return rc;
    }
    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    return cs_err_set(err, rc, rv, "%s: %s", what, uv_strerror(rv));
}

void cs_err_prefix(cs_err *err, const char *fmt, ...)
{
    char pre[sizeof(err->msg)];
    char old[sizeof(err->msg)];
    va_list ap;
    if (!err) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(pre, sizeof(pre), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    old[sizeof(old) - 1] = '\0';
    snprintf(err->msg, sizeof(err->msg), "%s: %s", pre, old);
}

void cs_err_clear(cs_err *err)
{
    if (err) {
        err->rc = CS_OK;
        err->cause = 0;
        err->msg[0] = '\0';
    }
}

void cs_panic_at(const char *file, int line, const char *why)
{
    fprintf(stderr, "calsweep: panic at %s:%d: %s\n", file, line, why);
    fflush(stderr);
    abort();
}
