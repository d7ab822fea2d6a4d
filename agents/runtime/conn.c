/*
 * The agent's connection: one ZeroMQ DEALER socket and its monitor, driven by libuv.
 *
 * ZeroMQ exposes a socket to an event loop through ZMQ_FD, which is edge-triggered: it
 * signals that ZMQ_EVENTS may have changed, and every zmq_send, zmq_recv or ZMQ_EVENTS
 * read may consume that signal while messages are still waiting. So the loop drains each
 * socket until ZMQ_EVENTS shows no input, and after every send it schedules one more drain
 * on an idle handle — deferred, so that a handler that sends is never re-entered from
 * inside its own send. The monitor (an inproc PAIR fed by zmq_socket_monitor) tells the
 * session when a ZMTP handshake completed and when the peer went away; the heartbeat timer
 * sends Ping when we have been quiet and gives up on a broker silent for three intervals by
 * opening a fresh socket, which gets a fresh routing id.
 *
 * ZeroMQ reconnects by itself a connection that was refused or dropped, but not one whose
 * secure handshake the broker refused: libzmq 4.3.4 then ends the session for good, so an
 * agent started before its key was enrolled would stay offline after the enrolment. Every
 * failed handshake therefore closes the socket and a fresh one tries again after a backoff
 * with jitter (1 s doubling to 30 s: a refusal lasts until an operator acts). The monitor's
 * events also tell why the agent cannot connect — its key not enrolled (ZAP status 400),
 * the wrong broker key (the broker cannot open our CURVE HELLO and drops the connection, which
 * libzmq reports as HANDSHAKE_FAILED_NO_DETAIL with EPIPE or ECONNRESET), CURVE on one side
 * only, or nothing listening (CONNECT_RETRIED) — and each cause is said once, in a sentence,
 * in the log and to the state callback, until the cause changes or a handshake succeeds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zmq.h>

#include "agent_internal.h"
#include "relais/log.h"

/* Messages read in one loop turn before yielding to timers and other agents' work. */
#define DRAIN_BUDGET 256

/* ZeroMQ reconnects a dropped TCP connection by itself, with this backoff. */
#define RECONNECT_IVL_MS 100
#define RECONNECT_IVL_MAX_MS 2000

/* How long a closing socket may keep trying to deliver our Bye. */
#define BYE_LINGER_MS 100

static void on_readable(uv_poll_t *handle, int status, int events);

static int set_opt(void *sock, int option, int value)
{
    return zmq_setsockopt(sock, option, &value, sizeof(value)) == 0 ? 0 : -errno;
}

static int configure(relais_agent_t *a, void *sock)
{
    int hb = (int)a->heartbeat_ms;
    int rc = 0;
    /* Nothing queued may outlive the socket: the outbox, not ZeroMQ, owns what must be
     * resent. */
    if (!rc) rc = set_opt(sock, ZMQ_LINGER, 0);
    /* No send high-water mark: we send Submits only in session and Acks only for what
     * we received, so the queue is bounded by our own traffic, and a refused send would
     * otherwise strand a frame until the next reconnect. */
    if (!rc) rc = set_opt(sock, ZMQ_SNDHWM, 0);
    if (!rc) rc = set_opt(sock, ZMQ_RECONNECT_IVL, RECONNECT_IVL_MS);
    if (!rc) rc = set_opt(sock, ZMQ_RECONNECT_IVL_MAX, RECONNECT_IVL_MAX_MS);
    if (!rc) rc = set_opt(sock, ZMQ_HEARTBEAT_IVL, hb);
    if (!rc) rc = set_opt(sock, ZMQ_HEARTBEAT_TIMEOUT, 3 * hb);
    if (!rc) rc = set_opt(sock, ZMQ_HEARTBEAT_TTL, 3 * hb);
    if (!rc && a->curve_server[0]) {
        /* Z85 keys are 40 characters; ZeroMQ takes them with a terminating NUL (41). */
        if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, a->curve_server, 41) != 0 ||
            zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, a->curve_public, 41) != 0 ||
            zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, a->curve_secret, 41) != 0)
            rc = errno == EINVAL ? RELAIS_ECONFIG : -errno;
    }
    return rc;
}

static int poll_socket(relais_agent_t *a, void *sock, uv_poll_t **out)
{
    int fd;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(sock, ZMQ_FD, &fd, &len) != 0) return -errno;
    uv_poll_t *p = malloc(sizeof(*p));
    if (!p) return -ENOMEM;
    int rc = uv_poll_init(a->loop, p, fd);
    if (rc != 0) {
        free(p);
        return rc;
    }
    p->data = a;
    a->open_handles++;
    *out = p;
    return uv_poll_start(p, UV_READABLE, on_readable);
}

int agent__conn_open(relais_agent_t *a)
{
    agent_conn_t *c = &a->conn;
    char mon_endpoint[64];
    int rc;
    a->conn_gen++;
    snprintf(mon_endpoint, sizeof(mon_endpoint), "inproc://relais-agent-monitor-%u", a->conn_gen);
    if (!(c->sock = zmq_socket(a->zctx, ZMQ_DEALER))) goto zmq_err;
    if ((rc = configure(a, c->sock)) != 0) goto err;
    if (zmq_socket_monitor(c->sock, mon_endpoint,
                           ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED |
                               ZMQ_EVENT_CONNECT_RETRIED | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_AUTH) != 0)
        goto zmq_err;
    /* Connected before the DEALER connects: the monitor drops events nobody reads. */
    if (!(c->mon = zmq_socket(a->zctx, ZMQ_PAIR))) goto zmq_err;
    if ((rc = set_opt(c->mon, ZMQ_LINGER, 0)) != 0) goto err;
    if (zmq_connect(c->mon, mon_endpoint) != 0) goto zmq_err;
    if ((rc = poll_socket(a, c->sock, &c->sock_poll)) != 0) goto err;
    if ((rc = poll_socket(a, c->mon, &c->mon_poll)) != 0) goto err;
    if (zmq_connect(c->sock, a->endpoint) != 0) {
        rc = errno == EINVAL || errno == EPROTONOSUPPORT || errno == ENOCOMPATPROTO ? RELAIS_ECONFIG
                                                                                    : -errno;
        goto err;
    }
    a->conn_failed = false;
    return 0;

zmq_err:
    rc = -errno;
err:
    agent__conn_close(a, false);
    return rc;
}

static void on_poll_closed(uv_handle_t *handle)
{
    relais_agent_t *a = handle->data;
    free(handle);
    agent__handle_released(a);
}

void agent__conn_close(relais_agent_t *a, bool linger)
{
    agent_conn_t *c = &a->conn;
    /* Polls stop before the descriptors they watch go away with their sockets. */
    if (c->sock_poll) uv_close((uv_handle_t *)c->sock_poll, on_poll_closed);
    if (c->mon_poll) uv_close((uv_handle_t *)c->mon_poll, on_poll_closed);
    c->sock_poll = c->mon_poll = NULL;
    if (c->sock) {
        zmq_socket_monitor(c->sock, NULL, 0);
        if (linger) set_opt(c->sock, ZMQ_LINGER, BYE_LINGER_MS);
        zmq_close(c->sock);
        c->sock = NULL;
    }
    if (c->mon) {
        zmq_close(c->mon);
        c->mon = NULL;
    }
}

static void on_reconnect(uv_timer_t *timer)
{
    relais_agent_t *a = timer->data;
    agent__conn_close(a, false);
    int rc = agent__conn_open(a);
    if (rc != 0) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s cannot open a fresh socket: %s retry_ms=%llu",
             a->address, relais_strerror(rc), (unsigned long long)a->backoff_ms);
        a->conn_failed = true;
        uv_timer_start(&a->reconnect, on_reconnect, a->backoff_ms, 0);
        a->backoff_ms =
            a->backoff_ms * 2 > AGENT_BACKOFF_MAX_MS ? AGENT_BACKOFF_MAX_MS : a->backoff_ms * 2;
        return;
    }
    uv_update_time(a->loop);
    a->last_send = a->last_recv = uv_now(a->loop);
    RLOG(RELAIS_LOG_DEBUG, "agent", "agent=%s fresh socket connecting endpoint=%s", a->address,
         a->endpoint);
}

void agent__conn_reset(relais_agent_t *a, bool backoff, const char *detail)
{
    if (a->conn_failed || a->phase != AGENT_PHASE_RUNNING) return;
    a->conn_failed = true;
    agent__set_state(a, RELAIS_AGENT_DISCONNECTED, detail);
    uint64_t delay = 0;
    if (backoff) {
        delay = a->backoff_ms;
        a->backoff_ms =
            a->backoff_ms * 2 > AGENT_BACKOFF_MAX_MS ? AGENT_BACKOFF_MAX_MS : a->backoff_ms * 2;
    }
    uv_timer_start(&a->reconnect, on_reconnect, delay, 0);
}

/*
 * Says why the agent cannot connect: once per cause, as a WARN line and a DISCONNECTED report
 * whose detail is the sentence; a repeat of the same cause is logged at debug level only.
 */
static void report_problem(relais_agent_t *a, agent_problem_t problem, const char *sentence)
{
    if (a->problem == problem) {
        RLOG(RELAIS_LOG_DEBUG, "agent", "agent=%s still cannot connect: %s", a->address, sentence);
        return;
    }
    a->problem = problem;
    RLOG(RELAIS_LOG_WARN, "agent", "agent=%s endpoint=%s cannot connect: %s", a->address,
         a->endpoint, sentence);
    agent__report_state(a, RELAIS_AGENT_DISCONNECTED, sentence);
}

/* A uniform draw in [0, n), n > 0: jitter needs no more than xorshift64. */
static uint64_t jitter_draw(relais_agent_t *a, uint64_t n)
{
    uint64_t x = a->jitter_state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    a->jitter_state = x;
    return x % n;
}

/*
 * The broker refused the secure handshake, which libzmq will not retry: says why, and opens
 * a fresh socket after the refusal backoff — half of it fixed, half drawn at random, so that
 * agents refused together do not come back together — which then doubles, up to its bound.
 */
static void retry_after_refusal(relais_agent_t *a, agent_problem_t problem, const char *sentence)
{
    if (a->conn_failed || a->phase != AGENT_PHASE_RUNNING) return;
    a->conn_failed = true;
    report_problem(a, problem, sentence);
    uint64_t base = a->refused_backoff_ms;
    uint64_t delay = base / 2 + jitter_draw(a, base / 2 + 1);
    a->refused_backoff_ms =
        base * 2 > AGENT_REFUSED_BACKOFF_MAX_MS ? AGENT_REFUSED_BACKOFF_MAX_MS : base * 2;
    RLOG(RELAIS_LOG_DEBUG, "agent", "agent=%s fresh socket in %llu ms", a->address,
         (unsigned long long)delay);
    uv_timer_start(&a->reconnect, on_reconnect, delay, 0);
}

static const char SAYS_NO_CURVE[] = "the broker does not use CURVE encryption but this agent "
                                    "does: the endpoint is not a production relaisd, or it runs "
                                    "with --insecure";
static const char SAYS_NEEDS_CURVE[] = "the broker requires CURVE encryption and this agent has "
                                       "no keys: give it the broker's public key and its own "
                                       "keypair";
static const char SAYS_SERVER_KEY[] =
    "the broker closed the connection during the secure handshake: the broker's public key "
    "this agent was given is most likely not the broker's (compare it with the broker's key "
    "file)";

/*
 * The sentence for a handshake that failed without a ZAP status (see the file comment). A
 * broker that drops the connection mid-handshake gives libzmq no reason to report: with our
 * CURVE keys, it could not open our HELLO (the wrong broker key); without keys, it expected
 * CURVE (libzmq reports the mismatch itself only when it reads the greeting first). A broker
 * stopping in the middle of a handshake looks the same, so the first drop in a row is only
 * retried, and the second is named.
 */
static void handshake_failed(relais_agent_t *a, uint16_t event, uint32_t value)
{
    char sentence[320];
    agent_problem_t problem = AGENT_PROBLEM_HANDSHAKE;
    bool curve = a->curve_server[0] != '\0';
    bool dropped = event == ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL &&
                   (value == EPIPE || value == ECONNRESET || value == 0);
    if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL &&
        value == ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
        problem = AGENT_PROBLEM_MECHANISM;
        snprintf(sentence, sizeof(sentence), "%s", curve ? SAYS_NO_CURVE : SAYS_NEEDS_CURVE);
    } else if (dropped && ++a->handshake_drops < 2) {
        RLOG(RELAIS_LOG_INFO, "agent",
             "agent=%s the broker closed the connection during the handshake; trying again",
             a->address);
        problem = a->problem; /* nothing new to say yet */
        snprintf(sentence, sizeof(sentence),
                 "the broker closed the connection during the "
                 "handshake");
    } else if (dropped) {
        problem = curve ? AGENT_PROBLEM_SERVER_KEY : AGENT_PROBLEM_MECHANISM;
        snprintf(sentence, sizeof(sentence), "%s", curve ? SAYS_SERVER_KEY : SAYS_NEEDS_CURVE);
    } else if (event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL) {
        snprintf(sentence, sizeof(sentence),
                 "the secure handshake with the broker failed (protocol error 0x%x): is the "
                 "endpoint a relaisd of a compatible version?",
                 (unsigned)value);
    } else {
        snprintf(sentence, sizeof(sentence),
                 "the handshake with the broker failed (%s): is the endpoint a relaisd?",
                 zmq_strerror((int)value));
    }
    retry_after_refusal(a, problem, sentence);
}

static void on_drain(uv_idle_t *idle);

static void schedule_drain(relais_agent_t *a)
{
    if (a->conn.sock && a->phase == AGENT_PHASE_RUNNING && !uv_is_active((uv_handle_t *)&a->drain))
        uv_idle_start(&a->drain, on_drain);
}

static bool has_input(void *sock)
{
    int events = 0;
    size_t len = sizeof(events);
    if (zmq_getsockopt(sock, ZMQ_EVENTS, &events, &len) != 0) return false;
    return (events & ZMQ_POLLIN) != 0;
}

/* Reads the monitor's events: each is two parts, (uint16 event, uint32 value) and the
 * endpoint. */
static void drain_monitor(relais_agent_t *a)
{
    while (a->conn.mon && !a->conn_failed && has_input(a->conn.mon)) {
        zmq_msg_t part;
        uint16_t event = 0;
        uint32_t value = 0;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, a->conn.mon, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&part);
            return;
        }
        if (zmq_msg_size(&part) >= 6) {
            memcpy(&event, zmq_msg_data(&part), sizeof(event));
            memcpy(&value, (uint8_t *)zmq_msg_data(&part) + 2, sizeof(value));
        }
        while (zmq_msg_more(&part) && zmq_msg_recv(&part, a->conn.mon, ZMQ_DONTWAIT) >= 0) {
        }
        zmq_msg_close(&part);

        switch (event) {
        case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
            a->problem = AGENT_PROBLEM_NONE;
            a->handshake_drops = 0;
            agent__session_handshake(a);
            break;
        case ZMQ_EVENT_DISCONNECTED:
            agent__session_disconnected(a, "connection to broker lost");
            break;
        case ZMQ_EVENT_CONNECT_RETRIED: {
            /* ZeroMQ retries this one by itself, with its own backoff. */
            char sentence[320];
            snprintf(sentence, sizeof(sentence),
                     "nothing is listening at %s (connection refused or unanswered): is relaisd "
                     "running there? retrying",
                     a->endpoint);
            report_problem(a, AGENT_PROBLEM_NOT_LISTENING, sentence);
            break;
        }
        case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH: {
            char sentence[320];
            agent_problem_t problem = AGENT_PROBLEM_HANDSHAKE;
            if (value == 400) {
                problem = AGENT_PROBLEM_KEY_REFUSED;
                snprintf(sentence, sizeof(sentence),
                         "the broker refused this agent's key: the key is not enrolled in the "
                         "territory directory (or was revoked); retrying until it is");
            } else {
                snprintf(sentence, sizeof(sentence),
                         "the broker refused this agent's key (ZAP status %u); retrying",
                         (unsigned)value);
            }
            retry_after_refusal(a, problem, sentence);
            break;
        }
        default:
            handshake_failed(a, event, (uint32_t)value);
            break;
        }
    }
}

/* Reads the DEALER until it has no input, DRAIN_BUDGET messages at most per turn. */
static void drain(relais_agent_t *a)
{
    drain_monitor(a);
    for (unsigned n = 0; a->conn.sock && !a->conn_failed && has_input(a->conn.sock); n++) {
        if (n == DRAIN_BUDGET) {
            schedule_drain(a);
            return;
        }
        zmq_msg_t msg;
        zmq_msg_init(&msg);
        if (zmq_msg_recv(&msg, a->conn.sock, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&msg);
            return;
        }
        if (zmq_msg_more(&msg)) {
            /* The protocol has one frame per message; the rest of this one is dropped. */
            RLOG(RELAIS_LOG_WARN, "agent", "agent=%s dropped a multi-part message", a->address);
            while (zmq_msg_more(&msg) && zmq_msg_recv(&msg, a->conn.sock, ZMQ_DONTWAIT) >= 0) {
            }
        } else {
            a->last_recv = uv_now(a->loop);
            agent__session_frame(a, zmq_msg_data(&msg), zmq_msg_size(&msg));
        }
        zmq_msg_close(&msg);
    }
}

/*
 * One turn's reading, then one transaction that forgets every submission answered in it:
 * a burst of Accepted costs one commit, not one each.
 */
static void drain_and_flush(relais_agent_t *a)
{
    drain(a);
    int rc = agent__outbox_flush(a->outbox);
    if (rc != 0)
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s cannot forget answered submissions yet: %s",
             a->address, relais_strerror(rc));
}

static void on_drain(uv_idle_t *idle)
{
    relais_agent_t *a = idle->data;
    uv_idle_stop(idle);
    drain_and_flush(a);
}

static void on_readable(uv_poll_t *handle, int status, int events)
{
    relais_agent_t *a = handle->data;
    if (status < 0)
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s poll error: %s", a->address, uv_strerror(status));
    drain_and_flush(a);
}

int agent__send_bytes(relais_agent_t *a, const uint8_t *data, size_t len)
{
    if (!a->conn.sock) return RELAIS_ECLOSED;
    int rc = zmq_send(a->conn.sock, data, len, ZMQ_DONTWAIT) < 0 ? -errno : 0;
    if (rc == 0) a->last_send = uv_now(a->loop);
    schedule_drain(a);
    return rc;
}

int agent__send_frame(relais_agent_t *a, const Relais__V1__Frame *frame)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    int rc = relais_frame_encode(frame, &buf, &len);
    if (rc == 0) rc = agent__send_bytes(a, buf, len);
    if (rc != 0)
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s cannot send %s: %s", a->address,
             relais_frame_kind_name(frame->kind_case), relais_strerror(rc));
    free(buf);
    return rc;
}

static void send_ping(relais_agent_t *a)
{
    Relais__V1__Ping ping = RELAIS__V1__PING__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    ping.at_ms = relais_now_ms();
    f.kind_case = RELAIS__V1__FRAME__KIND_PING;
    f.ping = &ping;
    agent__send_frame(a, &f);
}

static void on_tick(uv_timer_t *timer)
{
    relais_agent_t *a = timer->data;
    if (!a->conn.sock || a->conn_failed) return;
    if (a->state != RELAIS_AGENT_CONNECTING && a->state != RELAIS_AGENT_READY) return;
    uint64_t now = uv_now(a->loop);
    uint64_t hb = a->heartbeat_ms;
    if (now - a->last_recv >= 3 * hb) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s broker silent for %llu ms, reconnecting",
             a->address, (unsigned long long)(now - a->last_recv));
        agent__conn_reset(a, false, "broker silent for 3 heartbeats");
        return;
    }
    /* Before Welcome a Ping would only earn an Error{NO_SESSION}. */
    if (a->state == RELAIS_AGENT_READY && now - a->last_send >= hb) send_ping(a);
}

void agent__tick_restart(relais_agent_t *a)
{
    uint64_t interval = a->heartbeat_ms / 4;
    if (interval < 10) interval = 10;
    uv_timer_start(&a->tick, on_tick, interval, interval);
}
