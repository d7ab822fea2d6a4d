/*
 * What the gateway's two halves share: conn.c (MLLP connections on uv_tcp) and gateway.c
 * (messages in flight, the agents, the store). A connection hands each complete frame to
 * gw__frame(); the gateway answers through conn__reply(), once per frame, immediately or
 * after the broker's answers.
 */
#ifndef RELAIS_HL7_GW_INTERNAL_H
#define RELAIS_HL7_GW_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

#include "channel.h"
#include "directory.h"
#include "gateway.h"
#include "hl7.h"
#include "relais/agent.h"
#include "store.h"

typedef struct gw_conn gw_conn_t;
typedef struct gw_job gw_job_t;

typedef struct gw_channel {
    gw_t *gw;
    const hl7_channel_t *cfg;
    relais_agent_t *agent;
    uv_tcp_t server;
    bool listening;
    char listen_text[80]; /* host:port actually bound */
    gw_conn_t *conns;     /* open connections, a doubly linked list */
    uint64_t n_conns;
    /* Outbound (outbound.c), when the channel names the hospital's MLLP endpoint. */
    bool out_enabled;
    int out_state;
    uv_tcp_t out_tcp;
    uv_connect_t out_connect;
    uv_timer_t out_timer;
    int64_t out_seq; /* the queued message in flight */
    uint8_t out_in[8192];
    size_t out_len;
    unsigned out_ctl;
} gw_channel_t;

struct gw {
    uv_loop_t *loop;
    const hl7_config_t *cfg;
    directory_t *dir;
    hl7_store_t *store;
    char coordinator[RELAIS_ADDRESS_MAX];
    gw_channel_t ch[HL7_CHANNELS_MAX];
    size_t n_ch;
    bool stopping;
    uint64_t next_conn_id;
};

struct gw_conn {
    uv_tcp_t tcp;
    uv_timer_t timer;
    gw_channel_t *ch;
    gw_conn_t *prev, *next;
    uint64_t id;
    uint8_t *in; /* received, not yet consumed */
    size_t in_len, in_cap, scan;
    gw_job_t *job; /* the message in flight, NULL when none */
    bool busy;     /* a frame was taken and not answered yet */
    bool in_process, closing, eof, frame_timing, close_after_write;
    int handles; /* open handles (tcp, timer): freed when both closed */
};

/* Starts the channel's outbound sender (nothing when it has no outbound endpoint). */
int out__start(gw_channel_t *ch);
void out__close(gw_channel_t *ch);
/* Queues a status message about what p produced (docs/HL7.md) and sends it when it can.
 * 0, or RELAIS_ESTORE (the caller should make the broker redeliver). */
int out__enqueue(gw_channel_t *ch, const hl7_produced_t *p, const char *status);

/* Listens for one channel. 0 or a libuv error (logged). */
int conn__listen(gw_channel_t *ch);
/* Closes a channel's listener and every connection (messages in flight are detached). */
void conn__close_all(gw_channel_t *ch);
/*
 * Answers the frame in flight on c with an ACK (already built, no framing; NULL: nothing
 * to send, as when MSH-15 says never) and takes the next frame; close_after ends the
 * connection once the ACK is written. c may be NULL (the connection went away).
 */
void conn__reply(gw_conn_t *c, const char *ack, size_t len, bool close_after);
/* Closes c (logging why); its message in flight, if any, goes on without it. */
void conn__close(gw_conn_t *c, const char *why);

/* A complete frame arrived on c (which is now busy until conn__reply()). */
void gw__frame(gw_conn_t *c, const char *data, size_t len);
/* A framing error on c: the gateway answers what it can and c closes. */
void gw__framing_error(gw_conn_t *c, int code, const char *data, size_t len);
/* c is going away: its message in flight must no longer point to it. */
void gw__conn_gone(gw_conn_t *c);

#endif /* RELAIS_HL7_GW_INTERNAL_H */
