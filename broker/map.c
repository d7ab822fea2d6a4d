/*
 * Hash map implementation: open addressing, linear probing, tombstones on delete, growth at
 * 70 % load (tombstones included) so probes stay short.
 *
 * Keys are often chosen by agents (message ids, addresses, routing ids), so the hash is keyed:
 * SipHash-2-4 (libsodium's crypto_shorthash) under a random key drawn for each map. An agent
 * that cannot know the key cannot choose keys that all land in one probe chain (hash
 * flooding), which an unkeyed FNV-1a allowed.
 */
#include "map.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

typedef struct slot {
    uint64_t hash;
    void *key; /* NULL: empty; TOMBSTONE: deleted */
    size_t key_len;
    void *value;
} slot_t;

struct map {
    uint8_t seed[crypto_shorthash_KEYBYTES];
    slot_t *slots;
    size_t cap; /* power of two */
    size_t count;
    size_t used; /* live + tombstones */
};

static char tombstone_mark;
#define TOMBSTONE ((void *)&tombstone_mark)

static uint64_t hash_bytes(const map_t *m, const void *key, size_t len)
{
    uint8_t out[crypto_shorthash_BYTES];
    crypto_shorthash(out, key, len, m->seed);
    uint64_t h;
    memcpy(&h, out, sizeof(h));
    return h;
}

int map_new(map_t **out)
{
    if (sodium_init() < 0) return -ENOMEM; /* idempotent; fails only without entropy */
    map_t *m = calloc(1, sizeof(*m));
    if (m == NULL) return -ENOMEM;
    randombytes_buf(m->seed, sizeof(m->seed));
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof(slot_t));
    if (m->slots == NULL) {
        free(m);
        return -ENOMEM;
    }
    *out = m;
    return 0;
}

void map_destroy(map_t **mp)
{
    if (mp == NULL || *mp == NULL) return;
    map_t *m = *mp;
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE) free(m->slots[i].key);
    free(m->slots);
    free(m);
    *mp = NULL;
}

static slot_t *find(const map_t *m, const void *key, size_t len, uint64_t h)
{
    size_t mask = m->cap - 1;
    for (size_t i = h & mask;; i = (i + 1) & mask) {
        slot_t *s = &m->slots[i];
        if (s->key == NULL) return NULL;
        if (s->key != TOMBSTONE && s->hash == h && s->key_len == len &&
            memcmp(s->key, key, len) == 0)
            return s;
    }
}

static int grow(map_t *m)
{
    size_t ncap = m->count * 2 >= m->cap / 2 ? m->cap * 2 : m->cap;
    slot_t *ns = calloc(ncap, sizeof(slot_t));
    if (ns == NULL) return -ENOMEM;
    for (size_t i = 0; i < m->cap; i++) {
        slot_t *s = &m->slots[i];
        if (s->key == NULL || s->key == TOMBSTONE) continue;
        size_t j = s->hash & (ncap - 1);
        while (ns[j].key != NULL) j = (j + 1) & (ncap - 1);
        ns[j] = *s;
    }
    free(m->slots);
    m->slots = ns;
    m->cap = ncap;
    m->used = m->count;
    return 0;
}

void *map_get(const map_t *m, const void *key, size_t key_len)
{
    slot_t *s = find(m, key, key_len, hash_bytes(m, key, key_len));
    return s ? s->value : NULL;
}

int map_put(map_t *m, const void *key, size_t key_len, void *value)
{
    uint64_t h = hash_bytes(m, key, key_len);
    slot_t *s = find(m, key, key_len, h);
    if (s != NULL) {
        s->value = value;
        return 0;
    }
    if ((m->used + 1) * 10 >= m->cap * 7) {
        int rc = grow(m);
        if (rc < 0) return rc;
    }
    void *copy = malloc(key_len ? key_len : 1);
    if (copy == NULL) return -ENOMEM;
    memcpy(copy, key, key_len);
    size_t mask = m->cap - 1;
    size_t i = h & mask;
    while (m->slots[i].key != NULL && m->slots[i].key != TOMBSTONE) i = (i + 1) & mask;
    if (m->slots[i].key == NULL) m->used++;
    m->slots[i] = (slot_t){.hash = h, .key = copy, .key_len = key_len, .value = value};
    m->count++;
    return 0;
}

void *map_del(map_t *m, const void *key, size_t key_len)
{
    slot_t *s = find(m, key, key_len, hash_bytes(m, key, key_len));
    if (s == NULL) return NULL;
    void *v = s->value;
    free(s->key);
    s->key = TOMBSTONE;
    s->value = NULL;
    m->count--;
    return v;
}

size_t map_count(const map_t *m)
{
    return m->count;
}

size_t map_longest_probe(const map_t *m)
{
    size_t longest = 0, mask = m->cap - 1;
    for (size_t i = 0; i < m->cap; i++) {
        const slot_t *s = &m->slots[i];
        if (s->key == NULL || s->key == TOMBSTONE) continue;
        size_t d = (i - (size_t)(s->hash & mask)) & mask;
        if (d > longest) longest = d;
    }
    return longest;
}

void map_foreach(const map_t *m, void (*fn)(const void *, size_t, void *, void *), void *ud)
{
    for (size_t i = 0; i < m->cap; i++) {
        slot_t *s = &m->slots[i];
        if (s->key != NULL && s->key != TOMBSTONE) fn(s->key, s->key_len, s->value, ud);
    }
}
