/*
 * Offers from service pools in OFFER mode (include/relais/agent.h, "Offers").
 *
 * An offered delivery does not reach the application's handler until this agent owns it:
 * the offer callback (or the default: claim what a handler exists for) decides; a claim
 * sends Claim and keeps the delivery, packed, until the broker answers. ClaimResult
 * {granted} replays it through the ordinary delivery path — deduplication, conversation
 * tracking, handler, Ack — so a claimed offer is handled exactly like a direct delivery;
 * a refused claim or a Withdrawn drops it. A new session voids pending claims: the broker
 * forgets a departed session's offers and offers again what is still unclaimed.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "relais/log.h"

typedef struct agent_offer {
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    uint8_t *deliver; /* the packed Deliver, replayed once granted */
    size_t len;
    struct agent_offer *next;
} agent_offer_t;

static agent_offer_t *take(relais_agent_t *a, const uint8_t *id, size_t len)
{
    if (len != RELAIS_MESSAGE_ID_LEN) return NULL;
    for (agent_offer_t **p = &a->offers; *p; p = &(*p)->next) {
        if (memcmp((*p)->id, id, RELAIS_MESSAGE_ID_LEN) == 0) {
            agent_offer_t *o = *p;
            *p = o->next;
            return o;
        }
    }
    return NULL;
}

static void offer_free(agent_offer_t *o)
{
    if (o == NULL) return;
    free(o->deliver);
    free(o);
}

void agent__offers_free(relais_agent_t *a)
{
    while (a->offers) {
        agent_offer_t *o = a->offers;
        a->offers = o->next;
        offer_free(o);
    }
}

void agent__offer(relais_agent_t *a, const Relais__V1__Deliver *d)
{
    const Relais__V1__Envelope *env = d->envelope;
    if (env == NULL || env->message_id.len != RELAIS_MESSAGE_ID_LEN) return;
    relais_delivery_t dl = {.envelope = env, .attempt = d->attempt, .offered = true};
    relais_offer_decision_t decision =
        a->offer_fn
            ? a->offer_fn(a, &dl, a->offer_ud)
            : (agent__has_handler(a, env->body_case) ? RELAIS_OFFER_CLAIM : RELAIS_OFFER_DECLINE);
    if (decision != RELAIS_OFFER_CLAIM) {
        agent__send_ack(a, env->message_id, RELAIS_REFUSED,
                        dl.reason[0] ? dl.reason : "declined by this member");
        return;
    }
    agent_offer_t *o = calloc(1, sizeof(*o));
    size_t len = relais__v1__deliver__get_packed_size(d);
    if (o == NULL || (o->deliver = malloc(len ? len : 1)) == NULL) {
        offer_free(o);
        RLOG(RELAIS_LOG_ERROR, "agent", "agent=%s out of memory: offer not claimed", a->address);
        return;
    }
    relais__v1__deliver__pack(d, o->deliver);
    o->len = len;
    memcpy(o->id, env->message_id.data, RELAIS_MESSAGE_ID_LEN);
    offer_free(take(a, o->id, RELAIS_MESSAGE_ID_LEN)); /* offered again: the newer stands */
    o->next = a->offers;
    a->offers = o;

    Relais__V1__Claim claim = RELAIS__V1__CLAIM__INIT;
    claim.message_id = env->message_id;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_CLAIM;
    f.claim = &claim;
    agent__send_frame(a, &f);
}

void agent__claim_result(relais_agent_t *a, const Relais__V1__ClaimResult *r)
{
    agent_offer_t *o = take(a, r->message_id.data, r->message_id.len);
    if (o == NULL) return; /* a claim of an earlier session: void */
    if (r->granted) {
        Relais__V1__Deliver *d = relais__v1__deliver__unpack(NULL, o->len, o->deliver);
        if (d != NULL) {
            agent__deliver(a, d);
            relais__v1__deliver__free_unpacked(d, NULL);
        }
    } else {
        char id[37];
        RLOG(RELAIS_LOG_INFO, "agent", "agent=%s claim refused msg=%s: another member took it",
             a->address, relais_id_format(o->id, RELAIS_MESSAGE_ID_LEN, id));
    }
    offer_free(o);
}

void agent__withdrawn(relais_agent_t *a, const Relais__V1__Withdrawn *w)
{
    offer_free(take(a, w->message_id.data, w->message_id.len));
    if (a->withdrawn_fn && w->message_id.len == RELAIS_MESSAGE_ID_LEN)
        a->withdrawn_fn(a, w->message_id.data, w->reason ? w->reason : "", a->withdrawn_ud);
}
