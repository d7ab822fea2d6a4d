/*
 * relaisd as a child process, for the programs that run one of their own: the integration
 * and fault tests (tests/support/harness.c), relais-bench (tests/bench/proc.c) and the demo
 * and simulator (agents/demo/demo_broker.c). Each builds the command line it needs; this
 * module is the one copy of what they share: a private data directory, starting the child
 * so that it dies with its parent (PR_SET_PDEATHSIG), its stderr appended to a log file,
 * reading back the ready line relaisd prints on stdout (endpoint, mode, server key, and how
 * long it took), stopping it with a deadline (a pidfd and poll(2): nothing sleeps), and
 * removing the data directory.
 *
 * relaisd writes nothing on stdout but the ready line, so the pipe is read up to that line
 * and then kept open, unread, until the stop: the broker never writes to a closed pipe.
 */
#ifndef RELAIS_RELAISD_CHILD_H
#define RELAIS_RELAISD_CHILD_H

#include <stddef.h>
#include <sys/types.h>

/* What the ready line announced. */
typedef struct relaisd_ready {
    char endpoint[128];  /* tcp://127.0.0.1:PORT */
    char mode[16];       /* "curve" or "insecure"; "" if not announced */
    char server_key[41]; /* Z85; "" if not announced */
    double took_s;       /* from the start of the child to its ready line */
} relaisd_ready_t;

/*
 * Creates a fresh directory "<$TMPDIR or /tmp>/<prefix>-XXXXXX" (mode 0700) into dir (cap
 * bytes). 0, or -1 with err filled and dir emptied.
 */
int relaisd_child_mkdata(char *dir, size_t cap, const char *prefix, char *err, size_t errlen);

/* Removes a directory and everything in it. Accepts "" (nothing to do). 0 or -1. */
int relaisd_child_rmdata(const char *dir);

/* Writes a CURVE keypair file as relaisctl keygen does (mode 0600; relaisd refuses a key
 * file others can read), with a comment line naming who wrote it. 0 or -1 (errno set). */
int relaisd_child_write_keyfile(const char *path, const char *pub, const char *sec,
                                const char *who);

/*
 * Starts argv[0] (searched in PATH when it has no slash) with argv (NULL-terminated), its stdout on
 * a pipe and its stderr appended to log_path (created 0600), and waits up to timeout_ms for the
 * ready line. 0 with *pid, *out_fd (the pipe, closed by relaisd_child_stop) and *ready filled; or
 * -1 with err saying why (relaisd exited and how, or printed no ready line in time), the child then
 * killed and reaped.
 */
int relaisd_child_start(const char *const *argv, const char *log_path, int timeout_ms, pid_t *pid,
                        int *out_fd, relaisd_ready_t *ready, char *err, size_t errlen);

/*
 * Sends sig to *pid and waits up to timeout_ms for its exit, then SIGKILL. Reaps it, closes
 * *out_fd (when >= 0), and sets *pid to 0 and *out_fd to -1. Returns the exit status, 128 +
 * the signal for a death by signal (SIGKILL sent by the caller: 137), or -1 when it did not
 * exit in time or was not running. *took_s (when not NULL) receives the seconds from the
 * signal to the exit, or -1.
 */
int relaisd_child_stop(pid_t *pid, int *out_fd, int sig, int timeout_ms, double *took_s);

#endif /* RELAIS_RELAISD_CHILD_H */
