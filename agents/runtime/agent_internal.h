/*
 * Agent runtime internals: the agent object and the functions its files share.
 *
 * The runtime is split by concern: agent.c (lifecycle, threads, shutdown), conn.c (the
 * DEALER socket and its monitor on the loop, draining, heartbeats, reconnects), session.c
 * (what each received frame means), send.c (submissions and replies), timer.c (business
 * timers), outbox.c and dedup.c (the two pieces of state that a later change makes
 * persistent, kept behind small interfaces for that reason). Everything here runs on the
 * agent's loop thread, except the fields marked "under mu".
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

/* ---- Outbox: unconfirmed submissions, in submission order ------------------------- */

typedef struct agent_outbox agent_outbox_t;

typedef struct agent_outbox_entry {
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    uint8_t *frame; /* the packed Submit Frame, sent as is on every attempt */
    size_t frame_len;
    relais_send_cb cb;
    void *ud;
    struct agent_outbox_entry *prev, *next;
} agent_outbox_entry_t;

/* Creates an empty outbox. 0 or -ENOMEM. */
int agent__outbox_new(agent_outbox_t **out);

/* Frees the outbox and any entry left in it without calling callbacks. Accepts NULL. */
void agent__outbox_destroy(agent_outbox_t **outbox);

/*
 * Appends a submission. On success the outbox owns *frame (and *frame is set to NULL);
 * on failure (-ENOMEM) the caller still owns it. 0 or -ENOMEM.
 */
int agent__outbox_push(agent_outbox_t *outbox, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                       uint8_t **frame, size_t frame_len, relais_send_cb cb, void *ud);

/*
 * Removes the entry for message id and hands it to the caller, who frees it with
 * agent__outbox_entry_free(). NULL when no entry has that id (a late or duplicate answer).
 */
agent_outbox_entry_t *agent__outbox_take(agent_outbox_t *outbox, const uint8_t *id, size_t id_len);

/* Removes and returns the oldest entry, or NULL when empty; the caller frees it. */
agent_outbox_entry_t *agent__outbox_take_first(agent_outbox_t *outbox);

/* The oldest entry (still owned by the outbox), or NULL; iterate with ->next. */
const agent_outbox_entry_t *agent__outbox_first(const agent_outbox_t *outbox);

/* Number of unconfirmed submissions. */
size_t agent__outbox_count(const agent_outbox_t *outbox);

/* Frees an entry taken out of the outbox and sets *entry to NULL. Accepts NULL. */
void agent__outbox_entry_free(agent_outbox_entry_t **entry);

/* ---- Dedup window: deliveries already handled ------------------------------------- */

typedef struct agent_dedup agent_dedup_t;

/* Creates a window remembering the last `capacity` deliveries. 0 or -ENOMEM. */
int agent__dedup_new(agent_dedup_t **out, size_t capacity);

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
 * Ids longer than RELAIS_MESSAGE_ID_LEN are not remembered (the broker never sends one).
 * 0 or -ENOMEM.
 */
int agent__dedup_remember(agent_dedup_t *dedup, const char *sender, const uint8_t *id,
                          size_t id_len, relais_outcome_t outcome);

/* ---- The agent --------------------------------------------------------------------- */

typedef struct agent_timer agent_timer_t;
typedef struct agent_post agent_post_t;

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
    relais_agent_state_t state;
    bool state_reported;
    uint64_t last_send; /* uv_now() of our last frame out */
    uint64_t last_recv; /* uv_now() of the last frame in, or of the handshake */

    /* Application. */
    agent_handler_t handlers[AGENT_MAX_BODY_CASE];
    relais_receipt_fn receipt_fn;
    void *receipt_ud;
    relais_state_fn state_fn;
    void *state_ud;
    agent_outbox_t *outbox;
    agent_dedup_t *dedup;
    agent_timer_t *timers; /* pending business timers */
    uint64_t next_timer_id;

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

/* Calls every unconfirmed submission's callback with status and empties the outbox. */
void agent__session_fail_all(relais_agent_t *agent, int status);

/* ---- timer.c ----------------------------------------------------------------------- */

/* Closes every pending business timer without calling it. */
void agent__timers_close_all(relais_agent_t *agent);

#endif /* RELAIS_AGENT_INTERNAL_H */
