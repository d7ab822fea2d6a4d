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

/* ---- Refusals, aggregated ---------------------------------------------------------- */

/*
 * A peer that is refused can try again at once, hundreds of times a second: a journal record
 * and a log line each would let it fill the disk and stop the broker for everyone (a journal
 * that cannot be written stops all submissions). So refusals are counted per (peer, key,
 * claimed address, reason) over a short window, and each window ends in ONE journal record
 * saying "N refusals from this peer/key", which keeps every refusal traceable while the
 * journal grows by at most REFUSAL_TABLE_MAX + 1 records per window. The log says the first
 * refusal of each peer in a window, at most REFUSAL_LOGS_PER_WINDOW lines, then once that
 * more were suppressed. Submissions rejected with "retry later" (OVERLOADED,
 * STORE_UNAVAILABLE) are counted the same way, per sender and code: a retry storm against a
 * full disk must not fill what is left of it.
 */
#define REFUSAL_WINDOW_MS 10000
#define REFUSAL_TABLE_MAX 256
#define REFUSAL_LOGS_PER_WINDOW 20

typedef struct refusal {
    audit_kind_t kind; /* auth.refusals, or submit.rejected for retryable rejections */
    char peer[64];
    char key[41];
    char claimed[RELAIS_ADDRESS_MAX];
    char actor[RELAIS_ADDRESS_MAX];
    const char *outcome; /* a constant word */
    int code;
    uint64_t count;
    int64_t first_ms;
} refusal_t;

static void refusal_note(broker_t *b, audit_kind_t kind, const char *peer, const char *key,
                         const char *claimed, const char *actor, const char *outcome, int code,
                         const char *reason)
{
    char k[64 + 41 + 2 * RELAIS_ADDRESS_MAX + 48];
    int n = snprintf(k, sizeof(k), "%d|%s|%s|%s|%s|%s|%d", (int)kind, peer ? peer : "",
                     key ? key : "", claimed ? claimed : "", actor ? actor : "", outcome, code);
    size_t klen = n < 0 ? 0 : (size_t)n >= sizeof(k) ? sizeof(k) - 1 : (size_t)n;
    refusal_t *r = map_get(b->refusals, k, klen);
    if (r == NULL) {
        if (map_count(b->refusals) >= REFUSAL_TABLE_MAX) {
            b->refusals_overflow++;
            return;
        }
        r = xcalloc(1, sizeof(*r));
        r->kind = kind;
        snprintf(r->peer, sizeof(r->peer), "%s", peer ? peer : "");
        snprintf(r->key, sizeof(r->key), "%s", key ? key : "");
        snprintf(r->claimed, sizeof(r->claimed), "%s", claimed ? claimed : "");
        snprintf(r->actor, sizeof(r->actor), "%s", actor ? actor : "");
        r->outcome = outcome;
        r->code = code;
        r->first_ms = relais_now_ms();
        if (map_put(b->refusals, k, klen, r) < 0) xalloc__oom(sizeof(*r));
    }
    r->count++;
    b->stats.auth_refusals++;
    /* The log says the first refusal of each peer and key, then each time its count doubles
     * (2, 4, 8…): a retrying agent is visible, a flood costs a few lines, and the window's
     * lines are capped whatever the number of peers. */
    bool milestone = (r->count & (r->count - 1)) == 0;
    if (!milestone) return;
    const char *what = kind == AUDIT_SUBMIT_REJECTED         ? "submissions rejected"
                       : claimed != NULL || actor != NULL ? "hello refused"
                                                          : "handshake refused";
    if (b->refusal_logs < REFUSAL_LOGS_PER_WINDOW) {
        char fp[AUDIT_FINGERPRINT_LEN] = "-";
        if (key != NULL) audit_key_fingerprint(key, fp);
        RLOG(RELAIS_LOG_WARN, "auth", "%s peer=%s key=%s claimed=%s count=%llu: %s (journaled "
             "once per %d s with the count)",
             what, peer ? peer : "-", fp, claimed ? claimed : "-", (unsigned long long)r->count,
             reason, REFUSAL_WINDOW_MS / 1000);
    } else if (b->refusal_logs == REFUSAL_LOGS_PER_WINDOW) {
        RLOG(RELAIS_LOG_WARN, "auth", "more refusals: their log lines are suppressed for this "
             "window; the journal counts them all");
    }
    b->refusal_logs++;
}

static void flush_one(const void *key, size_t key_len, void *value, void *ud)
{
    broker_t *b = ud;
    refusal_t *r = value;
    audit_event_t ev = {.kind = r->kind,
                        .at_ms = r->first_ms,
                        .actor = r->actor[0] ? r->actor : NULL,
                        .key = r->key[0] ? r->key : NULL,
                        .claimed = r->claimed[0] ? r->claimed : NULL,
                        .peer = r->peer[0] ? r->peer : NULL,
                        .count = r->count,
                        .outcome = r->outcome,
                        .code = r->code};
    broker__audit_event(b, &ev);
    free(r);
}

void auth__flush_refusals(broker_t *b, bool force)
{
    int64_t now = relais_mono_ms();
    if (!force && now < b->refusals_window_end) return;
    b->refusals_window_end = now + REFUSAL_WINDOW_MS;
    b->refusal_logs = 0;
    if (b->refusals == NULL) return;
    map_foreach(b->refusals, flush_one, b);
    map_destroy(&b->refusals);
    if (map_new(&b->refusals) < 0) xalloc__oom(0);
    if (b->refusals_overflow > 0) {
        audit_event_t ev = {.kind = AUDIT_AUTH_REFUSALS,
                            .peer = "*",
                            .count = b->refusals_overflow,
                            .outcome = "table-full",
                            .code = RELAIS_EFORBIDDEN};
        broker__audit_event(b, &ev);
        b->refusals_overflow = 0;
    }
}

void auth__refused(broker_t *b, const char *key_z85, const char *peer, const char *reason)
{
    if (key_z85 != NULL)
        b->stats.auth_unknown_key++;
    else
        b->stats.auth_not_curve++;
    refusal_note(b, AUDIT_AUTH_REFUSALS, peer, key_z85, NULL, NULL,
                 key_z85 ? "unknown-key" : "not-curve", RELAIS_EFORBIDDEN, reason);
}

void auth__refused_hello(broker_t *b, const char *uid, const char *key, const char *claimed,
                         int code, const char *reason)
{
    b->stats.auth_hello++;
    refusal_note(b, AUDIT_AUTH_REFUSALS, NULL, key, claimed, uid, "hello", code, reason);
}

void auth__rejected_retryable(broker_t *b, const char *sender, int code, const char *reason)
{
    refusal_note(b, AUDIT_SUBMIT_REJECTED, NULL, NULL, NULL, sender, "retry-later", code, reason);
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

/* Whether two entries of the same address differ in what the broker acts on. */
static bool agent_changed(const dir_agent_t *x, const dir_agent_t *y)
{
    if (x->role != y->role || x->has_key != y->has_key || strcmp(x->specialty, y->specialty) ||
        memcmp(x->public_key, y->public_key, DIR_KEY_LEN) || x->n_pools != y->n_pools ||
        x->n_acts_for != y->n_acts_for)
        return true;
    for (size_t i = 0; i < x->n_pools; i++)
        if (strcmp(x->pools[i], y->pools[i])) return true;
    for (size_t i = 0; i < x->n_acts_for; i++)
        if (strcmp(x->acts_for[i], y->acts_for[i])) return true;
    return false;
}

/* Logs each agent the new directory adds, removes or changes, and counts them. */
static void log_changes(const directory_t *old, const directory_t *fresh, size_t counts[3])
{
    counts[0] = counts[1] = counts[2] = 0;
    for (size_t i = 0; old != NULL && i < directory_agent_count(old); i++) {
        const dir_agent_t *a = directory_agent_at(old, i);
        const dir_agent_t *n = directory_lookup(fresh, a->address);
        if (n == NULL) {
            counts[1]++;
            RLOG(RELAIS_LOG_INFO, "auth", "reload: removed agent=%s role=%s", a->address,
                 dir_role_name(a->role));
        } else if (agent_changed(a, n)) {
            counts[2]++;
            RLOG(RELAIS_LOG_INFO, "auth", "reload: changed agent=%s role=%s%s", a->address,
                 dir_role_name(n->role),
                 memcmp(a->public_key, n->public_key, DIR_KEY_LEN) ? " key=new" : "");
        }
    }
    for (size_t i = 0; i < directory_agent_count(fresh); i++) {
        const dir_agent_t *n = directory_agent_at(fresh, i);
        if (old != NULL && directory_lookup(old, n->address) != NULL) continue;
        counts[0]++;
        RLOG(RELAIS_LOG_INFO, "auth", "reload: added agent=%s role=%s", n->address,
             dir_role_name(n->role));
    }
}

int auth__reload(broker_t *b, char *result, size_t result_len)
{
    if (b->cfg.directory_path == NULL) {
        snprintf(result, result_len, "no directory to reload (started without --directory)");
        RLOG(RELAIS_LOG_INFO, "auth", "%s", result);
        return RELAIS_ECONFIG;
    }
    char reason[RELAIS_REASON_MAX];
    directory_t *fresh = NULL;
    if (directory_load(b->cfg.directory_path, &fresh, reason, sizeof(reason)) < 0) {
        snprintf(result, result_len, "reload refused, the previous directory stays: %s", reason);
        RLOG(RELAIS_LOG_ERROR, "auth", "%s", result);
        broker__audit(b, AUDIT_DIRECTORY_RELOAD, b->cfg.broker_id, NULL, NULL, NULL, 0, "failed",
                      RELAIS_ECONFIG);
        return RELAIS_ECONFIG;
    }
    if (b->cfg.insecure && directory_production(fresh)) {
        snprintf(result, result_len, "reload refused: the new directory is a production one "
                                     "and this broker runs --insecure");
        RLOG(RELAIS_LOG_ERROR, "auth", "%s", result);
        directory_destroy(&fresh);
        broker__audit(b, AUDIT_DIRECTORY_RELOAD, b->cfg.broker_id, NULL, NULL, NULL, 0, "failed",
                      RELAIS_ECONFIG);
        return RELAIS_ECONFIG;
    }
    size_t counts[3];
    log_changes(b->dir, fresh, counts);
    directory_t *old = b->dir;
    b->dir = fresh;
    session__revalidate(b);
    directory_destroy(&old);
    admin_directory_loaded(b);
    snprintf(result, result_len,
             "directory reloaded territory=%s agents=%zu added=%zu removed=%zu changed=%zu",
             directory_territory(b->dir), directory_agent_count(b->dir), counts[0], counts[1],
             counts[2]);
    RLOG(RELAIS_LOG_INFO, "auth", "%s", result);
    broker__audit(b, AUDIT_DIRECTORY_RELOAD, directory_territory(b->dir), NULL, NULL, NULL, 0,
                  "reloaded", 0);
    return 0;
}
