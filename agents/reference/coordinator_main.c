/*
 * relais-coordinator: a reference CPTS coordination desk. It receives the escalations of
 * missed deadlines, logs them, and answers each with a Note naming the next candidate of
 * its --candidate list (round robin, never the one who was responsible), or saying there
 * is none.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#define MAX_CANDIDATES 16

enum {
    OPT_CANDIDATE = 1,
};

static void usage(const char *prog)
{
    printf(
        "usage: %s --endpoint E --address staff:NAME@TERRITORY [options]\n"
        "A reference CPTS coordinator: receives escalations and reassigns.\n" REF_CLI_COMMON_USAGE
        "  --candidate A      an address to reassign escalated requests to; repeat for\n"
        "                     several (at most %d), used in turn\n",
        prog, MAX_CANDIDATES);
}

/* Logs each escalation as key=value, without patient data (the reason names ids only). */
static void log_escalation(const relais_ref_escalation_t *esc, void *ud)
{
    ref_cli_t *cli = ud;
    char conv[37] = "-";
    if (esc->conversation_id != NULL) relais_id_format(esc->conversation_id, 16, conv);
    fprintf(stderr,
            "%s: escalation from=%s conv=%s body=%s responsible=%s reassigned_to=%s "
            "reason=\"%s\"\n",
            cli->prog, esc->from, conv, esc->original_body[0] ? esc->original_body : "-",
            esc->responsible[0] ? esc->responsible : "-",
            esc->reassigned_to[0] ? esc->reassigned_to : "-", esc->reason);
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        REF_CLI_COMMON_OPTIONS,
        {"candidate", required_argument, NULL, OPT_CANDIDATE},
        {NULL, 0, NULL, 0},
    };
    ref_cli_t cli = {.prog = ref__cli_prog(argv[0])};
    const char *candidates[MAX_CANDIDATES];
    relais_ref_coordinator_config_t cfg = {.candidates = candidates,
                                           .on_escalation = log_escalation,
                                           .on_event = ref__cli_log_event,
                                           .event_ud = &cli};
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
        case OPT_CANDIDATE:
            if (cfg.n_candidates == MAX_CANDIDATES) {
                fprintf(stderr, "%s: at most %d --candidate\n", cli.prog, MAX_CANDIDATES);
                return 2;
            }
            candidates[cfg.n_candidates++] = optarg;
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

    relais_ref_coordinator_t *coord = NULL;
    int status = ref__cli_open(&cli);
    if (status == 0) {
        int rc = relais_ref_coordinator_new(&coord, cli.agent, &cfg);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot set up the coordinator: %s\n", cli.prog,
                    relais_strerror(rc));
            status = 1;
        }
    }
    if (status == 0) status = ref__cli_run(&cli);
    ref__cli_close(&cli);
    relais_ref_coordinator_destroy(&coord);
    return status;
}
