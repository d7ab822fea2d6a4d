/*
 * The in-memory store: commits complete at once and keep nothing. With it the broker's
 * queues live only in its own memory, so a restart loses what was queued; it exists so the
 * rest of the broker is written against the store interface from the start, and for tests
 * that need no disk. The batch helpers shared by every store live here too.
 */
#include <errno.h>
#include <stdlib.h>

#include "store.h"

int store_batch_add(store_batch_t *b, const store_op_t *op)
{
    if (b->count == b->cap) {
        size_t ncap = b->cap ? b->cap * 2 : 64;
        store_op_t *n = realloc(b->ops, ncap * sizeof(*n));
        if (n == NULL) {
            free(op->address);
            free(op->data);
            return -ENOMEM;
        }
        b->ops = n;
        b->cap = ncap;
    }
    b->ops[b->count++] = *op;
    return 0;
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

static int mem_commit(store_t *s, store_batch_t *batch, store_done_fn done, void *ud)
{
    (void)s;
    store_batch_free(batch);
    done(0, "", ud);
    return 0;
}

static int mem_load(store_t *s, const store_loader_t *loader)
{
    (void)s;
    (void)loader;
    return 0;
}

static void mem_detach(store_t *s)
{
    (void)s;
}

static void mem_close(store_t *s)
{
    free(s);
}

static const store_vtable_t mem_vtable = {.name = "memory", .commit = mem_commit,
                                          .load = mem_load, .detach = mem_detach,
                                          .close = mem_close};

int store_mem_open(store_t **out)
{
    store_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return -ENOMEM;
    s->vt = &mem_vtable;
    *out = s;
    return 0;
}

void store_close(store_t **s)
{
    if (s == NULL || *s == NULL) return;
    (*s)->vt->close(*s);
    *s = NULL;
}
