/*
 * The provider's calendar and configuration, without a broker: working hours, days and
 * horizon turned into slots; places per slot; hold, book, take and cancel; and the YAML
 * loader's errors, which must name the file, the line and the key.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calendar.h"
#include "ref_internal.h"
#include "refconfig.h"

#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define MON_2026_11_23 1795392000000LL /* 2026-11-23T00:00Z, a Monday */

static ref_calendar_spec_t office_hours(int64_t from_ms, unsigned days)
{
    ref_calendar_spec_t spec = {
        .from_ms = from_ms,
        .slot_ms = 30 * MIN_MS,
        .capacity = 1,
        .horizon_days = days,
        .work_days = 0x1f,
    };
    char why[96];
    cr_assert_eq(
        ref__hours_parse("08:00-12:00,14:00-18:00", spec.hours, &spec.n_hours, why, sizeof why), 0);
    return spec;
}

static ref_calendar_spec_t consecutive(size_t n, unsigned capacity, int64_t from_ms)
{
    return (ref_calendar_spec_t){
        .from_ms = from_ms, .slot_ms = 30 * MIN_MS, .capacity = capacity, .count = n};
}

/* ---- Working hours -------------------------------------------------------------------- */

Test(hours, ranges_are_parsed_in_minutes_from_midnight)
{
    ref_hours_t h[REF_HOURS_MAX];
    size_t n;
    char why[96];
    cr_assert_eq(ref__hours_parse("08:00-12:00, 14:30-24:00", h, &n, why, sizeof why), 0);
    cr_assert_eq(n, 2);
    cr_expect_eq(h[0].from_min, 8 * 60);
    cr_expect_eq(h[0].to_min, 12 * 60);
    cr_expect_eq(h[1].from_min, 14 * 60 + 30);
    cr_expect_eq(h[1].to_min, 24 * 60);
}

Test(hours, malformed_ranges_are_refused_with_a_reason)
{
    static const char *const bad[] = {
        "",
        "8-12",
        "08:00",
        "12:00-08:00",
        "08:00-12:00,11:00-13:00",
        "25:00-26:00",
        "08:60-09:00",
        "08:00-12:00;14:00-18:00",
        "24:30-24:45",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ref_hours_t h[REF_HOURS_MAX];
        size_t n;
        char why[96] = "";
        cr_expect_eq(ref__hours_parse(bad[i], h, &n, why, sizeof why), RELAIS_ECONFIG, "%s",
                     bad[i]);
        cr_expect_neq(why[0], '\0', "a reason for '%s'", bad[i]);
    }
}

Test(hours, a_friday_evening_start_skips_to_monday_morning)
{
    ref_calendar_t cal;
    int64_t friday_1731 = MON_2026_11_23 + 4 * DAY_MS + 17 * HOUR_MS + 31 * MIN_MS;
    ref_calendar_spec_t spec = office_hours(friday_1731, 4); /* Friday to Monday */
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    int64_t monday = MON_2026_11_23 + 7 * DAY_MS;
    cr_assert_eq(cal.n, 16, "one working day of 16 slots, got %zu", cal.n);
    cr_expect_eq(cal.slots[0].start_ms, monday + 8 * HOUR_MS);
    cr_expect_str_eq(cal.slots[0].id, "20261130T0800Z");
    cr_expect_eq(cal.slots[7].end_ms, monday + 12 * HOUR_MS, "the morning ends at noon");
    cr_expect_eq(cal.slots[8].start_ms, monday + 14 * HOUR_MS, "then the afternoon");
    cr_expect_eq(cal.slots[15].end_ms, monday + 18 * HOUR_MS);
    ref__calendar_free(&cal);
}

Test(hours, a_slot_starting_at_the_start_is_kept)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec =
        office_hours(MON_2026_11_23 + 4 * DAY_MS + 17 * HOUR_MS + 30 * MIN_MS, 1);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    cr_assert_eq(cal.n, 1);
    cr_expect_str_eq(cal.slots[0].id, "20261127T1730Z");
    ref__calendar_free(&cal);
}

Test(hours, four_weeks_of_weekdays_and_chosen_days)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = office_hours(MON_2026_11_23, 28);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    cr_expect_eq(cal.n, 20 * 16, "20 weekdays of 16 slots, got %zu", cal.n);
    ref__calendar_free(&cal);

    spec.work_days = 1u << 5 | 1u << 6; /* weekends only */
    spec.slot_ms = 60 * MIN_MS;
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    cr_expect_eq(cal.n, 8 * 8);
    cr_expect_eq(cal.slots[0].start_ms, MON_2026_11_23 + 5 * DAY_MS + 8 * HOUR_MS, "Saturday 8:00");
    ref__calendar_free(&cal);
}

Test(hours, calendars_without_slots_or_too_large_are_refused)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = office_hours(MON_2026_11_23 + 5 * DAY_MS, 2); /* a weekend */
    cr_expect_eq(ref__calendar_init(&cal, &spec), RELAIS_ECONFIG);
    spec = office_hours(MON_2026_11_23, 366);
    spec.slot_ms = MIN_MS; /* 480 a day */
    cr_expect_eq(ref__calendar_init(&cal, &spec), RELAIS_ECONFIG);
    spec = consecutive(100, 201, MON_2026_11_23); /* 20,100 places */
    cr_expect_eq(ref__calendar_init(&cal, &spec), RELAIS_ECONFIG);
    spec = consecutive(4, 0, MON_2026_11_23);
    cr_expect_eq(ref__calendar_init(&cal, &spec), RELAIS_ECONFIG);
}

/* ---- Places --------------------------------------------------------------------------- */

#define T0 (MON_2026_11_23 + 8 * HOUR_MS)

Test(places, a_slot_takes_capacity_requests_then_is_full)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = consecutive(1, 2, T0);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    int64_t now = T0 - HOUR_MS, until = now + 10 * MIN_MS;
    size_t a, b, c;
    cr_assert_eq(ref__calendar_hold(&cal, now, "rpps:1", "r1", 0, 0, until, 3, &a), 1);
    cr_assert_eq(ref__calendar_hold(&cal, now, "rpps:2", "r2", 0, 0, until, 3, &b), 1);
    cr_expect_neq(a, b, "two places of the same slot");
    cr_expect_eq(ref__calendar_hold(&cal, now, "rpps:3", "r3", 0, 0, until, 3, &c), 0, "full");
    cr_expect_eq(ref__calendar_free_count(&cal, now), 0);

    size_t i;
    cr_assert_eq(ref__calendar_book(&cal, now, "rpps:1", "r1", "slot-01", &i), 0);
    cr_expect_eq(i, a);
    cr_assert_eq(ref__calendar_book(&cal, now, "rpps:2", "r2", "slot-01", &i), 0);
    cr_expect_eq(i, b);
    cr_expect_str_neq(cal.places[a].appointment_id, cal.places[b].appointment_id);
    cr_expect_eq(ref__calendar_book(&cal, now, "rpps:3", "r3", "slot-01", &i), -EBUSY);
    cr_expect_eq(ref__calendar_take(&cal, now, "rpps:3", "t3", 0, 0, &i), -EBUSY);

    cr_expect_eq(ref__calendar_cancel(&cal, "rpps:1", NULL, cal.places[a].appointment_id), 1);
    cr_expect_eq(ref__calendar_free_count(&cal, now), 1);
    cr_expect_eq(ref__calendar_take(&cal, now, "rpps:3", "t3", 0, 0, &i), 0);
    cr_expect_eq(i, a, "the freed place");
    ref__calendar_free(&cal);
}

Test(places, one_request_gets_one_place_per_slot)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = consecutive(2, 3, T0);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    size_t idx[8];
    int64_t now = T0 - HOUR_MS;
    cr_assert_eq(ref__calendar_hold(&cal, now, "rpps:1", "r1", 0, 0, now + MIN_MS, 8, idx), 2);
    cr_expect_str_eq(ref__calendar_slot_of(&cal, idx[0])->id, "slot-01");
    cr_expect_str_eq(ref__calendar_slot_of(&cal, idx[1])->id, "slot-02");
    cr_expect_eq(ref__calendar_free_count(&cal, now), 4);
    ref__calendar_free(&cal);
}

Test(places, hold_book_and_cancel_with_one_place)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = consecutive(4, 1, T0);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    int64_t now = T0 - HOUR_MS, until = now + 10 * MIN_MS;
    size_t idx[8], i;
    cr_assert_eq(ref__calendar_hold(&cal, now, "rpps:1", "r1", 0, 0, until, 3, idx), 3);
    cr_expect_eq(ref__calendar_hold(&cal, now, "rpps:2", "r2", 0, 0, until, 3, idx), 1,
                 "only the fourth slot is left");
    cr_expect_str_eq(ref__calendar_slot_of(&cal, idx[0])->id, "slot-04");
    cr_expect_eq(ref__calendar_hold(&cal, now, "rpps:1", "r1", 0, 0, until, 3, idx), 3,
                 "a repeated request gets a fresh offer, not a second one");

    cr_expect_eq(ref__calendar_book(&cal, now, "rpps:2", "r2", "slot-01", &i), -EBUSY);
    cr_expect_eq(ref__calendar_book(&cal, now, "rpps:1", "r1", "slot-99", &i), -ENOENT);
    cr_assert_eq(ref__calendar_book(&cal, now, "rpps:1", "r1", "slot-02", &i), 0);
    char apt[16];
    snprintf(apt, sizeof apt, "%s", cal.places[i].appointment_id);
    cr_expect_eq(ref__calendar_free_count(&cal, now), 2, "the other holds were released");
    size_t again;
    cr_assert_eq(ref__calendar_book(&cal, now, "rpps:1", "r1", "slot-02", &again), 0);
    cr_expect_eq(again, i);
    cr_expect_str_eq(cal.places[again].appointment_id, apt, "a repeated Book, same appointment");

    /* r2's hold on slot-04 expires: slot-04 is anybody's again. */
    cr_expect_eq(ref__calendar_book(&cal, until, "rpps:3", "r3", "slot-04", &i), 0);
    cr_expect_eq(ref__calendar_cancel(&cal, "rpps:1", "r1", ""), 1);
    cr_expect_eq(ref__calendar_cancel(&cal, "rpps:9", "r1", ""), 0, "not someone else's");
    cr_expect_eq(ref__calendar_free_count(&cal, until), 3);
    ref__calendar_free(&cal);
}

Test(places, requesters_are_kept_once_however_many_requests)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = consecutive(40, 2, T0);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    int64_t now = T0 - HOUR_MS;
    for (int r = 0; r < 30; r++) {
        char rid[16];
        size_t i;
        snprintf(rid, sizeof rid, "t%d", r);
        cr_assert_eq(ref__calendar_take(&cal, now, r % 2 ? "rpps:1" : "rpps:2", rid, 0, 0, &i), 0);
        cr_expect_str_eq(ref__calendar_holder(&cal, &cal.places[i]), r % 2 ? "rpps:1" : "rpps:2");
    }
    cr_expect_eq(cal.n_holders, 2);
    cr_expect_leq(sizeof(ref_place_t), 160, "a place stays small: %zu bytes", sizeof(ref_place_t));
    cr_expect_eq(ref__calendar_cancel(&cal, "rpps:9", "t1", ""), 0, "an unknown requester");
    cr_expect_str_eq(ref__calendar_holder(&cal, &cal.places[cal.n * cal.capacity - 1]), "");
    ref__calendar_free(&cal);
}

Test(places, started_slots_and_windows_are_respected)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = consecutive(4, 1, T0);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    size_t idx[8], i;
    int64_t now = T0 + MIN_MS; /* slot-01 has started */
    cr_assert_eq(ref__calendar_hold(&cal, now, "rpps:1", "r1", 0, 0, now + MIN_MS, 1, idx), 1);
    cr_expect_str_eq(ref__calendar_slot_of(&cal, idx[0])->id, "slot-02");
    cr_expect_eq(ref__calendar_free_count(&cal, now), 2);
    /* Only slot-04 starts from T0 + 90 min and ends by T0 + 2 h. */
    int64_t from = T0 + 90 * MIN_MS, to = T0 + 2 * HOUR_MS;
    cr_assert_eq(ref__calendar_take(&cal, now, "rpps:2", "t2", from, to, &i), 0);
    cr_expect_str_eq(ref__calendar_slot_of(&cal, i)->id, "slot-04");
    cr_expect_eq(ref__calendar_take(&cal, now, "rpps:3", "t3", from, to, &i), -EBUSY);
    size_t same;
    cr_expect_eq(ref__calendar_take(&cal, now, "rpps:2", "t2", 0, 0, &same), 0);
    cr_expect_eq(same, i, "a repeated task keeps its place");
    ref__calendar_free(&cal);
}

/* ---- Configuration files -------------------------------------------------------------- */

static char *write_yaml(const char *text)
{
    char *path = strdup("/tmp/relais-provider-XXXXXX.yaml");
    int fd = mkstemps(path, 5);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

/* Loads text as a file; returns the code and leaves the error in err. */
static int load(const char *text, relais_ref_provider_config_t *cfg, char *err, size_t len,
                char **path_out)
{
    char *path = write_yaml(text);
    ref_cfg_t *doc = NULL;
    int rc = relais_ref_provider_config_load(path, cfg, &doc, err, len);
    if (rc != 0) cr_expect_null(doc, "no document after an error");
    ref__cfg_free(&doc);
    unlink(path);
    if (path_out != NULL) {
        *path_out = path;
    } else {
        free(path);
    }
    return rc;
}

Test(config, a_full_file_fills_every_field)
{
    const char *yaml = "role: specialist\n"
                       "specialty: cardiology\n"
                       "location: Centre de cardiologie\n"
                       "home_visits: false\n"
                       "calendar:\n"
                       "  hours: \"09:00-12:30\"\n"
                       "  days: [mon, wed, fri]\n"
                       "  slot_minutes: 20\n"
                       "  capacity: 2\n"
                       "  horizon_days: 28\n"
                       "behaviour:\n"
                       "  decline_rate: 0.25\n"
                       "  no_show_rate: 0.1\n"
                       "  seed: 12345678901234567890\n"
                       "  hold_minutes: 15\n"
                       "  max_offer: 4\n"
                       "  report_outcomes: true\n"
                       "  silent: false\n";
    char *path = write_yaml(yaml);
    relais_ref_provider_config_t cfg = {.role = "specialist", .slot_count = 7};
    ref_cfg_t *doc = NULL;
    char err[512] = "";
    cr_assert_eq(relais_ref_provider_config_load(path, &cfg, &doc, err, sizeof err), 0, "%s", err);
    cr_expect_str_eq(cfg.specialty, "cardiology");
    cr_expect_str_eq(cfg.location, "Centre de cardiologie");
    cr_expect_str_eq(cfg.hours, "09:00-12:30");
    cr_expect_eq(cfg.work_days, 1 | 4 | 16);
    cr_expect_eq(cfg.slot_minutes, 20);
    cr_expect_eq(cfg.capacity, 2);
    cr_expect_eq(cfg.horizon_days, 28);
    cr_expect_eq(cfg.slot_count, 7, "absent keys leave the field alone");
    cr_expect_float_eq(cfg.decline_rate, 0.25, 1e-9);
    cr_expect_float_eq(cfg.no_show_rate, 0.1, 1e-9);
    cr_expect_eq(cfg.seed, 12345678901234567890ULL);
    cr_expect_eq(cfg.hold_ms, 15 * 60 * 1000);
    cr_expect_eq(cfg.max_offer, 4);
    cr_expect(cfg.report_outcomes);
    ref__cfg_free(&doc);
    unlink(path);
    free(path);
}

/* One broken file per row: the error must read "<file>:<line>: <key>: …". */
static const struct bad_file {
    const char *yaml;
    unsigned line;
    const char *key;
    const char *says;
} bad_files[] = {
    {"role: nurse\ncolour: blue\n", 2, "provider", "unknown key 'colour'"},
    {"role: nurse\ncalendar:\n  slot_minutes: 30\n  hour: 08:00-12:00\n", 4, "calendar",
     "unknown key 'hour'"},
    {"role: nurse\nbehaviour:\n  no_show_rate: 1.5\n", 3, "no_show_rate", "outside"},
    {"role: nurse\nbehaviour:\n  decline_rate: often\n", 3, "decline_rate", "expected a number"},
    {"role: nurse\ncalendar:\n  hours: 08:00-12:00,11:00-13:00\n", 3, "hours", "overlap"},
    {"role: nurse\ncalendar:\n  days: [mon, funday]\n", 3, "days", "funday"},
    {"role: nurse\ncalendar:\n  capacity: 0\n", 3, "capacity", "outside"},
    {"role: dentist\n", 1, "role", "dentist"},
    {"role: nurse\nhome_visits: yes\n", 2, "home_visits", "true or false"},
    {"role: nurse\nbehaviour:\n  silent: false\n  silent: true\n", 4, "behaviour", "twice"},
    {"role: nurse\ncalendar: 3\n", 2, "calendar", "mapping"},
};

Test(config, errors_name_the_file_the_line_and_the_key)
{
    for (size_t i = 0; i < sizeof bad_files / sizeof bad_files[0]; i++) {
        const struct bad_file *b = &bad_files[i];
        relais_ref_provider_config_t cfg = {.role = "nurse", .capacity = 5};
        char err[512] = "", *path = NULL;
        cr_expect_eq(load(b->yaml, &cfg, err, sizeof err, &path), RELAIS_ECONFIG, "row %zu", i);
        char want[512];
        snprintf(want, sizeof want, "%s:%u: %s: ", path, b->line, b->key);
        cr_expect(strncmp(err, want, strlen(want)) == 0, "row %zu: '%s' should start '%s'", i, err,
                  want);
        cr_expect(strstr(err, b->says) != NULL, "row %zu: '%s' should say '%s'", i, err, b->says);
        cr_expect_eq(cfg.capacity, 5, "row %zu: the caller's structure is untouched", i);
        free(path);
    }
}

Test(config, a_missing_file_is_an_error)
{
    relais_ref_provider_config_t cfg = {0};
    ref_cfg_t *doc = NULL;
    char err[512] = "";
    cr_expect_eq(
        relais_ref_provider_config_load("/nonexistent/nurse.yaml", &cfg, &doc, err, sizeof err),
        RELAIS_ECONFIG);
    cr_expect(strstr(err, "/nonexistent/nurse.yaml") != NULL, "%s", err);
    cr_expect_null(doc);
}

/* ---- The sample files and the provider's own checks ----------------------------------- */

static relais_agent_t *idle_agent(void)
{
    relais_agent_options_t opts = {.endpoint = "tcp://127.0.0.1:1", .address = "rpps:10103456789"};
    relais_agent_t *agent = NULL;
    cr_assert_eq(relais_agent_new(&agent, &opts), 0);
    return agent;
}

Test(samples, each_sample_file_makes_a_provider)
{
    static const char *const files[] = {"nurse.yaml", "physiotherapist.yaml", "cardiologist.yaml"};
    for (size_t i = 0; i < 3; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/deploy/agents/%s", RELAIS_SOURCE_DIR, files[i]);
        relais_ref_provider_config_t cfg = {0};
        ref_cfg_t *doc = NULL;
        char err[512] = "";
        cr_assert_eq(relais_ref_provider_config_load(path, &cfg, &doc, err, sizeof err), 0, "%s",
                     err);
        cr_expect_neq(cfg.horizon_days, 0, "%s uses working hours", files[i]);
        relais_agent_t *agent = idle_agent();
        relais_ref_provider_t *p = NULL;
        cr_expect_eq(relais_ref_provider_new(&p, agent, &cfg), 0, "%s", files[i]);
        ref__cfg_free(&doc);
        if (p != NULL) {
            cr_expect_gt(relais_ref_provider_free_slots(p), 0);
            relais_ref_provider_stats_t st;
            relais_ref_provider_stats(p, &st);
            cr_expect_eq(st.requests + st.outcomes, 0);
        }
        relais_agent_destroy(&agent);
        relais_ref_provider_destroy(&p);
    }
}

Test(samples, the_provider_refuses_what_the_file_reader_would)
{
    static const relais_ref_provider_config_t bad[] = {
        {.role = "nurse", .decline_rate = 1.5},
        {.role = "nurse", .no_show_rate = -0.1},
        {.role = "nurse", .capacity = 101},
        {.role = "nurse", .horizon_days = 2, .hours = "18:00-08:00"},
        {.role = "nurse", .horizon_days = 367},
        {.role = "nurse", .work_days = 0x80},
        {.role = NULL},
    };
    relais_agent_t *agent = idle_agent();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        relais_ref_provider_t *p = NULL;
        cr_expect_eq(relais_ref_provider_new(&p, agent, &bad[i]), RELAIS_ECONFIG, "row %zu", i);
        cr_expect_null(p);
    }
    relais_agent_destroy(&agent);
}

/* ---- Answers that take working time (provider_later.c) -------------------------------- */

Test(answer_delay, working_time_counts_only_opening_hours_and_skips_the_weekend)
{
    ref_calendar_spec_t spec = office_hours(MON_2026_11_23, 7);
    int64_t mon = MON_2026_11_23;
    /* Monday 11:00 + 2 h of work: one hour before noon, one after 14:00. */
    cr_expect_eq(ref__working_time_add(&spec, mon + 11 * HOUR_MS, 2 * HOUR_MS),
                 mon + 15 * HOUR_MS);
    /* Received at night: work starts at 08:00. */
    cr_expect_eq(ref__working_time_add(&spec, mon + 22 * HOUR_MS, 30 * MIN_MS),
                 mon + DAY_MS + 8 * HOUR_MS + 30 * MIN_MS);
    /* Friday 17:00 + 3 h: one hour on Friday, two on Monday morning. */
    int64_t fri = mon + 4 * DAY_MS;
    cr_expect_eq(ref__working_time_add(&spec, fri + 17 * HOUR_MS, 3 * HOUR_MS),
                 mon + 7 * DAY_MS + 10 * HOUR_MS);
}

Test(answer_delay, the_log_normal_draw_has_its_median_and_a_capped_tail)
{
    /* u2 = 0.25: cos(pi/2) = 0, the median whatever u1. */
    int64_t m = ref__lognormal_ms(2 * HOUR_MS, 1.2, 0.3, 0.25);
    cr_expect(m > 2 * HOUR_MS - 1000 && m < 2 * HOUR_MS + 1000, "%lld", (long long)m);
    /* The far tail (u1 tiny, cos = 1) is capped at 40 medians. */
    cr_expect_eq(ref__lognormal_ms(HOUR_MS, 3.0, 1e-15, 0.0), 40 * HOUR_MS);
    cr_expect_eq(ref__lognormal_ms(0, 1.2, 0.5, 0.5), 0);
}

Test(answer_delay, the_load_is_the_booked_share_of_the_period)
{
    ref_calendar_t cal;
    ref_calendar_spec_t spec = consecutive(4, 1, MON_2026_11_23);
    cr_assert_eq(ref__calendar_init(&cal, &spec), 0);
    int64_t end = MON_2026_11_23 + 2 * HOUR_MS;
    cr_expect_eq(ref__calendar_load(&cal, MON_2026_11_23, end), 0.0);
    size_t i;
    cr_assert_eq(ref__calendar_take(&cal, MON_2026_11_23 - 1, "rpps:1", "t-1", 0, 0, &i), 0);
    cr_expect_eq(ref__calendar_load(&cal, MON_2026_11_23, end), 0.25);
    cr_expect_eq(ref__calendar_load(&cal, end, end + HOUR_MS), 0.0, "no place: no load");
    ref__calendar_free(&cal);
}
