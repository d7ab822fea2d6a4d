/*
 * Unit tests of the frame codec: decoding (limits, garbage, truncation, missing kind,
 * invalid UTF-8), encoding, kind names, and the broker's hand-encoded paths. The hand
 * encoders are checked against protobuf-c itself: what relais_deliver_wrap() and
 * relais_envelope_stamp() produce must decode with protobuf-c to the values written, and
 * the Deliver wrap must be byte for byte what protobuf-c would have encoded.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "relais/codec.h"

#define LIMIT RELAIS_DEFAULT_MAX_FRAME_BYTES

/* An encoded Hello frame; the caller frees it. */
static uint8_t *hello_bytes(size_t *len)
{
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    Relais__V1__Hello hello = RELAIS__V1__HELLO__INIT;
    hello.protocol_version = RELAIS_PROTOCOL_VERSION;
    hello.software = "relais-test/1";
    hello.credit = 32;
    frame.kind_case = RELAIS__V1__FRAME__KIND_HELLO;
    frame.hello = &hello;
    uint8_t *out = NULL;
    cr_assert_eq(relais_frame_encode(&frame, &out, len), 0);
    return out;
}

/* A packed envelope with a sender already set and a 20 kB note; the caller frees it. */
static uint8_t *envelope_bytes(size_t *len, const char *sender, int64_t accepted_at_ms)
{
    static uint8_t id[RELAIS_MESSAGE_ID_LEN] = {1, 2,  3,  4,  5,  6,  7,  8,
                                                9, 10, 11, 12, 13, 14, 15, 16};
    static char *to[] = {"rpps:10101234567", "service:nurse@cpts-rennes-nord"};
    static char text[20000];
    memset(text, 'n', sizeof text - 1);
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    note.text = text;
    env.message_id = (ProtobufCBinaryData){sizeof id, id};
    env.sender = (char *)sender;
    env.to = to;
    env.n_to = 2;
    env.created_at_ms = 1700000000000;
    env.accepted_at_ms = accepted_at_ms;
    env.priority = RELAIS__V1__ENVELOPE__PRIORITY__URGENT;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    env.note = &note;
    *len = relais__v1__envelope__get_packed_size(&env);
    uint8_t *buf = malloc(*len);
    cr_assert_not_null(buf);
    cr_assert_eq(relais__v1__envelope__pack(&env, buf), *len);
    return buf;
}

static void expect_decode_fails(const void *data, size_t len, size_t limit, int code,
                                const char *fragment, const char *sentence)
{
    Relais__V1__Frame *frame = (Relais__V1__Frame *)&frame; /* must be reset to NULL */
    char reason[RELAIS_REASON_MAX] = "";
    int rc = relais_frame_decode(data, len, limit, &frame, reason, sizeof reason);
    cr_expect_eq(rc, code, "%s: got %d (%s)", sentence, rc, reason);
    cr_expect_null(frame, "%s: *out is NULL on failure", sentence);
    cr_expect(strstr(reason, fragment) != NULL, "%s: reason '%s' lacks '%s'", sentence, reason,
              fragment);
}

/* ---- Decoding ---------------------------------------------------------------------- */

Test(codec, decodes_what_it_encodes)
{
    size_t len;
    uint8_t *bytes = hello_bytes(&len);
    Relais__V1__Frame *frame = NULL;
    char reason[RELAIS_REASON_MAX] = "not cleared";
    cr_assert_eq(relais_frame_decode(bytes, len, LIMIT, &frame, reason, sizeof reason), 0, "%s",
                 reason);
    cr_expect_str_empty(reason);
    cr_assert_eq(frame->kind_case, RELAIS__V1__FRAME__KIND_HELLO);
    cr_expect_eq(frame->hello->protocol_version, 1);
    cr_expect_str_eq(frame->hello->software, "relais-test/1");
    cr_expect_eq(frame->hello->credit, 32);
    relais_frame_free(&frame);
    cr_expect_null(frame);
    relais_frame_free(&frame);
    relais_frame_free(NULL);
    free(bytes);
}

Test(codec, round_trips_every_frame_kind_of_the_schema)
{
    const ProtobufCMessageDescriptor *d = &relais__v1__frame__descriptor;
    cr_assert_eq(d->n_fields, 16);
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const ProtobufCMessageDescriptor *sub = f->descriptor;
        ProtobufCMessage *m = malloc(sub->sizeof_message);
        cr_assert_not_null(m);
        sub->message_init(m);
        Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
        frame.kind_case = (Relais__V1__Frame__KindCase)f->id;
        frame.hello = (Relais__V1__Hello *)m;
        uint8_t *bytes = NULL;
        size_t len = 0;
        cr_expect_eq(relais_frame_encode(&frame, &bytes, &len), 0, "%s", f->name);
        Relais__V1__Frame *back = NULL;
        cr_expect_eq(relais_frame_decode(bytes, len, LIMIT, &back, NULL, 0), 0, "%s", f->name);
        if (back != NULL) cr_expect_eq(back->kind_case, f->id, "%s", f->name);
        cr_expect_str_eq(relais_frame_kind_name((int)f->id), f->name);
        relais_frame_free(&back);
        free(bytes);
        free(m);
    }
}

Test(codec, refuses_a_frame_over_the_limit_before_parsing_it)
{
    uint8_t garbage[64];
    memset(garbage, 0xff, sizeof garbage);
    expect_decode_fails(garbage, sizeof garbage, sizeof garbage - 1, RELAIS_ETOOLARGE,
                        "64 bytes, more than the limit of 63", "garbage over the limit");
    size_t len;
    uint8_t *bytes = hello_bytes(&len);
    expect_decode_fails(bytes, len, len - 1, RELAIS_ETOOLARGE, "limit", "a valid frame over it");
    Relais__V1__Frame *frame = NULL;
    cr_expect_eq(relais_frame_decode(bytes, len, len, &frame, NULL, 0), 0, "exactly the limit");
    relais_frame_free(&frame);
    free(bytes);
}

Test(codec, refuses_an_empty_message)
{
    expect_decode_fails("", 0, LIMIT, RELAIS_EBADFRAME, "empty", "an empty message");
}

Test(codec, refuses_field_number_zero_even_written_as_an_overlong_tag)
{
    /* Found by fuzzing: protobuf-c refuses the tag byte 00 but accepts 80 00 (the same tag
     * in two bytes), keeps it as an unknown field and re-encodes it as 00, which it then
     * refuses: a Submit accepted this way could never be delivered. */
    const uint8_t frame[] = {0x0a, 0x03, 0x80, 0x00, 0x00};
    Relais__V1__Frame *f = NULL;
    char reason[RELAIS_REASON_MAX];
    cr_assert_eq(relais_frame_decode(frame, sizeof(frame), 1024, &f, reason, sizeof(reason)),
                 RELAIS_EBADFRAME);
    cr_assert_null(f);
    cr_expect(strstr(reason, "field number 0") != NULL, "reason: %s", reason);
}

Test(codec, refuses_garbage_with_a_reason_that_says_where)
{
    static const struct {
        const char *sentence;
        const char *bytes;
        size_t len;
        const char *fragment;
    } cases[] = {
        {"all 0xff is not a frame", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff", 11,
         "byte 0: field tag is cut off or malformed"},
        {"field number 0 does not exist", "\x00\x01", 2, "field number 0 is not allowed"},
        {"a kind sent as a varint has the wrong wire type", "\x08\x01", 2,
         "field 1 (hello) is sent as varint, expected length-delimited"},
        {"a length past the end is caught", "\x0a\x10\x08\x01", 4,
         "field 1 declares 16 bytes but only 2 remain"},
        {"a cut-off length is caught", "\x0a\x80", 2, "field 1: length is cut off"},
        {"wire type 7 does not exist", "\xa7\x01", 2, "field 20 has an invalid wire type 7"},
        {"groups are not supported", "\xa3\x01", 2,
         "field 20 has the unsupported group wire type 3"},
        {"a broken nested message is named", "\x1a\x02\x0a\x05", 4,
         "the submit message (2 bytes) does not decode"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        expect_decode_fails(cases[i].bytes, cases[i].len, LIMIT, RELAIS_EBADFRAME,
                            cases[i].fragment, cases[i].sentence);
    }
}

Test(codec, refuses_every_truncation_of_a_valid_frame)
{
    size_t len;
    uint8_t *bytes = hello_bytes(&len);
    for (size_t cut = 1; cut < len; cut++) {
        Relais__V1__Frame *frame = NULL;
        char reason[RELAIS_REASON_MAX] = "";
        int rc = relais_frame_decode(bytes, cut, LIMIT, &frame, reason, sizeof reason);
        cr_expect_eq(rc, RELAIS_EBADFRAME, "cut at %zu of %zu: %d", cut, len, rc);
        cr_expect_null(frame);
        cr_expect(strlen(reason) > 0, "cut at %zu gives a reason", cut);
        relais_frame_free(&frame);
    }
    free(bytes);
}

Test(codec, refuses_a_frame_with_no_kind)
{
    /* Field 100, a varint: valid protobuf, but no kind of Frame. */
    expect_decode_fails("\xa0\x06\x01", 3, LIMIT, RELAIS_EBADFRAME, "no kind set",
                        "only an unknown field");
}

Test(codec, refuses_strings_that_are_not_utf8_and_names_the_field)
{
    /* Frame{hello{software="\xc3\x28"}}: an invalid two-byte sequence. */
    expect_decode_fails("\x0a\x04\x12\x02\xc3\x28", 6, LIMIT, RELAIS_EBADFRAME,
                        "hello.software is not valid UTF-8", "a bad string in hello");
    /* Frame{submit{envelope{to="ok", to="\xed\xa0\x80"}}}: the second is a surrogate. */
    expect_decode_fails("\x1a\x0b\x0a\x09\x22\x02ok\x22\x03\xed\xa0\x80", 13, LIMIT,
                        RELAIS_EBADFRAME, "submit.envelope.to[1] is not valid UTF-8",
                        "a surrogate in a recipient");
    /* An overlong encoding of '/'. */
    expect_decode_fails("\x0a\x04\x12\x02\xc0\xaf", 6, LIMIT, RELAIS_EBADFRAME, "not valid UTF-8",
                        "an overlong sequence");
}

Test(codec, accepts_multibyte_utf8_strings)
{
    /* Frame{hello{software="é€𝄞"}}. */
    static const uint8_t bytes[] = {0x0a, 0x0b, 0x12, 0x09, 0xc3, 0xa9, 0xe2,
                                    0x82, 0xac, 0xf0, 0x9d, 0x84, 0x9e};
    Relais__V1__Frame *frame = NULL;
    char reason[RELAIS_REASON_MAX] = "";
    cr_expect_eq(relais_frame_decode(bytes, sizeof bytes, LIMIT, &frame, reason, sizeof reason), 0,
                 "%s", reason);
    relais_frame_free(&frame);
}

/* ---- Encoding and names ------------------------------------------------------------ */

Test(codec, refuses_to_encode_a_frame_without_a_kind)
{
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    uint8_t *out = (uint8_t *)&frame;
    size_t len = 99;
    cr_expect_eq(relais_frame_encode(&frame, &out, &len), RELAIS_EBADFRAME);
    cr_expect_null(out);
    cr_expect_eq(len, 0);
    frame.kind_case = RELAIS__V1__FRAME__KIND_PING; /* set, but no Ping message behind it */
    cr_expect_eq(relais_frame_encode(&frame, &out, &len), RELAIS_EBADFRAME);
    frame.kind_case = 42;
    frame.ping = (Relais__V1__Ping *)&frame;
    cr_expect_eq(relais_frame_encode(&frame, &out, &len), RELAIS_EBADFRAME);
}

Test(codec, names_frame_kinds_for_logs)
{
    cr_expect_str_eq(relais_frame_kind_name(RELAIS__V1__FRAME__KIND_HELLO), "hello");
    cr_expect_str_eq(relais_frame_kind_name(RELAIS__V1__FRAME__KIND_SUBMIT), "submit");
    cr_expect_str_eq(relais_frame_kind_name(RELAIS__V1__FRAME__KIND_CLAIM_RESULT), "claim_result");
    cr_expect_str_eq(relais_frame_kind_name(RELAIS__V1__FRAME__KIND_BYE), "bye");
    cr_expect_str_eq(relais_frame_kind_name(RELAIS__V1__FRAME__KIND__NOT_SET), "unknown");
    cr_expect_str_eq(relais_frame_kind_name(17), "unknown");
    cr_expect_str_eq(relais_frame_kind_name(-1), "unknown");
}

/* ---- Hand encoding: Deliver wrap and envelope stamp -------------------------------- */

Test(codec, wraps_envelope_bytes_in_a_deliver_that_protobuf_c_decodes)
{
    static const struct {
        uint32_t attempt;
        bool offered;
    } cases[] = {{1, false}, {3, true}, {0, false}, {300, true}, {UINT32_MAX, false}};
    size_t env_len;
    uint8_t *env = envelope_bytes(&env_len, "rpps:10101234567", 0);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t *out = NULL;
        size_t out_len = 0;
        cr_assert_eq(
            relais_deliver_wrap(env, env_len, cases[i].attempt, cases[i].offered, &out, &out_len),
            0);
        Relais__V1__Frame *frame = relais__v1__frame__unpack(NULL, out_len, out);
        cr_assert_not_null(frame, "attempt %u: protobuf-c decodes the wrap", cases[i].attempt);
        cr_assert_eq(frame->kind_case, RELAIS__V1__FRAME__KIND_DELIVER);
        cr_expect_eq(frame->deliver->attempt, cases[i].attempt);
        cr_expect_eq(frame->deliver->offered, cases[i].offered);
        cr_assert_not_null(frame->deliver->envelope);
        cr_expect_str_eq(frame->deliver->envelope->to[1], "service:nurse@cpts-rennes-nord");
        cr_expect_eq(strlen(frame->deliver->envelope->note->text), 19999);

        /* Byte for byte what protobuf-c encodes for the same Deliver. */
        uint8_t *expected = NULL;
        size_t expected_len = 0;
        cr_assert_eq(relais_frame_encode(frame, &expected, &expected_len), 0);
        cr_expect_eq(out_len, expected_len, "attempt %u", cases[i].attempt);
        cr_expect(memcmp(out, expected, out_len < expected_len ? out_len : expected_len) == 0,
                  "attempt %u: same bytes as protobuf-c", cases[i].attempt);
        free(expected);
        relais__v1__frame__free_unpacked(frame, NULL);
        free(out);
    }
    free(env);
}

Test(codec, wraps_an_empty_envelope)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    cr_assert_eq(relais_deliver_wrap(NULL, 0, 1, false, &out, &out_len), 0);
    Relais__V1__Frame *frame = NULL;
    cr_assert_eq(relais_frame_decode(out, out_len, LIMIT, &frame, NULL, 0), 0);
    cr_expect_eq(frame->kind_case, RELAIS__V1__FRAME__KIND_DELIVER);
    cr_expect_not_null(frame->deliver->envelope);
    relais_frame_free(&frame);
    free(out);
}

static Relais__V1__Envelope *stamp_and_unpack(const uint8_t *env, size_t len, const char *sender,
                                              int64_t at)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    cr_assert_eq(relais_envelope_stamp(env, len, sender, at, &out, &out_len), 0);
    cr_assert_gt(out_len, len);
    cr_expect(memcmp(out, env, len) == 0, "the original bytes are kept as they were");
    Relais__V1__Envelope *e = relais__v1__envelope__unpack(NULL, out_len, out);
    cr_assert_not_null(e, "protobuf-c decodes the stamped envelope");
    free(out);
    return e;
}

Test(codec, stamped_sender_and_time_override_what_the_agent_wrote)
{
    size_t len;
    uint8_t *env = envelope_bytes(&len, "rpps:99999999999", 12345);
    Relais__V1__Envelope *e = stamp_and_unpack(env, len, "staff:marie@cabinet", 1700000000123);
    cr_expect_str_eq(e->sender, "staff:marie@cabinet");
    cr_expect_eq(e->accepted_at_ms, 1700000000123);
    cr_expect_eq(e->message_id.len, 16);
    cr_expect_eq(e->message_id.data[15], 16);
    cr_expect_eq(e->n_to, 2);
    cr_expect_eq(e->priority, RELAIS__V1__ENVELOPE__PRIORITY__URGENT);
    cr_expect_eq(e->body_case, RELAIS__V1__ENVELOPE__BODY_NOTE);
    cr_expect_eq(strlen(e->note->text), 19999);
    relais__v1__envelope__free_unpacked(e, NULL);
    free(env);
}

Test(codec, stamps_an_envelope_that_had_no_sender)
{
    size_t len;
    uint8_t *env = envelope_bytes(&len, "", 0);
    Relais__V1__Envelope *e = stamp_and_unpack(env, len, "rpps:10101234567", 1);
    cr_expect_str_eq(e->sender, "rpps:10101234567");
    cr_expect_eq(e->accepted_at_ms, 1);
    relais__v1__envelope__free_unpacked(e, NULL);
    free(env);
}

Test(codec, stamping_zero_and_empty_values_still_overrides)
{
    size_t len;
    uint8_t *env = envelope_bytes(&len, "rpps:99999999999", 12345);
    Relais__V1__Envelope *e = stamp_and_unpack(env, len, "", 0);
    cr_expect_str_eq(e->sender, "");
    cr_expect_eq(e->accepted_at_ms, 0);
    relais__v1__envelope__free_unpacked(e, NULL);
    e = stamp_and_unpack(env, len, "app:gw", -1);
    cr_expect_eq(e->accepted_at_ms, -1, "negative times travel as 10-byte varints");
    relais__v1__envelope__free_unpacked(e, NULL);
    free(env);
}

Test(codec, a_stamped_then_wrapped_envelope_decodes_as_a_delivery)
{
    size_t len;
    uint8_t *env = envelope_bytes(&len, "rpps:99999999999", 0);
    uint8_t *stamped = NULL, *wrapped = NULL;
    size_t stamped_len = 0, wrapped_len = 0;
    cr_assert_eq(relais_envelope_stamp(env, len, "rpps:10101234567", 42, &stamped, &stamped_len),
                 0);
    cr_assert_eq(relais_deliver_wrap(stamped, stamped_len, 2, true, &wrapped, &wrapped_len), 0);
    Relais__V1__Frame *frame = NULL;
    char reason[RELAIS_REASON_MAX] = "";
    cr_assert_eq(relais_frame_decode(wrapped, wrapped_len, LIMIT, &frame, reason, sizeof reason), 0,
                 "%s", reason);
    cr_expect_eq(frame->deliver->attempt, 2);
    cr_expect(frame->deliver->offered);
    cr_expect_str_eq(frame->deliver->envelope->sender, "rpps:10101234567");
    cr_expect_eq(frame->deliver->envelope->accepted_at_ms, 42);
    relais_frame_free(&frame);
    free(wrapped);
    free(stamped);
    free(env);
}
