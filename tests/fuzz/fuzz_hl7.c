/*
 * Fuzz target: relais-hl7's HL7 v2 parser and ACK builder (agents/hl7/hl7_parse.c,
 * hl7_ack.c), which read every byte a hospital's engine sends inside an MLLP frame.
 *
 * The input is one message. Properties checked:
 *   - on failure: one of the parser's documented HL7 codes, no message, a non-empty text;
 *   - on success: at least one segment, the first is MSH, every name is three characters;
 *     every value read (fields, repetitions, components, subcomponents) comes back as 0
 *     with NUL-free valid UTF-8 that fits the buffer, or HL7_ERR_DATA_TYPE / -E2BIG with an
 *     empty output; the content hash is stable;
 *   - the ACK of every outcome (AA, AE with an ERR, AR) parses again, carries MSA-1 for
 *     that outcome and echoes MSH-10; a message that could not be parsed is still answered.
 */
#include <errno.h>

#include "fuzz.h"
#include "hl7.h"

static bool utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        size_t k = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3 : 4;
        for (size_t i = 1; i < k; i++) {
            if ((p[i] & 0xC0) != 0x80) return false;
        }
        p += k;
    }
    return true;
}

static void check_values(const hl7_msg_t *m)
{
    size_t nseg = hl7_segment_count(m);
    for (size_t s = 0; s < nseg && s < 64; s++) {
        FUZZ_CHECK(strlen(hl7_segment_name(m, s)) == 3);
        for (unsigned f = 1; f <= 40; f++) {
            unsigned reps = hl7_repetitions(m, s, f);
            for (unsigned r = 0; r <= reps && r < 3; r++) {
                for (unsigned c = 1; c <= 4; c++) {
                    for (unsigned sub = 1; sub <= 2; sub++) {
                        char out[32];
                        int rc = hl7_get(m, s, f, r, c, sub, out, sizeof out);
                        FUZZ_CHECKF(rc == 0 || rc == HL7_ERR_DATA_TYPE || rc == -E2BIG, "%d", rc);
                        FUZZ_CHECK(memchr(out, '\0', sizeof out) != NULL);
                        if (rc != 0) FUZZ_CHECK(out[0] == '\0');
                        FUZZ_CHECK(utf8_ok(out));
                    }
                }
            }
        }
    }
}

static void check_ack(const hl7_msg_t *m, hl7_ack_code_t code)
{
    hl7_error_t err;
    hl7_fail(&err, HL7_ERR_INTERNAL, "PID", 1, 3, "a text with | ^ ~ \\ & \r in it");
    char *ack;
    size_t len;
    FUZZ_CHECK(hl7_ack_build(m, code, &err, "CTRL|1", "20260101000000+0100", &ack, &len) == 0);
    hl7_msg_t *a = NULL;
    hl7_error_t aerr;
    int rc = hl7_parse(ack, len, NULL, &a, &aerr);
    FUZZ_CHECKF(rc == 0, "ACK does not parse: %s", aerr.text);
    long msa = hl7_find(a, "MSA", 0);
    FUZZ_CHECK(msa > 0);
    char v[64];
    FUZZ_CHECK(hl7_get(a, (size_t)msa, 1, 0, 1, 1, v, sizeof v) == 0);
    FUZZ_CHECK(v[0] == 'A' || v[0] == 'C');
    FUZZ_CHECK(v[1] == "AER"[code]);
    if (m != NULL) {
        const char *p, *q;
        size_t n, k;
        hl7_raw_field(m, 0, 10, &p, &n);
        hl7_raw_field(a, (size_t)msa, 2, &q, &k);
        /* Echoed as written; a single-byte charset converts non-Latin text to '?'. */
        if (hl7_charset(m) != HL7_CHARSET_LATIN1 && hl7_charset(m) != HL7_CHARSET_LATIN9) {
            FUZZ_CHECK(n == k && memcmp(p, q, n) == 0);
        }
    }
    if (code != HL7_AA) FUZZ_CHECK(hl7_find(a, "ERR", 0) > 0);
    hl7_msg_free(&a);
    free(ack);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    hl7_msg_t *m = NULL;
    hl7_error_t err = {0};
    hl7_limits_t lim = {.max_bytes = 64 * 1024, .max_segments = 500};
    int rc = hl7_parse((const char *)data, size, &lim, &m, &err);
    if (rc != 0) {
        FUZZ_CHECKF(rc == HL7_ERR_SEGMENT_SEQUENCE || rc == HL7_ERR_DATA_TYPE ||
                        rc == HL7_ERR_TABLE_VALUE || rc == HL7_ERR_INTERNAL,
                    "%d", rc);
        FUZZ_CHECK(m == NULL);
        FUZZ_CHECK(err.text[0] != '\0');
        check_ack(NULL, HL7_AE);
        return 0;
    }
    FUZZ_CHECK(hl7_segment_count(m) >= 1);
    FUZZ_CHECK(strcmp(hl7_segment_name(m, 0), "MSH") == 0);
    check_values(m);
    uint8_t h1[32], h2[32];
    hl7_content_hash(m, h1);
    hl7_content_hash(m, h2);
    FUZZ_CHECK(memcmp(h1, h2, 32) == 0);
    check_ack(m, HL7_AA);
    check_ack(m, HL7_AE);
    check_ack(m, HL7_AR);
    hl7_msg_free(&m);
    return 0;
}
