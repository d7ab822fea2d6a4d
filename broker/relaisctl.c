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
    {"audit", ctl__audit, "audit verify|show …    check or read the audit journal (audit --help)"},
};

static void usage(FILE *out)
{
    fprintf(out, "usage: relaisctl COMMAND [ARGS]   (relaisctl --version)\n\n");
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
