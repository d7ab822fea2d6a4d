/*
 * Conversation tracking end to end: SDK agents with relais_conv_enable() exchange care
 * messages through a real relaisd (CurveZMQ, the test territory), and the SDK's state
 * machines, deadlines, escalations and state file are checked from the outside.
 *
 * The agents (conv_agents.c) run on their own threads and record what they see; the test
 * thread acts on them through relais_agent_post() and waits on their records with a
 * timeout. Deadlines are short (hundreds of milliseconds) and waited for as events:
 * nothing sleeps. The test territory has two establishments; the third candidate facility
 * of the preadmission test is one of its other addresses, which the test ACL allows to act
 * as one.
 */
#include <ftw.h>
#include <stdio.h>
#include <string.h>

#include "conv_agents.h"

#define ADDR_ASSISTANT "staff:claire.martin@cabinet-dupont"
#define ADDR_NURSE "rpps:10109876543"
#define ADDR_NURSE2 "rpps:10100000001"
#define ADDR_COORDINATOR "rpps:10000000002"
#define ADDR_F1 "finess:350000011"
#define ADDR_F2 "finess:350000014"
#define ADDR_F3 "rpps:10103456789"

static rt_broker_t broker;
static tagent_t agents[6];
static char state_dir[64];

static tagent_t *start_agent(int slot, const char *address, const relais_conv_options_t *conv_opts,
                             const char *state_file, const tagent_t *like)
{
    return conv_agent_start(&agents[slot], &broker, state_dir, address, conv_opts, state_file,
                            like);
}

static void stop_agent(tagent_t *t)
{
    conv_agent_stop(t);
}

static bool nurse_visit_completed(const snap_t *s, const void *arg)
{
    return part_of(s, "nurse-visit") == RELAIS_CONV_COMPLETED;
}

/* ---- Suite ------------------------------------------------------------------------ */

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void setup(void)
{
    rt_suite_start(&broker, NULL);
    snprintf(state_dir, sizeof(state_dir), "/tmp/relais-conv-XXXXXX");
    cr_assert_not_null(mkdtemp(state_dir));
}

static void teardown(void)
{
    for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++) stop_agent(&agents[i]);
    rt_suite_stop(&broker);
    nftw(state_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(conversations, .init = setup, .fini = teardown, .timeout = 120);

static const relais_conv_options_t defaults = {.coordinator = ADDR_COORDINATOR};

Test(conversations, an_appointment_goes_through_to_its_outcome)
{
    tagent_t *a =
        start_agent(0, ADDR_ASSISTANT, &defaults, NULL, &(tagent_t){.book_on_offer = true});
    tagent_t *n = start_agent(1, ADDR_NURSE, &defaults, NULL,
                              &(tagent_t){.offer_on_request = true, .confirm_on_book = true});
    job_t req = {.body = B(APPOINTMENT_REQUEST), .to = {ADDR_NURSE}, .nto = 1};
    cr_assert_eq(send_as(a, &req), 0);

    /* Offer, book (by the assistant's handler) and confirm flow on their own. */
    const snap_t *s = await_state(a, RELAIS_CONV_CONFIRMED);
    cr_expect_arr_eq(s->id, req.id, RELAIS_MESSAGE_ID_LEN, "the request opened the conversation");
    cr_expect_str_eq(s->counterpart, ADDR_NURSE);
    cr_expect_gt(s->deadline_ms, 0, "the outcome is awaited");
    s = await_state(n, RELAIS_CONV_CONFIRMED);
    cr_expect_str_eq(s->counterpart, ADDR_ASSISTANT);

    /* The loop closes only with the outcome. */
    job_t outcome = {.body = B(APPOINTMENT_OUTCOME),
                     .sub = RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED,
                     .to = {ADDR_ASSISTANT},
                     .nto = 1,
                     .conv = req.id};
    cr_assert_eq(send_as(n, &outcome), 0, "%s", outcome.refusal);
    s = await_state(a, RELAIS_CONV_FULFILLED);
    cr_expect_eq(s->deadline_ms, 0, "nothing is awaited any more");

    /* A closed appointment refuses what does not fit, with the reason. */
    job_t cancel = {.body = B(APPOINTMENT_CANCEL), .to = {ADDR_NURSE}, .nto = 1, .conv = req.id};
    cr_expect_eq(send_as(a, &cancel), RELAIS_EINVALID);
    cr_expect(strstr(cancel.refusal, "appointment_cancel") && strstr(cancel.refusal, "fulfilled"),
              "%s", cancel.refusal);

    /* A repeated confirmation (the nurse's SDK lets a repeat through) is acknowledged
     * PROCESSED without reaching the assistant's handler. */
    int confirms = read_int(a, &a->ev.got[B(APPOINTMENT_CONFIRM)]);
    cr_expect_eq(confirms, 1);
    job_t again = {.body = B(APPOINTMENT_CONFIRM),
                   .to = {ADDR_ASSISTANT},
                   .nto = 1,
                   .conv = req.id,
                   .receipts = true};
    cr_assert_eq(send_as(n, &again), 0, "%s", again.refusal);
    AWAIT(n, ev->processed == 1);
    cr_expect_eq(read_int(a, &a->ev.got[B(APPOINTMENT_CONFIRM)]), confirms,
                 "the handler saw it once only");
    await_state(a, RELAIS_CONV_FULFILLED);
}

Test(conversations, a_message_that_does_not_fit_is_refused_with_the_state_and_the_transition)
{
    tagent_t *a = start_agent(0, ADDR_ASSISTANT, &defaults, NULL, NULL);
    /* The nurse does not track conversations: its SDK lets anything through. */
    tagent_t *n = start_agent(1, ADDR_NURSE, NULL, NULL, NULL);
    job_t req = {.body = B(APPOINTMENT_REQUEST), .to = {ADDR_NURSE}, .nto = 1};
    cr_assert_eq(send_as(a, &req), 0);
    AWAIT(n, ev->got[B(APPOINTMENT_REQUEST)] == 1);

    job_t confirm = {
        .body = B(APPOINTMENT_CONFIRM), .to = {ADDR_ASSISTANT}, .nto = 1, .conv = req.id};
    cr_assert_eq(send_as(n, &confirm), 0);
    AWAIT(n, ev->refused == 1);
    cr_expect(strstr(n->ev.refused_reason, "appointment_confirm") &&
                  strstr(n->ev.refused_reason, "is requested") &&
                  strstr(n->ev.refused_reason, "needs booked"),
              "%s", n->ev.refused_reason);
    cr_expect_eq(read_int(a, &a->ev.got[B(APPOINTMENT_CONFIRM)]), 0, "the handler never saw it");

    /* An offer in a conversation nobody opened. */
    uint8_t unknown[RELAIS_MESSAGE_ID_LEN] = {0x42};
    job_t stray = {
        .body = B(APPOINTMENT_CONFIRM), .to = {ADDR_ASSISTANT}, .nto = 1, .conv = unknown};
    cr_assert_eq(send_as(n, &stray), 0);
    AWAIT(n, ev->refused == 2);
    cr_expect(strstr(n->ev.refused_reason, "unknown request") != NULL, "%s", n->ev.refused_reason);
    const snap_t *s = await_state(a, RELAIS_CONV_REQUESTED);
    cr_expect_eq(a->ev.nsnap, 1, "no conversation was opened by the stray message");
    (void)s;
}

Test(conversations, a_missed_deadline_reminds_then_escalates_to_the_coordinator)
{
    const relais_conv_options_t fast = {
        .coordinator = ADDR_COORDINATOR, .reminder_fraction = 0.5, .answer_ms = 800};
    tagent_t *c = start_agent(2, ADDR_COORDINATOR, NULL, NULL, NULL);
    tagent_t *a = start_agent(0, ADDR_ASSISTANT, &fast, NULL, NULL);
    /* The nurse is offline: the request waits in her mailbox, unanswered. */
    job_t req = {.body = B(APPOINTMENT_REQUEST), .to = {ADDR_NURSE}, .nto = 1};
    cr_assert_eq(send_as(a, &req), 0);

    AWAIT(a, ev->reminders == 1);
    AWAIT(a, ev->escalations == 1);
    cr_expect_lt(a->ev.reminder_seq, a->ev.escalation_seq, "the reminder comes first");
    cr_expect_eq(a->ev.esc_rc, 0, "the escalation was sent");
    AWAIT(c, ev->got[B(ESCALATION)] == 1);
    pthread_mutex_lock(&c->ev.mu);
    const Relais__V1__Escalation *e = c->ev.escalation;
    cr_assert_not_null(e);
    cr_expect_eq(e->conversation_id.len, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(e->conversation_id.data, req.id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(e->original_message_id.data, req.id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_str_eq(e->original_body, "appointment_request");
    cr_expect_str_eq(e->responsible, ADDR_NURSE);
    cr_expect_gt(e->deadline_ms, 0);
    cr_expect(strstr(e->reason, "no move from " ADDR_NURSE) != NULL, "%s", e->reason);
    pthread_mutex_unlock(&c->ev.mu);

    query(a);
    cr_assert_eq(a->ev.nsnap, 1);
    cr_expect(a->ev.snap[0].escalated);
    cr_expect_eq(a->ev.snap[0].state, RELAIS_CONV_REQUESTED, "still waiting, now escalated");
}

Test(conversations, an_unanswered_request_is_redispatched_to_the_next_candidate)
{
    const relais_conv_options_t fast = {.coordinator = ADDR_COORDINATOR, .answer_ms = 500};
    tagent_t *a =
        start_agent(0, ADDR_ASSISTANT, &fast, NULL, &(tagent_t){.next_candidate = ADDR_NURSE2});
    tagent_t *n2 =
        start_agent(1, ADDR_NURSE2, &defaults, NULL, &(tagent_t){.offer_on_request = true});
    job_t req = {.body = B(APPOINTMENT_REQUEST), .to = {ADDR_NURSE}, .nto = 1};
    cr_assert_eq(send_as(a, &req), 0);
    const snap_t *s = await_state(a, RELAIS_CONV_OFFERED);
    cr_expect_str_eq(s->counterpart, ADDR_NURSE2);
    cr_expect_eq(s->redispatches, 1);
    cr_expect_arr_eq(s->id, req.id, RELAIS_MESSAGE_ID_LEN, "the same conversation goes on");
    cr_expect_eq(read_int(a, &a->ev.escalations), 0, "a re-dispatch is not an escalation");
    AWAIT(n2, ev->got[B(APPOINTMENT_REQUEST)] == 1);

    /* The first nurse, back online, finds the request and its cancel. */
    tagent_t *n1 = start_agent(2, ADDR_NURSE, &defaults, NULL, NULL);
    AWAIT(n1, ev->got[B(APPOINTMENT_CANCEL)] == 1);
    await_state(n1, RELAIS_CONV_CANCELLED);
}

Test(conversations, a_request_past_its_window_is_escalated_once_and_not_offered_to_the_next)
{
    const relais_conv_options_t fast = {.coordinator = ADDR_COORDINATOR, .answer_ms = 500};
    tagent_t *c = start_agent(2, ADDR_COORDINATOR, NULL, NULL, NULL);
    tagent_t *a =
        start_agent(0, ADDR_ASSISTANT, &fast, NULL, &(tagent_t){.next_candidate = ADDR_NURSE2});
    /* The nurse is offline and the request's own window closes before its deadline. */
    job_t req = {.body = B(APPOINTMENT_REQUEST),
                 .to = {ADDR_NURSE},
                 .nto = 1,
                 .window_due_ms = relais_now_ms() + 100};
    cr_assert_eq(send_as(a, &req), 0);
    AWAIT(a, ev->escalations == 1);
    AWAIT(c, ev->got[B(ESCALATION)] == 1);
    pthread_mutex_lock(&c->ev.mu);
    const Relais__V1__Escalation *e = c->ev.escalation;
    cr_assert_not_null(e);
    cr_expect_eq(e->n_tried, 1, "the escalation lists who had it");
    if (e->n_tried == 1) cr_expect_str_eq(e->tried[0], ADDR_NURSE);
    pthread_mutex_unlock(&c->ev.mu);
    query(a);
    cr_assert_eq(a->ev.nsnap, 1);
    cr_expect_eq(a->ev.snap[0].redispatches, 0, "not offered to the next one as new");
    cr_expect_str_eq(a->ev.snap[0].counterpart, ADDR_NURSE);
}

Test(conversations, a_preadmission_to_three_facilities_cancels_the_others_on_choice)
{
    tagent_t *a = start_agent(0, ADDR_ASSISTANT, &defaults, NULL, NULL);
    tagent_t *f1 =
        start_agent(1, ADDR_F1, &defaults, NULL,
                    &(tagent_t){.decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED});
    tagent_t *f2 =
        start_agent(2, ADDR_F2, &defaults, NULL,
                    &(tagent_t){.decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED,
                                .admit_on_choice = true});
    tagent_t *f3 = start_agent(
        3, ADDR_F3, &defaults, NULL,
        &(tagent_t){.decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__WAITLISTED});
    job_t req = {.body = B(PREADMISSION_REQUEST), .to = {ADDR_F1, ADDR_F2, ADDR_F3}, .nto = 3};
    cr_assert_eq(send_as(a, &req), 0);
    AWAIT(a, ev->got[B(PREADMISSION_DECISION)] == 3);
    query(a);
    const snap_t *s = &a->ev.snap[0];
    cr_assert_eq(s->nparts, 3);
    cr_expect_eq(s->state, RELAIS_CONV_ACCEPTED);
    cr_expect_eq(part_of(s, ADDR_F1), RELAIS_CONV_REFUSED);
    cr_expect_eq(part_of(s, ADDR_F2), RELAIS_CONV_ACCEPTED);
    cr_expect_eq(part_of(s, ADDR_F3), RELAIS_CONV_WAITLISTED);

    /* Choosing the refused one is not allowed; choosing the accepted one cancels the
     * waitlisted one (the refused one needs nothing), and the chosen one admits. */
    job_t bad = {.body = B(PREADMISSION_CHOICE), .to = {ADDR_F1}, .nto = 1, .conv = req.id};
    cr_expect_eq(send_as(a, &bad), RELAIS_EINVALID);
    cr_expect(strstr(bad.refusal, "is refused") != NULL, "%s", bad.refusal);
    job_t choice = {.body = B(PREADMISSION_CHOICE), .to = {ADDR_F2}, .nto = 1, .conv = req.id};
    cr_assert_eq(send_as(a, &choice), 0, "%s", choice.refusal);
    AWAIT(f3, ev->got[B(PREADMISSION_CANCEL)] == 1);
    s = await_state(a, RELAIS_CONV_ADMITTED);
    cr_expect_str_eq(s->counterpart, ADDR_F2);
    cr_expect_eq(part_of(s, ADDR_F1), RELAIS_CONV_REFUSED);
    cr_expect_eq(part_of(s, ADDR_F2), RELAIS_CONV_ADMITTED);
    cr_expect_eq(part_of(s, ADDR_F3), RELAIS_CONV_CANCELLED);
    cr_expect_eq(s->deadline_ms, 0);

    /* Each facility's own view. */
    await_state(f2, RELAIS_CONV_ADMITTED);
    await_state(f3, RELAIS_CONV_CANCELLED);
    await_state(f1, RELAIS_CONV_REFUSED);
    cr_expect_eq(read_int(f1, &f1->ev.got[B(PREADMISSION_CANCEL)]), 0,
                 "a refusing facility is not cancelled");
}

Test(conversations, a_restarted_agent_keeps_its_conversations_and_deadlines)
{
    const relais_conv_options_t slow = {
        .coordinator = ADDR_COORDINATOR, .reminder_fraction = -1, .answer_ms = 2500};
    tagent_t *c = start_agent(2, ADDR_COORDINATOR, NULL, NULL, NULL);
    tagent_t *a = start_agent(0, ADDR_ASSISTANT, &slow, "assistant.db", NULL);
    job_t req = {.body = B(APPOINTMENT_REQUEST), .to = {ADDR_NURSE}, .nto = 1};
    cr_assert_eq(send_as(a, &req), 0);
    query(a);
    cr_assert_eq(a->ev.nsnap, 1);
    snap_t before = a->ev.snap[0];
    cr_expect_eq(before.state, RELAIS_CONV_REQUESTED);
    int escalations = read_int(a, &a->ev.escalations);
    stop_agent(a);
    cr_assert_eq(escalations, 0, "the deadline must still be ahead at the stop");

    a = start_agent(0, ADDR_ASSISTANT, &slow, "assistant.db", NULL);
    query(a);
    cr_assert_eq(a->ev.nsnap, 1, "the conversation came back from the state file");
    const snap_t *s = &a->ev.snap[0];
    cr_expect_arr_eq(s->id, before.id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_eq(s->state, RELAIS_CONV_REQUESTED);
    cr_expect_str_eq(s->counterpart, ADDR_NURSE);
    cr_expect_eq(s->deadline_ms, before.deadline_ms, "the same deadline, not a new window");

    /* The deadline was re-armed: the restarted agent escalates it. */
    AWAIT(a, ev->escalations == 1);
    AWAIT(c, ev->got[B(ESCALATION)] == 1);
    pthread_mutex_lock(&c->ev.mu);
    cr_expect_arr_eq(c->ev.escalation->conversation_id.data, before.id, RELAIS_MESSAGE_ID_LEN);
    pthread_mutex_unlock(&c->ev.mu);
    int64_t late = relais_now_ms() - before.deadline_ms;
    cr_expect_geq(late, -50, "escalated at the deadline, not before (%lld ms)", (long long)late);

    /* And its state machine still holds: the nurse may answer the request it finds. */
    tagent_t *n =
        start_agent(1, ADDR_NURSE, &defaults, NULL, &(tagent_t){.offer_on_request = true});
    s = await_state(a, RELAIS_CONV_OFFERED);
    cr_expect_not(s->escalated, "a new step starts without the old escalation");
    (void)n;
}

Test(conversations, a_discharge_plan_is_followed_item_by_item_and_a_late_item_escalated)
{
    tagent_t *c = start_agent(2, ADDR_COORDINATOR, NULL, NULL, NULL);
    tagent_t *a = start_agent(0, ADDR_ASSISTANT, &defaults, NULL, NULL);
    tagent_t *h = start_agent(1, ADDR_F1, &defaults, NULL, NULL);
    tagent_t *n =
        start_agent(3, ADDR_NURSE, &defaults, NULL, &(tagent_t){.complete_on_task = true});
    /* Heart failure: a nurse visit within the hour, a cardiology consultation due very
     * soon, which nobody will request. */
    job_t dn = {.body = B(DISCHARGE_NOTIFICATION),
                .to = {ADDR_ASSISTANT},
                .nto = 1,
                .due_ms = relais_now_ms() + 700,
                .receipts = true};
    cr_assert_eq(send_as(h, &dn), 0, "%s", dn.refusal);
    AWAIT(a, ev->got[B(DISCHARGE_NOTIFICATION)] == 1);

    /* The care task names the plan's item: the SDK ties them, and the item follows it. */
    job_t task = {
        .body = B(CARE_TASK_REQUEST), .to = {ADDR_NURSE}, .nto = 1, .item = "nurse-visit"};
    cr_assert_eq(send_as(a, &task), 0, "%s", task.refusal);
    AWAIT(n, ev->got[B(CARE_TASK_REQUEST)] == 1);
    const snap_t *s = await_snap(a, nurse_visit_completed, NULL, "nurse visit completed");
    cr_expect_eq(s->kind, RELAIS_CONV_DISCHARGE);
    cr_expect_eq(s->state, RELAIS_CONV_NOTIFIED, "the cardiology item is still open");

    /* The cardiology item passes its due date: escalated, naming it. */
    AWAIT(c, ev->got[B(ESCALATION)] == 1);
    pthread_mutex_lock(&c->ev.mu);
    cr_expect(strstr(c->ev.escalation->reason, "cardiology") != NULL, "%s",
              c->ev.escalation->reason);
    cr_expect_arr_eq(c->ev.escalation->conversation_id.data, dn.id, RELAIS_MESSAGE_ID_LEN);
    pthread_mutex_unlock(&c->ev.mu);
    query(a);
    cr_expect_eq(part_of(&a->ev.snap[0], "cardiology"), RELAIS_CONV_PENDING);
    size_t convs = a->ev.nsnap;

    /* Replaying the notification creates no new conversation and reaches no handler. */
    job_t replay = dn;
    cr_assert_eq(send_as(h, &replay), 0, "%s", replay.refusal);
    AWAIT(h, ev->processed == 2);
    query(a);
    cr_expect_eq(a->ev.nsnap, convs);
    cr_expect_eq(read_int(a, &a->ev.got[B(DISCHARGE_NOTIFICATION)]), 1);
    (void)n;
}
