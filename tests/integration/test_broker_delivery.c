/*
 * relaisd's delivery semantics over real sockets: routing with the sender stamped,
 * mailboxes for offline agents, receipts resent until acknowledged, refusals, duplicates,
 * credit windows, priorities, redelivery after a lost or replaced session, expiry.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define T 3000
#define A "staff:claire.martin@cabinet-dupont"
#define B "rpps:10101234567"
#define C "rpps:10109876543"

static rt_broker_t broker;

static void start(void)
{
    static const char *args[] = {"--heartbeat-ms", "200", NULL};
    rt_suite_start(&broker, args);
}

static void stop(void)
{
    rt_suite_stop(&broker);
}

TestSuite(delivery, .init = start, .fini = stop, .timeout = 60);

static Relais__V1__Frame *expect_receipt(rt_client_t *c, int status)
{
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(c, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0,
                 "expected a receipt %d", status);
    cr_assert_eq(r->receipt->status, status, "receipt status %d, wanted %d", r->receipt->status,
                 status);
    cr_assert_neq(r->receipt->receipt_id, 0);
    return r;
}

static void ack(rt_client_t *c, Relais__V1__Frame *d, int outcome)
{
    cr_assert_eq(rt_client_ack(c, d->deliver->envelope->message_id.data, outcome, "because"), 0);
}

Test(delivery, a_message_reaches_its_online_recipient_with_the_sender_stamped)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "bonjour");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "bonjour", T);
    cr_expect_str_eq(d->deliver->envelope->sender, A);
    cr_expect_eq(d->deliver->attempt, 1);
    cr_expect_not(d->deliver->offered);
    cr_expect_gt(d->deliver->envelope->accepted_at_ms, 0);
    cr_expect_gt(d->deliver->envelope->expires_at_ms, d->deliver->envelope->accepted_at_ms,
                 "a default deadline is stamped");
    cr_expect_eq(memcmp(d->deliver->envelope->message_id.data, e.id, 16), 0);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, an_offline_recipient_gets_its_whole_backlog_in_order_on_connect)
{
    rt_client_t a = rt_session(&broker, A, 8);
    enum { N = 50 };
    for (int i = 0; i < N; i++) {
        rt_env_t e;
        char text[16];
        snprintf(text, sizeof(text), "n%d", i);
        rt_env_note(&e, B, text);
        cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    }
    rt_client_t b = rt_session(&broker, B, 8);
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof(text), "n%d", i);
        Relais__V1__Frame *d = rt_expect_note(&b, text, T);
        ack(&b, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
        relais_frame_free(&d);
    }
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, one_message_to_three_recipients_reaches_each_once)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8),
                c = rt_session(&broker, C, 8);
    rt_env_t e;
    rt_env_note(&e, B, "discharge");
    e.to[1] = C;
    e.to[2] = "rpps:10100000001"; /* offline: waits in its mailbox */
    e.env.n_to = 3;
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d1 = rt_expect_note(&b, "discharge", T);
    Relais__V1__Frame *d2 = rt_expect_note(&c, "discharge", T);
    relais_frame_free(&d1);
    relais_frame_free(&d2);
    rt_client_t x = rt_session(&broker, "rpps:10100000001", 8);
    Relais__V1__Frame *d3 = rt_expect_note(&x, "discharge", T);
    relais_frame_free(&d3);
    rt_client_close(&a);
    rt_client_close(&b);
    rt_client_close(&c);
    rt_client_close(&x);
}

Test(delivery, receipts_reach_the_sender_and_are_resent_until_acknowledged)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "with receipts");
    Relais__V1__Receipt__Status wanted[] = {RELAIS__V1__RECEIPT__STATUS__DELIVERED,
                                            RELAIS__V1__RECEIPT__STATUS__PROCESSED};
    e.env.receipts = wanted;
    e.env.n_receipts = 2;
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "with receipts", T);
    Relais__V1__Frame *r1 = expect_receipt(&a, RELAIS__V1__RECEIPT__STATUS__DELIVERED);
    cr_expect_str_eq(r1->receipt->recipient, B);
    cr_expect_eq(memcmp(r1->receipt->message_id.data, e.id, 16), 0);
    ack(&b, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    relais_frame_free(&d);
    Relais__V1__Frame *r2 = expect_receipt(&a, RELAIS__V1__RECEIPT__STATUS__PROCESSED);
    uint64_t processed_id = r2->receipt->receipt_id;
    /* Acknowledge only DELIVERED; PROCESSED must come again on the next session. */
    cr_assert_eq(rt_client_ack_receipt(&a, r1->receipt->receipt_id), 0);
    relais_frame_free(&r1);
    relais_frame_free(&r2);
    rt_client_close(&a);

    rt_client_t a2 = rt_session(&broker, A, 8);
    Relais__V1__Frame *again = expect_receipt(&a2, RELAIS__V1__RECEIPT__STATUS__PROCESSED);
    cr_expect_eq(again->receipt->receipt_id, processed_id);
    cr_assert_eq(rt_client_ack_receipt(&a2, processed_id), 0);
    relais_frame_free(&again);
    rt_client_close(&a2);

    rt_client_t a3 = rt_session(&broker, A, 8);
    Relais__V1__Frame *none;
    cr_expect_neq(rt_client_expect(&a3, RELAIS__V1__FRAME__KIND_RECEIPT, 500, &none), 0,
                  "an acknowledged receipt is not sent again");
    rt_client_close(&a3);
    rt_client_close(&b);
}

Test(delivery, a_refusal_is_always_reported_to_the_sender_with_its_reason)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "refuse me");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "refuse me", T);
    ack(&b, d, RELAIS__V1__ACK__OUTCOME__REFUSED);
    relais_frame_free(&d);
    Relais__V1__Frame *r = expect_receipt(&a, RELAIS__V1__RECEIPT__STATUS__REFUSED);
    cr_expect_str_eq(r->receipt->reason, "because");
    relais_frame_free(&r);
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, a_duplicate_submission_is_accepted_as_such_and_not_delivered_again)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "once");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    cr_assert_eq(rt_client_submit_nowait(&a, &e), 0);
    Relais__V1__Frame *acc;
    cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
    cr_expect(acc->accepted->duplicate, "second Accepted says duplicate");
    relais_frame_free(&acc);
    Relais__V1__Frame *d = rt_expect_note(&b, "once", T);
    ack(&b, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    relais_frame_free(&d);
    /* A marker message proves the duplicate is not queued behind the first. */
    rt_env_note(&e, B, "marker");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    d = rt_expect_note(&b, "marker", T);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, copies_of_one_message_in_the_same_batch_are_stored_and_delivered_once)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "twice at once");
    /* Back to back, no wait: both copies land in one drain, hence one commit. */
    cr_assert_eq(rt_client_submit_nowait(&a, &e), 0);
    cr_assert_eq(rt_client_submit_nowait(&a, &e), 0);
    int fresh = 0, dups = 0;
    for (int i = 0; i < 2; i++) {
        Relais__V1__Frame *acc;
        cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
        if (acc->accepted->duplicate)
            dups++;
        else {
            cr_expect_eq(dups, 0, "the original's Accepted comes first");
            fresh++;
        }
        relais_frame_free(&acc);
    }
    cr_expect_eq(fresh, 1);
    cr_expect_eq(dups, 1);
    Relais__V1__Frame *d = rt_expect_note(&b, "twice at once", T);
    ack(&b, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    relais_frame_free(&d);
    rt_env_note(&e, B, "marker");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    d = rt_expect_note(&b, "marker", T);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, the_credit_window_bounds_unacknowledged_deliveries)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 2);
    for (int i = 0; i < 4; i++) {
        rt_env_t e;
        char text[8];
        snprintf(text, sizeof(text), "c%d", i);
        rt_env_note(&e, B, text);
        cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    }
    Relais__V1__Frame *d0 = rt_expect_note(&b, "c0", T);
    Relais__V1__Frame *d1 = rt_expect_note(&b, "c1", T);
    Relais__V1__Frame *more;
    cr_expect_neq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, 400, &more), 0,
                  "no third delivery while two are unacknowledged");
    ack(&b, d0, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    Relais__V1__Frame *d2 = rt_expect_note(&b, "c2", T);
    /* Credit widens the window. */
    Relais__V1__Credit cr = RELAIS__V1__CREDIT__INIT;
    cr.credit = 1;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_CREDIT;
    f.credit = &cr;
    cr_assert_eq(rt_client_send(&b, &f), 0);
    Relais__V1__Frame *d3 = rt_expect_note(&b, "c3", T);
    relais_frame_free(&d0);
    relais_frame_free(&d1);
    relais_frame_free(&d2);
    relais_frame_free(&d3);
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, urgent_messages_overtake_routine_ones)
{
    rt_client_t a = rt_session(&broker, A, 8);
    const char *texts[] = {"routine 1", "routine 2", "urgent"};
    for (int i = 0; i < 3; i++) {
        rt_env_t e;
        rt_env_note(&e, B, texts[i]);
        if (i == 2) e.env.priority = RELAIS__V1__ENVELOPE__PRIORITY__URGENT;
        cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    }
    rt_client_t b = rt_session(&broker, B, 1);
    const char *order[] = {"urgent", "routine 1", "routine 2"};
    for (int i = 0; i < 3; i++) {
        Relais__V1__Frame *d = rt_expect_note(&b, order[i], T);
        ack(&b, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
        relais_frame_free(&d);
    }
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, a_new_session_for_the_same_address_gets_unacknowledged_deliveries_again)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "unacked");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "unacked", T);
    cr_expect_eq(d->deliver->attempt, 1);
    relais_frame_free(&d);
    rt_client_t b2 = rt_session(&broker, B, 8); /* replaces b, which never acknowledged */
    d = rt_expect_note(&b2, "unacked", T);
    cr_expect_eq(d->deliver->attempt, 2);
    ack(&b2, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    relais_frame_free(&d);
    Relais__V1__Frame *err;
    cr_assert_eq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_ERROR, T, &err), 0,
                 "the replaced session is told");
    cr_expect(err->error->fatal);
    relais_frame_free(&err);
    rt_client_close(&a);
    rt_client_close(&b);
    rt_client_close(&b2);
}

Test(delivery, a_silent_session_dies_and_its_deliveries_return_to_the_queue)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "orphan");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "orphan", T);
    relais_frame_free(&d);
    /* b goes silent: no Ping, no Ack. The broker (heartbeat 200 ms) must reap it. */
    cr_assert_eq(rt_broker_wait_log(&broker, "silent for 3 heartbeat intervals", 5000), 0,
                 "the silent session is closed");
    rt_client_t b2 = rt_session(&broker, B, 8);
    d = rt_expect_note(&b2, "orphan", T);
    cr_expect_eq(d->deliver->attempt, 2);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&b);
    rt_client_close(&b2);
}

Test(delivery, an_undelivered_message_expires_and_its_sender_is_told)
{
    rt_client_t a = rt_session(&broker, A, 8);
    rt_env_t e;
    rt_env_note(&e, B, "too slow");
    e.env.expires_at_ms = relais_now_ms() + 300;
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *r = expect_receipt(&a, RELAIS__V1__RECEIPT__STATUS__EXPIRED);
    cr_expect_str_eq(r->receipt->recipient, B);
    relais_frame_free(&r);
    rt_client_t b = rt_session(&broker, B, 8);
    Relais__V1__Frame *none;
    cr_expect_neq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, 400, &none), 0,
                  "an expired message is not delivered");
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(delivery, retry_later_brings_the_message_back_with_the_next_attempt)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "busy");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "busy", T);
    ack(&b, d, RELAIS__V1__ACK__OUTCOME__RETRY_LATER);
    relais_frame_free(&d);
    d = rt_expect_note(&b, "busy", T);
    cr_expect_eq(d->deliver->attempt, 2);
    ack(&b, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&b);
}

static void start_short_ack_timeout(void)
{
    static const char *args[] = {"--heartbeat-ms", "200", "--ack-timeout-ms", "300", NULL};
    rt_suite_start(&broker, args);
}

TestSuite(ack_timeout, .init = start_short_ack_timeout, .fini = stop, .timeout = 60);

Test(ack_timeout, a_delivery_left_unacknowledged_is_sent_again_to_the_same_session)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "are you there");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "are you there", T);
    cr_expect_eq(d->deliver->attempt, 1);
    relais_frame_free(&d);
    /* No ack: b keeps its session alive (expect pings) and gets it again. */
    d = rt_expect_note(&b, "are you there", T);
    cr_expect_eq(d->deliver->attempt, 2);
    ack(&b, d, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    relais_frame_free(&d);
    Relais__V1__Frame *none;
    cr_expect_neq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, 700, &none), 0,
                  "an acknowledged delivery is not sent a third time");
    rt_client_close(&a);
    rt_client_close(&b);
}
