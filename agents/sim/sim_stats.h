/*
 * What relais-sim counts while a territory runs, from the reference agents' events, and
 * the report it prints at the end.
 *
 * Two ledgers, both fed from every agent's thread under one mutex:
 *   - the requests the assistants open (appointments, care tasks, preadmissions), each
 *     followed from its first acceptance by the broker to its first answer, its booking
 *     and its outcome, with its reminders, escalations, re-dispatches and reassignments;
 *   - every message id an agent submitted and the broker accepted — its application's and
 *     its SDK's own (escalations, re-dispatches, cancels, resends from the state file), from
 *     relais_agent_on_submitted() — against the ids some agent acknowledged
 *     (relais_agent_on_acked()) and the ids a final negative receipt (refused, expired,
 *     unclaimed) reported back to the sender. An accepted message in neither is lost.
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

/* The broker accepted a message the agent at `self` submitted — its application's or its
 * SDK's own (relais_agent_on_submitted). Thread-safe. */
void sim_stats_submitted(sim_stats_t *s, const char *self, const uint8_t *message_id);

/* The agent at `self` was offline from from_ms to to_ms (business time; to_ms 0: still
 * is). A requester away at its own deadline acts when it is back. Thread-safe. */
void sim_stats_offline(sim_stats_t *s, const char *self, int64_t from_ms, int64_t to_ms);

/* A delivery the agent at `self` acknowledged (relais_agent_on_acked): accounted for
 * unless the outcome asks for another attempt. Thread-safe. */
void sim_stats_acked(sim_stats_t *s, const uint8_t *message_id, bool final);

/* Waits up to timeout_ms (real time) until every message accepted so far is accounted for
 * (acknowledged or reported back). Returns how many are still open. Thread-safe. */
size_t sim_stats_wait_drained(sim_stats_t *s, int timeout_ms);

/* A pool and how many members it has, for the report of its shares. */
typedef struct sim_pool {
    const char *address;
    unsigned members;
} sim_pool_t;

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
    int64_t end_ms;           /* business time when the simulated weeks ended */
    unsigned max_redispatches; /* bound: the longest route's candidates (the coordinator's
                                * reassignment included) */
    unsigned max_escalations;  /* bound: per request */
    double stall_max_ms;       /* the longest stall seen (real ms): the tolerance's base */
    double watch_stall_ms;     /* of which: how late a plain thread woke, at most */
    double loop_lag_ms;        /* and how late an assistant's loop ran a timer, at most */
    unsigned stalls;           /* stalls over 100 ms */
    unsigned broker_restarts;  /* relaisd killed with SIGKILL and restarted */
    double restart_real_ms;    /* how long the last restart took, real time */
    size_t undrained;          /* accepted messages still open when the drain gave up */
    const sim_pool_t *pools;
    size_t n_pools;
} sim_run_info_t;

/* What went wrong, as counted by the report. */
typedef struct sim_verdict {
    size_t lost;       /* accepted, never handled nor reported back */
    size_t over_bound; /* requests re-dispatched or escalated more than the bounds */
    size_t late;       /* due requests not acted on by their deadline, beyond the tolerance
                        * the machine's longest stall gives (and the requesting desk's own
                        * absence, when it was away at the deadline) */
} sim_verdict_t;

/* Prints the report (Markdown) to f and fills v (may be NULL). Returns v's total. */
size_t sim_stats_report(sim_stats_t *s, const sim_run_info_t *info, FILE *f, sim_verdict_t *v);

#endif /* RELAIS_SIM_STATS_H */
