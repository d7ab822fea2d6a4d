/*
 * Running relaisd for the demo and the simulator (see demo_broker.h). The broker is a child
 * process so the demo exercises exactly what a territory runs; the process itself is
 * common/relaisd_child.c's, shared with the tests' harness and relais-bench (its end is
 * watched through a pidfd, so waiting for it is a poll() with a deadline, not a sleep loop).
 */
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "demo_broker.h"
#include "relaisd_child.h"

#ifndef RELAIS_DEMO_RELAISD
#define RELAIS_DEMO_RELAISD "relaisd"
#endif

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
    if (relaisd_child_mkdata(b->data_dir, sizeof b->data_dir, "relais-demo", err, errlen) < 0)
        return -1;
    snprintf(b->log_path, sizeof b->log_path, "%s/relaisd.log", b->data_dir);
    return 0;
}

int demo_broker_start(demo_broker_t *b, const char *relaisd, const char *directory_path,
                      const char *curve_key_path, int timeout_ms, char *err, size_t errlen)
{
    b->pidfd = -1;
    /* A restart binds the endpoint its agents know (relaisd's log is appended to). */
    char bind[sizeof b->endpoint];
    snprintf(bind, sizeof bind, "%s", b->endpoint[0] ? b->endpoint : "tcp://127.0.0.1:0");
    const char *argv[] = {relaisd,        "--bind",      bind,           "--data",
                          b->data_dir,    "--directory", directory_path, "--curve-key",
                          curve_key_path, NULL};
    relaisd_ready_t ready;
    if (relaisd_child_start(argv, b->log_path, timeout_ms, &b->pid, &b->out_fd, &ready, err,
                            errlen) < 0) {
        size_t used = strlen(err);
        if (strstr(err, "exit 127") != NULL && used < errlen)
            snprintf(err + used, errlen - used, ": is %s a relaisd? (use --relaisd PATH)", relaisd);
        return -1;
    }
    snprintf(b->endpoint, sizeof b->endpoint, "%s", ready.endpoint);
    snprintf(b->mode, sizeof b->mode, "%s", ready.mode);
    snprintf(b->server_key, sizeof b->server_key, "%s", ready.server_key);
    return 0;
}

int demo_broker_stop(demo_broker_t *b, int timeout_ms, char *err, size_t errlen)
{
    if (b->pid <= 0) {
        snprintf(err, errlen, "relaisd is not running");
        return -1;
    }
    int status = relaisd_child_stop(&b->pid, &b->out_fd, SIGTERM, timeout_ms, NULL);
    if (status < 0) {
        snprintf(err, errlen, "relaisd did not exit within %d ms of SIGTERM; killed it",
                 timeout_ms);
        return -1;
    }
    if (status > 128) {
        snprintf(err, errlen, "relaisd died of signal %d (see %s)", status - 128, b->log_path);
        return -1;
    }
    if (status != 0)
        snprintf(err, errlen, "relaisd exited with status %d (see %s)", status, b->log_path);
    return status;
}

int demo_broker_kill(demo_broker_t *b)
{
    if (b->pid <= 0) return -1;
    relaisd_child_stop(&b->pid, &b->out_fd, SIGKILL, 10000, NULL);
    return 0;
}

int demo_broker_rmdata(demo_broker_t *b)
{
    int rc = relaisd_child_rmdata(b->data_dir);
    b->data_dir[0] = '\0';
    return rc;
}
