/*
 * Unit tests of the agent's dedup window (agents/runtime/dedup.c) through its internal
 * interface (agent_internal.h), below any socket: keys compared in full (sender and id),
 * the window's capacity and the eviction of its oldest entry, outcomes kept, and with a
 * state file the window a next run finds.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_internal.h"

#define OWNER "rpps:10101234567"
#define PEER "rpps:20202345678"
#define PEER2 "finess:350000011"

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/relais-dedup-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/agent.db", dir);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void teardown(void)
{
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(agent_dedup, .init = setup, .fini = teardown);

/* A 16-byte message id numbered n. */
static void id_of(uint32_t n, uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    memset(id, 0, RELAIS_MESSAGE_ID_LEN);
    memcpy(id, &n, sizeof(n));
}

static int remember(agent_dedup_t *d, const char *sender, uint32_t n, relais_outcome_t o)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    id_of(n, id);
    return agent__dedup_remember(d, sender, id, sizeof(id), o);
}

static bool seen(const agent_dedup_t *d, const char *sender, uint32_t n, relais_outcome_t *o)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    id_of(n, id);
    return agent__dedup_seen(d, sender, id, sizeof(id), o);
}

Test(agent_dedup, a_window_needs_a_capacity)
{
    agent_dedup_t *d = NULL;
    cr_expect_eq(agent__dedup_new(&d, 0, NULL), -EINVAL);
    cr_expect_null(d);
}

Test(agent_dedup, a_key_is_the_sender_and_the_whole_id)
{
    agent_dedup_t *d = NULL;
    cr_assert_eq(agent__dedup_new(&d, 8, NULL), 0);
    cr_assert_eq(remember(d, PEER, 1, RELAIS_PROCESSED), 0);
    relais_outcome_t o = 0;
    cr_expect(seen(d, PEER, 1, &o));
    cr_expect_eq(o, RELAIS_PROCESSED);
    cr_expect_not(seen(d, PEER2, 1, NULL), "the same id from another sender is another message");
    cr_expect_not(seen(d, PEER, 2, NULL));
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    id_of(1, id);
    cr_expect_not(agent__dedup_seen(d, PEER, id, 4, NULL), "a prefix of the id is not the id");
    /* An id longer than any the broker sends is not remembered, and not an error. */
    uint8_t longer[RELAIS_MESSAGE_ID_LEN + 1] = {9};
    cr_expect_eq(agent__dedup_remember(d, PEER, longer, sizeof(longer), RELAIS_PROCESSED), 0);
    cr_expect_not(agent__dedup_seen(d, PEER, longer, sizeof(longer), NULL));
    agent__dedup_destroy(&d);
    cr_expect_null(d);
}

Test(agent_dedup, a_full_window_forgets_its_oldest_entry_first)
{
    agent_dedup_t *d = NULL;
    cr_assert_eq(agent__dedup_new(&d, 4, NULL), 0);
    for (uint32_t n = 1; n <= 4; n++) cr_assert_eq(remember(d, PEER, n, RELAIS_PROCESSED), 0);
    for (uint32_t n = 1; n <= 4; n++) cr_expect(seen(d, PEER, n, NULL), "entry %u", n);
    /* Remembering a known key again changes its outcome and takes no room. */
    cr_assert_eq(remember(d, PEER, 2, RELAIS_REFUSED), 0);
    relais_outcome_t o = 0;
    cr_expect(seen(d, PEER, 1, NULL), "nothing evicted by a repeat");
    cr_expect(seen(d, PEER, 2, &o));
    cr_expect_eq(o, RELAIS_REFUSED);
    cr_assert_eq(remember(d, PEER, 5, RELAIS_PROCESSED), 0);
    cr_expect_not(seen(d, PEER, 1, NULL), "the oldest went first");
    for (uint32_t n = 2; n <= 5; n++) cr_expect(seen(d, PEER, n, NULL), "entry %u", n);
    cr_assert_eq(remember(d, PEER, 6, RELAIS_PROCESSED), 0);
    cr_expect_not(seen(d, PEER, 2, NULL));
    cr_expect(seen(d, PEER, 3, NULL));
    agent__dedup_destroy(&d);
}

Test(agent_dedup, a_large_window_holds_exactly_its_capacity_through_many_evictions)
{
    agent_dedup_t *d = NULL;
    cr_assert_eq(agent__dedup_new(&d, AGENT_DEDUP_CAPACITY, NULL), 0);
    const uint32_t total = 3 * AGENT_DEDUP_CAPACITY + 17;
    for (uint32_t n = 0; n < total; n++)
        cr_assert_eq(remember(d, n % 3 ? PEER : PEER2, n, RELAIS_PROCESSED), 0);
    uint32_t hits = 0;
    for (uint32_t n = 0; n < total; n++) {
        bool in = seen(d, n % 3 ? PEER : PEER2, n, NULL);
        bool want = n >= total - AGENT_DEDUP_CAPACITY;
        if (in != want) cr_assert_fail("entry %u: seen=%d, expected %d", n, in, want);
        hits += in;
    }
    cr_expect_eq(hits, AGENT_DEDUP_CAPACITY);
    agent__dedup_destroy(&d);
}

Test(agent_dedup, the_window_survives_reopening_with_its_outcomes)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    agent_dedup_t *d = NULL;
    cr_assert_eq(agent__dedup_new(&d, 4, s), 0);
    for (uint32_t n = 1; n <= 6; n++)
        cr_assert_eq(remember(d, PEER, n, n == 5 ? RELAIS_REFUSED : RELAIS_PROCESSED), 0);
    agent__dedup_destroy(&d);
    agent__state_close(&s);

    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    cr_assert_eq(agent__dedup_new(&d, 4, s), 0);
    cr_expect_not(seen(d, PEER, 1, NULL));
    cr_expect_not(seen(d, PEER, 2, NULL));
    relais_outcome_t o = 0;
    for (uint32_t n = 3; n <= 6; n++) {
        cr_expect(seen(d, PEER, n, &o), "entry %u remembered by the file", n);
        cr_expect_eq(o, n == 5 ? RELAIS_REFUSED : RELAIS_PROCESSED);
    }
    /* The reloaded ring evicts in the order it was first filled. */
    cr_assert_eq(remember(d, PEER, 7, RELAIS_PROCESSED), 0);
    cr_expect_not(seen(d, PEER, 3, NULL));
    cr_expect(seen(d, PEER, 4, NULL));
    agent__dedup_destroy(&d);

    /* A smaller window loads only the newest entries. */
    cr_assert_eq(agent__dedup_new(&d, 2, s), 0);
    cr_expect_not(seen(d, PEER, 5, NULL));
    cr_expect(seen(d, PEER, 6, NULL));
    cr_expect(seen(d, PEER, 7, NULL));
    agent__dedup_destroy(&d);
    agent__state_close(&s);
}
