/*
 * Acceptance scenario 1 of the care-pathway issue, with the reference agents on a real
 * broker and a simulated clock (business time 100,000 times faster; transport timings
 * real): a heart-failure discharge is notified; the assistant turns the programme's plan
 * into a nurse care task, a GP appointment and a cardiology appointment; the cardiologist
 * never answers → reminder → escalation to the coordinator → the coordinator reassigns to
 * the other cardiologist → the assistant re-dispatches → every item ends completed, and
 * so does the discharge. The same notification sent again creates no new request.
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
#include "relais/conversation.h"

#define WAIT_MS 20000
#define FACTOR 100000
#define HOUR_MS (3600 * 1000LL)
#define DAY_MS (24 * HOUR_MS)

#define HOSPITAL "finess:350000011"
#define ASSISTANT "staff:claire.martin@cabinet-dupont"
#define GP "rpps:10101234567"
#define NURSE "rpps:10109876543"
#define CARDIO_SILENT "rpps:10104567890"
#define CARDIO "rpps:10104567891"
#define COORDINATOR "staff:coordination@relais-test"

static rt_broker_t broker;

/* Everything the agents report, under one mutex. */
static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int milestones[64];
    int requests_sent; /* AppointmentRequest / CareTaskRequest the assistant got accepted */
    int discharges_acked;
    int ready;
    relais_conv_state_t discharge_state;
    size_t discharge_items;
    relais_conv_state_t item_state[8];
    bool queried;
    int unrouted_escalations; /* Escalations the coordinator got about an unrouted item */
    bool reassigned_ok; /* the escalation named the silent one, the note the other one */
} seen = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

#define AWAIT(cond)                                                                                \
    do {                                                                                           \
        struct timespec dl_;                                                                       \
        clock_gettime(CLOCK_REALTIME, &dl_);                                                       \
        dl_.tv_sec += WAIT_MS / 1000;                                                              \
        pthread_mutex_lock(&seen.mu);                                                              \
        while (!(cond))                                                                            \
            if (pthread_cond_timedwait(&seen.cv, &seen.mu, &dl_) == ETIMEDOUT) break;              \
        bool ok_ = (cond);                                                                         \
        pthread_mutex_unlock(&seen.mu);                                                            \
        cr_assert(ok_, "timed out waiting for %s", #cond);                                         \
    } while (0)

static void on_event(const relais_ref_event_t *ev, void *ud)
{
    pthread_mutex_lock(&seen.mu);
    if (ev->milestone > 0 && ev->milestone < 64) seen.milestones[ev->milestone]++;
    if (ev->kind == RELAIS_REF_EV_ACCEPTED && strcmp(ev->from, ASSISTANT) == 0 &&
        (ev->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST ||
         ev->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST))
        seen.requests_sent++;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static void on_escalation(const relais_ref_escalation_t *esc, void *ud)
{
    pthread_mutex_lock(&seen.mu);
    seen.milestones[RELAIS_REF_MS_ESCALATION_RECEIVED]++;
    seen.reassigned_ok =
        strcmp(esc->responsible, CARDIO_SILENT) == 0 && strcmp(esc->reassigned_to, CARDIO) == 0;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    if (state != RELAIS_AGENT_READY) return;
    pthread_mutex_lock(&seen.mu);
    seen.ready++;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static void on_acked(relais_agent_t *agent, const Relais__V1__Envelope *env,
                     relais_outcome_t outcome, const char *reason, void *ud)
{
    if (env->body_case != RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION) return;
    pthread_mutex_lock(&seen.mu);
    seen.discharges_acked++;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

typedef struct node {
    relais_agent_t *agent;
    pthread_t thread;
} node_t;

static void *run(void *arg)
{
    relais_agent_run(((node_t *)arg)->agent);
    return NULL;
}

static void open_node(node_t *n, const char *address)
{
    const rt_key_t *key = rt_key_for(&broker, address);
    cr_assert_not_null(key, "%s is not in the test territory", address);
    relais_agent_options_t o = {.endpoint = broker.endpoint,
                                .address = address,
                                .curve_server_key = broker.server_pub,
                                .curve_public_key = key->pub,
                                .curve_secret_key = key->sec};
    cr_assert_eq(relais_agent_new(&n->agent, &o), 0);
    relais_agent_on_state(n->agent, on_state, NULL);
}

static void start_node(node_t *n)
{
    cr_assert_eq(pthread_create(&n->thread, NULL, run, n), 0);
}

static void stop_node(node_t *n)
{
    relais_agent_stop(n->agent);
    pthread_join(n->thread, NULL);
    relais_agent_destroy(&n->agent);
}

/* The discharge conversation as the assistant's SDK sees it (on its loop thread). */
static void visit(relais_agent_t *agent, const relais_conv_info_t *c, void *ud)
{
    if (c->kind != RELAIS_CONV_DISCHARGE) return;
    seen.discharge_state = c->state;
    seen.discharge_items = c->nparts;
    for (size_t i = 0; i < c->nparts && i < 8; i++) seen.item_state[i] = c->parts[i].state;
}

static void query(relais_agent_t *agent, void *ud)
{
    pthread_mutex_lock(&seen.mu);
    relais_conv_foreach(agent, visit, NULL);
    seen.queried = true;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

typedef struct discharge_job {
    relais_ref_hospital_t *h;
    int rc;
    bool done;
} discharge_job_t;

static const char *discharge_programme = "heart-failure";

static relais_outcome_t on_coordinator_escalation(relais_agent_t *agent, relais_delivery_t *d,
                                                  void *ud)
{
    const Relais__V1__Escalation *esc = d->envelope->escalation;
    pthread_mutex_lock(&seen.mu);
    if (esc != NULL && strstr(esc->reason, "physiotherapist") != NULL &&
        esc->conversation_id.len == RELAIS_MESSAGE_ID_LEN)
        seen.unrouted_escalations++;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
    return RELAIS_PROCESSED;
}

static void send_discharge(relais_agent_t *agent, void *ud)
{
    discharge_job_t *j = ud;
    Relais__V1__PatientRef patient;
    char *given[1];
    relais_ref_sample_patient(&patient, given, "SCENARIO-1");
    const relais_ref_programme_t *prog =
        relais_ref_programme_find(relais_ref_programmes_default(), discharge_programme);
    const char *team[1] = {GP};
    int rc = prog != NULL ? relais_ref_hospital_discharge(j->h, ASSISTANT, prog, &patient,
                                                          "enc-hf-0001", team, 1, relais_now_ms())
                          : -ENOENT;
    pthread_mutex_lock(&seen.mu);
    j->rc = rc;
    j->done = true;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static relais_ref_provider_t *provider(node_t *n, const char *role, const char *specialty,
                                       bool silent, bool home)
{
    relais_ref_provider_config_t pc = {
        .role = role,
        .specialty = specialty,
        .slot_minutes = 30,
        .hours = "08:00-12:00,14:00-18:00",
        .horizon_days = 70,
        .home_visits = home,
        .silent = silent,
        .report_outcomes = true,
        .on_event = on_event,
    };
    relais_ref_provider_t *p = NULL;
    cr_assert_eq(relais_ref_provider_new(&p, n->agent, &pc), 0);
    return p;
}

Test(acceptance, a_heart_failure_discharge_is_followed_through_an_escalation_to_completion,
     .timeout = 60)
{
    /* A simulated calendar that starts on a Monday at 07:00 UTC (1970-01-01: a Thursday). */
    int64_t wall = relais_wall_ms();
    int64_t days = wall / DAY_MS + 7;
    int64_t monday = (days - (days + 3) % 7) * DAY_MS;
    char clock[96];
    snprintf(clock, sizeof clock, "%d,%lld,%lld", FACTOR, (long long)wall,
             (long long)(monday + 7 * HOUR_MS));
    setenv("RELAIS_SIM_CLOCK", clock, 1);
    cr_assert_eq(relais_clock_init(), 0);
    rt_suite_start(&broker, NULL);

    node_t hospital, assistant, gp, nurse, cardio_silent, cardio, coordinator;
    open_node(&hospital, HOSPITAL);
    open_node(&assistant, ASSISTANT);
    open_node(&gp, GP);
    open_node(&nurse, NURSE);
    open_node(&cardio_silent, CARDIO_SILENT);
    open_node(&cardio, CARDIO);
    open_node(&coordinator, COORDINATOR);

    relais_ref_hospital_t *h = NULL;
    relais_ref_hospital_config_t hc = {.on_event = on_event};
    cr_assert_eq(relais_ref_hospital_new(&h, hospital.agent, &hc), 0);

    const char *gps[1] = {GP};
    const char *nurses[1] = {NURSE};
    const char *cardios[1] = {CARDIO_SILENT};
    const char *self[1] = {"@gp"};
    relais_ref_route_t routes[] = {
        {.role = "nurse", .candidates = nurses, .n_candidates = 1},
        {.role = "gp", .candidates = self, .n_candidates = 1},
        {.role = "specialist", .specialty = "cardiology", .candidates = cardios, .n_candidates = 1},
    };
    relais_conv_options_t tracking = {.coordinator = COORDINATOR,
                                      .reminder_fraction = 0.5,
                                      .answer_ms = 6 * HOUR_MS,
                                      .outcome_ms = 7 * DAY_MS};
    relais_ref_assistant_config_t ac = {.gps = gps,
                                        .n_gps = 1,
                                        .routes = routes,
                                        .n_routes = 3,
                                        .booking = RELAIS_REF_BOOK_EARLIEST,
                                        .tracking = &tracking,
                                        .on_event = on_event};
    relais_ref_assistant_t *a = NULL;
    cr_assert_eq(relais_ref_assistant_new(&a, assistant.agent, &ac), 0);
    relais_agent_on_acked(assistant.agent, on_acked, NULL);

    relais_ref_provider_t *p_gp = provider(&gp, "gp", NULL, false, false);
    relais_ref_provider_t *p_nurse = provider(&nurse, "nurse", NULL, false, true);
    relais_ref_provider_t *p_silent =
        provider(&cardio_silent, "specialist", "cardiology", true, false);
    relais_ref_provider_t *p_cardio = provider(&cardio, "specialist", "cardiology", false, false);

    const char *group[2] = {CARDIO_SILENT, CARDIO};
    relais_ref_coordinator_group_t groups[1] = {{.members = group, .n_members = 2}};
    relais_ref_coordinator_config_t cc = {
        .groups = groups, .n_groups = 1, .on_escalation = on_escalation, .on_event = on_event};
    relais_ref_coordinator_t *coord = NULL;
    cr_assert_eq(relais_ref_coordinator_new(&coord, coordinator.agent, &cc), 0);

    node_t *all[] = {&hospital, &assistant, &gp, &nurse, &cardio_silent, &cardio, &coordinator};
    for (size_t i = 0; i < 7; i++) start_node(all[i]);
    AWAIT(seen.ready >= 7);

    /* The notification, and the plan it carries: three requests. */
    discharge_job_t job = {.h = h};
    cr_assert_eq(relais_agent_post(hospital.agent, send_discharge, &job), 0);
    AWAIT(job.done);
    cr_assert_eq(job.rc, 0, "discharge: %s", relais_strerror(job.rc));
    AWAIT(seen.milestones[RELAIS_REF_MS_DISCHARGE_RECEIVED] == 1 && seen.requests_sent == 3);

    /* The cardiologist never answers: reminder, escalation, reassignment. */
    AWAIT(seen.milestones[RELAIS_REF_MS_REMINDER] >= 1);
    AWAIT(seen.milestones[RELAIS_REF_MS_ESCALATED] >= 1);
    AWAIT(seen.milestones[RELAIS_REF_MS_ESCALATION_RECEIVED] >= 1);
    AWAIT(seen.milestones[RELAIS_REF_MS_REASSIGNED] == 1);
    cr_assert(seen.reassigned_ok, "the escalation or the reassignment named someone else");

    /* Every item is carried out: the nurse's visit, the GP's and the other cardiologist's
     * consultations; the discharge's plan is then complete. */
    AWAIT(seen.milestones[RELAIS_REF_MS_TASK_COMPLETED] == 1 &&
          seen.milestones[RELAIS_REF_MS_APPOINTMENT_FULFILLED] == 2);
    cr_assert_eq(seen.milestones[RELAIS_REF_MS_APPOINTMENT_NOSHOW], 0);
    relais_ref_provider_stats_t st;
    relais_ref_provider_stats(p_silent, &st);
    cr_assert_eq(st.offers + st.declines, 0, "the silent cardiologist answered");

    cr_assert_eq(relais_agent_post(assistant.agent, query, NULL), 0);
    AWAIT(seen.queried);
    cr_assert_eq(seen.discharge_items, 3);
    for (size_t i = 0; i < 3; i++)
        cr_assert_eq(seen.item_state[i], RELAIS_CONV_COMPLETED, "item %zu is %s", i,
                     relais_conv_state_name(seen.item_state[i]));
    cr_assert_eq(seen.discharge_state, RELAIS_CONV_COMPLETED, "the discharge is %s",
                 relais_conv_state_name(seen.discharge_state));

    /* The same notification again: acknowledged, and no new request. */
    int before = seen.requests_sent;
    job.done = false;
    cr_assert_eq(relais_agent_post(hospital.agent, send_discharge, &job), 0);
    AWAIT(job.done);
    cr_assert_eq(job.rc, 0);
    AWAIT(seen.discharges_acked == 2);
    pthread_mutex_lock(&seen.mu);
    int after = seen.requests_sent;
    pthread_mutex_unlock(&seen.mu);
    cr_assert_eq(after, before, "a replayed notification created %d new requests", after - before);

    for (size_t i = 0; i < 7; i++) stop_node(all[i]);
    relais_ref_provider_destroy(&p_gp);
    relais_ref_provider_destroy(&p_nurse);
    relais_ref_provider_destroy(&p_silent);
    relais_ref_provider_destroy(&p_cardio);
    relais_ref_assistant_destroy(&a);
    relais_ref_hospital_destroy(&h);
    relais_ref_coordinator_destroy(&coord);
    rt_suite_stop(&broker);
}

Test(acceptance, a_follow_up_item_nobody_is_configured_for_goes_to_the_coordinator, .timeout = 60)
{
    /* A COPD plan asks for pulmonary rehabilitation, and the practice has no physiotherapist
     * configured: the item is escalated to the CPTS coordinator, never dropped quietly. */
    rt_suite_start(&broker, NULL);
    discharge_programme = "copd";
    node_t hospital, assistant, gp, nurse, coordinator;
    open_node(&hospital, HOSPITAL);
    open_node(&assistant, ASSISTANT);
    open_node(&gp, GP);
    open_node(&nurse, NURSE);
    open_node(&coordinator, COORDINATOR);
    relais_ref_hospital_t *h = NULL;
    relais_ref_hospital_config_t hc = {.on_event = on_event};
    cr_assert_eq(relais_ref_hospital_new(&h, hospital.agent, &hc), 0);
    const char *gps[1] = {GP};
    const char *nurses[1] = {NURSE};
    const char *self[1] = {"@gp"};
    relais_ref_route_t routes[] = {
        {.role = "nurse", .candidates = nurses, .n_candidates = 1},
        {.role = "gp", .candidates = self, .n_candidates = 1},
    };
    relais_conv_options_t tracking = {.coordinator = COORDINATOR,
                                      .reminder_fraction = 0.5,
                                      .answer_ms = 6 * HOUR_MS,
                                      .outcome_ms = 7 * DAY_MS};
    relais_ref_assistant_config_t ac = {.gps = gps,
                                        .n_gps = 1,
                                        .routes = routes,
                                        .n_routes = 2,
                                        .booking = RELAIS_REF_BOOK_EARLIEST,
                                        .tracking = &tracking,
                                        .on_event = on_event};
    relais_ref_assistant_t *a = NULL;
    cr_assert_eq(relais_ref_assistant_new(&a, assistant.agent, &ac), 0);
    relais_ref_provider_t *p_gp = provider(&gp, "gp", NULL, false, false);
    relais_ref_provider_t *p_nurse = provider(&nurse, "nurse", NULL, false, true);
    cr_assert_eq(relais_agent_on(coordinator.agent, RELAIS__V1__ENVELOPE__BODY_ESCALATION,
                                 on_coordinator_escalation, NULL),
                 0);
    node_t *all[] = {&hospital, &assistant, &gp, &nurse, &coordinator};
    for (size_t i = 0; i < 5; i++) start_node(all[i]);
    AWAIT(seen.ready >= 5);
    discharge_job_t job = {.h = h};
    cr_assert_eq(relais_agent_post(hospital.agent, send_discharge, &job), 0);
    AWAIT(job.done);
    cr_assert_eq(job.rc, 0, "discharge: %s", relais_strerror(job.rc));
    AWAIT(seen.unrouted_escalations == 1);
    AWAIT(seen.milestones[RELAIS_REF_MS_FOLLOW_UP_UNROUTED] == 1);
    for (size_t i = 0; i < 5; i++) stop_node(all[i]);
    relais_ref_provider_destroy(&p_gp);
    relais_ref_provider_destroy(&p_nurse);
    relais_ref_assistant_destroy(&a);
    relais_ref_hospital_destroy(&h);
    rt_suite_stop(&broker);
}
