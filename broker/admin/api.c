/*
 * The read-only API under /api/v1/: status, agents, sessions, mailboxes, one message by id,
 * dead letters and the throughput of the last hour. JSON by default; ?format=text gives
 * the aligned tables relaisctl prints.
 *
 * Metadata only, by construction: the rows below are built from addresses, roles, body
 * types, states, counts and times. An envelope read from the store is decoded for its
 * recipients and body type and nothing else; the reason text an agent gave with a refusal
 * is never read, since it is free text that may name a patient.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "admin_internal.h"
#include "directory.h"
#include "relais/errors.h"
#include "relais/log.h"
#include "table.h"

#define PAGE_DEFAULT 100
#define PAGE_MAX 1000

static const char *state_name(int st)
{
    switch (st) {
    case DELIVERY_STORED:
        return "stored";
    case DELIVERY_DELIVERING:
        return "delivering";
    case DELIVERY_ACKED:
        return "processed";
    case DELIVERY_REDELIVERING:
        return "redelivering";
    case DELIVERY_EXPIRED:
        return "expired";
    case DELIVERY_REFUSED:
        return "refused";
    default:
        return "unknown";
    }
}

static unsigned page_limit(const http_request_t *req)
{
    char v[16];
    if (!http_query_param(req, "limit", v, sizeof(v))) return PAGE_DEFAULT;
    long n = strtol(v, NULL, 10);
    return n < 1 ? 1 : n > PAGE_MAX ? PAGE_MAX : (unsigned)n;
}

static void bad_request(http_response_t *resp, const char *why)
{
    resp->status = 400;
    resp->content_type = "text/plain; charset=utf-8";
    abuf_printf(&resp->body, "400 Bad Request: %s\n", why);
}

static int cmp_row(const void *k, const void *e)
{
    return strcmp(k, ((const mailbox_row_t *)e)->address);
}

static const mailbox_row_t *find_row(admin_t *a, const char *address)
{
    return a->nrows ? bsearch(address, a->rows, a->nrows, sizeof(a->rows[0]), cmp_row) : NULL;
}

static const char *role_of(broker_t *b, const char *address)
{
    const char *r = auth__role(b, address);
    return r ? r : "";
}

/* ---- status ------------------------------------------------------------------------ */

static void status(admin_t *a, bool text, http_response_t *resp)
{
    static const table_col_t cols[] = {
        {"version", COL_STR},
        {"broker_id", COL_STR},
        {"mode", COL_STR},
        {"endpoint", COL_STR},
        {"started_at_ms", COL_TIME},
        {"uptime_ms", COL_AGE},
        {"ready", COL_BOOL},
        {"ready_reason", COL_STR},
        {"territory", COL_OPTSTR},
        {"directory_digest", COL_OPTSTR},
        {"directory_loaded_at_ms", COL_TIME},
        {"agents_known", COL_INT},
        {"sessions", COL_INT},
        {"mailboxes_pending", COL_INT},
        {"deliveries_pending", COL_INT},
        {"oldest_pending_age_ms", COL_AGE},
        {"dead_letters", COL_INT},
        {"accepted", COL_INT},
        {"duplicates", COL_INT},
        {"rejected", COL_INT},
        {"deliveries_sent", COL_INT},
        {"processed", COL_INT},
        {"refused", COL_INT},
        {"expired", COL_INT},
        {"redeliveries", COL_INT},
    };
    broker_t *b = a->b;
    admin__refresh(a);
    char reason[200];
    bool ready = admin__ready(a, reason, sizeof(reason));
    uint64_t pending = 0;
    int64_t oldest = 0, now = relais_now_ms();
    for (size_t i = 0; i < a->nrows; i++) {
        pending += a->rows[i].queued + a->rows[i].in_flight;
        if (a->rows[i].oldest_ms && (oldest == 0 || a->rows[i].oldest_ms < oldest))
            oldest = a->rows[i].oldest_ms;
    }
    char n[25][32];
    table_t t;
    table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    table_add(
        &t, RELAIS_VERSION_STRING, b->cfg.broker_id, b->cfg.insecure ? "insecure" : "curve",
        b->endpoint, table_num(n[0], a->started_ms), table_num(n[1], now - a->started_ms),
        ready ? "1" : "0", reason, b->dir ? directory_territory(b->dir) : "", a->dir_digest,
        table_num(n[2], b->dir ? a->dir_loaded_ms : 0),
        table_num(n[3], b->dir ? (long long)directory_agent_count(b->dir) : 0),
        table_num(n[4], (long long)map_count(b->sessions)), table_num(n[5], (long long)a->nrows),
        table_num(n[6], (long long)pending), oldest ? table_num(n[7], now - oldest) : "",
        table_num(n[8], (long long)a->dead_letters), table_num(n[9], (long long)b->stats.accepted),
        table_num(n[10], (long long)b->stats.duplicates),
        table_num(n[11], (long long)b->stats.rejected),
        table_num(n[12], (long long)b->stats.delivered),
        table_num(n[13], (long long)b->stats.acked), table_num(n[14], (long long)b->stats.refused),
        table_num(n[15], (long long)b->stats.expired),
        table_num(n[16], (long long)b->stats.redeliveries));
    table_render_object(&t, text, &resp->body);
    if (!text) abuf_puts(&resp->body, "\n");
    table_free(&t);
}

/* ---- sessions ---------------------------------------------------------------------- */

static const table_col_t session_cols[] = {
    {"address", COL_STR},
    {"role", COL_OPTSTR},
    {"key", COL_OPTSTR},
    {"connected_since_ms", COL_TIME},
    {"last_activity_age_ms", COL_AGE},
    {"credit", COL_INT},
    {"in_flight", COL_INT},
};

typedef struct sess_ctx {
    admin_t *a;
    session_t **v;
    size_t n, cap;
} sess_ctx_t;

static void collect_session(const void *k, size_t kl, void *v, void *ud)
{
    sess_ctx_t *c = ud;
    if (c->n == c->cap) {
        size_t ncap = c->cap ? c->cap * 2 : 32;
        session_t **nv = realloc(c->v, ncap * sizeof(*nv));
        if (nv == NULL) return;
        c->v = nv;
        c->cap = ncap;
    }
    c->v[c->n++] = v;
}

static int cmp_session(const void *x, const void *y)
{
    return strcmp((*(session_t *const *)x)->address, (*(session_t *const *)y)->address);
}

static void sessions(admin_t *a, bool text, http_response_t *resp)
{
    sess_ctx_t c = {.a = a};
    map_foreach(a->b->sessions, collect_session, &c);
    if (c.n) qsort(c.v, c.n, sizeof(c.v[0]), cmp_session);
    table_t t;
    table_init(&t, session_cols, sizeof(session_cols) / sizeof(session_cols[0]));
    int64_t mono = relais_mono_ms();
    for (size_t i = 0; i < c.n; i++) {
        session_t *s = c.v[i];
        char n[4][32], key[20];
        /* A prefix of the public key: enough to tell keys apart, short enough to read. */
        snprintf(key, sizeof(key), "%.16s", s->key);
        table_add(&t, s->address, role_of(a->b, s->address), key, table_num(n[0], s->opened_ms),
                  table_num(n[1], mono - s->last_seen_ms), table_num(n[2], s->window),
                  table_num(n[3], s->inflight_count));
    }
    free(c.v);
    table_render(&t, "sessions", NULL, text, &resp->body);
    table_free(&t);
}

/* ---- mailboxes and agents ---------------------------------------------------------- */

static bool is_online(broker_t *b, const char *address)
{
    mailbox_t *mb = map_get(b->mailboxes, address, strlen(address));
    return mb != NULL && mb->session != NULL;
}

static void mailboxes(admin_t *a, const http_request_t *req, bool text, http_response_t *resp)
{
    static const table_col_t cols[] = {
        {"address", COL_STR},       {"role", COL_OPTSTR}, {"online", COL_BOOL},
        {"pending", COL_INT},       {"queued", COL_INT},  {"in_flight", COL_INT},
        {"oldest_age_ms", COL_AGE},
    };
    admin__refresh(a);
    char after[RELAIS_ADDRESS_MAX] = "";
    http_query_param(req, "after", after, sizeof(after));
    unsigned limit = page_limit(req);
    table_t t;
    table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    int64_t now = relais_now_ms();
    const char *next = NULL;
    for (size_t i = 0; i < a->nrows; i++) {
        const mailbox_row_t *r = &a->rows[i];
        if (after[0] && strcmp(r->address, after) <= 0) continue;
        if (t.nrows == limit) {
            next = t.cells[(t.nrows - 1) * t.ncols];
            break;
        }
        char n[4][32];
        table_add(&t, r->address, r->pool ? "pool" : role_of(a->b, r->address),
                  r->online ? "1" : "0", table_num(n[0], (long long)(r->queued + r->in_flight)),
                  table_num(n[1], (long long)r->queued), table_num(n[2], (long long)r->in_flight),
                  r->oldest_ms ? table_num(n[3], now - r->oldest_ms) : "");
    }
    table_render(&t, "mailboxes", next, text, &resp->body);
    table_free(&t);
}

static void agents(admin_t *a, bool text, http_response_t *resp)
{
    static const table_col_t cols[] = {
        {"address", COL_STR}, {"role", COL_OPTSTR},       {"online", COL_BOOL},
        {"pending", COL_INT}, {"oldest_age_ms", COL_AGE},
    };
    broker_t *b = a->b;
    admin__refresh(a);
    table_t t;
    table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    int64_t now = relais_now_ms();
    size_t nd = b->dir ? directory_agent_count(b->dir) : 0;
    for (size_t i = 0; i < nd; i++) {
        const dir_agent_t *ag = directory_agent_at(b->dir, i);
        const mailbox_row_t *r = find_row(a, ag->address);
        char n[2][32];
        table_add(&t, ag->address, dir_role_name(ag->role), is_online(b, ag->address) ? "1" : "0",
                  table_num(n[0], r ? (long long)(r->queued + r->in_flight) : 0),
                  r && r->oldest_ms ? table_num(n[1], now - r->oldest_ms) : "");
    }
    /* Without a directory (insecure development) the agents are whoever connected. */
    if (b->dir == NULL) {
        sess_ctx_t c = {.a = a};
        map_foreach(b->sessions, collect_session, &c);
        if (c.n) qsort(c.v, c.n, sizeof(c.v[0]), cmp_session);
        for (size_t i = 0; i < c.n; i++) {
            const mailbox_row_t *r = find_row(a, c.v[i]->address);
            char n[2][32];
            table_add(&t, c.v[i]->address, "", "1",
                      table_num(n[0], r ? (long long)(r->queued + r->in_flight) : 0),
                      r && r->oldest_ms ? table_num(n[1], now - r->oldest_ms) : "");
        }
        free(c.v);
    }
    table_render(&t, "agents", NULL, text, &resp->body);
    table_free(&t);
}

/* ---- dead letters ------------------------------------------------------------------ */

static const char *body_type(const uint8_t *env, size_t len)
{
    if (env == NULL || len == 0) return "";
    Relais__V1__Envelope *e = relais__v1__envelope__unpack(NULL, len, env);
    if (e == NULL) return "";
    const char *name = relais_body_name(e->body_case); /* static strings */
    relais__v1__envelope__free_unpacked(e, NULL);
    return name;
}

static int add_dead(void *ud, const store_dead_letter_t *r)
{
    table_t *t = ud;
    char n[2][32], id[37];
    table_add(t, table_num(n[0], (long long)r->seq),
              relais_id_format(r->message_id, r->message_id_len, id), r->sender, r->recipient,
              body_type(r->envelope, r->envelope_len), state_name(r->state),
              table_num(n[1], r->at_ms));
    return 0;
}

static void deadletters(admin_t *a, const http_request_t *req, bool text, http_response_t *resp)
{
    static const table_col_t cols[] = {
        {"seq", COL_INT},       {"message_id", COL_STR},   {"sender", COL_STR},
        {"recipient", COL_STR}, {"body_type", COL_OPTSTR}, {"reason", COL_STR},
        {"at_ms", COL_TIME},
    };
    char v[24] = "";
    uint64_t before = 0;
    if (http_query_param(req, "before", v, sizeof(v))) {
        char *end;
        before = strtoull(v, &end, 10);
        if (*end != '\0' || v[0] == '\0') {
            bad_request(resp, "before wants a sequence number (the next of a previous page)");
            return;
        }
    }
    unsigned limit = page_limit(req);
    table_t t;
    table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    if (store_sqlite_dead_letters(a->b->store, before, limit, add_dead, &t) < 0) {
        table_free(&t);
        resp->status = 503;
        abuf_puts(&resp->body, "503 Service Unavailable: the store could not be read\n");
        return;
    }
    char next[32] = "";
    /* Pages continue with seq < next. A full page's last sequence may have recipients on
     * the next page too: its rows move there whole (seq < last + 1), unless the page holds
     * nothing else. */
    if (t.nrows == limit && t.nrows > 0) {
        unsigned long long last = strtoull(t.cells[(t.nrows - 1) * t.ncols], NULL, 10);
        size_t keep = t.nrows;
        while (keep > 0 && strtoull(t.cells[(keep - 1) * t.ncols], NULL, 10) == last) keep--;
        if (keep > 0) {
            for (size_t i = keep * t.ncols; i < t.nrows * t.ncols; i++) free(t.cells[i]);
            t.nrows = keep;
            snprintf(next, sizeof(next), "%llu", last + 1);
        } else {
            snprintf(next, sizeof(next), "%llu", last);
        }
    }
    table_render(&t, "dead_letters", next, text, &resp->body);
    table_free(&t);
}

/* ---- one message ------------------------------------------------------------------- */

int api__parse_id(const char *s, size_t len, uint8_t id[RELAIS_MESSAGE_ID_LEN])
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '-') continue;
        int v = (c >= '0' && c <= '9')   ? c - '0'
                : (c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (c >= 'A' && c <= 'F') ? c - 'A' + 10
                                         : -1;
        if (v < 0 || n >= 2 * RELAIS_MESSAGE_ID_LEN) return -1;
        if (n % 2 == 0)
            id[n / 2] = (uint8_t)(v << 4);
        else
            id[n / 2] |= (uint8_t)v;
        n++;
    }
    return n == 2 * RELAIS_MESSAGE_ID_LEN ? 0 : -1;
}

typedef struct msg_view {
    bool found, have_env;
    uint64_t seq;
    char sender[RELAIS_ADDRESS_MAX];
    int64_t accepted_at, expires_at;
    int body_case, priority;
    char *to[RELAIS_MAX_RECIPIENTS];
    size_t nto;
    /* Per recipient (index in to): what the store says. */
    int state[RELAIS_MAX_RECIPIENTS];
    uint32_t attempt[RELAIS_MAX_RECIPIENTS];
    int64_t at[RELAIS_MAX_RECIPIENTS];
    bool known[RELAIS_MAX_RECIPIENTS];
} msg_view_t;

static int add_msg_row(void *ud, const store_message_row_t *r)
{
    msg_view_t *v = ud;
    /* Several senders may use one id: the first message found is the one shown. */
    if (v->found && r->seq != v->seq) return 0;
    v->found = true;
    v->seq = r->seq;
    if (r->sender) snprintf(v->sender, sizeof(v->sender), "%s", r->sender);
    if (r->accepted_at_ms) v->accepted_at = r->accepted_at_ms;
    if (r->expires_at_ms) v->expires_at = r->expires_at_ms;
    if (!v->have_env && r->envelope != NULL) {
        Relais__V1__Envelope *e = relais__v1__envelope__unpack(NULL, r->envelope_len, r->envelope);
        if (e != NULL) {
            v->have_env = true;
            v->body_case = e->body_case;
            v->priority = e->priority;
            for (size_t i = 0; i < e->n_to && i < RELAIS_MAX_RECIPIENTS; i++)
                v->to[v->nto++] = strdup(e->to[i] ? e->to[i] : "");
            if (!v->expires_at) v->expires_at = e->expires_at_ms;
            relais__v1__envelope__free_unpacked(e, NULL);
        }
    }
    if (r->kind == 'k' || r->recipient == NULL) return 0;
    for (size_t i = 0; i < v->nto; i++)
        if (v->to[i] && strcmp(v->to[i], r->recipient) == 0) {
            v->known[i] = true;
            v->state[i] = r->state;
            v->attempt[i] = r->attempt;
            v->at[i] = r->at_ms;
        }
    return 0;
}

static void message(admin_t *a, const char *id_s, size_t id_len, bool text, http_response_t *resp)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    if (api__parse_id(id_s, id_len, id) < 0) {
        bad_request(resp, "a message id is 32 hexadecimal digits (dashes allowed)");
        return;
    }
    msg_view_t v;
    memset(&v, 0, sizeof(v));
    int rc = store_sqlite_message(a->b->store, id, sizeof(id), add_msg_row, &v);
    /* Rows with a recipient ('p', 'd') carry the envelope too: recipients are known by the
     * time they are matched. */
    if (rc < 0) {
        resp->status = 503;
        abuf_puts(&resp->body, "503 Service Unavailable: the store could not be read\n");
        goto out;
    }
    if (!v.found) {
        resp->status = 404;
        abuf_puts(&resp->body, "404 Not Found: no message with this id is known to the store "
                               "(never accepted, or older than the deduplication retention)\n");
        goto out;
    }
    /* What is in memory is newer than the store: a delivery sent is DELIVERING now. */
    msg_t *m = map_get(a->b->msgs, &v.seq, sizeof(v.seq));
    for (size_t i = 0; m != NULL && i < m->ndeliveries; i++) {
        delivery_t *d = m->deliveries ? m->deliveries[i] : NULL;
        if (d == NULL) continue;
        for (size_t k = 0; k < v.nto; k++)
            if (v.to[k] && strcmp(v.to[k], d->mbox->address) == 0) {
                v.known[k] = true;
                v.state[k] = d->state;
                v.attempt[k] = d->attempt;
            }
    }
    static const table_col_t mcols[] = {
        {"message_id", COL_STR},     {"seq", COL_INT},       {"sender", COL_STR},
        {"body_type", COL_OPTSTR},   {"priority", COL_STR},  {"accepted_at_ms", COL_TIME},
        {"expires_at_ms", COL_TIME}, {"complete", COL_BOOL},
    };
    static const table_col_t rcols[] = {
        {"recipient", COL_STR},
        {"state", COL_STR},
        {"attempt", COL_INT},
        {"at_ms", COL_TIME},
    };
    bool complete = !v.have_env; /* only the deduplication key is left: every delivery ended */
    char n[4][32], idbuf[37];
    table_t mt, rt;
    table_init(&mt, mcols, sizeof(mcols) / sizeof(mcols[0]));
    table_init(&rt, rcols, sizeof(rcols) / sizeof(rcols[0]));
    for (size_t k = 0; k < v.nto; k++) {
        /* Gone from both the pending deliveries and the dead letters: processed. */
        const char *st = v.known[k] ? state_name(v.state[k]) : "processed";
        table_add(&rt, v.to[k], st, table_num(n[0], v.known[k] ? v.attempt[k] : 0),
                  table_num(n[1], v.known[k] ? v.at[k] : 0));
    }
    table_add(&mt, relais_id_format(id, sizeof(id), idbuf), table_num(n[2], (long long)v.seq),
              v.sender, v.have_env ? relais_body_name(v.body_case) : "",
              v.have_env ? (v.priority ? "urgent" : "routine") : "", table_num(n[3], v.accepted_at),
              table_num(n[0], v.expires_at), complete ? "1" : "0");
    if (text) {
        table_render_object(&mt, true, &resp->body);
        abuf_puts(&resp->body, "\n");
        if (complete)
            abuf_puts(&resp->body, "every delivery ended; the store keeps no per-recipient "
                                   "detail of completed messages (see the audit journal)\n");
        else
            table_render(&rt, "recipients", NULL, true, &resp->body);
    } else {
        abuf_puts(&resp->body, "{\"message\":");
        table_render_object(&mt, false, &resp->body);
        abuf_puts(&resp->body, ",\"recipients\":");
        table_json_array(&rt, &resp->body);
        abuf_puts(&resp->body, "}\n");
    }
    table_free(&mt);
    table_free(&rt);
out:
    for (size_t k = 0; k < v.nto; k++) free(v.to[k]);
}

/* ---- at risk ----------------------------------------------------------------------- */

typedef struct risk_ctx {
    table_t *t;
    int64_t now;
} risk_ctx_t;

static int add_risk(void *ud, const store_message_row_t *r)
{
    risk_ctx_t *c = ud;
    char n[3][32], id[37] = "";
    uint8_t mid[RELAIS_MESSAGE_ID_LEN];
    const char *type = "";
    Relais__V1__Envelope *e = relais__v1__envelope__unpack(NULL, r->envelope_len, r->envelope);
    if (e != NULL) {
        type = relais_body_name(e->body_case);
        if (e->message_id.len == RELAIS_MESSAGE_ID_LEN) {
            memcpy(mid, e->message_id.data, sizeof(mid));
            relais_id_format(mid, sizeof(mid), id);
        }
        relais__v1__envelope__free_unpacked(e, NULL);
    }
    int64_t left = r->expires_at_ms - c->now;
    table_add(c->t, table_num(n[0], left > 0 ? left : 0), id, r->sender, r->recipient, type,
              state_name(r->state), table_num(n[1], r->attempt),
              table_num(n[2], r->accepted_at_ms));
    return 0;
}

static void atrisk(admin_t *a, const http_request_t *req, bool text, http_response_t *resp)
{
    static const table_col_t cols[] = {
        {"deadline_in_ms", COL_AGE}, {"message_id", COL_STR},      {"sender", COL_STR},
        {"recipient", COL_STR},      {"body_type", COL_OPTSTR},    {"state", COL_STR},
        {"attempt", COL_INT},        {"accepted_at_ms", COL_TIME},
    };
    int64_t within = 24LL * 3600 * 1000;
    char v[24];
    if (http_query_param(req, "within_ms", v, sizeof(v))) {
        char *end;
        long long x = strtoll(v, &end, 10);
        if (*end != '\0' || v[0] == '\0' || x < 0) {
            bad_request(resp, "within_ms wants a number of milliseconds");
            return;
        }
        within = x;
    }
    table_t t;
    table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    risk_ctx_t c = {.t = &t, .now = relais_now_ms()};
    if (store_sqlite_expiring(a->b->store, c.now + within, page_limit(req), add_risk, &c) < 0) {
        table_free(&t);
        resp->status = 503;
        abuf_puts(&resp->body, "503 Service Unavailable: the store could not be read\n");
        return;
    }
    table_render(&t, "at_risk", NULL, text, &resp->body);
    table_free(&t);
}

/* ---- escalations ------------------------------------------------------------------ */

static void escalations(admin_t *a, const http_request_t *req, bool text, http_response_t *resp)
{
    static const table_col_t cols[] = {
        {"at_ms", COL_TIME},       {"message_id", COL_STR},     {"sender", COL_STR},
        {"to", COL_OPTSTR},        {"responsible", COL_OPTSTR}, {"original_type", COL_OPTSTR},
        {"deadline_ms", COL_TIME},
    };
    /* The last 24 hours by default; ?since_ms= for another window. */
    int64_t since = relais_now_ms() - 24LL * 3600 * 1000;
    char v[24];
    if (http_query_param(req, "since_ms", v, sizeof(v))) {
        char *end;
        long long x = strtoll(v, &end, 10);
        if (*end != '\0' || v[0] == '\0') {
            bad_request(resp, "since_ms wants milliseconds since the epoch");
            return;
        }
        since = x;
    }
    table_t t;
    table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    /* Newest first: walk the ring backwards from the last one written. */
    for (size_t k = 0; k < a->esc_count; k++) {
        size_t i = (a->esc_next + ADMIN_ESCALATIONS - 1 - k) % ADMIN_ESCALATIONS;
        const escalation_t *e = &a->escalations[i];
        if (e->at_ms < since) continue;
        char n[2][32];
        table_add(&t, table_num(n[0], e->at_ms), e->message_id, e->sender, e->to, e->responsible,
                  e->original_type, table_num(n[1], e->deadline_ms));
    }
    table_render(&t, "escalations", NULL, text, &resp->body);
    table_free(&t);
}

/* ---- throughput -------------------------------------------------------------------- */

static void throughput(admin_t *a, bool text, http_response_t *resp)
{
    static const table_col_t cols[] = {{"minute_start_ms", COL_TIME}, {"accepted", COL_INT}};
    table_t t;
    table_init(&t, cols, sizeof(cols) / sizeof(cols[0]));
    /* Oldest first; the last row is the current, unfinished minute. */
    for (unsigned i = 1; i <= ADMIN_HISTORY_MINUTES; i++) {
        unsigned idx = (a->history_head + i) % ADMIN_HISTORY_MINUTES;
        int64_t start = a->history_started_ms - (int64_t)(ADMIN_HISTORY_MINUTES - i) * 60000;
        if (start < a->started_ms - 1000) continue; /* before relaisd started */
        uint64_t v =
            i == ADMIN_HISTORY_MINUTES ? a->b->stats.accepted - a->history_base : a->history[idx];
        char n[2][32];
        table_add(&t, table_num(n[0], start), table_num(n[1], (long long)v));
    }
    table_render(&t, "minutes", NULL, text, &resp->body);
    table_free(&t);
}

void api__handle(admin_t *a, const char *path, size_t len, const http_request_t *req, bool text,
                 http_response_t *resp)
{
    resp->status = 200;
    resp->content_type = text ? "text/plain; charset=utf-8" : "application/json";
#define IS(p) (len == sizeof(p) - 1 && memcmp(path, p, len) == 0)
    if (IS("status"))
        status(a, text, resp);
    else if (IS("sessions"))
        sessions(a, text, resp);
    else if (IS("mailboxes"))
        mailboxes(a, req, text, resp);
    else if (IS("agents"))
        agents(a, text, resp);
    else if (IS("deadletters"))
        deadletters(a, req, text, resp);
    else if (IS("throughput"))
        throughput(a, text, resp);
    else if (IS("escalations"))
        escalations(a, req, text, resp);
    else if (IS("atrisk"))
        atrisk(a, req, text, resp);
    else if (len > 9 && memcmp(path, "messages/", 9) == 0)
        message(a, path + 9, len - 9, text, resp);
    else {
        resp->status = 404;
        resp->content_type = "text/plain; charset=utf-8";
        abuf_puts(&resp->body, "404 Not Found: the API has status, agents, sessions, mailboxes, "
                               "messages/ID, deadletters, escalations, atrisk and throughput\n");
    }
#undef IS
    if (resp->status != 200) resp->content_type = "text/plain; charset=utf-8";
}
