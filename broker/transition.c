/*
 * The delivery state machine's one door (DESIGN.md, per message × recipient):
 *
 *   stored ──send/claim──▶ delivering ──ack──▶ acked
 *     ▲                      │  └─────refuse──▶ refused
 *     │                      └──retry-later / session-lost / ack-timeout / passed-on
 *   redelivering ◀───────────┘
 *   stored, delivering, redelivering ──expire──▶ expired
 *
 * Every change of a delivery's state goes through delivery__transition(), which checks the
 * event against the table of legal transitions and then does, together, what each change
 * owes: the new state in memory, its record in the store batch, its record in the audit
 * journal, the counters and the log line. Moving the delivery between queues and lists stays
 * with the caller, who knows where it is; what the promises depend on (nothing changes
 * state unrecorded or unjournaled) is here, once.
 */
#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "broker.h"
#include "relais/log.h"

typedef struct transition {
    const char *name;     /* the event, in log lines */
    unsigned from;        /* bit (1 << state) for each state the event may leave */
    delivery_state_t to;  /* the state it enters */
    audit_kind_t journal; /* the journal record it writes */
    const char *outcome;  /* the record's outcome word */
    bool by_recipient;    /* the recipient acted (ack, refusal): it is the record's actor */
    int log_level;        /* the hot path's events at debug, the rarer ones at info */
} transition_t;

#define FROM(s) (1u << (s))
#define PENDING (FROM(DELIVERY_STORED) | FROM(DELIVERY_REDELIVERING))

static const transition_t table[DELIVERY_EVENT_COUNT] = {
    [DELIVERY_EV_SEND] = {"send", PENDING, DELIVERY_DELIVERING, AUDIT_DELIVER, "delivered",
                          false, RELAIS_LOG_DEBUG},
    [DELIVERY_EV_CLAIM] = {"claim", PENDING, DELIVERY_DELIVERING, AUDIT_CLAIM, "claimed", false,
                         RELAIS_LOG_DEBUG},
    [DELIVERY_EV_ACK] = {"ack", FROM(DELIVERY_DELIVERING), DELIVERY_ACKED, AUDIT_ACK, "processed",
                         true, RELAIS_LOG_DEBUG},
    [DELIVERY_EV_REFUSE] = {"refuse", FROM(DELIVERY_DELIVERING), DELIVERY_REFUSED, AUDIT_REFUSE,
                            "refused", true, RELAIS_LOG_INFO},
    [DELIVERY_EV_PASS_ON] = {"passed-on", FROM(DELIVERY_DELIVERING), DELIVERY_REDELIVERING,
                             AUDIT_REFUSE, "passed-on", true, RELAIS_LOG_INFO},
    [DELIVERY_EV_RETRY_LATER] = {"retry-later", FROM(DELIVERY_DELIVERING), DELIVERY_REDELIVERING,
                                 AUDIT_ACK, "retry-later", true, RELAIS_LOG_INFO},
    [DELIVERY_EV_SESSION_LOST] = {"session-lost", FROM(DELIVERY_DELIVERING),
                                  DELIVERY_REDELIVERING, AUDIT_REDELIVER, "session-lost", false,
                                  RELAIS_LOG_DEBUG},
    [DELIVERY_EV_ACK_TIMEOUT] = {"ack-timeout", FROM(DELIVERY_DELIVERING), DELIVERY_REDELIVERING,
                                 AUDIT_REDELIVER, "ack-timeout", false,
                                 RELAIS_LOG_INFO},
    [DELIVERY_EV_EXPIRE] = {"expired", PENDING | FROM(DELIVERY_DELIVERING), DELIVERY_EXPIRED,
                            AUDIT_EXPIRE, "expired", false, RELAIS_LOG_INFO},
};

const char *delivery_state_name(delivery_state_t s)
{
    static const char *names[] = {"stored",       "delivering", "acked",
                                  "redelivering", "expired",    "refused"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

bool delivery__legal(delivery_state_t from, delivery_event_t ev, delivery_state_t *to)
{
    if ((unsigned)ev >= DELIVERY_EVENT_COUNT || (unsigned)from >= 32) return false;
    const transition_t *t = &table[ev];
    if (!(t->from & FROM(from))) return false;
    if (to != NULL) *to = t->to;
    return true;
}

void delivery__record_state(broker_t *b, uint64_t seq, const char *recipient, int priority,
                            delivery_state_t st, uint32_t attempt)
{
    store_op_t op = {.kind = STORE_DELIVERY_SET,
                     .seq = seq,
                     .state = st,
                     .attempt = attempt,
                     .priority = priority,
                     .at_ms = relais_now_ms()};
    op.address = xstrdup(recipient);
    broker__record(b, &op);
}

static void count(broker_t *b, delivery_event_t ev)
{
    switch (ev) {
    case DELIVERY_EV_SEND:
        b->stats.delivered++;
        break;
    case DELIVERY_EV_CLAIM:
        b->stats.claimed++;
        break;
    case DELIVERY_EV_ACK:
        b->stats.acked++;
        break;
    case DELIVERY_EV_REFUSE:
        b->stats.refused++;
        break;
    case DELIVERY_EV_EXPIRE:
        b->stats.expired++;
        break;
    case DELIVERY_EV_RETRY_LATER:
        b->stats.retry_later++;
        b->stats.redeliveries++;
        break;
    default: /* back to the queue */
        b->stats.redeliveries++;
        break;
    }
}

int delivery__transition(broker_t *b, delivery_t *d, delivery_event_t ev, const char *party,
                         const char *outcome)
{
    delivery_state_t to;
    msg_t *m = d->msg;
    char idbuf[37];
    if (!delivery__legal(d->state, ev, &to)) {
        /* A bug, not input: the table is the contract. Refuse it loudly, change nothing. */
        RLOG(RELAIS_LOG_ERROR, "delivery", "illegal transition %s from state=%s msg=%s to=%s",
             (unsigned)ev < DELIVERY_EVENT_COUNT ? table[ev].name : "?",
             delivery_state_name(d->state),
             relais_id_format(m->message_id, RELAIS_MESSAGE_ID_LEN, idbuf), d->mbox->address);
        return RELAIS_EINTERNAL;
    }
    const transition_t *t = &table[ev];
    d->state = to;
    d->gen = b->gen_open;
    delivery__record_state(b, m->seq, d->mbox->address, m->priority, to, d->attempt);
    /* The party: who acted (the recipient's session for acks and refusals) or who the
     * delivery went to (a pool's member); the mailbox's address otherwise. */
    const char *recipient = party != NULL ? party : d->mbox->address;
    audit_event_t rec = {.kind = t->journal,
                         .actor = t->by_recipient ? recipient : m->sender,
                         .message_id = m->message_id,
                         .message_id_len = RELAIS_MESSAGE_ID_LEN,
                         .body = relais_body_name(m->body_case),
                         .to = t->by_recipient ? m->sender : recipient,
                         .attempt = d->attempt,
                         .outcome = outcome != NULL ? outcome : t->outcome};
    broker__audit_event(b, &rec);
    count(b, ev);
    RLOG(t->log_level, "delivery", "%s msg=%s from=%s to=%s attempt=%u state=%s", t->name,
         relais_id_format(m->message_id, RELAIS_MESSAGE_ID_LEN, idbuf), m->sender, recipient,
         d->attempt, delivery_state_name(to));
    return 0;
}
