/*
 * Durable delivery end to end, under kill -9: real relaisd, real SDK agents in processes
 * of their own (relais-fault-agent, with state files), and the test killing any of them.
 *
 * The promise checked is the one users are made: every message an agent submitted is
 * accepted and reaches the recipient's handler exactly once, in order per sender, whether
 * the broker, the sender or the recipient dies on the way, and whether the recipient was
 * online or not. The test reads the agents' stdout lines (`accepted <i>`, `handled n<i>
 * from=<sender>`, …) through pipes and keeps tallies per producer and message index;
 * every wait is a poll on those pipes with a deadline, nothing sleeps. A process ends by
 * SIGTERM (exit status checked) or SIGKILL, and its pipe is read to EOF either way, so a
 * line written before a kill is never missed.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define BROKER_START_MS 10000
#define WAIT_MS 20000
#define MAX_PRODUCERS 2
#define MAX_MSGS 1000
#define MAX_PROCS 8

static const char *const producer_addr[MAX_PRODUCERS] = {"rpps:10000000001", "rpps:10000000002"};
static const char *const consumer_addr[MAX_PRODUCERS] = {"rpps:20000000001", "rpps:20000000002"};
static const char *broker_args[] = {"--heartbeat-ms", "500", NULL};

/* One relais-fault-agent process and the part of a line it has not finished writing. */
typedef struct proc {
    pid_t pid;
    int fd;       /* read end of its stdout; -1 once at EOF */
    int producer; /* index of the producer it is, or -1 for a consumer */
    char buf[4096];
    size_t used;
    int ready;
    bool sent_all;
} proc_t;

/* Everything every agent process has said, across restarts. */
typedef struct tally {
    int accepted[MAX_PRODUCERS][MAX_MSGS]; /* accepted callbacks per message */
    int handled[MAX_PRODUCERS][MAX_MSGS];  /* handler calls per message, by sender */
    int last_handled[MAX_PRODUCERS];       /* index of the last handled, -1 before */
    int accepted_total, handled_total, handled_distinct;
    int recovered, recovered_ok, recovered_duplicate;
    int duplicates;   /* handler calls beyond the first for one message */
    int out_of_order; /* handler calls for an index not above the last from that sender */
    int failures;     /* `failed` or `send-error` lines */
    int garbage;      /* lines nobody understood */
} tally_t;

static rt_broker_t broker;
static proc_t procs[MAX_PROCS];
static tally_t tl;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int sender_index(const char *address)
{
    for (int p = 0; p < MAX_PRODUCERS; p++)
        if (strcmp(address, producer_addr[p]) == 0) return p;
    return -1;
}

static void parse_line(proc_t *pr, const char *line)
{
    long i;
    int attempt, status, duplicate;
    char from[RELAIS_ADDRESS_MAX], id[40];
    if (strcmp(line, "ready") == 0) {
        pr->ready++;
    } else if (strncmp(line, "sent-all ", 9) == 0) {
        pr->sent_all = true;
    } else if (sscanf(line, "accepted %ld", &i) == 1 && pr->producer >= 0 && i >= 0 &&
               i < MAX_MSGS) {
        tl.accepted[pr->producer][i]++;
        tl.accepted_total++;
    } else if (sscanf(line, "handled n%ld attempt=%d from=%255s", &i, &attempt, from) == 3 &&
               sender_index(from) >= 0 && i >= 0 && i < MAX_MSGS) {
        int p = sender_index(from);
        if (tl.handled[p][i]++ > 0)
            tl.duplicates++;
        else
            tl.handled_distinct++;
        if (i <= tl.last_handled[p]) tl.out_of_order++;
        tl.last_handled[p] = (int)i;
        tl.handled_total++;
    } else if (sscanf(line, "recovered %39s status=%d duplicate=%d", id, &status, &duplicate) ==
               3) {
        tl.recovered++;
        if (status == 0) tl.recovered_ok++;
        if (duplicate) tl.recovered_duplicate++;
    } else if (strncmp(line, "failed ", 7) == 0 || strncmp(line, "send-error ", 11) == 0) {
        tl.failures++;
        fprintf(stderr, "fault agent %d: %s\n", (int)pr->pid, line);
    } else {
        tl.garbage++;
        fprintf(stderr, "fault agent %d said: %s\n", (int)pr->pid, line);
    }
}

/* Reads what pr has written and parses every complete line; closes the pipe at EOF. */
static void read_proc(proc_t *pr)
{
    ssize_t n = read(pr->fd, pr->buf + pr->used, sizeof(pr->buf) - 1 - pr->used);
    if (n <= 0) {
        if (n < 0 && errno == EINTR) return;
        close(pr->fd);
        pr->fd = -1;
        return;
    }
    pr->used += (size_t)n;
    pr->buf[pr->used] = '\0';
    char *start = pr->buf, *nl;
    while ((nl = strchr(start, '\n')) != NULL) {
        *nl = '\0';
        parse_line(pr, start);
        start = nl + 1;
    }
    pr->used -= (size_t)(start - pr->buf);
    memmove(pr->buf, start, pr->used);
}

/* Waits up to timeout_ms for output from any agent and reads all that is there. */
static void pump(int timeout_ms)
{
    struct pollfd fds[MAX_PROCS];
    proc_t *owners[MAX_PROCS];
    nfds_t n = 0;
    for (int i = 0; i < MAX_PROCS; i++) {
        if (procs[i].pid > 0 && procs[i].fd >= 0) {
            fds[n] = (struct pollfd){.fd = procs[i].fd, .events = POLLIN};
            owners[n++] = &procs[i];
        }
    }
    if (poll(fds, n, timeout_ms) <= 0) return;
    for (nfds_t i = 0; i < n; i++)
        if (fds[i].revents) read_proc(owners[i]);
}

/* Reads the agents' output until cond holds; fails the test after timeout_ms. */
#define WAIT_FOR(cond, timeout_ms)                                                                 \
    do {                                                                                           \
        int64_t deadline_ = mono_ms() + (timeout_ms);                                              \
        while (!(cond) && mono_ms() < deadline_) pump((int)(deadline_ - mono_ms()));               \
        cr_assert(cond,                                                                            \
                  "timed out waiting for %s (accepted=%d handled=%d distinct=%d "                  \
                  "recovered=%d)",                                                                 \
                  #cond, tl.accepted_total, tl.handled_total, tl.handled_distinct, tl.recovered);  \
    } while (0)

/*
 * Starts relais-fault-agent in slot `slot` with the broker's endpoint, an address, a state
 * file named after the address in the broker's data directory, and the extra arguments.
 * Its stderr (the SDK's log) goes to <data>/<name>.log.
 */
static proc_t *spawn(int slot, const char *address, int producer, const char *const *extra)
{
    char state[400], log[400];
    snprintf(state, sizeof(state), "%s/%s.state", broker.data_dir, address);
    snprintf(log, sizeof(log), "%s/%s.log", broker.data_dir, address);
    const char *argv[24];
    int argc = 0;
    argv[argc++] = FAULT_AGENT_PATH;
    argv[argc++] = "--endpoint";
    argv[argc++] = broker.endpoint;
    argv[argc++] = "--address";
    argv[argc++] = address;
    argv[argc++] = "--state";
    argv[argc++] = state;
    const rt_key_t *key = rt_key_for(&broker, address);
    if (key != NULL) {
        argv[argc++] = "--key";
        argv[argc++] = key->path;
        argv[argc++] = "--server-key";
        argv[argc++] = broker.server_pub_path;
    }
    for (int i = 0; extra && extra[i] && argc < 23; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;

    int out[2];
    cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
    pid_t parent = getpid();
    pid_t pid = fork();
    cr_assert_geq(pid, 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent) _exit(127);
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        dup2(out[1], 1);
        if (fd >= 0) dup2(fd, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(out[1]);
    proc_t *pr = &procs[slot];
    cr_assert_eq(pr->pid, 0, "slot %d is taken", slot);
    *pr = (proc_t){.pid = pid, .fd = out[0], .producer = producer};
    return pr;
}

static proc_t *spawn_consumer(int slot, int which)
{
    static const char *const args[] = {"--consume", NULL};
    return spawn(slot, consumer_addr[which], -1, args);
}

static proc_t *spawn_producer(int slot, int which, const char *count)
{
    const char *const args[] = {"--produce", count, "--to", consumer_addr[which], NULL};
    return spawn(slot, producer_addr[which], which, args);
}

/* Reads pr's pipe to EOF and reaps it; returns its wait status. */
static int reap(proc_t *pr)
{
    int64_t deadline = mono_ms() + WAIT_MS;
    while (pr->fd >= 0 && mono_ms() < deadline) {
        struct pollfd p = {.fd = pr->fd, .events = POLLIN};
        if (poll(&p, 1, (int)(deadline - mono_ms())) > 0) read_proc(pr);
    }
    cr_assert_eq(pr->fd, -1, "agent %d never closed its stdout", (int)pr->pid);
    int status = 0;
    cr_assert_eq(waitpid(pr->pid, &status, 0), pr->pid);
    *pr = (proc_t){0};
    return status;
}

static void kill9(proc_t *pr)
{
    kill(pr->pid, SIGKILL);
    int status = reap(pr);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/*
 * Stops an agent in order: it must exit 0. Its first `ready` proves it has installed its
 * SIGTERM handler (a signal before that would kill it by default).
 */
static void term(proc_t *pr)
{
    pid_t pid = pr->pid;
    WAIT_FOR(pr->ready >= 1, WAIT_MS);
    kill(pid, SIGTERM);
    int status = reap(pr);
    cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
              "agent %d ended with status 0x%x after SIGTERM", (int)pid, status);
}

static void broker_restart(void)
{
    rt_broker_kill9(&broker);
    cr_assert_eq(rt_broker_start(&broker, broker_args, BROKER_START_MS), 0,
                 "relaisd restarts on the same endpoint and data");
}

static void setup(void)
{
    memset(&broker, 0, sizeof(broker));
    memset(procs, 0, sizeof(procs));
    memset(&tl, 0, sizeof(tl));
    for (int p = 0; p < MAX_PRODUCERS; p++) tl.last_handled[p] = -1;
    cr_assert_eq(rt_broker_start(&broker, broker_args, BROKER_START_MS), 0);
}

static void teardown(void)
{
    for (int i = 0; i < MAX_PROCS; i++) {
        if (procs[i].pid > 0) {
            kill(procs[i].pid, SIGKILL);
            waitpid(procs[i].pid, NULL, 0);
            if (procs[i].fd >= 0) close(procs[i].fd);
        }
    }
    if (broker.pid > 0) rt_broker_stop(&broker, 5000);
    rt_broker_cleanup(&broker);
}

/* Every message of producer p, 0 ≤ i < n, accepted once and handled exactly once. */
static void expect_exactly_once(int p, int n, bool accepted_by_callback)
{
    for (int i = 0; i < n; i++) {
        if (accepted_by_callback)
            cr_expect_eq(tl.accepted[p][i], 1, "producer %d message n%d accepted %d times", p, i,
                         tl.accepted[p][i]);
        cr_expect_eq(tl.handled[p][i], 1, "producer %d message n%d handled %d times", p, i,
                     tl.handled[p][i]);
    }
}

static void expect_clean_run(void)
{
    cr_expect_eq(tl.duplicates, 0, "no handler saw a message twice");
    cr_expect_eq(tl.out_of_order, 0, "handlers saw each sender's messages in order");
    cr_expect_eq(tl.failures, 0, "no submission failed");
    cr_expect_eq(tl.garbage, 0);
}

TestSuite(agent_durability, .init = setup, .fini = teardown, .timeout = 60);

Test(agent_durability, a_broker_killed_three_times_loses_and_repeats_nothing)
{
    enum { N = 500 };
    proc_t *c0 = spawn_consumer(0, 0), *c1 = spawn_consumer(1, 1);
    WAIT_FOR(c0->ready == 1 && c1->ready == 1, WAIT_MS);
    proc_t *p0 = spawn_producer(2, 0, "500"), *p1 = spawn_producer(3, 1, "500");
    static const int kill_at[] = {50, 300, 700};
    for (size_t k = 0; k < sizeof(kill_at) / sizeof(kill_at[0]); k++) {
        WAIT_FOR(tl.accepted_total >= kill_at[k], WAIT_MS);
        broker_restart();
    }
    WAIT_FOR(tl.accepted_total >= 2 * N && tl.handled_distinct == 2 * N, WAIT_MS);
    cr_expect_geq(c0->ready, 2, "the consumers came back after the kills");
    /* Read every line up to each agent's orderly exit before judging. */
    term(p0);
    term(p1);
    term(c0);
    term(c1);
    expect_exactly_once(0, N, true);
    expect_exactly_once(1, N, true);
    cr_expect_eq(tl.accepted_total, 2 * N);
    expect_clean_run();
}

Test(agent_durability, a_recipient_offline_for_the_whole_run_gets_its_backlog_in_order)
{
    enum { N = 300 };
    proc_t *p0 = spawn_producer(0, 0, "300");
    WAIT_FOR(tl.accepted_total >= N / 3, WAIT_MS);
    broker_restart();
    WAIT_FOR(tl.accepted_total >= N, WAIT_MS);
    term(p0);
    broker_restart();
    proc_t *c0 = spawn_consumer(1, 0);
    WAIT_FOR(tl.handled_distinct == N, WAIT_MS);
    term(c0);
    expect_exactly_once(0, N, true);
    cr_expect_eq(tl.last_handled[0], N - 1);
    expect_clean_run();
}

Test(agent_durability, submissions_of_a_sender_killed_while_the_broker_is_down_are_delivered_once)
{
    enum { N = 200 };
    proc_t *c0 = spawn_consumer(0, 0);
    WAIT_FOR(c0->ready == 1, WAIT_MS);
    rt_broker_kill9(&broker);
    proc_t *p0 = spawn_producer(1, 0, "200");
    WAIT_FOR(p0->sent_all, WAIT_MS);
    kill9(p0);
    cr_assert_eq(tl.accepted_total, 0, "nothing could be accepted: the broker is down");

    cr_assert_eq(rt_broker_start(&broker, broker_args, BROKER_START_MS), 0);
    p0 = spawn_producer(1, 0, "0");
    WAIT_FOR(tl.recovered == N && tl.handled_distinct == N, WAIT_MS);
    term(p0);
    term(c0);
    cr_expect_eq(tl.recovered_ok, N, "every recovered submission was accepted");
    cr_expect_eq(tl.recovered_duplicate, 0, "the broker had seen none of them");
    expect_exactly_once(0, N, false);
    expect_clean_run();
}

Test(agent_durability, a_sender_killed_while_its_submissions_are_accepted_loses_and_repeats_nothing)
{
    enum { N = 400 };
    proc_t *c0 = spawn_consumer(0, 0);
    WAIT_FOR(c0->ready == 1, WAIT_MS);
    /* Killed as soon as every send has returned: the broker is answering them meanwhile,
     * so some answers were heard, some not, and some heard but not yet forgotten on disk. */
    proc_t *p0 = spawn_producer(1, 0, "400");
    WAIT_FOR(p0->sent_all, WAIT_MS);
    kill9(p0);
    int accepted_before = tl.accepted_total;

    p0 = spawn_producer(1, 0, "0");
    WAIT_FOR(tl.handled_distinct == N, WAIT_MS);
    /* Submissions the dead run did not hear about come back; some it did hear about may
     * too (their deletion was not yet on disk), answered as duplicates. */
    WAIT_FOR(tl.recovered >= N - accepted_before, WAIT_MS);
    term(p0);
    term(c0);
    cr_expect_eq(tl.recovered_ok, tl.recovered);
    cr_log_info("accepted before the kill: %d, recovered: %d (duplicates %d)", accepted_before,
                tl.recovered, tl.recovered_duplicate);
    for (int i = 0; i < N; i++)
        cr_expect_eq(tl.handled[0][i], 1, "message n%d handled %d times", i, tl.handled[0][i]);
    expect_clean_run();
}

/* Lines in the file at path that contain needle. */
static int count_in_file(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    char line[4096];
    int n = 0;
    while (fgets(line, sizeof(line), f))
        if (strstr(line, needle)) n++;
    fclose(f);
    return n;
}

Test(agent_durability, a_recipient_killed_mid_stream_never_handles_a_message_twice)
{
    enum { N = 600 };
    static const char *const args[] = {"--consume", "--log", "debug", NULL};
    proc_t *c0 = spawn(0, consumer_addr[0], -1, args);
    WAIT_FOR(c0->ready == 1, WAIT_MS);
    proc_t *p0 = spawn_producer(1, 0, "600");
    WAIT_FOR(tl.handled_distinct >= N / 6, WAIT_MS);

    /* Freeze the broker with deliveries in flight, so that Acks the consumer sends from
     * now on are never recorded; kill the consumer (SIGUSR1: it kills itself with SIGKILL
     * between two frames), then the frozen broker. Both restart on their files: the broker
     * delivers again everything it had no Ack for, some of which the consumer handled. */
    cr_assert_eq(kill(broker.pid, SIGSTOP), 0);
    kill(c0->pid, SIGUSR1);
    int status = reap(c0);
    cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    int handled_before = tl.handled_distinct;
    cr_assert_lt(handled_before, N, "the consumer was killed mid-stream");
    char log[400];
    snprintf(log, sizeof(log), "%s/%s.log", broker.data_dir, consumer_addr[0]);
    int recognised_before = count_in_file(log, "duplicate delivery");
    broker_restart();
    c0 = spawn(0, consumer_addr[0], -1, args);
    WAIT_FOR(c0->ready >= 1 && tl.handled_distinct == N && tl.accepted_total >= N, WAIT_MS);
    term(c0);
    term(p0);

    cr_expect_gt(count_in_file(log, "duplicate delivery"), recognised_before,
                 "the restarted consumer recognised redeliveries (handled %d before the kill)",
                 handled_before);
    expect_exactly_once(0, N, true);
    expect_clean_run();
}
