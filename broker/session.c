/*
 * Sessions: one per connected agent, found by ZeroMQ routing id but bound to the connection
 * and the key that opened it.
 *
 * Hello opens a session (after the identity check of auth.c) and is answered by Welcome;
 * a new session for an address replaces the previous one, whose connection is usually
 * already dead. A routing id is only a name the peer may choose, so it never suffices: every
 * frame must come over the connection (ZMQ_SRCFD) and with the CURVE key (ZAP metadata X-Key)
 * recorded at Hello, and a session ends when its connection ends (the ROUTER's monitor reports
 * the descriptor). A frame on a session's routing id from another connection or key closes
 * that session and is journaled: nobody inherits another's deliveries by reconnecting under
 * its routing id. A session silent for three heartbeat intervals is closed too.
 *
 * Closing a session returns its unacknowledged deliveries to their queue, so they go to the
 * next session of the same address with attempt + 1. A closed session leaves every map at
 * once but is freed only at the end of the loop turn (session__free_closed), because the code
 * that closed it — a failed send deep inside a pump — may still hold it.
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

/* The descriptor of the connection a message came over, or -1 (not a TCP/IPC peer). */
static int frame_fd(zmq_msg_t *msg)
{
    return zmq_msg_get(msg, ZMQ_SRCFD);
}

session_t *session__for_frame(broker_t *b, const uint8_t *rid, size_t rid_len, zmq_msg_t *msg)
{
    session_t *s = session__find(b, rid, rid_len);
    if (s == NULL) return NULL;
    const char *why = NULL;
    int fd = frame_fd(msg);
    if (s->fd >= 0 && fd >= 0 && fd != s->fd) why = "frame from another connection";
    if (why == NULL && s->key[0] != '\0') {
        const char *key = zmq_msg_gets(msg, "X-Key");
        if (key == NULL || strcmp(key, s->key) != 0) why = "frame signed by another key";
    }
    if (why == NULL) return s;
    const char *key = b->cfg.insecure ? NULL : zmq_msg_gets(msg, "X-Key");
    RLOG(RELAIS_LOG_WARN, "session", "routing id reused agent=%s why=\"%s\": session closed",
         s->address, why);
    audit_event_t ev = {.kind = AUDIT_SESSION_MISMATCH,
                        .actor = s->address,
                        .key = key,
                        .outcome = why,
                        .code = RELAIS_EFORBIDDEN};
    broker__audit_event(b, &ev);
    b->stats.session_mismatches++;
    session__close(b, s, why);
    return NULL;
}

void session__connection_closed(broker_t *b, int fd)
{
    session_t *s = map_get(b->sessions_by_fd, &fd, sizeof(fd));
    if (s == NULL) return;
    /* libzmq does not say why; a frame over the transport limit is one of the reasons, and
     * the one an operator cannot guess from the agent's side. */
    char why[160];
    snprintf(why, sizeof(why),
             "connection closed (by the peer, the network, or a frame over the %lld-byte "
             "transport limit)",
             (long long)broker__transport_limit(b));
    session__close(b, s, why);
}

void session__free_closed(broker_t *b)
{
    while (!list_empty(&b->closing)) {
        session_t *s = LIST_ENTRY(b->closing.next, session_t, closing_node);
        list_remove(&s->closing_node);
        s->mbox->refs--;
        map_destroy(&s->inflight_by_id);
        map_destroy(&s->offers_by_id);
        free(s);
    }
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
    broker__send_session_frame(b, s, &f);
}

static void record_session(broker_t *b, store_op_kind_t kind, const char *address)
{
    store_op_t op = {.kind = kind, .at_ms = relais_now_ms()};
    op.address = xstrdup(address);
    broker__record(b, &op);
}

void session__close(broker_t *b, session_t *s, const char *why)
{
    if (s->closing) return;
    s->closing = true;
    if (!s->welcomed) b->opening--;
    record_session(b, STORE_SESSION_DEL, s->address);
    map_del(b->sessions, s->rid, s->rid_len);
    if (s->fd >= 0 && map_get(b->sessions_by_fd, &s->fd, sizeof(s->fd)) == s)
        map_del(b->sessions_by_fd, &s->fd, sizeof(s->fd));
    if (s->mbox->session == s) s->mbox->session = NULL;
    pool__session_closed(b, s);
    delivery__session_closed(b, s);
    RLOG(RELAIS_LOG_INFO, "session", "closed agent=%s why=%s", s->address, why);
    broker__audit(b, AUDIT_SESSION_CLOSE, s->address, NULL, NULL, NULL, 0, "closed", 0);
    b->stats.sessions_closed++;
    b->last_close_ms = relais_mono_ms();
    list_push_back(&b->closing, &s->closing_node);
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
    const char *key = b->cfg.insecure ? NULL : zmq_msg_gets(msg, "X-Key");
    char address[RELAIS_ADDRESS_MAX];
    int rc = auth__identify(b, msg, hello, address, reason, sizeof(reason));
    if (rc < 0) {
        /* Journal who proved to be whom (the key) apart from what it claimed (the address
         * in its Hello): a refused Hello never names the address it claimed as its actor. */
        const char *uid = b->cfg.insecure ? NULL : zmq_msg_gets(msg, "User-Id");
        const char *claimed = hello->address && hello->address[0] ? hello->address : NULL;
        auth__refused_hello(b, uid, key, claimed, rc, reason);
        broker__send_error(b, rid, rid_len, rc, reason, true, NULL, 0);
        return;
    }
    /* A session already on this routing id: one from another connection or key is closed
     * as a mismatch (journaled); the same peer saying Hello again starts afresh. */
    session_t *old = session__for_frame(b, rid, rid_len, msg);
    if (old != NULL) session__close(b, old, "hello again on the same connection");

    mailbox_t *mb = mailbox__get(b, address, true);
    if (mb->session != NULL) {
        session_t *prev = mb->session;
        broker__send_error(b, prev->rid, prev->rid_len, RELAIS_EFORBIDDEN,
                           "session replaced by a newer one for the same address", true, NULL, 0);
        session__close(b, prev, "replaced by a newer session");
    }

    session_t *s = xcalloc(1, sizeof(*s));
    if (map_new(&s->inflight_by_id) < 0 || map_new(&s->offers_by_id) < 0 ||
        map_put(b->sessions, rid, rid_len, s) < 0)
        xalloc__oom(sizeof(*s));
    memcpy(s->rid, rid, rid_len);
    s->rid_len = rid_len;
    snprintf(s->address, sizeof(s->address), "%s", address);
    snprintf(s->key, sizeof(s->key), "%s", key ? key : "");
    s->fd = zmq_msg_get(msg, ZMQ_SRCFD);
    if (s->fd >= 0 && map_put(b->sessions_by_fd, &s->fd, sizeof(s->fd), s) < 0)
        xalloc__oom(sizeof(s->fd));
    s->mbox = mb;
    mb->refs++; /* until the session is freed, not only closed */
    unsigned credit = hello->credit ? hello->credit : b->cfg.default_credit;
    s->window = credit > b->cfg.max_credit ? b->cfg.max_credit : credit;
    list_init(&s->inflight);
    list_init(&s->offers);
    list_init(&s->closing_node);
    s->last_seen_ms = relais_mono_ms();
    s->opened_ms = relais_now_ms();
    mb->session = s;
    b->stats.sessions_opened++;
    audit_event_t ev = {.kind = AUDIT_SESSION_OPEN,
                        .actor = s->address,
                        .key = s->key[0] ? s->key : NULL,
                        .outcome = s->key[0] ? "curve" : "insecure"};
    broker__audit_event(b, &ev);
    /* Nothing is sent to the session before its row is committed: after a crash, the
     * deliveries of an address that had a session may have left, and come back with a
     * higher attempt (recover.c). Welcome follows that commit (session__committed). */
    record_session(b, STORE_SESSION_PUT, s->address);
    s->open_gen = b->gen_open;
    b->opening++;
    RLOG(RELAIS_LOG_INFO, "session", "opened agent=%s credit=%u pending=%llu", s->address,
         s->window, (unsigned long long)(mb->mem[0] + mb->mem[1] + mb->disk[0] + mb->disk[1]));
}

typedef struct welcome_ctx {
    broker_t *b;
    uint64_t gen;
    bool ok;
    session_t **ready;
    size_t n, cap;
} welcome_ctx_t;

static void collect_opening(const void *key, size_t key_len, void *value, void *ud)
{
    welcome_ctx_t *c = ud;
    session_t *s = value;
    if (s->welcomed || s->open_gen > c->gen) return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->ready = xrealloc(c->ready, c->cap * sizeof(*c->ready));
    }
    c->ready[c->n++] = s;
}

void session__committed(broker_t *b, uint64_t gen, bool ok)
{
    if (b->opening == 0) return;
    welcome_ctx_t c = {.b = b, .gen = gen, .ok = ok};
    map_foreach(b->sessions, collect_opening, &c);
    for (size_t i = 0; i < c.n; i++) {
        session_t *s = c.ready[i];
        if (s->closing) continue; /* an earlier one's pump closed it */
        b->opening--;
        if (!ok) {
            broker__send_error(b, s->rid, s->rid_len, RELAIS_ESTORE,
                               "store unavailable: cannot open a session now, retry later",
                               true, NULL, 0);
            session__close(b, s, "store unavailable");
            continue;
        }
        s->welcomed = true;
        send_welcome(b, s);
        if (!s->closing) delivery__session_opened(b, s);
    }
    free(c.ready);
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
