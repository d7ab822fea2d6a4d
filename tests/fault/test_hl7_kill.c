/*
 * relais-hl7 under kill -9: a sender streams ADT^A03 over MLLP as a hospital engine does
 * (each message resent until AA, reconnecting when the connection drops), while another
 * thread kills the gateway — or, in the second test, the broker — with SIGKILL in the
 * middle of the stream and starts it again on the same state. At the end every message was
 * AA'd, and each was delivered exactly once to the GP's assistant's handler.
 */
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "test_hl7_support.h"

#define N_MESSAGES 300
#define KILL_AFTER 100
#define WAIT 20000

static rt_broker_t broker;
static hl7_gwproc_t gw;
static hl7_receiver_t assistant;

/* The restarts, as the sender learns of them. */
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int restarts;
static int acked; /* messages AA'd so far */
static bool kill_broker;

/* What the sender thread found; the test thread asserts on it (Criterion asserts belong
 * to the test's own thread). */
typedef struct sender {
    char failure[256];
    int ar, reconnects;
} sender_t;

/* Waits (bounded) for the test thread to report a restart after `seen`. */
static int wait_restart(int seen)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT / 1000;
    pthread_mutex_lock(&mu);
    while (restarts == seen && pthread_cond_timedwait(&cv, &mu, &dl) == 0) continue;
    int r = restarts;
    pthread_mutex_unlock(&mu);
    return r;
}

static int current_restarts(void)
{
    pthread_mutex_lock(&mu);
    int r = restarts;
    pthread_mutex_unlock(&mu);
    return r;
}

/* The hospital engine: each message resent until AA, reconnecting as needed. */
static void *send_all(void *ud)
{
    sender_t *s = ud;
    int fd = -1;
    for (int i = 1; i <= N_MESSAGES && s->failure[0] == '\0'; i++) {
        char control[32], visit[32];
        snprintf(control, sizeof control, "K-%d", i);
        snprintf(visit, sizeof visit, "VN-K-%d", i);
        char *m = hl7_a03(control, visit);
        char code[4] = "";
        int attempts = 0;
        while (strcmp(code, "AA") != 0) {
            if (++attempts > 5000) {
                snprintf(s->failure, sizeof s->failure, "message %d never AA'd", i);
                break;
            }
            if (fd < 0) {
                fd = hl7_connect(gw.port);
                if (fd < 0) {
                    /* Refused: the gateway is down; wait for its restart, then retry. */
                    int seen = current_restarts();
                    if (seen == 0) wait_restart(seen);
                    continue;
                }
                s->reconnects++;
            }
            if (hl7_roundtrip(fd, m, code, NULL, WAIT) != 0) {
                close(fd); /* the connection died with the gateway: reconnect and resend */
                fd = -1;
                code[0] = '\0';
                continue;
            }
            if (strcmp(code, "AR") == 0) {
                s->ar++;
                /* Broker or session not there yet: an engine waits, then resends. */
                int seen = current_restarts();
                if (seen == 0) wait_restart(seen);
                rt_broker_wait_log(&gw.log, "broker channel=test state=ready", 50);
            } else if (strcmp(code, "AA") != 0) {
                snprintf(s->failure, sizeof s->failure, "message %d answered %s", i, code);
                break;
            }
        }
        free(m);
        pthread_mutex_lock(&mu);
        acked = i;
        pthread_cond_broadcast(&cv);
        pthread_mutex_unlock(&mu);
    }
    if (fd >= 0) close(fd);
    return NULL;
}

static void stream(void)
{
    sender_t s = {0};
    pthread_t th;
    pthread_create(&th, NULL, send_all, &s);
    /* The kill comes mid-stream (the sender keeps going after KILL_AFTER), from this
     * thread: relaisd dies with the thread that started it (PR_SET_PDEATHSIG), so it must
     * be restarted by one that lives on. */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT / 1000;
    pthread_mutex_lock(&mu);
    while (acked < KILL_AFTER && pthread_cond_timedwait(&cv, &mu, &dl) == 0) continue;
    pthread_mutex_unlock(&mu);
    if (kill_broker) {
        rt_broker_kill9(&broker);
    } else {
        hl7_gw_kill9(&gw);
    }
    pthread_mutex_lock(&mu);
    int acked_at_kill = acked;
    pthread_mutex_unlock(&mu);
    int rc = kill_broker ? rt_broker_start(&broker, NULL, WAIT) : hl7_gw_restart(&gw);
    pthread_mutex_lock(&mu);
    restarts++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    pthread_join(th, NULL);
    cr_assert_eq(rc, 0, "restart");
    cr_assert(acked_at_kill >= KILL_AFTER && acked_at_kill < N_MESSAGES,
              "killed with %d of %d acknowledged", acked_at_kill, N_MESSAGES);
    cr_assert_str_eq(s.failure, "");
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, N_MESSAGES, WAIT), 0,
                 "only %d of %d delivered", assistant.discharges, N_MESSAGES);
    for (int i = 1; i <= N_MESSAGES; i++) {
        char visit[32];
        snprintf(visit, sizeof visit, "VN-K-%d", i);
        cr_assert_eq(hl7_receiver_count(&assistant, visit), 1, "%s delivered %d times", visit,
                     hl7_receiver_count(&assistant, visit));
    }
    cr_assert_eq(assistant.discharges, N_MESSAGES);
    cr_log_info("%d messages, killed after %d AA, %d AR answered, %d connections", N_MESSAGES,
                acked_at_kill, s.ar, s.reconnects);
    if (!kill_broker) cr_assert_geq(s.reconnects, 2, "the sender saw the gateway die");
}

static void setup(void)
{
    memset(&broker, 0, sizeof broker);
    restarts = 0;
    acked = 0;
    rt_suite_start(&broker, NULL);
    cr_assert_eq(hl7_receiver_start(&assistant, &broker, HL7_ASSISTANT), 0);
    cr_assert_eq(hl7_gw_start(&gw, &broker, NULL), 0);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "state=ready", WAIT), 0);
}

static void teardown(void)
{
    if (getenv("HL7_TEST_KEEP") != NULL) { /* debugging aid: keep both logs */
        char cmd[1024];
        snprintf(cmd, sizeof cmd, "cp %s /tmp/hl7-gw.log; cp %s /tmp/hl7-broker.log",
                 gw.log.log_path, broker.log_path);
        if (system(cmd) != 0) cr_log_warn("could not keep the logs");
    }
    hl7_gw_stop(&gw);
    hl7_gw_cleanup(&gw);
    hl7_receiver_stop(&assistant);
    rt_suite_stop(&broker);
}

TestSuite(hl7_kill, .init = setup, .fini = teardown, .timeout = 120);

Test(hl7_kill, every_message_acknowledged_is_delivered_once_across_a_gateway_kill)
{
    kill_broker = false;
    stream();
}

Test(hl7_kill, every_message_acknowledged_is_delivered_once_across_a_broker_kill)
{
    kill_broker = true;
    stream();
}
