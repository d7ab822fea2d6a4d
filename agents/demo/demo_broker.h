/*
 * The demo's broker process (also the simulator's): a fresh data directory, relaisd spawned
 * (by common/relaisd_child.c) on an ephemeral port with CurveZMQ and a territory directory, its stderr kept in the data
 * directory, the endpoint, mode and server key read back from its ready line, and an
 * orderly stop whose exit status is checked. Every wait has a deadline; nothing sleeps.
 */
#ifndef RELAIS_DEMO_BROKER_H
#define RELAIS_DEMO_BROKER_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct demo_broker {
    pid_t pid;  /* 0 when not running */
    int pidfd;  /* -1: the stop watches the exit itself (common/relaisd_child.c) */
    int out_fd; /* read end of the broker's stdout, which holds only the ready line */
    char endpoint[128];  /* from the ready line: tcp://127.0.0.1:PORT */
    char mode[16];       /* from the ready line: "curve" expected; "" if not announced */
    char server_key[41]; /* from the ready line (Z85); "" if not announced */
    char data_dir[PATH_MAX];
    char log_path[PATH_MAX + 16]; /* data_dir/relaisd.log: the broker's stderr */
} demo_broker_t;

/* The relaisd to run: explicit (non-NULL) or the build's, else one next to the demo. */
const char *demo_broker_find(const char *explicit_path, char buf[PATH_MAX]);

/* Creates a fresh data directory under $TMPDIR (or /tmp). 0, or -1 with err filled. */
int demo_broker_mkdata(demo_broker_t *b, char *err, size_t errlen);

/*
 * Spawns relaisd --bind tcp://127.0.0.1:0 (or b->endpoint when set: a restart) --data DIR
 * --directory directory_path
 * --curve-key curve_key_path (CurveZMQ, never --insecure) and waits up to timeout_ms for
 * its ready line. 0 with b->endpoint (and what the line announces of b->mode and
 * b->server_key) set, or -1 with err filled (the process, if any, is killed and reaped).
 */
int demo_broker_start(demo_broker_t *b, const char *relaisd, const char *directory_path,
                      const char *curve_key_path, int timeout_ms, char *err, size_t errlen);

/*
 * Sends SIGTERM and waits up to timeout_ms for the exit. Returns the exit status (0
 * expected), or -1 with err filled when it had to be killed or died of a signal.
 */
int demo_broker_stop(demo_broker_t *b, int timeout_ms, char *err, size_t errlen);

/* Kills relaisd with SIGKILL (a crash: nothing flushed, nothing said) and reaps it. A
 * demo_broker_start() on the same b then restarts it on the same endpoint and data. 0, or
 * -1 when it was not running. */
int demo_broker_kill(demo_broker_t *b);

/* Removes the data directory and everything in it. 0 or -1. */
int demo_broker_rmdata(demo_broker_t *b);

#endif /* RELAIS_DEMO_BROKER_H */
