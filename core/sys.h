/* SPDX-License-Identifier: MIT */
/* The one seam to the kernel for calls glibc 2.36 lacks or that wsd wraps: each returns >= 0
 * or -errno, and every fd it creates is CLOEXEC. None retries EINTR unless it says so. */
#ifndef WSD_CORE_SYS_H
#define WSD_CORE_SYS_H

#include <signal.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/wait.h>

/* clone3() with CLONE_PIDFD | extra_flags and exit signal SIGCHLD. Returns 0 in the child,
 * the child's pid in the parent with *ret_pidfd set (CLOEXEC), or -errno. */
int wsd_sys_clone3_pidfd(uint64_t extra_flags, int *ret_pidfd);

/* pidfd_send_signal(); info may be NULL. The only way wsd signals a process. */
int wsd_sys_pidfd_send_signal(int pidfd, int sig, siginfo_t *info);

/* pidfd_send_signal() to the process group whose id is the pidfd's pid
 * (PIDFD_SIGNAL_PROCESS_GROUP): reaches every member, even after the leader has exited. */
int wsd_sys_pidfd_signal_group(int pidfd, int sig);

/* pidfd_open(pid, 0): only race-free for a child the caller has not reaped. */
int wsd_sys_pidfd_open(pid_t pid);

/* waitid(P_PIDFD, pidfd, WEXITED | options). Retries EINTR. Returns 0 with *ret_info filled
 * (ret_info->si_pid == 0 if WNOHANG and not yet exited), or -errno. */
int wsd_sys_waitid_pidfd(int pidfd, siginfo_t *ret_info, int options);

/* close_range(first, ~0U, flags). */
int wsd_sys_close_range(unsigned first, unsigned flags);

/* close() that accepts -1 and returns -1, for fd = wsd_close(fd). Never retries EINTR (Linux
 * has released the fd even then). */
int wsd_close(int fd);

/* Zeroed memory that child processes do not inherit (mmap + MADV_DONTFORK), for the
 * supervisor's big tables: a fork then neither copies their page tables into every worker nor
 * leaves their pages copy-on-write, to be copied again at the parent's next write. A child that
 * touches it faults. NULL if out of memory. Free with wsd_sys_free_unforked(p, size). */
void *wsd_sys_alloc_unforked(size_t size);
void wsd_sys_free_unforked(void *p, size_t size);

/* Make the calling process a child subreaper: descendants orphaned below it come to it, not
 * to init. 0 or -errno. */
int wsd_sys_child_subreaper(void);

/* Call fn(pid, arg) for each child of the calling thread (/proc/thread-self/children, read in
 * pieces: a supervisor may have tens of thousands). Only a child's own parent may trust the
 * pid: it cannot be reused before that parent reaps it. Returns 0 or -errno. */
int wsd_sys_each_child(void (*fn)(pid_t pid, void *arg), void *arg);

/* Move the calling process to SCHED_IDLE: it then runs only when nothing else wants its CPU,
 * and any task that wakes there preempts it at once. For work nobody waits for, such as a
 * terminated worker's teardown. Without CAP_SYS_NICE there is no way back. */
int wsd_sys_sched_idle(void);

/* Move the calling process to SCHED_FIFO at the lowest real-time priority, 1, with
 * SCHED_RESET_ON_FORK: whatever it starts afterwards runs at the default policy. Needs
 * CAP_SYS_NICE (or RLIMIT_RTPRIO). Returns 0 or -errno. */
int wsd_sys_sched_fifo_alone(void);

/* Monotonic time in nanoseconds and milliseconds. */
uint64_t wsd_now_ns(void);
uint64_t wsd_now_ms(void);

/* The same clock as of the last timer tick (CLOCK_MONOTONIC_COARSE): never ahead of
 * wsd_now_ms, behind it by a tick (4 ms here), within WSD_TICK_SLACK_MS unless a tick comes
 * late. For the per-wakeup stamps of a worker: it reads no clock hardware, and on this
 * paravirtualised guest the first precise read after a process switch is dear (BENCH.md:
 * echo at 1,000 connections). Nothing breaks if it lags further: a deadline judged by it is
 * then a little late. */
uint64_t wsd_tick_ms(void);
#define WSD_TICK_SLACK_MS 10 /* a tick is 1-10 ms (HZ 1000 to 100) */

#endif
