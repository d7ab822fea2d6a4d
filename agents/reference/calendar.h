/*
 * The provider's slot calendar: a fixed row of consecutive slots, each free, held for a
 * request (offered and not yet booked) or booked. Holds expire by themselves: a hold past
 * its deadline counts as free the next time anyone looks, so no timer is needed. Pure data,
 * no I/O, so the provider's decisions can be reasoned about (and tested) on their own.
 */
#ifndef RELAIS_REF_CALENDAR_H
#define RELAIS_REF_CALENDAR_H

#include <stddef.h>
#include <stdint.h>

#include "refagents.h"

typedef enum ref_slot_state {
    REF_SLOT_FREE = 0,
    REF_SLOT_HELD = 1,
    REF_SLOT_BOOKED = 2,
} ref_slot_state_t;

typedef struct ref_slot {
    char id[16]; /* "slot-01" */
    int64_t start_ms;
    int64_t end_ms;
    ref_slot_state_t state;
    int64_t held_until_ms;                  /* HELD only */
    char holder[RELAIS_ADDRESS_MAX];        /* who the slot is held or booked for */
    char request_id[RELAIS_REF_ID_MAX];     /* their request (or care task) id */
    char appointment_id[RELAIS_REF_ID_MAX]; /* BOOKED only */
} ref_slot_t;

typedef struct ref_calendar {
    ref_slot_t *slots;
    size_t n;
    unsigned next_appointment; /* numbers appointment ids */
} ref_calendar_t;

/* Creates n slots of slot_ms from first_ms. 0, RELAIS_ECONFIG (n or slot_ms 0) or -ENOMEM. */
int ref__calendar_init(ref_calendar_t *cal, size_t n, int64_t first_ms, int64_t slot_ms);
void ref__calendar_free(ref_calendar_t *cal);

/*
 * Holds up to max free slots lying inside [not_before, due_by] (0 = open bound) for
 * (holder, request_id) until held_until; first drops the holds that pair already had, so a
 * repeated request gets a fresh offer rather than two. Writes the slots' indexes into
 * out_idx and returns how many were held (0: nothing free in the window).
 */
size_t ref__calendar_hold(ref_calendar_t *cal, int64_t now, const char *holder,
                          const char *request_id, int64_t not_before, int64_t due_by,
                          int64_t held_until, size_t max, size_t *out_idx);

/*
 * Books slot_id for (holder, request_id) if it is free, held by that pair or already booked
 * by it (a repeated Book gets the same appointment). Releases the pair's other holds.
 * Returns 0 and the slot's index in *idx, -ENOENT for an unknown slot, -EBUSY when someone
 * else has it.
 */
int ref__calendar_book(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       const char *slot_id, size_t *idx);

/*
 * Books the first free slot inside the window directly (care tasks need no offer), or
 * the one the pair already booked. Returns 0 and its index, or -EBUSY when none is free.
 */
int ref__calendar_take(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       int64_t not_before, int64_t due_by, size_t *idx);

/*
 * Frees what holder holds or booked under request_id, or under appointment_id when that is
 * not empty. Returns the number of slots freed.
 */
size_t ref__calendar_cancel(ref_calendar_t *cal, const char *holder, const char *request_id,
                            const char *appointment_id);

/* Slots that are free at now (expired holds included). */
size_t ref__calendar_free_count(const ref_calendar_t *cal, int64_t now);

#endif /* RELAIS_REF_CALENDAR_H */
