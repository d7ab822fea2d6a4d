/*
 * The provider role: a nurse, physiotherapist or specialist answering requests from its
 * slot calendar. AppointmentRequest gets an offer of up to max_offer free slots, held for
 * hold_ms so that two requesters are never offered the same slot at once, or a decline
 * saying why (out of scope, nothing in the window, no capacity). AppointmentBook confirms
 * the chosen slot if it is still free or held for that request; AppointmentCancel frees
 * it. CareTaskRequest books a slot directly (a nurse's home visit) and answers ACCEPTED, or
 * REJECTED when nothing is free in the task's window. Every answer is a reply in the
 * request's conversation. A request offered by a pool is claimed by the SDK's default
 * policy and then handled like any other; a silent provider (a demonstration of deadlines)
 * acknowledges appointment requests and never answers them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "ref_internal.h"

#define MAX_OFFER_LIMIT 8
#define SLOT_COUNT_LIMIT 10000
#define SLOT_MINUTES_LIMIT (24 * 60)

struct relais_ref_provider {
    relais_agent_t *agent;
    ref__emitter_t em;
    char *role;
    char *specialty;
    char *location;
    bool home_visits;
    bool silent;
    int64_t hold_ms;
    size_t max_offer;
    ref_calendar_t cal;
};

/* ---- Replies ------------------------------------------------------------------------ */

static void fill_slot(const relais_ref_provider_t *p, const ref_slot_t *s, Relais__V1__Slot *out)
{
    relais__v1__slot__init(out);
    out->slot_id = (char *)s->id;
    out->start_ms = s->start_ms;
    out->end_ms = s->end_ms;
    out->practitioner = (char *)relais_agent_address(p->agent);
    out->location = p->home_visits ? "patient's home" : p->location;
    out->mode = p->home_visits ? RELAIS__V1__SLOT__MODE__HOME : RELAIS__V1__SLOT__MODE__OFFICE;
}

/* Sends reply to d; on failure reports it and asks the broker to redeliver d later. */
static relais_outcome_t answer(relais_ref_provider_t *p, relais_delivery_t *d,
                               const Relais__V1__Envelope *reply, const char *ref,
                               const char *encounter_id, const char *state)
{
    ref__about_t about = {.ref = ref, .encounter_id = encounter_id, .state = state};
    int rc = ref__submit(&p->em, d->envelope, reply, &about, NULL);
    if (rc == 0) return RELAIS_PROCESSED;
    char why[128];
    snprintf(why, sizeof why, "could not answer %s: %s",
             relais_ref_body_title((int)d->envelope->body_case), relais_strerror(rc));
    ref__emit_notice(&p->em, ref, encounter_id, RELAIS_REF_MS_FAILED, why);
    snprintf(d->reason, sizeof d->reason, "%s", why);
    return RELAIS_RETRY_LATER;
}

static relais_outcome_t decline(relais_ref_provider_t *p, relais_delivery_t *d,
                                const char *request_id,
                                Relais__V1__AppointmentDecline__ReasonCode code, const char *why)
{
    Relais__V1__AppointmentDecline body = RELAIS__V1__APPOINTMENT_DECLINE__INIT;
    body.request_id = (char *)request_id;
    body.reason_code = code;
    body.reason = (char *)why;
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE;
    reply.appointment_decline = &body;
    char state[160];
    snprintf(state, sizeof state, "declined: %s", why);
    return answer(p, d, &reply, request_id, "", state);
}

/* Checks the parts every handler needs: a sender and an id that fit what we keep. */
static bool usable(relais_delivery_t *d, const char *id, char out[RELAIS_REF_ID_MAX],
                   const char *field)
{
    const char *from = ref__sender(d);
    if (from[0] == '\0' || strlen(from) >= RELAIS_ADDRESS_MAX) {
        snprintf(d->reason, sizeof d->reason, "delivery without a usable sender");
        return false;
    }
    if (ref__copy_id(out, RELAIS_REF_ID_MAX, id, true) != 0) {
        snprintf(d->reason, sizeof d->reason, "%s missing or longer than %d bytes", field,
                 RELAIS_REF_ID_MAX - 1);
        return false;
    }
    return true;
}

/* ---- Handlers ----------------------------------------------------------------------- */

static relais_outcome_t on_request(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_provider_t *p = ud;
    const Relais__V1__AppointmentRequest *req = d->envelope->appointment_request;
    char rid[RELAIS_REF_ID_MAX];
    if (!usable(d, req->request_id, rid, "appointment_request.request_id")) {
        return RELAIS_REFUSED;
    }
    char got[RELAIS_ADDRESS_MAX + 48];
    const char *pool = d->envelope->n_to > 0 ? d->envelope->to[0] : "";
    if (d->offered) {
        snprintf(got, sizeof got, "requested, claimed from %s", pool);
    } else {
        snprintf(got, sizeof got, "requested%s", p->silent ? " (silent: will not answer)" : "");
    }
    ref__emit_received(&p->em, d, rid, "", RELAIS_REF_MS_NONE, got);
    if (p->silent) return RELAIS_PROCESSED;

    char why[160];
    if (req->requested_role[0] != '\0' && strcmp(req->requested_role, p->role) != 0) {
        snprintf(why, sizeof why, "this practice is a %s, not a %s", p->role, req->requested_role);
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__OUT_OF_SCOPE, why);
    }
    if (p->specialty[0] != '\0' && req->specialty[0] != '\0' &&
        strcmp(req->specialty, p->specialty) != 0) {
        snprintf(why, sizeof why, "specialty %s only", p->specialty);
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__OUT_OF_SCOPE, why);
    }

    int64_t now = relais_now_ms();
    int64_t not_before = req->window != NULL ? req->window->not_before_ms : 0;
    int64_t due_by = req->window != NULL ? req->window->due_by_ms : 0;
    size_t idx[MAX_OFFER_LIMIT];
    size_t n = ref__calendar_hold(&p->cal, now, ref__sender(d), rid, not_before, due_by,
                                  now + p->hold_ms, p->max_offer, idx);
    if (n == 0) {
        if (ref__calendar_free_count(&p->cal, now) > 0) {
            return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NOT_IN_WINDOW,
                           "no free slot in the requested window");
        }
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NO_CAPACITY,
                       "calendar full");
    }

    Relais__V1__Slot slots[MAX_OFFER_LIMIT];
    Relais__V1__Slot *slot_ptrs[MAX_OFFER_LIMIT];
    for (size_t i = 0; i < n; i++) {
        fill_slot(p, &p->cal.slots[idx[i]], &slots[i]);
        slot_ptrs[i] = &slots[i];
    }
    Relais__V1__AppointmentOffer offer = RELAIS__V1__APPOINTMENT_OFFER__INIT;
    offer.request_id = rid;
    offer.n_slots = n;
    offer.slots = slot_ptrs;
    offer.held_until_ms = now + p->hold_ms;
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER;
    reply.appointment_offer = &offer;

    char first[32], state[128];
    snprintf(state, sizeof state, "offered %zu slot%s from %s", n, n > 1 ? "s" : "",
             ref__format_time(slots[0].start_ms, first));
    relais_outcome_t out = answer(p, d, &reply, rid, "", state);
    if (out != RELAIS_PROCESSED) ref__calendar_cancel(&p->cal, ref__sender(d), rid, "");
    return out;
}

static relais_outcome_t on_book(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_provider_t *p = ud;
    const Relais__V1__AppointmentBook *book = d->envelope->appointment_book;
    char rid[RELAIS_REF_ID_MAX];
    if (!usable(d, book->request_id, rid, "appointment_book.request_id")) return RELAIS_REFUSED;
    const char *slot_id = book->slot != NULL ? book->slot->slot_id : "";

    char state[160];
    snprintf(state, sizeof state, "booking %s", slot_id);
    ref__emit_received(&p->em, d, rid, "", RELAIS_REF_MS_NONE, state);

    size_t i;
    int rc = ref__calendar_book(&p->cal, relais_now_ms(), ref__sender(d), rid, slot_id, &i);
    if (rc == -ENOENT) {
        snprintf(state, sizeof state, "no slot '%.32s' in this calendar", slot_id);
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__OTHER, state);
    }
    if (rc == -EBUSY) {
        snprintf(state, sizeof state, "%s is no longer available", slot_id);
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NO_CAPACITY, state);
    }

    const ref_slot_t *s = &p->cal.slots[i];
    Relais__V1__Slot slot;
    fill_slot(p, s, &slot);
    Relais__V1__AppointmentConfirm confirm = RELAIS__V1__APPOINTMENT_CONFIRM__INIT;
    confirm.request_id = rid;
    confirm.appointment_id = (char *)s->appointment_id;
    confirm.slot = &slot;
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM;
    reply.appointment_confirm = &confirm;
    char when[32];
    snprintf(state, sizeof state, "confirmed %s at %s", s->appointment_id,
             ref__format_time(s->start_ms, when));
    return answer(p, d, &reply, rid, "", state);
}

static relais_outcome_t on_cancel(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_provider_t *p = ud;
    const Relais__V1__AppointmentCancel *c = d->envelope->appointment_cancel;
    const char *from = ref__sender(d);
    size_t freed = ref__calendar_cancel(&p->cal, from, c->request_id, c->appointment_id);
    char state[64];
    snprintf(state, sizeof state, "cancelled, %zu slot%s freed", freed, freed == 1 ? "" : "s");
    ref__emit_received(&p->em, d, c->request_id, "", RELAIS_REF_MS_NONE, state);
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_task(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_provider_t *p = ud;
    const Relais__V1__CareTaskRequest *t = d->envelope->care_task_request;
    char tid[RELAIS_REF_ID_MAX];
    if (!usable(d, t->task_id, tid, "care_task_request.task_id")) return RELAIS_REFUSED;
    const char *encounter = t->encounter_id;
    ref__emit_received(&p->em, d, tid, encounter, RELAIS_REF_MS_NONE, "task requested");

    int64_t now = relais_now_ms();
    int64_t not_before = t->window != NULL ? t->window->not_before_ms : 0;
    int64_t due_by = t->window != NULL ? t->window->due_by_ms : 0;
    size_t i;
    int rc = ref__calendar_take(&p->cal, now, ref__sender(d), tid, not_before, due_by, &i);

    char why[128], when[32], state[160];
    Relais__V1__CareTaskUpdate update = RELAIS__V1__CARE_TASK_UPDATE__INIT;
    update.task_id = tid;
    update.at_ms = now;
    if (rc == 0) {
        const ref_slot_t *s = &p->cal.slots[i];
        update.status = RELAIS__V1__CARE_TASK_UPDATE__STATUS__ACCEPTED;
        snprintf(why, sizeof why, "%s planned %s (%s)",
                 p->home_visits ? "home visit" : "appointment", ref__format_time(s->start_ms, when),
                 s->appointment_id);
        snprintf(state, sizeof state, "accepted, %s", why);
    } else {
        update.status = RELAIS__V1__CARE_TASK_UPDATE__STATUS__REJECTED;
        snprintf(why, sizeof why, "no free slot in the requested window");
        snprintf(state, sizeof state, "rejected: %s", why);
    }
    update.reason = why;
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE;
    reply.care_task_update = &update;
    return answer(p, d, &reply, tid, encounter, state);
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    relais_ref_provider_t *p = ud;
    ref__emit_receipt(&p->em, r);
}

static void on_withdrawn(relais_agent_t *agent, const uint8_t *message_id, const char *reason,
                         void *ud)
{
    relais_ref_provider_t *p = ud;
    ref__emit_withdrawn(&p->em, message_id, reason);
}

/* ---- Life cycle ---------------------------------------------------------------------- */

static int64_t next_whole_hour(void)
{
    const int64_t hour = 3600 * 1000;
    return (relais_now_ms() / hour + 1) * hour;
}

int relais_ref_provider_new(relais_ref_provider_t **out, relais_agent_t *agent,
                            const relais_ref_provider_config_t *cfg)
{
    *out = NULL;
    if (agent == NULL || cfg == NULL || cfg->role == NULL || cfg->role[0] == '\0') {
        return RELAIS_ECONFIG;
    }
    unsigned count = cfg->slot_count != 0 ? cfg->slot_count : 16;
    unsigned minutes = cfg->slot_minutes != 0 ? cfg->slot_minutes : 30;
    if (count > SLOT_COUNT_LIMIT || minutes > SLOT_MINUTES_LIMIT) return RELAIS_ECONFIG;

    relais_ref_provider_t *p = calloc(1, sizeof *p);
    if (p == NULL) return -ENOMEM;
    p->agent = agent;
    p->em = (ref__emitter_t){.fn = cfg->on_event, .ud = cfg->event_ud, .agent = agent};
    p->role = ref__strdup(cfg->role);
    p->specialty = ref__strdup(cfg->specialty);
    p->location = ref__strdup(cfg->location != NULL ? cfg->location : "cabinet");
    p->home_visits = cfg->home_visits;
    p->silent = cfg->silent;
    p->hold_ms = cfg->hold_ms != 0 ? cfg->hold_ms : 10 * 60 * 1000;
    p->max_offer = cfg->max_offer == 0 ? 3 : cfg->max_offer;
    if (p->max_offer > MAX_OFFER_LIMIT) p->max_offer = MAX_OFFER_LIMIT;

    int rc = -ENOMEM;
    if (p->role == NULL || p->specialty == NULL || p->location == NULL) goto err;
    int64_t first = cfg->first_slot_ms != 0 ? cfg->first_slot_ms : next_whole_hour();
    rc = ref__calendar_init(&p->cal, count, first, (int64_t)minutes * 60 * 1000);
    if (rc != 0) goto err;

    static const int cases[] = {
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL,
        RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST,
    };
    static const relais_handler_fn fns[] = {on_request, on_book, on_cancel, on_task};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        rc = relais_agent_on(agent, cases[i], fns[i], p);
        if (rc != 0) goto err;
    }
    relais_agent_on_receipt(agent, on_receipt, p);
    relais_agent_on_withdrawn(agent, on_withdrawn, p);
    *out = p;
    return 0;

err:
    relais_ref_provider_destroy(&p);
    return rc;
}

void relais_ref_provider_destroy(relais_ref_provider_t **pp)
{
    if (pp == NULL || *pp == NULL) return;
    relais_ref_provider_t *p = *pp;
    ref__calendar_free(&p->cal);
    free(p->role);
    free(p->specialty);
    free(p->location);
    free(p);
    *pp = NULL;
}

unsigned relais_ref_provider_free_slots(const relais_ref_provider_t *p)
{
    return (unsigned)ref__calendar_free_count(&p->cal, relais_now_ms());
}
