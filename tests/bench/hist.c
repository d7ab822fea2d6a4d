/*
 * Latency histograms for relais-bench: log-linear buckets, as HdrHistogram does, so that
 * recording is one increment (no allocation, no sorting on the hot path) and p999 of a
 * million samples costs no memory. Each power of two is split into 2^HIST_SUB_BITS
 * buckets, which bounds the relative error of a reported quantile to about 3 %.
 */
#include <string.h>
#include <time.h>

#include "bench.h"

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static unsigned bucket_of(uint64_t v)
{
    if (v < (1u << HIST_SUB_BITS)) return (unsigned)v;
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - HIST_SUB_BITS;
    unsigned sub = (unsigned)(v >> shift) & ((1u << HIST_SUB_BITS) - 1);
    return ((shift + 1) << HIST_SUB_BITS) | sub;
}

/* The middle of a bucket's range, which is what a quantile falling in it reports. */
static uint64_t bucket_value(unsigned i)
{
    if (i < (1u << HIST_SUB_BITS)) return i;
    unsigned shift = (i >> HIST_SUB_BITS) - 1;
    uint64_t sub = (i & ((1u << HIST_SUB_BITS) - 1)) | (1u << HIST_SUB_BITS);
    uint64_t lo = sub << shift;
    return lo + ((1ull << shift) >> 1);
}

void hist_add(hist_t *h, uint64_t ns)
{
    h->counts[bucket_of(ns)]++;
    h->n++;
    if (ns > h->max_ns) h->max_ns = ns;
}

void hist_merge(hist_t *into, const hist_t *from)
{
    for (unsigned i = 0; i < HIST_BUCKETS; i++) into->counts[i] += from->counts[i];
    into->n += from->n;
    if (from->max_ns > into->max_ns) into->max_ns = from->max_ns;
}

uint64_t hist_quantile(const hist_t *h, double q)
{
    if (h->n == 0) return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n);
    if (rank >= h->n) rank = h->n - 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen > rank) {
            uint64_t v = bucket_value(i);
            return v > h->max_ns ? h->max_ns : v;
        }
    }
    return h->max_ns;
}
