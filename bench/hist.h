/* SPDX-License-Identifier: MIT */
/* A log-linear latency histogram (HdrHistogram's layout, simplified): 64 linear sub-buckets per
 * power of two, so any recorded value is reported within 1.6% without storing or sorting
 * samples. Fixed size (about 30 KB), no allocation. */
#ifndef WSD_BENCH_HIST_H
#define WSD_BENCH_HIST_H

#include <stdint.h>

#define WSB_HIST_SUB_BITS 6
#define WSB_HIST_SUB (1u << WSB_HIST_SUB_BITS)
#define WSB_HIST_BUCKETS ((64 - WSB_HIST_SUB_BITS + 1) * WSB_HIST_SUB)

struct wsb_hist {
    uint64_t count;
    uint64_t min;
    uint64_t max;
    uint64_t sum;
    uint64_t bucket[WSB_HIST_BUCKETS];
};

/* Zero the histogram. */
void wsb_hist_init(struct wsb_hist *h);

/* Count one value (any uint64_t; the unit is the caller's, nanoseconds in wsbench). */
void wsb_hist_record(struct wsb_hist *h, uint64_t v);

/* The value below which a fraction q (0..1) of the recorded values fall: the middle of the
 * bucket holding the ceil(q * count)-th value, clamped to [min, max]. 0 when empty. */
uint64_t wsb_hist_quantile(const struct wsb_hist *h, double q);

#endif
