/*
 * Sessions: one per connected agent, keyed by ZeroMQ routing id.
 *
 * Hello opens a session (after the identity check of auth.c) and is answered by Welcome;
 * a new session for an address replaces the previous one, whose connection is usually
 * already dead. A session silent for three heartbeat intervals is closed. Closing a session
 * returns its unacknowledged deliveries to the head of their queue, so they go to the next
 * session of the same address with attempt + 1.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "broker.h"
#include "directory.h"
#include "relais/log.h"

session_t *session__find(broker_t *b, const uint8_t *rid, size_t rid_len)
{
    return map_get(b->sessions, rid, rid_len);
}

static void send_welcome(broker_t *b, session_t *s)
{
    Relais__V1__Welcome w = RELAIS__V1__WELCOME__INIT;
    w.address = s->address;
    char *role = (char *)auth__role(b, s->address);
    if (role != NULL) {
        w.roles = &role;
        w.n_roles = 1;
    }
    w.broker_id = (char *)b->cfg.broker_id;
    w.heartbeat_ms = b->cfg.heartbeat_ms;
    w.max_frame_bytes = (uint32_t)b->cfg.max_frame_bytes;
    w.server_time_ms = relais_now_ms();
    w.max_recipients = b->cfg.max_recipients;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_WELCOME;
    f.welcome = &w;
    broker__send_frame(b, s->rid, s->rid_len, &f);
}

void session__close(broker_t *b, session_t *s, const char *why)
{
    pool__session_closed(b, s);
    delivery__session_closed(b, s);
    map_del(b->sessions, s->rid, s->rid_len);
    if (s->mbox->session == s) s->mbox->session = NULL;
    RLOG(RELAIS_LOG_INFO, "session", "closed agent=%s why=%s", s->address, why);
    broker__audit(b, AUDIT_SESSION_CLOSE, s->address, NULL, NULL, NULL, 0, "closed", 0);
    b->stats.sessions_closed++;
    map_destroy(&s->inflight_by_id);
    map_destroy(&s->offers_by_id);
    free(s);
}

void session__hello(broker_t *b, const uint8_t *rid, size_t rid_len, zmq_msg_t *msg,
                    const Relais__V1__Hello *hello)
{
    char reason[RELAIS_REASON_MAX];
    if (hello->protocol_version != RELAIS_PROTOCOL_VERSION) {
        snprintf(reason, sizeof(reason),
                 "protocol_version %u is not supported; this broker speaks %d",
                 hello->protocol_version, RELAIS_PROTOCOL_VERSION);
        broker__send_error(b, rid, rid_len, RELAIS_EVERSION, reason, false, NULL, 0);
        return;
    }
    if (rid_len > sizeof(((session_t *)0)->rid)) {
        broker__send_error(b, rid, rid_len, RELAIS_EBADFRAME, "routing id too long", true, NULL, 0);
        return;
    }
    char address[RELAIS_ADDRESS_MAX];
    int rc = auth__identify(b, msg, hello, address, reason, sizeof(reason));
    if (rc < 0) {
        RLOG(RELAIS_LOG_WARN, "session", "refused code=%s why=\"%s\"", relais_err_name(rc), reason);
        b->stats.auth_hello++;
        broker__audit(b, AUDIT_SESSION_REFUSED, hello->address, NULL, NULL, NULL, 0, "hello", rc);
        broker__send_error(b, rid, rid_len, rc, reason, true, NULL, 0);
        return;
    }
    session_t *old = session__find(b, rid, rid_len);
    if (old != NULL) session__close(b, old, "hello again on the same connection");

    mailbox_t *mb = delivery__mailbox(b, address, true);
    if (mb == NULL) {
        broker__send_error(b, rid, rid_len, -ENOMEM, "out of memory", true, NULL, 0);
        return;
    }
    if (mb->session != NULL) {
        session_t *prev = mb->session;
        broker__send_error(b, prev->rid, prev->rid_len, RELAIS_EFORBIDDEN,
                           "session replaced by a newer one for the same address", true, NULL, 0);
        session__close(b, prev, "replaced by a newer session");
    }

    session_t *s = calloc(1, sizeof(*s));
    if (s == NULL || map_new(&s->inflight_by_id) < 0 || map_new(&s->offers_by_id) < 0 || map_put(b->sessions, rid, rid_len, s) < 0) {
        if (s) {
            map_destroy(&s->inflight_by_id);
            map_destroy(&s->offers_by_id);
        }
        free(s);
        broker__send_error(b, rid, rid_len, -ENOMEM, "out of memory", true, NULL, 0);
        return;
    }
    memcpy(s->rid, rid, rid_len);
    s->rid_len = rid_len;
    snprintf(s->address, sizeof(s->address), "%s", address);
    const char *key = b->cfg.insecure ? NULL : zmq_msg_gets(msg, "X-Key");
    snprintf(s->key, sizeof(s->key), "%s", key ? key : "");
    s->mbox = mb;
    unsigned credit = hello->credit ? hello->credit : b->cfg.default_credit;
    s->window = credit > b->cfg.max_credit ? b->cfg.max_credit : credit;
    list_init(&s->inflight);
    list_init(&s->offers);
    s->last_seen_ms = relais_mono_ms();
    s->opened_ms = relais_now_ms();
    mb->session = s;
    b->stats.sessions_opened++;
    broker__audit(b, AUDIT_SESSION_OPEN, s->address, NULL, NULL, NULL, 0,
                  s->key[0] ? "curve" : "insecure", 0);
    RLOG(RELAIS_LOG_INFO, "session", "opened agent=%s credit=%u pending=%llu", s->address,
         s->window, (unsigned long long)(mb->mem[0] + mb->mem[1] + mb->disk[0] + mb->disk[1]));
    send_welcome(b, s);
    delivery__session_opened(b, s);
}

typedef struct reap_ctx {
    int64_t deadline;
    session_t **dead;
    size_t n, cap;
    bool all;
    bool timeouts; /* a live session has deliveries in flight */
    int64_t now;
    broker_t *b;
} reap_ctx_t;

static void check_timeouts(const void *key, size_t key_len, void *value, void *ud)
{
    reap_ctx_t *c = ud;
    session_t *s = value;
    if (list_empty(&s->inflight)) return;
    delivery_t *d = LIST_ENTRY(s->inflight.next, delivery_t, fnode);
    if (c->now - d->sent_at_ms >= c->b->cfg.ack_timeout_ms) {
        /* Pumping may close a session (a failed send): collect, act after the walk. */
        if (c->n == c->cap) {
            size_t ncap = c->cap ? c->cap * 2 : 16;
            session_t **n = realloc(c->dead, ncap * sizeof(*n));
            if (n == NULL) return;
            c->dead = n;
            c->cap = ncap;
        }
        c->dead[c->n++] = s;
    }
}

static void collect(const void *key, size_t key_len, void *value, void *ud)
{
    reap_ctx_t *c = ud;
    session_t *s = value;
    if (!c->all && s->last_seen_ms >= c->deadline) {
        if (!list_empty(&s->inflight)) c->timeouts = true;
        return;
    }
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        session_t **n = realloc(c->dead, ncap * sizeof(*n));
        if (n == NULL) return; /* the next tick tries again */
        c->dead = n;
        c->cap = ncap;
    }
    c->dead[c->n++] = s;
}

static void close_collected(broker_t *b, reap_ctx_t *c, const char *why)
{
    for (size_t i = 0; i < c->n; i++) session__close(b, c->dead[i], why);
    free(c->dead);
}

void session__reap(broker_t *b, int64_t now)
{
    reap_ctx_t c = {.deadline = now - 3 * (int64_t)b->cfg.heartbeat_ms};
    map_foreach(b->sessions, collect, &c);
    bool timeouts = c.timeouts;
    close_collected(b, &c, "silent for 3 heartbeat intervals");
    if (!timeouts) return;
    reap_ctx_t t = {.now = now, .b = b};
    map_foreach(b->sessions, check_timeouts, &t);
    for (size_t i = 0; i < t.n; i++) {
        /* An earlier one's pump may have closed a later one: look it up again. */
        if (session__find(b, t.dead[i]->rid, t.dead[i]->rid_len) == t.dead[i])
            delivery__check_ack_timeouts(b, t.dead[i], now);
    }
    free(t.dead);
}

void session__close_all(broker_t *b)
{
    reap_ctx_t c = {.all = true};
    map_foreach(b->sessions, collect, &c);
    close_collected(b, &c, "broker shutting down");
}

typedef struct revalidate_ctx {
    broker_t *b;
    session_t **gone;
    size_t n, cap;
} revalidate_ctx_t;

static bool still_valid(broker_t *b, const session_t *s)
{
    if (b->dir == NULL) return true;
    if (s->key[0] == '\0') return auth__role(b, s->address) != NULL;
    uint8_t raw[32];
    const dir_agent_t *a =
        zmq_z85_decode(raw, s->key) ? directory_lookup_key(b->dir, raw) : NULL;
    return a != NULL && strcmp(a->address, s->address) == 0;
}

static void collect_revoked(const void *key, size_t key_len, void *value, void *ud)
{
    revalidate_ctx_t *c = ud;
    session_t *s = value;
    if (still_valid(c->b, s)) return;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 16;
        session_t **n = realloc(c->gone, ncap * sizeof(*n));
        if (n == NULL) return;
        c->gone = n;
        c->cap = ncap;
    }
    c->gone[c->n++] = s;
}

void session__revalidate(broker_t *b)
{
    revalidate_ctx_t c = {.b = b};
    map_foreach(b->sessions, collect_revoked, &c);
    for (size_t i = 0; i < c.n; i++) {
        session_t *s = c.gone[i];
        broker__send_error(b, s->rid, s->rid_len, RELAIS_EFORBIDDEN,
                           "access revoked: this agent is no longer in the territory directory",
                           true, NULL, 0);
        session__close(b, s, "revoked by a directory reload");
    }
    free(c.gone);
}
