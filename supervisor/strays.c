/* SPDX-License-Identifier: MIT */
/* Strays: children of the supervisor that no wsd process accounts for. Two kinds come here.
 * What an exec program started, when its worker died abruptly (the supervisor is a child
 * subreaper; the program itself dies with the worker, by PDEATHSIG). And what a compromised
 * worker made: a clone(CLONE_PARENT) child (the seccomp filter cannot refuse the flag, since
 * the template it shares the filter with needs it), or a child that left the worker's process
 * group, so that the group's end misses it, and was adopted when the worker exited. A process
 * is wsd's own if the supervisor holds its pidfd (acceptor, template, keyholders, wsd-metrics,
 * a new generation, every worker); anything else is ended. A stray is signalled through a
 * pidfd opened while it is an unreaped child of ours (its pid cannot be reused before we reap
 * it), it and its process group with SIGKILL, and reaped on a later tick once it has exited.
 * The sweep reads the kernel's list of the supervisor's children (no syscall per child), every
 * WSD_STRAYS_SWEEP_MS and at the next tick after a worker died by a signal. */
#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/log.h"
#include "core/sys.h"
#include "supervisor/state.h"

struct sweep {
    struct supervisor *s;
    const pid_t *own; /* sorted */
    size_t n_own;
    unsigned left; /* strays still alive */
};

static int cmp_pid(const void *a, const void *b)
{
    pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
    return (x > y) - (x < y);
}

static void add_own(pid_t *own, size_t *n, int pidfd, pid_t pid)
{
    if (pidfd >= 0 && pid > 0)
        own[(*n)++] = pid;
}

/* Besides the workers and keyholders: acceptor, template, wsd-metrics, a new generation. */
#define OWN_SINGLES 4

/* The pids of every process of ours the supervisor holds a pidfd of, sorted; NULL if out of
 * memory. */
static pid_t *own_pids(const struct supervisor *s, size_t *ret_n)
{
    size_t n = 0;
    pid_t *own = malloc((s->pool.cap + WSD_KEYHOLDERS_MAX + OWN_SINGLES) * sizeof(*own));
    if (!own)
        return NULL;
    add_own(own, &n, s->acceptor_pidfd, s->acceptor_pid);
    add_own(own, &n, s->template_pidfd, s->template_pid);
    add_own(own, &n, s->metrics_child.pidfd, s->metrics_child.pid);
    pid_t successor = wsd_upgrade_child_pid(s); /* its pidfd is upgrade.c's */
    if (successor > 0)
        own[n++] = successor;
    for (size_t i = 0; i < WSD_KEYHOLDERS_MAX; i++)
        add_own(own, &n, s->keyholders[i].pidfd, s->keyholders[i].pid);
    for (uint32_t i = 0; i < s->pool.cap; i++)
        add_own(own, &n, s->pool.slots[i].pidfd, s->pool.slots[i].pid);
    qsort(own, n, sizeof(*own), cmp_pid);
    *ret_n = n;
    return own;
}

static void end_stray(pid_t pid, void *arg)
{
    struct sweep *sw = arg;
    if (bsearch(&pid, sw->own, sw->n_own, sizeof(pid), cmp_pid))
        return;
    siginfo_t si = {0};
    /* __WALL: a clone child may have chosen no exit signal, or another than SIGCHLD. */
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | __WALL) == 0 && si.si_pid == pid) {
        wsd_log_notice("reaped pid=%d, a stray left by a worker", (int)pid);
        sw->s->totals.strays_reaped++;
        return;
    }
    sw->left++;
    int fd = wsd_sys_pidfd_open(pid);
    if (fd < 0)
        return;
    (void)wsd_sys_pidfd_send_signal(fd, SIGKILL, NULL);
    (void)wsd_sys_pidfd_signal_group(fd, SIGKILL); /* it may lead a group of its own */
    wsd_close(fd);
}

void wsd_strays_sweep(struct supervisor *s)
{
    struct sweep sw = {.s = s};
    pid_t *own = own_pids(s, &sw.n_own);
    if (!own) {
        s->strays_pending = true; /* the next tick tries again */
        return;
    }
    sw.own = own;
    int r = wsd_sys_each_child(end_stray, &sw);
    if (r < 0)
        wsd_log_warn(r, "cannot list the supervisor's children to end strays");
    free(own);
    s->strays_pending = r == 0 && sw.left > 0;
}
