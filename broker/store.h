/*
 * The store interface: where the broker makes its state durable.
 *
 * The broker keeps its working indexes (mailboxes, queues, sessions) in memory and records
 * every change that must survive it — a message accepted, a delivery's state transition, a
 * receipt owed to a sender — as an operation in a batch. All operations gathered in one
 * loop turn are committed together (group commit); the broker sends Accepted only from the
 * batch's completion callback, so Accepted always means "committed by the store".
 *
 * Implementations: store_mem.c (nothing survives the process; the first build-out) and,
 * next, SQLite in WAL mode. The broker never assumes which one it has.
 */
#ifndef RELAIS_BROKER_STORE_H
#define RELAIS_BROKER_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

typedef enum store_op_kind {
    STORE_MSG_PUT = 1,   /* a message accepted, with its recipients */
    STORE_MSG_DEL,       /* every delivery of a message is final: drop its body */
    STORE_DELIVERY_SET,  /* one delivery's new state and attempt */
    STORE_RECEIPT_PUT,   /* a receipt owed to a sender */
    STORE_RECEIPT_DEL,   /* a receipt acknowledged */
    STORE_DEDUP_PRUNE,   /* forget deduplication keys accepted before at_ms */
} store_op_kind_t;

typedef struct store_op {
    store_op_kind_t kind;
    uint64_t seq;        /* message sequence, or receipt id */
    char *address;       /* MSG_PUT: sender; DELIVERY_SET: recipient; RECEIPT_PUT: owner.
                          * Owned by the op. */
    int state;           /* DELIVERY_SET: delivery_state_t */
    uint32_t attempt;
    uint8_t *data;       /* MSG_PUT: stamped envelope; RECEIPT_PUT: encoded frame; owned */
    size_t data_len;
    uint8_t message_id[16]; /* MSG_PUT: for the deduplication index */
    int64_t at_ms;       /* MSG_PUT: accepted at; DELIVERY_SET: when */
    int64_t expires_at_ms; /* MSG_PUT */
} store_op_t;

typedef struct store_batch {
    store_op_t *ops;
    size_t count, cap;
} store_batch_t;

/* Appends an operation; the batch takes ownership of op->address and op->data (also on
 * failure, where they are freed). 0 or -ENOMEM. */
int store_batch_add(store_batch_t *b, const store_op_t *op);

/* Frees every operation's data and empties the batch (keeps its capacity). */
void store_batch_clear(store_batch_t *b);

void store_batch_free(store_batch_t *b);

typedef struct store store_t;

/* Called on the loop thread when a commit finished: status 0, or RELAIS_ESTORE with a
 * reason, in which case none of the batch's operations took effect. */
typedef void (*store_done_fn)(int status, const char *reason, void *ud);

/* What a store hands back at start-up, in this order: every message still owed to someone
 * (ascending seq), then each of their deliveries, then receipts, then deduplication keys.
 * Each callback returns 0, or an error that stops the load. */
typedef struct store_loader {
    int (*message)(void *ud, uint64_t seq, const uint8_t *envelope, size_t len);
    int (*delivery)(void *ud, uint64_t seq, const char *recipient, int state, uint32_t attempt);
    int (*receipt)(void *ud, uint64_t id, const char *address, const uint8_t *frame, size_t len);
    int (*dedup)(void *ud, const char *sender, const uint8_t *message_id, uint64_t seq,
                 int64_t accepted_at_ms);
    void *ud;
} store_loader_t;

typedef struct store_vtable {
    const char *name;
    /* Takes every operation of *batch (leaving it empty), commits them atomically, then
     * calls done exactly once, possibly before returning. Returns 0, or an error and done
     * is not called (the operations are dropped). */
    int (*commit)(store_t *s, store_batch_t *batch, store_done_fn done, void *ud);
    /* Replays the stored state through the loader (start-up only, before any commit). */
    int (*load)(store_t *s, const store_loader_t *loader);
    /* Releases the store's loop handles so the loop can end. Called once, when no commit
     * is in flight, during shutdown; close() follows after the loop has ended. */
    void (*detach)(store_t *s);
    void (*close)(store_t *s);
} store_vtable_t;

struct store {
    const store_vtable_t *vt;
};

/* Opens the in-memory store. 0 or -ENOMEM. */
int store_mem_open(store_t **out);

typedef enum store_durability {
    STORE_DURABLE_FULL = 0, /* synchronous=FULL: a commit survives a power loss */
    STORE_DURABLE_OS = 1,   /* synchronous=NORMAL: survives a crash of the process only */
} store_durability_t;

/*
 * Opens (creating or migrating) the SQLite store at path, in WAL mode, with its commit
 * thread; completions are delivered on loop. Returns 0, or RELAIS_ESTORE with the reason
 * written to reason.
 */
int store_sqlite_open(store_t **out, const char *path, store_durability_t durability,
                      uv_loop_t *loop, char *reason, size_t reason_len);

/* Closes any store and nulls *s. Accepts NULL. */
void store_close(store_t **s);

#endif /* RELAIS_BROKER_STORE_H */
