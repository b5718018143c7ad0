/* cs_err.h - calsweep return codes and error detail.
 *
 * Every function that can fail returns cs_rc (CS_OK == 0, errors negative, as in libuv) and takes
 * an optional `cs_err *err` as its last parameter, filled with a human message and the foreign
 * cause (errno, uv, nng or sqlite code). Foreign codes are translated at one boundary each and
 * never passed upward as a cs_rc (docs/style.md R4, R5): errno (cs_err_errno), nng (cs_err_nng)
 * and libuv (cs_err_uv) here, SQLite inside the store (st_err, coordinator/store/cs_store.c).
 */
#ifndef CS_COMMON_CS_ERR_H
#define CS_COMMON_CS_ERR_H

#include <stdarg.h>
#include <stddef.h>

#if defined(__GNUC__) || defined(__clang__)
#define CS_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#define CS_NORETURN          __attribute__((noreturn))
#else
#define CS_PRINTF(fmt, args)
#define CS_NORETURN
#endif

/* X(name, value, text): the one list of codes; the enum and cs_rc_str() come from it. */
#define CS_RC_LIST(X)                              \
    X(CS_OK, 0, "ok")                              \
    X(CS_ENOMEM, -1, "out of memory")              \
    X(CS_EINVAL, -2, "invalid argument")           \
    X(CS_EIO, -3, "input/output error")            \
    X(CS_ENOENT, -4, "not found")                  \
    X(CS_EEXIST, -5, "already exists")             \
    X(CS_ERANGE, -6, "out of range")               \
    X(CS_EPARSE, -7, "parse error")                \
    X(CS_ESCHEMA, -8, "does not match the schema") \
    X(CS_EPROTO, -9, "protocol error")             \
    X(CS_ETOOBIG, -10, "too large")                \
    X(CS_ETIMEDOUT, -11, "timed out")              \
    X(CS_ESTALE, -12, "stale attempt")             \
    X(CS_EBUSY, -13, "busy")                       \
    X(CS_EDB, -14, "database error")               \
    X(CS_ENET, -15, "network error")               \
    X(CS_EAUTH, -16, "not authenticated")          \
    X(CS_EVERSION, -17, "version mismatch")        \
    X(CS_ECANCELED, -18, "cancelled")              \
    X(CS_ENOTSUP, -19, "not supported")            \
    X(CS_ENOSPC, -20, "no space left on device")   \
    X(CS_ESTATE, -21, "not allowed in this state") \
    X(CS_ENUMERIC, -22, "numerical failure")       \
    X(CS_EINTERNAL, -23, "internal error")

typedef enum cs_rc {
#define CS_RC_ENUM(name, value, text) name = (value),
    CS_RC_LIST(CS_RC_ENUM)
#undef CS_RC_ENUM
} cs_rc;

/* Error detail. rc is the last code set, cause the foreign code (0 if none), msg a full sentence
 * fragment that names the place ("grid.n_samples[3]: expected ..."). Zero-initialise before use. */
typedef struct cs_err {
    cs_rc rc;
    int cause;
    char msg[256];
} cs_err;

/* Text of a code; never NULL ("unknown error" for codes not in the list). */
const char *cs_rc_str(cs_rc rc);

/* Symbolic name of a code ("CS_EINVAL"); never NULL. */
const char *cs_rc_name(cs_rc rc);

/* Fills err (may be NULL) and returns rc, so `return cs_err_set(err, CS_EINVAL, 0, "...");` works.
 */
cs_rc cs_err_set(cs_err *err, cs_rc rc, int cause, const char *fmt, ...) CS_PRINTF(4, 5);
cs_rc cs_err_vset(cs_err *err, cs_rc rc, int cause, const char *fmt, va_list ap) CS_PRINTF(4, 0);

/* Maps errno to a cs_rc (ENOMEM, ENOENT, EEXIST, ENOSPC/EDQUOT, ...; others CS_EIO), fills err with
 * "<what>: strerror(errno_value)" and returns the code. */
cs_rc cs_err_errno(cs_err *err, int errno_value, const char *fmt, ...) CS_PRINTF(3, 4);

/* The boundary of nng (rv != 0, an nng error code): fills err with "<what>: <nng's text>" (cause
 * rv) and returns CS_ETIMEDOUT for NNG_ETIMEDOUT, CS_ENOMEM for NNG_ENOMEM, otherwise dflt (CS_ENET
 * for a socket or a request, CS_EAUTH where a certificate or key was refused). */
cs_rc cs_err_nng(cs_err *err, int rv, cs_rc dflt, const char *fmt, ...) CS_PRINTF(4, 5);

/* The boundary of libuv (rv < 0, a libuv error code): fills err with "<what>: <libuv's text>"
 * (cause rv) and returns CS_ENOENT for UV_ENOENT, CS_EAUTH for UV_EACCES, CS_ENOMEM for UV_ENOMEM,
 * otherwise CS_EIO. */
cs_rc cs_err_uv(cs_err *err, int rv, const char *fmt, ...) CS_PRINTF(3, 4);

/* Prepends "<prefix>: " to err->msg (truncating at the end); keeps rc and cause. NULL-safe. */
void cs_err_prefix(cs_err *err, const char *fmt, ...) CS_PRINTF(2, 3);

/* Clears err to CS_OK and an empty message. NULL-safe. */
void cs_err_clear(cs_err *err);

/* Reports a broken invariant on stderr with file:line and aborts. Never returns. */
CS_NORETURN void cs_panic_at(const char *file, int line, const char *why);
#define CS_PANIC(why) cs_panic_at(__FILE__, __LINE__, (why))

#endif
