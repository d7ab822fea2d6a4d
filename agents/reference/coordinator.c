/*
 * The CPTS coordinator role: where missed deadlines end up. The SDK of an agent that waited
 * too long sends an Escalation (a new thread to the coordinator's address); this role
 * reports it to its observer, reassigns, and acknowledges it PROCESSED.
 *
 * Reassigning is deliberately small: the coordinator keeps a configured list of candidates
 * and names the next one — round robin, skipping whoever was responsible — in a Note to the
 * agent that escalated, or says that it has no one else. The Note is a reply in the
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

/* A list of addresses and where its round robin resumes. */
typedef struct clist {
    char **a;
    size_t n;
    size_t next;
} clist_t;

struct relais_ref_coordinator {
    relais_agent_t *agent;
    ref__emitter_t em;
    relais_ref_escalation_fn on_escalation;
    clist_t candidates;
    clist_t *groups;
    size_t n_groups;
};

/* The next address of l that is not responsible, advancing the round robin; or NULL. */
static const char *pick_in(clist_t *l, const char *responsible)
{
    for (size_t k = 0; k < l->n; k++) {
        size_t i = (l->next + k) % l->n;
        if (strcmp(l->a[i], responsible) != 0) {
            l->next = (i + 1) % l->n;
            return l->a[i];
        }
    }
    return NULL;
}

static bool in_list(const clist_t *l, const char *addr)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcmp(l->a[i], addr) == 0) return true;
    }
    return false;
}

/* Someone of the responsible's group, else of the general candidates; NULL when none. */
static const char *pick(relais_ref_coordinator_t *c, const char *responsible)
{
    for (size_t g = 0; g < c->n_groups; g++) {
        if (!in_list(&c->groups[g], responsible)) continue;
        const char *next = pick_in(&c->groups[g], responsible);
        if (next != NULL) return next;
    }
    return pick_in(&c->candidates, responsible);
}

/* Copies n addresses into l; 0, RELAIS_ECONFIG for an invalid one, -ENOMEM. */
static int copy_list(clist_t *l, const char *const *addrs, size_t n)
{
    if (n == 0) return 0;
    if (addrs == NULL) return RELAIS_ECONFIG;
    l->a = calloc(n, sizeof *l->a);
    if (l->a == NULL) return -ENOMEM;
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
    const char *next = pick(c, responsible);

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
    rc = relais_agent_on(agent, RELAIS__V1__ENVELOPE__BODY_ESCALATION, on_escalation_msg, c);
    if (rc != 0) goto err;
    relais_agent_on_receipt(agent, on_receipt, c);
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
