/*
 * The relaisd child process of relais-bench: start it on an ephemeral port with a data
 * directory of its own, time how long it takes to print its ready line (the restart
 * figure), stop or kill it, and read its memory and CPU use from /proc.
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

#include "bench.h"

#define READY_PREFIX "relaisd ready endpoint="

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
    const char *argv[] = {b->path, "--bind", "tcp://127.0.0.1:0", "--data", b->data_dir,
                          "--insecure", "--durability", b->durability, NULL};
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
