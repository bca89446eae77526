/* SPDX-License-Identifier: MIT */
/* wsbench spawn: what process creation alone allows on this machine, the floor under wsd's
 * fresh-process-per-connection rate. No server and no sockets. */
#ifndef WSD_BENCH_SPAWN_PROBE_H
#define WSD_BENCH_SPAWN_PROBE_H

#include "bench/wsbench.h"

/* For cfg->duration_s, keep cfg->conns empty children in flight: clone3(CLONE_PIDFD) the way
 * wsd spawns, the child _exit(0)s at once, the parent reaps it with waitid(P_PIDFD). Fills
 * res->done (reaped), res->elapsed_s and res->lat (clone3 -> reaped). Returns 0, or -errno if
 * clone3 or waitid fails (after printing why). */
int wsb_spawn_probe_run(const struct wsb_config *cfg, struct wsb_result *res);

#endif
