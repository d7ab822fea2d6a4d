/*
 * The provider reference agent against a real broker: a requester (an SDK agent on its own
 * thread) asks for an appointment, books the first offered slot, and the provider reports
 * the outcome in the appointment's conversation when the slot ends — FULFILLED, or NOSHOW
 * at no_show_rate 1 — and a care task's COMPLETED or FAILED. decline_rate 1 declines with
 * NO_CAPACITY although the calendar has room. A provider taken offline before its slot
 * ends and rebound to a new agent still reports the outcome, exactly once.
 *
 * Business time runs 3,600 times faster than real time (RELAIS_SIM_CLOCK, set at the start
 * of each test, before any clock call and before the broker starts so that it inherits
 * it): a slot two business hours ahead starts two real seconds later. relaisd refuses a
 * simulated clock with a production directory, which the CURVE test territory is, so the
 * broker runs in development mode (--insecure), as a territory simulation would. Every
 * wait is on a condition variable with a timeout; nothing sleeps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "refagents.h"
#include "relais/agent.h"

#define WAIT_MS 20000
#define FACTOR 3600
#define HOUR_MS (3600 * 1000LL)
#define SIM_ORIGIN 1795417200000LL /* 2026-11-23T07:00Z, a Monday */
#define PROVIDER "rpps:10103456789"
#define REQUESTER "rpps:10000000001"
#define B(x) RELAIS__V1__ENVELOPE__BODY_##x

/* What both agents observed, under mu. */
typedef struct world {
    rt_broker_t broker;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int offers, confirms, declines, outcomes, notes, updates;
    int decline_code;
    char decline_reason[RELAIS_REASON_MAX];
    int outcome;           /* AppointmentOutcome.outcome of the last one */
    int64_t outcome_at_ms; /* business time it arrived */
    int64_t slot_end_ms;   /* of the confirmed slot */
    char appointment_id[RELAIS_REF_ID_MAX];
    char outcome_appointment_id[RELAIS_REF_ID_MAX];
    int task_status[8]; /* CareTaskUpdate.status, in order of arrival */
    char task_reason[8][RELAIS_REASON_MAX];
    uint8_t request_conv[RELAIS_MESSAGE_ID_LEN]; /* the request's own id */
    uint8_t outcome_conv[RELAIS_MESSAGE_ID_LEN];
    int accepted_outcomes; /* provider events: AppointmentOutcome accepted by the broker */
} world_t;

/* One agent running its own loop on its own thread. */
typedef struct side {
    world_t *w;
    relais_agent_t *agent;
    pthread_t thread;
    int ready, stopped, run_rc;
} side_t;

#define AWAIT(w, cond)                                                                             \
    do {                                                                                           \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_MONOTONIC, &dl_);                                                      \
        dl_.tv_sec += WAIT_MS / 1000;                                                              \
        pthread_mutex_lock(&(w)->mu);                                                              \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&(w)->cv, &(w)->mu, &dl_) == ETIMEDOUT) break;              \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&(w)->mu);                                                            \
        cr_assert(ok_, "timed out waiting for %s", #cond);                                         \
    } while (0)

#define RECORD(w, stmt)                                                                            \
    do {                                                                                           \
        pthread_mutex_lock(&(w)->mu);                                                              \
        stmt;                                                                                      \
        pthread_cond_broadcast(&(w)->cv);                                                          \
        pthread_mutex_unlock(&(w)->mu);                                                            \
    } while (0)

static int read_int(world_t *w, const int *field)
{
    pthread_mutex_lock(&w->mu);
    int v = *field;
    pthread_mutex_unlock(&w->mu);
    return v;
}

/* ---- The requester ---------------------------------------------------------------- */

static relais_outcome_t on_requester(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    world_t *w = ud;
    const Relais__V1__Envelope *env = d->envelope;
    switch (env->body_case) {
    case B(APPOINTMENT_OFFER): {
        Relais__V1__AppointmentBook book = RELAIS__V1__APPOINTMENT_BOOK__INIT;
        book.request_id = env->appointment_offer->request_id;
        book.slot = env->appointment_offer->n_slots > 0 ? env->appointment_offer->slots[0] : NULL;
        Relais__V1__Envelope r = RELAIS__V1__ENVELOPE__INIT;
        r.body_case = B(APPOINTMENT_BOOK);
        r.appointment_book = &book;
        int rc = relais_agent_reply(agent, env, &r, NULL, NULL, NULL);
        RECORD(w, w->offers += rc == 0 ? 1 : 1000);
        break;
    }
    case B(APPOINTMENT_CONFIRM):
        RECORD(w, {
            w->confirms++;
            w->slot_end_ms = env->appointment_confirm->slot->end_ms;
            snprintf(w->appointment_id, sizeof w->appointment_id, "%s",
                     env->appointment_confirm->appointment_id);
        });
        break;
    case B(APPOINTMENT_DECLINE):
        RECORD(w, {
            w->declines++;
            w->decline_code = env->appointment_decline->reason_code;
            snprintf(w->decline_reason, sizeof w->decline_reason, "%s",
                     env->appointment_decline->reason);
        });
        break;
    case B(APPOINTMENT_OUTCOME):
        RECORD(w, {
            w->outcomes++;
            w->outcome = env->appointment_outcome->outcome;
            w->outcome_at_ms = relais_now_ms();
            snprintf(w->outcome_appointment_id, sizeof w->outcome_appointment_id, "%s",
                     env->appointment_outcome->appointment_id);
            if (env->conversation_id.len == RELAIS_MESSAGE_ID_LEN)
                memcpy(w->outcome_conv, env->conversation_id.data, RELAIS_MESSAGE_ID_LEN);
        });
        break;
    case B(CARE_TASK_UPDATE):
        RECORD(w, {
            if (w->updates < 8) {
                w->task_status[w->updates] = env->care_task_update->status;
                snprintf(w->task_reason[w->updates], RELAIS_REASON_MAX, "%s",
                         env->care_task_update->reason);
            }
            w->updates++;
        });
        break;
    case B(NOTE):
        RECORD(w, w->notes++);
        break;
    default:
        break;
    }
    return RELAIS_PROCESSED;
}

/* What the test thread has the requester send, on the requester's loop. */
typedef struct job {
    world_t *w;
    int body;
    int rc;
    bool done;
} job_t;

static void do_send(relais_agent_t *agent, void *ud)
{
    job_t *j = ud;
    Relais__V1__PatientRef patient = RELAIS__V1__PATIENT_REF__INIT;
    patient.local_id = "pat-42";
    Relais__V1__AppointmentRequest req = RELAIS__V1__APPOINTMENT_REQUEST__INIT;
    Relais__V1__CareTaskRequest task = RELAIS__V1__CARE_TASK_REQUEST__INIT;
    char *to[1] = {PROVIDER};
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.to = to;
    env.n_to = 1;
    env.body_case = (Relais__V1__Envelope__BodyCase)j->body;
    if (j->body == B(APPOINTMENT_REQUEST)) {
        req.request_id = "req-1";
        req.patient = &patient;
        req.requested_role = "nurse";
        env.appointment_request = &req;
    } else {
        task.task_id = "task-1";
        task.patient = &patient;
        task.action = "home visit: weight check";
        task.mode = RELAIS__V1__SLOT__MODE__HOME;
        env.care_task_request = &task;
    }
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    int rc = relais_agent_send(agent, &env, id, NULL, NULL);
    RECORD(j->w, {
        if (j->body == B(APPOINTMENT_REQUEST)) memcpy(j->w->request_conv, id, sizeof id);
        j->rc = rc;
        j->done = true;
    });
}

static void ask(world_t *w, side_t *requester, int body)
{
    job_t j = {.w = w, .body = body};
    cr_assert_eq(relais_agent_post(requester->agent, do_send, &j), 0);
    AWAIT(w, j.done);
    cr_assert_eq(j.rc, 0, "the request must be queued");
}

/* ---- The provider's events and a marker message --------------------------------------- */

static void on_provider_event(const relais_ref_event_t *ev, void *ud)
{
    world_t *w = ud;
    if (ev->kind == RELAIS_REF_EV_ACCEPTED && ev->body_case == B(APPOINTMENT_OUTCOME))
        RECORD(w, w->accepted_outcomes++);
}

typedef struct marker {
    world_t *w;
    int rc;
    bool done;
} marker_t;

/* A Note from the provider to the requester in the request's conversation: the broker
 * delivers in order per (sender, recipient), so once it arrives, anything the provider
 * sent before it has arrived too. */
static void do_marker(relais_agent_t *agent, void *ud)
{
    marker_t *m = ud;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    note.text = "marker";
    char *to[1] = {REQUESTER};
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.to = to;
    env.n_to = 1;
    env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, m->w->request_conv};
    env.body_case = B(NOTE);
    env.note = &note;
    int rc = relais_agent_send(agent, &env, NULL, NULL, NULL);
    RECORD(m->w, {
        m->rc = rc;
        m->done = true;
    });
}

/* ---- Agents and the world ------------------------------------------------------------ */

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    side_t *s = ud;
    RECORD(s->w, {
        if (state == RELAIS_AGENT_READY) s->ready++;
        if (state == RELAIS_AGENT_STOPPED) s->stopped++;
    });
}

static void *run_agent(void *arg)
{
    side_t *s = arg;
    s->run_rc = relais_agent_run(s->agent);
    return NULL;
}

static void side_create(side_t *s, world_t *w, const char *address, const char *state_path)
{
    memset(s, 0, sizeof *s);
    s->w = w;
    relais_agent_options_t opts = {.endpoint = w->broker.endpoint,
                                   .address = address,
                                   .software = "test-provider-outcomes/1",
                                   .state_path = state_path};
    cr_assert_eq(relais_agent_new(&s->agent, &opts), 0);
    relais_agent_on_state(s->agent, on_state, s);
}

static void side_run(side_t *s)
{
    cr_assert_eq(pthread_create(&s->thread, NULL, run_agent, s), 0);
    AWAIT(s->w, s->ready >= 1);
}

static void side_stop(side_t *s)
{
    relais_agent_stop(s->agent);
    pthread_join(s->thread, NULL);
    cr_expect_eq(s->run_rc, 0);
    cr_expect_eq(s->stopped, 1);
    relais_agent_destroy(&s->agent);
}

/* Simulated clock, broker, mutex: everything but the agents. */
static void world_start(world_t *w)
{
    memset(w, 0, sizeof *w);
    char clock[96];
    snprintf(clock, sizeof clock, "%d,%lld,%lld", FACTOR, (long long)relais_wall_ms(),
             (long long)SIM_ORIGIN);
    cr_assert_eq(setenv("RELAIS_SIM_CLOCK", clock, 1), 0);
    cr_assert_eq(relais_clock_init(), 0);
    cr_assert_eq(relais_clock_factor(), (double)FACTOR);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&w->mu, NULL);
    w->broker.insecure = true; /* the broker refuses a simulated clock with a production
                                * directory, which the CURVE test territory is */
    rt_suite_start(&w->broker, NULL);
}

static void world_stop(world_t *w)
{
    rt_suite_stop(&w->broker);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
}

/* A nurse whose one-place slots start two business hours from now, one per offer. */
static relais_ref_provider_config_t nurse(world_t *w, double decline_rate, double no_show_rate)
{
    return (relais_ref_provider_config_t){
        .role = "nurse",
        .home_visits = true,
        .slot_count = 4,
        .slot_minutes = 30,
        .first_slot_ms = relais_now_ms() + 2 * HOUR_MS,
        .hold_ms = 24 * HOUR_MS, /* 24 real seconds: never in the way */
        .max_offer = 1,
        .decline_rate = decline_rate,
        .no_show_rate = no_show_rate,
        .report_outcomes = true,
        .on_event = on_provider_event,
        .event_ud = w,
    };
}

/* Runs request → offer → book → confirm → outcome and returns the outcome received. */
static int appointment_outcome(double no_show_rate)
{
    world_t w;
    world_start(&w);
    side_t prov, req;
    side_create(&prov, &w, PROVIDER, NULL);
    relais_ref_provider_config_t cfg = nurse(&w, 0.0, no_show_rate);
    relais_ref_provider_t *p = NULL;
    cr_assert_eq(relais_ref_provider_new(&p, prov.agent, &cfg), 0);
    side_create(&req, &w, REQUESTER, NULL);
    cr_assert_eq(relais_agent_on(req.agent, 0, on_requester, &w), 0);
    side_run(&prov);
    side_run(&req);

    ask(&w, &req, B(APPOINTMENT_REQUEST));
    AWAIT(&w, w.confirms == 1);
    cr_expect_eq(read_int(&w, &w.offers), 1);
    AWAIT(&w, w.outcomes == 1);
    pthread_mutex_lock(&w.mu);
    int outcome = w.outcome;
    cr_expect_geq(w.outcome_at_ms, w.slot_end_ms, "reported once the slot has ended");
    cr_expect_str_eq(w.outcome_appointment_id, w.appointment_id);
    cr_expect_arr_eq(w.outcome_conv, w.request_conv, RELAIS_MESSAGE_ID_LEN,
                     "in the appointment's conversation");
    pthread_mutex_unlock(&w.mu);
    AWAIT(&w, w.accepted_outcomes == 1);

    side_stop(&req);
    side_stop(&prov);
    relais_ref_provider_stats_t st;
    relais_ref_provider_stats(p, &st);
    cr_expect_eq(st.requests, 1);
    cr_expect_eq(st.offers, 1);
    cr_expect_eq(st.books, 1);
    cr_expect_eq(st.confirmed, 1);
    cr_expect_eq(st.outcomes, 1);
    cr_expect_eq(st.no_shows, outcome == RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__NOSHOW);
    relais_ref_provider_destroy(&p);
    world_stop(&w);
    return outcome;
}

Test(provider_outcomes, a_slot_that_ends_reports_fulfilled)
{
    cr_expect_eq(appointment_outcome(0.0), RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED);
}

Test(provider_outcomes, a_no_show_rate_of_one_reports_no_show)
{
    cr_expect_eq(appointment_outcome(1.0), RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__NOSHOW);
}

/* A care task: ACCEPTED at once, then COMPLETED (or FAILED, patient absent) at its end. */
static void care_task(double no_show_rate, int final_status, const char *final_reason)
{
    world_t w;
    world_start(&w);
    side_t prov, req;
    side_create(&prov, &w, PROVIDER, NULL);
    relais_ref_provider_config_t cfg = nurse(&w, 0.0, no_show_rate);
    relais_ref_provider_t *p = NULL;
    cr_assert_eq(relais_ref_provider_new(&p, prov.agent, &cfg), 0);
    side_create(&req, &w, REQUESTER, NULL);
    cr_assert_eq(relais_agent_on(req.agent, 0, on_requester, &w), 0);
    side_run(&prov);
    side_run(&req);

    ask(&w, &req, B(CARE_TASK_REQUEST));
    AWAIT(&w, w.updates == 2);
    pthread_mutex_lock(&w.mu);
    cr_expect_eq(w.task_status[0], RELAIS__V1__CARE_TASK_UPDATE__STATUS__ACCEPTED);
    cr_expect_eq(w.task_status[1], final_status);
    cr_expect_str_eq(w.task_reason[1], final_reason);
    pthread_mutex_unlock(&w.mu);

    side_stop(&req);
    side_stop(&prov);
    relais_ref_provider_stats_t st;
    relais_ref_provider_stats(p, &st);
    cr_expect_eq(st.tasks_accepted, 1);
    cr_expect_eq(st.outcomes, 1);
    relais_ref_provider_destroy(&p);
    world_stop(&w);
}

Test(provider_outcomes, a_care_task_is_completed_when_its_slot_ends)
{
    care_task(0.0, RELAIS__V1__CARE_TASK_UPDATE__STATUS__COMPLETED, "done");
}

Test(provider_outcomes, an_absent_patient_fails_the_care_task)
{
    care_task(1.0, RELAIS__V1__CARE_TASK_UPDATE__STATUS__FAILED, "patient absent");
}

Test(provider_outcomes, a_decline_rate_of_one_declines_although_there_is_room)
{
    world_t w;
    world_start(&w);
    side_t prov, req;
    side_create(&prov, &w, PROVIDER, NULL);
    relais_ref_provider_config_t cfg = nurse(&w, 1.0, 0.0);
    relais_ref_provider_t *p = NULL;
    cr_assert_eq(relais_ref_provider_new(&p, prov.agent, &cfg), 0);
    side_create(&req, &w, REQUESTER, NULL);
    cr_assert_eq(relais_agent_on(req.agent, 0, on_requester, &w), 0);
    side_run(&prov);
    side_run(&req);

    ask(&w, &req, B(APPOINTMENT_REQUEST));
    AWAIT(&w, w.declines == 1);
    ask(&w, &req, B(CARE_TASK_REQUEST));
    AWAIT(&w, w.updates == 1);
    pthread_mutex_lock(&w.mu);
    cr_expect_eq(w.decline_code, RELAIS__V1__APPOINTMENT_DECLINE__REASON_CODE__NO_CAPACITY);
    cr_expect(strstr(w.decline_reason, "busy") != NULL, "a readable reason: %s", w.decline_reason);
    cr_expect_eq(w.task_status[0], RELAIS__V1__CARE_TASK_UPDATE__STATUS__REJECTED);
    cr_expect(strstr(w.task_reason[0], "busy") != NULL, "%s", w.task_reason[0]);
    cr_expect_eq(w.offers, 0);
    pthread_mutex_unlock(&w.mu);

    side_stop(&req);
    side_stop(&prov);
    relais_ref_provider_stats_t st;
    relais_ref_provider_stats(p, &st);
    cr_expect_eq(st.declines, 1);
    cr_expect_eq(st.busy_declines, 1);
    cr_expect_eq(st.tasks_rejected, 1);
    cr_expect_eq(relais_ref_provider_free_slots(p), 4, "nothing stays held or booked");
    relais_ref_provider_destroy(&p);
    world_stop(&w);
}

Test(provider_outcomes, a_provider_rebound_after_going_offline_reports_once)
{
    world_t w;
    world_start(&w);
    char state[400];
    snprintf(state, sizeof state, "%s/provider.state", w.broker.data_dir);
    side_t prov, req;
    side_create(&prov, &w, PROVIDER, state);
    relais_ref_provider_config_t cfg = nurse(&w, 0.0, 0.0);
    relais_ref_provider_t *p = NULL;
    cr_assert_eq(relais_ref_provider_new(&p, prov.agent, &cfg), 0);
    side_create(&req, &w, REQUESTER, NULL);
    cr_assert_eq(relais_agent_on(req.agent, 0, on_requester, &w), 0);
    side_run(&prov);
    side_run(&req);

    ask(&w, &req, B(APPOINTMENT_REQUEST));
    AWAIT(&w, w.confirms == 1);
    side_stop(&prov); /* offline: its timer goes with its agent */
    pthread_mutex_lock(&w.mu);
    int64_t slot_end = w.slot_end_ms;
    pthread_mutex_unlock(&w.mu);
    cr_assert_lt(relais_now_ms(), slot_end, "the provider must go offline before the slot ends");
    cr_expect_eq(read_int(&w, &w.outcomes), 0);

    side_create(&prov, &w, PROVIDER, state);
    cr_assert_eq(relais_ref_provider_rebind(p, prov.agent), 0);
    side_run(&prov);
    AWAIT(&w, w.outcomes == 1);
    cr_expect_eq(read_int(&w, &w.outcome), RELAIS__V1__APPOINTMENT_OUTCOME__OUTCOME__FULFILLED);

    marker_t m = {.w = &w};
    cr_assert_eq(relais_agent_post(prov.agent, do_marker, &m), 0);
    AWAIT(&w, m.done);
    cr_assert_eq(m.rc, 0);
    AWAIT(&w, w.notes == 1);
    cr_expect_eq(read_int(&w, &w.outcomes), 1, "the outcome arrived exactly once");

    side_stop(&req);
    side_stop(&prov);
    relais_ref_provider_stats_t st;
    relais_ref_provider_stats(p, &st);
    cr_expect_eq(st.outcomes, 1, "and was sent once");
    relais_ref_provider_destroy(&p);
    world_stop(&w);
}
