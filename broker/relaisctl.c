/*
 * relaisctl's entry point: dispatches to the subcommands declared in relaisctl.h.
 */
#include <stdio.h>
#include <string.h>

#include "relais/version.h"
#include "relaisctl.h"

typedef struct command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *help;
} command_t;

static const command_t commands[] = {
    {"keygen", ctl__keygen, "keygen NAME            write a CURVE keypair: NAME.key (secret) and NAME.pub"},
    {"directory", ctl__directory, "directory check FILE   validate a territory directory"},
    {"agent", ctl__agent, "agent add|revoke|list  enrol or revoke agents in a directory (agent --help)"},
    {"backup", ctl__backup, "backup DIR             copy the running broker's store, journal and directory (online)"},
    {"restore", ctl__backup, "restore DIR --data D   put a backup into a new data directory, checked"},
    {"audit", ctl__audit, "audit verify|show …    check or read the audit journal (audit --help)"},
    {"status", ctl__live, "status                 the running broker: version, uptime, readiness, counts"},
    {"agents", ctl__live, "agents                 the directory's agents: online or not, pending"},
    {"sessions", ctl__live, "sessions               the agents connected now"},
    {"mailboxes", ctl__live, "mailboxes              mailboxes holding deliveries: depth, oldest"},
    {"message", ctl__live, "message ID             one message: recipients' states (no content)"},
    {"deadletters", ctl__live, "deadletters            expired and refused deliveries, newest first"},
    {"escalations", ctl__live, "escalations            escalations accepted in the last 24 hours"},
    {"atrisk", ctl__live, "atrisk                 deliveries whose deadline falls in the next 24 hours"},
    {"kick", ctl__live, "kick ADDRESS           end an agent's session (it reconnects); journaled"},
    {"reload", ctl__live, "reload                 re-read the territory directory now; fails if it does not load"},
    {"replay", ctl__live, "replay ID              deliver a message's dead letters again; journaled"},
    {"purge", ctl__live, "purge --older-than D   forget dead letters older than D (30d, 12h, 90m); journaled"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: relaisctl COMMAND [ARGS]   (relaisctl --version)\n\n");
    fprintf(out, "The commands from status on ask the running broker over its control socket\n"
                 "(--data DIR or $RELAIS_DATA; --json for JSON; COMMAND --help for more).\n\n");
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        fprintf(out, "  relaisctl %s\n", commands[i].help);
}

int main(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "--version") == 0) {
        printf("relaisctl %s\n", relais_version());
        return 0;
    }
    for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
        if (strcmp(argv[1], commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "relaisctl: unknown command '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
