/*
 * The acceptance scenarios, end to end: a real relaisd (CurveZMQ, the test
 * territory of tests/support/harness.c) and real SDK agents, each on its own thread with
 * its own loop (accept_agents.c), the requester tracking its conversations with
 * relais_conv_enable(). Every step is waited for as an event with a timeout; nothing
 * sleeps. Simulated time (RELAIS_SIM_CLOCK) makes six business hours pass in 0.6 s.
 *
 * Stand-ins, because the test territory lacks them: it has no physiotherapist pool, so the
 * pool referral goes to the nurse pool with two of its nurses as the providers; and it has
 * two establishments, so the third candidate facility of the preadmission is one of its
 * other addresses, which the test ACL lets act as one (as test_conversations.c does).
 */
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "accept_agents.h"

#define HOUR_MS (3600 * 1000LL)
#define ASSISTANT "staff:claire.martin@cabinet-dupont"
#define GP "rpps:10101234567"
#define COORDINATOR "staff:coordination@relais-test"
#define POOL "service:nurse@relais-test"
#define PROVIDER1 "rpps:10109876543"
#define PROVIDER2 "rpps:10100000001"
#define NURSE "rpps:10109876543"
#define FACILITY_REFUSES "finess:350000011"
#define FACILITY_ACCEPTS "finess:350000014"
#define FACILITY_WAITLISTS "rpps:10103456789"

static rt_broker_t broker;
static acc_agent_t agents[4];
static char state_dir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

/* Each test starts the broker itself: the simulated-clock test must set the environment
 * the broker inherits first. */
static void start_broker(void)
{
    rt_suite_start(&broker, NULL);
    snprintf(state_dir, sizeof(state_dir), "/tmp/relais-accept-XXXXXX");
    cr_assert_not_null(mkdtemp(state_dir));
}

static void teardown(void)
{
    for (size_t i = 0; i < sizeof(agents) / sizeof(agents[0]); i++) acc_agent_free(&agents[i]);
    if (broker.pid > 0)
        rt_suite_stop(&broker);
    else
        rt_broker_cleanup(&broker); /* a broker that failed to start leaves its directory */
    if (state_dir[0]) nftw(state_dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(acceptance, .fini = teardown, .timeout = 60);

/* Under the agent's lock: the first receipt with this status, or NULL. */
static const acc_receipt_t *receipt_with(const acc_events_t *ev, int status)
{
    for (size_t i = 0; i < ev->nreceipts; i++)
        if (ev->receipts[i].status == status) return &ev->receipts[i];
    return NULL;
}

static int receipts_with(acc_agent_t *t, int status)
{
    pthread_mutex_lock(&t->ev.mu);
    int n = 0;
    for (size_t i = 0; i < t->ev.nreceipts; i++) n += t->ev.receipts[i].status == status;
    pthread_mutex_unlock(&t->ev.mu);
    return n;
}

static bool ends_with(const char *s, const char *tail)
{
    size_t n = strlen(s), m = strlen(tail);
    return n >= m && strcmp(s + n - m, tail) == 0;
}

/* ---- 2. A referral offered to a pool ---------------------------------------------- */

Test(acceptance, a_pool_referral_is_claimed_by_one_member_and_its_loop_closes_after_a_no_show)
{
    start_broker();
    const relais_conv_options_t track = {.coordinator = COORDINATOR};
    acc_agent_t *a = &agents[0], *p1 = &agents[1], *p2 = &agents[2];
    p1->offer_on_request = p2->offer_on_request = true;
    p1->confirm_on_book = p2->confirm_on_book = true;
    /* Both members online; neither has an offer callback, so each SDK claims the offer. */
    acc_agent_start(p1, &broker, PROVIDER1, &track, NULL);
    acc_agent_start(p2, &broker, PROVIDER2, &track, NULL);
    acc_agent_start(a, &broker, ASSISTANT, &track, NULL);

    acc_msg_t req = {.body = B(APPOINTMENT_REQUEST),
                     .to = {POOL},
                     .nto = 1,
                     .ref = "req-knee-1",
                     .on_behalf_of = GP,
                     .dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER};
    cr_assert_eq(acc_send(a, &req), 0, "%s", req.refusal);

    /* The race: the requester learns who won; the loser is told the offer is gone. */
    ACC_AWAIT(a, receipt_with(ev, RELAIS__V1__RECEIPT__STATUS__CLAIMED) != NULL);
    pthread_mutex_lock(&a->ev.mu);
    acc_receipt_t claimed = *receipt_with(&a->ev, RELAIS__V1__RECEIPT__STATUS__CLAIMED);
    pthread_mutex_unlock(&a->ev.mu);
    cr_expect_str_eq(claimed.recipient, POOL);
    cr_expect_arr_eq(claimed.message_id, req.id, RELAIS_MESSAGE_ID_LEN);
    cr_assert(strcmp(claimed.claimed_by, PROVIDER1) == 0 ||
                  strcmp(claimed.claimed_by, PROVIDER2) == 0,
              "claimed by a member, not %s", claimed.claimed_by);
    acc_agent_t *winner = strcmp(claimed.claimed_by, PROVIDER1) == 0 ? p1 : p2;
    acc_agent_t *loser = winner == p1 ? p2 : p1;
    ACC_AWAIT(loser, ev->withdrawn == 1);
    ACC_AWAIT(winner, ev->got[B(APPOINTMENT_REQUEST)] == 1);

    /* The winner offers a slot, the assistant books it, the winner confirms. */
    acc_await_state(a, req.id, RELAIS_CONV_OFFERED);
    acc_msg_t book = {.body = B(APPOINTMENT_BOOK),
                      .to = {winner->address},
                      .nto = 1,
                      .conv = req.id,
                      .ref = "req-knee-1"};
    cr_assert_eq(acc_send(a, &book), 0, "%s", book.refusal);
    acc_await_state(a, req.id, RELAIS_CONV_CONFIRMED);
    acc_await_state(winner, req.id, RELAIS_CONV_CONFIRMED);

    /* The patient does not come. */
    acc_msg_t noshow = {.body = B(APPOINTMENT_OUTCOME),
                        .to = {ASSISTANT},
                        .nto = 1,
                        .conv = req.id,
                        .ref = "req-knee-1",
                        .sub = RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__NOSHOW};
    cr_assert_eq(acc_send(winner, &noshow), 0, "%s", noshow.refusal);
    acc_await_state(a, req.id, RELAIS_CONV_NOSHOW);
    char trail[192];
    acc_trail(a, req.id, trail, sizeof(trail));
    cr_expect(ends_with(trail, "offered>booked>confirmed>no-show"), "went %s", trail);
    acc_snap_t s;
    cr_assert_eq(acc_conv_get(a, req.id, &s), 0);
    cr_expect_str_eq(s.counterpart, winner->address, "the pool request is bound to its claimer");

    /* Rebooked with the same provider: a new request, straight to her. */
    acc_msg_t again = {.body = B(APPOINTMENT_REQUEST),
                       .to = {winner->address},
                       .nto = 1,
                       .ref = "req-knee-2",
                       .on_behalf_of = GP};
    cr_assert_eq(acc_send(a, &again), 0, "%s", again.refusal);
    acc_await_state(a, again.id, RELAIS_CONV_OFFERED);
    acc_msg_t rebook = book;
    rebook.conv = again.id;
    rebook.ref = "req-knee-2";
    cr_assert_eq(acc_send(a, &rebook), 0, "%s", rebook.refusal);
    acc_await_state(a, again.id, RELAIS_CONV_CONFIRMED);
    acc_await_state(winner, again.id, RELAIS_CONV_CONFIRMED);
    acc_msg_t done = {.body = B(APPOINTMENT_OUTCOME),
                      .to = {ASSISTANT},
                      .nto = 1,
                      .conv = again.id,
                      .ref = "req-knee-2",
                      .sub = RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED};
    cr_assert_eq(acc_send(winner, &done), 0, "%s", done.refusal);

    /* The outcome closes the loop. */
    acc_await_state(a, again.id, RELAIS_CONV_FULFILLED);
    acc_trail(a, again.id, trail, sizeof(trail));
    cr_expect_str_eq(trail, "requested>offered>booked>confirmed>fulfilled");
    cr_assert_eq(acc_conv_get(a, again.id, &s), 0);
    cr_expect_eq(s.state, RELAIS_CONV_FULFILLED);
    cr_expect_eq(s.deadline_ms, 0, "closed: nothing is awaited");
    cr_expect_str_eq(s.counterpart, winner->address);
    cr_assert_eq(acc_conv_get(a, req.id, &s), 0);
    cr_expect_eq(s.state, RELAIS_CONV_NOSHOW, "the first appointment stays a no-show");
    acc_await_state(winner, again.id, RELAIS_CONV_FULFILLED);

    /* Exactly one member's handler ever saw the pool's request. */
    cr_expect_eq(acc_read(winner, &winner->ev.got[B(APPOINTMENT_REQUEST)]), 2,
                 "the pool's request once, the rebooking once");
    cr_expect_eq(acc_read(loser, &loser->ev.got[B(APPOINTMENT_REQUEST)]), 0);
    cr_expect_eq(acc_read(loser, &loser->ev.withdrawn), 1);
    cr_expect_eq(acc_read(winner, &winner->ev.withdrawn), 0);
    cr_expect_eq(receipts_with(a, RELAIS__V1__RECEIPT__STATUS__CLAIMED), 1);
}

/* ---- 3. A preadmission to three facilities ---------------------------------------- */

Test(acceptance, a_preadmission_to_three_facilities_admits_the_chosen_one_and_cancels_the_other)
{
    start_broker();
    const relais_conv_options_t track = {.coordinator = COORDINATOR};
    acc_agent_t *a = &agents[0], *refuses = &agents[1], *accepts = &agents[2],
                *waitlists = &agents[3];
    refuses->decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED;
    accepts->decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED;
    accepts->admit_on_choice = true;
    waitlists->decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__WAITLISTED;
    acc_agent_start(refuses, &broker, FACILITY_REFUSES, &track, NULL);
    acc_agent_start(accepts, &broker, FACILITY_ACCEPTS, &track, NULL);
    acc_agent_start(waitlists, &broker, FACILITY_WAITLISTS, &track, NULL);
    acc_agent_start(a, &broker, ASSISTANT, &track, NULL);

    /* One conversation, one request per candidate facility. */
    acc_msg_t r1 = {.body = B(PREADMISSION_REQUEST),
                    .to = {FACILITY_REFUSES},
                    .nto = 1,
                    .ref = "pre-hip-1",
                    .on_behalf_of = GP};
    cr_assert_eq(acc_send(a, &r1), 0, "%s", r1.refusal);
    acc_msg_t r2 = r1, r3 = r1;
    r2.to[0] = FACILITY_ACCEPTS;
    r2.conv = r1.id;
    r3.to[0] = FACILITY_WAITLISTS;
    r3.conv = r1.id;
    cr_assert_eq(acc_send(a, &r2), 0, "%s", r2.refusal);
    cr_assert_eq(acc_send(a, &r3), 0, "%s", r3.refusal);

    /* Refused, accepted, waitlisted. */
    ACC_AWAIT(a, ev->got[B(PREADMISSION_DECISION)] == 3);
    acc_await_state(a, r1.id, RELAIS_CONV_ACCEPTED);
    acc_snap_t s;
    cr_assert_eq(acc_conv_get(a, r1.id, &s), 0);
    cr_assert_eq(s.nparts, 3, "one candidate per facility");
    cr_expect_eq(acc_part(&s, FACILITY_REFUSES), RELAIS_CONV_REFUSED);
    cr_expect_eq(acc_part(&s, FACILITY_ACCEPTS), RELAIS_CONV_ACCEPTED);
    cr_expect_eq(acc_part(&s, FACILITY_WAITLISTS), RELAIS_CONV_WAITLISTED);
    acc_agent_t *facilities[] = {refuses, accepts, waitlists};
    for (size_t i = 0; i < 3; i++) {
        acc_agent_t *f = facilities[i];
        pthread_mutex_lock(&f->ev.mu);
        cr_expect_eq(f->ev.got[B(PREADMISSION_REQUEST)], 1, "%s", f->address);
        cr_expect_arr_eq(f->ev.log[0].conv, r1.id, RELAIS_MESSAGE_ID_LEN, "%s: one conversation",
                         f->address);
        pthread_mutex_unlock(&f->ev.mu);
    }

    /* The accepted one is chosen; then a note to each of the other two, which arrives after
     * anything the choice made the SDK send them (FIFO per sender and recipient). */
    acc_msg_t choice = {.body = B(PREADMISSION_CHOICE),
                        .to = {FACILITY_ACCEPTS},
                        .nto = 1,
                        .conv = r1.id,
                        .ref = "pre-hip-1"};
    cr_assert_eq(acc_send(a, &choice), 0, "%s", choice.refusal);
    acc_msg_t after_refused = {
        .body = B(NOTE), .to = {FACILITY_REFUSES}, .nto = 1, .text = "end of preadmission"};
    acc_msg_t after_chosen = after_refused;
    after_chosen.to[0] = FACILITY_ACCEPTS;
    cr_assert_eq(acc_send(a, &after_refused), 0);
    cr_assert_eq(acc_send(a, &after_chosen), 0);

    /* The waitlisted facility receives the cancel, in the preadmission's conversation. */
    ACC_AWAIT(waitlists, ev->got[B(PREADMISSION_CANCEL)] == 1);
    acc_delivery_t cancel = {0};
    pthread_mutex_lock(&waitlists->ev.mu);
    for (size_t i = 0; i < waitlists->ev.nlog && cancel.body == 0; i++)
        if (waitlists->ev.log[i].body == B(PREADMISSION_CANCEL)) cancel = waitlists->ev.log[i];
    pthread_mutex_unlock(&waitlists->ev.mu);
    cr_assert_eq(cancel.body, B(PREADMISSION_CANCEL));
    cr_expect_str_eq(cancel.sender, ASSISTANT);
    cr_expect_str_eq(cancel.ref, "pre-hip-1");
    cr_expect_arr_eq(cancel.conv, r1.id, RELAIS_MESSAGE_ID_LEN);
    cr_expect(strstr(cancel.reason, "another facility was chosen") != NULL, "%s", cancel.reason);
    acc_await_state(waitlists, r1.id, RELAIS_CONV_CANCELLED);

    /* The chosen one admits the patient: the preadmission is closed. */
    ACC_AWAIT(a, ev->got[B(ADMISSION_NOTICE)] == 1);
    acc_await_state(a, r1.id, RELAIS_CONV_ADMITTED);
    cr_assert_eq(acc_conv_get(a, r1.id, &s), 0);
    cr_expect_str_eq(s.counterpart, FACILITY_ACCEPTS);
    cr_expect_eq(acc_part(&s, FACILITY_REFUSES), RELAIS_CONV_REFUSED);
    cr_expect_eq(acc_part(&s, FACILITY_ACCEPTS), RELAIS_CONV_ADMITTED);
    cr_expect_eq(acc_part(&s, FACILITY_WAITLISTS), RELAIS_CONV_CANCELLED);
    cr_expect_eq(s.deadline_ms, 0, "closed: nothing is awaited");
    acc_await_state(accepts, r1.id, RELAIS_CONV_ADMITTED);

    /* Neither the chosen facility nor the one that refused was cancelled. */
    ACC_AWAIT(refuses, ev->got[B(NOTE)] == 1);
    ACC_AWAIT(accepts, ev->got[B(NOTE)] == 1);
    cr_expect_eq(acc_read(refuses, &refuses->ev.got[B(PREADMISSION_CANCEL)]), 0);
    cr_expect_eq(acc_read(accepts, &accepts->ev.got[B(PREADMISSION_CANCEL)]), 0);
    cr_expect_eq(acc_read(waitlists, &waitlists->ev.got[B(PREADMISSION_CANCEL)]), 1);
    cr_expect_eq(acc_read(accepts, &accepts->ev.got[B(PREADMISSION_CHOICE)]), 1);
    cr_assert_eq(acc_conv_get(refuses, r1.id, &s), 0);
    cr_expect_eq(s.state, RELAIS_CONV_REFUSED);
}

/* ---- 4. A nurse offline for six simulated hours ----------------------------------- */

#define SIM_FACTOR 36000
#define SIM_ORIGIN_MS 1741590000000LL /* Monday 10 March 2025, 08:00 in Paris */
#define OFFLINE_REQUESTS 6

/* Sends one care task an hour of business time from the assistant's loop, then marks the
 * end of the sixth hour. The loop's timers count whole real milliseconds from a cached loop
 * time, so one may fire a little before the business hour is over: it then waits for the
 * rest, as the SDK's deadlines do. Fields the test reads are under the assistant's lock. */
typedef struct pacer {
    acc_agent_t *a;
    int sent;
    int64_t next_at_ms; /* business time of the next step */
    int64_t started_ms, sent_at_ms[OFFLINE_REQUESTS], finished_ms;
    acc_msg_t msgs[OFFLINE_REQUESTS];
    char refs[OFFLINE_REQUESTS][24];
    int rc;
    bool done;
} pacer_t;

static void pace(relais_agent_t *agent, void *ud)
{
    pacer_t *p = ud;
    int64_t now = relais_now_ms();
    if (p->sent > 0 && now < p->next_at_ms) {
        int rc = relais_agent_timer(
            agent, (uint64_t)relais_clock_real_delay_ms(p->next_at_ms - now), pace, p, NULL);
        if (rc == 0) return;
        pthread_mutex_lock(&p->a->ev.mu);
        p->rc = rc;
        p->done = true;
        pthread_cond_broadcast(&p->a->ev.cv);
        pthread_mutex_unlock(&p->a->ev.mu);
        return;
    }
    /* Only this loop writes sent. The send runs unlocked: tracking calls the assistant's
     * hooks, which take the lock. */
    int i = p->sent;
    int rc = 0;
    if (i < OFFLINE_REQUESTS) {
        snprintf(p->refs[i], sizeof(p->refs[i]), "task-%d", i + 1);
        p->msgs[i] = (acc_msg_t){.body = B(CARE_TASK_REQUEST),
                                 .to = {NURSE},
                                 .nto = 1,
                                 .ref = p->refs[i],
                                 .on_behalf_of = GP};
        acc_send_on_loop(agent, &p->msgs[i]);
        rc = p->msgs[i].rc;
        p->next_at_ms = now + HOUR_MS;
        if (rc == 0)
            rc = relais_agent_timer(agent, (uint64_t)relais_clock_real_delay_ms(HOUR_MS), pace, p,
                                    NULL);
    }
    pthread_mutex_lock(&p->a->ev.mu);
    if (i == 0) p->started_ms = now;
    if (i < OFFLINE_REQUESTS) p->sent_at_ms[p->sent++] = now;
    if (rc != 0) p->rc = rc;
    if (i == OFFLINE_REQUESTS || rc != 0) {
        p->finished_ms = now;
        p->done = true;
    }
    pthread_cond_broadcast(&p->a->ev.cv);
    pthread_mutex_unlock(&p->a->ev.mu);
}

Test(acceptance, a_nurse_offline_for_six_simulated_hours_gets_every_request_once_and_in_order)
{
    /* Business time runs 36,000 times faster than the wall clock, for this process (set
     * before its first clock call) and for the broker, which inherits the environment (the
     * harness then marks the test territory as not a production one). */
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    long long real_ms = (long long)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
    char sim[96];
    snprintf(sim, sizeof(sim), "%d,%lld,%lld", SIM_FACTOR, real_ms, SIM_ORIGIN_MS);
    cr_assert_eq(setenv("RELAIS_SIM_CLOCK", sim, 1), 0);
    start_broker();
    cr_assert_eq(relais_clock_init(), 0);
    cr_assert_eq(relais_clock_factor(), (double)SIM_FACTOR);

    /* Windows long enough that no deadline of the scenario fires, even at this speed. */
    const relais_conv_options_t track = {
        .coordinator = COORDINATOR, .reminder_fraction = -1, .answer_ms = 30 * 24 * HOUR_MS};
    char nurse_state[128];
    snprintf(nurse_state, sizeof(nurse_state), "%s/nurse.db", state_dir);
    acc_agent_t *a = &agents[0], *nurse = &agents[1], *back = &agents[2];
    nurse->complete_on_task = back->complete_on_task = true;
    acc_agent_start(nurse, &broker, NURSE, &track, nurse_state);
    acc_agent_start(a, &broker, ASSISTANT, &track, NULL);

    /* Before her absence she handles one request, which her state file remembers. */
    acc_msg_t first = {
        .body = B(CARE_TASK_REQUEST), .to = {NURSE}, .nto = 1, .ref = "task-0", .on_behalf_of = GP};
    cr_assert_eq(acc_send(a, &first), 0, "%s", first.refusal);
    acc_await_state(a, first.id, RELAIS_CONV_COMPLETED);
    acc_agent_stop(nurse);

    /* Six business hours offline; a request at the start of each. */
    pacer_t p = {.a = a};
    acc_call(a, pace, &p);
    ACC_AWAIT(a, p.done);
    cr_assert_eq(p.rc, 0, "every request was queued");
    cr_assert_eq(p.sent, OFFLINE_REQUESTS);
    cr_expect_geq(p.finished_ms - p.started_ms, 6 * HOUR_MS, "six business hours passed (%lld ms)",
                  (long long)(p.finished_ms - p.started_ms));
    for (int i = 1; i < OFFLINE_REQUESTS; i++)
        cr_expect_geq(p.sent_at_ms[i] - p.sent_at_ms[i - 1], HOUR_MS, "request %d an hour later",
                      i + 1);
    for (int i = 0; i < OFFLINE_REQUESTS; i++) {
        acc_snap_t s;
        cr_assert_eq(acc_conv_get(a, p.msgs[i].id, &s), 0, "task-%d is tracked", i + 1);
        cr_expect_eq(s.state, RELAIS_CONV_REQUESTED, "task-%d waits for her, not %s", i + 1,
                     relais_conv_state_name(s.state));
    }

    /* She comes back with the same state file: every request, in order, once. */
    acc_agent_start(back, &broker, NURSE, &track, nurse_state);
    ACC_AWAIT(back, ev->got[B(CARE_TASK_REQUEST)] == OFFLINE_REQUESTS);
    for (int i = 0; i < OFFLINE_REQUESTS; i++)
        acc_await_state(a, p.msgs[i].id, RELAIS_CONV_COMPLETED);
    pthread_mutex_lock(&a->ev.mu);
    int completed = acc_count_locked(a, RELAIS_CONV_COMPLETED);
    pthread_mutex_unlock(&a->ev.mu);
    cr_expect_eq(completed, OFFLINE_REQUESTS + 1, "every request of the assistant is answered");

    pthread_mutex_lock(&back->ev.mu);
    cr_expect_eq(back->ev.nlog, (size_t)OFFLINE_REQUESTS, "nothing more, nothing again");
    cr_expect_eq(back->ev.got[B(CARE_TASK_REQUEST)], OFFLINE_REQUESTS);
    for (size_t i = 0; i < back->ev.nlog && i < OFFLINE_REQUESTS; i++) {
        cr_expect_str_eq(back->ev.log[i].ref, p.refs[i], "delivery %zu in the order sent", i + 1);
        cr_expect_arr_eq(back->ev.log[i].conv, p.msgs[i].id, RELAIS_MESSAGE_ID_LEN);
        cr_expect_geq(back->ev.log[i].at_ms - p.started_ms, 6 * HOUR_MS,
                      "delivered after her absence");
    }
    pthread_mutex_unlock(&back->ev.mu);
}

/* ---- 5. A request nobody can take ------------------------------------------------- */

Test(acceptance, an_offer_no_member_claims_is_escalated_to_the_coordinator_before_its_deadline)
{
    start_broker();
    const relais_conv_options_t track = {
        .coordinator = COORDINATOR, .reminder_fraction = -1, .answer_ms = HOUR_MS};
    acc_agent_t *a = &agents[0], *n1 = &agents[1], *n2 = &agents[2], *coord = &agents[3];
    n1->decline_offers = n2->decline_offers = true;
    n1->offer_on_request = n2->offer_on_request = true; /* would answer, had they claimed */
    acc_agent_start(coord, &broker, COORDINATOR, NULL, NULL);
    acc_agent_start(n1, &broker, PROVIDER1, &track, NULL);
    acc_agent_start(n2, &broker, PROVIDER2, &track, NULL);
    acc_agent_start(a, &broker, ASSISTANT, &track, NULL);

    /* The offer lapses long before the hour the request has to be answered in. */
    acc_msg_t req = {.body = B(APPOINTMENT_REQUEST),
                     .to = {POOL},
                     .nto = 1,
                     .ref = "req-dressing-1",
                     .on_behalf_of = GP,
                     .dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER,
                     .expires_at_ms = relais_now_ms() + 700};
    cr_assert_eq(acc_send(a, &req), 0, "%s", req.refusal);
    acc_snap_t s;
    cr_assert_eq(acc_conv_get(a, req.id, &s), 0);
    int64_t deadline = s.deadline_ms;
    cr_assert_gt(deadline, req.expires_at_ms, "the business deadline lies after the expiry");

    ACC_AWAIT(n1, ev->offers == 1);
    ACC_AWAIT(n2, ev->offers == 1);
    ACC_AWAIT(a, receipt_with(ev, RELAIS__V1__RECEIPT__STATUS__UNCLAIMED) != NULL);
    pthread_mutex_lock(&a->ev.mu);
    acc_receipt_t unclaimed = *receipt_with(&a->ev, RELAIS__V1__RECEIPT__STATUS__UNCLAIMED);
    pthread_mutex_unlock(&a->ev.mu);
    cr_expect_str_eq(unclaimed.recipient, POOL);
    cr_expect_arr_eq(unclaimed.message_id, req.id, RELAIS_MESSAGE_ID_LEN);

    /* Escalated at once, not at the deadline. */
    ACC_AWAIT(coord, ev->got[B(ESCALATION)] == 1);
    pthread_mutex_lock(&coord->ev.mu);
    Relais__V1__Escalation *e = coord->ev.escalation;
    coord->ev.escalation = NULL; /* ours now */
    int64_t arrived = coord->ev.escalation_at_ms;
    pthread_mutex_unlock(&coord->ev.mu);
    cr_assert_not_null(e);
    cr_expect_eq(e->conversation_id.len, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(e->conversation_id.data, req.id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(e->original_message_id.data, req.id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_str_eq(e->original_body, "appointment_request");
    cr_expect_lt(arrived, deadline, "escalated before the request's deadline");
    cr_expect_gt(e->deadline_ms, arrived, "the escalation names a deadline still ahead (%lld)",
                 (long long)e->deadline_ms);
    cr_expect_eq(e->deadline_ms, deadline, "the request's own deadline");
    cr_expect(strstr(e->reason, "undeliverable") != NULL, "%s", e->reason);
    relais__v1__escalation__free_unpacked(e, NULL);

    ACC_AWAIT(a, ev->escalations == 1);
    cr_expect_eq(acc_read(a, &a->ev.esc_rc), 0, "the escalation was sent");
    cr_assert_eq(acc_conv_get(a, req.id, &s), 0);
    cr_expect_eq(s.state, RELAIS_CONV_UNDELIVERABLE);
    cr_expect(s.escalated);
    cr_expect_eq(acc_read(n1, &n1->ev.got[B(APPOINTMENT_REQUEST)]), 0, "never claimed");
    cr_expect_eq(acc_read(n2, &n2->ev.got[B(APPOINTMENT_REQUEST)]), 0, "never claimed");
    cr_expect_eq(acc_read(n1, &n1->ev.offers), 1);
    cr_expect_eq(acc_read(n2, &n2->ev.offers), 1);
    cr_expect_eq(acc_read(coord, &coord->ev.got[B(ESCALATION)]), 1, "escalated once");
}
