/*
 * The acceptance-test agents of accept_agents.h: behaviours, hooks, the record, and the
 * jobs the test thread has an agent do on its loop.
 */
#include "accept_agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HOUR_MS (3600 * 1000LL)

#define RECORD(t, stmt)                                                                            \
    do {                                                                                           \
        pthread_mutex_lock(&(t)->ev.mu);                                                           \
        stmt;                                                                                      \
        pthread_cond_broadcast(&(t)->ev.cv);                                                       \
        pthread_mutex_unlock(&(t)->ev.mu);                                                         \
    } while (0)

/* The request or task a care message names ("" for the others). */
static const char *ref_of(const Relais__V1__Envelope *e)
{
    switch (e->body_case) {
    case B(APPOINTMENT_REQUEST):
        return e->appointment_request->request_id;
    case B(APPOINTMENT_OFFER):
        return e->appointment_offer->request_id;
    case B(APPOINTMENT_BOOK):
        return e->appointment_book->request_id;
    case B(APPOINTMENT_CONFIRM):
        return e->appointment_confirm->request_id;
    case B(APPOINTMENT_OUTCOME):
        return e->appointment_outcome->request_id;
    case B(PREADMISSION_REQUEST):
        return e->preadmission_request->request_id;
    case B(PREADMISSION_DECISION):
        return e->preadmission_decision->request_id;
    case B(PREADMISSION_CHOICE):
        return e->preadmission_choice->request_id;
    case B(PREADMISSION_CANCEL):
        return e->preadmission_cancel->request_id;
    case B(ADMISSION_NOTICE):
        return e->admission_notice->request_id;
    case B(CARE_TASK_REQUEST):
        return e->care_task_request->task_id;
    case B(CARE_TASK_UPDATE):
        return e->care_task_update->task_id;
    default:
        return "";
    }
}

/* ---- Behaviours: the answers an agent sends from its handler ---------------------- */

static void reply_with(relais_agent_t *agent, const Relais__V1__Envelope *original,
                       Relais__V1__Envelope *reply)
{
    if (relais_agent_reply(agent, original, reply, NULL, NULL, NULL) != 0)
        fprintf(stderr, "%s: reply refused: %s\n", relais_agent_address(agent),
                relais_conv_last_refusal(agent));
}

static void behave(acc_agent_t *t, relais_agent_t *agent, const Relais__V1__Envelope *env)
{
    Relais__V1__Envelope r = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Slot slot = RELAIS__V1__SLOT__INIT;
    Relais__V1__Slot *slots[1] = {&slot};
    int64_t now = relais_now_ms();
    slot.slot_id = "slot-1";
    slot.start_ms = now + 24 * HOUR_MS;
    slot.end_ms = slot.start_ms + HOUR_MS / 2;
    slot.practitioner = t->address;
    slot.mode = RELAIS__V1__SLOT__MODE__OFFICE;
    switch (env->body_case) {
    case B(APPOINTMENT_REQUEST):
        if (t->offer_on_request) {
            Relais__V1__AppointmentOffer o = RELAIS__V1__APPOINTMENT_OFFER__INIT;
            o.request_id = env->appointment_request->request_id;
            o.slots = slots;
            o.n_slots = 1;
            o.held_until_ms = now + 12 * HOUR_MS;
            r.body_case = B(APPOINTMENT_OFFER);
            r.appointment_offer = &o;
            reply_with(agent, env, &r);
        }
        break;
    case B(APPOINTMENT_OFFER):
        if (t->book_on_offer && env->appointment_offer->n_slots > 0) {
            Relais__V1__AppointmentBook b = RELAIS__V1__APPOINTMENT_BOOK__INIT;
            b.request_id = env->appointment_offer->request_id;
            b.slot = env->appointment_offer->slots[0];
            r.body_case = B(APPOINTMENT_BOOK);
            r.appointment_book = &b;
            reply_with(agent, env, &r);
        }
        break;
    case B(APPOINTMENT_BOOK):
        if (t->confirm_on_book) {
            Relais__V1__AppointmentConfirm c = RELAIS__V1__APPOINTMENT_CONFIRM__INIT;
            c.request_id = env->appointment_book->request_id;
            c.appointment_id = "appt-1";
            c.slot = env->appointment_book->slot;
            r.body_case = B(APPOINTMENT_CONFIRM);
            r.appointment_confirm = &c;
            reply_with(agent, env, &r);
        }
        break;
    case B(PREADMISSION_REQUEST):
        if (t->decision) {
            Relais__V1__PreadmissionDecision d = RELAIS__V1__PREADMISSION_DECISION__INIT;
            d.request_id = env->preadmission_request->request_id;
            d.decision = (Relais__V1__PreadmissionDecision__Decision)t->decision;
            d.admission_date_ms = now + 48 * HOUR_MS;
            r.body_case = B(PREADMISSION_DECISION);
            r.preadmission_decision = &d;
            reply_with(agent, env, &r);
        }
        break;
    case B(PREADMISSION_CHOICE):
        if (t->admit_on_choice) {
            Relais__V1__AdmissionNotice n = RELAIS__V1__ADMISSION_NOTICE__INIT;
            n.request_id = env->preadmission_choice->request_id;
            n.facility = t->address;
            n.encounter_id = "enc-accept-1";
            n.admitted_at_ms = now;
            r.body_case = B(ADMISSION_NOTICE);
            r.admission_notice = &n;
            reply_with(agent, env, &r);
        }
        break;
    case B(CARE_TASK_REQUEST):
        if (t->complete_on_task) {
            Relais__V1__CareTaskUpdate u = RELAIS__V1__CARE_TASK_UPDATE__INIT;
            u.task_id = env->care_task_request->task_id;
            u.status = RELAIS__V1__CARE_TASK_UPDATE__STATUS__COMPLETED;
            u.at_ms = now;
            r.body_case = B(CARE_TASK_UPDATE);
            r.care_task_update = &u;
            reply_with(agent, env, &r);
        }
        break;
    default:
        break;
    }
}

static relais_outcome_t on_any(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    acc_agent_t *t = ud;
    const Relais__V1__Envelope *env = d->envelope;
    int64_t at = relais_now_ms();
    behave(t, agent, env);
    Relais__V1__Escalation *esc = NULL;
    if (env->body_case == B(ESCALATION)) {
        /* Kept whole: a copy through the wire format. */
        size_t n = relais__v1__escalation__get_packed_size(env->escalation);
        uint8_t *buf = malloc(n + 1);
        if (buf != NULL) {
            relais__v1__escalation__pack(env->escalation, buf);
            esc = relais__v1__escalation__unpack(NULL, n, buf);
            free(buf);
        }
    }
    RECORD(t, {
        t->ev.got[env->body_case]++;
        if (t->ev.nlog < ACC_MAX_LOG) {
            acc_delivery_t *l = &t->ev.log[t->ev.nlog++];
            l->body = env->body_case;
            l->at_ms = at;
            snprintf(l->sender, sizeof(l->sender), "%s", env->sender);
            snprintf(l->ref, sizeof(l->ref), "%s", ref_of(env));
            snprintf(l->reason, sizeof(l->reason), "%s",
                     env->body_case == B(PREADMISSION_CANCEL) && env->preadmission_cancel->reason
                         ? env->preadmission_cancel->reason
                         : "");
            const ProtobufCBinaryData *c =
                env->conversation_id.len ? &env->conversation_id : &env->message_id;
            if (c->len == RELAIS_MESSAGE_ID_LEN) memcpy(l->conv, c->data, RELAIS_MESSAGE_ID_LEN);
        }
        if (esc) {
            if (t->ev.escalation) relais__v1__escalation__free_unpacked(t->ev.escalation, NULL);
            t->ev.escalation = esc;
            t->ev.escalation_at_ms = at;
        }
    });
    return RELAIS_PROCESSED;
}

/* ---- Hooks ------------------------------------------------------------------------ */

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    acc_agent_t *t = ud;
    RECORD(t, {
        if (state == RELAIS_AGENT_READY) t->ev.ready++;
        if (state == RELAIS_AGENT_STOPPED) t->ev.stopped++;
    });
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    acc_agent_t *t = ud;
    RECORD(t, {
        if (t->ev.nreceipts < ACC_MAX_RECEIPTS) {
            acc_receipt_t *x = &t->ev.receipts[t->ev.nreceipts++];
            x->status = r->status;
            snprintf(x->recipient, sizeof(x->recipient), "%s", r->recipient);
            snprintf(x->claimed_by, sizeof(x->claimed_by), "%s", r->claimed_by);
            if (r->message_id.len == RELAIS_MESSAGE_ID_LEN)
                memcpy(x->message_id, r->message_id.data, RELAIS_MESSAGE_ID_LEN);
        }
    });
}

static relais_offer_decision_t on_offer(relais_agent_t *agent, const relais_delivery_t *d, void *ud)
{
    acc_agent_t *t = ud;
    RECORD(t, t->ev.offers++);
    return t->decline_offers ? RELAIS_OFFER_DECLINE : RELAIS_OFFER_CLAIM;
}

static void on_withdrawn(relais_agent_t *agent, const uint8_t *message_id, const char *reason,
                         void *ud)
{
    acc_agent_t *t = ud;
    RECORD(t, t->ev.withdrawn++);
}

static acc_conv_t *conv_locked(acc_agent_t *t, const uint8_t *id)
{
    for (size_t i = 0; i < t->ev.nconvs; i++)
        if (memcmp(t->ev.convs[i].id, id, RELAIS_MESSAGE_ID_LEN) == 0) return &t->ev.convs[i];
    return NULL;
}

static void on_change(relais_agent_t *agent, const relais_conv_info_t *c, relais_conv_state_t old,
                      void *ud)
{
    acc_agent_t *t = ud;
    RECORD(t, {
        acc_conv_t *x = conv_locked(t, c->id);
        if (x == NULL && t->ev.nconvs < ACC_MAX_CONV) {
            x = &t->ev.convs[t->ev.nconvs++];
            memcpy(x->id, c->id, RELAIS_MESSAGE_ID_LEN);
        }
        if (x != NULL) {
            /* A handler that answers at once reports its own send's change first; the
             * delivery's change then reports the same state again. */
            bool again = x->state == c->state;
            x->state = c->state;
            size_t n = strlen(x->trail);
            if (!again)
                snprintf(x->trail + n, sizeof(x->trail) - n, "%s%s", n ? ">" : "",
                         relais_conv_state_name(c->state));
        }
    });
}

static void on_escalation(relais_agent_t *agent, const relais_conv_info_t *c,
                          const Relais__V1__Escalation *esc, int rc, void *ud)
{
    acc_agent_t *t = ud;
    RECORD(t, {
        t->ev.escalations++;
        t->ev.esc_rc = rc;
    });
}

/* ---- Agents ----------------------------------------------------------------------- */

static void *agent_main(void *arg)
{
    acc_agent_t *t = arg;
    t->run_rc = relais_agent_run(t->agent);
    return NULL;
}

void acc_agent_start(acc_agent_t *t, const rt_broker_t *broker, const char *address,
                     const relais_conv_options_t *conv_opts, const char *state_path)
{
    cr_assert_not(t->running, "%s is already running", address);
    acc_agent_free(t);
    t->run_rc = 0;
    snprintf(t->address, sizeof(t->address), "%s", address);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->ev.cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&t->ev.mu, NULL);
    t->inited = true;
    const rt_key_t *key = rt_key_for(broker, address);
    cr_assert_not_null(key, "%s is not in the test territory", address);
    relais_agent_options_t opts = {.endpoint = broker->endpoint,
                                   .address = address,
                                   .software = "test-acceptance/1",
                                   .state_path = state_path,
                                   .curve_server_key = broker->server_pub,
                                   .curve_public_key = key->pub,
                                   .curve_secret_key = key->sec};
    cr_assert_eq(relais_agent_new(&t->agent, &opts), 0, "%s: relais_agent_new", address);
    relais_agent_on_state(t->agent, on_state, t);
    relais_agent_on_receipt(t->agent, on_receipt, t);
    relais_agent_on_withdrawn(t->agent, on_withdrawn, t);
    /* Without a callback the SDK claims every offer it has a handler for: the default the
     * race scenario relies on. */
    if (t->decline_offers) relais_agent_on_offer(t->agent, on_offer, t);
    cr_assert_eq(relais_agent_on(t->agent, 0, on_any, t), 0);
    if (conv_opts) {
        relais_conv_hooks_t hooks = {
            .on_change = on_change, .on_escalation = on_escalation, .ud = t};
        cr_assert_eq(relais_conv_enable(t->agent, conv_opts, &hooks), 0);
    }
    cr_assert_eq(pthread_create(&t->thread, NULL, agent_main, t), 0);
    t->running = true;
    ACC_AWAIT(t, ev->ready >= 1);
}

static void noop(relais_agent_t *agent, void *ud) {}

void acc_agent_free(acc_agent_t *t)
{
    acc_agent_stop(t);
    if (!t->inited) return;
    if (t->ev.escalation) relais__v1__escalation__free_unpacked(t->ev.escalation, NULL);
    pthread_cond_destroy(&t->ev.cv);
    pthread_mutex_destroy(&t->ev.mu);
    memset(&t->ev, 0, sizeof(t->ev));
    t->inited = false;
}

void acc_agent_stop(acc_agent_t *t)
{
    if (!t->running) return;
    relais_agent_stop(t->agent);
    pthread_join(t->thread, NULL);
    t->running = false;
    cr_expect_eq(t->run_rc, 0, "%s: run() ends cleanly", t->address);
    cr_expect_eq(t->ev.stopped, 1, "%s: STOPPED reported once", t->address);
    cr_expect_eq(relais_agent_post(t->agent, noop, NULL), RELAIS_ECLOSED);
    relais_agent_destroy(&t->agent);
}

/* ---- Jobs: what the test thread has an agent do on its loop ------------------------ */

typedef struct call {
    acc_agent_t *t;
    relais_agent_fn fn;
    void *ud;
    bool done;
} call_t;

static void do_call(relais_agent_t *agent, void *ud)
{
    call_t *c = ud;
    c->fn(agent, c->ud);
    RECORD(c->t, c->done = true);
}

void acc_call(acc_agent_t *t, relais_agent_fn fn, void *ud)
{
    call_t c = {.t = t, .fn = fn, .ud = ud};
    cr_assert_eq(relais_agent_post(t->agent, do_call, &c), 0);
    ACC_AWAIT(t, c.done);
}

void acc_send_on_loop(relais_agent_t *agent, acc_msg_t *m)
{
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__AppointmentRequest areq = RELAIS__V1__APPOINTMENT_REQUEST__INIT;
    Relais__V1__AppointmentBook book = RELAIS__V1__APPOINTMENT_BOOK__INIT;
    Relais__V1__Slot slot = RELAIS__V1__SLOT__INIT;
    Relais__V1__AppointmentOutcome out = RELAIS__V1__APPOINTMENT_OUTCOME__INIT;
    Relais__V1__PreadmissionRequest preq = RELAIS__V1__PREADMISSION_REQUEST__INIT;
    Relais__V1__PreadmissionChoice choice = RELAIS__V1__PREADMISSION_CHOICE__INIT;
    Relais__V1__CareTaskRequest task = RELAIS__V1__CARE_TASK_REQUEST__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    Relais__V1__PatientRef patient = RELAIS__V1__PATIENT_REF__INIT;
    patient.local_id = "pat-accept-7";
    env.to = (char **)m->to;
    env.n_to = m->nto;
    env.on_behalf_of = (char *)(m->on_behalf_of ? m->on_behalf_of : "");
    env.dispatch = (Relais__V1__Envelope__Dispatch)m->dispatch;
    env.expires_at_ms = m->expires_at_ms;
    if (m->conv)
        env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, (uint8_t *)m->conv};
    env.body_case = (Relais__V1__Envelope__BodyCase)m->body;
    switch (m->body) {
    case B(APPOINTMENT_REQUEST):
        areq.request_id = (char *)m->ref;
        areq.patient = &patient;
        areq.requested_role = "physiotherapist";
        areq.reason = "post-operative knee rehabilitation";
        env.appointment_request = &areq;
        break;
    case B(APPOINTMENT_BOOK):
        slot.slot_id = "slot-1";
        slot.start_ms = relais_now_ms() + 24 * HOUR_MS;
        slot.end_ms = slot.start_ms + HOUR_MS / 2;
        slot.practitioner = (char *)m->to[0];
        slot.mode = RELAIS__V1__SLOT__MODE__OFFICE;
        book.request_id = (char *)m->ref;
        book.slot = &slot;
        env.appointment_book = &book;
        break;
    case B(APPOINTMENT_OUTCOME):
        out.request_id = (char *)m->ref;
        out.appointment_id = "appt-1";
        out.outcome = (Relais__V1__AppointmentOutcome__Outcome)m->sub;
        env.appointment_outcome = &out;
        break;
    case B(PREADMISSION_REQUEST):
        preq.request_id = (char *)m->ref;
        preq.patient = &patient;
        preq.facility_kind = RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR;
        preq.expected_date_ms = relais_now_ms() + 72 * HOUR_MS;
        env.preadmission_request = &preq;
        break;
    case B(PREADMISSION_CHOICE):
        choice.request_id = (char *)m->ref;
        choice.facility = (char *)m->to[0];
        env.preadmission_choice = &choice;
        break;
    case B(CARE_TASK_REQUEST):
        task.task_id = (char *)m->ref;
        task.patient = &patient;
        task.action = "dressing change";
        env.care_task_request = &task;
        break;
    case B(NOTE):
        note.text = (char *)m->text;
        env.note = &note;
        break;
    default:
        m->rc = -EINVAL; /* not a body this helper builds: the test asserts the 0 it expects */
        return;
    }
    m->rc = relais_agent_send(agent, &env, m->id, NULL, NULL);
    snprintf(m->refusal, sizeof(m->refusal), "%s", relais_conv_last_refusal(agent));
}

static void do_send(relais_agent_t *agent, void *ud)
{
    acc_send_on_loop(agent, ud);
}

int acc_send(acc_agent_t *t, acc_msg_t *m)
{
    acc_call(t, do_send, m);
    return m->rc;
}

static void snapshot(relais_agent_t *agent, const relais_conv_info_t *c, void *ud)
{
    acc_snap_t *s = ud;
    memset(s, 0, sizeof(*s));
    s->kind = c->kind;
    s->role = c->role;
    s->state = c->state;
    snprintf(s->counterpart, sizeof(s->counterpart), "%s", c->counterpart);
    s->deadline_ms = c->deadline_ms;
    s->escalated = c->escalated;
    s->nparts = c->nparts < 4 ? c->nparts : 4;
    for (size_t i = 0; i < s->nparts; i++) {
        snprintf(s->part_key[i], sizeof(s->part_key[i]), "%s", c->parts[i].key);
        s->part_state[i] = c->parts[i].state;
    }
}

typedef struct get_job {
    const uint8_t *id;
    acc_snap_t *out;
    int rc;
} get_job_t;

static void do_get(relais_agent_t *agent, void *ud)
{
    get_job_t *j = ud;
    j->rc = relais_conv_get(agent, j->id, snapshot, j->out);
}

int acc_conv_get(acc_agent_t *t, const uint8_t id[RELAIS_MESSAGE_ID_LEN], acc_snap_t *out)
{
    get_job_t j = {.id = id, .out = out};
    memset(out, 0, sizeof(*out));
    acc_call(t, do_get, &j);
    return j.rc;
}

relais_conv_state_t acc_part(const acc_snap_t *s, const char *key)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (strcmp(s->part_key[i], key) == 0) return s->part_state[i];
    return 0;
}

relais_conv_state_t acc_state_locked(const acc_agent_t *t, const uint8_t *id)
{
    for (size_t i = 0; i < t->ev.nconvs; i++)
        if (memcmp(t->ev.convs[i].id, id, RELAIS_MESSAGE_ID_LEN) == 0) return t->ev.convs[i].state;
    return 0;
}

int acc_count_locked(const acc_agent_t *t, relais_conv_state_t state)
{
    int n = 0;
    for (size_t i = 0; i < t->ev.nconvs; i++) n += t->ev.convs[i].state == state;
    return n;
}

void acc_await_state(acc_agent_t *t, const uint8_t *id, relais_conv_state_t state)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += ACC_WAIT_MS / 1000;
    pthread_mutex_lock(&t->ev.mu);
    while (acc_state_locked(t, id) != state)
        if (pthread_cond_timedwait(&t->ev.cv, &t->ev.mu, &dl) == ETIMEDOUT) break;
    relais_conv_state_t now = acc_state_locked(t, id);
    acc_conv_t *x = conv_locked(t, id);
    char trail[sizeof(x->trail)];
    snprintf(trail, sizeof(trail), "%s", x ? x->trail : "");
    pthread_mutex_unlock(&t->ev.mu);
    cr_assert_eq(now, state, "%s: conversation never reached %s (went %s)", t->address,
                 relais_conv_state_name(state), trail[0] ? trail : "nowhere");
}

void acc_trail(acc_agent_t *t, const uint8_t *id, char *out, size_t len)
{
    pthread_mutex_lock(&t->ev.mu);
    acc_conv_t *x = conv_locked(t, id);
    snprintf(out, len, "%s", x ? x->trail : "");
    pthread_mutex_unlock(&t->ev.mu);
}

int acc_read(acc_agent_t *t, const int *field)
{
    pthread_mutex_lock(&t->ev.mu);
    int v = *field;
    pthread_mutex_unlock(&t->ev.mu);
    return v;
}
