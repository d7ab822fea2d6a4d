/*
 * Address parsing: the schemes of PROTOCOL.md section 4 (rpps, finess, staff, service, app).
 *
 * Addresses are compared as plain strings everywhere else (routing, dedup of recipients,
 * the directory), so this parser accepts exactly one spelling of each address: lowercase
 * scheme and names, no whitespace, no padding. Anything else is refused with a reason that
 * says which part is wrong and why, because these reasons travel back to the sender in a
 * Rejected frame and are the only help a developer on the other side gets.
 */
#include <stdio.h>
#include <string.h>

#include "relais/codec.h"

#include "internal.h"

/* Every rule broken here is the same error, RELAIS_EINVALID; only the reason differs. */
#define fail(reason, reason_len, ...) codec__fail(RELAIS_EINVALID, reason, reason_len, __VA_ARGS__)

/* Quotes one byte for a reason: printable ASCII as itself, anything else as \xNN. */
static const char *show_char(unsigned char c, char buf[8])
{
    if (c >= 0x21 && c < 0x7f) {
        snprintf(buf, 8, "'%c'", c);
    } else {
        snprintf(buf, 8, "\\x%02x", c);
    }
    return buf;
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c) || c == '.' || c == '_' || c == '-';
}

/*
 * Checks one name (staff name, organisation, app name, role, specialty, territory) of len
 * bytes at s. what is the part's label in the reason ("staff name").
 */
static int check_name(const char *what, const char *s, size_t len, size_t max, char *reason,
                      size_t reason_len)
{
    char c[8];
    if (len == 0) return fail(reason, reason_len, "%s is empty", what);
    if (len > max) {
        return fail(reason, reason_len, "%s is longer than %zu bytes (%zu)", what, max, len);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch >= 'A' && ch <= 'Z') {
            return fail(reason, reason_len, "%s must be lowercase, found %s", what,
                        show_char(ch, c));
        }
        if (!is_name_char((char)ch)) {
            return fail(reason, reason_len, "%s has invalid character %s (allowed: a-z 0-9 . _ -)",
                        what, show_char(ch, c));
        }
    }
    return 0;
}

static int parse_rpps(const char *id, size_t len, char *reason, size_t reason_len)
{
    char c[8];
    for (size_t i = 0; i < len; i++) {
        if (!is_digit(id[i])) {
            return fail(reason, reason_len, "rpps needs 11 digits, found %s at position %zu",
                        show_char((unsigned char)id[i], c), i + 1);
        }
    }
    if (len != 11) return fail(reason, reason_len, "rpps needs 11 digits, got %zu", len);
    return 0;
}

/*
 * FINESS numbers start with the two-character département: Corsica's are 2A and 2B, written
 * in capitals in the national register, so that is the one spelling accepted here.
 */
static int parse_finess(const char *id, size_t len, char *reason, size_t reason_len)
{
    char c[8];
    size_t start = 0;
    if (len >= 2 && id[0] == '2' && (id[1] == 'a' || id[1] == 'b')) {
        return fail(reason, reason_len,
                    "finess for Corsica starts with 2A or 2B in capitals, got 2%c", id[1]);
    }
    if (len >= 2 && id[0] == '2' && (id[1] == 'A' || id[1] == 'B')) start = 2;
    for (size_t i = start; i < len; i++) {
        if (!is_digit(id[i])) {
            return fail(reason, reason_len, "finess needs 9 digits, found %s at position %zu",
                        show_char((unsigned char)id[i], c), i + 1);
        }
    }
    if (len != 9) {
        if (start == 2) {
            return fail(reason, reason_len, "finess needs 2A or 2B and 7 digits, got %zu digits",
                        len - 2);
        }
        return fail(reason, reason_len, "finess needs 9 digits, got %zu", len);
    }
    return 0;
}

/* Splits id at its single '@'; *at is its offset. */
static int split_at(const char *scheme, const char *id, size_t len, size_t *at, char *reason,
                    size_t reason_len)
{
    size_t count = 0;
    for (size_t i = 0; i < len; i++) {
        if (id[i] == '@') {
            if (count == 0) *at = i;
            count++;
        }
    }
    if (count != 1) {
        return fail(reason, reason_len, "%s needs exactly one '@', found %zu", scheme, count);
    }
    return 0;
}

static int parse_staff(const char *id, size_t len, char *reason, size_t reason_len)
{
    size_t at = 0;
    int rc = split_at("staff", id, len, &at, reason, reason_len);
    if (rc != 0) return rc;
    rc = check_name("staff name", id, at, RELAIS_ADDRESS_MAX, reason, reason_len);
    if (rc != 0) return rc;
    return check_name("staff organisation", id + at + 1, len - at - 1, RELAIS_ADDRESS_MAX, reason,
                      reason_len);
}

static int parse_service(const char *id, size_t len, relais_address_t *out, char *reason,
                         size_t reason_len)
{
    size_t at = 0;
    int rc = split_at("service", id, len, &at, reason, reason_len);
    if (rc != 0) return rc;

    const char *slash = memchr(id, '/', at);
    size_t role_len = slash != NULL ? (size_t)(slash - id) : at;
    rc = check_name("service role", id, role_len, sizeof out->role - 1, reason, reason_len);
    if (rc != 0) return rc;
    if (slash != NULL) {
        rc = check_name("service specialty", slash + 1, at - role_len - 1,
                        sizeof out->specialty - 1, reason, reason_len);
        if (rc != 0) return rc;
    }
    const char *territory = id + at + 1;
    size_t territory_len = len - at - 1;
    rc = check_name("service territory", territory, territory_len, sizeof out->territory - 1,
                    reason, reason_len);
    if (rc != 0) return rc;

    memcpy(out->role, id, role_len);
    out->role[role_len] = '\0';
    if (slash != NULL) {
        size_t spec_len = at - role_len - 1;
        memcpy(out->specialty, slash + 1, spec_len);
        out->specialty[spec_len] = '\0';
    }
    memcpy(out->territory, territory, territory_len);
    out->territory[territory_len] = '\0';
    return 0;
}

static const struct scheme {
    const char *name;
    relais_addr_kind_t kind;
} schemes[] = {
    {"rpps", RELAIS_ADDR_RPPS},       {"finess", RELAIS_ADDR_FINESS}, {"staff", RELAIS_ADDR_STAFF},
    {"service", RELAIS_ADDR_SERVICE}, {"app", RELAIS_ADDR_APP},
};

int relais_address_parse(const char *text, relais_address_t *out, char *reason, size_t reason_len)
{
    if (text == NULL || text[0] == '\0') return fail(reason, reason_len, "address is empty");
    size_t len = strnlen(text, RELAIS_ADDRESS_MAX);
    if (len >= RELAIS_ADDRESS_MAX) {
        return fail(reason, reason_len, "address is longer than %d bytes", RELAIS_ADDRESS_MAX - 1);
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == ' ' || (ch >= '\t' && ch <= '\r')) {
            return fail(reason, reason_len, "address contains whitespace at position %zu", i + 1);
        }
    }

    const char *colon = memchr(text, ':', len);
    if (colon == NULL) {
        return fail(reason, reason_len,
                    "address needs a scheme followed by ':' (rpps, finess, staff, service, app)");
    }
    size_t scheme_len = (size_t)(colon - text);
    if (scheme_len == 0) return fail(reason, reason_len, "address has an empty scheme");

    const struct scheme *sc = NULL;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        if (strlen(schemes[i].name) == scheme_len &&
            memcmp(schemes[i].name, text, scheme_len) == 0) {
            sc = &schemes[i];
        }
    }
    if (sc == NULL) {
        for (size_t i = 0; i < scheme_len; i++) {
            if (text[i] >= 'A' && text[i] <= 'Z') {
                return fail(reason, reason_len, "scheme must be lowercase, got '%.*s'",
                            (int)scheme_len, text);
            }
        }
        return fail(reason, reason_len,
                    "unknown scheme '%.*s' (expected rpps, finess, staff, service or app)",
                    (int)scheme_len, text);
    }

    const char *id = colon + 1;
    size_t id_len = len - scheme_len - 1;
    if (id_len == 0) return fail(reason, reason_len, "%s address has nothing after ':'", sc->name);
    if (memchr(id, ':', id_len) != NULL) {
        return fail(reason, reason_len, "%s address has a second ':'", sc->name);
    }

    int rc;
    relais_address_t parsed;
    memset(&parsed, 0, sizeof parsed);
    switch (sc->kind) {
    case RELAIS_ADDR_RPPS:
        rc = parse_rpps(id, id_len, reason, reason_len);
        break;
    case RELAIS_ADDR_FINESS:
        rc = parse_finess(id, id_len, reason, reason_len);
        break;
    case RELAIS_ADDR_STAFF:
        rc = parse_staff(id, id_len, reason, reason_len);
        break;
    case RELAIS_ADDR_SERVICE:
        rc = parse_service(id, id_len, &parsed, reason, reason_len);
        break;
    case RELAIS_ADDR_APP:
        rc = check_name("app name", id, id_len, RELAIS_ADDRESS_MAX, reason, reason_len);
        break;
    default:
        rc = fail(reason, reason_len, "unknown scheme");
        break;
    }
    if (rc != 0) return rc;

    if (out != NULL) {
        parsed.kind = sc->kind;
        memcpy(parsed.id, id, id_len);
        parsed.id[id_len] = '\0';
        *out = parsed;
    }
    codec__clear(reason, reason_len);
    return 0;
}

bool relais_address_valid(const char *text)
{
    return relais_address_parse(text, NULL, NULL, 0) == 0;
}
