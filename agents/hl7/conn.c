/*
 * MLLP connections of relais-hl7 on uv_tcp: accepting (up to max_connections per
 * channel), buffering what arrives, cutting frames (mllp.c), one frame in flight at a
 * time, the timers that end slow or idle senders, and writing ACKs. Every disconnect the
 * gateway decides is logged with its reason; no log line carries message content.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gw_internal.h"
#include "mllp.h"
#include "relais/log.h"

#define READ_CHUNK 65536

typedef struct write_req {
    uv_write_t req;
    uint8_t *buf;
    gw_conn_t *conn;
    bool close_after;
} write_req_t;

static void process(gw_conn_t *c);

static void on_handle_closed(uv_handle_t *h)
{
    gw_conn_t *c = h->data;
    if (--c->handles > 0) return;
    free(c->in);
    free(c);
}

void conn__close(gw_conn_t *c, const char *why)
{
    if (c->closing) return;
    c->closing = true;
    RLOG(RELAIS_LOG_INFO, "hl7", "disconnect channel=%s conn=%llu reason=\"%s\"", c->ch->cfg->name,
         (unsigned long long)c->id, why);
    gw__conn_gone(c);
    c->job = NULL;
    if (c->prev != NULL) c->prev->next = c->next;
    if (c->next != NULL) c->next->prev = c->prev;
    if (c->ch->conns == c) c->ch->conns = c->next;
    c->ch->n_conns--;
    uv_close((uv_handle_t *)&c->tcp, on_handle_closed);
    uv_close((uv_handle_t *)&c->timer, on_handle_closed);
}

static void on_timer(uv_timer_t *t)
{
    gw_conn_t *c = t->data;
    conn__close(c,
                c->frame_timing ? "frame not completed in time (slow sender)" : "idle connection");
}

/* Arms the timer for what the connection waits for now. */
static void arm_timer(gw_conn_t *c)
{
    if (c->closing) return;
    const hl7_config_t *cfg = c->ch->gw->cfg;
    if (c->busy) {
        uv_timer_stop(&c->timer); /* the broker's answer has its own timeout */
        c->frame_timing = false;
    } else if (c->in_len > 0) {
        if (!c->frame_timing) {
            c->frame_timing = true;
            uv_timer_start(&c->timer, on_timer, cfg->frame_timeout_ms, 0);
        }
    } else {
        c->frame_timing = false;
        uv_timer_start(&c->timer, on_timer, cfg->idle_timeout_ms, 0);
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    gw_conn_t *c = h->data;
    if (c->in_cap - c->in_len < READ_CHUNK) {
        size_t cap = c->in_len + READ_CHUNK;
        uint8_t *p = realloc(c->in, cap);
        if (p == NULL) {
            *buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS to on_read */
            return;
        }
        c->in = p;
        c->in_cap = cap;
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, READ_CHUNK);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    gw_conn_t *c = s->data;
    if (n == UV_EOF) {
        c->eof = true;
        uv_read_stop(s);
        if (c->busy) return; /* answered first; the close follows the reply */
        conn__close(c, c->in_len > 0 ? "end of stream in the middle of a frame"
                                     : "closed by the sender");
        return;
    }
    if (n < 0) {
        conn__close(c, uv_strerror((int)n));
        return;
    }
    c->in_len += (size_t)n;
    process(c);
}

/* Takes frames from the buffer while none is in flight. */
static void process(gw_conn_t *c)
{
    if (c->in_process) return; /* an answer given synchronously: the loop below goes on */
    c->in_process = true;
    size_t max = c->ch->gw->cfg->max_message_bytes;
    while (!c->closing && !c->busy) {
        size_t start, flen, consumed;
        int rc = mllp_extract(c->in, c->in_len, max, &c->scan, &start, &flen, &consumed);
        if (rc == MLLP_FRAME) {
            c->busy = true;
            gw__frame(c, (const char *)c->in + start, flen);
        } else if (rc < 0) {
            c->busy = true;
            size_t off = consumed < c->in_len && c->in[consumed] == MLLP_SB ? consumed + 1 : 0;
            gw__framing_error(c, rc, (const char *)c->in + off, c->in_len - off);
            break;
        }
        if (consumed > 0) {
            memmove(c->in, c->in + consumed, c->in_len - consumed);
            c->in_len -= consumed;
            c->scan = 0;
            if (rc == MLLP_FRAME) c->frame_timing = false;
        }
        if (rc == MLLP_MORE) break;
    }
    c->in_process = false;
    if (c->closing) return;
    if (!c->busy && c->eof) {
        conn__close(c, c->in_len > 0 ? "end of stream in the middle of a frame"
                                     : "closed by the sender");
        return;
    }
    /* One message in flight: stop reading while it is, so the kernel holds the rest. */
    if (c->busy) {
        uv_read_stop((uv_stream_t *)&c->tcp);
    } else if (!c->eof) {
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
    }
    arm_timer(c);
}

static void on_written(uv_write_t *req, int status)
{
    write_req_t *w = (write_req_t *)req;
    free(w->buf);
    gw_conn_t *c = w->conn;
    bool close_after = w->close_after;
    free(w);
    if (c->closing) return;
    if (status < 0) {
        conn__close(c, uv_strerror(status));
    } else if (close_after) {
        conn__close(c, "framing error answered");
    }
}

void conn__reply(gw_conn_t *c, const char *ack, size_t len, bool close_after)
{
    if (c == NULL || c->closing) return;
    c->busy = false;
    c->job = NULL;
    if (ack != NULL) {
        write_req_t *w = calloc(1, sizeof *w);
        size_t flen;
        if (w == NULL || mllp_wrap(ack, len, &w->buf, &flen) != 0) {
            free(w);
            conn__close(c, "out of memory");
            return;
        }
        w->conn = c;
        w->close_after = close_after;
        uv_buf_t b = uv_buf_init((char *)w->buf, (unsigned)flen);
        int rc = uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_written);
        if (rc != 0) {
            free(w->buf);
            free(w);
            conn__close(c, uv_strerror(rc));
            return;
        }
    } else if (close_after) {
        conn__close(c, "framing error");
        return;
    }
    if (close_after) {
        c->busy = true; /* nothing more is read from a stream we are ending */
        uv_read_stop((uv_stream_t *)&c->tcp);
        return;
    }
    process(c);
}

static void on_connection(uv_stream_t *server, int status)
{
    gw_channel_t *ch = server->data;
    if (status < 0) {
        RLOG(RELAIS_LOG_WARN, "hl7", "accept channel=%s error=%s", ch->cfg->name,
             uv_strerror(status));
        return;
    }
    gw_conn_t *c = calloc(1, sizeof *c);
    if (c == NULL) return;
    c->ch = ch;
    c->id = ++ch->gw->next_conn_id;
    uv_tcp_init(ch->gw->loop, &c->tcp);
    uv_timer_init(ch->gw->loop, &c->timer);
    c->tcp.data = c->timer.data = c;
    c->handles = 2;
    c->next = ch->conns;
    if (ch->conns != NULL) ch->conns->prev = c;
    ch->conns = c;
    ch->n_conns++;
    if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
        conn__close(c, "accept failed");
        return;
    }
    if (ch->gw->stopping) {
        conn__close(c, "gateway stopping");
        return;
    }
    if (ch->n_conns > ch->gw->cfg->max_connections) {
        conn__close(c, "too many connections on this channel");
        return;
    }
    uv_tcp_nodelay(&c->tcp, 1);
    RLOG(RELAIS_LOG_DEBUG, "hl7", "connect channel=%s conn=%llu", ch->cfg->name,
         (unsigned long long)c->id);
    process(c);
}

int conn__listen(gw_channel_t *ch)
{
    const hl7_channel_t *cfg = ch->cfg;
    struct sockaddr_storage ss;
    int rc = strchr(cfg->listen_host, ':') != NULL
                 ? uv_ip6_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in6 *)&ss)
                 : uv_ip4_addr(cfg->listen_host, cfg->listen_port, (struct sockaddr_in *)&ss);
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "hl7", "channel=%s listen: '%s' is not a numeric address", cfg->name,
             cfg->listen_host);
        return rc;
    }
    uv_tcp_init(ch->gw->loop, &ch->server);
    ch->server.data = ch;
    ch->listening = true;
    rc = uv_tcp_bind(&ch->server, (const struct sockaddr *)&ss, 0);
    if (rc == 0) rc = uv_listen((uv_stream_t *)&ch->server, 511, on_connection);
    if (rc != 0) {
        RLOG(RELAIS_LOG_ERROR, "hl7", "channel=%s listen %s:%d: %s", cfg->name, cfg->listen_host,
             cfg->listen_port, uv_strerror(rc));
        return rc;
    }
    struct sockaddr_storage bound;
    int len = sizeof bound;
    uv_tcp_getsockname(&ch->server, (struct sockaddr *)&bound, &len);
    char host[64] = "";
    int port;
    if (bound.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&bound, host, sizeof host);
        port = ntohs(((struct sockaddr_in6 *)&bound)->sin6_port);
        snprintf(ch->listen_text, sizeof ch->listen_text, "[%s]:%d", host, port);
    } else {
        uv_ip4_name((struct sockaddr_in *)&bound, host, sizeof host);
        port = ntohs(((struct sockaddr_in *)&bound)->sin_port);
        snprintf(ch->listen_text, sizeof ch->listen_text, "%s:%d", host, port);
    }
    return 0;
}

void conn__close_all(gw_channel_t *ch)
{
    if (ch->listening) {
        ch->listening = false;
        uv_close((uv_handle_t *)&ch->server, NULL);
    }
    while (ch->conns != NULL) conn__close(ch->conns, "gateway stopping");
}
