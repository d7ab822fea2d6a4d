/*
 * Key files (include/relais/keys.h): a small line-oriented format read with stdio, and Z85
 * through libzmq, which owns the encoding CurveZMQ uses.
 */
#include "relais/keys.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include <zmq.h>

#include "internal.h"
#include "relais/errors.h"

bool relais_z85_key_valid(const char *text)
{
    uint8_t raw[32];
    return text != NULL && strlen(text) == RELAIS_Z85_KEY_LEN && zmq_z85_decode(raw, text) != NULL;
}

/* Copies the value of "name: value" lines into out when line starts with name. */
static bool take(const char *line, const char *name, char out[41])
{
    size_t n = strlen(name);
    if (strncmp(line, name, n) != 0 || line[n] != ':') return false;
    const char *v = line + n + 1;
    while (*v == ' ' || *v == '\t') v++;
    size_t len = strcspn(v, " \t\r\n");
    if (len != RELAIS_Z85_KEY_LEN) {
        out[0] = '\0';
        return true;
    }
    memcpy(out, v, len);
    out[len] = '\0';
    return true;
}

int relais_keyfile_read(const char *path, char public_z85[41], char secret_z85[41],
                        char *reason, size_t reason_len)
{
    public_z85[0] = secret_z85[0] = '\0';
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        int err = errno;
        codec__fail(-err, reason, reason_len, "cannot read %s: %s", path, strerror(err));
        return -err;
    }
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && (st.st_mode & 077) != 0) {
        fclose(f);
        return codec__fail(RELAIS_ECONFIG, reason, reason_len,
                           "%s is readable by others (mode %o): a secret key must be 0600", path,
                           (unsigned)(st.st_mode & 0777));
    }
    char line[256];
    bool has_public = false, has_secret = false;
    while (fgets(line, sizeof(line), f)) {
        if (take(line, "public-key", public_z85)) has_public = true;
        else if (take(line, "secret-key", secret_z85)) has_secret = true;
    }
    fclose(f);
    if (!has_public || !has_secret)
        return codec__fail(RELAIS_ECONFIG, reason, reason_len,
                           "%s has no %s line: not a keypair written by relaisctl keygen", path,
                           has_public ? "secret-key" : "public-key");
    if (!relais_z85_key_valid(public_z85) || !relais_z85_key_valid(secret_z85))
        return codec__fail(RELAIS_ECONFIG, reason, reason_len,
                           "%s: a key is not 40 Z85 characters", path);
    char derived[41];
    if (zmq_curve_public(derived, secret_z85) != 0 || strcmp(derived, public_z85) != 0)
        return codec__fail(RELAIS_ECONFIG, reason, reason_len,
                           "%s: the public key does not belong to the secret key", path);
    codec__clear(reason, reason_len);
    return 0;
}

int relais_pubkey_read(const char *path_or_key, char public_z85[41], char *reason,
                       size_t reason_len)
{
    public_z85[0] = '\0';
    FILE *f = fopen(path_or_key, "r");
    if (f == NULL) {
        if (relais_z85_key_valid(path_or_key)) {
            memcpy(public_z85, path_or_key, 41);
            codec__clear(reason, reason_len);
            return 0;
        }
        return codec__fail(RELAIS_ECONFIG, reason, reason_len,
                           "%s is neither a readable key file nor a 40-character Z85 key",
                           path_or_key);
    }
    char line[256];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f)) {
        char key[41];
        if (take(line, "public-key", key) && relais_z85_key_valid(key)) {
            memcpy(public_z85, key, 41);
            found = true;
            break;
        }
        size_t len = strcspn(line, " \t\r\n");
        if (len == RELAIS_Z85_KEY_LEN) {
            line[len] = '\0';
            if (relais_z85_key_valid(line)) {
                memcpy(public_z85, line, 41);
                found = true;
            }
        }
    }
    fclose(f);
    if (!found)
        return codec__fail(RELAIS_ECONFIG, reason, reason_len, "%s holds no public key",
                           path_or_key);
    codec__clear(reason, reason_len);
    return 0;
}
