/*
 * The conversation state machines made of parts: a preadmission holds one part per
 * candidate facility, a discharge one part per follow-up item.
 *
 * Companion of conv_machine.c (which classifies messages, opens conversations, holds the
 * tables of the linear lifecycles and dispatches here). A preadmission's summary state is
 * derived from its candidates on the requester's side — accepted as soon as one facility
 * accepted, requested while some have not answered, waitlisted, or refused when none is
 * left — and is the facility's own candidacy on a facility's side. A choice marks every
 * other candidate still in the running as owed a cancel (CANCELLING), which the SDK then
 * sends: the marks are in the state file, so a crash between the choice and the cancels
 * only delays them to the next start. A discharge plan's items follow the conversations the
 * application opened for them; the plan is complete when every item is completed or failed.
 */
#include <string.h>

#include "conv_internal.h"

#define S(x) (1u << RELAIS_CONV_##x)
#define R RELAIS_CONV_REQUESTER
#define P RELAIS_CONV_PROVIDER

typedef Relais__V1__Envelope env_t;

static const char *body(int body_case)
{
    return relais_body_name(body_case);
}

/* ---- Preadmissions ----------------------------------------------------------------- */

#define CANDIDATE_ACTIVE                                                                           \
    (S(REQUESTED) | S(RECEIVED) | S(ACCEPTED) | S(WAITLISTED) | S(CHOSEN) | S(CANCELLING))

/* The requester's summary of its candidates, before a choice. */
relais_conv_state_t conv__derive_preadmission(const conv_t *c)
{
    if (c->role == P || c->state == RELAIS_CONV_CHOSEN || c->state == RELAIS_CONV_ADMITTED ||
        c->state == RELAIS_CONV_CANCELLED)
        return c->state;
    uint32_t seen = 0;
    for (size_t i = 0; i < c->nparts; i++) seen |= 1u << c->parts[i].state;
    if (seen & S(ACCEPTED)) return RELAIS_CONV_ACCEPTED;
    if (seen & (S(REQUESTED) | S(RECEIVED))) return RELAIS_CONV_REQUESTED;
    if (seen & S(WAITLISTED)) return RELAIS_CONV_WAITLISTED;
    return RELAIS_CONV_REFUSED;
}

static conv_verdict_t pre_request(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    const env_t *e = ev->env;
    if (conv__sender_role(c, ev) != R)
        return conv__refuse(reason, len,
                            "preadmission_request refused: this agent is a candidate "
                            "facility of the conversation, not its requester");
    if (!ev->outgoing) return CONV_STALE; /* the requester sent it to us again */
    if (c->state == RELAIS_CONV_CHOSEN || c->state == RELAIS_CONV_ADMITTED ||
        c->state == RELAIS_CONV_CANCELLED)
        return conv__refuse(reason, len,
                            "preadmission_request refused: the preadmission is %s; "
                            "candidates are added only before the choice",
                            relais_conv_state_name(c->state));
    bool added = false;
    for (size_t i = 0; i < e->n_to; i++) {
        if (conv__find_part(c, e->to[i])) continue;
        conv_part_t *p = conv__add_part(c, e->to[i], "", RELAIS_CONV_REQUESTED, 0, ev->now_ms);
        if (!p) return conv__refuse(reason, len, "preadmission_request refused: out of memory");
        memcpy(p->ref, e->message_id.data, RELAIS_MESSAGE_ID_LEN);
        p->has_ref = true;
        added = true;
    }
    if (!added) return CONV_STALE;
    conv__enter(c, conv__derive_preadmission(c), ev->now_ms);
    conv__note(c, ev);
    return CONV_APPLIED;
}

static relais_conv_state_t decision_state(int decision)
{
    switch (decision) {
    case RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED:
        return RELAIS_CONV_ACCEPTED;
    case RELAIS__V1__PREADMISSION_DECISION__DECISION__WAITLISTED:
        return RELAIS_CONV_WAITLISTED;
    case RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED:
        return RELAIS_CONV_REFUSED;
    default:
        return 0;
    }
}

/* The candidate a facility's message is about: the sender, or ourselves when we send. */
static conv_part_t *facility_part(conv_t *c, const conv_event_t *ev, char *reason, size_t len,
                                  const char *what)
{
    const char *who = ev->outgoing ? ev->self : ev->env->sender;
    conv_part_t *p = conv__find_part(c, who);
    if (!p)
        conv__refuse(reason, len,
                     "%s refused: %s is not a candidate facility of this "
                     "preadmission",
                     what, who);
    return p;
}

static conv_verdict_t pre_decision(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    const Relais__V1__PreadmissionDecision *d = ev->env->preadmission_decision;
    if (conv__sender_role(c, ev) != P)
        return conv__refuse(reason, len,
                            "preadmission_decision refused: only a candidate facility "
                            "sends it");
    relais_conv_state_t to = decision_state(d->decision);
    if (!to)
        return conv__refuse(reason, len,
                            "preadmission_decision refused: the decision must be "
                            "ACCEPTED, WAITLISTED or REFUSED");
    conv_part_t *p = facility_part(c, ev, reason, len, "preadmission_decision");
    if (!p) return CONV_REFUSED;
    if (p->state == to) return CONV_STALE;
    const uint32_t decidable =
        S(REQUESTED) | S(RECEIVED) | S(ACCEPTED) | S(WAITLISTED) | S(REFUSED);
    if (c->state == RELAIS_CONV_CHOSEN || c->state == RELAIS_CONV_ADMITTED ||
        c->state == RELAIS_CONV_CANCELLED || !((1u << p->state) & decidable)) {
        /* A decision crossing the choice or our cancel: it no longer matters. */
        if (p->state == RELAIS_CONV_CANCELLED || p->state == RELAIS_CONV_CANCELLING)
            return CONV_STALE;
        return conv__refuse(reason, len,
                            "preadmission_decision refused: the preadmission is %s and "
                            "this candidate %s; a decision needs requested, received, accepted, "
                            "waitlisted or refused",
                            relais_conv_state_name(c->state), relais_conv_state_name(p->state));
    }
    conv__part_enter(p, to, ev->now_ms);
    p->due_ms = d->admission_date_ms;
    if (to == RELAIS_CONV_REFUSED) conv__copy(c->reason, sizeof(c->reason), d->reason);
    conv__enter(c, c->role == P ? to : conv__derive_preadmission(c), ev->now_ms);
    conv__note(c, ev);
    return CONV_APPLIED;
}

static conv_verdict_t pre_choice(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    const env_t *e = ev->env;
    const Relais__V1__PreadmissionChoice *ch = e->preadmission_choice;
    if (conv__sender_role(c, ev) != R)
        return conv__refuse(reason, len, "preadmission_choice refused: only the requester chooses");
    const char *facility = ch->facility && *ch->facility ? ch->facility
                           : ev->outgoing                ? (e->n_to ? e->to[0] : "")
                                                         : ev->self;
    if (!ev->outgoing && strcmp(facility, ev->self) != 0)
        return conv__refuse(reason, len,
                            "preadmission_choice refused: it chooses %s, not this "
                            "facility",
                            facility);
    conv_part_t *chosen = conv__find_part(c, facility);
    if (!chosen)
        return conv__refuse(reason, len,
                            "preadmission_choice refused: %s is not a candidate of this "
                            "preadmission",
                            facility);
    if (c->state == RELAIS_CONV_CHOSEN || c->state == RELAIS_CONV_ADMITTED) {
        if (chosen->state == RELAIS_CONV_CHOSEN || chosen->state == RELAIS_CONV_ADMITTED)
            return CONV_STALE;
        return conv__refuse(reason, len,
                            "preadmission_choice refused: the preadmission is already "
                            "%s with %s",
                            relais_conv_state_name(c->state), c->counterpart);
    }
    if (chosen->state != RELAIS_CONV_ACCEPTED && chosen->state != RELAIS_CONV_WAITLISTED)
        return conv__refuse(reason, len,
                            "preadmission_choice refused: %s is %s; a choice needs "
                            "accepted or waitlisted",
                            facility, relais_conv_state_name(chosen->state));
    conv__part_enter(chosen, RELAIS_CONV_CHOSEN, ev->now_ms);
    /* Every other candidate still in the running is owed a cancel; the SDK sends them. */
    for (size_t i = 0; i < c->nparts; i++) {
        conv_part_t *p = &c->parts[i];
        if (p != chosen && ((1u << p->state) & CANDIDATE_ACTIVE))
            conv__part_enter(p, RELAIS_CONV_CANCELLING, ev->now_ms);
    }
    /* The requester's counterpart is now the chosen facility; a facility's stays the
     * requester. */
    if (c->role == R) conv__copy(c->counterpart, sizeof(c->counterpart), facility);
    c->due_ms = chosen->due_ms;
    conv__enter(c, RELAIS_CONV_CHOSEN, ev->now_ms);
    conv__note(c, ev);
    return CONV_APPLIED;
}

static conv_verdict_t pre_cancel(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    const env_t *e = ev->env;
    if (conv__sender_role(c, ev) != R)
        return conv__refuse(reason, len,
                            "preadmission_cancel refused: only the requester cancels "
                            "(a facility withdraws with a REFUSED decision)");
    size_t n = ev->outgoing ? e->n_to : 1;
    bool changed = false;
    for (size_t i = 0; i < n; i++) {
        const char *who = ev->outgoing ? e->to[i] : ev->self;
        conv_part_t *p = conv__find_part(c, who);
        if (!p)
            return conv__refuse(reason, len,
                                "preadmission_cancel refused: %s is not a candidate of "
                                "this preadmission",
                                who);
        if (p->state == RELAIS_CONV_CANCELLED) continue;
        if (!((1u << p->state) & (CANDIDATE_ACTIVE | S(ADMITTED))) ||
            p->state == RELAIS_CONV_ADMITTED)
            return conv__refuse(
                reason, len,
                "preadmission_cancel refused: candidate %s is %s; a "
                "cancel needs it requested, received, accepted, waitlisted or chosen",
                who, relais_conv_state_name(p->state));
        changed = true;
    }
    if (!changed) return CONV_STALE;
    for (size_t i = 0; i < n; i++) {
        conv_part_t *p = conv__find_part(c, ev->outgoing ? e->to[i] : ev->self);
        conv__part_enter(p, RELAIS_CONV_CANCELLED, ev->now_ms);
    }
    const char *why = e->preadmission_cancel->reason;
    if (why && *why) conv__copy(c->reason, sizeof(c->reason), why);
    bool active = false;
    for (size_t i = 0; i < c->nparts; i++)
        active |= ((1u << c->parts[i].state) & CANDIDATE_ACTIVE) != 0;
    if (!active || c->role == P)
        conv__enter(c, RELAIS_CONV_CANCELLED, ev->now_ms);
    else if (c->state != RELAIS_CONV_CHOSEN)
        conv__enter(c, conv__derive_preadmission(c), ev->now_ms);
    conv__note(c, ev);
    return CONV_APPLIED;
}

static conv_verdict_t pre_admission(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    if (conv__sender_role(c, ev) != P)
        return conv__refuse(reason, len,
                            "admission_notice refused: only the chosen facility sends it");
    conv_part_t *p = facility_part(c, ev, reason, len, "admission_notice");
    if (!p) return CONV_REFUSED;
    if (p->state == RELAIS_CONV_ADMITTED) return CONV_STALE;
    if (c->state != RELAIS_CONV_CHOSEN || p->state != RELAIS_CONV_CHOSEN)
        return conv__refuse(reason, len,
                            "admission_notice refused: the preadmission is %s and this "
                            "facility %s; an admission needs the facility chosen",
                            relais_conv_state_name(c->state), relais_conv_state_name(p->state));
    conv__part_enter(p, RELAIS_CONV_ADMITTED, ev->now_ms);
    conv__enter(c, RELAIS_CONV_ADMITTED, ev->now_ms);
    conv__note(c, ev);
    return CONV_APPLIED;
}

conv_verdict_t conv__advance_preadmission(conv_t *c, const conv_event_t *ev, char *reason,
                                          size_t len)
{
    const env_t *e = ev->env;
    /* On the facility's side every message comes from, or goes to, the requester. */
    if (c->role == P) {
        const char *peer = ev->outgoing ? (e->n_to == 1 ? e->to[0] : "") : e->sender;
        if (strcmp(peer, c->counterpart) != 0)
            return conv__refuse(reason, len,
                                "%s refused: %s is not the requester of this "
                                "preadmission (%s is)",
                                body((int)e->body_case), peer, c->counterpart);
    }
    switch (e->body_case) {
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST:
        return pre_request(c, ev, reason, len);
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION:
        return pre_decision(c, ev, reason, len);
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE:
        return pre_choice(c, ev, reason, len);
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL:
        return pre_cancel(c, ev, reason, len);
    case RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE:
        return pre_admission(c, ev, reason, len);
    default:
        return CONV_UNTRACKED;
    }
}

/* ---- Discharges -------------------------------------------------------------------- */

conv_verdict_t conv__advance_discharge(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    const env_t *e = ev->env;
    if (e->body_case == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION)
        return CONV_STALE; /* a replayed notification creates nothing new */
    if (conv__sender_role(c, ev) != R)
        return conv__refuse(reason, len,
                            "discharge_cancelled refused: only the facility that sent "
                            "the notification withdraws it");
    if (!ev->outgoing && strcmp(e->sender, c->counterpart) != 0)
        return conv__refuse(reason, len,
                            "discharge_cancelled refused: %s did not send this "
                            "discharge notification (%s did)",
                            e->sender, c->counterpart);
    if (c->state == RELAIS_CONV_CANCELLED) return CONV_STALE;
    conv__copy(c->reason, sizeof(c->reason), e->discharge_cancelled->reason);
    conv__enter(c, RELAIS_CONV_CANCELLED, ev->now_ms);
    conv__note(c, ev);
    return CONV_APPLIED;
}

static bool child_done(relais_conv_state_t s, bool *ok)
{
    switch (s) {
    case RELAIS_CONV_FULFILLED:
    case RELAIS_CONV_COMPLETED:
        *ok = true;
        return true;
    case RELAIS_CONV_NOSHOW:
    case RELAIS_CONV_FAILED:
    case RELAIS_CONV_CANCELLED:
    case RELAIS_CONV_DECLINED:
    case RELAIS_CONV_REJECTED:
    case RELAIS_CONV_UNDELIVERABLE:
        *ok = false;
        return true;
    default:
        return false;
    }
}

bool conv__follow_child(conv_t *d, const conv_t *child, int64_t now)
{
    if (d->kind != RELAIS_CONV_DISCHARGE) return false;
    bool changed = false;
    for (size_t i = 0; i < d->nparts; i++) {
        conv_part_t *p = &d->parts[i];
        if (!p->has_ref || memcmp(p->ref, child->id, RELAIS_MESSAGE_ID_LEN) != 0) continue;
        bool ok = false;
        relais_conv_state_t to = child_done(child->state, &ok)
                                     ? (ok ? RELAIS_CONV_COMPLETED : RELAIS_CONV_FAILED)
                                     : RELAIS_CONV_REQUESTED;
        if (p->state != to) {
            conv__part_enter(p, to, now);
            changed = true;
        }
    }
    if (!changed) return false;
    d->updated_ms = now;
    if (d->state == RELAIS_CONV_NOTIFIED || d->state == RELAIS_CONV_COMPLETED) {
        bool all = true;
        for (size_t i = 0; i < d->nparts; i++)
            all &= d->parts[i].state == RELAIS_CONV_COMPLETED ||
                   d->parts[i].state == RELAIS_CONV_FAILED;
        conv__enter(d, all ? RELAIS_CONV_COMPLETED : RELAIS_CONV_NOTIFIED, now);
    }
    return true;
}
