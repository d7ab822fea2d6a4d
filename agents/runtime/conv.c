/*
 * Conversation tracking on an agent: relais_conv_enable(), the observation of what the
 * agent sends and receives, and the query API of relais/conversation.h.
 *
 * The SDK observes rather than adding a second way to send (docs/CONVERSATIONS.md says
 * why): send.c asks agent__conv_send_check() before a submission is queued and commits the
 * result with it; session.c applies a delivery before its handler runs and keeps or undoes
 * it by the handler's outcome, in the transaction that remembers the delivery; receipts and
 * the broker's answers to submissions come here too. The state machines themselves are pure
 * (conv_machine.c, conv_steps.c); this file owns the list of conversations, writes them to
 * the state file, and tells the application. Deadlines are conv_deadline.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "conv_internal.h"
#include "relais/log.h"

#define HOUR_MS (3600 * 1000LL)

/* ---- The list ---------------------------------------------------------------------- */

conv_t *conv__lookup(agent_conv_t *cv, const uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    for (conv_t *c = cv->head; c; c = c->next)
        if (memcmp(c->id, id, RELAIS_MESSAGE_ID_LEN) == 0) return c;
    return NULL;
}

static void append(agent_conv_t *cv, conv_t *c)
{
    c->next = NULL;
    if (cv->tail)
        cv->tail->next = c;
    else
        cv->head = c;
    cv->tail = c;
}

static void unlink_conv(agent_conv_t *cv, conv_t *c)
{
    conv_t **pp = &cv->head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->next;
    }
    if (!*pp) return;
    *pp = c->next;
    if (cv->tail == c) cv->tail = prev;
    c->next = NULL;
}

/* A discharge notification is known by its encounter too: a replay or a withdrawal may
 * come in a conversation of its own. */
static conv_t *find_discharge(agent_conv_t *cv, const char *encounter, const char *hospital)
{
    if (!encounter || !*encounter) return NULL;
    for (conv_t *c = cv->head; c; c = c->next)
        if (c->kind == RELAIS_CONV_DISCHARGE && strcmp(c->request_id, encounter) == 0 &&
            (!hospital || strcmp(c->counterpart, hospital) == 0))
            return c;
    return NULL;
}

int conv__persist(relais_agent_t *a, const conv_t *c)
{
    if (!a->state_file) return 0;
    int rc = agent__state_conv_save(a->state_file, c);
    if (rc != 0) {
        char id[37];
        RLOG(RELAIS_LOG_ERROR, "agent", "agent=%s conv=%s cannot record the conversation: %s",
             a->address, relais_id_format(c->id, RELAIS_MESSAGE_ID_LEN, id), relais_strerror(rc));
    }
    return rc;
}

void conv__with_info(relais_agent_t *a, const conv_t *c,
                     void (*fn)(relais_agent_t *, const relais_conv_info_t *, void *), void *ud)
{
    relais_conv_part_t one[1];
    relais_conv_part_t *parts = one;
    if (c->nparts > 1 && !(parts = malloc(c->nparts * sizeof(*parts)))) parts = NULL;
    relais_conv_info_t info;
    if (parts) {
        conv__info(c, a->conv->opts.reminder_fraction, &info, parts);
    } else {
        /* Out of memory: the application still learns the conversation's own state. */
        conv_t head = *c;
        head.nparts = 0;
        conv__info(&head, a->conv->opts.reminder_fraction, &info, one);
    }
    fn(a, &info, ud);
    if (parts != one) free(parts);
}

typedef struct change_ctx {
    relais_conv_state_t old;
} change_ctx_t;

static void call_on_change(relais_agent_t *a, const relais_conv_info_t *info, void *ud)
{
    change_ctx_t *ctx = ud;
    a->conv->hooks.on_change(a, info, ctx->old, a->conv->hooks.ud);
}

static void log_change(relais_agent_t *a, const conv_t *c, relais_conv_state_t old)
{
    char id[37];
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s conv=%s kind=%s state=%s from=%s deadline_ms=%lld",
         a->address, relais_id_format(c->id, RELAIS_MESSAGE_ID_LEN, id),
         relais_conv_kind_name(c->kind), relais_conv_state_name(c->state),
         old ? relais_conv_state_name(old) : "-", (long long)c->deadline_ms);
}

void conv__notify(relais_agent_t *a, conv_t *c, relais_conv_state_t old)
{
    agent_conv_t *cv = a->conv;
    if (c->state != old) {
        log_change(a, c, old);
        if (cv->hooks.on_change) {
            change_ctx_t ctx = {old};
            conv__with_info(a, c, call_on_change, &ctx);
        }
    }
    if (c->kind != RELAIS_CONV_APPOINTMENT && c->kind != RELAIS_CONV_CARE_TASK) return;
    /* The discharge plans with an item waiting on this conversation follow it. */
    int64_t now = relais_now_ms();
    for (conv_t *d = cv->head; d; d = d->next) {
        if (d->kind != RELAIS_CONV_DISCHARGE) continue;
        relais_conv_state_t before = d->state;
        if (!conv__follow_child(d, c, now)) continue;
        conv__schedule(d, &cv->opts);
        d->version++;
        conv__persist(a, d);
        conv__arm(a, d);
        conv__notify(a, d, before);
    }
}

/* Ties item of discharge d to child, and lets the item follow it. */
static int link_item(relais_agent_t *a, conv_t *d, conv_part_t *item, const conv_t *child)
{
    memcpy(item->ref, child->id, RELAIS_MESSAGE_ID_LEN);
    item->has_ref = true;
    item->state = RELAIS_CONV_PENDING; /* follow_child moves it from here */
    relais_conv_state_t before = d->state;
    conv__follow_child(d, child, relais_now_ms());
    conv__schedule(d, &a->conv->opts);
    d->version++;
    int rc = conv__persist(a, d);
    conv__arm(a, d);
    conv__notify(a, d, before);
    return rc;
}

/* ---- Enabling ---------------------------------------------------------------------- */

static int load_one(void *ud, conv_t **c)
{
    relais_agent_t *a = ud;
    append(a->conv, *c);
    *c = NULL;
    return 0;
}

static int normalise(agent_conv_t *cv, const relais_conv_options_t *in)
{
    relais_conv_options_t o = in ? *in : (relais_conv_options_t){0};
    if (o.reminder_fraction >= 1.0) return RELAIS_ECONFIG;
    if (o.reminder_fraction == 0) o.reminder_fraction = 0.5;
    if (o.reminder_fraction < 0) o.reminder_fraction = -1;
    int64_t *windows[] = {&o.answer_ms, &o.book_ms,      &o.confirm_ms,  &o.outcome_ms,
                          &o.choice_ms, &o.admission_ms, &o.follow_up_ms};
    const int64_t defaults[] = {48 * HOUR_MS, 24 * HOUR_MS,     24 * HOUR_MS,    48 * HOUR_MS,
                                48 * HOUR_MS, 7 * 24 * HOUR_MS, 7 * 24 * HOUR_MS};
    for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++) {
        if (*windows[i] < 0) return RELAIS_ECONFIG;
        if (*windows[i] == 0) *windows[i] = defaults[i];
    }
    if (o.coordinator && *o.coordinator) {
        if (strlen(o.coordinator) >= sizeof(cv->coordinator) ||
            !relais_address_valid(o.coordinator))
            return RELAIS_ECONFIG;
        strcpy(cv->coordinator, o.coordinator);
    }
    o.coordinator = cv->coordinator;
    cv->opts = o;
    return 0;
}

int relais_conv_enable(relais_agent_t *a, const relais_conv_options_t *opts,
                       const relais_conv_hooks_t *hooks)
{
    if (a->conv) return -EALREADY;
    agent_conv_t *cv = calloc(1, sizeof(*cv));
    if (!cv) return -ENOMEM;
    int rc = normalise(cv, opts);
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "agent",
             "agent=%s invalid conversation options (coordinator "
             "address, reminder fraction below 1, windows >= 0)",
             a->address);
        free(cv);
        return rc;
    }
    if (hooks) cv->hooks = *hooks;
    a->conv = cv;
    if (a->state_file && (rc = agent__state_conv_load(a->state_file, load_one, a)) != 0) {
        agent__conv_destroy(&a->conv);
        return rc;
    }
    size_t n = 0;
    for (conv_t *c = cv->head; c; c = c->next, n++) conv__arm(a, c);
    /* A choice whose cancels the previous run did not get to send. */
    for (conv_t *c = cv->head; c; c = c->next) conv__send_owed_cancels(a, c);
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s conversations tracked=%zu coordinator=%s", a->address,
         n, cv->coordinator[0] ? cv->coordinator : "-");
    return 0;
}

void agent__conv_destroy(agent_conv_t **conv)
{
    if (!conv || !*conv) return;
    conv_t *c = (*conv)->head;
    while (c) {
        conv_t *next = c->next;
        conv__free(&c);
        c = next;
    }
    free(*conv);
    *conv = NULL;
}

const char *relais_conv_last_refusal(const relais_agent_t *a)
{
    return a->conv ? a->conv->refusal : "";
}

/* ---- Sends ------------------------------------------------------------------------- */

/* Keeps the request as sent, so that a redispatch sends the very same one elsewhere. */
static int keep_opening(conv_t *c, const Relais__V1__Envelope *env)
{
    size_t n = relais__v1__envelope__get_packed_size(env);
    if (!(c->opening = malloc(n ? n : 1))) return -ENOMEM;
    c->opening_len = relais__v1__envelope__pack(env, c->opening);
    return 0;
}

int agent__conv_send_check(relais_agent_t *a, const Relais__V1__Envelope *env, conv_send_t *cs)
{
    memset(cs, 0, sizeof(*cs));
    agent_conv_t *cv = a->conv;
    if (!cv) return 0;
    cv->refusal[0] = '\0';
    int bc = (int)env->body_case;
    if (cv->internal == CONV_SEND_UNTRACKED || conv__kind_of(bc) == 0) return 0;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    conv__id_of(env, id);
    conv_t *c = conv__lookup(cv, id);
    if (!c && bc == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED)
        c = find_discharge(cv, env->discharge_cancelled->encounter_id, NULL);
    conv_event_t ev = {.env = env,
                       .outgoing = true,
                       .redispatch = cv->internal == CONV_SEND_REDISPATCH,
                       .self = a->address,
                       .now_ms = relais_now_ms()};
    char reason[RELAIS_REASON_MAX] = "";
    conv_t *next = NULL;
    conv_verdict_t v;
    if (!c) {
        v = conv__open(&ev, &next, reason, sizeof(reason));
        if (v == CONV_UNTRACKED) return -ENOMEM; /* a tracked body that could not be held */
        if (v == CONV_APPLIED &&
            (next->kind == RELAIS_CONV_APPOINTMENT || next->kind == RELAIS_CONV_CARE_TASK) &&
            keep_opening(next, env) != 0) {
            conv__free(&next);
            return -ENOMEM;
        }
    } else {
        if (!(next = conv__clone(c))) return -ENOMEM;
        v = conv__advance(next, &ev, reason, sizeof(reason));
        if (v != CONV_APPLIED) conv__free(&next);
    }
    if (v == CONV_REFUSED) {
        char cid[37];
        snprintf(cv->refusal, sizeof(cv->refusal), "%s", reason);
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s conv=%s send refused: %s", a->address,
             relais_id_format(id, sizeof(id), cid), reason);
        return RELAIS_EINVALID;
    }
    if (v == CONV_APPLIED) {
        conv__schedule(next, &cv->opts);
        cs->target = c;
        cs->next = next;
    }
    return 0;
}

int agent__conv_send_save(relais_agent_t *a, const conv_send_t *cs)
{
    if (!cs->next || !a->state_file) return 0;
    return agent__state_conv_save(a->state_file, cs->next);
}

/* A care task sent for a follow-up item of a tracked discharge is tied to that item. */
static void link_care_task(relais_agent_t *a, conv_t *task, const Relais__V1__Envelope *env)
{
    if (env->body_case != RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST) return;
    const Relais__V1__CareTaskRequest *r = env->care_task_request;
    conv_t *d = find_discharge(a->conv, r->encounter_id, NULL);
    conv_part_t *item = d && r->follow_up_item_id ? conv__find_part(d, r->follow_up_item_id) : NULL;
    if (item) link_item(a, d, item, task);
}

void agent__conv_send_done(relais_agent_t *a, conv_send_t *cs, const Relais__V1__Envelope *env,
                           bool sent)
{
    if (!cs->next) return;
    if (!sent) {
        conv__free(&cs->next);
        return;
    }
    conv_t *c = cs->target;
    relais_conv_state_t old = c ? c->state : 0;
    if (c) {
        conv__replace(c, &cs->next);
    } else {
        c = cs->next;
        cs->next = NULL;
        append(a->conv, c);
    }
    c->version++;
    conv__arm(a, c);
    if (!old) link_care_task(a, c, env);
    conv__notify(a, c, old);
    conv__send_owed_cancels(a, c);
}

/* ---- Deliveries -------------------------------------------------------------------- */

int agent__conv_deliver_begin(relais_agent_t *a, const Relais__V1__Envelope *env,
                              conv_delivery_t *cd, char *reason, size_t reason_len)
{
    memset(cd, 0, sizeof(*cd));
    agent_conv_t *cv = a->conv;
    int bc = (int)env->body_case;
    if (!cv || conv__kind_of(bc) == 0) return CONV_UNTRACKED;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    char cid[37];
    conv__id_of(env, id);
    relais_id_format(id, sizeof(id), cid);
    conv_t *c = conv__lookup(cv, id);
    if (!c && bc == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION &&
        find_discharge(cv, env->discharge_notification->encounter_id, env->sender)) {
        RLOG(RELAIS_LOG_INFO, "agent",
             "agent=%s conv=%s replayed discharge notification: "
             "already tracked, nothing new",
             a->address, cid);
        return CONV_STALE;
    }
    if (!c && bc == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED)
        c = find_discharge(cv, env->discharge_cancelled->encounter_id, env->sender);
    conv_event_t ev = {
        .env = env, .outgoing = false, .self = a->address, .now_ms = relais_now_ms()};
    conv_verdict_t v;
    if (!c) {
        v = conv__open(&ev, &c, reason, reason_len);
        if (v == CONV_APPLIED) append(cv, c);
    } else {
        conv_t *snap = conv__clone(c);
        if (!snap) {
            snprintf(reason, reason_len, "out of memory, try again later");
            return CONV_UNTRACKED;
        }
        cd->old_state = c->state;
        v = conv__advance(c, &ev, reason, reason_len);
        if (v == CONV_APPLIED)
            cd->snapshot = snap;
        else
            conv__free(&snap);
    }
    if (v == CONV_REFUSED) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s conv=%s refused %s from=%s: %s", a->address, cid,
             relais_body_name(bc), env->sender, reason);
    } else if (v == CONV_STALE) {
        RLOG(RELAIS_LOG_INFO, "agent",
             "agent=%s conv=%s %s from=%s repeats what is known: "
             "acknowledged without the handler",
             a->address, cid, relais_body_name(bc), env->sender);
    } else if (v == CONV_APPLIED) {
        conv__schedule(c, &cv->opts);
        cd->target = c;
        cd->version = ++c->version;
        cv->delivering = c;
    }
    return v;
}

int agent__conv_deliver_end(relais_agent_t *a, conv_delivery_t *cd, relais_outcome_t outcome)
{
    conv_t *c = cd->target;
    if (!c) return 0;
    a->conv->delivering = NULL;
    if (outcome == RELAIS_PROCESSED || c->version != cd->version)
        return a->state_file ? agent__state_conv_save(a->state_file, c) : 0;
    /* The handler refused it or wants it again, and sent nothing in the conversation:
     * as if it had never arrived. */
    if (cd->snapshot) {
        conv__replace(c, &cd->snapshot);
    } else {
        unlink_conv(a->conv, c);
        conv__disarm(a, c);
        conv__free(&c);
    }
    cd->target = NULL;
    return 0;
}

void agent__conv_deliver_done(relais_agent_t *a, conv_delivery_t *cd)
{
    conv__free(&cd->snapshot);
    conv_t *c = cd->target;
    cd->target = NULL;
    if (!c) return;
    conv__arm(a, c);
    conv__notify(a, c, (relais_conv_state_t)cd->old_state);
    /* Every candidate declined or rejected it: the coordinator hears it now, once, rather
     * than never (a declined request has no deadline left to miss). */
    if ((int)c->state != cd->old_state &&
        (c->state == RELAIS_CONV_DECLINED || c->state == RELAIS_CONV_REJECTED) &&
        c->role == RELAIS_CONV_REQUESTER && !conv__try_redispatch(a, c, false) &&
        a->phase == AGENT_PHASE_RUNNING && !(c->flags & CONV_F_ESCALATED_ONCE))
        conv__escalate(a, c);
}

/* ---- What the broker says about our messages --------------------------------------- */

/* prev_deadline: the deadline of the step before the change (an escalation names it). */
static void after_broker_change(relais_agent_t *a, conv_t *c, relais_conv_state_t old,
                                int64_t prev_deadline)
{
    conv__schedule(c, &a->conv->opts);
    c->version++;
    conv__persist(a, c);
    conv__arm(a, c);
    conv__notify(a, c, old);
    if (c->state == RELAIS_CONV_UNDELIVERABLE && old != c->state &&
        a->phase == AGENT_PHASE_RUNNING && !conv__try_redispatch(a, c, false) &&
        !(c->flags & (CONV_F_ESCALATED | CONV_F_ESCALATED_ONCE))) {
        /* Nobody took it and no one else is lined up: waiting for the deadline would only
         * lose time a human needs. The escalation names the deadline that was awaited. */
        if (c->deadline_ms == 0) c->deadline_ms = prev_deadline;
        conv__escalate(a, c);
    }
}

void agent__conv_on_result(relais_agent_t *a, const uint8_t *message_id, int status,
                           const char *reason)
{
    if (a->submitted_fn) {
        relais_send_result_t r = {
            .status = status, .reason = reason ? reason : "", .message_id = message_id};
        a->submitted_fn(a, &r, a->submitted_ud);
    }
    agent_conv_t *cv = a->conv;
    if (!cv || status == 0) return;
    /* A stopping agent with a state file keeps the submission for its next run. */
    if (status == RELAIS_ECLOSED && a->state_file) return;
    char why[RELAIS_REASON_MAX];
    snprintf(why, sizeof(why), "%s: %s", relais_err_name(status), reason ? reason : "");
    int64_t now = relais_now_ms();
    for (conv_t *c = cv->head; c; c = c->next) {
        relais_conv_state_t old = c->state;
        int64_t prev_deadline = c->deadline_ms;
        if (conv__on_rejected(c, message_id, why, now)) {
            after_broker_change(a, c, old, prev_deadline);
            return;
        }
    }
}

void agent__conv_on_receipt(relais_agent_t *a, const Relais__V1__Receipt *r)
{
    agent_conv_t *cv = a->conv;
    if (!cv || r->message_id.len != RELAIS_MESSAGE_ID_LEN) return;
    conv_t *c = r->conversation_id.len == RELAIS_MESSAGE_ID_LEN
                    ? conv__lookup(cv, r->conversation_id.data)
                    : conv__lookup(cv, r->message_id.data);
    if (!c) return;
    relais_conv_state_t old = c->state;
    int64_t prev_deadline = c->deadline_ms;
    int64_t now = relais_now_ms();
    bool changed = false;
    switch (r->status) {
    case RELAIS__V1__RECEIPT__STATUS__DELIVERED:
    case RELAIS__V1__RECEIPT__STATUS__PROCESSED:
    case RELAIS__V1__RECEIPT__STATUS__CLAIMED:
        changed = conv__on_delivered(c, r->message_id.data, r->recipient, now);
        /* The member who claimed it from a pool has had it, whatever it does next. */
        if (r->status == RELAIS__V1__RECEIPT__STATUS__CLAIMED && r->claimed_by &&
            *r->claimed_by && !conv__tried(c, r->claimed_by)) {
            size_t before = c->nparts;
            conv__note_candidate(c, r->claimed_by, RELAIS_CONV_RECEIVED, now);
            changed = changed || c->nparts != before;
        }
        break;
    case RELAIS__V1__RECEIPT__STATUS__REFUSED:
    case RELAIS__V1__RECEIPT__STATUS__EXPIRED:
    case RELAIS__V1__RECEIPT__STATUS__UNCLAIMED: {
        char why[RELAIS_REASON_MAX];
        snprintf(why, sizeof(why), "%s by %s: %s",
                 r->status == RELAIS__V1__RECEIPT__STATUS__REFUSED   ? "refused"
                 : r->status == RELAIS__V1__RECEIPT__STATUS__EXPIRED ? "expired"
                                                                     : "unclaimed",
                 r->recipient ? r->recipient : "?", r->reason ? r->reason : "");
        changed = conv__on_undeliverable(c, r->message_id.data, r->recipient, why, now);
        break;
    }
    default:
        break;
    }
    if (changed) after_broker_change(a, c, old, prev_deadline);
}

/* ---- Queries and application requests ---------------------------------------------- */

int relais_conv_foreach(relais_agent_t *a, relais_conv_visit_fn fn, void *ud)
{
    if (!a->conv) return RELAIS_ECONFIG;
    for (conv_t *c = a->conv->head; c; c = c->next) conv__with_info(a, c, fn, ud);
    return 0;
}

int relais_conv_get(relais_agent_t *a, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                    relais_conv_visit_fn fn, void *ud)
{
    if (!a->conv) return RELAIS_ECONFIG;
    conv_t *c = conv__lookup(a->conv, id);
    if (!c) return -ENOENT;
    conv__with_info(a, c, fn, ud);
    return 0;
}

int relais_conv_set_deadline(relais_agent_t *a, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                             int64_t deadline_ms)
{
    if (!a->conv) return RELAIS_ECONFIG;
    conv_t *c = conv__lookup(a->conv, id);
    if (!c) return -ENOENT;
    if (c->deadline_ms == 0 || deadline_ms <= 0) return RELAIS_EINVALID;
    int64_t before = c->deadline_ms;
    unsigned flags = c->flags;
    c->deadline_ms = deadline_ms;
    /* A later deadline gives the step its reminder and escalation back. */
    if (deadline_ms > before) c->flags &= CONV_F_STICKY;
    int rc = conv__persist(a, c);
    if (rc != 0) {
        c->deadline_ms = before;
        c->flags = flags;
        return rc;
    }
    conv__arm(a, c);
    return 0;
}

int relais_conv_link(relais_agent_t *a, const uint8_t discharge[RELAIS_MESSAGE_ID_LEN],
                     const char *item_id, const uint8_t child[RELAIS_MESSAGE_ID_LEN])
{
    if (!a->conv) return RELAIS_ECONFIG;
    conv_t *d = conv__lookup(a->conv, discharge);
    conv_t *ch = conv__lookup(a->conv, child);
    if (!d || !ch || d->kind != RELAIS_CONV_DISCHARGE || !item_id) return -ENOENT;
    if (ch->kind != RELAIS_CONV_APPOINTMENT && ch->kind != RELAIS_CONV_CARE_TASK)
        return RELAIS_EINVALID;
    conv_part_t *item = conv__find_part(d, item_id);
    if (!item) return -ENOENT;
    return link_item(a, d, item, ch);
}

int relais_conv_forget(relais_agent_t *a, const uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    if (!a->conv) return RELAIS_ECONFIG;
    conv_t *c = conv__lookup(a->conv, id);
    if (!c) return -ENOENT;
    if (conv__is_open(c) || c == a->conv->delivering) return RELAIS_EINVALID;
    int rc = a->state_file ? agent__state_conv_delete(a->state_file, c->id) : 0;
    if (rc != 0) return rc;
    unlink_conv(a->conv, c);
    conv__disarm(a, c);
    conv__free(&c);
    return 0;
}
