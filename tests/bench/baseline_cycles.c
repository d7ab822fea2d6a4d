/*
 * A check of relais-bench's baseline forwarder (baseline.c), not a benchmark: forwarders
 * started and stopped back to back in one ZeroMQ context, as the bench does between its
 * scenarios, must all start. The forwarder's inproc stop channel used to be named after its
 * own address, which malloc often hands to the next one while libzmq still holds the name
 * of the closed socket: about one start in four failed with "Address already in use"
 * (seen on the 2 KiB CURVE baseline of a full run).
 */
#include <stdio.h>
#include <zmq.h>

#include "bench.h"

#define CYCLES 2000

int main(void)
{
    void *zctx = zmq_ctx_new();
    if (zctx == NULL) return 2;
    int failed = 0;
    for (int i = 0; i < CYCLES; i++) {
        baseline_t *bl = NULL;
        char endpoint[128];
        if (baseline_start(&bl, zctx, NULL, endpoint, sizeof(endpoint)) < 0) {
            failed++;
            continue;
        }
        baseline_stop(&bl);
    }
    zmq_ctx_term(zctx);
    printf("baseline forwarder: %d of %d starts failed\n", failed, CYCLES);
    return failed == 0 ? 0 : 1;
}
