/*
 * The agent's dedup window: the last deliveries it handled, by (sender, message id).
 *
 * Delivery is at least once: after a lost Ack or a reconnect the broker delivers again,
 * and the handler must not act twice (book two appointments, send two offers). The window
 * is a ring of the most recent entries with a chained hash index over it; when the ring is
 * full the oldest entry is forgotten. Keys are compared in full: a hash collision must never
 * pass for a duplicate, or a message would be acknowledged without being handled. A later
 * change persists the window next to the outbox.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"

typedef struct dedup_slot {
    char *sender; /* NULL: slot unused */
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    uint8_t id_len;
    uint8_t outcome;
    uint32_t hash;
    int32_t next; /* next slot in the same bucket, -1 at the end */
} dedup_slot_t;

struct agent_dedup {
    dedup_slot_t *slots;
    size_t capacity;
    size_t oldest;    /* the slot overwritten next */
    int32_t *buckets; /* slot index heads, -1 when empty */
    size_t nbuckets;  /* a power of two */
};

/* FNV-1a over the sender, a separator that cannot occur in an address, and the id. */
static uint32_t key_hash(const char *sender, const uint8_t *id, size_t id_len)
{
    uint32_t h = 2166136261u;
    for (const char *p = sender; *p; p++) h = (h ^ (uint8_t)*p) * 16777619u;
    h = (h ^ 0xffu) * 16777619u;
    for (size_t i = 0; i < id_len; i++) h = (h ^ id[i]) * 16777619u;
    return h;
}

int agent__dedup_new(agent_dedup_t **out, size_t capacity)
{
    if (capacity == 0 || capacity > INT32_MAX / 4) return -EINVAL;
    agent_dedup_t *d = calloc(1, sizeof(*d));
    if (!d) return -ENOMEM;
    d->capacity = capacity;
    d->nbuckets = 1;
    while (d->nbuckets < capacity * 2) d->nbuckets <<= 1;
    d->slots = calloc(capacity, sizeof(*d->slots));
    d->buckets = malloc(d->nbuckets * sizeof(*d->buckets));
    if (!d->slots || !d->buckets) {
        free(d->slots);
        free(d->buckets);
        free(d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->nbuckets; i++) d->buckets[i] = -1;
    *out = d;
    return 0;
}

void agent__dedup_destroy(agent_dedup_t **dedup)
{
    if (!dedup || !*dedup) return;
    agent_dedup_t *d = *dedup;
    for (size_t i = 0; i < d->capacity; i++) free(d->slots[i].sender);
    free(d->slots);
    free(d->buckets);
    free(d);
    *dedup = NULL;
}

static int32_t find(const agent_dedup_t *d, uint32_t h, const char *sender, const uint8_t *id,
                    size_t id_len)
{
    for (int32_t i = d->buckets[h & (d->nbuckets - 1)]; i >= 0; i = d->slots[i].next) {
        const dedup_slot_t *s = &d->slots[i];
        if (s->hash == h && s->id_len == id_len && memcmp(s->id, id, id_len) == 0 &&
            strcmp(s->sender, sender) == 0)
            return i;
    }
    return -1;
}

bool agent__dedup_seen(const agent_dedup_t *dedup, const char *sender, const uint8_t *id,
                       size_t id_len, relais_outcome_t *outcome)
{
    if (id_len > RELAIS_MESSAGE_ID_LEN) return false;
    int32_t i = find(dedup, key_hash(sender, id, id_len), sender, id, id_len);
    if (i < 0) return false;
    if (outcome) *outcome = (relais_outcome_t)dedup->slots[i].outcome;
    return true;
}

/* Removes slot i from its bucket chain before it is reused. */
static void unlink_slot(agent_dedup_t *d, int32_t i)
{
    int32_t *link = &d->buckets[d->slots[i].hash & (d->nbuckets - 1)];
    while (*link != i) link = &d->slots[*link].next;
    *link = d->slots[i].next;
}

int agent__dedup_remember(agent_dedup_t *dedup, const char *sender, const uint8_t *id,
                          size_t id_len, relais_outcome_t outcome)
{
    if (id_len > RELAIS_MESSAGE_ID_LEN) return 0;
    uint32_t h = key_hash(sender, id, id_len);
    int32_t existing = find(dedup, h, sender, id, id_len);
    if (existing >= 0) {
        dedup->slots[existing].outcome = (uint8_t)outcome;
        return 0;
    }
    char *copy = strdup(sender);
    if (!copy) return -ENOMEM;
    int32_t i = (int32_t)dedup->oldest;
    dedup_slot_t *s = &dedup->slots[i];
    if (s->sender) {
        unlink_slot(dedup, i);
        free(s->sender);
    }
    s->sender = copy;
    memcpy(s->id, id, id_len);
    s->id_len = (uint8_t)id_len;
    s->outcome = (uint8_t)outcome;
    s->hash = h;
    int32_t *head = &dedup->buckets[h & (dedup->nbuckets - 1)];
    s->next = *head;
    *head = i;
    dedup->oldest = (dedup->oldest + 1) % dedup->capacity;
    return 0;
}
