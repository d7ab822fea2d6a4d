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

#include <stdbool.h>
#include <stddef.h>

/* relaisctl keygen NAME: writes NAME.key (secret, mode 0600) and NAME.pub (public). */
int ctl__keygen(int argc, char **argv);

/* relaisctl directory check FILE: parses and validates a territory directory. */
int ctl__directory(int argc, char **argv);

/* relaisctl audit verify|show …: checks and reads the audit journal. */
int ctl__audit(int argc, char **argv);

/* relaisctl status|agents|sessions|mailboxes|message|deadletters|escalations|kick: asks
 * the running broker over its control socket (argv[0] names the question). */
int ctl__live(int argc, char **argv);

/* relaisctl backup DIR / restore DIR: the broker's state copied while it runs, and put back
 * into a new data directory (argv[0] names which). */
int ctl__backup(int argc, char **argv);

/* relaisctl agent add|revoke|list …: enrols and revokes agents in a directory file. */
int ctl__agent(int argc, char **argv);

/* ---- ctl_agent_edit.c: the directory file as text ------------------------------------ */

/* Start of the comment `agent add` writes above an entry, which `agent revoke` removes. */
#define CTL_ENROLLED_COMMENT "enrolled with relaisctl agent add"

/* One directory entry to write. Strings are written double-quoted; NULL or "" omits. */
typedef struct ctl_entry {
    const char *comment; /* a comment line above the entry, without '#' */
    const char *address;
    const char *name;
    const char *role;
    const char *specialty;
    const char *public_key; /* Z85 */
    const char *const *pools;
    size_t n_pools;
    const char *const *acts_for;
    size_t n_acts_for;
} ctl_entry_t;

/*
 * Writes e as a YAML list entry ("- address: …" and its fields, one per line), each line
 * indented by indent spaces, into buf (cap bytes, NUL-terminated). 0, or RELAIS_ECONFIG
 * with err set (a control character in a string, an entry longer than cap).
 */
int ctl__entry_format(const ctl_entry_t *e, size_t indent, char *buf, size_t cap, char *err,
                      size_t err_len);

/*
 * The directory text (len bytes) with e appended to its `agents:` list, every other byte
 * kept (comments included). Sets *out (malloc'd, NUL-terminated; the caller frees it) and
 * *out_len. RELAIS_ECONFIG with err set when the text is not YAML or its agents list is
 * in flow style; -ENOMEM. Checks nothing else: the caller validates the result.
 */
int ctl__dir_add(const char *text, size_t len, const ctl_entry_t *e, char **out, size_t *out_len,
                 char *err, size_t err_len);

/*
 * The directory text without the entry of `address` (its lines, and one blank line before
 * it). RELAIS_ECONFIG with err set when there is no such entry or the text is not YAML.
 */
int ctl__dir_remove(const char *text, size_t len, const char *address, char **out,
                    size_t *out_len, char *err, size_t err_len);

/* True when digits (ASCII digits only, at least one) pass the Luhn check. */
bool ctl__luhn_valid(const char *digits);

/*
 * Checks an address for enrolment: valid (PROTOCOL.md section 4), and for rpps: and
 * finess: numbers, a right Luhn check digit. 0, or RELAIS_ECONFIG with a reason that
 * gives the digit the number would need.
 */
int ctl__identifier_check(const char *address, char *reason, size_t reason_len);

#endif /* RELAIS_RELAISCTL_H */
