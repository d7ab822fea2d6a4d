/*
 * The relaisd child process of relais-bench: start it on an ephemeral port with a data
 * directory of its own, time how long it takes to print its ready line (the restart
 * figure), stop or kill it, and read its memory and CPU use from /proc.
 *
 * In the production configuration (the default) the bench is a territory of its own: the
 * broker's keypair and every client's are generated when the bench starts, and each data
 * directory gets broker.key and a production territory.yaml enrolling every bench address,
 * written the way relaisctl keygen and a CPTS would (tests/support/harness.c does the same
 * for the integration tests).
 *
 * The process itself is common/relaisd_child.c's (shared with the tests' harness and the
 * demo): it gets PR_SET_PDEATHSIG so that an interrupted benchmark never leaves a broker
 * behind, and its stderr goes to relaisd.log in the data directory, kept for reading when a
 * run goes wrong.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "relaisd_child.h"
#include "relais/codec.h"

/* ---- The bench territory ------------------------------------------------------------ */

void bench_producer_address(unsigned n, char out[BENCH_ADDR_MAX])
{
    snprintf(out, BENCH_ADDR_MAX, "staff:bench-p%u@bench", n);
}

void bench_consumer_address(unsigned n, char out[BENCH_ADDR_MAX])
{
    snprintf(out, BENCH_ADDR_MAX, "rpps:%011llu", 10000000000ull + n);
}

int bench_keys_generate(bench_keys_t *k)
{
    if (zmq_curve_keypair(k->broker.pub, k->broker.sec) != 0) goto err;
    for (unsigned i = 0; i < BENCH_MAX_CLIENTS; i++)
        if (zmq_curve_keypair(k->producer[i].pub, k->producer[i].sec) != 0 ||
            zmq_curve_keypair(k->consumer[i].pub, k->consumer[i].sec) != 0)
            goto err;
    return 0;
err:
    fprintf(stderr, "relais-bench: zmq_curve_keypair: %s (libzmq built without CURVE?)\n",
            zmq_strerror(errno));
    return -1;
}

/* The production directory of the bench territory. Producers are medical assistants and
 * consumers nurses, as in a real territory; the default rule for notes (participants of a
 * conversation only) is lifted to any → any because the bench sends notes outside any
 * conversation, and the limits are lifted above anything the bench offers, so that what
 * is measured is the broker's speed and not its rate limiter. */
static int write_directory(const broker_proc_t *b, const char *path)
{
    char tmp[320];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (f == NULL) return -1;
    fprintf(f,
            "territory: relais-bench\nproduction: true\n"
            "limits: {submissions_per_second: 1000000, pending_per_mailbox: %llu}\n"
            "acl:\n  %s: {senders: [any], recipients: [any]}\nagents:\n",
            (unsigned long long)(b->pending_max ? b->pending_max : 2000000),
            relais_body_name(RELAIS__V1__ENVELOPE__BODY_NOTE));
    char address[BENCH_ADDR_MAX];
    for (unsigned i = 0; i < BENCH_MAX_CLIENTS; i++) {
        bench_producer_address(i, address);
        fprintf(f, "  - address: \"%s\"\n    role: medical_assistant\n    public_key: \"%s\"\n",
                address, b->keys->producer[i].pub);
        bench_consumer_address(i, address);
        fprintf(f, "  - address: \"%s\"\n    role: nurse\n    public_key: \"%s\"\n", address,
                b->keys->consumer[i].pub);
    }
    if (fclose(f) != 0) return -1;
    return rename(tmp, path);
}

/* ---- The process ------------------------------------------------------------------- */

int broker_proc_start(broker_proc_t *b, int timeout_ms)
{
    char err[512];
    if (b->data_dir[0] == '\0' && relaisd_child_mkdata(b->data_dir, sizeof(b->data_dir),
                                                       "relais-bench", err, sizeof(err)) < 0) {
        fprintf(stderr, "relais-bench: %s\n", err);
        return -1;
    }
    snprintf(b->log_path, sizeof(b->log_path), "%s/relaisd.log", b->data_dir);
    char dir_path[300], key_path[300];
    snprintf(dir_path, sizeof(dir_path), "%s/territory.yaml", b->data_dir);
    snprintf(key_path, sizeof(key_path), "%s/broker.key", b->data_dir);
    const char *argv[16] = {b->path,     "--bind",       "tcp://127.0.0.1:0", "--data",
                            b->data_dir, "--durability", b->durability};
    int argc = 7;
    if (b->keys == NULL) {
        argv[argc++] = "--insecure";
    } else {
        if (relaisd_child_write_keyfile(key_path, b->keys->broker.pub, b->keys->broker.sec,
                                        "relais-bench") < 0 ||
            write_directory(b, dir_path) < 0) {
            fprintf(stderr, "relais-bench: cannot write the bench territory in %s: %s\n",
                    b->data_dir, strerror(errno));
            return -1;
        }
        argv[argc++] = "--directory";
        argv[argc++] = dir_path;
        argv[argc++] = "--curve-key";
        argv[argc++] = key_path;
    }
    argv[argc] = NULL;
    relaisd_ready_t ready;
    if (relaisd_child_start(argv, b->log_path, timeout_ms, &b->pid, &b->stdout_fd, &ready, err,
                            sizeof(err)) < 0) {
        fprintf(stderr, "relais-bench: %s\n", err);
        b->stdout_fd = 0;
        return -1;
    }
    b->ready_s = ready.took_s;
    snprintf(b->endpoint, sizeof(b->endpoint), "%s", ready.endpoint);
    return 0;
}

double broker_proc_stop(broker_proc_t *b, int sig, int timeout_ms)
{
    if (b->pid <= 0) return -1;
    double took;
    relaisd_child_stop(&b->pid, &b->stdout_fd, sig, timeout_ms, &took);
    b->stdout_fd = 0;
    return took;
}

void broker_proc_cleanup(broker_proc_t *b)
{
    relaisd_child_rmdata(b->data_dir);
    b->data_dir[0] = '\0';
}

long proc_rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    long kb = -1;
    while (fgets(line, sizeof(line), f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1) break;
    fclose(f);
    return kb;
}

double proc_cpu_s(pid_t pid)
{
    char path[64], buf[1024];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces and parentheses: fields count from the last ')'. */
    char *p = strrchr(buf, ')');
    if (p == NULL) return -1;
    unsigned long long utime, stime;
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

double system_busy_s(void)
{
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL) return -1;
    unsigned long long v[8] = {0};
    int n = fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3],
                   &v[4], &v[5], &v[6], &v[7]);
    fclose(f);
    if (n != 8) return -1;
    /* user nice system idle iowait irq softirq steal: everything but idle and iowait. */
    unsigned long long busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    return (double)busy / (double)sysconf(_SC_CLK_TCK);
}
