/*
 * The broker's hash map: lookups, replacement, deletion, growth, and resistance to keys
 * chosen to collide. Agents choose message ids, addresses and routing ids; with an unkeyed
 * hash (FNV-1a, as before) an agent could compute keys that all fall into one probe chain
 * and make every look-up walk it (hash flooding).
 */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "map.h"

Test(map, stores_replaces_finds_and_deletes_across_growth)
{
    map_t *m;
    cr_assert_eq(map_new(&m), 0);
    char key[32];
    for (uintptr_t i = 1; i <= 5000; i++) {
        int n = snprintf(key, sizeof(key), "rpps:%011lu", (unsigned long)i);
        cr_assert_eq(map_put(m, key, (size_t)n, (void *)i), 0);
    }
    cr_expect_eq(map_count(m), 5000);
    for (uintptr_t i = 1; i <= 5000; i++) {
        int n = snprintf(key, sizeof(key), "rpps:%011lu", (unsigned long)i);
        cr_assert_eq((uintptr_t)map_get(m, key, (size_t)n), i);
    }
    cr_expect_eq((uintptr_t)map_put(m, "rpps:00000000001", 16, (void *)7), 0);
    cr_expect_eq((uintptr_t)map_get(m, "rpps:00000000001", 16), 7, "replaced");
    cr_expect_eq((uintptr_t)map_del(m, "rpps:00000000001", 16), 7);
    cr_expect_null(map_get(m, "rpps:00000000001", 16));
    cr_expect_eq(map_count(m), 4999);
    map_destroy(&m);
    cr_expect_null(m);
}

/* FNV-1a, the unkeyed hash an attacker could aim at. */
static uint64_t fnv1a(const void *key, size_t len)
{
    const unsigned char *p = key;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

Test(map, keys_chosen_to_collide_under_an_unkeyed_hash_do_not_form_one_long_chain)
{
    /* 1,000 message ids whose FNV-1a hashes agree on their low 14 bits: every one would
     * start its probe at the same slot of a table of up to 16,384 slots. */
    enum { N = 1000 };
    static uint8_t keys[N][16];
    size_t found = 0;
    uint8_t id[16] = {0};
    for (uint64_t i = 0; found < N; i++) {
        memcpy(id, &i, sizeof(i));
        if ((fnv1a(id, 16) & 0x3fff) == 0x1234) memcpy(keys[found++], id, 16);
    }
    map_t *m;
    cr_assert_eq(map_new(&m), 0);
    for (size_t i = 0; i < N; i++) cr_assert_eq(map_put(m, keys[i], 16, (void *)(i + 1)), 0);
    size_t longest = map_longest_probe(m);
    cr_expect_lt(longest, 64, "a keyed hash scatters them: the longest probe walks %zu slots",
                 longest);
    for (size_t i = 0; i < N; i++) cr_assert_eq((size_t)map_get(m, keys[i], 16), i + 1);
    map_destroy(&m);
}
