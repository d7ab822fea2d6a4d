/*
 * Logging to stderr, as text or as JSON lines (include/relais/log.h).
 *
 * The level and the output mode are the only process-wide state in Relais, by design: they
 * are set once at start-up and read on every RLOG, from any thread, so they are atomics.
 * Each line is formatted into a buffer on the caller's stack and written with one write(2),
 * which keeps lines from different threads whole without a lock. Control characters in a
 * message are escaped so that one call always yields exactly one line: reasons can quote
 * bytes that came off the network, and a newline there must not forge a log entry.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "relais/errors.h"
#include "relais/log.h"

#define LINE_MAX_BYTES 4096
#define MSG_MAX_BYTES 3072

static atomic_int log_level = RELAIS_LOG_INFO;
static atomic_bool log_json = false;

static const char *const level_names[] = {"error", "warn", "info", "debug"};
static const char *const level_labels[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void relais_log_set_level(relais_log_level_t level)
{
    if (level < RELAIS_LOG_ERROR) level = RELAIS_LOG_ERROR;
    if (level > RELAIS_LOG_DEBUG) level = RELAIS_LOG_DEBUG;
    atomic_store_explicit(&log_level, (int)level, memory_order_relaxed);
}

int relais_log_set_level_name(const char *name)
{
    if (name == NULL) return RELAIS_ECONFIG;
    for (int i = RELAIS_LOG_ERROR; i <= RELAIS_LOG_DEBUG; i++) {
        if (strcmp(name, level_names[i]) == 0) {
            relais_log_set_level((relais_log_level_t)i);
            return 0;
        }
    }
    return RELAIS_ECONFIG;
}

void relais_log_set_json(bool on)
{
    atomic_store_explicit(&log_json, on, memory_order_relaxed);
}

bool relais_log_enabled(relais_log_level_t level)
{
    return (int)level <= atomic_load_explicit(&log_level, memory_order_relaxed);
}

/* Appends formatted text to buf at *pos, never past cap - 1; keeps buf NUL-terminated. */
static void put(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void put(char *buf, size_t cap, size_t *pos, const char *fmt, ...)
{
    if (*pos >= cap - 1) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *pos, cap - *pos, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    *pos += (size_t)n < cap - *pos ? (size_t)n : cap - *pos - 1;
}

/* Drops an incomplete UTF-8 sequence left at the end of s by truncation. */
static void trim_partial_utf8(char *s)
{
    size_t len = strlen(s);
    size_t i = len;
    while (i > 0 && ((unsigned char)s[i - 1] & 0xc0) == 0x80) i--;
    if (i == 0 || ((unsigned char)s[i - 1] & 0xc0) != 0xc0) return;
    unsigned char lead = (unsigned char)s[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
    if (len - (i - 1) < need) s[i - 1] = '\0';
}

/*
 * Appends s escaped: in JSON mode as a JSON string body, in text mode with control
 * characters as \n, \t or \xNN. Stops before an escape sequence that would not fit, so the
 * output never ends in half an escape.
 */
static void put_escaped(char *buf, size_t cap, size_t *pos, const char *s, bool json)
{
    size_t start = *pos;
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        char esc[8];
        const char *piece = esc;
        size_t n;
        if (*p == '"' && json) {
            piece = "\\\"";
        } else if (*p == '\\' && json) {
            piece = "\\\\";
        } else if (*p == '\n') {
            piece = "\\n";
        } else if (*p == '\t') {
            piece = "\\t";
        } else if (*p == '\r') {
            piece = "\\r";
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, json ? "\\u%04x" : "\\x%02x", *p);
        } else {
            esc[0] = (char)*p;
            esc[1] = '\0';
        }
        n = strlen(piece);
        if (*pos + n >= cap) {
            buf[*pos] = '\0';
            trim_partial_utf8(buf + start);
            *pos = start + strlen(buf + start);
            return;
        }
        memcpy(buf + *pos, piece, n + 1);
        *pos += n;
    }
}

/* Whether the token at p (up to a space) is key=value with a key of [a-z_][a-z0-9_.-]*. */
static size_t key_length(const char *p)
{
    size_t n = 0;
    if (!((p[0] >= 'a' && p[0] <= 'z') || p[0] == '_')) return 0;
    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= '0' && p[n] <= '9') || p[n] == '_' ||
           p[n] == '.' || p[n] == '-')
        n++;
    return p[n] == '=' ? n : 0;
}

/* The end of a value starting at p: the next space, or for a quoted value the closing quote
 * (a backslash escapes the next byte). */
static const char *value_end(const char *p)
{
    if (*p != '"') return p + strcspn(p, " ");
    for (p++; *p && *p != '"'; p++)
        if (*p == '\\' && p[1]) p++;
    return *p == '"' ? p + 1 : p;
}

/*
 * The JSON line: the message's key=value pairs (the logging convention of STYLE.md) as
 * fields of their own, and the words around them as "msg". A key that would clash with the
 * line's own fields gets an "f_" prefix.
 */
static void put_json_fields(char *buf, size_t cap, size_t *pos, const char *msg)
{
    char text[MSG_MAX_BYTES];
    size_t tlen = 0;
    char fields[MSG_MAX_BYTES + 256];
    size_t fpos = 0;
    fields[0] = '\0';
    for (const char *p = msg; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        size_t klen = key_length(p);
        const char *v = p + klen + 1, *end = klen ? value_end(v) : p + strcspn(p, " ");
        if (klen == 0) {
            if (tlen > 0 && tlen < sizeof text - 1) text[tlen++] = ' ';
            size_t n = (size_t)(end - p);
            if (n > sizeof text - 1 - tlen) n = sizeof text - 1 - tlen;
            memcpy(text + tlen, p, n);
            tlen += n;
            p = end;
            continue;
        }
        char key[64], val[MSG_MAX_BYTES];
        bool clash = (klen == 2 && memcmp(p, "ts", 2) == 0) ||
                     (klen == 5 && memcmp(p, "level", 5) == 0) ||
                     (klen == 9 && memcmp(p, "component", 9) == 0) ||
                     (klen == 3 && memcmp(p, "msg", 3) == 0);
        snprintf(key, sizeof key, "%s%.*s", clash ? "f_" : "", (int)(klen < 60 ? klen : 60), p);
        size_t vlen = (size_t)(end - v);
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') {
            v++;
            vlen -= 2;
        }
        if (vlen > sizeof val - 1) vlen = sizeof val - 1;
        memcpy(val, v, vlen);
        val[vlen] = '\0';
        put(fields, sizeof fields, &fpos, ",\"");
        put_escaped(fields, sizeof fields, &fpos, key, true);
        put(fields, sizeof fields, &fpos, "\":\"");
        put_escaped(fields, sizeof fields - 2, &fpos, val, true);
        put(fields, sizeof fields, &fpos, "\"");
        p = end;
    }
    text[tlen] = '\0';
    put(buf, cap, pos, "\"msg\":\"");
    put_escaped(buf, cap - 1, pos, text, true); /* room kept for the closing quote */
    put(buf, cap, pos, "\"");
    /* Fields are whole or absent: a line cut short stays valid JSON. */
    const char *f = fields;
    while (*f) {
        const char *next = strstr(f + 1, ",\"");
        while (next != NULL && next[-1] != '"') next = strstr(next + 1, ",\"");
        size_t n = next ? (size_t)(next - f) : strlen(f);
        if (*pos + n >= cap) break;
        memcpy(buf + *pos, f, n);
        *pos += n;
        buf[*pos] = '\0';
        f += n;
    }
}

static void format_time(char out[32])
{
    struct timespec ts;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03ldZ", ts.tv_nsec / 1000000);
}

void relais_log_write(relais_log_level_t level, const char *component, const char *fmt, ...)
{
    int saved_errno = errno;
    if (level < RELAIS_LOG_ERROR) level = RELAIS_LOG_ERROR;
    if (level > RELAIS_LOG_DEBUG) level = RELAIS_LOG_DEBUG;
    if (component == NULL) component = "relais";

    char msg[MSG_MAX_BYTES];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) {
        snprintf(msg, sizeof msg, "(unformattable log message)");
    } else if ((size_t)n >= sizeof msg) {
        trim_partial_utf8(msg);
    }

    char ts[32];
    format_time(ts);

    /* Room is kept for the line's closing characters whatever the message length. */
    char line[LINE_MAX_BYTES];
    const size_t body_cap = sizeof line - 8;
    size_t pos = 0;
    if (atomic_load_explicit(&log_json, memory_order_relaxed)) {
        put(line, body_cap, &pos, "{\"ts\":\"%s\",\"level\":\"%s\",\"component\":\"", ts,
            level_names[level]);
        put_escaped(line, body_cap, &pos, component, true);
        put(line, body_cap, &pos, "\",");
        put_json_fields(line, body_cap, &pos, msg);
        memcpy(line + pos, "}\n", 3);
        pos += 2;
    } else {
        put(line, body_cap, &pos, "%s %s ", ts, level_labels[level]);
        put_escaped(line, body_cap, &pos, component, false);
        put(line, body_cap, &pos, ": ");
        put_escaped(line, body_cap, &pos, msg, false);
        memcpy(line + pos, "\n", 2);
        pos += 1;
    }

    /* A log line that cannot be written has nowhere to be reported; only EINTR is retried. */
    while (write(STDERR_FILENO, line, pos) < 0 && errno == EINTR) {
    }
    errno = saved_errno;
}
