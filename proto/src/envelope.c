/*
 * Envelope validation and the names of body types.
 *
 * relais_envelope_validate() is the broker's first look at what an agent submits and the
 * SDK's last look before it sends: both must agree, so the rules live here once. Each
 * failure names the field and the rule it breaks, since the reason goes back verbatim to
 * the sender in a Rejected frame. Structural rules are checked first and the deadline
 * last, so a malformed envelope is reported as invalid rather than as expired.
 *
 * Body names come from the generated descriptor rather than from a table of our own, so
 * they are the schema's field names by construction and a body added to the schema is
 * named without touching this file.
 */
#include <stddef.h>
#include <string.h>

#include "relais/codec.h"

#include "internal.h"

/* Every rule broken here is the same error, RELAIS_EINVALID; only the reason differs. */
#define fail(reason, reason_len, ...) codec__fail(RELAIS_EINVALID, reason, reason_len, __VA_ARGS__)

/* The Envelope field that is the body oneof's member numbered number, or NULL. */
static const ProtobufCFieldDescriptor *body_field(unsigned number)
{
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(&relais__v1__envelope__descriptor, number);
    if (f == NULL || !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ||
        f->quantifier_offset != offsetof(Relais__V1__Envelope, body_case)) {
        return NULL;
    }
    return f;
}

/* An optional identifier: empty, or exactly a message id's length. */
static int check_optional_id(const char *field, const ProtobufCBinaryData *id, char *reason,
                             size_t reason_len)
{
    if (id->len == 0 || id->len == RELAIS_MESSAGE_ID_LEN) return 0;
    return fail(reason, reason_len, "%s must be empty or %d bytes, got %zu", field,
                RELAIS_MESSAGE_ID_LEN, id->len);
}

static int check_recipients(const Relais__V1__Envelope *env, unsigned max_recipients, char *reason,
                            size_t reason_len)
{
    char why[RELAIS_REASON_MAX];
    if (env->n_to == 0) return fail(reason, reason_len, "to: at least one recipient is needed");
    if (env->n_to > max_recipients) {
        return fail(reason, reason_len, "to: at most %u recipients, got %zu", max_recipients,
                    env->n_to);
    }
    for (size_t i = 0; i < env->n_to; i++) {
        const char *addr = env->to[i] != NULL ? env->to[i] : "";
        if (relais_address_parse(addr, NULL, why, sizeof why) != 0) {
            return fail(reason, reason_len, "to[%zu]: %s", i, why);
        }
        /* At most 64 entries: the quadratic scan costs less than building a set. */
        for (size_t j = 0; j < i; j++) {
            if (strcmp(addr, env->to[j]) == 0) {
                return fail(reason, reason_len, "to[%zu]: duplicate recipient %s (also to[%zu])", i,
                            addr, j);
            }
        }
    }
    return 0;
}

int relais_envelope_validate(const Relais__V1__Envelope *env, int64_t now_ms,
                             unsigned max_recipients, char *reason, size_t reason_len)
{
    char why[RELAIS_REASON_MAX];
    int rc;
    if (env == NULL) return fail(reason, reason_len, "envelope: missing");
    if (max_recipients == 0 || max_recipients > RELAIS_MAX_RECIPIENTS) {
        max_recipients = RELAIS_MAX_RECIPIENTS;
    }

    if (env->message_id.len != RELAIS_MESSAGE_ID_LEN) {
        return fail(reason, reason_len, "message_id must be %d bytes, got %zu",
                    RELAIS_MESSAGE_ID_LEN, env->message_id.len);
    }
    if (env->on_behalf_of != NULL && env->on_behalf_of[0] != '\0' &&
        relais_address_parse(env->on_behalf_of, NULL, why, sizeof why) != 0) {
        return fail(reason, reason_len, "on_behalf_of: %s", why);
    }
    rc = check_recipients(env, max_recipients, reason, reason_len);
    if (rc != 0) return rc;
    rc = check_optional_id("conversation_id", &env->conversation_id, reason, reason_len);
    if (rc != 0) return rc;
    rc = check_optional_id("in_reply_to", &env->in_reply_to, reason, reason_len);
    if (rc != 0) return rc;
    if (env->created_at_ms < 0) {
        return fail(reason, reason_len, "created_at_ms must not be negative, got %lld",
                    (long long)env->created_at_ms);
    }
    if (env->expires_at_ms < 0) {
        return fail(reason, reason_len,
                    "expires_at_ms must be 0 or a time since the epoch, got %lld",
                    (long long)env->expires_at_ms);
    }
    if (env->body_case == RELAIS__V1__ENVELOPE__BODY__NOT_SET) {
        return fail(reason, reason_len, "body: no care message set");
    }
    if (env->body_case < 0 || body_field((unsigned)env->body_case) == NULL) {
        return fail(reason, reason_len, "body: unknown case %d", (int)env->body_case);
    }
    /* Every body is a message pointer in the same union, so one NULL check covers them. */
    if (env->note == NULL) {
        return fail(reason, reason_len, "body: %s is set but holds no message",
                    relais_body_name(env->body_case));
    }
    if (env->expires_at_ms != 0 && env->expires_at_ms <= now_ms) {
        return codec__fail(RELAIS_EEXPIRED, reason, reason_len,
                           "expires_at_ms is in the past (%lld ms ago)",
                           (long long)(now_ms - env->expires_at_ms));
    }
    codec__clear(reason, reason_len);
    return 0;
}

const char *relais_body_name(int body_case)
{
    if (body_case == RELAIS__V1__ENVELOPE__BODY__NOT_SET) return "none";
    const ProtobufCFieldDescriptor *f = body_case > 0 ? body_field((unsigned)body_case) : NULL;
    return f != NULL ? f->name : "unknown";
}

int relais_body_from_name(const char *name)
{
    if (name == NULL) return -1;
    const ProtobufCMessageDescriptor *d = &relais__v1__envelope__descriptor;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (strcmp(f->name, name) == 0 && body_field(f->id) == f) return (int)f->id;
    }
    return -1;
}
