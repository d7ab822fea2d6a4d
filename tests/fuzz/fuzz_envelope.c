/*
 * Fuzz target: the broker's path for a submitted envelope, from its serialized bytes.
 *
 * The input is a serialized relais.v1.Envelope. When protobuf-c unpacks it, the target runs
 * what the broker runs: relais_envelope_validate(), then relais_envelope_stamp() on the
 * original bytes, then relais_deliver_wrap() around the stamped bytes. The two hand encoders
 * never decode what they copy, so the properties checked are the ones that matter for
 * bytes no one has looked at:
 *   - stamping appends and keeps the input as its prefix; the result always unpacks, with
 *     exactly the stamped sender and accepted_at_ms, and every other field as it was
 *     (the repacked envelopes are identical once those two are set back);
 *   - validation does not depend on the two stamped fields (same code, same reason);
 *   - the wrapped Deliver unpacks with the attempt, the offer flag and the stamped sender,
 *     and relais_frame_decode() gives it the same verdict as a Submit of the same envelope
 *     re-encoded by protobuf-c, as the broker re-encodes what it stores.
 * The sender, accepted_at_ms and attempt are derived from the input so that the fuzzer
 * reaches the long and negative values too (a negative int64 is a 10-byte varint).
 */
#include "fuzz.h"

#define LIMIT RELAIS_DEFAULT_MAX_FRAME_BYTES

/* Senders the broker could stamp: empty, each scheme, and the longest address allowed. */
static const char *pick_sender(size_t which)
{
    static char longest[RELAIS_ADDRESS_MAX];
    static const char *const fixed[] = {
        "",
        "rpps:10101234567",
        "finess:2A0000017",
        "staff:m.durand@cabinet-saint-malo",
        "service:nurse/wound-care@cpts-rennes-nord",
        "app:dossier-patient",
    };
    size_t n = sizeof fixed / sizeof fixed[0];
    if (which % (n + 1) < n) return fixed[which % (n + 1)];
    if (longest[0] == '\0') {
        memcpy(longest, "app:", 4);
        memset(longest + 4, 'a', sizeof longest - 5);
        longest[sizeof longest - 1] = '\0';
    }
    return longest;
}

/* Packs env into a new buffer; the caller frees it. */
static uint8_t *pack(const Relais__V1__Envelope *env, size_t *len)
{
    *len = relais__v1__envelope__get_packed_size(env);
    uint8_t *buf = malloc(*len ? *len : 1);
    FUZZ_CHECK(buf != NULL);
    FUZZ_CHECK(relais__v1__envelope__pack(env, buf) == *len);
    return buf;
}

/* stamped must be original with sender and accepted_at_ms replaced, and nothing else. */
static void check_same_but_stamped(const Relais__V1__Envelope *original,
                                   Relais__V1__Envelope *stamped, const char *sender,
                                   int64_t accepted_at_ms)
{
    FUZZ_CHECKF(strcmp(stamped->sender, sender) == 0, "sender '%s', stamped '%s'", stamped->sender,
                sender);
    FUZZ_CHECK(stamped->accepted_at_ms == accepted_at_ms);

    char *stamped_sender = stamped->sender;
    stamped->sender = original->sender;
    stamped->accepted_at_ms = original->accepted_at_ms;
    size_t a_len, b_len;
    uint8_t *a = pack(original, &a_len);
    uint8_t *b = pack(stamped, &b_len);
    stamped->sender = stamped_sender;
    stamped->accepted_at_ms = accepted_at_ms;
    FUZZ_CHECKF(a_len == b_len && memcmp(a, b, a_len) == 0,
                "stamping changed more than sender and accepted_at_ms (%zu vs %zu bytes)", a_len,
                b_len);
    free(a);
    free(b);
}

/* relais_frame_decode()'s verdict on a Submit frame that protobuf-c encodes around env. */
static int decode_as_submit(Relais__V1__Envelope *env)
{
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    Relais__V1__Submit submit = RELAIS__V1__SUBMIT__INIT;
    submit.envelope = env;
    frame.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    frame.submit = &submit;
    uint8_t *buf = NULL;
    size_t len = 0;
    FUZZ_CHECK(relais_frame_encode(&frame, &buf, &len) == 0);
    Relais__V1__Frame *decoded = NULL;
    int rc = relais_frame_decode(buf, len, LIMIT, &decoded, NULL, 0);
    relais_frame_free(&decoded);
    free(buf);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Relais__V1__Envelope *env = relais__v1__envelope__unpack(NULL, size, data);
    if (env == NULL) return 0;

    char reason[RELAIS_REASON_MAX];
    int verdict = fuzz_check_validate(env, reason, sizeof reason);

    const char *sender = pick_sender(size);
    int64_t accepted_at_ms = (int64_t)((uint64_t)env->expires_at_ms - (uint64_t)env->created_at_ms);
    uint32_t attempt = (uint32_t)env->created_at_ms;
    bool offered = env->dispatch == RELAIS__V1__ENVELOPE__DISPATCH__OFFER;

    uint8_t *stamped = NULL;
    size_t stamped_len = 0;
    FUZZ_CHECK(relais_envelope_stamp(data, size, sender, accepted_at_ms, &stamped, &stamped_len) ==
               0);
    FUZZ_CHECK(stamped_len > size && (size == 0 || memcmp(stamped, data, size) == 0));
    Relais__V1__Envelope *restamped = relais__v1__envelope__unpack(NULL, stamped_len, stamped);
    FUZZ_CHECKF(restamped != NULL, "a stamped envelope (%zu bytes) does not unpack", stamped_len);
    check_same_but_stamped(env, restamped, sender, accepted_at_ms);

    char why[RELAIS_REASON_MAX];
    FUZZ_CHECK(fuzz_check_validate(restamped, why, sizeof why) == verdict);
    FUZZ_CHECKF(strcmp(why, reason) == 0, "'%s' then '%s'", reason, why);

    uint8_t *wrapped = NULL;
    size_t wrapped_len = 0;
    FUZZ_CHECK(
        relais_deliver_wrap(stamped, stamped_len, attempt, offered, &wrapped, &wrapped_len) == 0);
    Relais__V1__Frame *frame = relais__v1__frame__unpack(NULL, wrapped_len, wrapped);
    FUZZ_CHECKF(frame != NULL, "a wrapped Deliver (%zu bytes) does not unpack", wrapped_len);
    FUZZ_CHECK(frame->kind_case == RELAIS__V1__FRAME__KIND_DELIVER);
    FUZZ_CHECK(frame->deliver->attempt == attempt);
    FUZZ_CHECK(frame->deliver->offered == offered);
    FUZZ_CHECK(frame->deliver->envelope != NULL);
    FUZZ_CHECK(strcmp(frame->deliver->envelope->sender, sender) == 0);
    FUZZ_CHECK(frame->deliver->envelope->accepted_at_ms == accepted_at_ms);
    relais__v1__frame__free_unpacked(frame, NULL);

    /* What a receiving agent's SDK makes of it: the hand-wrapped Deliver and a Submit that
     * protobuf-c encodes around the same envelope get the same verdict (a string that is not
     * UTF-8, say). Were they to differ, the broker would accept what it cannot deliver. */
    Relais__V1__Frame *decoded = NULL;
    int rc = relais_frame_decode(wrapped, wrapped_len, LIMIT, &decoded, why, sizeof why);
    if (rc == 0) {
        FUZZ_CHECK(decoded->kind_case == RELAIS__V1__FRAME__KIND_DELIVER);
        FUZZ_CHECK(strcmp(decoded->deliver->envelope->sender, sender) == 0);
    } else {
        FUZZ_CHECKF(rc == RELAIS_EBADFRAME, "rc %d: %s", rc, why);
    }
    FUZZ_CHECKF(decode_as_submit(restamped) == rc, "Deliver decodes with %d, Submit does not", rc);
    relais_frame_free(&decoded);

    free(wrapped);
    free(stamped);
    relais__v1__envelope__free_unpacked(restamped, NULL);
    relais__v1__envelope__free_unpacked(env, NULL);
    return 0;
}
