/*
 * relais-sim's options: what a run simulates (territory size, weeks, rates, the answer
 * delay, the broker's crash) and their defaults, parsed from the command line with a
 * readable error for a bad value. The defaults and where they come from are in
 * docs/SIMULATOR.md.
 */
#ifndef RELAIS_SIM_OPTIONS_H
#define RELAIS_SIM_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sim_options {
    unsigned practices, gps_per_practice, nurses, physios, cardiologists, pneumologists;
    unsigned hospitals, facilities, weeks;
    double factor;          /* business ms per real ms */
    unsigned discharges;    /* per practice per week */
    unsigned referrals;     /* per practice per week */
    unsigned preadmissions; /* per practice per week */
    double silent_share;    /* specialists who never answer */
    double offline_share;   /* members of every role who go offline once */
    double decline_rate, no_show_rate;
    double answer_median_h; /* providers' answer delay, median, in working hours */
    double answer_sigma;    /* its log-normal spread */
    double kill_at;         /* when relaisd is killed (SIGKILL) and restarted, as a share of
                             * the run; 0: never */
    uint64_t seed;
    const char *relaisd;
    const char *report_path;
    bool keep;
    bool quiet;
    bool late_not_fatal; /* late requests are reported, and the exit status ignores them */
} sim_options_t;

/* Prints the usage to f. */
void sim_options_usage(FILE *f);

/* Fills o from the command line (defaults for what it does not say). 0, or -1 after
 * printing why to stderr; --help prints the usage and exits 0. */
int sim_options_parse(int argc, char **argv, sim_options_t *o);

#endif /* RELAIS_SIM_OPTIONS_H */
