/* SPDX-License-Identifier: MIT */
/* The worker process: waits idle on the dispatch queue, takes exactly one connection, serves
 * it, and exits. */
#ifndef WSD_SUPERVISOR_WORKER_H
#define WSD_SUPERVISOR_WORKER_H

#include <stdint.h>
#include <sys/types.h>

struct wsd_config;
struct wsd_shared;
struct wsd_tls_ctx;

struct wsd_worker_args {
    const struct wsd_config *cfg;
    pid_t supervisor_pid;
    uint32_t slot;
    uint64_t cookie;
    struct wsd_shared *shared; /* unmapped at once: workers have no business with it */
    struct wsd_tls_ctx *tls;   /* the certificate current when this worker was spawned */
};

/* The child's main (a wsd_child_main_cb); never returns. */
void wsd_worker_main(void *args);

#endif
