/*
 * Care programmes of the reference hospital (agents/reference/programme.c) and the
 * facility's configuration file: the built-in table, the shipped YAML files, the strict
 * reader's errors (file:line: key), and the windows of a discharge built from a programme.
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "refagents.h"

#define HOUR (3600LL * 1000)
#define DAY (24 * HOUR)

static char path[64];

static void remove_yaml(void)
{
    if (path[0] != '\0') unlink(path);
    path[0] = '\0';
}

/* Writes text to a fresh temporary file named in path (replacing the previous one). */
static const char *write_yaml(const char *text)
{
    remove_yaml();
    snprintf(path, sizeof path, "/tmp/relais-prog-XXXXXX");
    int fd = mkstemp(path);
    cr_assert_geq(fd, 0);
    size_t len = strlen(text);
    cr_assert_eq(write(fd, text, len), (ssize_t)len);
    close(fd);
    return path;
}

TestSuite(programmes, .fini = remove_yaml);

/* Loads text expecting failure; returns the error message. */
static const char *load_error(const char *text)
{
    static char err[512];
    relais_ref_programmes_t *t = NULL;
    int rc = relais_ref_programmes_load(write_yaml(text), &t, err, sizeof err);
    cr_assert_eq(rc, RELAIS_ECONFIG, "loaded although invalid: %s", text);
    cr_assert_null(t);
    return err;
}

static void expect_error(const char *text, int line, const char *what)
{
    const char *err = load_error(text);
    char want[160];
    snprintf(want, sizeof want, "%s:%d: %s", path, line, what);
    cr_expect(strstr(err, want) != NULL, "expected \"%s\" in \"%s\"", want, err);
}

static const relais_ref_programme_item_t *item(const relais_ref_programme_t *p, const char *id)
{
    for (size_t i = 0; i < p->n_items; i++)
        if (strcmp(p->items[i].item_id, id) == 0) return &p->items[i];
    cr_assert_fail("no item %s in %s", id, p->name);
    return NULL;
}

Test(programmes, the_built_in_table_holds_heart_failure_and_copd)
{
    const relais_ref_programmes_t *t = relais_ref_programmes_default();
    cr_assert_eq(relais_ref_programmes_count(t), 2);
    const relais_ref_programme_t *hf = relais_ref_programme_find(t, "heart-failure");
    cr_assert_not_null(hf);
    cr_expect_eq(hf->disposition, RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME);
    cr_assert_eq(hf->n_items, 3);
    cr_expect_eq(item(hf, "fu-nurse")->within_hours, 2 * 24);
    cr_expect_str_eq(item(hf, "fu-nurse")->role, "nurse");
    cr_expect_eq(item(hf, "fu-nurse")->mode, RELAIS__V1__SLOT__MODE__HOME);
    cr_expect_eq(item(hf, "fu-gp")->within_hours, 7 * 24);
    const relais_ref_programme_item_t *cardio = item(hf, "fu-cardiology");
    cr_expect_str_eq(cardio->role, "specialist");
    cr_expect_str_eq(cardio->specialty, "cardiology");
    cr_expect_eq(cardio->within_hours, 60 * 24);
    cr_expect_eq(cardio->not_before_hours, 0);

    const relais_ref_programme_t *copd = relais_ref_programme_find(t, "copd");
    cr_assert_not_null(copd);
    cr_assert_eq(copd->n_items, 3);
    cr_expect_eq(item(copd, "fu-nurse")->within_hours, 2 * 24);
    cr_expect_eq(item(copd, "fu-gp")->within_hours, 7 * 24);
    cr_expect_str_eq(item(copd, "fu-rehab")->role, "physiotherapist");
    cr_expect_eq(item(copd, "fu-rehab")->within_hours, 14 * 24);
    cr_expect_null(relais_ref_programme_find(t, "diabetes"));
    cr_expect_null(relais_ref_programme_at(t, 2));

    relais_ref_programmes_t *builtin = (relais_ref_programmes_t *)t;
    relais_ref_programmes_free(&builtin); /* a no-op on the built-in table */
    cr_expect_null(builtin);
    cr_expect_eq(relais_ref_programmes_count(relais_ref_programmes_default()), 2);
}

Test(programmes, the_shipped_file_is_the_built_in_table)
{
    char err[512] = "";
    relais_ref_programmes_t *t = NULL;
    int rc = relais_ref_programmes_load(RELAIS_AGENTS_DIR "/programmes.yaml", &t, err, sizeof err);
    cr_assert_eq(rc, 0, "%s", err);
    const relais_ref_programmes_t *b = relais_ref_programmes_default();
    cr_assert_eq(relais_ref_programmes_count(t), relais_ref_programmes_count(b));
    for (size_t i = 0; i < relais_ref_programmes_count(b); i++) {
        const relais_ref_programme_t *want = relais_ref_programme_at(b, i);
        const relais_ref_programme_t *got = relais_ref_programme_at(t, i);
        cr_assert_str_eq(got->name, want->name);
        cr_expect_eq(got->disposition, want->disposition, "%s", want->name);
        cr_assert_eq(got->n_items, want->n_items, "%s", want->name);
        for (size_t j = 0; j < want->n_items; j++) {
            const relais_ref_programme_item_t *w = &want->items[j], *g = &got->items[j];
            cr_expect_str_eq(g->item_id, w->item_id);
            cr_expect_str_eq(g->role, w->role, "%s", w->item_id);
            cr_expect_str_eq(g->specialty, w->specialty, "%s", w->item_id);
            cr_expect_str_eq(g->action, w->action, "%s", w->item_id);
            cr_expect_eq(g->not_before_hours, w->not_before_hours, "%s", w->item_id);
            cr_expect_eq(g->within_hours, w->within_hours, "%s", w->item_id);
            cr_expect_eq(g->mode, w->mode, "%s", w->item_id);
        }
    }
    relais_ref_programmes_free(&t);
    cr_expect_null(t);
}

Test(programmes, a_file_sets_windows_roles_modes_and_dispositions)
{
    const char *yaml = "programmes:\n"
                       "  - name: stroke\n"
                       "    disposition: home-with-services\n"
                       "    items:\n"
                       "      - id: speech\n"
                       "        role: specialist\n"
                       "        specialty: neurology\n"
                       "        action: neurology review\n"
                       "        mode: teleconsultation\n"
                       "        not_before_days: 1\n"
                       "        not_before_hours: 12\n"
                       "        within_days: 3\n"
                       "        within_hours: 6\n"
                       "      - id: nurse\n"
                       "        role: nurse\n"
                       "        action: home visit\n"
                       "        within_hours: 36\n";
    char err[512] = "";
    relais_ref_programmes_t *t = NULL;
    cr_assert_eq(relais_ref_programmes_load(write_yaml(yaml), &t, err, sizeof err), 0, "%s", err);
    cr_assert_eq(relais_ref_programmes_count(t), 1);
    const relais_ref_programme_t *p = relais_ref_programme_find(t, "stroke");
    cr_assert_not_null(p);
    cr_expect_eq(p->disposition,
                 RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME_WITH_SERVICES);
    cr_assert_eq(p->n_items, 2);
    cr_expect_str_eq(p->items[0].specialty, "neurology");
    cr_expect_eq(p->items[0].not_before_hours, 36);
    cr_expect_eq(p->items[0].within_hours, 78);
    cr_expect_eq(p->items[0].mode, RELAIS__V1__SLOT__MODE__TELECONSULTATION);
    cr_expect_str_eq(p->items[1].specialty, "");
    cr_expect_eq(p->items[1].not_before_hours, 0);
    cr_expect_eq(p->items[1].within_hours, 36);
    cr_expect_eq(p->items[1].mode, RELAIS__V1__SLOT__MODE__MODE_UNSPECIFIED);
    relais_ref_programmes_free(&t);
}

#define ITEM_HEAD                                                                                  \
    "programmes:\n"                                                                                \
    "  - name: hf\n"                                                                               \
    "    items:\n"                                                                                 \
    "      - id: a\n"                                                                              \
    "        role: nurse\n"                                                                        \
    "        action: visit\n"

Test(programmes, errors_name_the_file_the_line_and_the_key)
{
    expect_error(ITEM_HEAD "        within: 2\n", 7,
                 "programmes[0].items[0]: unknown key 'within'");
    expect_error(ITEM_HEAD "        within_days: soon\n", 7,
                 "within_days: expected a whole number");
    expect_error(ITEM_HEAD "        within_days: 400\n", 7, "within_days: 400 is outside");
    expect_error(ITEM_HEAD "        within_days: 2\n        mode: bicycle\n", 8,
                 "mode: 'bicycle' is not one of office, home, teleconsultation");
    expect_error(ITEM_HEAD "        not_before_days: 3\n        within_days: 2\n", 8,
                 "within_days: the window must end after it opens");
    expect_error(ITEM_HEAD "        specialty: cardiology\n", 4,
                 "programmes[0].items[0]: 'within_days' or 'within_hours' is missing");
    expect_error("programmes:\n  - name: hf\n    items:\n      - id: a\n        role: surgeon\n"
                 "        action: x\n        within_days: 1\n",
                 5, "role: 'surgeon' is not one of gp, nurse");
    expect_error("programmes:\n  - name: hf\n    items:\n      - id: a\n        action: x\n"
                 "        within_days: 1\n",
                 4, "programmes[0].items[0]: 'role' is missing");
    expect_error(ITEM_HEAD "        within_days: 1\n      - id: a\n        role: gp\n"
                           "        action: y\n        within_days: 7\n",
                 8, "id: 'a' appears twice in hf");
    expect_error("programmes:\n  - name: hf\n    disposition: moon\n    items: []\n", 3,
                 "disposition: 'moon' is not one of home, home-with-services");
    expect_error("programmes:\n  - name: hf\n    items: []\n", 3, "items: expected 1 to 16 items");
    expect_error("programme:\n  - name: hf\n", 1, "document: unknown key 'programme'");
    expect_error("programmes: {}\n", 1, "programmes: expected a list");
    expect_error(ITEM_HEAD "        within_days: 1\n        within_days: 2\n", 8,
                 "programmes[0].items[0]: 'within_days' appears twice");
    expect_error(ITEM_HEAD "        within_days: 1\n  - name: hf\n    items:\n      - id: b\n"
                           "        role: gp\n        action: y\n        within_days: 7\n",
                 8, "name: programme 'hf' appears twice");
    const char *err = load_error("programmes:\n  - name: &x hf\n");
    cr_expect(strstr(err, "anchors and aliases are not accepted") != NULL, "%s", err);
}

Test(programmes, a_built_discharge_has_the_programme_windows)
{
    const relais_ref_programme_t *hf =
        relais_ref_programme_find(relais_ref_programmes_default(), "heart-failure");
    cr_assert_not_null(hf);
    const int64_t at = 1795000000000LL;
    relais_ref_discharge_t d;
    relais_ref_programme_build(hf, at, &d);
    cr_expect_str_eq(d.dn.programme, "heart-failure");
    cr_expect_eq(d.dn.disposition, RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME);
    cr_expect_eq(d.dn.discharged_at_ms, at);
    cr_assert_eq(d.dn.n_follow_up, 3);
    static const struct {
        const char *id, *role, *specialty;
        int64_t due;
    } want[] = {
        {"fu-nurse", "nurse", "", 2 * DAY},
        {"fu-gp", "gp", "", 7 * DAY},
        {"fu-cardiology", "specialist", "cardiology", 60 * DAY},
    };
    for (size_t i = 0; i < 3; i++) {
        const Relais__V1__FollowUpItem *it = d.dn.follow_up[i];
        cr_expect_str_eq(it->item_id, want[i].id);
        cr_expect_str_eq(it->role, want[i].role);
        cr_expect_str_eq(it->specialty, want[i].specialty);
        cr_assert_not_null(it->window);
        cr_expect_eq(it->window->not_before_ms, at, "%s", want[i].id);
        cr_expect_eq(it->window->due_by_ms, at + want[i].due, "%s", want[i].id);
    }

    /* A window that opens later: the second nurse visit of the shipped hospital file. */
    char facility[RELAIS_ADDRESS_MAX], err[512] = "";
    relais_ref_programmes_t *t = NULL;
    cr_assert_eq(relais_ref_hospital_file_load(RELAIS_AGENTS_DIR "/hospital.yaml", facility, &t,
                                               err, sizeof err),
                 0, "%s", err);
    cr_expect_str_eq(facility, "finess:350000014");
    relais_ref_programme_build(relais_ref_programme_find(t, "heart-failure"), at, &d);
    cr_expect_eq(d.dn.disposition,
                 RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME_WITH_SERVICES);
    cr_assert_eq(d.dn.n_follow_up, 4);
    cr_expect_str_eq(d.dn.follow_up[1]->item_id, "fu-nurse-2");
    cr_expect_eq(d.dn.follow_up[1]->window->not_before_ms, at + 7 * DAY);
    cr_expect_eq(d.dn.follow_up[1]->window->due_by_ms, at + 14 * DAY);
    relais_ref_programmes_free(&t);
}

Test(programmes, a_hospital_file_without_programmes_uses_the_built_in_ones)
{
    char facility[RELAIS_ADDRESS_MAX], err[512] = "";
    relais_ref_programmes_t *t = NULL;
    cr_assert_eq(relais_ref_hospital_file_load(write_yaml("facility: finess:350000011\n"), facility,
                                               &t, err, sizeof err),
                 0, "%s", err);
    cr_expect_str_eq(facility, "finess:350000011");
    cr_expect_null(t);
    cr_expect_eq(relais_ref_hospital_file_load(write_yaml("facility: nowhere\n"), facility, &t, err,
                                               sizeof err),
                 RELAIS_ECONFIG);
    cr_expect(strstr(err, ":1: facility: 'nowhere' is not a valid address") != NULL, "%s", err);
    cr_expect_eq(
        relais_ref_hospital_file_load(write_yaml("kind: smr\n"), facility, &t, err, sizeof err),
        RELAIS_ECONFIG);
    cr_expect(strstr(err, "unknown key 'kind'") != NULL, "%s", err);
}

/* ---- The facility's file ------------------------------------------------------------- */

Test(programmes, the_shipped_facility_file_loads)
{
    relais_ref_facility_config_t cfg;
    relais_ref_facility_config_defaults(&cfg);
    char err[512] = "";
    cr_assert_eq(
        relais_ref_facility_config_load(RELAIS_AGENTS_DIR "/smr.yaml", &cfg, err, sizeof err), 0,
        "%s", err);
    cr_expect_eq(cfg.kind, RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR);
    cr_expect_eq(cfg.capacity, 12);
    cr_expect_float_eq(cfg.accept_rate, 0.8, 1e-9);
    cr_expect_float_eq(cfg.waitlist_rate, 0.5, 1e-9);
    cr_expect_eq(cfg.seed, 35000022);
    cr_expect_eq(cfg.decision_delay_ms, 2 * HOUR);
}

Test(programmes, facility_file_errors_name_the_key_and_leave_the_config_alone)
{
    static const struct {
        const char *yaml, *want;
    } cases[] = {
        {"kind: smr\ncapacity: 3\nbeds: 4\n", ":3: document: unknown key 'beds'"},
        {"capacity: 3\n", ":1: document: 'kind' is missing"},
        {"kind: hospice\n", ":1: kind: 'hospice' is not one of smr, ehpad, had, surgery"},
        {"kind: ehpad\naccept_rate: 1.5\n", ":2: accept_rate: 1.5 is outside 0..1"},
        {"kind: ehpad\nwaitlist_rate: half\n", ":2: waitlist_rate: expected a number"},
        {"kind: had\ndecision_delay_ms: -5\n", ":2: decision_delay_ms: expected a whole number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        relais_ref_facility_config_t cfg;
        relais_ref_facility_config_defaults(&cfg);
        char err[512] = "";
        cr_expect_eq(
            relais_ref_facility_config_load(write_yaml(cases[i].yaml), &cfg, err, sizeof err),
            RELAIS_ECONFIG, "%s", cases[i].yaml);
        cr_expect(strstr(err, cases[i].want) != NULL, "expected \"%s\" in \"%s\"", cases[i].want,
                  err);
        cr_expect_eq(cfg.capacity, 10, "untouched on failure");
        cr_expect_eq(cfg.kind, RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__SMR);
        remove_yaml();
    }
    relais_ref_facility_config_t cfg;
    relais_ref_facility_config_defaults(&cfg);
    char err[512] = "";
    cr_assert_eq(relais_ref_facility_config_load(write_yaml("kind: EHPAD\ncapacity: 0\n"), &cfg,
                                                 err, sizeof err),
                 0, "%s", err);
    cr_expect_eq(cfg.kind, RELAIS__V1__PREADMISSION_REQUEST__FACILITY_KIND__EHPAD);
    cr_expect_eq(cfg.capacity, 0);
    cr_expect_float_eq(cfg.accept_rate, 1.0, 1e-9, "absent keys keep their value");
}
