/*
 * relais-hl7 closing the loop: a channel with an outbound endpoint sends what becomes of
 * each message back to the hospital as HL7 (ORU^R01 status messages) — here the broker's
 * PROCESSED receipt once the GP's assistant handled the discharge. The hospital's side is
 * an MLLP server in this test that answers AR first, then AA: the gateway retries until
 * AA; and a status queued while the hospital is down survives a kill -9 of the gateway.
 */
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "test_hl7_support.h"

#define WAIT 15000

/* The hospital's MLLP endpoint: records each frame, answers AR `ar_left` times, then AA. */
typedef struct hospital {
    int listen_fd, port, stop_pipe[2];
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int frames, ar_left;
    char last[4096];
} hospital_t;

static void answer(hospital_t *h, int fd, const char *msg)
{
    const char *ctl = strstr(msg, "|ORU^R01^ORU_R01|");
    char id[64] = "";
    if (ctl != NULL) sscanf(ctl + 17, "%63[^|]", id);
    pthread_mutex_lock(&h->mu);
    const char *code = h->ar_left > 0 ? "AR" : "AA";
    if (h->ar_left > 0) h->ar_left--;
    h->frames++;
    snprintf(h->last, sizeof h->last, "%.4000s", msg);
    pthread_cond_broadcast(&h->cv);
    pthread_mutex_unlock(&h->mu);
    char ack[256];
    int n = snprintf(ack, sizeof ack,
                     "\x0bMSH|^~\\&|HIS|CHU|RELAIS|T|1||ACK|A%s|P|2.5\rMSA|%s|%s\r"
                     "\x1c\r",
                     id, code, id);
    if (send(fd, ack, (size_t)n, MSG_NOSIGNAL) < 0) return;
}

static void *serve(void *ud)
{
    hospital_t *h = ud;
    int conn = -1;
    char buf[65536];
    size_t len = 0;
    for (;;) {
        struct pollfd p[3] = {
            {h->stop_pipe[0], POLLIN, 0}, {h->listen_fd, POLLIN, 0}, {conn, POLLIN, 0}};
        if (poll(p, conn >= 0 ? 3 : 2, -1) < 0) break;
        if (p[0].revents) break;
        if (p[1].revents) {
            int fd = accept(h->listen_fd, NULL, NULL);
            if (fd >= 0) {
                if (conn >= 0) close(conn);
                conn = fd;
                len = 0;
            }
        }
        if (conn >= 0 && p[2].revents) {
            ssize_t n = recv(conn, buf + len, sizeof buf - 1 - len, 0);
            if (n <= 0) {
                close(conn);
                conn = -1;
                continue;
            }
            len += (size_t)n;
            char *eb;
            while ((eb = memchr(buf, 0x1c, len)) != NULL && (size_t)(eb - buf) + 1 < len) {
                *eb = '\0';
                answer(h, conn, buf[0] == 0x0b ? buf + 1 : buf);
                size_t used = (size_t)(eb - buf) + 2;
                memmove(buf, buf + used, len - used);
                len -= used;
            }
        }
    }
    if (conn >= 0) close(conn);
    return NULL;
}

static int hospital_start(hospital_t *h, int port)
{
    h->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(h->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    if (bind(h->listen_fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(h->listen_fd, 8) != 0)
        return -1;
    getsockname(h->listen_fd, (struct sockaddr *)&a, &al);
    h->port = ntohs(a.sin_port);
    if (pipe(h->stop_pipe) != 0) return -1;
    return pthread_create(&h->thread, NULL, serve, h);
}

static void hospital_stop(hospital_t *h)
{
    if (write(h->stop_pipe[1], "x", 1) != 1) return;
    pthread_join(h->thread, NULL);
    close(h->listen_fd);
    close(h->stop_pipe[0]);
    close(h->stop_pipe[1]);
}

static int hospital_wait(hospital_t *h, int frames)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += WAIT / 1000;
    pthread_mutex_lock(&h->mu);
    while (h->frames < frames && pthread_cond_timedwait(&h->cv, &h->mu, &dl) == 0) continue;
    int ok = h->frames >= frames ? 0 : -1;
    pthread_mutex_unlock(&h->mu);
    return ok;
}

static rt_broker_t broker;
static hl7_gwproc_t gw;
static hl7_receiver_t assistant;
static hospital_t his = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void start_all(void)
{
    rt_suite_start(&broker, NULL);
    cr_assert_eq(hl7_receiver_start(&assistant, &broker, HL7_ASSISTANT), 0);
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "127.0.0.1:%d", his.port);
    setenv("HL7_GW_OUTBOUND", endpoint, 1);
    cr_assert_eq(hl7_gw_start(&gw, &broker, NULL), 0);
    unsetenv("HL7_GW_OUTBOUND");
    cr_assert_eq(rt_broker_wait_log(&gw.log, "broker channel=test state=ready", WAIT), 0);
}

static void stop_all(void)
{
    cr_expect_eq(hl7_gw_stop(&gw), 0);
    hl7_gw_cleanup(&gw);
    hl7_receiver_stop(&assistant);
    rt_suite_stop(&broker);
}

static void send_a03(const char *control, const char *visit)
{
    int fd = hl7_connect(gw.port);
    cr_assert_geq(fd, 0);
    char *m = hl7_a03(control, visit), code[4];
    cr_assert_eq(hl7_roundtrip(fd, m, code, NULL, WAIT), 0);
    cr_assert_str_eq(code, "AA");
    free(m);
    close(fd);
}

Test(hl7_outbound, sends_the_practices_processing_back_as_hl7_retrying_until_aa, .timeout = 60)
{
    his.frames = 0;
    his.ar_left = 1;
    cr_assert_eq(hospital_start(&his, 0), 0);
    start_all();
    send_a03("OUT-1", "VN-OUT-1");
    cr_assert_eq(hl7_receiver_wait(&assistant, &assistant.discharges, 1, WAIT), 0);
    /* Once AR, then the same message again, AA. */
    cr_assert_eq(hospital_wait(&his, 2), 0);
    cr_assert(strstr(his.last, "|ORU^R01^ORU_R01|") != NULL, "%s", his.last);
    cr_assert(strstr(his.last, "\rOBR|1|OUT-1|") != NULL, "%s", his.last);
    cr_assert(strstr(his.last, "VN-OUT-1") != NULL, "%s", his.last);
    cr_assert(strstr(his.last, "discharge PROCESSED by " HL7_ASSISTANT) != NULL, "%s", his.last);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "ack=AA", WAIT), 0);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "ack=AR: retrying", WAIT), 0);
    stop_all();
    hospital_stop(&his);
}

Test(hl7_outbound, keeps_what_it_must_send_across_a_gateway_kill, .timeout = 60)
{
    his.frames = 0;
    his.ar_left = 0;
    /* Take a free port for the hospital, then close it: the hospital is down. */
    cr_assert_eq(hospital_start(&his, 0), 0);
    int port = his.port;
    hospital_stop(&his);
    start_all();
    send_a03("OUT-K", "VN-OUT-K");
    cr_assert_eq(rt_broker_wait_log(&gw.log, "outbound queued", WAIT), 0);
    hl7_gw_kill9(&gw);
    cr_assert_eq(hl7_gw_restart(&gw), 0);
    cr_assert_eq(hospital_start(&his, port), 0);
    cr_assert_eq(hospital_wait(&his, 1), 0);
    cr_assert(strstr(his.last, "\rOBR|1|OUT-K|") != NULL, "%s", his.last);
    cr_assert_eq(rt_broker_wait_log(&gw.log, "ack=AA", WAIT), 0);
    stop_all();
    hospital_stop(&his);
}
