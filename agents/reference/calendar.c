/*
 * The provider's slot calendar (see calendar.h). Linear scans over a few dozen slots: a
 * reference practice has one day or two of slots, so anything cleverer would only hide the
 * rules.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"

static bool is_free(const ref_slot_t *s, int64_t now)
{
    return s->state == REF_SLOT_FREE || (s->state == REF_SLOT_HELD && s->held_until_ms <= now);
}

static bool owned_by(const ref_slot_t *s, const char *holder, const char *request_id)
{
    return strcmp(s->holder, holder) == 0 && strcmp(s->request_id, request_id) == 0;
}

static bool in_window(const ref_slot_t *s, int64_t not_before, int64_t due_by)
{
    return (not_before <= 0 || s->start_ms >= not_before) && (due_by <= 0 || s->end_ms <= due_by);
}

static void release(ref_slot_t *s)
{
    s->state = REF_SLOT_FREE;
    s->held_until_ms = 0;
    s->holder[0] = '\0';
    s->request_id[0] = '\0';
    s->appointment_id[0] = '\0';
}

static void claim(ref_slot_t *s, const char *holder, const char *request_id)
{
    snprintf(s->holder, sizeof s->holder, "%s", holder);
    snprintf(s->request_id, sizeof s->request_id, "%s", request_id);
}

static void book(ref_calendar_t *cal, ref_slot_t *s, const char *holder, const char *request_id)
{
    claim(s, holder, request_id);
    s->state = REF_SLOT_BOOKED;
    s->held_until_ms = 0;
    snprintf(s->appointment_id, sizeof s->appointment_id, "apt-%04u", ++cal->next_appointment);
}

int ref__calendar_init(ref_calendar_t *cal, size_t n, int64_t first_ms, int64_t slot_ms)
{
    memset(cal, 0, sizeof *cal);
    if (n == 0 || slot_ms <= 0) return RELAIS_ECONFIG;
    cal->slots = calloc(n, sizeof *cal->slots);
    if (cal->slots == NULL) return -ENOMEM;
    cal->n = n;
    for (size_t i = 0; i < n; i++) {
        ref_slot_t *s = &cal->slots[i];
        snprintf(s->id, sizeof s->id, "slot-%02u", (unsigned)(i + 1));
        s->start_ms = first_ms + (int64_t)i * slot_ms;
        s->end_ms = s->start_ms + slot_ms;
    }
    return 0;
}

void ref__calendar_free(ref_calendar_t *cal)
{
    free(cal->slots);
    memset(cal, 0, sizeof *cal);
}

size_t ref__calendar_hold(ref_calendar_t *cal, int64_t now, const char *holder,
                          const char *request_id, int64_t not_before, int64_t due_by,
                          int64_t held_until, size_t max, size_t *out_idx)
{
    for (size_t i = 0; i < cal->n; i++) {
        ref_slot_t *s = &cal->slots[i];
        if (s->state == REF_SLOT_HELD && owned_by(s, holder, request_id)) release(s);
    }
    size_t held = 0;
    for (size_t i = 0; i < cal->n && held < max; i++) {
        ref_slot_t *s = &cal->slots[i];
        if (!is_free(s, now) || !in_window(s, not_before, due_by)) continue;
        release(s); /* an expired hold leaves its owner's names behind */
        claim(s, holder, request_id);
        s->state = REF_SLOT_HELD;
        s->held_until_ms = held_until;
        out_idx[held++] = i;
    }
    return held;
}

static void release_holds(ref_calendar_t *cal, const char *holder, const char *request_id)
{
    for (size_t i = 0; i < cal->n; i++) {
        ref_slot_t *s = &cal->slots[i];
        if (s->state == REF_SLOT_HELD && owned_by(s, holder, request_id)) release(s);
    }
}

int ref__calendar_book(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       const char *slot_id, size_t *idx)
{
    for (size_t i = 0; i < cal->n; i++) {
        ref_slot_t *s = &cal->slots[i];
        if (strcmp(s->id, slot_id) != 0) continue;
        bool mine = owned_by(s, holder, request_id);
        if (s->state == REF_SLOT_BOOKED && !mine) return -EBUSY;
        if (s->state == REF_SLOT_HELD && !mine && s->held_until_ms > now) return -EBUSY;
        if (s->state != REF_SLOT_BOOKED) {
            release(s);
            book(cal, s, holder, request_id);
        }
        release_holds(cal, holder, request_id);
        *idx = i;
        return 0;
    }
    return -ENOENT;
}

int ref__calendar_take(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       int64_t not_before, int64_t due_by, size_t *idx)
{
    for (size_t i = 0; i < cal->n; i++) {
        ref_slot_t *s = &cal->slots[i];
        if (s->state == REF_SLOT_BOOKED && owned_by(s, holder, request_id)) {
            *idx = i;
            return 0;
        }
    }
    for (size_t i = 0; i < cal->n; i++) {
        ref_slot_t *s = &cal->slots[i];
        if (!is_free(s, now) || !in_window(s, not_before, due_by)) continue;
        release(s);
        book(cal, s, holder, request_id);
        *idx = i;
        return 0;
    }
    return -EBUSY;
}

size_t ref__calendar_cancel(ref_calendar_t *cal, const char *holder, const char *request_id,
                            const char *appointment_id)
{
    size_t freed = 0;
    bool by_appointment = appointment_id != NULL && appointment_id[0] != '\0';
    for (size_t i = 0; i < cal->n; i++) {
        ref_slot_t *s = &cal->slots[i];
        if (s->state == REF_SLOT_FREE || strcmp(s->holder, holder) != 0) continue;
        bool match = by_appointment ? strcmp(s->appointment_id, appointment_id) == 0
                                    : strcmp(s->request_id, request_id) == 0;
        if (match) {
            release(s);
            freed++;
        }
    }
    return freed;
}

size_t ref__calendar_free_count(const ref_calendar_t *cal, int64_t now)
{
    size_t n = 0;
    for (size_t i = 0; i < cal->n; i++) n += is_free(&cal->slots[i], now);
    return n;
}
