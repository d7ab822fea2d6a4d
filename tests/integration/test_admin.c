/*
 * The admin listener of a real relaisd, from outside: /metrics parsed strictly against the
 * Prometheus text format and checked against what real clients did, /healthz and /readyz,
 * the JSON API, the control socket, the bearer token, and hostile input (malformed
 * requests, oversize heads, slow and many clients) answered with a clear status while the
 * broker keeps serving agents.
 */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "admin_support.h"
#include "harness.h"

#define T 5000
#define GP "rpps:10101234567"
#define NURSE "rpps:10109876543"

static rt_broker_t broker;
static int port;

static void start(void)
{
    memset(&broker, 0, sizeof(broker));
    static const char *args[] = {"--admin", "127.0.0.1:0", NULL};
    rt_suite_start(&broker, args);
    port = ah_admin_port(&broker);
    cr_assert_gt(port, 0, "the admin endpoint is logged");
}

static void stop(void)
{
    rt_suite_stop(&broker);
}

TestSuite(admin, .init = start, .fini = stop, .timeout = 90);

static void scrape(prom_t *p)
{
    ah_resp_t r;
    cr_assert_eq(ah_get(port, "/metrics", NULL, &r), 0, "GET /metrics answers");
    cr_assert_eq(r.status, 200);
    char ct[128];
    cr_assert(ah_header(&r, "Content-Type", ct, sizeof ct));
    cr_assert_str_eq(ct, "text/plain; version=0.0.4; charset=utf-8");
    char err[256] = "";
    int rc = prom_parse(r.body, p, err, sizeof(err));
    cr_assert_eq(rc, 0, "the exposition is valid: %s", err);
    ah_free(&r);
}

/* Sends Ping and waits for Pong: every frame sent before it has been handled. */
static void sync_client(rt_client_t *c)
{
    Relais__V1__Ping ping = RELAIS__V1__PING__INIT;
    Relais__V1__Frame f = RELAIS__V1__FRAME__INIT;
    f.kind_case = RELAIS__V1__FRAME__KIND_PING;
    f.ping = &ping;
    cr_assert_eq(rt_client_send(c, &f), 0);
    Relais__V1__Frame *pong;
    cr_assert_eq(rt_client_expect(c, RELAIS__V1__FRAME__KIND_PONG, T, &pong), 0);
    relais_frame_free(&pong);
}

Test(admin, metrics_follow_the_text_format_and_count_what_the_clients_did)
{
    prom_t p;
    scrape(&p);
    cr_expect_eq(prom_sum(&p, "relais_messages_accepted_total"), 0);
    cr_expect_eq(prom_get(&p, "relais_messages_accepted_total", "type=\"escalation\""), 0,
                 "every body type has its series from the start");
    cr_expect(!isnan(prom_get(&p, "relais_build_info",
                              "version=\"0.1.0\",protocol=\"1\",store=\"sqlite\",mode=\"curve\"")));
    cr_expect_gt(prom_get(&p, "relais_process_start_time_seconds", ""), 1.6e9);
    cr_expect_gt(prom_get(&p, "relais_process_open_fds", ""), 3);
    cr_expect_gt(prom_get(&p, "relais_process_resident_memory_bytes", ""), 1e6);
    prom_free(&p);

    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e[3];
    for (int i = 0; i < 3; i++) {
        rt_env_note(&e[i], NURSE, "admin metrics");
        cr_assert_eq(rt_client_submit(&gp, &e[i], T), 0);
    }
    cr_assert_eq(rt_client_submit(&gp, &e[0], T), 0, "a duplicate is accepted as such");
    rt_env_t late;
    rt_env_note(&late, NURSE, "too late");
    late.env.expires_at_ms = 1000;
    cr_assert_eq(rt_client_submit_nowait(&gp, &late), 0);
    cr_assert_eq(rt_client_expect_code(&gp, true, RELAIS__V1__ERROR__ERROR_CODE__EXPIRED, T, NULL),
                 0);

    scrape(&p);
    cr_expect_eq(prom_get(&p, "relais_messages_accepted_total", "type=\"note\""), 3);
    cr_expect_eq(prom_sum(&p, "relais_messages_accepted_total"), 3);
    cr_expect_eq(prom_get(&p, "relais_messages_duplicates_total", ""), 1);
    cr_expect_eq(prom_get(&p, "relais_messages_rejected_total", "code=\"expired\""), 1);
    cr_expect_eq(prom_sum(&p, "relais_messages_rejected_total"), 1);
    cr_expect_eq(prom_get(&p, "relais_mailbox_deliveries", "state=\"queued\""), 3,
                 "the offline nurse's three wait");
    cr_expect_eq(prom_get(&p, "relais_mailboxes_pending", ""), 1);
    cr_expect_eq(prom_get(&p, "relais_sessions", "role=\"gp\""), 1);
    cr_expect_eq(prom_sum(&p, "relais_sessions"), 1);
    cr_expect_eq(prom_get(&p, "relais_submit_accepted_duration_seconds_count", ""), 4,
                 "three accepted and one duplicate answered");
    cr_expect_geq(prom_get(&p, "relais_store_commit_duration_seconds_count", ""), 1);
    prom_free(&p);

    rt_client_t nurse = rt_session(&broker, NURSE, 10);
    for (int i = 0; i < 3; i++) {
        Relais__V1__Frame *d = rt_expect_note(&nurse, "admin metrics", T);
        int outcome =
            i < 2 ? RELAIS__V1__ACK__OUTCOME__PROCESSED : RELAIS__V1__ACK__OUTCOME__REFUSED;
        cr_assert_eq(
            rt_client_ack(&nurse, d->deliver->envelope->message_id.data, outcome, "not mine"), 0);
        relais_frame_free(&d);
    }
    sync_client(&nurse);
    scrape(&p);
    cr_expect_eq(prom_get(&p, "relais_deliveries_sent_total", ""), 3);
    cr_expect_eq(prom_get(&p, "relais_delivery_outcomes_total", "outcome=\"processed\""), 2);
    cr_expect_eq(prom_get(&p, "relais_delivery_outcomes_total", "outcome=\"refused\""), 1);
    cr_expect_eq(prom_get(&p, "relais_mailbox_deliveries", "state=\"queued\""), 0);
    cr_expect_eq(prom_get(&p, "relais_sessions", "role=\"nurse\""), 1);
    cr_expect_eq(prom_get(&p, "relais_sessions_opened_total", ""), 2);
    prom_free(&p);
    rt_client_close(&nurse);
    rt_client_close(&gp);

    /* A stranger's key: refused at the handshake, counted by reason. */
    char pub[41], sec[41];
    cr_assert_eq(zmq_curve_keypair(pub, sec), 0);
    void *ctx = zmq_ctx_new(), *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, broker.server_pub, 41);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, pub, 41);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, sec, 41);
    cr_assert_eq(zmq_connect(s, broker.endpoint), 0);
    cr_assert_eq(rt_broker_wait_log(&broker, "handshake refused", T), 0);
    zmq_close(s);
    zmq_ctx_term(ctx);
    scrape(&p);
    cr_expect_geq(prom_get(&p, "relais_auth_failures_total", "reason=\"unknown_key\""), 1);
    prom_free(&p);
}

Test(admin, per_agent_series_are_only_on_their_own_endpoint)
{
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e;
    rt_env_note(&e, NURSE, "per agent");
    cr_assert_eq(rt_client_submit(&gp, &e, T), 0);
    ah_resp_t r;
    cr_assert_eq(ah_get(port, "/metrics/agents", NULL, &r), 0);
    cr_assert_eq(r.status, 200);
    prom_t p;
    char err[256] = "";
    cr_assert_eq(prom_parse(r.body, &p, err, sizeof err), 0, "valid exposition: %s", err);
    cr_expect_eq(prom_get(&p, "relais_agent_online", "address=\"" GP "\",role=\"gp\""), 1);
    cr_expect_eq(prom_get(&p, "relais_agent_online", "address=\"" NURSE "\",role=\"nurse\""), 0);
    cr_expect_eq(prom_get(&p, "relais_agent_pending_deliveries", "address=\"" NURSE "\""), 1);
    cr_expect_geq(prom_get(&p, "relais_agent_oldest_pending_age_seconds", "address=\"" NURSE "\""),
                  0);
    prom_free(&p);
    ah_free(&r);
    cr_assert_eq(ah_get(port, "/metrics", NULL, &r), 0);
    cr_expect(strstr(r.body, GP) == NULL, "no address in the aggregated metrics");
    ah_free(&r);
    rt_client_close(&gp);
}

Test(admin, health_and_readiness_say_ok_while_the_broker_serves)
{
    ah_resp_t r;
    cr_assert_eq(ah_get(port, "/healthz", NULL, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_str_eq(r.body, "ok\n");
    ah_free(&r);
    cr_assert_eq(ah_get(port, "/readyz", NULL, &r), 0);
    cr_expect_eq(r.status, 200);
    ah_free(&r);
}

Test(admin, the_api_reports_sessions_mailboxes_messages_and_dead_letters)
{
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e[2];
    for (int i = 0; i < 2; i++) {
        rt_env_note(&e[i], NURSE, "api");
        cr_assert_eq(rt_client_submit(&gp, &e[i], T), 0);
    }
    char id0[37], id1[37], path[128];
    relais_id_format(e[0].id, 16, id0);
    relais_id_format(e[1].id, 16, id1);
    ah_resp_t r;
    cr_assert_eq(ah_get(port, "/api/v1/sessions", NULL, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "\"address\":\"" GP "\",\"role\":\"gp\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, NURSE) == NULL, "the nurse is offline: %s", r.body);
    ah_free(&r);
    cr_assert_eq(ah_get(port, "/api/v1/mailboxes", NULL, &r), 0);
    cr_expect(strstr(r.body,
                     "{\"address\":\"" NURSE "\",\"role\":\"nurse\",\"online\":false,"
                     "\"pending\":2,\"queued\":2,\"in_flight\":0,\"oldest_age_ms\":") != NULL,
              "%s", r.body);
    ah_free(&r);
    snprintf(path, sizeof path, "/api/v1/messages/%s", id0);
    cr_assert_eq(ah_get(port, path, NULL, &r), 0);
    cr_expect_eq(r.status, 200, "%s", r.body);
    cr_expect(strstr(r.body, "\"sender\":\"" GP "\",\"body_type\":\"note\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "{\"recipient\":\"" NURSE "\",\"state\":\"stored\",\"attempt\":0") !=
                  NULL,
              "%s", r.body);
    cr_expect(strstr(r.body, "api") == NULL || strstr(r.body, "\"api\"") == NULL,
              "no body text: %s", r.body);
    ah_free(&r);

    rt_client_t nurse = rt_session(&broker, NURSE, 10);
    Relais__V1__Frame *d = rt_expect_note(&nurse, "api", T);
    cr_assert_eq(rt_client_ack(&nurse, d->deliver->envelope->message_id.data,
                               RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL),
                 0);
    relais_frame_free(&d);
    d = rt_expect_note(&nurse, "api", T);
    cr_assert_eq(rt_client_ack(&nurse, d->deliver->envelope->message_id.data,
                               RELAIS__V1__ACK__OUTCOME__REFUSED,
                               "Mme Dupont n'est pas ma patiente"),
                 0);
    relais_frame_free(&d);
    sync_client(&nurse);

    snprintf(path, sizeof path, "/api/v1/messages/%s", id1);
    /* The refusal reaches the store with the next commit: wait for it through the API. */
    bool dead = ah_wait_for(port, path, "\"state\":\"refused\"", T);
    cr_assert(dead, "the refused delivery shows as refused");
    cr_assert_eq(ah_get(port, "/api/v1/deadletters", NULL, &r), 0);
    cr_expect(strstr(r.body, id1) != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "\"reason\":\"refused\"") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "Dupont") == NULL, "the agent's free text never shows");
    ah_free(&r);
    snprintf(path, sizeof path, "/api/v1/messages/%s", id0);
    cr_assert_eq(ah_get(port, path, NULL, &r), 0);
    cr_expect(strstr(r.body, "\"complete\":true") != NULL,
              "processed by its only recipient, the message is complete: %s", r.body);
    ah_free(&r);

    cr_assert_eq(ah_get(port, "/api/v1/status", NULL, &r), 0);
    cr_expect(strstr(r.body, "\"ready\":true") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "\"sessions\":2") != NULL, "%s", r.body);
    cr_expect(strstr(r.body, "\"directory_digest\":\"") != NULL, "%s", r.body);
    ah_free(&r);
    cr_assert_eq(ah_get(port, "/api/v1/messages/not-an-id", NULL, &r), 0);
    cr_expect_eq(r.status, 400);
    ah_free(&r);
    cr_assert_eq(ah_get(port, "/api/v1/messages/00000000-0000-7000-8000-000000000000", NULL, &r),
                 0);
    cr_expect_eq(r.status, 404);
    ah_free(&r);
    rt_client_close(&nurse);
    rt_client_close(&gp);
}

Test(admin, the_control_socket_is_private_and_serves_the_api)
{
    char sock[512];
    snprintf(sock, sizeof sock, "%s/relaisd.sock", broker.data_dir);
    struct stat st;
    cr_assert_eq(stat(sock, &st), 0);
    cr_expect(S_ISSOCK(st.st_mode));
    cr_expect_eq(st.st_mode & 0777, 0600, "mode %o", st.st_mode & 0777);
    int fd = ah_connect_unix(sock);
    cr_assert_geq(fd, 0);
    const char req[] = "GET /api/v1/status?format=text HTTP/1.1\r\nHost: relaisd\r\n\r\n";
    ah_resp_t r;
    cr_assert_eq(ah_exchange(fd, req, sizeof req - 1, T, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, "ready ") != NULL, "%s", r.body);
    ah_free(&r);
}

/* ---- hostile input ------------------------------------------------------------------- */

static int raw_status(const char *req, size_t len)
{
    int fd = ah_connect(port);
    cr_assert_geq(fd, 0);
    ah_resp_t r;
    int status = ah_exchange(fd, req, len, T, &r) == 0 ? r.status : -1;
    ah_free(&r);
    return status;
}

#define RAW(s) raw_status(s, sizeof(s) - 1)

Test(admin, bad_requests_get_a_clear_status_and_the_broker_keeps_serving)
{
    prom_t p;
    scrape(&p);
    double rss0 = prom_get(&p, "relais_process_resident_memory_bytes", "");
    prom_free(&p);
    cr_expect_eq(RAW("BREW /pot HTTP/1.1\r\n\r\n"), 405);
    cr_expect_eq(RAW("POST /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 413);
    cr_expect_eq(RAW("POST /metrics HTTP/1.1\r\n\r\n"), 405, "no write over HTTP");
    cr_expect_eq(RAW("GET /metrics HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc"), 413);
    cr_expect_eq(RAW("GET /metrics HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"), 501);
    cr_expect_eq(RAW("GET /metrics HTTP/2.0\r\n\r\n"), 505);
    cr_expect_eq(RAW("GET metrics HTTP/1.1\r\n\r\n"), 400);
    cr_expect_eq(RAW("GET /metrics HTTP/1.1\nHost: x\n\n"), 400);
    cr_expect_eq(RAW("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"), 400, "TLS on the plain port");
    cr_expect_eq(RAW("GET /nowhere HTTP/1.1\r\n\r\n"), 404);
    char big[12000];
    int n = snprintf(big, sizeof big, "GET /metrics HTTP/1.1\r\nX-Filler: ");
    memset(big + n, 'a', sizeof(big) - (size_t)n - 4);
    memcpy(big + sizeof(big) - 4, "\r\n\r\n", 4);
    cr_expect_eq(raw_status(big, sizeof big), 431, "oversize headers");
    n = snprintf(big, sizeof big, "GET /");
    memset(big + n, 'a', sizeof(big) - (size_t)n);
    cr_expect_eq(raw_status(big, sizeof big), 414, "an endless request line");
    char many[4096];
    n = snprintf(many, sizeof many, "GET /metrics HTTP/1.1\r\n");
    for (int i = 0; i < 40; i++)
        n += snprintf(many + n, sizeof many - (size_t)n, "X-H%d: v\r\n", i);
    n += snprintf(many + n, sizeof many - (size_t)n, "\r\n");
    cr_expect_eq(raw_status(many, (size_t)n), 431, "too many headers");
    for (int i = 0; i < 200; i++) RAW("GET /x HTTP/1.1\r\nHost: \x01\r\n\r\n");

    /* The agents were served throughout, and memory did not follow the abuse. */
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e;
    rt_env_note(&e, GP, "still here");
    cr_assert_eq(rt_client_submit(&gp, &e, T), 0);
    rt_client_close(&gp);
    scrape(&p);
    double rss1 = prom_get(&p, "relais_process_resident_memory_bytes", "");
    cr_expect_lt(rss1 - rss0, 8e6, "resident memory grew by %.0f bytes", rss1 - rss0);
    prom_free(&p);
}

Test(admin, a_slow_client_gets_408_and_a_crowd_gets_503_without_starving_agents)
{
    /* A head that never completes: answered 408 when its deadline passes (5 s). */
    int slow = ah_connect(port);
    cr_assert_geq(slow, 0);
    ah_resp_t r;
    cr_assert_eq(ah_exchange(slow, "GET /metr", 9, 8000, &r), 0, "the server closes");
    cr_expect_eq(r.status, 408);
    ah_free(&r);

    /* More connections than the cap, all idle: the surplus is refused at once. */
    enum { N = 80 };
    int fds[N];
    for (int i = 0; i < N; i++) fds[i] = ah_connect(port);
    int refused = 0;
    for (int i = 64; i < N; i++) {
        if (fds[i] < 0) continue;
        ah_resp_t x;
        if (ah_exchange(fds[i], "", 0, T, &x) == 0 && x.status == 503) refused++;
        fds[i] = -1;
        ah_free(&x);
    }
    cr_expect_eq(refused, N - 64, "every connection beyond 64 gets 503");
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e;
    rt_env_note(&e, GP, "crowded");
    cr_assert_eq(rt_client_submit(&gp, &e, T), 0, "agents are served while the crowd waits");
    rt_client_close(&gp);
    for (int i = 0; i < 64; i++)
        if (fds[i] >= 0) close(fds[i]);
    /* Once they leave, the listener serves again (the closes are seen on the next turn). */
    bool ok = false;
    for (int i = 0; i < 100 && !ok; i++) {
        ah_resp_t x;
        ok = ah_get(port, "/healthz", NULL, &x) == 0 && x.status == 200;
        ah_free(&x);
    }
    cr_expect(ok);
}

/* ---- the bearer token ----------------------------------------------------------------- */

static void write_token(const char *path, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    cr_assert_geq(fd, 0);
    cr_assert_eq(write(fd, "s3cret-token-for-tests-0123\n", 28), 28);
    close(fd);
    chmod(path, mode);
}

Test(admin, a_token_is_required_when_configured_and_checked)
{
    rt_broker_t b2;
    memset(&b2, 0, sizeof(b2));
    char tok[400];
    snprintf(tok, sizeof tok, "%s/admin.token", broker.data_dir);
    write_token(tok, 0600);
    const char *args[] = {"--admin", "127.0.0.1:0", "--admin-token", tok, NULL};
    cr_assert_eq(rt_broker_start(&b2, args, 10000), 0);
    int p2 = ah_admin_port(&b2);
    cr_assert_gt(p2, 0);
    cr_expect(rt_broker_wait_log(&b2, "token=required", T) == 0);
    ah_resp_t r;
    cr_assert_eq(ah_get(p2, "/metrics", NULL, &r), 0);
    cr_expect_eq(r.status, 401);
    char h[128];
    cr_expect(ah_header(&r, "WWW-Authenticate", h, sizeof h));
    ah_free(&r);
    cr_assert_eq(ah_get(p2, "/api/v1/status", "Authorization: Bearer wrong\r\n", &r), 0);
    cr_expect_eq(r.status, 401);
    ah_free(&r);
    cr_assert_eq(
        ah_get(p2, "/metrics", "Authorization: Bearer s3cret-token-for-tests-0123\r\n", &r), 0);
    cr_expect_eq(r.status, 200);
    ah_free(&r);
    cr_assert_eq(ah_get(p2, "/", NULL, &r), 0);
    cr_expect_eq(r.status, 200, "the dashboard page itself carries no data");
    cr_expect(ah_header(&r, "Content-Security-Policy", h, sizeof h) &&
                  strstr(h, "default-src 'self'") != NULL,
              "the page may load nothing from elsewhere");
    ah_free(&r);
    cr_expect_eq(rt_broker_stop(&b2, 10000), 0);
    rt_broker_cleanup(&b2);
}

Test(admin, relaisd_refuses_an_exposed_listener_without_a_private_token)
{
    rt_broker_t b2;
    memset(&b2, 0, sizeof(b2));
    const char *args[] = {"--admin", "0.0.0.0:0", NULL};
    cr_expect_neq(rt_broker_start(&b2, args, 10000), 0, "no token, not loopback: refused");
    cr_expect_eq(rt_broker_wait_log(&b2, "without a bearer token", T), 0);
    rt_broker_kill9(&b2);
    rt_broker_cleanup(&b2);

    memset(&b2, 0, sizeof(b2));
    char tok[400];
    snprintf(tok, sizeof tok, "%s/loose.token", broker.data_dir);
    write_token(tok, 0644);
    const char *args2[] = {"--admin", "0.0.0.0:0", "--admin-token", tok, NULL};
    cr_expect_neq(rt_broker_start(&b2, args2, 10000), 0, "a token others can read: refused");
    cr_expect_eq(rt_broker_wait_log(&b2, "mode 0600", T), 0);
    rt_broker_kill9(&b2);
    rt_broker_cleanup(&b2);
}

/* ---- relaisctl against the running broker ------------------------------------------- */

/* Runs relaisctl with args (a shell word list) against the test broker; returns its exit
 * status and its standard output (and error) in out. */
static int ctl(char *out, size_t out_len, const char *args)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s %s --data %s 2>&1", RELAISCTL_PATH, args, broker.data_dir);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = fread(out, 1, out_len - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(admin, relaisctl_answers_each_question_as_a_table_or_as_json)
{
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e[2];
    for (int i = 0; i < 2; i++) {
        rt_env_note(&e[i], NURSE, "ctl");
        cr_assert_eq(rt_client_submit(&gp, &e[i], T), 0);
    }
    static char out[65536];
    cr_assert_eq(ctl(out, sizeof out, "status"), 0, "%s", out);
    cr_expect(strstr(out, "ready              yes") != NULL || strstr(out, "ready ") != NULL, "%s",
              out);
    cr_expect(strstr(out, "accepted") != NULL && strstr(out, "  2\n") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof out, "sessions"), 0, "%s", out);
    cr_expect(strncmp(out, "ADDRESS", 7) == 0, "a header row: %s", out);
    cr_expect(strstr(out, GP "  gp") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof out, "mailboxes"), 0, "%s", out);
    cr_expect(strstr(out, NURSE "  nurse  no") != NULL, "%s", out);
    cr_assert_eq(ctl(out, sizeof out, "mailboxes --json"), 0, "%s", out);
    cr_expect(strstr(out, "\"address\":\"" NURSE "\",\"role\":\"nurse\",\"online\":false,"
                          "\"pending\":2") != NULL,
              "%s", out);
    cr_assert_eq(ctl(out, sizeof out, "agents"), 0, "%s", out);
    cr_expect(strstr(out, GP "  ") != NULL && strstr(out, "yes") != NULL, "%s", out);
    char id[37], args[128];
    relais_id_format(e[1].id, 16, id);
    snprintf(args, sizeof args, "message %s", id);
    cr_assert_eq(ctl(out, sizeof out, args), 0, "%s", out);
    cr_expect(strstr(out, "body_type") != NULL && strstr(out, "note") != NULL, "%s", out);
    cr_expect(strstr(out, NURSE "  stored") != NULL, "%s", out);
    cr_expect(strstr(out, "ctl\n") == NULL, "never the body");
    cr_assert_eq(ctl(out, sizeof out, "deadletters"), 0, "%s", out);
    cr_expect_str_eq(out, "(no dead_letters)\n");
    cr_expect_eq(ctl(out, sizeof out, "message 00000000000070008000000000000000"), 1);
    cr_expect(strstr(out, "no message with this id") != NULL, "%s", out);
    cr_expect_eq(ctl(out, sizeof out, "message nonsense"), 1);
    cr_expect(strstr(out, "32 hexadecimal digits") != NULL, "%s", out);
    cr_expect_eq(ctl(out, sizeof out, "sessions --limit 3"), 2, "usage error: %s", out);
    rt_client_close(&gp);
}

Test(admin, relaisctl_says_when_no_broker_answers)
{
    static char out[4096];
    char cmd[600];
    snprintf(cmd, sizeof cmd, "%s status --socket /nonexistent/relaisd.sock 2>&1", RELAISCTL_PATH);
    FILE *f = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, f);
    out[n] = '\0';
    int st = pclose(f);
    cr_expect_eq(WEXITSTATUS(st), 1);
    cr_expect(strstr(out, "cannot reach relaisd") != NULL, "%s", out);
}

Test(admin, relaisctl_kick_ends_a_session_and_http_cannot)
{
    rt_client_t nurse = rt_session(&broker, NURSE, 10);
    static char out[8192];
    cr_assert_eq(ctl(out, sizeof out, "kick " NURSE), 0, "%s", out);
    cr_expect(strstr(out, "kicked " NURSE) != NULL, "%s", out);
    Relais__V1__Frame *f;
    cr_assert_eq(rt_client_expect(&nurse, RELAIS__V1__FRAME__KIND_ERROR, T, &f), 0,
                 "the agent is told");
    cr_expect(f->error->fatal);
    relais_frame_free(&f);
    cr_expect_eq(rt_broker_wait_log(&broker, "kick agent=" NURSE, T), 0, "logged");
    cr_assert_eq(ctl(out, sizeof out, "sessions"), 0);
    cr_expect(strstr(out, NURSE) == NULL, "%s", out);
    cr_expect_eq(ctl(out, sizeof out, "kick " NURSE), 1);
    cr_expect(strstr(out, "has no session open") != NULL, "%s", out);
    rt_client_close(&nurse);

    cr_expect_eq(RAW("POST /api/v1/kick/" NURSE " HTTP/1.1\r\n\r\n"), 405,
                 "no write action over HTTP");
}

Test(admin, a_dead_letter_replayed_reaches_its_recipient_once_and_a_purge_forgets_them)
{
    /* A message expires while its recipient is away: a dead letter. */
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e;
    rt_env_note(&e, NURSE, "replay me");
    e.env.expires_at_ms = relais_now_ms() + 300;
    cr_assert_eq(rt_client_submit(&gp, &e, T), 0);
    char id[37];
    relais_id_format(e.id, 16, id);
    char needle[80];
    snprintf(needle, sizeof needle, "expired msg=%s", id);
    cr_assert_eq(rt_broker_wait_log(&broker, needle, T), 0);
    /* The expiry is recorded by the tick's batch; a later submission's Accepted proves that
     * batch committed (batches commit in order). */
    rt_env_t sync;
    rt_env_note(&sync, "rpps:10000000001", "sync");
    Relais__V1__Frame *acc;
    cr_assert_eq(rt_client_submit_nowait(&gp, &sync), 0);
    cr_assert_eq(rt_client_expect(&gp, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
    relais_frame_free(&acc);
    static char out[8192];
    char args[128];
    snprintf(args, sizeof args, "replay %s", id);
    int rc = ctl(out, sizeof out, args);
    cr_assert_eq(rc, 0, "%s", out);
    cr_expect(strstr(out, "replayed 1 dead letter") != NULL, "%s", out);
    cr_expect_eq(ctl(out, sizeof out, args), 1, "replayed already: nothing left to replay");
    /* The nurse connects: she gets it once, as a first attempt, with a new deadline. */
    rt_client_t nurse = rt_session(&broker, NURSE, 10);
    Relais__V1__Frame *d = rt_expect_note(&nurse, "replay me", T);
    cr_expect_eq(d->deliver->attempt, 1);
    cr_expect_gt(d->deliver->envelope->expires_at_ms, relais_now_ms());
    rt_client_ack(&nurse, e.id, RELAIS__V1__ACK__OUTCOME__PROCESSED, NULL);
    relais_frame_free(&d);
    cr_expect_neq(rt_client_expect(&nurse, RELAIS__V1__FRAME__KIND_DELIVER, 500, &d), 0,
                  "once only");
    cr_expect_eq(RAW("POST /api/v1/replay/00000000000000000000000000000000 HTTP/1.1\r\n\r\n"),
                 405, "no write action over HTTP");

    /* Another dead letter, then a purge of everything older than now. */
    rt_env_note(&e, NURSE, "purge me");
    e.env.expires_at_ms = relais_now_ms() + 300;
    rt_client_close(&nurse);
    cr_assert_eq(rt_broker_wait_log(&broker, "why=connection closed", T), 0);
    cr_assert_eq(rt_client_submit_nowait(&gp, &e), 0);
    cr_assert_eq(rt_client_expect(&gp, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
    relais_frame_free(&acc);
    relais_id_format(e.id, 16, id);
    snprintf(needle, sizeof needle, "expired msg=%s", id);
    cr_assert_eq(rt_broker_wait_log(&broker, needle, T), 0);
    rt_env_note(&sync, "rpps:10000000001", "sync");
    cr_assert_eq(rt_client_submit_nowait(&gp, &sync), 0);
    cr_assert_eq(rt_client_expect(&gp, RELAIS__V1__FRAME__KIND_ACCEPTED, T, &acc), 0);
    relais_frame_free(&acc);
    cr_assert_eq(ctl(out, sizeof out, "purge --older-than 0s"), 0, "%s", out);
    unsigned long purged = strtoul(out + (strncmp(out, "purged ", 7) == 0 ? 7 : 0), NULL, 10);
    cr_expect_geq(purged, 1, "%s", out);
    cr_assert_eq(ctl(out, sizeof out, "deadletters --json"), 0, "%s", out);
    cr_expect(strstr(out, id) == NULL, "purged: %s", out);
    cr_expect_eq(ctl(out, sizeof out, "purge"), 2, "--older-than is required");
    rt_client_close(&gp);
}

Test(admin, escalations_are_listed_by_identifiers_never_by_their_reason)
{
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t e;
    rt_env_note(&e, "staff:coordination@relais-test", "unused");
    Relais__V1__Escalation esc = RELAIS__V1__ESCALATION__INIT;
    esc.reason = "Mme Martin n'a pas ete vue depuis 3 jours";
    esc.responsible = NURSE;
    esc.original_body = "care_task_request";
    esc.deadline_ms = 1700000000000;
    e.env.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    e.env.escalation = &esc;
    cr_assert_eq(rt_client_submit(&gp, &e, T), 0);
    char id[37];
    relais_id_format(e.id, 16, id);
    ah_resp_t r;
    cr_assert_eq(ah_get(port, "/api/v1/escalations", NULL, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect(strstr(r.body, id) != NULL, "%s", r.body);
    cr_expect(strstr(r.body,
                     "\"sender\":\"" GP "\",\"to\":\"staff:coordination@relais-test\","
                     "\"responsible\":\"" NURSE "\",\"original_type\":\"care_task_request\","
                     "\"deadline_ms\":1700000000000") != NULL,
              "%s", r.body);
    cr_expect(strstr(r.body, "Martin") == NULL, "never the reason: %s", r.body);
    ah_free(&r);
    prom_t p;
    scrape(&p);
    cr_expect_eq(prom_get(&p, "relais_messages_accepted_total", "type=\"escalation\""), 1);
    prom_free(&p);
    static char out[8192];
    cr_assert_eq(ctl(out, sizeof out, "escalations"), 0, "%s", out);
    cr_expect(strstr(out, "care_task_request") != NULL && strstr(out, "Martin") == NULL, "%s", out);
    rt_client_close(&gp);
}

Test(admin, requests_near_their_deadline_are_listed_soonest_first)
{
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_env_t soon, later, fine;
    rt_env_note(&soon, NURSE, "soon");
    soon.env.expires_at_ms = relais_now_ms() + 3600 * 1000;
    rt_env_note(&later, NURSE, "later");
    later.env.expires_at_ms = relais_now_ms() + 5 * 3600 * 1000;
    rt_env_note(&fine, NURSE, "fine"); /* the default deadline: days away */
    cr_assert_eq(rt_client_submit(&gp, &later, T), 0);
    cr_assert_eq(rt_client_submit(&gp, &soon, T), 0);
    cr_assert_eq(rt_client_submit(&gp, &fine, T), 0);
    char s_id[37], l_id[37], f_id[37];
    relais_id_format(soon.id, 16, s_id);
    relais_id_format(later.id, 16, l_id);
    relais_id_format(fine.id, 16, f_id);
    ah_resp_t r;
    cr_assert_eq(ah_get(port, "/api/v1/atrisk", NULL, &r), 0);
    cr_expect_eq(r.status, 200);
    const char *ps = strstr(r.body, s_id), *pl = strstr(r.body, l_id);
    cr_expect(ps != NULL && pl != NULL && ps < pl, "soonest first: %s", r.body);
    cr_expect(strstr(r.body, f_id) == NULL, "a deadline days away is not at risk: %s", r.body);
    cr_expect(strstr(r.body, "\"recipient\":\"" NURSE "\",\"body_type\":\"note\","
                             "\"state\":\"stored\"") != NULL,
              "%s", r.body);
    ah_free(&r);
    cr_assert_eq(ah_get(port, "/api/v1/atrisk?within_ms=7200000", NULL, &r), 0);
    cr_expect(strstr(r.body, s_id) != NULL && strstr(r.body, l_id) == NULL, "%s", r.body);
    ah_free(&r);
    static char out[8192];
    cr_assert_eq(ctl(out, sizeof out, "atrisk --limit 1"), 0, "%s", out);
    cr_expect(strstr(out, s_id) != NULL && strstr(out, l_id) == NULL, "%s", out);
    cr_expect(strstr(out, "59m") != NULL || strstr(out, "1h00m") != NULL, "%s", out);
    rt_client_close(&gp);
}

Test(admin, admin_off_serves_no_http_and_a_taken_port_stops_the_start)
{
    rt_broker_t b2;
    memset(&b2, 0, sizeof(b2));
    const char *off[] = {"--admin", "off", NULL};
    cr_assert_eq(rt_broker_start(&b2, off, 10000), 0);
    cr_expect_eq(rt_broker_wait_log(&b2, "control socket path=", T), 0,
                 "relaisctl still reaches it");
    cr_expect_neq(rt_broker_wait_log(&b2, "admin listening", 300), 0, "no HTTP listener");
    cr_expect_eq(rt_broker_stop(&b2, 10000), 0);
    rt_broker_cleanup(&b2);

    memset(&b2, 0, sizeof(b2));
    char taken[64];
    snprintf(taken, sizeof taken, "127.0.0.1:%d", port);
    const char *clash[] = {"--admin", taken, NULL};
    cr_expect_neq(rt_broker_start(&b2, clash, 10000), 0, "an explicit address must be bound");
    cr_expect_eq(rt_broker_wait_log(&b2, "cannot listen on 127.0.0.1", T), 0);
    rt_broker_kill9(&b2);
    rt_broker_cleanup(&b2);

    ah_resp_t r;
    int fd = ah_connect(port);
    cr_assert_geq(fd, 0);
    cr_assert_eq(ah_exchange(fd, "HEAD /metrics HTTP/1.1\r\n\r\n", 26, T, &r), 0);
    cr_expect_eq(r.status, 200);
    cr_expect_eq(r.body_len, 0, "HEAD: headers only");
    char len[32];
    cr_expect(ah_header(&r, "Content-Length", len, sizeof len) && atoi(len) > 1000);
    ah_free(&r);
}
