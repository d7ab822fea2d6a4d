/*
 * relaisd's configuration file (/etc/relais/relaisd.yaml): the broker's options in YAML.
 *
 * One key per command-line option, spelt with underscores (`curve_key:` for
 * `--curve-key`); the value is what the option takes, and `true`/`false` for the two that
 * take none (`insecure`, `log_json`). The reader is strict, as the territory directory's
 * is: a mapping of scalars in one document, every key known and given once, booleans only
 * `true` or `false`, no anchors or aliases — a typo is an error naming its line, never an
 * option silently left at its default. It only reads; main.c turns each setting into its
 * option ("--curve-key=/etc/relais/broker.key") and applies them before the command
 * line's, so that flags override the file and both are checked by the same code.
 */
#ifndef RELAIS_RELAISD_CONFIG_H
#define RELAIS_RELAISD_CONFIG_H

#include <stddef.h>

/* One setting of the file, as the option it stands for. */
typedef struct relaisd_setting {
    char *option;  /* "--heartbeat-ms=2000", or "--insecure" for a boolean set to true */
    unsigned line; /* where the key is, 1-based, for messages */
} relaisd_setting_t;

typedef struct relaisd_config {
    relaisd_setting_t *settings; /* in file order; booleans set to false are left out */
    size_t n;
} relaisd_config_t;

/*
 * Reads len bytes of YAML (name prefixes the messages). Returns 0 and fills *out (free
 * with relaisd_config_free()), or RELAIS_ECONFIG with err (err_len bytes, NUL-terminated)
 * saying "name:line: what is wrong", or -ENOMEM. An empty document is an empty config.
 */
int relaisd_config_parse(const void *yaml, size_t len, const char *name, relaisd_config_t *out,
                         char *err, size_t err_len);

/* As relaisd_config_parse(), from the file at path; a negative errno if it cannot be read. */
int relaisd_config_load(const char *path, relaisd_config_t *out, char *err, size_t err_len);

/* Frees what a successful parse or load filled in, and empties *c. */
void relaisd_config_free(relaisd_config_t *c);

#endif /* RELAIS_RELAISD_CONFIG_H */
