/*
 * Unit tests of the audit journal (broker/audit.c) and of `relaisctl audit` (ctl_audit.c,
 * called through ctl__audit with stdout and stderr captured).
 *
 * Each test writes a journal in a fresh temporary directory, closes it (which writes and
 * syncs everything, so no test waits on time), then edits the file the way an intruder or a
 * crash would and checks what the verifier says, naming the line.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <uv.h>

#include "audit.h"
#include "relais/errors.h"
#include "relaisctl.h"

static char dir[64];
static char path[128];

static void setup(void)
{
    strcpy(dir, "/tmp/relais-audit-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/audit.log", dir);
}

static void teardown(void)
{
    unlink(path);
    rmdir(dir);
}

TestSuite(audit, .init = setup, .fini = teardown);

/* ---- helpers ------------------------------------------------------------------------ */

static audit_t *open_journal(void)
{
    audit_t *a = NULL;
    char reason[256] = "";
    int rc = audit_open(&a, path, reason, sizeof(reason));
    cr_assert_eq(rc, 0, "audit_open: %s (%s)", relais_strerror(rc), reason);
    cr_assert_not_null(a);
    return a;
}

static const uint8_t msg_a[16] = {0x01, 0x90, 0xc4, 0xf2, 0x11, 0x22, 0x73, 0x44,
                                  0x85, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc};

/* Event i of a plausible sequence: every kind, actors and recipients alternating. */
static audit_event_t sample_event(int i)
{
    static const audit_kind_t kinds[] = {AUDIT_SESSION_OPEN, AUDIT_SUBMIT_ACCEPTED, AUDIT_DELIVER,
                                         AUDIT_ACK,          AUDIT_SUBMIT_REJECTED, AUDIT_EXPIRE,
                                         AUDIT_REFUSE,       AUDIT_SESSION_CLOSE};
    audit_event_t ev = {
        .kind = kinds[i % 8],
        .at_ms = 1795871220000 + i,
        .actor = i % 2 ? "rpps:10101234567" : "rpps:10107654321",
        .message_id = msg_a,
        .message_id_len = 16,
        .body = "appointment_request",
        .to = "service:kine-lyon-3",
        .attempt = kinds[i % 8] == AUDIT_DELIVER ? 1 : 0,
        .outcome = kinds[i % 8] == AUDIT_ACK ? "processed" : NULL,
        .code = kinds[i % 8] == AUDIT_SUBMIT_REJECTED ? RELAIS_EFORBIDDEN : 0,
    };
    return ev;
}

static void write_events(int n)
{
    audit_t *a = open_journal();
    for (int i = 0; i < n; i++) {
        audit_event_t ev = sample_event(i);
        cr_assert_eq(audit_record(a, &ev), 0);
    }
    audit_close(&a);
    cr_assert_null(a);
}

static char *slurp(const char *p, size_t *len)
{
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "open %s", p);
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    rewind(f);
    char *text = calloc(1, (size_t)size + 1);
    cr_assert_not_null(text);
    cr_assert_eq(fread(text, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    if (len) *len = (size_t)size;
    return text;
}

static void spit(const char *p, const char *text, size_t len)
{
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(text, 1, len, f), len);
    fclose(f);
}

/* Splits the journal into lines (newlines kept); returns their count. */
static size_t read_lines(char ***out)
{
    char *text = slurp(path, NULL);
    size_t n = 0, cap = 0;
    char **lines = NULL;
    for (char *p = text; *p != '\0';) {
        char *nl = strchr(p, '\n');
        size_t len = nl ? (size_t)(nl - p + 1) : strlen(p);
        if (n == cap) {
            cap = cap ? 2 * cap : 64;
            lines = realloc(lines, cap * sizeof(*lines));
            cr_assert_not_null(lines);
        }
        lines[n++] = strndup(p, len);
        p += len;
    }
    free(text);
    *out = lines;
    return n;
}

static void write_lines(char **lines, size_t n)
{
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (size_t i = 0; i < n; i++) fputs(lines[i], f);
    fclose(f);
}

static void free_lines(char **lines, size_t n)
{
    for (size_t i = 0; i < n; i++) free(lines[i]);
    free(lines);
}

/* Runs relaisctl audit with the given arguments; returns its exit status, and what it
 * printed on stdout and stderr together in *output (malloc'd). */
static int run_ctl(char **output, const char *a1, const char *a2, const char *a3, const char *a4,
                   const char *a5, const char *a6)
{
    const char *args[] = {"audit", a1, a2, a3, a4, a5, a6};
    char *argv[8] = {NULL};
    int argc = 0;
    for (size_t i = 0; i < 7 && args[i] != NULL; i++) argv[argc++] = (char *)args[i];
    char capture[160];
    snprintf(capture, sizeof(capture), "%s/ctl.out", dir);
    fflush(stdout);
    fflush(stderr);
    int saved_out = dup(1), saved_err = dup(2);
    FILE *f = fopen(capture, "w");
    cr_assert_not_null(f);
    dup2(fileno(f), 1);
    dup2(fileno(f), 2);
    int rc = ctl__audit(argc, argv);
    fflush(stdout);
    fflush(stderr);
    dup2(saved_out, 1);
    dup2(saved_err, 2);
    close(saved_out);
    close(saved_err);
    fclose(f);
    *output = slurp(capture, NULL);
    unlink(capture);
    return rc;
}

static int verify(char **output)
{
    return run_ctl(output, "verify", path, NULL, NULL, NULL, NULL);
}

static size_t count_lines(const char *text)
{
    size_t n = 0;
    for (; *text; text++) n += *text == '\n';
    return n;
}

/* ---- writing and verifying ---------------------------------------------------------- */

Test(audit, a_journal_of_n_events_verifies_and_names_its_last_hash)
{
    write_events(100);
    char **lines;
    size_t n = read_lines(&lines);
    cr_assert_eq(n, 100);
    cr_expect(strncmp(lines[0], "{\"seq\":1,\"at\":1795871220000,\"event\":\"session.open\"", 50) ==
                  0,
              "%s", lines[0]);
    cr_expect(
        strstr(lines[0],
               "\"prev\":\"0000000000000000000000000000000000000000000000000000000000000000\"") !=
        NULL);
    cr_expect(strstr(lines[1], "\"msg\":\"0190c4f2-1122-7344-8566-778899aabbcc\"") != NULL, "%s",
              lines[1]);
    cr_expect(strstr(lines[4], "\"reason_code\":\"RELAIS_EFORBIDDEN\"") != NULL, "%s", lines[4]);
    cr_expect(strstr(lines[2], "\"attempt\":1") != NULL, "%s", lines[2]);
    const char *last_hash = strstr(lines[99], "\"hash\":\"") + 8;

    char *out;
    cr_assert_eq(verify(&out), 0, "%s", out);
    char expected[200];
    snprintf(expected, sizeof(expected), "ok: 100 records, last seq 100, last hash %.64s\n",
             last_hash);
    cr_expect_str_eq(out, expected);
    free(out);
    free_lines(lines, n);
}

Test(audit, an_empty_journal_verifies)
{
    audit_t *a = open_journal();
    audit_close(&a);
    char *out;
    cr_assert_eq(verify(&out), 0, "%s", out);
    cr_expect(strncmp(out, "ok: 0 records, last seq 0", 25) == 0, "%s", out);
    free(out);
}

Test(audit, a_modified_field_is_reported_at_its_line)
{
    write_events(10);
    char **lines;
    size_t n = read_lines(&lines);
    char *actor = strstr(lines[3], "rpps:1010");
    cr_assert_not_null(actor);
    actor[9] = actor[9] == '7' ? '8' : '7'; /* another doctor did it */
    write_lines(lines, n);
    char *out;
    cr_expect_eq(verify(&out), 1);
    cr_expect_str_eq(out, "broken at line 4 (seq 4): hash mismatch\n");
    free(out);
    free_lines(lines, n);
}

Test(audit, a_deleted_line_is_reported)
{
    write_events(10);
    char **lines;
    size_t n = read_lines(&lines);
    free(lines[4]);
    memmove(&lines[4], &lines[5], (n - 5) * sizeof(*lines));
    write_lines(lines, n - 1);
    char *out;
    cr_expect_eq(verify(&out), 1);
    cr_expect_str_eq(out, "broken at line 5 (seq 6): prev does not match the previous record\n");
    free(out);
    free_lines(lines, n - 1);
}

Test(audit, a_deleted_first_line_is_reported)
{
    write_events(5);
    char **lines;
    size_t n = read_lines(&lines);
    write_lines(lines + 1, n - 1);
    char *out;
    cr_expect_eq(verify(&out), 1);
    cr_expect_str_eq(out, "broken at line 1 (seq 2): prev does not match the previous record\n");
    free(out);
    free_lines(lines, n);
}

Test(audit, reordered_lines_are_reported)
{
    write_events(10);
    char **lines;
    size_t n = read_lines(&lines);
    char *t = lines[2];
    lines[2] = lines[3];
    lines[3] = t;
    write_lines(lines, n);
    char *out;
    cr_expect_eq(verify(&out), 1);
    cr_expect_str_eq(out, "broken at line 3 (seq 4): prev does not match the previous record\n");
    free(out);
    free_lines(lines, n);
}

Test(audit, an_inserted_line_is_reported)
{
    write_events(6);
    char **lines;
    size_t n = read_lines(&lines);
    lines = realloc(lines, (n + 1) * sizeof(*lines));
    memmove(&lines[3], &lines[2], (n - 2) * sizeof(*lines));
    lines[2] = strdup(lines[1]); /* a copy of a genuine record */
    write_lines(lines, n + 1);
    char *out;
    cr_expect_eq(verify(&out), 1);
    cr_expect_str_eq(out, "broken at line 3 (seq 2): prev does not match the previous record\n");
    free(out);
    free_lines(lines, n + 1);
}

Test(audit, a_line_that_is_not_a_record_is_reported)
{
    write_events(4);
    char **lines;
    size_t n = read_lines(&lines);
    free(lines[1]);
    lines[1] = strdup("{\"seq\":2,\"note\":\"nothing to see\"}\n");
    write_lines(lines, n);
    char *out;
    cr_expect_eq(verify(&out), 1);
    cr_expect_str_eq(out, "broken at line 2 (seq 2): unparseable line\n");
    free(out);
    free_lines(lines, n);
}

Test(audit, truncation_is_caught_only_against_a_kept_anchor)
{
    write_events(10);
    char **lines;
    size_t n = read_lines(&lines);
    char anchor[65];
    snprintf(anchor, sizeof(anchor), "%.64s", strstr(lines[9], "\"hash\":\"") + 8);
    char *out;
    cr_assert_eq(run_ctl(&out, "verify", path, "--anchor", anchor, NULL, NULL), 0, "%s", out);
    cr_expect(strstr(out, "anchor at seq 10") != NULL, "%s", out);
    free(out);

    write_lines(lines, 7); /* the last three records cut off */
    cr_expect_eq(verify(&out), 0, "a chain alone cannot see its end cut: %s", out);
    free(out);
    cr_expect_eq(run_ctl(&out, "verify", path, "--anchor", anchor, NULL, NULL), 1);
    cr_expect(strncmp(out, "broken: no record has the anchor hash", 37) == 0, "%s", out);
    free(out);
    free_lines(lines, n);
}

/* ---- crash recovery and reopening --------------------------------------------------- */

Test(audit, reopening_continues_seq_and_chain)
{
    write_events(3);
    write_events(4);
    char *out;
    cr_assert_eq(verify(&out), 0, "%s", out);
    cr_expect(strncmp(out, "ok: 7 records, last seq 7,", 26) == 0, "%s", out);
    free(out);
}

Test(audit, a_torn_tail_is_cut_off_at_open_and_the_chain_continues)
{
    write_events(5);
    size_t len;
    char *text = slurp(path, &len);
    /* A crash in the middle of the sixth line's write. */
    const char *torn = "{\"seq\":6,\"at\":1795871220005,\"event\":\"deli";
    char *damaged = malloc(len + strlen(torn) + 1);
    memcpy(damaged, text, len);
    strcpy(damaged + len, torn);
    spit(path, damaged, len + strlen(torn));

    char *out;
    cr_expect_eq(verify(&out), 0, "%s", out);
    cr_expect(strstr(out, "line 6 has no newline") != NULL, "%s", out);
    cr_expect(strstr(out, "ok: 5 records") != NULL, "%s", out);
    free(out);

    audit_t *a = open_journal();
    audit_event_t ev = sample_event(5);
    cr_assert_eq(audit_record(a, &ev), 0);
    audit_close(&a);

    char **lines;
    size_t n = read_lines(&lines);
    cr_assert_eq(n, 7);
    cr_expect(strstr(lines[5], "\"seq\":6,") && strstr(lines[5], "\"event\":\"audit.repair\""),
              "%s", lines[5]);
    cr_expect(strstr(lines[5], "cut 41 torn bytes") != NULL, "%s", lines[5]);
    cr_expect(strstr(lines[6], "\"seq\":7,") && strstr(lines[6], "\"event\":\"expire\""), "%s",
              lines[6]);
    cr_assert_eq(verify(&out), 0, "%s", out);
    cr_expect(strncmp(out, "ok: 7 records", 13) == 0, "%s", out);
    free(out);
    free_lines(lines, n);
    free(damaged);
    free(text);
}

Test(audit, an_altered_last_record_is_not_repaired_and_open_refuses)
{
    write_events(3);
    char **lines;
    size_t n = read_lines(&lines);
    char *at = strstr(lines[2], "\"at\":") + 5;
    *at = *at == '1' ? '2' : '1';
    write_lines(lines, n);
    size_t before_len;
    char *before = slurp(path, &before_len);

    audit_t *a = NULL;
    char reason[256] = "";
    cr_expect_eq(audit_open(&a, path, reason, sizeof(reason)), RELAIS_ECONFIG);
    cr_expect_null(a);
    cr_expect(strstr(reason, "not a valid audit record") != NULL, "%s", reason);
    size_t after_len;
    char *after = slurp(path, &after_len);
    cr_expect(before_len == after_len && memcmp(before, after, before_len) == 0,
              "the journal must be left as found");
    free(before);
    free(after);
    free_lines(lines, n);
}

Test(audit, a_second_writer_is_locked_out)
{
    audit_t *a = open_journal(), *b = NULL;
    char reason[256] = "";
    cr_expect_eq(audit_open(&b, path, reason, sizeof(reason)), RELAIS_ESTORE);
    cr_expect(strstr(reason, "locked") != NULL, "%s", reason);
    audit_close(&a);
    audit_close(&a); /* NULL is fine */
}

/* ---- failures ----------------------------------------------------------------------- */

/* Makes write(2) fail (EFBIG) partway, like a full disk, once the journal holds what it
 * holds now. Criterion runs each test in its own process, so the limit stays here. */
static void fill_disk(struct rlimit *saved)
{
    signal(SIGXFSZ, SIG_IGN);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    struct rlimit lim;
    cr_assert_eq(getrlimit(RLIMIT_FSIZE, saved), 0);
    lim = *saved;
    lim.rlim_cur = (rlim_t)st.st_size + 100; /* room for part of one more line */
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
}

Test(audit, records_wait_while_the_disk_is_full_and_are_written_once_it_is_not)
{
    audit_t *a = open_journal();
    for (int i = 0; i < 3; i++) {
        audit_event_t ev = sample_event(i);
        cr_assert_eq(audit_record(a, &ev), 0);
    }
    cr_assert_eq(audit_sync(a), 0);
    cr_expect(audit_healthy(a));
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    struct rlimit saved;
    fill_disk(&saved);

    audit_event_t ev = sample_event(3);
    cr_assert_eq(audit_record(a, &ev), 0, "queued before the failure is known");
    cr_expect_eq(audit_sync(a), RELAIS_ESTORE);
    struct stat st2;
    cr_assert_eq(stat(path, &st2), 0);
    cr_expect_eq(st2.st_size, st.st_size, "the failed write is cut back off");
    cr_expect_not(audit_healthy(a), "no new work while the journal cannot be written");
    uint64_t durable = audit_durable(a);
    ev = sample_event(4);
    cr_expect_eq(audit_record(a, &ev), 0, "kept in the queue, not refused");
    cr_expect_eq(audit_record(a, &ev), 0);
    cr_expect_eq(audit_durable(a), durable, "nothing more is durable while writes fail");

    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    cr_expect_eq(audit_sync(a), 0, "the queued records are written on the retry");
    cr_expect_eq(audit_durable(a), audit_position(a), "all of them durable");
    cr_expect(audit_healthy(a));
    ev = sample_event(5);
    cr_expect_eq(audit_record(a, &ev), 0);
    audit_close(&a);

    char **lines;
    size_t n = read_lines(&lines);
    cr_assert_eq(n, 7, "nothing lost, nothing doubled");
    cr_expect(strstr(lines[3], "\"at\":1795871220003,") != NULL, "%s", lines[3]);
    cr_expect(strstr(lines[4], "\"at\":1795871220004,") != NULL, "%s", lines[4]);
    cr_expect(strstr(lines[5], "\"at\":1795871220004,") != NULL, "%s", lines[5]);
    cr_expect(strstr(lines[6], "\"at\":1795871220005,") != NULL, "%s", lines[6]);
    char *out;
    cr_expect_eq(verify(&out), 0, "%s", out);
    free(out);
    free_lines(lines, n);
}

Test(audit, records_refused_by_a_full_queue_are_named_by_kind_once_writable)
{
    audit_t *a = open_journal();
    audit_event_t ev = sample_event(0);
    cr_assert_eq(audit_record(a, &ev), 0);
    cr_assert_eq(audit_sync(a), 0);
    struct rlimit saved;
    fill_disk(&saved);
    ev = sample_event(1);
    cr_assert_eq(audit_record(a, &ev), 0);
    cr_expect_eq(audit_sync(a), RELAIS_ESTORE);
    /* Fill the queue: its bound is what keeps memory finite while the disk is full. */
    ev = sample_event(2); /* a deliver */
    unsigned queued = 0, refused = 0;
    while (refused < 3 && queued < 1000000) {
        if (audit_record(a, &ev) == 0)
            queued++;
        else
            refused++;
    }
    cr_assert_eq(refused, 3, "a full queue refuses");
    ev = sample_event(3); /* an ack */
    cr_expect_eq(audit_record(a, &ev), RELAIS_ESTORE);
    cr_assert_eq(setrlimit(RLIMIT_FSIZE, &saved), 0);
    cr_expect_eq(audit_sync(a), 0);
    ev = sample_event(5);
    cr_expect_eq(audit_record(a, &ev), 0, "writable again");
    audit_close(&a);

    char **lines;
    size_t n = read_lines(&lines);
    cr_assert_eq(n, 2 + queued + 2, "every queued record, then the loss, then the next");
    cr_expect(strstr(lines[n - 2], "\"event\":\"audit.lost\"") != NULL, "%s", lines[n - 2]);
    cr_expect(strstr(lines[n - 2], "\"count\":4") != NULL, "%s", lines[n - 2]);
    cr_expect(strstr(lines[n - 2], "deliver=3 ack=1") != NULL, "%s", lines[n - 2]);
    char *out;
    cr_expect_eq(verify(&out), 0, "%s", out);
    free(out);
    free_lines(lines, n);
}

Test(audit, an_unknown_kind_is_refused)
{
    audit_t *a = open_journal();
    audit_event_t ev = {.kind = AUDIT_KIND_COUNT};
    cr_expect_eq(audit_record(a, &ev), RELAIS_EINVALID);
    ev.kind = 0;
    cr_expect_eq(audit_record(a, &ev), RELAIS_EINVALID);
    audit_close(&a);
}

/* ---- concurrency and hostile strings ------------------------------------------------ */

#define THREADS 4
#define PER_THREAD 2500

typedef struct worker {
    audit_t *a;
    char actor[32];
    int failures;
} worker_t;

static void worker_main(void *arg)
{
    worker_t *w = arg;
    for (uint32_t i = 1; i <= PER_THREAD; i++) {
        audit_event_t ev = {.kind = AUDIT_DELIVER, .actor = w->actor, .to = "rpps:1", .attempt = i};
        if (audit_record(w->a, &ev) != 0) w->failures++;
    }
}

Test(audit, records_from_four_threads_keep_one_valid_chain)
{
    audit_t *a = open_journal();
    worker_t w[THREADS];
    uv_thread_t t[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (worker_t){.a = a};
        snprintf(w[i].actor, sizeof(w[i].actor), "rpps:thread%d", i);
        cr_assert_eq(uv_thread_create(&t[i], worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        uv_thread_join(&t[i]);
        cr_expect_eq(w[i].failures, 0);
    }
    audit_close(&a);

    char *out;
    cr_assert_eq(verify(&out), 0, "%s", out);
    cr_expect(strncmp(out, "ok: 10000 records, last seq 10000,", 34) == 0, "%s", out);
    free(out);
    /* Each thread's records are in the order it made them. */
    char **lines;
    size_t n = read_lines(&lines);
    uint32_t next[THREADS] = {1, 1, 1, 1};
    for (size_t i = 0; i < n; i++) {
        audit_entry_t e;
        cr_assert_eq(audit__check_line(lines[i], strlen(lines[i]) - 1, &e), AUDIT_LINE_OK);
        int k = e.actor[strlen(e.actor) - 1] - '0';
        cr_assert_eq(e.attempt, next[k], "thread %d out of order at line %zu", k, i + 1);
        next[k]++;
    }
    free_lines(lines, n);
}

Test(audit, hostile_strings_stay_on_one_line_and_come_back_intact)
{
    const char *actor = "rpps:1\"},\n{\"seq\":99\\\x1b[2J\x01\xc3\xa9";
    char long_to[600];
    memset(long_to, 'x', sizeof(long_to) - 1);
    long_to[sizeof(long_to) - 1] = '\0';
    audit_t *a = open_journal();
    audit_event_t ev = {.kind = AUDIT_SESSION_REFUSED,
                        .actor = actor,
                        .to = long_to,
                        .message_id = (const uint8_t *)"abc",
                        .message_id_len = 3,
                        .code = RELAIS_EFORBIDDEN};
    cr_assert_eq(audit_record(a, &ev), 0);
    audit_close(&a);

    char **lines;
    size_t n = read_lines(&lines);
    cr_assert_eq(n, 1);
    audit_entry_t e;
    cr_assert_eq(audit__check_line(lines[0], strlen(lines[0]) - 1, &e), AUDIT_LINE_OK, "%s",
                 lines[0]);
    cr_expect_str_eq(e.actor, actor);
    cr_expect_eq(strlen(e.to), AUDIT_FIELD_MAX - 1, "cut, not refused");
    cr_expect_str_eq(e.msg, "616263");
    cr_expect_str_eq(e.event, "session.refused");
    cr_expect_str_eq(e.body, "-");

    char *out;
    cr_expect_eq(run_ctl(&out, "show", path, NULL, NULL, NULL, NULL), 0);
    cr_expect(strchr(out, '\x1b') == NULL, "no terminal escape reaches the screen: %s", out);
    cr_expect_eq(count_lines(out), 2, "%s", out);
    free(out);
    free_lines(lines, n);
}

/* ---- show --------------------------------------------------------------------------- */

static void write_show_fixture(void)
{
    static const uint8_t msg_b[16] = {0xaa};
    audit_t *a = open_journal();
    const audit_event_t evs[] = {
        /* 2026-11-27T10:00:00Z = 1795773600000 */
        {.kind = AUDIT_SESSION_OPEN, .at_ms = 1795773600000, .actor = "rpps:1"},
        {.kind = AUDIT_SUBMIT_ACCEPTED,
         .at_ms = 1795773601000,
         .actor = "rpps:1",
         .message_id = msg_a,
         .message_id_len = 16,
         .body = "appointment_request",
         .to = "rpps:2"},
        {.kind = AUDIT_DELIVER,
         .at_ms = 1795773602000,
         .actor = "rpps:1",
         .message_id = msg_a,
         .message_id_len = 16,
         .body = "appointment_request",
         .to = "rpps:2",
         .attempt = 1},
        {.kind = AUDIT_SESSION_OPEN, .at_ms = 1795777200000, .actor = "rpps:2"},
        {.kind = AUDIT_ACK,
         .at_ms = 1795777201000,
         .actor = "rpps:2",
         .message_id = msg_a,
         .message_id_len = 16,
         .outcome = "processed"},
        {.kind = AUDIT_SUBMIT_REJECTED,
         .at_ms = 1795780800000,
         .actor = "rpps:2",
         .message_id = msg_b,
         .message_id_len = 16,
         .code = RELAIS_EFORBIDDEN},
        {.kind = AUDIT_SESSION_CLOSE, .at_ms = 1795780801000, .actor = "rpps:2", .outcome = "bye"},
    };
    for (size_t i = 0; i < sizeof(evs) / sizeof(evs[0]); i++)
        cr_assert_eq(audit_record(a, &evs[i]), 0);
    audit_close(&a);
}

/* Rows printed (the header line not counted); fails on a non-zero exit. */
static size_t show_rows(char **out, const char *o1, const char *v1, const char *o2, const char *v2)
{
    cr_assert_eq(run_ctl(out, "show", path, o1, v1, o2, v2), 0, "%s", *out);
    if (strcmp(*out, "no matching record\n") == 0) return 0;
    return count_lines(*out) - 1;
}

Test(audit, show_filters_by_actor_message_event_and_time)
{
    write_show_fixture();
    char *out;
    cr_expect_eq(show_rows(&out, NULL, NULL, NULL, NULL), 7);
    cr_expect(strstr(out, "2026-11-27T10:00:01.000Z") != NULL, "%s", out);
    cr_expect(strstr(out, "attempt 1") != NULL, "%s", out);
    cr_expect(strstr(out, "RELAIS_EFORBIDDEN") != NULL, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--actor", "rpps:1", NULL, NULL), 3, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--to", "rpps:2", NULL, NULL), 2, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--message", "0190C4F2-1122-7344-8566-778899AABBCC", NULL, NULL),
                 3, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--event", "session", NULL, NULL), 3, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--event", "session.open", "--actor", "rpps:2"), 1, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--event", "sess", NULL, NULL), 0, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--since", "2026-11-27T11:00", NULL, NULL), 4, "%s", out);
    free(out);
    cr_expect_eq(
        show_rows(&out, "--since", "2026-11-27T10:00:01Z", "--until", "2026-11-27T11:00:00.500Z"),
        3, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--until", "1795773601000", NULL, NULL), 1, "%s", out);
    free(out);
    cr_expect_eq(show_rows(&out, "--since", "2026-11-28", NULL, NULL), 0, "%s", out);
    free(out);
}

Test(audit, bad_usage_exits_2_and_help_exits_0)
{
    char *out;
    cr_expect_eq(run_ctl(&out, "--help", NULL, NULL, NULL, NULL, NULL), 0);
    cr_expect(strstr(out, "relaisctl audit verify FILE") != NULL, "%s", out);
    free(out);
    cr_expect_eq(run_ctl(&out, NULL, NULL, NULL, NULL, NULL, NULL), 2);
    free(out);
    cr_expect_eq(run_ctl(&out, "frobnicate", path, NULL, NULL, NULL, NULL), 2);
    free(out);
    cr_expect_eq(run_ctl(&out, "show", path, "--since", "yesterday", NULL, NULL), 2);
    free(out);
    cr_expect_eq(run_ctl(&out, "show", path, "--actor", NULL, NULL, NULL), 2);
    free(out);
    cr_expect_eq(run_ctl(&out, "verify", path, "--anchor", "abc", NULL, NULL), 2);
    free(out);
    cr_expect_eq(run_ctl(&out, "verify", "/nonexistent/audit.log", NULL, NULL, NULL, NULL), 1);
    free(out);
}

/* ---- rotation ---------------------------------------------------------------------- */

Test(audit, a_rotated_journal_keeps_one_chain_across_its_files)
{
    audit_t *a = open_journal();
    audit_set_rotation(a, 2000); /* a few records per file */
    for (int i = 0; i < 40; i++) {
        audit_event_t ev = sample_event(i);
        cr_assert_eq(audit_record(a, &ev), 0);
        if (i % 5 == 4) cr_assert_eq(audit_sync(a), 0);
    }
    audit_close(&a);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "ls %s.* 2>/dev/null | wc -l", path);
    FILE *f = popen(cmd, "r");
    int rotated = 0;
    cr_assert_eq(fscanf(f, "%d", &rotated), 1);
    pclose(f);
    cr_assert_geq(rotated, 3, "the journal was rotated: %d files", rotated);
    char *out;
    cr_expect_eq(verify(&out), 0, "%s", out);
    cr_expect(strstr(out, "files") != NULL && strstr(out, "last seq") != NULL, "%s", out);
    free(out);
    /* The retention period removes the oldest file: what remains still verifies, and says
     * where its chain starts. */
    snprintf(cmd, sizeof cmd, "rm $(ls %s.* | head -1)", path);
    cr_assert_eq(system(cmd), 0);
    cr_expect_eq(verify(&out), 0, "%s", out);
    cr_expect(strstr(out, "the chain starts at seq") != NULL, "%s", out);
    free(out);
    /* A file removed from the middle of the set breaks the chain. */
    snprintf(cmd, sizeof cmd, "rm $(ls %s.* | sed -n 2p)", path);
    cr_assert_eq(system(cmd), 0);
    cr_expect_eq(verify(&out), 1, "%s", out);
    cr_expect(strstr(out, "broken at") != NULL, "%s", out);
    free(out);
}
