/*
 * HL7 acknowledgements (see hl7.h): the ACK a sender gets back for each message, in the
 * message's own encoding characters and character set, addressed back to its sender
 * (MSH-3/4 and MSH-5/6 swapped), with MSA-2 echoing MSH-10. An error is written twice, in
 * the v2.5 ERR fields (ERR-2 location, ERR-3 code, ERR-4 severity, ERR-8 text) and in the
 * v2.3/2.4 ones (ERR-1, MSA-3, MSA-6), because French hospital engines still read either.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hl7.h"

typedef struct buf {
    char *p;
    size_t len, cap;
    bool oom;
} buf_t;

static void add(buf_t *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 512;
        while (b->len + n + 1 > cap) cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = true;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void adds(buf_t *b, const char *s)
{
    add(b, s, strlen(s));
}

static void addc(buf_t *b, char c)
{
    add(b, &c, 1);
}

/* Appends text with every delimiter escaped (and line breaks turned into spaces). */
static void add_escaped(buf_t *b, const char d[5], const char *s)
{
    static const char codes[5] = {'F', 'S', 'R', 'E', 'T'};
    for (; *s != '\0'; s++) {
        const char *hit = memchr(d, *s, 5);
        if (hit != NULL) {
            char esc[3] = {d[3], codes[hit - d], d[3]};
            add(b, esc, 3);
        } else if (*s == '\r' || *s == '\n') {
            addc(b, ' ');
        } else {
            addc(b, *s);
        }
    }
}

/* Appends a field of m as written (escapes kept), or nothing when m is NULL. */
static void add_raw(buf_t *b, const hl7_msg_t *m, unsigned field)
{
    if (m == NULL) return;
    const char *p;
    size_t n;
    hl7_raw_field(m, 0, field, &p, &n);
    add(b, p, n);
}

bool hl7_ack_wanted(const hl7_msg_t *m, hl7_ack_code_t code)
{
    if (m == NULL) return true;
    char mode[8];
    if (hl7_get(m, 0, 15, 0, 1, 1, mode, sizeof mode) != 0 || mode[0] == '\0') return true;
    if (strcmp(mode, "NE") == 0) return false;
    if (strcmp(mode, "ER") == 0) return code != HL7_AA;
    if (strcmp(mode, "SU") == 0) return code == HL7_AA;
    return true;
}

/* Converts UTF-8 text to ISO-8859-1/15 in place (what does not fit becomes '?'). */
static size_t to_single_byte(char *s, size_t n, hl7_charset_t cs)
{
    size_t o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        unsigned cp;
        size_t k;
        if (c < 0x80) {
            cp = c, k = 1;
        } else if ((c & 0xE0) == 0xC0 && i + 1 < n) {
            cp = ((c & 0x1Fu) << 6) | ((unsigned char)s[i + 1] & 0x3Fu), k = 2;
        } else if ((c & 0xF0) == 0xE0 && i + 2 < n) {
            cp = ((c & 0x0Fu) << 12) | (((unsigned char)s[i + 1] & 0x3Fu) << 6) |
                 ((unsigned char)s[i + 2] & 0x3Fu);
            k = 3;
        } else {
            cp = '?', k = (c & 0xF8) == 0xF0 ? 4 : 1;
        }
        if (cs == HL7_CHARSET_LATIN9) {
            static const unsigned from[8] = {0x20AC, 0x160, 0x161, 0x17D,
                                             0x17E,  0x152, 0x153, 0x178};
            static const unsigned char to[8] = {0xA4, 0xA6, 0xA8, 0xB4, 0xB8, 0xBC, 0xBD, 0xBE};
            for (int j = 0; j < 8; j++) {
                if (cp == from[j]) cp = to[j];
            }
        }
        s[o++] = cp <= 0xFF ? (char)cp : '?';
        i += k;
    }
    return o;
}

int hl7_ack_build(const hl7_msg_t *m, hl7_ack_code_t code, const hl7_error_t *err,
                  const char *control_id, const char *now_text, char **out, size_t *out_len)
{
    *out = NULL;
    *out_len = 0;
    char d[5] = {'|', '^', '~', '\\', '&'};
    char trigger[16] = "";
    bool enhanced = false;
    if (m != NULL) {
        char msh2[8];
        hl7_get(m, 0, 1, 0, 1, 1, msh2, sizeof msh2);
        d[0] = msh2[0];
        hl7_get(m, 0, 2, 0, 1, 1, msh2, sizeof msh2);
        d[1] = msh2[0], d[2] = msh2[1], d[3] = msh2[2], d[4] = msh2[3];
        if (hl7_get(m, 0, 9, 0, 2, 1, trigger, sizeof trigger) != 0) trigger[0] = '\0';
        char mode[8];
        enhanced = hl7_get(m, 0, 15, 0, 1, 1, mode, sizeof mode) == 0 && mode[0] != '\0';
    }
    static const char *const original[3] = {"AA", "AE", "AR"};
    static const char *const accept[3] = {"CA", "CE", "CR"};
    const char *ack = enhanced ? accept[code] : original[code];

    buf_t b = {0};
    adds(&b, "MSH");
    add(&b, d, 5);
    addc(&b, d[0]);
    add_raw(&b, m, 5); /* back to the sender: our application is its receiving one */
    addc(&b, d[0]);
    add_raw(&b, m, 6);
    addc(&b, d[0]);
    add_raw(&b, m, 3);
    addc(&b, d[0]);
    add_raw(&b, m, 4);
    addc(&b, d[0]);
    adds(&b, now_text);
    addc(&b, d[0]);
    addc(&b, d[0]);
    adds(&b, "ACK");
    if (trigger[0] != '\0') {
        addc(&b, d[1]);
        add_escaped(&b, d, trigger);
        addc(&b, d[1]);
        adds(&b, "ACK");
    }
    addc(&b, d[0]);
    add_escaped(&b, d, control_id);
    addc(&b, d[0]);
    if (m != NULL) {
        add_raw(&b, m, 11);
    } else {
        adds(&b, "P");
    }
    addc(&b, d[0]);
    if (m != NULL) {
        add_raw(&b, m, 12);
    } else {
        adds(&b, "2.5");
    }
    if (m != NULL) {
        const char *cs;
        size_t n;
        hl7_raw_field(m, 0, 18, &cs, &n);
        if (n > 0) {
            for (int i = 13; i <= 18; i++) addc(&b, d[0]);
            add(&b, cs, n);
        }
    }
    adds(&b, "\rMSA");
    addc(&b, d[0]);
    adds(&b, ack);
    addc(&b, d[0]);
    add_raw(&b, m, 10);
    if (err != NULL && code != HL7_AA) {
        char num[16];
        snprintf(num, sizeof num, "%d", err->code);
        addc(&b, d[0]);
        add_escaped(&b, d, err->text); /* MSA-3, text message (up to v2.4) */
        addc(&b, d[0]);
        addc(&b, d[0]);
        addc(&b, d[0]);
        adds(&b, num); /* MSA-6, error condition (up to v2.4) */
        addc(&b, d[1]);
        add_escaped(&b, d, err->text);
        adds(&b, "\rERR");
        addc(&b, d[0]);
        /* ERR-1 (v2.3/2.4): segment^sequence^field^code&text&HL70357 */
        char loc[16];
        add_escaped(&b, d, err->segment);
        addc(&b, d[1]);
        if (err->sequence > 0) {
            snprintf(loc, sizeof loc, "%u", err->sequence);
            adds(&b, loc);
        }
        addc(&b, d[1]);
        if (err->field > 0) {
            snprintf(loc, sizeof loc, "%u", err->field);
            adds(&b, loc);
        }
        addc(&b, d[1]);
        adds(&b, num);
        addc(&b, d[4]);
        add_escaped(&b, d, err->text);
        addc(&b, d[4]);
        adds(&b, "HL70357");
        addc(&b, d[0]);
        /* ERR-2 (v2.5): segment^sequence^field */
        if (err->segment[0] != '\0') {
            add_escaped(&b, d, err->segment);
            addc(&b, d[1]);
            if (err->sequence > 0) {
                snprintf(loc, sizeof loc, "%u", err->sequence);
                adds(&b, loc);
            }
            addc(&b, d[1]);
            if (err->field > 0) {
                snprintf(loc, sizeof loc, "%u", err->field);
                adds(&b, loc);
            }
        }
        addc(&b, d[0]);
        adds(&b, num); /* ERR-3: code^text^HL70357 */
        addc(&b, d[1]);
        add_escaped(&b, d, err->text);
        addc(&b, d[1]);
        adds(&b, "HL70357");
        addc(&b, d[0]);
        adds(&b, "E"); /* ERR-4 severity */
        for (int i = 4; i < 8; i++) addc(&b, d[0]);
        add_escaped(&b, d, err->text); /* ERR-8 user message */
    }
    addc(&b, '\r');
    if (b.oom) {
        free(b.p);
        return -ENOMEM;
    }
    if (m != NULL &&
        (hl7_charset(m) == HL7_CHARSET_LATIN1 || hl7_charset(m) == HL7_CHARSET_LATIN9)) {
        b.len = to_single_byte(b.p, b.len, hl7_charset(m));
        b.p[b.len] = '\0';
    }
    *out = b.p;
    *out_len = b.len;
    return 0;
}
