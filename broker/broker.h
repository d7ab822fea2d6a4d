/*
 * relaisd internals shared across the broker's files.
 *
 * One broker object owns everything: the libuv loop, the ROUTER socket polled through
 * ZMQ_FD, the sessions, the mailboxes with their delivery queues, the store and the batch
 * being gathered for the next group commit. There is no global state: every function takes
 * the broker. Everything here runs on the loop thread.
 *
 * Files: broker.c (socket, loop, drain, send, timers, shutdown), session.c (Hello,
 * liveness, replacement), submit.c (Submit → validate → batch → Accepted), delivery.c
 * (mailboxes, the delivery state machine, credit, acks, receipts, expiry), auth.c (who a
 * connection is).
 */
#ifndef RELAIS_BROKER_H
#define RELAIS_BROKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#include <zmq.h>

#include "list.h"
#include "map.h"
#include "relais/codec.h"
#include "store.h"
#include "xalloc.h"

typedef struct broker_config {
    const char *bind; /* ROUTER endpoint */
    const char *data_dir;
    bool insecure; /* agents declare their address in Hello */
    const char *broker_id;
    unsigned heartbeat_ms; /* sessions silent 3 intervals are dead */
    size_t max_frame_bytes;
    unsigned max_recipients;
    int64_t default_ttl_ms;  /* expiry when the envelope sets none */
    int64_t max_ttl_ms;      /* later deadlines are brought forward to this */
    unsigned default_credit; /* when Hello.credit is 0 */
    unsigned max_credit;
    int64_t retry_later_ms;     /* first back-off after Ack{RETRY_LATER} */
    int64_t ack_timeout_ms;     /* an unacknowledged delivery is sent again after this */
    int durability;             /* store_durability_t */
    int64_t dedup_retention_ms; /* how long (sender, message_id) pairs are remembered */
    int64_t conversation_retention_ms; /* how long conversation participants are known */
    const char *directory_path; /* territory directory (YAML); required unless insecure */
    const char *curve_key_path; /* the broker's keypair (relaisctl keygen); required unless
                                 * insecure */
    size_t store_reserve_bytes; /* the disk reserve, spent when the disk fills (reserve.h) */
    int64_t dead_letter_retention_ms; /* dead letters are forgotten after this (0: never) */
    uint64_t audit_rotate_bytes;      /* the journal is rotated at this size (0: never) */
    int64_t audit_retention_ms;       /* rotated journal files are removed after this (0: never) */
    const char *admin_bind;       /* admin HTTP listener HOST:PORT, "off"; NULL: the default */
    const char *admin_token_path; /* bearer token file (0600) for the admin listener */
} broker_config_t;

/* Deliveries a mailbox keeps in memory per priority; refilled from the store below half. */
#define MAILBOX_PAGE 1024

/* Fills cfg with the defaults documented in docs/OPERATIONS.md. */
void broker_config_defaults(broker_config_t *cfg);

typedef enum delivery_state {
    DELIVERY_STORED = 0,       /* queued in the recipient's mailbox */
    DELIVERY_DELIVERING = 1,   /* sent to a session, awaiting its Ack */
    DELIVERY_ACKED = 2,        /* final: processed */
    DELIVERY_REDELIVERING = 3, /* back in the queue after a lost session or RETRY_LATER */
    DELIVERY_EXPIRED = 4,      /* final: deadline passed */
    DELIVERY_REFUSED = 5,      /* final: the recipient refused it permanently */
} delivery_state_t;

const char *delivery_state_name(delivery_state_t s);

/* What moves a delivery (transition.c holds the table of which state each may leave). */
typedef enum delivery_event {
    DELIVERY_EV_SEND,         /* stored/redelivering → delivering: Deliver sent */
    DELIVERY_EV_CLAIM,        /* stored/redelivering → delivering: an OFFER claimed */
    DELIVERY_EV_ACK,          /* delivering → acked */
    DELIVERY_EV_REFUSE,       /* delivering → refused (final) */
    DELIVERY_EV_PASS_ON,      /* delivering → redelivering: a pool member refused, next one */
    DELIVERY_EV_RETRY_LATER,  /* delivering → redelivering: Ack RETRY_LATER */
    DELIVERY_EV_SESSION_LOST, /* delivering → redelivering: its session ended */
    DELIVERY_EV_ACK_TIMEOUT,  /* delivering → redelivering: no Ack in time */
    DELIVERY_EV_EXPIRE,       /* stored/delivering/redelivering → expired (final) */
    DELIVERY_EVENT_COUNT
} delivery_event_t;

typedef struct session session_t;
typedef struct mailbox mailbox_t;

/* A list of byte-string keys (owned), e.g. what one batch settles. */
typedef struct keyvec {
    uint8_t **keys;
    size_t *lens;
    size_t n, cap;
} keyvec_t;

/* One accepted message, in memory while at least one of its deliveries is (refs). */
typedef struct msg {
    uint64_t seq;
    char *sender;
    uint8_t message_id[RELAIS_MESSAGE_ID_LEN];
    uint8_t conversation_id[RELAIS_MESSAGE_ID_LEN];
    size_t conversation_id_len;
    int64_t accepted_at_ms;
    int64_t expires_at_ms;
    uint32_t receipts_mask; /* bit (1 << Receipt.Status) for each receipt asked */
    int priority;           /* Envelope.Priority */
    int body_case;
    int dispatch;      /* Envelope.Dispatch: ANYCAST or OFFER (pools) */
    unsigned refs;     /* deliveries of it held in memory */
    bool indexed;      /* in broker.msgs */
    uint8_t *envelope; /* stamped envelope bytes */
    size_t envelope_len;
    struct delivery **deliveries; /* one slot per recipient; NULL when not in memory */
    unsigned ndeliveries;
} msg_t;

/* One message × recipient: the unit of the delivery state machine. */
typedef struct delivery {
    msg_t *msg;
    mailbox_t *mbox;
    delivery_state_t state;
    uint32_t attempt;
    bool never_sent;     /* the store has never recorded it delivering: the DELIVERED receipt
                          * is still owed when it is first sent */
    int64_t retry_at_ms; /* REDELIVERING after RETRY_LATER: not before (relais_mono_ms) */
    int64_t sent_at_ms;  /* DELIVERING: when the Deliver went out (relais_mono_ms) */
    uint64_t gen;        /* batch generation that records its latest state */
    mailbox_t **tried;   /* pool delivery: members that refused it */
    unsigned ntried;
    mailbox_t *claimed_by; /* OFFER: the member whose Claim won, NULL while unclaimed */
    list_node_t offers;    /* OFFER, unclaimed: the offers out to members (offer_t) */
    bool offering;         /* OFFER, unclaimed: qnode is in the pool's offering list */
    list_node_t qnode;   /* mailbox queue, or the broker's retry list */
    list_node_t fnode;   /* the session's in-flight list */
    session_t *session;  /* DELIVERING: where it was sent */
} delivery_t;

/* One OFFER delivery offered to one member session, until claimed, declined or withdrawn. */
typedef struct offer {
    delivery_t *d;
    session_t *s;
    list_node_t dnode; /* in d->offers */
    list_node_t snode; /* in s->offers */
} offer_t;

/* A receipt owed to a sender, resent on each new session until acknowledged. */
typedef struct receipt {
    uint64_t id;
    mailbox_t *mbox;
    list_node_t node;
    uint8_t *frame;
    size_t frame_len;
} receipt_t;

/*
 * Everything addressed to one address. Per priority, the queue in memory is always a
 * prefix, in acceptance order, of what is pending: mem[p] deliveries in memory, then
 * disk[p] more in the store only, all with seq > cursor[p]. Offline mailboxes hold nothing
 * in memory.
 */
struct mailbox {
    char *address;
    list_node_t queue[2]; /* index Envelope.Priority: [0] ROUTINE, [1] URGENT */
    size_t mem[2];
    uint64_t disk[2];
    uint64_t cursor[2]; /* highest seq paged or routed into memory */
    list_node_t receipts;
    session_t *session;
    list_node_t idle; /* in broker.idle while sessionless with deliveries in memory */
    bool pool;             /* a service pool: deliveries go to one of its members */
    list_node_t pool_node; /* in broker.pools */
    list_node_t offering;  /* pool: OFFER deliveries out to its members, unclaimed */
    size_t offering_count;
    uint64_t pool_given; /* when it was last given pool work (broker.pool_given_seq) */
    unsigned refs; /* deliveries in memory to it, or naming it as a pool member (tried,
                    * claimed_by): it is not freed while any is */
};

struct session {
    uint8_t rid[256]; /* ZeroMQ routing id */
    size_t rid_len;
    char address[RELAIS_ADDRESS_MAX];
    char key[41];            /* the CURVE key it authenticated with (Z85); "" if insecure */
    int fd;                  /* the connection's descriptor (ZMQ_SRCFD at Hello), or -1 */
    bool welcomed;           /* its address's session row committed and Welcome sent: only
                              * then is anything delivered to it */
    uint64_t open_gen;       /* the batch generation recording its session row */
    bool closing;            /* closed: out of every map, freed at the end of the turn */
    list_node_t closing_node; /* in broker.closing while closing */
    double tokens;           /* submissions it may still make now (rate limit) */
    int64_t tokens_at_ms;
    mailbox_t *mbox;
    uint32_t window; /* deliveries allowed unacknowledged */
    uint32_t inflight_count;
    list_node_t inflight;
    map_t *inflight_by_id; /* message_id → delivery */
    list_node_t offers;    /* OFFER deliveries offered to it, not yet claimed (offer_t) */
    map_t *offers_by_id;   /* message_id → offer_t */
    int64_t last_seen_ms; /* relais_mono_ms() of its last frame */
    int64_t opened_ms;    /* relais_now_ms() at its Hello (admin API) */
};

/* A reply that waits for the batch commit (Accepted, or Rejected if the commit fails). */
typedef struct pending_reply {
    uint8_t rid[256];
    size_t rid_len;
    uint8_t message_id[RELAIS_MESSAGE_ID_LEN];
    bool duplicate;
    int64_t accepted_at_ms;
    msg_t *msg;      /* new message to route after commit, or NULL */
    uint64_t ticket; /* after commit: the journal position its record must reach on disk */
    uint8_t *replay_key; /* a replayed dead letter (no one to answer): its key in
                          * broker.replaying, owned; NULL for a submission */
    size_t replay_key_len;
    uint64_t received_ns; /* uv_hrtime() when the Submit was read (admin histogram) */
} pending_reply_t;

typedef struct broker {
    broker_config_t cfg;
    uv_loop_t *loop;
    void *zctx;
    void *router;
    char endpoint[256]; /* as bound, with the real port */
    uv_os_sock_t zfd;
    uv_poll_t poll;
    uv_idle_t kick;  /* re-drains after sends: ZMQ_FD is edge-triggered */
    uv_timer_t tick; /* liveness, expiry, retries */
    uv_signal_t sigterm, sigint, sighup;
    void *mon;               /* the ROUTER's monitor (PAIR): connections that end */
    uv_poll_t mon_poll;
    bool mon_polling;
    list_node_t closing;     /* sessions closed this turn, freed by session__free_closed */
    void *zap;               /* the ZAP handler's REP socket (CURVE mode) */
    uv_poll_t zap_poll;
    bool zap_polling;
    struct directory *dir;   /* the territory directory, NULL without one */
    struct audit *audit;     /* the audit journal, DATA/audit.log */
    uv_async_t audit_async;  /* the journal made more records durable: release replies */
    bool audit_async_open;
    char curve_public[41], curve_secret[41]; /* the broker's keys, Z85 */
    bool stopping;
    bool detached; /* shutdown finished: the store let go of the loop */
    bool in_drain;
    bool throttled; /* reading paused until the store catches up */
    int64_t next_prune_ms;
    int64_t trim_at_ms;    /* give_back_memory: not before (relais_mono_ms) */
    int64_t watchdog_ms, watchdog_at_ms; /* systemd's watchdog: period, next (mono) */
    uint64_t trim_closes;  /* sessions_closed at the last trim */
    int64_t last_close_ms; /* relais_mono_ms() of the last session closed */

    store_t *store;
    struct reserve *reserve;  /* the disk reserve (reserve.h) */
    int64_t reserve_check_ms; /* constrained: when to look for space again */
    store_batch_t batch; /* gathered this turn */
    map_t *batch_index;  /* seq + recipient → index of its DELIVERY_SET in batch */
    pending_reply_t *replies;
    size_t nreplies, replies_cap;
    pending_reply_t *held; /* committed, waiting for their journal record to be durable */
    size_t nheld, held_cap;
    bool commit_in_flight;

    map_t *sessions;      /* routing id → session */
    map_t *sessions_by_fd; /* connection descriptor → session */
    size_t opening;        /* sessions waiting for their row's commit before Welcome */
    map_t *refusals;       /* refused handshakes of this window (auth.c) */
    uint64_t refusals_overflow;
    int64_t refusals_window_end;
    unsigned refusal_logs;
    map_t *mailboxes;     /* address → mailbox */
    map_t *msgs;          /* seq → message in memory */
    map_t *receipts;      /* receipt id → receipt */
    map_t *settling;      /* seq + recipient of deliveries final but not yet committed */
    keyvec_t settle_keys; /* those recorded in the batch being gathered */
    map_t *participating; /* conversation NUL address recorded but not yet committed */
    map_t *pending_conversations; /* conversation → participations not yet committed */
    map_t *replaying;     /* dead letters (seq + recipient) whose replay is not committed */
    keyvec_t participation_keys; /* those recorded in the batch being gathered */
    list_node_t retry;    /* deliveries waiting for their retry_at_ms */
    uint64_t next_seq;
    uint64_t committed_seq; /* every message up to this seq is committed and routed */
    uint64_t gen_open;      /* generation of the batch being gathered */
    uint64_t gen_committed; /* every batch up to this generation has committed */
    list_node_t idle;       /* mailboxes to evict once their state is committed */
    list_node_t pools;      /* every service-pool mailbox */
    uint64_t next_receipt_id;
    uint64_t pool_given_seq; /* counts ANYCAST hand-outs: who had pool work last */
    int64_t next_expiry_ms;

    struct {
        uint64_t accepted, duplicates, rejected, delivered, acked, refused, expired, errors,
            sessions_opened, sessions_closed, claimed, session_mismatches, auth_refusals;
        /* For the admin surface (broker/admin). */
        uint64_t redeliveries, retry_later;
        uint64_t rejected_by_code[16]; /* index: wire ErrorCode */
        uint64_t auth_unknown_key, auth_not_curve, auth_hello;
        uint64_t commit_started_ns; /* uv_hrtime() when the commit in flight was handed over */
        size_t commit_ops;          /* operations in that commit */
    } stats;
    struct admin *admin; /* the admin listener and control socket (broker/admin) */
} broker_t;

/* ---- broker.c ---------------------------------------------------------------------- */

/* Creates the broker: opens the store, binds the ROUTER, registers loop handles.
 * Returns 0 or an error with the reason logged. */
int broker_open(broker_t *b, const broker_config_t *cfg, uv_loop_t *loop);

/* Frees what broker_open created, after the loop has ended. */
void broker_close(broker_t *b);

/* Starts an orderly shutdown: the loop ends once pending commits are done. */
void broker_shutdown(broker_t *b);

/* Ends the shutdown once no commit is in flight (called again after each commit). */
void broker__finish_shutdown(broker_t *b);

/* Sends one encoded frame to a routing id. 0, or -EHOSTUNREACH when the peer is gone,
 * -EAGAIN when its queue is full. Either way the caller still owns nothing: data is
 * copied. */
int broker__send(broker_t *b, const uint8_t *rid, size_t rid_len, const uint8_t *data, size_t len);

/* Encodes and sends a Frame. */
int broker__send_frame(broker_t *b, const uint8_t *rid, size_t rid_len, const Relais__V1__Frame *f);

/* The one path for what the broker sends to a session: on failure (the peer is gone, or its
 * queue is full) the session is closed — marked closing, still readable by the caller, freed
 * at the end of the turn — and the error is returned. A closing session is sent nothing. */
int broker__send_session(broker_t *b, session_t *s, const uint8_t *data, size_t len);
int broker__send_session_frame(broker_t *b, session_t *s, const Relais__V1__Frame *f);

struct audit_event;
/* Records an event in the audit journal (identifiers, types and outcomes only, never
 * content). What the journal cannot take it counts and names later (audit.h); submissions
 * are refused while it is unhealthy. */
void broker__audit_event(broker_t *b, const struct audit_event *ev);
void broker__audit(broker_t *b, int kind, const char *actor, const uint8_t *message_id,
                   const char *body, const char *to, uint32_t attempt, const char *outcome,
                   int code);

/* Sends Error{code, reason, fatal} (code is a RELAIS_E… value). */
void broker__send_error(broker_t *b, const uint8_t *rid, size_t rid_len, int code,
                        const char *reason, bool fatal, const uint8_t *message_id,
                        size_t message_id_len);

/* Asks for a re-drain of the socket on the next loop iteration. */
void broker__kick(broker_t *b);

/* The largest frame the transport reads (ZMQ_MAXMSGSIZE): bigger ones close the connection
 * before the broker sees them; between max_frame_bytes and this, Error{TOO_LARGE}. */
int64_t broker__transport_limit(const broker_t *b);

/* Empties the coalescing index of a batch about to be handed to the store. */
void broker__forget_batch_index(broker_t *b, const store_batch_t *batch);

/* A commit completed: resumes reading if the broker had paused for the store. */
void broker__store_caught_up(broker_t *b);

/* Adds a store operation to the current batch (ownership as store_batch_add). A delivery
 * state change replaces an earlier change of the same delivery in the same batch: only the
 * latest state has to reach the disk. */
void broker__record(broker_t *b, const store_op_t *op);

/* ---- session.c --------------------------------------------------------------------- */

session_t *session__find(broker_t *b, const uint8_t *rid, size_t rid_len);
/* The session a frame belongs to: the routing id's, if the frame came over the connection and
 * with the key that opened it. A frame on the routing id of a session that it does not belong
 * to (another connection reusing the id, another key) closes that session, journaled, and
 * finds none. */
session_t *session__for_frame(broker_t *b, const uint8_t *rid, size_t rid_len, zmq_msg_t *msg);
/* A batch committed (ok) or failed: sessions whose row it carried are welcomed, or closed. */
void session__committed(broker_t *b, uint64_t gen, bool ok);
/* A connection ended (the ROUTER's monitor): its session, if any, ends with it. */
void session__connection_closed(broker_t *b, int fd);
/* Frees the sessions closed since the last call: nothing of this turn holds them any more. */
void session__free_closed(broker_t *b);
void session__hello(broker_t *b, const uint8_t *rid, size_t rid_len, zmq_msg_t *msg,
                    const Relais__V1__Hello *hello);
/* Ends a session: its in-flight deliveries go back to their queue, it leaves every map and
 * list, and it is marked closing; its memory stays valid until session__free_closed(), so a
 * caller holding it may still read it (check s->closing). Closing twice does nothing. */
void session__close(broker_t *b, session_t *s, const char *why);
void session__reap(broker_t *b, int64_t now);
void session__close_all(broker_t *b);
/* After a directory reload: closes, with a fatal Error, every session whose key or address
 * is no longer in the directory. */
void session__revalidate(broker_t *b);

/* ---- auth.c ------------------------------------------------------------------------ */

/* Loads the directory and the broker's keys named in the configuration. 0 or an error,
 * logged with its reason. */
int auth__open(broker_t *b);
void auth__close(broker_t *b);

/* The ZAP decision: the address of the agent owning this CURVE public key, or an error
 * (RELAIS_EFORBIDDEN) with a reason. */
int auth__key_lookup(broker_t *b, const uint8_t key[32], char address[RELAIS_ADDRESS_MAX],
                     char *reason, size_t reason_len);

/* Counts a refused handshake (unknown key) from peer: logged at its first in a window,
 * journaled once per window with the count (auth__flush_refusals). */
void auth__refused(broker_t *b, const char *key_z85, const char *peer, const char *reason);
/* Counts a refused Hello: uid, the identity the key proved (NULL in insecure mode or
 * without one); key, the key (Z85) that sent it; claimed, the address the Hello claimed. */
void auth__refused_hello(broker_t *b, const char *uid, const char *key, const char *claimed,
                         int code, const char *reason);
/* Counts a submission rejected with "retry later" (OVERLOADED, STORE_UNAVAILABLE): journaled
 * once per window and sender with the count, logged like refusals. */
void auth__rejected_retryable(broker_t *b, const char *sender, int code, const char *reason);
/* Journals the window's refusals, one record per (peer, key, claim), when the window has
 * ended (or now, with force: at shutdown). */
void auth__flush_refusals(broker_t *b, bool force);

/* Re-reads the directory (SIGHUP, relaisctl reload): on success sessions whose key is gone
 * are closed, and each agent added, removed or changed is logged; on failure the previous
 * directory stays. Writes the outcome in a sentence to result. 0 or RELAIS_ECONFIG. */
int auth__reload(broker_t *b, char *result, size_t result_len);

/* The directory role of address ("gp", "nurse", …), or NULL. */
const char *auth__role(broker_t *b, const char *address);

/* Who is this connection? Writes the authenticated address, or returns RELAIS_E… with a
 * reason. The one place the security work replaces: today the insecure mode's declared
 * address. */
int auth__identify(broker_t *b, zmq_msg_t *msg, const Relais__V1__Hello *hello,
                   char address[RELAIS_ADDRESS_MAX], char *reason, size_t reason_len);

/* ---- authorize.c ------------------------------------------------------------------- */

/* Limits and authorisation of a validated submission. 0, or RELAIS_EOVERLOADED (with
 * *retry_after_ms), RELAIS_EFORBIDDEN or RELAIS_EUNKNOWNRCPT with a reason naming the rule. */
int authorize__submit(broker_t *b, session_t *s, const Relais__V1__Envelope *env, int64_t now,
                      char *reason, size_t reason_len, int64_t *retry_after_ms);
/* Records that the sender and recipients of an accepted message take part in its
 * conversation (stored by the next commit; pending in memory until then). */
void authorize__record(broker_t *b, const Relais__V1__Envelope *env, const char *sender,
                       int64_t now);
/* A pool member received (ANYCAST) or claimed (OFFER) m: it takes part in m's conversation
 * from now on, as the pool's recipient of it. */
void authorize__pool_member(broker_t *b, const msg_t *m, const char *member);
/* A commit completed: its participations are in the store now. */
void authorize__settled(broker_t *b, keyvec_t *keys);
/* Forgets participations older than the retention window. */
void authorize__prune(broker_t *b, int64_t now);

/* ---- notify.c (systemd's notification protocol) ------------------------------------ */

/* Sends state ("READY=1", "STOPPING=1", …) to $NOTIFY_SOCKET; nothing without it. 0 or a
 * negative errno (logged). */
int notify__send(const char *state);
/* READY=1 with a STATUS= line: what the broker serves, or the problem given. */
void notify__status(broker_t *b, const char *problem);
/* The watchdog's period in ms (half of WATCHDOG_USEC), or 0 when none is asked. */
int64_t notify__watchdog_ms(void);

/* ---- zap.c ------------------------------------------------------------------------- */

/* Binds the ZAP handler (before the ROUTER binds) and polls it on the loop. */
int zap__open(broker_t *b);
/* Answers every waiting ZAP request. */
void zap__drain(broker_t *b);
/* Stops polling (shutdown); zap__close() after the ROUTER is closed. */
void zap__stop(broker_t *b);
void zap__close(broker_t *b);

/* ---- recover.c --------------------------------------------------------------------- */

/* Reads what the broker needs in memory at start-up: counts, receipts, highest ids. */
int recover__load(broker_t *b);

/* ---- submit.c ---------------------------------------------------------------------- */

/* Forgets deduplication keys older than the retention window. */
void submit__prune_dedup(broker_t *b, int64_t now);

void submit__handle(broker_t *b, session_t *s, const uint8_t *body, size_t body_len,
                    const Relais__V1__Submit *sub);
/* Commits the batch gathered this turn; replies and routing happen on completion. */
void submit__commit(broker_t *b);
/* The store's commit thread tells a message's outcome (store_put_fn): journaled there, while
 * the store commits; returns the journal position to wait for. */
uint64_t submit__journal_put(void *ud, const store_op_t *op, bool duplicate, bool committed);
/* Sends the Accepted replies whose journal records are durable now. */
void submit__release_replies(broker_t *b);
/* Adds a replayed dead letter's message to the batch's replies: routed, like a submission,
 * once committed and journaled; nobody is answered. key: its entry in broker.replaying. */
void submit__hold_replay(broker_t *b, msg_t *m, const void *key, size_t key_len);

/* ---- replay.c ---------------------------------------------------------------------- */

/* Makes every dead letter of message id pending again (replay.c). *replayed: how many. 0, or
 * RELAIS_EUNKNOWNRCPT when the message has no dead letter, or RELAIS_ESTORE. */
int replay__dead_letters(broker_t *b, const uint8_t id[RELAIS_MESSAGE_ID_LEN], unsigned *replayed);
/* Forgets the dead letters that died before before_ms, journaled with who asked. */
int replay__purge(broker_t *b, int64_t before_ms, const char *who, uint64_t *purged);

/* ---- transition.c ------------------------------------------------------------------ */

/* Whether ev may move a delivery out of state from (and to which state, if to != NULL). */
bool delivery__legal(delivery_state_t from, delivery_event_t ev, delivery_state_t *to);
/*
 * The one door for a delivery's state: checks ev against the table of legal transitions and,
 * together, sets the state, records it in the store batch, journals it, counts it and logs
 * it. party: the session address involved (who acked, or the pool member it went to), NULL
 * for the mailbox's own address; outcome: the journal's word when not the event's default.
 * 0, or RELAIS_EINTERNAL (logged, nothing changed) for an illegal transition.
 */
int delivery__transition(broker_t *b, delivery_t *d, delivery_event_t ev, const char *party,
                         const char *outcome);
/* Records a delivery state in the store batch (for transition.c, and a delivery only in the
 * store). */
void delivery__record_state(broker_t *b, uint64_t seq, const char *recipient, int priority,
                            delivery_state_t st, uint32_t attempt);

/* ---- delivery.c -------------------------------------------------------------------- */

/* Builds a message (no delivery in memory yet) from its stamped envelope; NULL if it does
 * not decode or memory runs out. */
msg_t *msg__from_envelope(uint64_t seq, const uint8_t *data, size_t len);
/* Places the deliveries of a newly committed message: in memory for an online mailbox with
 * room, else counted as waiting in the store. Pushes what it can. */
void delivery__route(broker_t *b, msg_t *m);
/* A commit completed: its deliveries that were settling are now final in the store. */
void mailbox__settled(broker_t *b, keyvec_t *keys);
/* Sends queued deliveries and receipts to the mailbox's session within its window. */
void delivery__pump(broker_t *b, mailbox_t *mb);
/* Restores a receipt owed (recovery). 0 or -ENOMEM. */
int delivery__restore_receipt(broker_t *b, uint64_t id, const char *address, const uint8_t *frame,
                              size_t len);
/* Sends d to session s (bookkeeping, state, audit, DELIVERED receipt). 0, or -1 when the
 * send failed, in which case s is closed (still readable, s->closing) and d is in its
 * queue. */
int delivery__send(broker_t *b, delivery_t *d, session_t *s);
/* Owes the sender of m a receipt about recipient (claimed_by: the pool member who handled
 * or claimed it, or NULL). Kept until the sender acknowledges it. */
void delivery__receipt(broker_t *b, const msg_t *m, const char *recipient, int status,
                       const char *reason, const char *claimed_by);
/* The next delivery a mailbox should send (URGENT first), or NULL. */
delivery_t *delivery__next_queued(mailbox_t *mb);
/* Puts d back into its mailbox queue at its place in acceptance order. */
void delivery__queue_in_order(delivery_t *d);

/* ---- pool.c ------------------------------------------------------------------------ */

/* Gives queued pool deliveries to members with room (ANYCAST: the least loaded). */
void pool__pump(broker_t *b, mailbox_t *pool);
/* A member refused d: hands it to the next member and returns true, or returns false when
 * every member has refused (the refusal is final). */
bool pool__pass_on(broker_t *b, delivery_t *d, session_t *member);
/* A member connected: its pools may have work for it, and offers not yet claimed. */
void pool__member_online(broker_t *b, session_t *s);
/* Claim{message_id} from s: grants the offer if it is still open. */
void pool__claim(broker_t *b, session_t *s, const Relais__V1__Claim *claim);
/* An Ack for something s was only offered: a decline. True if it was an offer. */
bool pool__offer_answered(broker_t *b, session_t *s, const uint8_t *message_id);
/* s is closing: its open offers go (others still hold theirs). */
void pool__session_closed(broker_t *b, session_t *s);
/* An OFFER delivery expires unclaimed: withdraws its offers. True if it was unclaimed. */
bool pool__expire_offers(broker_t *b, delivery_t *d);
/* Periodic: pools whose work went back to the queue (a member left) find another member. */
void pool__tick(broker_t *b);

/* A session opened: sends the receipts owed to its address, then its queue. */
void delivery__session_opened(broker_t *b, session_t *s);
void delivery__ack(broker_t *b, session_t *s, const Relais__V1__Ack *ack);
/* A session ends: its in-flight deliveries go back to the queue, and the mailbox's
 * in-memory queue goes back to the store (paged in again by the next session). */
void delivery__session_closed(broker_t *b, session_t *s);
/* Sends again what a session left unacknowledged longer than the ack timeout. */
void delivery__check_ack_timeouts(broker_t *b, session_t *s, int64_t mono);
/* now: business time (expiry); mono: transport time (retries). */
void delivery__tick(broker_t *b, int64_t now, int64_t mono);
void delivery__free_all(broker_t *b);
/* Expires a delivery held in memory / one only in the store (receipt to the sender). */
void delivery__expire(broker_t *b, delivery_t *d);
void delivery__expire_stored(broker_t *b, msg_t *m, mailbox_t *mb, const store_row_t *row);

/* ---- msg.c ------------------------------------------------------------------------- */

void msg__free(msg_t *m);
/* Drops one in-memory reference; the message goes when none is left. */
void msg__unref(broker_t *b, msg_t *m);
/* Makes the message findable by seq (broker.msgs). 0 or -ENOMEM. */
int msg__index(broker_t *b, msg_t *m);

/* ---- delivery.c: deliveries in memory ----------------------------------------------- */

/* A delivery of m to mb, in memory (takes a reference on m); NULL if none is free. */
delivery_t *delivery__new(msg_t *m, mailbox_t *mb);
delivery_t *delivery__find(msg_t *m, const mailbox_t *mb);
/* Drops what a delivery holds on mailboxes (its own, pool members it names): before it is
 * freed. */
void delivery__release(delivery_t *d);
/* Frees a delivery no longer in any list, and its reference on the message. */
void delivery__free(broker_t *b, delivery_t *d);
/* A pool delivery names a member mailbox (claimed by it, or refused by it): the mailbox is
 * kept while a delivery names it. */
void delivery__set_claimed(delivery_t *d, mailbox_t *member);
void delivery__add_tried(delivery_t *d, mailbox_t *member);

/* ---- mailbox.c --------------------------------------------------------------------- */

/* The mailbox of address; created (a pool's for service: addresses) when create is true. */
mailbox_t *mailbox__get(broker_t *b, const char *address, bool create);
/* Whether a delivery reached a final state not yet committed; marking one so. */
bool mailbox__settling(broker_t *b, uint64_t seq, const char *recipient);
void mailbox__settle(broker_t *b, uint64_t seq, const char *recipient);
/* Reads the next page of a mailbox's priority-p backlog from the store. */
void mailbox__page_in(broker_t *b, mailbox_t *mb, int p);
/* Sends the queues of sessionless mailboxes back to the store, each once every state
 * change of its deliveries has committed (so the store has the latest attempt); a mailbox
 * left with nothing at all (no backlog, receipt or reference) is freed, so the memory of
 * agents that came and went is given back. */
void mailbox__evict_idle(broker_t *b);
/* Expires what is past its deadline, in memory or only in the store. */
void mailbox__expiry_sweep(broker_t *b, int64_t now);

#endif /* RELAIS_BROKER_H */
