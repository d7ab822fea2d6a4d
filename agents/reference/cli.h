/*
 * What the reference programs (relais-assistant, relais-nurse, …) share: the common
 * options, an agent on a loop the program owns, SIGINT/SIGTERM handling that stops the
 * agent cleanly, logging of the role's events, and a hook run once the first session is
 * READY. The role logic itself lives in the relais_refagents library.
 */
#ifndef RELAIS_REF_CLI_H
#define RELAIS_REF_CLI_H

#include <getopt.h>
#include <stdbool.h>

#include <uv.h>

#include "refagents.h"

/* Option values of the common options, above any role option's. */
enum {
    REF_OPT_ENDPOINT = 1000,
    REF_OPT_ADDRESS,
    REF_OPT_LOG_LEVEL,
    REF_OPT_STATE,
    REF_OPT_KEY,
    REF_OPT_SERVER_KEY,
    REF_OPT_CONFIG,
    REF_OPT_HELP,
    REF_OPT_VERSION,
};

// clang-format off
#define REF_CLI_COMMON_OPTIONS                                 \
    {"endpoint", required_argument, NULL, REF_OPT_ENDPOINT},   \
    {"address", required_argument, NULL, REF_OPT_ADDRESS},     \
    {"log-level", required_argument, NULL, REF_OPT_LOG_LEVEL}, \
    {"state", required_argument, NULL, REF_OPT_STATE},         \
    {"key", required_argument, NULL, REF_OPT_KEY},             \
    {"server-key", required_argument, NULL, REF_OPT_SERVER_KEY}, \
    {"config", required_argument, NULL, REF_OPT_CONFIG},       \
    {"help", no_argument, NULL, REF_OPT_HELP},                 \
    {"version", no_argument, NULL, REF_OPT_VERSION}
// clang-format on

#define REF_CLI_COMMON_USAGE                                                                       \
    "  --endpoint E       broker endpoint, e.g. tcp://127.0.0.1:7400 (required)\n"                 \
    "  --address A        this agent's address (required)\n"                                       \
    "  --log-level L      error, warn, info (default) or debug\n"                                  \
    "  --state FILE       keep unsent messages and handled ids in FILE, so that nothing is\n"      \
    "                     lost or handled twice across a crash (recommended)\n"                    \
    "  --key FILE         this agent's CURVE keypair (relaisctl keygen NAME → NAME.key)\n"       \
    "  --server-key K     the broker's public key: its .pub file or the 40 Z85 characters\n"       \
    "                     (both or neither: without them, only an --insecure broker answers)\n"    \
    "  --config FILE      the role's configuration (YAML, see docs/AGENTS.md); options given\n"    \
    "                     on the command line override it\n"                           \
    "  --version          print the version and exit\n"

typedef struct ref_cli {
    const char *prog;
    const char *endpoint;
    const char *address;
    const char *state_path;  /* --state: the agent's persistent outbox and dedup window */
    const char *key_path;    /* --key: this agent's CURVE keypair file */
    const char *server_key;  /* --server-key: the broker's public key (file or Z85) */
    const char *config_path; /* --config: the role's YAML configuration, or NULL */
    uv_loop_t loop;
    bool loop_open;
    uv_signal_t sigint;
    uv_signal_t sigterm;
    relais_agent_t *agent;
    relais_agent_fn on_ready; /* run on the first READY, with on_ready_ud */
    void *on_ready_ud;
    bool was_ready;
    bool stopping;
} ref_cli_t;

/* The program's name for messages and logs: argv[0] without its directory. */
const char *ref__cli_prog(const char *argv0);

/*
 * Handles a common option c. Returns 1 when handled, 0 when c is not a common option,
 * -1 after printing a usage error, 2 when --help was asked (the caller prints its usage).
 */
int ref__cli_option(ref_cli_t *cli, int c, const char *arg);

/*
 * Checks the common options, creates the loop and the agent on it with the state callback
 * installed. Prints the reason and returns non-zero on failure.
 */
int ref__cli_open(ref_cli_t *cli);

/* Runs until SIGINT or SIGTERM, then stops the agent and closes the loop. Exit status. */
int ref__cli_run(ref_cli_t *cli);

/* Frees the agent; the caller frees its role object after this. */
void ref__cli_close(ref_cli_t *cli);

/* An event callback that logs each event (identifiers and states only). ud: the cli. */
void ref__cli_log_event(const relais_ref_event_t *ev, void *ud);

/* Parses an unsigned option into *out (1..max). Prints and returns -1 on a bad value. */
int ref__cli_unsigned(const ref_cli_t *cli, const char *name, const char *arg, unsigned max,
                      unsigned *out);

/* The common part of relais-nurse, relais-physiotherapist and relais-specialist. */
int ref__cli_provider_main(int argc, char **argv, const char *role, bool home_visits,
                           bool needs_specialty);

#endif /* RELAIS_REF_CLI_H */
