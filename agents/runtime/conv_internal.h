/*
 * Conversation tracking internals: the state machines as pure functions over a conv_t
 * (conv_machine.c and conv_parts.c, no agent, no I/O, unit-tested table by table), their deadlines
 * (conv_deadline.c computes and arms them, conv_machine.c decides what each state waits
 * for), and the glue that feeds them what the agent sends and receives (conv.c). The state
 * file stores a conv_t as one row plus one row per part (state.c).
 */
#ifndef RELAIS_CONV_INTERNAL_H
#define RELAIS_CONV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relais/conversation.h"

/* Request ids, task ids, encounter ids, patient ids and item labels are cut to this. */
#define CONV_TEXT_MAX 128

/* Flags of a conversation's current step (and of a follow-up item's). */
#define CONV_F_REMINDED 1u
#define CONV_F_ESCALATED 2u
/* Of the whole request, kept across steps: it went to the coordinator once already, and
 * an appointment or care task is escalated at most once (the coordinator then decides). */
#define CONV_F_ESCALATED_ONCE 4u
#define CONV_F_STICKY CONV_F_ESCALATED_ONCE

/* A preadmission candidate, a follow-up item, or (requester of an appointment or care task)
 * a candidate that already had the request: every address it was sent to, and every pool
 * member who claimed or answered it. Its state is where that candidate left it. */
typedef struct conv_part {
    char key[RELAIS_ADDRESS_MAX];
    char label[CONV_TEXT_MAX];
    relais_conv_state_t state;
    unsigned flags; /* items: CONV_F_… of their own due date */
    int64_t due_ms; /* item: due date; candidate: admission date it gave */
    int64_t updated_ms;
    uint8_t ref[RELAIS_MESSAGE_ID_LEN]; /* item: linked conversation; candidate: our last
                                         * request to it (receipts and rejections name it) */
    bool has_ref;
} conv_part_t;

typedef struct conv {
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    relais_conv_kind_t kind;
    relais_conv_role_t role;
    relais_conv_state_t state;
    relais_conv_state_t prev_state; /* before the last transition (0: none) */
    unsigned flags;                 /* CONV_F_… of the current step */
    unsigned redispatches;
    char counterpart[RELAIS_ADDRESS_MAX];
    char request_id[CONV_TEXT_MAX];
    char patient[CONV_TEXT_MAX];
    char reason[RELAIS_REASON_MAX];
    int64_t opened_ms, updated_ms;
    int64_t entered_ms;  /* when the current state began: the step's window opens */
    int64_t deadline_ms; /* 0: nothing awaited */
    int64_t due_ms;      /* what the last message said: held_until, slot end, task due date */
    uint8_t last_msg[RELAIS_MESSAGE_ID_LEN]; /* the message that made the last transition */
    int last_body;                           /* its body case (0: none) */
    bool last_out;                           /* we sent it: a rejection undoes it */
    uint8_t *opening; /* requester of an appointment or care task: the packed request
                       * Envelope, re-sent on redispatch */
    size_t opening_len;
    conv_part_t *parts;
    size_t nparts;

    /* Runtime only, never stored. */
    uint64_t timer_id; /* 0: none armed */
    uint32_t version;  /* bumped by each transition, to tell whether a handler sent */
    struct conv *next;
} conv_t;

typedef enum conv_verdict {
    CONV_UNTRACKED = 0, /* not a conversation message (a Note, an Escalation) */
    CONV_APPLIED,       /* a valid transition, now in the conv_t */
    CONV_STALE,         /* repeats what the conversation knows: nothing changes */
    CONV_REFUSED,       /* not a valid transition: the reason says why */
} conv_verdict_t;

typedef struct conv_event {
    const Relais__V1__Envelope *env; /* with its message id; sender set when incoming */
    bool outgoing;
    bool redispatch; /* the SDK re-sends the request to a next candidate */
    const char *self;
    int64_t now_ms;
} conv_event_t;

/* ---- conv_machine.c and conv_parts.c: the state machines --------------------------- */

/* The kind of conversation a body belongs to, or 0 for bodies outside them. */
relais_conv_kind_t conv__kind_of(int body_case);

/* True for the bodies that open a conversation (the requests and the discharge notice). */
bool conv__opens(int body_case);

/* The conversation an envelope belongs to: conversation_id, else its own message id. */
void conv__id_of(const Relais__V1__Envelope *env, uint8_t out[RELAIS_MESSAGE_ID_LEN]);

/* The request, task or encounter id a body carries ("" for none). */
const char *conv__body_request_id(const Relais__V1__Envelope *env);

/* Allocation helpers. conv__free accepts NULL and sets *c to NULL. */
conv_t *conv__new(void);
void conv__free(conv_t **c);
conv_t *conv__clone(const conv_t *c);
/* Moves src's content into dst, keeping dst's runtime fields, and frees src. */
void conv__replace(conv_t *dst, conv_t **src);
/* Appends a part; returns it, or NULL on -ENOMEM. */
conv_part_t *conv__add_part(conv_t *c, const char *key, const char *label,
                            relais_conv_state_t state, int64_t due_ms, int64_t now_ms);
conv_part_t *conv__find_part(conv_t *c, const char *key);

/* Label of the parts that record an appointment's or care task's candidates. */
#define CONV_CANDIDATE_LABEL "candidate"

/*
 * Records that addr had c's request (an appointment or care task on the requester's side),
 * leaving it in state; an address already recorded is updated. False on -ENOMEM.
 */
bool conv__note_candidate(conv_t *c, const char *addr, relais_conv_state_t state, int64_t now_ms);

/* True when addr already had c's request (sent to it, claimed or answered by it). */
bool conv__tried(const conv_t *c, const char *addr);

/* The end of the request's own window (TimeWindow.due_by_ms of the opening request), or 0
 * when it has none: past it, the request is not offered to anyone as if it were fresh. */
int64_t conv__window_end(const conv_t *c);

/*
 * A message that would open a new conversation. APPLIED with a new conv_t in *out, or
 * REFUSED with a reason (a body that does not open one: "an offer for an unknown request"),
 * or UNTRACKED.
 */
conv_verdict_t conv__open(const conv_event_t *ev, conv_t **out, char *reason, size_t reason_len);

/* A message in an existing conversation: APPLIED (c changed), STALE or REFUSED (c intact). */
conv_verdict_t conv__advance(conv_t *c, const conv_event_t *ev, char *reason, size_t reason_len);

/*
 * What the broker said about one of our messages in c: delivered (the provider has the
 * request), undeliverable (refused or expired at the recipient), or rejected at submission
 * (the transition it made is undone). True when c changed.
 */
bool conv__on_delivered(conv_t *c, const uint8_t *msg_id, const char *recipient, int64_t now_ms);
bool conv__on_undeliverable(conv_t *c, const uint8_t *msg_id, const char *recipient,
                            const char *why, int64_t now_ms);
bool conv__on_rejected(conv_t *c, const uint8_t *msg_id, const char *why, int64_t now_ms);

/* Helpers the two machine files share. */
conv_verdict_t conv__refuse(char *reason, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void conv__copy(char *dst, size_t cap, const char *src);
/* Moves c to state `to` (a new step: flags cleared, window restarted) unless it is there. */
void conv__enter(conv_t *c, relais_conv_state_t to, int64_t now_ms);
void conv__part_enter(conv_part_t *p, relais_conv_state_t to, int64_t now_ms);
/* Records ev's message as the one that made c's last transition. */
void conv__note(conv_t *c, const conv_event_t *ev);
/* Who sent ev: our own role for a send, the other side's for a delivery. */
relais_conv_role_t conv__sender_role(const conv_t *c, const conv_event_t *ev);
/* The requester's summary of its preadmission candidates (before the choice). */
relais_conv_state_t conv__derive_preadmission(const conv_t *c);
conv_verdict_t conv__advance_preadmission(conv_t *c, const conv_event_t *ev, char *reason,
                                          size_t len);
conv_verdict_t conv__advance_discharge(conv_t *c, const conv_event_t *ev, char *reason, size_t len);

/* A discharge item follows its linked child conversation. True when d changed. */
bool conv__follow_child(conv_t *d, const conv_t *child, int64_t now_ms);

/* True while c waits for something (it has a step with a deadline). */
bool conv__is_open(const conv_t *c);

/* True when the next move is the counterpart's. */
bool conv__waiting_on_counterpart(const conv_t *c);

/* True when this side escalates a missed deadline of c's current step. */
bool conv__escalates(const conv_t *c);

/* True when a next candidate may take c's request over (redispatch policy applies). */
bool conv__may_redispatch(const conv_t *c);

/*
 * Sets c's deadline for its current step from the options (normalised: no zero window)
 * and what the messages said; 0 when nothing is awaited. Discharges take the earliest
 * due date of their open items not yet escalated, and mirror that item's flags.
 */
void conv__schedule(conv_t *c, const relais_conv_options_t *opts);

/* When the reminder runs for c's current step (0: none, or fraction < 0). */
int64_t conv__reminder_at(const conv_t *c, double fraction);

/* Sets flag on c's current step (and on the item it is about, for a discharge). */
void conv__mark(conv_t *c, const relais_conv_options_t *opts, unsigned flag);

/* The follow-up item a discharge's current deadline is about, or NULL. */
conv_part_t *conv__current_item(const conv_t *c, const relais_conv_options_t *opts);

/* Who is late when c's deadline passes, written to out (RELAIS_ADDRESS_MAX). */
void conv__responsible(const conv_t *c, const char *self, char *out);

/* Fills info (and parts, c->nparts entries) for the application. */
void conv__info(const conv_t *c, double fraction, relais_conv_info_t *info,
                relais_conv_part_t *parts);

/* ---- The agent's side (conv.c, conv_deadline.c) ------------------------------------ */

/* Which kind of send the SDK itself is making (agent_conv.internal). */
enum {
    CONV_SEND_APP = 0,       /* the application's: checked and tracked */
    CONV_SEND_UNTRACKED = 1, /* the cancel to a provider a request was taken from */
    CONV_SEND_REDISPATCH = 2 /* the request again, to the next candidate */
};

typedef struct agent_conv agent_conv_t; /* also declared by agent_internal.h (C11 allows it) */

struct agent_conv {
    relais_conv_options_t opts; /* normalised: every window set */
    char coordinator[RELAIS_ADDRESS_MAX];
    relais_conv_hooks_t hooks;
    conv_t *head, *tail;  /* oldest first */
    conv_t *delivering;   /* the conversation a handler is running for (not forgettable) */
    int internal;         /* CONV_SEND_… */
    bool sending_cancels; /* conv__send_owed_cancels() is running: no re-entry */
    char refusal[RELAIS_REASON_MAX];
};

/* The tracked conversation with this id, or NULL. */
conv_t *conv__lookup(agent_conv_t *cv, const uint8_t id[RELAIS_MESSAGE_ID_LEN]);

/* Writes c to the state file when there is one; failures are logged. 0 or RELAIS_ESTORE. */
int conv__persist(relais_agent_t *agent, const conv_t *c);

/* Tells the application c changed from old (when it did), and updates the discharge plans
 * that follow c. */
void conv__notify(relais_agent_t *agent, conv_t *c, relais_conv_state_t old);

/* Calls fn with c's info (its parts in a temporary array). */
void conv__with_info(relais_agent_t *agent, const conv_t *c,
                     void (*fn)(relais_agent_t *agent, const relais_conv_info_t *info, void *ud),
                     void *ud);

/* conv_deadline.c: (re)arms c's one timer for its next reminder or deadline, or none. */
void conv__arm(relais_agent_t *agent, conv_t *c);
void conv__disarm(relais_agent_t *agent, conv_t *c);

/*
 * Asks the redispatch hook for a next candidate for c's request and, given one, sends the
 * request there in the same conversation (after a cancel to the current provider when
 * cancel_current). True when it was re-dispatched.
 */
bool conv__try_redispatch(relais_agent_t *agent, conv_t *c, bool cancel_current);
/* Sends the Escalation for c's current step now (and marks the step escalated). */
void conv__escalate(relais_agent_t *agent, conv_t *c);

/* Sends the PreadmissionCancel owed to each candidate left behind by a choice. */
void conv__send_owed_cancels(relais_agent_t *agent, conv_t *c);

#endif /* RELAIS_CONV_INTERNAL_H */
