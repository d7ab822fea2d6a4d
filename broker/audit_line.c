/*
 * The audit journal's line format (audit.h), in one place: how audit_record writes the
 * middle of a record, how the writer thread wraps it into a chained line, and the strict
 * parser that checks a line back for audit_open and relaisctl audit.
 *
 * The format is fixed: keys in one order, integers without sign or leading zeros, strings
 * with every byte outside printable ASCII escaped. The hash covers the line's own bytes, so
 * the parser need not be lenient: anything but this exact shape is "unparseable", and a
 * line that parses but was altered fails its hash.
 */
#include <stdio.h>
#include <string.h>

#include <sodium.h>
#include <zmq.h>

#include "audit.h"
#include "relais/errors.h"

/* ---- formatting --------------------------------------------------------------------- */

/* Hand-rolled rather than snprintf: the broker loop records about three events per message
 * it carries, and printf's machinery was most of that cost. */

static void put_mem(audit_buf_t *o, const char *s, size_t n)
{
    if (!o->ok || o->cap - o->pos < n) {
        o->ok = false;
        return;
    }
    memcpy(o->buf + o->pos, s, n);
    o->pos += n;
}

static void put_lit(audit_buf_t *o, const char *s)
{
    put_mem(o, s, strlen(s));
}

static void put_u64(audit_buf_t *o, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    put_mem(o, tmp + sizeof(tmp) - n, n);
}

static void put_i64(audit_buf_t *o, int64_t v)
{
    if (v < 0) put_mem(o, "-", 1);
    put_u64(o, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

static const char hexdigits[] = "0123456789abcdef";

static void put_hex(audit_buf_t *o, const uint8_t *bin, size_t n)
{
    if (!o->ok || o->cap - o->pos < 2 * n) {
        o->ok = false;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        o->buf[o->pos++] = hexdigits[bin[i] >> 4];
        o->buf[o->pos++] = hexdigits[bin[i] & 15];
    }
}

/* Appends s as a JSON string, "-" for NULL or empty, cut at AUDIT_FIELD_MAX - 1 bytes.
 * Bytes outside printable ASCII become \u00XX, one per byte: a line stays one line
 * whatever a declared address holds, and the parser gives back the same bytes. */
static void put_str(audit_buf_t *o, const char *s)
{
    if (s == NULL || *s == '\0') s = "-";
    if (!o->ok || o->cap - o->pos < 6 * (AUDIT_FIELD_MAX - 1) + 2) {
        o->ok = false; /* the worst case must fit: then no check per byte */
        return;
    }
    char *p = o->buf + o->pos;
    *p++ = '"';
    for (size_t i = 0; s[i] != '\0' && i < AUDIT_FIELD_MAX - 1; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '"' || c == '\\') {
            *p++ = '\\';
            *p++ = (char)c;
        } else if (c < 0x20 || c >= 0x7f) {
            memcpy(p, "\\u00", 4);
            p[4] = hexdigits[c >> 4];
            p[5] = hexdigits[c & 15];
            p += 6;
        } else {
            *p++ = (char)c;
        }
    }
    *p++ = '"';
    o->pos = (size_t)(p - o->buf);
}

/* A message id as a JSON string: a UUID for 16 bytes (our ids), hex for whatever else
 * arrived (at most 64 bytes of it, then "+"). */
static void put_msg_id(audit_buf_t *o, const uint8_t *id, size_t len)
{
    if (id == NULL || len == 0) {
        put_lit(o, "\"-\"");
        return;
    }
    put_mem(o, "\"", 1);
    if (len == 16) {
        static const size_t groups[] = {4, 2, 2, 2, 6};
        for (size_t g = 0, at = 0; g < 5; at += groups[g++]) {
            if (g > 0) put_mem(o, "-", 1);
            put_hex(o, id + at, groups[g]);
        }
    } else {
        put_hex(o, id, len > 64 ? 64 : len);
        if (len > 64) put_mem(o, "+", 1);
    }
    put_mem(o, "\"", 1);
}

/* The middle of a record's line, ended by '\n' (the queue's separator); its length, 0 if it
 * does not fit (it always does: every field is bounded and AUDIT_LINE_MAX has room for the
 * worst case with seq, prev and hash). */
size_t audit__format_event(char *buf, size_t cap, const audit_event_t *ev, const char *name,
                           int64_t at_ms)
{
    audit_buf_t o = {buf, 0, cap, true};
    put_lit(&o, "\"at\":");
    put_i64(&o, at_ms);
    put_lit(&o, ",\"event\":\"");
    put_lit(&o, name);
    put_lit(&o, "\",\"actor\":");
    put_str(&o, ev->actor);
    if (ev->key != NULL) {
        char fp[AUDIT_FINGERPRINT_LEN];
        audit_key_fingerprint(ev->key, fp);
        put_lit(&o, ",\"key\":");
        put_str(&o, fp);
    }
    if (ev->claimed != NULL) {
        put_lit(&o, ",\"claimed\":");
        put_str(&o, ev->claimed);
    }
    if (ev->peer != NULL) {
        put_lit(&o, ",\"peer\":");
        put_str(&o, ev->peer);
    }
    if (ev->count != 0) {
        put_lit(&o, ",\"count\":");
        put_u64(&o, ev->count);
    }
    put_lit(&o, ",\"msg\":");
    put_msg_id(&o, ev->message_id, ev->message_id_len);
    put_lit(&o, ",\"body\":");
    put_str(&o, ev->body);
    put_lit(&o, ",\"to\":");
    put_str(&o, ev->to);
    put_lit(&o, ",\"attempt\":");
    put_u64(&o, ev->attempt);
    put_lit(&o, ",\"outcome\":");
    put_str(&o, ev->outcome);
    put_lit(&o, ",\"reason_code\":");
    put_str(&o, ev->code != 0 ? relais_err_name(ev->code) : NULL);
    put_mem(&o, "\n", 1);
    return o.ok ? o.pos : 0;
}

void audit_key_fingerprint(const char *z85, char out[AUDIT_FINGERPRINT_LEN])
{
    uint8_t raw[32], h[AUDIT_HASH_LEN];
    if (z85 == NULL || strlen(z85) != 40 || zmq_z85_decode(raw, z85) == NULL) {
        snprintf(out, AUDIT_FINGERPRINT_LEN, "invalid");
        return;
    }
    crypto_generichash(h, sizeof(h), raw, sizeof(raw), NULL, 0);
    for (size_t i = 0; i < 8; i++) {
        out[2 * i] = hexdigits[h[i] >> 4];
        out[2 * i + 1] = hexdigits[h[i] & 15];
    }
    out[16] = '\0';
}

/* ---- chaining ---------------------------------------------------------------------- */

static void chain_hash(uint8_t out[AUDIT_HASH_LEN], const uint8_t prev[AUDIT_HASH_LEN],
                       const char *bytes, size_t len)
{
    /* BLAKE2b-256 (libsodium's generic hash): as collision-resistant as SHA-256 for a chain,
     * and twice as fast here (0.5 against 1.2 us a line), on a thread that shares the
     * broker's two cores. */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, AUDIT_HASH_LEN);
    crypto_generichash_update(&st, prev, AUDIT_HASH_LEN);
    crypto_generichash_update(&st, (const unsigned char *)bytes, len);
    crypto_generichash_final(&st, out, AUDIT_HASH_LEN);
}

/* The whole line around a record's middle (which ends with '\n'): seq, prev, and the
 * hash, which replaces chain (prev on entry). Appends to o. */
void audit__wrap_line(audit_buf_t *o, uint64_t seq, const char *middle, size_t len,
                      uint8_t chain[AUDIT_HASH_LEN])
{
    size_t start = o->pos;
    put_lit(o, "{\"seq\":");
    put_u64(o, seq);
    put_mem(o, ",", 1);
    put_mem(o, middle, len - 1);
    put_lit(o, ",\"prev\":\"");
    put_hex(o, chain, AUDIT_HASH_LEN);
    put_mem(o, "\"", 1);
    if (o->ok) chain_hash(chain, chain, o->buf + start, o->pos - start);
    put_lit(o, ",\"hash\":\"");
    put_hex(o, chain, AUDIT_HASH_LEN);
    put_lit(o, "\"}\n");
}

/* ---- parsing ------------------------------------------------------------------------ */

typedef struct cursor {
    const char *p, *end;
} cursor_t;

static bool lit(cursor_t *c, const char *s)
{
    size_t n = strlen(s);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, s, n) != 0) return false;
    c->p += n;
    return true;
}

/* A JSON unsigned integer as we write them: digits, no sign, no leading zero. */
static bool parse_u64(cursor_t *c, uint64_t *v)
{
    const char *start = c->p;
    uint64_t x = 0;
    while (c->p < c->end && *c->p >= '0' && *c->p <= '9') {
        unsigned d = (unsigned)(*c->p - '0');
        if (x > (UINT64_MAX - d) / 10) return false;
        x = x * 10 + d;
        c->p++;
    }
    if (c->p == start || (*start == '0' && c->p - start > 1)) return false;
    *v = x;
    return true;
}

static bool parse_i64(cursor_t *c, int64_t *v)
{
    bool neg = lit(c, "-");
    uint64_t x;
    if (!parse_u64(c, &x) || x > (uint64_t)INT64_MAX) return false;
    *v = neg ? -(int64_t)x : (int64_t)x;
    return true;
}

static int hex_digit(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

static bool parse_str(cursor_t *c, char out[AUDIT_FIELD_MAX])
{
    size_t n = 0;
    if (!lit(c, "\"")) return false;
    while (c->p < c->end) {
        unsigned char ch = (unsigned char)*c->p++;
        if (ch == '"') {
            out[n] = '\0';
            return true;
        }
        if (ch < 0x20) return false;
        if (ch == '\\') {
            if (c->p == c->end) return false;
            char e = *c->p++;
            switch (e) {
            case '"':
            case '\\':
            case '/':
                ch = (unsigned char)e;
                break;
            case 'n':
                ch = '\n';
                break;
            case 't':
                ch = '\t';
                break;
            case 'r':
                ch = '\r';
                break;
            case 'b':
                ch = '\b';
                break;
            case 'f':
                ch = '\f';
                break;
            case 'u': {
                /* Only what the writer emits: one byte per escape, never NUL. */
                if (c->end - c->p < 4) return false;
                int v = 0;
                for (int i = 0; i < 4; i++) {
                    int d = hex_digit(c->p[i]);
                    if (d < 0) return false;
                    v = v * 16 + d;
                }
                if (v == 0 || v > 0xff) return false;
                c->p += 4;
                ch = (unsigned char)v;
                break;
            }
            default:
                return false;
            }
        }
        if (n >= AUDIT_FIELD_MAX - 1) return false;
        out[n++] = (char)ch;
    }
    return false;
}

/* "<64 lowercase hex>" into 32 bytes. */
static bool parse_hash(cursor_t *c, uint8_t out[AUDIT_HASH_LEN])
{
    if (!lit(c, "\"") || c->end - c->p < 2 * AUDIT_HASH_LEN + 1) return false;
    for (size_t i = 0; i < AUDIT_HASH_LEN; i++) {
        char hi = c->p[2 * i], lo = c->p[2 * i + 1];
        if (hi >= 'A' && hi <= 'F') return false;
        if (lo >= 'A' && lo <= 'F') return false;
        int h = hex_digit(hi), l = hex_digit(lo);
        if (h < 0 || l < 0) return false;
        out[i] = (uint8_t)(h * 16 + l);
    }
    c->p += 2 * AUDIT_HASH_LEN;
    return lit(c, "\"");
}

audit_line_status_t audit__check_line(const char *line, size_t len, audit_entry_t *e)
{
    memset(e, 0, sizeof(*e));
    cursor_t c = {line, line + len};
    uint64_t attempt = 0;
    bool ok = lit(&c, "{\"seq\":") && parse_u64(&c, &e->seq) && lit(&c, ",\"at\":") &&
              parse_i64(&c, &e->at_ms) && lit(&c, ",\"event\":") && parse_str(&c, e->event) &&
              lit(&c, ",\"actor\":") && parse_str(&c, e->actor) &&
              (!lit(&c, ",\"key\":") || parse_str(&c, e->key)) &&
              (!lit(&c, ",\"claimed\":") || parse_str(&c, e->claimed)) &&
              (!lit(&c, ",\"peer\":") || parse_str(&c, e->peer)) &&
              (!lit(&c, ",\"count\":") || (parse_u64(&c, &e->count) && e->count > 0)) &&
              lit(&c, ",\"msg\":") &&
              parse_str(&c, e->msg) && lit(&c, ",\"body\":") && parse_str(&c, e->body) &&
              lit(&c, ",\"to\":") && parse_str(&c, e->to) && lit(&c, ",\"attempt\":") &&
              parse_u64(&c, &attempt) && attempt <= UINT32_MAX && lit(&c, ",\"outcome\":") &&
              parse_str(&c, e->outcome) && lit(&c, ",\"reason_code\":") &&
              parse_str(&c, e->reason_code) && lit(&c, ",\"prev\":") && parse_hash(&c, e->prev);
    const char *hashed_end = c.p;
    ok = ok && lit(&c, ",\"hash\":") && parse_hash(&c, e->hash) && lit(&c, "}") && c.p == c.end;
    if (!ok) return AUDIT_LINE_UNPARSEABLE;
    e->attempt = (uint32_t)attempt;
    uint8_t h[AUDIT_HASH_LEN];
    chain_hash(h, e->prev, line, (size_t)(hashed_end - line));
    return sodium_memcmp(h, e->hash, AUDIT_HASH_LEN) == 0 ? AUDIT_LINE_OK : AUDIT_LINE_BAD_HASH;
}
