/*
 * Fuzz target: the reader of relaisd.yaml (broker/relaisd_config.h), the broker's options
 * in a file people edit.
 *
 * The input is the YAML text, given to relaisd_config_parse(). Properties checked:
 *   - a failure returns RELAIS_ECONFIG or -ENOMEM, leaves the configuration empty, and its
 *     message names the file ("fuzz.yaml:LINE: …") and fits its buffer;
 *   - a success gives at most one setting per key, each an option "--name" or
 *     "--name=value" whose name is one of the known options, without underscores, with a line
 *     inside the input, and a value without NUL; booleans appear without a value.
 */
#include <errno.h>

#include "fuzz.h"
#include "relaisd_config.h"

static const char *const names[] = {
    "bind",       "data",         "directory",          "curve-key",      "insecure",
    "broker-id",  "heartbeat-ms", "max-frame-bytes",    "max-recipients", "default-ttl-ms",
    "max-ttl-ms", "durability",   "dedup-retention-ms", "ack-timeout-ms", "log-level",
    "log-json",   "store-reserve-kb", "dead-letter-retention-days", "audit-rotate-mb",
    "audit-retention-days", "admin", "admin-token",
};
#define N_NAMES (sizeof names / sizeof names[0])

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    relaisd_config_t c;
    char err[256];
    memset(err, 0x55, sizeof err);
    int rc = relaisd_config_parse(data, size, "fuzz.yaml", &c, err, sizeof err);
    if (rc != 0) {
        FUZZ_CHECKF(rc == RELAIS_ECONFIG || rc == -ENOMEM, "rc %d", rc);
        FUZZ_CHECK(c.n == 0 && c.settings == NULL);
        FUZZ_CHECK(fuzz_terminated(err, sizeof err));
        if (rc == RELAIS_ECONFIG) FUZZ_CHECKF(strncmp(err, "fuzz.yaml:", 10) == 0, "%s", err);
        return 0;
    }
    size_t lines = 1;
    for (size_t i = 0; i < size; i++) lines += data[i] == '\n' || data[i] == '\r';
    bool seen[N_NAMES] = {false};
    for (size_t i = 0; i < c.n; i++) {
        const char *opt = c.settings[i].option;
        FUZZ_CHECK(opt != NULL && strncmp(opt, "--", 2) == 0);
        FUZZ_CHECK(c.settings[i].line >= 1 && c.settings[i].line <= lines);
        const char *eq = strchr(opt, '=');
        size_t name_len = eq ? (size_t)(eq - opt - 2) : strlen(opt) - 2;
        size_t k = 0;
        while (k < N_NAMES &&
               !(strlen(names[k]) == name_len && strncmp(opt + 2, names[k], name_len) == 0))
            k++;
        FUZZ_CHECKF(k < N_NAMES, "unknown option %s", opt);
        FUZZ_CHECKF(!seen[k], "%s twice", names[k]);
        seen[k] = true;
        bool boolean = strcmp(names[k], "insecure") == 0 || strcmp(names[k], "log-json") == 0;
        FUZZ_CHECKF(boolean == (eq == NULL), "%s", opt);
        if (eq != NULL) FUZZ_CHECK(eq[1] != '\0');
    }
    relaisd_config_free(&c);
    FUZZ_CHECK(c.n == 0 && c.settings == NULL);
    return 0;
}
