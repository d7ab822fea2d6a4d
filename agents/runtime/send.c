/*
 * Submissions: relais_agent_send() and relais_agent_reply().
 *
 * A submission is validated, packed once into a Submit frame, and put in the outbox before
 * anything goes on the wire; the outbox then owns it until the broker answers (with a state
 * file, it is on disk before relais_agent_send() returns 0). It is sent at once when the
 * session is ready, otherwise on the next Welcome. With conversation tracking on, the send
 * is first checked against its conversation's state machine (conv.c), and the
 * conversation's new state is written in the same transaction as the submission. The
 * caller's envelope is never modified: the SDK works on a shallow copy whose few changed
 * fields point at storage on this function's stack, and packing copies everything it needs.
 */
#include <stdlib.h>
#include <string.h>

#include "agent_internal.h"
#include "relais/log.h"

void relais_agent_on_submitted(relais_agent_t *agent, relais_submitted_fn fn, void *ud)
{
    agent->submitted_fn = fn;
    agent->submitted_ud = ud;
}

int relais_agent_send(relais_agent_t *agent, const Relais__V1__Envelope *env,
                      uint8_t message_id_out[RELAIS_MESSAGE_ID_LEN], relais_send_cb cb, void *ud)
{
    if (agent->phase >= AGENT_PHASE_CLOSING) return RELAIS_ECLOSED;
    if (!env) return RELAIS_EINVALID;

    Relais__V1__Envelope copy = *env;
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    int rc;
    if (env->message_id.len == 0) {
        if ((rc = relais_uuid7(id)) != 0) return rc;
        copy.message_id.data = id;
        copy.message_id.len = sizeof(id);
    }
    int64_t now = relais_now_ms();
    if (copy.created_at_ms == 0) copy.created_at_ms = now;
    /* Broker-owned fields: the broker stamps them, so we do not send stale values. */
    copy.sender = (char *)protobuf_c_empty_string;
    copy.accepted_at_ms = 0;

    char reason[RELAIS_REASON_MAX] = "";
    rc = relais_envelope_validate(&copy, now, agent->max_recipients, reason, sizeof(reason));
    if (rc != 0) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s refused to send an invalid envelope: %s",
             agent->address, reason);
        return rc;
    }
    /* Validation guarantees a 16-byte id from here on. */
    memcpy(id, copy.message_id.data, sizeof(id));
    /* A tracked conversation refuses a send that is not a valid transition. */
    conv_send_t cs;
    if ((rc = agent__conv_send_check(agent, &copy, &cs)) != 0) return rc;

    Relais__V1__Submit submit = RELAIS__V1__SUBMIT__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    submit.envelope = &copy;
    f.kind_case = RELAIS__V1__FRAME__KIND_SUBMIT;
    f.submit = &submit;
    uint8_t *frame = NULL;
    size_t len = 0;
    if ((rc = relais_frame_encode(&f, &frame, &len)) != 0) goto err;
    if (len > agent->max_frame_bytes) {
        RLOG(RELAIS_LOG_WARN, "agent", "agent=%s refused to send %zu bytes, limit is %zu",
             agent->address, len, agent->max_frame_bytes);
        rc = RELAIS_ETOOLARGE;
        goto err;
    }
    const uint8_t *bytes = frame; /* still valid once the outbox owns the buffer */
    /* The conversation's new state and the submission reach the state file in one
     * transaction. Answered submissions are forgotten first, so that the push deletes
     * nothing a rollback would have to give back to the outbox. */
    bool held = cs.next && agent->state_file;
    if (held) {
        agent__outbox_flush(agent->outbox);
        if ((rc = agent__state_hold(agent->state_file)) != 0) goto err;
        rc = agent__conv_send_save(agent, &cs);
    }
    if (rc == 0) rc = agent__outbox_push(agent->outbox, id, &frame, len, cb, ud);
    if (held) {
        bool pushed = rc == 0;
        rc = agent__state_release(agent->state_file, rc);
        if (rc != 0 && pushed) agent__outbox_unpush(agent->outbox, id);
    }
    if (rc != 0) goto err;
    if (message_id_out) memcpy(message_id_out, id, sizeof(id));
    if (agent->state == RELAIS_AGENT_READY && !agent->conn_failed) {
        /* A failed send is not an error for the caller: the outbox resends after the next
         * Welcome. */
        agent__send_bytes(agent, bytes, len);
    }
    /* After the bytes: what the transition makes the SDK send (a preadmission choice's
     * cancels to the other facilities) goes out behind it. */
    agent__conv_send_done(agent, &cs, &copy, true);
    return 0;

err:
    free(frame);
    agent__conv_send_done(agent, &cs, &copy, false);
    return rc;
}

int relais_agent_reply(relais_agent_t *agent, const Relais__V1__Envelope *original,
                       const Relais__V1__Envelope *reply,
                       uint8_t message_id_out[RELAIS_MESSAGE_ID_LEN], relais_send_cb cb, void *ud)
{
    if (!original || !reply) return RELAIS_EINVALID;
    Relais__V1__Envelope copy = *reply;
    char *to[1];
    if (reply->n_to == 0) {
        if (!original->sender || !*original->sender) {
            RLOG(RELAIS_LOG_WARN, "agent", "agent=%s cannot reply: original has no sender",
                 agent->address);
            return RELAIS_EINVALID;
        }
        to[0] = original->sender;
        copy.to = to;
        copy.n_to = 1;
    }
    copy.conversation_id =
        original->conversation_id.len ? original->conversation_id : original->message_id;
    copy.in_reply_to = original->message_id;
    return relais_agent_send(agent, &copy, message_id_out, cb, ud);
}
