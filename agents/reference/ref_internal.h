/*
 * Internals shared by the reference roles: event emission, submissions that report their
 * acceptance as events, and small string and time helpers. Not part of refagents.h so
 * that programs see only the roles' API.
 */
#ifndef RELAIS_REF_INTERNAL_H
#define RELAIS_REF_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"
#include "refagents.h"

/* Where a role's events go. A NULL fn drops them. */
typedef struct ref__emitter {
    relais_ref_event_fn fn;
    void *ud;
    relais_agent_t *agent;
} ref__emitter_t;

/* What a submission is about, for the ACCEPTED or SEND_FAILED event reported later. */
typedef struct ref__about {
    const char *ref;          /* request, task or encounter id */
    const char *encounter_id; /* NULL or "" when none */
    const char *state;        /* the conversation's state once the message is accepted */
} ref__about_t;

/*
 * Submits env through relais_agent_send(), or relais_agent_reply() when original is not
 * NULL, and reports the broker's answer as an ACCEPTED or SEND_FAILED event described by
 * about. The message id used is written to id_out when not NULL. Returns 0 or the SDK's
 * error (no event is emitted then), or -ENOMEM.
 */
int ref__submit(const ref__emitter_t *em, const Relais__V1__Envelope *original,
                const Relais__V1__Envelope *env, const ref__about_t *about,
                uint8_t id_out[RELAIS_MESSAGE_ID_LEN]);

/* Emits a RECEIVED event for the delivery d. */
void ref__emit_received(const ref__emitter_t *em, const relais_delivery_t *d, const char *ref,
                        const char *encounter_id, relais_ref_milestone_t ms, const char *state);

/* Emits a RECEIPT event for r. */
void ref__emit_receipt(const ref__emitter_t *em, const Relais__V1__Receipt *r);

/* Emits a NOTICE event (a decision without a message). */
void ref__emit_notice(const ref__emitter_t *em, const char *ref, const char *encounter_id,
                      relais_ref_milestone_t ms, const char *state);

/* Emits a NOTICE (milestone OFFER_WITHDRAWN) about the offer message_id (16 bytes). */
void ref__emit_withdrawn(const ref__emitter_t *em, const uint8_t *message_id, const char *why);

/*
 * Copies src into dst of size n. Returns 0, or RELAIS_EINVALID when src is NULL, empty
 * while required, or does not fit (dst then holds "").
 */
int ref__copy_id(char *dst, size_t n, const char *src, bool required);

/* strdup() that maps NULL to "" and reports failure as NULL only on ENOMEM. */
char *ref__strdup(const char *s);

/* "2026-11-23 09:30" in local time, for states and reasons. out holds 32 bytes. */
const char *ref__format_time(int64_t ms, char out[32]);

/* The sender stamped on a delivery, or "" when the broker left it empty. */
const char *ref__sender(const relais_delivery_t *d);

/* ---- provider_later.c: answers that take working time ------------------------------ */

/* A request acknowledged now and answered later: a packed copy, and when. */
typedef struct ref__later {
    struct ref__later *next;
    void *owner; /* the provider */
    uint8_t *bytes;
    size_t len;
    int64_t at_ms; /* business time of the answer */
    bool offered;
    uint64_t timer_id; /* its timer on the owner's agent, 0 when none */
} ref__later_t;

/* Keeps a packed copy of env at the head of *head; the node never moves (timers point at
 * it). NULL on -ENOMEM. */
ref__later_t *ref__later_add(ref__later_t **head, const Relais__V1__Envelope *env, int64_t at_ms,
                             bool offered, void *owner);
/* Unlinks and frees l. */
void ref__later_remove(ref__later_t **head, ref__later_t *l);
void ref__later_free_all(ref__later_t **head);

/* A log-normal draw of this median (ms) and sigma from two uniforms in [0, 1), capped at
 * 40 times the median. */
int64_t ref__lognormal_ms(int64_t median_ms, double sigma, double u1, double u2);

/* The business time at which work_ms of working time (spec's hours on its working days)
 * has passed since from_ms; work starts at the next opening when from_ms is outside. */
int64_t ref__working_time_add(const ref_calendar_spec_t *spec, int64_t from_ms, int64_t work_ms);

#endif /* RELAIS_REF_INTERNAL_H */
