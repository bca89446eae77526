/* SPDX-License-Identifier: MIT */
/* The supervisor's counters for Prometheus (/metrics, served by the wsd-metrics process): what
 * the supervisor sees itself (closes by cause and code, terminations, spawn and kill-to-exit
 * latency) plus the traffic workers report. Rendering is here too, from these numbers only: no
 * network byte is parsed to make it. */
#ifndef WSD_SUPERVISOR_METRICS_H
#define WSD_SUPERVISOR_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "supervisor/pool.h"

struct supervisor;
struct wsd_buf;

#define WSD_HIST_MAX_BUCKETS 16
#define WSD_CLOSED_SERIES 64 /* distinct (cause, code) pairs; more go to code="other" */

struct wsd_histogram {
    const double *bounds; /* upper bounds in seconds, ascending; +Inf is implicit */
    size_t n;
    uint64_t counts[WSD_HIST_MAX_BUCKETS]; /* per bucket, not cumulative */
    uint64_t count;
    double sum;
};

struct wsd_closed_series {
    uint16_t cause; /* enum wsd_cause */
    uint16_t code;
    uint64_t n;
};

struct wsd_metrics {
    struct wsd_closed_series closed[WSD_CLOSED_SERIES];
    size_t n_closed;
    uint64_t closed_other[WSD_CAUSE_COUNT]; /* the table was full */
    uint64_t terminations[WSD_CAUSE_COUNT];
    uint64_t heartbeat_terminations;
    struct wsd_traffic traffic; /* every connection's, folded in as it is learnt */
    struct wsd_histogram kill_to_exit, spawn;
};

void wsd_metrics_init(struct wsd_metrics *m);

/* A connection ended with code after cause (WSD_CAUSE_NONE: normally). */
void wsd_metrics_closed(struct wsd_metrics *m, enum wsd_cause cause, uint16_t code);

/* Add what a worker has done since the last fold: now is its count so far for the connection,
 * w->counted what was added already. Counts only grow, so the totals never go back. */
void wsd_metrics_fold(struct wsd_metrics *m, struct wsd_worker *w, const struct wsd_traffic *now);

void wsd_histogram_observe(struct wsd_histogram *h, double seconds);

/* Append the Prometheus text exposition (format 0.0.4) of everything wsd counts. Reads the
 * live counters of busy workers first (process_vm_readv), so open connections' traffic shows. */
void wsd_metrics_render(struct supervisor *s, struct wsd_buf *out);

#endif
