/*
 * relaisd's security boundary, from outside: CurveZMQ with a fail-closed ZAP handler,
 * identity from the key only, the default authorisation of PROTOCOL.md section 6, and
 * revocation by a directory reload. The territory here applies the default rules, with no
 * opening (rt_broker_t.default_acl).
 */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <zmq.h>

#include "harness.h"

#define T 3000
#define ASSISTANT "staff:claire.martin@cabinet-dupont" /* medical_assistant for GP */
#define GP "rpps:10101234567"
#define NURSE "rpps:10109876543"
#define NURSE2 "rpps:10100000001"
#define HOSPITAL "finess:350000011"

static rt_broker_t broker;

static void start(void)
{
    memset(&broker, 0, sizeof(broker));
    broker.default_acl = true;
    static const char *args[] = {"--heartbeat-ms", "1000", NULL};
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0, "relaisd must start");
}

static void stop(void)
{
    rt_suite_stop(&broker);
}

TestSuite(security, .init = start, .fini = stop, .timeout = 60);

/* A client with keys of its own that the directory does not know. */
static void open_stranger(rt_client_t *c)
{
    char pub[41], sec[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(c->sock, ZMQ_CURVE_SERVERKEY, broker.server_pub, 41);
    zmq_setsockopt(c->sock, ZMQ_CURVE_PUBLICKEY, pub, 41);
    zmq_setsockopt(c->sock, ZMQ_CURVE_SECRETKEY, sec, 41);
    cr_assert_eq(zmq_connect(c->sock, broker.endpoint), 0);
}

static void send_hello(rt_client_t *c, const char *address)
{
    Relais__V1__Hello h = RELAIS__V1__HELLO__INIT;
    h.protocol_version = 1;
    h.address = (char *)address;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    cr_assert_eq(rt_client_send(c, &f), 0);
}

Test(security, an_unknown_key_never_gets_a_session)
{
    rt_client_t c;
    open_stranger(&c);
    send_hello(&c, GP); /* claiming to be someone known changes nothing */
    Relais__V1__Frame *f;
    cr_expect_neq(rt_client_recv(&c, 1500, &f), 0, "no Welcome, no Error: the handshake fails");
    cr_assert_eq(rt_broker_wait_log(&broker, "unknown key", T), 0, "the refusal is logged");
    rt_client_close(&c);
}

Test(security, a_client_without_curve_never_gets_a_session)
{
    rt_client_t c;
    cr_assert_eq(rt_client_open(&c, broker.endpoint), 0); /* no keys at all */
    send_hello(&c, GP);
    Relais__V1__Frame *f;
    cr_expect_neq(rt_client_recv(&c, 1500, &f), 0, "a clear-text peer gets nothing");
    rt_client_close(&c);
}

Test(security, the_identity_is_the_key_s_whatever_hello_declares)
{
    rt_client_t c;
    cr_assert_eq(rt_client_open_as(&c, &broker, NURSE), 0);
    send_hello(&c, "");
    Relais__V1__Frame *w;
    cr_assert_eq(rt_client_expect(&c, RELAIS__V1__FRAME__KIND_WELCOME, T, &w), 0);
    cr_expect_str_eq(w->welcome->address, NURSE, "the address comes from the directory");
    cr_assert_eq(w->welcome->n_roles, 1);
    cr_expect_str_eq(w->welcome->roles[0], "nurse");
    relais_frame_free(&w);
    send_hello(&c, GP);
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, T, reason), 0);
    cr_expect(strstr(reason, GP) != NULL, "reason: %s", reason);
    rt_client_close(&c);
}

Test(security, each_role_sends_only_what_the_default_rules_allow)
{
    rt_client_t nurse = rt_session(&broker, NURSE, 8),
                assistant = rt_session(&broker, ASSISTANT, 8);
    char reason[RELAIS_REASON_MAX];
    rt_benv_t x;
    /* A nurse may not request appointments. */
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE2);
    cr_expect_eq(rt_submit_code(&nurse, &x, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN);
    cr_expect(strstr(reason, "appointment_request") != NULL, "the rule is named: %s", reason);
    /* Only a hospital or a facility notifies discharges. */
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION, GP);
    cr_expect_eq(rt_submit_code(&assistant, &x, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN);
    cr_expect(strstr(reason, "discharge_notification") != NULL, "reason: %s", reason);
    /* A medical assistant may ask a nurse for an appointment, on behalf of her GP… */
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
    x.e.on_behalf_of = GP;
    cr_expect_eq(rt_submit_code(&assistant, &x, reason), 0, "allowed: %s", reason);
    /* …but not on behalf of a GP she does not work for. */
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
    x.e.on_behalf_of = "rpps:10000000001";
    cr_expect_eq(rt_submit_code(&assistant, &x, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN);
    /* An address outside the directory is an unknown recipient. */
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, "rpps:19999999999");
    cr_expect_eq(rt_submit_code(&assistant, &x, reason), RELAIS__V1__ERROR__ERROR_CODE__UNKNOWN_RECIPIENT);
    cr_expect(strstr(reason, "rpps:19999999999") != NULL, "reason: %s", reason);
    rt_client_close(&nurse);
    rt_client_close(&assistant);
}

Test(security, a_reply_is_accepted_only_inside_a_conversation_its_sender_was_delivered_into)
{
    rt_client_t nurse = rt_session(&broker, NURSE, 8),
                assistant = rt_session(&broker, ASSISTANT, 8),
                other = rt_session(&broker, NURSE2, 8);
    char reason[RELAIS_REASON_MAX];
    rt_benv_t req, offer;
    rt_benv_init(&req, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
    cr_assert_eq(rt_submit_code(&assistant, &req, reason), 0, "%s", reason);
    /* The nurse who received the request may offer, in its conversation. */
    rt_benv_init(&offer, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, ASSISTANT);
    offer.e.conversation_id.data = req.id;
    offer.e.conversation_id.len = 16;
    offer.e.in_reply_to = offer.e.conversation_id;
    cr_expect_eq(rt_submit_code(&nurse, &offer, reason), 0, "the addressee replies: %s", reason);
    /* Another nurse, outside the conversation, may not. */
    rt_benv_init(&offer, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, ASSISTANT);
    offer.e.conversation_id.data = req.id;
    offer.e.conversation_id.len = 16;
    cr_expect_eq(rt_submit_code(&other, &offer, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN);
    cr_expect(strstr(reason, "appointment_offer") != NULL, "reason: %s", reason);
    /* Nor may an offer start a conversation. */
    rt_benv_init(&offer, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, ASSISTANT);
    cr_expect_eq(rt_submit_code(&nurse, &offer, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN);
    rt_client_close(&nurse);
    rt_client_close(&assistant);
    rt_client_close(&other);
}

Test(security, a_revoked_key_loses_its_session_and_cannot_open_another)
{
    rt_client_t nurse = rt_session(&broker, NURSE, 8);
    cr_assert_eq(rt_territory_revoke(&broker, NURSE, T), 0, "the directory reloads");
    Relais__V1__Frame *e;
    cr_assert_eq(rt_client_expect(&nurse, RELAIS__V1__FRAME__KIND_ERROR, T, &e), 0,
                 "the revoked session is told");
    cr_expect_eq(e->error->code, RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN);
    cr_expect(e->error->fatal);
    relais_frame_free(&e);
    /* The connection was authenticated before the reload: a new Hello on it is refused. */
    send_hello(&nurse, "");
    cr_assert_eq(
        rt_client_expect_code(&nurse, false, RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, T, NULL), 0);
    rt_client_close(&nurse);
    /* And a new connection with that key fails its handshake. */
    rt_client_t again;
    cr_assert_eq(rt_client_open_as(&again, &broker, NURSE), 0);
    send_hello(&again, "");
    Relais__V1__Frame *f;
    cr_expect_neq(rt_client_recv(&again, 1500, &f), 0, "no session for a revoked key");
    rt_client_close(&again);
    /* Everybody else is untouched. */
    rt_client_t gp = rt_session(&broker, GP, 8);
    rt_client_close(&gp);
}

Test(security, insecure_mode_is_refused_with_a_production_directory)
{
    char path[400];
    snprintf(path, sizeof(path), "%s/territory.yaml", broker.data_dir);
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        freopen("/dev/null", "w", stdout);
        freopen("/dev/null", "w", stderr);
        char data[400];
        snprintf(data, sizeof(data), "%s/insecure", broker.data_dir);
        execl(RELAISD_PATH, RELAISD_PATH, "--bind", "tcp://127.0.0.1:0", "--data", data,
              "--insecure", "--directory", path, (char *)NULL);
        _exit(127);
    }
    int status;
    cr_assert_eq(waitpid(pid, &status, 0), pid);
    cr_expect(WIFEXITED(status) && WEXITSTATUS(status) != 0 && WEXITSTATUS(status) != 127,
              "relaisd refuses to start");
}

/* Runs relaisctl with args; returns its exit status and its stdout in out. */
static int relaisctl(char *out, size_t out_len, const char *a1, const char *a2, const char *a3)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "%s %s %s %s 2>&1", RELAISCTL_PATH, a1, a2, a3);
    FILE *p = popen(cmd, "r");
    cr_assert_not_null(p);
    size_t n = fread(out, 1, out_len - 1, p);
    out[n] = 0;
    int status = pclose(p);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

Test(security, every_access_is_in_a_hash_chained_journal_that_detects_tampering)
{
    rt_client_t nurse = rt_session(&broker, NURSE, 8),
                assistant = rt_session(&broker, ASSISTANT, 8);
    char reason[RELAIS_REASON_MAX];
    rt_benv_t x;
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
    cr_assert_eq(rt_submit_code(&assistant, &x, reason), 0);
    Relais__V1__Frame *d;
    cr_assert_eq(rt_client_expect(&nurse, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0);
    rt_client_ack(&nurse, x.id, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
    relais_frame_free(&d);
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE2);
    cr_assert_eq(rt_submit_code(&nurse, &x, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN);
    rt_client_t stranger;
    open_stranger(&stranger);
    send_hello(&stranger, GP);
    cr_assert_eq(rt_broker_wait_log(&broker, "unknown key", T), 0);
    rt_client_close(&stranger);
    rt_client_close(&nurse);
    rt_client_close(&assistant);
    cr_assert_eq(rt_broker_stop(&broker, 10000), 0); /* the journal is synced on stop */

    char path[400], out[8192];
    snprintf(path, sizeof(path), "%s/audit.log", broker.data_dir);
    cr_assert_eq(relaisctl(out, sizeof(out), "audit", "verify", path), 0, "%s", out);
    cr_expect(strncmp(out, "ok:", 3) == 0, "%s", out);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    char journal[65536];
    size_t n = fread(journal, 1, sizeof(journal) - 1, f);
    journal[n] = 0;
    fclose(f);
    const char *events[] = {"broker.start", "session.open",    "submit.accepted", "deliver",
                            "\"ack\"",      "submit.rejected", "auth.refusals",   "broker.stop"};
    for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++)
        cr_expect(strstr(journal, events[i]) != NULL, "the journal records %s", events[i]);
    cr_expect(strstr(journal, "req-1") == NULL, "no content of a message in the journal");

    /* Change one character of the first record that names an agent (not the first line):
     * the verifier names that line. */
    char *line = strchr(journal, '\n') + 1, *actor = NULL;
    int lineno = 2;
    for (; *line; lineno++) {
        char *end = strchr(line, '\n');
        cr_assert_not_null(end);
        *end = 0; /* search this line only */
        actor = strstr(line, "\"actor\":\"rpps:");
        *end = '\n';
        if (actor != NULL) break;
        line = end + 1;
    }
    cr_assert_not_null(actor, "a record names an agent");
    actor += strlen("\"actor\":\"");
    char want[32];
    snprintf(want, sizeof(want), "line %d ", lineno);
    char original = actor[5];
    actor[5] = original == 'x' ? 'y' : 'x';
    f = fopen(path, "w");
    fwrite(journal, 1, n, f);
    fclose(f);
    cr_expect_eq(relaisctl(out, sizeof(out), "audit", "verify", path), 1, "%s", out);
    cr_expect(strstr(out, want) != NULL, "the broken link (%s) is named: %s", want, out);

    /* Put the original back: the chain verifies again, and the broker restarts on it. */
    actor[5] = original;
    f = fopen(path, "w");
    fwrite(journal, 1, n, f);
    fclose(f);
    cr_expect_eq(relaisctl(out, sizeof(out), "audit", "verify", path), 0, "%s", out);
    cr_assert_eq(rt_broker_start(&broker, NULL, 10000), 0, "relaisd restarts on the journal");
}

static void start_limited(void)
{
    memset(&broker, 0, sizeof(broker));
    broker.default_acl = true;
    broker.rate_limit = 5;
    broker.mailbox_limit = 8;
    static const char *args[] = {"--heartbeat-ms", "1000", NULL};
    cr_assert_eq(rt_broker_start(&broker, args, 10000), 0, "relaisd must start");
}

TestSuite(limits, .init = start_limited, .fini = stop, .timeout = 60);

Test(limits, an_agent_over_its_rate_is_told_to_retry_later)
{
    rt_client_t a = rt_session(&broker, ASSISTANT, 8);
    char reason[RELAIS_REASON_MAX];
    int accepted = 0, overloaded = 0;
    for (int i = 0; i < 7; i++) { /* a burst: the bucket holds 5 */
        rt_benv_t x;
        rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
        int code = rt_submit_code(&a, &x, reason);
        if (code == 0)
            accepted++;
        else if (code == RELAIS__V1__ERROR__ERROR_CODE__OVERLOADED)
            overloaded++;
    }
    cr_expect_geq(accepted, 5, "the burst allowance");
    cr_expect_geq(overloaded, 1, "then OVERLOADED");
    cr_expect(strstr(reason, "submissions a second") != NULL, "reason: %s", reason);
    rt_client_close(&a);
}

Test(limits, a_full_mailbox_refuses_more_until_it_drains)
{
    rt_client_t a = rt_session(&broker, ASSISTANT, 8);
    char reason[RELAIS_REASON_MAX];
    int code = 0, sent = 0;
    /* The nurse is offline: her mailbox fills to its limit of 8. Pace under the rate. */
    for (; sent < 12 && code == 0; sent++) {
        rt_benv_t x;
        rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
        do {
            code = rt_submit_code(&a, &x, reason);
        } while (code == RELAIS__V1__ERROR__ERROR_CODE__OVERLOADED &&
                 strstr(reason, "a second") != NULL); /* the rate, not the mailbox */
    }
    cr_expect_eq(code, RELAIS__V1__ERROR__ERROR_CODE__OVERLOADED);
    cr_expect(strstr(reason, "waiting") != NULL, "reason: %s", reason);
    cr_expect_eq(sent, 9, "8 accepted, the 9th refused");
    rt_client_close(&a);
}

/* One hostile act, in rotation: bytes that are not a frame, a message of several parts, one
 * too large, a handshake with an unknown key, a submission the rules forbid. */
static void attack(rt_client_t *garbage, rt_client_t *forbidden, int i, int *strangers)
{
    static uint8_t big[2 * 1024 * 1024];
    switch (i % 5) {
    case 0:
        rt_client_send_raw(garbage, "\x0a\xff\xff\xff\xff\x0f", 6, false);
        break;
    case 1:
        rt_client_send_raw(garbage, "x", 1, true);
        rt_client_send_raw(garbage, "y", 1, false);
        break;
    case 2:
        rt_client_send_raw(garbage, big, sizeof(big), false);
        break;
    case 3: {
        rt_client_t s;
        open_stranger(&s);
        send_hello(&s, GP);
        rt_client_close(&s);
        (*strangers)++;
        break;
    }
    default: {
        rt_benv_t x; /* a nurse may not request appointments */
        rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
        Relais__V1__Submit sub = RELAIS__V1__SUBMIT__INIT;
        sub.envelope = &x.e;
        Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
        f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
        f.submit = &sub;
        rt_client_send(forbidden, &f);
        break;
    }
    }
}

Test(security, a_flood_of_hostile_input_costs_a_legitimate_pair_nothing)
{
    rt_client_t assistant = rt_session(&broker, ASSISTANT, 16),
                nurse = rt_session(&broker, NURSE, 16);
    rt_client_t garbage = rt_session(&broker, HOSPITAL, 8),
                forbidden = rt_session(&broker, NURSE2, 8);
    enum { N = 60 };
    int strangers = 0, forbidden_seen = 0;
    char reason[RELAIS_REASON_MAX];
    for (int i = 0; i < N; i++) {
        attack(&garbage, &forbidden, i, &strangers);
        rt_benv_t x;
        rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
        cr_assert_eq(rt_submit_code(&assistant, &x, reason), 0, "legitimate submission %d: %s", i, reason);
        Relais__V1__Frame *d;
        cr_assert_eq(rt_client_expect(&nurse, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0,
                     "legitimate delivery %d", i);
        cr_assert_eq(memcmp(d->deliver->envelope->message_id.data, x.id, 16), 0, "in order");
        rt_client_ack(&nurse, x.id, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        relais_frame_free(&d);
        Relais__V1__Frame *r;
        while (rt_client_recv(&forbidden, 0, &r) == 0) {
            forbidden_seen += r->kind_case == RELAIS__V1__FRAME__KIND_REJECTED &&
                              r->rejected->code == RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN;
            relais_frame_free(&r);
        }
    }
    Relais__V1__Frame *r;
    while (forbidden_seen < N / 5 && rt_client_recv(&forbidden, T, &r) == 0) {
        forbidden_seen += r->kind_case == RELAIS__V1__FRAME__KIND_REJECTED &&
                          r->rejected->code == RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN;
        relais_frame_free(&r);
    }
    cr_expect_eq(forbidden_seen, N / 5, "every forbidden submission refused");
    cr_expect_eq(strangers, N / 5);
    /* The legitimate pair saw no error at all. */
    cr_expect_neq(rt_client_recv(&assistant, 200, &r), 0, "nothing else for the assistant");
    rt_client_close(&assistant);
    rt_client_close(&nurse);
    rt_client_close(&garbage);
    rt_client_close(&forbidden);
}

Test(security, the_pool_member_given_a_request_may_answer_it_and_no_other_member_may)
{
    rt_client_t assistant = rt_session(&broker, ASSISTANT, 8), n1 = rt_session(&broker, NURSE, 8);
    char reason[RELAIS_REASON_MAX];
    for (int dispatch = 0; dispatch < 2; dispatch++) { /* ANYCAST, then OFFER */
        rt_benv_t req, offer;
        rt_benv_init(&req, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, "service:nurse@relais-test");
        req.e.dispatch = dispatch ? RELAIS__V1__ENVELOPE__DISPATCH__OFFER
                                  : RELAIS__V1__ENVELOPE__DISPATCH__ANYCAST;
        cr_assert_eq(rt_submit_code(&assistant, &req, reason), 0, "a pool of nurses: %s", reason);
        Relais__V1__Frame *d;
        cr_assert_eq(rt_client_expect(&n1, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0);
        if (dispatch) { /* claim the offer first */
            Relais__V1__Claim cl = RELAIS__V1__CLAIM__INIT;
            cl.message_id.data = req.id;
            cl.message_id.len = 16;
            Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
            f.kind_case = RELAIS__V1__FRAME__KIND_CLAIM;
            f.claim = &cl;
            cr_assert_eq(rt_client_send(&n1, &f), 0);
            Relais__V1__Frame *cr;
            cr_assert_eq(rt_client_expect(&n1, RELAIS__V1__FRAME__KIND_CLAIM_RESULT, T, &cr), 0);
            cr_assert(cr->claim_result->granted);
            relais_frame_free(&cr);
        }
        relais_frame_free(&d);
        rt_benv_init(&offer, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, ASSISTANT);
        offer.e.conversation_id.data = req.id;
        offer.e.conversation_id.len = 16;
        cr_expect_eq(rt_submit_code(&n1, &offer, reason), 0, "the member who got it answers: %s", reason);
        rt_client_ack(&n1, req.id, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
        /* A nurse of the same pool who was not given it may not answer. */
        rt_client_t n2 = rt_session(&broker, NURSE2, 8);
        rt_benv_init(&offer, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, ASSISTANT);
        offer.e.conversation_id.data = req.id;
        offer.e.conversation_id.len = 16;
        cr_expect_eq(rt_submit_code(&n2, &offer, reason), RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, "%s",
                     reason);
        rt_client_close(&n2);
    }
    rt_client_close(&assistant);
    rt_client_close(&n1);
}

/* Sends an Escalation about `conversation` from c to the test territory's coordinator. */
static int escalate(rt_client_t *c, const uint8_t *conversation, char *reason)
{
    rt_benv_t x;
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, "staff:coordination@relais-test");
    Relais__V1__Escalation esc = RELAIS__V1__ESCALATION__INIT;
    esc.conversation_id.data = (uint8_t *)conversation;
    esc.conversation_id.len = 16;
    esc.reason = "no answer before the deadline";
    x.e.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    x.e.escalation = &esc;
    return rt_submit_code(c, &x, reason);
}

static int note_in(rt_client_t *c, const uint8_t *conversation, const char *to, char *reason)
{
    rt_benv_t x;
    rt_benv_init(&x, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, to);
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    note.text = "reassigned";
    x.e.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    x.e.note = &note;
    x.e.conversation_id.data = (uint8_t *)conversation;
    x.e.conversation_id.len = 16;
    return rt_submit_code(c, &x, reason);
}

Test(security, an_escalation_brings_the_coordinator_into_the_conversation_it_is_about)
{
    rt_client_t assistant = rt_session(&broker, ASSISTANT, 8),
                other = rt_session(&broker, NURSE2, 8),
                coordinator = rt_session(&broker, "staff:coordination@relais-test", 8);
    char reason[RELAIS_REASON_MAX];
    rt_benv_t req1, req2;
    rt_benv_init(&req1, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
    cr_assert_eq(rt_submit_code(&assistant, &req1, reason), 0, "%s", reason);
    rt_benv_init(&req2, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NURSE);
    cr_assert_eq(rt_submit_code(&assistant, &req2, reason), 0, "%s", reason);
    /* The assistant, who takes part in the first, escalates it: the coordinator may act in it. */
    cr_assert_eq(escalate(&assistant, req1.id, reason), 0, "%s", reason);
    cr_expect_eq(note_in(&coordinator, req1.id, ASSISTANT, reason), 0, "%s", reason);
    /* A nurse who takes no part in the second cannot pull the coordinator into it. */
    cr_assert_eq(escalate(&other, req2.id, reason), 0, "anyone may escalate: %s", reason);
    cr_expect_eq(note_in(&coordinator, req2.id, ASSISTANT, reason),
                 RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, "%s", reason);
    rt_client_close(&assistant);
    rt_client_close(&other);
    rt_client_close(&coordinator);
}
