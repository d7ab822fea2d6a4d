/*
 * relais-sim: a whole CPTS territory in one command.
 *
 * It starts a real relaisd (CurveZMQ, a territory directory generated for the run) and,
 * in this process, one reference agent per member — each with its own libuv loop, thread,
 * DEALER socket, CURVE keys and state file on disk: GPs and their practices' medical
 * assistants, nurses, physiotherapists, specialists, hospitals, preadmission facilities
 * and the CPTS coordinator. Business time is compressed (RELAIS_SIM_CLOCK, shared with
 * the broker it spawns): four simulated weeks take about a minute, while heartbeats, ack
 * timeouts and retries keep their real timings.
 *
 * Over the simulated weeks, hospitals discharge patients with programme follow-up plans
 * (heart failure, COPD) that the assistants turn into care tasks and appointments; the
 * practices refer patients to specialists and to the physiotherapists' pool (OFFER), and
 * ask facilities for preadmissions. Some professionals never answer (deadlines, reminders,
 * escalations and the coordinator's reassignments follow), some go offline for hours and
 * come back with their state file. At the end every professional comes back, the run
 * drains, and the report says what happened to every request and checks that every
 * message the broker accepted was handled or reported back to its sender (lost = 0), that
 * no request was re-dispatched or escalated past its bounds, and that every due request
 * was acted on by its deadline; the exit status is 1 when one of these fails.
 *
 * Everything random is drawn from --seed, so a run can be replayed.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "demo_broker.h"
#include "refagents.h"
#include "relais/log.h"
#include "sim_options.h"
#include "sim_stats.h"

#define TERRITORY "sim"
#define HOUR_MS (3600 * 1000LL)
#define DAY_MS (24 * HOUR_MS)
#define WEEK_MS (7 * DAY_MS)
/* The longest route of a practice (two nurses then the nurses' pool; three cardiologists):
 * a request goes to each of its candidates at most once, the coordinator's one
 * reassignment included, so it is re-dispatched at most this many times. */
#define SIM_MAX_CANDIDATES 3

/* ---- Options --------------------------------------------------------------------------- */

/* ---- Randomness -------------------------------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull); /* splitmix64 */
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static double rng_unit(void)
{
    return (double)(rng_next() >> 11) / (double)(1ull << 53);
}

static uint64_t rng_below(uint64_t n)
{
    return n ? rng_next() % n : 0;
}

/* ---- Members ------------------------------------------------------------------------------- */

typedef enum member_kind {
    M_GP,
    M_NURSE,
    M_PHYSIO,
    M_SPECIALIST,
    M_ASSISTANT,
    M_HOSPITAL,
    M_FACILITY,
    M_COORDINATOR,
} member_kind_t;

typedef struct sim sim_t;

typedef struct member {
    sim_t *sim;
    member_kind_t kind;
    char address[RELAIS_ADDRESS_MAX];
    const char *specialty; /* specialists */
    unsigned practice;     /* GPs and assistants */
    char pub[41], sec[41];
    char state_path[PATH_MAX + 64];
    bool silent;
    relais_agent_t *agent;
    pthread_t thread;
    bool thread_running;
    bool ready;
    relais_ref_provider_t *provider;
    relais_ref_assistant_t *assistant;
    relais_ref_hospital_t *hospital;
    relais_ref_facility_t *facility;
    relais_ref_coordinator_t *coordinator;
    /* Assistants: their routes, kept alive as long as the role (it copies them anyway). */
    const char *gps[8];
    /* What it was to do while offline (a desk away: the work waits for it). */
    struct action **waiting;
    size_t n_waiting;
    int64_t tick_due; /* assistants: when the lag probe should fire (monotonic ms) */
} member_t;

struct sim {
    sim_options_t opt;
    member_t *m;
    size_t n;
    size_t first[M_COORDINATOR + 1], count[M_COORDINATOR + 1]; /* ranges by kind */
    demo_broker_t broker;
    char directory_path[PATH_MAX + 32];
    char broker_key_path[PATH_MAX + 32];
    sim_stats_t *stats;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned ready;
    const relais_ref_programmes_t *programmes;
    int64_t origin_ms; /* business time at the start of the scenario */
    unsigned offline_periods, silent;
    const char *relaisd;
    double loop_lag_max_ms; /* the assistants' loops: how late a timer fired, at most */
    unsigned broker_restarts;
    double restart_real_ms; /* how long the last restart took (real time) */
};

static member_t *of_kind(sim_t *s, member_kind_t k, size_t i)
{
    return &s->m[s->first[k] + i];
}

static const char *kind_role(member_kind_t k)
{
    static const char *const roles[] = {
        "gp",       "nurse",    "physiotherapist", "specialist", "medical_assistant",
        "hospital", "facility", "coordinator"};
    return roles[k];
}

/* Lays out the territory's members and their addresses. */
static int make_members(sim_t *s)
{
    const sim_options_t *o = &s->opt;
    size_t counts[] = {
        [M_GP] = (size_t)o->practices * o->gps_per_practice,
        [M_NURSE] = o->nurses,
        [M_PHYSIO] = o->physios,
        [M_SPECIALIST] = (size_t)o->cardiologists + o->pneumologists,
        [M_ASSISTANT] = o->practices,
        [M_HOSPITAL] = o->hospitals,
        [M_FACILITY] = o->facilities,
        [M_COORDINATOR] = 1,
    };
    s->n = 0;
    for (int k = 0; k <= M_COORDINATOR; k++) {
        s->first[k] = s->n;
        s->count[k] = counts[k];
        s->n += counts[k];
    }
    s->m = calloc(s->n, sizeof *s->m);
    if (s->m == NULL) return -ENOMEM;
    unsigned rpps = 0;
    for (int k = 0; k <= M_COORDINATOR; k++) {
        for (size_t i = 0; i < s->count[k]; i++) {
            member_t *m = of_kind(s, (member_kind_t)k, i);
            m->sim = s;
            m->kind = (member_kind_t)k;
            switch (m->kind) {
            case M_GP:
            case M_NURSE:
            case M_PHYSIO:
            case M_SPECIALIST:
                snprintf(m->address, sizeof m->address, "rpps:1%010u", ++rpps);
                break;
            case M_ASSISTANT:
                snprintf(m->address, sizeof m->address, "staff:assistant@cabinet-%02zu", i + 1);
                break;
            case M_HOSPITAL:
                snprintf(m->address, sizeof m->address, "finess:35%07zu", 100 + i);
                break;
            case M_FACILITY:
                snprintf(m->address, sizeof m->address, "finess:35%07zu", 500 + i);
                break;
            case M_COORDINATOR:
                snprintf(m->address, sizeof m->address, "staff:coordination@%s", TERRITORY);
                break;
            }
            if (m->kind == M_GP) m->practice = (unsigned)(i / o->gps_per_practice);
            if (m->kind == M_ASSISTANT) m->practice = (unsigned)i;
            if (m->kind == M_SPECIALIST)
                m->specialty = i < o->cardiologists ? "cardiology" : "pneumology";
            if (zmq_curve_keypair(m->pub, m->sec) != 0) return RELAIS_ECONFIG;
        }
    }
    /* Professionals who never answer: specialists, the ones a reassignment rescues. */
    for (size_t i = 0; i < s->count[M_SPECIALIST]; i++) {
        if (rng_unit() < o->silent_share) {
            of_kind(s, M_SPECIALIST, i)->silent = true;
            s->silent++;
        }
    }
    return 0;
}

/* Writes the directory (production: false, as a simulated clock requires) and the
 * broker's key file. */
static int write_territory(sim_t *s, char *err, size_t errlen)
{
    char pub[41], sec[41];
    if (zmq_curve_keypair(pub, sec) != 0) {
        snprintf(err, errlen, "cannot generate CURVE keys");
        return -1;
    }
    snprintf(s->broker_key_path, sizeof s->broker_key_path, "%s/relaisd.key", s->broker.data_dir);
    FILE *f = fopen(s->broker_key_path, "wx");
    if (f == NULL || fchmod(fileno(f), 0600) != 0) {
        snprintf(err, errlen, "cannot write %.300s: %s", s->broker_key_path, strerror(errno));
        if (f) fclose(f);
        return -1;
    }
    fprintf(f, "public-key: %s\nsecret-key: %s\n", pub, sec);
    fclose(f);
    explicit_bzero(sec, sizeof sec);

    snprintf(s->directory_path, sizeof s->directory_path, "%s/territory.yaml", s->broker.data_dir);
    f = fopen(s->directory_path, "wx");
    if (f == NULL) {
        snprintf(err, errlen, "cannot write %.300s: %s", s->directory_path, strerror(errno));
        return -1;
    }
    fprintf(f,
            "# Generated by relais-sim for one run.\nterritory: %s\nproduction: false\n"
            "limits:\n  submissions_per_second: 1000\nagents:\n",
            TERRITORY);
    for (size_t i = 0; i < s->n; i++) {
        const member_t *m = &s->m[i];
        fprintf(f, "  - address: \"%s\"\n    role: %s\n    public_key: \"%s\"\n", m->address,
                kind_role(m->kind), m->pub);
        if (m->specialty) fprintf(f, "    specialty: %s\n", m->specialty);
        if (m->kind == M_NURSE) fprintf(f, "    pools: [\"service:nurse@%s\"]\n", TERRITORY);
        if (m->kind == M_PHYSIO)
            fprintf(f, "    pools: [\"service:physiotherapist@%s\"]\n", TERRITORY);
        if (m->kind == M_SPECIALIST)
            fprintf(f, "    pools: [\"service:specialist/%s@%s\"]\n", m->specialty, TERRITORY);
        if (m->kind == M_ASSISTANT) {
            fprintf(f, "    acts_for: [");
            for (unsigned g = 0; g < s->opt.gps_per_practice; g++) {
                fprintf(f, "%s\"%s\"", g ? ", " : "",
                        of_kind(s, M_GP, m->practice * s->opt.gps_per_practice + g)->address);
            }
            fprintf(f, "]\n");
        }
    }
    bool bad = ferror(f) != 0;
    if (fclose(f) != 0 || bad) {
        snprintf(err, errlen, "cannot write %.300s", s->directory_path);
        return -1;
    }
    return 0;
}

/* ---- Agents ---------------------------------------------------------------------------------- */

static void on_event(const relais_ref_event_t *ev, void *ud)
{
    member_t *m = ud;
    sim_stats_event(m->sim->stats, m->address, ev);
}

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    member_t *m = ud;
    if (state != RELAIS_AGENT_READY || m->ready) return;
    pthread_mutex_lock(&m->sim->mu);
    m->ready = true;
    m->sim->ready++;
    pthread_cond_broadcast(&m->sim->cv);
    pthread_mutex_unlock(&m->sim->mu);
}

static void on_submitted(relais_agent_t *agent, const relais_send_result_t *res, void *ud)
{
    member_t *m = ud;
    if (res->status == 0 && res->message_id != NULL)
        sim_stats_submitted(m->sim->stats, m->address, res->message_id);
}

static void on_acked(relais_agent_t *agent, const Relais__V1__Envelope *env,
                     relais_outcome_t outcome, const char *reason, void *ud)
{
    member_t *m = ud;
    if (env->message_id.len == RELAIS_MESSAGE_ID_LEN)
        sim_stats_acked(m->sim->stats, env->message_id.data, outcome != RELAIS_RETRY_LATER);
}

/* A deadline is acted on when its assistant's loop runs: a 50 ms timer on each assistant
 * measures how late that loop is, the honest tolerance for a deadline. */
#define LAG_PROBE_MS 50

static void on_lag_tick(relais_agent_t *agent, void *ud)
{
    member_t *m = ud;
    int64_t now = relais_mono_ms();
    double late = m->tick_due ? (double)(now - m->tick_due) : 0;
    pthread_mutex_lock(&m->sim->mu);
    if (late > m->sim->loop_lag_max_ms) m->sim->loop_lag_max_ms = late;
    pthread_mutex_unlock(&m->sim->mu);
    m->tick_due = now + LAG_PROBE_MS;
    relais_agent_timer(agent, LAG_PROBE_MS, on_lag_tick, m, NULL);
}

static void start_lag_probe(relais_agent_t *agent, void *ud)
{
    member_t *m = ud;
    m->tick_due = 0;
    on_lag_tick(agent, m);
}

static int new_agent(member_t *m)
{
    relais_agent_options_t ao = {
        .endpoint = m->sim->broker.endpoint,
        .address = m->address,
        .state_path = m->state_path,
        .curve_server_key = m->sim->broker.server_key,
        .curve_public_key = m->pub,
        .curve_secret_key = m->sec,
    };
    int rc = relais_agent_new(&m->agent, &ao);
    if (rc == 0) {
        relais_agent_on_state(m->agent, on_state, m);
        relais_agent_on_acked(m->agent, on_acked, m);
        relais_agent_on_submitted(m->agent, on_submitted, m);
    }
    return rc;
}

/* The providers' working week: 08:00–12:00 and 14:00–18:00, Monday to Friday, over the
 * whole simulation and a little after it. */
static int make_provider(member_t *m)
{
    sim_t *s = m->sim;
    relais_ref_provider_config_t pc = {
        .role = kind_role(m->kind),
        .specialty = m->specialty,
        .slot_minutes = m->kind == M_NURSE ? 30
                        : m->kind == M_GP  ? 20
                                           : 30,
        .first_slot_ms = s->origin_ms,
        .hours = "08:00-12:00,14:00-18:00",
        .horizon_days = s->opt.weeks * 7 + 70,
        .capacity = 1,
        .home_visits = m->kind == M_NURSE,
        .hold_ms = 2 * HOUR_MS,
        .max_offer = 3,
        .silent = m->silent,
        .decline_rate = s->opt.decline_rate,
        .no_show_rate = s->opt.no_show_rate,
        .seed = s->opt.seed * 1000003u + (uint64_t)(m - s->m),
        .report_outcomes = true,
        .answer_median_ms = s->opt.answer_sigma > 0 ? (int64_t)(s->opt.answer_median_h * HOUR_MS) : 0,
        .answer_sigma = s->opt.answer_sigma,
        .decline_by_load = true,
        .on_event = on_event,
        .event_ud = m,
    };
    return relais_ref_provider_new(&m->provider, m->agent, &pc);
}

static int make_assistant(member_t *m)
{
    sim_t *s = m->sim;
    unsigned p = m->practice;
    size_t ngp = s->opt.gps_per_practice < 8 ? s->opt.gps_per_practice : 8;
    for (size_t g = 0; g < ngp; g++) m->gps[g] = of_kind(s, M_GP, p * ngp + g)->address;
    /* Each practice works with two nurses, two physiotherapists and two specialists of
     * each specialty near it (the next ones on the list for the next practice), then the
     * role's pool. */
    const char *nurses[3] = {of_kind(s, M_NURSE, (2 * p) % s->count[M_NURSE])->address,
                             of_kind(s, M_NURSE, (2 * p + 1) % s->count[M_NURSE])->address,
                             "service:nurse@" TERRITORY};
    const char *physios[2] = {of_kind(s, M_PHYSIO, p % s->count[M_PHYSIO])->address,
                              of_kind(s, M_PHYSIO, (p + 7) % s->count[M_PHYSIO])->address};
    unsigned nc = s->opt.cardiologists, np = s->opt.pneumologists;
    const char *cardio[3] = {of_kind(s, M_SPECIALIST, p % nc)->address,
                             of_kind(s, M_SPECIALIST, (p + 1) % nc)->address,
                             of_kind(s, M_SPECIALIST, (p + 2) % nc)->address};
    const char *pneumo[2] = {of_kind(s, M_SPECIALIST, nc + p % np)->address,
                             of_kind(s, M_SPECIALIST, nc + (p + 1) % np)->address};
    const char *gp[1] = {"@gp"};
    relais_ref_route_t routes[] = {
        {.role = "nurse", .candidates = nurses, .n_candidates = 3, .offer = true},
        {.role = "physiotherapist", .candidates = physios, .n_candidates = 2},
        {.role = "specialist", .specialty = "cardiology", .candidates = cardio, .n_candidates = 3},
        {.role = "specialist", .specialty = "pneumology", .candidates = pneumo, .n_candidates = 2},
        {.role = "gp", .candidates = gp, .n_candidates = 1},
    };
    relais_conv_options_t tracking = {
        .coordinator = of_kind(s, M_COORDINATOR, 0)->address,
        .reminder_fraction = 0.5,
        .answer_ms = 48 * HOUR_MS,
        .book_ms = 24 * HOUR_MS,
        .confirm_ms = 24 * HOUR_MS,
        .outcome_ms = 72 * HOUR_MS,
        .choice_ms = 48 * HOUR_MS,
        .follow_up_ms = 7 * DAY_MS,
    };
    relais_ref_assistant_config_t ac = {
        .gps = m->gps,
        .n_gps = ngp,
        .routes = routes,
        .n_routes = sizeof routes / sizeof routes[0],
        .booking = RELAIS_REF_BOOK_EARLIEST,
        .rebook_no_show = 1,
        .tracking = &tracking,
        .on_event = on_event,
        .event_ud = m,
    };
    return relais_ref_assistant_new(&m->assistant, m->agent, &ac);
}

static int make_coordinator(member_t *m)
{
    sim_t *s = m->sim;
    /* Reassignment within the responsible's group of interchangeable professionals: the
     * cardiologists, and the pneumologists. The coordinator does not know who is away: a
     * reassignment may land on another silent one, whose miss is escalated again. */
    size_t nsp = s->count[M_SPECIALIST];
    const char **cardio = calloc(nsp + 1, sizeof *cardio);
    const char **pneumo = calloc(nsp + 1, sizeof *pneumo);
    int rc = -ENOMEM;
    if (cardio != NULL && pneumo != NULL) {
        size_t nc = 0, np = 0;
        for (size_t i = 0; i < nsp; i++) {
            const member_t *sp = of_kind(s, M_SPECIALIST, i);
            if (strcmp(sp->specialty, "cardiology") == 0) {
                cardio[nc++] = sp->address;
            } else {
                pneumo[np++] = sp->address;
            }
        }
        relais_ref_coordinator_group_t groups[2] = {{.members = cardio, .n_members = nc},
                                                    {.members = pneumo, .n_members = np}};
        relais_ref_coordinator_config_t cc = {
            .groups = groups, .n_groups = 2, .on_event = on_event, .event_ud = m};
        rc = relais_ref_coordinator_new(&m->coordinator, m->agent, &cc);
    }
    free(cardio);
    free(pneumo);
    return rc;
}

static int make_role(member_t *m)
{
    switch (m->kind) {
    case M_GP:
    case M_NURSE:
    case M_PHYSIO:
    case M_SPECIALIST:
        return make_provider(m);
    case M_ASSISTANT:
        return make_assistant(m);
    case M_HOSPITAL: {
        relais_ref_hospital_config_t hc = {
            .programmes = m->sim->programmes, .on_event = on_event, .event_ud = m};
        return relais_ref_hospital_new(&m->hospital, m->agent, &hc);
    }
    case M_FACILITY: {
        relais_ref_facility_config_t fc = {
            .kind = RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR,
            .capacity = 40,
            .accept_rate = 0.5,
            .waitlist_rate = 0.3,
            .seed = m->sim->opt.seed * 7919u + (uint64_t)(m - m->sim->m),
            .decision_delay_ms = 6 * HOUR_MS,
            .on_event = on_event,
            .event_ud = m,
        };
        return relais_ref_facility_new(&m->facility, m->agent, &fc);
    }
    case M_COORDINATOR:
        return make_coordinator(m);
    }
    return RELAIS_ECONFIG;
}

static void *run_thread(void *arg)
{
    member_t *m = arg;
    int rc = relais_agent_run(m->agent);
    if (rc != 0)
        RLOG(RELAIS_LOG_ERROR, "sim", "agent=%s stopped with %s", m->address, relais_strerror(rc));
    return NULL;
}

static int start_thread(member_t *m)
{
    if (m->kind == M_ASSISTANT) relais_agent_post(m->agent, start_lag_probe, m);
    if (pthread_create(&m->thread, NULL, run_thread, m) != 0) return -errno;
    m->thread_running = true;
    return 0;
}

static void join_thread(member_t *m)
{
    if (!m->thread_running) return;
    relais_agent_stop(m->agent);
    pthread_join(m->thread, NULL);
    m->thread_running = false;
}

/* Waits until `want` agents were READY at least once, or timeout_ms. */
static bool wait_ready(sim_t *s, unsigned want, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->ready < want && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&s->cv, &s->mu, &until);
    bool ok = s->ready >= want;
    pthread_mutex_unlock(&s->mu);
    return ok;
}

/* ---- The scenario ---------------------------------------------------------------------------- */

typedef enum action_kind {
    A_DISCHARGE,
    A_REFERRAL,
    A_PREADMISSION,
    A_OFFLINE,
    A_ONLINE,
    A_BROKER_KILL
} action_kind_t;

typedef struct action action_t;
static relais_agent_fn action_fn(const action_t *a);

struct action {
    int64_t at_ms; /* business time */
    action_kind_t kind;
    member_t *who;   /* the acting member (hospital, assistant) or the one going offline */
    member_t *about; /* discharge and referral: the practice's assistant / GP */
    unsigned n;      /* a running number for identifiers */
    int variant;     /* programme, specialty… */
};

static int cmp_action(const void *a, const void *b)
{
    const action_t *x = a, *y = b;
    return (x->at_ms > y->at_ms) - (x->at_ms < y->at_ms);
}

/* A working-hours time on a random day of the simulation. */
static int64_t random_time(const sim_t *s, int64_t from_ms, int64_t span_ms)
{
    int64_t t = from_ms + (int64_t)rng_below((uint64_t)span_ms);
    int64_t day = t - t % DAY_MS;
    return day + 8 * HOUR_MS + (int64_t)rng_below(10 * HOUR_MS);
}

static action_t *plan(sim_t *s, size_t *n_out)
{
    const sim_options_t *o = &s->opt;
    size_t per_practice = (size_t)(o->discharges + o->referrals + o->preadmissions) * o->weeks;
    size_t cap = per_practice * o->practices + 2 * s->n + 2 * (M_COORDINATOR + 1) + 1;
    action_t *a = calloc(cap + 1, sizeof *a);
    if (a == NULL) return NULL;
    size_t n = 0;
    int64_t span = (int64_t)o->weeks * WEEK_MS;
    unsigned serial = 0;
    for (unsigned p = 0; p < o->practices; p++) {
        member_t *assistant = of_kind(s, M_ASSISTANT, p);
        for (unsigned w = 0; w < o->weeks; w++) {
            int64_t week = s->origin_ms + (int64_t)w * WEEK_MS;
            for (unsigned i = 0; i < o->discharges; i++)
                a[n++] = (action_t){random_time(s, week, WEEK_MS),
                                    A_DISCHARGE,
                                    of_kind(s, M_HOSPITAL, rng_below(s->count[M_HOSPITAL])),
                                    assistant,
                                    ++serial,
                                    (int)rng_below(2)};
            for (unsigned i = 0; i < o->referrals; i++)
                a[n++] = (action_t){random_time(s, week, WEEK_MS),
                                    A_REFERRAL,
                                    assistant,
                                    NULL,
                                    ++serial,
                                    (int)rng_below(3)};
            for (unsigned i = 0; i < o->preadmissions; i++)
                a[n++] = (action_t){
                    random_time(s, week, WEEK_MS), A_PREADMISSION, assistant, NULL, ++serial, 0};
        }
    }
    /* Offline periods: 2 to 12 simulated hours, in the first three quarters of the run,
     * for any member, and at least one member of each role, the coordinator included. */
    for (int k = 0; k <= M_COORDINATOR; k++) {
        if (s->count[k] == 0) continue;
        size_t forced = rng_below(s->count[k]);
        for (size_t i = 0; i < s->count[k]; i++) {
            if (i != forced && rng_unit() >= o->offline_share) continue;
            member_t *m = of_kind(s, (member_kind_t)k, i);
            int64_t off = random_time(s, s->origin_ms, span * 3 / 4);
            int64_t on = off + 2 * HOUR_MS + (int64_t)rng_below(10 * HOUR_MS);
            a[n++] = (action_t){off, A_OFFLINE, m, NULL, 0, 0};
            a[n++] = (action_t){on, A_ONLINE, m, NULL, 0, 0};
            s->offline_periods++;
        }
    }
    if (o->kill_at > 0)
        a[n++] = (action_t){s->origin_ms + (int64_t)((double)span * o->kill_at), A_BROKER_KILL,
                            NULL, NULL, 0, 0};
    qsort(a, n, sizeof *a, cmp_action);
    *n_out = n;
    return a;
}

/* Runs on the acting agent's loop thread. */
static void do_discharge(relais_agent_t *agent, void *ud)
{
    action_t *a = ud;
    sim_t *s = a->who->sim;
    member_t *assistant = a->about;
    const char *gp = assistant->gps[rng_below(s->opt.gps_per_practice)];
    const char *names[] = {"heart-failure", "copd"};
    const relais_ref_programme_t *prog =
        relais_ref_programme_find(s->programmes, names[a->variant]);
    char local[32], enc[RELAIS_REF_ID_MAX];
    snprintf(local, sizeof local, "SIM-%06u", a->n);
    snprintf(enc, sizeof enc, "enc-%06u", a->n);
    Relais__V1__PatientRef patient;
    char *given[1];
    relais_ref_sample_patient(&patient, given, local);
    const char *team[1] = {gp};
    int rc = relais_ref_hospital_discharge(a->who->hospital, assistant->address, prog, &patient,
                                           enc, team, 1, relais_now_ms());
    if (rc != 0)
        RLOG(RELAIS_LOG_WARN, "sim", "discharge %s not sent: %s", enc, relais_strerror(rc));
    free(a);
}

static void do_referral(relais_agent_t *agent, void *ud)
{
    action_t *a = ud;
    sim_t *s = a->who->sim;
    member_t *m = a->who;
    char local[32], rid[RELAIS_REF_ID_MAX];
    snprintf(local, sizeof local, "SIM-%06u", a->n);
    snprintf(rid, sizeof rid, "ref-%06u", a->n);
    Relais__V1__PatientRef patient;
    char *given[1];
    relais_ref_sample_patient(&patient, given, local);
    Relais__V1__TimeWindow window = RELAIS__V1__TIME_WINDOW__INIT;
    int64_t now = relais_now_ms();
    window.not_before_ms = now;
    Relais__V1__AppointmentRequest req = RELAIS__V1__APPOINTMENT_REQUEST__INIT;
    req.request_id = rid;
    req.patient = &patient;
    req.urgency = RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__ROUTINE;
    req.window = &window;
    const char *gp = m->gps[rng_below(s->opt.gps_per_practice)];
    int rc;
    if (a->variant == 0) {
        /* The physiotherapists' pool, in OFFER dispatch: the first to claim takes it. */
        char pool[RELAIS_ADDRESS_MAX];
        snprintf(pool, sizeof pool, "service:physiotherapist@%s", TERRITORY);
        req.requested_role = "physiotherapist";
        req.reason = "Rééducation";
        window.due_by_ms = now + 21 * DAY_MS;
        rc = relais_ref_assistant_request_pool(m->assistant, pool, gp, &req);
    } else {
        /* The practice's own correspondents, by its routes: the usual cardiologist or
         * pneumologist first, the next ones if declined or silent. */
        bool cardio = a->variant == 1;
        req.requested_role = "specialist";
        req.specialty = cardio ? "cardiology" : "pneumology";
        req.reason = "Avis spécialisé";
        window.due_by_ms = now + 60 * DAY_MS;
        rc = relais_ref_assistant_refer(m->assistant, gp, &req);
    }
    if (rc != 0) RLOG(RELAIS_LOG_WARN, "sim", "referral %s not sent: %s", rid, relais_strerror(rc));
    free(a);
}

static void do_preadmission(relais_agent_t *agent, void *ud)
{
    action_t *a = ud;
    sim_t *s = a->who->sim;
    char local[32], rid[RELAIS_REF_ID_MAX];
    snprintf(local, sizeof local, "SIM-%06u", a->n);
    snprintf(rid, sizeof rid, "pre-%06u", a->n);
    Relais__V1__PatientRef patient;
    char *given[1];
    relais_ref_sample_patient(&patient, given, local);
    Relais__V1__PreadmissionRequest req = RELAIS__V1__PREADMISSION_REQUEST__INIT;
    req.request_id = rid;
    req.patient = &patient;
    req.facility_kind = RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR;
    req.expected_date_ms = relais_now_ms() + 10 * DAY_MS;
    req.reason = "Rééducation après hospitalisation";
    const char *fac[8];
    size_t nf = s->count[M_FACILITY] < 8 ? s->count[M_FACILITY] : 8;
    for (size_t i = 0; i < nf; i++) fac[i] = of_kind(s, M_FACILITY, i)->address;
    int rc = relais_ref_assistant_preadmit(a->who->assistant, fac, nf, NULL, &req);
    if (rc != 0)
        RLOG(RELAIS_LOG_WARN, "sim", "preadmission %s not sent: %s", rid, relais_strerror(rc));
    free(a);
}

/* Takes a member offline: its agent stops (its state file keeps what it owes, its role's
 * object keeps its memory: calendar, requests, reassignment history). */
static void go_offline(member_t *m)
{
    if (!m->thread_running) return;
    sim_stats_offline(m->sim->stats, m->address, relais_now_ms(), 0);
    join_thread(m);
    relais_agent_destroy(&m->agent);
}

static void mark_back(relais_agent_t *agent, void *ud)
{
    member_t *m = ud;
    sim_stats_offline(m->sim->stats, m->address, 0, relais_now_ms());
}

/* Brings it back: a new agent on the same state file, the same role rebound to it. */
static int go_online(member_t *m)
{
    if (m->thread_running) return 0;
    int rc = new_agent(m);
    if (rc == 0) {
        switch (m->kind) {
        case M_ASSISTANT:
            rc = relais_ref_assistant_rebind(m->assistant, m->agent);
            break;
        case M_HOSPITAL:
            rc = relais_ref_hospital_rebind(m->hospital, m->agent);
            break;
        case M_COORDINATOR:
            rc = relais_ref_coordinator_rebind(m->coordinator, m->agent);
            break;
        case M_FACILITY:
            rc = relais_ref_facility_rebind(m->facility, m->agent);
            break;
        default:
            rc = relais_ref_provider_rebind(m->provider, m->agent);
            break;
        }
    }
    /* Back when its loop turns again, not when its thread is created: a restart on a busy
     * machine takes a few hundred milliseconds, hours of business time. */
    if (rc == 0) relais_agent_post(m->agent, mark_back, m);
    if (rc == 0) rc = start_thread(m);
    /* The work that waited for it. */
    for (size_t i = 0; rc == 0 && i < m->n_waiting; i++) {
        if (relais_agent_post(m->agent, action_fn(m->waiting[i]), m->waiting[i]) != 0)
            free(m->waiting[i]);
    }
    if (rc == 0) m->n_waiting = 0;
    return rc;
}

/* relaisd crashes (SIGKILL) and comes back on the same endpoint and data: the agents
 * reconnect by themselves and resend what it had not acknowledged. */
static int restart_broker(sim_t *s)
{
    char err[512];
    int64_t t0 = relais_mono_ms();
    demo_broker_kill(&s->broker);
    if (demo_broker_start(&s->broker, s->relaisd, s->directory_path, s->broker_key_path, 30000,
                          err, sizeof err) != 0) {
        fprintf(stderr, "relais-sim: relaisd did not come back: %s\n", err);
        return -1;
    }
    s->broker_restarts++;
    s->restart_real_ms = (double)(relais_mono_ms() - t0);
    if (!s->opt.quiet)
        fprintf(stderr, "relais-sim: relaisd killed (SIGKILL) and restarted in %.0f ms\n",
                s->restart_real_ms);
    return 0;
}

/* Sleeps the driver until business time reaches at_ms (a simulation clock, not a test
 * synchronisation: the driver has nothing else to wait for). */
static void wait_until(int64_t at_ms)
{
    for (;;) {
        int64_t left = relais_clock_real_delay_ms(at_ms - relais_now_ms());
        if (left <= 0) return;
        struct timespec ts = {left / 1000, (left % 1000) * 1000000};
        nanosleep(&ts, NULL);
    }
}

static relais_agent_fn action_fn(const action_t *a)
{
    return a->kind == A_DISCHARGE ? do_discharge : a->kind == A_REFERRAL ? do_referral
                                                                          : do_preadmission;
}

static int drive(sim_t *s, const action_t *plan, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        wait_until(plan[i].at_ms);
        const action_t *p = &plan[i];
        if (p->kind == A_OFFLINE) {
            go_offline(p->who);
            continue;
        }
        if (p->kind == A_BROKER_KILL) {
            if (restart_broker(s) != 0) return -1;
            continue;
        }
        if (p->kind == A_ONLINE) {
            int rc = go_online(p->who);
            if (rc != 0) {
                fprintf(stderr, "relais-sim: %s cannot come back: %s\n", p->who->address,
                        relais_strerror(rc));
                return -1;
            }
            continue;
        }
        action_t *copy = malloc(sizeof *copy);
        if (copy == NULL) return -1;
        *copy = *p;
        member_t *who = p->who;
        if (!who->thread_running) {
            action_t **grown = realloc(who->waiting, (who->n_waiting + 1) * sizeof *grown);
            if (grown == NULL) {
                free(copy);
                return -1;
            }
            who->waiting = grown;
            who->waiting[who->n_waiting++] = copy;
            continue;
        }
        if (relais_agent_post(who->agent, action_fn(copy), copy) != 0) free(copy);
    }
    return 0;
}

/* ---- Stalls ------------------------------------------------------------------------------------ */

/* At 40,000× one second of machine stall is 11 simulated hours: a thread that asks to wake
 * every 10 ms measures how late it wakes, the simulator's clock being as late. */
typedef struct stall_watch {
    pthread_t thread;
    pthread_mutex_t mu;
    bool stop;
    double max_ms;
    unsigned over_100ms;
} stall_watch_t;

static void *watch_stalls(void *arg)
{
    stall_watch_t *w = arg;
    for (;;) {
        pthread_mutex_lock(&w->mu);
        bool stop = w->stop;
        pthread_mutex_unlock(&w->mu);
        if (stop) return NULL;
        int64_t before = relais_mono_ms();
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
        double late = (double)(relais_mono_ms() - before - 10);
        pthread_mutex_lock(&w->mu);
        if (late > w->max_ms) w->max_ms = late;
        if (late > 100) w->over_100ms++;
        pthread_mutex_unlock(&w->mu);
    }
}

/* ---- Main --------------------------------------------------------------------------------------
 */

static uint64_t broker_accepted(const char *log_path)
{
    FILE *f = fopen(log_path, "r");
    if (f == NULL) return 0;
    char line[1024];
    unsigned long long v = 0;
    while (fgets(line, sizeof line, f) != NULL) {
        const char *p = strstr(line, "stopped accepted=");
        if (p != NULL) sscanf(p, "stopped accepted=%llu", &v);
    }
    fclose(f);
    return v;
}

int main(int argc, char **argv)
{
    sim_t s = {0};
    if (sim_options_parse(argc, argv, &s.opt) != 0) return 2;
    signal(SIGPIPE, SIG_IGN);
    relais_log_set_level(s.opt.quiet ? RELAIS_LOG_ERROR : RELAIS_LOG_WARN);
    rng_state = s.opt.seed;
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.cv, NULL);
    char err[512], relaisd_buf[PATH_MAX];
    int status = 1;
    const char *relaisd = demo_broker_find(s.opt.relaisd, relaisd_buf);
    if (relaisd == NULL) {
        fprintf(stderr, "relais-sim: relaisd not found (use --relaisd)\n");
        return 1;
    }
    s.relaisd = relaisd;
    s.programmes = relais_ref_programmes_default();
    if (sim_stats_new(&s.stats) != 0) {
        fprintf(stderr, "relais-sim: out of memory\n");
        return 1;
    }
    if (demo_broker_mkdata(&s.broker, err, sizeof err) != 0) {
        fprintf(stderr, "relais-sim: %s\n", err);
        return 1;
    }

    /* The simulated calendar starts on a Saturday at midnight (UTC), so that the start-up
     * of the territory passes over the weekend; the scenario starts on the Monday. */
    int64_t wall = relais_wall_ms();
    int64_t days = wall / DAY_MS;
    int64_t saturday = (days + (12 - (days + 3) % 7) % 7) * DAY_MS; /* 1970-01-01: a Thursday */
    s.origin_ms = saturday + 2 * DAY_MS;
    char clock[96];
    snprintf(clock, sizeof clock, "%.0f,%lld,%lld", s.opt.factor, (long long)wall,
             (long long)saturday);
    setenv("RELAIS_SIM_CLOCK", clock, 1);
    if (relais_clock_init() != 0) {
        fprintf(stderr, "relais-sim: cannot set the simulated clock\n");
        goto out;
    }

    if (make_members(&s) != 0 || write_territory(&s, err, sizeof err) != 0) {
        fprintf(stderr, "relais-sim: cannot write the territory: %s\n", err);
        goto out;
    }
    if (demo_broker_start(&s.broker, relaisd, s.directory_path, s.broker_key_path, 10000, err,
                          sizeof err) != 0) {
        fprintf(stderr, "relais-sim: cannot start relaisd: %s\n", err);
        goto out;
    }
    char agents_dir[PATH_MAX + 16];
    snprintf(agents_dir, sizeof agents_dir, "%s/agents", s.broker.data_dir);
    mkdir(agents_dir, 0700);
    for (size_t i = 0; i < s.n; i++) {
        member_t *m = &s.m[i];
        snprintf(m->state_path, sizeof m->state_path, "%s/%zu.state", agents_dir, i);
        int rc = new_agent(m);
        if (rc == 0) rc = make_role(m);
        if (rc == 0) rc = start_thread(m);
        if (rc != 0) {
            fprintf(stderr, "relais-sim: cannot start %s: %s\n", m->address, relais_strerror(rc));
            goto stop;
        }
    }
    if (!wait_ready(&s, (unsigned)s.n, 60000)) {
        fprintf(stderr, "relais-sim: only %u of %zu agents connected in 60 s\n", s.ready, s.n);
        goto stop;
    }
    unsigned professionals =
        (unsigned)(s.count[M_GP] + s.count[M_NURSE] + s.count[M_PHYSIO] + s.count[M_SPECIALIST]);
    if (!s.opt.quiet)
        fprintf(stderr,
                "relais-sim: %zu agents connected (%u professionals); simulating %u weeks at "
                "%.0f×\n",
                s.n, professionals, s.opt.weeks, s.opt.factor);

    size_t n_actions = 0;
    action_t *actions = plan(&s, &n_actions);
    if (actions == NULL) goto stop;
    wait_until(s.origin_ms);
    int64_t real_start = relais_mono_ms();
    stall_watch_t watch = {.mu = PTHREAD_MUTEX_INITIALIZER};
    bool watching = pthread_create(&watch.thread, NULL, watch_stalls, &watch) == 0;
    int rc = drive(&s, actions, n_actions);
    free(actions);
    int64_t end_ms = s.origin_ms + (int64_t)s.opt.weeks * WEEK_MS;
    if (rc == 0) wait_until(end_ms);

    /* The drain: every message the broker accepted — the SDKs' own included — is handled
     * or reported back, within 30 s. */
    size_t undrained = rc == 0 ? sim_stats_wait_drained(s.stats, 30000) : 0;
    double real_seconds = (double)(relais_mono_ms() - real_start) / 1000.0;
    if (watching) {
        pthread_mutex_lock(&watch.mu);
        watch.stop = true;
        pthread_mutex_unlock(&watch.mu);
        pthread_join(watch.thread, NULL);
    }
    if (rc != 0) goto stop;
    for (size_t i = 0; i < s.n; i++) join_thread(&s.m[i]);
    if (demo_broker_stop(&s.broker, 10000, err, sizeof err) != 0)
        fprintf(stderr, "relais-sim: relaisd: %s\n", err);

    char nurse_pool[64], physio_pool[64], cardio_pool[64], pneumo_pool[64];
    snprintf(nurse_pool, sizeof nurse_pool, "service:nurse@%s", TERRITORY);
    snprintf(physio_pool, sizeof physio_pool, "service:physiotherapist@%s", TERRITORY);
    snprintf(cardio_pool, sizeof cardio_pool, "service:specialist/cardiology@%s", TERRITORY);
    snprintf(pneumo_pool, sizeof pneumo_pool, "service:specialist/pneumology@%s", TERRITORY);
    sim_pool_t pools[] = {{nurse_pool, s.opt.nurses},
                          {physio_pool, s.opt.physios},
                          {cardio_pool, s.opt.cardiologists},
                          {pneumo_pool, s.opt.pneumologists}};
    sim_run_info_t info = {
        .professionals = professionals,
        .practices = s.opt.practices,
        .assistants = (unsigned)s.count[M_ASSISTANT],
        .hospitals = s.opt.hospitals,
        .facilities = s.opt.facilities,
        .weeks = s.opt.weeks,
        .factor = s.opt.factor,
        .real_seconds = real_seconds,
        .broker_accepted = broker_accepted(s.broker.log_path),
        .offline_periods = s.offline_periods,
        .silent = s.silent,
        .answer_ms = 48 * HOUR_MS,
        .end_ms = end_ms,
        .max_redispatches = SIM_MAX_CANDIDATES,
        .max_escalations = 1,
        .stall_max_ms = watch.max_ms > s.loop_lag_max_ms ? watch.max_ms : s.loop_lag_max_ms,
        .watch_stall_ms = watch.max_ms,
        .loop_lag_ms = s.loop_lag_max_ms,
        .stalls = watch.over_100ms,
        .broker_restarts = s.broker_restarts,
        .restart_real_ms = s.restart_real_ms,
        .undrained = undrained,
        .pools = pools,
        .n_pools = sizeof pools / sizeof pools[0],
    };
    sim_verdict_t verdict;
    size_t failures = sim_stats_report(s.stats, &info, stdout, &verdict);
    if (s.opt.report_path != NULL) {
        FILE *f = fopen(s.opt.report_path, "w");
        if (f != NULL) {
            sim_stats_report(s.stats, &info, f, NULL);
            fclose(f);
        }
    }
    if (s.opt.late_not_fatal) failures -= verdict.late;
    if (failures != 0)
        fprintf(stderr, "relais-sim: FAILED: %zu lost, %zu requests past a bound, %zu late\n",
                verdict.lost, verdict.over_bound, verdict.late);
    status = failures == 0 ? 0 : 1;
    goto cleanup;

stop:
    for (size_t i = 0; i < s.n; i++) join_thread(&s.m[i]);
    demo_broker_stop(&s.broker, 10000, err, sizeof err);
cleanup:
    for (size_t i = 0; i < s.n; i++) {
        member_t *m = &s.m[i];
        relais_agent_destroy(&m->agent);
        relais_ref_provider_destroy(&m->provider);
        relais_ref_assistant_destroy(&m->assistant);
        relais_ref_hospital_destroy(&m->hospital);
        relais_ref_facility_destroy(&m->facility);
        relais_ref_coordinator_destroy(&m->coordinator);
        for (size_t k = 0; k < m->n_waiting; k++) free(m->waiting[k]);
        free(m->waiting);
    }
out:
    if (!s.opt.keep) {
        demo_broker_rmdata(&s.broker);
    } else {
        fprintf(stderr, "relais-sim: data kept in %s\n", s.broker.data_dir);
    }
    free(s.m);
    sim_stats_free(&s.stats);
    return status;
}
