/*
 * HL7 v2 messages (ER7, the pipe-and-hat encoding) as relais-hl7 reads and answers them.
 *
 * The parser takes the bytes of one MLLP frame, reads the encoding characters from MSH,
 * converts the text to UTF-8 from the character set MSH-18 declares (UTF-8, ASCII,
 * ISO-8859-1 or ISO-8859-15), splits it into segments on CR, LF or CRLF, and keeps it as
 * one buffer with the segments' offsets: fields, repetitions, components and
 * subcomponents are cut out only when asked for, and escape sequences (\F\ \S\ \T\ \R\ \E\
 * \Xhh\) are decoded then. Every failure has an HL7 error code (table 0357), a location
 * (segment, field) and a sentence that names no value of the message, so it can go both in
 * an ERR segment and in a log line. Nothing here allocates global state or logs.
 *
 * The ACK builder writes the acknowledgement of a message: MSA with AA/AE/AR (original
 * mode) or CA/CE/CR (enhanced mode, when MSH-15 asks for an accept acknowledgement), and an
 * ERR segment with the error's code, location and text.
 */
#ifndef RELAIS_HL7_H
#define RELAIS_HL7_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* HL7 table 0357, the error codes this gateway uses. */
enum {
    HL7_OK = 0,
    HL7_ERR_SEGMENT_SEQUENCE = 100,
    HL7_ERR_REQUIRED_MISSING = 101,
    HL7_ERR_DATA_TYPE = 102,
    HL7_ERR_TABLE_VALUE = 103,
    HL7_ERR_UNSUPPORTED_TYPE = 200,
    HL7_ERR_UNSUPPORTED_EVENT = 201,
    HL7_ERR_UNSUPPORTED_PROCESSING_ID = 202,
    HL7_ERR_UNSUPPORTED_VERSION = 203,
    HL7_ERR_DUPLICATE_KEY = 205,
    HL7_ERR_INTERNAL = 207,
};

#define HL7_TEXT_MAX 200

/* Why a message was refused, and where. */
typedef struct hl7_error {
    int code;          /* HL7 table 0357 */
    char segment[4];   /* "PID", or "" when the error is not in one segment */
    unsigned sequence; /* 1 for the first segment of that name; 0 when unknown */
    unsigned field;    /* 0 when the error is about the whole segment or message */
    char text[HL7_TEXT_MAX];
} hl7_error_t;

/* Fills err; returns the HL7 code, for `return hl7_fail(…)` in parsers and mappers. */
int hl7_fail(hl7_error_t *err, int code, const char *segment, unsigned sequence, unsigned field,
             const char *fmt, ...) __attribute__((format(printf, 6, 7)));

typedef enum hl7_charset {
    HL7_CHARSET_DEFAULT = 0, /* MSH-18 empty: the bytes must be UTF-8 (ASCII included) */
    HL7_CHARSET_ASCII,
    HL7_CHARSET_UTF8,
    HL7_CHARSET_LATIN1, /* 8859/1 */
    HL7_CHARSET_LATIN9, /* 8859/15 */
} hl7_charset_t;

typedef struct hl7_limits {
    size_t max_bytes;    /* the whole message; default 1 MiB */
    size_t max_segments; /* default 5000 */
} hl7_limits_t;

typedef struct hl7_msg hl7_msg_t;

/*
 * Parses one message. Returns 0 and *out (free with hl7_msg_free()), or an HL7 error code
 * with err filled and *out NULL: 100 when the text does not start with a valid MSH or a
 * segment name is malformed, 102 for bytes that are not in the declared character set (or
 * a NUL byte), 207 for a message over the limits or an unsupported character set.
 * -ENOMEM is returned as HL7_ERR_INTERNAL with the text saying so. lim may be NULL.
 */
int hl7_parse(const char *data, size_t len, const hl7_limits_t *lim, hl7_msg_t **out,
              hl7_error_t *err);

/* Frees a message and nulls *m. Accepts NULL. */
void hl7_msg_free(hl7_msg_t **m);

/* Number of segments, the i-th one's name ("PID"), and the character set that was read. */
size_t hl7_segment_count(const hl7_msg_t *m);
const char *hl7_segment_name(const hl7_msg_t *m, size_t i);
hl7_charset_t hl7_charset(const hl7_msg_t *m);

/* Index of the first segment named name at or after index from, or -1. */
long hl7_find(const hl7_msg_t *m, const char *name, size_t from);

/*
 * The text of one field as it is in the message (UTF-8, escapes not decoded, repetitions
 * and components included): *p and *len, or an empty text when the field is absent.
 * Fields are numbered as in the standard: MSH-1 is the field separator, MSH-2 the encoding
 * characters, MSH-3 the sending application.
 */
void hl7_raw_field(const hl7_msg_t *m, size_t seg, unsigned field, const char **p, size_t *len);

/* Number of repetitions of a field (0 when it is empty or absent). */
unsigned hl7_repetitions(const hl7_msg_t *m, size_t seg, unsigned field);

/*
 * Copies one value, escape sequences decoded, NUL-terminated, into out (cap bytes): the
 * subcomponent sub (1-based) of component comp (1-based) of repetition rep (0-based) of
 * field field of segment seg. An absent value, and the HL7 null "", give "". Returns 0,
 * HL7_ERR_DATA_TYPE for a malformed escape sequence or one decoding to a NUL or to bytes
 * that are not valid text, or -E2BIG when the value does not fit (out then holds "").
 * MSH-1 and MSH-2 are returned as written.
 */
int hl7_get(const hl7_msg_t *m, size_t seg, unsigned field, unsigned rep, unsigned comp,
            unsigned sub, char *out, size_t cap);

/* hl7_get() for the first occurrence of a segment; "" when there is none. */
int hl7_get_in(const hl7_msg_t *m, const char *segment, unsigned field, unsigned comp, char *out,
               size_t cap);

/*
 * BLAKE2b-256 of the message's text with MSH-7 (the time the message was built, which some
 * engines regenerate when they resend) left out: two sendings of one message hash alike.
 */
void hl7_content_hash(const hl7_msg_t *m, uint8_t hash[32]);

/* ---- Acknowledgements ------------------------------------------------------------- */

typedef enum hl7_ack_code {
    HL7_AA = 0, /* accepted (enhanced: CA) */
    HL7_AE = 1, /* error: never acceptable as sent (enhanced: CE) */
    HL7_AR = 2, /* rejected for now: resend later (enhanced: CR) */
} hl7_ack_code_t;

/*
 * Whether the sender asked for an acknowledgement of this outcome on this connection:
 * always in original mode; in enhanced mode (MSH-15 set) per MSH-15: AL always, NE never,
 * ER only for AE/AR, SU only for AA. m may be NULL (a message that could not be parsed is
 * always answered).
 */
bool hl7_ack_wanted(const hl7_msg_t *m, hl7_ack_code_t code);

/*
 * Writes the ACK of m (which may be NULL when the message could not be parsed: the ACK then
 * uses the default encoding characters and an empty MSA-2) into a new malloc'd buffer
 * *out and *out_len (no MLLP framing). control_id is MSH-10 of the ACK itself; now_text its
 * MSH-7 (YYYYMMDDHHMMSS+ZZZZ). err, for AE and AR, fills the ERR segment (NULL: none).
 * Returns 0 or -ENOMEM.
 */
int hl7_ack_build(const hl7_msg_t *m, hl7_ack_code_t code, const hl7_error_t *err,
                  const char *control_id, const char *now_text, char **out, size_t *out_len);

#endif /* RELAIS_HL7_H */
