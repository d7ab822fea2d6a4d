/*
 * Fuzz target: relais_frame_decode(), the first code every byte from the network meets.
 *
 * Beyond surviving any input, it checks what the codec promises: the size limit is applied
 * before parsing; a failure leaves no frame, returns RELAIS_EBADFRAME and a reason that fits
 * whatever buffer the caller gave (a short one truncates the same sentence); a decoded frame
 * has a known kind, encodes with relais_frame_encode(), decodes again to the same kind, and
 * that second encoding is byte for byte the first (the broker may decode and re-encode what
 * it forwards, so encoding must be stable). The envelope of a Submit or a Deliver is put
 * through relais_envelope_validate(), as the broker and the SDK do with what they receive.
 */
#include "fuzz.h"

#define LIMIT RELAIS_DEFAULT_MAX_FRAME_BYTES

/* A failed decode: same verdict with a truncated reason buffer and with none at all. */
static void check_failure(const uint8_t *data, size_t size, int rc, const char *reason)
{
    FUZZ_CHECKF(rc == RELAIS_EBADFRAME || (rc == RELAIS_ETOOLARGE && size > LIMIT), "rc %d", rc);
    FUZZ_CHECK(reason[0] != '\0');

    char small[8];
    size_t cap = 1 + size % sizeof small;
    memset(small, 'x', sizeof small);
    Relais__V1__Frame *frame = NULL;
    FUZZ_CHECK(relais_frame_decode(data, size, LIMIT, &frame, small, cap) == rc);
    FUZZ_CHECK(frame == NULL);
    FUZZ_CHECK(fuzz_terminated(small, cap));
    FUZZ_CHECKF(strncmp(small, reason, cap - 1) == 0, "'%s' is not a prefix of '%s'", small,
                reason);
    FUZZ_CHECK(relais_frame_decode(data, size, LIMIT, &frame, NULL, 0) == rc);
    FUZZ_CHECK(frame == NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char reason[RELAIS_REASON_MAX];
    Relais__V1__Frame *frame = NULL;
    int rc;

    /* One byte over the limit is refused before any parsing, whatever the bytes are. */
    if (size > 0) {
        rc = relais_frame_decode(data, size, size - 1, &frame, reason, sizeof reason);
        FUZZ_CHECKF(rc == RELAIS_ETOOLARGE, "rc %d", rc);
        FUZZ_CHECK(frame == NULL && reason[0] != '\0');
    }

    memset(reason, 'x', sizeof reason);
    rc = relais_frame_decode(data, size, LIMIT, &frame, reason, sizeof reason);
    FUZZ_CHECK(fuzz_terminated(reason, sizeof reason));
    if (rc != 0) {
        FUZZ_CHECK(frame == NULL);
        check_failure(data, size, rc, reason);
        return 0;
    }
    FUZZ_CHECK(frame != NULL && reason[0] == '\0');
    int kind = (int)frame->kind_case;
    FUZZ_CHECK(kind != RELAIS__V1__FRAME__KIND__NOT_SET);
    FUZZ_CHECK(strcmp(relais_frame_kind_name(kind), "unknown") != 0);

    /* Encode, decode, encode: the two encodings must be the same bytes. */
    uint8_t *first = NULL, *second = NULL;
    size_t first_len = 0, second_len = 0;
    rc = relais_frame_encode(frame, &first, &first_len);
    FUZZ_CHECKF(rc == 0, "encoding a decoded %s frame: rc %d", relais_frame_kind_name(kind), rc);
    Relais__V1__Frame *again = NULL;
    rc = relais_frame_decode(first, first_len, LIMIT, &again, reason, sizeof reason);
    FUZZ_CHECKF(rc == 0, "re-decoding a %s frame: %s", relais_frame_kind_name(kind), reason);
    FUZZ_CHECK((int)again->kind_case == kind);
    FUZZ_CHECK(relais_frame_encode(again, &second, &second_len) == 0);
    FUZZ_CHECKF(first_len == second_len && memcmp(first, second, first_len) == 0,
                "%s frame: encoding not stable (%zu then %zu bytes)", relais_frame_kind_name(kind),
                first_len, second_len);

    const Relais__V1__Envelope *env = NULL;
    if (kind == RELAIS__V1__FRAME__KIND_SUBMIT) env = frame->submit->envelope;
    if (kind == RELAIS__V1__FRAME__KIND_DELIVER) env = frame->deliver->envelope;
    if (kind == RELAIS__V1__FRAME__KIND_SUBMIT || kind == RELAIS__V1__FRAME__KIND_DELIVER) {
        char why[RELAIS_REASON_MAX];
        if (env == NULL) {
            FUZZ_CHECK(relais_envelope_validate(env, FUZZ_NOW_MS, 0, why, sizeof why) ==
                       RELAIS_EINVALID);
        } else {
            fuzz_check_validate(env, why, sizeof why);
        }
    }

    free(first);
    free(second);
    relais_frame_free(&again);
    relais_frame_free(&frame);
    FUZZ_CHECK(frame == NULL);
    return 0;
}
