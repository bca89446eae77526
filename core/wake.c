/* SPDX-License-Identifier: MIT */
/* A blocking recv() that signals can end (core/wake.h). The races, and why each is closed:
 * - A signal before recv() enters the kernel would find nothing to interrupt. So the handler
 *   makes the socket non-blocking: that recv() returns at once (EAGAIN) instead of waiting.
 * - A signal during recv(): SA_RESTART restarts it, and the restarted call sees O_NONBLOCK. The
 *   rest of the worker never sees an EINTR it did not see before.
 * - A signal while the socket is being set up, before the handler knows it: the handler also
 *   sets `nudged`, which wsd_wake_arm reads after publishing the socket.
 * SIGTERM is unblocked from the first wsd_wake_arm of a connection to its wsd_wake_release.
 * Between an arm and the next wsd_wake_pause the handler keeps what the signal says (si_code,
 * si_value) in one slot, which it fills only while empty and the worker empties after reading
 * it, so neither needs a lock against the other; a SIGTERM that finds the slot full is
 * dropped, as a standard signal is while one is pending. From a pause (an epoll wait is next)
 * to the next arm it queues the signal to the signalfd instead, which the epoll wait watches:
 * a pause costs no system call, however often a connection goes from one wait to the other
 * (each time its output backs up). What the worker has not taken from the slot by the
 * release goes back to its signalfd too.
 * All the state is one struct, written by wsd_wake_arm first: the handler, on the kill's
 * critical path, then writes no page that the worker has not made its own yet (a copy-on-write
 * fault there costs more than the rest of the handler). */
#include "core/wake.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <ucontext.h>
#include <unistd.h>

#include "core/sys.h"

static struct {
    volatile sig_atomic_t nudged;    /* a handler ran since wsd_wake_arm looked */
    volatile sig_atomic_t target_fd; /* the socket a handler makes non-blocking, or -1 */
    volatile sig_atomic_t caught;    /* term holds a SIGTERM the worker has not taken */
    volatile sig_atomic_t in_epoll;  /* from wsd_wake_pause to wsd_wake_arm */
    volatile sig_atomic_t term_open; /* SIGTERM unblocked (its handler, not the signalfd, gets it) */
    struct wsd_wake_term term;
    bool installed;
    bool alarm_open;      /* SIGALRM unblocked */
    bool errno_owned;     /* errno written in this process (see wsd_wake_arm) */
    int blocking_fd;      /* the socket we put in blocking mode, no handler since */
    uint64_t alarm_at_ms; /* the deadline the interval timer is set for, 0 = none */
} w __attribute__((aligned(256))) = {.target_fd = -1, .blocking_fd = -1}; /* within a page */

_Static_assert(sizeof(w) <= 256, "the wake state spans two pages");

/* errno is put back only if a call here changed it: the write would be the worker's first to
 * its TLS page, still the template's copy-on-write, a page fault on the kill's path. */
#define KEEP_ERRNO(saved)                                                                      \
    do {                                                                                       \
        if (errno != (saved))                                                                  \
            errno = (saved);                                                                   \
    } while (0)

static void nudge(void)
{
    w.nudged = 1;
    int fd = w.target_fd;
    if (fd >= 0)
        (void)fcntl(fd, F_SETFL, O_NONBLOCK); /* a socket's only status flag here */
}

static void on_alarm(int sig, siginfo_t *si, void *uc)
{
    (void)sig, (void)si, (void)uc;
    int saved = errno;
    nudge();
    KEEP_ERRNO(saved);
}

/* Queue SIGTERM with this siginfo to ourselves: while it is blocked, the signalfd reads it.
 * To itself a process may queue any si_code. */
static void queue_to_self(siginfo_t *si)
{
    pid_t self = getpid(); /* a worker is one thread: its pid is its tid */
    (void)syscall(SYS_rt_tgsigqueueinfo, self, self, SIGTERM, si);
}

static void on_term(int sig, siginfo_t *si, void *ucv)
{
    int saved = errno;
    if (w.in_epoll) {
        /* An epoll wait watches the signalfd, not the slot: queue the same signal there and
         * return with SIGTERM blocked, so that it stays pending. The next wsd_wake_arm
         * unblocks SIGTERM again. */
        queue_to_self(si);
        sigaddset(&((ucontext_t *)ucv)->uc_sigmask, sig);
        w.term_open = 0;
    } else if (!w.caught) { /* else dropped, as a second SIGTERM is while one is pending */
        w.term = (struct wsd_wake_term){
            .code = si->si_code,
            .pid = si->si_pid,
            .uid = si->si_uid,
            .value = (uint64_t)(uintptr_t)si->si_value.sival_ptr,
        };
        w.caught = 1;
    }
    nudge();
    KEEP_ERRNO(saved);
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
    w.installed = true;
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
    w.alarm_at_ms = at_ms;
}

/* SIGTERM, and with it (the first time) SIGALRM: a worker starts with every signal blocked,
 * as the supervisor has them. SIGALRM then stays open: its timer runs only while armed. */
static void mask_term(int how)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    if (how == SIG_UNBLOCK && !w.alarm_open) {
        sigaddset(&set, SIGALRM);
        w.alarm_open = true;
    }
    (void)sigprocmask(how, &set, NULL);
}

/* True if a handler ran since the last look; what it may have changed is then re-done by
 * the next wsd_wake_arm. */
static bool take_nudge(void)
{
    if (!w.nudged)
        return false;
    w.nudged = 0;
    w.blocking_fd = -1; /* the handler made it non-blocking */
    w.alarm_at_ms = 0;  /* spent, if it was the timer: set again next time */
    return true;
}

bool wsd_wake_arm(int fd, uint64_t at_ms)
{
    w.in_epoll = 0;
    if (!w.installed && wsd_wake_install() < 0)
        return false;
    if (!w.errno_owned) {
        /* The recv() a signal ends sets errno (EAGAIN). A worker's TLS page, where errno
         * lives, is still the template's, copy-on-write: its first write faults, and that
         * would fall on the kill's path. Almost every worker writes errno sooner or later;
         * here it is once, before any kill. */
        *(volatile int *)&errno = errno;
        w.errno_owned = true;
    }
    if (take_nudge())
        return false;
    if (w.alarm_at_ms != at_ms)
        set_alarm(at_ms);
    if (w.blocking_fd != fd) {
        w.target_fd = -1;
        if (fcntl(fd, F_SETFL, 0) < 0)
            return false;
        w.blocking_fd = fd;
    }
    w.target_fd = fd;
    if (!w.term_open) {
        w.term_open = 1;
        mask_term(SIG_UNBLOCK); /* a SIGTERM pending now is caught as the mask opens */
    }
    return !take_nudge();
}

bool wsd_wake_term_caught(void)
{
    return w.caught;
}

bool wsd_wake_take_term(struct wsd_wake_term *ret)
{
    if (!w.caught)
        return false;
    *ret = w.term; /* the handler leaves term alone until caught is cleared */
    w.caught = 0;
    return true;
}

bool wsd_wake_pause(void)
{
    w.in_epoll = 1;
    return w.caught;
}

void wsd_wake_release(bool exiting)
{
    w.target_fd = -1;
    w.blocking_fd = -1;
    if (exiting)
        return;
    if (w.alarm_at_ms != 0)
        set_alarm(0);
    if (w.term_open) {
        w.term_open = 0;
        mask_term(SIG_BLOCK);
    }
    w.in_epoll = 0;
    /* Caught but not taken: back to the signalfd, for the idle worker's wait. */
    struct wsd_wake_term t;
    if (wsd_wake_take_term(&t)) {
        siginfo_t si;
        memset(&si, 0, sizeof(si));
        si.si_signo = SIGTERM;
        si.si_code = t.code;
        si.si_pid = t.pid;
        si.si_uid = t.uid;
        si.si_value.sival_ptr = (void *)(uintptr_t)t.value;
        queue_to_self(&si);
    }
}
