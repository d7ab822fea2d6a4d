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
 * The child gets PR_SET_PDEATHSIG so that an interrupted benchmark never leaves a broker
 * behind; its stderr goes to relaisd.log in the data directory, kept for reading when a
 * run goes wrong.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zmq.h>

#include "bench.h"
#include "relais/codec.h"

#define READY_PREFIX "relaisd ready endpoint="

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

/* A keypair file as relaisctl keygen writes it: the broker refuses one readable by others. */
static int write_keyfile(const char *path, const bench_keypair_t *kp)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    char text[200];
    int n = snprintf(text, sizeof(text),
                     "# Relais CURVE keypair (relais-bench)\npublic-key: %s\nsecret-key: %s\n",
                     kp->pub, kp->sec);
    int rc = write(fd, text, (size_t)n) == n ? 0 : -1;
    if (close(fd) < 0) rc = -1;
    return rc;
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
    if (b->data_dir[0] == '\0') {
        const char *tmp = getenv("TMPDIR");
        snprintf(b->data_dir, sizeof(b->data_dir), "%s/relais-bench-XXXXXX", tmp ? tmp : "/tmp");
        if (mkdtemp(b->data_dir) == NULL) {
            fprintf(stderr, "relais-bench: mkdtemp: %s\n", strerror(errno));
            b->data_dir[0] = '\0';
            return -1;
        }
    }
    snprintf(b->log_path, sizeof(b->log_path), "%s/relaisd.log", b->data_dir);
    char dir_path[300], key_path[300];
    snprintf(dir_path, sizeof(dir_path), "%s/territory.yaml", b->data_dir);
    snprintf(key_path, sizeof(key_path), "%s/broker.key", b->data_dir);
    const char *argv[16] = {b->path, "--bind", "tcp://127.0.0.1:0", "--data", b->data_dir,
                            "--durability", b->durability};
    int argc = 7;
    if (b->keys == NULL) {
        argv[argc++] = "--insecure";
    } else {
        if (write_keyfile(key_path, &b->keys->broker) < 0 || write_directory(b, dir_path) < 0) {
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
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0) return -1;
    pid_t parent = getpid();
    uint64_t t0 = bench_now_ns();
    pid_t pid = fork();
    if (pid < 0) {
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int log = open(b->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(out[1], 1);
        if (log >= 0) dup2(log, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    b->pid = pid;
    b->stdout_fd = out[0];

    char buf[1024];
    size_t used = 0;
    uint64_t deadline = t0 + (uint64_t)timeout_ms * 1000000u;
    for (;;) {
        uint64_t now = bench_now_ns();
        if (now >= deadline) break;
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        int left_ms = (int)((deadline - now) / 1000000u) + 1;
        if (poll(&p, 1, left_ms) <= 0) continue;
        ssize_t n = read(out[0], buf + used, sizeof(buf) - 1 - used);
        if (n <= 0) {
            fprintf(stderr, "relais-bench: relaisd exited before its ready line (see %s)\n",
                    b->log_path);
            broker_proc_stop(b, SIGKILL, 5000);
            return -1;
        }
        used += (size_t)n;
        buf[used] = '\0';
        char *ready = strstr(buf, READY_PREFIX);
        if (ready != NULL && strchr(ready, '\n') != NULL) {
            b->ready_s = (double)(bench_now_ns() - t0) / 1e9;
            ready += strlen(READY_PREFIX);
            snprintf(b->endpoint, sizeof(b->endpoint), "%.*s", (int)strcspn(ready, " \n"),
                     ready);
            return 0;
        }
        if (used == sizeof(buf) - 1) used = 0; /* not ours: keep reading */
    }
    fprintf(stderr, "relais-bench: relaisd did not become ready within %d ms (see %s)\n",
            timeout_ms, b->log_path);
    broker_proc_stop(b, SIGKILL, 5000);
    return -1;
}

double broker_proc_stop(broker_proc_t *b, int sig, int timeout_ms)
{
    if (b->pid <= 0) return -1;
    uint64_t t0 = bench_now_ns();
    int pidfd = (int)syscall(SYS_pidfd_open, b->pid, 0);
    kill(b->pid, sig);
    double took = -1;
    bool exited = true;
    if (pidfd >= 0) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        exited = poll(&p, 1, timeout_ms) > 0;
        close(pidfd);
    }
    if (!exited) kill(b->pid, SIGKILL);
    else took = (double)(bench_now_ns() - t0) / 1e9;
    waitpid(b->pid, NULL, 0);
    b->pid = 0;
    if (b->stdout_fd > 0) close(b->stdout_fd);
    b->stdout_fd = 0;
    return took;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

void broker_proc_cleanup(broker_proc_t *b)
{
    if (b->data_dir[0]) nftw(b->data_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
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
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime,
               &stime) != 2)
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
