/*
 * The store interface: where the broker's state lives.
 *
 * The store is the truth; the broker holds in memory only what it is working on: the
 * sessions, the head of each online mailbox's queue (a page at most per priority), the
 * deliveries in flight and the receipts owed. Everything else — an offline agent's backlog
 * of a million messages — stays on disk and is paged in when its agent connects, so the
 * broker's memory does not grow with the backlog.
 *
 * Writes: every change that must survive (a message accepted with its deliveries, a
 * delivery's state, a receipt owed) is an operation in a batch; all the operations of one
 * loop turn are committed together (group commit), on the store's own thread. The broker
 * sends Accepted only from the batch's completion callback.
 *
 * Reads: the page, count, expiry and deduplication queries run on the loop thread and see
 * what is committed. They are cheap indexed look-ups; the broker compensates for what is
 * not committed yet (see submit.c and delivery.c).
 */
#ifndef RELAIS_BROKER_STORE_H
#define RELAIS_BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef enum store_op_kind {
    STORE_MSG_PUT = 1,  /* a message to accept, unless (sender, message_id) was accepted
                         * before: the store then skips it and the DELIVERY_SET STORED ops
                         * that follow it, and reports its seq as a duplicate */
    STORE_DELIVERY_SET, /* one delivery's new state and attempt. The store drops a message
                         * once none of its deliveries is pending any more, keeping the
                         * expired and refused ones in dead_letters */
    STORE_RECEIPT_PUT,  /* a receipt owed to a sender */
    STORE_RECEIPT_DEL,  /* a receipt acknowledged */
    STORE_DEDUP_PRUNE,  /* forget deduplication keys accepted before at_ms */
    STORE_PARTICIPANT_PUT, /* address (op.address) takes part in conversation op.data */
    STORE_PARTICIPANT_PRUNE, /* forget participations recorded before at_ms */
    STORE_DELIVERY_CLAIM,  /* pool delivery op.seq/op.address claimed by op.data (address) */
    STORE_SESSION_PUT,     /* op.address has a session: deliveries may be sent to it */
    STORE_SESSION_DEL,     /* op.address's session ended */
    STORE_DEAD_REPLAY,     /* the dead letter (op.ref_seq, op.address) pending again as
                            * message op.seq with envelope op.data, deadline
                            * op.expires_at_ms, priority op.priority; the dead letter goes.
                            * Nothing happens when that dead letter is gone. */
    STORE_DEAD_PURGE,      /* forget dead letters that died before op.at_ms */
} store_op_kind_t;

typedef struct store_op {
    store_op_kind_t kind;
    uint64_t seq;  /* message sequence, or receipt id */
    char *address; /* MSG_PUT: sender; DELIVERY_SET: recipient; RECEIPT_PUT: owner.
                    * Owned by the op. */
    int state;     /* DELIVERY_SET: delivery_state_t */
    uint32_t attempt;
    int priority;  /* DELIVERY_SET: Envelope.Priority (used when first stored) */
    uint8_t *data; /* MSG_PUT: stamped envelope; RECEIPT_PUT: encoded frame; owned */
    size_t data_len;
    uint8_t message_id[16]; /* MSG_PUT: for the deduplication index */
    int body_case;          /* MSG_PUT: for the journal record (store_put_fn) */
    uint32_t n_to;          /* MSG_PUT: recipients, for the journal record */
    int64_t at_ms;          /* MSG_PUT: accepted at; DELIVERY_SET: when */
    int64_t expires_at_ms;  /* MSG_PUT, DEAD_REPLAY */
    uint64_t ref_seq;       /* DEAD_REPLAY: the dead letter's message sequence */
} store_op_t;

typedef struct store_batch {
    store_op_t *ops;
    size_t count, cap;
} store_batch_t;

/* Appends an operation; the batch takes ownership of op->address and op->data. Out of
 * memory aborts (xalloc.h): a batch is never half-built. */
void store_batch_add(store_batch_t *b, const store_op_t *op);

/* Frees every operation's data and empties the batch (keeps its capacity). */
void store_batch_clear(store_batch_t *b);

void store_batch_free(store_batch_t *b);

typedef struct store store_t;

/* Called on the loop thread when a commit finished: status 0, or RELAIS_ESTORE with a
 * reason, in which case none of the batch's operations took effect. */
/* What a commit found: the messages of the batch that were duplicates of ones accepted
 * before (their MSG_PUT and first DELIVERY_SETs were skipped). Valid during the callback. */
typedef struct store_result {
    int status;              /* 0, or RELAIS_ESTORE: nothing of the batch took effect */
    const char *reason;
    const uint64_t *dup_seqs; /* ascending */
    size_t ndups;
    uint64_t journal_ticket; /* what store_put_fn returned last for this batch (0: none) */
} store_result_t;

typedef void (*store_done_fn)(const store_result_t *result, void *ud);

/* One pending delivery read back from the store, with its message's stamped envelope. */
typedef struct store_row {
    uint64_t seq;
    const char *recipient;
    int state;
    uint32_t attempt;
    int priority;
    int64_t expires_at_ms;
    const uint8_t *envelope;
    size_t envelope_len;
    const char *claimed_by; /* pool delivery claimed by this member (OFFER), or NULL */
} store_row_t;

/* Row callbacks return 0 to go on, or an error that stops the query and is returned. */
typedef int (*store_row_fn)(void *ud, const store_row_t *row);
typedef int (*store_count_fn)(void *ud, const char *recipient, int priority, uint64_t count);
typedef int (*store_receipt_fn)(void *ud, uint64_t id, const char *address, const uint8_t *frame,
                                size_t len);

typedef struct store_vtable {
    const char *name;
    /* Takes every operation of *batch (leaving it empty), commits them atomically, then
     * calls done exactly once, possibly before returning. Returns 0, or an error and done
     * is not called (the operations are dropped). */
    int (*commit)(store_t *s, store_batch_t *batch, store_done_fn done, void *ud);
    /* Start-up, first: every pending delivery that may have been sent before the broker
     * stopped — those of addresses that had a session, and every pool's if any agent had
     * one (pools deliver to their members) — gets attempt + 1,
     * so that its next Deliver says a higher attempt than any that may have left; then the
     * sessions are forgotten. *bumped: how many deliveries. */
    int (*recover_attempts)(store_t *s, uint64_t *bumped);
    /* Bytes free inside the store (pages new messages can reuse). Loop thread. */
    int (*free_bytes)(store_t *s, uint64_t *bytes);
    /* Start-up: the highest message sequence and receipt id ever used. */
    int (*max_ids)(store_t *s, uint64_t *seq, uint64_t *receipt_id);
    /* Start-up: every receipt owed, in id order. */
    int (*receipts)(store_t *s, store_receipt_fn fn, void *ud);
    /* Start-up: how many deliveries are pending per recipient and priority. */
    int (*counts)(store_t *s, store_count_fn fn, void *ud);
    /* Up to limit pending deliveries of one recipient and priority with
     * after_seq < seq <= max_seq, in seq order. */
    int (*page)(store_t *s, const char *recipient, int priority, uint64_t after_seq,
                uint64_t max_seq, unsigned limit, store_row_fn fn, void *ud);
    /* Up to limit pending deliveries with seq <= max_seq whose message expired by now, the
     * earliest deadlines first. */
    int (*expired)(store_t *s, int64_t now, uint64_t max_seq, unsigned limit, store_row_fn fn,
                   void *ud);
    /* Whether address takes part in the conversation (committed participations only). */
    int (*participant)(store_t *s, const uint8_t *conversation, size_t len, const char *address,
                       bool *found);
    /* Whether the conversation is known (anyone takes part in it), and whether either
     * address (alt may be NULL) does (committed participations only). */
    int (*conversation)(store_t *s, const uint8_t *conversation, size_t len, const char *address,
                        const char *alt, bool *known, bool *member);
    /* Releases the store's loop handles so the loop can end. Called once, when no commit
     * is in flight, during shutdown; close() follows after the loop has ended. */
    void (*detach)(store_t *s);
    void (*close)(store_t *s);
} store_vtable_t;

/*
 * Called on the commit thread for each message of a batch once the store knows whether it
 * is new or a duplicate, before the transaction's COMMIT; and with committed false, after a
 * COMMIT that failed, for each message it had been called for. The broker journals the
 * outcome there, so that the journal's fdatasync runs while the store's does: an Accepted
 * waits for both (submit.c). Returns a position in the journal to wait for (0: none).
 */
typedef uint64_t (*store_put_fn)(void *ud, const store_op_t *op, bool duplicate, bool committed);

struct store {
    const store_vtable_t *vt;
    store_put_fn on_put; /* may be NULL; set before the first commit */
    void *on_put_ud;
};

typedef enum store_durability {
    STORE_DURABLE_FULL = 0, /* synchronous=FULL: a commit survives a power loss */
    STORE_DURABLE_OS = 1,   /* synchronous=NORMAL: survives a crash of the process only */
} store_durability_t;

struct reserve;
/*
 * Opens (creating or migrating) the SQLite store at path, in WAL mode, with its commit
 * thread; completions are delivered on loop. reserve (may be NULL): spent when a commit
 * meets a full disk (reserve.h). Returns 0, or RELAIS_ESTORE with the reason in reason.
 */
int store_sqlite_open(store_t **out, const char *path, store_durability_t durability,
                      struct reserve *reserve, uv_loop_t *loop, char *reason, size_t reason_len);

/* Closes any store and nulls *s. Accepts NULL. */
void store_close(store_t **s);

/* ---- Read queries for the admin surface (broker/admin), SQLite store only ------------- */
/* (store_sqlite_admin.c; store_sqlite__reader() gives it the reader connection, or NULL for
 * a store that is not SQLite.) */
struct sqlite3;
struct sqlite3 *store_sqlite__reader(store_t *st);
/* Each runs on the loop thread on the reader connection and returns 0, RELAIS_ESTORE, or
 * the error a callback returned. Metadata only: callers must never expose an envelope's
 * body; envelopes are handed over for their recipients and body type. */

/* When the oldest pending delivery of recipient was accepted (*at_ms 0 when none): two
 * look-ups on the mailbox queue's index, whatever the backlog. */
int store_sqlite_oldest_pending(store_t *s, const char *recipient, int64_t *at_ms);

/* Dead letters (expired or refused deliveries), newest first: seq < before_seq (0: no
 * bound), at most limit; and their total count. */
typedef struct store_dead_letter {
    uint64_t seq;
    const char *recipient;
    int state; /* DELIVERY_EXPIRED or DELIVERY_REFUSED */
    int64_t at_ms;
    const char *sender;
    const uint8_t *message_id;
    size_t message_id_len;
    const uint8_t *envelope;
    size_t envelope_len;
} store_dead_letter_t;
int store_sqlite_dead_letters(store_t *s, uint64_t before_seq, unsigned limit,
                              int (*fn)(void *ud, const store_dead_letter_t *row), void *ud);
int store_sqlite_dead_letter_count(store_t *s, uint64_t *count);
/* How many dead letters died before before_ms (what a purge would forget). */
int store_sqlite_dead_letter_count_before(store_t *s, int64_t before_ms, uint64_t *count);

/* Everything the store knows of the message(s) with this id: kind 'p' a pending delivery,
 * 'd' a dead letter, 'k' the deduplication key (the message was accepted, whatever became
 * of it). Fields a kind lacks are 0 or NULL. Not indexed by message id: a scan, for an
 * administrator's look-up, never for the hot path. */
typedef struct store_message_row {
    char kind;
    uint64_t seq;
    const char *sender;
    int64_t accepted_at_ms, expires_at_ms;
    const uint8_t *envelope;
    size_t envelope_len;
    const char *recipient;
    int state;
    uint32_t attempt;
    int64_t at_ms;
} store_message_row_t;
int store_sqlite_message(store_t *s, const uint8_t *message_id, size_t len,
                         int (*fn)(void *ud, const store_message_row_t *row), void *ud);

/* Pending deliveries whose message's deadline is at or before before_ms, the earliest
 * first, at most limit (rows of kind 'p'): the requests at risk. A range of the expiry
 * index. */
int store_sqlite_expiring(store_t *s, int64_t before_ms, unsigned limit,
                          int (*fn)(void *ud, const store_message_row_t *row), void *ud);

#endif /* RELAIS_BROKER_STORE_H */
