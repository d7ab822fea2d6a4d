/*
 * Unit tests of message identifiers (UUIDv7 layout, uniqueness under concurrency), their
 * formatting for logs, and the wall clock.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "relais/codec.h"

#define THREADS 8
#define PER_THREAD 20000

static uint64_t timestamp_of(const uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    uint64_t ms = 0;
    for (int i = 0; i < 6; i++) ms = (ms << 8) | id[i];
    return ms;
}

Test(uuid, has_version_7_variant_10_and_the_current_millisecond)
{
    for (int i = 0; i < 1000; i++) {
        uint8_t id[RELAIS_MESSAGE_ID_LEN];
        int64_t before = relais_now_ms();
        cr_assert_eq(relais_uuid7(id), 0);
        int64_t after = relais_now_ms();
        cr_assert_eq(id[6] >> 4, 7, "version nibble");
        cr_assert_eq(id[8] >> 6, 2, "variant bits 10");
        cr_assert_geq(timestamp_of(id), (uint64_t)before);
        cr_assert_leq(timestamp_of(id), (uint64_t)after);
    }
}

struct batch {
    uint8_t (*ids)[RELAIS_MESSAGE_ID_LEN];
    int rc;
};

static void *generate(void *arg)
{
    struct batch *b = arg;
    for (int i = 0; i < PER_THREAD && b->rc == 0; i++) b->rc = relais_uuid7(b->ids[i]);
    return NULL;
}

static int compare_ids(const void *a, const void *b)
{
    return memcmp(a, b, RELAIS_MESSAGE_ID_LEN);
}

Test(uuid, is_unique_across_threads_within_the_same_millisecond)
{
    uint8_t(*ids)[RELAIS_MESSAGE_ID_LEN] = calloc(THREADS * PER_THREAD, RELAIS_MESSAGE_ID_LEN);
    cr_assert_not_null(ids);
    pthread_t threads[THREADS];
    struct batch batches[THREADS];
    for (int t = 0; t < THREADS; t++) {
        batches[t] = (struct batch){ids + t * PER_THREAD, 0};
        cr_assert_eq(pthread_create(&threads[t], NULL, generate, &batches[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(threads[t], NULL);
        cr_assert_eq(batches[t].rc, 0);
    }
    qsort(ids, THREADS * PER_THREAD, RELAIS_MESSAGE_ID_LEN, compare_ids);
    size_t same_ms = 0;
    for (size_t i = 1; i < THREADS * PER_THREAD; i++) {
        cr_assert_neq(memcmp(ids[i - 1], ids[i], RELAIS_MESSAGE_ID_LEN), 0, "duplicate id");
        if (timestamp_of(ids[i - 1]) == timestamp_of(ids[i])) same_ms++;
    }
    cr_expect_gt(same_ms, 1000, "the test did draw many ids in the same millisecond");
    free(ids);
}

Test(uuid, formats_a_message_id_as_a_canonical_uuid)
{
    static const uint8_t id[16] = {0x01, 0x8f, 0x3c, 0x2a, 0x7b, 0x10, 0x7a, 0xbc,
                                   0x8d, 0xef, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab};
    char out[37];
    cr_expect_str_eq(relais_id_format(id, sizeof id, out), "018f3c2a-7b10-7abc-8def-0123456789ab");
    cr_expect_eq(relais_id_format(id, sizeof id, out), out, "returns out");
}

Test(uuid, formats_other_identifiers_as_hex_that_fits)
{
    uint8_t bytes[40];
    for (size_t i = 0; i < sizeof bytes; i++) bytes[i] = (uint8_t)(0xa0 + i);
    char out[37];
    cr_expect_str_eq(relais_id_format(bytes, 3, out), "a0a1a2");
    cr_expect_str_eq(relais_id_format(bytes, 18, out), "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1");
    cr_expect_str_eq(relais_id_format(bytes, 19, out), "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0..");
    cr_expect_str_eq(relais_id_format(bytes, 40, out), "a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0..");
    cr_expect_eq(strlen(relais_id_format(bytes, 40, out)), 36);
}

Test(uuid, formats_an_empty_identifier_as_a_dash)
{
    char out[37];
    cr_expect_str_eq(relais_id_format(NULL, 0, out), "-");
    cr_expect_str_eq(relais_id_format((const uint8_t *)"x", 0, out), "-");
    cr_expect_str_eq(relais_id_format(NULL, 16, out), "-");
}

Test(uuid, reads_the_wall_clock_in_milliseconds)
{
    int64_t before = (int64_t)time(NULL) * 1000;
    int64_t now = relais_now_ms();
    int64_t after = ((int64_t)time(NULL) + 1) * 1000;
    cr_expect_geq(now, before);
    cr_expect_lt(now, after);
}
