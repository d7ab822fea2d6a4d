/*
 * The HL7 v2 ER7 parser (see hl7.h): reads MSH's encoding characters and MSH-18, brings
 * the text to UTF-8, splits segments and checks their names. Values are cut out and their
 * escape sequences decoded on demand, in hl7_get(), so a message of 40 segments of which
 * the gateway reads 15 fields costs one pass and 15 small copies.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hl7.h"

typedef struct seg {
    size_t off, len; /* in buf, the segment's text without its terminator */
    char name[4];
} seg_t;

struct hl7_msg {
    char *buf; /* UTF-8 text, NUL-terminated */
    size_t len;
    seg_t *segs;
    size_t nsegs;
    char fs, cs, rs, ec, ss; /* field, component, repetition, escape, subcomponent */
    hl7_charset_t charset;
};

int hl7_fail(hl7_error_t *err, int code, const char *segment, unsigned sequence, unsigned field,
             const char *fmt, ...)
{
    if (err == NULL) return code;
    err->code = code;
    snprintf(err->segment, sizeof err->segment, "%s", segment != NULL ? segment : "");
    err->sequence = sequence;
    err->field = field;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    return code;
}

/* Length of the valid UTF-8 sequence at p (1..4), or 0 when it is not one (overlongs and
 * surrogates included). */
static size_t utf8_seq(const unsigned char *p, size_t n)
{
    unsigned char c = p[0];
    if (c < 0x80) return 1;
    size_t need;
    unsigned min;
    unsigned cp;
    if ((c & 0xE0) == 0xC0) {
        need = 2, min = 0x80, cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
        need = 3, min = 0x800, cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
        need = 4, min = 0x10000, cp = c & 0x07;
    } else {
        return 0;
    }
    if (n < need) return 0;
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return need;
}

/* Offset of the first byte that breaks UTF-8 in p, or n when all is valid. */
static size_t utf8_check(const unsigned char *p, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = utf8_seq(p + i, n - i);
        if (k == 0) return i;
        i += k;
    }
    return n;
}

/* The code point of byte c in ISO-8859-15, which differs from ISO-8859-1 in eight places. */
static unsigned latin9_cp(unsigned char c)
{
    switch (c) {
    case 0xA4:
        return 0x20AC;
    case 0xA6:
        return 0x0160;
    case 0xA8:
        return 0x0161;
    case 0xB4:
        return 0x017D;
    case 0xB8:
        return 0x017E;
    case 0xBC:
        return 0x0152;
    case 0xBD:
        return 0x0153;
    case 0xBE:
        return 0x0178;
    default:
        return c;
    }
}

/* Appends the UTF-8 of cp (< 0x10000) at out; returns the bytes written. */
static size_t put_cp(char *out, unsigned cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xC0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    out[0] = (char)(0xE0 | (cp >> 12));
    out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
    out[2] = (char)(0x80 | (cp & 0x3F));
    return 3;
}

/* Converts n bytes of a single-byte charset to UTF-8 into out (room for 3n bytes). */
static size_t single_to_utf8(const unsigned char *p, size_t n, hl7_charset_t cs, char *out)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned cp = cs == HL7_CHARSET_LATIN9 ? latin9_cp(p[i]) : p[i];
        o += put_cp(out + o, cp);
    }
    return o;
}

/* Reads MSH-18's first repetition's first component from the raw first segment. */
static int read_charset(const char *p, size_t n, char fs, char rs, char cs, hl7_charset_t *out,
                        hl7_error_t *err)
{
    /* MSH|^~\&|3|4|5|6|7|8|9|10|11|12|13|14|15|16|17|18: MSH-18 follows the 17th separator. */
    unsigned seps = 0;
    size_t i = 0;
    for (; i < n && seps < 17; i++) {
        if (p[i] == fs) seps++;
    }
    char name[32] = "";
    if (seps == 17) {
        size_t k = 0;
        while (i < n && p[i] != fs && p[i] != rs && p[i] != cs && k + 1 < sizeof name) {
            name[k++] = p[i++];
        }
        name[k] = '\0';
    }
    if (name[0] == '\0') {
        *out = HL7_CHARSET_DEFAULT;
    } else if (strcmp(name, "ASCII") == 0) {
        *out = HL7_CHARSET_ASCII;
    } else if (strcmp(name, "UNICODE UTF-8") == 0) {
        *out = HL7_CHARSET_UTF8;
    } else if (strcmp(name, "8859/1") == 0) {
        *out = HL7_CHARSET_LATIN1;
    } else if (strcmp(name, "8859/15") == 0) {
        *out = HL7_CHARSET_LATIN9;
    } else {
        return hl7_fail(err, HL7_ERR_TABLE_VALUE, "MSH", 1, 18,
                        "character set not supported (UNICODE UTF-8, ASCII, 8859/1, 8859/15)");
    }
    return 0;
}

static bool is_segment_name(const char *p, size_t n)
{
    if (n < 3) return false;
    for (int i = 0; i < 3; i++) {
        char c = p[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) return false;
    }
    return p[0] >= 'A' && p[0] <= 'Z';
}

static bool is_delimiter(char c)
{
    unsigned char u = (unsigned char)c;
    return u > 0x20 && u < 0x7F && !(c >= 'A' && c <= 'Z') && !(c >= 'a' && c <= 'z') &&
           !(c >= '0' && c <= '9');
}

/* Checks MSH's first nine bytes and takes the encoding characters. */
static int read_delimiters(hl7_msg_t *m, const char *p, size_t n, hl7_error_t *err)
{
    if (n < 8 || memcmp(p, "MSH", 3) != 0) {
        return hl7_fail(err, HL7_ERR_SEGMENT_SEQUENCE, "MSH", 1, 0,
                        "the message does not start with an MSH segment");
    }
    m->fs = p[3], m->cs = p[4], m->rs = p[5], m->ec = p[6], m->ss = p[7];
    const char d[5] = {m->fs, m->cs, m->rs, m->ec, m->ss};
    for (int i = 0; i < 5; i++) {
        if (!is_delimiter(d[i])) {
            return hl7_fail(err, HL7_ERR_DATA_TYPE, "MSH", 1, i == 0 ? 1 : 2,
                            "encoding character %d is not a printable delimiter", i + 1);
        }
        for (int j = 0; j < i; j++) {
            if (d[i] == d[j]) {
                return hl7_fail(err, HL7_ERR_DATA_TYPE, "MSH", 1, 2,
                                "encoding characters %d and %d are the same", j + 1, i + 1);
            }
        }
    }
    /* MSH-2 is four characters, or five from v2.7 on (the truncation character). */
    size_t k = 8;
    if (k < n && p[k] != m->fs && is_delimiter(p[k])) k++;
    if (k < n && p[k] != m->fs && p[k] != '\r' && p[k] != '\n') {
        return hl7_fail(err, HL7_ERR_DATA_TYPE, "MSH", 1, 2,
                        "MSH-2 holds more than the encoding characters");
    }
    return 0;
}

/* Converts the raw bytes to UTF-8 into m->buf according to the declared charset. */
static int to_utf8(hl7_msg_t *m, const char *data, size_t len, hl7_error_t *err)
{
    const unsigned char *u = (const unsigned char *)data;
    if (memchr(data, '\0', len) != NULL) {
        return hl7_fail(err, HL7_ERR_DATA_TYPE, "", 0, 0, "the message contains a NUL byte");
    }
    if (m->charset == HL7_CHARSET_LATIN1 || m->charset == HL7_CHARSET_LATIN9) {
        m->buf = malloc(3 * len + 1);
        if (m->buf == NULL) return hl7_fail(err, HL7_ERR_INTERNAL, "", 0, 0, "out of memory");
        m->len = single_to_utf8(u, len, m->charset, m->buf);
    } else {
        size_t bad = utf8_check(u, len);
        if (bad < len) {
            return hl7_fail(err, HL7_ERR_DATA_TYPE, "", 0, 0,
                            "byte %zu is not valid %s (declare the character set in MSH-18)",
                            bad + 1, m->charset == HL7_CHARSET_ASCII ? "ASCII" : "UTF-8");
        }
        if (m->charset == HL7_CHARSET_ASCII) {
            for (size_t i = 0; i < len; i++) {
                if (u[i] >= 0x80) {
                    return hl7_fail(err, HL7_ERR_DATA_TYPE, "", 0, 0,
                                    "byte %zu is not ASCII as MSH-18 declares", i + 1);
                }
            }
        }
        m->buf = malloc(len + 1);
        if (m->buf == NULL) return hl7_fail(err, HL7_ERR_INTERNAL, "", 0, 0, "out of memory");
        memcpy(m->buf, data, len);
        m->len = len;
    }
    m->buf[m->len] = '\0';
    return 0;
}

static int split_segments(hl7_msg_t *m, size_t max_segments, hl7_error_t *err)
{
    size_t cap = 16;
    m->segs = malloc(cap * sizeof *m->segs);
    if (m->segs == NULL) return hl7_fail(err, HL7_ERR_INTERNAL, "", 0, 0, "out of memory");
    size_t i = 0;
    while (i < m->len) {
        /* CR, LF and CRLF all end a segment; blank lines between segments are skipped. */
        if (m->buf[i] == '\r' || m->buf[i] == '\n') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < m->len && m->buf[i] != '\r' && m->buf[i] != '\n') i++;
        size_t n = i - start;
        const char *p = m->buf + start;
        if (!is_segment_name(p, n) || (n > 3 && p[3] != m->fs)) {
            return hl7_fail(err, HL7_ERR_SEGMENT_SEQUENCE, "", 0, 0,
                            "segment %zu does not start with a segment name and a field "
                            "separator",
                            m->nsegs + 1);
        }
        if (m->nsegs > 0 && memcmp(p, "MSH", 3) == 0) {
            return hl7_fail(err, HL7_ERR_SEGMENT_SEQUENCE, "MSH", 2, 0,
                            "a second MSH segment: one message per frame");
        }
        if (m->nsegs == max_segments) {
            return hl7_fail(err, HL7_ERR_INTERNAL, "", 0, 0, "more than %zu segments",
                            max_segments);
        }
        if (m->nsegs == cap) {
            cap *= 2;
            seg_t *g = realloc(m->segs, cap * sizeof *g);
            if (g == NULL) return hl7_fail(err, HL7_ERR_INTERNAL, "", 0, 0, "out of memory");
            m->segs = g;
        }
        seg_t *s = &m->segs[m->nsegs++];
        s->off = start;
        s->len = n;
        memcpy(s->name, p, 3);
        s->name[3] = '\0';
    }
    return 0;
}

int hl7_parse(const char *data, size_t len, const hl7_limits_t *lim, hl7_msg_t **out,
              hl7_error_t *err)
{
    *out = NULL;
    size_t max_bytes = lim != NULL && lim->max_bytes ? lim->max_bytes : 1024 * 1024;
    size_t max_segs = lim != NULL && lim->max_segments ? lim->max_segments : 5000;
    if (len > max_bytes) {
        return hl7_fail(err, HL7_ERR_INTERNAL, "", 0, 0, "message of %zu bytes over the %zu limit",
                        len, max_bytes);
    }
    /* Leading CR/LF before MSH are tolerated, as some engines send them. */
    while (len > 0 && (data[0] == '\r' || data[0] == '\n')) data++, len--;
    hl7_msg_t *m = calloc(1, sizeof *m);
    if (m == NULL) return hl7_fail(err, HL7_ERR_INTERNAL, "", 0, 0, "out of memory");
    int rc = read_delimiters(m, data, len, err);
    if (rc != 0) goto fail;
    size_t first = 0;
    while (first < len && data[first] != '\r' && data[first] != '\n') first++;
    rc = read_charset(data, first, m->fs, m->rs, m->cs, &m->charset, err);
    if (rc != 0) goto fail;
    rc = to_utf8(m, data, len, err);
    if (rc != 0) goto fail;
    rc = split_segments(m, max_segs, err);
    if (rc != 0) goto fail;
    *out = m;
    return 0;
fail:
    hl7_msg_free(&m);
    return rc;
}

void hl7_msg_free(hl7_msg_t **m)
{
    if (m == NULL || *m == NULL) return;
    free((*m)->buf);
    free((*m)->segs);
    free(*m);
    *m = NULL;
}

size_t hl7_segment_count(const hl7_msg_t *m)
{
    return m->nsegs;
}

const char *hl7_segment_name(const hl7_msg_t *m, size_t i)
{
    return i < m->nsegs ? m->segs[i].name : "";
}

hl7_charset_t hl7_charset(const hl7_msg_t *m)
{
    return m->charset;
}

long hl7_find(const hl7_msg_t *m, const char *name, size_t from)
{
    for (size_t i = from; i < m->nsegs; i++) {
        if (strcmp(m->segs[i].name, name) == 0) return (long)i;
    }
    return -1;
}

void hl7_raw_field(const hl7_msg_t *m, size_t seg, unsigned field, const char **p, size_t *len)
{
    *p = "";
    *len = 0;
    if (seg >= m->nsegs || field == 0) return;
    const seg_t *s = &m->segs[seg];
    const char *t = m->buf + s->off;
    const char *end = t + s->len;
    bool msh = strcmp(s->name, "MSH") == 0;
    if (msh && field == 1) {
        *p = t + 3;
        *len = 1;
        return;
    }
    /* Token k of the segment (the name is token 0) is field k, or MSH-(k+1) in MSH; q
     * walks from separator to separator. */
    unsigned want = msh ? field - 1 : field;
    const char *q = t + 3;
    for (unsigned k = 1; q < end; k++) {
        const char *start = q + 1;
        const char *e = start;
        while (e < end && *e != m->fs) e++;
        if (k == want) {
            *p = start;
            *len = (size_t)(e - start);
            return;
        }
        q = e;
    }
}

/* The piece number idx (0-based) of p/n split at c; false when there is no such piece. */
static bool piece(const char **p, size_t *n, char c, unsigned idx)
{
    const char *s = *p, *end = *p + *n;
    for (unsigned k = 0; k < idx; k++) {
        const char *x = memchr(s, c, (size_t)(end - s));
        if (x == NULL) return false;
        s = x + 1;
    }
    const char *x = memchr(s, c, (size_t)(end - s));
    *p = s;
    *n = (size_t)((x != NULL ? x : end) - s);
    return true;
}

unsigned hl7_repetitions(const hl7_msg_t *m, size_t seg, unsigned field)
{
    const char *p;
    size_t n;
    hl7_raw_field(m, seg, field, &p, &n);
    if (n == 0) return 0;
    if (seg < m->nsegs && field == 2 && strcmp(m->segs[seg].name, "MSH") == 0) return 1;
    unsigned r = 1;
    for (size_t i = 0; i < n; i++) r += p[i] == m->rs;
    return r;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Appends n bytes to out/o within cap (one byte kept for the NUL); false when full. */
static bool put(char *out, size_t cap, size_t *o, const char *b, size_t n)
{
    if (*o + n + 1 > cap) return false;
    memcpy(out + *o, b, n);
    *o += n;
    return true;
}

/* Decodes the escape sequences of p/n into out. 0, HL7_ERR_DATA_TYPE or -E2BIG. */
static int unescape(const hl7_msg_t *m, const char *p, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    size_t i = 0;
    while (i < n) {
        if (p[i] != m->ec) {
            size_t run = i;
            while (run < n && p[run] != m->ec) run++;
            if (!put(out, cap, &o, p + i, run - i)) return -E2BIG;
            i = run;
            continue;
        }
        const char *close = memchr(p + i + 1, m->ec, n - i - 1);
        if (close == NULL) return HL7_ERR_DATA_TYPE; /* an escape that never ends */
        const char *body = p + i + 1;
        size_t blen = (size_t)(close - body);
        i = (size_t)(close - p) + 1;
        if (blen == 1) {
            char c;
            switch (body[0]) {
            case 'F':
                c = m->fs;
                break;
            case 'S':
                c = m->cs;
                break;
            case 'T':
                c = m->ss;
                break;
            case 'R':
                c = m->rs;
                break;
            case 'E':
                c = m->ec;
                break;
            case 'H':
            case 'N':
                continue; /* highlighting on/off: no meaning in plain text */
            default:
                return HL7_ERR_DATA_TYPE;
            }
            if (!put(out, cap, &o, &c, 1)) return -E2BIG;
        } else if (blen >= 3 && body[0] == 'X' && (blen - 1) % 2 == 0) {
            /* \Xhh…\: bytes in the message's character set. */
            char bytes[64];
            size_t nb = 0;
            for (size_t k = 1; k < blen; k += 2) {
                int hi = hexval(body[k]), lo = hexval(body[k + 1]);
                if (hi < 0 || lo < 0) return HL7_ERR_DATA_TYPE;
                if (nb == sizeof bytes) return HL7_ERR_DATA_TYPE;
                bytes[nb++] = (char)(hi * 16 + lo);
            }
            if (memchr(bytes, '\0', nb) != NULL) return HL7_ERR_DATA_TYPE;
            if (m->charset == HL7_CHARSET_LATIN1 || m->charset == HL7_CHARSET_LATIN9) {
                char conv[3 * sizeof bytes];
                size_t nc = single_to_utf8((const unsigned char *)bytes, nb, m->charset, conv);
                if (!put(out, cap, &o, conv, nc)) return -E2BIG;
            } else {
                if (!put(out, cap, &o, bytes, nb)) return -E2BIG;
            }
        } else if (blen >= 3 && body[0] == '.') {
            /* Formatting commands (\.br\, \.sp\, …) of FT fields: a line break or nothing. */
            if (blen == 3 && body[1] == 'b' && body[2] == 'r' && !put(out, cap, &o, "\n", 1))
                return -E2BIG;
        } else {
            return HL7_ERR_DATA_TYPE; /* \Z…\, \C…\, \M…\ and anything unknown */
        }
    }
    /* A value may have been assembled from pieces: check it is still text as a whole. */
    if (utf8_check((const unsigned char *)out, o) != o) return HL7_ERR_DATA_TYPE;
    out[o] = '\0';
    return 0;
}

int hl7_get(const hl7_msg_t *m, size_t seg, unsigned field, unsigned rep, unsigned comp,
            unsigned sub, char *out, size_t cap)
{
    if (cap == 0) return -E2BIG;
    out[0] = '\0';
    const char *p;
    size_t n;
    hl7_raw_field(m, seg, field, &p, &n);
    bool msh = seg < m->nsegs && strcmp(m->segs[seg].name, "MSH") == 0;
    if (msh && (field == 1 || field == 2)) {
        if (rep > 0 || comp > 1 || sub > 1) return 0;
        if (n + 1 > cap) return -E2BIG;
        memcpy(out, p, n);
        out[n] = '\0';
        return 0;
    }
    if (comp == 0) comp = 1;
    if (sub == 0) sub = 1;
    if (!piece(&p, &n, m->rs, rep)) return 0;
    if (!piece(&p, &n, m->cs, comp - 1)) return 0;
    if (!piece(&p, &n, m->ss, sub - 1)) return 0;
    if (n == 2 && p[0] == '"' && p[1] == '"') return 0; /* HL7 null: explicitly empty */
    int rc = unescape(m, p, n, out, cap);
    if (rc != 0) out[0] = '\0';
    return rc;
}

int hl7_get_in(const hl7_msg_t *m, const char *segment, unsigned field, unsigned comp, char *out,
               size_t cap)
{
    long i = hl7_find(m, segment, 0);
    if (i < 0) {
        if (cap > 0) out[0] = '\0';
        return 0;
    }
    return hl7_get(m, (size_t)i, field, 0, comp, 1, out, cap);
}

void hl7_content_hash(const hl7_msg_t *m, uint8_t hash[32])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    const char *p;
    size_t n;
    hl7_raw_field(m, 0, 7, &p, &n);
    const char *msh = m->buf + m->segs[0].off;
    if (p < msh || p > msh + m->segs[0].len) p = msh + m->segs[0].len, n = 0; /* no MSH-7 */
    /* The segments joined by CR, whatever separated them, without MSH-7's text. */
    crypto_generichash_update(&st, (const unsigned char *)msh, (size_t)(p - msh));
    const char *rest = p + n;
    crypto_generichash_update(&st, (const unsigned char *)rest,
                              m->segs[0].len - (size_t)(rest - msh));
    for (size_t i = 1; i < m->nsegs; i++) {
        crypto_generichash_update(&st, (const unsigned char *)"\r", 1);
        crypto_generichash_update(&st, (const unsigned char *)m->buf + m->segs[i].off,
                                  m->segs[i].len);
    }
    crypto_generichash_final(&st, hash, 32);
}
