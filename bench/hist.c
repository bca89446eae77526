/* SPDX-License-Identifier: MIT */
/* Log-linear histogram: bucket index = (exponent, top 6 bits of the mantissa). */
#include "bench/hist.h"

#include <string.h>

/* Values below WSB_HIST_SUB have a bucket each; above, 2^e..2^(e+1) is split into SUB parts. */
static unsigned bucket_of(uint64_t v)
{
    unsigned e;

    if (v < WSB_HIST_SUB)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v); /* e >= SUB_BITS */
    return (e - WSB_HIST_SUB_BITS + 1) * WSB_HIST_SUB +
           (unsigned)((v >> (e - WSB_HIST_SUB_BITS)) & (WSB_HIST_SUB - 1));
}

static uint64_t bucket_mid(unsigned i)
{
    unsigned e, sub;

    if (i < WSB_HIST_SUB)
        return i;
    e = i / WSB_HIST_SUB + WSB_HIST_SUB_BITS - 1;
    sub = i % WSB_HIST_SUB;
    return ((uint64_t)(WSB_HIST_SUB + sub) << (e - WSB_HIST_SUB_BITS)) +
           ((1ull << (e - WSB_HIST_SUB_BITS)) >> 1);
}

void wsb_hist_init(struct wsb_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

void wsb_hist_record(struct wsb_hist *h, uint64_t v)
{
    h->bucket[bucket_of(v)]++;
    h->count++;
    h->sum += v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

uint64_t wsb_hist_quantile(const struct wsb_hist *h, double q)
{
    uint64_t target, cum = 0, v;

    if (h->count == 0)
        return 0;
    target = (uint64_t)(q * (double)h->count);
    if ((double)target < q * (double)h->count) /* ceil, without libm */
        target++;
    if (target < 1)
        target = 1;
    for (unsigned i = 0; i < WSB_HIST_BUCKETS; i++) {
        cum += h->bucket[i];
        if (cum >= target) {
            v = bucket_mid(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}
