/*
 * Answers that take working time, for the provider role: a request is acknowledged when it
 * arrives and kept (a packed copy) until its answer is due, after a delay drawn from a
 * log-normal distribution and counted in the practice's working hours — a desk that reads
 * its messages between patients, not a machine answering in milliseconds. The list lives
 * in the provider, not in its agent, so an agent taken offline and replaced keeps it; the
 * provider re-arms the timers on the new agent.
 */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "ref_internal.h"

#define DAY_MS (24 * 3600 * 1000LL)

ref__later_t *ref__later_add(ref__later_t **head, const Relais__V1__Envelope *env, int64_t at_ms,
                             bool offered, void *owner)
{
    ref__later_t *l = calloc(1, sizeof *l);
    if (l == NULL) return NULL;
    l->len = relais__v1__envelope__get_packed_size(env);
    l->bytes = malloc(l->len > 0 ? l->len : 1);
    if (l->bytes == NULL) {
        free(l);
        return NULL;
    }
    relais__v1__envelope__pack(env, l->bytes);
    l->at_ms = at_ms;
    l->offered = offered;
    l->owner = owner;
    l->next = *head;
    *head = l;
    return l;
}

void ref__later_remove(ref__later_t **head, ref__later_t *l)
{
    for (ref__later_t **pp = head; *pp != NULL; pp = &(*pp)->next) {
        if (*pp != l) continue;
        *pp = l->next;
        free(l->bytes);
        free(l);
        return;
    }
}

void ref__later_free_all(ref__later_t **head)
{
    while (*head != NULL) ref__later_remove(head, *head);
}

int64_t ref__lognormal_ms(int64_t median_ms, double sigma, double u1, double u2)
{
    if (median_ms <= 0) return 0;
    /* Box–Muller: a standard normal from two uniforms; u1 kept away from 0. */
    double z = sqrt(-2.0 * log(u1 > 1e-12 ? u1 : 1e-12)) * cos(6.283185307179586 * u2);
    double v = (double)median_ms * exp(sigma * z);
    double cap = 40.0 * (double)median_ms;
    return (int64_t)(v < cap ? v : cap);
}

int64_t ref__working_time_add(const ref_calendar_spec_t *spec, int64_t from_ms, int64_t work_ms)
{
    int64_t left = work_ms > 0 ? work_ms : 0;
    int64_t t = from_ms;
    /* At most a year of days: a spec without working hours answers after the delay. */
    for (int d = 0; d < 366 && spec->n_hours > 0; d++) {
        int64_t day = t - (t % DAY_MS + DAY_MS) % DAY_MS;
        int wd = (int)(((day / DAY_MS) % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday: 3 */
        if (spec->work_days & (1u << wd)) {
            for (size_t h = 0; h < spec->n_hours; h++) {
                int64_t open = day + (int64_t)spec->hours[h].from_min * 60000;
                int64_t close = day + (int64_t)spec->hours[h].to_min * 60000;
                int64_t start = t > open ? t : open;
                if (start >= close) continue;
                if (start + left <= close) return start + left;
                left -= close - start;
                t = close;
            }
        }
        t = day + DAY_MS;
    }
    return from_ms + work_ms;
}
