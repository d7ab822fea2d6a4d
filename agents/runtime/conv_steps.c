/*
 * What each conversation state waits for, and until when: the business deadlines.
 *
 * Pure functions over a conv_t, like the state machines they complete. A state that
 * awaits a move has a step: who must act (the actor), and a window that opens when the
 * state was entered and lasts the option's default for that step, bounded by what the
 * messages said (an offer held until noon must be booked before noon; an outcome is due
 * after the appointment's end, not after its booking). A discharge plan's step is its
 * earliest open follow-up item not yet escalated, so that escalating one item moves the
 * deadline on to the next. The side that waits for the actor escalates when the window
 * closes; the actor's side only gets the reminder (PROTOCOL.md: the coordinator hears
 * about a missed deadline once, from the one who waited). A discharge plan is the
 * exception: its receiver escalates its own late items, because the patient's follow-up
 * is late whoever is at fault.
 */
#include <stdio.h>
#include <string.h>

#include "conv_internal.h"

#define R RELAIS_CONV_REQUESTER
#define P RELAIS_CONV_PROVIDER

static int64_t max64(int64_t a, int64_t b)
{
    return a > b ? a : b;
}

/* The open follow-up item whose due date comes first (items without one are due
 * follow_up_ms after the notification). */
static conv_part_t *target_item(const conv_t *c, const relais_conv_options_t *o, int64_t *due)
{
    conv_part_t *best = NULL;
    int64_t best_due = 0;
    for (size_t i = 0; i < c->nparts; i++) {
        conv_part_t *p = &c->parts[i];
        if (p->state != RELAIS_CONV_PENDING && p->state != RELAIS_CONV_REQUESTED) continue;
        if (p->flags & CONV_F_ESCALATED) continue;
        int64_t d = p->due_ms ? p->due_ms : c->opened_ms + (o ? o->follow_up_ms : 0);
        if (!best || d < best_due) {
            best = p;
            best_due = d;
        }
    }
    if (due) *due = best_due;
    return best;
}

/* The current step: who acts, and the deadline. False when nothing is awaited. */
static bool step_of(const conv_t *c, const relais_conv_options_t *o, relais_conv_role_t *actor,
                    int64_t *deadline)
{
    int64_t t = c->entered_ms;
    switch (c->kind) {
    case RELAIS_CONV_APPOINTMENT:
        switch (c->state) {
        case RELAIS_CONV_REQUESTED:
        case RELAIS_CONV_RECEIVED:
            *actor = P;
            *deadline = t + o->answer_ms;
            return true;
        case RELAIS_CONV_OFFERED:
            *actor = R;
            *deadline = t + o->book_ms;
            if (c->due_ms > t && c->due_ms < *deadline) *deadline = c->due_ms;
            return true;
        case RELAIS_CONV_BOOKED:
            *actor = P;
            *deadline = t + o->confirm_ms;
            return true;
        case RELAIS_CONV_CONFIRMED:
            *actor = P;
            *deadline = max64(t, c->due_ms) + o->outcome_ms;
            return true;
        default:
            return false;
        }
    case RELAIS_CONV_CARE_TASK:
        switch (c->state) {
        case RELAIS_CONV_REQUESTED:
        case RELAIS_CONV_RECEIVED:
            *actor = P;
            *deadline = t + o->answer_ms;
            return true;
        case RELAIS_CONV_ACCEPTED:
        case RELAIS_CONV_IN_PROGRESS:
            *actor = P;
            *deadline = c->due_ms ? c->due_ms : t + o->outcome_ms;
            return true;
        default:
            return false;
        }
    case RELAIS_CONV_PREADMISSION:
        switch (c->state) {
        case RELAIS_CONV_REQUESTED:
        case RELAIS_CONV_RECEIVED:
            *actor = P;
            *deadline = t + o->answer_ms;
            return true;
        case RELAIS_CONV_ACCEPTED:
        case RELAIS_CONV_WAITLISTED:
            *actor = R;
            *deadline = t + o->choice_ms;
            return true;
        case RELAIS_CONV_CHOSEN:
            *actor = P;
            *deadline = max64(t, c->due_ms) + o->admission_ms;
            return true;
        default:
            return false;
        }
    case RELAIS_CONV_DISCHARGE:
        /* The hospital that sent the plan does not see the requests made for it. */
        if (c->role != P || c->state != RELAIS_CONV_NOTIFIED) return false;
        *actor = P;
        return target_item(c, o, deadline) != NULL;
    }
    return false;
}

/* No options: every window is 0 (the unit tests pass their own; conv.c always passes the
 * agent's, normalised). */
static const relais_conv_options_t *opts_or(const relais_conv_options_t *o)
{
    static const relais_conv_options_t none = {0};
    return o ? o : &none;
}

void conv__schedule(conv_t *c, const relais_conv_options_t *opts)
{
    relais_conv_role_t actor;
    int64_t deadline = 0;
    opts = opts_or(opts);
    if (!step_of(c, opts, &actor, &deadline)) {
        c->deadline_ms = 0;
        return;
    }
    c->deadline_ms = deadline;
    if (c->kind == RELAIS_CONV_DISCHARGE) {
        const conv_part_t *p = target_item(c, opts, NULL);
        c->flags = p ? p->flags : 0;
    }
}

bool conv__is_open(const conv_t *c)
{
    relais_conv_role_t actor;
    int64_t deadline;
    static const relais_conv_options_t none = {0};
    return step_of(c, &none, &actor, &deadline);
}

bool conv__waiting_on_counterpart(const conv_t *c)
{
    relais_conv_role_t actor;
    int64_t deadline;
    static const relais_conv_options_t none = {0};
    return step_of(c, &none, &actor, &deadline) && actor != c->role;
}

bool conv__escalates(const conv_t *c)
{
    if (c->kind == RELAIS_CONV_DISCHARGE) return conv__is_open(c);
    return conv__waiting_on_counterpart(c);
}

bool conv__may_redispatch(const conv_t *c)
{
    if (c->role != R || !c->opening_len) return false;
    if (c->kind != RELAIS_CONV_APPOINTMENT && c->kind != RELAIS_CONV_CARE_TASK) return false;
    switch (c->state) {
    case RELAIS_CONV_REQUESTED:
    case RELAIS_CONV_RECEIVED:
    case RELAIS_CONV_DECLINED:
    case RELAIS_CONV_REJECTED:
    case RELAIS_CONV_UNDELIVERABLE:
        return true;
    default:
        return false;
    }
}

int64_t conv__reminder_at(const conv_t *c, double fraction)
{
    if (c->deadline_ms == 0 || fraction <= 0) return 0;
    int64_t start = c->kind == RELAIS_CONV_DISCHARGE ? c->opened_ms : c->entered_ms;
    if (c->deadline_ms <= start) return c->deadline_ms;
    return start + (int64_t)((double)(c->deadline_ms - start) * fraction);
}

void conv__mark(conv_t *c, const relais_conv_options_t *opts, unsigned flag)
{
    if (c->kind == RELAIS_CONV_DISCHARGE) {
        conv_part_t *p = target_item(c, opts_or(opts), NULL);
        if (p) p->flags |= flag;
    }
    c->flags |= flag;
}

conv_part_t *conv__current_item(const conv_t *c, const relais_conv_options_t *opts)
{
    if (c->kind != RELAIS_CONV_DISCHARGE) return NULL;
    return target_item(c, opts_or(opts), NULL);
}

void conv__responsible(const conv_t *c, const char *self, char *out)
{
    const char *who = conv__waiting_on_counterpart(c) ? c->counterpart : self;
    if (c->kind == RELAIS_CONV_PREADMISSION && c->role == R && c->state == RELAIS_CONV_REQUESTED) {
        for (size_t i = 0; i < c->nparts; i++) {
            if (c->parts[i].state == RELAIS_CONV_REQUESTED ||
                c->parts[i].state == RELAIS_CONV_RECEIVED) {
                who = c->parts[i].key;
                break;
            }
        }
    }
    snprintf(out, RELAIS_ADDRESS_MAX, "%s", who);
}

void conv__info(const conv_t *c, double fraction, relais_conv_info_t *info,
                relais_conv_part_t *parts)
{
    memset(info, 0, sizeof(*info));
    info->id = c->id;
    info->kind = c->kind;
    info->role = c->role;
    info->state = c->state;
    info->counterpart = c->counterpart;
    info->request_id = c->request_id;
    info->patient = c->patient;
    info->reason = c->reason;
    info->opened_at_ms = c->opened_ms;
    info->updated_at_ms = c->updated_ms;
    info->deadline_ms = c->deadline_ms;
    info->reminder_at_ms = conv__reminder_at(c, fraction);
    info->waiting_on_counterpart = conv__waiting_on_counterpart(c);
    info->reminded = (c->flags & CONV_F_REMINDED) != 0;
    info->escalated = (c->flags & CONV_F_ESCALATED) != 0;
    info->redispatches = c->redispatches;
    info->escalations = (c->flags & CONV_F_ESCALATED_ONCE) ? 1u : 0u;
    info->nparts = c->nparts;
    info->parts = parts;
    for (size_t i = 0; i < c->nparts; i++) {
        const conv_part_t *p = &c->parts[i];
        parts[i] = (relais_conv_part_t){
            .key = p->key,
            .label = p->label,
            .state = p->state,
            .updated_at_ms = p->updated_ms,
            .due_by_ms = c->kind == RELAIS_CONV_DISCHARGE ? p->due_ms : 0,
            .conversation = c->kind == RELAIS_CONV_DISCHARGE && p->has_ref ? p->ref : NULL};
    }
}

/* ---- Candidates of a request ------------------------------------------------------- */

bool conv__note_candidate(conv_t *c, const char *addr, relais_conv_state_t state, int64_t now)
{
    if (c->role != R || (c->kind != RELAIS_CONV_APPOINTMENT && c->kind != RELAIS_CONV_CARE_TASK) ||
        !addr || !*addr)
        return true;
    conv_part_t *p = conv__find_part(c, addr);
    if (p) {
        p->state = state;
        p->updated_ms = now;
        return true;
    }
    return conv__add_part(c, addr, CONV_CANDIDATE_LABEL, state, 0, now) != NULL;
}

bool conv__tried(const conv_t *c, const char *addr)
{
    for (size_t i = 0; i < c->nparts; i++)
        if (strcmp(c->parts[i].key, addr) == 0) return true;
    return false;
}

int64_t conv__window_end(const conv_t *c)
{
    if (!c->opening_len) return 0;
    Relais__V1__Envelope *req = relais__v1__envelope__unpack(NULL, c->opening_len, c->opening);
    if (!req) return 0;
    const Relais__V1__TimeWindow *w = NULL;
    if (req->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST)
        w = req->appointment_request->window;
    else if (req->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST)
        w = req->care_task_request->window;
    int64_t end = w ? w->due_by_ms : 0;
    relais__v1__envelope__free_unpacked(req, NULL);
    return end;
}
