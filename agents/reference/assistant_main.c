/*
 * relais-assistant: a reference medical assistant desk acting for one or more GPs. It
 * books the first slot offered for each appointment request, and turns discharge
 * follow-up plans into care tasks for the configured nurse and appointment requests for
 * the configured physiotherapist and specialist. With --request-to it also sends one
 * sample appointment request (fictitious patient) once connected, to try a territory out.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MAX_GPS 16
#define DAY_MS (24LL * 3600 * 1000)

enum {
    OPT_GP = 1,
    OPT_NURSE,
    OPT_PHYSIO,
    OPT_SPECIALIST,
    OPT_REQUEST_TO,
    OPT_REQUEST_ROLE,
    OPT_REQUEST_SPECIALTY,
};

typedef struct app {
    ref_cli_t cli;
    relais_ref_assistant_t *assistant;
    const char *request_to;
    const char *request_role;
    const char *request_specialty;
} app_t;

static void usage(const char *prog)
{
    printf("usage: %s --endpoint E --address staff:NAME@PRACTICE --gp rpps:N [options]\n"
           "A reference medical assistant acting on behalf of GPs.\n" REF_CLI_COMMON_USAGE
           "  --gp A                 a GP the assistant acts for (repeat; the first is the\n"
           "                         default)\n"
           "  --nurse A              where nurse follow-up items go (CareTaskRequest)\n"
           "  --physiotherapist A    where physiotherapy items go (AppointmentRequest)\n"
           "  --specialist A         where specialist items go (AppointmentRequest)\n"
           "  --request-to A         once connected, request one sample appointment from A\n"
           "  --request-role R       requested role of that request (nurse, physiotherapist…)\n"
           "  --request-specialty S  requested specialty of that request\n",
           prog);
}

/* Sends the sample request once the first session is up (see --request-to). */
static void send_sample_request(relais_agent_t *agent, void *ud)
{
    app_t *app = ud;
    if (app->request_to == NULL) return;
    char request_id[RELAIS_REF_ID_MAX];
    snprintf(request_id, sizeof request_id, "req-%lld", (long long)relais_now_ms());
    Relais__V1__PatientRef patient;
    char *given[1];
    relais_ref_sample_patient(&patient, given, "DEMO-LOCAL-0001");
    Relais__V1__TimeWindow window = RELAIS__V1__TIME_WINDOW__INIT;
    window.not_before_ms = relais_now_ms();
    window.due_by_ms = window.not_before_ms + 14 * DAY_MS;
    Relais__V1__AppointmentRequest req = RELAIS__V1__APPOINTMENT_REQUEST__INIT;
    req.request_id = request_id;
    req.patient = &patient;
    req.requested_role = (char *)(app->request_role != NULL ? app->request_role : "");
    req.specialty = (char *)(app->request_specialty != NULL ? app->request_specialty : "");
    req.urgency = RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__ROUTINE;
    req.window = &window;
    req.reason = "sample request from relais-assistant";
    int rc = relais_ref_assistant_request(app->assistant, app->request_to, NULL, &req);
    if (rc != 0) {
        fprintf(stderr, "%s: sample request to %s failed: %s\n", app->cli.prog, app->request_to,
                relais_strerror(rc));
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        REF_CLI_COMMON_OPTIONS,
        {"gp", required_argument, NULL, OPT_GP},
        {"on-behalf-of", required_argument, NULL, OPT_GP},
        {"nurse", required_argument, NULL, OPT_NURSE},
        {"physiotherapist", required_argument, NULL, OPT_PHYSIO},
        {"specialist", required_argument, NULL, OPT_SPECIALIST},
        {"request-to", required_argument, NULL, OPT_REQUEST_TO},
        {"request-role", required_argument, NULL, OPT_REQUEST_ROLE},
        {"request-specialty", required_argument, NULL, OPT_REQUEST_SPECIALTY},
        {NULL, 0, NULL, 0},
    };
    app_t app = {.cli = {.prog = ref__cli_prog(argv[0])}};
    const char *gps[MAX_GPS];
    relais_ref_assistant_config_t cfg = {
        .gps = gps,
        .on_event = ref__cli_log_event,
        .event_ud = &app.cli,
    };
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int r = ref__cli_option(&app.cli, c, optarg);
        if (r == 2) {
            usage(app.cli.prog);
            return 0;
        }
        if (r < 0) return 2;
        if (r == 1) continue;
        switch (c) {
        case OPT_GP:
            if (cfg.n_gps == MAX_GPS) {
                fprintf(stderr, "%s: at most %d --gp\n", app.cli.prog, MAX_GPS);
                return 2;
            }
            gps[cfg.n_gps++] = optarg;
            break;
        case OPT_NURSE:
            cfg.nurse = optarg;
            break;
        case OPT_PHYSIO:
            cfg.physiotherapist = optarg;
            break;
        case OPT_SPECIALIST:
            cfg.specialist = optarg;
            break;
        case OPT_REQUEST_TO:
            app.request_to = optarg;
            break;
        case OPT_REQUEST_ROLE:
            app.request_role = optarg;
            break;
        case OPT_REQUEST_SPECIALTY:
            app.request_specialty = optarg;
            break;
        default:
            fprintf(stderr, "see %s --help\n", app.cli.prog);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", app.cli.prog, argv[optind]);
        return 2;
    }
    if (cfg.n_gps == 0) {
        fprintf(stderr, "%s: at least one --gp is required\n", app.cli.prog);
        return 2;
    }

    int status = ref__cli_open(&app.cli);
    if (status == 0) {
        int rc = relais_ref_assistant_new(&app.assistant, app.cli.agent, &cfg);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot set up the assistant: %s\n", app.cli.prog,
                    relais_strerror(rc));
            status = 1;
        }
    }
    app.cli.on_ready = send_sample_request;
    app.cli.on_ready_ud = &app;
    if (status == 0) status = ref__cli_run(&app.cli);
    ref__cli_close(&app.cli);
    relais_ref_assistant_destroy(&app.assistant);
    return status;
}
