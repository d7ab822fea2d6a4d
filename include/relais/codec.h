/*
 * Relais codec: frames, envelopes, addresses and message identifiers.
 *
 * The small library that the broker, the agent runtime and any C client link. It turns one
 * ZeroMQ message body into a decoded Frame and back, validates what arrives from the
 * network with a precise error code and a readable reason, and parses the address schemes
 * of PROTOCOL.md section 4. The message types themselves are the ones protobuf-c generates
 * from the .proto files in proto/relais/v1: they are the schema, so they are part of the API.
 *
 * Nothing here allocates global state; every function is thread-safe.
 */
#ifndef RELAIS_CODEC_H
#define RELAIS_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relais/errors.h"
#include "relais/v1/relais.pb-c.h"

#ifdef __cplusplus
extern "C" {
#endif

#define RELAIS_PROTOCOL_VERSION 1
#define RELAIS_MESSAGE_ID_LEN 16
#define RELAIS_MAX_RECIPIENTS 64
#define RELAIS_DEFAULT_MAX_FRAME_BYTES (1024 * 1024)
#define RELAIS_ADDRESS_MAX 256 /* bytes, terminating NUL included */
#define RELAIS_REASON_MAX 256  /* size of the reason buffers callers pass */

/* ---- Frames ------------------------------------------------------------------------ */

/*
 * Decodes one frame from the body of one ZeroMQ message.
 * On success returns 0 and *out holds a frame the caller frees with relais_frame_free().
 * Fails with RELAIS_ETOOLARGE when len > max_bytes (checked before any parsing),
 * RELAIS_EBADFRAME when len is 0, the bytes are not a Frame, no kind is set, or a string
 * field is not valid UTF-8 (proto3 requires it; protobuf-c does not check), -ENOMEM when
 * allocation fails. On failure *out is NULL and, when reason is not NULL,
 * a readable sentence is written there (reason_len bytes at most, NUL-terminated).
 */
int relais_frame_decode(const void *data, size_t len, size_t max_bytes,
                        Relais__V1__Frame **out, char *reason, size_t reason_len);

/* Frees a frame from relais_frame_decode() and sets *frame to NULL. Accepts NULL. */
void relais_frame_free(Relais__V1__Frame **frame);

/*
 * Encodes frame into a new malloc'd buffer that the caller frees with free().
 * Returns 0, RELAIS_EBADFRAME when no kind of the schema is set or its message is NULL,
 * or -ENOMEM. On failure *out is NULL and *out_len 0.
 */
int relais_frame_encode(const Relais__V1__Frame *frame, uint8_t **out, size_t *out_len);

/* The name of a frame kind ("hello", "submit", …) or "unknown"; for logs. */
const char *relais_frame_kind_name(int kind_case);

/*
 * Encodes a Deliver frame around an envelope that is already serialized, without decoding
 * it again: the broker's hot path keeps envelope bytes as they were stored. Returns a new
 * malloc'd buffer in *out (caller frees), 0 on success or -ENOMEM.
 */
int relais_deliver_wrap(const uint8_t *envelope, size_t envelope_len, uint32_t attempt,
                        bool offered, uint8_t **out, size_t *out_len);

/*
 * Appends broker-owned fields to a serialized envelope: sender (field 2; NULL is "") and
 * accepted_at_ms (field 12). When a singular field occurs more than once, protobuf keeps
 * the last occurrence, so the result decodes with the stamped values whatever the original
 * held. Returns a new malloc'd buffer (caller frees), 0 on success or -ENOMEM.
 */
int relais_envelope_stamp(const uint8_t *envelope, size_t envelope_len, const char *sender,
                          int64_t accepted_at_ms, uint8_t **out, size_t *out_len);

/* ---- Envelopes --------------------------------------------------------------------- */

/*
 * Checks an envelope as submitted: message_id exactly 16 bytes; 1..max_recipients entries
 * in `to`, each a valid address and none repeated; on_behalf_of empty or a valid address;
 * conversation_id and in_reply_to empty or 16 bytes; created_at_ms >= 0;
 * expires_at_ms 0 or later than now_ms; a body set. max_recipients 0, or above
 * RELAIS_MAX_RECIPIENTS, means RELAIS_MAX_RECIPIENTS (the protocol's limit).
 * Returns 0, RELAIS_EINVALID (or RELAIS_EEXPIRED for a deadline already past, reported only
 * when every other rule holds) and writes a reason naming the field and the rule
 * ("to[2]: rpps needs 11 digits, got 10"); on success reason is emptied.
 */
int relais_envelope_validate(const Relais__V1__Envelope *env, int64_t now_ms,
                             unsigned max_recipients, char *reason, size_t reason_len);

/* The body's name as in the schema ("appointment_request") or "none"/"unknown". */
const char *relais_body_name(int body_case);

/* The body case for a schema name, or -1 when the name is unknown. */
int relais_body_from_name(const char *name);

/* ---- Addresses --------------------------------------------------------------------- */

typedef enum relais_addr_kind {
    RELAIS_ADDR_RPPS = 1,    /* rpps:<11 digits> */
    RELAIS_ADDR_FINESS = 2,  /* finess:<9 digits, or 2A/2B + 7 digits for Corsica> */
    RELAIS_ADDR_STAFF = 3,   /* staff:<name>@<organisation> */
    RELAIS_ADDR_SERVICE = 4, /* service:<role>[/<specialty>]@<territory> */
    RELAIS_ADDR_APP = 5,     /* app:<name> */
} relais_addr_kind_t;

typedef struct relais_address {
    relais_addr_kind_t kind;
    char id[RELAIS_ADDRESS_MAX];    /* the part after "scheme:" */
    /* service addresses only (empty strings otherwise): */
    char role[64];
    char specialty[64];
    char territory[128];
} relais_address_t;

/*
 * Parses and validates text as an address of PROTOCOL.md section 4. Schemes are lowercase;
 * names (staff, app, roles, territories) are lowercase letters, digits, '.', '_' and '-';
 * Corsican FINESS numbers are written 2A/2B in capitals, as in the national register.
 * Returns 0 and fills *out (which may be NULL to validate only), or RELAIS_EINVALID with
 * a reason ("finess needs 9 digits, got 8") and *out untouched.
 */
int relais_address_parse(const char *text, relais_address_t *out, char *reason,
                         size_t reason_len);

/* True when text is a valid address. */
bool relais_address_valid(const char *text);

/* ---- Identifiers and time ---------------------------------------------------------- */

/* Writes a new UUIDv7 (RFC 9562) into id. Returns 0 or a negative errno. */
int relais_uuid7(uint8_t id[RELAIS_MESSAGE_ID_LEN]);

/*
 * Formats an identifier for logs: a 16-byte id as a canonical UUID
 * (8-4-4-4-12 lowercase hex), anything else as plain hex (truncated to fit), an empty one
 * as "-". out must hold at least 37 bytes. Returns out.
 */
char *relais_id_format(const uint8_t *id, size_t len, char out[37]);

/*
 * Business time: milliseconds since the Unix epoch, UTC — what messages carry and what
 * deadlines, expiry and slots are measured in. The wall clock, unless a territory
 * simulation compresses it (RELAIS_SIM_CLOCK, see relais_clock_init()).
 */
int64_t relais_now_ms(void);

/* The real wall clock, never scaled (for identifiers and human-facing logs). */
int64_t relais_wall_ms(void);

/* Transport time: a monotonic millisecond clock, never scaled (heartbeats, ack timeouts,
 * back-offs). Only differences between two readings mean anything. */
int64_t relais_mono_ms(void);

/*
 * Reads RELAIS_SIM_CLOCK once: "FACTOR,REAL_ORIGIN_MS,SIM_ORIGIN_MS" makes business time
 * SIM_ORIGIN_MS + (wall - REAL_ORIGIN_MS) * FACTOR in every process that has it (FACTOR in
 * [1, 1e6]); unset, business time is the wall clock. Returns 0, or RELAIS_ECONFIG when the
 * variable is malformed (business time then stays the wall clock). Safe from any thread;
 * the other clock functions call it implicitly.
 */
int relais_clock_init(void);

/* How many business milliseconds pass per real one: 1.0 unless simulated. */
double relais_clock_factor(void);

/* The real delay, in milliseconds, until business_ms of business time have passed (0 for
 * a delay <= 0). For timers armed for business deadlines. */
int64_t relais_clock_real_delay_ms(int64_t business_ms);

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_CODEC_H */
