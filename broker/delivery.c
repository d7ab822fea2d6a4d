/*
 * The delivery state machine (DESIGN.md), per message × recipient:
 *
 *   stored → delivering → acked
 *               │  └──→ refused            (Ack REFUSED: permanent, receipt to sender)
 *               └──→ redelivering → delivering …   (session lost, ack timeout, RETRY_LATER)
 *   any non-final state → expired          (deadline passed: receipt to sender)
 *
 * Each mailbox has one FIFO queue per priority; URGENT is served first, and within a
 * priority deliveries leave in acceptance order, which gives FIFO per (sender, recipient).
 * A session may hold at most `window` deliveries unacknowledged (its credit): a slow agent
 * only ever fills its own window. Every transition is recorded in the store batch. Receipts
 * owed to a sender wait in its mailbox until acknowledged. Paging between memory and the
 * store is mailbox.c's.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "broker.h"
#include "relais/log.h"

#define RETRY_MAX_MS (5 * 60 * 1000)

const char *delivery_state_name(delivery_state_t s)
{
    static const char *names[] = {"stored",       "delivering", "acked",
                                  "redelivering", "expired",    "refused"};
    return (unsigned)s < sizeof(names) / sizeof(names[0]) ? names[s] : "unknown";
}

/* ---- Receipts ---------------------------------------------------------------------- */

static void receipt_send(broker_t *b, receipt_t *r)
{
    session_t *s = r->mbox->session;
    if (s == NULL) return;
    int rc = broker__send(b, s->rid, s->rid_len, r->frame, r->frame_len);
    if (rc < 0) session__close(b, s, rc == -EAGAIN ? "send queue full" : "peer unreachable");
}

/* Owes the sender of m a receipt about recipient. Kept until the sender acks it. */
void delivery__receipt(broker_t *b, const msg_t *m, const char *recipient, int status,
                       const char *reason, const char *claimed_by)
{
    mailbox_t *mb = delivery__mailbox(b, m->sender, true);
    receipt_t *r = calloc(1, sizeof(*r));
    if (mb == NULL || r == NULL) {
        free(r);
        RLOG(RELAIS_LOG_ERROR, "delivery", "out of memory: receipt lost for agent=%s", m->sender);
        return;
    }
    r->id = b->next_receipt_id++;
    r->mbox = mb;
    Relais__V1__Receipt rc = RELAIS__V1__RECEIPT__INIT;
    rc.message_id.data = (uint8_t *)m->message_id;
    rc.message_id.len = RELAIS_MESSAGE_ID_LEN;
    rc.recipient = (char *)recipient;
    rc.status = status;
    rc.at_ms = relais_now_ms();
    rc.reason = (char *)(reason ? reason : "");
    rc.receipt_id = r->id;
    rc.claimed_by = (char *)(claimed_by ? claimed_by : "");
    rc.conversation_id.data = (uint8_t *)m->conversation_id;
    rc.conversation_id.len = m->conversation_id_len;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_RECEIPT;
    f.receipt = &rc;
    if (relais_frame_encode(&f, &r->frame, &r->frame_len) < 0 ||
        map_put(b->receipts, &r->id, sizeof(r->id), r) < 0) {
        free(r->frame);
        free(r);
        return;
    }
    list_push_back(&mb->receipts, &r->node);
    store_op_t op = {.kind = STORE_RECEIPT_PUT, .seq = r->id};
    op.address = strdup(mb->address);
    op.data = malloc(r->frame_len);
    if (op.data) memcpy(op.data, r->frame, r->frame_len);
    op.data_len = r->frame_len;
    broker__record(b, &op);
    receipt_send(b, r);
}

int delivery__restore_receipt(broker_t *b, uint64_t id, const char *address, const uint8_t *frame,
                              size_t len)
{
    mailbox_t *mb = delivery__mailbox(b, address, true);
    receipt_t *r = calloc(1, sizeof(*r));
    if (mb == NULL || r == NULL || (r->frame = malloc(len)) == NULL) {
        free(r);
        return -ENOMEM;
    }
    memcpy(r->frame, frame, len);
    r->frame_len = len;
    r->id = id;
    r->mbox = mb;
    if (map_put(b->receipts, &r->id, sizeof(r->id), r) < 0) {
        free(r->frame);
        free(r);
        return -ENOMEM;
    }
    list_push_back(&mb->receipts, &r->node);
    if (id >= b->next_receipt_id) b->next_receipt_id = id + 1;
    return 0;
}

static void receipt_free(broker_t *b, receipt_t *r)
{
    map_del(b->receipts, &r->id, sizeof(r->id));
    list_remove(&r->node);
    free(r->frame);
    free(r);
}

/* ---- State transitions ------------------------------------------------------------- */

static void record_state(broker_t *b, uint64_t seq, const char *recipient, int priority,
                         delivery_state_t st, uint32_t attempt)
{
    store_op_t op = {.kind = STORE_DELIVERY_SET,
                     .seq = seq,
                     .state = st,
                     .attempt = attempt,
                     .priority = priority,
                     .at_ms = relais_now_ms()};
    op.address = strdup(recipient);
    broker__record(b, &op);
}

static void set_state(broker_t *b, delivery_t *d, delivery_state_t st)
{
    d->state = st;
    if (st == DELIVERY_REDELIVERING) b->stats.redeliveries++;
    d->gen = b->gen_open;
    record_state(b, d->msg->seq, d->mbox->address, d->msg->priority, st, d->attempt);
}

/* A delivery reached a final state: record it, mark it settling until that commits, and
 * let it go from memory. */
static void finish(broker_t *b, delivery_t *d, delivery_state_t st)
{
    set_state(b, d, st);
    delivery__settle(b, d->msg->seq, d->mbox->address);
    delivery__free(b, d);
}

static void leave_session(delivery_t *d)
{
    session_t *s = d->session;
    if (s == NULL) return;
    list_remove(&d->fnode);
    map_del(s->inflight_by_id, d->msg->message_id, RELAIS_MESSAGE_ID_LEN);
    s->inflight_count--;
    d->session = NULL;
}

/* Puts d back into its mailbox queue at its place in acceptance order. */
void delivery__queue_in_order(delivery_t *d)
{
    list_node_t *head = &d->mbox->queue[d->msg->priority];
    list_node_t *pos = head->next;
    while (pos != head && LIST_ENTRY(pos, delivery_t, qnode)->msg->seq < d->msg->seq)
        pos = pos->next;
    list_insert_after(pos->prev, &d->qnode);
    d->mbox->mem[d->msg->priority]++;
}

void delivery__route(broker_t *b, msg_t *m)
{
    mailbox_t *touched[RELAIS_MAX_RECIPIENTS];
    unsigned ntouched = 0;
    int p = m->priority;
    m->refs++; /* hold m while its deliveries are placed */
    for (unsigned i = 0; i < m->ndeliveries; i++) {
        delivery_t *d = m->deliveries[i];
        if (d == NULL) continue;
        mailbox_t *mb = d->mbox;
        if ((mb->session != NULL || mb->pool) && mb->disk[p] == 0 && mb->mem[p] < MAILBOX_PAGE) {
            list_push_back(&mb->queue[p], &d->qnode);
            mb->mem[p]++;
            if (m->seq > mb->cursor[p]) mb->cursor[p] = m->seq;
            touched[ntouched++] = mb;
        } else {
            mb->disk[p]++; /* the store has it; paged in when its turn comes */
            delivery__free(b, d);
        }
    }
    if (m->refs > 1 && msg__index(b, m) < 0)
        RLOG(RELAIS_LOG_ERROR, "delivery", "out of memory indexing seq=%llu",
             (unsigned long long)m->seq);
    b->committed_seq = m->seq;
    msg__unref(b, m);
    for (unsigned i = 0; i < ntouched; i++) delivery__pump(b, touched[i]);
}

delivery_t *delivery__next_queued(mailbox_t *mb)
{
    list_node_t *n = list_first(&mb->queue[1]);
    if (n == NULL) n = list_first(&mb->queue[0]);
    return n ? LIST_ENTRY(n, delivery_t, qnode) : NULL;
}

int delivery__send(broker_t *b, delivery_t *d, session_t *s)
{
    msg_t *m = d->msg;
    mailbox_t *mb = d->mbox;
    uint8_t *frame;
    size_t len;
    if (relais_deliver_wrap(m->envelope, m->envelope_len, d->attempt + 1, false, &frame, &len) < 0)
        return -1;
    int rc = broker__send(b, s->rid, s->rid_len, frame, len);
    free(frame);
    if (rc < 0) {
        session__close(b, s, rc == -EAGAIN ? "send queue full" : "peer unreachable");
        return -1;
    }
    list_remove(&d->qnode);
    mb->mem[m->priority]--;
    d->attempt++;
    d->session = s;
    d->sent_at_ms = relais_mono_ms();
    list_push_back(&s->inflight, &d->fnode);
    map_put(s->inflight_by_id, m->message_id, RELAIS_MESSAGE_ID_LEN, d);
    s->inflight_count++;
    b->stats.delivered++;
    set_state(b, d, DELIVERY_DELIVERING);
    broker__audit(b, AUDIT_DELIVER, m->sender, m->message_id, relais_body_name(m->body_case),
                  mb->pool ? s->address : mb->address, d->attempt, "delivered", 0);
    if (d->attempt == 1 && (m->receipts_mask & (1u << RELAIS__V1__RECEIPT__STATUS__DELIVERED)))
        delivery__receipt(b, m, mb->address, RELAIS__V1__RECEIPT__STATUS__DELIVERED, "",
                          mb->pool ? s->address : NULL);
    if (mb->pool) authorize__pool_member(b, m, s->address);
    return 0;
}

void delivery__pump(broker_t *b, mailbox_t *mb)
{
    if (mb->pool) {
        pool__pump(b, mb);
        return;
    }
    session_t *s = mb->session;
    while (s != NULL && s->inflight_count < s->window) {
        for (int p = 1; p >= 0; p--)
            if (mb->disk[p] > 0 && mb->mem[p] < MAILBOX_PAGE / 2) delivery__page_in(b, mb, p);
        delivery_t *d = delivery__next_queued(mb);
        if (d == NULL) return;
        /* Acks name a message id only: two senders' messages with one id wait in turn. */
        if (map_get(s->inflight_by_id, d->msg->message_id, RELAIS_MESSAGE_ID_LEN) != NULL) return;
        if (delivery__send(b, d, s) < 0) return;
    }
}

void delivery__session_opened(broker_t *b, session_t *s)
{
    /* Receipts first: they answer older questions than anything still queued. */
    list_node_t *pos, *tmp;
    LIST_FOREACH_SAFE(pos, tmp, &s->mbox->receipts)
    {
        receipt_send(b, LIST_ENTRY(pos, receipt_t, node));
        if (s->mbox->session != s) return; /* the send failed and closed the session */
    }
    /* Always ask the store once: it is the truth about what is pending. */
    for (int p = 1; p >= 0; p--) delivery__page_in(b, s->mbox, p);
    delivery__pump(b, s->mbox);
    if (s->mbox->session == s) pool__member_online(b, s);
}

static void ack_receipt(broker_t *b, session_t *s, uint64_t id)
{
    receipt_t *r = map_get(b->receipts, &id, sizeof(id));
    /* Unknown: acknowledged twice, or not this session's to acknowledge. Either way there
     * is nothing to change. */
    if (r == NULL || r->mbox != s->mbox) return;
    store_op_t op = {.kind = STORE_RECEIPT_DEL, .seq = id};
    broker__record(b, &op);
    receipt_free(b, r);
}

void delivery__ack(broker_t *b, session_t *s, const Relais__V1__Ack *ack)
{
    if (ack->receipt_id != 0) {
        ack_receipt(b, s, ack->receipt_id);
        return;
    }
    char reason[RELAIS_REASON_MAX];
    if (ack->message_id.len != RELAIS_MESSAGE_ID_LEN) {
        snprintf(reason, sizeof(reason), "Ack.message_id must be 16 bytes, got %zu",
                 ack->message_id.len);
        broker__send_error(b, s->rid, s->rid_len, RELAIS_EBADFRAME, reason, false, NULL, 0);
        return;
    }
    if (ack->outcome < RELAIS__V1__ACK__OUTCOME__PROCESSED ||
        ack->outcome > RELAIS__V1__ACK__OUTCOME__RETRY_LATER) {
        snprintf(reason, sizeof(reason), "Ack.outcome must be PROCESSED, REFUSED or RETRY_LATER");
        broker__send_error(b, s->rid, s->rid_len, RELAIS_EBADFRAME, reason, false,
                           ack->message_id.data, ack->message_id.len);
        return;
    }
    delivery_t *d = map_get(s->inflight_by_id, ack->message_id.data, RELAIS_MESSAGE_ID_LEN);
    if (d == NULL) {
        /* An answer to an offer not claimed is a decline; anything else is a late or
         * repeated Ack: the delivery already moved on. */
        pool__offer_answered(b, s, ack->message_id.data);
        return;
    }
    leave_session(d);
    msg_t *m = d->msg;
    /* A pool delivery answers for the pool, naming the member who handled it. */
    mailbox_t *pool = d->mbox->pool ? d->mbox : NULL;
    const char *recipient = d->mbox->address, *handled_by = pool ? s->address : NULL;
    char idbuf[37];
    RLOG(RELAIS_LOG_DEBUG, "delivery", "ack agent=%s msg=%s outcome=%d attempt=%u", s->address,
         relais_id_format(m->message_id, RELAIS_MESSAGE_ID_LEN, idbuf), ack->outcome, d->attempt);
    switch (ack->outcome) {
    case RELAIS__V1__ACK__OUTCOME__PROCESSED:
        b->stats.acked++;
        broker__audit(b, AUDIT_ACK, s->address, m->message_id, relais_body_name(m->body_case),
                      m->sender, d->attempt, "processed", 0);
        if (m->receipts_mask & (1u << RELAIS__V1__RECEIPT__STATUS__PROCESSED))
            delivery__receipt(b, m, recipient, RELAIS__V1__RECEIPT__STATUS__PROCESSED, "",
                              handled_by);
        finish(b, d, DELIVERY_ACKED);
        break;
    case RELAIS__V1__ACK__OUTCOME__REFUSED:
        broker__audit(b, AUDIT_REFUSE, s->address, m->message_id, relais_body_name(m->body_case),
                      m->sender, d->attempt, "refused", 0);
        /* A pool member's refusal passes the delivery to the next member. */
        if (pool != NULL && pool__pass_on(b, d, s)) break;
        /* The sender is always told of a refusal, asked or not. */
        b->stats.refused++;
        delivery__receipt(b, m, recipient, RELAIS__V1__RECEIPT__STATUS__REFUSED,
                          ack->reason ? ack->reason : "", handled_by);
        finish(b, d, DELIVERY_REFUSED);
        break;
    default: { /* RETRY_LATER: back off, doubling per attempt */
        int64_t delay = b->cfg.retry_later_ms;
        for (uint32_t i = 1; i < d->attempt && delay < RETRY_MAX_MS; i++) delay *= 2;
        d->retry_at_ms = relais_mono_ms() + (delay < RETRY_MAX_MS ? delay : RETRY_MAX_MS);
        list_push_back(&b->retry, &d->qnode);
        set_state(b, d, DELIVERY_REDELIVERING);
        b->stats.retry_later++;
        broker__audit(b, AUDIT_ACK, s->address, m->message_id, relais_body_name(m->body_case),
                      m->sender, d->attempt, "retry-later", 0);
        break;
    }
    }
    delivery__pump(b, s->mbox);
    if (pool != NULL) delivery__pump(b, pool);
}

void delivery__session_closed(broker_t *b, session_t *s)
{
    /* From the newest back to the oldest, each at its place: the queue keeps their order. */
    while (!list_empty(&s->inflight)) {
        delivery_t *d = LIST_ENTRY(s->inflight.prev, delivery_t, fnode);
        leave_session(d);
        delivery__queue_in_order(d);
        set_state(b, d, DELIVERY_REDELIVERING);
    }
    /* Nobody to deliver to: the queue's memory goes back to the store once the store has
     * caught up with it (delivery__evict_idle, on the tick). */
    if (!list_linked(&s->mbox->idle)) list_push_back(&b->idle, &s->mbox->idle);
}

void delivery__check_ack_timeouts(broker_t *b, session_t *s, int64_t now)
{
    /* In-flight lists are in sending order: only their heads can have timed out. */
    bool moved = false;
    while (!list_empty(&s->inflight)) {
        delivery_t *d = LIST_ENTRY(s->inflight.next, delivery_t, fnode);
        if (now - d->sent_at_ms < b->cfg.ack_timeout_ms) break;
        char idbuf[37];
        RLOG(RELAIS_LOG_INFO, "delivery", "ack timeout agent=%s msg=%s attempt=%u", s->address,
             relais_id_format(d->msg->message_id, RELAIS_MESSAGE_ID_LEN, idbuf), d->attempt);
        leave_session(d);
        delivery__queue_in_order(d);
        set_state(b, d, DELIVERY_REDELIVERING);
        moved = true;
    }
    if (moved) delivery__pump(b, s->mbox);
}

static const char *const expired_reason = "deadline passed before the recipient processed it";

void delivery__expire(broker_t *b, delivery_t *d)
{
    msg_t *m = d->msg;
    char idbuf[37];
    RLOG(RELAIS_LOG_INFO, "delivery", "expired msg=%s from=%s to=%s",
         relais_id_format(m->message_id, RELAIS_MESSAGE_ID_LEN, idbuf), m->sender,
         d->mbox->address);
    leave_session(d);
    bool unclaimed = pool__expire_offers(b, d);
    if (list_linked(&d->qnode)) {
        bool in_retry = d->state == DELIVERY_REDELIVERING && d->retry_at_ms != 0;
        list_remove(&d->qnode);
        if (!in_retry) d->mbox->mem[m->priority]--;
    }
    b->stats.expired++;
    broker__audit(b, AUDIT_EXPIRE, m->sender, m->message_id, relais_body_name(m->body_case),
                  d->mbox->address, d->attempt, "expired", 0);
    if (unclaimed)
        delivery__receipt(b, m, d->mbox->address, RELAIS__V1__RECEIPT__STATUS__UNCLAIMED,
                          "no member of the pool claimed it before its deadline", NULL);
    else
        delivery__receipt(b, m, d->mbox->address, RELAIS__V1__RECEIPT__STATUS__EXPIRED,
                          expired_reason, NULL);
    finish(b, d, DELIVERY_EXPIRED);
}

void delivery__expire_stored(broker_t *b, msg_t *m, mailbox_t *mb, uint32_t attempt, bool claimed)
{
    char idbuf[37];
    RLOG(RELAIS_LOG_INFO, "delivery", "expired msg=%s from=%s to=%s",
         relais_id_format(m->message_id, RELAIS_MESSAGE_ID_LEN, idbuf), m->sender, mb->address);
    b->stats.expired++;
    broker__audit(b, AUDIT_EXPIRE, m->sender, m->message_id, relais_body_name(m->body_case),
                  mb->address, attempt, "expired", 0);
    if (mb->pool && m->dispatch == RELAIS__V1__ENVELOPE__DISPATCH__OFFER && !claimed)
        delivery__receipt(b, m, mb->address, RELAIS__V1__RECEIPT__STATUS__UNCLAIMED,
                          "no member of the pool claimed it before its deadline", NULL);
    else
        delivery__receipt(b, m, mb->address, RELAIS__V1__RECEIPT__STATUS__EXPIRED,
                          expired_reason, NULL);
    record_state(b, m->seq, mb->address, m->priority, DELIVERY_EXPIRED, attempt);
    delivery__settle(b, m->seq, mb->address);
}

void delivery__tick(broker_t *b, int64_t now, int64_t mono)
{
    delivery__evict_idle(b);
    pool__tick(b);
    if (now >= b->next_expiry_ms) {
        delivery__expiry_sweep(b, now);
        b->next_expiry_ms = now + 200;
    }
    list_node_t *pos, *tmp;
    LIST_FOREACH_SAFE(pos, tmp, &b->retry)
    {
        delivery_t *d = LIST_ENTRY(pos, delivery_t, qnode);
        if (d->retry_at_ms > mono) continue;
        list_remove(&d->qnode);
        d->retry_at_ms = 0;
        delivery__queue_in_order(d);
        delivery__pump(b, d->mbox);
    }
}

static void free_msg(const void *key, size_t key_len, void *value, void *ud)
{
    msg__free(value);
}

static void free_mailbox(const void *key, size_t key_len, void *value, void *ud)
{
    broker_t *b = ud;
    mailbox_t *mb = value;
    while (!list_empty(&mb->receipts))
        receipt_free(b, LIST_ENTRY(mb->receipts.next, receipt_t, node));
    free(mb->address);
    free(mb);
}

void delivery__free_all(broker_t *b)
{
    if (b->msgs) map_foreach(b->msgs, free_msg, NULL);
    if (b->mailboxes) map_foreach(b->mailboxes, free_mailbox, b);
    delivery__settled(b, &b->settle_keys);
}
