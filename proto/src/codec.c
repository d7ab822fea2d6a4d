/*
 * Frame codec: decoding what arrives from the network, encoding what leaves, and the two
 * hand-encoded paths of the broker's hot path (wrapping stored envelope bytes in a Deliver,
 * stamping broker-owned fields onto them).
 *
 * protobuf-c does the real parsing; this file adds what a broker needs around it: the size
 * limit is enforced before a single byte is parsed, proto3's rule that strings are UTF-8 is
 * enforced (protobuf-c does not check it, and a peer in another language would refuse to
 * decode what we forwarded), and when decoding fails the reason says where and why, because
 * it travels back to the developer of the client in an Error frame.
 *
 * The hand encoding relies on protobuf's wire format being a concatenation of fields: an
 * embedded message is a length-delimited field holding the message's bytes, and when a
 * singular field appears twice the last occurrence wins.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relais/codec.h"

#include "internal.h"

enum wire_type {
    WIRE_VARINT = 0,
    WIRE_I64 = 1,
    WIRE_LEN = 2,
    WIRE_SGROUP = 3,
    WIRE_EGROUP = 4,
    WIRE_I32 = 5,
};

#define VARINT_MAX 10

/* ---- Small wire-format writer and reader ------------------------------------------- */

static size_t varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

static uint8_t *put_varint(uint8_t *p, uint64_t v)
{
    while (v >= 0x80) {
        *p++ = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    *p++ = (uint8_t)v;
    return p;
}

static uint8_t *put_tag(uint8_t *p, uint32_t field, enum wire_type type)
{
    return put_varint(p, ((uint64_t)field << 3) | (uint64_t)type);
}

/* Reads a varint at p[*pos]; false when the input ends first or it runs past 10 bytes. */
static bool get_varint(const uint8_t *p, size_t len, size_t *pos, uint64_t *out)
{
    uint64_t v = 0;
    for (unsigned shift = 0, i = 0; i < VARINT_MAX && *pos < len; i++, shift += 7) {
        uint8_t b = p[(*pos)++];
        v |= (uint64_t)(b & 0x7f) << shift;
        if ((b & 0x80) == 0) {
            *out = v;
            return true;
        }
    }
    return false;
}

/* ---- Decoding ---------------------------------------------------------------------- */

/*
 * protobuf-c reports every failure as NULL. Routing its allocations through this allocator
 * tells an allocation failure (-ENOMEM, worth retrying) from bad bytes (the peer's fault).
 * Blocks come from malloc, so protobuf-c's default allocator frees them.
 */
struct tracked_alloc {
    bool failed;
};

static void *tracked_malloc(void *data, size_t size)
{
    void *p = malloc(size);
    if (p == NULL) ((struct tracked_alloc *)data)->failed = true;
    return p;
}

static void tracked_free(void *data, void *p)
{
    free(p);
}

static const char *wire_type_name(unsigned type)
{
    static const char *const names[] = {"varint",      "64-bit",    "length-delimited",
                                        "group start", "group end", "32-bit"};
    return type < 6 ? names[type] : "invalid";
}

static enum wire_type expected_wire_type(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_BYTES:
    case PROTOBUF_C_TYPE_MESSAGE:
        return WIRE_LEN;
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return WIRE_I64;
    case PROTOBUF_C_TYPE_FIXED32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_FLOAT:
        return WIRE_I32;
    default:
        return WIRE_VARINT;
    }
}

/*
 * Explains why protobuf-c refused the bytes: walks the Frame's top-level fields and reports
 * the first structural fault, or the first frame kind whose message does not decode.
 */
static void diagnose(const uint8_t *p, size_t len, char *reason, size_t reason_len)
{
    const ProtobufCMessageDescriptor *desc = &relais__v1__frame__descriptor;
    size_t pos = 0;
    while (pos < len) {
        size_t start = pos;
        uint64_t tag, value;
        if (!get_varint(p, len, &pos, &tag)) {
            codec__fail(0, reason, reason_len, "byte %zu: field tag is cut off or malformed",
                        start);
            return;
        }
        uint64_t field = tag >> 3;
        unsigned type = (unsigned)(tag & 7);
        if (field == 0 || field > 0x1fffffff) {
            codec__fail(0, reason, reason_len, "byte %zu: field number %llu is not allowed", start,
                        (unsigned long long)field);
            return;
        }
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(desc, (unsigned)field);
        if (f != NULL && type != (unsigned)expected_wire_type(f)) {
            codec__fail(0, reason, reason_len,
                        "byte %zu: field %llu (%s) is sent as %s, expected %s", start,
                        (unsigned long long)field, f->name, wire_type_name(type),
                        wire_type_name(expected_wire_type(f)));
            return;
        }
        size_t value_start = pos;
        switch (type) {
        case WIRE_VARINT:
            if (!get_varint(p, len, &pos, &value)) {
                codec__fail(0, reason, reason_len, "byte %zu: field %llu: varint is cut off",
                            value_start, (unsigned long long)field);
                return;
            }
            break;
        case WIRE_I64:
        case WIRE_I32: {
            size_t width = type == WIRE_I64 ? 8 : 4;
            if (len - pos < width) {
                codec__fail(0, reason, reason_len,
                            "byte %zu: field %llu: %zu-byte value is cut off", value_start,
                            (unsigned long long)field, width);
                return;
            }
            pos += width;
            break;
        }
        case WIRE_LEN:
            if (!get_varint(p, len, &pos, &value)) {
                codec__fail(0, reason, reason_len, "byte %zu: field %llu: length is cut off",
                            value_start, (unsigned long long)field);
                return;
            }
            if (value > len - pos) {
                codec__fail(0, reason, reason_len,
                            "byte %zu: field %llu declares %llu bytes but only %zu remain", start,
                            (unsigned long long)field, (unsigned long long)value, len - pos);
                return;
            }
            if (f != NULL && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                ProtobufCMessage *m =
                    protobuf_c_message_unpack(f->descriptor, NULL, (size_t)value, p + pos);
                if (m == NULL) {
                    codec__fail(0, reason, reason_len,
                                "byte %zu: the %s message (%llu bytes) does not decode", start,
                                f->name, (unsigned long long)value);
                    return;
                }
                protobuf_c_message_free_unpacked(m, NULL);
            }
            pos += (size_t)value;
            break;
        default:
            codec__fail(0, reason, reason_len, "byte %zu: field %llu has %s wire type %u", start,
                        (unsigned long long)field,
                        type == WIRE_SGROUP || type == WIRE_EGROUP ? "the unsupported group"
                                                                   : "an invalid",
                        type);
            return;
        }
    }
    codec__fail(0, reason, reason_len, "the %zu bytes are not a valid relais.v1.Frame", len);
}

/* Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above U+10FFFF. */
static bool utf8_valid(const unsigned char *s)
{
    while (*s != '\0') {
        unsigned char c = *s;
        uint32_t cp;
        int more;
        if (c < 0x80) {
            s++;
            continue;
        } else if (c >= 0xc2 && c <= 0xdf) {
            cp = c & 0x1f;
            more = 1;
        } else if (c >= 0xe0 && c <= 0xef) {
            cp = c & 0x0f;
            more = 2;
        } else if (c >= 0xf0 && c <= 0xf4) {
            cp = c & 0x07;
            more = 3;
        } else {
            return false;
        }
        s++;
        for (int i = 0; i < more; i++, s++) {
            if ((*s & 0xc0) != 0x80) return false;
            cp = (cp << 6) | (*s & 0x3f);
        }
        if ((more == 2 && cp < 0x800) || (more == 3 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff)) {
            return false;
        }
    }
    return true;
}

/* Appends to the dotted path of the field being checked; the path is for the reason only,
 * so without a buffer (the first, fast pass) nothing is formatted. */
static size_t path_push(char *path, size_t cap, size_t len, const char *name, long index)
{
    if (path == NULL) return 0;
    int n;
    if (index >= 0) {
        n = snprintf(path + len, cap - len, "%s%s[%ld]", len ? "." : "", name, index);
    } else {
        n = snprintf(path + len, cap - len, "%s%s", len ? "." : "", name);
    }
    if (n < 0) return len;
    return len + (size_t)n < cap ? len + (size_t)n : cap - 1;
}

static bool check_item(const ProtobufCFieldDescriptor *f, const void *item, char *path, size_t cap,
                       size_t len);

/*
 * True when msg or a message inside it holds field number 0. protobuf-c refuses the tag
 * byte 00 but accepts the same tag written in more bytes (80 00) and keeps it as an unknown
 * field, which it then re-encodes as 00: a frame we accepted would re-encode into bytes that
 * nobody decodes (the broker re-encodes every envelope it stores).
 */
static bool has_field_zero(const ProtobufCMessage *msg)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < msg->n_unknown_fields; i++) {
        if (msg->unknown_fields[i].tag == 0) return true;
    }
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(const uint32_t *)(base + f->quantifier_offset) != f->id) continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            const ProtobufCMessage *const *items =
                *(const ProtobufCMessage *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++) {
                if (has_field_zero(items[k])) return true;
            }
        } else {
            const ProtobufCMessage *item = *(const ProtobufCMessage *const *)(base + f->offset);
            if (item != NULL && has_field_zero(item)) return true;
        }
    }
    return false;
}

/*
 * Checks every string in msg and its sub-messages; on failure path names the first bad
 * one ("submit.envelope.note.text"). The schema has no recursive messages, so the depth is
 * bounded by the schema.
 */
static bool check_strings(const ProtobufCMessage *msg, char *path, size_t cap, size_t len)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    const char *base = (const char *)msg;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE) continue;
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            const uint32_t *which = (const uint32_t *)(base + f->quantifier_offset);
            if (*which != f->id) continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(base + f->quantifier_offset);
            void *const *items = *(void *const *const *)(base + f->offset);
            for (size_t k = 0; k < n; k++) {
                size_t l = path_push(path, cap, len, f->name, (long)k);
                if (!check_item(f, items[k], path, cap, l)) return false;
                if (path) path[len] = '\0';
            }
        } else {
            const void *item = *(const void *const *)(base + f->offset);
            size_t l = path_push(path, cap, len, f->name, -1);
            if (!check_item(f, item, path, cap, l)) return false;
            if (path) path[len] = '\0';
        }
    }
    return true;
}

static bool check_item(const ProtobufCFieldDescriptor *f, const void *item, char *path, size_t cap,
                       size_t len)
{
    if (item == NULL) return true;
    if (f->type == PROTOBUF_C_TYPE_STRING) return utf8_valid(item);
    return check_strings(item, path, cap, len);
}

int relais_frame_decode(const void *data, size_t len, size_t max_bytes, Relais__V1__Frame **out,
                        char *reason, size_t reason_len)
{
    *out = NULL;
    if (len > max_bytes) {
        return codec__fail(RELAIS_ETOOLARGE, reason, reason_len,
                           "the frame is %zu bytes, more than the limit of %zu", len, max_bytes);
    }
    if (len == 0) {
        return codec__fail(RELAIS_EBADFRAME, reason, reason_len,
                           "the message is empty: it must hold one serialized Frame");
    }

    struct tracked_alloc state = {false};
    ProtobufCAllocator allocator = {tracked_malloc, tracked_free, &state};
    Relais__V1__Frame *frame = relais__v1__frame__unpack(&allocator, len, data);
    if (frame == NULL) {
        if (state.failed) {
            return codec__fail(-ENOMEM, reason, reason_len, "out of memory decoding a frame");
        }
        diagnose(data, len, reason, reason_len);
        return RELAIS_EBADFRAME;
    }
    if (frame->kind_case == RELAIS__V1__FRAME__KIND__NOT_SET) {
        relais_frame_free(&frame);
        return codec__fail(RELAIS_EBADFRAME, reason, reason_len,
                           "the frame has no kind set (no known field of Frame is present)");
    }
    if (has_field_zero(&frame->base)) {
        relais_frame_free(&frame);
        return codec__fail(RELAIS_EBADFRAME, reason, reason_len,
                           "the frame holds field number 0, which protobuf does not allow");
    }
    if (!check_strings(&frame->base, NULL, 0, 0)) {
        /* Rare: walk again, this time naming the field for the reason. */
        char path[128] = "";
        check_strings(&frame->base, path, sizeof path, 0);
        relais_frame_free(&frame);
        return codec__fail(RELAIS_EBADFRAME, reason, reason_len,
                           "%s is not valid UTF-8, which proto3 requires of strings", path);
    }
    codec__clear(reason, reason_len);
    *out = frame;
    return 0;
}

void relais_frame_free(Relais__V1__Frame **frame)
{
    if (frame == NULL || *frame == NULL) return;
    relais__v1__frame__free_unpacked(*frame, NULL);
    *frame = NULL;
}

/* ---- Encoding ---------------------------------------------------------------------- */

int relais_frame_encode(const Relais__V1__Frame *frame, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    /* Every kind is a message pointer in the same union, so one NULL check covers them. */
    if (frame == NULL || frame->kind_case == RELAIS__V1__FRAME__KIND__NOT_SET ||
        protobuf_c_message_descriptor_get_field(&relais__v1__frame__descriptor,
                                                (unsigned)frame->kind_case) == NULL ||
        frame->hello == NULL) {
        return RELAIS_EBADFRAME;
    }
    size_t size = relais__v1__frame__get_packed_size(frame);
    uint8_t *buf = malloc(size);
    if (buf == NULL) return -ENOMEM;
    size_t written = relais__v1__frame__pack(frame, buf);
    *out = buf;
    *out_len = written;
    return 0;
}

const char *relais_frame_kind_name(int kind_case)
{
    if (kind_case <= 0) return "unknown";
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field(
        &relais__v1__frame__descriptor, (unsigned)kind_case);
    return f != NULL ? f->name : "unknown";
}

int relais_deliver_wrap(const uint8_t *envelope, size_t envelope_len, uint32_t attempt,
                        bool offered, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (envelope_len > SIZE_MAX / 2) return -ENOMEM;

    /* proto3 leaves zero-valued scalars out, as protobuf-c's own encoder does. */
    size_t inner = 1 + varint_size(envelope_len) + envelope_len;
    if (attempt != 0) inner += 1 + varint_size(attempt);
    if (offered) inner += 2;
    size_t total = 1 + varint_size(inner) + inner;

    uint8_t *buf = malloc(total);
    if (buf == NULL) return -ENOMEM;
    uint8_t *p = put_tag(buf, RELAIS__V1__FRAME__KIND_DELIVER, WIRE_LEN);
    p = put_varint(p, inner);
    p = put_tag(p, 1, WIRE_LEN); /* Deliver.envelope */
    p = put_varint(p, envelope_len);
    if (envelope_len > 0) memcpy(p, envelope, envelope_len);
    p += envelope_len;
    if (attempt != 0) {
        p = put_tag(p, 2, WIRE_VARINT); /* Deliver.attempt */
        p = put_varint(p, attempt);
    }
    if (offered) {
        p = put_tag(p, 3, WIRE_VARINT); /* Deliver.offered */
        *p++ = 1;
    }
    *out = buf;
    *out_len = (size_t)(p - buf);
    return 0;
}

int relais_envelope_stamp(const uint8_t *envelope, size_t envelope_len, const char *sender,
                          int64_t accepted_at_ms, uint8_t **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    if (sender == NULL) sender = "";
    size_t sender_len = strlen(sender);
    if (envelope_len > SIZE_MAX / 2 || sender_len > SIZE_MAX / 4) return -ENOMEM;

    /* Both fields are always written, zero included, so that they override what was sent. */
    size_t total = envelope_len + 1 + varint_size(sender_len) + sender_len + 1 + VARINT_MAX;
    uint8_t *buf = malloc(total);
    if (buf == NULL) return -ENOMEM;
    if (envelope_len > 0) memcpy(buf, envelope, envelope_len);
    uint8_t *p = buf + envelope_len;
    p = put_tag(p, 2, WIRE_LEN); /* Envelope.sender */
    p = put_varint(p, sender_len);
    memcpy(p, sender, sender_len);
    p += sender_len;
    p = put_tag(p, 12, WIRE_VARINT); /* Envelope.accepted_at_ms: int64, two's complement */
    p = put_varint(p, (uint64_t)accepted_at_ms);
    *out = buf;
    *out_len = (size_t)(p - buf);
    return 0;
}
