/*
 * Unit tests of the error table and of the mapping between RELAIS_E… codes and the wire's
 * Error.ErrorCode, checked against the values protobuf-c generated from the schema.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <string.h>

#include "relais/errors.h"
#include "relais/v1/relais.pb-c.h"

static const struct {
    int code;
    const char *name;
    int wire; /* -1: local code, never on the wire */
} codes[] = {
    {RELAIS_EBADFRAME, "RELAIS_EBADFRAME", RELAIS__V1__ERROR__ERROR_CODE__BAD_FRAME},
    {RELAIS_EVERSION, "RELAIS_EVERSION", RELAIS__V1__ERROR__ERROR_CODE__UNSUPPORTED_VERSION},
    {RELAIS_ENOSESSION, "RELAIS_ENOSESSION", RELAIS__V1__ERROR__ERROR_CODE__NO_SESSION},
    {RELAIS_EINVALID, "RELAIS_EINVALID", RELAIS__V1__ERROR__ERROR_CODE__INVALID_ENVELOPE},
    {RELAIS_EFORBIDDEN, "RELAIS_EFORBIDDEN", RELAIS__V1__ERROR__ERROR_CODE__FORBIDDEN},
    {RELAIS_EUNKNOWNRCPT, "RELAIS_EUNKNOWNRCPT", RELAIS__V1__ERROR__ERROR_CODE__UNKNOWN_RECIPIENT},
    {RELAIS_ETOOLARGE, "RELAIS_ETOOLARGE", RELAIS__V1__ERROR__ERROR_CODE__TOO_LARGE},
    {RELAIS_EEXPIRED, "RELAIS_EEXPIRED", RELAIS__V1__ERROR__ERROR_CODE__EXPIRED},
    {RELAIS_EOVERLOADED, "RELAIS_EOVERLOADED", RELAIS__V1__ERROR__ERROR_CODE__OVERLOADED},
    {RELAIS_ESTORE, "RELAIS_ESTORE", RELAIS__V1__ERROR__ERROR_CODE__STORE_UNAVAILABLE},
    {RELAIS_EINTERNAL, "RELAIS_EINTERNAL", RELAIS__V1__ERROR__ERROR_CODE__INTERNAL},
    {RELAIS_ECLOSED, "RELAIS_ECLOSED", -1},
    {RELAIS_EPROTO, "RELAIS_EPROTO", -1},
    {RELAIS_ECONFIG, "RELAIS_ECONFIG", -1},
    {RELAIS_EUNKNOWN, "RELAIS_EUNKNOWN", -1},
};
#define N_CODES (sizeof codes / sizeof codes[0])

Test(errors, every_relais_code_has_its_name_and_a_sentence_of_its_own)
{
    for (size_t i = 0; i < N_CODES; i++) {
        cr_expect_str_eq(relais_err_name(codes[i].code), codes[i].name);
        const char *msg = relais_strerror(codes[i].code);
        cr_expect(strlen(msg) > 10, "%s has a readable sentence", codes[i].name);
        cr_expect_str_neq(msg, "unknown error", "%s", codes[i].name);
        for (size_t j = 0; j < i; j++) {
            cr_expect_str_neq(msg, relais_strerror(codes[j].code), "%s and %s share a sentence",
                              codes[i].name, codes[j].name);
        }
    }
}

Test(errors, wire_codes_map_both_ways_one_to_one)
{
    for (size_t i = 0; i < N_CODES; i++) {
        if (codes[i].wire < 0) {
            cr_expect_eq(relais_err_to_wire(codes[i].code), RELAIS__V1__ERROR__ERROR_CODE__INTERNAL,
                         "%s is local", codes[i].name);
            continue;
        }
        cr_expect_eq(relais_err_to_wire(codes[i].code), codes[i].wire, "%s", codes[i].name);
        cr_expect_eq(relais_err_from_wire(codes[i].wire), codes[i].code, "%s", codes[i].name);
    }
}

Test(errors, codes_without_a_wire_mirror_travel_as_internal)
{
    cr_expect_eq(relais_err_to_wire(-ENOMEM), RELAIS__V1__ERROR__ERROR_CODE__INTERNAL);
    cr_expect_eq(relais_err_to_wire(-1000), RELAIS__V1__ERROR__ERROR_CODE__INTERNAL);
    cr_expect_eq(relais_err_to_wire(-1012), RELAIS__V1__ERROR__ERROR_CODE__INTERNAL);
    cr_expect_eq(relais_err_to_wire(5), RELAIS__V1__ERROR__ERROR_CODE__INTERNAL);
    cr_expect_eq(relais_err_to_wire(0), RELAIS__V1__ERROR__ERROR_CODE__ERROR_CODE_UNSPECIFIED,
                 "success is not an error");
}

Test(errors, unknown_wire_codes_read_as_internal)
{
    cr_expect_eq(relais_err_from_wire(RELAIS__V1__ERROR__ERROR_CODE__ERROR_CODE_UNSPECIFIED),
                 RELAIS_EINTERNAL);
    cr_expect_eq(relais_err_from_wire(12), RELAIS_EINTERNAL);
    cr_expect_eq(relais_err_from_wire(-1), RELAIS_EINTERNAL);
    cr_expect_eq(relais_err_from_wire(1 << 30), RELAIS_EINTERNAL);
}

Test(errors, negative_errno_values_are_named_like_the_c_library_does)
{
    cr_expect_str_eq(relais_err_name(-ENOMEM), "ENOMEM");
    cr_expect_str_eq(relais_err_name(-EAGAIN), "EAGAIN");
    cr_expect_str_eq(relais_err_name(-EINVAL), "EINVAL");
    cr_expect_str_eq(relais_strerror(-ENOMEM), "Cannot allocate memory");
    cr_expect_str_eq(relais_strerror(-ENOENT), "No such file or directory");
}

Test(errors, success_and_unknown_values_still_get_a_string)
{
    cr_expect_str_eq(relais_err_name(0), "OK");
    cr_expect_str_eq(relais_strerror(0), "success");
    static const int unknown[] = {-999, -1000, -1050, -5000, 7, -2147483647 - 1};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        cr_expect_str_eq(relais_err_name(unknown[i]), "UNKNOWN", "%d", unknown[i]);
        cr_expect_str_eq(relais_strerror(unknown[i]), "unknown error", "%d", unknown[i]);
    }
}
