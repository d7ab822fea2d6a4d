/*
 * relais-bench: measures a real relaisd against the performance goals of the issue and
 * against a plain ZeroMQ forwarder on the same machine, and prints one table.
 *
 * relaisd runs as in production: CurveZMQ, a production territory directory in which every
 * bench client is enrolled with its own key, the audit journal. --insecure runs it in its
 * development mode instead (no encryption, addresses declared in Hello), for comparison.
 *
 * Scenarios, each on a fresh broker with a fresh data directory:
 *   e2e       N producers → M consumers, closed loop with a window, 200 B and 2 KiB,
 *             --durability full and os: msgs/s from first submit to last ack, latencies
 *             submit→Accepted and submit→Deliver.
 *   baseline  the same clients and frames through an in-process ROUTER forwarder, plain
 *             ZeroMQ; with --baseline-curve also with CURVE on the same sockets.
 *   paced     open loop at a fixed offered rate (10,000 msg/s): submit→Accepted.
 *   backlog   K messages queued for an offline consumer: broker RSS, kill -9, time to
 *             ready with that backlog, then drain rate and RSS while draining.
 *
 * It exits 0 unless something failed functionally (a client could not start, a message
 * accepted was never delivered, a submission was refused): a missed target is a finding,
 * not a failure, so the --quick smoke test passes on any machine.
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <zmq.h>

#include "bench.h"

#ifndef RELAISD_PATH
#define RELAISD_PATH "relaisd"
#endif

#define IDLE_MS 30000
#define START_MS 120000

typedef struct opts {
    const char *relaisd;
    bool quick, full;
    double duration;
    unsigned producers, consumers, window;
    size_t size; /* 0: both 200 B and 2 KiB */
    uint64_t backlog;
    double rate;
    char only[128];
    bool keep_data; /* backlog: leave the data directory for profiling a restart */
    bool insecure;  /* relaisd --insecure and plain clients instead of CURVE */
    bool baseline_curve; /* also run the baseline with CURVE */
    bench_keys_t keys;
} opts_t;

/* What the targets are checked against, filled as scenarios run (negative: not run). */
typedef struct summary {
    double e2e_full_200, e2e_rate[2][2]; /* [durability full/os][200 B / 2 KiB] */
    double base_rate[2][2];              /* [plain / CURVE][200 B / 2 KiB] */
    double paced_p50_ms, paced_p99_ms;
    double ready_s, drain_rate;
    long rss_kb;
    uint64_t backlog;
    bool failed;
} summary_t;

static bool wanted(const opts_t *o, const char *name)
{
    if (o->only[0] == '\0') return true;
    char list[130];
    snprintf(list, sizeof(list), ",%s,", o->only);
    char needle[32];
    snprintf(needle, sizeof(needle), ",%s,", name);
    return strstr(list, needle) != NULL;
}

static double self_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static double ms(const hist_t *h, double q)
{
    return (double)hist_quantile(h, q) / 1e6;
}

static void print_header(void)
{
    printf("\n%-9s %-5s %6s %9s %9s | %-23s | %-23s | %5s %5s %5s %4s\n", "scenario", "dur.",
           "size", "messages", "msg/s", "submit→accepted ms", "submit→delivered ms",
           "brk%", "cli%", "oth%", "lost");
    printf("%-9s %-5s %6s %9s %9s | %7s %7s %7s | %7s %7s %7s | %5s %5s %5s %4s\n", "", "", "",
           "", "", "p50", "p99", "p999", "p50", "p99", "p999", "cpu", "cpu", "cpu", "");
}

/* CPU use of one scenario, in % of one CPU over its measured interval. */
typedef struct cpu_use {
    double broker, client, other;
} cpu_use_t;

typedef struct cpu_mark {
    pid_t pid;
    uint64_t at_ns;
    double broker, self, system;
} cpu_mark_t;

static cpu_mark_t cpu_mark(pid_t pid)
{
    cpu_mark_t m = {.pid = pid, .at_ns = bench_now_ns(), .broker = pid ? proc_cpu_s(pid) : 0,
                    .self = self_cpu_s(), .system = system_busy_s()};
    return m;
}

/* CPU used since the mark, as % of one CPU over the wall time since the mark. */
static cpu_use_t cpu_since(const cpu_mark_t *m)
{
    cpu_mark_t now = cpu_mark(m->pid);
    double t = (double)(now.at_ns - m->at_ns) / 1e9;
    if (t <= 0) t = 1e-9;
    cpu_use_t u = {.broker = m->pid ? 100 * (now.broker - m->broker) / t : -1,
                   .client = 100 * (now.self - m->self) / t};
    double all = 100 * (now.system - m->system) / t;
    u.other = all - u.client - (u.broker > 0 ? u.broker : 0);
    if (u.other < 0) u.other = 0;
    return u;
}

static void print_row(const char *name, const char *dur, size_t size, const run_result_t *r,
                      double rate, cpu_use_t cpu)
{
    double broker_cpu = cpu.broker, client_cpu = cpu.client;
    char brk[16];
    if (broker_cpu >= 0) snprintf(brk, sizeof(brk), "%.0f", broker_cpu);
    else snprintf(brk, sizeof(brk), "-");
    printf("%-9s %-5s %6zu %9llu %9.0f | %7.2f %7.2f %7.2f | %7.2f %7.2f %7.2f | %5s %5.0f %5.0f "
           "%4llu\n",
           name, dur, size, (unsigned long long)r->accepted, rate, ms(&r->accepted_lat, 0.5),
           ms(&r->accepted_lat, 0.99), ms(&r->accepted_lat, 0.999), ms(&r->delivered_lat, 0.5),
           ms(&r->delivered_lat, 0.99), ms(&r->delivered_lat, 0.999), brk, client_cpu,
           cpu.other, (unsigned long long)r->lost);
    fflush(stdout);
}

/* The checks that make a run functionally correct, whatever the machine's speed. */
static bool sane(const char *what, const run_result_t *r, bool expect_delivery)
{
    bool ok = r->accepted > 0 && r->lost == 0 && r->rejected == 0 && r->errors == 0 &&
              (!expect_delivery || r->delivered >= r->accepted) &&
              hist_quantile(&r->accepted_lat, 0.5) <= hist_quantile(&r->accepted_lat, 0.99) &&
              hist_quantile(&r->accepted_lat, 0.99) <= hist_quantile(&r->accepted_lat, 0.999);
    if (!ok)
        fprintf(stderr,
                "relais-bench: %s FAILED: accepted=%llu delivered=%llu lost=%llu "
                "rejected=%llu errors=%llu\n",
                what, (unsigned long long)r->accepted, (unsigned long long)r->delivered,
                (unsigned long long)r->lost, (unsigned long long)r->rejected,
                (unsigned long long)r->errors);
    return ok;
}

static run_cfg_t base_cfg(const opts_t *o, void *zctx, const char *endpoint, size_t size)
{
    run_cfg_t c = {.target = TARGET_RELAIS, .endpoint = endpoint, .zctx = zctx,
                   .keys = o->insecure ? NULL : &o->keys,
                   .producers = o->producers, .consumers = o->consumers,
                   .destinations = o->consumers, .window = o->window, .size = size,
                   .duration_s = o->duration};
    return c;
}

/* Stops the broker; after a functional failure its data directory and log stay for
 * inspection. */
static void finish_broker(broker_proc_t *b, int rc)
{
    if (b->pid) broker_proc_stop(b, SIGTERM, 60000);
    if (rc < 0 && b->data_dir[0]) {
        fprintf(stderr, "relais-bench: broker data and log kept in %s\n", b->data_dir);
        return;
    }
    broker_proc_cleanup(b);
}

/* A broker as the options want it: CURVE and the bench territory unless --insecure. */
static broker_proc_t broker_for(const opts_t *o, const char *durability)
{
    broker_proc_t b = {.path = o->relaisd, .durability = durability,
                       .keys = o->insecure ? NULL : &o->keys,
                       .pending_max = o->backlog + 1000000};
    return b;
}

/* Closed-loop end to end, against relaisd (durability "full"/"os") or, with durability
 * NULL, the baseline (with CURVE when curve). */
static int scenario_e2e(const opts_t *o, void *zctx, const char *durability, bool curve,
                        size_t size, unsigned tag, summary_t *sum)
{
    broker_proc_t b = broker_for(o, durability);
    baseline_t *bl = NULL;
    char endpoint[128];
    if (durability != NULL) {
        if (broker_proc_start(&b, START_MS) < 0) return -1;
        snprintf(endpoint, sizeof(endpoint), "%s", b.endpoint);
    } else if (baseline_start(&bl, zctx, curve ? &o->keys.broker : NULL, endpoint,
                              sizeof(endpoint)) < 0) {
        return -1;
    }
    run_cfg_t cfg = base_cfg(o, zctx, endpoint, size);
    cfg.target = durability ? TARGET_RELAIS : TARGET_BASELINE;
    if (durability == NULL) cfg.keys = curve ? &o->keys : NULL;
    cfg.tag = tag;
    run_t *r = NULL;
    run_result_t *res = calloc(1, sizeof(*res));
    int rc = res != NULL && run_new(&r, &cfg) == 0 ? 0 : -1;
    cpu_mark_t mark = cpu_mark(b.pid);
    if (rc == 0) rc = run_consume_start(r);
    if (rc == 0) {
        rc = run_produce(r);
        if (run_consume_wait(r, IDLE_MS, NULL, NULL) < 0) rc = -1;
    }
    if (r != NULL && res != NULL) {
        run_result(r, res);
        double rate = res->e2e_s > 0 ? (double)res->accepted / res->e2e_s : 0;
        print_row(durability ? "e2e" : "baseline",
                  durability ? durability : curve ? "curve" : "-", size, res, rate,
                  cpu_since(&mark));
        if (!sane(durability ? "e2e" : "baseline", res, true)) rc = -1;
        int si = size <= 200 ? 0 : 1;
        if (durability == NULL) sum->base_rate[curve][si] = rate;
        else sum->e2e_rate[strcmp(durability, "full") == 0 ? 0 : 1][si] = rate;
        if (durability != NULL && strcmp(durability, "full") == 0 && size == 200)
            sum->e2e_full_200 = rate;
    }
    run_free(&r);
    free(res);
    if (bl != NULL) baseline_stop(&bl);
    finish_broker(&b, rc);
    return rc;
}

/* Open loop at o->rate msgs/s: latency at a fixed offered load. */
static int scenario_paced(const opts_t *o, void *zctx, const char *durability, size_t size,
                          unsigned tag, summary_t *sum)
{
    broker_proc_t b = broker_for(o, durability);
    if (broker_proc_start(&b, START_MS) < 0) return -1;
    run_cfg_t cfg = base_cfg(o, zctx, b.endpoint, size);
    cfg.rate = o->rate;
    cfg.tag = tag;
    run_t *r = NULL;
    run_result_t *res = calloc(1, sizeof(*res));
    int rc = res != NULL && run_new(&r, &cfg) == 0 ? 0 : -1;
    cpu_mark_t mark = cpu_mark(b.pid);
    if (rc == 0) rc = run_consume_start(r);
    if (rc == 0) {
        rc = run_produce(r);
        if (run_consume_wait(r, IDLE_MS, NULL, NULL) < 0) rc = -1;
    }
    if (r != NULL && res != NULL) {
        run_result(r, res);
        double t = res->produce_s > 0 ? res->produce_s : 1;
        double rate = (double)res->accepted / t;
        print_row("paced", durability, size, res, rate, cpu_since(&mark));
        if (res->late_sends)
            printf("          (%llu submissions left over 1 ms after their due time)\n",
                   (unsigned long long)res->late_sends);
        if (!sane("paced", res, true)) rc = -1;
        if (strcmp(durability, "full") == 0) { /* the target is for the default */
            sum->paced_p50_ms = ms(&res->accepted_lat, 0.5);
            sum->paced_p99_ms = ms(&res->accepted_lat, 0.99);
        }
    }
    run_free(&r);
    free(res);
    finish_broker(&b, rc);
    return rc;
}

typedef struct rss_probe {
    pid_t pid;
    long max_kb;
} rss_probe_t;

static void sample_rss(void *ud)
{
    rss_probe_t *p = ud;
    long kb = proc_rss_kb(p->pid);
    if (kb > p->max_kb) p->max_kb = kb;
}

/* Copies the data directory as the kill -9 left it, so that the restart can be profiled
 * on its own: relaisd --data COPY under perf or callgrind. */
static void keep_copy(const broker_proc_t *b)
{
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "cp -a '%s' '%s-queued'", b->data_dir, b->data_dir);
    if (system(cmd) == 0) printf("backlog: data directory with the backlog kept in %s-queued\n",
                                 b->data_dir);
}

/* K messages for one offline consumer; kill -9; restart; drain. */
static int scenario_backlog(const opts_t *o, void *zctx, size_t size, unsigned tag,
                            summary_t *sum)
{
    broker_proc_t b = broker_for(o, "full");
    if (broker_proc_start(&b, START_MS) < 0) return -1;
    run_cfg_t cfg = base_cfg(o, zctx, b.endpoint, size);
    cfg.consumers = cfg.destinations = 1;
    cfg.duration_s = 0;
    cfg.quota = (o->backlog + o->producers - 1) / o->producers;
    cfg.tag = tag;
    run_t *r = NULL;
    run_result_t *res = calloc(1, sizeof(*res));
    int rc = res != NULL && run_new(&r, &cfg) == 0 ? 0 : -1;
    if (rc == 0) rc = run_produce(r);
    if (rc == 0) {
        run_result(r, res);
        long rss_queued = proc_rss_kb(b.pid);
        printf("\nbacklog: %llu queued for one offline consumer in %.2f s (%.0f msg/s), "
               "broker RSS %.1f MB\n",
               (unsigned long long)res->accepted, res->produce_s,
               res->produce_s > 0 ? (double)res->accepted / res->produce_s : 0,
               (double)rss_queued / 1024);
        broker_proc_stop(&b, SIGKILL, 10000);
        if (o->keep_data) keep_copy(&b);
        rc = broker_proc_start(&b, START_MS);
        if (rc == 0) {
            long rss_ready = proc_rss_kb(b.pid);
            printf("backlog: kill -9 and restart: ready in %.3f s, RSS after recovery %.1f MB\n",
                   b.ready_s, (double)rss_ready / 1024);
            sum->ready_s = b.ready_s;
            sum->rss_kb = rss_queued > rss_ready ? rss_queued : rss_ready;
            sum->backlog = res->accepted;
            /* The run keeps its accounting across the restart and points at b.endpoint,
             * which now holds the new port. */
        }
    }
    if (rc == 0 && r != NULL) {
        rss_probe_t probe = {.pid = b.pid};
        cpu_mark_t mark = cpu_mark(b.pid);
        rc = run_consume_start(r);
        if (rc == 0 && run_consume_wait(r, IDLE_MS, sample_rss, &probe) < 0) rc = -1;
        run_result(r, res);
        double t = res->consume_s > 0 ? res->consume_s : 1;
        cpu_use_t cpu = cpu_since(&mark);
        sum->drain_rate = (double)res->delivered / t;
        if (probe.max_kb > sum->rss_kb) sum->rss_kb = probe.max_kb;
        printf("backlog: drained %llu in %.2f s (%.0f msg/s), redelivered %llu, lost %llu, "
               "peak RSS while draining %.1f MB, CPU broker %.0f %% bench %.0f %% other %.0f %%\n",
               (unsigned long long)res->delivered, res->consume_s, sum->drain_rate,
               (unsigned long long)res->redelivered, (unsigned long long)res->lost,
               (double)probe.max_kb / 1024, cpu.broker, cpu.client, cpu.other);
        if (!sane("backlog", res, true)) rc = -1;
    }
    run_free(&r);
    free(res);
    finish_broker(&b, rc);
    return rc;
}

/* One line of the targets table; value < 0 means the scenario did not run. */
static void target_line(const char *what, double value, const char *unit, const char *target,
                        bool pass, const char *note)
{
    char v[32];
    if (value < 0) snprintf(v, sizeof(v), "-");
    else snprintf(v, sizeof(v), value >= 1000 ? "%.0f %s" : "%.2f %s", value, unit);
    printf("%-44s %16s  %-12s %s%s\n", what, v, target,
           value < 0 ? "not run" : pass ? "PASS" : "MISS", value < 0 ? "" : note);
}

static void print_targets(const opts_t *o, const summary_t *s)
{
    printf("\n%-44s %16s  %-12s %s\n",
           o->insecure ? "Targets (issue), relaisd --insecure" : "Targets (issue), CURVE",
           "measured", "target", "verdict");
    target_line("durable (full) e2e, 200 B, window 1000", s->e2e_full_200, "msg/s",
                ">= 50,000", s->e2e_full_200 >= 50000, "");
    target_line("p50 submit->accepted at 10,000 msg/s", s->paced_p50_ms, "ms", "<= 1 ms",
                s->paced_p50_ms <= 1.0, "");
    target_line("p99 submit->accepted at 10,000 msg/s", s->paced_p99_ms, "ms", "<= 5 ms",
                s->paced_p99_ms <= 5.0, "");
    char note[96] = "";
    if (s->backlog > 0 && s->backlog < 1000000)
        snprintf(note, sizeof(note), "  (indicative: %llu queued, not 1M; run --full)",
                 (unsigned long long)s->backlog);
    target_line("restart with 1M queued: time to ready", s->ready_s, "s", "<= 3 s",
                s->ready_s <= 3.0, note);
    target_line("backlog drain", s->drain_rate, "msg/s", ">= 50,000", s->drain_rate >= 50000,
                "");
    target_line("broker RSS with 1M queued", s->rss_kb < 0 ? -1 : (double)s->rss_kb / 1024,
                "MB", "<= 200 MB", s->rss_kb <= 200 * 1024, note);
    for (int c = 0; c < 2; c++)
        for (int i = 0; i < 2; i++) {
            double base = s->base_rate[c][i];
            if (base <= 0) continue;
            printf("relais (%s) / %s baseline at %-5s: full %.2fx, os %.2fx "
                   "(baseline %.0f msg/s)\n",
                   o->insecure ? "insecure" : "CURVE", c ? "CURVE" : "plain",
                   i == 0 ? "200 B" : "2 KiB", s->e2e_rate[0][i] / base,
                   s->e2e_rate[1][i] / base, base);
        }
}

static void usage(FILE *out)
{
    fprintf(out,
            "usage: relais-bench [options]\n"
            "  --quick            small counts, a few seconds in all (the ctest smoke test)\n"
            "  --full             1,000,000-message backlog (default 100,000)\n"
            "  --duration S       seconds each closed-loop and paced run submits (5)\n"
            "  --producers N      producer threads (2)\n"
            "  --consumers N      consumer threads (2)\n"
            "  --window W         submissions unanswered per producer, consumer credit (1000)\n"
            "  --size BYTES       only this Submit frame size (default: 200 and 2048)\n"
            "  --rate R           offered load of the paced run in msg/s (10000)\n"
            "  --backlog K        messages queued in the backlog run\n"
            "  --only LIST        comma list of e2e,baseline,paced,backlog\n"
            "  --relaisd PATH     broker binary (default: the one built with this bench)\n"
            "  --keep-data        keep the backlog's data directory (to profile a restart)\n"
            "  --insecure         relaisd --insecure and clients without CURVE (development\n"
            "                     mode, for comparison; the default is CURVE as in production)\n"
            "  --baseline-curve   also run the baseline forwarder with CURVE\n");
}

static int parse_opts(int argc, char **argv, opts_t *o)
{
    static const struct option lo[] = {
        {"quick", no_argument, NULL, 'q'},         {"full", no_argument, NULL, 'F'},
        {"duration", required_argument, NULL, 'd'}, {"producers", required_argument, NULL, 'p'},
        {"consumers", required_argument, NULL, 'c'}, {"window", required_argument, NULL, 'w'},
        {"size", required_argument, NULL, 's'},     {"rate", required_argument, NULL, 'r'},
        {"backlog", required_argument, NULL, 'k'},  {"only", required_argument, NULL, 'o'},
        {"relaisd", required_argument, NULL, 'R'},  {"help", no_argument, NULL, 'h'},
        {"keep-data", no_argument, NULL, 'K'},      {"insecure", no_argument, NULL, 'I'},
        {"baseline-curve", no_argument, NULL, 'B'},
        {NULL, 0, NULL, 0},
    };
    *o = (opts_t){.relaisd = RELAISD_PATH, .duration = 5, .producers = 2, .consumers = 2,
                  .window = 1000, .rate = 10000};
    long long backlog = -1;
    double duration = -1;
    int c;
    while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (c) {
        case 'q': o->quick = true; break;
        case 'F': o->full = true; break;
        case 'd': duration = atof(optarg); break;
        case 'p': o->producers = (unsigned)atoi(optarg); break;
        case 'c': o->consumers = (unsigned)atoi(optarg); break;
        case 'w': o->window = (unsigned)atoi(optarg); break;
        case 's': o->size = (size_t)atol(optarg); break;
        case 'r': o->rate = atof(optarg); break;
        case 'k': backlog = atoll(optarg); break;
        case 'o': snprintf(o->only, sizeof(o->only), "%s", optarg); break;
        case 'R': o->relaisd = optarg; break;
        case 'K': o->keep_data = true; break;
        case 'I': o->insecure = true; break;
        case 'B': o->baseline_curve = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    o->duration = duration > 0 ? duration : o->quick ? 0.5 : 5;
    o->backlog = backlog > 0 ? (uint64_t)backlog : o->full ? 1000000 : o->quick ? 5000 : 100000;
    if (optind < argc || o->producers < 1 || o->producers > BENCH_MAX_CLIENTS ||
        o->consumers < 1 || o->consumers > BENCH_MAX_CLIENTS || o->window < 1 ||
        o->window > 60000 || o->rate <= 0 || (o->size != 0 && (o->size < 64 || o->size > 1000000))) {
        fprintf(stderr, "relais-bench: bad option values\n");
        usage(stderr);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    opts_t o;
    if (parse_opts(argc, argv, &o) < 0) return 2;
    if (bench_keys_generate(&o.keys) < 0) return 2;
    /* Two I/O threads: the clients' side should not be what limits the figures. */
    void *zctx = zmq_ctx_new();
    zmq_ctx_set(zctx, ZMQ_IO_THREADS, 2);
    size_t sizes[2] = {200, 2048};
    unsigned nsizes = 2;
    if (o.size) {
        sizes[0] = o.size;
        nsizes = 1;
    }
    summary_t sum = {.e2e_full_200 = -1, .paced_p50_ms = -1, .paced_p99_ms = -1,
                     .ready_s = -1, .drain_rate = -1, .rss_kb = -1};
    printf("relais-bench: relaisd=%s security=%s producers=%u consumers=%u window=%u "
           "duration=%.1fs rate=%.0f backlog=%llu\n",
           o.relaisd, o.insecure ? "insecure" : "curve", o.producers, o.consumers, o.window,
           o.duration, o.rate, (unsigned long long)o.backlog);
    print_header();
    unsigned tag = 1;
    int failures = 0;
    for (unsigned i = 0; i < nsizes; i++) {
        if (wanted(&o, "e2e")) {
            failures += scenario_e2e(&o, zctx, "full", false, sizes[i], tag++, &sum) < 0;
            failures += scenario_e2e(&o, zctx, "os", false, sizes[i], tag++, &sum) < 0;
        }
        if (wanted(&o, "baseline")) {
            failures += scenario_e2e(&o, zctx, NULL, false, sizes[i], tag++, &sum) < 0;
            if (o.baseline_curve)
                failures += scenario_e2e(&o, zctx, NULL, true, sizes[i], tag++, &sum) < 0;
        }
    }
    if (wanted(&o, "paced")) {
        failures += scenario_paced(&o, zctx, "full", sizes[0], tag++, &sum) < 0;
        failures += scenario_paced(&o, zctx, "os", sizes[0], tag++, &sum) < 0;
    }
    if (wanted(&o, "backlog")) failures += scenario_backlog(&o, zctx, sizes[0], tag++, &sum) < 0;
    print_targets(&o, &sum);
    zmq_ctx_term(zctx);
    if (failures) {
        printf("\nrelais-bench: %d scenario(s) FAILED functionally (see stderr)\n", failures);
        return 1;
    }
    return 0;
}
