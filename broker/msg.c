/*
 * Messages in memory: one accepted message, its stamped envelope and its deliveries, held
 * while at least one of its deliveries is in memory (reference counted) and findable by seq
 * while it is. msg__from_envelope rebuilds one from the store's copy when a mailbox pages it
 * back in.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "relais/log.h"

void msg__free(msg_t *m)
{
    if (m == NULL) return;
    for (unsigned i = 0; i < m->ndeliveries; i++) {
        if (m->deliveries[i]) delivery__release(m->deliveries[i]);
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

