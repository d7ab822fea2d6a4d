/*
 * relaisd as a child process (see relaisd_child.h): one copy of the spawner that the tests'
 * harness, relais-bench and the demo used to carry each their own.
 */
#include "relaisd_child.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_PREFIX "relaisd ready endpoint="

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int relaisd_child_mkdata(char *dir, size_t cap, const char *prefix, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
    int n = snprintf(dir, cap, "%s/%s-XXXXXX", tmp, prefix);
    if (n < 0 || (size_t)n >= cap) {
        snprintf(err, errlen, "TMPDIR is too long a path");
        dir[0] = '\0';
        return -1;
    }
    if (mkdtemp(dir) == NULL) {
        snprintf(err, errlen, "cannot create a data directory under %s: %s", tmp, strerror(errno));
        dir[0] = '\0';
        return -1;
    }
    return 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

int relaisd_child_rmdata(const char *dir)
{
    if (dir == NULL || dir[0] == '\0') return 0;
    return nftw(dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS) == 0 ? 0 : -1;
}

int relaisd_child_write_keyfile(const char *path, const char *pub, const char *sec, const char *who)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return -1;
    char text[256];
    int n =
        snprintf(text, sizeof(text),
                 "# Relais CURVE keypair (%s)\npublic-key: %s\nsecret-key: %s\n", who, pub, sec);
    int rc = n > 0 && (size_t)n < sizeof(text) && write(fd, text, (size_t)n) == n ? 0 : -1;
    if (close(fd) < 0) rc = -1;
    return rc;
}

/* Copies the value of " name=value" in the ready line into out, or "" when absent. */
static void ready_field(const char *line, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t nlen = strlen(name);
    for (const char *p = strstr(line, name); p != NULL; p = strstr(p + 1, name)) {
        if (p > line && (p[-1] == ' ' || p[-1] == '\t') && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = strcspn(v, " \t\r\n");
            if (vlen < outlen) {
                memcpy(out, v, vlen);
                out[vlen] = '\0';
            }
            return;
        }
    }
}

/* Says how the child ended, after its stdout closed before the ready line. */
static void describe_exit(pid_t *pid, const char *log_path, char *err, size_t errlen)
{
    int st = 0;
    if (waitpid(*pid, &st, 0) != *pid) {
        snprintf(err, errlen, "relaisd closed its output before it was ready (see %s)", log_path);
        return;
    }
    *pid = 0;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 127)
        snprintf(err, errlen, "relaisd could not be run (exit 127; see %s)", log_path);
    else if (WIFEXITED(st))
        snprintf(err, errlen, "relaisd exited with status %d before it was ready (see %s)",
                 WEXITSTATUS(st), log_path);
    else
        snprintf(err, errlen, "relaisd died of signal %d before it was ready (see %s)",
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0, log_path);
}

/* Reads the child's stdout until the ready line. 0, or -1 with err. */
static int await_ready(pid_t *pid, int fd, const char *log_path, int64_t t0, int timeout_ms,
                       relaisd_ready_t *ready, char *err, size_t errlen)
{
    char line[1024];
    size_t len = 0;
    int64_t deadline = t0 + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t left_ns = deadline - now_ns();
        if (left_ns <= 0) {
            snprintf(err, errlen, "relaisd printed no ready line within %d ms (see %s)", timeout_ms,
                     log_path);
            return -1;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int pr = poll(&p, 1, (int)(left_ns / 1000000) + 1);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) {
            snprintf(err, errlen, "poll on relaisd's output: %s", strerror(errno));
            return -1;
        }
        if (pr == 0) continue;
        ssize_t n = read(fd, line + len, sizeof(line) - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            describe_exit(pid, log_path, err, errlen);
            return -1;
        }
        len += (size_t)n;
        line[len] = '\0';
        char *nl;
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            char *at = strstr(line, READY_PREFIX);
            if (at != NULL) {
                at += strlen(READY_PREFIX);
                size_t elen = strcspn(at, " \t\r");
                if (elen == 0 || elen >= sizeof(ready->endpoint)) {
                    snprintf(err, errlen, "relaisd's ready line has no usable endpoint");
                    return -1;
                }
                memcpy(ready->endpoint, at, elen);
                ready->endpoint[elen] = '\0';
                ready_field(at, "mode", ready->mode, sizeof(ready->mode));
                ready_field(at, "server_key", ready->server_key, sizeof(ready->server_key));
                ready->took_s = (double)(now_ns() - t0) / 1e9;
                return 0;
            }
            size_t rest = len - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest + 1);
            len = rest;
        }
        if (len == sizeof(line) - 1) len = 0; /* a line too long to be the ready line */
    }
}

int relaisd_child_start(const char *const *argv, const char *log_path, int timeout_ms, pid_t *pid,
                        int *out_fd, relaisd_ready_t *ready, char *err, size_t errlen)
{
    memset(ready, 0, sizeof(*ready));
    *pid = 0;
    *out_fd = -1;
    int out[2];
    if (pipe2(out, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    int64_t t0 = now_ns();
    pid_t child = fork();
    if (child < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        close(out[0]);
        close(out[1]);
        return -1;
    }
    if (child == 0) {
        /* Only async-signal-safe calls from here to exec. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        dup2(out[1], STDOUT_FILENO);
        if (log >= 0) dup2(log, STDERR_FILENO);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    *pid = child;
    *out_fd = out[0];
    if (await_ready(pid, out[0], log_path, t0, timeout_ms, ready, err, errlen) == 0) return 0;
    if (*pid > 0) {
        kill(*pid, SIGKILL);
        waitpid(*pid, NULL, 0);
    }
    close(out[0]);
    *pid = 0;
    *out_fd = -1;
    return -1;
}

int relaisd_child_stop(pid_t *pid, int *out_fd, int sig, int timeout_ms, double *took_s)
{
    if (took_s) *took_s = -1;
    if (*pid <= 0) return -1;
    int64_t t0 = now_ns();
    int pidfd = (int)syscall(SYS_pidfd_open, *pid, 0);
    kill(*pid, sig);
    bool exited = true;
    if (pidfd >= 0) {
        struct pollfd p = {.fd = pidfd, .events = POLLIN};
        int pr;
        do {
            int64_t left_ms = timeout_ms - (now_ns() - t0) / 1000000;
            pr = left_ms > 0 ? poll(&p, 1, (int)left_ms) : 0;
        } while (pr < 0 && errno == EINTR);
        exited = pr > 0;
        close(pidfd);
    }
    if (exited && took_s) *took_s = (double)(now_ns() - t0) / 1e9;
    if (!exited) kill(*pid, SIGKILL);
    int st = 0;
    int rc = -1;
    if (waitpid(*pid, &st, 0) == *pid && exited)
        rc = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    *pid = 0;
    if (*out_fd >= 0) close(*out_fd);
    *out_fd = -1;
    return rc;
}
