/*
 * The admin listener's connections, on the broker's loop: accept, read one request head
 * into a fixed buffer, answer, close.
 *
 * What a hostile or broken client can cost is bounded here: one HTTP_MAX_HEAD buffer per
 * connection, at most max_connections of them (the next gets a 503 and is closed), a
 * deadline for the whole head (a client sending a byte a second gets 408 when it expires)
 * and one for writing the answer. Handlers run on the loop thread, so they read the
 * broker's state directly, and never block: a response is built in memory and handed to
 * libuv to write.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "relais/log.h"

typedef struct conn conn_t;

struct http_server {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_handle_t handle;
        uv_stream_t stream;
    } lis;
    uv_loop_t *loop;
    bool is_unix;
    http_limits_t lim;
    http_handler_fn fn;
    void *ud;
    conn_t *conns; /* open connections, doubly linked */
    unsigned nconns, nrefusing;
    unsigned long long refused;
};

struct conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_handle_t handle;
        uv_stream_t stream;
    } h;
    uv_timer_t timer;
    http_server_t *srv; /* NULL once the server has closed */
    conn_t *prev, *next;
    char *buf; /* HTTP_MAX_HEAD bytes; NULL for a connection refused at the cap */
    size_t len;
    bool answered, closing, refusing;
    int open_handles;
    uv_write_t wr;
    char head[512];
    abuf_t body;
};

static void unlink_conn(conn_t *c)
{
    if (c->srv == NULL) return;
    if (c->prev)
        c->prev->next = c->next;
    else
        c->srv->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    if (c->refusing)
        c->srv->nrefusing--;
    else
        c->srv->nconns--;
    c->srv = NULL;
}

static void on_conn_closed(uv_handle_t *h)
{
    conn_t *c = h->data;
    if (--c->open_handles > 0) return;
    free(c->buf);
    abuf_free(&c->body);
    free(c);
}

static void conn_close(conn_t *c)
{
    if (c->closing) return;
    c->closing = true;
    unlink_conn(c);
    uv_close((uv_handle_t *)&c->timer, on_conn_closed);
    uv_close(&c->h.handle, on_conn_closed);
}

static void on_written(uv_write_t *wr, int status)
{
    conn_close(wr->data);
}

static void on_timeout(uv_timer_t *t);

/* Sends status, headers and body (taken from resp), then closes. */
static void respond(conn_t *c, http_response_t *resp, bool head_only)
{
    c->answered = true;
    uv_read_stop(&c->h.stream);
    c->body = resp->body;
    memset(&resp->body, 0, sizeof(resp->body));
    if (c->body.oom) {
        abuf_free(&c->body);
        resp->status = 503;
        resp->content_type = "text/plain; charset=utf-8";
        abuf_puts(&c->body, "out of memory building the response\n");
    }
    int n = snprintf(c->head, sizeof(c->head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                     "Cache-Control: %s\r\nX-Content-Type-Options: nosniff\r\n%s"
                     "Connection: close\r\n\r\n",
                     resp->status, http_status_text(resp->status),
                     resp->content_type ? resp->content_type : "text/plain; charset=utf-8",
                     c->body.len, resp->cache ? resp->cache : "no-store",
                     resp->extra_headers ? resp->extra_headers : "");
    if (n < 0 || (size_t)n >= sizeof(c->head)) n = 0;
    uv_buf_t bufs[2] = {uv_buf_init(c->head, (unsigned)n),
                        uv_buf_init(c->body.p ? c->body.p : "", (unsigned)c->body.len)};
    c->wr.data = c;
    unsigned timeout = c->srv ? c->srv->lim.write_timeout_ms : 1000;
    uv_timer_start(&c->timer, on_timeout, timeout, 0);
    if (uv_write(&c->wr, &c->h.stream, bufs, head_only ? 1 : 2, on_written) < 0) conn_close(c);
}

static void respond_error(conn_t *c, int status, const char *reason)
{
    http_response_t r = {.status = status, .content_type = "text/plain; charset=utf-8"};
    abuf_printf(&r.body, "%d %s: %s\n", status, http_status_text(status), reason);
    respond(c, &r, false);
}

static void on_timeout(uv_timer_t *t)
{
    conn_t *c = t->data;
    if (c->answered) {
        conn_close(c); /* the client does not read its answer */
        return;
    }
    respond_error(c, 408, "the request head did not arrive in time");
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    conn_t *c = h->data;
    *buf = uv_buf_init(c->buf + c->len, (unsigned)(HTTP_MAX_HEAD - c->len));
}

static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
    conn_t *c = st->data;
    if (c->answered || c->closing) return;
    if (nread < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)nread;
    http_request_t req;
    char reason[128];
    int rc = http_parse_request(c->buf, c->len, &req, reason, sizeof(reason));
    if (rc == 0 && c->len < HTTP_MAX_HEAD) return;
    if (rc == 0) {
        rc = -431;
        snprintf(reason, sizeof(reason), "request head too large");
    }
    if (rc < 0) {
        respond_error(c, -rc, reason);
        return;
    }
    http_response_t resp = {.status = 500};
    uint64_t t0 = uv_hrtime();
    if (c->srv != NULL) c->srv->fn(c->srv->ud, &req, c->srv->is_unix, &resp);
    /* The access log, at debug level: what the loop spent building each answer. */
    RLOG(RELAIS_LOG_DEBUG, "admin", "served path=%.*s status=%d bytes=%zu us=%llu",
         (int)(req.path_len > 100 ? 100 : req.path_len), req.path, resp.status, resp.body.len,
         (unsigned long long)((uv_hrtime() - t0) / 1000));
    respond(c, &resp, req.head);
}

static void on_connection(uv_stream_t *lis, int status)
{
    http_server_t *s = lis->data;
    if (status < 0) return;
    conn_t *c = calloc(1, sizeof(*c));
    if (c == NULL) return;
    int rc = s->is_unix ? uv_pipe_init(s->loop, &c->h.pipe, 0) : uv_tcp_init(s->loop, &c->h.tcp);
    if (rc < 0) {
        free(c);
        return;
    }
    c->h.handle.data = c;
    c->open_handles = 1;
    if (uv_accept(lis, &c->h.stream) < 0) {
        c->closing = true;
        uv_close(&c->h.handle, on_conn_closed);
        return;
    }
    uv_timer_init(s->loop, &c->timer);
    c->timer.data = c;
    c->open_handles = 2;
    c->srv = s;
    c->next = s->conns;
    if (s->conns) s->conns->prev = c;
    s->conns = c;
    if (s->nconns >= s->lim.max_connections) {
        /* Over the cap: say so briefly and close. Past a second cap of as many connections
         * being refused, close without a word: nothing grows with a flood. */
        c->refusing = true;
        s->nrefusing++;
        s->refused++;
        if (s->nrefusing > s->lim.max_connections) {
            conn_close(c);
            return;
        }
        respond_error(c, 503, "too many admin connections; try again shortly");
        return;
    }
    s->nconns++;
    c->buf = malloc(HTTP_MAX_HEAD);
    if (c->buf == NULL) {
        conn_close(c);
        return;
    }
    uv_timer_start(&c->timer, on_timeout, s->lim.head_timeout_ms, 0);
    if (uv_read_start(&c->h.stream, on_alloc, on_read) < 0) conn_close(c);
}

static http_server_t *server_new(uv_loop_t *loop, const http_limits_t *lim, http_handler_fn fn,
                                 void *ud)
{
    http_server_t *s = calloc(1, sizeof(*s));
    if (s == NULL) return NULL;
    s->loop = loop;
    s->lim = *lim;
    s->fn = fn;
    s->ud = ud;
    return s;
}

static void on_listener_closed(uv_handle_t *h)
{
    free(h->data);
}

static void server_abort(http_server_t *s)
{
    uv_close(&s->lis.handle, on_listener_closed);
}

int http_server_open_tcp(http_server_t **out, uv_loop_t *loop, const char *host, int port,
                         const http_limits_t *lim, http_handler_fn fn, void *ud, char *bound,
                         size_t bound_len, char *reason, size_t reason_len)
{
    struct sockaddr_storage ss;
    bool v6 = strchr(host, ':') != NULL;
    int rc = v6 ? uv_ip6_addr(host, port, (struct sockaddr_in6 *)&ss)
                : uv_ip4_addr(host, port, (struct sockaddr_in *)&ss);
    if (rc < 0) {
        snprintf(reason, reason_len, "'%s' is not an IP address", host);
        return rc;
    }
    http_server_t *s = server_new(loop, lim, fn, ud);
    if (s == NULL) return UV_ENOMEM;
    uv_tcp_init(loop, &s->lis.tcp);
    s->lis.handle.data = s;
    if ((rc = uv_tcp_bind(&s->lis.tcp, (struct sockaddr *)&ss, 0)) < 0 ||
        (rc = uv_listen(&s->lis.stream, 128, on_connection)) < 0) {
        snprintf(reason, reason_len, "cannot listen on %s%s%s:%d: %s", v6 ? "[" : "", host,
                 v6 ? "]" : "", port, uv_strerror(rc));
        server_abort(s);
        return rc;
    }
    struct sockaddr_storage got;
    int glen = sizeof(got);
    uv_tcp_getsockname(&s->lis.tcp, (struct sockaddr *)&got, &glen);
    char ip[64] = "?";
    int gport = 0;
    if (got.ss_family == AF_INET6) {
        uv_ip6_name((struct sockaddr_in6 *)&got, ip, sizeof(ip));
        gport = ntohs(((struct sockaddr_in6 *)&got)->sin6_port);
        snprintf(bound, bound_len, "[%s]:%d", ip, gport);
    } else {
        uv_ip4_name((struct sockaddr_in *)&got, ip, sizeof(ip));
        gport = ntohs(((struct sockaddr_in *)&got)->sin_port);
        snprintf(bound, bound_len, "%s:%d", ip, gport);
    }
    *out = s;
    return 0;
}

int http_server_open_unix(http_server_t **out, uv_loop_t *loop, const char *path,
                          const http_limits_t *lim, http_handler_fn fn, void *ud, char *reason,
                          size_t reason_len)
{
    struct stat st;
    /* A socket left by a broker that did not stop cleanly; never anything else. */
    if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode)) unlink(path);
    http_server_t *s = server_new(loop, lim, fn, ud);
    if (s == NULL) return UV_ENOMEM;
    s->is_unix = true;
    uv_pipe_init(loop, &s->lis.pipe, 0);
    s->lis.handle.data = s;
    int rc = uv_pipe_bind(&s->lis.pipe, path);
    /* Bound but not yet listening, nobody can connect: restrict it before listening. */
    if (rc == 0 && chmod(path, 0600) < 0) rc = -errno;
    if (rc == 0) rc = uv_listen(&s->lis.stream, 16, on_connection);
    if (rc < 0) {
        snprintf(reason, reason_len, "cannot listen on %s: %s", path, uv_strerror(rc));
        server_abort(s);
        return rc;
    }
    *out = s;
    return 0;
}

unsigned http_server_connections(const http_server_t *s)
{
    return s ? s->nconns : 0;
}

unsigned long long http_server_refused(const http_server_t *s)
{
    return s ? s->refused : 0;
}

void http_server_close(http_server_t **sp)
{
    http_server_t *s = *sp;
    if (s == NULL) return;
    *sp = NULL;
    while (s->conns != NULL) conn_close(s->conns);
    uv_close(&s->lis.handle, on_listener_closed);
}
