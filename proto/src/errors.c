/*
 * Relais error codes: the one table behind relais_strerror() and relais_err_name(), and the
 * mapping between RELAIS_E… codes and the wire's Error.ErrorCode.
 *
 * Relais's own codes come from the X-macro tables of relais/errors.h; negative errno values
 * are described by strerror() and named from a table of the ones we meet, so a log line
 * reads "ENOMEM: Cannot allocate memory" whichever layer produced the code. The
 * reason-writing helper every validator uses lives here too, next to the codes it returns.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relais/errors.h"
#include "relais/v1/relais.pb-c.h"

#include "internal.h"

/* The wire mirror is arithmetic (-(1000 + wire code)); these prove the schema agrees. */
#define CHECK_WIRE(name, wire, msg)                                                           \
    _Static_assert(RELAIS_##name == -(1000 + (wire)), #name " mirrors the wire");
RELAIS_WIRE_ERROR_MAP(CHECK_WIRE)
#undef CHECK_WIRE
_Static_assert(RELAIS_EBADFRAME == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME),
               "the first wire code is the schema's");
_Static_assert(RELAIS_EINTERNAL == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__INTERNAL),
               "the last wire code is the schema's");

#define WIRE_FIRST RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME
#define WIRE_LAST RELAIS__V1__ERROR__ERROR_CODE__INTERNAL

static const struct err_entry {
    int code;
    const char *name;
    const char *message;
} err_table[] = {
#define WIRE_ENTRY(name, wire, msg) {RELAIS_##name, "RELAIS_" #name, msg},
#define LOCAL_ENTRY(name, value, msg) {RELAIS_##name, "RELAIS_" #name, msg},
    RELAIS_WIRE_ERROR_MAP(WIRE_ENTRY) RELAIS_LOCAL_ERROR_MAP(LOCAL_ENTRY)
#undef WIRE_ENTRY
#undef LOCAL_ENTRY
};

/* The errno values a Relais program meets, by name: portable C has strerror() for the
 * sentence but nothing for the name, and glibc's strerrorname_np is glibc's only. */
#define ERRNO_NAMES(XX)                                                                       \
    XX(EPERM) XX(ENOENT) XX(EINTR) XX(EIO) XX(EBADF) XX(EAGAIN) XX(ENOMEM) XX(EACCES)         \
    XX(EBUSY) XX(EEXIST) XX(ENOTDIR) XX(EISDIR) XX(EINVAL) XX(EMFILE) XX(EFBIG) XX(ENOSPC)    \
    XX(EPIPE) XX(ERANGE) XX(EPROTO) XX(EMSGSIZE) XX(ENOTSUP) XX(EADDRINUSE)                   \
    XX(EADDRNOTAVAIL) XX(ENETUNREACH) XX(ECONNRESET) XX(ETIMEDOUT) XX(ECONNREFUSED)          \
    XX(EHOSTUNREACH) XX(EALREADY) XX(ECANCELED) XX(ENOTCONN) XX(EPROTONOSUPPORT)

static const char *errno_name(int e)
{
    switch (e) {
#define ERRNO_CASE(name)                                                                      \
    case name:                                                                                \
        return #name;
        ERRNO_NAMES(ERRNO_CASE)
#undef ERRNO_CASE
    default:
        return NULL;
    }
}

static const struct err_entry *find_entry(int err)
{
    for (size_t i = 0; i < sizeof err_table / sizeof err_table[0]; i++) {
        if (err_table[i].code == err) return &err_table[i];
    }
    return NULL;
}

int relais_err_to_wire(int err)
{
    if (err == 0) return RELAIS__V1__ERROR__ERROR_CODE__ERROR_CODE_UNSPECIFIED;
    int wire = -err - 1000;
    if (wire >= WIRE_FIRST && wire <= WIRE_LAST) return wire;
    return RELAIS__V1__ERROR__ERROR_CODE__INTERNAL;
}

int relais_err_from_wire(int wire_code)
{
    if (wire_code >= WIRE_FIRST && wire_code <= WIRE_LAST) return -(1000 + wire_code);
    return RELAIS_EINTERNAL;
}

const char *relais_strerror(int err)
{
    if (err == 0) return "success";
    const struct err_entry *e = find_entry(err);
    if (e != NULL) return e->message;
    /* strerror's strings for valid errno values are static in every libc we run on. */
    if (err < 0 && err > -1000 && errno_name(-err) != NULL) return strerror(-err);
    return "unknown error";
}

const char *relais_err_name(int err)
{
    if (err == 0) return "OK";
    const struct err_entry *e = find_entry(err);
    if (e != NULL) return e->name;
    if (err < 0 && err > -1000) {
        const char *name = errno_name(-err);
        if (name != NULL) return name;
    }
    return "UNKNOWN";
}

int codec__fail(int code, char *reason, size_t reason_len, const char *fmt, ...)
{
    if (reason != NULL && reason_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, reason_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

void codec__clear(char *reason, size_t reason_len)
{
    if (reason != NULL && reason_len > 0) reason[0] = '\0';
}
