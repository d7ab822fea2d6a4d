/*
 * The demo's timeline and story tracking (see demo_story.h). Each role event is matched
 * to a story by the identifiers it carries (the request id, the encounter id, or a
 * conversation already seen in that story), printed as one line, and checked off against
 * the story's steps. A story completes when all its steps happened; it fails at once on a
 * rejection, a decline, a refusal or an expiry, and otherwise when its time runs out, in
 * which case the first step that did not happen is what the demo reports.
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

void demo__story_setup(demo_t *d, const char *assistant, const char *request_id,
                       const char *encounter_id)
{
    snprintf(d->request_id, sizeof d->request_id, "%s", request_id);
    snprintf(d->encounter_id, sizeof d->encounter_id, "%s", encounter_id);
    d->addr_width = (int)strlen(assistant);

    demo_story_t *s1 = &d->stories[0];
    s1->label = "story 1";
    s1->title = "the assistant books a physiotherapy appointment for the GP's patient";
    s1->steps[0] = "the broker to accept the AppointmentRequest";
    s1->steps[1] = "the physiotherapist to receive the AppointmentRequest";
    s1->steps[2] = "the assistant to receive an AppointmentOffer";
    s1->steps[3] = "the physiotherapist to receive the AppointmentBook";
    s1->steps[4] = "the assistant to receive the AppointmentConfirm";

    demo_story_t *s2 = &d->stories[1];
    s2->label = "story 2";
    s2->title = "a heart-failure discharge is followed up by the nurse";
    s2->steps[0] = "the broker to accept the DischargeNotification";
    s2->steps[1] = "the assistant to receive the DischargeNotification";
    s2->steps[2] = "the broker to accept the CareTaskRequest";
    s2->steps[3] = "the nurse to receive the CareTaskRequest";
    s2->steps[4] = "the assistant to receive the nurse's CareTaskUpdate ACCEPTED";
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

static const unsigned all_steps = (1u << DEMO_STEPS) - 1;

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
    for (int i = 0; i < DEMO_STEPS; i++) {
        if ((s->seen & (1u << i)) == 0) return s->steps[i];
    }
    return "nothing (all steps seen)";
}

static bool story_over(demo_t *d)
{
    for (int i = 0; i < 2; i++) {
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

static demo_story_t *story_of(demo_t *d, const relais_ref_event_t *ev)
{
    demo_story_t *s = NULL;
    if (ev->ref[0] != '\0' && strcmp(ev->ref, d->request_id) == 0) {
        s = &d->stories[0];
    } else if (strcmp(ev->encounter_id, d->encounter_id) == 0 ||
               strcmp(ev->ref, d->encounter_id) == 0) {
        s = &d->stories[1];
    } else if (ev->conversation_id != NULL) {
        for (int i = 0; i < 2 && s == NULL; i++) {
            if (conv_known(&d->stories[i], ev->conversation_id)) s = &d->stories[i];
        }
    }
    if (s != NULL && ev->conversation_id != NULL && !conv_known(s, ev->conversation_id) &&
        s->n_convs < DEMO_CONVS) {
        memcpy(s->convs[s->n_convs++], ev->conversation_id, RELAIS_MESSAGE_ID_LEN);
    }
    return s;
}

/* The step of story index si that ev is, or -1. */
static int step_of(int si, const relais_ref_event_t *ev)
{
    bool acc = ev->kind == RELAIS_REF_EV_ACCEPTED, rcv = ev->kind == RELAIS_REF_EV_RECEIVED;
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
        demo__print(d, "%-*s   receipt: message …%s %s by %s%s%s [%s]", w, ev->from,
                    short_id(ev->message_id, idbuf), receipt_status(ev->status), ev->to,
                    ev->reason[0] != '\0' ? ": " : "", ev->reason, label);
        break;
    case RELAIS_REF_EV_NOTICE:
        demo__print(d, "%-*s · %s [%s]", w, ev->from, ev->state, label);
        break;
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
        if (step >= 0 && !s->failed) {
            s->seen |= 1u << step;
            if (step == DEMO_STEPS - 1 && s->outcome[0] == '\0') {
                snprintf(s->outcome, sizeof s->outcome, "%s", ev->state);
            }
            if (s->seen == all_steps && !s->done) {
                s->done = true;
                s->finished_ms = demo__elapsed_ms(d);
            }
        }
    }
    pthread_cond_broadcast(&d->cv);
    pthread_mutex_unlock(&d->mu);
}

void demo__report(demo_t *d, FILE *out)
{
    pthread_mutex_lock(&d->mu);
    for (int i = 0; i < 2; i++) {
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
