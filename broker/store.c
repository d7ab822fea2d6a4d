/*
 * What every store implementation shares: the batch of operations a loop turn gathers, and
 * closing a store whatever its kind.
 */
#include <errno.h>
#include <stdlib.h>

#include "store.h"
#include "xalloc.h"

void store_batch_add(store_batch_t *b, const store_op_t *op)
{
    if (b->count == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        b->ops = xrealloc(b->ops, ncap * sizeof(*b->ops));
        b->cap = ncap;
    }
    b->ops[b->count++] = *op;
}

void store_batch_clear(store_batch_t *b)
{
    for (size_t i = 0; i < b->count; i++) {
        free(b->ops[i].address);
        free(b->ops[i].data);
    }
    b->count = 0;
}

void store_batch_free(store_batch_t *b)
{
    store_batch_clear(b);
    free(b->ops);
    b->ops = NULL;
    b->cap = 0;
}

void store_close(store_t **s)
{
    if (s == NULL || *s == NULL) return;
    (*s)->vt->close(*s);
    *s = NULL;
}
