/*
 * What the HL7 gateway's integration, fault and benchmark programs share: a relais-hl7
 * process started on the harness's broker (CURVE, test territory) with a generated
 * configuration, an MLLP client over a blocking socket with timeouts, and receiving SDK
 * agents on their own threads that record what their handlers get. Every wait has a
 * deadline; nothing sleeps to synchronise.
 */
#ifndef RELAIS_TEST_HL7_SUPPORT_H
#define RELAIS_TEST_HL7_SUPPORT_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "harness.h"
#include "relais/agent.h"

#define HL7_HOSPITAL "finess:350000011"
#define HL7_ASSISTANT "staff:claire.martin@cabinet-dupont"
#define HL7_GP "rpps:10101234567"
#define HL7_COORDINATOR "staff:coordination@relais-test"
#define HL7_CARDIOLOGIST "rpps:10104567890"

typedef struct hl7_gwproc {
    pid_t pid;
    int port;
    char dir[256]; /* its state directory (kept across restarts) */
    char config[300];
    rt_broker_t log; /* only log_path is used, for rt_broker_wait_log() */
} hl7_gwproc_t;

/*
 * Writes a configuration for b (extra_limits: YAML text put under `limits:`, may be NULL)
 * and starts relais-hl7 on it; waits for its ready line. Restarting uses the same state
 * directory and port, and starts a fresh log (the previous one is kept as .previous).
 * 0 or -1 (reason on stderr).
 */
int hl7_gw_start(hl7_gwproc_t *g, const rt_broker_t *b, const char *extra_limits);
int hl7_gw_restart(hl7_gwproc_t *g);
/* SIGTERM and wait (exit status returned, -1 on timeout), or SIGKILL and reap. */
int hl7_gw_stop(hl7_gwproc_t *g);
void hl7_gw_kill9(hl7_gwproc_t *g);
/* Removes the state directory. */
void hl7_gw_cleanup(hl7_gwproc_t *g);

/* MLLP client: a connected socket, or -1. */
int hl7_connect(int port);
/* Sends text as one MLLP frame (or raw bytes with hl7_send_raw). 0 or -1. */
int hl7_send(int fd, const char *text, size_t len);
int hl7_send_raw(int fd, const void *data, size_t len);
/*
 * Receives one frame within timeout_ms: 0 and a malloc'd NUL-terminated message in *out,
 * 1 when the peer closed the connection, -1 on timeout or error.
 */
int hl7_recv(int fd, int timeout_ms, char **out);
/* Sends text and receives its ACK; returns the ACK's MSA-1 ("AA", …) in code (4 bytes)
 * and the whole ACK in *ack when not NULL. 0 or -1. */
int hl7_roundtrip(int fd, const char *text, char code[4], char **ack, int timeout_ms);
/* Reads a sample message of deploy/hl7/samples (malloc'd, *len set). */
char *hl7_sample(const char *name, size_t *len);
/* A discharge like a03-heart-failure.hl7 with control id `control` and visit `visit`. */
char *hl7_a03(const char *control, const char *visit);

/* A receiving agent of the test territory running on its own thread. */
typedef struct hl7_receiver {
    relais_agent_t *agent;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int discharges, cancels, escalations, admissions, requests, decisions, ready;
    char last_encounter[128];
    char last_programme[64];
    size_t last_items;
    char last_reason[256];
    char last_ins[32];
    /* How many times each encounter id was delivered to the handler (exactly-once checks). */
    char (*seen)[64];
    int *seen_count;
    size_t n_seen, cap_seen;
} hl7_receiver_t;

int hl7_receiver_start(hl7_receiver_t *r, const rt_broker_t *b, const char *address);
void hl7_receiver_stop(hl7_receiver_t *r);
/* Waits until *field >= n (under the receiver's lock), timeout_ms at most. 0 or -1. */
int hl7_receiver_wait(hl7_receiver_t *r, const int *field, int n, int timeout_ms);
/* How many times encounter was delivered. */
int hl7_receiver_count(hl7_receiver_t *r, const char *encounter);

#endif /* RELAIS_TEST_HL7_SUPPORT_H */
