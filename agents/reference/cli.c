/*
 * Shared frame of the reference programs (see cli.h): options, the program's own loop with
 * the agent on it, signal handling, event logging, and the provider programs' main.
 * The program owns the loop rather than letting the agent own one, so that its signal
 * handles live on the same loop and everything closes in one orderly uv_run().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "refconfig.h"
#include "relais/keys.h"
#include "relais/log.h"
#include "relais/version.h"

static const char *receipt_status_name(int status)
{
    switch (status) {
    case RELAIS__V1__RECEIPT__STATUS__DELIVERED:
        return "delivered";
    case RELAIS__V1__RECEIPT__STATUS__PROCESSED:
        return "processed";
    case RELAIS__V1__RECEIPT__STATUS__REFUSED:
        return "refused";
    case RELAIS__V1__RECEIPT__STATUS__EXPIRED:
        return "expired";
    case RELAIS__V1__RECEIPT__STATUS__UNCLAIMED:
        return "unclaimed";
    case RELAIS__V1__RECEIPT__STATUS__CLAIMED:
        return "claimed";
    default:
        return "unknown";
    }
}

static const char *fmt_id(const uint8_t *id, char out[37])
{
    if (id == NULL) return strcpy(out, "-");
    return relais_id_format(id, RELAIS_MESSAGE_ID_LEN, out);
}

const char *ref__cli_prog(const char *argv0)
{
    const char *slash = strrchr(argv0, '/');
    return slash != NULL ? slash + 1 : argv0;
}

int ref__cli_option(ref_cli_t *cli, int c, const char *arg)
{
    switch (c) {
    case REF_OPT_ENDPOINT:
        cli->endpoint = arg;
        return 1;
    case REF_OPT_ADDRESS:
        cli->address = arg;
        return 1;
    case REF_OPT_STATE:
        cli->state_path = arg;
        return 1;
    case REF_OPT_KEY:
        cli->key_path = arg;
        return 1;
    case REF_OPT_SERVER_KEY:
        cli->server_key = arg;
        return 1;
    case REF_OPT_CONFIG:
        cli->config_path = arg;
        return 1;
    case REF_OPT_LOG_LEVEL:
        if (relais_log_set_level_name(arg) != 0) {
            fprintf(stderr, "%s: unknown log level '%s'\n", cli->prog, arg);
            return -1;
        }
        return 1;
    case REF_OPT_HELP:
        return 2;
    case REF_OPT_VERSION:
        printf("%s %s\n", cli->prog, relais_version());
        exit(0);
    default:
        return 0;
    }
}

int ref__cli_unsigned(const ref_cli_t *cli, const char *name, const char *arg, unsigned max,
                      unsigned *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (errno != 0 || end == arg || *end != '\0' || v == 0 || v > max) {
        fprintf(stderr, "%s: --%s wants a number from 1 to %u, got '%s'\n", cli->prog, name, max,
                arg);
        return -1;
    }
    *out = (unsigned)v;
    return 0;
}

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    ref_cli_t *cli = ud;
    RLOG(RELAIS_LOG_DEBUG, cli->prog, "state=%s address=%s detail=\"%s\"",
         relais_agent_state_name(state), relais_agent_address(agent), detail != NULL ? detail : "");
    if (state == RELAIS_AGENT_READY && !cli->was_ready) {
        cli->was_ready = true;
        if (cli->on_ready != NULL) cli->on_ready(agent, cli->on_ready_ud);
    }
}

int ref__cli_open(ref_cli_t *cli)
{
    if (cli->endpoint == NULL || cli->address == NULL) {
        fprintf(stderr, "%s: --endpoint and --address are required (see --help)\n", cli->prog);
        return 1;
    }
    int rc = uv_loop_init(&cli->loop);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot create the event loop: %s\n", cli->prog, uv_strerror(rc));
        return 1;
    }
    cli->loop_open = true;
    char server[41] = "", pub[41] = "", sec[41] = "", why[RELAIS_REASON_MAX];
    if ((cli->key_path == NULL) != (cli->server_key == NULL)) {
        fprintf(stderr, "%s: --key and --server-key go together\n", cli->prog);
        return 1;
    }
    if (cli->key_path != NULL &&
        (relais_keyfile_read(cli->key_path, pub, sec, why, sizeof(why)) != 0 ||
         relais_pubkey_read(cli->server_key, server, why, sizeof(why)) != 0)) {
        fprintf(stderr, "%s: %s\n", cli->prog, why);
        return 1;
    }
    relais_agent_options_t opts = {
        .endpoint = cli->endpoint,
        .address = cli->address,
        .software = cli->prog,
        .loop = &cli->loop,
        .state_path = cli->state_path,
        .curve_server_key = server,
        .curve_public_key = pub,
        .curve_secret_key = sec,
    };
    rc = relais_agent_new(&cli->agent, &opts);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot create the agent %s: %s\n", cli->prog, cli->address,
                relais_strerror(rc));
        return 1;
    }
    relais_agent_on_state(cli->agent, on_state, cli);
    return 0;
}

static void on_signal(uv_signal_t *sig, int signum)
{
    ref_cli_t *cli = sig->data;
    if (cli->stopping) return;
    cli->stopping = true;
    RLOG(RELAIS_LOG_INFO, cli->prog, "signal=%d stopping", signum);
    relais_agent_stop(cli->agent);
    uv_close((uv_handle_t *)&cli->sigint, NULL);
    uv_close((uv_handle_t *)&cli->sigterm, NULL);
}

int ref__cli_run(ref_cli_t *cli)
{
    int rc = relais_agent_start(cli->agent);
    if (rc != 0) {
        fprintf(stderr, "%s: cannot start the agent: %s\n", cli->prog, relais_strerror(rc));
        return 1;
    }
    cli->sigint.data = cli;
    cli->sigterm.data = cli;
    uv_signal_init(&cli->loop, &cli->sigint);
    uv_signal_init(&cli->loop, &cli->sigterm);
    uv_signal_start(&cli->sigint, on_signal, SIGINT);
    uv_signal_start(&cli->sigterm, on_signal, SIGTERM);
    RLOG(RELAIS_LOG_INFO, cli->prog, "starting address=%s endpoint=%s", cli->address,
         cli->endpoint);
    uv_run(&cli->loop, UV_RUN_DEFAULT);
    return 0;
}

void ref__cli_close(ref_cli_t *cli)
{
    relais_agent_destroy(&cli->agent);
    if (cli->loop_open) {
        /* Lets close callbacks of a failed start run before the loop is released. */
        uv_run(&cli->loop, UV_RUN_NOWAIT);
        int rc = uv_loop_close(&cli->loop);
        if (rc != 0) {
            RLOG(RELAIS_LOG_WARN, cli->prog, "loop closed with handles open: %s", uv_strerror(rc));
        }
        cli->loop_open = false;
    }
}

void ref__cli_log_event(const relais_ref_event_t *ev, void *ud)
{
    ref_cli_t *cli = ud;
    const char *type = relais_ref_body_title(ev->body_case);
    char conv[37], msg[37];
    fmt_id(ev->conversation_id, conv);
    fmt_id(ev->message_id, msg);
    switch (ev->kind) {
    case RELAIS_REF_EV_RECEIVED:
        RLOG(RELAIS_LOG_INFO, cli->prog, "received type=%s from=%s ref=%s conv=%s state=\"%s\"",
             type, ev->from, ev->ref, conv, ev->state);
        break;
    case RELAIS_REF_EV_ACCEPTED:
        RLOG(RELAIS_LOG_INFO, cli->prog,
             "accepted type=%s to=%s ref=%s msg=%s conv=%s duplicate=%d state=\"%s\"", type, ev->to,
             ev->ref, msg, conv, ev->duplicate, ev->state);
        break;
    case RELAIS_REF_EV_SEND_FAILED:
        RLOG(RELAIS_LOG_WARN, cli->prog, "send_failed type=%s to=%s ref=%s err=%s reason=\"%s\"",
             type, ev->to, ev->ref, relais_err_name(ev->status), ev->reason);
        break;
    case RELAIS_REF_EV_RECEIPT:
        RLOG(RELAIS_LOG_INFO, cli->prog, "receipt status=%s recipient=%s msg=%s reason=\"%s\"",
             receipt_status_name(ev->status), ev->to, msg, ev->reason);
        break;
    case RELAIS_REF_EV_NOTICE:
        RLOG(ev->milestone == RELAIS_REF_MS_FAILED ? RELAIS_LOG_WARN : RELAIS_LOG_INFO, cli->prog,
             "notice ref=%s state=\"%s\"", ev->ref, ev->state);
        break;
    }
}

/* ---- Provider programs --------------------------------------------------------------- */

/* Parses "YYYY-MM-DDTHH:MM" in local time into milliseconds since the epoch. */
static int parse_local_time(const char *arg, int64_t *out)
{
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *end = strptime(arg, "%Y-%m-%dT%H:%M", &tm);
    if (end == NULL || *end != '\0') return -1;
    tm.tm_isdst = -1;
    time_t t = mktime(&tm);
    if (t == (time_t)-1) return -1;
    *out = (int64_t)t * 1000;
    return 0;
}

static void provider_usage(const char *prog, const char *role, bool needs_specialty,
                           bool home_visits)
{
    printf("usage: %s --endpoint E --address rpps:NNNNNNNNNNN [options]\n"
           "A reference %s: answers appointment requests and care tasks from a slot "
           "calendar.\n" REF_CLI_COMMON_USAGE "  --specialty S      the specialty served%s\n"
           "  --slots N          N consecutive slots (default 16), rather than working hours\n"
           "  --slot-minutes M   length of a slot (default 30)\n"
           "  --first-slot T     start of the first slot, YYYY-MM-DDTHH:MM local time\n"
           "                     (default: the next whole hour; with working hours: now)\n"
           "  --horizon-days D   working hours of D days instead of consecutive slots\n"
           "  --hours H          working hours, UTC (default 08:00-12:00,14:00-18:00)\n"
           "  --capacity N       patients per slot (default 1)\n"
           "  --hold-seconds S   how long offered slots stay held (default 600)\n"
           "  --max-offer N      slots per offer, up to 8 (default 3)\n"
           "  --report-outcomes  report each booked slot's outcome when it ends\n"
           "  --location L       where office slots take place (default cabinet)\n"
           "  --home-visits      slots are home visits%s\n"
           "  --office           slots are office appointments%s\n",
           prog, role, needs_specialty ? " (required), e.g. cardiology" : "",
           home_visits ? " (default)" : "", home_visits ? "" : " (default)");
}

enum {
    OPT_SPECIALTY = 1,
    OPT_SLOTS,
    OPT_SLOT_MINUTES,
    OPT_FIRST_SLOT,
    OPT_HORIZON_DAYS,
    OPT_HOURS,
    OPT_CAPACITY,
    OPT_HOLD_SECONDS,
    OPT_MAX_OFFER,
    OPT_REPORT_OUTCOMES,
    OPT_LOCATION,
    OPT_HOME_VISITS,
    OPT_OFFICE,
};

/* The provider options given on the command line: 0 or NULL when absent. */
typedef struct provider_opts {
    const char *specialty, *location, *hours;
    unsigned slots, slot_minutes, horizon_days, capacity, hold_s, max_offer;
    int64_t first_slot_ms;
    bool report_outcomes;
    int home_visits; /* -1 absent */
} provider_opts_t;

/* Parses one provider option into o. 0, or -1 after printing why. */
static int provider_option(const ref_cli_t *cli, int c, const char *arg, provider_opts_t *o)
{
    switch (c) {
    case OPT_SPECIALTY:
        o->specialty = arg;
        return 0;
    case OPT_SLOTS:
        return ref__cli_unsigned(cli, "slots", arg, 10000, &o->slots);
    case OPT_SLOT_MINUTES:
        return ref__cli_unsigned(cli, "slot-minutes", arg, 24 * 60, &o->slot_minutes);
    case OPT_FIRST_SLOT:
        if (parse_local_time(arg, &o->first_slot_ms) == 0) return 0;
        fprintf(stderr, "%s: --first-slot wants YYYY-MM-DDTHH:MM, got '%s'\n", cli->prog, arg);
        return -1;
    case OPT_HORIZON_DAYS:
        return ref__cli_unsigned(cli, "horizon-days", arg, 366, &o->horizon_days);
    case OPT_HOURS:
        o->hours = arg;
        return 0;
    case OPT_CAPACITY:
        return ref__cli_unsigned(cli, "capacity", arg, 100, &o->capacity);
    case OPT_HOLD_SECONDS:
        return ref__cli_unsigned(cli, "hold-seconds", arg, 7 * 24 * 3600, &o->hold_s);
    case OPT_MAX_OFFER:
        return ref__cli_unsigned(cli, "max-offer", arg, 8, &o->max_offer);
    case OPT_REPORT_OUTCOMES:
        o->report_outcomes = true;
        return 0;
    case OPT_LOCATION:
        o->location = arg;
        return 0;
    case OPT_HOME_VISITS:
        o->home_visits = 1;
        return 0;
    case OPT_OFFICE:
        o->home_visits = 0;
        return 0;
    default:
        fprintf(stderr, "see %s --help\n", cli->prog);
        return -1;
    }
}

/* Lays the command line's options over cfg (the program's defaults and the file's). */
static void provider_apply(const provider_opts_t *o, relais_ref_provider_config_t *cfg)
{
    if (o->specialty != NULL) cfg->specialty = o->specialty;
    if (o->location != NULL) cfg->location = o->location;
    if (o->hours != NULL) cfg->hours = o->hours;
    if (o->slots != 0) {
        cfg->slot_count = o->slots;
        cfg->horizon_days = 0; /* consecutive slots asked for */
    }
    if (o->horizon_days != 0) cfg->horizon_days = o->horizon_days;
    if (o->slot_minutes != 0) cfg->slot_minutes = o->slot_minutes;
    if (o->first_slot_ms != 0) cfg->first_slot_ms = o->first_slot_ms;
    if (o->capacity != 0) cfg->capacity = o->capacity;
    if (o->hold_s != 0) cfg->hold_ms = o->hold_s * 1000;
    if (o->max_offer != 0) cfg->max_offer = o->max_offer;
    if (o->report_outcomes) cfg->report_outcomes = true;
    if (o->home_visits >= 0) cfg->home_visits = o->home_visits == 1;
}

int ref__cli_provider_main(int argc, char **argv, const char *role, bool home_visits,
                           bool needs_specialty)
{
    static const struct option longopts[] = {
        REF_CLI_COMMON_OPTIONS,
        {"specialty", required_argument, NULL, OPT_SPECIALTY},
        {"slots", required_argument, NULL, OPT_SLOTS},
        {"slot-minutes", required_argument, NULL, OPT_SLOT_MINUTES},
        {"first-slot", required_argument, NULL, OPT_FIRST_SLOT},
        {"horizon-days", required_argument, NULL, OPT_HORIZON_DAYS},
        {"hours", required_argument, NULL, OPT_HOURS},
        {"capacity", required_argument, NULL, OPT_CAPACITY},
        {"hold-seconds", required_argument, NULL, OPT_HOLD_SECONDS},
        {"max-offer", required_argument, NULL, OPT_MAX_OFFER},
        {"report-outcomes", no_argument, NULL, OPT_REPORT_OUTCOMES},
        {"location", required_argument, NULL, OPT_LOCATION},
        {"home-visits", no_argument, NULL, OPT_HOME_VISITS},
        {"office", no_argument, NULL, OPT_OFFICE},
        {NULL, 0, NULL, 0},
    };
    ref_cli_t cli = {.prog = ref__cli_prog(argv[0])};
    provider_opts_t o = {.home_visits = -1};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        int r = ref__cli_option(&cli, c, optarg);
        if (r == 2) {
            provider_usage(cli.prog, role, needs_specialty, home_visits);
            return 0;
        }
        if (r < 0) return 2;
        if (r == 0 && provider_option(&cli, c, optarg, &o) != 0) return 2;
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", cli.prog, argv[optind]);
        return 2;
    }
    if (o.slots != 0 && o.horizon_days != 0) {
        fprintf(stderr, "%s: --slots and --horizon-days exclude each other\n", cli.prog);
        return 2;
    }

    /* The program's defaults, then the file, then the command line. */
    relais_ref_provider_config_t cfg = {
        .role = role,
        .home_visits = home_visits,
        .on_event = ref__cli_log_event,
        .event_ud = &cli,
    };
    ref_cfg_t *doc = NULL;
    if (cli.config_path != NULL) {
        char err[1024];
        int rc = relais_ref_provider_config_load(cli.config_path, &cfg, &doc, err, sizeof err);
        if (rc != 0) {
            fprintf(stderr, "%s: %s\n", cli.prog, rc == -ENOMEM ? "out of memory" : err);
            return 2;
        }
        if (strcmp(cfg.role, role) != 0) {
            fprintf(stderr, "%s: %s configures a %s, not a %s\n", cli.prog, cli.config_path,
                    cfg.role, role);
            ref__cfg_free(&doc);
            return 2;
        }
    }
    provider_apply(&o, &cfg);
    if (needs_specialty && (cfg.specialty == NULL || cfg.specialty[0] == '\0')) {
        fprintf(stderr, "%s: --specialty (or specialty: in --config) is required\n", cli.prog);
        ref__cfg_free(&doc);
        return 2;
    }

    relais_ref_provider_t *provider = NULL;
    int status = ref__cli_open(&cli);
    if (status == 0) {
        int rc = relais_ref_provider_new(&provider, cli.agent, &cfg);
        if (rc != 0) {
            fprintf(stderr, "%s: cannot set up the %s: %s\n", cli.prog, role, relais_strerror(rc));
            status = 1;
        }
    }
    ref__cfg_free(&doc); /* the provider copied what it keeps */
    if (status == 0) status = ref__cli_run(&cli);
    ref__cli_close(&cli);
    relais_ref_provider_destroy(&provider);
    return status;
}
