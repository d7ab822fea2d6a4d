/*
 * What the admin files share: the admin object, its histograms and the view of the
 * mailboxes that /metrics and the API read (admin__refresh): depths from the broker's own
 * counters, the oldest pending delivery from the store's queue index, the dead-letter count
 * from the store (recounted only after a commit, or when ADMIN_CACHE_MS passed).
 */
#ifndef RELAIS_ADMIN_INTERNAL_H
#define RELAIS_ADMIN_INTERNAL_H

#include <stdbool.h>

#include "admin.h"
#include "broker.h"
#include "http.h"

#define ADMIN_CACHE_MS 2000
#define ADMIN_MAX_CONNECTIONS 64
#define ADMIN_HEAD_TIMEOUT_MS 5000
#define ADMIN_WRITE_TIMEOUT_MS 10000
#define ADMIN_TOKEN_MAX 256
#define ADMIN_HISTORY_MINUTES 60
#define ADMIN_ESCALATIONS 512 /* escalations remembered (since the start, newest kept) */
#define ADMIN_BODY_CASES 64   /* Envelope body field numbers stay below this */

/* An escalation accepted: identifiers, types and times only (never its reason text). */
typedef struct escalation {
    char message_id[37];
    char sender[RELAIS_ADDRESS_MAX];
    char to[RELAIS_ADDRESS_MAX];
    char responsible[RELAIS_ADDRESS_MAX];
    char original_type[40];
    int64_t at_ms, deadline_ms;
} escalation_t;

typedef struct histogram {
    const double *bounds;
    size_t nbounds;
    uint64_t counts[24]; /* per bucket, not cumulative; [nbounds] is +Inf */
    double sum;
    uint64_t count;
} histogram_t;

void histogram_observe(histogram_t *h, double v);

typedef struct mailbox_row {
    const char *address; /* the mailbox's own: valid until the loop runs again */
    uint64_t queued, in_flight;
    int64_t oldest_ms; /* accepted_at of the oldest pending delivery (business time); 0 */
    bool online, pool;
} mailbox_row_t;

typedef struct admin {
    broker_t *b;
    http_server_t *http, *ctl;
    char http_bound[80];
    char ctl_path[512];
    char token[ADMIN_TOKEN_MAX];
    bool need_token;
    int64_t started_ms; /* wall clock */
    double start_time_s;

    histogram_t commit_seconds, commit_ops, accept_seconds;
    uint64_t commit_failures;
    bool store_failing;
    char store_reason[128];

    char dir_digest[65]; /* BLAKE2b-256 of the directory file, hex; "" without one */
    int64_t dir_loaded_ms;

    /* The mailboxes holding pending deliveries, by address (admin__refresh). */
    mailbox_row_t *rows;
    size_t nrows, rows_cap;
    bool store_failed; /* a store read failed during the last refresh */
    /* The dead-letter count, and when and at which commit it was counted. */
    uint64_t dead_letters;
    int64_t dead_at_ms; /* mono */
    uint64_t dead_gen;

    /* Accepted messages by body type, and the escalations accepted since the start. */
    uint64_t accepted_by_type[ADMIN_BODY_CASES];
    escalation_t escalations[ADMIN_ESCALATIONS];
    size_t esc_next, esc_count; /* ring: next slot to write, slots used */

    /* Accepted messages per minute over the last hour, for the dashboard's chart. */
    uv_timer_t minute_timer;
    bool timer_open;
    uint64_t history[ADMIN_HISTORY_MINUTES];
    unsigned history_head; /* index of the current minute */
    uint64_t history_base; /* b->stats.accepted at the start of the current minute */
    int64_t history_started_ms;
} admin_t;

/* Rebuilds a->rows (and the dead-letter count when due). */
void admin__refresh(admin_t *a);

/* Whether the broker is ready; the reason when not. */
bool admin__ready(admin_t *a, char *reason, size_t reason_len);

void metrics__render(admin_t *a, abuf_t *out);
/* GET /metrics/agents: per-address series, opt-in (one series per agent and mailbox). */
void metrics__render_agents(admin_t *a, abuf_t *out);

/* The API under /api/v1/ (path after the prefix). text: aligned tables for relaisctl. */
void api__handle(admin_t *a, const char *path, size_t path_len, const http_request_t *req,
                 bool text, http_response_t *resp);

/* POST on the control socket: the write actions (actions.c). */
void actions__handle(admin_t *a, const http_request_t *req, http_response_t *resp);

/* The dashboard's static files, embedded at build time (assets.c, generated). */
typedef struct admin_asset {
    const char *path;
    const char *content_type;
    const unsigned char *data;
    size_t len;
} admin_asset_t;
const admin_asset_t *assets__find(const char *path, size_t len);

/* A message id from 32 hexadecimal digits (dashes allowed): 0, or -1. */
int api__parse_id(const char *s, size_t len, uint8_t id[RELAIS_MESSAGE_ID_LEN]);

#endif /* RELAIS_ADMIN_INTERNAL_H */
