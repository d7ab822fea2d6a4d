/*
 * Relais agent SDK.
 *
 * An agent is one participant of a territory (a medical assistant's desk, a nurse, a
 * hospital's discharge service…) connected to the broker. Each agent owns one libuv loop
 * and one ZeroMQ DEALER socket polled through ZMQ_FD on that loop; several agents may live
 * in one process, each on its own thread. The SDK handles the session (Hello/Welcome,
 * heartbeats, reconnect and re-Hello after the broker or the network went away), resends
 * unconfirmed submissions after a reconnect, acknowledges deliveries with the outcome the
 * application's handler returns, and acknowledges receipts.
 *
 * Durability (relais_agent_options_t.state_path): without a state file, unconfirmed
 * submissions and the memory of handled deliveries live in the process and die with it.
 * With one (a local SQLite file), a submission for which relais_agent_send() returned 0 is
 * on disk and survives the agent's crash — kill -9 or power loss — and its stop: the next
 * run resends it, in order, until the broker accepts or rejects it, and reports the outcome
 * to relais_agent_on_recovered()'s callback. The agent can therefore send while the broker
 * is down. Handled deliveries are remembered in the same file before they are acknowledged,
 * so a message the broker redelivers after the agent's restart is acknowledged again
 * without calling the handler. One window remains: if the process dies after a handler
 * returned but before that record reached the disk (one small transaction), the broker
 * never got the Ack and redelivers, and the handler runs a second time for that message.
 * Delivery to handlers is thus at least once, with duplicates confined to that window;
 * handlers whose effects leave the agent should tolerate a rare repeat.
 *
 * Threading rule: every function below must be called on the agent's loop thread (from a
 * handler, a callback, a timer, or before relais_agent_run()), except relais_agent_post()
 * and relais_agent_stop(), which any thread may call.
 *
 * Callback rule (as in libuv): when a function that takes a callback returns an error, the
 * callback is never called; when it returns 0, the callback is called exactly once.
 */
#ifndef RELAIS_AGENT_H
#define RELAIS_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relais/codec.h"
#include "relais/errors.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct relais_agent relais_agent_t;

typedef struct relais_agent_options {
    const char *endpoint;  /* broker endpoint, e.g. "tcp://127.0.0.1:7400" (required) */
    const char *address;   /* this agent's address (required; declared in Hello) */
    const char *software;  /* free text sent in Hello; default "relais-agent/1" */
    unsigned credit;       /* deliveries the broker may have in flight to us; default 64 */
    unsigned heartbeat_ms; /* Ping interval until the broker's Welcome says; default 1000 */
    uv_loop_t *loop;       /* NULL: the agent creates and owns a loop; else runs on yours */
    /*
     * Path of the agent's local state file (created if missing): its unconfirmed
     * submissions and its window of handled deliveries, kept across crashes and restarts
     * (see "Durability" above). NULL keeps both in memory only. A file belongs to one
     * address and is locked by one agent at a time while it exists; the lock dies with the
     * process. Every submission and every handled delivery costs one synced write to it.
     */
    const char *state_path;
    /*
     * CurveZMQ keys, Z85-encoded (40 characters), all three or none: the broker's public
     * key, and this agent's public and secret keys (relaisctl keygen writes them; the
     * territory directory lists the public one). With them the connection is encrypted and
     * the broker knows the agent by its key; without them the agent speaks in clear, which
     * only a broker started with --insecure accepts.
     */
    const char *curve_server_key;
    const char *curve_public_key;
    const char *curve_secret_key;
} relais_agent_options_t;

/*
 * Connection states reported to the state callback, with a detail saying why. The callback
 * is called when the state changes, and also with DISCONNECTED again when the agent finds a
 * new reason why it cannot connect. That reason is said once per cause (until the cause
 * changes or a connection succeeds), while the SDK keeps trying on its own: "the key is not
 * enrolled in the territory directory" (the broker refused the agent's key), "the broker's
 * public key this agent was given is most likely not the broker's", "nothing is listening
 * at <endpoint>", or CURVE on one side only. After a refused handshake the SDK retries on a
 * fresh socket after 1 s, doubling up to 30 s, with jitter; so an agent started before its
 * key is enrolled connects within that delay of the enrolment, without a restart.
 */
typedef enum relais_agent_state {
    RELAIS_AGENT_CONNECTING = 1,   /* socket connected or reconnecting, Hello sent */
    RELAIS_AGENT_READY = 2,        /* Welcome received: submissions flow */
    RELAIS_AGENT_DISCONNECTED = 3, /* broker silent for 3 heartbeats, session lost, or the
                                    * agent cannot connect (the detail says why) */
    RELAIS_AGENT_STOPPED = 4,      /* relais_agent_stop() completed; run() is returning */
} relais_agent_state_t;

/* "connecting", "ready", "disconnected", "stopped", or "unknown": for logs. */
const char *relais_agent_state_name(relais_agent_state_t state);

/* What a handler decided about a delivery; the SDK sends it as the Ack's outcome. */
typedef enum relais_outcome {
    RELAIS_PROCESSED = 1,   /* handled: the broker marks the delivery acknowledged */
    RELAIS_REFUSED = 2,     /* permanent refusal: the sender gets Receipt{REFUSED} */
    RELAIS_RETRY_LATER = 3, /* transient: the broker redelivers later */
} relais_outcome_t;

/* One delivery as a handler sees it. Valid only during the handler call. */
typedef struct relais_delivery {
    const Relais__V1__Envelope *envelope; /* sender stamped by the broker */
    unsigned attempt;                     /* 1 on first delivery */
    bool offered;                         /* OFFER dispatch: claim before acting */
    char reason[RELAIS_REASON_MAX];       /* the handler may say why it refused */
} relais_delivery_t;

typedef relais_outcome_t (*relais_handler_fn)(relais_agent_t *agent, relais_delivery_t *d,
                                              void *ud);

/* The broker's answer to a submission. Pointers are valid only during the callback. */
typedef struct relais_send_result {
    int status;                /* 0: accepted (durably stored); else RELAIS_E… */
    const char *reason;        /* why it was rejected; "" when accepted */
    const uint8_t *message_id; /* 16 bytes */
    bool duplicate;            /* the broker had already accepted this message id */
    int64_t accepted_at_ms;
    int64_t retry_after_ms; /* set with RELAIS_EOVERLOADED / RELAIS_ESTORE */
} relais_send_result_t;

typedef void (*relais_send_cb)(relais_agent_t *agent, const relais_send_result_t *result, void *ud);
typedef void (*relais_receipt_fn)(relais_agent_t *agent, const Relais__V1__Receipt *receipt,
                                  void *ud);
typedef void (*relais_state_fn)(relais_agent_t *agent, relais_agent_state_t state,
                                const char *detail, void *ud);
typedef void (*relais_agent_fn)(relais_agent_t *agent, void *ud);

/*
 * Creates an agent. Nothing connects until relais_agent_run() or relais_agent_start().
 * With a state_path, the file is opened and locked here, and the submissions and handled
 * deliveries a previous run left in it are loaded; the recovered submissions are resent,
 * before any new one, after the first Welcome. Returns 0 and the agent in *out,
 * RELAIS_ECONFIG for a missing endpoint, an invalid address, or a state file that belongs to
 * another address or was written by a newer SDK; -EBUSY when another agent (in this process
 * or another) has the state file open; RELAIS_ESTORE when the state file cannot be opened,
 * read or written (the reason is logged); -ENOMEM, or a ZeroMQ/libuv error.
 */
int relais_agent_new(relais_agent_t **out, const relais_agent_options_t *opts);

/*
 * Frees an agent whose loop is no longer running (after run() returned, or after the
 * embedding program ran its loop to the end following relais_agent_stop()). Accepts NULL
 * and sets *agent to NULL.
 */
void relais_agent_destroy(relais_agent_t **agent);

/*
 * Registers the handler for one body type (a Relais__V1__Envelope__BodyCase value), or the
 * fallback for every unhandled type with body_case 0. A later call replaces the earlier
 * handler. A delivery that no handler takes is acknowledged REFUSED, with a reason.
 */
int relais_agent_on(relais_agent_t *agent, int body_case, relais_handler_fn fn, void *ud);

void relais_agent_on_receipt(relais_agent_t *agent, relais_receipt_fn fn, void *ud);

/*
 * Offers: a service pool in OFFER mode offers a delivery to every member
 * (relais_delivery_t.offered); the first member to claim it gets it. The offer callback
 * decides, before any handler runs: RELAIS_OFFER_CLAIM makes the SDK claim it, and only if
 * the broker grants the claim does the delivery reach its body handler (offered still
 * true) and get acknowledged with the handler's outcome; RELAIS_OFFER_DECLINE answers the
 * offer with a refusal. Without an offer callback the SDK claims every offer for which a
 * body handler is registered and declines the others. An offer withdrawn (claimed by
 * another member, or past its deadline) or whose claim is refused never reaches the
 * handler; the withdrawn callback, if any, is told.
 */
typedef enum relais_offer_decision {
    RELAIS_OFFER_CLAIM = 1,
    RELAIS_OFFER_DECLINE = 2,
} relais_offer_decision_t;
typedef relais_offer_decision_t (*relais_offer_fn)(relais_agent_t *agent,
                                                   const relais_delivery_t *d, void *ud);
typedef void (*relais_withdrawn_fn)(relais_agent_t *agent, const uint8_t *message_id,
                                    const char *reason, void *ud);
void relais_agent_on_offer(relais_agent_t *agent, relais_offer_fn fn, void *ud);
void relais_agent_on_withdrawn(relais_agent_t *agent, relais_withdrawn_fn fn, void *ud);

/*
 * Observes every delivery the agent acknowledges, whoever decided the outcome: a handler,
 * the conversation tracking (a message that repeats what is known, or does not fit), or
 * the absence of a handler. Called on the loop thread just before the Ack leaves, once per
 * delivery (not again for a redelivery the dedup window recognises). For monitoring and
 * accounting (relais-sim counts with it that nothing is lost); it must not send.
 */
typedef void (*relais_acked_fn)(relais_agent_t *agent, const Relais__V1__Envelope *env,
                                relais_outcome_t outcome, const char *reason, void *ud);
void relais_agent_on_acked(relais_agent_t *agent, relais_acked_fn fn, void *ud);

/*
 * Observes the broker's answer to every submission of this agent: the application's, the
 * SDK's own (an escalation, a re-dispatch, the cancel a provider gets when a request is
 * taken from it, a preadmission's owed cancels) and those resent from the state file after
 * a restart. result->status is 0 when the broker accepted it (result->duplicate is not set
 * here); result->reason says why otherwise. Called on the loop thread before the send's
 * own callback. For accounting (relais-sim counts with it every message the broker
 * accepted); it must not send.
 */
typedef void (*relais_submitted_fn)(relais_agent_t *agent, const relais_send_result_t *result,
                                    void *ud);
void relais_agent_on_submitted(relais_agent_t *agent, relais_submitted_fn fn, void *ud);
void relais_agent_on_state(relais_agent_t *agent, relais_state_fn fn, void *ud);

/*
 * Sets the callback that receives the broker's answer to each submission recovered from
 * the state file — sent by a previous run that died or stopped before the answer came, so
 * that the callback it gave to relais_agent_send() is gone. It is called once per recovered
 * submission with the same result a relais_send_cb gets (result->message_id tells which);
 * set it before relais_agent_start() or run(). Without it the outcomes are only logged.
 * A stop of this run does not call it for recovered submissions still unanswered: they stay
 * in the file for the run after. Answered submissions are deleted from the file once per
 * loop turn, so a crash right after an answer makes the next run send that submission
 * again and report it a second time, then with duplicate=true: treat these outcomes as at
 * least once.
 */
void relais_agent_on_recovered(relais_agent_t *agent, relais_send_cb cb, void *ud);

/*
 * Submits a message. The SDK copies what it needs from env before returning (the caller
 * keeps env); it fills message_id with a new UUIDv7 when env has none and created_at_ms
 * when 0, and ignores env->sender (the broker stamps it). The id used is written to
 * message_id_out when not NULL. The submission waits in the outbox while the agent is not
 * connected and is resent after a reconnect until the broker answers; cb then reports
 * Accepted or the rejection. With a state file the submission is synced to it before this
 * returns 0, and survives the process (see relais_agent_on_recovered()). Returns 0,
 * RELAIS_EINVALID (with the envelope's first broken rule logged), RELAIS_ETOOLARGE,
 * RELAIS_ECLOSED when the agent is stopping, or RELAIS_ESTORE when the state file could not
 * be written (nothing was queued).
 */
int relais_agent_send(relais_agent_t *agent, const Relais__V1__Envelope *env,
                      uint8_t message_id_out[RELAIS_MESSAGE_ID_LEN], relais_send_cb cb, void *ud);

/*
 * Sends reply as an answer to original: `to` becomes the original sender (unless reply
 * already names recipients), conversation_id the original's conversation (or the original
 * message id when it had none), in_reply_to the original message id. Same contract as
 * relais_agent_send().
 */
int relais_agent_reply(relais_agent_t *agent, const Relais__V1__Envelope *original,
                       const Relais__V1__Envelope *reply,
                       uint8_t message_id_out[RELAIS_MESSAGE_ID_LEN], relais_send_cb cb, void *ud);

/* Runs fn once after delay_ms of real time (never scaled by a simulated clock; see
 * relais_clock_real_delay_ms()) on the loop thread. Returns 0 and an id for cancelling. */
int relais_agent_timer(relais_agent_t *agent, uint64_t delay_ms, relais_agent_fn fn, void *ud,
                       uint64_t *timer_id_out);

/* Cancels a timer that has not fired yet: its fn is never called. 0 or -ENOENT. */
int relais_agent_timer_cancel(relais_agent_t *agent, uint64_t timer_id);

/* Thread-safe: runs fn on the agent's loop thread as soon as possible. 0 or -ENOMEM or
 * RELAIS_ECLOSED when the agent has stopped. */
int relais_agent_post(relais_agent_t *agent, relais_agent_fn fn, void *ud);

/*
 * Connects and runs the agent's own loop until relais_agent_stop(). Returns 0 after an
 * orderly stop, or an error if the agent could not start. For an agent created on an
 * external loop, call relais_agent_start() and run that loop yourself instead.
 */
int relais_agent_run(relais_agent_t *agent);
int relais_agent_start(relais_agent_t *agent);

/*
 * Thread-safe: sends Bye, closes the socket and the agent's handles; submissions still
 * unconfirmed get their callback with RELAIS_ECLOSED. Without a state file they are then
 * forgotten; with one they stay in it, and the next run resends them and reports their
 * outcome to its on_recovered callback. run() returns once all is closed.
 */
void relais_agent_stop(relais_agent_t *agent);

/* The agent's address as the broker confirmed it in Welcome (or as configured before). */
const char *relais_agent_address(const relais_agent_t *agent);

/* The agent's loop (its own or the one given in the options). */
uv_loop_t *relais_agent_loop(relais_agent_t *agent);

/* True between Welcome and the loss of the session. */
bool relais_agent_ready(const relais_agent_t *agent);

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_AGENT_H */
