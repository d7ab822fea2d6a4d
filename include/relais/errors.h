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

/*
 * The one table of Relais's codes (libuv's UV_ERRNO_MAP is the model): the enum below, the
 * names and sentences of relais_err_name() / relais_strerror(), and the wire mapping are all
 * generated from it, so they cannot drift. Wire codes: XX(name, wire ErrorCode, sentence),
 * with RELAIS_<name> = -(1000 + wire code), one to one with PROTOCOL.md's ErrorCode.
 */
#define RELAIS_WIRE_ERROR_MAP(XX)                                                             \
    XX(EBADFRAME, 1, "the frame could not be decoded")                                      \
    XX(EVERSION, 2, "unsupported protocol version")                                         \
    XX(ENOSESSION, 3, "no session: Hello must come first")                                  \
    XX(EINVALID, 4, "the envelope breaks a validation rule")                                \
    XX(EFORBIDDEN, 5, "the sender is not allowed to do this")                               \
    XX(EUNKNOWNRCPT, 6, "a recipient is not in the directory")                              \
    XX(ETOOLARGE, 7, "the frame is larger than the announced limit")                        \
    XX(EEXPIRED, 8, "the deadline has already passed")                                      \
    XX(EOVERLOADED, 9, "the broker is overloaded, retry later")                             \
    XX(ESTORE, 10, "the store is unavailable, retry later")                                 \
    XX(EINTERNAL, 11, "internal error on the other side")

/* Local codes, never on the wire: XX(name, value, sentence). An invalid argument to a
 * function of the API is -EINVAL, as libuv's UV_EINVAL; RELAIS_ECONFIG is for options and
 * configuration files. */
#define RELAIS_LOCAL_ERROR_MAP(XX)                                                            \
    XX(ECLOSED, -1100, "the agent or broker is stopping")                                   \
    XX(EPROTO, -1101, "the peer broke the protocol")                                        \
    XX(ECONFIG, -1102, "invalid configuration or option")                                   \
    XX(EUNKNOWN, -1103, "the outcome is unknown (a commit whose result was lost)")

enum {
#define RELAIS__WIRE_ENUM(name, wire, msg) RELAIS_##name = -(1000 + (wire)),
#define RELAIS__LOCAL_ENUM(name, value, msg) RELAIS_##name = (value),
    RELAIS_WIRE_ERROR_MAP(RELAIS__WIRE_ENUM) RELAIS_LOCAL_ERROR_MAP(RELAIS__LOCAL_ENUM)
#undef RELAIS__WIRE_ENUM
#undef RELAIS__LOCAL_ENUM
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
