/*
 * The ZAP handler (ZeroMQ RFC 27): who may complete a CURVE handshake with the broker.
 *
 * libzmq asks, for every incoming CURVE handshake, the REP socket bound to
 * inproc://zeromq.zap.01 in the broker's context. This one answers on the broker's loop:
 * 200 with User-Id = the agent's directory address when the client's public key is in the
 * territory directory, 400 otherwise. The ROUTER sets ZMQ_ZAP_ENFORCE_DOMAIN, so without
 * this handler every handshake fails: the broker fails closed (DESIGN.md; a CURVE server
 * without a handler would accept any key). The handler is bound before the ROUTER and
 * closed after it, so it lives exactly as long as the sockets it guards.
 *
 * The reply also carries the key as the ZAP metadata property X-Key, which the broker reads
 * back from each message (zmq_msg_gets) to check, at Hello, that the key is still in the
 * directory: a key revoked by a directory reload cannot open a new session on a
 * connection that was authenticated before.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "relais/log.h"

#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_PARTS 7

static int send_part(void *sock, const void *data, size_t len, bool more)
{
    return zmq_send(sock, data, len, more ? ZMQ_SNDMORE : 0) < 0 ? -errno : 0;
}

/* ZMTP metadata: name length (1 octet), name, value length (4 octets, network order),
 * value. */
static size_t metadata(const char *name, const char *value, uint8_t *out, size_t cap)
{
    size_t n = strlen(name), v = strlen(value);
    if (1 + n + 4 + v > cap) return 0;
    out[0] = (uint8_t)n;
    memcpy(out + 1, name, n);
    out[1 + n] = (uint8_t)(v >> 24);
    out[2 + n] = (uint8_t)(v >> 16);
    out[3 + n] = (uint8_t)(v >> 8);
    out[4 + n] = (uint8_t)v;
    memcpy(out + 5 + n, value, v);
    return 5 + n + v;
}

static void reply(broker_t *b, const zmq_msg_t *request_id, const char *code, const char *text,
                  const char *user_id, const uint8_t *meta, size_t meta_len)
{
    void *s = b->zap;
    if (send_part(s, "1.0", 3, true) < 0 ||
        send_part(s, zmq_msg_data((zmq_msg_t *)request_id), zmq_msg_size((zmq_msg_t *)request_id),
                  true) < 0 ||
        send_part(s, code, strlen(code), true) < 0 || send_part(s, text, strlen(text), true) < 0 ||
        send_part(s, user_id, strlen(user_id), true) < 0 || send_part(s, meta, meta_len, false) < 0)
        RLOG(RELAIS_LOG_ERROR, "zap", "cannot answer a ZAP request: %s", zmq_strerror(errno));
}

/* Handles one request; returns false when there was none to read. */
static bool handle_one(broker_t *b)
{
    zmq_msg_t parts[ZAP_PARTS];
    int used = 0;
    bool more = true;
    while (more) {
        zmq_msg_t part;
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, b->zap, ZMQ_DONTWAIT) < 0) {
            /* Nothing to read (multipart messages arrive whole, so only the first part can
             * fail). */
            zmq_msg_close(&part);
            for (int i = 0; i < used; i++) zmq_msg_close(&parts[i]);
            return false;
        }
        more = zmq_msg_more(&part);
        if (used < ZAP_PARTS) {
            zmq_msg_init(&parts[used]);
            zmq_msg_move(&parts[used++], &part);
        }
        zmq_msg_close(&part);
    }

    char address[RELAIS_ADDRESS_MAX] = "", reason[RELAIS_REASON_MAX] = "";
    const char *peer = "?";
    char peer_buf[64];
    if (used >= 4) {
        snprintf(peer_buf, sizeof(peer_buf), "%.*s", (int)zmq_msg_size(&parts[3]),
                 (const char *)zmq_msg_data(&parts[3]));
        peer = peer_buf;
    }
    bool curve = used == ZAP_PARTS && zmq_msg_size(&parts[5]) == 5 &&
                 memcmp(zmq_msg_data(&parts[5]), "CURVE", 5) == 0 && zmq_msg_size(&parts[6]) == 32;
    if (used >= 2 && !curve) {
        RLOG(RELAIS_LOG_WARN, "zap", "refused peer=%s: not a CURVE handshake", peer);
        b->stats.auth_not_curve++;
        reply(b, &parts[1], "400", "CURVE required", "", NULL, 0);
    } else if (used >= 2) {
        const uint8_t *key = zmq_msg_data(&parts[6]);
        char z85[41];
        zmq_z85_encode(z85, key, 32);
        if (auth__key_lookup(b, key, address, reason, sizeof(reason)) == 0) {
            uint8_t meta[128];
            size_t mlen = metadata("X-Key", z85, meta, sizeof(meta));
            reply(b, &parts[1], "200", "OK", address, meta, mlen);
        } else {
            auth__refused(b, z85, peer, reason);
            reply(b, &parts[1], "400", reason, "", NULL, 0);
        }
    }
    for (int i = 0; i < used; i++) zmq_msg_close(&parts[i]);
    return true;
}

static bool zap_has_input(broker_t *b)
{
    int events = 0;
    size_t len = sizeof(events);
    return zmq_getsockopt(b->zap, ZMQ_EVENTS, &events, &len) == 0 && (events & ZMQ_POLLIN);
}

void zap__drain(broker_t *b)
{
    if (b->zap == NULL) return;
    /* Edge-triggered like the ROUTER's: read until nothing is left. */
    while (zap_has_input(b) && handle_one(b)) {
    }
}

static void on_zap(uv_poll_t *h, int status, int events)
{
    zap__drain(h->data);
}

int zap__open(broker_t *b)
{
    b->zap = zmq_socket(b->zctx, ZMQ_REP);
    if (b->zap == NULL) return -errno;
    int zero = 0;
    zmq_setsockopt(b->zap, ZMQ_LINGER, &zero, sizeof(zero));
    if (zmq_bind(b->zap, ZAP_ENDPOINT) < 0) {
        RLOG(RELAIS_LOG_ERROR, "zap", "cannot bind %s: %s", ZAP_ENDPOINT, zmq_strerror(errno));
        return -errno;
    }
    uv_os_sock_t fd;
    size_t len = sizeof(fd);
    if (zmq_getsockopt(b->zap, ZMQ_FD, &fd, &len) < 0) return -errno;
    uv_poll_init_socket(b->loop, &b->zap_poll, fd);
    b->zap_poll.data = b;
    uv_poll_start(&b->zap_poll, UV_READABLE, on_zap);
    b->zap_polling = true;
    return 0;
}

void zap__stop(broker_t *b)
{
    if (!b->zap_polling) return;
    uv_poll_stop(&b->zap_poll);
    uv_close((uv_handle_t *)&b->zap_poll, NULL);
    b->zap_polling = false;
}

void zap__close(broker_t *b)
{
    if (b->zap) zmq_close(b->zap);
    b->zap = NULL;
}
