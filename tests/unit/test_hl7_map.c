/*
 * relais-hl7's configuration reader and its HL7 → Relais mapping (agents/hl7/channel.c,
 * map.c), on the sample messages of deploy/hl7/samples and the demo territory directory.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "map.h"
#include "relais/errors.h"

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    cr_assert_not_null(f, "%s", path);
    char *buf = malloc(1 << 17);
    *len = fread(buf, 1, (1 << 17) - 1, f);
    buf[*len] = '\0';
    fclose(f);
    return buf;
}

static hl7_config_t *cfg;
static directory_t *dir, *dir_prod;

static void setup(void)
{
    char err[512];
    int rc = hl7_config_load(HL7_DEPLOY_DIR "/relais-hl7.yaml", NULL, 0, &cfg, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    size_t len;
    char *text = slurp(RELAIS_DEMO_DIRECTORY, &len);
    rc = directory_parse(text, len, "demo", &dir, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    char *prod = strstr(text, "\nproduction: false");
    cr_assert_not_null(prod);
    memcpy(prod, "\nproduction: true ", 18);
    rc = directory_parse(text, len, "demo-prod", &dir_prod, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    free(text);
}

static void teardown(void)
{
    hl7_config_free(&cfg);
    directory_destroy(&dir);
    directory_destroy(&dir_prod);
}

TestSuite(hl7_map, .init = setup, .fini = teardown);

static int map_sample(const char *name, const directory_t *d, hl7_plan_t *plan, hl7_error_t *err)
{
    char path[512];
    snprintf(path, sizeof path, "%s/samples/%s", HL7_DEPLOY_DIR, name);
    size_t len;
    char *text = slurp(path, &len);
    hl7_msg_t *m = NULL;
    int rc = hl7_parse(text, len, NULL, &m, err);
    free(text);
    cr_assert_eq(rc, 0, "%s: %s", name, err->text);
    hl7_map_ctx_t ctx = {.ch = &cfg->channels[0],
                         .dir = d,
                         .coordinator = "staff:coordination@cpts-rennes-nord",
                         .production = directory_production(d)};
    rc = hl7_map(&ctx, m, plan, err);
    hl7_msg_free(&m);
    return rc;
}

static hl7_plan_t plan;
static hl7_error_t err;

Test(hl7_map, sends_a_discharge_to_the_assistant_acting_for_the_gp_with_its_programme)
{
    cr_assert_eq(map_sample("a03-heart-failure.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.route, "practice");
    cr_assert_eq(plan.n, 1);
    const Relais__V1__Envelope *env = &plan.env[0];
    cr_assert_eq(env->n_to, 1);
    cr_assert_str_eq(env->to[0], "staff:claire.martin@cabinet-dupont");
    cr_assert_eq(env->body_case, RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION);
    const Relais__V1__DischargeNotification *dn = env->discharge_notification;
    cr_assert_str_eq(dn->encounter_id, "VN2026-000123");
    cr_assert_str_eq(dn->facility, "finess:350000014");
    cr_assert_str_eq(dn->programme, "heart-failure");
    cr_assert_eq(dn->n_follow_up, 3);
    /* 2026-12-01 10:00 in Paris is 09:00 UTC (winter time). */
    cr_assert_eq(dn->discharged_at_ms, 1796115600000LL);
    cr_assert_eq(dn->follow_up[0]->window->due_by_ms, 1796115600000LL + 2 * 86400000LL);
    cr_assert_eq(dn->disposition, RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME);
    cr_assert_eq(dn->n_care_team, 1);
    cr_assert_str_eq(dn->care_team[0], "rpps:10101234567");
    const Relais__V1__PatientRef *p = dn->patient;
    cr_assert_eq(p->identity_status, RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__QUALIFIED);
    cr_assert_str_eq(p->ins_matricule, "248031234567890");
    cr_assert_str_eq(p->ins_oid, "1.2.250.1.213.1.4.8");
    cr_assert_str_eq(p->local_id, "123456");
    cr_assert_str_eq(p->family_name, "MARTIN");
    cr_assert_eq(p->n_given_names, 2);
    cr_assert_str_eq(p->birth_date, "1948-03-12");
    cr_assert_eq(p->sex, RELAIS__V1__PATIENT_REF__SEX__FEMALE);
    char reason[256];
    uint8_t ids[HL7_PLAN_MAX][16] = {{1}};
    hl7_plan_set_ids(&plan, ids);
    cr_assert_eq(relais_envelope_validate(env, 0, 0, reason, sizeof reason), 0, "%s", reason);
}

Test(hl7_map, keeps_the_ins_back_when_the_identity_is_not_qualified)
{
    cr_assert_eq(map_sample("a03-copd-pd1.hl7", dir, &plan, &err), 0, "%s", err.text);
    const Relais__V1__DischargeNotification *dn = plan.env[0].discharge_notification;
    cr_assert_eq(dn->patient->identity_status, RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__VALIDATED);
    cr_assert_str_eq(dn->patient->ins_matricule, "");
    cr_assert_str_eq(dn->patient->local_id, "123456");
    /* The GP from PD1-4, COPD from J44.1, disposition 02 from the channel's table. */
    cr_assert_str_eq(plan.env[0].to[0], "staff:claire.martin@cabinet-dupont");
    cr_assert_str_eq(dn->programme, "copd");
    cr_assert_eq(dn->disposition,
                 RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME_WITH_SERVICES);
}

Test(hl7_map, routes_an_unknown_gp_to_the_coordinator_with_the_reason)
{
    cr_assert_eq(map_sample("a03-unknown-gp.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.route, "coordinator");
    cr_assert_eq(plan.n, 2);
    cr_assert_str_eq(plan.env[0].to[0], "staff:coordination@cpts-rennes-nord");
    cr_assert_eq(plan.env[1].body_case, RELAIS__V1__ENVELOPE__BODY_ESCALATION);
    cr_assert(strstr(plan.esc.reason, "rpps:19999999999") != NULL, "%s", plan.esc.reason);
    cr_assert(strstr(plan.esc.reason, "not in the territory directory") != NULL);
    uint8_t ids[HL7_PLAN_MAX][16] = {{1}, {2}};
    hl7_plan_set_ids(&plan, ids);
    cr_assert_eq(plan.esc.original_message_id.data[0], 1);
    cr_assert_eq(plan.env[1].conversation_id.data[0], 1);
    cr_assert_eq(plan.env[1].message_id.data[0], 2);

    cr_assert_eq(map_sample("a03-no-gp.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.route, "coordinator");
    cr_assert(strstr(plan.esc.reason, "no GP in the message") != NULL, "%s", plan.esc.reason);
}

Test(hl7_map, takes_the_discharge_time_from_pv1_45_then_zbe_2_then_evn_6)
{
    cr_assert_eq(map_sample("a03-zbe-time.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_eq(plan.d.dn.discharged_at_ms, 1796115600000LL - 5 * 60000);
    cr_assert_eq(map_sample("a03-evn-time.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_eq(plan.d.dn.discharged_at_ms, 1796115600000LL + 5 * 60000);
    cr_assert_eq(map_sample("a03-no-time.hl7", dir, &plan, &err), HL7_ERR_REQUIRED_MISSING);
    cr_assert_str_eq(err.segment, "PV1");
    cr_assert_eq(err.field, 45);
}

Test(hl7_map, refuses_a_test_ins_only_in_a_production_territory)
{
    cr_assert_eq(map_sample("a03-test-ins.hl7", dir_prod, &plan, &err), HL7_ERR_TABLE_VALUE);
    cr_assert_str_eq(err.segment, "PID");
    cr_assert_eq(err.field, 3);
    cr_assert_eq(map_sample("a03-test-ins.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.d.dn.patient->ins_oid, "1.2.250.1.213.1.4.10");
}

Test(hl7_map, refuses_what_the_channel_does_not_take)
{
    cr_assert_eq(map_sample("a03-processing-t.hl7", dir, &plan, &err),
                 HL7_ERR_UNSUPPORTED_PROCESSING_ID);
    cr_assert_eq(map_sample("a08-update.hl7", dir, &plan, &err), HL7_ERR_UNSUPPORTED_EVENT);
    cr_assert_eq(err.field, 9);
}

Test(hl7_map, notifies_an_admission_to_the_practice_with_the_preadmit_number)
{
    cr_assert_eq(map_sample("a01-admission.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.kind, "admission");
    cr_assert_eq(plan.env[0].body_case, RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE);
    cr_assert_str_eq(plan.env[0].to[0], "staff:claire.martin@cabinet-dupont");
    const Relais__V1__AdmissionNotice *a = plan.env[0].admission_notice;
    cr_assert_str_eq(a->request_id, "PRE-2026-0042");
    cr_assert_str_eq(a->encounter_id, "VN2026-000123");
    cr_assert_str_eq(a->facility, "finess:350000014");
    /* PV1-44, 2026-11-25 08:30 in Paris = 07:30 UTC. */
    cr_assert_eq(a->admitted_at_ms, 1796110200000LL - 6 * 86400000LL);
    cr_assert_str_eq(a->patient->local_id, "123456");
}

Test(hl7_map, refers_to_the_named_specialist_else_to_the_specialty_pool)
{
    cr_assert_eq(map_sample("ref-i12-named.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.kind, "referral");
    cr_assert_str_eq(plan.route, "specialist");
    cr_assert_eq(plan.env[0].body_case, RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST);
    cr_assert_str_eq(plan.env[0].to[0], "rpps:10104567890");
    const Relais__V1__AppointmentRequest *r = plan.env[0].appointment_request;
    cr_assert_str_eq(r->request_id, "REF-2026-0007");
    cr_assert_str_eq(r->requested_role, "specialist");
    cr_assert_str_eq(r->specialty, "cardiology");
    cr_assert_eq(r->urgency, RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__ROUTINE);
    cr_assert_str_eq(r->reason, "Suivi insuffisance cardiaque");
    cr_assert_not_null(r->window);
    cr_assert_lt(r->window->not_before_ms, r->window->due_by_ms);
    cr_assert_str_eq(r->patient->local_id, "123456");

    cr_assert_eq(map_sample("ref-i12-pool.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.route, "pool");
    cr_assert_str_eq(plan.env[0].to[0], "service:specialist/cardiology@cpts-rennes-nord");
}

Test(hl7_map, answers_the_practice_for_a_preadmission_granted_then_cancelled)
{
    cr_assert_eq(map_sample("a05-preadmission.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_eq(plan.env[0].body_case, RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION);
    cr_assert_str_eq(plan.env[0].to[0], "staff:claire.martin@cabinet-dupont");
    const Relais__V1__PreadmissionDecision *d = plan.env[0].preadmission_decision;
    cr_assert_str_eq(d->request_id, "PRE-2026-0042");
    cr_assert_eq(d->decision, RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED);
    cr_assert_eq(d->admission_date_ms, 1795591800000LL);
    cr_assert_eq(map_sample("a38-cancel-preadmission.hl7", dir, &plan, &err), 0, "%s", err.text);
    d = plan.env[0].preadmission_decision;
    cr_assert_eq(d->decision, RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED);
    cr_assert_str_eq(d->request_id, "PRE-2026-0042");
    cr_assert_str_eq(plan.kind, "preadmission-cancel");
}

Test(hl7_map, decides_the_message_type_from_msh_9_alone)
{
    cr_assert_eq(map_sample("a03-evn-says-a01.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.kind, "discharge");
}

Test(hl7_map, reads_latin1_names_into_utf8)
{
    cr_assert_eq(map_sample("a03-latin1.hl7", dir, &plan, &err), 0, "%s", err.text);
    cr_assert_str_eq(plan.d.dn.patient->family_name, "L\xc3\xa9vy");
    cr_assert_str_eq(plan.d.dn.programme, "heart-failure");
}

static int map_text(const char *text)
{
    hl7_msg_t *m = NULL;
    cr_assert_eq(hl7_parse(text, strlen(text), NULL, &m, &err), 0, "%s", err.text);
    hl7_map_ctx_t ctx = {
        .ch = &cfg->channels[0], .dir = dir, .coordinator = "staff:coordination@cpts-rennes-nord"};
    int rc = hl7_map(&ctx, m, &plan, &err);
    hl7_msg_free(&m);
    return rc;
}

Test(hl7_map, cancels_a_discharge_on_a13_and_refuses_other_types_and_foreign_senders)
{
    cr_assert_eq(map_text("MSH|^~\\&|DXCARE|CHU-RENNES|R|C|1||ADT^A13|C1|P|2.5\r"
                          "PID|1||9^^^X^PI\rROL|1|UC|ODRP|10101234567^^^^^^^^^^^^RPPS\r"
                          "PV1|1|I|||||||||||||||||VN9\r"),
                 0, "%s", err.text);
    cr_assert_str_eq(plan.kind, "discharge-cancel");
    cr_assert_eq(plan.env[0].body_case, RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED);
    cr_assert_str_eq(plan.cancel.encounter_id, "VN9");
    cr_assert_eq(map_text("MSH|^~\\&|DXCARE|CHU-RENNES|R|C|1||ORU^R01|C2|P|2.5\r"),
                 HL7_ERR_UNSUPPORTED_TYPE);
    cr_assert_eq(map_text("MSH|^~\\&|OTHER|CHU-RENNES|R|C|1||ADT^A03|C3|P|2.5\r"),
                 HL7_ERR_INTERNAL);
    cr_assert_eq(err.field, 3);
    cr_assert_eq(map_text("MSH|^~\\&|DXCARE|CHU-RENNES|R|C|1||ADT^A03|C4|P|3.0\r"),
                 HL7_ERR_UNSUPPORTED_VERSION);
    cr_assert_eq(map_text("MSH|^~\\&|DXCARE|CHU-RENNES|R|C|1||ADT^A03||P|2.5\r"),
                 HL7_ERR_REQUIRED_MISSING);
    /* The GP's RPPS may come as an IDNPS ("8" + RPPS). */
    cr_assert_eq(map_text("MSH|^~\\&|DXCARE|CHU-RENNES|R|C|1||ADT^A03|C5|P|2.5\r"
                          "PID|1||9^^^X^PI\rROL|1|UC|ODRP|810101234567^^^^^^^^^^^^IDNPS\r"
                          "PV1|1|I|||||||||||||||||VN9||||||||||||||||||||||||||20261201\r"),
                 0, "%s", err.text);
    cr_assert_str_eq(plan.route, "practice");
}

Test(hl7_map, reads_hl7_times_with_and_without_offset)
{
    int64_t t;
    cr_assert_eq(hl7_time_ms("20260701120000", "Europe/Paris", &t), 0);
    cr_assert_eq(t, 1782900000000LL); /* 10:00 UTC: summer time */
    cr_assert_eq(hl7_time_ms("20260701120000+0000", "Europe/Paris", &t), 0);
    cr_assert_eq(t, 1782907200000LL);
    cr_assert_eq(hl7_time_ms("20260701120000.5-0130", "Europe/Paris", &t), 0);
    cr_assert_eq(t, 1782907200000LL + 90 * 60000 + 500);
    cr_assert_eq(hl7_time_ms("20260701", "UTC", &t), 0);
    const char *bad[] = {"",
                         "2026",
                         "202607011",
                         "20261301",
                         "20260701256000",
                         "2026070112x",
                         "20260701120000+01",
                         "20260701.5"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_assert_eq(hl7_time_ms(bad[i], "UTC", &t), HL7_ERR_DATA_TYPE, "%s", bad[i]);
}

Test(hl7_config, names_the_file_and_line_of_each_mistake)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"broker: {endpoint: tcp://x:1, insecure: true}\ndirectory: d\nstate_dir: s\n"
         "channels:\n  - {name: a, listen: '127.0.0.1:0', address: 'finess:350000014',"
         " colour: red}\n",
         "t.yaml:5: channels[]: unknown key 'colour'"},
        {"broker: {endpoint: tcp://x:1, insecure: true}\ndirectory: d\nstate_dir: s\n"
         "channels:\n  - name: a\n    listen: 127.0.0.1:99999\n    address: finess:350000014\n",
         "t.yaml:6: listen"},
        {"broker: {endpoint: tcp://x:1, insecure: true}\ndirectory: d\nstate_dir: s\n"
         "channels:\n  - name: a\n    listen: 127.0.0.1:0\n    address: rpps:10101234567\n",
         "address"},
        {"broker: {endpoint: tcp://x:1, insecure: true}\ndirectory: d\nstate_dir: s\n"
         "channels:\n  - name: a\n    listen: 127.0.0.1:0\n    address: finess:350000014\n"
         "    dispositions:\n      - {pv1_36: '01', disposition: HOLIDAY}\n",
         "t.yaml:9: dispositions: unknown disposition 'HOLIDAY'"},
        {"broker: {endpoint: tcp://x:1, insecure: true}\ndirectory: d\nstate_dir: s\n"
         "channels:\n  - name: a\n    listen: 127.0.0.1:0\n    address: finess:350000014\n"
         "    diagnoses:\n      - {icd10: I50, programme: gout}\n",
         "unknown programme 'gout'"},
        {"broker: {endpoint: tcp://x:1}\ndirectory: d\nstate_dir: s\nchannels: []\n", "server_key"},
        {"broker: {endpoint: tcp://x:1, insecure: true}\ndirectory: d\nstate_dir: s\n"
         "channels:\n  - {name: a, listen: '127.0.0.1:0', address: 'finess:350000014', "
         "processing_ids: [X]}\n",
         "processing_ids"},
        {"broker: {endpoint: tcp://x:1, insecure: true}\ndirectory: d\nstate_dir: s\n"
         "channels:\n  - {name: a, listen: '127.0.0.1:0', address: 'finess:350000014'}\n"
         "  - {name: a, listen: '127.0.0.1:0', address: 'finess:350000014'}\n",
         "declared twice"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        hl7_config_t *c = NULL;
        char e[512] = "";
        int rc = hl7_config_load("t.yaml", cases[i].yaml, strlen(cases[i].yaml), &c, e, sizeof e);
        cr_assert_eq(rc, RELAIS_ECONFIG, "case %zu", i);
        cr_assert_null(c);
        cr_assert(strstr(e, cases[i].want) != NULL, "case %zu: '%s' lacks '%s'", i, e,
                  cases[i].want);
    }
}

Test(hl7_config, reads_the_sample_with_its_defaults_and_tables)
{
    hl7_config_t *c = NULL;
    char e[512];
    cr_assert_eq(hl7_config_load(HL7_DEPLOY_DIR "/relais-hl7.yaml", NULL, 0, &c, e, sizeof e), 0,
                 "%s", e);
    cr_assert_eq(c->n_channels, 1);
    const hl7_channel_t *ch = &c->channels[0];
    cr_assert_str_eq(ch->listen_host, "0.0.0.0");
    cr_assert_eq(ch->listen_port, 2575);
    cr_assert_str_eq(ch->timezone, "Europe/Paris");
    cr_assert_str_eq(ch->processing_ids, "P");
    cr_assert_eq(ch->n_dispositions, 6);
    cr_assert_eq(ch->n_diagnoses, 3);
    cr_assert_str_eq(ch->diagnoses[1].code, "I110");
    cr_assert_eq(c->ack_timeout_ms, 10000);
    hl7_config_free(&c);
    cr_assert_null(c);
}
