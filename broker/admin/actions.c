/*
 * The admin surface's write actions, accepted only as POST on the control socket (never on
 * the HTTP listener): today `kick`, which ends an agent's session so that it reconnects —
 * the support call's "have you tried turning it off and on again", without touching the
 * agent's machine. Each action is logged and journaled with the address it concerned.
 *
 * `replay ID` makes a message's dead letters pending again (broker/replay.c) and `purge`
 * forgets dead letters older than a cut-off; both are journaled by the core.
 */
#include <stdio.h>
#include <stdlib.h>
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

static void replay(admin_t *a, const char *id_s, size_t len, http_response_t *resp)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    if (api__parse_id(id_s, len, id) < 0) {
        resp->status = 400;
        abuf_puts(&resp->body, "400 Bad Request: a message id is 32 hexadecimal digits\n");
        return;
    }
    unsigned n = 0;
    int rc = replay__dead_letters(a->b, id, &n);
    if (rc == RELAIS_EUNKNOWNRCPT) {
        resp->status = 404;
        abuf_puts(&resp->body, "404 Not Found: this message has no dead letter\n");
        return;
    }
    if (rc < 0) {
        resp->status = 503;
        abuf_printf(&resp->body, "503 Service Unavailable: %s\n", relais_strerror(rc));
        return;
    }
    RLOG(RELAIS_LOG_WARN, "admin", "replay of %u dead letter(s) asked by an administrator", n);
    abuf_printf(&resp->body,
                "replayed %u dead letter(s): pending again once stored and journaled, "
                "delivered as new messages with a new deadline\n",
                n);
}

static void purge(admin_t *a, const http_request_t *req, http_response_t *resp)
{
    char v[32];
    char *end = NULL;
    long long ms = -1;
    if (http_query_param(req, "older_than_ms", v, sizeof(v))) ms = strtoll(v, &end, 10);
    if (ms < 0 || end == NULL || *end != '\0') {
        resp->status = 400;
        abuf_puts(&resp->body, "400 Bad Request: purge wants older_than_ms=N (N >= 0)\n");
        return;
    }
    uint64_t n = 0;
    int rc = replay__purge(a->b, relais_now_ms() - ms, "admin", &n);
    if (rc < 0) {
        resp->status = 503;
        abuf_printf(&resp->body, "503 Service Unavailable: %s\n", relais_strerror(rc));
        return;
    }
    abuf_printf(&resp->body, "purged %llu dead letter(s) older than %lld ms\n",
                (unsigned long long)n, ms);
}

/* Re-reads the directory now and says how it went: what `systemctl reload` runs
 * (ExecReload=relaisctl reload), so that a directory that does not load fails the reload
 * instead of being only logged. */
static void reload(admin_t *a, http_response_t *resp)
{
    char result[512];
    notify__send("RELOADING=1");
    int rc = auth__reload(a->b, result, sizeof(result));
    notify__status(a->b, rc == 0 ? NULL : result);
    if (rc < 0) {
        resp->status = 409;
        abuf_printf(&resp->body, "409 Conflict: %s\n", result);
        return;
    }
    abuf_printf(&resp->body, "%s\n", result);
}

void actions__handle(admin_t *a, const http_request_t *req, http_response_t *resp)
{
    if (req->path_len == 14 && memcmp(req->path, "/api/v1/reload", 14) == 0) {
        reload(a, resp);
        return;
    }
    static const char replay_prefix[] = "/api/v1/replay/";
    size_t rlen = sizeof(replay_prefix) - 1;
    if (req->path_len > rlen && memcmp(req->path, replay_prefix, rlen) == 0) {
        replay(a, req->path + rlen, req->path_len - rlen, resp);
        return;
    }
    if (req->path_len == 13 && memcmp(req->path, "/api/v1/purge", 13) == 0) {
        purge(a, req, resp);
        return;
    }
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
    abuf_puts(&resp->body, "404 Not Found: the write actions are kick/ADDRESS, replay/ID, "
                           "purge?older_than_ms=N and reload\n");
}
