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

typedef enum store_op_kind {
    STORE_MSG_PUT = 1,   /* a message accepted, with its recipients */
    STORE_MSG_DEL,       /* every delivery of a message is final: drop its body */
    STORE_DELIVERY_SET,  /* one delivery's new state and attempt */
    STORE_RECEIPT_PUT,   /* a receipt owed to a sender */
    STORE_RECEIPT_DEL,   /* a receipt acknowledged */
} store_op_kind_t;

typedef struct store_op {
    store_op_kind_t kind;
    uint64_t seq;        /* message sequence, or receipt id */
    char *address;       /* recipient (DELIVERY_SET) or receipt owner (RECEIPT_PUT); owned */
    int state;           /* DELIVERY_SET: delivery_state_t */
    uint32_t attempt;
    uint8_t *data;       /* MSG_PUT: stamped envelope; RECEIPT_PUT: encoded frame; owned */
    size_t data_len;
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

typedef struct store_vtable {
    const char *name;
    /* Takes every operation of *batch (leaving it empty), commits them atomically, then
     * calls done exactly once, possibly before returning. Returns 0, or an error and done
     * is not called (the operations are dropped). */
    int (*commit)(store_t *s, store_batch_t *batch, store_done_fn done, void *ud);
    void (*close)(store_t *s);
} store_vtable_t;

struct store {
    const store_vtable_t *vt;
};

/* Opens the in-memory store. 0 or -ENOMEM. */
int store_mem_open(store_t **out);

/* Closes any store and nulls *s. Accepts NULL. */
void store_close(store_t **s);

#endif /* RELAIS_BROKER_STORE_H */
