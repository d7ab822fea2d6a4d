/*
 * Who a connection is, and whether it may be.
 *
 * The broker learns an agent's identity in exactly one place, here. In CURVE mode (the
 * default) the ZAP handler (zap.c) asks auth__key_lookup() whether a client's public key is
 * in the territory directory, and ZeroMQ then attaches the answer to every message of that
 * connection as its User-Id; auth__identify() reads it back at Hello, together with the key
 * (ZAP metadata X-Key), and checks once more that the directory still maps that key to that
 * address, so that a key revoked by a reload opens no new session. Nothing reads identity
 * from the routing id or from what the agent writes: a Hello declaring another address is
 * refused. In insecure development mode the agent declares its address, and a directory,
 * when given, still decides whether that address exists.
 */
#include <stdio.h>
#include <string.h>

#include "admin/admin.h"
#include "audit.h"
#include "broker.h"
#include "directory.h"
#include "relais/keys.h"
#include "relais/log.h"

int auth__open(broker_t *b)
{
    char reason[RELAIS_REASON_MAX];
    if (b->cfg.directory_path != NULL) {
        int rc = directory_load(b->cfg.directory_path, &b->dir, reason, sizeof(reason));
        if (rc < 0) {
            RLOG(RELAIS_LOG_ERROR, "auth", "directory: %s", reason);
            return rc;
        }
        if (relais_clock_factor() != 1.0 && directory_production(b->dir)) {
            RLOG(RELAIS_LOG_ERROR, "auth",
                 "refusing a simulated clock (RELAIS_SIM_CLOCK): %s is a production directory",
                 b->cfg.directory_path);
            return RELAIS_ECONFIG;
        }
        if (b->cfg.insecure && directory_production(b->dir)) {
            RLOG(RELAIS_LOG_ERROR, "auth",
                 "refusing --insecure: %s is a production directory "
                 "(set production: false for development)",
                 b->cfg.directory_path);
            return RELAIS_ECONFIG;
        }
        RLOG(RELAIS_LOG_INFO, "auth", "directory territory=%s agents=%zu production=%s",
             directory_territory(b->dir), directory_agent_count(b->dir),
             directory_production(b->dir) ? "yes" : "no");
    }
    if (!b->cfg.insecure) {
        int rc = relais_keyfile_read(b->cfg.curve_key_path, b->curve_public, b->curve_secret,
                                     reason, sizeof(reason));
        if (rc < 0) {
            RLOG(RELAIS_LOG_ERROR, "auth", "broker key: %s", reason);
            return rc;
        }
    }
    return 0;
}

void auth__close(broker_t *b)
{
    directory_destroy(&b->dir);
    memset(b->curve_secret, 0, sizeof(b->curve_secret));
}

int auth__key_lookup(broker_t *b, const uint8_t key[32], char address[RELAIS_ADDRESS_MAX],
                     char *reason, size_t reason_len)
{
    const dir_agent_t *a = b->dir ? directory_lookup_key(b->dir, key) : NULL;
    if (a == NULL) {
        snprintf(reason, reason_len, "unknown key: not in the territory directory");
        return RELAIS_EFORBIDDEN;
    }
    snprintf(address, RELAIS_ADDRESS_MAX, "%s", a->address);
    return 0;
}

void auth__refused(broker_t *b, const char *key_z85, const char *peer, const char *reason)
{
    RLOG(RELAIS_LOG_WARN, "auth", "handshake refused peer=%s key=%s: %s", peer, key_z85, reason);
    b->stats.auth_unknown_key++;
    broker__audit(b, AUDIT_SESSION_REFUSED, key_z85, NULL, NULL, NULL, 0, "unknown-key",
                  RELAIS_EFORBIDDEN);
}

const char *auth__role(broker_t *b, const char *address)
{
    const dir_agent_t *a = b->dir ? directory_lookup(b->dir, address) : NULL;
    return a ? dir_role_name(a->role) : NULL;
}

static int identify_curve(broker_t *b, zmq_msg_t *msg, const Relais__V1__Hello *hello,
                          char address[RELAIS_ADDRESS_MAX], char *reason, size_t reason_len)
{
    const char *uid = zmq_msg_gets(msg, "User-Id");
    const char *key = zmq_msg_gets(msg, "X-Key");
    if (uid == NULL || key == NULL || !relais_z85_key_valid(key)) {
        snprintf(reason, reason_len, "no authenticated identity on this connection");
        return RELAIS_EFORBIDDEN;
    }
    uint8_t raw[32];
    zmq_z85_decode(raw, key);
    const dir_agent_t *a = b->dir ? directory_lookup_key(b->dir, raw) : NULL;
    if (a == NULL || strcmp(a->address, uid) != 0) {
        snprintf(reason, reason_len, "the key of %.100s is no longer in the directory", uid);
        return RELAIS_EFORBIDDEN;
    }
    if (hello->address != NULL && hello->address[0] != '\0' && strcmp(hello->address, uid) != 0) {
        snprintf(reason, reason_len,
                 "Hello.address %.100s is not the identity of this key (%.100s)", hello->address,
                 uid);
        return RELAIS_EFORBIDDEN;
    }
    snprintf(address, RELAIS_ADDRESS_MAX, "%s", uid);
    return 0;
}

static int identify_declared(broker_t *b, const Relais__V1__Hello *hello,
                             char address[RELAIS_ADDRESS_MAX], char *reason, size_t reason_len)
{
    if (hello->address == NULL || hello->address[0] == '\0') {
        snprintf(reason, reason_len, "Hello.address is required in insecure mode");
        return RELAIS_EFORBIDDEN;
    }
    relais_address_t a;
    char why[RELAIS_REASON_MAX];
    if (relais_address_parse(hello->address, &a, why, sizeof(why)) < 0) {
        snprintf(reason, reason_len, "Hello.address: %s", why);
        return RELAIS_EFORBIDDEN;
    }
    if (a.kind == RELAIS_ADDR_SERVICE) {
        snprintf(reason, reason_len,
                 "Hello.address %s is a service pool; an agent connects as itself", hello->address);
        return RELAIS_EFORBIDDEN;
    }
    if (b->dir != NULL && directory_lookup(b->dir, hello->address) == NULL) {
        snprintf(reason, reason_len, "%.100s is not in the territory directory", hello->address);
        return RELAIS_EFORBIDDEN;
    }
    snprintf(address, RELAIS_ADDRESS_MAX, "%s", hello->address);
    return 0;
}

int auth__identify(broker_t *b, zmq_msg_t *msg, const Relais__V1__Hello *hello,
                   char address[RELAIS_ADDRESS_MAX], char *reason, size_t reason_len)
{
    if (b->cfg.insecure) return identify_declared(b, hello, address, reason, reason_len);
    return identify_curve(b, msg, hello, address, reason, reason_len);
}

void auth__reload(broker_t *b)
{
    if (b->cfg.directory_path == NULL) {
        RLOG(RELAIS_LOG_INFO, "auth", "no directory to reload");
        return;
    }
    char reason[RELAIS_REASON_MAX];
    directory_t *fresh = NULL;
    if (directory_load(b->cfg.directory_path, &fresh, reason, sizeof(reason)) < 0) {
        RLOG(RELAIS_LOG_ERROR, "auth", "reload refused, the previous directory stays: %s", reason);
        return;
    }
    if (b->cfg.insecure && directory_production(fresh)) {
        RLOG(RELAIS_LOG_ERROR, "auth",
             "reload refused: the new directory is a production one "
             "and this broker runs --insecure");
        directory_destroy(&fresh);
        return;
    }
    directory_t *old = b->dir;
    b->dir = fresh;
    session__revalidate(b);
    directory_destroy(&old);
    admin_directory_loaded(b);
    RLOG(RELAIS_LOG_INFO, "auth", "directory reloaded territory=%s agents=%zu",
         directory_territory(b->dir), directory_agent_count(b->dir));
    broker__audit(b, AUDIT_DIRECTORY_RELOAD, directory_territory(b->dir), NULL, NULL, NULL, 0,
                  "reloaded", 0);
}
