/*
 * The CPTS coordinator role: where missed deadlines end up. The SDK of an agent that waited
 * too long sends an Escalation (a new thread to the coordinator's address); this role
 * reports it to its observer, reassigns, and acknowledges it PROCESSED.
 *
 * Reassigning is deliberately small: the coordinator keeps a configured list of candidates
 * (and groups of interchangeable ones) and names one in a Note to the agent that escalated,
 * or says that it has no one else. It never names the responsible nor anyone the
 * escalation says already had the request; it prefers professionals who answer (one left
 * silent until a deadline is passed over for a day) and, among those, the one named least
 * recently, so that reassignments spread over the group instead of following a blind
 * round robin. The Note is a reply in the
 * Escalation's own conversation, the one the broker knows both parties take part in (the
 * coordinator was never a participant of the escalated conversation itself); its text
 * names the escalated conversation. Whoever escalated decides what to do with the advice;
 * nothing here sends a request on its behalf.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref_internal.h"

/* A professional named as silent in an escalation is passed over for this long (business
 * time) when another one can take the request: likely away, or not reading. */
#define QUIET_MS (24 * 3600 * 1000LL)

/* A list of addresses, with what the coordinator learnt of each. */
typedef struct clist {
    char **a;
    size_t n;
    int64_t *quiet_until; /* business time until which a[i] counts as silent */
    uint64_t *given;      /* when a[i] was last named (a counter: 0 = never) */
} clist_t;

struct relais_ref_coordinator {
    relais_agent_t *agent;
    ref__emitter_t em;
    relais_ref_escalation_fn on_escalation;
    clist_t candidates;
    clist_t *groups;
    size_t n_groups;
    uint64_t picks; /* the counter behind clist_t.given */
};

static bool in_tried(const Relais__V1__Escalation *esc, const char *addr)
{
    for (size_t i = 0; i < esc->n_tried; i++) {
        if (esc->tried[i] != NULL && strcmp(esc->tried[i], addr) == 0) return true;
    }
    return false;
}

/*
 * The best address of l for this escalation, or NULL: never the responsible nor anyone who
 * already had the request; among the others, one not recently silent before one who was,
 * then the one named least recently (so that reassignments spread over the group).
 */
static const char *pick_in(relais_ref_coordinator_t *c, clist_t *l,
                           const Relais__V1__Escalation *esc, const char *responsible,
                           int64_t now)
{
    size_t best = l->n;
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->a[i], responsible) == 0 || in_tried(esc, l->a[i])) continue;
        if (best == l->n) {
            best = i;
            continue;
        }
        bool quiet_i = l->quiet_until[i] > now, quiet_b = l->quiet_until[best] > now;
        if (quiet_i != quiet_b ? !quiet_i : l->given[i] < l->given[best]) best = i;
    }
    if (best == l->n) return NULL;
    l->given[best] = ++c->picks;
    return l->a[best];
}

static bool in_list(const clist_t *l, const char *addr)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->a[i], addr) == 0) return true;
    }
    return false;
}

/* Remembers that addr let a request wait until its deadline, in every list it is in. */
static void mark_quiet(relais_ref_coordinator_t *c, const char *addr, int64_t now)
{
    for (size_t g = 0; g <= c->n_groups; g++) {
        clist_t *l = g < c->n_groups ? &c->groups[g] : &c->candidates;
        for (size_t i = 0; i < l->n; i++) {
            if (strcmp(l->a[i], addr) == 0) l->quiet_until[i] = now + QUIET_MS;
        }
    }
}

/* Someone of the responsible's group, else of the general candidates; NULL when none. */
static const char *pick(relais_ref_coordinator_t *c, const Relais__V1__Escalation *esc,
                        const char *responsible, int64_t now)
{
    for (size_t g = 0; g < c->n_groups; g++) {
        if (!in_list(&c->groups[g], responsible)) continue;
        const char *next = pick_in(c, &c->groups[g], esc, responsible, now);
        if (next != NULL) return next;
    }
    return pick_in(c, &c->candidates, esc, responsible, now);
}

/* Copies n addresses into l; 0, RELAIS_ECONFIG for an invalid one, -ENOMEM. */
static int copy_list(clist_t *l, const char *const *addrs, size_t n)
{
    if (n == 0) return 0;
    if (addrs == NULL) return RELAIS_ECONFIG;
    l->a = calloc(n, sizeof *l->a);
    l->quiet_until = calloc(n, sizeof *l->quiet_until);
    l->given = calloc(n, sizeof *l->given);
    if (l->a == NULL || l->quiet_until == NULL || l->given == NULL) return -ENOMEM;
    for (; l->n < n; l->n++) {
        if (addrs[l->n] == NULL || !relais_address_valid(addrs[l->n])) return RELAIS_ECONFIG;
        l->a[l->n] = strdup(addrs[l->n]);
        if (l->a[l->n] == NULL) return -ENOMEM;
    }
    return 0;
}

static void free_list(clist_t *l)
{
    for (size_t i = 0; i < l->n; i++) free(l->a[i]);
    free(l->a);
    free(l->quiet_until);
    free(l->given);
    memset(l, 0, sizeof *l);
}

static relais_outcome_t on_escalation_msg(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    relais_ref_coordinator_t *c = ud;
    const Relais__V1__Escalation *esc = d->envelope->escalation;
    const char *from = ref__sender(d);
    if (from[0] == '\0') {
        snprintf(d->reason, sizeof d->reason, "delivery without a usable sender");
        return RELAIS_REFUSED;
    }
    const uint8_t *conv =
        esc->conversation_id.len == RELAIS_MESSAGE_ID_LEN ? esc->conversation_id.data : NULL;
    const char *responsible = esc->responsible != NULL ? esc->responsible : "";
    int64_t now = relais_now_ms();
    /* The escalated message is still the request itself: the responsible never answered
     * (a decline would be the last message instead). */
    bool silent = esc->original_body != NULL && strstr(esc->original_body, "Request") != NULL;
    if (silent && responsible[0] != '\0') mark_quiet(c, responsible, now);
    const char *next = pick(c, esc, responsible, now);

    if (c->on_escalation != NULL) {
        relais_ref_escalation_t ev = {
            .from = from,
            .message_id = d->envelope->message_id.len == RELAIS_MESSAGE_ID_LEN
                              ? d->envelope->message_id.data
                              : NULL,
            .conversation_id = conv,
            .original_body = esc->original_body != NULL ? esc->original_body : "",
            .reason = esc->reason != NULL ? esc->reason : "",
            .responsible = responsible,
            .deadline_ms = esc->deadline_ms,
            .reassigned_to = next != NULL ? next : "",
        };
        c->on_escalation(&ev, c->em.ud);
    }

    char convbuf[37] = "(none)";
    if (conv != NULL) relais_id_format(conv, RELAIS_MESSAGE_ID_LEN, convbuf);
    char text[RELAIS_ADDRESS_MAX * 2 + 160];
    if (next != NULL) {
        snprintf(text, sizeof text,
                 "Coordination: escalation of conversation %s received. %s did not answer in "
                 "time; please send the request to %s.",
                 convbuf, responsible[0] != '\0' ? responsible : "The professional", next);
    } else {
        snprintf(text, sizeof text,
                 "Coordination: escalation of conversation %s received. No other candidate "
                 "is available; the coordination will call you.",
                 convbuf);
    }
    Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
    note.text = text;
    if (conv != NULL)
        note.about_conversation_id = (ProtobufCBinaryData){RELAIS_MESSAGE_ID_LEN, (uint8_t *)conv};
    note.reassign_to = next != NULL ? (char *)next : "";
    Relais__V1__Envelope reply = RELAIS__V1__ENVELOPE__INIT;
    reply.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
    reply.note = &note;
    char state[RELAIS_ADDRESS_MAX + 32];
    snprintf(state, sizeof state, "%s%s", next != NULL ? "reassigned to " : "no reassignment",
             next != NULL ? next : "");
    ref__about_t about = {.ref = "", .encounter_id = "", .state = state};
    int rc = ref__submit(&c->em, d->envelope, &reply, &about, NULL);
    if (rc != 0) {
        /* The escalation itself is recorded; only the advice is lost, so it is not retried
         * (a retry would report the escalation twice). */
        char why[96];
        snprintf(why, sizeof why, "could not send the reassignment note: %s", relais_strerror(rc));
        ref__emit_notice(&c->em, "", "", RELAIS_REF_MS_FAILED, why);
    }
    return RELAIS_PROCESSED;
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    relais_ref_coordinator_t *c = ud;
    ref__emit_receipt(&c->em, r);
}

int relais_ref_coordinator_rebind(relais_ref_coordinator_t *c, relais_agent_t *agent)
{
    if (c == NULL || agent == NULL) return RELAIS_EINVALID;
    c->agent = agent;
    c->em.agent = agent;
    int rc = relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_ESCALATION, on_escalation_msg, c);
    if (rc == 0) relais_agent_on_receipt(agent, on_receipt, c);
    return rc;
}

int relais_ref_coordinator_new(relais_ref_coordinator_t **out, relais_agent_t *agent,
                               const relais_ref_coordinator_config_t *cfg)
{
    *out = NULL;
    if (agent == NULL || cfg == NULL || (cfg->n_candidates > 0 && cfg->candidates == NULL)) {
        return RELAIS_ECONFIG;
    }
    relais_ref_coordinator_t *c = calloc(1, sizeof *c);
    if (c == NULL) return -ENOMEM;
    c->agent = agent;
    c->em = (ref__emitter_t){.fn = cfg->on_event, .ud = cfg->event_ud, .agent = agent};
    c->on_escalation = cfg->on_escalation;

    int rc = copy_list(&c->candidates, cfg->candidates, cfg->n_candidates);
    if (rc != 0) goto err;
    if (cfg->n_groups > 0) {
        rc = -ENOMEM;
        if (cfg->groups == NULL) {
            rc = RELAIS_ECONFIG;
            goto err;
        }
        c->groups = calloc(cfg->n_groups, sizeof *c->groups);
        if (c->groups == NULL) goto err;
        for (; c->n_groups < cfg->n_groups; c->n_groups++) {
            const relais_ref_coordinator_group_t *g = &cfg->groups[c->n_groups];
            rc = copy_list(&c->groups[c->n_groups], g->members, g->n_members);
            if (rc != 0) {
                c->n_groups++;
                goto err;
            }
        }
    }
    rc = relais_ref_coordinator_rebind(c, agent);
    if (rc != 0) goto err;
    *out = c;
    return 0;

err:
    relais_ref_coordinator_destroy(&c);
    return rc;
}

void relais_ref_coordinator_destroy(relais_ref_coordinator_t **cp)
{
    if (cp == NULL || *cp == NULL) return;
    relais_ref_coordinator_t *c = *cp;
    free_list(&c->candidates);
    for (size_t g = 0; g < c->n_groups; g++) free_list(&c->groups[g]);
    free(c->groups);
    free(c);
    *cp = NULL;
}
