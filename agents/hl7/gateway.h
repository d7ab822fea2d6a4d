/*
 * The relais-hl7 gateway: one libuv loop holding, for each channel, an MLLP listener on
 * uv_tcp and an SDK agent (the hospital's address, key and state file), plus the territory
 * directory and the acknowledgement store they share.
 *
 * Per connection one message is in flight: the next frame is not read from the buffer
 * before the previous one is answered, so each sender's order is kept. A message is
 * answered AA only once the broker has Accepted every Relais message it produced (the
 * SDK's send callback), AR when the broker cannot take it now (unreachable, overloaded,
 * store unavailable, or no answer within ack_timeout_ms), AE when it can never be taken.
 */
#ifndef RELAIS_HL7_GATEWAY_H
#define RELAIS_HL7_GATEWAY_H

#include <stdio.h>
#include <uv.h>

#include "channel.h"

typedef struct gw gw_t;

/*
 * Builds the gateway on loop from cfg (which it keeps; the caller frees it after
 * gw_destroy()): loads the directory, opens the store and the channels' agents, binds the
 * listeners, and writes one line per channel to ready ("relais-hl7 ready channel=NAME
 * listen=HOST:PORT") once listening. Returns 0, RELAIS_ECONFIG (reason logged), or an
 * SDK/libuv error.
 */
int gw_start(gw_t **out, uv_loop_t *loop, const hl7_config_t *cfg, FILE *ready);

/*
 * Loads the territory directory again (SIGHUP): GP resolution and the coordinator follow the
 * new file at once. When it is invalid the previous one stays (logged). 0 or the error.
 */
int gw_reload(gw_t *gw);

/* Closes listeners and connections, stops the agents; the loop then runs out. */
void gw_stop(gw_t *gw);

/* Frees the gateway after its loop has run out. Accepts NULL; nulls *gw. */
void gw_destroy(gw_t **gw);

#endif /* RELAIS_HL7_GATEWAY_H */
