/*
 * Reference agents: the logic of each territory role as a set of SDK handlers.
 *
 * A role object attaches to an agent the caller has created with relais_agent_new() and
 * registers that role's handlers and receipt callback on it; the caller keeps the agent,
 * its loop and its state callback. Four roles exist:
 *   - the provider (nurse, physiotherapist, specialist): a small slot calendar that answers
 *     AppointmentRequest with an offer of held slots or a decline, books, confirms and
 *     cancels, and accepts care tasks into free slots;
 *   - the medical assistant acting for one or more GPs: requests appointments, books the
 *     first offered slot, and turns a hospital's discharge follow-up plan into care-task and
 *     appointment requests;
 *   - the hospital: sends discharge notifications;
 *   - the CPTS coordinator: receives escalations, acknowledges them and names the next
 *     candidate from its list in a Note to whoever escalated.
 * Every role reports what happens through an event callback, so that a program (a CLI, the
 * demo territory, a test) can watch the conversations progress without reading messages
 * itself. Events carry identifiers, message types and short states, never patient data,
 * so they are fit for logs.
 *
 * Threading: like the SDK, every function here runs on the agent's loop thread (or before
 * the loop runs), and events are emitted on that thread. From another thread, use
 * relais_agent_post() to reach it. A role object must outlive its agent's loop: destroy it
 * after relais_agent_run() returned (or the external loop finished) and after
 * relais_agent_destroy().
 */
#ifndef RELAIS_REFAGENTS_H
#define RELAIS_REFAGENTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "relais/agent.h"
#include "relais/conversation.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Longest identifier (request, task, encounter, appointment id) a role keeps, NUL included. */
#define RELAIS_REF_ID_MAX 64

/* ---- Events ------------------------------------------------------------------------ */

typedef enum relais_ref_event_kind {
    RELAIS_REF_EV_RECEIVED = 1,    /* a delivery was handled; state is the conversation's now */
    RELAIS_REF_EV_ACCEPTED = 2,    /* the broker durably accepted a message this agent sent */
    RELAIS_REF_EV_SEND_FAILED = 3, /* a message was rejected or the agent closed first */
    RELAIS_REF_EV_RECEIPT = 4,     /* a receipt arrived about a message this agent sent */
    RELAIS_REF_EV_NOTICE = 5,      /* a decision taken without a message (see milestone) */
} relais_ref_event_kind_t;

/* What an event means for the pathway, so observers need not parse states. */
typedef enum relais_ref_milestone {
    RELAIS_REF_MS_NONE = 0,
    RELAIS_REF_MS_APPOINTMENT_CONFIRMED = 1, /* assistant: the professional confirmed */
    RELAIS_REF_MS_APPOINTMENT_DECLINED = 2,  /* assistant: declined (state says why) */
    RELAIS_REF_MS_DISCHARGE_RECEIVED = 3,    /* assistant: a discharge notification arrived */
    RELAIS_REF_MS_TASK_ACCEPTED = 4,         /* assistant: a care task was accepted */
    RELAIS_REF_MS_TASK_REJECTED = 5,         /* assistant: a care task was rejected */
    RELAIS_REF_MS_TASK_UPDATED = 6,          /* assistant: any other care task status */
    RELAIS_REF_MS_FOLLOW_UP_FOR_GP = 7,      /* assistant: an item for the GP's own agenda */
    RELAIS_REF_MS_FOLLOW_UP_UNROUTED = 8,    /* assistant: no address configured for a role */
    RELAIS_REF_MS_FAILED = 9,                /* a step could not be taken (state says why) */
    RELAIS_REF_MS_OFFER_WITHDRAWN = 10,      /* provider: a pool's offer went to another */
    RELAIS_REF_MS_CLAIMED = 11,              /* assistant: a pool member claimed a request */
    RELAIS_REF_MS_REMINDER = 12,             /* assistant: a deadline's reminder ran */
    RELAIS_REF_MS_ESCALATED = 13,            /* assistant: a missed deadline was escalated */
    RELAIS_REF_MS_ESCALATION_RECEIVED = 14,  /* coordinator: an escalation arrived */
    RELAIS_REF_MS_REASSIGNED = 15,           /* assistant: the coordinator's reassignment sent */
} relais_ref_milestone_t;

/* One event. Pointers are valid only during the callback; strings are never NULL. */
typedef struct relais_ref_event {
    relais_ref_event_kind_t kind;
    relais_ref_milestone_t milestone;
    int body_case;                  /* the message concerned (Envelope body case), or 0 */
    const char *from;               /* its sender */
    const char *to;                 /* its (first) recipient */
    const char *on_behalf_of;       /* "" when none */
    const uint8_t *message_id;      /* 16 bytes, or NULL when unknown */
    const uint8_t *conversation_id; /* 16 bytes, or NULL when unknown */
    const char *ref;                /* request_id, task_id or encounter_id of the body */
    const char *encounter_id;       /* the discharge this exchange follows, "" when none */
    const char *state;              /* short readable state: "offered 3 slots" */
    int status;                     /* SEND_FAILED: RELAIS_E…; RECEIPT: Receipt.Status */
    const char *reason;             /* SEND_FAILED and RECEIPT: why; else "" */
    bool duplicate;                 /* ACCEPTED: the broker had this message id already */
} relais_ref_event_t;

typedef void (*relais_ref_event_fn)(const relais_ref_event_t *ev, void *ud);

/* "AppointmentRequest" for RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST; never NULL. */
const char *relais_ref_body_title(int body_case);

/* ---- Provider: nurse, physiotherapist, specialist ---------------------------------- */

typedef struct relais_ref_provider relais_ref_provider_t;

typedef struct relais_ref_provider_config {
    const char *role;      /* "nurse", "physiotherapist", "specialist" (required) */
    const char *specialty; /* e.g. "cardiology": requests for another are declined */
    const char *location;  /* where office slots take place; default "cabinet" */
    unsigned slot_count;   /* slots in the calendar; default 16 */
    unsigned slot_minutes; /* default 30 */
    int64_t first_slot_ms; /* start of the first slot; 0: the next whole hour */
    bool home_visits;      /* slots are home visits (nurses) rather than office ones */
    unsigned hold_ms;      /* how long offered slots stay held; default 10 minutes */
    unsigned max_offer;    /* slots per offer, 1..8; default 3 */
    /* Acknowledges appointment requests but never answers them: a professional who does
     * not reply, to show deadlines, reminders and escalations. */
    bool silent;
    relais_ref_event_fn on_event;
    void *event_ud;
} relais_ref_provider_config_t;

/*
 * Creates the provider logic on agent and registers its handlers (AppointmentRequest,
 * AppointmentBook, AppointmentCancel, CareTaskRequest), its receipt callback and a
 * withdrawn callback. Offers from a pool are left to the SDK's default policy (it claims
 * them, since a handler exists); an offer that another member claimed first is reported as
 * a NOTICE with milestone OFFER_WITHDRAWN and the offer's message id. Strings of
 * cfg are copied. Returns 0 and the provider in *out, RELAIS_ECONFIG for a missing role or
 * a calendar larger than 10,000 slots of at most a day, -ENOMEM, or the SDK's error from
 * relais_agent_on(); after a failure the agent may still name handlers of the freed
 * object, so destroy it without running it (the same holds for the other roles).
 */
int relais_ref_provider_new(relais_ref_provider_t **out, relais_agent_t *agent,
                            const relais_ref_provider_config_t *cfg);

/* Frees a provider (see the lifetime rule above). Accepts NULL and sets *p to NULL. */
void relais_ref_provider_destroy(relais_ref_provider_t **p);

/* Slots neither booked nor held right now. */
unsigned relais_ref_provider_free_slots(const relais_ref_provider_t *p);

/* ---- Medical assistant ------------------------------------------------------------- */

typedef struct relais_ref_assistant relais_ref_assistant_t;

typedef struct relais_ref_assistant_config {
    const char *const *gps;      /* rpps addresses of the GPs the assistant acts for */
    size_t n_gps;                /* at least one; the first is the default */
    const char *nurse;           /* receives nurse follow-up items as CareTaskRequest */
    const char *physiotherapist; /* receives physiotherapy items as AppointmentRequest */
    const char *specialist;      /* receives specialist items as AppointmentRequest */
    /*
     * Non-NULL: enables the SDK's conversation tracking with these options (deadlines, the
     * coordinator escalations go to), and reports each reminder and escalation as a NOTICE
     * (milestones REMINDER and ESCALATED, ref the request id). NULL: no tracking.
     */
    const relais_conv_options_t *tracking;
    relais_ref_event_fn on_event;
    void *event_ud;
} relais_ref_assistant_config_t;

/*
 * Creates the assistant logic on agent and registers its handlers (AppointmentOffer,
 * AppointmentDecline, AppointmentConfirm, AppointmentOutcome, AppointmentCancel,
 * DischargeNotification, CareTaskUpdate, Note) and receipt callback, and enables tracking
 * when asked (before the agent starts). Returns 0, RELAIS_ECONFIG when no GP is given or an
 * address is invalid, -ENOMEM, or relais_conv_enable()'s error.
 */
int relais_ref_assistant_new(relais_ref_assistant_t **out, relais_agent_t *agent,
                             const relais_ref_assistant_config_t *cfg);

void relais_ref_assistant_destroy(relais_ref_assistant_t **a);

/*
 * Asks `to` (a professional or a pool) for an appointment, on behalf of gp (NULL: the first
 * configured GP), in a new conversation. req->request_id must be set and unique for this
 * assistant. The assistant then books the first offered slot by itself and reports the
 * confirm or decline as events. Returns 0, RELAIS_EINVALID for a missing or duplicate
 * request id or an invalid address, RELAIS_ECONFIG when gp is not one of its GPs, -ENOMEM,
 * or the SDK's error from relais_agent_send().
 */
int relais_ref_assistant_request(relais_ref_assistant_t *a, const char *to, const char *gp,
                                 const Relais__V1__AppointmentRequest *req);

/*
 * As relais_ref_assistant_request(), to a service pool in OFFER dispatch: every member is
 * offered the request, the first to claim it answers, and the CLAIMED receipt naming the
 * member is reported as a RECEIPT event with milestone CLAIMED (state "claimed by …").
 * Returns RELAIS_EINVALID when pool is not a service address, otherwise as above.
 */
int relais_ref_assistant_request_pool(relais_ref_assistant_t *a, const char *pool, const char *gp,
                                      const Relais__V1__AppointmentRequest *req);

/* ---- Hospital ---------------------------------------------------------------------- */

typedef struct relais_ref_hospital relais_ref_hospital_t;

typedef struct relais_ref_hospital_config {
    const char *facility; /* finess address written in notifications; default: agent's */
    relais_ref_event_fn on_event;
    void *event_ud;
} relais_ref_hospital_config_t;

/* Creates the hospital logic on agent (receipts, notes, care task updates). */
int relais_ref_hospital_new(relais_ref_hospital_t **out, relais_agent_t *agent,
                            const relais_ref_hospital_config_t *cfg);

void relais_ref_hospital_destroy(relais_ref_hospital_t **h);

/*
 * Sends dn to `to` (usually the GP's assistant) in a new conversation. dn->encounter_id
 * must be set; an empty dn->facility is filled with the hospital's. Returns 0,
 * RELAIS_EINVALID for a missing encounter id or an invalid address, -ENOMEM, or the
 * SDK's error from relais_agent_send().
 */
int relais_ref_hospital_notify(relais_ref_hospital_t *h, const char *to,
                               const Relais__V1__DischargeNotification *dn);

/* ---- CPTS coordinator ----------------------------------------------------------------- */

typedef struct relais_ref_coordinator relais_ref_coordinator_t;

/* One escalation as the coordinator received it. Pointers are valid during the call. */
typedef struct relais_ref_escalation {
    const char *from;               /* who escalated */
    const uint8_t *message_id;      /* the Escalation's own id (16 bytes) */
    const uint8_t *conversation_id; /* the escalated conversation (16 bytes), or NULL */
    const char *original_body;      /* "AppointmentRequest", or "" */
    const char *reason;
    const char *responsible; /* who should have answered, or "" */
    int64_t deadline_ms;
    const char *reassigned_to; /* the candidate named in the Note, or "" for none */
} relais_ref_escalation_t;

typedef void (*relais_ref_escalation_fn)(const relais_ref_escalation_t *esc, void *ud);

typedef struct relais_ref_coordinator_config {
    /*
     * Candidates to reassign to, in order (professionals or pools). For each escalation the
     * coordinator names the first candidate, after the last one it named (round robin),
     * that is not the escalation's responsible; none when no such candidate exists.
     */
    const char *const *candidates;
    size_t n_candidates;
    relais_ref_escalation_fn on_escalation; /* each escalation received */
    relais_ref_event_fn on_event;           /* its Note's acceptance or failure, receipts */
    void *event_ud;                         /* for both callbacks */
} relais_ref_coordinator_config_t;

/*
 * Creates the coordinator logic on agent: its Escalation handler reports the escalation,
 * then reassigns — a Note to the escalation's sender, as a reply in the escalation's own
 * conversation, naming the escalated conversation and the next candidate (or saying there
 * is none) — and acknowledges the escalation PROCESSED. The Note is a suggestion: whoever
 * escalated decides whether to send its request there. Returns 0, RELAIS_ECONFIG for an
 * invalid candidate address, -ENOMEM, or the SDK's error from relais_agent_on().
 */
int relais_ref_coordinator_new(relais_ref_coordinator_t **out, relais_agent_t *agent,
                               const relais_ref_coordinator_config_t *cfg);

void relais_ref_coordinator_destroy(relais_ref_coordinator_t **c);

/* ---- Sample data -------------------------------------------------------------------- */

/*
 * Obviously fictitious data for demonstrations and tests: a patient named DEMO-PATIENT with
 * a local identifier only (identity PROVISIONAL, so no INS ever travels) and a heart-failure
 * discharge. Pointers inside refer to the structure itself and to string literals: keep
 * the structure alive and in place while the messages built from it are in use.
 */
typedef struct relais_ref_sample_discharge {
    Relais__V1__DischargeNotification dn;
    Relais__V1__PatientRef patient;
    char *given_names[1];
    Relais__V1__FollowUpItem items[2]; /* nurse within 2 days, GP within 7 days */
    Relais__V1__FollowUpItem *item_ptrs[2];
    Relais__V1__TimeWindow windows[2];
    char *care_team[1];
    char encounter_id[RELAIS_REF_ID_MAX];
    char gp[RELAIS_ADDRESS_MAX];
} relais_ref_sample_discharge_t;

/* Fills p with the fictitious patient "DEMO-PATIENT Jeanne" (local id local_id). */
void relais_ref_sample_patient(Relais__V1__PatientRef *p, char *given_names[1],
                               const char *local_id);

/*
 * Fills s with a heart-failure discharge home, discharged at now_ms, whose care team is gp,
 * under encounter_id (truncated to fit). facility is left empty for the hospital to fill.
 */
void relais_ref_sample_discharge(relais_ref_sample_discharge_t *s, const char *encounter_id,
                                 const char *gp, int64_t now_ms);

#ifdef __cplusplus
}
#endif

#endif /* RELAIS_REFAGENTS_H */
