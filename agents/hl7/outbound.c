/*
 * Outbound HL7: closing the loop with the hospital (IHE 360X's idea). For a channel that
 * names the hospital's own MLLP endpoint (`outbound:`), what becomes of each message the
 * gateway produced — the broker's receipts (processed, refused, expired) and the answers in
 * its conversation (care task updates, appointment confirmations, notes, …) — is sent back
 * as an ORU^R01 status message (docs/HL7.md says why that type). Each is queued in the
 * gateway's SQLite store before the receipt or delivery is acknowledged to the broker, then
 * sent one at a time, in order, over one MLLP connection: retried until AA (or CA), after
 * AR, a timeout or a lost connection; put aside on AE, logged. Nothing queued is lost across
 * restarts: the queue is read again at start.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gw_internal.h"
#include "mllp.h"
#include "relais/log.h"

#define RETRY_MS 1000

enum { OUT_DOWN, OUT_CONNECTING, OUT_IDLE, OUT_AWAIT, OUT_CLOSING };

static void out_connect(gw_channel_t *ch);
static void send_next(gw_channel_t *ch);
static void out_drop(gw_channel_t *ch, const char *why);

/* Appends text escaped for the default delimiters (line breaks become spaces). */
static size_t escape(char *out, size_t cap, const char *text)
{
    size_t o = 0;
    for (const char *p = text; *p && o + 4 < cap; p++) {
        const char *e = NULL;
        switch (*p) {
        case '|':
            e = "\\F\\";
            break;
        case '^':
            e = "\\S\\";
            break;
        case '~':
            e = "\\R\\";
            break;
        case '&':
            e = "\\T\\";
            break;
        case '\\':
            e = "\\E\\";
            break;
        case '\r':
        case '\n':
            e = " ";
            break;
        default:
            break;
        }
        if (e != NULL) {
            size_t n = strlen(e);
            memcpy(out + o, e, n);
            o += n;
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
    return o;
}

int out__enqueue(gw_channel_t *ch, const hl7_produced_t *p, const char *status)
{
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char ts[32], ctl[40], e_status[1024], e_ctl[400], e_enc[256], e_local[256];
    strftime(ts, sizeof ts, "%Y%m%d%H%M%S+0000", &tm);
    snprintf(ctl, sizeof ctl, "RO%lld%04u", (long long)relais_wall_ms(),
             (unsigned)(++ch->out_ctl % 10000));
    escape(e_status, sizeof e_status, status);
    escape(e_ctl, sizeof e_ctl, p->control_id);
    escape(e_enc, sizeof e_enc, p->encounter_id);
    escape(e_local, sizeof e_local, p->local_id);
    const hl7_channel_t *c = ch->cfg;
    char msg[4096];
    int n =
        snprintf(msg, sizeof msg,
                 "MSH|^~\\&|RELAIS|%s|%s|%s|%s||ORU^R01^ORU_R01|%s|P|2.5|||AL|NE||"
                 "UNICODE UTF-8\r"
                 "PID|1||%s^^^^PI\r"
                 "PV1|1|N||||||||||||||||||%s\r"
                 "OBR|1|%s||RELAIS-FOLLOWUP^Relais follow-up^L|||%s\r"
                 "OBX|1|ST|RELAIS-STATUS^Relais status^L||%s||||||F|||%s\r",
                 directory_territory(ch->gw->dir), c->n_applications > 0 ? c->applications[0] : "",
                 c->n_facilities > 0 ? c->facilities[0] : "", ts, ctl, e_local, e_enc, e_ctl, ts,
                 e_status, ts);
    if (n < 0 || (size_t)n >= sizeof msg) return RELAIS_EINVALID;
    int rc = hl7_store_enqueue(ch->gw->store, c->name, msg, (size_t)n);
    if (rc == 0) {
        RLOG(RELAIS_LOG_INFO, "hl7", "outbound queued channel=%s control=%s for=%s", c->name, ctl,
             p->control_id);
        if (ch->out_state == OUT_IDLE) send_next(ch);
    }
    return rc;
}

static void on_retry(uv_timer_t *t)
{
    gw_channel_t *ch = t->data;
    if (ch->gw->stopping) return;
    if (ch->out_state == OUT_DOWN) {
        out_connect(ch);
    } else if (ch->out_state == OUT_IDLE) {
        send_next(ch);
    } else if (ch->out_state == OUT_AWAIT) {
        out_drop(ch, "no ACK in time"); /* reconnects, then sends the same message again */
    }
}

static void out_closed(uv_handle_t *h)
{
    gw_channel_t *ch = h->data;
    ch->out_state = OUT_DOWN;
    if (!ch->gw->stopping) uv_timer_start(&ch->out_timer, on_retry, RETRY_MS, 0);
}

static void out_drop(gw_channel_t *ch, const char *why)
{
    if (ch->out_state == OUT_CLOSING || ch->out_state == OUT_DOWN) return;
    RLOG(RELAIS_LOG_INFO, "hl7", "outbound channel=%s disconnected reason=\"%s\"", ch->cfg->name,
         why);
    ch->out_state = OUT_CLOSING;
    uv_timer_stop(&ch->out_timer);
    uv_close((uv_handle_t *)&ch->out_tcp, out_closed);
}

static void on_written(uv_write_t *req, int status)
{
    gw_channel_t *ch = req->data;
    free(req);
    if (status < 0 && !ch->gw->stopping) out_drop(ch, uv_strerror(status));
}

static void send_next(gw_channel_t *ch)
{
    if (ch->out_state != OUT_IDLE || ch->gw->stopping) return;
    char *msg;
    size_t len;
    int64_t seq;
    int rc = hl7_store_next_out(ch->gw->store, ch->cfg->name, &seq, &msg, &len);
    if (rc != 1) return; /* nothing queued (or the store failed: the next event retries) */
    uint8_t *frame;
    size_t flen;
    if (mllp_wrap(msg, len, &frame, &flen) != 0) abort();
    free(msg);
    uv_write_t *req = malloc(sizeof *req + flen);
    if (req == NULL) abort();
    memcpy((uint8_t *)(req + 1), frame, flen);
    free(frame);
    req->data = ch;
    uv_buf_t b = uv_buf_init((char *)(req + 1), (unsigned)flen);
    ch->out_seq = seq;
    ch->out_state = OUT_AWAIT;
    if (uv_write(req, (uv_stream_t *)&ch->out_tcp, &b, 1, on_written) != 0) {
        free(req);
        out_drop(ch, "write failed");
        return;
    }
    uv_timer_start(&ch->out_timer, on_retry, ch->gw->cfg->ack_timeout_ms, 0);
}

/* The hospital's answer to the message in flight. */
static void on_ack(gw_channel_t *ch, const char *data, size_t len)
{
    hl7_msg_t *m = NULL;
    hl7_error_t err;
    char code[4] = "";
    if (hl7_parse(data, len, NULL, &m, &err) == 0) {
        hl7_get_in(m, "MSA", 1, 1, code, sizeof code);
        hl7_msg_free(&m);
    }
    if (ch->out_state != OUT_AWAIT) return;
    uv_timer_stop(&ch->out_timer);
    ch->out_state = OUT_IDLE;
    if (strcmp(code, "AA") == 0 || strcmp(code, "CA") == 0) {
        hl7_store_out_done(ch->gw->store, ch->out_seq, 1);
        RLOG(RELAIS_LOG_INFO, "hl7", "outbound channel=%s seq=%lld ack=%s", ch->cfg->name,
             (long long)ch->out_seq, code);
        send_next(ch);
    } else if (strcmp(code, "AE") == 0 || strcmp(code, "CE") == 0) {
        hl7_store_out_done(ch->gw->store, ch->out_seq, 2);
        RLOG(RELAIS_LOG_WARN, "hl7", "outbound channel=%s seq=%lld ack=%s: put aside",
             ch->cfg->name, (long long)ch->out_seq, code);
        send_next(ch);
    } else {
        /* AR, CR or an answer that is not an ACK: the same message again, a little later. */
        RLOG(RELAIS_LOG_INFO, "hl7", "outbound channel=%s seq=%lld ack=%s: retrying", ch->cfg->name,
             (long long)ch->out_seq, code[0] ? code : "unreadable");
        uv_timer_start(&ch->out_timer, on_retry, RETRY_MS, 0);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_channel_t *ch = h->data;
    *buf =
        uv_buf_init((char *)ch->out_in + ch->out_len, (unsigned)(sizeof ch->out_in - ch->out_len));
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    gw_channel_t *ch = s->data;
    if (n < 0) {
        out_drop(ch, n == UV_EOF ? "closed by the hospital" : uv_strerror((int)n));
        return;
    }
    ch->out_len += (size_t)n;
    for (;;) {
        size_t scan = 0, start, flen, consumed;
        int rc = mllp_extract(ch->out_in, ch->out_len, sizeof ch->out_in - 3, &scan, &start, &flen,
                              &consumed);
        if (rc < 0) {
            out_drop(ch, mllp_strerror(rc));
            return;
        }
        if (rc == MLLP_FRAME) on_ack(ch, (const char *)ch->out_in + start, flen);
        memmove(ch->out_in, ch->out_in + consumed, ch->out_len - consumed);
        ch->out_len -= consumed;
        if (rc == MLLP_MORE || ch->out_state == OUT_CLOSING) break;
    }
}

static void on_connect(uv_connect_t *req, int status)
{
    gw_channel_t *ch = req->data;
    if (ch->out_state != OUT_CONNECTING) return;
    if (status < 0) {
        RLOG(RELAIS_LOG_INFO, "hl7", "outbound channel=%s connect: %s (retrying)", ch->cfg->name,
             uv_strerror(status));
        ch->out_state = OUT_CLOSING;
        uv_close((uv_handle_t *)&ch->out_tcp, out_closed);
        return;
    }
    RLOG(RELAIS_LOG_INFO, "hl7", "outbound channel=%s connected", ch->cfg->name);
    ch->out_state = OUT_IDLE;
    ch->out_len = 0;
    uv_read_start((uv_stream_t *)&ch->out_tcp, on_alloc, on_read);
    send_next(ch);
}

static void out_connect(gw_channel_t *ch)
{
    const hl7_channel_t *c = ch->cfg;
    struct sockaddr_storage ss;
    int rc = strchr(c->outbound_host, ':') != NULL
                 ? uv_ip6_addr(c->outbound_host, c->outbound_port, (struct sockaddr_in6 *)&ss)
                 : uv_ip4_addr(c->outbound_host, c->outbound_port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "hl7", "outbound channel=%s: '%s' is not a numeric address", c->name,
             c->outbound_host);
        return;
    }
    uv_tcp_init(ch->gw->loop, &ch->out_tcp);
    ch->out_tcp.data = ch;
    ch->out_connect.data = ch;
    ch->out_state = OUT_CONNECTING;
    if (uv_tcp_connect(&ch->out_connect, &ch->out_tcp, (const struct sockaddr *)&ss, on_connect) !=
        0) {
        ch->out_state = OUT_CLOSING;
        uv_close((uv_handle_t *)&ch->out_tcp, out_closed);
    }
}

int out__start(gw_channel_t *ch)
{
    if (ch->cfg->outbound_host == NULL) return 0;
    ch->out_enabled = true;
    uv_timer_init(ch->gw->loop, &ch->out_timer);
    ch->out_timer.data = ch;
    out_connect(ch);
    return 0;
}

void out__close(gw_channel_t *ch)
{
    if (!ch->out_enabled) return;
    ch->out_enabled = false;
    uv_close((uv_handle_t *)&ch->out_timer, NULL);
    if (ch->out_state != OUT_DOWN && ch->out_state != OUT_CLOSING) {
        ch->out_state = OUT_CLOSING;
        uv_close((uv_handle_t *)&ch->out_tcp, NULL);
    }
}
