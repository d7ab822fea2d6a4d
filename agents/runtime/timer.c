/*
 * Business timers: relais_agent_timer() and relais_agent_timer_cancel().
 *
 * One uv_timer per timer, so that a territory's deadlines (an offer held until noon, a
 * follow-up due in seven days) cost nothing while they wait. Each timer is a small object
 * holding its handle; it leaves the agent's list when it fires or is cancelled, and its
 * memory is freed in the handle's close callback. Cancelling one that already fired, or
 * the one currently firing, answers -ENOENT.
 */
#include <errno.h>
#include <stdlib.h>

#include "agent_internal.h"

struct agent_timer {
    uv_timer_t handle;
    relais_agent_t *agent;
    uint64_t id;
    relais_agent_fn fn;
    void *ud;
    agent_timer_t *prev, *next;
};

static void unlink_timer(relais_agent_t *a, agent_timer_t *t)
{
    if (t->prev)
        t->prev->next = t->next;
    else
        a->timers = t->next;
    if (t->next) t->next->prev = t->prev;
    t->prev = t->next = NULL;
}

static void on_timer_closed(uv_handle_t *handle)
{
    agent_timer_t *t = handle->data;
    relais_agent_t *a = t->agent;
    free(t);
    agent__handle_released(a);
}

static void on_fire(uv_timer_t *handle)
{
    agent_timer_t *t = handle->data;
    unlink_timer(t->agent, t);
    t->fn(t->agent, t->ud);
    uv_close((uv_handle_t *)&t->handle, on_timer_closed);
}

int relais_agent_timer(relais_agent_t *agent, uint64_t delay_ms, relais_agent_fn fn, void *ud,
                       uint64_t *timer_id_out)
{
    if (!fn) return -EINVAL;
    if (agent->phase >= AGENT_PHASE_CLOSING) return RELAIS_ECLOSED;
    agent_timer_t *t = calloc(1, sizeof(*t));
    if (!t) return -ENOMEM;
    uv_timer_init(agent->loop, &t->handle);
    agent->open_handles++;
    t->handle.data = t;
    t->agent = agent;
    t->id = ++agent->next_timer_id;
    t->fn = fn;
    t->ud = ud;
    t->next = agent->timers;
    if (agent->timers) agent->timers->prev = t;
    agent->timers = t;
    /* The loop's clock may be stale when the timer is set before the loop runs. */
    uv_update_time(agent->loop);
    uv_timer_start(&t->handle, on_fire, delay_ms, 0);
    if (timer_id_out) *timer_id_out = t->id;
    return 0;
}

int relais_agent_timer_cancel(relais_agent_t *agent, uint64_t timer_id)
{
    for (agent_timer_t *t = agent->timers; t; t = t->next) {
        if (t->id == timer_id) {
            unlink_timer(agent, t);
            uv_close((uv_handle_t *)&t->handle, on_timer_closed);
            return 0;
        }
    }
    return -ENOENT;
}

void agent__timers_close_all(relais_agent_t *agent)
{
    agent_timer_t *t;
    while ((t = agent->timers) != NULL) {
        unlink_timer(agent, t);
        uv_close((uv_handle_t *)&t->handle, on_timer_closed);
    }
}
