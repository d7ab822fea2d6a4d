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

/* ---- OFFER: every member offered, the first claim wins ----------------------------- */

static void offer_to_pool(rt_client_t *a, const char *text, rt_env_t *e, int64_t expires_at)
{
    rt_env_note(e, POOL, text);
    e->env.dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER;
    e->env.expires_at_ms = expires_at;
    cr_assert_eq(rt_client_submit(a, e, T), 0);
}

static Relais__V1__Frame *expect_offer(rt_client_t *c, const char *text)
{
    Relais__V1__Frame *d = rt_expect_note(c, text, T);
    cr_expect(d->deliver->offered, "delivered as an offer");
    return d;
}

static void claim(rt_client_t *c, const uint8_t *id)
{
    Relais__V1__Claim cl = RELAIS__V1__CLAIM__INIT;
    cl.message_id.data = (uint8_t *)id;
    cl.message_id.len = 16;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_CLAIM;
    f.claim = &cl;
    cr_assert_eq(rt_client_send(c, &f), 0);
}

static bool claim_result(rt_client_t *c)
{
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(c, RELAIS__V1__FRAME__KIND_CLAIM_RESULT, T, &r), 0);
    bool granted = r->claim_result->granted;
    relais_frame_free(&r);
    return granted;
}

Test(pools, an_offer_goes_to_every_member_and_the_first_claim_wins)
{
    rt_client_t a = rt_session(&broker, A, 8), n1 = rt_session(&broker, N1, 4),
                n2 = rt_session(&broker, N2, 4);
    rt_env_t e;
    offer_to_pool(&a, "home visit", &e, 0);
    Relais__V1__Frame *o1 = expect_offer(&n1, "home visit"), *o2 = expect_offer(&n2, "home visit");
    claim(&n2, e.id);
    cr_expect(claim_result(&n2), "the first claim is granted");
    Relais__V1__Frame *w;
    cr_assert_eq(rt_client_expect(&n1, RELAIS__V1__FRAME__KIND_WITHDRAWN, T, &w), 0,
                 "the other member is told");
    relais_frame_free(&w);
    claim(&n1, e.id);
    cr_expect_not(claim_result(&n1), "a late claim is refused");
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0);
    cr_expect_eq(r->receipt->status, RELAIS__V1__RECEIPT__STATUS__CLAIMED);
    cr_expect_str_eq(r->receipt->claimed_by, N2, "the sender learns who took it");
    cr_expect_str_eq(r->receipt->recipient, POOL);
    rt_client_ack_receipt(&a, r->receipt->receipt_id);
    relais_frame_free(&r);
    rt_client_ack(&n2, e.id, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
    relais_frame_free(&o1);
    relais_frame_free(&o2);
    rt_client_close(&a);
    rt_client_close(&n1);
    rt_client_close(&n2);
}

Test(pools, two_members_racing_to_claim_exactly_one_wins)
{
    rt_client_t a = rt_session(&broker, A, 8), n1 = rt_session(&broker, N1, 4),
                n2 = rt_session(&broker, N2, 4);
    rt_env_t e;
    offer_to_pool(&a, "race", &e, 0);
    Relais__V1__Frame *o1 = expect_offer(&n1, "race"), *o2 = expect_offer(&n2, "race");
    claim(&n1, e.id);
    claim(&n2, e.id);
    bool g1 = claim_result(&n1), g2 = claim_result(&n2);
    cr_expect(g1 != g2, "exactly one wins (n1 %d, n2 %d)", g1, g2);
    relais_frame_free(&o1);
    relais_frame_free(&o2);
    rt_client_close(&a);
    rt_client_close(&n1);
    rt_client_close(&n2);
}

Test(pools, an_offer_nobody_claims_is_withdrawn_and_reported_unclaimed)
{
    rt_client_t a = rt_session(&broker, A, 8), n1 = rt_session(&broker, N1, 4);
    rt_env_t e;
    offer_to_pool(&a, "nobody takes it", &e, relais_now_ms() + 800);
    Relais__V1__Frame *o = expect_offer(&n1, "nobody takes it");
    relais_frame_free(&o);
    rt_client_t n3 = rt_session(&broker, N3, 4); /* joins while the offer is open */
    o = expect_offer(&n3, "nobody takes it");
    relais_frame_free(&o);
    Relais__V1__Frame *w;
    cr_assert_eq(rt_client_expect(&n1, RELAIS__V1__FRAME__KIND_WITHDRAWN, T, &w), 0);
    relais_frame_free(&w);
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0);
    cr_expect_eq(r->receipt->status, RELAIS__V1__RECEIPT__STATUS__UNCLAIMED);
    relais_frame_free(&r);
    rt_client_close(&a);
    rt_client_close(&n1);
    rt_client_close(&n3);
}

Test(pools, a_claim_survives_a_crash_and_binds_the_delivery_to_its_claimer)
{
    rt_client_t a = rt_session(&broker, A, 8), n1 = rt_session(&broker, N1, 4),
                n2 = rt_session(&broker, N2, 4);
    rt_env_t e;
    offer_to_pool(&a, "mine", &e, 0);
    Relais__V1__Frame *o = expect_offer(&n1, "mine");
    relais_frame_free(&o);
    claim(&n1, e.id);
    cr_assert(claim_result(&n1));
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0, "CLAIMED");
    rt_client_ack_receipt(&a, r->receipt->receipt_id);
    relais_frame_free(&r);
    /* The claim is committed before the next commit completes: another round trip. */
    rt_env_t sync;
    rt_env_note(&sync, N3, "sync");
    cr_assert_eq(rt_client_submit(&a, &sync, T), 0);
    rt_client_close(&a);
    rt_client_close(&n1);
    rt_client_close(&n2);
    rt_broker_kill9(&broker);
    static const char *args[] = {"--heartbeat-ms", "1000", NULL};
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0);
    rt_client_t n2b = rt_session(&broker, N2, 4);
    Relais__V1__Frame *none;
    cr_expect_neq(rt_client_expect(&n2b, RELAIS__V1__FRAME__KIND_DELIVER, 500, &none), 0,
                  "not offered again: it was claimed");
    rt_client_t n1b = rt_session(&broker, N1, 4);
    Relais__V1__Frame *d = rt_expect_note(&n1b, "mine", T);
    cr_expect_not(d->deliver->offered, "the claimer gets it as its own");
    cr_expect_gt(d->deliver->attempt, 1, "a higher attempt than the one sent before the crash");
    relais_frame_free(&d);
    rt_client_close(&n1b);
    rt_client_close(&n2b);
}

Test(pools, anycast_work_is_spread_over_equally_loaded_members)
{
    /* Every member idle each time: the least loaded are all of them, and the work must not
     * pile onto the first in the directory. */
    rt_client_t a = rt_session(&broker, A, 8);
    rt_client_t m[3] = {rt_session(&broker, N1, 8), rt_session(&broker, N2, 8),
                        rt_session(&broker, N3, 8)};
    enum { N = 30 };
    int got[3] = {0};
    for (int i = 0; i < N; i++) {
        rt_env_t e;
        rt_env_note(&e, POOL, "spread");
        Relais__V1__Frame *acc;
        cr_assert_eq(rt_client_submit_nowait(&a, &e), 0);
        cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
        relais_frame_free(&acc);
        int who = -1;
        for (int tries = 0; who < 0 && tries < 30; tries++) {
            for (int k = 0; k < 3 && who < 0; k++) {
                Relais__V1__Frame *d;
                if (rt_client_recv(&m[k], 100, &d) != 0) continue;
                if (d->kind_case == RELAIS__V1__FRAME__KIND_DELIVER) {
                    who = k;
                    rt_client_ack(&m[k], d->deliver->envelope->message_id.data,
                                  RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
                }
                relais_frame_free(&d);
            }
        }
        cr_assert_geq(who, 0, "message %d reached a member", i);
        got[who]++;
        /* The ack is handled before the next submission is. */
        rt_env_t sync;
        rt_env_note(&sync, "rpps:10000000001", "sync");
        cr_assert_eq(rt_client_submit_nowait(&m[who], &sync), 0);
        cr_assert_eq(rt_client_expect(&m[who], RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
        relais_frame_free(&acc);
    }
    for (int k = 0; k < 3; k++)
        cr_expect_geq(got[k], N / 3 - 2, "member %d had %d of %d (%d/%d/%d)", k, got[k], N, got[0],
                      got[1], got[2]);
    for (int k = 0; k < 3; k++) rt_client_close(&m[k]);
    rt_client_close(&a);
}
