/*
 * Relais error codes.
 *
 * Every function of the Relais API that can fail returns an int: 0 on success, a negative
 * code on failure. Negative errno values (-ENOMEM, -EAGAIN, …) pass through unchanged; the
 * codes below are Relais's own. The first block mirrors the wire protocol's
 * Error.ErrorCode one to one (RELAIS_E… = -(1000 + wire code)) so that a code travels from
 * broker to application without a lookup table on the hot path.
 */
#ifndef RELAIS_ERRORS_H
#define RELAIS_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

enum {
    /* Mirrors of PROTOCOL.md's ErrorCode. */
    RELAIS_EBADFRAME = -1001,         /* the frame could not be decoded */
    RELAIS_EVERSION = -1002,          /* unsupported protocol version */
    RELAIS_ENOSESSION = -1003,        /* no Hello yet on this connection */
    RELAIS_EINVALID = -1004,          /* the envelope breaks a validation rule */
    RELAIS_EFORBIDDEN = -1005,        /* the sender may not do this */
    RELAIS_EUNKNOWNRCPT = -1006,      /* a recipient is not in the directory */
    RELAIS_ETOOLARGE = -1007,         /* frame larger than the announced limit */
    RELAIS_EEXPIRED = -1008,          /* deadline already past */
    RELAIS_EOVERLOADED = -1009,       /* retry later */
    RELAIS_ESTORE = -1010,            /* store unavailable, retry later */
    RELAIS_EINTERNAL = -1011,         /* a bug on the other side */

    /* Local codes, never on the wire. */
    RELAIS_ECLOSED = -1100,           /* the agent or broker is stopping */
    RELAIS_EPROTO = -1101,            /* the peer broke the protocol (unexpected frame) */
    RELAIS_ECONFIG = -1102,           /* invalid configuration or option */
};

/* The wire ErrorCode for err (INTERNAL for any code without a wire mirror; 0 for 0). */
int relais_err_to_wire(int err);

/* The RELAIS_E… code for a wire ErrorCode (RELAIS_EINTERNAL for unknown values). */
int relais_err_from_wire(int wire_code);

/* A readable sentence for err; never NULL. Handles negative errno values too. */
const char *relais_strerror(int err);

/* The symbolic name of err ("RELAIS_EFORBIDDEN", "ENOMEM"); never NULL. */
const char *relais_err_name(int err);

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_ERRORS_H */
