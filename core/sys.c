/* SPDX-License-Identifier: MIT */
/* Raw syscalls behind one seam: clone3, pidfd_send_signal, waitid(P_PIDFD), close_range, the
 * child-subreaper flag and the list of a thread's children. */
#include "core/sys.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sched.h>
#include <sched.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

int wsd_sys_clone3_pidfd(uint64_t extra_flags, int *ret_pidfd)
{
    int pidfd = -1;
    struct clone_args args = {
        .flags = CLONE_PIDFD | extra_flags,
        .pidfd = (uint64_t)(uintptr_t)&pidfd,
        .exit_signal = SIGCHLD,
    };
    long pid = syscall(SYS_clone3, &args, sizeof(args));
    if (pid < 0)
        return -errno;
    if (pid > 0)
        *ret_pidfd = pidfd;
    return (int)pid;
}

int wsd_sys_pidfd_send_signal(int pidfd, int sig, siginfo_t *info)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, info, 0) < 0)
        return -errno;
    return 0;
}

#ifndef PIDFD_SIGNAL_PROCESS_GROUP
#define PIDFD_SIGNAL_PROCESS_GROUP (1U << 2)
#endif

int wsd_sys_pidfd_signal_group(int pidfd, int sig)
{
    if (syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, PIDFD_SIGNAL_PROCESS_GROUP) < 0)
        return -errno;
    return 0;
}

int wsd_sys_pidfd_open(pid_t pid)
{
    long fd = syscall(SYS_pidfd_open, pid, 0); /* pidfds are always CLOEXEC */
    return fd < 0 ? -errno : (int)fd;
}

int wsd_sys_waitid_pidfd(int pidfd, siginfo_t *ret_info, int options)
{
    for (;;) {
        memset(ret_info, 0, sizeof(*ret_info));
        if (waitid((idtype_t)P_PIDFD, (id_t)pidfd, ret_info, WEXITED | options) == 0)
            return 0;
        if (errno != EINTR)
            return -errno;
    }
}

int wsd_sys_close_range(unsigned first, unsigned flags)
{
    if (syscall(SYS_close_range, first, ~0U, flags) < 0)
        return -errno;
    return 0;
}

int wsd_sys_child_subreaper(void)
{
    return prctl(PR_SET_CHILD_SUBREAPER, 1) < 0 ? -errno : 0;
}

int wsd_sys_each_child(void (*fn)(pid_t pid, void *arg), void *arg)
{
    int fd = open("/proc/thread-self/children", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    char buf[4096];
    long pid = 0;
    bool digits = false; /* a number is being read; it may continue in the next piece */
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR)) {
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] >= '0' && buf[i] <= '9') {
                pid = pid * 10 + (buf[i] - '0');
                digits = true;
            } else if (digits) {
                fn((pid_t)pid, arg);
                pid = 0;
                digits = false;
            }
        }
    }
    int r = n < 0 ? -errno : 0;
    if (digits)
        fn((pid_t)pid, arg);
    wsd_close(fd);
    return r;
}

int wsd_sys_sched_idle(void)
{
    struct sched_param sp = {.sched_priority = 0};
    return sched_setscheduler(0, SCHED_IDLE, &sp) < 0 ? -errno : 0;
}

int wsd_sys_sched_fifo_alone(void)
{
    struct sched_param sp = {.sched_priority = 1};
    return sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &sp) < 0 ? -errno : 0;
}

int wsd_close(int fd)
{
    if (fd >= 0) {
        int saved = errno;
        (void)close(fd);
        errno = saved;
    }
    return -1;
}

void *wsd_sys_alloc_unforked(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    if (madvise(p, size, MADV_DONTFORK) < 0) {
        (void)munmap(p, size);
        return NULL;
    }
    return p;
}

void wsd_sys_free_unforked(void *p, size_t size)
{
    if (p)
        (void)munmap(p, size);
}

static inline uint64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t wsd_now_ns(void)
{
    return clock_ns(CLOCK_MONOTONIC);
}

uint64_t wsd_now_ms(void)
{
    return wsd_now_ns() / 1000000ull;
}

uint64_t wsd_tick_ms(void)
{
    return clock_ns(CLOCK_MONOTONIC_COARSE) / 1000000ull;
}
