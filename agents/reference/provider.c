/*
 * The provider role: a nurse, physiotherapist or specialist answering requests from its
 * slot calendar. AppointmentRequest gets an offer of up to max_offer free slots, a place
 * in each held for hold_ms so that two requesters are never offered the same place at
 * once, or a decline saying why (out of scope, nothing in the window, no capacity, or busy:
 * refused at decline_rate although there was room). AppointmentBook confirms the chosen
 * slot if one of its places is still free or held for that request; AppointmentCancel frees
 * it. CareTaskRequest books a place directly (a nurse's home visit) and answers ACCEPTED,
 * or REJECTED when nothing is free in the task's window (or when busy). Every answer is a
 * reply in the request's conversation. With report_outcomes, the end of each booked slot
 * is reported in its conversation: AppointmentOutcome FULFILLED or NOSHOW, CareTaskUpdate
 * COMPLETED or FAILED. One business-time timer, armed for the earliest report due, serves
 * them all, and rebinding to a new agent re-arms it. A request offered by a pool is
 * claimed by the SDK's default policy and then handled like any other; a silent provider
 * (a demonstration of deadlines) acknowledges appointment requests and never answers.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "calendar.h"
#include "ref_internal.h"

#define MAX_OFFER_LIMIT 8
#define SLOT_MINUTES_LIMIT (24 * 60)
#define CAPACITY_LIMIT 100
#define HORIZON_DAYS_LIMIT 366
#define DEFAULT_HOURS "08:00-12:00,14:00-18:00"
#define RETRY_REAL_MS 1000 /* after an outcome could not be queued (state file full…) */
#define BUSY_REASON "busy: the practice cannot take this request at the moment"

struct relais_ref_provider {
    relais_agent_t *agent;
    ref__emitter_t em;
    char *role;
    char *specialty;
    char *location;
    bool home_visits;
    bool silent;
    bool report_outcomes;
    int64_t hold_ms;
    size_t max_offer;
    double decline_rate;
    double no_show_rate;
    uint64_t seed;
    ref_calendar_t cal;
    ref_calendar_spec_t spec; /* its working hours: answers take working time */
    int64_t answer_median_ms;
    double answer_sigma;
    bool decline_by_load;
    ref__later_t *later; /* requests acknowledged, to be answered after their delay */
    bool replaying; /* a handler runs again for a request it deferred */
    uint64_t timer_id;   /* the outcome timer on agent, 0 when none is armed */
    int64_t timer_at_ms; /* the business time it was armed for */
    relais_ref_provider_stats_t stats;
};

/* ---- Keyed draws -------------------------------------------------------------------- */

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9E3779B97F4A7C15ULL;
    x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ULL;
    x = (x ^ (x >> 27)) * 0x94D049BB133111EBULL;
    return x ^ (x >> 31);
}

/* FNV-1a over s and its NUL, so that ("ab", "c") and ("a", "bc") differ. */
static uint64_t fnv1a(uint64_t h, const char *s)
{
    const unsigned char *c = (const unsigned char *)s;
    do {
        h ^= *c;
        h *= 0x100000001B3ULL;
    } while (*c++ != '\0');
    return h;
}

/*
 * Whether the event `what` about (holder, id, salt) happens at rate. A counter-based draw
 * (splitmix64 of the seed and a hash of the key) rather than a stream: the answer does not
 * depend on the order requests arrive in, and a redelivered request gets the same one.
 */
static bool draw(const relais_ref_provider_t *p, const char *what, const char *holder,
                 const char *id, int64_t salt, double rate)
{
    if (rate <= 0.0) return false;
    if (rate >= 1.0) return true;
    uint64_t h = fnv1a(fnv1a(fnv1a(0xCBF29CE484222325ULL, what), holder), id);
    uint64_t x = splitmix64(p->seed ^ splitmix64(h ^ (uint64_t)salt));
    return (double)(x >> 11) * 0x1.0p-53 < rate;
}

/* A uniform number in [0, 1) keyed like draw(). */
static double keyed_unit(const relais_ref_provider_t *p, const char *what, const char *holder,
                         const char *id)
{
    uint64_t h = fnv1a(fnv1a(fnv1a(0xCBF29CE484222325ULL, what), holder), id);
    return (double)(splitmix64(p->seed ^ splitmix64(h)) >> 11) * 0x1.0p-53;
}

/* The busy-decline rate now: fixed, or following the calendar's load. */
static double busy_rate(const relais_ref_provider_t *p, int64_t now)
{
    if (!p->decline_by_load) return p->decline_rate;
    double rate = p->decline_rate * ref__calendar_load(&p->cal, now, now + 14 * 86400000LL) / 0.5;
    return rate < 1.0 ? rate : 1.0;
}

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
    relais_outcome_t out = answer(p, d, &reply, request_id, "", state);
    if (out == RELAIS_PROCESSED) p->stats.declines++;
    return out;
}

/* The calendar could not keep a new requester's address: try again later. */
static relais_outcome_t out_of_memory(relais_ref_provider_t *p, relais_delivery_t *d,
                                      const char *ref, const char *encounter_id)
{
    snprintf(d->reason, sizeof d->reason, "out of memory");
    ref__emit_notice(&p->em, ref, encounter_id, RELAIS_REF_MS_FAILED,
                     "could not answer: out of memory");
    return RELAIS_RETRY_LATER;
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

/* ---- Outcomes ----------------------------------------------------------------------- */

static void arm_outcomes(relais_ref_provider_t *p, bool retry);

/* Sends the report of place pl (whose slot has ended) in its conversation. 0 or the
 * error of ref__submit(). */
static int send_outcome(relais_ref_provider_t *p, ref_place_t *pl)
{
    const ref_slot_t *s = ref__calendar_slot_of(&p->cal, (size_t)(pl - p->cal.places));
    const char *holder = ref__calendar_holder(&p->cal, pl);
    bool absent = draw(p, "no-show", holder, pl->request_id, s->start_ms, p->no_show_rate);
    char *to[1] = {(char *)holder};
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.to = to;
    env.n_to = 1;
    env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, pl->conversation_id};
    env.in_reply_to = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, pl->reply_to};

    char when[32], summary[96], state[160];
    ref__format_time(s->start_ms, when);
    Relais__V1__AppointmentOutcome outcome = RELAIS__V1__APPOINTMENT_OUTCOME__INIT;
    Relais__V1__CareTaskUpdate update = RELAIS__V1__CARE_TASK_UPDATE__INIT;
    if (pl->task) {
        update.task_id = pl->request_id;
        update.status = absent ? RELAIS__V1__CARE_TASK_UPDATE__STATUS__FAILED
                               : RELAIS__V1__CARE_TASK_UPDATE__STATUS__COMPLETED;
        snprintf(summary, sizeof summary, "%s", absent ? "patient absent" : "done");
        update.reason = summary;
        update.at_ms = s->end_ms;
        env.body_case = RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE;
        env.care_task_update = &update;
        snprintf(state, sizeof state, "task %s (%s at %s)", absent ? "failed" : "completed",
                 pl->appointment_id, when);
    } else {
        outcome.request_id = pl->request_id;
        outcome.appointment_id = pl->appointment_id;
        outcome.outcome = absent ? RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__NOSHOW
                                 : RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED;
        snprintf(summary, sizeof summary, "%s %s",
                 absent ? "the patient did not come on" : "seen on", when);
        outcome.summary = summary;
        env.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME;
        env.appointment_outcome = &outcome;
        snprintf(state, sizeof state, "%s %s at %s", absent ? "no-show" : "fulfilled",
                 pl->appointment_id, when);
    }
    ref__about_t about = {.ref = pl->request_id, .encounter_id = "", .state = state};
    int rc = ref__submit(&p->em, NULL, &env, &about, NULL);
    if (rc != 0) return rc;
    pl->outcome = REF_OUTCOME_SENT;
    p->stats.outcomes++;
    if (absent) p->stats.no_shows++;
    return 0;
}

/* Sends every report due at now. True when one failed for a reason that may pass. */
static bool report_due(relais_ref_provider_t *p)
{
    int64_t now = relais_now_ms();
    bool retry = false;
    for (size_t i = 0; i < p->cal.n * p->cal.capacity; i++) {
        ref_place_t *pl = &p->cal.places[i];
        if (pl->outcome != REF_OUTCOME_DUE || ref__calendar_slot_of(&p->cal, i)->end_ms > now) {
            continue;
        }
        int rc = send_outcome(p, pl);
        if (rc == 0) continue;
        if (rc == RELAIS_ECLOSED) return false; /* stopping: a rebind sends it */
        char why[160];
        snprintf(why, sizeof why, "could not report %s: %s", pl->appointment_id,
                 relais_strerror(rc));
        ref__emit_notice(&p->em, pl->request_id, "", RELAIS_REF_MS_FAILED, why);
        if (rc == RELAIS_EINVALID || rc == RELAIS_ETOOLARGE) {
            pl->outcome = REF_OUTCOME_NONE; /* would fail forever */
        } else {
            retry = true;
        }
    }
    return retry;
}

static void on_outcome_timer(relais_agent_t *agent, void *ud)
{
    relais_ref_provider_t *p = ud;
    p->timer_id = 0;
    arm_outcomes(p, report_due(p));
}

/*
 * Arms the timer for the earliest report due, unless one is armed early enough. Slots are
 * in business time, the timer in real time. retry: not sooner than RETRY_REAL_MS.
 */
static void arm_outcomes(relais_ref_provider_t *p, bool retry)
{
    int64_t next = INT64_MAX;
    for (size_t i = 0; i < p->cal.n * p->cal.capacity; i++) {
        if (p->cal.places[i].outcome != REF_OUTCOME_DUE) continue;
        int64_t end = ref__calendar_slot_of(&p->cal, i)->end_ms;
        if (end < next) next = end;
    }
    if (next == INT64_MAX) return;
    if (p->timer_id != 0) {
        if (p->timer_at_ms <= next) return;
        relais_agent_timer_cancel(p->agent, p->timer_id);
        p->timer_id = 0;
    }
    int64_t delay = relais_clock_real_delay_ms(next - relais_now_ms());
    if (retry && delay < RETRY_REAL_MS) delay = RETRY_REAL_MS;
    uint64_t id = 0;
    if (relais_agent_timer(p->agent, (uint64_t)delay, on_outcome_timer, p, &id) == 0) {
        p->timer_id = id;
        p->timer_at_ms = next;
    } /* else the agent is closing: relais_ref_provider_rebind() arms it again */
}

/* Remembers where the report of a fresh booking goes: the conversation of d, in reply to d. */
static void expect_outcome(relais_ref_provider_t *p, ref_place_t *pl, const relais_delivery_t *d,
                           bool task)
{
    if (pl->outcome != REF_OUTCOME_NONE) return; /* a repeat: already planned or sent */
    const Relais__V1__Envelope *env = d->envelope;
    const ProtobufCBinaryData *conv = env->conversation_id.len == RELAIS_MESSAGE_ID_LEN
                                          ? &env->conversation_id
                                          : &env->message_id;
    if (conv->len != RELAIS_MESSAGE_ID_LEN || env->message_id.len != RELAIS_MESSAGE_ID_LEN) return;
    memcpy(pl->conversation_id, conv->data, RELAIS_MESSAGE_ID_LEN);
    memcpy(pl->reply_to, env->message_id.data, RELAIS_MESSAGE_ID_LEN);
    pl->task = task;
    if (!p->report_outcomes) return;
    pl->outcome = REF_OUTCOME_DUE;
    arm_outcomes(p, false);
}

/* ---- Answers that take working time ------------------------------------------------ */

static relais_outcome_t on_request(relais_agent_t *agent, relais_delivery_t *d, void *ud);
static relais_outcome_t on_task(relais_agent_t *agent, relais_delivery_t *d, void *ud);
static void arm_later(relais_ref_provider_t *p, ref__later_t *l);

/* The request's answer is due: its handler runs again on the stored copy. */
static void on_later_timer(relais_agent_t *agent, void *ud)
{
    ref__later_t *l = ud;
    relais_ref_provider_t *p = l->owner;
    l->timer_id = 0;
    if (relais_now_ms() < l->at_ms) { /* early (the loop's clock is not business time) */
        arm_later(p, l);
        return;
    }
    Relais__V1__Envelope *env = relais__v1__envelope__unpack(NULL, l->len, l->bytes);
    relais_outcome_t out = RELAIS_PROCESSED;
    if (env != NULL) {
        relais_delivery_t d = {.envelope = env, .attempt = 1, .offered = l->offered};
        p->replaying = true;
        out = env->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST
                  ? on_task(agent, &d, p)
                  : on_request(agent, &d, p);
        p->replaying = false;
        relais__v1__envelope__free_unpacked(env, NULL);
    }
    if (out == RELAIS_RETRY_LATER) { /* could not send: an hour later */
        l->at_ms = relais_now_ms() + 3600 * 1000LL;
        arm_later(p, l);
        return;
    }
    ref__later_remove(&p->later, l);
}

static void arm_later(relais_ref_provider_t *p, ref__later_t *l)
{
    int64_t delay = relais_clock_real_delay_ms(l->at_ms - relais_now_ms());
    if (relais_agent_timer(p->agent, (uint64_t)delay, on_later_timer, l, &l->timer_id) != 0)
        l->timer_id = 0; /* closing: relais_ref_provider_rebind() arms it again */
}

/* Acknowledges d now and keeps a copy to answer once its delay of working time ends. */
static relais_outcome_t defer(relais_ref_provider_t *p, relais_delivery_t *d, const char *id)
{
    double u1 = keyed_unit(p, "delay-1", ref__sender(d), id);
    double u2 = keyed_unit(p, "delay-2", ref__sender(d), id);
    int64_t work = ref__lognormal_ms(p->answer_median_ms, p->answer_sigma, u1, u2);
    int64_t at = ref__working_time_add(&p->spec, relais_now_ms(), work);
    ref__later_t *l = ref__later_add(&p->later, d->envelope, at, d->offered, p);
    if (l == NULL) return out_of_memory(p, d, id, "");
    p->stats.deferred++;
    arm_later(p, l);
    return RELAIS_PROCESSED;
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
    if (!p->replaying) {
        ref__emit_received(&p->em, d, rid, "", RELAIS_REF_MS_NONE, got);
        p->stats.requests++;
        if (p->silent) return RELAIS_PROCESSED;
        if (p->answer_median_ms > 0) return defer(p, d, rid);
    }

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
    const char *from = ref__sender(d);
    size_t idx[MAX_OFFER_LIMIT];
    int held = ref__calendar_hold(&p->cal, now, from, rid, not_before, due_by, now + p->hold_ms,
                                  p->max_offer, idx);
    if (held < 0) return out_of_memory(p, d, rid, "");
    size_t n = (size_t)held;
    if (n == 0) {
        if (ref__calendar_free_count(&p->cal, now) > 0) {
            return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NOT_IN_WINDOW,
                           "no free slot in the requested window");
        }
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NO_CAPACITY,
                       "calendar full");
    }
    if (draw(p, "decline", from, rid, 0, busy_rate(p, now))) {
        ref__calendar_release_holds(&p->cal, from, rid);
        relais_outcome_t out = decline(
            p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NO_CAPACITY, BUSY_REASON);
        if (out == RELAIS_PROCESSED) p->stats.busy_declines++;
        return out;
    }

    Relais__V1__Slot slots[MAX_OFFER_LIMIT];
    Relais__V1__Slot *slot_ptrs[MAX_OFFER_LIMIT];
    for (size_t i = 0; i < n; i++) {
        fill_slot(p, ref__calendar_slot_of(&p->cal, idx[i]), &slots[i]);
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
    if (out == RELAIS_PROCESSED) {
        p->stats.offers++;
    } else {
        ref__calendar_release_holds(&p->cal, from, rid);
    }
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
    p->stats.books++;

    size_t i;
    int rc = ref__calendar_book(&p->cal, relais_now_ms(), ref__sender(d), rid, slot_id, &i);
    if (rc == -ENOMEM) return out_of_memory(p, d, rid, "");
    if (rc == -ENOENT) {
        snprintf(state, sizeof state, "no slot '%.32s' in this calendar", slot_id);
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__OTHER, state);
    }
    if (rc == -EBUSY) {
        snprintf(state, sizeof state, "%s is no longer available", slot_id);
        return decline(p, d, rid, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NO_CAPACITY, state);
    }

    ref_place_t *pl = &p->cal.places[i];
    const ref_slot_t *s = ref__calendar_slot_of(&p->cal, i);
    Relais__V1__Slot slot;
    fill_slot(p, s, &slot);
    Relais__V1__AppointmentConfirm confirm = RELAIS__V1__APPOINTMENT_CONFIRM__INIT;
    confirm.request_id = rid;
    confirm.appointment_id = pl->appointment_id;
    confirm.slot = &slot;
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM;
    reply.appointment_confirm = &confirm;
    char when[32];
    snprintf(state, sizeof state, "confirmed %s at %s", pl->appointment_id,
             ref__format_time(s->start_ms, when));
    relais_outcome_t out = answer(p, d, &reply, rid, "", state);
    if (out == RELAIS_PROCESSED) {
        p->stats.confirmed++;
        expect_outcome(p, pl, d, false);
    }
    return out;
}

static relais_outcome_t on_cancel(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_provider_t *p = ud;
    const Relais__V1__AppointmentCancel *c = d->envelope->appointment_cancel;
    const char *from = ref__sender(d);
    size_t freed = ref__calendar_cancel(&p->cal, from, c->request_id, c->appointment_id);
    if (freed > 0) p->stats.cancelled++;
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
    if (!p->replaying) {
        ref__emit_received(&p->em, d, tid, encounter, RELAIS_REF_MS_NONE, "task requested");
        p->stats.tasks++;
        if (p->answer_median_ms > 0) return defer(p, d, tid);
    }

    int64_t now = relais_now_ms();
    int64_t not_before = t->window != NULL ? t->window->not_before_ms : 0;
    int64_t due_by = t->window != NULL ? t->window->due_by_ms : 0;
    const char *from = ref__sender(d);
    size_t i;
    int rc = ref__calendar_take(&p->cal, now, from, tid, not_before, due_by, &i);
    if (rc == -ENOMEM) return out_of_memory(p, d, tid, encounter);
    bool busy = rc == 0 && draw(p, "decline", from, tid, 0, busy_rate(p, now));
    if (busy) ref__calendar_release(&p->cal, i);

    char why[128], when[32], state[160];
    Relais__V1__CareTaskUpdate update = RELAIS__V1__CARE_TASK_UPDATE__INIT;
    update.task_id = tid;
    update.at_ms = now;
    if (rc == 0 && !busy) {
        const ref_place_t *pl = &p->cal.places[i];
        update.status = RELAIS__V1__CARE_TASK_UPDATE__STATUS__ACCEPTED;
        snprintf(why, sizeof why, "%s planned %s (%s)",
                 p->home_visits ? "home visit" : "appointment",
                 ref__format_time(ref__calendar_slot_of(&p->cal, i)->start_ms, when),
                 pl->appointment_id);
        snprintf(state, sizeof state, "accepted, %s", why);
    } else {
        update.status = RELAIS__V1__CARE_TASK_UPDATE__STATUS__REJECTED;
        snprintf(why, sizeof why, "%s",
                 busy ? BUSY_REASON : "no free slot in the requested window");
        snprintf(state, sizeof state, "rejected: %s", why);
    }
    update.reason = why;
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE;
    reply.care_task_update = &update;
    relais_outcome_t out = answer(p, d, &reply, tid, encounter, state);
    if (out != RELAIS_PROCESSED) return out;
    if (rc == 0 && !busy) {
        p->stats.tasks_accepted++;
        expect_outcome(p, &p->cal.places[i], d, true);
    } else {
        p->stats.tasks_rejected++;
    }
    return out;
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

/* Registers the handlers and callbacks of p on agent. */
static int attach(relais_ref_provider_t *p, relais_agent_t *agent)
{
    static const int cases[] = {
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL,
        RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST,
    };
    static const relais_handler_fn fns[] = {on_request, on_book, on_cancel, on_task};
    p->agent = agent;
    p->em.agent = agent;
    p->timer_id = 0; /* a previous agent's timer went with it */
    p->timer_at_ms = 0;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = relais_agent_on(agent, cases[i], fns[i], p);
        if (rc != 0) return rc;
    }
    relais_agent_on_receipt(agent, on_receipt, p);
    relais_agent_on_withdrawn(agent, on_withdrawn, p);
    return 0;
}

static bool rate_ok(double r)
{
    return r >= 0.0 && r <= 1.0; /* false for NaN too */
}

/* The calendar cfg describes, in spec. 0 or RELAIS_ECONFIG. */
static int calendar_spec(const relais_ref_provider_config_t *cfg, ref_calendar_spec_t *spec)
{
    unsigned minutes = cfg->slot_minutes != 0 ? cfg->slot_minutes : 30;
    unsigned capacity = cfg->capacity != 0 ? cfg->capacity : 1;
    if (minutes > SLOT_MINUTES_LIMIT || capacity > CAPACITY_LIMIT ||
        cfg->horizon_days > HORIZON_DAYS_LIMIT || (cfg->work_days & 0x80) != 0) {
        return RELAIS_ECONFIG;
    }
    *spec = (ref_calendar_spec_t){
        .slot_ms = (int64_t)minutes * 60 * 1000,
        .capacity = capacity,
        .count = cfg->slot_count != 0 ? cfg->slot_count : 16,
        .horizon_days = cfg->horizon_days,
        .work_days = cfg->work_days != 0 ? cfg->work_days : 0x1f,
    };
    const char *hours = cfg->hours != NULL && cfg->hours[0] != '\0' ? cfg->hours : DEFAULT_HOURS;
    char why[96];
    if (ref__hours_parse(hours, spec->hours, &spec->n_hours, why, sizeof why) != 0) {
        return RELAIS_ECONFIG;
    }
    if (cfg->horizon_days != 0) {
        spec->from_ms = cfg->first_slot_ms != 0 ? cfg->first_slot_ms : relais_now_ms();
    } else {
        spec->from_ms = cfg->first_slot_ms != 0 ? cfg->first_slot_ms : next_whole_hour();
    }
    return 0;
}

int relais_ref_provider_new(relais_ref_provider_t **out, relais_agent_t *agent,
                            const relais_ref_provider_config_t *cfg)
{
    *out = NULL;
    if (agent == NULL || cfg == NULL || cfg->role == NULL || cfg->role[0] == '\0' ||
        !rate_ok(cfg->decline_rate) || !rate_ok(cfg->no_show_rate)) {
        return RELAIS_ECONFIG;
    }
    ref_calendar_spec_t spec;
    int rc = calendar_spec(cfg, &spec);
    if (rc != 0) return rc;

    relais_ref_provider_t *p = calloc(1, sizeof *p);
    if (p == NULL) return -ENOMEM;
    p->em = (ref__emitter_t){.fn = cfg->on_event, .ud = cfg->event_ud, .agent = agent};
    p->role = ref__strdup(cfg->role);
    p->specialty = ref__strdup(cfg->specialty);
    p->location = ref__strdup(cfg->location != NULL ? cfg->location : "cabinet");
    p->home_visits = cfg->home_visits;
    p->silent = cfg->silent;
    p->report_outcomes = cfg->report_outcomes;
    p->hold_ms = cfg->hold_ms != 0 ? cfg->hold_ms : 10 * 60 * 1000;
    p->max_offer = cfg->max_offer == 0 ? 3 : cfg->max_offer;
    if (p->max_offer > MAX_OFFER_LIMIT) p->max_offer = MAX_OFFER_LIMIT;
    p->decline_rate = cfg->decline_rate;
    p->no_show_rate = cfg->no_show_rate;
    p->spec = spec;
    p->answer_median_ms = cfg->answer_median_ms > 0 ? cfg->answer_median_ms : 0;
    p->answer_sigma = cfg->answer_sigma > 0 ? cfg->answer_sigma : 1.0;
    p->decline_by_load = cfg->decline_by_load;
    p->seed = cfg->seed != 0
                  ? cfg->seed
                  : splitmix64(fnv1a(0xCBF29CE484222325ULL, relais_agent_address(agent)));

    rc = -ENOMEM;
    if (p->role == NULL || p->specialty == NULL || p->location == NULL) goto err;
    rc = ref__calendar_init(&p->cal, &spec);
    if (rc != 0) goto err;
    rc = attach(p, agent);
    if (rc != 0) goto err;
    *out = p;
    return 0;

err:
    relais_ref_provider_destroy(&p);
    return rc;
}

int relais_ref_provider_rebind(relais_ref_provider_t *p, relais_agent_t *agent)
{
    if (p == NULL || agent == NULL) return RELAIS_EINVALID;
    int rc = attach(p, agent);
    if (rc != 0) return rc;
    if (p->report_outcomes) arm_outcomes(p, false);
    for (ref__later_t *l = p->later; l != NULL; l = l->next) arm_later(p, l);
    return 0;
}

void relais_ref_provider_destroy(relais_ref_provider_t **pp)
{
    if (pp == NULL || *pp == NULL) return;
    relais_ref_provider_t *p = *pp;
    ref__calendar_free(&p->cal);
    ref__later_free_all(&p->later);
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

void relais_ref_provider_stats(const relais_ref_provider_t *p, relais_ref_provider_stats_t *out)
{
    *out = p->stats;
}
