/*
 * relais-hl7: the HL7 v2 gateway program. Reads its configuration (--config, see
 * docs/HL7.md), runs the gateway on its own loop until SIGTERM or SIGINT (SIGHUP reloads
 * the territory directory), and stops in
 * order: listeners and connections closed, agents stopped (their unconfirmed submissions
 * stay in their state files for the next run).
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "channel.h"
#include "gateway.h"
#include "relais/log.h"

typedef struct app {
    gw_t *gw;
    uv_signal_t term, intr, hup;
} app_t;

static void on_hup(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    gw_reload(app->gw);
}

static void on_signal(uv_signal_t *s, int signum)
{
    app_t *app = s->data;
    RLOG(RELAIS_LOG_INFO, "hl7", "signal=%d stopping", signum);
    gw_stop(app->gw);
    /* Both signal handles close so that the loop can run out once the gateway has. */
    if (!uv_is_closing((uv_handle_t *)&app->term)) uv_close((uv_handle_t *)&app->term, NULL);
    if (!uv_is_closing((uv_handle_t *)&app->intr)) uv_close((uv_handle_t *)&app->intr, NULL);
    if (!uv_is_closing((uv_handle_t *)&app->hup)) uv_close((uv_handle_t *)&app->hup, NULL);
}

static void usage(const char *prog)
{
    printf("usage: %s --config FILE [--log-level error|warn|info|debug] [--log-json]\n"
           "The HL7 v2 (MLLP) gateway of a Relais territory (docs/HL7.md).\n"
           "  --check   load and check the configuration, then exit\n",
           prog);
}

int main(int argc, char **argv)
{
    const char *config = NULL;
    bool check = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config = argv[++i];
        } else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
            if (relais_log_set_level_name(argv[++i]) != 0) {
                fprintf(stderr, "relais-hl7: unknown log level '%s'\n", argv[i]);
                return 2;
            }
        } else if (strcmp(argv[i], "--log-json") == 0) {
            relais_log_set_json(true);
        } else if (strcmp(argv[i], "--check") == 0) {
            check = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(argv[0]);
            return 0;
        } else {
            usage(argv[0]);
            return 2;
        }
    }
    if (config == NULL) {
        usage(argv[0]);
        return 2;
    }
    hl7_config_t *cfg = NULL;
    char err[1024];
    if (hl7_config_load(config, NULL, 0, &cfg, err, sizeof err) != 0) {
        fprintf(stderr, "relais-hl7: %s\n", err);
        return 1;
    }
    if (check) {
        printf("relais-hl7: %s: %zu channel(s), configuration valid\n", config, cfg->n_channels);
        hl7_config_free(&cfg);
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    uv_loop_t loop;
    uv_loop_init(&loop);
    gw_t *gw = NULL;
    int rc = gw_start(&gw, &loop, cfg, stdout);
    if (rc != 0) {
        fprintf(stderr, "relais-hl7: could not start (see the log above)\n");
        hl7_config_free(&cfg);
        uv_loop_close(&loop);
        return 1;
    }
    app_t app = {.gw = gw};
    uv_signal_init(&loop, &app.term);
    uv_signal_init(&loop, &app.intr);
    uv_signal_init(&loop, &app.hup);
    app.term.data = app.intr.data = app.hup.data = &app;
    uv_signal_start(&app.term, on_signal, SIGTERM);
    uv_signal_start(&app.intr, on_signal, SIGINT);
    uv_signal_start(&app.hup, on_hup, SIGHUP);
    uv_run(&loop, UV_RUN_DEFAULT);
    gw_destroy(&gw);
    hl7_config_free(&cfg);
    uv_loop_close(&loop);
    return 0;
}
