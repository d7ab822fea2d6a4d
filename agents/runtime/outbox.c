/*
 * The agent's outbox: submissions the broker has not answered yet, in submission order.
 *
 * Each entry keeps the packed Submit frame so a resend after a reconnect sends the very
 * same bytes (same message id: the broker de-duplicates by sender and id). Answers
 * usually arrive in submission order, so looking an id up from the oldest entry finds it
 * first. The list in memory is the working copy; with a state file every submission is
 * also recorded there before relais_agent_send() returns, and loaded back, in order, by the
 * next run after a crash or a stop. Answered submissions are deleted from the file in one
 * transaction per loop turn (or with the next submission's), not one each: a crash in
 * between only makes the next run resend something the broker then answers as a duplicate.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "relais/log.h"

struct agent_outbox {
    agent_outbox_entry_t *head, *tail;
    size_t count;
    agent_state_t *state;
    int64_t *answered; /* rows of answered submissions not yet deleted from the file */
    size_t nanswered, answered_cap;
};

static void append(agent_outbox_t *outbox, agent_outbox_entry_t *e)
{
    e->prev = outbox->tail;
    if (outbox->tail)
        outbox->tail->next = e;
    else
        outbox->head = e;
    outbox->tail = e;
    outbox->count++;
}

/*
 * Takes one stored submission back into memory, after checking that the bytes read from
 * disk are the Submit frame of the id beside them: a damaged row would otherwise be resent
 * after every Welcome and never answered by its id.
 */
static int load_one(void *ud, int64_t seq, const uint8_t *id, size_t id_len, const uint8_t *frame,
                    size_t frame_len)
{
    agent_outbox_t *ob = ud;
    Relais__V1__Frame *f = NULL;
    bool ok = id_len == RELAIS_MESSAGE_ID_LEN && frame_len > 0 &&
              relais_frame_decode(frame, frame_len, frame_len, &f, NULL, 0) == 0 &&
              f->kind_case == RELAIS__V1__FRAME__KIND_SUBMIT && f->submit->envelope &&
              f->submit->envelope->message_id.len == RELAIS_MESSAGE_ID_LEN &&
              memcmp(f->submit->envelope->message_id.data, id, RELAIS_MESSAGE_ID_LEN) == 0;
    relais_frame_free(&f);
    if (!ok) {
        RLOG(RELAIS_LOG_ERROR, "agent", "state file %s: dropping damaged outbox row seq=%lld",
             agent__state_path(ob->state), (long long)seq);
        return agent__state_outbox_delete(ob->state, &seq, 1);
    }
    agent_outbox_entry_t *e = calloc(1, sizeof(*e));
    if (!e || !(e->frame = malloc(frame_len))) {
        free(e);
        return -ENOMEM;
    }
    memcpy(e->id, id, RELAIS_MESSAGE_ID_LEN);
    memcpy(e->frame, frame, frame_len);
    e->frame_len = frame_len;
    e->seq = seq;
    e->recovered = true;
    append(ob, e);
    return 0;
}

int agent__outbox_new(agent_outbox_t **out, agent_state_t *state)
{
    agent_outbox_t *ob = calloc(1, sizeof(*ob));
    if (!ob) return -ENOMEM;
    ob->state = state;
    if (state) {
        int rc = agent__state_outbox_load(state, load_one, ob);
        if (rc != 0) {
            agent__outbox_destroy(&ob);
            return rc;
        }
    }
    *out = ob;
    return 0;
}

void agent__outbox_destroy(agent_outbox_t **outbox)
{
    if (!outbox || !*outbox) return;
    agent_outbox_t *ob = *outbox;
    agent__outbox_flush(ob);
    agent_outbox_entry_t *e;
    /* Entries left here stay recorded in the state file, if any: take_first keeps them. */
    while ((e = agent__outbox_take_first(ob)) != NULL) agent__outbox_entry_free(&e);
    free(ob->answered);
    free(ob);
    *outbox = NULL;
}

int agent__outbox_push(agent_outbox_t *outbox, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                       uint8_t **frame, size_t frame_len, relais_send_cb cb, void *ud)
{
    agent_outbox_entry_t *e = calloc(1, sizeof(*e));
    if (!e) return -ENOMEM;
    if (outbox->state) {
        int rc = agent__state_outbox_insert(outbox->state, id, *frame, frame_len, outbox->answered,
                                            outbox->nanswered, &e->seq);
        if (rc != 0) {
            free(e);
            return rc;
        }
        outbox->nanswered = 0;
    }
    memcpy(e->id, id, RELAIS_MESSAGE_ID_LEN);
    e->frame = *frame;
    *frame = NULL;
    e->frame_len = frame_len;
    e->cb = cb;
    e->ud = ud;
    append(outbox, e);
    return 0;
}

static void unlink_entry(agent_outbox_t *outbox, agent_outbox_entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        outbox->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        outbox->tail = e->prev;
    e->prev = e->next = NULL;
    outbox->count--;
}

/* Queues the row of an answered submission for deletion at the next flush. */
static void forget(agent_outbox_t *outbox, int64_t seq)
{
    if (outbox->nanswered == outbox->answered_cap) {
        size_t cap = outbox->answered_cap ? outbox->answered_cap * 2 : 64;
        int64_t *grown = realloc(outbox->answered, cap * sizeof(*grown));
        if (!grown) {
            /* No room to batch it: delete it alone rather than leave it to be resent. */
            agent__state_outbox_delete(outbox->state, &seq, 1);
            return;
        }
        outbox->answered = grown;
        outbox->answered_cap = cap;
    }
    outbox->answered[outbox->nanswered++] = seq;
}

agent_outbox_entry_t *agent__outbox_take(agent_outbox_t *outbox, const uint8_t *id, size_t id_len)
{
    if (id_len != RELAIS_MESSAGE_ID_LEN) return NULL;
    for (agent_outbox_entry_t *e = outbox->head; e; e = e->next) {
        if (memcmp(e->id, id, RELAIS_MESSAGE_ID_LEN) == 0) {
            unlink_entry(outbox, e);
            if (outbox->state) forget(outbox, e->seq);
            return e;
        }
    }
    return NULL;
}

bool agent__outbox_unpush(agent_outbox_t *outbox, const uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    agent_outbox_entry_t *e = outbox->tail;
    if (!e || memcmp(e->id, id, RELAIS_MESSAGE_ID_LEN) != 0) return false;
    unlink_entry(outbox, e);
    agent__outbox_entry_free(&e);
    return true;
}

agent_outbox_entry_t *agent__outbox_take_first(agent_outbox_t *outbox)
{
    agent_outbox_entry_t *e = outbox->head;
    if (e) unlink_entry(outbox, e);
    return e;
}

int agent__outbox_flush(agent_outbox_t *outbox)
{
    if (!outbox->state || outbox->nanswered == 0) return 0;
    int rc = agent__state_outbox_delete(outbox->state, outbox->answered, outbox->nanswered);
    if (rc == 0) outbox->nanswered = 0;
    return rc;
}

const agent_outbox_entry_t *agent__outbox_first(const agent_outbox_t *outbox)
{
    return outbox->head;
}

size_t agent__outbox_count(const agent_outbox_t *outbox)
{
    return outbox->count;
}

void agent__outbox_entry_free(agent_outbox_entry_t **entry)
{
    if (!entry || !*entry) return;
    free((*entry)->frame);
    free(*entry);
    *entry = NULL;
}
