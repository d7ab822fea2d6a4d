/*
 * relaisd: the Relais broker's command line.
 *
 * Parses options, opens the broker, prints one ready line on stdout once the socket is
 * bound (with the real endpoint, so tests can bind port 0 and read the port back), and
 * runs the loop until SIGTERM or SIGINT, after which it shuts down in order and exits 0.
 *
 * A start that cannot succeed fails before it touches anything: the options, the bind
 * endpoint's form, the directory, the key and the data directory's parent are checked
 * first (preflight), and only then is the data directory created and the store opened.
 * Configuration errors exit with 78 (EX_CONFIG), which the systemd unit's
 * RestartPreventExitStatus keeps from being restarted in a loop; other failures to start
 * (a port in use, a disk error) exit 1, and systemd retries them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "broker.h"
#include "directory.h"
#include "relais/keys.h"
#include "relais/log.h"
#include "relais/version.h"
#include "relaisd_config.h"

static void usage(FILE *out)
{
    fprintf(
        out,
        "usage: relaisd --bind ENDPOINT --data DIR --directory FILE --curve-key FILE [options]\n"
        "       relaisd --bind ENDPOINT --data DIR --insecure [--directory FILE] [options]\n"
        "       relaisd --config FILE [options]\n"
        "\n"
        "  --config FILE          read the options below from FILE (YAML: one key per option,\n"
        "                         underscores for dashes: curve_key: /etc/relais/broker.key;\n"
        "                         insecure and log_json take true or false); options given on\n"
        "                         the command line override the file's\n"
        "  --bind ENDPOINT        ZeroMQ endpoint to listen on (tcp://0.0.0.0:7400;\n"
        "                         port 0 picks a free port, printed in the ready line)\n"
        "  --data DIR             data directory (created if missing)\n"
        "  --directory FILE       the territory directory (YAML): agents, keys, roles\n"
        "  --curve-key FILE       the broker's keypair (relaisctl keygen); agents need its\n"
        "                         public key. CURVE encrypts and authenticates every session\n"
        "  --insecure             development mode: no encryption, agents declare their\n"
        "                         address in Hello; refused with a production directory.\n"
        "                         Never use it with real patient data\n"
        "  --broker-id ID         name of this broker in Welcome (default relaisd)\n"
        "  --heartbeat-ms N       heartbeat interval; silent sessions die after 3 (5000)\n"
        "  --max-frame-bytes N    largest frame accepted (1048576)\n"
        "  --max-recipients N     recipients per message, at most 64 (64)\n"
        "  --default-ttl-ms N     expiry of messages that set none (7 days)\n"
        "  --max-ttl-ms N         later deadlines are brought forward to this (90 days)\n"
        "  --durability MODE      full (default): Accepted survives a power loss;\n"
        "                         os: survives a crash of relaisd, not of the machine\n"
        "  --dedup-retention-ms N how long a (sender, message id) is remembered (7 days)\n"
        "  --ack-timeout-ms N     resend a delivery left unacknowledged this long (60000)\n"
        "  --dead-letter-retention-days N  dead letters (expired or refused deliveries, with\n"
        "                         their content) are forgotten after N days, journaled\n"
        "                         (30; 0: kept until purged by hand)\n"
        "  --audit-rotate-mb N    the audit journal is rotated at N MiB, its chain going on\n"
        "                         in the next file (64; 0: never)\n"
        "  --audit-retention-days N  rotated journal files are removed after N days,\n"
        "                         journaled (365; 0: kept)\n"
        "  --store-reserve-kb N   disk space kept in reserve beside the store, given back\n"
        "                         when the disk fills so that acknowledgements are still\n"
        "                         recorded (8192; 0: none)\n"
        "  --log-level LEVEL      error, warn, info, debug (info)\n"
        "  --log-json             log as JSON lines\n"
        "  --admin HOST:PORT|off  admin HTTP listener: /metrics, /healthz, /readyz, /api/v1/,\n"
        "                         the dashboard (127.0.0.1:7480; port 0 picks a free port,\n"
        "                         logged as 'admin listening endpoint=')\n"
        "  --admin-token FILE     bearer token (mode 0600) the admin listener requires;\n"
        "                         mandatory when HOST is not a loopback address\n"
        "  --version              print the version and exit\n"
        "  --help                 this text\n"
        "\n"
        "Exit status: 0 after SIGTERM or SIGINT; 78 (EX_CONFIG) for a configuration error,\n"
        "which restarting cannot fix; 1 when it could not start for another reason.\n");
}

/* sysexits.h's EX_CONFIG: what systemd's RestartPreventExitStatus names in our unit. */
#define EXIT_CONFIG 78

/*
 * Checks what can be checked without creating anything; prints the first problem and
 * returns -1. The broker loads the directory and the key again when it opens: this pass
 * exists so that a mistake costs no data directory, no database and no journal.
 */
static int preflight(const broker_config_t *cfg)
{
    const char *ep = cfg->bind;
    if (strstr(ep, "://") == NULL) {
        bool hostport = strchr(ep, ':') != NULL && ep[0] != '/';
        if (hostport)
            fprintf(stderr, "relaisd: --bind %s: an endpoint names its transport: did you mean "
                            "tcp://%s?\n", ep, ep);
        else
            fprintf(stderr, "relaisd: --bind %s: an endpoint names its transport: "
                            "tcp://HOST:PORT or ipc:///PATH\n", ep);
        return -1;
    }
    char reason[512];
    if (cfg->directory_path != NULL) {
        directory_t *d = NULL;
        if (directory_load(cfg->directory_path, &d, reason, sizeof reason) != 0) {
            fprintf(stderr, "relaisd: --directory: %s\n", reason);
            return -1;
        }
        bool production = directory_production(d);
        directory_destroy(&d);
        if (cfg->insecure && production) {
            fprintf(stderr, "relaisd: refusing --insecure: %s is a production directory (set "
                            "production: false for development)\n", cfg->directory_path);
            return -1;
        }
    }
    if (!cfg->insecure) {
        char pub[41], sec[41];
        int rc = relais_keyfile_read(cfg->curve_key_path, pub, sec, reason, sizeof reason);
        memset(sec, 0, sizeof sec);
        if (rc != 0) {
            fprintf(stderr, "relaisd: --curve-key: %s\n", reason);
            return -1;
        }
    }
    struct stat st;
    if (stat(cfg->data_dir, &st) == 0) {
        if (!S_ISDIR(st.st_mode)) {
            fprintf(stderr, "relaisd: --data %s: not a directory\n", cfg->data_dir);
            return -1;
        }
    } else {
        /* Created below, one level only: a missing parent is a mistyped path. */
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", cfg->data_dir);
        char *slash = strrchr(parent, '/');
        if (slash != NULL && slash != parent) *slash = '\0';
        else snprintf(parent, sizeof parent, "%s", slash == parent ? "/" : ".");
        if (stat(parent, &st) != 0 || !S_ISDIR(st.st_mode)) {
            fprintf(stderr, "relaisd: --data %s: its parent directory %s does not exist\n",
                    cfg->data_dir, parent);
            return -1;
        }
    }
    return 0;
}

static int parse_num(const char *who, const char *opt, const char *s, long long min,
                     long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || end == s || v < min || v > max) {
        fprintf(stderr, "%s: %s wants a number from %lld to %lld, got '%s'\n", who, opt, min, max,
                s);
        return -1;
    }
    *out = v;
    return 0;
}

enum {
    OPT_DIRECTORY = 200,
    OPT_CURVEKEY,
    OPT_HB = 256,
    OPT_MAXFRAME,
    OPT_MAXRCPT,
    OPT_TTL,
    OPT_MAXTTL,
    OPT_LOGLEVEL,
    OPT_LOGJSON,
    OPT_ID,
    OPT_DURABILITY,
    OPT_DEDUP,
    OPT_ACKTIMEOUT,
    OPT_RESERVE,
    OPT_DEADRETENTION,
    OPT_AUDITROTATE,
    OPT_AUDITRETENTION,
    OPT_ADMIN,
    OPT_ADMINTOKEN,
    OPT_CONFIG
};

/* Which required options were given, by the file or the command line. */
typedef struct given {
    bool bind, data;
} given_t;

/*
 * Applies the options of argv to cfg. who prefixes messages: "relaisd", or "FILE:LINE" for
 * a setting of the configuration file, which main() passes here one option at a time.
 */
static int parse_args(int argc, char **argv, broker_config_t *cfg, const char *who,
                      given_t *given)
{
    static const struct option opts[] = {
        {"bind", required_argument, NULL, 'b'},
        {"data", required_argument, NULL, 'd'},
        {"insecure", no_argument, NULL, 'i'},
        {"directory", required_argument, NULL, OPT_DIRECTORY},
        {"curve-key", required_argument, NULL, OPT_CURVEKEY},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"broker-id", required_argument, NULL, OPT_ID},
        {"heartbeat-ms", required_argument, NULL, OPT_HB},
        {"max-frame-bytes", required_argument, NULL, OPT_MAXFRAME},
        {"max-recipients", required_argument, NULL, OPT_MAXRCPT},
        {"default-ttl-ms", required_argument, NULL, OPT_TTL},
        {"max-ttl-ms", required_argument, NULL, OPT_MAXTTL},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"log-json", no_argument, NULL, OPT_LOGJSON},
        {"durability", required_argument, NULL, OPT_DURABILITY},
        {"dedup-retention-ms", required_argument, NULL, OPT_DEDUP},
        {"ack-timeout-ms", required_argument, NULL, OPT_ACKTIMEOUT},
        {"store-reserve-kb", required_argument, NULL, OPT_RESERVE},
        {"dead-letter-retention-days", required_argument, NULL, OPT_DEADRETENTION},
        {"audit-rotate-mb", required_argument, NULL, OPT_AUDITROTATE},
        {"audit-retention-days", required_argument, NULL, OPT_AUDITRETENTION},
        {"admin", required_argument, NULL, OPT_ADMIN},
        {"admin-token", required_argument, NULL, OPT_ADMINTOKEN},
        {"config", required_argument, NULL, OPT_CONFIG},
        {NULL, 0, NULL, 0},
    };
    long long v;
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'b':
            cfg->bind = optarg;
            given->bind = true;
            break;
        case 'd':
            cfg->data_dir = optarg;
            given->data = true;
            break;
        case 'i':
            cfg->insecure = true;
            break;
        case OPT_DIRECTORY:
            cfg->directory_path = optarg;
            break;
        case OPT_CURVEKEY:
            cfg->curve_key_path = optarg;
            break;
        case 'h':
            usage(stdout);
            exit(0);
        case 'V':
            printf("relaisd %s\n", relais_version());
            exit(0);
        case OPT_ID:
            cfg->broker_id = optarg;
            break;
        case OPT_HB:
            if (parse_num(who, "--heartbeat-ms", optarg, 50, 600000, &v) < 0) return -1;
            cfg->heartbeat_ms = (unsigned)v;
            break;
        case OPT_MAXFRAME:
            if (parse_num(who, "--max-frame-bytes", optarg, 1024, 64 << 20, &v) < 0) return -1;
            cfg->max_frame_bytes = (size_t)v;
            break;
        case OPT_MAXRCPT:
            if (parse_num(who, "--max-recipients", optarg, 1, RELAIS_MAX_RECIPIENTS, &v) < 0) return -1;
            cfg->max_recipients = (unsigned)v;
            break;
        case OPT_TTL:
            if (parse_num(who, "--default-ttl-ms", optarg, 1000, 1LL << 40, &v) < 0) return -1;
            cfg->default_ttl_ms = v;
            break;
        case OPT_MAXTTL:
            if (parse_num(who, "--max-ttl-ms", optarg, 1000, 1LL << 40, &v) < 0) return -1;
            cfg->max_ttl_ms = v;
            break;
        case OPT_LOGLEVEL:
            if (relais_log_set_level_name(optarg) < 0) {
                fprintf(stderr, "%s: --log-level wants error, warn, info or debug\n", who);
                return -1;
            }
            break;
        case OPT_LOGJSON:
            relais_log_set_json(true);
            break;
        case OPT_DURABILITY:
            if (strcmp(optarg, "full") == 0)
                cfg->durability = STORE_DURABLE_FULL;
            else if (strcmp(optarg, "os") == 0)
                cfg->durability = STORE_DURABLE_OS;
            else {
                fprintf(stderr, "%s: --durability wants full or os\n", who);
                return -1;
            }
            break;
        case OPT_DEDUP:
            if (parse_num(who, "--dedup-retention-ms", optarg, 1000, 1LL << 40, &v) < 0) return -1;
            cfg->dedup_retention_ms = v;
            break;
        case OPT_ACKTIMEOUT:
            if (parse_num(who, "--ack-timeout-ms", optarg, 100, 1LL << 40, &v) < 0) return -1;
            cfg->ack_timeout_ms = v;
            break;
        case OPT_DEADRETENTION:
            if (parse_num(who, "--dead-letter-retention-days", optarg, 0, 36500, &v) < 0) return -1;
            cfg->dead_letter_retention_ms = v * 24LL * 3600 * 1000;
            break;
        case OPT_AUDITROTATE:
            if (parse_num(who, "--audit-rotate-mb", optarg, 0, 1 << 20, &v) < 0) return -1;
            cfg->audit_rotate_bytes = (uint64_t)v << 20;
            break;
        case OPT_AUDITRETENTION:
            if (parse_num(who, "--audit-retention-days", optarg, 0, 36500, &v) < 0) return -1;
            cfg->audit_retention_ms = v * 24LL * 3600 * 1000;
            break;
        case OPT_RESERVE:
            if (parse_num(who, "--store-reserve-kb", optarg, 0, 1LL << 30, &v) < 0) return -1;
            cfg->store_reserve_bytes = (size_t)v * 1024;
            break;
        case OPT_ADMIN:
            cfg->admin_bind = optarg;
            break;
        case OPT_ADMINTOKEN:
            cfg->admin_token_path = optarg;
            break;
        case OPT_CONFIG:
            break; /* read by main() before the other options */
        default:
            usage(stderr);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", who, argv[optind]);
        return -1;
    }
    return 0;
}

/* What the file and the command line must have given between them. */
static int check_required(broker_config_t *cfg, const given_t *given)
{
    if (!given->bind || !given->data) {
        fprintf(stderr, "relaisd: --bind and --data are required\n");
        usage(stderr);
        return -1;
    }
    if (!cfg->insecure && (cfg->directory_path == NULL || cfg->curve_key_path == NULL)) {
        fprintf(stderr, "relaisd: --directory and --curve-key are required (or --insecure, for "
                        "development only)\n");
        return -1;
    }
    if (cfg->default_ttl_ms > cfg->max_ttl_ms) cfg->default_ttl_ms = cfg->max_ttl_ms;
    return 0;
}

static int run(broker_config_t *cfg_in);

int main(int argc, char **argv)
{
    broker_config_t cfg;
    broker_config_defaults(&cfg);
    relais_log_set_level(RELAIS_LOG_INFO);
    given_t given = {false, false};
    /* The file first, then the command line over it: --config is looked for alone. */
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) config_path = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0) config_path = argv[i] + 9;
    }
    relaisd_config_t file = {0};
    if (config_path != NULL) {
        char err[600];
        if (relaisd_config_load(config_path, &file, err, sizeof err) != 0) {
            fprintf(stderr, "relaisd: --config: %s\n", err);
            return EXIT_CONFIG;
        }
        for (size_t i = 0; i < file.n; i++) {
            char who[600];
            snprintf(who, sizeof who, "relaisd: %s:%u", config_path, file.settings[i].line);
            char *one[] = {argv[0], file.settings[i].option, NULL};
            optind = 0;
            if (parse_args(2, one, &cfg, who, &given) < 0) {
                relaisd_config_free(&file);
                return EXIT_CONFIG;
            }
        }
    }
    optind = 0;
    int status = parse_args(argc, argv, &cfg, "relaisd", &given) < 0 ||
                         check_required(&cfg, &given) < 0
                     ? EXIT_CONFIG
                     : run(&cfg);
    relaisd_config_free(&file);
    return status;
}

/* Checks, opens and runs the broker configured by cfg; the process's exit status. */
static int run(broker_config_t *cfg_in)
{
    broker_config_t cfg = *cfg_in;
    if (relais_clock_init() != 0) {
        fprintf(stderr, "relaisd: RELAIS_SIM_CLOCK is malformed: expected "
                        "FACTOR,REAL_ORIGIN_MS,SIM_ORIGIN_MS with FACTOR in [1, 1000000]\n");
        return EXIT_CONFIG;
    }
    if (preflight(&cfg) < 0) return EXIT_CONFIG;
    /* The data directory is created by broker_open once the socket is bound: a start that
     * fails before that leaves nothing behind. */
    if (relais_clock_factor() != 1.0)
        RLOG(RELAIS_LOG_WARN, "broker",
             "SIMULATED CLOCK: business time runs %.0f times faster than real time "
             "(RELAIS_SIM_CLOCK); for territory simulations only",
             relais_clock_factor());
    if (cfg.insecure)
        RLOG(RELAIS_LOG_WARN, "broker",
             "INSECURE MODE: no encryption, no authentication; agents are who they say. "
             "For development only, never with real patient data");

    uv_loop_t loop;
    uv_loop_init(&loop);
    broker_t b;
    int rc = broker_open(&b, &cfg, &loop);
    if (rc < 0) {
        fprintf(stderr, "relaisd: cannot start: %s\n", relais_strerror(rc));
        uv_loop_close(&loop);
        return rc == RELAIS_ECONFIG ? EXIT_CONFIG : 1;
    }
    /* The ready line: tests and scripts read the endpoint (and the key agents need) here. */
    printf("relaisd ready endpoint=%s broker_id=%s store=%s durability=%s mode=%s%s%s\n",
           b.endpoint, cfg.broker_id, b.store->vt->name,
           cfg.durability == STORE_DURABLE_FULL ? "full" : "os",
           cfg.insecure ? "insecure" : "curve",
           cfg.insecure ? "" : " server_key=", cfg.insecure ? "" : b.curve_public);
    fflush(stdout);
    RLOG(RELAIS_LOG_INFO, "broker", "listening endpoint=%s store=%s heartbeat_ms=%u", b.endpoint,
         b.store->vt->name, cfg.heartbeat_ms);
    /* Under systemd (Type=notify): ready now, and the watchdog fed from the loop's tick. */
    notify__status(&b, NULL);
    b.watchdog_ms = notify__watchdog_ms();

    uv_run(&loop, UV_RUN_DEFAULT);
    RLOG(RELAIS_LOG_INFO, "broker",
         "stopped accepted=%llu duplicates=%llu rejected=%llu delivered=%llu acked=%llu "
         "refused=%llu expired=%llu",
         (unsigned long long)b.stats.accepted, (unsigned long long)b.stats.duplicates,
         (unsigned long long)b.stats.rejected, (unsigned long long)b.stats.delivered,
         (unsigned long long)b.stats.acked, (unsigned long long)b.stats.refused,
         (unsigned long long)b.stats.expired);
    broker_close(&b);
    uv_loop_close(&loop);
    return 0;
}
