/*
 * The disk reserve: a file of a few megabytes kept in the data directory and given back to
 * the file system when the disk fills.
 *
 * A full disk would otherwise be final: acknowledging what is stored needs room in the
 * store's WAL, a checkpoint that would make room needs room in the database, and the audit
 * journal needs room to record it all. Whoever meets the full disk first (the store's commit
 * thread, the journal's writer) spends the reserve; from then on the broker is constrained:
 * it takes no new messages, so the room goes to acknowledgements and state changes, which
 * free pages inside the database, which go back to the file system (incremental vacuum) while
 * the disk is full. The broker's tick checks once a second whether space is back (twice the
 * reserve free on the file system) and makes the reserve again then.
 */
#ifndef RELAIS_BROKER_RESERVE_H
#define RELAIS_BROKER_RESERVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct reserve reserve_t;

/* Creates the reserve at path (bytes long; 0: none, never constrained) and tries to make the
 * file now: a failure is logged and retried by reserve_check. 0 or -ENOMEM. */
int reserve_open(reserve_t **out, const char *path, size_t bytes);
void reserve_close(reserve_t **r);

/* The disk is full (who: "store", "journal"): gives the file back, once, and constrains.
 * Any thread. */
void reserve_spend(reserve_t *r, const char *who);

/* The reserve's size in bytes (0 without one). */
size_t reserve_bytes(const reserve_t *r);

/* Whether new work may be taken (not constrained). Any thread. */
bool reserve_ok(reserve_t *r);

/* While constrained: lifts the constraint when twice the reserve is free on the file system
 * (and makes the reserve again); inside_free (free pages of the database) is only logged.
 * Loop thread. */
void reserve_check(reserve_t *r, uint64_t inside_free);

#endif /* RELAIS_BROKER_RESERVE_H */
