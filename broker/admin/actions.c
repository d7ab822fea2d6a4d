/*
 * The admin surface's write actions, accepted only as POST on the control socket (never on
 * the HTTP listener): today `kick`, which ends an agent's session so that it reconnects —
 * the support call's "have you tried turning it off and on again", without touching the
 * agent's machine. Each action is logged and journaled with the address it concerned.
 *
 * Replay of a dead letter and purging old messages need store operations and a place in
 * the delivery state machine that the core does not offer yet; they are not here.
 */
#include <stdio.h>
#include <string.h>

#include "admin_internal.h"
#include "audit.h"
#include "relais/errors.h"
#include "relais/log.h"

static void kick(admin_t *a, const char *address, http_response_t *resp)
{
    broker_t *b = a->b;
    mailbox_t *mb = map_get(b->mailboxes, address, strlen(address));
    session_t *s = mb ? mb->session : NULL;
    if (s == NULL) {
        resp->status = 404;
        abuf_printf(&resp->body, "404 Not Found: %.*s has no session open\n", RELAIS_ADDRESS_MAX,
                    address);
        return;
    }
    RLOG(RELAIS_LOG_WARN, "admin", "kick agent=%s: session ended by an administrator", address);
    broker__audit(b, AUDIT_SESSION_CLOSE, s->address, NULL, NULL, NULL, 0, "kicked", 0);
    broker__send_error(b, s->rid, s->rid_len, RELAIS_EFORBIDDEN,
                       "session ended by the territory's administrator; reconnect", true, NULL, 0);
    abuf_printf(&resp->body, "kicked %s: its session is closed; the agent may reconnect\n",
                s->address);
    session__close(b, s, "kicked by an administrator");
}

void actions__handle(admin_t *a, const http_request_t *req, http_response_t *resp)
{
    static const char prefix[] = "/api/v1/kick/";
    size_t plen = sizeof(prefix) - 1;
    if (req->path_len > plen && memcmp(req->path, prefix, plen) == 0) {
        char address[RELAIS_ADDRESS_MAX];
        size_t n = req->path_len - plen;
        if (n >= sizeof(address)) {
            resp->status = 400;
            abuf_puts(&resp->body, "400 Bad Request: address too long\n");
            return;
        }
        /* Percent-decoded as a query value would be: relaisctl encodes the ':'. */
        char raw[RELAIS_ADDRESS_MAX + 4];
        snprintf(raw, sizeof(raw), "a=%.*s", (int)n, req->path + plen);
        http_request_t q = {.query = raw, .query_len = strlen(raw)};
        if (!http_query_param(&q, "a", address, sizeof(address)) || address[0] == '\0') {
            resp->status = 400;
            abuf_puts(&resp->body, "400 Bad Request: kick wants an address\n");
            return;
        }
        kick(a, address, resp);
        return;
    }
    resp->status = 404;
    abuf_puts(&resp->body, "404 Not Found: the write actions are kick/ADDRESS\n");
}
