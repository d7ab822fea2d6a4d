/*
 * SDK agents for the acceptance scenarios (test_acceptance.c).
 *
 * Each agent runs its own loop on its own thread, answers care messages by a few switches
 * (offer when asked, book an offer, confirm a booking, decide on a preadmission, admit the
 * chosen patient, complete a care task, decline every pool offer), and records under a
 * mutex what it saw: each delivery in arrival order, offers and withdrawals, receipts, the
 * escalations it received and the conversation hooks, with the states each conversation
 * went through. Changes are signalled on a condition variable, so that the test thread
 * waits for an event with a timeout and never sleeps. The test thread acts on an agent only
 * through relais_agent_post() (acc_send(), acc_conv_get(), acc_call()).
 */
#ifndef RELAIS_TEST_ACCEPT_AGENTS_H
#define RELAIS_TEST_ACCEPT_AGENTS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "harness.h"
#include "relais/agent.h"
#include "relais/conversation.h"

/* Only a failing test waits this long: every wait ends on the event it waits for. */
#define ACC_WAIT_MS 10000
#define ACC_MAX_LOG 32
#define ACC_MAX_CONV 16
#define ACC_MAX_RECEIPTS 16
#define ACC_REF_MAX 64
#define B(x) RELAIS__V1__ENVELOPE__BODY_##x

/* One delivery that reached the agent's handler. */
typedef struct acc_delivery {
    int body;
    char sender[RELAIS_ADDRESS_MAX];
    char ref[ACC_REF_MAX];          /* the request_id or task_id it names, or "" */
    char reason[RELAIS_REASON_MAX]; /* a cancel's reason, or "" */
    uint8_t conv[RELAIS_MESSAGE_ID_LEN];
    int64_t at_ms; /* business time at arrival */
} acc_delivery_t;

typedef struct acc_receipt {
    int status;
    char recipient[RELAIS_ADDRESS_MAX];
    char claimed_by[RELAIS_ADDRESS_MAX];
    uint8_t message_id[RELAIS_MESSAGE_ID_LEN];
} acc_receipt_t;

/* A conversation as the on_change hook last showed it, and the states it went through. */
typedef struct acc_conv {
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    relais_conv_state_t state;
    char trail[192]; /* "requested>received>offered>…" */
} acc_conv_t;

/* What one agent observed. Every field is under mu. */
typedef struct acc_events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, stopped;
    int got[64]; /* deliveries handled, per body case */
    acc_delivery_t log[ACC_MAX_LOG];
    size_t nlog;
    int offers, withdrawn;
    acc_receipt_t receipts[ACC_MAX_RECEIPTS];
    size_t nreceipts;
    int escalations, esc_rc;            /* the on_escalation hook (the requester's side) */
    Relais__V1__Escalation *escalation; /* the last one delivered (the coordinator's side) */
    int64_t escalation_at_ms;           /* business time when it arrived */
    acc_conv_t convs[ACC_MAX_CONV];
    size_t nconvs;
    int ticks; /* acc_call() completions */
} acc_events_t;

typedef struct acc_agent {
    relais_agent_t *agent;
    pthread_t thread;
    bool running, inited;
    int run_rc;
    char address[RELAIS_ADDRESS_MAX];
    /* Behaviour, set before the start. */
    bool offer_on_request, book_on_offer, confirm_on_book, admit_on_choice, complete_on_task;
    bool decline_offers; /* an offer callback that never claims */
    int decision;        /* PreadmissionDecision to answer a request with (0: none) */
    acc_events_t ev;
} acc_agent_t;

/* Waits until cond (an expression over `ev`, under the lock) holds; fails the test after
 * ACC_WAIT_MS. */
#define ACC_AWAIT(t, cond)                                                                         \
    do {                                                                                           \
        acc_events_t *ev = &(t)->ev;                                                               \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_MONOTONIC, &dl_);                                                      \
        dl_.tv_sec += ACC_WAIT_MS / 1000;                                                          \
        pthread_mutex_lock(&ev->mu);                                                               \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&ev->cv, &ev->mu, &dl_) == ETIMEDOUT) break;                \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&ev->mu);                                                             \
        cr_assert(ok_, "%s timed out waiting for %s", (t)->address, #cond);                        \
    } while (0)

/* Starts t (its behaviour switches already set) as `address` on broker, tracking its
 * conversations with conv_opts when not NULL, with the state file state_path when not
 * NULL, and waits until it is ready. The record starts empty. Fails the test on error. */
void acc_agent_start(acc_agent_t *t, const rt_broker_t *broker, const char *address,
                     const relais_conv_options_t *conv_opts, const char *state_path);

/* Stops a running agent, checks its orderly end and frees it; its record stays readable
 * until the next start. No-op when not running. */
void acc_agent_stop(acc_agent_t *t);

/* Stops t if it runs and frees its record (a later start begins a new one). */
void acc_agent_free(acc_agent_t *t);

/* A message the test has an agent send (relais_agent_send() on its loop). */
typedef struct acc_msg {
    int body;
    const char *to[3];
    size_t nto;
    const uint8_t *conv;      /* the conversation it belongs to; NULL opens one */
    const char *ref;          /* request_id or task_id */
    int sub;                  /* the outcome, decision or status it carries */
    const char *on_behalf_of; /* NULL: none */
    int dispatch;             /* Relais__V1__Envelope__Dispatch */
    int64_t expires_at_ms;    /* 0: the broker's default */
    const char *text;         /* a Note's text */
    /* Filled by acc_send(). */
    int rc;
    char refusal[RELAIS_REASON_MAX];
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
} acc_msg_t;

/* Has t send m on its loop; returns relais_agent_send()'s result (also in m->rc). */
int acc_send(acc_agent_t *t, acc_msg_t *m);

/* The same, from the agent's own loop thread (a timer, a handler). */
void acc_send_on_loop(relais_agent_t *agent, acc_msg_t *m);

/* Runs fn(agent, ud) on t's loop and waits for it to return. */
void acc_call(acc_agent_t *t, relais_agent_fn fn, void *ud);

/* One conversation as the query API shows it. */
typedef struct acc_snap {
    relais_conv_kind_t kind;
    relais_conv_role_t role;
    relais_conv_state_t state;
    char counterpart[RELAIS_ADDRESS_MAX];
    int64_t deadline_ms;
    bool escalated;
    size_t nparts;
    char part_key[4][RELAIS_ADDRESS_MAX];
    relais_conv_state_t part_state[4];
} acc_snap_t;

/* relais_conv_get() on t's loop into *out; returns its result. */
int acc_conv_get(acc_agent_t *t, const uint8_t id[RELAIS_MESSAGE_ID_LEN], acc_snap_t *out);

/* The state of a snapshot's part (0 when absent). */
relais_conv_state_t acc_part(const acc_snap_t *s, const char *key);

/* Under t's lock (inside ACC_AWAIT): the last state the hooks reported for conversation id
 * (0 when none), and how many of t's conversations are in state. */
relais_conv_state_t acc_state_locked(const acc_agent_t *t, const uint8_t *id);
int acc_count_locked(const acc_agent_t *t, relais_conv_state_t state);

/* Waits until t's hooks report conversation id in state. */
void acc_await_state(acc_agent_t *t, const uint8_t *id, relais_conv_state_t state);

/* The trail of states of conversation id (copied under the lock; "" when unknown). */
void acc_trail(acc_agent_t *t, const uint8_t *id, char *out, size_t len);

/* Reads one counter of t's record under its lock. */
int acc_read(acc_agent_t *t, const int *field);

#endif /* RELAIS_TEST_ACCEPT_AGENTS_H */
