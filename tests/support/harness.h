/*
 * Test harness shared by integration and fault tests.
 *
 * By default the broker runs as in production: CurveZMQ on, with a test territory
 * directory (every address the tests use, each with its own generated keypair, and an ACL
 * that lets any of them send any body to any other, since the authorisation rules have
 * tests of their own). Clients open their sockets as one of those agents
 * (rt_client_open_as) and get its keys. Setting `insecure` before the first start runs the
 * broker in development mode instead.
 *
 * Starts a real relaisd as a child process on an ephemeral port and reads the endpoint back
 * from its ready line; stops it with SIGTERM (checking the exit status) or kills it with
 * SIGKILL; restarts it on the same endpoint and data directory. Also a raw protocol client
 * (a DEALER socket speaking Frames by hand) for tests that must send what the SDK never
 * would. Every wait has a timeout: nothing here sleeps to synchronise.
 */
#ifndef RELAIS_TEST_HARNESS_H
#define RELAIS_TEST_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "relais/codec.h"

#define RT_MAX_AGENTS 32

typedef struct rt_key {
    char address[RELAIS_ADDRESS_MAX];
    char pub[41], sec[41]; /* Z85 */
    char path[300];        /* its keypair file, for agents in other processes */
} rt_key_t;

typedef struct rt_broker {
    bool insecure;          /* set before the first start: relaisd --insecure, no keys */
    const char *directory;  /* set before start: use this directory file instead */
    bool default_acl;       /* set before the first start: PROTOCOL.md's rules, no opening */
    unsigned rate_limit;    /* submissions per second per agent; 0: 1,000,000 */
    unsigned mailbox_limit; /* pending deliveries per mailbox; 0: the default */
    char server_pub[41];    /* the broker's public key (CURVE mode) */
    char server_pub_path[300];
    rt_key_t keys[RT_MAX_AGENTS];
    size_t nkeys;
    pid_t pid;
    char endpoint[128]; /* as printed in the ready line: tcp://127.0.0.1:PORT */
    char data_dir[256]; /* fresh temporary directory, removed by rt_broker_cleanup() */
    char log_path[300]; /* the broker's stderr, kept in data_dir/relaisd.log */
    int stdout_fd;
} rt_broker_t;

/*
 * Starts relaisd with --bind (b->endpoint if set, else tcp://127.0.0.1:0),
 * --data (b->data_dir if set, else a new mkdtemp directory), then either --directory and
 * --curve-key (the test territory, generated at the first start and kept for restarts) or
 * --insecure, and extra_args (NULL-terminated, may be NULL). Waits up to timeout_ms for the ready
 * line and fills b->endpoint. Returns 0, or -1 with the reason printed to stderr.
 */
int rt_broker_start(rt_broker_t *b, const char *const *extra_args, int timeout_ms);

/* SIGTERM and wait up to timeout_ms; returns the exit status (0 expected), -1 on timeout. */
int rt_broker_stop(rt_broker_t *b, int timeout_ms);

/* SIGKILL and reap. The endpoint and data directory stay for a restart. */
void rt_broker_kill9(rt_broker_t *b);

/*
 * Waits up to timeout_ms until the broker's log contains needle (watched with inotify, no
 * polling sleeps). 0 when found, -1 on timeout.
 */
int rt_broker_wait_log(rt_broker_t *b, const char *needle, int timeout_ms);

/* Waits until the broker's log holds at least count lines containing needle. 0 or -1. */
int rt_broker_wait_log_count(rt_broker_t *b, const char *needle, unsigned count, int timeout_ms);

/* Lines of the broker's log that contain needle, now. */
unsigned rt_broker_log_count(const rt_broker_t *b, const char *needle);

/*
 * Rewrites the test territory without `address` and sends SIGHUP; waits up to timeout_ms
 * for the broker to log this reload (one more "directory reloaded" than before). 0 or -1.
 */
int rt_territory_revoke(rt_broker_t *b, const char *address, int timeout_ms);

/* The inverse: rewrites the test territory with every agent enrolled again (what a CPTS
 * does when it enrols a key), sends SIGHUP and waits for the reload. 0 or -1. */
int rt_territory_enrol_all(rt_broker_t *b, int timeout_ms);

/* Removes the data directory (after stop or kill). */
void rt_broker_cleanup(rt_broker_t *b);

/* Test-suite fixtures: start a fresh broker, or stop it (exit status 0 expected) and remove
 * its data. Both fail the current Criterion test on error. */
void rt_suite_start(rt_broker_t *b, const char *const *extra_args);
void rt_suite_stop(rt_broker_t *b);

/* ---- Raw protocol client ----------------------------------------------------------- */

typedef struct rt_client {
    void *ctx;
    void *sock;
} rt_client_t;

/* Connects a DEALER to endpoint (own ZeroMQ context), without keys: in CURVE mode its
 * handshake fails, which is what some tests want. 0 or -1. */
int rt_client_open(rt_client_t *c, const char *endpoint);

/* Connects a DEALER to b as the test agent `address`: with its CURVE keys unless b is
 * insecure. 0, or -1 when the address is not one of the test territory's. */
int rt_client_open_as(rt_client_t *c, const rt_broker_t *b, const char *address);

/* Like rt_client_open_as, with a routing id chosen by the client (ZMQ_ROUTING_ID): what an
 * attacker may choose too. */
int rt_client_open_as_rid(rt_client_t *c, const rt_broker_t *b, const char *address,
                          const char *routing_id);

/* The test agent's keys (NULL when the address is not in the test territory). */
const rt_key_t *rt_key_for(const rt_broker_t *b, const char *address);
void rt_client_close(rt_client_t *c);

/* Sends an encoded Frame as one message. 0 or -1. */
int rt_client_send(rt_client_t *c, const Relais__V1__Frame *f);

/* Sends arbitrary bytes as one message part (more=true: another part follows). */
int rt_client_send_raw(rt_client_t *c, const void *data, size_t len, bool more);

/*
 * Receives one Frame within timeout_ms. Returns 0 and a frame to free with
 * relais_frame_free(), or -1 on timeout or undecodable input.
 */
int rt_client_recv(rt_client_t *c, int timeout_ms, Relais__V1__Frame **out);

/*
 * Receives frames until one of kind `kind` arrives (others are skipped, a Ping is answered
 * with Pong) within timeout_ms. While it waits it pings every 100 ms, so that waiting is
 * never mistaken for a dead session. 0 and the frame, or -1.
 */
int rt_client_expect(rt_client_t *c, int kind, int timeout_ms, Relais__V1__Frame **out);

/* Sends Hello{version 1, address, credit} and waits for Welcome. 0 or -1. */
int rt_client_hello(rt_client_t *c, const char *address, unsigned credit, int timeout_ms);

/*
 * Builds a minimal valid envelope to `to` with a Note body ("text"); message_id is a fresh
 * UUIDv7 copied into id_out (16 bytes). The envelope points into storage owned by the
 * caller-provided rt_env_t, valid while it lives.
 */
typedef struct rt_env {
    Relais__V1__Envelope env;
    Relais__V1__Note note;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    char *to[RELAIS_MAX_RECIPIENTS];
    char text[256];
} rt_env_t;
void rt_env_note(rt_env_t *e, const char *to, const char *text);

/* Submits e's envelope and waits for Accepted (0) or anything else (-1). */
int rt_client_submit(rt_client_t *c, rt_env_t *e, int timeout_ms);

/* Opens a client on b and says Hello as address; fails the current test on error. */
rt_client_t rt_session(const rt_broker_t *b, const char *address, unsigned credit);

/* Waits for the next Deliver, which must carry a Note reading text; fails the current test
 * otherwise. The caller frees the frame. */
Relais__V1__Frame *rt_expect_note(rt_client_t *c, const char *text, int timeout_ms);

/* Sends Ack{message_id, outcome, reason} for a delivery. 0 or -1. */
int rt_client_ack(rt_client_t *c, const uint8_t *message_id, int outcome, const char *reason);

/* Sends Ack{receipt_id} for a receipt. 0 or -1. */
int rt_client_ack_receipt(rt_client_t *c, uint64_t receipt_id);

/*
 * Waits for the next frame, which must be an Error with the given wire code (or a Rejected
 * with it when rejected is true). Returns 0 when it is, -1 otherwise; the reason is copied
 * to reason_out when not NULL (RELAIS_REASON_MAX bytes).
 */
int rt_client_expect_code(rt_client_t *c, bool rejected, int wire_code, int timeout_ms,
                          char *reason_out);

/* Submits a frame with e's envelope without waiting for the answer. */
int rt_client_submit_nowait(rt_client_t *c, rt_env_t *e);

/* A minimal envelope with the given body (appointment request or offer; a discharge
 * notification for any other body, which the caller may replace), to `to`, with a fresh id. */
typedef struct rt_benv {
    Relais__V1__Envelope e;
    Relais__V1__AppointmentRequest req;
    Relais__V1__AppointmentOffer offer;
    Relais__V1__DischargeNotification discharge;
    uint8_t id[16];
    char *to[2];
} rt_benv_t;
void rt_benv_init(rt_benv_t *x, int body, const char *to);

/* Submits x and waits (skipping deliveries and receipts) for its answer: 0 for Accepted, or
 * the Rejected's wire code with its reason copied to reason (RELAIS_REASON_MAX bytes). Fails
 * the current test on a timeout. */
int rt_submit_code(rt_client_t *c, rt_benv_t *x, char *reason);

#endif /* RELAIS_TEST_HARNESS_H */
