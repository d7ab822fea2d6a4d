/*
 * The provider's slot calendar: a fixed row of slots, each with `capacity` places (patients
 * per slot). A place is free, held for a request (offered and not yet booked) or booked.
 * The row is either consecutive slots from a start, or the working hours of a number of
 * days (ranges such as 08:00-12:00 and 14:00-18:00, UTC, on chosen weekdays). Holds expire
 * by themselves: a hold past its deadline counts as free the next time anyone looks, so no
 * timer is needed. Slots that have started are never offered or taken. A booked place also
 * remembers the conversation its outcome belongs to, so that the provider can report it
 * when the slot ends. Pure data, no I/O, allocated once at creation: the provider's
 * decisions can be reasoned about (and tested) on their own, and a request costs no memory.
 */
#ifndef RELAIS_REF_CALENDAR_H
#define RELAIS_REF_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "refagents.h"

#define REF_HOURS_MAX 8          /* working-hour ranges per day */
#define REF_CAL_SLOTS_MAX 10000  /* slots in one calendar */
#define REF_CAL_PLACES_MAX 20000 /* slots × capacity */

typedef enum ref_slot_state {
    REF_SLOT_FREE = 0,
    REF_SLOT_HELD = 1,
    REF_SLOT_BOOKED = 2,
} ref_slot_state_t;

/* Whether a booked place's outcome still has to be reported. */
typedef enum ref_outcome_state {
    REF_OUTCOME_NONE = 0, /* not reported (report_outcomes off, or not booked) */
    REF_OUTCOME_DUE = 1,  /* to be sent once the slot has ended */
    REF_OUTCOME_SENT = 2, /* handed to the agent */
} ref_outcome_state_t;

typedef struct ref_slot {
    char id[24]; /* "slot-01", or "20261123T0930Z" for working hours */
    int64_t start_ms;
    int64_t end_ms;
} ref_slot_t;

/* One place of a slot. */
typedef struct ref_place {
    ref_slot_state_t state;
    ref_outcome_state_t outcome;
    bool task;             /* BOOKED by a care task rather than a Book */
    int64_t held_until_ms; /* HELD only */
    uint32_t holder;       /* who it is held or booked for: see ref__calendar_holder() */
    char request_id[RELAIS_REF_ID_MAX];             /* their request (or care task) id */
    char appointment_id[16];                        /* BOOKED only: "apt-0001" */
    uint8_t conversation_id[RELAIS_MESSAGE_ID_LEN]; /* BOOKED: where the outcome goes */
    uint8_t reply_to[RELAIS_MESSAGE_ID_LEN];        /* BOOKED: the Book or task request */
} ref_place_t;

/* A working-hours range in minutes from midnight UTC, from < to <= 24 * 60. */
typedef struct ref_hours {
    unsigned from_min;
    unsigned to_min;
} ref_hours_t;

/* What a calendar is made of. */
typedef struct ref_calendar_spec {
    int64_t from_ms;       /* consecutive: the first slot; working hours: no slot before */
    int64_t slot_ms;       /* length of a slot */
    unsigned capacity;     /* places per slot, >= 1 */
    size_t count;          /* consecutive slots (used when horizon_days is 0) */
    unsigned horizon_days; /* 0: consecutive; else from from_ms's day (UTC), that many days */
    uint8_t work_days;     /* bit 0 Monday … bit 6 Sunday */
    ref_hours_t hours[REF_HOURS_MAX];
    size_t n_hours;
} ref_calendar_spec_t;

typedef struct ref_calendar {
    ref_slot_t *slots;
    size_t n;                  /* slots */
    unsigned capacity;         /* places per slot */
    ref_place_t *places;       /* n × capacity; place i belongs to slot i / capacity */
    unsigned next_appointment; /* numbers appointment ids */
    /* The requesters' addresses, each kept once (a place names one by its number, 1 + its
     * index here): a territory has far fewer requesters than places. */
    char **holders;
    size_t n_holders, cap_holders;
} ref_calendar_t;

/*
 * Parses working hours such as "08:00-12:00,14:00-18:00" (HH:MM, 24:00 allowed as an end,
 * ranges in increasing order without overlap, spaces after commas allowed) into out.
 * Returns 0, or RELAIS_ECONFIG with a reason in why (why_len bytes) when text is malformed.
 */
int ref__hours_parse(const char *text, ref_hours_t out[REF_HOURS_MAX], size_t *n, char *why,
                     size_t why_len);

/*
 * Creates the slots spec describes. Returns 0, RELAIS_ECONFIG (no slot at all, a zero slot
 * length or capacity, more than REF_CAL_SLOTS_MAX slots or REF_CAL_PLACES_MAX places), or
 * -ENOMEM.
 */
int ref__calendar_init(ref_calendar_t *cal, const ref_calendar_spec_t *spec);
void ref__calendar_free(ref_calendar_t *cal);

/* The slot a place belongs to. */
static inline const ref_slot_t *ref__calendar_slot_of(const ref_calendar_t *cal, size_t place)
{
    return &cal->slots[place / cal->capacity];
}

/* The address a place is held or booked for ("" for a free place). */
const char *ref__calendar_holder(const ref_calendar_t *cal, const ref_place_t *p);

/*
 * Holds one place in each of up to max slots that have not started at now, lie inside
 * [not_before, due_by] (0 = open bound) and have a free place, for (holder, request_id)
 * until held_until; first drops the holds that pair already had, so a repeated request
 * gets a fresh offer rather than two. Writes the places' indexes into out_idx and returns
 * how many were held (0: nothing free in the window), or -ENOMEM when a new holder's
 * address could not be kept.
 */
int ref__calendar_hold(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       int64_t not_before, int64_t due_by, int64_t held_until, size_t max,
                       size_t *out_idx);

/*
 * Books a place of slot_id for (holder, request_id): the one that pair holds or already
 * booked there (a repeated Book gets the same appointment), else a free one. Releases the
 * pair's other holds. Returns 0 and the place's index in *idx, -ENOENT for an unknown slot,
 * -EBUSY when every place of the slot is someone else's, -ENOMEM.
 */
int ref__calendar_book(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       const char *slot_id, size_t *idx);

/*
 * Books a free place of the first slot inside the window that has not started at now
 * (care tasks need no offer), or returns the place the pair already booked. Returns 0 and
 * its index, -EBUSY when none is free, or -ENOMEM.
 */
int ref__calendar_take(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       int64_t not_before, int64_t due_by, size_t *idx);

/*
 * Frees what holder holds or booked under request_id, or under appointment_id when that is
 * not empty. Returns the number of places freed.
 */
size_t ref__calendar_cancel(ref_calendar_t *cal, const char *holder, const char *request_id,
                            const char *appointment_id);

/* Frees the places that (holder, request_id) holds, leaving its booking alone. */
void ref__calendar_release_holds(ref_calendar_t *cal, const char *holder, const char *request_id);

/* Frees place idx, whatever its state. */
void ref__calendar_release(ref_calendar_t *cal, size_t idx);

/* Places free at now (expired holds included) in slots that have not started. */
size_t ref__calendar_free_count(const ref_calendar_t *cal, int64_t now);

/* The booked share of the places whose slot starts in [from_ms, to_ms), in [0, 1]; 0 when
 * there is none. How loaded the practice really is, for a busy decline. */
double ref__calendar_load(const ref_calendar_t *cal, int64_t from_ms, int64_t to_ms);

#endif /* RELAIS_REF_CALENDAR_H */
