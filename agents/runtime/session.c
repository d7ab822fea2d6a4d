/*
 * The agent's side of the session: what each frame from the broker means.
 *
 * One dispatch switch over the frame kind, one function per kind. The session is a small
 * state machine: a completed ZMTP handshake sends Hello (CONNECTING); Welcome makes the
 * agent READY after every unconfirmed submission has been resent, in order; a lost
 * connection makes it DISCONNECTED until the next handshake. Deliveries go to the
 * application's handler unless the dedup window has seen them, and every delivery and every
 * receipt is acknowledged — a delivery only once its dedup entry is durable when the agent
 * has a state file. A submission's answer goes to its own callback, or to the on_recovered
 * callback when a previous run submitted it. With conversation tracking on, deliveries,
 * receipts and answers also go through conv.c, which may refuse a delivery before its
 * handler sees it. Broker errors are mapped to RELAIS_E… codes here and nowhere else.
 */
#include <stdio.h>
#include <string.h>

#include "agent_internal.h"
#include "conv_internal.h"
#include "relais/log.h"

/*
 * A Deliver wraps an envelope that fitted the broker's limit as a Submit, plus the stamped
 * sender and a few fields: accept that much more than max_frame_bytes.
 */
#define DELIVER_SLACK_BYTES 4096

static void send_hello(relais_agent_t *a)
{
    Relais__V1__Hello hello = RELAIS__V1__HELLO__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    hello.protocol_version = RELAIS_PROTOCOL_VERSION;
    hello.software = a->software;
    hello.credit = a->credit;
    hello.address = a->address;
    f.kind_case = RELAIS__V1__FRAME__KIND_HELLO;
    f.hello = &hello;
    agent__send_frame(a, &f);
}

void agent__session_handshake(relais_agent_t *a)
{
    /* The broker has just proved it is there: liveness counts from now. */
    a->last_recv = uv_now(a->loop);
    send_hello(a);
    agent__set_state(a, RELAIS_AGENT_CONNECTING, "handshake done, hello sent");
}

void agent__session_disconnected(relais_agent_t *a, const char *detail)
{
    if (a->state == RELAIS_AGENT_CONNECTING || a->state == RELAIS_AGENT_READY)
        agent__set_state(a, RELAIS_AGENT_DISCONNECTED, detail);
}

static void complete(relais_agent_t *a, agent_outbox_entry_t **entry,
                     const relais_send_result_t *result)
{
    /* A rejected send undoes the conversation transition it made, before anyone is told. */
    agent__conv_on_result(a, (*entry)->id, result->status, result->reason);
    if ((*entry)->recovered) {
        if (a->recovered_fn) a->recovered_fn(a, result, a->recovered_ud);
    } else if ((*entry)->cb) {
        (*entry)->cb(a, result, (*entry)->ud);
    }
    agent__outbox_entry_free(entry);
}

void agent__session_fail_all(relais_agent_t *a, int status)
{
    /* With a state file nothing is lost: the submissions stay recorded there and the next
     * run resends them. A recovered one has no callback of this run to tell, and its
     * outcome is still to come. */
    const char *reason = a->state_file ? "agent stopped before the broker answered; kept in the "
                                         "state file and resent by the next run"
                                       : relais_strerror(status);
    agent_outbox_entry_t *e;
    while ((e = agent__outbox_take_first(a->outbox)) != NULL) {
        if (e->recovered) {
            agent__outbox_entry_free(&e);
            continue;
        }
        relais_send_result_t r = {.status = status, .reason = reason, .message_id = e->id};
        complete(a, &e, &r);
    }
}

static void on_welcome(relais_agent_t *a, const Relais__V1__Welcome *w)
{
    agent__offers_free(a); /* a new session: claims made in the last one are void */
    if (w->address && *w->address && strlen(w->address) < sizeof(a->address))
        strcpy(a->address, w->address);
    if (w->heartbeat_ms && w->heartbeat_ms != a->heartbeat_ms) {
        a->heartbeat_ms = w->heartbeat_ms;
        agent__tick_restart(a);
    }
    if (w->max_frame_bytes) a->max_frame_bytes = w->max_frame_bytes;
    if (w->max_recipients) a->max_recipients = w->max_recipients;
    a->backoff_ms = AGENT_BACKOFF_MIN_MS;
    a->refused_backoff_ms = AGENT_REFUSED_BACKOFF_MIN_MS;
    size_t n = agent__outbox_count(a->outbox);
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s welcome broker=%s heartbeat_ms=%u resend=%zu",
         a->address, w->broker_id ? w->broker_id : "", a->heartbeat_ms, n);
    /* Resent before READY is reported, so a state callback that sends queues behind them. */
    for (const agent_outbox_entry_t *e = agent__outbox_first(a->outbox); e; e = e->next)
        agent__send_bytes(a, e->frame, e->frame_len);
    agent__set_state(a, RELAIS_AGENT_READY, "welcome received");
}

static void on_accepted(relais_agent_t *a, const Relais__V1__Accepted *acc)
{
    char id[37];
    agent_outbox_entry_t *e =
        agent__outbox_take(a->outbox, acc->message_id.data, acc->message_id.len);
    relais_id_format(acc->message_id.data, acc->message_id.len, id);
    if (!e) {
        RLOG(RELAIS_LOG_DEBUG, "agent", "agent=%s accepted msg=%s not in outbox", a->address, id);
        return;
    }
    RLOG(RELAIS_LOG_DEBUG, "agent", "agent=%s accepted msg=%s duplicate=%d recovered=%d",
         a->address, id, acc->duplicate, e->recovered);
    relais_send_result_t r = {.status = 0,
                              .reason = "",
                              .message_id = e->id,
                              .duplicate = acc->duplicate,
                              .accepted_at_ms = acc->accepted_at_ms};
    complete(a, &e, &r);
}

static void fail_one(relais_agent_t *a, agent_outbox_entry_t **entry, int status,
                     const char *reason, int64_t retry_after_ms)
{
    char id[37];
    RLOG(RELAIS_LOG_INFO, "agent", "agent=%s rejected msg=%s code=%s reason=\"%s\"", a->address,
         relais_id_format((*entry)->id, RELAIS_MESSAGE_ID_LEN, id), relais_err_name(status),
         reason);
    relais_send_result_t r = {.status = status,
                              .reason = reason,
                              .message_id = (*entry)->id,
                              .retry_after_ms = retry_after_ms};
    complete(a, entry, &r);
}

static void on_rejected(relais_agent_t *a, const Relais__V1__Rejected *rej)
{
    agent_outbox_entry_t *e =
        agent__outbox_take(a->outbox, rej->message_id.data, rej->message_id.len);
    if (!e) return;
    fail_one(a, &e, relais_err_from_wire(rej->code), rej->reason ? rej->reason : "",
             rej->retry_after_ms);
}

static void send_ack(relais_agent_t *a, ProtobufCBinaryData message_id, uint64_t receipt_id,
                     relais_outcome_t outcome, const char *reason)
{
    Relais__V1__Ack ack = RELAIS__V1__ACK__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    ack.message_id = message_id;
    ack.receipt_id = receipt_id;
    ack.outcome = (Relais__V1__Ack__Outcome)outcome;
    ack.reason = (char *)reason;
    f.kind_case = RELAIS__V1__FRAME__KIND_ACK;
    f.ack = &ack;
    agent__send_frame(a, &f);
}

static const agent_handler_t *find_handler(const relais_agent_t *a, int body_case)
{
    if (body_case > 0 && body_case < AGENT_MAX_BODY_CASE && a->handlers[body_case].fn)
        return &a->handlers[body_case];
    return a->handlers[0].fn ? &a->handlers[0] : NULL;
}

bool agent__has_handler(const relais_agent_t *a, int body_case)
{
    return find_handler(a, body_case) != NULL;
}

void agent__send_ack(relais_agent_t *a, ProtobufCBinaryData message_id, relais_outcome_t outcome,
                     const char *reason)
{
    send_ack(a, message_id, 0, outcome, reason);
}

void agent__deliver(relais_agent_t *a, const Relais__V1__Deliver *d)
{
    const Relais__V1__Envelope *env = d->envelope;
    if (!env || env->message_id.len == 0) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s deliver without a message id ignored", a->address);
        return;
    }
    const char *sender = env->sender ? env->sender : "";
    char id[37];
    relais_id_format(env->message_id.data, env->message_id.len, id);
    relais_outcome_t outcome;
    if (agent__dedup_seen(a->dedup, sender, env->message_id.data, env->message_id.len, &outcome)) {
        /* Handled before: the first Ack was lost or the session dropped before it arrived.
         * Repeat the first answer; the handler must not act twice. */
        RLOG(RELAIS_LOG_DEBUG, "agent", "agent=%s duplicate delivery msg=%s from=%s attempt=%u",
             a->address, id, sender, d->attempt);
        send_ack(a, env->message_id, 0, outcome,
                 outcome == RELAIS_REFUSED ? "refused on an earlier delivery" : "");
        return;
    }

    relais_delivery_t dl = {.envelope = env, .attempt = d->attempt, .offered = d->offered};
    /* A tracked conversation decides first: a message that does not fit is refused, one
     * that repeats what is known is acknowledged, and neither reaches the handler. */
    conv_delivery_t cd;
    int verdict = agent__conv_deliver_begin(a, env, &cd, dl.reason, sizeof(dl.reason));
    const agent_handler_t *h = find_handler(a, env->body_case);
    if (verdict == CONV_REFUSED) {
        outcome = RELAIS_REFUSED;
    } else if (verdict == CONV_STALE) {
        outcome = RELAIS_PROCESSED;
    } else if (!h) {
        outcome = RELAIS_REFUSED;
        snprintf(dl.reason, sizeof(dl.reason), "no handler for %s",
                 relais_body_name(env->body_case));
    } else {
        outcome = h->fn(a, &dl, h->ud);
        dl.reason[sizeof(dl.reason) - 1] = '\0';
        if (outcome != RELAIS_PROCESSED && outcome != RELAIS_REFUSED &&
            outcome != RELAIS_RETRY_LATER) {
            RLOG(RELAIS_LOG_ERROR, "agent", "agent=%s handler for %s returned outcome %d",
                 a->address, relais_body_name(env->body_case), (int)outcome);
            outcome = RELAIS_RETRY_LATER;
        }
    }
    RLOG(RELAIS_LOG_DEBUG, "agent",
         "agent=%s delivered msg=%s from=%s body=%s attempt=%u outcome=%d", a->address, id, sender,
         relais_body_name(env->body_case), d->attempt, (int)outcome);
    /* RETRY_LATER asks for another attempt, which must reach the handler again. The entry
     * is durable before the Ack leaves: once the broker forgets the delivery, a restarted
     * agent still recognises it — and the conversation's new state is written in the same
     * transaction. When they cannot be recorded the Ack goes anyway — holding it back would
     * only bring the delivery back to the handler sooner. */
    int rc = 0;
    if (outcome != RELAIS_RETRY_LATER || cd.target) {
        rc = agent__state_hold(a->state_file);
        bool held = rc == 0 && a->state_file;
        int conv_rc = agent__conv_deliver_end(a, &cd, outcome);
        if (outcome != RELAIS_RETRY_LATER) {
            int dedup_rc = agent__dedup_remember(a->dedup, sender, env->message_id.data,
                                                 env->message_id.len, outcome);
            if (rc == 0) rc = dedup_rc;
        }
        if (rc == 0) rc = conv_rc;
        if (held) rc = agent__state_release(a->state_file, rc);
    }
    if (rc != 0)
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s cannot remember msg=%s as handled: %s", a->address,
             id, relais_strerror(rc));
    agent__conv_deliver_done(a, &cd);
    if (a->acked_fn) a->acked_fn(a, env, outcome, dl.reason, a->acked_ud);
    send_ack(a, env->message_id, 0, outcome, dl.reason);
}

static void on_receipt(relais_agent_t *a, const Relais__V1__Receipt *r)
{
    agent__conv_on_receipt(a, r);
    if (a->receipt_fn) a->receipt_fn(a, r, a->receipt_ud);
    /* Acknowledged whether or not the application listens, or the broker resends it. */
    if (r->receipt_id) send_ack(a, r->message_id, r->receipt_id, RELAIS_PROCESSED, "");
}

static void on_error(relais_agent_t *a, const Relais__V1__Error *e)
{
    int code = relais_err_from_wire(e->code);
    const char *reason = e->reason ? e->reason : "";
    if (e->fatal) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s fatal error from broker code=%s reason=\"%s\"",
             a->address, relais_err_name(code), reason);
        /* The application sees why in the state callback: a refused Hello lands here. */
        char detail[RELAIS_REASON_MAX + 64];
        snprintf(detail, sizeof(detail), "fatal error from broker: %s: %s", relais_err_name(code),
                 reason);
        agent__conn_reset(a, true, detail);
        return;
    }
    if (code == RELAIS_ENOSESSION) {
        /* Frames queued before a reconnect also earn this; only a session we believed in
         * needs a new Hello. */
        if (a->state == RELAIS_AGENT_READY) {
            RLOG(RELAIS_LOG_INFO, "agent", "agent=%s broker lost our session, saying hello again",
                 a->address);
            send_hello(a);
            agent__set_state(a, RELAIS_AGENT_CONNECTING, "session lost, hello sent");
        }
        return;
    }
    agent_outbox_entry_t *entry =
        agent__outbox_take(a->outbox, e->message_id.data, e->message_id.len);
    if (entry) {
        fail_one(a, &entry, code, reason, 0);
        return;
    }
    RLOG(RELAIS_LOG_WARN, "agent", "agent=%s error from broker code=%s reason=\"%s\"", a->address,
         relais_err_name(code), reason);
}

static void on_ping(relais_agent_t *a, const Relais__V1__Ping *ping)
{
    Relais__V1__Pong pong = RELAIS__V1__PONG__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    pong.at_ms = ping->at_ms;
    f.kind_case = RELAIS__V1__FRAME__KIND_PONG;
    f.pong = &pong;
    agent__send_frame(a, &f);
}

void agent__session_frame(relais_agent_t *a, const uint8_t *data, size_t len)
{
    Relais__V1__Frame *f = NULL;
    char reason[RELAIS_REASON_MAX] = "";
    int rc = relais_frame_decode(data, len, a->max_frame_bytes + DELIVER_SLACK_BYTES, &f, reason,
                                 sizeof(reason));
    if (rc != 0) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s dropped an undecodable frame bytes=%zu: %s",
             a->address, len, reason);
        return;
    }
    switch (f->kind_case) {
    case RELAIS__V1__FRAME__KIND_WELCOME:
        on_welcome(a, f->welcome);
        break;
    case RELAIS__V1__FRAME__KIND_ACCEPTED:
        on_accepted(a, f->accepted);
        break;
    case RELAIS__V1__FRAME__KIND_REJECTED:
        on_rejected(a, f->rejected);
        break;
    case RELAIS__V1__FRAME__KIND_DELIVER:
        if (f->deliver->offered)
            agent__offer(a, f->deliver);
        else
            agent__deliver(a, f->deliver);
        break;
    case RELAIS__V1__FRAME__KIND_RECEIPT:
        on_receipt(a, f->receipt);
        break;
    case RELAIS__V1__FRAME__KIND_ERROR:
        on_error(a, f->error);
        break;
    case RELAIS__V1__FRAME__KIND_PING:
        on_ping(a, f->ping);
        break;
    case RELAIS__V1__FRAME__KIND_PONG:
        break;
    case RELAIS__V1__FRAME__KIND_CLAIM_RESULT:
        agent__claim_result(a, f->claim_result);
        break;
    case RELAIS__V1__FRAME__KIND_WITHDRAWN:
        agent__withdrawn(a, f->withdrawn);
        break;
    default:
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s unexpected %s from broker", a->address,
             relais_frame_kind_name(f->kind_case));
        break;
    }
    relais_frame_free(&f);
}
