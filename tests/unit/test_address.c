/*
 * Unit tests of relais_address_parse(): every scheme of PROTOCOL.md section 4, accepted in
 * its one canonical spelling and refused, with a reason naming the faulty part, in every
 * other. Each table row reads as a sentence so that a failure says which rule broke.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "relais/codec.h"

struct valid_case {
    const char *sentence;
    const char *text;
    relais_addr_kind_t kind;
    const char *id;
    const char *role;
    const char *specialty;
    const char *territory;
};

static const struct valid_case valid_cases[] = {
    {"an rpps number has 11 digits", "rpps:10101234567", RELAIS_ADDR_RPPS, "10101234567", "", "",
     ""},
    {"a finess number has 9 digits", "finess:350000139", RELAIS_ADDR_FINESS, "350000139", "", "",
     ""},
    {"a Corsican finess starts with 2A", "finess:2A0000013", RELAIS_ADDR_FINESS, "2A0000013", "",
     "", ""},
    {"a Corsican finess starts with 2B", "finess:2B0000013", RELAIS_ADDR_FINESS, "2B0000013", "",
     "", ""},
    {"a staff address has a name and an organisation", "staff:marie.dupont@cabinet-leclerc",
     RELAIS_ADDR_STAFF, "marie.dupont@cabinet-leclerc", "", "", ""},
    {"a service address may omit the specialty", "service:physiotherapist@cpts-rennes-nord",
     RELAIS_ADDR_SERVICE, "physiotherapist@cpts-rennes-nord", "physiotherapist", "",
     "cpts-rennes-nord"},
    {"a service address may name a specialty", "service:specialist/cardiology@cpts-rennes-nord",
     RELAIS_ADDR_SERVICE, "specialist/cardiology@cpts-rennes-nord", "specialist", "cardiology",
     "cpts-rennes-nord"},
    {"an app name may use every allowed character", "app:hl7_gateway-2.0", RELAIS_ADDR_APP,
     "hl7_gateway-2.0", "", "", ""},
};

Test(address, accepts_every_scheme_in_its_canonical_spelling)
{
    for (size_t i = 0; i < sizeof valid_cases / sizeof valid_cases[0]; i++) {
        const struct valid_case *c = &valid_cases[i];
        relais_address_t a;
        char reason[RELAIS_REASON_MAX] = "not cleared";
        int rc = relais_address_parse(c->text, &a, reason, sizeof reason);
        cr_expect_eq(rc, 0, "%s: %s refused (%s)", c->sentence, c->text, reason);
        if (rc != 0) continue;
        cr_expect_str_empty(reason, "%s: reason is cleared on success", c->sentence);
        cr_expect_eq(a.kind, c->kind, "%s: kind", c->sentence);
        cr_expect_str_eq(a.id, c->id, "%s: id", c->sentence);
        cr_expect_str_eq(a.role, c->role, "%s: role", c->sentence);
        cr_expect_str_eq(a.specialty, c->specialty, "%s: specialty", c->sentence);
        cr_expect_str_eq(a.territory, c->territory, "%s: territory", c->sentence);
        cr_expect(relais_address_valid(c->text), "%s: relais_address_valid agrees", c->sentence);
    }
}

struct invalid_case {
    const char *sentence;
    const char *text;
    const char *reason; /* a fragment the reason must contain */
};

static const struct invalid_case invalid_cases[] = {
    {"an empty string is not an address", "", "address is empty"},
    {"an address needs a scheme and a colon", "rpps10101234567", "scheme followed by ':'"},
    {"the scheme cannot be empty", ":10101234567", "empty scheme"},
    {"an uppercase scheme is refused", "RPPS:10101234567", "scheme must be lowercase, got 'RPPS'"},
    {"a capitalised scheme is refused", "Rpps:10101234567", "scheme must be lowercase"},
    {"an unknown scheme is refused", "fax:0299000000", "unknown scheme 'fax'"},
    {"a scheme needs something after the colon", "rpps:", "rpps address has nothing after ':'"},
    {"a second colon is refused", "app:gw:2", "app address has a second ':'"},
    {"rpps with 10 digits is too short", "rpps:1010123456", "rpps needs 11 digits, got 10"},
    {"rpps with 12 digits is too long", "rpps:101012345678", "rpps needs 11 digits, got 12"},
    {"rpps with a letter is refused", "rpps:1010123456a", "found 'a' at position 11"},
    {"rpps with non-ASCII digits is refused",
     "rpps:\xd9\xa1\xd9\xa2"
     "0101234567",
     "found \\xd9 at position 1"},
    {"leading whitespace is refused", " rpps:10101234567", "whitespace at position 1"},
    {"inner whitespace is refused", "rpps: 10101234567", "whitespace at position 6"},
    {"a trailing newline is refused", "rpps:10101234567\n", "whitespace at position 17"},
    {"a tab is refused", "app:gw\tx", "whitespace"},
    {"finess with 8 digits is too short", "finess:35000013", "finess needs 9 digits, got 8"},
    {"finess with 10 digits is too long", "finess:3500001390", "finess needs 9 digits, got 10"},
    {"finess with a letter is refused", "finess:35000013x", "found 'x' at position 9"},
    {"a Corsican finess is written in capitals", "finess:2a0000013", "2A or 2B in capitals"},
    {"only 2A and 2B are letters in a finess", "finess:2C0000013", "found 'C' at position 2"},
    {"a Corsican finess has 7 digits after 2A", "finess:2A000001",
     "finess needs 2A or 2B and 7 digits, got 6"},
    {"staff without '@' is refused", "staff:marie.dupont", "staff needs exactly one '@', found 0"},
    {"staff with two '@' is refused", "staff:marie@a@b", "staff needs exactly one '@', found 2"},
    {"staff needs a name", "staff:@cabinet", "staff name is empty"},
    {"staff needs an organisation", "staff:marie@", "staff organisation is empty"},
    {"a staff name is lowercase", "staff:Marie@cabinet", "staff name must be lowercase, found 'M'"},
    {"a staff organisation is lowercase", "staff:marie@Cabinet",
     "staff organisation must be lowercase"},
    {"a staff name has no '+'", "staff:marie+1@cabinet", "staff name has invalid character '+'"},
    {"service without '@' is refused", "service:physiotherapist",
     "service needs exactly one '@', found 0"},
    {"service with two '@' is refused", "service:nurse@a@b", "found 2"},
    {"a service needs a role", "service:@cpts", "service role is empty"},
    {"a service role is lowercase", "service:Nurse@cpts", "service role must be lowercase"},
    {"a specialty after '/' cannot be empty", "service:specialist/@cpts",
     "service specialty is empty"},
    {"a service has one specialty at most", "service:specialist/cardio/logy@cpts",
     "service specialty has invalid character '/'"},
    {"a service needs a territory", "service:nurse@", "service territory is empty"},
    {"a territory is lowercase", "service:nurse@CPTS", "service territory must be lowercase"},
    {"a service role fits in 63 bytes",
     "service:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@cpts",
     "service role is longer than 63 bytes"},
    {"an app name is lowercase", "app:Gateway", "app name must be lowercase, found 'G'"},
    {"an app name has no '@'", "app:gw@x", "app name has invalid character '@'"},
    {"a control character is shown in hex", "app:gw\x01", "app name has invalid character \\x01"},
};

Test(address, refuses_every_malformed_address_with_a_reason_naming_the_part)
{
    for (size_t i = 0; i < sizeof invalid_cases / sizeof invalid_cases[0]; i++) {
        const struct invalid_case *c = &invalid_cases[i];
        char reason[RELAIS_REASON_MAX] = "";
        int rc = relais_address_parse(c->text, NULL, reason, sizeof reason);
        cr_expect_eq(rc, RELAIS_EINVALID, "%s: '%s' gave %d", c->sentence, c->text, rc);
        cr_expect(strstr(reason, c->reason) != NULL, "%s: reason '%s' lacks '%s'", c->sentence,
                  reason, c->reason);
        cr_expect_not(relais_address_valid(c->text), "%s: relais_address_valid agrees",
                      c->sentence);
    }
}

static char *address_of_length(size_t len)
{
    char *s = malloc(len + 1);
    cr_assert_not_null(s);
    memcpy(s, "app:", 4);
    memset(s + 4, 'a', len - 4);
    s[len] = '\0';
    return s;
}

Test(address, accepts_an_address_of_255_bytes_and_refuses_one_of_256)
{
    char reason[RELAIS_REASON_MAX] = "";
    char *longest = address_of_length(RELAIS_ADDRESS_MAX - 1);
    char *too_long = address_of_length(RELAIS_ADDRESS_MAX);
    relais_address_t a;
    cr_expect_eq(relais_address_parse(longest, &a, reason, sizeof reason), 0, "%s", reason);
    cr_expect_eq(strlen(a.id), RELAIS_ADDRESS_MAX - 1 - 4);
    cr_expect_eq(relais_address_parse(too_long, NULL, reason, sizeof reason), RELAIS_EINVALID);
    cr_expect(strstr(reason, "longer than 255 bytes") != NULL, "reason: %s", reason);
    free(longest);
    free(too_long);
}

Test(address, refuses_a_null_pointer_as_empty)
{
    char reason[RELAIS_REASON_MAX] = "";
    cr_expect_eq(relais_address_parse(NULL, NULL, reason, sizeof reason), RELAIS_EINVALID);
    cr_expect_str_eq(reason, "address is empty");
    cr_expect_not(relais_address_valid(NULL));
}

Test(address, works_without_an_output_or_a_reason_buffer)
{
    cr_expect_eq(relais_address_parse("rpps:10101234567", NULL, NULL, 0), 0);
    cr_expect_eq(relais_address_parse("rpps:1", NULL, NULL, 0), RELAIS_EINVALID);
}

Test(address, truncates_a_reason_to_the_buffer_it_is_given)
{
    char reason[8];
    memset(reason, 'x', sizeof reason);
    cr_expect_eq(relais_address_parse("rpps:1", NULL, reason, sizeof reason), RELAIS_EINVALID);
    cr_expect_eq(strlen(reason), sizeof reason - 1);
    cr_expect_str_eq(reason, "rpps ne");
}

Test(address, leaves_the_output_untouched_on_failure)
{
    relais_address_t a;
    memset(&a, 0x5a, sizeof a);
    cr_expect_eq(relais_address_parse("service:nurse@", &a, NULL, 0), RELAIS_EINVALID);
    cr_expect_eq((unsigned char)a.role[0], 0x5a);
}
