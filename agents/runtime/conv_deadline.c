/*
 * Business deadlines of tracked conversations: the reminder, the escalation to the CPTS
 * coordinator, and the re-dispatch of a request to the next candidate.
 *
 * Each open conversation has at most one agent timer, armed for whichever comes first of
 * its step's reminder (not yet run) and its deadline (not yet escalated). Deadlines are
 * wall-clock times kept in the state file, so a restarted agent re-arms them with what is
 * left, and one that passed while it was down fires on the loop's first turn. A timer
 * firing early (the loop's clock is monotonic, deadlines are wall-clock) simply re-arms.
 * The SDK's own sends live here too: the escalation (a new thread to the coordinator, not
 * part of the conversation, whose participants the coordinator is not), the cancel a
 * provider gets when its request is taken from it, the request again to the next
 * candidate, and the cancels a preadmission choice owes the other facilities.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "conv_internal.h"
#include "relais/log.h"

static void on_timer(relais_agent_t *a, void *ud);

void conv__disarm(relais_agent_t *a, conv_t *c)
{
    if (c->timer_id) relais_agent_timer_cancel(a, c->timer_id);
    c->timer_id = 0;
}

void conv__arm(relais_agent_t *a, conv_t *c)
{
    conv__disarm(a, c);
    if (c->deadline_ms == 0 || (c->flags & CONV_F_ESCALATED)) return;
    int64_t at = c->deadline_ms;
    int64_t reminder = conv__reminder_at(c, a->conv->opts.reminder_fraction);
    if (reminder && !(c->flags & CONV_F_REMINDED) && reminder < at) at = reminder;
    /* Business time may run faster than the loop's clock (a simulated territory). */
    int64_t delay = relais_clock_real_delay_ms(at - relais_now_ms());
    int rc = relais_agent_timer(a, (uint64_t)delay, on_timer, c, &c->timer_id);
    if (rc != 0) {
        c->timer_id = 0;
        if (rc != RELAIS_ECLOSED)
            RLOG(RELAIS_LOG_ERROR, "agent", "agent=%s cannot arm a conversation deadline: %s",
                 a->address, relais_strerror(rc));
    }
}

/* An envelope in c's conversation to one address, with body set by the caller. */
static void envelope_to(Relais__V1__Envelope *env, conv_t *c, char **to)
{
    env->to = to;
    env->n_to = 1;
    env->conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, c->id};
}

/* Tells the provider a request was taken from it, outside tracking: the conversation
 * itself goes on, with someone else. */
static void send_cancel(relais_agent_t *a, conv_t *c, const char *why)
{
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__AppointmentCancel cancel = RELAIS__V1__APPOINTMENT_CANCEL__INIT;
    Relais__V1__CareTaskUpdate update = RELAIS__V1__CARE_TASK_UPDATE__INIT;
    char *to[1] = {c->counterpart};
    envelope_to(&env, c, to);
    if (c->kind == RELAIS_CONV_APPOINTMENT) {
        cancel.request_id = c->request_id;
        cancel.reason = (char *)why;
        env.body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL;
        env.appointment_cancel = &cancel;
    } else {
        update.task_id = c->request_id;
        update.status = RELAIS__V1__CARE_TASK_UPDATE__STATUS__CANCELLED;
        update.reason = (char *)why;
        update.at_ms = relais_now_ms();
        env.body_case = RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE;
        env.care_task_update = &update;
    }
    a->conv->internal = CONV_SEND_UNTRACKED;
    int rc = relais_agent_send(a, &env, NULL, NULL, NULL);
    a->conv->internal = CONV_SEND_APP;
    if (rc != 0)
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s cannot cancel the request at %s: %s", a->address,
             c->counterpart, relais_strerror(rc));
}

typedef struct ask_ctx {
    bool go;
    char next[RELAIS_ADDRESS_MAX];
} ask_ctx_t;

static void ask_policy(relais_agent_t *a, const relais_conv_info_t *info, void *ud)
{
    ask_ctx_t *ctx = ud;
    ctx->go = a->conv->hooks.redispatch(a, info, ctx->next, a->conv->hooks.ud);
    ctx->next[RELAIS_ADDRESS_MAX - 1] = '\0';
}

/* Sends c's request again, to next, in the same conversation; 0 or the send's error. */
static int redispatch_to(relais_agent_t *a, conv_t *c, const char *next, bool cancel_current)
{
    agent_conv_t *cv = a->conv;
    char id[37];
    relais_id_format(c->id, RELAIS_MESSAGE_ID_LEN, id);
    Relais__V1__Envelope *req = relais__v1__envelope__unpack(NULL, c->opening_len, c->opening);
    if (!req) {
        RLOG(RELAIS_LOG_ERROR, "agent",
             "agent=%s conv=%s stored request unreadable: not "
             "re-dispatched",
             a->address, id);
        return RELAIS_ESTORE;
    }
    if (cancel_current && (c->state == RELAIS_CONV_REQUESTED || c->state == RELAIS_CONV_RECEIVED))
        send_cancel(a, c, "reassigned to another provider: no answer before the deadline");
    char previous[RELAIS_ADDRESS_MAX];
    snprintf(previous, sizeof(previous), "%s", c->counterpart);
    /* The same request, as a new message of the same conversation. */
    Relais__V1__Envelope env = *req;
    char target[RELAIS_ADDRESS_MAX];
    snprintf(target, sizeof(target), "%s", next);
    char *to[1] = {target};
    env.message_id = (ProtobufCBinaryData){0, NULL};
    env.in_reply_to = (ProtobufCBinaryData){0, NULL};
    env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, c->id};
    env.created_at_ms = 0;
    env.expires_at_ms = 0;
    env.accepted_at_ms = 0;
    env.to = to;
    env.n_to = 1;
    /* A pool gets OFFER when the request was first offered, or when the application asks
     * for it; a professional gets the request itself. */
    bool pool = strncmp(target, "service:", 8) == 0;
    bool offer = req->dispatch == RELAIS__V1__ENVELOPE__DISPATCH__OFFER || cv->opts.offer_to_pools;
    env.dispatch = pool && offer ? RELAIS__V1__ENVELOPE__DISPATCH__OFFER
                                 : RELAIS__V1__ENVELOPE__DISPATCH__ANYCAST;
    cv->internal = CONV_SEND_REDISPATCH;
    int rc = relais_agent_send(a, &env, NULL, NULL, NULL);
    cv->internal = CONV_SEND_APP;
    relais__v1__envelope__free_unpacked(req, NULL);
    if (rc != 0) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s conv=%s cannot re-dispatch to %s: %s", a->address,
             id, target, relais_strerror(rc));
        return rc;
    }
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s conv=%s re-dispatched from=%s to=%s", a->address, id,
         previous, target);
    return 0;
}

/* Why c's request may not go to next now (writes the sentence to why), or NULL when it may. */
static const char *redispatch_veto(const conv_t *c, const char *next, char *why, size_t len)
{
    if (conv__tried(c, next)) {
        snprintf(why, len, "%s already had this request: a request tries each candidate once",
                 next);
        return why;
    }
    int64_t end = conv__window_end(c);
    if (end && relais_now_ms() >= end) {
        snprintf(why, len,
                 "the request's window ended %lld s ago: it is not offered to anyone as new",
                 (long long)((relais_now_ms() - end) / 1000));
        return why;
    }
    return NULL;
}

bool conv__try_redispatch(relais_agent_t *a, conv_t *c, bool cancel_current)
{
    agent_conv_t *cv = a->conv;
    if (!cv->hooks.redispatch || !conv__may_redispatch(c)) return false;
    char id[37], why[RELAIS_REASON_MAX];
    relais_id_format(c->id, RELAIS_MESSAGE_ID_LEN, id);
    int64_t end = conv__window_end(c);
    if (end && relais_now_ms() >= end) return false; /* not asked: nobody may take it now */
    ask_ctx_t ctx = {0};
    conv__with_info(a, c, ask_policy, &ctx);
    if (!ctx.go || !ctx.next[0]) return false;
    if (!relais_address_valid(ctx.next)) {
        RLOG(RELAIS_LOG_WARN, "agent",
             "agent=%s conv=%s redispatch policy gave an invalid "
             "address: not re-dispatched",
             a->address, id);
        return false;
    }
    if (redispatch_veto(c, ctx.next, why, sizeof(why))) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s conv=%s not re-dispatched: %s", a->address, id,
             why);
        return false;
    }
    return redispatch_to(a, c, ctx.next, cancel_current) == 0;
}

int relais_conv_redispatch(relais_agent_t *a, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                           const char *next)
{
    if (!a->conv) return RELAIS_ECONFIG;
    conv_t *c = conv__lookup(a->conv, id);
    if (!c) return -ENOENT;
    if (!next || !relais_address_valid(next) || !conv__may_redispatch(c)) return RELAIS_EINVALID;
    if (redispatch_veto(c, next, a->conv->refusal, sizeof(a->conv->refusal)))
        return RELAIS_EINVALID;
    a->conv->refusal[0] = '\0';
    return redispatch_to(a, c, next, true);
}

void conv__send_owed_cancels(relais_agent_t *a, conv_t *c)
{
    agent_conv_t *cv = a->conv;
    if (c->kind != RELAIS_CONV_PREADMISSION || c->role != RELAIS_CONV_REQUESTER ||
        cv->sending_cancels)
        return;
    cv->sending_cancels = true;
    /* Each send replaces c's parts (same order, same count): index, never hold a pointer. */
    for (size_t i = 0; i < c->nparts; i++) {
        if (c->parts[i].state != RELAIS_CONV_CANCELLING) continue;
        Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
        Relais__V1__PreadmissionCancel cancel = RELAIS__V1__PREADMISSION_CANCEL__INIT;
        char key[RELAIS_ADDRESS_MAX];
        snprintf(key, sizeof(key), "%s", c->parts[i].key);
        char *to[1] = {key};
        envelope_to(&env, c, to);
        cancel.request_id = c->request_id;
        cancel.reason = "another facility was chosen";
        env.body_case = RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL;
        env.preadmission_cancel = &cancel;
        int rc = relais_agent_send(a, &env, NULL, NULL, NULL);
        if (rc != 0) {
            /* Still owed: the next start of the agent sends it. */
            RLOG(RELAIS_LOG_WARN, "agent", "agent=%s cannot cancel the preadmission at %s: %s",
                 a->address, key, relais_strerror(rc));
            break;
        }
    }
    cv->sending_cancels = false;
}

typedef struct escalation_ctx {
    const Relais__V1__Escalation *esc;
    int rc;
} escalation_ctx_t;

static void tell_escalation(relais_agent_t *a, const relais_conv_info_t *info, void *ud)
{
    escalation_ctx_t *ctx = ud;
    a->conv->hooks.on_escalation(a, info, ctx->esc, ctx->rc, a->conv->hooks.ud);
}

void conv__escalate(relais_agent_t *a, conv_t *c)
{
    agent_conv_t *cv = a->conv;
    char responsible[RELAIS_ADDRESS_MAX], reason[RELAIS_REASON_MAX];
    conv__responsible(c, a->address, responsible);
    bool request = c->kind == RELAIS_CONV_APPOINTMENT || c->kind == RELAIS_CONV_CARE_TASK;
    if (request && (c->flags & CONV_F_ESCALATED_ONCE)) {
        /* The coordinator already has this request and decided: asking again would only
         * repeat it. The step is marked so that its timer stays quiet. */
        conv__mark(c, &cv->opts, CONV_F_ESCALATED);
        conv__persist(a, c);
        char id[37];
        RLOG(RELAIS_LOG_INFO, "agent",
             "agent=%s conv=%s kind=%s state=%s not escalated again: the coordinator has it",
             a->address, relais_id_format(c->id, RELAIS_MESSAGE_ID_LEN, id),
             relais_conv_kind_name(c->kind), relais_conv_state_name(c->state));
        return;
    }
    const conv_part_t *item = conv__current_item(c, &cv->opts);
    if (item) {
        const conv_t *child = item->has_ref ? conv__lookup(cv, item->ref) : NULL;
        if (child) snprintf(responsible, sizeof(responsible), "%s", child->counterpart);
        snprintf(reason, sizeof(reason),
                 "follow-up item %.40s (%.80s) of discharge %.64s is %s past its due date",
                 item->key, item->label, c->request_id, relais_conv_state_name(item->state));
    } else if (c->state == RELAIS_CONV_DECLINED || c->state == RELAIS_CONV_REJECTED ||
               c->state == RELAIS_CONV_UNDELIVERABLE) {
        snprintf(responsible, sizeof(responsible), "%s", c->counterpart);
        snprintf(reason, sizeof(reason), "%s %.64s %s by %.120s; %zu candidate(s) tried",
                 relais_conv_kind_name(c->kind), c->request_id, relais_conv_state_name(c->state),
                 responsible, c->nparts);
    } else {
        snprintf(reason, sizeof(reason), "%s %.64s %s: no move from %.120s before the deadline",
                 relais_conv_kind_name(c->kind), c->request_id, relais_conv_state_name(c->state),
                 responsible);
    }
    /* Whom the coordinator should not name again: everyone who already had it. */
    char *tried[64];
    size_t ntried = 0;
    for (size_t i = 0; request && i < c->nparts && ntried < 64; i++)
        tried[ntried++] = c->parts[i].key;
    Relais__V1__Escalation esc = RELAIS__V1__ESCALATION__INIT;
    esc.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, c->id};
    esc.reason = reason;
    if (c->last_body) {
        esc.original_message_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, c->last_msg};
        esc.original_body = (char *)relais_body_name(c->last_body);
    }
    esc.deadline_ms = c->deadline_ms ? c->deadline_ms : c->entered_ms;
    esc.responsible = responsible;
    esc.tried = tried;
    esc.n_tried = ntried;
    /* Marked first: whatever the send does, this step is not escalated twice, nor the
     * request. */
    conv__mark(c, &cv->opts, CONV_F_ESCALATED | (request ? CONV_F_ESCALATED_ONCE : 0u));
    conv__persist(a, c);
    int rc = RELAIS_ECONFIG;
    if (cv->coordinator[0]) {
        Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
        char *to[1] = {cv->coordinator};
        env.to = to;
        env.n_to = 1;
        env.priority = RELAIS__V1__ENVELOPE__PRIORITY__URGENT;
        env.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
        env.escalation = &esc;
        rc = relais_agent_send(a, &env, NULL, NULL, NULL);
    }
    char id[37];
    RLOG(RELAIS_LOG_WARN, "agent",
         "agent=%s conv=%s kind=%s state=%s escalated to=%s "
         "responsible=%s rc=%s",
         a->address, relais_id_format(c->id, RELAIS_MESSAGE_ID_LEN, id),
         relais_conv_kind_name(c->kind), relais_conv_state_name(c->state),
         cv->coordinator[0] ? cv->coordinator : "-", responsible, relais_err_name(rc));
    if (cv->hooks.on_escalation) {
        escalation_ctx_t ctx = {&esc, rc};
        conv__with_info(a, c, tell_escalation, &ctx);
    }
}

static void tell_reminder(relais_agent_t *a, const relais_conv_info_t *info, void *ud)
{
    a->conv->hooks.on_reminder(a, info, a->conv->hooks.ud);
}

static void deadline_passed(relais_agent_t *a, conv_t *c)
{
    agent_conv_t *cv = a->conv;
    bool unanswered = c->state == RELAIS_CONV_REQUESTED || c->state == RELAIS_CONV_RECEIVED;
    if (unanswered && conv__try_redispatch(a, c, true)) return; /* a fresh step, re-armed */
    if (conv__escalates(c)) {
        conv__escalate(a, c);
    } else {
        /* The late one is this side: its application had the reminder; the other side
         * escalates if it tracks the conversation. */
        conv__mark(c, &cv->opts, CONV_F_ESCALATED);
        conv__persist(a, c);
    }
    /* A discharge moves on to its next item's due date. */
    if (c->kind == RELAIS_CONV_DISCHARGE) {
        conv__schedule(c, &cv->opts);
        conv__persist(a, c);
    }
    conv__arm(a, c);
}

static void on_timer(relais_agent_t *a, void *ud)
{
    conv_t *c = ud;
    agent_conv_t *cv = a->conv;
    c->timer_id = 0;
    if (c->deadline_ms == 0 || (c->flags & CONV_F_ESCALATED)) return;
    /* A stopping agent cannot send: acting now would mark the step escalated (or the
     * request re-dispatched) with nothing sent. The deadline stays in the state file and
     * fires on the next start's first loop turn. */
    if (a->phase != AGENT_PHASE_RUNNING) return;
    int64_t now = relais_now_ms();
    int64_t reminder = conv__reminder_at(c, cv->opts.reminder_fraction);
    if (now >= c->deadline_ms) {
        deadline_passed(a, c);
        return;
    }
    if (reminder && !(c->flags & CONV_F_REMINDED) && now >= reminder) {
        conv__mark(c, &cv->opts, CONV_F_REMINDED);
        conv__persist(a, c);
        char id[37];
        RLOG(RELAIS_LOG_INFO, "agent",
             "agent=%s conv=%s kind=%s state=%s reminder deadline_ms=%lld", a->address,
             relais_id_format(c->id, RELAIS_MESSAGE_ID_LEN, id), relais_conv_kind_name(c->kind),
             relais_conv_state_name(c->state), (long long)c->deadline_ms);
        if (cv->hooks.on_reminder) conv__with_info(a, c, tell_reminder, NULL);
    }
    conv__arm(a, c);
}
