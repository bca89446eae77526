/* SPDX-License-Identifier: MIT */
/* Capabilities of the processes the supervisor starts. A wsd run as root would otherwise hand
 * all of root's to the acceptor, the template and every worker: raw sockets (CAP_NET_RAW: a
 * compromised worker could read every other connection's traffic off the loopback device),
 * the network's configuration (CAP_NET_ADMIN), file handles that get past Landlock
 * (CAP_DAC_READ_SEARCH), real-time priority (CAP_SYS_NICE). None of them needs any, but for
 * the exec handler's workers, which switch their programs to WSD_USER and set their limits. */
#ifndef WSD_SUPERVISOR_CAPS_H
#define WSD_SUPERVISOR_CAPS_H

#include <linux/capability.h>
#include <stdint.h>

/* What the exec handler's workers keep: setgroups, setresgid and setresuid to WSD_USER for
 * their programs (core/exec_proc.c; the uid change then clears them all in the program),
 * WSD_EXEC_RLIMIT_* above the hard limit wsd was started with, and signals to programs that
 * run as that other user (core/exec.c; Landlock still confines them to the worker's domain).
 * Every other child of the supervisor keeps none. */
#define WSD_CAPS_EXEC_WORKER                                                                       \
    (1ULL << CAP_SETUID | 1ULL << CAP_SETGID | 1ULL << CAP_SYS_RESOURCE | 1ULL << CAP_KILL)

/* Keep only the capabilities in keep in the permitted, effective and bounding sets, none
 * inheritable or ambient. A process that holds none (wsd not run as root) loses nothing.
 * Returns 0 or -errno. */
int wsd_caps_limit(uint64_t keep);

#endif
