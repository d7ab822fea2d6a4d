/*
 * relaisctl's enrolment edits (broker/ctl_agent_edit.c): the check digits of RPPS and
 * FINESS numbers, and the directory edited as text — every byte outside the entry kept,
 * the result loadable by the broker's own loader, an add followed by a revoke giving the
 * file back unchanged.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "relais/errors.h"
#include "relaisctl.h"

#define KEY_A "hjq}X^Khy!KtnX%NBDbs@eF&+pBIC[:?jzPq-T>M"
#define KEY_B "-JHuAcPxy.ZxdY.]87%jZw3*{**b&2rn91zgweaY"

static const char *const DIRECTORY =
    "# The territory of the test, with comments that must survive every edit.\n"
    "territory: cpts-test\n"
    "production: true\n"
    "\n"
    "agents:\n"
    "  # the practice's nurse\n"
    "  - address: rpps:10103456785   # her RPPS number\n"
    "    name: Yann\n"
    "    role: nurse\n"
    "    public_key: \"" KEY_A "\"\n"
    "    pools:\n"
    "      - service:nurse@cpts-test\n"
    "\n"
    "# limits of the territory\n"
    "limits:\n"
    "  sessions_per_key: 2\n";

static char err[512];

static directory_t *load(const char *text)
{
    directory_t *d = NULL;
    int rc = directory_parse(text, strlen(text), "t.yaml", &d, err, sizeof err);
    cr_assert_eq(rc, 0, "the edited directory does not load: %s\n%s", err, text);
    return d;
}

Test(luhn, accepts_numbers_whose_key_is_right)
{
    /* FINESS 010003820 and 010003812 are published establishments' numbers (the national
     * FINESS extraction); the RPPS numbers are made up with a computed key. */
    cr_expect(ctl__luhn_valid("010003820"));
    cr_expect(ctl__luhn_valid("010003812"));
    cr_expect(ctl__luhn_valid("350000014"));
    cr_expect(ctl__luhn_valid("10101234564"));
    cr_expect(ctl__luhn_valid("10103456785"));
}

Test(luhn, refuses_a_changed_digit_and_swapped_digits)
{
    cr_expect_not(ctl__luhn_valid("10101234567")); /* the old demo number: wrong key */
    cr_expect_not(ctl__luhn_valid("10101234565"));
    cr_expect_not(ctl__luhn_valid("10011234564")); /* two digits swapped */
    cr_expect_not(ctl__luhn_valid("350000015"));
    cr_expect_not(ctl__luhn_valid(""));
    cr_expect_not(ctl__luhn_valid("3500x0014"));
}

Test(identifier, says_which_check_digit_an_rpps_number_needs)
{
    cr_assert_eq(ctl__identifier_check("rpps:10101234567", err, sizeof err), RELAIS_ECONFIG);
    cr_expect(strstr(err, "would be 4") != NULL, "%s", err);
    cr_expect_eq(ctl__identifier_check("rpps:10101234564", err, sizeof err), 0, "%s", err);
    cr_expect_eq(ctl__identifier_check("finess:350000015", err, sizeof err), RELAIS_ECONFIG);
    cr_expect_eq(ctl__identifier_check("finess:350000014", err, sizeof err), 0, "%s", err);
}

Test(identifier, leaves_other_schemes_and_corsica_to_the_address_rules)
{
    cr_expect_eq(ctl__identifier_check("staff:claire@cabinet-dupont", err, sizeof err), 0);
    cr_expect_eq(ctl__identifier_check("app:gateway", err, sizeof err), 0);
    cr_expect_eq(ctl__identifier_check("finess:2A0000011", err, sizeof err), 0, "%s", err);
    cr_expect_eq(ctl__identifier_check("rpps:1234", err, sizeof err), RELAIS_ECONFIG);
    cr_expect_eq(ctl__identifier_check("RPPS:10101234564", err, sizeof err), RELAIS_ECONFIG);
}

Test(edit, add_keeps_every_byte_of_the_file_and_the_result_loads)
{
    const char *pools[] = {"service:physiotherapist@cpts-test"};
    ctl_entry_t e = {.comment = "enrolled by the test",
                     .address = "rpps:10102345674",
                     .name = "Sophie \"Lemoine\"",
                     .role = "physiotherapist",
                     .public_key = KEY_B,
                     .pools = pools,
                     .n_pools = 1};
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(ctl__dir_add(DIRECTORY, strlen(DIRECTORY), &e, &out, &len, err, sizeof err), 0,
                 "%s", err);
    /* The original text is all there, in order, the entry inserted right after the last
     * entry (before the blank line and the comment of `limits`). */
    const char *rest = strstr(DIRECTORY, "\n# limits");
    size_t head = (size_t)(rest - DIRECTORY);
    cr_expect(strncmp(out, DIRECTORY, head) == 0, "%s", out);
    cr_expect(strcmp(out + len - strlen(rest), rest) == 0, "%s", out);
    cr_expect(strstr(out, "  # enrolled by the test\n  - address: \"rpps:10102345674\"\n") != NULL,
              "%s", out);
    directory_t *d = load(out);
    const dir_agent_t *a = directory_lookup(d, "rpps:10102345674");
    cr_assert_not_null(a);
    cr_expect_str_eq(a->name, "Sophie \"Lemoine\"");
    cr_expect_str_eq(a->public_key_z85, KEY_B);
    cr_expect_eq(a->n_pools, 1);
    cr_expect_not_null(directory_lookup(d, "rpps:10103456785"));
    directory_destroy(&d);
    free(out);
}

Test(edit, add_then_remove_gives_the_file_back_unchanged)
{
    ctl_entry_t e = {.comment = CTL_ENROLLED_COMMENT ", 2026-12-02",
                     .address = "app:gateway",
                     .role = "app",
                     .public_key = KEY_B};
    char *added = NULL, *removed = NULL;
    size_t added_len = 0, removed_len = 0;
    cr_assert_eq(
        ctl__dir_add(DIRECTORY, strlen(DIRECTORY), &e, &added, &added_len, err, sizeof err), 0,
        "%s", err);
    cr_assert_eq(
        ctl__dir_remove(added, added_len, "app:gateway", &removed, &removed_len, err, sizeof err),
        0, "%s", err);
    cr_expect_str_eq(removed, DIRECTORY);
    free(added);
    free(removed);
}

Test(edit, remove_takes_out_one_entry_and_nothing_else)
{
    ctl_entry_t e = {.address = "app:gateway", .role = "app", .public_key = KEY_B};
    char *added = NULL, *removed = NULL;
    size_t added_len = 0, removed_len = 0;
    cr_assert_eq(
        ctl__dir_add(DIRECTORY, strlen(DIRECTORY), &e, &added, &added_len, err, sizeof err), 0);
    cr_assert_eq(ctl__dir_remove(added, added_len, "rpps:10103456785", &removed, &removed_len, err,
                                 sizeof err),
                 0, "%s", err);
    cr_expect(strstr(removed, "rpps:10103456785") == NULL, "%s", removed);
    cr_expect(strstr(removed, "service:nurse@cpts-test") == NULL, "%s", removed);
    cr_expect(strstr(removed, "# the practice's nurse\n") != NULL, "%s", removed);
    cr_expect(strstr(removed, "# limits of the territory\n") != NULL, "%s", removed);
    directory_t *d = load(removed);
    cr_expect_eq(directory_agent_count(d), 1);
    cr_expect_not_null(directory_lookup(d, "app:gateway"));
    directory_destroy(&d);
    free(added);
    free(removed);
}

Test(edit, remove_of_an_unknown_address_is_refused)
{
    char *out = NULL;
    size_t len = 0;
    cr_expect_eq(
        ctl__dir_remove(DIRECTORY, strlen(DIRECTORY), "app:nobody", &out, &len, err, sizeof err),
        RELAIS_ECONFIG);
    cr_expect_null(out);
    cr_expect(strstr(err, "app:nobody") != NULL, "%s", err);
}

Test(edit, a_new_territory_starts_from_an_empty_flow_list)
{
    const char *text = "territory: cpts-test\nagents: []   # none yet\nlimits:\n"
                       "  sessions_per_key: 2\n";
    ctl_entry_t e = {.address = "app:gateway", .role = "app", .public_key = KEY_B};
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(ctl__dir_add(text, strlen(text), &e, &out, &len, err, sizeof err), 0, "%s", err);
    cr_expect(strstr(out, "agents:   # none yet\n  - address: \"app:gateway\"\n") != NULL, "%s",
              out);
    directory_t *d = load(out);
    cr_expect_eq(directory_agent_count(d), 1);
    directory_destroy(&d);
    free(out);
}

Test(edit, a_flow_list_with_entries_is_refused_with_the_line)
{
    const char *text = "territory: cpts-test\nagents: [{address: app:a, role: app}]\n";
    ctl_entry_t e = {.address = "app:gateway", .role = "app", .public_key = KEY_B};
    char *out = NULL;
    size_t len = 0;
    cr_expect_eq(ctl__dir_add(text, strlen(text), &e, &out, &len, err, sizeof err), RELAIS_ECONFIG);
    cr_expect(strstr(err, "line 2") != NULL, "%s", err);
}

Test(edit, a_directory_without_agents_gets_the_list)
{
    const char *text = "territory: cpts-test\nproduction: false";
    ctl_entry_t e = {.address = "app:gateway", .role = "app", .public_key = KEY_B};
    char *out = NULL;
    size_t len = 0;
    cr_assert_eq(ctl__dir_add(text, strlen(text), &e, &out, &len, err, sizeof err), 0, "%s", err);
    directory_t *d = load(out);
    cr_expect_not_null(directory_lookup(d, "app:gateway"));
    directory_destroy(&d);
    free(out);
}

Test(edit, strings_with_control_characters_are_refused)
{
    ctl_entry_t e = {.address = "app:gateway",
                     .name = "a\nrole: coordinator",
                     .role = "app",
                     .public_key = KEY_B};
    char *out = NULL;
    size_t len = 0;
    cr_expect_eq(ctl__dir_add(DIRECTORY, strlen(DIRECTORY), &e, &out, &len, err, sizeof err),
                 RELAIS_ECONFIG);
}

Test(edit, removing_the_last_agent_leaves_an_empty_list_that_loads)
{
    const char *text = "territory: cpts-test\nproduction: false\nagents: []  # none yet\n";
    ctl_entry_t e = {.address = "app:gateway", .role = "app", .public_key = KEY_B};
    char *added = NULL, *removed = NULL;
    size_t added_len = 0, removed_len = 0;
    cr_assert_eq(ctl__dir_add(text, strlen(text), &e, &added, &added_len, err, sizeof err), 0);
    cr_assert_eq(
        ctl__dir_remove(added, added_len, "app:gateway", &removed, &removed_len, err, sizeof err),
        0, "%s", err);
    cr_expect_str_eq(removed, text);
    directory_t *d = load(removed);
    cr_expect_eq(directory_agent_count(d), 0);
    directory_destroy(&d);
    free(added);
    free(removed);
}

Test(edit, accented_names_before_an_entry_do_not_shift_the_edit)
{
    /* libyaml counts columns in characters: an offset taken from them would land inside
     * "Hélène" and cut the file in the wrong place. */
    const char *text = "territory: cpts-test\nproduction: false\nagents:\n"
                       "  - address: rpps:10103456785\n    name: \"Hélène Lévêque\"\n"
                       "    role: nurse\n";
    ctl_entry_t e = {.comment = CTL_ENROLLED_COMMENT ", 2026-12-02",
                     .address = "app:gateway",
                     .role = "app",
                     .public_key = KEY_B};
    char *added = NULL, *removed = NULL;
    size_t added_len = 0, removed_len = 0;
    cr_assert_eq(ctl__dir_add(text, strlen(text), &e, &added, &added_len, err, sizeof err), 0);
    cr_assert_eq(
        ctl__dir_remove(added, added_len, "app:gateway", &removed, &removed_len, err, sizeof err),
        0, "%s", err);
    cr_expect_str_eq(removed, text);
    free(added);
    free(removed);
}
