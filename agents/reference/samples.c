/*
 * Fictitious sample data for the demo territory and the reference programs. Nothing here
 * may resemble a real person: the family name says DEMO-PATIENT and the identifiers are
 * local ones. The discharged patient's identity is QUALIFIED, so she carries an INS, as a
 * real discharge would: a fictitious matricule (its 99999 run is no real commune code),
 * which tests/integration/no_patient_data.py looks for in every log.
 */
#include <stdio.h>
#include <string.h>

#include "refagents.h"

#define DAY_MS (24LL * 3600 * 1000)

void relais_ref_sample_patient(Relais__V1__PatientRef *p, char *given_names[1],
                               const char *local_id)
{
    relais__v1__patient_ref__init(p);
    given_names[0] = "Jeanne";
    p->identity_status = RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__PROVISIONAL;
    p->local_id = (char *)local_id;
    p->family_name = "DEMO-PATIENT";
    p->n_given_names = 1;
    p->given_names = given_names;
    p->birth_date = "1946-01-01";
    p->sex = RELAIS__V1__PATIENT_REF__SEX__FEMALE;
}

void relais_ref_sample_discharge(relais_ref_sample_discharge_t *s, const char *encounter_id,
                                 const char *gp, int64_t now_ms)
{
    memset(s, 0, sizeof *s);
    snprintf(s->encounter_id, sizeof s->encounter_id, "%s", encounter_id);
    snprintf(s->gp, sizeof s->gp, "%s", gp);
    relais_ref_sample_patient(&s->patient, s->given_names, "DEMO-LOCAL-0042");
    s->patient.identity_status = RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__QUALIFIED;
    s->patient.ins_matricule = "246019999999942";
    s->patient.ins_oid = "1.2.250.1.213.1.4.8";

    static const struct {
        const char *id, *role, *action;
        int days;
    } plan[2] = {
        {"fu-nurse", "nurse", "home visit: weight, oedema and symptoms check", 2},
        {"fu-gp", "gp", "GP consultation: treatment review", 7},
    };
    for (size_t i = 0; i < 2; i++) {
        relais__v1__time_window__init(&s->windows[i]);
        s->windows[i].not_before_ms = now_ms;
        s->windows[i].due_by_ms = now_ms + plan[i].days * DAY_MS;
        Relais__V1__FollowUpItem *it = &s->items[i];
        relais__v1__follow_up_item__init(it);
        it->item_id = (char *)plan[i].id;
        it->role = (char *)plan[i].role;
        it->window = &s->windows[i];
        it->action = (char *)plan[i].action;
        s->item_ptrs[i] = it;
    }

    s->care_team[0] = s->gp;
    Relais__V1__DischargeNotification *dn = &s->dn;
    relais__v1__discharge_notification__init(dn);
    dn->encounter_id = s->encounter_id;
    dn->patient = &s->patient;
    dn->admitted_at_ms = now_ms - 6 * DAY_MS;
    dn->discharged_at_ms = now_ms;
    dn->disposition = RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME;
    dn->programme = "heart-failure";
    dn->n_follow_up = 2;
    dn->follow_up = s->item_ptrs;
    dn->n_care_team = 1;
    dn->care_team = s->care_team;
}
