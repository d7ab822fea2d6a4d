/*
 * Why an agent cannot connect, and that it connects as soon as it can: against a real
 * relaisd over CURVE with real keys.
 *
 * libzmq 4.3.4 gives up on a connection for good once the broker's ZAP handler refused its
 * key, so an agent started before the territory enrolled its key would stay offline until
 * restarted; the SDK must retry on a fresh socket with backoff. And an operator must be told
 * once, in a sentence, which of the usual mistakes it is: the key not enrolled, the wrong
 * broker key, nothing listening. The agents run on threads (tests/support/agent_thread.h);
 * every wait ends on an event (a state report, a broker log line) with a deadline.
 */
#include <criterion/criterion.h>
#include <zmq.h>

#include "agent_thread.h"
#include "harness.h"

#define ADDR "rpps:10102345678"
#define BROKER_MS 10000

/* The sentences the SDK reports in the state callback's detail. */
#define SAYS_NOT_ENROLLED "key is not enrolled"
#define SAYS_WRONG_SERVER_KEY "broker's public key"
#define SAYS_NOTHING_LISTENING "nothing is listening"
#define SAYS_NEEDS_CURVE "requires CURVE encryption"

static rt_broker_t broker;
static rt_agent_t ta;

static void setup(void)
{
    rt_suite_start(&broker, NULL);
}

static void teardown(void)
{
    rt_agent_free(&ta);
    if (broker.pid > 0) rt_suite_stop(&broker);
    rt_broker_cleanup(&broker);
}

TestSuite(agent_connect, .init = setup, .fini = teardown, .timeout = 60);

Test(agent_connect, an_agent_refused_before_its_enrolment_connects_once_enrolled)
{
    cr_assert_eq(rt_territory_revoke(&broker, ADDR, BROKER_MS), 0);
    relais_agent_options_t opts;
    rt_agent_options(&opts, &broker, ADDR);
    rt_agent_start(&ta, &opts, NULL, NULL);

    RT_AWAIT(&ta, rt_agent_reports_locked(t_, RELAIS_AGENT_DISCONNECTED, SAYS_NOT_ENROLLED) == 1);
    /* The broker refuses the key again: the agent kept trying, and said it only once. */
    cr_assert_eq(rt_broker_wait_log_count(&broker, "handshake refused", 2, BROKER_MS), 0,
                 "the agent retries after a refusal");
    pthread_mutex_lock(&ta.mu);
    int said = rt_agent_reports_locked(&ta, RELAIS_AGENT_DISCONNECTED, SAYS_NOT_ENROLLED);
    int ready = ta.states[RELAIS_AGENT_READY];
    pthread_mutex_unlock(&ta.mu);
    cr_expect_eq(said, 1, "the refusal is reported once, not at every attempt");
    cr_expect_eq(ready, 0);

    /* The CPTS enrols the key and reloads the broker: no restart of the agent. */
    cr_assert_eq(rt_territory_enrol_all(&broker, BROKER_MS), 0);
    RT_AWAIT(&ta, t_->states[RELAIS_AGENT_READY] >= 1);
}

Test(agent_connect, a_wrong_broker_key_is_named_in_a_sentence)
{
    char other_pub[41], other_sec[41];
    cr_assert_eq(zmq_curve_keypair(other_pub, other_sec), 0);
    relais_agent_options_t opts;
    rt_agent_options(&opts, &broker, ADDR);
    opts.curve_server_key = other_pub;
    rt_agent_start(&ta, &opts, NULL, NULL);

    RT_AWAIT(&ta,
             rt_agent_reports_locked(t_, RELAIS_AGENT_DISCONNECTED, SAYS_WRONG_SERVER_KEY) == 1);
    pthread_mutex_lock(&ta.mu);
    cr_expect_eq(ta.states[RELAIS_AGENT_READY], 0);
    cr_expect_eq(rt_agent_reports_locked(&ta, RELAIS_AGENT_DISCONNECTED, ""), 1,
                 "no vaguer sentence before the right one");
    cr_expect_eq(rt_agent_reports_locked(&ta, RELAIS_AGENT_DISCONNECTED, SAYS_NOT_ENROLLED), 0,
                 "a wrong broker key is not mistaken for a refused agent key");
    pthread_mutex_unlock(&ta.mu);
}

Test(agent_connect, nothing_listening_is_said_and_the_agent_connects_when_the_broker_starts)
{
    /* The broker's endpoint, with no broker behind it for now. */
    cr_assert_eq(rt_broker_stop(&broker, BROKER_MS), 0);
    relais_agent_options_t opts;
    rt_agent_options(&opts, &broker, ADDR);
    rt_agent_start(&ta, &opts, NULL, NULL);

    RT_AWAIT(&ta,
             rt_agent_reports_locked(t_, RELAIS_AGENT_DISCONNECTED, SAYS_NOTHING_LISTENING) == 1);
    cr_assert_eq(rt_broker_start(&broker, NULL, BROKER_MS), 0);
    RT_AWAIT(&ta, t_->states[RELAIS_AGENT_READY] >= 1);
    pthread_mutex_lock(&ta.mu);
    cr_expect_eq(rt_agent_reports_locked(&ta, RELAIS_AGENT_DISCONNECTED, SAYS_NOTHING_LISTENING), 1,
                 "said once, however many attempts were refused");
    pthread_mutex_unlock(&ta.mu);
}

Test(agent_connect, an_agent_without_keys_is_told_the_broker_requires_curve)
{
    relais_agent_options_t opts;
    rt_agent_options(&opts, &broker, ADDR);
    opts.curve_server_key = opts.curve_public_key = opts.curve_secret_key = NULL;
    rt_agent_start(&ta, &opts, NULL, NULL);
    RT_AWAIT(&ta, rt_agent_reports_locked(t_, RELAIS_AGENT_DISCONNECTED, SAYS_NEEDS_CURVE) == 1);
    pthread_mutex_lock(&ta.mu);
    cr_expect_eq(ta.states[RELAIS_AGENT_READY], 0);
    cr_expect_eq(rt_agent_reports_locked(&ta, RELAIS_AGENT_DISCONNECTED, ""), 1,
                 "no vaguer sentence before the right one");
    pthread_mutex_unlock(&ta.mu);
}
