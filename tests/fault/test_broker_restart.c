/*
 * Durability of relaisd under kill -9: what was Accepted is on disk, so a broker killed
 * without warning and restarted on the same data directory still delivers it, in order,
 * with in-flight deliveries redelivered (attempt + 1), receipts still owed and duplicates
 * still recognised.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

#define T 5000
#define A "staff:claire.martin@cabinet-dupont"
#define B "rpps:10101234567"

static rt_broker_t broker;
static const char *args[] = {"--heartbeat-ms", "500", NULL};

static void start(void)
{
    rt_suite_start(&broker, args);
}

static void stop(void)
{
    rt_suite_stop(&broker);
}

static void kill_and_restart(void)
{
    rt_broker_kill9(&broker);
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0,
                 "relaisd must restart on the same endpoint and data");
}

TestSuite(restart, .init = start, .fini = stop, .timeout = 90);

Test(restart, every_accepted_message_survives_a_kill_9_in_order)
{
    rt_client_t a = rt_session(&broker, A, 8);
    enum { N = 300 };
    for (int i = 0; i < N; i++) {
        rt_env_t e;
        char text[16];
        snprintf(text, sizeof(text), "m%d", i);
        rt_env_note(&e, B, text);
        cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    }
    rt_client_close(&a);
    kill_and_restart();
    rt_client_t b = rt_session(&broker, B, 64);
    for (int i = 0; i < N; i++) {
        char text[16];
        snprintf(text, sizeof(text), "m%d", i);
        Relais__V1__Frame *d = rt_expect_note(&b, text, T);
        cr_assert_eq(d->deliver->attempt, 1, "never sent before the crash");
        rt_client_ack(&b, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
    }
    rt_client_close(&b);
}

Test(restart, an_unacknowledged_delivery_is_redelivered_after_a_crash)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "in flight");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "in flight", T);
    relais_frame_free(&d);
    rt_client_close(&a);
    rt_client_close(&b);
    kill_and_restart();
    rt_client_t b2 = rt_session(&broker, B, 8);
    d = rt_expect_note(&b2, "in flight", T);
    /* Attempt 1 was sent; after a crash the broker cannot know whether a second attempt left
     * before its record committed, so it says a higher number than any that may have. */
    cr_expect_gt(d->deliver->attempt, 1, "the crash does not reset the attempt count");
    relais_frame_free(&d);
    rt_client_close(&b2);
}

Test(restart, an_acknowledged_message_is_not_delivered_again_after_a_crash)
{
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
    rt_env_t e;
    rt_env_note(&e, B, "done");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    Relais__V1__Frame *d = rt_expect_note(&b, "done", T);
    rt_client_ack(&b, d->deliver->envelope->message_id.data, RELAIS__V1__ACK__OUTCOME__PROCESSED,
                  NULL);
    relais_frame_free(&d);
    /* A marker behind it proves the ack was handled before the kill. */
    rt_env_note(&e, B, "marker");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    d = rt_expect_note(&b, "marker", T);
    relais_frame_free(&d);
    /* The marker's delivery is committed in the turn after the ack: wait for a
     * round-trip that needs a later commit. */
    rt_env_note(&e, A, "sync");
    cr_assert_eq(rt_client_submit(&b, &e, T), 0);
    rt_client_close(&a);
    rt_client_close(&b);
    kill_and_restart();
    rt_client_t b2 = rt_session(&broker, B, 8);
    d = rt_expect_note(&b2, "marker", T);
    cr_expect_gt(d->deliver->attempt, 1);
    relais_frame_free(&d);
    rt_client_close(&b2);
}

Test(restart, receipts_owed_and_duplicates_are_remembered_across_a_crash)
{
    rt_client_t a = rt_session(&broker, A, 8);
    rt_env_t e;
    rt_env_note(&e, B, "expiring");
    e.env.expires_at_ms = relais_now_ms() + 200;
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    rt_client_close(&a); /* offline when the receipt is produced */
    cr_assert_eq(rt_broker_wait_log(&broker, "expired msg=", T), 0);
    /* The receipt is recorded in the batch of the tick that expired it. Another
     * submission's Accepted proves that batch (or a later one) is committed. */
    rt_client_t x = rt_session(&broker, "rpps:10100000001", 8);
    rt_env_t s;
    rt_env_note(&s, "rpps:10100000002", "sync");
    cr_assert_eq(rt_client_submit(&x, &s, T), 0);
    rt_client_close(&x);
    kill_and_restart();

    rt_client_t a2 = rt_session(&broker, A, 8);
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(&a2, RELAIS__V1__FRAME__KIND_RECEIPT, T, &r), 0,
                 "the EXPIRED receipt survives the crash");
    cr_expect_eq(r->receipt->status, RELAIS__V1__RECEIPT__STATUS__EXPIRED);
    relais_frame_free(&r);
    /* Resubmitting the same message id after the crash is recognised as a duplicate. */
    e.env.expires_at_ms = 0;
    cr_assert_eq(rt_client_submit_nowait(&a2, &e), 0);
    Relais__V1__Frame *acc;
    cr_assert_eq(rt_client_expect(&a2, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
    cr_expect(acc->accepted->duplicate);
    relais_frame_free(&acc);
    rt_client_close(&a2);
}

Test(restart, the_store_files_are_readable_by_their_owner_only)
{
    /* The database holds clinical content; a permissive umask must not expose it. */
    rt_client_t a = rt_session(&broker, A, 8);
    rt_env_t e;
    rt_env_note(&e, B, "private");
    cr_assert_eq(rt_client_submit(&a, &e, T), 0);
    rt_client_close(&a);
    const char *files[] = {"relais.db", "relais.db-wal"};
    for (int i = 0; i < 2; i++) {
        char path[400];
        snprintf(path, sizeof(path), "%s/%s", broker.data_dir, files[i]);
        struct stat st;
        cr_assert_eq(stat(path, &st), 0, "%s exists", files[i]);
        cr_expect_eq(st.st_mode & 077, 0, "%s has mode %o", files[i], st.st_mode & 0777);
    }
}

Test(restart, no_attempt_number_is_given_twice_and_delivered_is_said_once, .timeout = 120)
{
    /* A kill right after a Deliver left, before the batch recording its attempt could
     * commit: the next Deliver of it must say a higher attempt, and its sender must be told
     * DELIVERED once, not once per life of the broker. */
    enum { KILLS = 12 };
    uint8_t ids[KILLS][16];
    for (int i = 0; i < KILLS; i++) {
        rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 8);
        rt_env_t e;
        rt_env_note(&e, B, "kill me now");
        Relais__V1__Receipt__Status wanted[] = {RELAIS__V1__RECEIPT__STATUS__DELIVERED};
        e.env.receipts = wanted;
        e.env.n_receipts = 1;
        memcpy(ids[i], e.id, 16);
        /* Receipts of earlier rounds may come first (unacknowledged): they are counted by id
         * at the end, so skipping them here loses nothing. */
        cr_assert_eq(rt_client_submit_nowait(&a, &e), 0);
        Relais__V1__Frame *acc;
        cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
        relais_frame_free(&acc);
        rt_client_close(&a); /* the receipt waits for A in the store */
        Relais__V1__Frame *d = rt_expect_note(&b, "kill me now", T);
        uint32_t first = d->deliver->attempt;
        relais_frame_free(&d);
        kill_and_restart(); /* at once: the attempt's record may not have committed */
        rt_client_close(&b);
        rt_client_t b2 = rt_session(&broker, B, 8);
        d = rt_expect_note(&b2, "kill me now", T);
        cr_expect_gt(d->deliver->attempt, first, "kill %d: attempt %u after %u", i,
                     d->deliver->attempt, first);
        rt_client_ack(&b2, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
        rt_client_close(&b2);
    }
    /* Every DELIVERED receipt, once each (a receipt resent until acknowledged keeps its id:
     * distinct ids are distinct receipts). */
    rt_client_t a = rt_session(&broker, A, 8);
    int seen[KILLS] = {0};
    uint64_t receipt_ids[KILLS][4];
    Relais__V1__Frame *r;
    while (rt_client_expect(&a, RELAIS__V1__FRAME__KIND_RECEIPT, 1000, &r) == 0) {
        for (int i = 0; i < KILLS; i++) {
            if (memcmp(r->receipt->message_id.data, ids[i], 16) != 0 ||
                r->receipt->status != RELAIS__V1__RECEIPT__STATUS__DELIVERED)
                continue;
            bool known = false;
            for (int j = 0; j < seen[i] && j < 4; j++) known |= receipt_ids[i][j] == r->receipt->receipt_id;
            if (!known && seen[i] < 4) receipt_ids[i][seen[i]] = r->receipt->receipt_id;
            if (!known) seen[i]++;
        }
        rt_client_ack_receipt(&a, r->receipt->receipt_id);
        relais_frame_free(&r);
    }
    for (int i = 0; i < KILLS; i++)
        cr_expect_eq(seen[i], 1, "message %d: DELIVERED told %d times", i, seen[i]);
    rt_client_close(&a);
}
