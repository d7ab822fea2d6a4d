/*
 * Relais agent SDK: care conversations and their business deadlines.
 *
 * Once tracking is enabled on an agent (relais_conv_enable()), the SDK follows every care
 * conversation the agent takes part in through the state machines of PROTOCOL.md section 5:
 * appointments (request → offer / decline → book → confirm → outcome, cancel at any point),
 * care tasks (request → updates to completed / failed), preadmissions (one request per
 * candidate facility, each accepted / waitlisted / refused; a choice; an admission notice)
 * and discharge follow-ups (a notification's plan, each item tracked to completed / failed
 * through the conversations the application opens for it).
 *
 * Design: the SDK observes; it adds no second way of sending. Every message the agent sends
 * with relais_agent_send() or relais_agent_reply(), and every message delivered to it, is
 * classified by its body type and its conversation (Envelope.conversation_id, or the
 * message id of the message that opened it) and moves that conversation's state machine:
 * - a send that is not a valid transition (booking a declined request, confirming a
 *   cancelled one, an offer for an unknown request) returns RELAIS_EINVALID and sends
 *   nothing; relais_conv_last_refusal() says why;
 * - a delivery that does not fit is acknowledged REFUSED, with a reason naming the
 *   conversation's state and the transition, and never reaches the application's handler;
 * - a delivery that repeats what the conversation already knows (a late duplicate offer, a
 *   second confirmation, a replayed discharge notification) is acknowledged PROCESSED
 *   without calling the handler: the sender's retry is not an error and must not act twice;
 * - a delivery that fits is applied before the handler runs, so that the handler's replies
 *   see the new state; if the handler refuses it (or asks for a retry) without having sent
 *   anything in that conversation, the transition is undone.
 * A transition made by a send counts from the send, not from the broker's Accepted, so a
 * confirmation may arrive before the booking it confirms was acknowledged; if the broker
 * rejects that send, the conversation goes back to the state before it. The state of every
 * conversation is kept in the agent's state file (relais_agent_options_t.state_path), in
 * the same transaction as the submission or the handled delivery that changed it, so it
 * and its deadlines survive the agent's restart.
 *
 * Deadlines: every open step has one (defaults per step in relais_conv_options_t, bounded
 * by what the messages say: an offer's held_until_ms, the appointment slot's end, a care
 * task's or follow-up item's due date). At `reminder_fraction` of the window the
 * application's on_reminder hook runs. At the deadline the side that waits on the other
 * (the requester waiting for an answer, the provider waiting for a booking…) first asks the
 * redispatch hook, where the policy allows it (an appointment or care task still unanswered,
 * or declined, or undeliverable): a next candidate gets the same request in the same
 * conversation (the first one gets a cancel); otherwise an Escalation goes to the CPTS
 * coordinator (options.coordinator) and on_escalation runs. A request tries each candidate
 * at most once (a pool and the member who took it both count), is not offered to anyone
 * once its own window has passed, and is escalated at most once: a request every candidate
 * declined or rejected goes to the coordinator at once, who decides. Discharge follow-up items that
 * are not completed by their due date are escalated by the agent that received the plan.
 *
 * Threading rule: as for agent.h, every function here runs on the agent's loop thread.
 * Pointers handed to hooks and visitors are valid only during the call.
 */
#ifndef RELAIS_CONVERSATION_H
#define RELAIS_CONVERSATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relais/agent.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum relais_conv_kind {
    RELAIS_CONV_APPOINTMENT = 1,  /* AppointmentRequest … AppointmentOutcome */
    RELAIS_CONV_CARE_TASK = 2,    /* CareTaskRequest … CareTaskUpdate */
    RELAIS_CONV_PREADMISSION = 3, /* PreadmissionRequest … AdmissionNotice */
    RELAIS_CONV_DISCHARGE = 4,    /* DischargeNotification and its follow-up plan */
} relais_conv_kind_t;

/* The agent's side: the requester sent the message that opened the conversation. */
typedef enum relais_conv_role {
    RELAIS_CONV_REQUESTER = 1,
    RELAIS_CONV_PROVIDER = 2,
} relais_conv_role_t;

/*
 * States of conversations, of preadmission candidates and of follow-up items. Which ones a
 * kind uses is in PROTOCOL.md section 5 and docs/CONVERSATIONS.md.
 */
typedef enum relais_conv_state {
    RELAIS_CONV_REQUESTED = 1,      /* sent; no answer yet */
    RELAIS_CONV_RECEIVED = 2,       /* the provider has it (delivered, or a receipt said so) */
    RELAIS_CONV_OFFERED = 3,        /* appointment: slots offered */
    RELAIS_CONV_DECLINED = 4,       /* appointment: the provider declined */
    RELAIS_CONV_BOOKED = 5,         /* appointment: a slot was booked */
    RELAIS_CONV_CONFIRMED = 6,      /* appointment: the provider confirmed the booking */
    RELAIS_CONV_FULFILLED = 7,      /* appointment outcome: it took place */
    RELAIS_CONV_NOSHOW = 8,         /* appointment outcome: the patient did not come */
    RELAIS_CONV_CANCELLED = 9,      /* cancelled by either side */
    RELAIS_CONV_ACCEPTED = 10,      /* care task or preadmission candidate accepted */
    RELAIS_CONV_WAITLISTED = 11,    /* preadmission candidate: on the waiting list */
    RELAIS_CONV_REFUSED = 12,       /* preadmission candidate refused (or every one did) */
    RELAIS_CONV_CHOSEN = 13,        /* preadmission: the requester chose this facility */
    RELAIS_CONV_ADMITTED = 14,      /* preadmission: admission notice received */
    RELAIS_CONV_IN_PROGRESS = 15,   /* care task */
    RELAIS_CONV_REJECTED = 16,      /* care task rejected by the provider */
    RELAIS_CONV_COMPLETED = 17,     /* care task, follow-up item, or a whole discharge plan */
    RELAIS_CONV_FAILED = 18,        /* care task or follow-up item failed */
    RELAIS_CONV_NOTIFIED = 19,      /* discharge: notification sent or received, plan open */
    RELAIS_CONV_PENDING = 20,       /* follow-up item: no request opened for it yet */
    RELAIS_CONV_UNDELIVERABLE = 21, /* the request was refused by the recipient or expired */
    RELAIS_CONV_CANCELLING = 22,    /* preadmission candidate: a cancel is owed to it */
} relais_conv_state_t;

/* A preadmission candidate or a discharge follow-up item. */
typedef struct relais_conv_part {
    const char *key;   /* candidate: facility address; item: item_id */
    const char *label; /* item: "role/specialty: action"; candidate: "" */
    relais_conv_state_t state;
    int64_t updated_at_ms;
    int64_t due_by_ms;           /* item: its window's due date; 0 when none */
    const uint8_t *conversation; /* item: the conversation opened for it (16 bytes) or NULL */
} relais_conv_part_t;

/* What the SDK knows of one conversation. */
typedef struct relais_conv_info {
    const uint8_t *id; /* 16 bytes */
    relais_conv_kind_t kind;
    relais_conv_role_t role;
    relais_conv_state_t state;
    const char *counterpart; /* the other party (for a preadmission requester: the chosen
                              * facility, or "" before the choice) */
    const char *request_id;  /* request_id, task_id or encounter_id of the opening message */
    const char *patient;     /* the patient's local id in the opening message (never logged) */
    const char *reason;      /* why the last decline, refusal or rejection happened, or "" */
    int64_t opened_at_ms;
    int64_t updated_at_ms;
    int64_t deadline_ms;         /* the current step's deadline; 0: nothing is awaited */
    int64_t reminder_at_ms;      /* when on_reminder runs (0: none) */
    bool waiting_on_counterpart; /* the next move is the other side's */
    bool reminded;               /* the current step's reminder ran */
    bool escalated;              /* the current step was escalated */
    unsigned redispatches;       /* how many times the request went to a next candidate */
    unsigned escalations;        /* appointment or care task: 1 once it went to the
                                  * coordinator (never more: the coordinator decides) */
    size_t nparts;
    /* Preadmission: its candidates. Discharge: its items. Appointment or care task (on the
     * requester's side): every candidate that already had the request, label "candidate",
     * in the state it left it (a pool and the member who claimed or answered for it both
     * appear); the SDK never sends the request to one of them again. */
    const relais_conv_part_t *parts;
} relais_conv_info_t;

typedef struct relais_conv_options {
    /* Address escalations are sent to (the CPTS coordinator); NULL or "": none is sent and
     * only on_escalation runs. */
    const char *coordinator;
    /* When the reminder runs, as a fraction of the step's window, in (0, 1); 0: 0.5. A
     * negative value disables reminders. */
    double reminder_fraction;
    /* Default windows of the steps, in milliseconds; 0: the default in parentheses. */
    int64_t answer_ms;    /* a request answered (offer/decline, task update, decision) (48 h) */
    int64_t book_ms;      /* an offer booked, at most until its held_until_ms (24 h) */
    int64_t confirm_ms;   /* a booking confirmed (24 h) */
    int64_t outcome_ms;   /* the outcome, after the appointment's end, or a care task's
                           * completion when it has no due date (48 h) */
    int64_t choice_ms;    /* a preadmission choice once a facility accepted (48 h) */
    int64_t admission_ms; /* the admission notice, after the admission date (7 days) */
    int64_t follow_up_ms; /* a follow-up item without a due date, from the notification (7 days) */
    /* A request re-dispatched to a pool (a service: address) goes in OFFER dispatch (every
     * member offered, the first claim wins) rather than ANYCAST. A request first sent in
     * OFFER keeps it whatever this says. */
    bool offer_to_pools;
} relais_conv_options_t;

typedef struct relais_conv_hooks {
    /* The conversation's state changed (old is 0 for a new conversation). */
    void (*on_change)(relais_agent_t *agent, const relais_conv_info_t *conv,
                      relais_conv_state_t old, void *ud);
    /* The reminder fraction of the current step's window has passed. */
    void (*on_reminder)(relais_agent_t *agent, const relais_conv_info_t *conv, void *ud);
    /*
     * The deadline passed and the SDK escalated: `escalation` is the body it sent to the
     * coordinator; send_rc is relais_agent_send()'s result (RELAIS_ECONFIG when no
     * coordinator is configured and nothing was sent).
     */
    void (*on_escalation)(relais_agent_t *agent, const relais_conv_info_t *conv,
                          const Relais__V1__Escalation *escalation, int send_rc, void *ud);
    /*
     * Re-dispatch policy: asked when an appointment or care-task request was not answered
     * in time, was declined or rejected, or could not be delivered, while its own window
     * (TimeWindow.due_by_ms) has not passed. Writes the next candidate's address to next
     * (RELAIS_ADDRESS_MAX bytes) and returns true to send the request there, or returns
     * false. conv->parts lists the candidates that already had it: the SDK refuses to send
     * it to one of them again, so that a request tries each candidate at most once and the
     * number of re-dispatches is bounded by the number of candidates. When no one is left,
     * the request is escalated to the coordinator, once. NULL: never.
     */
    bool (*redispatch)(relais_agent_t *agent, const relais_conv_info_t *conv,
                       char next[RELAIS_ADDRESS_MAX], void *ud);
    void *ud;
} relais_conv_hooks_t;

/*
 * Enables conversation tracking on an agent, before relais_agent_start() or run(): loads
 * the conversations its state file holds and arms their deadlines (one already past fires
 * on the loop's first turn). opts and hooks may be NULL (defaults, no hooks); both are
 * copied. Returns 0, -EALREADY when tracking is already on, RELAIS_ECONFIG for an invalid
 * option (a coordinator that is not an address, a fraction >= 1, a negative window),
 * RELAIS_ESTORE when the state file cannot be read, or -ENOMEM.
 */
int relais_conv_enable(relais_agent_t *agent, const relais_conv_options_t *opts,
                       const relais_conv_hooks_t *hooks);

/* Why the last relais_agent_send()/reply() on this agent was refused as an invalid
 * transition; "" when the last send was not refused for that reason. */
const char *relais_conv_last_refusal(const relais_agent_t *agent);

typedef void (*relais_conv_visit_fn)(relais_agent_t *agent, const relais_conv_info_t *conv,
                                     void *ud);

/* Calls fn for every tracked conversation, oldest first. 0, or RELAIS_ECONFIG when
 * tracking is off. */
int relais_conv_foreach(relais_agent_t *agent, relais_conv_visit_fn fn, void *ud);

/* Calls fn for one conversation. 0, -ENOENT, or RELAIS_ECONFIG when tracking is off. */
int relais_conv_get(relais_agent_t *agent, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                    relais_conv_visit_fn fn, void *ud);

/*
 * Sets the current step's deadline of an open conversation (absolute, ms since the
 * epoch), replacing the default; the reminder moves with it. The next step gets its own
 * default again. 0, -ENOENT, RELAIS_EINVALID when nothing is awaited (a closed
 * conversation), RELAIS_ESTORE, or RELAIS_ECONFIG when tracking is off.
 */
int relais_conv_set_deadline(relais_agent_t *agent, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                             int64_t deadline_ms);

/*
 * Sends an open request (an appointment or care task still unanswered, declined, rejected
 * or undeliverable) to `next` instead, in the same conversation: the current provider, if
 * it still holds it, gets a cancel; the step starts again with its own deadline. What a
 * coordinator's reassignment leads to (see the Note's reassign_to). 0, -ENOENT,
 * RELAIS_EINVALID (not such a request, an invalid address, a candidate that already had
 * it, or a request whose window has passed; relais_conv_last_refusal() says which),
 * RELAIS_ECONFIG when tracking is off, or relais_agent_send()'s error.
 */
int relais_conv_redispatch(relais_agent_t *agent, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                           const char *next);

/*
 * Ties a follow-up item of a discharge conversation to the conversation the application
 * opened for it (an appointment or care-task request it sent), so that the item follows
 * it to completed or failed. A CareTaskRequest whose encounter_id and follow_up_item_id
 * name a tracked discharge is linked without this call. 0, -ENOENT (no such discharge,
 * item or child), RELAIS_EINVALID (the child is not an appointment or care task),
 * RELAIS_ESTORE, or RELAIS_ECONFIG when tracking is off.
 */
int relais_conv_link(relais_agent_t *agent, const uint8_t discharge[RELAIS_MESSAGE_ID_LEN],
                     const char *item_id, const uint8_t child[RELAIS_MESSAGE_ID_LEN]);

/* Forgets a closed conversation (memory and state file). 0, -ENOENT, RELAIS_EINVALID when
 * it is still open, RELAIS_ESTORE, or RELAIS_ECONFIG when tracking is off. */
int relais_conv_forget(relais_agent_t *agent, const uint8_t id[RELAIS_MESSAGE_ID_LEN]);

/* Names for logs and displays ("appointment", "booked", …); never NULL. */
const char *relais_conv_kind_name(relais_conv_kind_t kind);
const char *relais_conv_state_name(relais_conv_state_t state);

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_CONVERSATION_H */
