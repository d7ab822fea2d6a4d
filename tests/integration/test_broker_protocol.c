/*
 * relaisd's protocol boundary, tested from outside: a real broker process, raw DEALER
 * clients, hand-built frames. Sessions (Hello/Welcome, NO_SESSION, versions), every
 * malformed input of PROTOCOL.md section 1, forged senders — and proof that none of it
 * disturbs a legitimate pair exchanging messages at the same time.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define T 3000
#define A "staff:claire.martin@cabinet-dupont"
#define B "rpps:10101234567"

static rt_broker_t broker;

static void start(void)
{
    static const char *args[] = {"--max-frame-bytes", "4096", "--heartbeat-ms", "1000", NULL};
    rt_suite_start(&broker, args);
}

static void stop(void)
{
    rt_suite_stop(&broker);
}

TestSuite(protocol, .init = start, .fini = stop, .timeout = 60);

static void send_hello(rt_client_t *c, unsigned version, const char *address)
{
    Relais__V1__Hello h = RELAIS__V1__HELLO__INIT;
    h.protocol_version = version;
    h.address = (char *)address;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_HELLO;
    f.hello = &h;
    cr_assert_eq(rt_client_send(c, &f), 0);
}

Test(protocol, hello_is_answered_by_welcome_naming_the_session_identity)
{
    rt_client_t c;
    cr_assert_eq(rt_client_open_as(&c, &broker, A), 0);
    send_hello(&c, 1, A);
    Relais__V1__Frame *w;
    cr_assert_eq(rt_client_expect(&c, RELAIS__V1__FRAME__KIND_WELCOME, T, &w), 0);
    cr_expect_str_eq(w->welcome->address, A);
    cr_expect_eq(w->welcome->heartbeat_ms, 1000);
    cr_expect_eq(w->welcome->max_frame_bytes, 4096);
    cr_expect_eq(w->welcome->max_recipients, 64);
    cr_expect_gt(w->welcome->server_time_ms, 0);
    relais_frame_free(&w);
    rt_client_close(&c);
}

Test(protocol, a_submit_before_hello_gets_no_session)
{
    rt_client_t c;
    rt_env_t e;
    cr_assert_eq(rt_client_open_as(&c, &broker, A), 0);
    rt_env_note(&e, B, "hello?");
    cr_assert_eq(rt_client_submit_nowait(&c, &e), 0);
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__NO_SESSION, T, reason), 0);
    cr_expect(strstr(reason, "Hello") != NULL, "reason should say to send Hello: %s", reason);
    rt_client_close(&c);
}

Test(protocol, an_unknown_protocol_version_gets_unsupported_version)
{
    rt_client_t c;
    cr_assert_eq(rt_client_open_as(&c, &broker, A), 0);
    send_hello(&c, 2, A);
    cr_assert_eq(rt_client_expect_code(&c, false,
                                       RELAIS__V1__ERROR__ERROR_CODE__UNSUPPORTED_VERSION, T, NULL),
                 0);
    /* The same connection may then say Hello properly. */
    cr_assert_eq(rt_client_hello(&c, A, 8, T), 0);
    rt_client_close(&c);
}

Test(protocol, garbage_empty_multipart_and_oversize_messages_each_get_a_specific_error)
{
    rt_client_t c;
    cr_assert_eq(rt_client_open_as(&c, &broker, A), 0);
    char reason[RELAIS_REASON_MAX];

    const uint8_t garbage[] = {0xff, 0xff, 0xff, 0x07, 0x01, 0x02};
    cr_assert_eq(rt_client_send_raw(&c, garbage, sizeof(garbage), false), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME, T, NULL), 0);

    cr_assert_eq(rt_client_send_raw(&c, "", 0, false), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME, T, NULL), 0);

    cr_assert_eq(rt_client_send_raw(&c, "a", 1, true), 0);
    cr_assert_eq(rt_client_send_raw(&c, "b", 1, true), 0);
    cr_assert_eq(rt_client_send_raw(&c, "c", 1, false), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME, T, reason), 0);
    cr_expect(strstr(reason, "3 parts") != NULL, "reason counts the parts: %s", reason);

    size_t big = 8192; /* over the 4096 announced, under the hard cap */
    uint8_t *buf = calloc(1, big);
    cr_assert_eq(rt_client_send_raw(&c, buf, big, false), 0);
    free(buf);
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__TOO_LARGE, T, NULL), 0);

    /* A frame kind only the broker sends. */
    Relais__V1__Pong p = RELAIS__V1__PONG__INIT;
    Relais__V1__Welcome w = RELAIS__V1__WELCOME__INIT;
    (void)p;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_WELCOME;
    f.welcome = &w;
    cr_assert_eq(rt_client_hello(&c, A, 8, T), 0);
    cr_assert_eq(rt_client_send(&c, &f), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME, T, NULL), 0);
    rt_client_close(&c);
}

Test(protocol, an_invalid_envelope_is_rejected_with_the_rule_it_breaks)
{
    rt_client_t c;
    rt_env_t e;
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(rt_client_open_as(&c, &broker, A), 0);
    cr_assert_eq(rt_client_hello(&c, A, 8, T), 0);

    rt_env_note(&e, B, "short id");
    e.env.message_id.len = 3;
    cr_assert_eq(rt_client_submit_nowait(&c, &e), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, true, RELAIS__V1__ERROR__ERROR_CODE__INVALID_ENVELOPE, T, reason),
        0);
    cr_expect(strstr(reason, "message_id") != NULL, "reason: %s", reason);

    rt_env_note(&e, "rpps:123", "bad address");
    cr_assert_eq(rt_client_submit_nowait(&c, &e), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, true, RELAIS__V1__ERROR__ERROR_CODE__INVALID_ENVELOPE, T, reason),
        0);
    cr_expect(strstr(reason, "to[0]") != NULL, "reason: %s", reason);

    rt_env_note(&e, B, "too late");
    e.env.expires_at_ms = relais_now_ms() - 1000;
    cr_assert_eq(rt_client_submit_nowait(&c, &e), 0);
    cr_assert_eq(rt_client_expect_code(&c, true, RELAIS__V1__ERROR__ERROR_CODE__EXPIRED, T, NULL),
                 0);

    rt_env_note(&e, B, "no body");
    e.env.body_case = RELAIS__V1__ENVELOPE__BODY__NOT_SET;
    cr_assert_eq(rt_client_submit_nowait(&c, &e), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, true, RELAIS__V1__ERROR__ERROR_CODE__INVALID_ENVELOPE, T, NULL),
        0);
    rt_client_close(&c);
}

Test(protocol, a_submission_claiming_another_sender_is_forbidden)
{
    rt_client_t c;
    rt_env_t e;
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(rt_client_open_as(&c, &broker, A), 0);
    cr_assert_eq(rt_client_hello(&c, A, 8, T), 0);
    rt_env_note(&e, B, "forged");
    e.env.sender = "rpps:19999999999";
    cr_assert_eq(rt_client_submit_nowait(&c, &e), 0);
    cr_assert_eq(
        rt_client_expect_code(&c, true, RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, T, reason), 0);
    cr_expect(strstr(reason, "sender") != NULL, "reason: %s", reason);
    /* Writing one's own address is harmless. */
    rt_env_note(&e, B, "honest");
    e.env.sender = A;
    cr_assert_eq(rt_client_submit(&c, &e, T), 0);
    rt_client_close(&c);
}

/* The hostile client's turn: one of each bad input, in rotation. */
static void hostile_step(rt_client_t *h, int i)
{
    uint8_t buf[8192] = {0};
    switch (i % 5) {
    case 0:
        rt_client_send_raw(h, "\x0a\xff\xff\xff\xff\x0f", 6, false);
        break;
    case 1:
        rt_client_send_raw(h, "", 0, false);
        break;
    case 2:
        rt_client_send_raw(h, "x", 1, true);
        rt_client_send_raw(h, "y", 1, false);
        break;
    case 3:
        rt_client_send_raw(h, buf, sizeof(buf), false);
        break;
    default: {
        rt_env_t e;
        rt_env_note(&e, B, "no session");
        rt_client_submit_nowait(h, &e);
        break;
    }
    }
}

Test(protocol, hostile_input_does_not_disturb_a_legitimate_exchange)
{
    rt_client_t a, b, h;
    cr_assert_eq(rt_client_open_as(&a, &broker, A), 0);
    cr_assert_eq(rt_client_open_as(&b, &broker, B), 0);
    cr_assert_eq(rt_client_open_as(&h, &broker, "rpps:10100000001"), 0);
    cr_assert_eq(rt_client_hello(&a, A, 8, T), 0);
    cr_assert_eq(rt_client_hello(&b, B, 8, T), 0);

    enum { N = 100 };
    int errors = 0;
    for (int i = 0; i < N; i++) {
        hostile_step(&h, i);
        rt_env_t e;
        char text[32];
        snprintf(text, sizeof(text), "msg %d", i);
        rt_env_note(&e, B, text);
        cr_assert_eq(rt_client_submit(&a, &e, T), 0, "submission %d must be accepted", i);
        Relais__V1__Frame *d;
        cr_assert_eq(rt_client_expect(&b, RELAIS__V1__FRAME__KIND_DELIVER, T, &d), 0,
                     "delivery %d must arrive", i);
        cr_assert_str_eq(d->deliver->envelope->note->text, text, "in order");
        cr_assert_str_eq(d->deliver->envelope->sender, A);
        cr_assert_eq(rt_client_ack(&b, d->deliver->envelope->message_id.data,
                                   RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL),
                     0);
        relais_frame_free(&d);
        Relais__V1__Frame *err;
        while (rt_client_recv(&h, 0, &err) == 0) {
            errors += err->kind_case == RELAIS__V1__FRAME__KIND_ERROR;
            relais_frame_free(&err);
        }
    }
    /* Every hostile input got its own Error. */
    Relais__V1__Frame *err;
    while (errors < N && rt_client_recv(&h, T, &err) == 0) {
        errors += err->kind_case == RELAIS__V1__FRAME__KIND_ERROR;
        relais_frame_free(&err);
    }
    cr_expect_eq(errors, N, "one Error per hostile message, got %d", errors);
    rt_client_close(&a);
    rt_client_close(&b);
    rt_client_close(&h);
}

/* Development mode: the agent declares its address in Hello, so the broker checks it. */
static void start_insecure(void)
{
    static const char *args[] = {"--heartbeat-ms", "1000", NULL};
    broker.insecure = true;
    rt_suite_start(&broker, args);
}

TestSuite(insecure_mode, .init = start_insecure, .fini = stop, .timeout = 60);

Test(insecure_mode, a_hello_without_a_valid_address_is_refused)
{
    rt_client_t c;
    cr_assert_eq(rt_client_open(&c, broker.endpoint), 0);
    send_hello(&c, 1, "rpps:123");
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, T, reason), 0);
    cr_expect(strstr(reason, "rpps") != NULL, "reason names the bad address: %s", reason);
    send_hello(&c, 1, "service:nurse@cpts-rennes-nord");
    cr_assert_eq(
        rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN, T, reason), 0);
    cr_expect(strstr(reason, "pool") != NULL, "reason: %s", reason);
    rt_client_close(&c);
}


/* The default frame limit (1 MiB): what happens to frames far above it. */
static void start_default_limit(void)
{
    static const char *args[] = {"--heartbeat-ms", "60000", NULL};
    rt_suite_start(&broker, args);
}

TestSuite(large_frames, .init = start_default_limit, .fini = stop, .timeout = 60);

Test(large_frames, a_frame_up_to_eight_times_the_limit_gets_too_large_and_beyond_a_logged_close)
{
    rt_client_t c = rt_session(&broker, A, 8);
    size_t sizes[] = {2u << 20, 6u << 20}; /* 2 and 6 MiB: both above the 1 MiB limit */
    for (size_t i = 0; i < 2; i++) {
        char *big = calloc(1, sizes[i]);
        cr_assert_eq(rt_client_send_raw(&c, big, sizes[i], false), 0);
        free(big);
        char reason[RELAIS_REASON_MAX];
        cr_expect_eq(
            rt_client_expect_code(&c, false, RELAIS__V1__ERROR__ERROR_CODE__TOO_LARGE, T, reason),
            0, "a %zu-byte frame gets Error{TOO_LARGE}, not silence", sizes[i]);
    }
    /* The session survives both: a Ping is answered. */
    Relais__V1__Ping p = RELAIS__V1__PING__INIT;
    Relais__V1__Frame pf = RELAIS__V1__FRAME__INIT;
    pf.kind_case = RELAIS__V1__FRAME__KIND_PING;
    pf.ping = &p;
    cr_assert_eq(rt_client_send(&c, &pf), 0);
    Relais__V1__Frame *pong;
    cr_assert_eq(rt_client_expect(&c, RELAIS__V1__FRAME__KIND_PONG, T, &pong), 0);
    relais_frame_free(&pong);
    /* Past the transport's hard limit the connection goes, and the broker says so. */
    size_t huge = 9u << 20;
    char *big = calloc(1, huge);
    cr_assert_eq(rt_client_send_raw(&c, big, huge, false), 0);
    free(big);
    cr_expect_eq(rt_broker_wait_log(&broker, "transport limit", T), 0,
                 "the disconnection is logged with its likely cause");
    rt_client_close(&c);
}
