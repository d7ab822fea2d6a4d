/*
 * One SDK agent on a thread of its own (agent_thread.h): start, stop, the state record, and
 * calls on the agent's loop from the test thread.
 */
#include "agent_thread.h"

#include <stdio.h>
#include <string.h>

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    rt_agent_t *t = ud;
    rt_agent_record(t, {
        if (state >= 1 && state <= 4) t->states[state]++;
        if (t->nreports < RT_AGENT_MAX_REPORTS) {
            rt_agent_report_t *r = &t->reports[t->nreports++];
            r->state = state;
            snprintf(r->detail, sizeof(r->detail), "%s", detail ? detail : "");
        }
    });
}

static void *run_agent(void *arg)
{
    rt_agent_t *t = arg;
    t->run_rc = relais_agent_run(t->agent);
    return NULL;
}

void rt_agent_options(relais_agent_options_t *opts, const rt_broker_t *b, const char *address)
{
    memset(opts, 0, sizeof(*opts));
    opts->endpoint = b->endpoint;
    opts->address = address;
    opts->software = "relais-test-agent/1";
    opts->heartbeat_ms = 500;
    if (b->insecure) return;
    const rt_key_t *k = rt_key_for(b, address);
    cr_assert_not_null(k, "%s is not in the test territory", address);
    opts->curve_server_key = b->server_pub;
    opts->curve_public_key = k->pub;
    opts->curve_secret_key = k->sec;
}

void rt_agent_create(rt_agent_t *t, const relais_agent_options_t *opts,
                     void (*setup)(rt_agent_t *t), void *ud)
{
    memset(t, 0, sizeof(*t));
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&t->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&t->mu, NULL);
    t->inited = true;
    t->ud = ud;
    int rc = relais_agent_new(&t->agent, opts);
    cr_assert_eq(rc, 0, "relais_agent_new(%s): %s", opts->address, relais_strerror(rc));
    relais_agent_on_state(t->agent, on_state, t);
    if (setup) setup(t);
}

void rt_agent_run_thread(rt_agent_t *t)
{
    cr_assert_eq(pthread_create(&t->thread, NULL, run_agent, t), 0);
    t->running = true;
}

void rt_agent_start(rt_agent_t *t, const relais_agent_options_t *opts, void (*setup)(rt_agent_t *t),
                    void *ud)
{
    rt_agent_create(t, opts, setup, ud);
    rt_agent_run_thread(t);
}

void rt_agent_stop(rt_agent_t *t)
{
    if (!t->running) {
        relais_agent_destroy(&t->agent);
        return;
    }
    relais_agent_stop(t->agent);
    pthread_join(t->thread, NULL);
    t->running = false;
    relais_agent_destroy(&t->agent);
    cr_expect_eq(t->run_rc, 0, "relais_agent_run returns 0 after an orderly stop");
    cr_expect_eq(t->states[RELAIS_AGENT_STOPPED], 1, "STOPPED reported once");
}

void rt_agent_free(rt_agent_t *t)
{
    if (!t->inited) return;
    rt_agent_stop(t);
    pthread_cond_destroy(&t->cv);
    pthread_mutex_destroy(&t->mu);
    t->inited = false;
}

typedef struct call {
    rt_agent_t *t;
    relais_agent_fn fn;
    void *ud;
} call_t;

static void run_call(relais_agent_t *agent, void *ud)
{
    call_t *c = ud;
    c->fn(agent, c->ud);
    rt_agent_record(c->t, c->t->calls++);
}

void rt_agent_call(rt_agent_t *t, relais_agent_fn fn, void *ud)
{
    call_t c = {.t = t, .fn = fn, .ud = ud};
    pthread_mutex_lock(&t->mu);
    int target = t->calls + 1;
    pthread_mutex_unlock(&t->mu);
    cr_assert_eq(relais_agent_post(t->agent, run_call, &c), 0);
    RT_AWAIT(t, t->calls >= target);
}

int rt_agent_reports_locked(const rt_agent_t *t, relais_agent_state_t state, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < t->nreports; i++)
        if (t->reports[i].state == state && strstr(t->reports[i].detail, needle) != NULL) n++;
    return n;
}
