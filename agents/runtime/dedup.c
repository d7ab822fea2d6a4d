/*
 * The agent's dedup window: the last deliveries it handled, by (sender, message id).
 *
 * Delivery is at least once: after a lost Ack or a reconnect the broker delivers again,
 * and the handler must not act twice (book two appointments, send two offers). The window
 * is a ring of the most recent entries with a chained hash index over it; when the ring is
 * full the oldest entry is forgotten. Keys are compared in full: a hash collision must never
 * pass for a duplicate, or a message would be acknowledged without being handled.
 *
 * With a state file the window survives the agent's crash: each entry is committed to the
 * file before agent__dedup_remember() returns, and the session sends the Ack only after
 * that, so "the broker saw our Ack" implies "a restarted agent recognises the redelivery".
 * The converse leaves one window open: a crash after the handler returned and before the
 * commit loses the entry while the broker, with no Ack, redelivers — the handler then runs
 * a second time for that one message. The file keeps the same number of entries as the
 * ring; a new run loads the newest of them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

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
    uint8_t seed[crypto_shorthash_KEYBYTES];
    dedup_slot_t *slots;
    size_t capacity;
    size_t oldest;    /* the slot overwritten next */
    int32_t *buckets; /* slot index heads, -1 when empty */
    size_t nbuckets;  /* a power of two */
    agent_state_t *state;
};

/* SipHash (libsodium's crypto_shorthash) under this window's random key, over the sender, a
 * separator that cannot occur in an address, and the id: senders choose ids, and with an
 * unkeyed hash one could choose ids that all share a bucket (hash flooding). */
static uint32_t key_hash(const agent_dedup_t *d, const char *sender, const uint8_t *id,
                         size_t id_len)
{
    uint8_t buf[RELAIS_ADDRESS_MAX + 1 + RELAIS_MESSAGE_ID_LEN];
    size_t n = strnlen(sender, RELAIS_ADDRESS_MAX - 1);
    memcpy(buf, sender, n);
    buf[n++] = 0xff;
    if (id_len > RELAIS_MESSAGE_ID_LEN) id_len = RELAIS_MESSAGE_ID_LEN;
    memcpy(buf + n, id, id_len);
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, buf, n + id_len, d->seed);
    uint32_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

static int remember_in_memory(agent_dedup_t *dedup, const char *sender, const uint8_t *id,
                              size_t id_len, relais_outcome_t outcome);

static int load_one(void *ud, const char *sender, const uint8_t *id, size_t id_len, int outcome)
{
    /* A row that cannot be a delivery's key is skipped rather than trusted. */
    if (id_len == 0 || id_len > RELAIS_MESSAGE_ID_LEN ||
        (outcome != RELAIS_PROCESSED && outcome != RELAIS_REFUSED))
        return 0;
    return remember_in_memory(ud, sender, id, id_len, (relais_outcome_t)outcome);
}

int agent__dedup_new(agent_dedup_t **out, size_t capacity, agent_state_t *state)
{
    if (capacity == 0 || capacity > INT32_MAX / 4) return -EINVAL;
    if (sodium_init() < 0) return -ENOMEM;
    agent_dedup_t *d = calloc(1, sizeof(*d));
    if (!d) return -ENOMEM;
    randombytes_buf(d->seed, sizeof(d->seed));
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
    if (state) {
        int rc = agent__state_dedup_load(state, capacity, load_one, d);
        if (rc != 0) {
            agent__dedup_destroy(&d);
            return rc;
        }
        d->state = state;
    }
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
    int32_t i = find(dedup, key_hash(dedup, sender, id, id_len), sender, id, id_len);
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
    int rc = remember_in_memory(dedup, sender, id, id_len, outcome);
    if (rc == 0 && dedup->state)
        rc = agent__state_dedup_insert(dedup->state, sender, id, id_len, (int)outcome,
                                       dedup->capacity);
    return rc;
}

static int remember_in_memory(agent_dedup_t *dedup, const char *sender, const uint8_t *id,
                              size_t id_len, relais_outcome_t outcome)
{
    uint32_t h = key_hash(dedup, sender, id, id_len);
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
