/*
 * relais-hl7 end to end: a real relaisd (CURVE, test territory), the real gateway process,
 * MLLP senders over real sockets, and the territory's receiving agents (the GP's assistant
 * and the CPTS coordinator) as SDK agents. Each test states one rule of docs/HL7.md.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <unistd.h>

#include "test_hl7_support.h"

#define WAIT 15000

static rt_broker_t broker;
static hl7_gwproc_t gw;
static hl7_receiver_t assistant, coordinator;

static void setup(void)
{
    memset(&broker, 0, sizeof broker);
    rt_suite_start(&broker, NULL);
    cr_assert_eq(hl7_receiver_start(&assistant, &broker, HL7_ASSISTANT), 0);
    cr_assert_eq(hl7_receiver_start(&coordinator, &broker, HL7_COORDINATOR), 0);
    cr_assert_eq(hl7_gw_start(&gw, &broker,
                              "max_message_bytes: 4096, frame_timeout_ms: 500, max_connections: 8"),
                 0);
    /* The gateway answers AR until its agent has the broker's Welcome: wait for it. */
    cr_assert_eq(rt_broker_wait_log(&gw.log, "state=ready", WAIT), 0);
}

static void teardown(void)
{
    cr_expect_eq(hl7_gw_stop(&gw), 0, "relais-hl7 exit status");
    hl7_gw_cleanup(&gw);
    hl7_receiver_stop(&assistant);
    hl7_receiver_stop(&coordinator);
    rt_suite_stop(&broker);
}

TestSuite(hl7_gateway, .init = setup, .fini = teardown, .timeout = 60);

static int conn(void)
{
    int fd = hl7_connect(gw.port);
    cr_assert_geq(fd, 0);
    return fd;
}

Test(hl7_gateway, acknowledges_a_discharge_once_accepted_and_the_assistant_gets_it)
{
    int fd = conn();
    size_t len;
    char *msg = hl7_sample("a03-heart-failure.hl7", &len);
    char code[4], *ack;
    cr_assert_eq(hl7_roundtrip(fd, msg, code, &ack, WAIT), 0);
    cr_assert_str_eq(code, "AA", "%s", ack);
    cr_assert(strstr(ack, "MSA|AA|MSG-A03-0001") != NULL);
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, 1, WAIT), 0);
    cr_assert_str_eq(assistant.last_encounter, "VN2026-000123");
    cr_assert_str_eq(assistant.last_programme, "heart-failure");
    cr_assert_eq(assistant.last_items, 3);
    cr_assert_str_eq(assistant.last_ins, "248031234567890");
    /* The log says what happened, and nothing of the patient. */
    cr_assert_eq(rt_broker_wait_log(&gw.log,
                                    "control=MSG-A03-0001 type=ADT^A03^ADT_A03 ack=AA "
                                    "route=practice messages=1",
                                    WAIT),
                 0);
    cr_assert_neq(rt_broker_wait_log(&gw.log, "MARTIN", 1), 0);
    cr_assert_neq(rt_broker_wait_log(&gw.log, "248031234567890", 1), 0);
    free(ack);
    free(msg);
    close(fd);
}

Test(hl7_gateway, notifies_a_preadmission_an_admission_and_a_cancelled_discharge)
{
    int fd = conn();
    size_t len;
    char code[4];
    char *msg = hl7_sample("a05-preadmission.hl7", &len);
    cr_assert_eq(hl7_roundtrip(fd, msg, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.decisions, 1, WAIT), 0);
    free(msg);
    msg = hl7_sample("a01-admission.hl7", &len);
    cr_assert_eq(hl7_roundtrip(fd, msg, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.admissions, 1, WAIT), 0);
    free(msg);
    const char *a13 = "MSH|^~\\&|DXCARE|CHU-RENNES|R|C|1||ADT^A13^ADT_A01|A13-1|P|2.5\r"
                      "PID|1||9^^^X^PI\rROL|1|UC|ODRP|10101234567^^^^^^^^^^^^RPPS\r"
                      "PV1|1|I|||||||||||||||||VN9\r";
    cr_assert_eq(hl7_roundtrip(fd, a13, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.cancels, 1, WAIT), 0);
    close(fd);
}

Test(hl7_gateway, refers_a_patient_to_the_named_specialist)
{
    hl7_receiver_t cardiologist;
    cr_assert_eq(hl7_receiver_start(&cardiologist, &broker, HL7_CARDIOLOGIST), 0);
    int fd = conn();
    size_t len;
    char *msg = hl7_sample("ref-i12-named.hl7", &len);
    char code[4];
    cr_assert_eq(hl7_roundtrip(fd, msg, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&cardiologist, &cardiologist.requests, 1, WAIT), 0);
    cr_assert_str_eq(cardiologist.last_encounter, "REF-2026-0007");
    free(msg);
    close(fd);
    hl7_receiver_stop(&cardiologist);
}

Test(hl7_gateway, answers_a_resent_message_with_the_same_ack_and_delivers_nothing_new)
{
    int fd = conn();
    char *a1 = hl7_a03("DUP-1", "VN-DUP-1"), *a2 = hl7_a03("DUP-2", "VN-DUP-2");
    char code[4], *ack1, *ack2, *ack3;
    cr_assert_eq(hl7_roundtrip(fd, a1, code, &ack1, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    /* Sent again, on another connection as an engine does after a timeout. */
    int fd2 = conn();
    cr_assert_eq(hl7_roundtrip(fd2, a1, code, &ack2, WAIT), 0);
    cr_assert_str_eq(ack2, ack1, "the stored ACK, byte for byte");
    cr_assert_eq(hl7_roundtrip(fd, a2, code, &ack3, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    /* The second message arrived after the resend: had the resend produced a delivery, it
     * would have come before. */
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, 2, WAIT), 0);
    cr_assert_eq(hl7_receiver_count(&assistant, "VN-DUP-1"), 1);
    cr_assert_eq(hl7_receiver_count(&assistant, "VN-DUP-2"), 1);
    cr_assert_eq(assistant.discharges, 2);
    free(ack1), free(ack2), free(ack3), free(a1), free(a2);
    close(fd), close(fd2);
}

Test(hl7_gateway, refuses_a_reused_control_id_with_other_content_with_error_205)
{
    int fd = conn();
    char *a1 = hl7_a03("REUSE-1", "VN-R1"), *a2 = hl7_a03("REUSE-1", "VN-R2");
    char code[4], *ack;
    cr_assert_eq(hl7_roundtrip(fd, a1, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_roundtrip(fd, a2, code, &ack, WAIT), 0);
    cr_assert_str_eq(code, "AE");
    cr_assert(strstr(ack, "|205^") != NULL, "%s", ack);
    free(ack), free(a1), free(a2);
    close(fd);
}

Test(hl7_gateway, sends_an_unresolvable_gp_to_the_coordinator_and_still_answers_aa)
{
    int fd = conn();
    size_t len;
    char *msg = hl7_sample("a03-unknown-gp.hl7", &len);
    char code[4];
    cr_assert_eq(hl7_roundtrip(fd, msg, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&coordinator, &coordinator.discharges, 1, WAIT), 0);
    cr_assert_eq(hl7_receiver_wait(&coordinator, &coordinator.escalations, 1, WAIT), 0);
    cr_assert(strstr(coordinator.last_reason, "not in the territory directory") != NULL);
    cr_assert_eq(assistant.discharges, 0);
    free(msg);
    close(fd);
}

Test(hl7_gateway, answers_ae_with_err_for_what_can_never_be_taken)
{
    static const struct {
        const char *sample, *err;
    } cases[] = {
        {"a03-test-ins.hl7", "|103^"},     /* test INS, production territory */
        {"a03-processing-t.hl7", "|202^"}, /* processing id T on a P channel */
        {"a08-update.hl7", "|201^"},       /* a trigger not mapped */
        {"a03-no-time.hl7", "|101^"},      /* no discharge time anywhere */
    };
    int fd = conn();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len;
        char *msg = hl7_sample(cases[i].sample, &len);
        char code[4], *ack;
        cr_assert_eq(hl7_roundtrip(fd, msg, code, &ack, WAIT), 0, "%s", cases[i].sample);
        cr_assert_str_eq(code, "AE", "%s: %s", cases[i].sample, ack);
        cr_assert(strstr(ack, "\rERR|") != NULL && strstr(ack, cases[i].err) != NULL, "%s: %s",
                  cases[i].sample, ack);
        free(ack), free(msg);
    }
    /* Not HL7 at all, inside a good frame: AE, and the connection keeps serving. */
    char code[4];
    cr_assert_eq(hl7_roundtrip(fd, "HELLO", code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AE");
    char *ok = hl7_a03("AFTER-AE", "VN-AFTER-AE");
    cr_assert_eq(hl7_roundtrip(fd, ok, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    free(ok);
    close(fd);
}

Test(hl7_gateway, answers_pipelined_messages_in_order_one_at_a_time)
{
    int fd = conn();
    char *m[3] = {hl7_a03("PIPE-1", "VN-P1"), hl7_a03("PIPE-2", "VN-P2"),
                  hl7_a03("PIPE-3", "VN-P3")};
    /* All three frames in one write: the gateway still takes them one by one. */
    char all[16384];
    size_t n = 0;
    for (int i = 0; i < 3; i++) {
        size_t l = strlen(m[i]);
        all[n++] = 0x0B;
        memcpy(all + n, m[i], l);
        n += l;
        all[n++] = 0x1C;
        all[n++] = 0x0D;
    }
    cr_assert_eq(hl7_send_raw(fd, all, n), 0);
    for (int i = 0; i < 3; i++) {
        char *ack, want[32];
        cr_assert_eq(hl7_recv(fd, WAIT, &ack), 0);
        snprintf(want, sizeof want, "MSA|AA|PIPE-%d\r", i + 1);
        cr_assert(strstr(ack, want) != NULL, "%s", ack);
        free(ack);
        free(m[i]);
    }
    close(fd);
}

Test(hl7_gateway, closes_a_connection_that_does_not_speak_mllp_and_keeps_serving)
{
    int fd = conn();
    cr_assert_eq(hl7_send_raw(fd, "GET / HTTP/1.0\r\n\r\n", 18), 0);
    char *out;
    cr_assert_eq(hl7_recv(fd, WAIT, &out), 1, "closed without an answer");
    close(fd);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "bytes before the MLLP start block", WAIT), 0);
    /* Oversize (limit 4096 here): AE naming the limit, then the connection closes. */
    fd = conn();
    char big[6000];
    memset(big, 'X', sizeof big);
    memcpy(big, "MSH|^~\\&|DXCARE|H|R|C|1||ADT^A03|BIG-1|P|2.5\rNTE|1||", 48);
    cr_assert_eq(hl7_send(fd, big, sizeof big), 0);
    cr_assert_eq(hl7_recv(fd, WAIT, &out), 0);
    cr_assert(strstr(out, "MSA|AE|BIG-1") != NULL && strstr(out, "size limit") != NULL, "%s", out);
    free(out);
    cr_assert_eq(hl7_recv(fd, WAIT, &out), 1);
    close(fd);
    /* End of stream in the middle of a frame: logged. */
    fd = conn();
    const char *part = "\x0bMSH|^~\\&|DXCARE";
    cr_assert_eq(hl7_send_raw(fd, part, strlen(part)), 0);
    shutdown(fd, SHUT_WR);
    cr_assert_eq(hl7_recv(fd, WAIT, &out), 1);
    close(fd);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "end of stream in the middle of a frame", WAIT), 0);
    /* Garbage after the end block: AE, closed. */
    fd = conn();
    char *m = hl7_a03("TRAILER-1", "VN-T1");
    char framed[8192];
    size_t l = strlen(m);
    framed[0] = 0x0B;
    memcpy(framed + 1, m, l);
    framed[l + 1] = 0x1C;
    framed[l + 2] = 'Z';
    cr_assert_eq(hl7_send_raw(fd, framed, l + 3), 0);
    cr_assert_eq(hl7_recv(fd, WAIT, &out), 0);
    cr_assert(strstr(out, "MSA|AE|TRAILER-1") != NULL, "%s", out);
    free(out);
    free(m);
    close(fd);
    /* And a well-behaved sender is still served. */
    fd = conn();
    char code[4];
    m = hl7_a03("AFTER-FRAMING", "VN-AF");
    cr_assert_eq(hl7_roundtrip(fd, m, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    free(m);
    close(fd);
}

Test(hl7_gateway, ends_a_slow_sender_and_refuses_connections_over_the_limit)
{
    /* Half a frame, then nothing: closed once frame_timeout_ms (500 here) has passed. */
    int slow = conn();
    const char *half = "\x0bMSH|^~\\&|DXCARE|CHU";
    cr_assert_eq(hl7_send_raw(slow, half, strlen(half)), 0);
    char *out;
    cr_assert_eq(hl7_recv(slow, WAIT, &out), 1);
    close(slow);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "frame not completed in time (slow sender)", WAIT), 0);
    /* max_connections is 8: the ninth is closed at once, the first eight still work. */
    int fds[9];
    for (int i = 0; i < 9; i++) fds[i] = conn();
    cr_assert_eq(hl7_recv(fds[8], WAIT, &out), 1, "the ninth connection is closed");
    cr_assert_eq(rt_broker_wait_log(&gw.log, "too many connections on this channel", WAIT), 0);
    char code[4];
    char *m = hl7_a03("LIMIT-1", "VN-LIMIT-1");
    cr_assert_eq(hl7_roundtrip(fds[0], m, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    free(m);
    for (int i = 0; i < 9; i++) close(fds[i]);
}

Test(hl7_gateway, answers_ar_while_the_broker_is_down_then_aa_once_it_is_back)
{
    int fd = conn();
    char *m = hl7_a03("DOWN-1", "VN-DOWN-1");
    unsigned ready = rt_broker_log_count(&gw.log, "state=ready");
    rt_broker_kill9(&broker);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "state=disconnected", WAIT), 0);
    char code[4], *ack;
    cr_assert_eq(hl7_roundtrip(fd, m, code, &ack, WAIT), 0);
    cr_assert_str_eq(code, "AR", "%s", ack);
    free(ack);
    cr_assert_eq(rt_broker_start(&broker, NULL, WAIT), 0);
    /* The engine resends until AA. The gateway answers AR at once while its agent is not
     * connected: after an AR, the next resend waits for the agent's next "state=ready" (the
     * ones logged before the kill do not count). */
    int tries = 0;
    do {
        cr_assert_eq(hl7_roundtrip(fd, m, code, NULL, WAIT), 0);
        if (strcmp(code, "AA") != 0) {
            rt_broker_wait_log_count(&gw.log, "state=ready", ready + 1, WAIT);
            ready = rt_broker_log_count(&gw.log, "state=ready");
        }
    } while (strcmp(code, "AA") != 0 && ++tries < 20);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, 1, WAIT), 0);
    cr_assert_eq(hl7_receiver_count(&assistant, "VN-DOWN-1"), 1);
    free(m);
    close(fd);
}

Test(hl7_gateway, keeps_acknowledgements_across_a_gateway_restart)
{
    int fd = conn();
    char *m = hl7_a03("RESTART-1", "VN-RS1");
    char code[4], *ack1, *ack2;
    cr_assert_eq(hl7_roundtrip(fd, m, code, &ack1, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    close(fd);
    cr_assert_eq(hl7_gw_stop(&gw), 0);
    cr_assert_eq(hl7_gw_restart(&gw), 0);
    fd = conn();
    cr_assert_eq(hl7_roundtrip(fd, m, code, &ack2, WAIT), 0);
    cr_assert_str_eq(ack2, ack1);
    char *m2 = hl7_a03("RESTART-2", "VN-RS2");
    cr_assert_eq(rt_broker_wait_log(&gw.log, "state=ready", WAIT), 0);
    cr_assert_eq(hl7_roundtrip(fd, m2, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, 2, WAIT), 0);
    cr_assert_eq(hl7_receiver_count(&assistant, "VN-RS1"), 1);
    free(ack1), free(ack2), free(m), free(m2);
    close(fd);
}

Test(hl7_gateway, honours_enhanced_mode_and_sends_nothing_when_msh15_says_never)
{
    int fd = conn();
    size_t len;
    char *enh = hl7_sample("a03-enhanced.hl7", &len);
    char code[4];
    cr_assert_eq(hl7_roundtrip(fd, enh, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "CA");
    free(enh);
    /* MSH-15 NE: accepted, delivered, and no acknowledgement on the connection; the next
     * frame's ACK is the first one the sender reads. */
    char *ne = hl7_a03("NE-1", "VN-NE-1"), *next = hl7_a03("NE-2", "VN-NE-2");
    const char *from = "|2.5^FRA^2.11|||||FRA|", *to = "|2.5^FRA^2.11|||NE||FRA|";
    char *p = strstr(ne, from);
    cr_assert_not_null(p);
    size_t n = strlen(ne) + strlen(to) + 1;
    char *fixed = malloc(n);
    snprintf(fixed, n, "%.*s%s%s", (int)(p - ne), ne, to, p + strlen(from));
    cr_assert_eq(hl7_send(fd, fixed, strlen(fixed)), 0);
    char *ack;
    cr_assert_eq(hl7_roundtrip(fd, next, code, &ack, WAIT), 0);
    cr_assert(strstr(ack, "MSA|AA|NE-2") != NULL, "%s", ack);
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, 3, WAIT), 0);
    cr_assert_eq(hl7_receiver_count(&assistant, "VN-NE-1"), 1);
    free(ack), free(ne), free(next), free(fixed);
    close(fd);
}

/* A broker that takes 1 submission per second from each agent answers the rest
 * OVERLOADED: the hospital gets AR (resend later), never AA without storage. */
static rt_broker_t slow_broker;
static hl7_gwproc_t slow_gw;

static void slow_setup(void)
{
    memset(&slow_broker, 0, sizeof slow_broker);
    slow_broker.rate_limit = 1; /* rt_suite_start() would clear it */
    cr_assert_eq(rt_broker_start(&slow_broker, NULL, WAIT), 0);
    cr_assert_eq(hl7_gw_start(&slow_gw, &slow_broker, NULL), 0);
    cr_assert_eq(rt_broker_wait_log(&slow_gw.log, "state=ready", WAIT), 0);
}

static void slow_teardown(void)
{
    cr_expect_eq(hl7_gw_stop(&slow_gw), 0);
    hl7_gw_cleanup(&slow_gw);
    rt_suite_stop(&slow_broker);
}

Test(hl7_overloaded, answers_ar_when_the_broker_is_overloaded, .init = slow_setup,
     .fini = slow_teardown, .timeout = 60)
{
    int fd = hl7_connect(slow_gw.port);
    cr_assert_geq(fd, 0);
    int aa = 0, ar = 0;
    for (int i = 0; i < 6; i++) {
        char control[16], visit[16], code[4], *ack;
        snprintf(control, sizeof control, "OV-%d", i);
        snprintf(visit, sizeof visit, "VN-OV-%d", i);
        char *m = hl7_a03(control, visit);
        cr_assert_eq(hl7_roundtrip(fd, m, code, &ack, WAIT), 0);
        if (strcmp(code, "AA") == 0) aa++;
        if (strcmp(code, "AR") == 0) {
            ar++;
            cr_assert(strstr(ack, "OVERLOADED") != NULL, "%s", ack);
        }
        free(ack), free(m);
    }
    cr_assert_geq(aa, 1);
    cr_assert_geq(ar, 1, "six submissions within a second: the broker refuses some");
    close(fd);
}

Test(hl7_gateway, follows_the_directory_after_sighup)
{
    /* The CPTS removes the assistant: after SIGHUP the GP's discharges go to the GP. */
    cr_assert_eq(rt_territory_revoke(&broker, HL7_ASSISTANT, WAIT), 0);
    kill(gw.pid, SIGHUP);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "directory reloaded", WAIT), 0);
    hl7_receiver_t gp;
    cr_assert_eq(hl7_receiver_start(&gp, &broker, HL7_GP), 0);
    int fd = conn();
    char *m = hl7_a03("HUP-1", "VN-HUP-1");
    char code[4];
    cr_assert_eq(hl7_roundtrip(fd, m, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    cr_assert_eq(hl7_receiver_wait(&gp, &gp.discharges, 1, WAIT), 0);
    cr_assert_eq(
        rt_broker_wait_log(&gw.log, "control=HUP-1 type=ADT^A03^ADT_A03 ack=AA route=gp", WAIT), 0);
    free(m);
    close(fd);
    hl7_receiver_stop(&gp);
}

/* Many hospital engines at once: 200 connections, each with its message in flight. */
static rt_broker_t many_broker;
static hl7_gwproc_t many_gw;
static hl7_receiver_t many_assistant;

static void many_setup(void)
{
    memset(&many_broker, 0, sizeof many_broker);
    rt_suite_start(&many_broker, NULL);
    cr_assert_eq(hl7_receiver_start(&many_assistant, &many_broker, HL7_ASSISTANT), 0);
    cr_assert_eq(hl7_gw_start(&many_gw, &many_broker, NULL), 0);
    cr_assert_eq(rt_broker_wait_log(&many_gw.log, "state=ready", WAIT), 0);
}

static void many_teardown(void)
{
    cr_expect_eq(hl7_gw_stop(&many_gw), 0);
    hl7_gw_cleanup(&many_gw);
    hl7_receiver_stop(&many_assistant);
    rt_suite_stop(&many_broker);
}

Test(hl7_many, serves_two_hundred_connections_with_a_message_in_flight_each, .init = many_setup,
     .fini = many_teardown, .timeout = 60)
{
    enum { N = 200 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = hl7_connect(many_gw.port);
        cr_assert_geq(fds[i], 0, "connection %d", i);
    }
    for (int i = 0; i < N; i++) {
        char control[16], visit[16];
        snprintf(control, sizeof control, "MANY-%d", i);
        snprintf(visit, sizeof visit, "VN-MANY-%d", i);
        char *m = hl7_a03(control, visit);
        cr_assert_eq(hl7_send(fds[i], m, strlen(m)), 0);
        free(m);
    }
    for (int i = 0; i < N; i++) {
        char *ack, want[32];
        cr_assert_eq(hl7_recv(fds[i], WAIT, &ack), 0, "connection %d", i);
        snprintf(want, sizeof want, "MSA|AA|MANY-%d\r", i);
        cr_assert(strstr(ack, want) != NULL, "%s", ack);
        free(ack);
        close(fds[i]);
    }
    cr_assert_eq(hl7_receiver_wait(&many_assistant, &many_assistant.discharges, N, WAIT), 0);
}
