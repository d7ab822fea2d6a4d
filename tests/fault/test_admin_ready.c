/*
 * /readyz and /metrics when the disk fills: relaisd's data directory on a small tmpfs. Ready
 * at first; once the store cannot write, /readyz answers 503 with the reason and the
 * failures are counted; once space returns and a commit succeeds, ready again. The admin
 * listener keeps answering throughout.
 *
 * Needs root for mount(2), like test_disk_full; elsewhere it skips and says why.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include "admin_support.h"
#include "harness.h"

#define T 5000
#define A "staff:claire.martin@cabinet-dupont"
#define B "rpps:10101234567"

static int submit_big(rt_client_t *c, int i, char *big)
{
    rt_env_t e;
    rt_env_note(&e, B, "");
    snprintf(big, 40, "m%06d:", i);
    big[strlen(big)] = 'x';
    e.note.text = big;
    cr_assert_eq(rt_client_submit_nowait(c, &e), 0);
    for (;;) {
        Relais__V1__Frame *f;
        cr_assert_eq(rt_client_recv(c, T, &f), 0, "an answer to submission %d", i);
        int kind = f->kind_case;
        relais_frame_free(&f);
        if (kind == RELAIS__V1__FRAME__KIND_ACCEPTED || kind == RELAIS__V1__FRAME__KIND_REJECTED)
            return kind;
    }
}

Test(admin_ready, readyz_says_503_with_the_reason_while_the_store_cannot_write, .timeout = 120)
{
    char mnt[64];
    snprintf(mnt, sizeof(mnt), "/tmp/relais-full-XXXXXX");
    cr_assert_not_null(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=3m") < 0) {
        int err = errno;
        rmdir(mnt);
        cr_skip_test("cannot mount a tmpfs (%s): this test needs root", strerror(err));
    }
    rt_broker_t broker;
    memset(&broker, 0, sizeof(broker));
    snprintf(broker.data_dir, sizeof(broker.data_dir), "%s/data", mnt);
    mkdir(broker.data_dir, 0700);
    const char *args[] = {"--admin", "127.0.0.1:0", NULL};
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0);
    int port = ah_admin_port(&broker);
    cr_assert_gt(port, 0);
    ah_resp_t r;
    cr_assert_eq(ah_get(port, "/readyz", NULL, &r), 0);
    cr_expect_eq(r.status, 200, "ready on an empty disk: %s", r.body);
    ah_free(&r);

    rt_client_t a;
    cr_assert_eq(rt_client_open_as(&a, &broker, A), 0);
    cr_assert_eq(rt_client_hello(&a, A, 8, T), 0);
    enum { BIG = 32 * 1024, MAX = 400 };
    char *big = malloc(BIG + 1);
    memset(big, 'x', BIG);
    big[BIG] = 0;
    int i = 0, kind = 0;
    while (i < MAX && (kind = submit_big(&a, i, big)) == RELAIS__V1__FRAME__KIND_ACCEPTED) i++;
    cr_assert_eq(kind, RELAIS__V1__FRAME__KIND_REJECTED, "the disk filled");

    cr_assert_eq(ah_get(port, "/readyz", NULL, &r), 0);
    cr_expect_eq(r.status, 503);
    cr_expect(strstr(r.body, "commit failed") != NULL || strstr(r.body, "free") != NULL,
              "the reason: %s", r.body);
    ah_free(&r);
    cr_assert_eq(ah_get(port, "/metrics", NULL, &r), 0);
    prom_t p;
    char err[256] = "";
    cr_assert_eq(prom_parse(r.body, &p, err, sizeof err), 0, "%s", err);
    /* Whichever met the full disk first (a commit, or the journal) spent the disk reserve:
     * submissions are refused as the store's. */
    cr_expect_geq(prom_get(&p, "relais_messages_rejected_total", "code=\"store_unavailable\""), 1);
    cr_expect_lt(prom_get(&p, "relais_data_free_bytes", ""), 1 << 20);
    prom_free(&p);
    ah_free(&r);

    cr_assert_eq(mount("tmpfs", mnt, "tmpfs", MS_REMOUNT, "size=64m"), 0);
    /* A client retries as it is told (retry_after is 1 s); waiting on its socket, not sleeping. */
    int tries = 0;
    while ((kind = submit_big(&a, i, big)) != RELAIS__V1__FRAME__KIND_ACCEPTED && tries++ < 20) {
        Relais__V1__Frame *none;
        cr_assert_neq(rt_client_recv(&a, 1000, &none), 0);
    }
    cr_assert_eq(kind, RELAIS__V1__FRAME__KIND_ACCEPTED, "accepted once space returned");
    cr_assert_eq(ah_get(port, "/readyz", NULL, &r), 0);
    cr_expect_eq(r.status, 200, "ready again once a commit succeeds: %s", r.body);
    ah_free(&r);

    rt_client_close(&a);
    free(big);
    int rc = rt_broker_stop(&broker, 10000);
    umount2(mnt, MNT_DETACH);
    rmdir(mnt);
    cr_assert_eq(rc, 0, "relaisd exits 0, got %d", rc);
}
