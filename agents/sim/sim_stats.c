/*
 * relais-sim's ledgers and report (see sim_stats.h). Open addressing over fixed tables
 * sized for a few hundred thousand messages; a full table is reported, never overwritten.
 */
#include <errno.h>
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
    bool escalated, redispatched, rebook;
} req_t;

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

static void answered(req_t *r, int64_t now)
{
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
        r->sent_ms = now;
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
        r->escalated = true;
        if (r->outcome == OUT_OPEN) r->outcome = OUT_ESCALATED;
        break;
    case RELAIS_REF_MS_REDISPATCHED:
        r->redispatched = true;
        break;
    case RELAIS_REF_MS_REBOOKED:
        r->rebook = true;
        break;
    default:
        break;
    }
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

size_t sim_stats_report(sim_stats_t *s, const sim_run_info_t *in, FILE *f)
{
    pthread_mutex_lock(&s->mu);
    unsigned counts[REQ_TYPES][OUT_OUTCOMES] = {{0}};
    unsigned totals[REQ_TYPES] = {0}, in_time[REQ_TYPES] = {0};
    unsigned escalated_reqs = 0, all = 0, all_in_time = 0;
    int64_t *to_booked = malloc(s->n_reqs * sizeof *to_booked + 1);
    size_t n_booked = 0;
    for (size_t i = 0; i < REQ_SLOTS; i++) {
        const req_t *r = &s->reqs[i];
        if (r->key[0] == '\0' || r->sent_ms == 0) continue;
        counts[r->type][r->outcome]++;
        totals[r->type]++;
        all++;
        if (r->answer_ms != 0 && r->answer_ms - r->sent_ms <= in->answer_ms) {
            in_time[r->type]++;
            all_in_time++;
        }
        escalated_reqs += r->escalated;
        if (r->booked_ms != 0 && r->type != REQ_PREADMISSION && to_booked != NULL)
            to_booked[n_booked++] = r->booked_ms - r->sent_ms;
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
    free(to_booked);

    fprintf(f, "# relais-sim report\n\n");
    fprintf(f,
            "Territory: %u professionals, %u practices (%u assistants), %u hospitals, %u "
            "facilities, 1 coordinator; %u of the professionals never answer, %u offline "
            "periods.\n",
            in->professionals, in->practices, in->assistants, in->hospitals, in->facilities,
            in->silent, in->offline_periods);
    fprintf(f, "Simulated: %u weeks at %.0f× in %.1f s of real time.\n\n", in->weeks, in->factor,
            in->real_seconds);
    fprintf(f, "## Requests by type and outcome\n\n| type | total |");
    for (int o = 0; o < OUT_OUTCOMES; o++) fprintf(f, " %s |", outcome_names[o]);
    fprintf(f, " answered within %lld h |\n|---|---:|", (long long)(in->answer_ms / 3600000));
    for (int o = 0; o < OUT_OUTCOMES; o++) fprintf(f, "---:|");
    fprintf(f, "---:|\n");
    for (int t = 0; t < REQ_TYPES; t++) {
        fprintf(f, "| %s | %u |", type_names[t], totals[t]);
        for (int o = 0; o < OUT_OUTCOMES; o++) fprintf(f, " %u |", counts[t][o]);
        fprintf(f, " %.1f %% |\n", totals[t] ? 100.0 * in_time[t] / totals[t] : 0.0);
    }
    fprintf(f, "\n## Pathways\n\n");
    fprintf(f, "- discharge notifications: %u\n", s->discharges);
    fprintf(f, "- requests answered within the deadline: %.1f %% (%u of %u)\n",
            all ? 100.0 * all_in_time / all : 0.0, all_in_time, all);
    fprintf(f, "- reminders: %u; escalations: %u (%u requests); coordinator reassignments: %u\n",
            s->reminders, s->escalations, escalated_reqs, s->reassignments);
    fprintf(f, "- re-dispatched to the next candidate: %u; rebooked after a no-show: %u\n",
            s->redispatches, s->rebookings);
    fprintf(f, "- pool offers claimed: %u (withdrawn from other members: %u)\n", s->claims,
            s->withdrawn);
    if (median_h >= 0) {
        fprintf(f, "- median time from request to booked: %.1f h (simulated)\n", median_h);
    } else {
        fprintf(f, "- median time from request to booked: none booked\n");
    }
    fprintf(f, "\n## Messages\n\n");
    if (in->broker_accepted > 0 && in->real_seconds > 0) {
        fprintf(f, "- accepted by the broker: %llu, %.0f messages per second (real time)\n",
                (unsigned long long)in->broker_accepted,
                (double)in->broker_accepted / in->real_seconds);
    }
    fprintf(f, "- sent by the agents and accepted: %zu; acknowledged by their recipients: %zu\n",
            sent, handled);
    fprintf(f, "- reported back to their sender (refused, expired, unclaimed): %zu\n", told);
    fprintf(f, "- rejected at submission (the sender was told at once): %u\n", s->send_failed);
    fprintf(f, "- **lost: %zu**\n", lost);
    size_t listed = 0;
    for (size_t i = 0; i < ID_SLOTS && listed < 20; i++) {
        const id_slot_t *sl = &s->ids[i];
        if (!(sl->flags & ID_SENT) || (sl->flags & (ID_HANDLED | ID_TOLD))) continue;
        char idbuf[37];
        fprintf(f, "  - %s %s → %s (%s)\n", relais_ref_body_title(sl->body), s->addrs[sl->from],
                s->addrs[sl->to], relais_id_format(sl->id, RELAIS_MESSAGE_ID_LEN, idbuf));
        listed++;
    }
    if (s->ids_full || s->reqs_full)
        fprintf(f, "\nWARNING: the ledgers were full; the figures above are incomplete.\n");
    pthread_mutex_unlock(&s->mu);
    return lost + (s->ids_full ? 1 : 0);
}
