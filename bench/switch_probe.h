/* SPDX-License-Identifier: MIT */
/* wsbench switch: what a switch between tasks costs on this machine when there are as many as
 * wsd has workers, with and without an address space each. No server and no sockets: the
 * floor under echo with many connections, where every wakeup of a worker is such a switch. */
#ifndef WSD_BENCH_SWITCH_PROBE_H
#define WSD_BENCH_SWITCH_PROBE_H

#include "bench/wsbench.h"

/* For cfg->duration_s, pass one byte around a ring of cfg->conns tasks (this one and
 * cfg->conns - 1 forked processes, or threads with cfg->threads), each blocking in read() on
 * its pipe and writing to the next one's. Fills res->done (hops), res->elapsed_s and res->lat
 * (each lap's time divided by its hops, ns). Returns 0, or -errno after printing why; every
 * task it started is gone when it returns. */
int wsb_switch_probe_run(const struct wsb_config *cfg, struct wsb_result *res);

#endif
