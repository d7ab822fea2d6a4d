/*
 * relais-sim's command line (see sim_options.h).
 */
#include <getopt.h>
#include <stdlib.h>

#include "sim_options.h"

void sim_options_usage(FILE *f)
{
    fprintf(f, "usage: relais-sim [options]\n"
               "Runs a simulated CPTS territory against a real relaisd and prints a report.\n"
               "  --practices N        GP practices, each with an assistant (20)\n"
               "  --gps N              GPs per practice (2)\n"
               "  --nurses N           (70)   --physios N (45)\n"
               "  --cardiologists N    (25)   --pneumologists N (20)\n"
               "  --hospitals N        (3)    --facilities N (3, preadmission facilities)\n"
               "  --weeks N            simulated weeks (4)\n"
               "  --factor F           simulated ms per real ms (40000: 4 weeks in ~61 s)\n"
               "  --discharges N       discharges per practice per week (8)\n"
               "  --referrals N        referrals per practice per week (10)\n"
               "  --preadmissions N    preadmissions per practice per week (1)\n"
               "  --silent SHARE       share of specialists who never answer (0.1)\n"
               "  --offline SHARE      share of every role's members offline once, 2-12 h;\n"
               "                       at least one of each role (0.1)\n"
               "  --decline RATE       busy-decline rate of a provider half booked (0.1)\n"
               "  --answer-median H    providers' answer delay, median, working hours (2)\n"
               "  --answer-sigma S     its log-normal spread (1.2; 0: answer at once)\n"
               "  --kill-broker AT     kill -9 relaisd and restart it at this share of the\n"
               "                       run (0.5; 0: never)\n"
               "  --no-show RATE       patients' no-show rate (0.05)\n"
               "  --seed N             random seed (1)\n"
               "  --relaisd PATH       the broker to run (default: the build's)\n"
               "  --report FILE        also write the report to FILE\n"
               "  --keep               keep the run's data directory\n"
               "  --quiet              only the report\n"
               "  --late-not-fatal     report late requests without failing the run (for\n"
               "                       the test suite: deadlines depend on the machine)\n");
}

int sim_options_parse(int argc, char **argv, sim_options_t *o)
{
    *o = (sim_options_t){.practices = 20,
                         .gps_per_practice = 2,
                         .nurses = 70,
                         .physios = 45,
                         .cardiologists = 25,
                         .pneumologists = 20,
                         .hospitals = 3,
                         .facilities = 3,
                         .weeks = 4,
                         .factor = 40000,
                         .discharges = 8,
                         .referrals = 10,
                         .preadmissions = 1,
                         .silent_share = 0.1,
                         .offline_share = 0.1,
                         .decline_rate = 0.1,
                         .no_show_rate = 0.05,
                         .answer_median_h = 2,
                         .answer_sigma = 1.2,
                         .kill_at = 0.5,
                         .seed = 1};
    enum {
        O_PRACTICES = 1,
        O_GPS,
        O_NURSES,
        O_PHYSIOS,
        O_CARDIO,
        O_PNEUMO,
        O_HOSPITALS,
        O_FACILITIES,
        O_WEEKS,
        O_FACTOR,
        O_DISCHARGES,
        O_REFERRALS,
        O_PREADMISSIONS,
        O_SILENT,
        O_OFFLINE,
        O_DECLINE,
        O_NOSHOW,
        O_ANSWER_MEDIAN,
        O_ANSWER_SIGMA,
        O_KILL,
        O_SEED,
        O_RELAISD,
        O_REPORT,
        O_KEEP,
        O_QUIET,
        O_LATE_NOT_FATAL,
        O_HELP
    };
    static const struct option opts[] = {
        {"practices", required_argument, NULL, O_PRACTICES},
        {"gps", required_argument, NULL, O_GPS},
        {"nurses", required_argument, NULL, O_NURSES},
        {"physios", required_argument, NULL, O_PHYSIOS},
        {"cardiologists", required_argument, NULL, O_CARDIO},
        {"pneumologists", required_argument, NULL, O_PNEUMO},
        {"hospitals", required_argument, NULL, O_HOSPITALS},
        {"facilities", required_argument, NULL, O_FACILITIES},
        {"weeks", required_argument, NULL, O_WEEKS},
        {"factor", required_argument, NULL, O_FACTOR},
        {"discharges", required_argument, NULL, O_DISCHARGES},
        {"referrals", required_argument, NULL, O_REFERRALS},
        {"preadmissions", required_argument, NULL, O_PREADMISSIONS},
        {"silent", required_argument, NULL, O_SILENT},
        {"offline", required_argument, NULL, O_OFFLINE},
        {"decline", required_argument, NULL, O_DECLINE},
        {"no-show", required_argument, NULL, O_NOSHOW},
        {"answer-median", required_argument, NULL, O_ANSWER_MEDIAN},
        {"answer-sigma", required_argument, NULL, O_ANSWER_SIGMA},
        {"kill-broker", required_argument, NULL, O_KILL},
        {"seed", required_argument, NULL, O_SEED},
        {"relaisd", required_argument, NULL, O_RELAISD},
        {"report", required_argument, NULL, O_REPORT},
        {"keep", no_argument, NULL, O_KEEP},
        {"quiet", no_argument, NULL, O_QUIET},
        {"late-not-fatal", no_argument, NULL, O_LATE_NOT_FATAL},
        {"help", no_argument, NULL, O_HELP},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        char *end = NULL;
        double d = optarg != NULL ? strtod(optarg, &end) : 0;
        bool number = optarg != NULL && end != optarg && *end == '\0' && d >= 0;
        unsigned u = (unsigned)d;
        bool count = number && d == (double)u && d <= 100000;
        bool share = number && d <= 1.0;
        switch (c) {
        case O_PRACTICES:
            if (!count || !u) goto bad;
            o->practices = u;
            break;
        case O_GPS:
            if (!count || !u || u > 8) goto bad;
            o->gps_per_practice = u;
            break;
        case O_NURSES:
            if (!count || !u) goto bad;
            o->nurses = u;
            break;
        case O_PHYSIOS:
            if (!count || !u) goto bad;
            o->physios = u;
            break;
        case O_CARDIO:
            if (!count || !u) goto bad;
            o->cardiologists = u;
            break;
        case O_PNEUMO:
            if (!count || !u) goto bad;
            o->pneumologists = u;
            break;
        case O_HOSPITALS:
            if (!count || !u) goto bad;
            o->hospitals = u;
            break;
        case O_FACILITIES:
            if (!count || !u || u > 8) goto bad;
            o->facilities = u;
            break;
        case O_WEEKS:
            if (!count || !u || u > 52) goto bad;
            o->weeks = u;
            break;
        case O_FACTOR:
            if (!number || d < 1 || d > 1000000) goto bad;
            o->factor = d;
            break;
        case O_DISCHARGES:
            if (!count) goto bad;
            o->discharges = u;
            break;
        case O_REFERRALS:
            if (!count) goto bad;
            o->referrals = u;
            break;
        case O_PREADMISSIONS:
            if (!count) goto bad;
            o->preadmissions = u;
            break;
        case O_SILENT:
            if (!share) goto bad;
            o->silent_share = d;
            break;
        case O_OFFLINE:
            if (!share) goto bad;
            o->offline_share = d;
            break;
        case O_DECLINE:
            if (!share) goto bad;
            o->decline_rate = d;
            break;
        case O_NOSHOW:
            if (!share) goto bad;
            o->no_show_rate = d;
            break;
        case O_ANSWER_MEDIAN:
            if (!number || d > 200) goto bad;
            o->answer_median_h = d;
            break;
        case O_ANSWER_SIGMA:
            if (!number || d > 3) goto bad;
            o->answer_sigma = d;
            break;
        case O_KILL:
            if (!number || d >= 1) goto bad;
            o->kill_at = d;
            break;
        case O_SEED:
            if (!number) goto bad;
            o->seed = (uint64_t)d;
            break;
        case O_RELAISD:
            o->relaisd = optarg;
            break;
        case O_REPORT:
            o->report_path = optarg;
            break;
        case O_KEEP:
            o->keep = true;
            break;
        case O_QUIET:
            o->quiet = true;
            break;
        case O_LATE_NOT_FATAL:
            o->late_not_fatal = true;
            break;
        case O_HELP:
            sim_options_usage(stdout);
            exit(0);
        default:
            sim_options_usage(stderr);
            return -1;
        }
        continue;
    bad:
        fprintf(stderr, "relais-sim: invalid value '%s' for --%s\n", optarg, opts[c - 1].name);
        return -1;
    }
    if (optind < argc) {
        fprintf(stderr, "relais-sim: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    return 0;
}
