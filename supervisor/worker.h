/* SPDX-License-Identifier: MIT */
/* The worker process: waits idle on the dispatch queue, takes exactly one connection, serves
 * it, and exits. */
#ifndef WSD_SUPERVISOR_WORKER_H
#define WSD_SUPERVISOR_WORKER_H

#include <stddef.h>
#include <signal.h>
#include <stdint.h>
#include <sys/types.h>

struct wsd_config;
struct wsd_tls_ctx;

/* What every worker needs and the template makes once, before it clones any: a worker
 * inherits it instead of paying for it (system calls, and the page faults of malloc's first
 * use in a fresh copy of the heap) on every connection. */
struct wsd_worker_prep {
    uint8_t *payload; /* the handoff's request and pipelined bytes */
    size_t payload_cap;
    sigset_t term_mask; /* SIGTERM, for the worker's signalfd */
};

struct wsd_worker_args {
    const struct wsd_config *cfg;
    const struct wsd_worker_prep *prep;
    pid_t supervisor_pid;
    uint32_t slot;
    uint64_t cookie;
    struct wsd_tls_ctx *tls; /* the certificate current when this worker was spawned */
};

/* In the template, once. Returns 0 or -errno. */
int wsd_worker_prepare(struct wsd_worker_prep *ret, const struct wsd_config *cfg);

/* The child's main (a wsd_child_main_cb); never returns. */
void wsd_worker_main(void *args);

#endif
