/*
 * Submissions: Submit → check sender → validate → deduplicate → record → Accepted.
 *
 * A submission that passes every check becomes a message with one delivery per recipient
 * and a STORE_MSG_PUT in the current batch; its Accepted waits in the pending replies
 * until the store has committed the batch (group commit). Only then are the deliveries
 * routed, so nothing is delivered that is not stored. A duplicate (same sender and message
 * id) is answered Accepted{duplicate} after the same commit, so that it can never overtake
 * the original's Accepted.
 *
 * Deduplication is the store's: the commit inserts the (sender, message_id) key first and
 * skips a message whose key was there already — from an earlier batch or earlier in the
 * same one — and the completion reports those as duplicates. The loop thread does no
 * look-up per submission.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin/admin.h"
#include "audit.h"
#include "broker.h"
#include "reserve.h"
#include "relais/log.h"

static void reject(broker_t *b, session_t *s, const uint8_t *message_id, size_t id_len, int code,
                   const char *reason, int64_t retry_after_ms)
{
    Relais__V1__Rejected r = RELAIS__V1__REJECTED__INIT;
    r.message_id.data = (uint8_t *)message_id;
    r.message_id.len = message_id ? id_len : 0;
    r.code = relais_err_to_wire(code);
    r.reason = (char *)reason;
    r.retry_after_ms = retry_after_ms;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_REJECTED;
    f.rejected = &r;
    b->stats.rejected++;
    b->stats.rejected_by_code[relais_err_to_wire(code) & 15]++;
    if (code == RELAIS_EOVERLOADED || code == RELAIS_ESTORE) {
        /* Retried by design, maybe in a storm: counted per sender and window. */
        auth__rejected_retryable(b, s->address, code, reason);
    } else {
        broker__audit(b, AUDIT_SUBMIT_REJECTED, s->address,
                      message_id && id_len == RELAIS_MESSAGE_ID_LEN ? message_id : NULL, NULL,
                      NULL, 0, "rejected", code);
        char idbuf[37];
        RLOG(RELAIS_LOG_INFO, "submit", "rejected agent=%s msg=%s code=%s", s->address,
             relais_id_format(message_id, message_id ? id_len : 0, idbuf), relais_err_name(code));
    }
    broker__send_session_frame(b, s, &f);
}

static pending_reply_t *add_reply(broker_t *b, session_t *s, const uint8_t *id)
{
    if (b->nreplies == b->replies_cap) {
        size_t ncap = b->replies_cap ? b->replies_cap * 2 : 64;
        b->replies = xrealloc(b->replies, ncap * sizeof(*b->replies));
        b->replies_cap = ncap;
    }
    pending_reply_t *r = &b->replies[b->nreplies++];
    memset(r, 0, sizeof(*r));
    memcpy(r->rid, s->rid, s->rid_len);
    r->rid_len = s->rid_len;
    memcpy(r->message_id, id, RELAIS_MESSAGE_ID_LEN);
    r->received_ns = uv_hrtime();
    return r;
}

/* Builds the message: stamps the broker-owned fields and re-encodes the envelope. */
static msg_t *make_msg(broker_t *b, session_t *s, Relais__V1__Envelope *env, int64_t now)
{
    msg_t *m = calloc(1, sizeof(*m));
    if (m == NULL) return NULL;
    m->deliveries = calloc(env->n_to, sizeof(*m->deliveries));
    m->sender = strdup(s->address);
    if (m->deliveries == NULL || m->sender == NULL) goto err;
    m->seq = b->next_seq++;
    memcpy(m->message_id, env->message_id.data, RELAIS_MESSAGE_ID_LEN);
    m->conversation_id_len = env->conversation_id.len;
    if (m->conversation_id_len) memcpy(m->conversation_id, env->conversation_id.data, 16);
    m->accepted_at_ms = now;
    int64_t max_deadline = now + b->cfg.max_ttl_ms;
    m->expires_at_ms = env->expires_at_ms ? env->expires_at_ms : now + b->cfg.default_ttl_ms;
    if (m->expires_at_ms > max_deadline) m->expires_at_ms = max_deadline;
    for (size_t i = 0; i < env->n_receipts; i++)
        if (env->receipts[i] > 0 && env->receipts[i] < 32)
            m->receipts_mask |= 1u << env->receipts[i];
    m->priority = env->priority == RELAIS__V1__ENVELOPE__PRIORITY__URGENT ? 1 : 0;
    m->body_case = env->body_case;
    m->dispatch = env->dispatch;

    /* The decoded strings belong to protobuf-c's allocator: swap ours in only to pack. */
    char *old_sender = env->sender;
    int64_t old_accepted = env->accepted_at_ms, old_expires = env->expires_at_ms;
    env->sender = m->sender;
    env->accepted_at_ms = now;
    env->expires_at_ms = m->expires_at_ms;
    m->envelope_len = relais__v1__envelope__get_packed_size(env);
    m->envelope = malloc(m->envelope_len ? m->envelope_len : 1);
    if (m->envelope != NULL) relais__v1__envelope__pack(env, m->envelope);
    env->sender = old_sender;
    env->accepted_at_ms = old_accepted;
    env->expires_at_ms = old_expires;
    if (m->envelope == NULL) goto err;

    m->ndeliveries = (unsigned)env->n_to;
    for (size_t i = 0; i < env->n_to; i++) {
        mailbox_t *mb = mailbox__get(b, env->to[i], true);
        delivery_t *d = mb ? delivery__new(m, mb) : NULL;
        if (d == NULL) goto err;
        d->state = DELIVERY_STORED;
        d->never_sent = true;
    }
    return m;
err:
    msg__free(m);
    return NULL;
}

/* Records the message and its deliveries in the batch, whole (allocation failures abort:
 * a message is never half in a batch). The store op copies the bytes. */
static void record_msg(broker_t *b, msg_t *m)
{
    store_op_t op = {.kind = STORE_MSG_PUT,
                     .seq = m->seq,
                     .at_ms = m->accepted_at_ms,
                     .expires_at_ms = m->expires_at_ms};
    memcpy(op.message_id, m->message_id, RELAIS_MESSAGE_ID_LEN);
    op.body_case = m->body_case;
    op.n_to = m->ndeliveries;
    op.address = xstrdup(m->sender);
    op.data = xmemdup(m->envelope, m->envelope_len ? m->envelope_len : 1);
    op.data_len = m->envelope_len;
    broker__record(b, &op);
    for (unsigned i = 0; i < m->ndeliveries; i++) {
        store_op_t d = {.kind = STORE_DELIVERY_SET,
                        .seq = m->seq,
                        .state = DELIVERY_STORED,
                        .priority = m->priority,
                        .at_ms = m->accepted_at_ms};
        d.address = xstrdup(m->deliveries[i]->mbox->address);
        broker__record(b, &d);
    }
}

void submit__handle(broker_t *b, session_t *s, const uint8_t *body, size_t body_len,
                    const Relais__V1__Submit *sub)
{
    (void)body;
    (void)body_len;
    Relais__V1__Envelope *env = sub->envelope;
    char reason[RELAIS_REASON_MAX];
    if (env == NULL) {
        reject(b, s, NULL, 0, RELAIS_EINVALID, "Submit carries no envelope", 0);
        return;
    }
    const uint8_t *id = env->message_id.data;
    size_t id_len = env->message_id.len;
    if (env->sender != NULL && env->sender[0] != '\0' && strcmp(env->sender, s->address) != 0) {
        snprintf(reason, sizeof(reason),
                 "envelope.sender %.100s is not this session's identity %.100s", env->sender,
                 s->address);
        reject(b, s, id, id_len, RELAIS_EFORBIDDEN, reason, 0);
        return;
    }
    int64_t now = relais_now_ms();
    int rc = relais_envelope_validate(env, now, b->cfg.max_recipients, reason, sizeof(reason));
    if (rc < 0) {
        reject(b, s, id, id_len, rc, reason, 0);
        return;
    }
    for (size_t i = 0; i < env->n_to; i++) {
        relais_address_t a;
        relais_address_parse(env->to[i], &a, NULL, 0);
        if (a.kind == RELAIS_ADDR_SERVICE && b->dir == NULL) {
            snprintf(reason, sizeof(reason),
                     "to[%zu]: a service pool needs a territory directory to resolve it", i);
            reject(b, s, id, id_len, RELAIS_EUNKNOWNRCPT, reason, 0);
            return;
        }
    }
    if (b->stopping) {
        reject(b, s, id, id_len, RELAIS_EOVERLOADED, "broker is shutting down", 1000);
        return;
    }
    if (!reserve_ok(b->reserve)) {
        /* The disk filled: the room left is for acknowledging what is stored, which frees
         * the pages new messages will use. */
        reject(b, s, id, id_len, RELAIS_ESTORE,
               "store unavailable: disk full, retry later (space is kept for acknowledgements)",
               1000);
        return;
    }
    if (b->audit != NULL && !audit_healthy(b->audit)) {
        /* Every access must be traceable: while the journal cannot keep up, nothing new is
         * accepted (what was accepted still moves, its records waiting in the queue). */
        reject(b, s, id, id_len, RELAIS_ESTORE, "audit journal unavailable: retry later", 1000);
        return;
    }
    int64_t retry_after = 0;
    rc = authorize__submit(b, s, env, now, reason, sizeof(reason), &retry_after);
    if (rc < 0) {
        reject(b, s, id, id_len, rc, reason, retry_after);
        return;
    }

    /* Whether it duplicates an earlier submission is the store's to say, in the commit: see
     * on_committed. */
    msg_t *m = make_msg(b, s, env, now);
    if (m == NULL) {
        reject(b, s, id, id_len, RELAIS_EOVERLOADED, "out of memory", 1000);
        return;
    }
    record_msg(b, m);
    /* From here on the message is in the batch: its answer can only be the commit's. */
    pending_reply_t *r = add_reply(b, s, id);
    r->accepted_at_ms = now;
    r->msg = m;
    authorize__record(b, env, s->address, now);
    char idbuf[37];
    RLOG(RELAIS_LOG_DEBUG, "submit", "stored agent=%s msg=%s seq=%llu body=%s rcpts=%u", s->address,
         relais_id_format(id, id_len, idbuf), (unsigned long long)m->seq,
         relais_body_name(m->body_case), m->ndeliveries);
}

typedef struct commit_ctx {
    broker_t *b;
    pending_reply_t *replies;
    size_t n;
    keyvec_t settled;        /* deliveries this batch makes final */
    keyvec_t participations; /* conversation participations this batch records */
    uint64_t gen;
} commit_ctx_t;

static void send_accepted(broker_t *b, const pending_reply_t *r)
{
    if (r->rid_len == 0) return; /* a replayed dead letter: nobody to answer */
    Relais__V1__Accepted a = RELAIS__V1__ACCEPTED__INIT;
    a.message_id.data = (uint8_t *)r->message_id;
    a.message_id.len = RELAIS_MESSAGE_ID_LEN;
    a.duplicate = r->duplicate;
    a.accepted_at_ms = r->accepted_at_ms;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_ACCEPTED;
    f.accepted = &a;
    broker__send_frame(b, r->rid, r->rid_len, &f);
}

void submit__hold_replay(broker_t *b, msg_t *m, const void *key, size_t key_len)
{
    if (b->nreplies == b->replies_cap) {
        size_t ncap = b->replies_cap ? b->replies_cap * 2 : 64;
        b->replies = xrealloc(b->replies, ncap * sizeof(*b->replies));
        b->replies_cap = ncap;
    }
    pending_reply_t *r = &b->replies[b->nreplies++];
    memset(r, 0, sizeof(*r));
    memcpy(r->message_id, m->message_id, RELAIS_MESSAGE_ID_LEN);
    r->accepted_at_ms = m->accepted_at_ms;
    r->msg = m;
    r->replay_key = xmemdup(key, key_len);
    r->replay_key_len = key_len;
}

/* A replayed dead letter's batch committed (ok) or failed: journaled, or dropped. */
static bool settle_replay(broker_t *b, pending_reply_t *r, bool ok)
{
    map_del(b->replaying, r->replay_key, r->replay_key_len);
    free(r->replay_key);
    r->replay_key = NULL;
    if (!ok) {
        RLOG(RELAIS_LOG_WARN, "replay", "a replay was not stored: the dead letter stays");
        msg__free(r->msg);
        r->msg = NULL;
        return false;
    }
    const char *to = NULL;
    for (unsigned i = 0; i < r->msg->ndeliveries; i++)
        if (r->msg->deliveries[i] != NULL) to = r->msg->deliveries[i]->mbox->address;
    audit_event_t ev = {.kind = AUDIT_REPLAY,
                        .actor = "admin",
                        .message_id = r->msg->message_id,
                        .message_id_len = RELAIS_MESSAGE_ID_LEN,
                        .body = relais_body_name(r->msg->body_case),
                        .to = to,
                        .outcome = "replayed"};
    broker__audit_event(b, &ev);
    return true;
}

static bool is_dup(const store_result_t *res, size_t *cursor, uint64_t seq)
{
    /* Both lists ascend: one pass over the duplicates for the whole batch. */
    while (*cursor < res->ndups && res->dup_seqs[*cursor] < seq) (*cursor)++;
    return *cursor < res->ndups && res->dup_seqs[*cursor] == seq;
}

/* Keeps r until the journal has its record on disk (ticket: the record's position). */
static void hold_reply(broker_t *b, const pending_reply_t *r, uint64_t ticket)
{
    if (b->nheld == b->held_cap) {
        size_t ncap = b->held_cap ? b->held_cap * 2 : 64;
        b->held = xrealloc(b->held, ncap * sizeof(*b->held));
        b->held_cap = ncap;
    }
    b->held[b->nheld] = *r; /* takes r->msg */
    b->held[b->nheld].ticket = ticket;
    b->nheld++;
}

void submit__release_replies(broker_t *b)
{
    if (b->nheld == 0) return;
    uint64_t durable = b->audit ? audit_durable(b->audit) : UINT64_MAX;
    size_t i = 0;
    /* Tickets ascend: the first not yet durable ends the walk. Accepted goes first, then
     * the message is routed: nothing about a message reaches anyone before its sender knows
     * it was accepted. Routing may send, but adds nothing to the held list. */
    while (i < b->nheld && b->held[i].ticket <= durable) {
        pending_reply_t *r = &b->held[i++];
        send_accepted(b, r);
        if (r->msg != NULL) delivery__route(b, r->msg);
        r->msg = NULL;
    }
    if (i == 0) return;
    memmove(b->held, b->held + i, (b->nheld - i) * sizeof(*b->held));
    b->nheld -= i;
}

static void reject_uncommitted(broker_t *b, pending_reply_t *r, const char *reason)
{
    Relais__V1__Rejected rj = RELAIS__V1__REJECTED__INIT;
    rj.message_id.data = r->message_id;
    rj.message_id.len = RELAIS_MESSAGE_ID_LEN;
    rj.code = relais_err_to_wire(RELAIS_ESTORE);
    rj.reason = (char *)reason;
    rj.retry_after_ms = 1000;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_REJECTED;
    f.rejected = &rj;
    b->stats.rejected++;
    b->stats.rejected_by_code[relais_err_to_wire(RELAIS_ESTORE) & 15]++;
    if (r->msg != NULL)
        broker__audit(b, AUDIT_SUBMIT_REJECTED, r->msg->sender, r->msg->message_id,
                      relais_body_name(r->msg->body_case), NULL, 0, "not-stored", RELAIS_ESTORE);
    broker__send_frame(b, r->rid, r->rid_len, &f);
}

/*
 * A batch committed (or failed, and nothing of it is stored). Each message's Accepted, and
 * then its routing, wait until the journal holds its record on disk: "Accepted" means stored
 * and journaled. The journal syncs in parallel with the next batch's commit, so this costs
 * latency (one fdatasync), not throughput.
 */
static void on_committed(const store_result_t *res, void *ud)
{
    commit_ctx_t *c = ud;
    broker_t *b = c->b;
    b->commit_in_flight = false;
    b->gen_committed = c->gen;
    admin_commit_done(b, res->status, c->replies, c->n);
    /* Committed (or rolled back): the store now tells the truth about these. */
    mailbox__settled(b, &c->settled);
    authorize__settled(b, &c->participations);
    session__committed(b, c->gen, res->status == 0);
    size_t dup_cursor = 0;
    uint64_t ticket = 0;
    for (size_t i = 0; i < c->n; i++) {
        pending_reply_t *r = &c->replies[i];
        if (r->replay_key != NULL) {
            if (settle_replay(b, r, res->status == 0)) {
                ticket = b->audit ? audit_position(b->audit) : 0;
                hold_reply(b, r, ticket);
            }
            continue;
        }
        if (res->status == RELAIS_EUNKNOWN) {
            /* The store cannot say whether the batch committed: neither Accepted nor
             * Rejected would be the truth. The sender resubmits after its timeout, and the
             * deduplication answers for what was stored (a restart routes it). */
            msg__free(r->msg);
            continue;
        }
        if (res->status != 0) {
            /* Nothing of the batch is stored: tell the sender to retry. */
            reject_uncommitted(b, r, res->reason);
            msg__free(r->msg);
            continue;
        }
        /* Journaled already, from the commit thread, while the store committed
         * (journal_put): the reply waits for that record to be on disk. */
        if (r->msg && is_dup(res, &dup_cursor, r->msg->seq)) {
            /* Accepted before (earlier in this batch, or in an earlier one): the store
             * kept nothing of this copy, so it is neither routed nor delivered. */
            r->duplicate = true;
            msg__free(r->msg);
            r->msg = NULL;
            b->stats.duplicates++;
        } else {
            b->stats.accepted++;
            if (r->msg) admin_accepted(b, r->msg);
        }
        if (res->journal_ticket > ticket) ticket = res->journal_ticket;
        hold_reply(b, r, ticket);
    }
    if (b->audit != NULL && ticket > 0) audit_want_durable(b->audit, ticket);
    submit__release_replies(b);
    free(c->replies);
    free(c);
    /* Work gathered while this commit ran goes next. */
    submit__commit(b);
    broker__store_caught_up(b);
    if (b->stopping) broker__finish_shutdown(b);
}

uint64_t submit__journal_put(void *ud, const store_op_t *op, bool duplicate, bool committed)
{
    broker_t *b = ud;
    if (b->audit == NULL) return 0;
    audit_event_t ev = {.kind = !committed  ? AUDIT_SUBMIT_REJECTED
                                : duplicate ? AUDIT_SUBMIT_DUPLICATE
                                            : AUDIT_SUBMIT_ACCEPTED,
                        .actor = op->address,
                        .message_id = op->message_id,
                        .message_id_len = RELAIS_MESSAGE_ID_LEN,
                        .body = relais_body_name(op->body_case),
                        .attempt = !committed || duplicate ? 0 : op->n_to,
                        .outcome = !committed  ? "not-stored"
                                   : duplicate ? "duplicate"
                                               : "accepted",
                        .code = committed ? 0 : RELAIS_ESTORE};
    /* audit_record is thread-safe; the position read after it covers this record. */
    audit_record(b->audit, &ev);
    return audit_position(b->audit);
}

void submit__commit(broker_t *b)
{
    if (b->commit_in_flight || b->detached ||
        (b->batch.count == 0 && b->nreplies == 0 && b->settle_keys.n == 0 &&
         b->participation_keys.n == 0))
        return;
    commit_ctx_t *c = calloc(1, sizeof(*c));
    if (c == NULL) return; /* retried at the next drain or tick */
    c->b = b;
    c->replies = b->replies;
    c->n = b->nreplies;
    c->settled = b->settle_keys;
    memset(&b->settle_keys, 0, sizeof(b->settle_keys));
    c->participations = b->participation_keys;
    memset(&b->participation_keys, 0, sizeof(b->participation_keys));
    c->gen = b->gen_open++;
    b->replies = NULL;
    b->nreplies = b->replies_cap = 0;
    store_batch_t batch = b->batch;
    memset(&b->batch, 0, sizeof(b->batch));
    broker__forget_batch_index(b, &batch); /* the next batch starts without this one's */
    b->commit_in_flight = true;
    b->stats.commit_started_ns = uv_hrtime();
    b->stats.commit_ops = batch.count;
    int rc = b->store->vt->commit(b->store, &batch, on_committed, c);
    if (rc < 0) {
        store_result_t failed = {.status = RELAIS_ESTORE,
                                 .reason = "store unavailable: the batch could not be queued"};
        on_committed(&failed, c);
    }
    store_batch_free(&batch);
}

void submit__prune_dedup(broker_t *b, int64_t now)
{
    store_op_t op = {.kind = STORE_DEDUP_PRUNE, .at_ms = now - b->cfg.dedup_retention_ms};
    broker__record(b, &op);
}
