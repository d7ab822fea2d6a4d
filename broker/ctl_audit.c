/*
 * relaisctl audit: checks the hash chain of an audit journal and reads its records.
 *
 * `verify` walks the file once and stops at the first broken link, naming its line: a line
 * that is not a record, a record whose hash is not the hash of its own bytes (modified), a
 * prev that is not the previous record's hash (a line deleted, inserted or moved), a seq
 * that does not follow. A chain cannot show that lines were cut off its end, so verify
 * prints the last hash for the operator to keep elsewhere, and `--anchor HASH` later proves
 * that record is still there. `show` prints records as a table, filtered; it reads, it does
 * not judge (a record whose hash is wrong is shown, with a warning). Both read the file
 * while relaisd appends to it: a last line without its newline is a write in progress (or a
 * crash relaisd repairs at its next start) and is left out, with a note.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <sodium.h>

#include "audit.h"
#include "relaisctl.h"

static void usage(FILE *out)
{
    fprintf(out, "usage: relaisctl audit verify FILE [--anchor HASH]\n"
                 "       relaisctl audit show FILE [--actor ADDR] [--to ADDR] [--message UUID]\n"
                 "                                 [--event EVENT] [--since T] [--until T]\n"
                 "\n"
                 "verify  recomputes the hash chain of the journal FILE. Prints\n"
                 "        'ok: N records, last seq S, last hash H' (exit 0) or the first broken\n"
                 "        link (exit 1). The chain cannot show that records were cut off its end:\n"
                 "        keep the last hash somewhere else; --anchor H then fails unless the\n"
                 "        record with hash H is still in the journal.\n"
                 "show    prints the records matching every filter given, times in UTC.\n"
                 "        --event session matches every session.* event. T is Unix milliseconds\n"
                 "        or an ISO 8601 UTC time: 2026-11-22, 2026-11-22T13:07,\n"
                 "        2026-11-22T13:07:05.250Z. Records with since <= time < until.\n");
}

/* Calls fn for each complete line of path (newline removed); returns 0 when the file was
 * read, 1 (reported) when it could not be. A last line without its newline is reported
 * through *torn_line and not passed on. fn returns false to stop. */
typedef bool line_fn(void *ctx, uint64_t lineno, const char *line, size_t len);

static int each_line(const char *path, line_fn *fn, void *ctx, uint64_t *torn_line)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        fprintf(stderr, "relaisctl audit: cannot open %s: %s\n", path, strerror(errno));
        return 1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    uint64_t lineno = 0;
    *torn_line = 0;
    while ((n = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[n - 1] != '\n') {
            *torn_line = lineno;
            break;
        }
        if (!fn(ctx, lineno, line, (size_t)n - 1)) break;
    }
    int rc = 0;
    if (ferror(f)) {
        fprintf(stderr, "relaisctl audit: cannot read %s: %s\n", path, strerror(errno));
        rc = 1;
    }
    free(line);
    fclose(f);
    return rc;
}

static void note_torn(uint64_t torn_line)
{
    if (torn_line == 0) return;
    fprintf(stderr,
            "note: line %" PRIu64 " has no newline yet (a write in progress, or a crash that "
            "relaisd repairs at its next start): left out\n",
            torn_line);
}

/* ---- verify ------------------------------------------------------------------------- */

typedef struct verify_state {
    uint8_t prev[32];
    uint64_t seq, count;
    const uint8_t *anchor; /* NULL: none asked */
    uint64_t anchor_seq;   /* 0: not seen */
    bool broken;
    bool starts;           /* the next record opens the set: it may start mid-chain */
    uint64_t first_seq;    /* where the set's chain starts */
    const char *file;      /* the file being read, for messages */
    bool several;          /* rotated files too: messages name the file */
} verify_state_t;

static bool verify_line(void *ctx, uint64_t lineno, const char *line, size_t len)
{
    verify_state_t *v = ctx;
    audit_entry_t e;
    audit_line_status_t st = audit__check_line(line, len, &e);
    char what[96] = "";
    if (st == AUDIT_LINE_UNPARSEABLE)
        snprintf(what, sizeof(what), "unparseable line");
    else if (st == AUDIT_LINE_BAD_HASH)
        snprintf(what, sizeof(what), "hash mismatch");
    else if (v->starts && e.seq != 1 && strcmp(e.event, "audit.rotate") == 0) {
        /* The oldest file kept opens with a rotation: the files before it may have gone with
         * the retention period. Anywhere else the chain must start at seq 1. */
        v->first_seq = e.seq;
    } else if (memcmp(e.prev, v->prev, sizeof(v->prev)) != 0)
        snprintf(what, sizeof(what), "prev does not match the previous record");
    else if (e.seq != v->seq + 1)
        snprintf(what, sizeof(what), "seq gap (expected %" PRIu64 ")", v->seq + 1);
    v->starts = false;
    if (what[0] != '\0') {
        char where[1100] = "";
        if (v->several) snprintf(where, sizeof(where), "%s ", v->file);
        if (e.seq != 0)
            printf("broken at %sline %" PRIu64 " (seq %" PRIu64 "): %s\n", where, lineno, e.seq,
                   what);
        else
            printf("broken at %sline %" PRIu64 ": %s\n", where, lineno, what);
        v->broken = true;
        return false;
    }
    memcpy(v->prev, e.hash, sizeof(v->prev));
    v->seq = e.seq;
    v->count++;
    if (v->anchor != NULL && memcmp(e.hash, v->anchor, sizeof(e.hash)) == 0) v->anchor_seq = e.seq;
    return true;
}

static int by_name(const void *x, const void *y)
{
    return strcmp(*(char *const *)x, *(char *const *)y);
}

/* The rotated files of the journal at path (PATH.<20 digits>), sorted; their count. */
static size_t rotated_files(const char *path, char ***out)
{
    *out = NULL;
    char *copy = strdup(path);
    if (copy == NULL) return 0;
    char *slash = strrchr(copy, '/');
    const char *dir = slash ? (slash == copy ? "/" : copy) : ".";
    const char *base = slash ? slash + 1 : copy;
    if (slash) *slash = '\0';
    size_t blen = strlen(base), n = 0, cap = 0;
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d != NULL && (e = readdir(d)) != NULL) {
        const char *name = e->d_name;
        if (strncmp(name, base, blen) != 0 || name[blen] != '.' ||
            strlen(name + blen + 1) != 20 || strspn(name + blen + 1, "0123456789") != 20)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 8;
            char **grown = realloc(*out, cap * sizeof(**out));
            if (grown == NULL) break;
            *out = grown;
        }
        size_t len = strlen(dir) + strlen(name) + 2;
        (*out)[n] = malloc(len);
        if ((*out)[n] == NULL) break;
        snprintf((*out)[n++], len, "%s/%s", dir, name);
    }
    if (d != NULL) closedir(d);
    free(copy);
    if (n > 1) qsort(*out, n, sizeof(**out), by_name);
    return n;
}

static int verify(const char *path, const char *anchor_hex)
{
    uint8_t anchor[32];
    verify_state_t v = {.anchor = NULL};
    if (anchor_hex != NULL) {
        size_t bin_len = 0;
        if (strlen(anchor_hex) != 64 ||
            sodium_hex2bin(anchor, sizeof(anchor), anchor_hex, 64, NULL, &bin_len, NULL) != 0 ||
            bin_len != sizeof(anchor)) {
            fprintf(stderr, "relaisctl audit: --anchor wants a hash of 64 hex digits\n");
            return 2;
        }
        v.anchor = anchor;
    }
    /* The rotated files first, oldest first (their names sort as the chain runs), then the
     * file given: one chain across them all. */
    char **files = NULL;
    size_t nfiles = rotated_files(path, &files);
    v.starts = true;
    v.several = nfiles > 0;
    uint64_t torn = 0;
    for (size_t i = 0; i <= nfiles && !v.broken; i++) {
        v.file = i < nfiles ? files[i] : path;
        if (each_line(v.file, verify_line, &v, &torn) != 0) v.broken = true;
    }
    for (size_t i = 0; i < nfiles; i++) free(files[i]);
    free(files);
    if (v.broken) return 1;
    note_torn(torn);
    char hex[65];
    sodium_bin2hex(hex, sizeof(hex), v.prev, sizeof(v.prev));
    if (v.anchor != NULL && v.anchor_seq == 0) {
        printf("broken: no record has the anchor hash %s: records were cut off the end or the "
               "journal was replaced (chain ok up to seq %" PRIu64 ", last hash %s)\n",
               anchor_hex, v.seq, hex);
        return 1;
    }
    printf("ok: %" PRIu64 " records", v.count);
    if (nfiles > 0) printf(" in %zu files", nfiles + 1);
    if (v.first_seq > 1) printf(" (the chain starts at seq %" PRIu64 ": older files removed)", v.first_seq);
    printf(", last seq %" PRIu64 ", last hash %s", v.seq, hex);
    if (v.anchor != NULL) printf(", anchor at seq %" PRIu64, v.anchor_seq);
    printf("\n");
    return 0;
}

/* ---- show --------------------------------------------------------------------------- */

typedef struct filter {
    const char *actor, *to, *message, *event;
    int64_t since, until;
    bool has_since, has_until;
    uint64_t shown;
} filter_t;

/* Unix ms, or an ISO 8601 UTC date with optional time, seconds and fraction. */
static bool parse_time(const char *s, int64_t *out)
{
    const char *p = s;
    if (*p == '\0') return false;
    while (isdigit((unsigned char)*p)) p++;
    if (*p == '\0' && p - s <= 15) {
        *out = strtoll(s, NULL, 10);
        return true;
    }
    int y, mo, d, h = 0, mi = 0, sec = 0, ms = 0, n = 0;
    if (sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &n) != 3 || n != 10) return false;
    p = s + 10;
    if (*p == 'T' || *p == ' ') {
        if (sscanf(p + 1, "%2d:%2d%n", &h, &mi, &n) != 2 || n != 5) return false;
        p += 6;
        if (*p == ':') {
            if (sscanf(p + 1, "%2d%n", &sec, &n) != 1 || n != 2) return false;
            p += 3;
            if (*p == '.') {
                int digits = 0;
                for (p++; isdigit((unsigned char)*p); p++, digits++)
                    if (digits < 3) ms = ms * 10 + (*p - '0');
                if (digits == 0) return false;
                for (; digits < 3; digits++) ms *= 10;
            }
        }
    }
    if (*p == 'Z') p++;
    if (*p != '\0' || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60 ||
        h < 0 || mi < 0 || sec < 0)
        return false;
    struct tm tm = {.tm_year = y - 1900,
                    .tm_mon = mo - 1,
                    .tm_mday = d,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    *out = (int64_t)timegm(&tm) * 1000 + ms;
    return true;
}

static void format_time(char out[32], int64_t ms)
{
    time_t t = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
    struct tm tm;
    if (gmtime_r(&t, &tm) == NULL) {
        snprintf(out, 32, "%" PRId64, ms);
        return;
    }
    size_t n = strftime(out, 32, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out + n, 32 - n, ".%03dZ", (int)(ms - (int64_t)t * 1000));
}

/* A field fit for a terminal: control bytes (an escape sequence in a declared address)
 * become '?'. */
static const char *printable(char *s)
{
    for (char *p = s; *p != '\0'; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f) *p = '?';
    return s;
}

static bool event_matches(const char *want, const char *event)
{
    if (strcmp(want, event) == 0) return true;
    size_t n = strlen(want);
    return strchr(want, '.') == NULL && strncmp(want, event, n) == 0 && event[n] == '.';
}

static bool show_line(void *ctx, uint64_t lineno, const char *line, size_t len)
{
    filter_t *f = ctx;
    audit_entry_t e;
    audit_line_status_t st = audit__check_line(line, len, &e);
    if (st == AUDIT_LINE_UNPARSEABLE) {
        fprintf(stderr, "warning: line %" PRIu64 " is not a record: skipped\n", lineno);
        return true;
    }
    if (st == AUDIT_LINE_BAD_HASH)
        fprintf(stderr,
                "warning: line %" PRIu64 " (seq %" PRIu64 ") fails its hash: "
                "run relaisctl audit verify\n",
                lineno, e.seq);
    if ((f->actor && strcmp(f->actor, e.actor) != 0) || (f->to && strcmp(f->to, e.to) != 0) ||
        (f->message && strcasecmp(f->message, e.msg) != 0) ||
        (f->event && !event_matches(f->event, e.event)) || (f->has_since && e.at_ms < f->since) ||
        (f->has_until && e.at_ms >= f->until))
        return true;

    char when[32], detail[3 * AUDIT_FIELD_MAX + 32] = "";
    format_time(when, e.at_ms);
    const char *parts[] = {e.outcome, e.reason_code};
    for (size_t i = 0; i < 2; i++) {
        if (strcmp(parts[i], "-") == 0) continue;
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof(detail) - used, "%s%s", used ? " " : "", parts[i]);
    }
    if (e.attempt > 0) {
        size_t used = strlen(detail);
        snprintf(detail + used, sizeof(detail) - used, "%sattempt %" PRIu32, used ? " " : "",
                 e.attempt);
    }
    if (detail[0] == '\0') strcpy(detail, "-");
    if (f->shown++ == 0)
        printf("%-24s %7s %-17s %-24s %-36s %-20s %-24s %s\n", "TIME (UTC)", "SEQ", "EVENT",
               "ACTOR", "MESSAGE", "BODY", "TO", "OUTCOME");
    printf("%-24s %7" PRIu64 " %-17s %-24s %-36s %-20s %-24s %s\n", when, e.seq, printable(e.event),
           printable(e.actor), printable(e.msg), printable(e.body), printable(e.to),
           printable(detail));
    return true;
}

static int show(const char *path, int argc, char **argv)
{
    filter_t f = {.actor = NULL};
    for (int i = 0; i < argc; i++) {
        const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (val == NULL) {
            fprintf(stderr, "relaisctl audit: %s wants a value\n", opt);
            return 2;
        }
        i++;
        if (strcmp(opt, "--actor") == 0)
            f.actor = val;
        else if (strcmp(opt, "--to") == 0)
            f.to = val;
        else if (strcmp(opt, "--message") == 0)
            f.message = val;
        else if (strcmp(opt, "--event") == 0)
            f.event = val;
        else if (strcmp(opt, "--since") == 0 && (f.has_since = parse_time(val, &f.since)))
            continue;
        else if (strcmp(opt, "--until") == 0 && (f.has_until = parse_time(val, &f.until)))
            continue;
        else {
            fprintf(stderr, "relaisctl audit: bad option or value: %s %s\n", opt, val);
            return 2;
        }
    }
    uint64_t torn;
    if (each_line(path, show_line, &f, &torn) != 0) return 1;
    note_torn(torn);
    if (f.shown == 0) printf("no matching record\n");
    return 0;
}

int ctl__audit(int argc, char **argv)
{
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc < 3) {
        usage(stderr);
        return 2;
    }
    if (sodium_init() < 0) {
        fprintf(stderr, "relaisctl audit: libsodium failed to initialise\n");
        return 1;
    }
    if (strcmp(argv[1], "verify") == 0) {
        if (argc == 3) return verify(argv[2], NULL);
        if (argc == 5 && strcmp(argv[3], "--anchor") == 0) return verify(argv[2], argv[4]);
        usage(stderr);
        return 2;
    }
    if (strcmp(argv[1], "show") == 0) return show(argv[2], argc - 3, argv + 3);
    fprintf(stderr, "relaisctl audit: unknown action '%s'\n\n", argv[1]);
    usage(stderr);
    return 2;
}
