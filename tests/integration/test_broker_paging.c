/*
 * Backlogs larger than what relaisd keeps in memory (MAILBOX_PAGE = 1024 deliveries per
 * priority and mailbox): they live in the store and are paged in as the recipient works
 * through them. These tests prove that paging keeps every promise of the queue — nothing
 * lost, nothing twice, FIFO within a priority, URGENT first — across pages, lost sessions,
 * expiry of messages that were never in memory, and restarts.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define T 10000
#define A "staff:claire.martin@cabinet-dupont"
#define B "rpps:10101234567"

static rt_broker_t broker;
static const char *args[] = {"--heartbeat-ms", "1000", "--durability", "os", NULL};

static void start(void)
{
    rt_suite_start(&broker, args);
}

static void stop(void)
{
    rt_suite_stop(&broker);
}

TestSuite(paging, .init = start, .fini = stop, .timeout = 120);

/* Submits n notes "<prefix><i>" to `to`, 200 at a time in flight, all must be accepted.
 * urgent_every > 0 makes every urgent_every-th message URGENT. */
static void submit_many(rt_client_t *c, const char *to, const char *prefix, int from, int n,
                        int urgent_every, int64_t expires_at_ms)
{
    int sent = from, accepted = 0;
    while (accepted < n) {
        while (sent < from + n && sent - from - accepted < 200) {
            rt_env_t e;
            char text[32];
            snprintf(text, sizeof(text), "%s%d", prefix, sent);
            rt_env_note(&e, to, text);
            if (urgent_every > 0 && sent % urgent_every == 0)
                e.env.priority = RELAIS__V1__ENVELOPE__PRIORITY__URGENT;
            e.env.expires_at_ms = expires_at_ms;
            cr_assert_eq(rt_client_submit_nowait(c, &e), 0);
            sent++;
        }
        Relais__V1__Frame *f;
        cr_assert_eq(rt_client_expect(c, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &f), 0,
                     "accepted %d of %d", accepted, n);
        cr_assert_not(f->accepted->duplicate);
        relais_frame_free(&f);
        accepted++;
    }
}

/* Receives the next delivery and returns its note's number after prefix; acks it unless
 * ack is false. */
static int next_number(rt_client_t *c, const char *prefix, bool ack, unsigned *attempt)
{
    Relais__V1__Frame *d;
    cr_assert_eq(rt_client_expect(c, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0,
                 "a delivery is due");
    const char *text = d->deliver->envelope->note->text;
    cr_assert(strncmp(text, prefix, strlen(prefix)) == 0, "unexpected note %s", text);
    int n = atoi(text + strlen(prefix));
    if (attempt) *attempt = d->deliver->attempt;
    if (ack)
        rt_client_ack(c, d->deliver->envelope->message_id.data, RELAIS__V1__ACK__OUTCOME__PROCESSED,
                      NULL);
    relais_frame_free(&d);
    return n;
}

Test(paging, a_backlog_of_several_pages_arrives_whole_urgent_first_then_in_order)
{
    enum { N = 3000, URGENT_EVERY = 7 };
    rt_client_t a = rt_session(&broker, A, 8);
    submit_many(&a, B, "p", 0, N, URGENT_EVERY, 0);
    rt_client_t b = rt_session(&broker, B, 64);
    int last_urgent = -1, last_routine = -1, urgent = 0;
    for (int i = 0; i < N; i++) {
        int n = next_number(&b, "p", true, NULL);
        if (n % URGENT_EVERY == 0) {
            cr_assert_gt(n, last_urgent, "urgent FIFO: %d after %d", n, last_urgent);
            cr_assert_eq(last_routine, -1, "urgent %d after routine %d", n, last_routine);
            last_urgent = n;
            urgent++;
        } else {
            cr_assert_gt(n, last_routine, "routine FIFO: %d after %d", n, last_routine);
            last_routine = n;
        }
    }
    cr_expect_eq(urgent, (N + URGENT_EVERY - 1) / URGENT_EVERY);
    cr_expect_eq(last_routine, N - 1);
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(paging, a_session_lost_in_the_middle_of_a_backlog_resumes_where_it_stopped)
{
    enum { N = 2500, FIRST = 1500, WINDOW = 32 };
    rt_client_t a = rt_session(&broker, A, 8);
    submit_many(&a, B, "q", 0, N, 0, 0);
    rt_client_t b = rt_session(&broker, B, WINDOW);
    for (int i = 0; i < FIRST; i++) cr_assert_eq(next_number(&b, "q", true, NULL), i);
    /* Take a window's worth without acknowledging, then vanish. */
    for (int i = 0; i < WINDOW; i++) cr_assert_eq(next_number(&b, "q", false, NULL), FIRST + i);
    rt_client_close(&b);
    rt_client_t b2 = rt_session(&broker, B, WINDOW); /* replaces the vanished session */
    for (int i = FIRST; i < N; i++) {
        unsigned attempt;
        cr_assert_eq(next_number(&b2, "q", true, &attempt), i, "in order after the loss");
        cr_assert_eq(attempt, i < FIRST + WINDOW ? 2u : 1u, "attempt of %d is %u", i, attempt);
    }
    Relais__V1__Frame *none;
    cr_expect_neq(rt_client_expect(&b2, RELAIS__V1__FRAME__KIND_DELIVER, 300, &none), 0,
                  "nothing twice");
    rt_client_close(&a);
    rt_client_close(&b2);
}

Test(paging, messages_that_expire_on_disk_are_reported_and_never_delivered)
{
    enum { N = 1500 };
    rt_client_t a = rt_session(&broker, A, 8);
    submit_many(&a, B, "x", 0, N, 0, relais_now_ms() + 1500);
    int expired = 0;
    while (expired < N) {
        Relais__V1__Frame *r;
        cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0,
                     "receipt %d of %d", expired, N);
        cr_assert_eq(r->receipt->status, RELAIS__V1__RECEIPT__STATUS__EXPIRED);
        rt_client_ack_receipt(&a, r->receipt->receipt_id);
        relais_frame_free(&r);
        expired++;
    }
    rt_client_t b = rt_session(&broker, B, 64);
    Relais__V1__Frame *none;
    cr_expect_neq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, 500, &none), 0,
                  "an expired message is never delivered");
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(paging, an_online_consumer_behind_by_more_than_a_page_still_gets_fifo)
{
    enum { N = 2600 };
    rt_client_t b = rt_session(&broker, B, 16);
    rt_client_t a = rt_session(&broker, A, 8);
    /* The consumer is online but does not read while the producer runs ahead. */
    submit_many(&a, B, "o", 0, N, 0, 0);
    for (int i = 0; i < N; i++) cr_assert_eq(next_number(&b, "o", true, NULL), i);
    /* The queue drained: new messages go straight through again. */
    submit_many(&a, B, "o", N, 10, 0, 0);
    for (int i = N; i < N + 10; i++) cr_assert_eq(next_number(&b, "o", true, NULL), i);
    rt_client_close(&a);
    rt_client_close(&b);
}

Test(paging, a_restart_with_a_large_backlog_serves_it_whole)
{
    enum { N = 2500 };
    rt_client_t a = rt_session(&broker, A, 8);
    submit_many(&a, B, "r", 0, N, 0, 0);
    rt_client_close(&a);
    rt_broker_kill9(&broker);
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0);
    cr_assert_eq(rt_broker_wait_log(&broker, "recovered pending=2500", T), 0,
                 "recovery counts the backlog");
    rt_client_t b = rt_session(&broker, B, 64);
    for (int i = 0; i < N; i++) cr_assert_eq(next_number(&b, "r", true, NULL), i);
    rt_client_close(&b);
}
