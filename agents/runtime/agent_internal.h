/*
 * Agent runtime internals: the agent object and the functions its files share.
 *
 * The runtime is split by concern: agent.c (lifecycle, threads, shutdown), conn.c (the
 * DEALER socket and its monitor on the loop, draining, heartbeats, reconnects), session.c
 * (what each received frame means), send.c (submissions and replies), timer.c (business
 * timers), outbox.c and dedup.c (the two pieces of state that must survive the agent's
 * crash when it has a state file), state.c (that file: SQLite, every SQL statement of the
 * agent). The outbox and the dedup window always work on memory; given a state file they
 * load it when the agent is created and write through to it. Conversation tracking
 * (relais_conv_enable) is conv.c, fed by send.c and session.c, with its state machines in
 * conv_machine.c and conv_steps.c (conv_internal.h) and its deadlines in conv_deadline.c.
 * Everything here runs on the agent's loop thread, except the fields marked "under mu".
 */
#ifndef RELAIS_AGENT_INTERNAL_H
#define RELAIS_AGENT_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>

#include "relais/agent.h"

/* Body cases of the schema are below this bound; the handler table is indexed by them. */
#define AGENT_MAX_BODY_CASE 64

/* Deliveries remembered by the dedup window. */
#define AGENT_DEDUP_CAPACITY 4096

/* Bounds of the backoff between two attempts to open a fresh session after a failure. */
#define AGENT_BACKOFF_MIN_MS 100
#define AGENT_BACKOFF_MAX_MS 2000

/*
 * Bounds of the backoff between two secure handshakes after the broker refused one (key
 * not enrolled, wrong broker key): such a refusal lasts until an operator acts, and every
 * attempt costs the broker a journal record, so attempts thin out to one per 30 s.
 */
#define AGENT_REFUSED_BACKOFF_MIN_MS 1000
#define AGENT_REFUSED_BACKOFF_MAX_MS 30000

/* Why the agent cannot connect, as last reported (each is said once, until it changes). */
typedef enum agent_problem {
    AGENT_PROBLEM_NONE = 0,
    AGENT_PROBLEM_NOT_LISTENING,  /* TCP connection refused or unanswered */
    AGENT_PROBLEM_KEY_REFUSED,    /* ZAP status 400: the agent's key is not in the directory */
    AGENT_PROBLEM_SERVER_KEY,     /* the broker dropped our CURVE HELLO: wrong broker key */
    AGENT_PROBLEM_MECHANISM,      /* CURVE on one side only */
    AGENT_PROBLEM_HANDSHAKE,      /* any other failed handshake */
} agent_problem_t;

/* ---- State file: SQLite, written through by the outbox and the dedup window -------- */

typedef struct agent_state agent_state_t;

/*
 * Opens (creating it if needed) the state file at path for the agent `address`, locks it
 * for this connection until agent__state_close(), and brings its schema up to date.
 * Returns 0, -EBUSY when another agent or process holds the file, RELAIS_ECONFIG when it
 * belongs to another address or has a newer schema, RELAIS_ESTORE when it cannot be opened,
 * read or written (the reason is logged), or -ENOMEM.
 */
int agent__state_open(agent_state_t **out, const char *path, const char *address);

/* Closes the file and releases its lock. Accepts NULL and sets *state to NULL. */
void agent__state_close(agent_state_t **state);

/* The path the state was opened with, for log lines. */
const char *agent__state_path(const agent_state_t *state);

/* Receives one stored submission; a non-zero return stops the load and is returned. */
typedef int (*agent_state_outbox_fn)(void *ud, int64_t seq, const uint8_t *id, size_t id_len,
                                     const uint8_t *frame, size_t frame_len);

/* Calls fn for every stored submission, oldest first. 0, fn's error, or RELAIS_ESTORE. */
int agent__state_outbox_load(agent_state_t *state, agent_state_outbox_fn fn, void *ud);

/*
 * Durably records a submission (its packed Submit frame), deleting the rows in `deletes`
 * in the same transaction; *seq_out receives the row's sequence number, which orders the
 * outbox. Returns only after the commit reached the disk: 0 or RELAIS_ESTORE (nothing
 * written).
 */
int agent__state_outbox_insert(agent_state_t *state, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                               const uint8_t *frame, size_t frame_len, const int64_t *deletes,
                               size_t ndeletes, int64_t *seq_out);

/* Deletes answered submissions by sequence number in one transaction. 0 or RELAIS_ESTORE. */
int agent__state_outbox_delete(agent_state_t *state, const int64_t *seqs, size_t n);

/* Receives one remembered delivery; a non-zero return stops the load and is returned. */
typedef int (*agent_state_dedup_fn)(void *ud, const char *sender, const uint8_t *id, size_t id_len,
                                    int outcome);

/* Calls fn for the newest `limit` remembered deliveries, oldest first. 0, fn's error or
 * RELAIS_ESTORE. */
int agent__state_dedup_load(agent_state_t *state, size_t limit, agent_state_dedup_fn fn, void *ud);

/*
 * Durably records that (sender, id) was handled with outcome, and forgets the rows more
 * than `keep` entries older. Returns only after the commit reached the disk: 0 or
 * RELAIS_ESTORE.
 */
int agent__state_dedup_insert(agent_state_t *state, const char *sender, const uint8_t *id,
                              size_t id_len, int outcome, size_t keep);

/*
 * Opens one transaction that the following writes join (each function's own begin and
 * commit fold into it) until agent__state_release(), which commits when rc is 0 and no
 * write inside failed, and rolls back otherwise. Accepts a NULL state (no-op). 0,
 * -EALREADY when a transaction is already held, or RELAIS_ESTORE.
 */
int agent__state_hold(agent_state_t *state);

/* Ends the held transaction; returns rc, the first failure inside, or the commit's. */
int agent__state_release(agent_state_t *state, int rc);

struct conv;

/* Records a tracked conversation (its row and its parts), replacing what was there.
 * 0 or RELAIS_ESTORE. */
int agent__state_conv_save(agent_state_t *state, const struct conv *c);

/* Forgets a conversation. 0 or RELAIS_ESTORE. */
int agent__state_conv_delete(agent_state_t *state, const uint8_t id[RELAIS_MESSAGE_ID_LEN]);

/* Receives one stored conversation, oldest first; it may take *c (setting it to NULL). A
 * non-zero return stops the load and is returned. */
typedef int (*agent_state_conv_fn)(void *ud, struct conv **c);

/* Calls fn for every stored conversation. 0, fn's error, -ENOMEM or RELAIS_ESTORE. */
int agent__state_conv_load(agent_state_t *state, agent_state_conv_fn fn, void *ud);

/* ---- Outbox: unconfirmed submissions, in submission order ------------------------- */

typedef struct agent_outbox agent_outbox_t;

typedef struct agent_outbox_entry {
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    uint8_t *frame; /* the packed Submit Frame, sent as is on every attempt */
    size_t frame_len;
    relais_send_cb cb;
    void *ud;
    int64_t seq;    /* its row in the state file; 0 without one */
    bool recovered; /* loaded from the state file: a previous run submitted it, and its
                     * outcome goes to the agent's on_recovered callback, not to cb */
    struct agent_outbox_entry *prev, *next;
} agent_outbox_entry_t;

/*
 * Creates an outbox, in memory only when state is NULL. With a state file, the submissions
 * a previous run left unanswered are loaded first, in their order, marked recovered (a row
 * that does not hold a well-formed Submit frame is logged and dropped). The outbox does not
 * own state. 0, -ENOMEM, or a state file error.
 */
int agent__outbox_new(agent_outbox_t **out, agent_state_t *state);

/*
 * Frees the outbox and any entry left in memory without calling callbacks, after a last
 * attempt to forget answered submissions in the state file. Accepts NULL.
 */
void agent__outbox_destroy(agent_outbox_t **outbox);

/*
 * Appends a submission. With a state file it is durably recorded before this returns 0
 * (together with the deletions agent__outbox_take() left pending). On success the outbox
 * owns *frame (and *frame is set to NULL); on failure the caller still owns it and nothing
 * was recorded. 0, -ENOMEM or RELAIS_ESTORE.
 */
int agent__outbox_push(agent_outbox_t *outbox, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                       uint8_t **frame, size_t frame_len, relais_send_cb cb, void *ud);

/*
 * The broker answered: removes the entry for message id and hands it to the caller, who
 * frees it with agent__outbox_entry_free(). With a state file its row is deleted by the next
 * agent__outbox_flush() or push, so that a turn's answers cost one transaction; a crash in
 * between makes the next run resend it, and the broker answers it as a duplicate. NULL
 * when no entry has that id (a late or duplicate answer).
 */
agent_outbox_entry_t *agent__outbox_take(agent_outbox_t *outbox, const uint8_t *id, size_t id_len);

/*
 * The agent gives up on the oldest entry in this process (it is stopping): removes and
 * returns it, or NULL when empty; the caller frees it. With a state file the submission
 * stays recorded there, unanswered, for the next run to resend.
 */
agent_outbox_entry_t *agent__outbox_take_first(agent_outbox_t *outbox);

/*
 * Deletes from the state file, in one transaction, the submissions answered since the last
 * flush. Called once per loop turn. 0, or RELAIS_ESTORE (they stay pending for the next
 * attempt). Always 0 without a state file.
 */
int agent__outbox_flush(agent_outbox_t *outbox);

/* The oldest entry (still owned by the outbox), or NULL; iterate with ->next. */
const agent_outbox_entry_t *agent__outbox_first(const agent_outbox_t *outbox);

/* Number of unconfirmed submissions. */
size_t agent__outbox_count(const agent_outbox_t *outbox);

/*
 * Takes back the newest entry, which must have id, as if it had never been pushed: its row
 * is not queued for deletion (the transaction that recorded it was rolled back, and its
 * sequence number may be reused). Frees it. True when it was the newest entry.
 */
bool agent__outbox_unpush(agent_outbox_t *outbox, const uint8_t id[RELAIS_MESSAGE_ID_LEN]);

/* Frees an entry taken out of the outbox and sets *entry to NULL. Accepts NULL. */
void agent__outbox_entry_free(agent_outbox_entry_t **entry);

/* ---- Dedup window: deliveries already handled ------------------------------------- */

typedef struct agent_dedup agent_dedup_t;

/*
 * Creates a window remembering the last `capacity` deliveries, in memory only when state is
 * NULL. With a state file the window a previous run left is loaded, and every entry is
 * written through. The window does not own state. 0, -EINVAL, -ENOMEM, or a state file
 * error.
 */
int agent__dedup_new(agent_dedup_t **out, size_t capacity, agent_state_t *state);

/* Frees the window. Accepts NULL and sets *dedup to NULL. */
void agent__dedup_destroy(agent_dedup_t **dedup);

/*
 * True when (sender, id) was remembered; *outcome then receives the outcome it was
 * acknowledged with the first time.
 */
bool agent__dedup_seen(const agent_dedup_t *dedup, const char *sender, const uint8_t *id,
                       size_t id_len, relais_outcome_t *outcome);

/*
 * Remembers (sender, id) with its final outcome, forgetting the oldest entry when full.
 * With a state file the entry is durably recorded before this returns, so the caller may
 * acknowledge the delivery knowing that a restarted agent will recognise it. Ids longer
 * than RELAIS_MESSAGE_ID_LEN are not remembered (the broker never sends one). 0, -ENOMEM,
 * or RELAIS_ESTORE when the write failed (the entry is then remembered in memory only).
 */
int agent__dedup_remember(agent_dedup_t *dedup, const char *sender, const uint8_t *id,
                          size_t id_len, relais_outcome_t outcome);

/* ---- The agent --------------------------------------------------------------------- */

typedef struct agent_timer agent_timer_t;
typedef struct agent_post agent_post_t;
typedef struct agent_conv agent_conv_t;

/* One connection attempt: a DEALER socket, its monitor, and their poll handles. */
typedef struct agent_conn {
    void *sock;
    void *mon;
    uv_poll_t *sock_poll; /* malloc'd: freed in its close callback */
    uv_poll_t *mon_poll;
} agent_conn_t;

typedef enum agent_phase {
    AGENT_PHASE_NEW = 0, /* created, not started */
    AGENT_PHASE_RUNNING, /* started */
    AGENT_PHASE_CLOSING, /* stop in progress: handles closing */
    AGENT_PHASE_CLOSED,  /* every handle closed */
} agent_phase_t;

typedef struct agent_handler {
    relais_handler_fn fn;
    void *ud;
} agent_handler_t;

struct relais_agent {
    /* Configuration. */
    char *endpoint;
    char *software;
    char curve_server[41], curve_public[41], curve_secret[41]; /* Z85; empty: no CURVE */
    char address[RELAIS_ADDRESS_MAX];
    unsigned credit;
    unsigned heartbeat_ms;
    size_t max_frame_bytes;
    unsigned max_recipients;

    /* Loop and handles that live as long as the agent. */
    uv_loop_t own_loop;
    uv_loop_t *loop;
    bool owns_loop;
    bool ran;
    uv_async_t async;      /* wakes the loop for relais_agent_post() and stop */
    uv_idle_t drain;       /* deferred re-check of ZMQ_EVENTS after sends */
    uv_timer_t tick;       /* heartbeat and liveness */
    uv_timer_t reconnect;  /* delayed reopening of a fresh connection */
    unsigned open_handles; /* handles initialised and not yet through their close cb */
    agent_phase_t phase;

    /* The connection. */
    void *zctx;
    agent_conn_t conn;
    unsigned conn_gen; /* distinguishes monitor endpoints of successive sockets */
    bool conn_failed;  /* a reset is scheduled: stop reading the current socket */
    uint64_t backoff_ms;
    uint64_t refused_backoff_ms; /* next wait after a refused handshake (before jitter) */
    agent_problem_t problem;     /* the cause of failure last reported, until a handshake */
    unsigned handshake_drops;    /* handshakes the broker dropped since the last success */
    uint64_t jitter_state;       /* xorshift state for the backoff's jitter */
    relais_agent_state_t state;
    bool state_reported;
    uint64_t last_send; /* uv_now() of our last frame out */
    uint64_t last_recv; /* uv_now() of the last frame in, or of the handshake */

    /* Application. */
    agent_handler_t handlers[AGENT_MAX_BODY_CASE];
    relais_receipt_fn receipt_fn;
    void *receipt_ud;
    relais_offer_fn offer_fn;
    void *offer_ud;
    relais_withdrawn_fn withdrawn_fn;
    void *withdrawn_ud;
    relais_acked_fn acked_fn;
    void *acked_ud;
    relais_submitted_fn submitted_fn; /* told by agent__conv_on_result() (conv.c) */
    void *submitted_ud;
    struct agent_offer *offers; /* claimed offers awaiting the broker's ClaimResult */
    relais_state_fn state_fn;
    void *state_ud;
    relais_send_cb recovered_fn; /* outcomes of submissions of a previous run */
    void *recovered_ud;
    agent_state_t *state_file; /* NULL without one */
    agent_outbox_t *outbox;
    agent_dedup_t *dedup;
    agent_timer_t *timers; /* pending business timers */
    uint64_t next_timer_id;
    agent_conv_t *conv;    /* conversation tracking; NULL until relais_conv_enable() */

    /* Shared with other threads, under mu. */
    pthread_mutex_t mu;
    agent_post_t *posts_head, *posts_tail;
    bool stop_requested;
    bool posts_closed; /* no post or stop is accepted any more: async is closing */
};

/* ---- agent.c ----------------------------------------------------------------------- */

/* Close callback for the handles embedded in the agent (their data is the agent). */
void agent__handle_closed(uv_handle_t *handle);

/*
 * Accounts for one more closed handle, from the close callback of a handle the agent
 * counted in open_handles; reports STOPPED when it was the last one during a stop.
 */
void agent__handle_released(relais_agent_t *agent);

/* Changes the connection state and tells the application when it differs. */
void agent__set_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail);

/* Changes the connection state and tells the application, even when it is the same (a
 * new reason for being DISCONNECTED). */
void agent__report_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail);

/* ---- conn.c ------------------------------------------------------------------------ */

/* Opens a fresh DEALER socket with its monitor, polls both, connects. 0 or negative. */
int agent__conn_open(relais_agent_t *agent);

/* Stops polling and closes the socket and its monitor. Safe when nothing is open. */
void agent__conn_close(relais_agent_t *agent, bool linger);

/*
 * Abandons the current connection: reports DISCONNECTED with detail and opens a fresh
 * socket (fresh routing id) from a timer, so that no caller finds its socket closed under
 * it: at once, or after the current backoff (which then doubles) when backoff is true.
 */
void agent__conn_reset(relais_agent_t *agent, bool backoff, const char *detail);

/*
 * Encodes and sends a frame on the current socket. 0, RELAIS_ECLOSED when there is no
 * socket, -EAGAIN when ZeroMQ cannot queue it, or an encoding error.
 */
int agent__send_frame(relais_agent_t *agent, const Relais__V1__Frame *frame);

/* Sends an already packed frame. Same returns as agent__send_frame(). */
int agent__send_bytes(relais_agent_t *agent, const uint8_t *data, size_t len);

/* Starts the heartbeat timer at the current heartbeat interval. */
void agent__tick_restart(relais_agent_t *agent);

/* ---- session.c --------------------------------------------------------------------- */

/* The socket finished its ZMTP handshake: say Hello. */
void agent__session_handshake(relais_agent_t *agent);

/* The socket lost its peer. */
void agent__session_disconnected(relais_agent_t *agent, const char *detail);

/* Handles one message body received on the DEALER socket. */
void agent__session_frame(relais_agent_t *agent, const uint8_t *data, size_t len);

/* A delivery that is not (or no longer) an offer: dedup, conversation, handler, Ack. */
void agent__deliver(relais_agent_t *agent, const Relais__V1__Deliver *d);
/* Ack{message_id, outcome, reason} for a delivery. */
void agent__send_ack(relais_agent_t *agent, ProtobufCBinaryData message_id,
                     relais_outcome_t outcome, const char *reason);
/* Whether a handler (or the fallback) takes this body. */
bool agent__has_handler(const relais_agent_t *agent, int body_case);
/* offer.c: an offered Deliver; the broker's ClaimResult and Withdrawn; freeing what waits. */
void agent__offer(relais_agent_t *agent, const Relais__V1__Deliver *d);
void agent__claim_result(relais_agent_t *agent, const Relais__V1__ClaimResult *r);
void agent__withdrawn(relais_agent_t *agent, const Relais__V1__Withdrawn *w);
void agent__offers_free(relais_agent_t *agent);

/* Calls every unconfirmed submission's callback with status and empties the outbox. */
void agent__session_fail_all(relais_agent_t *agent, int status);

/* ---- timer.c ----------------------------------------------------------------------- */

/* Closes every pending business timer without calling it. */
void agent__timers_close_all(relais_agent_t *agent);

/* ---- conv.c: conversation tracking, fed by sends and deliveries ------------------- */

/* What a send does to a tracked conversation, between the check and the commit. */
typedef struct conv_send {
    struct conv *target; /* the conversation it changes, NULL for a new one */
    struct conv *next;   /* its state after the send; NULL when the send changes nothing */
} conv_send_t;

/*
 * Checks a send (with its message id set) against the conversation it belongs to. 0 with
 * *cs filled (cs->next NULL when nothing is tracked or changed), RELAIS_EINVALID when it is
 * not a valid transition (the reason is logged and kept for relais_conv_last_refusal()), or
 * -ENOMEM. Always 0 with tracking off.
 */
int agent__conv_send_check(relais_agent_t *agent, const Relais__V1__Envelope *env,
                           conv_send_t *cs);

/* Writes cs->next to the state file (inside the send's held transaction). 0 or
 * RELAIS_ESTORE; 0 when there is nothing to write. */
int agent__conv_send_save(relais_agent_t *agent, const conv_send_t *cs);

/*
 * Ends a checked send of env: when sent, cs->next becomes the conversation's state
 * (deadlines armed, the application told, a care task linked to the follow-up item it
 * names, cancels owed to other candidates sent); otherwise it is dropped. Empties cs.
 */
void agent__conv_send_done(relais_agent_t *agent, conv_send_t *cs,
                           const Relais__V1__Envelope *env, bool sent);

/* What a delivery did to a tracked conversation, between the handler and the Ack. */
typedef struct conv_delivery {
    struct conv *target;   /* the conversation it changed (in the agent's list) */
    struct conv *snapshot; /* its state before, for an undo; NULL for a new one */
    uint32_t version;      /* target's version right after the delivery applied */
    int old_state;
} conv_delivery_t;

/*
 * Applies a delivery to its conversation before the handler runs. CONV_APPLIED (cd filled),
 * CONV_STALE (acknowledge PROCESSED without the handler), CONV_REFUSED (acknowledge REFUSED
 * with the reason written to reason), or CONV_UNTRACKED (tracking off, or not a
 * conversation message).
 */
int agent__conv_deliver_begin(relais_agent_t *agent, const Relais__V1__Envelope *env,
                              conv_delivery_t *cd, char *reason, size_t reason_len);

/* After the handler, inside the transaction that remembers the delivery: keeps (and
 * writes) the transition when the outcome is PROCESSED, undoes it otherwise unless the
 * handler already sent in that conversation. 0 or RELAIS_ESTORE. */
int agent__conv_deliver_end(relais_agent_t *agent, conv_delivery_t *cd, relais_outcome_t outcome);

/* After that transaction: arms deadlines, tells the application, re-dispatches a declined
 * request where the policy says so. Empties cd. */
void agent__conv_deliver_done(relais_agent_t *agent, conv_delivery_t *cd);

/* The broker answered one of our submissions (status 0: accepted); also tells the
 * relais_agent_on_submitted() observer, with tracking on or off. */
void agent__conv_on_result(relais_agent_t *agent, const uint8_t *message_id, int status,
                           const char *reason);

/* A receipt arrived for one of our messages. */
void agent__conv_on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *receipt);

/* Frees the tracking state (timers are closed with the agent's). Accepts NULL. */
void agent__conv_destroy(agent_conv_t **conv);

#endif /* RELAIS_AGENT_INTERNAL_H */
