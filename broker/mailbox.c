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

/* ---- Messages ---------------------------------------------------------------------- */

/* Drops what a delivery holds on mailboxes: its own, and pool members it names. */
static void release_members(delivery_t *d)
{
    d->mbox->refs--;
    for (unsigned i = 0; i < d->ntried; i++) d->tried[i]->refs--;
    free(d->tried);
    d->tried = NULL;
    d->ntried = 0;
    if (d->claimed_by != NULL) d->claimed_by->refs--;
    d->claimed_by = NULL;
}

void delivery__set_claimed(delivery_t *d, mailbox_t *member)
{
    if (d->claimed_by != NULL) d->claimed_by->refs--;
    d->claimed_by = member;
    if (member != NULL) member->refs++;
}

void delivery__add_tried(delivery_t *d, mailbox_t *member)
{
    d->tried = xrealloc(d->tried, (d->ntried + 1) * sizeof(*d->tried));
    d->tried[d->ntried++] = member;
    member->refs++;
}

void msg__free(msg_t *m)
{
    if (m == NULL) return;
    for (unsigned i = 0; i < m->ndeliveries; i++) {
        if (m->deliveries[i]) release_members(m->deliveries[i]);
        free(m->deliveries[i]);
    }
    free(m->deliveries);
    free(m->envelope);
    free(m->sender);
    free(m);
}

msg_t *msg__from_envelope(uint64_t seq, const uint8_t *data, size_t len)
{
    Relais__V1__Envelope *env = relais__v1__envelope__unpack(NULL, len, data);
    if (env == NULL || env->message_id.len != RELAIS_MESSAGE_ID_LEN || env->n_to == 0 ||
        env->sender == NULL) {
        RLOG(RELAIS_LOG_ERROR, "mailbox", "stored message seq=%llu does not decode",
             (unsigned long long)seq);
        if (env) relais__v1__envelope__free_unpacked(env, NULL);
        return NULL;
    }
    msg_t *m = calloc(1, sizeof(*m));
    if (m == NULL) goto oom;
    m->seq = seq;
    m->sender = strdup(env->sender);
    m->deliveries = calloc(env->n_to, sizeof(*m->deliveries));
    m->envelope = malloc(len);
    if (m->sender == NULL || m->deliveries == NULL || m->envelope == NULL) goto oom;
    m->ndeliveries = (unsigned)env->n_to;
    memcpy(m->envelope, data, len);
    m->envelope_len = len;
    memcpy(m->message_id, env->message_id.data, RELAIS_MESSAGE_ID_LEN);
    if (env->conversation_id.len == RELAIS_MESSAGE_ID_LEN) {
        memcpy(m->conversation_id, env->conversation_id.data, RELAIS_MESSAGE_ID_LEN);
        m->conversation_id_len = RELAIS_MESSAGE_ID_LEN;
    }
    m->accepted_at_ms = env->accepted_at_ms;
    m->expires_at_ms = env->expires_at_ms;
    for (size_t i = 0; i < env->n_receipts; i++)
        if (env->receipts[i] > 0 && env->receipts[i] < 32)
            m->receipts_mask |= 1u << env->receipts[i];
    m->priority = env->priority == RELAIS__V1__ENVELOPE__PRIORITY__URGENT ? 1 : 0;
    m->body_case = env->body_case;
    m->dispatch = env->dispatch;
    relais__v1__envelope__free_unpacked(env, NULL);
    return m;
oom:
    relais__v1__envelope__free_unpacked(env, NULL);
    msg__free(m);
    return NULL;
}

void msg__unref(broker_t *b, msg_t *m)
{
    if (--m->refs > 0) return;
    if (m->indexed) map_del(b->msgs, &m->seq, sizeof(m->seq));
    msg__free(m);
}

int msg__index(broker_t *b, msg_t *m)
{
    if (m->indexed) return 0;
    int rc = map_put(b->msgs, &m->seq, sizeof(m->seq), m);
    m->indexed = rc == 0;
    return rc;
}

delivery_t *delivery__new(msg_t *m, mailbox_t *mb)
{
    for (unsigned i = 0; i < m->ndeliveries; i++) {
        if (m->deliveries[i] != NULL) continue;
        delivery_t *d = calloc(1, sizeof(*d));
        if (d == NULL) return NULL;
        d->msg = m;
        d->mbox = mb;
        mb->refs++; /* a mailbox outlives every delivery to it held in memory */
        list_init(&d->qnode);
        list_init(&d->fnode);
        list_init(&d->offers);
        m->deliveries[i] = d;
        m->refs++;
        return d;
    }
    return NULL; /* every recipient of the message already has its delivery in memory */
}

delivery_t *delivery__find(msg_t *m, const mailbox_t *mb)
{
    for (unsigned i = 0; i < m->ndeliveries; i++)
        if (m->deliveries[i] != NULL && m->deliveries[i]->mbox == mb) return m->deliveries[i];
    return NULL;
}

void delivery__free(broker_t *b, delivery_t *d)
{
    msg_t *m = d->msg;
    for (unsigned i = 0; i < m->ndeliveries; i++)
        if (m->deliveries[i] == d) m->deliveries[i] = NULL;
    release_members(d);
    free(d);
    msg__unref(b, m);
}

/* ---- Mailboxes --------------------------------------------------------------------- */

mailbox_t *delivery__mailbox(broker_t *b, const char *address, bool create)
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

bool delivery__settling(broker_t *b, uint64_t seq, const char *recipient)
{
    uint8_t key[8 + RELAIS_ADDRESS_MAX];
    return map_get(b->settling, key, settle_key(seq, recipient, key)) != NULL;
}

void delivery__settle(broker_t *b, uint64_t seq, const char *recipient)
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

void delivery__settled(broker_t *b, keyvec_t *v)
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
    if (delivery__settling(b, row->seq, mb->address)) return 0;
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
    if (row->claimed_by != NULL) delivery__set_claimed(d, delivery__mailbox(b, row->claimed_by, true));
    list_push_back(&mb->queue[c->p], &d->qnode);
    mb->mem[c->p]++;
    if (mb->disk[c->p] > 0) mb->disk[c->p]--;
    return 0;
}

void delivery__page_in(broker_t *b, mailbox_t *mb, int p)
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

void delivery__evict_idle(broker_t *b)
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
    if (delivery__settling(b, row->seq, row->recipient)) return 0;
    mailbox_t *mb = delivery__mailbox(b, row->recipient, true);
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

void delivery__expiry_sweep(broker_t *b, int64_t now)
{
    expiry_ctx_t c = {.b = b};
    int rc =
        b->store->vt->expired(b->store, now, b->committed_seq, EXPIRY_BATCH, on_expired_row, &c);
    if (rc < 0) RLOG(RELAIS_LOG_ERROR, "mailbox", "expiry query failed: %s", relais_strerror(rc));
}
