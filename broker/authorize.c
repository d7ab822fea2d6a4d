/*
 * May this submission go through? The territory's rules applied to one Submit, after the
 * envelope has been validated and before anything is recorded:
 *
 * 1. limits: submissions per second per agent (a token bucket per session), and room in
 *    every recipient's mailbox — both answered OVERLOADED with a retry delay;
 * 2. authorisation (acl.c, PROTOCOL.md section 6 and the directory's overrides): who may
 *    send which body to whom, on whose behalf, and the reply-only rules, which need to
 *    know who takes part in the conversation.
 *
 * Participation is recorded for every accepted message — its sender and recipients, under
 * its conversation id or, for the first message of a conversation, its own message id
 * (what replies carry as conversation_id). It is stored by the commit (the participants
 * table) and, until that commit completes, kept in a small in-memory set, so a reply
 * arriving before the commit is judged right.
 *
 * A conversation is closed to outsiders: a message may name an existing conversation (by
 * its conversation id, or by a message id that is one) only if its sender, or whom it acts
 * for, already takes part in it. Knowing a conversation's id is not a right to join it. A
 * new conversation starts with its first message; the coordinator joins one only through an
 * escalation sent by a participant (authorize__record).
 *
 * Without a directory (insecure development without --directory) there is no rule to
 * apply and no rate limit: only the mailbox limit holds.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acl.h"
#include "broker.h"
#include "directory.h"
#include "relais/log.h"

static dir_limits_t limits(const broker_t *b)
{
    if (b->dir) return directory_limits(b->dir);
    return (dir_limits_t){.submissions_per_second = DIR_DEFAULT_SUBMISSIONS_PER_SECOND,
                          .sessions_per_key = DIR_DEFAULT_SESSIONS_PER_KEY,
                          .pending_per_mailbox = DIR_DEFAULT_PENDING_PER_MAILBOX};
}

/* The key under which a message's participants are recorded and looked up. */
static void conversation_of(const Relais__V1__Envelope *env, const uint8_t **key, size_t *len)
{
    if (env->conversation_id.len > 0) {
        *key = env->conversation_id.data;
        *len = env->conversation_id.len;
    } else {
        *key = env->message_id.data;
        *len = env->message_id.len;
    }
}

static size_t participation_key(const uint8_t *conv, size_t conv_len, const char *address,
                                uint8_t *out)
{
    size_t n = strlen(address);
    memcpy(out, conv, conv_len);
    out[conv_len] = 0;
    memcpy(out + conv_len + 1, address, n);
    return conv_len + 1 + n;
}

typedef struct participation_ctx {
    broker_t *b;
    const uint8_t *conv;
    size_t conv_len;
} participation_ctx_t;

static bool is_participant(void *ud, const char *address)
{
    participation_ctx_t *c = ud;
    uint8_t key[RELAIS_MESSAGE_ID_LEN + 1 + RELAIS_ADDRESS_MAX];
    if (c->conv_len > RELAIS_MESSAGE_ID_LEN || strlen(address) >= RELAIS_ADDRESS_MAX) return false;
    if (map_get(c->b->participating, key, participation_key(c->conv, c->conv_len, address, key)))
        return true;
    bool found = false;
    if (c->b->store->vt->participant(c->b->store, c->conv, c->conv_len, address, &found) < 0)
        return false; /* cannot tell: refuse, the sender may retry */
    return found;
}

/* Token bucket: `rate` submissions a second, bursts up to `rate`. */
static bool take_token(session_t *s, uint32_t rate, int64_t *retry_after_ms)
{
    int64_t now = relais_mono_ms(); /* a rate is per real second, whatever the business clock */
    if (s->tokens_at_ms == 0) {
        s->tokens = rate;
        s->tokens_at_ms = now;
    }
    s->tokens += (double)(now - s->tokens_at_ms) * rate / 1000.0;
    if (s->tokens > rate) s->tokens = rate;
    s->tokens_at_ms = now;
    if (s->tokens >= 1.0) {
        s->tokens -= 1.0;
        return true;
    }
    *retry_after_ms = (int64_t)((1.0 - s->tokens) * 1000.0 / rate) + 1;
    return false;
}

/* Whether the conversation is known, and whether address or alt takes part: the pending
 * participations first, then the store. */
static int conversation_state(broker_t *b, const uint8_t *conv, size_t conv_len,
                              const char *address, const char *alt, bool *known, bool *member)
{
    participation_ctx_t pc = {.b = b, .conv = conv, .conv_len = conv_len};
    *known = map_get(b->pending_conversations, conv, conv_len) != NULL;
    *member = false;
    if (*known && (is_participant(&pc, address) || (alt != NULL && is_participant(&pc, alt)))) {
        *member = true;
        return 0;
    }
    bool stored_known = false;
    int rc = b->store->vt->conversation(b->store, conv, conv_len, address, alt, &stored_known,
                                        member);
    *known = *known || stored_known;
    return rc;
}

/* A message naming an existing conversation must come from one of its participants. */
static int check_membership(broker_t *b, session_t *s, const Relais__V1__Envelope *env,
                            char *reason, size_t reason_len)
{
    const uint8_t *conv;
    size_t conv_len;
    conversation_of(env, &conv, &conv_len);
    if (conv_len == 0 || conv_len > RELAIS_MESSAGE_ID_LEN) return 0;
    const char *alt =
        env->on_behalf_of != NULL && env->on_behalf_of[0] != '\0' ? env->on_behalf_of : NULL;
    bool known = false, member = false;
    if (conversation_state(b, conv, conv_len, s->address, alt, &known, &member) < 0) {
        snprintf(reason, reason_len, "store unavailable: cannot check the conversation now");
        return RELAIS_ESTORE;
    }
    if (!known || member) return 0;
    char idbuf[37];
    snprintf(reason, reason_len,
             "%s into conversation %s: %.100s%s%.100s takes no part in it (only its "
             "participants may write in it)",
             relais_body_name(env->body_case), relais_id_format(conv, conv_len, idbuf),
             s->address, alt ? " acting for " : "", alt ? alt : "");
    return RELAIS_EFORBIDDEN;
}

int authorize__submit(broker_t *b, session_t *s, const Relais__V1__Envelope *env, int64_t now,
                      char *reason, size_t reason_len, int64_t *retry_after_ms)
{
    dir_limits_t lim = limits(b);
    *retry_after_ms = 0;
    if (b->dir != NULL && !take_token(s, lim.submissions_per_second, retry_after_ms)) {
        snprintf(reason, reason_len, "more than %u submissions a second from %.100s",
                 lim.submissions_per_second, s->address);
        return RELAIS_EOVERLOADED;
    }
    for (size_t i = 0; i < env->n_to; i++) {
        mailbox_t *mb = mailbox__get(b, env->to[i], false);
        if (mb == NULL) continue;
        uint64_t pending = mb->mem[0] + mb->mem[1] + mb->disk[0] + mb->disk[1];
        if (pending >= lim.pending_per_mailbox) {
            snprintf(reason, reason_len,
                     "to[%zu]: %.100s has %llu messages waiting, the "
                     "territory's limit",
                     i, env->to[i], (unsigned long long)pending);
            *retry_after_ms = 60 * 1000;
            return RELAIS_EOVERLOADED;
        }
    }
    if (b->dir == NULL) return 0;

    int rc = check_membership(b, s, env, reason, reason_len);
    if (rc < 0) {
        if (rc == RELAIS_ESTORE) *retry_after_ms = 1000;
        return rc;
    }
    const dir_agent_t *sender = directory_lookup(b->dir, s->address);
    participation_ctx_t pc = {.b = b};
    bool has_conversation = env->conversation_id.len > 0;
    if (has_conversation) conversation_of(env, &pc.conv, &pc.conv_len);
    acl_request_t req = {
        .dir = b->dir,
        .sender = sender,
        .body_case = env->body_case,
        .on_behalf_of = env->on_behalf_of,
        .to = (const char *const *)env->to,
        .n_to = env->n_to,
        .is_participant = has_conversation ? is_participant : NULL,
        .ud = &pc,
    };
    return acl_check(&req, reason, reason_len);
}

/* Whether a body's rule already requires its sender and recipients to be participants: then
 * recording them again adds nothing (replies, notes). */
static bool participants_only(const broker_t *b, int body_case)
{
    acl_rule_t rule;
    if (acl_rule(b->dir, body_case, &rule) < 0) return false;
    return rule.senders.participants && !rule.senders.any && rule.senders.roles == 0 &&
           rule.recipients.participants && !rule.recipients.any && rule.recipients.roles == 0;
}

/* Records that address takes part in the conversation: pending in memory until the commit
 * that stores it completes. */
static void record_one(broker_t *b, const uint8_t *conv, size_t conv_len, const char *address,
                       int64_t now)
{
    if (strlen(address) >= RELAIS_ADDRESS_MAX) return;
    uint8_t key[RELAIS_MESSAGE_ID_LEN + 1 + RELAIS_ADDRESS_MAX];
    size_t klen = participation_key(conv, conv_len, address, key);
    if (map_get(b->participating, key, klen) == NULL) {
        keyvec_t *v = &b->participation_keys;
        if (v->n == v->cap) {
            size_t ncap = v->cap ? v->cap * 2 : 64;
            uint8_t **k = realloc(v->keys, ncap * sizeof(*k));
            size_t *l = k ? realloc(v->lens, ncap * sizeof(*l)) : NULL;
            if (k) v->keys = k;
            if (l == NULL) return;
            v->lens = l;
            v->cap = ncap;
        }
        uint8_t *copy = malloc(klen);
        if (copy == NULL || map_put(b->participating, key, klen, (void *)1) < 0) {
            free(copy);
            return;
        }
        memcpy(copy, key, klen);
        v->keys[v->n] = copy;
        v->lens[v->n++] = klen;
        /* The conversation is known from now on, before its commit. */
        uintptr_t n = (uintptr_t)map_get(b->pending_conversations, conv, conv_len);
        if (map_put(b->pending_conversations, conv, conv_len, (void *)(n + 1)) < 0)
            xalloc__oom(conv_len);
    }
    store_op_t op = {.kind = STORE_PARTICIPANT_PUT, .at_ms = now};
    op.address = strdup(address);
    op.data = malloc(conv_len);
    if (op.data) memcpy(op.data, conv, conv_len);
    op.data_len = conv_len;
    if (op.address == NULL || op.data == NULL) {
        free(op.address);
        free(op.data);
        return;
    }
    broker__record(b, &op);
}

void authorize__record(broker_t *b, const Relais__V1__Envelope *env, const char *sender,
                       int64_t now)
{
    /* Participation serves the reply-only rules: without a directory there are none. */
    if (b->dir == NULL || participants_only(b, env->body_case)) return;
    const uint8_t *conv;
    size_t conv_len;
    conversation_of(env, &conv, &conv_len);
    if (conv_len == 0 || conv_len > RELAIS_MESSAGE_ID_LEN) return;
    /* The recipients, the sender, and whom the sender acts for: a GP takes part in what her
     * assistant started for her. */
    for (size_t i = 0; i < env->n_to; i++) record_one(b, conv, conv_len, env->to[i], now);
    record_one(b, conv, conv_len, sender, now);
    if (env->on_behalf_of != NULL && env->on_behalf_of[0] != '\0')
        record_one(b, conv, conv_len, env->on_behalf_of, now);
    /* An escalation brings its recipients (the coordinator) into the conversation it is
     * about, so they can act in it — when the one escalating takes part in it. */
    const Relais__V1__Escalation *esc = env->escalation;
    if (env->body_case == RELAIS__V1__ENVELOPE__BODY_ESCALATION && esc != NULL &&
        esc->conversation_id.len > 0 && esc->conversation_id.len <= RELAIS_MESSAGE_ID_LEN) {
        participation_ctx_t pc = {
            .b = b, .conv = esc->conversation_id.data, .conv_len = esc->conversation_id.len};
        if (is_participant(&pc, sender))
            for (size_t i = 0; i < env->n_to; i++)
                record_one(b, pc.conv, pc.conv_len, env->to[i], now);
    }
}

void authorize__pool_member(broker_t *b, const msg_t *m, const char *member)
{
    /* A pool stands for its members: the one who receives (ANYCAST) or claims (OFFER) the
     * message is the one who will answer in its conversation. */
    if (b->dir == NULL || participants_only(b, m->body_case)) return;
    if (m->conversation_id_len > 0)
        record_one(b, m->conversation_id, m->conversation_id_len, member, relais_now_ms());
    else
        record_one(b, m->message_id, RELAIS_MESSAGE_ID_LEN, member, relais_now_ms());
}

void authorize__settled(broker_t *b, keyvec_t *keys)
{
    for (size_t i = 0; i < keys->n; i++) {
        map_del(b->participating, keys->keys[i], keys->lens[i]);
        /* The key is conversation NUL address; conversations are at most 16 bytes. */
        const uint8_t *nul = memchr(keys->keys[i], 0, keys->lens[i]);
        if (nul != NULL && b->pending_conversations != NULL) {
            size_t clen = (size_t)(nul - keys->keys[i]);
            uintptr_t n = (uintptr_t)map_get(b->pending_conversations, keys->keys[i], clen);
            if (n <= 1)
                map_del(b->pending_conversations, keys->keys[i], clen);
            else
                map_put(b->pending_conversations, keys->keys[i], clen, (void *)(n - 1));
        }
        free(keys->keys[i]);
    }
    free(keys->keys);
    free(keys->lens);
    memset(keys, 0, sizeof(*keys));
}

void authorize__prune(broker_t *b, int64_t now)
{
    store_op_t op = {.kind = STORE_PARTICIPANT_PRUNE,
                     .at_ms = now - b->cfg.conversation_retention_ms};
    broker__record(b, &op);
}
