/*
 * relais-demo: a whole territory on one machine, played end to end.
 *
 * Starts a real relaisd on an ephemeral port with a fresh data directory, secured as a
 * territory runs it: CurveZMQ with keys generated for this run and a territory directory
 * whose roles let every story through the default authorisation (demo_territory.c).
 * Connects seven reference agents (a GP's medical assistant, two physiotherapists, a
 * nurse, a cardiologist, a hospital and the CPTS coordinator), each on its own thread with
 * its own loop and its own keypair, and plays four care stories through the broker:
 *   1. the assistant, for the GP, asks the physiotherapist for an appointment, books the
 *      first slot offered and gets the confirmation;
 *   2. the hospital notifies a heart-failure discharge with a follow-up plan; the assistant
 *      turns the nurse item into a care task, which the nurse accepts;
 *   3. the assistant asks the physiotherapists' pool in OFFER dispatch: both members are
 *      offered the request, the first claim wins (the SDK's default policy), the other sees
 *      it withdrawn, and the claimer offers slots, which are booked and confirmed;
 *   4. the assistant tracks its conversations with short deadlines; the cardiologist is
 *      silent, so the request gets a reminder, then an escalation to the coordinator, who
 *      answers with a Note naming the next candidate (the cardiologists' pool).
 * A timeline of every message is printed as it happens. The program exits 0 when all four
 * stories completed and the broker stopped cleanly, and otherwise names the step that did
 * not happen in time. All patient data is fictitious (see samples.c).
 *
 * The orchestrator (main thread) never touches an agent directly once its thread runs:
 * it posts actions to the agent's loop with relais_agent_post(), and learns what happened
 * from the roles' events under one mutex and condition variable.
 */
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "demo_broker.h"
#include "demo_story.h"
#include "refagents.h"
#include "relais/keys.h"
#include "relais/log.h"

#define BROKER_READY_MS 10000
#define AGENTS_READY_MS 10000
#define STORY_MS 20000
/* Story 4's answer deadline: short, so that the escalation happens within the demo. */
#define SILENT_ANSWER_MS 1500
#define BROKER_STOP_MS 10000
#define DAY_MS (24LL * 3600 * 1000)

/* The territory's members (demo_territory.h) under the names the stories use. */
#define GP DEMO_GP
#define ASSISTANT DEMO_ASSISTANT_ADDR
#define PHYSIO DEMO_PHYSIO_ADDR
#define NURSE DEMO_NURSE_ADDR
#define CARDIOLOGIST DEMO_CARDIOLOGIST_ADDR
#define HOSPITAL DEMO_HOSPITAL_ADDR
#define PHYSIO2 DEMO_PHYSIO2_ADDR

#define REQUEST_ID "req-demo-0001"
#define ENCOUNTER_ID "enc-demo-0001"
#define POOL_REQUEST_ID "req-demo-0002"
#define SILENT_REQUEST_ID "req-demo-0003"

/* ---- Agents and their threads -------------------------------------------------------- */

static void *agent_main(void *arg)
{
    demo_agent_t *a = arg;
    int rc = relais_agent_run(a->agent);
    demo_t *d = a->demo;
    pthread_mutex_lock(&d->mu);
    a->run_rc = rc;
    a->exited = true;
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
    return NULL;
}

static const char *state_text(relais_agent_state_t s)
{
    switch (s) {
    case RELAIS_AGENT_CONNECTING:
        return "still connecting";
    case RELAIS_AGENT_READY:
        return "ready";
    case RELAIS_AGENT_DISCONNECTED:
        return "disconnected";
    case RELAIS_AGENT_STOPPED:
        return "stopped";
    default:
        return "no state reported yet";
    }
}

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    demo_agent_t *a = ud;
    demo_t *d = a->demo;
    pthread_mutex_lock(&d->mu);
    a->state = state;
    if (state == RELAIS_AGENT_READY && !a->was_ready) {
        a->was_ready = true;
        demo__print(d, "%-*s connected as the %s (READY)", d->addr_width, a->address, a->label);
    } else if (state == RELAIS_AGENT_DISCONNECTED && !d->stopping) {
        demo__print(d, "%-*s lost its session: %s", d->addr_width, a->address,
                    detail != NULL ? detail : "");
    }
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

/*
 * Creates the agent of one member with its own keypair, read back from the key file the
 * territory wrote (as a reference program's --key does), and the broker's public key.
 */
static int create_agent(demo_t *d, demo_agent_t *a, const char *label, const char *address)
{
    a->demo = d;
    a->label = label;
    a->address = address;
    const char *key_path = demo_territory_key_path(&d->territory, address);
    if (key_path == NULL) {
        fprintf(stderr, "relais-demo: the %s %s is not in the territory directory\n", label,
                address);
        return RELAIS_ECONFIG;
    }
    char pub[41], sec[41], why[RELAIS_REASON_MAX];
    int rc = relais_keyfile_read(key_path, pub, sec, why, sizeof why);
    if (rc != 0) {
        fprintf(stderr, "relais-demo: the %s's keys: %s\n", label, why);
        return rc;
    }
    relais_agent_options_t opts = {
        .endpoint = d->broker.endpoint,
        .address = address,
        .software = "relais-demo",
        .curve_server_key = d->territory.broker_public_z85,
        .curve_public_key = pub,
        .curve_secret_key = sec,
    };
    rc = relais_agent_new(&a->agent, &opts);
    explicit_bzero(sec, sizeof sec); /* the agent keeps its own copy */
    if (rc != 0) {
        fprintf(stderr, "relais-demo: cannot create the %s agent %s: %s\n", label, address,
                relais_strerror(rc));
        return rc;
    }
    relais_agent_on_state(a->agent, on_state, a);
    return 0;
}

/* Tomorrow at hour:00, local time: practices open in the morning, not at midnight. */
static int64_t tomorrow_at(int hour)
{
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    tm.tm_mday += 1;
    tm.tm_hour = hour;
    tm.tm_min = tm.tm_sec = 0;
    tm.tm_isdst = -1;
    return (int64_t)mktime(&tm) * 1000;
}

static int create_territory(demo_t *d)
{
    static const struct {
        const char *label, *address;
    } who[DEMO_N_AGENTS] = {
        [DEMO_ASSISTANT] = {"GP's assistant", ASSISTANT},
        [DEMO_PHYSIO] = {"physiotherapist", PHYSIO},
        [DEMO_NURSE] = {"nurse", NURSE},
        [DEMO_CARDIOLOGIST] = {"cardiologist", CARDIOLOGIST},
        [DEMO_HOSPITAL] = {"hospital", HOSPITAL},
        [DEMO_PHYSIO2] = {"second physiotherapist", PHYSIO2},
        [DEMO_COORDINATION] = {"CPTS coordinator", DEMO_COORDINATOR},
    };
    for (int i = 0; i < DEMO_N_AGENTS; i++) {
        if (create_agent(d, &d->agents[i], who[i].label, who[i].address) != 0) return -1;
    }

    const char *gps[] = {GP};
    /* Every conversation of the assistant is tracked; only the silent cardiologist's lets
     * its answer deadline pass. The reminder comes at half of it. */
    relais_conv_options_t tracking = {
        .coordinator = DEMO_COORDINATOR,
        .reminder_fraction = 0.5,
        .answer_ms = SILENT_ANSWER_MS,
    };
    relais_ref_assistant_config_t acfg = {
        .gps = gps,
        .n_gps = 1,
        .nurse = NURSE,
        .physiotherapist = PHYSIO,
        .specialist = CARDIOLOGIST,
        .tracking = &tracking,
        .on_event = demo__on_event,
        .event_ud = d,
    };
    relais_ref_provider_config_t physio = {
        .role = "physiotherapist",
        .location = "Cabinet de kinésithérapie des Longs Champs, Rennes",
        .slot_count = 12,
        .first_slot_ms = tomorrow_at(9),
        .on_event = demo__on_event,
        .event_ud = d,
    };
    relais_ref_provider_config_t physio2 = physio;
    physio2.location = "Maison de santé de Villejean, Rennes";
    relais_ref_provider_config_t nurse = {
        .role = "nurse",
        .home_visits = true,
        .slot_count = 16,
        .slot_minutes = 45,
        .first_slot_ms = tomorrow_at(8),
        .on_event = demo__on_event,
        .event_ud = d,
    };
    relais_ref_provider_config_t cardio = {
        .role = "specialist",
        .specialty = "cardiology",
        .location = "Centre de cardiologie, Rennes",
        .slot_count = 8,
        .slot_minutes = 20,
        .first_slot_ms = tomorrow_at(14),
        .silent = true,
        .on_event = demo__on_event,
        .event_ud = d,
    };
    relais_ref_hospital_config_t hcfg = {.on_event = demo__on_event, .event_ud = d};
    /* The cardiologist is responsible when story 4 escalates: the pool comes next. */
    const char *candidates[] = {CARDIOLOGIST, DEMO_CARDIOLOGY_POOL};
    relais_ref_coordinator_config_t ccfg = {
        .candidates = candidates,
        .n_candidates = 2,
        .on_escalation = demo__on_escalation,
        .on_event = demo__on_event,
        .event_ud = d,
    };

    demo_agent_t *ag = d->agents;
    int rc = relais_ref_assistant_new(&d->assistant, ag[DEMO_ASSISTANT].agent, &acfg);
    if (rc == 0) rc = relais_ref_provider_new(&d->physio, ag[DEMO_PHYSIO].agent, &physio);
    if (rc == 0) rc = relais_ref_provider_new(&d->nurse, ag[DEMO_NURSE].agent, &nurse);
    if (rc == 0) rc = relais_ref_provider_new(&d->cardio, ag[DEMO_CARDIOLOGIST].agent, &cardio);
    if (rc == 0) rc = relais_ref_hospital_new(&d->hospital, ag[DEMO_HOSPITAL].agent, &hcfg);
    if (rc == 0) rc = relais_ref_provider_new(&d->physio2, ag[DEMO_PHYSIO2].agent, &physio2);
    if (rc == 0) {
        rc = relais_ref_coordinator_new(&d->coordinator, ag[DEMO_COORDINATION].agent, &ccfg);
    }
    if (rc != 0) {
        fprintf(stderr, "relais-demo: cannot set up the reference roles: %s\n",
                relais_strerror(rc));
        return -1;
    }
    return 0;
}

static int start_threads(demo_t *d)
{
    for (int i = 0; i < DEMO_N_AGENTS; i++) {
        demo_agent_t *a = &d->agents[i];
        if (pthread_create(&a->thread, NULL, agent_main, a) != 0) {
            fprintf(stderr, "relais-demo: cannot start the %s's thread\n", a->label);
            return -1;
        }
        a->thread_started = true;
    }
    return 0;
}

static bool all_ready(demo_t *d)
{
    for (int i = 0; i < DEMO_N_AGENTS; i++) {
        if (!d->agents[i].was_ready || d->agents[i].exited) return false;
    }
    return true;
}

static bool any_exited(demo_t *d)
{
    for (int i = 0; i < DEMO_N_AGENTS; i++) {
        if (d->agents[i].exited) return true;
    }
    return false;
}

static int await_agents(demo_t *d)
{
    pthread_mutex_lock(&d->mu);
    bool ok = demo__wait(d, AGENTS_READY_MS, all_ready, any_exited);
    if (!ok) {
        for (int i = 0; i < DEMO_N_AGENTS; i++) {
            demo_agent_t *a = &d->agents[i];
            if (a->exited) {
                fprintf(stderr, "relais-demo: the %s (%s) stopped: %s\n", a->label, a->address,
                        relais_strerror(a->run_rc));
            } else if (!a->was_ready) {
                fprintf(stderr, "relais-demo: the %s (%s) was not READY within %d ms (%s)\n",
                        a->label, a->address, AGENTS_READY_MS, state_text(a->state));
            }
        }
    }
    pthread_mutex_unlock(&d->mu);
    return ok ? 0 : -1;
}

/* Stops every agent from this thread, waits for their loops to end, frees them. */
static void stop_territory(demo_t *d)
{
    pthread_mutex_lock(&d->mu);
    d->stopping = true;
    pthread_mutex_unlock(&d->mu);
    for (int i = 0; i < DEMO_N_AGENTS; i++) {
        if (d->agents[i].agent != NULL && d->agents[i].thread_started) {
            relais_agent_stop(d->agents[i].agent);
        }
    }
    for (int i = 0; i < DEMO_N_AGENTS; i++) {
        demo_agent_t *a = &d->agents[i];
        if (a->thread_started) pthread_join(a->thread, NULL);
        a->thread_started = false;
        relais_agent_destroy(&a->agent);
    }
    relais_ref_assistant_destroy(&d->assistant);
    relais_ref_provider_destroy(&d->physio);
    relais_ref_provider_destroy(&d->nurse);
    relais_ref_provider_destroy(&d->cardio);
    relais_ref_hospital_destroy(&d->hospital);
    relais_ref_provider_destroy(&d->physio2);
    relais_ref_coordinator_destroy(&d->coordinator);
}

/* ---- The stories: actions posted to the agents' loops ---------------------------------- */

/* What the assistant asks in stories 1, 3 and 4: the same fictitious patient. */
typedef struct demo_request {
    Relais__V1__PatientRef patient;
    char *given[1];
    Relais__V1__TimeWindow window;
    Relais__V1__AppointmentRequest req;
} demo_request_t;

static void fill_request(demo_request_t *r, const char *request_id, const char *role,
                         const char *specialty, const char *reason)
{
    relais_ref_sample_patient(&r->patient, r->given, "DEMO-LOCAL-0042");
    relais__v1__time_window__init(&r->window);
    r->window.not_before_ms = relais_now_ms();
    r->window.due_by_ms = r->window.not_before_ms + 14 * DAY_MS;
    relais__v1__appointment_request__init(&r->req);
    r->req.request_id = (char *)request_id;
    r->req.patient = &r->patient;
    r->req.requested_role = (char *)role;
    r->req.specialty = (char *)specialty;
    r->req.urgency = RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__ROUTINE;
    r->req.window = &r->window;
    r->req.preferred_mode = RELAIS__V1__SLOT__MODE__OFFICE;
    r->req.reason = (char *)reason;
}

/* On the assistant's loop: asks the physiotherapist for an appointment, for the GP. */
static void story1_begin(relais_agent_t *agent, void *ud)
{
    demo_t *d = ud;
    Relais__V1__PatientRef patient;
    char *given[1];
    relais_ref_sample_patient(&patient, given, "DEMO-LOCAL-0042");
    Relais__V1__TimeWindow window = RELAIS__V1__TIME_WINDOW__INIT;
    window.not_before_ms = relais_now_ms();
    window.due_by_ms = window.not_before_ms + 14 * DAY_MS;
    Relais__V1__AppointmentRequest req = RELAIS__V1__APPOINTMENT_REQUEST__INIT;
    req.request_id = REQUEST_ID;
    req.patient = &patient;
    req.requested_role = "physiotherapist";
    req.urgency = RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__ROUTINE;
    req.window = &window;
    req.preferred_mode = RELAIS__V1__SLOT__MODE__OFFICE;
    req.reason = "knee rehabilitation after arthroscopy, 10 sessions";
    int rc = relais_ref_assistant_request(d->assistant, PHYSIO, GP, &req);
    if (rc != 0)
        demo__story_fail(d, &d->stories[0], "could not send the AppointmentRequest",
                         relais_strerror(rc));
}

/* On the hospital's loop: notifies the discharge to the GP's assistant. */
static void story2_begin(relais_agent_t *agent, void *ud)
{
    demo_t *d = ud;
    relais_ref_sample_discharge(&d->discharge, ENCOUNTER_ID, GP, relais_now_ms());
    int rc = relais_ref_hospital_notify(d->hospital, ASSISTANT, &d->discharge.dn);
    if (rc != 0)
        demo__story_fail(d, &d->stories[1], "could not send the DischargeNotification",
                         relais_strerror(rc));
}

/* On the assistant's loop: asks the physiotherapists' pool, in OFFER dispatch. */
static void story3_begin(relais_agent_t *agent, void *ud)
{
    demo_t *d = ud;
    demo_request_t r;
    fill_request(&r, POOL_REQUEST_ID, "physiotherapist", "",
                 "shoulder rehabilitation, 8 sessions, any physiotherapist of the CPTS");
    int rc = relais_ref_assistant_request_pool(d->assistant, DEMO_PHYSIO_POOL, GP, &r.req);
    if (rc != 0)
        demo__story_fail(d, &d->stories[2], "could not send the AppointmentRequest to the pool",
                         relais_strerror(rc));
}

/* On the assistant's loop: asks the (silent) cardiologist for a consultation. */
static void story4_begin(relais_agent_t *agent, void *ud)
{
    demo_t *d = ud;
    demo_request_t r;
    fill_request(&r, SILENT_REQUEST_ID, "specialist", "cardiology",
                 "cardiology consultation, heart-failure follow-up");
    int rc = relais_ref_assistant_request(d->assistant, CARDIOLOGIST, GP, &r.req);
    if (rc != 0)
        demo__story_fail(d, &d->stories[3], "could not send the AppointmentRequest",
                         relais_strerror(rc));
}

static int play(demo_t *d, demo_story_t *s, demo_agent_t *actor, relais_agent_fn begin)
{
    pthread_mutex_lock(&d->mu);
    s->started_ms = demo__elapsed_ms(d);
    s->running = true;
    demo__print(d, "%s — %s", s->label, s->title);
    pthread_mutex_unlock(&d->mu);

    int rc = relais_agent_post(actor->agent, begin, d);
    if (rc != 0) demo__story_fail(d, s, "could not post the first action", relais_strerror(rc));

    pthread_mutex_lock(&d->mu);
    demo__wait_story(d, s, STORY_MS);
    s->running = false;
    bool ok = s->done;
    pthread_mutex_unlock(&d->mu);
    return ok ? 0 : -1;
}

/* ---- Main --------------------------------------------------------------------------- */

/*
 * The demo shows a secured territory or nothing: a broker whose ready line announces
 * another mode, or another server key than the one generated for it, stops the demo.
 */
static int check_secure(demo_t *d)
{
    const demo_broker_t *b = &d->broker;
    if (strcmp(b->mode, "curve") != 0) {
        fprintf(stderr, "relais-demo: relaisd announces mode=%s, expected curve (see %s)\n",
                b->mode[0] != '\0' ? b->mode : "(none)", b->log_path);
        return -1;
    }
    if (b->server_key[0] != '\0' && strcmp(b->server_key, d->territory.broker_public_z85) != 0) {
        fprintf(stderr,
                "relais-demo: relaisd announces server_key=%s, not the key %s generated "
                "for it\n",
                b->server_key, d->territory.broker_key_path);
        return -1;
    }
    return 0;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: relais-demo [--relaisd PATH] [--keep-data] [--verbose]\n"
                 "Plays a demo territory end to end against a fresh relaisd secured with\n"
                 "CurveZMQ (keys and directory made for the run): an appointment with a\n"
                 "physiotherapist, a hospital discharge followed up by a nurse, a request\n"
                 "claimed from the physiotherapists' pool, and a request the cardiologist\n"
                 "never answers, escalated to the CPTS coordinator.\n"
                 "  --relaisd PATH   the broker to run (default: this build's relaisd)\n"
                 "  --keep-data      keep the broker's data directory (and its log)\n"
                 "  --verbose        show the agents' own logs on stderr\n");
}

int main(int argc, char **argv)
{
    /* `relais-demo | head` must not kill the demo between its broker's start and stop (the
     * broker would be left running): a closed stdout makes writes fail instead. */
    signal(SIGPIPE, SIG_IGN);
    static const struct option longopts[] = {
        {"relaisd", required_argument, NULL, 'r'},
        {"keep-data", no_argument, NULL, 'k'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *relaisd_opt = NULL;
    bool keep = false, verbose = false;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'r':
            relaisd_opt = optarg;
            break;
        case 'k':
            keep = true;
            break;
        case 'v':
            verbose = true;
            break;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        usage(stderr);
        return 2;
    }
    relais_log_set_level(verbose ? RELAIS_LOG_INFO : RELAIS_LOG_WARN);
    /* One line at a time even into a pipe, so the timeline and stderr interleave in order. */
    setvbuf(stdout, NULL, _IOLBF, 0);

    demo_t *d = calloc(1, sizeof *d);
    if (d == NULL || demo__init(d) != 0) {
        fprintf(stderr, "relais-demo: out of memory\n");
        free(d);
        return 3;
    }
    demo__story_setup(d, ASSISTANT, REQUEST_ID, ENCOUNTER_ID, POOL_REQUEST_ID, SILENT_REQUEST_ID);

    int status = 3;
    char err[512] = "";
    char pathbuf[PATH_MAX];
    const char *relaisd = demo_broker_find(relaisd_opt, pathbuf);
    if (demo_broker_mkdata(&d->broker, err, sizeof err) != 0) {
        fprintf(stderr, "relais-demo: %s\n", err);
        goto out;
    }
    printf("Relais demo territory (fictitious patients only)\n");
    if (demo_territory_write(&d->territory, d->broker.data_dir, err, sizeof err) != 0) {
        fprintf(stderr, "relais-demo: %s\n", err);
        goto out;
    }
    if (demo_broker_start(&d->broker, relaisd, d->territory.directory_path,
                          d->territory.broker_key_path, BROKER_READY_MS, err, sizeof err) != 0) {
        fprintf(stderr, "relais-demo: %s\n", err);
        goto out;
    }
    d->broker_running = true;
    if (check_secure(d) != 0) goto out;
    pthread_mutex_lock(&d->mu);
    demo__print(d, "relaisd ready at %s (data %s)", d->broker.endpoint, d->broker.data_dir);
    demo__print(d,
                "relaisd runs with CurveZMQ (server key %s); territory %s has %zu agents in "
                "its directory, %d of them connect below",
                d->territory.broker_public_z85, DEMO_TERRITORY, d->territory.n_members,
                DEMO_N_AGENTS);
    pthread_mutex_unlock(&d->mu);

    if (create_territory(d) != 0 || start_threads(d) != 0 || await_agents(d) != 0) goto out;

    status = 1;
    if (play(d, &d->stories[0], &d->agents[DEMO_ASSISTANT], story1_begin) != 0) goto out;
    if (play(d, &d->stories[1], &d->agents[DEMO_HOSPITAL], story2_begin) != 0) goto out;
    if (play(d, &d->stories[2], &d->agents[DEMO_ASSISTANT], story3_begin) != 0) goto out;
    if (play(d, &d->stories[3], &d->agents[DEMO_ASSISTANT], story4_begin) != 0) goto out;
    status = 0;

out:
    stop_territory(d);
    if (d->broker_running) {
        int st = demo_broker_stop(&d->broker, BROKER_STOP_MS, err, sizeof err);
        if (st != 0) {
            fprintf(stderr, "relais-demo: %s\n", err);
            if (status == 0) status = 1;
            keep = true; /* its log is what explains it */
        } else {
            printf("relaisd stopped cleanly (exit 0)\n");
        }
    }
    if (status == 1) demo__report(d, stderr);
    if (status == 0) demo__report(d, stdout);
    if (d->broker.data_dir[0] != '\0') {
        if (keep || status == 3) {
            printf("data directory kept: %s\n", d->broker.data_dir);
        } else if (demo_broker_rmdata(&d->broker) != 0) {
            fprintf(stderr, "relais-demo: could not remove %s\n", d->broker.data_dir);
        }
    }
    if (status == 0) printf("demo completed: all four stories went through the broker\n");
    demo__fini(d);
    free(d);
    return status;
}
