/* SPDX-License-Identifier: MIT */
/* wsbench's connection engine: runs one configured mode over io_uring and fills the result. */
#ifndef WSD_BENCH_ENGINE_H
#define WSD_BENCH_ENGINE_H

#include "bench/wsbench.h"

/* Run the configured mode until it ends by itself (a hard deadline bounds every phase).
 * Returns 0 and fills *res, or -errno on a setup failure (after printing why). Exits the
 * process with status 2 on a protocol error or an echo that differs from what was sent: those
 * are never counted and carried past. hold calls hook once, when every connection is open and
 * settle_s has passed, with res->done = connections open at that moment (the memory
 * measurement point); hook may be NULL. */
typedef void (*wsb_hold_cb)(const struct wsb_config *cfg, struct wsb_result *res);
int wsb_engine_run(const struct wsb_config *cfg, struct wsb_result *res, wsb_hold_cb hook);

#endif
