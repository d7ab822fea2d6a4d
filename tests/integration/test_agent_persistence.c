/*
 * The agent's state file: unconfirmed submissions and handled deliveries survive the
 * agent's stop and its crash, and come back in the next run.
 *
 * The test thread plays the broker on a raw ROUTER socket, as in test_agent_session.c, so
 * that it decides when a submission is answered and when a delivery comes again. A crash
 * is a real one: a forked child builds an agent on the state file, submits, and kills
 * itself with SIGKILL, before the parent opens the file in a new agent. Frames from one
 * agent arrive in order, so "nothing was resent" is proven by a Ping round trip whose Pong
 * is the first thing the agent says after Welcome. Every wait has a deadline.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "relais/agent.h"

#define WAIT_MS 10000
#define ADDR_AGENT "rpps:10101234567"
#define ADDR_OTHER "rpps:20202345678"
#define ADDR_PEER "finess:350000011"
#define MAX_IDS 16

/* ---- What the agent's callbacks observed ------------------------------------------ */

typedef struct events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready;
    int stopped;
    int posted;
    int send_rc;
    int accepted, failed;
    int last_status;
    char last_reason[RELAIS_REASON_MAX];
    int recovered;
    uint8_t recovered_ids[MAX_IDS][RELAIS_MESSAGE_ID_LEN];
    bool recovered_duplicate[MAX_IDS];
    int handled;
} events_t;

#define AWAIT(cond)                                                                                \
    do {                                                                                           \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_MONOTONIC, &dl_);                                                      \
        dl_.tv_sec += WAIT_MS / 1000;                                                              \
        pthread_mutex_lock(&ev.mu);                                                                \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&ev.cv, &ev.mu, &dl_) == ETIMEDOUT) break;                  \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&ev.mu);                                                              \
        cr_assert(ok_, "timed out waiting for %s", #cond);                                         \
    } while (0)

#define RECORD(stmt)                                                                               \
    do {                                                                                           \
        pthread_mutex_lock(&ev.mu);                                                                \
        stmt;                                                                                      \
        pthread_cond_broadcast(&ev.cv);                                                            \
        pthread_mutex_unlock(&ev.mu);                                                              \
    } while (0)

static events_t ev;
static char dir[64];
static char state_path[128];
static relais_agent_t *agent;
static pthread_t agent_thread;
static bool agent_running;
static int run_rc;

static void on_state(relais_agent_t *a, relais_agent_state_t state, const char *detail, void *ud)
{
    RECORD({
        if (state == RELAIS_AGENT_READY) ev.ready++;
        if (state == RELAIS_AGENT_STOPPED) ev.stopped++;
    });
}

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

static void on_recovered(relais_agent_t *a, const relais_send_result_t *r, void *ud)
{
    RECORD({
        if (ev.recovered < MAX_IDS) {
            memcpy(ev.recovered_ids[ev.recovered], r->message_id, RELAIS_MESSAGE_ID_LEN);
            ev.recovered_duplicate[ev.recovered] = r->duplicate;
        }
        ev.recovered++;
        ev.last_status = r->status;
    });
}

static relais_outcome_t on_note(relais_agent_t *a, relais_delivery_t *d, void *ud)
{
    const char *text = d->envelope->note ? d->envelope->note->text : "";
    RECORD(ev.handled++);
    if (strcmp(text, "refuse me") == 0) {
        snprintf(d->reason, sizeof(d->reason), "not my patient");
        return RELAIS_REFUSED;
    }
    return RELAIS_PROCESSED;
}

static void *run_agent(void *arg)
{
    run_rc = relais_agent_run(agent);
    return NULL;
}

static int agent_new(const char *endpoint, const char *address, const char *path)
{
    relais_agent_options_t opts = {
        .endpoint = endpoint, .address = address, .heartbeat_ms = 60000, .state_path = path};
    int rc = relais_agent_new(&agent, &opts);
    if (rc != 0) return rc;
    relais_agent_on_state(agent, on_state, NULL);
    relais_agent_on_recovered(agent, on_recovered, NULL);
    relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_NOTE, on_note, NULL);
    return 0;
}

static void agent_run(void)
{
    cr_assert_eq(pthread_create(&agent_thread, NULL, run_agent, NULL), 0);
    agent_running = true;
}

static void agent_close(void)
{
    if (!agent) return;
    relais_agent_stop(agent);
    if (agent_running) {
        pthread_join(agent_thread, NULL);
        agent_running = false;
        cr_expect_eq(run_rc, 0);
    }
    relais_agent_destroy(&agent);
}

/* ---- Sending from the agent's loop -------------------------------------------------- */

typedef struct send_req {
    const char *text;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
} send_req_t;

static int send_note(relais_agent_t *a, send_req_t *req)
{
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    char *to[1] = {ADDR_PEER};
    note.text = (char *)req->text;
    env.to = to;
    env.n_to = 1;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    env.note = &note;
    return relais_agent_send(a, &env, req->id, on_sent, NULL);
}

static void do_send(relais_agent_t *a, void *ud)
{
    int rc = send_note(a, ud);
    RECORD({
        ev.send_rc = rc;
        ev.posted++;
    });
}

static void post_send(send_req_t *req)
{
    int before;
    RECORD(before = ev.posted);
    cr_assert_eq(relais_agent_post(agent, do_send, req), 0);
    AWAIT(ev.posted > before);
    cr_assert_eq(ev.send_rc, 0);
}

/* ---- The scripted broker ------------------------------------------------------------ */

typedef struct fake {
    void *ctx;
    void *router;
    char endpoint[128];
    uint8_t rid[256];
    size_t rid_len;
} fake_t;

static fake_t fb;

static void fake_open(void)
{
    fb.ctx = zmq_ctx_new();
    fb.router = zmq_socket(fb.ctx, ZMQ_ROUTER);
    int zero = 0;
    zmq_setsockopt(fb.router, ZMQ_LINGER, &zero, sizeof(zero));
    cr_assert_eq(zmq_bind(fb.router, "tcp://127.0.0.1:*"), 0);
    size_t len = sizeof(fb.endpoint);
    zmq_getsockopt(fb.router, ZMQ_LAST_ENDPOINT, fb.endpoint, &len);
}

static void fake_close(void)
{
    if (!fb.ctx) return;
    zmq_close(fb.router);
    zmq_ctx_term(fb.ctx);
    memset(&fb, 0, sizeof(fb));
}

/*
 * The next frame from the agent other than a Ping or the Bye of a run that stopped; fails
 * the test after WAIT_MS.
 */
static Relais__V1__Frame *fake_next(void)
{
    for (;;) {
        zmq_pollitem_t item = {.socket = fb.router, .events = ZMQ_POLLIN};
        cr_assert_gt(zmq_poll(&item, 1, WAIT_MS), 0, "the agent said nothing");
        int n = zmq_recv(fb.router, fb.rid, sizeof(fb.rid), 0);
        cr_assert_gt(n, 0);
        fb.rid_len = (size_t)n;
        zmq_msg_t body;
        zmq_msg_init(&body);
        cr_assert_geq(zmq_msg_recv(&body, fb.router, 0), 0);
        Relais__V1__Frame *f = NULL;
        cr_assert_eq(relais_frame_decode(zmq_msg_data(&body), zmq_msg_size(&body),
                                         RELAIS_DEFAULT_MAX_FRAME_BYTES, &f, NULL, 0),
                     0);
        zmq_msg_close(&body);
        if (f->kind_case != RELAIS__V1__FRAME__KIND_PING &&
            f->kind_case != RELAIS__V1__FRAME__KIND_BYE)
            return f;
        relais_frame_free(&f);
    }
}

static Relais__V1__Frame *fake_expect(int kind)
{
    Relais__V1__Frame *f = fake_next();
    cr_assert_eq(f->kind_case, kind, "expected %s, got %s", relais_frame_kind_name(kind),
                 relais_frame_kind_name(f->kind_case));
    return f;
}

static void fake_send(Relais__V1__Frame *f)
{
    uint8_t *buf;
    size_t len;
    cr_assert_eq(relais_frame_encode(f, &buf, &len), 0);
    cr_assert_eq(zmq_send(fb.router, fb.rid, fb.rid_len, ZMQ_SNDMORE), (int)fb.rid_len);
    cr_assert_eq(zmq_send(fb.router, buf, len, 0), (int)len);
    free(buf);
}

/* Answers the agent's Hello; what the agent resends before READY is left to the caller. */
static void fake_welcome(void)
{
    Relais__V1__Frame *hello = fake_expect(RELAIS__V1__FRAME__KIND_HELLO);
    relais_frame_free(&hello);
    Relais__V1__Welcome w = RELAIS__V1__WELCOME__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    w.address = ADDR_AGENT;
    w.broker_id = "fake";
    w.heartbeat_ms = 60000;
    f.kind_case = RELAIS__V1__FRAME__KIND_WELCOME;
    f.welcome = &w;
    fake_send(&f);
}

static void expect_submit(const uint8_t id[RELAIS_MESSAGE_ID_LEN], const char *text)
{
    Relais__V1__Frame *s = fake_expect(RELAIS__V1__FRAME__KIND_SUBMIT);
    cr_expect_arr_eq(s->submit->envelope->message_id.data, id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_str_eq(s->submit->envelope->note->text, text);
    relais_frame_free(&s);
}

/* A Ping whose Pong must be the agent's next frame: nothing else was queued before it. */
static void expect_nothing_else(void)
{
    Relais__V1__Ping p = RELAIS__V1__PING__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    p.at_ms = 42;
    f.kind_case = RELAIS__V1__FRAME__KIND_PING;
    f.ping = &p;
    fake_send(&f);
    Relais__V1__Frame *pong = fake_expect(RELAIS__V1__FRAME__KIND_PONG);
    cr_expect_eq(pong->pong->at_ms, 42);
    relais_frame_free(&pong);
}

static void fake_accept(const uint8_t id[RELAIS_MESSAGE_ID_LEN], bool duplicate)
{
    Relais__V1__Accepted acc = RELAIS__V1__ACCEPTED__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    acc.message_id.data = (uint8_t *)id;
    acc.message_id.len = RELAIS_MESSAGE_ID_LEN;
    acc.duplicate = duplicate;
    acc.accepted_at_ms = relais_now_ms();
    f.kind_case = RELAIS__V1__FRAME__KIND_ACCEPTED;
    f.accepted = &acc;
    fake_send(&f);
}

static void fake_deliver(const uint8_t id[RELAIS_MESSAGE_ID_LEN], const char *text,
                         unsigned attempt)
{
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    Relais__V1__Deliver d = RELAIS__V1__DELIVER__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    char *to[1] = {ADDR_AGENT};
    env.message_id.data = (uint8_t *)id;
    env.message_id.len = RELAIS_MESSAGE_ID_LEN;
    env.sender = ADDR_PEER;
    env.to = to;
    env.n_to = 1;
    env.created_at_ms = relais_now_ms();
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    note.text = (char *)text;
    env.note = &note;
    d.envelope = &env;
    d.attempt = attempt;
    f.kind_case = RELAIS__V1__FRAME__KIND_DELIVER;
    f.deliver = &d;
    fake_send(&f);
}

static void expect_ack(const uint8_t id[RELAIS_MESSAGE_ID_LEN], int outcome)
{
    Relais__V1__Frame *a = fake_expect(RELAIS__V1__FRAME__KIND_ACK);
    cr_expect_arr_eq(a->ack->message_id.data, id, RELAIS_MESSAGE_ID_LEN);
    cr_expect_eq(a->ack->outcome, outcome);
    relais_frame_free(&a);
}

/* ---- Fixtures ------------------------------------------------------------------------ */

static void setup(void)
{
    memset(&ev, 0, sizeof(ev));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&ev.cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&ev.mu, NULL);
    snprintf(dir, sizeof(dir), "/tmp/relais-state-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(state_path, sizeof(state_path), "%s/agent.db", dir);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static void teardown(void)
{
    agent_close();
    fake_close();
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
    pthread_cond_destroy(&ev.cv);
    pthread_mutex_destroy(&ev.mu);
}

/* Resets what the callbacks counted, between two runs of an agent on one state file. */
static void forget_events(void)
{
    RECORD({
        ev.ready = ev.stopped = ev.accepted = ev.failed = ev.recovered = ev.handled = 0;
        ev.last_reason[0] = '\0';
    });
}

/* A new agent on the state file, in session with the scripted broker. */
static void agent_in_session(void)
{
    cr_assert_eq(agent_new(fb.endpoint, ADDR_AGENT, state_path), 0);
    agent_run();
    fake_welcome();
}

TestSuite(agent_persistence, .init = setup, .fini = teardown, .timeout = 60);

Test(agent_persistence, submissions_of_a_killed_agent_are_resent_in_order_by_the_next_run)
{
    static const char *texts[3] = {"first", "second", "third"};
    uint8_t ids[3][RELAIS_MESSAGE_ID_LEN];
    int pipefd[2];
    cr_assert_eq(pipe(pipefd), 0);
    /* The child sends without ever reaching a broker, reports the ids, and dies. */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        close(pipefd[0]);
        relais_agent_t *child = NULL;
        relais_agent_options_t opts = {
            .endpoint = "tcp://127.0.0.1:1", .address = ADDR_AGENT, .state_path = state_path};
        if (relais_agent_new(&child, &opts) != 0) _exit(2);
        for (int i = 0; i < 3; i++) {
            send_req_t req = {.text = texts[i]};
            if (send_note(child, &req) != 0) _exit(3);
            if (write(pipefd[1], req.id, sizeof(req.id)) != (ssize_t)sizeof(req.id)) _exit(4);
        }
        raise(SIGKILL);
        _exit(5);
    }
    close(pipefd[1]);
    size_t got = 0;
    ssize_t n;
    while (got < sizeof(ids) && (n = read(pipefd[0], (uint8_t *)ids + got, sizeof(ids) - got)) > 0)
        got += (size_t)n;
    close(pipefd[0]);
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "the child died of SIGKILL");
    cr_assert_eq(got, sizeof(ids), "the child sent all three");

    /* The next run resends them, in order, before what it sends itself. */
    fake_open();
    cr_assert_eq(agent_new(fb.endpoint, ADDR_AGENT, state_path), 0);
    send_req_t fresh = {.text = "fourth"};
    cr_assert_eq(send_note(agent, &fresh), 0, "sent before run: queued behind the recovered");
    agent_run();
    fake_welcome();
    for (int i = 0; i < 3; i++) expect_submit(ids[i], texts[i]);
    expect_submit(fresh.id, "fourth");

    /* Their outcomes go to the on_recovered callback; the fresh one to its own. */
    fake_accept(ids[0], false);
    fake_accept(ids[1], true);
    fake_accept(fresh.id, false);
    AWAIT(ev.recovered == 2 && ev.accepted == 1);
    cr_expect_arr_eq(ev.recovered_ids[0], ids[0], RELAIS_MESSAGE_ID_LEN);
    cr_expect_arr_eq(ev.recovered_ids[1], ids[1], RELAIS_MESSAGE_ID_LEN);
    cr_expect(ev.recovered_duplicate[1]);
    cr_expect_eq(ev.last_status, 0);

    /* Stopped before the third is answered: it is not reported, and stays for the next. */
    agent_close();
    cr_expect_eq(ev.recovered, 2);
    forget_events();
    agent_in_session();
    expect_submit(ids[2], texts[2]);
    expect_nothing_else();
    fake_accept(ids[2], false);
    AWAIT(ev.recovered == 1);
    cr_expect_arr_eq(ev.recovered_ids[0], ids[2], RELAIS_MESSAGE_ID_LEN);

    /* Everything answered has left the file. */
    agent_close();
    forget_events();
    agent_in_session();
    expect_nothing_else();
    cr_expect_eq(ev.recovered, 0);
}

Test(agent_persistence, a_stop_reports_closed_but_keeps_the_submission_for_the_next_run)
{
    fake_open();
    agent_in_session();
    AWAIT(ev.ready == 1);
    send_req_t req = {.text = "unanswered"};
    post_send(&req);
    expect_submit(req.id, "unanswered");
    agent_close();
    cr_expect_eq(ev.failed, 1, "the callback rule holds: called once");
    cr_expect_eq(ev.last_status, RELAIS_ECLOSED);
    cr_expect(strstr(ev.last_reason, "state file") != NULL, "reason: %s", ev.last_reason);

    forget_events();
    agent_in_session();
    expect_submit(req.id, "unanswered");
    fake_accept(req.id, false);
    AWAIT(ev.recovered == 1);
    cr_expect_eq(ev.accepted + ev.failed, 0);
}

Test(agent_persistence, without_a_state_file_nothing_outlives_the_agent)
{
    fake_open();
    cr_assert_eq(agent_new(fb.endpoint, ADDR_AGENT, NULL), 0);
    agent_run();
    fake_welcome();
    AWAIT(ev.ready == 1);
    send_req_t req = {.text = "in memory"};
    post_send(&req);
    expect_submit(req.id, "in memory");
    agent_close();
    cr_expect_eq(ev.last_status, RELAIS_ECLOSED);
    cr_expect_str_eq(ev.last_reason, relais_strerror(RELAIS_ECLOSED));

    forget_events();
    cr_assert_eq(agent_new(fb.endpoint, ADDR_AGENT, NULL), 0);
    agent_run();
    fake_welcome();
    expect_nothing_else();
}

Test(agent_persistence, a_delivery_handled_before_a_restart_is_acked_again_without_the_handler)
{
    uint8_t done[RELAIS_MESSAGE_ID_LEN], refused[RELAIS_MESSAGE_ID_LEN],
        fresh[RELAIS_MESSAGE_ID_LEN];
    relais_uuid7(done);
    relais_uuid7(refused);
    relais_uuid7(fresh);
    fake_open();
    agent_in_session();
    fake_deliver(done, "book it", 1);
    expect_ack(done, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    fake_deliver(refused, "refuse me", 1);
    expect_ack(refused, RELAIS__V1__ACK__OUTCOME__REFUSED);
    cr_expect_eq(ev.handled, 2);
    agent_close();

    /* The broker never saw those Acks: it delivers both again to the next run. */
    forget_events();
    agent_in_session();
    fake_deliver(done, "book it", 2);
    expect_ack(done, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    fake_deliver(refused, "refuse me", 2);
    expect_ack(refused, RELAIS__V1__ACK__OUTCOME__REFUSED);
    fake_deliver(fresh, "new one", 1);
    expect_ack(fresh, RELAIS__V1__ACK__OUTCOME__PROCESSED);
    cr_expect_eq(ev.handled, 1, "only the new message reached the handler");
}

Test(agent_persistence, a_state_file_is_refused_to_a_second_agent_and_to_another_address)
{
    const char *endpoint = "tcp://127.0.0.1:1";
    cr_assert_eq(agent_new(endpoint, ADDR_AGENT, state_path), 0);
    relais_agent_t *first = agent;
    agent = NULL;
    cr_expect_eq(agent_new(endpoint, ADDR_AGENT, state_path), -EBUSY, "locked by the first");
    cr_expect_null(agent);

    /* Another process is refused too, and the lock dies with the first agent. */
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        relais_agent_t *child = NULL;
        relais_agent_options_t opts = {
            .endpoint = endpoint, .address = ADDR_AGENT, .state_path = state_path};
        _exit(relais_agent_new(&child, &opts) == -EBUSY ? 0 : 1);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) == 0, "another process gets -EBUSY");
    relais_agent_destroy(&first);

    cr_expect_eq(agent_new(endpoint, ADDR_OTHER, state_path), RELAIS_ECONFIG,
                 "the file belongs to " ADDR_AGENT);
    cr_expect_null(agent);
    cr_expect_eq(agent_new(endpoint, ADDR_AGENT, state_path), 0);
    relais_agent_destroy(&agent);

    char junk[160];
    snprintf(junk, sizeof(junk), "%s/junk.db", dir);
    FILE *f = fopen(junk, "w");
    cr_assert_not_null(f);
    fputs("this is not a database, but it is long enough to look like a header of one\n", f);
    fclose(f);
    cr_expect_eq(agent_new(endpoint, ADDR_AGENT, junk), RELAIS_ESTORE);
    cr_expect_null(agent);
}

Test(agent_persistence, a_damaged_outbox_row_is_dropped_instead_of_resent_forever)
{
    fake_open();
    agent_in_session();
    AWAIT(ev.ready == 1);
    send_req_t good = {.text = "good"};
    post_send(&good);
    expect_submit(good.id, "good");
    agent_close();

    sqlite3 *db;
    cr_assert_eq(sqlite3_open(state_path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_exec(db,
                              "INSERT INTO outbox (id, frame) VALUES "
                              "(randomblob(16), x'0badf00d')",
                              NULL, NULL, NULL),
                 SQLITE_OK);
    sqlite3_close(db);

    forget_events();
    agent_in_session();
    expect_submit(good.id, "good");
    expect_nothing_else();
    agent_close();
    cr_assert_eq(sqlite3_open(state_path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    cr_assert_eq(sqlite3_prepare_v2(db, "SELECT count(*) FROM outbox", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    cr_expect_eq(sqlite3_column_int(st, 0), 1, "only the good row is left");
    sqlite3_finalize(st);
    sqlite3_close(db);
}
