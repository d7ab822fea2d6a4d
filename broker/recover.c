/*
 * Start-up recovery: what the broker needs in memory before it serves, read from the
 * store. That is little, by design: the receipts still owed to senders, how many
 * deliveries each mailbox has pending (per priority), and where message sequences and
 * receipt ids stand. The messages themselves stay on disk and are paged in when their
 * recipients connect, so a restart with a million queued messages costs one counting query,
 * not a million decodes.
 *
 * A delivery that was in flight when the broker died is still pending in the store; when
 * paged in it is treated as redelivering, and its next Deliver says attempt + 1. A Deliver
 * may also have left before the batch recording its attempt committed: so every pending
 * delivery of an address that had a session (the sessions table, committed before anything
 * is sent to a session) gets attempt + 1 first, and no Deliver is ever repeated with an
 * attempt number already used.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "broker.h"
#include "relais/log.h"

typedef struct recover_ctx {
    broker_t *b;
    uint64_t pending;
    size_t mailboxes, receipts;
} recover_ctx_t;

static int on_count(void *ud, const char *recipient, int priority, uint64_t count)
{
    recover_ctx_t *c = ud;
    mailbox_t *mb = mailbox__get(c->b, recipient, true);
    if (mb == NULL) return -ENOMEM;
    mb->disk[priority ? 1 : 0] += count;
    c->pending += count;
    c->mailboxes++;
    return 0;
}

static int on_receipt(void *ud, uint64_t id, const char *address, const uint8_t *frame, size_t len)
{
    recover_ctx_t *c = ud;
    c->receipts++;
    return delivery__restore_receipt(c->b, id, address, frame, len);
}

int recover__load(broker_t *b)
{
    recover_ctx_t c = {.b = b};
    uint64_t max_seq = 0, max_receipt = 0, bumped = 0;
    int rc = b->store->vt->recover_attempts(b->store, &bumped);
    if (rc == 0) rc = b->store->vt->max_ids(b->store, &max_seq, &max_receipt);
    if (rc == 0) rc = b->store->vt->counts(b->store, on_count, &c);
    if (rc == 0) rc = b->store->vt->receipts(b->store, on_receipt, &c);
    if (rc < 0) return rc;
    b->committed_seq = max_seq;
    b->next_seq = max_seq + 1;
    if (max_receipt >= b->next_receipt_id) b->next_receipt_id = max_receipt + 1;
    RLOG(RELAIS_LOG_INFO, "recover",
         "recovered pending=%llu mailboxes=%zu receipts=%zu next_seq=%llu "
         "maybe_sent=%llu",
         (unsigned long long)c.pending, c.mailboxes, c.receipts, (unsigned long long)b->next_seq,
         (unsigned long long)bumped);
    return 0;
}
