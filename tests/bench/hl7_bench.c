/*
 * relais-hl7-bench: ADT^A03 end to end through the HL7 gateway — MLLP frame in, AA out —
 * with relaisd in its production configuration (CurveZMQ, a production territory) and the
 * GP's assistant connected and receiving, all on this machine. Senders are threads, one
 * MLLP connection each, one message in flight per connection as real engines do.
 *
 * Runs: 1 and 8 connections as fast as the gateway answers (messages/s, p50/p99 of frame
 * sent → ACK read), then 8 connections paced to 500 messages/s in total (open loop, each
 * send at its scheduled time, latency counted from that time). The baseline, measured in
 * the same run with the same client code, is an MLLP server that answers a fixed AA at
 * once: what the sockets and the client cost, with no gateway, broker or disk behind.
 *
 * Usage: relais-hl7-bench [--quick] [--messages N] [--outbox disk|memory]
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "relais/log.h"
#include "test_hl7_support.h"

typedef struct run {
    int port;
    int conns;
    int per_conn;
    double rate; /* total messages/s, 0: as fast as possible */
    const char *tag;
    atomic_int failures;
    pthread_mutex_t mu;
    hist_t lat;
} run_t;

typedef struct sender {
    run_t *run;
    int index;
} sender_t;

static void *send_loop(void *ud)
{
    sender_t *s = ud;
    run_t *r = s->run;
    hist_t *h = calloc(1, sizeof *h);
    int fd = hl7_connect(r->port);
    if (fd < 0) {
        atomic_fetch_add(&r->failures, r->per_conn);
        free(h);
        return NULL;
    }
    uint64_t start = bench_now_ns();
    double period_ns = r->rate > 0 ? 1e9 * r->conns / r->rate : 0;
    for (int i = 0; i < r->per_conn; i++) {
        char control[48], visit[48];
        snprintf(control, sizeof control, "%s-%d-%d", r->tag, s->index, i);
        snprintf(visit, sizeof visit, "VN-%s-%d-%d", r->tag, s->index, i);
        char *m = hl7_a03(control, visit);
        uint64_t t0 = bench_now_ns();
        if (period_ns > 0) {
            /* Open loop: each send has its time; latency counts from it, so a late answer
             * also delays what follows and shows in the figures (no coordinated omission). */
            uint64_t due = start + (uint64_t)(period_ns * i + period_ns * s->index / r->conns);
            if (due > t0) {
                struct timespec ts = {(time_t)(due / 1000000000u), (long)(due % 1000000000u)};
                clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            }
            t0 = due;
        }
        char code[4];
        int rc = hl7_roundtrip(fd, m, code, NULL, 30000);
        uint64_t t1 = bench_now_ns();
        free(m);
        if (rc != 0 || strcmp(code, "AA") != 0) {
            atomic_fetch_add(&r->failures, 1);
            continue;
        }
        hist_add(h, t1 - t0);
    }
    close(fd);
    pthread_mutex_lock(&r->mu);
    hist_merge(&r->lat, h);
    pthread_mutex_unlock(&r->mu);
    free(h);
    return NULL;
}

/* Runs one scenario and prints its line; returns the messages per second. */
static double run(int port, const char *what, const char *tag, int conns, int total, double rate)
{
    run_t r = {.port = port, .conns = conns, .per_conn = total / conns, .rate = rate, .tag = tag};
    pthread_mutex_init(&r.mu, NULL);
    pthread_t th[64];
    sender_t s[64];
    uint64_t t0 = bench_now_ns();
    for (int i = 0; i < conns; i++) {
        s[i] = (sender_t){&r, i};
        pthread_create(&th[i], NULL, send_loop, &s[i]);
    }
    for (int i = 0; i < conns; i++) pthread_join(th[i], NULL);
    double secs = (double)(bench_now_ns() - t0) / 1e9;
    double mps = (double)r.lat.n / secs;
    printf("%-44s %5d %9.0f %9.2f %9.2f %9.2f %6d\n", what, conns, mps,
           (double)hist_quantile(&r.lat, 0.50) / 1e6, (double)hist_quantile(&r.lat, 0.99) / 1e6,
           (double)r.lat.max_ns / 1e6, atomic_load(&r.failures));
    fflush(stdout);
    pthread_mutex_destroy(&r.mu);
    return mps;
}

/* ---- The baseline: an MLLP server answering AA at once ----------------------------- */

static const char mllp_baseline_ack[] =
    "\x0bMSH|^~\\&|RELAIS|CPTS|DXCARE|CHU-RENNES|20261201103001+0000"
    "||ACK^A03^ACK|R1|P|2.5\rMSA|AA|X\r\x1c\r";

static void *mllp_baseline_conn(void *ud)
{
    int fd = (int)(intptr_t)ud;
    char buf[65536];
    size_t len = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + len, sizeof buf - len, 0);
        if (n <= 0) break;
        len += (size_t)n;
        /* Answer every complete frame (end block and CR) received so far. */
        size_t done = 0;
        for (size_t i = 0; i + 1 < len; i++) {
            if (buf[i] == 0x1C && buf[i + 1] == 0x0D) {
                if (send(fd, mllp_baseline_ack, sizeof mllp_baseline_ack - 1, MSG_NOSIGNAL) < 0)
                    goto out;
                done = i + 2;
            }
        }
        memmove(buf, buf + done, len - done);
        len -= done;
        if (len == sizeof buf) break;
    }
out:
    close(fd);
    return NULL;
}

static void *mllp_baseline_accept(void *ud)
{
    int lfd = (int)(intptr_t)ud;
    for (;;) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) return NULL;
        pthread_t th;
        pthread_create(&th, NULL, mllp_baseline_conn, (void *)(intptr_t)fd);
        pthread_detach(th);
    }
}

static int mllp_baseline_start(void)
{
    int lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(lfd, (struct sockaddr *)&a, sizeof a) != 0 || listen(lfd, 64) != 0) return -1;
    getsockname(lfd, (struct sockaddr *)&a, &al);
    pthread_t th;
    pthread_create(&th, NULL, mllp_baseline_accept, (void *)(intptr_t)lfd);
    pthread_detach(th);
    return ntohs(a.sin_port);
}

/* The gateway answers AR until its agent has the broker's Welcome: probe until AA. */
static bool gateway_ready(int port)
{
    int fd = hl7_connect(port);
    if (fd < 0) return false;
    char *m = hl7_a03("PROBE", "VN-PROBE");
    char code[4] = "";
    for (int i = 0; i < 1000 && strcmp(code, "AA") != 0; i++) {
        if (hl7_roundtrip(fd, m, code, NULL, 15000) != 0) break;
        if (strcmp(code, "AA") != 0) {
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL); /* a benchmark's start-up, not a test's synchronisation */
        }
    }
    free(m);
    close(fd);
    return strcmp(code, "AA") == 0;
}

int main(int argc, char **argv)
{
    int total = 8000;
    const char *outbox = "disk";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--outbox") == 0 && i + 1 < argc) outbox = argv[++i];
        if (strcmp(argv[i], "--quick") == 0) total = 400;
        if (strcmp(argv[i], "--messages") == 0 && i + 1 < argc) total = atoi(argv[++i]);
    }
    if (total < 16) total = 16;
    setenv("HL7_GW_LOG_LEVEL", "warn", 1);
    setenv("HL7_GW_OUTBOX", outbox, 1);
    relais_log_set_level(RELAIS_LOG_WARN);
    rt_broker_t broker = {0};
    if (rt_broker_start(&broker, NULL, 15000) != 0) return 1;
    hl7_receiver_t assistant;
    hl7_gwproc_t gw;
    if (hl7_receiver_start(&assistant, &broker, HL7_ASSISTANT) != 0 ||
        hl7_gw_start(&gw, &broker, NULL) != 0 || !gateway_ready(gw.port)) {
        fprintf(stderr, "relais-hl7-bench: could not start the territory\n");
        rt_broker_kill9(&broker);
        return 1;
    }
    int base = mllp_baseline_start();
    if (base < 0) return 1;

    char *sample = hl7_a03("X", "Y");
    printf("relais-hl7-bench: ADT^A03 (%zu-byte message) over MLLP; relaisd with CURVE, a\n"
           "production territory; the GP's assistant connected; %d messages per run;\n"
           "gateway outbox: %s\n",
           strlen(sample), total, outbox);
    free(sample);
    printf("%-44s %5s %9s %9s %9s %9s %6s\n", "scenario", "conns", "msgs/s", "p50 ms", "p99 ms",
           "max ms", "errors");
    run(gw.port, "warm-up (gateway)", "W", 8, total / 4, 0);
    run(base, "baseline: MLLP server answering AA at once", "B1", 1, total, 0);
    run(gw.port, "relais-hl7 + relaisd, AA after Accepted", "G1", 1, total, 0);
    run(base, "baseline: MLLP server answering AA at once", "B8", 8, total, 0);
    run(gw.port, "relais-hl7 + relaisd, AA after Accepted", "G8", 8, total, 0);
    int paced = total / 2 < 2500 ? total / 2 : 2500;
    run(gw.port, "relais-hl7 + relaisd, paced 500 msgs/s", "P8", 8, paced, 500);

    hl7_gw_stop(&gw);
    hl7_gw_cleanup(&gw);
    hl7_receiver_stop(&assistant);
    rt_broker_stop(&broker, 10000);
    rt_broker_cleanup(&broker);
    return 0;
}
