/*
 * The admin surface's life cycle and front door: parses the --admin address, loads the
 * bearer token, opens the HTTP listener and the control socket, routes each request, and
 * answers /healthz and /readyz. See admin.h for what the admin surface is.
 *
 * Access: on a loopback address the listener serves anyone on the machine (like the
 * control socket, which its 0600 mode restricts to the broker's user). On any other address
 * it requires `Authorization: Bearer TOKEN` on every data endpoint, with TOKEN read at start
 * from a file only its owner may read; relaisd refuses to start otherwise, rather than
 * publish the territory's activity to a network. The dashboard's static files carry no data
 * and are served without the token (the page asks for it).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <sodium.h>

#include "admin_internal.h"
#include "audit.h"
#include "reserve.h"
#include "directory.h"
#include "relais/errors.h"
#include "relais/log.h"

static const double seconds_bounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                        0.1,    0.25,  0.5,    1,     2.5,  5,     10};
static const double ops_bounds[] = {1,   2,   5,    10,   20,   50,    100,
                                    200, 500, 1000, 2000, 5000, 10000, 20000};

void histogram_observe(histogram_t *h, double v)
{
    size_t i = 0;
    while (i < h->nbounds && v > h->bounds[i]) i++;
    h->counts[i]++;
    h->sum += v;
    h->count++;
}

static bool is_loopback(const char *host)
{
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* "HOST:PORT" or "[V6]:PORT" into host and port. 0 or -1. */
static int split_address(const char *spec, char *host, size_t host_len, int *port)
{
    const char *colon;
    if (spec[0] == '[') {
        const char *close = strchr(spec, ']');
        if (close == NULL || close[1] != ':') return -1;
        snprintf(host, host_len, "%.*s", (int)(close - spec - 1), spec + 1);
        colon = close + 1;
    } else {
        colon = strrchr(spec, ':');
        if (colon == NULL || colon == spec) return -1;
        snprintf(host, host_len, "%.*s", (int)(colon - spec), spec);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (*end != '\0' || end == colon + 1 || p < 0 || p > 65535) return -1;
    if (strcmp(host, "localhost") == 0) snprintf(host, host_len, "127.0.0.1");
    *port = (int)p;
    return 0;
}

static int load_token(admin_t *a, const char *path)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        RLOG(RELAIS_LOG_ERROR, "admin", "cannot open the admin token file %s: %s", path,
             strerror(errno));
        return RELAIS_ECONFIG;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (st.st_mode & 077) != 0 ||
        st.st_uid != geteuid()) {
        RLOG(RELAIS_LOG_ERROR, "admin",
             "the admin token file %s must be a regular file owned by this user with mode "
             "0600 (chmod 600 %s)",
             path, path);
        close(fd);
        return RELAIS_ECONFIG;
    }
    ssize_t n = read(fd, a->token, sizeof(a->token) - 1);
    close(fd);
    if (n < 0) n = 0;
    a->token[n] = '\0';
    while (n > 0 && (a->token[n - 1] == '\n' || a->token[n - 1] == '\r' || a->token[n - 1] == ' ' ||
                     a->token[n - 1] == '\t'))
        a->token[--n] = '\0';
    bool printable = true;
    for (ssize_t i = 0; i < n; i++)
        if ((unsigned char)a->token[i] <= 0x20 || (unsigned char)a->token[i] >= 0x7f)
            printable = false;
    if (n < 16 || !printable) {
        RLOG(RELAIS_LOG_ERROR, "admin",
             "the admin token in %s must be 16 to %d printable characters without spaces", path,
             ADMIN_TOKEN_MAX - 1);
        sodium_memzero(a->token, sizeof(a->token));
        return RELAIS_ECONFIG;
    }
    a->need_token = true;
    return 0;
}

static bool token_ok(admin_t *a, const http_request_t *req, const char **why)
{
    if (!a->need_token) return true;
    if (req->authorization == NULL) {
        *why = "this endpoint needs Authorization: Bearer TOKEN";
        return false;
    }
    size_t tlen = strlen(a->token);
    if (req->authorization_len != 7 + tlen || strncasecmp(req->authorization, "Bearer ", 7) != 0 ||
        sodium_memcmp(req->authorization + 7, a->token, tlen) != 0) {
        *why = "wrong bearer token";
        return false;
    }
    return true;
}

bool admin__ready(admin_t *a, char *reason, size_t reason_len)
{
    broker_t *b = a->b;
    if (b->stopping) {
        snprintf(reason, reason_len, "the broker is shutting down");
        return false;
    }
    if (b->router == NULL) {
        snprintf(reason, reason_len, "the agents' socket is not bound");
        return false;
    }
    if (!b->cfg.insecure && b->dir == NULL) {
        snprintf(reason, reason_len, "no territory directory loaded");
        return false;
    }
    if (a->store_failing) {
        snprintf(reason, reason_len, "the store's last commit failed: %s", a->store_reason);
        return false;
    }
    if (b->audit != NULL && !audit_healthy(b->audit)) {
        snprintf(reason, reason_len, "the audit journal cannot keep up (disk full or failing)");
        return false;
    }
    if (!reserve_ok(b->reserve)) {
        snprintf(reason, reason_len, "the disk filled: new messages are refused until space "
                                     "returns");
        return false;
    }
    struct statvfs vfs;
    if (statvfs(b->cfg.data_dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < (1u << 20)) {
        snprintf(reason, reason_len, "less than 1 MiB free in the data directory");
        return false;
    }
    snprintf(reason, reason_len, "ok");
    return true;
}

static bool path_is(const http_request_t *req, const char *p)
{
    size_t n = strlen(p);
    return req->path_len == n && memcmp(req->path, p, n) == 0;
}

static void handle(void *ud, const http_request_t *req, bool trusted, http_response_t *resp)
{
    admin_t *a = ud;
    resp->status = 200;
    resp->content_type = "text/plain; charset=utf-8";
    if (req->post) {
        /* Write actions: only the broker's user, through the control socket. */
        if (!trusted) {
            resp->status = 405;
            resp->extra_headers = "Allow: GET, HEAD\r\n";
            abuf_puts(&resp->body, "405 Method Not Allowed: write actions are only accepted on "
                                   "the control socket (relaisctl)\n");
            return;
        }
        actions__handle(a, req, resp);
        return;
    }
    const admin_asset_t *asset = path_is(req, "/") ? assets__find("/index.html", 11)
                                                   : assets__find(req->path, req->path_len);
    if (asset != NULL) {
        resp->content_type = asset->content_type;
        resp->cache = "no-cache";
        /* The page loads nothing but its own files and this API, and is never framed. */
        resp->extra_headers = "Content-Security-Policy: default-src 'self'; "
                              "frame-ancestors 'none'\r\nReferrer-Policy: no-referrer\r\n";
        abuf_put(&resp->body, (const char *)asset->data, asset->len);
        return;
    }
    const char *why = NULL;
    if (!trusted && !token_ok(a, req, &why)) {
        resp->status = 401;
        resp->extra_headers = "WWW-Authenticate: Bearer realm=\"relaisd\"\r\n";
        abuf_printf(&resp->body, "401 Unauthorized: %s\n", why);
        RLOG(RELAIS_LOG_WARN, "admin", "refused request: %s", why);
        return;
    }
    if (path_is(req, "/metrics")) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        metrics__render(a, &resp->body);
        return;
    }
    if (path_is(req, "/metrics/agents")) {
        resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
        metrics__render_agents(a, &resp->body);
        return;
    }
    if (path_is(req, "/healthz") || path_is(req, "/readyz")) {
        char reason[200];
        if (!admin__ready(a, reason, sizeof(reason))) resp->status = 503;
        abuf_printf(&resp->body, "%s\n", reason);
        return;
    }
    static const char prefix[] = "/api/v1/";
    if (req->path_len >= sizeof(prefix) - 1 && memcmp(req->path, prefix, sizeof(prefix) - 1) == 0) {
        char fmt[8];
        bool text = http_query_param(req, "format", fmt, sizeof(fmt)) && strcmp(fmt, "text") == 0;
        api__handle(a, req->path + sizeof(prefix) - 1, req->path_len - (sizeof(prefix) - 1), req,
                    text, resp);
        return;
    }
    resp->status = 404;
    abuf_printf(&resp->body,
                "404 Not Found: %.*s is not an admin endpoint (see "
                "docs/OPERATIONS.md)\n",
                (int)(req->path_len > 200 ? 200 : req->path_len), req->path);
}

static void digest_directory(admin_t *a)
{
    broker_t *b = a->b;
    a->dir_digest[0] = '\0';
    a->dir_loaded_ms = relais_now_ms();
    if (b->cfg.directory_path == NULL || b->dir == NULL) return;
    FILE *f = fopen(b->cfg.directory_path, "rb");
    if (f == NULL) return;
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, 32);
    unsigned char buf[4096], out[32];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), f)) > 0) crypto_generichash_update(&st, buf, n);
    fclose(f);
    crypto_generichash_final(&st, out, sizeof(out));
    sodium_bin2hex(a->dir_digest, sizeof(a->dir_digest), out, sizeof(out));
}

void admin_directory_loaded(broker_t *b)
{
    if (b->admin != NULL) digest_directory(b->admin);
}

void admin_commit_done(broker_t *b, int status, const pending_reply_t *replies, size_t n)
{
    admin_t *a = b->admin;
    if (a == NULL) return;
    uint64_t now = uv_hrtime();
    histogram_observe(&a->commit_seconds, (double)(now - b->stats.commit_started_ns) / 1e9);
    histogram_observe(&a->commit_ops, (double)b->stats.commit_ops);
    a->store_failing = status != 0;
    if (status != 0) {
        a->commit_failures++;
        snprintf(a->store_reason, sizeof(a->store_reason), "%s", relais_err_name(status));
        return;
    }
    for (size_t i = 0; i < n; i++)
        if (replies[i].received_ns != 0)
            histogram_observe(&a->accept_seconds, (double)(now - replies[i].received_ns) / 1e9);
}

void admin_accepted(broker_t *b, const msg_t *m)
{
    admin_t *a = b->admin;
    if (a == NULL) return;
    if (m->body_case > 0 && m->body_case < ADMIN_BODY_CASES) a->accepted_by_type[m->body_case]++;
    if (m->body_case != RELAIS__V1__ENVELOPE__BODY_ESCALATION) return;
    escalation_t *e = &a->escalations[a->esc_next];
    memset(e, 0, sizeof(*e));
    relais_id_format(m->message_id, RELAIS_MESSAGE_ID_LEN, e->message_id);
    snprintf(e->sender, sizeof(e->sender), "%s", m->sender);
    if (m->ndeliveries > 0 && m->deliveries != NULL && m->deliveries[0] != NULL)
        snprintf(e->to, sizeof(e->to), "%s", m->deliveries[0]->mbox->address);
    e->at_ms = m->accepted_at_ms;
    /* Only the escalation's identifiers and times: its reason is free text. */
    Relais__V1__Envelope *env = relais__v1__envelope__unpack(NULL, m->envelope_len, m->envelope);
    if (env != NULL && env->escalation != NULL) {
        const Relais__V1__Escalation *x = env->escalation;
        if (x->responsible && relais_address_valid(x->responsible))
            snprintf(e->responsible, sizeof(e->responsible), "%s", x->responsible);
        if (x->original_body && relais_body_from_name(x->original_body) > 0)
            snprintf(e->original_type, sizeof(e->original_type), "%s", x->original_body);
        e->deadline_ms = x->deadline_ms;
    }
    if (env != NULL) relais__v1__envelope__free_unpacked(env, NULL);
    a->esc_next = (a->esc_next + 1) % ADMIN_ESCALATIONS;
    if (a->esc_count < ADMIN_ESCALATIONS) a->esc_count++;
}

/* Once a minute: closes the current minute of the throughput history. */
static void on_minute(uv_timer_t *t)
{
    admin_t *a = t->data;
    uint64_t acc = a->b->stats.accepted;
    a->history[a->history_head] = acc - a->history_base;
    a->history_base = acc;
    a->history_head = (a->history_head + 1) % ADMIN_HISTORY_MINUTES;
    a->history[a->history_head] = 0;
    a->history_started_ms = relais_now_ms();
}

static int open_failed(broker_t *b, int rc)
{
    admin_shutdown(b); /* the handles close on the loop run that broker_open's failure does */
    return rc;
}

int admin_open(broker_t *b)
{
    admin_t *a = calloc(1, sizeof(*a));
    if (a == NULL) return -ENOMEM;
    a->b = b;
    b->admin = a;
    a->started_ms = relais_now_ms();
    uv_timeval64_t tv;
    uv_gettimeofday(&tv);
    a->start_time_s = (double)tv.tv_sec + tv.tv_usec / 1e6;
    a->commit_seconds =
        (histogram_t){.bounds = seconds_bounds, .nbounds = sizeof(seconds_bounds) / sizeof(double)};
    a->accept_seconds = a->commit_seconds;
    a->commit_ops =
        (histogram_t){.bounds = ops_bounds, .nbounds = sizeof(ops_bounds) / sizeof(double)};
    a->history_started_ms = a->started_ms;
    digest_directory(a);
    uv_timer_init(b->loop, &a->minute_timer);
    a->minute_timer.data = a;
    a->timer_open = true;
    uv_timer_start(&a->minute_timer, on_minute, 60000, 60000);
    uv_unref((uv_handle_t *)&a->minute_timer);

    http_limits_t lim = {.max_connections = ADMIN_MAX_CONNECTIONS,
                         .head_timeout_ms = ADMIN_HEAD_TIMEOUT_MS,
                         .write_timeout_ms = ADMIN_WRITE_TIMEOUT_MS};
    char reason[300];
    const char *spec = b->cfg.admin_bind ? b->cfg.admin_bind : "127.0.0.1:7480";
    if (strcmp(spec, "off") != 0) {
        char host[64];
        int port;
        if (split_address(spec, host, sizeof(host), &port) < 0) {
            RLOG(RELAIS_LOG_ERROR, "admin", "--admin wants HOST:PORT, [IPV6]:PORT or off, got '%s'",
                 spec);
            return open_failed(b, RELAIS_ECONFIG);
        }
        if (b->cfg.admin_token_path != NULL) {
            int rc = load_token(a, b->cfg.admin_token_path);
            if (rc < 0) return open_failed(b, rc);
        } else if (!is_loopback(host)) {
            RLOG(RELAIS_LOG_ERROR, "admin",
                 "refusing to serve the admin listener on %s, not a loopback address, without "
                 "a bearer token: give --admin-token FILE (mode 0600)",
                 host);
            return open_failed(b, RELAIS_ECONFIG);
        }
        int rc = http_server_open_tcp(&a->http, b->loop, host, port, &lim, handle, a, a->http_bound,
                                      sizeof(a->http_bound), reason, sizeof(reason));
        if (rc < 0 && b->cfg.admin_bind == NULL) {
            RLOG(RELAIS_LOG_WARN, "admin",
                 "admin listener not started: %s (give --admin HOST:PORT or --admin off)", reason);
        } else if (rc < 0) {
            RLOG(RELAIS_LOG_ERROR, "admin", "%s", reason);
            return open_failed(b, RELAIS_ECONFIG);
        } else {
            RLOG(RELAIS_LOG_INFO, "admin", "admin listening endpoint=http://%s token=%s%s",
                 a->http_bound, a->need_token ? "required" : "none",
                 a->need_token ? "" : " (loopback only)");
        }
    }
    snprintf(a->ctl_path, sizeof(a->ctl_path), "%s/relaisd.sock", b->cfg.data_dir);
    if (strlen(a->ctl_path) >= 100) {
        RLOG(RELAIS_LOG_WARN, "admin", "control socket not started: path %s too long", a->ctl_path);
        a->ctl_path[0] = '\0';
    } else if (http_server_open_unix(&a->ctl, b->loop, a->ctl_path, &lim, handle, a, reason,
                                     sizeof(reason)) < 0) {
        RLOG(RELAIS_LOG_WARN, "admin", "control socket not started: %s", reason);
        a->ctl_path[0] = '\0';
    } else {
        RLOG(RELAIS_LOG_INFO, "admin", "control socket path=%s", a->ctl_path);
    }
    return 0;
}

void admin_shutdown(broker_t *b)
{
    admin_t *a = b->admin;
    if (a == NULL) return;
    http_server_close(&a->http);
    if (a->ctl != NULL) {
        http_server_close(&a->ctl);
        unlink(a->ctl_path);
    }
    if (a->timer_open) uv_close((uv_handle_t *)&a->minute_timer, NULL);
    a->timer_open = false;
}

void admin_close(broker_t *b)
{
    admin_t *a = b->admin;
    if (a == NULL) return;
    free(a->rows);
    sodium_memzero(a->token, sizeof(a->token));
    free(a);
    b->admin = NULL;
}
