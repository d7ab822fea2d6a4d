/*
 * Who a connection is. The broker learns an agent's identity in exactly one place, here,
 * so that the security work replaces one function: today the development mode's declared
 * address (Hello.address), later the ZAP User-Id of the CURVE key. Nothing else in the
 * broker reads an identity from the routing id or from what the agent writes.
 */
#include <stdio.h>
#include <string.h>

#include "broker.h"

int auth__identify(broker_t *b, zmq_msg_t *msg, const Relais__V1__Hello *hello,
                   char address[RELAIS_ADDRESS_MAX], char *reason, size_t reason_len)
{
    (void)msg;
    if (!b->cfg.insecure) {
        snprintf(reason, reason_len,
                 "this broker accepts no sessions: no security mode "
                 "is configured");
        return RELAIS_EFORBIDDEN;
    }
    if (hello->address == NULL || hello->address[0] == '\0') {
        snprintf(reason, reason_len, "Hello.address is required in insecure mode");
        return RELAIS_EFORBIDDEN;
    }
    relais_address_t a;
    char why[RELAIS_REASON_MAX];
    if (relais_address_parse(hello->address, &a, why, sizeof(why)) < 0) {
        snprintf(reason, reason_len, "Hello.address: %s", why);
        return RELAIS_EFORBIDDEN;
    }
    if (a.kind == RELAIS_ADDR_SERVICE) {
        snprintf(reason, reason_len,
                 "Hello.address %s is a service pool; an agent connects as itself", hello->address);
        return RELAIS_EFORBIDDEN;
    }
    snprintf(address, RELAIS_ADDRESS_MAX, "%s", hello->address);
    return 0;
}
