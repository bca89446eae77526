/* SPDX-License-Identifier: MIT */
/* Waiting for the client in a blocking recv(): one system call per wakeup where epoll_wait()
 * then recv() take two, and the worker's wakeups are most of its cost (a process switch each).
 * What a blocking recv() cannot watch must still end it: a termination (SIGTERM, read from the
 * worker's signalfd as before) and the connection's deadline (the heartbeat). Both arrive as
 * signals whose handler makes the socket non-blocking, so a recv() about to start returns at
 * once and one already waiting returns when restarted; the caller then takes its epoll path,
 * which sees the signalfd and the clock. Owner: the worker, one connection at a time. */
#ifndef WSD_CORE_WAKE_H
#define WSD_CORE_WAKE_H

#include <stdbool.h>
#include <stdint.h>

/* Install the handlers now, in a process that forks workers, so that each worker need not:
 * harmless while SIGTERM stays blocked and no timer is set. 0 or -errno. */
int wsd_wake_install(void);

/* Ready fd for recv(fd, ..., 0) with the deadline at_ms (CLOCK_MONOTONIC ms as wsd_now_ms(),
 * 0 = none): in blocking mode, SIGTERM and a timer at at_ms able to interrupt it.
 * Returns true if the caller may block in recv() now; false if a signal came since the last
 * call (or fd could not be set up): wait through epoll this once, so that whatever the signal
 * brought is seen. Costs no system call while nothing changes. */
bool wsd_wake_arm(int fd, uint64_t at_ms);

/* The connection on fd is ending: no handler touches it any more, and its timer is stopped
 * (unless the worker exits anyway: pass exiting). */
void wsd_wake_release(bool exiting);

#endif
