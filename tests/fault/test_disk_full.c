/*
 * A full disk: relaisd's data directory lives on a small tmpfs. Submissions past the point
 * where the store can write get Rejected{STORE_UNAVAILABLE, retry_after} with a reason that
 * says the disk is full; the broker keeps serving; nothing that was Accepted is lost; and
 * once space returns (the tmpfs grows) submissions are accepted again.
 *
 * Needs root for mount(2), as CI and the developers' machines have; elsewhere it skips and
 * says why.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

#define T 5000
#define A "staff:claire.martin@cabinet-dupont"
#define B "rpps:10101234567"

static char mnt[64];

static Relais__V1__Frame *submit_big(rt_client_t *c, rt_env_t *e, int i, char *big)
{
    rt_env_note(e, B, "");
    snprintf(big, 40, "m%06d:", i);
    big[strlen(big)] = 'x'; /* keep the padding after the number */
    e->note.text = big;
    cr_assert_eq(rt_client_submit_nowait(c, e), 0);
    Relais__V1__Frame *f;
    do {
        cr_assert_eq(rt_client_recv(c, T, &f), 0, "an answer to submission %d", i);
        if (f->kind_case == RELAIS__V1__FRAME__KIND_ACCEPTED ||
            f->kind_case == RELAIS__V1__FRAME__KIND_REJECTED)
            return f;
        relais_frame_free(&f);
    } while (1);
}

Test(disk_full, submissions_are_refused_with_a_reason_and_nothing_accepted_is_lost, .timeout = 120)
{
    snprintf(mnt, sizeof(mnt), "/tmp/relais-full-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=2m") < 0) {
        int err = errno;
        rmdir(mnt);
        cr_skip_test("cannot mount a tmpfs (%s): this test needs root", strerror(err));
    }
    rt_broker_t broker;
    memset(&broker, 0, sizeof(broker));
    snprintf(broker.data_dir, sizeof(broker.data_dir), "%s/data", mnt);
    mkdir(broker.data_dir, 0700);
    cr_assert_eq(rt_broker_start(&broker, NULL, 10000), 0);

    rt_client_t a;
    cr_assert_eq(rt_client_open_as(&a, &broker, A), 0);
    cr_assert_eq(rt_client_hello(&a, A, 8, T), 0);

    enum { BIG = 32 * 1024, MAX = 400 };
    char *big = malloc(BIG + 1);
    memset(big, 'x', BIG);
    big[BIG] = 0;
    int accepted = 0;
    Relais__V1__Frame *f = NULL;
    for (int i = 0; i < MAX; i++) {
        rt_env_t e;
        f = submit_big(&a, &e, i, big);
        if (f->kind_case == RELAIS__V1__FRAME__KIND_REJECTED) break;
        accepted++;
        relais_frame_free(&f);
    }
    cr_assert_not_null(f, "the disk never filled");
    cr_assert_eq(f->kind_case, RELAIS__V1__FRAME__KIND_REJECTED,
                 "2 MB cannot hold %d messages of 32 KiB", MAX);
    cr_expect_eq(f->rejected->code, RELAIS__V1__ERROR__ERROR_CODE__STORE_UNAVAILABLE);
    cr_expect_gt(f->rejected->retry_after_ms, 0, "the sender is told when to retry");
    cr_expect(strstr(f->rejected->reason, "disk full") != NULL, "reason: %s", f->rejected->reason);
    relais_frame_free(&f);
    cr_expect_gt(accepted, 10, "some messages fitted before the disk filled");
    cr_log_info("%d messages accepted before the disk filled", accepted);

    /* Still serving: a Ping gets its Pong. */
    Relais__V1__Ping p = RELAIS__V1__PING__INIT;
    Relais__V1__Frame pf = RELAIS__V1__FRAME__INIT;
    pf.kind_case = RELAIS__V1__FRAME__KIND_PING;
    pf.ping = &p;
    cr_assert_eq(rt_client_send(&a, &pf), 0);
    Relais__V1__Frame *pong;
    cr_assert_eq(rt_client_expect(&a, RELAIS__V1__FRAME__KIND_PONG, T, &pong), 0);
    relais_frame_free(&pong);

    /* Space returns: the same kind of submission is accepted again. */
    cr_assert_eq(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=64m"), 0);
    rt_env_t e;
    f = submit_big(&a, &e, accepted, big);
    cr_assert_eq(f->kind_case, RELAIS__V1__FRAME__KIND_ACCEPTED, "accepted once space returned");
    relais_frame_free(&f);
    accepted++;

    /* Every accepted message reaches the recipient, in order, after a crash too. */
    rt_broker_kill9(&broker);
    cr_assert_eq(rt_broker_start(&broker, NULL, 10000), 0);
    rt_client_t b;
    cr_assert_eq(rt_client_open_as(&b, &broker, B), 0);
    cr_assert_eq(rt_client_hello(&b, B, 16, T), 0);
    for (int i = 0; i < accepted; i++) {
        Relais__V1__Frame *d;
        cr_assert_eq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0,
                     "accepted message %d of %d delivered", i, accepted);
        char want[16];
        snprintf(want, sizeof(want), "m%06d:", i);
        cr_assert(strncmp(d->deliver->envelope->note->text, want, strlen(want)) == 0,
                  "in order: wanted %s", want);
        rt_client_ack(&b, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
    }
    rt_client_close(&a);
    rt_client_close(&b);
    free(big);
    int rc = rt_broker_stop(&broker, 10000);
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    cr_assert_eq(rc, 0, "relaisd exits 0, got %d", rc);
}
