/*
 * CurveZMQ key files, as relaisctl keygen writes them.
 *
 * NAME.key holds an agent's (or the broker's) keypair and must stay secret (mode 0600):
 *
 *     # Relais CURVE keypair — secret: never share this file
 *     public-key: <40 Z85 characters>
 *     secret-key: <40 Z85 characters>
 *
 * NAME.pub holds the public key alone, on one line: what an agent sends to its CPTS to be
 * enrolled in the territory directory, and what agents are given of the broker.
 */
#ifndef RELAIS_KEYS_H
#define RELAIS_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define RELAIS_Z85_KEY_LEN 40

/*
 * Reads a keypair file into public_z85 and secret_z85 (41 bytes each, NUL-terminated).
 * Refuses a file readable or writable by group or others (a leaked secret key is an
 * impersonation). Returns 0, or RELAIS_ECONFIG with a reason (missing line, bad key,
 * public key not matching the secret one, permissive mode) or a negative errno.
 */
int relais_keyfile_read(const char *path, char public_z85[41], char secret_z85[41],
                        char *reason, size_t reason_len);

/*
 * Reads a public key: a file holding one Z85 key (NAME.pub), or a keypair file (its public
 * key), or — when text is not a readable file — the 40 Z85 characters themselves.
 * Returns 0 or RELAIS_ECONFIG with a reason.
 */
int relais_pubkey_read(const char *path_or_key, char public_z85[41], char *reason,
                       size_t reason_len);

/* True when text is exactly 40 Z85 characters encoding a 32-byte key. */
bool relais_z85_key_valid(const char *text);

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_KEYS_H */
