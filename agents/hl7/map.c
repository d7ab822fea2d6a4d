/*
 * HL7 v2 ADT to Relais (see map.h): the header checks every message goes through, the
 * patient (PID, with the French INS rules), the GP and whom to notify for them, times,
 * and the discharge itself.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "map.h"

/* The INS authorities (ANS): NIR and NIA, then their test counterparts. */
static const char *const ins_oids[] = {"1.2.250.1.213.1.4.8", "1.2.250.1.213.1.4.9"};
static const char *const ins_test_oids[] = {"1.2.250.1.213.1.4.10", "1.2.250.1.213.1.4.11"};
/* RPPS numbers are issued under this OID (ASIP-SANTE-PS). */
#define RPPS_OID "1.2.250.1.71.4.2.1"

static bool in_list(const char *v, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v, list[i]) == 0) return true;
    }
    return false;
}

static bool digits(const char *s, size_t n)
{
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
    }
    return true;
}

/* Reads one value; a value too long or badly escaped refuses the message, naming where. */
static int get(const hl7_msg_t *m, long seg, unsigned field, unsigned rep, unsigned comp,
               unsigned sub, char *out, size_t cap, hl7_error_t *err)
{
    out[0] = '\0';
    if (seg < 0) return 0;
    int rc = hl7_get(m, (size_t)seg, field, rep, comp, sub, out, cap);
    if (rc == 0) return 0;
    unsigned seq = 1;
    for (long i = 0; i < seg; i++) {
        if (strcmp(hl7_segment_name(m, (size_t)i), hl7_segment_name(m, (size_t)seg)) == 0) seq++;
    }
    return hl7_fail(err, HL7_ERR_DATA_TYPE, hl7_segment_name(m, (size_t)seg), seq, field,
                    rc == -E2BIG ? "value longer than %zu bytes" : "malformed escape sequence",
                    cap - 1);
}

int hl7_time_ms(const char *dtm, const char *tz, int64_t *out)
{
    int v[6] = {0, 1, 1, 0, 0, 0};
    static const int width[6] = {4, 2, 2, 2, 2, 2};
    const char *p = dtm;
    int parts = 0;
    for (; parts < 6 && p[0] >= '0' && p[0] <= '9'; parts++) {
        int x = 0;
        for (int k = 0; k < width[parts]; k++) {
            if (p[k] < '0' || p[k] > '9') return HL7_ERR_DATA_TYPE;
            x = x * 10 + (p[k] - '0');
        }
        v[parts] = x;
        p += width[parts];
    }
    if (parts < 3) return HL7_ERR_DATA_TYPE; /* at least a date */
    int ms = 0;
    if (*p == '.') {
        if (parts < 6) return HL7_ERR_DATA_TYPE;
        p++;
        int k = 0;
        for (; p[0] >= '0' && p[0] <= '9'; p++, k++) {
            if (k < 3) ms = ms * 10 + (p[0] - '0');
        }
        if (k == 0 || k > 4) return HL7_ERR_DATA_TYPE;
        for (; k < 3; k++) ms *= 10;
    }
    bool has_offset = false;
    int offset_min = 0;
    if (*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1;
        if (!digits(p + 1, 4)) return HL7_ERR_DATA_TYPE;
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[3] - '0') * 10 + (p[4] - '0');
        if (hh > 14 || mm > 59) return HL7_ERR_DATA_TYPE;
        offset_min = sign * (hh * 60 + mm);
        has_offset = true;
        p += 5;
    }
    if (*p != '\0') return HL7_ERR_DATA_TYPE;
    if (v[1] < 1 || v[1] > 12 || v[2] < 1 || v[2] > 31 || v[3] > 23 || v[4] > 59 || v[5] > 59)
        return HL7_ERR_DATA_TYPE;
    struct tm tm = {.tm_year = v[0] - 1900,
                    .tm_mon = v[1] - 1,
                    .tm_mday = v[2],
                    .tm_hour = v[3],
                    .tm_min = v[4],
                    .tm_sec = v[5],
                    .tm_isdst = -1};
    time_t t;
    if (has_offset) {
        t = timegm(&tm) - (time_t)offset_min * 60;
    } else {
        /* mktime() reads the zone from TZ: set it for this call and put the old one back. */
        const char *old = getenv("TZ");
        char saved[128] = "";
        bool had = old != NULL;
        if (had) snprintf(saved, sizeof saved, "%s", old);
        setenv("TZ", tz, 1);
        tzset();
        t = mktime(&tm);
        if (had) {
            setenv("TZ", saved, 1);
        } else {
            unsetenv("TZ");
        }
        tzset();
    }
    if (t == (time_t)-1) return HL7_ERR_DATA_TYPE;
    *out = (int64_t)t * 1000 + ms;
    return 0;
}

/* The header rules every message goes through, whatever its type. */
static int check_header(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, char *type, char *trigger,
                        hl7_error_t *err)
{
    char v[64];
    int rc;
    const hl7_channel_t *ch = ctx->ch;
    if ((rc = get(m, 0, 3, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (ch->n_applications > 0 &&
        !in_list(v, (const char *const *)ch->applications, ch->n_applications)) {
        return hl7_fail(err, HL7_ERR_INTERNAL, "MSH", 1, 3,
                        "sending application not accepted on channel %s", ch->name);
    }
    if ((rc = get(m, 0, 4, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (ch->n_facilities > 0 &&
        !in_list(v, (const char *const *)ch->facilities, ch->n_facilities)) {
        return hl7_fail(err, HL7_ERR_INTERNAL, "MSH", 1, 4,
                        "sending facility not accepted on channel %s", ch->name);
    }
    if ((rc = get(m, 0, 10, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (v[0] == '\0')
        return hl7_fail(err, HL7_ERR_REQUIRED_MISSING, "MSH", 1, 10, "no message control id");
    if ((rc = get(m, 0, 12, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (strncmp(v, "2.", 2) != 0)
        return hl7_fail(err, HL7_ERR_UNSUPPORTED_VERSION, "MSH", 1, 12, "HL7 version 2.x only");
    if ((rc = get(m, 0, 11, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (strlen(v) != 1 || strchr(ch->processing_ids, v[0]) == NULL) {
        return hl7_fail(err, HL7_ERR_UNSUPPORTED_PROCESSING_ID, "MSH", 1, 11,
                        "processing id not accepted on this channel (accepted: %s)",
                        ch->processing_ids);
    }
    if ((rc = get(m, 0, 9, 0, 1, 1, type, 8, err)) != 0) return rc;
    if ((rc = get(m, 0, 9, 0, 2, 1, trigger, 8, err)) != 0) return rc;
    return 0;
}

/* The patient from PID: local id, INS when the identity is qualified, traits. */
static int map_patient(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, hl7_plan_t *p,
                       hl7_error_t *err)
{
    long pid = hl7_find(m, "PID", 0);
    if (pid < 0) return hl7_fail(err, HL7_ERR_REQUIRED_MISSING, "PID", 1, 0, "no PID segment");
    Relais__V1__PatientRef *pt = &p->patient;
    relais__v1__patient_ref__init(pt);
    char v[128], type[16], oid[64];
    int rc;
    /* PID-32 (PAM.fr): the identity's reliability; QUAL wins over the others. */
    unsigned n32 = hl7_repetitions(m, (size_t)pid, 32);
    pt->identity_status = RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__PROVISIONAL;
    for (unsigned r = 0; r < n32; r++) {
        if ((rc = get(m, pid, 32, r, 1, 1, v, sizeof v, err)) != 0) return rc;
        int s = 0;
        if (strcmp(v, "QUAL") == 0) s = RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__QUALIFIED;
        if (strcmp(v, "VALI") == 0) s = RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__VALIDATED;
        if (strcmp(v, "RECUP") == 0) s = RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__RECOVERED;
        if (s > (int)pt->identity_status) pt->identity_status = s;
    }
    /* PID-3: the IPP (type PI, else the first identifier that is not an INS) and the INS. */
    unsigned n3 = hl7_repetitions(m, (size_t)pid, 3);
    for (unsigned r = 0; r < n3; r++) {
        if ((rc = get(m, pid, 3, r, 1, 1, v, sizeof v, err)) != 0) return rc;
        if ((rc = get(m, pid, 3, r, 5, 1, type, sizeof type, err)) != 0) return rc;
        if ((rc = get(m, pid, 3, r, 4, 2, oid, sizeof oid, err)) != 0) return rc;
        if (strcmp(type, "INS") == 0 || in_list(oid, ins_oids, 2) ||
            in_list(oid, ins_test_oids, 2)) {
            if (in_list(oid, ins_test_oids, 2) && ctx->production) {
                return hl7_fail(err, HL7_ERR_TABLE_VALUE, "PID", 1, 3,
                                "INS from a test authority refused in a production territory");
            }
            if (!in_list(oid, ins_oids, 2) && !in_list(oid, ins_test_oids, 2)) {
                return hl7_fail(err, HL7_ERR_TABLE_VALUE, "PID", 1, 3,
                                "INS without a known assigning authority OID");
            }
            bool corsica = strlen(v) == 15 && (v[5] == 'A' || v[5] == 'B');
            if (!digits(v, 15) && !corsica)
                return hl7_fail(err, HL7_ERR_DATA_TYPE, "PID", 1, 3, "INS is not 15 characters");
            memcpy(p->ins, v, 16); /* 15 characters and the NUL, checked above */
            snprintf(p->ins_oid, sizeof p->ins_oid, "%s", oid);
        } else if (v[0] != '\0' && (p->local_id[0] == '\0' || strcmp(type, "PI") == 0)) {
            snprintf(p->local_id, sizeof p->local_id, "%s", v);
        }
    }
    if (p->local_id[0] == '\0')
        return hl7_fail(err, HL7_ERR_REQUIRED_MISSING, "PID", 1, 3, "no local patient id (PI)");
    pt->local_id = p->local_id;
    /* The INS travels only with a qualified identity (INS rules; PROTOCOL.md section 5). */
    if (p->ins[0] != '\0' &&
        pt->identity_status == RELAIS__V1__PATIENT_REF__IDENTITY_STATUS__QUALIFIED) {
        pt->ins_matricule = p->ins;
        pt->ins_oid = p->ins_oid;
    }
    /* PID-5: the birth name (type L) when there is one, else the first name given. */
    unsigned n5 = hl7_repetitions(m, (size_t)pid, 5), pick = 0;
    for (unsigned r = 0; r < n5; r++) {
        if ((rc = get(m, pid, 5, r, 7, 1, type, sizeof type, err)) != 0) return rc;
        if (strcmp(type, "L") == 0) {
            pick = r;
            break;
        }
    }
    if ((rc = get(m, pid, 5, pick, 1, 1, p->family, sizeof p->family, err)) != 0) return rc;
    if ((rc = get(m, pid, 5, pick, 2, 1, p->given[0], sizeof p->given[0], err)) != 0) return rc;
    if ((rc = get(m, pid, 5, pick, 3, 1, p->given[1], sizeof p->given[1], err)) != 0) return rc;
    pt->family_name = p->family;
    for (int i = 0; i < 2; i++) {
        if (p->given[i][0] != '\0') p->given_ptrs[pt->n_given_names++] = p->given[i];
    }
    pt->given_names = p->given_ptrs;
    if ((rc = get(m, pid, 7, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (v[0] != '\0') {
        bool ok = strlen(v) >= 8;
        for (int i = 0; ok && i < 8; i++) ok = v[i] >= '0' && v[i] <= '9';
        if (!ok) return hl7_fail(err, HL7_ERR_DATA_TYPE, "PID", 1, 7, "birth date is not YYYYMMDD");
        snprintf(p->birth, sizeof p->birth, "%.4s-%.2s-%.2s", v, v + 4, v + 6);
        pt->birth_date = p->birth;
    }
    if ((rc = get(m, pid, 8, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    pt->sex = strcmp(v, "F") == 0                   ? RELAIS__V1__PATIENT_REF__SEX__FEMALE
              : strcmp(v, "M") == 0                 ? RELAIS__V1__PATIENT_REF__SEX__MALE
              : v[0] != '\0' && strcmp(v, "U") != 0 ? RELAIS__V1__PATIENT_REF__SEX__OTHER
                                                    : RELAIS__V1__PATIENT_REF__SEX__SEX_UNSPECIFIED;
    return 0;
}

/* An XCN naming a professional: its RPPS number in rpps (12 bytes) or "". */
static int xcn_rpps(const hl7_msg_t *m, long seg, unsigned field, char rpps[12], hl7_error_t *err)
{
    char id[32], type[16], oid[64];
    int rc;
    rpps[0] = '\0';
    if ((rc = get(m, seg, field, 0, 1, 1, id, sizeof id, err)) != 0) return rc;
    if ((rc = get(m, seg, field, 0, 13, 1, type, sizeof type, err)) != 0) return rc;
    if ((rc = get(m, seg, field, 0, 9, 2, oid, sizeof oid, err)) != 0) return rc;
    bool rpps_kind =
        strcmp(type, "RPPS") == 0 || strcmp(type, "IDNPS") == 0 || strcmp(oid, RPPS_OID) == 0;
    if (!rpps_kind) return 0;
    /* The national PS identifier of an RPPS holder is "8" followed by the RPPS number. */
    const char *num = digits(id, 12) && id[0] == '8' ? id + 1 : id;
    if (digits(num, 11)) memcpy(rpps, num, 12);
    return 0;
}

static void add_rcpt(hl7_plan_t *p, size_t *n, const char *addr)
{
    if (*n == HL7_RCPT_MAX) return;
    snprintf(p->to_buf[*n], RELAIS_ADDRESS_MAX, "%s", addr);
    p->to[*n] = p->to_buf[*n];
    (*n)++;
}

/*
 * Whom to notify: the agents acting for the GP (the practice's assistants), else the GP;
 * a GP that is missing, not an RPPS holder or not in the directory routes to the
 * coordinator, with the reason. Returns the recipients' count (0: coordinator).
 */
static int resolve_gp(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, hl7_plan_t *p, size_t *n_to,
                      hl7_error_t *err)
{
    char rpps[12] = "", role[16];
    const char *where = NULL;
    int rc;
    bool seen_gp = false;
    /* ROL with role ODRP (médecin traitant) first, then PP (primary care provider). */
    static const char *const roles[] = {"ODRP", "PP"};
    for (int k = 0; k < 2 && rpps[0] == '\0'; k++) {
        for (long s = hl7_find(m, "ROL", 0); s >= 0; s = hl7_find(m, "ROL", (size_t)s + 1)) {
            if ((rc = get(m, s, 3, 0, 1, 1, role, sizeof role, err)) != 0) return rc;
            if (strcmp(role, roles[k]) != 0) continue;
            seen_gp = true;
            if ((rc = xcn_rpps(m, s, 4, rpps, err)) != 0) return rc;
            if (rpps[0] != '\0') {
                where = k == 0 ? "ROL ODRP" : "ROL PP";
                break;
            }
        }
    }
    long pd1 = hl7_find(m, "PD1", 0);
    if (rpps[0] == '\0' && pd1 >= 0) {
        char any[8];
        if ((rc = get(m, pd1, 4, 0, 1, 1, any, sizeof any, err)) != 0 && rc != HL7_ERR_DATA_TYPE)
            return rc;
        if (any[0] != '\0') seen_gp = true;
        if ((rc = xcn_rpps(m, pd1, 4, rpps, err)) != 0) return rc;
        if (rpps[0] != '\0') where = "PD1-4";
    }
    *n_to = 0;
    if (rpps[0] == '\0') {
        snprintf(p->route_reason, sizeof p->route_reason, "%s",
                 seen_gp ? "the GP given has no RPPS number"
                         : "no GP in the message (ROL ODRP or PP, PD1-4)");
        return 0;
    }
    snprintf(p->gp, sizeof p->gp, "rpps:%s", rpps);
    const dir_agent_t *gp = directory_lookup(ctx->dir, p->gp);
    if (gp == NULL) {
        snprintf(p->route_reason, sizeof p->route_reason,
                 "GP rpps:%.11s (from %s) is not in the territory directory", rpps, where);
        return 0;
    }
    size_t na = directory_agent_count(ctx->dir);
    for (size_t i = 0; i < na; i++) {
        const dir_agent_t *a = directory_agent_at(ctx->dir, i);
        if (a != gp && directory_may_act_for(ctx->dir, a, p->gp)) add_rcpt(p, n_to, a->address);
    }
    p->route = "practice";
    if (*n_to == 0) {
        add_rcpt(p, n_to, p->gp);
        p->route = "gp";
    }
    p->care_team[0] = p->gp;
    return 0;
}

/* The movement's time: PV1-first (45 for a discharge, 44 for an admission), else ZBE-2
 * (PAM.fr movement time), else EVN-6 (event occurred). */
static int movement_time(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, unsigned first, int64_t *out,
                         hl7_error_t *err)
{
    const struct {
        const char *seg;
        unsigned field;
    } from[] = {{"PV1", first}, {"ZBE", 2}, {"EVN", 6}};
    char v[64];
    for (size_t i = 0; i < 3; i++) {
        int rc = get(m, hl7_find(m, from[i].seg, 0), from[i].field, 0, 1, 1, v, sizeof v, err);
        if (rc != 0) return rc;
        if (v[0] == '\0') continue;
        if (hl7_time_ms(v, ctx->ch->timezone, out) != 0)
            return hl7_fail(err, HL7_ERR_DATA_TYPE, from[i].seg, 1, from[i].field,
                            "not an HL7 date and time");
        return 0;
    }
    return hl7_fail(err, HL7_ERR_REQUIRED_MISSING, "PV1", 1, first,
                    "no %s time (PV1-%u, ZBE-2 or EVN-6)", first == 45 ? "discharge" : "admission",
                    first);
}

/* The programme the first diagnosis matching the channel's table selects (longest prefix). */
static int pick_programme(const hl7_map_ctx_t *ctx, const hl7_msg_t *m,
                          const relais_ref_programme_t **out, hl7_error_t *err)
{
    *out = NULL;
    const relais_ref_programmes_t *progs =
        ctx->programmes != NULL ? ctx->programmes : relais_ref_programmes_default();
    for (long s = hl7_find(m, "DG1", 0); s >= 0; s = hl7_find(m, "DG1", (size_t)s + 1)) {
        char code[32], norm[32];
        int rc = get(m, s, 3, 0, 1, 1, code, sizeof code, err);
        if (rc != 0) return rc;
        size_t o = 0;
        for (const char *c = code; *c; c++) {
            if (*c != '.') norm[o++] = *c;
        }
        norm[o] = '\0';
        const hl7_code_map_t *best = NULL;
        for (size_t i = 0; i < ctx->ch->n_diagnoses; i++) {
            const hl7_code_map_t *e = &ctx->ch->diagnoses[i];
            size_t n = strlen(e->code);
            if (strncmp(norm, e->code, n) == 0 && (best == NULL || n > strlen(best->code)))
                best = e;
        }
        if (best != NULL) {
            *out = relais_ref_programme_find(progs, best->value);
            return 0;
        }
    }
    return 0;
}

static void to_coordinator(const hl7_map_ctx_t *ctx, hl7_plan_t *p, size_t *n_to)
{
    snprintf(p->coord_buf, sizeof p->coord_buf, "%s", ctx->coordinator);
    p->coord[0] = p->coord_buf;
    add_rcpt(p, n_to, ctx->coordinator);
    p->route = "coordinator";
}

static void add_escalation(hl7_plan_t *p, const char *original_body)
{
    Relais__V1__Escalation *e = &p->esc;
    relais__v1__escalation__init(e);
    snprintf(p->reason, sizeof p->reason, "relais-hl7 could not route to the GP: %s",
             p->route_reason);
    e->reason = p->reason;
    e->original_body = (char *)original_body;
    e->responsible = p->gp;
    Relais__V1__Envelope *env = &p->env[p->n++];
    relais__v1__envelope__init(env);
    env->n_to = 1;
    env->to = p->coord;
    env->body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    env->escalation = e;
}

/* What every movement starts with: the patient (map_patient), then the identifier the
 * answers will name, field `field` of the first `seg` segment, into p->encounter. Both are
 * required; *at is that segment's index. */
static int patient_and_encounter(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, hl7_plan_t *p,
                                 const char *seg, unsigned field, const char *what, long *at,
                                 hl7_error_t *err)
{
    int rc = map_patient(ctx, m, p, err);
    if (rc != 0) return rc;
    if ((*at = hl7_find(m, seg, 0)) < 0)
        return hl7_fail(err, HL7_ERR_REQUIRED_MISSING, seg, 1, 0, "no %s segment", seg);
    if ((rc = get(m, *at, field, 0, 1, 1, p->encounter, sizeof p->encounter, err)) != 0) return rc;
    if (p->encounter[0] == '\0')
        return hl7_fail(err, HL7_ERR_REQUIRED_MISSING, seg, 1, field, "%s", what);
    return 0;
}

static int map_discharge(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, bool cancel, hl7_plan_t *p,
                         hl7_error_t *err)
{
    long pv1;
    int rc = patient_and_encounter(ctx, m, p, "PV1", 19, "no visit number", &pv1, err);
    if (rc != 0) return rc;
    size_t n_to = 0;
    if ((rc = resolve_gp(ctx, m, p, &n_to, err)) != 0) return rc;
    if (n_to == 0) to_coordinator(ctx, p, &n_to);
    snprintf(p->facility, sizeof p->facility, "%s", ctx->ch->address);

    Relais__V1__Envelope *env = &p->env[p->n++];
    relais__v1__envelope__init(env);
    env->n_to = n_to;
    env->to = p->to;
    if (cancel) {
        p->kind = "discharge-cancel";
        relais__v1__discharge_cancelled__init(&p->cancel);
        p->cancel.encounter_id = p->encounter;
        p->cancel.reason = "discharge cancelled by the hospital (ADT^A13)";
        env->body_case = RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED;
        env->discharge_cancelled = &p->cancel;
    } else {
        p->kind = "discharge";
        int64_t at;
        if ((rc = movement_time(ctx, m, 45, &at, err)) != 0) return rc;
        const relais_ref_programme_t *prog;
        if ((rc = pick_programme(ctx, m, &prog, err)) != 0) return rc;
        Relais__V1__DischargeNotification *dn = &p->d.dn;
        if (prog != NULL) {
            relais_ref_programme_build(prog, at, &p->d);
        } else {
            relais__v1__discharge_notification__init(dn);
            dn->discharged_at_ms = at;
        }
        char v[64];
        if ((rc = get(m, pv1, 44, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
        int64_t adm;
        if (v[0] != '\0' && hl7_time_ms(v, ctx->ch->timezone, &adm) == 0) dn->admitted_at_ms = adm;
        if ((rc = get(m, pv1, 36, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
        for (size_t i = 0; i < ctx->ch->n_dispositions; i++) {
            if (strcmp(v, ctx->ch->dispositions[i].code) == 0)
                dn->disposition = ctx->ch->dispositions[i].disposition;
        }
        dn->encounter_id = p->encounter;
        dn->patient = &p->patient;
        dn->facility = p->facility;
        if (p->care_team[0] != NULL) {
            dn->n_care_team = 1;
            dn->care_team = p->care_team;
        }
        env->body_case = RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION;
        env->discharge_notification = dn;
    }
    if (strcmp(p->route, "coordinator") == 0)
        add_escalation(p, cancel ? "discharge_cancelled" : "discharge_notification");
    return 0;
}

/* ADT^A01: the admission, as the AdmissionNotice the GP's practice would get from a
 * facility it asked for a preadmission (PV1-5, the preadmit number, as its request id). */
static int map_admission(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, hl7_plan_t *p,
                         hl7_error_t *err)
{
    long pv1;
    int rc = patient_and_encounter(ctx, m, p, "PV1", 19, "no visit number", &pv1, err);
    if (rc != 0) return rc;
    if ((rc = get(m, pv1, 5, 0, 1, 1, p->programme, sizeof p->programme, err)) != 0) return rc;
    int64_t at;
    if ((rc = movement_time(ctx, m, 44, &at, err)) != 0) return rc;
    size_t n_to = 0;
    if ((rc = resolve_gp(ctx, m, p, &n_to, err)) != 0) return rc;
    if (n_to == 0) to_coordinator(ctx, p, &n_to);
    snprintf(p->facility, sizeof p->facility, "%s", ctx->ch->address);
    p->kind = "admission";
    Relais__V1__AdmissionNotice *a = &p->admission;
    relais__v1__admission_notice__init(a);
    a->request_id = p->programme; /* the preadmit number, "" when none */
    a->patient = &p->patient;
    a->facility = p->facility;
    a->encounter_id = p->encounter;
    a->admitted_at_ms = at;
    Relais__V1__Envelope *env = &p->env[p->n++];
    relais__v1__envelope__init(env);
    env->n_to = n_to;
    env->to = p->to;
    env->body_case = RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE;
    env->admission_notice = a;
    if (strcmp(p->route, "coordinator") == 0) add_escalation(p, "admission_notice");
    return 0;
}

/* ADT^A05 / A38: a pre-admission granted, or cancelled, as the facility's answer to the
 * practice that asked for it (PreadmissionDecision; PV1-5, the preadmit number, as the
 * request id). */
static int map_preadmission(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, bool cancel,
                            hl7_plan_t *p, hl7_error_t *err)
{
    long pv1;
    int rc = patient_and_encounter(ctx, m, p, "PV1", 5, "no preadmit number", &pv1, err);
    if (rc != 0) return rc;
    Relais__V1__PreadmissionDecision *d = &p->decision;
    relais__v1__preadmission_decision__init(d);
    d->request_id = p->encounter;
    if (cancel) {
        d->decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__REFUSED;
        d->reason = "pre-admission cancelled by the hospital (ADT^A38)";
    } else {
        d->decision = RELAIS__V1__PREADMISSION_DECISION__DECISION__ACCEPTED;
        /* The expected admission: PV2-8, else PV1-44. */
        char v[64];
        long pv2 = hl7_find(m, "PV2", 0);
        if ((rc = get(m, pv2, 8, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
        if (v[0] == '\0' && (rc = get(m, pv1, 44, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
        int64_t at;
        if (v[0] != '\0' && hl7_time_ms(v, ctx->ch->timezone, &at) != 0)
            return hl7_fail(err, HL7_ERR_DATA_TYPE, pv2 >= 0 ? "PV2" : "PV1", 1, pv2 >= 0 ? 8 : 44,
                            "not an HL7 date and time");
        if (v[0] != '\0') d->admission_date_ms = at;
    }
    size_t n_to = 0;
    if ((rc = resolve_gp(ctx, m, p, &n_to, err)) != 0) return rc;
    if (n_to == 0) to_coordinator(ctx, p, &n_to);
    p->kind = cancel ? "preadmission-cancel" : "preadmission";
    Relais__V1__Envelope *env = &p->env[p->n++];
    relais__v1__envelope__init(env);
    env->n_to = n_to;
    env->to = p->to;
    env->body_case = RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION;
    env->preadmission_decision = d;
    if (strcmp(p->route, "coordinator") == 0) add_escalation(p, "preadmission_decision");
    return 0;
}

/* Where a referral goes: the referred-to provider (PRD with PRD-1 RT) when it has an RPPS
 * the directory knows, else the specialists' pool of the specialty RF1-3 names through the
 * channel's table, else the coordinator. */
static int referral_target(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, long rf1, hl7_plan_t *p,
                           char *specialty, size_t spec_cap, hl7_error_t *err)
{
    char v[64], type[16];
    int rc;
    for (long s = hl7_find(m, "PRD", 0); s >= 0; s = hl7_find(m, "PRD", (size_t)s + 1)) {
        if ((rc = get(m, s, 1, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
        if (strcmp(v, "RT") != 0) continue;
        unsigned reps = hl7_repetitions(m, (size_t)s, 7);
        for (unsigned r = 0; r < reps; r++) {
            if ((rc = get(m, s, 7, r, 1, 1, v, sizeof v, err)) != 0) return rc;
            if ((rc = get(m, s, 7, r, 2, 1, type, sizeof type, err)) != 0) return rc;
            if (strcmp(type, "RPPS") != 0 || !digits(v, 11)) continue;
            char addr[RELAIS_ADDRESS_MAX];
            snprintf(addr, sizeof addr, "rpps:%s", v);
            const dir_agent_t *a = directory_lookup(ctx->dir, addr);
            if (a != NULL) {
                snprintf(specialty, spec_cap, "%s", a->specialty);
                snprintf(p->to_buf[0], RELAIS_ADDRESS_MAX, "%s", addr);
                p->route = "specialist";
                return 1;
            }
            snprintf(p->route_reason, sizeof p->route_reason,
                     "referred-to specialist rpps:%.11s is not in the territory directory", v);
        }
    }
    if ((rc = get(m, rf1, 3, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    for (size_t i = 0; i < ctx->ch->n_specialties; i++) {
        if (strcmp(v, ctx->ch->specialties[i].code) != 0) continue;
        snprintf(specialty, spec_cap, "%s", ctx->ch->specialties[i].value);
        snprintf(p->to_buf[0], RELAIS_ADDRESS_MAX, "service:specialist/%s@%s", specialty,
                 directory_territory(ctx->dir));
        if (directory_pool_members(ctx->dir, p->to_buf[0], NULL, NULL) > 0) {
            p->route = "pool";
            return 1;
        }
        snprintf(p->route_reason, sizeof p->route_reason, "no specialist of '%s' in the territory",
                 specialty);
        return 0;
    }
    if (p->route_reason[0] == '\0')
        snprintf(p->route_reason, sizeof p->route_reason, "%s",
                 "no referred-to specialist (PRD RT with an RPPS) and RF1-3 not in the channel's "
                 "specialties");
    return 0;
}

/* REF^I12: a referral, as the AppointmentRequest a practice would send. */
static int map_referral(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, hl7_plan_t *p,
                        hl7_error_t *err)
{
    /* RF1-6, the originating referral id, is the request id answers will name. */
    long rf1;
    int rc = patient_and_encounter(ctx, m, p, "RF1", 6, "no referral identifier", &rf1, err);
    if (rc != 0) return rc;
    Relais__V1__AppointmentRequest *r = &p->referral;
    relais__v1__appointment_request__init(r);
    r->request_id = p->encounter;
    r->patient = &p->patient;
    r->requested_role = "specialist";
    char v[64];
    if ((rc = get(m, rf1, 2, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    r->urgency = strcmp(v, "S") == 0   ? RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__URGENT
                 : strcmp(v, "A") == 0 ? RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__SOON
                                       : RELAIS__V1__APPOINTMENT_REQUEST__URGENCY__ROUTINE;
    relais__v1__time_window__init(&p->window);
    int64_t t;
    if ((rc = get(m, rf1, 7, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (v[0] != '\0' && hl7_time_ms(v, ctx->ch->timezone, &t) == 0) p->window.not_before_ms = t;
    if ((rc = get(m, rf1, 8, 0, 1, 1, v, sizeof v, err)) != 0) return rc;
    if (v[0] != '\0' && hl7_time_ms(v, ctx->ch->timezone, &t) == 0) p->window.due_by_ms = t;
    if (p->window.not_before_ms != 0 || p->window.due_by_ms != 0) r->window = &p->window;
    /* RF1-10, the referral reason: its text, else its code. */
    if ((rc = get(m, rf1, 10, 0, 2, 1, p->reason, sizeof p->reason, err)) != 0) return rc;
    if (p->reason[0] == '\0' &&
        (rc = get(m, rf1, 10, 0, 1, 1, p->reason, sizeof p->reason, err)) != 0)
        return rc;
    r->reason = p->reason;
    rc = referral_target(ctx, m, rf1, p, p->programme, sizeof p->programme, err);
    if (rc < 0 || rc > 1) return rc;
    size_t n_to = 0;
    if (rc == 1) {
        p->to[0] = p->to_buf[0];
        n_to = 1;
    } else {
        to_coordinator(ctx, p, &n_to);
    }
    r->specialty = p->programme;
    p->kind = "referral";
    Relais__V1__Envelope *env = &p->env[p->n++];
    relais__v1__envelope__init(env);
    env->n_to = n_to;
    env->to = p->to;
    env->body_case = RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST;
    env->appointment_request = r;
    if (strcmp(p->route, "coordinator") == 0) add_escalation(p, "appointment_request");
    return 0;
}

int hl7_map(const hl7_map_ctx_t *ctx, const hl7_msg_t *m, hl7_plan_t *plan, hl7_error_t *err)
{
    memset(plan, 0, sizeof *plan);
    plan->route = "none";
    char type[8], trigger[8];
    int rc = check_header(ctx, m, type, trigger, err);
    if (rc != 0) return rc;
    /* What the message is comes from MSH-9 alone: EVN-1 and SCH-6 are filled loosely. */
    if (strcmp(type, "REF") == 0) {
        if (strcmp(trigger, "I12") == 0) return map_referral(ctx, m, plan, err);
        return hl7_fail(err, HL7_ERR_UNSUPPORTED_EVENT, "MSH", 1, 9, "trigger event not supported");
    }
    if (strcmp(type, "ADT") != 0)
        return hl7_fail(err, HL7_ERR_UNSUPPORTED_TYPE, "MSH", 1, 9, "message type not supported");
    if (strcmp(trigger, "A03") == 0) return map_discharge(ctx, m, false, plan, err);
    if (strcmp(trigger, "A13") == 0) return map_discharge(ctx, m, true, plan, err);
    if (strcmp(trigger, "A01") == 0) return map_admission(ctx, m, plan, err);
    if (strcmp(trigger, "A05") == 0) return map_preadmission(ctx, m, false, plan, err);
    if (strcmp(trigger, "A38") == 0) return map_preadmission(ctx, m, true, plan, err);
    return hl7_fail(err, HL7_ERR_UNSUPPORTED_EVENT, "MSH", 1, 9, "trigger event not supported");
}

void hl7_plan_set_ids(hl7_plan_t *plan, const uint8_t ids[][RELAIS_MESSAGE_ID_LEN])
{
    for (size_t i = 0; i < plan->n; i++) {
        memcpy(plan->ids[i], ids[i], RELAIS_MESSAGE_ID_LEN);
        Relais__V1__Envelope *env = &plan->env[i];
        env->message_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, plan->ids[i]};
        env->conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, plan->ids[0]};
    }
    if (plan->n > 1) {
        plan->esc.conversation_id = plan->env[0].conversation_id;
        plan->esc.original_message_id = plan->env[0].message_id;
    }
}
