/*
 * The medical assistant role: a GP practice's desk, acting on behalf of its GPs.
 *
 * It opens appointment conversations (AppointmentRequest to a professional or a pool),
 * books the first slot offered (AppointmentBook as a reply in the same conversation) and
 * records the confirm, decline, outcome or cancellation. When a hospital notifies a
 * discharge, it turns each follow-up item into the right request: a CareTaskRequest to the
 * configured nurse, an AppointmentRequest to the configured physiotherapist or specialist,
 * a notice for items that belong in the GP's own agenda. It tracks every request by its id
 * and conversation, so that answers, receipts and redeliveries land on the right one.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_internal.h"
#include "relais/log.h"

typedef enum appt_state {
    APPT_REQUESTED = 1,
    APPT_BOOKING = 2,
    APPT_CONFIRMED = 3,
    APPT_DECLINED = 4,
    APPT_CANCELLED = 5,
    APPT_FAILED = 6,
} appt_state_t;

/* One appointment conversation the assistant opened. */
typedef struct appt {
    char request_id[RELAIS_REF_ID_MAX];
    char gp[RELAIS_ADDRESS_MAX];
    char encounter_id[RELAIS_REF_ID_MAX];
    uint8_t conversation_id[RELAIS_MESSAGE_ID_LEN];
    appt_state_t state;
    int route;        /* index in routes, -1 when asked directly */
    unsigned rebooks; /* how many times it was asked again after a no-show */
    uint8_t *request; /* the AppointmentRequest, packed, to ask again after a no-show */
    size_t request_len;
} appt_t;

/* One care task the assistant requested after a discharge. */
typedef struct task {
    char task_id[RELAIS_REF_ID_MAX];
    char gp[RELAIS_ADDRESS_MAX];
    char encounter_id[RELAIS_REF_ID_MAX];
    uint8_t conversation_id[RELAIS_MESSAGE_ID_LEN];
    int status; /* last Relais__V1__CareTaskUpdate__Status, 0 before any */
    int route;
} task_t;

/* One preadmission the assistant asked for, to several facilities in one conversation. */
typedef struct preadm {
    char request_id[RELAIS_REF_ID_MAX];
    char gp[RELAIS_ADDRESS_MAX];
    uint8_t conversation_id[RELAIS_MESSAGE_ID_LEN];
    char chosen[RELAIS_ADDRESS_MAX]; /* "" until a facility accepted and was chosen */
} preadm_t;

/* Where the items of one role go (see relais_ref_route_t). */
typedef struct route {
    char *role;
    char *specialty; /* "" for any */
    char **candidates;
    size_t n_candidates;
    bool offer;
} route_t;

struct relais_ref_assistant {
    relais_agent_t *agent;
    ref__emitter_t em;
    char **gps;
    size_t n_gps;
    char *nurse;
    char *physiotherapist;
    char *specialist;
    char *coordinator; /* whose reassignment Notes are acted on (tracking only) */
    route_t *routes;
    size_t n_routes;
    relais_ref_booking_policy_t booking;
    unsigned rebook_no_show;
    bool tracking;
    relais_conv_options_t tracking_opts; /* its coordinator points at ->coordinator */
    appt_t *appts;
    size_t n_appts, cap_appts;
    preadm_t *preadms;
    size_t n_preadms, cap_preadms;
    task_t *tasks;
    size_t n_tasks, cap_tasks;
};

/* ---- Bookkeeping -------------------------------------------------------------------- */

static appt_t *find_appt(relais_ref_assistant_t *a, const char *request_id)
{
    for (size_t i = 0; i < a->n_appts; i++) {
        if (strcmp(a->appts[i].request_id, request_id) == 0) return &a->appts[i];
    }
    return NULL;
}

static task_t *find_task(relais_ref_assistant_t *a, const char *task_id)
{
    for (size_t i = 0; i < a->n_tasks; i++) {
        if (strcmp(a->tasks[i].task_id, task_id) == 0) return &a->tasks[i];
    }
    return NULL;
}

/* Grows an array of elements of size sz to hold one more; 0 or -ENOMEM. */
static int reserve(void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap) return 0;
    size_t ncap = *cap != 0 ? *cap * 2 : 8;
    void *p = realloc(*arr, ncap * sz);
    if (p == NULL) return -ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

static bool is_our_gp(const relais_ref_assistant_t *a, const char *addr)
{
    for (size_t i = 0; i < a->n_gps; i++) {
        if (strcmp(a->gps[i], addr) == 0) return true;
    }
    return false;
}

/* The GP a discharge concerns: the first of ours in its care team, else our first. */
static const char *gp_for(const relais_ref_assistant_t *a,
                          const Relais__V1__DischargeNotification *dn)
{
    for (size_t i = 0; i < dn->n_care_team; i++) {
        if (is_our_gp(a, dn->care_team[i])) return dn->care_team[i];
    }
    return a->gps[0];
}

/* ---- Routes -------------------------------------------------------------------------- */

/* The route for items of role (and specialty): the first that matches, or -1. */
static int find_route(const relais_ref_assistant_t *a, const char *role, const char *specialty)
{
    for (size_t i = 0; i < a->n_routes; i++) {
        const route_t *r = &a->routes[i];
        if (strcmp(r->role, role) != 0) continue;
        if (r->specialty[0] == '\0' || (specialty != NULL && strcmp(r->specialty, specialty) == 0))
            return (int)i;
    }
    return -1;
}

/* A route's candidate k as an address ("@gp" is the GP the request is made for). */
static const char *candidate(const relais_ref_assistant_t *a, int route, size_t k, const char *gp)
{
    const char *c = a->routes[route].candidates[k];
    return strcmp(c, "@gp") == 0 ? gp : c;
}

/* True when addr is one of the candidates the SDK says already had the request. */
static bool already_had(const relais_conv_info_t *conv, const char *addr)
{
    for (size_t i = 0; i < conv->nparts; i++) {
        if (strcmp(conv->parts[i].key, addr) == 0) return true;
    }
    return false;
}

/*
 * The first candidate of the route that never had the request, or NULL when every one did.
 * Going by who had it rather than by the position of the current one matters when a pool
 * is on the route: its member who answered may be an earlier candidate, and "the one after
 * it" would send the request round the route for ever.
 */
static const char *next_candidate(const relais_ref_assistant_t *a, int route,
                                  const relais_conv_info_t *conv, const char *gp)
{
    if (route < 0) return NULL;
    const route_t *r = &a->routes[route];
    for (size_t k = 0; k < r->n_candidates; k++) {
        const char *c = candidate(a, route, k, gp);
        if (strcmp(c, conv->counterpart) != 0 && !already_had(conv, c)) return c;
    }
    return NULL;
}

/* ---- Opening conversations ---------------------------------------------------------- */

static int send_appointment_request(relais_ref_assistant_t *a, const char *to, const char *gp,
                                    const Relais__V1__AppointmentRequest *req,
                                    const char *encounter_id, bool offer, int route)
{
    char rid[RELAIS_REF_ID_MAX];
    if (ref__copy_id(rid, sizeof rid, req->request_id, true) != 0) return RELAIS_EINVALID;
    if (find_appt(a, rid) != NULL || to == NULL || !relais_address_valid(to)) {
        return RELAIS_EINVALID;
    }
    if (!is_our_gp(a, gp)) return RELAIS_ECONFIG;
    int rc = reserve((void **)&a->appts, &a->cap_appts, a->n_appts, sizeof *a->appts);
    if (rc != 0) return rc;

    appt_t *ap = &a->appts[a->n_appts];
    memset(ap, 0, sizeof *ap);
    memcpy(ap->request_id, rid, sizeof rid);
    snprintf(ap->gp, sizeof ap->gp, "%s", gp);
    snprintf(ap->encounter_id, sizeof ap->encounter_id, "%s", encounter_id);
    ap->state = APPT_REQUESTED;
    ap->route = route;
    /* The request's own id opens the conversation, so answers can be matched to it. */
    rc = relais_uuid7(ap->conversation_id);
    if (rc != 0) return rc;
    ap->request_len = relais__v1__appointment_request__get_packed_size(req);
    ap->request = malloc(ap->request_len > 0 ? ap->request_len : 1);
    if (ap->request == NULL) return -ENOMEM;
    relais__v1__appointment_request__pack(req, ap->request);

    char *rcpt[1] = {(char *)to};
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.message_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, ap->conversation_id};
    env.conversation_id = env.message_id;
    env.on_behalf_of = (char *)gp;
    env.n_to = 1;
    env.to = rcpt;
    if (offer) env.dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST;
    env.appointment_request = (Relais__V1__AppointmentRequest *)req;
    ref__about_t about = {.ref = rid,
                          .encounter_id = encounter_id,
                          .state =
                              offer ? "requested, offered to the pool's members" : "requested"};
    rc = ref__submit(&a->em, NULL, &env, &about, NULL);
    if (rc == 0) {
        a->n_appts++;
    } else {
        free(ap->request);
        ap->request = NULL;
    }
    return rc;
}

int relais_ref_assistant_request(relais_ref_assistant_t *a, const char *to, const char *gp,
                                 const Relais__V1__AppointmentRequest *req)
{
    return send_appointment_request(a, to, gp != NULL ? gp : a->gps[0], req, "", false, -1);
}

int relais_ref_assistant_request_pool(relais_ref_assistant_t *a, const char *pool, const char *gp,
                                      const Relais__V1__AppointmentRequest *req)
{
    if (pool == NULL || strncmp(pool, "service:", 8) != 0) return RELAIS_EINVALID;
    return send_appointment_request(a, pool, gp != NULL ? gp : a->gps[0], req, "", true, -1);
}

int relais_ref_assistant_refer(relais_ref_assistant_t *a, const char *gp,
                               const Relais__V1__AppointmentRequest *req)
{
    if (gp == NULL) gp = a->gps[0];
    int route = find_route(a, req->requested_role != NULL ? req->requested_role : "",
                           req->specialty);
    if (route < 0) return RELAIS_ECONFIG;
    const char *to = candidate(a, route, 0, gp);
    bool offer = a->routes[route].offer && strncmp(to, "service:", 8) == 0;
    return send_appointment_request(a, to, gp, req, "", offer, route);
}

static int send_care_task(relais_ref_assistant_t *a, const char *to, bool offer, int route,
                          const char *gp, const char *task_id,
                          const Relais__V1__DischargeNotification *dn,
                          const Relais__V1__FollowUpItem *item)
{
    if (!relais_address_valid(to)) return RELAIS_EINVALID;
    int rc = reserve((void **)&a->tasks, &a->cap_tasks, a->n_tasks, sizeof *a->tasks);
    if (rc != 0) return rc;
    task_t *t = &a->tasks[a->n_tasks];
    memset(t, 0, sizeof *t);
    snprintf(t->task_id, sizeof t->task_id, "%s", task_id);
    snprintf(t->gp, sizeof t->gp, "%s", gp);
    snprintf(t->encounter_id, sizeof t->encounter_id, "%s", dn->encounter_id);
    t->route = route;
    rc = relais_uuid7(t->conversation_id);
    if (rc != 0) return rc;

    char instructions[256];
    snprintf(instructions, sizeof instructions,
             "Follow-up after discharge from %s (programme: %s). Please confirm the visit.",
             dn->facility, dn->programme[0] != '\0' ? dn->programme : "none");
    Relais__V1__CareTaskRequest body = RELAIS__V1__CARE_TASK_REQUEST__INIT;
    body.task_id = t->task_id;
    body.patient = dn->patient;
    body.action = item->action;
    body.window = item->window;
    body.mode = RELAIS__V1__SLOT__MODE__HOME;
    body.encounter_id = dn->encounter_id;
    body.follow_up_item_id = item->item_id;
    body.instructions = instructions;

    char *rcpt[1] = {(char *)to};
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.message_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, t->conversation_id};
    env.conversation_id = env.message_id;
    env.on_behalf_of = (char *)gp;
    env.n_to = 1;
    env.to = rcpt;
    if (offer) env.dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST;
    env.care_task_request = &body;
    ref__about_t about = {
        .ref = t->task_id, .encounter_id = t->encounter_id, .state = "task requested"};
    rc = ref__submit(&a->em, NULL, &env, &about, NULL);
    if (rc == 0) a->n_tasks++;
    return rc;
}

/*
 * Routes one follow-up item: a care task for nurses, an appointment request for the other
 * roles, to the first candidate of the item's route. Items already requested (a redelivered
 * or replayed notification) are skipped, so that a partial failure can be retried without
 * asking anyone twice. An appointment is tied to the discharge's item when tracking is on
 * (a care task carries the item's id and is tied by the SDK itself).
 */
/*
 * A follow-up item for a role this practice has nobody configured for (a COPD plan's
 * physiotherapy, and no physiotherapist): never dropped quietly. It goes to the CPTS
 * coordinator as an Escalation naming the role, inside the discharge's conversation, and is
 * logged at warning level; without a coordinator it is logged as an error.
 */
static int escalate_unrouted(relais_ref_assistant_t *a, const Relais__V1__DischargeNotification *dn,
                             const uint8_t *discharge, const Relais__V1__FollowUpItem *item,
                             const char *ref, const char *gp)
{
    char state[200];
    snprintf(state, sizeof state, "no professional configured for role '%.32s'%s", item->role,
             a->coordinator ? ": escalated to the coordinator" : ": NOT HANDLED, no coordinator");
    ref__emit_notice(&a->em, ref, dn->encounter_id, RELAIS_REF_MS_FOLLOW_UP_UNROUTED, state);
    RLOG(a->coordinator ? RELAIS_LOG_WARN : RELAIS_LOG_ERROR, "assistant",
         "follow-up item ref=%s role=%s: %s", ref, item->role, state);
    if (a->coordinator == NULL) return 0;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    int rc = relais_uuid7(id);
    if (rc != 0) return rc;
    Relais__V1__Escalation esc = RELAIS__V1__ESCALATION__INIT;
    char reason[160];
    snprintf(reason, sizeof reason,
             "follow-up item for role %.32s%s%.32s: no professional of that role is configured "
             "at this practice",
             item->role, item->specialty[0] ? "/" : "", item->specialty);
    esc.reason = reason;
    esc.original_body = "follow_up_item";
    esc.deadline_ms = item->window ? item->window->due_by_ms : 0;
    if (discharge != NULL) esc.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN,
                                                                       (uint8_t *)discharge};
    char *rcpt[1] = {a->coordinator};
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.message_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, id};
    env.on_behalf_of = (char *)gp;
    env.n_to = 1;
    env.to = rcpt;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    env.escalation = &esc;
    ref__about_t about = {.ref = ref, .encounter_id = dn->encounter_id, .state = state};
    return ref__submit(&a->em, NULL, &env, &about, NULL);
}

static int route_item(relais_ref_assistant_t *a, const Relais__V1__DischargeNotification *dn,
                      const uint8_t *discharge, const Relais__V1__FollowUpItem *item, size_t index)
{
    const char *gp = gp_for(a, dn);
    char ref[RELAIS_REF_ID_MAX], state[160];
    const char *item_id = item->item_id[0] != '\0' ? item->item_id : "item";
    int n = snprintf(ref, sizeof ref, "%s/%s-%zu", dn->encounter_id, item_id, index + 1);
    if (n < 0 || (size_t)n >= sizeof ref) {
        snprintf(state, sizeof state, "follow-up item %zu: identifiers too long", index + 1);
        ref__emit_notice(&a->em, dn->encounter_id, dn->encounter_id, RELAIS_REF_MS_FAILED, state);
        return 0;
    }
    if (find_task(a, ref) != NULL || find_appt(a, ref) != NULL) return 0;

    const char *role = item->role;
    int route = find_route(a, role, item->specialty);
    if (route < 0) {
        if (strcmp(role, "gp") == 0) {
            snprintf(state, sizeof state, "GP follow-up for %s: to schedule in the GP's agenda",
                     gp);
            ref__emit_notice(&a->em, ref, dn->encounter_id, RELAIS_REF_MS_FOLLOW_UP_FOR_GP, state);
            return 0;
        }
        return escalate_unrouted(a, dn, discharge, item, ref, gp);
    }
    const char *to = candidate(a, route, 0, gp);
    bool offer = a->routes[route].offer && strncmp(to, "service:", 8) == 0;
    if (strcmp(role, "nurse") == 0) return send_care_task(a, to, offer, route, gp, ref, dn, item);

    Relais__V1__AppointmentRequest req = RELAIS__V1__APPOINTMENT_REQUEST__INIT;
    req.request_id = ref;
    req.patient = dn->patient;
    req.requested_role = (char *)role;
    req.specialty = item->specialty;
    req.urgency = RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__SOON;
    req.window = item->window;
    req.reason = item->action;
    int rc = send_appointment_request(a, to, gp, &req, dn->encounter_id, offer, route);
    if (rc == 0 && discharge != NULL && a->tracking) {
        const appt_t *ap = find_appt(a, ref);
        int lrc = relais_conv_link(a->agent, discharge, item->item_id, ap->conversation_id);
        if (lrc != 0) {
            snprintf(state, sizeof state, "follow-up item %s not tied to its request: %s",
                     item->item_id, relais_strerror(lrc));
            ref__emit_notice(&a->em, ref, dn->encounter_id, RELAIS_REF_MS_FAILED, state);
        }
    }
    return rc;
}

/* ---- Preadmissions ------------------------------------------------------------------ */

#define PREADMIT_MAX 8

static preadm_t *find_preadm(relais_ref_assistant_t *a, const char *request_id)
{
    for (size_t i = 0; i < a->n_preadms; i++) {
        if (strcmp(a->preadms[i].request_id, request_id) == 0) return &a->preadms[i];
    }
    return NULL;
}

int relais_ref_assistant_preadmit(relais_ref_assistant_t *a, const char *const *facilities,
                                  size_t n, const char *gp,
                                  const Relais__V1__PreadmissionRequest *req)
{
    char rid[RELAIS_REF_ID_MAX];
    if (gp == NULL) gp = a->gps[0];
    if (ref__copy_id(rid, sizeof rid, req->request_id, true) != 0 || n == 0 || n > PREADMIT_MAX ||
        find_preadm(a, rid) != NULL)
        return RELAIS_EINVALID;
    for (size_t i = 0; i < n; i++) {
        if (facilities[i] == NULL || !relais_address_valid(facilities[i])) return RELAIS_EINVALID;
    }
    if (!is_our_gp(a, gp)) return RELAIS_ECONFIG;
    int rc = reserve((void **)&a->preadms, &a->cap_preadms, a->n_preadms, sizeof *a->preadms);
    if (rc != 0) return rc;
    preadm_t *p = &a->preadms[a->n_preadms];
    memset(p, 0, sizeof *p);
    memcpy(p->request_id, rid, sizeof rid);
    snprintf(p->gp, sizeof p->gp, "%s", gp);
    if ((rc = relais_uuid7(p->conversation_id)) != 0) return rc;
    a->n_preadms++;
    for (size_t i = 0; i < n; i++) {
        char *rcpt[1] = {(char *)facilities[i]};
        Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
        env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, p->conversation_id};
        /* The first request's id is the conversation's: the SDK opens it with that one. */
        if (i == 0) env.message_id = env.conversation_id;
        env.on_behalf_of = (char *)gp;
        env.n_to = 1;
        env.to = rcpt;
        env.body_case = RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST;
        env.preadmission_request = (Relais__V1__PreadmissionRequest *)req;
        ref__about_t about = {.ref = rid, .encounter_id = "", .state = "preadmission requested"};
        rc = ref__submit(&a->em, NULL, &env, &about, NULL);
        if (rc != 0) return rc;
    }
    return 0;
}

static relais_outcome_t on_preadmission_decision(relais_agent_t *agent, relais_delivery_t *d,
                                                 void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__PreadmissionDecision *dec = d->envelope->preadmission_decision;
    preadm_t *p = find_preadm(a, dec->request_id);
    if (p == NULL) {
        snprintf(d->reason, sizeof d->reason, "no preadmission request '%.64s' here",
                 dec->request_id);
        return RELAIS_REFUSED;
    }
    const char *from = ref__sender(d);
    bool accepted = dec->decision == RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED;
    char state[RELAIS_ADDRESS_MAX + 64];
    snprintf(state, sizeof state, "%s by %s",
             accepted ? "accepted"
             : dec->decision == RELAIS__V1__PREADMISSION_DECISION__DECISION__WAITLISTED
                 ? "waitlisted"
                 : "refused",
             from);
    ref__emit_received(&a->em, d, p->request_id, "", RELAIS_REF_MS_PREADMISSION_DECIDED, state);
    if (!accepted || p->chosen[0] != '\0') return RELAIS_PROCESSED;

    /* The reference policy: the first facility to accept. */
    Relais__V1__PreadmissionChoice choice = RELAIS__V1__PREADMISSION_CHOICE__INIT;
    choice.request_id = p->request_id;
    choice.facility = (char *)from;
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.on_behalf_of = p->gp;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE;
    reply.preadmission_choice = &choice;
    snprintf(state, sizeof state, "chose %s, the others are cancelled", from);
    ref__about_t about = {.ref = p->request_id, .encounter_id = "", .state = state};
    int rc = ref__submit(&a->em, d->envelope, &reply, &about, NULL);
    if (rc != 0) {
        snprintf(d->reason, sizeof d->reason, "could not choose: %s", relais_strerror(rc));
        return RELAIS_RETRY_LATER;
    }
    snprintf(p->chosen, sizeof p->chosen, "%s", from);
    ref__emit_notice(&a->em, p->request_id, "", RELAIS_REF_MS_PREADMISSION_CHOSEN, state);
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_admission(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__AdmissionNotice *n = d->envelope->admission_notice;
    preadm_t *p = find_preadm(a, n->request_id);
    if (p == NULL) {
        snprintf(d->reason, sizeof d->reason, "no preadmission request '%.64s' here",
                 n->request_id);
        return RELAIS_REFUSED;
    }
    ref__emit_received(&a->em, d, p->request_id, n->encounter_id, RELAIS_REF_MS_ADMITTED,
                       "admitted");
    return RELAIS_PROCESSED;
}

/* ---- Handlers ----------------------------------------------------------------------- */

/* Finds the appointment an answer is about, refusing answers to requests we never made. */
static appt_t *answered_appt(relais_ref_assistant_t *a, relais_delivery_t *d,
                             const char *request_id)
{
    appt_t *ap = find_appt(a, request_id);
    if (ap == NULL) {
        snprintf(d->reason, sizeof d->reason, "no appointment request '%.64s' here", request_id);
    }
    return ap;
}

static relais_outcome_t on_offer(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__AppointmentOffer *offer = d->envelope->appointment_offer;
    appt_t *ap = answered_appt(a, d, offer->request_id);
    if (ap == NULL) return RELAIS_REFUSED;

    char state[160];
    snprintf(state, sizeof state, "offered %zu slot%s", offer->n_slots,
             offer->n_slots == 1 ? "" : "s");
    if (ap->state != APPT_REQUESTED) {
        /* A second offer (another pool member) after we booked: nothing to do. */
        snprintf(state, sizeof state, "extra offer ignored");
        ref__emit_received(&a->em, d, ap->request_id, ap->encounter_id, RELAIS_REF_MS_NONE, state);
        return RELAIS_PROCESSED;
    }
    if (offer->n_slots == 0 || offer->slots[0] == NULL) {
        ap->state = APPT_FAILED;
        ref__emit_received(&a->em, d, ap->request_id, ap->encounter_id, RELAIS_REF_MS_FAILED,
                           "offer without slots");
        return RELAIS_PROCESSED;
    }
    ref__emit_received(&a->em, d, ap->request_id, ap->encounter_id,
                       RELAIS_REF_MS_APPOINTMENT_OFFERED, state);

    size_t pick = 0;
    for (size_t i = 1; i < offer->n_slots; i++) {
        const Relais__V1__Slot *s = offer->slots[i];
        if (s == NULL) continue;
        if ((a->booking == RELAIS_REF_BOOK_EARLIEST &&
             s->start_ms < offer->slots[pick]->start_ms) ||
            (a->booking == RELAIS_REF_BOOK_LATEST && s->start_ms > offer->slots[pick]->start_ms))
            pick = i;
    }
    Relais__V1__AppointmentBook book = RELAIS__V1__APPOINTMENT_BOOK__INIT;
    book.request_id = ap->request_id;
    book.slot = offer->slots[pick];
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.on_behalf_of = ap->gp;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK;
    reply.appointment_book = &book;
    char when[32];
    snprintf(state, sizeof state, "booking %.32s at %s", book.slot->slot_id,
             ref__format_time(book.slot->start_ms, when));
    ref__about_t about = {.ref = ap->request_id, .encounter_id = ap->encounter_id, .state = state};
    int rc = ref__submit(&a->em, d->envelope, &reply, &about, NULL);
    if (rc != 0) {
        snprintf(d->reason, sizeof d->reason, "could not book: %s", relais_strerror(rc));
        return RELAIS_RETRY_LATER;
    }
    ap->state = APPT_BOOKING;
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_decline(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__AppointmentDecline *dec = d->envelope->appointment_decline;
    appt_t *ap = answered_appt(a, d, dec->request_id);
    if (ap == NULL) return RELAIS_REFUSED;
    ap->state = APPT_DECLINED;
    const char *code = "other";
    switch (dec->reason_code) {
    case RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NO_CAPACITY:
        code = "no capacity";
        break;
    case RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__OUT_OF_SCOPE:
        code = "out of scope";
        break;
    case RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NOT_IN_WINDOW:
        code = "not in window";
        break;
    case RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__OUT_OF_AREA:
        code = "out of area";
        break;
    default:
        break;
    }
    char state[64];
    snprintf(state, sizeof state, "declined: %s", code);
    ref__emit_received(&a->em, d, ap->request_id, ap->encounter_id,
                       RELAIS_REF_MS_APPOINTMENT_DECLINED, state);
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_confirm(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__AppointmentConfirm *c = d->envelope->appointment_confirm;
    appt_t *ap = answered_appt(a, d, c->request_id);
    if (ap == NULL) return RELAIS_REFUSED;
    ap->state = APPT_CONFIRMED;
    char state[160], when[32] = "";
    if (c->slot != NULL) ref__format_time(c->slot->start_ms, when);
    snprintf(state, sizeof state, "confirmed %.64s%s%s", c->appointment_id,
             when[0] != '\0' ? " at " : "", when);
    ref__emit_received(&a->em, d, ap->request_id, ap->encounter_id,
                       RELAIS_REF_MS_APPOINTMENT_CONFIRMED, state);
    return RELAIS_PROCESSED;
}

/*
 * The patient did not come: the same professional is asked again, in a new conversation
 * (the missed one is closed by its outcome), under a request id that says which attempt
 * it is.
 */
static void rebook(relais_ref_assistant_t *a, relais_delivery_t *d, appt_t *ap)
{
    char state[RELAIS_ADDRESS_MAX + RELAIS_REF_ID_MAX + 96];
    Relais__V1__AppointmentRequest *req =
        relais__v1__appointment_request__unpack(NULL, ap->request_len, ap->request);
    if (req == NULL) {
        ref__emit_notice(&a->em, ap->request_id, ap->encounter_id, RELAIS_REF_MS_FAILED,
                         "no-show: the request cannot be asked again");
        return;
    }
    char rid[RELAIS_REF_ID_MAX], from[RELAIS_ADDRESS_MAX], gp[RELAIS_ADDRESS_MAX];
    char enc[RELAIS_REF_ID_MAX];
    unsigned attempt = ap->rebooks + 1;
    int route = ap->route;
    snprintf(from, sizeof from, "%s", ref__sender(d));
    snprintf(gp, sizeof gp, "%s", ap->gp);
    snprintf(enc, sizeof enc, "%s", ap->encounter_id);
    /* The original id, cut to leave room for the attempt's suffix. */
    snprintf(rid, sizeof rid, "%.*s+r%u", RELAIS_REF_ID_MAX - 8, ap->request_id, attempt);
    ap->rebooks = attempt;
    char *old = req->request_id;
    req->request_id = rid;
    int rc = send_appointment_request(a, from, gp, req, enc, false, route);
    req->request_id = old;
    relais__v1__appointment_request__free_unpacked(req, NULL);
    /* ap may have moved: the array grew. */
    appt_t *fresh = find_appt(a, rid);
    if (rc == 0 && fresh != NULL) fresh->rebooks = attempt;
    if (rc == 0) {
        snprintf(state, sizeof state, "no-show: asked %s again (%s)", from, rid);
    } else {
        snprintf(state, sizeof state, "no-show: could not ask again: %s", relais_strerror(rc));
    }
    ref__emit_notice(&a->em, rid, enc, rc == 0 ? RELAIS_REF_MS_REBOOKED : RELAIS_REF_MS_FAILED,
                     state);
}

static relais_outcome_t on_outcome(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__AppointmentOutcome *o = d->envelope->appointment_outcome;
    appt_t *ap = answered_appt(a, d, o->request_id);
    if (ap == NULL) return RELAIS_REFUSED;
    bool fulfilled = o->outcome == RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED;
    bool no_show = o->outcome == RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__NOSHOW;
    const char *what = fulfilled ? "outcome: fulfilled"
                       : no_show ? "outcome: no-show"
                                 : "outcome reported";
    ref__emit_received(&a->em, d, ap->request_id, ap->encounter_id,
                       fulfilled ? RELAIS_REF_MS_APPOINTMENT_FULFILLED
                       : no_show ? RELAIS_REF_MS_APPOINTMENT_NOSHOW
                                 : RELAIS_REF_MS_NONE,
                       what);
    if (no_show && ap->rebooks < a->rebook_no_show && ap->request != NULL) rebook(a, d, ap);
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_cancel(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__AppointmentCancel *c = d->envelope->appointment_cancel;
    appt_t *ap = answered_appt(a, d, c->request_id);
    if (ap == NULL) return RELAIS_REFUSED;
    ap->state = APPT_CANCELLED;
    ref__emit_received(&a->em, d, ap->request_id, ap->encounter_id, RELAIS_REF_MS_NONE,
                       "cancelled by the professional");
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_discharge(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__DischargeNotification *dn = d->envelope->discharge_notification;
    char enc[RELAIS_REF_ID_MAX];
    if (ref__copy_id(enc, sizeof enc, dn->encounter_id, true) != 0) {
        snprintf(d->reason, sizeof d->reason, "encounter_id missing or longer than %d bytes",
                 RELAIS_REF_ID_MAX - 1);
        return RELAIS_REFUSED;
    }
    char state[96];
    snprintf(state, sizeof state, "discharge received, %zu follow-up item%s", dn->n_follow_up,
             dn->n_follow_up == 1 ? "" : "s");
    ref__emit_received(&a->em, d, enc, enc, RELAIS_REF_MS_DISCHARGE_RECEIVED, state);

    const Relais__V1__Envelope *env = d->envelope;
    const uint8_t *discharge = env->conversation_id.len == RELAIS_MESSAGE_ID_LEN
                                   ? env->conversation_id.data
                               : env->message_id.len == RELAIS_MESSAGE_ID_LEN ? env->message_id.data
                                                                              : NULL;
    int failed = 0;
    for (size_t i = 0; i < dn->n_follow_up; i++) {
        int rc = route_item(a, dn, discharge, dn->follow_up[i], i);
        if (rc != 0) failed = rc;
    }
    if (failed != 0) {
        snprintf(d->reason, sizeof d->reason, "follow-up plan only partly sent: %s",
                 relais_strerror(failed));
        return RELAIS_RETRY_LATER;
    }
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_task_update(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__CareTaskUpdate *u = d->envelope->care_task_update;
    task_t *t = find_task(a, u->task_id);
    if (t == NULL) {
        snprintf(d->reason, sizeof d->reason, "no care task '%.64s' here", u->task_id);
        return RELAIS_REFUSED;
    }
    t->status = (int)u->status;
    relais_ref_milestone_t ms = RELAIS_REF_MS_TASK_UPDATED;
    const char *state = "task updated";
    switch (u->status) {
    case RELAIS__V1__CARE_TASK_UPDATE__STATUS__RECEIVED:
        state = "task received";
        break;
    case RELAIS__V1__CARE_TASK_UPDATE__STATUS__ACCEPTED:
        ms = RELAIS_REF_MS_TASK_ACCEPTED;
        state = "task accepted";
        break;
    case RELAIS__V1__CARE_TASK_UPDATE__STATUS__REJECTED:
        ms = RELAIS_REF_MS_TASK_REJECTED;
        state = "task rejected";
        break;
    case RELAIS__V1__CARE_TASK_UPDATE__STATUS__IN_PROGRESS:
        state = "task in progress";
        break;
    case RELAIS__V1__CARE_TASK_UPDATE__STATUS__COMPLETED:
        ms = RELAIS_REF_MS_TASK_COMPLETED;
        state = "task completed";
        break;
    case RELAIS__V1__CARE_TASK_UPDATE__STATUS__FAILED:
        ms = RELAIS_REF_MS_TASK_FAILED;
        state = "task failed";
        break;
    case RELAIS__V1__CARE_TASK_UPDATE__STATUS__CANCELLED:
        state = "task cancelled";
        break;
    default:
        break;
    }
    ref__emit_received(&a->em, d, t->task_id, t->encounter_id, ms, state);
    return RELAIS_PROCESSED;
}

/*
 * A Note is read by the people at the desk. One from the coordinator that reassigns an
 * escalated request (reassign_to, about_conversation_id) is also acted on: the request
 * goes to the named professional in its own conversation, the one who did not answer gets
 * a cancel. Anything else that cannot be acted on is reported, never refused: the
 * coordinator's advice stays readable.
 */
static relais_outcome_t on_note(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_assistant_t *a = ud;
    const Relais__V1__Note *note = d->envelope->note;
    bool reassign = a->coordinator != NULL && strcmp(ref__sender(d), a->coordinator) == 0 &&
                    note->reassign_to != NULL && note->reassign_to[0] != '\0' &&
                    note->about_conversation_id.len == RELAIS_MESSAGE_ID_LEN;
    if (!reassign) {
        ref__emit_received(&a->em, d, "", "", RELAIS_REF_MS_NONE, "note received");
        return RELAIS_PROCESSED;
    }
    int rc = relais_conv_redispatch(agent, note->about_conversation_id.data, note->reassign_to);
    char state[RELAIS_ADDRESS_MAX + RELAIS_REASON_MAX + 64];
    const char *ref = "", *enc = "";
    for (size_t i = 0; i < a->n_appts; i++) {
        if (memcmp(a->appts[i].conversation_id, note->about_conversation_id.data,
                   RELAIS_MESSAGE_ID_LEN) != 0)
            continue;
        if (rc == 0) a->appts[i].state = APPT_REQUESTED; /* its answers start again */
        ref = a->appts[i].request_id;
        enc = a->appts[i].encounter_id;
    }
    for (size_t i = 0; i < a->n_tasks; i++) {
        if (memcmp(a->tasks[i].conversation_id, note->about_conversation_id.data,
                   RELAIS_MESSAGE_ID_LEN) != 0)
            continue;
        ref = a->tasks[i].task_id;
        enc = a->tasks[i].encounter_id;
    }
    if (rc == 0) {
        snprintf(state, sizeof state, "reassigned by the coordinator to %s", note->reassign_to);
    } else {
        const char *why = relais_conv_last_refusal(agent);
        snprintf(state, sizeof state, "coordinator's reassignment to %s not applied: %s",
                 note->reassign_to,
                 rc != RELAIS_EINVALID ? relais_strerror(rc)
                 : why[0] != '\0'     ? why
                                       : "the request is no longer open");
    }
    ref__emit_received(&a->em, d, ref, enc,
                       rc == 0 ? RELAIS_REF_MS_REASSIGNED : RELAIS_REF_MS_FAILED, state);
    return RELAIS_PROCESSED;
}

/* A refused or expired request will never be answered: say so on its conversation. */
static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    relais_ref_assistant_t *a = ud;
    ref__emit_receipt(&a->em, r);
    if (r->status != RELAIS__V1__RECEIPT__STATUS__REFUSED &&
        r->status != RELAIS__V1__RECEIPT__STATUS__EXPIRED) {
        return;
    }
    if (r->conversation_id.len != RELAIS_MESSAGE_ID_LEN) return;
    const uint8_t *conv = r->conversation_id.data;
    char state[160];
    snprintf(state, sizeof state, "%s by %s",
             r->status == RELAIS__V1__RECEIPT__STATUS__REFUSED ? "refused" : "expired",
             r->recipient);
    for (size_t i = 0; i < a->n_appts; i++) {
        appt_t *ap = &a->appts[i];
        if (memcmp(ap->conversation_id, conv, RELAIS_MESSAGE_ID_LEN) != 0) continue;
        if (ap->state == APPT_REQUESTED || ap->state == APPT_BOOKING) {
            ap->state = APPT_FAILED;
            ref__emit_notice(&a->em, ap->request_id, ap->encounter_id, RELAIS_REF_MS_FAILED, state);
        }
    }
    for (size_t i = 0; i < a->n_tasks; i++) {
        task_t *t = &a->tasks[i];
        if (memcmp(t->conversation_id, conv, RELAIS_MESSAGE_ID_LEN) == 0 && t->status == 0) {
            t->status = RELAIS__V1__CARE_TASK_UPDATE__STATUS__FAILED;
            ref__emit_notice(&a->em, t->task_id, t->encounter_id, RELAIS_REF_MS_FAILED, state);
        }
    }
}

/* ---- Deadlines: the SDK's conversation tracking reported as events ------------------ */

static void on_reminder(relais_agent_t *agent, const relais_conv_info_t *conv, void *ud)
{
    relais_ref_assistant_t *a = ud;
    char state[RELAIS_ADDRESS_MAX + 96];
    snprintf(state, sizeof state, "reminder: %s %.64s still %s, waiting on %s",
             relais_conv_kind_name(conv->kind), conv->request_id,
             relais_conv_state_name(conv->state), conv->counterpart);
    ref__emit_notice(&a->em, conv->request_id, "", RELAIS_REF_MS_REMINDER, state);
}

static void on_escalation(relais_agent_t *agent, const relais_conv_info_t *conv,
                          const Relais__V1__Escalation *esc, int send_rc, void *ud)
{
    relais_ref_assistant_t *a = ud;
    char state[RELAIS_ADDRESS_MAX + 96];
    if (send_rc == 0) {
        snprintf(state, sizeof state, "deadline passed: escalated, %s was responsible",
                 esc->responsible);
    } else {
        snprintf(state, sizeof state, "deadline passed: escalation not sent (%s)",
                 relais_strerror(send_rc));
    }
    ref__emit_notice(&a->em, conv->request_id, "",
                     send_rc == 0 ? RELAIS_REF_MS_ESCALATED : RELAIS_REF_MS_FAILED, state);
}

/*
 * The SDK asks where a declined, rejected, unanswered or undeliverable request goes next:
 * the route's first candidate that never had it, if any (then the SDK escalates, once).
 */
static bool on_redispatch(relais_agent_t *agent, const relais_conv_info_t *conv,
                          char next[RELAIS_ADDRESS_MAX], void *ud)
{
    relais_ref_assistant_t *a = ud;
    const char *to = NULL;
    appt_t *ap = find_appt(a, conv->request_id);
    task_t *t = ap == NULL ? find_task(a, conv->request_id) : NULL;
    if (ap != NULL) to = next_candidate(a, ap->route, conv, ap->gp);
    if (t != NULL) to = next_candidate(a, t->route, conv, t->gp);
    if (to == NULL) return false;
    snprintf(next, RELAIS_ADDRESS_MAX, "%s", to);
    if (ap != NULL) ap->state = APPT_REQUESTED; /* its answers start again */
    char state[RELAIS_ADDRESS_MAX * 2 + 48];
    snprintf(state, sizeof state, "%s %s: sent to %s instead", conv->counterpart,
             relais_conv_state_name(conv->state), to);
    ref__emit_notice(&a->em, conv->request_id, ap != NULL ? ap->encounter_id : t->encounter_id,
                     RELAIS_REF_MS_REDISPATCHED, state);
    return true;
}

/* ---- Life cycle ---------------------------------------------------------------------- */

/* Copies cfg's routes, then the three single addresses as one-candidate routes. */
static int copy_routes(relais_ref_assistant_t *a, const relais_ref_assistant_config_t *cfg)
{
    static const char *const legacy_roles[] = {"nurse", "physiotherapist", "specialist"};
    const char *legacy[] = {cfg->nurse, cfg->physiotherapist, cfg->specialist};
    size_t n = cfg->n_routes + 3;
    a->routes = calloc(n, sizeof *a->routes);
    if (a->routes == NULL) return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const relais_ref_route_t *in = i < cfg->n_routes ? &cfg->routes[i] : NULL;
        const char *single = in == NULL ? legacy[i - cfg->n_routes] : NULL;
        if (in == NULL && (single == NULL || single[0] == '\0')) continue;
        if (in != NULL && (in->role == NULL || in->n_candidates == 0 || in->candidates == NULL))
            return RELAIS_ECONFIG;
        route_t *r = &a->routes[a->n_routes++];
        r->role = strdup(in != NULL ? in->role : legacy_roles[i - cfg->n_routes]);
        r->specialty = strdup(in != NULL && in->specialty != NULL ? in->specialty : "");
        r->offer = in != NULL && in->offer;
        size_t nc = in != NULL ? in->n_candidates : 1;
        r->candidates = calloc(nc, sizeof *r->candidates);
        if (r->role == NULL || r->specialty == NULL || r->candidates == NULL) return -ENOMEM;
        for (; r->n_candidates < nc; r->n_candidates++) {
            const char *c = in != NULL ? in->candidates[r->n_candidates] : single;
            if (c == NULL || (strcmp(c, "@gp") != 0 && !relais_address_valid(c)))
                return RELAIS_ECONFIG;
            r->candidates[r->n_candidates] = strdup(c);
            if (r->candidates[r->n_candidates] == NULL) return -ENOMEM;
        }
    }
    return 0;
}

/* Copies an optional address; 0, RELAIS_ECONFIG when invalid, -ENOMEM. */
static int copy_addr(char **dst, const char *src)
{
    *dst = NULL;
    if (src == NULL || src[0] == '\0') return 0;
    if (!relais_address_valid(src)) return RELAIS_ECONFIG;
    *dst = strdup(src);
    return *dst != NULL ? 0 : -ENOMEM;
}

int relais_ref_assistant_new(relais_ref_assistant_t **out, relais_agent_t *agent,
                             const relais_ref_assistant_config_t *cfg)
{
    *out = NULL;
    if (agent == NULL || cfg == NULL || cfg->n_gps == 0 || cfg->gps == NULL) {
        return RELAIS_ECONFIG;
    }
    relais_ref_assistant_t *a = calloc(1, sizeof *a);
    if (a == NULL) return -ENOMEM;
    a->agent = agent;
    a->em = (ref__emitter_t){.fn = cfg->on_event, .ud = cfg->event_ud, .agent = agent};

    int rc = -ENOMEM;
    a->gps = calloc(cfg->n_gps, sizeof *a->gps);
    if (a->gps == NULL) goto err;
    for (; a->n_gps < cfg->n_gps; a->n_gps++) {
        if (cfg->gps[a->n_gps] == NULL || cfg->gps[a->n_gps][0] == '\0') {
            rc = RELAIS_ECONFIG;
            goto err;
        }
        rc = copy_addr(&a->gps[a->n_gps], cfg->gps[a->n_gps]);
        if (rc != 0) goto err;
    }
    if ((rc = copy_addr(&a->nurse, cfg->nurse)) != 0) goto err;
    if ((rc = copy_addr(&a->physiotherapist, cfg->physiotherapist)) != 0) goto err;
    if ((rc = copy_addr(&a->specialist, cfg->specialist)) != 0) goto err;
    if ((rc = copy_routes(a, cfg)) != 0) goto err;
    a->booking = cfg->booking;
    a->rebook_no_show = cfg->rebook_no_show;
    if (cfg->tracking != NULL) {
        if ((rc = copy_addr(&a->coordinator, cfg->tracking->coordinator)) != 0) goto err;
        a->tracking = true;
        /* A route that offers to its pool does so on a re-dispatch too. */
        a->tracking_opts = *cfg->tracking;
        a->tracking_opts.coordinator = a->coordinator;
        for (size_t i = 0; i < a->n_routes; i++)
            a->tracking_opts.offer_to_pools |= a->routes[i].offer;
    }
    rc = relais_ref_assistant_rebind(a, agent);
    if (rc != 0) goto err;
    *out = a;
    return 0;

err:
    relais_ref_assistant_destroy(&a);
    return rc;
}

int relais_ref_assistant_rebind(relais_ref_assistant_t *a, relais_agent_t *agent)
{
    if (a == NULL || agent == NULL) return RELAIS_EINVALID;
    a->agent = agent;
    a->em.agent = agent;
    static const int cases[] = {
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME,
        RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL,
        RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION,
        RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE,
        RELAIS__V1__ENVELOPE__BODY_NOTE,
        RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION,
        RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE,
    };
    static const relais_handler_fn fns[] = {on_offer,       on_decline, on_confirm,
                                            on_outcome,     on_cancel,  on_discharge,
                                            on_task_update, on_note,    on_preadmission_decision,
                                            on_admission};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int rc = relais_agent_on(agent, cases[i], fns[i], a);
        if (rc != 0) return rc;
    }
    relais_agent_on_receipt(agent, on_receipt, a);
    if (!a->tracking) return 0;
    /* The conversations are in the agent's state file: a new agent on the same file picks
     * them up with their deadlines. */
    relais_conv_hooks_t hooks = {.on_reminder = on_reminder,
                                 .on_escalation = on_escalation,
                                 .redispatch = on_redispatch,
                                 .ud = a};
    return relais_conv_enable(agent, &a->tracking_opts, &hooks);
}

void relais_ref_assistant_destroy(relais_ref_assistant_t **ap)
{
    if (ap == NULL || *ap == NULL) return;
    relais_ref_assistant_t *a = *ap;
    for (size_t i = 0; i < a->n_gps; i++) free(a->gps[i]);
    free(a->gps);
    free(a->nurse);
    free(a->physiotherapist);
    free(a->specialist);
    free(a->coordinator);
    for (size_t i = 0; i < a->n_routes; i++) {
        for (size_t k = 0; k < a->routes[i].n_candidates; k++) free(a->routes[i].candidates[k]);
        free(a->routes[i].candidates);
        free(a->routes[i].role);
        free(a->routes[i].specialty);
    }
    free(a->routes);
    for (size_t i = 0; i < a->n_appts; i++) free(a->appts[i].request);
    free(a->appts);
    free(a->preadms);
    free(a->tasks);
    free(a);
    *ap = NULL;
}
