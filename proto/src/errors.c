/*
 * Relais error codes: the one table behind relais_strerror() and relais_err_name(), and the
 * mapping between RELAIS_E… codes and the wire's Error.ErrorCode.
 *
 * Relais's own codes live in the table below; negative errno values are described by the C
 * library's own thread-safe tables (strerrordesc_np / strerrorname_np, glibc 2.32+), so a
 * log line reads "ENOMEM: Cannot allocate memory" whichever layer produced the code. The
 * reason-writing helper every validator uses lives here too, next to the codes it returns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relais/errors.h"
#include "relais/v1/relais.pb-c.h"

#include "internal.h"

/* The wire mirror is arithmetic (-(1000 + wire code)); these prove the schema agrees. */
_Static_assert(RELAIS_EBADFRAME == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME),
               "BAD_FRAME mirror");
_Static_assert(RELAIS_EVERSION == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__UNSUPPORTED_VERSION),
               "UNSUPPORTED_VERSION mirror");
_Static_assert(RELAIS_ENOSESSION == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__NO_SESSION),
               "NO_SESSION mirror");
_Static_assert(RELAIS_EINVALID == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__INVALID_ENVELOPE),
               "INVALID_ENVELOPE mirror");
_Static_assert(RELAIS_EFORBIDDEN == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN),
               "FORBIDDEN mirror");
_Static_assert(RELAIS_EUNKNOWNRCPT == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__UNKNOWN_RECIPIENT),
               "UNKNOWN_RECIPIENT mirror");
_Static_assert(RELAIS_ETOOLARGE == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__TOO_LARGE),
               "TOO_LARGE mirror");
_Static_assert(RELAIS_EEXPIRED == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__EXPIRED),
               "EXPIRED mirror");
_Static_assert(RELAIS_EOVERLOADED == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__OVERLOADED),
               "OVERLOADED mirror");
_Static_assert(RELAIS_ESTORE == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__STORE_UNAVAILABLE),
               "STORE_UNAVAILABLE mirror");
_Static_assert(RELAIS_EINTERNAL == -(1000 + RELAIS__V1__ERROR__ERROR_CODE__INTERNAL),
               "INTERNAL mirror");

#define WIRE_FIRST RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME
#define WIRE_LAST RELAIS__V1__ERROR__ERROR_CODE__INTERNAL

static const struct err_entry {
    int code;
    const char *name;
    const char *message;
} err_table[] = {
    {RELAIS_EBADFRAME, "RELAIS_EBADFRAME", "the frame could not be decoded"},
    {RELAIS_EVERSION, "RELAIS_EVERSION", "unsupported protocol version"},
    {RELAIS_ENOSESSION, "RELAIS_ENOSESSION", "no session: Hello must come first"},
    {RELAIS_EINVALID, "RELAIS_EINVALID", "the envelope breaks a validation rule"},
    {RELAIS_EFORBIDDEN, "RELAIS_EFORBIDDEN", "the sender is not allowed to do this"},
    {RELAIS_EUNKNOWNRCPT, "RELAIS_EUNKNOWNRCPT", "a recipient is not in the directory"},
    {RELAIS_ETOOLARGE, "RELAIS_ETOOLARGE", "the frame is larger than the announced limit"},
    {RELAIS_EEXPIRED, "RELAIS_EEXPIRED", "the deadline has already passed"},
    {RELAIS_EOVERLOADED, "RELAIS_EOVERLOADED", "the broker is overloaded, retry later"},
    {RELAIS_ESTORE, "RELAIS_ESTORE", "the store is unavailable, retry later"},
    {RELAIS_EINTERNAL, "RELAIS_EINTERNAL", "internal error on the other side"},
    {RELAIS_ECLOSED, "RELAIS_ECLOSED", "the agent or broker is stopping"},
    {RELAIS_EPROTO, "RELAIS_EPROTO", "the peer broke the protocol"},
    {RELAIS_ECONFIG, "RELAIS_ECONFIG", "invalid configuration or option"},
};

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
    if (err < 0 && err > -1000) {
        const char *desc = strerrordesc_np(-err);
        if (desc != NULL) return desc;
    }
    return "unknown error";
}

const char *relais_err_name(int err)
{
    if (err == 0) return "OK";
    const struct err_entry *e = find_entry(err);
    if (e != NULL) return e->name;
    if (err < 0 && err > -1000) {
        const char *name = strerrorname_np(-err);
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
