/*
 * relaisctl: the administrator's command for a Relais territory.
 *
 * One program, several subcommands, each implemented in its own file (ctl_*.c) behind one
 * function that takes the subcommand's arguments (argv[0] is the subcommand's name) and
 * returns the process exit status: 0 success, 1 failure (a finding: a broken audit chain,
 * an invalid directory), 2 usage error.
 */
#ifndef RELAIS_RELAISCTL_H
#define RELAIS_RELAISCTL_H

/* relaisctl keygen NAME: writes NAME.key (secret, mode 0600) and NAME.pub (public). */
int ctl__keygen(int argc, char **argv);

/* relaisctl directory check FILE: parses and validates a territory directory. */
int ctl__directory(int argc, char **argv);

/* relaisctl audit verify|show …: checks and reads the audit journal. */
int ctl__audit(int argc, char **argv);

/* relaisctl status|agents|sessions|mailboxes|message|deadletters|escalations|kick: asks
 * the running broker over its control socket (argv[0] names the question). */
int ctl__live(int argc, char **argv);

#endif /* RELAIS_RELAISCTL_H */
