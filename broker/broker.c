/*
 * The broker's core loop: one ROUTER socket, polled through its ZMQ_FD on a libuv loop.
 *
 * ZMQ_FD is edge-triggered: it signals that the socket's state changed, not that a message
 * is waiting. So the drain reads until EAGAIN, and every send made outside a drain (a
 * commit completing, a timer) schedules one more drain through an idle handle, since that
 * send may have consumed the notification of messages that arrived meanwhile.
 *
 * Each drain decodes and dispatches up to a budget of messages, then commits the store
 * batch those messages produced: that is the group commit of DESIGN.md.
 */
#include <dirent.h>
#include <errno.h>
#include <malloc.h>
#include <sys/stat.h>
#include <time.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "audit.h"
#include "broker.h"
#include "reserve.h"
#include "relais/log.h"

/* Declared by zmq.h only under ZMQ_BUILD_DRAFT_API, yet honoured by libzmq 4.3 (DESIGN.md):
 * defined here rather than turning on the whole draft API. */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define RELAIS_ZMQ_ZAP_ENFORCE_DOMAIN 93
#else
#define RELAIS_ZMQ_ZAP_ENFORCE_DOMAIN ZMQ_ZAP_ENFORCE_DOMAIN
#endif

#define DRAIN_BUDGET 2048
/* Store operations gathered while a commit runs, past which the broker stops reading the
 * socket until the commit completes: the store sets the pace, and memory stays bounded
 * however fast agents submit and acknowledge. */
#define BATCH_HIGH_WATER 20000
#define TICK_MS 100
#define TRANSPORT_LIMIT_FACTOR 8
#define SNDHWM 100000

void broker_config_defaults(broker_config_t *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->bind = "tcp://127.0.0.1:7400";
    cfg->data_dir = "relais-data";
    cfg->broker_id = "relaisd";
    cfg->heartbeat_ms = 5000;
    cfg->max_frame_bytes = RELAIS_DEFAULT_MAX_FRAME_BYTES;
    cfg->max_recipients = RELAIS_MAX_RECIPIENTS;
    cfg->default_ttl_ms = 7LL * 24 * 3600 * 1000;
    cfg->max_ttl_ms = 90LL * 24 * 3600 * 1000;
    cfg->default_credit = 32;
    cfg->max_credit = 10000;
    cfg->retry_later_ms = 1000;
    cfg->ack_timeout_ms = 60 * 1000;
    cfg->durability = STORE_DURABLE_FULL;
    cfg->dedup_retention_ms = 7LL * 24 * 3600 * 1000;
    cfg->conversation_retention_ms = 180LL * 24 * 3600 * 1000;
    cfg->store_reserve_bytes = 8u << 20;
    cfg->dead_letter_retention_ms = 30LL * 24 * 3600 * 1000;
    cfg->audit_rotate_bytes = 64u << 20;
    cfg->audit_retention_ms = 365LL * 24 * 3600 * 1000;
}

int broker__send(broker_t *b, const uint8_t *rid, size_t rid_len, const uint8_t *data, size_t len)
{
    if (zmq_send(b->router, rid, rid_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0) {
        int err = errno;
        return -(err == EHOSTUNREACH || err == EAGAIN ? err : EHOSTUNREACH);
    }
    if (zmq_send(b->router, data, len, ZMQ_DONTWAIT) < 0) return -errno;
    if (!b->in_drain) broker__kick(b);
    return 0;
}

int broker__send_session(broker_t *b, session_t *s, const uint8_t *data, size_t len)
{
    if (s->closing) return -EHOSTUNREACH;
    int rc = broker__send(b, s->rid, s->rid_len, data, len);
    if (rc < 0) session__close(b, s, rc == -EAGAIN ? "send queue full" : "peer unreachable");
    return rc;
}

int broker__send_session_frame(broker_t *b, session_t *s, const Relais__V1__Frame *f)
{
    uint8_t *buf;
    size_t len;
    int rc = relais_frame_encode(f, &buf, &len);
    if (rc < 0) return rc;
    rc = broker__send_session(b, s, buf, len);
    free(buf);
    return rc;
}

void broker__audit_event(broker_t *b, const audit_event_t *ev)
{
    if (b->audit == NULL) return;
    /* A refusal is counted by the journal itself and named in its next record; the broker
     * refuses new work while the journal is unhealthy (submit.c). */
    (void)audit_record(b->audit, ev);
}

void broker__audit(broker_t *b, int kind, const char *actor, const uint8_t *message_id,
                   const char *body, const char *to, uint32_t attempt, const char *outcome,
                   int code)
{
    audit_event_t ev = {.kind = (audit_kind_t)kind,
                        .actor = actor,
                        .message_id = message_id,
                        .message_id_len = message_id ? RELAIS_MESSAGE_ID_LEN : 0,
                        .body = body,
                        .to = to,
                        .attempt = attempt,
                        .outcome = outcome,
                        .code = code};
    broker__audit_event(b, &ev);
}

int broker__send_frame(broker_t *b, const uint8_t *rid, size_t rid_len, const Relais__V1__Frame *f)
{
    uint8_t *buf;
    size_t len;
    int rc = relais_frame_encode(f, &buf, &len);
    if (rc < 0) return rc;
    rc = broker__send(b, rid, rid_len, buf, len);
    free(buf);
    return rc;
}

void broker__send_error(broker_t *b, const uint8_t *rid, size_t rid_len, int code,
                        const char *reason, bool fatal, const uint8_t *message_id,
                        size_t message_id_len)
{
    Relais__V1__Error e = RELAIS__V1__ERROR__INIT;
    e.code = relais_err_to_wire(code);
    e.reason = (char *)reason;
    e.fatal = fatal;
    e.message_id.data = (uint8_t *)message_id;
    e.message_id.len = message_id ? message_id_len : 0;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_ERROR;
    f.error = &e;
    b->stats.errors++;
    broker__send_frame(b, rid, rid_len, &f);
}

static size_t op_key(const store_op_t *op, uint8_t key[8 + RELAIS_ADDRESS_MAX])
{
    size_t n = strlen(op->address);
    if (n >= RELAIS_ADDRESS_MAX) n = RELAIS_ADDRESS_MAX - 1;
    memcpy(key, &op->seq, 8);
    memcpy(key + 8, op->address, n);
    return 8 + n;
}

void broker__forget_batch_index(broker_t *b, const store_batch_t *batch)
{
    uint8_t key[8 + RELAIS_ADDRESS_MAX];
    for (size_t i = 0; i < batch->count; i++)
        if (batch->ops[i].kind == STORE_DELIVERY_SET && batch->ops[i].address != NULL)
            map_del(b->batch_index, key, op_key(&batch->ops[i], key));
}

void broker__record(broker_t *b, const store_op_t *op)
{
    if (!b->in_drain) broker__kick(b);
    if (op->kind != STORE_DELIVERY_SET || op->address == NULL) {
        store_batch_add(&b->batch, op);
        return;
    }
    uint8_t key[8 + RELAIS_ADDRESS_MAX];
    size_t n = op_key(op, key) - 8;
    void *slot = map_get(b->batch_index, key, 8 + n);
    if (slot != NULL) {
        store_op_t *prev = &b->batch.ops[(uintptr_t)slot - 1];
        /* A first STORED insert must stay an insert; any later change may replace an
         * update. */
        if (prev->state != DELIVERY_STORED) {
            prev->state = op->state;
            prev->attempt = op->attempt;
            prev->at_ms = op->at_ms;
            free(op->address);
            free(op->data);
            return;
        }
    }
    store_batch_add(&b->batch, op);
    if (map_put(b->batch_index, key, 8 + n, (void *)(uintptr_t)b->batch.count) < 0)
        xalloc__oom(8 + n);
}

static void send_pong(broker_t *b, session_t *s)
{
    Relais__V1__Pong p = RELAIS__V1__PONG__INIT;
    p.at_ms = relais_now_ms();
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_PONG;
    f.pong = &p;
    broker__send_session_frame(b, s, &f);
}

/* ---- The ROUTER's monitor: a session ends when its connection does ------------------ */

#define MONITOR_ENDPOINT "inproc://relais-router-monitor"

/* Reads every event the monitor has queued: (uint16 event, uint32 value) then the
 * endpoint. DISCONNECTED carries the descriptor of the connection that ended. */
static void monitor_drain(broker_t *b)
{
    while (b->mon != NULL) {
        int events = 0;
        size_t elen = sizeof(events);
        if (zmq_getsockopt(b->mon, ZMQ_EVENTS, &events, &elen) != 0 || !(events & ZMQ_POLLIN))
            return;
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, b->mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return;
        }
        uint16_t event = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&part) >= 6) {
            memcpy(&event, zmq_msg_data(&part), sizeof(event));
            memcpy(&value, (uint8_t *)zmq_msg_data(&part) + 2, sizeof(value));
        }
        while (zmq_msg_more(&part) && zmq_msg_recv(&part, b->mon, ZMQ_DONTWAIT) >= 0) {
        }
        zmq_msg_close(&part);
        if (event == ZMQ_EVENT_DISCONNECTED) session__connection_closed(b, (int)value);
    }
}

static void on_monitor(uv_poll_t *h, int status, int events)
{
    broker_t *b = h->data;
    monitor_drain(b);
    session__free_closed(b);
    submit__commit(b);
}

static int monitor_open(broker_t *b)
{
    if (zmq_socket_monitor(b->router, MONITOR_ENDPOINT, ZMQ_EVENT_DISCONNECTED) != 0)
        return -errno;
    b->mon = zmq_socket(b->zctx, ZMQ_PAIR);
    if (b->mon == NULL) return -errno;
    int zero = 0;
    zmq_setsockopt(b->mon, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_connect(b->mon, MONITOR_ENDPOINT) != 0) return -errno;
    uv_os_sock_t fd;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(b->mon, ZMQ_FD, &fd, &len) != 0) return -errno;
    uv_poll_init_socket(b->loop, &b->mon_poll, fd);
    b->mon_poll.data = b;
    uv_poll_start(&b->mon_poll, UV_READABLE, on_monitor);
    b->mon_polling = true;
    return 0;
}

/* One decoded body frame from one routing id: the dispatch switch. */
static void handle_frame(broker_t *b, const uint8_t *rid, size_t rid_len, zmq_msg_t *body)
{
    const uint8_t *data = zmq_msg_data(body);
    size_t len = zmq_msg_size(body);
    char reason[RELAIS_REASON_MAX];
    Relais__V1__Frame *f = NULL;
    int rc = relais_frame_decode(data, len, b->cfg.max_frame_bytes, &f, reason, sizeof(reason));
    if (rc < 0) {
        RLOG(RELAIS_LOG_INFO, "broker", "bad frame bytes=%zu code=%s", len, relais_err_name(rc));
        broker__send_error(b, rid, rid_len, rc, reason, false, NULL, 0);
        return;
    }
    if (f->kind_case == RELAIS__V1__FRAME__KIND_HELLO) {
        /* Connections that ended before this Hello are accounted for first: a descriptor
         * reused by this connection must not end the session it is about to open. */
        monitor_drain(b);
        session__hello(b, rid, rid_len, body, f->hello);
        relais_frame_free(&f);
        return;
    }
    session_t *s = session__for_frame(b, rid, rid_len, body);
    if (s == NULL) {
        snprintf(reason, sizeof(reason), "no session: send Hello before %s",
                 relais_frame_kind_name(f->kind_case));
        broker__send_error(b, rid, rid_len, RELAIS_ENOSESSION, reason, false, NULL, 0);
        relais_frame_free(&f);
        return;
    }
    s->last_seen_ms = relais_mono_ms();
    switch (f->kind_case) {
    case RELAIS__V1__FRAME__KIND_SUBMIT:
        submit__handle(b, s, data, len, f->submit);
        break;
    case RELAIS__V1__FRAME__KIND_ACK:
        delivery__ack(b, s, f->ack);
        break;
    case RELAIS__V1__FRAME__KIND_CREDIT: {
        uint64_t w = (uint64_t)s->window + f->credit->credit;
        s->window = w > b->cfg.max_credit ? b->cfg.max_credit : (uint32_t)w;
        delivery__pump(b, s->mbox);
        break;
    }
    case RELAIS__V1__FRAME__KIND_PING:
        send_pong(b, s);
        break;
    case RELAIS__V1__FRAME__KIND_PONG:
        break;
    case RELAIS__V1__FRAME__KIND_CLAIM:
        pool__claim(b, s, f->claim);
        break;
    case RELAIS__V1__FRAME__KIND_BYE:
        session__close(b, s, "bye");
        break;
    default:
        snprintf(reason, sizeof(reason), "%s frames go from the broker to agents, not back",
                 relais_frame_kind_name(f->kind_case));
        broker__send_error(b, rid, rid_len, RELAIS_EBADFRAME, reason, false, NULL, 0);
        break;
    }
    relais_frame_free(&f);
}

/* Reads one ZeroMQ message (routing id + parts). Returns 1 if one was handled, 0 on
 * EAGAIN, -1 on another error. */
static int drain_one(broker_t *b)
{
    zmq_msg_t rid, body;
    zmq_msg_init(&rid);
    if (zmq_msg_recv(&rid, b->router, ZMQ_DONTWAIT) < 0) {
        int err = errno;
        zmq_msg_close(&rid);
        if (err == EAGAIN || err == EINTR) return 0;
        RLOG(RELAIS_LOG_ERROR, "broker", "recv failed: %s", zmq_strerror(err));
        return -1;
    }
    if (!zmq_msg_more(&rid)) { /* a ROUTER always delivers at least id + body */
        zmq_msg_close(&rid);
        return 1;
    }
    zmq_msg_init(&body);
    if (zmq_msg_recv(&body, b->router, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&body);
        zmq_msg_close(&rid);
        return 1;
    }
    const uint8_t *rdata = zmq_msg_data(&rid);
    size_t rlen = zmq_msg_size(&rid);
    if (zmq_msg_more(&body)) {
        /* The protocol is one frame per message: discard the rest and say so once. */
        unsigned parts = 1;
        zmq_msg_t extra;
        do {
            zmq_msg_init(&extra);
            if (zmq_msg_recv(&extra, b->router, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(&extra);
                break;
            }
            parts++;
            int more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            if (!more) break;
        } while (1);
        char reason[RELAIS_REASON_MAX];
        snprintf(reason, sizeof(reason),
                 "a message must be exactly one frame; this one had %u parts", parts);
        broker__send_error(b, rdata, rlen, RELAIS_EBADFRAME, reason, false, NULL, 0);
    } else {
        handle_frame(b, rdata, rlen, &body);
    }
    zmq_msg_close(&body);
    zmq_msg_close(&rid);
    return 1;
}

int64_t broker__transport_limit(const broker_t *b)
{
    /* Frames above max_frame_bytes are read and answered Error{TOO_LARGE} up to this hard
     * limit; beyond it libzmq closes the connection without handing us the frame. Its cost:
     * a hostile peer may make the broker buffer this much per connection. */
    return (int64_t)b->cfg.max_frame_bytes * TRANSPORT_LIMIT_FACTOR + 4096;
}

static bool store_behind(const broker_t *b)
{
    return b->commit_in_flight && b->batch.count >= BATCH_HIGH_WATER;
}

static void drain(broker_t *b)
{
    if (b->in_drain || b->router == NULL) return;
    b->in_drain = true;
    int n = 0;
    while (n < DRAIN_BUDGET && !store_behind(b) && drain_one(b) == 1) n++;
    b->in_drain = false;
    session__free_closed(b);
    submit__commit(b);
    if (store_behind(b)) {
        b->throttled = true; /* the commit's completion kicks us again */
        return;
    }
    if (n == DRAIN_BUDGET) broker__kick(b); /* more may wait: let timers run first */
}

void broker__store_caught_up(broker_t *b)
{
    if (!b->throttled) return;
    b->throttled = false;
    broker__kick(b);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    broker_t *b = h->data;
    drain(b);
}

static void on_kick(uv_idle_t *h)
{
    broker_t *b = h->data;
    uv_idle_stop(h);
    drain(b);
}

void broker__kick(broker_t *b)
{
    if (b->router != NULL && !b->stopping) uv_idle_start(&b->kick, on_kick);
}

/* Sessions that come and go leave memory in the allocator's free lists (libzmq's connection
 * buffers above all, freed by its I/O thread): glibc keeps it from the system until told.
 * Once TRIM_AFTER_CLOSES sessions have closed, the free memory goes back when the churn has
 * settled for TRIM_QUIET_MS, or every TRIM_EVERY_MS under continuous churn. */
#define TRIM_AFTER_CLOSES 64
#define TRIM_QUIET_MS 1000
#define TRIM_EVERY_MS 30000

static void give_back_memory(broker_t *b, int64_t mono)
{
    uint64_t closes = b->stats.sessions_closed - b->trim_closes;
    if (closes < TRIM_AFTER_CLOSES) return;
    if (mono - b->last_close_ms < TRIM_QUIET_MS && mono < b->trim_at_ms) return;
    b->trim_at_ms = mono + TRIM_EVERY_MS;
    b->trim_closes = b->stats.sessions_closed;
    malloc_trim(0);
    RLOG(RELAIS_LOG_INFO, "broker", "memory given back after sessions_closed=%llu mailboxes=%zu",
         (unsigned long long)closes, map_count(b->mailboxes));
}

/* Rotated journal files (audit.log.<seq>) older than the retention period are removed, each
 * removal journaled with the file's name: the chain that remains starts at the first file
 * kept, which `relaisctl audit verify` accepts because it opens with an audit.rotate record. */
static void prune_rotated_journals(broker_t *b)
{
    if (b->cfg.audit_retention_ms <= 0 || b->audit == NULL) return;
    DIR *d = opendir(b->cfg.data_dir);
    if (d == NULL) return;
    time_t cut = time(NULL) - (time_t)(b->cfg.audit_retention_ms / 1000);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, "audit.log.", 10) != 0 || strlen(e->d_name) != 30 ||
            strspn(e->d_name + 10, "0123456789") != 20)
            continue;
        char path[1024];
        snprintf(path, sizeof(path), "%s/%s", b->cfg.data_dir, e->d_name);
        struct stat st;
        if (stat(path, &st) < 0 || st.st_mtime >= cut) continue;
        if (unlink(path) < 0) continue;
        audit_event_t ev = {.kind = AUDIT_RETENTION, .actor = "retention", .outcome = e->d_name};
        broker__audit_event(b, &ev);
        RLOG(RELAIS_LOG_INFO, "broker", "audit journal file past its retention removed file=%s",
             e->d_name);
    }
    closedir(d);
}

static void on_tick(uv_timer_t *t)
{
    broker_t *b = t->data;
    int64_t now = relais_now_ms();   /* business time: expiry, pruning */
    int64_t mono = relais_mono_ms(); /* transport time: liveness, ack timeouts, retries */
    /* A safety net under the edge-triggered ZMQ_FD: should a notification ever be missed,
     * input waits at most one tick. A drain with nothing to read is one EAGAIN. */
    if (!b->throttled) broker__kick(b);
    monitor_drain(b);
    auth__flush_refusals(b, false);
    session__reap(b, mono);
    delivery__tick(b, now, mono);
    if (now >= b->next_prune_ms) {
        submit__prune_dedup(b, now);
        authorize__prune(b, now);
        prune_rotated_journals(b);
        if (b->cfg.dead_letter_retention_ms > 0) {
            uint64_t purged;
            replay__purge(b, now - b->cfg.dead_letter_retention_ms, "retention", &purged);
        }
        b->next_prune_ms = now + 60 * 1000;
    }
    session__free_closed(b);
    give_back_memory(b, mono);
    if (b->watchdog_ms > 0 && mono >= b->watchdog_at_ms) {
        notify__send("WATCHDOG=1");
        b->watchdog_at_ms = mono + b->watchdog_ms;
    }
    if (!reserve_ok(b->reserve) && mono >= b->reserve_check_ms) {
        uint64_t inside = 0;
        b->store->vt->free_bytes(b->store, &inside);
        reserve_check(b->reserve, inside);
        b->reserve_check_ms = mono + 1000;
    }
    submit__commit(b);
}

/* The journal's writer thread made more records durable: Accepted replies waiting on them
 * can go. */
static void notify_audit_durable(void *ud)
{
    broker_t *b = ud;
    uv_async_send(&b->audit_async);
}

static void on_audit_durable(uv_async_t *h)
{
    broker_t *b = h->data;
    submit__release_replies(b);
    if (b->nheld > 0 && b->audit != NULL) audit_want_durable(b->audit, b->held[b->nheld - 1].ticket);
}

static void journal_met_full_disk(void *ud)
{
    broker_t *b = ud;
    reserve_spend(b->reserve, "audit journal");
}

static void stop_audit_notifications(broker_t *b)
{
    if (!b->audit_async_open) return;
    /* After this returns the writer never touches the handle again. */
    audit_on_full(b->audit, NULL, NULL);
    audit_on_durable(b->audit, NULL, NULL);
    uv_close((uv_handle_t *)&b->audit_async, NULL);
    b->audit_async_open = false;
}

static void on_signal(uv_signal_t *h, int signum)
{
    broker_t *b = h->data;
    RLOG(RELAIS_LOG_INFO, "broker", "signal=%d: shutting down", signum);
    broker_shutdown(b);
}

static void on_sighup(uv_signal_t *h, int signum)
{
    broker_t *b = h->data;
    RLOG(RELAIS_LOG_INFO, "broker", "SIGHUP: reloading the directory");
    char result[512];
    notify__send("RELOADING=1");
    int rc = auth__reload(b, result, sizeof(result));
    notify__status(b, rc == 0 ? NULL : result);
}

static int set_int(void *sock, int opt, int value)
{
    return zmq_setsockopt(sock, opt, &value, sizeof(value));
}

/* Accepts "tcp://host:0" as "any free port", which ZeroMQ spells "tcp://host:*". */
static void normalise_endpoint(const char *in, char *out, size_t out_len)
{
    size_t n = strlen(in);
    if (n > 2 && strncmp(in, "tcp://", 6) == 0 && strcmp(in + n - 2, ":0") == 0)
        snprintf(out, out_len, "%.*s:*", (int)(n - 2), in);
    else
        snprintf(out, out_len, "%s", in);
}

static int open_socket(broker_t *b)
{
    b->zctx = zmq_ctx_new();
    if (b->zctx == NULL) return -errno;
    if (!b->cfg.insecure) {
        int rc = zap__open(b); /* before the ROUTER exists: no handshake without it */
        if (rc < 0) return rc;
    }
    b->router = zmq_socket(b->zctx, ZMQ_ROUTER);
    if (b->router == NULL) return -errno;
    int hb = (int)b->cfg.heartbeat_ms;
    int64_t maxmsg = broker__transport_limit(b);
    if (set_int(b->router, ZMQ_ROUTER_MANDATORY, 1) < 0 ||
        set_int(b->router, ZMQ_LINGER, 500) < 0 || set_int(b->router, ZMQ_SNDHWM, SNDHWM) < 0 ||
        set_int(b->router, ZMQ_HEARTBEAT_IVL, hb) < 0 ||
        set_int(b->router, ZMQ_HEARTBEAT_TIMEOUT, 3 * hb) < 0 ||
        set_int(b->router, ZMQ_HEARTBEAT_TTL, 3 * hb) < 0 ||
        zmq_setsockopt(b->router, ZMQ_MAXMSGSIZE, &maxmsg, sizeof(maxmsg)) < 0)
        return -errno;
    if (!b->cfg.insecure) {
        /* CURVE server; the ZAP domain is enforced, so with no handler answering every
         * handshake fails rather than every key being accepted. */
        int enforce = 1;
        if (set_int(b->router, ZMQ_CURVE_SERVER, 1) < 0 ||
            zmq_setsockopt(b->router, ZMQ_CURVE_SECRETKEY, b->curve_secret, 41) < 0 ||
            zmq_setsockopt(b->router, ZMQ_ZAP_DOMAIN, "relais", 6) < 0 ||
            zmq_setsockopt(b->router, RELAIS_ZMQ_ZAP_ENFORCE_DOMAIN, &enforce, sizeof(enforce)) < 0)
            return -errno;
    }
    char ep[256];
    normalise_endpoint(b->cfg.bind, ep, sizeof(ep));
    if (zmq_bind(b->router, ep) < 0) {
        int err = errno;
        RLOG(RELAIS_LOG_ERROR, "broker", "cannot bind endpoint=%s: %s", ep, zmq_strerror(err));
        return -err;
    }
    size_t len = sizeof(b->endpoint);
    if (zmq_getsockopt(b->router, ZMQ_LAST_ENDPOINT, b->endpoint, &len) < 0) return -errno;
    int rc = monitor_open(b);
    if (rc < 0) {
        RLOG(RELAIS_LOG_ERROR, "broker", "cannot monitor the socket's connections: %s",
             relais_strerror(rc));
        return rc;
    }
    size_t fdlen = sizeof(b->zfd);
    if (zmq_getsockopt(b->router, ZMQ_FD, &b->zfd, &fdlen) < 0) return -errno;
    return 0;
}

int broker_open(broker_t *b, const broker_config_t *cfg, uv_loop_t *loop)
{
    memset(b, 0, sizeof(*b));
    b->cfg = *cfg;
    b->loop = loop;
    b->next_seq = 1;
    b->next_receipt_id = 1;
    list_init(&b->retry);
    list_init(&b->idle);
    list_init(&b->pools);
    list_init(&b->closing);
    b->gen_open = 1;
    int rc;
    if ((rc = map_new(&b->sessions)) < 0 || (rc = map_new(&b->mailboxes)) < 0 ||
        (rc = map_new(&b->msgs)) < 0 || (rc = map_new(&b->receipts)) < 0 ||
        (rc = map_new(&b->settling)) < 0 || (rc = map_new(&b->batch_index)) < 0 ||
        (rc = map_new(&b->participating)) < 0 || (rc = map_new(&b->sessions_by_fd)) < 0 ||
        (rc = map_new(&b->pending_conversations)) < 0 || (rc = map_new(&b->replaying)) < 0 ||
        (rc = map_new(&b->refusals)) < 0)
        goto err;
    char path[1024], reason[RELAIS_REASON_MAX];
    /* The directory, the keys and the socket first: a start that fails on them (a port in
     * use, a bad directory) creates nothing on disk and migrates nothing. */
    if ((rc = auth__open(b)) < 0) goto err;
    if ((rc = open_socket(b)) < 0) goto err;
    if (mkdir(cfg->data_dir, 0700) < 0 && errno != EEXIST) {
        rc = -errno;
        RLOG(RELAIS_LOG_ERROR, "broker", "cannot create the data directory %s: %s",
             cfg->data_dir, strerror(errno));
        goto err;
    }
    snprintf(path, sizeof(path), "%s/disk.reserve", cfg->data_dir);
    if ((rc = reserve_open(&b->reserve, path, cfg->store_reserve_bytes)) < 0) goto err;
    snprintf(path, sizeof(path), "%s/relais.db", cfg->data_dir);
    rc = store_sqlite_open(&b->store, path, (store_durability_t)cfg->durability, b->reserve,
                           loop, reason, sizeof(reason));
    if (rc < 0) {
        RLOG(RELAIS_LOG_ERROR, "broker", "store: %s", reason);
        goto err;
    }
    snprintf(path, sizeof(path), "%s/audit.log", cfg->data_dir);
    if ((rc = audit_open(&b->audit, path, reason, sizeof(reason))) < 0) {
        RLOG(RELAIS_LOG_ERROR, "broker", "audit journal: %s", reason);
        goto err;
    }
    b->store->on_put = submit__journal_put; /* before the first commit */
    b->store->on_put_ud = b;
    uv_async_init(loop, &b->audit_async, on_audit_durable);
    b->audit_async.data = b;
    b->audit_async_open = true;
    audit_on_durable(b->audit, notify_audit_durable, b);
    audit_on_full(b->audit, journal_met_full_disk, b);
    audit_set_rotation(b->audit, cfg->audit_rotate_bytes);
    if ((rc = recover__load(b)) < 0) {
        RLOG(RELAIS_LOG_ERROR, "broker", "recovery from the store failed: %s", relais_strerror(rc));
        goto err;
    }
    if ((rc = admin_open(b)) < 0) goto err;

    uv_poll_init_socket(loop, &b->poll, b->zfd);
    b->poll.data = b;
    uv_poll_start(&b->poll, UV_READABLE, on_poll);
    uv_idle_init(loop, &b->kick);
    b->kick.data = b;
    uv_timer_init(loop, &b->tick);
    b->tick.data = b;
    uv_timer_start(&b->tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(loop, &b->sigterm);
    b->sigterm.data = b;
    uv_signal_start(&b->sigterm, on_signal, SIGTERM);
    uv_signal_init(loop, &b->sigint);
    b->sigint.data = b;
    uv_signal_start(&b->sigint, on_signal, SIGINT);
    uv_signal_init(loop, &b->sighup);
    b->sighup.data = b;
    uv_signal_start(&b->sighup, on_sighup, SIGHUP);
    broker__kick(b); /* messages may have arrived between bind and poll start */
    broker__audit(b, AUDIT_BROKER_START, cfg->broker_id, NULL, NULL, NULL, 0,
                  cfg->insecure ? "insecure" : "curve", 0);
    return 0;
err:
    zap__stop(b);
    stop_audit_notifications(b);
    if (b->mon_polling) {
        uv_poll_stop(&b->mon_poll);
        uv_close((uv_handle_t *)&b->mon_poll, NULL);
        b->mon_polling = false;
    }
    if (b->store) b->store->vt->detach(b->store);
    /* Let the closed handles' callbacks run before their memory goes. */
    uv_run(loop, UV_RUN_NOWAIT);
    broker_close(b);
    return rc;
}

void broker_shutdown(broker_t *b)
{
    if (b->stopping) return;
    b->stopping = true;
    notify__send("STOPPING=1");
    uv_poll_stop(&b->poll);
    uv_close((uv_handle_t *)&b->poll, NULL);
    uv_close((uv_handle_t *)&b->kick, NULL);
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->sigterm, NULL);
    uv_close((uv_handle_t *)&b->sigint, NULL);
    uv_close((uv_handle_t *)&b->sighup, NULL);
    zap__stop(b);
    if (b->mon_polling) {
        uv_poll_stop(&b->mon_poll);
        uv_close((uv_handle_t *)&b->mon_poll, NULL);
        b->mon_polling = false;
    }
    admin_shutdown(b);
    /* What was accepted this turn still gets committed and its Accepted sent; sessions
     * close after, their in-flight deliveries recorded as redelivering. */
    submit__commit(b);
    session__close_all(b);
    session__free_closed(b);
    auth__flush_refusals(b, true);
    submit__commit(b);
    broker__finish_shutdown(b);
}

void broker__finish_shutdown(broker_t *b)
{
    if (b->detached || b->commit_in_flight) return;
    if (b->batch.count > 0 || b->nreplies > 0) {
        submit__commit(b);
        if (b->commit_in_flight) return;
    }
    /* Replies still waiting for their journal records: the records are written and synced
     * now (the loop may wait on the disk at shutdown), and the replies sent. */
    if (b->nheld > 0 && b->audit != NULL) {
        audit_sync(b->audit);
        submit__release_replies(b);
    }
    stop_audit_notifications(b);
    b->detached = true;
    b->store->vt->detach(b->store);
}

void broker_close(broker_t *b)
{
    if (b->router) zmq_socket_monitor(b->router, NULL, 0);
    if (b->mon) zmq_close(b->mon);
    b->mon = NULL;
    if (b->router) zmq_close(b->router);
    b->router = NULL;
    zap__close(b); /* after the ROUTER: it must outlive every socket it guards */
    if (b->zctx) zmq_ctx_term(b->zctx);
    b->zctx = NULL;
    /* Messages not yet routed first: their deliveries hold their mailboxes. */
    for (size_t i = 0; i < b->nheld; i++) msg__free(b->held[i].msg);
    b->nheld = 0;
    for (size_t i = 0; i < b->nreplies; i++) {
        msg__free(b->replies[i].msg);
        free(b->replies[i].replay_key);
    }
    b->nreplies = 0;
    delivery__free_all(b);
    map_destroy(&b->sessions);
    map_destroy(&b->sessions_by_fd);
    if (b->refusals != NULL) auth__flush_refusals(b, true); /* frees the entries */
    map_destroy(&b->refusals);
    map_destroy(&b->mailboxes);
    map_destroy(&b->msgs);
    map_destroy(&b->receipts);
    map_destroy(&b->settling);
    map_destroy(&b->batch_index);
    authorize__settled(b, &b->participation_keys);
    map_destroy(&b->participating);
    map_destroy(&b->pending_conversations);
    map_destroy(&b->replaying);
    store_batch_free(&b->batch);
    free(b->replies);
    b->replies = NULL;
    free(b->held);
    b->held = NULL;
    store_close(&b->store);
    reserve_close(&b->reserve);
    admin_close(b);
    auth__close(b);
    if (b->audit != NULL) {
        broker__audit(b, AUDIT_BROKER_STOP, b->cfg.broker_id, NULL, NULL, NULL, 0, "stopped", 0);
        audit_close(&b->audit);
    }
}
