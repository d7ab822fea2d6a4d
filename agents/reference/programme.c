/*
 * Care programmes: the follow-up plan a hospital writes into a discharge notification,
 * by programme (heart failure, COPD, …). A programme is data — a name, a disposition and
 * items, each a role to see the patient within a window counted from the discharge — so
 * that a territory changes its plans in a YAML file and not in code. The built-in table
 * below is the same data as deploy/agents/programmes.yaml. Also the reader of a hospital's
 * configuration file, whose `programmes:` list has the same layout.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "refagents.h"
#include "refconfig.h"

#define PROGRAMMES_MAX 64
#define HOUR_MS (3600LL * 1000)
#define WINDOW_HOURS_MAX (366u * 24u)
#define ROLE_MAX 32
#define ACTION_MAX 256

struct relais_ref_programmes {
    const relais_ref_programme_t *programmes;
    size_t n;
    bool owned; /* false for the built-in table, which lives in static storage */
};

/* ---- The built-in table --------------------------------------------------------------- */

#define M(x) RELAIS__V1__SLOT__MODE__##x

static const relais_ref_programme_item_t heart_failure_items[] = {
    {"fu-nurse", "nurse", "", "home visit: weight, oedema and symptoms check", 0, 2 * 24, M(HOME)},
    {"fu-gp", "gp", "", "GP consultation: treatment review", 0, 7 * 24, M(OFFICE)},
    {"fu-cardiology", "specialist", "cardiology", "cardiology consultation: treatment titration", 0,
     60 * 24, M(OFFICE)},
};

static const relais_ref_programme_item_t copd_items[] = {
    {"fu-nurse", "nurse", "", "home visit: breathing, oxygen and inhaler technique check", 0,
     2 * 24, M(HOME)},
    {"fu-gp", "gp", "", "GP consultation: treatment review", 0, 7 * 24, M(OFFICE)},
    {"fu-rehab", "physiotherapist", "", "pulmonary rehabilitation: assessment and first session", 0,
     14 * 24, M(OFFICE)},
};

static const relais_ref_programme_t builtin[] = {
    {"heart-failure", RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME, heart_failure_items,
     sizeof heart_failure_items / sizeof heart_failure_items[0]},
    {"copd", RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME, copd_items,
     sizeof copd_items / sizeof copd_items[0]},
};

static const relais_ref_programmes_t builtin_table = {builtin, sizeof builtin / sizeof builtin[0],
                                                      false};

const relais_ref_programmes_t *relais_ref_programmes_default(void)
{
    return &builtin_table;
}

size_t relais_ref_programmes_count(const relais_ref_programmes_t *t)
{
    return t != NULL ? t->n : 0;
}

const relais_ref_programme_t *relais_ref_programme_at(const relais_ref_programmes_t *t, size_t i)
{
    return t != NULL && i < t->n ? &t->programmes[i] : NULL;
}

const relais_ref_programme_t *relais_ref_programme_find(const relais_ref_programmes_t *t,
                                                        const char *name)
{
    if (t == NULL || name == NULL) return NULL;
    for (size_t i = 0; i < t->n; i++) {
        if (strcmp(t->programmes[i].name, name) == 0) return &t->programmes[i];
    }
    return NULL;
}

/* ---- Building a plan -------------------------------------------------------------------- */

void relais_ref_programme_build(const relais_ref_programme_t *prog, int64_t discharged_at_ms,
                                relais_ref_discharge_t *out)
{
    memset(out, 0, sizeof *out);
    relais__v1__discharge_notification__init(&out->dn);
    size_t n = prog->n_items < RELAIS_REF_PROGRAMME_ITEMS_MAX ? prog->n_items
                                                              : RELAIS_REF_PROGRAMME_ITEMS_MAX;
    for (size_t i = 0; i < n; i++) {
        const relais_ref_programme_item_t *src = &prog->items[i];
        Relais__V1__TimeWindow *w = &out->windows[i];
        relais__v1__time_window__init(w);
        w->not_before_ms = discharged_at_ms + (int64_t)src->not_before_hours * HOUR_MS;
        w->due_by_ms = discharged_at_ms + (int64_t)src->within_hours * HOUR_MS;
        Relais__V1__FollowUpItem *it = &out->items[i];
        relais__v1__follow_up_item__init(it);
        it->item_id = (char *)src->item_id;
        it->role = (char *)src->role;
        it->specialty = (char *)(src->specialty != NULL ? src->specialty : "");
        it->action = (char *)src->action;
        it->window = w;
        out->item_ptrs[i] = it;
    }
    out->dn.discharged_at_ms = discharged_at_ms;
    out->dn.disposition = prog->disposition;
    out->dn.programme = (char *)prog->name;
    out->dn.n_follow_up = n;
    out->dn.follow_up = out->item_ptrs;
}

/* ---- Reading programmes from YAML ------------------------------------------------------- */

static void free_programme(relais_ref_programme_t *p)
{
    for (size_t i = 0; i < p->n_items; i++) {
        relais_ref_programme_item_t *it = (relais_ref_programme_item_t *)&p->items[i];
        free((char *)it->item_id);
        free((char *)it->role);
        free((char *)it->specialty);
        free((char *)it->action);
    }
    free((void *)p->items);
    free((char *)p->name);
}

void relais_ref_programmes_free(relais_ref_programmes_t **tp)
{
    if (tp == NULL || *tp == NULL) return;
    relais_ref_programmes_t *t = *tp;
    *tp = NULL;
    if (!t->owned) return; /* the built-in table */
    for (size_t i = 0; i < t->n; i++) free_programme((relais_ref_programme_t *)&t->programmes[i]);
    free((void *)t->programmes);
    free(t);
}

typedef struct name_value {
    const char *name;
    int value;
} name_value_t;

static const name_value_t dispositions[] = {
    {"home", RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME},
    {"home-with-services", RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME_WITH_SERVICES},
    {"smr", RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__SMR},
    {"ehpad", RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__EHPAD},
    {"transfer", RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__TRANSFER},
    {NULL, 0},
};

static const name_value_t modes[] = {
    {"office", RELAIS__V1__SLOT__MODE__OFFICE},
    {"home", RELAIS__V1__SLOT__MODE__HOME},
    {"teleconsultation", RELAIS__V1__SLOT__MODE__TELECONSULTATION},
    {NULL, 0},
};

/* The roles the GP's assistant knows how to route (see assistant.c). */
static const char *const roles[] = {"gp", "nurse", "physiotherapist", "specialist", NULL};

/* Reads key as one of the names of table into *out (absent: *out untouched). */
static int read_enum(ref_cfg_t *cfg, const yaml_node_t *map, const char *key,
                     const name_value_t *table, int *out)
{
    const char *s = NULL;
    if (ref__cfg_str(cfg, map, key, &s) != 0 || s == NULL) return ref__cfg_status(cfg);
    char expected[160] = "";
    for (size_t i = 0; table[i].name != NULL; i++) {
        if (strcasecmp(s, table[i].name) == 0) {
            *out = table[i].value;
            return 0;
        }
        size_t len = strlen(expected);
        snprintf(expected + len, sizeof expected - len, "%s%s", i > 0 ? ", " : "", table[i].name);
    }
    return ref__cfg_fail(cfg, ref__cfg_get(cfg, map, key), key, "'%s' is not one of %s", s,
                         expected);
}

/*
 * Reads a required or optional string key into a fresh copy in *out ("" when optional and
 * absent). max is the size the value must fit in, NUL included.
 */
static int read_copy(ref_cfg_t *cfg, const yaml_node_t *map, const char *what, const char *key,
                     bool required, size_t max, const char **out)
{
    const char *s = NULL;
    if (ref__cfg_str(cfg, map, key, &s) != 0) return ref__cfg_status(cfg);
    if (s == NULL || s[0] == '\0') {
        if (required) return ref__cfg_fail(cfg, map, what, "'%s' is missing", key);
        s = "";
    }
    if (strlen(s) >= max)
        return ref__cfg_fail(cfg, ref__cfg_get(cfg, map, key), key, "longer than %zu bytes",
                             max - 1);
    char *copy = strdup(s);
    if (copy == NULL) return -ENOMEM;
    *out = copy;
    return 0;
}

/* days * 24 + hours of the pair of keys prefix_days / prefix_hours; 0 when both absent. */
static int read_hours(ref_cfg_t *cfg, const yaml_node_t *map, const char *days_key,
                      const char *hours_key, unsigned *out)
{
    uint64_t days = 0, hours = 0;
    if (ref__cfg_uint(cfg, map, days_key, 0, WINDOW_HOURS_MAX / 24, &days) != 0 ||
        ref__cfg_uint(cfg, map, hours_key, 0, WINDOW_HOURS_MAX, &hours) != 0)
        return ref__cfg_status(cfg);
    uint64_t total = days * 24 + hours;
    if (total > WINDOW_HOURS_MAX) {
        const yaml_node_t *n = ref__cfg_get(cfg, map, hours_key);
        return ref__cfg_fail(cfg, n != NULL ? n : ref__cfg_get(cfg, map, days_key), hours_key,
                             "the window ends more than %u days after the discharge",
                             WINDOW_HOURS_MAX / 24);
    }
    *out = (unsigned)total;
    return 0;
}

static const char *const item_keys[] = {"id",
                                        "role",
                                        "specialty",
                                        "action",
                                        "mode",
                                        "not_before_days",
                                        "not_before_hours",
                                        "within_days",
                                        "within_hours",
                                        NULL};

static int read_item(ref_cfg_t *cfg, const yaml_node_t *map, const char *what,
                     relais_ref_programme_item_t *it)
{
    int rc = ref__cfg_keys(cfg, map, what, item_keys);
    if (rc == 0) rc = read_copy(cfg, map, what, "id", true, RELAIS_REF_ID_MAX, &it->item_id);
    if (rc == 0) rc = read_copy(cfg, map, what, "role", true, ROLE_MAX, &it->role);
    if (rc == 0) {
        size_t i = 0;
        while (roles[i] != NULL && strcmp(roles[i], it->role) != 0) i++;
        if (roles[i] == NULL)
            rc = ref__cfg_fail(cfg, ref__cfg_get(cfg, map, "role"), "role",
                               "'%s' is not one of gp, nurse, physiotherapist, specialist",
                               it->role);
    }
    if (rc == 0)
        rc = read_copy(cfg, map, what, "specialty", false, RELAIS_REF_ID_MAX, &it->specialty);
    if (rc == 0) rc = read_copy(cfg, map, what, "action", true, ACTION_MAX, &it->action);
    int mode = RELAIS__V1__SLOT__MODE__MODE_UNSPECIFIED;
    if (rc == 0) rc = read_enum(cfg, map, "mode", modes, &mode);
    it->mode = (Relais__V1__Slot__Mode)mode;
    if (rc == 0)
        rc = read_hours(cfg, map, "not_before_days", "not_before_hours", &it->not_before_hours);
    if (rc == 0) rc = read_hours(cfg, map, "within_days", "within_hours", &it->within_hours);
    if (rc == 0 && it->within_hours == 0)
        rc = ref__cfg_fail(cfg, map, what, "'within_days' or 'within_hours' is missing");
    if (rc == 0 && it->within_hours <= it->not_before_hours) {
        const yaml_node_t *n = ref__cfg_get(cfg, map, "within_days");
        rc = ref__cfg_fail(cfg, n != NULL ? n : ref__cfg_get(cfg, map, "within_hours"),
                           n != NULL ? "within_days" : "within_hours",
                           "the window must end after it opens (not_before)");
    }
    return rc;
}

static const char *const programme_keys[] = {"name", "disposition", "items", NULL};

static int read_programme(ref_cfg_t *cfg, const yaml_node_t *map, const char *what,
                          relais_ref_programme_t *p)
{
    int rc = ref__cfg_keys(cfg, map, what, programme_keys);
    if (rc == 0) rc = read_copy(cfg, map, what, "name", true, RELAIS_REF_ID_MAX, &p->name);
    int disposition = RELAIS__V1__DISCHARGE_NOTIFICATION__DISPOSITION__HOME;
    if (rc == 0) rc = read_enum(cfg, map, "disposition", dispositions, &disposition);
    p->disposition = (Relais__V1__DischargeNotification__Disposition)disposition;
    if (rc != 0) return rc;

    const yaml_node_t *items = ref__cfg_get(cfg, map, "items");
    if (items == NULL) return ref__cfg_fail(cfg, map, what, "'items' is missing");
    size_t n = ref__cfg_len(cfg, items, "items");
    if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
    if (n == 0 || n > RELAIS_REF_PROGRAMME_ITEMS_MAX)
        return ref__cfg_fail(cfg, items, "items", "expected 1 to %d items, got %zu",
                             RELAIS_REF_PROGRAMME_ITEMS_MAX, n);
    relais_ref_programme_item_t *arr = calloc(n, sizeof *arr);
    if (arr == NULL) return -ENOMEM;
    p->items = arr;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char item_what[96];
        snprintf(item_what, sizeof item_what, "%s.items[%zu]", what, i);
        rc = read_item(cfg, ref__cfg_at(cfg, items, i), item_what, &arr[i]);
        p->n_items = i + 1; /* so that what was copied is freed on failure */
        for (size_t j = 0; j < i && rc == 0; j++) {
            if (strcmp(arr[j].item_id, arr[i].item_id) == 0) {
                const yaml_node_t *idn = ref__cfg_get(cfg, ref__cfg_at(cfg, items, i), "id");
                rc = ref__cfg_fail(cfg, idn, "id", "'%s' appears twice in %s", arr[i].item_id,
                                   p->name);
            }
        }
    }
    return rc;
}

/* Reads the `programmes:` list seq into a new table in *out. */
static int read_programmes(ref_cfg_t *cfg, const yaml_node_t *seq, relais_ref_programmes_t **out)
{
    size_t n = ref__cfg_len(cfg, seq, "programmes");
    if (ref__cfg_status(cfg) != 0) return ref__cfg_status(cfg);
    if (n == 0 || n > PROGRAMMES_MAX)
        return ref__cfg_fail(cfg, seq, "programmes", "expected 1 to %d programmes, got %zu",
                             PROGRAMMES_MAX, n);
    relais_ref_programmes_t *t = calloc(1, sizeof *t);
    relais_ref_programme_t *arr = calloc(n, sizeof *arr);
    if (t == NULL || arr == NULL) {
        free(t);
        free(arr);
        return -ENOMEM;
    }
    t->programmes = arr;
    t->owned = true;
    int rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        char what[48];
        snprintf(what, sizeof what, "programmes[%zu]", i);
        rc = read_programme(cfg, ref__cfg_at(cfg, seq, i), what, &arr[i]);
        t->n = i + 1;
        for (size_t j = 0; j < i && rc == 0; j++) {
            if (strcmp(arr[j].name, arr[i].name) == 0) {
                const yaml_node_t *nn = ref__cfg_get(cfg, ref__cfg_at(cfg, seq, i), "name");
                rc = ref__cfg_fail(cfg, nn, "name", "programme '%s' appears twice", arr[i].name);
            }
        }
    }
    if (rc != 0) {
        relais_ref_programmes_free(&t);
        return rc;
    }
    *out = t;
    return 0;
}

/* Copies the reader's first error to err and returns its code (or rc when it has none). */
static int finish(ref_cfg_t **cfg, int rc, char *err, size_t err_len)
{
    if (ref__cfg_error(*cfg) != NULL) {
        snprintf(err, err_len, "%s", ref__cfg_error(*cfg));
        rc = ref__cfg_status(*cfg);
    } else if (rc == -ENOMEM) {
        snprintf(err, err_len, "out of memory");
    }
    ref__cfg_free(cfg);
    return rc;
}

int relais_ref_programmes_load(const char *path, relais_ref_programmes_t **out, char *err,
                               size_t err_len)
{
    static const char *const keys[] = {"programmes", NULL};
    *out = NULL;
    ref_cfg_t *cfg = NULL;
    int rc = ref__cfg_load(&cfg, path, err, err_len);
    if (rc != 0) return rc;
    const yaml_node_t *root = ref__cfg_root(cfg);
    rc = ref__cfg_keys(cfg, root, "document", keys);
    if (rc == 0) {
        const yaml_node_t *seq = ref__cfg_get(cfg, root, "programmes");
        rc = seq != NULL ? read_programmes(cfg, seq, out)
                         : ref__cfg_fail(cfg, root, "document", "'programmes' is missing");
    }
    return finish(&cfg, rc, err, err_len);
}

int relais_ref_hospital_file_load(const char *path, char facility[RELAIS_ADDRESS_MAX],
                                  relais_ref_programmes_t **programmes, char *err, size_t err_len)
{
    static const char *const keys[] = {"facility", "programmes", NULL};
    facility[0] = '\0';
    *programmes = NULL;
    ref_cfg_t *cfg = NULL;
    int rc = ref__cfg_load(&cfg, path, err, err_len);
    if (rc != 0) return rc;
    const yaml_node_t *root = ref__cfg_root(cfg);
    rc = ref__cfg_keys(cfg, root, "document", keys);
    const char *fac = NULL;
    if (rc == 0) rc = ref__cfg_str(cfg, root, "facility", &fac);
    if (rc == 0 && fac != NULL) {
        if (strlen(fac) >= RELAIS_ADDRESS_MAX || !relais_address_valid(fac))
            rc = ref__cfg_fail(cfg, ref__cfg_get(cfg, root, "facility"), "facility",
                               "'%s' is not a valid address", fac);
        else
            snprintf(facility, RELAIS_ADDRESS_MAX, "%s", fac);
    }
    const yaml_node_t *seq = ref__cfg_get(cfg, root, "programmes");
    if (rc == 0 && seq != NULL) rc = read_programmes(cfg, seq, programmes);
    rc = finish(&cfg, rc, err, err_len);
    if (rc != 0) {
        facility[0] = '\0';
        relais_ref_programmes_free(programmes);
    }
    return rc;
}
