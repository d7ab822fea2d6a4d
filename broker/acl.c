/*
 * The authorisation rules of PROTOCOL.md section 6 and their evaluation (acl.h).
 *
 * The defaults are one table, row for row the table of the protocol, so that reviewing it
 * against the document is a matter of reading both side by side. A territory's override
 * replaces whichever half (senders, recipients) it names. Evaluation resolves each address
 * once against the directory and then asks the rule; the reason strings are built only on
 * the refusal path.
 */
#include "acl.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "relais/codec.h"
#include "relais/errors.h"

#define R(role) (1u << DIR_ROLE_##role)
#define ROLES(mask)                                                                                \
    {                                                                                              \
        .roles = (mask)                                                                            \
    }
#define ANYONE                                                                                     \
    {                                                                                              \
        .any = true                                                                                \
    }
#define PARTICIPANTS                                                                               \
    {                                                                                              \
        .participants = true                                                                       \
    }

typedef struct default_rule {
    int body_case;
    acl_rule_t rule;
} default_rule_t;

static const default_rule_t defaults[] = {
    /* Requests open a conversation: prescribers and coordinators to care providers. */
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_REQUEST,
     {ROLES(R(GP) | R(MEDICAL_ASSISTANT) | R(SPECIALIST) | R(HOSPITAL) | R(COORDINATOR)),
      ROLES(R(NURSE) | R(PHYSIOTHERAPIST) | R(SPECIALIST) | R(GP))}},
    {RELAIS__V1__ENVELOPE__BODY_CARE_TASK_REQUEST,
     {ROLES(R(GP) | R(MEDICAL_ASSISTANT) | R(SPECIALIST) | R(HOSPITAL) | R(COORDINATOR)),
      ROLES(R(NURSE) | R(PHYSIOTHERAPIST) | R(SPECIALIST) | R(GP))}},
    /* Answers exist only inside a conversation the sender was delivered into. */
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OFFER, {PARTICIPANTS, PARTICIPANTS}},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_DECLINE, {PARTICIPANTS, PARTICIPANTS}},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM, {PARTICIPANTS, PARTICIPANTS}},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_OUTCOME, {PARTICIPANTS, PARTICIPANTS}},
    {RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE, {PARTICIPANTS, PARTICIPANTS}},
    /* Establishments inform anyone of the territory of a stay. */
    {RELAIS__V1__ENVELOPE__BODY_DISCHARGE_NOTIFICATION, {ROLES(R(HOSPITAL) | R(FACILITY)), ANYONE}},
    {RELAIS__V1__ENVELOPE__BODY_DISCHARGE_CANCELLED, {ROLES(R(HOSPITAL) | R(FACILITY)), ANYONE}},
    {RELAIS__V1__ENVELOPE__BODY_ADMISSION_NOTICE, {ROLES(R(HOSPITAL) | R(FACILITY)), ANYONE}},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_DECISION, {ROLES(R(HOSPITAL) | R(FACILITY)), ANYONE}},
    /* Preadmissions go from who refers a patient to establishments. */
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_REQUEST,
     {ROLES(R(HOSPITAL) | R(GP) | R(MEDICAL_ASSISTANT)), ROLES(R(FACILITY) | R(HOSPITAL))}},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CHOICE,
     {ROLES(R(HOSPITAL) | R(GP) | R(MEDICAL_ASSISTANT)), ROLES(R(FACILITY) | R(HOSPITAL))}},
    {RELAIS__V1__ENVELOPE__BODY_PREADMISSION_CANCEL,
     {ROLES(R(HOSPITAL) | R(GP) | R(MEDICAL_ASSISTANT)), ROLES(R(FACILITY) | R(HOSPITAL))}},
    /* Anyone may raise a missed deadline, to the CPTS coordination. */
    {RELAIS__V1__ENVELOPE__BODY_ESCALATION, {ANYONE, ROLES(R(COORDINATOR))}},
    /* Exchanges within a conversation, from either side. */
    {RELAIS__V1__ENVELOPE__BODY_NOTE, {PARTICIPANTS, PARTICIPANTS}},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CANCEL, {PARTICIPANTS, PARTICIPANTS}},
    {RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_BOOK, {PARTICIPANTS, PARTICIPANTS}},
};

int acl_rule(const directory_t *dir, int body_case, acl_rule_t *out)
{
    const default_rule_t *def = NULL;
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (defaults[i].body_case == body_case) def = &defaults[i];
    if (def == NULL) return RELAIS_EINVALID;
    *out = def->rule;
    const dir_acl_override_t *o = dir != NULL ? directory_acl_override(dir, body_case) : NULL;
    if (o != NULL && o->has_senders) out->senders = o->senders;
    if (o != NULL && o->has_recipients) out->recipients = o->recipients;
    return 0;
}

/* Appends to buf at *at, never past len; the result stays NUL-terminated. */
__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t len, size_t *at,
                                                         const char *fmt, ...)
{
    if (*at >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *at, len - *at, fmt, ap);
    va_end(ap);
    if (n > 0) *at += (size_t)n;
}

const char *acl_set_format(const dir_acl_set_t *set, bool recipients, char *buf, size_t len)
{
    size_t at = 0;
    if (len == 0) return buf;
    buf[0] = '\0';
    if (set->any) {
        append(buf, len, &at, "anyone in the directory");
        return buf;
    }
    if (set->participants) append(buf, len, &at, "participants of the conversation");
    bool first = !set->participants;
    for (int r = 0; r < DIR_ROLE_COUNT; r++) {
        if (!(set->roles & (1u << r))) continue;
        append(buf, len, &at, "%s%s", first ? "" : ", ", dir_role_name((dir_role_t)r));
        first = false;
    }
    if (recipients && set->roles != 0) append(buf, len, &at, " and their pools");
    if (at == 0) append(buf, len, &at, "nobody");
    return buf;
}

__attribute__((format(printf, 4, 5))) static int refuse(int code, char *reason, size_t reason_len,
                                                        const char *fmt, ...)
{
    if (reason != NULL && reason_len > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(reason, reason_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* What one recipient address is: an agent, or a pool of this territory (role known). */
typedef struct target {
    const dir_agent_t *agent;
    bool pool;
    dir_role_t role;
} target_t;

/* Resolves address against the directory, or explains why it is unknown. */
static int resolve(const directory_t *dir, const char *address, target_t *t, char *reason,
                   size_t reason_len)
{
    memset(t, 0, sizeof *t);
    t->agent = directory_lookup(dir, address);
    if (t->agent != NULL) {
        t->role = t->agent->role;
        return 0;
    }
    const char *territory = directory_territory(dir);
    relais_address_t a;
    char why[RELAIS_REASON_MAX];
    if (relais_address_parse(address, &a, why, sizeof why) != 0)
        return refuse(RELAIS_EUNKNOWNRCPT, reason, reason_len, "recipient %s: %s", address, why);
    if (a.kind != RELAIS_ADDR_SERVICE)
        return refuse(RELAIS_EUNKNOWNRCPT, reason, reason_len,
                      "recipient %s: not in the directory of %s", address, territory);
    if (strcmp(a.territory, territory) != 0)
        return refuse(RELAIS_EUNKNOWNRCPT, reason, reason_len,
                      "recipient %s: territory %s is not this broker's (%s); federation is not "
                      "supported",
                      address, a.territory, territory);
    /* A pool exists through its members, whose role the directory checked is the pool's. */
    if (directory_pool_members(dir, address, NULL, NULL) == 0 ||
        dir_role_from_name(a.role, &t->role) != 0)
        return refuse(RELAIS_EUNKNOWNRCPT, reason, reason_len,
                      "recipient %s: no agent of the directory of %s belongs to this pool", address,
                      territory);
    t->pool = true;
    return 0;
}

static bool participates(const acl_request_t *r, const char *address)
{
    return r->is_participant != NULL && r->is_participant(r->ud, address);
}

static bool has_role(const dir_acl_set_t *set, dir_role_t role)
{
    return (set->roles & (1u << role)) != 0;
}

static int check_sender(const acl_request_t *r, const acl_rule_t *rule, const char *body,
                        bool acting, char *reason, size_t reason_len)
{
    const dir_acl_set_t *s = &rule->senders;
    const dir_agent_t *who = r->sender;
    if (s->any || has_role(s, who->role)) return 0;
    if (s->participants &&
        (participates(r, who->address) || (acting && participates(r, r->on_behalf_of))))
        return 0;
    const char *territory = directory_territory(r->dir);
    if (!s->participants && s->roles == 0)
        return refuse(RELAIS_EFORBIDDEN, reason, reason_len, "rule %s: nobody may send it in %s",
                      body, territory);
    const char *outside = r->is_participant == NULL ? "the message is in no conversation"
                                                    : "was not delivered into this conversation";
    if (s->roles == 0) {
        if (r->is_participant == NULL)
            return refuse(RELAIS_EFORBIDDEN, reason, reason_len, "rule %s: reply-only — %s", body,
                          outside);
        return refuse(RELAIS_EFORBIDDEN, reason, reason_len, "rule %s: reply-only — %s %s%s%s",
                      body, who->address, outside, acting ? ", nor was " : "",
                      acting ? r->on_behalf_of : "");
    }
    char set[192];
    acl_set_format(s, false, set, sizeof set);
    return refuse(RELAIS_EFORBIDDEN, reason, reason_len, "rule %s: senders are %s; %s is a %s%s%s",
                  body, set, who->address, dir_role_name(who->role), s->participants ? " and " : "",
                  s->participants ? outside : "");
}

static int check_recipient(const acl_request_t *r, const acl_rule_t *rule, const char *body,
                           const char *address, const target_t *t, char *reason, size_t reason_len)
{
    const dir_acl_set_t *s = &rule->recipients;
    if (s->any || has_role(s, t->role)) return 0;
    if (s->participants && participates(r, address)) return 0;
    const char *territory = directory_territory(r->dir);
    if (!s->participants && s->roles == 0)
        return refuse(RELAIS_EFORBIDDEN, reason, reason_len, "rule %s: nobody may receive it in %s",
                      body, territory);
    if (s->roles == 0)
        return refuse(RELAIS_EFORBIDDEN, reason, reason_len,
                      "rule %s: reply-only — recipient %s is not a participant of this "
                      "conversation",
                      body, address);
    char set[192];
    acl_set_format(s, true, set, sizeof set);
    return refuse(RELAIS_EFORBIDDEN, reason, reason_len,
                  "rule %s: recipients are %s; %s is a %s%s%s", body, set, address,
                  t->pool ? "pool of " : "", dir_role_name(t->role),
                  s->participants ? " and not a participant" : "");
}

int acl_check(const acl_request_t *r, char *reason, size_t reason_len)
{
    const char *body = relais_body_name(r->body_case);
    acl_rule_t rule;
    if (reason != NULL && reason_len > 0) reason[0] = '\0';
    if (acl_rule(r->dir, r->body_case, &rule) != 0)
        return refuse(RELAIS_EFORBIDDEN, reason, reason_len,
                      "rule %s: no authorisation rule for this body type", body);
    if (r->sender == NULL)
        return refuse(RELAIS_EFORBIDDEN, reason, reason_len,
                      "rule %s: the sender is not in the directory of %s", body,
                      directory_territory(r->dir));
    bool acting = r->on_behalf_of != NULL && r->on_behalf_of[0] != '\0' &&
                  strcmp(r->on_behalf_of, r->sender->address) != 0;
    if (acting && !directory_may_act_for(r->dir, r->sender, r->on_behalf_of))
        return refuse(RELAIS_EFORBIDDEN, reason, reason_len,
                      "rule on_behalf_of: %s may not act for %s (not in its acts_for)",
                      r->sender->address, r->on_behalf_of);
    if (r->n_to == 0) return refuse(RELAIS_EINVALID, reason, reason_len, "no recipient");
    int rc = check_sender(r, &rule, body, acting, reason, reason_len);
    if (rc) return rc;

    /*
     * Every recipient must exist before any is judged: a typo is not a permission problem.
     * Resolving twice costs a map look-up each and spares a second array of up to 64.
     */
    target_t t;
    for (size_t i = 0; i < r->n_to; i++)
        if ((rc = resolve(r->dir, r->to[i], &t, reason, reason_len))) return rc;
    for (size_t i = 0; i < r->n_to; i++) {
        resolve(r->dir, r->to[i], &t, NULL, 0);
        if ((rc = check_recipient(r, &rule, body, r->to[i], &t, reason, reason_len))) return rc;
    }
    return 0;
}
