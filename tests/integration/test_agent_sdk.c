/*
 * SDK integration tests: two agents of the SDK, each running its own loop on its own
 * thread in this process, exchange messages through a real relaisd over TCP.
 *
 * The test thread never touches an agent directly while it runs: it asks the agent's loop to
 * act through relais_agent_post(), and it learns what happened from an event record that
 * the agent's callbacks fill under a mutex and signal through a condition variable. Every
 * wait has a deadline; nothing here sleeps to synchronise. Each test ends by stopping both
 * agents and checking that run() returned 0 after reporting STOPPED.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "relais/agent.h"

#define WAIT_MS 15000
#define BROKER_START_MS 10000

#define ADDR_A "rpps:10101234567"
#define ADDR_B "rpps:20202345678"

/* What one agent's callbacks observed. Every field is under mu. */
typedef struct events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int states[5]; /* how many times each relais_agent_state_t was reported */
    int posted;    /* posted functions that ran */
    int send_rc;
    int accepted;
    int failed;
    int last_status;
    bool last_duplicate;
    uint8_t last_result_id[RELAIS_MESSAGE_ID_LEN];
    int delivered;
    char last_sender[RELAIS_ADDRESS_MAX];
    char last_text[128];
    unsigned last_attempt;
    uint8_t last_msg_id[RELAIS_MESSAGE_ID_LEN];
    uint8_t last_conversation[RELAIS_MESSAGE_ID_LEN];
    size_t last_conversation_len;
    uint8_t last_in_reply_to[RELAIS_MESSAGE_ID_LEN];
    size_t last_in_reply_to_len;
    int reply_rc;
    int receipts;
    int receipts_delivered;
    int receipts_processed;
    uint8_t last_receipt_msg[RELAIS_MESSAGE_ID_LEN];
    int withdrawn;
} events_t;

/* One SDK agent on its own thread. */
typedef struct tagent {
    relais_agent_t *agent;
    pthread_t thread;
    bool running;
    int run_rc;
    bool reply_to_notes; /* the Note handler answers "re: <text>" in the conversation */
    events_t ev;
} tagent_t;

static rt_broker_t broker;
static tagent_t ta, tb;

/* Waits until cond (an expression over ev's fields) holds, WAIT_MS at most. */
#define AWAIT(evp, cond)                                                                           \
    do {                                                                                           \
        events_t *ev_ = (evp);                                                                     \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_MONOTONIC, &dl_);                                                      \
        dl_.tv_sec += WAIT_MS / 1000;                                                              \
        pthread_mutex_lock(&ev_->mu);                                                              \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&ev_->cv, &ev_->mu, &dl_) == ETIMEDOUT) break;              \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&ev_->mu);                                                            \
        cr_assert(ok_, "timed out waiting for %s", #cond);                                         \
    } while (0)

/* Reads one counter of ev under its lock. */
static int read_int(events_t *ev, const int *field)
{
    pthread_mutex_lock(&ev->mu);
    int v = *field;
    pthread_mutex_unlock(&ev->mu);
    return v;
}

static void events_init(events_t *ev)
{
    memset(ev, 0, sizeof(*ev));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ev->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ev->mu, NULL);
}

static void events_fini(events_t *ev)
{
    pthread_cond_destroy(&ev->cv);
    pthread_mutex_destroy(&ev->mu);
}

#define ev_of(ud) (&((tagent_t *)(ud))->ev)

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    events_t *ev = ev_of(ud);
    pthread_mutex_lock(&ev->mu);
    if (state >= 1 && state <= 4) ev->states[state]++;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

static void on_sent(relais_agent_t *agent, const relais_send_result_t *r, void *ud)
{
    events_t *ev = ev_of(ud);
    pthread_mutex_lock(&ev->mu);
    if (r->status == 0)
        ev->accepted++;
    else
        ev->failed++;
    ev->last_status = r->status;
    ev->last_duplicate = r->duplicate;
    memcpy(ev->last_result_id, r->message_id, RELAIS_MESSAGE_ID_LEN);
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

static void copy_id(uint8_t out[RELAIS_MESSAGE_ID_LEN], size_t *out_len, ProtobufCBinaryData b)
{
    size_t n = b.len < RELAIS_MESSAGE_ID_LEN ? b.len : RELAIS_MESSAGE_ID_LEN;
    if (n) memcpy(out, b.data, n);
    if (out_len) *out_len = n;
}

static relais_outcome_t on_note(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    tagent_t *t = ud;
    events_t *ev = &t->ev;
    const Relais__V1__Envelope *env = d->envelope;
    int reply_rc = 0;
    if (t->reply_to_notes) {
        Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
        Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
        char text[160];
        snprintf(text, sizeof(text), "re: %s", env->note->text);
        note.text = text;
        reply.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
        reply.note = &note;
        reply_rc = relais_agent_reply(agent, env, &reply, NULL, on_sent, t);
    }
    pthread_mutex_lock(&ev->mu);
    ev->delivered++;
    snprintf(ev->last_sender, sizeof(ev->last_sender), "%s", env->sender);
    snprintf(ev->last_text, sizeof(ev->last_text), "%s", env->note->text);
    ev->last_attempt = d->attempt;
    copy_id(ev->last_msg_id, NULL, env->message_id);
    copy_id(ev->last_conversation, &ev->last_conversation_len, env->conversation_id);
    copy_id(ev->last_in_reply_to, &ev->last_in_reply_to_len, env->in_reply_to);
    ev->reply_rc = reply_rc;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
    return RELAIS_PROCESSED;
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    events_t *ev = ev_of(ud);
    pthread_mutex_lock(&ev->mu);
    ev->receipts++;
    if (r->status == RELAIS__V1__RECEIPT__STATUS__DELIVERED) ev->receipts_delivered++;
    if (r->status == RELAIS__V1__RECEIPT__STATUS__PROCESSED) ev->receipts_processed++;
    copy_id(ev->last_receipt_msg, NULL, r->message_id);
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

static void noop(relais_agent_t *agent, void *ud) {}

static void on_withdrawn(relais_agent_t *agent, const uint8_t *id, const char *reason, void *ud)
{
    events_t *ev = ev_of(ud);
    pthread_mutex_lock(&ev->mu);
    ev->withdrawn++;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

static void *agent_thread(void *arg)
{
    tagent_t *t = arg;
    t->run_rc = relais_agent_run(t->agent);
    return NULL;
}

static void tagent_start(tagent_t *t, const char *endpoint, const char *address,
                         bool reply_to_notes)
{
    memset(t, 0, sizeof(*t));
    t->reply_to_notes = reply_to_notes;
    events_init(&t->ev);
    relais_agent_options_t opts = {
        .endpoint = endpoint, .address = address, .software = "test-agent-sdk/1"};
    const rt_key_t *key = rt_key_for(&broker, address);
    if (key != NULL) {
        opts.curve_server_key = broker.server_pub;
        opts.curve_public_key = key->pub;
        opts.curve_secret_key = key->sec;
    }
    cr_assert_eq(relais_agent_new(&t->agent, &opts), 0);
    relais_agent_on_state(t->agent, on_state, t);
    relais_agent_on_receipt(t->agent, on_receipt, t);
    relais_agent_on_withdrawn(t->agent, on_withdrawn, t);
    cr_assert_eq(relais_agent_on(t->agent, RELAIS__V1__ENVELOPE__BODY_NOTE, on_note, t), 0);
    cr_assert_eq(pthread_create(&t->thread, NULL, agent_thread, t), 0);
    t->running = true;
}

/* Stops the agent, joins its thread, checks the orderly end and frees everything. */
static void tagent_stop(tagent_t *t)
{
    if (!t->running) return;
    relais_agent_stop(t->agent);
    pthread_join(t->thread, NULL);
    t->running = false;
    cr_expect_eq(t->run_rc, 0, "run() returned %d", t->run_rc);
    cr_expect_eq(t->ev.states[RELAIS_AGENT_STOPPED], 1, "STOPPED reported once");
    cr_expect_eq(relais_agent_post(t->agent, noop, NULL), RELAIS_ECLOSED);
    relais_agent_destroy(&t->agent);
    cr_expect_null(t->agent);
    events_fini(&t->ev);
}

/* A request to send a Note, carried to the sender's loop by relais_agent_post(). */
typedef struct send_req {
    tagent_t *from;
    const char *to;
    const char *text;
    bool receipts;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
} send_req_t;

static void do_send(relais_agent_t *agent, void *ud)
{
    send_req_t *req = ud;
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    Relais__V1__Receipt__Status wanted[] = {RELAIS__V1__RECEIPT__STATUS__DELIVERED,
                                            RELAIS__V1__RECEIPT__STATUS__PROCESSED};
    char *to[1] = {(char *)req->to};
    note.text = (char *)req->text;
    env.to = to;
    env.n_to = 1;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    env.note = &note;
    if (req->receipts) {
        env.receipts = wanted;
        env.n_receipts = 2;
    }
    int rc = relais_agent_send(agent, &env, req->id, on_sent, req->from);
    events_t *ev = &req->from->ev;
    pthread_mutex_lock(&ev->mu);
    ev->send_rc = rc;
    ev->posted++;
    pthread_cond_broadcast(&ev->cv);
    pthread_mutex_unlock(&ev->mu);
}

/* Has `from` send a Note and waits until relais_agent_send() returned on its loop. */
static void post_send(send_req_t *req)
{
    events_t *ev = &req->from->ev;
    int before = read_int(ev, &ev->posted);
    cr_assert_eq(relais_agent_post(req->from->agent, do_send, req), 0);
    AWAIT(ev, ev->posted > before);
    cr_assert_eq(read_int(ev, &ev->send_rc), 0);
}

static void setup(void)
{
    memset(&broker, 0, sizeof(broker));
    cr_assert_eq(rt_broker_start(&broker, NULL, BROKER_START_MS), 0);
}

static void teardown(void)
{
    tagent_stop(&ta);
    tagent_stop(&tb);
    if (broker.pid > 0) rt_broker_stop(&broker, 5000);
    rt_broker_cleanup(&broker);
}

TestSuite(agent_sdk, .init = setup, .fini = teardown, .timeout = 90);

Test(agent_sdk, a_sent_note_is_accepted_then_handled_with_the_sender_stamped)
{
    tagent_start(&ta, broker.endpoint, ADDR_A, false);
    tagent_start(&tb, broker.endpoint, ADDR_B, false);
    AWAIT(&ta.ev, ta.ev.states[RELAIS_AGENT_READY] >= 1);
    AWAIT(&tb.ev, tb.ev.states[RELAIS_AGENT_READY] >= 1);

    send_req_t req = {.from = &ta, .to = ADDR_B, .text = "hello b"};
    post_send(&req);
    AWAIT(&ta.ev, ta.ev.accepted == 1);
    cr_expect_eq(ta.ev.last_status, 0);
    cr_expect_not(ta.ev.last_duplicate);
    cr_expect_arr_eq(ta.ev.last_result_id, req.id, RELAIS_MESSAGE_ID_LEN);

    AWAIT(&tb.ev, tb.ev.delivered == 1);
    cr_expect_str_eq(tb.ev.last_sender, ADDR_A);
    cr_expect_str_eq(tb.ev.last_text, "hello b");
    cr_expect_eq(tb.ev.last_attempt, 1);
    cr_expect_arr_eq(tb.ev.last_msg_id, req.id, RELAIS_MESSAGE_ID_LEN);
}

Test(agent_sdk, a_reply_from_the_handler_stays_in_the_conversation)
{
    tagent_start(&ta, broker.endpoint, ADDR_A, false);
    tagent_start(&tb, broker.endpoint, ADDR_B, true);
    AWAIT(&ta.ev, ta.ev.states[RELAIS_AGENT_READY] >= 1);

    send_req_t req = {.from = &ta, .to = ADDR_B, .text = "can you see Mrs X?"};
    post_send(&req);
    AWAIT(&tb.ev, tb.ev.delivered == 1);
    cr_expect_eq(tb.ev.reply_rc, 0);
    AWAIT(&tb.ev, tb.ev.accepted == 1);

    AWAIT(&ta.ev, ta.ev.delivered == 1);
    cr_expect_str_eq(ta.ev.last_sender, ADDR_B);
    cr_expect_str_eq(ta.ev.last_text, "re: can you see Mrs X?");
    cr_expect_eq(ta.ev.last_in_reply_to_len, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(ta.ev.last_in_reply_to, req.id, RELAIS_MESSAGE_ID_LEN);
    /* The original had no conversation: its id becomes the conversation's. */
    cr_expect_eq(ta.ev.last_conversation_len, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(ta.ev.last_conversation, req.id, RELAIS_MESSAGE_ID_LEN);
}

Test(agent_sdk, receipts_reach_the_sender_and_are_acknowledged)
{
    tagent_start(&ta, broker.endpoint, ADDR_A, false);
    tagent_start(&tb, broker.endpoint, ADDR_B, false);
    AWAIT(&tb.ev, tb.ev.states[RELAIS_AGENT_READY] >= 1);

    send_req_t req = {.from = &ta, .to = ADDR_B, .text = "with receipts", .receipts = true};
    post_send(&req);
    AWAIT(&ta.ev, ta.ev.receipts_delivered == 1 && ta.ev.receipts_processed == 1);
    cr_expect_arr_eq(ta.ev.last_receipt_msg, req.id, RELAIS_MESSAGE_ID_LEN);

    /* A fresh session for A's address is owed nothing if A acknowledged both receipts:
     * anything still owed would be sent before the Accepted of a new submission. */
    tagent_stop(&ta);
    tagent_start(&ta, broker.endpoint, ADDR_A, false);
    send_req_t again = {.from = &ta, .to = ADDR_B, .text = "after restart"};
    post_send(&again);
    AWAIT(&ta.ev, ta.ev.accepted == 1);
    cr_expect_eq(read_int(&ta.ev, &ta.ev.receipts), 0, "receipts were not acknowledged");
}

Test(agent_sdk, a_note_sent_while_the_broker_is_down_is_delivered_once_it_starts)
{
    cr_assert_eq(rt_broker_stop(&broker, 5000), 0);
    tagent_start(&ta, broker.endpoint, ADDR_A, false);
    tagent_start(&tb, broker.endpoint, ADDR_B, false);

    send_req_t req = {.from = &ta, .to = ADDR_B, .text = "queued in the outbox"};
    post_send(&req);
    cr_expect_eq(read_int(&ta.ev, &ta.ev.accepted) + read_int(&ta.ev, &ta.ev.failed), 0);

    cr_assert_eq(rt_broker_start(&broker, NULL, BROKER_START_MS), 0);
    AWAIT(&ta.ev, ta.ev.accepted == 1);
    cr_expect_arr_eq(ta.ev.last_result_id, req.id, RELAIS_MESSAGE_ID_LEN);
    AWAIT(&tb.ev, tb.ev.delivered == 1);
    cr_expect_str_eq(tb.ev.last_text, "queued in the outbox");
}

Test(agent_sdk, agents_reconnect_and_say_hello_again_after_the_broker_is_killed)
{
    tagent_start(&ta, broker.endpoint, ADDR_A, false);
    tagent_start(&tb, broker.endpoint, ADDR_B, false);
    AWAIT(&ta.ev, ta.ev.states[RELAIS_AGENT_READY] == 1);
    AWAIT(&tb.ev, tb.ev.states[RELAIS_AGENT_READY] == 1);

    rt_broker_kill9(&broker);
    AWAIT(&ta.ev, ta.ev.states[RELAIS_AGENT_DISCONNECTED] >= 1);
    AWAIT(&tb.ev, tb.ev.states[RELAIS_AGENT_DISCONNECTED] >= 1);

    /* Submitted while the broker is gone: waits in the outbox for the next Welcome. */
    send_req_t req = {.from = &ta, .to = ADDR_B, .text = "across the restart"};
    post_send(&req);

    cr_assert_eq(rt_broker_start(&broker, NULL, BROKER_START_MS), 0);
    AWAIT(&ta.ev, ta.ev.states[RELAIS_AGENT_READY] == 2);
    AWAIT(&tb.ev, tb.ev.states[RELAIS_AGENT_READY] == 2);
    cr_expect_geq(ta.ev.states[RELAIS_AGENT_CONNECTING], 2, "hello sent on each session");
    AWAIT(&ta.ev, ta.ev.accepted == 1);
    AWAIT(&tb.ev, tb.ev.delivered == 1);
    cr_expect_str_eq(tb.ev.last_text, "across the restart");
    cr_expect_str_eq(tb.ev.last_sender, ADDR_A);
}

Test(agent_sdk, stop_fails_unconfirmed_submissions_and_ends_run_cleanly)
{
    cr_assert_eq(rt_broker_stop(&broker, 5000), 0);
    tagent_start(&ta, broker.endpoint, ADDR_A, false);
    send_req_t req = {.from = &ta, .to = ADDR_B, .text = "never accepted"};
    post_send(&req);

    relais_agent_stop(ta.agent);
    AWAIT(&ta.ev, ta.ev.states[RELAIS_AGENT_STOPPED] == 1);
    cr_expect_eq(ta.ev.failed, 1);
    cr_expect_eq(ta.ev.accepted, 0);
    cr_expect_eq(ta.ev.last_status, RELAIS_ECLOSED);
    cr_expect_arr_eq(ta.ev.last_result_id, req.id, RELAIS_MESSAGE_ID_LEN);
}

Test(agent_sdk, an_offer_reaches_the_handler_of_exactly_one_member_which_claimed_it)
{
    /* Two nurses of service:nurse@relais-test run the SDK; the default offer policy claims
     * what a handler exists for. Only the member whose claim wins sees the note. */
    static tagent_t tc;
    tagent_start(&tb, broker.endpoint, ADDR_B, false);
    tagent_start(&tc, broker.endpoint, "rpps:10109876543", false);
    AWAIT(&tb.ev, tb.ev.states[RELAIS_AGENT_READY] >= 1);
    AWAIT(&tc.ev, tc.ev.states[RELAIS_AGENT_READY] >= 1);
    rt_client_t sender = rt_session(&broker, "staff:claire.martin@cabinet-dupont", 8);
    rt_env_t e;
    rt_env_note(&e, "service:nurse@relais-test", "who takes this visit?");
    e.env.dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER;
    cr_assert_eq(rt_client_submit(&sender, &e, WAIT_MS), 0);
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_expect(&sender, RELAIS__V1__FRAME__KIND_RECEIPT, WAIT_MS, &r), 0);
    cr_expect_eq(r->receipt->status, RELAIS__V1__RECEIPT__STATUS__CLAIMED);
    bool b_won = strcmp(r->receipt->claimed_by, ADDR_B) == 0;
    relais_frame_free(&r);
    tagent_t *winner = b_won ? &tb : &tc, *loser = b_won ? &tc : &tb;
    AWAIT(&winner->ev, winner->ev.delivered == 1);
    cr_expect_str_eq(winner->ev.last_text, "who takes this visit?");
    /* The broker withdraws the offer from every other holder when it grants the claim:
     * once the loser has heard that, its handler can no longer run. */
    AWAIT(&loser->ev, loser->ev.withdrawn == 1);
    cr_expect_eq(read_int(&loser->ev, &loser->ev.delivered), 0, "one handler only");
    rt_client_close(&sender);
    tagent_stop(&tc);
}
