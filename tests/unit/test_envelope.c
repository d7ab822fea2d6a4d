/*
 * Unit tests of relais_envelope_validate() and of the body names.
 *
 * Each row of the tables starts from one valid envelope, changes one thing, and states the
 * expected code and a fragment of the reason, which must name the field. The body-name
 * table lists every case of the Envelope oneof by hand, independently of the descriptor the
 * implementation reads, and a test checks that the schema has no case the table forgot.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "relais/codec.h"

#define NOW 1700000000000LL

static const char *const rpps[] = {"rpps:10101234567", "rpps:10101234568", "rpps:10101234569"};

/* A valid envelope plus the storage its pointers refer to. */
struct fixture {
    Relais__V1__Envelope env;
    Relais__V1__Note note;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    uint8_t other[32];
    char *to[RELAIS_MAX_RECIPIENTS + 2];
    char many[RELAIS_MAX_RECIPIENTS + 2][32];
};

static void fixture_init(struct fixture *f)
{
    memset(f, 0, sizeof *f);
    relais__v1__envelope__init(&f->env);
    relais__v1__note__init(&f->note);
    memset(f->id, 0x11, sizeof f->id);
    memset(f->other, 0x22, sizeof f->other);
    for (size_t i = 0; i < RELAIS_MAX_RECIPIENTS + 2; i++) {
        snprintf(f->many[i], sizeof f->many[i], "rpps:%011zu", 20000000000 + i);
    }
    f->to[0] = (char *)rpps[0];
    f->env.message_id.data = f->id;
    f->env.message_id.len = sizeof f->id;
    f->env.to = f->to;
    f->env.n_to = 1;
    f->env.created_at_ms = NOW - 10;
    f->env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    f->env.note = &f->note;
}

static void recipients(struct fixture *f, size_t n)
{
    for (size_t i = 0; i < n; i++) f->to[i] = f->many[i];
    f->env.n_to = n;
}

/* ---- Mutations, one per rule ------------------------------------------------------- */

static void nothing(struct fixture *f) {}
static void id_empty(struct fixture *f)
{
    f->env.message_id.len = 0;
}
static void id_3_bytes(struct fixture *f)
{
    f->env.message_id.len = 3;
}
static void id_17_bytes(struct fixture *f)
{
    f->env.message_id = (ProtobufCBinaryData){17, f->other};
}
static void behalf_valid(struct fixture *f)
{
    f->env.on_behalf_of = "rpps:10101234599";
}
static void behalf_invalid(struct fixture *f)
{
    f->env.on_behalf_of = "rpps:123";
}
static void behalf_uppercase(struct fixture *f)
{
    f->env.on_behalf_of = "RPPS:10101234599";
}
static void to_none(struct fixture *f)
{
    f->env.n_to = 0;
}
static void to_64(struct fixture *f)
{
    recipients(f, 64);
}
static void to_65(struct fixture *f)
{
    recipients(f, 65);
}
static void to_3(struct fixture *f)
{
    recipients(f, 3);
}
static void to_mixed_schemes(struct fixture *f)
{
    f->to[0] = "finess:350000139";
    f->to[1] = "service:specialist/cardiology@cpts-rennes-nord";
    f->to[2] = "staff:marie@cabinet";
    f->env.n_to = 3;
}
static void to_third_short(struct fixture *f)
{
    to_3(f);
    f->to[2] = "rpps:1010123456";
}
static void to_duplicate(struct fixture *f)
{
    f->to[0] = (char *)rpps[0];
    f->to[1] = (char *)rpps[0];
    f->env.n_to = 2;
}
static void to_later_duplicate(struct fixture *f)
{
    to_3(f);
    f->to[2] = f->to[0];
}
static void to_null_entry(struct fixture *f)
{
    f->to[0] = NULL;
}
static void to_bad_scheme(struct fixture *f)
{
    f->to[0] = "mailto:someone";
}
static void conv_16(struct fixture *f)
{
    f->env.conversation_id = (ProtobufCBinaryData){16, f->other};
}
static void conv_5(struct fixture *f)
{
    f->env.conversation_id = (ProtobufCBinaryData){5, f->other};
}
static void reply_16(struct fixture *f)
{
    f->env.in_reply_to = (ProtobufCBinaryData){16, f->other};
}
static void reply_32(struct fixture *f)
{
    f->env.in_reply_to = (ProtobufCBinaryData){32, f->other};
}
static void created_zero(struct fixture *f)
{
    f->env.created_at_ms = 0;
}
static void created_negative(struct fixture *f)
{
    f->env.created_at_ms = -1;
}
static void expires_future(struct fixture *f)
{
    f->env.expires_at_ms = NOW + 1;
}
static void expires_now(struct fixture *f)
{
    f->env.expires_at_ms = NOW;
}
static void expires_past(struct fixture *f)
{
    f->env.expires_at_ms = NOW - 1000;
}
static void expires_negative(struct fixture *f)
{
    f->env.expires_at_ms = -5;
}
static void body_unset(struct fixture *f)
{
    f->env.body_case = RELAIS__V1__ENVELOPE__BODY__NOT_SET;
    f->env.note = NULL;
}
static void body_unknown(struct fixture *f)
{
    f->env.body_case = 99;
}
static void body_null(struct fixture *f)
{
    f->env.note = NULL;
}
static void invalid_and_expired(struct fixture *f)
{
    expires_past(f);
    id_3_bytes(f);
}

struct rule_case {
    const char *sentence;
    void (*mutate)(struct fixture *f);
    unsigned max_recipients;
    int code;
    const char *reason; /* a fragment the reason must contain, NULL when valid */
};

static const struct rule_case rule_cases[] = {
    {"a well-formed envelope is valid", nothing, 64, 0, NULL},
    {"message_id cannot be empty", id_empty, 64, RELAIS_EINVALID,
     "message_id must be 16 bytes, got 0"},
    {"message_id of 3 bytes is refused", id_3_bytes, 64, RELAIS_EINVALID,
     "message_id must be 16 bytes, got 3"},
    {"message_id of 17 bytes is refused", id_17_bytes, 64, RELAIS_EINVALID,
     "message_id must be 16 bytes, got 17"},
    {"on_behalf_of may hold a valid address", behalf_valid, 64, 0, NULL},
    {"on_behalf_of must be a valid address", behalf_invalid, 64, RELAIS_EINVALID,
     "on_behalf_of: rpps needs 11 digits, got 3"},
    {"on_behalf_of must be lowercase", behalf_uppercase, 64, RELAIS_EINVALID,
     "on_behalf_of: scheme must be lowercase"},
    {"to needs at least one recipient", to_none, 64, RELAIS_EINVALID, "to: at least one recipient"},
    {"to may hold 64 recipients", to_64, 64, 0, NULL},
    {"to may not hold 65 recipients", to_65, 64, RELAIS_EINVALID,
     "to: at most 64 recipients, got 65"},
    {"a smaller limit from the caller applies", to_3, 2, RELAIS_EINVALID,
     "to: at most 2 recipients, got 3"},
    {"a limit of 0 means the protocol's 64", to_64, 0, 0, NULL},
    {"a limit above 64 is capped at 64", to_65, 1000, RELAIS_EINVALID,
     "to: at most 64 recipients, got 65"},
    {"to may mix every scheme", to_mixed_schemes, 64, 0, NULL},
    {"each recipient must be a valid address", to_third_short, 64, RELAIS_EINVALID,
     "to[2]: rpps needs 11 digits, got 10"},
    {"an unknown scheme in to is refused", to_bad_scheme, 64, RELAIS_EINVALID,
     "to[0]: unknown scheme 'mailto'"},
    {"a missing recipient string is refused", to_null_entry, 64, RELAIS_EINVALID,
     "to[0]: address is empty"},
    {"a recipient may not appear twice", to_duplicate, 64, RELAIS_EINVALID,
     "to[1]: duplicate recipient rpps:10101234567"},
    {"a duplicate is found anywhere in to", to_later_duplicate, 64, RELAIS_EINVALID,
     "to[2]: duplicate recipient rpps:20000000000 (also to[0])"},
    {"conversation_id may be 16 bytes", conv_16, 64, 0, NULL},
    {"conversation_id must be empty or 16 bytes", conv_5, 64, RELAIS_EINVALID,
     "conversation_id must be empty or 16 bytes, got 5"},
    {"in_reply_to may be 16 bytes", reply_16, 64, 0, NULL},
    {"in_reply_to must be empty or 16 bytes", reply_32, 64, RELAIS_EINVALID,
     "in_reply_to must be empty or 16 bytes, got 32"},
    {"created_at_ms may be 0", created_zero, 64, 0, NULL},
    {"created_at_ms must not be negative", created_negative, 64, RELAIS_EINVALID,
     "created_at_ms must not be negative, got -1"},
    {"expires_at_ms may be in the future", expires_future, 64, 0, NULL},
    {"expires_at_ms equal to now has expired", expires_now, 64, RELAIS_EEXPIRED,
     "expires_at_ms is in the past"},
    {"expires_at_ms in the past has expired", expires_past, 64, RELAIS_EEXPIRED,
     "expires_at_ms is in the past (1000 ms ago)"},
    {"expires_at_ms must not be negative", expires_negative, 64, RELAIS_EINVALID,
     "expires_at_ms must be 0 or a time since the epoch, got -5"},
    {"a body must be set", body_unset, 64, RELAIS_EINVALID, "body: no care message set"},
    {"a body case outside the schema is refused", body_unknown, 64, RELAIS_EINVALID,
     "body: unknown case 99"},
    {"a body case without its message is refused", body_null, 64, RELAIS_EINVALID,
     "body: note is set but holds no message"},
    {"an invalid envelope is reported as invalid even when expired", invalid_and_expired, 64,
     RELAIS_EINVALID, "message_id"},
};

Test(envelope, checks_every_rule_and_names_the_field_in_the_reason)
{
    for (size_t i = 0; i < sizeof rule_cases / sizeof rule_cases[0]; i++) {
        const struct rule_case *c = &rule_cases[i];
        struct fixture f;
        char reason[RELAIS_REASON_MAX] = "not cleared";
        fixture_init(&f);
        c->mutate(&f);
        int rc = relais_envelope_validate(&f.env, NOW, c->max_recipients, reason, sizeof reason);
        cr_expect_eq(rc, c->code, "%s: got %d (%s), expected %d", c->sentence, rc, reason, c->code);
        if (c->reason == NULL) {
            cr_expect_str_empty(reason, "%s: reason is cleared on success", c->sentence);
        } else {
            cr_expect(strstr(reason, c->reason) != NULL, "%s: reason '%s' lacks '%s'", c->sentence,
                      reason, c->reason);
        }
    }
}

Test(envelope, refuses_a_null_envelope)
{
    char reason[RELAIS_REASON_MAX] = "";
    cr_expect_eq(relais_envelope_validate(NULL, NOW, 64, reason, sizeof reason), RELAIS_EINVALID);
    cr_expect(strstr(reason, "envelope") != NULL);
}

Test(envelope, validates_without_a_reason_buffer)
{
    struct fixture f;
    fixture_init(&f);
    cr_expect_eq(relais_envelope_validate(&f.env, NOW, 64, NULL, 0), 0);
    id_3_bytes(&f);
    cr_expect_eq(relais_envelope_validate(&f.env, NOW, 64, NULL, 0), RELAIS_EINVALID);
}

/* ---- Body names -------------------------------------------------------------------- */

static const struct {
    int body_case;
    const char *name;
} bodies[] = {
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, "appointment_request"},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, "appointment_offer"},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE, "appointment_decline"},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK, "appointment_book"},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM, "appointment_confirm"},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME, "appointment_outcome"},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL, "appointment_cancel"},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST, "preadmission_request"},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION, "preadmission_decision"},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE, "preadmission_choice"},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL, "preadmission_cancel"},
    {RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE, "admission_notice"},
    {RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION, "discharge_notification"},
    {RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED, "discharge_cancelled"},
    {RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST, "care_task_request"},
    {RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE, "care_task_update"},
    {RELAIS__V1__ENVELOPE__BODY_NOTE, "note"},
    {RELAIS__V1__ENVELOPE__BODY_ESCALATION, "escalation"},
};
#define N_BODIES (sizeof bodies / sizeof bodies[0])

Test(envelope, names_every_body_case_as_the_schema_does_and_back)
{
    for (size_t i = 0; i < N_BODIES; i++) {
        cr_expect_str_eq(relais_body_name(bodies[i].body_case), bodies[i].name);
        cr_expect_eq(relais_body_from_name(bodies[i].name), bodies[i].body_case, "%s",
                     bodies[i].name);
    }
}

Test(envelope, the_body_table_covers_every_case_of_the_schema)
{
    const ProtobufCMessageDescriptor *d = &relais__v1__envelope__descriptor;
    size_t in_oneof = 0;
    for (unsigned i = 0; i < d->n_fields; i++) {
        if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) in_oneof++;
    }
    cr_expect_eq(in_oneof, N_BODIES, "the schema has %zu body cases, the test %zu", in_oneof,
                 N_BODIES);
}

Test(envelope, accepts_every_body_case_when_its_message_is_set)
{
    Relais__V1__Note any_message; /* validation only checks that the pointer is set */
    relais__v1__note__init(&any_message);
    for (size_t i = 0; i < N_BODIES; i++) {
        struct fixture f;
        char reason[RELAIS_REASON_MAX] = "";
        fixture_init(&f);
        f.env.body_case = bodies[i].body_case;
        f.env.note = &any_message;
        cr_expect_eq(relais_envelope_validate(&f.env, NOW, 64, reason, sizeof reason), 0, "%s: %s",
                     bodies[i].name, reason);
    }
}

Test(envelope, names_no_body_none_and_anything_else_unknown)
{
    cr_expect_str_eq(relais_body_name(RELAIS__V1__ENVELOPE__BODY__NOT_SET), "none");
    cr_expect_str_eq(relais_body_name(99), "unknown");
    cr_expect_str_eq(relais_body_name(-1), "unknown");
    cr_expect_str_eq(relais_body_name(9), "unknown", "field 9 (priority) is not a body");
}

Test(envelope, finds_no_body_for_names_outside_the_oneof)
{
    static const char *const not_bodies[] = {"none", "unknown",  "Note", "NOTE",
                                             "",     "priority", "to",   "appointment_request "};
    for (size_t i = 0; i < sizeof not_bodies / sizeof not_bodies[0]; i++) {
        cr_expect_eq(relais_body_from_name(not_bodies[i]), -1, "'%s'", not_bodies[i]);
    }
    cr_expect_eq(relais_body_from_name(NULL), -1);
}
