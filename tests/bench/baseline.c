/*
 * The baseline of relais-bench: a plain ZeroMQ ROUTER forwarder on a thread of the bench
 * process. It parses nothing and stores nothing: a client sends [dst][payload], the
 * forwarder receives [src][dst][payload] and sends [dst][src][payload]. Producers address
 * consumers by routing id and consumers send their acks back the same way, so the same
 * client threads and the same encoded frames run against it as against relaisd, and the
 * ratio of the two throughputs is what parsing, routing state and durability cost.
 *
 * A one-part message is echoed to its sender: clients use it to know the forwarder has
 * seen their routing id before anyone sends to them (ROUTER_MANDATORY would refuse it).
 *
 * With --baseline-curve the ROUTER is a CURVE server and the clients CURVE clients, with
 * no ZAP handler (libzmq then admits any client key): a lower bound of what the encrypted
 * transport alone costs, to set beside relaisd in its production configuration.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "bench.h"

struct baseline {
    void *sock;
    void *stop_pull; /* inproc pair: a message on it ends the thread */
    void *stop_push;
    pthread_t thread;
    uint64_t forwarded;
};

static int recv_part(void *sock, zmq_msg_t *m)
{
    zmq_msg_init(m);
    return zmq_msg_recv(m, sock, 0);
}

/* Forwards one message; returns false when the socket is gone. */
static bool forward_one(struct baseline *bl)
{
    zmq_msg_t part[3];
    int n = 0;
    bool more = true;
    while (more) {
        zmq_msg_t m;
        if (recv_part(bl->sock, &m) < 0) {
            zmq_msg_close(&m);
            for (int i = 0; i < n && i < 3; i++) zmq_msg_close(&part[i]);
            return errno != ETERM;
        }
        more = zmq_msg_more(&m);
        if (n < 3) part[n] = m;
        else zmq_msg_close(&m);
        n++;
    }
    if (n == 2) { /* [src][hello]: echo */
        zmq_msg_send(&part[0], bl->sock, ZMQ_SNDMORE);
        zmq_msg_send(&part[1], bl->sock, 0);
    } else if (n == 3) { /* [src][dst][payload] → [dst][src][payload] */
        if (zmq_msg_send(&part[1], bl->sock, ZMQ_SNDMORE) < 0) {
            fprintf(stderr, "relais-bench: baseline cannot route: %s\n", zmq_strerror(errno));
            for (int i = 0; i < 3; i++) zmq_msg_close(&part[i]);
            return true;
        }
        zmq_msg_send(&part[0], bl->sock, ZMQ_SNDMORE);
        zmq_msg_send(&part[2], bl->sock, 0);
        bl->forwarded++;
    }
    /* Sent parts are empty now; anything else (an odd shape) is dropped here. */
    for (int i = 0; i < n && i < 3; i++) zmq_msg_close(&part[i]);
    return true;
}

static void *forwarder(void *arg)
{
    struct baseline *bl = arg;
    zmq_pollitem_t items[2] = {{.socket = bl->sock, .events = ZMQ_POLLIN},
                               {.socket = bl->stop_pull, .events = ZMQ_POLLIN}};
    for (;;) {
        if (zmq_poll(items, 2, -1) < 0 && errno != EINTR) break;
        if (items[1].revents & ZMQ_POLLIN) break;
        /* Drain what is there before polling again: that is how the broker reads too. */
        while (items[0].revents & ZMQ_POLLIN) {
            if (!forward_one(bl)) return NULL;
            int ev = 0;
            size_t len = sizeof(ev);
            zmq_getsockopt(bl->sock, ZMQ_EVENTS, &ev, &len);
            if (!(ev & ZMQ_POLLIN)) break;
        }
    }
    return NULL;
}

int baseline_start(baseline_t **out, void *zctx, const bench_keypair_t *server, char *endpoint,
                   size_t endpoint_len)
{
    struct baseline *bl = calloc(1, sizeof(*bl));
    if (bl == NULL) return -1;
    /* A name never used before in this process: libzmq frees an inproc name only when the
     * reaper thread destroys the socket, some time after zmq_close(), and malloc tends to
     * give the next forwarder the address of the last — a name built from it was often
     * still taken, and the next baseline failed with "Address already in use". */
    static atomic_uint serial;
    char inproc[64];
    snprintf(inproc, sizeof(inproc), "inproc://relais-bench-baseline-%u",
             atomic_fetch_add(&serial, 1));
    int one = 1, zero = 0;
    bl->sock = zmq_socket(zctx, ZMQ_ROUTER);
    bl->stop_pull = zmq_socket(zctx, ZMQ_PAIR);
    bl->stop_push = zmq_socket(zctx, ZMQ_PAIR);
    if (bl->sock == NULL || bl->stop_pull == NULL || bl->stop_push == NULL) goto err;
    zmq_setsockopt(bl->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof(one));
    zmq_setsockopt(bl->sock, ZMQ_SNDHWM, &zero, sizeof(zero));
    zmq_setsockopt(bl->sock, ZMQ_RCVHWM, &zero, sizeof(zero));
    zmq_setsockopt(bl->sock, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(bl->stop_push, ZMQ_LINGER, &zero, sizeof(zero));
    zmq_setsockopt(bl->stop_pull, ZMQ_LINGER, &zero, sizeof(zero));
    if (server != NULL && (zmq_setsockopt(bl->sock, ZMQ_CURVE_SERVER, &one, sizeof(one)) < 0 ||
                           zmq_setsockopt(bl->sock, ZMQ_CURVE_SECRETKEY, server->sec, 40) < 0))
        goto err;
    if (zmq_bind(bl->sock, "tcp://127.0.0.1:*") < 0 || zmq_bind(bl->stop_pull, inproc) < 0 ||
        zmq_connect(bl->stop_push, inproc) < 0)
        goto err;
    if (zmq_getsockopt(bl->sock, ZMQ_LAST_ENDPOINT, endpoint, &endpoint_len) < 0) goto err;
    if (pthread_create(&bl->thread, NULL, forwarder, bl) != 0) goto err;
    *out = bl;
    return 0;
err:
    fprintf(stderr, "relais-bench: baseline forwarder: %s\n", zmq_strerror(errno));
    if (bl->sock) zmq_close(bl->sock);
    if (bl->stop_pull) zmq_close(bl->stop_pull);
    if (bl->stop_push) zmq_close(bl->stop_push);
    free(bl);
    return -1;
}

void baseline_stop(baseline_t **blp)
{
    if (blp == NULL || *blp == NULL) return;
    struct baseline *bl = *blp;
    zmq_send(bl->stop_push, "", 0, 0);
    pthread_join(bl->thread, NULL);
    zmq_close(bl->sock);
    zmq_close(bl->stop_pull);
    zmq_close(bl->stop_push);
    free(bl);
    *blp = NULL;
}
