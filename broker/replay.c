/*
 * Dead letters brought back, and forgotten.
 *
 * A replay (`relaisctl replay ID`, a write action of the control socket) makes each dead
 * letter of a message pending again for its recipient: as a new message in the store (a new
 * sequence, so it queues behind what is pending, with a new deadline: the broker's default
 * from now), delivered like any other, with attempt 1. It goes through the same batch, commit,
 * journal and release as a submission (a pending reply with no routing id to answer), so it
 * is routed only once stored and journaled ("replay"). The dead letter leaves the store in the
 * same transaction; a dead letter already replayed or purged makes the replay do nothing.
 *
 * A purge forgets dead letters older than a cut-off: by hand (`relaisctl purge
 * --older-than`) and, once a minute, past the retention period (--dead-letter-retention-days):
 * dead letters hold clinical content in clear and are kept only as long as a replay may be
 * wanted. Each purge is journaled with the count it forgot.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "broker.h"
#include "relais/log.h"

typedef struct replay_ctx {
    broker_t *b;
    unsigned found, replayed;
    int64_t now;
} replay_ctx_t;

/* The envelope with a new deadline, stamped as the broker stamps a submission's. */
static uint8_t *restamp(const uint8_t *data, size_t len, int64_t expires_at_ms, size_t *out_len)
{
    Relais__V1__Envelope *env = relais__v1__envelope__unpack(NULL, len, data);
    if (env == NULL) return NULL;
    env->expires_at_ms = expires_at_ms;
    *out_len = relais__v1__envelope__get_packed_size(env);
    uint8_t *out = xmalloc(*out_len ? *out_len : 1);
    relais__v1__envelope__pack(env, out);
    relais__v1__envelope__free_unpacked(env, NULL);
    return out;
}

static int on_row(void *ud, const store_message_row_t *row)
{
    replay_ctx_t *c = ud;
    broker_t *b = c->b;
    if (row->kind != 'd') return 0;
    c->found++;
    char key[8 + RELAIS_ADDRESS_MAX];
    size_t n = strlen(row->recipient);
    if (n >= RELAIS_ADDRESS_MAX) return 0;
    memcpy(key, &row->seq, 8);
    memcpy(key + 8, row->recipient, n);
    if (map_get(b->replaying, key, 8 + n) != NULL) return 0; /* asked twice: once is enough */
    int64_t expires = c->now + b->cfg.default_ttl_ms;
    size_t len = 0;
    uint8_t *env = restamp(row->envelope, row->envelope_len, expires, &len);
    msg_t *m = env ? msg__from_envelope(b->next_seq, env, len) : NULL;
    if (m == NULL) {
        free(env);
        RLOG(RELAIS_LOG_ERROR, "replay", "dead letter seq=%llu does not decode: not replayed",
             (unsigned long long)row->seq);
        return 0;
    }
    b->next_seq++;
    m->accepted_at_ms = c->now;
    mailbox_t *mb = mailbox__get(b, row->recipient, true);
    delivery_t *d = delivery__new(m, mb);
    d->state = DELIVERY_STORED;
    d->never_sent = true;
    store_op_t op = {.kind = STORE_DEAD_REPLAY,
                     .seq = m->seq,
                     .ref_seq = row->seq,
                     .priority = m->priority,
                     .at_ms = c->now,
                     .expires_at_ms = expires,
                     .data = env,
                     .data_len = len};
    op.address = xstrdup(row->recipient);
    broker__record(b, &op);
    if (map_put(b->replaying, key, 8 + n, (void *)1) < 0) xalloc__oom(8 + n);
    submit__hold_replay(b, m, key, 8 + n);
    c->replayed++;
    return 0;
}

int replay__dead_letters(broker_t *b, const uint8_t id[RELAIS_MESSAGE_ID_LEN], unsigned *replayed)
{
    replay_ctx_t c = {.b = b, .now = relais_now_ms()};
    int rc = store_sqlite_message(b->store, id, RELAIS_MESSAGE_ID_LEN, on_row, &c);
    *replayed = c.replayed;
    if (rc < 0) return rc;
    char idbuf[37];
    RLOG(RELAIS_LOG_INFO, "replay", "msg=%s dead_letters=%u replayed=%u",
         relais_id_format(id, RELAIS_MESSAGE_ID_LEN, idbuf), c.found, c.replayed);
    return c.found == 0 ? RELAIS_EUNKNOWNRCPT : 0;
}

int replay__purge(broker_t *b, int64_t before_ms, const char *who, uint64_t *purged)
{
    uint64_t n = 0;
    int rc = store_sqlite_dead_letter_count_before(b->store, before_ms, &n);
    if (rc < 0) return rc;
    *purged = n;
    if (n == 0) return 0;
    store_op_t op = {.kind = STORE_DEAD_PURGE, .at_ms = before_ms};
    broker__record(b, &op);
    char cut[32];
    snprintf(cut, sizeof(cut), "before=%lld", (long long)before_ms);
    audit_event_t ev = {.kind = AUDIT_PURGE, .actor = who, .outcome = cut, .count = n};
    broker__audit_event(b, &ev);
    RLOG(RELAIS_LOG_INFO, "replay", "dead letters purged count=%llu by=%s before_ms=%lld",
         (unsigned long long)n, who, (long long)before_ms);
    return 0;
}
