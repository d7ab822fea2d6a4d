/*
 * Unit tests of the conversation state machines (agents/runtime/conv_machine.c) and their
 * deadlines (conv_steps.c): pure functions, no agent, no socket.
 *
 * Appointments and care tasks are checked from tables — every valid transition of each
 * side, a set of invalid ones, and the repeats that must be acknowledged without effect —
 * where each row starts a conversation in a given state, feeds it one message, and names
 * the verdict and the state that must follow. Preadmissions and discharges are sequences,
 * because their state is a summary of their parts. Then the out-of-order cases and what the
 * broker's answers do, and the deadlines of each step.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "conv_internal.h"

#define SELF "staff:claire.martin@cabinet-dupont"
#define PEER "rpps:10109876543"
#define STRANGER "rpps:10100000001"
#define REQ "req-1"

/* ---- Building messages ------------------------------------------------------------- */

/* One envelope with storage for whichever body a test gives it. */
typedef struct msg {
    Relais__V1__Envelope env;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    char *to[4];
    Relais__V1__AppointmentRequest areq;
    Relais__V1__AppointmentOffer offer;
    Relais__V1__AppointmentDecline decline;
    Relais__V1__AppointmentBook book;
    Relais__V1__AppointmentConfirm confirm;
    Relais__V1__AppointmentOutcome outcome;
    Relais__V1__AppointmentCancel cancel;
    Relais__V1__CareTaskRequest treq;
    Relais__V1__CareTaskUpdate update;
    Relais__V1__PreadmissionRequest preq;
    Relais__V1__PreadmissionDecision decision;
    Relais__V1__PreadmissionChoice choice;
    Relais__V1__PreadmissionCancel pcancel;
    Relais__V1__AdmissionNotice admission;
    Relais__V1__DischargeNotification discharge;
    Relais__V1__DischargeCancelled dcancel;
    Relais__V1__FollowUpItem items[2];
    Relais__V1__FollowUpItem *item_ptrs[2];
    Relais__V1__TimeWindow windows[2];
} msg_t;

static uint8_t next_id = 1;

/* An envelope of body case bc, with a fresh id, in conversation conv (NULL: it opens its
 * own); body_set() gives it its body. */
static void msg_init(msg_t *m, int bc, int sub, const uint8_t *conv)
{
    memset(m, 0, sizeof(*m));
    relais__v1__envelope__init(&m->env);
    memset(m->id, next_id++, sizeof(m->id));
    m->env.message_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, m->id};
    if (conv)
        m->env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, (uint8_t *)conv};
    m->env.sender = "";
    m->env.body_case = (Relais__V1__Envelope__BodyCase)bc;
    (void)sub;
}

/* Sets the body pointer and request id for bc. */
static void body_set(msg_t *m, int bc, int sub)
{
    Relais__V1__Envelope *e = &m->env;
    switch (bc) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
        relais__v1__appointment_request__init(&m->areq);
        m->areq.request_id = REQ;
        e->appointment_request = &m->areq;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
        relais__v1__appointment_offer__init(&m->offer);
        m->offer.request_id = REQ;
        e->appointment_offer = &m->offer;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE:
        relais__v1__appointment_decline__init(&m->decline);
        m->decline.request_id = REQ;
        m->decline.reason = "no capacity";
        e->appointment_decline = &m->decline;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK:
        relais__v1__appointment_book__init(&m->book);
        m->book.request_id = REQ;
        e->appointment_book = &m->book;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
        relais__v1__appointment_confirm__init(&m->confirm);
        m->confirm.request_id = REQ;
        e->appointment_confirm = &m->confirm;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME:
        relais__v1__appointment_outcome__init(&m->outcome);
        m->outcome.request_id = REQ;
        m->outcome.outcome = (Relais__V1__AppointmentOutcome__Outcome)sub;
        e->appointment_outcome = &m->outcome;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL:
        relais__v1__appointment_cancel__init(&m->cancel);
        m->cancel.request_id = REQ;
        e->appointment_cancel = &m->cancel;
        break;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST:
        relais__v1__care_task_request__init(&m->treq);
        m->treq.task_id = REQ;
        e->care_task_request = &m->treq;
        break;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE:
        relais__v1__care_task_update__init(&m->update);
        m->update.task_id = REQ;
        m->update.status = (Relais__V1__CareTaskUpdate__Status)sub;
        e->care_task_update = &m->update;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST:
        relais__v1__preadmission_request__init(&m->preq);
        m->preq.request_id = REQ;
        e->preadmission_request = &m->preq;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION:
        relais__v1__preadmission_decision__init(&m->decision);
        m->decision.request_id = REQ;
        m->decision.decision = (Relais__V1__PreadmissionDecision__Decision)sub;
        e->preadmission_decision = &m->decision;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE:
        relais__v1__preadmission_choice__init(&m->choice);
        m->choice.request_id = REQ;
        e->preadmission_choice = &m->choice;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL:
        relais__v1__preadmission_cancel__init(&m->pcancel);
        m->pcancel.request_id = REQ;
        e->preadmission_cancel = &m->pcancel;
        break;
    case RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE:
        relais__v1__admission_notice__init(&m->admission);
        m->admission.request_id = REQ;
        e->admission_notice = &m->admission;
        break;
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION:
        relais__v1__discharge_notification__init(&m->discharge);
        m->discharge.encounter_id = REQ;
        e->discharge_notification = &m->discharge;
        break;
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED:
        relais__v1__discharge_cancelled__init(&m->dcancel);
        m->dcancel.encounter_id = REQ;
        e->discharge_cancelled = &m->dcancel;
        break;
    }
}

static const uint8_t CONV_ID[RELAIS_MESSAGE_ID_LEN] = {0xc0, 0xc0};

/* A message from `from` (incoming) or to `to` (outgoing) in the test conversation. */
static conv_event_t event(msg_t *m, int bc, int sub, bool outgoing, const char *peer)
{
    msg_init(m, bc, sub, CONV_ID);
    body_set(m, bc, sub);
    if (outgoing) {
        m->to[0] = (char *)peer;
        m->env.to = m->to;
        m->env.n_to = 1;
    } else {
        m->env.sender = (char *)peer;
    }
    return (conv_event_t){.env = &m->env, .outgoing = outgoing, .self = SELF, .now_ms = 5000};
}

/* A conversation of kind, on side role, already in state, with PEER. */
static conv_t *conv_in(relais_conv_kind_t kind, relais_conv_role_t role, relais_conv_state_t state)
{
    conv_t *c = conv__new();
    cr_assert_not_null(c);
    memcpy(c->id, CONV_ID, sizeof(c->id));
    c->kind = kind;
    c->role = role;
    c->state = state;
    c->opened_ms = c->entered_ms = c->updated_ms = 1000;
    strcpy(c->counterpart, PEER);
    strcpy(c->request_id, REQ);
    return c;
}

/* ---- Tables of appointment and care-task transitions ------------------------------- */

#define IN false
#define OUT true
#define RQ RELAIS_CONV_REQUESTER
#define PV RELAIS_CONV_PROVIDER
#define ST(x) RELAIS_CONV_##x
#define B(x) RELAIS__V1__ENVELOPE__BODY_##x
#define FULFILLED RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED
#define NOSHOW RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__NOSHOW
#define TS(x) RELAIS__V1__CARE_TASK_UPDATE__STATUS__##x

typedef struct row {
    const char *says;
    relais_conv_role_t role;
    relais_conv_state_t from;
    int body, sub;
    bool outgoing;
    conv_verdict_t verdict;
    relais_conv_state_t to; /* expected state afterwards (== from unless applied) */
} row_t;

/* One row per line reads as the lifecycle table of docs/CONVERSATIONS.md. */
/* clang-format off */
static const row_t appointment_rows[] = {
    /* Valid transitions, requester's side. */
    {"an offer answers a request", RQ, ST(REQUESTED), B(APPOINTMENT_OFFER), 0, IN, CONV_APPLIED, ST(OFFERED)},
    {"an offer answers a received request", RQ, ST(RECEIVED), B(APPOINTMENT_OFFER), 0, IN, CONV_APPLIED, ST(OFFERED)},
    {"a new offer replaces the previous one", RQ, ST(OFFERED), B(APPOINTMENT_OFFER), 0, IN, CONV_APPLIED, ST(OFFERED)},
    {"after a no-show the provider offers again", RQ, ST(NOSHOW), B(APPOINTMENT_OFFER), 0, IN, CONV_APPLIED, ST(OFFERED)},
    {"a decline answers a request", RQ, ST(REQUESTED), B(APPOINTMENT_DECLINE), 0, IN, CONV_APPLIED, ST(DECLINED)},
    {"an offer may be withdrawn by a decline", RQ, ST(OFFERED), B(APPOINTMENT_DECLINE), 0, IN, CONV_APPLIED, ST(DECLINED)},
    {"the requester books an offered slot", RQ, ST(OFFERED), B(APPOINTMENT_BOOK), 0, OUT, CONV_APPLIED, ST(BOOKED)},
    {"the requester rebooks after a no-show", RQ, ST(NOSHOW), B(APPOINTMENT_BOOK), 0, OUT, CONV_APPLIED, ST(BOOKED)},
    {"the provider confirms a booking", RQ, ST(BOOKED), B(APPOINTMENT_CONFIRM), 0, IN, CONV_APPLIED, ST(CONFIRMED)},
    {"the outcome closes a confirmed appointment", RQ, ST(CONFIRMED), B(APPOINTMENT_OUTCOME), FULFILLED, IN, CONV_APPLIED, ST(FULFILLED)},
    {"a no-show is an outcome", RQ, ST(CONFIRMED), B(APPOINTMENT_OUTCOME), NOSHOW, IN, CONV_APPLIED, ST(NOSHOW)},
    {"an outcome may overtake its confirmation", RQ, ST(BOOKED), B(APPOINTMENT_OUTCOME), FULFILLED, IN, CONV_APPLIED, ST(FULFILLED)},
    {"the requester cancels a pending request", RQ, ST(REQUESTED), B(APPOINTMENT_CANCEL), 0, OUT, CONV_APPLIED, ST(CANCELLED)},
    {"the provider cancels a confirmed appointment", RQ, ST(CONFIRMED), B(APPOINTMENT_CANCEL), 0, IN, CONV_APPLIED, ST(CANCELLED)},
    {"a declined request may be requested again", RQ, ST(DECLINED), B(APPOINTMENT_REQUEST), 0, OUT, CONV_APPLIED, ST(REQUESTED)},
    {"an undeliverable request may be requested again", RQ, ST(UNDELIVERABLE), B(APPOINTMENT_REQUEST), 0, OUT, CONV_APPLIED, ST(REQUESTED)},
    /* Valid transitions, provider's side. */
    {"the provider offers slots", PV, ST(RECEIVED), B(APPOINTMENT_OFFER), 0, OUT, CONV_APPLIED, ST(OFFERED)},
    {"the provider declines", PV, ST(RECEIVED), B(APPOINTMENT_DECLINE), 0, OUT, CONV_APPLIED, ST(DECLINED)},
    {"the provider receives a booking", PV, ST(OFFERED), B(APPOINTMENT_BOOK), 0, IN, CONV_APPLIED, ST(BOOKED)},
    {"the provider confirms", PV, ST(BOOKED), B(APPOINTMENT_CONFIRM), 0, OUT, CONV_APPLIED, ST(CONFIRMED)},
    {"the provider reports the outcome", PV, ST(CONFIRMED), B(APPOINTMENT_OUTCOME), FULFILLED, OUT, CONV_APPLIED, ST(FULFILLED)},
    {"the requester cancels at the provider", PV, ST(BOOKED), B(APPOINTMENT_CANCEL), 0, IN, CONV_APPLIED, ST(CANCELLED)},
    {"the requester comes back after a decline", PV, ST(DECLINED), B(APPOINTMENT_REQUEST), 0, IN, CONV_APPLIED, ST(RECEIVED)},
    /* Invalid transitions. */
    {"booking a declined request is refused", RQ, ST(DECLINED), B(APPOINTMENT_BOOK), 0, OUT, CONV_REFUSED, ST(DECLINED)},
    {"booking before any offer is refused", RQ, ST(REQUESTED), B(APPOINTMENT_BOOK), 0, OUT, CONV_REFUSED, ST(REQUESTED)},
    {"confirming a cancelled appointment is refused", RQ, ST(CANCELLED), B(APPOINTMENT_CONFIRM), 0, IN, CONV_REFUSED, ST(CANCELLED)},
    {"an outcome after a cancel is refused", RQ, ST(CANCELLED), B(APPOINTMENT_OUTCOME), FULFILLED, IN, CONV_REFUSED, ST(CANCELLED)},
    {"a confirmation of an unbooked offer is refused", RQ, ST(OFFERED), B(APPOINTMENT_CONFIRM), 0, IN, CONV_REFUSED, ST(OFFERED)},
    {"the requester cannot offer", RQ, ST(REQUESTED), B(APPOINTMENT_OFFER), 0, OUT, CONV_REFUSED, ST(REQUESTED)},
    {"the provider cannot book", PV, ST(OFFERED), B(APPOINTMENT_BOOK), 0, OUT, CONV_REFUSED, ST(OFFERED)},
    {"a booking before the provider offered is refused", PV, ST(RECEIVED), B(APPOINTMENT_BOOK), 0, IN, CONV_REFUSED, ST(RECEIVED)},
    {"a fulfilled appointment cannot be cancelled", RQ, ST(FULFILLED), B(APPOINTMENT_CANCEL), 0, OUT, CONV_REFUSED, ST(FULFILLED)},
    {"an outcome without a value is refused", RQ, ST(CONFIRMED), B(APPOINTMENT_OUTCOME), 0, IN, CONV_REFUSED, ST(CONFIRMED)},
    {"an outcome before the booking is refused", RQ, ST(OFFERED), B(APPOINTMENT_OUTCOME), NOSHOW, IN, CONV_REFUSED, ST(OFFERED)},
    {"a confirmed appointment is not requested again", RQ, ST(CONFIRMED), B(APPOINTMENT_REQUEST), 0, OUT, CONV_REFUSED, ST(CONFIRMED)},
    {"a provider cannot request", PV, ST(RECEIVED), B(APPOINTMENT_REQUEST), 0, OUT, CONV_REFUSED, ST(RECEIVED)},
    {"a declined provider cannot confirm", PV, ST(DECLINED), B(APPOINTMENT_CONFIRM), 0, OUT, CONV_REFUSED, ST(DECLINED)},
    /* Repeats: acknowledged, nothing changes. */
    {"a late duplicate offer after booking changes nothing", RQ, ST(BOOKED), B(APPOINTMENT_OFFER), 0, IN, CONV_STALE, ST(BOOKED)},
    {"a second confirmation changes nothing", RQ, ST(CONFIRMED), B(APPOINTMENT_CONFIRM), 0, IN, CONV_STALE, ST(CONFIRMED)},
    {"a confirmation after the outcome changes nothing", RQ, ST(FULFILLED), B(APPOINTMENT_CONFIRM), 0, IN, CONV_STALE, ST(FULFILLED)},
    {"a second cancel changes nothing", RQ, ST(CANCELLED), B(APPOINTMENT_CANCEL), 0, IN, CONV_STALE, ST(CANCELLED)},
    {"a second decline changes nothing", RQ, ST(DECLINED), B(APPOINTMENT_DECLINE), 0, IN, CONV_STALE, ST(DECLINED)},
    {"a repeated outcome changes nothing", RQ, ST(FULFILLED), B(APPOINTMENT_OUTCOME), FULFILLED, IN, CONV_STALE, ST(FULFILLED)},
    {"a request sent again by the requester changes nothing", PV, ST(RECEIVED), B(APPOINTMENT_REQUEST), 0, IN, CONV_STALE, ST(RECEIVED)},
};

static const row_t care_task_rows[] = {
    {"the provider says it received the task", RQ, ST(REQUESTED), B(CARE_TASK_UPDATE), TS(RECEIVED), IN, CONV_APPLIED, ST(RECEIVED)},
    {"the provider accepts", RQ, ST(RECEIVED), B(CARE_TASK_UPDATE), TS(ACCEPTED), IN, CONV_APPLIED, ST(ACCEPTED)},
    {"the provider rejects", RQ, ST(REQUESTED), B(CARE_TASK_UPDATE), TS(REJECTED), IN, CONV_APPLIED, ST(REJECTED)},
    {"work starts", RQ, ST(ACCEPTED), B(CARE_TASK_UPDATE), TS(IN_PROGRESS), IN, CONV_APPLIED, ST(IN_PROGRESS)},
    {"the task is completed", RQ, ST(IN_PROGRESS), B(CARE_TASK_UPDATE), TS(COMPLETED), IN, CONV_APPLIED, ST(COMPLETED)},
    {"the task failed", RQ, ST(ACCEPTED), B(CARE_TASK_UPDATE), TS(FAILED), IN, CONV_APPLIED, ST(FAILED)},
    {"the requester cancels", RQ, ST(ACCEPTED), B(CARE_TASK_UPDATE), TS(CANCELLED), OUT, CONV_APPLIED, ST(CANCELLED)},
    {"the provider completes its task", PV, ST(RECEIVED), B(CARE_TASK_UPDATE), TS(COMPLETED), OUT, CONV_APPLIED, ST(COMPLETED)},
    {"the requester cannot complete the task", RQ, ST(ACCEPTED), B(CARE_TASK_UPDATE), TS(COMPLETED), OUT, CONV_REFUSED, ST(ACCEPTED)},
    {"a completed task cannot fail", RQ, ST(COMPLETED), B(CARE_TASK_UPDATE), TS(FAILED), IN, CONV_REFUSED, ST(COMPLETED)},
    {"a cancelled task cannot be accepted", RQ, ST(CANCELLED), B(CARE_TASK_UPDATE), TS(ACCEPTED), IN, CONV_REFUSED, ST(CANCELLED)},
    {"a status without a value is refused", RQ, ST(REQUESTED), B(CARE_TASK_UPDATE), 0, IN, CONV_REFUSED, ST(REQUESTED)},
    {"a late 'received' after acceptance changes nothing", RQ, ST(ACCEPTED), B(CARE_TASK_UPDATE), TS(RECEIVED), IN, CONV_STALE, ST(ACCEPTED)},
    {"a late 'accepted' after completion changes nothing", RQ, ST(COMPLETED), B(CARE_TASK_UPDATE), TS(ACCEPTED), IN, CONV_STALE, ST(COMPLETED)},
};
/* clang-format on */

static void run_rows(relais_conv_kind_t kind, const row_t *rows, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        const row_t *r = &rows[i];
        conv_t *c = conv_in(kind, r->role, r->from);
        msg_t m;
        conv_event_t ev = event(&m, r->body, r->sub, r->outgoing, PEER);
        char reason[RELAIS_REASON_MAX] = "";
        conv_verdict_t v = conv__advance(c, &ev, reason, sizeof(reason));
        cr_expect_eq(v, r->verdict, "%s: verdict %d, expected %d (%s)", r->says, v, r->verdict,
                     reason);
        cr_expect_eq(c->state, r->to, "%s: state %s, expected %s", r->says,
                     relais_conv_state_name(c->state), relais_conv_state_name(r->to));
        if (r->verdict == CONV_REFUSED)
            cr_expect(strstr(reason, relais_body_name(r->body)) != NULL,
                      "%s: the reason names the message: %s", r->says, reason);
        conv__free(&c);
    }
}

Test(appointment, every_row_of_the_lifecycle_table_holds)
{
    run_rows(RELAIS_CONV_APPOINTMENT, appointment_rows,
             sizeof(appointment_rows) / sizeof(appointment_rows[0]));
}

Test(care_task, every_row_of_the_lifecycle_table_holds)
{
    run_rows(RELAIS_CONV_CARE_TASK, care_task_rows,
             sizeof(care_task_rows) / sizeof(care_task_rows[0]));
}

/* ---- Appointments: details the table does not show --------------------------------- */

static conv_verdict_t feed(conv_t *c, int bc, int sub, bool outgoing, const char *peer,
                           char *reason)
{
    msg_t m;
    conv_event_t ev = event(&m, bc, sub, outgoing, peer);
    return conv__advance(c, &ev, reason, RELAIS_REASON_MAX);
}

Test(appointment, a_refusal_names_the_state_and_the_transition)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(DECLINED));
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(feed(c, B(APPOINTMENT_BOOK), 0, OUT, PEER, reason), CONV_REFUSED);
    cr_expect(strstr(reason, "appointment_book") && strstr(reason, "is declined") &&
                  strstr(reason, "booked") && strstr(reason, "needs offered"),
              "%s", reason);
    conv__free(&c);
}

Test(appointment, an_offer_for_an_unknown_request_is_refused)
{
    msg_t m;
    conv_event_t ev = event(&m, B(APPOINTMENT_OFFER), 0, IN, PEER);
    conv_t *c = NULL;
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(conv__open(&ev, &c, reason, sizeof(reason)), CONV_REFUSED);
    cr_expect_null(c);
    cr_expect(strstr(reason, "unknown request") != NULL, "%s", reason);
}

Test(appointment, a_message_from_someone_else_is_refused)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(REQUESTED));
    char reason[RELAIS_REASON_MAX];
    cr_expect_eq(feed(c, B(APPOINTMENT_OFFER), 0, IN, STRANGER, reason), CONV_REFUSED);
    cr_expect(strstr(reason, "not a participant") != NULL, "%s", reason);
    cr_expect_eq(feed(c, B(APPOINTMENT_CANCEL), 0, OUT, STRANGER, reason), CONV_REFUSED);
    cr_expect_eq(c->state, ST(REQUESTED));
    conv__free(&c);
}

Test(appointment, a_pool_request_is_bound_to_the_member_who_answers)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(REQUESTED));
    strcpy(c->counterpart, "service:nurse@relais-test");
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(feed(c, B(APPOINTMENT_OFFER), 0, IN, PEER, reason), CONV_APPLIED, "%s", reason);
    cr_expect_str_eq(c->counterpart, PEER);
    /* From now on only that member speaks for the pool. */
    cr_expect_eq(feed(c, B(APPOINTMENT_DECLINE), 0, IN, STRANGER, reason), CONV_REFUSED);
    conv__free(&c);
}

Test(appointment, a_message_naming_another_request_is_refused)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(REQUESTED));
    msg_t m;
    conv_event_t ev = event(&m, B(APPOINTMENT_OFFER), 0, IN, PEER);
    m.offer.request_id = "req-2";
    char reason[RELAIS_REASON_MAX];
    cr_expect_eq(conv__advance(c, &ev, reason, sizeof(reason)), CONV_REFUSED);
    cr_expect(strstr(reason, "req-2") != NULL, "%s", reason);
    conv__free(&c);
}

Test(appointment, a_message_of_another_kind_is_refused)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(REQUESTED));
    char reason[RELAIS_REASON_MAX];
    cr_expect_eq(feed(c, B(PREADMISSION_DECISION), 1, IN, PEER, reason), CONV_REFUSED);
    cr_expect(strstr(reason, "appointment") != NULL, "%s", reason);
    conv__free(&c);
}

Test(appointment, opening_records_the_request_and_its_side)
{
    msg_t m;
    msg_init(&m, B(APPOINTMENT_REQUEST), 0, NULL);
    body_set(&m, B(APPOINTMENT_REQUEST), 0);
    Relais__V1__PatientRef patient = RELAIS__V1__PATIENT_REF__INIT;
    patient.local_id = "pat-42";
    m.areq.patient = &patient;
    m.to[0] = PEER;
    m.env.to = m.to;
    m.env.n_to = 1;
    conv_event_t ev = {.env = &m.env, .outgoing = true, .self = SELF, .now_ms = 7};
    conv_t *c = NULL;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    cr_expect_eq(c->role, RQ);
    cr_expect_eq(c->state, ST(REQUESTED));
    cr_expect_arr_eq(c->id, m.id, RELAIS_MESSAGE_ID_LEN, "the request's id names the conversation");
    cr_expect_str_eq(c->counterpart, PEER);
    cr_expect_str_eq(c->patient, "pat-42");
    conv__free(&c);

    /* The same request seen by the provider. */
    m.env.sender = SELF;
    ev.outgoing = false;
    ev.self = PEER;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    cr_expect_eq(c->role, PV);
    cr_expect_eq(c->state, ST(RECEIVED));
    cr_expect_str_eq(c->counterpart, SELF);
    conv__free(&c);

    /* One provider per appointment conversation. */
    m.to[1] = STRANGER;
    m.env.n_to = 2;
    ev.outgoing = true;
    char reason[RELAIS_REASON_MAX];
    cr_expect_eq(conv__open(&ev, &c, reason, sizeof(reason)), CONV_REFUSED);
}

/* ---- Out of order, and what the broker says ----------------------------------------- */

Test(out_of_order, a_confirm_before_our_book_was_accepted_is_applied_and_kept)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(OFFERED));
    msg_t book;
    conv_event_t ev = event(&book, B(APPOINTMENT_BOOK), 0, OUT, PEER);
    cr_assert_eq(conv__advance(c, &ev, NULL, 0), CONV_APPLIED);
    /* The confirmation arrives before the broker's Accepted for the booking. */
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(feed(c, B(APPOINTMENT_CONFIRM), 0, IN, PEER, reason), CONV_APPLIED, "%s", reason);
    /* A late rejection of the booking no longer undoes anything: it was confirmed. */
    cr_expect_not(conv__on_rejected(c, book.id, "overloaded", 6000));
    cr_expect_eq(c->state, ST(CONFIRMED));
    conv__free(&c);
}

Test(out_of_order, a_rejected_book_returns_the_conversation_to_offered)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(OFFERED));
    msg_t book;
    conv_event_t ev = event(&book, B(APPOINTMENT_BOOK), 0, OUT, PEER);
    cr_assert_eq(conv__advance(c, &ev, NULL, 0), CONV_APPLIED);
    cr_assert(conv__on_rejected(c, book.id, "FORBIDDEN: not a participant", 6000));
    cr_expect_eq(c->state, ST(OFFERED));
    cr_expect(strstr(c->reason, "appointment_book") != NULL, "%s", c->reason);
    conv__free(&c);
}

Test(out_of_order, a_request_refused_by_its_recipient_becomes_undeliverable)
{
    msg_t m;
    msg_init(&m, B(APPOINTMENT_REQUEST), 0, NULL);
    body_set(&m, B(APPOINTMENT_REQUEST), 0);
    m.to[0] = PEER;
    m.env.to = m.to;
    m.env.n_to = 1;
    conv_event_t ev = {.env = &m.env, .outgoing = true, .self = SELF, .now_ms = 7};
    conv_t *c = NULL;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    cr_expect(conv__on_delivered(c, m.id, PEER, 8));
    cr_expect_eq(c->state, ST(RECEIVED));
    cr_expect(conv__on_undeliverable(c, m.id, PEER, "refused by " PEER ": no handler", 9));
    cr_expect_eq(c->state, ST(UNDELIVERABLE));
    cr_expect(strstr(c->reason, "no handler") != NULL);
    conv__free(&c);
}

Test(out_of_order, a_redispatch_takes_a_pending_request_to_the_next_candidate)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(RECEIVED));
    msg_t m;
    conv_event_t ev = event(&m, B(APPOINTMENT_REQUEST), 0, OUT, STRANGER);
    char reason[RELAIS_REASON_MAX];
    /* The application alone cannot move a pending request elsewhere… */
    cr_expect_eq(conv__advance(c, &ev, reason, sizeof(reason)), CONV_REFUSED);
    /* …the SDK's redispatch can. */
    ev.redispatch = true;
    cr_assert_eq(conv__advance(c, &ev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->state, ST(REQUESTED));
    cr_expect_str_eq(c->counterpart, STRANGER);
    cr_expect_eq(c->redispatches, 1);
    /* The first provider's late offer is no longer welcome. */
    cr_expect_eq(feed(c, B(APPOINTMENT_OFFER), 0, IN, PEER, reason), CONV_REFUSED);
    conv__free(&c);
}

/* ---- Candidates a request already had (issue 10's livelock) ------------------------- */

#define POOL_ADDR "service:nurse@relais-test"

Test(candidates, a_pool_and_the_member_who_answered_for_it_both_count_as_tried)
{
    /* The route [PEER, STRANGER, pool]: PEER and STRANGER rejected, the pool gave the task
     * back to PEER, who rejects again. */
    conv_t *c = conv_in(RELAIS_CONV_CARE_TASK, RQ, ST(REJECTED));
    cr_assert(conv__note_candidate(c, PEER, ST(REJECTED), 1000));
    char reason[RELAIS_REASON_MAX];
    msg_t m;
    conv_event_t ev = event(&m, B(CARE_TASK_REQUEST), 0, OUT, STRANGER);
    ev.redispatch = true;
    cr_assert_eq(conv__advance(c, &ev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_assert_eq(feed(c, B(CARE_TASK_UPDATE), RELAIS__V1__CARE_TASK_UPDATE__STATUS__REJECTED, IN,
                      STRANGER, reason),
                 CONV_APPLIED, "%s", reason);
    ev = event(&m, B(CARE_TASK_REQUEST), 0, OUT, POOL_ADDR);
    ev.redispatch = true;
    cr_assert_eq(conv__advance(c, &ev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_assert_eq(feed(c, B(CARE_TASK_UPDATE), RELAIS__V1__CARE_TASK_UPDATE__STATUS__REJECTED, IN,
                      PEER, reason),
                 CONV_APPLIED, "%s", reason);
    /* The member who answered is the counterpart, and the pool is not forgotten. */
    cr_expect_str_eq(c->counterpart, PEER);
    cr_expect(conv__tried(c, PEER));
    cr_expect(conv__tried(c, STRANGER));
    cr_expect(conv__tried(c, POOL_ADDR));
    cr_expect_eq(c->nparts, 3);
    cr_expect_eq(c->redispatches, 2);
    for (size_t i = 0; i < c->nparts; i++) {
        cr_expect_str_eq(c->parts[i].label, CONV_CANDIDATE_LABEL);
        cr_expect_eq(c->parts[i].state, ST(REJECTED), "%s is %s", c->parts[i].key,
                     relais_conv_state_name(c->parts[i].state));
    }
    conv__free(&c);
}

Test(candidates, an_opened_request_records_its_first_candidate_on_the_requester_side_only)
{
    msg_t m;
    msg_init(&m, B(APPOINTMENT_REQUEST), 0, NULL);
    body_set(&m, B(APPOINTMENT_REQUEST), 0);
    m.to[0] = PEER;
    m.env.to = m.to;
    m.env.n_to = 1;
    conv_event_t ev = {.env = &m.env, .outgoing = true, .self = SELF, .now_ms = 7};
    conv_t *c = NULL;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    cr_expect(conv__tried(c, PEER));
    cr_expect_not(conv__tried(c, STRANGER));
    conv__free(&c);
    m.env.sender = PEER;
    ev.outgoing = false;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    cr_expect_eq(c->nparts, 0, "a provider keeps no list of candidates");
    conv__free(&c);
}

Test(candidates, the_escalated_once_mark_survives_the_next_steps)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(DECLINED));
    c->flags = CONV_F_ESCALATED | CONV_F_ESCALATED_ONCE;
    char reason[RELAIS_REASON_MAX];
    msg_t m;
    conv_event_t ev = event(&m, B(APPOINTMENT_REQUEST), 0, OUT, STRANGER);
    ev.redispatch = true;
    cr_assert_eq(conv__advance(c, &ev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->flags, CONV_F_ESCALATED_ONCE, "a new step, the same request: %u", c->flags);
    conv__free(&c);
}

/* ---- Preadmissions ----------------------------------------------------------------- */

#define F1 "finess:350000011"
#define F2 "finess:350000014"
#define F3 "finess:350000022"

static relais_conv_state_t part_state(conv_t *c, const char *key)
{
    conv_part_t *p = conv__find_part(c, key);
    cr_assert_not_null(p, "no part %s", key);
    return p->state;
}

Test(preadmission, three_facilities_refused_accepted_waitlisted_then_a_choice)
{
    msg_t m;
    msg_init(&m, B(PREADMISSION_REQUEST), 0, NULL);
    body_set(&m, B(PREADMISSION_REQUEST), 0);
    char *to[3] = {F1, F2, F3};
    m.env.to = to;
    m.env.n_to = 3;
    conv_event_t ev = {.env = &m.env, .outgoing = true, .self = SELF, .now_ms = 10};
    conv_t *c = NULL;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    cr_assert_eq(c->nparts, 3);
    cr_expect_eq(c->state, ST(REQUESTED));
    /* The receipts may come in separately from each recipient. */
    memcpy(c->id, CONV_ID, sizeof(c->id));
    cr_expect(conv__on_delivered(c, m.id, F2, 11));
    cr_expect_eq(part_state(c, F2), ST(RECEIVED));

    char reason[RELAIS_REASON_MAX];
    const int ACC = RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED;
    const int WAIT = RELAIS__V1__PREADMISSION_DECISION__DECISION__WAITLISTED;
    const int REF = RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED;
    cr_assert_eq(feed(c, B(PREADMISSION_DECISION), REF, IN, F1, reason), CONV_APPLIED, "%s",
                 reason);
    cr_expect_eq(c->state, ST(REQUESTED), "two facilities still to answer");
    cr_assert_eq(feed(c, B(PREADMISSION_DECISION), ACC, IN, F2, reason), CONV_APPLIED, "%s",
                 reason);
    cr_expect_eq(c->state, ST(ACCEPTED), "one acceptance: the requester may choose");
    cr_assert_eq(feed(c, B(PREADMISSION_DECISION), WAIT, IN, F3, reason), CONV_APPLIED, "%s",
                 reason);
    cr_expect_eq(c->state, ST(ACCEPTED));
    cr_expect_eq(feed(c, B(PREADMISSION_DECISION), WAIT, IN, F3, reason), CONV_STALE);
    cr_expect_eq(feed(c, B(PREADMISSION_DECISION), ACC, IN, STRANGER, reason), CONV_REFUSED);
    cr_expect(strstr(reason, "not a candidate") != NULL, "%s", reason);

    /* A refused facility cannot be chosen; nor can anyone before deciding. */
    cr_expect_eq(feed(c, B(PREADMISSION_CHOICE), 0, OUT, F1, reason), CONV_REFUSED);
    cr_expect(strstr(reason, "is refused") != NULL, "%s", reason);
    cr_expect_eq(feed(c, B(ADMISSION_NOTICE), 0, IN, F2, reason), CONV_REFUSED,
                 "no admission before the choice");

    cr_assert_eq(feed(c, B(PREADMISSION_CHOICE), 0, OUT, F2, reason), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->state, ST(CHOSEN));
    cr_expect_str_eq(c->counterpart, F2);
    cr_expect_eq(part_state(c, F2), ST(CHOSEN));
    cr_expect_eq(part_state(c, F3), ST(CANCELLING), "the waitlisted one is owed a cancel");
    cr_expect_eq(part_state(c, F1), ST(REFUSED), "the refused one is left alone");
    cr_expect_eq(feed(c, B(PREADMISSION_CHOICE), 0, OUT, F3, reason), CONV_REFUSED,
                 "one choice only");

    cr_assert_eq(feed(c, B(PREADMISSION_CANCEL), 0, OUT, F3, reason), CONV_APPLIED, "%s", reason);
    cr_expect_eq(part_state(c, F3), ST(CANCELLED));
    cr_expect_eq(c->state, ST(CHOSEN));
    /* F3's decision crossing our cancel, and its admission, do not count. */
    cr_expect_eq(feed(c, B(PREADMISSION_DECISION), ACC, IN, F3, reason), CONV_STALE);
    cr_expect_eq(feed(c, B(ADMISSION_NOTICE), 0, IN, F3, reason), CONV_REFUSED);

    cr_assert_eq(feed(c, B(ADMISSION_NOTICE), 0, IN, F2, reason), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->state, ST(ADMITTED));
    cr_expect_eq(feed(c, B(ADMISSION_NOTICE), 0, IN, F2, reason), CONV_STALE);
    conv__free(&c);
}

Test(preadmission, every_facility_refusing_closes_the_request)
{
    conv_t *c = conv_in(RELAIS_CONV_PREADMISSION, RQ, ST(REQUESTED));
    cr_assert_not_null(conv__add_part(c, F1, "", ST(REQUESTED), 0, 1));
    cr_assert_not_null(conv__add_part(c, F2, "", ST(REQUESTED), 0, 1));
    const int REF = RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED;
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(feed(c, B(PREADMISSION_DECISION), REF, IN, F1, reason), CONV_APPLIED);
    cr_assert_eq(feed(c, B(PREADMISSION_DECISION), REF, IN, F2, reason), CONV_APPLIED);
    cr_expect_eq(c->state, ST(REFUSED));
    cr_expect_not(conv__is_open(c));
    conv__free(&c);
}

Test(preadmission, the_facility_side_follows_its_own_candidacy)
{
    /* Seen from F2, with the requester as counterpart. */
    msg_t m;
    msg_init(&m, B(PREADMISSION_REQUEST), 0, NULL);
    body_set(&m, B(PREADMISSION_REQUEST), 0);
    char *to[3] = {F1, F2, F3};
    m.env.to = to;
    m.env.n_to = 3;
    m.env.sender = SELF;
    conv_event_t ev = {.env = &m.env, .outgoing = false, .self = F2, .now_ms = 10};
    conv_t *c = NULL;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    cr_expect_eq(c->state, ST(RECEIVED));
    memcpy(c->id, CONV_ID, sizeof(c->id));

    char reason[RELAIS_REASON_MAX];
    msg_t d;
    conv_event_t dev = event(&d, B(PREADMISSION_DECISION),
                             RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED, OUT, SELF);
    dev.self = F2;
    cr_assert_eq(conv__advance(c, &dev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->state, ST(ACCEPTED));

    msg_t ch;
    conv_event_t cev = event(&ch, B(PREADMISSION_CHOICE), 0, IN, SELF);
    cev.self = F2;
    ch.choice.facility = F1;
    cr_expect_eq(conv__advance(c, &cev, reason, sizeof(reason)), CONV_REFUSED,
                 "a choice of someone else is not ours");
    ch.choice.facility = F2;
    cr_assert_eq(conv__advance(c, &cev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->state, ST(CHOSEN));

    msg_t an;
    conv_event_t aev = event(&an, B(ADMISSION_NOTICE), 0, OUT, SELF);
    aev.self = F2;
    cr_assert_eq(conv__advance(c, &aev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->state, ST(ADMITTED));
    conv__free(&c);

    /* Another facility is cancelled when the requester chose elsewhere. */
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    memcpy(c->id, CONV_ID, sizeof(c->id));
    msg_t pc;
    conv_event_t pev = event(&pc, B(PREADMISSION_CANCEL), 0, IN, SELF);
    pev.self = F2;
    cr_assert_eq(conv__advance(c, &pev, reason, sizeof(reason)), CONV_APPLIED, "%s", reason);
    cr_expect_eq(c->state, ST(CANCELLED));
    conv__free(&c);
}

/* ---- Discharges -------------------------------------------------------------------- */

static conv_t *discharge_received(msg_t *m)
{
    msg_init(m, B(DISCHARGE_NOTIFICATION), 0, NULL);
    body_set(m, B(DISCHARGE_NOTIFICATION), 0);
    const char *ids[2] = {"gp-7d", "cardio-2m"}, *roles[2] = {"gp", "specialist"};
    const int64_t due[2] = {8000, 9000};
    for (int i = 0; i < 2; i++) {
        relais__v1__follow_up_item__init(&m->items[i]);
        relais__v1__time_window__init(&m->windows[i]);
        m->items[i].item_id = (char *)ids[i];
        m->items[i].role = (char *)roles[i];
        m->items[i].action = "consultation";
        m->windows[i].due_by_ms = due[i];
        m->items[i].window = &m->windows[i];
        m->item_ptrs[i] = &m->items[i];
    }
    m->discharge.follow_up = m->item_ptrs;
    m->discharge.n_follow_up = 2;
    m->env.sender = PEER;
    conv_event_t ev = {.env = &m->env, .outgoing = false, .self = SELF, .now_ms = 1000};
    conv_t *c = NULL;
    cr_assert_eq(conv__open(&ev, &c, NULL, 0), CONV_APPLIED);
    return c;
}

Test(discharge, the_plan_becomes_items_each_tracked_to_completed_or_failed)
{
    msg_t m;
    conv_t *d = discharge_received(&m);
    cr_expect_eq(d->state, ST(NOTIFIED));
    cr_assert_eq(d->nparts, 2);
    cr_expect_eq(d->parts[0].state, ST(PENDING));
    cr_expect_str_eq(d->parts[1].label, "specialist: consultation");

    /* A replay of the same notification creates nothing. */
    msg_t again;
    conv_event_t ev = event(&again, B(DISCHARGE_NOTIFICATION), 0, IN, PEER);
    cr_expect_eq(conv__advance(d, &ev, NULL, 0), CONV_STALE);

    conv_t *gp = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(REQUESTED));
    conv_t *cardio = conv_in(RELAIS_CONV_CARE_TASK, RQ, ST(REQUESTED));
    gp->id[15] = 1;
    cardio->id[15] = 2;
    memcpy(d->parts[0].ref, gp->id, RELAIS_MESSAGE_ID_LEN);
    d->parts[0].has_ref = true;
    memcpy(d->parts[1].ref, cardio->id, RELAIS_MESSAGE_ID_LEN);
    d->parts[1].has_ref = true;
    cr_expect(conv__follow_child(d, gp, 2000));
    cr_expect_eq(d->parts[0].state, ST(REQUESTED));

    gp->state = ST(FULFILLED);
    cr_expect(conv__follow_child(d, gp, 3000));
    cr_expect_eq(d->parts[0].state, ST(COMPLETED));
    cr_expect_eq(d->state, ST(NOTIFIED), "one item is still open");
    cardio->state = ST(FAILED);
    cr_expect(conv__follow_child(d, cardio, 4000));
    cr_expect_eq(d->parts[1].state, ST(FAILED));
    cr_expect_eq(d->state, ST(COMPLETED), "every item completed or failed");
    conv__free(&gp);
    conv__free(&cardio);
    conv__free(&d);
}

Test(discharge, only_the_hospital_withdraws_its_notification)
{
    msg_t m;
    conv_t *d = discharge_received(&m);
    char reason[RELAIS_REASON_MAX];
    cr_expect_eq(feed(d, B(DISCHARGE_CANCELLED), 0, IN, STRANGER, reason), CONV_REFUSED);
    cr_assert_eq(feed(d, B(DISCHARGE_CANCELLED), 0, IN, PEER, reason), CONV_APPLIED, "%s", reason);
    cr_expect_eq(d->state, ST(CANCELLED));
    cr_expect_eq(feed(d, B(DISCHARGE_CANCELLED), 0, IN, PEER, reason), CONV_STALE);
    conv__free(&d);
}

/* ---- Deadlines --------------------------------------------------------------------- */

static const relais_conv_options_t windows = {.answer_ms = 100,
                                              .book_ms = 200,
                                              .confirm_ms = 300,
                                              .outcome_ms = 400,
                                              .choice_ms = 500,
                                              .admission_ms = 600,
                                              .follow_up_ms = 700};

Test(deadlines, each_step_has_its_window_and_its_actor)
{
    conv_t *c = conv_in(RELAIS_CONV_APPOINTMENT, RQ, ST(REQUESTED));
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 1100);
    cr_expect_eq(conv__reminder_at(c, 0.5), 1050);
    cr_expect_eq(conv__reminder_at(c, -1), 0, "reminders disabled");
    cr_expect(conv__waiting_on_counterpart(c));
    cr_expect(conv__escalates(c), "the requester escalates an unanswered request");

    c->state = ST(OFFERED);
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 1200);
    cr_expect_not(conv__waiting_on_counterpart(c), "the requester must book");
    cr_expect_not(conv__escalates(c));
    c->due_ms = 1150; /* the offer is held until then */
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 1150);

    c->state = ST(CONFIRMED);
    c->due_ms = 5000; /* the appointment ends then: the outcome is due after it */
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 5400);

    c->state = ST(FULFILLED);
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 0);
    cr_expect_not(conv__is_open(c));

    /* The provider's side of an unanswered request: it must act, the requester escalates. */
    c->role = PV;
    c->state = ST(RECEIVED);
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 1100);
    cr_expect_not(conv__escalates(c));
    conv__free(&c);
}

Test(deadlines, a_discharge_moves_on_to_its_next_item_once_one_is_escalated)
{
    msg_t m;
    conv_t *d = discharge_received(&m);
    conv__schedule(d, &windows);
    cr_expect_eq(d->deadline_ms, 8000);
    cr_expect(conv__escalates(d), "the receiver escalates its late follow-up");
    cr_expect_str_eq(conv__current_item(d, &windows)->key, "gp-7d");
    conv__mark(d, &windows, CONV_F_ESCALATED);
    conv__schedule(d, &windows);
    cr_expect_eq(d->deadline_ms, 9000);
    cr_expect_eq(d->flags, 0, "the next item has had neither reminder nor escalation");
    conv__mark(d, &windows, CONV_F_ESCALATED);
    conv__schedule(d, &windows);
    cr_expect_eq(d->deadline_ms, 0);
    conv__free(&d);
}

Test(deadlines, a_preadmission_waits_for_decisions_then_for_the_choice_then_the_admission)
{
    conv_t *c = conv_in(RELAIS_CONV_PREADMISSION, RQ, ST(REQUESTED));
    cr_assert_not_null(conv__add_part(c, F1, "", ST(REQUESTED), 0, 1));
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 1100);
    char who[RELAIS_ADDRESS_MAX];
    conv__responsible(c, SELF, who);
    cr_expect_str_eq(who, F1);
    c->state = ST(ACCEPTED);
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 1500);
    c->state = ST(CHOSEN);
    c->due_ms = 3000; /* the admission date the facility gave */
    conv__schedule(c, &windows);
    cr_expect_eq(c->deadline_ms, 3600);
    conv__free(&c);
}

Test(names, every_state_has_a_name)
{
    for (int s = RELAIS_CONV_REQUESTED; s <= RELAIS_CONV_CANCELLING; s++)
        cr_expect_str_neq(relais_conv_state_name((relais_conv_state_t)s), "unknown", "state %d", s);
    cr_expect_str_eq(relais_conv_state_name((relais_conv_state_t)99), "unknown");
    cr_expect_str_eq(relais_conv_kind_name(RELAIS_CONV_PREADMISSION), "preadmission");
}

Test(names, every_agent_state_has_its_name)
{
    cr_expect_str_eq(relais_agent_state_name(RELAIS_AGENT_CONNECTING), "connecting");
    cr_expect_str_eq(relais_agent_state_name(RELAIS_AGENT_READY), "ready");
    cr_expect_str_eq(relais_agent_state_name(RELAIS_AGENT_DISCONNECTED), "disconnected");
    cr_expect_str_eq(relais_agent_state_name(RELAIS_AGENT_STOPPED), "stopped");
    cr_expect_str_eq(relais_agent_state_name((relais_agent_state_t)0), "unknown");
}
