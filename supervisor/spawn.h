/* SPDX-License-Identifier: MIT */
/* Starting children held by pidfd from birth (clone3 CLONE_PIDFD: no window in which the pid
 * could be reaped and reused before wsd holds it). */
#ifndef WSD_SUPERVISOR_SPAWN_H
#define WSD_SUPERVISOR_SPAWN_H

#include <stdint.h>
#include <sys/types.h>

/* The fds every worker keeps, at fixed numbers: the worker template keeps 3-6 of the
 * supervisor's (possibly huge) fd table, and each worker it creates keeps 3-5. */
enum {
    WSD_FD_DISPATCH = 3, /* read end of the shared dispatch queue */
    WSD_FD_REPORT = 4,   /* worker end of the report socket */
    WSD_FD_KEYHOLDER = 5, /* worker end of the current keyholder's channel; /dev/null without TLS */
    WSD_FD_TEMPLATE = 6,  /* the worker template's end of its channel (/dev/null in the
                           * supervisor between templates); workers close it */
    WSD_FD_FIRST_PRIVATE = 7,
};

typedef void (*wsd_child_main_cb)(void *arg);

/* Start a child with a copy of the fd table (the acceptor and the worker template, which need
 * several of the supervisor's fds and close the rest). child_main must not return. */
pid_t wsd_spawn_process(wsd_child_main_cb child_main, void *arg, int *ret_pidfd);

/* In a new child: name it (comm), die with the supervisor, lead its own process group (so the
 * terminal's ^C reaches only the supervisor, which then stops everyone in order), and leave
 * if the supervisor is already gone; wipe the admin token from its environment; lower its
 * RLIMIT_RTPRIO to 0, give SIGXCPU its default action back (rt_guard.h), and keep only the
 * capabilities in keep_caps (caps.h). */
void wsd_spawn_child_init(const char *name, pid_t supervisor_pid, uint64_t keep_caps);

/* The same in a clone of a child that ran wsd_spawn_child_init (a worker, cloned by the
 * template): only what a clone does not inherit, since every page it writes is a page fault
 * paid per connection. Its environment was wiped already. */
void wsd_spawn_clone_init(const char *name, pid_t supervisor_pid);

#endif
