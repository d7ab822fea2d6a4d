/*
 * Service pools: addresses like service:nurse@cpts-rennes-nord that stand for every member
 * the territory directory lists for them.
 *
 * A pool has a mailbox of its own, queued and paged like any other, but no session:
 * pumping it means finding, for its next delivery, a member with a session and room in its
 * credit window. Dispatch is ANYCAST: the least loaded such member gets it (ties go to the
 * first in directory order). If that member refuses it (Ack REFUSED), the next member is
 * tried; the refusal is final only when every member has refused, and the sender's receipts
 * name the pool and, in claimed_by, the member who handled it. A member that leaves with
 * pool work unacknowledged puts it back in the pool's queue (the session's in-flight
 * deliveries always return to their own mailbox), and the tick hands it to another member.
 * With no member online the work waits, on disk if need be, until one connects or it
 * expires. OFFER dispatch (every member offered, the first claim wins) is not built yet:
 * such submissions are refused with a reason.
 */
#include <stdlib.h>
#include <string.h>

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
    mailbox_t *mb = delivery__mailbox(p->b, member->address, false);
    session_t *s = mb ? mb->session : NULL;
    if (s == NULL || s->inflight_count >= s->window || tried(p->d, mb)) return;
    /* Acks name a message id only: never two messages with one id in flight to a member. */
    if (map_get(s->inflight_by_id, p->d->msg->message_id, RELAIS_MESSAGE_ID_LEN) != NULL) return;
    if (p->best == NULL || s->inflight_count < p->best->inflight_count) p->best = s;
}

void pool__pump(broker_t *b, mailbox_t *pool)
{
    if (b->dir == NULL) return;
    for (;;) {
        for (int p = 1; p >= 0; p--)
            if (pool->disk[p] > 0 && pool->mem[p] < MAILBOX_PAGE / 2) delivery__page_in(b, pool, p);
        delivery_t *d = delivery__next_queued(pool);
        if (d == NULL) return;
        pick_t pk = {.b = b, .d = d};
        directory_pool_members(b->dir, pool->address, consider, &pk);
        if (pk.best == NULL) return; /* nobody can take the head of the queue now */
        if (delivery__send(b, d, pk.best) < 0) continue; /* that member is gone: next */
    }
}

bool pool__pass_on(broker_t *b, delivery_t *d, session_t *member)
{
    size_t members = b->dir ? directory_pool_members(b->dir, d->mbox->address, NULL, NULL) : 0;
    if (d->ntried + 1 >= members) return false;
    mailbox_t **t = realloc(d->tried, (d->ntried + 1) * sizeof(*t));
    if (t == NULL) return false; /* cannot remember who refused: make the refusal final */
    d->tried = t;
    d->tried[d->ntried++] = member->mbox;
    delivery__queue_in_order(d);
    /* No store record: delivering and redelivering read the same from the store (pending),
     * and the attempt was recorded when it was sent. */
    d->state = DELIVERY_REDELIVERING;
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
        mailbox_t *pool = delivery__mailbox(b, a->pools[i], false);
        if (pool != NULL) pool__pump(b, pool);
        if (s->mbox->session != s) return; /* a failed send closed it */
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
