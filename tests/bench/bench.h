/*
 * relais-bench internals shared across the benchmark's files.
 *
 * The benchmark measures a real relaisd child process from the outside, with raw ZeroMQ
 * clients that speak the protocol by hand (not the SDK), one thread and one socket per
 * client. The same client code also drives an in-process plain ROUTER forwarder, so that
 * Relais's throughput can be read as a ratio of what ZeroMQ alone does on the same machine
 * with the same clients. Files: main.c (options, scenarios, report), clients.c (producer
 * and consumer threads, accounting of every message), baseline.c (the forwarder),
 * proc.c (the broker process: start, stop, RSS, CPU time; the bench territory: CURVE keys
 * and directory), hist.c (latency histograms).
 *
 * By default everything runs as in production: relaisd with CurveZMQ and a territory
 * directory, every client with its own enrolled key. --insecure runs relaisd in its
 * development mode and the clients without CURVE, to show what CURVE costs.
 */
#ifndef RELAIS_BENCH_H
#define RELAIS_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_CLIENTS 32
#define BENCH_ADDR_MAX 64

/* ---- hist.c: log-linear latency histogram (about 3 % resolution) ------------------- */

#define HIST_SUB_BITS 5
#define HIST_BUCKETS ((64 - HIST_SUB_BITS + 1) << HIST_SUB_BITS)

typedef struct hist {
    uint64_t counts[HIST_BUCKETS];
    uint64_t n;
    uint64_t max_ns;
} hist_t;

void hist_add(hist_t *h, uint64_t ns);
void hist_merge(hist_t *into, const hist_t *from);
/* The value at quantile q (0..1) in nanoseconds; 0 for an empty histogram. */
uint64_t hist_quantile(const hist_t *h, double q);

/* Monotonic nanoseconds (CLOCK_MONOTONIC: one clock for every process on the machine). */
uint64_t bench_now_ns(void);

/* ---- proc.c: the bench territory ---------------------------------------------------- */

/* A CURVE keypair in Z85 (40 characters and a NUL each). */
typedef struct bench_keypair {
    char pub[41];
    char sec[41];
} bench_keypair_t;

/* The keys of one bench run: the broker's and one per client address the bench can use
 * (producer N is staff:bench-pN@bench, consumer N is rpps:1000000000N). */
typedef struct bench_keys {
    bench_keypair_t broker;
    bench_keypair_t producer[BENCH_MAX_CLIENTS];
    bench_keypair_t consumer[BENCH_MAX_CLIENTS];
} bench_keys_t;

/* The address of producer / consumer n, as enrolled in the bench directory. */
void bench_producer_address(unsigned n, char out[BENCH_ADDR_MAX]);
void bench_consumer_address(unsigned n, char out[BENCH_ADDR_MAX]);

/* Generates every keypair with zmq_curve_keypair(). 0, or -1 (libzmq without CURVE). */
int bench_keys_generate(bench_keys_t *k);

/* ---- proc.c: the relaisd child process --------------------------------------------- */

typedef struct broker_proc {
    const char *path;       /* relaisd binary */
    char data_dir[256];     /* fresh temporary directory, kept across restarts */
    char log_path[300];     /* the broker's stderr */
    char endpoint[128];     /* read back from the ready line */
    const char *durability; /* "full" or "os" */
    const bench_keys_t *keys; /* CURVE and a production directory; NULL: --insecure */
    uint64_t pending_max;     /* the directory's pending_per_mailbox (CURVE only) */
    pid_t pid;
    int stdout_fd;
    double ready_s;         /* exec to ready line, last start */
} broker_proc_t;

/* Starts relaisd (creating the data directory on first start) on tcp://127.0.0.1:0 and
 * waits up to timeout_ms for its ready line. With keys, the first start also writes
 * broker.key and territory.yaml into the data directory (a production directory: every
 * bench address enrolled with its key, the limits lifted above what the bench offers,
 * notes allowed from anyone to anyone) and relaisd runs with --directory and --curve-key.
 * 0, or -1 with the reason on stderr. */
int broker_proc_start(broker_proc_t *b, int timeout_ms);

/* Sends sig and reaps the process, waiting up to timeout_ms (then SIGKILL). Returns the
 * seconds the exit took, or -1 on timeout. */
double broker_proc_stop(broker_proc_t *b, int sig, int timeout_ms);

/* Removes the data directory. */
void broker_proc_cleanup(broker_proc_t *b);

/* Resident set size of a process (VmRSS) in KiB, or -1. */
long proc_rss_kb(pid_t pid);

/* User + system CPU seconds of a process, all threads included, or -1. */
double proc_cpu_s(pid_t pid);

/* CPU seconds the whole machine spent busy (every process, every CPU), or -1. What is
 * neither the broker nor the bench is load from elsewhere, which skews the figures. */
double system_busy_s(void);

/* ---- baseline.c: a plain ROUTER forwarder thread ----------------------------------- */

typedef struct baseline baseline_t;

/* Binds a ROUTER on tcp://127.0.0.1:* in ctx and forwards [src][dst][payload] as
 * [dst][src][payload] on its own thread; a one-part message is echoed (client sync).
 * With server (may be NULL) the ROUTER is a CURVE server with that keypair and no ZAP
 * handler, so it accepts any client key: the transport's cost, not authentication's.
 * 0 or -1. */
int baseline_start(baseline_t **out, void *zctx, const bench_keypair_t *server, char *endpoint,
                   size_t endpoint_len);
void baseline_stop(baseline_t **bl);

/* ---- clients.c: producers and consumers -------------------------------------------- */

typedef enum target { TARGET_RELAIS, TARGET_BASELINE } target_t;

typedef struct run_cfg {
    target_t target;
    const char *endpoint;
    void *zctx;               /* shared by the client threads, one socket each */
    const bench_keys_t *keys; /* CURVE: each client uses its address's keypair; NULL: plain */
    unsigned producers;
    unsigned consumers;       /* consumer threads started by run_consume_start() */
    unsigned destinations;    /* consumer addresses producers send to, round-robin */
    unsigned window;          /* producer: submissions unanswered; consumer: credit */
    size_t size;              /* encoded Submit frame size in bytes */
    double duration_s;        /* producers stop submitting after this (0: no limit) */
    uint64_t quota;           /* messages per producer (0: no limit) */
    double rate;              /* total offered msgs/s, open loop (0: closed loop) */
    unsigned tag;             /* distinguishes message ids of successive runs */
} run_cfg_t;

typedef struct run_result {
    uint64_t submitted, accepted, duplicates, rejected, errors;
    uint64_t delivered, redelivered, dup_deliveries, lost;
    uint64_t late_sends;      /* paced: submissions sent over 1 ms after their due time */
    double produce_s;         /* first submit to last Accepted */
    double e2e_s;             /* first submit to last ack sent */
    double consume_s;         /* consumers' start to last ack (backlog drain) */
    hist_t accepted_lat;      /* submit → Accepted */
    hist_t delivered_lat;     /* submit → Deliver received */
} run_result_t;

typedef struct run run_t;

/* Prepares a run: consumer addresses, message templates, accounting bitmaps. 0 or -1. */
int run_new(run_t **out, const run_cfg_t *cfg);
void run_free(run_t **r);

/* Starts the consumer threads and returns once every one has its session. 0 or -1. */
int run_consume_start(run_t *r);

/* Runs the producers to the end (duration or quota, then every answer in). 0 or -1 when a
 * client could not start or its answers stopped coming. */
int run_produce(run_t *r);

/* Waits until every accepted message was delivered and acked, or until no delivery came
 * for idle_ms; calls sample(ud) about every 50 ms meanwhile (may be NULL). Stops and joins
 * the consumers. 0 when everything arrived, -1 otherwise. */
int run_consume_wait(run_t *r, int idle_ms, void (*sample)(void *ud), void *ud);

/* Fills out with the counts and latencies (lost computed from the bitmaps). */
void run_result(run_t *r, run_result_t *out);

#endif /* RELAIS_BENCH_H */
