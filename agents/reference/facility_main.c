/*
 * relais-facility: a reference SMR, EHPAD, HAD or surgery unit (finess address) answering
 * preadmission requests from its beds: accepted with an admission date, waitlisted or
 * refused, by its capacity and its rates (seeded draws, so a simulation replays the same
 * decisions); the chosen requests are admitted at their date with an AdmissionNotice.
 * Configured by --config (a facility file, e.g. deploy/agents/smr.yaml) and the options
 * below, which override the file.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cli.h"

enum {
    OPT_KIND = 1,
    OPT_CAPACITY,
    OPT_ACCEPT_RATE,
    OPT_WAITLIST_RATE,
    OPT_SEED,
    OPT_DECISION_DELAY,
};

/* Options given on the command line, applied over the file. NULL: not given. */
typedef struct overrides {
    const char *kind, *capacity, *accept_rate, *waitlist_rate, *seed, *decision_delay;
} overrides_t;

static void usage(const char *prog)
{
    printf("usage: %s --endpoint E --address finess:NNNNNNNNN [options]\n"
           "A reference facility answering preadmission requests.\n" REF_CLI_COMMON_USAGE
           "                     (a facility file: kind, capacity, rates, seed, delay)\n"
           "  --kind K           smr (default), ehpad, had or surgery\n"
           "  --capacity N       beds (default 10; 0: none)\n"
           "  --accept-rate R    0..1, share of requests taken when a bed is free (default 1)\n"
           "  --waitlist-rate R  0..1, share of the others waitlisted, not refused (default 1)\n"
           "  --seed N           seed of the decisions' draws (default 1)\n"
           "  --decision-delay-ms N  business time before each decision (default 0: at once)\n",
           prog);
}

static int parse_u64(const char *prog, const char *name, const char *arg, uint64_t max,
                     uint64_t *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || arg[0] == '-' || v > max) {
        fprintf(stderr, "%s: --%s wants a number from 0 to %llu, got '%s'\n", prog, name,
                (unsigned long long)max, arg);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_rate(const char *prog, const char *name, const char *arg, double *out)
{
    char *end = NULL;
    errno = 0;
    double v = strtod(arg, &end);
    if (errno != 0 || end == arg || *end != '\0' || !(v >= 0 && v <= 1)) {
        fprintf(stderr, "%s: --%s wants a number from 0 to 1, got '%s'\n", prog, name, arg);
        return -1;
    }
    *out = v;
    return 0;
}

static int apply(const char *prog, const overrides_t *o, relais_ref_facility_config_t *cfg)
{
    static const char *const kinds[] = {"smr", "ehpad", "had", "surgery"};
    uint64_t v = 0;
    if (o->kind != NULL) {
        size_t k = 0;
        while (k < 4 && strcasecmp(o->kind, kinds[k]) != 0) k++;
        if (k == 4) {
            fprintf(stderr, "%s: --kind wants smr, ehpad, had or surgery, got '%s'\n", prog,
                    o->kind);
            return -1;
        }
        cfg->kind = (Relais__V1__PreadmissionRequest__FacilityKind)(k + 1);
    }
    if (o->capacity != NULL) {
        if (parse_u64(prog, "capacity", o->capacity, 100000, &v) != 0) return -1;
        cfg->capacity = (unsigned)v;
    }
    if (o->accept_rate != NULL &&
        parse_rate(prog, "accept-rate", o->accept_rate, &cfg->accept_rate) != 0)
        return -1;
    if (o->waitlist_rate != NULL &&
        parse_rate(prog, "waitlist-rate", o->waitlist_rate, &cfg->waitlist_rate) != 0)
        return -1;
    if (o->seed != NULL) {
        if (parse_u64(prog, "seed", o->seed, UINT64_MAX, &v) != 0) return -1;
        cfg->seed = v;
    }
    if (o->decision_delay != NULL) {
        if (parse_u64(prog, "decision-delay-ms", o->decision_delay, 30ULL * 24 * 3600 * 1000, &v) !=
            0)
            return -1;
        cfg->decision_delay_ms = (int64_t)v;
    }
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        REF_CLI_COMMON_OPTIONS,
        {"kind", required_argument, NULL, OPT_KIND},
        {"capacity", required_argument, NULL, OPT_CAPACITY},
        {"accept-rate", required_argument, NULL, OPT_ACCEPT_RATE},
        {"waitlist-rate", required_argument, NULL, OPT_WAITLIST_RATE},
        {"seed", required_argument, NULL, OPT_SEED},
        {"decision-delay-ms", required_argument, NULL, OPT_DECISION_DELAY},
        {NULL, 0, NULL, 0},
    };
    ref_cli_t cli = {.prog = ref__cli_prog(argv[0])};
    overrides_t o = {0};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int r = ref__cli_option(&cli, c, optarg);
        if (r == 2) {
            usage(cli.prog);
            return 0;
        }
        if (r < 0) return 2;
        if (r == 1) continue;
        switch (c) {
        case OPT_KIND:
            o.kind = optarg;
            break;
        case OPT_CAPACITY:
            o.capacity = optarg;
            break;
        case OPT_ACCEPT_RATE:
            o.accept_rate = optarg;
            break;
        case OPT_WAITLIST_RATE:
            o.waitlist_rate = optarg;
            break;
        case OPT_SEED:
            o.seed = optarg;
            break;
        case OPT_DECISION_DELAY:
            o.decision_delay = optarg;
            break;
        default:
            fprintf(stderr, "see %s --help\n", cli.prog);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", cli.prog, argv[optind]);
        return 2;
    }

    relais_ref_facility_config_t cfg;
    relais_ref_facility_config_defaults(&cfg);
    if (cli.config_path != NULL) {
        char err[512];
        if (relais_ref_facility_config_load(cli.config_path, &cfg, err, sizeof err) != 0) {
            fprintf(stderr, "%s: %s\n", cli.prog, err);
            return 2;
        }
    }
    if (apply(cli.prog, &o, &cfg) != 0) return 2;
    cfg.on_event = ref__cli_log_event;
    cfg.event_ud = &cli;

    relais_ref_facility_t *facility = NULL;
    int status = ref__cli_open(&cli);
    if (status == 0) {
        int rc = relais_ref_facility_new(&facility, cli.agent, &cfg);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot set up the facility: %s\n", cli.prog, relais_strerror(rc));
            status = 1;
        }
    }
    if (status == 0) status = ref__cli_run(&cli);
    ref__cli_close(&cli);
    if (facility != NULL) {
        relais_ref_facility_stats_t st;
        relais_ref_facility_stats(facility, &st);
        fprintf(stderr,
                "%s: requests=%llu accepted=%llu waitlisted=%llu refused=%llu chosen=%llu "
                "cancelled=%llu admitted=%llu\n",
                cli.prog, (unsigned long long)st.requests, (unsigned long long)st.accepted,
                (unsigned long long)st.waitlisted, (unsigned long long)st.refused,
                (unsigned long long)st.chosen, (unsigned long long)st.cancelled,
                (unsigned long long)st.admitted);
    }
    relais_ref_facility_destroy(&facility);
    return status;
}
