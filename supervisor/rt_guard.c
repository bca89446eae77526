/* SPDX-License-Identifier: MIT */
/* The real-time supervisor's guard against itself. At SCHED_FIFO, a supervisor stuck in a loop
 * (a bug) would keep its CPU from every worker there, but for the 5% the kernel's real-time
 * throttling leaves them. RLIMIT_RTTIME has the kernel send SIGXCPU once the supervisor has
 * run WSD_RT_GUARD_US of CPU without blocking; the handler moves it back to the default policy
 * at once, from inside whatever loop it is in, and the next tick logs it. Its real work never
 * runs that long without blocking: the longest stretch measured is a strays sweep of 5,000
 * children, about 3 ms, and every worker spawn waits for the template. */
#include "supervisor/rt_guard.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <sys/resource.h>

static volatile sig_atomic_t tripped;

static void on_sigxcpu(int sig)
{
    (void)sig;
    int saved = errno;
    struct sched_param p = {.sched_priority = 0};
    (void)sched_setscheduler(0, SCHED_OTHER, &p);
    tripped = 1;
    errno = saved;
}

static int sigxcpu_mask(int how)
{
    sigset_t m;
    sigemptyset(&m);
    sigaddset(&m, SIGXCPU);
    return sigprocmask(how, &m, NULL) < 0 ? -errno : 0;
}

int wsd_rt_guard_arm(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_RTTIME, &rl) < 0)
        return -errno;
    rl.rlim_cur = rl.rlim_max < WSD_RT_GUARD_US ? rl.rlim_max : WSD_RT_GUARD_US;
    struct sigaction sa = {.sa_handler = on_sigxcpu, .sa_flags = SA_RESTART};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGXCPU, &sa, NULL) < 0 || setrlimit(RLIMIT_RTTIME, &rl) < 0)
        return -errno;
    return sigxcpu_mask(SIG_UNBLOCK);
}

bool wsd_rt_guard_tripped(void)
{
    if (!tripped)
        return false;
    tripped = 0;
    return true;
}

void wsd_rt_guard_child(void)
{
    (void)signal(SIGXCPU, SIG_DFL);
    (void)sigxcpu_mask(SIG_BLOCK);
}
