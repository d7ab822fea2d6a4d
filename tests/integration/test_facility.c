/*
 * The facility and hospital reference roles end to end: a real relaisd (CurveZMQ, the test
 * territory) and SDK agents on their own threads. A requester with conversation tracking
 * (conv_agents.c) sends preadmission requests to a relais_ref_facility_t, chooses, cancels,
 * and the decisions, the admission notice and the tracked states are checked; a
 * relais_ref_hospital_t notifies a programme's discharge to an assistant-like agent, which
 * checks the plan's windows.
 *
 * Business time runs 3,600 times faster than real time (RELAIS_SIM_CLOCK, set before the
 * broker's simulated start, which inherits it; see setup()): an hour of business time is a real
 * second, so an admission dated three hours ahead arrives three real seconds later — and only if
 * the facility armed its timer with the real delay. Every wait is on an event, with a timeout.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conv_agents.h"
#include "refagents.h"

#define ADDR_REQUESTER "staff:claire.martin@cabinet-dupont"
#define ADDR_GP "rpps:10101234567"
#define ADDR_FACILITY "finess:350000014"
#define ADDR_HOSPITAL "finess:350000011"
#define HOUR (3600LL * 1000)
#define DAY (24 * HOUR)
#define SMR RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR
#define DECISION(x) RELAIS__V1__PREADMISSION_DECISION__DECISION__##x

/* ---- A reference role on its own agent and thread --------------------------------------- */

typedef struct ragent {
    relais_agent_t *agent;
    pthread_t thread;
    bool running;
    int run_rc;
    char address[RELAIS_ADDRESS_MAX];
    events_t ev; /* ready, stopped, accepted, got[] (RECEIVED events) under ev.mu */
    int notices, failures;
    char last_notice[128], last_failure[160];
    relais_ref_facility_t *facility;
    relais_ref_hospital_t *hospital;
    relais_ref_facility_stats_t stats; /* read once the loop ended */
} ragent_t;

static void on_role_event(const relais_ref_event_t *e, void *ud)
{
    ragent_t *r = ud;
    RECORD(r, {
        if (e->kind == RELAIS_REF_EV_ACCEPTED) r->ev.accepted++;
        if (e->kind == RELAIS_REF_EV_RECEIVED && e->body_case < 64) r->ev.got[e->body_case]++;
        if (e->kind == RELAIS_REF_EV_NOTICE) {
            r->notices++;
            snprintf(r->last_notice, sizeof r->last_notice, "%s", e->state);
        }
        if (e->kind == RELAIS_REF_EV_SEND_FAILED || e->milestone == RELAIS_REF_MS_FAILED) {
            r->failures++;
            snprintf(r->last_failure, sizeof r->last_failure, "%s %s: %s %s",
                     relais_ref_body_title(e->body_case), e->ref, e->state, e->reason);
        }
    });
}

static void on_role_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                          void *ud)
{
    ragent_t *r = ud;
    RECORD(r, {
        if (state == RELAIS_AGENT_READY) r->ev.ready++;
        if (state == RELAIS_AGENT_STOPPED) r->ev.stopped++;
    });
}

static void *role_main(void *arg)
{
    ragent_t *r = arg;
    r->run_rc = relais_agent_run(r->agent);
    return NULL;
}

static rt_broker_t broker;
static tagent_t requester;
static ragent_t roles[2];

/* Starts the roles given (a facility, a hospital, or both on one agent) at address. */
static ragent_t *start_role(ragent_t *r, const char *address, relais_ref_facility_config_t *fcfg,
                            relais_ref_hospital_config_t *hcfg)
{
    memset(r, 0, sizeof *r);
    snprintf(r->address, sizeof r->address, "%s", address);
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&r->ev.cv, &attr);
    pthread_condattr_destroy(&attr);
    pthread_mutex_init(&r->ev.mu, NULL);
    const rt_key_t *key = rt_key_for(&broker, address);
    cr_assert_not_null(key);
    relais_agent_options_t opts = {.endpoint = broker.endpoint,
                                   .address = address,
                                   .software = "test-facility/1",
                                   .curve_server_key = broker.server_pub,
                                   .curve_public_key = key->pub,
                                   .curve_secret_key = key->sec};
    cr_assert_eq(relais_agent_new(&r->agent, &opts), 0);
    relais_agent_on_state(r->agent, on_role_state, r);
    if (hcfg != NULL) {
        hcfg->on_event = on_role_event;
        hcfg->event_ud = r;
        cr_assert_eq(relais_ref_hospital_new(&r->hospital, r->agent, hcfg), 0);
    }
    if (fcfg != NULL) {
        fcfg->on_event = on_role_event;
        fcfg->event_ud = r;
        fcfg->no_receipts = hcfg != NULL; /* the hospital's callback reports them */
        cr_assert_eq(relais_ref_facility_new(&r->facility, r->agent, fcfg), 0);
    }
    cr_assert_eq(pthread_create(&r->thread, NULL, role_main, r), 0);
    r->running = true;
    AWAIT(r, ev->ready >= 1);
    return r;
}

/* Stops r, keeps its facility's final counters in r->stats, frees it. */
static void stop_role(ragent_t *r)
{
    if (!r->running) return;
    relais_agent_stop(r->agent);
    pthread_join(r->thread, NULL);
    r->running = false;
    cr_expect_eq(r->run_rc, 0);
    relais_agent_destroy(&r->agent);
    if (r->facility != NULL) relais_ref_facility_stats(r->facility, &r->stats);
    relais_ref_facility_destroy(&r->facility);
    relais_ref_hospital_destroy(&r->hospital);
    cr_expect_eq(r->failures, 0, "%s: a send failed (%s)", r->address, r->last_failure);
    pthread_cond_destroy(&r->ev.cv);
    pthread_mutex_destroy(&r->ev.mu);
}

/* ---- What the requester saw ------------------------------------------------------------- */

typedef struct decision_seen {
    char request_id[32];
    int decision;
    int64_t admission_date_ms;
    char reason[128];
} decision_seen_t;

/* Under requester.ev.mu. */
static struct {
    decision_seen_t decisions[8];
    int n_decisions;
    char admitted_request[32], admitted_facility[64], admitted_patient[32];
    int64_t admitted_at_ms, admission_seen_ms;
    char programme[32], facility[64], encounter[32];
    int disposition;
    size_t n_items;
    char item_id[4][32], role[4][32], specialty[4][32];
    int64_t not_before[4], due_by[4];
} seen;

static relais_outcome_t capture(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    tagent_t *t = ud;
    const Relais__V1__Envelope *env = d->envelope;
    RECORD(t, {
        t->ev.got[env->body_case]++;
        if (env->body_case == B(PREADMISSION_DECISION) && seen.n_decisions < 8) {
            const Relais__V1__PreadmissionDecision *pd = env->preadmission_decision;
            decision_seen_t *s = &seen.decisions[seen.n_decisions++];
            snprintf(s->request_id, sizeof s->request_id, "%s", pd->request_id);
            s->decision = pd->decision;
            s->admission_date_ms = pd->admission_date_ms;
            snprintf(s->reason, sizeof s->reason, "%s", pd->reason);
        } else if (env->body_case == B(ADMISSION_NOTICE)) {
            const Relais__V1__AdmissionNotice *n = env->admission_notice;
            snprintf(seen.admitted_request, sizeof seen.admitted_request, "%s", n->request_id);
            snprintf(seen.admitted_facility, sizeof seen.admitted_facility, "%s", n->facility);
            snprintf(seen.admitted_patient, sizeof seen.admitted_patient, "%s",
                     n->patient != NULL ? n->patient->local_id : "");
            seen.admitted_at_ms = n->admitted_at_ms;
            seen.admission_seen_ms = relais_now_ms();
        } else if (env->body_case == B(DISCHARGE_NOTIFICATION)) {
            const Relais__V1__DischargeNotification *dn = env->discharge_notification;
            snprintf(seen.programme, sizeof seen.programme, "%s", dn->programme);
            snprintf(seen.facility, sizeof seen.facility, "%s", dn->facility);
            snprintf(seen.encounter, sizeof seen.encounter, "%s", dn->encounter_id);
            seen.disposition = dn->disposition;
            seen.n_items = dn->n_follow_up;
            for (size_t i = 0; i < dn->n_follow_up && i < 4; i++) {
                const Relais__V1__FollowUpItem *it = dn->follow_up[i];
                snprintf(seen.item_id[i], sizeof seen.item_id[i], "%s", it->item_id);
                snprintf(seen.role[i], sizeof seen.role[i], "%s", it->role);
                snprintf(seen.specialty[i], sizeof seen.specialty[i], "%s", it->specialty);
                seen.not_before[i] = it->window ? it->window->not_before_ms : -1;
                seen.due_by[i] = it->window ? it->window->due_by_ms : -1;
            }
        }
    });
    return RELAIS_PROCESSED;
}

typedef struct pjob {
    tagent_t *t;
    int body;
    const char *to[2];
    size_t nto;
    const char *request_id;
    const uint8_t *conv; /* NULL: a new conversation */
    int kind;
    int64_t expected_ms;
    int rc;
    char refusal[RELAIS_REASON_MAX];
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    bool done;
} pjob_t;

static void do_register(relais_agent_t *agent, void *ud)
{
    pjob_t *j = ud;
    j->rc = relais_agent_on(agent, B(PREADMISSION_DECISION), capture, j->t);
    if (j->rc == 0) j->rc = relais_agent_on(agent, B(ADMISSION_NOTICE), capture, j->t);
    if (j->rc == 0) j->rc = relais_agent_on(agent, B(DISCHARGE_NOTIFICATION), capture, j->t);
    RECORD(j->t, j->done = true);
}

static void do_pjob(relais_agent_t *agent, void *ud)
{
    pjob_t *j = ud;
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__PreadmissionRequest req = RELAIS__V1__PREADMISSION_REQUEST__INIT;
    Relais__V1__PreadmissionChoice choice = RELAIS__V1__PREADMISSION_CHOICE__INIT;
    Relais__V1__PreadmissionCancel cancel = RELAIS__V1__PREADMISSION_CANCEL__INIT;
    Relais__V1__PatientRef patient = RELAIS__V1__PATIENT_REF__INIT;
    patient.local_id = "pat-7";
    env.to = (char **)j->to;
    env.n_to = j->nto;
    if (j->conv != NULL)
        env.conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, (uint8_t *)j->conv};
    env.body_case = (Relais__V1__Envelope__BodyCase)j->body;
    switch (j->body) {
    case B(PREADMISSION_REQUEST):
        req.request_id = (char *)j->request_id;
        req.patient = &patient;
        req.facility_kind = (Relais__V1__PreadmissionRequest__FacilityKind)j->kind;
        req.expected_date_ms = j->expected_ms;
        req.reason = "rehabilitation after heart failure";
        env.preadmission_request = &req;
        break;
    case B(PREADMISSION_CHOICE):
        choice.request_id = (char *)j->request_id;
        choice.facility = (char *)j->to[0];
        env.preadmission_choice = &choice;
        break;
    case B(PREADMISSION_CANCEL):
        cancel.request_id = (char *)j->request_id;
        cancel.reason = "the patient went home";
        env.preadmission_cancel = &cancel;
        break;
    }
    j->rc = relais_agent_send(agent, &env, j->id, NULL, NULL);
    snprintf(j->refusal, sizeof j->refusal, "%s", relais_conv_last_refusal(agent));
    RECORD(j->t, j->done = true);
}

static int run_job(tagent_t *t, pjob_t *j, relais_agent_fn fn)
{
    j->t = t;
    j->done = false;
    cr_assert_eq(relais_agent_post(t->agent, fn, j), 0);
    AWAIT(t, j->done);
    return j->rc;
}

/* The requester, tracking its conversations, with capture() on the bodies checked here. */
static tagent_t *start_requester(void)
{
    static const relais_conv_options_t track = {.reminder_fraction = -1};
    tagent_t *t = conv_agent_start(&requester, &broker, NULL, ADDR_REQUESTER, &track, NULL, NULL);
    pjob_t reg = {0};
    cr_assert_eq(run_job(t, &reg, do_register), 0);
    return t;
}

static void request(tagent_t *t, pjob_t *j, const char *request_id, int64_t expected_ms)
{
    *j = (pjob_t){.body = B(PREADMISSION_REQUEST),
                  .to = {ADDR_FACILITY},
                  .nto = 1,
                  .request_id = request_id,
                  .kind = SMR,
                  .expected_ms = expected_ms};
    cr_assert_eq(run_job(t, j, do_pjob), 0, "%s", j->refusal);
}

static int decisions(tagent_t *t)
{
    return read_int(t, &seen.n_decisions);
}

/* The snapshot of conversation id after a query, or a failed test. */
static const snap_t *conversation(tagent_t *t, const uint8_t *id)
{
    query(t);
    for (size_t i = 0; i < t->ev.nsnap; i++)
        if (memcmp(t->ev.snap[i].id, id, RELAIS_MESSAGE_ID_LEN) == 0) return &t->ev.snap[i];
    cr_assert_fail("conversation not tracked");
    return NULL;
}

static relais_ref_facility_config_t facility_config(unsigned capacity, double accept,
                                                    double waitlist)
{
    relais_ref_facility_config_t cfg;
    relais_ref_facility_config_defaults(&cfg);
    cfg.kind = SMR;
    cfg.capacity = capacity;
    cfg.accept_rate = accept;
    cfg.waitlist_rate = waitlist;
    cfg.seed = 7;
    return cfg;
}

/* ---- Suite ------------------------------------------------------------------------------- */

/*
 * Starts the broker on a simulated clock. relaisd refuses a simulated clock with a
 * production directory, and the harness marks its test territory as one: a first start
 * generates the territory (keys, directory), then the broker restarts with
 * RELAIS_SIM_CLOCK set, on a copy of the directory marked production: false. This runs
 * before any clock reading of this process, which reads the variable once.
 */
static void setup(void)
{
    static char directory[320];
    rt_suite_start(&broker, NULL);
    cr_assert_eq(rt_broker_stop(&broker, 10000), 0);
    char path[320];
    snprintf(path, sizeof path, "%s/territory.yaml", broker.data_dir);
    snprintf(directory, sizeof directory, "%s/territory-simulated.yaml", broker.data_dir);
    FILE *in = fopen(path, "r"), *out = fopen(directory, "w");
    cr_assert(in != NULL && out != NULL, "cannot copy %s", path);
    char line[512];
    int marked = 0;
    while (fgets(line, sizeof line, in)) {
        bool production = strncmp(line, "production: true", 16) == 0;
        fputs(production ? "production: false\n" : line, out);
        marked += production;
    }
    fclose(in);
    cr_assert_eq(fclose(out), 0);
    cr_assert_eq(marked, 1, "the test territory says production: true once");

    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    long long now = (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    char sim[96];
    snprintf(sim, sizeof sim, "3600,%lld,%lld", now, now);
    cr_assert_eq(setenv("RELAIS_SIM_CLOCK", sim, 1), 0);
    cr_assert_eq(relais_clock_init(), 0);
    cr_assert_float_eq(relais_clock_factor(), 3600.0, 1e-9);
    memset(&seen, 0, sizeof seen);
    broker.directory = directory;
    broker.endpoint[0] = '\0';
    cr_assert_eq(rt_broker_start(&broker, NULL, 10000), 0, "relaisd must start simulated");
}

static void teardown(void)
{
    for (size_t i = 0; i < 2; i++) stop_role(&roles[i]);
    conv_agent_stop(&requester);
    rt_suite_stop(&broker);
}

TestSuite(facility, .init = setup, .fini = teardown, .timeout = 120);

Test(facility, an_accepted_request_chosen_is_admitted_at_its_date)
{
    relais_ref_facility_config_t cfg = facility_config(2, 1.0, 0.0);
    cfg.decision_delay_ms = HOUR; /* one real second */
    ragent_t *f = start_role(&roles[0], ADDR_FACILITY, &cfg, NULL);
    tagent_t *r = start_requester();

    int64_t expected = relais_now_ms() + 3 * HOUR;
    pjob_t req;
    request(r, &req, "pre-1", expected);
    AWAIT(f, f->notices >= 1); /* "decision due …": nothing answered at once */
    cr_expect_eq(decisions(r), 0);
    AWAIT(r, seen.n_decisions == 1);
    cr_expect_str_eq(seen.decisions[0].request_id, "pre-1");
    cr_expect_eq(seen.decisions[0].decision, DECISION(ACCEPTED));
    cr_expect_eq(seen.decisions[0].admission_date_ms, expected);
    const snap_t *s = conversation(r, req.id);
    cr_expect_eq(s->kind, RELAIS_CONV_PREADMISSION);
    cr_expect_eq(s->state, RELAIS_CONV_ACCEPTED);
    cr_expect_eq(part_of(s, ADDR_FACILITY), RELAIS_CONV_ACCEPTED);

    pjob_t choice = {.body = B(PREADMISSION_CHOICE),
                     .to = {ADDR_FACILITY},
                     .nto = 1,
                     .request_id = "pre-1",
                     .conv = req.id};
    cr_assert_eq(run_job(r, &choice, do_pjob), 0, "%s", choice.refusal);
    AWAIT(r, ev->got[B(ADMISSION_NOTICE)] == 1);
    cr_expect_str_eq(seen.admitted_request, "pre-1");
    cr_expect_str_eq(seen.admitted_facility, ADDR_FACILITY);
    cr_expect_str_eq(seen.admitted_patient, "pat-7", "the request's patient, kept");
    cr_expect_geq(seen.admitted_at_ms, expected, "admitted at the date, not at the choice");
    cr_expect_geq(seen.admission_seen_ms, expected);
    s = conversation(r, req.id);
    cr_expect_eq(s->state, RELAIS_CONV_ADMITTED);
    cr_expect_eq(part_of(s, ADDR_FACILITY), RELAIS_CONV_ADMITTED);
    cr_expect_str_eq(s->counterpart, ADDR_FACILITY);

    AWAIT(f, ev->accepted == 2); /* the broker took the decision and the notice */
    stop_role(f);
    cr_expect_eq(f->stats.requests, 1);
    cr_expect_eq(f->stats.accepted, 1);
    cr_expect_eq(f->stats.chosen, 1);
    cr_expect_eq(f->stats.admitted, 1);
    cr_expect_eq(f->stats.refused + f->stats.waitlisted + f->stats.cancelled, 0);
    cr_expect_eq(f->stats.beds_used, 1);
}

Test(facility, without_a_bed_a_request_waits_and_gets_the_bed_another_frees)
{
    relais_ref_facility_config_t cfg = facility_config(1, 1.0, 1.0);
    ragent_t *f = start_role(&roles[0], ADDR_FACILITY, &cfg, NULL);
    tagent_t *r = start_requester();

    pjob_t first, second;
    request(r, &first, "pre-1", 0);
    AWAIT(r, seen.n_decisions == 1);
    cr_expect_eq(seen.decisions[0].decision, DECISION(ACCEPTED));
    request(r, &second, "pre-2", 0);
    AWAIT(r, seen.n_decisions == 2);
    cr_expect_str_eq(seen.decisions[1].request_id, "pre-2");
    cr_expect_eq(seen.decisions[1].decision, DECISION(WAITLISTED));
    cr_expect_str_eq(seen.decisions[1].reason, "no bed free: on the waiting list");
    const snap_t *s = conversation(r, second.id);
    cr_expect_eq(s->state, RELAIS_CONV_WAITLISTED);
    cr_expect_eq(part_of(s, ADDR_FACILITY), RELAIS_CONV_WAITLISTED);

    /* The first patient goes home: the bed goes to the waiting request, a new decision. */
    pjob_t cancel = {.body = B(PREADMISSION_CANCEL),
                     .to = {ADDR_FACILITY},
                     .nto = 1,
                     .request_id = "pre-1",
                     .conv = first.id};
    cr_assert_eq(run_job(r, &cancel, do_pjob), 0, "%s", cancel.refusal);
    AWAIT(r, seen.n_decisions == 3);
    cr_expect_str_eq(seen.decisions[2].request_id, "pre-2");
    cr_expect_eq(seen.decisions[2].decision, DECISION(ACCEPTED));
    cr_expect_gt(seen.decisions[2].admission_date_ms, 0);
    cr_expect_eq(conversation(r, first.id)->state, RELAIS_CONV_CANCELLED);
    s = conversation(r, second.id);
    cr_expect_eq(s->state, RELAIS_CONV_ACCEPTED);
    cr_expect_eq(part_of(s, ADDR_FACILITY), RELAIS_CONV_ACCEPTED);

    AWAIT(f, ev->accepted == 3); /* delivery may overtake the broker's Accepted */
    stop_role(f);
    cr_expect_eq(f->stats.requests, 2);
    cr_expect_eq(f->stats.accepted, 2);
    cr_expect_eq(f->stats.waitlisted, 1);
    cr_expect_eq(f->stats.cancelled, 1);
    cr_expect_eq(f->stats.beds_used, 1);
    cr_expect_eq(f->stats.waiting, 0);
}

Test(facility, no_bed_or_no_acceptance_without_a_waiting_list_is_a_refusal)
{
    /* Two candidates of one request: one without beds, one that takes nobody. */
    relais_ref_facility_config_t full = facility_config(0, 1.0, 0.0);
    relais_ref_facility_config_t picky = facility_config(5, 0.0, 0.0);
    ragent_t *f1 = start_role(&roles[0], ADDR_FACILITY, &full, NULL);
    ragent_t *f2 = start_role(&roles[1], ADDR_HOSPITAL, &picky, NULL);
    tagent_t *r = start_requester();

    pjob_t req = {.body = B(PREADMISSION_REQUEST),
                  .to = {ADDR_FACILITY, ADDR_HOSPITAL},
                  .nto = 2,
                  .request_id = "pre-1",
                  .kind = SMR};
    cr_assert_eq(run_job(r, &req, do_pjob), 0, "%s", req.refusal);
    AWAIT(r, seen.n_decisions == 2);
    for (int i = 0; i < 2; i++) cr_expect_eq(seen.decisions[i].decision, DECISION(REFUSED));
    bool no_bed = strcmp(seen.decisions[0].reason, "no bed free") == 0 ||
                  strcmp(seen.decisions[1].reason, "no bed free") == 0;
    bool criteria = strcmp(seen.decisions[0].reason, "admission criteria not met") == 0 ||
                    strcmp(seen.decisions[1].reason, "admission criteria not met") == 0;
    cr_expect(no_bed && criteria, "reasons: '%s', '%s'", seen.decisions[0].reason,
              seen.decisions[1].reason);
    const snap_t *s = conversation(r, req.id);
    cr_expect_eq(s->state, RELAIS_CONV_REFUSED, "every candidate refused: closed");
    cr_expect_eq(part_of(s, ADDR_FACILITY), RELAIS_CONV_REFUSED);
    cr_expect_eq(part_of(s, ADDR_HOSPITAL), RELAIS_CONV_REFUSED);

    /* A request for another kind of facility is refused whatever the rates. */
    pjob_t ehpad = {.body = B(PREADMISSION_REQUEST),
                    .to = {ADDR_FACILITY},
                    .nto = 1,
                    .request_id = "pre-2",
                    .kind = RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__EHPAD};
    cr_assert_eq(run_job(r, &ehpad, do_pjob), 0, "%s", ehpad.refusal);
    AWAIT(r, seen.n_decisions == 3);
    cr_expect_eq(seen.decisions[2].decision, DECISION(REFUSED));
    cr_expect(strstr(seen.decisions[2].reason, "takes SMR admissions, not EHPAD") != NULL, "%s",
              seen.decisions[2].reason);

    AWAIT(f1, ev->accepted == 2);
    AWAIT(f2, ev->accepted == 1);
    stop_role(f1);
    stop_role(f2);
    cr_expect_eq(f1->stats.requests, 2);
    cr_expect_eq(f1->stats.refused, 2);
    cr_expect_eq(f2->stats.refused, 1);
    cr_expect_eq(f1->stats.beds_used + f2->stats.beds_used, 0);
}

/* ---- The hospital -------------------------------------------------------------------------- */

typedef struct hjob {
    ragent_t *h;
    const char *programme;
    int64_t at;
    int rc;
    bool done;
} hjob_t;

static void do_discharge(relais_agent_t *agent, void *ud)
{
    hjob_t *j = ud;
    Relais__V1__PatientRef patient = RELAIS__V1__PATIENT_REF__INIT;
    patient.local_id = "pat-9";
    const char *team[1] = {ADDR_GP};
    const relais_ref_programme_t *prog =
        relais_ref_hospital_programme(j->h->hospital, j->programme);
    j->rc = prog == NULL ? -ENOENT
                         : relais_ref_hospital_discharge(j->h->hospital, ADDR_REQUESTER, prog,
                                                         &patient, "enc-hf-1", team, 1, j->at);
    RECORD(j->h, j->done = true);
}

Test(facility, a_hospital_discharge_carries_its_programme_windows_and_it_admits_too)
{
    /* One agent, both roles: discharges and preadmissions. */
    relais_ref_hospital_config_t hcfg = {0};
    relais_ref_facility_config_t fcfg = facility_config(3, 1.0, 0.0);
    ragent_t *h = start_role(&roles[0], ADDR_HOSPITAL, &fcfg, &hcfg);
    tagent_t *a = start_requester();

    hjob_t job = {.h = h, .programme = "heart-failure", .at = relais_now_ms() - 2 * HOUR};
    cr_assert_eq(relais_agent_post(h->agent, do_discharge, &job), 0);
    AWAIT(h, job.done);
    cr_assert_eq(job.rc, 0, "%s", relais_strerror(job.rc));
    AWAIT(a, ev->got[B(DISCHARGE_NOTIFICATION)] == 1);
    cr_expect_str_eq(seen.programme, "heart-failure");
    cr_expect_str_eq(seen.facility, ADDR_HOSPITAL);
    cr_expect_str_eq(seen.encounter, "enc-hf-1");
    cr_expect_eq(seen.disposition, RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME);
    cr_assert_eq(seen.n_items, 3);
    static const struct {
        const char *id, *role, *specialty;
        int64_t within;
    } want[] = {
        {"fu-nurse", "nurse", "", 2 * DAY},
        {"fu-gp", "gp", "", 7 * DAY},
        {"fu-cardiology", "specialist", "cardiology", 60 * DAY},
    };
    for (size_t i = 0; i < 3; i++) {
        cr_expect_str_eq(seen.item_id[i], want[i].id);
        cr_expect_str_eq(seen.role[i], want[i].role);
        cr_expect_str_eq(seen.specialty[i], want[i].specialty);
        cr_expect_eq(seen.not_before[i], job.at, "%s", want[i].id);
        cr_expect_eq(seen.due_by[i], job.at + want[i].within, "%s", want[i].id);
    }
    query(a);
    cr_assert_eq(a->ev.nsnap, 1);
    cr_expect_eq(a->ev.snap[0].kind, RELAIS_CONV_DISCHARGE);
    cr_expect_eq(a->ev.snap[0].nparts, 3);
    cr_expect_eq(part_of(&a->ev.snap[0], "fu-cardiology"), RELAIS_CONV_PENDING);

    /* The same agent answers a preadmission as a facility. */
    pjob_t req = {.body = B(PREADMISSION_REQUEST),
                  .to = {ADDR_HOSPITAL},
                  .nto = 1,
                  .request_id = "pre-1",
                  .kind = SMR};
    cr_assert_eq(run_job(a, &req, do_pjob), 0, "%s", req.refusal);
    AWAIT(a, seen.n_decisions == 1);
    cr_expect_eq(seen.decisions[0].decision, DECISION(ACCEPTED));
    AWAIT(h, ev->accepted >= 2); /* the broker took the notification and the decision */

    hjob_t unknown = {.h = h, .programme = "diabetes", .at = job.at};
    cr_assert_eq(relais_agent_post(h->agent, do_discharge, &unknown), 0);
    AWAIT(h, unknown.done);
    cr_expect_eq(unknown.rc, -ENOENT, "no such programme in the built-in table");
}
