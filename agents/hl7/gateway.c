/*
 * The relais-hl7 gateway (see gateway.h): from a frame to its ACK. Each frame is parsed,
 * looked up in the acknowledgement store (duplicates), mapped (map.c) and its Relais
 * messages submitted through the channel's agent under message ids derived from the
 * message's key and content — so that a message sent again after a crash or an AR
 * produces the same ids, which the broker answers Accepted{duplicate} without delivering
 * anything twice. The ACK follows the broker's answers; AA is stored before it is sent.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "gw_internal.h"
#include "map.h"
#include "mllp.h"
#include "relais/keys.h"
#include "relais/log.h"

#define CONTROL_MAX 200

struct gw_job {
    gw_t *gw;
    gw_channel_t *ch;
    gw_conn_t *conn; /* NULL once the connection went away */
    hl7_msg_t *msg;
    char app[128], fac[128], control[CONTROL_MAX];
    char type[32];
    const char *route;
    hl7_produced_t produced; /* for the outbound status messages, when the channel has some */
    uint8_t first_id[RELAIS_MESSAGE_ID_LEN];
    size_t n_msgs;
    unsigned pending;
    int fail; /* first failure among the broker's answers */
    char fail_reason[RELAIS_REASON_MAX];
    bool answered; /* an AR went out on timeout: the final outcome is only stored */
    uint64_t timer_id;
    uint64_t t0_ns;
};

/* ---- Answers ------------------------------------------------------------------------ */

static void now_text(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y%m%d%H%M%S+0000", &tm);
}

static const char *code_name(hl7_msg_t *m, hl7_ack_code_t code)
{
    char mode[8] = "";
    if (m != NULL) hl7_get(m, 0, 15, 0, 1, 1, mode, sizeof mode);
    static const char *const o[3] = {"AA", "AE", "AR"}, *const e[3] = {"CA", "CE", "CR"};
    return mode[0] != '\0' ? e[code] : o[code];
}

/* Builds the ACK of m (NULL: unparsed) into *ack; 0 or -ENOMEM. */
static int build_ack(hl7_msg_t *m, hl7_ack_code_t code, const hl7_error_t *err, char **ack,
                     size_t *len)
{
    uint8_t id[RELAIS_MESSAGE_ID_LEN];
    char ctl[40], hex[33], now[32];
    relais_uuid7(id);
    sodium_bin2hex(hex, sizeof hex, id, sizeof id);
    snprintf(ctl, sizeof ctl, "R%.19s", hex + 13); /* time's low bits and randomness */
    now_text(now);
    return hl7_ack_build(m, code, err, ctl, now, ack, len);
}

static void log_outcome(gw_channel_t *ch, uint64_t conn_id, const char *control, const char *type,
                        const char *ack, const char *route, size_t n, const hl7_error_t *err,
                        uint64_t t0)
{
    double ms = (double)(uv_hrtime() - t0) / 1e6;
    if (err != NULL) {
        RLOG(RELAIS_LOG_INFO, "hl7",
             "message channel=%s conn=%llu control=%s type=%s ack=%s code=%d where=%s-%u "
             "reason=\"%s\" ms=%.2f",
             ch->cfg->name, (unsigned long long)conn_id, control, type, ack, err->code,
             err->segment[0] ? err->segment : "MSG", err->field, err->text, ms);
    } else {
        RLOG(RELAIS_LOG_INFO, "hl7",
             "message channel=%s conn=%llu control=%s type=%s ack=%s route=%s messages=%zu "
             "ms=%.2f",
             ch->cfg->name, (unsigned long long)conn_id, control, type, ack, route, n, ms);
    }
}

/* Answers c now, without anything submitted; stores the ACK when store_key is set. */
static void answer(gw_conn_t *c, hl7_msg_t *m, hl7_ack_code_t code, const hl7_error_t *err,
                   const hl7_key_t *store_key, const char *control, const char *type, uint64_t t0)
{
    char *ack = NULL;
    size_t len = 0;
    if (build_ack(m, code, err, &ack, &len) != 0) {
        conn__close(c, "out of memory");
        return;
    }
    if (store_key != NULL) hl7_store_finish(c->ch->gw->store, store_key, ack, len);
    log_outcome(c->ch, c->id, control, type, code_name(m, code), "none", 0, err, t0);
    bool send = hl7_ack_wanted(m, code);
    conn__reply(c, send ? ack : NULL, len, false);
    free(ack);
}

static void job_free(gw_job_t *j)
{
    hl7_msg_free(&j->msg);
    free(j);
}

static bool retryable(int status)
{
    return status == RELAIS_EOVERLOADED || status == RELAIS_ESTORE || status == RELAIS_ECLOSED ||
           status == RELAIS_EINTERNAL || (status < 0 && status > -1000);
}

/* Every submission of j has its answer (or the timeout came): the ACK goes out. */
static void job_finish(gw_job_t *j, bool timeout)
{
    hl7_ack_code_t code = HL7_AA;
    hl7_error_t err = {0}, *e = NULL;
    if (timeout) {
        code = HL7_AR;
        e = &err;
        hl7_fail(e, HL7_ERR_INTERNAL, "", 0, 0,
                 "the broker did not confirm within %llu ms: send again",
                 (unsigned long long)j->gw->cfg->ack_timeout_ms);
    } else if (j->fail != 0) {
        code = retryable(j->fail) ? HL7_AR : HL7_AE;
        e = &err;
        hl7_fail(e, HL7_ERR_INTERNAL, "", 0, 0, "broker %s: %s", relais_err_name(j->fail),
                 j->fail_reason[0] ? j->fail_reason : relais_strerror(j->fail));
    }
    char *ack = NULL;
    size_t len = 0;
    if (build_ack(j->msg, code, e, &ack, &len) != 0) abort();
    if (code == HL7_AA) {
        if (j->ch->out_enabled) hl7_store_produced(j->gw->store, j->first_id, &j->produced);
        /* Stored before it is sent: an AA the sender saw is always found again. */
        hl7_key_t key = {j->ch->cfg->name, j->app, j->fac, j->control};
        if (hl7_store_finish(j->gw->store, &key, ack, len) != 0 && !j->answered) {
            free(ack);
            code = HL7_AR;
            hl7_fail(&err, HL7_ERR_INTERNAL, "", 0, 0, "acknowledgement store unavailable");
            e = &err;
            if (build_ack(j->msg, code, e, &ack, &len) != 0) abort();
        }
    }
    if (!j->answered) {
        j->answered = true;
        log_outcome(j->ch, j->conn != NULL ? j->conn->id : 0, j->control, j->type,
                    code_name(j->msg, code), j->route, j->n_msgs, e, j->t0_ns);
        gw_conn_t *c = j->conn;
        j->conn = NULL;
        if (c != NULL) {
            c->job = NULL;
            conn__reply(c, hl7_ack_wanted(j->msg, code) ? ack : NULL, len, false);
        }
    } else {
        RLOG(RELAIS_LOG_INFO, "hl7", "late outcome channel=%s control=%s ack=%s (stored)",
             j->ch->cfg->name, j->control, code_name(j->msg, code));
    }
    free(ack);
}

static void on_timeout(relais_agent_t *agent, void *ud)
{
    gw_job_t *j = ud;
    j->timer_id = 0;
    if (!j->answered) job_finish(j, true);
}

static void on_sent(relais_agent_t *agent, const relais_send_result_t *r, void *ud)
{
    gw_job_t *j = ud;
    if (r->status != 0 && j->fail == 0) {
        j->fail = r->status;
        snprintf(j->fail_reason, sizeof j->fail_reason, "%s", r->reason ? r->reason : "");
    }
    if (--j->pending > 0) return;
    if (j->timer_id != 0) relais_agent_timer_cancel(agent, j->timer_id);
    j->timer_id = 0;
    job_finish(j, false); /* after a timeout's AR, stores a late AA for the resend */
    job_free(j);
}

/* Message ids: BLAKE2b of the key and content, shaped as a UUIDv8 (RFC 9562). */
static void derive_ids(const gw_job_t *j, const uint8_t hash[32], size_t n,
                       uint8_t ids[][RELAIS_MESSAGE_ID_LEN])
{
    for (size_t i = 0; i < n; i++) {
        crypto_generichash_state st;
        crypto_generichash_init(&st, (const unsigned char *)"relais-hl7/1", 12, 16);
        const char *parts[4] = {j->ch->cfg->name, j->app, j->fac, j->control};
        for (int k = 0; k < 4; k++)
            crypto_generichash_update(&st, (const unsigned char *)parts[k], strlen(parts[k]) + 1);
        crypto_generichash_update(&st, hash, 32);
        uint8_t idx = (uint8_t)i;
        crypto_generichash_update(&st, &idx, 1);
        crypto_generichash_final(&st, ids[i], 16);
        ids[i][6] = (uint8_t)((ids[i][6] & 0x0F) | 0x80);
        ids[i][8] = (uint8_t)((ids[i][8] & 0x3F) | 0x80);
    }
}

/* ---- Frames ------------------------------------------------------------------------- */

void gw__frame(gw_conn_t *c, const char *data, size_t len)
{
    gw_channel_t *ch = c->ch;
    gw_t *gw = ch->gw;
    uint64_t t0 = uv_hrtime();
    hl7_error_t err = {0};
    hl7_msg_t *m = NULL;
    hl7_limits_t lim = {.max_bytes = gw->cfg->max_message_bytes};
    if (hl7_parse(data, len, &lim, &m, &err) != 0) {
        answer(c, NULL, HL7_AE, &err, NULL, "-", "-", t0);
        return;
    }
    gw_job_t *j = calloc(1, sizeof *j);
    if (j == NULL) abort();
    j->gw = gw;
    j->ch = ch;
    j->msg = m;
    j->t0_ns = t0;
    j->route = "none";
    const char *p;
    size_t n;
    hl7_raw_field(m, 0, 3, &p, &n);
    snprintf(j->app, sizeof j->app, "%.*s", (int)n, p);
    hl7_raw_field(m, 0, 4, &p, &n);
    snprintf(j->fac, sizeof j->fac, "%.*s", (int)n, p);
    hl7_raw_field(m, 0, 9, &p, &n);
    snprintf(j->type, sizeof j->type, "%.*s", (int)n, p);
    for (char *t = j->type; *t; t++) {
        if (*t == ' ' || *t == '"') *t = '_'; /* a log token */
    }
    int rc = hl7_get(m, 0, 10, 0, 1, 1, j->control, sizeof j->control);
    for (char *t = j->control; *t; t++) {
        if ((unsigned char)*t < 0x21 || *t == '"') *t = '_';
    }
    if (rc != 0 || j->control[0] == '\0') {
        hl7_fail(&err, rc != 0 ? HL7_ERR_DATA_TYPE : HL7_ERR_REQUIRED_MISSING, "MSH", 1, 10,
                 "no usable message control id");
        answer(c, m, HL7_AE, &err, NULL, "-", j->type, t0);
        job_free(j);
        return;
    }
    hl7_key_t key = {ch->cfg->name, j->app, j->fac, j->control};
    uint8_t hash[32];
    hl7_content_hash(m, hash);
    char *stored = NULL;
    size_t stored_len = 0;
    int st = hl7_store_begin(gw->store, &key, hash, &stored, &stored_len);
    if (st < 0) {
        hl7_fail(&err, HL7_ERR_INTERNAL, "", 0, 0, "acknowledgement store unavailable");
        answer(c, m, HL7_AR, &err, NULL, j->control, j->type, t0);
        job_free(j);
        return;
    }
    if (st == HL7_STORE_CONFLICT) {
        hl7_fail(&err, HL7_ERR_DUPLICATE_KEY, "MSH", 1, 10,
                 "control id already used for a different message");
        answer(c, m, HL7_AE, &err, NULL, j->control, j->type, t0);
        job_free(j);
        return;
    }
    if (st == HL7_STORE_DONE) {
        RLOG(RELAIS_LOG_INFO, "hl7",
             "message channel=%s conn=%llu control=%s type=%s "
             "duplicate=true ack=stored",
             ch->cfg->name, (unsigned long long)c->id, j->control, j->type);
        conn__reply(c, stored, stored_len, false);
        free(stored);
        job_free(j);
        return;
    }
    hl7_plan_t *plan = malloc(sizeof *plan);
    if (plan == NULL) abort();
    hl7_map_ctx_t ctx = {.ch = ch->cfg,
                         .dir = gw->dir,
                         .programmes = gw->cfg->programmes,
                         .coordinator = gw->coordinator,
                         .production = directory_production(gw->dir)};
    rc = hl7_map(&ctx, m, plan, &err);
    if (rc != 0) {
        /* Never acceptable as sent: the same message gets the same AE again. */
        answer(c, m, HL7_AE, &err, &key, j->control, j->type, t0);
        free(plan);
        job_free(j);
        return;
    }
    j->route = plan->route;
    if (strcmp(plan->route, "coordinator") == 0) {
        RLOG(RELAIS_LOG_INFO, "hl7", "route channel=%s control=%s to=coordinator reason=\"%s\"",
             ch->cfg->name, j->control, plan->route_reason);
    }
    if (!relais_agent_ready(ch->agent)) {
        hl7_fail(&err, HL7_ERR_INTERNAL, "", 0, 0, "broker unreachable: send again later");
        answer(c, m, HL7_AR, &err, NULL, j->control, j->type, t0);
        free(plan);
        job_free(j);
        return;
    }
    uint8_t ids[HL7_PLAN_MAX][RELAIS_MESSAGE_ID_LEN];
    derive_ids(j, hash, plan->n, ids);
    hl7_plan_set_ids(plan, ids);
    /* Closing the loop: the first message's receipts come back, and it names the
     * conversation in which answers arrive. */
    static const Relais__V1__Receipt__Status wanted[3] = {RELAIS__V1__RECEIPT__STATUS__PROCESSED,
                                                          RELAIS__V1__RECEIPT__STATUS__REFUSED,
                                                          RELAIS__V1__RECEIPT__STATUS__EXPIRED};
    if (ch->out_enabled) {
        plan->env[0].n_receipts = 3;
        plan->env[0].receipts = (Relais__V1__Receipt__Status *)wanted;
        memcpy(j->first_id, ids[0], RELAIS_MESSAGE_ID_LEN);
        hl7_produced_t *pr = &j->produced;
        snprintf(pr->channel, sizeof pr->channel, "%s", ch->cfg->name);
        snprintf(pr->control_id, sizeof pr->control_id, "%s", j->control);
        snprintf(pr->encounter_id, sizeof pr->encounter_id, "%s", plan->encounter);
        snprintf(pr->local_id, sizeof pr->local_id, "%s", plan->local_id);
        snprintf(pr->kind, sizeof pr->kind, "%s", plan->kind);
    }
    j->n_msgs = plan->n;
    j->conn = c;
    c->job = j;
    for (size_t i = 0; i < plan->n; i++) {
        rc = relais_agent_send(ch->agent, &plan->env[i], NULL, on_sent, j);
        if (rc != 0) {
            j->fail = rc;
            snprintf(j->fail_reason, sizeof j->fail_reason, "%s", relais_strerror(rc));
            break;
        }
        j->pending++;
    }
    free(plan);
    if (j->pending == 0) {
        job_finish(j, false);
        job_free(j);
        return;
    }
    relais_agent_timer(ch->agent, gw->cfg->ack_timeout_ms, on_timeout, j, &j->timer_id);
}

void gw__framing_error(gw_conn_t *c, int code, const char *data, size_t len)
{
    RLOG(RELAIS_LOG_WARN, "hl7", "framing channel=%s conn=%llu error=\"%s\"", c->ch->cfg->name,
         (unsigned long long)c->id, mllp_strerror(code));
    if (code == MLLP_EGARBAGE) {
        conn__reply(c, NULL, 0, true); /* not MLLP at all: nothing to answer to */
        return;
    }
    /* The frame's first segment is enough to answer it: take MSH alone. */
    size_t first = 0;
    while (first < len && data[first] != '\r' && data[first] != '\n' && data[first] != MLLP_EB &&
           data[first] != MLLP_SB)
        first++;
    hl7_msg_t *m = NULL;
    hl7_error_t perr;
    if (first > 4096 || hl7_parse(data, first, NULL, &m, &perr) != 0) m = NULL;
    hl7_error_t err;
    hl7_fail(&err, HL7_ERR_INTERNAL, "", 0, 0, "MLLP: %s", mllp_strerror(code));
    char *ack = NULL;
    size_t alen = 0;
    if (build_ack(m, HL7_AE, &err, &ack, &alen) != 0) abort();
    conn__reply(c, ack, alen, true);
    free(ack);
    hl7_msg_free(&m);
}

void gw__conn_gone(gw_conn_t *c)
{
    if (c->job != NULL) c->job->conn = NULL;
}

/* ---- Agents and start-up ------------------------------------------------------------ */

static void pick_coordinator(gw_t *gw, const directory_t *dir, char out[RELAIS_ADDRESS_MAX]);

static void on_state(relais_agent_t *agent, relais_agent_state_t s, const char *detail, void *ud)
{
    gw_channel_t *ch = ud;
    RLOG(RELAIS_LOG_INFO, "hl7", "broker channel=%s state=%s detail=\"%s\"", ch->cfg->name,
         relais_agent_state_name(s), detail ? detail : "");
}

static void on_recovered(relais_agent_t *agent, const relais_send_result_t *r, void *ud)
{
    gw_channel_t *ch = ud;
    char id[37];
    RLOG(RELAIS_LOG_INFO, "hl7", "recovered channel=%s message=%s status=%s duplicate=%d",
         ch->cfg->name, relais_id_format(r->message_id, RELAIS_MESSAGE_ID_LEN, id),
         r->status == 0 ? "accepted" : relais_err_name(r->status), r->duplicate);
}

static const char *receipt_name(int status)
{
    const ProtobufCEnumValue *v =
        protobuf_c_enum_descriptor_get_value(&relais__v1__receipt__status__descriptor, status);
    return v != NULL ? v->name : "UNKNOWN";
}

static void on_receipt(relais_agent_t *agent, const Relais__V1__Receipt *r, void *ud)
{
    gw_channel_t *ch = ud;
    char id[37];
    RLOG(RELAIS_LOG_INFO, "hl7", "receipt channel=%s message=%s recipient=%s status=%s",
         ch->cfg->name, relais_id_format(r->message_id.data, r->message_id.len, id), r->recipient,
         receipt_name(r->status));
    hl7_produced_t p;
    if (!ch->out_enabled ||
        hl7_store_find_produced(ch->gw->store, r->message_id.data, r->message_id.len, &p) != 1)
        return;
    char status[600];
    snprintf(status, sizeof status, "%s %s by %s%s%s", p.kind, receipt_name(r->status),
             r->recipient, r->reason[0] ? ": " : "", r->reason);
    out__enqueue(ch, &p, status);
}

/* What the territory sends back in a conversation the gateway opened: sent on to the
 * hospital as a status message when the channel has an outbound endpoint, else noted. */
static relais_outcome_t on_delivery(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    gw_channel_t *ch = ud;
    const Relais__V1__Envelope *env = d->envelope;
    RLOG(RELAIS_LOG_INFO, "hl7", "delivery channel=%s body=%s from=%s", ch->cfg->name,
         relais_body_name(env->body_case), env->sender);
    hl7_produced_t p;
    if (!ch->out_enabled || env->conversation_id.len == 0) return RELAIS_PROCESSED;
    int rc = hl7_store_find_produced(ch->gw->store, env->conversation_id.data,
                                     env->conversation_id.len, &p);
    if (rc < 0) return RELAIS_RETRY_LATER;
    if (rc == 0) return RELAIS_PROCESSED;
    char status[900];
    switch (env->body_case) {
    case RELAIS__V1__ENVELOPE__BODY_CARE_TASK_UPDATE: {
        const Relais__V1__CareTaskUpdate *u = env->care_task_update;
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value(
            &relais__v1__care_task_update__status__descriptor, u->status);
        snprintf(status, sizeof status, "care task %s %s by %s%s%s", u->task_id,
                 v != NULL ? v->name : "UNKNOWN", env->sender, u->reason[0] ? ": " : "", u->reason);
        break;
    }
    case RELAIS__V1__ENVELOPE__BODY_APPOINTMENT_CONFIRM:
        snprintf(status, sizeof status, "appointment %s booked by %s",
                 env->appointment_confirm->appointment_id, env->sender);
        break;
    case RELAIS__V1__ENVELOPE__BODY_NOTE:
        snprintf(status, sizeof status, "note from %s: %s", env->sender, env->note->text);
        break;
    default:
        snprintf(status, sizeof status, "%s from %s", relais_body_name(env->body_case),
                 env->sender);
        break;
    }
    /* Queued before the Ack: if the store cannot take it, the broker redelivers later. */
    return out__enqueue(ch, &p, status) == 0 ? RELAIS_PROCESSED : RELAIS_RETRY_LATER;
}

static int open_agent(gw_t *gw, gw_channel_t *ch)
{
    const hl7_config_t *cfg = gw->cfg;
    char state[1024], pub[41], sec[41], spub[41], why[256];
    snprintf(state, sizeof state, "%s/%s.state", cfg->state_dir, ch->cfg->name);
    relais_agent_options_t o = {.endpoint = cfg->endpoint,
                                .address = ch->cfg->address,
                                .software = "relais-hl7/1",
                                .loop = gw->loop,
                                .state_path = cfg->outbox_memory ? NULL : state};
    if (!cfg->insecure) {
        int rc = relais_keyfile_read(ch->cfg->key_path, pub, sec, why, sizeof why);
        if (rc == 0) rc = relais_pubkey_read(cfg->server_key, spub, why, sizeof why);
        if (rc != 0) {
            RLOG(RELAIS_LOG_ERROR, "hl7", "channel=%s keys: %s", ch->cfg->name, why);
            return RELAIS_ECONFIG;
        }
        o.curve_public_key = pub;
        o.curve_secret_key = sec;
        o.curve_server_key = spub;
    }
    int rc = relais_agent_new(&ch->agent, &o);
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "hl7", "channel=%s agent: %s", ch->cfg->name, relais_strerror(rc));
        return rc;
    }
    relais_agent_on_state(ch->agent, on_state, ch);
    relais_agent_on_recovered(ch->agent, on_recovered, ch);
    relais_agent_on_receipt(ch->agent, on_receipt, ch);
    relais_agent_on(ch->agent, 0, on_delivery, ch);
    return relais_agent_start(ch->agent);
}

int gw_start(gw_t **out, uv_loop_t *loop, const hl7_config_t *cfg, FILE *ready)
{
    *out = NULL;
    if (sodium_init() < 0) return RELAIS_EINTERNAL;
    gw_t *gw = calloc(1, sizeof *gw);
    if (gw == NULL) return -ENOMEM;
    gw->loop = loop;
    gw->cfg = cfg;
    char err[512];
    int rc = directory_load(cfg->directory, &gw->dir, err, sizeof err);
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "hl7", "directory: %s", err);
        goto fail;
    }
    pick_coordinator(gw, gw->dir, gw->coordinator);
    if (gw->coordinator[0] == '\0') {
        RLOG(RELAIS_LOG_ERROR, "hl7",
             "no coordinator: set `coordinator:` or list one in the "
             "directory (unresolved GPs go to it)");
        rc = RELAIS_ECONFIG;
        goto fail;
    }
    char path[1024];
    snprintf(path, sizeof path, "%s/acks.db", cfg->state_dir);
    rc = hl7_store_open(path, &gw->store);
    if (rc != 0) goto fail;
    for (size_t i = 0; i < cfg->n_channels; i++) {
        gw_channel_t *ch = &gw->ch[gw->n_ch++];
        ch->gw = gw;
        ch->cfg = &cfg->channels[i];
        if ((rc = open_agent(gw, ch)) != 0) goto fail;
        if ((rc = conn__listen(ch)) != 0) goto fail;
        if ((rc = out__start(ch)) != 0) goto fail;
    }
    for (size_t i = 0; i < gw->n_ch; i++) {
        RLOG(RELAIS_LOG_INFO, "hl7", "listening channel=%s listen=%s address=%s",
             gw->ch[i].cfg->name, gw->ch[i].listen_text, gw->ch[i].cfg->address);
        if (ready != NULL)
            fprintf(ready, "relais-hl7 ready channel=%s listen=%s\n", gw->ch[i].cfg->name,
                    gw->ch[i].listen_text);
    }
    if (ready != NULL) fflush(ready);
    *out = gw;
    return 0;
fail:
    gw_stop(gw);
    uv_run(loop, UV_RUN_DEFAULT);
    gw_destroy(&gw);
    return rc;
}

/* The coordinator: the configured one, else the directory's first. "" when none. */
static void pick_coordinator(gw_t *gw, const directory_t *dir, char out[RELAIS_ADDRESS_MAX])
{
    out[0] = '\0';
    if (gw->cfg->coordinator != NULL) {
        snprintf(out, RELAIS_ADDRESS_MAX, "%s", gw->cfg->coordinator);
        return;
    }
    for (size_t i = 0; i < directory_agent_count(dir); i++) {
        const dir_agent_t *a = directory_agent_at(dir, i);
        if (a->role == DIR_ROLE_COORDINATOR) {
            snprintf(out, RELAIS_ADDRESS_MAX, "%s", a->address);
            return;
        }
    }
}

int gw_reload(gw_t *gw)
{
    directory_t *dir = NULL;
    char err[512], coord[RELAIS_ADDRESS_MAX];
    int rc = directory_load(gw->cfg->directory, &dir, err, sizeof err);
    if (rc == 0) {
        pick_coordinator(gw, dir, coord);
        if (coord[0] == '\0') {
            snprintf(err, sizeof err, "no coordinator in the new directory");
            directory_destroy(&dir);
            rc = RELAIS_ECONFIG;
        }
    }
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "hl7", "directory reload failed, the previous one stays: %s", err);
        return rc;
    }
    /* Mapping is synchronous on this thread: nothing holds the old directory now. */
    directory_destroy(&gw->dir);
    gw->dir = dir;
    snprintf(gw->coordinator, sizeof gw->coordinator, "%s", coord);
    RLOG(RELAIS_LOG_INFO, "hl7", "directory reloaded agents=%zu coordinator=%s",
         directory_agent_count(dir), coord);
    return 0;
}

void gw_stop(gw_t *gw)
{
    if (gw->stopping) return;
    gw->stopping = true;
    for (size_t i = 0; i < gw->n_ch; i++) {
        conn__close_all(&gw->ch[i]);
        out__close(&gw->ch[i]);
    }
    for (size_t i = 0; i < gw->n_ch; i++) {
        if (gw->ch[i].agent != NULL) relais_agent_stop(gw->ch[i].agent);
    }
}

void gw_destroy(gw_t **gwp)
{
    if (gwp == NULL || *gwp == NULL) return;
    gw_t *gw = *gwp;
    for (size_t i = 0; i < gw->n_ch; i++) relais_agent_destroy(&gw->ch[i].agent);
    hl7_store_close(&gw->store);
    directory_destroy(&gw->dir);
    free(gw);
    *gwp = NULL;
}
