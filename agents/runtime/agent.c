/*
 * Agent lifecycle: creation, the loop it runs on, the two thread-safe entry points (post and
 * stop), the orderly shutdown, and the small accessors of agent.h.
 *
 * Everything the agent does happens on its loop thread. Other threads reach it only through
 * one uv_async handle and a mutex-protected queue: relais_agent_post() appends a function,
 * relais_agent_stop() raises a flag, and the async callback runs the queue first and then
 * stops, so that every post accepted before the stop still runs. Memory of a handle is
 * released only in its close callback; the agent counts its open handles and reports
 * STOPPED when the last one has closed, which is also when its own loop runs out of work
 * and relais_agent_run() returns. An agent with a state file opens (and locks) it at
 * creation, so that a file it cannot use is refused before anything runs, and the outbox
 * and dedup window a previous run left are in memory before the first Welcome.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "agent_internal.h"
#include "relais/log.h"

#define DEFAULT_SOFTWARE "relais-agent/1"
#define DEFAULT_CREDIT 64
#define DEFAULT_HEARTBEAT_MS 1000

struct agent_post {
    relais_agent_fn fn;
    void *ud;
    agent_post_t *next;
};

static void on_async(uv_async_t *handle);

const char *relais_agent_state_name(relais_agent_state_t state)
{
    switch (state) {
    case RELAIS_AGENT_CONNECTING:
        return "connecting";
    case RELAIS_AGENT_READY:
        return "ready";
    case RELAIS_AGENT_DISCONNECTED:
        return "disconnected";
    case RELAIS_AGENT_STOPPED:
        return "stopped";
    }
    return "unknown";
}

int relais_agent_new(relais_agent_t **out, const relais_agent_options_t *opts)
{
    if (!out) return RELAIS_ECONFIG;
    *out = NULL;
    if (!opts || !opts->endpoint || !*opts->endpoint) {
        RLOG(RELAIS_LOG_ERROR, "agent", "agent options need an endpoint");
        return RELAIS_ECONFIG;
    }
    if (relais_clock_init() != 0) {
        RLOG(RELAIS_LOG_ERROR, "agent",
             "RELAIS_SIM_CLOCK is malformed: expected "
             "FACTOR,REAL_ORIGIN_MS,SIM_ORIGIN_MS");
        return RELAIS_ECONFIG;
    }
    char reason[RELAIS_REASON_MAX] = "";
    if (!opts->address || strlen(opts->address) >= RELAIS_ADDRESS_MAX ||
        relais_address_parse(opts->address, NULL, reason, sizeof(reason)) != 0) {
        RLOG(RELAIS_LOG_ERROR, "agent", "agent options need a valid address: %s",
             opts->address ? reason : "none given");
        return RELAIS_ECONFIG;
    }

    relais_agent_t *a = calloc(1, sizeof(*a));
    if (!a) return -ENOMEM;
    int rc = -ENOMEM;
    a->endpoint = strdup(opts->endpoint);
    a->software = strdup(opts->software && *opts->software ? opts->software : DEFAULT_SOFTWARE);
    if (!a->endpoint || !a->software) goto err_free;
    strcpy(a->address, opts->address);
    const char *keys[3] = {opts->curve_server_key, opts->curve_public_key, opts->curve_secret_key};
    char *dest[3] = {a->curve_server, a->curve_public, a->curve_secret};
    int given = 0;
    for (int i = 0; i < 3; i++) {
        if (keys[i] == NULL || keys[i][0] == '\0') continue;
        uint8_t raw[32];
        if (strlen(keys[i]) != 40 || zmq_z85_decode(raw, keys[i]) == NULL) {
            RLOG(RELAIS_LOG_ERROR, "agent", "agent=%s a CURVE key is not 40 Z85 characters",
                 opts->address);
            rc = RELAIS_ECONFIG;
            goto err_free;
        }
        memcpy(dest[i], keys[i], 41);
        given++;
    }
    if (given != 0 && given != 3) {
        RLOG(RELAIS_LOG_ERROR, "agent",
             "agent=%s CURVE needs the broker's key and both of "
             "the agent's, or none",
             opts->address);
        rc = RELAIS_ECONFIG;
        goto err_free;
    }
    a->credit = opts->credit ? opts->credit : DEFAULT_CREDIT;
    a->heartbeat_ms = opts->heartbeat_ms ? opts->heartbeat_ms : DEFAULT_HEARTBEAT_MS;
    a->max_frame_bytes = RELAIS_DEFAULT_MAX_FRAME_BYTES;
    a->max_recipients = RELAIS_MAX_RECIPIENTS;
    a->backoff_ms = AGENT_BACKOFF_MIN_MS;
    a->refused_backoff_ms = AGENT_REFUSED_BACKOFF_MIN_MS;
    /* Agents started together must not retry in step: seeded per agent and per run. */
    a->jitter_state = uv_hrtime() ^ (uint64_t)(uintptr_t)a ^ 0x9e3779b97f4a7c15ull;
    a->state = RELAIS_AGENT_DISCONNECTED;
    if (opts->state_path &&
        (rc = agent__state_open(&a->state_file, opts->state_path, a->address)) != 0)
        goto err_free;
    if ((rc = agent__outbox_new(&a->outbox, a->state_file)) != 0) goto err_free;
    if ((rc = agent__dedup_new(&a->dedup, AGENT_DEDUP_CAPACITY, a->state_file)) != 0) goto err_free;
    if (a->state_file)
        RLOG(RELAIS_LOG_INFO, "agent", "agent=%s state=%s recovered_submissions=%zu", a->address,
             opts->state_path, agent__outbox_count(a->outbox));
    if ((rc = -pthread_mutex_init(&a->mu, NULL)) != 0) goto err_free;
    a->zctx = zmq_ctx_new();
    if (!a->zctx) {
        rc = -errno;
        goto err_mutex;
    }
    if (opts->loop) {
        a->loop = opts->loop;
    } else {
        if ((rc = uv_loop_init(&a->own_loop)) != 0) goto err_ctx;
        a->loop = &a->own_loop;
        a->owns_loop = true;
    }
    /* The async handle is the only one whose initialisation can fail; the others follow it
     * so that a failure leaves nothing to close. */
    if ((rc = uv_async_init(a->loop, &a->async, on_async)) != 0) goto err_loop;
    uv_idle_init(a->loop, &a->drain);
    uv_timer_init(a->loop, &a->tick);
    uv_timer_init(a->loop, &a->reconnect);
    a->async.data = a->drain.data = a->tick.data = a->reconnect.data = a;
    a->open_handles = 4;
    *out = a;
    return 0;

err_loop:
    if (a->owns_loop) uv_loop_close(&a->own_loop);
err_ctx:
    zmq_ctx_term(a->zctx);
err_mutex:
    pthread_mutex_destroy(&a->mu);
err_free:
    agent__dedup_destroy(&a->dedup);
    agent__outbox_destroy(&a->outbox);
    agent__state_close(&a->state_file);
    free(a->software);
    free(a->endpoint);
    free(a);
    return rc;
}

void agent__set_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail)
{
    if (agent->state == state && agent->state_reported) return;
    agent__report_state(agent, state, detail);
}

void agent__report_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail)
{
    agent->state = state;
    agent->state_reported = true;
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s state=%s detail=\"%s\"", agent->address,
         relais_agent_state_name(state), detail);
    if (agent->state_fn) agent->state_fn(agent, state, detail, agent->state_ud);
}

void agent__handle_released(relais_agent_t *agent)
{
    agent->open_handles--;
    if (agent->open_handles == 0 && agent->phase == AGENT_PHASE_CLOSING) {
        agent->phase = AGENT_PHASE_CLOSED;
        agent__set_state(agent, RELAIS_AGENT_STOPPED, "stopped");
    }
}

void agent__handle_closed(uv_handle_t *handle)
{
    agent__handle_released(handle->data);
}

/*
 * Closes everything the agent holds on its loop. Unconfirmed submissions are failed with
 * RELAIS_ECLOSED after the socket is gone, so a callback that tries to send again is told
 * the agent is closing rather than queueing into an outbox nobody will read.
 */
static void shutdown_agent(relais_agent_t *a, bool say_bye)
{
    if (a->phase >= AGENT_PHASE_CLOSING) return;
    a->phase = AGENT_PHASE_CLOSING;
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s stopping unconfirmed=%zu", a->address,
         agent__outbox_count(a->outbox));
    bool bye_sent = false;
    if (say_bye && a->conn.sock && !a->conn_failed &&
        (a->state == RELAIS_AGENT_READY || a->state == RELAIS_AGENT_CONNECTING)) {
        Relais__V1__Bye bye = RELAIS__V1__BYE__INIT;
        Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
        bye.reason = "agent stopping";
        f.kind_case = RELAIS__V1__FRAME__KIND_BYE;
        f.bye = &bye;
        bye_sent = agent__send_frame(a, &f) == 0;
    }
    agent__conn_close(a, bye_sent);
    agent__session_fail_all(a, RELAIS_ECLOSED);
    agent__timers_close_all(a);
    uv_close((uv_handle_t *)&a->async, agent__handle_closed);
    uv_close((uv_handle_t *)&a->drain, agent__handle_closed);
    uv_close((uv_handle_t *)&a->tick, agent__handle_closed);
    uv_close((uv_handle_t *)&a->reconnect, agent__handle_closed);
}

/*
 * Runs the posted functions, then stops when asked to. The queue is re-read after each
 * function because it may post again or ask to stop; the flag that refuses further posts
 * is raised under the same lock that finds the queue empty, so no accepted post is lost.
 */
static void run_posts(relais_agent_t *a, bool force_stop)
{
    for (;;) {
        bool stop = false;
        pthread_mutex_lock(&a->mu);
        agent_post_t *p = a->posts_head;
        if (p) {
            a->posts_head = p->next;
            if (!a->posts_head) a->posts_tail = NULL;
        } else if (a->stop_requested || force_stop) {
            a->posts_closed = true;
            stop = true;
        }
        pthread_mutex_unlock(&a->mu);
        if (p) {
            p->fn(a, p->ud);
            free(p);
            continue;
        }
        if (stop) shutdown_agent(a, !force_stop);
        return;
    }
}

static void on_async(uv_async_t *handle)
{
    relais_agent_t *a = handle->data;
    if (a->phase < AGENT_PHASE_CLOSING) run_posts(a, false);
}

void relais_agent_destroy(relais_agent_t **agent)
{
    if (!agent || !*agent) return;
    relais_agent_t *a = *agent;
    if (a->phase < AGENT_PHASE_CLOSING) run_posts(a, true);
    /* Close callbacks run only inside uv_run: give the loop the turns it needs. The
     * contract says the loop is not running, so this thread may run it. */
    while (a->open_handles > 0) uv_run(a->loop, UV_RUN_NOWAIT);
    if (a->owns_loop) {
        int rc = uv_loop_close(&a->own_loop);
        if (rc != 0)
            RLOG(RELAIS_LOG_ERROR, "agent", "agent=%s loop still busy at destroy: %s", a->address,
                 uv_strerror(rc));
    }
    zmq_ctx_term(a->zctx);
    agent__conv_destroy(&a->conv);
    agent__offers_free(a);
    agent__outbox_destroy(&a->outbox);
    agent__dedup_destroy(&a->dedup);
    agent__state_close(&a->state_file);
    pthread_mutex_destroy(&a->mu);
    free(a->software);
    free(a->endpoint);
    free(a);
    *agent = NULL;
}

int relais_agent_on(relais_agent_t *agent, int body_case, relais_handler_fn fn, void *ud)
{
    if (body_case < 0 || body_case >= AGENT_MAX_BODY_CASE) return RELAIS_ECONFIG;
    if (body_case != 0 && strcmp(relais_body_name(body_case), "unknown") == 0)
        return RELAIS_ECONFIG;
    agent->handlers[body_case].fn = fn;
    agent->handlers[body_case].ud = ud;
    return 0;
}

void relais_agent_on_receipt(relais_agent_t *agent, relais_receipt_fn fn, void *ud)
{
    agent->receipt_fn = fn;
    agent->receipt_ud = ud;
}

void relais_agent_on_offer(relais_agent_t *agent, relais_offer_fn fn, void *ud)
{
    agent->offer_fn = fn;
    agent->offer_ud = ud;
}

void relais_agent_on_withdrawn(relais_agent_t *agent, relais_withdrawn_fn fn, void *ud)
{
    agent->withdrawn_fn = fn;
    agent->withdrawn_ud = ud;
}

void relais_agent_on_acked(relais_agent_t *agent, relais_acked_fn fn, void *ud)
{
    agent->acked_fn = fn;
    agent->acked_ud = ud;
}

void relais_agent_on_state(relais_agent_t *agent, relais_state_fn fn, void *ud)
{
    agent->state_fn = fn;
    agent->state_ud = ud;
}

void relais_agent_on_recovered(relais_agent_t *agent, relais_send_cb cb, void *ud)
{
    agent->recovered_fn = cb;
    agent->recovered_ud = ud;
}

int relais_agent_post(relais_agent_t *agent, relais_agent_fn fn, void *ud)
{
    if (!fn) return -EINVAL;
    agent_post_t *p = malloc(sizeof(*p));
    if (!p) return -ENOMEM;
    p->fn = fn;
    p->ud = ud;
    p->next = NULL;
    pthread_mutex_lock(&agent->mu);
    if (agent->posts_closed) {
        pthread_mutex_unlock(&agent->mu);
        free(p);
        return RELAIS_ECLOSED;
    }
    if (agent->posts_tail)
        agent->posts_tail->next = p;
    else
        agent->posts_head = p;
    agent->posts_tail = p;
    /* Sent under the lock: once posts_closed is set the async handle may be closing. */
    uv_async_send(&agent->async);
    pthread_mutex_unlock(&agent->mu);
    return 0;
}

void relais_agent_stop(relais_agent_t *agent)
{
    if (!agent) return;
    pthread_mutex_lock(&agent->mu);
    if (!agent->posts_closed && !agent->stop_requested) {
        agent->stop_requested = true;
        uv_async_send(&agent->async);
    }
    pthread_mutex_unlock(&agent->mu);
}

int relais_agent_start(relais_agent_t *agent)
{
    if (agent->phase >= AGENT_PHASE_CLOSING) return RELAIS_ECLOSED;
    if (agent->phase == AGENT_PHASE_RUNNING) return -EALREADY;
    int rc = agent__conn_open(agent);
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "agent", "agent=%s cannot connect endpoint=%s: %s", agent->address,
             agent->endpoint, relais_strerror(rc));
        return rc;
    }
    agent->phase = AGENT_PHASE_RUNNING;
    uv_update_time(agent->loop);
    agent->last_send = agent->last_recv = uv_now(agent->loop);
    agent__tick_restart(agent);
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s connecting endpoint=%s", agent->address,
         agent->endpoint);
    return 0;
}

int relais_agent_run(relais_agent_t *agent)
{
    if (!agent->owns_loop) return RELAIS_ECONFIG;
    if (agent->ran) return -EALREADY;
    agent->ran = true;
    int rc = relais_agent_start(agent);
    if (rc != 0) return rc;
    uv_run(agent->loop, UV_RUN_DEFAULT);
    return 0;
}

const char *relais_agent_address(const relais_agent_t *agent)
{
    return agent->address;
}

uv_loop_t *relais_agent_loop(relais_agent_t *agent)
{
    return agent->loop;
}

bool relais_agent_ready(const relais_agent_t *agent)
{
    return agent->state == RELAIS_AGENT_READY;
}
