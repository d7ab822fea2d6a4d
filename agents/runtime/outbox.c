/*
 * The agent's outbox: submissions the broker has not answered yet, in submission order.
 *
 * Each entry keeps the packed Submit frame so a resend after a reconnect sends the very
 * same bytes (same message id: the broker de-duplicates by sender and id). Answers
 * usually arrive in submission order, so looking an id up from the oldest entry finds it
 * first. The interface is narrow on purpose: a later change backs it by a SQLite file so
 * that submissions survive the agent's own crash.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"

struct agent_outbox {
    agent_outbox_entry_t *head, *tail;
    size_t count;
};

int agent__outbox_new(agent_outbox_t **out)
{
    agent_outbox_t *ob = calloc(1, sizeof(*ob));
    if (!ob) return -ENOMEM;
    *out = ob;
    return 0;
}

void agent__outbox_destroy(agent_outbox_t **outbox)
{
    if (!outbox || !*outbox) return;
    agent_outbox_entry_t *e;
    while ((e = agent__outbox_take_first(*outbox)) != NULL) agent__outbox_entry_free(&e);
    free(*outbox);
    *outbox = NULL;
}

int agent__outbox_push(agent_outbox_t *outbox, const uint8_t id[RELAIS_MESSAGE_ID_LEN],
                       uint8_t **frame, size_t frame_len, relais_send_cb cb, void *ud)
{
    agent_outbox_entry_t *e = calloc(1, sizeof(*e));
    if (!e) return -ENOMEM;
    memcpy(e->id, id, RELAIS_MESSAGE_ID_LEN);
    e->frame = *frame;
    *frame = NULL;
    e->frame_len = frame_len;
    e->cb = cb;
    e->ud = ud;
    e->prev = outbox->tail;
    if (outbox->tail)
        outbox->tail->next = e;
    else
        outbox->head = e;
    outbox->tail = e;
    outbox->count++;
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

agent_outbox_entry_t *agent__outbox_take(agent_outbox_t *outbox, const uint8_t *id, size_t id_len)
{
    if (id_len != RELAIS_MESSAGE_ID_LEN) return NULL;
    for (agent_outbox_entry_t *e = outbox->head; e; e = e->next) {
        if (memcmp(e->id, id, RELAIS_MESSAGE_ID_LEN) == 0) {
            unlink_entry(outbox, e);
            return e;
        }
    }
    return NULL;
}

agent_outbox_entry_t *agent__outbox_take_first(agent_outbox_t *outbox)
{
    agent_outbox_entry_t *e = outbox->head;
    if (e) unlink_entry(outbox, e);
    return e;
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
