/*
 * Reference agents: the logic of each territory role as a set of SDK handlers.
 *
 * A role object attaches to an agent the caller has created with relais_agent_new() and
 * registers that role's handlers and receipt callback on it; the caller keeps the agent,
 * its loop and its state callback. Five roles exist:
 *   - the provider (nurse, physiotherapist, specialist): a small slot calendar that answers
 *     AppointmentRequest with an offer of held slots or a decline, books, confirms and
 *     cancels, and accepts care tasks into free slots;
 *   - the medical assistant acting for one or more GPs: requests appointments, books the
 *     first offered slot, and turns a hospital's discharge follow-up plan into care-task and
 *     appointment requests;
 *   - the hospital: sends discharge notifications, their follow-up plan drawn from a
 *     table of care programmes (heart failure, COPD, …) read from YAML or built in;
 *   - the facility (SMR, EHPAD, HAD, surgery): answers preadmission requests from its
 *     beds, books the chosen ones and notifies their admission;
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
    RELAIS_REF_MS_APPOINTMENT_CONFIRMED = 1,  /* assistant: the professional confirmed */
    RELAIS_REF_MS_APPOINTMENT_DECLINED = 2,   /* assistant: declined (state says why) */
    RELAIS_REF_MS_DISCHARGE_RECEIVED = 3,     /* assistant: a discharge notification arrived */
    RELAIS_REF_MS_TASK_ACCEPTED = 4,          /* assistant: a care task was accepted */
    RELAIS_REF_MS_TASK_REJECTED = 5,          /* assistant: a care task was rejected */
    RELAIS_REF_MS_TASK_UPDATED = 6,           /* assistant: any other care task status */
    RELAIS_REF_MS_FOLLOW_UP_FOR_GP = 7,       /* assistant: an item for the GP's own agenda */
    RELAIS_REF_MS_FOLLOW_UP_UNROUTED = 8,     /* assistant: no address configured for a role */
    RELAIS_REF_MS_FAILED = 9,                 /* a step could not be taken (state says why) */
    RELAIS_REF_MS_OFFER_WITHDRAWN = 10,       /* provider: a pool's offer went to another */
    RELAIS_REF_MS_CLAIMED = 11,               /* assistant: a pool member claimed a request */
    RELAIS_REF_MS_REMINDER = 12,              /* assistant: a deadline's reminder ran */
    RELAIS_REF_MS_ESCALATED = 13,             /* assistant: a missed deadline was escalated */
    RELAIS_REF_MS_ESCALATION_RECEIVED = 14,   /* coordinator: an escalation arrived */
    RELAIS_REF_MS_REASSIGNED = 15,            /* assistant: the coordinator's reassignment sent */
    RELAIS_REF_MS_APPOINTMENT_OFFERED = 16,   /* assistant: slots offered (one is being booked) */
    RELAIS_REF_MS_APPOINTMENT_FULFILLED = 17, /* assistant: outcome, the patient was seen */
    RELAIS_REF_MS_APPOINTMENT_NOSHOW = 18,    /* assistant: outcome, the patient did not come */
    RELAIS_REF_MS_TASK_COMPLETED = 19,        /* assistant: a care task was carried out */
    RELAIS_REF_MS_TASK_FAILED = 20,           /* assistant: a care task could not be */
    RELAIS_REF_MS_REBOOKED = 21,              /* assistant: asked again after a no-show */
    RELAIS_REF_MS_REDISPATCHED = 22,          /* assistant: sent to the route's next candidate */
    RELAIS_REF_MS_PREADMISSION_DECIDED = 23,  /* assistant: a facility's decision (state says) */
    RELAIS_REF_MS_PREADMISSION_CHOSEN = 24,   /* assistant: a facility chosen, others cancelled */
    RELAIS_REF_MS_ADMITTED = 25,              /* assistant: the admission notice arrived */
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
    int64_t submitted_at_ms;        /* ACCEPTED, SEND_FAILED: business time of the send
                                     * (the SDK's dispatch, before the broker's Accepted) */
    const char *via;                /* RECEIVED: the pool address it was sent to, or "" */
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
    unsigned slot_count;   /* consecutive slots (horizon_days 0); default 16 */
    unsigned slot_minutes; /* default 30 */
    /* Consecutive slots: start of the first one; 0: the next whole hour. Working hours:
     * no slot starts before it, and its day is the first of the horizon; 0: now. */
    int64_t first_slot_ms;
    /*
     * Working hours. When horizon_days is not 0, the calendar holds the slots of slot_minutes
     * that fit in `hours` (UTC, e.g. "08:00-12:00,14:00-18:00", the default; at most 8 ranges)
     * on the days of work_days (bit 0 Monday … bit 6 Sunday; 0: Monday to Friday), for
     * horizon_days days from first_slot_ms's day; slot_count is then unused. When 0, the
     * calendar is slot_count consecutive slots from first_slot_ms.
     */
    const char *hours;
    uint8_t work_days;
    unsigned horizon_days; /* at most 366 */
    unsigned capacity;     /* patients per slot (1..100); default 1 */
    bool home_visits;      /* slots are home visits (nurses) rather than office ones */
    unsigned hold_ms;      /* how long offered slots stay held; default 10 minutes */
    unsigned max_offer;    /* slots per offer, 1..8; default 3 */
    /* Acknowledges appointment requests but never answers them: a professional who does
     * not reply, to show deadlines, reminders and escalations. */
    bool silent;
    /*
     * Behaviour, 0..1: the share of appointment requests and care tasks refused although
     * the calendar has room (AppointmentDecline NO_CAPACITY, CareTaskUpdate REJECTED, both
     * "busy"), and the share of booked patients who do not come (reported when
     * report_outcomes is set). Each decision is a draw keyed by the seed, the requester and
     * the request id, so a simulation replays identically and a redelivered request gets
     * the same answer. seed 0: derived from the agent's address.
     */
    double decline_rate;
    double no_show_rate;
    uint64_t seed;
    /*
     * When a booked slot ends, report it in the appointment's conversation: an
     * AppointmentOutcome (FULFILLED, or NOSHOW at no_show_rate) to whoever booked, and for
     * an accepted care task a CareTaskUpdate COMPLETED (or FAILED "patient absent").
     */
    bool report_outcomes;
    /*
     * How long answering takes. With answer_median_ms > 0 each AppointmentRequest and
     * CareTaskRequest is acknowledged at once and answered after a delay of working time
     * (counted within `hours` on working days, as a desk works) drawn from a log-normal
     * distribution of that median and answer_sigma (0: 1.0), keyed like the other draws:
     * most answers within hours, a tail over days. The answer is decided when the delay
     * ends, against the calendar as it is then. 0: at once.
     */
    int64_t answer_median_ms;
    double answer_sigma;
    /*
     * Busy declines follow the calendar's real load rather than a fixed draw: the rate is
     * decline_rate × load / 0.5, load being the booked share of the places of the next 14
     * days (never busy when empty, twice the rate when full).
     */
    bool decline_by_load;
    relais_ref_event_fn on_event;
    void *event_ud;
} relais_ref_provider_config_t;

/*
 * Creates the provider logic on agent and registers its handlers (AppointmentRequest,
 * AppointmentBook, AppointmentCancel, CareTaskRequest), its receipt callback and a
 * withdrawn callback. Offers from a pool are left to the SDK's default policy (it claims
 * them, since a handler exists); an offer that another member claimed first is reported as
 * a NOTICE with milestone OFFER_WITHDRAWN and the offer's message id. Strings of
 * cfg are copied. Returns 0 and the provider in *out, RELAIS_ECONFIG for a missing role,
 * malformed hours, a rate outside 0..1, a capacity above 100, a horizon above 366 days, a
 * calendar without slots or larger than 10,000 slots or 20,000 places (slots × capacity),
 * or a slot longer than a day; -ENOMEM, or the SDK's error from relais_agent_on(); after a
 * failure the agent may still name handlers of the freed object, so destroy it without
 * running it (the same holds for the other roles).
 */
int relais_ref_provider_new(relais_ref_provider_t **out, relais_agent_t *agent,
                            const relais_ref_provider_config_t *cfg);

/*
 * Moves the provider to a new agent after its previous one was stopped and destroyed (a
 * professional going offline and coming back, usually with the same address and state
 * file): registers the handlers and callbacks on agent, and re-arms the reports of booked
 * slots whose outcome was not sent yet; one whose slot ended meanwhile is sent at once.
 * The old agent is never touched. Call it before the new agent runs (or on its loop).
 * Returns 0, RELAIS_EINVALID for a NULL argument, or the SDK's error from relais_agent_on().
 */
int relais_ref_provider_rebind(relais_ref_provider_t *p, relais_agent_t *agent);

/* Frees a provider (see the lifetime rule above). Accepts NULL and sets *p to NULL. */
void relais_ref_provider_destroy(relais_ref_provider_t **p);

/* Places (slot × capacity) neither booked nor held right now, in slots not yet started. */
unsigned relais_ref_provider_free_slots(const relais_ref_provider_t *p);

/* What a provider did since it was created; each answer counts once the agent took it. */
typedef struct relais_ref_provider_stats {
    unsigned requests;       /* AppointmentRequests handled (a silent provider's included) */
    unsigned offers;         /* AppointmentOffers sent */
    unsigned declines;       /* AppointmentDeclines sent, for any reason */
    unsigned busy_declines;  /* of which refused by decline_rate although there was room */
    unsigned books;          /* AppointmentBooks handled */
    unsigned confirmed;      /* AppointmentConfirms sent */
    unsigned cancelled;      /* AppointmentCancels that freed a held or booked slot */
    unsigned outcomes;       /* AppointmentOutcomes and final CareTaskUpdates sent */
    unsigned no_shows;       /* of which NOSHOW or FAILED "patient absent" */
    unsigned tasks;          /* CareTaskRequests handled */
    unsigned tasks_accepted; /* answered ACCEPTED */
    unsigned tasks_rejected; /* answered REJECTED (no room, or busy) */
    unsigned deferred;       /* requests whose answer waited for answer_median_ms's delay */
} relais_ref_provider_stats_t;

/* Copies p's counters into *out (on the agent's loop thread, or once it has stopped). */
void relais_ref_provider_stats(const relais_ref_provider_t *p, relais_ref_provider_stats_t *out);

/*
 * Reads a provider's YAML configuration file (layout in docs/AGENTS.md) into cfg: keys
 * present in the file overwrite cfg's fields, the others are left as they were, so the
 * caller sets defaults first and may override the file afterwards. Unknown or repeated
 * keys, wrong types and values out of range are errors. String fields point into *doc,
 * which the caller frees with ref__cfg_free() (refconfig.h) once the provider is created
 * (relais_ref_provider_new() copies them). Returns 0, or RELAIS_ECONFIG with
 * "file:line: key: reason" in err (err_len bytes), or -ENOMEM; *doc is NULL after an error.
 */
typedef struct ref_cfg ref_cfg_t;
int relais_ref_provider_config_load(const char *path, relais_ref_provider_config_t *cfg,
                                    ref_cfg_t **doc, char *err, size_t err_len);

/* ---- Medical assistant ------------------------------------------------------------- */

typedef struct relais_ref_assistant relais_ref_assistant_t;

/* Which offered slot the assistant books. */
typedef enum relais_ref_booking_policy {
    RELAIS_REF_BOOK_FIRST_OFFERED = 0, /* the order the practice proposes */
    RELAIS_REF_BOOK_EARLIEST = 1,      /* the slot that starts first */
    RELAIS_REF_BOOK_LATEST = 2,        /* the last one offered in the window (a patient's wish) */
} relais_ref_booking_policy_t;

/*
 * Where follow-up items of one role (and specialty) go: candidates in order. The first gets
 * the request; with tracking on, a decline, a rejection, no answer before the deadline or
 * an undeliverable request sends it to the next one (the SDK's re-dispatch), and after the
 * last one the miss is escalated to the coordinator. "@gp" stands for the GP the request is
 * made for (his own agenda). A service pool is asked in OFFER dispatch when offer is set.
 */
typedef struct relais_ref_route {
    const char *role;      /* "nurse" (care tasks), "physiotherapist", "specialist", "gp" */
    const char *specialty; /* NULL or "": any item of the role */
    const char *const *candidates;
    size_t n_candidates;
    bool offer;
} relais_ref_route_t;

typedef struct relais_ref_assistant_config {
    const char *const *gps;      /* rpps addresses of the GPs the assistant acts for */
    size_t n_gps;                /* at least one; the first is the default */
    const char *nurse;           /* receives nurse follow-up items as CareTaskRequest */
    const char *physiotherapist; /* receives physiotherapy items as AppointmentRequest */
    const char *specialist;      /* receives specialist items as AppointmentRequest */
    /* Routes by role, tried before the three single addresses above (which act as routes
     * with one candidate each). */
    const relais_ref_route_t *routes;
    size_t n_routes;
    relais_ref_booking_policy_t booking;
    /* After a no-show, asks the same professional again up to this many times. */
    unsigned rebook_no_show;
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

/* Moves the assistant to a new agent on the same state file (the old one stopped and was
 * destroyed: an assistant back from a break): its handlers, and its conversation tracking,
 * which the state file gives back with their deadlines. 0 or the SDK's error. */
int relais_ref_assistant_rebind(relais_ref_assistant_t *a, relais_agent_t *agent);

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

/*
 * A referral by the practice's own policy: the request goes to the first candidate of the
 * route configured for req->requested_role and req->specialty (the practice's usual
 * correspondent), in OFFER when that route offers to a pool, and follows the route when
 * it is declined or not answered. RELAIS_ECONFIG when no route matches; otherwise as
 * relais_ref_assistant_request().
 */
int relais_ref_assistant_refer(relais_ref_assistant_t *a, const char *gp,
                               const Relais__V1__AppointmentRequest *req);

/*
 * Asks each of the n facilities (at most 8) for a preadmission, in one conversation, on
 * behalf of gp (NULL: the first GP). req->request_id must be set and unique. The assistant
 * then chooses the first facility that accepts (the SDK cancels the others when tracking is
 * on) and reports decisions, the choice and the admission notice as events. Returns 0,
 * RELAIS_EINVALID (no id, a duplicate, no or too many facilities, an invalid address),
 * RELAIS_ECONFIG (gp not ours), -ENOMEM, or the SDK's error for the first failed send.
 */
int relais_ref_assistant_preadmit(relais_ref_assistant_t *a, const char *const *facilities,
                                  size_t n, const char *gp,
                                  const Relais__V1__PreadmissionRequest *req);

/* ---- Programmes: follow-up plans after a discharge ---------------------------------- */

/* Most items one programme may hold. */
#define RELAIS_REF_PROGRAMME_ITEMS_MAX 16

/*
 * One item of a programme's follow-up plan: who should see the patient, for what, and in
 * which window counted from the discharge. The DischargeNotification carries no mode (its
 * FollowUpItem has none); the mode is the programme's advice to whoever routes the item.
 */
typedef struct relais_ref_programme_item {
    const char *item_id;         /* unique in its programme, e.g. "fu-nurse" */
    const char *role;            /* gp, nurse, physiotherapist or specialist */
    const char *specialty;       /* e.g. "cardiology"; "" when none */
    const char *action;          /* e.g. "GP consultation: treatment review" */
    unsigned not_before_hours;   /* the window opens this long after the discharge */
    unsigned within_hours;       /* and is due this long after it (> not_before_hours) */
    Relais__V1__Slot__Mode mode; /* HOME, OFFICE, TELECONSULTATION or unspecified */
} relais_ref_programme_item_t;

/* A care programme (heart failure, COPD, …): its disposition and its follow-up plan. */
typedef struct relais_ref_programme {
    const char *name; /* "heart-failure": written in DischargeNotification.programme */
    Relais__V1__DischargeNotification__Disposition disposition;
    const relais_ref_programme_item_t *items;
    size_t n_items; /* 1..RELAIS_REF_PROGRAMME_ITEMS_MAX */
} relais_ref_programme_t;

/* A table of programmes, from a file or built in. */
typedef struct relais_ref_programmes relais_ref_programmes_t;

/*
 * The built-in table, the same data as deploy/agents/programmes.yaml: heart-failure (nurse
 * home visit within 2 days, GP within 7 days, cardiologist within 60 days) and copd (nurse
 * home visit within 2 days, GP within 7 days, physiotherapist for pulmonary rehabilitation
 * within 14 days), both discharged home. Static: never freed.
 */
const relais_ref_programmes_t *relais_ref_programmes_default(void);

/*
 * Reads a programmes file (YAML; layout in docs/AGENTS.md): a root `programmes:` list of
 * {name, disposition, items: [{id, role, specialty, action, mode, not_before_days,
 * not_before_hours, within_days, within_hours}]}. Unknown or repeated keys, unknown roles,
 * modes and dispositions, duplicate names or item ids, and empty windows are refused.
 * Returns 0 and the table in *out, RELAIS_ECONFIG with "file:line: key: why" in err, or
 * -ENOMEM.
 */
int relais_ref_programmes_load(const char *path, relais_ref_programmes_t **out, char *err,
                               size_t err_len);

/* Frees a loaded table (the built-in one is left alone). Accepts NULL; sets *t to NULL. */
void relais_ref_programmes_free(relais_ref_programmes_t **t);

/* The number of programmes in t, and the i-th (NULL past the end). */
size_t relais_ref_programmes_count(const relais_ref_programmes_t *t);
const relais_ref_programme_t *relais_ref_programme_at(const relais_ref_programmes_t *t, size_t i);

/* The programme called name in t, or NULL. */
const relais_ref_programme_t *relais_ref_programme_find(const relais_ref_programmes_t *t,
                                                        const char *name);

/* A discharge notification built from a programme; pointers refer to itself and to it. */
typedef struct relais_ref_discharge {
    Relais__V1__DischargeNotification dn;
    Relais__V1__FollowUpItem items[RELAIS_REF_PROGRAMME_ITEMS_MAX];
    Relais__V1__FollowUpItem *item_ptrs[RELAIS_REF_PROGRAMME_ITEMS_MAX];
    Relais__V1__TimeWindow windows[RELAIS_REF_PROGRAMME_ITEMS_MAX];
} relais_ref_discharge_t;

/*
 * Fills out->dn with prog's name, disposition and follow-up plan, each item's window being
 * [discharged_at_ms + not_before, discharged_at_ms + within], and discharged_at_ms. The
 * caller fills the encounter, patient, care team and facility. Keep prog and out alive and
 * in place while the notification is in use.
 */
void relais_ref_programme_build(const relais_ref_programme_t *prog, int64_t discharged_at_ms,
                                relais_ref_discharge_t *out);

/* ---- Hospital ---------------------------------------------------------------------- */

typedef struct relais_ref_hospital relais_ref_hospital_t;

typedef struct relais_ref_hospital_config {
    const char *facility; /* finess address written in notifications; default: agent's */
    /* The programmes relais_ref_hospital_programme() looks up; NULL: the built-in table.
     * Not copied: it must outlive the hospital. */
    const relais_ref_programmes_t *programmes;
    relais_ref_event_fn on_event;
    void *event_ud;
} relais_ref_hospital_config_t;

/*
 * Creates the hospital logic on agent: handlers for Note and CareTaskUpdate, and the
 * receipt callback. The hospital can also be a facility (preadmissions): create a
 * relais_ref_facility_t on the same agent with no_receipts set — its handlers are other
 * body types, and this role's receipt callback reports the receipts of both. Returns 0,
 * RELAIS_ECONFIG for an invalid facility address, -ENOMEM, or relais_agent_on()'s error.
 */
int relais_ref_hospital_new(relais_ref_hospital_t **out, relais_agent_t *agent,
                            const relais_ref_hospital_config_t *cfg);

void relais_ref_hospital_destroy(relais_ref_hospital_t **h);

/* Moves the hospital to a new agent (the old one stopped and was destroyed). */
int relais_ref_hospital_rebind(relais_ref_hospital_t *h, relais_agent_t *agent);

/*
 * Sends dn to `to` (usually the GP's assistant) in a new conversation. dn->encounter_id
 * must be set; an empty dn->facility is filled with the hospital's. Returns 0,
 * RELAIS_EINVALID for a missing encounter id or an invalid address, -ENOMEM, or the
 * SDK's error from relais_agent_send().
 */
int relais_ref_hospital_notify(relais_ref_hospital_t *h, const char *to,
                               const Relais__V1__DischargeNotification *dn);

/* The programme called name in the hospital's table, or NULL. */
const relais_ref_programme_t *relais_ref_hospital_programme(const relais_ref_hospital_t *h,
                                                            const char *name);

/*
 * Notifies a discharge under programme prog: builds the DischargeNotification (prog's
 * name, disposition and follow-up items with windows counted from discharged_at_ms; the
 * patient, encounter id, care team and the hospital's facility) and sends it as
 * relais_ref_hospital_notify() does. Nothing is kept after the call. Returns 0,
 * RELAIS_EINVALID for a missing programme or encounter id or an invalid address (to or
 * a care team member), -ENOMEM, or the SDK's error.
 */
int relais_ref_hospital_discharge(relais_ref_hospital_t *h, const char *to,
                                  const relais_ref_programme_t *prog,
                                  const Relais__V1__PatientRef *patient, const char *encounter_id,
                                  const char *const *care_team, size_t n_care_team,
                                  int64_t discharged_at_ms);

/*
 * Reads a hospital file (YAML): `facility:` (an address, written to facility; "" when
 * absent) and `programmes:` (as in relais_ref_programmes_load(); *programmes is NULL when
 * absent, meaning the built-in table). Any other key is refused. Returns 0,
 * RELAIS_ECONFIG with "file:line: key: why" in err, or -ENOMEM.
 */
int relais_ref_hospital_file_load(const char *path, char facility[RELAIS_ADDRESS_MAX],
                                  relais_ref_programmes_t **programmes, char *err, size_t err_len);

/* ---- Facility: preadmissions (SMR, EHPAD, HAD, surgery) ----------------------------- */

typedef struct relais_ref_facility relais_ref_facility_t;

typedef struct relais_ref_facility_config {
    Relais__V1__PreadmissionRequest__FacilityKind kind; /* what the facility is (required) */
    unsigned capacity;         /* beds; 0: none (every request waitlisted or refused) */
    double accept_rate;        /* 0..1: share of requests the facility would take */
    double waitlist_rate;      /* 0..1: share of the others put on the waiting list */
    uint64_t seed;             /* the draws' seed: the same seed, the same decisions */
    int64_t decision_delay_ms; /* business time before deciding; 0: at once (≤ 30 days) */
    const char *facility;      /* written in AdmissionNotice; default: the agent's address */
    const char *instructions;  /* given with ACCEPTED decisions; NULL: a default sentence */
    /* Leave the agent's receipt callback alone: set when another role attached to the same
     * agent (the hospital) registers its own, which would otherwise be replaced. */
    bool no_receipts;
    relais_ref_event_fn on_event;
    void *event_ud;
} relais_ref_facility_config_t;

/* What a facility did so far. */
typedef struct relais_ref_facility_stats {
    uint64_t requests;   /* distinct preadmission requests */
    uint64_t accepted;   /* ACCEPTED decisions sent (promotions from the waiting list too) */
    uint64_t waitlisted; /* WAITLISTED decisions sent */
    uint64_t refused;    /* REFUSED decisions sent */
    uint64_t chosen;     /* choices taken */
    uint64_t cancelled;  /* requests cancelled while decided, held or waiting */
    uint64_t admitted;   /* admission notices sent */
    unsigned beds_used;  /* held, booked or occupied now */
    unsigned waiting;    /* on the waiting list now */
} relais_ref_facility_stats_t;

/* Sets cfg to the defaults: SMR, 10 beds, accept_rate 1, waitlist_rate 1, seed 1, no delay. */
void relais_ref_facility_config_defaults(relais_ref_facility_config_t *cfg);

/*
 * Reads a facility file (YAML: kind, capacity, accept_rate, waitlist_rate, seed,
 * decision_delay_ms; kind required) over cfg: keys present replace cfg's values, others
 * are left as they are; cfg is untouched on failure. Returns 0, RELAIS_ECONFIG with
 * "file:line: key: why" in err, or -ENOMEM.
 */
int relais_ref_facility_config_load(const char *path, relais_ref_facility_config_t *cfg, char *err,
                                    size_t err_len);

/*
 * Creates the facility logic on agent and registers its handlers (PreadmissionRequest,
 * PreadmissionChoice, PreadmissionCancel) and, unless no_receipts, its receipt callback.
 * A request of another facility kind is refused. Otherwise one draw below accept_rate
 * with a bed free accepts it (a bed is held; the admission date is the expected date, or
 * now when that is past); else a second draw below waitlist_rate waitlists it, or it is
 * refused. A choice books the held bed (a waitlisted request gets the next bed that frees)
 * and the AdmissionNotice goes out at the admission date (business time). A cancel frees
 * the bed or the place on the waiting list; a freed bed goes to the oldest waiting
 * request. Returns 0, RELAIS_ECONFIG for a kind, rate, capacity (≤ 100,000), delay or
 * facility address out of range, -ENOMEM, or relais_agent_on()'s error.
 */
int relais_ref_facility_new(relais_ref_facility_t **out, relais_agent_t *agent,
                            const relais_ref_facility_config_t *cfg);

void relais_ref_facility_destroy(relais_ref_facility_t **f);

/* Moves the facility to a new agent (the old one stopped and was destroyed): handlers, and
 * the decisions and admission notices still due, armed again (at once when their time
 * passed while it was away). 0 or the SDK's error. */
int relais_ref_facility_rebind(relais_ref_facility_t *f, relais_agent_t *agent);

/* Copies the facility's counters to *out (on the loop thread, or after the loop ended). */
void relais_ref_facility_stats(const relais_ref_facility_t *f, relais_ref_facility_stats_t *out);

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

/* Professionals who can stand in for one another (the cardiologists of the territory). */
typedef struct relais_ref_coordinator_group {
    const char *const *members;
    size_t n_members;
} relais_ref_coordinator_group_t;

typedef struct relais_ref_coordinator_config {
    /*
     * Candidates to reassign to, in order (professionals or pools). For each escalation the
     * coordinator names the first candidate, after the last one it named (round robin),
     * that is not the escalation's responsible; none when no such candidate exists.
     */
    const char *const *candidates;
    size_t n_candidates;
    /*
     * Groups tried first: when the escalation's responsible belongs to a group, the
     * coordinator names the next member of that group (round robin, skipping the
     * responsible); the candidates above serve when no group has anyone else.
     */
    const relais_ref_coordinator_group_t *groups;
    size_t n_groups;
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

/* Moves the coordinator to a new agent (the old one stopped and was destroyed). */
int relais_ref_coordinator_rebind(relais_ref_coordinator_t *c, relais_agent_t *agent);

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
