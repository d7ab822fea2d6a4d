/*
 * relais-hl7's acknowledgement store: a SQLite file that remembers, for each message key
 * (channel, MSH-3, MSH-4, MSH-10), the hash of the content that came with it and the ACK
 * it was finally given. It is how duplicates are handled explicitly across restarts: the
 * same key with the same content gets the stored ACK again and produces nothing new; the
 * same key with other content is refused (AE 205); a key whose messages were submitted
 * but not all confirmed (a crash, an AR) is processed again, and the broker recognises the
 * resubmitted message ids as duplicates.
 */
#ifndef RELAIS_HL7_STORE_H
#define RELAIS_HL7_STORE_H

#include <stddef.h>
#include <stdint.h>

typedef struct hl7_store hl7_store_t;

typedef enum hl7_store_state {
    HL7_STORE_NEW = 0,      /* first time: recorded as pending */
    HL7_STORE_PENDING = 1,  /* seen, same content, not yet acknowledged AA/AE */
    HL7_STORE_DONE = 2,     /* acknowledged: *ack holds the ACK to send again */
    HL7_STORE_CONFLICT = 3, /* the key came before with other content */
} hl7_store_state_t;

typedef struct hl7_key {
    const char *channel, *application, *facility, *control_id;
} hl7_key_t;

/* Opens (creating) the store at path. 0, or RELAIS_ESTORE with the reason logged. */
int hl7_store_open(const char *path, hl7_store_t **out);
void hl7_store_close(hl7_store_t **s);

/*
 * Looks the key up and records it as pending when new. Returns a hl7_store_state_t (with,
 * for HL7_STORE_DONE, a malloc'd copy of the ACK in *ack / *ack_len), or RELAIS_ESTORE.
 */
int hl7_store_begin(hl7_store_t *s, const hl7_key_t *key, const uint8_t hash[32], char **ack,
                    size_t *ack_len);

/* Records the final ACK of a key (AA, or AE for a message that can never be taken). */
int hl7_store_finish(hl7_store_t *s, const hl7_key_t *key, const char *ack, size_t ack_len);

/* ---- Outbound: closing the loop (outbound.c) ---------------------------------------- */

/* What the gateway produced for a message AA'd on a channel with an outbound endpoint,
 * so that receipts and answers in its conversation can be sent back as HL7. */
typedef struct hl7_produced {
    char channel[72], control_id[200], encounter_id[128], local_id[128], kind[24];
} hl7_produced_t;

/* Records message_id (16 bytes) as produced for p. 0 or RELAIS_ESTORE. */
int hl7_store_produced(hl7_store_t *s, const uint8_t *message_id, const hl7_produced_t *p);
/* Finds what message_id (a message or conversation id) was produced for: 1 found, 0 not,
 * RELAIS_ESTORE. */
int hl7_store_find_produced(hl7_store_t *s, const uint8_t *message_id, size_t len,
                            hl7_produced_t *out);

/* Appends an outbound HL7 message for channel to the queue. 0 or RELAIS_ESTORE. */
int hl7_store_enqueue(hl7_store_t *s, const char *channel, const char *msg, size_t len);
/* The oldest pending outbound message of channel: 1 (with *seq and a malloc'd *msg),
 * 0 when none, RELAIS_ESTORE. */
int hl7_store_next_out(hl7_store_t *s, const char *channel, int64_t *seq, char **msg, size_t *len);
/* Marks an outbound message sent (state 1) or refused by the hospital (state 2). */
int hl7_store_out_done(hl7_store_t *s, int64_t seq, int state);

#endif /* RELAIS_HL7_STORE_H */
