/*
 * Trust at the edges, from outside, over CURVE with real keys (issue 9): a session belongs to
 * the connection and the key that opened it, not to a routing id; a conversation is closed to
 * outsiders; the journal names the key that acted apart from the address it claimed; refused
 * handshakes cannot fill the disk; the journal is private. The territory applies PROTOCOL.md's
 * default rules (rt_broker_t.default_acl).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <zmq.h>

#include "harness.h"

#define T 3000
#define ASSISTANT "staff:claire.martin@cabinet-dupont" /* medical_assistant for GP */
#define GP "rpps:10101234567"
#define NURSE "rpps:10109876543"
#define NURSE2 "rpps:10100000001"
#define PHYSIO "rpps:10100000002"
#define POOL "service:nurse@relais-test"
#define COORDINATOR "staff:coordination@relais-test"

static rt_broker_t broker;

static void start(void)
{
    memset(&broker, 0, sizeof(broker));
    broker.default_acl = true;
    /* A long heartbeat: whatever ends a session here, it is not three silent intervals. */
    static const char *args[] = {"--heartbeat-ms", "60000", NULL};
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0, "relaisd must start");
}

static void stop(void)
{
    if (broker.pid > 0) {
        rt_suite_stop(&broker); /* some tests stop it themselves, to read the journal */
        return;
    }
    rt_broker_cleanup(&broker);
}

TestSuite(trust, .init = start, .fini = stop, .timeout = 60);

static void send_hello(rt_client_t *c, const char *address)
{
    Relais__V1__Hello h = RELAIS__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.credit = 8;
    h.address = (char *)address;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    cr_assert_eq(rt_client_send(c, &f), 0);
}

/* The whole journal, after the broker stopped (it syncs on stop). Caller frees. */
static char *read_journal(void)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audit.log", broker.data_dir);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    size_t cap = 1 << 20, n = 0;
    char *text = malloc(cap);
    n = fread(text, 1, cap - 1, f);
    text[n] = 0;
    fclose(f);
    return text;
}

/* The journal lines holding every needle given (NULL-terminated), counted. */
static int count_lines(const char *journal, const char *const *needles, const char **first)
{
    int n = 0;
    for (const char *line = journal; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char *copy = strndup(line, len);
        bool all = true;
        for (size_t i = 0; needles[i] && all; i++) all = strstr(copy, needles[i]) != NULL;
        if (all && n++ == 0 && first) *first = line;
        free(copy);
        line += len + (end ? 1 : 0);
    }
    return n;
}

Test(trust, a_routing_id_reused_by_another_key_inherits_nothing)
{
    /* The GP's client has a routing id of its choosing and a delivery in flight. */
    rt_client_t gp, assistant = rt_session(&broker, ASSISTANT, 8);
    cr_assert_eq(rt_client_open_as_rid(&gp, &broker, GP, "victim"), 0);
    cr_assert_eq(rt_client_hello(&gp, GP, 8, T), 0);
    char reason[RELAIS_REASON_MAX];
    rt_benv_t for_gp;
    rt_benv_init(&for_gp, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, GP);
    cr_assert_eq(rt_submit_code(&assistant, &for_gp, reason), 0, "%s", reason);
    Relais__V1__Frame *d;
    cr_assert_eq(rt_client_expect(&gp, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0);
    relais_frame_free(&d);
    rt_client_close(&gp); /* gone without a Bye: its delivery stays unacknowledged */

    /* An enrolled physiotherapist connects under the same routing id and sends no Hello. */
    rt_client_t thief;
    cr_assert_eq(rt_client_open_as_rid(&thief, &broker, PHYSIO, "victim"), 0);
    rt_benv_t req;
    rt_benv_init(&req, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
    Relais__V1__Submit s = RELAIS__V1__SUBMIT__INIT;
    s.envelope = &req.e;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    f.submit = &s;
    cr_assert_eq(rt_client_send(&thief, &f), 0);
    Relais__V1__Frame *r;
    cr_assert_eq(rt_client_recv(&thief, T, &r), 0, "an answer");
    cr_expect_eq(r->kind_case, RELAIS__V1__FRAME__KIND_ERROR, "no session, not the GP's: %d",
                 r->kind_case);
    if (r->kind_case == RELAIS__V1__FRAME__KIND_ERROR)
        cr_expect_eq(r->error->code, RELAIS__V1__ERROR__ERROR_CODE__NO_SESSION, "%s",
                     r->error->reason);
    relais_frame_free(&r);
    /* It never receives the GP's delivery either. */
    cr_expect_neq(rt_client_expect(&thief, RELAIS__V1__FRAME__KIND_DELIVER, 500, &d), 0,
                  "the GP's delivery does not follow the routing id");
    rt_client_close(&thief);

    /* The GP, back, gets it again: nothing was lost to the thief. */
    rt_client_t gp2 = rt_session(&broker, GP, 8);
    cr_assert_eq(rt_client_expect(&gp2, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0);
    cr_expect_eq(memcmp(d->deliver->envelope->message_id.data, for_gp.id, 16), 0);
    cr_expect_gt(d->deliver->attempt, 1);
    relais_frame_free(&d);
    rt_client_close(&gp2);
    rt_client_close(&assistant);
}

Test(trust, a_session_ends_when_its_connection_ends)
{
    rt_client_t nurse = rt_session(&broker, NURSE, 8);
    rt_client_close(&nurse); /* no Bye, and the heartbeat is a minute */
    cr_expect_eq(rt_broker_wait_log(&broker, "why=connection closed", T), 0,
                 "closed at once, not three heartbeats later");
}

/* Sends an OFFER request to the nurse pool: NURSE claims it, NURSE2 loses the race. */
static void offer_race(rt_client_t *assistant, rt_client_t *winner, rt_client_t *loser,
                       rt_benv_t *req)
{
    char reason[RELAIS_REASON_MAX];
    rt_benv_init(req, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, POOL);
    req->e.dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER;
    cr_assert_eq(rt_submit_code(assistant, req, reason), 0, "%s", reason);
    rt_client_t *both[2] = {winner, loser};
    for (int i = 0; i < 2; i++) {
        Relais__V1__Frame *d;
        cr_assert_eq(rt_client_expect(both[i], RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0);
        cr_assert(d->deliver->offered);
        relais_frame_free(&d);
        Relais__V1__Claim cl = RELAIS__V1__CLAIM__INIT;
        cl.message_id.data = req->id;
        cl.message_id.len = 16;
        Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
        f.kind_case = RELAIS__V1__FRAME__KIND_CLAIM;
        f.claim = &cl;
        cr_assert_eq(rt_client_send(both[i], &f), 0);
        Relais__V1__Frame *res;
        cr_assert_eq(rt_client_expect(both[i], RELAIS__V1__FRAME__KIND_CLAIM_RESULT, T, &res), 0);
        cr_assert_eq(res->claim_result->granted, i == 0, "the first claim wins, only it");
        relais_frame_free(&res);
    }
}

Test(trust, knowing_a_conversation_id_is_not_a_right_to_join_it)
{
    rt_client_t assistant = rt_session(&broker, ASSISTANT, 8), winner = rt_session(&broker, NURSE, 8),
                loser = rt_session(&broker, NURSE2, 8);
    rt_benv_t req;
    offer_race(&assistant, &winner, &loser, &req);
    char reason[RELAIS_REASON_MAX];

    /* The loser escalates "about" the conversation, carrying its id… */
    rt_benv_t esc_env;
    rt_benv_init(&esc_env, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, COORDINATOR);
    Relais__V1__Escalation esc = RELAIS__V1__ESCALATION__INIT;
    esc.conversation_id.data = req.id;
    esc.conversation_id.len = 16;
    esc.reason = "deadline";
    esc_env.e.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    esc_env.e.escalation = &esc;
    esc_env.e.conversation_id.data = req.id;
    esc_env.e.conversation_id.len = 16;
    cr_expect_eq(rt_submit_code(&loser, &esc_env, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN,
                 "an outsider may not write into the conversation: %s", reason);
    cr_expect(strstr(reason, "takes no part") != NULL, "reason: %s", reason);

    /* …or as its own message id, which is what a conversation's first message is keyed by. */
    rt_benv_init(&esc_env, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, COORDINATOR);
    esc_env.e.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    esc_env.e.escalation = &esc;
    memcpy(esc_env.id, req.id, 16);
    cr_expect_eq(rt_submit_code(&loser, &esc_env, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN,
                 "a message id that names the conversation is no way in: %s", reason);

    /* So her offer into the conversation is refused too. */
    rt_benv_t offer;
    rt_benv_init(&offer, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, ASSISTANT);
    offer.e.conversation_id.data = req.id;
    offer.e.conversation_id.len = 16;
    offer.e.in_reply_to = offer.e.conversation_id;
    cr_expect_eq(rt_submit_code(&loser, &offer, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN,
                 "%s", reason);
    /* The winner, who takes part, still may. */
    rt_benv_init(&offer, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, ASSISTANT);
    offer.e.conversation_id.data = req.id;
    offer.e.conversation_id.len = 16;
    offer.e.in_reply_to = offer.e.conversation_id;
    cr_expect_eq(rt_submit_code(&winner, &offer, reason), 0, "%s", reason);
    /* A new conversation starts with its first message, whoever sends it. */
    rt_benv_init(&esc_env, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, COORDINATOR);
    esc_env.e.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    esc_env.e.escalation = &esc;
    cr_expect_eq(rt_submit_code(&loser, &esc_env, reason), 0, "%s", reason);
    rt_client_close(&assistant);
    rt_client_close(&winner);
    rt_client_close(&loser);
}

Test(trust, a_refused_hello_journals_the_key_that_tried_apart_from_the_address_it_claimed)
{
    rt_client_t nurse;
    cr_assert_eq(rt_client_open_as(&nurse, &broker, NURSE), 0);
    send_hello(&nurse, GP); /* an enrolled key claiming the GP's address */
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(
        rt_client_expect_code(&nurse, false, RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, T, reason),
        0);
    rt_client_close(&nurse);
    cr_assert_eq(rt_broker_stop(&broker, 10000), 0);
    char *journal = read_journal();
    const char *line = NULL;
    static const char *refusal[] = {"\"event\":\"auth.refusals\"", "\"claimed\":\"" GP "\"",
                                    "\"actor\":\"" NURSE "\"", "\"key\":\"", "\"count\":1",
                                    NULL};
    cr_expect_eq(count_lines(journal, refusal, &line), 1,
                 "one record: the nurse's key, claiming the GP's address\n%s", journal);
    static const char *gp_refused[] = {"\"actor\":\"" GP "\"", "refus", NULL};
    cr_expect_eq(count_lines(journal, gp_refused, NULL), 0, "the GP did nothing: %s", journal);
    free(journal);
}

Test(trust, a_flood_of_refused_handshakes_leaves_a_bounded_trace_that_counts_them_all,
     .timeout = 90)
{
    enum { STRANGERS = 200 };
    char pub[41], sec[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    for (int i = 0; i < STRANGERS; i++) {
        rt_client_t c;
        c.ctx = zmq_ctx_new();
        c.sock = zmq_socket(c.ctx, ZMQ_DEALER);
        int zero = 0;
        zmq_setsockopt(c.sock, ZMQ_LINGER, &zero, sizeof(zero));
        zmq_setsockopt(c.sock, ZMQ_CURVE_SERVERKEY, broker.server_pub, 41);
        zmq_setsockopt(c.sock, ZMQ_CURVE_PUBLICKEY, pub, 41);
        zmq_setsockopt(c.sock, ZMQ_CURVE_SECRETKEY, sec, 41);
        /* The monitor tells when the broker has refused this one. */
        char mon[64];
        snprintf(mon, sizeof(mon), "inproc://stranger-%d", i);
        zmq_socket_monitor(c.sock, mon, ZMQ_EVENT_HANDSHAKE_FAILED_AUTH);
        void *m = zmq_socket(c.ctx, ZMQ_PAIR);
        zmq_connect(m, mon);
        zmq_setsockopt(m, ZMQ_RCVTIMEO, &(int){T}, sizeof(int));
        cr_assert_eq(zmq_connect(c.sock, broker.endpoint), 0);
        zmq_msg_t ev;
        zmq_msg_init(&ev);
        cr_assert_geq(zmq_msg_recv(&ev, m, 0), 0, "stranger %d refused", i);
        zmq_msg_close(&ev);
        zmq_close(m);
        rt_client_close(&c);
    }
    /* A legitimate pair is served meanwhile. */
    rt_client_t a = rt_session(&broker, ASSISTANT, 8);
    rt_client_close(&a);
    cr_assert_eq(rt_broker_stop(&broker, 10000), 0);
    char *journal = read_journal();
    static const char *refusals[] = {"\"event\":\"auth.refusals\"", NULL};
    const char *first = NULL;
    int records = count_lines(journal, refusals, &first);
    cr_expect_geq(records, 1);
    cr_expect_leq(records, 10, "one record per peer, key and window, not one per refusal");
    unsigned long total = 0;
    for (const char *p = journal; (p = strstr(p, "\"event\":\"auth.refusals\"")) != NULL; p++) {
        const char *c = strstr(p, "\"count\":");
        if (c != NULL) total += strtoul(c + 8, NULL, 10);
    }
    cr_expect_geq(total, STRANGERS, "every refusal counted: %lu", total);
    free(journal);
    /* The log is rate limited too. */
    FILE *f = fopen(broker.log_path, "r");
    cr_assert_not_null(f);
    char line[1024];
    int refused_lines = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, "handshake refused") != NULL) refused_lines++;
    fclose(f);
    cr_expect_leq(refused_lines, 21, "%d log lines for %d refusals", refused_lines, STRANGERS);
}

Test(trust, the_journal_is_readable_by_the_broker_s_user_only)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/audit.log", broker.data_dir);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", (unsigned)(st.st_mode & 0777));
}
