/*
 * A hash map from byte strings to pointers, for the broker's indexes: sessions by routing
 * id, mailboxes by address, deduplication keys, in-flight deliveries by message id.
 *
 * Open addressing with linear probing and tombstones; keys are copied into the map, values
 * are borrowed. Not thread-safe: each map belongs to the broker's loop thread.
 */
#ifndef RELAIS_BROKER_MAP_H
#define RELAIS_BROKER_MAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct map map_t;

/* Creates an empty map. 0 or -ENOMEM. */
int map_new(map_t **out);

/* Frees the map and its key copies (not the values). Accepts NULL; nulls *m. */
void map_destroy(map_t **m);

/* The value stored under key, or NULL. */
void *map_get(const map_t *m, const void *key, size_t key_len);

/* Stores value under key, replacing any previous value. 0 or -ENOMEM. */
int map_put(map_t *m, const void *key, size_t key_len, void *value);

/* Removes key; returns its value or NULL when absent. */
void *map_del(map_t *m, const void *key, size_t key_len);

size_t map_count(const map_t *m);

/* The longest distance of an entry from the slot its hash points to: how long the longest
 * look-up walks. For tests and diagnostics. */
size_t map_longest_probe(const map_t *m);

/* Calls fn for each entry; fn must not modify the map. */
void map_foreach(const map_t *m, void (*fn)(const void *key, size_t key_len, void *value, void *ud),
                 void *ud);

#endif /* RELAIS_BROKER_MAP_H */
