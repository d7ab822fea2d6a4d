/*
 * Authorisation: may this sender send this body type to these recipients?
 *
 * The rules are PROTOCOL.md section 6, shipped as defaults and changed per territory by the
 * directory's `acl:` section (directory.h). acl_check() is a pure function of its request:
 * it reads the directory and asks the caller whether an address takes part in the message's
 * conversation, because the broker, not this module, knows who was delivered what. Every
 * refusal names the rule that refused, since the reason travels back to the sender in
 * Rejected{FORBIDDEN} and is what a developer or a CPTS administrator reads to fix it.
 *
 * Decisions beyond the table of section 6:
 * - The sender's role is always its own. A medical assistant acting on behalf of a GP is
 *   judged as a medical assistant (the defaults list that role wherever a GP's assistant
 *   needs it); on_behalf_of is checked separately against the directory.
 * - A sender acting on behalf of a participant of the conversation counts as a participant:
 *   an assistant answers in her GP's conversations.
 * - A role among the recipients admits the service pools of that role in this territory.
 * - Recipients are checked to exist before they are checked against the rule, so a typo is
 *   reported as UNKNOWN_RECIPIENT whatever the body; a body without a rule is refused.
 */
#ifndef RELAIS_BROKER_ACL_H
#define RELAIS_BROKER_ACL_H

#include <stdbool.h>
#include <stddef.h>

#include "directory.h"

/* One effective rule: the default of section 6 with the territory's override applied. */
typedef struct acl_rule {
    dir_acl_set_t senders;
    dir_acl_set_t recipients;
} acl_rule_t;

/* One submission to judge. Nothing is retained after acl_check() returns. */
typedef struct acl_request {
    const directory_t *dir;
    const dir_agent_t *sender; /* the authenticated sender; NULL is refused */
    int body_case;             /* RELAIS__V1__ENVELOPE__BODY_… */
    const char *on_behalf_of;  /* NULL or "" when the sender acts for itself */
    const char *const *to;
    size_t n_to;
    /*
     * Whether address takes part in the envelope's conversation: it sent or was delivered a
     * message of it (the sender of the first request included). NULL when the envelope has
     * no conversation; participant-only rules then refuse.
     */
    bool (*is_participant)(void *ud, const char *address);
    void *ud;
} acl_request_t;

/*
 * Judges r. Returns 0 (reason emptied), or writes a sentence in reason (reason_len bytes,
 * NUL-terminated) and returns:
 * - RELAIS_EUNKNOWNRCPT when a recipient is not an agent of the directory nor a pool of
 *   this territory with members ("recipient rpps:…: not in the directory of cpts-x"), or is
 *   a pool of another territory ("… federation is not supported");
 * - RELAIS_EFORBIDDEN when on_behalf_of is not allowed by directory_may_act_for(), the sender
 *   is absent or not among the rule's senders, or a recipient not among its recipients
 *   ("rule discharge_notification: senders are hospital, facility; rpps:… is a nurse");
 * - RELAIS_EINVALID when n_to is 0.
 */
int acl_check(const acl_request_t *r, char *reason, size_t reason_len);

/*
 * The effective rule for body_case in dir (dir NULL: the shipped default). Returns 0, or
 * RELAIS_EINVALID when the body type has no rule (unknown or unset case).
 */
int acl_rule(const directory_t *dir, int body_case, acl_rule_t *out);

/*
 * Writes a set as people read it ("gp, medical_assistant", "anyone in the directory",
 * "participants of the conversation", "nobody"); for recipients, roles read "… and their
 * pools". Returns buf.
 */
const char *acl_set_format(const dir_acl_set_t *set, bool recipients, char *buf, size_t len);

#endif /* RELAIS_BROKER_ACL_H */
