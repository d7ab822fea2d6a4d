/*
 * Business time and transport time.
 *
 * Two clocks, kept apart on purpose. Business time (relais_now_ms) is what messages carry
 * and what deadlines, expiry, appointment slots and receipts are measured in: wall-clock
 * milliseconds since the epoch. Transport time (relais_mono_ms) is what heartbeats, ack
 * timeouts and retry back-offs are measured in: a monotonic clock, never scaled.
 *
 * A territory simulation compresses business time: with RELAIS_SIM_CLOCK set to
 * "FACTOR,REAL_ORIGIN_MS,SIM_ORIGIN_MS" every process of the simulation (the broker and
 * the agents, which inherit the variable) computes
 *     business = SIM_ORIGIN_MS + (wall - REAL_ORIGIN_MS) * FACTOR
 * so they agree on one simulated calendar while the transport keeps its real timings.
 * The variable is read once, on first use; relais_clock_init() reports a malformed one.
 * Unset, business time is the wall clock.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "relais/codec.h"

#define SIM_FACTOR_MAX 1000000.0

static pthread_once_t clock_once = PTHREAD_ONCE_INIT;
static double sim_factor = 1.0;
static int64_t sim_real_origin, sim_origin;
static int clock_status; /* 0, or RELAIS_ECONFIG for a malformed RELAIS_SIM_CLOCK */

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void clock_setup(void)
{
    const char *v = getenv("RELAIS_SIM_CLOCK");
    if (v == NULL || v[0] == '\0') return;
    double factor;
    long long real_origin, origin;
    char extra;
    if (sscanf(v, "%lf,%lld,%lld%c", &factor, &real_origin, &origin, &extra) != 3 ||
        !isfinite(factor) || factor < 1.0 || factor > SIM_FACTOR_MAX || real_origin < 0 ||
        origin < 0) {
        clock_status = RELAIS_ECONFIG;
        return;
    }
    sim_factor = factor;
    sim_real_origin = real_origin;
    sim_origin = origin;
}

int relais_clock_init(void)
{
    pthread_once(&clock_once, clock_setup);
    return clock_status;
}

double relais_clock_factor(void)
{
    pthread_once(&clock_once, clock_setup);
    return sim_factor;
}

int64_t relais_now_ms(void)
{
    pthread_once(&clock_once, clock_setup);
    int64_t wall = wall_ms();
    if (sim_factor == 1.0) return wall;
    return sim_origin + (int64_t)((double)(wall - sim_real_origin) * sim_factor);
}

int64_t relais_wall_ms(void)
{
    return wall_ms();
}

int64_t relais_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t relais_clock_real_delay_ms(int64_t business_ms)
{
    if (business_ms <= 0) return 0;
    double f = relais_clock_factor();
    if (f == 1.0) return business_ms;
    return (int64_t)ceil((double)business_ms / f);
}
