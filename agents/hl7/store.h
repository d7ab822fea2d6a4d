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

#endif /* RELAIS_HL7_STORE_H */
