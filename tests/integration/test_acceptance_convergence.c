/*
 * Care requests converge: the livelock of issue 10, with the reference agents on a real
 * broker. A practice's nurse route is [nurse #0, nurse #1, the nurses' pool], the pool's
 * members are those two nurses and a third, and every nurse rejects the care task ("busy").
 * Before the fix the request went round for ever: the pool gave it to nurse #0, whose
 * answer made it the counterpart, and "the candidate after nurse #0" was nurse #1 again.
 * Now the request tries each candidate once (the pool and the member who took it both
 * count), is escalated once to the coordinator, who may name the one nurse that never had
 * it and no one who did, and then stops: the re-dispatches are bounded by the candidates.
 * The route offers to its pool, and the re-dispatch there keeps the OFFER dispatch.
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
#define NURSE0 "rpps:10109876543" /* first of the pool in the directory */
#define NURSE1 "rpps:10100000001"
#define NURSE2 "rpps:20202345678"
#define POOL "service:nurse@relais-test"
#define COORDINATOR "staff:coordination@relais-test"

/* Route [nurse #0, nurse #1, pool]: three candidates, so at most two re-dispatches by the
 * route and one by the coordinator's reassignment. */
#define MAX_REDISPATCHES 3

static rt_broker_t broker;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int milestones[64];
    int ready;
    int escalations_received;
    int app_accepted;   /* the assistant's own sends the broker accepted (its events) */
    int all_submitted;  /* every submission of the assistant's agent the broker accepted */
    char reassigned_to[RELAIS_ADDRESS_MAX];
    bool queried;
    relais_conv_state_t task_state;
    unsigned task_redispatches, task_escalations;
    size_t task_candidates;
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
    if (ev->kind == RELAIS_REF_EV_ACCEPTED && strcmp(ev->from, ASSISTANT) == 0)
        seen.app_accepted++;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static void on_submitted(relais_agent_t *agent, const relais_send_result_t *res, void *ud)
{
    pthread_mutex_lock(&seen.mu);
    if (res->status == 0) seen.all_submitted++;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

static void on_escalation(const relais_ref_escalation_t *esc, void *ud)
{
    /* The plan's cardiology item has no route here: its escalation (no one responsible) is
     * not the one this test follows. */
    if (esc->responsible == NULL || esc->responsible[0] == '\0') return;
    pthread_mutex_lock(&seen.mu);
    seen.escalations_received++;
    snprintf(seen.reassigned_to, sizeof seen.reassigned_to, "%s", esc->reassigned_to);
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

static void stop_node(node_t *n)
{
    relais_agent_stop(n->agent);
    pthread_join(n->thread, NULL);
    relais_agent_destroy(&n->agent);
}

static void visit(relais_agent_t *agent, const relais_conv_info_t *c, void *ud)
{
    if (c->kind != RELAIS_CONV_CARE_TASK) return;
    seen.task_state = c->state;
    seen.task_redispatches = c->redispatches;
    seen.task_escalations = c->escalations;
    seen.task_candidates = c->nparts;
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

static void send_discharge(relais_agent_t *agent, void *ud)
{
    discharge_job_t *j = ud;
    Relais__V1__PatientRef patient;
    char *given[1];
    relais_ref_sample_patient(&patient, given, "LIVELOCK-1");
    const relais_ref_programme_t *prog =
        relais_ref_programme_find(relais_ref_programmes_default(), "heart-failure");
    const char *team[1] = {GP};
    int rc = prog != NULL ? relais_ref_hospital_discharge(j->h, ASSISTANT, prog, &patient,
                                                          "enc-loop-0001", team, 1, relais_now_ms())
                          : -ENOENT;
    pthread_mutex_lock(&seen.mu);
    j->rc = rc;
    j->done = true;
    pthread_cond_broadcast(&seen.cv);
    pthread_mutex_unlock(&seen.mu);
}

/* A nurse whose every answer is "busy". */
static relais_ref_provider_t *busy_nurse(node_t *n)
{
    relais_ref_provider_config_t pc = {
        .role = "nurse",
        .slot_minutes = 30,
        .hours = "08:00-12:00,14:00-18:00",
        .horizon_days = 70,
        .home_visits = true,
        .decline_rate = 1.0,
        .on_event = on_event,
    };
    relais_ref_provider_t *p = NULL;
    cr_assert_eq(relais_ref_provider_new(&p, n->agent, &pc), 0);
    return p;
}

Test(acceptance, a_care_task_every_nurse_rejects_tries_each_once_then_escalates_once,
     .timeout = 60)
{
    int64_t wall = relais_wall_ms();
    int64_t days = wall / DAY_MS + 7;
    int64_t monday = (days - (days + 3) % 7) * DAY_MS;
    char clock[96];
    snprintf(clock, sizeof clock, "%d,%lld,%lld", FACTOR, (long long)wall,
             (long long)(monday + 7 * HOUR_MS));
    setenv("RELAIS_SIM_CLOCK", clock, 1);
    cr_assert_eq(relais_clock_init(), 0);
    rt_suite_start(&broker, NULL);

    node_t hospital, assistant, n0, n1, n2, coordinator;
    open_node(&hospital, HOSPITAL);
    open_node(&assistant, ASSISTANT);
    open_node(&n0, NURSE0);
    open_node(&n1, NURSE1);
    open_node(&n2, NURSE2);
    open_node(&coordinator, COORDINATOR);

    relais_ref_hospital_t *h = NULL;
    relais_ref_hospital_config_t hc = {.on_event = on_event};
    cr_assert_eq(relais_ref_hospital_new(&h, hospital.agent, &hc), 0);

    const char *gps[1] = {GP};
    const char *nurses[3] = {NURSE0, NURSE1, POOL};
    relais_ref_route_t routes[] = {
        {.role = "nurse", .candidates = nurses, .n_candidates = 3, .offer = true},
    };
    relais_conv_options_t tracking = {.coordinator = COORDINATOR, .answer_ms = 6 * HOUR_MS};
    relais_ref_assistant_config_t ac = {.gps = gps,
                                        .n_gps = 1,
                                        .routes = routes,
                                        .n_routes = 1,
                                        .tracking = &tracking,
                                        .on_event = on_event};
    relais_ref_assistant_t *a = NULL;
    cr_assert_eq(relais_ref_assistant_new(&a, assistant.agent, &ac), 0);
    relais_agent_on_submitted(assistant.agent, on_submitted, NULL);
    relais_ref_provider_t *p0 = busy_nurse(&n0), *p1 = busy_nurse(&n1), *p2 = busy_nurse(&n2);

    const char *group[3] = {NURSE0, NURSE1, NURSE2};
    relais_ref_coordinator_group_t groups[1] = {{.members = group, .n_members = 3}};
    relais_ref_coordinator_config_t cc = {
        .groups = groups, .n_groups = 1, .on_escalation = on_escalation, .on_event = on_event};
    relais_ref_coordinator_t *coord = NULL;
    cr_assert_eq(relais_ref_coordinator_new(&coord, coordinator.agent, &cc), 0);

    node_t *all[] = {&hospital, &assistant, &n0, &n1, &n2, &coordinator};
    for (size_t i = 0; i < 6; i++)
        cr_assert_eq(pthread_create(&all[i]->thread, NULL, run, all[i]), 0);
    AWAIT(seen.ready >= 6);

    discharge_job_t job = {.h = h};
    cr_assert_eq(relais_agent_post(hospital.agent, send_discharge, &job), 0);
    AWAIT(job.done);
    cr_assert_eq(job.rc, 0, "discharge: %s", relais_strerror(job.rc));

    /* Either the request settles (escalated, the coordinator's choice rejected too, or no
     * one left to name), or it keeps going round: the wait ends on whichever comes first. */
#define SETTLED                                                                                    \
    (seen.escalations_received >= 1 &&                                                             \
     seen.milestones[RELAIS_REF_MS_TASK_REJECTED] >= (seen.reassigned_to[0] ? 4 : 3))
    AWAIT(SETTLED || seen.milestones[RELAIS_REF_MS_REDISPATCHED] > MAX_REDISPATCHES + 2);
    pthread_mutex_lock(&seen.mu);
    int redispatched = seen.milestones[RELAIS_REF_MS_REDISPATCHED];
    int reassigned = seen.milestones[RELAIS_REF_MS_REASSIGNED];
    int rejected = seen.milestones[RELAIS_REF_MS_TASK_REJECTED];
    int escalated = seen.milestones[RELAIS_REF_MS_ESCALATED];
    char to[RELAIS_ADDRESS_MAX];
    snprintf(to, sizeof to, "%s", seen.reassigned_to);
    pthread_mutex_unlock(&seen.mu);
    cr_assert_leq(redispatched + reassigned, MAX_REDISPATCHES,
                  "re-dispatched %d times and reassigned %d: the request goes round", redispatched,
                  reassigned);
    cr_assert_eq(escalated, 1, "escalated %d times", escalated);
    /* The coordinator names no one who already had it: only the third nurse can be named,
     * and only if the pool gave the request to one of the first two. */
    cr_assert(to[0] == '\0' || strcmp(to, NURSE2) == 0, "the coordinator named %s", to);
    cr_assert_leq(rejected, 4);
    /* The re-dispatch to the pool kept the route's OFFER: every member was offered it and
     * one claimed it (an ANYCAST delivery has no claim). */
    AWAIT(seen.milestones[RELAIS_REF_MS_CLAIMED] >= 1);

    /* The SDK's own sends (re-dispatches, the escalation) are seen by the submitted
     * observer, which the application's events miss: what relais-sim counts with. */
    AWAIT(seen.all_submitted >= seen.app_accepted + redispatched + reassigned + escalated);
    pthread_mutex_lock(&seen.mu);
    int sdk_own = seen.all_submitted - seen.app_accepted;
    pthread_mutex_unlock(&seen.mu);
    cr_assert_eq(sdk_own, redispatched + reassigned + escalated,
                 "%d submissions of the SDK's own for %d re-dispatches and %d escalation", sdk_own,
                 redispatched + reassigned, escalated);

    cr_assert_eq(relais_agent_post(assistant.agent, query, NULL), 0);
    AWAIT(seen.queried);
    cr_assert_eq(seen.task_state, RELAIS_CONV_REJECTED, "the task is %s",
                 relais_conv_state_name(seen.task_state));
    cr_assert_eq(seen.task_escalations, 1);
    cr_assert_leq(seen.task_redispatches, MAX_REDISPATCHES);
    /* The two nurses, the pool, and the third nurse when the pool or the coordinator gave
     * it to her: every one who had it is remembered. */
    cr_assert(seen.task_candidates >= 3 && seen.task_candidates <= 4, "%zu candidates",
              seen.task_candidates);

    for (size_t i = 0; i < 6; i++) stop_node(all[i]);
    relais_ref_provider_destroy(&p0);
    relais_ref_provider_destroy(&p1);
    relais_ref_provider_destroy(&p2);
    relais_ref_assistant_destroy(&a);
    relais_ref_hospital_destroy(&h);
    relais_ref_coordinator_destroy(&coord);
    rt_suite_stop(&broker);
}
