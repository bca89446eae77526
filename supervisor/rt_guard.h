/* SPDX-License-Identifier: MIT */
/* The real-time supervisor's guard against itself (rt_guard.c). */
#ifndef WSD_SUPERVISOR_RT_GUARD_H
#define WSD_SUPERVISOR_RT_GUARD_H

#include <stdbool.h>

/* CPU time the supervisor may run at SCHED_FIFO without blocking before the guard trips. */
#define WSD_RT_GUARD_US 200000

/* In the supervisor, once it runs at SCHED_FIFO: have the kernel send SIGXCPU after
 * WSD_RT_GUARD_US of CPU without blocking (RLIMIT_RTTIME), and catch it by returning to the
 * default policy. Returns 0 or -errno. */
int wsd_rt_guard_arm(void);

/* True once after the guard tripped (the supervisor's tick logs it). */
bool wsd_rt_guard_tripped(void);

/* In a child of the supervisor: SIGXCPU back to its default action, and blocked as every other
 * signal the supervisor blocks. */
void wsd_rt_guard_child(void);

#endif
