/*
 * SDK session tests against a scripted broker: the test thread plays the broker on a raw
 * ZeroMQ ROUTER socket and sends exactly the frames a case needs — a redelivered duplicate,
 * an Error{NO_SESSION}, a fatal error, a broker that goes silent — which a real relaisd
 * would not produce on demand. The agent runs on its own thread (the shared fixture of
 * tests/support/agent_thread.h); the test learns what it did from the frames it sends and
 * from an event record its callbacks fill under the fixture's mutex. Every
 * wait has a deadline (zmq_poll or a timed condition wait); nothing sleeps to synchronise.
 * The last cases need no broker at all: timers, posts from many threads, destroy without
 * run, and an agent on the embedding program's loop.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "agent_thread.h"
#include "relais/agent.h"

#define WAIT_MS RT_AGENT_WAIT_MS
#define ADDR_AGENT "rpps:10101234567"
#define ADDR_PEER "finess:350000011"

/* ---- What the agent's callbacks observed ------------------------------------------ */

/* Every field is under ta's lock (the agent's connection states are ta.states). */
typedef struct events {
    int posted;
    int send_rc;
    int accepted;
    int failed;
    int last_status;
    char last_reason[RELAIS_REASON_MAX];
    int handled;
    int fallback_handled;
    int receipts;
    int timers_fired[4];
    int timer_cancel_rc;
    int timer_recancel_rc;
    int foreign_thread_posts; /* posted functions that ran off the loop thread */
} events_t;

/* The agent on its own thread (tests/support/agent_thread.h). */
static rt_agent_t ta;

/* Waits until cond (over ev and ta, under ta's lock) holds; fails the test after
 * RT_AGENT_WAIT_MS. */
#define AWAIT(cond) RT_AWAIT(&ta, cond)

/* Runs stmt on ev's fields under ta's lock and wakes waiters. */
#define RECORD(stmt) rt_agent_record(&ta, stmt)

static events_t ev;
static relais_outcome_t handler_outcomes[4]; /* outcome of the n-th call, then PROCESSED */

static void on_sent(relais_agent_t *a, const relais_send_result_t *r, void *ud)
{
    RECORD({
        if (r->status == 0)
            ev.accepted++;
        else
            ev.failed++;
        ev.last_status = r->status;
        snprintf(ev.last_reason, sizeof(ev.last_reason), "%s", r->reason);
    });
}

static relais_outcome_t on_note(relais_agent_t *a, relais_delivery_t *d, void *ud)
{
    int n;
    RECORD(n = ev.handled++);
    relais_outcome_t o = n < 4 && handler_outcomes[n] ? handler_outcomes[n] : RELAIS_PROCESSED;
    if (o == RELAIS_REFUSED) snprintf(d->reason, sizeof(d->reason), "not my patient");
    return o;
}

static relais_outcome_t on_anything(relais_agent_t *a, relais_delivery_t *d, void *ud)
{
    RECORD(ev.fallback_handled++);
    return RELAIS_PROCESSED;
}

static void register_handlers(rt_agent_t *t)
{
    cr_assert_eq(relais_agent_on(t->agent, RELAIS__V1__ENVELOPE__BODY_NOTE, on_note, NULL), 0);
    cr_assert_eq(relais_agent_on(t->agent, 9999, on_note, NULL), RELAIS_ECONFIG);
}

/* Creates the agent (not running yet) with its Note handler. */
static void agent_open(const char *endpoint, unsigned heartbeat_ms)
{
    relais_agent_options_t opts = {.endpoint = endpoint,
                                   .address = ADDR_AGENT,
                                   .software = "test-agent-session/1",
                                   .credit = 8,
                                   .heartbeat_ms = heartbeat_ms};
    rt_agent_create(&ta, &opts, register_handlers, NULL);
}

static void agent_start_thread(void)
{
    rt_agent_run_thread(&ta);
}

/* Stops the agent (run() must return 0 after STOPPED) and frees it. */
static void agent_close(void)
{
    if (!ta.inited) return;
    rt_agent_stop(&ta);
    cr_expect_null(ta.agent);
}

/* ---- The scripted broker ------------------------------------------------------------ */

typedef struct fake {
    void *ctx;
    void *router;
    char endpoint[128];
    uint8_t rid[256]; /* routing id of the last peer heard from */
    size_t rid_len;
} fake_t;

static fake_t fb;

static void fake_open(fake_t *f)
{
    memset(f, 0, sizeof(*f));
    f->ctx = zmq_ctx_new();
    f->router = zmq_socket(f->ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(f->router, ZMQ_LINGER, &zero, sizeof(zero));
    cr_assert_eq(zmq_bind(f->router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof(f->endpoint);
    zmq_getsockopt(f->router, ZMQ_LAST_ENDPOINT, f->endpoint, &len);
}

static void fake_close(fake_t *f)
{
    if (!f->ctx) return;
    zmq_close(f->router);
    zmq_ctx_term(f->ctx);
    memset(f, 0, sizeof(*f));
}

/* Receives one frame within timeout_ms; remembers who sent it. */
static Relais__V1__Frame *fake_recv(fake_t *f, int timeout_ms)
{
    zmq_pollitem_t item = {.socket = f->router, .events = ZMQ_POLLIN};
    if (zmq_poll(&item, 1, timeout_ms) <= 0) return NULL;
    int n = zmq_recv(f->router, f->rid, sizeof(f->rid), 0);
    cr_assert_gt(n, 0);
    f->rid_len = (size_t)n;
    zmq_msg_t body;
    zmq_msg_init(&body);
    cr_assert_geq(zmq_msg_recv(&body, f->router, 0), 0);
    Relais__V1__Frame *frame = NULL;
    cr_assert_eq(relais_frame_decode(zmq_msg_data(&body), zmq_msg_size(&body),
                                     RELAIS_DEFAULT_MAX_FRAME_BYTES, &frame, NULL, 0),
                 0);
    zmq_msg_close(&body);
    return frame;
}

/* Receives until a frame of `kind` arrives (Pings are skipped); fails the test on timeout. */
static Relais__V1__Frame *fake_expect(fake_t *f, int kind)
{
    for (;;) {
        Relais__V1__Frame *frame = fake_recv(f, WAIT_MS);
        cr_assert_not_null(frame, "no %s within %d ms", relais_frame_kind_name(kind), WAIT_MS);
        if ((int)frame->kind_case == kind) return frame;
        cr_assert_eq(frame->kind_case, RELAIS__V1__FRAME__KIND_PING, "expected %s, got %s",
                     relais_frame_kind_name(kind), relais_frame_kind_name(frame->kind_case));
        relais_frame_free(&frame);
    }
}

static void fake_send(fake_t *f, const Relais__V1__Frame *frame)
{
    uint8_t *buf;
    size_t len;
    cr_assert_eq(relais_frame_encode(frame, &buf, &len), 0);
    cr_assert_eq(zmq_send(f->router, f->rid, f->rid_len, ZMQ_SNDMORE), (int)f->rid_len);
    cr_assert_eq(zmq_send(f->router, buf, len, 0), (int)len);
    free(buf);
}

static void fake_welcome(fake_t *f, unsigned heartbeat_ms)
{
    Relais__V1__Welcome w = RELAIS__V1__WELCOME__INIT;
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    w.address = ADDR_AGENT;
    w.broker_id = "fake";
    w.heartbeat_ms = heartbeat_ms;
    frame.kind_case = RELAIS__V1__FRAME__KIND_WELCOME;
    frame.welcome = &w;
    fake_send(f, &frame);
}

/* Waits for the agent's Hello, answers Welcome, waits until the agent reports READY. */
static void fake_session(fake_t *f, unsigned heartbeat_ms)
{
    int ready = 0;
    RECORD(ready = ta.states[RELAIS_AGENT_READY]);
    Relais__V1__Frame *hello = fake_expect(f, RELAIS__V1__FRAME__KIND_HELLO);
    cr_expect_eq(hello->hello->protocol_version, 1);
    cr_expect_str_eq(hello->hello->address, ADDR_AGENT);
    cr_expect_str_eq(hello->hello->software, "test-agent-session/1");
    cr_expect_eq(hello->hello->credit, 8);
    relais_frame_free(&hello);
    fake_welcome(f, heartbeat_ms);
    AWAIT(ta.states[RELAIS_AGENT_READY] > ready);
}

static void fake_deliver(fake_t *f, const uint8_t id[RELAIS_MESSAGE_ID_LEN], int body_case,
                         unsigned attempt)
{
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    Relais__V1__AppointmentCancel cancel = RELAIS__V1__APPOINTMENT_CANCEL__INIT;
    Relais__V1__Deliver d = RELAIS__V1__DELIVER__INIT;
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    char *to[1] = {ADDR_AGENT};
    env.message_id.data = (uint8_t *)id;
    env.message_id.len = RELAIS_MESSAGE_ID_LEN;
    env.sender = ADDR_PEER;
    env.to = to;
    env.n_to = 1;
    env.created_at_ms = relais_now_ms();
    env.body_case = body_case;
    if (body_case == RELAIS__V1__ENVELOPE__BODY_NOTE) {
        note.text = "text";
        env.note = &note;
    } else {
        env.appointment_cancel = &cancel;
    }
    d.envelope = &env;
    d.attempt = attempt;
    frame.kind_case = RELAIS__V1__FRAME__KIND_DELIVER;
    frame.deliver = &d;
    fake_send(f, &frame);
}

/* Expects the Ack of message id with outcome; returns nothing, fails the test otherwise. */
static void expect_ack(fake_t *f, const uint8_t id[RELAIS_MESSAGE_ID_LEN], int outcome,
                       const char *reason)
{
    Relais__V1__Frame *ack = fake_expect(f, RELAIS__V1__FRAME__KIND_ACK);
    cr_expect_eq(ack->ack->message_id.len, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(ack->ack->message_id.data, id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_eq(ack->ack->outcome, outcome);
    cr_expect_eq(ack->ack->receipt_id, 0);
    if (reason) cr_expect_str_eq(ack->ack->reason, reason);
    relais_frame_free(&ack);
}

static void fake_error(fake_t *f, int code, bool fatal, const uint8_t *id)
{
    Relais__V1__Error e = RELAIS__V1__ERROR__INIT;
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    e.code = code;
    e.reason = "scripted";
    e.fatal = fatal;
    if (id) {
        e.message_id.data = (uint8_t *)id;
        e.message_id.len = RELAIS_MESSAGE_ID_LEN;
    }
    frame.kind_case = RELAIS__V1__FRAME__KIND_ERROR;
    frame.error = &e;
    fake_send(f, &frame);
}

/* ---- Sending through the agent's loop --------------------------------------------- */

typedef struct send_req {
    int to_count; /* 0 makes an invalid envelope */
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
} send_req_t;

static void do_send(relais_agent_t *a, void *ud)
{
    send_req_t *req = ud;
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    char *to[1] = {ADDR_PEER};
    note.text = "hello";
    env.to = to;
    env.n_to = (size_t)req->to_count;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    env.note = &note;
    int rc = relais_agent_send(a, &env, req->id, on_sent, NULL);
    RECORD({
        ev.send_rc = rc;
        ev.posted++;
    });
}

static int post_send(send_req_t *req)
{
    int before;
    RECORD(before = ev.posted);
    cr_assert_eq(relais_agent_post(ta.agent, do_send, req), 0);
    AWAIT(ev.posted > before);
    return ev.send_rc;
}

static Relais__V1__Frame *expect_submit(fake_t *f, const uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    Relais__V1__Frame *s = fake_expect(f, RELAIS__V1__FRAME__KIND_SUBMIT);
    cr_expect_eq(s->submit->envelope->message_id.len, RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(s->submit->envelope->message_id.data, id, RELAIS_MESSAGE_ID_LEN);
    return s;
}

/* ---- Fixtures ------------------------------------------------------------------------ */

static void setup(void)
{
    memset(&ev, 0, sizeof(ev));
    memset(handler_outcomes, 0, sizeof(handler_outcomes));
    fake_open(&fb);
}

static void teardown(void)
{
    agent_close();
    rt_agent_free(&ta);
    fake_close(&fb);
}

/* An agent in session with the scripted broker; heartbeats far apart unless a case wants
 * them. */
static void setup_session(void)
{
    setup();
    agent_open(fb.endpoint, 60000);
    agent_start_thread();
    fake_session(&fb, 60000);
}

TestSuite(agent_session, .init = setup_session, .fini = teardown, .timeout = 60);

Test(agent_session, a_redelivered_duplicate_is_acked_without_calling_the_handler_again)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    relais_uuid7(id);
    fake_deliver(&fb, id, RELAIS__V1__ENVELOPE__BODY_NOTE, 1);
    expect_ack(&fb, id, RELAIS__V1__ACK__OUTCOME__PROCESSED, "");
    fake_deliver(&fb, id, RELAIS__V1__ENVELOPE__BODY_NOTE, 2);
    expect_ack(&fb, id, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
    fake_deliver(&fb, id, RELAIS__V1__ENVELOPE__BODY_NOTE, 1);
    expect_ack(&fb, id, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
    cr_expect_eq(ev.handled, 1);
}

Test(agent_session, a_refusal_is_repeated_for_a_duplicate_and_retry_later_reaches_the_handler)
{
    uint8_t refused[RELAIS_MESSAGE_ID_LEN], retried[RELAIS_MESSAGE_ID_LEN];
    relais_uuid7(refused);
    relais_uuid7(retried);
    handler_outcomes[0] = RELAIS_REFUSED;
    handler_outcomes[1] = RELAIS_RETRY_LATER;
    fake_deliver(&fb, refused, RELAIS__V1__ENVELOPE__BODY_NOTE, 1);
    expect_ack(&fb, refused, RELAIS__V1__ACK__OUTCOME__REFUSED, "not my patient");
    fake_deliver(&fb, refused, RELAIS__V1__ENVELOPE__BODY_NOTE, 2);
    expect_ack(&fb, refused, RELAIS__V1__ACK__OUTCOME__REFUSED, NULL);

    fake_deliver(&fb, retried, RELAIS__V1__ENVELOPE__BODY_NOTE, 1);
    expect_ack(&fb, retried, RELAIS__V1__ACK__OUTCOME__RETRY_LATER, NULL);
    fake_deliver(&fb, retried, RELAIS__V1__ENVELOPE__BODY_NOTE, 2);
    expect_ack(&fb, retried, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
    cr_expect_eq(ev.handled, 3);
}

Test(agent_session, a_body_nobody_handles_is_refused_with_a_reason)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    relais_uuid7(id);
    fake_deliver(&fb, id, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL, 1);
    expect_ack(&fb, id, RELAIS__V1__ACK__OUTCOME__REFUSED, "no handler for appointment_cancel");
    cr_expect_eq(ev.handled, 0);
}

static void install_fallback(relais_agent_t *a, void *ud)
{
    relais_agent_on(a, 0, on_anything, NULL);
    RECORD(ev.posted++);
}

Test(agent_session, the_fallback_handler_takes_bodies_without_their_own)
{
    cr_assert_eq(relais_agent_post(ta.agent, install_fallback, NULL), 0);
    AWAIT(ev.posted == 1);
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    relais_uuid7(id);
    fake_deliver(&fb, id, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL, 1);
    expect_ack(&fb, id, RELAIS__V1__ACK__OUTCOME__PROCESSED, "");
    cr_expect_eq(ev.fallback_handled, 1);
    cr_expect_eq(ev.handled, 0);
}

Test(agent_session, receipts_are_acknowledged_even_without_a_receipt_handler)
{
    Relais__V1__Receipt r = RELAIS__V1__RECEIPT__INIT;
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    relais_uuid7(id);
    r.message_id.data = id;
    r.message_id.len = sizeof(id);
    r.recipient = ADDR_PEER;
    r.status = RELAIS__V1__RECEIPT__STATUS__DELIVERED;
    r.receipt_id = 77;
    frame.kind_case = RELAIS__V1__FRAME__KIND_RECEIPT;
    frame.receipt = &r;
    fake_send(&fb, &frame);
    Relais__V1__Frame *ack = fake_expect(&fb, RELAIS__V1__FRAME__KIND_ACK);
    cr_expect_eq(ack->ack->receipt_id, 77);
    cr_expect_eq(ack->ack->outcome, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    relais_frame_free(&ack);
}

Test(agent_session, a_ping_from_the_broker_is_answered_with_its_time)
{
    Relais__V1__Ping p = RELAIS__V1__PING__INIT;
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    p.at_ms = 123456;
    frame.kind_case = RELAIS__V1__FRAME__KIND_PING;
    frame.ping = &p;
    fake_send(&fb, &frame);
    Relais__V1__Frame *pong = fake_expect(&fb, RELAIS__V1__FRAME__KIND_PONG);
    cr_expect_eq(pong->pong->at_ms, 123456);
    relais_frame_free(&pong);
}

Test(agent_session, submissions_are_answered_once_and_resent_in_order_after_a_new_hello)
{
    send_req_t reqs[3] = {{.to_count = 1}, {.to_count = 1}, {.to_count = 1}};
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(post_send(&reqs[i]), 0);
        Relais__V1__Frame *s = expect_submit(&fb, reqs[i].id);
        cr_expect_str_eq(s->submit->envelope->sender, "", "the broker stamps the sender");
        cr_expect_gt(s->submit->envelope->created_at_ms, 0);
        relais_frame_free(&s);
    }
    /* The broker lost the session: a new Hello, and all three again, in order. */
    fake_error(&fb, RELAIS__V1__ERROR__ERROR_CODE__NO_SESSION, false, NULL);
    fake_session(&fb, 60000);
    cr_expect_eq(ta.states[RELAIS_AGENT_CONNECTING], 2);
    for (int i = 0; i < 3; i++) {
        Relais__V1__Frame *s = expect_submit(&fb, reqs[i].id);
        relais_frame_free(&s);
    }

    Relais__V1__Accepted acc = RELAIS__V1__ACCEPTED__INIT;
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    frame.kind_case = RELAIS__V1__FRAME__KIND_ACCEPTED;
    frame.accepted = &acc;
    acc.message_id.len = RELAIS_MESSAGE_ID_LEN;
    for (int round = 0; round < 2; round++) {
        for (int i = 0; i < 3; i++) {
            acc.message_id.data = reqs[i].id;
            acc.duplicate = round == 1;
            fake_send(&fb, &frame);
        }
    }
    AWAIT(ev.accepted == 3);
    /* A Ping round trip orders after every Accepted above: no fourth callback came. */
    Relais__V1__Ping p = RELAIS__V1__PING__INIT;
    Relais__V1__Frame ping = RELAIS__V1__FRAME__INIT;
    ping.kind_case = RELAIS__V1__FRAME__KIND_PING;
    ping.ping = &p;
    fake_send(&fb, &ping);
    Relais__V1__Frame *pong = fake_expect(&fb, RELAIS__V1__FRAME__KIND_PONG);
    relais_frame_free(&pong);
    cr_expect_eq(ev.accepted, 3);
    cr_expect_eq(ev.failed, 0);
}

Test(agent_session, a_rejection_reports_the_code_and_the_reason)
{
    send_req_t req = {.to_count = 1};
    cr_assert_eq(post_send(&req), 0);
    Relais__V1__Frame *s = expect_submit(&fb, req.id);
    relais_frame_free(&s);
    Relais__V1__Rejected rej = RELAIS__V1__REJECTED__INIT;
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    rej.message_id.data = req.id;
    rej.message_id.len = RELAIS_MESSAGE_ID_LEN;
    rej.code = RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN;
    rej.reason = "nurses may not send this";
    frame.kind_case = RELAIS__V1__FRAME__KIND_REJECTED;
    frame.rejected = &rej;
    fake_send(&fb, &frame);
    AWAIT(ev.failed == 1);
    cr_expect_eq(ev.last_status, RELAIS_EFORBIDDEN);
    cr_expect_str_eq(ev.last_reason, "nurses may not send this");

    /* An Error naming a submission fails it the same way. */
    send_req_t second = {.to_count = 1};
    cr_assert_eq(post_send(&second), 0);
    s = expect_submit(&fb, second.id);
    relais_frame_free(&s);
    fake_error(&fb, RELAIS__V1__ERROR__ERROR_CODE__TOO_LARGE, false, second.id);
    AWAIT(ev.failed == 2);
    cr_expect_eq(ev.last_status, RELAIS_ETOOLARGE);
}

Test(agent_session, an_invalid_envelope_is_refused_and_its_callback_never_called)
{
    send_req_t req = {.to_count = 0};
    cr_expect_eq(post_send(&req), RELAIS_EINVALID);
    agent_close();
    /* Had it been queued, stopping would have failed it with RELAIS_ECLOSED. */
    cr_expect_eq(ev.failed + ev.accepted, 0);
}

Test(agent_session, a_fatal_error_makes_the_agent_start_a_fresh_session)
{
    uint8_t first_rid[256];
    size_t first_len = fb.rid_len;
    memcpy(first_rid, fb.rid, first_len);
    fake_error(&fb, RELAIS__V1__ERROR__ERROR_CODE__INTERNAL, true, NULL);
    AWAIT(ta.states[RELAIS_AGENT_DISCONNECTED] == 1);
    fake_session(&fb, 60000);
    cr_expect(fb.rid_len != first_len || memcmp(fb.rid, first_rid, first_len) != 0,
              "a fresh socket has a fresh routing id");
}

Test(agent_session, a_silent_broker_is_abandoned_for_a_fresh_socket)
{
    /* A new session whose Welcome asks for 100 ms heartbeats; then say nothing. */
    fake_error(&fb, RELAIS__V1__ERROR__ERROR_CODE__NO_SESSION, false, NULL);
    fake_session(&fb, 100);
    uint8_t first_rid[256];
    size_t first_len = fb.rid_len;
    memcpy(first_rid, fb.rid, first_len);
    /* The agent pings when idle, then gives up after three silent intervals. */
    Relais__V1__Frame *ping = fake_expect(&fb, RELAIS__V1__FRAME__KIND_PING);
    relais_frame_free(&ping);
    AWAIT(ta.states[RELAIS_AGENT_DISCONNECTED] == 1);
    Relais__V1__Frame *hello = fake_expect(&fb, RELAIS__V1__FRAME__KIND_HELLO);
    relais_frame_free(&hello);
    cr_expect(fb.rid_len != first_len || memcmp(fb.rid, first_rid, first_len) != 0,
              "a fresh socket has a fresh routing id");
}

/* ---- Without a broker ---------------------------------------------------------------- */

TestSuite(agent_local, .init = setup, .fini = teardown, .timeout = 60);

static uint64_t cancelled_id;

static void fire(relais_agent_t *a, void *ud)
{
    int which = (int)(intptr_t)ud;
    int again = which == 2 ? relais_agent_timer_cancel(a, cancelled_id) : 0;
    RECORD({
        ev.timers_fired[which]++;
        if (which == 2) ev.timer_recancel_rc = again;
    });
}

static void set_timers(relais_agent_t *a, void *ud)
{
    uint64_t id;
    relais_agent_timer(a, 10, fire, (void *)(intptr_t)0, &id);
    relais_agent_timer(a, 20, fire, (void *)(intptr_t)1, &cancelled_id);
    relais_agent_timer(a, 40, fire, (void *)(intptr_t)2, &id);
    relais_agent_timer(a, 3600 * 1000, fire, (void *)(intptr_t)3, &id);
    int rc = relais_agent_timer_cancel(a, cancelled_id);
    RECORD(ev.timer_cancel_rc = rc);
}

Test(agent_local, timers_fire_once_and_a_cancelled_one_never)
{
    agent_open(fb.endpoint, 60000);
    agent_start_thread();
    cr_assert_eq(relais_agent_post(ta.agent, set_timers, NULL), 0);
    AWAIT(ev.timers_fired[2] == 1);
    cr_expect_eq(ev.timer_cancel_rc, 0);
    cr_expect_eq(ev.timer_recancel_rc, -ENOENT);
    cr_expect_eq(ev.timers_fired[0], 1);
    cr_expect_eq(ev.timers_fired[1], 0);
    /* The hour-long timer is closed by stop without firing, and leaks nothing. */
    agent_close();
    cr_expect_eq(ev.timers_fired[3], 0);
}

static void count_post(relais_agent_t *a, void *ud)
{
    bool foreign = !pthread_equal(pthread_self(), ta.thread);
    RECORD({
        ev.posted++;
        if (foreign) ev.foreign_thread_posts++;
    });
}

static void *post_many(void *arg)
{
    for (int i = 0; i < 250; i++)
        if (relais_agent_post(ta.agent, count_post, NULL) != 0) return (void *)1;
    return NULL;
}

Test(agent_local, posts_from_many_threads_each_run_once_on_the_loop_thread)
{
    agent_open(fb.endpoint, 60000);
    agent_start_thread();
    pthread_t threads[4];
    for (int i = 0; i < 4; i++) pthread_create(&threads[i], NULL, post_many, NULL);
    for (int i = 0; i < 4; i++) {
        void *ret;
        pthread_join(threads[i], &ret);
        cr_expect_null(ret);
    }
    AWAIT(ev.posted == 1000);
    cr_expect_eq(ev.foreign_thread_posts, 0);
}

Test(agent_local, destroy_without_run_fails_queued_submissions_and_frees_everything)
{
    agent_open(fb.endpoint, 60000);
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    char *to[1] = {ADDR_PEER};
    note.text = "never sent";
    env.to = to;
    env.n_to = 1;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    env.note = &note;
    cr_assert_eq(relais_agent_send(ta.agent, &env, NULL, on_sent, NULL), 0);
    relais_agent_destroy(&ta.agent);
    cr_expect_null(ta.agent);
    cr_expect_eq(ev.failed, 1);
    cr_expect_eq(ev.last_status, RELAIS_ECLOSED);
}

Test(agent_local, an_agent_on_the_embedding_programs_loop_stops_and_lets_it_end)
{
    uv_loop_t loop;
    cr_assert_eq(uv_loop_init(&loop), 0);
    relais_agent_options_t opts = {.endpoint = fb.endpoint, .address = ADDR_AGENT, .loop = &loop};
    rt_agent_create(&ta, &opts, NULL, NULL);
    relais_agent_t *agent = ta.agent;
    cr_expect_eq(relais_agent_loop(agent), &loop);
    cr_expect_eq(relais_agent_run(agent), RELAIS_ECONFIG);
    cr_assert_eq(relais_agent_start(agent), 0);
    /* Serve the Hello from this thread: the loop must turn for the agent to send it. */
    while (ta.states[RELAIS_AGENT_CONNECTING] == 0) uv_run(&loop, UV_RUN_ONCE);
    Relais__V1__Frame *hello = fake_expect(&fb, RELAIS__V1__FRAME__KIND_HELLO);
    relais_frame_free(&hello);
    fake_welcome(&fb, 60000);
    while (!relais_agent_ready(agent)) uv_run(&loop, UV_RUN_ONCE);
    cr_expect_str_eq(relais_agent_address(agent), ADDR_AGENT);
    relais_agent_stop(agent);
    cr_expect_eq(uv_run(&loop, UV_RUN_DEFAULT), 0);
    cr_expect_eq(ta.states[RELAIS_AGENT_STOPPED], 1);
    relais_agent_destroy(&ta.agent);
    cr_expect_eq(uv_loop_close(&loop), 0);
}

Test(agent_local, options_without_endpoint_or_with_a_bad_address_are_refused)
{
    relais_agent_options_t no_endpoint = {.address = ADDR_AGENT};
    relais_agent_options_t bad_address = {.endpoint = fb.endpoint, .address = "rpps:123"};
    relais_agent_t *agent = NULL;
    cr_expect_eq(relais_agent_new(&agent, &no_endpoint), RELAIS_ECONFIG);
    cr_expect_null(agent);
    cr_expect_eq(relais_agent_new(&agent, &bad_address), RELAIS_ECONFIG);
    cr_expect_null(agent);
}
