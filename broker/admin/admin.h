/*
 * The broker's admin surface: an HTTP listener (Prometheus /metrics, /healthz, /readyz,
 * the read-only JSON API under /api/v1/ and the dashboard) and a control socket in the
 * data directory for relaisctl, both served from the broker's own loop.
 *
 * Everything here reads the broker's state on the loop thread — the sessions and
 * mailboxes maps, the counters in b->stats, the store's reader — and writes none of it:
 * the core calls in only through the few hooks below. No handler ever emits a message's
 * body or any free text an agent wrote: identifiers, types, states and times only.
 *
 * Files: admin.c (open/close, token, routing, health), metrics.c (Prometheus exposition
 * and histograms), api.c (the JSON/text API), table.c (rendering rows as JSON or as an
 * aligned table), http_*.c (the HTTP/1.1 responder), assets.c (generated: the dashboard).
 */
#ifndef RELAIS_ADMIN_H
#define RELAIS_ADMIN_H

#include <stddef.h>
#include <stdint.h>

struct broker;
struct pending_reply;

/* Starts the listener (unless cfg.admin_bind is "off") and the control socket. Refuses
 * (RELAIS_ECONFIG, logged) a non-loopback address without a valid token file, or a token
 * file readable by others. A default address already in use is a warning, not a failure;
 * an explicit one is a failure. */
int admin_open(struct broker *b);

/* Stops listening and closes every admin connection (the loop then ends). */
void admin_shutdown(struct broker *b);

/* Frees what admin_open allocated, after the loop has ended. Accepts a broker without. */
void admin_close(struct broker *b);

/* Hook: a store commit completed (status 0 or RELAIS_ESTORE), with the replies it held. */
void admin_commit_done(struct broker *b, int status, const struct pending_reply *replies, size_t n);

/* Hook: a message was accepted (committed), before it is routed. */
struct msg;
void admin_accepted(struct broker *b, const struct msg *m);

/* Hook: the territory directory was (re)loaded. */
void admin_directory_loaded(struct broker *b);

#endif /* RELAIS_ADMIN_H */
