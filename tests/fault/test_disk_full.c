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
    static uint8_t accepted_ids[MAX + 1][16];
    for (int i = 0; i < MAX; i++) {
        rt_env_t e;
        f = submit_big(&a, &e, i, big);
        if (f->kind_case == RELAIS__V1__FRAME__KIND_REJECTED) break;
        memcpy(accepted_ids[accepted], e.id, 16);
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

    /* More submissions against the full disk: each is answered, and what is Rejected must
     * never be stored (and so never delivered). */
    enum { MORE = 20 };
    static uint8_t rejected_ids[MORE][16];
    int rejected = 0;
    for (int i = 0; i < MORE; i++) {
        rt_env_t e;
        f = submit_big(&a, &e, 900000 + i, big);
        if (f->kind_case == RELAIS__V1__FRAME__KIND_REJECTED)
            memcpy(rejected_ids[rejected++], e.id, 16);
        else
            memcpy(accepted_ids[accepted++], e.id, 16); /* room was made: it is stored */
        relais_frame_free(&f);
    }

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
    bool ok = false;
    for (int tries = 0; tries < 20 && !ok; tries++) { /* retrying as told, like any client */
        f = submit_big(&a, &e, accepted, big);
        ok = f->kind_case == RELAIS__V1__FRAME__KIND_ACCEPTED;
        int64_t wait = ok ? 0 : f->rejected->retry_after_ms;
        relais_frame_free(&f);
        Relais__V1__Frame *none;
        if (!ok) cr_assert_neq(rt_client_recv(&a, (int)(wait > 0 ? wait : 100), &none), 0);
    }
    cr_assert(ok, "accepted once space returned");
    memcpy(accepted_ids[accepted], e.id, 16);
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
        cr_assert_eq(memcmp(d->deliver->envelope->message_id.data, accepted_ids[i], 16), 0,
                     "accepted message %d delivered in order", i);
        rt_client_ack(&b, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
    }
    Relais__V1__Frame *extra;
    cr_expect_neq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, 1000, &extra), 0,
                  "nothing Rejected is ever delivered (%d rejected)", rejected);
    rt_client_close(&a);
    rt_client_close(&b);
    free(big);
    int rc = rt_broker_stop(&broker, 10000);
    /* The journal: every accepted message, its delivery and its ack are in it; nothing
     * rejected is said accepted; and it verifies. */
    char path[400];
    snprintf(path, sizeof(path), "%s/audit.log", broker.data_dir);
    FILE *jf = fopen(path, "r");
    cr_assert_not_null(jf);
    char *journal = malloc(8 << 20);
    size_t jn = fread(journal, 1, (8 << 20) - 1, jf);
    journal[jn] = 0;
    fclose(jf);
    cr_expect(strstr(journal, "audit.lost") == NULL, "nothing was lost from the journal");
    for (int i = 0; i < accepted; i++) {
        char uuid[37];
        relais_id_format(accepted_ids[i], 16, uuid);
        const char *kinds[] = {"submit.accepted", "\"event\":\"deliver\"", "\"event\":\"ack\""};
        for (size_t k = 0; k < 3; k++) {
            bool found = false;
            for (const char *at = journal; !found && (at = strstr(at, uuid)) != NULL; at++) {
                const char *start = at;
                while (start > journal && start[-1] != '\n') start--;
                const char *end = strchr(at, '\n');
                char *line = strndup(start, end ? (size_t)(end - start) : strlen(start));
                found = strstr(line, kinds[k]) != NULL;
                free(line);
            }
            cr_expect(found, "message %d (%s): %s journaled", i, uuid, kinds[k]);
        }
    }
    for (int i = 0; i < rejected; i++) {
        /* A submission is journaled while its batch commits; if the commit fails, a
         * "not-stored" record follows its "accepted" one. */
        char uuid[37], said_accepted[128], not_stored[128];
        relais_id_format(rejected_ids[i], 16, uuid);
        snprintf(said_accepted, sizeof(said_accepted), "\"msg\":\"%s\",\"body\":\"note\",\"to\":\"-\",\"attempt\":1,\"outcome\":\"accepted\"", uuid);
        snprintf(not_stored, sizeof(not_stored), "\"msg\":\"%s\",\"body\":\"note\",\"to\":\"-\",\"attempt\":0,\"outcome\":\"not-stored\"", uuid);
        const char *acc = strstr(journal, said_accepted);
        const char *ns = acc ? strstr(acc, not_stored) : NULL;
        cr_expect(acc == NULL || ns != NULL,
                  "rejected %s: journaled as accepted without its not-stored correction", uuid);
    }
    free(journal);
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    cr_assert_eq(rc, 0, "relaisd exits 0, got %d", rc);
}

Test(disk_full, a_small_volume_filled_by_the_store_recovers_once_the_backlog_is_consumed,
     .timeout = 120)
{
    /* 8 MB holds the store and its write-ahead log and nothing else: the WAL must not take
     * the space for good. */
    snprintf(mnt, sizeof(mnt), "/tmp/relais-small-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=8m") < 0) {
        int err = errno;
        rmdir(mnt);
        cr_skip_test("cannot mount a tmpfs (%s): this test needs root", strerror(err));
    }
    rt_broker_t broker;
    memset(&broker, 0, sizeof(broker));
    snprintf(broker.data_dir, sizeof(broker.data_dir), "%s/data", mnt);
    mkdir(broker.data_dir, 0700);
    static const char *reserve[] = {"--store-reserve-kb", "2048", NULL};
    cr_assert_eq(rt_broker_start(&broker, reserve, 10000), 0);
    rt_client_t a = rt_session(&broker, A, 8), b = rt_session(&broker, B, 64);
    enum { BIG = 16 * 1024, MAX = 2000 };
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
        f = NULL;
    }
    cr_assert_not_null(f, "8 MB cannot hold %d messages of 16 KiB", MAX);
    relais_frame_free(&f);
    cr_log_info("%d messages accepted before the volume filled", accepted);
    /* The recipient takes everything: its acknowledgements must reach the store. */
    for (int i = 0; i < accepted; i++) {
        Relais__V1__Frame *d;
        cr_assert_eq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0,
                     "message %d of %d", i, accepted);
        rt_client_ack(&b, d->deliver->envelope->message_id.data,
                      RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
    }
    /* Then the same volume takes new messages again: retry as told until accepted. */
    bool ok = false;
    for (int tries = 0; tries < 50 && !ok; tries++) {
        rt_env_t e;
        f = submit_big(&a, &e, MAX + tries, big);
        ok = f->kind_case == RELAIS__V1__FRAME__KIND_ACCEPTED;
        int64_t wait = ok ? 0 : f->rejected->retry_after_ms;
        relais_frame_free(&f);
        if (!ok) { /* the broker said when: wait for that, on the socket */
            Relais__V1__Frame *none;
            cr_assert_neq(rt_client_recv(&b, (int)(wait > 0 ? wait : 100), &none), 0);
        }
    }
    cr_expect(ok, "the volume recovers once its backlog is consumed");
    if (!ok) { /* what the broker said, for whoever reads the failure */
        char cmd[1024];
        snprintf(cmd, sizeof(cmd), "grep -v 'submit: rejected' %s | tail -25 >&2; ls -la %s >&2",
                 broker.log_path, broker.data_dir);
        if (system(cmd) != 0) cr_log_warn("could not show the broker's log");
    }
    rt_client_close(&a);
    rt_client_close(&b);
    free(big);
    int rc = rt_broker_stop(&broker, 10000);
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    cr_assert_eq(rc, 0, "relaisd exits 0, got %d", rc);
}
