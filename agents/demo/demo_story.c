/*
 * The demo's timeline and story tracking (see demo_story.h). Each role event is matched
 * to a story by the identifiers it carries (the request id, the encounter id, or a
 * conversation already seen in that story; a withdrawn offer by its message id, which is
 * its request's conversation, else by the pool story being the one running), printed as one line,
 * and checked off against the story's steps. A story completes when all its steps happened; it
 * fails at once on a rejection, a decline, a refusal or an expiry, and otherwise when its time runs
 * out, in which case the first step that did not happen is what the demo reports.
 */
#include <stdarg.h>
#include <string.h>

#include "demo_story.h"

#define TYPE_WIDTH 22

int demo__init(demo_t *d)
{
    pthread_condattr_t ca;
    if (pthread_condattr_init(&ca) != 0) return -1;
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    int rc = pthread_cond_init(&d->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0) return -1;
    if (pthread_mutex_init(&d->mu, NULL) != 0) {
        pthread_cond_destroy(&d->cv);
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &d->t0);
    d->broker.pid = 0;
    d->broker.pidfd = d->broker.out_fd = -1;
    return 0;
}

void demo__fini(demo_t *d)
{
    pthread_cond_destroy(&d->cv);
    pthread_mutex_destroy(&d->mu);
}
/* The four stories and the steps each must go through, in their usual order. */
static const struct {
    const char *label, *title, *steps[DEMO_STEPS];
} scripts[DEMO_STORIES] = {
    {"story 1",
     "the assistant books a physiotherapy appointment for the GP's patient",
     {"the broker to accept the AppointmentRequest",
      "the physiotherapist to receive the AppointmentRequest",
      "the assistant to receive an AppointmentOffer",
      "the physiotherapist to receive the AppointmentBook",
      "the assistant to receive the AppointmentConfirm"}},
    {"story 2",
     "a heart-failure discharge is followed up by the nurse",
     {"the broker to accept the DischargeNotification",
      "the assistant to receive the DischargeNotification",
      "the broker to accept the CareTaskRequest", "the nurse to receive the CareTaskRequest",
      "the assistant to receive the nurse's CareTaskUpdate ACCEPTED"}},
    {"story 3",
     "a request to the physiotherapists' pool is claimed by one of its two members",
     {"the broker to accept the AppointmentRequest to the pool",
      "a physiotherapist to claim the offered AppointmentRequest",
      "the other physiotherapist to see the offer withdrawn",
      "the assistant to receive the CLAIMED receipt",
      "the assistant to receive an AppointmentOffer",
      "the claiming physiotherapist to receive the AppointmentBook",
      "the assistant to receive the AppointmentConfirm"}},
    {"story 4",
     "the cardiologist never answers: reminder, escalation, the coordinator reassigns",
     {"the broker to accept the AppointmentRequest",
      "the cardiologist to receive the AppointmentRequest", "the assistant's reminder",
      "the assistant's escalation at the deadline", "the coordinator to receive the Escalation",
      "the assistant to receive the coordinator's Note"}},
};

void demo__story_setup(demo_t *d, const char *assistant, const char *request_id,
                       const char *encounter_id, const char *pool_request_id,
                       const char *silent_request_id)
{
    snprintf(d->request_id, sizeof d->request_id, "%s", request_id);
    snprintf(d->encounter_id, sizeof d->encounter_id, "%s", encounter_id);
    snprintf(d->pool_request_id, sizeof d->pool_request_id, "%s", pool_request_id);
    snprintf(d->silent_request_id, sizeof d->silent_request_id, "%s", silent_request_id);
    d->addr_width = (int)strlen(assistant);

    for (int i = 0; i < DEMO_STORIES; i++) {
        demo_story_t *st = &d->stories[i];
        st->label = scripts[i].label;
        st->title = scripts[i].title;
        for (st->n_steps = 0; st->n_steps < DEMO_STEPS && scripts[i].steps[st->n_steps];
             st->n_steps++)
            st->steps[st->n_steps] = scripts[i].steps[st->n_steps];
    }
}

int64_t demo__elapsed_ms(demo_t *d)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)(now.tv_sec - d->t0.tv_sec) * 1000 + (now.tv_nsec - d->t0.tv_nsec) / 1000000;
}

void demo__print(demo_t *d, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    char when[24];
    snprintf(when, sizeof when, "+%lldms", (long long)demo__elapsed_ms(d));
    printf("%9s  %s\n", when, line);
    fflush(stdout);
}

bool demo__wait(demo_t *d, int timeout_ms, bool (*done)(demo_t *), bool (*abort)(demo_t *))
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (deadline.tv_nsec >= 1000000000) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000;
    }
    while (!done(d) && (abort == NULL || !abort(d))) {
        if (pthread_cond_timedwait(&d->cv, &d->mu, &deadline) != 0) break; /* ETIMEDOUT */
    }
    return done(d);
}

/* ---- Stories ------------------------------------------------------------------------- */

static unsigned all_steps(const demo_story_t *s)
{
    return (1u << s->n_steps) - 1;
}

static void fail_locked(demo_t *d, demo_story_t *s, const char *what, const char *why)
{
    if (s->done || s->failed) return;
    s->failed = true;
    s->finished_ms = demo__elapsed_ms(d);
    int n = snprintf(s->failure, sizeof s->failure, "%s: %s", what, why);
    if (n >= (int)sizeof s->failure) {
        /* A long reason is cut; what failed is named first, so it survives. */
        memcpy(s->failure + sizeof s->failure - 4, "...", 4);
    }
    pthread_cond_broadcast(&d->cv);
}

void demo__story_fail(demo_t *d, demo_story_t *s, const char *what, const char *why)
{
    pthread_mutex_lock(&d->mu);
    fail_locked(d, s, what, why);
    pthread_mutex_unlock(&d->mu);
}

static const char *first_missing(const demo_story_t *s)
{
    for (int i = 0; i < s->n_steps; i++) {
        if ((s->seen & (1u << i)) == 0) return s->steps[i];
    }
    return "nothing (all steps seen)";
}

static bool story_over(demo_t *d)
{
    for (int i = 0; i < DEMO_STORIES; i++) {
        if (d->stories[i].running && !(d->stories[i].done || d->stories[i].failed)) {
            return false;
        }
    }
    return true;
}

void demo__wait_story(demo_t *d, demo_story_t *s, int timeout_ms)
{
    demo__wait(d, timeout_ms, story_over, NULL);
    if (!s->done && !s->failed) {
        char why[200];
        snprintf(why, sizeof why, "still waiting for %s", first_missing(s));
        char what[96];
        snprintf(what, sizeof what, "did not complete within %d s", timeout_ms / 1000);
        fail_locked(d, s, what, why);
    }
}

static bool conv_known(const demo_story_t *s, const uint8_t *conv)
{
    for (size_t i = 0; i < s->n_convs; i++) {
        if (memcmp(s->convs[i], conv, RELAIS_MESSAGE_ID_LEN) == 0) return true;
    }
    return false;
}

static void remember_conv(demo_story_t *s, const uint8_t *conv)
{
    if (conv != NULL && !conv_known(s, conv) && s->n_convs < DEMO_CONVS) {
        memcpy(s->convs[s->n_convs++], conv, RELAIS_MESSAGE_ID_LEN);
    }
}

static demo_story_t *story_by_conv(demo_t *d, const uint8_t *conv)
{
    for (int i = 0; conv != NULL && i < DEMO_STORIES; i++) {
        if (conv_known(&d->stories[i], conv)) return &d->stories[i];
    }
    return NULL;
}

static demo_story_t *story_of(demo_t *d, const relais_ref_event_t *ev)
{
    demo_story_t *s = NULL;
    if (ev->ref[0] != '\0' && strcmp(ev->ref, d->request_id) == 0) {
        s = &d->stories[0];
    } else if (strcmp(ev->encounter_id, d->encounter_id) == 0 ||
               strcmp(ev->ref, d->encounter_id) == 0) {
        s = &d->stories[1];
    } else if (ev->ref[0] != '\0' && strcmp(ev->ref, d->pool_request_id) == 0) {
        s = &d->stories[2];
    } else if (ev->ref[0] != '\0' && strcmp(ev->ref, d->silent_request_id) == 0) {
        s = &d->stories[3];
    } else if (ev->milestone == RELAIS_REF_MS_OFFER_WITHDRAWN) {
        /* The offer's message id opened its request's conversation; the withdrawal may also
         * be reported before the request's acceptance named it, while story 3 runs. */
        s = story_by_conv(d, ev->message_id);
        if (s == NULL && d->stories[2].running) s = &d->stories[2];
    } else {
        s = story_by_conv(d, ev->conversation_id);
    }
    if (s != NULL) remember_conv(s, ev->conversation_id);
    return s;
}

/* The step of story index si that ev is, or -1. */
static int step_of(int si, const relais_ref_event_t *ev)
{
    bool acc = ev->kind == RELAIS_REF_EV_ACCEPTED, rcv = ev->kind == RELAIS_REF_EV_RECEIVED;
    if (si == 2) { /* the pool: story 1's appointment, with the claim in between */
        switch (ev->body_case) {
        case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
            return acc ? 0 : rcv ? 1 : -1;
        case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
            return rcv ? 4 : -1;
        case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK:
            return rcv ? 5 : -1;
        case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
            return rcv && ev->milestone == RELAIS_REF_MS_APPOINTMENT_CONFIRMED ? 6 : -1;
        default:
            if (ev->milestone == RELAIS_REF_MS_OFFER_WITHDRAWN) return 2;
            if (ev->milestone == RELAIS_REF_MS_CLAIMED) return 3;
            return -1;
        }
    }
    if (si == 3) { /* the silent cardiologist; step 4 comes from demo__on_escalation() */
        if (ev->body_case == RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST)
            return acc ? 0 : rcv ? 1 : -1;
        if (ev->body_case == RELAIS__V1__ENVELOPE__BODY_NOTE) return rcv ? 5 : -1;
        if (ev->milestone == RELAIS_REF_MS_REMINDER) return 2;
        if (ev->milestone == RELAIS_REF_MS_ESCALATED) return 3;
        return -1;
    }
    switch (ev->body_case) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
        if (si == 0) return acc ? 0 : rcv ? 1 : -1;
        return -1;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
        return si == 0 && rcv ? 2 : -1;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK:
        return si == 0 && rcv ? 3 : -1;
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
        return si == 0 && rcv && ev->milestone == RELAIS_REF_MS_APPOINTMENT_CONFIRMED ? 4 : -1;
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION:
        if (si == 1) return acc ? 0 : rcv ? 1 : -1;
        return -1;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST:
        if (si == 1) return acc ? 2 : rcv ? 3 : -1;
        return -1;
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE:
        return si == 1 && rcv && ev->milestone == RELAIS_REF_MS_TASK_ACCEPTED ? 4 : -1;
    default:
        return -1;
    }
}

static const char *receipt_status(int status)
{
    switch (status) {
    case RELAIS__V1__RECEIPT__STATUS__DELIVERED:
        return "delivered";
    case RELAIS__V1__RECEIPT__STATUS__PROCESSED:
        return "processed";
    case RELAIS__V1__RECEIPT__STATUS__REFUSED:
        return "REFUSED";
    case RELAIS__V1__RECEIPT__STATUS__EXPIRED:
        return "EXPIRED";
    case RELAIS__V1__RECEIPT__STATUS__UNCLAIMED:
        return "unclaimed";
    case RELAIS__V1__RECEIPT__STATUS__CLAIMED:
        return "claimed";
    default:
        return "unknown";
    }
}

/* The random tail of a UUIDv7, which tells messages apart where the head (time) does not. */
static const char *short_id(const uint8_t *id, char buf[37])
{
    if (id == NULL) return "-";
    relais_id_format(id, RELAIS_MESSAGE_ID_LEN, buf);
    return buf + 24;
}

static void print_event(demo_t *d, const relais_ref_event_t *ev, const demo_story_t *s)
{
    const char *type = relais_ref_body_title(ev->body_case);
    const char *label = s != NULL ? s->label : "outside the stories";
    char idbuf[37];
    int w = d->addr_width;
    switch (ev->kind) {
    case RELAIS_REF_EV_RECEIVED:
        demo__print(d, "%-*s → %-*s %-*s [%s: %s]", w, ev->from, w, ev->to, TYPE_WIDTH, type, label,
                    ev->state);
        break;
    case RELAIS_REF_EV_ACCEPTED:
        demo__print(d, "%-*s ✓ %s accepted by the broker%s (stored, id …%s)", w, ev->from, type,
                    ev->duplicate ? " again" : "", short_id(ev->message_id, idbuf));
        break;
    case RELAIS_REF_EV_SEND_FAILED:
        demo__print(d, "%-*s ✗ %s to %s not accepted: %s (%s) [%s]", w, ev->from, type, ev->to,
                    relais_err_name(ev->status), ev->reason, label);
        break;
    case RELAIS_REF_EV_RECEIPT:
        if (ev->milestone == RELAIS_REF_MS_CLAIMED) {
            demo__print(d, "%-*s   receipt: message …%s to %s %s [%s]", w, ev->from,
                        short_id(ev->message_id, idbuf), ev->to, ev->state, label);
            break;
        }
        demo__print(d, "%-*s   receipt: message …%s %s by %s%s%s [%s]", w, ev->from,
                    short_id(ev->message_id, idbuf), receipt_status(ev->status), ev->to,
                    ev->reason[0] != '\0' ? ": " : "", ev->reason, label);
        break;
    case RELAIS_REF_EV_NOTICE:
        demo__print(d, "%-*s · %s [%s]", w, ev->from, ev->state, label);
        break;
    }
}

/* Checks step off s (caller holds d->mu); the last step's state is the default outcome. */
static void see_step(demo_t *d, demo_story_t *s, int step, const char *state)
{
    s->seen |= 1u << step;
    if (step == s->n_steps - 1 && s->outcome[0] == '\0') {
        snprintf(s->outcome, sizeof s->outcome, "%s", state);
    }
    if (s->seen == all_steps(s) && !s->done) {
        s->done = true;
        s->finished_ms = demo__elapsed_ms(d);
    }
}

void demo__on_event(const relais_ref_event_t *ev, void *ud)
{
    demo_t *d = ud;
    pthread_mutex_lock(&d->mu);
    demo_story_t *s = story_of(d, ev);
    print_event(d, ev, s);
    if (s != NULL) {
        char what[128];
        snprintf(what, sizeof what, "%s from %s", relais_ref_body_title(ev->body_case), ev->from);
        if (ev->kind == RELAIS_REF_EV_SEND_FAILED) {
            char why[RELAIS_REASON_MAX + 64];
            snprintf(why, sizeof why, "not accepted, %s%s%s", relais_err_name(ev->status),
                     ev->reason[0] != '\0' ? ": " : "", ev->reason);
            fail_locked(d, s, what, why);
        } else if (ev->kind == RELAIS_REF_EV_RECEIPT &&
                   (ev->status == RELAIS__V1__RECEIPT__STATUS__REFUSED ||
                    ev->status == RELAIS__V1__RECEIPT__STATUS__EXPIRED)) {
            char idbuf[37], who[RELAIS_ADDRESS_MAX + 64];
            snprintf(who, sizeof who, "message …%s %s by %s", short_id(ev->message_id, idbuf),
                     receipt_status(ev->status), ev->to);
            fail_locked(d, s, who, ev->reason[0] != '\0' ? ev->reason : "no reason given");
        } else if (ev->milestone == RELAIS_REF_MS_APPOINTMENT_DECLINED ||
                   ev->milestone == RELAIS_REF_MS_TASK_REJECTED ||
                   ev->milestone == RELAIS_REF_MS_FAILED) {
            fail_locked(d, s, what, ev->state);
        }
        /* The nurse's own words on the task are the story's outcome. */
        if (ev->kind == RELAIS_REF_EV_ACCEPTED &&
            ev->body_case == RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE) {
            snprintf(s->outcome, sizeof s->outcome, "nurse %s", ev->state);
        }
        int step = step_of((int)(s - d->stories), ev);
        if (s == &d->stories[2] && step == 1) {
            snprintf(d->claimed_by, sizeof d->claimed_by, "%s", ev->to);
        } else if (s == &d->stories[2] && step == 2) {
            snprintf(d->withdrawn_from, sizeof d->withdrawn_from, "%s", ev->from);
        }
        if (step >= 0 && step < s->n_steps && !s->failed) see_step(d, s, step, ev->state);
        if (s == &d->stories[2] && !d->offer_summary_printed && d->claimed_by[0] != '\0' &&
            d->withdrawn_from[0] != '\0') {
            d->offer_summary_printed = true;
            demo__print(d, "%-*s · offered to 2 members: claimed by %s, withdrawn from %s [%s]",
                        d->addr_width, DEMO_PHYSIO_POOL, d->claimed_by, d->withdrawn_from,
                        s->label);
        }
    }
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void demo__on_escalation(const relais_ref_escalation_t *esc, void *ud)
{
    demo_t *d = ud;
    pthread_mutex_lock(&d->mu);
    demo_story_t *s = story_by_conv(d, esc->conversation_id);
    char idbuf[37];
    demo__print(d, "%-*s ← Escalation from %s: conversation …%s, %s responsible: %s [%s]",
                d->addr_width, DEMO_COORDINATOR, esc->from, short_id(esc->conversation_id, idbuf),
                esc->responsible[0] != '\0' ? esc->responsible : "nobody named", esc->reason,
                s != NULL ? s->label : "outside the stories");
    demo__print(d, "%-*s · %s%s, in a Note to %s", d->addr_width, DEMO_COORDINATOR,
                esc->reassigned_to[0] != '\0' ? "reassigns to " : "no one to reassign to",
                esc->reassigned_to, esc->from);
    if (s != NULL) {
        /* The coordinator's Note answers in the escalation's own conversation. */
        remember_conv(s, esc->message_id);
        if (!s->failed) {
            snprintf(s->outcome, sizeof s->outcome, "escalated to %s, reassigned to %s",
                     DEMO_COORDINATOR,
                     esc->reassigned_to[0] != '\0' ? esc->reassigned_to : "nobody");
            see_step(d, s, 4, "");
        }
    }
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void demo__report(demo_t *d, FILE *out)
{
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < DEMO_STORIES; i++) {
        const demo_story_t *s = &d->stories[i];
        if (s->done) {
            fprintf(out, "%s completed in %lld ms: %s\n", s->label,
                    (long long)(s->finished_ms - s->started_ms), s->outcome);
        } else if (s->failed) {
            fprintf(out, "%s FAILED (%s): %s\n", s->label, s->title, s->failure);
        } else {
            fprintf(out, "%s not played (%s)\n", s->label, s->title);
        }
    }
    pthread_mutex_unlock(&d->mu);
}
