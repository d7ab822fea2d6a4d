/*
 * What the fuzz targets of tests/fuzz share: the libFuzzer entry point and the check that
 * turns a broken invariant into a crash.
 *
 * A fuzz target proves more than "no sanitizer report": each one states properties of the
 * code under test (a decoded frame encodes and decodes again to the same bytes, a stamped
 * envelope decodes with the stamped sender, …) and FUZZ_CHECK aborts when one does not hold,
 * which libFuzzer records as a crash with the input that caused it. assert() would vanish
 * in builds with NDEBUG, and these targets also run as corpus replays in those builds.
 */
#ifndef RELAIS_FUZZ_H
#define RELAIS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relais/codec.h"

/* The entry point libFuzzer calls for each input; replay.c calls it for each corpus file. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Like FUZZ_CHECK, with a printf-formatted explanation (the reason a codec wrote, say). */
#define FUZZ_CHECKF(cond, ...)                                                                     \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant broken: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* True when buf, of cap bytes, holds a NUL: a string written into it did not overrun it. */
static inline int fuzz_terminated(const char *buf, size_t cap)
{
    return memchr(buf, '\0', cap) != NULL;
}

/* The fixed clock of the targets: an input must behave the same on every run. */
#define FUZZ_NOW_MS INT64_C(1700000000000)

/*
 * Validates env as the broker does and checks that the verdict is consistent with the
 * rules of relais_envelope_validate(): only the documented codes, a reason exactly when it
 * fails, and what success promises (16-byte id, 1..64 valid recipients, a body) holds.
 * Returns the code, which is written into reason as well for comparisons.
 */
static inline int fuzz_check_validate(const Relais__V1__Envelope *env, char *reason,
                                      size_t reason_len)
{
    int rc = relais_envelope_validate(env, FUZZ_NOW_MS, 0, reason, reason_len);
    FUZZ_CHECK(fuzz_terminated(reason, reason_len));
    FUZZ_CHECKF(rc == 0 || rc == RELAIS_EINVALID || rc == RELAIS_EEXPIRED, "rc %d", rc);
    FUZZ_CHECKF((rc == 0) == (reason[0] == '\0'), "rc %d reason '%s'", rc, reason);
    if (rc == RELAIS_EEXPIRED) {
        FUZZ_CHECK(env->expires_at_ms != 0 && env->expires_at_ms <= FUZZ_NOW_MS);
    }
    if (rc != 0) return rc;

    FUZZ_CHECK(env->message_id.len == RELAIS_MESSAGE_ID_LEN);
    FUZZ_CHECK(env->n_to >= 1 && env->n_to <= RELAIS_MAX_RECIPIENTS);
    for (size_t i = 0; i < env->n_to; i++) {
        FUZZ_CHECKF(relais_address_valid(env->to[i]), "to[%zu] '%s'", i, env->to[i]);
    }
    FUZZ_CHECK(env->body_case != RELAIS__V1__ENVELOPE__BODY__NOT_SET);
    FUZZ_CHECK(strcmp(relais_body_name(env->body_case), "unknown") != 0);
    FUZZ_CHECK(relais_body_from_name(relais_body_name(env->body_case)) == (int)env->body_case);
    FUZZ_CHECK(env->expires_at_ms == 0 || env->expires_at_ms > FUZZ_NOW_MS);
    /* The recipient limit is enforced: one fewer allowed than present must fail. */
    if (env->n_to > 1) {
        char why[RELAIS_REASON_MAX];
        FUZZ_CHECK(relais_envelope_validate(env, FUZZ_NOW_MS, (unsigned)env->n_to - 1, why,
                                            sizeof why) == RELAIS_EINVALID);
    }
    return 0;
}

#endif /* RELAIS_FUZZ_H */
