/*
 * relais-fault-agent: an SDK agent as a process of its own, for fault tests that kill it.
 *
 *   relais-fault-agent --endpoint E --address A [--state FILE] [--log LEVEL]
 *                      (--produce N --to ADDR | --consume) [--credit C]
 *
 * A producer submits N Notes whose texts are "n0" … "n<N-1>", as fast as the outbox takes
 * them (a batch per loop turn, so answers are read in between), and prints `sent-all N` once
 * relais_agent_send() has returned 0 for every one — from then on they are all on disk when
 * there is a state file. It prints `accepted <i>` as each callback reports Accepted,
 * `failed <i> <error>` for a rejection, and `recovered <message-id> status=<s> duplicate=<d>`
 * for the outcome of a submission a previous run left in the state file. A consumer prints
 * `handled <text> attempt=<k> from=<sender>` for each call of its Note handler. Both print
 * `ready` on each Welcome. Every line is flushed as it is written, so that a test reading
 * the pipe sees exactly what happened before a kill.
 *
 * SIGTERM stops the agent in order (exit status 0). SIGUSR1 makes the process kill itself
 * with SIGKILL from its loop, between two frames: a crash at a known boundary, never inside
 * the window between a handler's return and its dedup record, where the SDK documents that
 * a handler may run twice.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "relais/agent.h"
#include "relais/keys.h"
#include "relais/log.h"

/* Submissions per loop turn: enough to fill the outbox fast, few enough to keep reading. */
#define PRODUCE_BATCH 32

typedef struct fault_agent {
    relais_agent_t *agent;
    uv_loop_t loop;
    uv_signal_t term, usr1;
    uv_idle_t produce;
    const char *to;
    long total; /* messages to produce */
    long next;  /* the next one to submit */
} fault_agent_t;

static void say(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
}

static void on_state(relais_agent_t *agent, relais_agent_state_t state, const char *detail,
                     void *ud)
{
    if (state == RELAIS_AGENT_READY) say("ready");
}

static void on_sent(relais_agent_t *agent, const relais_send_result_t *r, void *ud)
{
    long i = (long)(intptr_t)ud;
    if (r->status == 0)
        say("accepted %ld", i);
    else
        say("failed %ld %s", i, relais_err_name(r->status));
}

static void on_recovered(relais_agent_t *agent, const relais_send_result_t *r, void *ud)
{
    char id[37];
    relais_id_format(r->message_id, RELAIS_MESSAGE_ID_LEN, id);
    say("recovered %s status=%d duplicate=%d", id, r->status, r->duplicate);
}

static relais_outcome_t on_note(relais_agent_t *agent, relais_delivery_t *d, void *ud)
{
    say("handled %s attempt=%u from=%s", d->envelope->note->text, d->attempt, d->envelope->sender);
    return RELAIS_PROCESSED;
}

static void on_produce(uv_idle_t *idle)
{
    fault_agent_t *fa = idle->data;
    for (int k = 0; k < PRODUCE_BATCH && fa->next < fa->total; k++) {
        Relais__V1__Envelope env = RELAIS__V1__ENVELOPE__INIT;
        Relais__V1__Note note = RELAIS__V1__NOTE__INIT;
        char text[32];
        char *to[1] = {(char *)fa->to};
        snprintf(text, sizeof(text), "n%ld", fa->next);
        note.text = text;
        env.to = to;
        env.n_to = 1;
        env.body_case = RELAIS__V1__ENVELOPE__BODY_NOTE;
        env.note = &note;
        int rc = relais_agent_send(fa->agent, &env, NULL, on_sent, (void *)(intptr_t)fa->next);
        if (rc != 0) {
            /* The test sees the line and fails; stop producing rather than spin. */
            say("send-error %ld %s", fa->next, relais_err_name(rc));
            uv_idle_stop(idle);
            return;
        }
        fa->next++;
    }
    if (fa->next == fa->total) {
        say("sent-all %ld", fa->total);
        uv_idle_stop(idle);
    }
}

static void on_term(uv_signal_t *sig, int signum)
{
    fault_agent_t *fa = sig->data;
    uv_close((uv_handle_t *)&fa->term, NULL);
    uv_close((uv_handle_t *)&fa->usr1, NULL);
    uv_close((uv_handle_t *)&fa->produce, NULL);
    relais_agent_stop(fa->agent);
}

static void on_usr1(uv_signal_t *sig, int signum)
{
    raise(SIGKILL);
}

static void usage(void)
{
    fprintf(stderr, "usage: relais-fault-agent --endpoint E --address A [--state FILE] "
                    "[--log LEVEL] [--credit C] (--produce N --to ADDR | --consume)\n");
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"endpoint", required_argument, NULL, 'e'},
                                             {"address", required_argument, NULL, 'a'},
                                             {"state", required_argument, NULL, 's'},
                                             {"produce", required_argument, NULL, 'p'},
                                             {"to", required_argument, NULL, 't'},
                                             {"consume", no_argument, NULL, 'c'},
                                             {"credit", required_argument, NULL, 'C'},
                                             {"log", required_argument, NULL, 'l'},
                                             {"key", required_argument, NULL, 'k'},
                                             {"server-key", required_argument, NULL, 'K'},
                                             {NULL, 0, NULL, 0}};
    fault_agent_t fa = {.total = -1};
    relais_agent_options_t opts = {.software = "relais-fault-agent/1", .heartbeat_ms = 500};
    bool consume = false;
    const char *log_level = "warn";
    char pub[41], sec[41], server[41], why[RELAIS_REASON_MAX];
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'e':
            opts.endpoint = optarg;
            break;
        case 'a':
            opts.address = optarg;
            break;
        case 's':
            opts.state_path = optarg;
            break;
        case 'p':
            fa.total = strtol(optarg, NULL, 10);
            break;
        case 't':
            fa.to = optarg;
            break;
        case 'c':
            consume = true;
            break;
        case 'C':
            opts.credit = (unsigned)strtoul(optarg, NULL, 10);
            break;
        case 'l':
            log_level = optarg;
            break;
        case 'k':
            if (relais_keyfile_read(optarg, pub, sec, why, sizeof(why)) != 0) {
                fprintf(stderr, "relais-fault-agent: %s\n", why);
                return 2;
            }
            opts.curve_public_key = pub;
            opts.curve_secret_key = sec;
            break;
        case 'K':
            if (relais_pubkey_read(optarg, server, why, sizeof(why)) != 0) {
                fprintf(stderr, "relais-fault-agent: %s\n", why);
                return 2;
            }
            opts.curve_server_key = server;
            break;
        default:
            usage();
            return 2;
        }
    }
    if (consume == (fa.total >= 0) || (fa.total > 0 && !fa.to) ||
        relais_log_set_level_name(log_level) != 0) {
        usage();
        return 2;
    }

    if (uv_loop_init(&fa.loop) != 0) return 1;
    opts.loop = &fa.loop;
    int rc = relais_agent_new(&fa.agent, &opts);
    if (rc != 0) {
        fprintf(stderr, "relais-fault-agent: %s\n", relais_strerror(rc));
        return 1;
    }
    relais_agent_on_state(fa.agent, on_state, &fa);
    relais_agent_on_recovered(fa.agent, on_recovered, &fa);
    if (consume) relais_agent_on(fa.agent, RELAIS__V1__ENVELOPE__BODY_NOTE, on_note, &fa);

    uv_signal_init(&fa.loop, &fa.term);
    uv_signal_init(&fa.loop, &fa.usr1);
    uv_idle_init(&fa.loop, &fa.produce);
    fa.term.data = fa.usr1.data = fa.produce.data = &fa;
    uv_signal_start(&fa.term, on_term, SIGTERM);
    uv_signal_start(&fa.usr1, on_usr1, SIGUSR1);
    if (!consume) uv_idle_start(&fa.produce, on_produce);

    if ((rc = relais_agent_start(fa.agent)) != 0) {
        fprintf(stderr, "relais-fault-agent: %s\n", relais_strerror(rc));
        return 1;
    }
    uv_run(&fa.loop, UV_RUN_DEFAULT);
    relais_agent_destroy(&fa.agent);
    return uv_loop_close(&fa.loop) == 0 ? 0 : 1;
}
