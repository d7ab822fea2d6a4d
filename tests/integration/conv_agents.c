/*
 * The conversation test agents of conv_agents.h: behaviours, hooks, jobs and queries.
 */
#include "conv_agents.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Replies the behaviours send -------------------------------------------------- */

static int reply_with(relais_agent_t *agent, const Relais__V1__Envelope *original,
                      Relais__V1__Envelope *reply)
{
    int rc = relais_agent_reply(agent, original, reply, NULL, NULL, NULL);
    if (rc != 0) fprintf(stderr, "reply refused: %s\n", relais_conv_last_refusal(agent));
    return rc;
}

static void behave(tagent_t *t, relais_agent_t *agent, const Relais__V1__Envelope *env)
{
    Relais__V1__Envelope r = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Slot slot = RELAIS__V1__SLOT__INIT;
    Relais__V1__Slot *slots[1] = {&slot};
    int64_t now = relais_now_ms();
    slot.slot_id = "slot-1";
    slot.start_ms = now + 3600 * 1000;
    slot.end_ms = now + 4000 * 1000;
    switch (env->body_case) {
    case B(APPOINTMENT_REQUEST):
        if (t->offer_on_request) {
            Relais__V1__AppointmentOffer o = RELAIS__V1__APPOINTMENT_OFFER__INIT;
            o.request_id = env->appointment_request->request_id;
            o.slots = slots;
            o.n_slots = 1;
            o.held_until_ms = now + 3600 * 1000;
            r.body_case = B(APPOINTMENT_OFFER);
            r.appointment_offer = &o;
            reply_with(agent, env, &r);
        }
        break;
    case B(APPOINTMENT_OFFER):
        if (t->book_on_offer) {
            Relais__V1__AppointmentBook b = RELAIS__V1__APPOINTMENT_BOOK__INIT;
            b.request_id = env->appointment_offer->request_id;
            b.slot = env->appointment_offer->n_slots ? env->appointment_offer->slots[0] : NULL;
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
            d.admission_date_ms = now + 24 * 3600 * 1000LL;
            r.body_case = B(PREADMISSION_DECISION);
            r.preadmission_decision = &d;
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
    case B(PREADMISSION_CHOICE):
        if (t->admit_on_choice) {
            Relais__V1__AdmissionNotice n = RELAIS__V1__ADMISSION_NOTICE__INIT;
            n.request_id = env->preadmission_choice->request_id;
            n.facility = t->address;
            n.admitted_at_ms = now;
            r.body_case = B(ADMISSION_NOTICE);
            r.admission_notice = &n;
            reply_with(agent, env, &r);
        }
        break;
    default:
        break;
    }
}

static relais_outcome_t on_any(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    tagent_t *t = ud;
    const Relais__V1__Envelope *env = d->envelope;
    behave(t, agent, env);
    Relais__V1__Escalation *esc = NULL;
    if (env->body_case == B(ESCALATION)) {
        /* Kept whole: a copy through the wire format. */
        size_t n = relais__v1__escalation__get_packed_size(env->escalation);
        uint8_t *buf = malloc(n + 1);
        relais__v1__escalation__pack(env->escalation, buf);
        esc = relais__v1__escalation__unpack(NULL, n, buf);
        free(buf);
    }
    RECORD(t, {
        t->ev.got[env->body_case]++;
        const ProtobufCBinaryData *c =
            env->conversation_id.len ? &env->conversation_id : &env->message_id;
        if (c->len == RELAIS_MESSAGE_ID_LEN) memcpy(t->ev.conv, c->data, RELAIS_MESSAGE_ID_LEN);
        if (esc) {
            if (t->ev.escalation) relais__v1__escalation__free_unpacked(t->ev.escalation, NULL);
            t->ev.escalation = esc;
        }
    });
    return RELAIS_PROCESSED;
}

/* ---- Hooks ------------------------------------------------------------------------ */

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    tagent_t *t = ud;
    RECORD(t, {
        if (state == RELAIS_AGENT_READY) t->ev.ready++;
        if (state == RELAIS_AGENT_STOPPED) t->ev.stopped++;
    });
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    tagent_t *t = ud;
    if (r->status == RELAIS__V1__RECEIPT__STATUS__PROCESSED) RECORD(t, t->ev.processed++);
    if (r->status != RELAIS__V1__RECEIPT__STATUS__REFUSED) return;
    RECORD(t, {
        t->ev.refused++;
        snprintf(t->ev.refused_reason, sizeof(t->ev.refused_reason), "%s", r->reason);
    });
}

static void on_change(relais_agent_t *agent, const relais_conv_info_t *c, relais_conv_state_t old,
                      void *ud)
{
    tagent_t *t = ud;
    RECORD(t, t->ev.changes++);
}

static void on_reminder(relais_agent_t *agent, const relais_conv_info_t *c, void *ud)
{
    tagent_t *t = ud;
    RECORD(t, {
        t->ev.reminders++;
        t->ev.reminder_seq = ++t->ev.seq;
    });
}

static void on_escalation(relais_agent_t *agent, const relais_conv_info_t *c,
                          const Relais__V1__Escalation *esc, int rc, void *ud)
{
    tagent_t *t = ud;
    RECORD(t, {
        t->ev.escalations++;
        t->ev.esc_rc = rc;
        t->ev.escalation_seq = ++t->ev.seq;
    });
}

static bool redispatch(relais_agent_t *agent, const relais_conv_info_t *c,
                       char next[RELAIS_ADDRESS_MAX], void *ud)
{
    tagent_t *t = ud;
    if (!t->next_candidate || c->redispatches > 0) return false;
    snprintf(next, RELAIS_ADDRESS_MAX, "%s", t->next_candidate);
    return true;
}

/* ---- Agents ----------------------------------------------------------------------- */

static void *agent_main(void *arg)
{
    tagent_t *t = arg;
    t->run_rc = relais_agent_run(t->agent);
    return NULL;
}

tagent_t *conv_agent_start(tagent_t *t, const rt_broker_t *broker, const char *state_dir,
                           const char *address, const relais_conv_options_t *conv_opts,
                           const char *state_file, const tagent_t *like)
{
    cr_assert_not(t->running);
    memset(t, 0, sizeof(*t));
    if (like) *t = *like;
    snprintf(t->address, sizeof(t->address), "%s", address);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->ev.cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&t->ev.mu, NULL);
    const rt_key_t *key = rt_key_for(broker, address);
    cr_assert_not_null(key, "%s is not in the test territory", address);
    char path[128] = "";
    if (state_file) snprintf(path, sizeof(path), "%s/%s", state_dir, state_file);
    relais_agent_options_t opts = {.endpoint = broker->endpoint,
                                   .address = address,
                                   .software = "test-conversations/1",
                                   .state_path = state_file ? path : NULL,
                                   .curve_server_key = broker->server_pub,
                                   .curve_public_key = key->pub,
                                   .curve_secret_key = key->sec};
    cr_assert_eq(relais_agent_new(&t->agent, &opts), 0);
    relais_agent_on_state(t->agent, on_state, t);
    relais_agent_on_receipt(t->agent, on_receipt, t);
    cr_assert_eq(relais_agent_on(t->agent, 0, on_any, t), 0);
    if (conv_opts) {
        relais_conv_hooks_t hooks = {.on_change = on_change,
                                     .on_reminder = on_reminder,
                                     .on_escalation = on_escalation,
                                     .redispatch = redispatch,
                                     .ud = t};
        cr_assert_eq(relais_conv_enable(t->agent, conv_opts, &hooks), 0);
    }
    cr_assert_eq(pthread_create(&t->thread, NULL, agent_main, t), 0);
    t->running = true;
    AWAIT(t, ev->ready >= 1);
    return t;
}

static void noop(relais_agent_t *agent, void *ud) {}

void conv_agent_stop(tagent_t *t)
{
    if (!t->running) return;
    relais_agent_stop(t->agent);
    pthread_join(t->thread, NULL);
    t->running = false;
    cr_expect_eq(t->run_rc, 0);
    cr_expect_eq(t->ev.stopped, 1, "STOPPED reported once");
    cr_expect_eq(relais_agent_post(t->agent, noop, NULL), RELAIS_ECLOSED);
    relais_agent_destroy(&t->agent);
    if (t->ev.escalation) relais__v1__escalation__free_unpacked(t->ev.escalation, NULL);
    pthread_cond_destroy(&t->ev.cv);
    pthread_mutex_destroy(&t->ev.mu);
}

/* ---- Jobs: what the test thread has an agent do on its loop ------------------------ */

static void do_send(relais_agent_t *agent, void *ud)
{
    job_t *j = ud;
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__AppointmentRequest areq = RELAIS__V1__APPOINTMENT_REQUEST__INIT;
    Relais__V1__AppointmentConfirm conf = RELAIS__V1__APPOINTMENT_CONFIRM__INIT;
    Relais__V1__AppointmentOutcome out = RELAIS__V1__APPOINTMENT_OUTCOME__INIT;
    Relais__V1__AppointmentCancel cancel = RELAIS__V1__APPOINTMENT_CANCEL__INIT;
    Relais__V1__PreadmissionRequest preq = RELAIS__V1__PREADMISSION_REQUEST__INIT;
    Relais__V1__PreadmissionChoice choice = RELAIS__V1__PREADMISSION_CHOICE__INIT;
    Relais__V1__DischargeNotification dn = RELAIS__V1__DISCHARGE_NOTIFICATION__INIT;
    Relais__V1__FollowUpItem items[2] = {RELAIS__V1__FOLLOW_UP_ITEM__INIT,
                                         RELAIS__V1__FOLLOW_UP_ITEM__INIT};
    Relais__V1__FollowUpItem *item_ptrs[2] = {&items[0], &items[1]};
    Relais__V1__TimeWindow windows[2] = {RELAIS__V1__TIME_WINDOW__INIT,
                                         RELAIS__V1__TIME_WINDOW__INIT};
    Relais__V1__CareTaskRequest task = RELAIS__V1__CARE_TASK_REQUEST__INIT;
    Relais__V1__PatientRef patient = RELAIS__V1__PATIENT_REF__INIT;
    Relais__V1__Receipt__Status wanted[] = {RELAIS__V1__RECEIPT__STATUS__PROCESSED};
    patient.local_id = "pat-42";
    env.to = (char **)j->to;
    env.n_to = j->nto;
    if (j->conv)
        env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, (uint8_t *)j->conv};
    if (j->receipts) {
        env.receipts = wanted;
        env.n_receipts = 1;
    }
    env.body_case = (Relais__V1__Envelope__BodyCase)j->body;
    switch (j->body) {
    case B(APPOINTMENT_REQUEST):
        areq.request_id = "req-1";
        areq.patient = &patient;
        areq.requested_role = "nurse";
        if (j->window_due_ms) {
            windows[0].due_by_ms = j->window_due_ms;
            areq.window = &windows[0];
        }
        env.appointment_request = &areq;
        break;
    case B(APPOINTMENT_CONFIRM):
        conf.request_id = "req-1";
        env.appointment_confirm = &conf;
        break;
    case B(APPOINTMENT_OUTCOME):
        out.request_id = "req-1";
        out.outcome = (Relais__V1__AppointmentOutcome__Outcome)j->sub;
        env.appointment_outcome = &out;
        break;
    case B(APPOINTMENT_CANCEL):
        cancel.request_id = "req-1";
        env.appointment_cancel = &cancel;
        break;
    case B(PREADMISSION_REQUEST):
        preq.request_id = "pre-1";
        preq.patient = &patient;
        preq.facility_kind = RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR;
        env.preadmission_request = &preq;
        break;
    case B(DISCHARGE_NOTIFICATION):
        dn.encounter_id = "enc-1";
        dn.patient = &patient;
        dn.programme = "heart-failure";
        items[0].item_id = "nurse-visit";
        items[0].role = "nurse";
        items[0].action = "weight and symptoms check";
        windows[0].due_by_ms = relais_now_ms() + 3600 * 1000;
        items[1].item_id = "cardiology";
        items[1].role = "specialist";
        items[1].specialty = "cardiology";
        items[1].action = "consultation";
        windows[1].due_by_ms = j->due_ms;
        items[0].window = &windows[0];
        items[1].window = &windows[1];
        dn.follow_up = item_ptrs;
        dn.n_follow_up = 2;
        env.discharge_notification = &dn;
        break;
    case B(CARE_TASK_REQUEST):
        task.task_id = "task-1";
        task.patient = &patient;
        task.action = "weight and symptoms check";
        task.encounter_id = "enc-1";
        task.follow_up_item_id = (char *)j->item;
        env.care_task_request = &task;
        break;
    case B(PREADMISSION_CHOICE):
        choice.request_id = "pre-1";
        choice.facility = (char *)j->to[0];
        env.preadmission_choice = &choice;
        break;
    }
    j->rc = relais_agent_send(agent, &env, j->id, NULL, NULL);
    snprintf(j->refusal, sizeof(j->refusal), "%s", relais_conv_last_refusal(agent));
    RECORD(j->t, j->done = true);
}

/* Has t send body (to one or more addresses) and returns relais_agent_send()'s result. */
int send_as(tagent_t *t, job_t *j)
{
    j->t = t;
    j->done = false;
    cr_assert_eq(relais_agent_post(t->agent, do_send, j), 0);
    AWAIT(t, j->done);
    return j->rc;
}

static void do_snapshot(relais_agent_t *agent, const relais_conv_info_t *c, void *ud)
{
    tagent_t *t = ud;
    if (t->ev.nsnap == MAX_SNAP) return;
    snap_t *s = &t->ev.snap[t->ev.nsnap++];
    memcpy(s->id, c->id, RELAIS_MESSAGE_ID_LEN);
    s->kind = c->kind;
    s->state = c->state;
    snprintf(s->counterpart, sizeof(s->counterpart), "%s", c->counterpart);
    s->deadline_ms = c->deadline_ms;
    s->escalated = c->escalated;
    s->redispatches = c->redispatches;
    s->nparts = c->nparts < 4 ? c->nparts : 4;
    for (size_t i = 0; i < s->nparts; i++) {
        snprintf(s->part_key[i], sizeof(s->part_key[i]), "%s", c->parts[i].key);
        s->part_state[i] = c->parts[i].state;
    }
}

static void do_query(relais_agent_t *agent, void *ud)
{
    tagent_t *t = ud;
    pthread_mutex_lock(&t->ev.mu);
    t->ev.nsnap = 0;
    relais_conv_foreach(agent, do_snapshot, t);
    t->ev.seq++;
    pthread_cond_broadcast(&t->ev.cv);
    pthread_mutex_unlock(&t->ev.mu);
}

/* Takes a snapshot of t's conversations (the query API, on its loop) into t->ev.snap. */
void query(tagent_t *t)
{
    pthread_mutex_lock(&t->ev.mu);
    int before = t->ev.seq;
    pthread_mutex_unlock(&t->ev.mu);
    cr_assert_eq(relais_agent_post(t->agent, do_query, t), 0);
    AWAIT(t, ev->seq > before);
}

/* Waits until pred holds for t's first conversation (from the query API). */
const snap_t *await_snap(tagent_t *t, snap_pred pred, const void *arg, const char *what)
{
    struct timespec dl;
    clock_gettime(CLOCK_MONOTONIC, &dl);
    dl.tv_sec += WAIT_MS / 1000;
    for (;;) {
        query(t);
        if (t->ev.nsnap > 0 && pred(&t->ev.snap[0], arg)) return &t->ev.snap[0];
        /* The next change wakes us; a state reached between query and wait is seen by the
         * next query after the timeout slice. */
        pthread_mutex_lock(&t->ev.mu);
        int changes = t->ev.changes;
        struct timespec slice;
        clock_gettime(CLOCK_MONOTONIC, &slice);
        slice.tv_nsec += 100 * 1000000L;
        if (slice.tv_nsec >= 1000000000L) {
            slice.tv_sec++;
            slice.tv_nsec -= 1000000000L;
        }
        while (t->ev.changes == changes &&
               pthread_cond_timedwait(&t->ev.cv, &t->ev.mu, &slice) != ETIMEDOUT) {
        }
        pthread_mutex_unlock(&t->ev.mu);
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        cr_assert(now.tv_sec < dl.tv_sec || (now.tv_sec == dl.tv_sec && now.tv_nsec < dl.tv_nsec),
                  "%s: conversation never reached %s (it is %s)", t->address, what,
                  t->ev.nsnap ? relais_conv_state_name(t->ev.snap[0].state) : "absent");
    }
}

static bool in_state(const snap_t *s, const void *arg)
{
    return s->state == *(const relais_conv_state_t *)arg;
}

/* Waits until t's first conversation is in state. */
const snap_t *await_state(tagent_t *t, relais_conv_state_t state)
{
    return await_snap(t, in_state, &state, relais_conv_state_name(state));
}

/* Reads one counter of t's record under its lock. */
int read_int(tagent_t *t, const int *field)
{
    pthread_mutex_lock(&t->ev.mu);
    int v = *field;
    pthread_mutex_unlock(&t->ev.mu);
    return v;
}

relais_conv_state_t part_of(const snap_t *s, const char *key)
{
    for (size_t i = 0; i < s->nparts; i++)
        if (strcmp(s->part_key[i], key) == 0) return s->part_state[i];
    return 0;
}
