/* SPDX-License-Identifier: MIT */
/* Waiting for the client in a blocking recv(): one system call per wakeup where epoll_wait()
 * then recv() take two, and the worker's wakeups are most of its cost (a process switch each).
 * What a blocking recv() cannot watch must still end it: a termination (SIGTERM) and the
 * connection's deadline (the heartbeat). Both arrive as signals whose handler makes the socket
 * non-blocking, so a recv() about to start returns at once and one already waiting returns when
 * restarted. SIGTERM's handler keeps the siginfo for wsd_wake_take_term; the deadline is the
 * caller's clock to check. Owner: the worker, one connection at a time. */
#ifndef WSD_CORE_WAKE_H
#define WSD_CORE_WAKE_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* What a caught SIGTERM said (the fields of its siginfo a worker uses). */
struct wsd_wake_term {
    int code;       /* si_code: SI_QUEUE for wsd's own kills, SI_USER for kill(1) */
    pid_t pid;      /* the sender */
    uid_t uid;
    uint64_t value; /* si_value (sival_ptr): with SI_QUEUE, wsd_kill_value() */
};

/* Install the handlers now, in a process that forks workers, so that each worker need not:
 * harmless while SIGTERM stays blocked and no timer is set. 0 or -errno. */
int wsd_wake_install(void);

/* Ready fd for recv(fd, ..., 0) with the deadline at_ms (CLOCK_MONOTONIC ms as wsd_now_ms(),
 * 0 = none): in blocking mode, a timer at at_ms, and SIGTERM unblocked (until
 * wsd_wake_release) so that it can end the wait. Returns true if the caller may block in recv()
 * now; false if a signal came since the last call (or fd could not be set up): look at
 * wsd_wake_take_term and the clock, and wait through epoll this once. Costs no system call
 * while nothing changes. */
bool wsd_wake_arm(int fd, uint64_t at_ms);

/* A SIGTERM caught since the first wsd_wake_arm (while it was unblocked): true and *ret
 * filled, once per signal. wsd_wake_term_caught only looks. */
bool wsd_wake_take_term(struct wsd_wake_term *ret);
bool wsd_wake_term_caught(void);

/* The worker is about to wait through epoll instead: until the next wsd_wake_arm a SIGTERM
 * goes to the signalfd, which the epoll set watches. Returns true if one was caught before:
 * take it (wsd_wake_take_term), since the signalfd will not show it. No system call. */
bool wsd_wake_pause(void);

/* The connection on fd is ending: no handler touches it any more, its timer stops, SIGTERM is
 * blocked again and what was caught but not taken goes back to the signalfd (none of which
 * matters to a worker that exits next: pass exiting). */
void wsd_wake_release(bool exiting);

#endif
