/*
 * What relais-sim counts while a territory runs, from the reference agents' events, and
 * the report it prints at the end.
 *
 * Two ledgers, both fed from every agent's thread under one mutex:
 *   - the requests the assistants open (appointments, care tasks, preadmissions), each
 *     followed from its first acceptance by the broker to its first answer, its booking
 *     and its outcome, with its reminders, escalations, re-dispatches and reassignments;
 *   - every message id a role sent and the broker accepted, against the ids some role's
 *     handler received and the ids a final negative receipt (refused, expired, unclaimed)
 *     reported back to the sender. An accepted message in neither is lost.
 * Times are business (simulated) milliseconds.
 */
#ifndef RELAIS_SIM_STATS_H
#define RELAIS_SIM_STATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "refagents.h"

typedef struct sim_stats sim_stats_t;

int sim_stats_new(sim_stats_t **out);
void sim_stats_free(sim_stats_t **s);

/* Records one event of the agent at address `self`. Thread-safe. */
void sim_stats_event(sim_stats_t *s, const char *self, const relais_ref_event_t *ev);

/* A delivery the agent at `self` acknowledged (relais_agent_on_acked): accounted for
 * unless the outcome asks for another attempt. Thread-safe. */
void sim_stats_acked(sim_stats_t *s, const uint8_t *message_id, bool final);

/* Waits up to timeout_ms (real time) until every message accepted so far is accounted for
 * (acknowledged or reported back). Returns how many are still open. Thread-safe. */
size_t sim_stats_wait_drained(sim_stats_t *s, int timeout_ms);

/* What the report needs besides the ledgers. */
typedef struct sim_run_info {
    unsigned professionals, practices, assistants, hospitals, facilities;
    unsigned weeks;
    double factor;
    double real_seconds;      /* the simulated weeks, start to the end of the drain */
    uint64_t broker_accepted; /* from relaisd's final statistics line; 0 when unknown */
    unsigned offline_periods; /* professionals taken offline and brought back */
    unsigned silent;          /* professionals who never answer */
    int64_t answer_ms;        /* the answer deadline the assistants track */
} sim_run_info_t;

/* Prints the report (Markdown) to f. Returns the number of lost messages. */
size_t sim_stats_report(sim_stats_t *s, const sim_run_info_t *info, FILE *f);

#endif /* RELAIS_SIM_STATS_H */
