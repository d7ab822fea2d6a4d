/*
 * Unit tests of the authorisation rules (broker/acl.c) against PROTOCOL.md section 6.
 *
 * The expected table below is written again from the protocol, not copied from acl.c, so
 * that a slip in either shows. Every body type is tried with every role as sender and as
 * recipient; then the cases the table does not show: reply-only with and without
 * participation, on_behalf_of, unknown recipients and pools, and a territory's overrides.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "acl.h"
#include "directory.h"
#include "relais/codec.h"
#include "relais/errors.h"

#define T "cpts-test"

/* One agent per role, plus a GP's assistant and a nurse that (oddly) acts for a GP. */
static const char *const agents_yaml =
    "territory: " T "\n"
    "production: false\n"
    "agents:\n"
    "  - {address: 'rpps:10000000001', role: gp, pools: ['service:gp@" T "']}\n"
    "  - {address: 'staff:claire@cabinet', role: medical_assistant,"
    "     acts_for: ['rpps:10000000001']}\n"
    "  - {address: 'rpps:10000000003', role: nurse, pools: ['service:nurse@" T "'],"
    "     acts_for: ['rpps:10000000001']}\n"
    "  - {address: 'rpps:10000000004', role: physiotherapist,"
    "     pools: ['service:physiotherapist@" T "']}\n"
    "  - {address: 'rpps:10000000005', role: specialist, specialty: cardiology,"
    "     pools: ['service:specialist/cardiology@" T "']}\n"
    "  - {address: 'finess:350000014', role: hospital, pools: ['service:hospital@" T "']}\n"
    "  - {address: 'finess:350000022', role: facility}\n"
    "  - {address: 'staff:coord@" T "', role: coordinator,"
    "     pools: ['service:coordinator@" T "']}\n"
    "  - {address: 'app:gateway', role: app}\n";

/* The address of the agent of each role, in dir_role_t order. */
static const char *const by_role[DIR_ROLE_COUNT] = {
    "rpps:10000000001", "staff:claire@cabinet", "rpps:10000000003",
    "rpps:10000000004", "rpps:10000000005",     "finess:350000014",
    "finess:350000022", "staff:coord@" T,       "app:gateway",
};

static directory_t *dir;

static void setup(void)
{
    char err[512] = "";
    int rc = directory_parse(agents_yaml, strlen(agents_yaml), "acl.yaml", &dir, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
}

static void teardown(void)
{
    directory_destroy(&dir);
}

static bool everyone(void *ud, const char *address)
{
    (void)ud;
    (void)address;
    return true;
}

/* ud is a NULL-terminated list of the conversation's participants. */
static bool listed(void *ud, const char *address)
{
    for (const char *const *p = ud; *p != NULL; p++)
        if (strcmp(*p, address) == 0) return true;
    return false;
}

static int check(const directory_t *d, const char *sender, int body, const char *obo,
                 const char *to, bool (*part)(void *, const char *), void *ud, char *reason)
{
    const char *const list[1] = {to};
    acl_request_t r = {.dir = d,
                       .sender = directory_lookup(d, sender),
                       .body_case = body,
                       .on_behalf_of = obo,
                       .to = list,
                       .n_to = 1,
                       .is_participant = part,
                       .ud = ud};
    return acl_check(&r, reason, RELAIS_REASON_MAX);
}

#define R(role) (1u << DIR_ROLE_##role)
#define ALL_ROLES ((1u << DIR_ROLE_COUNT) - 1)
#define PARTICIPANTS 0u /* a reply-only side: no role passes on its role alone */

struct expected {
    int body;
    uint32_t senders;    /* roles allowed to send, participation aside */
    uint32_t recipients; /* roles allowed to receive, participation aside */
};

/* PROTOCOL.md section 6, row by row. */
static const struct expected section6[] = {
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST,
     R(GP) | R(MEDICAL_ASSISTANT) | R(SPECIALIST) | R(HOSPITAL) | R(COORDINATOR),
     R(NURSE) | R(PHYSIOTHERAPIST) | R(SPECIALIST) | R(GP)},
    {RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST,
     R(GP) | R(MEDICAL_ASSISTANT) | R(SPECIALIST) | R(HOSPITAL) | R(COORDINATOR),
     R(NURSE) | R(PHYSIOTHERAPIST) | R(SPECIALIST) | R(GP)},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, PARTICIPANTS, PARTICIPANTS},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE, PARTICIPANTS, PARTICIPANTS},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM, PARTICIPANTS, PARTICIPANTS},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME, PARTICIPANTS, PARTICIPANTS},
    {RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE, PARTICIPANTS, PARTICIPANTS},
    {RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION, R(HOSPITAL) | R(FACILITY), ALL_ROLES},
    {RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED, R(HOSPITAL) | R(FACILITY), ALL_ROLES},
    {RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE, R(HOSPITAL) | R(FACILITY), ALL_ROLES},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION, R(HOSPITAL) | R(FACILITY), ALL_ROLES},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST, R(HOSPITAL) | R(GP) | R(MEDICAL_ASSISTANT),
     R(FACILITY) | R(HOSPITAL)},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE, R(HOSPITAL) | R(GP) | R(MEDICAL_ASSISTANT),
     R(FACILITY) | R(HOSPITAL)},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL, R(HOSPITAL) | R(GP) | R(MEDICAL_ASSISTANT),
     R(FACILITY) | R(HOSPITAL)},
    {RELAIS__V1__ENVELOPE__BODY_ESCALATION, ALL_ROLES, R(COORDINATOR)},
    {RELAIS__V1__ENVELOPE__BODY_NOTE, PARTICIPANTS, PARTICIPANTS},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL, PARTICIPANTS, PARTICIPANTS},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK, PARTICIPANTS, PARTICIPANTS},
};

#define N_BODIES (sizeof section6 / sizeof section6[0])

/*
 * A recipient the row admits other than the sender itself, so that a sender test judges the
 * sender only; for a coordinator escalating, the coordinators' pool.
 */
static const char *allowed_recipient(const struct expected *e, int sender_role)
{
    for (int r = 0; r < DIR_ROLE_COUNT; r++)
        if (r != sender_role && (e->recipients & (1u << r))) return by_role[r];
    if (e->recipients != PARTICIPANTS) return "service:coordinator@" T;
    return by_role[sender_role == DIR_ROLE_GP ? DIR_ROLE_NURSE : DIR_ROLE_GP];
}

TestSuite(acl, .init = setup, .fini = teardown);

Test(acl, every_body_type_has_a_rule_and_only_those_do)
{
    cr_expect_eq(N_BODIES, 18, "the schema has 18 body types");
    acl_rule_t rule;
    for (size_t i = 0; i < N_BODIES; i++)
        cr_expect_eq(acl_rule(NULL, section6[i].body, &rule), 0, "%s has a rule",
                     relais_body_name(section6[i].body));
    cr_expect_eq(acl_rule(NULL, RELAIS__V1__ENVELOPE__BODY__NOT_SET, &rule), RELAIS_EINVALID);
    char reason[RELAIS_REASON_MAX];
    cr_expect_eq(
        check(dir, by_role[DIR_ROLE_GP], 0, NULL, by_role[DIR_ROLE_NURSE], everyone, NULL, reason),
        RELAIS_EFORBIDDEN, "a message without a body type is refused");
}

Test(acl, senders_by_role_for_every_body_type)
{
    for (size_t i = 0; i < N_BODIES; i++) {
        const struct expected *e = &section6[i];
        const char *body = relais_body_name(e->body);
        for (int role = 0; role < DIR_ROLE_COUNT; role++) {
            char reason[RELAIS_REASON_MAX];
            const char *to = allowed_recipient(e, role);
            /* Participation is tested on its own below; here nobody participates. */
            int rc = check(dir, by_role[role], e->body, NULL, to, NULL, NULL, reason);
            bool allowed = (e->senders & (1u << role)) != 0;
            cr_expect_eq(rc, allowed ? 0 : RELAIS_EFORBIDDEN, "%s from a %s: rc %d (%s)", body,
                         dir_role_name((dir_role_t)role), rc, reason);
            if (!allowed) {
                char rule[64];
                snprintf(rule, sizeof rule, "rule %s: ", body);
                cr_expect(strncmp(reason, rule, strlen(rule)) == 0,
                          "%s from a %s: the reason names the rule: %s", body,
                          dir_role_name((dir_role_t)role), reason);
            }
        }
    }
}

Test(acl, recipients_by_role_and_by_pool_for_every_body_type)
{
    for (size_t i = 0; i < N_BODIES; i++) {
        const struct expected *e = &section6[i];
        if (e->recipients == PARTICIPANTS) continue;
        const char *body = relais_body_name(e->body);
        /* A sender the row admits. */
        const char *from = NULL;
        for (int r = 0; r < DIR_ROLE_COUNT && from == NULL; r++)
            if (e->senders & (1u << r)) from = by_role[r];
        for (int role = 0; role < DIR_ROLE_COUNT; role++) {
            char reason[RELAIS_REASON_MAX], pool[128];
            bool allowed = (e->recipients & (1u << role)) != 0;
            int rc = check(dir, from, e->body, NULL, by_role[role], NULL, NULL, reason);
            cr_expect_eq(rc, allowed ? 0 : RELAIS_EFORBIDDEN, "%s to a %s: rc %d (%s)", body,
                         dir_role_name((dir_role_t)role), rc, reason);
            if (role == DIR_ROLE_SPECIALIST)
                snprintf(pool, sizeof pool, "service:specialist/cardiology@" T);
            else
                snprintf(pool, sizeof pool, "service:%s@" T, dir_role_name((dir_role_t)role));
            if (directory_pool_members(dir, pool, NULL, NULL) == 0) continue;
            rc = check(dir, from, e->body, NULL, pool, NULL, NULL, reason);
            cr_expect_eq(rc, allowed ? 0 : RELAIS_EFORBIDDEN, "%s to %s: rc %d (%s)", body, pool,
                         rc, reason);
        }
    }
}

Test(acl, reply_only_bodies_need_the_sender_and_the_recipients_in_the_conversation)
{
    const char *nurse = by_role[DIR_ROLE_NURSE], *ma = by_role[DIR_ROLE_MEDICAL_ASSISTANT];
    const char *conversation[] = {nurse, ma, NULL};
    char reason[RELAIS_REASON_MAX];
    for (size_t i = 0; i < N_BODIES; i++) {
        const struct expected *e = &section6[i];
        if (e->senders != PARTICIPANTS) continue;
        const char *body = relais_body_name(e->body);
        cr_expect_eq(check(dir, nurse, e->body, NULL, ma, listed, conversation, reason), 0,
                     "%s between participants: %s", body, reason);
        cr_expect_eq(check(dir, nurse, e->body, NULL, ma, NULL, NULL, reason), RELAIS_EFORBIDDEN,
                     "%s outside any conversation", body);
        cr_expect_eq(check(dir, by_role[DIR_ROLE_PHYSIOTHERAPIST], e->body, NULL, ma, listed,
                           conversation, reason),
                     RELAIS_EFORBIDDEN, "%s from a non-participant", body);
        cr_expect_eq(
            check(dir, nurse, e->body, NULL, by_role[DIR_ROLE_GP], listed, conversation, reason),
            RELAIS_EFORBIDDEN, "%s to a non-participant", body);
    }
    check(dir, "staff:claire@cabinet", RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, NULL, nurse,
          listed, (void *)(const char *[]){"rpps:10000000003", NULL}, reason);
    cr_expect_str_eq(reason, "rule appointment_offer: reply-only — staff:claire@cabinet was not "
                             "delivered into this conversation");
    check(dir, nurse, RELAIS__V1__ENVELOPE__BODY_NOTE, NULL, by_role[DIR_ROLE_GP], listed,
          conversation, reason);
    cr_expect_str_eq(reason, "rule note: reply-only — recipient rpps:10000000001 is not a "
                             "participant of this conversation");
}

Test(acl, an_assistant_acting_for_a_participant_gp_may_answer_in_her_conversation)
{
    const char *conversation[] = {"rpps:10000000001", "rpps:10000000003", NULL};
    char reason[RELAIS_REASON_MAX];
    cr_expect_eq(check(dir, "staff:claire@cabinet", RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK,
                       "rpps:10000000001", "rpps:10000000003", listed, conversation, reason),
                 0, "%s", reason);
    cr_expect_eq(check(dir, "staff:claire@cabinet", RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK,
                       NULL, "rpps:10000000003", listed, conversation, reason),
                 RELAIS_EFORBIDDEN, "not on her own account");
}

Test(acl, on_behalf_of_must_be_allowed_by_the_directory)
{
    char reason[RELAIS_REASON_MAX];
    int body = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST;
    cr_expect_eq(check(dir, "staff:claire@cabinet", body, "rpps:10000000001", "rpps:10000000003",
                       NULL, NULL, reason),
                 0, "%s", reason);
    cr_expect_eq(check(dir, "staff:claire@cabinet", body, "rpps:10000000005", "rpps:10000000003",
                       NULL, NULL, reason),
                 RELAIS_EFORBIDDEN);
    cr_expect_str_eq(reason, "rule on_behalf_of: staff:claire@cabinet may not act for "
                             "rpps:10000000005 (not in its acts_for)");
    cr_expect_eq(check(dir, "rpps:10000000001", body, "rpps:10000000001", "rpps:10000000003", NULL,
                       NULL, reason),
                 0, "acting for oneself is acting: %s", reason);
    cr_expect_eq(check(dir, "rpps:10000000001", body, "", "rpps:10000000003", NULL, NULL, reason),
                 0, "an empty on_behalf_of is none");
}

Test(acl, the_sender_role_is_its_own_when_acting_on_behalf_of_a_gp)
{
    char reason[RELAIS_REASON_MAX];
    /* The nurse may act for the GP, but a nurse may not send a request, whoever it is for. */
    cr_expect_eq(check(dir, "rpps:10000000003", RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST,
                       "rpps:10000000001", "rpps:10000000004", NULL, NULL, reason),
                 RELAIS_EFORBIDDEN);
    cr_expect_str_eq(reason, "rule appointment_request: senders are gp, medical_assistant, "
                             "specialist, hospital, coordinator; rpps:10000000003 is a nurse");
    cr_expect_eq(check(dir, "staff:claire@cabinet", RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST,
                       "rpps:10000000001", "finess:350000022", NULL, NULL, reason),
                 0, "the medical assistant is listed for preadmissions: %s", reason);
}

Test(acl, reasons_name_the_rule_and_the_role)
{
    char reason[RELAIS_REASON_MAX];
    check(dir, "rpps:10000000003", RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION, NULL,
          "rpps:10000000001", NULL, NULL, reason);
    cr_expect_str_eq(reason, "rule discharge_notification: senders are hospital, facility; "
                             "rpps:10000000003 is a nurse");
    check(dir, "rpps:10000000001", RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST, NULL,
          "service:coordinator@" T, NULL, NULL, reason);
    cr_expect_str_eq(reason, "rule appointment_request: recipients are gp, nurse, "
                             "physiotherapist, specialist and their pools; service:coordinator@"
                             "cpts-test is a pool of coordinator");
}

Test(acl, unknown_recipients_are_named_and_win_over_forbidden_ones)
{
    char reason[RELAIS_REASON_MAX];
    int body = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST;
    const char *gp = "rpps:10000000001";
    cr_expect_eq(check(dir, gp, body, NULL, "rpps:19999999999", NULL, NULL, reason),
                 RELAIS_EUNKNOWNRCPT);
    cr_expect_str_eq(reason, "recipient rpps:19999999999: not in the directory of cpts-test");
    cr_expect_eq(check(dir, gp, body, NULL, "service:nurse@cpts-other", NULL, NULL, reason),
                 RELAIS_EUNKNOWNRCPT);
    cr_expect(strstr(reason, "federation is not supported") != NULL, "%s", reason);
    cr_expect_eq(
        check(dir, gp, body, NULL, "service:specialist/dermatology@" T, NULL, NULL, reason),
        RELAIS_EUNKNOWNRCPT, "a pool nobody belongs to");
    cr_expect(strstr(reason, "no agent of the directory") != NULL, "%s", reason);
    cr_expect_eq(check(dir, gp, body, NULL, "not an address", NULL, NULL, reason),
                 RELAIS_EUNKNOWNRCPT);

    const char *to[] = {"finess:350000014", "rpps:10000000003", "rpps:19999999999"};
    acl_request_t r = {
        .dir = dir, .sender = directory_lookup(dir, gp), .body_case = body, .to = to, .n_to = 3};
    cr_expect_eq(acl_check(&r, reason, sizeof reason), RELAIS_EUNKNOWNRCPT,
                 "the forbidden hospital comes first, the unknown address still wins: %s", reason);
    r.n_to = 2;
    cr_expect_eq(acl_check(&r, reason, sizeof reason), RELAIS_EFORBIDDEN, "%s", reason);
    to[0] = "service:nurse@" T;
    cr_expect_eq(acl_check(&r, reason, sizeof reason), 0, "%s", reason);
    cr_expect_str_empty(reason, "the reason is emptied on success");
    r.n_to = 0;
    cr_expect_eq(acl_check(&r, reason, sizeof reason), RELAIS_EINVALID);
    r.n_to = 1;
    r.sender = NULL;
    cr_expect_eq(acl_check(&r, reason, sizeof reason), RELAIS_EFORBIDDEN, "nobody sends as no one");
}

Test(acl, a_territory_overrides_the_defaults_from_its_directory)
{
    static const char yaml[] = "territory: " T "\nproduction: false\n"
                               "acl:\n"
                               "  note: { senders: [any], recipients: [gp] }\n"
                               "  escalation: { senders: [nurse] }\n"
                               "  discharge_notification: { senders: [] }\n"
                               "  appointment_offer: { senders: [participants, coordinator] }\n"
                               "agents:\n"
                               "  - {address: 'rpps:10000000001', role: gp}\n"
                               "  - {address: 'rpps:10000000003', role: nurse}\n"
                               "  - {address: 'rpps:10000000004', role: physiotherapist}\n"
                               "  - {address: 'finess:350000014', role: hospital}\n"
                               "  - {address: 'staff:coord@" T "', role: coordinator}\n";
    directory_t *d = NULL;
    char err[512], reason[RELAIS_REASON_MAX];
    cr_assert_eq(directory_parse(yaml, strlen(yaml), "o.yaml", &d, err, sizeof err), 0, "%s", err);
    int note = RELAIS__V1__ENVELOPE__BODY_NOTE;
    cr_expect_eq(check(d, "rpps:10000000003", note, NULL, "rpps:10000000001", NULL, NULL, reason),
                 0, "widened: a note outside any conversation, to a GP: %s", reason);
    cr_expect_eq(
        check(d, "rpps:10000000003", note, NULL, "rpps:10000000004", everyone, NULL, reason),
        RELAIS_EFORBIDDEN, "narrowed: participants are no longer recipients");
    int esc = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    cr_expect_eq(check(d, "rpps:10000000001", esc, NULL, "staff:coord@" T, NULL, NULL, reason),
                 RELAIS_EFORBIDDEN, "only nurses escalate here");
    cr_expect_eq(check(d, "rpps:10000000003", esc, NULL, "staff:coord@" T, NULL, NULL, reason), 0,
                 "recipients keep the default, the coordinator: %s", reason);
    cr_expect_eq(check(d, "rpps:10000000003", esc, NULL, "rpps:10000000001", NULL, NULL, reason),
                 RELAIS_EFORBIDDEN, "and only the coordinator");
    cr_expect_eq(check(d, "finess:350000014", RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION,
                       NULL, "rpps:10000000001", NULL, NULL, reason),
                 RELAIS_EFORBIDDEN);
    cr_expect_str_eq(reason, "rule discharge_notification: nobody may send it in cpts-test");
    int offer = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER;
    const char *conversation[] = {"rpps:10000000001", NULL};
    cr_expect_eq(
        check(d, "staff:coord@" T, offer, NULL, "rpps:10000000001", listed, conversation, reason),
        0, "the coordinator joins any conversation: %s", reason);
    cr_expect_eq(
        check(d, "rpps:10000000004", offer, NULL, "rpps:10000000001", listed, conversation, reason),
        RELAIS_EFORBIDDEN);
    cr_expect_str_eq(reason, "rule appointment_offer: senders are participants of the "
                             "conversation, coordinator; rpps:10000000004 is a physiotherapist "
                             "and was not delivered into this conversation");
    acl_rule_t rule;
    cr_assert_eq(acl_rule(d, note, &rule), 0);
    char set[128];
    cr_expect_str_eq(acl_set_format(&rule.senders, false, set, sizeof set),
                     "anyone in the directory");
    cr_expect_str_eq(acl_set_format(&rule.recipients, true, set, sizeof set), "gp and their pools");
    directory_destroy(&d);
}
