/*
 * A vendor's smallest agent, built by tests/package/test_sdk_link.sh against the installed
 * SDK with nothing but `pkg-config --cflags --libs relais`: it checks that the library it
 * runs with is the version its headers describe, connects to the broker given on the
 * command line, and exits 0 once the broker has welcomed it (1 on any failure, or when no
 * Welcome came within 10 s).
 *
 * Usage: sdk_hello ENDPOINT ADDRESS
 */
/* agent.h includes uv.h, which needs POSIX types that strict -std=c11 hides. */
#define _POSIX_C_SOURCE 200809L

#include <stdio.h>
#include <string.h>

#include <relais/agent.h>
#include <relais/version.h>

static int status = 1;

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    (void)detail;
    (void)ud;
    if (state == RELAIS_AGENT_READY) {
        printf("sdk_hello: ready as %s with librelais-agent %s\n", relais_agent_address(agent),
               relais_version());
        status = 0;
        relais_agent_stop(agent);
    }
}

static void on_timeout(relais_agent_t *agent, void *ud)
{
    (void)ud;
    fprintf(stderr, "sdk_hello: no Welcome within 10 s\n");
    relais_agent_stop(agent);
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: sdk_hello ENDPOINT ADDRESS\n");
        return 2;
    }
    if (relais_version_number() != RELAIS_VERSION_NUMBER) {
        fprintf(stderr, "sdk_hello: headers are %d, library is %s\n", RELAIS_VERSION_NUMBER,
                relais_version());
        return 1;
    }
    relais_agent_options_t opts;
    memset(&opts, 0, sizeof opts);
    opts.endpoint = argv[1];
    opts.address = argv[2];
    opts.software = "sdk_hello/1";
    relais_agent_t *agent = NULL;
    int rc = relais_agent_new(&agent, &opts);
    if (rc != 0) {
        fprintf(stderr, "sdk_hello: relais_agent_new: %s\n", relais_strerror(rc));
        return 1;
    }
    relais_agent_on_state(agent, on_state, NULL);
    uint64_t timer;
    relais_agent_timer(agent, 10000, on_timeout, NULL, &timer);
    rc = relais_agent_run(agent);
    if (rc != 0) {
        fprintf(stderr, "sdk_hello: relais_agent_run: %s\n", relais_strerror(rc));
        status = 1;
    }
    relais_agent_destroy(&agent);
    return status;
}
