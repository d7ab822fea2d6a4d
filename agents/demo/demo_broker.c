/*
 * Running relaisd for the demo (see demo_broker.h). The broker is a child process so the
 * demo exercises exactly what a territory runs; its end is watched through a pidfd, so
 * waiting for it is a poll() with a deadline rather than a sleep loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "demo_broker.h"

extern char **environ;

#ifndef RELAIS_DEMO_RELAISD
#define RELAIS_DEMO_RELAISD "relaisd"
#endif

#define READY_PREFIX "relaisd ready endpoint="

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *demo_broker_find(const char *explicit_path, char buf[PATH_MAX])
{
    if (explicit_path != NULL) return explicit_path;
    if (access(RELAIS_DEMO_RELAISD, X_OK) == 0) return RELAIS_DEMO_RELAISD;
    /* A build tree that moved: the demo is build/agents/demo/, the broker build/broker/. */
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n > 0) {
        self[n] = '\0';
        snprintf(buf, PATH_MAX, "%s/../../broker/relaisd", dirname(self));
        if (access(buf, X_OK) == 0) return buf;
    }
    return "relaisd"; /* last resort: whatever PATH holds */
}

int demo_broker_mkdata(demo_broker_t *b, char *err, size_t errlen)
{
    const char *tmp = getenv("TMPDIR");
    if (tmp == NULL || tmp[0] == '\0') tmp = "/tmp";
    int n = snprintf(b->data_dir, sizeof b->data_dir, "%s/relais-demo-XXXXXX", tmp);
    if (n < 0 || (size_t)n >= sizeof b->data_dir) {
        snprintf(err, errlen, "TMPDIR is too long a path");
        b->data_dir[0] = '\0';
        return -1;
    }
    if (mkdtemp(b->data_dir) == NULL) {
        snprintf(err, errlen, "cannot create a data directory under %s: %s", tmp, strerror(errno));
        b->data_dir[0] = '\0';
        return -1;
    }
    snprintf(b->log_path, sizeof b->log_path, "%s/relaisd.log", b->data_dir);
    return 0;
}

static void *drain_main(void *arg)
{
    demo_broker_t *b = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = read(b->out_fd, buf, sizeof buf);
        if (n > 0 || (n < 0 && errno == EINTR)) continue;
        break;
    }
    return NULL;
}

/* Reaps the child after a failed start, killing it if it still runs. */
static void abandon(demo_broker_t *b)
{
    if (b->pid > 0) {
        kill(b->pid, SIGKILL);
        waitpid(b->pid, NULL, 0);
        b->pid = 0;
    }
    if (b->pidfd >= 0) close(b->pidfd);
    if (b->out_fd >= 0) close(b->out_fd);
    b->pidfd = b->out_fd = -1;
}

/* Describes how the child ended, after a start that saw its stdout close. */
static void describe_exit(demo_broker_t *b, char *err, size_t errlen)
{
    int st = 0;
    if (waitpid(b->pid, &st, 0) == b->pid) {
        b->pid = 0;
        if (WIFEXITED(st)) {
            snprintf(err, errlen, "relaisd exited with status %d before it was ready (see %s)",
                     WEXITSTATUS(st), b->log_path);
        } else {
            snprintf(err, errlen, "relaisd died of signal %d before it was ready (see %s)",
                     WIFSIGNALED(st) ? WTERMSIG(st) : 0, b->log_path);
        }
        return;
    }
    snprintf(err, errlen, "relaisd closed its output before it was ready (see %s)", b->log_path);
}

/* Copies the value of " name=value" in the ready line into out, or "" when absent. */
static void ready_field(const char *line, const char *name, char *out, size_t outlen)
{
    out[0] = '\0';
    size_t nlen = strlen(name);
    for (const char *p = strstr(line, name); p != NULL; p = strstr(p + 1, name)) {
        if (p > line && (p[-1] == ' ' || p[-1] == '\t') && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            size_t vlen = strcspn(v, " \t\r");
            if (vlen < outlen) {
                memcpy(out, v, vlen);
                out[vlen] = '\0';
            }
            return;
        }
    }
}

/* Reads stdout until the ready line; 0 with the endpoint, or -1 with err. */
static int await_ready(demo_broker_t *b, int timeout_ms, char *err, size_t errlen)
{
    char line[1024];
    size_t len = 0;
    int64_t deadline = now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            snprintf(err, errlen, "relaisd printed no ready line within %d ms (see %s)", timeout_ms,
                     b->log_path);
            return -1;
        }
        struct pollfd pfd = {.fd = b->out_fd, .events = POLLIN};
        int pr = poll(&pfd, 1, (int)left);
        if (pr < 0 && errno == EINTR) continue;
        if (pr < 0) {
            snprintf(err, errlen, "poll on relaisd's output: %s", strerror(errno));
            return -1;
        }
        if (pr == 0) continue;
        ssize_t n = read(b->out_fd, line + len, sizeof line - 1 - len);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            describe_exit(b, err, errlen);
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
                if (elen == 0 || elen >= sizeof b->endpoint) {
                    snprintf(err, errlen, "relaisd's ready line has no usable endpoint");
                    return -1;
                }
                memcpy(b->endpoint, at, elen);
                b->endpoint[elen] = '\0';
                ready_field(at, "mode", b->mode, sizeof b->mode);
                ready_field(at, "server_key", b->server_key, sizeof b->server_key);
                return 0;
            }
            size_t rest = len - (size_t)(nl + 1 - line);
            memmove(line, nl + 1, rest + 1);
            len = rest;
        }
        if (len == sizeof line - 1) len = 0; /* a line too long to be the ready line */
    }
}

int demo_broker_start(demo_broker_t *b, const char *relaisd, const char *directory_path,
                      const char *curve_key_path, int timeout_ms, char *err, size_t errlen)
{
    b->pid = 0;
    b->pidfd = b->out_fd = -1;
    b->drain_started = false;
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) < 0) {
        snprintf(err, errlen, "pipe: %s", strerror(errno));
        return -1;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fds[1], STDOUT_FILENO);
    /* A restart binds the endpoint its agents know, and its log follows the first run's. */
    bool restart = b->endpoint[0] != '\0';
    char bind[sizeof b->endpoint];
    snprintf(bind, sizeof bind, "%s", restart ? b->endpoint : "tcp://127.0.0.1:0");
    posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, b->log_path,
                                     O_WRONLY | O_CREAT | (restart ? O_APPEND : O_TRUNC), 0600);
    char *argv[] = {(char *)relaisd,
                    "--bind",
                    bind,
                    "--data",
                    b->data_dir,
                    "--directory",
                    (char *)directory_path,
                    "--curve-key",
                    (char *)curve_key_path,
                    NULL};
    int rc = posix_spawnp(&b->pid, relaisd, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(fds[1]);
    b->out_fd = fds[0];
    if (rc != 0) {
        snprintf(err, errlen, "cannot run %s: %s (use --relaisd PATH)", relaisd, strerror(rc));
        b->pid = 0;
        abandon(b);
        return -1;
    }
    b->pidfd = (int)syscall(SYS_pidfd_open, b->pid, 0);
    if (b->pidfd < 0) {
        snprintf(err, errlen, "pidfd_open: %s", strerror(errno));
        abandon(b);
        return -1;
    }
    if (await_ready(b, timeout_ms, err, errlen) < 0) {
        abandon(b);
        return -1;
    }
    if (pthread_create(&b->drain, NULL, drain_main, b) != 0) {
        snprintf(err, errlen, "cannot start the output drain thread");
        abandon(b);
        return -1;
    }
    b->drain_started = true;
    return 0;
}

int demo_broker_stop(demo_broker_t *b, int timeout_ms, char *err, size_t errlen)
{
    if (b->pid <= 0) {
        snprintf(err, errlen, "relaisd is not running");
        return -1;
    }
    int result = -1;
    kill(b->pid, SIGTERM);
    struct pollfd pfd = {.fd = b->pidfd, .events = POLLIN};
    int64_t deadline = now_ms() + timeout_ms;
    int pr;
    do {
        int64_t left = deadline - now_ms();
        pr = left > 0 ? poll(&pfd, 1, (int)left) : 0;
    } while (pr < 0 && errno == EINTR);

    int st = 0;
    if (pr <= 0) {
        snprintf(err, errlen, "relaisd did not exit within %d ms of SIGTERM; killed it",
                 timeout_ms);
        kill(b->pid, SIGKILL);
        waitpid(b->pid, &st, 0);
    } else if (waitpid(b->pid, &st, 0) != b->pid) {
        snprintf(err, errlen, "waitpid: %s", strerror(errno));
    } else if (WIFEXITED(st)) {
        result = WEXITSTATUS(st);
        if (result != 0) {
            snprintf(err, errlen, "relaisd exited with status %d (see %s)", result, b->log_path);
        }
    } else {
        snprintf(err, errlen, "relaisd died of signal %d (see %s)",
                 WIFSIGNALED(st) ? WTERMSIG(st) : 0, b->log_path);
    }
    b->pid = 0;
    if (b->drain_started) {
        pthread_join(b->drain, NULL); /* EOF: the broker, sole writer, is gone */
        b->drain_started = false;
    }
    close(b->pidfd);
    close(b->out_fd);
    b->pidfd = b->out_fd = -1;
    return result;
}

int demo_broker_kill(demo_broker_t *b)
{
    if (b->pid <= 0) return -1;
    kill(b->pid, SIGKILL);
    waitpid(b->pid, NULL, 0);
    b->pid = 0;
    if (b->drain_started) {
        pthread_join(b->drain, NULL); /* EOF: the broker, sole writer, is gone */
        b->drain_started = false;
    }
    close(b->pidfd);
    close(b->out_fd);
    b->pidfd = b->out_fd = -1;
    return 0;
}

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    return remove(path);
}

int demo_broker_rmdata(demo_broker_t *b)
{
    if (b->data_dir[0] == '\0') return 0;
    int rc = nftw(b->data_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    b->data_dir[0] = '\0';
    return rc == 0 ? 0 : -1;
}
