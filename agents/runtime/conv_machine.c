/*
 * The conversation state machines of PROTOCOL.md section 5, as pure functions.
 *
 * Nothing here knows about the agent, the socket or the state file: a conversation is a
 * conv_t, an event is an envelope with its direction, and the verdict says whether the
 * event is a valid transition (applied to the conv_t), a repeat of what the conversation
 * already knows (stale), or not allowed (refused, with a sentence naming the conversation's
 * state and the transition). Appointments and care tasks are tables of rules — which body,
 * sent by which side, moves which states to which — because their lifecycles are linear
 * and a table is what a reviewer checks against the protocol. Preadmissions (one part per
 * candidate facility) and discharges (one part per follow-up item) are in conv_parts.c;
 * what each state waits for, and until when, is conv_steps.c. Every transition works on a
 * copy of the conversation, so a refusal half-way leaves it untouched.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_internal.h"

#define S(x) (1u << RELAIS_CONV_##x)
#define R RELAIS_CONV_REQUESTER
#define P RELAIS_CONV_PROVIDER

typedef Relais__V1__Envelope env_t;

/* One transition of a linear lifecycle: `body` (with `sub`, an outcome or a status, when
 * not 0) sent by `by` (0: either side) moves the states in `from` to `to`; in the states
 * of `stale` it only repeats what is known. */
typedef struct rule {
    int body;
    int sub;
    relais_conv_role_t by;
    uint32_t from;
    uint32_t stale;
    relais_conv_state_t to;
} rule_t;

static const rule_t appointment_rules[] = {
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, 0, P,
     S(REQUESTED) | S(RECEIVED) | S(OFFERED) | S(NOSHOW), S(BOOKED) | S(CONFIRMED),
     RELAIS_CONV_OFFERED},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE, 0, P, S(REQUESTED) | S(RECEIVED) | S(OFFERED),
     S(DECLINED), RELAIS_CONV_DECLINED},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK, 0, R, S(OFFERED) | S(NOSHOW), S(BOOKED),
     RELAIS_CONV_BOOKED},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM, 0, P, S(BOOKED),
     S(CONFIRMED) | S(FULFILLED) | S(NOSHOW), RELAIS_CONV_CONFIRMED},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME,
     RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED, P, S(BOOKED) | S(CONFIRMED), S(FULFILLED),
     RELAIS_CONV_FULFILLED},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME,
     RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__NOSHOW, P, S(BOOKED) | S(CONFIRMED), S(NOSHOW),
     RELAIS_CONV_NOSHOW},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL, 0, 0,
     S(REQUESTED) | S(RECEIVED) | S(OFFERED) | S(BOOKED) | S(CONFIRMED) | S(DECLINED) | S(NOSHOW) |
         S(UNDELIVERABLE),
     S(CANCELLED), RELAIS_CONV_CANCELLED},
};

#define TASK_OPEN (S(REQUESTED) | S(RECEIVED) | S(ACCEPTED) | S(IN_PROGRESS))
#define TASK_UPDATE(status)                                                                        \
    RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE, RELAIS__V1__CARE_TASK_UPDATE__STATUS__##status

static const rule_t care_task_rules[] = {
    {TASK_UPDATE(RECEIVED), P, S(REQUESTED),
     S(RECEIVED) | S(ACCEPTED) | S(IN_PROGRESS) | S(COMPLETED) | S(FAILED) | S(REJECTED),
     RELAIS_CONV_RECEIVED},
    {TASK_UPDATE(ACCEPTED), P, S(REQUESTED) | S(RECEIVED),
     S(ACCEPTED) | S(IN_PROGRESS) | S(COMPLETED) | S(FAILED), RELAIS_CONV_ACCEPTED},
    {TASK_UPDATE(REJECTED), P, S(REQUESTED) | S(RECEIVED) | S(ACCEPTED), S(REJECTED),
     RELAIS_CONV_REJECTED},
    {TASK_UPDATE(IN_PROGRESS), P, S(REQUESTED) | S(RECEIVED) | S(ACCEPTED),
     S(IN_PROGRESS) | S(COMPLETED) | S(FAILED), RELAIS_CONV_IN_PROGRESS},
    {TASK_UPDATE(COMPLETED), P, TASK_OPEN, S(COMPLETED), RELAIS_CONV_COMPLETED},
    {TASK_UPDATE(FAILED), P, TASK_OPEN, S(FAILED), RELAIS_CONV_FAILED},
    {TASK_UPDATE(CANCELLED), 0, TASK_OPEN | S(REJECTED) | S(UNDELIVERABLE), S(CANCELLED),
     RELAIS_CONV_CANCELLED},
};

/* ---- Names and small helpers ------------------------------------------------------- */

const char *relais_conv_kind_name(relais_conv_kind_t kind)
{
    switch (kind) {
    case RELAIS_CONV_APPOINTMENT:
        return "appointment";
    case RELAIS_CONV_CARE_TASK:
        return "care task";
    case RELAIS_CONV_PREADMISSION:
        return "preadmission";
    case RELAIS_CONV_DISCHARGE:
        return "discharge";
    }
    return "unknown";
}

const char *relais_conv_state_name(relais_conv_state_t state)
{
    static const char *const names[] = {
        [RELAIS_CONV_REQUESTED] = "requested",
        [RELAIS_CONV_RECEIVED] = "received",
        [RELAIS_CONV_OFFERED] = "offered",
        [RELAIS_CONV_DECLINED] = "declined",
        [RELAIS_CONV_BOOKED] = "booked",
        [RELAIS_CONV_CONFIRMED] = "confirmed",
        [RELAIS_CONV_FULFILLED] = "fulfilled",
        [RELAIS_CONV_NOSHOW] = "no-show",
        [RELAIS_CONV_CANCELLED] = "cancelled",
        [RELAIS_CONV_ACCEPTED] = "accepted",
        [RELAIS_CONV_WAITLISTED] = "waitlisted",
        [RELAIS_CONV_REFUSED] = "refused",
        [RELAIS_CONV_CHOSEN] = "chosen",
        [RELAIS_CONV_ADMITTED] = "admitted",
        [RELAIS_CONV_IN_PROGRESS] = "in progress",
        [RELAIS_CONV_REJECTED] = "rejected",
        [RELAIS_CONV_COMPLETED] = "completed",
        [RELAIS_CONV_FAILED] = "failed",
        [RELAIS_CONV_NOTIFIED] = "notified",
        [RELAIS_CONV_PENDING] = "pending",
        [RELAIS_CONV_UNDELIVERABLE] = "undeliverable",
        [RELAIS_CONV_CANCELLING] = "cancelling",
    };
    if ((unsigned)state < sizeof(names) / sizeof(names[0]) && names[state]) return names[state];
    return "unknown";
}

static const char *role_name(relais_conv_role_t role)
{
    return role == R ? "requester" : "provider";
}

static relais_conv_role_t other(relais_conv_role_t role)
{
    return role == R ? P : R;
}

conv_verdict_t conv__refuse(char *reason, size_t len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (reason && len) vsnprintf(reason, len, fmt, ap);
    va_end(ap);
    return CONV_REFUSED;
}

void conv__copy(char *dst, size_t cap, const char *src)
{
    snprintf(dst, cap, "%s", src ? src : "");
}

/* "offered or no-show": the states of mask, for a refusal's reason. */
static void states_text(uint32_t mask, char *out, size_t cap)
{
    size_t n = 0;
    out[0] = '\0';
    for (int s = 1; s < 32; s++) {
        if (!(mask & (1u << s))) continue;
        int w = snprintf(out + n, cap - n, "%s%s", n ? " or " : "",
                         relais_conv_state_name((relais_conv_state_t)s));
        if (w < 0 || (size_t)w >= cap - n) break;
        n += (size_t)w;
    }
}

static const char *body(int body_case)
{
    return relais_body_name(body_case);
}

/* Who sent ev: our own role for a send, the other side's for a delivery. */
relais_conv_role_t conv__sender_role(const conv_t *c, const conv_event_t *ev)
{
    return ev->outgoing ? c->role : other(c->role);
}

void conv__enter(conv_t *c, relais_conv_state_t to, int64_t now)
{
    if (c->state != to) {
        c->prev_state = c->state;
        c->state = to;
        c->entered_ms = now;
        c->flags &= CONV_F_STICKY;
    }
}

/* Records the message that made a transition (a rejection of ours undoes it). */
void conv__note(conv_t *c, const conv_event_t *ev)
{
    const env_t *e = ev->env;
    if (e->message_id.len == RELAIS_MESSAGE_ID_LEN)
        memcpy(c->last_msg, e->message_id.data, RELAIS_MESSAGE_ID_LEN);
    c->last_body = (int)e->body_case;
    c->last_out = ev->outgoing;
    c->updated_ms = ev->now_ms;
}

static bool is_service(const char *address)
{
    return strncmp(address, "service:", 8) == 0;
}

/* ---- Classification ---------------------------------------------------------------- */

relais_conv_kind_t conv__kind_of(int body_case)
{
    switch (body_case) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE:
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK:
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME:
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL:
        return RELAIS_CONV_APPOINTMENT;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST:
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE:
        return RELAIS_CONV_CARE_TASK;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST:
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION:
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE:
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL:
    case RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE:
        return RELAIS_CONV_PREADMISSION;
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION:
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED:
        return RELAIS_CONV_DISCHARGE;
    default:
        return 0;
    }
}

bool conv__opens(int body_case)
{
    return body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST ||
           body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST ||
           body_case == RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST ||
           body_case == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION;
}

void conv__id_of(const env_t *env, uint8_t out[RELAIS_MESSAGE_ID_LEN])
{
    const ProtobufCBinaryData *b = env->conversation_id.len == RELAIS_MESSAGE_ID_LEN
                                       ? &env->conversation_id
                                       : &env->message_id;
    if (b->len == RELAIS_MESSAGE_ID_LEN)
        memcpy(out, b->data, RELAIS_MESSAGE_ID_LEN);
    else
        memset(out, 0, RELAIS_MESSAGE_ID_LEN);
}

const char *conv__body_request_id(const env_t *e)
{
    const char *id = NULL;
    switch (e->body_case) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
        id = e->appointment_request->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
        id = e->appointment_offer->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE:
        id = e->appointment_decline->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK:
        id = e->appointment_book->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
        id = e->appointment_confirm->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME:
        id = e->appointment_outcome->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL:
        id = e->appointment_cancel->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST:
        id = e->care_task_request->task_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE:
        id = e->care_task_update->task_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST:
        id = e->preadmission_request->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION:
        id = e->preadmission_decision->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE:
        id = e->preadmission_choice->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL:
        id = e->preadmission_cancel->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE:
        id = e->admission_notice->request_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION:
        id = e->discharge_notification->encounter_id;
        break;
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED:
        id = e->discharge_cancelled->encounter_id;
        break;
    default:
        break;
    }
    return id ? id : "";
}

static const Relais__V1__PatientRef *body_patient(const env_t *e)
{
    switch (e->body_case) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
        return e->appointment_request->patient;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST:
        return e->care_task_request->patient;
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST:
        return e->preadmission_request->patient;
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION:
        return e->discharge_notification->patient;
    default:
        return NULL;
    }
}

/* ---- Allocation -------------------------------------------------------------------- */

conv_t *conv__new(void)
{
    return calloc(1, sizeof(conv_t));
}

void conv__free(conv_t **c)
{
    if (!c || !*c) return;
    free((*c)->opening);
    free((*c)->parts);
    free(*c);
    *c = NULL;
}

conv_t *conv__clone(const conv_t *c)
{
    conv_t *n = malloc(sizeof(*n));
    if (!n) return NULL;
    *n = *c;
    n->opening = NULL;
    n->parts = NULL;
    n->next = NULL;
    if (c->opening_len && !(n->opening = malloc(c->opening_len))) goto err;
    if (c->opening_len) memcpy(n->opening, c->opening, c->opening_len);
    if (c->nparts && !(n->parts = malloc(c->nparts * sizeof(*n->parts)))) goto err;
    if (c->nparts) memcpy(n->parts, c->parts, c->nparts * sizeof(*n->parts));
    return n;
err:
    conv__free(&n);
    return NULL;
}

void conv__replace(conv_t *dst, conv_t **src)
{
    uint64_t timer_id = dst->timer_id;
    uint32_t version = dst->version;
    conv_t *next = dst->next;
    free(dst->opening);
    free(dst->parts);
    *dst = **src;
    dst->timer_id = timer_id;
    dst->version = version;
    dst->next = next;
    free(*src); /* its buffers now belong to dst */
    *src = NULL;
}

conv_part_t *conv__add_part(conv_t *c, const char *key, const char *label,
                            relais_conv_state_t state, int64_t due_ms, int64_t now_ms)
{
    conv_part_t *grown = realloc(c->parts, (c->nparts + 1) * sizeof(*grown));
    if (!grown) return NULL;
    c->parts = grown;
    conv_part_t *p = &c->parts[c->nparts++];
    memset(p, 0, sizeof(*p));
    conv__copy(p->key, sizeof(p->key), key);
    conv__copy(p->label, sizeof(p->label), label);
    p->state = state;
    p->due_ms = due_ms;
    p->updated_ms = now_ms;
    return p;
}

conv_part_t *conv__find_part(conv_t *c, const char *key)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (strcmp(c->parts[i].key, key) == 0) return &c->parts[i];
    return NULL;
}

void conv__part_enter(conv_part_t *p, relais_conv_state_t to, int64_t now)
{
    if (p->state != to) p->flags = 0;
    p->state = to;
    p->updated_ms = now;
}

/* ---- Opening ----------------------------------------------------------------------- */

static conv_verdict_t open_discharge(conv_t *c, const conv_event_t *ev)
{
    const Relais__V1__DischargeNotification *dn = ev->env->discharge_notification;
    c->state = RELAIS_CONV_NOTIFIED;
    for (size_t i = 0; i < dn->n_follow_up; i++) {
        const Relais__V1__FollowUpItem *it = dn->follow_up[i];
        if (!it || !it->item_id || !*it->item_id) continue;
        char label[CONV_TEXT_MAX];
        snprintf(label, sizeof(label), "%s%s%s: %s", it->role ? it->role : "",
                 it->specialty && *it->specialty ? "/" : "", it->specialty ? it->specialty : "",
                 it->action ? it->action : "");
        int64_t due = it->window ? it->window->due_by_ms : 0;
        if (!conv__add_part(c, it->item_id, label, RELAIS_CONV_PENDING, due, ev->now_ms))
            return CONV_UNTRACKED; /* the caller reports -ENOMEM */
    }
    /* A plan with nothing to follow is complete as soon as it is known. */
    if (c->nparts == 0 && c->role == P) c->state = RELAIS_CONV_COMPLETED;
    return CONV_APPLIED;
}

conv_verdict_t conv__open(const conv_event_t *ev, conv_t **out, char *reason, size_t reason_len)
{
    const env_t *e = ev->env;
    relais_conv_kind_t kind = conv__kind_of((int)e->body_case);
    *out = NULL;
    if (kind == 0) return CONV_UNTRACKED;
    if (!conv__opens((int)e->body_case)) {
        char id[37];
        uint8_t conv_id[RELAIS_MESSAGE_ID_LEN];
        conv__id_of(e, conv_id);
        return conv__refuse(reason, reason_len,
                            "%s refused: no %s conversation %s is known here (is it for an unknown "
                            "request?)",
                            body((int)e->body_case), relais_conv_kind_name(kind),
                            relais_id_format(conv_id, sizeof(conv_id), id));
    }
    if (kind != RELAIS_CONV_PREADMISSION && kind != RELAIS_CONV_DISCHARGE && ev->outgoing &&
        e->n_to != 1)
        return conv__refuse(reason, reason_len,
                            "%s refused: a %s conversation has one provider (or one pool address); "
                            "this request names %zu",
                            body((int)e->body_case), relais_conv_kind_name(kind), e->n_to);
    conv_t *c = conv__new();
    if (!c) return CONV_UNTRACKED;
    conv__id_of(e, c->id);
    c->kind = kind;
    c->role = ev->outgoing ? R : P;
    c->opened_ms = c->updated_ms = c->entered_ms = ev->now_ms;
    conv__copy(c->request_id, sizeof(c->request_id), conv__body_request_id(e));
    const Relais__V1__PatientRef *pt = body_patient(e);
    conv__copy(c->patient, sizeof(c->patient), pt ? pt->local_id : "");
    const char *peer = ev->outgoing ? (e->n_to ? e->to[0] : "") : e->sender;
    conv_verdict_t v = CONV_APPLIED;
    switch (kind) {
    case RELAIS_CONV_APPOINTMENT:
    case RELAIS_CONV_CARE_TASK:
        conv__copy(c->counterpart, sizeof(c->counterpart), peer);
        c->state = ev->outgoing ? RELAIS_CONV_REQUESTED : RELAIS_CONV_RECEIVED;
        if (kind == RELAIS_CONV_CARE_TASK && e->care_task_request->window)
            c->due_ms = e->care_task_request->window->due_by_ms;
        if (ev->outgoing && !conv__note_candidate(c, peer, c->state, ev->now_ms))
            v = CONV_UNTRACKED;
        break;
    case RELAIS_CONV_PREADMISSION:
        if (ev->outgoing) {
            c->state = RELAIS_CONV_REQUESTED;
            for (size_t i = 0; i < e->n_to && v == CONV_APPLIED; i++) {
                conv_part_t *p =
                    conv__add_part(c, e->to[i], "", RELAIS_CONV_REQUESTED, 0, ev->now_ms);
                if (!p)
                    v = CONV_UNTRACKED;
                else {
                    memcpy(p->ref, e->message_id.data, RELAIS_MESSAGE_ID_LEN);
                    p->has_ref = true;
                }
            }
        } else {
            conv__copy(c->counterpart, sizeof(c->counterpart), peer);
            c->state = RELAIS_CONV_RECEIVED;
            if (!conv__add_part(c, ev->self, "", RELAIS_CONV_RECEIVED, 0, ev->now_ms))
                v = CONV_UNTRACKED;
        }
        break;
    case RELAIS_CONV_DISCHARGE:
        conv__copy(c->counterpart, sizeof(c->counterpart), peer);
        v = open_discharge(c, ev);
        break;
    }
    if (v != CONV_APPLIED) {
        conv__free(&c);
        return v;
    }
    conv__note(c, ev);
    *out = c;
    return CONV_APPLIED;
}

/* ---- Appointments and care tasks: the tables --------------------------------------- */

static int rule_sub(const env_t *e)
{
    if (e->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME)
        return (int)e->appointment_outcome->outcome;
    if (e->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE)
        return (int)e->care_task_update->status;
    return 0;
}

/* The request again in a conversation that already has it: a re-request after a decline,
 * a redispatch, or a resend. */
static conv_verdict_t re_request(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    const env_t *e = ev->env;
    const uint32_t retry = S(DECLINED) | S(REJECTED) | S(UNDELIVERABLE);
    const uint32_t waiting = S(REQUESTED) | S(RECEIVED);
    const char *peer = ev->outgoing ? (e->n_to == 1 ? e->to[0] : "") : e->sender;
    if (conv__sender_role(c, ev) != R)
        return conv__refuse(reason, len,
                            "%s refused: only the requester sends it, and this agent is "
                            "the %s's counterpart",
                            body((int)e->body_case), role_name(R));
    if (ev->outgoing && e->n_to != 1)
        return conv__refuse(reason, len, "%s refused: a %s conversation has one provider",
                            body((int)e->body_case), relais_conv_kind_name(c->kind));
    bool same_peer = strcmp(peer, c->counterpart) == 0;
    if ((1u << c->state) & waiting) {
        if (ev->redispatch && ev->outgoing) goto apply;
        if (same_peer) return CONV_STALE;
        return conv__refuse(reason, len,
                            "%s refused: the %s is %s with %s; it goes to another "
                            "provider only once declined, rejected or undeliverable",
                            body((int)e->body_case), relais_conv_kind_name(c->kind),
                            relais_conv_state_name(c->state), c->counterpart);
    }
    if (!((1u << c->state) & retry))
        return conv__refuse(reason, len,
                            "%s refused: the %s is %s; a new request needs declined, "
                            "rejected or undeliverable",
                            body((int)e->body_case), relais_conv_kind_name(c->kind),
                            relais_conv_state_name(c->state));
apply:
    if (!same_peer) c->redispatches++;
    /* The one who had it keeps the state it left the request in; the new one is recorded
     * too, so that no policy sends it the same request twice. */
    if (c->role == R && (!conv__note_candidate(c, c->counterpart, c->state, ev->now_ms) ||
                         !conv__note_candidate(c, peer, RELAIS_CONV_REQUESTED, ev->now_ms)))
        return conv__refuse(reason, len, "%s refused: out of memory", body((int)e->body_case));
    conv__copy(c->counterpart, sizeof(c->counterpart), peer);
    c->reason[0] = '\0';
    c->state = 0; /* a fresh step even when the state name does not change */
    conv__enter(c, ev->outgoing ? RELAIS_CONV_REQUESTED : RELAIS_CONV_RECEIVED, ev->now_ms);
    conv__note(c, ev);
    return CONV_APPLIED;
}

/* Checks that ev comes from, or goes to, this conversation's counterpart. */
static conv_verdict_t check_peer(conv_t *c, const conv_event_t *ev, bool *bind, char *reason,
                                 size_t len)
{
    const env_t *e = ev->env;
    *bind = false;
    if (ev->outgoing) {
        for (size_t i = 0; i < e->n_to; i++)
            if (strcmp(e->to[i], c->counterpart) != 0)
                return conv__refuse(reason, len,
                                    "%s refused: %s is not a participant of this %s "
                                    "conversation (its counterpart is %s)",
                                    body((int)e->body_case), e->to[i],
                                    relais_conv_kind_name(c->kind), c->counterpart);
        return CONV_APPLIED;
    }
    if (strcmp(e->sender, c->counterpart) == 0) return CONV_APPLIED;
    /* A request to a pool is answered by one of its members, who becomes the counterpart. */
    if (is_service(c->counterpart) && c->role == R &&
        (c->state == RELAIS_CONV_REQUESTED || c->state == RELAIS_CONV_RECEIVED)) {
        *bind = true;
        return CONV_APPLIED;
    }
    return conv__refuse(reason, len,
                        "%s refused: %s is not a participant of this %s conversation "
                        "(its counterpart is %s)",
                        body((int)e->body_case), e->sender, relais_conv_kind_name(c->kind),
                        c->counterpart);
}

static void absorb_details(conv_t *c, const env_t *e)
{
    switch (e->body_case) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
        c->due_ms = e->appointment_offer->held_until_ms;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE:
        conv__copy(c->reason, sizeof(c->reason), e->appointment_decline->reason);
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK:
        c->due_ms = e->appointment_book->slot ? e->appointment_book->slot->end_ms : 0;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
        if (e->appointment_confirm->slot) c->due_ms = e->appointment_confirm->slot->end_ms;
        break;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL:
        conv__copy(c->reason, sizeof(c->reason), e->appointment_cancel->reason);
        break;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE:
        if (e->care_task_update->reason && *e->care_task_update->reason)
            conv__copy(c->reason, sizeof(c->reason), e->care_task_update->reason);
        break;
    default:
        break;
    }
}

static conv_verdict_t advance_linear(conv_t *c, const conv_event_t *ev, const rule_t *rules,
                                     size_t nrules, char *reason, size_t len)
{
    const env_t *e = ev->env;
    int bc = (int)e->body_case;
    if (conv__opens(bc)) return re_request(c, ev, reason, len);
    int sub = rule_sub(e);
    const rule_t *rule = NULL;
    for (size_t i = 0; i < nrules && !rule; i++)
        if (rules[i].body == bc && (rules[i].sub == 0 || rules[i].sub == sub)) rule = &rules[i];
    if (!rule)
        return conv__refuse(reason, len,
                            "%s refused: value %d is not a transition of a %s "
                            "conversation",
                            body(bc), sub, relais_conv_kind_name(c->kind));
    if (rule->by && conv__sender_role(c, ev) != rule->by)
        return conv__refuse(reason, len, "%s refused: only the %s of a %s conversation sends it",
                            body(bc), role_name(rule->by), relais_conv_kind_name(c->kind));
    bool bind;
    if (check_peer(c, ev, &bind, reason, len) == CONV_REFUSED) return CONV_REFUSED;
    uint32_t bit = 1u << c->state;
    if (rule->stale & bit) return CONV_STALE;
    if (!(rule->from & bit)) {
        char need[160];
        states_text(rule->from, need, sizeof(need));
        return conv__refuse(reason, len, "%s refused: the %s is %s, and moving it to %s needs %s",
                            body(bc), relais_conv_kind_name(c->kind),
                            relais_conv_state_name(c->state), relais_conv_state_name(rule->to),
                            need);
    }
    if (bind) {
        /* The pool had it, and now its member: both count as tried. */
        if (!conv__note_candidate(c, c->counterpart, rule->to, ev->now_ms) ||
            !conv__note_candidate(c, e->sender, rule->to, ev->now_ms))
            return conv__refuse(reason, len, "%s refused: out of memory", body(bc));
        conv__copy(c->counterpart, sizeof(c->counterpart), e->sender);
    } else if (c->role == R && !ev->outgoing && conv__find_part(c, c->counterpart)) {
        conv__find_part(c, c->counterpart)->state = rule->to;
    }
    absorb_details(c, e);
    /* A new offer replaces the previous one: its window starts again. */
    if (c->state == rule->to) c->state = 0;
    conv__enter(c, rule->to, ev->now_ms);
    if (c->prev_state == 0) c->prev_state = rule->to;
    conv__note(c, ev);
    return CONV_APPLIED;
}

/* ---- Dispatch ---------------------------------------------------------------------- */

conv_verdict_t conv__advance(conv_t *c, const conv_event_t *ev, char *reason, size_t len)
{
    const env_t *e = ev->env;
    relais_conv_kind_t kind = conv__kind_of((int)e->body_case);
    if (kind == 0) return CONV_UNTRACKED;
    if (kind != c->kind)
        return conv__refuse(reason, len, "%s refused: conversation is a %s, not a %s",
                            body((int)e->body_case), relais_conv_kind_name(c->kind),
                            relais_conv_kind_name(kind));
    const char *rid = conv__body_request_id(e);
    if (*rid && *c->request_id && strcmp(rid, c->request_id) != 0)
        return conv__refuse(reason, len,
                            "%s refused: it names request %s, and this conversation is "
                            "about request %s",
                            body((int)e->body_case), rid, c->request_id);
    /* Work on a copy so that a refusal half-way leaves c as it was. */
    conv_t *work = conv__clone(c);
    if (!work)
        return conv__refuse(reason, len, "%s refused: out of memory", body((int)e->body_case));
    conv_verdict_t v;
    switch (kind) {
    case RELAIS_CONV_APPOINTMENT:
        v = advance_linear(work, ev, appointment_rules,
                           sizeof(appointment_rules) / sizeof(appointment_rules[0]), reason, len);
        break;
    case RELAIS_CONV_CARE_TASK:
        v = advance_linear(work, ev, care_task_rules,
                           sizeof(care_task_rules) / sizeof(care_task_rules[0]), reason, len);
        break;
    case RELAIS_CONV_PREADMISSION:
        v = conv__advance_preadmission(work, ev, reason, len);
        break;
    default:
        v = conv__advance_discharge(work, ev, reason, len);
        break;
    }
    if (v == CONV_APPLIED)
        conv__replace(c, &work);
    else
        conv__free(&work);
    return v;
}

/* ---- What the broker said about our messages --------------------------------------- */

static bool is_last(const conv_t *c, const uint8_t *msg_id)
{
    return c->last_body && memcmp(c->last_msg, msg_id, RELAIS_MESSAGE_ID_LEN) == 0;
}

bool conv__on_delivered(conv_t *c, const uint8_t *msg_id, const char *recipient, int64_t now)
{
    if (c->role != R) return false;
    if (c->kind == RELAIS_CONV_PREADMISSION) {
        conv_part_t *p = recipient ? conv__find_part(c, recipient) : NULL;
        if (!p || p->state != RELAIS_CONV_REQUESTED || !p->has_ref ||
            memcmp(p->ref, msg_id, RELAIS_MESSAGE_ID_LEN) != 0)
            return false;
        conv__part_enter(p, RELAIS_CONV_RECEIVED, now);
        c->updated_ms = now;
        return true;
    }
    if (c->state != RELAIS_CONV_REQUESTED || !is_last(c, msg_id) || !conv__opens(c->last_body))
        return false;
    /* Same step, same window: the provider now has the request it must answer. */
    c->prev_state = c->state;
    c->state = RELAIS_CONV_RECEIVED;
    c->updated_ms = now;
    return true;
}

bool conv__on_undeliverable(conv_t *c, const uint8_t *msg_id, const char *recipient,
                            const char *why, int64_t now)
{
    if (c->role != R) return false;
    if (c->kind == RELAIS_CONV_PREADMISSION) {
        conv_part_t *p = recipient ? conv__find_part(c, recipient) : NULL;
        if (!p || !p->has_ref || memcmp(p->ref, msg_id, RELAIS_MESSAGE_ID_LEN) != 0 ||
            (p->state != RELAIS_CONV_REQUESTED && p->state != RELAIS_CONV_RECEIVED))
            return false;
        conv__part_enter(p, RELAIS_CONV_UNDELIVERABLE, now);
        conv__copy(c->reason, sizeof(c->reason), why);
        conv__enter(c, conv__derive_preadmission(c), now);
        c->updated_ms = now;
        return true;
    }
    if (!is_last(c, msg_id) || !conv__opens(c->last_body) ||
        (c->state != RELAIS_CONV_REQUESTED && c->state != RELAIS_CONV_RECEIVED))
        return false;
    conv__copy(c->reason, sizeof(c->reason), why);
    conv__enter(c, RELAIS_CONV_UNDELIVERABLE, now);
    c->updated_ms = now;
    return true;
}

bool conv__on_rejected(conv_t *c, const uint8_t *msg_id, const char *why, int64_t now)
{
    if (!c->last_out || !is_last(c, msg_id)) return false;
    if (conv__opens(c->last_body) || c->kind == RELAIS_CONV_PREADMISSION) {
        /* The request never got through: as if the recipient refused it. */
        bool changed = false;
        for (size_t i = 0; i < c->nparts; i++) {
            conv_part_t *p = &c->parts[i];
            if (p->has_ref && memcmp(p->ref, msg_id, RELAIS_MESSAGE_ID_LEN) == 0 &&
                p->state == RELAIS_CONV_REQUESTED) {
                conv__part_enter(p, RELAIS_CONV_UNDELIVERABLE, now);
                changed = true;
            }
        }
        conv__copy(c->reason, sizeof(c->reason), why);
        if (c->kind == RELAIS_CONV_PREADMISSION) {
            if (changed) conv__enter(c, conv__derive_preadmission(c), now);
        } else if (c->state == RELAIS_CONV_REQUESTED) {
            conv__enter(c, RELAIS_CONV_UNDELIVERABLE, now);
            changed = true;
        }
        c->updated_ms = now;
        return changed;
    }
    if (!c->prev_state) return false;
    snprintf(c->reason, sizeof(c->reason), "the broker rejected our %s: %s", body(c->last_body),
             why);
    conv__enter(c, c->prev_state, now);
    c->last_body = 0;
    c->updated_ms = now;
    return true;
}
