/*
 * Shared machinery of the reference roles: every submission goes through ref__submit() so
 * that the broker's Accepted (or the rejection) comes back to the role's observer as an
 * event naming the conversation, and every delivery and receipt is reported the same way.
 * Also the readable names of message types used in timelines and logs.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ref_internal.h"

/* A submission waiting for the broker's answer: copies of what the event will say. */
typedef struct pending {
    ref__emitter_t em;
    int body_case;
    char *to;
    char *on_behalf_of;
    char *ref;
    char *encounter_id;
    char *state;
    uint8_t conversation_id[RELAIS_MESSAGE_ID_LEN];
    bool has_conversation;
    int64_t submitted_ms;
} pending_t;

const char *relais_ref_body_title(int body_case)
{
    switch (body_case) {
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST:
        return "AppointmentRequest";
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER:
        return "AppointmentOffer";
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE:
        return "AppointmentDecline";
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK:
        return "AppointmentBook";
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
        return "AppointmentConfirm";
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME:
        return "AppointmentOutcome";
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL:
        return "AppointmentCancel";
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST:
        return "PreadmissionRequest";
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION:
        return "PreadmissionDecision";
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE:
        return "PreadmissionChoice";
    case RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL:
        return "PreadmissionCancel";
    case RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE:
        return "AdmissionNotice";
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION:
        return "DischargeNotification";
    case RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED:
        return "DischargeCancelled";
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST:
        return "CareTaskRequest";
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE:
        return "CareTaskUpdate";
    case RELAIS__V1__ENVELOPE__BODY_NOTE:
        return "Note";
    case RELAIS__V1__ENVELOPE__BODY_ESCALATION:
        return "Escalation";
    default:
        return "Unknown";
    }
}

static void pending_free(pending_t *p)
{
    if (p == NULL) return;
    free(p->to);
    free(p->on_behalf_of);
    free(p->ref);
    free(p->encounter_id);
    free(p->state);
    free(p);
}

static void on_sent(relais_agent_t *agent, const relais_send_result_t *res, void *ud)
{
    pending_t *p = ud;
    if (p->em.fn != NULL) {
        relais_ref_event_t ev = {
            .kind = res->status == 0 ? RELAIS_REF_EV_ACCEPTED : RELAIS_REF_EV_SEND_FAILED,
            .milestone = res->status == 0 ? RELAIS_REF_MS_NONE : RELAIS_REF_MS_FAILED,
            .body_case = p->body_case,
            .from = relais_agent_address(agent),
            .to = p->to,
            .on_behalf_of = p->on_behalf_of,
            .message_id = res->message_id,
            .conversation_id = p->has_conversation ? p->conversation_id : NULL,
            .ref = p->ref,
            .encounter_id = p->encounter_id,
            .state = p->state,
            .status = res->status,
            .reason = res->reason != NULL ? res->reason : "",
            .duplicate = res->duplicate,
            .submitted_at_ms = p->submitted_ms,
            .via = "",
        };
        p->em.fn(&ev, p->em.ud);
    }
    pending_free(p);
}

int ref__submit(const ref__emitter_t *em, const Relais__V1__Envelope *original,
                const Relais__V1__Envelope *env, const ref__about_t *about,
                uint8_t id_out[RELAIS_MESSAGE_ID_LEN])
{
    pending_t *p = calloc(1, sizeof *p);
    if (p == NULL) return -ENOMEM;
    p->em = *em;
    p->body_case = (int)env->body_case;

    /* A reply without recipients goes to the original's sender, as the SDK decides. */
    const char *to = env->n_to > 0 ? env->to[0] : "";
    if (env->n_to == 0 && original != NULL && original->sender != NULL) to = original->sender;
    p->to = ref__strdup(to);
    p->on_behalf_of = ref__strdup(env->on_behalf_of);
    p->ref = ref__strdup(about->ref);
    p->encounter_id = ref__strdup(about->encounter_id);
    p->state = ref__strdup(about->state);
    if (p->to == NULL || p->on_behalf_of == NULL || p->ref == NULL || p->encounter_id == NULL ||
        p->state == NULL) {
        pending_free(p);
        return -ENOMEM;
    }

    /* The conversation as the SDK will set it, so the event can name it. */
    const ProtobufCBinaryData *conv = &env->conversation_id;
    if (conv->len != RELAIS_MESSAGE_ID_LEN && original != NULL) {
        conv = original->conversation_id.len == RELAIS_MESSAGE_ID_LEN ? &original->conversation_id
                                                                      : &original->message_id;
    }
    if (conv->len == RELAIS_MESSAGE_ID_LEN) {
        memcpy(p->conversation_id, conv->data, RELAIS_MESSAGE_ID_LEN);
        p->has_conversation = true;
    }

    p->submitted_ms = relais_now_ms();
    int rc = original != NULL ? relais_agent_reply(em->agent, original, env, id_out, on_sent, p)
                              : relais_agent_send(em->agent, env, id_out, on_sent, p);
    if (rc != 0) pending_free(p); /* the callback is never called after an error */
    return rc;
}

void ref__emit_received(const ref__emitter_t *em, const relais_delivery_t *d, const char *ref,
                        const char *encounter_id, relais_ref_milestone_t ms, const char *state)
{
    if (em->fn == NULL) return;
    const Relais__V1__Envelope *env = d->envelope;
    const uint8_t *conv = NULL;
    if (env->conversation_id.len == RELAIS_MESSAGE_ID_LEN) {
        conv = env->conversation_id.data;
    } else if (env->message_id.len == RELAIS_MESSAGE_ID_LEN) {
        conv = env->message_id.data; /* a first message opens its own conversation */
    }
    /* A request addressed to a pool: which one, so that an observer can see how the pool
     * shares its work. */
    const char *via = "";
    for (size_t i = 0; i < env->n_to; i++) {
        if (env->to[i] != NULL && strncmp(env->to[i], "service:", 8) == 0) via = env->to[i];
    }
    relais_ref_event_t ev = {
        .via = via,
        .kind = RELAIS_REF_EV_RECEIVED,
        .milestone = ms,
        .body_case = (int)env->body_case,
        .from = ref__sender(d),
        .to = relais_agent_address(em->agent),
        .on_behalf_of = env->on_behalf_of != NULL ? env->on_behalf_of : "",
        .message_id = env->message_id.len == RELAIS_MESSAGE_ID_LEN ? env->message_id.data : NULL,
        .conversation_id = conv,
        .ref = ref != NULL ? ref : "",
        .encounter_id = encounter_id != NULL ? encounter_id : "",
        .state = state != NULL ? state : "",
        .reason = "",
    };
    em->fn(&ev, em->ud);
}

void ref__emit_receipt(const ref__emitter_t *em, const Relais__V1__Receipt *r)
{
    if (em->fn == NULL) return;
    /* A pool's CLAIMED receipt names the member who took the message: say who. */
    char state[RELAIS_ADDRESS_MAX + 16] = "";
    bool claimed = r->status == RELAIS__V1__RECEIPT__STATUS__CLAIMED && r->claimed_by != NULL &&
                   r->claimed_by[0] != '\0';
    if (claimed) snprintf(state, sizeof state, "claimed by %s", r->claimed_by);
    relais_ref_event_t ev = {
        .kind = RELAIS_REF_EV_RECEIPT,
        .via = "",
        .milestone = claimed ? RELAIS_REF_MS_CLAIMED : RELAIS_REF_MS_NONE,
        .from = relais_agent_address(em->agent),
        .to = r->recipient != NULL ? r->recipient : "",
        .on_behalf_of = "",
        .message_id = r->message_id.len == RELAIS_MESSAGE_ID_LEN ? r->message_id.data : NULL,
        .conversation_id =
            r->conversation_id.len == RELAIS_MESSAGE_ID_LEN ? r->conversation_id.data : NULL,
        .ref = "",
        .encounter_id = "",
        .state = state,
        .status = (int)r->status,
        .reason = r->reason != NULL ? r->reason : "",
    };
    em->fn(&ev, em->ud);
}

void ref__emit_notice(const ref__emitter_t *em, const char *ref, const char *encounter_id,
                      relais_ref_milestone_t ms, const char *state)
{
    if (em->fn == NULL) return;
    const char *self = relais_agent_address(em->agent);
    relais_ref_event_t ev = {
        .kind = RELAIS_REF_EV_NOTICE,
        .via = "",
        .milestone = ms,
        .from = self,
        .to = self,
        .on_behalf_of = "",
        .ref = ref != NULL ? ref : "",
        .encounter_id = encounter_id != NULL ? encounter_id : "",
        .state = state != NULL ? state : "",
        .reason = "",
    };
    em->fn(&ev, em->ud);
}

void ref__emit_withdrawn(const ref__emitter_t *em, const uint8_t *message_id, const char *why)
{
    if (em->fn == NULL) return;
    const char *self = relais_agent_address(em->agent);
    char state[RELAIS_REASON_MAX + 32];
    snprintf(state, sizeof state, "offer withdrawn: %s", why != NULL && why[0] ? why : "no reason");
    relais_ref_event_t ev = {
        .kind = RELAIS_REF_EV_NOTICE,
        .via = "",
        .milestone = RELAIS_REF_MS_OFFER_WITHDRAWN,
        .from = self,
        .to = self,
        .on_behalf_of = "",
        .message_id = message_id,
        .ref = "",
        .encounter_id = "",
        .state = state,
        .reason = "",
    };
    em->fn(&ev, em->ud);
}

int ref__copy_id(char *dst, size_t n, const char *src, bool required)
{
    dst[0] = '\0';
    if (src == NULL) return required ? RELAIS_EINVALID : 0;
    size_t len = strlen(src);
    if ((required && len == 0) || len >= n) return RELAIS_EINVALID;
    memcpy(dst, src, len + 1);
    return 0;
}

char *ref__strdup(const char *s)
{
    return strdup(s != NULL ? s : "");
}

const char *ref__format_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (localtime_r(&t, &tm) == NULL || strftime(out, 32, "%Y-%m-%d %H:%M", &tm) == 0) {
        snprintf(out, 32, "@%lld", (long long)ms);
    }
    return out;
}

const char *ref__sender(const relais_delivery_t *d)
{
    const char *s = d->envelope->sender;
    return s != NULL ? s : "";
}
