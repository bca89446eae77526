/* SPDX-License-Identifier: MIT */
/* wsbench's epoll engine for wss:// (wolfSSL client), which also runs ws:// with --epoll so
 * that both are measured by the same client code. Modes conn and echo. */
#ifndef WSD_BENCH_TLS_ENGINE_H
#define WSD_BENCH_TLS_ENGINE_H

#include "bench/wsbench.h"

/* Run the configured mode. Returns 0 with *res filled, or -errno on a setup failure. Exits
 * with status 2 on an echo of the wrong size. */
int wsb_tls_engine_run(const struct wsb_config *cfg, struct wsb_result *res);

#endif
