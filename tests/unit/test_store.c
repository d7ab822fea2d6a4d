/*
 * The store through its interface (store.h), below the socket: batches commit atomically and
 * are read back by page, count and expiry; duplicates are the commit's to find; final states
 * leave the queue; deliveries that may have been sent come back with a higher attempt after
 * a restart; conversations know their participants. And the delivery state machine's table
 * of legal transitions (transition.c).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broker.h"
#include "store.h"

static char dir[64], path[128];
static uv_loop_t loop;
static store_t *store;

static void open_store(void)
{
    char reason[256];
    cr_assert_eq(store_sqlite_open(&store, path, STORE_DURABLE_OS, NULL, &loop, reason,
                                   sizeof(reason)),
                 0, "%s", reason);
}

static void close_store(void)
{
    store->vt->detach(store);
    uv_run(&loop, UV_RUN_DEFAULT);
    store_close(&store);
}

static void setup(void)
{
    snprintf(dir, sizeof(dir), "/tmp/relais-store-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/relais.db", dir);
    uv_loop_init(&loop);
    open_store();
}

static void teardown(void)
{
    if (store != NULL) close_store();
    uv_loop_close(&loop);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(store, .init = setup, .fini = teardown, .timeout = 30);

typedef struct result {
    bool done;
    int status;
    uint64_t dups[8];
    size_t ndups;
} result_t;

static void on_done(const store_result_t *r, void *ud)
{
    result_t *out = ud;
    out->done = true;
    out->status = r->status;
    out->ndups = r->ndups < 8 ? r->ndups : 8;
    if (out->ndups > 0) memcpy(out->dups, r->dup_seqs, out->ndups * sizeof(uint64_t));
}

/* Commits the batch and runs the loop until its completion. */
static result_t commit(store_batch_t *batch)
{
    result_t r = {0};
    cr_assert_eq(store->vt->commit(store, batch, on_done, &r), 0);
    while (!r.done) uv_run(&loop, UV_RUN_ONCE);
    return r;
}

static void put_msg(store_batch_t *batch, uint64_t seq, const char *sender, uint8_t id_byte,
                    const char *const *to, size_t n_to, int64_t expires)
{
    store_op_t op = {.kind = STORE_MSG_PUT, .seq = seq, .at_ms = 1000, .expires_at_ms = expires};
    memset(op.message_id, id_byte, 16);
    op.address = strdup(sender);
    op.data = (uint8_t *)strdup("envelope");
    op.data_len = 8;
    store_batch_add(batch, &op);
    for (size_t i = 0; i < n_to; i++) {
        store_op_t d = {.kind = STORE_DELIVERY_SET, .seq = seq, .state = DELIVERY_STORED};
        d.address = strdup(to[i]);
        store_batch_add(batch, &d);
    }
}

static void set_state(store_batch_t *batch, uint64_t seq, const char *to, int state,
                      uint32_t attempt)
{
    store_op_t d = {.kind = STORE_DELIVERY_SET, .seq = seq, .state = state, .attempt = attempt};
    d.address = strdup(to);
    store_batch_add(batch, &d);
}

typedef struct rows {
    size_t n;
    uint64_t seq[16];
    uint32_t attempt[16];
    int state[16];
} rows_t;

static int on_row(void *ud, const store_row_t *row)
{
    rows_t *r = ud;
    cr_assert_lt(r->n, 16);
    cr_expect_eq(row->envelope_len, 8);
    r->seq[r->n] = row->seq;
    r->attempt[r->n] = row->attempt;
    r->state[r->n++] = row->state;
    return 0;
}

static rows_t page(const char *recipient)
{
    rows_t r = {0};
    cr_assert_eq(store->vt->page(store, recipient, 0, 0, INT64_MAX, 16, on_row, &r), 0);
    return r;
}

Test(store, a_committed_batch_pages_back_per_recipient_in_order)
{
    static const char *to[] = {"rpps:1", "rpps:2"};
    store_batch_t batch = {0};
    put_msg(&batch, 1, "staff:a", 1, to, 2, 1LL << 50);
    put_msg(&batch, 2, "staff:a", 2, to, 1, 1LL << 50);
    result_t r = commit(&batch);
    cr_assert_eq(r.status, 0);
    cr_expect_eq(r.ndups, 0);
    rows_t one = page("rpps:1"), two = page("rpps:2");
    cr_assert_eq(one.n, 2);
    cr_expect_eq(one.seq[0], 1);
    cr_expect_eq(one.seq[1], 2);
    cr_assert_eq(two.n, 1);
    uint64_t seq = 0, receipt = 0;
    cr_assert_eq(store->vt->max_ids(store, &seq, &receipt), 0);
    cr_expect_eq(seq, 2);
    store_batch_free(&batch);
}

Test(store, a_second_submission_of_the_same_sender_and_id_is_reported_and_stores_nothing)
{
    static const char *to[] = {"rpps:1"};
    store_batch_t batch = {0};
    put_msg(&batch, 1, "staff:a", 7, to, 1, 1LL << 50);
    cr_assert_eq(commit(&batch).status, 0);
    put_msg(&batch, 2, "staff:a", 7, to, 1, 1LL << 50); /* same pair, in a later batch */
    put_msg(&batch, 3, "staff:b", 7, to, 1, 1LL << 50); /* same id, another sender: new */
    put_msg(&batch, 4, "staff:b", 7, to, 1, 1LL << 50); /* and again in the same batch */
    result_t r = commit(&batch);
    cr_assert_eq(r.status, 0);
    cr_assert_eq(r.ndups, 2);
    cr_expect_eq(r.dups[0], 2);
    cr_expect_eq(r.dups[1], 4);
    rows_t one = page("rpps:1");
    cr_assert_eq(one.n, 2);
    cr_expect_eq(one.seq[0], 1);
    cr_expect_eq(one.seq[1], 3);
    store_batch_free(&batch);
}

Test(store, a_final_state_leaves_the_queue_and_the_message_goes_with_its_last_delivery)
{
    static const char *to[] = {"rpps:1", "rpps:2"};
    store_batch_t batch = {0};
    put_msg(&batch, 1, "staff:a", 1, to, 2, 1LL << 50);
    cr_assert_eq(commit(&batch).status, 0);
    set_state(&batch, 1, "rpps:1", DELIVERY_DELIVERING, 1);
    set_state(&batch, 1, "rpps:1", DELIVERY_ACKED, 1);
    set_state(&batch, 1, "rpps:2", DELIVERY_REFUSED, 1);
    cr_assert_eq(commit(&batch).status, 0);
    cr_expect_eq(page("rpps:1").n, 0);
    cr_expect_eq(page("rpps:2").n, 0);
    store_batch_free(&batch);
}

static int on_count(void *ud, const char *recipient, int priority, uint64_t count)
{
    *(uint64_t *)ud += count;
    return 0;
}

Test(store, after_a_restart_what_may_have_been_sent_comes_back_with_a_higher_attempt)
{
    static const char *to[] = {"rpps:online", "rpps:offline", "service:nurse@x"};
    store_batch_t batch = {0};
    store_op_t s = {.kind = STORE_SESSION_PUT, .at_ms = 1};
    s.address = strdup("rpps:online");
    store_batch_add(&batch, &s);
    put_msg(&batch, 1, "staff:a", 1, to, 3, 1LL << 50);
    set_state(&batch, 1, "rpps:online", DELIVERY_DELIVERING, 1);
    cr_assert_eq(commit(&batch).status, 0);
    close_store(); /* a crash, as far as the store can tell: the sessions row is still there */
    open_store();
    uint64_t bumped = 0;
    cr_assert_eq(store->vt->recover_attempts(store, &bumped), 0);
    cr_expect_eq(bumped, 2, "the online agent's delivery and the pool's");
    cr_expect_eq(page("rpps:online").attempt[0], 2);
    cr_expect_eq(page("rpps:offline").attempt[0], 0, "never sent: no session");
    cr_expect_eq(page("service:nurse@x").attempt[0], 1);
    cr_assert_eq(store->vt->recover_attempts(store, &bumped), 0);
    cr_expect_eq(bumped, 0, "the sessions were forgotten with the bump");
    uint64_t pending = 0;
    cr_assert_eq(store->vt->counts(store, on_count, &pending), 0);
    cr_expect_eq(pending, 3);
    store_batch_free(&batch);
}

Test(store, expired_deliveries_are_found_earliest_deadline_first)
{
    static const char *to[] = {"rpps:1"};
    store_batch_t batch = {0};
    put_msg(&batch, 1, "staff:a", 1, to, 1, 5000);
    put_msg(&batch, 2, "staff:a", 2, to, 1, 3000);
    put_msg(&batch, 3, "staff:a", 3, to, 1, 9000);
    cr_assert_eq(commit(&batch).status, 0);
    rows_t r = {0};
    cr_assert_eq(store->vt->expired(store, 6000, INT64_MAX, 10, on_row, &r), 0);
    cr_assert_eq(r.n, 2);
    cr_expect_eq(r.seq[0], 2);
    cr_expect_eq(r.seq[1], 1);
    store_batch_free(&batch);
}

Test(store, a_conversation_knows_its_participants_and_only_them)
{
    uint8_t conv[16];
    memset(conv, 9, 16);
    bool known = true, member = true;
    cr_assert_eq(store->vt->conversation(store, conv, 16, "rpps:1", NULL, &known, &member), 0);
    cr_expect_not(known);
    store_batch_t batch = {0};
    store_op_t op = {.kind = STORE_PARTICIPANT_PUT, .at_ms = 1};
    op.address = strdup("rpps:1");
    op.data = malloc(16);
    memcpy(op.data, conv, 16);
    op.data_len = 16;
    store_batch_add(&batch, &op);
    cr_assert_eq(commit(&batch).status, 0);
    cr_assert_eq(store->vt->conversation(store, conv, 16, "rpps:1", NULL, &known, &member), 0);
    cr_expect(known && member);
    cr_assert_eq(store->vt->conversation(store, conv, 16, "rpps:2", NULL, &known, &member), 0);
    cr_expect(known && !member, "known, but rpps:2 takes no part");
    cr_assert_eq(store->vt->conversation(store, conv, 16, "rpps:2", "rpps:1", &known, &member), 0);
    cr_expect(member, "acting for a participant counts");
    store_batch_free(&batch);
}

/* ---- the transition table ---------------------------------------------------------- */

Test(transitions, each_event_leaves_only_the_states_the_design_allows)
{
    static const struct {
        delivery_event_t ev;
        unsigned from; /* bits of delivery_state_t */
        delivery_state_t to;
    } rules[] = {
        {DELIVERY_EV_SEND, 1u << DELIVERY_STORED | 1u << DELIVERY_REDELIVERING,
         DELIVERY_DELIVERING},
        {DELIVERY_EV_CLAIM, 1u << DELIVERY_STORED | 1u << DELIVERY_REDELIVERING,
         DELIVERY_DELIVERING},
        {DELIVERY_EV_ACK, 1u << DELIVERY_DELIVERING, DELIVERY_ACKED},
        {DELIVERY_EV_REFUSE, 1u << DELIVERY_DELIVERING, DELIVERY_REFUSED},
        {DELIVERY_EV_PASS_ON, 1u << DELIVERY_DELIVERING, DELIVERY_REDELIVERING},
        {DELIVERY_EV_RETRY_LATER, 1u << DELIVERY_DELIVERING, DELIVERY_REDELIVERING},
        {DELIVERY_EV_SESSION_LOST, 1u << DELIVERY_DELIVERING, DELIVERY_REDELIVERING},
        {DELIVERY_EV_ACK_TIMEOUT, 1u << DELIVERY_DELIVERING, DELIVERY_REDELIVERING},
        {DELIVERY_EV_EXPIRE,
         1u << DELIVERY_STORED | 1u << DELIVERY_REDELIVERING | 1u << DELIVERY_DELIVERING,
         DELIVERY_EXPIRED},
    };
    cr_assert_eq(sizeof(rules) / sizeof(rules[0]), DELIVERY_EVENT_COUNT, "every event has a rule");
    for (size_t i = 0; i < DELIVERY_EVENT_COUNT; i++) {
        for (int st = DELIVERY_STORED; st <= DELIVERY_REFUSED; st++) {
            delivery_state_t to = (delivery_state_t)-1;
            bool legal = delivery__legal((delivery_state_t)st, rules[i].ev, &to);
            bool want = rules[i].from & (1u << st);
            cr_expect_eq(legal, want, "event %zu from %s", i,
                         delivery_state_name((delivery_state_t)st));
            if (legal) cr_expect_eq(to, rules[i].to);
        }
    }
    cr_expect_not(delivery__legal(DELIVERY_ACKED, DELIVERY_EV_SEND, NULL), "final is final");
    cr_expect_not(delivery__legal(DELIVERY_STORED, DELIVERY_EVENT_COUNT, NULL));
}
