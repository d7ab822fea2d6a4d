/*
 * Mailboxes and their paging between memory and the store.
 *
 * A mailbox keeps in memory at most MAILBOX_PAGE deliveries per priority, and only while
 * its agent is connected; the rest of its backlog is counted (disk[p]) and read back from
 * the store a page at a time as the agent works through it. When the agent goes away its
 * queue is dropped from memory again. So memory follows the number of connected agents,
 * not the size of the backlog.
 *
 * Two rules keep memory and store consistent:
 * - only what is committed and routed is read back: queries stop at committed_seq;
 * - a delivery that reached a final state is "settling" until the batch recording it
 *   commits; queries that still see it pending in the store skip it.
 *
 * Expiry is a store query too (indexed by deadline), so offline backlogs expire without
 * being in memory.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "relais/log.h"

#define EXPIRY_BATCH 1000

/* ---- Mailboxes --------------------------------------------------------------------- */

mailbox_t *mailbox__get(broker_t *b, const char *address, bool create)
{
    mailbox_t *mb = map_get(b->mailboxes, address, strlen(address));
    if (mb != NULL || !create) return mb;
    mb = calloc(1, sizeof(*mb));
    if (mb == NULL) return NULL;
    mb->address = strdup(address);
    if (mb->address == NULL || map_put(b->mailboxes, address, strlen(address), mb) < 0) {
        free(mb->address);
        free(mb);
        return NULL;
    }
    list_init(&mb->queue[0]);
    list_init(&mb->queue[1]);
    list_init(&mb->receipts);
    list_init(&mb->idle);
    list_init(&mb->pool_node);
    list_init(&mb->offering);
    if (strncmp(address, "service:", 8) == 0) {
        mb->pool = true;
        list_push_back(&b->pools, &mb->pool_node);
    }
    return mb;
}

/* ---- Settling: final in memory, not yet committed ---------------------------------- */

static size_t settle_key(uint64_t seq, const char *recipient, uint8_t *out)
{
    size_t n = strlen(recipient);
    memcpy(out, &seq, sizeof(seq));
    memcpy(out + sizeof(seq), recipient, n);
    return sizeof(seq) + n;
}

bool mailbox__settling(broker_t *b, uint64_t seq, const char *recipient)
{
    uint8_t key[8 + RELAIS_ADDRESS_MAX];
    return map_get(b->settling, key, settle_key(seq, recipient, key)) != NULL;
}

void mailbox__settle(broker_t *b, uint64_t seq, const char *recipient)
{
    uint8_t key[8 + RELAIS_ADDRESS_MAX];
    size_t len = settle_key(seq, recipient, key);
    keyvec_t *v = &b->settle_keys;
    if (v->n == v->cap) {
        size_t ncap = v->cap ? v->cap * 2 : 64;
        uint8_t **k = realloc(v->keys, ncap * sizeof(*k));
        if (k == NULL) return;
        v->keys = k;
        size_t *l = realloc(v->lens, ncap * sizeof(*l));
        if (l == NULL) return;
        v->lens = l;
        v->cap = ncap;
    }
    uint8_t *copy = malloc(len);
    if (copy == NULL) return;
    memcpy(copy, key, len);
    if (map_put(b->settling, key, len, (void *)1) < 0) {
        free(copy);
        return;
    }
    v->keys[v->n] = copy;
    v->lens[v->n++] = len;
}

void mailbox__settled(broker_t *b, keyvec_t *v)
{
    for (size_t i = 0; i < v->n; i++) {
        map_del(b->settling, v->keys[i], v->lens[i]);
        free(v->keys[i]);
    }
    free(v->keys);
    free(v->lens);
    memset(v, 0, sizeof(*v));
}

/* ---- Paging ------------------------------------------------------------------------ */

typedef struct page_ctx {
    broker_t *b;
    mailbox_t *mb;
    int p;
    unsigned rows;
} page_ctx_t;

static int on_page_row(void *ud, const store_row_t *row)
{
    page_ctx_t *c = ud;
    broker_t *b = c->b;
    mailbox_t *mb = c->mb;
    c->rows++;
    if (row->seq > mb->cursor[c->p]) mb->cursor[c->p] = row->seq;
    if (mailbox__settling(b, row->seq, mb->address)) return 0;
    msg_t *m = map_get(b->msgs, &row->seq, sizeof(row->seq));
    if (m == NULL) {
        m = msg__from_envelope(row->seq, row->envelope, row->envelope_len);
        if (m == NULL) return 0; /* logged; the row stays in the store for inspection */
    } else if (delivery__find(m, mb) != NULL) {
        return 0; /* already in memory: never twice */
    }
    delivery_t *d = delivery__new(m, mb);
    if (d == NULL || msg__index(b, m) < 0) {
        if (d)
            delivery__free(b, d);
        else if (m->refs == 0)
            msg__free(m);
        return -ENOMEM;
    }
    d->state = row->state == DELIVERY_STORED ? DELIVERY_STORED : DELIVERY_REDELIVERING;
    d->never_sent = row->state == DELIVERY_STORED;
    d->attempt = row->attempt;
    if (row->claimed_by != NULL) delivery__set_claimed(d, mailbox__get(b, row->claimed_by, true));
    list_push_back(&mb->queue[c->p], &d->qnode);
    mb->mem[c->p]++;
    if (mb->disk[c->p] > 0) mb->disk[c->p]--;
    return 0;
}

void mailbox__page_in(broker_t *b, mailbox_t *mb, int p)
{
    if (mb->mem[p] >= MAILBOX_PAGE) return;
    unsigned want = MAILBOX_PAGE - (unsigned)mb->mem[p];
    page_ctx_t c = {.b = b, .mb = mb, .p = p};
    int rc = b->store->vt->page(b->store, mb->address, p, mb->cursor[p], b->committed_seq, want,
                                on_page_row, &c);
    if (rc < 0) {
        RLOG(RELAIS_LOG_ERROR, "mailbox", "page-in failed agent=%s: %s", mb->address,
             relais_strerror(rc));
        return;
    }
    /* A short page means nothing more is pending: resynchronise the count. */
    if (c.rows < want) mb->disk[p] = 0;
}

/* Whether the store has the latest state of every delivery mb holds in memory. */
static bool evictable(broker_t *b, mailbox_t *mb)
{
    for (int p = 0; p < 2; p++) {
        list_node_t *pos;
        for (pos = mb->queue[p].next; pos != &mb->queue[p]; pos = pos->next)
            if (LIST_ENTRY(pos, delivery_t, qnode)->gen > b->gen_committed) return false;
    }
    list_node_t *pos;
    for (pos = b->retry.next; pos != &b->retry; pos = pos->next) {
        delivery_t *d = LIST_ENTRY(pos, delivery_t, qnode);
        if (d->mbox == mb && d->gen > b->gen_committed) return false;
    }
    return true;
}

static void evict(broker_t *b, mailbox_t *mb)
{
    for (int p = 0; p < 2; p++) {
        uint64_t lowest = UINT64_MAX;
        while (!list_empty(&mb->queue[p])) {
            delivery_t *d = LIST_ENTRY(mb->queue[p].next, delivery_t, qnode);
            list_remove(&d->qnode);
            if (d->msg->seq < lowest) lowest = d->msg->seq;
            mb->mem[p]--;
            mb->disk[p]++;
            delivery__free(b, d);
        }
        list_node_t *pos, *tmp;
        LIST_FOREACH_SAFE(pos, tmp, &b->retry)
        {
            delivery_t *d = LIST_ENTRY(pos, delivery_t, qnode);
            if (d->mbox != mb || d->msg->priority != p) continue;
            list_remove(&d->qnode);
            if (d->msg->seq < lowest) lowest = d->msg->seq;
            mb->disk[p]++;
            delivery__free(b, d);
        }
        if (lowest != UINT64_MAX) mb->cursor[p] = lowest - 1;
    }
}

/* Whether nothing at all needs the mailbox: no agent, backlog, receipt or reference. */
static bool unused(const mailbox_t *mb)
{
    return mb->session == NULL && !mb->pool && mb->refs == 0 && mb->mem[0] + mb->mem[1] == 0 &&
           mb->disk[0] + mb->disk[1] == 0 && list_empty(&mb->receipts) &&
           !list_linked(&mb->idle) && mb->offering_count == 0;
}

static void mailbox_free(broker_t *b, mailbox_t *mb)
{
    map_del(b->mailboxes, mb->address, strlen(mb->address));
    free(mb->address);
    free(mb);
}

void mailbox__evict_idle(broker_t *b)
{
    list_node_t *pos, *tmp;
    LIST_FOREACH_SAFE(pos, tmp, &b->idle)
    {
        mailbox_t *mb = LIST_ENTRY(pos, mailbox_t, idle);
        if (mb->session != NULL) {
            list_remove(&mb->idle); /* its agent came back: it keeps its queue */
            continue;
        }
        if (!evictable(b, mb)) continue; /* next tick */
        list_remove(&mb->idle);
        evict(b, mb);
        if (unused(mb)) mailbox_free(b, mb);
    }
}

/* ---- Expiry ------------------------------------------------------------------------ */

typedef struct expiry_ctx {
    broker_t *b;
    unsigned expired;
} expiry_ctx_t;

static int on_expired_row(void *ud, const store_row_t *row)
{
    expiry_ctx_t *c = ud;
    broker_t *b = c->b;
    if (mailbox__settling(b, row->seq, row->recipient)) return 0;
    mailbox_t *mb = mailbox__get(b, row->recipient, true);
    if (mb == NULL) return -ENOMEM;
    msg_t *m = map_get(b->msgs, &row->seq, sizeof(row->seq));
    delivery_t *d = m ? delivery__find(m, mb) : NULL;
    c->expired++;
    if (d != NULL) {
        delivery__expire(b, d);
        return 0;
    }
    /* Only in the store: it was counted in disk[]. */
    int p = row->priority ? 1 : 0;
    if (mb->disk[p] > 0) mb->disk[p]--;
    msg_t *tmp = msg__from_envelope(row->seq, row->envelope, row->envelope_len);
    if (tmp == NULL) return 0;
    delivery__expire_stored(b, tmp, mb, row);
    msg__free(tmp);
    return 0;
}

void mailbox__expiry_sweep(broker_t *b, int64_t now)
{
    expiry_ctx_t c = {.b = b};
    int rc =
        b->store->vt->expired(b->store, now, b->committed_seq, EXPIRY_BATCH, on_expired_row, &c);
    if (rc < 0) RLOG(RELAIS_LOG_ERROR, "mailbox", "expiry query failed: %s", relais_strerror(rc));
}
