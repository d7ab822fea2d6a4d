/*
 * The facility role: an SMR, EHPAD, HAD or surgery unit answering preadmission requests.
 * PreadmissionRequest gets a PreadmissionDecision — ACCEPTED with an admission date (a bed
 * is then held for the request), WAITLISTED or REFUSED with a reason — drawn from the
 * configured rates by a seeded generator, so that a simulation replays the same decisions,
 * and bounded by the beds. PreadmissionChoice books the held bed (or a freed one, for a
 * waitlisted request) and sends AdmissionNotice at the admission date, a business time;
 * PreadmissionCancel frees the bed or the waiting-list place, and a freed bed goes to the
 * oldest waiting request (a new ACCEPTED decision, or the admission if it was chosen).
 * Answers given in a handler are replies; later ones (after the decision delay, at the
 * admission date, on a promotion) are sent in the request's conversation, to the
 * requester, naming the request in in_reply_to.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ref_internal.h"
#include "refconfig.h"

#define CAPACITY_LIMIT 100000u
#define DELAY_LIMIT_MS (30LL * 24 * 3600 * 1000)
#define DEFAULT_INSTRUCTIONS "Bring the discharge letter, current prescriptions and identity card."

typedef enum entry_state {
    E_DECIDING,       /* the decision delay runs */
    E_ACCEPTED,       /* a bed is held until the choice or a cancel */
    E_WAITLISTED,     /* waiting for a bed */
    E_REFUSED,        /* kept only to answer a repeated request the same way */
    E_CHOSEN,         /* bed booked, admission notice due at admission_ms */
    E_CHOSEN_WAITING, /* chosen while waitlisted: admitted when a bed frees */
    E_ADMITTED,       /* the patient occupies the bed */
} entry_state_t;

/* One preadmission request, known by its requester and request id. */
typedef struct entry {
    struct entry *next;
    relais_ref_facility_t *f;
    entry_state_t state;
    Relais__V1__PreadmissionRequest__FacilityKind kind;
    char request_id[RELAIS_REF_ID_MAX];
    char requester[RELAIS_ADDRESS_MAX];
    uint8_t conversation_id[RELAIS_MESSAGE_ID_LEN];
    uint8_t request_message_id[RELAIS_MESSAGE_ID_LEN];
    bool has_request_message_id;
    int64_t expected_ms;
    int64_t admission_ms;
    uint8_t *patient; /* the request's PatientRef, packed (NULL: none) */
    size_t patient_len;
    bool timer_armed;
    uint64_t timer_id;
    int64_t decide_at_ms; /* E_DECIDING: when the decision is due (business time) */
    char reason[128];     /* of the last decision */
} entry_t;

struct relais_ref_facility {
    relais_agent_t *agent;
    ref__emitter_t em;
    Relais__V1__PreadmissionRequest__FacilityKind kind;
    unsigned capacity;
    double accept_rate;
    double waitlist_rate;
    uint64_t rng;
    int64_t decision_delay_ms;
    char *facility; /* NULL: the agent's address */
    char *instructions;
    entry_t *head, *tail; /* oldest first: the waiting list's order */
    bool receipts;        /* its receipts are reported (not cfg->no_receipts) */
    unsigned beds_used;
    relais_ref_facility_stats_t stats;
};

static const char *const kind_names[] = {"", "SMR", "EHPAD", "HAD", "surgery"};

static const char *kind_name(Relais__V1__PreadmissionRequest__FacilityKind k)
{
    return (unsigned)k < sizeof kind_names / sizeof kind_names[0] ? kind_names[k] : "?";
}

/* ---- Draws: splitmix64, so a seed replays the same decisions on every platform ----------- */

static double draw(relais_ref_facility_t *f)
{
    uint64_t z = (f->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1.0p-53; /* [0, 1) */
}

/* ---- Entries ------------------------------------------------------------------------------ */

static bool holds_bed(entry_state_t s)
{
    return s == E_ACCEPTED || s == E_CHOSEN || s == E_ADMITTED;
}

static entry_t *find(relais_ref_facility_t *f, const char *requester, const char *request_id)
{
    for (entry_t *e = f->head; e != NULL; e = e->next) {
        if (strcmp(e->requester, requester) == 0 && strcmp(e->request_id, request_id) == 0)
            return e;
    }
    return NULL;
}

/* Unlinks and frees e, cancelling its timer and freeing its bed. */
static void drop(relais_ref_facility_t *f, entry_t *e)
{
    if (e->timer_armed) relais_agent_timer_cancel(f->agent, e->timer_id);
    if (holds_bed(e->state)) f->beds_used--;
    entry_t **pp = &f->head, *prev = NULL;
    while (*pp != e) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    *pp = e->next;
    if (f->tail == e) f->tail = prev;
    free(e->patient);
    free(e);
}

static int64_t admission_date(const entry_t *e)
{
    int64_t now = relais_now_ms();
    return e->expected_ms > now ? e->expected_ms : now;
}

/* ---- Sending --------------------------------------------------------------------------- */

/*
 * Sends env about e: as a reply to d when given (in a handler), else in e's conversation to
 * its requester. 0 or ref__submit()'s error.
 */
static int send_about(relais_ref_facility_t *f, entry_t *e, const relais_delivery_t *d,
                      Relais__V1__Envelope *env, const char *state)
{
    ref__about_t about = {.ref = e->request_id, .encounter_id = "", .state = state};
    if (d != NULL) return ref__submit(&f->em, d->envelope, env, &about, NULL);
    char *rcpt[1] = {e->requester};
    env->n_to = 1;
    env->to = rcpt;
    env->conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, e->conversation_id};
    if (e->has_request_message_id)
        env->in_reply_to = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, e->request_message_id};
    return ref__submit(&f->em, NULL, env, &about, NULL);
}

static void report_failure(relais_ref_facility_t *f, const entry_t *e, const char *what, int rc)
{
    char why[160];
    snprintf(why, sizeof why, "could not send %s: %s", what, relais_strerror(rc));
    ref__emit_notice(&f->em, e->request_id, "", RELAIS_REF_MS_FAILED, why);
}

/* Sends the decision e's state stands for (ACCEPTED, WAITLISTED or REFUSED). */
static int send_decision(relais_ref_facility_t *f, entry_t *e, const relais_delivery_t *d)
{
    Relais__V1__PreadmissionDecision body = RELAIS__V1__PREADMISSION_DECISION__INIT;
    body.request_id = e->request_id;
    body.reason = e->reason;
    char state[200], when[32];
    switch (e->state) {
    case E_ACCEPTED:
        body.decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED;
        body.admission_date_ms = e->admission_ms;
        body.instructions = f->instructions;
        snprintf(state, sizeof state, "accepted, admission %s",
                 ref__format_time(e->admission_ms, when));
        break;
    case E_WAITLISTED:
        body.decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__WAITLISTED;
        snprintf(state, sizeof state, "waitlisted: %s", e->reason);
        break;
    default:
        body.decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED;
        snprintf(state, sizeof state, "refused: %s", e->reason);
        break;
    }
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION;
    env.preadmission_decision = &body;
    return send_about(f, e, d, &env, state);
}

static int send_admission(relais_ref_facility_t *f, entry_t *e, const relais_delivery_t *d)
{
    Relais__V1__PatientRef *patient = NULL;
    if (e->patient != NULL) {
        patient = relais__v1__patient_ref__unpack(NULL, e->patient_len, e->patient);
        if (patient == NULL) return -ENOMEM; /* it was packed by us: only memory can fail */
    }
    char encounter[RELAIS_REF_ID_MAX];
    snprintf(encounter, sizeof encounter, "adm-%.58s", e->request_id);
    Relais__V1__AdmissionNotice body = RELAIS__V1__ADMISSION_NOTICE__INIT;
    body.request_id = e->request_id;
    body.patient = patient;
    body.facility = f->facility != NULL ? f->facility : (char *)relais_agent_address(f->agent);
    body.encounter_id = encounter;
    body.admitted_at_ms = relais_now_ms();
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE;
    env.admission_notice = &body;
    int rc = send_about(f, e, d, &env, "admitted");
    if (patient != NULL) relais__v1__patient_ref__free_unpacked(patient, NULL);
    if (rc == 0) {
        e->state = E_ADMITTED;
        f->stats.admitted++;
    }
    return rc;
}

/* ---- Decisions and admissions ------------------------------------------------------------ */

/* Decides e (state and reason; a held bed when accepted). Draws from the generator. */
static void decide(relais_ref_facility_t *f, entry_t *e)
{
    if (e->kind != RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__FACILITY_KIND_UNSPECIFIED &&
        e->kind != f->kind) {
        e->state = E_REFUSED;
        snprintf(e->reason, sizeof e->reason, "this facility takes %s admissions, not %s",
                 kind_name(f->kind), kind_name(e->kind));
        return;
    }
    bool would_take = draw(f) < f->accept_rate;
    bool bed = f->beds_used < f->capacity;
    if (would_take && bed) {
        e->state = E_ACCEPTED;
        e->admission_ms = admission_date(e);
        f->beds_used++;
        snprintf(e->reason, sizeof e->reason, "a bed is held for the admission date");
        return;
    }
    bool waitlist = draw(f) < f->waitlist_rate;
    e->state = waitlist ? E_WAITLISTED : E_REFUSED;
    snprintf(e->reason, sizeof e->reason, "%s%s", would_take ? "no bed free" : "under review",
             waitlist ? ": on the waiting list" : "");
    if (!would_take && !waitlist) {
        snprintf(e->reason, sizeof e->reason, "admission criteria not met");
    }
}

static void count_decision(relais_ref_facility_t *f, const entry_t *e)
{
    if (e->state == E_ACCEPTED) f->stats.accepted++;
    if (e->state == E_WAITLISTED) f->stats.waitlisted++;
    if (e->state == E_REFUSED) f->stats.refused++;
}

static void decide_later(relais_agent_t *agent, void *ud)
{
    entry_t *e = ud;
    relais_ref_facility_t *f = e->f;
    e->timer_armed = false;
    decide(f, e);
    int rc = send_decision(f, e, NULL);
    if (rc != 0) {
        report_failure(f, e, "PreadmissionDecision", rc);
        drop(f, e); /* forgotten: the requester's deadline will say so */
        return;
    }
    count_decision(f, e);
}

static void admit_later(relais_agent_t *agent, void *ud)
{
    entry_t *e = ud;
    e->timer_armed = false;
    /* A loop's cached time can fire a timer a millisecond early, which a compressed clock
     * turns into seconds of business time: never admit before the date. */
    int64_t left = e->admission_ms - relais_now_ms();
    if (left > 0) {
        uint64_t delay = (uint64_t)relais_clock_real_delay_ms(left);
        if (relais_agent_timer(agent, delay > 0 ? delay : 1, admit_later, e, &e->timer_id) == 0) {
            e->timer_armed = true;
            return;
        }
    }
    int rc = send_admission(e->f, e, NULL);
    if (rc != 0) report_failure(e->f, e, "AdmissionNotice", rc);
}

/*
 * Arranges the admission notice of a chosen entry at its admission date: at once when the
 * date is past (as a reply to d when given), else on a timer. 0 or the send's error.
 */
static int schedule_admission(relais_ref_facility_t *f, entry_t *e, const relais_delivery_t *d)
{
    int64_t wait = e->admission_ms - relais_now_ms();
    if (wait > 0) {
        uint64_t delay = (uint64_t)relais_clock_real_delay_ms(wait);
        if (relais_agent_timer(f->agent, delay, admit_later, e, &e->timer_id) == 0) {
            e->timer_armed = true;
            char state[80], when[32];
            snprintf(state, sizeof state, "admission scheduled for %s",
                     ref__format_time(e->admission_ms, when));
            ref__emit_notice(&f->em, e->request_id, "", RELAIS_REF_MS_NONE, state);
            return 0;
        }
    }
    return send_admission(f, e, d); /* due now, or no timer could be armed */
}

/* Gives free beds to the oldest waiting entries. */
static void promote(relais_ref_facility_t *f)
{
    for (entry_t *e = f->head; e != NULL && f->beds_used < f->capacity;) {
        entry_t *next = e->next;
        if (e->state == E_WAITLISTED) {
            e->state = E_ACCEPTED;
            e->admission_ms = admission_date(e);
            f->beds_used++;
            snprintf(e->reason, sizeof e->reason, "a bed freed: held for the admission date");
            int rc = send_decision(f, e, NULL);
            if (rc != 0) {
                report_failure(f, e, "PreadmissionDecision", rc);
                e->state = E_WAITLISTED;
                f->beds_used--;
                return;
            }
            f->stats.accepted++;
        } else if (e->state == E_CHOSEN_WAITING) {
            e->state = E_CHOSEN;
            e->admission_ms = admission_date(e);
            f->beds_used++;
            int rc = schedule_admission(f, e, NULL);
            if (rc != 0) report_failure(f, e, "AdmissionNotice", rc);
        }
        e = next;
    }
}

/* ---- Handlers ---------------------------------------------------------------------------- */

/* The sender and request id of d, checked to fit what an entry keeps. */
static bool usable(relais_delivery_t *d, const char *request_id, char rid[RELAIS_REF_ID_MAX])
{
    const char *from = ref__sender(d);
    if (from[0] == '\0' || strlen(from) >= RELAIS_ADDRESS_MAX) {
        snprintf(d->reason, sizeof d->reason, "delivery without a usable sender");
        return false;
    }
    if (ref__copy_id(rid, RELAIS_REF_ID_MAX, request_id, true) != 0) {
        snprintf(d->reason, sizeof d->reason, "request_id missing or longer than %d bytes",
                 RELAIS_REF_ID_MAX - 1);
        return false;
    }
    return true;
}

static relais_outcome_t retry(relais_ref_facility_t *f, relais_delivery_t *d, const char *rid,
                              const char *what, int rc)
{
    char why[160];
    snprintf(why, sizeof why, "could not send %s: %s", what, relais_strerror(rc));
    ref__emit_notice(&f->em, rid, "", RELAIS_REF_MS_FAILED, why);
    snprintf(d->reason, sizeof d->reason, "%s", why);
    return RELAIS_RETRY_LATER;
}

static entry_t *new_entry(relais_ref_facility_t *f, const relais_delivery_t *d, const char *rid)
{
    const Relais__V1__Envelope *env = d->envelope;
    const Relais__V1__PreadmissionRequest *req = env->preadmission_request;
    entry_t *e = calloc(1, sizeof *e);
    if (e == NULL) return NULL;
    e->f = f;
    e->kind = req->facility_kind;
    e->expected_ms = req->expected_date_ms;
    snprintf(e->request_id, sizeof e->request_id, "%s", rid);
    snprintf(e->requester, sizeof e->requester, "%s", ref__sender(d));
    /* The conversation as the requester's SDK names it: the opening message's id. */
    const ProtobufCBinaryData *conv = env->conversation_id.len == RELAIS_MESSAGE_ID_LEN
                                          ? &env->conversation_id
                                          : &env->message_id;
    if (conv->len == RELAIS_MESSAGE_ID_LEN) memcpy(e->conversation_id, conv->data, conv->len);
    if (env->message_id.len == RELAIS_MESSAGE_ID_LEN) {
        memcpy(e->request_message_id, env->message_id.data, RELAIS_MESSAGE_ID_LEN);
        e->has_request_message_id = true;
    }
    if (req->patient != NULL) {
        e->patient_len = relais__v1__patient_ref__get_packed_size(req->patient);
        e->patient = malloc(e->patient_len > 0 ? e->patient_len : 1);
        if (e->patient == NULL) {
            free(e);
            return NULL;
        }
        relais__v1__patient_ref__pack(req->patient, e->patient);
    }
    if (f->tail != NULL)
        f->tail->next = e;
    else
        f->head = e;
    f->tail = e;
    return e;
}

static relais_outcome_t on_request(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_facility_t *f = ud;
    const Relais__V1__PreadmissionRequest *req = d->envelope->preadmission_request;
    char rid[RELAIS_REF_ID_MAX];
    if (!usable(d, req->request_id, rid)) return RELAIS_REFUSED;
    char got[96];
    snprintf(got, sizeof got, "preadmission requested (%s)",
             req->facility_kind ? kind_name(req->facility_kind) : "any kind");
    ref__emit_received(&f->em, d, rid, "", RELAIS_REF_MS_NONE, got);

    entry_t *e = find(f, ref__sender(d), rid);
    if (e != NULL) {
        /* A repeated request gets the same answer, never a second draw. */
        if (e->state != E_ACCEPTED && e->state != E_WAITLISTED && e->state != E_REFUSED)
            return RELAIS_PROCESSED;
        int rc = send_decision(f, e, d);
        return rc == 0 ? RELAIS_PROCESSED : retry(f, d, rid, "PreadmissionDecision", rc);
    }
    e = new_entry(f, d, rid);
    if (e == NULL) return retry(f, d, rid, "PreadmissionDecision", -ENOMEM);
    f->stats.requests++;
    if (f->decision_delay_ms > 0) {
        e->state = E_DECIDING;
        e->decide_at_ms = relais_now_ms() + f->decision_delay_ms;
        uint64_t delay = (uint64_t)relais_clock_real_delay_ms(f->decision_delay_ms);
        if (relais_agent_timer(agent, delay, decide_later, e, &e->timer_id) == 0) {
            e->timer_armed = true;
            char when[32], state[64];
            snprintf(state, sizeof state, "decision due %s",
                     ref__format_time(relais_now_ms() + f->decision_delay_ms, when));
            ref__emit_notice(&f->em, rid, "", RELAIS_REF_MS_NONE, state);
            return RELAIS_PROCESSED;
        }
    }
    decide(f, e);
    int rc = send_decision(f, e, d);
    if (rc != 0) {
        drop(f, e);
        f->stats.requests--;
        return retry(f, d, rid, "PreadmissionDecision", rc);
    }
    count_decision(f, e);
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_choice(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_facility_t *f = ud;
    const Relais__V1__PreadmissionChoice *c = d->envelope->preadmission_choice;
    char rid[RELAIS_REF_ID_MAX];
    if (!usable(d, c->request_id, rid)) return RELAIS_REFUSED;
    entry_t *e = find(f, ref__sender(d), rid);
    const char *self = relais_agent_address(agent);
    const char *named = c->facility != NULL ? c->facility : "";
    if (named[0] != '\0' && strcmp(named, self) != 0 &&
        (f->facility == NULL || strcmp(named, f->facility) != 0)) {
        snprintf(d->reason, sizeof d->reason, "the choice names another facility");
        return RELAIS_REFUSED;
    }
    if (e == NULL || e->state == E_DECIDING || e->state == E_REFUSED) {
        snprintf(d->reason, sizeof d->reason, "no accepted or waitlisted preadmission %s here",
                 rid);
        return RELAIS_REFUSED;
    }
    if (e->state != E_ACCEPTED && e->state != E_WAITLISTED) {
        ref__emit_received(&f->em, d, rid, "", RELAIS_REF_MS_NONE, "chosen again: no change");
        return RELAIS_PROCESSED;
    }
    entry_state_t before = e->state;
    bool booked = false;
    if (e->state == E_WAITLISTED && f->beds_used < f->capacity) {
        f->beds_used++;
        e->admission_ms = admission_date(e);
        booked = true;
    }
    if (e->state == E_ACCEPTED || booked) {
        e->state = E_CHOSEN;
        ref__emit_received(&f->em, d, rid, "", RELAIS_REF_MS_NONE, "chosen: bed booked");
        int rc = schedule_admission(f, e, d);
        if (rc != 0) {
            e->state = before;
            if (booked) f->beds_used--;
            return retry(f, d, rid, "AdmissionNotice", rc);
        }
    } else {
        e->state = E_CHOSEN_WAITING;
        ref__emit_received(&f->em, d, rid, "", RELAIS_REF_MS_NONE,
                           "chosen while waitlisted: admission when a bed frees");
    }
    f->stats.chosen++;
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_cancel(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_facility_t *f = ud;
    const Relais__V1__PreadmissionCancel *c = d->envelope->preadmission_cancel;
    char rid[RELAIS_REF_ID_MAX];
    if (!usable(d, c->request_id, rid)) return RELAIS_REFUSED;
    entry_t *e = find(f, ref__sender(d), rid);
    const char *state = "cancelled: nothing was held";
    if (e != NULL && e->state == E_ADMITTED) {
        state = "cancel after admission: ignored";
    } else if (e != NULL) {
        bool freed = holds_bed(e->state);
        bool counted = e->state != E_REFUSED;
        state = freed                    ? "cancelled: bed freed"
                : e->state == E_DECIDING ? "cancelled before the decision"
                : counted                ? "cancelled: off the waiting list"
                                         : "cancelled: it was refused";
        drop(f, e);
        if (counted) f->stats.cancelled++;
        ref__emit_received(&f->em, d, rid, "", RELAIS_REF_MS_NONE, state);
        if (freed) promote(f);
        return RELAIS_PROCESSED;
    }
    ref__emit_received(&f->em, d, rid, "", RELAIS_REF_MS_NONE, state);
    return RELAIS_PROCESSED;
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    relais_ref_facility_t *f = ud;
    ref__emit_receipt(&f->em, r);
}

/* ---- Life cycle ------------------------------------------------------------------------ */

void relais_ref_facility_config_defaults(relais_ref_facility_config_t *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->kind = RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR;
    cfg->capacity = 10;
    cfg->accept_rate = 1.0;
    cfg->waitlist_rate = 1.0;
    cfg->seed = 1;
}

int relais_ref_facility_rebind(relais_ref_facility_t *f, relais_agent_t *agent)
{
    if (f == NULL || agent == NULL) return RELAIS_EINVALID;
    bool moving = f->agent != agent;
    f->agent = agent;
    f->em.agent = agent;
    int rc = relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST, on_request, f);
    if (rc == 0)
        rc = relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE, on_choice, f);
    if (rc == 0)
        rc = relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL, on_cancel, f);
    if (rc != 0) return rc;
    if (f->receipts) relais_agent_on_receipt(agent, on_receipt, f);
    if (!moving) return 0;
    /* The old agent's timers went with it: decisions and admission notices still due are
     * armed again on the new one (at once when their time passed while it was away). */
    for (entry_t *e = f->head; e != NULL; e = e->next) {
        e->timer_armed = false;
        relais_agent_fn fn = e->state == E_DECIDING ? decide_later
                             : e->state == E_CHOSEN ? admit_later
                                                    : NULL;
        if (fn == NULL) continue;
        int64_t at = e->state == E_DECIDING ? e->decide_at_ms : e->admission_ms;
        int64_t left = at - relais_now_ms();
        uint64_t delay = left > 0 ? (uint64_t)relais_clock_real_delay_ms(left) : 0;
        if (relais_agent_timer(agent, delay, fn, e, &e->timer_id) == 0) e->timer_armed = true;
    }
    return 0;
}

int relais_ref_facility_new(relais_ref_facility_t **out, relais_agent_t *agent,
                            const relais_ref_facility_config_t *cfg)
{
    *out = NULL;
    if (agent == NULL || cfg == NULL) return RELAIS_ECONFIG;
    if (cfg->kind < RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR ||
        cfg->kind > RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SURGERY ||
        cfg->capacity > CAPACITY_LIMIT || !(cfg->accept_rate >= 0 && cfg->accept_rate <= 1) ||
        !(cfg->waitlist_rate >= 0 && cfg->waitlist_rate <= 1) || cfg->decision_delay_ms < 0 ||
        cfg->decision_delay_ms > DELAY_LIMIT_MS)
        return RELAIS_ECONFIG;
    if (cfg->facility != NULL && cfg->facility[0] != '\0' && !relais_address_valid(cfg->facility))
        return RELAIS_ECONFIG;
    relais_ref_facility_t *f = calloc(1, sizeof *f);
    if (f == NULL) return -ENOMEM;
    f->agent = agent;
    f->em = (ref__emitter_t){.fn = cfg->on_event, .ud = cfg->event_ud, .agent = agent};
    f->kind = cfg->kind;
    f->capacity = cfg->capacity;
    f->accept_rate = cfg->accept_rate;
    f->waitlist_rate = cfg->waitlist_rate;
    f->rng = cfg->seed;
    f->decision_delay_ms = cfg->decision_delay_ms;
    int rc = -ENOMEM;
    if (cfg->facility != NULL && cfg->facility[0] != '\0') {
        f->facility = strdup(cfg->facility);
        if (f->facility == NULL) goto err;
    }
    f->instructions =
        strdup(cfg->instructions != NULL && cfg->instructions[0] != '\0' ? cfg->instructions
                                                                         : DEFAULT_INSTRUCTIONS);
    if (f->instructions == NULL) goto err;
    f->receipts = !cfg->no_receipts;
    rc = relais_ref_facility_rebind(f, agent);
    if (rc != 0) goto err;
    *out = f;
    return 0;

err:
    relais_ref_facility_destroy(&f);
    return rc;
}

void relais_ref_facility_destroy(relais_ref_facility_t **fp)
{
    if (fp == NULL || *fp == NULL) return;
    relais_ref_facility_t *f = *fp;
    for (entry_t *e = f->head; e != NULL;) {
        entry_t *next = e->next;
        free(e->patient);
        free(e);
        e = next;
    }
    free(f->facility);
    free(f->instructions);
    free(f);
    *fp = NULL;
}

void relais_ref_facility_stats(const relais_ref_facility_t *f, relais_ref_facility_stats_t *out)
{
    *out = f->stats;
    out->beds_used = f->beds_used;
    out->waiting = 0;
    for (const entry_t *e = f->head; e != NULL; e = e->next) {
        if (e->state == E_WAITLISTED || e->state == E_CHOSEN_WAITING) out->waiting++;
    }
}

/* ---- Configuration file ------------------------------------------------------------------ */

int relais_ref_facility_config_load(const char *path, relais_ref_facility_config_t *cfg, char *err,
                                    size_t err_len)
{
    static const char *const keys[] = {"kind", "capacity",          "accept_rate", "waitlist_rate",
                                       "seed", "decision_delay_ms", NULL};
    ref_cfg_t *c = NULL;
    int rc = ref__cfg_load(&c, path, err, err_len);
    if (rc != 0) return rc;
    const yaml_node_t *root = ref__cfg_root(c);
    relais_ref_facility_config_t out = *cfg;
    const char *kind = NULL;
    uint64_t capacity = out.capacity, seed = out.seed;
    uint64_t delay = (uint64_t)(out.decision_delay_ms > 0 ? out.decision_delay_ms : 0);
    ref__cfg_keys(c, root, "document", keys);
    ref__cfg_str(c, root, "kind", &kind);
    ref__cfg_uint(c, root, "capacity", 0, CAPACITY_LIMIT, &capacity);
    ref__cfg_double(c, root, "accept_rate", 0, 1, &out.accept_rate);
    ref__cfg_double(c, root, "waitlist_rate", 0, 1, &out.waitlist_rate);
    ref__cfg_uint(c, root, "seed", 0, UINT64_MAX, &seed);
    ref__cfg_uint(c, root, "decision_delay_ms", 0, DELAY_LIMIT_MS, &delay);
    if (ref__cfg_status(c) == 0) {
        if (kind == NULL) {
            ref__cfg_fail(c, root, "document", "'kind' is missing (smr, ehpad, had or surgery)");
        } else {
            size_t k = 1;
            while (k < sizeof kind_names / sizeof kind_names[0] &&
                   strcasecmp(kind, kind_names[k]) != 0)
                k++;
            if (k == sizeof kind_names / sizeof kind_names[0])
                ref__cfg_fail(c, ref__cfg_get(c, root, "kind"), "kind",
                              "'%s' is not one of smr, ehpad, had, surgery", kind);
            else
                out.kind = (Relais__V1__PreadmissionRequest__FacilityKind)k;
        }
    }
    rc = ref__cfg_status(c);
    if (rc != 0) {
        snprintf(err, err_len, "%s", ref__cfg_error(c));
    } else {
        out.capacity = (unsigned)capacity;
        out.seed = seed;
        out.decision_delay_ms = (int64_t)delay;
        *cfg = out;
    }
    ref__cfg_free(&c);
    return rc;
}
