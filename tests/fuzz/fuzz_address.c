/*
 * Fuzz target: relais_address_parse(), which every recipient, on_behalf_of and directory
 * entry goes through.
 *
 * The input, cut at its first NUL, is the text. Properties checked:
 *   - on failure: RELAIS_EINVALID, *out untouched, a non-empty reason that fits the buffer
 *     (a short buffer gets a prefix of the same sentence), relais_address_valid() false;
 *   - on success: the text is under RELAIS_ADDRESS_MAX, the reason is emptied, the kind is
 *     one of the five and matches the scheme written before ':', every field of *out is
 *     NUL-terminated inside its array, id is exactly the text after ':', the service parts
 *     put back together give the text again and are empty for other schemes, the per-scheme
 *     shape holds (11 digits for rpps, 9 characters for finess), and parsing the same text
 *     again, with or without an output, gives the same result.
 */
#include "fuzz.h"

static const char *const scheme_names[] = {NULL, "rpps", "finess", "staff", "service", "app"};

static void check_fields(const char *text, const relais_address_t *a)
{
    FUZZ_CHECK(a->kind >= RELAIS_ADDR_RPPS && a->kind <= RELAIS_ADDR_APP);
    FUZZ_CHECK(fuzz_terminated(a->id, sizeof a->id));
    FUZZ_CHECK(fuzz_terminated(a->role, sizeof a->role));
    FUZZ_CHECK(fuzz_terminated(a->specialty, sizeof a->specialty));
    FUZZ_CHECK(fuzz_terminated(a->territory, sizeof a->territory));

    const char *scheme = scheme_names[a->kind];
    size_t scheme_len = strlen(scheme);
    FUZZ_CHECKF(strncmp(text, scheme, scheme_len) == 0 && text[scheme_len] == ':',
                "'%s' parsed as kind %d", text, (int)a->kind);
    FUZZ_CHECKF(strcmp(a->id, text + scheme_len + 1) == 0, "id '%s' of '%s'", a->id, text);
    FUZZ_CHECK(a->id[0] != '\0');

    switch (a->kind) {
    case RELAIS_ADDR_RPPS:
        FUZZ_CHECK(strlen(a->id) == 11 && strspn(a->id, "0123456789") == 11);
        break;
    case RELAIS_ADDR_FINESS:
        FUZZ_CHECK(strlen(a->id) == 9 && strspn(a->id + 2, "0123456789") == 7);
        FUZZ_CHECK(strspn(a->id, "0123456789") >= 2 ||
                   (a->id[0] == '2' && (a->id[1] == 'A' || a->id[1] == 'B')));
        break;
    case RELAIS_ADDR_SERVICE: {
        char rebuilt[2 * RELAIS_ADDRESS_MAX];
        FUZZ_CHECK(a->role[0] != '\0' && a->territory[0] != '\0');
        snprintf(rebuilt, sizeof rebuilt, "service:%s%s%s@%s", a->role,
                 a->specialty[0] != '\0' ? "/" : "", a->specialty, a->territory);
        FUZZ_CHECKF(strcmp(rebuilt, text) == 0, "'%s' rebuilt as '%s'", text, rebuilt);
        break;
    }
    default:
        break;
    }
    if (a->kind != RELAIS_ADDR_SERVICE) {
        FUZZ_CHECK(a->role[0] == '\0' && a->specialty[0] == '\0' && a->territory[0] == '\0');
    }
    if (a->kind == RELAIS_ADDR_STAFF) FUZZ_CHECK(strchr(a->id, '@') != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    FUZZ_CHECK(text != NULL);
    if (size > 0) memcpy(text, data, size);
    text[size] = '\0';

    relais_address_t out, untouched;
    memset(&untouched, 0xa5, sizeof untouched);
    out = untouched;
    char reason[RELAIS_REASON_MAX];
    memset(reason, 'x', sizeof reason);
    int rc = relais_address_parse(text, &out, reason, sizeof reason);
    FUZZ_CHECK(fuzz_terminated(reason, sizeof reason));
    FUZZ_CHECK(relais_address_parse(text, NULL, NULL, 0) == rc);
    FUZZ_CHECK(relais_address_valid(text) == (rc == 0));

    if (rc != 0) {
        FUZZ_CHECKF(rc == RELAIS_EINVALID, "rc %d", rc);
        FUZZ_CHECK(memcmp(&out, &untouched, sizeof out) == 0);
        FUZZ_CHECK(reason[0] != '\0');
        char small[8];
        size_t cap = 1 + size % sizeof small;
        FUZZ_CHECK(relais_address_parse(text, NULL, small, cap) == rc);
        FUZZ_CHECK(fuzz_terminated(small, cap));
        FUZZ_CHECKF(strncmp(small, reason, cap - 1) == 0, "'%s' is not a prefix of '%s'", small,
                    reason);
        free(text);
        return 0;
    }

    FUZZ_CHECK(strlen(text) < RELAIS_ADDRESS_MAX);
    FUZZ_CHECKF(reason[0] == '\0', "success with reason '%s'", reason);
    check_fields(text, &out);

    relais_address_t again;
    memset(&again, 0, sizeof again);
    FUZZ_CHECK(relais_address_parse(text, &again, NULL, 0) == 0);
    FUZZ_CHECK(again.kind == out.kind && strcmp(again.id, out.id) == 0 &&
               strcmp(again.role, out.role) == 0 && strcmp(again.specialty, out.specialty) == 0 &&
               strcmp(again.territory, out.territory) == 0);
    free(text);
    return 0;
}
