/*
 * The dashboard in a real browser: headless Chromium (Debian's chromium) opens the page
 * served by a live relaisd with agents connected, runs its script, and the rendered DOM
 * must list the agents and show the same counts as the API. On failure a screenshot of the
 * page is saved next to the test binary (dashboard-failure.png); with
 * RELAIS_DASHBOARD_SCREENSHOT=PATH one is saved there on success too (the README's image).
 */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "admin_support.h"
#include "harness.h"

#define T 5000
#define CHROMIUM "/usr/bin/chromium"
#define GP "rpps:10101234567"
#define NURSE "rpps:10109876543"
#define HOSPITAL "finess:350000011"
#define PHYSIO "rpps:10100000002"

static rt_broker_t broker;
static int port;
static char profile[] = "/tmp/relais-chromium-XXXXXX";

static void start(void)
{
    memset(&broker, 0, sizeof(broker));
    static const char *args[] = {"--admin", "127.0.0.1:0", NULL};
    rt_suite_start(&broker, args);
    port = ah_admin_port(&broker);
    cr_assert_gt(port, 0);
    cr_assert_not_null(mkdtemp(profile));
}

static void stop(void)
{
    rt_suite_stop(&broker);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", profile);
    cr_expect_eq(system(cmd), 0);
}

TestSuite(dashboard, .init = start, .fini = stop, .timeout = 120);

/* Runs headless Chromium on the dashboard with mode ("--dump-dom" or
 * "--screenshot=PATH"), its standard output into out. The exit status. */
static int chromium(const char *mode, char *out, size_t out_len)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "timeout 90 " CHROMIUM " --headless --no-sandbox --disable-gpu --disable-quic "
             "--no-first-run --disable-background-networking --disable-component-update "
             "--disable-sync --disable-dev-shm-usage --user-data-dir=%s "
             "--virtual-time-budget=8000 --window-size=1440,1000 %s http://127.0.0.1:%d/ "
             "2>/dev/null",
             profile, mode, port);
    FILE *f = popen(cmd, "r");
    cr_assert_not_null(f);
    size_t n = 0, r;
    while (out && n + 1 < out_len && (r = fread(out + n, 1, out_len - 1 - n, f)) > 0) n += r;
    if (out)
        out[n] = '\0';
    else {
        char sink[4096];
        while (fread(sink, 1, sizeof sink, f) > 0) {
        }
    }
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void screenshot(const char *path)
{
    char mode[700];
    snprintf(mode, sizeof mode, "--hide-scrollbars --window-size=1440,1500 --screenshot=%s", path);
    chromium(mode, NULL, 0);
}

static int count(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = hay; (p = strstr(p, needle)) != NULL; p += strlen(needle)) n++;
    return n;
}

/* The text of the element with this id in the dumped DOM ("" if absent). */
static void text_of(const char *dom, const char *id, char *out, size_t out_len)
{
    char needle[80];
    snprintf(needle, sizeof needle, "id=\"%s\"", id);
    const char *p = strstr(dom, needle);
    out[0] = '\0';
    if (p == NULL || (p = strchr(p, '>')) == NULL) return;
    const char *e = strchr(++p, '<');
    if (e) snprintf(out, out_len, "%.*s", (int)(e - p), p);
}

Test(dashboard, the_rendered_page_lists_the_agents_with_the_apis_counts)
{
    rt_client_t gp = rt_session(&broker, GP, 10);
    rt_client_t nurse = rt_session(&broker, NURSE, 10);
    rt_client_t hosp = rt_session(&broker, HOSPITAL, 10);
    rt_env_t e[4];
    for (int i = 0; i < 3; i++) {
        rt_env_note(&e[i], PHYSIO, "for the offline physiotherapist");
        e[i].env.expires_at_ms = relais_now_ms() + (i + 1) * 3600 * 1000; /* two at risk */
        if (i == 2) e[i].env.expires_at_ms = 0;
        cr_assert_eq(rt_client_submit(&gp, &e[i], T), 0);
    }
    rt_env_t x;
    rt_env_note(&x, "staff:coordination@relais-test", "unused");
    Relais__V1__Escalation esc = RELAIS__V1__ESCALATION__INIT;
    esc.reason = "free text that must not show";
    esc.responsible = PHYSIO;
    esc.original_body = "care_task_request";
    x.env.body_case = RELAIS__V1__ENVELOPE__BODY_ESCALATION;
    x.env.escalation = &esc;
    cr_assert_eq(rt_client_submit(&gp, &x, T), 0);
    rt_env_note(&e[3], NURSE, "refused");
    cr_assert_eq(rt_client_submit(&hosp, &e[3], T), 0);
    Relais__V1__Frame *d = rt_expect_note(&nurse, "refused", T);
    cr_assert_eq(rt_client_ack(&nurse, d->deliver->envelope->message_id.data,
                               RELAIS__V1__ACK__OUTCOME__REFUSED, "no"),
                 0);
    relais_frame_free(&d);
    /* The refusal is a dead letter once committed: wait for it through the API. */
    ah_resp_t r;
    bool dead = ah_wait_for(port, "/api/v1/status", "\"dead_letters\":1", T);
    cr_assert(dead, "the refusal became a dead letter");

    cr_assert_eq(ah_get(port, "/api/v1/agents", NULL, &r), 0);
    int api_agents = count(r.body, "{\"address\":");
    int api_online = count(r.body, "\"online\":true");
    ah_free(&r);
    cr_assert_eq(api_online, 3);
    cr_assert_gt(api_agents, 10);

    static char dom[1 << 20];
    int rc = chromium("--dump-dom", dom, sizeof dom);
    char png[600];
    snprintf(png, sizeof png, "%s/dashboard-failure.png", DASHBOARD_SHOT_DIR);
    bool ok = rc == 0 && strstr(dom, "data-state=\"loaded\"") != NULL;
    char v[64];
    int dom_agents = count(dom, "<li class=\"agent\"");
    int dom_online = count(dom, "data-online=\"true\"");
    text_of(dom, "agents-online", v, sizeof v);
    int shown_online = atoi(v);
    text_of(dom, "agents-known", v, sizeof v);
    int shown_known = atoi(v);
    text_of(dom, "pending", v, sizeof v);
    int shown_pending = atoi(v);
    text_of(dom, "dead-count", v, sizeof v);
    int shown_dead = atoi(v);
    bool physio_row = strstr(dom, "<tr class=\"mailbox\" data-address=\"" PHYSIO "\">") != NULL;
    int dead_rows = count(dom, "<tr class=\"dead\">");
    int esc_rows = count(dom, "<tr class=\"escalation\">");
    int risk_rows = count(dom, "<tr class=\"risk");
    text_of(dom, "risk-count", v, sizeof v);
    int shown_risk = atoi(v);
    text_of(dom, "esc-count", v, sizeof v);
    int shown_esc = atoi(v);
    ok = ok && dom_agents == api_agents && dom_online == api_online && shown_online == api_online &&
         shown_known == api_agents && shown_pending == 4 && shown_dead == 1 && physio_row &&
         dead_rows == 1 && strstr(dom, "class=\"badge ok\">ready<") != NULL;
    if (!ok) screenshot(png);
    cr_assert_eq(rc, 0, "chromium ran (exit %d)", rc);
    cr_assert(strstr(dom, "data-state=\"loaded\"") != NULL,
              "the script loaded the API (screenshot: %s)", png);
    cr_expect_eq(dom_agents, api_agents, "every agent listed (screenshot: %s)", png);
    cr_expect_eq(dom_online, api_online, "online agents marked (screenshot: %s)", png);
    cr_expect_eq(shown_online, api_online);
    cr_expect_eq(shown_known, api_agents);
    cr_expect_eq(shown_pending, 4, "three for the physiotherapist, one for the coordinator");
    cr_expect_eq(shown_dead, 1);
    cr_expect(physio_row, "the physiotherapist's mailbox is listed (screenshot: %s)", png);
    cr_expect_eq(dead_rows, 1);
    cr_expect_eq(esc_rows, 1, "the escalation is listed (screenshot: %s)", png);
    cr_expect_eq(shown_esc, 1);
    cr_expect_eq(risk_rows, 2, "two deliveries near their deadline (screenshot: %s)", png);
    cr_expect_eq(shown_risk, 2);
    cr_expect(strstr(dom, "free text that must not show") == NULL, "never an escalation's reason");
    cr_expect(strstr(dom, "for the offline physiotherapist") == NULL, "never a message body");
    const char *keep = getenv("RELAIS_DASHBOARD_SCREENSHOT");
    if (keep != NULL) screenshot(keep);
    rt_client_close(&hosp);
    rt_client_close(&nurse);
    rt_client_close(&gp);
}
