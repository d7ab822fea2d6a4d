/*
 * Unit tests of the territory directory (broker/directory.c): the example CPTS shipped in
 * deploy/ loads; look-ups by address and key, pools, acts_for, limits and ACL overrides
 * say what the file says; and every way a file can be wrong is refused with the line and
 * the field named, in a table whose rows read as sentences.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "directory.h"
#include "relais/codec.h"
#include "relais/errors.h"

#define K1 "[!Y5NMfh?!!Ez4iBqV&)sbmG^5iLIucG:WN=Ev+]"
#define K2 "kL#1ZD%[4mxx@!-9G@1wS4XOk+*!)OCMoB8UOu<s"
#define K3 "hjq}X^Khy!KtnX%NBDbs@eF&+pBIC[:?jzPq-T>M"

static directory_t *load(const char *yaml)
{
    directory_t *d = NULL;
    char err[512] = "";
    int rc = directory_parse(yaml, strlen(yaml), "test.yaml", &d, err, sizeof err);
    cr_assert_eq(rc, 0, "directory refused: %s", err);
    cr_assert_not_null(d);
    return d;
}

Test(directory, loads_the_example_cpts_shipped_in_deploy)
{
    directory_t *d = NULL;
    char err[512] = "";
    int rc = directory_load(RELAIS_DEMO_DIRECTORY, &d, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    cr_expect_str_eq(directory_territory(d), "cpts-rennes-nord");
    cr_expect_not(directory_production(d), "the demo directory says production: false");
    cr_expect_eq(directory_agent_count(d), 8);
    for (size_t i = 0; i < directory_agent_count(d); i++)
        cr_expect(directory_agent_at(d, i)->has_key, "%s has its key",
                  directory_agent_at(d, i)->address);
    const dir_agent_t *ma = directory_lookup(d, "staff:claire.martin@cabinet-dupont");
    cr_assert_not_null(ma);
    cr_expect_eq(ma->role, DIR_ROLE_MEDICAL_ASSISTANT);
    cr_expect(directory_may_act_for(d, ma, "rpps:10101234564"));
    cr_expect_eq(
        directory_pool_members(d, "service:specialist/cardiology@cpts-rennes-nord", NULL, NULL), 1);
    cr_expect_eq(directory_limits(d).submissions_per_second, 50);
    cr_expect_eq(directory_limits(d).pending_per_mailbox, 100000);
    directory_destroy(&d);
    cr_expect_null(d, "destroy nulls the caller's pointer");
    directory_destroy(&d);
}

Test(directory, looks_agents_up_by_address_and_by_public_key)
{
    directory_t *d = load("territory: t1\n"
                          "agents:\n"
                          "  - address: rpps:10101234567\n"
                          "    name: Dr Jeanne Martin\n"
                          "    role: gp\n"
                          "    public_key: \"" K1 "\"\n"
                          "  - address: finess:350000014\n"
                          "    role: hospital\n"
                          "    public_key: '" K2 "'\n");
    const dir_agent_t *gp = directory_lookup(d, "rpps:10101234567");
    cr_assert_not_null(gp);
    cr_expect_str_eq(gp->name, "Dr Jeanne Martin");
    cr_expect_str_eq(gp->specialty, "");
    cr_expect_str_eq(gp->public_key_z85, K1);
    cr_expect_eq(gp->line, 3);
    uint8_t raw[DIR_KEY_LEN];
    cr_assert_not_null(zmq_z85_decode(raw, K2));
    const dir_agent_t *h = directory_lookup_key(d, raw);
    cr_assert_not_null(h);
    cr_expect_str_eq(h->address, "finess:350000014");
    cr_expect_str_eq(h->name, "", "an absent name is empty, not NULL");
    cr_assert_not_null(zmq_z85_decode(raw, K3));
    cr_expect_null(directory_lookup_key(d, raw), "an unknown key finds nobody");
    cr_expect_null(directory_lookup(d, "rpps:10101234568"));
    cr_expect_null(directory_lookup(d, NULL));
    directory_destroy(&d);
}

Test(directory, a_directory_without_production_line_is_a_production_one_with_default_limits)
{
    directory_t *d = load("territory: t1\nagents: []\n");
    cr_expect(directory_production(d));
    dir_limits_t l = directory_limits(d);
    cr_expect_eq(l.submissions_per_second, DIR_DEFAULT_SUBMISSIONS_PER_SECOND);
    cr_expect_eq(l.sessions_per_key, DIR_DEFAULT_SESSIONS_PER_KEY);
    cr_expect_eq(l.pending_per_mailbox, DIR_DEFAULT_PENDING_PER_MAILBOX);
    cr_expect_eq(directory_agent_count(d), 0);
    cr_expect_eq(directory_pool_count(d), 0);
    directory_destroy(&d);
}

Test(directory, agents_without_a_key_are_allowed_only_outside_production)
{
    directory_t *d = load("territory: t1\nproduction: false\n"
                          "agents:\n  - {address: 'app:gateway', role: app}\n");
    const dir_agent_t *a = directory_lookup(d, "app:gateway");
    cr_assert_not_null(a);
    cr_expect_not(a->has_key);
    cr_expect_str_eq(a->public_key_z85, "");
    directory_destroy(&d);
}

static void collect(const dir_agent_t *member, void *ud)
{
    char *buf = ud;
    strcat(buf, member->address);
    strcat(buf, ";");
}

Test(directory, lists_pool_members_in_file_order_and_knows_whom_an_agent_acts_for)
{
    directory_t *d = load("territory: cpts-x\nproduction: false\n"
                          "limits: {sessions_per_key: 3}\n"
                          "agents:\n"
                          "  - {address: 'rpps:10000000001', role: nurse,"
                          "     pools: ['service:nurse@cpts-x']}\n"
                          "  - {address: 'rpps:10000000002', role: gp}\n"
                          "  - {address: 'rpps:10000000003', role: nurse,"
                          "     pools: ['service:nurse@cpts-x']}\n"
                          "  - {address: 'staff:a@b', role: medical_assistant,"
                          "     acts_for: ['rpps:10000000002']}\n");
    char members[256] = "";
    cr_expect_eq(directory_pool_members(d, "service:nurse@cpts-x", collect, members), 2);
    cr_expect_str_eq(members, "rpps:10000000001;rpps:10000000003;");
    cr_expect_eq(directory_pool_members(d, "service:gp@cpts-x", NULL, NULL), 0,
                 "a pool nobody lists has no members");
    cr_expect_eq(directory_pool_count(d), 1);
    cr_expect_str_eq(directory_pool_at(d, 0), "service:nurse@cpts-x");
    cr_expect_null(directory_pool_at(d, 1));
    const dir_agent_t *ma = directory_lookup(d, "staff:a@b");
    const dir_agent_t *nurse = directory_lookup(d, "rpps:10000000001");
    cr_expect(directory_may_act_for(d, ma, "rpps:10000000002"));
    cr_expect_not(directory_may_act_for(d, ma, "rpps:10000000001"));
    cr_expect_not(directory_may_act_for(d, nurse, "rpps:10000000002"));
    cr_expect(directory_may_act_for(d, nurse, "rpps:10000000001"), "acting for oneself");
    cr_expect_eq(directory_limits(d).sessions_per_key, 3);
    cr_expect_eq(directory_limits(d).submissions_per_second, DIR_DEFAULT_SUBMISSIONS_PER_SECOND,
                 "the limits not named keep their defaults");
    directory_destroy(&d);
}

Test(directory, reads_acl_overrides_per_body_keeping_the_halves_not_named)
{
    directory_t *d = load("territory: t1\nproduction: false\n"
                          "acl:\n"
                          "  note: { senders: [any], recipients: [participants, gp] }\n"
                          "  escalation: { recipients: [coordinator, hospital] }\n"
                          "  appointment_request: { senders: [] }\n"
                          "agents: []\n");
    cr_expect_eq(directory_acl_override_count(d), 3);
    const dir_acl_override_t *o = directory_acl_override(d, RELAIS__V1__ENVELOPE__BODY_NOTE);
    cr_assert_not_null(o);
    cr_expect(o->has_senders && o->senders.any);
    cr_expect(o->has_recipients && o->recipients.participants);
    cr_expect_eq(o->recipients.roles, 1u << DIR_ROLE_GP);
    o = directory_acl_override(d, RELAIS__V1__ENVELOPE__BODY_ESCALATION);
    cr_assert_not_null(o);
    cr_expect_not(o->has_senders);
    cr_expect_eq(o->recipients.roles, (1u << DIR_ROLE_COORDINATOR) | (1u << DIR_ROLE_HOSPITAL));
    o = directory_acl_override(d, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST);
    cr_assert_not_null(o);
    cr_expect(o->has_senders && o->senders.roles == 0 && !o->senders.any);
    cr_expect_null(directory_acl_override(d, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER));
    directory_destroy(&d);
}

Test(directory, role_names_round_trip)
{
    for (int r = 0; r < DIR_ROLE_COUNT; r++) {
        dir_role_t back;
        cr_expect_eq(dir_role_from_name(dir_role_name((dir_role_t)r), &back), 0);
        cr_expect_eq(back, (dir_role_t)r);
    }
    dir_role_t out;
    cr_expect_eq(dir_role_from_name("doctor", &out), RELAIS_EINVALID);
    cr_expect_eq(dir_role_from_name(NULL, &out), RELAIS_EINVALID);
    cr_expect_str_eq(dir_role_name((dir_role_t)99), "unknown");
}

Test(directory, a_missing_file_is_an_errno_with_the_path)
{
    directory_t *d = (directory_t *)1;
    char err[256];
    cr_expect_eq(directory_load("/nonexistent/cpts.yaml", &d, err, sizeof err), -ENOENT);
    cr_expect_null(d);
    cr_expect(strstr(err, "/nonexistent/cpts.yaml") != NULL, "%s", err);
}

struct bad_case {
    const char *sentence;
    const char *yaml;
    unsigned line; /* 0: no line expected */
    const char *says;
};

#define HEAD "territory: t1\nproduction: false\nagents:\n"

static const struct bad_case bad_cases[] = {
    {"an empty file is refused", "", 0, "empty"},
    {"broken YAML names its line", "territory: t1\nagents: [\n  - x: [\n", 3, "YAML"},
    {"the root must be a mapping", "- a\n- b\n", 1, "expected a mapping"},
    {"the territory is required", "agents: []\n", 1, "'territory' is missing"},
    {"the agents list is required", "territory: t1\n", 1, "'agents' is missing"},
    {"a territory name follows the address rules", "territory: CPTS\nagents: []\n", 1, "lowercase"},
    {"an unknown top-level key is a typo", "territory: t1\nagent: []\nagents: []\n", 2,
     "unknown key 'agent'"},
    {"a key written twice is refused", "territory: t1\nterritory: t2\nagents: []\n", 2,
     "'territory' appears twice"},
    {"production is true or false", "territory: t1\nproduction: yes\nagents: []\n", 2,
     "expected true or false"},
    {"an unknown role is named with the expected ones",
     HEAD "  - address: rpps:10101234567\n"
          "    role: doctor\n",
     5, "agents[0].role: unknown role 'doctor' (expected gp,"},
    {"an invalid address says why", HEAD "  - address: rpps:1010123456\n    role: gp\n", 4,
     "rpps needs 11 digits"},
    {"an agent cannot be a service pool", HEAD "  - address: service:nurse@t1\n    role: nurse\n",
     4, "is a service pool"},
    {"an agent needs an address", HEAD "  - role: gp\n", 4, "'address' is missing"},
    {"an agent needs a role", HEAD "  - address: rpps:10101234567\n", 4, "'role' is missing"},
    {"an unknown agent field is a typo",
     HEAD "  - address: rpps:10101234567\n    role: gp\n    pubic_key: x\n", 6,
     "unknown key 'pubic_key'"},
    {"a duplicate address is refused",
     HEAD "  - {address: 'rpps:10101234567', role: gp}\n"
          "  - {address: 'rpps:10101234567', role: nurse}\n",
     5, "'rpps:10101234567' is declared twice"},
    {"a key must be 40 characters",
     HEAD "  - address: rpps:10101234567\n    role: gp\n    public_key: abc\n", 6,
     "40 Z85 characters, got 3"},
    {"a key must be Z85",
     HEAD "  - address: rpps:10101234567\n    role: gp\n"
          "    public_key: \""
          "[!Y5NMfh?!!Ez4iBqV&)sbmG^5iLIucG:WN=Ev+~"
          "\"\n",
     6, "character 40 is not Z85"},
    {"a key whose groups overflow is not Z85",
     HEAD "  - address: rpps:10101234567\n    role: gp\n"
          "    public_key: \"####################################llll\"\n",
     6, "not a valid Z85 key"},
    {"two agents cannot share a key",
     HEAD "  - {address: 'rpps:10101234567', role: gp, public_key: '" K1 "'}\n"
          "  - {address: 'rpps:10101234568', role: gp, public_key: '" K1 "'}\n",
     5, "the same key as rpps:10101234567 (line 4)"},
    {"a production directory needs every key",
     "territory: t1\nagents:\n  - {address: 'rpps:10101234567', role: gp}\n", 3,
     "has no public_key"},
    {"acts_for must name an agent of the directory",
     HEAD "  - {address: 'staff:a@b', role: medical_assistant, acts_for: ['rpps:10101234567']}\n",
     4, "acts_for: rpps:10101234567 is not an agent of this directory"},
    {"acts_for entries are addresses",
     HEAD "  - {address: 'staff:a@b', role: medical_assistant, acts_for: ['dr martin']}\n", 4,
     "'dr martin' is not an address"},
    {"a pool is a service address",
     HEAD "  - {address: 'rpps:10101234567', role: nurse, pools: ['rpps:10101234568']}\n", 4,
     "rpps:10101234568 is not a service address"},
    {"a pool belongs to this territory",
     HEAD "  - {address: 'rpps:10101234567', role: nurse, pools: ['service:nurse@t2']}\n", 4,
     "belongs to territory 't2', this directory is 't1'"},
    {"a pool holds agents of its role",
     HEAD "  - {address: 'rpps:10101234567', role: gp, pools: ['service:nurse@t1']}\n", 4,
     "is a pool of nurse, rpps:10101234567 is a gp"},
    {"a specialty pool holds agents of that specialty",
     HEAD "  - {address: 'rpps:10101234567', role: specialist, specialty: dermatology,"
          " pools: ['service:specialist/cardiology@t1']}\n",
     4, "specialty is 'dermatology'"},
    {"a specialty follows the name rules",
     HEAD "  - {address: 'rpps:10101234567', role: specialist, specialty: Cardiology}\n", 4,
     "not a valid specialty name"},
    {"a limit is a whole number", "territory: t1\nlimits:\n  sessions_per_key: -1\nagents: []\n", 3,
     "expected a whole number"},
    {"a limit of zero is refused",
     "territory: t1\nlimits: {submissions_per_second: 0}\nagents: []\n", 2, "outside 1..1000000"},
    {"an unknown limit is a typo", "territory: t1\nlimits: {sessions: 1}\nagents: []\n", 2,
     "unknown key 'sessions'"},
    {"an acl entry names a body of the schema",
     "territory: t1\nacl:\n  notes: {senders: [any]}\nagents: []\n", 3, "unknown body 'notes'"},
    {"an acl set holds roles, any or participants",
     "territory: t1\nacl:\n  note:\n    senders: [doctors]\nagents: []\n", 4,
     "acl.note.senders: unknown 'doctors'"},
    {"an acl entry has senders and recipients only",
     "territory: t1\nacl:\n  note: {receivers: [any]}\nagents: []\n", 3, "unknown key 'receivers'"},
    {"anchors and aliases are refused",
     "territory: t1\nproduction: false\nagents:\n  - &a {address: 'rpps:10101234567', role: gp}\n"
     "  - *a\n",
     4, "anchors and aliases are not supported"},
    {"a self-referencing alias is refused, not followed", "territory: t1\nagents: &x [*x]\n", 2,
     "aliases"},
    {"a second document is refused", "territory: t1\nagents: []\n---\nterritory: t2\n", 3,
     "second"},
};

Test(directory, refuses_every_kind_of_mistake_with_its_line)
{
    for (size_t i = 0; i < sizeof bad_cases / sizeof bad_cases[0]; i++) {
        const struct bad_case *c = &bad_cases[i];
        directory_t *d = (directory_t *)1;
        char err[512] = "";
        int rc = directory_parse(c->yaml, strlen(c->yaml), "t.yaml", &d, err, sizeof err);
        cr_expect_eq(rc, RELAIS_ECONFIG, "%s: rc %d (%s)", c->sentence, rc, err);
        cr_expect_null(d, "%s: *out is NULL on failure", c->sentence);
        cr_expect(strstr(err, c->says) != NULL, "%s: '%s' does not say '%s'", c->sentence, err,
                  c->says);
        char where[32];
        if (c->line)
            snprintf(where, sizeof where, "t.yaml:%u: ", c->line);
        else
            snprintf(where, sizeof where, "t.yaml: ");
        cr_expect(strncmp(err, where, strlen(where)) == 0, "%s: '%s' does not start with '%s'",
                  c->sentence, err, where);
        if (rc == 0) directory_destroy(&d);
    }
}
