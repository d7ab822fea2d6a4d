/*
 * The acknowledgement store (see store.h) on SQLite in WAL mode. synchronous=NORMAL: a
 * commit survives the gateway's crash (kill -9), which is what the store protects against;
 * after a power loss the last rows may be missing, and then a resent message is processed
 * again with the same message ids, which the broker answers as duplicates: nothing is
 * delivered twice either way.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "relais/errors.h"
#include "relais/log.h"
#include "store.h"

struct hl7_store {
    sqlite3 *db;
    sqlite3_stmt *get, *put, *done;
    sqlite3_stmt *prod_put, *prod_get, *out_put, *out_next, *out_done;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=NORMAL;"
    "CREATE TABLE IF NOT EXISTS acks ("
    " channel TEXT NOT NULL, application TEXT NOT NULL, facility TEXT NOT NULL,"
    " control_id TEXT NOT NULL, content_hash BLOB NOT NULL, ack BLOB,"
    " created_ms INTEGER NOT NULL DEFAULT (CAST((julianday('now') - 2440587.5) * 86400000 AS "
    "INTEGER)),"
    " PRIMARY KEY (channel, application, facility, control_id));"
    "CREATE TABLE IF NOT EXISTS produced ("
    " message_id BLOB PRIMARY KEY, channel TEXT NOT NULL, control_id TEXT NOT NULL,"
    " encounter_id TEXT NOT NULL, local_id TEXT NOT NULL, kind TEXT NOT NULL);"
    "CREATE TABLE IF NOT EXISTS outbound ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT, channel TEXT NOT NULL, message BLOB NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX IF NOT EXISTS outbound_pending ON outbound(channel, state, seq);";

static int fail(hl7_store_t *s, const char *what)
{
    RLOG(RELAIS_LOG_ERROR, "hl7", "ack store: %s: %s", what, sqlite3_errmsg(s->db));
    return RELAIS_ESTORE;
}

int hl7_store_open(const char *path, hl7_store_t **out)
{
    *out = NULL;
    hl7_store_t *s = calloc(1, sizeof *s);
    if (s == NULL) return -ENOMEM;
    if (sqlite3_open(path, &s->db) != SQLITE_OK) goto err;
    sqlite3_busy_timeout(s->db, 5000);
    if (sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) goto err;
    if (sqlite3_prepare_v2(s->db,
                           "SELECT content_hash, ack FROM acks WHERE channel=?1 AND "
                           "application=?2 AND facility=?3 AND control_id=?4",
                           -1, &s->get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "INSERT INTO acks(channel, application, facility, control_id, "
                           "content_hash) VALUES (?1, ?2, ?3, ?4, ?5)",
                           -1, &s->put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "UPDATE acks SET ack=?5 WHERE channel=?1 AND application=?2 AND "
                           "facility=?3 AND control_id=?4",
                           -1, &s->done, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT OR IGNORE INTO produced VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                           -1, &s->prod_put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "SELECT channel, control_id, encounter_id, local_id, kind FROM "
                           "produced WHERE message_id=?1",
                           -1, &s->prod_get, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "INSERT INTO outbound(channel, message) VALUES (?1, ?2)", -1,
                           &s->out_put, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db,
                           "SELECT seq, message FROM outbound WHERE channel=?1 AND state=0 "
                           "ORDER BY seq LIMIT 1",
                           -1, &s->out_next, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(s->db, "UPDATE outbound SET state=?2 WHERE seq=?1", -1, &s->out_done,
                           NULL) != SQLITE_OK)
        goto err;
    *out = s;
    return 0;
err:
    RLOG(RELAIS_LOG_ERROR, "hl7", "ack store %s: %s", path,
         s->db != NULL ? sqlite3_errmsg(s->db) : "cannot open");
    hl7_store_close(&s);
    return RELAIS_ESTORE;
}

void hl7_store_close(hl7_store_t **sp)
{
    if (sp == NULL || *sp == NULL) return;
    hl7_store_t *s = *sp;
    sqlite3_finalize(s->get);
    sqlite3_finalize(s->put);
    sqlite3_finalize(s->done);
    sqlite3_finalize(s->prod_put);
    sqlite3_finalize(s->prod_get);
    sqlite3_finalize(s->out_put);
    sqlite3_finalize(s->out_next);
    sqlite3_finalize(s->out_done);
    sqlite3_close(s->db);
    free(s);
    *sp = NULL;
}

static void bind_key(sqlite3_stmt *st, const hl7_key_t *k)
{
    sqlite3_bind_text(st, 1, k->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, k->application, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, k->facility, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, k->control_id, -1, SQLITE_STATIC);
}

int hl7_store_begin(hl7_store_t *s, const hl7_key_t *key, const uint8_t hash[32], char **ack,
                    size_t *ack_len)
{
    *ack = NULL;
    *ack_len = 0;
    sqlite3_reset(s->get);
    bind_key(s->get, key);
    int rc = sqlite3_step(s->get);
    if (rc == SQLITE_ROW) {
        const void *h = sqlite3_column_blob(s->get, 0);
        int hl = sqlite3_column_bytes(s->get, 0);
        int state;
        if (hl != 32 || memcmp(h, hash, 32) != 0) {
            state = HL7_STORE_CONFLICT;
        } else if (sqlite3_column_type(s->get, 1) == SQLITE_NULL) {
            state = HL7_STORE_PENDING;
        } else {
            int n = sqlite3_column_bytes(s->get, 1);
            *ack = malloc((size_t)n + 1);
            if (*ack == NULL) abort();
            memcpy(*ack, sqlite3_column_blob(s->get, 1), (size_t)n);
            (*ack)[n] = '\0';
            *ack_len = (size_t)n;
            state = HL7_STORE_DONE;
        }
        sqlite3_reset(s->get);
        return state;
    }
    sqlite3_reset(s->get);
    if (rc != SQLITE_DONE) return fail(s, "lookup");
    sqlite3_reset(s->put);
    bind_key(s->put, key);
    sqlite3_bind_blob(s->put, 5, hash, 32, SQLITE_STATIC);
    rc = sqlite3_step(s->put);
    sqlite3_reset(s->put);
    if (rc != SQLITE_DONE) return fail(s, "insert");
    return HL7_STORE_NEW;
}

int hl7_store_finish(hl7_store_t *s, const hl7_key_t *key, const char *ack, size_t ack_len)
{
    sqlite3_reset(s->done);
    bind_key(s->done, key);
    sqlite3_bind_blob(s->done, 5, ack, (int)ack_len, SQLITE_STATIC);
    int rc = sqlite3_step(s->done);
    sqlite3_reset(s->done);
    return rc == SQLITE_DONE ? 0 : fail(s, "update");
}

int hl7_store_produced(hl7_store_t *s, const uint8_t *message_id, const hl7_produced_t *p)
{
    sqlite3_stmt *st = s->prod_put;
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, message_id, 16, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, p->channel, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, p->control_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, p->encounter_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, p->local_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, p->kind, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, "produced");
}

static void col(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", t != NULL ? (const char *)t : "");
}

int hl7_store_find_produced(hl7_store_t *s, const uint8_t *message_id, size_t len,
                            hl7_produced_t *out)
{
    sqlite3_stmt *st = s->prod_get;
    sqlite3_reset(st);
    sqlite3_bind_blob(st, 1, message_id, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        col(st, 0, out->channel, sizeof out->channel);
        col(st, 1, out->control_id, sizeof out->control_id);
        col(st, 2, out->encounter_id, sizeof out->encounter_id);
        col(st, 3, out->local_id, sizeof out->local_id);
        col(st, 4, out->kind, sizeof out->kind);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : fail(s, "find produced");
}

int hl7_store_enqueue(hl7_store_t *s, const char *channel, const char *msg, size_t len)
{
    sqlite3_stmt *st = s->out_put;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_blob(st, 2, msg, (int)len, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, "enqueue");
}

int hl7_store_next_out(hl7_store_t *s, const char *channel, int64_t *seq, char **msg, size_t *len)
{
    sqlite3_stmt *st = s->out_next;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        int n = sqlite3_column_bytes(st, 1);
        *msg = malloc((size_t)n + 1);
        if (*msg == NULL) abort();
        memcpy(*msg, sqlite3_column_blob(st, 1), (size_t)n);
        (*msg)[n] = '\0';
        *len = (size_t)n;
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW) return 1;
    return rc == SQLITE_DONE ? 0 : fail(s, "next outbound");
}

int hl7_store_out_done(hl7_store_t *s, int64_t seq, int state)
{
    sqlite3_stmt *st = s->out_done;
    sqlite3_reset(st);
    sqlite3_bind_int64(st, 1, seq);
    sqlite3_bind_int(st, 2, state);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? 0 : fail(s, "outbound done");
}
