/*
 * Unit tests of the agent's state file (agents/runtime/state.c) through its internal
 * interface (agent_internal.h), below any socket: who may open a file (its owner address,
 * one connection at a time, a schema this SDK knows), the order and persistence of the
 * outbox rows, the dedup rows' pruning, and transactions held around several writes.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_internal.h"
#include "relais/log.h"

#define OWNER "rpps:10101234567"
#define OTHER "rpps:20202345678"

static char dir[64];
static char path[128];

static void setup(void)
{
    relais_log_set_level(RELAIS_LOG_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/relais-state-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    snprintf(path, sizeof(path), "%s/agent.db", dir);
}

static int rm_entry(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(p);
}

static void teardown(void)
{
    nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

TestSuite(agent_state, .init = setup, .fini = teardown);

/* Runs SQL on the file directly, as another program (or an older SDK) would. */
static void raw_sql(const char *sql)
{
    sqlite3 *db = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    char *err = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &err);
    cr_assert_eq(rc, SQLITE_OK, "%s: %s", sql, err ? err : "");
    sqlite3_close(db);
}

static int raw_user_version(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    cr_assert_eq(sqlite3_open(path, &db), SQLITE_OK);
    cr_assert_eq(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    cr_assert_eq(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* ---- Who may open it -------------------------------------------------------------- */

Test(agent_state, a_new_file_is_private_and_belongs_to_its_first_address)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    cr_expect_str_eq(agent__state_path(s), path);
    struct stat st;
    cr_assert_eq(stat(path, &st), 0);
    cr_expect_eq(st.st_mode & 0777, 0600, "clinical content: mode 0600, got %o", st.st_mode & 0777);
    agent__state_close(&s);
    cr_expect_null(s);
    cr_expect_eq(agent__state_open(&s, path, OWNER), 0, "its owner opens it again");
    agent__state_close(&s);
}

Test(agent_state, a_file_belonging_to_another_address_is_refused)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    int64_t seq;
    uint8_t id[RELAIS_MESSAGE_ID_LEN] = {1};
    cr_assert_eq(agent__state_outbox_insert(s, id, (const uint8_t *)"x", 1, NULL, 0, &seq), 0);
    agent__state_close(&s);
    /* Its pending submissions were stamped for OWNER: they must not go out as OTHER. */
    cr_expect_eq(agent__state_open(&s, path, OTHER), RELAIS_ECONFIG);
    cr_expect_null(s);
}

Test(agent_state, a_file_held_by_another_connection_is_busy_until_released)
{
    agent_state_t *first = NULL, *second = NULL;
    cr_assert_eq(agent__state_open(&first, path, OWNER), 0);
    cr_expect_eq(agent__state_open(&second, path, OWNER), -EBUSY);
    cr_expect_null(second);
    agent__state_close(&first);
    cr_expect_eq(agent__state_open(&second, path, OWNER), 0, "free once the holder closed it");
    agent__state_close(&second);
}

Test(agent_state, a_schema_newer_than_this_sdk_is_refused_and_left_alone)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    agent__state_close(&s);
    raw_sql("PRAGMA user_version = 99");
    cr_expect_eq(agent__state_open(&s, path, OWNER), RELAIS_ECONFIG);
    cr_expect_null(s);
    cr_expect_eq(raw_user_version(), 99, "the newer file is not rewritten");
}

Test(agent_state, a_version_1_file_is_brought_forward_with_its_rows)
{
    /* What the SDK wrote before conversation tracking: no conversation tables. */
    raw_sql("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, id BLOB NOT NULL, frame BLOB NOT NULL);"
            "CREATE TABLE dedup (seq INTEGER PRIMARY KEY, sender TEXT NOT NULL, id BLOB NOT NULL,"
            "  outcome INTEGER NOT NULL, UNIQUE (sender, id));"
            "INSERT INTO meta VALUES ('address', '" OWNER "');"
            "INSERT INTO dedup (sender, id, outcome) VALUES ('" OTHER "', x'0102', 1);"
            "PRAGMA user_version = 1;");
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    agent__state_close(&s);
    cr_expect_eq(raw_user_version(), 2);
}

/* ---- Outbox rows ------------------------------------------------------------------ */

typedef struct seen_rows {
    int64_t seq[16];
    uint8_t first_id_byte[16];
    char frame[16][8];
    size_t n;
} seen_rows_t;

static int collect_outbox(void *ud, int64_t seq, const uint8_t *id, size_t id_len,
                          const uint8_t *frame, size_t frame_len)
{
    seen_rows_t *r = ud;
    cr_assert_lt(r->n, 16);
    cr_expect_eq(id_len, RELAIS_MESSAGE_ID_LEN);
    r->seq[r->n] = seq;
    r->first_id_byte[r->n] = id[0];
    snprintf(r->frame[r->n], sizeof(r->frame[0]), "%.*s", (int)frame_len, (const char *)frame);
    r->n++;
    return 0;
}

static int64_t insert_row(agent_state_t *s, uint8_t tag, const char *frame, const int64_t *del,
                          size_t ndel)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN] = {tag};
    int64_t seq = 0;
    cr_assert_eq(
        agent__state_outbox_insert(s, id, (const uint8_t *)frame, strlen(frame), del, ndel, &seq),
        0);
    return seq;
}

Test(agent_state, outbox_rows_come_back_in_insertion_order_after_reopening)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    int64_t a = insert_row(s, 'a', "A", NULL, 0);
    int64_t b = insert_row(s, 'b', "B", NULL, 0);
    int64_t c = insert_row(s, 'c', "C", NULL, 0);
    cr_expect(a < b && b < c, "sequence numbers grow: %lld %lld %lld", (long long)a, (long long)b,
              (long long)c);
    /* An insert carries the deletions of answered rows in its own transaction. */
    int64_t d = insert_row(s, 'd', "D", &b, 1);
    agent__state_close(&s);

    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    seen_rows_t r = {0};
    cr_assert_eq(agent__state_outbox_load(s, collect_outbox, &r), 0);
    cr_assert_eq(r.n, 3);
    cr_expect_str_eq(r.frame[0], "A");
    cr_expect_str_eq(r.frame[1], "C");
    cr_expect_str_eq(r.frame[2], "D");
    cr_expect_eq(r.seq[2], d);
    cr_expect_eq(r.first_id_byte[1], 'c');
    int64_t gone[2] = {a, d};
    cr_assert_eq(agent__state_outbox_delete(s, gone, 2), 0);
    cr_expect_eq(agent__state_outbox_delete(s, gone, 0), 0, "nothing to delete is no error");
    agent__state_close(&s);

    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    memset(&r, 0, sizeof(r));
    cr_assert_eq(agent__state_outbox_load(s, collect_outbox, &r), 0);
    cr_assert_eq(r.n, 1);
    cr_expect_str_eq(r.frame[0], "C");
    agent__state_close(&s);
}

static int stop_at_second(void *ud, int64_t seq, const uint8_t *id, size_t id_len,
                          const uint8_t *frame, size_t frame_len)
{
    int *calls = ud;
    return ++*calls == 2 ? -ECANCELED : 0;
}

Test(agent_state, a_loader_error_stops_the_load_and_is_returned)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    insert_row(s, 'a', "A", NULL, 0);
    insert_row(s, 'b', "B", NULL, 0);
    insert_row(s, 'c', "C", NULL, 0);
    int calls = 0;
    cr_expect_eq(agent__state_outbox_load(s, stop_at_second, &calls), -ECANCELED);
    cr_expect_eq(calls, 2);
    /* The statement was reset: a later load starts from the first row. */
    seen_rows_t r = {0};
    cr_expect_eq(agent__state_outbox_load(s, collect_outbox, &r), 0);
    cr_expect_eq(r.n, 3);
    agent__state_close(&s);
}

/* ---- Held transactions ------------------------------------------------------------ */

Test(agent_state, a_held_transaction_commits_or_rolls_back_every_write_inside_it)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    cr_assert_eq(agent__state_hold(s), 0);
    cr_expect_eq(agent__state_hold(s), -EALREADY, "one held transaction at a time");
    insert_row(s, 'a', "A", NULL, 0);
    insert_row(s, 'b', "B", NULL, 0);
    cr_expect_eq(agent__state_release(s, 0), 0);

    cr_assert_eq(agent__state_hold(s), 0);
    insert_row(s, 'c', "C", NULL, 0);
    cr_assert_eq(
        agent__state_dedup_insert(s, OTHER, (const uint8_t *)"\x01", 1, RELAIS_PROCESSED, 10), 0);
    /* The caller decided against it (e.g. its send failed): nothing of it stays. */
    cr_expect_eq(agent__state_release(s, RELAIS_EINVALID), RELAIS_EINVALID);
    agent__state_close(&s);

    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    seen_rows_t r = {0};
    cr_assert_eq(agent__state_outbox_load(s, collect_outbox, &r), 0);
    cr_expect_eq(r.n, 2);
    cr_expect_eq(agent__state_hold(NULL), 0, "no file, nothing to hold");
    cr_expect_eq(agent__state_release(NULL, 7), 7);
    agent__state_close(&s);
}

/* ---- Dedup rows ------------------------------------------------------------------- */

typedef struct dedup_rows {
    uint8_t ids[64];
    int outcomes[64];
    size_t n;
} dedup_rows_t;

static int collect_dedup(void *ud, const char *sender, const uint8_t *id, size_t id_len,
                         int outcome)
{
    dedup_rows_t *r = ud;
    cr_assert_lt(r->n, 64);
    cr_expect_str_eq(sender, OTHER);
    cr_expect_eq(id_len, 1);
    r->ids[r->n] = id[0];
    r->outcomes[r->n] = outcome;
    r->n++;
    return 0;
}

Test(agent_state, dedup_rows_older_than_the_window_are_pruned_and_the_newest_load_oldest_first)
{
    agent_state_t *s = NULL;
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    for (uint8_t i = 1; i <= 10; i++)
        cr_assert_eq(agent__state_dedup_insert(s, OTHER, &i, 1,
                                               i % 2 ? RELAIS_PROCESSED : RELAIS_REFUSED, 4),
                     0);
    agent__state_close(&s);
    cr_assert_eq(agent__state_open(&s, path, OWNER), 0);
    dedup_rows_t r = {0};
    cr_assert_eq(agent__state_dedup_load(s, 100, collect_dedup, &r), 0);
    cr_assert_eq(r.n, 4, "the file keeps the window's size, got %zu", r.n);
    for (size_t i = 0; i < 4; i++) {
        cr_expect_eq(r.ids[i], 7 + i);
        cr_expect_eq(r.outcomes[i], (7 + i) % 2 ? RELAIS_PROCESSED : RELAIS_REFUSED);
    }
    memset(&r, 0, sizeof(r));
    cr_assert_eq(agent__state_dedup_load(s, 2, collect_dedup, &r), 0);
    cr_assert_eq(r.n, 2, "a smaller window loads the newest rows");
    cr_expect_eq(r.ids[0], 9);
    cr_expect_eq(r.ids[1], 10);
    agent__state_close(&s);
}
