/*
 * SDK agents for the conversation integration tests (test_conversations.c): each runs its
 * own loop on its own thread, behaves by a few switches (offer when asked, confirm a
 * booking, decide on a preadmission…), and records what it sees and every conversation
 * hook under a mutex, signalled through a condition variable. The test thread acts on an
 * agent only through relais_agent_post() and waits on its record with a timeout.
 */
#ifndef RELAIS_TEST_CONV_AGENTS_H
#define RELAIS_TEST_CONV_AGENTS_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "harness.h"
#include "relais/agent.h"
#include "relais/conversation.h"

#define WAIT_MS 15000
#define B(x) RELAIS__V1__ENVELOPE__BODY_##x
#define MAX_SNAP 8

/* One conversation as the query API showed it. */
typedef struct snap {
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    relais_conv_kind_t kind;
    relais_conv_state_t state;
    char counterpart[RELAIS_ADDRESS_MAX];
    int64_t deadline_ms;
    bool escalated;
    unsigned redispatches;
    size_t nparts;
    char part_key[4][RELAIS_ADDRESS_MAX];
    relais_conv_state_t part_state[4];
} snap_t;

/* What one agent observed. Every field is under mu. */
typedef struct events {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int ready, stopped, accepted;
    int got[64];                            /* deliveries handled, per body case */
    uint8_t conv[RELAIS_MESSAGE_ID_LEN];    /* conversation of the last delivery */
    char refused_reason[RELAIS_REASON_MAX]; /* of the last Receipt{REFUSED} */
    int refused;
    int processed; /* Receipt{PROCESSED} */
    int changes, reminders, escalations, esc_rc;
    int reminder_seq, escalation_seq; /* order of the two, from one counter */
    int seq;
    Relais__V1__Escalation *escalation; /* the last one delivered (coordinator) */
    snap_t snap[MAX_SNAP];
    size_t nsnap;
} events_t;

typedef struct tagent {
    relais_agent_t *agent;
    pthread_t thread;
    bool running;
    int run_rc;
    char address[RELAIS_ADDRESS_MAX];
    /* Behaviour. */
    bool offer_on_request, confirm_on_book, book_on_offer, admit_on_choice, complete_on_task;
    int decision;               /* PreadmissionDecision to answer a request with (0: none) */
    const char *next_candidate; /* redispatch policy's answer (NULL: none) */
    events_t ev;
} tagent_t;

#define AWAIT(t, cond)                                                                             \
    do {                                                                                           \
        events_t *ev = &(t)->ev;                                                                   \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_MONOTONIC, &dl_);                                                      \
        dl_.tv_sec += WAIT_MS / 1000;                                                              \
        pthread_mutex_lock(&ev->mu);                                                               \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&ev->cv, &ev->mu, &dl_) == ETIMEDOUT) break;                \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&ev->mu);                                                             \
        cr_assert(ok_, "%s timed out waiting for %s", (t)->address, #cond);                        \
    } while (0)

#define RECORD(t, stmt)                                                                            \
    do {                                                                                           \
        pthread_mutex_lock(&(t)->ev.mu);                                                           \
        stmt;                                                                                      \
        pthread_cond_broadcast(&(t)->ev.cv);                                                       \
        pthread_mutex_unlock(&(t)->ev.mu);                                                         \
    } while (0)

typedef struct job {
    tagent_t *t;
    int body, sub;
    const char *to[3];
    size_t nto;
    const uint8_t *conv; /* NULL: a new conversation */
    bool receipts;
    const char *item; /* care task: the follow-up item it is for */
    int64_t due_ms;   /* discharge: the second item's due date */
    int64_t window_due_ms; /* appointment request: its window's due date (0: no window) */
    int rc;
    char refusal[RELAIS_REASON_MAX];
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    bool done;
} job_t;

/* Starts an agent in *t on broker (tracking conversations with conv_opts when not NULL,
 * with the state file state_dir/state_file when not NULL, behaving as `like` says) and
 * waits until it is ready. Fails the test on error. */
tagent_t *conv_agent_start(tagent_t *t, const rt_broker_t *broker, const char *state_dir,
                           const char *address, const relais_conv_options_t *conv_opts,
                           const char *state_file, const tagent_t *like);

/* Stops a running agent, checks its orderly end, frees it. No-op when not running. */
void conv_agent_stop(tagent_t *t);

/* Has t send j's message on its loop; returns relais_agent_send()'s result. */
int send_as(tagent_t *t, job_t *j);

/* Snapshots t's conversations (relais_conv_foreach on its loop) into t->ev.snap. */
void query(tagent_t *t);

typedef bool (*snap_pred)(const snap_t *s, const void *arg);

/* Waits until pred holds for t's first conversation; fails the test after WAIT_MS. */
const snap_t *await_snap(tagent_t *t, snap_pred pred, const void *arg, const char *what);
const snap_t *await_state(tagent_t *t, relais_conv_state_t state);

/* The state of a snapshot's part (0 when absent), and a counter of t read under its lock. */
relais_conv_state_t part_of(const snap_t *s, const char *key);
int read_int(tagent_t *t, const int *field);

#endif /* RELAIS_TEST_CONV_AGENTS_H */
