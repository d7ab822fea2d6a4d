/*
 * The HL7 v2 parser, ACK builder and MLLP framing of relais-hl7 (agents/hl7), on the
 * sample messages of deploy/hl7/samples and on hand-made traps.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl7.h"
#include "mllp.h"

static char *slurp(const char *name, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", HL7_SAMPLES_DIR, name);
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *buf = malloc(1 << 16);
    *len = fread(buf, 1, 1 << 16, f);
    fclose(f);
    return buf;
}

static hl7_msg_t *parse_ok(const char *text)
{
    hl7_msg_t *m = NULL;
    hl7_error_t err = {0};
    int rc = hl7_parse(text, strlen(text), NULL, &m, &err);
    cr_assert_eq(rc, 0, "parse failed: %d %s", rc, err.text);
    return m;
}

static hl7_msg_t *sample(const char *name)
{
    size_t len;
    char *buf = slurp(name, &len);
    hl7_msg_t *m = NULL;
    hl7_error_t err = {0};
    int rc = hl7_parse(buf, len, NULL, &m, &err);
    free(buf);
    cr_assert_eq(rc, 0, "%s: %d %s", name, rc, err.text);
    return m;
}

static void expect(const hl7_msg_t *m, const char *seg, unsigned field, unsigned rep, unsigned comp,
                   unsigned sub, const char *want)
{
    long i = hl7_find(m, seg, 0);
    cr_assert_geq(i, 0, "no %s", seg);
    char out[256];
    int rc = hl7_get(m, (size_t)i, field, rep, comp, sub, out, sizeof out);
    cr_assert_eq(rc, 0, "%s-%u: %d", seg, field, rc);
    cr_assert_str_eq(out, want, "%s-%u[%u].%u.%u", seg, field, rep, comp, sub);
}

Test(hl7_parse, reads_fields_components_repetitions_and_subcomponents_of_a_discharge)
{
    hl7_msg_t *m = sample("a03-heart-failure.hl7");
    cr_assert_eq(hl7_segment_count(m), 8);
    cr_assert_str_eq(hl7_segment_name(m, 0), "MSH");
    expect(m, "MSH", 1, 0, 1, 1, "|");
    expect(m, "MSH", 2, 0, 1, 1, "^~\\&");
    expect(m, "MSH", 3, 0, 1, 1, "DXCARE");
    expect(m, "MSH", 9, 0, 1, 1, "ADT");
    expect(m, "MSH", 9, 0, 2, 1, "A03");
    expect(m, "MSH", 10, 0, 1, 1, "MSG-A03-0001");
    expect(m, "MSH", 18, 0, 1, 1, "UNICODE UTF-8");
    expect(m, "PID", 3, 1, 1, 1, "248031234567890");
    expect(m, "PID", 3, 1, 4, 2, "1.2.250.1.213.1.4.8");
    expect(m, "PID", 3, 1, 5, 1, "INS");
    expect(m, "PID", 32, 1, 1, 1, "QUAL");
    expect(m, "PV1", 45, 0, 1, 1, "20261201100000");
    expect(m, "ROL", 4, 0, 13, 1, "RPPS");
    long pid = hl7_find(m, "PID", 0);
    cr_assert_eq(hl7_repetitions(m, (size_t)pid, 3), 2);
    cr_assert_eq(hl7_repetitions(m, (size_t)pid, 2), 0);
    /* Absent values are empty, not errors: past the last field, component, repetition. */
    expect(m, "PID", 60, 0, 1, 1, "");
    expect(m, "PID", 5, 3, 1, 1, "");
    expect(m, "PID", 5, 0, 9, 1, "");
    expect(m, "PD1", 4, 0, 1, 1, "");
    cr_assert_eq(hl7_charset(m), HL7_CHARSET_UTF8);
    hl7_msg_free(&m);
    cr_assert_null(m);
}

Test(hl7_parse, splits_segments_on_lf_and_crlf_as_on_cr)
{
    const char *names[] = {"a03-lf.hl7", "a03-crlf.hl7"};
    for (int k = 0; k < 2; k++) {
        hl7_msg_t *m = sample(names[k]);
        cr_assert_eq(hl7_segment_count(m), 8, "%s", names[k]);
        expect(m, "PV1", 45, 0, 1, 1, "20261201100000");
        expect(m, "DG1", 3, 0, 1, 1, "I50.0");
        hl7_msg_free(&m);
    }
}

Test(hl7_parse, decodes_every_escape_sequence)
{
    hl7_msg_t *m = sample("a03-escapes.hl7");
    expect(m, "PID", 5, 0, 1, 1, "O^BRIEN&X");
    expect(m, "PID", 5, 0, 2, 1, "ANNE|MARIE~\\\xc3\xa9");
    hl7_msg_free(&m);
    m = parse_ok("MSH|^~\\&|A|B\rNTE|1||line\\.br\\two \\H\\bold\\N\\\r");
    expect(m, "NTE", 3, 0, 1, 1, "line\ntwo bold");
    hl7_msg_free(&m);
}

Test(hl7_parse, refuses_malformed_escapes_with_a_data_type_error)
{
    const char *bad[] = {
        "MSH|^~\\&|A|B\rPID|1||\\F\r",      /* never closed */
        "MSH|^~\\&|A|B\rPID|1||\\Q\\\r",    /* unknown */
        "MSH|^~\\&|A|B\rPID|1||\\X0\\\r",   /* odd hex digits */
        "MSH|^~\\&|A|B\rPID|1||\\XZZ\\\r",  /* not hex */
        "MSH|^~\\&|A|B\rPID|1||\\X00\\\r",  /* a NUL */
        "MSH|^~\\&|A|B\rPID|1||\\XC3\\\r",  /* half a UTF-8 character */
        "MSH|^~\\&|A|B\rPID|1||\\Zabc\\\r", /* locally defined */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hl7_msg_t *m = parse_ok(bad[i]);
        char out[64] = "x";
        cr_assert_eq(hl7_get(m, 1, 3, 0, 1, 1, out, sizeof out), HL7_ERR_DATA_TYPE, "%zu", i);
        cr_assert_str_eq(out, "");
        hl7_msg_free(&m);
    }
}

Test(hl7_parse, converts_iso_8859_1_to_utf8)
{
    hl7_msg_t *m = sample("a03-latin1.hl7");
    cr_assert_eq(hl7_charset(m), HL7_CHARSET_LATIN1);
    expect(m, "PID", 5, 0, 1, 1, "L\xc3\xa9vy");
    expect(m, "PID", 5, 0, 2, 1, "Am\xc3\xa9lie");
    hl7_msg_free(&m);
    /* \Xhh\ is in the message's character set too. */
    m = parse_ok("MSH|^~\\&|A|B||||||||||||||8859/1\rPID|1||\\XE9\\\r");
    expect(m, "PID", 3, 0, 1, 1, "\xc3\xa9");
    hl7_msg_free(&m);
    m = parse_ok("MSH|^~\\&|A|B||||||||||||||8859/15\rPID|1||\\XA4\\\r");
    expect(m, "PID", 3, 0, 1, 1, "\xe2\x82\xac");
    hl7_msg_free(&m);
}

Test(hl7_parse, refuses_bytes_outside_the_declared_charset)
{
    struct {
        const char *text;
        int code;
    } cases[] = {
        {"MSH|^~\\&|A|B\rPID|1||L\xe9vy\r", HL7_ERR_DATA_TYPE}, /* latin-1 bytes, no MSH-18 */
        {"MSH|^~\\&|A|B||||||||||||||ASCII\rPID|1||\xc3\xa9\r", HL7_ERR_DATA_TYPE},
        {"MSH|^~\\&|A|B||||||||||||||UNICODE UTF-8\rPID|1||\xed\xa0\x80\r", HL7_ERR_DATA_TYPE},
        {"MSH|^~\\&|A|B||||||||||||||ISO IR87\rPID|1\r", HL7_ERR_TABLE_VALUE},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hl7_msg_t *m = NULL;
        hl7_error_t err = {0};
        int rc = hl7_parse(cases[i].text, strlen(cases[i].text), NULL, &m, &err);
        cr_assert_eq(rc, cases[i].code, "case %zu: %d %s", i, rc, err.text);
        cr_assert_null(m);
        cr_assert_neq(err.text[0], '\0');
    }
    hl7_msg_t *m = NULL;
    hl7_error_t err = {0};
    cr_assert_eq(hl7_parse("MSH|^~\\&|A\0B\r", 13, NULL, &m, &err), HL7_ERR_DATA_TYPE);
}

Test(hl7_parse, refuses_what_is_not_an_hl7_message)
{
    const char *bad[] = {
        "",
        "HELLO",
        "PID|1\rMSH|^~\\&|A\r",
        "MSH|^^\\&|A\r",              /* repeated delimiter */
        "MSH|^~a&|A\r",               /* a letter as delimiter */
        "MSH|^~\\&XY|A\r",            /* MSH-2 too long */
        "MSH|^~\\&|A\rpid|1\r",       /* lowercase segment name */
        "MSH|^~\\&|A\rPI\r",          /* short segment name */
        "MSH|^~\\&|A\rPIDX|1\r",      /* no separator after the name */
        "MSH|^~\\&|A\rMSH|^~\\&|B\r", /* two messages in one frame */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        hl7_msg_t *m = NULL;
        hl7_error_t err = {0};
        int rc = hl7_parse(bad[i], strlen(bad[i]), NULL, &m, &err);
        cr_assert(rc == HL7_ERR_SEGMENT_SEQUENCE || rc == HL7_ERR_DATA_TYPE, "%zu: %d", i, rc);
        cr_assert_null(m);
        cr_assert_neq(err.text[0], '\0', "%zu", i);
    }
}

Test(hl7_parse, enforces_its_size_limits)
{
    hl7_limits_t lim = {.max_bytes = 64, .max_segments = 3};
    hl7_msg_t *m = NULL;
    hl7_error_t err = {0};
    char big[128];
    memset(big, 'A', sizeof big);
    memcpy(big, "MSH|^~\\&|", 9);
    cr_assert_eq(hl7_parse(big, sizeof big, &lim, &m, &err), HL7_ERR_INTERNAL);
    const char *many = "MSH|^~\\&|A\rNTE|1\rNTE|2\rNTE|3\r";
    cr_assert_eq(hl7_parse(many, strlen(many), &lim, &m, &err), HL7_ERR_INTERNAL);
    cr_assert_null(m);
}

Test(hl7_parse, reports_a_value_too_long_for_the_callers_buffer)
{
    hl7_msg_t *m = sample("a03-heart-failure.hl7");
    char small[4];
    cr_assert_eq(hl7_get(m, 0, 3, 0, 1, 1, small, sizeof small), -E2BIG);
    cr_assert_str_eq(small, "");
    hl7_msg_free(&m);
}

Test(hl7_parse, hashes_two_sendings_alike_whatever_msh7_and_segment_ends)
{
    hl7_msg_t *a = parse_ok("MSH|^~\\&|A|B|C|D|20261201||ADT^A03|1|P|2.5\rPID|1\r");
    hl7_msg_t *b = parse_ok("MSH|^~\\&|A|B|C|D|20261202120000||ADT^A03|1|P|2.5\nPID|1\n");
    hl7_msg_t *c = parse_ok("MSH|^~\\&|A|B|C|D|20261201||ADT^A03|1|P|2.5\rPID|2\r");
    uint8_t ha[32], hb[32], hc[32];
    hl7_content_hash(a, ha);
    hl7_content_hash(b, hb);
    hl7_content_hash(c, hc);
    cr_assert_arr_eq(ha, hb, 32);
    cr_assert(memcmp(ha, hc, 32) != 0);
    hl7_msg_free(&a);
    hl7_msg_free(&b);
    hl7_msg_free(&c);
}

static char *ack_of(hl7_msg_t *m, hl7_ack_code_t code, const hl7_error_t *err)
{
    char *out;
    size_t len;
    cr_assert_eq(hl7_ack_build(m, code, err, "ACK-1", "20261201103001+0100", &out, &len), 0);
    cr_assert_eq(strlen(out), len);
    return out;
}

Test(hl7_ack, answers_aa_to_the_sender_with_its_control_id)
{
    hl7_msg_t *m = sample("a03-heart-failure.hl7");
    char *ack = ack_of(m, HL7_AA, NULL);
    cr_assert_str_eq(ack, "MSH|^~\\&|RELAIS|CPTS|DXCARE|CHU-RENNES|20261201103001+0100||"
                          "ACK^A03^ACK|ACK-1|P|2.5^FRA^2.11||||||UNICODE UTF-8\r"
                          "MSA|AA|MSG-A03-0001\r");
    /* The ACK is itself a message the parser reads. */
    hl7_msg_t *a = parse_ok(ack);
    expect(a, "MSA", 1, 0, 1, 1, "AA");
    hl7_msg_free(&a);
    free(ack);
    hl7_msg_free(&m);
}

Test(hl7_ack, writes_err_with_code_location_and_escaped_text)
{
    hl7_msg_t *m = sample("a03-heart-failure.hl7");
    hl7_error_t err;
    hl7_fail(&err, HL7_ERR_REQUIRED_MISSING, "PV1", 1, 45, "no discharge time | none ^ at all");
    char *ack = ack_of(m, HL7_AE, &err);
    hl7_msg_t *a = parse_ok(ack);
    expect(a, "MSA", 1, 0, 1, 1, "AE");
    expect(a, "MSA", 2, 0, 1, 1, "MSG-A03-0001");
    expect(a, "MSA", 6, 0, 1, 1, "101");
    expect(a, "ERR", 1, 0, 1, 1, "PV1");
    expect(a, "ERR", 1, 0, 3, 1, "45");
    expect(a, "ERR", 1, 0, 4, 1, "101");
    expect(a, "ERR", 2, 0, 1, 1, "PV1");
    expect(a, "ERR", 2, 0, 2, 1, "1");
    expect(a, "ERR", 2, 0, 3, 1, "45");
    expect(a, "ERR", 3, 0, 1, 1, "101");
    expect(a, "ERR", 3, 0, 3, 1, "HL70357");
    expect(a, "ERR", 4, 0, 1, 1, "E");
    expect(a, "ERR", 8, 0, 1, 1, "no discharge time | none ^ at all");
    hl7_msg_free(&a);
    free(ack);
    hl7_msg_free(&m);
}

Test(hl7_ack, uses_the_accept_codes_in_enhanced_mode_and_honours_msh15)
{
    hl7_msg_t *m = sample("a03-enhanced.hl7");
    char *ack = ack_of(m, HL7_AR, NULL);
    cr_assert(strstr(ack, "\rMSA|CR|MSG-A03-0008\r") != NULL, "%s", ack);
    free(ack);
    cr_assert(hl7_ack_wanted(m, HL7_AA));
    hl7_msg_free(&m);
    m = parse_ok("MSH|^~\\&|A|B|C|D|1||ADT^A03|9|P|2.5|||NE\r");
    cr_assert_not(hl7_ack_wanted(m, HL7_AA));
    cr_assert_not(hl7_ack_wanted(m, HL7_AE));
    hl7_msg_free(&m);
    m = parse_ok("MSH|^~\\&|A|B|C|D|1||ADT^A03|9|P|2.5|||ER\r");
    cr_assert_not(hl7_ack_wanted(m, HL7_AA));
    cr_assert(hl7_ack_wanted(m, HL7_AE));
    hl7_msg_free(&m);
    cr_assert(hl7_ack_wanted(NULL, HL7_AA));
}

Test(hl7_ack, answers_even_a_message_it_could_not_parse)
{
    hl7_error_t err;
    hl7_fail(&err, HL7_ERR_SEGMENT_SEQUENCE, "", 0, 0, "not HL7");
    char *ack = ack_of(NULL, HL7_AE, &err);
    hl7_msg_t *a = parse_ok(ack);
    expect(a, "MSA", 1, 0, 1, 1, "AE");
    expect(a, "ERR", 3, 0, 1, 1, "100");
    hl7_msg_free(&a);
    free(ack);
}

Test(hl7_ack, answers_a_latin1_message_in_latin1)
{
    hl7_msg_t *m = parse_ok("MSH|^~\\&|H\xf4pital|B|C|D|1||ADT^A03|9|P|2.5||||||8859/1\r");
    char *ack = ack_of(m, HL7_AA, NULL);
    cr_assert(strstr(ack, "|C|D|H\xf4pital|B|") != NULL, "%s", ack);
    free(ack);
    hl7_msg_free(&m);
}

static int extract(const char *buf, size_t len, size_t max, size_t *start, size_t *flen,
                   size_t *consumed)
{
    size_t scan = 0;
    return mllp_extract((const uint8_t *)buf, len, max, &scan, start, flen, consumed);
}

Test(hl7_mllp, finds_one_frame_then_the_next)
{
    const char in[] = "\x0bMSH|A\x1c\r\r\n\x0bMSH|B\x1c\r";
    size_t len = sizeof in - 1, start, flen, consumed;
    cr_assert_eq(extract(in, len, 100, &start, &flen, &consumed), MLLP_FRAME);
    cr_assert_eq(flen, 5);
    cr_assert_eq(memcmp(in + start, "MSH|A", 5), 0);
    cr_assert_eq(extract(in + consumed, len - consumed, 100, &start, &flen, &consumed), MLLP_FRAME);
    cr_assert_eq(flen, 5);
}

Test(hl7_mllp, waits_for_a_frame_that_arrives_byte_by_byte)
{
    const char in[] = "\x0bMSH|A\x1c\r";
    size_t scan = 0, start, flen, consumed;
    for (size_t n = 0; n < sizeof in - 1; n++) {
        cr_assert_eq(mllp_extract((const uint8_t *)in, n, 100, &scan, &start, &flen, &consumed),
                     MLLP_MORE, "%zu", n);
    }
    cr_assert_eq(
        mllp_extract((const uint8_t *)in, sizeof in - 1, 100, &scan, &start, &flen, &consumed),
        MLLP_FRAME);
}

Test(hl7_mllp, names_each_framing_error)
{
    size_t start, flen, consumed;
    cr_assert_eq(extract("MSH|A\x1c\r", 7, 100, &start, &flen, &consumed), MLLP_EGARBAGE);
    cr_assert_eq(extract("\x0bMSH\x0bMSH\x1c\r", 10, 100, &start, &flen, &consumed), MLLP_ENESTED);
    cr_assert_eq(extract("\x0bMSH\x1cX", 6, 100, &start, &flen, &consumed), MLLP_ETRAILER);
    cr_assert_eq(extract("\x0bMSH|AAAAAAAA", 14, 8, &start, &flen, &consumed), MLLP_ETOOBIG);
    cr_assert_eq(extract("\x0bMSH|AAAAAAAA\x1c\r", 16, 8, &start, &flen, &consumed), MLLP_ETOOBIG);
    cr_assert_str_neq(mllp_strerror(MLLP_ETOOBIG), "no error");
}

Test(hl7_mllp, wraps_a_message)
{
    uint8_t *f;
    size_t n;
    cr_assert_eq(mllp_wrap("MSA", 3, &f, &n), 0);
    cr_assert_eq(n, 6);
    cr_assert_eq(memcmp(f, "\x0bMSA\x1c\r", 6), 0);
    free(f);
}
