/*
 * Service pools: addresses like service:nurse@cpts-rennes-nord that stand for every member
 * the territory directory lists for them.
 *
 * A pool has a mailbox of its own, queued and paged like any other, but no session:
 * pumping it means finding, for its next delivery, a member with a session and room in its
 * credit window. Dispatch is ANYCAST: the least loaded such member gets it (between equals,
 * the one given pool work least recently). If that member refuses it (Ack REFUSED), the next member is
 * tried; the refusal is final only when every member has refused, and the sender's receipts
 * name the pool and, in claimed_by, the member who handled it. A member that leaves with
 * pool work unacknowledged puts it back in the pool's queue (the session's in-flight
 * deliveries always return to their own mailbox), and the tick hands it to another member.
 * With no member online the work waits, on disk if need be, until one connects or it
 * expires.
 *
 * OFFER dispatch: every online member is offered the delivery (Deliver{offered=true}; an
 * offer takes no room in the credit window), the one who won pool work least recently first and members connecting later get the open
 * offers too. The first Claim wins: ClaimResult{granted} to it, Withdrawn to the others, the
 * claim stored (it survives a restart), Receipt{CLAIMED} naming the member to the sender;
 * from then on the delivery is the claimer's, in flight to it until its Ack, and back to it
 * if it leaves before acknowledging. An Ack to an offer not claimed is a decline. Nobody
 * claimed by the deadline: Withdrawn to every holder and Receipt{UNCLAIMED} to the sender.
 * Unclaimed offers wait in the pool's offering list, out of its queue, so they never hold
 * back the deliveries behind them.
 */
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "broker.h"
#include "directory.h"
#include "relais/log.h"

typedef struct pick {
    broker_t *b;
    const delivery_t *d;
    session_t *best;
} pick_t;

static bool tried(const delivery_t *d, const mailbox_t *mb)
{
    for (unsigned i = 0; i < d->ntried; i++)
        if (d->tried[i] == mb) return true;
    return false;
}

static void consider(const dir_agent_t *member, void *ud)
{
    pick_t *p = ud;
    mailbox_t *mb = mailbox__get(p->b, member->address, false);
    session_t *s = mb ? mb->session : NULL;
    if (s == NULL || !s->welcomed || s->closing || s->inflight_count >= s->window ||
        tried(p->d, mb))
        return;
    /* Acks name a message id only: never two messages with one id in flight to a member. */
    if (map_get(s->inflight_by_id, p->d->msg->message_id, RELAIS_MESSAGE_ID_LEN) != NULL) return;
    /* The least loaded; between equals, the one given pool work least recently, so that work
     * spreads over the members instead of piling onto the first in the directory. */
    if (p->best == NULL || s->inflight_count < p->best->inflight_count ||
        (s->inflight_count == p->best->inflight_count &&
         s->mbox->pool_given < p->best->mbox->pool_given))
        p->best = s;
}

static bool is_offer(const delivery_t *d)
{
    return d->msg->dispatch == RELAIS__V1__ENVELOPE__DISPATCH__OFFER;
}

static void send_small(broker_t *b, session_t *s, Relais__V1__Frame *f)
{
    broker__send_session_frame(b, s, f); /* a failure closes s: its offers go with it */
}

static void send_withdrawn(broker_t *b, session_t *s, const msg_t *m, const char *why)
{
    Relais__V1__Withdrawn w = RELAIS__V1__WITHDRAWN__INIT;
    w.message_id.data = (uint8_t *)m->message_id;
    w.message_id.len = RELAIS_MESSAGE_ID_LEN;
    w.reason = (char *)why;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_WITHDRAWN;
    f.withdrawn = &w;
    send_small(b, s, &f);
}

static void offer_free(offer_t *o)
{
    list_remove(&o->dnode);
    list_remove(&o->snode);
    map_del(o->s->offers_by_id, o->d->msg->message_id, RELAIS_MESSAGE_ID_LEN);
    free(o);
}

/* Offers d to s unless s holds it (or another offer with its id) already. */
static void offer_to(broker_t *b, delivery_t *d, session_t *s)
{
    msg_t *m = d->msg;
    if (map_get(s->offers_by_id, m->message_id, RELAIS_MESSAGE_ID_LEN) != NULL ||
        map_get(s->inflight_by_id, m->message_id, RELAIS_MESSAGE_ID_LEN) != NULL)
        return;
    offer_t *o = calloc(1, sizeof(*o));
    if (o == NULL || map_put(s->offers_by_id, m->message_id, RELAIS_MESSAGE_ID_LEN, o) < 0) {
        free(o);
        return;
    }
    o->d = d;
    o->s = s;
    list_push_back(&d->offers, &o->dnode);
    list_push_back(&s->offers, &o->snode);
    uint8_t *frame;
    size_t len;
    if (relais_deliver_wrap(m->envelope, m->envelope_len, d->attempt + 1, true, &frame, &len) < 0)
        return;
    int rc = broker__send_session(b, s, frame, len);
    free(frame);
    if (rc == 0) /* an offer is not a transition: the delivery stays unclaimed in its pool */
        broker__audit(b, AUDIT_DELIVER, m->sender, m->message_id, relais_body_name(m->body_case),
                      s->address, d->attempt + 1, "offered", 0);
}

typedef struct offer_all {
    broker_t *b;
    delivery_t *d;
    session_t **to; /* the members online, offered in order of pool work least recently won */
    size_t n, cap;
} offer_all_t;

static void offer_member(const dir_agent_t *member, void *ud)
{
    offer_all_t *c = ud;
    mailbox_t *mb = mailbox__get(c->b, member->address, false);
    session_t *s = mb != NULL ? mb->session : NULL;
    if (s == NULL || !s->welcomed || s->closing) return;
    if (c->n == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 16;
        c->to = xrealloc(c->to, c->cap * sizeof(*c->to));
    }
    c->to[c->n++] = s;
}

static int least_recent_first(const void *x, const void *y)
{
    uint64_t a = (*(session_t *const *)x)->mbox->pool_given;
    uint64_t b = (*(session_t *const *)y)->mbox->pool_given;
    return a < b ? -1 : a > b;
}

/* An unclaimed OFFER delivery leaves the queue for the offering list, offered to all. */
static void start_offering(broker_t *b, mailbox_t *pool, delivery_t *d)
{
    list_remove(&d->qnode);
    pool->mem[d->msg->priority]--;
    list_push_back(&pool->offering, &d->qnode);
    pool->offering_count++;
    d->offering = true;
    /* The first member offered tends to claim first: the order rotates, the member who won
     * pool work least recently first, so that claims spread over the pool. */
    offer_all_t c = {.b = b, .d = d};
    directory_pool_members(b->dir, pool->address, offer_member, &c);
    if (c.n > 1) qsort(c.to, c.n, sizeof(*c.to), least_recent_first);
    for (size_t i = 0; i < c.n && !d->claimed_by; i++)
        if (!c.to[i]->closing) offer_to(b, d, c.to[i]);
    free(c.to);
}

void pool__pump(broker_t *b, mailbox_t *pool)
{
    if (b->dir == NULL) return;
    for (int prio = 1; prio >= 0; prio--) {
        if (pool->disk[prio] > 0 && pool->mem[prio] + pool->offering_count < MAILBOX_PAGE / 2)
            mailbox__page_in(b, pool, prio);
        list_node_t *pos, *tmp;
        LIST_FOREACH_SAFE(pos, tmp, &pool->queue[prio])
        {
            delivery_t *d = LIST_ENTRY(pos, delivery_t, qnode);
            if (is_offer(d) && d->claimed_by == NULL) {
                start_offering(b, pool, d);
                continue;
            }
            if (is_offer(d)) { /* claimed: only the claimer may have it */
                session_t *s = d->claimed_by->session;
                if (s == NULL || !s->welcomed || s->closing || s->inflight_count >= s->window ||
                    map_get(s->inflight_by_id, d->msg->message_id, RELAIS_MESSAGE_ID_LEN))
                    continue;
                if (delivery__send(b, d, s) < 0) return;
                continue;
            }
            pick_t pk = {.b = b, .d = d};
            directory_pool_members(b->dir, pool->address, consider, &pk);
            if (pk.best == NULL) return; /* ANYCAST keeps its order: nobody can take it now */
            pk.best->mbox->pool_given = ++b->pool_given_seq;
            if (delivery__send(b, d, pk.best) < 0) return;
        }
    }
}

void pool__claim(broker_t *b, session_t *s, const Relais__V1__Claim *claim)
{
    Relais__V1__ClaimResult r = RELAIS__V1__CLAIM_RESULT__INIT;
    r.message_id = claim->message_id;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_CLAIM_RESULT;
    f.claim_result = &r;
    offer_t *o = claim->message_id.len == RELAIS_MESSAGE_ID_LEN
                     ? map_get(s->offers_by_id, claim->message_id.data, RELAIS_MESSAGE_ID_LEN)
                     : NULL;
    if (o == NULL) { /* never offered to it, withdrawn, or claimed by someone else first */
        send_small(b, s, &f);
        return;
    }
    delivery_t *d = o->d;
    msg_t *m = d->msg;
    mailbox_t *pool = d->mbox;
    /* The claim is the store's first: it decides the delivery's fate across a restart. */
    store_op_t op = {.kind = STORE_DELIVERY_CLAIM, .seq = m->seq};
    op.address = xstrdup(pool->address);
    op.data = (uint8_t *)xstrdup(s->address);
    op.data_len = strlen(s->address);
    broker__record(b, &op);
    delivery__set_claimed(d, s->mbox);
    s->mbox->pool_given = ++b->pool_given_seq;
    while (!list_empty(&d->offers)) {
        offer_t *other = LIST_ENTRY(d->offers.next, offer_t, dnode);
        if (other->s != s) send_withdrawn(b, other->s, m, "claimed by another member");
        offer_free(other);
    }
    /* From the offering list into the claimer's in-flight: its Ack ends it. */
    list_remove(&d->qnode);
    pool->offering_count--;
    d->offering = false;
    d->attempt++;
    d->session = s;
    d->sent_at_ms = relais_mono_ms();
    list_push_back(&s->inflight, &d->fnode);
    map_put(s->inflight_by_id, m->message_id, RELAIS_MESSAGE_ID_LEN, d);
    s->inflight_count++;
    delivery__transition(b, d, DELIVERY_EV_CLAIM, s->address, NULL);
    d->never_sent = false;
    r.granted = true;
    char idbuf[37];
    RLOG(RELAIS_LOG_INFO, "pool", "claimed agent=%s msg=%s pool=%s", s->address,
         relais_id_format(m->message_id, RELAIS_MESSAGE_ID_LEN, idbuf), pool->address);
    authorize__pool_member(b, m, s->address);
    send_small(b, s, &f);
    /* The sender always learns who took it. */
    delivery__receipt(b, m, pool->address, RELAIS__V1__RECEIPT__STATUS__CLAIMED, "", s->address);
}

bool pool__offer_answered(broker_t *b, session_t *s, const uint8_t *message_id)
{
    offer_t *o = map_get(s->offers_by_id, message_id, RELAIS_MESSAGE_ID_LEN);
    if (o == NULL) return false;
    char idbuf[37];
    RLOG(RELAIS_LOG_INFO, "pool", "offer declined agent=%s msg=%s", s->address,
         relais_id_format(message_id, RELAIS_MESSAGE_ID_LEN, idbuf));
    offer_free(o);
    return true;
}

void pool__session_closed(broker_t *b, session_t *s)
{
    (void)b;
    while (!list_empty(&s->offers)) offer_free(LIST_ENTRY(s->offers.next, offer_t, snode));
}

bool pool__expire_offers(broker_t *b, delivery_t *d)
{
    if (!d->mbox->pool || !is_offer(d) || d->claimed_by != NULL) return false;
    while (!list_empty(&d->offers)) {
        offer_t *o = LIST_ENTRY(d->offers.next, offer_t, dnode);
        send_withdrawn(b, o->s, d->msg, "deadline passed");
        offer_free(o);
    }
    if (d->offering) {
        /* Out of the offering list here; the caller's queue bookkeeping must not count it. */
        list_remove(&d->qnode);
        d->mbox->offering_count--;
        d->offering = false;
    }
    return true;
}

bool pool__pass_on(broker_t *b, delivery_t *d, session_t *member)
{
    if (is_offer(d)) return false; /* the claimer took it, then refused it: final */
    size_t members = b->dir ? directory_pool_members(b->dir, d->mbox->address, NULL, NULL) : 0;
    if (d->ntried + 1 >= members) return false;
    delivery__add_tried(d, member->mbox);
    delivery__queue_in_order(d);
    delivery__transition(b, d, DELIVERY_EV_PASS_ON, member->address, NULL);
    char idbuf[37];
    RLOG(RELAIS_LOG_INFO, "pool", "refused by agent=%s msg=%s pool=%s: next member",
         member->address, relais_id_format(d->msg->message_id, RELAIS_MESSAGE_ID_LEN, idbuf),
         d->mbox->address);
    return true;
}

void pool__member_online(broker_t *b, session_t *s)
{
    const dir_agent_t *a = b->dir ? directory_lookup(b->dir, s->address) : NULL;
    for (size_t i = 0; a != NULL && i < a->n_pools; i++) {
        mailbox_t *pool = mailbox__get(b, a->pools[i], false);
        if (pool == NULL) continue;
        list_node_t *pos;
        for (pos = pool->offering.next; pos != &pool->offering; pos = pos->next)
            offer_to(b, LIST_ENTRY(pos, delivery_t, qnode), s);
        pool__pump(b, pool);
        if (s->closing) return; /* a failed send closed it */
    }
}

void pool__tick(broker_t *b)
{
    list_node_t *pos, *tmp;
    LIST_FOREACH_SAFE(pos, tmp, &b->pools)
    {
        mailbox_t *pool = LIST_ENTRY(pos, mailbox_t, pool_node);
        if (pool->mem[0] + pool->mem[1] + pool->disk[0] + pool->disk[1] > 0) pool__pump(b, pool);
    }
}
