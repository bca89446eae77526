/* SPDX-License-Identifier: MIT */
/* A blocking recv() that signals can end (core/wake.h). The races, and why each is closed:
 * - A signal before recv() enters the kernel would find nothing to interrupt. So the handler
 *   makes the socket non-blocking: that recv() returns at once (EAGAIN) instead of waiting.
 * - A signal during recv(): SA_RESTART restarts it, and the restarted call sees O_NONBLOCK. The
 *   rest of the worker never sees an EINTR it did not see before.
 * - A signal while the socket is being set up, before the handler knows it: the handler also
 *   sets `nudged`, which wsd_wake_arm reads after publishing the socket.
 * SIGTERM stays the signalfd's: while the worker waits in recv() it is unblocked, and its
 * handler queues the same siginfo to the worker again with SIGTERM blocked (the mask it returns
 * to), so the signalfd reads what the supervisor sent, code and connection id included, as
 * if it had never been unblocked. Then the next wsd_wake_arm unblocks it again. */
#include "core/wake.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/sys.h"

static volatile sig_atomic_t nudged;          /* a handler ran since wsd_wake_arm looked */
static volatile sig_atomic_t term_blocked = 1; /* SIGTERM is in the mask, as workers start */
static volatile sig_atomic_t target_fd = -1;   /* the socket a handler makes non-blocking */

static bool installed;
static int blocking_fd = -1;  /* the socket we put in blocking mode, no handler since */
static uint64_t alarm_at_ms;  /* the deadline the interval timer is set for, 0 = none */

static void nudge(void)
{
    nudged = 1;
    int fd = target_fd;
    if (fd >= 0)
        (void)fcntl(fd, F_SETFL, O_NONBLOCK); /* a socket's only status flag here */
}

static void on_alarm(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    int saved = errno;
    nudge();
    errno = saved;
}

static void on_term(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno;
    ucontext_t *uc = ucv;
    siginfo_t again = *si;
    /* SIGTERM is blocked while this runs, so it stays pending; the mask restored on return
     * keeps it blocked. To itself the kernel lets a process queue any si_code. */
    (void)syscall(SYS_rt_tgsigqueueinfo, getpid(), getpid(), sig, &again);
    sigaddset(&uc->uc_sigmask, sig);
    term_blocked = 1;
    nudge();
    errno = saved;
}

int wsd_wake_install(void)
{
    struct sigaction sa = {.sa_flags = SA_SIGINFO | SA_RESTART};
    sigemptyset(&sa.sa_mask);
    sigaddset(&sa.sa_mask, SIGTERM);
    sigaddset(&sa.sa_mask, SIGALRM);
    sa.sa_sigaction = on_alarm;
    if (sigaction(SIGALRM, &sa, NULL) < 0)
        return -errno;
    sa.sa_sigaction = on_term;
    if (sigaction(SIGTERM, &sa, NULL) < 0)
        return -errno;
    installed = true;
    return 0;
}

static void set_alarm(uint64_t at_ms)
{
    struct itimerval it = {0};
    if (at_ms != 0) {
        uint64_t now_ms = wsd_now_ms();
        /* +1: never before at_ms by the caller's clock, which truncates to the ms */
        uint64_t left = (at_ms > now_ms ? at_ms - now_ms : 0) + 1;
        it.it_value.tv_sec = (time_t)(left / 1000);
        it.it_value.tv_usec = (suseconds_t)(left % 1000 * 1000);
    }
    (void)setitimer(ITIMER_REAL, &it, NULL);
    alarm_at_ms = at_ms;
}

/* True if a handler ran since the last look; what it may have changed is then re-done by
 * the next wsd_wake_arm. */
static bool take_nudge(void)
{
    if (!nudged)
        return false;
    nudged = 0;
    blocking_fd = -1; /* the handler made it non-blocking */
    alarm_at_ms = 0;  /* spent, if it was the timer: set again next time */
    return true;
}

bool wsd_wake_arm(int fd, uint64_t at_ms)
{
    if (!installed && wsd_wake_install() < 0)
        return false;
    if (take_nudge())
        return false;
    if (alarm_at_ms != at_ms)
        set_alarm(at_ms);
    if (blocking_fd != fd) {
        target_fd = -1;
        if (fcntl(fd, F_SETFL, 0) < 0)
            return false;
        blocking_fd = fd;
    }
    target_fd = fd;
    if (term_blocked) {
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        term_blocked = 0; /* before: a SIGTERM pending now is handled as the mask opens */
        (void)sigprocmask(SIG_UNBLOCK, &term, NULL);
    }
    return !take_nudge();
}

void wsd_wake_release(bool exiting)
{
    target_fd = -1;
    blocking_fd = -1;
    if (alarm_at_ms != 0 && !exiting)
        set_alarm(0);
    alarm_at_ms = 0;
}
