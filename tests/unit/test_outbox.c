/*
 * Unit tests of the agent's outbox (agents/runtime/outbox.c) through its internal interface
 * (agent_internal.h), below any socket: submission order, taking answers by id, and, with a
 * state file, what a next run finds — the unanswered submissions in their order, marked
 * recovered; not the answered ones once flushed; not a damaged row; not a push whose
 * transaction was rolled back.
 */
#include <criterion/criterion.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_internal.h"

#define OWNER "rpps:10101234567"
#define PEER "rpps:20202345678"

static char dir[64];
static char path[128];

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/relais-outbox-XXXXXX");
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

TestSuite(agent_outbox, .init = setup, .fini = teardown);

/* The packed Submit frame of a Note with message id {tag, 0…}, as send.c builds one. */
static uint8_t *submit_frame(uint8_t tag, size_t *len)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN] = {tag};
    char *to[1] = {PEER};
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    note.text = "a note";
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.message_id.data = id;
    env.message_id.len = RELAIS_MESSAGE_ID_LEN;
    env.n_to = 1;
    env.to = to;
    env.created_at_ms = 1;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    env.note = &note;
    Relais__V1__Submit s = RELAIS__V1__SUBMIT__INIT;
    s.envelope = &env;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    f.submit = &s;
    uint8_t *out = NULL;
    cr_assert_eq(relais_frame_encode(&f, &out, len), 0);
    return out;
}

static void push(agent_outbox_t *ob, uint8_t tag)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN] = {tag};
    size_t len;
    uint8_t *frame = submit_frame(tag, &len);
    cr_assert_eq(agent__outbox_push(ob, id, &frame, len, NULL, NULL), 0);
    cr_expect_null(frame, "the outbox owns the frame once pushed");
}

/* The tags of the entries, oldest first, as a string ("abc"). */
static void tags(const agent_outbox_t *ob, char *out, size_t cap)
{
    size_t n = 0;
    for (const agent_outbox_entry_t *e = agent__outbox_first(ob); e && n + 1 < cap; e = e->next)
        out[n++] = (char)e->id[0];
    out[n] = 0;
}

static void expect_tags(const agent_outbox_t *ob, const char *want)
{
    char got[64];
    tags(ob, got, sizeof(got));
    cr_expect_str_eq(got, want);
    cr_expect_eq(agent__outbox_count(ob), strlen(want));
}

static bool take(agent_outbox_t *ob, uint8_t tag)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN] = {tag};
    agent_outbox_entry_t *e = agent__outbox_take(ob, id, sizeof(id));
    bool found = e != NULL;
    agent__outbox_entry_free(&e);
    return found;
}

Test(agent_outbox, in_memory_entries_keep_submission_order_and_are_taken_by_id)
{
    agent_outbox_t *ob = NULL;
    cr_assert_eq(agent__outbox_new(&ob, NULL), 0);
    push(ob, 'a');
    push(ob, 'b');
    push(ob, 'c');
    push(ob, 'd');
    expect_tags(ob, "abcd");
    cr_expect(take(ob, 'c'), "an answer out of order takes its own entry");
    expect_tags(ob, "abd");
    cr_expect_not(take(ob, 'c'), "a second answer for it finds nothing");
    uint8_t id[RELAIS_MESSAGE_ID_LEN] = {'a'};
    cr_expect_null(agent__outbox_take(ob, id, 4), "an id of the wrong length matches nothing");
    agent_outbox_entry_t *e = agent__outbox_take_first(ob);
    cr_assert_not_null(e);
    cr_expect_eq(e->id[0], 'a');
    cr_expect_not(e->recovered);
    agent__outbox_entry_free(&e);
    cr_expect_null(e);
    expect_tags(ob, "bd");
    cr_expect_eq(agent__outbox_flush(ob), 0, "nothing to flush without a file");
    agent__outbox_destroy(&ob);
    cr_expect_null(ob);
}

Test(agent_outbox, only_the_newest_entry_can_be_taken_back)
{
    agent_outbox_t *ob = NULL;
    cr_assert_eq(agent__outbox_new(&ob, NULL), 0);
    push(ob, 'a');
    push(ob, 'b');
    uint8_t a[RELAIS_MESSAGE_ID_LEN] = {'a'}, b[RELAIS_MESSAGE_ID_LEN] = {'b'};
    cr_expect_not(agent__outbox_unpush(ob, a), "not the newest");
    cr_expect(agent__outbox_unpush(ob, b));
    expect_tags(ob, "a");
    push(ob, 'c');
    expect_tags(ob, "ac");
    agent__outbox_destroy(&ob);
}

static agent_state_t *state_open(void)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    return s;
}

Test(agent_outbox, unanswered_submissions_survive_reopening_in_order_and_recovered)
{
    agent_state_t *s = state_open();
    agent_outbox_t *ob = NULL;
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    push(ob, 'a');
    push(ob, 'b');
    push(ob, 'c');
    push(ob, 'd');
    cr_expect(take(ob, 'b'));
    cr_expect_eq(agent__outbox_flush(ob), 0);
    /* Answered but not flushed: the next push deletes it in its own transaction. */
    cr_expect(take(ob, 'a'));
    push(ob, 'e');
    expect_tags(ob, "cde");
    agent__outbox_destroy(&ob);
    agent__state_close(&s);

    s = state_open();
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    expect_tags(ob, "cde");
    for (const agent_outbox_entry_t *e = agent__outbox_first(ob); e; e = e->next) {
        cr_expect(e->recovered, "loaded from the file: a previous run submitted it");
        cr_expect_gt(e->seq, 0);
        cr_expect_null(e->cb);
        size_t len;
        uint8_t *want = submit_frame(e->id[0], &len);
        cr_expect(e->frame_len == len && memcmp(e->frame, want, len) == 0,
                  "the very bytes that were submitted are resent");
        free(want);
    }
    agent__outbox_destroy(&ob);
    agent__state_close(&s);
}

Test(agent_outbox, stopping_keeps_taken_first_entries_and_flushes_answered_ones)
{
    agent_state_t *s = state_open();
    agent_outbox_t *ob = NULL;
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    push(ob, 'a');
    push(ob, 'b');
    push(ob, 'c');
    cr_expect(take(ob, 'c'));
    /* The agent gives up on 'a' in this process only (it is stopping). */
    agent_outbox_entry_t *e = agent__outbox_take_first(ob);
    agent__outbox_entry_free(&e);
    agent__outbox_destroy(&ob); /* its last flush forgets 'c' */
    agent__state_close(&s);

    s = state_open();
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    expect_tags(ob, "ab");
    agent__outbox_destroy(&ob);
    agent__state_close(&s);
}

Test(agent_outbox, a_damaged_row_is_dropped_not_resent)
{
    agent_state_t *s = state_open();
    agent_outbox_t *ob = NULL;
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    push(ob, 'a');
    /* A row whose bytes are not the Submit frame of its id: garbage, and a frame of 'c'
     * stored under the id 'b'. */
    uint8_t idx[RELAIS_MESSAGE_ID_LEN] = {'x'}, idb[RELAIS_MESSAGE_ID_LEN] = {'b'};
    int64_t seq;
    cr_assert_eq(agent__state_outbox_insert(s, idx, (const uint8_t *)"\xff\x01", 2, NULL, 0, &seq),
                 0);
    size_t len;
    uint8_t *c = submit_frame('c', &len);
    cr_assert_eq(agent__state_outbox_insert(s, idb, c, len, NULL, 0, &seq), 0);
    free(c);
    push(ob, 'd');
    agent__outbox_destroy(&ob);
    agent__state_close(&s);

    s = state_open();
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    expect_tags(ob, "ad");
    agent__outbox_destroy(&ob);
    agent__state_close(&s);
    /* And deleted from the file, not skipped at every start. */
    s = state_open();
    int rows = 0;
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    rows = (int)agent__outbox_count(ob);
    agent__outbox_destroy(&ob);
    cr_expect_eq(rows, 2);
    agent__state_close(&s);
}

Test(agent_outbox, a_push_rolled_back_with_its_transaction_is_not_recovered)
{
    agent_state_t *s = state_open();
    agent_outbox_t *ob = NULL;
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    push(ob, 'a');
    /* send.c holds one transaction around a push and the conversation it changes; when
     * the send fails after the push, it rolls back and takes the entry back. */
    cr_assert_eq(agent__state_hold(s), 0);
    push(ob, 'b');
    cr_expect_eq(agent__state_release(s, RELAIS_EINVALID), RELAIS_EINVALID);
    uint8_t b[RELAIS_MESSAGE_ID_LEN] = {'b'};
    cr_expect(agent__outbox_unpush(ob, b));
    push(ob, 'c');
    agent__outbox_destroy(&ob);
    agent__state_close(&s);

    s = state_open();
    cr_assert_eq(agent__outbox_new(&ob, s), 0);
    expect_tags(ob, "ac");
    agent__outbox_destroy(&ob);
    agent__state_close(&s);
}
