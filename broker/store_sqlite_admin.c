/*
 * The SQLite store's read queries for the admin surface (store.h, "Read queries for the
 * admin surface"): the oldest pending delivery of a mailbox, dead letters, one message by id,
 * deliveries at risk. Apart from store_sqlite.c, whose commit path they never touch: they run
 * on the loop thread, on the store's reader connection.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "broker.h"
#include "relais/errors.h"
#include "relais/log.h"
#include "store.h"

/* ---- Read queries for the admin surface (store.h) ---------------------------------------
 * Prepared per call on the reader: an administrator's request, not the hot path, so a few
 * microseconds of preparation beside each indexed look-up cost nothing worth caching. */

static sqlite3_stmt *admin_prepare(store_t *st, const char *sql)
{
    sqlite3 *rdb = store_sqlite__reader(st);
    if (rdb == NULL) return NULL;
    sqlite3_stmt *q = NULL;
    if (sqlite3_prepare_v2(rdb, sql, -1, &q, NULL) != SQLITE_OK) {
        RLOG(RELAIS_LOG_ERROR, "store", "admin query failed: %s", sqlite3_errmsg(rdb));
        return NULL;
    }
    return q;
}

static int admin_finish(sqlite3_stmt *q, int step_rc, int cb_rc)
{
    sqlite3_finalize(q);
    if (cb_rc != 0) return cb_rc;
    return step_rc == SQLITE_DONE ? 0 : RELAIS_ESTORE;
}

int store_sqlite_oldest_pending(store_t *st, const char *recipient, int64_t *at_ms)
{
    sqlite3_stmt *q = admin_prepare(
        st, "SELECT min(accepted_at) FROM messages WHERE seq IN ("
            "SELECT min(seq) FROM deliveries WHERE recipient = ?1 AND priority = 0 UNION ALL "
            "SELECT min(seq) FROM deliveries WHERE recipient = ?1 AND priority = 1)");
    if (q == NULL) return RELAIS_ESTORE;
    sqlite3_bind_text(q, 1, recipient, -1, SQLITE_STATIC);
    int rc = sqlite3_step(q);
    *at_ms = rc == SQLITE_ROW ? sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? 0 : RELAIS_ESTORE;
}

int store_sqlite_dead_letters(store_t *st, uint64_t before_seq, unsigned limit,
                              int (*fn)(void *ud, const store_dead_letter_t *row), void *ud)
{
    sqlite3_stmt *q = admin_prepare(
        st, "SELECT seq, recipient, state, at, sender, message_id, envelope FROM dead_letters "
            "WHERE ?1 = 0 OR seq < ?1 ORDER BY seq DESC, recipient LIMIT ?2");
    if (q == NULL) return RELAIS_ESTORE;
    sqlite3_bind_int64(q, 1, (sqlite3_int64)before_seq);
    sqlite3_bind_int64(q, 2, limit);
    int rc, cb = 0;
    while (cb == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_dead_letter_t row = {
            .seq = (uint64_t)sqlite3_column_int64(q, 0),
            .recipient = (const char *)sqlite3_column_text(q, 1),
            .state = sqlite3_column_int(q, 2),
            .at_ms = sqlite3_column_int64(q, 3),
            .sender = (const char *)sqlite3_column_text(q, 4),
            .message_id = sqlite3_column_blob(q, 5),
            .message_id_len = (size_t)sqlite3_column_bytes(q, 5),
            .envelope = sqlite3_column_blob(q, 6),
            .envelope_len = (size_t)sqlite3_column_bytes(q, 6),
        };
        cb = fn(ud, &row);
    }
    return admin_finish(q, cb ? SQLITE_DONE : rc, cb);
}

int store_sqlite_dead_letter_count(store_t *st, uint64_t *count)
{
    sqlite3_stmt *q = admin_prepare(st, "SELECT count(*) FROM dead_letters");
    if (q == NULL) return RELAIS_ESTORE;
    int rc = sqlite3_step(q);
    *count = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? 0 : RELAIS_ESTORE;
}

int store_sqlite_dead_letter_count_before(store_t *st, int64_t before_ms, uint64_t *count)
{
    sqlite3_stmt *q = admin_prepare(st, "SELECT count(*) FROM dead_letters WHERE at < ?1");
    if (q == NULL) return RELAIS_ESTORE;
    sqlite3_bind_int64(q, 1, before_ms);
    int rc = sqlite3_step(q);
    *count = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(q, 0) : 0;
    sqlite3_finalize(q);
    return rc == SQLITE_ROW ? 0 : RELAIS_ESTORE;
}

int store_sqlite_message(store_t *st, const uint8_t *message_id, size_t len,
                         int (*fn)(void *ud, const store_message_row_t *row), void *ud)
{
    sqlite3_stmt *q = admin_prepare(
        st, "SELECT 'p', m.seq, m.sender, m.accepted_at, m.expires_at, m.envelope, d.recipient, "
            "d.state, d.attempt, d.updated_at FROM messages m JOIN deliveries d ON d.seq = m.seq "
            "WHERE m.message_id = ?1 "
            "UNION ALL SELECT 'd', seq, sender, 0, 0, envelope, recipient, state, 0, at "
            "FROM dead_letters WHERE message_id = ?1 "
            "UNION ALL SELECT 'k', seq, sender, accepted_at, 0, NULL, NULL, 0, 0, 0 "
            "FROM dedup WHERE message_id = ?1");
    if (q == NULL) return RELAIS_ESTORE;
    sqlite3_bind_blob(q, 1, message_id, (int)len, SQLITE_STATIC);
    int rc, cb = 0;
    while (cb == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_message_row_t row = {
            .kind = ((const char *)sqlite3_column_text(q, 0))[0],
            .seq = (uint64_t)sqlite3_column_int64(q, 1),
            .sender = (const char *)sqlite3_column_text(q, 2),
            .accepted_at_ms = sqlite3_column_int64(q, 3),
            .expires_at_ms = sqlite3_column_int64(q, 4),
            .envelope = sqlite3_column_blob(q, 5),
            .envelope_len = (size_t)sqlite3_column_bytes(q, 5),
            .recipient = (const char *)sqlite3_column_text(q, 6),
            .state = sqlite3_column_int(q, 7),
            .attempt = (uint32_t)sqlite3_column_int64(q, 8),
            .at_ms = sqlite3_column_int64(q, 9),
        };
        cb = fn(ud, &row);
    }
    return admin_finish(q, cb ? SQLITE_DONE : rc, cb);
}

int store_sqlite_expiring(store_t *st, int64_t before_ms, unsigned limit,
                          int (*fn)(void *ud, const store_message_row_t *row), void *ud)
{
    sqlite3_stmt *q = admin_prepare(
        st, "SELECT m.seq, m.sender, m.accepted_at, m.expires_at, m.envelope, d.recipient, "
            "d.state, d.attempt, d.updated_at FROM messages m JOIN deliveries d ON d.seq = m.seq "
            "WHERE m.expires_at <= ?1 ORDER BY m.expires_at, m.seq LIMIT ?2");
    if (q == NULL) return RELAIS_ESTORE;
    sqlite3_bind_int64(q, 1, before_ms);
    sqlite3_bind_int64(q, 2, limit);
    int rc, cb = 0;
    while (cb == 0 && (rc = sqlite3_step(q)) == SQLITE_ROW) {
        store_message_row_t row = {
            .kind = 'p',
            .seq = (uint64_t)sqlite3_column_int64(q, 0),
            .sender = (const char *)sqlite3_column_text(q, 1),
            .accepted_at_ms = sqlite3_column_int64(q, 2),
            .expires_at_ms = sqlite3_column_int64(q, 3),
            .envelope = sqlite3_column_blob(q, 4),
            .envelope_len = (size_t)sqlite3_column_bytes(q, 4),
            .recipient = (const char *)sqlite3_column_text(q, 5),
            .state = sqlite3_column_int(q, 6),
            .attempt = (uint32_t)sqlite3_column_int64(q, 7),
            .at_ms = sqlite3_column_int64(q, 8),
        };
        cb = fn(ud, &row);
    }
    return admin_finish(q, cb ? SQLITE_DONE : rc, cb);
}
