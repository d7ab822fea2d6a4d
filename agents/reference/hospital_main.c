/*
 * relais-hospital: a reference hospital discharge desk (finess address). Its programmes
 * (follow-up plans by care programme) come from --config, a hospital file with `facility:`
 * and `programmes:`, or are the built-in ones (heart failure, COPD). With --discharge-to it
 * notifies one sample discharge (fictitious patient) under --programme once connected, to
 * try a territory out; otherwise it waits and reports what comes back. With --preadmission
 * it also answers preadmission requests as a facility, on the same agent.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

enum {
    OPT_FACILITY = 1,
    OPT_DISCHARGE_TO,
    OPT_GP,
    OPT_PROGRAMME,
    OPT_PREADMISSION,
};

typedef struct app {
    ref_cli_t cli;
    relais_ref_hospital_t *hospital;
    relais_ref_facility_t *facility;
    relais_ref_programmes_t *programmes; /* from --config; NULL: the built-in table */
    const relais_ref_programme_t *programme;
    const char *discharge_to;
    const char *gp;
    relais_ref_sample_discharge_t sample; /* must outlive the send call only */
} app_t;

static void usage(const char *prog)
{
    printf("usage: %s --endpoint E --address finess:NNNNNNNNN [options]\n"
           "A reference hospital discharge desk.\n" REF_CLI_COMMON_USAGE
           "                     (a hospital file: facility, programmes)\n"
           "  --facility A       facility written in notifications (default: the file's,\n"
           "                     else --address)\n"
           "  --discharge-to A   once connected, notify a sample discharge to A (the GP's\n"
           "                     assistant); needs --gp\n"
           "  --gp A             the patient's GP, listed in the care team\n"
           "  --programme NAME   the sample discharge's programme (default heart-failure)\n"
           "  --preadmission F   also answer preadmission requests as a facility configured\n"
           "                     by F (a facility file, see relais-facility)\n",
           prog);
}

static void send_sample_discharge(relais_agent_t *agent, void *ud)
{
    app_t *app = ud;
    if (app->discharge_to == NULL) return;
    char encounter[RELAIS_REF_ID_MAX];
    int64_t now = relais_now_ms();
    snprintf(encounter, sizeof encounter, "enc-%lld", (long long)now);
    /* The sample's fictitious patient (with its fictitious INS); its plan is not used. */
    relais_ref_sample_discharge(&app->sample, encounter, app->gp, now);
    const char *team[1] = {app->gp};
    int rc = relais_ref_hospital_discharge(app->hospital, app->discharge_to, app->programme,
                                           &app->sample.patient, encounter, team, 1, now);
    if (rc != 0) {
        fprintf(stderr, "%s: sample discharge to %s failed: %s\n", app->cli.prog, app->discharge_to,
                relais_strerror(rc));
    }
}

/* Reads --config and --preadmission and picks the programme; 0 or an exit status. */
static int configure(app_t *app, relais_ref_hospital_config_t *cfg, char *facility,
                     const char *programme, const char *preadmission,
                     relais_ref_facility_config_t *fcfg)
{
    char err[512];
    if (app->cli.config_path != NULL) {
        int rc = relais_ref_hospital_file_load(app->cli.config_path, facility, &app->programmes,
                                               err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "%s: %s\n", app->cli.prog, err);
            return 2;
        }
        if (cfg->facility == NULL && facility[0] != '\0') cfg->facility = facility;
    }
    cfg->programmes = app->programmes; /* NULL: the built-in table */
    const relais_ref_programmes_t *table =
        app->programmes != NULL ? app->programmes : relais_ref_programmes_default();
    app->programme = relais_ref_programme_find(table, programme);
    if (app->programme == NULL) {
        fprintf(stderr, "%s: no programme '%s'; known:", app->cli.prog, programme);
        for (size_t i = 0; i < relais_ref_programmes_count(table); i++)
            fprintf(stderr, " %s", relais_ref_programme_at(table, i)->name);
        fprintf(stderr, "\n");
        return 2;
    }
    if (preadmission != NULL) {
        relais_ref_facility_config_defaults(fcfg);
        if (relais_ref_facility_config_load(preadmission, fcfg, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", app->cli.prog, err);
            return 2;
        }
        fcfg->facility = cfg->facility;
        fcfg->no_receipts = true; /* the hospital's receipt callback reports them */
        fcfg->on_event = ref__cli_log_event;
        fcfg->event_ud = &app->cli;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        REF_CLI_COMMON_OPTIONS,
        {"facility", required_argument, NULL, OPT_FACILITY},
        {"discharge-to", required_argument, NULL, OPT_DISCHARGE_TO},
        {"gp", required_argument, NULL, OPT_GP},
        {"programme", required_argument, NULL, OPT_PROGRAMME},
        {"preadmission", required_argument, NULL, OPT_PREADMISSION},
        {NULL, 0, NULL, 0},
    };
    app_t app = {.cli = {.prog = ref__cli_prog(argv[0])}};
    relais_ref_hospital_config_t cfg = {.on_event = ref__cli_log_event, .event_ud = &app.cli};
    const char *programme = "heart-failure";
    const char *preadmission = NULL;
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
        case OPT_PROGRAMME:
            programme = optarg;
            break;
        case OPT_PREADMISSION:
            preadmission = optarg;
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

    char facility[RELAIS_ADDRESS_MAX] = "";
    relais_ref_facility_config_t fcfg;
    int status = configure(&app, &cfg, facility, programme, preadmission, &fcfg);
    if (status == 0) status = ref__cli_open(&app.cli);
    if (status == 0) {
        int rc = relais_ref_hospital_new(&app.hospital, app.cli.agent, &cfg);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot set up the hospital: %s\n", app.cli.prog,
                    relais_strerror(rc));
            status = 1;
        }
    }
    if (status == 0 && preadmission != NULL) {
        int rc = relais_ref_facility_new(&app.facility, app.cli.agent, &fcfg);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot set up preadmissions: %s\n", app.cli.prog,
                    relais_strerror(rc));
            status = 1;
        }
    }
    app.cli.on_ready = send_sample_discharge;
    app.cli.on_ready_ud = &app;
    if (status == 0) status = ref__cli_run(&app.cli);
    ref__cli_close(&app.cli);
    relais_ref_facility_destroy(&app.facility);
    relais_ref_hospital_destroy(&app.hospital);
    relais_ref_programmes_free(&app.programmes);
    return status;
}
