/*
 * The SQLite store: one database file in WAL mode under the broker's data directory.
 *
 * Two connections. The writer belongs to a commit thread, so the loop keeps serving while
 * the disk syncs: the loop hands over a batch, the thread writes it in one transaction
 * (synchronous=FULL by default: a commit survives a power loss) and posts the result back
 * through a uv_async handle. One transaction per batch, one batch per loop turn: the group
 * commit that makes durability cost one fsync per turn, not one per message. The reader
 * belongs to the loop thread and answers the page, count, expiry and deduplication
 * queries; WAL lets it read what is committed while the writer writes.
 *
 * Checkpoints (copying the WAL back into the database file, with its own fsyncs) run on a
 * third connection and thread, not inside a commit: SQLite's automatic checkpoint would
 * otherwise make the unlucky commit — and every Accepted waiting on it — pay for it. If the
 * checkpointer ever falls far behind, the commit thread checkpoints itself rather than let
 * the WAL grow without bound.
 *
 * The schema is versioned (PRAGMA user_version) and migrated forward on open. A delivery
 * that ends expired or refused is copied, with its envelope, to dead_letters; a delivery
 * that ends leaves the deliveries table, and a message goes with its last delivery.
 */
#include <errno.h>
#include <fcntl.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

#include "broker.h"
#include "relais/errors.h"
#include "relais/log.h"
#include "reserve.h"
#include "store.h"

typedef struct job {
    store_batch_t batch;
    store_done_fn done;
    void *ud;
    int status;
    char reason[RELAIS_REASON_MAX];
    uint64_t *dups; /* seqs of the batch's duplicate messages */
    size_t ndups, dups_cap;
    uint64_t skip_seq; /* the last duplicate: its STORED deliveries are skipped too */
    uint64_t journal_ticket; /* the journal position the batch's records reached */
    bool journaled;          /* on_put was called for the batch's messages */
    int tries;               /* attempts made before this one */
    struct job *next;
} job_t;

enum {
    ST_MSG_INS,
    ST_DEDUP_INS,
    ST_DELIVERY_INS,
    ST_DELIVERY_UPD,
    ST_DEAD_INS,
    ST_MSG_GC,
    ST_DELIVERY_DEL,
    ST_RECEIPT_INS,
    ST_RECEIPT_DEL,
    ST_PARTICIPANT_INS,
    ST_PARTICIPANT_PRUNE,
    ST_DELIVERY_CLAIM,
    ST_DEDUP_PRUNE,
    ST_SESSION_PUT,
    ST_SESSION_DEL,
    ST_PROBE,
    ST_REPLAY_MSG,
    ST_REPLAY_DELIVERY,
    ST_REPLAY_DEAD_DEL,
    ST_DEAD_PURGE,
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_COUNT
};

/* A delivery row exists while the delivery is pending (stored, delivering or
 * redelivering): a final state deletes it. So no query filters on state. */
static const char *const statements[ST_COUNT] = {
    [ST_MSG_INS] = "INSERT INTO messages(seq, sender, message_id, accepted_at, expires_at, "
                   "envelope) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_DEDUP_INS] = "INSERT OR IGNORE INTO dedup(sender, message_id, seq, accepted_at) "
                     "VALUES (?1, ?2, ?3, ?4)",
    [ST_DELIVERY_INS] = "INSERT OR REPLACE INTO deliveries(seq, recipient, priority, state, "
                        "attempt, updated_at) VALUES (?1, ?2, ?6, ?3, ?4, ?5)",
    [ST_DELIVERY_UPD] = "UPDATE deliveries SET state = ?3, attempt = ?4, updated_at = ?5 "
                        "WHERE seq = ?1 AND recipient = ?2",
    [ST_DEAD_INS] = "INSERT OR REPLACE INTO dead_letters(seq, recipient, state, at, sender, "
                    "message_id, envelope) SELECT seq, ?2, ?3, ?4, sender, message_id, "
                    "envelope FROM messages WHERE seq = ?1",
    [ST_MSG_GC] = "DELETE FROM messages WHERE seq = ?1 AND NOT EXISTS (SELECT 1 FROM "
                  "deliveries WHERE seq = ?1)",
    [ST_DELIVERY_DEL] = "DELETE FROM deliveries WHERE seq = ?1 AND recipient = ?2",
    [ST_RECEIPT_INS] = "INSERT OR REPLACE INTO receipts(id, address, frame) VALUES (?1, ?2, ?3)",
    [ST_RECEIPT_DEL] = "DELETE FROM receipts WHERE id = ?1",
    [ST_DEDUP_PRUNE] = "DELETE FROM dedup WHERE accepted_at < ?1",
    [ST_PARTICIPANT_INS] = "INSERT OR IGNORE INTO participants(conversation, address, at) "
                           "VALUES (?1, ?2, ?3)",
    [ST_PARTICIPANT_PRUNE] = "DELETE FROM participants WHERE at < ?1",
    [ST_DELIVERY_CLAIM] = "UPDATE deliveries SET claimed_by = ?3 WHERE seq = ?1 AND recipient = ?2",
    [ST_SESSION_PUT] = "INSERT OR REPLACE INTO sessions(address, at) VALUES (?1, ?2)",
    [ST_SESSION_DEL] = "DELETE FROM sessions WHERE address = ?1",
    [ST_PROBE] = "SELECT seq FROM dedup WHERE sender = ?1 AND message_id = ?2",
    [ST_REPLAY_MSG] = "INSERT INTO messages(seq, sender, message_id, accepted_at, expires_at, "
                      "envelope) SELECT ?1, sender, message_id, ?2, ?3, ?4 FROM dead_letters "
                      "WHERE seq = ?5 AND recipient = ?6",
    [ST_REPLAY_DELIVERY] = "INSERT INTO deliveries(seq, recipient, priority, state, attempt, "
                           "updated_at) VALUES (?1, ?2, ?3, 0, 0, ?4)",
    [ST_REPLAY_DEAD_DEL] = "DELETE FROM dead_letters WHERE seq = ?1 AND recipient = ?2",
    [ST_DEAD_PURGE] = "DELETE FROM dead_letters WHERE at < ?1",
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
};

/* The reader's queries, run on the loop thread. */
enum {
    RD_PAGE,
    RD_EXPIRED,
    RD_COUNTS,
    RD_RECEIPTS,
    RD_MAX_SEQ,
    RD_MAX_RECEIPT,
    RD_PARTICIPANT,
    RD_CONVERSATION,
    RD_COUNT
};

static const char *const reads[RD_COUNT] = {
    [RD_PAGE] = "SELECT d.seq, d.recipient, d.state, d.attempt, d.priority, m.expires_at, "
                "m.envelope, d.claimed_by FROM deliveries d JOIN messages m ON m.seq = d.seq "
                "WHERE d.recipient = ?1 AND d.priority = ?2 "
                "AND d.seq > ?3 AND d.seq <= ?5 ORDER BY d.seq LIMIT ?4",
    [RD_EXPIRED] = "SELECT d.seq, d.recipient, d.state, d.attempt, d.priority, m.expires_at, "
                   "m.envelope, d.claimed_by FROM messages m JOIN deliveries d ON d.seq = m.seq "
                   "WHERE m.expires_at <= ?1 AND m.seq <= ?2 "
                   "ORDER BY m.expires_at, m.seq LIMIT ?3",
    [RD_COUNTS] = "SELECT recipient, priority, count(*) FROM deliveries "
                  "GROUP BY recipient, priority",
    [RD_RECEIPTS] = "SELECT id, address, frame FROM receipts ORDER BY id",
    [RD_MAX_SEQ] = "SELECT max(coalesce((SELECT max(seq) FROM messages), 0), "
                   "coalesce((SELECT max(seq) FROM dedup), 0), "
                   "coalesce((SELECT max(seq) FROM dead_letters), 0))",
    [RD_MAX_RECEIPT] = "SELECT coalesce(max(id), 0) FROM receipts",
    [RD_PARTICIPANT] = "SELECT 1 FROM participants WHERE conversation = ?1 AND address = ?2",
    [RD_CONVERSATION] = "SELECT count(*), coalesce(max(address = ?2 OR address = ?3), 0) "
                        "FROM participants WHERE conversation = ?1",
};

/* Schema migrations, applied in order from the database's user_version. Never edit a
 * published step: add the next one. */
static const char *const migrations[] = {
    /* 1: messages, their deliveries, receipts owed, deduplication keys, dead letters. */
    "CREATE TABLE messages(seq INTEGER PRIMARY KEY, sender TEXT NOT NULL,"
    "  message_id BLOB NOT NULL, accepted_at INTEGER NOT NULL, expires_at INTEGER NOT NULL,"
    "  envelope BLOB NOT NULL);"
    "CREATE INDEX messages_by_expiry ON messages(expires_at, seq);"
    "CREATE TABLE deliveries(seq INTEGER NOT NULL, recipient TEXT NOT NULL,"
    "  priority INTEGER NOT NULL, state INTEGER NOT NULL, attempt INTEGER NOT NULL,"
    "  updated_at INTEGER NOT NULL, PRIMARY KEY(seq, recipient)) WITHOUT ROWID;"
    "CREATE INDEX deliveries_queue ON deliveries(recipient, priority, seq);"
    "CREATE TABLE receipts(id INTEGER PRIMARY KEY, address TEXT NOT NULL, frame BLOB NOT NULL);"
    "CREATE TABLE dedup(sender TEXT NOT NULL, message_id BLOB NOT NULL, seq INTEGER NOT NULL,"
    "  accepted_at INTEGER NOT NULL, PRIMARY KEY(sender, message_id)) WITHOUT ROWID;"
    "CREATE INDEX dedup_by_time ON dedup(accepted_at);"
    "CREATE TABLE dead_letters(seq INTEGER NOT NULL, recipient TEXT NOT NULL,"
    "  state INTEGER NOT NULL, at INTEGER NOT NULL, sender TEXT NOT NULL,"
    "  message_id BLOB NOT NULL, envelope BLOB NOT NULL, PRIMARY KEY(seq, recipient))"
    "  WITHOUT ROWID;",
    /* 2: who takes part in which conversation, for the reply-only authorisation rules. */
    "CREATE TABLE participants(conversation BLOB NOT NULL, address TEXT NOT NULL,"
    "  at INTEGER NOT NULL, PRIMARY KEY(conversation, address)) WITHOUT ROWID;"
    "CREATE INDEX participants_by_time ON participants(at);",
    /* 3: the member who claimed an offered pool delivery (OFFER dispatch). */
    "ALTER TABLE deliveries ADD COLUMN claimed_by TEXT;",
    /* 4: addresses with a session, committed before anything is sent to them: after a crash
     * their pending deliveries may have left, and come back with a higher attempt. */
    "CREATE TABLE sessions(address TEXT PRIMARY KEY, at INTEGER NOT NULL) WITHOUT ROWID;",
};
#define SCHEMA_VERSION ((int)(sizeof(migrations) / sizeof(migrations[0])))

typedef struct sqlite_store {
    store_t base;
    sqlite3 *db; /* the writer: commit thread only */
    sqlite3_stmt *st[ST_COUNT];
    sqlite3 *rdb; /* the reader: loop thread only */
    sqlite3_stmt *rd[RD_COUNT];
    uv_loop_t *loop;
    uv_async_t async;
    bool async_open;
    uv_thread_t thread;
    bool thread_running;
    uv_mutex_t mu;
    uv_cond_t cv;
    job_t *todo, *todo_tail;
    job_t *done, *done_tail;
    bool quit;
    bool sync_init;
    sqlite3 *cdb;             /* the checkpointer's connection */
    uv_thread_t ckpt_thread;
    bool ckpt_running;
    uv_cond_t ckpt_cv;        /* signalled when the WAL has grown; shares mu */
    int wal_pages;            /* WAL size after the last commit */
    reserve_t *reserve;       /* spent when the disk fills (reserve.h) */
    int ckpt_wake_pages;      /* WAL size that wakes the checkpointer */
} sqlite_store_t;

/* WAL sizes (pages) at which the checkpointer is woken, and past which the commit thread
 * checkpoints itself. */
#define CKPT_WAKE_PAGES 1000
#define CKPT_FORCE_PAGES 100000

static int exec_step(sqlite_store_t *s, int which)
{
    sqlite3_stmt *st = s->st[which];
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

static int add_dup(job_t *j, uint64_t seq)
{
    if (j->ndups == j->dups_cap) {
        size_t ncap = j->dups_cap ? j->dups_cap * 2 : 16;
        uint64_t *n = realloc(j->dups, ncap * sizeof(*n));
        if (n == NULL) return SQLITE_NOMEM;
        j->dups = n;
        j->dups_cap = ncap;
    }
    j->dups[j->ndups++] = seq;
    return SQLITE_OK;
}

/* Tells the broker a message's outcome, before the COMMIT (store_put_fn). */
static void journal_put(sqlite_store_t *s, job_t *j, const store_op_t *op, bool duplicate)
{
    /* Once per batch: a retry (after a full disk) finds the same outcomes. */
    if (s->base.on_put == NULL || j->tries > 0) return;
    uint64_t t = s->base.on_put(s->base.on_put_ud, op, duplicate, true);
    if (t > j->journal_ticket) j->journal_ticket = t;
    j->journaled = true;
}

/* The batch did not commit after all: each message told to the broker is told again. */
static void journal_unput(sqlite_store_t *s, job_t *j)
{
    if (s->base.on_put == NULL || !j->journaled) return;
    for (size_t i = 0; i < j->batch.count; i++) {
        const store_op_t *op = &j->batch.ops[i];
        if (op->kind != STORE_MSG_PUT) continue;
        bool dup = false;
        for (size_t d = 0; d < j->ndups; d++) dup |= j->dups[d] == op->seq;
        if (!dup) s->base.on_put(s->base.on_put_ud, op, false, false);
    }
    j->journaled = false;
}

static int apply_op(sqlite_store_t *s, job_t *j, const store_op_t *op)
{
    sqlite3_stmt *st;
    int rc;
    switch (op->kind) {
    case STORE_MSG_PUT:
        /* The deduplication key decides: a second (sender, message_id) inserts nothing,
         * whether the first came in an earlier batch or earlier in this one. */
        st = s->st[ST_DEDUP_INS];
        sqlite3_bind_text(st, 1, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, op->message_id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, (sqlite3_int64)op->seq);
        sqlite3_bind_int64(st, 4, op->at_ms);
        if ((rc = exec_step(s, ST_DEDUP_INS)) != SQLITE_OK) return rc;
        if (sqlite3_changes(s->db) == 0) {
            j->skip_seq = op->seq;
            journal_put(s, j, op, true);
            return add_dup(j, op->seq);
        }
        journal_put(s, j, op, false);
        st = s->st[ST_MSG_INS];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
        sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, op->message_id, 16, SQLITE_STATIC);
        sqlite3_bind_int64(st, 4, op->at_ms);
        sqlite3_bind_int64(st, 5, op->expires_at_ms);
        sqlite3_bind_blob(st, 6, op->data, (int)op->data_len, SQLITE_STATIC);
        return exec_step(s, ST_MSG_INS);
    case STORE_DELIVERY_SET: {
        if (op->seq == j->skip_seq && op->state == DELIVERY_STORED) return SQLITE_OK;
        bool final = op->state == DELIVERY_ACKED || op->state == DELIVERY_EXPIRED ||
                     op->state == DELIVERY_REFUSED;
        if (op->state == DELIVERY_EXPIRED || op->state == DELIVERY_REFUSED) {
            st = s->st[ST_DEAD_INS];
            sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
            sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
            sqlite3_bind_int(st, 3, op->state);
            sqlite3_bind_int64(st, 4, op->at_ms);
            if ((rc = exec_step(s, ST_DEAD_INS)) != SQLITE_OK) return rc;
        }
        if (final) {
            /* A final delivery leaves the table (its dead letter, if any, is written);
             * the message goes with its last delivery. */
            st = s->st[ST_DELIVERY_DEL];
            sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
            sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
            if ((rc = exec_step(s, ST_DELIVERY_DEL)) != SQLITE_OK) return rc;
            sqlite3_bind_int64(s->st[ST_MSG_GC], 1, (sqlite3_int64)op->seq);
            return exec_step(s, ST_MSG_GC);
        }
        int which = op->state == DELIVERY_STORED ? ST_DELIVERY_INS : ST_DELIVERY_UPD;
        st = s->st[which];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
        sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, op->state);
        sqlite3_bind_int64(st, 4, op->attempt);
        sqlite3_bind_int64(st, 5, op->at_ms);
        if (which == ST_DELIVERY_INS) sqlite3_bind_int(st, 6, op->priority);
        return exec_step(s, which);
    }
    case STORE_RECEIPT_PUT:
        st = s->st[ST_RECEIPT_INS];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
        sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 3, op->data, (int)op->data_len, SQLITE_STATIC);
        return exec_step(s, ST_RECEIPT_INS);
    case STORE_RECEIPT_DEL:
        sqlite3_bind_int64(s->st[ST_RECEIPT_DEL], 1, (sqlite3_int64)op->seq);
        return exec_step(s, ST_RECEIPT_DEL);
    case STORE_PARTICIPANT_PUT:
        st = s->st[ST_PARTICIPANT_INS];
        sqlite3_bind_blob(st, 1, op->data, (int)op->data_len, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 3, op->at_ms);
        return exec_step(s, ST_PARTICIPANT_INS);
    case STORE_DELIVERY_CLAIM:
        st = s->st[ST_DELIVERY_CLAIM];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
        sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, (const char *)op->data, (int)op->data_len, SQLITE_STATIC);
        return exec_step(s, ST_DELIVERY_CLAIM);
    case STORE_SESSION_PUT:
        st = s->st[ST_SESSION_PUT];
        sqlite3_bind_text(st, 1, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, op->at_ms);
        return exec_step(s, ST_SESSION_PUT);
    case STORE_SESSION_DEL:
        sqlite3_bind_text(s->st[ST_SESSION_DEL], 1, op->address, -1, SQLITE_STATIC);
        return exec_step(s, ST_SESSION_DEL);
    case STORE_DEAD_REPLAY:
        st = s->st[ST_REPLAY_MSG];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
        sqlite3_bind_int64(st, 2, op->at_ms);
        sqlite3_bind_int64(st, 3, op->expires_at_ms);
        sqlite3_bind_blob(st, 4, op->data, (int)op->data_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 5, (sqlite3_int64)op->ref_seq);
        sqlite3_bind_text(st, 6, op->address, -1, SQLITE_STATIC);
        if ((rc = exec_step(s, ST_REPLAY_MSG)) != SQLITE_OK) return rc;
        if (sqlite3_changes(s->db) == 0) return SQLITE_OK; /* replayed already, or purged */
        st = s->st[ST_REPLAY_DELIVERY];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)op->seq);
        sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_int(st, 3, op->priority);
        sqlite3_bind_int64(st, 4, op->at_ms);
        if ((rc = exec_step(s, ST_REPLAY_DELIVERY)) != SQLITE_OK) return rc;
        st = s->st[ST_REPLAY_DEAD_DEL];
        sqlite3_bind_int64(st, 1, (sqlite3_int64)op->ref_seq);
        sqlite3_bind_text(st, 2, op->address, -1, SQLITE_STATIC);
        return exec_step(s, ST_REPLAY_DEAD_DEL);
    case STORE_DEAD_PURGE:
        sqlite3_bind_int64(s->st[ST_DEAD_PURGE], 1, op->at_ms);
        return exec_step(s, ST_DEAD_PURGE);
    case STORE_PARTICIPANT_PRUNE:
        sqlite3_bind_int64(s->st[ST_PARTICIPANT_PRUNE], 1, op->at_ms);
        return exec_step(s, ST_PARTICIPANT_PRUNE);
    case STORE_DEDUP_PRUNE:
        sqlite3_bind_int64(s->st[ST_DEDUP_PRUNE], 1, op->at_ms);
        return exec_step(s, ST_DEDUP_PRUNE);
    }
    return SQLITE_MISUSE;
}

/* Copies the WAL back into the database and truncates it to nothing: on a small volume the
 * WAL can hold most of the space (the database itself shrinks as messages are acknowledged,
 * the WAL only grows until a checkpoint). Runs on the commit thread, between transactions;
 * waits (busy_timeout) for the loop's short reads. 0 or an SQLite code. */
static int checkpoint_truncate(sqlite_store_t *s)
{
    int log = 0, done = 0;
    int rc = sqlite3_wal_checkpoint_v2(s->db, NULL, SQLITE_CHECKPOINT_TRUNCATE, &log, &done);
    RLOG(rc == SQLITE_OK ? RELAIS_LOG_INFO : RELAIS_LOG_WARN, "store",
         "disk full: checkpoint and truncate of the WAL %s (%d of %d pages copied)",
         rc == SQLITE_OK ? "done" : sqlite3_errstr(rc), done, log);
    return rc;
}

/* While the disk is full: the pages acknowledged messages left free inside the database go
 * back to the file system (auto_vacuum=INCREMENTAL, set when the database is created), and
 * and the WAL is truncated, so that the journal and the reserve find room again. */
static void give_back_space(sqlite_store_t *s)
{
    sqlite3_exec(s->db, "PRAGMA incremental_vacuum(4096)", NULL, NULL, NULL);
    checkpoint_truncate(s); /* the WAL may have grown while checkpoints could not finish */
}

/* After a failed COMMIT: did the transaction take effect after all? SQLite may report a
 * failure (SQLITE_FULL growing the WAL index, say) once the commit frame is in the WAL, and a
 * reader then sees the transaction. The first new message of the batch tells: its dedup row
 * holds its seq exactly when the batch committed. 1 committed, 0 not, -1 cannot tell. */
static int probe_committed(sqlite_store_t *s, job_t *j)
{
    size_t d = 0;
    for (size_t i = 0; i < j->batch.count; i++) {
        const store_op_t *op = &j->batch.ops[i];
        if (op->kind != STORE_MSG_PUT) continue;
        while (d < j->ndups && j->dups[d] < op->seq) d++;
        if (d < j->ndups && j->dups[d] == op->seq) continue; /* a duplicate proves nothing */
        sqlite3_stmt *st = s->st[ST_PROBE];
        sqlite3_bind_text(st, 1, op->address, -1, SQLITE_STATIC);
        sqlite3_bind_blob(st, 2, op->message_id, 16, SQLITE_STATIC);
        int step = sqlite3_step(st);
        int found = step == SQLITE_ROW && (uint64_t)sqlite3_column_int64(st, 0) == op->seq;
        sqlite3_reset(st);
        sqlite3_clear_bindings(st);
        if (step != SQLITE_ROW && step != SQLITE_DONE) return -1;
        return found;
    }
    return 0; /* no new message: nothing was promised, and nothing else needs the answer */
}

static void run_job(sqlite_store_t *s, job_t *j)
{
    for (int tries = 0;; tries++) {
        j->tries = tries;
        int rc = exec_step(s, ST_BEGIN);
        j->skip_seq = 0;
        j->ndups = 0;
        for (size_t i = 0; rc == SQLITE_OK && i < j->batch.count; i++)
            rc = apply_op(s, j, &j->batch.ops[i]);
        if (rc == SQLITE_OK) rc = exec_step(s, ST_COMMIT);
        if (rc == SQLITE_OK) {
            j->status = 0;
            j->reason[0] = 0;
            if (!reserve_ok(s->reserve)) give_back_space(s);
            return;
        }
        int full = rc == SQLITE_FULL;
        snprintf(j->reason, sizeof(j->reason), "store unavailable: %s (%s)",
                 full ? "disk full" : "write failed", sqlite3_errmsg(s->db));
        if (!sqlite3_get_autocommit(s->db)) exec_step(s, ST_ROLLBACK);
        int committed = probe_committed(s, j);
        if (committed == 1) {
            RLOG(RELAIS_LOG_WARN, "store", "a commit reported %s yet took effect: kept",
                 j->reason);
            j->status = 0;
            j->reason[0] = 0;
            return;
        }
        /* On a full disk: spend the reserve (once), copy the WAL back into the database and
         * truncate it, then try once more. */
        if (full && tries == 0 && committed == 0) {
            /* The first time, the reserve's room lets the checkpoint copy the whole WAL into
             * the database; later, truncating the WAL would only make the next commit grow
             * it again. */
            if (reserve_ok(s->reserve)) {
                reserve_spend(s->reserve, "store");
                checkpoint_truncate(s);
            }
            continue;
        }
        j->status = committed < 0 ? RELAIS_EUNKNOWN : RELAIS_ESTORE;
        /* Not stored: the journal says so after what it said before the COMMIT. (When the
         * outcome is unknown it stays as said: the sender's resubmission will tell.) */
        if (committed == 0) journal_unput(s, j);
        j->ndups = 0;
        return;
    }
}

static int on_wal(void *ud, sqlite3 *db, const char *name, int pages)
{
    sqlite_store_t *s = ud;
    if (pages >= CKPT_FORCE_PAGES) {
        sqlite3_wal_checkpoint_v2(db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        return SQLITE_OK;
    }
    if (pages >= s->ckpt_wake_pages) {
        uv_mutex_lock(&s->mu);
        s->wal_pages = pages;
        uv_cond_signal(&s->ckpt_cv);
        uv_mutex_unlock(&s->mu);
    }
    return SQLITE_OK;
}

static void checkpoint_thread(void *arg)
{
    sqlite_store_t *s = arg;
    uv_mutex_lock(&s->mu);
    while (!s->quit) {
        if (s->wal_pages < s->ckpt_wake_pages) {
            uv_cond_timedwait(&s->ckpt_cv, &s->mu, 1000 * 1000 * 1000ULL);
            continue;
        }
        s->wal_pages = 0;
        uv_mutex_unlock(&s->mu);
        /* PASSIVE: copies what no reader needs, never blocks the writer or the reader. */
        int rc = sqlite3_wal_checkpoint_v2(s->cdb, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        if (rc != SQLITE_OK && rc != SQLITE_BUSY)
            RLOG(RELAIS_LOG_WARN, "store", "checkpoint failed: %s", sqlite3_errmsg(s->cdb));
        uv_mutex_lock(&s->mu);
    }
    uv_mutex_unlock(&s->mu);
}

static void commit_thread(void *arg)
{
    sqlite_store_t *s = arg;
    for (;;) {
        uv_mutex_lock(&s->mu);
        while (s->todo == NULL && !s->quit) uv_cond_wait(&s->cv, &s->mu);
        job_t *j = s->todo;
        if (j == NULL) {
            uv_mutex_unlock(&s->mu);
            return;
        }
        s->todo = j->next;
        if (s->todo == NULL) s->todo_tail = NULL;
        uv_mutex_unlock(&s->mu);

        run_job(s, j);
        store_batch_free(&j->batch);

        uv_mutex_lock(&s->mu);
        j->next = NULL;
        if (s->done_tail)
            s->done_tail->next = j;
        else
            s->done = j;
        s->done_tail = j;
        uv_mutex_unlock(&s->mu);
        uv_async_send(&s->async);
    }
}

static void on_done(uv_async_t *h)
{
    sqlite_store_t *s = h->data;
    uv_mutex_lock(&s->mu);
    job_t *j = s->done;
    s->done = s->done_tail = NULL;
    uv_mutex_unlock(&s->mu);
    while (j != NULL) {
        job_t *next = j->next;
        if (j->status < 0) RLOG(RELAIS_LOG_ERROR, "store", "commit failed: %s", j->reason);
        store_result_t r = {.status = j->status, .reason = j->reason, .dup_seqs = j->dups,
                            .ndups = j->ndups, .journal_ticket = j->journal_ticket};
        j->done(&r, j->ud);
        free(j->dups);
        free(j);
        j = next;
    }
}

static int sq_commit(store_t *base, store_batch_t *batch, store_done_fn done, void *ud)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    job_t *j = calloc(1, sizeof(*j));
    if (j == NULL) {
        store_batch_free(batch);
        return -ENOMEM;
    }
    j->batch = *batch;
    memset(batch, 0, sizeof(*batch));
    j->done = done;
    j->ud = ud;
    uv_mutex_lock(&s->mu);
    if (s->todo_tail)
        s->todo_tail->next = j;
    else
        s->todo = j;
    s->todo_tail = j;
    uv_cond_signal(&s->cv);
    uv_mutex_unlock(&s->mu);
    return 0;
}

/* Runs a prepared read; fn sees each row. The statement is reset whatever happens. */
static int read_rows(sqlite_store_t *s, sqlite3_stmt *st, store_row_fn fn, void *ud)
{
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW) {
        store_row_t row = {
            .seq = (uint64_t)sqlite3_column_int64(st, 0),
            .recipient = (const char *)sqlite3_column_text(st, 1),
            .state = sqlite3_column_int(st, 2),
            .attempt = (uint32_t)sqlite3_column_int64(st, 3),
            .priority = sqlite3_column_int(st, 4),
            .expires_at_ms = sqlite3_column_int64(st, 5),
            .envelope = sqlite3_column_blob(st, 6),
            .envelope_len = (size_t)sqlite3_column_bytes(st, 6),
            .claimed_by = (const char *)sqlite3_column_text(st, 7),
        };
        rc = fn(ud, &row);
    }
    if (rc == 0 && step != SQLITE_DONE) {
        RLOG(RELAIS_LOG_ERROR, "store", "read failed: %s", sqlite3_errmsg(s->rdb));
        rc = RELAIS_ESTORE;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return rc;
}

static int sq_page(store_t *base, const char *recipient, int priority, uint64_t after_seq,
                   uint64_t max_seq, unsigned limit, store_row_fn fn, void *ud)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = s->rd[RD_PAGE];
    sqlite3_bind_text(st, 1, recipient, -1, SQLITE_STATIC);
    sqlite3_bind_int(st, 2, priority);
    sqlite3_bind_int64(st, 3, (sqlite3_int64)after_seq);
    sqlite3_bind_int(st, 4, (int)limit);
    sqlite3_bind_int64(st, 5, (sqlite3_int64)max_seq);
    return read_rows(s, st, fn, ud);
}

static int sq_expired(store_t *base, int64_t now, uint64_t max_seq, unsigned limit, store_row_fn fn,
                      void *ud)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = s->rd[RD_EXPIRED];
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_int64(st, 2, (sqlite3_int64)max_seq);
    sqlite3_bind_int(st, 3, (int)limit);
    return read_rows(s, st, fn, ud);
}

static int sq_participant(store_t *base, const uint8_t *conversation, size_t len,
                          const char *address, bool *found)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = s->rd[RD_PARTICIPANT];
    sqlite3_bind_blob(st, 1, conversation, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, address, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    *found = step == SQLITE_ROW;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_ROW || step == SQLITE_DONE ? 0 : RELAIS_ESTORE;
}

static int sq_conversation(store_t *base, const uint8_t *conversation, size_t len,
                           const char *address, const char *alt, bool *known, bool *member)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = s->rd[RD_CONVERSATION];
    sqlite3_bind_blob(st, 1, conversation, (int)len, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, address, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, alt ? alt : address, -1, SQLITE_STATIC);
    int step = sqlite3_step(st);
    *known = step == SQLITE_ROW && sqlite3_column_int64(st, 0) > 0;
    *member = step == SQLITE_ROW && sqlite3_column_int(st, 1) != 0;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return step == SQLITE_ROW ? 0 : RELAIS_ESTORE;
}

static int sq_counts(store_t *base, store_count_fn fn, void *ud)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = s->rd[RD_COUNTS];
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(ud, (const char *)sqlite3_column_text(st, 0), sqlite3_column_int(st, 1),
                (uint64_t)sqlite3_column_int64(st, 2));
    sqlite3_reset(st);
    return rc;
}

static int sq_receipts(store_t *base, store_receipt_fn fn, void *ud)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    sqlite3_stmt *st = s->rd[RD_RECEIPTS];
    int rc = 0, step;
    while (rc == 0 && (step = sqlite3_step(st)) == SQLITE_ROW)
        rc = fn(ud, (uint64_t)sqlite3_column_int64(st, 0), (const char *)sqlite3_column_text(st, 1),
                sqlite3_column_blob(st, 2), (size_t)sqlite3_column_bytes(st, 2));
    sqlite3_reset(st);
    return rc;
}

static int sq_max_ids(store_t *base, uint64_t *seq, uint64_t *receipt_id)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    uint64_t *out[2] = {seq, receipt_id};
    int which[2] = {RD_MAX_SEQ, RD_MAX_RECEIPT};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st = s->rd[which[i]];
        if (sqlite3_step(st) != SQLITE_ROW) {
            sqlite3_reset(st);
            return RELAIS_ESTORE;
        }
        *out[i] = (uint64_t)sqlite3_column_int64(st, 0);
        sqlite3_reset(st);
    }
    return 0;
}

static int sq_free_bytes(store_t *base, uint64_t *bytes)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    int64_t v[2] = {0, 4096};
    const char *q[2] = {"PRAGMA freelist_count", "PRAGMA page_size"};
    for (int i = 0; i < 2; i++) {
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(s->rdb, q[i], -1, &st, NULL) != SQLITE_OK) return RELAIS_ESTORE;
        if (sqlite3_step(st) == SQLITE_ROW) v[i] = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    *bytes = (uint64_t)(v[0] * v[1]);
    return 0;
}

static int sq_recover_attempts(store_t *base, uint64_t *bumped)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    /* At start-up, before the commit thread has work: the writer connection is free. */
    char *err = NULL;
    int rc = sqlite3_exec(s->db,
                          "BEGIN IMMEDIATE;"
                          "UPDATE deliveries SET attempt = attempt + 1 WHERE recipient IN "
                          "(SELECT address FROM sessions) OR (recipient LIKE 'service:%' "
                          "AND EXISTS (SELECT 1 FROM sessions));",
                          NULL, NULL, &err);
    *bumped = rc == SQLITE_OK ? (uint64_t)sqlite3_changes(s->db) : 0;
    if (rc == SQLITE_OK) rc = sqlite3_exec(s->db, "DELETE FROM sessions; COMMIT;", NULL, NULL, &err);
    if (rc != SQLITE_OK) {
        RLOG(RELAIS_LOG_ERROR, "store", "cannot mark deliveries that may have been sent: %s",
             err ? err : sqlite3_errmsg(s->db));
        sqlite3_free(err);
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
        return RELAIS_ESTORE;
    }
    return 0;
}

static void on_async_closed(uv_handle_t *h)
{
    (void)h;
}

static void sq_detach(store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    if (s->async_open) uv_close((uv_handle_t *)&s->async, on_async_closed);
    s->async_open = false;
}

static void sq_close(store_t *base)
{
    sqlite_store_t *s = (sqlite_store_t *)base;
    if (s->thread_running || s->ckpt_running) {
        uv_mutex_lock(&s->mu);
        s->quit = true;
        uv_cond_signal(&s->cv);
        uv_cond_signal(&s->ckpt_cv);
        uv_mutex_unlock(&s->mu);
        if (s->thread_running) uv_thread_join(&s->thread);
        if (s->ckpt_running) uv_thread_join(&s->ckpt_thread);
    }
    /* Completions never called back are dropped: their replies were never sent, and the
     * data they carried is either committed (a resend gets duplicate) or not accepted. */
    for (job_t *j = s->done; j != NULL;) {
        job_t *next = j->next;
        free(j->dups);
        free(j);
        j = next;
    }
    for (int i = 0; i < ST_COUNT; i++) sqlite3_finalize(s->st[i]);
    for (int i = 0; i < RD_COUNT; i++) sqlite3_finalize(s->rd[i]);
    if (s->rdb) sqlite3_close(s->rdb);
    if (s->cdb) sqlite3_close(s->cdb);
    if (s->db) sqlite3_close(s->db);
    if (s->sync_init) {
        uv_mutex_destroy(&s->mu);
        uv_cond_destroy(&s->cv);
        uv_cond_destroy(&s->ckpt_cv);
    }
    free(s);
}

static const store_vtable_t sqlite_vtable = {
    .name = "sqlite",
    .commit = sq_commit,
    .recover_attempts = sq_recover_attempts,
    .free_bytes = sq_free_bytes,
    .max_ids = sq_max_ids,
    .receipts = sq_receipts,
    .counts = sq_counts,
    .page = sq_page,
    .expired = sq_expired,
    .participant = sq_participant,
    .conversation = sq_conversation,
    .detach = sq_detach,
    .close = sq_close,
};

static int migrate(sqlite3 *db, char *reason, size_t reason_len)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > SCHEMA_VERSION) {
        snprintf(reason, reason_len,
                 "database schema version %d is newer than this relaisd "
                 "(%d): refusing to touch it",
                 version, SCHEMA_VERSION);
        return -1;
    }
    for (int v = version; v < SCHEMA_VERSION; v++) {
        char sql[64];
        char *err = NULL;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d; COMMIT;", v + 1);
        if (sqlite3_exec(db, "BEGIN", NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(db, migrations[v], NULL, NULL, &err) != SQLITE_OK ||
            sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK) {
            snprintf(reason, reason_len, "schema migration to version %d failed: %s", v + 1,
                     err ? err : sqlite3_errmsg(db));
            sqlite3_free(err);
            sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
            return -1;
        }
        RLOG(RELAIS_LOG_INFO, "store", "schema migrated to version=%d", v + 1);
    }
    return 0;
}

int store_sqlite_open(store_t **out, const char *path, store_durability_t durability,
                      reserve_t *reserve, uv_loop_t *loop, char *reason, size_t reason_len)
{
    sqlite_store_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return -ENOMEM;
    s->base.vt = &sqlite_vtable;
    s->loop = loop;
    s->reserve = reserve;
    /* The WAL is kept below half the disk reserve: when the disk fills, spending the reserve
     * leaves room for the checkpoint to copy the whole WAL into the database, after which
     * it is truncated (reserve.h). */
    s->ckpt_wake_pages = CKPT_WAKE_PAGES;
    if (reserve_bytes(reserve) > 0 && reserve_bytes(reserve) / 2 / 4096 < CKPT_WAKE_PAGES)
        s->ckpt_wake_pages = (int)(reserve_bytes(reserve) / 2 / 4096);
    if (s->ckpt_wake_pages < 16) s->ckpt_wake_pages = 16;
    char pragmas[256];
    snprintf(pragmas, sizeof(pragmas),
             "PRAGMA auto_vacuum=INCREMENTAL; PRAGMA journal_mode=WAL; PRAGMA synchronous=%s; "
             "PRAGMA foreign_keys=OFF;"
             "PRAGMA busy_timeout=5000; PRAGMA cache_size=-16000;"
             "PRAGMA wal_autocheckpoint=0; PRAGMA journal_size_limit=67108864;",
             durability == STORE_DURABLE_FULL ? "FULL" : "NORMAL");
    char *err = NULL;
    /* auto_vacuum (first, before WAL mode and any table): only a new, empty database takes
     * it; free pages can then go back to the file system when the disk is full
     * (give_back_space). An older database keeps its pages.
     * The file holds clinical content: create it private (SQLite gives its -wal and -shm
     * files the same mode). An existing file keeps the mode its owner chose. */
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0) close(fd);
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK ||
        sqlite3_exec(s->db, pragmas, NULL, NULL, &err) != SQLITE_OK) {
        snprintf(reason, reason_len, "cannot open %s: %s", path,
                 err ? err : (s->db ? sqlite3_errmsg(s->db) : "out of memory"));
        sqlite3_free(err);
        goto err;
    }
    if (migrate(s->db, reason, reason_len) < 0) goto err;
    for (int i = 0; i < ST_COUNT; i++) {
        if (sqlite3_prepare_v3(s->db, statements[i], -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            snprintf(reason, reason_len, "cannot prepare statement: %s", sqlite3_errmsg(s->db));
            goto err;
        }
    }
    if (sqlite3_open_v2(path, &s->rdb, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(s->rdb, "PRAGMA busy_timeout=5000; PRAGMA cache_size=-16000;", NULL, NULL,
                     NULL) != SQLITE_OK) {
        snprintf(reason, reason_len, "cannot open a reader on %s: %s", path,
                 s->rdb ? sqlite3_errmsg(s->rdb) : "out of memory");
        goto err;
    }
    for (int i = 0; i < RD_COUNT; i++) {
        if (sqlite3_prepare_v3(s->rdb, reads[i], -1, SQLITE_PREPARE_PERSISTENT, &s->rd[i], NULL) !=
            SQLITE_OK) {
            snprintf(reason, reason_len, "cannot prepare query: %s", sqlite3_errmsg(s->rdb));
            goto err;
        }
    }
    char sync_pragma[64];
    snprintf(sync_pragma, sizeof(sync_pragma), "PRAGMA synchronous=%s; PRAGMA busy_timeout=5000;",
             durability == STORE_DURABLE_FULL ? "FULL" : "NORMAL");
    if (sqlite3_open_v2(path, &s->cdb, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) !=
            SQLITE_OK ||
        sqlite3_exec(s->cdb, sync_pragma, NULL, NULL, NULL) != SQLITE_OK) {
        snprintf(reason, reason_len, "cannot open the checkpointer on %s: %s", path,
                 s->cdb ? sqlite3_errmsg(s->cdb) : "out of memory");
        goto err;
    }
    uv_mutex_init(&s->mu);
    uv_cond_init(&s->cv);
    uv_cond_init(&s->ckpt_cv);
    s->sync_init = true;
    sqlite3_wal_hook(s->db, on_wal, s);
    uv_async_init(loop, &s->async, on_done);
    s->async.data = s;
    s->async_open = true;
    if (uv_thread_create(&s->thread, commit_thread, s) != 0) {
        snprintf(reason, reason_len, "cannot start the store thread");
        goto err;
    }
    s->thread_running = true;

    if (uv_thread_create(&s->ckpt_thread, checkpoint_thread, s) != 0) {
        snprintf(reason, reason_len, "cannot start the checkpoint thread");
        goto err;
    }
    s->ckpt_running = true;
    *out = &s->base;
    return 0;
err:
    sq_detach(&s->base);
    /* The async handle, if opened, is closed; the loop must run once for its close
     * callback before the memory goes, which the caller's loop teardown does. */
    if (s->async.loop != NULL) {
        uv_run(loop, UV_RUN_NOWAIT);
    }
    sq_close(&s->base);
    return RELAIS_ESTORE;
}

sqlite3 *store_sqlite__reader(store_t *st)
{
    if (st == NULL || st->vt != &sqlite_vtable) return NULL;
    return ((sqlite_store_t *)st)->rdb;
}
