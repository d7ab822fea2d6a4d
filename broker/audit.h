/*
 * The audit journal: an append-only, hash-chained record of what the broker did.
 *
 * DESIGN.md asks for traceability: every session opened or refused, submission accepted or
 * rejected, delivery, ack, expiry and refusal, holding identifiers and types, never clinical
 * content or patient identity. The journal is a text file (DATA/audit.log), one JSON object
 * per line, in one fixed key order:
 *
 *   {"seq":7,"at":1795871220123,"event":"deliver","actor":"rpps:10101234567",
 *    "msg":"0190c4f2-…","body":"appointment_request","to":"rpps:10107654321","attempt":1,
 *    "outcome":"-","reason_code":"-","prev":"<64 hex>","hash":"<64 hex>"}
 *
 * hash = BLAKE2b-256(prev hash, 32 raw bytes || the line's bytes up to and excluding
 * ',"hash":'); the first record has seq 1 and a prev of 64 zeros. Changing, inserting,
 * deleting or reordering a line therefore breaks the chain at that line, which
 * `relaisctl audit verify` reports. Cutting lines off the end does not break it: only an
 * operator who kept a recent last hash (printed by verify) can detect that, with
 * `verify --anchor`; and whoever can write the file can recompute every hash after an
 * edit. The journal is tamper-evident against a later reader, not tamper-proof.
 *
 * Threads: audit_record formats and enqueues on the caller's thread (the broker loop) and
 * may be called from any thread; one writer thread assigns seq, chains, appends and
 * fdatasync()s at most every AUDIT_SYNC_MS. Durability: a crash of relaisd loses only the
 * records still queued (accepted by audit_record, not yet written by the writer thread,
 * which writes as soon as it wakes: normally well under a millisecond's worth); a power cut
 * or kernel crash also loses what was written since the last fdatasync, at most
 * AUDIT_SYNC_MS of records. audit_close and audit_sync write and sync everything.
 *
 * Cost: formatting and a memcpy under a lock on the caller's thread (a few hundred ns);
 * the writer's cost is mostly hashing (BLAKE2b-256, about 0.5 µs for a
 * 370-byte line on the development VM), which bounds it near 400,000 records/s. When the
 * writer falls AUDIT_QUEUE_MAX_BYTES behind, audit_record blocks its caller (back-pressure,
 * as the store applies it), for AUDIT_BLOCK_MS at most.
 *
 * Nothing is dropped silently. While the file cannot be written (disk full, I/O error) the
 * records wait in the queue, and the writer retries until they are written. Only when the
 * queue stays full longer than AUDIT_BLOCK_MS, or the file cannot be repaired, does
 * audit_record log an error and return RELAIS_ESTORE: that event is not in the journal, and
 * the next record written is preceded by an "audit.lost" record naming how many events of
 * each kind were refused meanwhile. The broker refuses new submissions while the journal is
 * not healthy (audit_healthy), and sends Accepted only once the submission's record is
 * durable (audit_position / audit_want_durable / audit_on_durable).
 */
#ifndef RELAIS_BROKER_AUDIT_H
#define RELAIS_BROKER_AUDIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What happened. The names in the journal are audit_kind_name()'s. */
typedef enum audit_kind {
    AUDIT_BROKER_START = 1, /* actor: broker id */
    AUDIT_BROKER_STOP,      /* actor: broker id */
    AUDIT_DIRECTORY_RELOAD, /* actor: broker id; outcome: "ok" or "failed"; code */
    AUDIT_SESSION_OPEN,     /* actor: authenticated address */
    AUDIT_SESSION_REFUSED,  /* actor: the client key (Z85) or declared address; code */
    AUDIT_SESSION_CLOSE,    /* actor: address; outcome: why ("bye", "timeout", …) */
    AUDIT_SUBMIT_ACCEPTED,  /* actor: sender; msg; body; to: first recipient */
    AUDIT_SUBMIT_REJECTED,  /* actor: sender; msg; body; code */
    AUDIT_SUBMIT_DUPLICATE, /* actor: sender; msg */
    AUDIT_DELIVER,          /* actor: sender; msg; body; to; attempt */
    AUDIT_ACK,              /* actor: recipient; msg; outcome: "processed", "retry_later" */
    AUDIT_EXPIRE,           /* actor: sender; msg; to */
    AUDIT_REFUSE,           /* actor: recipient; msg; the recipient's refusal (code only) */
    AUDIT_RECEIPT,          /* actor: the sender the receipt goes to; msg; outcome: status */
    AUDIT_LOST,             /* written by this module: events refused (outcome: count) */
    AUDIT_REPAIR,           /* written by this module: a torn tail line was cut off */
    AUDIT_SESSION_MISMATCH, /* actor: the session's address; key: the frame's key; a frame
                             * on its routing id from another connection or key closed it */
    AUDIT_AUTH_REFUSALS,    /* refused handshakes aggregated: key, peer, count in a window */
    AUDIT_REDELIVER,        /* actor: sender; msg; to; attempt; outcome: why it goes back
                             * to the queue ("session-lost", "ack-timeout", "retry-later",
                             * "passed-on") */
    AUDIT_CLAIM,            /* actor: sender; msg; to: the member whose claim won */
    AUDIT_REPLAY,           /* actor: "admin"; msg; to: a dead letter pending again */
    AUDIT_PURGE,            /* actor: "admin" or "retention"; count: dead letters forgotten */
    AUDIT_ROTATE,           /* written by this module: first record of a file after rotation;
                             * outcome: the previous file's name */
    AUDIT_RETENTION,        /* actor: "retention"; outcome: a rotated file removed, past the
                             * retention period */
    AUDIT_KIND_COUNT
} audit_kind_t;

/* "session.open", …; NULL for a value outside the enum. */
const char *audit_kind_name(audit_kind_t kind);

/*
 * One event as the caller sees it. Every pointer may be NULL (written "-"); strings are
 * copied during audit_record and cut at AUDIT_FIELD_MAX - 1 bytes. Only identifiers, type
 * names and short constant words belong here: never a body, a free-text reason or anything
 * about a patient.
 */
typedef struct audit_event {
    audit_kind_t kind;
    int64_t at_ms;             /* Unix ms; 0: the wall clock when recorded */
    const char *actor;         /* who acted */
    const uint8_t *message_id; /* 16 bytes: written as a UUID; other lengths as hex */
    size_t message_id_len;     /* 0: no message */
    const char *body;          /* body type name, relais_body_name() */
    const char *to;            /* recipient address */
    uint32_t attempt;          /* deliver: attempt number; 0 elsewhere */
    const char *outcome;       /* a short constant word */
    int code;                  /* a RELAIS_E… code, written by name; 0: none */
    /* Optional, written only when set (NULL / 0): */
    const char *key;     /* the CURVE key that acted (Z85), written as its fingerprint */
    const char *claimed; /* an address the actor claimed, apart from who it proved to be */
    const char *peer;    /* the network peer (IP address) */
    uint64_t count;      /* how many events one record stands for (aggregated refusals) */
} audit_event_t;

/* The fingerprint the journal writes for a Z85 key: 16 hex digits of BLAKE2b-256 of the raw
 * key (out: 17 bytes). "invalid" for text that is not a Z85 key. */
#define AUDIT_FINGERPRINT_LEN 17
void audit_key_fingerprint(const char *z85, char out[AUDIT_FINGERPRINT_LEN]);

#define AUDIT_HASH_LEN 32    /* BLAKE2b-256 */
#define AUDIT_FIELD_MAX 256  /* bytes of one string field, NUL included, after unescaping */
#define AUDIT_LINE_MAX 16384 /* bytes of one line, newline included */
#define AUDIT_SYNC_MS 100    /* the longest written lines wait for fdatasync */
#define AUDIT_QUEUE_MAX_BYTES (16u << 20) /* formatted records waiting for the writer */
#define AUDIT_BLOCK_MS 1000               /* how long audit_record waits for room in a full queue */

typedef struct audit audit_t;

/*
 * Opens (creating it, mode 0600: it names who talked to whom) the journal at path for appending, and starts its writer
 * thread. The file is locked (flock) against a second writer. The chain continues from the
 * last line: its seq and hash. A torn last line (no final newline: relaisd or the machine
 * died mid-write) is cut off, with a warning logged and an "audit.repair" record appended;
 * that is crash recovery, not tampering. A last complete line that is not a valid record
 * is not repaired: the journal may have been tampered with, and an operator must look
 * (`relaisctl audit verify`). Returns 0 with *out set, or RELAIS_ESTORE / a negative errno
 * with a sentence in reason (*out untouched).
 */
int audit_open(audit_t **out, const char *path, char *reason, size_t reason_len);

/*
 * Records ev: formats it and queues it for the writer thread; thread-safe. Returns 0, or
 * RELAIS_ESTORE (logged, and the event is not in the journal) when the journal cannot be
 * written or its queue stayed full for AUDIT_BLOCK_MS; RELAIS_EINVALID for a kind outside
 * the enum. Blocks only while the queue is full.
 */
int audit_record(audit_t *a, const audit_event_t *ev);

/* How many records have been queued so far: the position of the last one recorded. */
uint64_t audit_position(audit_t *a);

/* How many of them are written and fdatasync()ed. */
uint64_t audit_durable(audit_t *a);

/* Asks the writer to make everything up to position durable now rather than at its next
 * periodic sync; the notifier (audit_on_durable) is called once it is. Never blocks. */
void audit_want_durable(audit_t *a, uint64_t position);

/* fn(ud) is called from the writer thread each time audit_durable() moves: it must only
 * wake its own thread (uv_async_send). */
typedef void (*audit_notify_fn)(void *ud);
void audit_on_durable(audit_t *a, audit_notify_fn fn, void *ud);

/* Rotates the journal once it reaches bytes (0: never): PATH becomes PATH.<last seq> and a
 * new PATH goes on with the chain (the next seq, the last hash as prev). `relaisctl audit
 * verify PATH` checks the whole set. */
void audit_set_rotation(audit_t *a, uint64_t bytes);

/* fn(ud) is called from the writer thread when a write fails on a full disk (ENOSPC,
 * EDQUOT, EFBIG): the broker spends its disk reserve (reserve.h). */
void audit_on_full(audit_t *a, audit_notify_fn fn, void *ud);

/* Whether new work may be taken on: the file is writable, nothing was lost since the last
 * record, and the queue is less than half full. The broker refuses submissions otherwise. */
bool audit_healthy(audit_t *a);

/*
 * Waits until every event recorded before the call is written and fdatasync()ed. Returns 0,
 * or the error that keeps them from the disk (RELAIS_ESTORE, logged). After a write failure
 * the writer retries every AUDIT_SYNC_MS; audit_sync makes it retry at once. For the broker's
 * orderly stop and for tests: the broker loop must not wait on the disk.
 */
int audit_sync(audit_t *a);

/* Writes and syncs everything queued, stops the writer thread, closes the file and sets
 * *a to NULL. Accepts NULL and *a == NULL. Records it could not write are logged. */
void audit_close(audit_t **a);

/* ---- the line format (audit_line.c), shared by the writer and the readers ---------- */

/* A bounded output: every append checks for room and clears ok when there is none. */
typedef struct audit_buf {
    char *buf;
    size_t pos, cap;
    bool ok;
} audit_buf_t;

/* Writes the middle of ev's line (everything but seq, prev and hash) into buf, ended by
 * '\n'; its length, or 0 when cap is too small (AUDIT_LINE_MAX never is). */
size_t audit__format_event(char *buf, size_t cap, const audit_event_t *ev, const char *name,
                           int64_t at_ms);

/* Appends the whole line around a middle from audit__format_event (len includes its '\n'):
 * seq, prev = *chain, then the hash, which replaces *chain. Check o->ok afterwards. */
void audit__wrap_line(audit_buf_t *o, uint64_t seq, const char *middle, size_t len,
                      uint8_t chain[AUDIT_HASH_LEN]);

/* One record as parsed back from a line, strings unescaped. */
typedef struct audit_entry {
    uint64_t seq;
    int64_t at_ms;
    char event[AUDIT_FIELD_MAX];
    char actor[AUDIT_FIELD_MAX];
    char msg[AUDIT_FIELD_MAX];
    char body[AUDIT_FIELD_MAX];
    char to[AUDIT_FIELD_MAX];
    uint32_t attempt;
    char outcome[AUDIT_FIELD_MAX];
    char reason_code[AUDIT_FIELD_MAX];
    char key[AUDIT_FIELD_MAX];     /* "" when the record has none */
    char claimed[AUDIT_FIELD_MAX]; /* "" when the record has none */
    char peer[AUDIT_FIELD_MAX];    /* "" when the record has none */
    uint64_t count;                /* 0 when the record has none */
    uint8_t prev[AUDIT_HASH_LEN];
    uint8_t hash[AUDIT_HASH_LEN];
} audit_entry_t;

typedef enum audit_line_status {
    AUDIT_LINE_OK = 0,
    AUDIT_LINE_UNPARSEABLE, /* not a record in the canonical format */
    AUDIT_LINE_BAD_HASH,    /* parses, but its hash is not BLAKE2b-256(prev || its bytes) */
} audit_line_status_t;

/* Parses one line (without its newline) and checks its own hash against its prev field;
 * fills *e as far as it parsed. The chain (prev = previous hash, seq + 1) is the caller's. */
audit_line_status_t audit__check_line(const char *line, size_t len, audit_entry_t *e);

#endif /* RELAIS_BROKER_AUDIT_H */
