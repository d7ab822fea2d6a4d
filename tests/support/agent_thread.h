/*
 * One SDK agent on a thread of its own, for integration tests.
 *
 * The agent runs its own loop on its own thread; the test thread never touches it while it
 * runs, acts on it only through relais_agent_post() (rt_agent_call()), and learns what it
 * did from a record the agent's callbacks fill under a mutex and signal on a condition
 * variable. RT_AWAIT waits for a condition over that record with a deadline: nothing sleeps
 * to synchronise. The fixture records the connection states with their details (what the
 * SDK says when it cannot connect); a test that needs more registers its own callbacks in
 * the setup function and records into the same lock through rt_agent_record().
 */
#ifndef RELAIS_TEST_AGENT_THREAD_H
#define RELAIS_TEST_AGENT_THREAD_H

#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <time.h>

#include "harness.h"
#include "relais/agent.h"

/* Only a failing test waits this long: every wait ends on the event it waits for. */
#define RT_AGENT_WAIT_MS 15000
#define RT_AGENT_MAX_REPORTS 64
#define RT_AGENT_DETAIL_MAX 512

/* One report of the state callback. */
typedef struct rt_agent_report {
    relais_agent_state_t state;
    char detail[RT_AGENT_DETAIL_MAX];
} rt_agent_report_t;

typedef struct rt_agent {
    relais_agent_t *agent;
    pthread_t thread;
    bool running, inited;
    int run_rc;
    void *ud; /* the test's own, for its callbacks */
    /* Under mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int states[5]; /* how many times each relais_agent_state_t was reported */
    rt_agent_report_t reports[RT_AGENT_MAX_REPORTS]; /* the first ones, in order */
    size_t nreports;
    int calls; /* rt_agent_call() completions */
} rt_agent_t;

/* Waits until cond (an expression over *t's fields, read under its lock) holds; fails the
 * test after RT_AGENT_WAIT_MS. */
#define RT_AWAIT(t, cond)                                                                          \
    do {                                                                                           \
        rt_agent_t *t_ = (t);                                                                      \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_MONOTONIC, &dl_);                                                      \
        dl_.tv_sec += RT_AGENT_WAIT_MS / 1000;                                                     \
        pthread_mutex_lock(&t_->mu);                                                               \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&t_->cv, &t_->mu, &dl_) == ETIMEDOUT) break;                \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&t_->mu);                                                             \
        cr_assert(ok_, "timed out waiting for %s", #cond);                                         \
    } while (0)

/* Runs stmt under t's lock and wakes its waiters (for the test's own callbacks). */
#define rt_agent_record(t, stmt)                                                                   \
    do {                                                                                           \
        pthread_mutex_lock(&(t)->mu);                                                              \
        stmt;                                                                                      \
        pthread_cond_broadcast(&(t)->cv);                                                          \
        pthread_mutex_unlock(&(t)->mu);                                                            \
    } while (0)

/*
 * Fills opts to connect to b as the test agent `address`, with its CURVE keys unless b is
 * insecure. The strings point into b. Fails the test when address is not in the territory.
 */
void rt_agent_options(relais_agent_options_t *opts, const rt_broker_t *b, const char *address);

/*
 * Creates the agent with opts, registers the state callback and calls setup (may be NULL)
 * to register the test's own, without running it: the test may act on t->agent from its own
 * thread (or run it on its own loop) until rt_agent_run_thread(). Fails the test on error.
 */
void rt_agent_create(rt_agent_t *t, const relais_agent_options_t *opts,
                     void (*setup)(rt_agent_t *t), void *ud);

/* Runs a created agent on a new thread (t->thread). */
void rt_agent_run_thread(rt_agent_t *t);

/* rt_agent_create() then rt_agent_run_thread(). Does not wait for READY
 * (RT_AWAIT(t, t->states[RELAIS_AGENT_READY] > 0) does). */
void rt_agent_start(rt_agent_t *t, const relais_agent_options_t *opts, void (*setup)(rt_agent_t *t),
                    void *ud);

/* Stops a running agent, checks that run() returned 0 after STOPPED, and frees it; frees an
 * agent created and never run. The record stays readable until rt_agent_free(). No-op when
 * there is no agent. */
void rt_agent_stop(rt_agent_t *t);

/* Stops t if it runs and releases its record. */
void rt_agent_free(rt_agent_t *t);

/* Runs fn(agent, ud) on the agent's loop and waits until it returned. */
void rt_agent_call(rt_agent_t *t, relais_agent_fn fn, void *ud);

/* Under t's lock: how many reports of state had a detail containing needle. */
int rt_agent_reports_locked(const rt_agent_t *t, relais_agent_state_t state, const char *needle);

#endif /* RELAIS_TEST_AGENT_THREAD_H */
