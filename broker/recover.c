/*
 * Start-up recovery: rebuilds the broker's in-memory state from the store.
 *
 * Every message that still has a delivery in a non-final state is decoded from its stored
 * envelope (which holds all of its metadata, stamped by the broker) and routed again, in
 * acceptance order, so queues come back exactly as they were. A delivery that was in
 * flight when the broker died comes back as redelivering: the next Deliver says
 * attempt + 1, and the agent's deduplication keeps the handler from running twice.
 * Receipts owed and deduplication keys come back too, so a sender retrying across the
 * restart still gets Accepted{duplicate}.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "relais/log.h"

typedef struct recover_ctx {
    broker_t *b;
    map_t *by_seq;
    msg_t **order;
    size_t n, cap;
    size_t deliveries, receipts, dedup;
} recover_ctx_t;

static int on_message(void *ud, uint64_t seq, const uint8_t *data, size_t len)
{
    recover_ctx_t *c = ud;
    Relais__V1__Envelope *env = relais__v1__envelope__unpack(NULL, len, data);
    if (env == NULL || env->message_id.len != RELAIS_MESSAGE_ID_LEN || env->n_to == 0) {
        RLOG(RELAIS_LOG_ERROR, "recover", "stored message seq=%llu does not decode: skipped",
             (unsigned long long)seq);
        if (env) relais__v1__envelope__free_unpacked(env, NULL);
        return 0;
    }
    msg_t *m = calloc(1, sizeof(*m));
    if (m == NULL) goto oom;
    m->seq = seq;
    m->sender = strdup(env->sender);
    m->deliveries = calloc(env->n_to, sizeof(*m->deliveries));
    m->envelope = malloc(len);
    if (m->sender == NULL || m->deliveries == NULL || m->envelope == NULL) goto oom;
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
        if (env->receipts[i] > 0 && env->receipts[i] < 32) m->receipts_mask |= 1u << env->receipts[i];
    m->priority = env->priority == RELAIS__V1__ENVELOPE__PRIORITY__URGENT ? 1 : 0;
    m->body_case = env->body_case;
    m->heap_index = SIZE_MAX;
    /* Capacity for every recipient; ndeliveries counts those restored. */
    m->live = (unsigned)env->n_to;
    relais__v1__envelope__free_unpacked(env, NULL);
    env = NULL;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 1024;
        msg_t **o = realloc(c->order, ncap * sizeof(*o));
        if (o == NULL) goto oom;
        c->order = o;
        c->cap = ncap;
    }
    if (map_put(c->by_seq, &m->seq, sizeof(m->seq), m) < 0) goto oom;
    c->order[c->n++] = m;
    if (seq >= c->b->next_seq) c->b->next_seq = seq + 1;
    return 0;
oom:
    if (env) relais__v1__envelope__free_unpacked(env, NULL);
    msg__free(m);
    return -ENOMEM;
}

static int on_delivery(void *ud, uint64_t seq, const char *recipient, int state,
                       uint32_t attempt)
{
    recover_ctx_t *c = ud;
    msg_t *m = map_get(c->by_seq, &seq, sizeof(seq));
    if (m == NULL || state == DELIVERY_ACKED || state == DELIVERY_EXPIRED ||
        state == DELIVERY_REFUSED || m->ndeliveries >= m->live)
        return 0;
    delivery_t *d = calloc(1, sizeof(*d));
    mailbox_t *mb = delivery__mailbox(c->b, recipient, true);
    if (d == NULL || mb == NULL) {
        free(d);
        return -ENOMEM;
    }
    d->msg = m;
    d->mbox = mb;
    d->attempt = attempt;
    d->state = state == DELIVERY_STORED ? DELIVERY_STORED : DELIVERY_REDELIVERING;
    list_init(&d->qnode);
    list_init(&d->fnode);
    m->deliveries[m->ndeliveries++] = d;
    c->deliveries++;
    return 0;
}

static int on_receipt(void *ud, uint64_t id, const char *address, const uint8_t *frame,
                      size_t len)
{
    recover_ctx_t *c = ud;
    c->receipts++;
    return delivery__restore_receipt(c->b, id, address, frame, len);
}

static int on_dedup(void *ud, const char *sender, const uint8_t *id, uint64_t seq,
                    int64_t accepted_at_ms)
{
    recover_ctx_t *c = ud;
    uint8_t key[RELAIS_ADDRESS_MAX + 1 + RELAIS_MESSAGE_ID_LEN];
    if (strlen(sender) >= RELAIS_ADDRESS_MAX) return 0;
    size_t klen = submit__dedup_key(sender, id, key);
    if (seq >= c->b->next_seq) c->b->next_seq = seq + 1;
    c->dedup++;
    return map_put(c->b->dedup, key, klen, (void *)(uintptr_t)accepted_at_ms);
}

int recover__load(broker_t *b)
{
    recover_ctx_t c = {.b = b};
    int rc = map_new(&c.by_seq);
    if (rc < 0) return rc;
    store_loader_t l = {.message = on_message, .delivery = on_delivery, .receipt = on_receipt,
                        .dedup = on_dedup, .ud = &c};
    rc = b->store->vt->load(b->store, &l);
    size_t messages = 0;
    for (size_t i = 0; i < c.n; i++) {
        msg_t *m = c.order[i];
        m->live = m->ndeliveries;
        if (rc < 0 || m->live == 0) {
            /* Nothing owed any more: the delete was lost with the crash. Finish it now. */
            if (rc == 0) {
                store_op_t op = {.kind = STORE_MSG_DEL, .seq = m->seq};
                broker__record(b, &op);
            }
            msg__free(m);
            continue;
        }
        messages++;
        delivery__route(b, m);
    }
    free(c.order);
    map_destroy(&c.by_seq);
    if (rc < 0) return rc;
    RLOG(RELAIS_LOG_INFO, "recover", "recovered messages=%zu deliveries=%zu receipts=%zu "
         "dedup_keys=%zu next_seq=%llu", messages, c.deliveries, c.receipts, c.dedup,
         (unsigned long long)b->next_seq);
    return 0;
}
