/*
 * The provider's slot calendar (see calendar.h). Linear scans over the places: a reference
 * practice has at most a few weeks of slots with a few places each, a few thousand
 * records of about 140 bytes, so anything cleverer would only hide the rules. Requesters'
 * addresses (up to 256 bytes) are kept once each, in a table that grows only when a new
 * requester appears, and places refer to them by number.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calendar.h"

#define DAY_MS (24 * 3600 * 1000LL)
#define MINUTE_MS (60 * 1000LL)

/* ---- Working hours ------------------------------------------------------------------ */

static const char *skip_spaces(const char *s)
{
    while (*s == ' ' || *s == '\t') s++;
    return s;
}

/* Reads "HH:MM" at *s into minutes from midnight (24:00 allowed); advances *s. */
static bool read_clock(const char **s, unsigned *out)
{
    const char *c = *s;
    if (c[0] < '0' || c[0] > '9' || c[1] < '0' || c[1] > '9' || c[2] != ':' || c[3] < '0' ||
        c[3] > '9' || c[4] < '0' || c[4] > '9')
        return false;
    unsigned h = (unsigned)(c[0] - '0') * 10 + (unsigned)(c[1] - '0');
    unsigned m = (unsigned)(c[3] - '0') * 10 + (unsigned)(c[4] - '0');
    if (m > 59 || h > 24 || (h == 24 && m != 0)) return false;
    *out = h * 60 + m;
    *s = c + 5;
    return true;
}

int ref__hours_parse(const char *text, ref_hours_t out[REF_HOURS_MAX], size_t *n, char *why,
                     size_t why_len)
{
    *n = 0;
    const char *s = text != NULL ? skip_spaces(text) : "";
    if (*s == '\0') {
        snprintf(why, why_len, "no working hours given");
        return RELAIS_ECONFIG;
    }
    for (;;) {
        ref_hours_t r;
        if (!read_clock(&s, &r.from_min) || *s != '-' || (s++, !read_clock(&s, &r.to_min))) {
            snprintf(why, why_len, "expected ranges like 08:00-12:00,14:00-18:00");
            return RELAIS_ECONFIG;
        }
        if (r.from_min >= r.to_min) {
            snprintf(why, why_len, "a range must end after it starts");
            return RELAIS_ECONFIG;
        }
        if (*n > 0 && r.from_min < out[*n - 1].to_min) {
            snprintf(why, why_len, "ranges must be in order and must not overlap");
            return RELAIS_ECONFIG;
        }
        if (*n == REF_HOURS_MAX) {
            snprintf(why, why_len, "at most %d ranges a day", REF_HOURS_MAX);
            return RELAIS_ECONFIG;
        }
        out[(*n)++] = r;
        s = skip_spaces(s);
        if (*s == '\0') return 0;
        if (*s != ',') {
            snprintf(why, why_len, "expected ranges like 08:00-12:00,14:00-18:00");
            return RELAIS_ECONFIG;
        }
        s = skip_spaces(s + 1);
    }
}

/* ---- Building the row of slots ------------------------------------------------------ */

static int64_t floor_div(int64_t a, int64_t b)
{
    int64_t q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Visits the working-hours slots of spec in order; fills slots when not NULL. Returns the
 * count, or REF_CAL_SLOTS_MAX + 1 as soon as there are too many. */
static size_t working_slots(const ref_calendar_spec_t *spec, ref_slot_t *slots)
{
    size_t n = 0;
    int64_t first_day = floor_div(spec->from_ms, DAY_MS);
    for (unsigned d = 0; d < spec->horizon_days; d++) {
        int64_t day = first_day + d;
        int weekday = (int)((day % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
        if ((spec->work_days & (1u << weekday)) == 0) continue;
        for (size_t r = 0; r < spec->n_hours; r++) {
            int64_t end = day * DAY_MS + spec->hours[r].to_min * MINUTE_MS;
            for (int64_t t = day * DAY_MS + spec->hours[r].from_min * MINUTE_MS;
                 t + spec->slot_ms <= end; t += spec->slot_ms) {
                if (t < spec->from_ms) continue;
                if (n == REF_CAL_SLOTS_MAX) return n + 1;
                if (slots != NULL) {
                    slots[n].start_ms = t;
                    slots[n].end_ms = t + spec->slot_ms;
                    time_t secs = (time_t)(t / 1000);
                    struct tm tm;
                    if (gmtime_r(&secs, &tm) == NULL ||
                        strftime(slots[n].id, sizeof slots[n].id, "%Y%m%dT%H%MZ", &tm) == 0) {
                        snprintf(slots[n].id, sizeof slots[n].id, "slot-%zu", n + 1);
                    }
                }
                n++;
            }
        }
    }
    return n;
}

int ref__calendar_init(ref_calendar_t *cal, const ref_calendar_spec_t *spec)
{
    memset(cal, 0, sizeof *cal);
    if (spec->slot_ms <= 0 || spec->capacity == 0) return RELAIS_ECONFIG;
    size_t n = spec->horizon_days != 0 ? working_slots(spec, NULL) : spec->count;
    if (n == 0 || n > REF_CAL_SLOTS_MAX || n * spec->capacity > REF_CAL_PLACES_MAX) {
        return RELAIS_ECONFIG;
    }
    cal->slots = calloc(n, sizeof *cal->slots);
    cal->places = calloc(n * spec->capacity, sizeof *cal->places);
    if (cal->slots == NULL || cal->places == NULL) {
        ref__calendar_free(cal);
        return -ENOMEM;
    }
    cal->n = n;
    cal->capacity = spec->capacity;
    if (spec->horizon_days != 0) {
        working_slots(spec, cal->slots);
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        ref_slot_t *s = &cal->slots[i];
        snprintf(s->id, sizeof s->id, "slot-%02u", (unsigned)(i + 1));
        s->start_ms = spec->from_ms + (int64_t)i * spec->slot_ms;
        s->end_ms = s->start_ms + spec->slot_ms;
    }
    return 0;
}

void ref__calendar_free(ref_calendar_t *cal)
{
    for (size_t i = 0; i < cal->n_holders; i++) free(cal->holders[i]);
    free(cal->holders);
    free(cal->slots);
    free(cal->places);
    memset(cal, 0, sizeof *cal);
}

/* ---- Holders ----------------------------------------------------------------------- */

/* holder's number (1 + its index), or 0 when the calendar has never seen it. */
static uint32_t find_holder(const ref_calendar_t *cal, const char *holder)
{
    for (size_t i = 0; i < cal->n_holders; i++) {
        if (strcmp(cal->holders[i], holder) == 0) return (uint32_t)(i + 1);
    }
    return 0;
}

/* holder's number, adding it when new. 0 or -ENOMEM. */
static int intern_holder(ref_calendar_t *cal, const char *holder, uint32_t *out)
{
    *out = find_holder(cal, holder);
    if (*out != 0) return 0;
    if (cal->n_holders == UINT32_MAX - 1) return -ENOMEM;
    if (cal->n_holders == cal->cap_holders) {
        size_t cap = cal->cap_holders != 0 ? cal->cap_holders * 2 : 16;
        char **grown = realloc(cal->holders, cap * sizeof *grown);
        if (grown == NULL) return -ENOMEM;
        cal->holders = grown;
        cal->cap_holders = cap;
    }
    char *copy = strdup(holder);
    if (copy == NULL) return -ENOMEM;
    cal->holders[cal->n_holders++] = copy;
    *out = (uint32_t)cal->n_holders;
    return 0;
}

const char *ref__calendar_holder(const ref_calendar_t *cal, const ref_place_t *p)
{
    return p->holder != 0 && p->holder <= cal->n_holders ? cal->holders[p->holder - 1] : "";
}

/* ---- Places ------------------------------------------------------------------------- */

static bool is_free(const ref_place_t *p, int64_t now)
{
    return p->state == REF_SLOT_FREE || (p->state == REF_SLOT_HELD && p->held_until_ms <= now);
}

/* Whether p is held or booked for the pair whose holder number is h (0 owns nothing). */
static bool owned_by(const ref_place_t *p, uint32_t h, const char *request_id)
{
    return h != 0 && p->state != REF_SLOT_FREE && p->holder == h &&
           strcmp(p->request_id, request_id) == 0;
}

static bool bookable(const ref_slot_t *s, int64_t now, int64_t not_before, int64_t due_by)
{
    return s->start_ms >= now && (not_before <= 0 || s->start_ms >= not_before) &&
           (due_by <= 0 || s->end_ms <= due_by);
}

static void release(ref_place_t *p)
{
    memset(p, 0, sizeof *p);
}

static void claim(ref_place_t *p, uint32_t h, const char *request_id)
{
    release(p); /* an expired hold leaves its owner's names behind */
    p->holder = h;
    snprintf(p->request_id, sizeof p->request_id, "%s", request_id);
}

static void book(ref_calendar_t *cal, ref_place_t *p, uint32_t h, const char *request_id)
{
    claim(p, h, request_id);
    p->state = REF_SLOT_BOOKED;
    snprintf(p->appointment_id, sizeof p->appointment_id, "apt-%04u", ++cal->next_appointment);
}

static void release_holds(ref_calendar_t *cal, uint32_t h, const char *request_id)
{
    for (size_t i = 0; i < cal->n * cal->capacity; i++) {
        ref_place_t *p = &cal->places[i];
        if (p->state == REF_SLOT_HELD && owned_by(p, h, request_id)) release(p);
    }
}

void ref__calendar_release_holds(ref_calendar_t *cal, const char *holder, const char *request_id)
{
    release_holds(cal, find_holder(cal, holder), request_id);
}

/* The first free place of slot si, or SIZE_MAX; SIZE_MAX too when the pair has one there. */
static size_t free_place(const ref_calendar_t *cal, size_t si, int64_t now, uint32_t h,
                         const char *request_id)
{
    size_t found = SIZE_MAX;
    for (size_t i = si * cal->capacity; i < (si + 1) * cal->capacity; i++) {
        const ref_place_t *p = &cal->places[i];
        if (owned_by(p, h, request_id)) return SIZE_MAX;
        if (found == SIZE_MAX && is_free(p, now)) found = i;
    }
    return found;
}

int ref__calendar_hold(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       int64_t not_before, int64_t due_by, int64_t held_until, size_t max,
                       size_t *out_idx)
{
    uint32_t h;
    if (intern_holder(cal, holder, &h) != 0) return -ENOMEM;
    release_holds(cal, h, request_id);
    size_t held = 0;
    for (size_t si = 0; si < cal->n && held < max; si++) {
        if (!bookable(&cal->slots[si], now, not_before, due_by)) continue;
        size_t i = free_place(cal, si, now, h, request_id);
        if (i == SIZE_MAX) continue;
        ref_place_t *p = &cal->places[i];
        claim(p, h, request_id);
        p->state = REF_SLOT_HELD;
        p->held_until_ms = held_until;
        out_idx[held++] = i;
    }
    return (int)held;
}

int ref__calendar_book(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       const char *slot_id, size_t *idx)
{
    size_t si = 0;
    while (si < cal->n && strcmp(cal->slots[si].id, slot_id) != 0) si++;
    if (si == cal->n) return -ENOENT;
    uint32_t h;
    if (intern_holder(cal, holder, &h) != 0) return -ENOMEM;

    size_t mine = SIZE_MAX, spare = SIZE_MAX;
    for (size_t i = si * cal->capacity; i < (si + 1) * cal->capacity; i++) {
        ref_place_t *p = &cal->places[i];
        if (owned_by(p, h, request_id) && (mine == SIZE_MAX || p->state == REF_SLOT_BOOKED))
            mine = i;
        else if (spare == SIZE_MAX && is_free(p, now))
            spare = i;
    }
    size_t i = mine != SIZE_MAX ? mine : spare;
    if (i == SIZE_MAX) return -EBUSY;
    if (cal->places[i].state != REF_SLOT_BOOKED) book(cal, &cal->places[i], h, request_id);
    release_holds(cal, h, request_id);
    *idx = i;
    return 0;
}

int ref__calendar_take(ref_calendar_t *cal, int64_t now, const char *holder, const char *request_id,
                       int64_t not_before, int64_t due_by, size_t *idx)
{
    uint32_t h;
    if (intern_holder(cal, holder, &h) != 0) return -ENOMEM;
    for (size_t i = 0; i < cal->n * cal->capacity; i++) {
        ref_place_t *p = &cal->places[i];
        if (p->state == REF_SLOT_BOOKED && owned_by(p, h, request_id)) {
            *idx = i;
            return 0;
        }
    }
    for (size_t si = 0; si < cal->n; si++) {
        if (!bookable(&cal->slots[si], now, not_before, due_by)) continue;
        size_t i = free_place(cal, si, now, h, request_id);
        if (i == SIZE_MAX) continue;
        book(cal, &cal->places[i], h, request_id);
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
    uint32_t h = find_holder(cal, holder);
    if (h == 0 || (!by_appointment && request_id == NULL)) return 0;
    for (size_t i = 0; i < cal->n * cal->capacity; i++) {
        ref_place_t *p = &cal->places[i];
        if (p->state == REF_SLOT_FREE || p->holder != h) continue;
        bool match = by_appointment ? strcmp(p->appointment_id, appointment_id) == 0
                                    : strcmp(p->request_id, request_id) == 0;
        if (match) {
            release(p);
            freed++;
        }
    }
    return freed;
}

void ref__calendar_release(ref_calendar_t *cal, size_t idx)
{
    release(&cal->places[idx]);
}

size_t ref__calendar_free_count(const ref_calendar_t *cal, int64_t now)
{
    size_t n = 0;
    for (size_t si = 0; si < cal->n; si++) {
        if (cal->slots[si].start_ms < now) continue;
        for (size_t i = si * cal->capacity; i < (si + 1) * cal->capacity; i++) {
            n += is_free(&cal->places[i], now);
        }
    }
    return n;
}

double ref__calendar_load(const ref_calendar_t *cal, int64_t from_ms, int64_t to_ms)
{
    size_t booked = 0, all = 0;
    for (size_t si = 0; si < cal->n; si++) {
        if (cal->slots[si].start_ms < from_ms || cal->slots[si].start_ms >= to_ms) continue;
        for (size_t i = si * cal->capacity; i < (si + 1) * cal->capacity; i++) {
            booked += cal->places[i].state == REF_SLOT_BOOKED;
            all++;
        }
    }
    return all ? (double)booked / (double)all : 0.0;
}
