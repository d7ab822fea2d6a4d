/*
 * Writes the seed corpora of the fuzz targets: tests/fuzz/corpus/{frame,envelope,address}.
 *
 *   make_seeds OUTDIR      (from the repository: make_seeds tests/fuzz/corpus)
 *
 * A fuzzer starting from valid inputs reaches the deep checks (UTF-8 of a nested string,
 * the fourth recipient's address) in seconds instead of hours. Messages are filled from the
 * protobuf-c descriptors rather than by hand: every field of every message gets a plausible
 * value, so each frame kind and each body type of the schema has a seed with all its fields
 * present, and a kind or body added to the schema gets one without touching this file.
 * Envelopes are valid as submitted (real addresses, 16-byte ids, a deadline in the future);
 * the edge cases next to them each break or stretch one rule (64 and 65 recipients, the
 * longest address, invalid UTF-8, a truncated frame, two kinds in one frame, …).
 *
 * File names say what each seed is; regenerating overwrites them and leaves alone the files
 * the generator does not write (crash inputs kept as regressions). The output is
 * deterministic, so the committed corpus changes only when this file or the schema does.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "relais/codec.h"

/* The generator's state: where seeds go, and every block it allocated (freed at the end). */
struct gen {
    const char *outdir;
    void **blocks;
    size_t n_blocks, cap_blocks;
    unsigned written;
    bool failed;
};

static _Noreturn void out_of_memory(void)
{
    fprintf(stderr, "make_seeds: out of memory\n");
    exit(1);
}

static void *gen_alloc(struct gen *g, size_t size)
{
    if (g->n_blocks == g->cap_blocks) {
        size_t cap = g->cap_blocks ? 2 * g->cap_blocks : 64;
        void **blocks = realloc(g->blocks, cap * sizeof *blocks);
        if (blocks == NULL) out_of_memory();
        g->blocks = blocks;
        g->cap_blocks = cap;
    }
    void *p = calloc(1, size ? size : 1);
    if (p == NULL) out_of_memory();
    g->blocks[g->n_blocks++] = p;
    return p;
}

static char *gen_strdup(struct gen *g, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = gen_alloc(g, n);
    memcpy(p, s, n);
    return p;
}

static void gen_free_all(struct gen *g)
{
    for (size_t i = 0; i < g->n_blocks; i++) free(g->blocks[i]);
    free(g->blocks);
    g->blocks = NULL;
    g->n_blocks = g->cap_blocks = 0;
}

static void write_seed(struct gen *g, const char *target, const char *name, const void *data,
                       size_t len)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", g->outdir, target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
        g->failed = true;
        return;
    }
    snprintf(path, sizeof path, "%s/%s/%s", g->outdir, target, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || (len > 0 && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        fprintf(stderr, "make_seeds: %s: %s\n", path, strerror(errno));
        g->failed = true;
        return;
    }
    g->written++;
}

/* Packs any message into an arena buffer. */
static uint8_t *pack_msg(struct gen *g, const ProtobufCMessage *msg, size_t *len)
{
    *len = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = gen_alloc(g, *len);
    protobuf_c_message_pack(msg, buf);
    return buf;
}

static void write_msg(struct gen *g, const char *target, const char *name,
                      const ProtobufCMessage *msg)
{
    size_t len;
    uint8_t *buf = pack_msg(g, msg, &len);
    write_seed(g, target, name, buf, len);
}

/* ---- Filling messages from their descriptors --------------------------------------- */

static const uint8_t SAMPLE_ID[RELAIS_MESSAGE_ID_LEN] = {
    0x01, 0x8c, 0x2e, 0x5a, 0x7b, 0x10, 0x70, 0x00, 0x80, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66};

/* Plausible text for a string field, by name: addresses where the schema expects one. */
static const char *sample_text(const char *field, size_t index)
{
    static const struct {
        const char *field;
        const char *values[2];
    } samples[] = {
        {"practitioner", {"rpps:10101234567", "rpps:10009876543"}},
        {"facility", {"finess:350005179", "finess:2A0000017"}},
        {"care_team", {"rpps:10101234567", "service:nurse/wound-care@cpts-rennes-nord"}},
        {"responsible", {"service:gp@cpts-rennes-nord", NULL}},
        {"recipient", {"rpps:10101234567", NULL}},
        {"claimed_by", {"staff:m.durand@cabinet-saint-malo", NULL}},
        {"address", {"app:dossier-patient", NULL}},
        {"roles", {"gp", "coordinator"}},
        {"ins_matricule", {"255081416802538", NULL}},
        {"ins_oid", {"1.2.250.1.213.1.4.8", NULL}},
        {"birth_date", {"1955-08-14", NULL}},
        {"family_name", {"Lefèvre", NULL}},
        {"given_names", {"Anne-Marie", "Hélène"}},
        {"media_type", {"application/pdf", NULL}},
        {"location", {"https://dmp.example.fr/documents/42", NULL}},
        {"software", {"relais-agent/0.1.0", NULL}},
        {"requested_role", {"nurse", NULL}},
        {"role", {"physiotherapist", NULL}},
        {"specialty", {"cardiology", NULL}},
        {"original_body", {"appointment_request", NULL}},
        {"programme", {"heart-failure", NULL}},
        {"text", {"Pansement à refaire mardi ; patient prévenu.", NULL}},
    };
    for (size_t i = 0; i < sizeof samples / sizeof samples[0]; i++) {
        if (strcmp(samples[i].field, field) == 0) {
            const char *v = samples[i].values[index % 2];
            return v != NULL ? v : samples[i].values[0];
        }
    }
    return NULL;
}

static void fill(struct gen *g, ProtobufCMessage *msg, int depth);
static Relais__V1__Envelope *make_envelope(struct gen *g, int body_case);

static ProtobufCMessage *new_message(struct gen *g, const ProtobufCMessageDescriptor *d, int depth)
{
    if (d == &relais__v1__envelope__descriptor) {
        return &make_envelope(g, RELAIS__V1__ENVELOPE__BODY_NOTE)->base;
    }
    ProtobufCMessage *m = gen_alloc(g, d->sizeof_message);
    d->message_init(m);
    fill(g, m, depth);
    return m;
}

/* Writes the index-th sample value of field f into the storage at slot. */
static void sample_value(struct gen *g, const ProtobufCFieldDescriptor *f, void *slot, size_t index,
                         int depth)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_ENUM: {
        const ProtobufCEnumDescriptor *e = f->descriptor;
        *(int32_t *)slot = e->values[e->n_values - 1 - index % e->n_values].value;
        break;
    }
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        *(int32_t *)slot = 7 + (int32_t)index;
        break;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        *(uint32_t *)slot = strcmp(f->name, "protocol_version") == 0 ? RELAIS_PROTOCOL_VERSION
                            : strstr(f->name, "bytes") != NULL       ? 1048576
                                                                     : 32;
        break;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        *(int64_t *)slot = strstr(f->name, "_ms") != NULL ? INT64_C(1800000000000) + (int64_t)index
                                                          : 7 + (int64_t)index;
        break;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        *(uint64_t *)slot = 42 + index;
        break;
    case PROTOBUF_C_TYPE_FLOAT:
        *(float *)slot = 1.5f;
        break;
    case PROTOBUF_C_TYPE_DOUBLE:
        *(double *)slot = 1.5;
        break;
    case PROTOBUF_C_TYPE_BOOL:
        *(protobuf_c_boolean *)slot = 1;
        break;
    case PROTOBUF_C_TYPE_STRING: {
        const char *text = sample_text(f->name, index);
        char buf[96];
        if (text == NULL) {
            snprintf(buf, sizeof buf, "%s-%zu", f->name, index + 1);
            text = buf;
        }
        *(char **)slot = gen_strdup(g, text);
        break;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        b->len = strcmp(f->name, "sha256") == 0 ? 32 : RELAIS_MESSAGE_ID_LEN;
        b->data = gen_alloc(g, b->len);
        for (size_t i = 0; i < b->len; i++) b->data[i] = SAMPLE_ID[i % sizeof SAMPLE_ID] ^ index;
        break;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        *(ProtobufCMessage **)slot = new_message(g, f->descriptor, depth + 1);
        break;
    }
}

static size_t field_size(const ProtobufCFieldDescriptor *f)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
    case PROTOBUF_C_TYPE_DOUBLE:
        return 8;
    case PROTOBUF_C_TYPE_STRING:
    case PROTOBUF_C_TYPE_MESSAGE:
        return sizeof(void *);
    case PROTOBUF_C_TYPE_BYTES:
        return sizeof(ProtobufCBinaryData);
    case PROTOBUF_C_TYPE_BOOL:
        return sizeof(protobuf_c_boolean);
    default:
        return 4;
    }
}

/* Sets member f of its oneof, with a sample value. */
static void set_member(struct gen *g, ProtobufCMessage *msg, const ProtobufCFieldDescriptor *f,
                       int depth)
{
    char *base = (char *)msg;
    *(uint32_t *)(base + f->quantifier_offset) = f->id;
    sample_value(g, f, base + f->offset, 0, depth);
}

/*
 * Gives every field of msg a sample value: repeated fields two entries, each oneof its first
 * member (callers choose another with set_member). Nesting stops at a depth the schema
 * never reaches; it is only a guard against a recursive message added later.
 */
static void fill(struct gen *g, ProtobufCMessage *msg, int depth)
{
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    char *base = (char *)msg;
    if (depth > 6) return;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            if (*(uint32_t *)(base + f->quantifier_offset) == 0) set_member(g, msg, f, depth);
            continue;
        }
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = 2, size = field_size(f);
            char *items = gen_alloc(g, n * size);
            for (size_t k = 0; k < n; k++) sample_value(g, f, items + k * size, k, depth);
            *(size_t *)(base + f->quantifier_offset) = n;
            *(void **)(base + f->offset) = items;
        } else {
            sample_value(g, f, base + f->offset, 0, depth);
        }
    }
}

/* ---- Envelopes ------------------------------------------------------------------------ */

static char *TO_DEFAULT[] = {"service:nurse/wound-care@cpts-rennes-nord", "rpps:10101234567"};

/* A valid envelope as an agent submits it (no sender, no accepted_at), with body_case. */
static Relais__V1__Envelope *make_envelope(struct gen *g, int body_case)
{
    Relais__V1__Envelope *env = gen_alloc(g, sizeof *env);
    relais__v1__envelope__init(env);
    const ProtobufCFieldDescriptor *body =
        protobuf_c_message_descriptor_get_field(&relais__v1__envelope__descriptor, body_case);
    set_member(g, &env->base, body, 0);
    fill(g, &env->base, 0);
    env->message_id = (ProtobufCBinaryData){sizeof SAMPLE_ID, (uint8_t *)SAMPLE_ID};
    env->sender = "";
    env->on_behalf_of = "rpps:10009876543";
    env->to = TO_DEFAULT;
    env->n_to = 2;
    env->created_at_ms = INT64_C(1700000000000) - 5000;
    env->expires_at_ms = INT64_C(1800000000000);
    env->accepted_at_ms = 0;
    env->priority = RELAIS__V1__ENVELOPE__PRIORITY__URGENT;
    env->dispatch = RELAIS__V1__ENVELOPE__DISPATCH__ANYCAST;
    return env;
}

/* The Envelope fields that are members of the body oneof, in schema order. */
static size_t body_cases(int *cases, size_t cap)
{
    const ProtobufCMessageDescriptor *d = &relais__v1__envelope__descriptor;
    size_t n = 0;
    for (unsigned i = 0; i < d->n_fields && n < cap; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            f->quantifier_offset == offsetof(Relais__V1__Envelope, body_case)) {
            cases[n++] = (int)f->id;
        }
    }
    return n;
}

/* An address of exactly len bytes: app: and a name of 'a's. */
static char *long_address(struct gen *g, size_t len)
{
    char *s = gen_alloc(g, len + 1);
    memcpy(s, "app:", 4);
    memset(s + 4, 'a', len - 4);
    return s;
}

/* Recipients: n distinct valid addresses of all schemes. */
static char **many_recipients(struct gen *g, size_t n)
{
    char **to = gen_alloc(g, n * sizeof *to);
    for (size_t i = 0; i < n; i++) {
        char buf[64];
        switch (i % 4) {
        case 0:
            snprintf(buf, sizeof buf, "rpps:%011zu", 10100000000 + i);
            break;
        case 1:
            snprintf(buf, sizeof buf, "finess:%09zu", 350000000 + i);
            break;
        case 2:
            snprintf(buf, sizeof buf, "staff:agent-%zu@cpts-rennes-nord", i);
            break;
        default:
            snprintf(buf, sizeof buf, "service:nurse/pool-%zu@cpts-rennes-nord", i);
            break;
        }
        to[i] = gen_strdup(g, buf);
    }
    return to;
}

/* One named variation of a valid envelope, breaking or stretching one rule. */
struct variant {
    const char *name;
    void (*apply)(struct gen *g, Relais__V1__Envelope *env);
};

static void v_max_recipients(struct gen *g, Relais__V1__Envelope *e)
{
    e->to = many_recipients(g, RELAIS_MAX_RECIPIENTS);
    e->n_to = RELAIS_MAX_RECIPIENTS;
}
static void v_too_many_recipients(struct gen *g, Relais__V1__Envelope *e)
{
    e->to = many_recipients(g, RELAIS_MAX_RECIPIENTS + 1);
    e->n_to = RELAIS_MAX_RECIPIENTS + 1;
}
static void v_no_recipient(struct gen *g, Relais__V1__Envelope *e)
{
    e->n_to = 0;
}
static void v_duplicate_recipient(struct gen *g, Relais__V1__Envelope *e)
{
    char **to = gen_alloc(g, 3 * sizeof *to);
    to[0] = "rpps:10101234567";
    to[1] = "app:dossier-patient";
    to[2] = "rpps:10101234567";
    e->to = to;
    e->n_to = 3;
}
static void v_bad_recipient(struct gen *g, Relais__V1__Envelope *e)
{
    char **to = gen_alloc(g, 2 * sizeof *to);
    to[0] = "rpps:10101234567";
    to[1] = "rpps:1010123456";
    e->to = to;
    e->n_to = 2;
}
static void v_longest_addresses(struct gen *g, Relais__V1__Envelope *e)
{
    char **to = gen_alloc(g, 2 * sizeof *to);
    to[0] = long_address(g, RELAIS_ADDRESS_MAX - 1);
    to[1] = long_address(g, RELAIS_ADDRESS_MAX);
    e->to = to;
    e->n_to = 2;
    e->on_behalf_of = long_address(g, RELAIS_ADDRESS_MAX - 1);
}
static void v_bad_on_behalf_of(struct gen *g, Relais__V1__Envelope *e)
{
    e->on_behalf_of = "staff:M.Durand@cabinet";
}
static void v_short_message_id(struct gen *g, Relais__V1__Envelope *e)
{
    e->message_id.len = RELAIS_MESSAGE_ID_LEN - 1;
}
static void v_empty_ids(struct gen *g, Relais__V1__Envelope *e)
{
    e->message_id.len = 0;
    e->conversation_id.len = 0;
    e->in_reply_to.len = 0;
}
static void v_long_conversation_id(struct gen *g, Relais__V1__Envelope *e)
{
    static uint8_t id[RELAIS_MESSAGE_ID_LEN + 1];
    e->conversation_id = (ProtobufCBinaryData){sizeof id, id};
}
static void v_negative_times(struct gen *g, Relais__V1__Envelope *e)
{
    e->created_at_ms = -1;
    e->expires_at_ms = INT64_MIN;
    e->accepted_at_ms = -1;
}
static void v_expired(struct gen *g, Relais__V1__Envelope *e)
{
    e->expires_at_ms = INT64_C(1700000000000) - 1;
}
static void v_no_deadline(struct gen *g, Relais__V1__Envelope *e)
{
    e->expires_at_ms = 0;
    e->created_at_ms = INT64_MAX;
}
static void v_no_body(struct gen *g, Relais__V1__Envelope *e)
{
    e->body_case = RELAIS__V1__ENVELOPE__BODY__NOT_SET;
    e->note = NULL;
}
static void v_stamped(struct gen *g, Relais__V1__Envelope *e)
{
    e->sender = "rpps:10101234567";
    e->accepted_at_ms = INT64_C(1700000000123);
    e->dispatch = RELAIS__V1__ENVELOPE__DISPATCH__OFFER;
}
static void v_bad_utf8(struct gen *g, Relais__V1__Envelope *e)
{
    Relais__V1__Note *note = gen_alloc(g, sizeof *note);
    relais__v1__note__init(note);
    note->text = "bad \xff\xfe, overlong \xc0\xaf, surrogate \xed\xa0\x80, cut \xe2\x82";
    e->body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    e->note = note;
}
static void v_long_text(struct gen *g, Relais__V1__Envelope *e)
{
    Relais__V1__Note *note = gen_alloc(g, sizeof *note);
    relais__v1__note__init(note);
    char *text = gen_alloc(g, 4001);
    for (size_t i = 0; i < 4000; i += 4) memcpy(text + i, i % 8 ? "soin" : "é\xc3\xa0", 4);
    note->text = text;
    e->body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    e->note = note;
}
static void v_minimal(struct gen *g, Relais__V1__Envelope *e)
{
    static char *one[] = {"app:x"};
    Relais__V1__Note *note = gen_alloc(g, sizeof *note);
    relais__v1__note__init(note);
    relais__v1__envelope__init(e);
    e->message_id = (ProtobufCBinaryData){sizeof SAMPLE_ID, (uint8_t *)SAMPLE_ID};
    e->to = one;
    e->n_to = 1;
    e->body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    e->note = note;
}

static const struct variant VARIANTS[] = {
    {"max-recipients", v_max_recipients},
    {"too-many-recipients", v_too_many_recipients},
    {"no-recipient", v_no_recipient},
    {"duplicate-recipient", v_duplicate_recipient},
    {"bad-recipient", v_bad_recipient},
    {"longest-addresses", v_longest_addresses},
    {"bad-on-behalf-of", v_bad_on_behalf_of},
    {"short-message-id", v_short_message_id},
    {"empty-ids", v_empty_ids},
    {"long-conversation-id", v_long_conversation_id},
    {"negative-times", v_negative_times},
    {"expired", v_expired},
    {"no-deadline", v_no_deadline},
    {"no-body", v_no_body},
    {"stamped-offer", v_stamped},
    {"bad-utf8", v_bad_utf8},
    {"long-text", v_long_text},
    {"minimal", v_minimal},
};

/* ---- Frames ----------------------------------------------------------------------------- */

static void write_frame_bytes(struct gen *g, const char *name, const Relais__V1__Frame *frame)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    if (relais_frame_encode(frame, &buf, &len) != 0) {
        fprintf(stderr, "make_seeds: cannot encode frame %s\n", name);
        g->failed = true;
        return;
    }
    write_seed(g, "frame", name, buf, len);
    free(buf);
}

static void write_submit(struct gen *g, const char *name, Relais__V1__Envelope *env)
{
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    Relais__V1__Submit submit = RELAIS__V1__SUBMIT__INIT;
    submit.envelope = env;
    frame.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    frame.submit = &submit;
    write_frame_bytes(g, name, &frame);
}

/* A Deliver as the broker builds it: the envelope stamped, then wrapped by hand. */
static void write_wrapped_deliver(struct gen *g, const char *name, Relais__V1__Envelope *env,
                                  uint32_t attempt, bool offered)
{
    size_t len, stamped_len = 0, wrapped_len = 0;
    uint8_t *packed = pack_msg(g, &env->base, &len);
    uint8_t *stamped = NULL, *wrapped = NULL;
    if (relais_envelope_stamp(packed, len, "staff:m.durand@cabinet-saint-malo",
                              INT64_C(1700000000456), &stamped, &stamped_len) != 0 ||
        relais_deliver_wrap(stamped, stamped_len, attempt, offered, &wrapped, &wrapped_len) != 0) {
        out_of_memory();
    }
    write_seed(g, "frame", name, wrapped, wrapped_len);
    free(stamped);
    free(wrapped);
}

static void frame_seeds(struct gen *g)
{
    const ProtobufCMessageDescriptor *d = &relais__v1__frame__descriptor;
    char name[128];

    /* Each kind with every field set, and each kind empty. */
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
        set_member(g, &frame.base, f, 0);
        snprintf(name, sizeof name, "kind-%s", f->name);
        write_frame_bytes(g, name, &frame);

        const ProtobufCMessageDescriptor *md = f->descriptor;
        ProtobufCMessage *empty = gen_alloc(g, md->sizeof_message);
        md->message_init(empty);
        frame.hello = (Relais__V1__Hello *)empty;
        snprintf(name, sizeof name, "kind-%s-empty", f->name);
        write_frame_bytes(g, name, &frame);
    }

    /* Submit and Deliver with each body type. */
    int cases[64];
    size_t n = body_cases(cases, 64);
    for (size_t i = 0; i < n; i++) {
        Relais__V1__Envelope *env = make_envelope(g, cases[i]);
        snprintf(name, sizeof name, "submit-%s", relais_body_name(cases[i]));
        write_submit(g, name, env);
        snprintf(name, sizeof name, "deliver-%s", relais_body_name(cases[i]));
        write_wrapped_deliver(g, name, env, 1 + (uint32_t)i % 3, i % 2 == 1);
    }

    /* Submit with each envelope variation. */
    for (size_t i = 0; i < sizeof VARIANTS / sizeof VARIANTS[0]; i++) {
        Relais__V1__Envelope *env = make_envelope(g, RELAIS__V1__ENVELOPE__BODY_NOTE);
        VARIANTS[i].apply(g, env);
        snprintf(name, sizeof name, "submit-%s", VARIANTS[i].name);
        write_submit(g, name, env);
    }

    /* Wire-level edge cases, hand-written. */
    /* One line per macro and per seed reads best; clang-format would spread them out. */
    /* clang-format off */
#define RAW(name, literal) {name, literal, sizeof literal - 1}
    static const struct {
        const char *name;
        const char *bytes;
        size_t len;
    } raw[] = {
        RAW("raw-empty", ""),
        RAW("raw-no-kind", "\xf8\x06\x01"),                   /* field 111, a varint */
        RAW("raw-two-kinds", "\x0a\x02\x08\x01\x82\x01\x00"), /* hello, then bye */
        RAW("raw-kind-as-varint", "\x08\x01"),                /* hello sent as a varint */
        RAW("raw-length-past-end", "\x1a\x7f\x0a\x00"),       /* submit claims 127 bytes */
        RAW("raw-group", "\x0b\x0c"),                         /* field 1 as a group */
        RAW("raw-long-varint", "\x62\x0b\x08\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        RAW("raw-bad-tag-varint", "\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01"),
        RAW("raw-field-zero", "\x02\x00"),
        RAW("raw-field-zero-overlong", "\x0a\x03\x80\x00\x00"), /* in hello, tag as 80 00 */
        RAW("raw-hello-nul-in-string", "\x0a\x07\x12\x05\x61\x00\xff\x62\x63"),
        RAW("raw-bye-bad-utf8", "\x82\x01\x04\x0a\x02\xc0\xaf"),
        RAW("raw-credit-twice", "\x62\x02\x08\x05\x62\x02\x08\x07"), /* merged: 7 */
        RAW("raw-submit-empty-envelope", "\x1a\x02\x0a\x00"),
    };
#undef RAW
    /* clang-format on */
    for (size_t i = 0; i < sizeof raw / sizeof raw[0]; i++) {
        write_seed(g, "frame", raw[i].name, raw[i].bytes, raw[i].len);
    }

    /* A valid Submit cut in the middle. */
    Relais__V1__Frame frame = RELAIS__V1__FRAME__INIT;
    Relais__V1__Submit submit = RELAIS__V1__SUBMIT__INIT;
    submit.envelope = make_envelope(g, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST);
    frame.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    frame.submit = &submit;
    size_t len;
    uint8_t *buf = pack_msg(g, &frame.base, &len);
    write_seed(g, "frame", "raw-submit-truncated", buf, len / 2);
}

static void envelope_seeds(struct gen *g)
{
    char name[128];
    int cases[64];
    size_t n = body_cases(cases, 64);
    for (size_t i = 0; i < n; i++) {
        snprintf(name, sizeof name, "body-%s", relais_body_name(cases[i]));
        write_msg(g, "envelope", name, &make_envelope(g, cases[i])->base);
    }
    for (size_t i = 0; i < sizeof VARIANTS / sizeof VARIANTS[0]; i++) {
        Relais__V1__Envelope *env = make_envelope(g, RELAIS__V1__ENVELOPE__BODY_NOTE);
        VARIANTS[i].apply(g, env);
        write_msg(g, "envelope", VARIANTS[i].name, &env->base);
    }
    write_seed(g, "envelope", "raw-empty", "", 0);
    /* Already stamped twice over: the last sender and accepted_at_ms win. */
    /* clang-format off */
    static const uint8_t sender_twice[] = {
        0x0a, 0x10, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, /* message_id */
        0x12, 0x05, 'a', 'p', 'p', ':', 'a',                                 /* sender */
        0x22, 0x05, 'a', 'p', 'p', ':', 'b',                                 /* to */
        0x92, 0x03, 0x00,                                                    /* note, empty */
        0x12, 0x05, 'a', 'p', 'p', ':', 'c',                                 /* sender again */
        0x60, 0x01,                                                          /* accepted_at 1 */
        0x60, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,    /* then -1 */
    };
    /* clang-format on */
    write_seed(g, "envelope", "raw-sender-twice", sender_twice, sizeof sender_twice);
}

static void address_seeds(struct gen *g)
{
    static const struct {
        const char *name;
        const char *text;
    } seeds[] = {
        {"rpps", "rpps:10101234567"},
        {"finess", "finess:350005179"},
        {"finess-corsica-2a", "finess:2A0000017"},
        {"finess-corsica-2b", "finess:2B0000015"},
        {"staff", "staff:m.durand@cabinet-saint-malo"},
        {"service", "service:nurse@cpts-rennes-nord"},
        {"service-specialty", "service:specialist/cardiology@cpts-rennes-nord"},
        {"app", "app:dossier-patient"},
        {"app-name-chars", "app:a.b_c-d0"},
        {"miss-rpps-10-digits", "rpps:1010123456"},
        {"miss-rpps-12-digits", "rpps:101012345678"},
        {"miss-rpps-letter", "rpps:1010123456x"},
        {"miss-finess-8-digits", "finess:35000517"},
        {"miss-finess-corsica-lowercase", "finess:2a0000017"},
        {"miss-finess-corsica-short", "finess:2A000001"},
        {"miss-finess-2c", "finess:2C0000017"},
        {"miss-staff-no-at", "staff:m.durand"},
        {"miss-staff-two-at", "staff:m@durand@cabinet"},
        {"miss-staff-uppercase", "staff:M.Durand@cabinet"},
        {"miss-staff-empty-name", "staff:@cabinet"},
        {"miss-staff-empty-org", "staff:m.durand@"},
        {"miss-service-empty-specialty", "service:nurse/@cpts"},
        {"miss-service-empty-role", "service:/cardiology@cpts"},
        {"miss-service-two-slashes", "service:specialist/cardio/logy@cpts"},
        {"miss-service-no-territory", "service:nurse"},
        {"miss-scheme-uppercase", "RPPS:10101234567"},
        {"miss-scheme-unknown", "mailto:x@y"},
        {"miss-scheme-empty", ":10101234567"},
        {"miss-no-colon", "rpps10101234567"},
        {"miss-nothing-after-colon", "app:"},
        {"miss-second-colon", "app:a:b"},
        {"miss-space", "app:dossier patient"},
        {"miss-tab", "app:\tx"},
        {"miss-utf8", "staff:h\xc3\xa9l\xc3\xa8ne@cabinet"},
        {"miss-control", "app:a\x7f"},
        {"miss-empty", ""},
    };
    for (size_t i = 0; i < sizeof seeds / sizeof seeds[0]; i++) {
        write_seed(g, "address", seeds[i].name, seeds[i].text, strlen(seeds[i].text));
    }

    /* The length limits: the whole address, and each service part at and past its array. */
    char buf[2 * RELAIS_ADDRESS_MAX];
    char *longest = long_address(g, RELAIS_ADDRESS_MAX - 1);
    write_seed(g, "address", "app-longest", longest, strlen(longest));
    char *too_long = long_address(g, RELAIS_ADDRESS_MAX);
    write_seed(g, "address", "miss-app-too-long", too_long, strlen(too_long));
    static const struct {
        const char *name;
        int role, specialty, territory;
    } parts[] = {
        {"service-longest-parts", 63, 63, 100},     {"miss-service-role-64", 64, 0, 10},
        {"miss-service-specialty-64", 10, 64, 10},  {"service-territory-127", 10, 0, 127},
        {"miss-service-territory-128", 10, 0, 128},
    };
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        int n = snprintf(buf, sizeof buf, "service:%.*s%s%.*s@%.*s", parts[i].role, longest + 4,
                         parts[i].specialty ? "/" : "", parts[i].specialty, longest + 4,
                         parts[i].territory, longest + 4);
        write_seed(g, "address", parts[i].name, buf, (size_t)n);
    }
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_seeds OUTDIR   (writes OUTDIR/{frame,envelope,address})\n");
        return 2;
    }
    struct gen g = {.outdir = argv[1]};
    if (mkdir(g.outdir, 0755) != 0 && errno != EEXIST) {
        fprintf(stderr, "make_seeds: %s: %s\n", g.outdir, strerror(errno));
        return 1;
    }
    frame_seeds(&g);
    envelope_seeds(&g);
    address_seeds(&g);
    gen_free_all(&g);
    if (g.failed) return 1;
    printf("make_seeds: %u seeds written under %s\n", g.written, g.outdir);
    return 0;
}
