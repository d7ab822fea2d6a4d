/*
 * A provider's configuration file (YAML) read into relais_ref_provider_config_t, for the
 * reference programs' --config option. The layout (docs/AGENTS.md):
 *
 *   role: nurse | physiotherapist | specialist
 *   specialty, location: text; home_visits: true | false
 *   calendar:  hours, days (list of mon … sun), slot_minutes, capacity, horizon_days, slots
 *   behaviour: decline_rate, no_show_rate, seed, hold_minutes, max_offer, report_outcomes,
 *              silent
 *
 * Every mapping is checked for unknown and repeated keys, every value for its type and
 * range, and the first error names the file, the line and the key (refconfig.h). The
 * values land in a copy of the caller's structure, which is written back only when the
 * whole file is right.
 */
#include <stdio.h>
#include <string.h>

#include "calendar.h"
#include "refconfig.h"

static void read_calendar(ref_cfg_t *c, const yaml_node_t *cal, relais_ref_provider_config_t *cfg)
{
    static const char *const keys[] = {"hours", "days", "slot_minutes", "capacity", "horizon_days",
                                       "slots", NULL};
    if (ref__cfg_keys(c, cal, "calendar", keys) != 0) return;

    const yaml_node_t *hours = ref__cfg_get(c, cal, "hours");
    if (hours != NULL) {
        const char *text = ref__cfg_text(c, hours, "hours");
        ref_hours_t ranges[REF_HOURS_MAX];
        size_t n;
        char why[96];
        if (text == NULL) return;
        if (ref__hours_parse(text, ranges, &n, why, sizeof why) != 0) {
            ref__cfg_fail(c, hours, "hours", "%s, got '%s'", why, text);
            return;
        }
        cfg->hours = text;
    }

    const yaml_node_t *days = ref__cfg_get(c, cal, "days");
    if (days != NULL) {
        static const char *const names[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
        size_t n = ref__cfg_len(c, days, "days");
        if (ref__cfg_status(c) != 0) return;
        if (n == 0) {
            ref__cfg_fail(c, days, "days", "name at least one day (mon … sun)");
            return;
        }
        uint8_t mask = 0;
        for (size_t i = 0; i < n; i++) {
            const yaml_node_t *item = ref__cfg_at(c, days, i);
            const char *day = ref__cfg_text(c, item, "days");
            if (day == NULL) return;
            size_t d = 0;
            while (d < 7 && strcmp(day, names[d]) != 0) d++;
            if (d == 7) {
                ref__cfg_fail(c, item, "days",
                              "expected mon, tue, wed, thu, fri, sat or sun, got '%s'", day);
                return;
            }
            mask |= (uint8_t)(1u << d);
        }
        cfg->work_days = mask;
    }

    uint64_t v;
    v = cfg->slot_minutes;
    if (ref__cfg_uint(c, cal, "slot_minutes", 1, 24 * 60, &v) == 0) cfg->slot_minutes = (unsigned)v;
    v = cfg->capacity;
    if (ref__cfg_uint(c, cal, "capacity", 1, 100, &v) == 0) cfg->capacity = (unsigned)v;
    v = cfg->horizon_days;
    if (ref__cfg_uint(c, cal, "horizon_days", 0, 366, &v) == 0) cfg->horizon_days = (unsigned)v;
    v = cfg->slot_count;
    if (ref__cfg_uint(c, cal, "slots", 1, REF_CAL_SLOTS_MAX, &v) == 0)
        cfg->slot_count = (unsigned)v;
}

static void read_behaviour(ref_cfg_t *c, const yaml_node_t *b, relais_ref_provider_config_t *cfg)
{
    static const char *const keys[] = {"decline_rate", "no_show_rate",    "seed",   "hold_minutes",
                                       "max_offer",    "report_outcomes", "silent", NULL};
    if (ref__cfg_keys(c, b, "behaviour", keys) != 0) return;
    ref__cfg_double(c, b, "decline_rate", 0.0, 1.0, &cfg->decline_rate);
    ref__cfg_double(c, b, "no_show_rate", 0.0, 1.0, &cfg->no_show_rate);
    ref__cfg_uint(c, b, "seed", 0, UINT64_MAX, &cfg->seed);
    uint64_t v = 0;
    if (ref__cfg_uint(c, b, "hold_minutes", 1, 7 * 24 * 60, &v) == 0 && v != 0) {
        cfg->hold_ms = (unsigned)(v * 60 * 1000);
    }
    v = cfg->max_offer;
    if (ref__cfg_uint(c, b, "max_offer", 1, 8, &v) == 0) cfg->max_offer = (unsigned)v;
    ref__cfg_bool(c, b, "report_outcomes", &cfg->report_outcomes);
    ref__cfg_bool(c, b, "silent", &cfg->silent);
}

static void read_root(ref_cfg_t *c, relais_ref_provider_config_t *cfg)
{
    static const char *const keys[] = {"role",     "specialty", "location", "home_visits",
                                       "calendar", "behaviour", NULL};
    const yaml_node_t *root = ref__cfg_root(c);
    if (root == NULL || ref__cfg_keys(c, root, "provider", keys) != 0) return;

    const yaml_node_t *role = ref__cfg_get(c, root, "role");
    if (role != NULL) {
        const char *r = ref__cfg_text(c, role, "role");
        if (r == NULL) return;
        if (strcmp(r, "nurse") != 0 && strcmp(r, "physiotherapist") != 0 &&
            strcmp(r, "specialist") != 0) {
            ref__cfg_fail(c, role, "role",
                          "expected nurse, physiotherapist or specialist, got '%s'", r);
            return;
        }
        cfg->role = r;
    }
    ref__cfg_str(c, root, "specialty", &cfg->specialty);
    ref__cfg_str(c, root, "location", &cfg->location);
    ref__cfg_bool(c, root, "home_visits", &cfg->home_visits);

    const yaml_node_t *cal = ref__cfg_get(c, root, "calendar");
    if (cal != NULL) read_calendar(c, cal, cfg);
    const yaml_node_t *b = ref__cfg_get(c, root, "behaviour");
    if (b != NULL && ref__cfg_status(c) == 0) read_behaviour(c, b, cfg);
}

int relais_ref_provider_config_load(const char *path, relais_ref_provider_config_t *cfg,
                                    ref_cfg_t **doc, char *err, size_t err_len)
{
    *doc = NULL;
    ref_cfg_t *c = NULL;
    int rc = ref__cfg_load(&c, path, err, err_len);
    if (rc != 0) return rc;
    relais_ref_provider_config_t read = *cfg;
    read_root(c, &read);
    if (ref__cfg_status(c) != 0) {
        snprintf(err, err_len, "%s", ref__cfg_error(c));
        ref__cfg_free(&c);
        return RELAIS_ECONFIG;
    }
    *cfg = read;
    *doc = c;
    return 0;
}
