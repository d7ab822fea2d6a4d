/*
 * The hospital role: a facility's discharge desk. It notifies a patient's discharge, with
 * the follow-up plan, to the practice that follows the patient (the GP's assistant), each
 * notification opening its own conversation. The plan comes from the patient's programme
 * (heart failure, COPD, …: see programme.c), whose windows count from the discharge. It
 * takes what comes back in those conversations (notes, care task updates copied to it) and
 * reports receipts, so a refused or expired notification does not go unnoticed. A hospital
 * that also admits patients attaches the facility role to the same agent (see refagents.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_internal.h"

struct relais_ref_hospital {
    relais_agent_t *agent;
    ref__emitter_t em;
    char *facility;                            /* NULL: the agent's own address */
    const relais_ref_programmes_t *programmes; /* the caller's, or the built-in table */
};

const relais_ref_programme_t *relais_ref_hospital_programme(const relais_ref_hospital_t *h,
                                                            const char *name)
{
    return relais_ref_programme_find(h->programmes, name);
}

int relais_ref_hospital_notify(relais_ref_hospital_t *h, const char *to,
                               const Relais__V1__DischargeNotification *dn)
{
    char enc[RELAIS_REF_ID_MAX];
    if (ref__copy_id(enc, sizeof enc, dn->encounter_id, true) != 0) return RELAIS_EINVALID;
    if (to == NULL || !relais_address_valid(to)) return RELAIS_EINVALID;

    /* A shallow copy so an empty facility can be filled without touching the caller's. */
    Relais__V1__DischargeNotification body = *dn;
    if (body.facility == NULL || body.facility[0] == '\0') {
        body.facility = h->facility != NULL ? h->facility : (char *)relais_agent_address(h->agent);
    }
    /* The notification's own id opens its conversation, as for every first message. */
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    int rc = relais_uuid7(id);
    if (rc != 0) return rc;
    char *rcpt[1] = {(char *)to};
    Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
    env.message_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, id};
    env.conversation_id = env.message_id;
    env.n_to = 1;
    env.to = rcpt;
    env.body_case = RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION;
    env.discharge_notification = &body;

    char state[96];
    snprintf(state, sizeof state, "discharge notified, %zu follow-up item%s", dn->n_follow_up,
             dn->n_follow_up == 1 ? "" : "s");
    ref__about_t about = {.ref = enc, .encounter_id = enc, .state = state};
    return ref__submit(&h->em, NULL, &env, &about, NULL);
}

int relais_ref_hospital_discharge(relais_ref_hospital_t *h, const char *to,
                                  const relais_ref_programme_t *prog,
                                  const Relais__V1__PatientRef *patient, const char *encounter_id,
                                  const char *const *care_team, size_t n_care_team,
                                  int64_t discharged_at_ms)
{
    if (prog == NULL || prog->n_items > RELAIS_REF_PROGRAMME_ITEMS_MAX) return RELAIS_EINVALID;
    if (n_care_team > 0 && care_team == NULL) return RELAIS_EINVALID;
    for (size_t i = 0; i < n_care_team; i++) {
        if (care_team[i] == NULL || !relais_address_valid(care_team[i])) return RELAIS_EINVALID;
    }
    /* Large (one window and item per possible item): on the heap, not the loop's stack. */
    relais_ref_discharge_t *d = malloc(sizeof *d);
    if (d == NULL) return -ENOMEM;
    relais_ref_programme_build(prog, discharged_at_ms, d);
    d->dn.encounter_id = (char *)encounter_id;
    d->dn.patient = (Relais__V1__PatientRef *)patient;
    d->dn.n_care_team = n_care_team;
    d->dn.care_team = (char **)care_team;
    int rc = relais_ref_hospital_notify(h, to, &d->dn);
    free(d);
    return rc;
}

static relais_outcome_t on_note(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_hospital_t *h = ud;
    ref__emit_received(&h->em, d, "", "", RELAIS_REF_MS_NONE, "note received");
    return RELAIS_PROCESSED;
}

static relais_outcome_t on_task_update(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_hospital_t *h = ud;
    const Relais__V1__CareTaskUpdate *u = d->envelope->care_task_update;
    ref__emit_received(&h->em, d, u->task_id, "", RELAIS_REF_MS_NONE, "task update noted");
    return RELAIS_PROCESSED;
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    relais_ref_hospital_t *h = ud;
    ref__emit_receipt(&h->em, r);
}

int relais_ref_hospital_rebind(relais_ref_hospital_t *h, relais_agent_t *agent)
{
    if (h == NULL || agent == NULL) return RELAIS_EINVALID;
    h->agent = agent;
    h->em.agent = agent;
    int rc = relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_NOTE, on_note, h);
    if (rc == 0)
        rc = relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE, on_task_update, h);
    if (rc == 0) relais_agent_on_receipt(agent, on_receipt, h);
    return rc;
}

int relais_ref_hospital_new(relais_ref_hospital_t **out, relais_agent_t *agent,
                            const relais_ref_hospital_config_t *cfg)
{
    *out = NULL;
    if (agent == NULL || cfg == NULL) return RELAIS_ECONFIG;
    if (cfg->facility != NULL && cfg->facility[0] != '\0' && !relais_address_valid(cfg->facility)) {
        return RELAIS_ECONFIG;
    }
    relais_ref_hospital_t *h = calloc(1, sizeof *h);
    if (h == NULL) return -ENOMEM;
    h->agent = agent;
    h->em = (ref__emitter_t){.fn = cfg->on_event, .ud = cfg->event_ud, .agent = agent};
    h->programmes = cfg->programmes != NULL ? cfg->programmes : relais_ref_programmes_default();
    int rc = -ENOMEM;
    if (cfg->facility != NULL && cfg->facility[0] != '\0') {
        h->facility = strdup(cfg->facility);
        if (h->facility == NULL) goto err;
    }
    rc = relais_ref_hospital_rebind(h, agent);
    if (rc != 0) goto err;
    *out = h;
    return 0;

err:
    relais_ref_hospital_destroy(&h);
    return rc;
}

void relais_ref_hospital_destroy(relais_ref_hospital_t **hp)
{
    if (hp == NULL || *hp == NULL) return;
    free((*hp)->facility);
    free(*hp);
    *hp = NULL;
}
