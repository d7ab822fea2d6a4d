/*
 * Service pools, ANYCAST: a message to service:nurse@relais-test goes to one nurse of the
 * territory — the least loaded one online —, passes to the next when a nurse refuses it or
 * leaves without acknowledging it, is refused only when every nurse has refused it, and
 * waits while no nurse is online. The pool in the test territory has three nurses.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#define T 3000
#define POOL "service:nurse@relais-test"
#define A "staff:claire.martin@cabinet-dupont"
#define N1 "rpps:10109876543"
#define N2 "rpps:10100000001"
#define N3 "rpps:20202345678"

static rt_broker_t broker;

static void start(void)
{
    static const char *args[] = {"--heartbeat-ms", "1000", NULL};
    rt_suite_start(&broker, args);
}

static void stop(void)
{
    rt_suite_stop(&broker);
}

TestSuite(pools, .init = start, .fini = stop, .timeout = 60);

static void to_pool(rt_client_t *a, const char *text, rt_env_t *e)
{
    rt_env_note(e, POOL, text);
    static Relais__V1__Receipt__Status wanted[] = {RELAIS__V1__RECEIPT__STATUS__PROCESSED};
    e->env.receipts = wanted;
    e->env.n_receipts = 1;
    cr_assert_eq(rt_client_submit(a, e, T), 0, "a pool is a valid recipient");
}

/* Receives a delivery on c within timeout, or returns NULL. */
static Relais__V1__Frame *maybe_deliver(rt_client_t *c, int timeout_ms)
{
    Relais__V1__Frame *d;
    return rt_client_expect(c, RELAIS__V1__FRAME__KIND_DELIVER, timeout_ms, &d) == 0 ? d : NULL;
}

Test(pools, each_message_goes_to_one_member_and_the_load_is_shared)
{
    rt_client_t a = rt_session(&broker, A, 8), n1 = rt_session(&broker, N1, 4),
                n2 = rt_session(&broker, N2, 4);
    enum { N = 8 };
    rt_env_t e[N];
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof(text), "p%d", i);
        to_pool(&a, text, &e[i]);
    }
    /* Nobody acks yet: 4 + 4 fill both windows, so each nurse gets exactly 4. */
    int got1 = 0, got2 = 0;
    Relais__V1__Frame *d;
    while ((d = maybe_deliver(&n1, 500)) != NULL) {
        got1++;
        rt_client_ack(&n1, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
    }
    while ((d = maybe_deliver(&n2, 500)) != NULL) {
        got2++;
        rt_client_ack(&n2, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
    }
    cr_expect_eq(got1 + got2, N, "every message delivered once: %d + %d", got1, got2);
    cr_expect_gt(got1, 0, "shared");
    cr_expect_gt(got2, 0, "shared");
    /* The sender's receipts name the pool and who handled each message. */
    for (int i = 0; i < N; i++) {
        Relais__V1__Frame *r;
        cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0);
        cr_expect_str_eq(r->receipt->recipient, POOL);
        cr_expect(strcmp(r->receipt->claimed_by, N1) == 0 ||
                      strcmp(r->receipt->claimed_by, N2) == 0,
                  "handled by %s", r->receipt->claimed_by);
        rt_client_ack_receipt(&a, r->receipt->receipt_id);
        relais_frame_free(&r);
    }
    rt_client_close(&a);
    rt_client_close(&n1);
    rt_client_close(&n2);
}

Test(pools, a_refusal_passes_the_message_to_the_next_member)
{
    rt_client_t a = rt_session(&broker, A, 8), n1 = rt_session(&broker, N1, 4);
    rt_env_t e;
    to_pool(&a, "who can?", &e);
    Relais__V1__Frame *d = rt_expect_note(&n1, "who can?", T);
    rt_client_t n2 = rt_session(&broker, N2, 4); /* online now, idle */
    rt_client_ack(&n1, d->deliver->envelope->message_id.data, RELAIS__V1__ACK__OUTCOME__REFUSED,
                  "full this week");
    relais_frame_free(&d);
    d = rt_expect_note(&n2, "who can?", T);
    cr_expect_eq(d->deliver->attempt, 2);
    rt_client_ack(&n2, d->deliver->envelope->message_id.data, RELAIS__V1__ACK__OUTCOME__PROCESSED,
                  NULL);
    relais_frame_free(&d);
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0);
    cr_expect_eq(r->receipt->status, RELAIS__V1__RECEIPT__STATUS__PROCESSED,
                 "one refusal is not the pool's refusal");
    cr_expect_str_eq(r->receipt->claimed_by, N2);
    relais_frame_free(&r);
    rt_client_close(&a);
    rt_client_close(&n1);
    rt_client_close(&n2);
}

Test(pools, when_every_member_refuses_the_sender_is_told)
{
    rt_client_t a = rt_session(&broker, A, 8);
    rt_client_t n[3] = {rt_session(&broker, N1, 1), rt_session(&broker, N2, 1),
                        rt_session(&broker, N3, 1)};
    rt_env_t e;
    to_pool(&a, "nobody", &e);
    for (int round = 0; round < 3; round++) {
        Relais__V1__Frame *d = NULL;
        int who = -1;
        for (int i = 0; i < 3 && d == NULL; i++)
            if ((d = maybe_deliver(&n[i], round == 0 && i == 0 ? T : 300)) != NULL) who = i;
        cr_assert_not_null(d, "round %d: some nurse gets it", round);
        rt_client_ack(&n[who], d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__REFUSED, "no");
        relais_frame_free(&d);
    }
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0);
    cr_expect_eq(r->receipt->status, RELAIS__V1__RECEIPT__STATUS__REFUSED);
    cr_expect_str_eq(r->receipt->recipient, POOL);
    relais_frame_free(&r);
    rt_client_close(&a);
    for (int i = 0; i < 3; i++) rt_client_close(&n[i]);
}

Test(pools, with_no_member_online_the_message_waits_for_the_first_to_connect)
{
    rt_client_t a = rt_session(&broker, A, 8);
    rt_env_t e;
    to_pool(&a, "later", &e);
    rt_client_t n3 = rt_session(&broker, N3, 4);
    Relais__V1__Frame *d = rt_expect_note(&n3, "later", T);
    cr_expect_eq(d->deliver->attempt, 1);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&n3);
}

Test(pools, a_member_leaving_unacknowledged_hands_its_work_to_another)
{
    rt_client_t a = rt_session(&broker, A, 8), n1 = rt_session(&broker, N1, 4);
    rt_env_t e;
    to_pool(&a, "orphan", &e);
    Relais__V1__Frame *d = rt_expect_note(&n1, "orphan", T);
    relais_frame_free(&d);
    rt_client_t n2 = rt_session(&broker, N2, 4);
    /* n1 says goodbye without acknowledging. */
    Relais__V1__Bye bye = RELAIS__V1__BYE__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_BYE;
    f.bye = &bye;
    cr_assert_eq(rt_client_send(&n1, &f), 0);
    d = rt_expect_note(&n2, "orphan", T);
    cr_expect_eq(d->deliver->attempt, 2);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&n1);
    rt_client_close(&n2);
}
