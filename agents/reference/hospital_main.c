/*
 * relais-hospital: a reference hospital discharge desk (finess address). With
 * --discharge-to it notifies one sample heart-failure discharge (fictitious patient, a
 * nurse visit within 2 days and a GP consultation within 7 days) once connected, to try a
 * territory out; otherwise it waits and reports what comes back.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum {
    OPT_FACILITY = 1,
    OPT_DISCHARGE_TO,
    OPT_GP,
};

typedef struct app {
    ref_cli_t cli;
    relais_ref_hospital_t *hospital;
    const char *discharge_to;
    const char *gp;
    relais_ref_sample_discharge_t sample; /* must outlive the send call only */
} app_t;

static void usage(const char *prog)
{
    printf("usage: %s --endpoint E --address finess:NNNNNNNNN [options]\n"
           "A reference hospital discharge desk.\n" REF_CLI_COMMON_USAGE
           "  --facility A       facility written in notifications (default: --address)\n"
           "  --discharge-to A   once connected, notify a sample discharge to A (the GP's\n"
           "                     assistant); needs --gp\n"
           "  --gp A             the patient's GP, listed in the care team\n",
           prog);
}

static void send_sample_discharge(relais_agent_t *agent, void *ud)
{
    app_t *app = ud;
    if (app->discharge_to == NULL) return;
    char encounter[RELAIS_REF_ID_MAX];
    snprintf(encounter, sizeof encounter, "enc-%lld", (long long)relais_now_ms());
    relais_ref_sample_discharge(&app->sample, encounter, app->gp, relais_now_ms());
    int rc = relais_ref_hospital_notify(app->hospital, app->discharge_to, &app->sample.dn);
    if (rc != 0) {
        fprintf(stderr, "%s: sample discharge to %s failed: %s\n", app->cli.prog, app->discharge_to,
                relais_strerror(rc));
    }
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        REF_CLI_COMMON_OPTIONS,
        {"facility", required_argument, NULL, OPT_FACILITY},
        {"discharge-to", required_argument, NULL, OPT_DISCHARGE_TO},
        {"gp", required_argument, NULL, OPT_GP},
        {NULL, 0, NULL, 0},
    };
    app_t app = {.cli = {.prog = ref__cli_prog(argv[0])}};
    relais_ref_hospital_config_t cfg = {.on_event = ref__cli_log_event, .event_ud = &app.cli};
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
        case OPT_FACILITY:
            cfg.facility = optarg;
            break;
        case OPT_DISCHARGE_TO:
            app.discharge_to = optarg;
            break;
        case OPT_GP:
            app.gp = optarg;
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
    if (app.discharge_to != NULL && app.gp == NULL) {
        fprintf(stderr, "%s: --discharge-to needs --gp\n", app.cli.prog);
        return 2;
    }

    int status = ref__cli_open(&app.cli);
    if (status == 0) {
        int rc = relais_ref_hospital_new(&app.hospital, app.cli.agent, &cfg);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot set up the hospital: %s\n", app.cli.prog,
                    relais_strerror(rc));
            status = 1;
        }
    }
    app.cli.on_ready = send_sample_discharge;
    app.cli.on_ready_ud = &app;
    if (status == 0) status = ref__cli_run(&app.cli);
    ref__cli_close(&app.cli);
    relais_ref_hospital_destroy(&app.hospital);
    return status;
}
