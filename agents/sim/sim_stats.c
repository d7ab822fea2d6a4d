/*
 * relais-sim's ledgers and report (see sim_stats.h). Open addressing over fixed tables
 * sized for a few hundred thousand messages; a full table is reported, never overwritten.
 */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim_stats.h"

#define ID_SLOTS (1u << 20)  /* message ids: flags per id */
#define REQ_SLOTS (1u << 16) /* requests opened by assistants */
#define ADDR_MAX 4096        /* addresses named in the list of lost messages */

enum { ID_SENT = 1, ID_HANDLED = 2, ID_TOLD = 4 };

typedef struct id_slot {
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    uint8_t flags; /* 0: empty */
    uint8_t body;  /* the sent message's body case, for the list of lost ones */
    uint16_t from; /* index in the address table of its sender and recipient */
    uint16_t to;
} id_slot_t;

typedef enum req_type { REQ_APPOINTMENT, REQ_TASK, REQ_PREADMISSION, REQ_TYPES } req_type_t;

/* Where a request ended, as far as the run saw. */
typedef enum req_outcome {
    OUT_OPEN,      /* no answer */
    OUT_ANSWERED,  /* answered (offered, decided), not booked */
    OUT_BOOKED,    /* confirmed / accepted / chosen, waiting for its outcome */
    OUT_DONE,      /* fulfilled / completed / admitted */
    OUT_NOSHOW,    /* no-show / failed */
    OUT_DECLINED,  /* declined / rejected / refused by every candidate */
    OUT_ESCALATED, /* still open after an escalation */
    OUT_OUTCOMES
} req_outcome_t;

static const char *const type_names[REQ_TYPES] = {"appointment", "care task", "preadmission"};
static const char *const outcome_names[OUT_OUTCOMES] = {
    "unanswered", "answered", "booked", "done", "no-show/failed", "declined", "escalated"};

typedef struct req {
    char key[RELAIS_ADDRESS_MAX + RELAIS_REF_ID_MAX + 2]; /* "assistant|ref"; "" empty */
    req_type_t type;
    req_outcome_t outcome;
    int64_t sent_ms, answer_ms, booked_ms;
    int64_t acted_ms; /* first answer, refusal, escalation or re-dispatch */
    bool escalated, redispatched, rebook;
    unsigned n_redispatches, n_escalations, n_reassignments;
} req_t;

#define LOAD_MAX 4096 /* (pool, member) pairs */

#define AWAY_MAX 4096 /* offline periods */

/* One agent's offline period (business time; to_ms 0 while it lasts). */
typedef struct away {
    uint16_t who;
    int64_t from_ms, to_ms;
} away_t;

/* Requests one pool gave one of its members. */
typedef struct load {
    uint16_t pool, member;
    unsigned n;
} load_t;

struct sim_stats {
    pthread_mutex_t mu;
    id_slot_t *ids;
    size_t n_ids;
    req_t *reqs;
    size_t n_reqs;
    bool ids_full, reqs_full;
    unsigned discharges, reminders, escalations, reassignments, redispatches, rebookings;
    unsigned send_failed, claims, withdrawn;
    unsigned receipts_negative;
    size_t open;                       /* accepted, neither acknowledged nor reported back */
    pthread_cond_t drained;            /* signalled when open reaches zero */
    char (*addrs)[RELAIS_ADDRESS_MAX]; /* [0] is "?" */
    size_t n_addrs;
    load_t loads[LOAD_MAX];
    size_t n_loads;
    away_t away[AWAY_MAX];
    size_t n_away;
};

int sim_stats_new(sim_stats_t **out)
{
    sim_stats_t *s = calloc(1, sizeof *s);
    if (s == NULL) return -ENOMEM;
    s->ids = calloc(ID_SLOTS, sizeof *s->ids);
    s->reqs = calloc(REQ_SLOTS, sizeof *s->reqs);
    if (s->ids == NULL || s->reqs == NULL) {
        free(s->ids);
        free(s->reqs);
        free(s);
        return -ENOMEM;
    }
    s->addrs = calloc(ADDR_MAX, sizeof *s->addrs);
    if (s->addrs == NULL) {
        free(s->ids);
        free(s->reqs);
        free(s);
        return -ENOMEM;
    }
    snprintf(s->addrs[0], RELAIS_ADDRESS_MAX, "?");
    s->n_addrs = 1;
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->drained, NULL);
    *out = s;
    return 0;
}

void sim_stats_free(sim_stats_t **sp)
{
    if (sp == NULL || *sp == NULL) return;
    pthread_mutex_destroy(&(*sp)->mu);
    pthread_cond_destroy(&(*sp)->drained);
    free((*sp)->ids);
    free((*sp)->reqs);
    free((*sp)->addrs);
    free(*sp);
    *sp = NULL;
}

static uint64_t hash_bytes(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 1099511628211ull;
    return h;
}

static bool is_open(uint8_t flags)
{
    return (flags & ID_SENT) && !(flags & (ID_HANDLED | ID_TOLD));
}

/* Keeps the count of messages accepted and not yet accounted for as a slot's flags go
 * from before to after, and wakes the drain when it reaches zero. Under s->mu. */
static void track_open(sim_stats_t *s, uint8_t before, uint8_t after)
{
    if (is_open(after) && !is_open(before)) s->open++;
    if (is_open(before) && !is_open(after) && --s->open == 0) pthread_cond_broadcast(&s->drained);
}

static id_slot_t *mark_id(sim_stats_t *s, const uint8_t *id, uint8_t flag)
{
    if (id == NULL) return NULL;
    size_t i = hash_bytes(id, RELAIS_MESSAGE_ID_LEN) & (ID_SLOTS - 1);
    for (size_t probes = 0; probes < ID_SLOTS; probes++, i = (i + 1) & (ID_SLOTS - 1)) {
        id_slot_t *slot = &s->ids[i];
        if (slot->flags == 0) {
            if (s->n_ids >= ID_SLOTS * 3 / 4) {
                s->ids_full = true;
                return NULL;
            }
            memcpy(slot->id, id, RELAIS_MESSAGE_ID_LEN);
            slot->flags = flag;
            s->n_ids++;
            track_open(s, 0, flag);
            return slot;
        }
        if (memcmp(slot->id, id, RELAIS_MESSAGE_ID_LEN) == 0) {
            uint8_t before = slot->flags;
            slot->flags |= flag;
            track_open(s, before, slot->flags);
            return slot;
        }
    }
    return NULL;
}

/* The index of addr in the table of addresses seen (0 when it is full). */
static uint16_t addr_index(sim_stats_t *s, const char *addr)
{
    for (size_t i = 1; i < s->n_addrs; i++) {
        if (strcmp(s->addrs[i], addr) == 0) return (uint16_t)i;
    }
    if (s->n_addrs >= ADDR_MAX) return 0;
    snprintf(s->addrs[s->n_addrs], RELAIS_ADDRESS_MAX, "%s", addr);
    return (uint16_t)s->n_addrs++;
}

/* The request of assistant self with this ref; created when create is set. */
static req_t *find_req(sim_stats_t *s, const char *self, const char *ref, bool create)
{
    if (ref == NULL || ref[0] == '\0') return NULL;
    char key[sizeof s->reqs[0].key];
    int n = snprintf(key, sizeof key, "%s|%s", self, ref);
    if (n < 0 || (size_t)n >= sizeof key) return NULL;
    size_t i = hash_bytes(key, (size_t)n) & (REQ_SLOTS - 1);
    for (size_t probes = 0; probes < REQ_SLOTS; probes++, i = (i + 1) & (REQ_SLOTS - 1)) {
        req_t *r = &s->reqs[i];
        if (r->key[0] == '\0') {
            if (!create) return NULL;
            if (s->n_reqs >= REQ_SLOTS * 3 / 4) {
                s->reqs_full = true;
                return NULL;
            }
            memcpy(r->key, key, (size_t)n + 1);
            s->n_reqs++;
            return r;
        }
        if (strcmp(r->key, key) == 0) return r;
    }
    return NULL;
}

static void acted(req_t *r, int64_t now)
{
    if (r->acted_ms == 0) r->acted_ms = now;
}

static void answered(req_t *r, int64_t now)
{
    acted(r, now);
    if (r->answer_ms == 0) r->answer_ms = now;
    if (r->outcome == OUT_OPEN || r->outcome == OUT_ESCALATED) r->outcome = OUT_ANSWERED;
}

static void booked(req_t *r, int64_t now)
{
    answered(r, now);
    if (r->booked_ms == 0) r->booked_ms = now;
    r->outcome = OUT_BOOKED;
}

static void on_request_event(sim_stats_t *s, const char *self, const relais_ref_event_t *ev,
                             int64_t now)
{
    bool opening = ev->kind == RELAIS_REF_EV_ACCEPTED && !ev->duplicate &&
                   (ev->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST ||
                    ev->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST ||
                    ev->body_case == RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST);
    req_t *r = find_req(s, self, ev->ref, opening);
    if (r == NULL) return;
    if (opening && r->sent_ms == 0) {
        /* From the SDK's dispatch, as its deadline is: the Accepted comes a little later. */
        r->sent_ms = ev->submitted_at_ms ? ev->submitted_at_ms : now;
        r->type = ev->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST ? REQ_APPOINTMENT
                  : ev->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST
                      ? REQ_TASK
                      : REQ_PREADMISSION;
        return;
    }
    switch (ev->milestone) {
    case RELAIS_REF_MS_APPOINTMENT_OFFERED:
    case RELAIS_REF_MS_PREADMISSION_DECIDED:
    case RELAIS_REF_MS_TASK_UPDATED:
        answered(r, now);
        break;
    case RELAIS_REF_MS_APPOINTMENT_CONFIRMED:
    case RELAIS_REF_MS_TASK_ACCEPTED:
    case RELAIS_REF_MS_PREADMISSION_CHOSEN:
        booked(r, now);
        break;
    case RELAIS_REF_MS_APPOINTMENT_FULFILLED:
    case RELAIS_REF_MS_TASK_COMPLETED:
    case RELAIS_REF_MS_ADMITTED:
        booked(r, now);
        r->outcome = OUT_DONE;
        break;
    case RELAIS_REF_MS_APPOINTMENT_NOSHOW:
    case RELAIS_REF_MS_TASK_FAILED:
        booked(r, now);
        r->outcome = OUT_NOSHOW;
        break;
    case RELAIS_REF_MS_APPOINTMENT_DECLINED:
    case RELAIS_REF_MS_TASK_REJECTED:
        answered(r, now);
        r->outcome = OUT_DECLINED;
        break;
    case RELAIS_REF_MS_ESCALATED:
        acted(r, now);
        r->escalated = true;
        r->n_escalations++;
        if (r->outcome == OUT_OPEN) r->outcome = OUT_ESCALATED;
        break;
    case RELAIS_REF_MS_REDISPATCHED:
        acted(r, now);
        r->redispatched = true;
        r->n_redispatches++;
        break;
    case RELAIS_REF_MS_REASSIGNED:
        r->n_reassignments++;
        break;
    case RELAIS_REF_MS_REBOOKED:
        r->rebook = true;
        break;
    default:
        break;
    }
}

/* One more request the pool gave member. Under s->mu. */
static void count_load(sim_stats_t *s, const char *pool, const char *member)
{
    uint16_t p = addr_index(s, pool), m = addr_index(s, member);
    for (size_t i = 0; i < s->n_loads; i++) {
        if (s->loads[i].pool == p && s->loads[i].member == m) {
            s->loads[i].n++;
            return;
        }
    }
    if (s->n_loads < LOAD_MAX) s->loads[s->n_loads++] = (load_t){p, m, 1};
}

void sim_stats_event(sim_stats_t *s, const char *self, const relais_ref_event_t *ev)
{
    int64_t now = relais_now_ms();
    pthread_mutex_lock(&s->mu);
    switch (ev->kind) {
    case RELAIS_REF_EV_ACCEPTED:
        if (!ev->duplicate) {
            id_slot_t *slot = mark_id(s, ev->message_id, ID_SENT);
            if (slot != NULL) {
                slot->body = (uint8_t)ev->body_case;
                slot->from = addr_index(s, self);
                slot->to = addr_index(s, ev->to);
            }
        }
        if (ev->body_case == RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION && !ev->duplicate)
            s->discharges++;
        break;
    case RELAIS_REF_EV_RECEIVED:
        mark_id(s, ev->message_id, ID_HANDLED);
        if (ev->via != NULL && ev->via[0] != '\0' &&
            (ev->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST ||
             ev->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST))
            count_load(s, ev->via, self);
        break;
    case RELAIS_REF_EV_RECEIPT:
        if (ev->status == RELAIS__V1__RECEIPT__STATUS__REFUSED ||
            ev->status == RELAIS__V1__RECEIPT__STATUS__EXPIRED ||
            ev->status == RELAIS__V1__RECEIPT__STATUS__UNCLAIMED) {
            mark_id(s, ev->message_id, ID_TOLD);
            s->receipts_negative++;
        }
        if (ev->milestone == RELAIS_REF_MS_CLAIMED) s->claims++;
        break;
    case RELAIS_REF_EV_SEND_FAILED:
        s->send_failed++;
        break;
    case RELAIS_REF_EV_NOTICE:
        break;
    }
    switch (ev->milestone) {
    case RELAIS_REF_MS_REMINDER:
        s->reminders++;
        break;
    case RELAIS_REF_MS_ESCALATED:
        s->escalations++;
        break;
    case RELAIS_REF_MS_REASSIGNED:
        s->reassignments++;
        break;
    case RELAIS_REF_MS_REDISPATCHED:
        s->redispatches++;
        break;
    case RELAIS_REF_MS_REBOOKED:
        s->rebookings++;
        break;
    case RELAIS_REF_MS_OFFER_WITHDRAWN:
        s->withdrawn++;
        break;
    default:
        break;
    }
    on_request_event(s, self, ev, now);
    pthread_mutex_unlock(&s->mu);
}

void sim_stats_submitted(sim_stats_t *s, const char *self, const uint8_t *message_id)
{
    pthread_mutex_lock(&s->mu);
    id_slot_t *slot = mark_id(s, message_id, ID_SENT);
    if (slot != NULL && slot->from == 0) slot->from = addr_index(s, self);
    pthread_mutex_unlock(&s->mu);
}

void sim_stats_offline(sim_stats_t *s, const char *self, int64_t from_ms, int64_t to_ms)
{
    pthread_mutex_lock(&s->mu);
    uint16_t who = addr_index(s, self);
    bool closed = false;
    for (size_t i = 0; to_ms != 0 && i < s->n_away; i++) {
        if (s->away[i].who == who && s->away[i].to_ms == 0) {
            s->away[i].to_ms = to_ms;
            closed = true;
        }
    }
    if (!closed && s->n_away < AWAY_MAX) s->away[s->n_away++] = (away_t){who, from_ms, to_ms};
    pthread_mutex_unlock(&s->mu);
}

/* When the requester of key ("assistant|ref") could act on a deadline at t: t, or when it
 * came back if it was away then — or went away less than `lag` after t, its loop not
 * having run the deadline's timer yet (the SDK then acts on the next start). Under s->mu. */
static int64_t able_at(sim_stats_t *s, const char *key, int64_t t, int64_t lag)
{
    const char *bar = strchr(key, '|');
    if (bar == NULL) return t;
    for (size_t i = 0; i < s->n_away; i++) {
        const away_t *w = &s->away[i];
        if (strncmp(s->addrs[w->who], key, (size_t)(bar - key)) != 0 ||
            s->addrs[w->who][bar - key] != '\0')
            continue;
        if (w->from_ms - lag <= t && (w->to_ms == 0 || t < w->to_ms))
            return w->to_ms != 0 ? w->to_ms : INT64_MAX / 2;
    }
    return t;
}

void sim_stats_acked(sim_stats_t *s, const uint8_t *message_id, bool final)
{
    if (!final) return;
    pthread_mutex_lock(&s->mu);
    mark_id(s, message_id, ID_HANDLED);
    pthread_mutex_unlock(&s->mu);
}

size_t sim_stats_wait_drained(sim_stats_t *s, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&s->mu);
    int rc = 0;
    while (s->open > 0 && rc != ETIMEDOUT) rc = pthread_cond_timedwait(&s->drained, &s->mu, &until);
    size_t open = s->open;
    pthread_mutex_unlock(&s->mu);
    return open;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Requests past a bound, named in the report (at most this many). */
#define NAMED_MAX 10

size_t sim_stats_report(sim_stats_t *s, const sim_run_info_t *in, FILE *f, sim_verdict_t *v)
{
    pthread_mutex_lock(&s->mu);
    unsigned counts[REQ_TYPES][OUT_OUTCOMES] = {{0}};
    unsigned totals[REQ_TYPES] = {0}, in_time[REQ_TYPES] = {0}, due_of[REQ_TYPES] = {0};
    unsigned escalated_reqs = 0, all = 0, all_in_time = 0;
    unsigned max_redispatches = 0, max_escalations = 0, chains[4] = {0};
    unsigned due = 0, late_strict = 0, late = 0, late_away = 0;
    const char *named[NAMED_MAX];
    const req_t *late_named[NAMED_MAX];
    int64_t late_by[NAMED_MAX];
    size_t n_named = 0, over_bound = 0, n_late_named = 0;
    /* A deadline fires on a timer of the machine: a stall delays it by the stall times the
     * factor, and the loop's millisecond granularity by the factor too. */
    int64_t tolerance = (int64_t)((in->stall_max_ms + 1.0) * in->factor);
    int64_t *to_booked = malloc(s->n_reqs * sizeof *to_booked + 1);
    size_t n_booked = 0;
    for (size_t i = 0; i < REQ_SLOTS; i++) {
        const req_t *r = &s->reqs[i];
        if (r->key[0] == '\0' || r->sent_ms == 0) continue;
        counts[r->type][r->outcome]++;
        totals[r->type]++;
        all++;
        /* Only requests whose deadline came before the end can have missed it. */
        bool is_due = in->end_ms == 0 || r->sent_ms + in->answer_ms <= in->end_ms;
        due_of[r->type] += is_due;
        if (is_due && r->answer_ms != 0 && r->answer_ms - r->sent_ms <= in->answer_ms) {
            in_time[r->type]++;
            all_in_time++;
        }
        escalated_reqs += r->escalated;
        if (r->booked_ms != 0 && r->type != REQ_PREADMISSION && to_booked != NULL)
            to_booked[n_booked++] = r->booked_ms - r->sent_ms;
        if (r->n_redispatches > max_redispatches) max_redispatches = r->n_redispatches;
        if (r->n_escalations > max_escalations) max_escalations = r->n_escalations;
        chains[r->n_reassignments < 3 ? r->n_reassignments : 3]++;
        if (r->n_redispatches > in->max_redispatches || r->n_escalations > in->max_escalations) {
            over_bound++;
            if (n_named < NAMED_MAX) named[n_named++] = r->key;
        }
        if (is_due) {
            due++;
            int64_t deadline = r->sent_ms + in->answer_ms;
            int64_t acted = r->acted_ms ? r->acted_ms : INT64_MAX;
            late_strict += acted > deadline;
            if (acted > deadline + tolerance) {
                /* A desk away at its deadline acts when it is back: late, but not the SDK's
                 * doing; counted apart. */
                int64_t able = able_at(s, r->key, deadline, tolerance);
                if (able > deadline && acted <= able + tolerance) {
                    late_away++;
                } else {
                    late++;
                    if (n_late_named < NAMED_MAX) {
                        late_by[n_late_named] = acted == INT64_MAX ? -1 : acted - deadline;
                        late_named[n_late_named++] = r;
                    }
                }
            }
        }
    }
    size_t sent = 0, handled = 0, told = 0, lost = 0;
    for (size_t i = 0; i < ID_SLOTS; i++) {
        uint8_t fl = s->ids[i].flags;
        if (!(fl & ID_SENT)) continue;
        sent++;
        if (fl & ID_HANDLED) {
            handled++;
        } else if (fl & ID_TOLD) {
            told++;
        } else {
            lost++;
        }
    }
    double median_h = -1;
    if (n_booked > 0) {
        qsort(to_booked, n_booked, sizeof *to_booked, cmp_i64);
        median_h = (double)to_booked[n_booked / 2] / 3600000.0;
    }
    double p90_h = n_booked > 0 ? (double)to_booked[n_booked * 9 / 10] / 3600000.0 : -1;
    free(to_booked);

    fprintf(f, "# relais-sim report\n\n");
    fprintf(f,
            "Territory: %u professionals, %u practices (%u assistants), %u hospitals, %u "
            "facilities, 1 coordinator; %u of the professionals never answer, %u offline "
            "periods, %u broker restart%s (SIGKILL).\n",
            in->professionals, in->practices, in->assistants, in->hospitals, in->facilities,
            in->silent, in->offline_periods, in->broker_restarts,
            in->broker_restarts == 1 ? "" : "s");
    fprintf(f, "Simulated: %u weeks at %.0f× in %.1f s of real time.", in->weeks, in->factor,
            in->real_seconds);
    if (in->broker_restarts > 0)
        fprintf(f, " relaisd was down %.0f ms (real) = %.1f h (simulated) at its restart.",
                in->restart_real_ms, in->restart_real_ms * in->factor / 3600000.0);
    fprintf(f, "\n\n");
    fprintf(f, "## Requests by type and outcome\n\n| type | total |");
    for (int o = 0; o < OUT_OUTCOMES; o++) fprintf(f, " %s |", outcome_names[o]);
    fprintf(f, " answered within %lld h (of those due) |\n|---|---:|",
            (long long)(in->answer_ms / 3600000));
    for (int o = 0; o < OUT_OUTCOMES; o++) fprintf(f, "---:|");
    fprintf(f, "---:|\n");
    for (int t = 0; t < REQ_TYPES; t++) {
        fprintf(f, "| %s | %u |", type_names[t], totals[t]);
        for (int o = 0; o < OUT_OUTCOMES; o++) fprintf(f, " %u |", counts[t][o]);
        fprintf(f, " %.1f %% (%u) |\n", due_of[t] ? 100.0 * in_time[t] / due_of[t] : 0.0,
                due_of[t]);
    }
    fprintf(f, "\n## Pathways\n\n");
    fprintf(f, "- discharge notifications: %u\n", s->discharges);
    fprintf(f,
            "- due requests answered within the deadline (from the SDK's dispatch): %.1f %% (%u "
            "of %u; %u requests in all)\n",
            due ? 100.0 * all_in_time / due : 0.0, all_in_time, due, all);
    fprintf(f, "- reminders: %u; escalations: %u (%u requests); coordinator reassignments: %u\n",
            s->reminders, s->escalations, escalated_reqs, s->reassignments);
    fprintf(f, "- re-dispatched to the next candidate: %u; rebooked after a no-show: %u\n",
            s->redispatches, s->rebookings);
    fprintf(f, "- pool offers claimed: %u (withdrawn from other members: %u)\n", s->claims,
            s->withdrawn);
    if (median_h >= 0) {
        fprintf(f, "- time from request to booked (simulated): median %.1f h, 90th percentile %.1f h\n",
                median_h, p90_h);
    } else {
        fprintf(f, "- time from request to booked: none booked\n");
    }

    fprintf(f, "\n## Bounds\n\n");
    fprintf(f, "- most re-dispatches of one request: %u (bound %u); most escalations: %u (bound %u)\n",
            max_redispatches, in->max_redispatches, max_escalations, in->max_escalations);
    fprintf(f, "- coordinator reassignments per request: none %u, one %u, two %u, three or more %u\n",
            chains[0], chains[1], chains[2], chains[3]);
    fprintf(f, "- **requests past a bound: %zu**\n", over_bound);
    for (size_t i = 0; i < n_named; i++) fprintf(f, "  - %s\n", named[i]);
    fprintf(f,
            "- due requests (deadline before the end): %u; acted on only when their deadline "
            "fired, or later (re-dispatched or escalated by the SDK at the deadline, which is "
            "on time, plus any late): %u; of which beyond the %.1f h the longest stall "
            "allows: %u because the requesting desk was offline at its deadline (acted on its "
            "return), **%u otherwise**\n",
            due, late_strict, (double)tolerance / 3600000.0, late_away, late);
    for (size_t i = 0; i < n_late_named; i++) {
        const req_t *r = late_named[i];
        if (late_by[i] < 0) {
            fprintf(f, "  - %s (%s): not acted on at all\n", r->key, type_names[r->type]);
        } else {
            fprintf(f,
                    "  - %s (%s): %.1f h late; answered %.1f h after the dispatch, %u "
                    "re-dispatches, %u escalations, ended %s\n",
                    r->key, type_names[r->type], (double)late_by[i] / 3600000.0,
                    r->answer_ms ? (double)(r->answer_ms - r->sent_ms) / 3600000.0 : -1.0,
                    r->n_redispatches, r->n_escalations, outcome_names[r->outcome]);
        }
    }

    fprintf(f, "\n## Pools: requests given to each member\n\n");
    fprintf(f, "| pool | members | requests | members given one | most to one member | share of the busiest | busiest ÷ mean |\n|---|---:|---:|---:|---:|---:|---:|\n");
    for (size_t p = 0; p < in->n_pools; p++) {
        unsigned total = 0, most = 0, served = 0;
        for (size_t i = 1; i < s->n_addrs; i++) {
            if (strcmp(s->addrs[i], in->pools[p].address) != 0) continue;
            for (size_t k = 0; k < s->n_loads; k++) {
                if (s->loads[k].pool != i) continue;
                total += s->loads[k].n;
                served++;
                if (s->loads[k].n > most) most = s->loads[k].n;
            }
        }
        double mean = in->pools[p].members ? (double)total / in->pools[p].members : 0;
        fprintf(f, "| %s | %u | %u | %u | %u | %.0f %% | %.1f |\n", in->pools[p].address,
                in->pools[p].members, total, served, most, total ? 100.0 * most / total : 0.0,
                mean > 0 ? most / mean : 0.0);
    }

    fprintf(f, "\n## Machine\n\n");
    fprintf(f,
            "- longest stall of a plain thread (woken every 10 ms): %.0f ms real = %.1f h "
            "simulated; stalls over 100 ms: %u\n",
            in->watch_stall_ms, in->watch_stall_ms * in->factor / 3600000.0, in->stalls);
    fprintf(f,
            "- most an assistant's loop ran a timer late (probed every 50 ms): %.0f ms real = "
            "%.1f h simulated\n",
            in->loop_lag_ms, in->loop_lag_ms * in->factor / 3600000.0);
    fprintf(f,
            "- deadlines are judged with the larger, %.0f ms real = %.1f h simulated, as "
            "tolerance\n",
            in->stall_max_ms, in->stall_max_ms * in->factor / 3600000.0);

    fprintf(f, "\n## Messages\n\n");
    if (in->broker_accepted > 0 && in->real_seconds > 0) {
        fprintf(f, "- accepted by the broker (its own count%s): %llu, %.0f messages per second (real time)\n",
                in->broker_restarts ? ", last run only" : "",
                (unsigned long long)in->broker_accepted,
                (double)in->broker_accepted / in->real_seconds);
    }
    fprintf(f,
            "- submitted by the agents and accepted (applications' and SDKs' own): %zu; "
            "acknowledged by their recipients: %zu\n",
            sent, handled);
    fprintf(f, "- reported back to their sender (refused, expired, unclaimed): %zu\n", told);
    fprintf(f, "- rejected at submission (the sender was told at once): %u\n", s->send_failed);
    if (in->undrained > 0)
        fprintf(f, "- still open when the drain gave up: %zu\n", in->undrained);
    fprintf(f, "- **lost: %zu**\n", lost);
    size_t listed = 0;
    for (size_t i = 0; i < ID_SLOTS && listed < 20; i++) {
        const id_slot_t *sl = &s->ids[i];
        if (!(sl->flags & ID_SENT) || (sl->flags & (ID_HANDLED | ID_TOLD))) continue;
        char idbuf[37];
        fprintf(f, "  - %s %s → %s (%s)\n", sl->body ? relais_ref_body_title(sl->body) : "(SDK's own)",
                s->addrs[sl->from], s->addrs[sl->to],
                relais_id_format(sl->id, RELAIS_MESSAGE_ID_LEN, idbuf));
        listed++;
    }
    if (s->ids_full || s->reqs_full)
        fprintf(f, "\nWARNING: the ledgers were full; the figures above are incomplete.\n");
    sim_verdict_t verdict = {.lost = lost + (s->ids_full ? 1 : 0), .over_bound = over_bound,
                             .late = late};
    pthread_mutex_unlock(&s->mu);
    if (v != NULL) *v = verdict;
    return verdict.lost + verdict.over_bound + verdict.late;
}
