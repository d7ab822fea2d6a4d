/*
 * The agent's local state file: a small SQLite database holding what must outlive the
 * agent's process — submissions the broker has not answered yet (the outbox) and the
 * deliveries already handled (the dedup window).
 *
 * Every write is a transaction of its own, committed with synchronous=FULL in WAL mode
 * before the function returns: relais_agent_send() returning 0 and a handler's delivery
 * being acknowledged both promise something about the disk, not about memory. An agent
 * sends little, so one fsync per submission and per handled delivery is the price; deletes
 * of answered submissions are batched by the caller. The file is opened in exclusive
 * locking mode and locked at once, so two processes (or two agents of one process) can
 * never share it and resend each other's submissions; the lock dies with the process, so a
 * kill -9 never leaves it stale. The file records the address it belongs to: its pending
 * submissions were stamped for that sender and must not go out under another identity.
 * All SQL of the agent lives here; outbox.c and dedup.c keep their in-memory structures
 * and write through these functions, and so does conv.c for the conversations it tracks
 * (schema version 2: one row per conversation, one per preadmission candidate or follow-up
 * item). A change of conversation must reach the disk with the submission or the handled
 * delivery that caused it, so the caller can hold one transaction around several of these
 * writes (agent__state_hold/release): inside it each function's own transaction is folded
 * into the held one.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "agent_internal.h"
#include "conv_internal.h"
#include "relais/log.h"

/* Version of the schema below, kept in PRAGMA user_version. */
#define STATE_SCHEMA_VERSION 2

static const char schema_v1[] =
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
    "CREATE TABLE outbox (seq INTEGER PRIMARY KEY, id BLOB NOT NULL, frame BLOB NOT NULL);"
    "CREATE TABLE dedup (seq INTEGER PRIMARY KEY, sender TEXT NOT NULL, id BLOB NOT NULL,"
    "  outcome INTEGER NOT NULL, UNIQUE (sender, id));";

/* Conversation tracking (relais_conv_enable), added in version 2. Times are ms since the
 * epoch, so that deadlines mean the same thing after a restart. */
static const char schema_v2[] =
    "CREATE TABLE conversations (id BLOB PRIMARY KEY, kind INTEGER NOT NULL,"
    "  role INTEGER NOT NULL, state INTEGER NOT NULL, prev_state INTEGER NOT NULL,"
    "  flags INTEGER NOT NULL, redispatches INTEGER NOT NULL, counterpart TEXT NOT NULL,"
    "  request_id TEXT NOT NULL, patient TEXT NOT NULL, reason TEXT NOT NULL,"
    "  opened_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, entered_ms INTEGER NOT NULL,"
    "  deadline_ms INTEGER NOT NULL, due_ms INTEGER NOT NULL, last_msg BLOB NOT NULL,"
    "  last_body INTEGER NOT NULL, last_out INTEGER NOT NULL, opening BLOB);"
    "CREATE TABLE conversation_parts (conv BLOB NOT NULL, seq INTEGER NOT NULL,"
    "  key TEXT NOT NULL, label TEXT NOT NULL, state INTEGER NOT NULL, flags INTEGER NOT NULL,"
    "  due_ms INTEGER NOT NULL, updated_ms INTEGER NOT NULL, ref BLOB,"
    "  PRIMARY KEY (conv, seq));";

enum {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_OUTBOX_INS,
    ST_OUTBOX_DEL,
    ST_OUTBOX_LOAD,
    ST_DEDUP_INS,
    ST_DEDUP_PRUNE,
    ST_DEDUP_LOAD,
    ST_CONV_SAVE,
    ST_CONV_DEL,
    ST_CONV_LOAD,
    ST_PART_INS,
    ST_PART_DEL,
    ST_PART_LOAD,
    ST_COUNT
};

static const char *const statements[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_OUTBOX_INS] = "INSERT INTO outbox (id, frame) VALUES (?1, ?2)",
    [ST_OUTBOX_DEL] = "DELETE FROM outbox WHERE seq = ?1",
    [ST_OUTBOX_LOAD] = "SELECT seq, id, frame FROM outbox ORDER BY seq",
    [ST_DEDUP_INS] = "INSERT OR REPLACE INTO dedup (sender, id, outcome) VALUES (?1, ?2, ?3)",
    [ST_DEDUP_PRUNE] = "DELETE FROM dedup WHERE seq <= ?1",
    /* The newest rows, returned oldest first so that replaying them rebuilds the ring in
     * the order it was filled. */
    [ST_DEDUP_LOAD] = "SELECT sender, id, outcome FROM (SELECT seq, sender, id, outcome FROM "
                      "dedup ORDER BY seq DESC LIMIT ?1) ORDER BY seq",
    [ST_CONV_SAVE] = "INSERT OR REPLACE INTO conversations (id, kind, role, state, prev_state,"
                     " flags, redispatches, counterpart, request_id, patient, reason, opened_ms,"
                     " updated_ms, entered_ms, deadline_ms, due_ms, last_msg, last_body, last_out,"
                     " opening) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                     " ?14, ?15, ?16, ?17, ?18, ?19, ?20)",
    [ST_CONV_DEL] = "DELETE FROM conversations WHERE id = ?1",
    [ST_CONV_LOAD] = "SELECT id, kind, role, state, prev_state, flags, redispatches, counterpart,"
                     " request_id, patient, reason, opened_ms, updated_ms, entered_ms,"
                     " deadline_ms, due_ms, last_msg, last_body, last_out, opening"
                     " FROM conversations ORDER BY opened_ms, id",
    [ST_PART_INS] = "INSERT INTO conversation_parts (conv, seq, key, label, state, flags, due_ms,"
                    " updated_ms, ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [ST_PART_DEL] = "DELETE FROM conversation_parts WHERE conv = ?1",
    [ST_PART_LOAD] = "SELECT key, label, state, flags, due_ms, updated_ms, ref"
                     " FROM conversation_parts WHERE conv = ?1 ORDER BY seq",
};

struct agent_state {
    sqlite3 *db;
    sqlite3_stmt *st[ST_COUNT];
    char *path;
    bool held;   /* agent__state_hold(): begin() and finish() fold into that transaction */
    int held_rc; /* the first failure inside it, which makes the release roll back */
};

static int fail(agent_state_t *s, const char *what)
{
    RLOG(RELAIS_LOG_ERROR, "agent", "state file %s: %s: %s", s->path, what, sqlite3_errmsg(s->db));
    return RELAIS_ESTORE;
}

/* The lock is held by another connection: the file is someone else's while it runs. */
static int busy(agent_state_t *s)
{
    RLOG(RELAIS_LOG_ERROR, "agent", "state file %s is in use by another agent or process", s->path);
    return -EBUSY;
}

/* Runs SQL of the opening sequence, where a held lock is the one failure that is not ours. */
static int exec(agent_state_t *s, const char *sql, const char *what)
{
    char *err = NULL;
    int rc = sqlite3_exec(s->db, sql, NULL, NULL, &err);
    if (rc == SQLITE_OK) return 0;
    if (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) {
        sqlite3_free(err);
        return busy(s);
    }
    RLOG(RELAIS_LOG_ERROR, "agent", "state file %s: %s: %s", s->path, what,
         err ? err : sqlite3_errmsg(s->db));
    sqlite3_free(err);
    return RELAIS_ESTORE;
}

/* Runs a prepared statement that returns no row, and resets it for the next use. */
static int step_done(agent_state_t *s, int which, const char *what)
{
    sqlite3_stmt *st = s->st[which];
    int rc = sqlite3_step(st);
    int ret = rc == SQLITE_DONE ? 0 : fail(s, what);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

static int begin(agent_state_t *s)
{
    if (s->held) return 0;
    return step_done(s, ST_BEGIN, "begin");
}

/* Commits, or rolls back when ok is not 0 (the transaction's first error, returned). */
static int finish(agent_state_t *s, int ok)
{
    if (s->held) {
        if (ok != 0 && s->held_rc == 0) s->held_rc = ok;
        return ok;
    }
    if (ok == 0 && (ok = step_done(s, ST_COMMIT, "commit")) == 0) return 0;
    /* A failed COMMIT may leave the transaction open; a rollback with none open is harmless. */
    if (!sqlite3_get_autocommit(s->db)) step_done(s, ST_ROLLBACK, "rollback");
    return ok;
}

/*
 * Takes the lock and makes the schema current. The first statement that writes acquires the
 * exclusive lock, which exclusive locking mode then keeps until the connection closes.
 */
static int migrate(agent_state_t *s)
{
    int rc = exec(s, "BEGIN IMMEDIATE", "cannot lock");
    if (rc != 0) return rc;
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    int ret = 0;
    if (version < 0) {
        ret = fail(s, "cannot read the schema version");
    } else if (version > STATE_SCHEMA_VERSION) {
        RLOG(RELAIS_LOG_ERROR, "agent",
             "state file %s has schema version %d, newer than this SDK (%d): refusing it", s->path,
             version, STATE_SCHEMA_VERSION);
        ret = RELAIS_ECONFIG;
    } else if (version < STATE_SCHEMA_VERSION) {
        /* Each step brings the file one version forward, in the same transaction. */
        if (version < 1) ret = exec(s, schema_v1, "cannot create the schema");
        if (ret == 0 && version < 2)
            ret = exec(s, schema_v2, "cannot add the conversation tables");
        if (ret == 0)
            ret = exec(s, "PRAGMA user_version = 2", "cannot set the schema version");
    }
    if (ret == 0) return exec(s, "COMMIT", "cannot commit the schema");
    sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return ret;
}

/* Records address in a new file, or checks that an existing file belongs to it. */
static int claim(agent_state_t *s, const char *address)
{
    sqlite3_stmt *st = NULL;
    int ret = 0;
    if (sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE key = 'address'", -1, &st, NULL) !=
        SQLITE_OK)
        return fail(s, "cannot read the owner");
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        const char *owner = (const char *)sqlite3_column_text(st, 0);
        if (!owner || strcmp(owner, address) != 0) {
            RLOG(RELAIS_LOG_ERROR, "agent",
                 "state file %s belongs to agent=%s, not to agent=%s: refusing it", s->path,
                 owner ? owner : "?", address);
            ret = RELAIS_ECONFIG;
        }
    } else if (rc == SQLITE_DONE) {
        sqlite3_finalize(st);
        st = NULL;
        if (sqlite3_prepare_v2(s->db, "INSERT INTO meta (key, value) VALUES ('address', ?1)", -1,
                               &st, NULL) != SQLITE_OK ||
            sqlite3_bind_text(st, 1, address, -1, SQLITE_STATIC) != SQLITE_OK ||
            sqlite3_step(st) != SQLITE_DONE)
            ret = fail(s, "cannot record the owner");
    } else {
        ret = fail(s, "cannot read the owner");
    }
    sqlite3_finalize(st);
    return ret;
}

int agent__state_open(agent_state_t **out, const char *path, const char *address)
{
    agent_state_t *s = calloc(1, sizeof(*s));
    if (!s) return -ENOMEM;
    if (!(s->path = strdup(path))) {
        free(s);
        return -ENOMEM;
    }
    int ret;
    /* The file holds clinical content: create it private (SQLite gives its -wal and -shm
     * files the same mode). An existing file keeps the mode its owner chose. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        ret = s->db ? fail(s, "cannot open") : -ENOMEM;
        goto err;
    }
    /* Exclusive locking first: in WAL mode it must be set before the WAL is opened, and
     * it spares the shared-memory index a single-connection file does not need. FULL sync
     * makes every commit reach the disk before it returns. */
    if ((ret = exec(s,
                    "PRAGMA locking_mode=EXCLUSIVE; PRAGMA journal_mode=WAL;"
                    "PRAGMA synchronous=FULL; PRAGMA busy_timeout=0;",
                    "cannot configure")) != 0)
        goto err;
    if ((ret = migrate(s)) != 0) goto err;
    if ((ret = claim(s, address)) != 0) goto err;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            ret = fail(s, "cannot prepare a statement");
            goto err;
        }
    }
    *out = s;
    return 0;

err:
    agent__state_close(&s);
    return ret;
}

void agent__state_close(agent_state_t **state)
{
    if (!state || !*state) return;
    agent_state_t *s = *state;
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->st[i]);
    /* Closing checkpoints the WAL into the database; a killed process leaves the WAL for
     * the next open to replay, which is what makes the commits durable. */
    sqlite3_close(s->db);
    free(s->path);
    free(s);
    *state = NULL;
}

const char *agent__state_path(const agent_state_t *state)
{
    return state->path;
}

/* Deletes answered submissions inside the caller's transaction. */
static int delete_rows(agent_state_t *s, const int64_t *seqs, size_t n)
{
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        sqlite3_bind_int64(s->st[ST_OUTBOX_DEL], 1, seqs[i]);
        rc = step_done(s, ST_OUTBOX_DEL, "cannot delete an answered submission");
    }
    return rc;
}

int agent__state_outbox_insert(agent_state_t *s, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                               const uint8_t *frame, size_t frame_len, const int64_t *deletes,
                               size_t ndeletes, int64_t *seq_out)
{
    int rc = begin(s);
    if (rc != 0) return rc;
    rc = delete_rows(s, deletes, ndeletes);
    if (rc == 0) {
        sqlite3_stmt *st = s->st[ST_OUTBOX_INS];
        sqlite3_bind_blob(st, 1, id, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_blob64(st, 2, frame, frame_len, SQLITE_STATIC);
        rc = step_done(s, ST_OUTBOX_INS, "cannot record a submission");
        if (rc == 0) *seq_out = sqlite3_last_insert_rowid(s->db);
    }
    return finish(s, rc);
}

int agent__state_outbox_delete(agent_state_t *s, const int64_t *seqs, size_t n)
{
    if (n == 0) return 0;
    int rc = begin(s);
    if (rc != 0) return rc;
    return finish(s, delete_rows(s, seqs, n));
}

int agent__state_outbox_load(agent_state_t *s, agent_state_outbox_fn fn, void *ud)
{
    sqlite3_stmt *st = s->st[ST_OUTBOX_LOAD];
    int rc = SQLITE_DONE, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const void *id = sqlite3_column_blob(st, 1);
        size_t id_len = (size_t)sqlite3_column_bytes(st, 1);
        const void *frame = sqlite3_column_blob(st, 2);
        size_t frame_len = (size_t)sqlite3_column_bytes(st, 2);
        ret = fn(ud, sqlite3_column_int64(st, 0), id, id_len, frame, frame_len);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = fail(s, "cannot read the outbox");
    sqlite3_reset(st);
    return ret;
}

int agent__state_dedup_insert(agent_state_t *s, const char *sender, const uint8_t *id,
                              size_t id_len, int outcome, size_t keep)
{
    int rc = begin(s);
    if (rc != 0) return rc;
    sqlite3_stmt *st = s->st[ST_DEDUP_INS];
    sqlite3_bind_text(st, 1, sender, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, id, (int)id_len, SQLITE_STATIC);
    sqlite3_bind_int(st, 3, outcome);
    rc = step_done(s, ST_DEDUP_INS, "cannot record a handled delivery");
    if (rc == 0) {
        /* Row ids only grow, so everything `keep` rows behind the newest is outside the
         * window: one indexed range delete, usually of one row. */
        int64_t newest = sqlite3_last_insert_rowid(s->db);
        if (newest > (int64_t)keep) {
            sqlite3_bind_int64(s->st[ST_DEDUP_PRUNE], 1, newest - (int64_t)keep);
            rc = step_done(s, ST_DEDUP_PRUNE, "cannot prune the dedup window");
        }
    }
    return finish(s, rc);
}

int agent__state_dedup_load(agent_state_t *s, size_t limit, agent_state_dedup_fn fn, void *ud)
{
    sqlite3_stmt *st = s->st[ST_DEDUP_LOAD];
    sqlite3_bind_int64(st, 1, (int64_t)limit);
    int rc = SQLITE_DONE, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *sender = (const char *)sqlite3_column_text(st, 0);
        const void *id = sqlite3_column_blob(st, 1);
        size_t id_len = (size_t)sqlite3_column_bytes(st, 1);
        ret = fn(ud, sender ? sender : "", id, id_len, sqlite3_column_int(st, 2));
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = fail(s, "cannot read the dedup window");
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return ret;
}

int agent__state_hold(agent_state_t *s)
{
    if (!s) return 0;
    if (s->held) return -EALREADY;
    int rc = step_done(s, ST_BEGIN, "begin");
    if (rc != 0) return rc;
    s->held = true;
    s->held_rc = 0;
    return 0;
}

int agent__state_release(agent_state_t *s, int rc)
{
    if (!s || !s->held) return rc;
    s->held = false;
    if (rc == 0) rc = s->held_rc;
    if (rc == 0 && (rc = step_done(s, ST_COMMIT, "commit")) == 0) return 0;
    if (!sqlite3_get_autocommit(s->db)) step_done(s, ST_ROLLBACK, "rollback");
    return rc;
}

static void bind_text(sqlite3_stmt *st, int i, const char *text)
{
    sqlite3_bind_text(st, i, text ? text : "", -1, SQLITE_STATIC);
}

int agent__state_conv_save(agent_state_t *s, const conv_t *c)
{
    int rc = begin(s);
    if (rc != 0) return rc;
    sqlite3_stmt *st = s->st[ST_CONV_SAVE];
    sqlite3_bind_blob(st, 1, c->id, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, (int)c->kind);
    sqlite3_bind_int(st, 3, (int)c->role);
    sqlite3_bind_int(st, 4, (int)c->state);
    sqlite3_bind_int(st, 5, (int)c->prev_state);
    sqlite3_bind_int(st, 6, (int)c->flags);
    sqlite3_bind_int(st, 7, (int)c->redispatches);
    bind_text(st, 8, c->counterpart);
    bind_text(st, 9, c->request_id);
    bind_text(st, 10, c->patient);
    bind_text(st, 11, c->reason);
    sqlite3_bind_int64(st, 12, c->opened_ms);
    sqlite3_bind_int64(st, 13, c->updated_ms);
    sqlite3_bind_int64(st, 14, c->entered_ms);
    sqlite3_bind_int64(st, 15, c->deadline_ms);
    sqlite3_bind_int64(st, 16, c->due_ms);
    sqlite3_bind_blob(st, 17, c->last_msg, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
    sqlite3_bind_int(st, 18, c->last_body);
    sqlite3_bind_int(st, 19, c->last_out);
    if (c->opening_len)
        sqlite3_bind_blob64(st, 20, c->opening, c->opening_len, SQLITE_STATIC);
    rc = step_done(s, ST_CONV_SAVE, "cannot record a conversation");
    /* The parts are few (candidates, follow-up items): rewritten whole, in order. */
    if (rc == 0) {
        sqlite3_bind_blob(s->st[ST_PART_DEL], 1, c->id, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
        rc = step_done(s, ST_PART_DEL, "cannot rewrite a conversation's parts");
    }
    for (size_t i = 0; rc == 0 && i < c->nparts; i++) {
        const conv_part_t *p = &c->parts[i];
        st = s->st[ST_PART_INS];
        sqlite3_bind_blob(st, 1, c->id, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, (int64_t)i);
        bind_text(st, 3, p->key);
        bind_text(st, 4, p->label);
        sqlite3_bind_int(st, 5, (int)p->state);
        sqlite3_bind_int(st, 6, (int)p->flags);
        sqlite3_bind_int64(st, 7, p->due_ms);
        sqlite3_bind_int64(st, 8, p->updated_ms);
        if (p->has_ref) sqlite3_bind_blob(st, 9, p->ref, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
        rc = step_done(s, ST_PART_INS, "cannot record a conversation's part");
    }
    return finish(s, rc);
}

int agent__state_conv_delete(agent_state_t *s, const uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    int rc = begin(s);
    if (rc != 0) return rc;
    sqlite3_bind_blob(s->st[ST_PART_DEL], 1, id, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
    rc = step_done(s, ST_PART_DEL, "cannot forget a conversation's parts");
    if (rc == 0) {
        sqlite3_bind_blob(s->st[ST_CONV_DEL], 1, id, RELAIS_MESSAGE_ID_LEN, SQLITE_STATIC);
        rc = step_done(s, ST_CONV_DEL, "cannot forget a conversation");
    }
    return finish(s, rc);
}

static void column_text(sqlite3_stmt *st, int col, char *out, size_t cap)
{
    const char *t = (const char *)sqlite3_column_text(st, col);
    snprintf(out, cap, "%s", t ? t : "");
}

static void column_id(sqlite3_stmt *st, int col, uint8_t out[RELAIS_MESSAGE_ID_LEN], bool *has)
{
    bool ok = sqlite3_column_bytes(st, col) == RELAIS_MESSAGE_ID_LEN;
    if (ok) memcpy(out, sqlite3_column_blob(st, col), RELAIS_MESSAGE_ID_LEN);
    if (has) *has = ok;
}

/* Reads one conversation row and its parts into a new conv_t. */
static int load_conv(agent_state_t *s, sqlite3_stmt *st, conv_t **out)
{
    conv_t *c = conv__new();
    if (!c) return -ENOMEM;
    bool ok;
    column_id(st, 0, c->id, &ok);
    c->kind = (relais_conv_kind_t)sqlite3_column_int(st, 1);
    c->role = (relais_conv_role_t)sqlite3_column_int(st, 2);
    c->state = (relais_conv_state_t)sqlite3_column_int(st, 3);
    c->prev_state = (relais_conv_state_t)sqlite3_column_int(st, 4);
    c->flags = (unsigned)sqlite3_column_int(st, 5);
    c->redispatches = (unsigned)sqlite3_column_int(st, 6);
    column_text(st, 7, c->counterpart, sizeof(c->counterpart));
    column_text(st, 8, c->request_id, sizeof(c->request_id));
    column_text(st, 9, c->patient, sizeof(c->patient));
    column_text(st, 10, c->reason, sizeof(c->reason));
    c->opened_ms = sqlite3_column_int64(st, 11);
    c->updated_ms = sqlite3_column_int64(st, 12);
    c->entered_ms = sqlite3_column_int64(st, 13);
    c->deadline_ms = sqlite3_column_int64(st, 14);
    c->due_ms = sqlite3_column_int64(st, 15);
    column_id(st, 16, c->last_msg, NULL);
    c->last_body = sqlite3_column_int(st, 17);
    c->last_out = sqlite3_column_int(st, 18) != 0;
    int n = sqlite3_column_bytes(st, 19);
    if (n > 0) {
        if (!(c->opening = malloc((size_t)n))) goto nomem;
        memcpy(c->opening, sqlite3_column_blob(st, 19), (size_t)n);
        c->opening_len = (size_t)n;
    }
    if (!ok) {
        RLOG(RELAIS_LOG_ERROR, "agent", "state file %s: dropping a conversation row without a "
             "16-byte id", s->path);
        conv__free(&c);
        return 0;
    }
    sqlite3_stmt *ps = s->st[ST_PART_LOAD];
    sqlite3_bind_blob(ps, 1, c->id, RELAIS_MESSAGE_ID_LEN, SQLITE_TRANSIENT);
    int rc, ret = 0;
    while ((rc = sqlite3_step(ps)) == SQLITE_ROW) {
        char key[RELAIS_ADDRESS_MAX], label[CONV_TEXT_MAX];
        column_text(ps, 0, key, sizeof(key));
        column_text(ps, 1, label, sizeof(label));
        conv_part_t *p =
            conv__add_part(c, key, label, (relais_conv_state_t)sqlite3_column_int(ps, 2),
                           sqlite3_column_int64(ps, 4), sqlite3_column_int64(ps, 5));
        if (!p) {
            ret = -ENOMEM;
            break;
        }
        p->flags = (unsigned)sqlite3_column_int(ps, 3);
        column_id(ps, 6, p->ref, &p->has_ref);
    }
    if (ret == 0 && rc != SQLITE_DONE) ret = fail(s, "cannot read a conversation's parts");
    sqlite3_reset(ps);
    sqlite3_clear_bindings(ps);
    if (ret != 0) {
        conv__free(&c);
        return ret;
    }
    *out = c;
    return 0;

nomem:
    conv__free(&c);
    return -ENOMEM;
}

int agent__state_conv_load(agent_state_t *s, agent_state_conv_fn fn, void *ud)
{
    sqlite3_stmt *st = s->st[ST_CONV_LOAD];
    int rc = SQLITE_DONE, ret = 0;
    while (ret == 0 && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        conv_t *c = NULL;
        ret = load_conv(s, st, &c);
        if (ret == 0 && c) ret = fn(ud, &c);
        conv__free(&c);
    }
    if (ret == 0 && rc != SQLITE_DONE && rc != SQLITE_ROW)
        ret = fail(s, "cannot read the conversations");
    sqlite3_reset(st);
    return ret;
}
